#!/usr/bin/env python3
"""`mpirun -np 3 cohort simulate` against the single-process run (docs/design/mpi.md).

Usage: mpi_test.py COHORT_BINARY HAVE_MPI(0|1)

For each strategy family -- synchronous (fedavg, scaffold with its gradient correction, diloco
with the clients' kept optimizer state), asynchronous (fedasync, fedbuff) and semi-asynchronous
(fedcompass) -- and for fedbuff under dropouts, jitter and availability, fedast with two models,
fedavg with central DP and with secure aggregation, the final model hash, the commits and the updates of a 3-rank run must equal the
single-process run's with the same seed, and mpi.json must show each model version sent at most
once per worker rank. Then the failures: an option the remote path refuses, a rank that exits
mid-run, a rank that hangs (caught by --mpi-timeout), a rank whose training fails, a rank with
another seed and a rank whose config is missing must each
end the job with a non-zero exit and a message naming what happened -- never a hang (every run
has a subprocess timeout). Exits 77 (ctest: skipped) when cohort was built without MPI or
mpirun is missing; then it still checks, if mpirun exists, that cohort refuses to run under it.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

COHORT = os.path.abspath(sys.argv[1])
HAVE_MPI = sys.argv[2] == "1"
MPIRUN = shutil.which("mpirun")
FAILURES = []

BASE = """
data:
  dataset: synthetic
  partition: dirichlet
  alpha: 0.5
  synthetic: {num_examples: 2000, test_examples: 200, dim: 16, classes: 4}
clients:
  count: 12
  speed: {distribution: exponential, mean: 50, min: 5}
model:
  name: mlp
training:
  lr: 0.1
  local_steps: 10
