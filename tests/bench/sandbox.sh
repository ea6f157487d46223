#!/usr/bin/env bash
# tests/bench/sandbox.sh: throughput of signbridge-sandbox's zero-latency list endpoints.
#
#   tests/bench/sandbox.sh            full run: release build (build-release/, set up with
#                                     `meson setup build-release --buildtype=release` if missing),
#                                     wrk -t2 -c200 -d10s per provider; exits 1 if any provider
#                                     is below 20,000 requests/s
#   tests/bench/sandbox.sh --smoke    2 s per provider, no threshold (the test suite runs this
#                                     against SANDBOX_BIN to prove the script works)
#
# Options: --bin PATH (use this sandbox binary instead of building), --duration 10s,
#          --connections 200, --threads 2, --min-rps 20000.
# Env: SANDBOX_BIN (used when --bin is not given, e.g. by the test suite).
#
# The sandbox runs with --no-rate-limits and a fixed --seed. Per provider it benchmarks:
#   boldsign     GET  {base}/v1/document/list?Page=1&PageSize=10   X-API-KEY: <key>
#   dropboxsign  GET  {base}/signature_request/list?page=1&page_size=20   Authorization: Basic
#   iinkedsign   POST {base}/packages/list {"take":20,"skip":0}   api_key: <key> (iinked_list.lua)
# and prints one plain line per provider:
#   bench boldsign: 31234 requests/s, latency p50 5.1ms p75 6.0ms p90 7.2ms p99 12.3ms, errors 0
# plus "ok - ..." / "not ok - ..." checks and a final "N passed, N failed".
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/tests/bench
SMOKE=0
BIN=${SANDBOX_BIN:-}
BIN_GIVEN=0
DURATION=10s
CONNS=200
THREADS=2
MIN_RPS=20000
[[ -n $BIN ]] && BIN_GIVEN=1
while (($#)); do
  case $1 in
    --smoke) SMOKE=1; DURATION=2s ;;
    --bin) BIN=$2; BIN_GIVEN=1; shift ;;
    --duration) DURATION=$2; shift ;;
    --connections) CONNS=$2; shift ;;
    --threads) THREADS=$2; shift ;;
    --min-rps) MIN_RPS=$2; shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "sandbox.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

PASS=0
FAIL=0
ok() { echo "ok - $1"; PASS=$((PASS + 1)); }
nok() { echo "not ok - $1: $2"; FAIL=$((FAIL + 1)); }
finish() { echo "$PASS passed, $FAIL failed"; [[ $FAIL == 0 ]]; exit $?; }

for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { nok "$tool installed" "not on PATH (scripts/setup-deps installs it)"; finish; }
done

if ((!BIN_GIVEN)) || [[ -z $BIN ]]; then
  # A release build: optimised, no sanitizers.
  if [[ ! -d $ROOT/build-release/meson-private ]]; then
    meson setup "$ROOT/build-release" "$ROOT" --buildtype=release >/dev/null || {
      nok "release build configured" "meson setup build-release failed"; finish; }
  fi
  ninja -C "$ROOT/build-release" signbridge-sandbox >/dev/null || {
    nok "release build" "ninja -C build-release signbridge-sandbox failed"; finish; }
  BIN=$ROOT/build-release/signbridge-sandbox
