#!/usr/bin/env python3
"""abuse: hostile and malformed HTTP against the real signbridge binary (--conformance mode).

Each case is one named check.  After every case the server must still serve (a fresh initialize +
ping works and the process is alive); a case that kills the server fails, and the server is
restarted so the remaining cases still run.  At the end: SIGTERM must give exit code 0, stderr must
hold no sanitizer or crash report and no API key, and every response the server built must carry
X-Request-Id.

Env: SIGNBRIDGE_BIN (binary), SB_SOURCE_ROOT.  Output: "ok - name" / "not ok - name: detail",
then "N passed, N failed"; exit 1 on any failure.
"""

import json
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sbtest as T  # noqa: E402

KEY = "sk-test-abuse-CANARY-7f3a9c51"      # the session's credential; must never reach the log
OTHER_KEY = "sk-test-abuse-OTHER-2d8e4b10"
ALLOWED_ORIGIN = "https://app.example.com"
CAP = 262144                               # limits.max_body_bytes for this run
PROMPT_S = 3.0                             # "promptly" / "quickly"
SUPPORTED = ("2025-03-26", "2025-06-18", "2025-11-25")

checks = T.Checks()
srv = None
missing_request_id = []   # responses without X-Request-Id


def audit(method, path, resp):
    if not resp.has_header("x-request-id"):
        missing_request_id.append("%s %s -> %d" % (method, path, resp.status))


T.RESPONSE_HOOK = audit


def start_server():
    global srv
    srv = T.Server(args=["--conformance", "--log-level", "debug"],
                   env={"SIGNBRIDGE_LIMITS_MAX_BODY_BYTES": str(CAP),
                        "SIGNBRIDGE_ALLOWED_ORIGINS": ALLOWED_ORIGIN})
    srv.start()


def port():
    return srv.port


# ------------------------------------------------------------------------------------------------
# helpers


def req(method, path, headers=None, body=None, timeout=10.0):
    return T.request(port(), method, path, headers, body, timeout=timeout)


def session(version="2025-11-25", api_key=KEY):
    sid, negotiated, _ = T.initialize(port(), version=version, api_key=api_key)
    return sid, negotiated


def ping_body(id_=2):
    return {"jsonrpc": "2.0", "id": id_, "method": "ping"}


def hdrs(sid=None, version="2025-11-25", api_key=KEY, **kw):
    return T.mcp_headers(session=sid, version=version, api_key=api_key, **kw)


def expect_status(r, *codes):
    assert r.status in codes, "expected HTTP %s, got %s" % ("/".join(map(str, codes)), r.describe())


def expect_http_error(r, status, code=None, req_id=None):
    """HTTP `status` with a JSON-RPC error body (id null, or the request's id), code if given."""
    expect_status(r, status)
    err = T.jsonrpc_error(r)
    body = r.json()
    assert "id" in body and body["id"] in (None, req_id), \
        "error body id should be null: %s" % r.describe()
    if code is not None:
        assert err["code"] == code, "expected error code %d, got %s" % (code, r.describe())
    return err


def expect_rpc_error(r, msg, code):
    expect_status(r, 200)
    assert msg is not None and "error" in msg, "expected a JSON-RPC error, got %s" % r.describe()
    assert msg["error"].get("code") == code, \
        "expected JSON-RPC error %d, got %r" % (code, msg["error"])


def expect_ok_result(r, msg):
    expect_status(r, 200)
    assert msg is not None and "result" in msg, "expected a result, got %s" % r.describe()


def stream_send(sock, parts):
    """Send parts in order, stopping as soon as the server has answered or closed.
    Returns None when everything was sent, else a note on why sending stopped."""
    for p in parts:
        if T.wait_readable(sock, 0):
            return "server answered before the whole request was sent"
        try:
            sock.sendall(p)
        except (BrokenPipeError, ConnectionResetError) as e:
            return "send failed (%s)" % e
    return None


def raw_exchange(parts, timeout=10.0, record=True):
    """Send pieces of one request on a fresh connection and read the response."""
    s = T.connect(port(), timeout)
    t0 = time.monotonic()
    try:
        note = stream_send(s, parts)
        try:
            resp = T.read_response(s, timeout, "POST", t0)
        except T.ConnectionClosed as e:
            raise AssertionError("no HTTP response: the server closed the connection (%s; sending: %s)"
                                 % (e, note or "all sent"))
    finally:
        s.close()
    if record:
        audit("RAW", "/mcp", resp)
    return resp, note


