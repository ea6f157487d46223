#!/usr/bin/env bash
# tests/bench/concurrency.sh: 2,000 concurrent MCP tools/call list_documents through signbridge,
# each on its own HTTP connection, against a sandbox answering that route after 1 s (issue 4).
#
#   tests/bench/concurrency.sh           full run on a release build (build-release/, set up with
#                                        `meson setup build-release --buildtype=release` if
#                                        missing): exits 1 unless all 2,000 calls succeed within
#                                        2.5 s wall and signbridge's thread count stays within +-2
#                                        of its idle value
#   tests/bench/concurrency.sh --smoke   200 calls, no thresholds (the test suite runs this against
#                                        SIGNBRIDGE_BIN / SANDBOX_BIN to prove the script works)
#
# Options: --calls N (default 2000; 200 with --smoke), --latency-ms 1000, --max-wall 2.5,
#          --thread-slack 2, --sessions 20, --page-size 20,
#          --bin-dir DIR (use DIR/signbridge and DIR/signbridge-sandbox instead of building),
#          --client c|python (the load client; default c when bench_conc_client is built: the
#          C one of tests/bench/conc_client.c, found as <bin dir>/tests/bench_conc_client; python:
#          the asyncio client of concurrency.py, which needs ~5 s of its own for 10,000 calls),
#          --upstream-front none|nginx (default none: signbridge talks plain HTTP/1.1 to the
#          sandbox, one upstream connection per call in flight; nginx: an nginx (NGINX_BIN, default
#          /usr/sbin/nginx) in a temp dir terminates TLS + HTTP/2 on 127.0.0.1 with a throwaway CA
#          (tests/sandbox/make-test-ca.sh) and proxies to the sandbox over HTTP/1.1 keep-alive, as
#          real providers answer: signbridge gets --sandbox-url https://127.0.0.1:PORT and
#          SIGNBRIDGE_UPSTREAM_CA_FILE, and libcurl multiplexes the calls on a few connections),
#          --h2-streams N (the front's http2_max_concurrent_streams, default 256),
#          --proxy-floor none|nginx (default none; nginx: after the baseline, the same calls
#          through nginx (NGINX_BIN) as a plain HTTP/1.1 reverse proxy of the sandbox, one worker
#          per core and one upstream connection per call in flight, as signbridge: the latency
#          any proxy reaches on this machine, printed as "bench proxy floor:"; C client only),
#          --max-host-connections N (SIGNBRIDGE_UPSTREAM_MAX_HOST_CONNECTIONS, per lane; default
#          max(8192, calls + 256) straight to the sandbox, one HTTP/1.1 connection per call in
#          flight; through the nginx front, signbridge's own default, 64),
#          --settle-time-wait S (wait up to S s for the machine's TIME_WAIT sockets, left by
#          earlier runs, to drop under 1,000 first: with tens of thousands of them connect() was
#          39% of signbridge's CPU at 10,000 calls, against 5% on a settled machine; default 0,
#          the count is printed either way),
#          --sb-env NAME=VALUE (repeatable: signbridge's environment, e.g.
#          SIGNBRIDGE_LIMITS_MAX_HEADER_BYTES=8192; the test harness passes no other SIGNBRIDGE_*
#          variable through, and MALLOC_CONF from the caller's environment),
#          --helpers-batch (the sandbox and the load client run as SCHED_BATCH: they no longer
#          preempt the proxy measured when they wake, as an upstream and a load generator on
#          machines of their own never do; signbridge and nginx, the proxy floor, run as they are).
# Env: SIGNBRIDGE_BIN and SANDBOX_BIN (both set: used instead of building, e.g. by the test suite);
#      CONC_CLIENT_BIN (the C load client, instead of the one next to the binaries);
#      NGINX_BIN (the nginx of --upstream-front nginx).
#
# Prints plain lines of figures, e.g.
#   bench tcp: 12 sockets in TIME_WAIT at the start (...)
#   bench concurrency: calls 2000, succeeded 2000, failed 0, wall 1.412 s, upstream latency 1000 ms
#   bench client send: first 0.015 s, median 0.043 s, last 0.059 s after t0
#   bench latency: p50 1.21 s, p90 1.35 s, p99 1.39 s, max 1.41 s   (from each call's write)
#   bench latency from send: p50 ...   (from the end of each call's write)
#   bench latency from t0: p50 ...     (from t0, when every call is released)
#   bench cpu during the timed phase (user+system): signbridge 2.1+0.8 s, sandbox ..., client ...
#   bench cpu timeline (cores busy from each instant on, s after t0: signbridge/sandbox/client): 0.00:1.4/0.1/0.2 0.26:1.3/0.7/0.0 ...
#   bench threads: idle 5, under load min 5 max 5 (27 samples)
#   bench memory: VmHWM before 20.8 MiB, peak 140.2 MiB; fds idle 2015, peak 4014
#   bench upstream connections: signbridge->sandbox idle 20, peak 2000 (sampled every 0.5 s)
#     or, with --upstream-front nginx, instead of that line:
#     bench upstream front: nginx 1.22.1 TLS+h2 (...) on port N; signbridge->front connections
#       idle K0, peak K; front->sandbox connections peak M (sampled every 0.5 s)
#     bench front accepted A connections and served R requests during the timed phase (...)
#     bench front nginx worker: cpu during the timed phase U+S s; VmHWM X MiB
#   bench sandbox: 2020 list requests received in total (20 warm-up)
#   bench upstream arrival: first 0.02 s, median 0.50 s, last 0.62 s after the first send
#   bench proxy floor (...through nginx ... proxy_pass...): wall, ok, p50, p99, cpu (--proxy-floor)
# then "ok - ..." / "not ok - ..." checks and a final "N passed, N failed".
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/tests/bench
SMOKE=0
CALLS=
BIN_DIR=
CLIENT=
FRONT=none
FLOOR=none
PASS_ARGS=()
while (($#)); do
  case $1 in
    --smoke) SMOKE=1 ;;
    --calls) CALLS=$2; shift ;;
    --bin-dir) BIN_DIR=$2; shift ;;
    --client) CLIENT=$2; shift ;;
    --upstream-front) FRONT=$2; shift ;;
    --proxy-floor) FLOOR=$2; shift ;;
    --helpers-batch) PASS_ARGS+=("$1") ;;
    --h2-streams|--max-host-connections|--sb-env) PASS_ARGS+=("$1" "$2"); shift ;;
    --latency-ms|--max-wall|--thread-slack|--sessions|--page-size|--settle-time-wait) PASS_ARGS+=("$1" "$2"); shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "concurrency.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[[ -z $CALLS ]] && { ((SMOKE)) && CALLS=200 || CALLS=2000; }

