#!/usr/bin/env bash
# `make bench`: Cohort's end-to-end benchmarks. Usage: bash bench/run.sh BUILD_DIR [BENCH...]
#
# Each benchmark is a function bench_<name>; with no BENCH arguments all of BENCHMARKS run.
# Outputs go to bench/out/ (scratch, git-ignored). Environment knobs:
#   FEDAVG_CONFIG      config for the FedAvg comparison (default examples/fedavg_fmnist.yaml, the demo)
#   FEDAVG_TARGET      target test accuracy for the FedAvg comparison (default 0.8)
#   SOAK_SECONDS       duration of `bench/run.sh BUILD soak` (default 1800; not run by default)
#   BASELINE_THREADS   torch thread counts to run the PyTorch baseline with (default "1 <nproc>");
#                      the comparison uses the fastest to target, so Cohort is measured
#                      against the baseline's best setting, not a handicapped one.
set -euo pipefail

BENCHMARKS=(fedavg aggregate eval memory load large_model codec secagg privacy codec_accuracy robustness fedast python_trainer population reproducible mpi hierarchy)

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

# The demo scenario with the clients in Python (examples/python/fmnist_torch.py, a PyTorch MLP,
# in worker processes) against the same run with the C++ trainer and against the plain PyTorch
# loop, alternated PYTRAINER_REPEATS (3) times. Goals: <= 1.3x the C++ trainer's time per round,
# >= 1.5x faster than the plain loop.
bench_python_trainer() {
  section "python_trainer: Python clients vs the C++ trainer vs the plain PyTorch loop"
  PYTHONPATH="$BUILD_DIR/python" "$PY" bench/python_trainer.py \
    --repeats "${PYTRAINER_REPEATS:-3}" --out "$OUT/python_trainer" | tee "$OUT/python_trainer.json"
}

# Aggregation bandwidth, N = 25M float32 params, K = 10 updates: `cohort bench aggregate` times,
# on the same buffers and kernel threads, ops::weighted_sum (fused, one pass), FedAvg's
# streaming form (fill + K axpy) and a plain streaming reference loop (sum of K arrays, same
# threads and chunks); then the Python frameworks' numpy idiom on the same sizes. All
# bandwidths count (K reads + 1 write) x N x 4 bytes per aggregation; times are medians.
# Goals: weighted_sum >= 0.85x the reference's bandwidth and >= 4x the Python baseline's.
#   AGG_PARAMS (25000000), AGG_CLIENTS (10), AGG_REPEATS (7), AGG_THREADS (0 = all cores)
bench_aggregate() {
  section "aggregate: weighted_sum vs plain reference loop vs Python (numpy) baseline"
  local params=${AGG_PARAMS:-25000000} clients=${AGG_CLIENTS:-10} repeats=${AGG_REPEATS:-7}
  local threads=${AGG_THREADS:-0}
  local cohort_json=$OUT/aggregate_cohort.json py_json=$OUT/aggregate_python.json
  echo "--- cohort bench aggregate --params $params --clients $clients --threads $threads --repeats $repeats --json"
  "$BUILD_DIR/cohort" bench aggregate --params "$params" --clients "$clients" \
    --threads "$threads" --repeats "$repeats" --json | tee "$cohort_json"
  echo "--- $PY bench/flower_style_aggregate.py --params $params --clients $clients --repeats $repeats"
  "$PY" bench/flower_style_aggregate.py --params "$params" --clients "$clients" \
    --repeats "$repeats" | tee "$py_json"
  "$PY" - "$cohort_json" "$py_json" <<'EOF' | tee "$OUT/aggregate_compare.txt"
import json, sys
c = json.load(open(sys.argv[1]))
p = json.load(open(sys.argv[2]))
print("N = %d params, K = %d clients, %d kernel threads; medians of %d repeats; GB/s count "
      "(K reads + 1 write) x N x 4 bytes" % (c["params"], c["clients"], c["threads"], c["repeats"]))
rows = [("cohort weighted_sum (fused)", c["seconds"], c["gbytes_per_s"]),
        ("cohort streaming (fill + K axpy)", c["streaming_seconds"], c["streaming_gbytes_per_s"]),
        ("plain reference loop", c["reference_seconds"], c["reference_gbytes_per_s"]),
        ("python numpy baseline", p["seconds"], p["gbytes_per_s"])]
print("  %-34s %10s %8s" % ("", "seconds", "GB/s"))
for name, s, g in rows:
    print("  %-34s %10.4f %8.2f" % (name, s, g))
print("  (streaming really moves 1 + 3K arrays: %.2f GB/s of traffic)"
      % c["streaming_traffic_gbytes_per_s"])
ref = c["gbytes_per_s"] / c["reference_gbytes_per_s"]
py = c["gbytes_per_s"] / p["gbytes_per_s"]
verdict = lambda ok: "PASS" if ok else "FAIL"
print("weighted_sum / reference = %.3f  (goal >= 0.85): %s" % (ref, verdict(ref >= 0.85)))
print("weighted_sum / python    = %.2fx (goal >= 4x):   %s" % (py, verdict(py >= 4)))
print("streaming    / python    = %.2fx" % (c["streaming_gbytes_per_s"] / p["gbytes_per_s"]))
EOF
  # The robust rules on the same sizes, each against weighted_sum measured in its own run.
  local rule
  for rule in median trimmed_mean krum centered_clipping geometric_median; do
    "$BUILD_DIR/cohort" bench aggregate --params "$params" --clients "$clients" \
      --threads "$threads" --repeats "${AGG_RULE_REPEATS:-3}" --rule "$rule" --json \
      > "$OUT/aggregate_rule_$rule.json"
  done
  "$PY" - "$OUT"/aggregate_rule_*.json <<'EOF' | tee "$OUT/aggregate_rules.txt"
import json, sys
print("robust rules, N x K as above: GB/s counted like weighted_sum; time / weighted_sum's")
for path in sys.argv[1:]:
    c = json.load(open(path))
    print("  %-60s %7.2f GB/s  %6.2fx weighted_sum's time" % (
        c["rule"], c["rule_gbytes_per_s"], c["rule_vs_weighted_sum"]))
EOF
}

