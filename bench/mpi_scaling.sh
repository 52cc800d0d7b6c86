#!/usr/bin/env bash
# Scaling of `cohort simulate` over MPI ranks (docs/design/mpi.md): simulated updates per wall
# second with 1 process (the simulator's own pool, run.threads = all cores, then 1) and with
# `mpirun -np N` (rank 0 coordinates, ranks 1..N-1 train one task at a time), for a synchronous
# (fedavg) and an asynchronous (fedbuff) run of the MLP on Fashion-MNIST; plus the
# communication volume per model version from mpi.json, and a check that every run ends with
# the same model hash.
#
# Usage: bash bench/mpi_scaling.sh [BUILD_DIR] [RANKS...]     (default: build, ranks 1 2 3 4)
# Environment: REPEATS (default 2; the best wall time of the repeats counts).
# On a machine with fewer cores than ranks mpirun oversubscribes (--oversubscribe): the figures
# then measure contention, not scaling; the table says how many cores there were.
set -euo pipefail

BUILD_DIR=${1:-build}
shift || true
RANKS=("$@")
[[ ${#RANKS[@]} -eq 0 ]] && RANKS=(1 2 3 4)
REPEATS=${REPEATS:-2}
COHORT=$(cd "$BUILD_DIR" && pwd)/cohort
if ! command -v mpirun > /dev/null; then
  echo "mpi_scaling: mpirun not found (apt-get install openmpi-bin); skipped"
  exit 0
fi
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

common='
data:
  dataset: fashion-mnist
  partition: dirichlet
  alpha: 0.5
clients:
  count: 20
  speed: {distribution: exponential, mean: 100, min: 5}
model:
  name: mlp
training:
  lr: 0.05
  batch_size: 32
  local_steps: 50
'
printf '%s' "$common" > "$OUT/fedavg.yaml"
cat >> "$OUT/fedavg.yaml" << 'EOF'
strategy: {name: fedavg, fraction: 0.5, min_clients: 5}
run: {rounds: 10, eval_every: 100, seed: 1}
EOF
printf '%s' "$common" > "$OUT/fedbuff.yaml"
cat >> "$OUT/fedbuff.yaml" << 'EOF'
strategy: {name: fedbuff, buffer_size: 5}
run: {rounds: 20, eval_every: 100, seed: 1}
EOF

echo "cpu: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n1), $(nproc) cores; $(mpirun --version | head -n1)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other processes on the machine skew wall times)"
echo "updates/s = summary.json updates / wall_time_s (the simulation, after set-up); total s = the"
echo "whole command, with every rank's start-up and data loading; best of $REPEATS"
for strategy in fedavg fedbuff; do
  echo
  printf '%-8s %5s %8s %10s %8s %8s %18s %12s %14s %s\n' strategy ranks trainers updates/s ratio \
    "total s" "model MB/version" "max sends/v" "MB moved" "model hash"
  base=""
  for n in "${RANKS[@]}"; do
    # 1 process twice: the pool with every core's thread, and with one thread (one trainer,
    # like mpirun -np 2).
    for threads in $([[ $n -eq 1 ]] && echo "0 1" || echo 0); do
    best=""
    for ((r = 0; r < REPEATS; r++)); do
      dir="$OUT/${strategy}_${n}_${threads}_$r"
      start=$(date +%s.%N)
      if [[ $n -eq 1 ]]; then
        "$COHORT" simulate "$OUT/$strategy.yaml" --out "$dir" -q --threads "$threads" > "$dir.log" 2>&1
      else
        mpirun --oversubscribe --allow-run-as-root -np "$n" "$COHORT" simulate \
          "$OUT/$strategy.yaml" --out "$dir" -q > "$dir.log" 2>&1
      fi
      end=$(date +%s.%N)
      line=$(/usr/bin/python3 - "$dir" "$start" "$end" "$n" << 'EOF'
import json, os, sys
d, start, end, n = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
s = json.load(open(os.path.join(d, "summary.json")))
m = {}
if os.path.exists(os.path.join(d, "mpi.json")):
    m = json.load(open(os.path.join(d, "mpi.json")))
ups = s["updates"] / s["wall_time_s"]
print(f'{ups:.2f} {end - start:.2f} {m.get("model_bytes_per_version", 0) / 1e6:.3f} '
      f'{m.get("max_sends_per_version", 0)} {m.get("total_bytes", 0) / 1e6:.1f} '
      f'{s["updates"]} {s["model_hash"]}')
EOF
)
      read -r ups total mbv maxs moved updates hash <<< "$line"
      if [[ -z $best ]] || awk -v a="$ups" -v b="${best%% *}" 'BEGIN { exit !(a > b) }'; then
        best="$line"
      fi
    done
    read -r ups total mbv maxs moved updates hash <<< "$best"
    [[ -z $base ]] && base=$ups
    trainers=$([[ $n -eq 1 ]] && echo "$([[ $threads -eq 0 ]] && nproc || echo 1) thr" || echo "$((n - 1)) rank")
    printf '%-8s %5s %8s %10s %8s %8s %18s %12s %14s %s\n' "$strategy" "$n" "$trainers" "$ups" \
      "$(awk -v a="$ups" -v b="$base" 'BEGIN { printf "%.2fx", a / b }')" "$total" "$mbv" "$maxs" "$moved" "$hash"
    done
  done
done
