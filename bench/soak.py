#!/usr/bin/python3
"""Soak test of a deployment (not part of CI; `bash bench/run.sh build soak`): one `cohort serve`
on loopback with 200 clients for DURATION seconds (default 1800):

  honest    4 real `cohort join` processes training on their part of the data
  slow      56 clients that take tasks, download and heartbeat, then never push (their tasks
            time out, or are given up when they register again)
  flapping  40 clients that register, take a task and vanish, or re-register mid-task
  garbage   30 clients that push wrong shapes, NaN, truncated or reordered streams, stale task
            ids, undecodable bytes, or call with an unknown token
  claims    30 clients that claim 1e12 examples, 10**9 local steps, 1000 metrics, or send
            updates of enormous norm
  holders   20 clients that open push streams, send the header and one chunk, then go silent
  flooders  20 clients that call Heartbeat as fast as they can

Every 10 s it samples the server's RSS, open file descriptors and threads. At the end it
reports RSS at start (after a 120 s warm-up) and end with the least-squares slope, fd and
thread counts, rejections by kind (from metrics.jsonl), the server's own counters and the
accuracy over time, as JSON (bench/out/soak.json) and as the markdown that goes into
BENCHMARKS.md.

    /usr/bin/python3 bench/soak.py COHORT_BINARY SOURCE_DIR [DURATION_S]
"""
import array
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import grpc

SRC = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(SRC, "tests/integration"))

pb = None
ROLES = [("honest", 4), ("slow", 56), ("flapping", 40), ("garbage", 30), ("claims", 30), ("holders", 20),
         ("flooders", 20)]

CONFIG = """data:
  dataset: synthetic
  partition: iid
  synthetic: {num_examples: 4000, test_examples: 1000, dim: 20, classes: 4, separation: 2.0, noise: 1.5}
model:
  name: mlp
  hidden: [64]
training:
  lr: 0.05
  batch_size: 32
  local_steps: 20
strategy:
  name: fedbuff
  buffer_size: 4
run:
  rounds: 0
  seed: 11
  eval_every: 25
  threads: 1
"""


class Stop(Exception):
    pass


class Sim:
    """One simulated client: a token, a channel, the Fleet methods."""

    def __init__(self, address, token, stop):
        self.address, self.token, self.stop = address, token, stop
        self.md = [("authorization", "Bearer " + token)]
        self.channel = None
        self.connect()

    def connect(self):
        if self.channel:
            self.channel.close()
        self.channel = grpc.insecure_channel(self.address, options=[("grpc.use_local_subchannel_pool", 1)])
        u = lambda n, q, r: self.channel.unary_unary(f"/cohort.v1.Fleet/{n}", request_serializer=q.SerializeToString,  # noqa: E731
                                                     response_deserializer=r.FromString)
        self.register_ = u("Register", pb.RegisterRequest, pb.RegisterReply)
        self.pull_ = u("PullTask", pb.PullTaskRequest, pb.PullTaskReply)
        self.heartbeat_ = u("Heartbeat", pb.HeartbeatRequest, pb.HeartbeatReply)
        self.download_ = self.channel.unary_stream("/cohort.v1.Fleet/Download",
                                                   request_serializer=pb.DownloadRequest.SerializeToString,
                                                   response_deserializer=pb.TensorChunk.FromString)
        self.push_ = self.channel.stream_unary("/cohort.v1.Fleet/PushUpdate",
                                               request_serializer=pb.UpdateChunk.SerializeToString,
                                               response_deserializer=pb.PushReply.FromString)
        self.layout, self.numel, self.task = None, 0, None

    def sleep(self, s):
        if self.stop.wait(s):
            raise Stop()

    def register(self, n=100):
        r = self.register_(pb.RegisterRequest(num_examples=n, client_version="soak"), metadata=self.md, timeout=10)
        self.layout = r.layout
        self.numel = sum(int(math.prod(a.shape)) for a in r.layout.arrays)

    def pull(self):
        while True:
            r = self.pull_(pb.PullTaskRequest(), metadata=self.md, timeout=10)
            if r.kind == pb.PullTaskReply.TRAIN:
                self.task = r
                return r
            if r.kind == pb.PullTaskReply.DONE:
                raise Stop()
            self.sleep(max(r.retry_after_s, 0.05))

    def download(self):
        buf = bytearray()
        for ch in self.download_(pb.DownloadRequest(task_id=self.task.task_id, what=pb.DownloadRequest.MODEL),
                                 metadata=self.md, timeout=30):
            buf += ch.data
        return buf

    def header(self, examples=100, steps=None, metrics=None, layout=None):
        h = pb.UpdateHeader(task_id=self.task.task_id, base_version=self.task.version, num_examples=examples,
                            local_steps=self.task.local_steps if steps is None else steps)
        for k, v in (metrics or {"train_loss": 0.5}).items():
            h.metrics[k] = v
        h.layout.CopyFrom(layout or self.layout)
        return h

    def chunks(self, payload, chunk=64 << 10, total=None):
        total = len(payload) if total is None else total
        return [pb.UpdateChunk(chunk=pb.TensorChunk(offset=o, data=payload[o:o + chunk], total_bytes=total))
                for o in range(0, len(payload), chunk)]

    def push(self, msgs):
        try:
            r = self.push_(iter(msgs), metadata=self.md, timeout=60)
            return "OK" if r.accepted else "NOT_ACCEPTED"
        except grpc.RpcError as e:
            return e.code().name


