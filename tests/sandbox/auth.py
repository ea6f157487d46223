"""sandbox-auth: region isolation, each provider's credential convention, and each provider's OAuth
flow end to end by plain HTTP.

Credentials: a BoldSign key works in its own region and gets 401 with an EMPTY body in every other
region (and with no or an unknown key); Dropbox Sign needs Basic (no credential -> 401 with the
Dropbox error body "Unauthorized user. No credentials supplied."; X-API-Key alone -> 401); iinked
needs the `api_key` header (X-API-Key -> 401) and a key works only on its own host (region or
private instance; an unknown instance is 404).

OAuth, by plain HTTP: GET the authorize page (an HTML form), POST it back, follow the 302 to a
loopback redirect URI nobody listens on, read the code, exchange it at the token endpoint, call a
REST endpoint with the Bearer token, refresh. BoldSign: PKCE required, discovery + JWKS, the eu
token refused in us, refresh-token rotation with reuse refused (and the family revoked). Dropbox
Sign: client secret required, no PKCE, state echoed. iinked: optional PKCE, rotating refresh
tokens, token bound to its host. Then the same with POST /_sandbox/config {"oauth_auto_approve":
true} and with --oauth-auto-approve (the authorize GET redirects at once).
"""

import base64
import hashlib
import html.parser
import json
import secrets
import urllib.parse

import sbxtest
from sbxtest import Sandbox, basic, bearer, bold_auth, expect, form, iinked_auth, jbody, stop_and_check

REDIRECT = "http://127.0.0.1:9/sbx-test/callback"  # loopback, nothing listens there


# ---- credential conventions and region isolation ---------------------------------------------

