"""sbtest: shared helpers for signbridge's Python integration tests.

Starts the real binary (SIGNBRIDGE_BIN) on port 0 with --port-file, waits until it serves, stops it
with SIGTERM, and speaks HTTP/1.1 over raw sockets so tests control every byte on the wire (the
standard library's clients normalise headers and refuse malformed requests, which is exactly what
these tests need to send).  Standard library only.
"""

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("SIGNBRIDGE_BIN", "")
SOURCE_ROOT = os.environ.get("SB_SOURCE_ROOT", "")

INIT_BODY = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}

ACCEPT_BOTH = "application/json, text/event-stream"

# Called with every Response that request() returns (tests use it to audit headers on all traffic).
RESPONSE_HOOK = None

# Markers that mean the process reported memory or undefined-behaviour errors, or crashed.
CRASH_MARKERS = (
    "AddressSanitizer",
    "LeakSanitizer",
    "UndefinedBehaviorSanitizer",
    "runtime error:",
    "Segmentation fault",
    "stack-overflow",
)


def require_bin():
    if not BIN or not os.access(BIN, os.X_OK):
        print("not ok - setup: SIGNBRIDGE_BIN is unset or not executable (%r)" % BIN)
        print("0 passed, 1 failed")
        sys.exit(1)


# ------------------------------------------------------------------------------------------------
# Check reporting (TAP-like lines, then "N passed, N failed")


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.failures = []

    def ok(self, name):
        self.passed += 1
        print("ok - %s" % name, flush=True)

    def fail(self, name, detail):
        self.failed += 1
        detail = " ".join(str(detail).split())  # one line
        if len(detail) > 600:
            detail = detail[:600] + "..."
        self.failures.append((name, detail))
        print("not ok - %s: %s" % (name, detail), flush=True)

    def check(self, name, fn, *args, **kwargs):
        """Run fn; AssertionError (or any exception) -> not ok with its message."""
        try:
            fn(*args, **kwargs)
        except AssertionError as e:
            self.fail(name, str(e) or "assertion failed")
            return False
        except Exception as e:  # noqa: BLE001 - a harness must report, not die
            self.fail(name, "%s: %s" % (type(e).__name__, e))
            return False
        self.ok(name)
        return True

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        return 1 if self.failed else 0


# ------------------------------------------------------------------------------------------------
# Server process


class Server:
    """One signbridge process on 127.0.0.1:0.

    args: extra command-line arguments (default: --conformance).  env: extra environment.
    stderr goes to a file (the JSON log), readable with .stderr_text().
    """

    def __init__(self, args=None, env=None, listen="127.0.0.1:0", start_timeout=20.0, binary=None):
        # binary: another executable that speaks the same --listen/--port-file contract (e.g. the
        # provider sandbox, SANDBOX_BIN); default SIGNBRIDGE_BIN.
        if binary is None:
            require_bin()
        self.binary = binary or BIN
        self.tmp = tempfile.TemporaryDirectory(prefix="sbtest-")
        self.dir = self.tmp.name
        self.port_file = os.path.join(self.dir, "port")
        self.secret_file = os.path.join(self.dir, "secret")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        self.args = list(args) if args is not None else ["--conformance"]
        self.extra_env = dict(env or {})
        self.listen = listen
        self.start_timeout = start_timeout
        self.proc = None
        self.port = None
        self.returncode = None

    def command(self):
        return [self.binary] + self.args + ["--listen", self.listen, "--port-file", self.port_file]

    def environ(self):
        env = dict(os.environ)
        # Never let an operator's environment (nor the harness's own SIGNBRIDGE_BIN, which the
        # server would read as a config override) leak into a test.
        for k in list(env):
            if k.startswith("SIGNBRIDGE_"):
                del env[k]
        env["SIGNBRIDGE_SECRET_FILE"] = self.secret_file
        env.update(self.extra_env)
        return env

    def start(self):
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self._err = open(self.stderr_path, "ab")
        self._out = open(self.stdout_path, "ab")
        self.proc = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err,
            env=self.environ(), cwd=self.dir)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise RuntimeError("server exited with %s before writing the port file; stderr: %s"
                                   % (rc, self.stderr_text()[-2000:]))
            try:
                with open(self.port_file) as f:
                    text = f.read()
            except FileNotFoundError:
                text = ""
            m = re.fullmatch(r"(\d+)\n", text)
            if m:
                self.port = int(m.group(1))
                if not (0 < self.port < 65536):
                    raise RuntimeError("port file holds an invalid port: %r" % text)
                return self
            time.sleep(0.02)
        self.kill()
        raise RuntimeError("server did not write its port file within %.0fs; stderr: %s"
                           % (self.start_timeout, self.stderr_text()[-2000:]))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15.0):
        """SIGTERM, wait; returns the exit code (negative = killed by that signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.returncode = "timeout (killed after SIGTERM did not stop it in %.0fs)" % timeout
                self._close()
                return self.returncode
        self.returncode = self.proc.returncode
        self._close()
        return self.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close()

    def _close(self):
        for f in (getattr(self, "_err", None), getattr(self, "_out", None)):
            if f is not None and not f.closed:
                f.close()

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def crash_report(self):
        """The first sanitizer/crash marker line in stderr, or None."""
        text = self.stderr_text()
        for line in text.splitlines():
            for m in CRASH_MARKERS:
                if m in line:
                    return line.strip()
        return None

    def url(self, path="/mcp"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        self.tmp.cleanup()


# ------------------------------------------------------------------------------------------------
# Raw HTTP/1.1


class Response:
    def __init__(self, status, reason, headers, body, elapsed, raw_head=b""):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) in wire order
        self.body = body
        self.elapsed = elapsed
        self.raw_head = raw_head

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def has_header(self, name):
        return self.header(name) is not None

    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def messages(self):
        """JSON-RPC messages in the body: one for application/json, every data: event for SSE."""
        ctype = (self.header("content-type") or "").lower()
        if "text/event-stream" in ctype:
            return parse_sse(self.body)
        if not self.body:
            return []
        return [json.loads(self.body)]

    def rpc(self, id_=None):
        """The JSON-RPC response (with `id` == id_ when given) carried by this HTTP response."""
        for m in self.messages():
            if isinstance(m, dict) and ("result" in m or "error" in m):
                if id_ is None or m.get("id") == id_:
                    return m
        raise AssertionError("no JSON-RPC response%s in HTTP %d body %r"
                             % ("" if id_ is None else " with id %r" % (id_,), self.status,
                                short(self.body)))

    def describe(self):
        return "HTTP %d %s headers=%s body=%r" % (
            self.status, self.reason, dict((k.lower(), v) for k, v in self.headers), short(self.body))


def proc_status_kb(pid, field):
    """A kB figure of /proc/PID/status (VmRSS, VmHWM, ...), 0 when absent."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def under_asan(pid):
    """True when the process runs with AddressSanitizer (its quarantine makes RSS meaningless;
    LeakSanitizer checks leaks at exit instead, and the stop check reports its findings)."""
    try:
        with open("/proc/%d/maps" % pid) as f:
            return "libasan" in f.read()
    except OSError:
        return False


