"""auth-clients (issue 6): the real clients' redirect URIs and quirks work with signbridge's
authorization server: Claude (claude.ai and claude.com callbacks), ChatGPT (the stable
connector_platform_oauth_redirect and the per-connector connector/oauth/{id}), Claude Code and
other loopback clients (http://localhost:{port}/callback, any port at authorize time); ChatGPT's
re-authorization without `scope` gets the default scopes; a plain-http non-loopback redirect URI is
refused at registration; the code comes back with `state` and `iss` (RFC 9207).
"""

import os
import re
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import oauthlib_sb as L  # noqa: E402
from sbtest import request  # noqa: E402

REAL = [
    ("Claude (claude.ai)", "https://claude.ai/api/mcp/auth_callback", None),
    ("Claude (claude.com)", "https://claude.com/api/mcp/auth_callback", None),
    ("ChatGPT stable", "https://chatgpt.com/connector_platform_oauth_redirect", None),
    ("ChatGPT per-connector", "https://chatgpt.com/connector/oauth/c_8f2a1d", None),
    ("Claude Code loopback", "http://localhost:33418/callback", "http://localhost:54121/callback"),
]


def main():
    L.require_bins()
    t = L.Checks()
    sbx = L.Sandbox(args=["--no-rate-limits"])
    br = None
    try:
        sbx.start()
        key = L.remember("boldsign api key", sbx.key("boldsign", "us"))
        br = L.Bridge(sbx)
        br.start()
        port = br.port
        iss = "http://127.0.0.1:%d" % port

        for name, registered, used in REAL:
            def flow(registered=registered, used=used):
                c = L.register(port, [registered], name=name)
                ru = used or registered
                verifier, challenge = L.pkce_pair()
                r = L.authorize(port, c["client_id"], ru, challenge, scope=None,
                                resource=iss + "/mcp", state="st-1")
                req_id, csrf, cookie = L.consent_form(r)
                r2 = L.consent(port, req_id, csrf, cookie, key)
                assert r2.status == 302, r2.describe()
                loc, q = L.location_params(r2)
                assert loc.startswith(ru + "?"), loc
                assert q.get("state") == "st-1" and q.get("iss") == iss and q.get("code"), q
                L.remember("authorization code", q["code"])
                tr, j = L.token(port, {"grant_type": "authorization_code", "code": q["code"],
                                       "code_verifier": verifier, "redirect_uri": ru,
                                       "client_id": c["client_id"], "resource": iss + "/mcp"})
                assert tr.status == 200, tr.describe()
                # no scope asked (ChatGPT's re-authorization): both scopes by default
                assert j.get("scope") == "signbridge.read signbridge.write", j.get("scope")
                names = L.tools_list(port, j["access_token"])
                assert "send_document" in names and "list_documents" in names, names
            t.check("%s: %s registers, authorizes, gets code+state+iss and tokens" % (name, used or registered), flow)

        def http_refused():
            body = {"client_name": "bad", "redirect_uris": ["http://evil.example/cb"],
                    "token_endpoint_auth_method": "none"}
            r = request(port, "POST", "/register", [("Content-Type", "application/json")], body)
            assert r.status == 400 and r.json().get("error") == "invalid_redirect_uri", r.describe()
        t.check("a plain-http non-loopback redirect URI is refused at registration", http_refused)

        def wrong_path_loopback():
            c = L.register(port, ["http://localhost:33418/callback"])
            verifier, challenge = L.pkce_pair()
            r = L.authorize(port, c["client_id"], "http://localhost:33418/other", challenge)
            assert r.status == 400 and not r.header("location"), r.describe()
        t.check("a loopback redirect differing in path (not port) is refused", wrong_path_loopback)

        def verified_once():
            # each flow above sent initialize, initialized and tools/list with its token: the
            # signature is verified at the first, the later ones find it verified (sb_oauth.c,
            # tok_slot)
            r = request(port, "GET", "/metrics", [], None, timeout=10.0)
            assert r.status == 200, r.describe()
            got = dict(re.findall(r'^signbridge_oauth_token_checks_total\{result="(\w+)"\} (\d+)$',
                                  r.body.decode(), re.M))
            verified, cached = int(got.get("verified", -1)), int(got.get("cached", -1))
            assert verified == len(REAL) and cached == 2 * len(REAL), got
        t.check("each access token's signature is verified once, then found verified",
                verified_once)

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