def isolation(checks, sb):
    regions = ["us", "eu", "ca", "au"]
    keys = {r: sb.account("boldsign", r) for r in regions}

    def bold_own_and_foreign():
        bad = []
        for kr in regions:
            for rr in regions:
                url = keys[rr]["base_url"] + "/v1/brand/list"
                r = sb.get(url, bold_auth(keys[kr]["api_key"]))
                if kr == rr:
                    if r.status != 200:
                        bad.append("%s key in %s: %s" % (kr, rr, r.describe()))
                elif r.status != 401 or r.body != b"":
                    bad.append("%s key in %s should be 401 with an empty body: %s" % (kr, rr, r.describe()))
        assert not bad, "; ".join(bad)
    checks.check("BoldSign: each region's key works in its own region, 401 with an empty body in the other three",
                 bold_own_and_foreign)

    def bold_conventions():
        us = keys["us"]
        url = us["base_url"] + "/v1/document/list?Page=1&PageSize=5"
        expect(sb.get(url, [("x-api-key", us["api_key"])]), 200, "header name in lower case")
        for h, what in (([], "no credential"), (bold_auth("not-a-key"), "an unknown key"),
                        (basic(us["api_key"]), "the key as Basic"), (iinked_auth(us["api_key"]), "the key as api_key"),
                        (bearer(us["api_key"]), "the key as a Bearer token")):
            r = sb.get(url, h)
            assert r.status == 401 and r.body == b"", "%s should be 401 with an empty body: %s" % (what, r.describe())
    checks.check("BoldSign: X-API-KEY any case; no credential, unknown key, Basic, api_key, key-as-Bearer -> 401 empty",
                 bold_conventions)

    def dbx():
        a = sb.account("dropboxsign", "global")
        url = a["base_url"] + "/account"
        expect(sb.get(url, basic(a["api_key"])), 200, "Basic base64(key:)")
        r = sb.get(url)
        assert r.status == 401, r.describe()
        assert jbody(r) == {"error": {"error_msg": "Unauthorized user. No credentials supplied.",
                                      "error_name": "unauthorized"}}, "no credentials body: %s" % r.describe()
        r = sb.get(url, [("X-API-Key", a["api_key"])])
        assert r.status == 401 and jbody(r)["error"]["error_name"] == "unauthorized", \
            "X-API-Key alone is not Dropbox's convention: %s" % r.describe()
        r = sb.get(url, basic("0" * 64))
        assert r.status == 401 and jbody(r)["error"]["error_name"] == "unauthorized", r.describe()
        assert "api key" in jbody(r)["error"]["error_msg"].lower(), "wrong key message: %s" % r.describe()
        r = sb.get(url, iinked_auth(a["api_key"]))
        assert r.status == 401, "api_key header: %s" % r.describe()
    checks.check("Dropbox Sign: Basic works; none -> 401 \"No credentials supplied\"; X-API-Key, wrong key, api_key -> 401 error body",
                 dbx)

    def ik():
        us = sb.account("iinkedsign", "us")
        ca = sb.account("iinkedsign", "ca")
        body = {"take": 1}
        expect(sb.post(us["base_url"] + "/packages/list", iinked_auth(us["api_key"]), body), 200, "api_key header")
        r = sb.post(us["base_url"] + "/packages/list", [("X-API-Key", us["api_key"])], body)
        assert r.status == 401, "X-API-Key instead of api_key should be 401: %s" % r.describe()
        r = sb.post(us["base_url"] + "/packages/list", [], body)
        assert r.status == 401, "no credential: %s" % r.describe()
        r = sb.post(ca["base_url"] + "/packages/list", iinked_auth(us["api_key"]), body)
        assert r.status == 401, "a us key on ca should be 401: %s" % r.describe()
        expect(sb.post(ca["base_url"] + "/packages/list", iinked_auth(ca["api_key"]), body), 200, "ca key on ca")
        for reg in ("eu", "sandbox-us", "sandbox-eu"):
            a = sb.account("iinkedsign", reg)
            expect(sb.post(a["base_url"] + "/packages/list", iinked_auth(a["api_key"]), body), 200, "%s key on %s" % (reg, reg))
            r = sb.post(a["base_url"] + "/packages/list", iinked_auth(us["api_key"]), body)
            assert r.status == 401, "us key on %s: %s" % (reg, r.describe())
    checks.check("iinked: api_key works on its own region; X-API-Key or no key -> 401; a key on another region -> 401",
                 ik)

    def ik_private():
        acme = sb.account("iinkedsign", "private", instance="acme")
        us = sb.account("iinkedsign", "us")
        assert sb.path(acme["base_url"]).startswith("/iinkedsign/private/acme/api/v1"), acme["base_url"]
        expect(sb.post(acme["base_url"] + "/packages/list", iinked_auth(acme["api_key"]), {}), 200, "acme key on acme")
        r = sb.post(acme["base_url"] + "/packages/list", iinked_auth(us["api_key"]), {})
        assert r.status == 401, "us key on the private instance: %s" % r.describe()
        r = sb.post(us["base_url"] + "/packages/list", iinked_auth(acme["api_key"]), {})
        assert r.status == 401, "acme key on us: %s" % r.describe()
        other = acme["base_url"].replace("/private/acme/", "/private/globex/")
        r = sb.post(other + "/packages/list", iinked_auth(acme["api_key"]), {})
        assert r.status == 404, "unknown private instance should be 404: %s" % r.describe()
    checks.check("iinked private instance: /private/acme key works there only; unknown instance 404", ik_private)


# ---- OAuth by plain HTTP --------------------------------------------------------------------------

class FormParser(html.parser.HTMLParser):
    """The first <form>: action, method, inputs (name -> (type, value)), submit buttons."""

    def __init__(self):
        super().__init__()
        self.form = None
        self.done = False
        self.inputs = []
        self.buttons = []
        self._button = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if self.done:
            return
        if tag == "form" and self.form is None:
            self.form = a
        elif self.form is not None and tag == "input":
            t = (a.get("type") or "text").lower()
            if t == "submit":
                self.buttons.append((a.get("name"), a.get("value") or "", a.get("value") or ""))
            elif a.get("name"):
                self.inputs.append((a["name"], t, a.get("value") or ""))
        elif self.form is not None and tag == "button":
            self._button = [a.get("name"), a.get("value") or "", ""]

    def handle_data(self, data):
        if self._button is not None:
            self._button[2] += data

    def handle_endtag(self, tag):
        if tag == "button" and self._button is not None:
            self.buttons.append(tuple(self._button))
            self._button = None
        if tag == "form" and self.form is not None:
            self.done = True


def parse_form(resp):
    assert resp.status == 200, "authorize page: %s" % resp.describe()
    ctype = resp.header("Content-Type", "")
    assert ctype.startswith("text/html"), "authorize page Content-Type %r" % ctype
    p = FormParser()
    p.feed(resp.text())
    assert p.form is not None, "no <form> in the authorize page: %s" % resp.text()[:400]
    assert p.buttons, "no submit buttons in the form"
    return p