def short(b, n=300):
    if isinstance(b, bytes):
        b = b.decode("utf-8", "replace")
    return b if len(b) <= n else b[:n] + "...(%d bytes)" % len(b)


def parse_sse(body):
    out = []
    text = body.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    for event in text.split("\n\n"):
        data = [line[5:].lstrip(" ") if line.startswith("data:") else None
                for line in event.split("\n")]
        data = [d for d in data if d is not None]
        if not data:
            continue
        payload = "\n".join(data)
        if payload.strip() == "":
            continue  # priming event
        out.append(json.loads(payload))
    return out


class ConnectionClosed(Exception):
    """The server closed (or reset) the connection without a complete HTTP response."""


def connect(port, timeout=10.0, host="127.0.0.1"):
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def build_request(method, path, headers=None, body=None, port=None, host=None):
    """Request bytes.  headers: list of (name, value) or dict, sent verbatim and in order; a Host
    header is added unless given; Content-Length is added for a body unless a Content-Length or
    Transfer-Encoding header is given.  body: bytes, str or a JSON-able object."""
    if isinstance(headers, dict):
        headers = list(headers.items())
    headers = list(headers or [])
    names = {k.lower() for k, _ in headers}
    if body is not None and not isinstance(body, (bytes, bytearray)):
        body = body.encode("utf-8") if isinstance(body, str) else json.dumps(body).encode("utf-8")
    if "host" not in names:
        headers.insert(0, ("Host", host or ("127.0.0.1:%d" % port if port else "127.0.0.1")))
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        headers.append(("Content-Length", str(len(body))))
    head = "%s %s HTTP/1.1\r\n" % (method, path)
    head += "".join("%s: %s\r\n" % (k, v) for k, v in headers)
    head += "\r\n"
    return head.encode("latin-1") + (bytes(body) if body is not None else b"")


