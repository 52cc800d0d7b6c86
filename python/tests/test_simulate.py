"""The C++ simulator driving Python clients (Flower's NumPyClient shape): learning,
determinism, strategies and codecs by name, and bad clients."""
import json
import os

import numpy as np
import pytest

import cohort


def config(**run):
    return {
        "data": {"dataset": "synthetic", "partition": "dirichlet", "alpha": 1.0,
                 "synthetic": {"num_examples": 1200, "test_examples": 300, "dim": 8,
                               "classes": 3, "separation": 3.0}},
        "clients": {"count": 6},
        "training": {"lr": 0.1, "batch_size": 16, "local_steps": 10},
        "strategy": {"name": "fedavg"},
        "run": dict({"rounds": 5, "eval_every": 1, "seed": 3}, **run),
    }


class LogReg(cohort.NumPyClient):
    """Softmax regression in numpy, trained with plain SGD."""

    def __init__(self, ctx):
        self.cid = ctx.cid
        self.x = ctx.x.reshape(len(ctx.x), -1).astype(np.float32)
        self.y = ctx.y
        self.k = ctx.num_classes
        self.calls = 0

    def get_parameters(self, config):
        return {"w": np.zeros((self.k, self.x.shape[1]), np.float32),
                "b": np.zeros(self.k, np.float32)}

    def _loss_grad(self, w, b, x, y):
        z = x @ w.T + b
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        loss = -np.log(p[np.arange(len(y)), y] + 1e-12).mean()
        p[np.arange(len(y)), y] -= 1
        p /= len(y)
        return loss, p.T @ x, p.sum(axis=0)

    def fit(self, parameters, config):
        self.calls += 1
        w = parameters["w"].copy()
        b = parameters["b"].copy()
        rng = np.random.default_rng(config["seed"])
        losses = []
        for _ in range(config["local_steps"]):
            i = rng.integers(0, len(self.y), config["batch_size"])
            loss, gw, gb = self._loss_grad(w, b, self.x[i], self.y[i])
            w -= np.float32(config["lr"]) * gw.astype(np.float32)
            b -= np.float32(config["lr"]) * gb.astype(np.float32)
            losses.append(loss)
        return {"w": w, "b": b}, len(self.y), {"train_loss": float(np.mean(losses))}

    def evaluate(self, parameters, config):
        w, b = parameters["w"], parameters["b"]
        loss, _, _ = self._loss_grad(w, b, self.x, self.y)
        acc = float(((self.x @ w.T + b).argmax(axis=1) == self.y).mean())
        return float(loss), len(self.y), {"accuracy": acc}


def test_python_clients_learn_and_write_the_usual_outputs(tmp_path):
    contexts = []

    def client_fn(ctx):
        contexts.append((ctx.cid, ctx.split, ctx.x.shape, ctx.y.dtype))
        return LogReg(ctx)

    # In this process (workers=0), so that client_fn's calls are seen here.
    s = cohort.simulate(config(), client_fn, out=str(tmp_path), workers=0)
    assert s["strategy"] == "fedavg"
    assert s["rounds"] == 5
    assert s["final_accuracy"] > 0.8, s
    assert s["rejected"] == 0
    # The server's evaluation client, then one client per training client, made once each.
    assert contexts[0][:2] == (-1, "test")
    train = sorted(c for c, split, _, _ in contexts if split == "train")
    assert train == sorted(set(train)) and set(train) <= set(range(6)) and len(train) >= 3
    assert all(shape[1:] == (8,) and dt == np.int64 for _, _, shape, dt in contexts)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["event"] == "summary"
    assert json.loads((tmp_path / "summary.json").read_text())["model_hash"] == s["model_hash"]


def test_same_seed_same_model_whatever_the_thread_count():
    a = cohort.simulate(config(threads=1), LogReg)
    b = cohort.simulate(config(threads=2), LogReg)
    assert a["model_hash"] == b["model_hash"]
    c = cohort.simulate(config(threads=2, seed=4), LogReg)
    assert c["model_hash"] != a["model_hash"]


