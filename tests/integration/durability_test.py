#!/usr/bin/python3
"""Issue 9, finding 4: acknowledged means durable. Reproduced from outside a real
`cohort serve --insecure --checkpoint-dir DIR` with gRPC clients of this file's own (the
helpers of hardening_test.py: Debian's python3-grpcio, not the project's client library).

    /usr/bin/python3 tests/integration/durability_test.py COHORT_BINARY SOURCE_DIR [SEED]

For FedBuff (buffer 3), FedAvg (2 clients a round) and FedCompass, one server lifetime after another is
killed with SIGKILL: at each crash point of the server (COHORT_TEST_CRASH_AT: after an update's
bytes are received, after it is folded into the strategy, before a checkpoint is written, after
it is written, after the acknowledgement is sent; each at a random hit) and at random times,
and restarted with --resume. Four client threads train through all of it (pull, download, push
a small delta), re-registering after each restart. Checked after every crash, on the newest
checkpoint on disk, and at the end:

- every update acknowledged as accepted (PushReply.accepted and .durable) is in the checkpoint:
  its client's `updates_accepted` and the run's `updates` are at least the acknowledgements;
- nothing is counted twice: a client's `updates_accepted` is at most the pushes it made whose
  outcome was not a rejection (acknowledged + unanswered because the server died);
- the aggregate agrees with the counters: FedBuff's version is updates // 3 (an update lost from
  the buffer or folded twice would break it); FedAvg's is at most updates // 2;
- a model version is never handed out with two different contents (a SHA-256 of every download,
  across every lifetime), and the checkpoint's model is the one handed out for its version;
- each resumed server says which version it resumed from, and the last run finishes.
Exit 0 on success, 1 on a failure (the files are kept and named), 77 without python3-grpcio.
"""
import array
import hashlib
import os
import random
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hardening_test as h  # noqa: E402  (exits 77 without python3-grpcio)
from hardening_test import Server, note, read_checkpoint, tail  # noqa: E402

import grpc  # noqa: E402

CRASH_POINTS = ("received", "folded", "checkpoint_write", "checkpoint_written", "acked")

CONFIG = """data:
  dataset: synthetic
  partition: iid
  synthetic: {{num_examples: 1200, test_examples: 200, dim: 20, classes: 4, separation: 3.0, noise: 1.0}}
model:
  name: mlp
  hidden: [16]
training:
  lr: 0.1
  batch_size: 32
  local_steps: 5
strategy:
{strategy}
run:
  rounds: {rounds}
  seed: 3
  threads: 1
"""

STRATEGIES = {
    "fedbuff": ("  name: fedbuff\n  buffer_size: 3\n", 3),
    "fedavg": ("  name: fedavg\n  min_clients: 2\n  fraction: 0.5\n", 2),
    "fedcompass": ("  name: fedcompass\n", 1),
}
CLIENTS = 4


class Ledger:
    """What the clients saw, across every server lifetime (thread-safe)."""

    def __init__(self):
        self.mu = threading.Lock()
        self.acked = [0] * CLIENTS       # accepted and durable
        self.unanswered = [0] * CLIENTS  # pushes whose outcome the crash hid
        self.rejected = [0] * CLIENTS
        self.not_durable = []            # accepted but durable = false: a bug with a checkpoint dir
        self.versions = {}               # version -> sha256 of the model handed out
        self.conflicts = []

    def saw_model(self, version, digest):
        with self.mu:
            old = self.versions.setdefault(version, digest)
            if old != digest:
                self.conflicts.append(version)


def client_loop(k, address, token, ledger, stop, rng):
    """Trains until the server goes away (or `stop`): returns why it ended."""
    c = None
    try:
        c = Client(address, token)
        c.register(300)
        while not stop.is_set():
            r = c.pull()
            if r is None:
                return "done"
            model = c.download()
            if model is None:
                continue
            ledger.saw_model(r.version, hashlib.sha256(model).hexdigest())
            delta = small(model, rng)
            hdr = h.pb.UpdateHeader(task_id=r.task_id, base_version=r.version, num_examples=300,
                                    local_steps=r.local_steps)
            hdr.metrics["train_loss"] = 0.5
            hdr.layout.CopyFrom(c.layout)
            try:
                reply = c.push(hdr, delta)
            except grpc.RpcError as e:
                if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED,
                                grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNKNOWN,
                                grpc.StatusCode.INTERNAL):
                    with ledger.mu:
                        ledger.unanswered[k] += 1
                    return f"push: {e.code().name}"
                with ledger.mu:  # rejected (e.g. the task was lost in a restart)
                    ledger.rejected[k] += 1
                continue
            with ledger.mu:
                if reply.accepted and reply.durable:
                    ledger.acked[k] += 1
                elif reply.accepted:
                    ledger.not_durable.append((k, r.task_id))
                else:
                    ledger.rejected[k] += 1
        return "stopped"
    except grpc.RpcError as e:
        return f"rpc: {e.code().name}"
    finally:
        if c is not None:
            c.close()