def submit_form(sb, page_url, p, user, approve=True):
    """POST the authorize form back: user's email/password filled in, Approve (or Deny) pressed."""
    fields = []
    for name, typ, value in p.inputs:
        low = name.lower()
        if typ == "password" or "password" in low:
            value = user["password"]
        elif typ == "email" or low in ("email", "username", "user", "login", "email_address"):
            value = user["email"]
        if typ in ("checkbox", "radio") and not value:
            continue
        fields.append((name, value))
    want = ("approve", "allow", "accept", "authorize", "yes", "consent") if approve else \
        ("deny", "cancel", "reject", "decline", "no")
    btn = None
    for name, value, text in p.buttons:
        label = (value + " " + text + " " + (name or "")).lower()
        if any(w in label for w in want):
            btn = (name, value)
            break
    assert btn, "no %s button among %s" % ("approve" if approve else "deny", p.buttons)
    if btn[0]:
        fields.append(btn)
    action = p.form.get("action") or page_url
    action = urllib.parse.urljoin(page_url, action)
    method = (p.form.get("method") or "post").upper()
    h, body = form(fields)
    if method == "GET":
        return sb.get(action + ("&" if "?" in action else "?") + body)
    return sb.post(action, h, body)


def redirect_params(resp):
    """The query of a 302 to our loopback redirect URI, as a dict."""
    assert resp.status in (302, 303), "expected a redirect: %s" % resp.describe()
    loc = resp.header("Location", "")
    assert loc.startswith(REDIRECT), "redirected to %r, not to the loopback redirect URI" % loc
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))


def pkce():
    verifier = secrets.token_urlsafe(48)[:64]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def token(sb, url, fields, headers=None):
    h, body = form(fields)
    return sb.post(url, h + list(headers or []), body)


def authorize_by_form(sb, oauth, params, approve=True):
    url = oauth["authorize_url"] + "?" + urllib.parse.urlencode(params)
    page = sb.get(url)
    p = parse_form(page)
    return submit_form(sb, url, p, oauth["user"], approve)


