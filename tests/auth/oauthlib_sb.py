"""oauthlib_sb: helpers for signbridge's own OAuth 2.1 server tests (tests/auth/*.py).

Starts a provider sandbox (SANDBOX_BIN) and signbridge processes (SIGNBRIDGE_BIN) with their own
working directory, --store, config file and a (possibly shared) SIGNBRIDGE_SECRET_FILE; runs the
whole authorization-code flow (register, authorize, consent with a sandbox BoldSign API key,
token) over raw HTTP/1.1 (tests/integration/sbtest.py); and remembers every secret value it
handled so the test can grep signbridge's log for them. Standard library only, except mint_jwt
(uses `cryptography` when installed, else openssl through subprocess).
"""

import base64
import hashlib
import json
import os
import re
import secrets as pysecrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "upstream"))

import sbtest  # noqa: E402
from sbtest import Checks, request, short  # noqa: E402,F401
import uptest  # noqa: E402

SANDBOX_BIN = uptest.SANDBOX_BIN
Sandbox = uptest.Sandbox
PROTO = "2025-11-25"

# every secret value the test handled: (label, value)
SECRETS = []


def remember(label, value):
    if isinstance(value, str) and len(value) >= 8:
        SECRETS.append((label, value))
    return value


def require_bins():
    uptest.require_bins()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Bridge(sbtest.Server):
    """signbridge pointed at a sandbox, with its own working dir, a store URL, a config file and a
    secret file (pass the same secret_file to processes meant to share state)."""

    def __init__(self, sandbox, store=None, config=None, secret_file=None, listen="127.0.0.1:0",
                 env=None, start_timeout=20.0):
        e = {"SIGNBRIDGE_LOG_LEVEL": "debug"}
        e.update(env or {})
        super().__init__(args=[], env=e, listen=listen, start_timeout=start_timeout)
        if secret_file:
            self.secret_file = secret_file
        self.store = store or "sqlite:" + os.path.join(self.dir, "signbridge.db")
        args = ["--sandbox-url", sandbox.origin, "--store", self.store]
        if config is not None:
            cfg = os.path.join(self.dir, "config.json")
            with open(cfg, "w") as f:
                json.dump(config, f)
            args += ["--config", cfg]
        self.args = args

    @property
    def origin(self):
        return "http://127.0.0.1:%d" % self.port

    def sigkill(self):
        self.kill()

    def secret_text(self):
        try:
            with open(self.secret_file) as f:
                return f.read().strip()
        except OSError:
            return ""

    def restart(self):
        """Start again (same args, store, listen address, secret file); appends to the same log."""
        return self.start()


# ------------------------------------------------------------------------------------------------
# PKCE and HTTP helpers


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def pkce_pair():
    v = b64url(os.urandom(48))
    return v, b64url(hashlib.sha256(v.encode()).digest())


def form_post(port, path, fields, headers=None, timeout=20.0):
    body = urllib.parse.urlencode(fields)
    h = [("Content-Type", "application/x-www-form-urlencoded")] + list(headers or [])
    return request(port, "POST", path, h, body, timeout=timeout)


def location_params(resp):
    loc = resp.header("location") or ""
    u = urllib.parse.urlsplit(loc)
    return loc, dict(urllib.parse.parse_qsl(u.query))


def register(port, redirect_uris=("http://127.0.0.1:9/cb",), name="authtest", extra=None):
    body = {"client_name": name, "redirect_uris": list(redirect_uris),
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"], "token_endpoint_auth_method": "none"}
    body.update(extra or {})
    r = request(port, "POST", "/register", [("Content-Type", "application/json")], body)
    assert r.status == 201, "register: %s" % r.describe()
    j = r.json()
    assert j.get("client_id"), "register: no client_id: %s" % r.describe()
    if j.get("client_secret"):
        remember("client_secret", j["client_secret"])
    return j


def authorize_path(params):
    return "/authorize?" + urllib.parse.urlencode(params)


def authorize(port, client_id, redirect_uri, challenge, scope=None, resource=None, state="st-1",
              method="S256", extra=None, drop=()):
    p = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
         "state": state, "code_challenge": challenge, "code_challenge_method": method}
    if scope is not None:
        p["scope"] = scope
    if resource is not None:
        p["resource"] = resource
    p.update(extra or {})
    for k in drop:
        p.pop(k, None)
    return request(port, "GET", authorize_path(p), timeout=20.0)


