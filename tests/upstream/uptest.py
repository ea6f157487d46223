"""uptest: shared helpers for the upstream tests (tests/upstream/*.py, issue 4).

Each test starts its own provider sandbox (SANDBOX_BIN, --seed 4242, port 0) and a signbridge
(SIGNBRIDGE_BIN, --sandbox-url pointing at it, port 0, SIGNBRIDGE_LOG_LEVEL=debug so the "no secret
in any log line" check covers every level), drives MCP over raw HTTP/1.1 (tests/integration/
sbtest.py), and stops both with SIGTERM: each must exit 0 with no sanitizer report, and signbridge's
log must contain no API key, Basic credential or server secret.  Standard library only.

A test module defines `main(t)` (t: a Test with .checks, .sbx, .br) and ends with
`uptest.run(main, ...)`.
"""

import asyncio
import base64
import json
import os
import re
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import sbtest  # noqa: E402
from sbtest import Checks, request, short  # noqa: E402,F401

SANDBOX_BIN = os.environ.get("SANDBOX_BIN", "")
SEED = 4242
PROTO = "2025-11-25"


def require_bins():
    missing = [n for n, v in (("SIGNBRIDGE_BIN", sbtest.BIN), ("SANDBOX_BIN", SANDBOX_BIN))
               if not v or not os.access(v, os.X_OK)]
    if missing:
        print("not ok - setup: %s unset or not executable" % ", ".join(missing))
        print("0 passed, 1 failed")
        sys.exit(1)


# ------------------------------------------------------------------------------------------------
# Credentials in each header style a caller may use


def xkey(key):
    return [("X-API-Key", key)]


def basic_value(key):
    return base64.b64encode(("%s:" % key).encode()).decode()


def basic(key):
    return [("Authorization", "Basic " + basic_value(key))]


def apikey(key):
    return [("api_key", key)]


STYLES = {"x-api-key": xkey, "basic": basic, "api_key": apikey}


# ------------------------------------------------------------------------------------------------
# Processes


class Sandbox(sbtest.Server):
    """signbridge-sandbox on 127.0.0.1:0 with a fixed seed."""

    def __init__(self, args=(), seed=SEED, start_timeout=30.0):
        super().__init__(args=["--seed", str(seed)] + list(args), start_timeout=start_timeout,
                         binary=SANDBOX_BIN)

    @property
    def origin(self):
        return "http://127.0.0.1:%d" % self.port

    def ctl(self, method, path, body=None, expect=(200, 201), timeout=20.0):
        h = [("Content-Type", "application/json")] if body is not None else []
        r = request(self.port, method, path, h, body, timeout=timeout)
        assert r.status in expect, "sandbox %s %s: %s" % (method, path, r.describe())
        return r.json() if r.body else {}

    def accounts(self):
        if not hasattr(self, "_accounts"):
            self._accounts = self.ctl("GET", "/_sandbox/accounts")["accounts"]
        return self._accounts

    def account(self, provider, region, index=0):
        found = [a for a in self.accounts()
                 if a.get("provider") == provider and a.get("region") == region and a.get("api_key")]
        assert len(found) > index, "no %s/%s account #%d with an api_key" % (provider, region, index)
        return found[index]

    def key(self, provider, region, index=0):
        return self.account(provider, region, index)["api_key"]

    def add_fault(self, **rule):
        return self.ctl("POST", "/_sandbox/faults", rule, expect=(201,))["id"]

    def clear_faults(self):
        self.ctl("DELETE", "/_sandbox/faults")

    def config(self, **kw):
        return self.ctl("POST", "/_sandbox/config", kw)

    def requests(self, since=0, provider=None):
        """Provider requests logged after seq `since` (the log keeps the last 4096)."""
        out = []
        while True:
            q = "?since=%d&limit=1000" % since + ("&provider=" + provider if provider else "")
            got = self.ctl("GET", "/_sandbox/requests" + q).get("requests", [])
            out.extend(got)
            if len(got) < 1000:
                return out
            since = got[-1]["seq"]

    def last_seq(self):
        return self.ctl("GET", "/_sandbox/requests?limit=1").get("last_seq", 0)

    def wait_requests(self, since, n, timeout=10.0, provider=None, route_suffix=""):
        """Wait until n provider requests whose route ends with route_suffix are logged after seq
        `since`, and return them.  The sandbox logs a request when it arrives, before any latency
        it then adds, so this is how a test knows its slow calls are in flight (a fixed sleep is a
        race on a loaded machine)."""
        deadline = time.monotonic() + timeout
        while True:
            got = [q for q in self.requests(since, provider)
                   if q.get("route", "").endswith(route_suffix)]
            if len(got) >= n:
                return got
            if time.monotonic() > deadline:
                raise AssertionError("%d of %d requests reached the sandbox in %.0f s"
                                     % (len(got), n, timeout))
            time.sleep(0.02)

    def stats(self):
        return self.ctl("GET", "/_sandbox/stats")

    def route_count(self, provider=None, region=None, route=None, stats=None):
        """Requests counted for (provider, region, route) -- route like 'GET /v1/document/list';
        None matches anything."""
        st = stats if stats is not None else self.stats()
        n = 0
        for r in st.get("routes", []):
            if provider and r.get("provider") != provider:
                continue
            if region and r.get("region") != region:
                continue
            if route and r.get("route") != route:
                continue
            n += r.get("count", 0)
        return n


