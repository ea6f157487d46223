"""auth-upstream-refresh (issue 6): a grant made through the provider's own OAuth sign-in keeps
working past the provider access token's lifetime: signbridge refreshes the upstream token with the
sealed refresh token (BoldSign rotates it) before it expires, and a refresh the provider refuses
ends the grant (401 invalid_token, sign in again). The sandbox's BoldSign identity server is set to
issue 62-second access tokens (POST /_sandbox/config {"oauth_access_ttl_s": 62}); signbridge
refreshes within 60 s of expiry, so the second call, 3 s later, must refresh.
"""

import os
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import oauthlib_sb as L  # noqa: E402
from sbtest import request  # noqa: E402

RU = "http://127.0.0.1:9/cb"


def follow_provider(port, sbx, r, cookie):
    """From the 302 to the provider's authorize page to the client's redirect (auto-approve)."""
    loc = r.header("location")
    u = urllib.parse.urlsplit(loc)
    assert u.port == sbx.port, "expected a redirect to the sandbox: %s" % loc
    r2 = request(sbx.port, "GET", u.path + "?" + u.query, timeout=20.0)
    assert r2.status == 302, r2.describe()
    back = urllib.parse.urlsplit(r2.header("location"))
    assert back.port == port and back.path == "/oauth/callback/boldsign", r2.header("location")
    r3 = request(port, "GET", back.path + "?" + back.query, [("Cookie", cookie)], timeout=30.0)
    assert r3.status == 302, r3.describe()
    return r3


def calls(port, tok, sid=None):
    import sbtest
    if sid is None:
        sid, ver, _ = sbtest.initialize(port, extra=L.bearer(tok), path="/boldsign/us/mcp",
                                        timeout=20.0)
    r, msg = sbtest.rpc(port, sid, "tools/call",
                        {"name": "list_documents", "arguments": {"page_size": 1}}, id_=7,
                        extra=L.bearer(tok), path="/boldsign/us/mcp", timeout=20.0)
    return r, msg, sid


def main():
    L.require_bins()
    t = L.Checks()
    sbx = L.Sandbox(args=["--no-rate-limits", "--oauth-auto-approve"])
    br = None
    try:
        sbx.start()
        sbx.config(oauth_access_ttl_s=62)
        acct = sbx.account("boldsign", "us")
        app = acct["oauth"]
        L.remember("client secret", app["client_secret"])
        br = L.Bridge(sbx, config={"oauth": {"apps": {"boldsign/us": {
            "client_id": app["client_id"], "client_secret": app["client_secret"]}}}})
        br.start()
        port = br.port
        iss = "http://127.0.0.1:%d" % port
        state = {}

        def sign_in():
            c = L.register(port, [RU])
            verifier, challenge = L.pkce_pair()
            r = L.authorize(port, c["client_id"], RU, challenge, resource=iss + "/boldsign/us/mcp")
            req_id, csrf, cookie = L.consent_form(r)
            r1 = L.consent(port, req_id, csrf, cookie, "", region="us", action="provider")
            assert r1.status == 302, r1.describe()
            r3 = follow_provider(port, sbx, r1, cookie)
            loc, q = L.location_params(r3)
            assert loc.startswith(RU + "?") and q.get("code"), loc
            L.remember("authorization code", q["code"])
            tr, j = L.token(port, {"grant_type": "authorization_code", "code": q["code"],
                                   "code_verifier": verifier, "redirect_uri": RU,
                                   "client_id": c["client_id"], "resource": iss + "/boldsign/us/mcp"})
            assert tr.status == 200, tr.describe()
            state["tok"] = j["access_token"]
        t.check("provider sign-in (BoldSign, 62 s upstream tokens) gives signbridge tokens", sign_in)

        def first_call():
            seq = sbx.last_seq()
            r, msg, sid = calls(port, state["tok"])
            assert r.status == 200 and "result" in msg and not msg["result"].get("isError"), r.describe()
            state["sid"] = sid
            reqs = [x for x in sbx.requests(since=seq, provider="boldsign")
                    if x["path"].startswith("/v1/document/list")]
            assert reqs and all(x["auth_scheme"] == "bearer" for x in reqs), reqs
        t.check("a call works with the provider's bearer token upstream", first_call)

        def refreshed():
            time.sleep(3.0)
            seq = sbx.last_seq()
            r, msg, _ = calls(port, state["tok"], state["sid"])
            assert r.status == 200 and "result" in msg and not msg["result"].get("isError"), r.describe()
            log = sbx.requests(since=seq, provider="boldsign")
            tok = [x for x in log if x["path"].endswith("/connect/token")]
            assert tok, "no refresh at the provider's token endpoint: %s" % [x["path"] for x in log]
            assert "grant_type=refresh_token" in tok[0].get("body", ""), tok[0].get("body", "")[:80]
            state["token_route"] = tok[0]["path"]
            lists = [x for x in log if x["path"].startswith("/v1/document/list")]
            assert lists and lists[-1]["status"] == 200, lists
        t.check("near expiry, signbridge refreshes the upstream token and the call succeeds", refreshed)

        def refused_refresh_ends_grant():
            # the provider refuses every refresh from now on: the grant ends (401, sign in again)
            route = state.get("token_route", "/account/connect/token")
            sbx.add_fault(provider="boldsign", region="us", route=route, mode="error", status=400)
            time.sleep(3.0)
            deadline = time.monotonic() + 5
            while True:
                import sbtest
                r = request(port, "POST", "/boldsign/us/mcp",
                            sbtest.mcp_headers() + [("Authorization", "Bearer " + state["tok"])],
                            L.sbtest.INIT_BODY, timeout=20.0)
                if r.status == 401 or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
            assert r.status == 401, r.describe()
            assert 'invalid_token' in (r.header("www-authenticate") or ""), r.describe()
        t.check("a refresh the provider refuses ends the grant (401 invalid_token)",
                refused_refresh_ends_grant)

        def no_leak():
            hits = L.log_secret_hits(br.stderr_text())
            assert not hits, "secrets in the log: %s" % hits
        t.check("no secret in signbridge's log", no_leak)
    finally:
        if br:
            br.stop()
        sbx.stop()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
