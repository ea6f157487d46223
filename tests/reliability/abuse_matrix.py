#!/usr/bin/env python3
"""abuse-matrix (issue 10): hostile input that reaches past the HTTP layer, each row with its
expected outcome.  tests/integration/abuse.py covers the HTTP/JSON-RPC envelope (oversized,
malformed, deeply nested and invalid-UTF-8 bodies, one half-sent request, a 200 KB header); these
rows are the ones it does not have.

One sandbox and one signbridge (OAuth server on, SQLite store, debug log).

ids that would reach upstream URLs and headers (get_document and revoke_document on BoldSign,
  Dropbox Sign and iinked Sign; remind_signers' signer_emails on BoldSign):
  "../../x", "a%2F..", "x\\r\\nX-Evil: 1", fullwidth "ｄｏｃ１", "\\u202edoc" (RTL override),
  "x/y", "x?y=1#z", "%00", 129 characters
                                -> isError naming the argument; NOTHING reaches the sandbox
  a region with traversal / CRLF in the MCP path (/boldsign/..%2F..%2Fx/mcp, /boldsign/%2e%2e/mcp,
  /boldsign/us%0d%0aX-Evil:%201/mcp)
                                -> HTTP 404 (or 400); nothing reaches the sandbox
SSRF through file URLs (iinked Sign fetches them itself): 169.254.169.254, 10/8, 100.64/10,
  ::ffff:10.0.0.1 -> isError "refused"; http://, file://, gopher:// -> isError "https"; nothing
  fetched, nothing sent (loopback is allow-listed here: the sandbox runs on it)
DNS rebinding: Host evil.example:PORT, localhost.evil.example, 127.0.0.1.nip.io:PORT -> 403 and no
  session; Host localhost:PORT -> 200
absurd paging on list_documents (every provider): page_size 0, -1, 1e9, "10", 2^53+1, 1.5, null;
  page 0, -1, 1e9, 2^53+1, "2"  -> isError "Invalid arguments ... page_size|page"; nothing sent
deeply nested arguments (depth 64, 1,000 and 20,000 inside tools/call arguments, and an object
  where document_id wants a string)
                                -> a JSON-RPC error or isError within 3 s; nothing sent
OAuth redirect URIs at /register (refused, 400 invalid_redirect_uri):
  https://claude.ai@evil.example/cb, http://127.0.0.1:80@evil.example/cb,
  http://localhost:@evil.example/cb, http://[::1]@evil.example/cb, https://claude.ａi/cb
  (fullwidth), https://сlaude.ai/cb (Cyrillic с), http://localhost.evil.example/cb,
  http://127.0.0.1.nip.io/cb, http://evil.example/cb, javascript:alert(1)//x,
  https://claude.ai/cb#frag, https://claude.ai\\@evil.example/cb, "https://claude.ai/c b"
  and accepted: https://claude.ai/api/mcp/auth_callback, http://127.0.0.1:33418/cb,
  http://localhost/cb, https://xn--laude-6ve.ai/cb (an IDN as its A-label)
OAuth /authorize for registered https://claude.ai/api/mcp/auth_callback and
  http://127.0.0.1:9/cb: every near miss (fullwidth, userinfo, case, trailing dot, :443, extra
  query, dot segments, %2F, another loopback host spelling) -> 400, no Location (exact match only;
  a loopback redirect may change only its port -> 200 consent page)
token passthrough: a call with a signbridge access token reaches the sandbox with the grant's own
  API key (auth_scheme x-api-key); neither token appears in any logged upstream request
session hijacking: a session initialized with grant A's token, used with grant B's -> 404
slow clients: 24 connections dribbling header bytes -> 10 other clients each initialize + ping
  within 3 s meanwhile
header floods: 100 headers -> served (200); 2,000 and 20,000 headers -> 431/400 or the connection
  is closed; the server keeps serving
After all rows: signbridge alive, /healthz 200, descriptors and VmRSS within a small bound of their
values after a warm-up (RSS not judged under ASan: its quarantine holds freed memory, and
LeakSanitizer checks leaks at exit).
"""