class Client:
    """A minimal Fleet client (one channel, bearer token)."""

    def __init__(self, address, token):
        self.channel = grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        self.md = [("authorization", "Bearer " + token)]
        pb = h.pb

        def unary(name, req, rep):
            return self.channel.unary_unary("/cohort.v1.Fleet/" + name, request_serializer=req.SerializeToString,
                                            response_deserializer=rep.FromString)

        self._register = unary("Register", pb.RegisterRequest, pb.RegisterReply)
        self._pull = unary("PullTask", pb.PullTaskRequest, pb.PullTaskReply)
        self._download = self.channel.unary_stream("/cohort.v1.Fleet/Download",
                                                   request_serializer=pb.DownloadRequest.SerializeToString,
                                                   response_deserializer=pb.TensorChunk.FromString)
        self._push = self.channel.stream_unary("/cohort.v1.Fleet/PushUpdate",
                                               request_serializer=pb.UpdateChunk.SerializeToString,
                                               response_deserializer=pb.PushReply.FromString)
        self.layout = None
        self.task = None

    def close(self):
        self.channel.close()

    def register(self, n):
        grpc.channel_ready_future(self.channel).result(timeout=20)
        self.layout = self._register(h.pb.RegisterRequest(num_examples=n, client_version="durability-test"),
                                     metadata=self.md, timeout=10).layout

    def pull(self):
        """The next TRAIN task, or None on DONE."""
        while True:
            r = self._pull(h.pb.PullTaskRequest(), metadata=self.md, timeout=10)
            if r.kind == h.pb.PullTaskReply.TRAIN:
                self.task = r
                return r
            if r.kind == h.pb.PullTaskReply.DONE:
                return None
            time.sleep(max(r.retry_after_s, 0.01))

    def download(self):
        buf = bytearray()
        try:
            for ch in self._download(h.pb.DownloadRequest(task_id=self.task.task_id, what=h.pb.DownloadRequest.MODEL),
                                     metadata=self.md, timeout=30):
                buf += ch.data
        except grpc.RpcError as e:
            if e.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                return None  # the task was withdrawn meanwhile
            raise
        return bytes(buf)

    def push(self, header, payload, chunk=64 << 10):
        def msgs():
            yield h.pb.UpdateChunk(header=header)
            for off in range(0, len(payload), chunk):
                yield h.pb.UpdateChunk(chunk=h.pb.TensorChunk(offset=off, data=payload[off:off + chunk],
                                                              total_bytes=len(payload)))
        return self._push(msgs(), metadata=self.md, timeout=60)


def small(model_bytes, rng):
    """1% of the weights with a little noise: an honest-looking update."""
    m = array.array("f")
    m.frombytes(model_bytes)
    d = array.array("f", (0.01 * v + rng.uniform(-1e-3, 1e-3) for v in m))
    return d.tobytes()


def newest_checkpoint(ckpt):
    """(manifest, model bytes) of the newest readable checkpoint in `ckpt`."""
    for name in ["checkpoint.cohort"] + [f"checkpoint.cohort.{n}" for n in range(1, 10)]:
        manifest, arrays = read_checkpoint(os.path.join(ckpt, name))
        if manifest is not None:
            model = arrays.get("model")
            return manifest, (model.tobytes() if model is not None else None)
    return None, None


def check_checkpoint(f, label, ckpt, ledger, per_commit, strategy):
    manifest, model = newest_checkpoint(ckpt)
    if manifest is None:
        f.check(sum(ledger.acked) == 0, f"{label}: no checkpoint on disk, but {sum(ledger.acked)} updates were acked")
        return None
    rt = manifest.get("runtime", {})
    version = manifest["version"]
    updates = rt.get("summary", {}).get("updates", 0)
    accepted = {c["id"]: c.get("stats", {}).get("updates_accepted", 0) for c in rt.get("clients", [])}
    with ledger.mu:
        acked, unanswered = list(ledger.acked), list(ledger.unanswered)
        digest = ledger.versions.get(version)
    note(f"{label}: checkpoint version {version}, updates {updates}, accepted per client "
         f"{[accepted.get(k, 0) for k in range(CLIENTS)]}; acked {acked}, unanswered {unanswered}")
    for k in range(CLIENTS):
        f.check(accepted.get(k, 0) >= acked[k],
                f"{label}: client {k}: {acked[k]} updates acknowledged as durable, the checkpoint "
                f"(version {version}) holds {accepted.get(k, 0)}: acknowledged updates were lost")
        f.check(accepted.get(k, 0) <= acked[k] + unanswered[k],
                f"{label}: client {k}: the checkpoint counts {accepted.get(k, 0)} accepted updates, but the "
                f"client had only {acked[k]} acknowledged + {unanswered[k]} unanswered pushes: counted twice")
    f.check(updates >= sum(acked), f"{label}: run updates {updates} < {sum(acked)} acknowledged")
    if strategy == "fedbuff":
        f.check(version == updates // per_commit,
                f"{label}: FedBuff at version {version} with {updates} accepted updates (buffer {per_commit}): "
                f"the aggregate and the counters disagree (an update lost or applied twice)")
    else:
        # A round closes with what arrived when a restart loses its other task: at least one.
        f.check(version <= updates,
                f"{label}: {strategy} at version {version} with only {updates} accepted updates")
    if digest is not None and model is not None:
        f.check(hashlib.sha256(model).hexdigest() == digest,
                f"{label}: the checkpoint's model of version {version} is not the one handed out for it")
    return version