def health():
    if not srv.alive():
        raise AssertionError("server process died (exit %s); crash report: %s"
                             % (srv.proc.returncode, srv.crash_report()))
    sid, _ = session()
    r = req("POST", "/mcp", hdrs(sid), ping_body(77))
    assert r.status == 200, "ping after the case: %s" % r.describe()
    msg = r.rpc(77)
    assert msg.get("result") == {}, "ping result %r" % (msg,)


def case(name, fn):
    err = None
    try:
        fn()
    except AssertionError as e:
        err = str(e) or "assertion failed"
    except Exception as e:  # noqa: BLE001
        err = "%s: %s" % (type(e).__name__, e)
    try:
        health()
    except Exception as e:  # noqa: BLE001
        note = "server not serving after the case: %s: %s" % (type(e).__name__, e)
        err = (err + "; " + note) if err else note
        if not srv.alive():
            old = srv
            old.stop()
            print("# restarting the server after a crash; its stderr tail:\n# "
                  + old.stderr_text()[-1500:].replace("\n", "\n# "), flush=True)
            old.tmp.cleanup()
            start_server()
    if err:
        checks.fail(name, err)
    else:
        checks.ok(name)


# ------------------------------------------------------------------------------------------------
# cases


def c_baseline():
    sid, negotiated = session()
    assert negotiated == "2025-11-25", "negotiated %r" % negotiated
    assert all(0x21 <= ord(ch) <= 0x7E for ch in sid), "session id has non-visible-ASCII: %r" % sid
    sid2, _ = session()
    assert sid2 != sid, "two initializes returned the same session id"


def c_malformed_json():
    sid, _ = session()
    r = req("POST", "/mcp", hdrs(sid), b'{"jsonrpc": "2.0", "id": 3, "method": ')
    expect_http_error(r, 400, -32700)


def c_batch(version):
    def fn():
        sid, negotiated = session(version)
        assert negotiated == version, "asked for %s, negotiated %r" % (version, negotiated)
        r = req("POST", "/mcp", hdrs(sid, version), [ping_body(5), ping_body(6)])
        expect_http_error(r, 400, -32600)
    return fn


def c_body_cl_no_body():
    sid, _ = session()
    head = T.build_request("POST", "/mcp", hdrs(sid) + [("Content-Length", str(10 * 1024 * 1024))],
                           None, port=port())
    s = T.connect(port(), 10)
    t0 = time.monotonic()
    try:
        s.sendall(head)
        if not T.wait_readable(s, PROMPT_S):
            raise AssertionError("no response within %.0fs to a Content-Length of 10 MiB with no body "
                                 "sent (the server waits for the body instead of answering 413)"
                                 % PROMPT_S)
        r = T.read_response(s, 5, "POST", t0)
    finally:
        s.close()
    audit("RAW", "/mcp", r)
    expect_http_error(r, 413)


def c_body_over_cap_sent():
    sid, _ = session()
    body = b'{"jsonrpc":"2.0","id":4,"method":"ping","params":{"pad":"' + b"a" * (CAP + 4096) + b'"}}'
    head = T.build_request("POST", "/mcp", hdrs(sid) + [("Content-Length", str(len(body)))], None,
                           port=port())
    parts = [head] + [body[i:i + 16384] for i in range(0, len(body), 16384)]
    r, _ = raw_exchange(parts)
    expect_http_error(r, 413)


def c_body_chunked_over_cap():
    sid, _ = session()
    head = T.build_request("POST", "/mcp", hdrs(sid) + [("Transfer-Encoding", "chunked")], None,
                           port=port())
    payload = b'{"jsonrpc":"2.0","id":4,"method":"ping","params":{"pad":"' + b"a" * (2 * CAP) + b'"}}'
    parts = [head]
    for i in range(0, len(payload), 8192):
        piece = payload[i:i + 8192]
        parts.append(b"%x\r\n" % len(piece) + piece + b"\r\n")
    parts.append(b"0\r\n\r\n")
    r, _ = raw_exchange(parts)
    expect_http_error(r, 413)


def line_ends(head, eol):
    """The request head built with CRLF, its line ends replaced: eol(i) gives the i-th one."""
    lines = head.split(b"\r\n")
    out = b""
    for i, ln in enumerate(lines[:-1]):
        out += ln + eol(i)
    return out + lines[-1]


