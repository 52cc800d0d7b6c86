#!/usr/bin/python3
"""A strategy written in Python, run by Cohort's simulator on the demo scenario.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/custom_strategy.py [--rounds N]

FedAvg with a server-side trimmed mean in Flower's round shape (configure_train /
aggregate_train), against 20 heterogeneous clients training the config's C++ MLP (pass
--python-clients to train them with examples/python/fmnist_torch.py's PyTorch client instead).
The same object runs behind a real server with cohort.serve(config, strategy=...).
"""
import argparse
import os
import sys

import cohort

HERE = os.path.dirname(os.path.abspath(__file__))


class TrimmedFedAvg(cohort.RoundStrategy):
    """Each round: a fraction of the idle clients, each told its round number; the next model
    is the coordinate-wise trimmed mean of their models (beta cut at each end)."""

    name = "trimmed_fedavg"

    def __init__(self, beta=0.2, **kw):
        super().__init__(**kw)
        self.beta = beta

    def configure_train(self, server_round, parameters, idle_clients):
        picks = super().configure_train(server_round, parameters, idle_clients)
        return [(cid, {"server_round": server_round}) for cid in picks]

    def aggregate_train(self, server_round, results, failures):
        if not results:
            return None
        agg, info = cohort.robust_aggregate("trimmed_mean", [r.parameters for r in results],
                                            params={"beta": self.beta})
        loss = sum(r.metrics.get("train_loss", 0.0) * r.num_examples for r in results) / \
            sum(r.num_examples for r in results)
        self.host.emit({"event": "trimmed_round", "round": server_round, "train_loss": loss,
                        "lost": len(failures)})
        return agg


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=os.path.join(HERE, "..", "fedavg_fmnist.yaml"))
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--python-clients", action="store_true")
    ap.add_argument("--out", default="")
    a = ap.parse_args(argv)
    client_fn = None
    if a.python_clients:
        sys.path.insert(0, HERE)
        import fmnist_torch
        client_fn = lambda ctx: fmnist_torch.TorchClient(ctx, "mlp")  # noqa: E731
    s = cohort.simulate(a.config, client_fn, overrides=[f"run.rounds={a.rounds}"], out=a.out,
                        strategy=TrimmedFedAvg(beta=0.2, fraction=0.5, min_clients=5))
    print(f"{s['strategy']}: {s['rounds']} rounds, final accuracy {s['final_accuracy']:.4f}, "
          f"virtual time {s['virtual_time_s']:.1f} s, wall {s['wall_time_s']:.1f} s")


if __name__ == "__main__":
    main()
