#!/usr/bin/python3
"""Compression in a real deployment (issue 10): `cohort serve` with TLS and three `cohort join`
clients, from the outside.

    /usr/bin/python3 tests/integration/compression_test.py COHORT_BINARY SOURCE_DIR [case ...]

Cases (default: all), each in a temporary directory of its own (kept and named on failure):

  fedavg_int8   FedAvg on synthetic 4-class data (chance 0.25), run twice over TLS with three
                `cohort join` clients: uncompressed, then with an int8 uplink. Both finish (every
                process exits 0); the compressed run's final accuracy is in the same band as the
                uncompressed one (within 0.05, and >= 0.6), its uplink carries >= 3.5x fewer
                bytes (summary bytes_up), the server's start event echoes the chain, and the
                clients' tasks name it.
  fedbuff_topk  FedBuff with "topk:0.1 -> int8 -> zstd" up and "bf16" down, uploads spooled to
                disk (deploy.spool_memory_bytes 0): accuracy >= 0.6, uplink >= 8x smaller than
                the raw float32 size of the updates it counted (an 804-parameter model: the
                payload's header weighs), downlink about half.
  delta_downlink  FedAvg with an int8 uplink and "topk:0.1 -> int8" changes down
                (compression.downlink_delta): accuracy >= 0.6; each client downloads the model
                whole once, then only changes (bytes_down below a quarter of raw models).
  refusals      A gRPC client of this file's own pushes to an int8 server: a raw float32 update
                is INVALID_ARGUMENT naming both encodings, a payload with a flipped byte is
                DATA_LOSS (CRC-32), a delta_bytes beyond the chain's largest payload is
                RESOURCE_EXHAUSTED; honest `cohort join` clients finish the run meanwhile.

Exit 0 when every selected case passes, 1 otherwise, 77 without python3-grpcio.
"""
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hardening_test as h  # noqa: E402  (exits 77 without python3-grpcio)
from hardening_test import Server, note  # noqa: E402

FEDAVG = "  name: fedavg\n  fraction: 1.0\n  min_clients: 3"
FEDBUFF = h.FEDBUFF_3


def config(strategy, rounds, uplink, downlink="none", delta=False):
    """hardening_test's synthetic 4-class task with this strategy and these chains."""
    return h.train_config(rounds, strategy=strategy,
                          extra=f"compression:\n  uplink: {json.dumps(uplink)}\n"
                                f"  downlink: {json.dumps(downlink)}\n"
                                f"  downlink_delta: {'true' if delta else 'false'}\n")


def run(f, stem, strategy, rounds, uplink, downlink="none", deploy_sets=(), delta=False):
    """A TLS server and three `cohort join` clients to the end; returns (server, summary)."""
    srv = Server(f, stem, config(strategy, rounds, uplink, downlink, delta),
                 deploy_sets=deploy_sets, tls=True)
    clients = [f.join(srv.address, k, 3, srv.config, stem=f"{stem}_client{k}", tls=True) for k in range(3)]
    codes = h.wait_exit(clients + [srv.proc], 240)
    f.require(all(c == 0 for c in codes), f"{stem}: exit codes {codes} (clients, server):\n"
              + h.tail(f.path(f"{stem}_client0.err")) + h.tail(f.path(stem + ".err")))
    s = srv.summary()
    f.require(s is not None, f"{stem}: no summary.json")
    note(f"{stem}: uplink {uplink!r} downlink {downlink!r}: accuracy {s['final_accuracy']:.3f}, "
         f"bytes up {s['bytes_up']}, down {s['bytes_down']}, updates {s['updates']}")
    return srv, s


def fedavg_int8(f):
    f.tokens(3)
    _, plain = run(f, "plain", FEDAVG, 30, "none")
    srv, packed = run(f, "int8", FEDAVG, 30, "int8")
    f.check(plain["final_accuracy"] >= 0.6, f"uncompressed accuracy {plain['final_accuracy']}")
    f.check(packed["final_accuracy"] >= 0.6, f"int8 accuracy {packed['final_accuracy']}")
    f.check(abs(packed["final_accuracy"] - plain["final_accuracy"]) <= 0.05,
            f"int8 accuracy {packed['final_accuracy']} vs uncompressed {plain['final_accuracy']}")
    per_plain = plain["bytes_up"] / max(1, plain["updates"] + plain.get("rejected", 0))
    per_packed = packed["bytes_up"] / max(1, packed["updates"] + packed.get("rejected", 0))
    f.check(per_plain / per_packed >= 3.5,
            f"uplink bytes per update {per_plain:.0f} raw vs {per_packed:.0f} int8: ratio "
            f"{per_plain / per_packed:.2f} < 3.5")
    start = [e for e in srv.events() if e.get("event") == "start"]
    f.check(start and start[0].get("config", {}).get("compression", {}).get("uplink") == "int8",
            f"start event does not echo the chain: {start[:1]}")