import json
import os
import sys
import threading
import time

sys.dont_write_bytecode = True
import secrets  # noqa: E402,F401  (the stdlib one, before tests/upstream/secrets.py is on the path)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "auth"))
import oauthlib_sb as L  # noqa: E402  (puts tests/integration and tests/upstream on sys.path)
import sbtest  # noqa: E402
import uptest  # noqa: E402

PROMPT_S = 3.0
FD_SLACK = 16
RSS_SLACK_KB = 12 * 1024

PROVIDERS = {
    "boldsign": ("BoldSign", "us", "/boldsign/mcp"),
    "dropboxsign": ("Dropbox Sign", "global", "/dropboxsign/mcp"),
    "iinkedsign": ("iinked Sign", "us", "/iinkedsign/mcp"),
}

BAD_IDS = [
    ("../../x", "../../x"),
    ("a%2F..", "a%2F.."),
    ("CRLF header injection", "x\r\nX-Evil: 1"),
    ("LF only", "x\nX-Evil: 1"),
    ("fullwidth unicode", "\uff44\uff4f\uff43\uff11"),
    ("RTL override", "\u202edoc"),
    ("slash", "x/y"),
    ("query and fragment", "x?y=1#z"),
    ("percent-00", "%00"),
    ("129 characters", "a" * 129),
]

PAGING = [
    ("page_size", 0), ("page_size", -1), ("page_size", 1e9), ("page_size", "10"),
    ("page_size", 2 ** 53 + 1), ("page_size", 1.5), ("page_size", None),
    ("page", 0), ("page", -1), ("page", 10 ** 9), ("page", 2 ** 53 + 1), ("page", "2"),
]

REG_REFUSED = [
    "https://claude.ai@evil.example/cb",
    "http://127.0.0.1:80@evil.example/cb",
    "http://localhost:@evil.example/cb",
    "http://[::1]@evil.example/cb",
    "https://claude.\uff41i/cb",
    "https://\u0441laude.ai/cb",
    "http://localhost.evil.example/cb",
    "http://127.0.0.1.nip.io/cb",
    "http://evil.example/cb",
    "javascript:alert(1)//x",
    "https://claude.ai/cb#frag",
    "https://claude.ai\\@evil.example/cb",
    "https://claude.ai/c b",
]
REG_ACCEPTED = [
    "https://claude.ai/api/mcp/auth_callback",
    "http://127.0.0.1:33418/cb",
    "http://localhost/cb",
    "https://xn--laude-6ve.ai/cb",
]
HTTPS_RU = "https://claude.ai/api/mcp/auth_callback"
HTTPS_NEAR = [
    "https://claude.\uff41i/api/mcp/auth_callback",
    "https://claude.ai@evil.example/api/mcp/auth_callback",
    "https://evil.example/api/mcp/auth_callback",
    "https://CLAUDE.ai/api/mcp/auth_callback",
    "https://claude.ai./api/mcp/auth_callback",
    "https://claude.ai:443/api/mcp/auth_callback",
    "https://claude.ai/api/mcp/auth_callback?x=1",
    "https://claude.ai/api/mcp/auth_callback/../../evil",
    "https://claude.ai/api/mcp/auth_callback%2F..",
    "https://claude.ai/api/mcp/AUTH_callback",
    "http://claude.ai/api/mcp/auth_callback",
]
LOOP_RU = "http://127.0.0.1:9/cb"
LOOP_NEAR = [
    "http://127.0.0.1:1234@evil.example/cb",
    "http://127.0.0.1.nip.io:9/cb",
    "http://localhost.evil.example:9/cb",
    "http://localhost:9/cb",
    "http://[::1]:9/cb",
    "http://127.0.0.1:9/cb/../x",
    "http://127.0.0.1:9/CB",
    "https://127.0.0.1:9/cb",
]