# Evaluation of the global model on the 10,000 Fashion-MNIST test images: the runtime's Evaluator
# (both runtimes' way: chunks over a pool of single-threaded trainers) and one multi-threaded
# trainer, against a plain PyTorch evaluation loop in the same run. Goal: no slower than PyTorch.
#   EVAL_MODEL (mlp), EVAL_REPEATS (7)
bench_eval() {
  section "eval: global-model evaluation vs a PyTorch evaluation loop"
  local model=${EVAL_MODEL:-mlp} repeats=${EVAL_REPEATS:-7}
  if [[ ! -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]]; then
    echo "skipped: dataset-fashion-mnist not installed"
    return 0
  fi
  echo "--- cohort bench eval --model $model --repeats $repeats --json"
  "$BUILD_DIR/cohort" bench eval --model "$model" --repeats "$repeats" --json |
    tee "$OUT/eval_cohort.json"
  echo "--- bench/eval_pytorch_baseline.py --model $model --repeats $repeats"
  "$PY" bench/eval_pytorch_baseline.py --model "$model" --repeats "$repeats" |
    tee "$OUT/eval_pytorch.json"
  "$PY" - "$OUT/eval_cohort.json" "$OUT/eval_pytorch.json" <<'EOF' | tee "$OUT/eval_compare.txt"
import json, sys
c, p = (json.load(open(f)) for f in sys.argv[1:])
print("  %-42s %9s" % ("", "seconds"))
print("  %-42s %9.4f" % ("pytorch loop (%d threads)" % p["threads"], p["seconds"]))
print("  %-42s %9.4f" % ("cohort Evaluator (%d 1-thread trainers)" % c["threads"], c["pool_seconds"]))
print("  %-42s %9.4f" % ("cohort, one %d-thread trainer" % c["threads"], c["single_seconds"]))
print("pytorch / cohort Evaluator    = %.2fx" % (p["seconds"] / c["pool_seconds"]))
print("pytorch / cohort one trainer  = %.2fx" % (p["seconds"] / c["single_seconds"]))
ok = c["pool_seconds"] <= p["seconds"]
print("goal: the Evaluator (simulator and server) no slower than pytorch: %s" % ("PASS" if ok else "FAIL"))
EOF
}

