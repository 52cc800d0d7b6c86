#!/usr/bin/python3
"""A fault-injecting gRPC proxy for the Fleet service (docs/design/testing.md, "Fault
injection"): clients connect to the proxy, the proxy forwards every RPC to the real server and,
at the configured rates, damages it on the way. Message-level, so the damage is the kind a
buggy middlebox, a flaky network or a broken client produces, not random TCP garbage:

  drop        the request never reaches the server (UNAVAILABLE to the client), or the server's
              reply never reaches the client (the server did the work; UNAVAILABLE)
  delay       the call waits up to --max-delay-s before it is forwarded
  duplicate   a unary call is sent twice; a whole PushUpdate stream is sent twice; a chunk is
              sent twice within a stream
  reorder     two chunks of a PushUpdate stream are swapped
  truncate    a PushUpdate stream loses its last chunks; a Download stream ends early
  corrupt     one byte of a chunk's data is flipped (PushUpdate or Download)
  disconnect  a PushUpdate stream is cut mid-way (the server's call is cancelled); a Download
              stream is cut mid-way (UNAVAILABLE)

Every PushUpdate the proxy forwarded is recorded with what it did to it and what the server
answered, so a test can check that no damaged update and no duplicate was accepted, and that the
server's count of accepted updates equals the acceptances the proxy saw.

    /usr/bin/python3 fault_proxy.py --listen 127.0.0.1:0 --upstream 127.0.0.1:7450 \\
        --rate 0.1 [--seed 1] [--faults drop,delay,...] [--max-delay-s 0.5]
"""
import argparse
import random
import sys
import threading
import time
from concurrent import futures

import grpc

SERVICE = "cohort.v1.Fleet"
FAULTS = ("drop", "delay", "duplicate", "reorder", "truncate", "corrupt", "disconnect")
CONTENT_FAULTS = ("reorder", "truncate", "corrupt", "chunk_dropped", "chunk_duplicated")


