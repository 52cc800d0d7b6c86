#!/usr/bin/env python3
"""run.reproducible: strict gives the same model hash whatever kernels the machine would pick.

Another x86-64 machine is played by the environment variables through which OpenBLAS and
ATen choose their kernels (OPENBLAS_CORETYPE, ATEN_CPU_CAPABILITY): a default run follows
them, a strict run pins its own (docs/design/reproducibility.md) and must give one hash for
all of them, equal to a default run made with the pins by hand.

Usage: reproducible_test.py COHORT_BINARY   (ctest runs it; standard library only)
"""
import json
import os
import subprocess
import sys
import tempfile

COHORT = os.path.abspath(sys.argv[1])
FAILURES = []

CONFIG = """
data:
  dataset: synthetic
  partition: dirichlet
  alpha: 0.5
  synthetic: {num_examples: 1200, test_examples: 300, dim: 48, classes: 5}
clients: {count: 6}
model: {name: mlp, hidden: [64]}
training: {lr: 0.05, batch_size: 16, local_steps: 10}
strategy: {name: fedavg, fraction: 0.5, min_clients: 2}
run: {rounds: 4, seed: 11, threads: 2}
"""

# Kernel choices of other machines (an AVX-512 server, an AVX-only one, this one).
MACHINES = {
    "avx512": {"OPENBLAS_CORETYPE": "SkylakeX", "ATEN_CPU_CAPABILITY": "avx512"},
    "avx": {"OPENBLAS_CORETYPE": "Sandybridge", "ATEN_CPU_CAPABILITY": "default"},
    "native": {},
}
PINS = {"OPENBLAS_CORETYPE": "Haswell", "ATEN_CPU_CAPABILITY": "avx2", "OPENBLAS_NUM_THREADS": "1"}


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f": {detail}"))
    if not cond:
        FAILURES.append(name)


def simulate(d, out, mode, env_extra):
    env = {k: v for k, v in os.environ.items()
           if k not in PINS and k != "COHORT_REPRODUCIBLE_REEXEC"}
    env.update(OMP_WAIT_POLICY="PASSIVE", **env_extra)
    p = subprocess.run([COHORT, "simulate", "cfg.yaml", "--out", out, "--quiet",
                        "--set", f"run.reproducible={mode}"],
                       cwd=d, env=env, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        return None, p.stderr.strip()[-400:]
    return json.load(open(os.path.join(d, out, "summary.json")))["model_hash"], ""


def main():
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "cfg.yaml"), "w") as f:
            f.write(CONFIG)
        strict, default = {}, {}
        for name, env in MACHINES.items():
            strict[name], err = simulate(d, f"strict_{name}", "strict", env)
            check(f"strict run on the {name} machine", strict[name] is not None, err)
            default[name], err = simulate(d, f"default_{name}", "default", env)
            check(f"default run on the {name} machine", default[name] is not None, err)
        print(f"default-mode hashes (follow the machine): {default}")
        print(f"strict-mode hashes: {strict}")
        check("strict: one hash on every machine", len(set(strict.values())) == 1, strict)
        pinned, err = simulate(d, "pinned_by_hand", "default", PINS)
        check("strict equals a default run with the pins set by hand",
              pinned is not None and pinned == strict["native"], (pinned, strict, err))
        cfg = json.load(open(os.path.join(d, "strict_native", "config.json")))
        check("config.json records run.reproducible", cfg["run"]["reproducible"] == "strict", cfg["run"])
        # The re-executed process kept every argument (--out, --set).
        check("the re-executed run wrote where it was told",
              os.path.exists(os.path.join(d, "strict_avx", "metrics.jsonl")))
        p = subprocess.run([COHORT, "simulate", "cfg.yaml", "--set", "run.reproducible=exact"],
                           cwd=d, capture_output=True, text=True, timeout=60)
        check("an unknown mode is bad input naming the key and the modes",
              p.returncode == 2 and "run.reproducible" in p.stderr and "strict" in p.stderr,
              (p.returncode, p.stderr[-300:]))
        env = dict(os.environ, OMPI_COMM_WORLD_SIZE="2")
        for k in PINS:
            env.pop(k, None)
        p = subprocess.run([COHORT, "simulate", "cfg.yaml", "--set", "run.reproducible=strict"],
                           cwd=d, env=env, capture_output=True, text=True, timeout=60)
        check("under mpirun without the pins: an error saying which -x to add",
              p.returncode != 0 and "-x OPENBLAS_CORETYPE=Haswell" in p.stderr,
              (p.returncode, p.stderr[-300:]))
    if FAILURES:
        print(f"{len(FAILURES)} failure(s)")
        sys.exit(1)
    print("all reproducibility checks passed")


if __name__ == "__main__":
    main()
