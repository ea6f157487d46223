"""Concurrency benchmark of signbridge (issue 4): N concurrent MCP tools/call list_documents,
each on its own HTTP connection, through signbridge to a sandbox answering that route after 1 s.

Run by tests/bench/concurrency.sh (which picks the binaries); usage:
    python3 concurrency.py --signbridge BIN --sandbox BIN [--calls 2000] [--latency-ms 1000]
                           [--max-wall 2.5] [--thread-slack 2] [--smoke]

Setup (untimed): sandbox (--no-rate-limits) + signbridge on port 0; a latency fault of
--latency-ms on BoldSign's GET /v1/document/list; N connections opened to signbridge and kept
alive; a few MCP sessions initialized (one per --sessions, shared round-robin by the connections:
a session carries many concurrent calls); each call's request bytes built in advance.
Timed: every connection sends its tools/call at once; the wall time runs from the first send to
the last complete response.  Meanwhile /proc/PID/status of signbridge is sampled (Threads, VmHWM).
Prints plain lines of figures, "ok - ..."/"not ok - ..." checks and "N passed, N failed"; exits 1
unless every call succeeded and (without --smoke) the wall time is within --max-wall and the thread
count stayed within --thread-slack of its idle value.
"""

import argparse
import asyncio
import calendar
import json
import os
import re
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "upstream"))

import uptest  # noqa: E402
import sbtest  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--signbridge", required=True)
    p.add_argument("--sandbox", required=True)
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--sessions", type=int, default=20)
    p.add_argument("--latency-ms", type=int, default=1000)
    p.add_argument("--max-wall", type=float, default=2.5)
    p.add_argument("--thread-slack", type=int, default=2)
    # 1 by default: the figure is about holding 2,000 calls in flight; with 20 documents per page
    # the load generator and the sandbox alone need ~2.9 s on 2 cores (see the baseline line)
    p.add_argument("--page-size", type=int, default=1)
    p.add_argument("--smoke", action="store_true")
    return p.parse_args()


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, need))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals))) - 1))
    return sorted_vals[i]


SENT = {}  # call index -> when its request was fully written
CLK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    """(user, system) CPU seconds of a process (all its threads)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) / float(CLK), int(fields[12]) / float(CLK))


def iso_ms(ts):
    """Milliseconds since the epoch of the sandbox log's "2026-11-22T09:16:49.348Z"."""
    m = re.match(r"(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)(?:\.(\d+))?Z", ts)
    if not m:
        return float("nan")
    y, mo, d, h, mi, se = (int(x) for x in m.groups()[:6])
    frac = float("0." + m.group(7)) if m.group(7) else 0.0
    return (calendar.timegm((y, mo, d, h, mi, se)) + frac) * 1000.0


async def open_all(port, n, batch=100):
    conns = []
    for i in range(0, n, batch):
        chunk = [uptest.AsyncConn(port) for _ in range(min(batch, n - i))]
        await asyncio.gather(*(c.open() for c in chunk))
        conns.extend(chunk)
    return conns


async def timed_call(conn, payload, out, idx):
    t = time.monotonic()
    try:
        conn.writer.write(payload)
        await conn.writer.drain()
        SENT[idx] = time.monotonic()
        st, h, b = await conn.read_response()
        out[idx] = (st, h, b, time.monotonic() - t, None)
    except Exception as e:  # noqa: BLE001
        out[idx] = (0, {}, b"", time.monotonic() - t, "%s: %s" % (type(e).__name__, e))


async def sampler(br, stop, acc):
    """Threads every 50 ms; descriptors every 500 ms (listing thousands of /proc/PID/fd entries
    costs the client real CPU, which it shares with signbridge)."""
    k = 0
    while not stop.is_set():
        try:
            acc["threads"].append(br.threads())
            if k % 10 == 0:
                acc["fds"].append(br.fd_count())
        except (OSError, ValueError, TypeError):
            pass
        k += 1
        try:
            await asyncio.wait_for(stop.wait(), 0.05)
        except asyncio.TimeoutError:
            pass


