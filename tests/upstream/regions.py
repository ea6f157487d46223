"""upstream-regions (issue 4, acceptance 1): one URL for every BoldSign region.

- /boldsign/mcp serves a key from each of the four BoldSign regions (us, eu, ca, au): initialize is
  200, list_documents returns that region's documents (the same ids the sandbox lists for the key
  in its region), and the sandbox's request log shows the list call went to that region only;
- the region detected for a key is cached: a second connection (new session) with the same key
  makes no probe -- the sandbox's counts of the probe route and its request log are unchanged
  between the second initialize and its own list call; /mcp (default provider) shares the cache;
- a pinned region (/boldsign/{region}/mcp) is honoured; a key pinned to the wrong region gets 401
  with WWW-Authenticate and a body naming the key's real region;
- a wrong key is refused at initialize with 401, WWW-Authenticate, and a body naming every region
  tried; no credential is 401 with WWW-Authenticate and a JSON body; a bearer token is 401
  invalid_token.
"""

import json
import uptest
from uptest import initialize_raw, xkey

REGIONS = ("us", "eu", "ca", "au")
PROBE_ROUTE = "GET /v1/brand/list"
LIST_ROUTE = "GET /v1/document/list"


def sandbox_ids(t, region, key, page_size):
    """Document ids the sandbox itself lists for this key in its region (first page)."""
    a = t.sbx.account("boldsign", region)
    path = a["base_url"].split(t.sbx.origin, 1)[1] + "/v1/document/list?Page=1&PageSize=%d" % page_size
    r = uptest.request(t.sbx.port, "GET", path, [("X-API-KEY", key)], timeout=20)
    assert r.status == 200, "sandbox list for %s: %s" % (region, r.describe())
    return [d["documentId"] for d in r.json()["result"]]


def assert_401_challenge(r, what):
    assert r.status == 401, "%s: expected 401, got %s" % (what, r.describe())
    www = r.header("www-authenticate") or ""
    assert www.startswith("Bearer ") and "resource_metadata=" in www, \
        "%s: WWW-Authenticate missing or not a Bearer challenge: %s" % (what, r.describe())
    try:
        body = r.json()
    except ValueError:
        raise AssertionError("%s: body is not JSON: %s" % (what, r.describe()))
    assert isinstance(body, dict) and isinstance(body.get("error"), str), \
        "%s: body has no error: %s" % (what, r.describe())
    return body, www


