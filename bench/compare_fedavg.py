#!/usr/bin/python3
"""Compares a Cohort FedAvg run with the plain PyTorch baseline on the same config.

Usage:
  bench/compare_fedavg.py COHORT_RUN_DIR BASELINE_JSON [--target 0.8]

COHORT_RUN_DIR is `cohort simulate ... --out DIR` (reads DIR/metrics.jsonl, and
DIR/config.json when present); BASELINE_JSON is the line printed by
bench/fedavg_pytorch_baseline.py. Prints a table (rounds and wall time to the target
accuracy, final accuracy), the ratios wall time baseline/cohort and rounds cohort/baseline,
a verdict against the goals, and one JSON line with the numbers (for BENCHMARKS.md).

Goals: same rounds to target within noise (|diff| <= max(2, 20% of the baseline's rounds)),
and Cohort at most half the baseline's wall time to target.
Exit code 0 whatever the verdict; 2 for unreadable input.
"""

import argparse
import json
import os
import sys


class InputError(Exception):
    pass


def load_cohort(run_dir, target):
    path = os.path.join(run_dir, "metrics.jsonl")
    evals, start = [], {}
    try:
        with open(path) as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    ev = json.loads(line)
                except json.JSONDecodeError as e:
                    raise InputError(f"{path}:{lineno}: invalid JSON: {e}")
                if ev.get("event") == "eval":
                    for key in ("round", "accuracy", "wall_time_s"):
                        if key not in ev:
                            raise InputError(f"{path}:{lineno}: eval event without '{key}'")
                    evals.append(ev)
                elif ev.get("event") == "start":
                    start = ev
    except FileNotFoundError:
        raise InputError(f"{path}: not found")
    if not evals:
        raise InputError(f"{path}: no eval events")
    hit = next((e for e in evals if e["accuracy"] >= target), None)
    threads = start.get("threads")
    return {
        "impl": "cohort",
        "rounds_to_target": hit["round"] if hit else None,
        "wall_time_to_target_s": hit["wall_time_s"] if hit else None,
        "final_accuracy": evals[-1]["accuracy"],
        "rounds": evals[-1]["round"],
        "wall_time_s": evals[-1]["wall_time_s"],
        "threads": threads,
    }


def load_baseline(path):
    try:
        with open(path) as f:
            lines = [l for l in f.read().splitlines() if l.strip()]
    except FileNotFoundError:
        raise InputError(f"{path}: not found")
    if not lines:
        raise InputError(f"{path}: empty")
    try:
        b = json.loads(lines[-1])
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: last line is not JSON: {e}")
    for key in ("impl", "rounds_to_target", "wall_time_to_target_s", "final_accuracy", "rounds", "eval"):
        if key not in b:
            raise InputError(f"{path}: missing key '{key}'")
    return b


def recompute_baseline_target(b, target):
    """The baseline's first eval reaching `target` (it may have been run with another one)."""
    hit = next((e for e in b["eval"] if e[1] >= target), None)
    b = dict(b)
    b["rounds_to_target"] = hit[0] if hit else None
    b["wall_time_to_target_s"] = hit[2] if hit else None
    return b


def fmt(v, spec, none="never"):
    return none if v is None else format(v, spec)


