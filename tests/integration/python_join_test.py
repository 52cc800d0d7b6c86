#!/usr/bin/python3
"""A Python client in a real deployment (issue 14): `cohort serve` with TLS, two `cohort join`
C++ clients and one client written in Python with PyTorch, joined through cohort.join().

    /usr/bin/python3 tests/integration/python_join_test.py COHORT_BINARY SOURCE_DIR [case ...]

The Python module is imported from the build tree next to COHORT_BINARY (BUILD/python).

Cases (default: all), each in a temporary directory of its own (kept and named on failure):

  mixed        hardening_test's synthetic 4-class task (chance 0.25, the C++ `mlp` with 32
               hidden units), FedAvg over all three clients per round: every process exits 0,
               the Python client's updates are accepted every round (its counts from join()),
               none is rejected, and the final accuracy is >= 0.6.
  bad_token    cohort.join() with a token the server does not know raises at once naming the
               refusal (UNAUTHENTICATED), and a wrong partition is a ValueError.
  python_server  cohort.serve() with a strategy written in Python (a cohort.RoundStrategy whose
               aggregate_train is a coordinate-wise median through cohort.robust_aggregate)
               and three `cohort join` C++ clients over TLS: every process exits 0, the run
               reaches its rounds, the summary names the Python strategy, accuracy >= 0.6.

Exit 0 when every selected case passes, 1 otherwise, 77 without python3-grpcio or the module.
"""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hardening_test as h  # noqa: E402  (exits 77 without python3-grpcio)
from hardening_test import Server, note  # noqa: E402

FEDAVG = "  name: fedavg\n  fraction: 1.0\n  min_clients: 3"
ROUNDS = 8

CLIENT = r'''
import json, sys
import numpy as np
import torch
import cohort

class MLP(torch.nn.Module):          # the server's `mlp` with hidden [32]: fc1, fc2
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(20, 32)
        self.fc2 = torch.nn.Linear(32, 4)
    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))

class Client(cohort.NumPyClient):
    def __init__(self, ctx):
        self.x, self.y = torch.from_numpy(ctx.x), torch.from_numpy(ctx.y)
        self.model = MLP()
    def get_parameters(self, config):
        return {k: v.detach().numpy().copy() for k, v in self.model.state_dict().items()}
    def fit(self, parameters, config):
        self.model.load_state_dict({k: torch.from_numpy(v) for k, v in parameters.items()})
        opt = torch.optim.SGD(self.model.parameters(), lr=config["lr"])
        g = torch.Generator().manual_seed(config["seed"] % (2 ** 63))
        for _ in range(config["local_steps"]):
            i = torch.randint(0, len(self.y), (config["batch_size"],), generator=g)
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(self.model(self.x[i]), self.y[i])
            loss.backward()
            opt.step()
        state = {k: v.detach().numpy() for k, v in self.model.state_dict().items()}
        return state, len(self.y), {"train_loss": float(loss)}
    def evaluate(self, parameters, config):
        return 0.0, len(self.y), {}

server, token, ca, config, partition = sys.argv[1:6]
stats = cohort.join(server, token, config, Client, partition=partition, ca=ca,
                    max_disconnected_s=60)
print(json.dumps(stats))
'''


def python_env(f):
    build = os.path.dirname(os.path.abspath(f.cohort))
    return {"PYTHONPATH": os.path.join(build, "python")}


def have_module(f):
    code = "import cohort; assert cohort._join is not None"
    return subprocess.run([sys.executable, "-c", code], env=dict(os.environ, **python_env(f)),
                          capture_output=True).returncode == 0


def mixed(f):
    toks = f.tokens(3)
    srv = Server(f, "mixed", h.train_config(ROUNDS, strategy=FEDAVG, eval_every=ROUNDS), tls=True)
    clients = [f.join(srv.address, k, 3, srv.config, stem=f"client{k}", tls=True) for k in range(2)]
    script = f.write("py_client.py", CLIENT)
    ca = os.path.join(f.certs(), "ca.pem")
    py = f.spawn([sys.executable, script, srv.address, toks[2], ca, srv.config, "2/3"], "pyclient",
                 env=python_env(f))
    codes = h.wait_exit(clients + [py, srv.proc], 240)
    f.require(all(c == 0 for c in codes), f"exit codes {codes} (clients, python client, server):\n"
              + h.tail(f.path("pyclient.err")) + h.tail(f.path("mixed.err")))
    with open(f.path("pyclient.out")) as fh:
        stats = json.loads(fh.read().strip().splitlines()[-1])
    s = srv.summary()
    f.require(s is not None, "no summary.json")
    note(f"python client {stats}; accuracy {s['final_accuracy']:.3f}, updates {s['updates']}, "
         f"rejected {s['rejected']}")
    f.check(stats["client_id"] == 2, f"python client id {stats['client_id']}")
    f.check(stats["accepted"] == ROUNDS and stats["rejected"] == 0,
            f"python client accepted {stats['accepted']} of {ROUNDS} rounds, rejected {stats['rejected']}")
    f.check(s["rejected"] == 0 and s["updates"] == 3 * ROUNDS, f"summary {s}")
    f.check(s["final_accuracy"] >= 0.6, f"final accuracy {s['final_accuracy']}")
    rounds = [e for e in srv.events() if e.get("event") == "round"]
    f.check(all("train_loss" in e.get("client_metrics", {}) for e in rounds),
            "a round event without the clients' train_loss")