def boldsign_oauth(checks, sb):
    eu = sb.account("boldsign", "eu")
    us = sb.account("boldsign", "us")
    o = eu["oauth"]
    st = {}

    def discovery():
        url = o.get("discovery_url") or eu["base_url"] + "/account/.well-known/openid-configuration"
        d = jbody(expect(sb.get(url), 200, "discovery"))
        assert d["issuer"].endswith("/boldsign/eu/account"), "issuer %r" % d["issuer"]
        for k in ("authorization_endpoint", "token_endpoint", "jwks_uri", "revocation_endpoint", "userinfo_endpoint"):
            assert isinstance(d.get(k), str) and d[k].startswith(sb.origin + "/boldsign/eu/account"), "%s: %r" % (k, d.get(k))
        assert "S256" in d.get("code_challenge_methods_supported", []), d.get("code_challenge_methods_supported")
        assert any(s.startswith("BoldSign.Documents") for s in d.get("scopes_supported", [])), d.get("scopes_supported")
        jwks = jbody(expect(sb.get(d["jwks_uri"]), 200, "jwks"))
        assert jwks["keys"] and all(k.get("kty") == "RSA" and k.get("kid") and k.get("n") and k.get("e") for k in jwks["keys"]), jwks
        st["disc"] = d
    checks.check("BoldSign OAuth: eu discovery (issuer, endpoints, S256, BoldSign.* scopes) and JWKS (RSA, kid)", discovery)

    scope = "openid profile email offline_access BoldSign.Documents.All BoldSign.Templates.All"

    def pkce_required():
        r = sb.get(o["authorize_url"] + "?" + urllib.parse.urlencode(
            {"response_type": "code", "client_id": o["client_id"], "redirect_uri": REDIRECT, "scope": scope,
             "state": "s1"}))
        if r.status in (302, 303):
            q = redirect_params(r)
            assert q.get("error") == "invalid_request" and "code" not in q, "without PKCE: %s" % q
        else:
            assert r.status == 400, "authorize without code_challenge should be refused: %s" % r.describe()
    checks.check("BoldSign OAuth: authorize without PKCE is refused (invalid_request)", pkce_required)

    def deny():
        v, c = pkce()
        r = authorize_by_form(sb, o, {"response_type": "code", "client_id": o["client_id"], "redirect_uri": REDIRECT,
                                      "scope": scope, "state": "deny-1", "code_challenge": c,
                                      "code_challenge_method": "S256"}, approve=False)
        q = redirect_params(r)
        assert q.get("error") == "access_denied" and q.get("state") == "deny-1" and "code" not in q, q
    checks.check("BoldSign OAuth: Deny on the form -> 302 with error=access_denied and the state", deny)

    def flow():
        v, c = pkce()
        r = authorize_by_form(sb, o, {"response_type": "code", "client_id": o["client_id"], "redirect_uri": REDIRECT,
                                      "scope": scope, "state": "st-42", "code_challenge": c,
                                      "code_challenge_method": "S256"})
        q = redirect_params(r)
        assert q.get("state") == "st-42" and q.get("code"), "redirect query: %s" % q
        code = q["code"]
        # wrong verifier first? No: a failed exchange may burn the code; use the right one.
        t = token(sb, o["token_url"], {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                       "code_verifier": v, "client_id": o["client_id"],
                                       "client_secret": o["client_secret"]})
        tj = jbody(expect(t, 200, "token exchange"))
        assert tj.get("token_type", "").lower() == "bearer" and tj.get("access_token") and tj.get("refresh_token"), tj
        assert isinstance(tj.get("expires_in"), int) and 0 < tj["expires_in"] <= 3600, tj
        parts = tj["access_token"].split(".")
        assert len(parts) == 3, "access token is not a JWT"
        hdr = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        assert hdr.get("alg") == "RS256" and hdr.get("kid"), hdr
        assert claims.get("iss") == st.get("disc", {}).get("issuer", claims.get("iss")), claims
        assert claims.get("client_id") == o["client_id"] and claims.get("exp", 0) > claims.get("iat", 0), claims
        st["tok"] = tj
    checks.check("BoldSign OAuth: form login+consent -> 302 code+state -> token (RS256 JWT with kid, iss, client_id, exp)",
                 flow)

    def code_single_use():
        v, c = pkce()
        q = redirect_params(authorize_by_form(sb, o, {"response_type": "code", "client_id": o["client_id"],
                                                      "redirect_uri": REDIRECT, "scope": scope, "state": "u",
                                                      "code_challenge": c, "code_challenge_method": "S256"}))
        fields = {"grant_type": "authorization_code", "code": q["code"], "redirect_uri": REDIRECT, "code_verifier": v,
                  "client_id": o["client_id"], "client_secret": o["client_secret"]}
        first = jbody(expect(token(sb, o["token_url"], fields), 200, "first exchange"))
        again = token(sb, o["token_url"], fields)
        assert again.status == 400 and jbody(again).get("error") == "invalid_grant", "code reuse: %s" % again.describe()
        # RFC 6749 4.1.2: on a reused code the server SHOULD revoke the tokens issued for it.
        r = sb.get(eu["base_url"] + "/v1/brand/list", bearer(first["access_token"]))
        assert r.status == 401, "the token of a replayed code should be revoked: %s" % r.describe()
    checks.check("BoldSign OAuth: a code is single-use (invalid_grant) and its replay revokes the tokens issued for it",
                 code_single_use)

    def bad_verifier():
        v, c = pkce()
        q = redirect_params(authorize_by_form(sb, o, {"response_type": "code", "client_id": o["client_id"],
                                                      "redirect_uri": REDIRECT, "scope": scope, "state": "v",
                                                      "code_challenge": c, "code_challenge_method": "S256"}))
        t = token(sb, o["token_url"], {"grant_type": "authorization_code", "code": q["code"], "redirect_uri": REDIRECT,
                                       "code_verifier": pkce()[0], "client_id": o["client_id"],
                                       "client_secret": o["client_secret"]})
        assert t.status == 400 and jbody(t).get("error") == "invalid_grant", "wrong code_verifier: %s" % t.describe()
    checks.check("BoldSign OAuth: a wrong code_verifier -> 400 invalid_grant", bad_verifier)

    if "tok" not in st:
        return
    tok = st["tok"]

    def bearer_region():
        expect(sb.get(eu["base_url"] + "/v1/document/list?Page=1&PageSize=5", bearer(tok["access_token"])), 200,
               "eu token in eu")
        r = sb.get(us["base_url"] + "/v1/document/list?Page=1&PageSize=5", bearer(tok["access_token"]))
        assert r.status == 401 and r.body == b"", "the eu token in us should be 401 with an empty body: %s" % r.describe()
        r = sb.get(eu["base_url"] + "/v1/document/list?Page=1&PageSize=5", bearer(tok["access_token"][:-4] + "AAAA"))
        assert r.status == 401, "a token with a broken signature: %s" % r.describe()
        seq = sb.log()["last_seq"]
        sb.get(eu["base_url"] + "/v1/brand/list", bearer(tok["access_token"]))
        e = sb.log(since=seq)["requests"][-1]
        assert e["auth_scheme"] == "bearer" and e["account_id"] == eu["account_id"], e
    checks.check("BoldSign OAuth: the eu access token works in eu (bearer, its account) and is 401 (empty) in us",
                 bearer_region)

    def refresh():
        r1 = token(sb, o["token_url"], {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"],
                                        "client_id": o["client_id"], "client_secret": o["client_secret"]})
        t1 = jbody(expect(r1, 200, "refresh"))
        assert t1["refresh_token"] != tok["refresh_token"], "refresh tokens should rotate"
        expect(sb.get(eu["base_url"] + "/v1/brand/list", bearer(t1["access_token"])), 200, "refreshed access token")
        reuse = token(sb, o["token_url"], {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"],
                                           "client_id": o["client_id"], "client_secret": o["client_secret"]})
        assert reuse.status == 400 and jbody(reuse).get("error") == "invalid_grant", "refresh reuse: %s" % reuse.describe()
        fam = token(sb, o["token_url"], {"grant_type": "refresh_token", "refresh_token": t1["refresh_token"],
                                         "client_id": o["client_id"], "client_secret": o["client_secret"]})
        assert fam.status == 400 and jbody(fam).get("error") == "invalid_grant", \
            "after a reuse the whole family is revoked, the newest refresh token too: %s" % fam.describe()
    checks.check("BoldSign OAuth: refresh rotates; reusing the old refresh token -> invalid_grant and revokes the family",
                 refresh)

    def client_basic():
        v, c = pkce()
        q = redirect_params(authorize_by_form(sb, o, {"response_type": "code", "client_id": o["client_id"],
                                                      "redirect_uri": REDIRECT, "scope": scope, "state": "b",
                                                      "code_challenge": c, "code_challenge_method": "S256"}))
        t = token(sb, o["token_url"], {"grant_type": "authorization_code", "code": q["code"], "redirect_uri": REDIRECT,
                                       "code_verifier": v}, basic(o["client_id"], o["client_secret"]))
        expect(t, 200, "client_secret_basic")
        t2 = token(sb, o["token_url"], {"grant_type": "refresh_token", "refresh_token": jbody(t)["refresh_token"],
                                        "client_id": o["client_id"], "client_secret": "wrong"})
        assert t2.status in (400, 401) and jbody(t2).get("error") == "invalid_client", "wrong secret: %s" % t2.describe()
    checks.check("BoldSign OAuth: client_secret_basic works; a wrong client secret -> invalid_client", client_basic)