def c_line_ends():
    # libmicrohttpd takes a bare LF as a line end as well as CRLF (the lean build finds the line
    # end with memchr: scripts/lean-deps-patches/libmicrohttpd-header-line.patch); the body is
    # delimited the same either way
    sid, _ = session()
    body = json.dumps(ping_body(31)).encode()
    head = T.build_request("POST", "/mcp", hdrs(sid), body, port=port())[:-len(body)]
    for name, eol in (("CRLF", lambda i: b"\r\n"), ("LF", lambda i: b"\n"),
                      ("mixed", lambda i: b"\n" if i % 2 else b"\r\n")):
        r, _ = raw_exchange([line_ends(head, eol) + body])
        expect_status(r, 200)
        assert r.rpc(31).get("result") == {}, "%s: %s" % (name, r.describe())


def c_line_split_reads():
    # a head arriving in pieces: cut inside a header line, between a CR and its LF, and right
    # after an LF -- each piece is read before the next is sent
    sid, _ = session()
    body = json.dumps(ping_body(32)).encode()
    req_bytes = T.build_request("POST", "/mcp", hdrs(sid), body, port=port())
    cr = req_bytes.index(b"\r\n", 20) + 1
    cuts = sorted({7, cr, cr + 1, req_bytes.index(b"Content-Type") + 5, len(req_bytes) - len(body) - 1})
    parts, at = [], 0
    for c in cuts:
        parts.append(req_bytes[at:c])
        at = c
    parts.append(req_bytes[at:])
    s = T.connect(port(), 10.0)
    t0 = time.monotonic()
    try:
        for p in parts:
            s.sendall(p)
            time.sleep(0.05)
        r = T.read_response(s, 10.0, "POST", t0)
    finally:
        s.close()
    expect_status(r, 200)
    assert r.rpc(32).get("result") == {}, r.describe()


def c_lone_cr():
    # a CR not followed by LF is not a line end: it stays inside its header line, which Debian's
    # libmicrohttpd 0.9.75 accepts, and so does the lean build's patched line scan (a CR ending a
    # value, right before the CRLF, too)
    for odd in (b"a\rb", b"\r"):
        head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Odd: " + odd + b"\r\n\r\n"
        r, _ = raw_exchange([head])
        expect_status(r, 200)


def c_body_just_under_cap():
    sid, _ = session()
    pre = b'{"jsonrpc":"2.0","id":4,"method":"ping","params":{"_meta":{},"pad":"'
    post = b'"}}'
    body = pre + b"a" * (CAP - len(pre) - len(post) - 16) + post
    r = req("POST", "/mcp", hdrs(sid), body)
    expect_status(r, 200)
    assert "result" in r.rpc(4), r.describe()


def c_content_type():
    sid, _ = session()
    r = req("POST", "/mcp", hdrs(sid, content_type="text/plain"), ping_body())
    expect_http_error(r, 415)


def c_content_type_charset():
    sid, _ = session()
    r = req("POST", "/mcp", hdrs(sid, content_type="application/json; charset=utf-8"), ping_body())
    expect_status(r, 200)
    assert r.rpc(2).get("result") == {}, r.describe()


def c_accept_json_only():
    sid, _ = session()
    r = req("POST", "/mcp", hdrs(sid, accept="application/json"), ping_body())
    expect_http_error(r, 406)


def c_accept_wildcard():
    sid, _ = session()
    r = req("POST", "/mcp", hdrs(sid, accept="*/*"), ping_body())
    expect_status(r, 200)
    assert r.rpc(2).get("result") == {}, r.describe()


def c_unknown_session():
    r = req("POST", "/mcp", hdrs("sb-no-such-session-0123456789abcdef"), ping_body())
    expect_http_error(r, 404, -32001, req_id=2)


def c_session_other_key():
    sid, _ = session(api_key=KEY)
    r = req("POST", "/mcp", hdrs(sid, api_key=OTHER_KEY), ping_body())
    expect_http_error(r, 404, req_id=2)