def floats(values):
    return array.array("f", values).tobytes()


def role_slow(c, rng):
    """Takes tasks, downloads, heartbeats for a while, never finishes: its tasks time out or
    are given up when it registers again."""
    c.register()
    while True:
        c.pull()
        c.download()
        end = time.time() + rng.uniform(5, 40)
        while time.time() < end:
            c.heartbeat_(pb.HeartbeatRequest(task_id=c.task.task_id), metadata=c.md, timeout=5)
            c.sleep(2)
        if rng.random() < 0.5:
            c.register()


def role_flapping(c, rng):
    while True:
        c.register()
        c.pull()
        if rng.random() < 0.5:
            c.download()
        if rng.random() < 0.3:
            c.register()  # re-register mid-task: the task is given up
        c.channel.close()  # vanish
        c.sleep(rng.uniform(1, 20))
        c.connect()


def role_garbage(c, rng):
    c.register()
    while True:
        c.pull()
        good = floats([0.0] * c.numel)
        kind = rng.randrange(7)
        if kind == 0:  # wrong shape
            lay = pb.Layout()
            lay.CopyFrom(c.layout)
            lay.arrays[0].shape[0] += 1
            c.push([pb.UpdateChunk(header=c.header(layout=lay))] + c.chunks(good))
        elif kind == 1:  # NaN
            c.push([pb.UpdateChunk(header=c.header())] + c.chunks(floats([float("nan")] * c.numel)))
        elif kind == 2:  # truncated
            c.push([pb.UpdateChunk(header=c.header())] + c.chunks(good)[:-1])
        elif kind == 3:  # reordered
            ch = c.chunks(good, chunk=1024)
            ch[0], ch[1] = ch[1], ch[0]
            c.push([pb.UpdateChunk(header=c.header())] + ch)
        elif kind == 4:  # stale task id
            h = c.header()
            h.task_id += 12345
            c.push([pb.UpdateChunk(header=h)] + c.chunks(good))
        elif kind == 5:  # undecodable bytes
            raw = c.channel.stream_unary("/cohort.v1.Fleet/PushUpdate")
            try:
                raw(iter([os.urandom(rng.randint(1, 200))]), metadata=c.md, timeout=10)
            except grpc.RpcError:
                pass
        else:  # unknown token
            bad = Sim(c.address, "no-such-token-" + str(rng.random()), c.stop)
            try:
                bad.register()
            except grpc.RpcError:
                pass
            bad.channel.close()
        c.sleep(rng.uniform(0.5, 3))


def role_claims(c, rng):
    c.register(50)
    while True:
        c.pull()
        good = floats([0.0] * c.numel)
        kind = rng.randrange(4)
        if kind == 0:
            c.push([pb.UpdateChunk(header=c.header(examples=10 ** 12))] + c.chunks(good))
        elif kind == 1:
            c.push([pb.UpdateChunk(header=c.header(steps=10 ** 9))] + c.chunks(good))
        elif kind == 2:
            c.push([pb.UpdateChunk(header=c.header(metrics={f"m{i}": i for i in range(1000)}))] + c.chunks(good))
        else:
            c.push([pb.UpdateChunk(header=c.header(examples=1))] + c.chunks(floats([1e4] * c.numel)))
        c.sleep(rng.uniform(0.5, 3))