def dropbox_oauth(checks, sb):
    a = sb.account("dropboxsign", "global")
    o = a["oauth"]
    st = {}

    def flow():
        r = authorize_by_form(sb, o, {"response_type": "code", "client_id": o["client_id"], "state": "dbx-state-1",
                                      "redirect_uri": REDIRECT})
        q = redirect_params(r)
        assert q.get("state") == "dbx-state-1" and q.get("code"), q
        c1 = q["code"]
        no_secret = token(sb, o["token_url"], {"grant_type": "authorization_code", "client_id": o["client_id"],
                                               "code": c1, "state": "dbx-state-1"})
        assert 400 <= no_secret.status < 500, "token without client_secret should be refused: %s" % no_secret.describe()
        # a fresh code for the real exchange (the refused one may have been spent)
        q = redirect_params(authorize_by_form(sb, o, {"response_type": "code", "client_id": o["client_id"],
                                                      "state": "dbx-state-2", "redirect_uri": REDIRECT}))
        t = token(sb, o["token_url"], {"grant_type": "authorization_code", "client_id": o["client_id"],
                                       "client_secret": o["client_secret"], "code": q["code"], "state": "dbx-state-2"})
        tj = jbody(expect(t, 200, "token exchange"))
        assert tj.get("token_type") == "Bearer" and tj.get("access_token") and tj.get("refresh_token") \
            and isinstance(tj.get("expires_in"), int), tj
        assert tj.get("state") == "dbx-state-2", "the token response echoes state: %s" % tj
        st["tok"] = tj
    checks.check("Dropbox Sign OAuth: authorize form -> 302 code+state; token needs client_secret; token response has state",
                 flow)
    if "tok" not in st:
        return

    def use_and_refresh():
        tok = st["tok"]
        r = sb.get(a["base_url"] + "/account", bearer(tok["access_token"]))
        acct = jbody(expect(r, 200, "GET /v3/account with Bearer"))["account"]
        assert acct["email_address"] == o["user"]["email"], acct
        refresh_url = o.get("refresh_url") or o["token_url"] + "?refresh"
        r = token(sb, refresh_url, {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"],
                                    "client_id": o["client_id"], "client_secret": o["client_secret"]})
        t2 = jbody(expect(r, 200, "refresh at /oauth/token?refresh"))
        assert t2["access_token"] != tok["access_token"], t2
        expect(sb.get(a["base_url"] + "/account", bearer(t2["access_token"])), 200, "refreshed token")
        r = sb.get(a["base_url"] + "/account", bearer("not-a-token"))
        assert r.status == 401 and jbody(r)["error"]["error_name"] == "unauthorized", r.describe()
    checks.check("Dropbox Sign OAuth: Bearer on GET /v3/account (the user's account); refresh at /oauth/token?refresh",
                 use_and_refresh)


