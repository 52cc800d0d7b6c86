#!/usr/bin/python3
"""Deployment under injected faults, one run per strategy family (synchronous FedAvg,
asynchronous FedBuff, semi-asynchronous FedCompass): a real `cohort serve` and three real
`cohort join` clients talk through fault_proxy.py, which drops, delays, duplicates, reorders,
truncates, corrupts and cuts their RPCs at the given rate.

    /usr/bin/python3 tests/integration/fault_injection_test.py COHORT_BINARY SOURCE_DIR [SEED] [RATE]

Checked for each family: training finishes (the server reaches its round budget and exits 0,
every client exits 0, accuracy well above chance); no damaged update is applied (every push
the proxy reordered, truncated, corrupted or stripped of a chunk was refused by the server);
no update is applied twice (a PushUpdate stream replayed by the proxy is refused, and the
server's count of accepted updates equals the acceptances the proxy saw). Across the runs
every kind of fault was injected. Exit 0 on success, 1 on a failure, 77 without python3-grpcio.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hardening_test as h  # noqa: E402  (exits 77 without python3-grpcio)
from hardening_test import Server, note, tail, train_config, wait_exit  # noqa: E402
from fault_proxy import FAULTS, Proxy  # noqa: E402

FAMILIES = {
    "fedavg": "  name: fedavg\n  min_clients: 2\n  round_deadline_s: 5\n",
    "fedbuff": "  name: fedbuff\n  buffer_size: 3\n",
    "fedcompass": "  name: fedcompass\n",
}


def run_family(f, family, seed, rate, rounds=30):
    f.tokens(3)
    cfg = train_config(rounds=rounds, eval_every=10).replace("  name: fedbuff\n  buffer_size: 3\n", FAMILIES[family])
    srv = Server(f, family, cfg, deploy_sets=["client_timeout_s=5"])
    proxy = Proxy(h.pb, srv.address, rate=rate, seed=seed, max_delay_s=0.3)
    try:
        joins = [f.join(proxy.address, k, 3, srv.config, stem=f"{family}_client{k}") for k in range(3)]
        rc = srv.wait(240)
        f.require(rc is not None, f"{family}: the run did not finish within 240 s under faults "
                  f"(version {srv.version()}):\n{tail(f.path(family + '.err'))}")
        codes = wait_exit(joins, 60)
    finally:
        proxy.stop()
    accepted, damaged_ok, dup_ok, injected = proxy.report()
    s = srv.summary() or {}
    note(f"{family}: server exit {rc}, clients {codes}, rounds {s.get('rounds')}, final accuracy "
         f"{s.get('final_accuracy')}, server updates {s.get('updates')} / proxy saw {accepted} accepted, "
         f"rejected {s.get('rejected')}; injected {sorted(injected.items())}")
    f.check(rc == 0, f"{family}: cohort serve exited with {rc}:\n{tail(f.path(family + '.err'))}")
    f.check(codes == [0, 0, 0], f"{family}: clients exited with {codes}:\n"
            + "".join(tail(f.path(f"{family}_client{k}.err"), 5) for k in range(3)))
    f.check(s.get("rounds") == rounds, f"{family}: {s.get('rounds')} commits, expected {rounds}")
    f.check((s.get("final_accuracy") or 0) >= 0.5, f"{family}: final accuracy {s.get('final_accuracy')}")
    f.check(not damaged_ok, f"{family}: damaged updates were accepted: {damaged_ok[:3]}")
    f.check(not dup_ok, f"{family}: replayed updates were accepted: {dup_ok[:3]}")
    f.check(s.get("updates") == accepted,
            f"{family}: the server counted {s.get('updates')} accepted updates, the proxy saw {accepted} "
            f"acceptances: an update applied twice or lost")
    return injected


def main():
    if len(sys.argv) < 3:
        print("usage: fault_injection_test.py COHORT_BINARY SOURCE_DIR [SEED] [RATE]", file=sys.stderr)
        sys.exit(2)
    cohort, src = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else int(os.environ.get("COHORT_TEST_SEED", "1"))
    rate = float(sys.argv[4]) if len(sys.argv) > 4 else 0.15
    kinds = set()

    def case(family):
        def run(f):
            kinds.update(k.split(".")[1] for k in run_family(f, family, seed, rate))
        return family, run

    failed = h.run_cases("faults_", cohort, src, [case(fam) for fam in FAMILIES], f", seed {seed}, rate {rate}")
    missing = set(FAULTS) - kinds
    if missing and not failed:
        print(f"FAIL: fault kinds never injected across the runs: {sorted(missing)}", file=sys.stderr)
        failed += 1
    print(f"{len(FAMILIES) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
