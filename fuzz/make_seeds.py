#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/ (committed; rerun
after a format change). Each seed is a valid input or a near miss, so the fuzzer starts deep
in the parser instead of at the magic bytes.

    /usr/bin/python3 fuzz/make_seeds.py SOURCE_DIR
"""
import glob
import gzip
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile

FNV_OFFSET, FNV_PRIME = 0xCBF29CE484222325, 0x100000001B3


def fnv1a64(b):
    h = FNV_OFFSET
    for c in b:
        h = ((h ^ c) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


def write(dir_, name, data):
    os.makedirs(dir_, exist_ok=True)
    with open(os.path.join(dir_, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def floats(values):
    return struct.pack("<%df" % len(values), *values)


def checkpoint_parts(version=3, strategy="fedbuff"):
    """(manifest bytes, data bytes) of a valid format-2 checkpoint."""
    arrays, data = [], b""
    for name, layout in [("model", [("w", [2, 3], True), ("b", [3], True)]),
                         ("buffer", [("w", [2, 3], True), ("b", [3], True)])]:
        n = sum(math.prod(s) for _, s, _ in layout)
        vals = floats([0.25 * (i + 1) for i in range(n)])
        arrays.append({"name": name, "layout": [{"name": a, "shape": s, "trainable": t} for a, s, t in layout],
                       "offset": len(data), "bytes": len(vals), "hash": "%016x" % fnv1a64(vals)})
        data += vals
    m = {"format": "cohort-checkpoint", "format_version": 2, "strategy": strategy, "version": version,
         "epoch": 1, "rng_state": [1, 2, 3, 4],
         "runtime": {"time": 12.5, "next_task_number": 7, "clients": [{"id": 0, "num_examples": 50}],
                     "tasks": [], "timers": [], "summary": {"updates": 9}},
         "strategy_state": {"version": version, "buffer_count": 1}, "arrays": arrays}
    return json.dumps(m, separators=(",", ":")).encode(), data


def seeds_checkpoint(out):
    manifest, data = checkpoint_parts()
    whole = b"COHORTC1" + struct.pack("<Q", len(manifest)) + manifest + struct.pack("<Q", fnv1a64(manifest)) + data
    # Mode byte even: the file as is; odd: 2-byte manifest length, manifest, data (the target
    # adds magic, length and checksum).
    write(out, "valid_raw", b"\x00" + whole)
    write(out, "valid_structured", b"\x01" + struct.pack("<H", len(manifest)) + manifest + data)
    write(out, "truncated_raw", b"\x00" + whole[:-5])
    write(out, "old_format", b"\x01" + struct.pack("<H", len(manifest)) +
          manifest.replace(b'"format_version":2', b'"format_version":1') + data)
    write(out, "bad_hash", b"\x01" + struct.pack("<H", len(manifest)) + manifest + data[:-1] + b"\x00")


def seeds_config(src, out):
    doc = open(os.path.join(src, "docs/config.md")).read()
    start = doc.index("## A complete example")
    block = doc[doc.index("```yaml", start) + 8:doc.index("```", doc.index("```yaml", start) + 8)]
    write(out, "complete_example.yaml", block)
    for p in sorted(glob.glob(os.path.join(src, "examples/*.yaml")))[:6]:
        write(out, os.path.basename(p), open(p).read())
    write(out, "deploy.yaml", "listen: 127.0.0.1:0\ntokens: tokens.txt\ninsecure: true\nmax_wall_s: 60\n"
          "checkpoint_dir: ckpt\nkeep_checkpoints: 3\nstream_idle_timeout_s: 5\nmax_upload_bytes: 1000000\n")
    write(out, "admission.yaml", "strategy: {name: fedbuff, buffer_size: 3}\nrun: {rounds: 5}\n"
          "admission: {norm_policy: clip, norm_factor: 5, max_model_growth: 4}\n")
    write(out, "anchors.yaml", "a: &x {lr: 0.1}\ntraining: *x\nrun: {rounds: 2}\n")


def idx(type_code, dims, payload):
    return struct.pack(">BBBB", 0, 0, type_code, len(dims)) + b"".join(struct.pack(">I", d) for d in dims) + payload


def seeds_idx(out):
    labels = idx(0x08, [4], bytes([1, 2, 3, 4]))
    images = idx(0x08, [2, 2, 2], bytes(range(8)))
    write(out, "labels_ubyte", labels)
    write(out, "images_ubyte", images)
    write(out, "images_gz", gzip.compress(images))
    write(out, "floats", idx(0x0D, [3], struct.pack(">3f", 1.0, -2.5, 3.25)))
    write(out, "doubles", idx(0x0E, [2], struct.pack(">2d", 1.0, -2.5)))
    write(out, "shorts", idx(0x0B, [2, 1], struct.pack(">2h", 7, -7)))
    write(out, "ints", idx(0x0C, [1], struct.pack(">i", 123456)))
    write(out, "truncated", images[:-3])


def seeds_trace(out):
    h = "client,steps_per_s,up_mbps,down_mbps,latency_ms\n"
    write(out, "three", h + "0,100,10,50,20\n1,25.5,1,5,150\n2,400,100,500,2\n")
    write(out, "reordered", "latency_ms, client ,down_mbps,up_mbps,steps_per_s\r\n# comment\n\n5,1,50,10,100\n"
          "5,0,50,10,100\n")
    write(out, "bad", h + "0,-1,10,50,20\n0,1,2\n")


def seeds_update_stream(src, out):
    gen = tempfile.mkdtemp()
    subprocess.run(["protoc", "-I", os.path.join(src, "proto"), "--python_out=" + gen,
                    os.path.join(src, "proto/cohort/v1/fleet.proto")], check=True)
    sys.path.insert(0, gen)
    from cohort.v1 import fleet_pb2 as pb  # noqa: E402  (generated above)
    layout = pb.Layout(arrays=[pb.ArraySpec(name="w", shape=[3, 4]), pb.ArraySpec(name="b", shape=[4]),
                               pb.ArraySpec(name="bn.mean", shape=[4], trainable=False)])
    numel = 12 + 4 + 4

    def frame(msg):
        b = msg.SerializeToString()
        return struct.pack("<H", len(b)) + b

    def stream(examples=50, steps=10, chunk=24, values=None, metrics=None):
        values = values if values is not None else [0.01 * (i % 7) for i in range(numel)]
        payload = floats(values)
        h = pb.UpdateHeader(task_id=1, base_version=0, num_examples=examples, local_steps=steps, layout=layout)
        for k, v in (metrics or {"train_loss": 0.5}).items():
            h.metrics[k] = v
        out_b = frame(pb.UpdateChunk(header=h))
        for off in range(0, len(payload), chunk):
            out_b += frame(pb.UpdateChunk(chunk=pb.TensorChunk(offset=off, data=payload[off:off + chunk],
                                                               total_bytes=len(payload))))
        return out_b

    write(out, "valid", stream())
    write(out, "one_chunk", stream(chunk=1 << 20))
    write(out, "nan", stream(values=[float("nan")] * numel))
    write(out, "big_claim", stream(examples=10 ** 12))
    write(out, "many_metrics", stream(metrics={f"m{i}": i for i in range(40)}))
    write(out, "truncated", stream()[:-10])
    shutil.rmtree(gen, ignore_errors=True)


# ---- codec payloads (docs/wire_format.md, "Codec payload") -------------------------------------

CODEC_OFFSETS = [0, 300, 303, 700]  # fuzz_codec_payload.cc's model
CODEC_CHAINS = ["f32", "fp16", "bf16 -> zstd:3", "int8:256", "int4:64", "int2:8", "topk:0.1",
                "topk:0.05 -> int8:256 -> zstd:3", "randk:20 -> fp16", "terngrad:2.5", "terngrad:0",
                "kmeans:4", "zstd:3", "topk:0.2 -> kmeans:3 -> zstd:3", "topk:30:noef -> kmeans:16"]


def codec_payload(spec, raw_frame, side=(), kept=700, sparse=False):
    """A payload of one frame holding `raw_frame` (no byte codec applied), with valid CRCs."""
    import zlib
    fp = FNV_OFFSET
    for o in CODEC_OFFSETS:
        for b in struct.pack("<q", o):
            fp = ((fp ^ b) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    frame_elems = 65536 if not spec.startswith("int") else \
        int(spec.split(":")[1]) * (65536 // int(spec.split(":")[1]))
    h = b"CHC1" + bytes([1, 1 if sparse else 0]) + struct.pack("<H", len(spec)) + spec.encode()
    h += struct.pack("<QIQIQI", 700, 3, fp, frame_elems, kept, len(side)) + floats(list(side))
    h += struct.pack("<I", zlib.crc32(h))
    return h + struct.pack("<III", len(raw_frame), len(raw_frame), zlib.crc32(raw_frame)) + raw_frame


def seeds_codec_payload(out):
    def put(name, chain, payload, split=37):
        write(out, name, bytes([CODEC_CHAINS.index(chain), split]) + payload)

    values = [0.01 * ((i * 7) % 13 - 6) for i in range(700)]
    put("f32", "f32", codec_payload("f32", floats(values)))
    put("fp16", "fp16", codec_payload("fp16", b"\x00\x3c" * 700))  # 1.0 everywhere
    # int8, blocks of 256 per array: arrays of 300, 3, 397 -> 2 + 1 + 2 blocks.
    raw = b""
    for n in (300, 3, 397):
        blocks = (n + 255) // 256
        raw += floats([0.5] * blocks) + bytes(((i * 31) % 255 for i in range(n)))
    put("int8", "int8:256", codec_payload("int8:256", raw))
    put("int8_bad_code", "int8:256", codec_payload("int8:256", raw[:-1] + b"\xff"))
    # terngrad: one scaler per array, 2 bits per value (code 3 is invalid).
    raw = b"".join(bytes([0b10010010] * ((n + 3) // 4)) for n in (300, 3, 397))
    put("terngrad", "terngrad:0", codec_payload("terngrad:0", raw, side=(0.1, 0.2, 0.3)))
    # top-k (sparse): 70 kept in the frame: count, uint16 offsets, then f32 values per array run.
    idx = list(range(0, 700, 10))
    raw = struct.pack("<I", len(idx)) + struct.pack("<%dH" % len(idx), *idx)
    raw += floats([1.0] * 30) + floats([2.0] * 0) + floats([3.0] * 40)
    put("topk", "topk:0.1", codec_payload("topk:0.1", raw, kept=70, sparse=True))
    put("topk_unsorted", "topk:0.1",
        codec_payload("topk:0.1", raw[:4] + struct.pack("<H", 15) + raw[6:], kept=70, sparse=True))
    put("truncated", "int8:256", codec_payload("int8:256", b"\x00" * 40)[:-7])
    put("empty", "f32", b"")


def seeds_codec_values(out):
    write(out, "f32", bytes([0, 8]) + floats([1, -2, 3.5, 0, 1e-3, -1e3, 7, 8]))
    write(out, "int8", bytes([3, 8]) + floats([2.0]) + bytes(range(120, 128)))
    write(out, "int4", bytes([4, 16]) + floats([1.0]) + bytes([0x7e, 0x12] * 4))
    write(out, "terngrad", bytes([6, 8]) + floats([0.5]) + bytes([0b10010010, 0b00011001]))
    write(out, "kmeans16", bytes([8, 4]) + floats(list(range(16))) + bytes([0x1f, 0xe2]))
    write(out, "zstd_garbage", bytes([9, 2]) + b"\x28\xb5\x2f\xfd" + b"\x00" * 20)


def seeds_secagg_messages(out):
    """One valid message of each kind (secagg/messages.h formats) and near misses."""
    def header(kind, rnd=7):
        return struct.pack("<BBQ", 1, kind, rnd)
    key = bytes(range(32))
    ids = lambda xs: struct.pack("<I", len(xs)) + b"".join(struct.pack("<q", x) for x in xs)
    adv = header(1) + struct.pack("<q", 3) + key + key[::-1]
    roster = (header(2) + struct.pack("<qiiiq", 1, 2, 0, 20, 5) + key + ids([1, 2, 3]) +
              struct.pack("<I", 2) + struct.pack("<q", 2) + key + key + struct.pack("<q", 3) +
              key + key)
    cipher = bytes(120)
    share_keys = (header(3) + struct.pack("<q", 1) + key + struct.pack("<I", 2) +
                  struct.pack("<q", 2) + cipher + struct.pack("<q", 3) + cipher)
    bundle = header(4) + struct.pack("<q", 2) + struct.pack("<I", 1) + struct.pack("<q", 1) + cipher
    words = bytes([0xFF, 0x0F])  # three 4-bit words: 15, 15, 15 (padding zero)
    masked = header(5) + struct.pack("<qBQ", 1, 4, 3) + words
    request = header(6) + struct.pack("<q", 1) + ids([1, 2]) + ids([3])
    share = struct.pack("<5Q", 1, 2, 3, 4, 5)
    response = (header(7) + struct.pack("<q", 1) + struct.pack("<I", 2) +
                struct.pack("<qB", 2, 1) + share + struct.pack("<qB", 3, 2) + share + ids([]))
    for name, msg in [("advertise", adv), ("roster", roster), ("share_keys", share_keys),
                      ("bundle", bundle), ("masked", masked), ("request", request),
                      ("response", response)]:
        write(out, name, msg)
        write(out, name + "_truncated", msg[:-1])
    write(out, "bad_version", b"\x02" + adv[1:])
    write(out, "huge_count", header(6) + struct.pack("<q", 1) + struct.pack("<I", 0xFFFFFFFF))


def main():
    src = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
    corpus = os.path.join(src, "fuzz/corpus")
    seeds_checkpoint(os.path.join(corpus, "checkpoint"))
    seeds_codec_payload(os.path.join(corpus, "codec_payload"))
    seeds_codec_values(os.path.join(corpus, "codec_values"))
    seeds_config(src, os.path.join(corpus, "config"))
    seeds_idx(os.path.join(corpus, "idx"))
    seeds_secagg_messages(os.path.join(corpus, "secagg_messages"))
    seeds_trace(os.path.join(corpus, "trace"))
    seeds_update_stream(src, os.path.join(corpus, "update_stream"))
    for d in sorted(os.listdir(corpus)):
        print(f"{d}: {len(os.listdir(os.path.join(corpus, d)))} seeds")


if __name__ == "__main__":
    main()
