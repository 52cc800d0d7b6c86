#!/usr/bin/env bash
# The large-model round (issue 10's "int8 at least 2x shorter") for one or more builds of
# `cohort`, alternated so that machine noise hits every build and both uplinks alike:
#   bench/compare_large_model.sh REPEATS COHORT [COHORT...]
# Each repeat runs, for each build in turn, `bench large-model --params 25000000 --clients 10
# --max-concurrent-pushes 4` with --uplink none, then int8. Prints one line per run and, per
# build, the median round time of each uplink, their ratio, and the median time the last
# download ended. About 12 s per build and repeat.
set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: $0 REPEATS COHORT [COHORT...]" >&2
  exit 2
fi
REPEATS=$1
shift
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
for ((rep = 0; rep < REPEATS; ++rep)); do
  for bin in "$@"; do
    for up in none int8; do
      js=$("$bin" bench large-model --params 25000000 --clients 10 --max-concurrent-pushes 4 \
        --uplink "$up" --json)
      echo "$bin $js" | tee -a "$OUT"
    done
  done
done
/usr/bin/python3 - "$OUT" <<'PY'
import json, statistics, sys
runs = {}
order = []
for line in open(sys.argv[1]):
    bin_, js = line.split(" ", 1)
    r = json.loads(js)
    if bin_ not in order:
        order.append(bin_)
    runs.setdefault((bin_, r["uplink"]), []).append(r)
def med(b, up, key):
    return statistics.median(r[key] for r in runs[(b, up)])
print("%-40s %9s %9s %7s %14s" % ("build (medians)", "none s", "int8 s", "ratio", "downloads end"))
for b in order:
    none, int8 = med(b, "none", "round_wall_s"), med(b, "int8", "round_wall_s")
    print("%-40s %9.3f %9.3f %6.2fx %13.3fs" % (b[-40:], none, int8, none / int8,
                                               med(b, "int8", "last_download_end_s")))
# Where the round's time goes on a machine the server shares with its clients: CPU seconds
# over the round (server child; this process's client threads) against the wall time's cores.
print("%-40s %15s %15s %15s" % ("CPU s over the round (medians)", "server n/i", "clients n/i",
                                "busy cores n/i"))
for b in order:
    cells = []
    for key in ("server_cpu_s", "clients_cpu_s"):
        cells.append("%6.2f / %5.2f" % (med(b, "none", key), med(b, "int8", key)))
    busy = ["%.2f" % statistics.median((r["server_cpu_s"] + r["clients_cpu_s"]) / r["round_wall_s"]
                                       for r in runs[(b, up)]) for up in ("none", "int8")]
    print("%-40s %15s %15s %15s" % (b[-40:], cells[0], cells[1], " / ".join(busy)))
PY