class Reader:
    """Incremental HTTP/1.1 response reader over a socket."""

    def __init__(self, sock, deadline):
        self.sock = sock
        self.buf = b""
        self.deadline = deadline
        self.eof = False

    def _fill(self):
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out waiting for the response")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("timed out waiting for the response")
        except (ConnectionResetError, BrokenPipeError) as e:
            raise ConnectionClosed("connection reset: %s" % e)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def until(self, sep, limit=1 << 20):
        while sep not in self.buf:
            if len(self.buf) > limit:
                raise ValueError("response head too large")
            if not self._fill():
                raise ConnectionClosed("connection closed after %d bytes: %r"
                                       % (len(self.buf), short(self.buf)))
        i = self.buf.index(sep)
        out, self.buf = self.buf[:i], self.buf[i + len(sep):]
        return out

    def exactly(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionClosed("connection closed in the body (%d of %d bytes)"
                                       % (len(self.buf), n))
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def rest(self):
        while self._fill():
            pass
        out, self.buf = self.buf, b""
        return out


def read_response(sock, timeout=10.0, method="POST", t0=None):
    t0 = t0 if t0 is not None else time.monotonic()
    r = Reader(sock, time.monotonic() + timeout)
    while True:
        head = r.until(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/1\.[01] (\d{3})(?: (.*))?$", lines[0])
        if not m:
            raise ValueError("bad status line %r" % lines[0])
        status = int(m.group(1))
        headers = []
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers.append((k.strip(), v.strip()))
        if status == 100:
            continue  # interim response
        break
    hdr = {k.lower(): v for k, v in headers}
    if method == "HEAD" or status in (204, 304):
        body = b""
    elif "chunked" in hdr.get("transfer-encoding", "").lower():
        body = b""
        while True:
            size_line = r.until(b"\r\n").split(b";")[0].strip()
            size = int(size_line, 16)
            if size == 0:
                # trailers
                while r.until(b"\r\n") != b"":
                    pass
                break
            body += r.exactly(size)
            r.exactly(2)
    elif "content-length" in hdr:
        body = r.exactly(int(hdr["content-length"]))
    else:
        body = r.rest()
    return Response(status, m.group(2) or "", headers, body, time.monotonic() - t0, head)


def request(port, method, path, headers=None, body=None, timeout=10.0, raw=None):
    """One request on a fresh connection ("Connection: close" is not added: the response is
    framed by Content-Length / chunked / close, and the socket is closed afterwards)."""
    data = raw if raw is not None else build_request(method, path, headers, body, port=port)
    t0 = time.monotonic()
    s = connect(port, timeout)
    try:
        s.sendall(data)
        resp = read_response(s, timeout, method, t0)
    finally:
        s.close()
    if RESPONSE_HOOK is not None:
        RESPONSE_HOOK(method, path, resp)
    return resp


def mcp_headers(session=None, version=None, api_key=None, extra=None, accept=ACCEPT_BOTH,
                content_type="application/json"):
    h = []
    if content_type is not None:
        h.append(("Content-Type", content_type))
    if accept is not None:
        h.append(("Accept", accept))
    if session is not None:
        h.append(("Mcp-Session-Id", session))
    if version is not None:
        h.append(("MCP-Protocol-Version", version))
    if api_key is not None:
        h.append(("X-API-Key", api_key))
    h.extend(extra or [])
    return h


def initialize(port, version="2025-11-25", api_key=None, send_initialized=True, extra=None,
               timeout=10.0, path="/mcp"):
    """initialize (+ notifications/initialized).  Returns (session_id, negotiated_version, result).
    path: the MCP endpoint (/mcp, /{provider}/mcp, /{provider}/{region}/mcp, ...)."""
    body = json.loads(json.dumps(INIT_BODY))
    body["params"]["protocolVersion"] = version
    r = request(port, "POST", path, mcp_headers(api_key=api_key, extra=extra), body,
                timeout=timeout)
    assert r.status == 200, "initialize: %s" % r.describe()
    msg = r.rpc(1)
    assert "result" in msg, "initialize returned an error: %r" % (msg,)
    sid = r.header("mcp-session-id")
    assert sid, "initialize response has no Mcp-Session-Id header: %s" % r.describe()
    negotiated = msg["result"].get("protocolVersion")
    if send_initialized:
        n = request(port, "POST", path,
                    mcp_headers(session=sid, version=negotiated, api_key=api_key, extra=extra),
                    {"jsonrpc": "2.0", "method": "notifications/initialized"}, timeout=timeout)
        assert n.status == 202, "notifications/initialized: %s" % n.describe()
    return sid, negotiated, msg["result"]


def rpc(port, sid, method, params=None, id_=2, version="2025-11-25", api_key=None, timeout=10.0,
        extra=None, path="/mcp"):
    """POST one JSON-RPC request in a session; returns (http_response, jsonrpc_message)."""
    body = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        body["params"] = params
    r = request(port, "POST", path,
                mcp_headers(session=sid, version=version, api_key=api_key, extra=extra), body,
                timeout=timeout)
    if r.status != 200:
        return r, None
    return r, r.rpc(id_)


def jsonrpc_error(resp):
    """The error object of a JSON-RPC error body {"jsonrpc":"2.0","id":null,"error":{...}}."""
    try:
        body = resp.json()
    except Exception:
        raise AssertionError("body is not JSON: %s" % resp.describe())
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), \
        "body is not a JSON-RPC error: %s" % resp.describe()
    assert body.get("jsonrpc") == "2.0", "error body lacks jsonrpc 2.0: %s" % resp.describe()
    assert isinstance(body["error"].get("code"), int), "error.code not an integer: %s" % resp.describe()
    assert isinstance(body["error"].get("message"), str), "error.message missing: %s" % resp.describe()
    return body["error"]


def wait_readable(sock, timeout):
    r, _, _ = select.select([sock], [], [], timeout)
    return bool(r)


def run(cmd, env=None, timeout=30.0, cwd=None):
    """Run the binary (or anything) to completion; returns CompletedProcess with text output."""
    full_env = dict(os.environ)
    for k in list(full_env):
        if k.startswith("SIGNBRIDGE_"):
            del full_env[k]
    full_env.update(env or {})
    return subprocess.run(cmd, env=full_env, cwd=cwd, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                          text=True, errors="replace")
