# tests/bench/lib.sh: what the benchmark scripts that drive a live sandbox share (sourced, not
# run): TAP-style checks, a scratch directory cleaned up on exit with the processes started, and
# the sandbox with the BoldSign us account's key. Used by instructions.sh and syscalls.sh.
#
#   ok NAME / nok NAME WHY   one "ok - NAME" / "not ok - NAME: WHY" line, counted
#   finish                   "N passed, N failed"; exits 1 when anything failed
#   bench_workdir            W = a fresh temp dir; on exit SB_PID and SBX_PID (when set) are
#                            killed and W removed
#   wait_file FILE TENTHS    0 once FILE is non-empty, 1 after TENTHS tenths of a second
#   start_sandbox SBX [ARG]… starts the sandbox binary SBX (--seed 4242, no rate limits, ARGs) on a free
#                            port: SBX_PID, ORIGIN and KEY (the BoldSign us API key); 1 (after a
#                            "not ok" line) when it does not come up or has no such account
PASS=0 FAIL=0
ok() { echo "ok - $1"; PASS=$((PASS + 1)); }
nok() { echo "not ok - $1: $2"; FAIL=$((FAIL + 1)); }
finish() { echo "$PASS passed, $FAIL failed"; [[ $FAIL == 0 ]]; exit $?; }
wait_file() { for _ in $(seq "$2"); do [[ -s $1 ]] && return 0; sleep 0.1; done; return 1; }

bench_cleanup() {
  [[ -n ${SB_PID:-} ]] && kill "$SB_PID" 2>/dev/null
  [[ -n ${SBX_PID:-} ]] && kill "$SBX_PID" 2>/dev/null
  wait 2>/dev/null
  [[ -n ${W:-} ]] && rm -rf "$W"
}

bench_workdir() {
  W=$(mktemp -d)
  SBX_PID= SB_PID=
  trap bench_cleanup EXIT
}

start_sandbox() {
  "$1" --seed 4242 --no-rate-limits "${@:2}" --listen 127.0.0.1:0 --port-file "$W/x.port" 2>"$W/x.log" &
  SBX_PID=$!
  wait_file "$W/x.port" 100 || { nok "sandbox" "no port file within 10 s: $(tail -n 3 "$W/x.log")"; return 1; }
  ORIGIN=http://127.0.0.1:$(cat "$W/x.port")
  KEY=$(curl -s --max-time 10 "$ORIGIN/_sandbox/accounts" | python3 -c '
import json, sys
for a in json.load(sys.stdin)["accounts"]:
    if a.get("provider") == "boldsign" and a.get("region") == "us" and a.get("api_key"):
        print(a["api_key"]); break')
  [[ -n $KEY ]] || { nok "sandbox" "no BoldSign us account with an API key"; return 1; }
}
