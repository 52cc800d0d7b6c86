#!/usr/bin/env python3
"""Baseline for `cohort bench aggregate`: weighted averaging the way Python FL frameworks do it.

Each client's update is a list of numpy arrays (one per layer) plus its number of examples.
The aggregate multiplies every layer by the example count, reduces each layer over clients with
np.add, and divides by the total, allocating temporaries as it goes (Flower's
aggregate()/weighted-average idiom). A re-implementation of the team's shared baseline
(shared/baselines/flower_style_aggregate.py), kept in the repository so `make bench` runs
without it; same approach, inputs and output fields.

Bandwidth is counted as (K reads + 1 write) of N float32s per aggregation, the same way
`cohort bench aggregate` counts it. "seconds" is the median of the timed repeats (Cohort's bench
reports medians too); "best_seconds" is the fastest repeat.

Usage: flower_style_aggregate.py --params N --clients K [--layers L] [--repeats R]
Prints one JSON line.
"""
import argparse
import json
import statistics
import time
from functools import reduce

import numpy as np


def aggregate(results):
    """results: list of (list of per-layer arrays, num_examples)."""
    total = sum(n for _, n in results)
    weighted = [[layer * n for layer in layers] for layers, n in results]
    return [reduce(np.add, layer_group) / total for layer_group in zip(*weighted)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", type=int, default=25_000_000)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    if a.params < a.layers or a.clients < 1 or a.layers < 1 or a.repeats < 1:
        ap.error("need --params >= --layers >= 1, --clients >= 1, --repeats >= 1")

    rng = np.random.default_rng(0)
    sizes = [a.params // a.layers] * a.layers
    sizes[-1] += a.params - sum(sizes)
    results = [([rng.standard_normal(s, dtype=np.float32) for s in sizes], 100 + i)
               for i in range(a.clients)]

    aggregate(results)  # warm-up, like Cohort's bench
    times = []
    for _ in range(a.repeats):
        t = time.perf_counter()
        aggregate(results)
        times.append(time.perf_counter() - t)
    seconds = statistics.median(times)
    gb = (a.clients + 1) * a.params * 4 / 1e9
    print(json.dumps({"baseline": "python-frameworks-style numpy", "params": a.params,
                      "clients": a.clients, "layers": a.layers, "repeats": a.repeats,
                      "numpy": np.__version__, "seconds": seconds,
                      "best_seconds": min(times), "gbytes_per_s": gb / seconds}))


if __name__ == "__main__":
    main()
