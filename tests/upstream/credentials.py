"""upstream-credentials (issue 4, acceptance 2): whatever header style the caller uses, the key
reaches each provider in that provider's own scheme.

For every provider and every caller style (X-API-Key, Authorization: Basic base64(key:), api_key):
initialize and list_documents succeed, and every request the sandbox logged for that session has
auth_scheme basic for Dropbox Sign, api_key for iinked Sign and x-api-key for BoldSign -- never the
caller's header style when it differs -- and resolved to the key's own account.  Also: iinked
pinned to a region (/iinkedsign/eu/mcp) and a private instance (/iinkedsign/private/acme/mcp);
a Basic credential with a password part; get_document on a listed id.
"""

import uptest
from uptest import STYLES, initialize_raw

PROVIDERS = (
    # provider, region of the key, MCP path, scheme the provider must receive
    ("dropboxsign", "global", "/dropboxsign/mcp", "basic"),
    ("iinkedsign", "us", "/iinkedsign/mcp", "api_key"),
    ("boldsign", "eu", "/boldsign/mcp", "x-api-key"),
)


def through(t, provider, region, path, scheme, style, cred, account=None, expect_region=None,
            instance=None):
    """initialize + list_documents (+ get_document) with cred; check the sandbox's log."""
    sbx, br = t.sbx, t.br
    account = account or sbx.account(provider, region)
    seq = sbx.last_seq()
    s = br.session(path, cred)
    res = s.call("list_documents", {"page_size": 3})
    assert not res.is_error, "list_documents: " + res.describe()
    st = res.structured or {}
    docs = st.get("documents") or []
    assert st.get("provider") == provider and docs, "unexpected result: " + res.describe()
    if expect_region:
        assert st.get("region") == expect_region, "region %r, expected %r" % (
            st.get("region"), expect_region)
    g = s.call("get_document", {"document_id": docs[0]["id"]})
    assert not g.is_error, "get_document: " + g.describe()
    reqs = [q for q in sbx.requests(since=seq) if q["provider"] == provider]
    assert reqs, "the sandbox logged no %s request" % provider
    ok = [q for q in reqs if q["status"] < 300]
    wrong = [(q["region"], q["route"], q["auth_scheme"]) for q in reqs if q["auth_scheme"] != scheme]
    assert not wrong, "requests not in %s's scheme %r: %s" % (provider, scheme, wrong)
    others = [(q["route"], q.get("account_id")) for q in ok if q.get("account_id") != account["account_id"]]
    assert not others, "2xx requests resolved to another account: %s" % others
    if instance:
        bad = [(q["region"], q.get("instance")) for q in reqs
               if q["region"] != "private" or q.get("instance") != instance]
        assert not bad, "requests outside private/%s: %s" % (instance, bad)
    routes = {q["route"] for q in ok}
    assert len(routes) >= 2, "expected the list and get calls upstream, saw %s" % sorted(routes)
    return reqs


def main(t):
    sbx = t.sbx
    for provider, region, path, scheme in PROVIDERS:
        key = sbx.key(provider, region)
        for style, mk in STYLES.items():
            t.check("%s via %s at %s: list + get succeed; upstream sees only auth_scheme %s"
                    % (provider, style, path, scheme),
                    through, t, provider, region, path, scheme, style, mk(key))

    # iinked: a user key (another account record) pinned to its region, via X-API-Key
    eu = sbx.account("iinkedsign", "eu")
    t.check("iinkedsign via x-api-key pinned at /iinkedsign/eu/mcp: upstream sees api_key, region eu",
            through, t, "iinkedsign", "eu", "/iinkedsign/eu/mcp", "api_key", "x-api-key",
            uptest.xkey(eu["api_key"]), eu, "eu")

    # iinked private instance
    acme = sbx.account("iinkedsign", "private")
    for style in ("api_key", "x-api-key"):
        t.check("iinkedsign private instance via %s at /iinkedsign/private/acme/mcp: upstream sees "
                "api_key at private/acme" % style,
                through, t, "iinkedsign", "private", "/iinkedsign/private/acme/mcp", "api_key", style,
                STYLES[style](acme["api_key"]), acme, None, "acme")

    # Dropbox Sign: Basic with a password part (curl and SDKs send "key:" but some tools "key:x")
    dbx = sbx.account("dropboxsign", "global", index=1)

    def basic_with_password():
        import base64
        tok = base64.b64encode(("%s:x" % dbx["api_key"]).encode()).decode()
        t.extra_secrets.append(("dropbox key with password as Basic", tok))
        through(t, "dropboxsign", "global", "/dropboxsign/mcp", "basic", "basic",
                [("Authorization", "Basic " + tok)], dbx)
    t.check("dropboxsign via Basic key:password: the key (user part) reaches Dropbox Sign as Basic",
            basic_with_password)

    # A provider's key on another provider's URL is refused (each adapter's own probe says no)
    def cross_provider():
        key = sbx.key("dropboxsign", "global")
        r = initialize_raw(t.br.port, "/boldsign/mcp", uptest.basic(key))
        assert r.status == 401 and r.header("www-authenticate"), \
            "a Dropbox key at /boldsign/mcp: %s" % r.describe()
    t.check("a Dropbox Sign key at /boldsign/mcp: 401 with WWW-Authenticate", cross_provider)


uptest.run(main)
