"""upstream-shutdown (issue 4, acceptance 7): SIGTERM with calls in flight.

1. 500 tools/call list_documents in flight (each on its own connection; the sandbox answers that
   route after 1 s; SIGTERM once the sandbox has received all 500): every call gets a response --
   a result or a clean error (a JSON-RPC result with isError, a JSON-RPC error, or an HTTP error
   with a JSON body), never a dropped connection -- and, with the default 20 s drain, every one of
   them completes with its documents; signbridge exits 0, well within the drain deadline.
2. A second signbridge with SIGNBRIDGE_LIMITS_DRAIN_TIMEOUT_S=1 and 100 calls in flight against a
   10 s latency: after the drain deadline the calls still running are stopped, each client gets a
   clean error, and signbridge exits 0 within a few seconds (not after the 10 s latency).
"""

import asyncio
import json
import signal
import time

import uptest
import sbtest  # noqa: E402

ROUTE = "GET /v1/document/list"


def classify(st, hdrs, body, res, exc):
    """'ok', 'error' (clean) or a description of what is wrong."""
    if exc:
        return "no response: %s" % exc
    if st == 200:
        if res is not None:
            return "error" if res.is_error else ("ok" if (res.structured or {}).get("documents")
                                                 else "result without documents")
        try:
            msgs = uptest.messages_of(hdrs, body)
        except ValueError:
            return "HTTP 200 with a body that is not JSON: %r" % sbtest.short(body)
        if any(isinstance(m, dict) and isinstance(m.get("error"), dict) for m in msgs):
            return "error"
        return "HTTP 200 without a JSON-RPC response: %r" % sbtest.short(body)
    if st >= 400:
        try:
            json.loads(body)
            return "error"
        except ValueError:
            return "HTTP %d without a JSON body: %r" % (st, sbtest.short(body))
    return "HTTP %d" % st


async def inflight_then_term(t, br, n, sessions_n, until_received, term_timeout):
    """Open n connections, start n calls, SIGTERM once the sandbox has received them all.
    Returns (outcomes, seconds from SIGTERM to exit, exit status)."""
    sbx = t.sbx
    key = sbx.key("boldsign", "us")
    cred = uptest.xkey(key)
    path = "/boldsign/mcp"
    conns = []
    for i in range(0, n, 100):
        chunk = [uptest.AsyncConn(br.port) for _ in range(min(100, n - i))]
        await asyncio.gather(*(c.open() for c in chunk))
        conns.extend(chunk)
    sids = [await uptest.async_session(c, path, cred) for c in conns[:sessions_n]]
    base = sbx.route_count("boldsign", "us", ROUTE)
    out = [None] * n

    async def one(i):
        try:
            st, res, b = await asyncio.wait_for(
                uptest.async_call(conns[i], path, cred, sids[i % sessions_n], 5000 + i,
                                  "list_documents", {"page_size": 2}), 60)
            out[i] = (st, {}, b, res, None)
        except Exception as e:  # noqa: BLE001
            out[i] = (0, {}, b"", None, "%s: %s" % (type(e).__name__, e))
    tasks = [asyncio.ensure_future(one(i)) for i in range(n)]
    probe = uptest.AsyncConn(br.port)  # a load balancer's kept-alive readiness connection
    await probe.open()
    deadline = time.monotonic() + until_received
    got = 0
    while time.monotonic() < deadline:
        got = sbx.route_count("boldsign", "us", ROUTE) - base
        if got >= n:
            break
        await asyncio.sleep(0.05)
    print("# %d of %d calls reached the sandbox before SIGTERM" % (got, n), flush=True)
    t_term = time.monotonic()
    br.proc.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.2)
    # readiness turns false first: while the calls are still running, /readyz answers 503
    probe.writer.write(sbtest.build_request("GET", "/readyz", [], None, port=br.port))
    await probe.writer.drain()
    try:
        rst, _, rbody = await asyncio.wait_for(probe.read_response(), 5)
    except Exception as e:  # noqa: BLE001
        rst, rbody = 0, str(e).encode()
    pending_then = sum(1 for tk in tasks if not tk.done())
    t.ready_after_term = (rst, rbody[:120], pending_then)
    probe.close()
    await asyncio.gather(*tasks)
    loop = asyncio.get_running_loop()
    rc = await loop.run_in_executor(None, lambda: br.proc.wait(term_timeout))
    took = time.monotonic() - t_term
    for c in conns:
        c.close()
    outcomes = [classify(o[0], o[1], o[2], o[3], o[4]) for o in out]
    for o, oc in zip(out, outcomes):
        if oc == "error":
            print("# e.g. an error answer: HTTP %d %s" % (o[0], sbtest.short(
                o[3].text if o[3] is not None else o[2], 300)), flush=True)
            break
    return outcomes, took, rc, got


