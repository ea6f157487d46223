"""upstream-retries (issue 4, acceptance 5): reads are retried, actions never.

- a read (list_documents) that gets 503 twice and then 200 succeeds: the sandbox counts exactly 3
  requests on the list route, answered 503, 503, 200;
- a read that keeps getting 503 is tried 1 + upstream.max_retries (3) times, then fails (503);
- a read that gets 429 with Retry-After: 1 once is retried after about a second and succeeds;
- an action (revoke_document) that gets 503 is sent exactly once (1 request on the revoke route)
  and returns a tool error; likewise for 429, for a reset connection and for a 502, none of which
  may make the action go out twice;
- a normal revoke is sent once and succeeds;
- with SIGNBRIDGE_UPSTREAM_MAX_RETRIES=0 (a second signbridge) a read that gets 503 is sent once.
"""

import time

import uptest

LIST = "GET /v1/document/list"
REVOKE = "POST /v1/document/revoke"


def in_progress_ids(s, n):
    res = s.call("list_documents", {"page_size": 100})
    assert not res.is_error, res.describe()
    ids = [d["id"] for d in res.structured["documents"] if d["status"] in ("sent", "in_progress")]
    assert len(ids) >= n, "only %d revocable documents" % len(ids)
    return ids


def main(t):
    sbx, br = t.sbx, t.br
    region = "us"
    key = sbx.key("boldsign", region)
    s = br.session("/boldsign/mcp", uptest.xkey(key))
    docs = in_progress_ids(s, 7)

    def count(route):
        return sbx.route_count("boldsign", region, route)

    def read_503_twice():
        sbx.clear_faults()
        sbx.add_fault(provider="boldsign", region=region, method="GET", route="/v1/document/list",
                      mode="error", status=503, count=2)
        before, seq = count(LIST), sbx.last_seq()
        res = s.call("list_documents", {"page_size": 5})
        after = count(LIST)
        statuses = [q["status"] for q in sbx.requests(since=seq) if q["route"] == LIST]
        assert not res.is_error and res.structured.get("documents"), \
            "the read should succeed on the third try: " + res.describe()
        assert after - before == 3, "the sandbox counted %d list requests, expected 3 (statuses %s)" % (
            after - before, statuses)
        assert statuses == [503, 503, 200], "statuses %s, expected [503, 503, 200]" % statuses
    t.check("a read that gets 503 twice then 200 succeeds; the sandbox counts 3 requests",
            read_503_twice)

    def read_503_always():
        sbx.clear_faults()
        sbx.add_fault(provider="boldsign", region=region, method="GET", route="/v1/document/list",
                      mode="error", status=503)
        before = count(LIST)
        res = s.call("list_documents", {"page_size": 5}, timeout=60)
        n = count(LIST) - before
        sbx.clear_faults()
        assert res.is_error and "failed (503)" in res.text, res.describe()
        assert n == 4, "%d list requests, expected 1 + max_retries (3) = 4" % n
    t.check("a read that keeps getting 503 is tried 4 times (1 + max_retries 3), then fails",
            read_503_always)

    def read_429_once():
        sbx.clear_faults()
        sbx.add_fault(provider="boldsign", region=region, method="GET", route="/v1/document/list",
                      mode="rate_limit", retry_after=1, count=1)
        before = count(LIST)
        res = s.call("list_documents", {"page_size": 5})
        n = count(LIST) - before
        assert not res.is_error, res.describe()
        assert n == 2, "%d list requests, expected 2" % n
        assert 0.8 <= res.elapsed <= 10, "took %.2f s; Retry-After 1 asks for about 1 s" % res.elapsed
    t.check("a read that gets 429 (Retry-After: 1) once is retried after ~1 s and succeeds",
            read_429_once)

    def action_once(rule, doc, want):
        sbx.clear_faults()
        sbx.add_fault(provider="boldsign", region=region, method="POST", route="/v1/document/revoke",
                      **rule)
        before, seq = count(REVOKE), sbx.last_seq()
        res = s.call("revoke_document", {"document_id": doc, "reason": "uptest %s" % rule["mode"]},
                     timeout=60)
        time.sleep(0.3)  # anything sent late would show up now
        sent = [q for q in sbx.requests(since=seq) if q["route"] == REVOKE]
        sbx.clear_faults()
        assert res.is_error, "the action should fail: " + res.describe()
        assert want in res.text, "text should contain %r: %r" % (want, res.text)
        assert count(REVOKE) - before == 1 and len(sent) == 1, \
            "revoke sent %d times (requests: %s), expected exactly once" % (
                count(REVOKE) - before, [(q["status"], q.get("fault")) for q in sent])

    t.check("an action (revoke_document) that gets 503 is sent exactly once and returns an error",
            action_once, {"mode": "error", "status": 503}, docs[0], "failed (503)")
    t.check("an action that gets 502 is sent exactly once and returns an error",
            action_once, {"mode": "error", "status": 502}, docs[1], "failed (502)")
    t.check("an action that gets 429 (Retry-After: 1) is sent exactly once and returns an error",
            action_once, {"mode": "rate_limit", "retry_after": 1}, docs[2], "Retry after")
    t.check("an action whose connection is reset is sent exactly once and says it may or may not "
            "have happened", action_once, {"mode": "reset"}, docs[3], "may or may not have happened")

    def action_ok():
        before = count(REVOKE)
        res = s.call("revoke_document", {"document_id": docs[4], "reason": "uptest ok"})
        assert not res.is_error and res.structured.get("status") == "revoked", res.describe()
        assert count(REVOKE) - before == 1, "sent %d times" % (count(REVOKE) - before)
        g = s.call("get_document", {"document_id": docs[4]})
        assert not g.is_error and g.structured["document"]["status"] == "revoked", g.describe()
    t.check("a normal revoke is sent once and the document is revoked", action_ok)

    def no_retries_configured():
        br0 = uptest.Bridge(sbx, env={"SIGNBRIDGE_UPSTREAM_MAX_RETRIES": "0"})
        br0.start()
        try:
            s0 = br0.session("/boldsign/mcp", uptest.xkey(key))
            sbx.clear_faults()
            sbx.add_fault(provider="boldsign", region=region, method="GET",
                          route="/v1/document/list", mode="error", status=503, count=2)
            before = count(LIST)
            res = s0.call("list_documents", {"page_size": 5})
            n = count(LIST) - before
            sbx.clear_faults()
            assert res.is_error and "failed (503)" in res.text, res.describe()
            assert n == 1, "%d list requests with max_retries 0, expected 1" % n
        finally:
            rc = br0.stop()
            t.extra_logs = br0.stderr_text()
            br0.tmp.cleanup()
        assert rc == 0, "the second signbridge exited %r" % rc
    t.check("with SIGNBRIDGE_UPSTREAM_MAX_RETRIES=0 a read that gets 503 is sent once",
            no_retries_configured)
    if getattr(t, "extra_logs", ""):
        hits = uptest.find_secrets(t.extra_logs, uptest.secrets_of(sbx))
        if hits:
            t.checks.fail("no key in the second signbridge's log", hits)
        else:
            t.checks.ok("no key in the second signbridge's log")


uptest.run(main)
