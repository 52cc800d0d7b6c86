#!/usr/bin/python3
"""Differential privacy in a real deployment (issue 12): `cohort serve` with TLS and four
`cohort join` clients, from the outside.

    /usr/bin/python3 tests/integration/privacy_test.py COHORT_BINARY SOURCE_DIR [case ...]

Cases (default: all), each in a temporary directory of its own (kept and named on failure):

  server_side  FedAvg with every client in every round (q = 1) and server-side DP (noise
               multiplier 0.5, clip 0.2): summary.json's epsilon equals `cohort privacy`'s for the
               rounds run, every eval event carries the epsilon spent (non-decreasing), one
               "privacy" event per round, and the model still learns (accuracy above chance).
  client_side  The same with side: client: the clients clip their own updates from the task's
               dp_clip_norm and report whether they were within it; the epsilon is the same.
  budget       target_epsilon between the epsilon of 2 and 3 rounds: the server stops after 2
               rounds with a stop reason naming the privacy budget, and never exceeds it.
  secagg       Client-side DP with secure aggregation and an int8 uplink (the quantizer becomes the
               protocol's fixed point): every round's sum comes from the masking protocol over
               all four clients ("secagg" events), the clients report their updates in the
               released sum, the epsilon is cohort privacy's, and the model learns.
  refusals     `cohort serve` refuses DP with fedasync (no group to privatize) and server-side
               DP combined with a robust rule, each with an error naming the cause.

Exit 0 when every selected case passes, 1 otherwise, 77 without python3-grpcio.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hardening_test as h  # noqa: E402  (exits 77 without python3-grpcio)
from hardening_test import Server, note  # noqa: E402

CLIENTS = 4
FEDAVG = f"  name: fedavg\n  fraction: 1.0\n  min_clients: {CLIENTS}"


def dp_section(side="server", extra=""):
    # Four clients per round: the noise on the mean is z S / 4 per coordinate. Admission's
    # norm bound is off: it is not what these cases test.
    return ("admission:\n  norm_policy: off\n"
            "privacy:\n  dp:\n    noise_multiplier: 0.5\n    clip_norm: 0.2\n"
            f"    side: {side}\n{extra}")


def planned_epsilon(f, rounds, z=0.5, q=1.0):
    out = subprocess.run([f.cohort, "privacy", "-q", str(q), "-z", str(z), "--steps",
                          str(rounds), "--json"], capture_output=True, text=True, timeout=60)
    return json.loads(out.stdout)["epsilon"]


def run(f, stem, extra, rounds=8):
    srv = Server(f, stem, h.train_config(rounds, eval_every=1, strategy=FEDAVG, extra=extra),
                 tls=True)
    procs = [f.join(srv.address, k, CLIENTS, srv.config, stem=f"{stem}_client{k}", tls=True)
             for k in range(CLIENTS)]
    codes = h.wait_exit(procs + [srv.proc], 240)
    f.require(all(c == 0 for c in codes), f"{stem}: exit codes {codes} (clients, server):\n"
              + h.tail(f.path(f"{stem}_client0.err")) + h.tail(f.path(stem + ".err")))
    s = srv.summary()
    f.require(s is not None, f"{stem}: no summary.json")
    note(f"{stem}: {s['rounds']} rounds, accuracy {s['final_accuracy']:.3f}, "
         f"epsilon {s.get('epsilon')}, stop {s.get('stop_reason')}")
    return srv, s


def check_accounting(f, srv, s):
    want = planned_epsilon(f, s["rounds"])
    f.check(s.get("epsilon") is not None and abs(s["epsilon"] - want) <= 1e-9 * want,
            f"summary epsilon {s.get('epsilon')} vs cohort privacy {want}")
    f.check(s.get("delta") == 1e-5, f"summary delta {s.get('delta')}")
    evals = [e for e in srv.events() if e.get("event") == "eval"]
    eps = [e.get("epsilon") for e in evals]
    f.check(all(x is not None for x in eps) and eps == sorted(eps) and eps[0] == 0.0,
            f"eval epsilons {eps}")
    priv = [e for e in srv.events() if e.get("event") == "privacy"]
    f.check(len(priv) == s["rounds"], f"{len(priv)} privacy events for {s['rounds']} rounds")
    return priv


def server_side(f):
    f.tokens(CLIENTS)
    srv, s = run(f, "server", dp_section())
    check_accounting(f, srv, s)
    f.check(s["final_accuracy"] > 0.3, f"accuracy {s['final_accuracy']} (chance 0.25)")


def client_side(f):
    f.tokens(CLIENTS)
    srv, s = run(f, "client", dp_section("client"))
    priv = check_accounting(f, srv, s)
    f.check(all(0.0 <= e["unclipped_fraction"] <= 1.0 for e in priv),
            f"unclipped fractions {[e['unclipped_fraction'] for e in priv]}")


def budget(f):
    f.tokens(CLIENTS)
    target = (planned_epsilon(f, 2) + planned_epsilon(f, 3)) / 2
    srv, s = run(f, "budget", dp_section(extra=f"    target_epsilon: {target}\n"), rounds=20)
    f.check(s["rounds"] == 2, f"{s['rounds']} rounds under a budget of two")
    f.check(s["epsilon"] <= target, f"epsilon {s['epsilon']} above the target {target}")
    f.check("privacy budget" in s.get("stop_reason", ""), f"stop reason {s.get('stop_reason')}")


def secagg(f):
    f.tokens(CLIENTS)
    extra = dp_section("client") + "  secagg:\n    threshold: 3\ncompression:\n  uplink: int8\n"
    srv, s = run(f, "secagg", extra, rounds=6)
    check_accounting(f, srv, s)
    rounds = [e for e in srv.events() if e.get("event") == "secagg"]
    f.check(len(rounds) == s["rounds"] and all(e["included"] == CLIENTS for e in rounds),
            f"secagg events {[(e.get('version'), e.get('included')) for e in rounds]}")
    f.check(all(e["bits"] >= 8 for e in rounds), f"bits {[e['bits'] for e in rounds]}")
    f.check(s.get("secagg", {}).get("groups") == s["rounds"], f"summary secagg {s.get('secagg')}")
    logs = "".join(open(f.path(f"secagg_client{k}.out")).read() for k in range(CLIENTS))
    f.check(logs.count("in the released sum") >= CLIENTS * s["rounds"] - CLIENTS,
            "clients did not report their updates in the released sums:\n" + h.tail(f.path("secagg_client0.out")))
    f.check(s["final_accuracy"] > 0.3, f"accuracy {s['final_accuracy']} (chance 0.25)")


def refusals(f):
    f.tokens(CLIENTS)
    cases = [
        ("fedasync", h.train_config(5, strategy="  name: fedasync", extra=dp_section()),
         "privacy"),
        ("median", h.train_config(5, strategy=FEDAVG,
                                extra=dp_section() + "robust:\n  rule: median\n"),
         "robust.rule"),
    ]
    h.expect_serve_refusals(f, cases)


CASES = {"server_side": server_side, "client_side": client_side, "budget": budget,
         "secagg": secagg, "refusals": refusals}


if __name__ == "__main__":
    h.main_for_cases("privacy_test.py", "privacy_", CASES)