# Hierarchical aggregation (docs/design/hierarchy.md): 200 clients train FedAvg rounds of a
# 1 MB model straight against the top server, then through 4 aggregators (`cohort serve
# --upstream`'s engine); the top server's ingress and its peak RSS above its ready state.
#   HIER_CLIENTS (200), HIER_PARAMS (250000), HIER_ROUNDS (3)
bench_hierarchy() {
  section "hierarchy: the top server, flat vs two levels"
  local args=(--clients "${HIER_CLIENTS:-200}" --aggregators 4 --params "${HIER_PARAMS:-250000}"
              --rounds "${HIER_ROUNDS:-3}")
  echo "--- cohort bench hierarchy ${args[*]}"
  "$BUILD_DIR/cohort" bench hierarchy "${args[@]}" --json 2>/dev/null | tee "$OUT/hierarchy.json"
  "$PY" - "$OUT/hierarchy.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
for m in ("flat", "two_level"):
    x = r[m]
    print("%-9s top server: %3d clients, ingress %8.1f MB, peak RSS %7.1f MB (%6.1f MB above ready)"
          % (m, x["top_clients"], x["top_ingress_bytes"] / 1e6, x["top_peak_rss_bytes"] / 1e6,
             x["top_peak_above_ready_bytes"] / 1e6))
print("flat / two-level: ingress %.1fx, peak above ready %.1fx"
      % (r["ingress_ratio"], r["peak_above_ready_ratio"]))
EOF
}

# A large population (docs/design/scale.md): `cohort bench population` at 1,000,000 and
# 100,000 logistic-regression clients over the same 4M x 32 synthetic examples (0.1% and 1%
# sampled per round) and at 100,000 MLP clients on Fashion-MNIST (20 examples each, drawn with
# replacement, 1% per round). The marginal peak RSS per client is the difference of the first
# two over the difference in clients. Goals: <= 256 bytes per idle client beyond its example
# indices, 1M clients under 1.2 GB peak, framework overhead < 5% of the time in the trainers.
#   POP_ROUNDS (30)
bench_population() {
  section "population: a million simulated clients"
  local rounds=${POP_ROUNDS:-30}
  echo "--- cohort bench population --clients 1000000 --fraction 0.001 --rounds $rounds --json"
  "$BUILD_DIR/cohort" bench population --clients 1000000 --fraction 0.001 --rounds "$rounds" --json |
    tee "$OUT/population_1m.json"
  echo "--- cohort bench population --clients 100000 --fraction 0.01 --rounds $rounds --json"
  "$BUILD_DIR/cohort" bench population --clients 100000 --fraction 0.01 --rounds "$rounds" --json |
    tee "$OUT/population_100k.json"
  echo "--- bench/population_pytorch_baseline.py --clients 1000000 --fraction 0.001 --rounds $rounds"
  "$PY" bench/population_pytorch_baseline.py --clients 1000000 --fraction 0.001 --rounds "$rounds" |
    tee "$OUT/population_pytorch.json"
  rm -f "$OUT/population_mlp.json"
  if [[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]]; then
    echo "--- cohort bench population --clients 100000 --model mlp --dataset fashion-mnist --examples-per-client 20 --fraction 0.01 --rounds 10 --json"
    "$BUILD_DIR/cohort" bench population --clients 100000 --model mlp --dataset fashion-mnist \
      --examples-per-client 20 --fraction 0.01 --rounds 10 --json | tee "$OUT/population_mlp.json"
  fi
  "$PY" - "$OUT"/population_pytorch.json "$OUT"/population_1m.json "$OUT"/population_100k.json \
    "$OUT"/population_mlp.json <<'EOF'
import json, os, sys
base = json.load(open(sys.argv[1]))
runs = [json.load(open(f)) for f in sys.argv[2:] if os.path.exists(f)]
big, small = runs[0], runs[1]
per_client = (big["peak_rss_bytes"] - small["peak_rss_bytes"]) / (big["clients"] - small["clients"])
for r in runs:
    print("  %8d %-6s set-up %6.2f s  run %6.2f s  loop %6.2f s  training %6.2f s  overhead %5.1f%% (whole run %5.1f%%)  %8.0f updates/s  peak %6.0f MB"
          % (r["clients"], r["model"], r["setup_s"], r["run_s"], r["loop_s"], r["train_s"],
             100 * r["overhead"], 100 * r["overhead_run"], r["updates_per_s"], r["peak_rss_bytes"] / 1e6))
print("  pytorch loop, 1,000,000 clients: set-up %.2f s  run %.2f s  trainers %.2f s  %8.0f updates/s  peak %6.0f MB"
      % (base["setup_s"], base["run_s"], base["model_s"], base["updates_per_s"], base["peak_rss_bytes"] / 1e6))
print("cohort / pytorch at 1M clients: %.2fx the updates per second, %.2fx less peak memory, %.2fx faster set-up"
      % (big["updates_per_s"] / base["updates_per_s"], base["peak_rss_bytes"] / big["peak_rss_bytes"],
         base["setup_s"] / big["setup_s"]))
print("marginal peak RSS per client: %.0f bytes (incl. its index vector's 16 B allocator header; "
      "the indices themselves, the same 4M in both runs, cancel out)" % per_client)
print("goal 1M clients under 1.2 GB peak: %s" % ("PASS" if big["peak_rss_bytes"] < 1.2e9 else "FAIL"))
print("goal <= 256 B per idle client beyond its indices: %s" % ("PASS" if per_client <= 256 else "FAIL"))
print("goal framework overhead < 5%%: %s" % ("PASS" if all(r["overhead"] < 0.05 for r in runs) else "FAIL"))
EOF
}

