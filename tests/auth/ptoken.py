"""auth-ptoken (issue 6): provider-token mode. signbridge started with
oauth.provider_tokens.enabled accepts BoldSign access tokens issued by the sandbox's regional
identity servers (verified against each issuer's JWKS from its discovery document), routes each to
its issuer's region and sends it upstream as the provider's own Bearer credential; it refuses a
tampered token, a token whose issuer is not configured, and a token used on another region's route.
Standard library only.
"""

import base64
import hashlib
import http.client
import json
import os
import sys
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import sbtest  # noqa: E402

SANDBOX_BIN = os.environ.get("SANDBOX_BIN")


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def provider_token(sport, region):
    """A BoldSign access token from the sandbox's identity server of `region` (auto-approve)."""
    acc = json.load(urllib.request.urlopen("http://127.0.0.1:%d/_sandbox/accounts" % sport))
    a = [x for x in acc["accounts"] if x["provider"] == "boldsign" and x["region"] == region][0]
    o = a["oauth"]
    v = b64u(os.urandom(32))
    q = urllib.parse.urlencode({
        "response_type": "code", "client_id": o["client_id"], "redirect_uri": "http://127.0.0.1/cb",
        "scope": "openid offline_access BoldSign.Documents.All", "state": "s1",
        "code_challenge": b64u(hashlib.sha256(v.encode()).digest()),
        "code_challenge_method": "S256"})
    c = http.client.HTTPConnection("127.0.0.1", sport, timeout=10)
    c.request("GET", urllib.parse.urlparse(o["authorize_url"]).path + "?" + q)
    r = c.getresponse()
    r.read()
    code = urllib.parse.parse_qs(urllib.parse.urlparse(r.getheader("Location")).query)["code"][0]
    body = urllib.parse.urlencode({
        "grant_type": "authorization_code", "code": code, "redirect_uri": "http://127.0.0.1/cb",
        "client_id": o["client_id"], "client_secret": o["client_secret"],
        "code_verifier": v}).encode()
    tok = json.load(urllib.request.urlopen(urllib.request.Request(o["token_url"], data=body)))
    return tok["access_token"]


def post(port, path, token, msg, sid=None):
    h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
         "Authorization": "Bearer " + token}
    if sid:
        h["Mcp-Session-Id"] = sid
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 data=json.dumps(msg).encode(), headers=h)
    try:
        r = urllib.request.urlopen(req, timeout=20)
        return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "ptoken-test", "version": "1"}}}


def main():
    ck = sbtest.Checks()
    if not SANDBOX_BIN:
        print("not ok - SANDBOX_BIN is not set")
        print("0 passed, 1 failed")
        return 1
    sbx = sbtest.Server(args=["--oauth-auto-approve", "--no-rate-limits"], binary=SANDBOX_BIN).start()
    cfgdir = sbx.dir
    cfg = os.path.join(cfgdir, "sb.json")
    with open(cfg, "w") as f:
        json.dump({"oauth": {"provider_tokens": {"enabled": True}}}, f)
    sb = sbtest.Server(args=["--config", cfg, "--sandbox-url", "http://127.0.0.1:%d" % sbx.port,
                             "--store", "sqlite:" + os.path.join(cfgdir, "store.db")]).start()
    try:
        eu = provider_token(sbx.port, "eu")
        us = provider_token(sbx.port, "us")

        def eu_session():
            st, h, b = post(sb.port, "/boldsign/mcp", eu, INIT)
            assert st == 200, (st, b[:300])
            sid = h.get("Mcp-Session-Id") or h.get("mcp-session-id")
            assert sid, h
            st, h, b = post(sb.port, "/boldsign/mcp", eu,
                            {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                             "params": {"name": "list_documents", "arguments": {"page_size": 2}}},
                            sid)
            assert st == 200, (st, b[:300])
            res = json.loads(b)["result"]
            assert not res.get("isError"), res
            assert res["structuredContent"]["region"] == "eu", res["structuredContent"].get("region")
        ck.check("an EU identity-server token works at /boldsign/mcp and is routed to eu", eu_session)

        def upstream_scheme():
            log = json.load(urllib.request.urlopen(
                "http://127.0.0.1:%d/_sandbox/requests?provider=boldsign" % sbx.port))
            calls = [e for e in log["requests"] if e["path"].startswith("/v1/document/list")]
            assert calls, log["requests"][-3:]
            assert all(e["auth_scheme"] == "bearer" and e["region"] == "eu" for e in calls), calls
        ck.check("the provider token went upstream as the provider's Bearer credential",
                 upstream_scheme)

        def verified_once():
            m = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % sb.port).read().decode()
            got = {}
            for line in m.splitlines():
                if line.startswith("signbridge_provider_token_checks_total{"):
                    got[line.split('"')[1]] = int(line.split()[-1])
            # the EU token's two requests: its signature checked once, then taken as verified
            assert got == {"verified": 1, "cached": 1}, got
        ck.check("a provider token is verified once, then found in the cache (metric)",
                 verified_once)

        def wrong_region():
            st, h, b = post(sb.port, "/boldsign/us/mcp", eu, INIT)
            assert st == 401, (st, b[:200])
            assert 'error="invalid_token"' in h.get("WWW-Authenticate", ""), h
        ck.check("an EU token on the /boldsign/us/mcp route is refused (401 invalid_token)",
                 wrong_region)

        def us_ok():
            st, h, b = post(sb.port, "/boldsign/us/mcp", us, INIT)
            assert st == 200, (st, b[:200])
        ck.check("a US token works on /boldsign/us/mcp", us_ok)

        def tampered():
            h, p, s = eu.split(".")
            claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
            claims["sub"] = "someone-else"
            p2 = b64u(json.dumps(claims).encode())
            st, hd, b = post(sb.port, "/boldsign/mcp", h + "." + p2 + "." + s, INIT)
            assert st == 401, (st, b[:200])
        ck.check("a tampered provider token is refused", tampered)

        def unknown_issuer():
            h, p, s = eu.split(".")
            claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
            claims["iss"] = "https://evil.example/account"
            p2 = b64u(json.dumps(claims).encode())
            st, hd, b = post(sb.port, "/boldsign/mcp", h + "." + p2 + "." + s, INIT)
            assert st == 401, (st, b[:200])
        ck.check("a token from an unconfigured issuer is refused", unknown_issuer)

        def no_leak():
            log = sb.stderr_text()
            for t in (eu, us):
                assert t not in log and t.split(".")[2] not in log, "token in the log"
        ck.check("no provider token appears in signbridge's log", no_leak)
    finally:
        sb.stop()
        sbx.stop()
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main())
