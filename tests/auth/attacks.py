"""auth-attacks: signbridge's OAuth 2.1 server refuses each attack with the right error, and its log
never holds a secret the test handled.

One sandbox (--no-rate-limits) and one signbridge whose oauth.signing_key_files is an RSA key this
test generated with openssl, so the test can mint tokens with any claim (expired, wrong aud/iss,
another route) next to the ones the server issues.
"""

import base64
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oauthlib_sb as L  # noqa: E402
from oauthlib_sb import request, short  # noqa: E402

RU = "http://127.0.0.1:9/cb"


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_parts(tok):
    h, c, _ = tok.split(".")
    return json.loads(b64d(h)), json.loads(b64d(c))


def assert_401_invalid_token(br, tok, path="/mcp", what="token"):
    r = L.mcp_init(br.port, tok, path=path)
    assert r.status == 401, "%s at %s: expected 401, got %s" % (what, path, r.describe())
    www = r.header("www-authenticate") or ""
    assert www.startswith("Bearer "), "%s: WWW-Authenticate not Bearer: %r" % (what, www)
    p = L.www_params(www)
    want = "http://127.0.0.1:%d/.well-known/oauth-protected-resource%s" % (br.port, path)
    assert p.get("resource_metadata") == want, "%s: resource_metadata %r != %r" % (
        what, p.get("resource_metadata"), want)
    assert p.get("error") == "invalid_token", "%s: error=%r in %r" % (what, p.get("error"), www)
    return r


def assert_accepted(br, tok, path="/mcp", what="token"):
    r = L.mcp_init(br.port, tok, path=path)
    assert r.status == 200, "%s at %s: expected 200, got %s" % (what, path, r.describe())


def eventually_401(br, tok, what, limit=1.6):
    deadline = time.monotonic() + limit
    while True:
        r = L.mcp_init(br.port, tok)
        if r.status == 401 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return assert_401_invalid_token(br, tok, what=what)


def oauth_err(r, j, status, err, what):
    assert r.status == status and isinstance(j, dict) and j.get("error") == err, \
        "%s: expected %d %s, got %s" % (what, status, err, r.describe())