# run.reproducible: strict against default on the demo's scenario (docs/design/reproducibility.md):
# the simulation's wall time (summary wall_time_s), alternating the two modes REP_REPEATS times,
# medians and their ratio. Strict pins Haswell-class kernels and one BLAS thread.
#   REP_REPEATS (5), REP_ROUNDS (10)
bench_reproducible() {
  section "reproducible: run.reproducible strict vs default (demo scenario)"
  local repeats=${REP_REPEATS:-5} rounds=${REP_ROUNDS:-10} i mode
  : > "$OUT/reproducible.txt"
  for ((i = 0; i < repeats; i++)); do
    for mode in default strict; do
      "$BUILD_DIR/cohort" simulate examples/fedavg_fmnist.yaml --set run.rounds="$rounds" \
        --set run.reproducible="$mode" --out "$OUT/reproducible_$mode" --quiet > /dev/null
      "$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(sys.argv[2], s["wall_time_s"], s["model_hash"])' \
        "$OUT/reproducible_$mode/summary.json" "$mode" | tee -a "$OUT/reproducible.txt"
    done
  done
  "$PY" - "$OUT/reproducible.txt" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
med = {m: statistics.median(float(r[1]) for r in rows if r[0] == m) for m in ("default", "strict")}
hashes = {m: sorted({r[2] for r in rows if r[0] == m}) for m in ("default", "strict")}
print("median simulation wall time: default %.2f s, strict %.2f s; strict / default = %.2fx"
      % (med["default"], med["strict"], med["strict"] / med["default"]))
print("model hashes: default %s, strict %s" % (hashes["default"], hashes["strict"]))
EOF
}

# Peak server memory of a FedAvg round: `cohort bench fedavg-round` drives the real FedAvg
# strategy with K updates of a 25M-param model created one at a time (each freed once it has
# been handed over). Goal: the peak RSS increment over the process's baseline stays under 4x
# the model size for K = 50; the smaller K shows it does not grow with the number of clients.
#   MEM_PARAMS (25000000), MEM_CLIENTS ("5 50"; the goal is checked on the largest)
bench_memory() {
  section "memory: peak RSS of a FedAvg round with streamed updates"
  local params=${MEM_PARAMS:-25000000} k
  local files=()
  for k in ${MEM_CLIENTS:-5 50}; do
    files+=("$OUT/memory_fedavg_k$k.json")
    echo "--- cohort bench fedavg-round --params $params --clients $k --json"
    "$BUILD_DIR/cohort" bench fedavg-round --params "$params" --clients "$k" --json |
      tee "$OUT/memory_fedavg_k$k.json"
  done
  "$PY" - "${files[@]}" <<'EOF' | tee "$OUT/memory_compare.txt"
import json, sys
runs = sorted((json.load(open(f)) for f in sys.argv[1:]), key=lambda r: r["clients"])
mb = 1e6
print("  %8s %10s %13s %14s %11s" % ("clients", "model MB", "peak RSS MB", "increment MB",
                                     "incr/model"))
for r in runs:
    print("  %8d %10.1f %13.1f %14.1f %11.3f" % (
        r["clients"], r["model_bytes"] / mb, r["peak_rss_bytes"] / mb,
        r["peak_rss_increment_bytes"] / mb, r["peak_rss_over_model"]))
last = runs[-1]
x = last["peak_rss_over_model"]
# RSS moves by ~0.1 MB between runs (shared library pages), so a reading within 0.5% of 4x
# says "four model-sized buffers", not "under 4x".
verdict = "PASS" if x < 3.98 else "AT LIMIT (within measurement noise of 4x: not met)" \
    if x < 4 else "FAIL"
print("peak RSS increment at K = %d: %.3fx the model (goal < 4x): %s"
      % (last["clients"], x, verdict))
print("(absolute peak, including the process's %.1f MB before the model: %.3fx)"
      % (last["baseline_rss_bytes"] / mb, last["absolute_peak_rss_over_model"]))
EOF
}

