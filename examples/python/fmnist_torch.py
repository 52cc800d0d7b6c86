#!/usr/bin/python3
"""FedAvg on Fashion-MNIST with a PyTorch model written in Python, run by Cohort's simulator.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/fmnist_torch.py [--rounds N]
        [--model mlp|cnn] [--out DIR] [--set key=value ...]

The scenario is the demo's (examples/fedavg_fmnist.yaml: 20 clients with different speeds and
links, Dirichlet 0.5 label skew, half of them per round); only the clients are Python: each one
a NumPyClient-shaped object holding its partition as torch tensors and a PyTorch model. Any
strategy, codec or device setting of the config applies (--set strategy.name=fedbuff,
--set compression.uplink=int8, ...).
"""
import argparse
import os
import sys
import warnings

import numpy as np
import torch

import cohort

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.join(HERE, "..", "fedavg_fmnist.yaml")


def make_model(name):
    nn = torch.nn
    if name == "mlp":  # the FedAvg paper's "2NN", as the demo's C++ model
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 200), nn.ReLU(), nn.Linear(200, 200),
                             nn.ReLU(), nn.Linear(200, 10))
    if name == "cnn":
        return nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(64 * 7 * 7, 512), nn.ReLU(), nn.Linear(512, 10))
    raise ValueError(f"unknown model {name!r} (mlp, cnn)")


def shared(array):
    """A tensor over a read-only numpy view without a copy (the model never writes its input)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "The given NumPy array is not writable"
        return torch.from_numpy(array)


class TorchClient(cohort.NumPyClient):
    def __init__(self, ctx, model_name):
        # The whole dataset, shared with Cohort (no copy), and this client's rows in it: each
        # batch is gathered from them, as Cohort's C++ trainer does.
        self.data_x = shared(ctx.data_x)  # [N, 1, 28, 28] float32
        self.data_y = shared(ctx.data_y)  # [N] int32
        self.rows = torch.from_numpy(ctx.indices)
        self.model = make_model(model_name)
        self.model_name = model_name

    def _batch(self, rows):
        return self.data_x.index_select(0, rows), self.data_y.index_select(0, rows).long()

    def _load(self, parameters):
        # The arrays are this call's own copy: the model's tensors may share their memory.
        self.model.load_state_dict({k: torch.from_numpy(v) for k, v in parameters.items()})

    def _state(self):
        return {k: v.detach().numpy() for k, v in self.model.state_dict().items()}

    def get_parameters(self, config):
        torch.manual_seed(config["seed"])
        self.model = make_model(self.model_name)
        return {k: v.numpy().copy() for k, v in self.model.state_dict().items()}

    def fit(self, parameters, config):
        self._load(parameters)
        self.model.train()
        opt = torch.optim.SGD(self.model.parameters(), lr=config["lr"], momentum=config["momentum"],
                              weight_decay=config["weight_decay"], foreach=True)
        gen = torch.Generator().manual_seed(config["seed"] % (2 ** 63))
        n, bs, steps = len(self.rows), config["batch_size"], config["local_steps"]
        perm, pos, total = self.rows[torch.randperm(n, generator=gen)], 0, torch.zeros(())
        for _ in range(steps):
            if pos >= n:
                perm, pos = self.rows[torch.randperm(n, generator=gen)], 0
            x, y = self._batch(perm[pos:pos + bs])
            pos += bs
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(self.model(x), y)
            loss.backward()
            opt.step()
            total += loss.detach()
        return self._state(), n, {"train_loss": total.item() / max(1, steps)}

    def evaluate(self, parameters, config):
        self._load(parameters)
        self.model.eval()
        loss, correct, n = 0.0, 0, len(self.rows)
        with torch.no_grad():
            for i in range(0, n, 1000):
                x, y = self._batch(self.rows[i:i + 1000])
                out = self.model(x)
                loss += torch.nn.functional.cross_entropy(out, y, reduction="sum").item()
                correct += (out.argmax(1) == y).sum().item()
        return loss / n, n, {"accuracy": correct / n}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=CONFIG)
    ap.add_argument("--model", default="mlp", choices=["mlp", "cnn"])
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--out", default="")
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    a = ap.parse_args(argv)
    overrides = list(a.overrides) + ([f"run.rounds={a.rounds}"] if a.rounds else [])
    s = cohort.simulate(a.config, lambda ctx: TorchClient(ctx, a.model), overrides=overrides,
                        out=a.out, progress=sys.stderr.isatty())
    print(f"{s['strategy']}: {s['rounds']} rounds, final accuracy {s['final_accuracy']:.4f} "
          f"(best {s['best_accuracy']:.4f}), virtual time {s['virtual_time_s']:.1f} s, "
          f"wall {s['wall_time_s']:.1f} s, model {s['model_hash']}")
    return s


if __name__ == "__main__":
    main()
