#!/usr/bin/python3
"""Robust aggregation in a real deployment (issue 11): `cohort serve` with TLS and five
`cohort join` clients, one of which is Byzantine, from the outside.

    /usr/bin/python3 tests/integration/robustness_test.py COHORT_BINARY SOURCE_DIR [case ...]

Cases (default: all), each in a temporary directory of its own (kept and named on failure):

  scaled_client  FedAvg on synthetic 4-class data (chance 0.25), every client in every round,
                 admission's norm bound off so the robust rule is the only defence. Three runs
                 over TLS: honest (no attacker, no rule); client 4 sending its updates scaled
                 by -10 (`cohort join --attack sign_flip:10`) against plain FedAvg; the same
                 attacker against the coordinate-wise median. The defended run finishes in
                 the honest run's accuracy band (within 0.05, and >= 0.6) while the undefended
                 one is worse; summary.json names the rule, and client 4's trust is below 0.5
                 and below every honest client's; the metrics carry "robust" events.
  refusals       `cohort serve` refuses a robust rule for a strategy that applies updates one by
                 one (fedasync), a Krum whose f the population cannot honour, and an attack:
                 section (attackers are `cohort join --attack` processes in a deployment),
                 each with an error naming the cause.

Exit 0 when every selected case passes, 1 otherwise, 77 without python3-grpcio.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hardening_test as h  # noqa: E402  (exits 77 without python3-grpcio)
from hardening_test import Server, note  # noqa: E402

CLIENTS = 5
FEDAVG = f"  name: fedavg\n  fraction: 1.0\n  min_clients: {CLIENTS}"
NO_NORM_BOUND = "admission:\n  norm_policy: off\n"


def config(robust=None, extra=""):
    text = NO_NORM_BOUND + extra
    if robust:
        text += f"robust:\n  rule: {robust}\n"
    return h.train_config(25, strategy=FEDAVG, extra=text)


def run(f, stem, robust=None, attacker=None):
    """A TLS server and five `cohort join` clients to the end; client `attacker` (if any)
    runs with --attack sign_flip:10. Returns the summary."""
    srv = Server(f, stem, config(robust), tls=True)
    procs = []
    for k in range(CLIENTS):
        if k == attacker:
            # Finding.join's command line plus --attack.
            procs.append(f.spawn([f.cohort, "join", "--server", srv.address, "--token-file",
                                  f.path(f"tok{k}"), "--ca", os.path.join(f.certs(), "ca.pem"),
                                  "--partition", f"{k}/{CLIENTS}", "--max-disconnected-s", "60",
                                  "--backoff-max-s", "0.3", "--attack", "sign_flip:10",
                                  srv.config], f"{stem}_client{k}"))
        else:
            procs.append(f.join(srv.address, k, CLIENTS, srv.config, stem=f"{stem}_client{k}",
                                tls=True))
    codes = h.wait_exit(procs + [srv.proc], 240)
    f.require(all(c == 0 for c in codes), f"{stem}: exit codes {codes} (clients, server):\n"
              + h.tail(f.path(f"{stem}_client0.err")) + h.tail(f.path(stem + ".err")))
    s = srv.summary()
    f.require(s is not None, f"{stem}: no summary.json")
    note(f"{stem}: rule {s.get('robust_rule', 'none')}: accuracy {s['final_accuracy']:.3f}, "
         f"trust {s.get('trust')}")
    return srv, s


def scaled_client(f):
    f.tokens(CLIENTS)
    _, honest = run(f, "honest")
    _, hurt = run(f, "undefended", attacker=4)
    srv, defended = run(f, "median", robust="median", attacker=4)
    f.check(honest["final_accuracy"] >= 0.6, f"honest accuracy {honest['final_accuracy']}")
    f.check(defended["final_accuracy"] >= 0.6, f"defended accuracy {defended['final_accuracy']}")
    f.check(abs(defended["final_accuracy"] - honest["final_accuracy"]) <= 0.05,
            f"defended {defended['final_accuracy']} vs honest {honest['final_accuracy']}")
    f.check(hurt["final_accuracy"] < defended["final_accuracy"],
            f"the attack did not hurt plain FedAvg: {hurt['final_accuracy']} vs defended "
            f"{defended['final_accuracy']}")
    f.check(defended.get("robust_rule", "").startswith("median"),
            f"summary robust_rule: {defended.get('robust_rule')}")
    trust = {int(k): v for k, v in defended.get("trust", {}).items()}
    f.require(len(trust) == CLIENTS, f"trust scores: {trust}")
    honest_min = min(v for k, v in trust.items() if k != 4)
    f.check(trust[4] < 0.5 and trust[4] < honest_min,
            f"attacker's trust {trust[4]:.3f} vs honest minimum {honest_min:.3f}")
    robust_events = [e for e in srv.events() if e.get("event") == "robust"]
    f.check(len(robust_events) == defended["rounds"],
            f"{len(robust_events)} robust events for {defended['rounds']} rounds")


def refusals(f):
    f.tokens(CLIENTS)
    cases = [
        ("fedasync", h.train_config(5, strategy="  name: fedasync",
                                    extra="robust:\n  rule: median\n"),
         "fedasync applies each update on its own"),
        ("krum", h.train_config(5, strategy=FEDAVG, extra="robust:\n  rule: krum\n  f: 2\n"),
         "2f + 2"),
        ("attack", h.train_config(5, strategy=FEDAVG, extra="attack:\n  kind: sign_flip\n"),
         "cohort join --attack"),
    ]
    h.expect_serve_refusals(f, cases)


CASES = {"scaled_client": scaled_client, "refusals": refusals}


if __name__ == "__main__":
    h.main_for_cases("robustness_test.py", "robustness_", CASES)