def c_duplicate_headers():
    # a header sent twice counts once, as its first copy (libmicrohttpd's lookup order; signbridge
    # reads the headers it needs in one pass, sb_http.c hdr): the session's key first is served,
    # another key first is another caller; a lower-case second copy changes nothing either
    sid, _ = session(api_key=KEY)
    for first, second, want in ((KEY, OTHER_KEY, 200), (OTHER_KEY, KEY, 404)):
        h = hdrs(sid, api_key=None) + [("X-API-Key", first), ("x-api-key", second)]
        r = req("POST", "/mcp", h, ping_body(41))
        if want == 200:
            expect_status(r, 200)
            assert r.rpc(41).get("result") == {}, r.describe()
        else:
            expect_http_error(r, 404, req_id=41)
    h = hdrs(sid) + [("Mcp-Session-Id", "not-the-session")]
    r = req("POST", "/mcp", h, ping_body(42))
    expect_status(r, 200)


def c_session_no_key():
    sid, _ = session(api_key=KEY)
    r = req("POST", "/mcp", hdrs(sid, api_key=None), ping_body())
    expect_http_error(r, 404, req_id=2)


def c_missing_session():
    session()
    r = req("POST", "/mcp", hdrs(None), ping_body())
    expect_http_error(r, 400, req_id=2)


def c_bad_protocol_version():
    sid, _ = session()
    r = req("POST", "/mcp", hdrs(sid, version="1999-01-01"), ping_body())
    expect_http_error(r, 400, req_id=2)


def c_other_supported_versions(negotiated):
    def fn():
        sid, got = session(negotiated)
        assert got == negotiated, "asked for %s, negotiated %r" % (negotiated, got)
        for v in SUPPORTED:
            r = req("POST", "/mcp", hdrs(sid, version=v), ping_body(9))
            assert r.status == 200, "MCP-Protocol-Version %s on a %s session: %s" % (
                v, negotiated, r.describe())
            assert r.rpc(9).get("result") == {}, r.describe()
    return fn


def c_origin_evil():
    r = req("POST", "/mcp", T.mcp_headers(api_key=KEY, extra=[("Origin", "http://evil.example.com")]),
            T.INIT_BODY)
    expect_status(r, 403)
    assert r.header("mcp-session-id") is None, "a rejected initialize minted a session"
    sid, _ = session()
    r = req("POST", "/mcp", hdrs(sid, extra=[("Origin", "http://evil.example.com")]), ping_body())
    expect_http_error(r, 403, req_id=2)


def c_origin_allowed(origin_fn):
    def fn():
        origin = origin_fn()
        r = req("POST", "/mcp", T.mcp_headers(api_key=KEY, extra=[("Origin", origin)]),
                T.INIT_BODY)
        assert r.status == 200, "initialize with Origin %s: %s" % (origin, r.describe())
        sid = r.header("mcp-session-id")
        assert sid, "no session id: %s" % r.describe()
        r = req("POST", "/mcp", hdrs(sid, extra=[("Origin", origin)]), ping_body())
        assert r.status == 200, "ping with Origin %s: %s" % (origin, r.describe())
    return fn


def c_no_origin():
    sid, _ = session()
    r = req("POST", "/mcp", hdrs(sid), ping_body())
    expect_status(r, 200)


def c_deep_nesting():
    sid, _ = session()
    t0 = time.monotonic()
    r = req("POST", "/mcp", hdrs(sid), b"[" * 200000, timeout=30)
    dt = time.monotonic() - t0
    expect_http_error(r, 400, -32700)
    assert dt < PROMPT_S, "took %.2fs" % dt


def c_deep_nesting_object():
    sid, _ = session()
    t0 = time.monotonic()
    r = req("POST", "/mcp", hdrs(sid), b'{"a":' * 40000, timeout=30)
    dt = time.monotonic() - t0
    expect_http_error(r, 400, -32700)
    assert dt < PROMPT_S, "took %.2fs" % dt


def c_bad_utf8(raw):
    def fn():
        sid, _ = session()
        body = b'{"jsonrpc":"2.0","id":3,"method":"ping","params":{"x":"a' + raw + b'b"}}'
        r = req("POST", "/mcp", hdrs(sid), body)
        expect_http_error(r, 400, -32700)
    return fn