def summarize(outcomes):
    s = {}
    for o in outcomes:
        s[o] = s.get(o, 0) + 1
    return s


def main(t):
    sbx = t.sbx

    # -- 1: 500 calls, drain long enough --------------------------------------------------------
    br = t.br
    sbx.add_fault(provider="boldsign", region="us", method="GET", route="/v1/document/list",
                  mode="latency", latency_ms=1000)
    try:
        outcomes, took, rc, got = asyncio.run(inflight_then_term(t, br, 500, 10, 20, 40))
    except Exception as e:  # noqa: BLE001
        t.checks.fail("500 calls in flight at SIGTERM", "%s: %s" % (type(e).__name__, e))
        outcomes, took, rc, got = [], 0, None, 0
    if outcomes:
        summary = summarize(outcomes)
        print("# outcomes: %s; exit %r %.2f s after SIGTERM" % (summary, rc, took), flush=True)
        if got >= 500:
            t.checks.ok("all 500 calls were in flight upstream when SIGTERM was sent")
        else:
            t.checks.fail("all 500 calls were in flight upstream when SIGTERM was sent",
                          "only %d reached the sandbox" % got)
        bad = {k: v for k, v in summary.items() if k not in ("ok", "error")}
        if bad:
            t.checks.fail("every in-flight call gets a response (a result or a clean error)", bad)
        else:
            t.checks.ok("every in-flight call gets a response (%s)" % summary)
        rst, rbody, pending_then = getattr(t, "ready_after_term", (0, b"", 0))
        if rst == 503 and b"draining" in rbody and pending_then > 0:
            t.checks.ok("readiness turns false first: /readyz 503 draining while %d calls were "
                        "still in flight" % pending_then)
        else:
            t.checks.fail("readiness turns false first (/readyz 503 while calls are in flight)",
                          "status %r body %r, calls pending then %d" % (rst, rbody, pending_then))
        if summary.get("ok", 0) == 500:
            t.checks.ok("all 500 in-flight calls completed with their documents during the drain")
        else:
            t.checks.fail("all 500 in-flight calls completed with their documents during the drain",
                          summary)
        if rc == 0:
            t.checks.ok("signbridge exits 0 after SIGTERM with 500 calls in flight (%.2f s)" % took)
        else:
            t.checks.fail("signbridge exits 0 after SIGTERM with 500 calls in flight",
                          "exit status %r" % rc)
        if took <= 15:
            t.checks.ok("exit within the drain: %.2f s after SIGTERM (latency 1 s)" % took)
        else:
            t.checks.fail("exit within the drain", "%.2f s after SIGTERM" % took)
    crash = br.crash_report()
    if crash:
        t.checks.fail("no sanitizer report from signbridge (first)", crash)
    sbx.clear_faults()

    # -- 2: drain deadline shorter than the upstream latency ------------------------------------
    br2 = uptest.Bridge(sbx, env={"SIGNBRIDGE_LIMITS_DRAIN_TIMEOUT_S": "1"})
    br2.start()
    sbx.add_fault(provider="boldsign", region="us", method="GET", route="/v1/document/list",
                  mode="latency", latency_ms=10000)
    try:
        outcomes, took, rc, got = asyncio.run(inflight_then_term(t, br2, 100, 5, 20, 40))
        summary = summarize(outcomes)
        print("# drain 1 s: outcomes %s; exit %r %.2f s after SIGTERM" % (summary, rc, took),
              flush=True)
        bad = {k: v for k, v in summary.items() if k not in ("ok", "error")}
        if got >= 100 and not bad and summary.get("error", 0) == 100:
            t.checks.ok("drain 1 s, 100 calls waiting on a 10 s upstream: each gets a clean error")
        else:
            t.checks.fail("drain 1 s, 100 calls waiting on a 10 s upstream: each gets a clean error",
                          "in flight %d; outcomes %s" % (got, summary))
        if rc == 0 and took <= 8:
            t.checks.ok("drain 1 s: signbridge exits 0, %.2f s after SIGTERM" % took)
        else:
            t.checks.fail("drain 1 s: signbridge exits 0 within a few seconds",
                          "exit %r after %.2f s" % (rc, took))
    except Exception as e:  # noqa: BLE001
        t.checks.fail("drain 1 s scenario", "%s: %s" % (type(e).__name__, e))
    finally:
        sbx.clear_faults()
        if br2.alive():
            br2.kill()
        crash = br2.crash_report()
        if crash:
            t.checks.fail("no sanitizer report from the second signbridge", crash)
        hits = uptest.find_secrets(br2.stderr_text(), uptest.secrets_of(sbx, br2))
        if hits:
            t.checks.fail("no key in the second signbridge's log", hits)
        br2._close()
        br2.tmp.cleanup()


uptest.run(main, stop_bridge=False)