# gRPC deployment under load (COHORT_WITH_GRPC builds): `cohort bench load` runs a FedBuff
# server as a child process (`cohort bench deploy-server`, insecure, 127.0.0.1, OS-chosen port)
# and LOAD_CLIENTS lightweight clients (one connection each, spread over LOAD_THREADS threads)
# that Register, then PullTask -> Download -> PushUpdate (constructed LOAD_MB MB deltas, no
# training) LOAD_UPDATES times each. Reports updates/s, uplink MB/s, p50/p99 PushUpdate latency,
# the server's peak RSS (its VmHWM) and checks that the server accepted exactly
# clients x updates updates, none lost, rejected or duplicated.
#   LOAD_CLIENTS (500), LOAD_MB (1), LOAD_UPDATES (10), LOAD_THREADS (50), LOAD_BUFFER (10)
bench_load() {
  section "load: $((${LOAD_CLIENTS:-500})) gRPC clients pushing updates to a FedBuff server"
  if ! "$BUILD_DIR/cohort" bench load --help > /dev/null 2>&1; then
    echo "skipped: $BUILD_DIR/cohort was built without COHORT_WITH_GRPC"
    return 0
  fi
  local clients=${LOAD_CLIENTS:-500} mb=${LOAD_MB:-1} updates=${LOAD_UPDATES:-10}
  local threads=${LOAD_THREADS:-50} buffer=${LOAD_BUFFER:-10}
  echo "--- cohort bench load --clients $clients --update-mb $mb --updates-per-client $updates --threads $threads --buffer-size $buffer --json"
  "$BUILD_DIR/cohort" bench load --clients "$clients" --update-mb "$mb" \
    --updates-per-client "$updates" --threads "$threads" --buffer-size "$buffer" --json |
    tee "$OUT/load.json"
  "$PY" - "$OUT/load.json" <<'EOF2' | tee "$OUT/load_verdict.txt"
import json, sys
r = json.load(open(sys.argv[1]))
print("%d clients x %d updates of %.1f MB: %.1f updates/s, %.1f MB/s up, push p50 %.1f ms / "
      "p99 %.1f ms, server peak RSS %.1f MB; server accepted %d of %d (lost %d, rejected %d, "
      "duplicates %d): %s" % (
    r["clients"], r["updates_per_client"], r["update_bytes"] / 1e6, r["updates_per_s"],
    r["uplink_mb_per_s"], r["push_p50_ms"], r["push_p99_ms"], r["server_peak_rss_bytes"] / 1e6,
    r["server_updates"], r["expected_updates"], r["server_lost"], r["server_rejected"],
    r["duplicate_tasks"], "PASS" if r["exact"] else "FAIL"))
EOF2
}

