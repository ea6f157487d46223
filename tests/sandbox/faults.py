"""sandbox-faults: every injected fault mode happens, checked against the sandbox alone, and each
provider's own rate limit is reached with its real headers and 429 body.

Fault modes, via POST /_sandbox/faults (and the same rules via --fault on a second sandbox):
latency (measured), error (status + the provider's error body), rate_limit (429 + Retry-After + the
provider's body), reset (connection reset, no response), truncate (fewer bytes than Content-Length),
malformed (a body that is not JSON), drip (many small reads over time), oversize (exactly the size
asked), hang (no response within a deadline, then closed); rule fields count, probability, region,
method and route globs; GET/DELETE of rules; the request log marks faulted requests.
Rate limits: BoldSign 50/hour/account (X-RateLimit-Limit/Remaining/Reset, 429 {"error"} +
Retry-After), Dropbox Sign standard 100/min and high tier 25/min (X-RateLimit-Limit,
X-RateLimit-Remaining, X-Ratelimit-Reset; 429 exceeded_rate), iinked 429 {"error":"rate_limit"};
overrides and {"rate_limits":false} from POST /_sandbox/config.
Timing bounds are generous (a loaded 2-core machine under ASan).
"""

import json
import socket
import time

import sbxtest
from sbxtest import Sandbox, basic, bold_auth, expect, iinked_auth, jbody, stop_and_check


class Target:
    """One cheap authenticated read per provider, and what its error body looks like."""

    def __init__(self, sb, provider):
        self.provider = provider
        if provider == "boldsign":
            a = sb.account("boldsign", "us")
            self.method, self.url, self.route = "GET", a["base_url"] + "/v1/brand/list", "/v1/brand/list"
            self.headers, self.body = bold_auth(a["api_key"]), None
        elif provider == "dropboxsign":
            a = sb.account("dropboxsign", "global")
            self.method, self.url, self.route = "GET", a["base_url"] + "/account", "/v3/account"
            self.headers, self.body = basic(a["api_key"]), None
        else:
            a = sb.account("iinkedsign", "us")
            self.method, self.url = "POST", a["base_url"] + "/packages/list"
            self.route = "/api/v1/packages/list"
            self.headers = iinked_auth(a["api_key"]) + [("Content-Type", "application/json")]
            self.body = b'{"take":5,"skip":0}'
        self.account = a
        self.region = a["region"]
        self.path = sb.path(self.url)

    def send(self, sb, timeout=15.0):
        return sb.call(self.method, self.url, self.headers, self.body, timeout=timeout)

    def raw(self, sb):
        return sbxtest.sbtest.build_request(self.method, self.path, self.headers, self.body, port=sb.port)


def assert_provider_error(t, r, status, message):
    """The body is this provider's own error format carrying message."""
    assert r.status == status, "expected %d: %s" % (status, r.describe())
    b = jbody(r)
    if t.provider == "boldsign":
        assert isinstance(b, dict) and b.get("error") == message, \
            "BoldSign error body should be {\"error\": %r}: %s" % (message, r.describe())
    elif t.provider == "dropboxsign":
        e = b.get("error") if isinstance(b, dict) else None
        assert isinstance(e, dict) and e.get("error_msg") == message and isinstance(e.get("error_name"), str), \
            "Dropbox Sign error body should be {\"error\":{\"error_msg\":%r,\"error_name\":...}}: %s" % (message, r.describe())
        if status == 429:
            assert e["error_name"] == "exceeded_rate", "429 error_name should be exceeded_rate: %s" % r.describe()
    else:
        assert isinstance(b, dict) and isinstance(b.get("error"), str) and b.get("message") == message, \
            "iinked error body should be {\"error\":code,\"message\":%r}: %s" % (message, r.describe())
        if status == 429:
            assert b["error"] == "rate_limit", "iinked 429 error should be rate_limit: %s" % r.describe()


