"""Cohort from Python: federated and low-communication learning with a C++ core.

The three things this module does (README.md, "Python"):

* ``simulate(config, client_fn=...)`` runs Cohort's simulator (virtual clock, device models,
  every registered strategy, codec, robust rule and privacy setting, by the config's names)
  with clients written in Python the way Flower's NumPyClient is written: ``fit``,
  ``evaluate`` and ``get_parameters`` on lists or dicts of numpy arrays.
* ``StrategyRound`` and ``aggregate`` apply a registered strategy's server side to
  results given by hand; ``robust_aggregate`` a robust rule (Krum, median, trimmed mean, ...)
  to a list of updates; ``Codec`` encodes and decodes with a codec chain. They run the C++
  code, so results equal the C++ ones bit for bit.
* Errors: bad input (wrong shape or dtype, NaN, non-contiguous arrays, unknown names) raises
  ``ValueError`` / ``TypeError`` naming what was wrong; other failures ``RuntimeError``.
"""

import functools
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._cohort import Codec, StrategyHost, StrategyRound, robust_aggregate, robust_rules
from ._cohort import simulate as _simulate
from .strategy import FitResult, RoundStrategy, Strategy

try:
    from ._cohort import join as _join
    from ._cohort import serve as _serve
except ImportError:  # built without the gRPC deployment (COHORT_WITH_GRPC=OFF)
    _join = _serve = None

__all__ = ["ClientContext", "NumPyClient", "simulate", "aggregate", "StrategyRound", "Codec",
           "robust_aggregate", "robust_rules", "Strategy", "RoundStrategy", "FitResult",
           "StrategyHost", "join", "serve"]

Parameters = Union[List[np.ndarray], Dict[str, np.ndarray]]


