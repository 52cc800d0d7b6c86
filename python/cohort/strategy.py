"""Strategies written in Python, run by Cohort's simulator (``simulate(..., strategy=...)``).

``Strategy`` is Cohort's event contract (docs/design/architecture.md): the runtime calls
``start``, ``on_client_idle``, ``on_update``, ``on_task_lost`` and ``on_timer``; the strategy
answers through its ``host`` (:class:`cohort.StrategyHost`): ``dispatch`` a task to an idle
client, ``commit`` the next global model, ``set_timer``, ``emit`` an event, draw from the run's
seeded ``random``/``sample``. Strategies do no I/O and read no clock but ``host.now()``, so a
run stays deterministic.

``RoundStrategy`` is Flower's round shape on top of it: override ``configure_train`` (which
clients train this round, with which config) and ``aggregate_train`` (the round's results to
the next model).

An update's ``delta`` follows Cohort's sign convention: start parameters minus end
parameters (a server step is ``w - lr * delta``). Raise ``ValueError`` in ``on_update`` to
reject an update (its message is the reason); any other exception stops the run and
``simulate()`` raises it.
"""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np


class Strategy:
    """The event contract. Subclass and override the events you need."""

    name: Optional[str] = None  # in metrics and reports; default: the class name

    def start(self, host, parameters) -> None:
        """Called once with the initial model (version 0) before any other event."""
        self.host = host

    def on_client_idle(self, cid: int) -> None:
        """A client joined, finished a task or came back online."""

    def on_update(self, update) -> None:
        """An update arrived: ``update.cid``, ``base_version``, ``delta`` (start - end, the
        model's arrays), ``num_examples``, ``local_steps``, ``metrics``."""

    def on_task_lost(self, cid: int, version: int) -> None:
        """A dispatched task will never return."""

    def on_timer(self, timer_id: int) -> None:
        """A timer set with ``host.set_timer`` fired."""


@dataclass
class FitResult:
    """One client's result in a round: its parameters after training (start - delta)."""
    cid: int
    parameters: Any
    num_examples: int
    metrics: Dict[str, float] = field(default_factory=dict)


def _apply(op, a, b):
    if isinstance(a, dict):
        return {k: op(a[k], b[k]) for k in a}
    return [op(x, y) for x, y in zip(a, b)]


class RoundStrategy(Strategy):
    """Synchronous rounds in Flower's shape.

    A round opens when at least ``min_clients`` clients are idle: ``configure_train`` picks
    its clients, each gets a task from the current model; when every one of them has replied
    or been lost, ``aggregate_train`` returns the next model (or None to keep the current one)
    and the next round opens. The default configure_train takes a ``fraction`` of the idle
    clients (at least ``min_clients``) drawn from the run's seeded stream; the default
    aggregate_train is FedAvg's example-weighted mean of the results.
    """

    def __init__(self, fraction: float = 1.0, min_clients: int = 1):
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction: must be in (0, 1], got {fraction}")
        if min_clients < 1:
            raise ValueError(f"min_clients: must be >= 1, got {min_clients}")
        self.fraction = fraction
        self.min_clients = min_clients
        self.server_round = 0
        self._open = None

    # ---- Flower's two methods -----------------------------------------------------------

    def configure_train(self, server_round: int, parameters, idle_clients: Sequence[int]
                        ) -> List[Union[int, Tuple[int, Dict[str, Any]]]]:
        """The round's clients: ids, or (id, config) pairs (config reaches the client's fit)."""
        k = max(self.min_clients, int(np.ceil(self.fraction * len(idle_clients))))
        return self.host.sample(list(idle_clients), min(k, len(idle_clients)))

    def aggregate_train(self, server_round: int, results: List[FitResult], failures: List[int]):
        """The next model from the round's results (None keeps the current model)."""
        if not results:
            return None
        total = float(sum(r.num_examples for r in results))
        first = results[0].parameters
        keys = list(first) if isinstance(first, dict) else range(len(first))
        out = {} if isinstance(first, dict) else [None] * len(first)
        for k in keys:
            acc = np.zeros(np.shape(first[k]), np.float64)
            for r in results:
                acc += (r.num_examples / total) * r.parameters[k]
            out[k] = acc.astype(np.float32)
        return out

    # ---- the machinery on the event contract ---------------------------------------------

    def start(self, host, parameters) -> None:
        super().start(host, parameters)
        self._maybe_open()

    def on_client_idle(self, cid: int) -> None:
        self._maybe_open()

    def on_update(self, update) -> None:
        o = self._open
        if o is None or update.cid not in o["expected"] or update.base_version != o["version"]:
            raise ValueError(f"update from client {update.cid} for version {update.base_version} "
                             f"is not part of the open round")
        o["expected"].discard(update.cid)
        params = _apply(lambda s, d: (s - d).astype(np.float32), o["start"], update.delta)
        o["results"].append(FitResult(update.cid, params, update.num_examples, dict(update.metrics)))
        self._maybe_close()

    def on_task_lost(self, cid: int, version: int) -> None:
        o = self._open
        if o is not None and cid in o["expected"] and version == o["version"]:
            o["expected"].discard(cid)
            o["failures"].append(cid)
            self._maybe_close()

    def _maybe_open(self) -> None:
        if self._open is not None:
            return
        idle = self.host.idle_clients()
        if len(idle) < self.min_clients:
            return
        self.server_round += 1
        picks = self.configure_train(self.server_round, self.host.model, idle)
        start = _apply(lambda a, b: np.array(a, copy=True), self.host.model, self.host.model)
        self._open = {"expected": set(), "results": [], "failures": [], "start": start,
                      "version": self.host.version}
        for p in picks:
            cid, config = (p, None) if isinstance(p, (int, np.integer)) else p
            self.host.dispatch(int(cid), config=config)
            self._open["expected"].add(int(cid))
        if not self._open["expected"]:
            raise ValueError(f"configure_train chose no client in round {self.server_round}")

    def _maybe_close(self) -> None:
        o = self._open
        if o is None or o["expected"]:
            return
        self._open = None
        new = self.aggregate_train(self.server_round, o["results"], o["failures"])
        self.host.emit({"event": "round", "strategy": self.name or type(self).__name__,
                        "round": self.server_round, "received": len(o["results"]),
                        "lost": len(o["failures"])})
        if new is not None:
            self.host.commit(new)
        self._maybe_open()