async def bench(args, checks, sbx, br):
    key = sbx.key("boldsign", "us")
    cred = uptest.xkey(key)
    path = "/boldsign/mcp"
    n = args.calls
    nofile = raise_nofile(n + 256)
    if nofile < n + 64:
        checks.fail("enough file descriptors for %d connections" % n, "RLIMIT_NOFILE is %d" % nofile)
        return

    # -- setup (untimed) --
    t = time.monotonic()
    conns = await open_all(br.port, n)
    nsess = max(1, min(args.sessions, n))
    sids = []
    for c in conns[:nsess]:
        sids.append(await uptest.async_session(c, path, cred))
    # one warm-up call per session (region cached, upstream pool primed), before the fault
    for i, c in enumerate(conns[:nsess]):
        st, res, b = await uptest.async_call(c, path, cred, sids[i], 1, "list_documents",
                                             {"page_size": args.page_size})
        assert st == 200 and res is not None and not res.is_error, \
            "warm-up call failed: HTTP %d %s" % (st, sbtest.short(b))
    print("# setup: %d connections open, %d sessions, %.2fs" % (n, nsess, time.monotonic() - t),
          flush=True)
    sbx.add_fault(provider="boldsign", region="us", method="GET", route="/v1/document/list",
                  mode="latency", latency_ms=args.latency_ms)
    payloads = []
    for i in range(n):
        body = json.dumps({"jsonrpc": "2.0", "id": 1000 + i, "method": "tools/call",
                           "params": {"name": "list_documents",
                                      "arguments": {"page_size": args.page_size}}}).encode()
        hdrs = sbtest.mcp_headers(session=sids[i % nsess], version=uptest.PROTO, extra=cred)
        payloads.append(sbtest.build_request("POST", path, hdrs, body, port=br.port))
    await asyncio.sleep(0.3)
    idle_threads = br.threads()
    idle_fds = br.fd_count()
    rss_before = br.vm_hwm_kb()

    # -- timed --
    stop = asyncio.Event()
    acc = {"threads": [], "fds": []}
    samp = asyncio.ensure_future(sampler(br, stop, acc))
    out = [None] * n
    seq0 = sbx.last_seq()
    cpu0 = (cpu_s(br.pid), cpu_s(sbx.proc.pid), cpu_s(os.getpid()))
    wall0 = time.time()
    t0 = time.monotonic()
    await asyncio.gather(*(timed_call(conns[i], payloads[i], out, i) for i in range(n)))
    wall = time.monotonic() - t0
    stop.set()
    await samp
    peak_rss = br.vm_hwm_kb()
    cpu1 = (cpu_s(br.pid), cpu_s(sbx.proc.pid), cpu_s(os.getpid()))
    for c in conns:
        c.close()

    # -- baseline: the same calls straight to the sandbox (same latency, same page size), so the
    # figure above can be read against what the load generator and the fake upstream cost alone
    base = None
    try:
        direct = await open_all(sbx.port, n)
        req = ("GET /boldsign/us/v1/document/list?Page=1&PageSize=%d HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "X-API-KEY: %s\r\n\r\n" % (args.page_size, key)).encode()
        bout = [None] * n
        tb = time.monotonic()
        await asyncio.gather(*(timed_call(direct[i], req, bout, i) for i in range(n)))
        base = time.monotonic() - tb
        bok = sum(1 for x in bout if x and x[0] == 200)
        for c in direct:
            c.close()
        print("bench baseline (the same %d calls straight to the sandbox): wall %.3f s, %d ok; "
              "signbridge adds %.3f s" % (n, base, bok, wall - base), flush=True)
    except Exception as e:  # noqa: BLE001
        print("# baseline not measured: %s" % e, flush=True)

    # -- results (parsed after the clock stopped) --
    okn, errors = 0, {}
    lat = []
    for i, (st, h, b, dt, exc) in enumerate(out):
        lat.append(dt)
        why = exc
        if why is None:
            if st != 200:
                why = "HTTP %d" % st
            else:
                try:
                    msgs = uptest.messages_of(h, b)
                    res = next((uptest.tool_result_of(m) for m in msgs
                                if isinstance(m, dict) and m.get("id") == 1000 + i), None)
                except ValueError:
                    res = None
                if res is None:
                    why = "no JSON-RPC result"
                elif res.is_error:
                    why = "isError: " + res.text[:100]
                elif not (res.structured or {}).get("documents"):
                    why = "no documents in the result"
        if why is None:
            okn += 1
        else:
            errors[why] = errors.get(why, 0) + 1
    lat.sort()
    thr = acc["threads"] or [idle_threads]
    fds = acc["fds"] or [idle_fds]
    upstream = sbx.route_count("boldsign", "us", "GET /v1/document/list")
    arrivals = sorted(iso_ms(r.get("time", "")) - wall0 * 1000.0 for r in sbx.requests(since=seq0)
                      if r.get("path") == "/v1/document/list")
    print("bench concurrency: calls %d, succeeded %d, failed %d, wall %.3f s, upstream latency %d ms"
          % (n, okn, n - okn, wall, args.latency_ms))
    sent = sorted(v - t0 for v in SENT.values())
    if sent:
        print("bench client send: first %.3f s, median %.3f s, last %.3f s after t0"
              % (sent[0], pct(sent, 50), sent[-1]))
    print("bench latency: p50 %.3f s, p90 %.3f s, p99 %.3f s, max %.3f s"
          % (pct(lat, 50), pct(lat, 90), pct(lat, 99), lat[-1]))
    d = [(a[0] - b[0], a[1] - b[1]) for a, b in zip(cpu1, cpu0)]
    print("bench cpu during the timed phase (user+system): signbridge %.2f+%.2f s, sandbox %.2f+%.2f s, "
          "client %.2f+%.2f s; response bodies %.1f MiB (mean %.1f KiB)"
          % (d[0][0], d[0][1], d[1][0], d[1][1], d[2][0], d[2][1],
             sum(len(o[2]) for o in out) / 1048576.0, sum(len(o[2]) for o in out) / 1024.0 / n))
    print("bench threads: idle %d, under load min %d max %d (%d samples)"
          % (idle_threads, min(thr), max(thr), len(thr)))
    print("bench memory: VmHWM before %.1f MiB, peak %.1f MiB; fds idle %d, peak %d"
          % (rss_before / 1024.0, peak_rss / 1024.0, idle_fds, max(fds)))
    print("bench sandbox: %d list requests received in total (%d warm-up)" % (upstream, nsess))
    if arrivals:
        print("bench upstream arrival: first %.3f s, median %.3f s, last %.3f s after the first send"
              % (arrivals[0] / 1000.0, pct(arrivals, 50) / 1000.0, arrivals[-1] / 1000.0))
    if errors:
        print("# failures: " + "; ".join("%d x %s" % (v, k) for k, v in
                                         sorted(errors.items(), key=lambda kv: -kv[1])[:8]))

    if okn == n:
        checks.ok("all %d calls succeeded" % n)
    else:
        checks.fail("all %d calls succeeded" % n, "%d failed: %s" % (n - okn, errors))
    if upstream >= n + nsess:
        checks.ok("every call reached the sandbox (%d list requests)" % upstream)
    else:
        checks.fail("every call reached the sandbox", "%d list requests for %d calls + %d warm-up"
                    % (upstream, n, nsess))
    in_band = max(thr) <= idle_threads + args.thread_slack and min(thr) >= idle_threads - args.thread_slack
    if args.smoke:
        checks.ok("smoke: wall %.3f s, threads %d..%d vs idle %d (no thresholds)"
                  % (wall, min(thr), max(thr), idle_threads))
    else:
        if wall <= args.max_wall:
            checks.ok("wall %.3f s <= %.1f s" % (wall, args.max_wall))
        else:
            checks.fail("wall <= %.1f s" % args.max_wall, "measured %.3f s" % wall)
        if in_band:
            checks.ok("threads stay within +-%d of idle %d (%d..%d)"
                      % (args.thread_slack, idle_threads, min(thr), max(thr)))
        else:
            checks.fail("threads stay within +-%d of idle %d" % (args.thread_slack, idle_threads),
                        "under load %d..%d" % (min(thr), max(thr)))


def main():
    args = parse_args()
    sbtest.BIN = args.signbridge
    uptest.SANDBOX_BIN = args.sandbox
    checks = sbtest.Checks()
    sbx = uptest.Sandbox(["--no-rate-limits"])
    br = None
    try:
        sbx.start()
        br = uptest.Bridge(sbx, env={"SIGNBRIDGE_LOG_LEVEL": "info"})
        br.start()
    except Exception as e:  # noqa: BLE001
        checks.fail("sandbox and signbridge start", e)
        if br is not None:
            br.kill()
        sbx.kill()
        return checks.finish()
    print("# signbridge %s pid %d port %d; sandbox pid %d port %d; %d calls%s"
          % (args.signbridge, br.pid, br.port, sbx.proc.pid, sbx.port, args.calls,
             " (smoke)" if args.smoke else ""), flush=True)
    try:
        asyncio.run(bench(args, checks, sbx, br))
    except Exception as e:  # noqa: BLE001
        import traceback
        checks.fail("benchmark ran", "%s: %s | %s" % (type(e).__name__, e, traceback.format_exc()[-800:]))
    finally:
        uptest.stop_checked(checks, br, "signbridge")
        uptest.stop_checked(checks, sbx, "the sandbox")
        br.tmp.cleanup()
        sbx.tmp.cleanup()
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
