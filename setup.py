"""Builds the _cohort extension with the project's CMake build and puts it in the package.

pyproject.toml holds the metadata; this file only adds the CMake step (docs/design/python.md).
"""
import glob
import os
import shutil
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

ROOT = os.path.dirname(os.path.abspath(__file__))


class CMakeBuildPy(build_py):
    def run(self):
        super().run()
        build = os.environ.get("COHORT_BUILD_DIR", os.path.join(ROOT, "build"))
        if not os.path.exists(os.path.join(build, "build.ninja")):
            subprocess.check_call(["cmake", "-S", ROOT, "-B", build, "-G", "Ninja",
                                   "-DCMAKE_BUILD_TYPE=Release",
                                   f"-DPython_EXECUTABLE={sys.executable}"])
        subprocess.check_call(["cmake", "--build", build, "--target", "cohort_python"])
        dest = os.path.join(self.build_lib, "cohort")
        os.makedirs(dest, exist_ok=True)
        built = glob.glob(os.path.join(build, "python", "cohort", "_cohort*.so"))
        if not built:
            raise RuntimeError(f"the CMake build in {build} made no _cohort extension")
        for f in built:
            shutil.copy2(f, dest)


class BinaryDistribution(Distribution):
    def has_ext_modules(self):
        return True


_BUILD = os.environ.get("COHORT_BUILD_DIR", os.path.join(ROOT, "build"))
setup(cmdclass={"build_py": CMakeBuildPy}, distclass=BinaryDistribution,
      options={"build": {"build_base": os.path.join(_BUILD, "pip")},
               "egg_info": {"egg_base": _BUILD if os.path.isdir(_BUILD) else ROOT}})
