#!/usr/bin/env bash
# Multi-process deployment test: a real `cohort serve` and real `cohort join` processes on
# 127.0.0.1 (OS-chosen port), TLS (scripts/make-certs.sh) and bearer tokens.
#
#   tests/integration/deploy_test.sh COHORT_BINARY SOURCE_DIR [fedavg|fedbuff|all]
#
# For each strategy (FedAvg with a round deadline, FedBuff) on a small synthetic problem
# (4 classes: chance = 0.25), with 3 good clients, one sending a wrong-shape update and one
# sending a NaN update (hidden `cohort join --inject-fault`, first update only), one victim:
#   - a client with a wrong token exits with code 1 and an UNAUTHENTICATED message;
#   - the victim is killed with SIGKILL after its first accepted update: training goes on
#     (the server reaches its commit budget);
#   - the server is killed with SIGKILL after a few checkpoints and restarted with --resume on
#     the same port: it continues from the version in the checkpoint file, versions never go
#     backwards, the clients reconnect by themselves (when the strategy cannot checkpoint the
#     server says Unimplemented at start-up; the test then says SKIP for that part and runs
#     without the restart);
#   - both faulty updates are rejected (rejected events naming the problem) and the faulty
#     clients, the good clients and the server all finish with exit code 0;
#   - the final accuracy (summary.json) is well above chance and the model hash is valid.
# Registered in CTest (label grpc). Uses python3 only to read JSON.
set -euo pipefail

COHORT=${1:?usage: deploy_test.sh COHORT_BINARY SOURCE_DIR [fedavg|fedbuff|all]}
SRC=${2:?usage: deploy_test.sh COHORT_BINARY SOURCE_DIR [fedavg|fedbuff|all]}
WHICH=${3:-all}
PY=/usr/bin/python3
export OMP_WAIT_POLICY=PASSIVE

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cohort_deploy_test.XXXXXX")
PIDS=()
cleanup() {
  local rc=$?
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  if [ $rc -ne 0 ]; then
    echo "--- deploy_test failed; logs in $WORK ---" >&2
    for f in "$WORK"/*/*.log "$WORK"/*/*.err; do
      [ -f "$f" ] && { echo "=== $f" >&2; tail -n 15 "$f" >&2; }
    done
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "[deploy_test $(date +%T)] $*"; }

# wait_until TIMEOUT_S CMD...: polls CMD every 0.1 s.
wait_until() {
  local timeout=$1; shift
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.1
  done
}

"$SRC/scripts/make-certs.sh" "$WORK/certs" >/dev/null
CA=$WORK/certs/ca.pem

# Tokens for clients 0..5; client k uses token-file $WORK/tok<k>.
{
  echo "# token client_id"
  for k in 0 1 2 3 4 5; do echo "secret-$k-$RANDOM$RANDOM $k"; done
} >"$WORK/tokens.txt"
for k in 0 1 2 3 4 5; do grep " $k\$" "$WORK/tokens.txt" | cut -d' ' -f1 >"$WORK/tok$k"; done
echo "not-a-valid-token" >"$WORK/tokbad"

write_config() {  # DIR STRATEGY_YAML ROUNDS
  cat >"$1/config.yaml" <<EOF
data:
  dataset: synthetic
  partition: iid
  synthetic: {num_examples: 1800, test_examples: 600, dim: 20, classes: 4, separation: 3.0, noise: 1.0}
model:
  name: mlp
  hidden: [32]
training:
  lr: 0.1
  batch_size: 32
  local_steps: 30
strategy:
$2
run:
  rounds: $3
  seed: 5
  eval_every: 10
EOF
}

SERVER_PID=
PORT=
start_server() {  # DIR OUT LISTEN EXTRA...
  local dir=$1 out=$2 listen=$3; shift 3
  "$COHORT" serve "$dir/config.yaml" --listen "$listen" --tokens "$WORK/tokens.txt" \
    --cert "$WORK/certs/server.pem" --key "$WORK/certs/server.key" --out "$out" \
    --client-timeout 2 "$@" >"$out.log" 2>"$out.err" &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  if ! wait_until 20 grep -qs '^listening on 127.0.0.1:[0-9]*$' "$out.log"; then
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then return 1; fi
    fail "server did not print its port"
  fi
  PORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$out.log" | head -n1)
}

