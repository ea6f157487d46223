#!/usr/bin/env bash
# tests/bench/mapping.sh: the CPU of mapping a provider answer, phase by phase (issue 8, profile):
# starts the sandbox (--seed 4242), fetches one answer per provider's document list (page size 10,
# the size target 2 proxies) and runs bench_mapping (tests/bench/mapping.c) on each.
#
#   tests/bench/mapping.sh [--bin-dir DIR] [--iterations N] [--answers ADIR] [--instructions]
#
# DIR defaults to build-release (built when missing); prints "bench mapping: ..." lines and a
# final "N passed, N failed". --answers takes each answer from ADIR/<provider>.json when it is
# there and keeps the fetched ones there otherwise: two builds compared on the same bytes (the
# sandbox's documents carry times, so answers differ a little from run to run). --instructions
# also counts the instructions of one mapping (parse to release, as timed) under callgrind -- a
# figure that does not move with the machine's load: "bench mapping instructions: <provider>
# list_documents: N per mapping (callgrind)", the difference between 100 and 600 iterations / 500.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN_DIR=$ROOT/build-release
ITER=20000
ANSWERS=
COUNT=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --bin-dir) BIN_DIR=$2; shift ;;
    --iterations) ITER=$2; shift ;;
    --answers) ANSWERS=$2; shift ;;
    --instructions) COUNT=1 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
PASS=0 FAIL=0
ok() { echo "ok - $1"; PASS=$((PASS + 1)); }
nok() { echo "not ok - $1: $2"; FAIL=$((FAIL + 1)); }
finish() { echo "$PASS passed, $FAIL failed"; [[ $FAIL == 0 ]]; exit $?; }
if [[ $BIN_DIR == "$ROOT/build-release" && ! -d $BIN_DIR/meson-private ]]; then
  meson setup "$BIN_DIR" "$ROOT" --buildtype=release >/dev/null || { nok "release build" "meson setup failed"; finish; }
fi
if [[ $BIN_DIR == "$ROOT/build-release" ]]; then
  ninja -C "$BIN_DIR" signbridge-sandbox tests/bench_mapping >/dev/null || { nok "release build" "ninja failed"; finish; }
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mapping-bench.XXXXXX")
trap 'kill $SBX_PID 2>/dev/null; rm -rf "$WORK"' EXIT
"$BIN_DIR/signbridge-sandbox" --seed 4242 --no-rate-limits --listen 127.0.0.1:0 --port-file "$WORK/port" 2>"$WORK/sandbox.log" &
SBX_PID=$!
for _ in $(seq 200); do [[ -s $WORK/port ]] && break; sleep 0.05; done
[[ -s $WORK/port ]] || { nok "sandbox starts" "$(tail -n 5 "$WORK/sandbox.log")"; finish; }
ORIGIN=http://127.0.0.1:$(cat "$WORK/port")
curl -sS --max-time 20 "$ORIGIN/_sandbox/accounts" -o "$WORK/accounts.json" || { nok "accounts" "curl failed"; finish; }
# provider, its list request (path and key header) for page size 10
while read -r PROV BASE KEY; do
  case $PROV in
    boldsign) URL="$BASE/v1/document/list?Page=1&PageSize=10"; H=(-H "X-API-KEY: $KEY") ;;
    dropboxsign) URL="$BASE/signature_request/list?page=1&page_size=10"; H=(-u "$KEY:") ;;
    iinkedsign) URL="$BASE/packages/list"; H=(-H "api_key: $KEY" -H "Content-Type: application/json"
                --data '{"take":10,"skip":0,"sortBy":"created"}') ;;
  esac
  if [[ -n $ANSWERS && -s $ANSWERS/$PROV.json ]]; then
    cp "$ANSWERS/$PROV.json" "$WORK/$PROV.json"
  else
    code=$(curl -sS --max-time 20 -o "$WORK/$PROV.json" -w '%{http_code}' "${H[@]}" "$URL")
    if [[ $code != 200 ]]; then nok "$PROV list answer" "HTTP $code from $URL"; continue; fi
    if [[ -n $ANSWERS ]]; then mkdir -p "$ANSWERS" && cp "$WORK/$PROV.json" "$ANSWERS/$PROV.json"; fi
  fi
  if line=$("$BIN_DIR/tests/bench_mapping" --answer "$WORK/$PROV.json" --provider "$PROV" \
      --tool list_documents --args '{"page_size":10}' --iterations "$ITER" 2>&1); then
    echo "$line"; ok "$PROV list_documents maps"
  else
    nok "$PROV list_documents maps" "$line"
  fi
  if [[ $COUNT == 1 ]]; then
    declare -A IR=()
    for n in 100 600; do
      IR[$n]=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN_DIR/tests/bench_mapping" \
        --answer "$WORK/$PROV.json" --provider "$PROV" --tool list_documents --args '{"page_size":10}' \
        --iterations $n 2>&1 >/dev/null | awk '/Collected :/{print $NF}')
    done
    if [[ -n ${IR[100]} && -n ${IR[600]} ]]; then
      echo "bench mapping instructions: $PROV list_documents: $(( (IR[600] - IR[100]) / 500 )) per mapping (callgrind)"
      ok "$PROV instructions counted"
    else
      nok "$PROV instructions counted" "valgrind gave no count"
    fi
  fi
done < <(python3 - "$WORK/accounts.json" <<'PY'
import json, sys
seen = set()
for a in json.load(open(sys.argv[1]))["accounts"]:
    p = a.get("provider")
    if p in seen or not a.get("api_key") or a.get("region") not in ("us", "global"):
        continue
    seen.add(p)
    print(p, a["base_url"], a["api_key"])
PY
)
finish