def main(t):
    sbx, br = t.sbx, t.br
    sess = {p: br.session(path, uptest.xkey(sbx.key(p, region)))
            for p, (_d, region, path) in PROVIDERS.items()}

    def nothing_sent(seq, what):
        time.sleep(0.05)
        got = sbx.requests(since=seq)
        assert not got, "%s reached the sandbox: %s" % (what, [(q["method"], q["path"], q.get(
            "query")) for q in got][:3])

    def tool(p, name, args, timeout=20):
        return sess[p].call(name, args, timeout=timeout)

    # warm-up
    for p in PROVIDERS:
        for _ in range(5):
            tool(p, "list_documents", {"page_size": 3})
        L.register(br.port, [HTTPS_RU])
    time.sleep(0.5)
    fd0, rss0 = br.fd_count(), sbtest.proc_status_kb(br.pid, "VmRSS")
    print("# after warm-up: %d fds, VmRSS %d kB" % (fd0, rss0), flush=True)

    # ---- ids that reach upstream URLs and headers --------------------------------------------
    for p in PROVIDERS:
        for label, did in BAD_IDS:
            for name, args in (("get_document", {"document_id": did}),
                               ("revoke_document", {"document_id": did, "reason": "abuse"})):
                def row(p=p, name=name, args=args):
                    seq = sbx.last_seq()
                    res = tool(p, name, args)
                    assert res.is_error and "document_id" in res.text, \
                        "expected isError naming document_id: " + res.describe()
                    nothing_sent(seq, "%s(%r)" % (name, args["document_id"][:20]))
                t.check("%s %s document_id %s -> isError naming document_id, nothing sent"
                        % (p, name, label), row)
    for label, email in (("CRLF", "a@example.org\r\nX-Evil: 1"),
                         ("traversal", "../../x@example.org"),
                         ("ampersand query injection", "a@example.org&documentId=other")):
        def row(email=email):
            docs = tool("boldsign", "list_documents", {"page_size": 5}).structured["documents"]
            seq = sbx.last_seq()
            res = tool("boldsign", "remind_signers", {"document_id": docs[0]["id"],
                                                      "signer_emails": [email]})
            assert res.is_error and "signer_emails" in res.text, res.describe()
            nothing_sent(seq, "remind_signers(%r)" % email)
        t.check("boldsign remind_signers signer_emails %s -> isError naming signer_emails, nothing "
                "sent" % label, row)
    for path in ("/boldsign/..%2F..%2Fx/mcp", "/boldsign/%2e%2e/mcp", "/boldsign/../x/mcp",
                 "/boldsign/us%0d%0aX-Evil:%201/mcp"):
        def row(path=path):
            seq = sbx.last_seq()
            r = uptest.initialize_raw(br.port, path, uptest.xkey(sbx.key("boldsign", "us")))
            assert r.status in (400, 404), "expected 404 or 400: %s" % r.describe()
            nothing_sent(seq, "initialize at %s" % path)
        t.check("region traversal/CRLF in the MCP path %s -> 404/400, nothing sent" % path, row)

    # ---- SSRF through file URLs (iinked Sign: signbridge fetches every URL file itself) ---------
    # The sandbox runs on loopback, so loopback is allow-listed in this setup; every other
    # private, link-local, CGNAT or mapped address, and every non-https scheme, is refused.
    for url, want in (("https://169.254.169.254/latest/meta-data/a.pdf", "refused"),
                      ("https://10.0.0.1/a.pdf", "refused"),
                      ("https://100.64.0.1/a.pdf", "refused"),
                      ("https://[::ffff:10.0.0.1]/a.pdf", "refused"),
                      ("http://example.com/a.pdf", "https"),
                      ("file:///etc/passwd", "https"),
                      ("gopher://example.com/a.pdf", "https")):
        def row(url=url, want=want):
            seq = sbx.last_seq()
            res = tool("iinkedsign", "send_document", {
                "title": "ssrf", "files": [{"url": url}],
                "signers": [{"name": "A B", "email": "a@example.com"}]})
            assert res.is_error and want in res.text and "url" in res.text.lower(), \
                "expected isError mentioning %r: %s" % (want, res.describe())
            nothing_sent(seq, "send_document with file URL %s" % url)
        t.check("SSRF: iinkedsign send_document file URL %s -> isError (%s), nothing fetched or "
                "sent" % (url, want), row)

    # ---- DNS rebinding: Host of a loopback-bound server without public_url -----------------------
    for host, want in (("evil.example:%d" % br.port, 403), ("localhost.evil.example", 403),
                       ("127.0.0.1.nip.io:%d" % br.port, 403), ("localhost:%d" % br.port, 200)):
        def row(host=host, want=want):
            r = sbtest.request(br.port, "POST", "/mcp", sbtest.mcp_headers(
                extra=[("Host", host)] + uptest.xkey(sbx.key("boldsign", "us"))), sbtest.INIT_BODY)
            assert r.status == want, "expected %d: %s" % (want, r.describe())
            if want == 403:
                assert not r.header("mcp-session-id"), "a refused initialize minted a session"
        t.check("DNS rebinding: initialize with Host %s -> %d" % (host.replace(str(br.port), "PORT"),
                                                                  want), row)

    # ---- absurd paging ------------------------------------------------------------------------
    for p in PROVIDERS:
        for field, v in PAGING:
            def row(p=p, field=field, v=v):
                args = {"page_size": 5}
                args[field] = v
                seq = sbx.last_seq()
                res = tool(p, "list_documents", args)
                assert res.is_error and "Invalid arguments" in res.text and field in res.text, \
                    "expected isError 'Invalid arguments ... %s': %s" % (field, res.describe())
                nothing_sent(seq, "list_documents(%s=%r)" % (field, v))
            t.check("%s list_documents %s=%s -> isError naming %s, nothing sent"
                    % (p, field, json.dumps(v), field, ), row)

    # ---- deeply nested arguments ----------------------------------------------------------------
    def nested(depth):
        return "{\"a\":" * depth + "1" + "}" * depth

    for depth in (64, 1000, 20000):
        def row(depth=depth):
            body = ('{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_documents",'
                    '"arguments":{"page_size":5,"x":%s}}}' % nested(depth)).encode()
            s = sess["boldsign"]
            seq = sbx.last_seq()
            t0 = time.monotonic()
            r = sbtest.request(br.port, "POST", s.path, sbtest.mcp_headers(
                session=s.sid, version=s.version, extra=s.cred), body, timeout=30)
            dt = time.monotonic() - t0
            assert dt < PROMPT_S, "took %.2f s" % dt
            if r.status == 400:
                assert sbtest.jsonrpc_error(r)["code"] in (-32700, -32600), r.describe()
            else:
                assert r.status == 200, r.describe()
                m = r.rpc(7)
                res = uptest.tool_result_of(m)
                assert "error" in m or (res and res.is_error), \
                    "expected a JSON-RPC error or isError: %s" % r.describe()
            nothing_sent(seq, "nested arguments")
            return "HTTP %d in %.2f s" % (r.status, dt)
        t.check("arguments nested %d deep -> JSON-RPC error or isError within %.0f s, nothing sent"
                % (depth, PROMPT_S), row)

    def obj_for_string():
        seq = sbx.last_seq()
        v = json.loads(nested(200))
        res = tool("boldsign", "get_document", {"document_id": v})
        assert res.is_error and "document_id" in res.text, res.describe()
        nothing_sent(seq, "an object document_id")
    t.check("document_id given as a 200-deep object -> isError naming document_id, nothing sent",
            obj_for_string)

    # ---- OAuth redirect URIs ----------------------------------------------------------------------
    def reg(uri):
        body = {"client_name": "abuse", "redirect_uris": [uri],
                "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
                "token_endpoint_auth_method": "none"}
        return sbtest.request(br.port, "POST", "/register",
                              [("Content-Type", "application/json")],
                              json.dumps(body, ensure_ascii=False).encode("utf-8"))

    for uri in REG_REFUSED:
        def row(uri=uri):
            r = reg(uri)
            assert r.status == 400, "expected 400: %s" % r.describe()
            assert r.json().get("error") in ("invalid_redirect_uri", "invalid_client_metadata"), \
                r.describe()
        t.check("/register redirect_uri %r -> 400 invalid_redirect_uri" % uri, row)
    for uri in REG_ACCEPTED:
        def row(uri=uri):
            r = reg(uri)
            assert r.status == 201, "expected 201: %s" % r.describe()
            assert r.json().get("redirect_uris") == [uri], r.describe()
        t.check("/register redirect_uri %r -> 201 (kept verbatim)" % uri, row)

    resource = "http://127.0.0.1:%d/mcp" % br.port
    _v, challenge = L.pkce_pair()
    c_https = L.register(br.port, [HTTPS_RU])["client_id"]
    c_loop = L.register(br.port, [LOOP_RU])["client_id"]
    for cid, near_list in ((c_https, HTTPS_NEAR), (c_loop, LOOP_NEAR)):
        for uri in near_list:
            def row(cid=cid, uri=uri):
                r = L.authorize(br.port, cid, uri, challenge, resource=resource)
                assert r.status == 400, "expected 400: %s" % r.describe()
                assert not r.header("location"), "redirected to %r" % r.header("location")
            t.check("/authorize with near-miss redirect_uri %r -> 400, no redirect" % uri, row)

    def exact_ok():
        r = L.authorize(br.port, c_https, HTTPS_RU, challenge, resource=resource)
        assert r.status == 200 and "csrf_token" in r.text(), r.describe()
        assert ">claude.ai<" in r.text(), "the consent page does not show the host claude.ai"
        r = L.authorize(br.port, c_loop, "http://127.0.0.1:5555/cb", challenge, resource=resource)
        assert r.status == 200 and "csrf_token" in r.text(), r.describe()
    t.check("/authorize with the exact https URI, and the loopback URI on another port -> 200 "
            "consent page showing the host", exact_ok)

    # ---- token passthrough and session hijacking with OAuth tokens ---------------------------
    def no_passthrough():
        tk = L.obtain_tokens(br.port, sbx.key("boldsign", "us"))
        sid, ver, _ = sbtest.initialize(br.port, extra=L.bearer(tk["access_token"]), timeout=10)
        seq = sbx.last_seq()
        r, m = sbtest.rpc(br.port, sid, "tools/call", {"name": "list_documents",
                                                        "arguments": {"page_size": 2}},
                          version=ver, extra=L.bearer(tk["access_token"]), timeout=20)
        res = uptest.tool_result_of(m)
        assert r.status == 200 and res and not res.is_error, r.describe()
        got = sbx.requests(since=seq)
        assert got, "nothing reached the sandbox"
        assert all(q.get("auth_scheme") == "x-api-key" for q in got), \
            "upstream auth schemes %s, want the grant's own x-api-key" % [
                q.get("auth_scheme") for q in got]
        blob = json.dumps(got)
        for k in ("access_token", "refresh_token"):
            assert tk[k] not in blob, "the client's %s reached the provider" % k
    t.check("token passthrough: a call with a signbridge access token goes upstream with the "
            "grant's own API key; neither token reaches the provider", no_passthrough)

    def session_other_grant():
        a = L.obtain_tokens(br.port, sbx.key("boldsign", "us"))
        b = L.obtain_tokens(br.port, sbx.key("boldsign", "us"))
        sid, ver, _ = sbtest.initialize(br.port, extra=L.bearer(a["access_token"]), timeout=10)
        r, _m = sbtest.rpc(br.port, sid, "ping", {}, version=ver, extra=L.bearer(b["access_token"]))
        assert r.status == 404, "grant B using grant A's session: %s" % r.describe()
        r, _m = sbtest.rpc(br.port, sid, "ping", {}, version=ver, extra=L.bearer(a["access_token"]))
        assert r.status == 200, "grant A on its own session: %s" % r.describe()
    t.check("session hijacking: grant A's Mcp-Session-Id with grant B's access token -> 404; "
            "A's own token -> 200", session_other_grant)

    # ---- slow clients ----------------------------------------------------------------------------
    def slowloris():
        stop = threading.Event()
        socks = []
        head = sbtest.build_request("POST", "/mcp", sbtest.mcp_headers(), None, port=br.port)
        for _ in range(24):
            s = sbtest.connect(br.port, 10)
            socks.append(s)

        def dribble():
            i = 0
            while not stop.is_set() and i < len(head) - 4:
                for s in socks:
                    try:
                        s.sendall(head[i:i + 1])
                    except OSError:
                        pass
                i += 1
                stop.wait(0.1)
        th = threading.Thread(target=dribble)
        th.start()
        worst = 0.0
        try:
            time.sleep(0.5)
            for _ in range(10):
                t0 = time.monotonic()
                s = sess["dropboxsign"]
                sid, ver, _ = sbtest.initialize(br.port, extra=s.cred, path=s.path, timeout=10)
                r, m = sbtest.rpc(br.port, sid, "ping", {}, version=ver, extra=s.cred,
                                  path=s.path, timeout=10)
                assert r.status == 200 and m.get("result") == {}, r.describe()
                worst = max(worst, time.monotonic() - t0)
        finally:
            stop.set()
            th.join()
            for s in socks:
                s.close()
        assert worst < PROMPT_S, "a client waited %.2f s behind the slow ones" % worst
    t.check("24 connections dribbling headers byte by byte: 10 other clients each initialize + "
            "ping within %.0f s" % PROMPT_S, slowloris)

    # ---- header floods -------------------------------------------------------------------------
    def flood(n):
        extra = [("X-Flood-%d" % i, "v%d" % i) for i in range(n)]
        data = sbtest.build_request("POST", "/mcp", sbtest.mcp_headers(
            extra=uptest.xkey(sbx.key("boldsign", "us")) + extra), sbtest.INIT_BODY, port=br.port)
        s = sbtest.connect(br.port, 15)
        try:
            try:
                s.sendall(data)
            except OSError:
                pass  # the server may close before reading everything
            try:
                return sbtest.read_response(s, 15)
            except (sbtest.ConnectionClosed, ConnectionResetError, BrokenPipeError):
                return None
        finally:
            s.close()

    def flood_small():
        r = flood(100)
        assert r is not None and r.status == 200, "100 headers: %s" % (
            r.describe() if r else "closed")
    t.check("100 request headers -> served (200)", flood_small)
    for n in (2000, 20000):
        def row(n=n):
            r = flood(n)
            assert r is None or r.status in (431, 400, 413), "%d headers: %s" % (n, r.describe())
            h = sbtest.request(br.port, "GET", "/healthz", timeout=10)
            assert h.status == 200, "after the flood: %s" % h.describe()
            return r
        t.check("%d request headers -> 431/400 or closed; /healthz 200 after" % n, row)

    # ---- the server after all rows ------------------------------------------------------------------
    def alive():
        assert br.alive(), "signbridge exited"
        r = sbtest.request(br.port, "GET", "/healthz", timeout=10)
        assert r.status == 200, r.describe()
        res = tool("iinkedsign", "list_documents", {"page_size": 3})
        assert not res.is_error, res.describe()
    t.check("after the matrix: alive, /healthz 200, a normal read works", alive)

    fd1 = br.fd_count()
    deadline = time.monotonic() + 10
    while fd1 > fd0 + FD_SLACK and time.monotonic() < deadline:
        time.sleep(0.25)
        fd1 = br.fd_count()
    rss1 = sbtest.proc_status_kb(br.pid, "VmRSS")
    t.check("descriptors bounded (%d after warm-up, %d after, slack %d)" % (fd0, fd1, FD_SLACK),
            lambda: None if fd1 <= fd0 + FD_SLACK else (_ for _ in ()).throw(
                AssertionError("%d -> %d" % (fd0, fd1))))
    t.check("VmRSS bounded (%d kB after warm-up, %d kB after, slack %d kB%s)"
            % (rss0, rss1, RSS_SLACK_KB, "; not judged under ASan" if sbtest.under_asan(br.pid) else ""),
            lambda: None if rss1 <= rss0 + RSS_SLACK_KB or sbtest.under_asan(br.pid) else (_ for _ in ()).throw(
                AssertionError("%d -> %d kB" % (rss0, rss1))))


uptest.run(main)