class Proxy:
    """Forwards Fleet RPCs from `listen` to `upstream`, injecting faults. `pb` is the generated
    fleet_pb2 module (the proxy parses chunks to damage them)."""

    def __init__(self, pb, upstream, listen="127.0.0.1:0", rate=0.1, faults=FAULTS, seed=1,
                 max_delay_s=0.5):
        self.pb = pb
        self.rate = rate
        self.faults = tuple(faults)
        self.max_delay_s = max_delay_s
        self.rng = random.Random(seed)
        self.rng_mu = threading.Lock()
        self.mu = threading.Lock()
        self.pushes = []        # dicts: client token, faults, upstream code (None = not sent)
        self.injected = {}      # fault name -> count
        self.channel = grpc.insecure_channel(upstream, options=[
            ("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)])
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=64), options=[
            ("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20),
            ("grpc.so_reuseport", 0)])
        handlers = {name: grpc.unary_unary_rpc_method_handler(self._unary(name))
                    for name in ("Register", "PullTask", "Heartbeat", "ReportEval")}
        handlers["Download"] = grpc.unary_stream_rpc_method_handler(self._download)
        handlers["PushUpdate"] = grpc.stream_unary_rpc_method_handler(self._push)
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self.port = self.server.add_insecure_port(listen)
        self.address = listen.rsplit(":", 1)[0] + ":" + str(self.port)
        self.server.start()

    def stop(self):
        self.server.stop(0)
        self.channel.close()

    # ---- helpers ---------------------------------------------------------------------------

    def _roll(self, *kinds):
        """The fault to inject on this call (one of `kinds` that is enabled), or None."""
        kinds = [k for k in kinds if k in self.faults]
        with self.mu:
            # Kinds not injected yet on any call come first, so that a run covers every kind
            # whatever the calls' timing (a run's calls interleave differently each time).
            seen = {name.split(".")[1] for name in self.injected}
        fresh = [k for k in kinds if k not in seen]
        with self.rng_mu:
            if not kinds or self.rng.random() >= self.rate:
                return None
            return self.rng.choice(fresh or kinds)

    def _randint(self, a, b):
        with self.rng_mu:
            return self.rng.randint(a, b)

    def _count(self, fault):
        with self.mu:
            self.injected[fault] = self.injected.get(fault, 0) + 1

    def _delay(self):
        with self.rng_mu:
            d = self.rng.uniform(0, self.max_delay_s)
        time.sleep(d)

    @staticmethod
    def _metadata(ctx):
        return [(k, v) for k, v in ctx.invocation_metadata() if k == "authorization"]

    @staticmethod
    def _abort_like(ctx, err):
        ctx.abort(err.code(), err.details() or "")

    def _flip(self, chunk_bytes):
        """A serialized TensorChunk with one data byte flipped (unchanged when it has no data)."""
        ch = self.pb.TensorChunk.FromString(chunk_bytes)
        if not ch.data:
            return chunk_bytes, False
        i = self._randint(0, len(ch.data) - 1)
        d = bytearray(ch.data)
        d[i] ^= 1 << self._randint(0, 7)
        ch.data = bytes(d)
        return ch.SerializeToString(), True

    # ---- unary RPCs ------------------------------------------------------------------------

    def _unary(self, name):
        call = self.channel.unary_unary(f"/{SERVICE}/{name}")

        def handler(request, ctx):
            md = self._metadata(ctx)
            fault = self._roll("drop", "delay", "duplicate")
            if fault:
                self._count(f"{name}.{fault}")
            if fault == "delay":
                self._delay()
            if fault == "drop" and self._randint(0, 1) == 0:
                ctx.abort(grpc.StatusCode.UNAVAILABLE, "fault proxy: request dropped")
            try:
                reply = call(request, metadata=md, timeout=30)
                if fault == "duplicate":
                    reply = call(request, metadata=md, timeout=30)
            except grpc.RpcError as e:
                self._abort_like(ctx, e)
            if fault == "drop":
                ctx.abort(grpc.StatusCode.UNAVAILABLE, "fault proxy: reply dropped")
            return reply

        return handler

    # ---- Download --------------------------------------------------------------------------

    def _download(self, request, ctx):
        md = self._metadata(ctx)
        fault = self._roll("delay", "truncate", "corrupt", "disconnect")
        if fault:
            self._count(f"Download.{fault}")
        if fault == "delay":
            self._delay()
        stream = self.channel.unary_stream(f"/{SERVICE}/Download")(request, metadata=md, timeout=60)
        try:
            chunks = list(stream)
        except grpc.RpcError as e:
            self._abort_like(ctx, e)
        cut = self._randint(0, max(0, len(chunks) - 1)) if chunks else 0
        for i, c in enumerate(chunks):
            if fault == "truncate" and i == cut and len(chunks) > 1:
                return  # the stream ends early, with OK: the client must notice the missing bytes
            if fault == "disconnect" and i == cut:
                ctx.abort(grpc.StatusCode.UNAVAILABLE, "fault proxy: download cut")
            if fault == "corrupt" and i == cut:
                c, _ = self._flip(c)
            yield c

    # ---- PushUpdate ------------------------------------------------------------------------

    def _push(self, request_iterator, ctx):
        md = self._metadata(ctx)
        try:
            msgs = list(request_iterator)
        except Exception:  # noqa: BLE001  (the client went away)
            ctx.abort(grpc.StatusCode.CANCELLED, "fault proxy: client went away")
        fault = self._roll(*FAULTS)
        record = {"token": md[0][1] if md else "", "faults": [], "upstream": None, "details": ""}
        send = list(msgs)
        chunks = [i for i, m in enumerate(send) if self.pb.UpdateChunk.FromString(m).HasField("chunk")]
        if fault:
            self._count(f"PushUpdate.{fault}")
        if fault == "delay":
            self._delay()
        elif fault == "reorder" and len(chunks) >= 2:
            i = self._randint(0, len(chunks) - 2)
            a, b = chunks[i], chunks[i + 1]
            send[a], send[b] = send[b], send[a]
            record["faults"].append("reorder")
        elif fault == "truncate" and chunks:
            send = send[:chunks[self._randint(0, len(chunks) - 1)]]
            record["faults"].append("truncate")
        elif fault == "corrupt" and chunks:
            k = chunks[self._randint(0, len(chunks) - 1)]
            um = self.pb.UpdateChunk.FromString(send[k])
            flipped, changed = self._flip(um.chunk.SerializeToString())
            if changed:
                um.chunk.CopyFrom(self.pb.TensorChunk.FromString(flipped))
                send[k] = um.SerializeToString()
                record["faults"].append("corrupt")
        elif fault == "duplicate" and chunks:
            if self._randint(0, 1) == 0:
                k = chunks[self._randint(0, len(chunks) - 1)]
                send.insert(k + 1, send[k])
                record["faults"].append("chunk_duplicated")
            else:
                record["faults"].append("stream_duplicated")
        elif fault == "drop" and self._randint(0, 1) == 0:
            if chunks and self._randint(0, 1) == 0:
                del send[chunks[self._randint(0, len(chunks) - 1)]]
                record["faults"].append("chunk_dropped")
            else:
                record["faults"].append("request_dropped")
                self._record(record)
                ctx.abort(grpc.StatusCode.UNAVAILABLE, "fault proxy: push dropped")
        elif fault == "drop":
            record["faults"].append("reply_dropped")
        elif fault == "disconnect":
            record["faults"].append("disconnect")
        call = self.channel.stream_unary(f"/{SERVICE}/PushUpdate")
        if "disconnect" in record["faults"]:
            # Half the stream, then the server's call is cancelled.
            gate = threading.Event()
            half = send[:max(1, len(send) // 2)]

            def gen():
                yield from half
                gate.wait(10)

            fut = call.future(gen(), metadata=md, timeout=60)
            time.sleep(0.05)
            fut.cancel()
            gate.set()
            record["upstream"] = "CANCELLED_BY_PROXY"
            self._record(record)
            ctx.abort(grpc.StatusCode.UNAVAILABLE, "fault proxy: push cut mid-stream")
        try:
            reply = call(iter(send), metadata=md, timeout=60)  # the serialized PushReply
            record["upstream"] = "OK" if self.pb.PushReply.FromString(reply).accepted else "NOT_ACCEPTED"
        except grpc.RpcError as e:
            reply = None
            record["upstream"] = e.code().name
            record["details"] = e.details() or ""
        if "stream_duplicated" in record["faults"]:
            dup = dict(record, faults=["duplicate_of_previous"], upstream=None)
            try:
                r2 = call(iter(send), metadata=md, timeout=60)
                dup["upstream"] = "OK" if self.pb.PushReply.FromString(r2).accepted else "NOT_ACCEPTED"
            except grpc.RpcError as e:
                dup["upstream"] = e.code().name
                dup["details"] = e.details() or ""
            self._record(dup)
        self._record(record)
        if reply is None:
            ctx.abort(grpc.StatusCode[record["upstream"]], record["details"])
        if "reply_dropped" in record["faults"]:
            ctx.abort(grpc.StatusCode.UNAVAILABLE, "fault proxy: reply dropped")
        return reply

    def _record(self, r):
        with self.mu:
            self.pushes.append(r)

    # ---- what happened ---------------------------------------------------------------------

    def report(self):
        """(accepted pushes seen upstream, damaged pushes accepted, duplicates accepted, injected)."""
        with self.mu:
            pushes = list(self.pushes)
            injected = dict(self.injected)
        accepted = sum(1 for p in pushes if p["upstream"] == "OK")
        damaged_ok = [p for p in pushes if p["upstream"] == "OK" and set(p["faults"]) & set(CONTENT_FAULTS)]
        dup_ok = [p for p in pushes if p["upstream"] == "OK" and "duplicate_of_previous" in p["faults"]]
        return accepted, damaged_ok, dup_ok, injected


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--rate", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--faults", default=",".join(FAULTS))
    ap.add_argument("--max-delay-s", type=float, default=0.5)
    ap.add_argument("--proto-dir", required=True, help="directory with cohort/v1/fleet_pb2.py")
    a = ap.parse_args()
    sys.path.insert(0, a.proto_dir)
    from cohort.v1 import fleet_pb2  # noqa: E402
    p = Proxy(fleet_pb2, a.upstream, a.listen, a.rate, a.faults.split(","), a.seed, a.max_delay_s)
    print(f"listening on {p.address}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        p.stop()


if __name__ == "__main__":
    main()
