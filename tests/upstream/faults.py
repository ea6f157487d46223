"""upstream-faults (issue 4, acceptance 4): every sandbox fault mode becomes its documented tool
error, within the deadline, and signbridge keeps serving without leaking descriptors.

signbridge runs with SIGNBRIDGE_UPSTREAM_TIMEOUT_MS=2000 (the deadline of every call) and
SIGNBRIDGE_UPSTREAM_MAX_RESPONSE_BYTES=1048576.  For each provider (BoldSign, Dropbox Sign, iinked
Sign -- in parallel, each with fault rules scoped to its own list route), list_documents under:

  error 503          isError, "<Provider> failed (503) ... try again"
  error 500          isError, "<Provider> failed (500) ... try again"
  rate_limit (30 s)  isError, "<Provider> rate limit ... Retry after 30 s"
  reset              isError, "connection to <Provider> (<region>) failed ... Try again"
  truncate           isError, "connection to <Provider> (<region>) failed ... Try again"
  malformed          isError, "<Provider> returned a malformed response ... Try again"
  drip (fast enough) success, slower than without drip
  drip (too slow)    isError, "<Provider> (<region>) did not answer within 2 s", after ~2 s
  oversize (2 MiB)   isError, "<Provider>'s answer was too large ... Ask for less"
  hang               isError, "<Provider> (<region>) did not answer within 2 s", after ~2 s

each answered within the deadline (2 s, plus generous slack for a loaded machine); then normal
calls succeed again and /healthz answers.  Finally 1,000 faulted calls (error 500, reset,
truncate, malformed, oversize; 200 each, 8 at a time, each on a new connection): all get their tool
error, and signbridge's open descriptors (/proc/PID/fd) return to their count before them.
"""

import itertools
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import uptest  # first: puts tests/integration on sys.path
import sbtest  # noqa: E402

DEADLINE_S = 2.0
SLACK_S = 2.5          # loaded 2-core machine, sanitizers
MAX_RESPONSE = 1048576
IDS = itertools.count(1000)

TARGETS = {
    # provider: (display name, key region, MCP path, method, route below the region base)
    "boldsign": ("BoldSign", "us", "/boldsign/mcp", "GET", "/v1/document/list"),
    "dropboxsign": ("Dropbox Sign", "global", "/dropboxsign/mcp", "GET", "/v3/signature_request/list"),
    "iinkedsign": ("iinked Sign", "us", "/iinkedsign/mcp", "POST", "/api/v1/packages/list"),
}


def cases(display, region):
    p, rg = re.escape(display), re.escape(region)
    again = r"(?i).*try again"
    return [
        # name, fault rule, expect error?, regexes the text must match, min elapsed, max elapsed
        ("error 503", {"mode": "error", "status": 503}, True,
         [p + r" failed \(503\)", again], 0, DEADLINE_S + SLACK_S),
        ("error 500", {"mode": "error", "status": 500}, True,
         [p + r" failed \(500\)", again], 0, DEADLINE_S + SLACK_S),
        ("rate_limit with retry_after 30", {"mode": "rate_limit", "retry_after": 30}, True,
         [p + r" rate limit", r"Retry after 30 s"], 0, DEADLINE_S + SLACK_S),
        ("reset", {"mode": "reset"}, True,
         [r"[Cc]onnection to " + p + r" \(" + rg + r"\) failed", again], 0, DEADLINE_S + SLACK_S),
        ("truncate", {"mode": "truncate"}, True,
         [r"[Cc]onnection to " + p + r" \(" + rg + r"\) failed", again], 0, DEADLINE_S + SLACK_S),
        ("malformed", {"mode": "malformed"}, True,
         [p + r" returned a malformed response", again], 0, DEADLINE_S + SLACK_S),
        ("drip within the deadline", {"mode": "drip", "drip_ms": 50, "drip_bytes": 512}, False,
         [], 0.15, DEADLINE_S + SLACK_S),
        ("drip beyond the deadline", {"mode": "drip", "drip_ms": 250, "drip_bytes": 16}, True,
         [p + r" \(" + rg + r"\) did not answer within 2 s", again], DEADLINE_S - 0.3,
         DEADLINE_S + SLACK_S),
        ("oversize beyond max_response_bytes", {"mode": "oversize", "size": 2 * MAX_RESPONSE}, True,
         [p + r"'s answer was too large", r"Ask for less"], 0, DEADLINE_S + SLACK_S),
        ("hang", {"mode": "hang", "hang_ms": 15000}, True,
         [p + r" \(" + rg + r"\) did not answer within 2 s", again], DEADLINE_S - 0.3,
         DEADLINE_S + SLACK_S),
    ]


def call(sess, args, timeout=30.0):
    """tools/call list_documents in sess with a unique id (thread-safe)."""
    i = next(IDS)
    t0 = time.monotonic()
    r, msg = sbtest.rpc(sess.port, sess.sid, "tools/call",
                        {"name": "list_documents", "arguments": args}, id_=i,
                        version=sess.version, extra=sess.cred, timeout=timeout, path=sess.path)
    el = time.monotonic() - t0
    assert r.status == 200 and msg is not None and "result" in msg, \
        "tools/call: %s" % (r.describe() if msg is None else msg)
    return uptest.ToolResult(msg["result"], el)