def main(argv):
    p = argparse.ArgumentParser(description="Cohort vs plain PyTorch FedAvg")
    p.add_argument("cohort_run_dir")
    p.add_argument("baseline_json")
    p.add_argument("--target", type=float, default=0.8)
    args = p.parse_args(argv)
    try:
        c = load_cohort(args.cohort_run_dir, args.target)
        b = load_baseline(args.baseline_json)
    except InputError as e:
        print(f"compare_fedavg: error: {e}", file=sys.stderr)
        return 2
    if b.get("target") is not None and abs(b["target"] - args.target) > 1e-12:
        print(f"compare_fedavg: note: baseline ran with target {b['target']}, "
              f"re-reading its evals for target {args.target}", file=sys.stderr)
        b = recompute_baseline_target(b, args.target)
    # The round of the baseline's last evaluation: with a re-read target it may lie past the
    # first hit, and "never" only means "not within the rounds it ran".
    b_final_round = b["eval"][-1][0] if b["eval"] else b["rounds"]

    print(f"FedAvg to {args.target:.3f} test accuracy")
    header = f"{'impl':<22} {'threads':>7} {'rounds to target':>17} {'wall to target (s)':>19} {'final accuracy':>20}"
    print(header)
    print("-" * len(header))
    rows = [
        ("cohort", c.get("threads"), c["rounds_to_target"], c["wall_time_to_target_s"],
         c["final_accuracy"], c["rounds"]),
        (b["impl"], b.get("torch_threads"), b["rounds_to_target"], b["wall_time_to_target_s"],
         b["final_accuracy"], b_final_round),
    ]
    for impl, threads, r, w, acc, last in rows:
        print(f"{impl:<22} {fmt(threads, 'd', '?'):>7} {fmt(r, 'd'):>17} {fmt(w, '.2f'):>19} "
              f"{f'{acc:.4f} @ round {last}':>20}")

    wall_ratio = rounds_ratio = None
    if c["wall_time_to_target_s"] is not None and b["wall_time_to_target_s"] is not None:
        wall_ratio = b["wall_time_to_target_s"] / max(c["wall_time_to_target_s"], 1e-9)
    if c["rounds_to_target"] is not None and b["rounds_to_target"] is not None:
        rounds_ratio = c["rounds_to_target"] / max(b["rounds_to_target"], 1)
    print()
    print(f"wall time baseline/cohort: {fmt(wall_ratio, '.2f', 'n/a (target not reached by both)')}"
          + ("x" if wall_ratio is not None else ""))
    print(f"rounds cohort/baseline:    {fmt(rounds_ratio, '.2f', 'n/a (target not reached by both)')}")

    rounds_ok = wall_ok = None
    if rounds_ratio is not None:
        diff = abs(c["rounds_to_target"] - b["rounds_to_target"])
        rounds_ok = diff <= max(2, 0.2 * b["rounds_to_target"])
        rounds_msg = (f"rounds {'OK' if rounds_ok else 'MISS'} (|{c['rounds_to_target']} - "
                      f"{b['rounds_to_target']}| = {diff} vs allowed {max(2, 0.2 * b['rounds_to_target']):g})")
    else:
        missing = [n for n, x in (("cohort", c), ("baseline", b)) if x["rounds_to_target"] is None]
        rounds_msg = f"rounds UNKNOWN ({' and '.join(missing)} never reached {args.target})"
    if wall_ratio is not None:
        wall_ok = wall_ratio >= 2.0
        wall_msg = f"wall time {'OK' if wall_ok else 'MISS'} ({wall_ratio:.2f}x, goal >= 2x)"
    else:
        wall_msg = "wall time UNKNOWN"
    overall = "PASS" if (rounds_ok and wall_ok) else ("FAIL" if False in (rounds_ok, wall_ok) else "INCOMPLETE")
    print(f"verdict: {overall}: {rounds_msg}; {wall_msg}")

    summary = {
        "benchmark": "fedavg",
        "target": args.target,
        "cohort": {k: c[k] for k in ("rounds_to_target", "wall_time_to_target_s", "final_accuracy",
                                     "rounds", "wall_time_s", "threads")},
        "baseline": {"impl": b["impl"], "rounds_to_target": b["rounds_to_target"],
                     "wall_time_to_target_s": b["wall_time_to_target_s"],
                     "final_accuracy": b["final_accuracy"], "rounds": b_final_round,
                     "wall_time_s": b.get("wall_time_s"), "threads": b.get("torch_threads")},
        "wall_ratio_baseline_over_cohort": wall_ratio,
        "rounds_ratio_cohort_over_baseline": rounds_ratio,
        "rounds_goal_met": rounds_ok,
        "wall_goal_met": wall_ok,
        "verdict": overall,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
