#!/usr/bin/python3
"""Plain sequential PyTorch FedAvg: the baseline `make bench` compares Cohort against.

Usage:
  /usr/bin/python3 bench/fedavg_pytorch_baseline.py --run-dir DIR [--target 0.8]
      [--max-rounds R] [--threads T] [--quiet]

Reads DIR/config.json and DIR/partition.json written by
`cohort simulate CONFIG --out DIR --save-partition` and replays the same FedAvg run the way a
Python framework user would write it: one process, clients trained one after the other, a
state_dict copy per client, state dicts averaged on the server. Same semantics as Cohort:
  - each round samples m = max(min_clients, ceil(fraction * N)) clients uniformly without
    replacement;
  - each sampled client trains from the global model for local_steps steps (if > 0) or
    max(1, ceil(local_epochs * n_k / batch_size)) steps of SGD (fresh optimizer per task),
    minibatches drawn from a per-task random permutation re-drawn at every pass, the last
    partial batch of a pass used as is, cross-entropy loss;
  - new global = sum_k n_k w_k / sum_k n_k over the sampled clients (times server_lr on the
    pseudo-gradient when the config sets it);
  - evaluation on the test set at round 0, every eval_every rounds, and after the last round.
The RNG streams differ from Cohort's (same distributions, different draws).

Wall time starts after data loading and partitioning, before the model is built and the
round-0 evaluation, like Cohort's wall_time_s (which starts when the simulator starts), and
includes every evaluation. The run stops at the first evaluation reaching the target or after
run.rounds (or --max-rounds) rounds.

Prints one JSON line on stdout:
  {"impl": "pytorch-sequential", "rounds_to_target", "wall_time_to_target_s",
   "final_accuracy", "rounds", "wall_time_s", "torch_threads", "blas", "target",
   "eval": [[round, accuracy, wall_time_s], ...]}
(rounds_to_target / wall_time_to_target_s are null when the target is never reached).
Progress goes to stderr. Exit code 2 for bad input (missing file, unsupported config).
"""

import argparse
import copy
import gzip
import json
import math
import os
import sys
import time

import numpy as np


class InputError(Exception):
    pass


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run-dir", required=True, help="Cohort run dir (config.json, partition.json)")
    p.add_argument("--target", type=float, default=0.8, help="target test accuracy (default 0.8)")
    p.add_argument("--max-rounds", type=int, default=0,
                   help="stop after this many rounds (default: config run.rounds)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch intra-op threads (default 0 = all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p.parse_args(argv)


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise InputError(f"{path}: not found")
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: invalid JSON: {e}")


def get(cfg, path, default=None, required=False):
    node = cfg
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            if required:
                raise InputError(f"config.json: missing key {path}")
            return default
        node = node[key]
    return node


# ---------------------------------------------------------------------------------------------
# Data


def read_idx(path, magic, header_len):
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise InputError(f"{path}: not found (Debian package dataset-fashion-mnist)")
    got = int.from_bytes(raw[0:4], "big")
    if got != magic:
        raise InputError(f"{path}: bad IDX magic {got:#x}, expected {magic:#x}")
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range((magic & 0xFF))]
    data = np.frombuffer(raw, dtype=np.uint8, offset=header_len)
    if data.size != int(np.prod(dims)):
        raise InputError(f"{path}: {data.size} bytes of data, header says {dims}")
    return data.reshape(dims)


