#!/usr/bin/python3
"""The FedAST study: several models at once against one after the other.

    /usr/bin/python3 bench/fedast_study.py COHORT_BINARY CONFIG OUT_DIR [--set KEY=VALUE ...]

Runs CONFIG (a `models:` config with strategy fedast) once with every model at once, then once
per model alone (the same strategy and scenario, `models:` holding that model only), and prints
a Markdown table: each model's virtual time to its target together and alone, the time for all
of them together (the last one to reach its target) against the sum of the times alone (one
after the other), and the ratio. `--set` overrides go to every run (e.g. run.seed=2). Exit 1
when a run fails.
"""
import json
import os
import subprocess
import sys


def simulate(cohort, config, out, sets):
    cmd = [cohort, "simulate", config, "--out", out, "--quiet"]
    for s in sets:
        cmd += ["--set", s]
    subprocess.run(cmd, check=True)
    with open(os.path.join(out, "metrics.jsonl")) as f:
        return json.loads(f.read().splitlines()[-1])


def main():
    if len(sys.argv) < 4 or (len(sys.argv) - 4) % 2 or any(
            a != "--set" for a in sys.argv[4::2]):
        print(__doc__, file=sys.stderr)
        return 2
    cohort, config, out = sys.argv[1:4]
    sets = sys.argv[5::2]
    together = simulate(cohort, config, os.path.join(out, "together"), sets)
    with open(os.path.join(out, "together", "config.json")) as f:
        models = json.load(f)["models"]
    budget = together["virtual_time_s"]
    rows, alone_sum, all_alone = [], 0.0, True
    for m in models:
        entry = {"name": m["name"], "label": m["label"], "hidden": m["hidden"],
                 "target_accuracy": m["target_accuracy"]}
        s = simulate(cohort, config, os.path.join(out, "alone-" + m["label"]),
                     sets + ["models=" + json.dumps([entry])])
        alone = s["models"][m["label"]]
        both = together["models"][m["label"]]
        rows.append((m["label"], m["target_accuracy"], both["time_to_target"],
                     alone["time_to_target"], both["best_accuracy"], alone["best_accuracy"]))
        if alone["time_to_target"] is None:
            all_alone = False
        else:
            alone_sum += alone["time_to_target"]

    def t(v):
        return "not reached" if v is None else f"{v:.0f} s"

    print("| model | target | time to target, together | alone | best accuracy together | alone |")
    print("|---|---|---|---|---|---|")
    for label, target, tb, ta, bb, ba in rows:
        print(f"| {label} | {target:.2f} | {t(tb)} | {t(ta)} | {bb:.4f} | {ba:.4f} |")
    all_together = together["time_to_target"]
    print()
    print(f"Every model at its target: together {t(all_together)}; one after the other "
          f"{t(alone_sum) if all_alone else 'not reached (a model alone missed its target within ' + t(budget) + ')'}.")
    if all_together is not None and all_alone and alone_sum > 0:
        print(f"Together takes {100 * (1 - all_together / alone_sum):.1f}% less virtual time "
              f"({alone_sum / all_together:.2f}x).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
