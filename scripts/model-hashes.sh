#!/usr/bin/env bash
# Prints the final model hash of every example config (and the demo), for checking that a change
# left training bit-for-bit unchanged: run it before and after, then diff the two outputs.
#   scripts/model-hashes.sh [BUILD_DIR] [OUT_DIR]   (about 10 minutes on 2 cores)
# Hashes are reproducible for a seed on one machine; another CPU or BLAS may round differently.
set -euo pipefail
BUILD_DIR=${1:-build}
OUT=${2:-runs/hashes}
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
mkdir -p "$OUT"
hash_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["model_hash"])' "$1"; }
for cfg in examples/*.yaml; do
  name=$(basename "$cfg" .yaml)
  if grep -q '^strategies:' "$cfg"; then
    "$BUILD_DIR/cohort" compare "$cfg" --out "$OUT/$name" --quiet > /dev/null
    for s in "$OUT/$name"/*/summary.json; do
      echo "$name/$(basename "$(dirname "$s")") $(hash_of "$s")"
    done
  else
    "$BUILD_DIR/cohort" simulate "$cfg" --out "$OUT/$name" --quiet > /dev/null
    echo "$name $(hash_of "$OUT/$name/summary.json")"
  fi
done
