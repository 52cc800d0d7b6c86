#!/usr/bin/python3
"""Wall time per round of the demo scenario with three trainers, measured in one run.

    PYTHONPATH=build/python /usr/bin/python3 bench/python_trainer.py [--rounds 40] [--repeats 3]
        [--config examples/fedavg_fmnist.yaml] [--out bench/out/python_trainer]

1. Cohort's simulator with its C++ (LibTorch) trainer: cohort.simulate(config).
2. The same simulator with the clients in Python: examples/python/fmnist_torch.py's PyTorch MLP
   (the demo's 784-200-200-10), in worker processes (one per simulator thread).
3. The plain sequential PyTorch FedAvg loop (bench/fedavg_pytorch_baseline.py) replaying the
   same config and partition, 1 torch thread (its fastest setting on this model).

The three alternate, `--repeats` times; the medians and the ratios are printed as one JSON line.
Goals (docs: BENCHMARKS.md): Python trainer <= 1.3x the C++ trainer's time per round, and
>= 1.5x faster than the plain loop.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "examples", "python"))

import cohort  # noqa: E402
import fmnist_torch  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=os.path.join(ROOT, "examples", "fedavg_fmnist.yaml"))
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "out", "python_trainer"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    over = [f"run.rounds={a.rounds}"]
    rows = {"cpp": [], "python": [], "plain_loop": []}
    acc = {}
    run_dir = os.path.join(a.out, "cpp")
    for r in range(a.repeats):
        s = cohort.simulate(a.config, overrides=over, out=run_dir, save_partition=True)
        rows["cpp"].append(s["wall_time_s"] / s["rounds"])
        acc["cpp"] = s["final_accuracy"]
        s = cohort.simulate(a.config, lambda ctx: fmnist_torch.TorchClient(ctx, "mlp"), overrides=over)
        rows["python"].append(s["wall_time_s"] / s["rounds"])
        acc["python"] = s["final_accuracy"]
        b = subprocess.run([sys.executable, os.path.join(HERE, "fedavg_pytorch_baseline.py"),
                            "--run-dir", run_dir, "--target", "1.01", "--max-rounds", str(a.rounds),
                            "--threads", "1", "--quiet"], check=True, capture_output=True, text=True)
        j = json.loads(b.stdout.strip().splitlines()[-1])
        rows["plain_loop"].append(j["wall_time_s"] / j["rounds"])
        acc["plain_loop"] = j["final_accuracy"]
        print(f"repeat {r + 1}: s/round cpp {rows['cpp'][-1]:.3f}, python {rows['python'][-1]:.3f}, "
              f"plain loop {rows['plain_loop'][-1]:.3f}", file=sys.stderr)
    med = {k: statistics.median(v) for k, v in rows.items()}
    out = {
        "benchmark": "python_trainer", "config": os.path.relpath(a.config, ROOT), "rounds": a.rounds,
        "repeats": a.repeats, "s_per_round": rows, "median_s_per_round": med,
        "final_accuracy": acc,
        "python_over_cpp": med["python"] / med["cpp"],
        "plain_loop_over_python": med["plain_loop"] / med["python"],
    }
    out["goal_python_within_1_3x_cpp"] = out["python_over_cpp"] <= 1.3
    out["goal_python_1_5x_faster_than_plain_loop"] = out["plain_loop_over_python"] >= 1.5
    print(json.dumps(out))


if __name__ == "__main__":
    main()
