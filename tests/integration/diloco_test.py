#!/usr/bin/python3
"""DiLoCo in a real deployment (issue 13): `cohort serve` with TLS and `cohort join` workers
that leave and join mid-run, from the outside.

    /usr/bin/python3 tests/integration/diloco_test.py COHORT_BINARY SOURCE_DIR [case ...]

Cases (default: all), each in a temporary directory of its own (kept and named on failure):

  elastic  DiLoCo (100 inner AdamW steps, outer Nesterov) with three workers over TLS; after two
           rounds worker 2 is killed (SIGKILL, mid-training or between rounds) and worker 3
           joins. The run goes on with the workers present: rounds keep committing, the joining
           worker takes part (its tasks are accepted), the server stops gracefully (SIGTERM)
           with every worker told, no round counts more updates than workers or than it
           sampled, and the evaluation loss keeps falling (the last is
           below the first and below the one when the worker was killed).
  streaming  the same with Streaming DiLoCo (4 fragments of 25 steps, 5 overlapped steps,
           mixing 0.5): the workers keep their own models between rounds, the joining worker
           starts from the global model, and the loss keeps falling.

Exit 0 when every selected case passes, 1 otherwise, 77 without python3-grpcio.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hardening_test as h  # noqa: E402  (exits 77 without python3-grpcio)
from hardening_test import Server, note, wait_for  # noqa: E402

# A budget the run never reaches: it ends when the test stops the server (SIGTERM, graceful),
# once the joining worker has taken part, so the outcome does not depend on how fast the
# machine runs rounds or starts processes.
ROUNDS = 100000
DILOCO = ("  name: diloco\n  fraction: 1.0\n  min_clients: 2\n  inner_steps: 100\n"
          "  inner_lr: 0.0003\n  inner_weight_decay: 0.1\n  outer_lr: 0.7\n  outer_momentum: 0.5")


STREAMING = DILOCO.replace("name: diloco", "name: streaming_diloco") + (
    "\n  fragments: 4\n  fragment_block: 1024\n  overlap: 5\n  alpha: 0.5")


def elastic(f):
    run_elastic(f, DILOCO)


def streaming(f):
    run_elastic(f, STREAMING)


def run_elastic(f, strategy):
    f.tokens(4)
    srv = Server(f, "diloco", h.train_config(ROUNDS, eval_every=1, strategy=strategy),
                 deploy="client_timeout_s: 2\n", tls=True)
    workers = [f.join(srv.address, k, 4, srv.config, stem=f"worker{k}", tls=True) for k in range(3)]
    f.require(srv.wait_version(2, 120), "diloco: 2 rounds did not commit:\n" + h.tail(f.path("diloco.err")))
    killed_at = srv.version()
    workers[2].kill()
    note(f"killed worker 2 at version {killed_at}")
    f.require(srv.wait_version(killed_at + 2, 120),
              "diloco: no progress after a worker left:\n" + h.tail(f.path("diloco.err")))
    workers.append(f.join(srv.address, 3, 4, srv.config, stem="worker3", tls=True))
    f.require(wait_for(lambda: "registered" in h.client_logs(f, "worker3"), 120),
              "worker 3 did not register:\n" + h.tail(f.path("worker3.err")))
    joined_at = srv.version()
    note(f"worker 3 joined at version {joined_at}")
    # Worker 3 takes part in a few rounds, then the run is stopped.
    f.require(wait_for(lambda: h.client_logs(f, "worker3").count("accepted") >= 3, 180),
              "worker 3 took no part:\n" + h.client_logs(f, "worker3")[-800:])
    f.require(srv.wait_version(srv.version() + 3, 120), "diloco: stalled after the join")
    (code, _), joins = h.sigterm_and_watch(srv, [workers[0], workers[1], workers[3]], 120)
    f.require(code == 0 and all(c == 0 for c, _ in joins),
              f"exit codes: server {code}, workers 0, 1, 3 {[c for c, _ in joins]}:\n"
              + h.tail(f.path("diloco.err")))
    s = srv.summary()
    f.require(s is not None, "no summary.json")
    evals = [e for e in srv.events() if e.get("event") == "eval"]
    losses = [e["loss"] for e in evals]
    f.check(s["rounds"] > joined_at + 3, f"{s['rounds']} rounds, worker 3 joined at {joined_at}")
    at_kill = next(e["loss"] for e in evals if e["round"] >= killed_at)
    note(f"{s['rounds']} rounds; loss {losses[0]:.4f} -> {at_kill:.4f} (worker killed) -> "
         f"{losses[-1]:.4f}; accuracy {s['final_accuracy']:.3f}")
    f.check(losses[-1] < losses[0] and losses[-1] < at_kill,
            f"the loss did not keep falling: {[round(x, 4) for x in losses]}")
    rounds = [e for e in srv.events() if e.get("event") == "round"]
    f.check(all(e.get("received", 0) <= 3 for e in rounds),
            f"a round counted more updates than workers: {[e.get('received') for e in rounds]}")
    f.check(all(e.get("received", 0) <= e.get("sampled", 0) for e in rounds),
            "a round counted more updates than it sampled")


CASES = {"elastic": elastic, "streaming": streaming}


if __name__ == "__main__":
    h.main_for_cases("diloco_test.py", "diloco_", CASES)