class Bridge(sbtest.Server):
    """signbridge pointed at a sandbox; debug logs unless env says otherwise.  sandbox_url: the
    --sandbox-url to give instead of the sandbox's own origin (e.g. a TLS front proxying to it)."""

    def __init__(self, sandbox, env=None, start_timeout=20.0, sandbox_url=None):
        e = {"SIGNBRIDGE_LOG_LEVEL": "debug"}
        e.update(env or {})
        super().__init__(args=["--sandbox-url", sandbox_url or sandbox.origin], env=e,
                         start_timeout=start_timeout)

    @property
    def pid(self):
        return self.proc.pid

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def status_field(self, name):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith(name + ":"):
                    return line.split(":", 1)[1].strip()
        return None

    def threads(self):
        return int(self.status_field("Threads"))

    def vm_hwm_kb(self):
        return int(self.status_field("VmHWM").split()[0])

    def secret_text(self):
        try:
            with open(self.secret_file) as f:
                return f.read().strip()
        except OSError:
            return ""

    def session(self, path, cred, timeout=20.0):
        return Session(self, path, cred, timeout)


def initialize_raw(port, path, cred, timeout=20.0):
    """One initialize POST (no notifications/initialized); returns the HTTP response."""
    body = json.loads(json.dumps(sbtest.INIT_BODY))
    return request(port, "POST", path, sbtest.mcp_headers(extra=cred), body, timeout=timeout)


class Session:
    """An initialized MCP session on one endpoint with one credential (a list of headers)."""

    def __init__(self, br, path, cred, timeout=20.0):
        self.port, self.path, self.cred = br.port, path, list(cred)
        self.sid, self.version, self.init = sbtest.initialize(
            br.port, api_key=None, extra=self.cred, timeout=timeout, path=path)
        self.next_id = 10

    def rpc(self, method, params=None, timeout=20.0):
        self.next_id += 1
        return sbtest.rpc(self.port, self.sid, method, params, id_=self.next_id,
                          version=self.version, extra=self.cred, timeout=timeout, path=self.path)

    def call(self, tool, arguments=None, timeout=20.0):
        """tools/call -> ToolResult (raises AssertionError on an HTTP or JSON-RPC failure)."""
        t0 = time.monotonic()
        r, msg = self.rpc("tools/call", {"name": tool, "arguments": arguments or {}}, timeout)
        elapsed = time.monotonic() - t0
        assert r.status == 200 and msg is not None, "tools/call %s: %s" % (tool, r.describe())
        assert "result" in msg, "tools/call %s: JSON-RPC error %r" % (tool, msg.get("error"))
        return ToolResult(msg["result"], elapsed)


class ToolResult:
    def __init__(self, result, elapsed=0.0):
        self.raw = result
        self.elapsed = elapsed
        self.is_error = bool(result.get("isError"))
        self.text = "".join(c.get("text", "") for c in result.get("content", [])
                            if isinstance(c, dict) and c.get("type") == "text")
        self.structured = result.get("structuredContent")

    def describe(self):
        return "isError=%s elapsed=%.2fs text=%r" % (self.is_error, self.elapsed, short(self.text, 400))


