#!/usr/bin/python3
"""A PyTorch client written in Python joining a `cohort serve` deployment next to C++ clients.

    # the server (C++ strategy from the config, TLS):
    build/cohort serve examples/fedavg_fmnist.yaml --tokens tokens.txt \
        --cert certs/server.pem --key certs/server.key --listen 127.0.0.1:7000 --out runs/served
    # C++ clients take parts 0..N-2, this one part N-1 (N = clients in tokens.txt):
    build/cohort join --server 127.0.0.1:7000 --token-file tok0 --ca certs/ca.pem \
        --partition 0/3 examples/fedavg_fmnist.yaml &
    PYTHONPATH=build/python /usr/bin/python3 examples/python/join_client.py \
        --server 127.0.0.1:7000 --token-file tok2 --ca certs/ca.pem --partition 2/3

(scripts/make-certs.sh DIR makes the certificates.) The model is the config's `mlp` written in
PyTorch with the C++ model's array names (fc1, fc2, fc3: weight then bias), so the server takes
its updates like any client's.
"""
import argparse
import os
import sys

import torch

import cohort

HERE = os.path.dirname(os.path.abspath(__file__))


class MLP(torch.nn.Module):
    """The demo's 784-200-200-10 MLP with the C++ model's names."""

    def __init__(self, hidden=(200, 200), classes=10):
        super().__init__()
        sizes = [784, *hidden, classes]
        self.layers = len(sizes) - 1
        for i in range(self.layers):
            setattr(self, f"fc{i + 1}", torch.nn.Linear(sizes[i], sizes[i + 1]))

    def forward(self, x):
        x = x.flatten(1)
        for i in range(1, self.layers + 1):
            x = getattr(self, f"fc{i}")(x)
            if i < self.layers:
                x = torch.relu(x)
        return x


class Client(cohort.NumPyClient):
    def __init__(self, ctx):
        self.x, self.y = torch.from_numpy(ctx.x), torch.from_numpy(ctx.y)
        self.model = MLP()

    def get_parameters(self, config):
        return {k: v.detach().numpy().copy() for k, v in self.model.state_dict().items()}

    def fit(self, parameters, config):
        self.model.load_state_dict({k: torch.from_numpy(v) for k, v in parameters.items()})
        opt = torch.optim.SGD(self.model.parameters(), lr=config["lr"], momentum=config["momentum"])
        g = torch.Generator().manual_seed(config["seed"] % (2 ** 63))
        n, bs = len(self.y), config["batch_size"]
        total = 0.0
        for _ in range(config["local_steps"]):
            i = torch.randint(0, n, (bs,), generator=g)
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(self.model(self.x[i]), self.y[i])
            loss.backward()
            opt.step()
            total += loss.item()
        state = {k: v.detach().numpy() for k, v in self.model.state_dict().items()}
        return state, n, {"train_loss": total / max(1, config["local_steps"])}

    def evaluate(self, parameters, config):
        return 0.0, len(self.y), {}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--ca", default="")
    ap.add_argument("--insecure", action="store_true")
    ap.add_argument("--partition", default="0/1")
    ap.add_argument("--config", default=os.path.join(HERE, "..", "fedavg_fmnist.yaml"))
    a = ap.parse_args(argv)
    with open(a.token_file) as f:
        token = f.read().strip()
    stats = cohort.join(a.server, token, a.config, Client, partition=a.partition, ca=a.ca,
                        insecure=a.insecure)
    print(stats)


if __name__ == "__main__":
    sys.exit(main())