def iinked_oauth(checks, sb):
    us = sb.account("iinkedsign", "us")
    ca = sb.account("iinkedsign", "ca")
    o = us["oauth"]
    st = {}

    def flow():
        v, c = pkce()
        r = authorize_by_form(sb, o, {"response_type": "code", "client_id": o["client_id"], "redirect_uri": REDIRECT,
                                      "scope": "profile offline_access organization", "state": "ik-1",
                                      "nonce": "n-1", "code_challenge": c, "code_challenge_method": "S256"})
        q = redirect_params(r)
        assert q.get("state") == "ik-1" and q.get("code"), q
        t = token(sb, o["token_url"], {"grant_type": "authorization_code", "code": q["code"], "redirect_uri": REDIRECT,
                                       "code_verifier": v, "client_id": o["client_id"],
                                       "client_secret": o["client_secret"]})
        tj = jbody(expect(t, 200, "token"))
        assert tj.get("access_token") and tj.get("refresh_token") and tj.get("token_type", "").lower() == "bearer", tj
        st["tok"] = tj
        # without PKCE (optional for iinked), HTTP Basic client authentication
        q = redirect_params(authorize_by_form(sb, o, {"response_type": "code", "client_id": o["client_id"],
                                                      "redirect_uri": REDIRECT, "state": "ik-2",
                                                      "scope": "profile offline_access organization"}))
        t = token(sb, o["token_url"], {"grant_type": "authorization_code", "code": q["code"], "redirect_uri": REDIRECT},
                  basic(o["client_id"], o["client_secret"]))
        expect(t, 200, "no PKCE, client auth by HTTP Basic")
    checks.check("iinked OAuth: authorize form -> code -> token (PKCE S256, and without PKCE by HTTP Basic)", flow)
    if "tok" not in st:
        return

    def use_and_refresh():
        tok = st["tok"]
        expect(sb.post(us["base_url"] + "/packages/list", bearer(tok["access_token"]), {"take": 2}), 200, "Bearer on us")
        r = sb.post(ca["base_url"] + "/packages/list", bearer(tok["access_token"]), {"take": 2})
        assert r.status == 401, "a us token on ca should be 401: %s" % r.describe()
        r = token(sb, o["token_url"], {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"],
                                       "client_id": o["client_id"], "client_secret": o["client_secret"]})
        t2 = jbody(expect(r, 200, "refresh"))
        assert t2["refresh_token"] != tok["refresh_token"], "refresh tokens rotate"
        expect(sb.post(us["base_url"] + "/packages/list", bearer(t2["access_token"]), {"take": 2}), 200, "refreshed")
        r = token(sb, o["token_url"], {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"],
                                       "client_id": o["client_id"], "client_secret": o["client_secret"]})
        assert r.status == 400 and jbody(r).get("error") == "invalid_grant", "used refresh token: %s" % r.describe()
    checks.check("iinked OAuth: Bearer works on its host only (ca 401); refresh rotates, a used refresh token is invalid_grant",
                 use_and_refresh)