def consent_form(resp):
    """(request_id, csrf_token, cookie 'name=value') from a consent page."""
    assert resp.status == 200, "authorize: expected the consent page: %s" % resp.describe()
    html = resp.text()
    m1 = re.search(r'name="request_id" value="([^"]+)"', html)
    m2 = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m1 and m2, "consent page lacks request_id / csrf_token: %s" % short(html)
    sc = resp.header("set-cookie") or ""
    cookie = sc.split(";")[0].strip()
    assert "=" in cookie, "consent page sets no cookie: %s" % resp.describe()
    remember("csrf token", m2.group(1))
    remember("consent cookie", cookie.split("=", 1)[1])
    return m1.group(1), m2.group(1), cookie


def consent(port, req_id, csrf, cookie, api_key, region="", action="api_key"):
    fields = {"request_id": req_id, "action": action, "api_key": api_key, "region": region}
    if csrf is not None:
        fields["csrf_token"] = csrf
    h = [("Cookie", cookie)] if cookie else []
    return form_post(port, "/consent", fields, h, timeout=30.0)


def token(port, fields, headers=None):
    r = form_post(port, "/token", fields, headers)
    try:
        j = r.json()
    except Exception:
        j = {}
    if isinstance(j, dict):
        for k in ("access_token", "refresh_token"):
            if j.get(k):
                remember(k, j[k])
    return r, j


def get_code(port, api_key, redirect_uri="http://127.0.0.1:9/cb", scope=None, route="/mcp",
             client=None, origin=None):
    """register (unless client given) + authorize + consent -> dict(client_id, code, verifier, ...)"""
    remember("api key", api_key)
    c = client or register(port, [redirect_uri])
    verifier, challenge = pkce_pair()
    resource = (origin or "http://127.0.0.1:%d" % port) + route
    r = authorize(port, c["client_id"], redirect_uri, challenge, scope=scope, resource=resource)
    req_id, csrf, cookie = consent_form(r)
    r2 = consent(port, req_id, csrf, cookie, api_key)
    assert r2.status == 302, "consent: %s" % r2.describe()
    loc, q = location_params(r2)
    assert loc.startswith(redirect_uri + "?"), "consent redirect %r" % loc
    assert q.get("code") and q.get("state") == "st-1", "consent redirect params %r" % q
    remember("authorization code", q["code"])
    return {"client_id": c["client_id"], "code": q["code"], "verifier": verifier,
            "redirect_uri": redirect_uri, "resource": resource, "iss": q.get("iss"),
            "client": c}


def redeem(port, g):
    return token(port, {"grant_type": "authorization_code", "code": g["code"],
                        "code_verifier": g["verifier"], "redirect_uri": g["redirect_uri"],
                        "client_id": g["client_id"], "resource": g["resource"]})


def obtain_tokens(port, api_key, **kw):
    """The whole flow; returns the token response dict plus client_id/resource."""
    g = get_code(port, api_key, **kw)
    r, j = redeem(port, g)
    assert r.status == 200 and j.get("access_token") and j.get("refresh_token"), \
        "token: %s" % r.describe()
    j["client_id"] = g["client_id"]
    j["resource"] = g["resource"]
    return j


def refresh(port, client_id, rt, scope=None):
    f = {"grant_type": "refresh_token", "refresh_token": rt, "client_id": client_id}
    if scope is not None:
        f["scope"] = scope
    return token(port, f)


def bearer(tok):
    return [("Authorization", "Bearer " + tok)]


def mcp_init(port, tok, path="/mcp", timeout=20.0):
    body = json.loads(json.dumps(sbtest.INIT_BODY))
    return request(port, "POST", path, sbtest.mcp_headers(extra=bearer(tok)), body, timeout=timeout)