declare -A CLIENT_PID
start_client() {  # DIR K EXTRA...
  local dir=$1 k=$2; shift 2
  "$COHORT" join --server "127.0.0.1:$PORT" --token-file "$WORK/tok$k" --ca "$CA" \
    --partition "$k/6" --max-disconnected-s 40 --backoff-max-s 0.3 "$@" "$dir/config.yaml" \
    >"$dir/client$k.log" 2>"$dir/client$k.err" &
  CLIENT_PID[$k]=$!
  PIDS+=("$!")
}

# Python helpers over metrics.jsonl / summary.json / checkpoint.cohort.
json_py() { "$PY" - "$@"; }

checkpoint_version() {  # DIR -> version in DIR/checkpoint.cohort, or -1
  json_py "$1/checkpoint.cohort" <<'EOF'
import json, struct, sys
try:
    b = open(sys.argv[1], "rb").read()
    assert b[:8] == b"COHORTC1"
    (n,) = struct.unpack("<Q", b[8:16])
    print(json.loads(b[16:16 + n])["version"])
except Exception:
    print(-1)
EOF
}

ckpt_at_least() { [ "$(checkpoint_version "$1")" -ge "$2" ]; }

# Max round/commit version in a metrics file (events with "version").
max_version() {
  json_py "$1" <<'EOF'
import json, sys
v = -1
try:
    for line in open(sys.argv[1]):
        try:
            e = json.loads(line)
        except ValueError:
            continue  # a line cut by SIGKILL
        if e.get("event") in ("round", "buffer_flush", "commit", "checkpoint") and "version" in e:
            v = max(v, e["version"])
except FileNotFoundError:
    pass
print(v)
EOF
}

