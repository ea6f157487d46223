"""keyslib: helpers for the signbridge-key tests (tests/keys/*.py, issue 7, docs/keys.md).

Reuses tests/auth/oauthlib_sb.py (sandbox, signbridge processes with a shared secret file and
store, raw HTTP/1.1) and adds: the `signbridge keys` CLI (every run's stderr kept for the log
check), MCP calls with a signbridge key in any of the three provider-key header styles, the 401 /
403 shapes, the admin API client and a dump of every value of a SQLite store. Standard library only.
"""

import base64
import json
import os
import re
import sqlite3
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "auth"))

import oauthlib_sb as L  # noqa: E402,F401
import sbtest  # noqa: E402
from sbtest import request, short  # noqa: E402,F401

BIN = sbtest.BIN
KEY_RE = re.compile(r"sbk_[0-9A-Za-z]{32}")
ID_RE = re.compile(r"k_[0-9A-Za-z]{12}")

# stderr of every CLI run, for the "no secret in any log" check
CLI_STDERR = []


def cli(args, secret_file, store, sandbox=None, stdin=None, timeout=30.0, env=None):
    """Run `signbridge keys ARGS --store STORE [--sandbox-url ...]`; CompletedProcess (text)."""
    cmd = [BIN, "keys"] + list(args) + ["--store", store]
    if sandbox is not None:
        cmd += ["--sandbox-url", sandbox.origin]
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("SIGNBRIDGE_"):
            del e[k]
    e["SIGNBRIDGE_SECRET_FILE"] = secret_file
    e.update(env or {})
    p = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e,
                       timeout=timeout, text=True, errors="replace",
                       stdin=None if stdin is not None else subprocess.DEVNULL)
    CLI_STDERR.append(" ".join(a for a in args[:1]) + ": " + p.stderr)
    return p


def create(secret_file, store, sandbox, provider, api_key, name, scope="read", tools=None,
           expires=None, region=None):
    """`keys create` -> (key, id); asserts success and the output contract."""
    args = ["create", "--provider", provider, "--api-key", "-", "--name", name, "--scope", scope]
    if tools:
        args += ["--tools", tools]
    if expires:
        args += ["--expires", expires]
    if region:
        args += ["--region", region]
    p = cli(args, secret_file, store, sandbox, stdin=api_key + "\n")
    assert p.returncode == 0, "keys create %s: exit %d, stderr %r" % (name, p.returncode, p.stderr)
    lines = p.stdout.splitlines()
    assert len(lines) == 1 and KEY_RE.fullmatch(lines[0]), \
        "keys create: stdout must be the key alone on one line, got %r" % p.stdout
    m = ID_RE.search(p.stderr)
    assert m, "keys create: no key id in the note on stderr: %r" % p.stderr
    L.remember("signbridge key " + name, lines[0])
    return lines[0], m.group(0)


def show(secret_file, store, kid):
    p = cli(["show", kid], secret_file, store)
    assert p.returncode == 0, "keys show %s: exit %d %r" % (kid, p.returncode, p.stderr)
    return json.loads(p.stdout)


def list_json(secret_file, store):
    p = cli(["list", "--json"], secret_file, store)
    assert p.returncode == 0, "keys list --json: exit %d %r" % (p.returncode, p.stderr)
    return json.loads(p.stdout)


# ------------------------------------------------------------------------------------------------
# MCP with a signbridge key


def xkey(k):
    return [("X-API-Key", k)]


def basic(k):
    return [("Authorization", "Basic " + base64.b64encode((k + ":").encode()).decode())]


def apikey(k):
    return [("api_key", k)]


STYLES = {"X-API-Key": xkey, "Basic": basic, "api_key": apikey}


def init_raw(port, cred, path="/mcp"):
    body = json.loads(json.dumps(sbtest.INIT_BODY))
    return request(port, "POST", path, sbtest.mcp_headers(extra=cred), body, timeout=20.0)


