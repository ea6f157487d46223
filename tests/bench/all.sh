#!/usr/bin/env bash
# tests/bench/all.sh: every issue-8 benchmark in one command, on a release build, and the tables
# for docs/benchmarks.md:
#   tests/bench/peer.sh                      targets 1, 2, 3 and 5 (start-up, idle RSS), side by
#                                            side with the TypeScript-SDK peer
#   build-release/tests/bench_jwt_verify     target 5 (token verification with a cached key)
#   tests/bench/mapping.sh                   the profile's mapping phases, per provider
#   tests/bench/concurrency.sh --calls N     targets 4 and 6 at N = 100, 1,000, 10,000; with nginx
#                                            installed, each also through nginx as a plain proxy
#                                            (--proxy-floor nginx: the floor of any proxy here)
# Each script prints its own figures and checks; this one prints them all, then a growth table.
# Options: --bin-dir DIR (default build-release, set up and built when missing), --lean (the lean
# build that ships, docs/deployment.md: scripts/lean-deps, then build-lean/), --duration 10s
# (wrk runs of peer.sh), --calls "100 1000 10000", --helpers-batch (passed to peer.sh and
# concurrency.sh: the sandbox and the load generators as SCHED_BATCH). Exits non-zero when a
# script could not run; targets that are not met are reported by the scripts' own "not ok" lines,
# not by the exit code.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/tests/bench
BIN_DIR=$ROOT/build-release
DURATION=10s
CALLS="100 1000 10000"
HB=()
while (($#)); do
  case $1 in
    --bin-dir) BIN_DIR=$2; shift ;;
    --lean) BIN_DIR=$ROOT/build-lean
            "$ROOT/scripts/lean-deps" "$ROOT/build-deps/lean" || exit 1
            [[ -d $BIN_DIR/meson-private ]] || meson setup "$BIN_DIR" "$ROOT" --buildtype=release \
              -Dlean_deps="$ROOT/build-deps/lean" >/dev/null || exit 1 ;;
    --duration) DURATION=$2; shift ;;
    --calls) CALLS=$2; shift ;;
    --helpers-batch) HB=(--helpers-batch) ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "all.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

if [[ ! -x $BIN_DIR/signbridge ]]; then
  [[ -d $BIN_DIR ]] || meson setup "$BIN_DIR" "$ROOT" --buildtype=release >/dev/null || exit 1
fi
BIN_DIR=$(cd "$BIN_DIR" && pwd) || exit 1
ninja -C "$BIN_DIR" signbridge signbridge-sandbox tests/bench_jwt_verify tests/bench_conc_client \
  tests/bench_mhd_floor tests/bench_pingpong tests/bench_mapping >/dev/null || { echo "all.sh: release build failed" >&2; exit 1; }

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)${HB[*]:+, ${HB[*]}}"
rc=0
echo "## peer.sh"
"$HERE/peer.sh" --bin-dir "$BIN_DIR" --duration "$DURATION" "${HB[@]}" || true
echo "## bench_jwt_verify"
"$BIN_DIR/tests/bench_jwt_verify" || rc=1
echo "## mapping.sh"
"$HERE/mapping.sh" --bin-dir "$BIN_DIR" || rc=1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
FLOOR=()
if [[ -x ${NGINX_BIN:-/usr/sbin/nginx} ]] || command -v nginx >/dev/null; then FLOOR=(--proxy-floor nginx); fi
for n in $CALLS; do
  echo "## concurrency.sh --calls $n ${FLOOR[*]}"
  "$HERE/concurrency.sh" --calls "$n" --page-size 1 --bin-dir "$BIN_DIR" --settle-time-wait 75 \
    "${FLOOR[@]}" "${HB[@]}" | tee "$TMP/c$n" || true
  grep -q "^bench concurrency:" "$TMP/c$n" || rc=1
done

echo "## growth (targets 4 and 6)"
echo "| calls | ok | wall | p50 | p99 | sandbox alone | nginx as the proxy: p50, p99 | peak RSS (before) | RSS per call | threads |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for n in $CALLS; do
  python3 - "$TMP/c$n" "$n" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
n = int(sys.argv[2])
def g(p, d="?"):
    m = re.search(p, t)
    return m.groups() if m else None
c = g(r"succeeded (\d+), failed \d+, wall ([\d.]+) s")
l = g(r"bench latency: p50 ([\d.]+) s, p90 [\d.]+ s, p99 ([\d.]+) s")
b = g(r"straight to the sandbox\): wall ([\d.]+) s")
m = g(r"VmHWM before ([\d.]+) MiB, peak ([\d.]+) MiB")
th = g(r"under load min \d+ max (\d+)")
f = g(r"bench proxy floor .*?: wall [\d.]+ s, \d+ ok, p50 ([\d.]+) s, p99 ([\d.]+) s")
per = "%.0f KB" % ((float(m[1]) - float(m[0])) * 1024 / n) if m else "?"
print("| %d | %s | %s s | %s s | %s s | %s s | %s | %s MiB (%s) | %s | %s |" % (
    n, c[0] if c else "?", c[1] if c else "?", l[0] if l else "?", l[1] if l else "?",
    b[0] if b else "?", "%s s, %s s" % f if f else "-", m[1] if m else "?", m[0] if m else "?",
    per, th[0] if th else "?"))
PY
done
exit $rc