# One FedAvg round of large updates over gRPC (COHORT_WITH_GRPC builds): LM_CLIENTS clients
# each push one LM_PARAMS-param float32 update to a FedAvg server child (fraction 1,
# min_clients = LM_CLIENTS) that assembles at most LM_PUSHES uploads at once
# (--max-concurrent-pushes; each value in the list is one run). Reports round wall time
# (clients registered -> last push accepted, downloads included), the server's aggregation
# time (the strategy call that closed the round and committed) and the server's peak RSS
# (VmHWM) over the model size. Goal: peak RSS increment over the process's RSS before the
# model existed (LibTorch and gRPC mappings) < 4x the model.
#   LM_PARAMS (25000000), LM_CLIENTS (10), LM_PUSHES ("1 2")
bench_large_model() {
  section "large-model: FedAvg round of ${LM_CLIENTS:-10} x ${LM_PARAMS:-25000000}-param updates over gRPC"
  if ! "$BUILD_DIR/cohort" bench large-model --help > /dev/null 2>&1; then
    echo "skipped: $BUILD_DIR/cohort was built without COHORT_WITH_GRPC"
    return 0
  fi
  local params=${LM_PARAMS:-25000000} clients=${LM_CLIENTS:-10} p up
  local files=()
  for up in none int8; do
    for p in ${LM_PUSHES:-1 4}; do
      files+=("$OUT/large_model_p${p}_$up.json")
      echo "--- cohort bench large-model --params $params --clients $clients --max-concurrent-pushes $p --uplink $up --json"
      "$BUILD_DIR/cohort" bench large-model --params "$params" --clients "$clients" \
        --max-concurrent-pushes "$p" --uplink "$up" --json | tee "$OUT/large_model_p${p}_$up.json"
    done
  done
  "$PY" - "${files[@]}" <<'EOF2' | tee "$OUT/large_model_verdict.txt"
import json, sys
for f in sys.argv[1:]:
    r = json.load(open(f))
    x = r["peak_rss_increment_over_model"]
    print("%d x %.0f MB, uplink %s, max %d concurrent pushes: round %.2f s, aggregation %.3f s, "
          "server peak RSS %.0f MB = %.2fx model (%.2fx over its %.0f MB before the model; goal "
          "<= 3.5x): %s" % (
        r["clients"], r["model_bytes"] / 1e6, r["uplink"], r["max_concurrent_pushes"],
        r["round_wall_s"], r["server_aggregate_s"], r["server_peak_rss_bytes"] / 1e6,
        r["peak_rss_over_model"], x, r["server_rss_before_model_bytes"] / 1e6,
        "PASS" if x <= 3.5 else "FAIL"))
EOF2
}

# Codec throughput: encode and decode-and-fold GB/s of float32 input, ratio and error per
# chain, each against a plain float32 fold measured in the same run. Goals: int8 and int4 encode
# >= 2 GB/s, decode-and-fold >= 4 GB/s on 2 threads.
bench_codec() {
  section "codec: cohort bench codec --params ${CODEC_PARAMS:-25000000} --threads 2"
  local c
  : > "$OUT/codec.jsonl"
  for c in fp16 bf16 int8 int4 int2 terngrad "topk:0.01" "topk:0.01 -> int8 -> zstd" zstd fedzip; do
    "$BUILD_DIR/cohort" bench codec --params "${CODEC_PARAMS:-25000000}" --codec "$c" \
      --threads 2 --repeats 5 --json | tee -a "$OUT/codec.jsonl"
  done
  "$PY" - "$OUT/codec.jsonl" <<'EOF2' | tee "$OUT/codec_table.md"
import json, sys
print("| chain | encode GB/s | decode+fold GB/s | float32 fold GB/s (same run) | ratio | rel. L2 error |")
print("|---|---|---|---|---|---|")
for line in open(sys.argv[1]):
    r = json.loads(line)
    print("| `%s` | %.2f | %.2f | %.1f | %.1fx | %.4f |" % (
        r["codec"], r["encode_gbytes_per_s"], r["decode_gbytes_per_s"],
        r["baseline_fold_gbytes_per_s"], r["ratio"], r["rel_l2_error"]))
EOF2
}