run_scenario() {  # NAME STRATEGY_YAML ROUNDS
  local name=$1 strategy=$2 rounds=$3
  local dir=$WORK/$name
  local rc
  mkdir -p "$dir" "$dir/ckpt"
  write_config "$dir" "$strategy" "$rounds"
  # Clients start first, against a port the OS picked and released, and retry with backoff
  # until the server is up: every client is loaded and connected when training begins, so the
  # run does not finish before the slowest process has started.
  PORT=$(json_py <<'PYEOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PYEOF
)
  start_client "$dir" 0
  start_client "$dir" 1
  start_client "$dir" 2
  start_client "$dir" 3 --inject-fault wrong-shape
  start_client "$dir" 4 --inject-fault nan
  start_client "$dir" 5
  for k in 0 1 2 3 4 5; do
    wait_until 60 grep -qs "connection lost" "$dir/client$k.log" || fail "$name: client $k did not start"
  done
  note "$name: 6 clients waiting for the server; starting it (TLS, tokens, checkpoints)"
  local resume=1
  if ! start_server "$dir" "$dir/out1" "127.0.0.1:$PORT" --checkpoint-dir "$dir/ckpt"; then
    if grep -q "UNIMPLEMENTED" "$dir/out1.err"; then
      note "SKIP $name server kill/--resume: $(grep -o 'UNIMPLEMENTED.*' "$dir/out1.err" | head -c 160)"
      resume=0
      start_server "$dir" "$dir/out1" "127.0.0.1:$PORT" || fail "$name: server did not start"
    else
      fail "$name: server did not start: $(cat "$dir/out1.err")"
    fi
  fi
  note "$name: server on 127.0.0.1:$PORT"

  # Wrong token: rejected at Register, exit code 1, a message saying so. Runs in the
  # background while the others train; checked at the end.
  "$COHORT" join --server "127.0.0.1:$PORT" --token-file "$WORK/tokbad" --ca "$CA" \
    --partition 0/6 "$dir/config.yaml" >"$dir/badtoken.log" 2>"$dir/badtoken.err" &
  local bad_pid=$!
  PIDS+=("$bad_pid")

  # The victim: SIGKILL once it has started a task (it may or may not have pushed it by the
  # time the signal lands; either way the server must not wait for it forever).
  wait_until 30 grep -q "training [0-9]* steps$" "$dir/client5.log" || fail "$name: victim never trained"
  kill -9 "${CLIENT_PID[5]}"
  wait "${CLIENT_PID[5]}" 2>/dev/null || true
  note "$name: victim client 5 killed with SIGKILL ($(tail -n1 "$dir/client5.log"))"

  if [ $resume -eq 1 ]; then
    local target=$((rounds / 4))
    wait_until 40 ckpt_at_least "$dir/ckpt" "$target" ||
      fail "$name: no checkpoint at version $target"
    kill -9 "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    local ck
    ck=$(checkpoint_version "$dir/ckpt")
    local before
    before=$(max_version "$dir/out1/metrics.jsonl")
    note "$name: server killed with SIGKILL (checkpoint at version $ck, metrics up to $before); restarting with --resume"
    sleep 0.5
    start_server "$dir" "$dir/out2" "127.0.0.1:$PORT" --checkpoint-dir "$dir/ckpt" \
      --resume || fail "$name: resumed server did not start: $(cat "$dir/out2.err")"
    echo "$ck" >"$dir/resumed_from_expected"
  fi

  # Everybody else finishes by themselves.
  for k in 0 1 2 3 4; do
    local deadline=$((SECONDS + 60))
    while kill -0 "${CLIENT_PID[$k]}" 2>/dev/null; do
      [ $SECONDS -ge $deadline ] && fail "$name: client $k did not finish"
      sleep 0.1
    done
    set +e
    wait "${CLIENT_PID[$k]}"
    rc=$?
    set -e
    [ $rc -eq 0 ] || fail "$name: client $k exited with $rc: $(tail -n 3 "$dir/client$k.err")"
  done
  set +e
  wait "$SERVER_PID"
  rc=$?
  set -e
  [ $rc -eq 0 ] || fail "$name: server exited with $rc"
  local final_out=$dir/out1
  [ $resume -eq 1 ] && final_out=$dir/out2

  set +e
  wait "$bad_pid"
  rc=$?
  set -e
  [ $rc -eq 1 ] || fail "$name: wrong-token client exited with $rc, expected 1"
  grep -q "UNAUTHENTICATED" "$dir/badtoken.err" && grep -q "rejected this client's token" "$dir/badtoken.err" ||
    fail "$name: wrong-token client's message: $(cat "$dir/badtoken.err")"
  note "$name: wrong token rejected: $(head -c 150 "$dir/badtoken.err")"

  for k in 3 4; do
    grep -q "update rejected by the server" "$dir/client$k.log" ||
      fail "$name: faulty client $k did not see a rejection"
  done
  if [ $resume -eq 1 ]; then
    grep -q "connection lost" "$dir/client0.log" || fail "$name: client 0 never noticed the restart"
    grep -Eq "done: .* [1-9][0-9]* reconnects" "$dir/client0.log" || fail "$name: client 0 did not reconnect"
  fi

  json_py "$dir" "$final_out" "$rounds" "$resume" "$name" <<'EOF'
import json, os, re, struct, sys
d, final_out, rounds, resume, name = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5]

def events(path):
    out = []
    if not os.path.exists(path):
        return out
    for line in open(path):
        try:
            out.append(json.loads(line))
        except ValueError:
            pass  # the last line of a SIGKILLed server may be cut
    return out

def fail(msg):
    sys.exit(f"FAIL: {name}: {msg}")

# Events that carry the global version just committed (sync rounds, FedBuff flushes, async
# commits); "lost"/"rejected" carry a task's base version instead. Checkpoint events come from
# the writer thread once the file is on disk, so they trail the commits: they are checked
# among themselves.
COMMITS = ("round", "buffer_flush", "commit")