class Sess:
    def __init__(self, port, cred, path="/mcp"):
        self.port, self.cred, self.path = port, list(cred), path
        self.sid, self.ver, _ = sbtest.initialize(port, extra=self.cred, path=path, timeout=20.0)
        self.n = 10

    def rpc(self, method, params=None):
        self.n += 1
        return sbtest.rpc(self.port, self.sid, method, params, id_=self.n, version=self.ver,
                          extra=self.cred, path=self.path, timeout=30.0)

    def tools(self):
        r, msg = self.rpc("tools/list", {})
        assert r.status == 200 and msg and "result" in msg, "tools/list: %s" % r.describe()
        return [t["name"] for t in msg["result"]["tools"]]

    def call(self, tool, args=None):
        """(http response, result dict or None)"""
        r, msg = self.rpc("tools/call", {"name": tool, "arguments": args or {}})
        return r, (msg or {}).get("result") if msg else None


def www_params(v):
    return dict(re.findall(r'(\w+)="([^"]*)"', v or ""))


def assert_403_scope(r, what):
    assert r.status == 403, "%s: expected HTTP 403, got %s" % (what, r.describe())
    www = r.header("www-authenticate") or ""
    assert www_params(www).get("error") == "insufficient_scope", \
        "%s: WWW-Authenticate lacks error=\"insufficient_scope\": %r" % (what, www)
    return www


def assert_401(r, word, what):
    """401 whose JSON error_description (and WWW-Authenticate) says `word`."""
    assert r.status == 401, "%s: expected 401, got %s" % (what, r.describe())
    try:
        j = r.json()
    except Exception:
        raise AssertionError("%s: 401 body is not JSON: %s" % (what, r.describe()))
    desc = j.get("error_description") or ""
    assert word in desc.lower(), "%s: error_description %r does not say %r" % (what, desc, word)
    www = r.header("www-authenticate") or ""
    assert word in www.lower(), "%s: WWW-Authenticate %r does not say %r" % (what, www, word)
    assert www_params(www).get("error") == "invalid_token", \
        "%s: WWW-Authenticate error is not invalid_token: %r" % (what, www)
    return desc


def poll_status(port, cred, want, limit, step=0.1, path="/mcp"):
    """Send initialize every `step` s until HTTP `want` (or limit s): (response, seconds)."""
    t0 = time.monotonic()
    while True:
        r = init_raw(port, cred, path)
        el = time.monotonic() - t0
        if r.status == want or el > limit:
            return r, el
        time.sleep(step)


# ------------------------------------------------------------------------------------------------
# Admin API


class Admin:
    def __init__(self, port, token):
        self.port, self.token = port, token

    def req(self, method, path, body=None, token=None, raw_auth=None):
        h = []
        if raw_auth is not None:
            h.append(("Authorization", raw_auth))
        elif (token or self.token) is not None:
            h.append(("Authorization", "Bearer " + (token or self.token)))
        if body is not None:
            h.append(("Content-Type", "application/json"))
        return request(self.port, method, path, h, body, timeout=30.0)


def admin_supported():
    """True when the binary knows --admin-listen (src/http/sb_admin.c is built in)."""
    try:
        p = subprocess.run([BIN, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=10, stdin=subprocess.DEVNULL)
    except Exception:
        return False
    return "--admin-listen" in p.stdout


# ------------------------------------------------------------------------------------------------
# Store dump


def sqlite_dump(path):
    """Every value of every column of every table of a SQLite file, as one text (bytes decoded
    and also base64/hex-free: raw)."""
    out = []
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for t in tables:
            for row in con.execute('SELECT * FROM "%s"' % t.replace('"', '""')):
                for v in row:
                    if isinstance(v, bytes):
                        out.append(v.decode("latin-1"))
                    else:
                        out.append(str(v))
    finally:
        con.close()
    return tables, "\n".join(out)
