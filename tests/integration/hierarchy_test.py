#!/usr/bin/python3
"""Hierarchical aggregation in a real deployment (issue 15): `cohort serve --upstream`
aggregators between a top `cohort serve` and `cohort join` clients, all over TLS with tokens on
both sides, from the outside.

    /usr/bin/python3 tests/integration/hierarchy_test.py COHORT_BINARY SOURCE_DIR [case ...]

Cases (default: all), each in a temporary directory of its own (kept and named on failure):

  equal    FedAvg, 3 rounds: a flat run (top server <- 4 clients) and a two-level run (top
           server <- 2 aggregators <- 2 clients each, the same data parts and client ids) end
           with the same global model up to float tolerance (full-batch local steps, so the
           clients' training does not depend on task ids). The top server's rounds in the
           two-level run receive 2 updates carrying all 1800 examples; every process exits 0.
  kill     FedAvg (min_clients 2) over 2 aggregators x 2 clients, one subtree training longer
           tasks: after rounds holding both subtrees (1800 examples), that aggregator is killed
           (SIGKILL) while it holds a task. The top server loses only that
           subtree's contribution: the next round commits with the other subtree's update
           (900 examples) and counts one lost. The aggregator restarts on the same address, its
           clients reconnect, rounds hold both subtrees again, the loss keeps falling, and
           after SIGTERM every process exits 0.
  fedbuff  FedBuff (buffer 2) above 2 aggregators x 2 clients: every buffer flush holds 2
           updates (each an aggregator's round), nothing is rejected, the loss falls.
  refuse   what a tier cannot do is refused with an error naming it: --upstream with a
           checkpoint directory or without a token file, and a SCAFFOLD server above (its
           tasks carry server state) ends the aggregator's run naming SCAFFOLD's state.

Exit 0 when every selected case passes, 1 otherwise, 77 without python3-grpcio.
"""
import math
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hardening_test as h  # noqa: E402  (exits 77 without python3-grpcio)
from hardening_test import Server, note, wait_for  # noqa: E402

CONFIG = """data:
  dataset: synthetic
  partition: iid
  synthetic: {{num_examples: 1800, test_examples: 600, dim: 20, classes: 4, separation: 3.0, noise: 1.0}}
model:
  name: mlp
  hidden: [32]
training:
  lr: {lr}
  batch_size: 1024
  local_steps: {steps}
strategy:
  name: {strategy}
  fraction: 1.0
  min_clients: {min_clients}
run:
  rounds: {rounds}
  seed: 5
  eval_every: 1
  threads: 1
"""


def config(strategy="fedavg", min_clients=2, rounds=3, steps=5, lr=0.1):
    return CONFIG.format(strategy=strategy, min_clients=min_clients, rounds=rounds, steps=steps, lr=lr)


def tokens_file(f, name, ids):
    """A tokens file `name` for client ids `ids`; token files tok_<name>_<id>."""
    lines = ["# token client_id"]
    for i in ids:
        tok = f"tok-{name}-{i}-{os.getpid()}"
        lines.append(f"{tok} {i}")
        f.write(f"tok_{name}_{i}", tok + "\n")
    f.write(name, "\n".join(lines) + "\n")


def aggregator(f, stem, top, cfg_text, token, tokens, extra=(), listen="127.0.0.1:0"):
    """A `cohort serve --upstream` of the top server `top`, over TLS both ways."""
    args = ["--upstream", top.address, "--upstream-token-file", f.path(token), "--upstream-ca",
            os.path.join(f.certs(), "ca.pem"), "--upstream-max-disconnected-s", "60", *extra]
    return Server(f, stem, cfg_text, deploy="client_timeout_s: 2\n", tls=True, tokens=tokens, args=args,
                  listen=listen)


def leaf(f, server, token, part, cfg_path, stem):
    return f.spawn([f.cohort, "join", "--server", server.address, "--token-file", f.path(token), "--ca",
                    os.path.join(f.certs(), "ca.pem"), "--partition", f"{part}/4", "--max-disconnected-s",
                    "20", "--backoff-max-s", "0.3", cfg_path], stem)