def tools_list(port, tok, path="/mcp", sid=None):
    """(initialize + initialized unless sid is given) + tools/list with the bearer token; returns
    the tool names."""
    ver = PROTO
    if sid is None:
        sid, ver, _ = sbtest.initialize(port, extra=bearer(tok), path=path, timeout=20.0)
    r, msg = sbtest.rpc(port, sid, "tools/list", {}, id_=5, version=ver, extra=bearer(tok),
                        path=path, timeout=20.0)
    assert r.status == 200 and msg and "result" in msg, "tools/list: %s" % r.describe()
    names = [t["name"] for t in msg["result"]["tools"]]
    assert len(names) > 5, "tools/list returned %r" % names
    return names


def pg_schema_url(base, tag):
    """A fresh schema on the PostgreSQL server at base (psql), and the URL that uses it; None when
    psql is missing."""
    import shutil
    if not shutil.which("psql"):
        return None
    schema = "sbauth_%s_%d_%d" % (tag, os.getpid(), int(time.time() * 1000) % 10**9)
    p = subprocess.run(["psql", base, "-v", "ON_ERROR_STOP=1", "-qc", "CREATE SCHEMA %s" % schema],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    assert p.returncode == 0, "psql CREATE SCHEMA: %s" % p.stderr
    PG_SCHEMAS.append((base, schema))
    return "%s%coptions=-csearch_path%%3D%s" % (base, "&" if "?" in base else "?", schema)


PG_SCHEMAS = []


def pg_drop_schemas():
    for base, schema in PG_SCHEMAS:
        subprocess.run(["psql", base, "-qc", "DROP SCHEMA IF EXISTS %s CASCADE" % schema],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    del PG_SCHEMAS[:]


def www_params(v):
    return dict(re.findall(r'(\w+)="([^"]*)"', v or ""))


def log_secret_hits(text):
    return uptest.find_secrets(text, SECRETS)


# ------------------------------------------------------------------------------------------------
# JWT minting with a test-owned RSA key


def gen_rsa_key(path):
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", path], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.chmod(path, 0o600)
    return path


def sign_rs256(key_path, signing_input):
    p = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_path], input=signing_input,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
    return p.stdout


def mint_jwt(key_path, header, claims, alg_sign="RS256", hmac_key=None):
    h = b64url(json.dumps(header, separators=(",", ":")).encode())
    c = b64url(json.dumps(claims, separators=(",", ":")).encode())
    si = ("%s.%s" % (h, c)).encode()
    if alg_sign == "none":
        sig = b""
    elif alg_sign == "HS256":
        import hmac
        sig = hmac.new(hmac_key, si, hashlib.sha256).digest()
    else:
        sig = sign_rs256(key_path, si)
    return si.decode() + "." + b64url(sig)


def jwk_to_pem(jwk):
    """SPKI PEM of an RSA JWK (n, e), via DER written by hand."""
    def b64d(s):
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

    def der_len(n):
        if n < 0x80:
            return bytes([n])
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        return bytes([0x80 | len(b)]) + b

    def tlv(tag, body):
        return bytes([tag]) + der_len(len(body)) + body

    def der_int(b):
        b = b.lstrip(b"\x00") or b"\x00"
        if b[0] & 0x80:
            b = b"\x00" + b
        return tlv(0x02, b)

    rsapub = tlv(0x30, der_int(b64d(jwk["n"])) + der_int(b64d(jwk["e"])))
    algid = tlv(0x30, tlv(0x06, bytes.fromhex("2a864886f70d010101")) + b"\x05\x00")
    spki = tlv(0x30, algid + tlv(0x03, b"\x00" + rsapub))
    b = base64.b64encode(spki).decode()
    return ("-----BEGIN PUBLIC KEY-----\n" + "\n".join(b[i:i + 64] for i in range(0, len(b), 64))
            + "\n-----END PUBLIC KEY-----\n")
