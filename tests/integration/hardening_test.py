#!/usr/bin/python3
"""Issue 9's findings, reproduced from outside a real `cohort serve --insecure` with a gRPC client
of this file's own (Debian's python3-grpcio + python3-protobuf, not the project's client
library), each asserted fixed.

    /usr/bin/python3 tests/integration/hardening_test.py COHORT_BINARY SOURCE_DIR [finding ...]

`finding` is 1, 2, 3, 4, 5 or 6 (default: all). Each finding has its own temporary directory and
servers, and every child process is killed when it ends; the files of a failed finding are kept
and named. Exit 0 when every selected finding passes, 1 otherwise, 77 without python3-grpcio.
As in python_client_test.py, the message classes come from `protoc --python_out` at test time
and the RPCs are plain grpc.Channel method handles. Honest clients are real `cohort join`
processes (synthetic 4-class data, chance = 0.25).

1. Poisoning by one valid token (FedBuff): (a) an update claiming 1e12 examples from a client
   that registered 50 is INVALID_ARGUMENT naming the examples bound; (b) a delta of 3e38 with 1
   example is rejected as the very first update the server sees, before the norm window is warm
   (early: the model stays finite and sane), and a finite delta of 1e4 per weight is rejected by
   the norm bound once the window is warm (main),
   with three honest `cohort join` clients training: the run completes, the final accuracy is
   well above chance, honest updates keep being accepted after the attack, the rejections are
   counted (metrics, summary, client stats), the checkpoint holds a sane model and `--resume`
   starts from it and reports its version.
2. Held push streams with --max-concurrent-pushes 2: the two streams (header and one chunk,
   then silence) are cancelled after deploy.stream_idle_timeout_s (set to 1.5 s with
   --deploy-set), a third concurrent stream of the same token is RESOURCE_EXHAUSTED
   (max_streams_per_client, default 2), and the honest clients finish the run long before the
   attacker would have let go of the streams.
3. Upload memory without --max-concurrent-pushes (a ~4.3 MB model): 100 held streams (10 tokens,
   max_streams_per_client raised to 10 with --deploy-set) that send the header and 1 KB each:
   server RSS growth stays below 3 x deploy.max_upload_bytes (set to ~4 models), far from
   100 x the model; streams beyond the budget are RESOURCE_EXHAUSTED naming
   deploy.max_upload_bytes, and an 11th stream of one token is RESOURCE_EXHAUSTED naming
   deploy.max_streams_per_client.
4. Durable acknowledgements: covered by durability_test.
5. Client-controlled strings and sizes: an array name holding "\\ncohort serve: run over
   (forged)" is rejected and never forges a log line (escaped); a 100 kB array name is rejected
   and logged truncated; 1000 metric keys, a 10 kB metric key, local_steps 10**9 are rejected;
   a stream of thousands of zero-length chunks is rejected at the first; 200 rapid ReportEval
   calls land at most one client_eval event per (client, version), the others ALREADY_EXISTS or
   RESOURCE_EXHAUSTED; 2000 concurrent Heartbeats hit the call-rate limit of that token only;
   the server's stderr stays bounded (at most ~50 warnings per 10 s).
6. Graceful SIGTERM: (a) with three `cohort join` clients in a long run of short tasks, and (b)
   with one client half a second into a task that outlasts deploy.done_grace_s (2 s), SIGTERM
   makes the server exit 0, and every client exits 0 on its own within a bounded time, saying
   the server says the run is over, without reconnecting.
"""
import array
import json
import math
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

try:
    import grpc
except ImportError:  # ctest: SKIP_RETURN_CODE 77
    print("SKIP: python3-grpcio is not installed (scripts/install-deps.sh)", file=sys.stderr)
    sys.exit(77)

pb = None  # cohort.v1.fleet_pb2, generated in main()
COMMITS = ("round", "buffer_flush", "commit")


class Failure(Exception):
    """A setup problem or a hard assertion: the finding stops here."""