def metric(port, name):
    """The first sample of metric `name` on signbridge's /metrics (any labels)."""
    r = sbtest.request(port, "GET", "/metrics", [], None, timeout=5)
    assert r.status == 200, r.describe()
    for line in r.body.decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no %s in /metrics" % name)


def tool_result_of(msg):
    """ToolResult from a JSON-RPC response message, or None if it is not a result."""
    if isinstance(msg, dict) and isinstance(msg.get("result"), dict):
        return ToolResult(msg["result"])
    return None


# ------------------------------------------------------------------------------------------------
# Secrets: everything that must never reach signbridge's log


def secrets_of(sandbox, bridge=None, extra=()):
    """[(label, value)] -- every API key the sandbox hands out (with its Basic form), OAuth client
    secrets and passwords, the server secret file, and extra (label, value) pairs. Labels name a
    secret without revealing it, so failures can be printed."""
    out = []
    for i, a in enumerate(sandbox.accounts()):
        where = "%s/%s account %d" % (a.get("provider"), a.get("region"), i)
        keys = []
        if a.get("api_key"):
            keys.append(a["api_key"])
        keys.extend(k for k in a.get("api_keys") or [] if k)
        u = a.get("user_api_key")
        if isinstance(u, dict) and u.get("api_key"):
            keys.append(u["api_key"])
        for j, k in enumerate(dict.fromkeys(keys)):
            out.append(("%s api key %d" % (where, j), k))
            out.append(("%s api key %d as Basic base64" % (where, j), basic_value(k)))
        o = a.get("oauth") or {}
        if o.get("client_secret"):
            out.append(("%s oauth client_secret" % where, o["client_secret"]))
        pw = (o.get("user") or {}).get("password")
        if pw:
            out.append(("%s oauth user password" % where, pw))
    if bridge is not None and bridge.secret_text():
        out.append(("server secret file contents", bridge.secret_text()))
    out.extend(extra)
    # keep values long enough to be meaningful as secrets
    return [(label, v) for label, v in out if isinstance(v, str) and len(v) >= 8]


def find_secrets(text, secrets):
    """[(label, line number)] of each secret found in text."""
    hits = []
    lines = text.splitlines()
    for label, v in secrets:
        if v in text:
            n = next((i + 1 for i, ln in enumerate(lines) if v in ln), 0)
            hits.append((label, n))
    return hits


# ------------------------------------------------------------------------------------------------
# Async HTTP/1.1 keep-alive client (for many concurrent calls)


class AsyncConn:
    def __init__(self, port):
        self.port = port
        self.reader = self.writer = None

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def post(self, path, headers, body):
        if not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
        self.writer.write(sbtest.build_request("POST", path, headers, body, port=self.port))
        await self.writer.drain()
        return await self.read_response()

    async def read_response(self):
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        hdrs = {}
        for ln in lines[1:]:
            if ":" in ln:
                k, v = ln.split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
        if "chunked" in hdrs.get("transfer-encoding", "").lower():
            body = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
                if size == 0:
                    while await self.reader.readuntil(b"\r\n") != b"\r\n":
                        pass
                    break
                body += await self.reader.readexactly(size)
                await self.reader.readexactly(2)
        elif "content-length" in hdrs:
            body = await self.reader.readexactly(int(hdrs["content-length"]))
        else:
            body = await self.reader.read()
        return status, hdrs, body

    def close(self):
        if self.writer is not None:
            self.writer.close()


def messages_of(hdrs, body):
    """JSON-RPC messages of a response (JSON or SSE)."""
    if "text/event-stream" in hdrs.get("content-type", ""):
        return sbtest.parse_sse(body)
    return [json.loads(body)] if body else []


