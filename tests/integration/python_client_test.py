#!/usr/bin/python3
"""Interop: a Fleet client written in Python (Debian's python3-grpcio + python3-protobuf)
against a real `cohort serve --insecure`.

    /usr/bin/python3 tests/integration/python_client_test.py COHORT_BINARY SOURCE_DIR

The message classes are generated at test time from proto/cohort/v1/fleet.proto with protoc's
own Python generator (`protoc --python_out`, from protobuf-compiler, which the C++ build needs
anyway); the RPC stubs are plain grpc.Channel method handles, so grpc_tools is not needed
(Debian's python3-grpc-tools 1.14 is far older than its python3-protobuf).

Checks: an unknown token gets UNAUTHENTICATED; Register returns the model layout; PullTask
(after WAITs) gives a TRAIN task; Download streams exactly numel * 4 bytes in order; a
wrong-shape push is INVALID_ARGUMENT naming the array; a correct push (header first, then
chunks) is accepted; the server commits version 1 (rounds: 1) and answers DONE; its
metrics.jsonl and summary.json record the run.
"""
import array
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

try:
    import grpc
except ImportError:  # ctest: SKIP_RETURN_CODE 77
    print("SKIP: python3-grpcio is not installed (scripts/install-deps.sh)", file=sys.stderr)
    sys.exit(77)


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) != 3:
        fail("usage: python_client_test.py COHORT_BINARY SOURCE_DIR")
    cohort, src = sys.argv[1], sys.argv[2]
    protoc = shutil.which("protoc") or "/usr/bin/protoc"
    work = tempfile.mkdtemp(prefix="cohort_pyclient_")
    server = None
    ok = False
    try:
        gen = os.path.join(work, "gen")
        os.makedirs(gen)
        subprocess.run([protoc, "-I", os.path.join(src, "proto"), "--python_out=" + gen,
                        os.path.join(src, "proto/cohort/v1/fleet.proto")], check=True)
        sys.path.insert(0, gen)
        from cohort.v1 import fleet_pb2 as pb  # noqa: E402  (generated above)

        with open(os.path.join(work, "tokens.txt"), "w") as f:
            f.write("# token client_id\npy-secret 0\n")
        config = os.path.join(work, "config.yaml")
        with open(config, "w") as f:
            f.write("""data:
  dataset: synthetic
  synthetic: {num_examples: 200, test_examples: 100, dim: 8, classes: 3}
model:
  name: logreg
training:
  lr: 0.1
  local_steps: 5
strategy:
  name: fedavg
  fraction: 1.0
  min_clients: 1
run:
  rounds: 1
  seed: 2
""")
        out = os.path.join(work, "out")
        env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
        server = subprocess.Popen(
            [cohort, "serve", config, "--listen", "127.0.0.1:0", "--tokens",
             os.path.join(work, "tokens.txt"), "--insecure", "--out", out],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        line = server.stdout.readline()
        m = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", line)
        if not m:
            fail(f"server did not print its port: {line!r} {server.stderr.read()}")
        address = "127.0.0.1:" + m.group(1)

        channel = grpc.insecure_channel(address)
        grpc.channel_ready_future(channel).result(timeout=20)

        def unary(name, req_cls, rep_cls):
            return channel.unary_unary("/cohort.v1.Fleet/" + name,
                                       request_serializer=req_cls.SerializeToString,
                                       response_deserializer=rep_cls.FromString)

        register = unary("Register", pb.RegisterRequest, pb.RegisterReply)
        pull = unary("PullTask", pb.PullTaskRequest, pb.PullTaskReply)
        download = channel.unary_stream("/cohort.v1.Fleet/Download",
                                        request_serializer=pb.DownloadRequest.SerializeToString,
                                        response_deserializer=pb.TensorChunk.FromString)
        push = channel.stream_unary("/cohort.v1.Fleet/PushUpdate",
                                    request_serializer=pb.UpdateChunk.SerializeToString,
                                    response_deserializer=pb.PushReply.FromString)
        good = [("authorization", "Bearer py-secret")]

        # 1. Unknown token.
        try:
            register(pb.RegisterRequest(num_examples=10), metadata=[("authorization", "Bearer nope")],
                     timeout=10)
            fail("Register with an unknown token succeeded")
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNAUTHENTICATED:
                fail(f"unknown token: expected UNAUTHENTICATED, got {e.code()}: {e.details()}")

        # 2. Register.
        reg = register(pb.RegisterRequest(num_examples=50, client_version="python-test"),
                       metadata=good, timeout=10)
        if reg.client_id != 0:
            fail(f"client id {reg.client_id}, expected 0 (from the tokens file)")
        specs = [(a.name, list(a.shape)) for a in reg.layout.arrays]
        numel = 0
        for _, shape in specs:
            n = 1
            for d in shape:
                n *= d
            numel += n
        # logreg on 8 features, 3 classes: weight [3, 8] + bias [3].
        if numel != 3 * 8 + 3:
            fail(f"layout {specs}: {numel} parameters, expected 27")

        # 3. Pull until TRAIN.
        deadline = time.time() + 20
        while True:
            task = pull(pb.PullTaskRequest(), metadata=good, timeout=10)
            if task.kind == pb.PullTaskReply.TRAIN:
                break
            if task.kind != pb.PullTaskReply.WAIT or time.time() > deadline:
                fail(f"expected TRAIN, got {task}")
            time.sleep(max(task.retry_after_s, 0.01))

        # 4. Download the model.
        buf = bytearray()
        for ch in download(pb.DownloadRequest(task_id=task.task_id, what=pb.DownloadRequest.MODEL),
                           metadata=good, timeout=20):
            if ch.offset != len(buf) or ch.total_bytes != numel * 4:
                fail(f"chunk offset {ch.offset} / total {ch.total_bytes} after {len(buf)} bytes")
            buf += ch.data
        if len(buf) != numel * 4:
            fail(f"downloaded {len(buf)} bytes, expected {numel * 4}")
        model = array.array("f")
        model.frombytes(bytes(buf))
        if sys.byteorder != "little":
            model.byteswap()

        def header(layout_specs, total):
            h = pb.UpdateHeader(task_id=task.task_id, base_version=task.version, num_examples=50,
                                local_steps=task.local_steps or 1)
            h.metrics["train_loss"] = 0.5
            for name, shape in layout_specs:
                h.layout.arrays.add(name=name, shape=shape, trainable=True)
            return h

        def messages(h, payload, chunk=40):
            yield pb.UpdateChunk(header=h)
            for off in range(0, len(payload), chunk):
                yield pb.UpdateChunk(chunk=pb.TensorChunk(offset=off, data=payload[off:off + chunk],
                                                          total_bytes=len(payload)))

        # A pseudo-gradient: 1% of the weights (finite, the right shape).
        delta = array.array("f", (0.01 * v for v in model))
        payload = delta.tobytes()

        # 5. Wrong shape: rejected, naming the array.
        bad_specs = [(specs[0][0], [specs[0][1][0] + 1] + specs[0][1][1:])] + specs[1:]
        try:
            push(messages(header(bad_specs, len(payload)), payload), metadata=good, timeout=20)
            fail("a wrong-shape update was accepted")
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.INVALID_ARGUMENT or specs[0][0] not in e.details():
                fail(f"wrong shape: expected INVALID_ARGUMENT naming {specs[0][0]}, got "
                     f"{e.code()}: {e.details()}")
            print(f"wrong-shape update rejected: {e.code().name}: {e.details()}")

        # A rejected push ends the task: pull the new one.
        deadline = time.time() + 20
        while True:
            task = pull(pb.PullTaskRequest(), metadata=good, timeout=10)
            if task.kind == pb.PullTaskReply.TRAIN:
                break
            if task.kind != pb.PullTaskReply.WAIT or time.time() > deadline:
                fail(f"expected a new TRAIN after the rejection, got {task}")
            time.sleep(max(task.retry_after_s, 0.01))
        buf = bytearray()
        for ch in download(pb.DownloadRequest(task_id=task.task_id, what=pb.DownloadRequest.MODEL),
                           metadata=good, timeout=20):
            buf += ch.data
        if len(buf) != numel * 4:
            fail(f"second download: {len(buf)} bytes")

        # 6. A correct update.
        reply = push(messages(header(specs, len(payload)), payload), metadata=good, timeout=20)
        if not reply.accepted:
            fail(f"update not accepted: {reply.reason}")
        print(f"update for task {task.task_id} (version {task.version}) accepted")

        # 7. rounds: 1 -> DONE.
        deadline = time.time() + 20
        while True:
            r = pull(pb.PullTaskRequest(), metadata=good, timeout=10)
            if r.kind == pb.PullTaskReply.DONE:
                break
            if time.time() > deadline:
                fail(f"no DONE after the round: {r}")
            time.sleep(max(r.retry_after_s, 0.01))
        channel.close()
        try:
            rc = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            fail("server did not exit after the run")
        if rc != 0:
            fail(f"server exited with {rc}: {server.stderr.read()}")

        events = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl"))]
        kinds = [e["event"] for e in events]
        if "rejected" not in kinds or "round" not in kinds:
            fail(f"metrics.jsonl events {kinds}: expected a rejected and a round event")
        summary = json.load(open(os.path.join(out, "summary.json")))
        if summary.get("rounds") != 1 or not re.fullmatch(r"[0-9a-f]{16}", summary.get("model_hash", "")):
            fail(f"summary {summary}")
        print(f"server committed version 1 (model {summary['model_hash']}); python client OK")
        ok = True
    finally:
        if server is not None and server.poll() is None:
            server.kill()
            server.wait()
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"(files kept in {work})", file=sys.stderr)


if __name__ == "__main__":
    main()