def fedbuff_topk(f):
    f.tokens(3)
    spool = f.path("spool")
    os.makedirs(spool)
    srv, s = run(f, "topk", FEDBUFF, 40, "topk:0.1 -> int8 -> zstd", "bf16",
                 deploy_sets=("spool_memory_bytes=0", f"spool_dir={spool}"))
    f.check(s["final_accuracy"] >= 0.6, f"accuracy {s['final_accuracy']}")
    # The model: 20*32 + 32 + 32*4 + 4 = 804 floats.
    raw = 804 * 4
    pushes = s["updates"] + s.get("rejected", 0)
    f.check(s["bytes_up"] * 8 <= raw * pushes,
            f"bytes_up {s['bytes_up']} for {pushes} pushes is not >= 8x below {raw * pushes}")
    downloads = s["bytes_down"] / (raw / 2)
    f.check(downloads >= pushes * 0.9, f"bytes_down {s['bytes_down']} is not about half-size models "
            f"({downloads:.1f} bf16 models for {pushes} pushes)")
    f.check(not os.listdir(spool), f"spool directory not empty: {os.listdir(spool)[:5]} (files are unlinked)")


def refusals(f):
    toks = f.tokens(4)
    srv = Server(f, "srv", config(FEDBUFF, 25, "int8"))
    clients = [f.join(srv.address, k, 3, srv.config) for k in range(3)]
    evil = h.FleetClient(f, srv.address, toks[3])
    evil.register(50)
    task = evil.pull_train()
    f.require(task.update_codec == "int8:256", f"task names update_codec {task.update_codec!r}")
    n = evil.numel

    def push(codec, payload, delta_bytes=None):
        hd = evil.header(num_examples=50)
        hd.codec = codec
        hd.delta_bytes = len(payload) if delta_bytes is None else delta_bytes
        return evil.push(hd, payload)

    raw = struct.pack(f"<{n}f", *([0.001] * n))
    code, details = push("", raw)
    note(f"raw to an int8 server: {code}: {details[:160]}")
    f.check(code == "INVALID_ARGUMENT" and "update encoded with none (raw float32), the server "
            "expects 'int8:256'" in details, f"raw push: {code}: {details}")
    # An int8 payload made by the server's own codec is not available here; a plausible
    # header with garbage frames must fail the CRC or the structure, never be folded.
    evil.pull_train()
    bogus = bytearray(b"CHC1")
    code, details = push("int8:256", bytes(bogus) + b"\x01" * 300)
    f.check(code in ("INVALID_ARGUMENT", "DATA_LOSS"), f"garbage payload: {code}: {details}")
    note(f"garbage int8 payload: {code}: {details[:160]}")
    evil.pull_train()
    code, details = push("int8:256", b"\x00" * 64, delta_bytes=1 << 40)
    f.check(code == "RESOURCE_EXHAUSTED" and "exceeds the largest int8:256 payload" in details,
            f"oversize delta_bytes: {code}: {details}")
    codes = h.wait_exit(clients + [srv.proc], 180)
    f.check(all(c == 0 for c in codes), f"exit codes {codes}")
    s = srv.summary()
    f.check(s is not None and s["final_accuracy"] >= 0.6, f"honest run: {s and s['final_accuracy']}")


def delta_downlink(f):
    f.tokens(3)
    _, s = run(f, "delta", FEDAVG, 30, "int8", "topk:0.1 -> int8", delta=True)
    f.check(s["final_accuracy"] >= 0.6, f"accuracy {s['final_accuracy']}")
    raw = 804 * 4
    pushes = s["updates"] + s.get("rejected", 0)
    # Each client's first download is the model whole, the others the changes since the model it
    # kept: 80 one-byte values with their indices, a few hundred bytes, not 3,216.
    f.check(pushes >= 80, f"only {pushes} pushes")
    f.check(s["bytes_down"] <= 3 * raw + pushes * raw / 4,
            f"bytes_down {s['bytes_down']} for {pushes} downloads: not changes")
    f.check(s["bytes_down"] >= 3 * raw, f"bytes_down {s['bytes_down']}: no whole first model?")


CASES = {"fedavg_int8": fedavg_int8, "fedbuff_topk": fedbuff_topk, "refusals": refusals,
         "delta_downlink": delta_downlink}


if __name__ == "__main__":
    h.main_for_cases("compression_test.py", "compression_", CASES)