async def async_session(conn, path, cred):
    """initialize + notifications/initialized on an open AsyncConn; returns the session id."""
    body = json.loads(json.dumps(sbtest.INIT_BODY))
    st, h, b = await conn.post(path, sbtest.mcp_headers(extra=cred), body)
    assert st == 200, "initialize: HTTP %d %r" % (st, short(b))
    sid = h.get("mcp-session-id")
    st, h, b = await conn.post(path, sbtest.mcp_headers(session=sid, version=PROTO, extra=cred),
                               {"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert st == 202, "notifications/initialized: HTTP %d %r" % (st, short(b))
    return sid


async def async_call(conn, path, cred, sid, id_, tool, arguments):
    """One tools/call on conn: (status, ToolResult or None, body)."""
    st, h, b = await conn.post(
        path, sbtest.mcp_headers(session=sid, version=PROTO, extra=cred),
        {"jsonrpc": "2.0", "id": id_, "method": "tools/call",
         "params": {"name": tool, "arguments": arguments}})
    res = None
    if st == 200:
        for m in messages_of(h, b):
            if isinstance(m, dict) and m.get("id") == id_:
                res = tool_result_of(m)
    return st, res, b


# ------------------------------------------------------------------------------------------------
# Running a test


class Test:
    def __init__(self, checks, sbx, br):
        self.checks, self.sbx, self.br = checks, sbx, br
        self.extra_secrets = []

    def check(self, name, fn, *a, **kw):
        return self.checks.check(name, fn, *a, **kw)


def wait_until(fn, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    v = fn()
    while not v and time.monotonic() < deadline:
        time.sleep(step)
        v = fn()
    return v


def check_no_secrets(checks, sbx, br, extra=(), what="signbridge's log (debug level)"):
    text = br.stderr_text()
    secrets = secrets_of(sbx, br, extra)
    hits = find_secrets(text, secrets)
    if not text.strip():
        checks.fail("no key, token or secret in %s" % what, "the log is empty: nothing was checked")
    elif hits:
        checks.fail("no key, token or secret in %s" % what,
                    "; ".join("%s at line %d" % h for h in hits[:10]))
    else:
        checks.ok("no key, token or secret in %s (%d lines, %d secrets checked)"
                  % (what, len(text.splitlines()), len(secrets)))


def stop_checked(checks, proc, name, timeout=30.0):
    alive = proc.alive()
    rc = proc.stop(timeout=timeout)
    if not alive:
        checks.fail("%s alive at the end" % name, "exited early with %r; stderr: %s"
                    % (rc, proc.stderr_text()[-1500:]))
    elif rc == 0:
        checks.ok("%s exits 0 on SIGTERM" % name)
    else:
        checks.fail("%s exits 0 on SIGTERM" % name, "exit status %r; stderr: %s"
                    % (rc, proc.stderr_text()[-1500:]))
    crash = proc.crash_report()
    if crash:
        checks.fail("no sanitizer report from %s" % name, crash + " ... " + proc.stderr_text()[-3000:])
    else:
        checks.ok("no sanitizer report from %s" % name)
    return rc


def run(main, sandbox_args=("--no-rate-limits",), bridge_env=None, stop_bridge=True):
    """Start the sandbox and signbridge, run main(t), stop both, check logs; exit with the status."""
    require_bins()
    checks = Checks()
    sbx = Sandbox(sandbox_args)
    br = None
    try:
        sbx.start()
        br = Bridge(sbx, env=bridge_env)
        br.start()
    except Exception as e:  # noqa: BLE001
        checks.fail("sandbox and signbridge start", e)
        if br is not None:
            br.kill()
        sbx.kill()
        sys.exit(checks.finish())
    print("# sandbox on port %d (pid %d), signbridge on port %d (pid %d)"
          % (sbx.port, sbx.proc.pid, br.port, br.proc.pid), flush=True)
    t = Test(checks, sbx, br)
    try:
        main(t)
    except Exception as e:  # noqa: BLE001 - report, then still stop the processes
        checks.fail("test body raised", "%s: %s | %s" % (type(e).__name__, e,
                                                          traceback.format_exc()[-1200:]))
    finally:
        if stop_bridge and br.proc.returncode is None:
            stop_checked(checks, br, "signbridge")
        else:
            br.kill()  # the test stopped it itself (or must not outlive it); closes the log files
        check_no_secrets(checks, sbx, br, t.extra_secrets)
        stop_checked(checks, sbx, "the sandbox")
        br.tmp.cleanup()
        sbx.tmp.cleanup()
    sys.exit(checks.finish())
