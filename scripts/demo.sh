#!/usr/bin/env bash
# `make demo`: FedAvg on Fashion-MNIST, 20 heterogeneous clients, in the simulator.
set -euo pipefail
BUILD_DIR=${1:-build}
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
OUT=runs/demo
echo "== cohort simulate examples/fedavg_fmnist.yaml --out $OUT"
"$BUILD_DIR/cohort" simulate examples/fedavg_fmnist.yaml --out "$OUT"
echo
echo "Outputs: $OUT/metrics.jsonl (one JSON event per line), $OUT/summary.json, $OUT/config.json, $OUT/clients.json"
