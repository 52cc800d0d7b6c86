#!/usr/bin/env python3
"""Tests of the `cohort` command line itself: exit codes for each class of error, the --seed /
--threads / --set shortcuts, errors that name the file and the override, impossible
configurations refused before a run, a run that stalls, and Ctrl-C writing the summary.

Usage: cli_test.py COHORT_BINARY   (ctest runs it; standard library only)
Exit codes under test (docs/design/errors.md): 0 ok, 1 other, 2 bad input, 3 missing file,
4 stalled run, 130 interrupted.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

COHORT = os.path.abspath(sys.argv[1])
FAILURES = []

# A small synthetic scenario: trains in well under a second.
BASE = """
data:
  dataset: synthetic
  partition: iid
  synthetic: {num_examples: 400, test_examples: 100, dim: 8, classes: 3}
clients:
  count: 4
model:
  name: logreg
training:
  lr: 0.1
  local_steps: 5
strategy:
  name: fedavg
  fraction: 1.0
  min_clients: 2
run:
  rounds: 3
  seed: 3
"""


def run(args, cwd, timeout=120):
    p = subprocess.run([COHORT] + args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ, OMP_WAIT_POLICY="PASSIVE"))
    return p.returncode, p.stdout, p.stderr


def check(name, cond, detail=""):
    if not cond:
        FAILURES.append(f"{name}: {detail}")
        print(f"FAIL {name}: {detail}")
    else:
        print(f"ok   {name}")


def expect(name, args, cwd, code, needles=(), stream="stderr"):
    rc, out, err = run(args, cwd)
    text = err if stream == "stderr" else out
    check(name, rc == code, f"exit {rc}, expected {code}; stderr: {err.strip()[-400:]}")
    for n in needles:
        check(f"{name}: mentions {n!r}", n in text, f"{stream} was: {text.strip()[-400:]}")
    return rc, out, err


def write(dir, name, text):
    path = os.path.join(dir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def main():
    with tempfile.TemporaryDirectory() as d:
        cfg = write(d, "cfg.yaml", BASE)
        expect("version", ["--version"], d, 0, ["cohort"], stream="stdout")

        # Success: outputs written, exit 0.
        rc, out, _ = expect("simulate ok", ["simulate", cfg, "--out", "ok", "--quiet"], d, 0)
        summary = json.load(open(os.path.join(d, "ok", "summary.json")))
        check("summary rounds", summary["rounds"] == 3, summary)
        check("summary stop_reason", summary.get("stop_reason") == "rounds", summary)

        # Anything else (here: an output directory that cannot be created): 1.
        expect("unwritable output directory", ["simulate", cfg, "--out", "/proc/cohort-cli-test"],
               d, 1, ["cannot create output directory"])

        # Missing files: 3.
        expect("missing config", ["simulate", "nope.yaml"], d, 3, ["nope.yaml"])
        expect("missing report dir", ["report", "no_such_dir"], d, 3, ["no_such_dir"])

        # Bad input: 2, naming the file, the key and the override.
        bad = write(d, "bad.yaml", BASE.replace("lr: 0.1", "lr: 0"))
        expect("bad value", ["simulate", bad], d, 2, ["bad.yaml: training.lr: must be > 0, got 0"])
        expect("negative seed", ["simulate", cfg, "--seed", "-5"], d, 2,
               ["run.seed: expected a non-negative integer, got -5", "run.seed=-5"])
        expect("negative threads", ["simulate", cfg, "--threads", "-2"], d, 2,
               ["run.threads: must be >= 0, got -2", "run.threads=-2"])
        expect("bad strategy parameter names file and override",
               ["simulate", cfg, "--set", "strategy.fraction=2"], d, 2,
               ["cfg.yaml: strategy.fraction: must be in (0, 1], got 2",
                "(from override 'strategy.fraction=2')"])
        expect("unknown strategy", ["simulate", cfg, "--set", "strategy.name=fedfoo"], d, 2,
               ["strategy.name: unknown strategy 'fedfoo'"])
        expect("malformed override", ["simulate", cfg, "--set", "training.lr"], d, 2,
               ["expected key.path=value"])
        expect("strategies list refused by simulate",
               ["simulate", cfg, "--set", "strategies=[{name: fedavg}]", "--set", "strategy="], d, 2)

        # Impossible configuration: refused before any data is loaded or output written.
        rc, out, err = expect("min_clients above the population",
                              ["simulate", cfg, "--set", "strategy.min_clients=9", "--out", "imp"],
                              d, 2, ["strategy.min_clients: must be <= the number of clients (4), got 9",
                                     "(from override 'strategy.min_clients=9')"])
        check("nothing written for an impossible config", not os.path.exists(os.path.join(d, "imp")))
        expect("compare refuses it too",
               ["compare", write(d, "cmp.yaml", BASE.replace(
                   "strategy:\n  name: fedavg\n  fraction: 1.0\n  min_clients: 2\n",
                   "strategies:\n  - {name: fedavg, min_clients: 2}\n  - {name: fedprox, min_clients: 7}\n"))],
               d, 2, ["strategies[1].min_clients: must be <= the number of clients (4), got 7"])

        # A run that stalls anyway (clients almost never online together, a round needs all
        # four): non-zero exit with a message, outputs still written.
        stall = write(d, "stall.yaml", BASE.replace("min_clients: 2", "min_clients: 4").replace(
            "  count: 4\n", "  count: 4\n  speed: 10\n  availability: "
            "{mean_online_s: 0.5, mean_offline_s: 1000}\n").replace("rounds: 3", "rounds: 50"))
        rc, out, err = expect("stall", ["simulate", stall, "--out", "stall", "--quiet"], d, 4,
                              ["stalled"])
        s = json.load(open(os.path.join(d, "stall", "summary.json")))
        check("stall summary", s["stalled"] is True and s["stop_reason"] == "stalled", s)

        # Ctrl-C: stops after the current event, writes the summary, exits 130.
        long_cfg = write(d, "long.yaml", BASE.replace("rounds: 3", "rounds: 100000"))
        p = subprocess.Popen([COHORT, "simulate", long_cfg, "--out", "int", "--quiet"], cwd=d,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, OMP_WAIT_POLICY="PASSIVE"))
        metrics = os.path.join(d, "int", "metrics.jsonl")
        deadline = time.time() + 60
        while time.time() < deadline:
            if os.path.exists(metrics) and sum(1 for _ in open(metrics)) > 20:
                break
            time.sleep(0.1)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
        check("ctrl-c exit code", p.returncode == 130, f"exit {p.returncode}; {err[-300:]}")
        check("ctrl-c message", "stopped early by SIGINT" in out, out)
        s = json.load(open(os.path.join(d, "int", "summary.json")))
        check("ctrl-c summary", s["stop_reason"] == "stopped" and 0 < s["rounds"] < 100000, s)

        # serve: the deployment's own budget and TLS choices are checked before it listens.
        toks = write(d, "tokens.txt", "t0 0\nt1 1\n")
        expect("serve without a budget", ["serve", cfg, "--tokens", toks, "--insecure",
                                          "--set", "run.rounds=0"], d, 2, ["no budget"])
        expect("serve without TLS or --insecure", ["serve", cfg, "--tokens", toks], d, 2,
               ["--insecure"])
        expect("serve min_clients above the tokens", ["serve", cfg, "--tokens", toks, "--insecure",
                                                      "--set", "strategy.min_clients=3"], d, 2,
               ["min_clients: must be <= the number of clients (2), got 3"])
        deploy = write(d, "deploy.yaml", "listen: 127.0.0.1:0\ninsecure: true\nmax_wal_s: 3\n")
        expect("deploy file unknown key", ["serve", cfg, "--deploy", deploy, "--tokens", toks], d, 2,
               ["deploy.yaml: max_wal_s: unknown key"])
        expect("missing tokens file", ["serve", cfg, "--tokens", "none.txt", "--insecure"], d, 3,
               ["none.txt"])
        expect("serve refuses secure aggregation (simulator only for now)",
               ["serve", cfg, "--tokens", toks, "--insecure", "--set",
                "privacy.secagg.enabled=true"], d, 2, ["privacy.secagg"])

        # privacy: the RDP accountant as a planner. TF Privacy's compute_dp_sgd_privacy test
        # (improved conversion) and Opacus's MNIST example (classic, 234 steps per epoch).
        rc, out, _ = expect("privacy epsilon", ["privacy", "-q", "0.0025", "-z", "1.3", "--steps",
                                                "6000", "--json"], d, 0, stream="stdout")
        j = json.loads(out)
        check("privacy: TF Privacy's 0.7242 at order 19",
              abs(j["epsilon"] - 0.7242) < 1e-4 and j["order"] == 19, j)
        rc, out, _ = expect("privacy classic", ["privacy", "-q", str(256 / 60000), "-z", "1.1",
                                                "--steps", str(60 * 234), "--conversion",
                                                "classic", "--json"], d, 0)
        check("privacy: Opacus's 3.01", abs(json.loads(out)["epsilon"] - 3.01) < 0.005, out)
        rc, out, _ = expect("privacy inverse", ["privacy", "-q", "0.01", "--target-epsilon", "3",
                                                "--steps", "1000", "--json"], d, 0)
        z = json.loads(out)["noise_multiplier"]
        rc, out, _ = expect("privacy forward of the inverse",
                            ["privacy", "-q", "0.01", "-z", str(z), "--steps", "1000", "--json"],
                            d, 0)
        eps = json.loads(out)["epsilon"]
        check("privacy: the derived noise spends at most the target", 2.9 < eps <= 3.0, eps)
        rc, out, _ = expect("privacy text", ["privacy", "-q", "0.1", "-z", "1", "--steps", "40"],
                            d, 0, ["epsilon", "order"], stream="stdout")
        expect("privacy bad sampling rate", ["privacy", "-q", "2", "-z", "1", "--steps", "3"], d,
               2, ["--sampling-rate"])
        expect("privacy needs one of z and target", ["privacy", "-q", "0.1", "-z", "1",
                                                     "--target-epsilon", "3", "--steps", "3"],
               d, 2, ["exactly one"])
        expect("privacy needs steps", ["privacy", "-q", "0.1", "-z", "1"], d, 2, ["--steps"])

    if FAILURES:
        print(f"{len(FAILURES)} failure(s)")
        sys.exit(1)
    print("all CLI checks passed")


if __name__ == "__main__":
    main()
