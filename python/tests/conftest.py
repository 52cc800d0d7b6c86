import os
import sys

# Importable from the build tree (ctest sets PYTHONPATH=build/python) or after `pip install .`.
_build = os.environ.get("COHORT_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
_path = os.path.join(_build, "python")
if os.path.isdir(_path) and _path not in sys.path:
    sys.path.insert(0, _path)