def c_huge_header():
    head = T.build_request("POST", "/mcp", T.mcp_headers(api_key=KEY), None, port=port())
    assert head.endswith(b"\r\n\r\n")
    big = b"X-Big: " + b"a" * (200 * 1024) + b"\r\n"
    body = json.dumps(T.INIT_BODY).encode()
    parts = [head[:-2]] + [big[i:i + 8192] for i in range(0, len(big), 8192)]
    parts += [b"Content-Length: %d\r\n\r\n" % len(body) + body]
    s = T.connect(port(), 10)
    t0 = time.monotonic()
    try:
        note = stream_send(s, parts)
        try:
            r = T.read_response(s, 10, "POST", t0)
        except T.ConnectionClosed as e:
            raise AssertionError("no HTTP response: the server closed the connection (%s; sending: %s); "
                                 "expected 431 or 400" % (e, note or "all sent"))
    finally:
        s.close()
    # MHD may answer this one itself, so X-Request-Id is not audited here.
    assert r.status in (431, 400), "expected 431 or 400, got %s" % r.describe()
    print("# 200 KB header: HTTP %d %s (sending: %s)" % (r.status, r.reason, note or "all sent"),
          flush=True)


def c_header_capacity():
    """limits.max_header_bytes at its default (12 KiB) still takes what real clients send: a 4 KiB
    token plus 60 more headers, or one 11 KiB header."""
    body = json.dumps(T.INIT_BODY).encode()
    for extra in ([("X-Token-Like", "t" * 4096)] + [("X-Extra-%d" % i, "v%d" % i) for i in range(60)],
                  [("X-Big", "b" * (11 * 1024))]):
        data = T.build_request("POST", "/mcp", T.mcp_headers(api_key=KEY, extra=extra), body,
                               port=port())
        s = T.connect(port(), 10)
        try:
            s.sendall(data)
            r = T.read_response(s, 10, "POST", time.monotonic())
        finally:
            s.close()
        assert r.status == 200, "%d bytes of head: %s" % (data.index(b"\r\n\r\n"), r.describe())


def c_unknown_method():
    sid, _ = session()
    r, msg = T.rpc(port(), sid, "no/such_method", {}, api_key=KEY)
    expect_rpc_error(r, msg, -32601)


def c_garbage_cursor():
    sid, _ = session()
    r, msg = T.rpc(port(), sid, "tools/list", {"cursor": "!!garbage-cursor\u00e9~~"}, api_key=KEY)
    expect_rpc_error(r, msg, -32602)


def c_unknown_tool():
    sid, _ = session()
    r, msg = T.rpc(port(), sid, "tools/call", {"name": "no_such_tool", "arguments": {}}, api_key=KEY)
    expect_rpc_error(r, msg, -32602)


def c_notification():
    sid, _ = session()
    r = req("POST", "/mcp", hdrs(sid),
            {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"})
    expect_status(r, 202)
    assert r.body == b"", "202 with a body: %r" % T.short(r.body)


def c_delete():
    sid, _ = session()
    r = req("DELETE", "/mcp", hdrs(sid, content_type=None))
    expect_status(r, 200)
    r = req("POST", "/mcp", hdrs(sid), ping_body())
    expect_http_error(r, 404, req_id=2)
    r = req("DELETE", "/mcp", hdrs(sid, content_type=None))
    expect_status(r, 404)


def c_get_mcp():
    sid, _ = session()
    r = req("GET", "/mcp", hdrs(sid, accept="text/event-stream", content_type=None))
    expect_status(r, 405)
    assert r.header("allow"), "405 without an Allow header: %s" % r.describe()
    assert "POST" in r.header("allow").upper(), "Allow does not list POST: %r" % r.header("allow")


def c_healthz():
    r = req("GET", "/healthz")
    expect_status(r, 200)


def c_unknown_path():
    r = req("GET", "/no/such/path")
    expect_status(r, 404)
    r = req("POST", "/nope", T.mcp_headers(api_key=KEY), T.INIT_BODY)
    expect_status(r, 404)


def c_tools_list_ok():
    sid, _ = session()
    r, msg = T.rpc(port(), sid, "tools/list", {}, api_key=KEY)
    expect_ok_result(r, msg)
    tools = msg["result"].get("tools")
    assert isinstance(tools, list) and tools, "tools/list result %r" % (msg["result"],)


# Robustness: odd but syntactically valid requests.  Only assert a sane answer (200 with a JSON-RPC
# message, 202, or a 4xx with a JSON-RPC error body) and survival.
ODD_BODIES = [
    ("number", b"42"),
    ("null", b"null"),
    ("string", b'"ping"'),
    ("empty object", b"{}"),
    ("empty array", b"[]"),
    ("empty body", b""),
    ("envelope only", b'{"jsonrpc":"2.0"}'),
    ("wrong jsonrpc", b'{"jsonrpc":"1.0","id":1,"method":"ping"}'),
    ("null id", b'{"jsonrpc":"2.0","id":null,"method":"ping"}'),
    ("object id", b'{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}'),
    ("float id", b'{"jsonrpc":"2.0","id":1.5,"method":"ping"}'),
    ("huge number id", b'{"jsonrpc":"2.0","id":1e400,"method":"ping"}'),
    ("method number", b'{"jsonrpc":"2.0","id":1,"method":7}'),
    ("params array", b'{"jsonrpc":"2.0","id":1,"method":"tools/list","params":[1,2]}'),
    ("params string", b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"x"}'),
    ("call without name", b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}'),
    ("call name number", b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5}}'),
    ("call arguments string",
     b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"test_simple_text","arguments":"x"}}'),
    ("cursor number", b'{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":12}}'),
    ("NUL in string", b'{"jsonrpc":"2.0","id":1,"method":"ping\\u0000x"}'),
    ("lone surrogate", b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"\\ud800"}}'),
    ("duplicate keys", b'{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}'),
    ("trailing garbage", b'{"jsonrpc":"2.0","id":1,"method":"ping"} xyz'),
    ("response object", b'{"jsonrpc":"2.0","id":1,"result":{}}'),
    ("error object", b'{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"}}'),
    ("second initialize", json.dumps(T.INIT_BODY).encode()),
    ("setLevel bogus", b'{"jsonrpc":"2.0","id":1,"method":"logging/setLevel","params":{"level":"loud"}}'),
    ("long method", b'{"jsonrpc":"2.0","id":1,"method":"' + b"m" * 100000 + b'"}'),
]


