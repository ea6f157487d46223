#!/usr/bin/env bash
# sandbox-tls: signbridge-sandbox serving HTTPS with a throwaway test CA made at test time.
#   1. make-test-ca.sh writes a CA and a 127.0.0.1/localhost server certificate into a temp dir
#      (openssl; no key is ever committed);
#   2. the sandbox starts with --tls-cert/--tls-key on port 0 (fixed --seed);
#   3. a client trusting the CA succeeds (curl --cacert, by IP and by name), the accounts' base_url
#      is https://, a provider REST call works over TLS; a client trusting only the system store
#      fails (curl exit 60), one trusting a different throwaway CA fails, and plain HTTP gets no
#      HTTP response;
#   4. a mismatched key/certificate pair and a missing --tls-key are refused at start;
#   5. SIGTERM -> exit 0, no sanitizer report.
# Env: SANDBOX_BIN (the built signbridge-sandbox), SB_SOURCE_ROOT (repo root).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=${SANDBOX_BIN:?SANDBOX_BIN must point at signbridge-sandbox}
PASS=0
FAIL=0
ok() { echo "ok - $1"; PASS=$((PASS + 1)); }
nok() { echo "not ok - $1: $2"; FAIL=$((FAIL + 1)); }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sbx-tls.XXXXXX")
SB_PID=
cleanup() {
  if [[ -n $SB_PID ]] && kill -0 "$SB_PID" 2>/dev/null; then
    kill -KILL "$SB_PID" 2>/dev/null
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if "$HERE/make-test-ca.sh" "$WORK/ca" && "$HERE/make-test-ca.sh" "$WORK/other"; then
  ok "throwaway CA and server certificate generated with openssl"
else
  nok "throwaway CA and server certificate generated with openssl" "make-test-ca.sh failed"
  echo "$PASS passed, $FAIL failed"; exit 1
fi

"$BIN" --seed 4242 --listen 127.0.0.1:0 --port-file "$WORK/port" \
  --tls-cert "$WORK/ca/server.pem" --tls-key "$WORK/ca/server.key" 2>"$WORK/sandbox.log" &
SB_PID=$!
PORT=
for _ in $(seq 300); do
  if [[ -s $WORK/port ]]; then PORT=$(tr -d '\n' <"$WORK/port"); [[ $PORT =~ ^[0-9]+$ ]] && break; PORT=; fi
  kill -0 "$SB_PID" 2>/dev/null || break
  sleep 0.1
done
if [[ -z $PORT ]]; then
  nok "sandbox starts with --tls-cert/--tls-key" "$(tail -n 20 "$WORK/sandbox.log" | tr '\n' ' ')"
  echo "$PASS passed, $FAIL failed"; exit 1
fi
ok "sandbox starts with --tls-cert/--tls-key (port $PORT)"

CURL=(curl -sS --max-time 20 -o "$WORK/body" -w '%{http_code}')
code=$("${CURL[@]}" --cacert "$WORK/ca/ca.pem" "https://127.0.0.1:$PORT/_sandbox/health" 2>"$WORK/err")
if [[ $code == 200 ]]; then ok "client trusting the CA: https://127.0.0.1 -> 200"
else nok "client trusting the CA: https://127.0.0.1 -> 200" "http $code; $(cat "$WORK/err")"; fi

code=$("${CURL[@]}" --cacert "$WORK/ca/ca.pem" "https://localhost:$PORT/_sandbox/accounts" 2>"$WORK/err")
if [[ $code == 200 ]]; then ok "client trusting the CA: https://localhost (SAN DNS) -> 200"
else nok "client trusting the CA: https://localhost (SAN DNS) -> 200" "http $code; $(cat "$WORK/err")"; fi

# The accounts' base_url says https, and a provider REST call with its key works over TLS.
read -r BASE KEY < <(python3 - "$WORK/body" <<'PY'
import json, sys
try:
    accts = json.load(open(sys.argv[1]))["accounts"]
except Exception:
    accts = []
for a in accts:
    if a.get("provider") == "dropboxsign":
        print(a.get("base_url", ""), a.get("api_key", ""))
        break
else:
    print("- -")
PY
)
if [[ $BASE == https://127.0.0.1:$PORT/* ]]; then ok "accounts' base_url is https ($BASE)"
else nok "accounts' base_url is https" "got '$BASE'"; fi
if [[ $BASE == https://* ]]; then
  code=$("${CURL[@]}" --cacert "$WORK/ca/ca.pem" -u "$KEY:" "$BASE/account" 2>"$WORK/err")
  if [[ $code == 200 ]]; then ok "provider REST over TLS: Dropbox Sign GET /v3/account -> 200"
  else nok "provider REST over TLS: Dropbox Sign GET /v3/account -> 200" "http $code; $(head -c 300 "$WORK/body")"; fi
fi

# Clients not trusting the CA fail the handshake (curl 60 = peer certificate cannot be authenticated).
"${CURL[@]}" "https://127.0.0.1:$PORT/_sandbox/health" >/dev/null 2>"$WORK/err"
rc=$?
if [[ $rc == 60 ]]; then ok "client trusting only the system CAs fails (curl exit 60)"
else nok "client trusting only the system CAs fails (curl exit 60)" "curl exit $rc; $(cat "$WORK/err")"; fi
"${CURL[@]}" --cacert "$WORK/other/ca.pem" "https://127.0.0.1:$PORT/_sandbox/health" >/dev/null 2>"$WORK/err"
rc=$?
if [[ $rc == 60 ]]; then ok "client trusting another throwaway CA fails (curl exit 60)"
else nok "client trusting another throwaway CA fails (curl exit 60)" "curl exit $rc; $(cat "$WORK/err")"; fi
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/_sandbox/health" 2>/dev/null)
if [[ $code != 200 ]]; then ok "plain HTTP on the TLS port gets no HTTP 200 (got '$code')"
else nok "plain HTTP on the TLS port gets no HTTP 200" "it answered 200"; fi

# Still serving after the failed handshakes.
code=$("${CURL[@]}" --cacert "$WORK/ca/ca.pem" "https://127.0.0.1:$PORT/_sandbox/health" 2>"$WORK/err")
if [[ $code == 200 ]]; then ok "still serving after refused handshakes"
else nok "still serving after refused handshakes" "http $code; $(cat "$WORK/err")"; fi

kill -TERM "$SB_PID"
wait "$SB_PID"
rc=$?
SB_PID=
if [[ $rc == 0 ]]; then ok "sandbox exits 0 on SIGTERM"; else nok "sandbox exits 0 on SIGTERM" "exit status $rc"; fi
if hit=$(grep -m1 -E 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:' "$WORK/sandbox.log"); then
  nok "no sanitizer report from the sandbox" "$hit"
else
  ok "no sanitizer report from the sandbox"
fi

# Start-up refusals: a key that does not match the certificate; --tls-cert without --tls-key.
timeout 20 "$BIN" --listen 127.0.0.1:0 --port-file "$WORK/port2" \
  --tls-cert "$WORK/ca/server.pem" --tls-key "$WORK/other/server.key" >/dev/null 2>"$WORK/bad.log"
rc=$?
if [[ $rc != 0 && $rc != 124 && ! -s $WORK/port2 ]]; then ok "mismatched --tls-key refused at start (exit $rc)"
else nok "mismatched --tls-key refused at start" "exit $rc; $(head -c 300 "$WORK/bad.log")"; fi
timeout 20 "$BIN" --listen 127.0.0.1:0 --tls-cert "$WORK/ca/server.pem" >/dev/null 2>"$WORK/bad.log"
rc=$?
if [[ $rc == 2 ]]; then ok "--tls-cert without --tls-key refused (exit 2)"
else nok "--tls-cert without --tls-key refused (exit 2)" "exit $rc; $(head -c 300 "$WORK/bad.log")"; fi
if hit=$(grep -m1 -E 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:' "$WORK/bad.log"); then
  nok "no sanitizer report from the refused starts" "$hit"
fi

echo "$PASS passed, $FAIL failed"
[[ $FAIL == 0 ]]