def read_head_and_body_chunks(sock, deadline):
    """Read a response head, then the body chunk by chunk until EOF/reset or deadline.
    Returns (status, headers dict, [(t, nbytes)], body bytes, ended_by)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        d = sock.recv(65536)
        if not d:
            raise sbxtest.ConnectionClosed("closed before the head: %r" % buf[:200])
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    chunks = [(time.monotonic(), len(rest))] if rest else []
    body = rest
    want = int(hdrs.get("content-length", "-1"))
    ended = "deadline"
    while time.monotonic() < deadline:
        if want >= 0 and len(body) >= want:
            ended = "complete"
            break
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            d = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            ended = "reset"
            break
        if not d:
            ended = "eof"
            break
        chunks.append((time.monotonic(), len(d)))
        body += d
    return status, hdrs, chunks, body, ended


def fault_modes(checks, sb, via):
    """The fault modes against one provider each (all three providers for error/rate_limit)."""
    bold, dbx, ik = (Target(sb, p) for p in ("boldsign", "dropboxsign", "iinkedsign"))

    # latency: measured against a baseline of the same request.
    def latency():
        base = min(dbx.send(sb).elapsed for _ in range(3))
        fid = sb.add_fault({"provider": "dropboxsign", "route": dbx.route, "mode": "latency", "latency_ms": 800,
                            "count": 1})
        r = dbx.send(sb)
        expect(r, 200, "delayed request")
        assert r.elapsed >= 0.75, "latency_ms 800 but the response came after %.3fs" % r.elapsed
        assert r.elapsed < 15, "far too slow: %.3fs" % r.elapsed
        left = [f for f in sb.ctl("GET", "/_sandbox/faults")["faults"] if f["id"] == fid]
        assert not left, "count 1: the rule should be gone after one use: %s" % left
        return base, r.elapsed
    checks.check("latency: latency_ms 800 delays the response >= 0.75 s (measured), once (count 1)", latency)

    def jitter():
        sb.add_fault({"provider": "iinkedsign", "route": ik.route, "mode": "latency", "latency_ms": 300,
                      "jitter_ms": 300, "count": 2})
        for _ in range(2):
            r = ik.send(sb)
            expect(r, 200)
            assert r.elapsed >= 0.28, "latency 300 + jitter: response after %.3fs" % r.elapsed
    checks.check("latency: latency_ms + jitter_ms delays iinked responses >= latency_ms", jitter)

    # error: status and message in each provider's own error format.
    for t in (bold, dbx, ik):
        def err(t=t):
            sb.add_fault({"provider": t.provider, "route": t.route, "mode": "error", "status": 503,
                          "message": "Injected outage", "count": 1})
            assert_provider_error(t, t.send(sb), 503, "Injected outage")
            expect(t.send(sb), 200, "after the count-1 error rule")
        checks.check("error: %s 503 with its own error body, then normal again" % t.provider, err)

    # rate_limit: 429 + Retry-After + the provider's 429 body (+ its rate-limit headers).
    for t in (bold, dbx, ik):
        def rl(t=t):
            sb.add_fault({"provider": t.provider, "route": t.route, "mode": "rate_limit", "retry_after": 7,
                          "message": "Too many requests.", "count": 1})
            r = t.send(sb)
            assert_provider_error(t, r, 429, "Too many requests.")
            assert r.header("Retry-After") == "7", "Retry-After should be 7: %s" % r.describe()
            if t.provider == "boldsign":
                for h in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
                    assert r.header(h) is not None, "BoldSign 429 lacks %s: %s" % (h, r.describe())
            if t.provider == "dropboxsign":
                for h in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-Ratelimit-Reset"):
                    assert r.header(h) is not None, "Dropbox Sign 429 lacks %s: %s" % (h, r.describe())
        checks.check("rate_limit: %s 429 with Retry-After and its own 429 body" % t.provider, rl)

    # reset: the connection is reset (or closed) with no HTTP response at all.
    def reset():
        sb.add_fault({"provider": "boldsign", "route": bold.route, "mode": "reset", "count": 1})
        s = sbxtest.connect(sb.port, 10)
        try:
            s.sendall(bold.raw(sb))
            got = b""
            reset_seen = False
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                s.settimeout(deadline - time.monotonic())
                try:
                    d = s.recv(65536)
                except ConnectionResetError:
                    reset_seen = True
                    break
                if not d:
                    break
                got += d
            assert got == b"", "reset: got response bytes %r" % got[:200]
            if not reset_seen:
                # The server may shut its side down (FIN) before the RST of its SO_LINGER-0 close;
                # a receive then sees EOF first (SOCK_DONE wins over the pending error). A socket
                # that got an RST refuses the very next send (EPIPE/ECONNRESET); one that was only
                # half-closed by an orderly close accepts it.
                time.sleep(0.3)
                try:
                    s.send(b"x")
                except (BrokenPipeError, ConnectionResetError):
                    reset_seen = True
            assert reset_seen, "the connection was closed in order (FIN), not reset (no RST seen)"
        finally:
            s.close()
        expect(bold.send(sb), 200, "after the reset")
    checks.check("reset: the connection is reset with no response bytes", reset)

    # truncate: fewer bytes than Content-Length, then the connection ends.
    def truncate():
        sb.add_fault({"provider": "dropboxsign", "route": dbx.route, "mode": "truncate", "count": 1})
        s = sbxtest.connect(sb.port, 10)
        try:
            s.sendall(dbx.raw(sb))
            st, h, chunks, body, ended = read_head_and_body_chunks(s, time.monotonic() + 10)
        finally:
            s.close()
        assert st == 200, "truncate keeps the status (200), got %d" % st
        cl = int(h.get("content-length", "-1"))
        assert cl > 0, "no Content-Length: %r" % h
        assert len(body) < cl, "got %d of %d bytes: not truncated" % (len(body), cl)
        assert ended in ("eof", "reset"), "the connection should end after the truncated body (%s)" % ended
        return len(body), cl
    checks.check("truncate: fewer body bytes than Content-Length, then the connection ends", truncate)

    # malformed: a 200 whose JSON no longer parses.
    def malformed():
        sb.add_fault({"provider": "iinkedsign", "route": ik.route, "mode": "malformed", "count": 1})
        r = ik.send(sb)
        expect(r, 200)
        assert r.body, "malformed: empty body"
        try:
            json.loads(r.body)
        except ValueError:
            return
        raise AssertionError("malformed body still parses as JSON: %r" % r.body[:200])
    checks.check("malformed: 200 with a body that is not valid JSON", malformed)

    # drip: the body arrives in many small pieces over time.
    def drip():
        full = bold.send(sb)
        expect(full, 200)
        n = len(full.body)
        sb.add_fault({"provider": "boldsign", "route": bold.route, "mode": "drip", "drip_ms": 50,
                      "drip_bytes": 64, "count": 1})
        s = sbxtest.connect(sb.port, 10)
        t0 = time.monotonic()
        try:
            s.sendall(bold.raw(sb))
            st, h, chunks, body, ended = read_head_and_body_chunks(s, time.monotonic() + 40)
        finally:
            s.close()
        took = time.monotonic() - t0
        assert st == 200 and ended == "complete", "drip: status %d ended %s after %d bytes" % (st, ended, len(body))
        assert body == full.body, "drip: body differs from the undripped one"
        pieces = -(-n // 64)
        assert pieces >= 8, "the body (%d bytes) is too small to show a drip" % n
        assert len(chunks) >= pieces // 2, "only %d reads for %d bytes in 64-byte drips" % (len(chunks), n)
        assert max(c for _, c in chunks) <= 64 * 2, "a read of %d bytes: not 64-byte drips" % max(c for _, c in chunks)
        assert took >= (pieces - 1) * 0.05 * 0.5, "%d bytes in 64-byte drips every 50 ms took only %.2fs" % (n, took)
        return len(chunks)
    checks.check("drip: the body arrives in many small reads over time, intact", drip)

    # oversize: exactly the size asked for.
    def oversize():
        size = 300000
        sb.add_fault({"provider": "dropboxsign", "route": dbx.route, "mode": "oversize", "size": size, "count": 1})
        r = dbx.send(sb, timeout=30)
        expect(r, 200)
        assert r.header("Content-Length") == str(size), "Content-Length %r, asked %d" % (r.header("Content-Length"), size)
        assert len(r.body) == size, "got %d bytes, asked %d" % (len(r.body), size)
    checks.check("oversize: a 200 body of exactly the size asked (300000 bytes)", oversize)

    # hang: no response within a deadline, then the connection is closed.
    def hang():
        sb.add_fault({"provider": "iinkedsign", "route": ik.route, "mode": "hang", "hang_ms": 2500, "count": 1})
        s = sbxtest.connect(sb.port, 10)
        t0 = time.monotonic()
        try:
            s.sendall(ik.raw(sb))
            s.settimeout(1.0)
            try:
                d = s.recv(65536)
                raise AssertionError("hang: got %r within the 1 s deadline" % d[:100])
            except socket.timeout:
                pass
            got = b""
            closed = False
            s.settimeout(20)
            try:
                while True:
                    d = s.recv(65536)
                    if not d:
                        closed = True
                        break
                    got += d
            except ConnectionResetError:
                closed = True
            waited = time.monotonic() - t0
        finally:
            s.close()
        assert got == b"", "hang: a response arrived after all: %r" % got[:200]
        assert closed, "hang: the connection was not closed"
        assert waited >= 2.0, "hang_ms 2500 but closed after %.2fs" % waited
        return waited
    checks.check("hang: no response within 1 s, then closed without a response after hang_ms", hang)

    # Rule fields: region and method filters, probability 0, GET and DELETE of rules.
    def filters():
        eu = sb.account("boldsign", "eu")
        fid = sb.add_fault({"provider": "boldsign", "region": "eu", "method": "GET", "route": "/v1/brand/*",
                            "mode": "error", "status": 502, "message": "eu only"})
        r = sb.get(eu["base_url"] + "/v1/brand/list", bold_auth(eu["api_key"]))
        assert_provider_error(bold, r, 502, "eu only")
        expect(bold.send(sb), 200, "us is not matched by a region:eu rule")
        r = sb.call("POST", eu["base_url"] + "/v1/brand/list", bold_auth(eu["api_key"]), b"")
        assert r.status != 502, "method GET rule matched a POST: %s" % r.describe()
        rules = sb.ctl("GET", "/_sandbox/faults")["faults"]
        mine = [f for f in rules if f["id"] == fid]
        assert mine and mine[0]["applied"] >= 1 and mine[0]["route"] == "/v1/brand/*", "GET /_sandbox/faults: %s" % rules
        sb.ctl("DELETE", "/_sandbox/faults/%d" % fid)
        r = sb.get(eu["base_url"] + "/v1/brand/list", bold_auth(eu["api_key"]))
        expect(r, 200, "after DELETE /_sandbox/faults/{id}")
        r = sb.call("DELETE", "/_sandbox/faults/%d" % fid)
        expect(r, 404, "deleting it again")
        sb.add_fault({"provider": "boldsign", "mode": "error", "probability": 0})
        for _ in range(5):
            expect(bold.send(sb), 200, "probability 0 never applies")
        sb.clear_faults()
        assert sb.ctl("GET", "/_sandbox/faults")["faults"] == [], "DELETE /_sandbox/faults left rules"
    checks.check("fault rules: region/method/route-glob filters, probability 0, GET and DELETE", filters)

    def bad_rules():
        for rule, what in (({"mode": "explode"}, "unknown mode"), ({"provider": "boldsign"}, "no mode"),
                           ({"mode": "error", "probability": 2}, "probability 2")):
            r = sb.call("POST", "/_sandbox/faults", [], rule)
            assert r.status == 400 and "error" in jbody(r), "%s should be 400 {error}: %s" % (what, r.describe())
    checks.check("fault rules: invalid rules are 400 with a reason", bad_rules)

    def logged():
        sb.add_fault({"provider": "dropboxsign", "route": dbx.route, "mode": "error", "status": 500, "count": 1,
                      "message": "logged fault"})
        seq = sb.log()["last_seq"]
        dbx.send(sb)
        entries = sb.log(since=seq)["requests"]
        assert entries and entries[-1].get("fault") == "error" and entries[-1]["status"] == 500, \
            "the request log should mark the faulted request: %s" % entries
    checks.check("the request log marks a faulted request (fault: error, status 500)", logged)


def rate_window_guard(resp, header, span):
    """If the fixed window ends within `span` seconds, sleep into the next one; returns True if slept."""
    reset = resp.header(header)
    if reset is None:
        return False
    left = int(reset) - time.time()
    if left < span:
        time.sleep(max(0.0, left) + 1.2)
        return True
    return False


def rate_limits(checks, sb):
    sb.reset()  # fresh counters
    sb.config(rate_limits=True, rate_limit_overrides={})

    # BoldSign: 50 requests/hour/account by default.
    def boldsign_limit():
        a = sb.account("boldsign", "ca")
        url, h = a["base_url"] + "/v1/brand/list", bold_auth(a["api_key"])
        r = sb.get(url, h)
        expect(r, 200)
        if rate_window_guard(r, "X-RateLimit-Reset", 60):
            sb.reset()
            r = sb.get(url, h)
        limit = r.header("X-RateLimit-Limit")
        assert limit == "50", "X-RateLimit-Limit should be 50 (sandbox default): %s" % r.describe()
        assert r.header("X-RateLimit-Remaining") == "49", "first request: remaining 49: %s" % r.describe()
        reset = int(r.header("X-RateLimit-Reset"))
        assert time.time() - 5 < reset <= time.time() + 3600 + 5, "X-RateLimit-Reset %d is not a unix time within the hour" % reset
        last = None
        for i in range(2, 51):
            last = sb.get(url, h)
            expect(last, 200, "request %d of 50" % i)
        assert last.header("X-RateLimit-Remaining") == "0", "after 50: remaining %r" % last.header("X-RateLimit-Remaining")
        r = sb.get(url, h)
        assert r.status == 429, "request 51 should be 429: %s" % r.describe()
        assert isinstance(jbody(r).get("error"), str), "BoldSign 429 body {\"error\":...}: %s" % r.describe()
        ra = r.header("Retry-After")
        assert ra is not None and ra.isdigit() and 0 < int(ra) <= 3600, "Retry-After %r" % ra
        assert r.header("X-RateLimit-Remaining") == "0" and r.header("X-RateLimit-Limit") == "50", r.describe()
        # account-level: the account's other key (if any) shares the budget; another account does not
        other = sb.account("boldsign", "ca", index=1)
        if other["account_id"] != a["account_id"]:
            expect(sb.get(url.replace(a["base_url"], other["base_url"]), bold_auth(other["api_key"])), 200,
                   "another account in the same region has its own budget")
    checks.check("BoldSign: 50 requests/hour/account, X-RateLimit-Limit/Remaining/Reset, then 429 {error} + Retry-After",
                 boldsign_limit)

    # Dropbox Sign standard tier: 100/min; exact header names as the spec declares.
    def dropbox_standard():
        a = sb.account("dropboxsign", "global")
        url, h = a["base_url"] + "/account", basic(a["api_key"])
        r = sb.get(url, h)
        expect(r, 200)
        if rate_window_guard(r, "X-Ratelimit-Reset", 8):
            sb.reset()
            r = sb.get(url, h)
        names = [k for k, _ in r.headers]
        for n in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-Ratelimit-Reset"):
            assert n in names, "header %s (exact spelling, as the spec declares) missing: %s" % (n, names)
        assert r.header("X-RateLimit-Limit") == "100", "standard tier limit 100: %s" % r.describe()
        assert r.header("X-RateLimit-Remaining") == "99", r.describe()
        for i in range(2, 101):
            expect(sb.get(url, h), 200, "request %d of 100" % i)
        r = sb.get(url, h)
        assert r.status == 429, "request 101 should be 429: %s" % r.describe()
        e = jbody(r).get("error", {})
        assert e.get("error_name") == "exceeded_rate" and isinstance(e.get("error_msg"), str), r.describe()
        assert r.header("X-RateLimit-Remaining") == "0", r.describe()
    checks.check("Dropbox Sign: standard tier 100/min with X-RateLimit-Limit/X-RateLimit-Remaining/X-Ratelimit-Reset, then 429 exceeded_rate",
                 dropbox_standard)

    def dropbox_high():
        sb.reset()
        a = sb.account("dropboxsign", "global")
        h = basic(a["api_key"])
        lst = jbody(expect(sb.get(a["base_url"] + "/signature_request/list?page_size=100", h), 200))
        done = [x for x in lst["signature_requests"] if x.get("is_complete")]
        assert done, "no complete signature request in the seed"
        url = a["base_url"] + "/signature_request/files_as_data_uri/" + done[0]["signature_request_id"]
        r = sb.get(url, h)
        expect(r, 200)
        if rate_window_guard(r, "X-Ratelimit-Reset", 8):
            sb.reset()
            r = sb.get(url, h)
        assert r.header("X-RateLimit-Limit") == "25", "high tier (files_as_data_uri) limit 25: %s" % r.describe()
        for i in range(2, 26):
            expect(sb.get(url, h), 200, "request %d of 25" % i)
        r = sb.get(url, h)
        assert r.status == 429 and jbody(r)["error"]["error_name"] == "exceeded_rate", r.describe()
        # the standard tier is a separate budget
        expect(sb.get(a["base_url"] + "/account", h), 200, "standard tier still open")
    checks.check("Dropbox Sign: high tier (files_as_data_uri) 25/min, separate from the standard tier",
                 dropbox_high)

    def iinked_limit():
        sb.reset()
        sb.config(rate_limit_overrides={"iinkedsign": 5})
        t = Target(sb, "iinkedsign")
        if int(time.time()) % 60 > 54:  # keep the 6 requests inside one 60 s window
            time.sleep(61 - int(time.time()) % 60)
        sb.reset()
        for i in range(5):
            expect(t.send(sb), 200, "request %d of 5" % (i + 1))
        r = t.send(sb)
        assert r.status == 429, "6th request with limit 5 should be 429: %s" % r.describe()
        b = jbody(r)
        assert b.get("error") == "rate_limit" and isinstance(b.get("message"), str), r.describe()
        assert r.header("Retry-After") is not None, "iinked 429 without Retry-After: %s" % r.describe()
        assert not any(k.lower().startswith("x-ratelimit") for k, _ in r.headers), \
            "iinked publishes no rate-limit headers: %s" % r.describe()
    checks.check("iinked: override {\"iinkedsign\":5} -> 6th request 429 {error: rate_limit} + Retry-After, no X-RateLimit headers",
                 iinked_limit)

    def overrides_and_off():
        sb.reset()
        sb.config(rate_limit_overrides={"boldsign": 3, "dropboxsign:high": 2})
        a = sb.account("boldsign", "au")
        url, h = a["base_url"] + "/v1/brand/list", bold_auth(a["api_key"])
        codes = [sb.get(url, h).status for _ in range(4)]
        assert codes == [200, 200, 200, 429], "boldsign override 3: %s" % codes
        cfg = sb.ctl("GET", "/_sandbox/config")
        assert cfg["rate_limit_overrides"] == {"boldsign": 3, "dropboxsign:high": 2}, cfg
        sb.config(rate_limits=False)
        codes = [sb.get(url, h).status for _ in range(3)]
        assert codes == [200, 200, 200], "rate_limits false: %s" % codes
        sb.config(rate_limits=True, rate_limit_overrides={})
        assert sb.ctl("GET", "/_sandbox/config")["rate_limits"] is True
    checks.check("POST /_sandbox/config: rate_limit_overrides lower a limit; rate_limits:false lifts it",
                 overrides_and_off)
    sb.reset()
    sb.config(rate_limit_overrides={})


def via_flag(checks):
    """The same rules from --fault on the command line; an invalid --fault refuses to start."""
    rules = [
        {"provider": "dropboxsign", "route": "/v3/account", "mode": "error", "status": 500,
         "message": "flag fault", "count": 1},
        {"provider": "boldsign", "route": "/v1/brand/*", "mode": "latency", "latency_ms": 700, "count": 1},
        {"provider": "iinkedsign", "route": "/api/v1/packages/list", "mode": "hang", "hang_ms": 1500, "count": 1},
        {"provider": "dropboxsign", "route": "/v3/account", "mode": "truncate", "count": 1},
    ]
    args = []
    for r in rules:
        args += ["--fault", json.dumps(r)]
    sb2 = Sandbox(args)
    try:
        sb2.start()
    except Exception as e:  # noqa: BLE001
        checks.fail("--fault: sandbox starts with four --fault rules", e)
        return
    try:
        def listed():
            got = sb2.ctl("GET", "/_sandbox/faults")["faults"]
            assert [f["mode"] for f in got] == ["error", "latency", "hang", "truncate"], got
        checks.check("--fault: the four rules are listed by GET /_sandbox/faults", listed)
        bold, dbx, ik = (Target(sb2, p) for p in ("boldsign", "dropboxsign", "iinkedsign"))
        checks.check("--fault error: Dropbox Sign 500 with its error body",
                     lambda: assert_provider_error(dbx, dbx.send(sb2), 500, "flag fault"))

        def trunc():
            s = sbxtest.connect(sb2.port, 10)
            try:
                s.sendall(dbx.raw(sb2))
                st, h, _, body, ended = read_head_and_body_chunks(s, time.monotonic() + 10)
            finally:
                s.close()
            assert len(body) < int(h.get("content-length", "0")), "not truncated: %d bytes of %s" % (len(body), h.get("content-length"))
        checks.check("--fault truncate: fewer bytes than Content-Length", trunc)

        def lat():
            r = bold.send(sb2)
            expect(r, 200)
            assert r.elapsed >= 0.65, "latency 700 ms: %.3fs" % r.elapsed
        checks.check("--fault latency: BoldSign response delayed >= 0.65 s", lat)

        def hang():
            try:
                r = ik.send(sb2, timeout=0.8)
                raise AssertionError("hang: got a response %s" % r.describe())
            except (TimeoutError, sbxtest.ConnectionClosed):
                pass
            expect(ik.send(sb2), 200, "after the count-1 hang")
        checks.check("--fault hang: no response within 0.8 s; the next request is served", hang)
    finally:
        stop_and_check(checks, sb2)
        sb2.tmp.cleanup()

    def refused():
        bad = Sandbox(["--fault", '{"mode":"explode"}'])
        try:
            bad.start()
            raise AssertionError("started with an invalid --fault")
        except RuntimeError as e:
            assert "explode" in str(e) or "mode" in str(e), "the refusal should name the problem: %s" % e
        finally:
            bad.kill()
            assert bad.crash_report() is None, bad.crash_report()
            bad.tmp.cleanup()
    checks.check("--fault with an unknown mode: refused at start, naming it", refused)


def head_limit(checks, sb):
    """--max-head-bytes: the largest request head (default 16 KiB, like a provider's front); a
    larger head is refused with 431, a larger limit takes it; out-of-range values refuse to start."""
    bold = Target(sb, "boldsign")

    def with_header(s, n):
        return s.call(bold.method, bold.url, bold.headers + [("X-Pad", "p" * n)], bold.body)

    def default():
        expect(with_header(sb, 6000), 200, "a 6,000-byte header under the default limit")
        r = with_header(sb, 20000)
        assert r.status == 431, "a 20,000-byte header: %s" % r.describe()
        expect(bold.send(sb), 200, "after the 431")
    checks.check("--max-head-bytes default 16 KiB: 6 KB header served, 20 KB header 431", default)

    big = Sandbox(["--max-head-bytes", "65536"])
    try:
        big.start()
        checks.check("--max-head-bytes 65536: a 20,000-byte header is served",
                     lambda: expect(with_header(big, 20000), 200, "20 KB header"))
    finally:
        stop_and_check(checks, big)
        big.tmp.cleanup()

    def refused():
        for v in ("1000", "2000000", "x"):
            bad = Sandbox(["--max-head-bytes", v])
            try:
                bad.start()
                raise AssertionError("started with --max-head-bytes %s" % v)
            except RuntimeError as e:
                assert "max-head-bytes" in str(e), "the refusal should name the option: %s" % e
            finally:
                bad.kill()
                bad.tmp.cleanup()
    checks.check("--max-head-bytes out of range (1000, 2000000, x): refused at start", refused)


def main(checks, sb):
    sb.config(rate_limit_overrides={"boldsign": 100000, "dropboxsign": 100000, "iinkedsign": 100000})
    fault_modes(checks, sb, "api")
    sb.clear_faults()
    rate_limits(checks, sb)
    via_flag(checks)
    head_limit(checks, sb)


if __name__ == "__main__":
    sbxtest.run(main)
