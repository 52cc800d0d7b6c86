"""`pip install .` from the checkout: the installed package imports and computes."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_pip_install_from_the_checkout(tmp_path):
    pytest.importorskip("pip")
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps",
                    "--no-index", "--target", str(target), ROOT],
                   check=True, env=env, capture_output=True, text=True, cwd=tmp_path)
    code = ("import cohort, numpy as np, os; assert os.path.dirname(cohort.__file__).startswith(%r); "
            "print(cohort.aggregate([([np.float32([1, 2])], 1), ([np.float32([3, 4])], 1)])[0].tolist())"
            % str(target))
    out = subprocess.run([sys.executable, "-c", code], check=True, env=dict(env, PYTHONPATH=str(target)),
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.strip() == "[2.0, 3.0]"