# ---- auto-approve --------------------------------------------------------------------------------

def auto_approve_flows(checks, sb, how):
    """The authorize GET redirects at once with a code; the code exchanges and the token works."""
    def bold():
        eu = sb.account("boldsign", "eu")
        o = eu["oauth"]
        v, c = pkce()
        r = sb.get(o["authorize_url"] + "?" + urllib.parse.urlencode(
            {"response_type": "code", "client_id": o["client_id"], "redirect_uri": REDIRECT, "state": "aa",
             "scope": "openid offline_access BoldSign.Documents.All", "code_challenge": c,
             "code_challenge_method": "S256"}))
        q = redirect_params(r)
        t = jbody(expect(token(sb, o["token_url"], {"grant_type": "authorization_code", "code": q["code"],
                                                    "redirect_uri": REDIRECT, "code_verifier": v,
                                                    "client_id": o["client_id"], "client_secret": o["client_secret"]}),
                         200, "token"))
        expect(sb.get(eu["base_url"] + "/v1/document/list?Page=1", bearer(t["access_token"])), 200, "REST with the token")
    checks.check("%s: BoldSign authorize GET -> 302 at once; code -> token -> REST" % how, bold)

    def dbx():
        a = sb.account("dropboxsign", "global")
        o = a["oauth"]
        r = sb.get(o["authorize_url"] + "?" + urllib.parse.urlencode(
            {"response_type": "code", "client_id": o["client_id"], "state": "aa-d", "redirect_uri": REDIRECT}))
        q = redirect_params(r)
        assert q.get("state") == "aa-d", q
        t = jbody(expect(token(sb, o["token_url"], {"grant_type": "authorization_code", "client_id": o["client_id"],
                                                    "client_secret": o["client_secret"], "code": q["code"],
                                                    "state": "aa-d"}), 200, "token"))
        expect(sb.get(a["base_url"] + "/account", bearer(t["access_token"])), 200, "REST with the token")
    checks.check("%s: Dropbox Sign authorize GET -> 302 at once; code -> token -> REST" % how, dbx)

    def ik():
        a = sb.account("iinkedsign", "sandbox-eu")
        o = a["oauth"]
        r = sb.get(o["authorize_url"] + "?" + urllib.parse.urlencode(
            {"response_type": "code", "client_id": o["client_id"], "redirect_uri": REDIRECT, "state": "aa-i",
             "scope": "profile offline_access organization"}))
        q = redirect_params(r)
        t = jbody(expect(token(sb, o["token_url"], {"grant_type": "authorization_code", "code": q["code"],
                                                    "redirect_uri": REDIRECT, "client_id": o["client_id"],
                                                    "client_secret": o["client_secret"]}), 200, "token"))
        expect(sb.post(a["base_url"] + "/packages/list", bearer(t["access_token"]), {"take": 1}), 200, "REST with the token")
    checks.check("%s: iinked authorize GET -> 302 at once; code -> token -> REST" % how, ik)


def main(checks, sb):
    sb.config(rate_limit_overrides={"boldsign": 100000, "dropboxsign": 100000, "iinkedsign": 100000})
    isolation(checks, sb)
    boldsign_oauth(checks, sb)
    dropbox_oauth(checks, sb)
    iinked_oauth(checks, sb)
    cfg = sb.config(oauth_auto_approve=True)
    checks.check("POST /_sandbox/config {\"oauth_auto_approve\":true} is reflected",
                 lambda: cfg.get("oauth_auto_approve") is True or (_ for _ in ()).throw(AssertionError(cfg)))
    auto_approve_flows(checks, sb, "config oauth_auto_approve")
    sb.config(oauth_auto_approve=False)

    sb2 = Sandbox(["--oauth-auto-approve"])
    try:
        sb2.start()
        sb2.config(rate_limit_overrides={"boldsign": 100000})
        auto_approve_flows(checks, sb2, "--oauth-auto-approve")
    except Exception as e:  # noqa: BLE001
        checks.fail("--oauth-auto-approve sandbox", e)
    finally:
        stop_and_check(checks, sb2)
        sb2.tmp.cleanup()


if __name__ == "__main__":
    sbxtest.run(main)