# Secure aggregation's cost: one in-process round of real ClientSessions and a ServerSession
# (include/cohort/secagg/) over SECAGG_PARAMS 16-bit words, for n = 10, 50, 100 clients with
# 0, 10% and 30% of them dropping after ShareKeys (30% with threshold 0.6 of the neighbours so
# the round still succeeds; else 0.67), and SecAgg+ with k = 20 neighbours at n = 100. Reports
# per-client and server compute and bytes per client against the 16-bit plaintext; every run
# checks the unmasked sum against the plain sum of the encoded inputs.
#   SECAGG_PARAMS (1000000), SECAGG_REPEATS (1), SECAGG_THREADS (2)
bench_secagg() {
  section "secagg: cohort bench secagg, ${SECAGG_PARAMS:-1000000} params"
  local n d t
  local common=(--params "${SECAGG_PARAMS:-1000000}" --input-bits 16
    --repeats "${SECAGG_REPEATS:-1}" --threads "${SECAGG_THREADS:-2}" --json)
  : > "$OUT/secagg.jsonl"
  for n in 10 50 100; do
    for d in 0 0.1 0.3; do
      t=0.67
      if [[ $d == 0.3 ]]; then t=0.6; fi
      "$BUILD_DIR/cohort" bench secagg --clients "$n" --dropout "$d" --threshold "$t" \
        "${common[@]}" | tee -a "$OUT/secagg.jsonl"
    done
  done
  "$BUILD_DIR/cohort" bench secagg --clients 100 --neighbours 20 --threshold 0.67 \
    "${common[@]}" | tee -a "$OUT/secagg.jsonl"
  "$PY" - "$OUT/secagg.jsonl" <<'EOF2' | tee "$OUT/secagg_table.md"
import json, sys
print("| n | k | t | dropout | client s (median / max) | server s | server / plain sum | "
      "bytes/client up | bytes/client down | expansion | upload expansion | included | "
      "sum exact |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for line in open(sys.argv[1]):
    r = json.loads(line)
    print("| %d | %d | %d | %.1f | %.3f / %.3f | %.3f | %.0fx | %s | %s | %.3fx | %.3fx | %d | %s |" % (
        r["clients"], r["neighbour_count"], r["threshold"], r["dropout"], r["client_s_median"],
        r["client_s_max"], r["server_s"], r["server_vs_plain_sum"],
        f"{r['bytes_received_per_client']:,.0f}",
        f"{r['bytes_sent_per_client']:,.0f}", r["expansion"], r["upload_expansion"],
        r["included"], "yes" if r["ok"] else "NO"))
EOF2
}

# DP-FedAvg on Fashion-MNIST (examples/privacy_fmnist.yaml): the non-private run and target
# epsilon 1, 3 and 8 (noise multiplier derived from the budget over the 40 rounds); accuracy
# at each budget against the non-private one, and the epsilon-per-round curve at epsilon 3.
bench_privacy() {
  section "privacy: cohort simulate examples/privacy_fmnist.yaml, epsilon 1 / 3 / 8 / none"
  local e
  sed '/^privacy:/,/^run:/{/^run:/!d}' examples/privacy_fmnist.yaml > "$OUT/privacy_none.yaml"
  "$BUILD_DIR/cohort" simulate "$OUT/privacy_none.yaml" --out "$OUT/privacy_none" --quiet
  for e in 1 3 8; do
    "$BUILD_DIR/cohort" simulate examples/privacy_fmnist.yaml --set privacy.dp.target_epsilon=$e \
      --out "$OUT/privacy_eps$e" --quiet
  done
  "$PY" - "$OUT" <<'EOF2' | tee "$OUT/privacy_table.md"
import json, os, sys
out = sys.argv[1]
base = json.load(open(os.path.join(out, "privacy_none", "summary.json")))
print("| target epsilon | noise multiplier | epsilon spent (delta 1e-5) | final accuracy | "
      "vs non-private |")
print("|---|---|---|---|---|")
print("| none | 0 | - | %.4f | - |" % base["final_accuracy"])
for e in (8, 3, 1):
    s = json.load(open(os.path.join(out, "privacy_eps%d" % e, "summary.json")))
    print("| %d | %.3f | %.3f | %.4f | %+.2f pts |" % (
        e, s["noise_multiplier"], s["epsilon"], s["final_accuracy"],
        100 * (s["final_accuracy"] - base["final_accuracy"])))
print()
print("| round | epsilon (target 3) | accuracy |")
print("|---|---|---|")
for line in open(os.path.join(out, "privacy_eps3", "metrics.jsonl")):
    ev = json.loads(line)
    if ev.get("event") == "eval":
        print("| %d | %.3f | %.4f |" % (ev["round"], ev["epsilon"], ev["accuracy"]))
EOF2
}

# Accuracy against uplink bytes on Fashion-MNIST for every codec, FedAvg and FedBuff
# (examples/compression_fmnist.yaml, examples/compression_fedbuff_fmnist.yaml). Goals: int8 and
# int4 within 0.5 points of uncompressed with >= 3.9x / >= 7x fewer uplink bytes, top-k 1% +
# error feedback within 2 points at >= 50x fewer.
bench_codec_accuracy() {
  section "codec accuracy: cohort compare examples/compression*_fmnist.yaml"
  local cfg
  for cfg in compression_fmnist compression_fedbuff_fmnist; do
    "$BUILD_DIR/cohort" compare "examples/$cfg.yaml" --out "$OUT/$cfg" --quiet
    "$PY" - "$OUT/$cfg/comparison.json" "$cfg" <<'EOF2' | tee "$OUT/${cfg}_table.md"
import json, sys
c = json.load(open(sys.argv[1]))
rows = c["strategies"]
base = rows[0]
print("%s (target %.2f)" % (sys.argv[2], c["target_accuracy"]))
print("| uplink | final accuracy | vs none (points) | uplink bytes | fewer bytes | uplink to target |")
print("|---|---|---|---|---|---|")
for r in rows:
    up_to = r.get("uplink_to_target")
    print("| `%s` | %.4f | %+.2f | %s | %.1fx | %s |" % (
        r.get("uplink", "none"), r["final_accuracy"],
        100 * (r["final_accuracy"] - base["final_accuracy"]), f"{r['bytes_up']:,}",
        base["bytes_up"] / r["bytes_up"], f"{up_to:,}" if up_to is not None else "not reached"))
EOF2
  done
}

# The FedAST study: examples/fedast_fmnist.yaml's three models at once, then each alone.
bench_fedast() {
  section "fedast: three models at once against one after the other (bench/fedast_study.py)"
  "$PY" bench/fedast_study.py "$BUILD_DIR/cohort" examples/fedast_fmnist.yaml "$OUT/fedast" \
    | tee "$OUT/fedast_table.md"
}

# The robustness study (examples/robustness_study.yaml): one cohort compare per attack, a row
# per defence; final accuracy against the attack-free run and the trust AUC (how well trust
# scores separate the attackers from the honest clients). About 12 minutes on 2 cores.
bench_robustness() {
  section "robustness: cohort compare examples/robustness_study.yaml per attack"
  local a
  for a in none sign_flip scaling gaussian label_flip alie ipm; do
    "$BUILD_DIR/cohort" compare examples/robustness_study.yaml --set attack.kind=$a \
      --out "$OUT/robustness/$a" --quiet
  done
  "$PY" bench/robustness_table.py "$OUT/robustness" | tee "$OUT/robustness_table.md"
}

# Simulated updates per wall second over 1..4 MPI ranks (mpirun; skipped without it) and the
# bytes each model version costs (bench/mpi_scaling.sh; BENCHMARKS.md "MPI").
bench_mpi() {
  section "mpi: cohort simulate over 1, 2, 3 and 4 ranks"
  bash bench/mpi_scaling.sh "$BUILD_DIR" 1 2 3 4 | tee "$OUT/mpi_scaling.txt"
}

# Not in the default list: 30 minutes (SOAK_SECONDS) of a server with 200 clients, some
# hostile (bench/soak.py); its figures go into BENCHMARKS.md ("Soak").
bench_soak() {
  section "soak: 200 clients for ${SOAK_SECONDS:-1800} s"
  "$PY" bench/soak.py "$BUILD_DIR/cohort" . "${SOAK_SECONDS:-1800}"
}

selected=("$@")
if [[ ${#selected[@]} -eq 0 ]]; then selected=("${BENCHMARKS[@]}"); fi
for b in "${selected[@]}"; do
  if ! declare -F "bench_$b" > /dev/null; then
    echo "bench/run.sh: unknown benchmark '$b' (known: ${BENCHMARKS[*]} soak)" >&2
    exit 2
  fi
done
print_environment
for b in "${selected[@]}"; do
  "bench_$b"
done
echo
echo "Outputs in $OUT/"
