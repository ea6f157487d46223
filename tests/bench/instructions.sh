#!/usr/bin/env bash
# tests/bench/instructions.sh: signbridge's instructions per request, counted by valgrind's
# callgrind (issue 8, profile). Wall-clock figures on this 2-core VM move by +-20% from run to run
# (docs/benchmarks.md), which hides a change worth a few percent; the instruction count of the same
# requests does not move, so two builds can be compared a commit apart.
#
#   tests/bench/instructions.sh [--bin-dir DIR] [--requests N] [--top K] [--keep DIR]
#                               [--log-level LEVEL] [--smoke]
#
# DIR (default build-release) must hold signbridge and signbridge-sandbox built without
# sanitizers (valgrind cannot run an ASan binary). For each measured request -- tools/list on an
# API-key session, and tools/call list_documents (page_size 10, the call of targets 2 and 3)
# proxied to the sandbox -- a fresh signbridge starts under callgrind with instrumentation off; one
# client opens a session, sends 64 warm-up requests on one keep-alive connection, then
# instrumentation goes on (callgrind_control -i on) for N more (default 500) and off again
# (tools/list is counted three times: as it is; as target 1 asks for it, with Accept-Encoding:
# gzip, where the compressed page is kept and only spliced behind the request's id; and the same
# with signbridge's own OAuth access token instead of the API key, as Claude's and ChatGPT's
# connectors send it -- the authorization-code flow runs in the uncounted warm-up -- and with a
# provider's own access token in provider-token mode, as a provider-hosted deployment takes it,
# from the sandbox's BoldSign identity server). 64:
# signbridge checks each of a tool's first 64 results against its output schema, then one in 64
# (sb_mcp.c, sample_output), so the counted requests see the steady state's share of those checks
# (a check costs about as much as the call itself; with 50 warm-up requests, 14 more of the 500
# were checked and the figure was 2% higher). Prints
#   bench instructions: <request>: <I> per request (N requests, callgrind)
# and the K (default 8) functions with the most instructions of their own. valgrind's CPU is not
# the machine's: `rep movs`/`rep stos` (memcpy, memset of large blocks) count one instruction per
# step, and OpenSSL runs without SHA-NI, so those weigh more here than in perf; compare builds
# with this, not against wall-clock shares. --smoke: 20 requests, K 3 (the test suite runs it on
# the unsanitized build to prove the script works). Checks are "ok -" / "not ok -" lines, then a
# final "N passed, N failed". --keep DIR copies each callgrind output there (cg.tools_list,
# cg.tools_list+gzip, cg.tools_list+oauth, cg.tools_list+ptoken, cg.list_documents) for
# `callgrind_annotate --inclusive=yes`.
# --log-level (default warn, as peer.sh runs signbridge): info counts the access-log line each
# request writes at the default level, as a production server does.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN_DIR=$ROOT/build-release
N=500
TOP=8
KEEP=
LOG_LEVEL=warn
while [[ $# -gt 0 ]]; do
  case $1 in
    --bin-dir) BIN_DIR=$2; shift ;;
    --requests) N=$2; shift ;;
    --top) TOP=$2; shift ;;
    --keep) KEEP=$2; shift ;;
    --log-level) LOG_LEVEL=$2; shift ;;
    --smoke) N=20; TOP=3 ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "instructions.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
# ok/nok/finish, the scratch directory and the sandbox
. "$HERE/lib.sh"
[[ $N =~ ^[0-9]+$ && $N -ge 1 && $TOP =~ ^[0-9]+$ ]] || { nok "options" "--requests and --top take whole numbers (requests >= 1)"; finish; }
[[ $LOG_LEVEL =~ ^(debug|info|warn|error|off)$ ]] || { nok "options" "--log-level takes debug, info, warn, error or off"; finish; }
for t in valgrind callgrind_control callgrind_annotate python3 curl; do
  command -v "$t" >/dev/null || { nok "tools" "$t is not installed (scripts/setup-deps installs valgrind)"; finish; }
done
SB=$BIN_DIR/signbridge SBX=$BIN_DIR/signbridge-sandbox
[[ -x $SB && -x $SBX ]] || { nok "binaries" "no $SB or $SBX (ninja -C $BIN_DIR)"; finish; }
if ldd "$SB" 2>/dev/null | grep -q 'libasan'; then nok "binaries" "$SB is built with ASan: valgrind cannot run it"; finish; fi

bench_workdir
# auto-approve: the sandbox's identity server issues the provider token of tools/list+ptoken
start_sandbox "$SBX" --oauth-auto-approve || finish
echo '{"oauth": {"provider_tokens": {"enabled": true}}}' >"$W/ptoken.json"

# The client: one keep-alive connection; argv: port key warm-up count method. Every answer must be
# a 200 JSON-RPC result (not isError), or it exits 1 naming the first bad one.
cat >"$W/client.py" <<'PY'
import gzip, http.client, json, os, sys
port, key, n, method = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
     "X-API-Key": key}
if method.endswith("+oauth"):
    # signbridge's own access token for the key, as a connector holds it: the flow runs in the
    # warm-up (uncounted), and the measured run reads the token it left
    tf = os.path.join(os.environ["W"], "oauth.token")
    if not os.path.exists(tf):
        sys.path.insert(0, os.path.join(os.environ["ROOT"], "tests", "auth"))
        import oauthlib_sb
        j = oauthlib_sb.obtain_tokens(port, key, route="/boldsign/mcp")
        with open(tf, "w") as f:
            f.write(j["access_token"])
    h.pop("X-API-Key")
    h["Authorization"] = "Bearer " + open(tf).read()