def run_provider(t, provider, sess, results):
    display, region, path, method, route = TARGETS[provider]
    for name, rule, want_err, pats, lo, hi in cases(display, region):
        label = "%s, %s" % (provider, name)
        fid = None
        try:
            fid = t.sbx.add_fault(provider=provider, region=region, method=method, route=route, **rule)
            res = call(sess, {"page_size": 3})
            assert res.is_error == want_err, "expected %s: %s" % (
                "a tool error" if want_err else "success", res.describe())
            for pat in pats:
                assert re.search(pat, res.text), "text does not match /%s/: %r" % (pat, res.text)
            if want_err:
                assert display in res.text, "text does not name %s: %r" % (display, res.text)
            else:
                assert (res.structured or {}).get("documents"), "no documents: " + res.describe()
            assert lo <= res.elapsed <= hi, "answered after %.2f s, expected %.2f..%.2f s" % (
                res.elapsed, lo, hi)
            results.append((label, res.elapsed, None))
        except Exception as e:  # noqa: BLE001
            results.append((label, 0, "%s: %s" % (type(e).__name__, e)))
        finally:
            if fid is not None:
                try:
                    t.sbx.ctl("DELETE", "/_sandbox/faults/%s" % fid)
                except AssertionError:
                    pass
    try:
        res = call(sess, {"page_size": 3})
        assert not res.is_error, res.describe()
        results.append(("%s, normal call succeeds after the faults" % provider, res.elapsed, None))
    except Exception as e:  # noqa: BLE001
        results.append(("%s, normal call succeeds after the faults" % provider, 0, str(e)))


def settle_fds(br, target, timeout=15.0):
    """Wait until signbridge's descriptor count is <= target; returns the last count."""
    n = br.fd_count()
    deadline = time.monotonic() + timeout
    while n > target and time.monotonic() < deadline:
        time.sleep(0.2)
        n = br.fd_count()
    return n


def main(t):
    sbx, br = t.sbx, t.br
    sessions = {}
    for provider, (display, region, path, method, route) in TARGETS.items():
        sessions[provider] = br.session(path, uptest.xkey(sbx.key(provider, region)))

    # -- every mode, each provider in its own thread ----------------------------------------
    results = {p: [] for p in TARGETS}
    threads = [threading.Thread(target=run_provider, args=(t, p, sessions[p], results[p]))
               for p in TARGETS]
    t0 = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    print("# fault modes took %.1f s" % (time.monotonic() - t0), flush=True)
    for p in TARGETS:
        for label, el, err in results[p]:
            if err:
                t.checks.fail(label, err)
            else:
                t.checks.ok("%s (%.2f s)" % (label, el))

    def healthz():
        r = sbtest.request(br.port, "GET", "/healthz", timeout=10)
        assert r.status == 200, r.describe()
    t.check("signbridge keeps serving: /healthz 200 after every fault mode", healthz)

    # -- descriptors after 1,000 faulted calls -----------------------------------------------
    sess = sessions["boldsign"]
    display, region, path, method, route = TARGETS["boldsign"]
    sbx.clear_faults()
    with ThreadPoolExecutor(8) as ex:  # warm up: upstream connection pool at its working size
        list(ex.map(lambda _: call(sess, {"page_size": 1}), range(48)))
    time.sleep(1.0)
    before = br.fd_count()
    modes = [
        ({"mode": "error", "status": 500}, re.escape(display) + r" failed \(500\)"),
        ({"mode": "reset"}, r"onnection to " + re.escape(display)),
        ({"mode": "truncate"}, r"onnection to " + re.escape(display)),
        ({"mode": "malformed"}, r"malformed"),
        ({"mode": "oversize", "size": 2 * MAX_RESPONSE}, r"too large"),
    ]
    bad = []
    count = 0
    t0 = time.monotonic()
    for rule, pat in modes:
        fid = sbx.add_fault(provider="boldsign", region=region, method=method, route=route, **rule)

        def one(_, pat=pat):
            try:
                res = call(sess, {"page_size": 1})
                if not res.is_error or not re.search(pat, res.text):
                    return "%s: %s" % (rule["mode"], res.describe())
            except Exception as e:  # noqa: BLE001
                return "%s: %s: %s" % (rule["mode"], type(e).__name__, e)
            return None
        with ThreadPoolExecutor(8) as ex:
            for err in ex.map(one, range(200)):
                count += 1
                if err:
                    bad.append(err)
        sbx.ctl("DELETE", "/_sandbox/faults/%s" % fid)
    took = time.monotonic() - t0
    if bad:
        t.checks.fail("1,000 faulted calls each get their tool error",
                      "%d of %d wrong, e.g. %s" % (len(bad), count, bad[:3]))
    else:
        t.checks.ok("1,000 faulted calls each get their tool error (%.1f s)" % took)
    slack = 16
    after = settle_fds(br, before + slack)
    if after <= before + slack:
        t.checks.ok("no descriptor growth after 1,000 faulted calls (%d before, %d after, slack %d)"
                    % (before, after, slack))
    else:
        t.checks.fail("no descriptor growth after 1,000 faulted calls",
                      "%d open before, %d after (slack %d)" % (before, after, slack))

    def still():
        res = call(sess, {"page_size": 3})
        assert not res.is_error, res.describe()
    t.check("a normal call succeeds after the 1,000 faulted calls", still)


uptest.run(main, bridge_env={"SIGNBRIDGE_UPSTREAM_TIMEOUT_MS": "2000",
                             "SIGNBRIDGE_UPSTREAM_MAX_RESPONSE_BYTES": str(MAX_RESPONSE)})
