#!/usr/bin/env bash
# tests/bench/syscalls.sh: signbridge's system calls per request, by kind (issue 8, profile). On
# this VM a system call costs ~1 us before it does any work (a getppid loop), so their number is
# a cost of its own; the kernel's tracepoints count them exactly, whatever the machine's noise.
#
#   tests/bench/syscalls.sh [--bin-dir DIR] [--duration S] [--smoke]
#
# DIR (default build-release) holds signbridge and signbridge-sandbox. It starts the sandbox
# (--seed 4242, no rate limits) and signbridge on it, opens one API-key session on /boldsign/mcp,
# and for each load -- tools/call list_documents (page_size 10, targets 2 and 3) at 1 and at 50
# connections, tools/list at 50 -- runs wrk (tests/bench/lua/mcp_post.lua, a JSON-RPC id per
# request) for S seconds (default 5) while `perf stat` counts signbridge's system calls
# (raw_syscalls:sys_enter and the kinds below). Prints
#   bench syscalls: <load>: <N> per request (<requests> requests, p50 <X>); epoll_wait <n>,
#     epoll_ctl <n>, poll <n>, recvfrom <n>, sendto <n>, sendmsg <n>, other <n>
# and, from a second run at 1 connection traced with `perf record` (each system call's time):
#   bench syscalls: list_documents c1 path: request read -> upstream request sent: median <X> us;
#     upstream answer read -> reply sent: median <Y> us (<N> calls)
# -- signbridge's own part of target 3, without the waits for the client and the sandbox --
# then "ok -" / "not ok -" lines and a final "N passed, N failed". Needs perf with tracepoints
# (root; Debian's linux-perf, scripts/setup-deps) and wrk. --smoke: 1 s per load, no figures
# judged (the bench suite runs it to prove the script works).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN_DIR=$ROOT/build-release
DUR=5
while [[ $# -gt 0 ]]; do
  case $1 in
    --bin-dir) BIN_DIR=$2; shift ;;
    --duration) DUR=$2; shift ;;
    --smoke) DUR=1 ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "syscalls.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
# ok/nok/finish, the scratch directory and the sandbox
. "$HERE/lib.sh"
[[ $DUR =~ ^[0-9]+$ && $DUR -ge 1 ]] || { nok "options" "--duration takes whole seconds (>= 1)"; finish; }
for t in perf wrk python3 curl; do
  command -v "$t" >/dev/null || { nok "tools" "$t is not installed (scripts/setup-deps installs it)"; finish; }
done
SB=$BIN_DIR/signbridge SBX=$BIN_DIR/signbridge-sandbox
[[ -x $SB && -x $SBX ]] || { nok "binaries" "no $SB or $SBX (ninja -C $BIN_DIR)"; finish; }
KINDS=(epoll_wait epoll_ctl poll recvfrom sendto sendmsg)
EVENTS=raw_syscalls:sys_enter
for k in "${KINDS[@]}"; do EVENTS+=,syscalls:sys_enter_$k; done
if ! perf stat -x, -e "$EVENTS" -- true >/dev/null 2>&1; then
  nok "perf" "perf cannot count the syscall tracepoints here (root and tracefs are needed)"
  finish
fi

bench_workdir
start_sandbox "$SBX" || finish
"$SB" --sandbox-url "$ORIGIN" --log-level warn --listen 127.0.0.1:0 --port-file "$W/s.port" \
  --store "sqlite:$W/s.db" >"$W/s.out" 2>"$W/s.log" &
SB_PID=$!
wait_file "$W/s.port" 100 || { nok "signbridge" "no port file within 10 s: $(tail -n 3 "$W/s.log")"; finish; }
URL=http://127.0.0.1:$(cat "$W/s.port")/boldsign/mcp
PV=2025-11-25
SID=$(curl -s --max-time 10 -D - -o /dev/null "$URL" -H 'Content-Type: application/json' \
  -H 'Accept: application/json, text/event-stream' -H "X-API-Key: $KEY" \
  -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"'$PV'","capabilities":{},"clientInfo":{"name":"syscalls.sh","version":"1"}}}' |
  tr -d '\r' | awk -F': ' 'tolower($1) == "mcp-session-id" { print $2 }')
[[ -n $SID ]] || { nok "session" "initialize gave no Mcp-Session-Id"; finish; }
HDRS=(-H "X-API-Key: $KEY" -H "Mcp-Session-Id: $SID" -H "MCP-Protocol-Version: $PV")
curl -s --max-time 10 -o /dev/null "$URL" -H 'Content-Type: application/json' \
  -H 'Accept: application/json, text/event-stream' "${HDRS[@]}" \
  -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
echo '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_documents","arguments":{"page_size":10}}}' >"$W/list.json"
echo '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' >"$W/tl.json"
LUA=$HERE/lua/mcp_post.lua

