#!/usr/bin/env bash
# Runs every libFuzzer target of BUILD_DIR (make fuzz) for SECONDS each, from a working copy of
# its seed corpus (fuzz/corpus/<t>/ stays as committed). A finding (crash, leak, timeout,
# out-of-memory) is saved under BUILD_DIR/findings/<t>/ and makes the script fail; to keep it
# as a regression test, copy it to fuzz/regressions/<t>/ once fixed (ctest replays those).
#   bash fuzz/run.sh BUILD_DIR [SECONDS] [TARGET...]
set -uo pipefail
build=${1:?usage: fuzz/run.sh BUILD_DIR [SECONDS] [TARGET...]}
seconds=${2:-60}
shift $(( $# >= 2 ? 2 : 1 ))
src=$(cd "$(dirname "$0")/.." && pwd)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$src"/fuzz/fuzz_*.cc; do
    t=$(basename "$f" .cc); t=${t#fuzz_}
    [ -x "$build/fuzz/cohort_fuzz_$t" ] && targets+=("$t")
  done
fi
status=0
for t in "${targets[@]}"; do
  bin="$build/fuzz/cohort_fuzz_$t"
  work="$build/corpus/$t"
  findings="$build/findings/$t"
  mkdir -p "$work" "$findings"
  cp -n "$src/fuzz/corpus/$t/"* "$work/" 2>/dev/null
  echo "fuzz: $t for ${seconds} s (corpus $(ls "$work" | wc -l) inputs)"
  # -rss_limit_mb: a parser must not allocate what an input merely claims.
  "$bin" "$work" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -artifact_prefix="$findings/" -print_final_stats=1 >"$build/fuzz-$t.log" 2>&1
  rc=$?
  grep -E "^(stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb)" "$build/fuzz-$t.log" |
    sed "s/^/fuzz: $t: /"
  if [ $rc -ne 0 ]; then
    echo "fuzz: $t FOUND A PROBLEM (exit $rc): $(ls "$findings")"
    grep -m5 -E "ERROR|runtime error|SUMMARY" "$build/fuzz-$t.log"
    status=1
  fi
done
exit $status