def final_model(f, ckpt_dir):
    manifest, arrays = h.read_checkpoint(os.path.join(ckpt_dir, "checkpoint.cohort"))
    f.require(manifest is not None and "model" in arrays, f"no readable checkpoint in {ckpt_dir}")
    return manifest["version"], arrays["model"]


def wait_all(f, procs, timeout, what):
    codes = h.wait_exit(procs, timeout)
    f.check(all(c == 0 for c in codes),
            f"{what}: exit codes {codes}:\n" + "".join(f"--- {p.stem}\n" + h.tail(f.path(p.stem + ".err"))
                                                     for p, c in zip(procs, codes) if c != 0))
    return codes


def equal(f):
    # Flat: the top server and 4 clients (ids 0..3, data parts 0..3).
    tokens_file(f, "flat_tokens", range(4))
    flat = Server(f, "flat", config(min_clients=4), tls=True, tokens="flat_tokens",
                  args=["--checkpoint-dir", f.path("flat_ckpt")])
    flat_leaves = [leaf(f, flat, f"tok_flat_tokens_{k}", k, flat.config, f"flat_leaf{k}") for k in range(4)]
    wait_all(f, [flat.proc] + flat_leaves, 240, "flat run")

    # Two levels: the top server knows the aggregators (ids 0, 1); aggregator a serves the
    # clients with ids 2a, 2a + 1 and the same data parts as in the flat run.
    tokens_file(f, "top_tokens", range(2))
    top = Server(f, "top", config(min_clients=2), tls=True, tokens="top_tokens",
                 args=["--checkpoint-dir", f.path("top_ckpt")])
    aggs, leaves = [], []
    for a in range(2):
        tokens_file(f, f"agg{a}_tokens", [2 * a, 2 * a + 1])
        agg = aggregator(f, f"agg{a}", top, config(), f"tok_top_tokens_{a}", f"agg{a}_tokens",
                         extra=["--relay-min-clients", "2"])
        aggs.append(agg)
        for k in (2 * a, 2 * a + 1):
            leaves.append(leaf(f, agg, f"tok_agg{a}_tokens_{k}", k, agg.config, f"leaf{k}"))
    wait_all(f, [top.proc] + [a.proc for a in aggs] + leaves, 240, "two-level run")

    v_flat, m_flat = final_model(f, f.path("flat_ckpt"))
    v_top, m_top = final_model(f, f.path("top_ckpt"))
    f.check(v_flat == 3 and v_top == 3, f"versions: flat {v_flat}, two-level {v_top}")
    f.require(len(m_flat) == len(m_top) and len(m_flat) > 0, "the two models differ in size")
    diff = max(abs(a - b) for a, b in zip(m_flat, m_top))
    scale = max(abs(a) for a in m_flat)
    note(f"max |flat - two-level| = {diff:.3g} (largest weight {scale:.3g})")
    f.check(math.isfinite(diff) and diff <= 1e-4, f"two-level model differs from flat by {diff}")
    rounds = [e for e in top.events() if e.get("event") == "round"]
    f.check(len(rounds) == 3 and all(e["received"] == 2 and e["examples"] == 1800 for e in rounds),
            f"top rounds: {[(e.get('received'), e.get('examples')) for e in rounds]}")
    flat_rounds = [e for e in flat.events() if e.get("event") == "round"]
    f.check(all(e["received"] == 4 and e["examples"] == 1800 for e in flat_rounds),
            f"flat rounds: {[(e.get('received'), e.get('examples')) for e in flat_rounds]}")
    for a, agg in enumerate(aggs):
        ar = [e for e in agg.events() if e.get("event") == "round"]
        f.check(len(ar) >= 3 and all(e["received"] == 2 and e["examples"] == 900 for e in ar[:3]),
                f"aggregator {a} rounds: {[(e.get('received'), e.get('examples')) for e in ar]}")
    # The top server saw 2 uploads per round, the flat one 4.
    s_top, s_flat = top.summary(), flat.summary()
    f.check(s_top["updates"] == 6 and s_flat["updates"] == 12,
            f"updates: two-level top {s_top.get('updates')}, flat {s_flat.get('updates')}")
    f.check(abs(s_top["final_accuracy"] - s_flat["final_accuracy"]) < 1e-6,
            f"accuracy: two-level {s_top['final_accuracy']}, flat {s_flat['final_accuracy']}")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def kill(f):
    tokens_file(f, "top_tokens", range(2))
    top = Server(f, "top", config(min_clients=2, rounds=100000), deploy="client_timeout_s: 2\n",
                 tls=True, tokens="top_tokens")
    aggs, leaves = [], []
    port1 = free_port()
    # Aggregator 1's clients train long tasks of as much progress (same lr x steps, so the top
    # server's norm bound sees ordinary updates), so that it is killed while it holds a task.
    slow = config(steps=2000, lr=0.1 * 5 / 2000)
    for a in range(2):
        tokens_file(f, f"agg{a}_tokens", [2 * a, 2 * a + 1])
        listen = {"listen": f"127.0.0.1:{port1}"} if a == 1 else {}
        agg = aggregator(f, f"agg{a}", top, slow if a == 1 else config(), f"tok_top_tokens_{a}",
                         f"agg{a}_tokens", extra=["--relay-min-clients", "2"], **listen)
        aggs.append(agg)
        for k in (2 * a, 2 * a + 1):
            leaves.append(leaf(f, agg, f"tok_agg{a}_tokens_{k}", k, agg.config, f"leaf{k}"))

    def rounds():
        return [e for e in top.events() if e.get("event") == "round"]

    f.require(wait_for(lambda: sum(e["examples"] == 1800 for e in rounds()) >= 2, 180),
              "no round held both subtrees:\n" + h.tail(f.path("top.err")))
    aggs[1].proc.kill()
    aggs[1].proc.wait()
    killed_at = top.version()
    note(f"killed aggregator 1 at top version {killed_at}")

    def partial():
        return [e for e in rounds() if e["version"] >= killed_at and e["received"] == 1 and e["lost"] >= 1]

    f.require(wait_for(lambda: partial(), 60),
              "no round closed without the killed subtree:\n" + h.tail(f.path("top.err")))
    p = partial()[0]
    note(f"round after the kill: received {p['received']}, lost {p['lost']}, examples {p['examples']}")
    f.check(p["examples"] == 900 and p["version"] <= killed_at + 1,
            f"the round of the kill: {p} (killed at version {killed_at})")
    # The aggregator comes back on the same address; its clients reconnect and both subtrees
    # take part again.
    aggs[1] = aggregator(f, "agg1b", top, slow, "tok_top_tokens_1", "agg1_tokens",
                         extra=["--relay-min-clients", "2"], listen=f"127.0.0.1:{port1}")
    back = top.version()
    f.require(wait_for(lambda: sum(e["examples"] == 1800 and e["version"] > back for e in rounds()) >= 2, 120),
              "both subtrees did not take part again:\n" + h.tail(f.path("agg1b.err")))
    (code, _), joins = h.sigterm_and_watch(top, [aggs[0].proc, aggs[1].proc] + leaves, 120)
    f.check(code == 0 and all(c == 0 for c, _ in joins),
            f"exit codes: top {code}, aggregators and clients {[c for c, _ in joins]}:\n"
            + h.tail(f.path("agg0.err")) + h.tail(f.path("agg1b.err")))
    rs = rounds()
    f.check(all(e["examples"] in (900, 1800) for e in rs),
            f"a round held part of a subtree: {sorted(set(e['examples'] for e in rs))}")
    evals = [e for e in top.events() if e.get("event") == "eval"]
    at_kill = next(e["loss"] for e in evals if e["round"] >= killed_at)
    note(f"{len(rs)} top rounds; loss {evals[0]['loss']:.4f} -> {at_kill:.4f} (kill) -> {evals[-1]['loss']:.4f}")
    f.check(evals[-1]["loss"] < at_kill,
            f"the loss did not keep falling: {evals[-1]['loss']} (at the kill {at_kill})")