def role_holders(c, rng):
    c.register()
    while True:
        c.pull()
        gate = threading.Event()
        first = [pb.UpdateChunk(header=c.header())] + c.chunks(floats([0.0] * c.numel), chunk=1024)[:1]

        def gen():
            yield from first
            gate.wait(120)

        f = c.push_.future(gen(), metadata=c.md, timeout=130)
        while not f.done():
            if c.stop.is_set():
                gate.set()
                f.cancel()
                raise Stop()
            time.sleep(0.5)
        gate.set()
        c.sleep(rng.uniform(1, 5))


def role_flooders(c, rng):
    c.register()
    while True:
        try:
            c.heartbeat_(pb.HeartbeatRequest(task_id=0), metadata=c.md, timeout=5)
        except grpc.RpcError:
            pass
        if c.stop.is_set():
            raise Stop()


def run_sim(role, address, token, stop, seed, errors):
    rng = random.Random(seed)
    fn = globals()["role_" + role]
    while not stop.is_set():
        c = None
        try:
            c = Sim(address, token, stop)
            fn(c, rng)
        except Stop:
            return
        except grpc.RpcError as e:
            errors[e.code().name] = errors.get(e.code().name, 0) + 1
        except Exception as e:  # noqa: BLE001
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
        finally:
            if c and c.channel:
                c.channel.close()
        stop.wait(rng.uniform(0.5, 2))


