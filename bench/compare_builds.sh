#!/usr/bin/env bash
# Compares two builds of `cohort` on the server-side benchmarks, alternating between them so
# that machine noise hits both alike: aggregation GB/s, the large-model FedAvg round over gRPC
# and the 500-client load test. For checking that a change left performance unchanged:
#   bench/compare_builds.sh OLD_COHORT NEW_COHORT [REPEATS]
# Prints one line per run and the medians. Takes about 10 minutes with the default 3 repeats.
set -euo pipefail
OLD=$1
NEW=$2
REPEATS=${3:-3}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
for ((rep = 0; rep < REPEATS; ++rep)); do
  for which in old new; do
    bin=$OLD
    [[ $which == new ]] && bin=$NEW
    echo "aggregate $which $("$bin" bench aggregate --params 25000000 --clients 10 --repeats 7 --json)" | tee -a "$OUT"
    echo "large $which $("$bin" bench large-model --params 25000000 --clients 10 --max-concurrent-pushes 1 --json)" | tee -a "$OUT"
    echo "load $which $("$bin" bench load --clients 500 --update-mb 1 --updates-per-client 10 --threads 50 --buffer-size 10 --json)" | tee -a "$OUT"
  done
done
/usr/bin/python3 - "$OUT" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    kind, which, js = line.split(" ", 2)
    runs.setdefault((kind, which), []).append(json.loads(js))
def med(kind, which, key):
    return statistics.median(r[key] for r in runs[(kind, which)])
rows = [("aggregate", "gbytes_per_s", "aggregation GB/s", 1),
        ("large", "round_wall_s", "large-model round wall s", 1),
        ("large", "peak_rss_increment_over_model", "large-model peak RSS increment / model", 1),
        ("load", "updates_per_s", "load updates/s", 1),
        ("load", "push_p99_ms", "load push p99 ms", 1),
        ("load", "server_peak_rss_bytes", "load server peak RSS MB", 1e6)]
print("%-42s %10s %10s %8s" % ("median", "old", "new", "new/old"))
for kind, key, name, scale in rows:
    o, n = med(kind, "old", key) / scale, med(kind, "new", key) / scale
    print("%-42s %10.3f %10.3f %8.3f" % (name, o, n, n / o))
PY