def fedbuff(f):
    """FedBuff above aggregators: each aggregator's round reaches the buffer as one update."""
    tokens_file(f, "top_tokens", range(2))
    top_cfg = config(rounds=6).replace("  fraction: 1.0\n  min_clients: 2\n", "").replace(
        "name: fedavg", "name: fedbuff\n  buffer_size: 2")
    top = Server(f, "top", top_cfg, tls=True, tokens="top_tokens")
    procs = [top.proc]
    for a in range(2):
        tokens_file(f, f"agg{a}_tokens", [2 * a, 2 * a + 1])
        agg = aggregator(f, f"agg{a}", top, config(), f"tok_top_tokens_{a}", f"agg{a}_tokens",
                         extra=["--relay-min-clients", "2"])
        procs.append(agg.proc)
        for k in (2 * a, 2 * a + 1):
            procs.append(leaf(f, agg, f"tok_agg{a}_tokens_{k}", k, agg.config, f"leaf{k}"))
    wait_all(f, procs, 240, "fedbuff over aggregators")
    flushes = [e for e in top.events() if e.get("event") == "buffer_flush"]
    s_top = top.summary()
    f.check(len(flushes) == 6 and all(e["updates"] == 2 for e in flushes),
            f"buffer flushes: {[e.get('updates') for e in flushes]}")
    f.check(s_top is not None and s_top["updates"] >= 12 and s_top["rejected"] == 0,
            f"top summary: {s_top}")
    evals = [e for e in top.events() if e.get("event") == "eval"]
    f.check(evals[-1]["loss"] < evals[0]["loss"], f"loss {evals[0]['loss']} -> {evals[-1]['loss']}")
    note(f"fedbuff over aggregators: {len(flushes)} flushes, loss {evals[0]['loss']:.4f} -> "
         f"{evals[-1]['loss']:.4f}")