def proc_stats(pid):
    st = {}
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(("VmRSS:", "Threads:")):
                k, v = line.split(":", 1)
                st[k] = int(v.split()[0])
        st["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError):
        return None
    return st


def slope(xs, ys):
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def kind_of(reason):
    for pat, name in [(r"examples", "examples claimed"), (r"local steps", "local steps"),
                      (r"metrics|metric name", "metrics"), (r"norm|max_abs_weight", "update norm / magnitude"),
                      (r"NaN|nan|infinit|finite", "non-finite"), (r"layout|shape", "wrong layout"),
                      (r"truncated", "truncated stream"), (r"contiguous|in order", "reordered chunks"),
                      (r"not client \d+'s current task|stale|predates", "stale or unknown task"),
                      (r"idle|deadline|too slow|bytes/s|stream", "stream deadline"),
                      (r"run is over", "run over"), (r"CRC", "checksum")]:
        if re.search(pat, reason):
            return name
    return "other"


def main():
    global pb
    cohort = os.path.abspath(sys.argv[1])
    duration = float(sys.argv[3]) if len(sys.argv) > 3 else 1800.0
    work = tempfile.mkdtemp(prefix="cohort_soak_")
    subprocess.run(["protoc", "-I", os.path.join(SRC, "proto"), "--python_out=" + work,
                    os.path.join(SRC, "proto/cohort/v1/fleet.proto")], check=True)
    sys.path.insert(0, work)
    from cohort.v1 import fleet_pb2
    pb = fleet_pb2
    n = sum(k for _, k in ROLES)
    tokens = [f"soak-{i}-{os.getpid()}-{random.getrandbits(32):08x}" for i in range(n)]
    with open(os.path.join(work, "tokens.txt"), "w") as f:
        f.writelines(f"{t} {i}\n" for i, t in enumerate(tokens))
    cfg = os.path.join(work, "soak.yaml")
    open(cfg, "w").write(CONFIG)
    out = os.path.join(work, "out")
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    err = open(os.path.join(work, "serve.err"), "w")
    srv = subprocess.Popen([cohort, "serve", cfg, "--listen", "127.0.0.1:0", "--tokens", os.path.join(work, "tokens.txt"),
                            "--insecure", "--out", out, "--max-wall-s", str(duration), "--checkpoint-dir",
                            os.path.join(work, "ckpt")], stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    address = None
    while address is None:
        line = srv.stdout.readline()
        if not line:
            sys.exit("soak: cohort serve exited before listening")
        m = re.match(r"listening on (\S+)", line)
        if m:
            address = m.group(1)
    threading.Thread(target=lambda: [None for _ in srv.stdout], daemon=True).start()
    print(f"soak: server pid {srv.pid} on {address}, {n} clients, {duration:.0f} s, files in {work}", flush=True)
    stop = threading.Event()
    errors = {}
    joins, threads = [], []
    i = 0
    for role, count in ROLES:
        for k in range(count):
            if role == "honest":
                tf = os.path.join(work, f"tok{i}")
                open(tf, "w").write(tokens[i] + "\n")
                joins.append(subprocess.Popen(
                    [cohort, "join", "--server", address, "--token-file", tf, "--insecure", "--partition",
                     f"{k}/{count}", "--max-disconnected-s", "120", cfg],
                    stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, f"join{k}.err"), "w"), env=env))
            else:
                t = threading.Thread(target=run_sim, args=(role, address, tokens[i], stop, i, errors), daemon=True)
                t.start()
                threads.append(t)
            i += 1
    samples = []
    t0 = time.time()
    while srv.poll() is None:
        s = proc_stats(srv.pid)
        if s:
            samples.append((time.time() - t0, s.get("VmRSS", 0), s["fds"], s.get("Threads", 0)))
        time.sleep(10)
    stop.set()
    wall = time.time() - t0
    for p in joins:
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
    events = []
    for line in open(os.path.join(out, "metrics.jsonl")):
        try:
            events.append(json.loads(line))
        except ValueError:
            pass
    summary = json.load(open(os.path.join(out, "summary.json")))
    by_kind = {}
    for e in events:
        if e.get("event") == "rejected":
            k = kind_of(e.get("reason", ""))
            by_kind[k] = by_kind.get(k, 0) + 1
    evals = [(e.get("virtual_time_s", 0), e.get("accuracy")) for e in events if e.get("event") == "eval"]
    # Per role: updates accepted, rejected, tasks lost (the server's per-client statistics).
    role_of, i = {}, 0
    for role, count in ROLES:
        for _ in range(count):
            role_of[i] = role
            i += 1
    per_role = {role: {"accepted": 0, "rejected": 0, "lost": 0} for role, _ in ROLES}
    clients = next((e["clients"] for e in reversed(events) if e.get("event") == "clients"), [])
    for c in clients:
        r = per_role[role_of.get(c.get("id"), "honest")]
        r["accepted"] += c.get("updates_accepted", 0)
        r["rejected"] += c.get("rejected", 0)
        r["lost"] += c.get("lost", 0)
    warm = [s for s in samples if s[0] >= 120] or samples
    xs = [s[0] / 3600 for s in warm]
    rss_mb = [s[1] / 1024 for s in warm]
    result = {
        "duration_s": round(wall), "clients": n, "roles": dict(ROLES), "server_exit": srv.returncode,
        "rss_mb_start": round(rss_mb[0], 1), "rss_mb_end": round(rss_mb[-1], 1),
        "rss_mb_max": round(max(rss_mb), 1), "rss_slope_mb_per_hour": round(slope(xs, rss_mb), 2),
        "fds_start": warm[0][2], "fds_end": warm[-1][2], "fds_max": max(s[2] for s in warm),
        "threads_start": warm[0][3], "threads_end": warm[-1][3], "threads_max": max(s[3] for s in warm),
        "rejections_by_kind": dict(sorted(by_kind.items(), key=lambda kv: -kv[1])),
        "rejected_total": summary.get("rejected"), "updates_accepted": summary.get("updates"),
        "lost": summary.get("lost"), "commits": summary.get("rounds"),
        "accuracy": [(round(t), round(a, 4)) for t, a in evals if a is not None][:: max(1, len(evals) // 12)],
        "final_accuracy": summary.get("final_accuracy"), "per_role": per_role, "client_side_errors": errors,
    }
    os.makedirs(os.path.join(SRC, "bench/out"), exist_ok=True)
    json.dump(result, open(os.path.join(SRC, "bench/out/soak.json"), "w"), indent=1)
    print(json.dumps(result, indent=1))
    print("\n| measure | value |\n|---|---|")
    for k in ("duration_s", "clients", "rss_mb_start", "rss_mb_end", "rss_mb_max", "rss_slope_mb_per_hour",
              "fds_start", "fds_end", "fds_max", "threads_start", "threads_end", "threads_max", "updates_accepted",
              "rejected_total", "lost", "commits", "final_accuracy"):
        print(f"| {k} | {result[k]} |")
    print("\n| role | clients | accepted | rejected | lost |\n|---|---|---|---|---|")
    for role, count in ROLES:
        r = per_role[role]
        print(f"| {role} | {count} | {r['accepted']} | {r['rejected']} | {r['lost']} |")
    print("\n| rejection kind | count |\n|---|---|")
    for k, v in result["rejections_by_kind"].items():
        print(f"| {k} | {v} |")
    shutil.rmtree(work, ignore_errors=True) if srv.returncode == 0 else print(f"soak: files kept in {work}")


if __name__ == "__main__":
    main()
