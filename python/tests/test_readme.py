"""README's Python section works as written: its quick-start command and its code blocks."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def python_section():
    text = open(os.path.join(ROOT, "README.md")).read()
    start = text.index("\n## Python\n")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def env():
    e = dict(os.environ)
    build = e.get("COHORT_BUILD_DIR", os.path.join(ROOT, "build"))
    e["PYTHONPATH"] = os.path.join(build, "python")
    return e


def test_code_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", python_section(), re.S)
    # A block that needs a deployment (cohort.join, cohort.serve) is tested by
    # tests/integration/python_join_test.py instead.
    blocks = [b for b in blocks if "cohort.join(" not in b and "cohort.serve(" not in b]
    assert len(blocks) >= 3
    for code in blocks:
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env(),
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip()
    # The simulation's summary line: fedbuff, 10 commits, an accuracy, int8 bytes.
    first = subprocess.run([sys.executable, "-c", blocks[0]], cwd=ROOT, env=env(),
                           capture_output=True, text=True, timeout=600).stdout.split()
    assert first[0] == "fedbuff" and first[1] == "10" and float(first[2]) > 0.6


def test_quick_start_command_runs():
    sh = re.findall(r"```sh\n(.*?)```", python_section(), re.S)[0]
    cmd = [line for line in sh.splitlines() if line.startswith("PYTHONPATH=")][0]
    cmd = cmd.replace("PYTHONPATH=build/python ", "")
    out = subprocess.run(cmd, shell=True, cwd=ROOT, env=env(), capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr
    m = re.search(r"fedavg: 40 rounds, final accuracy (\d\.\d+)", out.stdout)
    assert m and float(m.group(1)) > 0.75, out.stdout