def note(msg):
    print(f"[hardening {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def events(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass  # a line being written
    except FileNotFoundError:
        pass
    return out


def tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except FileNotFoundError:
        return "(no file)\n"


def read_checkpoint(path):
    """(manifest, {array name: array('f')}) of DIR/checkpoint.cohort, or (None, {})."""
    try:
        b = open(path, "rb").read()
    except FileNotFoundError:
        return None, {}
    if b[:8] != b"COHORTC1":
        return None, {}
    (n,) = struct.unpack("<Q", b[8:16])
    manifest = json.loads(b[16:16 + n])
    # The arrays' data ends the file (format 1: right after the manifest; format 2: after the
    # manifest's 8-byte checksum): find its start from the sizes.
    data = len(b) - sum(a["bytes"] for a in manifest.get("arrays", []))
    if data < 16 + n:
        return None, {}
    arrays = {}
    for a in manifest.get("arrays", []):
        v = array.array("f")
        v.frombytes(b[data + a["offset"]:data + a["offset"] + a["bytes"]])
        if sys.byteorder != "little":
            v.byteswap()
        arrays[a["name"]] = v
    return manifest, arrays


def max_abs(values):
    m = 0.0
    for v in values:
        if not math.isfinite(v):
            return math.inf
        m = max(m, abs(v))
    return m


class Finding:
    """One finding's temporary directory, child processes and soft checks."""

    def __init__(self, name, cohort, src):
        self.name, self.cohort, self.src = name, cohort, src
        self.dir = tempfile.mkdtemp(prefix=f"cohort_hardening_{name}_")
        self.procs = []
        self.clients = []
        self.errors = []
        self.logs = []  # files shown when the finding fails

    def check(self, cond, msg):
        if not cond:
            self.errors.append(msg)
            print(f"FAIL: finding {self.name}: {msg}", file=sys.stderr, flush=True)
        return cond

    def require(self, cond, msg):
        if not cond:
            raise Failure(msg)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def write(self, name, text):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def tokens(self, n):
        """Tokens file for clients 0..n-1; returns the tokens (token k is client k's)."""
        toks = [f"tok-{self.name}-{k}-{os.getpid()}" for k in range(n)]
        self.write("tokens.txt", "# token client_id\n" + "".join(f"{t} {k}\n" for k, t in enumerate(toks)))
        for k, t in enumerate(toks):
            self.write(f"tok{k}", t + "\n")
        return toks

    def spawn(self, args, stem, env=None):
        out = open(self.path(stem + ".out"), "w")
        err = open(self.path(stem + ".err"), "w")
        env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", **(env or {}))
        p = subprocess.Popen(args, stdout=out, stderr=err, env=env, stdin=subprocess.DEVNULL)
        out.close()
        err.close()
        p.stem = stem
        self.procs.append(p)
        self.logs += [self.path(stem + ".out"), self.path(stem + ".err")]
        return p

    def certs(self):
        """A CA and a server certificate for 127.0.0.1 (scripts/make-certs.sh), made once."""
        d = self.path("certs")
        if not os.path.exists(os.path.join(d, "ca.pem")):
            subprocess.run([os.path.join(self.src, "scripts/make-certs.sh"), d], check=True,
                           stdout=subprocess.DEVNULL)
        return d

    def join(self, address, k, parts, config, stem=None, tls=False):
        """An honest `cohort join` client with token k and data part k of `parts` (over TLS
        with the finding's CA when `tls`)."""
        security = ["--ca", os.path.join(self.certs(), "ca.pem")] if tls else ["--insecure"]
        return self.spawn([self.cohort, "join", "--server", address, "--token-file", self.path(f"tok{k}"),
                           *security, "--partition", f"{k}/{parts}", "--max-disconnected-s", "60",
                           "--backoff-max-s", "0.3", config], stem or f"client{k}")

    def close(self):
        """Kills every child process still running, then closes the gRPC clients."""
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                print(f"WARNING: {p.stem} (pid {p.pid}) did not die after SIGKILL", file=sys.stderr)
        for c in self.clients:
            try:
                c.close()
            except Exception as e:  # noqa: BLE001
                print(f"WARNING: closing a gRPC client: {e}", file=sys.stderr)


class Server:
    """A `cohort serve` child: config and deploy files written to the finding's directory,
    stdout/stderr to files, the port read from its "listening on" line."""

    def __init__(self, f, stem, config, deploy=None, deploy_sets=(), args=(), start=True, env=None,
                 tls=False, tokens="tokens.txt", listen="127.0.0.1:0"):
        self.f, self.stem = f, stem
        self.config = f.write(stem + ".yaml", config)
        self.deploy = f.write(stem + ".deploy.yaml", deploy if deploy else "{}\n")
        self.out = f.path(stem + "_out")
        security = (["--cert", os.path.join(f.certs(), "server.pem"), "--key",
                     os.path.join(f.certs(), "server.key")] if tls else ["--insecure"])
        cmd = [f.cohort, "serve", self.config, "--deploy", self.deploy, "--listen", listen,
               "--tokens", f.path(tokens), *security, "--out", self.out]
        for s in deploy_sets:
            cmd += ["--deploy-set", s]
        cmd += list(args)
        self.proc = f.spawn(cmd, stem, env)
        self.pid = self.proc.pid
        self.address = None
        deadline = time.time() + 60
        while True:
            with open(f.path(stem + ".out")) as fh:
                m = re.search(r"^listening on 127\.0\.0\.1:(\d+)$", fh.read(), re.M)
            if m:
                self.address = "127.0.0.1:" + m.group(1)
                break
            if self.proc.poll() is not None:
                raise Failure(f"{stem}: cohort serve exited with {self.proc.returncode} before listening:\n"
                              + tail(f.path(stem + ".err")))
            if time.time() > deadline:
                raise Failure(f"{stem}: cohort serve did not print its port")
            time.sleep(0.05)

    def events(self):
        return events(os.path.join(self.out, "metrics.jsonl"))

    def summary(self):
        try:
            return json.load(open(os.path.join(self.out, "summary.json")))
        except (FileNotFoundError, ValueError):
            return None

    def stderr(self):
        with open(self.f.path(self.stem + ".err"), errors="replace") as fh:
            return fh.read()

    def version(self):
        vs = [e["version"] for e in self.events() if e.get("event") in COMMITS and "version" in e]
        return max(vs, default=0)

    def wait_version(self, v, timeout):
        deadline = time.time() + timeout
        while self.version() < v:
            if self.proc.poll() is not None or time.time() > deadline:
                return False
            time.sleep(0.1)
        return True

    def rss_kb(self):
        try:
            for line in open(f"/proc/{self.pid}/status"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except FileNotFoundError:
            pass
        return 0

    def threads(self):
        try:
            for line in open(f"/proc/{self.pid}/status"):
                if line.startswith("Threads:"):
                    return int(line.split()[1])
        except FileNotFoundError:
            pass
        return 0

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None


class Held:
    """A PushUpdate stream that sends `msgs`, then (once `gate` is set, if given) `after`, and then
    stays open without sending anything until release() (or hold_s). The future completes when
    the server ends the call."""

    def __init__(self, client, msgs, hold_s, after=(), gate=None):
        self.release_ev = threading.Event()
        self.first = threading.Event()
        self.sent = threading.Event()
        self.gate = gate

        def gen():
            for m in msgs:
                yield m
            self.first.set()
            if gate is not None:
                gate.wait(hold_s)
                for m in after:
                    yield m
            self.sent.set()
            self.release_ev.wait(hold_s)

        self.t0 = time.time()
        self.future = client._push.future(gen(), metadata=client.md, timeout=hold_s + 60)
        self.t_end = None
        self.future.add_done_callback(lambda _: setattr(self, "t_end", time.time()))

    def outcome(self):
        """(code name, details) once done; None while the stream is open."""
        if not self.future.done():
            return None
        try:
            self.future.result()
            return ("OK", "")
        except grpc.RpcError as e:
            return (e.code().name, e.details() or "")
        except grpc.FutureCancelledError:
            return ("CANCELLED_BY_CLIENT", "")

    def settled(self, first=False):
        """Every message (before the gate, with `first`) was handed to gRPC, or the call ended."""
        return (self.first if first else self.sent).is_set() or self.future.done()

    def release(self):
        self.release_ev.set()
        if self.gate is not None:
            self.gate.set()
        if not self.future.done():
            self.future.cancel()


class FleetClient:
    """A Fleet client with one bearer token and a channel (TCP connection) of its own."""

    def __init__(self, f, address, token):
        self.channel = grpc.insecure_channel(address, options=[
            ("grpc.use_local_subchannel_pool", 1),
            ("grpc.max_send_message_length", 64 << 20),
            ("grpc.max_receive_message_length", 64 << 20)])
        f.clients.append(self)
        self.held = []
        grpc.channel_ready_future(self.channel).result(timeout=20)
        self.md = [("authorization", "Bearer " + token)]

        def unary(name, req, rep):
            return self.channel.unary_unary("/cohort.v1.Fleet/" + name, request_serializer=req.SerializeToString,
                                            response_deserializer=rep.FromString)

        self._register = unary("Register", pb.RegisterRequest, pb.RegisterReply)
        self._pull = unary("PullTask", pb.PullTaskRequest, pb.PullTaskReply)
        self._heartbeat = unary("Heartbeat", pb.HeartbeatRequest, pb.HeartbeatReply)
        self._report = unary("ReportEval", pb.EvalReport, pb.EvalAck)
        self._download = self.channel.unary_stream("/cohort.v1.Fleet/Download",
                                                   request_serializer=pb.DownloadRequest.SerializeToString,
                                                   response_deserializer=pb.TensorChunk.FromString)
        self._push = self.channel.stream_unary("/cohort.v1.Fleet/PushUpdate",
                                               request_serializer=pb.UpdateChunk.SerializeToString,
                                               response_deserializer=pb.PushReply.FromString)
        self.layout = None
        self.numel = 0
        self.task = None

    def close(self):
        for h in self.held:
            h.release()
        self.channel.close()

    def register(self, num_examples=50, client_version="hardening-test"):
        reg = self._register(pb.RegisterRequest(num_examples=num_examples, client_version=client_version),
                             metadata=self.md, timeout=10)
        self.layout = reg.layout
        self.numel = sum(math.prod(a.shape) for a in reg.layout.arrays)
        return reg

    def pull_train(self, timeout_s=30):
        deadline = time.time() + timeout_s
        while True:
            r = self._pull(pb.PullTaskRequest(), metadata=self.md, timeout=10)
            if r.kind == pb.PullTaskReply.TRAIN:
                self.task = r
                return r
            if r.kind == pb.PullTaskReply.DONE:
                raise Failure("PullTask answered DONE while a task was expected")
            if time.time() > deadline:
                raise Failure(f"no TRAIN task within {timeout_s} s: {r}")
            time.sleep(max(r.retry_after_s, 0.01))

    def download(self):
        buf = bytearray()
        for ch in self._download(pb.DownloadRequest(task_id=self.task.task_id, what=pb.DownloadRequest.MODEL),
                                 metadata=self.md, timeout=30):
            buf += ch.data
        model = array.array("f")
        model.frombytes(bytes(buf))
        if sys.byteorder != "little":
            model.byteswap()
        return model

    def header(self, num_examples=50, local_steps=None, metrics=None, layout=None):
        t = self.task
        h = pb.UpdateHeader(task_id=t.task_id, base_version=t.version, num_examples=num_examples,
                            local_steps=t.local_steps if local_steps is None else local_steps)
        for k, v in (metrics if metrics is not None else {"train_loss": 0.5}).items():
            h.metrics[k] = v
        h.layout.CopyFrom(layout if layout is not None else self.layout)
        return h

    @staticmethod
    def messages(header, payload, chunk=256 << 10, total=None):
        yield pb.UpdateChunk(header=header)
        total = len(payload) if total is None else total
        for off in range(0, len(payload), chunk):
            yield pb.UpdateChunk(chunk=pb.TensorChunk(offset=off, data=payload[off:off + chunk], total_bytes=total))

    def push_messages(self, msgs, timeout=60):
        """(code name, details): "OK" when accepted."""
        try:
            reply = self._push(msgs, metadata=self.md, timeout=timeout)
            return ("OK", reply.reason) if reply.accepted else ("NOT_ACCEPTED", reply.reason)
        except grpc.RpcError as e:
            return (e.code().name, e.details() or "")

    def push(self, header, payload, timeout=60):
        return self.push_messages(self.messages(header, payload), timeout)

    def hold(self, msgs, hold_s, after=(), gate=None):
        h = Held(self, list(msgs), hold_s, list(after), gate)
        self.held.append(h)
        return h


def wait_settled(streams, timeout=20, first=False):
    deadline = time.time() + timeout
    while not all(s.settled(first) for s in streams):
        if time.time() > deadline:
            raise Failure(f"{sum(1 for s in streams if not s.settled(first))} of {len(streams)} streams neither "
                          f"sent their messages nor ended within {timeout} s")
        time.sleep(0.02)


def payload_of(values):
    a = array.array("f", values)
    if sys.byteorder != "little":
        a.byteswap()
    return a.tobytes()


def small_delta(model):
    """An honest-looking pseudo-gradient: 1% of the weights."""
    return payload_of(0.01 * v for v in model)


TRAIN_CONFIG = """data:
  dataset: synthetic
  partition: iid
  synthetic: {{num_examples: 1800, test_examples: 600, dim: 20, classes: 4, separation: 3.0, noise: 1.0}}
model:
  name: mlp
  hidden: {hidden}
training:
  lr: 0.1
  batch_size: 32
  local_steps: 30
strategy:
{strategy}
run:
  rounds: {rounds}
  seed: 5
  eval_every: {eval_every}
  threads: 1
"""
FEDBUFF_3 = "  name: fedbuff\n  buffer_size: 3"


def train_config(rounds, hidden="[32]", eval_every=10, strategy=FEDBUFF_3, extra=""):
    """The honest clients' config: `strategy` is the strategy section's body, `extra` is
    appended (more top-level sections)."""
    return TRAIN_CONFIG.format(rounds=rounds, hidden=hidden, eval_every=eval_every,
                               strategy=strategy) + extra


def client_logs(f, k):
    """The stdout of client k's `cohort join` (or of the one spawned with stem k)."""
    with open(f.path(k + ".out" if isinstance(k, str) else f"client{k}.out"), errors="replace") as fh:
        return fh.read()


def expect_serve_refusals(f, cases):
    """Each (stem, config text, expected stderr text): `cohort serve` refuses to start with an
    error containing the expected text (tokens.txt must exist)."""
    for stem, text, expected in cases:
        cfg = f.write(stem + ".yaml", text)
        dep = f.write(stem + ".deploy.yaml", "{}\n")
        p = subprocess.run([f.cohort, "serve", cfg, "--deploy", dep, "--listen", "127.0.0.1:0",
                            "--tokens", f.path("tokens.txt"), "--insecure", "--out",
                            f.path(stem + "_out")], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, OMP_WAIT_POLICY="PASSIVE"))
        f.check(p.returncode != 0 and expected in p.stderr,
                f"{stem}: exit {p.returncode}, stderr: {p.stderr.strip()[-400:]}")


def wait_for(cond, timeout, poll=0.05):
    """Polls cond() until it holds (True) or `timeout` seconds passed (False)."""
    deadline = time.time() + timeout
    while not cond():
        if time.time() > deadline:
            return False
        time.sleep(poll)
    return True


def wait_exit(procs, timeout):
    deadline = time.time() + timeout
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            pass
    return [p.poll() for p in procs]


# ---- finding 1 ------------------------------------------------------------------------------

def finding_1(f):
    # Tokens 0..2: honest `cohort join` clients (main) or Python pushers (early); 3: the attacker.
    toks = f.tokens(4)
    attack = payload_of([3e38])  # one float, repeated below

    # (early) The attacker's 3e38 update is the first update the server ever sees: no norm window
    # yet, so only the commit's sanity check stands between it and the model.
    note("1-early: 3e38 x 1 example as the first update FedBuff sees (norm window empty)")
    srv = Server(f, "early", train_config(rounds=5), args=["--no-eval"])
    evil = FleetClient(f, srv.address, toks[3])
    evil.register(50)
    honest = [FleetClient(f, srv.address, toks[k]) for k in (0, 1)]
    for h in honest:
        h.register(600)
    evil.pull_train()
    model0 = evil.download()
    code, details = evil.push(evil.header(num_examples=1), attack * evil.numel)
    note(f"1-early: attacker's push: {code}: {details[:200]}")
    for h in honest:
        h.pull_train()
        m = h.download()
        c, d = h.push(h.header(num_examples=600), small_delta(m))
        f.check(c == "OK", f"1-early: an honest update was not accepted: {c}: {d}")
    # Buffer of 3 is full (if the attack was buffered): a flush happened or was refused.
    time.sleep(0.5)
    honest[0].pull_train()
    after = honest[0].download()
    worst = max_abs(after)
    evs = srv.events()
    refused = [e for e in evs if e.get("event") == "commit_refused"]
    rejected3 = [e for e in evs if e.get("event") == "rejected" and e.get("client") == 3]
    note(f"1-early: model max |w| {max_abs(model0):.3g} before, {worst:.3g} after (version "
         f"{honest[0].task.version}); commit_refused events {len(refused)}; rejections of client 3: "
         f"{[e.get('reason', '')[:160] for e in rejected3]}")
    # Rejected at the push, or (a buffered update) its commit refused and the attacker blamed.
    f.check(code != "OK" or (refused and rejected3),
            "1-early: the 3e38 update (1 example, first update of the run) was ACCEPTED by the server "
            "(push reply OK) and no commit was refused")
    f.check(math.isfinite(worst) and worst < 1e3,
            f"1-early: after the 3e38 update and two honest ones, the global model (version "
            f"{honest[0].task.version}) has max |w| = {worst:.3g} (was {max_abs(model0):.3g}): poisoned")
    f.check(rejected3, "1-early: no 'rejected' event for the attacker (client 3) in metrics.jsonl")
    for c in [evil] + honest:
        c.close()
    srv.proc.kill()
    srv.proc.wait()

    # (main) Three honest `cohort join` clients train FedBuff; the attacker registers 50 examples.
    rounds = 60
    cfg_text = train_config(rounds=rounds)
    ckpt = f.path("ckpt")
    os.makedirs(ckpt)
    srv = Server(f, "main", cfg_text, args=["--checkpoint-dir", ckpt, "--keep-checkpoints", "3"])
    evil = FleetClient(f, srv.address, toks[3])
    evil.register(50)

    # (a) 1e12 examples claimed by a client that registered 50.
    evil.pull_train()
    m = evil.download()
    code, details = evil.push(evil.header(num_examples=10**12), small_delta(m))
    note(f"1a: 1e12 examples claimed: {code}: {details[:200]}")
    f.check(code == "INVALID_ARGUMENT" and "examples" in details and "50" in details,
            f"1a: a claim of 1e12 examples (registered 50): expected INVALID_ARGUMENT naming the examples "
            f"bound, got {code}: {details}")

    for k in range(3):
        f.join(srv.address, k, 3, srv.config)
    # (b) once the norm window is warm (norm_warmup 5 accepted updates: 2 flushes of 3).
    f.require(srv.wait_version(2, 60), f"main: no 2 commits within 60 s (version {srv.version()}):\n"
              + tail(f.path("main.err")))
    evil.pull_train()
    evil.download()
    v_attack = srv.version()
    # Finite and under max_abs_weight, but far beyond the norms of the accepted updates.
    code, details = evil.push(evil.header(num_examples=1), payload_of([1e4]) * evil.numel)
    note(f"1b: 1e4 per weight x 1 example at version {v_attack}: {code}: {details[:200]}")
    f.check(code != "OK" and re.search(r"norm", details, re.I),
            f"1b: the 1e4-per-weight update (warm norm window): expected a rejection by the norm bound, "
            f"got {code}: {details}")

    rc = srv.wait(120)
    f.require(rc is not None, f"main: the run did not finish within 120 s (version {srv.version()})")
    f.check(rc == 0, f"main: cohort serve exited with {rc}:\n{tail(f.path('main.err'))}")
    codes = wait_exit(f.procs[-3:], 30)
    f.check(codes == [0, 0, 0], f"main: honest clients exited with {codes}")
    evs = srv.events()
    rejected = [e for e in evs if e.get("event") == "rejected"]
    by_attacker = [e for e in rejected if e.get("client") == 3]
    honest_bad = [e for e in rejected if e.get("client") != 3 and "run is over" not in e.get("reason", "")]
    flushes_after = [e for e in evs if e.get("event") == "buffer_flush" and e.get("version", 0) > v_attack + 1]
    refused = [e for e in evs if e.get("event") == "commit_refused"]
    s = srv.summary() or {}
    clients = next((e["clients"] for e in reversed(evs) if e.get("event") == "clients"), [])
    stats3 = next((c for c in clients if c.get("id") == 3), {})
    note(f"main: final accuracy {s.get('final_accuracy')}, rounds {s.get('rounds')}, rejected {s.get('rejected')} "
         f"(attacker {len(by_attacker)}: {[e.get('reason', '')[:100] for e in by_attacker]}), refused commits "
         f"{s.get('refused_commits')} / {len(refused)} events, flushes after the attack {len(flushes_after)}, "
         f"client 3 stats {stats3}")
    f.check(s.get("rounds") == rounds, f"main: summary rounds {s.get('rounds')}, expected {rounds}")
    f.check((s.get("final_accuracy") or 0) >= 0.6,
            f"main: final accuracy {s.get('final_accuracy')} is not well above chance (0.25)")
    f.check(len(by_attacker) >= 2 and any("examples" in e.get("reason", "") for e in by_attacker)
            and any(re.search(r"norm|finite", e.get("reason", ""), re.I) for e in by_attacker),
            f"main: metrics.jsonl should have the attacker's two rejections (examples, norm): {by_attacker}")
    f.check((s.get("rejected") or 0) >= 2, f"main: summary rejected = {s.get('rejected')}, expected >= 2")
    f.check(stats3.get("rejected", 0) >= 2 and stats3.get("updates_accepted", 0) == 0,
            f"main: client 3's stats should show >= 2 rejected and 0 accepted: {stats3}")
    f.check(not honest_bad, f"main: honest updates were rejected: {[e.get('reason') for e in honest_bad][:5]}")
    f.check(len(flushes_after) >= 10, f"main: only {len(flushes_after)} buffer flushes after the attack at "
                                      f"version {v_attack}: honest updates stopped being accepted")
    for k in range(3):
        log = client_logs(f, k)
        f.check(re.search(r"done: client \d+, \d+ tasks, [1-9]\d* accepted", log) is not None,
                f"main: honest client {k} accepted nothing: {log[-300:]}")

    # The checkpoint: a sane model, and --resume starts from it.
    manifest, arrays = read_checkpoint(os.path.join(ckpt, "checkpoint.cohort"))
    f.require(manifest is not None, "main: no readable checkpoint.cohort")
    ck_version = manifest["version"]
    ck_max = max_abs(arrays.get("model", [math.inf]))
    note(f"main: checkpoint at version {ck_version}, model max |w| {ck_max:.3g}")
    f.check(math.isfinite(ck_max) and ck_max < 1e3, f"main: the checkpointed model has max |w| {ck_max}")
    res = Server(f, "resume", cfg_text, args=["--checkpoint-dir", ckpt, "--resume"])
    deadline = time.time() + 20
    start = []
    while time.time() < deadline and not start:
        start = [e for e in res.events() if e.get("event") == "start"]
        time.sleep(0.1)
    rc = res.wait(10)
    if rc is None:  # the checkpoint was before the last commit: the resumed run waits for clients
        res.proc.send_signal(signal.SIGTERM)
        rc = res.wait(20)
    err = res.stderr()
    note(f"resume: exit {rc}; start event resumed_from_version "
         f"{start[0].get('resumed_from_version') if start else None}; "
         f"{(re.search(r'resumed from .*', err) or [''])[0]}")
    f.check(start and start[0].get("resumed_from_version") == ck_version,
            f"resume: start event {start[:1]} does not say resumed_from_version {ck_version}")
    f.check(re.search(rf"resumed from .* at version {ck_version}\b", err) is not None,
            f"resume: stderr does not report the version resumed from:\n{err[-1500:]}")
    f.check(rc == 0, f"resume: cohort serve --resume exited with {rc}:\n{err[-1500:]}")


# ---- finding 2 ------------------------------------------------------------------------------

def finding_2(f):
    toks = f.tokens(4)
    rounds = 60
    idle = 1.5
    srv = Server(f, "serve", train_config(rounds=rounds), deploy_sets=[f"stream_idle_timeout_s={idle}"],
                 args=["--max-concurrent-pushes", "2"])
    evil = FleetClient(f, srv.address, toks[3])
    evil.register(50)
    evil.pull_train()
    total = evil.numel * 4
    hold_s = 40.0
    msgs = [pb.UpdateChunk(header=evil.header(num_examples=50)),
            pb.UpdateChunk(chunk=pb.TensorChunk(offset=0, data=bytes(64), total_bytes=total))]
    streams = [evil.hold(msgs, hold_s) for _ in range(2)]
    wait_settled(streams)
    t_open = time.time()
    time.sleep(0.3)
    # A third stream of the same token while the two are open: beyond max_streams_per_client (2).
    code, details = evil.push_messages(iter(msgs), timeout=20)
    note(f"third concurrent stream: {code}: {details[:200]}")
    f.check(code == "RESOURCE_EXHAUSTED" and "max_streams_per_client" in details,
            f"a third concurrent push stream of one token: expected RESOURCE_EXHAUSTED naming "
            f"max_streams_per_client, got {code}: {details}")
    note(f"attacker holds 2 push streams (both push slots) for up to {hold_s:.0f} s; "
         f"stream_idle_timeout_s={idle}; starting 3 honest clients")
    for k in range(3):
        f.join(srv.address, k, 3, srv.config)
    deadline = t_open + idle + 5
    while time.time() < deadline and not all(s.future.done() for s in streams):
        time.sleep(0.05)
    for i, s in enumerate(streams):
        out = s.outcome()
        took = (s.t_end - t_open) if s.t_end else None
        note(f"held stream {i}: {out} after {took if took is None else round(took, 2)} s")
        f.check(out is not None, f"held stream {i} still open {idle + 5:.1f} s after its last message "
                                 f"(stream_idle_timeout_s {idle})")
        if out is not None:
            f.check(out[0] in ("CANCELLED", "DEADLINE_EXCEEDED"),
                    f"held stream {i} ended with {out}, expected the server to cancel it")
            f.check(idle - 0.3 <= took <= idle + 3, f"held stream {i} ended {took:.2f} s after its last "
                                                    f"message, expected about stream_idle_timeout_s ({idle})")
    rc = srv.wait(hold_s - (time.time() - t_open))
    t_done = time.time() - t_open
    f.check(rc is not None, f"the run did not finish while the attacker would still hold its streams "
                            f"({hold_s:.0f} s; version {srv.version()})")
    if rc is None:
        return
    note(f"run finished {t_done:.1f} s after the streams were opened (the attacker would have held "
         f"them for {hold_s:.0f} s), exit {rc}")
    f.check(rc == 0, f"cohort serve exited with {rc}:\n{tail(f.path('serve.err'))}")
    codes = wait_exit(f.procs[-3:], 30)
    f.check(codes == [0, 0, 0], f"honest clients exited with {codes}")
    evs = srv.events()
    idle_rej = [e for e in evs if e.get("event") == "rejected" and e.get("client") == 3
                and "stream_idle_timeout_s" in e.get("reason", "")]
    f.check(len(idle_rej) >= 2, f"metrics.jsonl should have two rejections of client 3 naming "
                                f"stream_idle_timeout_s: {[e for e in evs if e.get('event') == 'rejected']}")
    f.check("stream_idle_timeout_s" in srv.stderr(), "the server's log does not say why the streams were cancelled")
    s = srv.summary() or {}
    f.check(s.get("rounds") == rounds, f"summary rounds {s.get('rounds')}, expected {rounds}")
    f.check((s.get("final_accuracy") or 0) >= 0.6, f"final accuracy {s.get('final_accuracy')} not above chance")


# ---- finding 3 ------------------------------------------------------------------------------

def finding_3(f):
    n_tokens, per_token = 10, 10
    toks = f.tokens(n_tokens + 1)
    hidden = "[1024, 1024]"  # 20*1024+1024 + 1024*1024+1024 + 1024*4+4 = 1,075,204 floats: 4.3 MB
    model_bytes = 4 * (20 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 4 + 4)
    budget = 4 * model_bytes + model_bytes // 2  # room for 4 uploads
    srv = Server(f, "serve", train_config(rounds=1000, hidden=hidden),
                 deploy="stream_idle_timeout_s: 60\nstream_min_bytes_per_s: 0\n",
                 deploy_sets=[f"max_streams_per_client={per_token}", f"max_upload_bytes={budget}"],
                 args=["--no-eval"])
    attackers = []
    for k in range(n_tokens):
        c = FleetClient(f, srv.address, toks[k])
        c.register(50)
        c.pull_train()
        attackers.append(c)
    f.require(attackers[0].numel * 4 == model_bytes,
              f"model is {attackers[0].numel * 4} bytes, expected {model_bytes}")
    time.sleep(0.5)
    rss0, thr0 = srv.rss_kb(), srv.threads()
    n = n_tokens * per_token
    note(f"model {model_bytes / 1e6:.1f} MB, deploy.max_upload_bytes {budget / 1e6:.1f} MB; server RSS "
         f"{rss0 / 1024:.0f} MB, {thr0} threads; opening {n} push streams (header + 1 KB each) from "
         f"{n_tokens} tokens (max_streams_per_client {per_token})")
    # Every stream first sends its header (and passes the task checks while the tasks are
    # current), so that all n are open at once; then each sends 1 KB of its update.
    gate = threading.Event()
    streams = []
    for c in attackers:
        hdr = [pb.UpdateChunk(header=c.header(num_examples=50))]
        chunk = [pb.UpdateChunk(chunk=pb.TensorChunk(offset=0, data=bytes(1024), total_bytes=model_bytes))]
        streams += [c.hold(hdr, 60, after=chunk, gate=gate) for _ in range(per_token)]
    wait_settled(streams, first=True)
    # The server runs one handler thread per open stream: wait until its thread count settles.
    deadline, last, stable_since = time.time() + 10, -1, time.time()
    while time.time() < deadline and time.time() - stable_since < 0.6:
        t = srv.threads()
        if t != last:
            last, stable_since = t, time.time()
        time.sleep(0.1)
    open_headers = sum(1 for s in streams if s.outcome() is None)
    rss1, thr1 = srv.rss_kb(), srv.threads()
    note(f"{open_headers} streams open after their header: server RSS {rss1 / 1024:.0f} MB, {thr1} threads; "
         f"now 1 KB on each")
    f.check(open_headers == n, f"only {open_headers} of {n} streams stayed open after their header: "
                               f"{[s.outcome() for s in streams if s.outcome()][:3]}")
    gate.set()
    wait_settled(streams)
    # Let the server read every first chunk, then sample its RSS while the streams are held.
    time.sleep(2.0)
    peak = 0
    for _ in range(20):
        peak = max(peak, srv.rss_kb())
        time.sleep(0.1)
    growth = (peak - rss0) * 1024
    outcomes = [s.outcome() for s in streams]
    held = sum(1 for o in outcomes if o is None)
    by_code = {}
    for o in outcomes:
        if o is not None:
            by_code[o[0]] = by_code.get(o[0], 0) + 1
    budget_msgs = [o[1] for o in outcomes if o and o[0] == "RESOURCE_EXHAUSTED" and "max_upload_bytes" in o[1]]
    note(f"{n} streams after 1 KB each: {held} held, refused {by_code}; server RSS peak {peak / 1024:.0f} MB: "
         f"growth {growth / 1e6:.1f} MB (unbounded would be ~{n * model_bytes / 1e6:.0f} MB); threads "
         f"{thr0} -> {thr1} -> {srv.threads()}")
    if budget_msgs:
        note(f"e.g. {budget_msgs[0][:200]}")
    f.check(growth < 3 * budget, f"server RSS grew by {growth / 1e6:.1f} MB with {n} held streams, more than "
                                 f"3 x max_upload_bytes ({3 * budget / 1e6:.1f} MB)")
    f.check(held <= budget // model_bytes, f"{held} streams hold an upload buffer, the budget allows "
                                           f"{budget // model_bytes}")
    f.check(budget_msgs, f"no stream was refused with RESOURCE_EXHAUSTED naming max_upload_bytes: {by_code}")
    f.check(srv.proc.poll() is None, "the server died")
    for s in streams:
        s.release()

    # max_streams_per_client: a fresh token opens per_token header-only streams (no buffers),
    # then one more.
    c = FleetClient(f, srv.address, toks[n_tokens])
    c.register(50)
    c.pull_train()
    hdr = [pb.UpdateChunk(header=c.header(num_examples=50))]
    extra = [c.hold(hdr, 30) for _ in range(per_token)]
    wait_settled(extra)
    time.sleep(1.0)
    open_now = sum(1 for s in extra if s.outcome() is None)
    code, details = c.push_messages(iter(hdr), timeout=20)
    note(f"stream {per_token + 1} of one token ({open_now} open): {code}: {details[:200]}")
    f.check(open_now == per_token, f"only {open_now} of {per_token} header-only streams stayed open")
    f.check(code == "RESOURCE_EXHAUSTED" and "max_streams_per_client" in details,
            f"stream {per_token + 1} of one token: expected RESOURCE_EXHAUSTED naming max_streams_per_client, "
            f"got {code}: {details}")
    for s in extra:
        s.release()


# ---- finding 4 ------------------------------------------------------------------------------

def finding_4(f):
    note("finding 4: durable acknowledgements are tested by durability_test.py (SIGKILL at every "
         "crash point and at random times, then --resume)")


# ---- finding 5 ------------------------------------------------------------------------------

FORGED = "cohort serve: run over (forged)"


def finding_5(f):
    toks = f.tokens(2)
    srv = Server(f, "serve", train_config(rounds=5), args=["--no-eval"])
    t_start = time.time()
    c = FleetClient(f, srv.address, toks[0])
    c.register(50, client_version="x\n" + FORGED + " at version 7")
    other = FleetClient(f, srv.address, toks[1])
    other.register(50)

    def attempt(what, build, expect_code, expect_re):
        c.pull_train()
        model = c.download()
        code, details = build(model)
        note(f"{what}: {code}: {details[:160]}")
        f.check(code == expect_code and re.search(expect_re, details) is not None,
                f"{what}: expected {expect_code} matching /{expect_re}/, got {code}: {details[:500]}")

    def renamed(name):
        lay = pb.Layout()
        lay.CopyFrom(c.layout)
        lay.arrays[0].name = name
        return lay

    attempt("array name with a forged log line",
            lambda m: c.push(c.header(layout=renamed("w\n" + FORGED + " at version 999\n")), small_delta(m)),
            "INVALID_ARGUMENT", r"layout")
    attempt("100 kB array name",
            lambda m: c.push(c.header(layout=renamed("n" * 100_000)), small_delta(m)),
            "INVALID_ARGUMENT", r"layout")
    attempt("1000 metric keys",
            lambda m: c.push(c.header(metrics={f"m{i}": 1.0 for i in range(1000)}), small_delta(m)),
            "INVALID_ARGUMENT", r"1000 metrics")
    attempt("10 kB metric key",
            lambda m: c.push(c.header(metrics={"k" * 10_000: 1.0}), small_delta(m)),
            "INVALID_ARGUMENT", r"metric name")
    attempt("local_steps 10**9",
            lambda m: c.push(c.header(local_steps=10**9), small_delta(m)),
            "INVALID_ARGUMENT", r"local steps")

    def zero_chunks(m):
        h = c.header()
        total = c.numel * 4
        msgs = [pb.UpdateChunk(header=h)] + [pb.UpdateChunk(chunk=pb.TensorChunk(offset=0, data=b"", total_bytes=total))
                                             for _ in range(5000)]
        return c.push_messages(iter(msgs))

    attempt("5000 zero-length chunks", zero_chunks, "INVALID_ARGUMENT", r"message 1 .*empty chunk")

    # 200 rapid ReportEval calls for version 0 (the only one that exists: nothing is accepted).
    codes = {}
    for _ in range(200):
        try:
            c._report(pb.EvalReport(version=0, loss=0.5, accuracy=0.5, num_examples=10), metadata=c.md, timeout=10)
            codes["OK"] = codes.get("OK", 0) + 1
        except grpc.RpcError as e:
            codes[e.code().name] = codes.get(e.code().name, 0) + 1
    note(f"200 ReportEval calls for version 0: {codes}")
    f.check(codes.get("OK", 0) <= 1 and set(codes) <= {"OK", "ALREADY_EXISTS", "RESOURCE_EXHAUSTED"},
            f"200 ReportEval calls: at most one OK, the rest ALREADY_EXISTS or RESOURCE_EXHAUSTED: {codes}")

    # 2000 concurrent Heartbeats: the call rate limit (max_calls_per_s, bursts of twice that).
    futs = [c._heartbeat.future(pb.HeartbeatRequest(task_id=0), metadata=c.md, timeout=30) for _ in range(2000)]
    hb = {}
    detail = ""
    for fu in futs:
        try:
            fu.result()
            hb["OK"] = hb.get("OK", 0) + 1
        except grpc.RpcError as e:
            hb[e.code().name] = hb.get(e.code().name, 0) + 1
            detail = detail or e.details()
    note(f"2000 concurrent Heartbeats: {hb} {detail[:120]}")
    f.check(hb.get("RESOURCE_EXHAUSTED", 0) > 0 and "max_calls_per_s" in detail,
            f"2000 concurrent Heartbeats: expected some RESOURCE_EXHAUSTED naming max_calls_per_s: {hb}")
    # The limit is per token: another client is still served.
    try:
        other._heartbeat(pb.HeartbeatRequest(task_id=0), metadata=other.md, timeout=10)
    except grpc.RpcError as e:
        f.check(False, f"another token's Heartbeat after the flood: {e.code().name}: {e.details()}")
    elapsed = time.time() - t_start
    time.sleep(0.3)

    evs = srv.events()
    ce = {}
    for e in evs:
        if e.get("event") == "client_eval":
            key = (e.get("client"), e.get("version"))
            ce[key] = ce.get(key, 0) + 1
    f.check(all(v <= 1 for v in ce.values()), f"client_eval events per (client, version): {ce}")
    reasons = [e.get("reason", "") for e in evs if e.get("event") == "rejected"]
    f.check(max((len(r) for r in reasons), default=0) < 3000,
            f"a rejected event's reason is {max(len(r) for r in reasons)} characters long")
    err = srv.stderr()
    lines = err.splitlines()
    forged = [ln for ln in lines if ln.startswith(FORGED) or ln.startswith("run over (forged)")]
    f.check(not forged, f"the server's stderr has forged lines: {forged}")
    f.check(any("\\n" + FORGED in ln for ln in lines),
            "the forged array name does not appear escaped in the server's log")
    longest = max((len(ln) for ln in lines), default=0)
    f.check(longest < 2500, f"the server's stderr has a line of {longest} characters")
    allowed = 50 * (int(elapsed // 10) + 2) + 10
    note(f"server stderr: {len(lines)} lines in {elapsed:.1f} s (longest {longest} chars), rejected events "
         f"{len(reasons)}, client_eval events {sum(ce.values())}")
    f.check(len(lines) <= allowed, f"the server's stderr has {len(lines)} lines after {elapsed:.1f} s of abuse, "
                                   f"more than the ~50 per 10 s it allows ({allowed}):\n" + "\n".join(lines[:5]))


# ---- finding 6 ------------------------------------------------------------------------------

def sigterm_and_watch(srv, joins, bound):
    """SIGTERM to the server; (server exit code, its seconds, [(client exit code, its seconds)])
    with None for a process still running `bound` seconds after the signal."""
    t0 = time.time()
    srv.proc.send_signal(signal.SIGTERM)
    procs = [srv.proc] + joins
    ended = [None] * len(procs)
    while time.time() - t0 < bound and None in ended:
        for i, p in enumerate(procs):
            if ended[i] is None and p.poll() is not None:
                ended[i] = round(time.time() - t0, 1)
        time.sleep(0.05)
    res = [(p.poll(), ended[i]) for i, p in enumerate(procs)]
    return res[0], res[1:]


def check_clients_done(f, what, stems, clients, bound):
    for k, (code, took) in zip(stems, clients):
        log = client_logs(f, k)
        f.check(code == 0, f"{what}: client {k} did not exit 0 within {bound:.0f} s of the SIGTERM (exit {code}, "
                           f"{log.count('reconnecting')} reconnection attempts):\n{log[-700:]}")
        f.check("server says the run is over" in log, f"{what}: client {k} was not told DONE:\n{log[-700:]}")
        f.check("reconnecting" not in log, f"{what}: client {k} tried to reconnect after the server left:\n"
                                           f"{log[-700:]}")


def finding_6(f):
    f.tokens(3)
    # (a) Short tasks: three clients in a long run.
    srv = Server(f, "serve", train_config(rounds=100000, eval_every=50))
    joins = [f.join(srv.address, k, 3, srv.config) for k in range(3)]
    f.require(srv.wait_version(5, 60), f"no 5 commits within 60 s (version {srv.version()})")
    note(f"6a: version {srv.version()}: SIGTERM to the server")
    bound = 15.0
    (rc, t_srv), clients = sigterm_and_watch(srv, joins, bound)
    note(f"6a: server exit {rc} after {t_srv} s; clients (exit code, s after SIGTERM): {clients}")
    f.check(rc == 0, f"6a: after SIGTERM cohort serve exited with {rc} ({t_srv} s):\n{tail(f.path('serve.err'))}")
    check_clients_done(f, "6a", [0, 1, 2], clients, bound)
    s = srv.summary() or {}
    note(f"6a: summary stop_reason {s.get('stop_reason')!r}, rounds {s.get('rounds')}")
    f.check(s.get("rounds", 0) >= 5, f"6a: summary.json after SIGTERM: {s}")

    # (b) A task in progress that outlasts deploy.done_grace_s (2 s): 100000 local steps take
    # several seconds; SIGTERM half a second into the first task.
    srv = Server(f, "serve_b", train_config(rounds=100000, eval_every=50).replace("local_steps: 30", "local_steps: 100000"))
    joins = [f.join(srv.address, 0, 3, srv.config, stem="b_client0")]
    deadline = time.time() + 60
    while "training 100000 steps" not in client_logs(f, "b_client0"):
        f.require(time.time() < deadline and joins[0].poll() is None,
                  f"6b: the client never started a task:\n{client_logs(f, 'b_client0')[-500:]}")
        time.sleep(0.05)
    time.sleep(0.5)
    note("6b: SIGTERM to the server 0.5 s into a long task")
    bound = 20.0
    (rc, t_srv), clients = sigterm_and_watch(srv, joins, bound)
    note(f"6b: server exit {rc} after {t_srv} s; client (exit code, s after SIGTERM): {clients}")
    f.check(rc == 0, f"6b: after SIGTERM cohort serve exited with {rc} ({t_srv} s):\n{tail(f.path('serve_b.err'))}")
    check_clients_done(f, "6b", ["b_client0"], clients, bound)


def run_cases(prefix, cohort, src, cases, label=""):
    """Generates the message classes into `pb`, then runs each (name, fn) of `cases` as
    fn(Finding) in a Finding of its own: files kept and named on failure, removed on success.
    Returns the number of failed cases. Shared by durability_test.py and fault_injection_test.py."""
    global pb
    gen = tempfile.mkdtemp(prefix="cohort_gen_")
    failed = 0
    try:
        subprocess.run([shutil.which("protoc") or "/usr/bin/protoc", "-I", os.path.join(src, "proto"),
                        "--python_out=" + gen, os.path.join(src, "proto/cohort/v1/fleet.proto")], check=True)
        sys.path.insert(0, gen)
        from cohort.v1 import fleet_pb2  # noqa: E402  (generated above)
        pb = fleet_pb2
        for name, fn in cases:
            f = Finding(prefix + name, cohort, src)
            t0 = time.time()
            try:
                fn(f)
            except Failure as e:
                f.errors.append(str(e))
                print(f"FAIL: {name}: {e}", file=sys.stderr)
            except Exception:  # noqa: BLE001
                f.errors.append(traceback.format_exc())
                print(f"FAIL: {name}: unexpected error:\n{traceback.format_exc()}", file=sys.stderr)
            finally:
                f.close()
            if f.errors:
                failed += 1
                print(f"--- {name} FAILED ({time.time() - t0:.1f} s{label}); files kept in {f.dir}",
                      file=sys.stderr)
            else:
                shutil.rmtree(f.dir, ignore_errors=True)
                note(f"{name}: OK ({time.time() - t0:.1f} s{label})")
    finally:
        shutil.rmtree(gen, ignore_errors=True)
    return failed


def main_for_cases(script, prefix, cases):
    """The main() of a test file made of named cases (compression_test.py,
    robustness_test.py): `script COHORT_BINARY SOURCE_DIR [case ...]`, all cases by default;
    exits 0 when every selected case passes, 1 otherwise, 2 on bad usage."""
    if len(sys.argv) < 3:
        print(f"usage: {script} COHORT_BINARY SOURCE_DIR [case ...]", file=sys.stderr)
        sys.exit(2)
    cohort, src = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    which = sys.argv[3:] or list(cases)
    for w in which:
        if w not in cases:
            print(f"unknown case {w!r} (known: {', '.join(cases)})", file=sys.stderr)
            sys.exit(2)
    failed = run_cases(prefix, cohort, src, [(w, cases[w]) for w in which])
    print(f"{len(which) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


FINDINGS = {"1": finding_1, "2": finding_2, "3": finding_3, "4": finding_4, "5": finding_5, "6": finding_6}


def main():
    global pb
    if len(sys.argv) < 3:
        print("usage: hardening_test.py COHORT_BINARY SOURCE_DIR [finding ...]", file=sys.stderr)
        sys.exit(2)
    cohort, src = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    which = [a.removeprefix("finding_").removeprefix("finding") for a in sys.argv[3:]] or sorted(FINDINGS)
    for w in which:
        if w not in FINDINGS:
            print(f"unknown finding {w!r} (known: {', '.join(sorted(FINDINGS))})", file=sys.stderr)
            sys.exit(2)
    protoc = shutil.which("protoc") or "/usr/bin/protoc"
    gen = tempfile.mkdtemp(prefix="cohort_hardening_gen_")
    try:
        subprocess.run([protoc, "-I", os.path.join(src, "proto"), "--python_out=" + gen,
                        os.path.join(src, "proto/cohort/v1/fleet.proto")], check=True)
        sys.path.insert(0, gen)
        from cohort.v1 import fleet_pb2  # noqa: E402  (generated above)
        pb = fleet_pb2
    except BaseException:
        shutil.rmtree(gen, ignore_errors=True)
        raise
    results = []
    t_all = time.time()
    try:
        for w in which:
            f = Finding(w, cohort, src)
            t0 = time.time()
            note(f"finding {w}: start (files in {f.dir})")
            ok = False
            try:
                FINDINGS[w](f)
                ok = not f.errors
            except Failure as e:
                f.errors.append(str(e))
                print(f"FAIL: finding {w}: {e}", file=sys.stderr)
            except Exception:  # noqa: BLE001  (a bug in the test or an unexpected RPC error)
                f.errors.append(traceback.format_exc())
                print(f"FAIL: finding {w}: unexpected error:\n{traceback.format_exc()}", file=sys.stderr)
            finally:
                f.close()
            dt = time.time() - t0
            if ok:
                shutil.rmtree(f.dir, ignore_errors=True)
                note(f"finding {w}: OK ({dt:.1f} s)")
            else:
                print(f"--- finding {w} FAILED ({dt:.1f} s); files kept in {f.dir}; last lines of its logs:",
                      file=sys.stderr)
                for p in f.logs:
                    if os.path.exists(p) and os.path.getsize(p) > 0:
                        print(f"=== {p}\n{tail(p, 8)}", file=sys.stderr, end="")
            results.append((w, ok, dt))
    finally:
        shutil.rmtree(gen, ignore_errors=True)
    passed = sum(1 for _, ok, _ in results if ok)
    failed = len(results) - passed
    note("; ".join(f"finding {w}: {'OK' if ok else 'FAIL'} ({dt:.0f} s)" for w, ok, dt in results)
         + f"; total {time.time() - t_all:.0f} s")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