def test_strategies_codecs_and_overrides_by_name():
    s = cohort.simulate(config(), LogReg,
                        overrides=["strategy.name=fedbuff", "strategy.buffer_size=3",
                                   "compression.uplink=int8", "run.rounds=6"])
    assert s["strategy"] == "fedbuff"
    assert s["final_accuracy"] > 0.75, s
    assert s["bytes_up"] > 0


def test_a_raising_client_stops_the_run_with_its_error():
    class Broken(LogReg):
        def fit(self, parameters, config):
            if self.cid == 2:
                return 1 / 0
            return super().fit(parameters, config)

    with pytest.raises(RuntimeError, match=r"client 2.*ZeroDivisionError"):
        cohort.simulate(config(), Broken, overrides=["strategy.fraction=1.0"])


def test_on_error_reject_goes_on_without_the_bad_updates():
    class Bad(LogReg):
        def fit(self, parameters, config):
            p, n, m = super().fit(parameters, config)
            if self.cid == 1:
                raise ValueError("disk full")
            if self.cid == 4:
                p["w"][0, 0] = np.nan
            return p, n, m

    s = cohort.simulate(config(), Bad, overrides=["strategy.fraction=1.0"], on_error="reject")
    assert s["rounds"] == 5
    assert s["rejected"] == 10  # clients 1 and 4, every round
    assert s["final_accuracy"] > 0.7, s


def test_bad_output_is_named():
    class WrongShape(LogReg):
        def fit(self, parameters, config):
            p, n, m = super().fit(parameters, config)
            p["b"] = np.zeros(5, np.float32)
            return p, n, m

    with pytest.raises(RuntimeError, match=r"array 'b' has shape \[5\], the model's is \[3\]"):
        cohort.simulate(config(), WrongShape)

    class NotATuple(LogReg):
        def fit(self, parameters, config):
            return parameters

    with pytest.raises(RuntimeError, match=r"must return \(parameters, num_examples, metrics\)"):
        cohort.simulate(config(), NotATuple)


def test_bad_config_is_named():
    with pytest.raises(ValueError, match="strategy.fractoin"):
        cohort.simulate(config(), LogReg, overrides=["strategy.fractoin=0.5"])
    with pytest.raises(ValueError, match="on_error"):
        cohort.simulate(config(), LogReg, on_error="ignore")
    with pytest.raises(TypeError, match="client_fn"):
        cohort.simulate(config(), client_fn=42)


def test_worker_processes_give_the_in_process_result():
    a = cohort.simulate(config(), LogReg, workers=0)
    b = cohort.simulate(config(), LogReg, workers=2)
    c = cohort.simulate(config(threads=1), LogReg, workers=3)
    assert a["model_hash"] == b["model_hash"] == c["model_hash"]


def test_a_dead_worker_process_is_named():
    class Dies(LogReg):
        def fit(self, parameters, config):
            if self.cid == 3:
                os._exit(7)
            return super().fit(parameters, config)

    with pytest.raises(RuntimeError, match=r"Python worker process \d \(pid \d+\) exited with status 7"):
        cohort.simulate(config(), Dies, overrides=["strategy.fraction=1.0"], workers=2)


@pytest.mark.parametrize("workers", [0, 2])
def test_scaffold_is_refused_for_python_clients(workers):
    with pytest.raises(ValueError, match="gradient correction \\(SCAFFOLD\\)"):
        cohort.simulate(config(), LogReg, overrides=["strategy.name=scaffold"], workers=workers)


def test_ctrl_c_stops_the_run_early_and_raises_keyboard_interrupt(tmp_path):
    import signal
    import subprocess
    import sys
    import time
    here = os.path.dirname(os.path.abspath(__file__))
    code = ("import sys; sys.path.insert(0, %r)\n"
            "import cohort\n"
            "from test_simulate import LogReg, config\n"
            "print('started', flush=True)\n"
            "try:\n"
            "    cohort.simulate(config(rounds=100000), LogReg, out=%r)\n"
            "except KeyboardInterrupt as e:\n"
            "    print('interrupted', e, flush=True)\n" % (here, str(tmp_path / "run")))
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                         env=dict(os.environ))
    assert p.stdout.readline().strip() == "started"
    deadline = time.time() + 60
    while not (tmp_path / "run" / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=120)
    assert "interrupted simulation stopped early" in out, out
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert 0 < s["rounds"] < 100000
