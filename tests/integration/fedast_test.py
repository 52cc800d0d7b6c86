#!/usr/bin/python3
"""FedAST in a real deployment (issue 13): `cohort serve` with TLS and three `cohort join`
clients training two models at once, from the outside.

    /usr/bin/python3 tests/integration/fedast_test.py COHORT_BINARY SOURCE_DIR [case ...]

Cases (default: all), each in a temporary directory of its own (kept and named on failure):

  two_models  hardening_test's synthetic 4-class task (chance 0.25) with `models:` holding a
              small and a wider MLP and strategy fedast (buffer 2): every process exits 0, both
              models step (model_step events for each), every evaluation reports both models,
              the summary gives each its final accuracy (>= 0.6) and target time, and the run's
              time to target is the later of the two.

Exit 0 when every selected case passes, 1 otherwise, 77 without python3-grpcio.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hardening_test as h  # noqa: E402  (exits 77 without python3-grpcio)
from hardening_test import Server, note  # noqa: E402

FEDAST = "  name: fedast\n  buffer_size: 2\n  server_lr: 1.0"
MODELS = ("models:\n"
          "  - {name: mlp, label: narrow, hidden: [16], target_accuracy: 0.6}\n"
          "  - {name: mlp, label: wide, hidden: [64], target_accuracy: 0.65}\n")


def two_models(f):
    f.tokens(3)
    text = h.train_config(60, strategy=FEDAST, eval_every=5)
    start = text.index("model:\n")
    end = text.index("training:\n")
    config = text[:start] + MODELS + text[end:]
    srv = Server(f, "fedast", config, tls=True)
    clients = [f.join(srv.address, k, 3, srv.config, stem=f"client{k}", tls=True) for k in range(3)]
    codes = h.wait_exit(clients + [srv.proc], 240)
    f.require(all(c == 0 for c in codes), f"exit codes {codes} (clients, server):\n"
              + h.tail(f.path("client0.err")) + h.tail(f.path("fedast.err")))
    s = srv.summary()
    f.require(s is not None and "models" in s, f"summary without models: {s}")
    events = srv.events()
    steps = {}
    for e in events:
        if e.get("event") == "model_step":
            steps[e["model"]] = steps.get(e["model"], 0) + 1
    note(f"model steps {steps}; models {json.dumps(s['models'])}")
    f.check(set(steps) == {"narrow", "wide"}, f"model_step events for {sorted(steps)}")
    evals = [e for e in events if e.get("event") == "eval"]
    f.check(evals and all(set(e.get("models", {})) == {"narrow", "wide"} for e in evals),
            "an eval event without both models")
    for label in ("narrow", "wide"):
        m = s["models"][label]
        f.check(m["final_accuracy"] >= 0.6, f"{label}: final accuracy {m['final_accuracy']}")
        f.check(m["time_to_target"] is not None, f"{label}: never reached its target")
    times = [s["models"][k]["time_to_target"] for k in ("narrow", "wide")]
    if None not in times:
        f.check(s["time_to_target"] == max(times),
                f"run time_to_target {s['time_to_target']} is not the later of {times}")


CASES = {"two_models": two_models}


if __name__ == "__main__":
    h.main_for_cases("fedast_test.py", "fedast_", CASES)
