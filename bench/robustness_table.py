"""Prints the robustness study's table (bench/run.sh robustness; BENCHMARKS.md).

Usage: robustness_table.py DIR, where DIR/<attack>/comparison.json and
DIR/<attack>/<defence>/summary.json come from `cohort compare examples/robustness_study.yaml
--set attack.kind=<attack> --out DIR/<attack>`. Rows: defences; columns: attacks; cells: final
accuracy (points against the attack-free run of the same defence... and of no defence) and the
trust AUC: the probability that a random honest client's final trust exceeds a random
attacker's (ties count half; 1.0 = perfect separation, 0.5 = none).
"""
import json
import os
import sys

ATTACKS = ["none", "sign_flip", "scaling", "gaussian", "label_flip", "alie", "ipm"]


def auc(summary):
    trust = summary.get("trust") or {}
    bad = set(str(c) for c in summary.get("attackers", []))
    if not trust or not bad:
        return None
    honest = [v for c, v in trust.items() if c not in bad]
    attackers = [v for c, v in trust.items() if c in bad]
    if not honest or not attackers:
        return None
    wins = sum((h > a) + 0.5 * (h == a) for h in honest for a in attackers)
    return wins / (len(honest) * len(attackers))


def main(root):
    runs = {}
    labels = []
    for attack in ATTACKS:
        path = os.path.join(root, attack, "comparison.json")
        if not os.path.exists(path):
            continue
        comparison = json.load(open(path))
        for row in comparison["strategies"]:
            label = row["label"]
            if label not in labels:
                labels.append(label)
            summary = json.load(open(os.path.join(root, attack, label, "summary.json")))
            runs[(attack, label)] = (summary["final_accuracy"], auc(summary))
    attacks = [a for a in ATTACKS if any((a, l) in runs for l in labels)]
    clean = runs.get(("none", "none"), (None, None))[0]
    print("Final accuracy (trust AUC); attack-free, no defence: %s"
          % ("%.4f" % clean if clean is not None else "?"))
    print()
    print("| defence | " + " | ".join(attacks) + " |")
    print("|---" * (len(attacks) + 1) + "|")
    for label in labels:
        cells = []
        for a in attacks:
            if (a, label) not in runs:
                cells.append("")
                continue
            acc, a_auc = runs[(a, label)]
            cell = "%.4f" % acc
            if a_auc is not None:
                cell += " (%.2f)" % a_auc
            cells.append(cell)
        print("| %s | %s |" % (label, " | ".join(cells)))
    if clean is not None:
        print()
        print("Best defence per attack (points against the attack-free, undefended run):")
        for a in attacks:
            if a == "none":
                continue
            best = max((runs[(a, l)][0], l) for l in labels if (a, l) in runs)
            print("- %s: %s %.4f (%+.2f)" % (a, best[1], best[0], 100 * (best[0] - clean)))


if __name__ == "__main__":
    main(sys.argv[1])