def c_odd(body):
    def fn():
        sid, _ = session()
        r = req("POST", "/mcp", hdrs(sid), body)
        assert r.status in (200, 202, 400), "unexpected %s" % r.describe()
        if r.status == 202:
            assert r.body == b"", "202 with a body: %s" % r.describe()
        elif r.status == 200:
            msgs = r.messages()
            assert msgs and all(isinstance(m, dict) and m.get("jsonrpc") == "2.0" for m in msgs), \
                "200 without a JSON-RPC message: %s" % r.describe()
        else:
            T.jsonrpc_error(r)
    return fn


def c_keepalive():
    """Several requests on one persistent connection (what real clients do)."""
    sid, _ = session()
    s = T.connect(port(), 10)
    try:
        for i in range(5):
            s.sendall(T.build_request("POST", "/mcp", hdrs(sid), ping_body(100 + i), port=port()))
            r = T.read_response(s, 10)
            audit("POST", "/mcp", r)
            assert r.status == 200 and r.rpc(100 + i).get("result") == {}, r.describe()
    finally:
        s.close()


def c_slow_loris_other_clients():
    """A client dribbling a request must not block others."""
    sid, _ = session()
    head = T.build_request("POST", "/mcp", hdrs(sid) + [("Content-Length", "1000")], None,
                           port=port())
    s = T.connect(port(), 10)
    try:
        s.sendall(head + b'{"jsonrpc"')
        t0 = time.monotonic()
        health()
        assert time.monotonic() - t0 < PROMPT_S, "another client waited %.2fs" % (time.monotonic() - t0)
    finally:
        s.close()


def c_many_connections():
    """64 idle connections open at once; the server still answers."""
    socks = []
    try:
        for _ in range(64):
            socks.append(T.connect(port(), 10))
        health()
    finally:
        for s in socks:
            s.close()


# ------------------------------------------------------------------------------------------------


