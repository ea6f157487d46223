"""ratelimit (issue 9): per-credential rate limits and concurrency caps on one replica.

Starts a provider sandbox and a signbridge (tests/upstream/uptest.py) with
ratelimit.requests_per_minute=120, burst=10, max_concurrent_calls=2, and checks:
  - one credential sending as fast as it can gets ~burst requests through, then HTTP 429 with a
    Retry-After (whole seconds >= 1) and a JSON-RPC error whose data says limit "rate", the
    configured rate and burst, and when to retry; after Retry-After seconds it is let through again;
  - another credential is unaffected meanwhile;
  - with the sandbox slowed (latency_ms=2000), the third concurrent tools/call of one credential
    gets 429 (limit "concurrency", its JSON-RPC id echoed) while the first two complete; once
    they have, a call goes through again (the slots were released);
  - signbridge_ratelimit_refusals_total{limit="rate"|"concurrency"} counted the refusals.
Standard library only.
"""

import json
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "upstream"))

import uptest  # noqa: E402  (puts tests/integration on sys.path too)
import sbtest  # noqa: E402
from sbtest import request  # noqa: E402

RPM, BURST, CONC = 120, 10, 2
ENV = {"SIGNBRIDGE_RATELIMIT_REQUESTS_PER_MINUTE": str(RPM),
       "SIGNBRIDGE_RATELIMIT_BURST": str(BURST),
       "SIGNBRIDGE_RATELIMIT_MAX_CONCURRENT_CALLS": str(CONC),
       "SIGNBRIDGE_LOG_LEVEL": "info"}


def ping(port, cred, path="/boldsign/mcp"):
    """One MCP POST outside a session: counted by the rate limit, cheap otherwise."""
    return request(port, "POST", path, sbtest.mcp_headers(extra=cred),
                   {"jsonrpc": "2.0", "id": 1, "method": "ping"})


def metric(port, sample):
    r = request(port, "GET", "/metrics")
    assert r.status == 200, r.describe()
    for line in r.body.decode().splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return 0.0


def check_429(r, limit):
    assert r.status == 429, r.describe()
    ra = r.header("Retry-After", "")
    assert ra.isdigit() and int(ra) >= 1, "Retry-After %r" % ra
    msg = json.loads(r.body)
    err = msg.get("error") or {}
    assert err.get("code") == -32000, msg
    data = err.get("data") or {}
    assert data.get("limit") == limit, msg
    assert data.get("retry_after_s") == int(ra), msg
    assert "retry in" in err.get("message", ""), msg
    return msg, int(ra)


def main(t):
    sbx, br = t.sbx, t.br
    port = br.port
    cred_a = uptest.xkey(sbx.key("boldsign", "us"))
    cred_b = uptest.xkey(sbx.key("boldsign", "eu"))
    cred_c = uptest.xkey(sbx.key("dropboxsign", "global"))
    st = {}

    def rate():
        ok = 0
        first = None
        t0 = time.monotonic()
        for _ in range(BURST * 3):
            r = ping(port, cred_a)
            if r.status == 429:
                first = r
                break
            ok += 1
        elapsed = time.monotonic() - t0
        assert first is not None, "no 429 after %d requests" % ok
        # the bucket refills 2 tokens a second while we send
        assert BURST <= ok <= BURST + 1 + int(elapsed * RPM / 60), \
            "%d requests accepted in %.2fs (burst %d)" % (ok, elapsed, BURST)
        msg, ra = check_429(first, "rate")
        data = msg["error"]["data"]
        assert data.get("requests_per_minute") == RPM and data.get("burst") == BURST, data
        assert "requests per minute" in msg["error"]["message"], msg
        st["ra"] = ra
        print("# %d accepted in %.2fs, then 429 Retry-After %d" % (ok, elapsed, ra), flush=True)
        return "%d accepted, then 429 Retry-After %d: %s" % (ok, ra, msg["error"]["message"])
    t.check("one credential: ~burst requests, then 429 with Retry-After and a JSON-RPC error", rate)

    def other_unaffected():
        for _ in range(3):
            r = ping(port, cred_b)
            assert r.status != 429, "another credential was refused: " + r.describe()
        r = ping(port, cred_a)
        assert r.status == 429, "the first credential is let through again at once: " + r.describe()
        return "other credential: %d" % r.status
    t.check("another credential is unaffected", other_unaffected)

    def after_retry():
        time.sleep(st.get("ra", 1) + 0.1)
        r = ping(port, cred_a)
        assert r.status != 429, "still refused after Retry-After: " + r.describe()
        return "%d after %d s" % (r.status, st.get("ra", 1))
    t.check("after Retry-After seconds the credential is let through again", after_retry)

    def concurrency():
        s = br.session("/dropboxsign/mcp", cred_c)
        res = s.call("list_documents", {"page_size": 1})
        assert not res.is_error, res.describe()
        sbx.config(latency_ms=2000)
        since = sbx.last_seq()
        out = {}

        def go(i):
            try:
                out[i] = s.call("list_documents", {"page_size": 1}, timeout=30)
            except Exception as e:  # noqa: BLE001
                out[i] = e
        try:
            th = [threading.Thread(target=go, args=(i,)) for i in range(CONC)]
            for x in th:
                x.start()
            # both slow calls have reached the sandbox: their slots are taken
            sbx.wait_requests(since, CONC, route_suffix="/list")
            body = {"jsonrpc": "2.0", "id": 4242, "method": "tools/call",
                    "params": {"name": "list_documents", "arguments": {"page_size": 1}}}
            r = request(port, "POST", "/dropboxsign/mcp",
                        sbtest.mcp_headers(session=s.sid, version=s.version, extra=cred_c), body,
                        timeout=20)
            for x in th:
                x.join()
        finally:
            sbx.config(latency_ms=0)
        msg, ra = check_429(r, "concurrency")
        assert msg.get("id") == 4242, msg
        assert msg["error"]["data"].get("max_concurrent_calls") == CONC, msg
        for i in range(CONC):
            assert not isinstance(out.get(i), Exception) and not out[i].is_error, \
                "call %d: %r" % (i, out.get(i))
        res = s.call("list_documents", {"page_size": 1})
        assert not res.is_error, "after the calls ended: " + res.describe()
        return "3rd concurrent call: 429 (%s); the slots were released" % msg["error"]["message"]
    t.check("concurrency cap: the (cap+1)th concurrent tools/call gets 429", concurrency)

    def metrics():
        rate_n = metric(port, 'signbridge_ratelimit_refusals_total{limit="rate"}')
        conc_n = metric(port, 'signbridge_ratelimit_refusals_total{limit="concurrency"}')
        assert rate_n >= 2 and conc_n >= 1, (rate_n, conc_n)
        return "rate %d, concurrency %d" % (rate_n, conc_n)
    t.check("signbridge_ratelimit_refusals_total counts both limits", metrics)


uptest.run(main, bridge_env=ENV)