def refuse(f):
    tokens_file(f, "top_tokens", range(2))
    tokens_file(f, "agg_tokens", [0])
    cfg = f.write("agg.yaml", config())
    base = [f.cohort, "serve", cfg, "--listen", "127.0.0.1:0", "--tokens", f.path("agg_tokens"),
            "--insecure", "--upstream", "127.0.0.1:1", "--upstream-insecure"]
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    for args, expected in [
        (["--upstream-token-file", f.path("tok_top_tokens_0"), "--checkpoint-dir", f.path("ck")],
         "an aggregator keeps no checkpoints"),
        ([], "--upstream-token-file is required"),
        (["--upstream-token-file", f.path("tok_top_tokens_0"), "--relay-fraction", "0"],
         "--relay-fraction: must be in (0, 1]"),
    ]:
        p = subprocess.run(base + args, capture_output=True, text=True, timeout=60, env=env)
        f.check(p.returncode == 2 and expected in p.stderr,
                f"{args}: exit {p.returncode}, stderr: {p.stderr.strip()[-300:]}")
    # A SCAFFOLD server above: its tasks carry server state, which a tier cannot forward.
    top = Server(f, "top", config(strategy="scaffold", min_clients=1, rounds=5), tls=True,
                 tokens="top_tokens")
    agg = aggregator(f, "agg", top, config(), "tok_top_tokens_0", "agg_tokens")
    leaf(f, agg, "tok_agg_tokens_0", 0, agg.config, "leaf0")
    code = h.wait_exit([agg.proc], 60)[0]
    f.check(code == 2 and "server state (SCAFFOLD" in agg.stderr(),
            f"aggregator under SCAFFOLD: exit {code}:\n{h.tail(f.path('agg.err'))}")


CASES = {"equal": equal, "kill": kill, "fedbuff": fedbuff, "refuse": refuse}


if __name__ == "__main__":
    h.main_for_cases("hierarchy_test.py", "hierarchy_", CASES)