nok() { echo "not ok - $1: $2"; echo "0 passed, 1 failed"; exit 1; }

command -v python3 >/dev/null || nok "python3 installed" "not on PATH"

if [[ -n $BIN_DIR ]]; then
  # absolute: the Python harness starts the binaries from temporary directories
  ABS=$(cd "$BIN_DIR" 2>/dev/null && pwd) || nok "--bin-dir" "no directory $BIN_DIR"
  BIN_DIR=$ABS
  SB=$BIN_DIR/signbridge
  SBX=$BIN_DIR/signbridge-sandbox
elif [[ -n ${SIGNBRIDGE_BIN:-} && -n ${SANDBOX_BIN:-} ]]; then
  SB=$SIGNBRIDGE_BIN
  SBX=$SANDBOX_BIN
else
  # A release build: optimised, no sanitizers.
  if [[ ! -d $ROOT/build-release/meson-private ]]; then
    meson setup "$ROOT/build-release" "$ROOT" --buildtype=release >/dev/null ||
      nok "release build configured" "meson setup build-release failed"
  fi
  ninja -C "$ROOT/build-release" signbridge signbridge-sandbox tests/bench_conc_client >/dev/null ||
    nok "release build" "ninja -C build-release signbridge signbridge-sandbox tests/bench_conc_client failed"
  SB=$ROOT/build-release/signbridge
  SBX=$ROOT/build-release/signbridge-sandbox
fi
[[ -x $SB ]] || nok "signbridge binary" "$SB is not executable"
[[ -x $SBX ]] || nok "sandbox binary" "$SBX is not executable"
# The C load client: built next to signbridge (meson puts tests' executables in <build>/tests/).
CONC_CLIENT=${CONC_CLIENT_BIN:-$(dirname "$SB")/tests/bench_conc_client}
case $CLIENT in
  '') ;;
  c) [[ -x $CONC_CLIENT ]] || nok "C load client" "$CONC_CLIENT is not executable (ninja -C <build> tests/bench_conc_client)" ;;
  python) ;;
  *) echo "concurrency.sh: --client must be c or python" >&2; exit 2 ;;
esac

# NGINX: NGINX_BIN, /usr/sbin/nginx or the one on PATH ($1: the option that needs it)
find_nginx() {
  NGINX=${NGINX_BIN:-/usr/sbin/nginx}
  [[ -x $NGINX ]] || NGINX=$(command -v nginx || true)
  [[ -n $NGINX && -x $NGINX ]] || nok "nginx for $1" "no ${NGINX_BIN:-/usr/sbin/nginx} and none on PATH"
}
case $FRONT in
  none) ;;
  nginx)
    find_nginx "--upstream-front nginx"
    command -v openssl >/dev/null || nok "openssl for --upstream-front nginx" "not on PATH"
    PASS_ARGS+=(--upstream-front nginx --nginx "$NGINX") ;;
  *) echo "concurrency.sh: --upstream-front must be none or nginx" >&2; exit 2 ;;
esac
case $FLOOR in
  none) ;;
  nginx)
    find_nginx "--proxy-floor nginx"
    [[ $FRONT == nginx ]] || PASS_ARGS+=(--nginx "$NGINX")
    PASS_ARGS+=(--proxy-floor nginx) ;;
  *) echo "concurrency.sh: --proxy-floor must be none or nginx" >&2; exit 2 ;;
esac

# 2,000 client connections + signbridge's inbound and upstream sockets + the sandbox's.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

ARGS=(--signbridge "$SB" --sandbox "$SBX" --calls "$CALLS" --client-bin "$CONC_CLIENT" "${PASS_ARGS[@]}")
[[ -n $CLIENT ]] && ARGS+=(--client "$CLIENT")
((SMOKE)) && ARGS+=(--smoke)
exec python3 "$HERE/concurrency.py" "${ARGS[@]}"