"""

STRATEGIES = {
    "fedavg": "strategy: {name: fedavg, fraction: 0.5, min_clients: 3}\nrun: {rounds: 5, seed: 7}\n",
    "scaffold": "strategy: {name: scaffold, fraction: 0.5, min_clients: 3}\nrun: {rounds: 4, seed: 7}\n",
    "diloco": "strategy: {name: diloco, fraction: 0.5, min_clients: 3, inner_steps: 10, "
              "outer_lr: 0.7, outer_momentum: 0.9}\nrun: {rounds: 4, seed: 7}\n",
    "fedasync": "strategy: {name: fedasync, alpha: 0.6, staleness: polynomial, staleness_a: 0.5}\n"
                "run: {rounds: 40, seed: 7}\n",
    "fedbuff": "strategy: {name: fedbuff, buffer_size: 3, server_lr: 1.0}\nrun: {rounds: 10, seed: 7}\n",
    "fedcompass": "strategy: {name: fedcompass, min_local_steps: 5, max_local_steps: 20}\n"
                  "run: {rounds: 0, max_virtual_time_s: 6, seed: 7}\n",
}

# Whole configs: dropouts, jitter and availability (tasks lost while a rank trains them), and
# several models at once (the worker's MultiTrainer), central DP and secure aggregation (rank 0).
DYNAMICS = BASE.replace("  speed: {distribution: exponential, mean: 50, min: 5}\n",
                        "  speed: {distribution: exponential, mean: 50, min: 5}\n  jitter: 0.3\n"
                        "  dropout: 0.2\n  availability: {mean_online_s: 3, mean_offline_s: 1}\n")
MODELS = BASE.replace("model:\n  name: mlp\n",
                      "models:\n  - {name: logreg}\n  - {name: mlp, label: mlp, hidden: [16]}\n")
CONFIGS = {name: BASE + text for name, text in STRATEGIES.items()}
CONFIGS["fedbuff_dynamics"] = DYNAMICS + STRATEGIES["fedbuff"].replace("rounds: 10", "rounds: 15")
CONFIGS["fedast_models"] = MODELS + "strategy: {name: fedast, buffer_size: 2, server_lr: 0.5}\n" \
                                    "run: {rounds: 12, seed: 3}\n"
CONFIGS["fedavg_dp"] = BASE + STRATEGIES["fedavg"] + "privacy: {dp: {noise_multiplier: 0.5, clip_norm: 1.0}}\n"
CONFIGS["fedavg_secagg"] = BASE + STRATEGIES["fedavg"] + "privacy: {secagg: {enabled: true}}\n"


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what)


def mpirun(n, args, env=None, timeout=180, aborts=False):
    """Runs COHORT under mpirun. `aborts`: the job is expected to end by an abort (a rank that
    dies or hangs); then a bounded wait, and an mpirun that does not return is killed and its
    output checked like any other."""
    cmd = [MPIRUN, "--oversubscribe", "--allow-run-as-root", "-np", str(n), COHORT] + args
    full_env = dict(os.environ)
    full_env.update(env or {})
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60 if aborts else timeout,
                              env=full_env)
    except subprocess.TimeoutExpired as e:
        if not aborts:
            raise
        # Open MPI 4.1's mpirun sometimes never returns after MPI_Abort although every rank has
        # exited (measured: 1 run in 6 of the hung-rank case below, the ranks defunct and mpirun
        # in a futex wait, deaf to SIGTERM); subprocess.run has killed it. What the ranks wrote
        # before is what the checks read.
        def text(b):
            return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
        print("note: mpirun did not return after the abort; killed it")
        return subprocess.CompletedProcess(cmd, -9, text(e.stdout), text(e.stderr))


def single(args, timeout=120):
    return subprocess.run([COHORT] + args, capture_output=True, text=True, timeout=timeout)


def summary(out_dir):
    with open(os.path.join(out_dir, "summary.json")) as f:
        return json.load(f)


def write(tmp, name, text):
    path = os.path.join(tmp, name + ".yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


def same_as_single_process(tmp):
    for name, text in CONFIGS.items():
        cfg = write(tmp, name, text)
        s_dir, m_dir = os.path.join(tmp, "s_" + name), os.path.join(tmp, "m_" + name)
        s = single(["simulate", cfg, "--out", s_dir, "-q"])
        check(s.returncode == 0, f"{name}: single-process run failed: {s.stderr}")
        m = mpirun(3, ["simulate", cfg, "--out", m_dir, "-q"])
        check(m.returncode == 0, f"{name}: mpirun -np 3 failed: {m.stdout}{m.stderr}")
        if s.returncode or m.returncode:
            continue
        a, b = summary(s_dir), summary(m_dir)
        print(f"{name}: single {a['model_hash']}, 3 ranks {b['model_hash']} "
              f"({a['rounds']} commits, {a['updates']} updates)")
        check(a["model_hash"] == b["model_hash"],
              f"{name}: model hash {b['model_hash']} under mpirun, {a['model_hash']} in one process")
        for key in ("rounds", "updates", "rejected", "lost", "bytes_up", "bytes_down"):
            check(a[key] == b[key], f"{name}: {key} {b[key]} under mpirun, {a[key]} in one process")
        check(a["updates"] > 0, f"{name}: no updates")
        with open(os.path.join(m_dir, "mpi.json")) as f:
            t = json.load(f)
        check(t["ranks"] == 3, f"{name}: mpi.json ranks {t['ranks']}")
        check(t["tasks_per_rank"][0] == 0 and sum(t["tasks_per_rank"]) == t["tasks"],
              f"{name}: tasks per rank {t['tasks_per_rank']} (rank 0 trains none)")
        check(t["tasks"] >= a["updates"], f"{name}: {t['tasks']} tasks for {a['updates']} updates")
        # A version goes to a worker at most once (two workers here).
        check(t["max_sends_per_version"] <= 2, f"{name}: a version sent {t['max_sends_per_version']} times")
        check(t["model_sends"] <= 2 * t["versions_sent"], f"{name}: {t['model_sends']} model sends")
        if name == "fedavg":
            # 6 tasks per round, 2 workers: the model went once per worker, not once per task.
            check(t["model_sends"] < t["tasks"], f"fedavg: {t['model_sends']} sends for {t['tasks']} tasks")


def failures(tmp):
    cfg = write(tmp, "fail", BASE + STRATEGIES["fedavg"])
    out = os.path.join(tmp, "f")
    # An option the remote path does not support is refused, naming it.
    m = mpirun(3, ["simulate", cfg, "--out", out, "-q", "--set", "compression.uplink=int8"])
    check(m.returncode == 2, f"compression: exit {m.returncode}, expected 2: {m.stderr}")
    check("compression.uplink" in m.stderr and "MPI" in m.stderr,
          f"compression: the error does not name the option and MPI: {m.stderr}")
    m = mpirun(3, ["simulate", cfg, "--out", out, "-q", "--set", "privacy.dp.noise_multiplier=0.5",
                   "--set", "privacy.dp.clip_norm=1", "--set", "privacy.dp.side=client"])
    check(m.returncode == 2 and "privacy.dp: client-side clipping and noise is not supported" in m.stderr,
          f"client-side DP: exit {m.returncode}: {m.stderr}")
    # Ranks that disagree (mpirun's MPMD form gives rank 2 other arguments): a different seed
    # is caught by the fingerprint, a worker's missing config is reported with its rank.
    base = [MPIRUN, "--oversubscribe", "--allow-run-as-root", "-np", "2", COHORT, "simulate", cfg,
            "--out", out, "-q", ":", "-np", "1", COHORT, "simulate"]
    m = subprocess.run(base + [cfg, "--out", out, "-q", "--seed", "9"], capture_output=True,
                       text=True, timeout=180)
    check(m.returncode == 2 and "MPI rank 2 built a different scenario" in m.stderr,
          f"different seed on rank 2: exit {m.returncode}: {m.stderr}")
    m = subprocess.run(base + [os.path.join(tmp, "missing.yaml"), "--out", out, "-q"],
                       capture_output=True, text=True, timeout=180)
    check(m.returncode == 3 and "MPI rank 2: cannot read config file" in m.stderr,
          f"missing config on rank 2: exit {m.returncode}: {m.stderr}")
    # A rank that dies mid-run (no word, exit 9): mpirun ends the job and names the process.
    m = mpirun(3, ["simulate", cfg, "--out", out, "-q"], env={"COHORT_TEST_MPI_FAULT": "2:exit:2"},
               aborts=True)
    text = m.stdout + m.stderr
    check(m.returncode != 0, f"dead rank: exit code 0: {text}")
    check(",1],2]" in text or "rank 2" in text, f"dead rank: rank 2 not named: {text}")
    # A rank that hangs: the timeout names it and rank 0 aborts the job.
    m = mpirun(3, ["simulate", cfg, "--out", out, "-q", "--mpi-timeout", "3"],
               env={"COHORT_TEST_MPI_FAULT": "1:hang:2"}, aborts=True)
    check(m.returncode != 0, f"hung rank: exit code 0: {m.stderr}")
    check("MPI rank 1 did not return task" in m.stderr, f"hung rank: not named: {m.stderr}")
    # A rank whose training fails: the run fails with its error and rank.
    m = mpirun(3, ["simulate", cfg, "--out", out, "-q"], env={"COHORT_TEST_MPI_FAULT": "2:error:1"})
    check(m.returncode == 1, f"failing rank: exit {m.returncode}, expected 1: {m.stderr}")
    check("on MPI rank 2: injected failure" in m.stderr, f"failing rank: not named: {m.stderr}")


def main():
    # Containers often forbid the cross-process memory attach (CMA) OpenMPI's shared-memory
    # transport uses for large messages; copying through the shared segment always works.
    os.environ.setdefault("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
    with tempfile.TemporaryDirectory() as tmp:
        if not HAVE_MPI:
            if MPIRUN:
                cfg = write(tmp, "fedavg", BASE + STRATEGIES["fedavg"])
                m = mpirun(2, ["simulate", cfg, "--out", os.path.join(tmp, "o"), "-q"])
                check(m.returncode == 2 and "built without MPI" in m.stderr,
                      f"without MPI: expected a refusal, got {m.returncode}: {m.stderr}")
            print("SKIP: cohort was built without MPI")
            return 1 if FAILURES else 77
        if not MPIRUN:
            print("SKIP: mpirun not found (apt-get install openmpi-bin)")
            return 77
        same_as_single_process(tmp)
        failures(tmp)
    if FAILURES:
        print(f"{len(FAILURES)} failure(s)")
        return 1
    print("mpi_test: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
