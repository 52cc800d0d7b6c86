#!/usr/bin/python3
"""A large population in a plain PyTorch FedAvg loop: the baseline of `bench_population`.

Usage:
  /usr/bin/python3 bench/population_pytorch_baseline.py [--clients 1000000]
      [--examples 4000000] [--dim 32] [--classes 10] [--fraction 0.001] [--rounds 30]

The scenario of `cohort bench population` (defaults: 1,000,000 logistic-regression clients
over 4M x 32 Gaussian-blob examples, IID split, 0.1% sampled per round, one epoch of batch-10
SGD at lr 0.05 per task, FedAvg weighted by examples, evaluation before the first and after
the last round on 10,000 test examples) written the way a Python user would: NumPy data, one
index array per client (np.array_split), clients trained one after the other with a
state_dict copy each, state dicts averaged on the server. One torch thread.

Prints one JSON line: {"impl": "pytorch-sequential", "clients", "setup_s" (data, split and the
per-client index arrays), "run_s" (the rounds and evaluations), "model_s" (time inside
forward/backward/step and evaluation), "updates", "updates_per_s", "peak_rss_bytes",
"final_accuracy"}.
"""

import argparse
import json
import math
import resource
import time

import numpy as np
import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=1000000)
    ap.add_argument("--examples", type=int, default=4000000)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--fraction", type=float, default=0.001)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(a.seed)

    t0 = time.perf_counter()
    means = rng.normal(size=(a.classes, a.dim)).astype(np.float32)
    means *= 3.0 / np.linalg.norm(means, axis=1, keepdims=True)

    def blobs(n):
        y = np.arange(n) % a.classes
        x = means[y] + rng.normal(size=(n, a.dim)).astype(np.float32)
        return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))

    x, y = blobs(a.examples)
    xt, yt = blobs(10000)
    parts = np.array_split(rng.permutation(a.examples), a.clients)
    setup_s = time.perf_counter() - t0

    model = torch.nn.Linear(a.dim, a.classes)
    loss_fn = torch.nn.CrossEntropyLoss()
    model_s = 0.0
    m = max(1, math.ceil(a.fraction * a.clients - 1e-9))

    def evaluate():
        with torch.no_grad():
            return (model(xt).argmax(1) == yt).float().mean().item()

    t1 = time.perf_counter()
    ts = time.perf_counter()
    acc = evaluate()
    model_s += time.perf_counter() - ts
    updates = 0
    for _ in range(a.rounds):
        global_state = {k: v.clone() for k, v in model.state_dict().items()}
        total = {k: torch.zeros_like(v) for k, v in global_state.items()}
        weight = 0
        for c in rng.choice(a.clients, size=m, replace=False):
            idx = parts[c]
            model.load_state_dict(global_state)
            opt = torch.optim.SGD(model.parameters(), lr=0.05)
            order = idx[rng.permutation(len(idx))]
            ts = time.perf_counter()
            for b in range(0, len(order), 10):
                batch = torch.from_numpy(order[b:b + 10])
                opt.zero_grad()
                loss_fn(model(x[batch]), y[batch]).backward()
                opt.step()
            model_s += time.perf_counter() - ts
            for k, v in model.state_dict().items():
                total[k] += v * len(idx)
            weight += len(idx)
            updates += 1
        model.load_state_dict({k: v / weight for k, v in total.items()})
    ts = time.perf_counter()
    acc = evaluate()
    model_s += time.perf_counter() - ts
    run_s = time.perf_counter() - t1
    print(json.dumps({
        "impl": "pytorch-sequential", "clients": a.clients, "setup_s": round(setup_s, 4),
        "run_s": round(run_s, 4), "model_s": round(model_s, 4), "updates": updates,
        "updates_per_s": round(updates / run_s, 1),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "final_accuracy": round(acc, 4)}))


if __name__ == "__main__":
    main()