elif method.endswith("+ptoken"):
    # a BoldSign access token from the sandbox's US identity server (provider-token mode)
    tf = os.path.join(os.environ["W"], "ptoken.token")
    if not os.path.exists(tf):
        sys.path.insert(0, os.path.join(os.environ["ROOT"], "tests", "auth"))
        import ptoken
        with open(tf, "w") as f:
            f.write(ptoken.provider_token(int(os.environ["SBX_PORT"]), "us"))
    h.pop("X-API-Key")
    h["Authorization"] = "Bearer " + open(tf).read()
def post(body):
    c.request("POST", "/boldsign/mcp", json.dumps(body), h)
    r = c.getresponse()
    data = r.read()
    return r, data
r, _ = post({"jsonrpc": "2.0", "id": 1, "method": "initialize",
             "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                        "clientInfo": {"name": "instructions.sh", "version": "1"}}})
sid = r.getheader("Mcp-Session-Id")
if r.status != 200 or not sid:
    sys.exit(f"initialize answered {r.status} without a session")
h.update({"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"})
post({"jsonrpc": "2.0", "method": "notifications/initialized"})
if method.startswith("tools/list"):
    req = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    if method != "tools/list":  # as target 1 asks for it
        h["Accept-Encoding"] = "gzip, deflate"
else:
    req = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
           "params": {"name": "list_documents", "arguments": {"page_size": 10}}}
for i in range(n):
    r, data = post(req)
    if "Accept-Encoding" in h:
        if r.getheader("Content-Encoding") != "gzip":
            sys.exit(f"request {i}: no gzip answer to Accept-Encoding: gzip")
        data = gzip.decompress(data)
    doc = json.loads(data) if r.status == 200 else {}
    res = doc.get("result")
    if not isinstance(res, dict) or res.get("isError"):
        sys.exit(f"request {i}: HTTP {r.status}: {data[:200]!r}")
PY

measure() { # $1 request name (tools/list | list_documents)
  local name=$1 out=$W/cg.${1//\//_} cfg=()
  [[ $name == *+ptoken ]] && cfg=(--config "$W/ptoken.json")
  rm -f "$W/s.port"
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
    "$SB" "${cfg[@]}" --sandbox-url "$ORIGIN" --log-level "$LOG_LEVEL" --listen 127.0.0.1:0 --port-file "$W/s.port" \
    --store "sqlite:$W/s-${name//\//_}.db" >"$W/s.out" 2>"$W/s.log" &
  SB_PID=$!
  if ! wait_file "$W/s.port" 600; then
    nok "$name" "signbridge under valgrind wrote no port file within 60 s: $(tail -n 3 "$W/s.log")"
    return
  fi
  local port
  port=$(cat "$W/s.port")
  if ! W=$W ROOT=$ROOT SBX_PORT=${ORIGIN##*:} python3 "$W/client.py" "$port" "$KEY" 64 "$name" 2>"$W/c.err"; then
    nok "$name" "warm-up: $(tail -n 1 "$W/c.err")"
    return
  fi
  callgrind_control -i on "$SB_PID" >/dev/null 2>&1
  local rc=0
  W=$W ROOT=$ROOT SBX_PORT=${ORIGIN##*:} python3 "$W/client.py" "$port" "$KEY" "$N" "$name" 2>"$W/c.err" || rc=$?
  callgrind_control -i off "$SB_PID" >/dev/null 2>&1
  kill "$SB_PID"
  wait "$SB_PID" 2>/dev/null
  SB_PID=
  if ((rc)); then nok "$name" "measured requests: $(tail -n 1 "$W/c.err")"; return; fi
  local total
  total=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }')
  if ! [[ $total =~ ^[0-9]+$ ]] || ((total == 0)); then
    nok "$name" "callgrind counted nothing (${total:-no total})"
    return
  fi
  # N requests plus the session's initialize and notification, which are cheap beside them: per
  # request over N + 2
  echo "bench instructions: $name: $((total / (N + 2))) per request ($N requests, callgrind)"
  [[ -n $KEEP ]] && mkdir -p "$KEEP" && cp "$out" "$KEEP/"
  callgrind_annotate "$out" 2>/dev/null | awk -v top="$TOP" -v tot="$total" '
    /^-+$/ { sep++; next }
    sep == 6 && NF >= 2 && k < top {
      n = $1; gsub(",", "", n)
      f = $0; sub(/^ *[0-9,]+ *\([ 0-9.%]*\) */, "", f)
      obj = ""; if (match(f, / \[[^]]*\]$/)) { obj = substr(f, RSTART + 2, RLENGTH - 3); sub(/^.*\//, "", obj) }
      sub(/ \[.*$/, "", f); sub(/^.*:/, "", f)
      printf "bench instructions:   %5.1f%%  %s (%s)\n", 100 * n / tot, f, obj; k++
    }'
  ok "$name: counted $N requests under callgrind"
}

measure tools/list
measure tools/list+gzip
measure tools/list+oauth
measure tools/list+ptoken
measure list_documents
finish