def run_strategy(f, strategy, seed):
    rng = random.Random(seed)
    text, per_commit = STRATEGIES[strategy]
    toks = f.tokens(CLIENTS)
    ckpt = f.path(f"{strategy}_ckpt")
    os.makedirs(ckpt)
    ledger = Ledger()
    plan = [("point", p) for p in CRASH_POINTS] + [("random", None)] * 3 + [("final", None)]
    rounds = 100000
    resumed_from = None
    for life, (kind, point) in enumerate(plan):
        if kind == "final":
            # The last lifetime ends the run: a budget a few versions past where it stands.
            rounds = (resumed_from or 0) + 5
        env = {}
        if kind == "point":
            env["COHORT_TEST_CRASH_AT"] = f"{point}:{rng.randint(2, 8)}"
        has_ckpt = newest_checkpoint(ckpt)[0] is not None
        args = ["--checkpoint-dir", ckpt, "--no-eval"] + (["--resume"] if has_ckpt else [])
        stem = f"{strategy}_{life}_{point or kind}"
        srv = Server(f, stem, CONFIG.format(strategy=text, rounds=rounds), args=args, env=env)
        if has_ckpt:
            deadline = time.time() + 20
            while time.time() < deadline and not re.search(r"resumed from .* at version \d+", srv.stderr()):
                time.sleep(0.05)
            m = re.search(r"resumed from .* at version (\d+)", srv.stderr())
            f.require(m is not None, f"{stem}: the resumed server does not say where from:\n{tail(f.path(stem + '.err'))}")
            note(f"{stem}: resumed at version {m.group(1)}")
        stop = threading.Event()
        results = [None] * CLIENTS
        threads = []
        for k in range(CLIENTS):
            def body(k=k):
                results[k] = client_loop(k, srv.address, toks[k], ledger, stop, random.Random(seed * 100 + life * 10 + k))
            t = threading.Thread(target=body, daemon=True)
            t.start()
            threads.append(t)
        if kind == "point":
            rc = srv.wait(60)
            f.require(rc is not None, f"{stem}: COHORT_TEST_CRASH_AT={env['COHORT_TEST_CRASH_AT']} did not fire "
                      f"within 60 s:\n{tail(f.path(stem + '.err'))}")
            f.check(rc == -signal.SIGKILL, f"{stem}: the server exited with {rc}, expected SIGKILL")
        elif kind == "random":
            time.sleep(rng.uniform(0.5, 3.0))
            srv.proc.kill()
            srv.wait(20)
        else:
            rc = srv.wait(120)
            f.require(rc is not None, f"{stem}: the last run did not finish within 120 s")
            f.check(rc == 0, f"{stem}: cohort serve exited with {rc}:\n{tail(f.path(stem + '.err'))}")
        stop.set()
        for t in threads:
            t.join(60)
        note(f"{stem}: server ended ({srv.proc.returncode}); clients: {results}")
        resumed_from = check_checkpoint(f, stem, ckpt, ledger, per_commit, strategy)
    with ledger.mu:
        f.check(not ledger.conflicts, f"{strategy}: versions handed out with two different models: {ledger.conflicts}")
        f.check(not ledger.not_durable,
                f"{strategy}: updates acknowledged as accepted but not durable with a checkpoint directory: "
                f"{ledger.not_durable[:5]}")
        f.check(sum(ledger.acked) >= 10, f"{strategy}: only {sum(ledger.acked)} updates were acknowledged in all")
        note(f"{strategy}: {len(plan)} lifetimes, {sum(ledger.acked)} acknowledged updates, "
             f"{sum(ledger.unanswered)} unanswered, {sum(ledger.rejected)} rejected, "
             f"{len(ledger.versions)} versions seen")


def main():
    if len(sys.argv) < 3:
        print("usage: durability_test.py COHORT_BINARY SOURCE_DIR [SEED]", file=sys.stderr)
        sys.exit(2)
    cohort, src = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else int(os.environ.get("COHORT_TEST_SEED", "1"))
    cases = [(s, lambda f, s=s: run_strategy(f, s, seed)) for s in STRATEGIES]
    failed = h.run_cases("durability_", cohort, src, cases, f", seed {seed}")
    print(f"{len(STRATEGIES) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
