#!/usr/bin/env bash
# `make bench`: Cohort's end-to-end benchmarks. Usage: bash bench/run.sh BUILD_DIR [BENCH...]
#
# Each benchmark is a function bench_<name>; with no BENCH arguments all of BENCHMARKS run.
# Outputs go to bench/out/ (scratch, git-ignored). Environment knobs:
#   FEDAVG_CONFIG      config for the FedAvg comparison (default examples/fedavg_fmnist.yaml, the demo)
#   FEDAVG_TARGET      target test accuracy for the FedAvg comparison (default 0.8)
#   BASELINE_THREADS   torch thread counts to run the PyTorch baseline with (default "1 <nproc>");
#                      the comparison uses the fastest to target, so Cohort is measured
#                      against the baseline's best setting, not a handicapped one.
set -euo pipefail

BENCHMARKS=(fedavg)

BUILD_DIR=${1:-build}
shift || true
if [[ ! -x "$BUILD_DIR/cohort" ]]; then
  echo "bench/run.sh: $BUILD_DIR/cohort not found or not executable (run 'make build')" >&2
  exit 2
fi
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
cd "$(dirname "$0")/.."

export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
# Debian's interpreter: python3-torch and python3-numpy are Debian packages, and the python3
# first on PATH may be another installation without them.
PY=/usr/bin/python3
OUT=bench/out
mkdir -p "$OUT"

section() {
  echo
  echo "=== $* ==="
}

print_environment() {
  section "environment"
  echo "cpu:         $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n1), $(nproc) cores"
  echo "cohort:      $("$BUILD_DIR/cohort" --version 2>/dev/null || echo '?') ($BUILD_DIR/cohort)"
  echo "torch:       $("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo 'python3-torch missing')"
  local alt lib
  alt=$(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | sed -n 's/^Value: //p')
  echo "libblas.so.3 alternative: ${alt:-unknown}"
  # What the cohort binary would actually load (LibTorch links libblas.so.3 / libopenblas).
  while read -r lib; do
    echo "cohort maps: $lib -> $(readlink -f "$lib")"
  done < <(ldd "$BUILD_DIR/cohort" 2>/dev/null | awk '/blas|mkl/ {print $3}' | sort -u)
  echo "OMP_WAIT_POLICY=$OMP_WAIT_POLICY"
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (other processes on the machine skew wall times)"
}

# FedAvg on Fashion-MNIST: Cohort's simulator vs a plain sequential PyTorch loop replaying the
# same config and partition. Goals: same rounds to target within noise, Cohort <= 1/2 the
# wall time.
bench_fedavg() {
  section "fedavg: cohort simulate vs plain PyTorch FedAvg"
  local config=${FEDAVG_CONFIG:-examples/fedavg_fmnist.yaml}
  local run_dir=$OUT/fedavg_cohort
  local target=${FEDAVG_TARGET:-0.8}
  local threads_list=${BASELINE_THREADS:-"1 $(nproc)"}
  if [[ ! -f "$config" ]]; then
    echo "bench/run.sh: $config not found" >&2
    return 2
  fi
  rm -rf "$run_dir"

  echo "--- cohort simulate $config --out $run_dir"
  "$BUILD_DIR/cohort" simulate "$config" --out "$run_dir" --save-partition --quiet
  "$PY" - "$run_dir/summary.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
print("cohort summary:", json.dumps({k: s[k] for k in s if not isinstance(s[k], (dict, list))}))
EOF

  local best="" best_time="" t out tt line
  for t in $(echo "$threads_list" | tr ' ' '\n' | sort -un); do
    out=$OUT/fedavg_baseline_t$t.json
    echo "--- pytorch baseline, $t torch thread(s)"
    "$PY" bench/fedavg_pytorch_baseline.py --run-dir "$run_dir" --target "$target" \
      --threads "$t" --quiet > "$out"
    # Rank by wall time to target, or by time per round when the target was never reached.
    IFS=$'\t' read -r tt line < <("$PY" -c '
import json, sys
b = json.load(open(sys.argv[1]))
w = b["wall_time_to_target_s"]
key = w if w is not None else 1e9 + b["wall_time_s"] / max(b["rounds"], 1)
print("%r\t  rounds to target %s, wall to target %s s, %d rounds in %.2f s (%.3f s/round); blas %s" % (
    key, b["rounds_to_target"], "never" if w is None else "%.2f" % w, b["rounds"],
    b["wall_time_s"], b["wall_time_s"] / max(b["rounds"], 1), b.get("blas")))
' "$out")
    echo "$line"
    if [[ -z "$best" ]] || "$PY" -c 'import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)' "$tt" "$best_time"; then
      best=$out
      best_time=$tt
    fi
  done
  cp "$best" "$OUT/fedavg_baseline.json"
  echo "--- comparing against the fastest baseline ($best)"
  "$PY" bench/compare_fedavg.py "$run_dir" "$OUT/fedavg_baseline.json" --target "$target" |
    tee "$OUT/fedavg_compare.txt"
}

selected=("$@")
if [[ ${#selected[@]} -eq 0 ]]; then selected=("${BENCHMARKS[@]}"); fi
for b in "${selected[@]}"; do
  if ! declare -F "bench_$b" > /dev/null; then
    echo "bench/run.sh: unknown benchmark '$b' (known: ${BENCHMARKS[*]})" >&2
    exit 2
  fi
done
print_environment
for b in "${selected[@]}"; do
  "bench_$b"
done
echo
echo "Outputs in $OUT/"