def bad_token(f):
    f.tokens(3)
    srv = Server(f, "badtok", h.train_config(2, strategy=FEDAVG), tls=True)
    ca = os.path.join(f.certs(), "ca.pem")
    code = ("import cohort, sys, numpy as np\n"
            "class C(cohort.NumPyClient):\n"
            "    def __init__(self, ctx): pass\n"
            "    def get_parameters(self, config):\n"
            "        z = lambda *s: np.zeros(s, np.float32)\n"
            "        return {'fc1.weight': z(32, 20), 'fc1.bias': z(32), 'fc2.weight': z(4, 32),"
            " 'fc2.bias': z(4)}\n"
            "try:\n"
            "    cohort.join(sys.argv[1], 'not-a-token', sys.argv[3], C, ca=sys.argv[2],"
            " max_disconnected_s=20, quiet=True)\n"
            "except RuntimeError as e:\n"
            "    print('REFUSED', e)\n"
            "try:\n"
            "    cohort.join(sys.argv[1], 'x', sys.argv[3], lambda c: None, partition='3/3')\n"
            "except ValueError as e:\n"
            "    print('BADPART', e)\n")
    p = subprocess.run([sys.executable, "-c", code, srv.address, ca, srv.config], capture_output=True,
                       text=True, timeout=120, env=dict(os.environ, **python_env(f)))
    note(p.stdout.strip())
    f.check("REFUSED" in p.stdout and "UNAUTHENTICATED" in p.stdout, f"unknown token: {p.stdout} {p.stderr[-400:]}")
    f.check("BADPART" in p.stdout and "partition" in p.stdout, f"bad partition: {p.stdout}")
    srv.proc.kill()


SERVER = r'''
import sys
import cohort

class MedianRounds(cohort.RoundStrategy):
    name = "py_median"
    def aggregate_train(self, server_round, results, failures):
        agg, _ = cohort.robust_aggregate("median", [r.parameters for r in results])
        return agg

config, tokens, cert, key, out = sys.argv[1:6]
r = cohort.serve(config, strategy=MedianRounds(min_clients=3), listen="127.0.0.1:0",
                 tokens=tokens, cert=cert, key=key, out=out)
print("served", r["strategy"], r["version"], flush=True)
'''


def python_server(f):
    f.tokens(3)
    config = f.write("pyserver.yaml", h.train_config(ROUNDS, strategy=FEDAVG, eval_every=ROUNDS))
    script = f.write("py_server.py", SERVER)
    certs = f.certs()
    out = f.path("pyserver_out")
    srv = f.spawn([sys.executable, script, config, f.path("tokens.txt"),
                   os.path.join(certs, "server.pem"), os.path.join(certs, "server.key"), out],
                  "pyserver", env=python_env(f))
    address = None
    deadline = time.time() + 120
    while address is None and time.time() < deadline and srv.poll() is None:
        with open(f.path("pyserver.out")) as fh:
            m = re.search(r"^listening on 127\.0\.0\.1:(\d+)$", fh.read(), re.M)
        address = "127.0.0.1:" + m.group(1) if m else None
        time.sleep(0.05)
    f.require(address is not None, "the Python server did not print its port:\n" + h.tail(f.path("pyserver.err")))
    clients = [f.join(address, k, 3, config, stem=f"client{k}", tls=True) for k in range(3)]
    codes = h.wait_exit(clients + [srv], 240)
    f.require(all(c == 0 for c in codes), f"exit codes {codes} (clients, python server):\n"
              + h.tail(f.path("client0.err")) + h.tail(f.path("pyserver.err")))
    with open(f.path("pyserver.out")) as fh:
        served = fh.read()
    s = json.load(open(os.path.join(out, "summary.json")))
    note(f"{served.strip().splitlines()[-1]}; accuracy {s['final_accuracy']:.3f}, updates {s['updates']}")
    f.check(f"served py_median {ROUNDS}" in served, f"python server said: {served!r}")
    f.check(s["strategy"] == "py_median" and s["rounds"] == ROUNDS, f"summary {s}")
    f.check(s["final_accuracy"] >= 0.6, f"final accuracy {s['final_accuracy']}")


CASES = {"mixed": mixed, "bad_token": bad_token, "python_server": python_server}


if __name__ == "__main__":
    if len(sys.argv) >= 2:
        class _F:
            cohort = sys.argv[1]
        if not have_module(_F):
            print("SKIP: the cohort Python module with cohort.join is not built next to "
                  + sys.argv[1], file=sys.stderr)
            sys.exit(77)
    h.main_for_cases("python_join_test.py", "python_join_", CASES)