class ClientContext:
    """What ``client_fn`` is given to make a client.

    ``cid``: the client's id (-1 for the server's test set); ``split``: "train", "holdout" or
    "test"; ``x`` / ``y``: the client's examples (float32, [n, *sample_shape]) and labels
    (int64, [n]), gathered on first use; ``num_classes``; ``dataset``: its name.
    Without a copy: ``data_x`` / ``data_y`` are read-only views of the whole dataset (shared
    with Cohort, and between worker processes) and ``indices`` the client's rows in them, so a
    client can gather each batch itself (``data_x[indices[batch]]``), as Cohort's C++ trainer
    does.
    """

    def __init__(self, cid, split, data_x, data_y, indices, num_classes, dataset):
        self.cid = cid
        self.split = split
        self.data_x = data_x
        self.data_y = data_y
        self.indices = indices
        self.num_classes = num_classes
        self.dataset = dataset

    @functools.cached_property
    def x(self) -> np.ndarray:
        return self.data_x[self.indices]

    @functools.cached_property
    def y(self) -> np.ndarray:
        return self.data_y[self.indices].astype(np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __repr__(self) -> str:
        return f"ClientContext(cid={self.cid}, split={self.split!r}, examples={len(self)})"


class NumPyClient:
    """A client in Flower's NumPyClient shape. Subclass it (or write any object with these
    methods) and return instances from the ``client_fn`` given to :func:`simulate`.

    ``parameters`` come as float32 numpy arrays (a list, or a dict of name -> array when
    ``get_parameters`` returned a dict), each call's own copy: a client may train in them in
    place (``torch.from_numpy`` shares their memory). Return float32, C-contiguous arrays of
    the same shapes.
    """

    def get_parameters(self, config: Dict[str, Any]) -> Parameters:
        """The initial model (called once, on the server's evaluation client; config has
        ``seed``)."""
        raise NotImplementedError

    def fit(self, parameters: Parameters, config: Dict[str, Any]) -> Tuple[Parameters, int, Dict[str, float]]:
        """Train ``config["local_steps"]`` steps with ``config["lr"]``, ``config["batch_size"]``
        (also ``optimizer``, ``momentum``, ``weight_decay``, ``prox_mu``, ``seed``, ``cid``
        and the strategy's task keys); return (parameters, num_examples, metrics), metrics
        with ``train_loss``."""
        raise NotImplementedError

    def evaluate(self, parameters: Parameters, config: Dict[str, Any]) -> Tuple[float, int, Dict[str, float]]:
        """Return (loss, num_examples, metrics) on this client's data, metrics with
        ``accuracy``."""
        raise NotImplementedError


def simulate(config: Union[str, "os.PathLike[str]", Dict[str, Any]],
             client_fn: Optional[Callable[[Any], Any]] = None,
             overrides: Sequence[str] = (),
             out: str = "",
             on_error: str = "raise",
             progress: bool = False,
             save_partition: bool = False,
             workers: int = -1,
             strategy: Optional["Strategy"] = None) -> Dict[str, Any]:
    """Runs one simulation and returns its summary (the fields of summary.json).

    ``config``: a YAML file (as ``cohort simulate`` takes) or a dict of the same keys.
    ``overrides``: ``"key.path=value"`` strings, like the CLI's ``--set``.
    ``client_fn(context)``: makes the client for a :class:`ClientContext` (its id, split and
    data). Without it the config's C++ model trains. A process makes each (client, split)'s
    client once and keeps it for the run.
    ``out``: an output directory (metrics.jsonl, summary.json, ...; ``cohort report`` reads
    it), empty for none; ``save_partition`` also writes its partition.json.
    ``workers``: Python worker processes that run the clients (forked when the run starts, so
    ``client_fn`` and its data need not be picklable; a client always runs in the same one).
    -1 (default): as many as the simulator's threads (``run.threads``, 0 = every core); 0 or 1:
    the clients run in this process, one at a time under the GIL (PyTorch releases it in its
    kernels). Results are the same either way.
    ``strategy``: a strategy written in Python (:class:`cohort.Strategy` or
    :class:`cohort.RoundStrategy`) run instead of the config's ``strategy:`` section.
    ``on_error``: "raise" (a client's exception stops the run and is raised here, naming the
    client) or "reject" (that update is rejected and counted; the run goes on).
    """
    return _simulate(config, client_fn, list(overrides), str(out), on_error, progress,
                     save_partition, workers, strategy)


def aggregate(results: Sequence[Tuple[Parameters, int]]) -> Parameters:
    """The example-weighted mean of ``results`` = [(parameters, num_examples), ...], computed
    by Cohort's FedAvg (the same fold, in the same order, bit for bit)."""
    if not results:
        raise ValueError("aggregate: no results")
    first = results[0][0]
    if isinstance(first, dict):
        zeros: Parameters = {k: np.zeros_like(np.asarray(v), dtype=np.float32) for k, v in first.items()}
    else:
        zeros = [np.zeros_like(np.asarray(v), dtype=np.float32) for v in first]
    s = StrategyRound("fedavg", zeros, [int(n) for _, n in results])
    # The model starts at 0, so FedAvg's new model (0 - mean of (0 - parameters)) is the mean.
    return s.round([(p, int(n)) for p, n in results])


def join(server: str, token: str, config: str, client_fn: Callable[[Any], Any],
         partition: str = "0/1", ca: str = "", insecure: bool = False,
         ssl_target_name: str = "", seed: int = 1, max_disconnected_s: float = 300.0,
         overrides: Sequence[str] = (), quiet: bool = False) -> Dict[str, int]:
    """Takes part in a ``cohort serve`` deployment with a Python client until the server says
    the run is over; returns the client's counts (tasks, accepted, rejected, ...).

    The same as ``cohort join --server SERVER --partition i/N CONFIG`` with the model in
    Python: ``config`` is the run's YAML (its ``data:`` and ``training:`` sections), the client
    trains on part ``partition`` ("i/N") of the data, ``client_fn(context)`` makes it (the
    NumPyClient shape of :func:`simulate`; its arrays must match the server's model: names,
    shapes and order). ``token`` is the bearer token the server's tokens file maps to a client
    id; ``ca`` the PEM file of the CA that signed the server's certificate (TLS), or
    ``insecure=True`` for a plaintext server. Cohort's client does the rest: reconnects with
    backoff, chunked streams, the run's codecs, heartbeats.
    """
    if _join is None:
        raise RuntimeError("cohort.join: this build has no gRPC deployment (COHORT_WITH_GRPC=OFF)")
    return _join(server, token, str(config), client_fn, partition, str(ca), insecure,
                 ssl_target_name, seed, max_disconnected_s, list(overrides), quiet)


def serve(config: str, strategy: Optional["Strategy"] = None, deploy: str = "",
          deploy_overrides: Sequence[str] = (), overrides: Sequence[str] = (),
          listen: str = "", tokens: str = "", cert: str = "", key: str = "",
          insecure: bool = False, out: str = "") -> Dict[str, Any]:
    """Runs a deployment server until the run's budget is reached, like ``cohort serve``
    (same config and deploy files, same flags: ``listen``, ``tokens``, ``cert``/``key`` or
    ``insecure``, ``out``), with the config's strategy or ``strategy``, one written in Python
    (:class:`cohort.Strategy` / :class:`cohort.RoundStrategy`). Prints
    ``listening on HOST:PORT`` once it accepts clients; returns {"strategy", "version"}."""
    if _serve is None:
        raise RuntimeError("cohort.serve: this build has no gRPC deployment (COHORT_WITH_GRPC=OFF)")
    return _serve(str(config), strategy, str(deploy), list(deploy_overrides), list(overrides),
                  listen, str(tokens), str(cert), str(key), insecure, str(out))