def main(t):
    sbx, br = t.sbx, t.br
    page_size = 10
    sessions = {}

    # -- one URL, four regions --------------------------------------------------------------
    for region in REGIONS:
        key = sbx.key("boldsign", region)

        def detect(region=region, key=key):
            seq = sbx.last_seq()
            s = br.session("/boldsign/mcp", xkey(key))
            sessions[region] = s
            probes = [q for q in sbx.requests(since=seq) if q["route"] == PROBE_ROUTE]
            ok = [q["region"] for q in probes if q["status"] == 200]
            assert ok == [region], "probes at initialize: %s (expected one 2xx, in %s)" % (
                [(q["region"], q["status"]) for q in probes], region)
        if not t.check("/boldsign/mcp initialize 200 with a %s key (region detected by probing)"
                       % region, detect):
            continue

        def listed(region=region, key=key):
            s = sessions[region]
            seq = sbx.last_seq()
            res = s.call("list_documents", {"page_size": page_size})
            assert not res.is_error, "list_documents: " + res.describe()
            st = res.structured or {}
            assert st.get("provider") == "boldsign" and st.get("region") == region, \
                "structuredContent names provider %r region %r, expected boldsign/%s" % (
                    st.get("provider"), st.get("region"), region)
            ids = [d["id"] for d in st.get("documents", [])]
            assert ids, "no documents returned: " + res.describe()
            reqs = sbx.requests(since=seq)
            lists = [q for q in reqs if q["route"] == LIST_ROUTE]
            assert len(lists) == 1 and lists[0]["region"] == region, \
                "upstream list calls: %s (expected exactly one, to %s)" % (
                    [(q["region"], q["path"], q["status"]) for q in reqs], region)
            assert lists[0]["account_id"] == sbx.account("boldsign", region)["account_id"], \
                "the list call resolved to another account: %r" % lists[0]["account_id"]
            want = sandbox_ids(t, region, key, page_size)
            assert ids == want, "documents %s... differ from the sandbox's %s list %s..." % (
                ids[:3], region, want[:3])
        t.check("list_documents through /boldsign/mcp with the %s key returns %s's documents and "
                "goes to %s only" % (region, region, region), listed)

    # -- second connection: no probe ---------------------------------------------------------
    for region in ("eu", "au"):
        key = sbx.key("boldsign", region)

        def cached(region=region, key=key):
            st0 = sbx.stats()
            seq = sbx.last_seq()
            s = br.session("/boldsign/mcp", xkey(key))
            st1 = sbx.stats()
            new = sbx.requests(since=seq)
            for rg in REGIONS:
                a = sbx.route_count("boldsign", rg, PROBE_ROUTE, st0)
                b = sbx.route_count("boldsign", rg, PROBE_ROUTE, st1)
                assert a == b, "probe route count in %s went %d -> %d during the second " \
                    "initialize" % (rg, a, b)
            assert st0.get("total") == st1.get("total") and not new, \
                "upstream requests during the second initialize: %s" % (
                    [(q["region"], q["route"]) for q in new])
            res = s.call("list_documents", {"page_size": 3})
            assert not res.is_error and (res.structured or {}).get("region") == region, \
                "list in the second session: " + res.describe()
            new = sbx.requests(since=seq)
            assert [q["route"] for q in new] == [LIST_ROUTE] and new[0]["region"] == region, \
                "upstream requests for the second session: %s" % (
                    [(q["region"], q["route"]) for q in new])
        t.check("a second connection with the %s key makes no probe (cached region) and still "
                "lists in %s" % (region, region), cached)

    def default_route():
        key = sbx.key("boldsign", "ca")
        seq = sbx.last_seq()
        s = br.session("/mcp", xkey(key))
        res = s.call("list_documents", {"page_size": 3})
        assert not res.is_error and (res.structured or {}).get("region") == "ca", \
            "list at /mcp: " + res.describe()
        new = sbx.requests(since=seq)
        assert [(q["region"], q["route"]) for q in new] == [("ca", LIST_ROUTE)], \
            "upstream requests: %s (expected the list call in ca and no probe)" % (
                [(q["region"], q["route"]) for q in new])
    t.check("/mcp (default provider boldsign) serves the ca key from the same region cache",
            default_route)

    # -- pinned regions ----------------------------------------------------------------------
    def pinned_right():
        key = sbx.key("boldsign", "au", index=1)  # a key not seen before: no cache entry
        seq = sbx.last_seq()
        s = br.session("/boldsign/au/mcp", xkey(key))
        res = s.call("list_documents", {"page_size": 3})
        assert not res.is_error and (res.structured or {}).get("region") == "au", res.describe()
        new = sbx.requests(since=seq)
        assert {q["region"] for q in new} == {"au"}, \
            "a pinned region must be the only one contacted: %s" % (
                [(q["region"], q["route"]) for q in new])
    t.check("/boldsign/au/mcp with an au key: 200, only au is contacted", pinned_right)

    for pin, home in (("us", "eu"), ("ca", "au")):
        def wrong_region(pin=pin, home=home):
            key = sbx.key("boldsign", home)
            r = initialize_raw(br.port, "/boldsign/%s/mcp" % pin, xkey(key))
            body, www = assert_401_challenge(r, "key of %s pinned to %s" % (home, pin))
            assert body.get("key_region") == home, \
                "body should name the key's region %r in key_region: %s" % (home, r.describe())
            desc = body.get("error_description", "")
            assert home in desc and "/boldsign/%s/mcp" % home in desc, \
                "error_description should name region %s and its URL: %r" % (home, desc)
            assert pin in desc, "error_description should name the pinned region %s: %r" % (pin, desc)
            assert r.header("mcp-session-id") is None, "a refused initialize made a session"
        t.check("a %s key pinned to /boldsign/%s/mcp: 401 + WWW-Authenticate, body names region %s"
                % (home, pin, home), wrong_region)

    # -- refusals ----------------------------------------------------------------------------
    def wrong_key():
        bad = "c2lnbmJyaWRnZS10ZXN0LW5vdC1hLWtleS0wMDAx"
        t.extra_secrets.append(("the wrong key sent in the test", bad))
        seq = sbx.last_seq()
        r = initialize_raw(br.port, "/boldsign/mcp", xkey(bad))
        body, www = assert_401_challenge(r, "wrong key")
        tried = body.get("regions_tried")
        assert sorted(tried or []) == sorted(REGIONS), \
            "regions_tried should be every region %s: %s" % (list(REGIONS), r.describe())
        desc = body.get("error_description", "")
        for rg in REGIONS:
            assert rg in desc, "error_description should name region %s: %r" % (rg, desc)
        probed = sorted(q["region"] for q in sbx.requests(since=seq) if q["route"] == PROBE_ROUTE)
        assert probed == sorted(REGIONS), "probes for the wrong key: %s" % probed
        assert bad not in r.text(), "the response echoes the key"
    t.check("a wrong key at /boldsign/mcp: 401 at initialize, WWW-Authenticate, names every "
            "region tried (us, eu, ca, au)", wrong_key)

    def no_credential():
        r = initialize_raw(br.port, "/boldsign/mcp", [])
        body, www = assert_401_challenge(r, "no credential")
        assert "/boldsign/mcp" in www, "resource_metadata should name /boldsign/mcp: %s" % www
    t.check("no credential: 401 with WWW-Authenticate and a JSON body", no_credential)

    def bearer():
        r = initialize_raw(br.port, "/boldsign/mcp", [("Authorization", "Bearer abc.def.ghi")])
        body, www = assert_401_challenge(r, "bearer")
        assert body.get("error") == "invalid_token" and 'error="invalid_token"' in www, \
            "expected invalid_token: %s" % r.describe()
    t.check("a bearer token: 401 invalid_token", bearer)

    def still_serving():
        res = sessions["us"].call("list_documents", {"page_size": 1})
        assert not res.is_error, res.describe()
    t.check("the first session still works at the end", still_serving)
    print("# region cache test done; sandbox totals %s" % json.dumps(sbx.stats().get("total")))


uptest.run(main)