def load_fashion_mnist(path, split, limit):
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(os.path.join(path, f"{prefix}-images-idx3-ubyte.gz"), 0x803, 16)
    labels = read_idx(os.path.join(path, f"{prefix}-labels-idx1-ubyte.gz"), 0x801, 8)
    if limit and limit > 0:
        images, labels = images[:limit], labels[:limit]
    x = (images.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    y = labels.astype(np.int64)
    return x, y


# ---------------------------------------------------------------------------------------------
# Models (PyTorch default initialisation)


def make_model(torch, name, hidden, num_classes=10):
    nn = torch.nn

    if name == "logreg":
        class LogReg(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(784, num_classes)

            def forward(self, x):
                return self.fc(torch.flatten(x, 1))
        return LogReg()

    if name == "mlp":
        class MLP(nn.Module):
            def __init__(self):
                super().__init__()
                sizes = [784] + list(hidden) + [num_classes]
                for i in range(len(sizes) - 1):
                    setattr(self, f"fc{i + 1}", nn.Linear(sizes[i], sizes[i + 1]))
                self.layers = len(sizes) - 1

            def forward(self, x):
                x = torch.flatten(x, 1)
                for i in range(1, self.layers + 1):
                    x = getattr(self, f"fc{i}")(x)
                    if i < self.layers:
                        x = torch.relu(x)
                return x
        return MLP()

    if name == "cnn":
        class CNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
                self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
                self.fc1 = nn.Linear(64 * 7 * 7, 512)
                self.fc2 = nn.Linear(512, num_classes)

            def forward(self, x):
                x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
                x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
                x = torch.relu(self.fc1(torch.flatten(x, 1)))
                return self.fc2(x)
        return CNN()

    raise InputError(f"config.json: model.name: unsupported model '{name}' (known: logreg, mlp, cnn)")


# ---------------------------------------------------------------------------------------------
# FedAvg


def local_steps(training, n_k):
    steps = int(training.get("local_steps", 0) or 0)
    if steps > 0:
        return steps
    epochs = float(training.get("local_epochs", 1.0))
    return max(1, math.ceil(epochs * n_k / int(training["batch_size"])))


def train_client(torch, global_model, x, y, steps, training, gen):
    model = copy.deepcopy(global_model)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=float(training["lr"]),
                          momentum=float(training.get("momentum", 0.0)),
                          weight_decay=float(training.get("weight_decay", 0.0)))
    n = x.shape[0]
    bs = int(training["batch_size"])
    perm, pos = torch.randperm(n, generator=gen), 0
    for _ in range(steps):
        if pos >= n:
            perm, pos = torch.randperm(n, generator=gen), 0
        idx = perm[pos:pos + bs]
        pos += bs
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def average(states, weights):
    total = float(sum(weights))
    return {key: sum(s[key] * w for s, w in zip(states, weights)) / total for key in states[0]}


def evaluate(torch, model, x, y, batch=1000):
    model.eval()
    correct, loss_sum = 0, 0.0
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            out = model(x[i:i + batch])
            loss_sum += torch.nn.functional.cross_entropy(out, y[i:i + batch], reduction="sum").item()
            correct += (out.argmax(1) == y[i:i + batch]).sum().item()
    n = x.shape[0]
    return correct / n, loss_sum / n


def mapped_blas():
    """The BLAS shared objects this process has mapped (resolved through the alternatives)."""
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 6 and ("blas" in parts[5] or "mkl" in parts[5]):
                    libs.add(os.path.realpath(parts[5]))
    except OSError:
        return "unknown"
    return ",".join(sorted(libs)) or "none"


def run(args):
    cfg = read_json(os.path.join(args.run_dir, "config.json"))
    part = read_json(os.path.join(args.run_dir, "partition.json"))
    if not isinstance(part, dict) or not isinstance(part.get("clients"), list):
        raise InputError(f"{args.run_dir}/partition.json: expected {{\"clients\": [[...], ...]}}")

    dataset = get(cfg, "data.dataset", "fashion-mnist")
    if dataset != "fashion-mnist":
        raise InputError(f"config.json: data.dataset: baseline supports only fashion-mnist, got '{dataset}'")
    strategy = get(cfg, "strategy", {}, required=True)
    if strategy.get("name") != "fedavg":
        raise InputError(f"config.json: strategy.name: baseline implements fedavg only, got '{strategy.get('name')}'")
    if float(strategy.get("round_deadline_s", 0) or 0) > 0:
        raise InputError("config.json: strategy.round_deadline_s: deadlines are not replicated by the baseline")
    training = get(cfg, "training", required=True)
    if training.get("optimizer", "sgd") != "sgd":
        raise InputError(f"config.json: training.optimizer: only sgd, got '{training.get('optimizer')}'")
    for key in ("lr", "batch_size"):
        get(cfg, "training." + key, required=True)

    fraction = float(strategy.get("fraction", 1.0))
    min_clients = int(strategy.get("min_clients", 1))
    server_lr = float(strategy.get("server_lr", 1.0))
    seed = int(get(cfg, "run.seed", 1))
    eval_every = max(1, int(get(cfg, "run.eval_every", 1)))
    max_rounds = args.max_rounds if args.max_rounds > 0 else int(get(cfg, "run.rounds", 0))
    if max_rounds <= 0:
        raise InputError("config.json: run.rounds is 0 (no limit): pass --max-rounds")

    threads = args.threads if args.threads > 0 else (len(os.sched_getaffinity(0)) or 1)
    # Cohort's set_torch_threads also sizes OpenBLAS's pool; do the same so --threads means
    # the same thing on both sides (must happen before torch loads OpenBLAS).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(threads))
    import torch
    torch.set_num_threads(threads)

    data_path = get(cfg, "data.path", "/usr/share/datasets/fashion-mnist")
    xtr, ytr = load_fashion_mnist(data_path, "train", int(get(cfg, "data.train_limit", 0) or 0))
    xte, yte = load_fashion_mnist(data_path, "test", int(get(cfg, "data.test_limit", 0) or 0))
    xtr, ytr = torch.from_numpy(xtr), torch.from_numpy(ytr)
    xte, yte = torch.from_numpy(xte), torch.from_numpy(yte)

    clients = []
    for c, indices in enumerate(part["clients"]):
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size == 0:
            raise InputError(f"partition.json: client {c} has no examples")
        if idx.min() < 0 or idx.max() >= xtr.shape[0]:
            raise InputError(f"partition.json: client {c}: index out of range [0, {xtr.shape[0]})")
        t = torch.from_numpy(idx)
        clients.append((xtr[t], ytr[t]))
    n_clients = len(clients)
    if n_clients == 0:
        raise InputError("partition.json: no clients")
    per_round = min(n_clients, max(min_clients, math.ceil(fraction * n_clients)))

    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))

    # --- timed section: everything after data loading ---
    t0 = time.perf_counter()
    global_model = make_model(torch, get(cfg, "model.name", "mlp"), get(cfg, "model.hidden", [200, 200]))
    evals = []
    reached = None

    def do_eval(r):
        nonlocal reached
        acc, loss = evaluate(torch, global_model, xte, yte)
        wall = time.perf_counter() - t0
        evals.append([r, acc, wall])
        log(f"[baseline] round {r:4d}  accuracy {acc:.4f}  loss {loss:.4f}  wall {wall:8.2f}s")
        if reached is None and acc >= args.target:
            reached = (r, wall)

    do_eval(0)
    r = 0
    while reached is None and r < max_rounds:
        r += 1
        selected = rng.choice(n_clients, size=per_round, replace=False)
        states, weights = [], []
        for k in selected:
            x, y = clients[k]
            states.append(train_client(torch, global_model, x, y,
                                       local_steps(training, x.shape[0]), training, gen))
            weights.append(x.shape[0])
        avg = average(states, weights)
        if server_lr != 1.0:
            old = global_model.state_dict()
            avg = {k: (old[k] - server_lr * (old[k] - avg[k])).to(old[k].dtype) for k in avg}
        global_model.load_state_dict(avg)
        if r % eval_every == 0 or r == max_rounds:
            do_eval(r)
    wall_total = time.perf_counter() - t0

    return {
        "impl": "pytorch-sequential",
        "rounds_to_target": reached[0] if reached else None,
        "wall_time_to_target_s": reached[1] if reached else None,
        "final_accuracy": evals[-1][1],
        "rounds": r,
        "wall_time_s": wall_total,
        "torch_threads": torch.get_num_threads(),
        "blas": mapped_blas(),
        "target": args.target,
        "clients_per_round": per_round,
        "eval": evals,
    }


def main(argv):
    args = parse_args(argv)
    try:
        result = run(args)
    except InputError as e:
        print(f"fedavg_pytorch_baseline: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