lives = [events(f"{d}/out1/metrics.jsonl")]
if resume:
    lives.append(events(f"{d}/out2/metrics.jsonl"))

# Versions never go backwards within a server's life, and the resumed life starts at the
# checkpointed version and only moves forward from it.
for i, evs in enumerate(lives):
    for kinds in (COMMITS, ("checkpoint",)):
        vs = [e["version"] for e in evs if e.get("event") in kinds and "version" in e]
        for a, b in zip(vs, vs[1:]):
            if b < a:
                fail(f"life {i + 1}: {kinds[0]} version went backwards {a} -> {b}")
if resume:
    expected = int(open(f"{d}/resumed_from_expected").read())
    start = [e for e in lives[1] if e.get("event") == "start"]
    if not start or start[0].get("resumed_from_version") != expected:
        fail(f"resumed server's start event {start[:1]} does not say resumed_from_version {expected}")
    after = [e["version"] for e in lives[1] if e.get("event") in COMMITS and "version" in e]
    # (A round open at the checkpoint closes after the restart, with or without a commit: its
    # event may carry the checkpointed version itself.)
    if not after or min(after) < expected or max(after) <= expected:
        fail(f"versions after --resume {after[:5]} do not continue after {expected}")
    print(f"{name}: resumed from version {expected}; versions after restart {after[0]}..{after[-1]}")

rejected = [e for lf in lives for e in lf if e.get("event") == "rejected"]
reasons = " | ".join(str(e.get("reason", "")) for e in rejected)
if not re.search(r"shape|\[", reasons, re.I):
    fail(f"no wrong-shape rejection among {len(rejected)}: {reasons}")
if not re.search(r"nan|finite|infinit", reasons, re.I):
    fail(f"no NaN rejection among {len(rejected)}: {reasons}")
print(f"{name}: {len(rejected)} rejected updates: {reasons[:300]}")

s = json.load(open(f"{final_out}/summary.json"))
if s.get("rounds") != rounds:
    fail(f"summary rounds {s.get('rounds')}, expected {rounds}")
if not re.fullmatch(r"[0-9a-f]{16}", str(s.get("model_hash", ""))):
    fail(f"model_hash {s.get('model_hash')!r} is not a 64-bit hex hash")
# The final model file (model.cohort, a checkpoint-format file with only the model): the
# summary's model, at the final version.
mb = open(f"{final_out}/model.cohort", "rb").read()
if mb[:8] != b"COHORTC1":
    fail("model.cohort: bad magic")
(mlen,) = struct.unpack("<Q", mb[8:16])
mm = json.loads(mb[16:16 + mlen])
if mm.get("version") != rounds or [a["name"] for a in mm.get("arrays", [])] != ["model"]:
    fail(f"model.cohort: version {mm.get('version')} arrays {mm.get('arrays')}")
if mm["arrays"][0]["hash"] != s.get("model_hash"):
    fail(f"model.cohort holds model {mm['arrays'][0]['hash']}, the summary says {s.get('model_hash')}")
acc = s.get("final_accuracy", 0)
if not acc >= 0.6:
    fail(f"final accuracy {acc} is not well above chance (0.25)")
lost = sum(e.get("lost", 0) + e.get("timed_out", 0) for lf in lives for e in lf if e.get("event") == "round")
lost += sum(1 for lf in lives for e in lf if e.get("event") == "lost")
print(f"{name}: final accuracy {acc:.3f}, model {s['model_hash']}, stop {s.get('stop_reason')}, "
      f"lost/timed-out tasks {lost}, wall {s.get('wall_time_s', 0):.1f} s")
EOF
  note "$name: OK"
}

if [ "$WHICH" = fedavg ] || [ "$WHICH" = all ]; then
  run_scenario fedavg "  name: fedavg
  fraction: 1.0
  min_clients: 3
  round_deadline_s: 1.5" 150
fi
if [ "$WHICH" = fedbuff ] || [ "$WHICH" = all ]; then
  run_scenario fedbuff "  name: fedbuff
  buffer_size: 3" 300
fi
note "all OK"
