"""Strategies written in Python, run by the C++ simulator: Flower's round shape and the raw
event contract, with hand-checkable behaviour and bad strategies."""
import numpy as np
import pytest

import cohort
from test_simulate import LogReg, config


def test_round_strategy_default_is_fedavg_and_learns():
    seen = []

    class Rounds(cohort.RoundStrategy):
        name = "py_fedavg"

        def aggregate_train(self, server_round, results, failures):
            seen.append((server_round, sorted(r.cid for r in results), failures))
            return super().aggregate_train(server_round, results, failures)

    s = cohort.simulate(config(), LogReg, strategy=Rounds(fraction=0.5, min_clients=2))
    assert s["strategy"] == "py_fedavg"
    assert s["rounds"] == 5
    assert s["final_accuracy"] > 0.8, s
    assert [r for r, _, _ in seen] == [1, 2, 3, 4, 5]
    assert all(len(c) == 3 for _, c, _ in seen)  # half of 6 clients per round
    # Seeded: the same run again samples the same clients and ends at the same model.
    seen_before = list(seen)
    seen.clear()
    t = cohort.simulate(config(), LogReg, strategy=Rounds(fraction=0.5, min_clients=2))
    assert t["model_hash"] == s["model_hash"] and seen == seen_before


def test_results_are_the_clients_parameters():
    class Check(cohort.RoundStrategy):
        def aggregate_train(self, server_round, results, failures):
            # A client's parameters after training are start - delta: finite, the model's shapes.
            for r in results:
                assert set(r.parameters) == {"w", "b"} and r.parameters["w"].shape == (3, 8)
                assert r.num_examples > 0 and "train_loss" in r.metrics
            # Keep only the first client's model: the run follows that client.
            return results[0].parameters

    s = cohort.simulate(config(rounds=3), LogReg, strategy=Check())
    assert s["rounds"] == 3


def test_event_level_async_strategy_by_hand():
    """FedAsync with a constant mixing weight, on the raw event contract."""

    class Async(cohort.Strategy):
        name = "py_async"

        def start(self, host, parameters):
            super().start(host, parameters)
            self.updates = 0
            for c in host.idle_clients():
                host.dispatch(c)

        def on_client_idle(self, cid):
            self.host.dispatch(cid)

        def on_update(self, u):
            m = self.host.model
            self.host.commit({k: m[k] - 0.5 * u.delta[k] for k in m})
            self.updates += 1

    strat = Async()
    s = cohort.simulate(config(rounds=12), LogReg, strategy=strat)
    assert s["strategy"] == "py_async"
    assert s["rounds"] == 12 and strat.updates == 12
    assert s["final_accuracy"] > 0.6


def test_a_strategy_rejects_updates_with_value_error():
    class Picky(cohort.RoundStrategy):
        def on_update(self, u):
            if u.cid == 0:
                self.on_task_lost(u.cid, u.base_version)  # the round does not wait for it
                raise ValueError("client 0 is not trusted")
            super().on_update(u)

    s = cohort.simulate(config(), LogReg, strategy=Picky(), overrides=["run.rounds=4"])
    assert s["rounds"] == 4 and s["rejected"] == 4


def test_a_broken_strategy_stops_the_run_with_its_error():
    class Broken(cohort.Strategy):
        def on_client_idle(self, cid):
            raise KeyError("oops")

        def start(self, host, parameters):
            super().start(host, parameters)
            self.on_client_idle(0)

    with pytest.raises(RuntimeError, match=r"Broken.start raised KeyError: 'oops'"):
        cohort.simulate(config(), LogReg, strategy=Broken())

    class Misuse(cohort.Strategy):
        def start(self, host, parameters):
            super().start(host, parameters)
            host.dispatch(0)
            host.dispatch(0)  # no longer idle

    with pytest.raises(RuntimeError, match="dispatch: client 0 is not idle"):
        cohort.simulate(config(), LogReg, strategy=Misuse())

    class WrongModel(cohort.RoundStrategy):
        def aggregate_train(self, server_round, results, failures):
            return {"w": np.zeros((3, 8), np.float32)}  # "b" missing

    with pytest.raises(RuntimeError, match="commit\\(\\): 1 arrays, the model has 2"):
        cohort.simulate(config(), LogReg, strategy=WrongModel())


def test_python_strategy_with_python_clients_in_this_process():
    # The strategy's commit evaluates the model with the clients of this process: the host
    # gives the GIL up meanwhile (it would wait for itself otherwise).
    s = cohort.simulate(config(rounds=3), LogReg, strategy=cohort.RoundStrategy(), workers=0)
    t = cohort.simulate(config(rounds=3, threads=1), LogReg, strategy=cohort.RoundStrategy(),
                        workers=2)
    assert s["rounds"] == 3 and s["model_hash"] == t["model_hash"]
