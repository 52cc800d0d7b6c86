#!/usr/bin/python3
"""DiLoCo in a real deployment (issue 13): `cohort serve` with TLS and `cohort join` workers
that leave and join mid-run, from the outside.

    /usr/bin/python3 tests/integration/diloco_test.py COHORT_BINARY SOURCE_DIR [case ...]

Cases (default: all), each in a temporary directory of its own (kept and named on failure):

  elastic  DiLoCo (100 inner AdamW steps, outer Nesterov) with three workers over TLS; after two
           rounds worker 2 is killed (SIGKILL, mid-training or between rounds) and worker 3
           joins. The run goes on with the workers present: every planned round commits, the
           joining worker takes part (its tasks are accepted), no round counts more updates than
           workers or than it sampled, and the evaluation loss keeps falling (the last is
           below the first and below the one when the worker was killed).

Exit 0 when every selected case passes, 1 otherwise, 77 without python3-grpcio.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hardening_test as h  # noqa: E402  (exits 77 without python3-grpcio)
from hardening_test import Server, note  # noqa: E402

ROUNDS = 30
DILOCO = ("  name: diloco\n  fraction: 1.0\n  min_clients: 2\n  inner_steps: 100\n"
          "  inner_lr: 0.0003\n  inner_weight_decay: 0.1\n  outer_lr: 0.7\n  outer_momentum: 0.5")


def elastic(f):
    f.tokens(4)
    srv = Server(f, "diloco", h.train_config(ROUNDS, eval_every=1, strategy=DILOCO),
                 deploy="client_timeout_s: 2\n", tls=True)
    workers = [f.join(srv.address, k, 4, srv.config, stem=f"worker{k}", tls=True) for k in range(3)]
    f.require(srv.wait_version(2, 120), "diloco: 2 rounds did not commit:\n" + h.tail(f.path("diloco.err")))
    killed_at = srv.version()
    workers[2].kill()
    note(f"killed worker 2 at version {killed_at}")
    f.require(srv.wait_version(killed_at + 1, 120),
              "diloco: no progress after a worker left:\n" + h.tail(f.path("diloco.err")))
    workers.append(f.join(srv.address, 3, 4, srv.config, stem="worker3", tls=True))
    deadline = time.time() + 60
    while "registered" not in h.client_logs(f, "worker3") and time.time() < deadline:
        time.sleep(0.05)
    joined_at = srv.version()
    f.require(joined_at <= ROUNDS - 5, f"worker 3 registered at version {joined_at}, too late to test")
    note(f"worker 3 joined at version {joined_at}")
    codes = h.wait_exit([workers[0], workers[1], workers[3], srv.proc], 300)
    f.require(all(c == 0 for c in codes), f"exit codes {codes} (workers 0, 1, 3, server):\n"
              + h.tail(f.path("diloco.err")) + h.tail(f.path("worker3.err")))
    s = srv.summary()
    f.require(s is not None, "no summary.json")
    f.check(s["rounds"] == ROUNDS, f"{s['rounds']} rounds of {ROUNDS}")
    evals = [e for e in srv.events() if e.get("event") == "eval"]
    losses = [e["loss"] for e in evals]
    f.require(len(losses) >= ROUNDS, f"{len(losses)} eval events")
    at_kill = next(e["loss"] for e in evals if e["round"] >= killed_at)
    note(f"loss {losses[0]:.4f} -> {at_kill:.4f} (worker killed) -> {losses[-1]:.4f}; "
         f"accuracy {s['final_accuracy']:.3f}")
    f.check(losses[-1] < losses[0] and losses[-1] < at_kill,
            f"the loss did not keep falling: {[round(x, 4) for x in losses]}")
    log3 = h.client_logs(f, "worker3")
    f.check(log3.count("accepted") >= 2, "worker 3 took no part:\n" + log3[-800:])
    rounds = [e for e in srv.events() if e.get("event") == "round"]
    f.check(all(e.get("received", 0) <= 3 for e in rounds),
            f"a round counted more updates than workers: {[e.get('received') for e in rounds]}")
    f.check(all(e.get("received", 0) <= e.get("sampled", 0) for e in rounds),
            "a round counted more updates than it sampled")


CASES = {"elastic": elastic}


if __name__ == "__main__":
    h.main_for_cases("diloco_test.py", "diloco_", CASES)
