"""sandbox-ptoken: provider-token mode (src/auth/sb_ptoken.h) against the sandbox's BoldSign identity
server. Gets real RS256 access tokens through each region's OAuth flow (auto-approve, PKCE), then
feeds them to tests/sandbox/ptoken_driver (PTOKEN_DRIVER; configured with the us and eu issuers,
discovery and JWKS fetched with blocking libcurl) on stdin: the eu token maps to region eu, the us
token to us, a tampered token fails with a signature error, a ca token (an issuer not configured)
and a forged iss fail with an issuer error, a token whose iss was switched to another configured
issuer fails with an unknown kid (and marks that issuer for refresh). Tokens are never printed.
"""

import base64
import hashlib
import json
import os
import secrets
import subprocess
import urllib.parse

import sbxtest
from sbxtest import expect, form, jbody

REDIRECT = "http://127.0.0.1:9/sbx-test/callback"
DRIVER = os.environ.get("PTOKEN_DRIVER", "")


def pkce():
    verifier = secrets.token_urlsafe(48)[:64]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def access_token(sb, region):
    a = sb.account("boldsign", region)
    o = a["oauth"]
    v, c = pkce()
    r = sb.get(o["authorize_url"] + "?" + urllib.parse.urlencode(
        {"response_type": "code", "client_id": o["client_id"], "redirect_uri": REDIRECT, "state": "pt",
         "scope": "openid offline_access BoldSign.Documents.All", "code_challenge": c,
         "code_challenge_method": "S256"}))
    assert r.status in (302, 303), "authorize: %s" % r.describe()
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.header("Location", "")).query))
    h, body = form({"grant_type": "authorization_code", "code": q["code"], "redirect_uri": REDIRECT,
                    "code_verifier": v, "client_id": o["client_id"], "client_secret": o["client_secret"]})
    t = jbody(expect(sb.post(o["token_url"], h, body), 200, "token"))
    return t["access_token"], o["client_id"]


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def unb64(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def with_payload(tok, fn):
    h, p, s = tok.split(".")
    claims = json.loads(unb64(p))
    fn(claims)
    return ".".join([h, b64(json.dumps(claims, separators=(",", ":")).encode()), s])


def main(checks, sb):
    if not DRIVER or not os.access(DRIVER, os.X_OK):
        checks.fail("setup", "PTOKEN_DRIVER unset or not executable (%r)" % DRIVER)
        return
    sb.config(oauth_auto_approve=True, rate_limit_overrides={"boldsign": 100000})
    eu, eu_cid = access_token(sb, "eu")
    us, us_cid = access_token(sb, "us")
    ca, _ = access_token(sb, "ca")
    checks.check("BoldSign access tokens are three-part JWTs",
                 lambda: all(t.count(".") == 2 for t in (eu, us, ca)) or (_ for _ in ()).throw(AssertionError("not JWTs")))

    flipped = list(eu)
    i = eu.rindex(".") + 10
    flipped[i] = "A" if flipped[i] != "A" else "B"
    flipped = "".join(flipped)
    lines = [
        ("eu token -> boldsign eu", eu, "OK boldsign eu " + eu_cid),
        ("us token -> boldsign us", us, "OK boldsign us " + us_cid),
        ("tampered signature -> signature error", flipped, "ERR -4 signature"),
        ("tampered payload (sub changed) -> signature error", with_payload(eu, lambda c: c.update(sub="admin")), "ERR -4 signature"),
        ("ca token (issuer not configured) -> issuer error", ca, "ERR -7 issuer"),
        ("forged iss -> issuer error", with_payload(eu, lambda c: c.update(iss="https://evil.example/account")), "ERR -7 issuer"),
        # each region signs with its own key: the eu kid is unknown among the us keys
        ("eu token relabelled with the us issuer -> unknown kid", with_payload(eu, lambda c: c.update(iss=c["iss"].replace("/eu/", "/us/"))), "ERR -3 kid"),
        ("garbage -> refused", "not-a-token", "ERR -7 issuer"),
    ]
    proc = subprocess.run([DRIVER, sb.origin, "us", "eu"], input="\n".join(t for _, t, _ in lines) + "\nrefresh\nrefresh\n",
                          capture_output=True, text=True, timeout=60)
    out = proc.stdout.splitlines()
    checks.check("driver exits 0 and refreshed both issuers (4 fetches)",
                 lambda: (proc.returncode == 0 and out and out[0] == "refresh 0 fetches 4")
                 or (_ for _ in ()).throw(AssertionError("rc %r, first line %r, stderr %s" % (proc.returncode, out[:1], proc.stderr[-500:]))))
    for n, (name, tok, want) in enumerate(lines):
        got = out[n + 1] if len(out) > n + 1 else "(no line)"

        def chk(got=got, want=want, tok=tok):
            assert tok not in got, "token echoed"
            assert got == want or (want == "ERR" and got.startswith("ERR ")), "got %r, want %r" % (got, want)
        checks.check(name, chk)
    checks.check("the unknown kid marked the us issuer: the next refresh refetches it (2 fetches)",
                 lambda: (out[-2] == "refresh 0 fetches 2") or (_ for _ in ()).throw(AssertionError(out[-2:])))
    checks.check("then, keys fresh and no new mark within 30 s, a refresh fetches nothing",
                 lambda: (out[-1] == "refresh 0 fetches 0") or (_ for _ in ()).throw(AssertionError(out[-1:])))
    checks.check("no token in the driver's output",
                 lambda: all(t not in proc.stdout + proc.stderr for t in (eu, us, ca)) or (_ for _ in ()).throw(AssertionError("token leaked")))


if __name__ == "__main__":
    sbxtest.run(main)