fi
[[ -x $BIN ]] || { nok "sandbox binary" "$BIN is not executable"; finish; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sbx-bench.XXXXXX")
SB_PID=
cleanup() {
  if [[ -n $SB_PID ]] && kill -0 "$SB_PID" 2>/dev/null; then kill -KILL "$SB_PID" 2>/dev/null; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$BIN" --seed 4242 --no-rate-limits --threads 2 --listen 127.0.0.1:0 --port-file "$WORK/port" \
  2>"$WORK/sandbox.log" &
SB_PID=$!
PORT=
for _ in $(seq 300); do
  if [[ -s $WORK/port ]]; then PORT=$(tr -d '\n' <"$WORK/port"); [[ $PORT =~ ^[0-9]+$ ]] && break; PORT=; fi
  kill -0 "$SB_PID" 2>/dev/null || break
  sleep 0.1
done
[[ -n $PORT ]] || { nok "sandbox starts" "$(tail -n 20 "$WORK/sandbox.log" | tr '\n' ' ')"; finish; }
echo "# $BIN on port $PORT (pid $SB_PID); wrk -t$THREADS -c$CONNS -d$DURATION per provider"

if ! curl -sS --max-time 20 "http://127.0.0.1:$PORT/_sandbox/accounts" -o "$WORK/accounts.json"; then
  nok "GET /_sandbox/accounts" "curl failed"; finish
fi
# provider base_url key, for the first account of: boldsign us, dropboxsign global, iinkedsign us.
python3 - "$WORK/accounts.json" >"$WORK/targets" <<'PY'
import json, sys
accts = json.load(open(sys.argv[1]))["accounts"]
want = [("boldsign", "us"), ("dropboxsign", "global"), ("iinkedsign", "us")]
for prov, region in want:
    for a in accts:
        if a.get("provider") == prov and a.get("region") == region and a.get("api_key"):
            print(prov, a["base_url"], a["api_key"])
            break
    else:
        print(prov, "-", "-")
PY

# "latency p50 ..." from wrk --latency output; values normalised to ms.
summarise() {
  python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def ms(v):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", v)
    if not m:
        return v
    x, u = float(m.group(1)), m.group(2)
    return "%.2fms" % (x / 1000 if u == "us" else x * 1000 if u == "s" else x * 60000 if u == "m" else x)
rps = re.search(r"Requests/sec:\s*([\d.]+)", text)
pct = dict(re.findall(r"^\s*(50|75|90|99)%\s+(\S+)", text, re.M))
non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
sockerr = re.search(r"Socket errors:\s*connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
total = re.search(r"(\d+) requests in", text)
errs = int(non2xx.group(1)) if non2xx else 0
print("|".join(str(x) for x in (
    int(float(rps.group(1))) if rps else 0,
    " ".join("p%s %s" % (k, ms(pct[k])) for k in ("50", "75", "90", "99") if k in pct) or "-",
    errs, total.group(1) if total else 0,
    ",".join(sockerr.groups()) if sockerr else "0,0,0,0")))
PY
}

while read -r PROV BASE KEY; do
  if [[ $BASE == - ]]; then nok "bench $PROV" "no $PROV account with an api_key in /_sandbox/accounts"; continue; fi
  case $PROV in
    boldsign)
      URL="$BASE/v1/document/list?Page=1&PageSize=10"; ARGS=(-H "X-API-KEY: $KEY");
      PROBE=(-H "X-API-KEY: $KEY") ;;
    dropboxsign)
      AUTH=$(printf '%s:' "$KEY" | base64 -w0)
      URL="$BASE/signature_request/list?page=1&page_size=20"; ARGS=(-H "Authorization: Basic $AUTH")
      PROBE=("${ARGS[@]}") ;;
    iinkedsign)
      URL="$BASE/packages/list"; ARGS=(-H "api_key: $KEY" -s "$HERE/iinked_list.lua")
      PROBE=(-H "api_key: $KEY" -H "Content-Type: application/json" -d '{"take":20,"skip":0}') ;;
  esac
  # The request must succeed before it is worth timing.
  code=$(curl -sS --max-time 20 -o "$WORK/probe" -w '%{http_code}' "${PROBE[@]}" "$URL")
  if [[ $code != 200 ]]; then
    nok "bench $PROV: probe request answers 200" "HTTP $code: $(head -c 300 "$WORK/probe")"; continue
  fi
  wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --timeout 10s --latency "${ARGS[@]}" "$URL" >"$WORK/wrk.$PROV" 2>&1
  IFS='|' read -r RPS LAT ERRS TOTAL SOCK < <(summarise "$WORK/wrk.$PROV")
  echo "bench $PROV: $RPS requests/s, latency $LAT, requests $TOTAL, non-2xx $ERRS, socket errors (connect,read,write,timeout) $SOCK"
  if [[ $RPS == 0 || $TOTAL == 0 ]]; then
    nok "bench $PROV: wrk ran" "$(tr '\n' ' ' <"$WORK/wrk.$PROV" | head -c 600)"; continue
  fi
  if [[ $ERRS == 0 ]]; then ok "bench $PROV: every response 2xx"; else nok "bench $PROV: every response 2xx" "$ERRS non-2xx responses"; fi
  if ((SMOKE)); then
    ok "bench $PROV: smoke run measured $RPS requests/s (no threshold)"
  elif ((RPS >= MIN_RPS)); then
    ok "bench $PROV: $RPS requests/s >= $MIN_RPS"
  else
    nok "bench $PROV: >= $MIN_RPS requests/s" "measured $RPS"
  fi
done <"$WORK/targets"

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
finish