def main():
    T.require_bin()
    try:
        start_server()
    except Exception as e:  # noqa: BLE001
        checks.fail("server starts", e)
        return checks.finish()
    checks.ok("server starts (--conformance on 127.0.0.1:0, port %d)" % port())

    case("baseline: initialize gives distinct visible-ASCII session ids", c_baseline)
    case("tools/list works", c_tools_list_ok)
    case("malformed JSON -> 400 -32700", c_malformed_json)
    case("batch on a 2025-06-18 session -> 400 -32600", c_batch("2025-06-18"))
    case("batch on a 2025-11-25 session -> 400 -32600", c_batch("2025-11-25"))
    case("Content-Length over the cap, no body sent -> prompt 413", c_body_cl_no_body)
    case("body over the cap (sent in full) -> 413", c_body_over_cap_sent)
    case("chunked body over the cap -> 413", c_body_chunked_over_cap)
    case("body just under the cap -> 200", c_body_just_under_cap)
    case("request lines ended by CRLF, bare LF or both -> served alike", c_line_ends)
    case("a request head split inside a line and between CR and LF -> served", c_line_split_reads)
    case("a lone CR inside a header value is not a line end -> 200", c_lone_cr)
    case("Content-Type text/plain -> 415", c_content_type)
    case("Content-Type application/json; charset=utf-8 accepted", c_content_type_charset)
    case("Accept without text/event-stream or */* -> 406", c_accept_json_only)
    case("Accept */* accepted", c_accept_wildcard)
    case("unknown Mcp-Session-Id -> 404 -32001", c_unknown_session)
    case("session used with another X-API-Key -> 404", c_session_other_key)
    case("session used without X-API-Key -> 404", c_session_no_key)
    case("a header sent twice counts as its first copy", c_duplicate_headers)
    case("missing Mcp-Session-Id on a non-initialize request -> 400", c_missing_session)
    case("MCP-Protocol-Version 1999-01-01 -> 400", c_bad_protocol_version)
    for v in SUPPORTED:
        case("every supported MCP-Protocol-Version accepted on a %s session" % v,
             c_other_supported_versions(v))
    case("Origin http://evil.example.com -> 403", c_origin_evil)
    case("Origin http://localhost:PORT allowed",
         c_origin_allowed(lambda: "http://localhost:%d" % port()))
    case("Origin http://127.0.0.1:PORT allowed",
         c_origin_allowed(lambda: "http://127.0.0.1:%d" % port()))
    case("configured allowed origin allowed", c_origin_allowed(lambda: ALLOWED_ORIGIN))
    case("no Origin allowed", c_no_origin)
    case("200,000 nested '[' -> quick 400 -32700", c_deep_nesting)
    case("40,000 nested objects -> quick 400 -32700", c_deep_nesting_object)
    case("invalid UTF-8 (0xff) in a JSON string -> 400 -32700", c_bad_utf8(b"\xff"))
    case("invalid UTF-8 (overlong C0 AF) in a JSON string -> 400 -32700", c_bad_utf8(b"\xc0\xaf"))
    case("invalid UTF-8 (truncated E2 82) in a JSON string -> 400 -32700", c_bad_utf8(b"\xe2\x82"))
    case("200 KB request header -> 431 or 400", c_huge_header)
    case("a 4 KiB token + 60 headers, or one 11 KiB header -> served", c_header_capacity)
    case("unknown method -> 200 + -32601", c_unknown_method)
    case("tools/list with a garbage cursor -> -32602", c_garbage_cursor)
    case("unknown tool -> -32602", c_unknown_tool)
    case("notification -> 202 with an empty body", c_notification)
    case("DELETE with session -> 200, then the session -> 404", c_delete)
    case("GET /mcp -> 405 with Allow", c_get_mcp)
    case("GET /healthz -> 200", c_healthz)
    case("unknown path -> 404", c_unknown_path)
    case("keep-alive: 5 requests on one connection", c_keepalive)
    case("a half-sent request does not block other clients", c_slow_loris_other_clients)
    case("64 idle connections do not stop the server", c_many_connections)
    for label, body in ODD_BODIES:
        case("robustness: %s" % label, c_odd(body))

    # ---- end of run
    def no_missing_request_id():
        assert not missing_request_id, "%d responses without X-Request-Id, e.g. %s" % (
            len(missing_request_id), "; ".join(missing_request_id[:8]))
    checks.check("X-Request-Id on every response", no_missing_request_id)

    alive = srv.alive()
    rc = srv.stop()

    def sigterm_exit_0():
        assert alive, "server was not running at the end"
        assert rc == 0, "exit status after SIGTERM: %r" % (rc,)
    checks.check("SIGTERM -> exit 0", sigterm_exit_0)

    def no_crash():
        rep = srv.crash_report()
        assert rep is None, "stderr: %s" % rep
    checks.check("no sanitizer or crash report in stderr", no_crash)

    text = srv.stderr_text()

    def no_secret():
        for k in (KEY, OTHER_KEY):
            assert k not in text, "the API key %s... appears in the log" % k[:12]
    checks.check("no API key in the (debug) log", no_secret)

    def json_lines():
        bad = []
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    bad.append(line)
            except ValueError:
                bad.append(line)
        assert not bad, "%d stderr lines are not JSON objects, e.g. %r" % (len(bad), bad[0][:200])
    checks.check("stderr log lines are JSON objects", json_lines)

    srv.tmp.cleanup()
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
