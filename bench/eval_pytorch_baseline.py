#!/usr/bin/env python3
"""The baseline of `cohort bench eval`: a plain PyTorch evaluation loop over the Fashion-MNIST
test split (10,000 images, batches of 1,000, no gradients), the loop the FedAvg baseline uses
(bench/fedavg_pytorch_baseline.py). Prints one JSON line with the median seconds of R repeats.

Usage: eval_pytorch_baseline.py [--model mlp] [--threads T] [--repeats R] [--data DIR]
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fedavg_pytorch_baseline import evaluate, load_fashion_mnist, make_model  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    a = ap.parse_args()
    import torch
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    x, y = load_fashion_mnist(a.data, "test", 0)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    model = make_model(torch, a.model, [200, 200])
    times = []
    acc = 0.0
    for r in range(a.repeats + 1):  # the first run warms up
        t0 = time.perf_counter()
        acc, _ = evaluate(torch, model, x, y)
        if r > 0:
            times.append(time.perf_counter() - t0)
    print(json.dumps({"model": a.model, "threads": torch.get_num_threads(), "repeats": a.repeats,
                      "seconds": statistics.median(times), "accuracy": acc}))


if __name__ == "__main__":
    main()