def main():
    L.require_bins()
    t = L.Checks()
    sbx = L.Sandbox(args=["--no-rate-limits"])
    br = None
    listener = None
    try:
        sbx.start()
        key = L.remember("boldsign api key", sbx.key("boldsign", "us"))
        kp = L.gen_rsa_key(os.path.join(sbx.dir, "signing.pem"))
        br = L.Bridge(sbx, config={"oauth": {"signing_key_files": [kp]}})
        br.start()
        port = br.port
        iss = "http://127.0.0.1:%d" % port

        # -- unauthenticated initialize
        def unauth():
            body = json.loads(json.dumps(L.sbtest.INIT_BODY))
            r = request(port, "POST", "/mcp", L.sbtest.mcp_headers(), body)
            assert r.status == 401, r.describe()
            www = r.header("www-authenticate") or ""
            p = L.www_params(www)
            assert www.startswith("Bearer "), www
            assert p.get("resource_metadata") == iss + "/.well-known/oauth-protected-resource/mcp", www
            assert "signbridge.read" in p.get("scope", ""), "no scope in %r" % www
            assert "error" not in p, "no-credential 401 should carry no error: %r" % www
        t.check("unauthenticated initialize: 401 with resource_metadata and scope", unauth)

        client = L.register(port, [RU])
        cid = client["client_id"]

        # -- PKCE missing / plain
        def pkce_missing():
            r = L.authorize(port, cid, RU, "x", drop=("code_challenge", "code_challenge_method"))
            assert r.status in (302, 303), r.describe()
            loc, q = L.location_params(r)
            assert loc.startswith(RU + "?"), loc
            assert q.get("error") == "invalid_request" and q.get("state") == "st-1", q
            assert "code" not in q, q
        t.check("authorize without code_challenge -> redirect error=invalid_request", pkce_missing)

        def pkce_plain():
            v, _ = L.pkce_pair()
            r = L.authorize(port, cid, RU, v, method="plain")
            assert r.status in (302, 303), r.describe()
            loc, q = L.location_params(r)
            assert loc.startswith(RU + "?") and q.get("error") == "invalid_request", loc
            assert "code" not in q, q
        t.check("authorize with code_challenge_method=plain -> invalid_request", pkce_plain)

        # -- wrong verifier
        def wrong_verifier():
            g = L.get_code(port, key, client=client)
            bad, _ = L.pkce_pair()
            g2 = dict(g, verifier=bad)
            r, j = L.redeem(port, g2)
            oauth_err(r, j, 400, "invalid_grant", "wrong code_verifier")
            assert "access_token" not in j
            # the right verifier cannot redeem it afterwards either (the code is burnt)
            r, j = L.redeem(port, g)
            oauth_err(r, j, 400, "invalid_grant", "code after a failed PKCE check")
        t.check("wrong code_verifier -> invalid_grant", wrong_verifier)

        # -- redirect mismatch
        def redirect_mismatch():
            _, ch = L.pkce_pair()
            for other in ("http://127.0.0.1:9/other", "https://evil.example/cb",
                          RU + "?x=1", RU + "/"):
                r = L.authorize(port, cid, other, ch)
                assert r.status == 400, "%s: %s" % (other, r.describe())
                assert "text/html" in (r.header("content-type") or ""), r.describe()
                assert r.header("location") is None, "redirected: %s" % r.describe()
        t.check("redirect_uri mismatch -> 400 HTML page, no redirect", redirect_mismatch)

        # -- code used twice
        def code_twice():
            g = L.get_code(port, key, client=client)
            r, j1 = L.redeem(port, g)
            assert r.status == 200 and j1.get("access_token"), r.describe()
            assert_accepted(br, j1["access_token"], what="first-use access token")
            r, j2 = L.redeem(port, g)
            oauth_err(r, j2, 400, "invalid_grant", "second use of the code")
            eventually_401(br, j1["access_token"], "access token of a replayed code")
            r, j3 = L.refresh(port, cid, j1["refresh_token"])
            oauth_err(r, j3, 400, "invalid_grant", "refresh token of a replayed code")
        t.check("code used twice -> invalid_grant, and its tokens revoked", code_twice)

        # -- refresh token used twice
        def refresh_twice():
            tk = L.obtain_tokens(port, key, client=client)
            r, j1 = L.refresh(port, cid, tk["refresh_token"])
            assert r.status == 200 and j1.get("refresh_token") and j1.get("access_token"), \
                r.describe()
            assert j1["refresh_token"] != tk["refresh_token"], "refresh token not rotated"
            assert_accepted(br, j1["access_token"], what="refreshed access token")
            r, j2 = L.refresh(port, cid, tk["refresh_token"])
            oauth_err(r, j2, 400, "invalid_grant", "second use of a refresh token")
            r, j3 = L.refresh(port, cid, j1["refresh_token"])
            oauth_err(r, j3, 400, "invalid_grant", "newest refresh token of a revoked family")
            eventually_401(br, j1["access_token"], "access token of a revoked family")
            eventually_401(br, tk["access_token"], "first access token of a revoked family")
        t.check("refresh token used twice -> invalid_grant, family revoked", refresh_twice)

        # -- tokens for minting: a live grant and its claims
        base = L.obtain_tokens(port, key, client=client)
        hdr0, cl0 = jwt_parts(base["access_token"])
        jwks = request(port, "GET", "/jwks.json").json()

        def header_checks():
            assert hdr0.get("alg") == "RS256" and hdr0.get("typ") == "at+jwt" and hdr0.get("kid"), hdr0
            assert hdr0["kid"] in [k.get("kid") for k in jwks.get("keys", [])], "kid not in JWKS"
            assert cl0.get("iss") == iss and cl0.get("aud") == iss + "/mcp", cl0
        t.check("issued access token: RS256, typ at+jwt, kid in /jwks.json, iss and aud", header_checks)

        def mint(**over):
            now = int(time.time())
            c = dict(cl0, iat=now, nbf=now, exp=now + 600, jti=L.b64url(os.urandom(12)))
            hdr = dict(hdr0)
            hdr.update(over.pop("_hdr", {}))
            alg = over.pop("_sign", "RS256")
            hk = over.pop("_hmac", None)
            for k, v in over.items():
                if v is None:
                    c.pop(k, None)
                else:
                    c[k] = v
            return L.remember("minted token", L.mint_jwt(kp, hdr, c, alg, hk))

        t.check("minted control token (test's signing key) is accepted",
                lambda: assert_accepted(br, mint(), what="control"))

        def alg_none():
            tok = mint(_hdr={"alg": "none"}, _sign="none")
            assert_401_invalid_token(br, tok, what="alg none")
            assert_401_invalid_token(br, tok.rsplit(".", 1)[0] + ".", what="alg none, no sig")
            assert_401_invalid_token(br, mint(_hdr={"alg": "none", "kid": None}, _sign="none"),
                                     what="alg none without kid")
        t.check("alg none -> 401 invalid_token", alg_none)

        def hs256_pubkey():
            jwk = [k for k in jwks["keys"] if k.get("kid") == hdr0["kid"]][0]
            pem = L.jwk_to_pem(jwk)
            with open(kp + ".pub", "w") as f:
                f.write(pem)
            import subprocess
            p = subprocess.run(["openssl", "pkey", "-pubin", "-in", kp + ".pub", "-noout"],
                               capture_output=True)
            assert p.returncode == 0, "hand-built PEM does not parse: %r" % p.stderr
            for variant in (pem.encode(), pem.strip().encode(), b64d(jwk["n"])):
                tok = mint(_hdr={"alg": "HS256"}, _sign="HS256", _hmac=variant)
                assert_401_invalid_token(br, tok, what="HS256 with the public key")
        t.check("HS256 signed with the RSA public key -> 401 invalid_token", hs256_pubkey)

        now = int(time.time())
        t.check("expired token -> 401 invalid_token", lambda: assert_401_invalid_token(
            br, mint(iat=now - 7200, nbf=now - 7200, exp=now - 3600), what="expired"))
        t.check("expired just beyond leeway -> 401", lambda: assert_401_invalid_token(
            br, mint(iat=now - 7200, nbf=now - 7200, exp=now - 120), what="expired 120 s"))
        t.check("token without exp -> 401", lambda: assert_401_invalid_token(
            br, mint(exp=None), what="no exp"))
        t.check("wrong aud -> 401 invalid_token", lambda: assert_401_invalid_token(
            br, mint(aud="https://other.example/mcp"), what="wrong aud"))
        t.check("aud of another port -> 401", lambda: assert_401_invalid_token(
            br, mint(aud="http://127.0.0.1:%d/mcp" % (port + 1)), what="aud other port"))
        t.check("wrong iss -> 401 invalid_token", lambda: assert_401_invalid_token(
            br, mint(iss="https://evil.example"), what="wrong iss"))
        t.check("typ JWT (not at+jwt) -> 401", lambda: assert_401_invalid_token(
            br, mint(_hdr={"typ": "JWT"}), what="typ JWT"))
        t.check("signature of another key -> 401", lambda: assert_401_invalid_token(
            br, L.mint_jwt(L.gen_rsa_key(kp + ".other"), hdr0, dict(cl0)), what="other key"))
        t.check("unknown gid -> 401", lambda: assert_401_invalid_token(
            br, mint(gid="g_AAAAAAAAAAAAAAAAAAAAAAAA", sub="g_AAAAAAAAAAAAAAAAAAAAAAAA"),
            what="unknown gid"))

        # -- a token for another route
        def other_route():
            tk = L.obtain_tokens(port, key, client=client, route="/boldsign/mcp")
            assert jwt_parts(tk["access_token"])[1]["aud"] == iss + "/boldsign/mcp"
            assert_accepted(br, tk["access_token"], path="/boldsign/mcp", what="route token")
            assert_401_invalid_token(br, tk["access_token"], path="/dropboxsign/mcp",
                                     what="/boldsign/mcp token at /dropboxsign/mcp")
            assert_401_invalid_token(br, tk["access_token"], path="/boldsign/eu/mcp",
                                     what="/boldsign/mcp token at /boldsign/eu/mcp")
            # minted: aud of /dropboxsign/mcp for a boldsign grant -> refused (other provider)
            assert_401_invalid_token(br, mint(aud=iss + "/dropboxsign/mcp"),
                                     path="/dropboxsign/mcp", what="boldsign grant minted for dropboxsign")
            assert_401_invalid_token(br, base["access_token"], path="/dropboxsign/mcp",
                                     what="/mcp token at /dropboxsign/mcp")
        t.check("token for /boldsign/mcp used at /dropboxsign/mcp -> 401", other_route)

        # -- scope widened at refresh
        def widen():
            tk = L.obtain_tokens(port, key, client=client, scope="signbridge.read")
            assert tk.get("scope") == "signbridge.read", tk.get("scope")
            r, j = L.refresh(port, cid, tk["refresh_token"], scope="signbridge.write")
            oauth_err(r, j, 400, "invalid_scope", "scope widened at refresh")
            r, j = L.refresh(port, cid, tk["refresh_token"],
                             scope="signbridge.read signbridge.write")
            oauth_err(r, j, 400, "invalid_scope", "scope widened at refresh (both)")
            # narrowing / same scope still works: the refusal did not burn the token
            r, j = L.refresh(port, cid, tk["refresh_token"], scope="signbridge.read")
            assert r.status == 200 and j.get("scope") == "signbridge.read", r.describe()
        t.check("scope widened at refresh -> invalid_scope", widen)

        # -- CSRF
        def csrf():
            _, ch = L.pkce_pair()
            r = L.authorize(port, cid, RU, ch, resource=iss + "/mcp")
            req_id, tokn, cookie = L.consent_form(r)
            r1 = L.consent(port, req_id, None, cookie, key)
            assert r1.status == 403, "no csrf_token: %s" % r1.describe()
            assert r1.header("location") is None
            r2 = L.consent(port, req_id, tokn, None, key)
            assert r2.status == 403, "no cookie: %s" % r2.describe()
            r3 = L.consent(port, req_id, tokn, "sb_consent=" + "A" * 40, key)
            assert r3.status == 403, "wrong cookie: %s" % r3.describe()
            r4 = L.consent(port, req_id, tokn[:-2] + ("AA" if tokn[-2:] != "AA" else "BB"),
                           cookie, key)
            assert r4.status == 403, "wrong csrf: %s" % r4.describe()
            r5 = L.consent(port, req_id, tokn, cookie, key)
            assert r5.status == 302 and "code=" in (r5.header("location") or ""), \
                "the genuine form after the refusals: %s" % r5.describe()
            L.remember("code", L.location_params(r5)[1].get("code"))
        t.check("consent without CSRF token / cookie -> 403", csrf)

        # -- CIMD URLs resolving to private addresses: 400, nothing fetched
        hits = []
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        lport = listener.getsockname()[1]
        stop = threading.Event()

        def accept_loop():
            listener.settimeout(0.2)
            while not stop.is_set():
                try:
                    c, _ = listener.accept()
                    hits.append(1)
                    c.close()
                except OSError:
                    pass
        th = threading.Thread(target=accept_loop, daemon=True)
        th.start()

        def cimd():
            _, ch = L.pkce_pair()
            for u in ("https://127.0.0.1/cimd.json", "https://127.0.0.1:%d/cimd.json" % lport,
                      "https://169.254.169.254/latest/cimd", "https://10.1.2.3/c.json",
                      "https://localhost:%d/c.json" % lport, "https://[::1]:%d/c.json" % lport,
                      "http://127.0.0.1:%d/c.json" % lport):
                t0 = time.monotonic()
                r = L.authorize(port, u, "https://app.example/cb", ch)
                assert r.status == 400, "%s: %s" % (u, r.describe())
                assert "text/html" in (r.header("content-type") or ""), r.describe()
                assert r.header("location") is None, r.describe()
                assert time.monotonic() - t0 < 5, "%s took %.1fs (a connection attempt?)" % (
                    u, time.monotonic() - t0)
            time.sleep(0.3)
            assert not hits, "signbridge connected to the test listener %d time(s)" % len(hits)
        t.check("CIMD client_id on loopback / link-local / 10/8 -> 400, nothing fetched", cimd)
        stop.set()

        # -- the log: refusals logged, no secret
        time.sleep(0.3)
        rc = br.stop()
        t.check("signbridge exits 0 on SIGTERM", lambda: _eq(rc, 0, "exit code"))
        log = br.stderr_text()

        def logged():
            for needle in ('"oauth_token_refused"', '"invalid_grant"', '"oauth_grant_revoked"',
                           '"oauth_consent_refused"', '"oauth_authorize_refused"',
                           '"oauth_token_rejected"', '"invalid_scope"'):
                assert needle in log, "log lacks %s" % needle
            for line in log.splitlines():
                if line.strip():
                    json.loads(line)
        t.check("refusals are logged (JSON lines)", logged)

        def no_secrets():
            secrets = L.uptest.secrets_of(sbx, br, extra=L.SECRETS)
            assert len(secrets) > 20, "too few secrets collected (%d)" % len(secrets)
            found = L.log_secret_hits(log) + L.uptest.find_secrets(log, secrets)
            assert not found, "secrets in signbridge's log: %s" % sorted(set(found))[:10]
        t.check("no secret the test handled appears in signbridge's log", no_secrets)
        crash = br.crash_report()
        t.check("no sanitizer report", lambda: _eq(crash, None, "crash report"))
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        t.fail("setup", "%s: %s" % (type(e).__name__, e))
    finally:
        if listener is not None:
            listener.close()
        if br is not None:
            br.kill()
            if t.failed:
                sys.stdout.write("--- signbridge log tail ---\n%s\n" % short(br.stderr_text()[-3000:], 3000))
        sbx.kill()
    return t.finish()


def _eq(a, b, what):
    assert a == b, "%s: %r != %r" % (what, a, b)


if __name__ == "__main__":
    sys.exit(main())