measure() { # $1 name, $2 body file, $3 connections
  local name=$1 body=$2 conns=$3 threads=1
  ((conns > 1)) && threads=2
  # warm-up: connections, the lane's upstream pool, the allocator's caches
  WRK_BODY_FILE=$body WRK_UNIQUE_IDS=1 wrk -t$threads -c"$conns" -d1s -s "$LUA" "${HDRS[@]}" "$URL" >/dev/null 2>&1
  perf stat -x, -e "$EVENTS" -p "$SB_PID" -o "$W/stat.txt" 2>/dev/null &
  local pp=$!
  sleep 0.3
  WRK_BODY_FILE=$body WRK_UNIQUE_IDS=1 wrk -t$threads -c"$conns" -d"${DUR}s" --latency -s "$LUA" \
    "${HDRS[@]}" "$URL" >"$W/wrk.out" 2>&1
  sleep 0.2
  kill -INT "$pp" 2>/dev/null
  wait "$pp" 2>/dev/null
  local n p50 bad
  n=$(awk '/requests in/ { print $1 }' "$W/wrk.out")
  p50=$(awk '$1 == "50%" { print $2 }' "$W/wrk.out")
  bad=$(awk '/Non-2xx/ { print $NF }' "$W/wrk.out")
  if ! [[ $n =~ ^[0-9]+$ ]] || ((n == 0)); then nok "$name" "wrk made no requests: $(tail -n 2 "$W/wrk.out")"; return; fi
  if [[ -n $bad ]]; then nok "$name" "$bad answers were not 2xx"; return; fi
  local line
  line=$(awk -F, -v n="$n" -v kinds="${KINDS[*]}" '
    $1 ~ /^[0-9]+$/ { split($3, e, ":"); c[e[2]] = $1 }
    END {
      if (!("sys_enter" in c)) exit 1
      total = c["sys_enter"]; rest = total; out = ""
      k = split(kinds, kk, " ")
      for (i = 1; i <= k; i++) {
        v = c["sys_enter_" kk[i]]; rest -= v
        out = out sprintf("%s %.2f, ", kk[i], v / n)
      }
      printf "%.2f per request (%d requests); %sother %.2f", total / n, n, out, rest / n
    }' "$W/stat.txt") || { nok "$name" "perf counted nothing: $(head -n 3 "$W/stat.txt")"; return; }
  echo "bench syscalls: $name: ${line/ requests)/ requests, p50 $p50)}"
  ok "$name: system calls counted"
}

# The path through signbridge at 1 connection, from the kernel's syscall timestamps: the client's
# request read -> the upstream request sent, and the upstream answer read -> the reply sent (each
# call's own CPU on one thread, whatever the other processes wait for in between).
critical_path() {
  perf record -q -e raw_syscalls:sys_enter -e raw_syscalls:sys_exit -p "$SB_PID" -o "$W/path.data" \
    >/dev/null 2>&1 &
  local pp=$!
  sleep 0.3
  WRK_BODY_FILE=$W/list.json WRK_UNIQUE_IDS=1 wrk -t1 -c1 -d"${DUR}s" -s "$LUA" "${HDRS[@]}" "$URL" >/dev/null 2>&1
  sleep 0.2
  kill -INT "$pp" 2>/dev/null
  wait "$pp" 2>/dev/null
  local line
  line=$(perf script -i "$W/path.data" -F tid,time,event,trace 2>/dev/null | python3 -c '
import statistics, sys
RECV, SENDTO, SENDMSG = 45, 44, 46
pending, events = {}, []
for ln in sys.stdin:
    p = ln.replace("(", " ").replace(")", " ").replace(",", " ").split()
    if len(p) < 5 or not p[1].endswith(":"):
        continue
    tid, t, ev = p[0], float(p[1].rstrip(":")), p[2]
    nr = int(p[4])
    if ev.startswith("raw_syscalls:sys_enter"):
        pending[tid] = (nr, int(p[5], 16), t)
    elif tid in pending and pending[tid][0] == nr:
        _, fd, t0 = pending.pop(tid)
        ret = int(p[6])
        if nr == RECV and ret > 0: events.append(("recv", fd, t))
        elif nr == SENDTO: events.append(("sendto", fd, t0))
        elif nr == SENDMSG: events.append(("sendmsg", fd, t0))
up = {fd for k, fd, _ in events if k == "sendto"}
client = {fd for k, fd, _ in events if k == "sendmsg"}
front, back, req, ans = [], [], None, None
for k, fd, t in events:
    if k == "recv" and fd in client: req = t
    elif k == "recv" and fd in up: ans = t
    elif k == "sendto" and req is not None: front.append((t - req) * 1e6); req = None
    elif k == "sendmsg" and ans is not None: back.append((t - ans) * 1e6); ans = None
if not front or not back:
    sys.exit(1)
print("request read -> upstream request sent: median %.0f us; upstream answer read -> reply sent: median %.0f us (%d calls)" % (statistics.median(front), statistics.median(back), len(back)))
') || { nok "list_documents c1 path" "no calls found in the syscall trace"; return; }
  echo "bench syscalls: list_documents c1 path: $line"
  ok "list_documents c1 path: timed from the syscall trace"
}

measure "list_documents c1" "$W/list.json" 1
critical_path
measure "list_documents c50" "$W/list.json" 50
measure "tools/list c50" "$W/tl.json" 50
finish
