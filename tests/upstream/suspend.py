"""upstream-suspend (issue 8): what reaches a connection while its tools/call waits on the upstream.

A tools/call suspends its connection until the provider answers. The lean build keeps such a
connection in libmicrohttpd's epoll set and remembers the events that arrive for it instead of
marking it ready for everything when it resumes (scripts/lean-deps-patches/
libmicrohttpd-suspend-keep-epoll.patch); the default build removes and re-adds it. Either way,
with one serving lane (limits.http_threads 1) and the sandbox holding each list answer 400 ms:
  - a second request sent on the same keep-alive connection while the first call waits is
    answered after it, in order, both correct (the bytes that came during the wait are read);
  - a client that closes its connection while its call waits is noticed: signbridge's open
    descriptors and signbridge_http_in_flight return to where they were, and the next call on a
    new connection is answered;
  - twenty calls on one connection, each sent only after the last answer (no event during the
    waits): every one answered, none waiting for a read that nothing announced.
"""

import json
import re
import socket
import time

import uptest  # first: puts tests/integration on sys.path
import sbtest  # noqa: E402

LATENCY_MS = 400


def call_body(i, tool="list_documents"):
    if tool == "ping":
        return {"jsonrpc": "2.0", "id": i, "method": "ping"}
    return {"jsonrpc": "2.0", "id": i, "method": "tools/call",
            "params": {"name": tool, "arguments": {"page_size": 2}}}


class Answer:
    """One HTTP response read off a connection that carries two (sbtest.read_response reads one
    and may take bytes of the next)."""

    def __init__(self, head, body):
        self.status = int(head.split(b" ", 2)[1])
        self.head, self.body = head, body

    def rpc(self, want_id):
        msg = json.loads(self.body)
        assert msg.get("id") == want_id, "answer to id %r, expected %r" % (msg.get("id"), want_id)
        return msg

    def describe(self):
        return "%d %r" % (self.status, self.body[:300])


def read_two(s, timeout):
    """The two responses the connection carries, each framed by its Content-Length."""
    s.settimeout(timeout)
    data, out = b"", []
    while len(out) < 2:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            head = data[:end]
            m = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
            assert m, "a response without Content-Length: %r" % head[:300]
            n = int(m.group(1))
            if len(data) >= end + 4 + n:
                out.append(Answer(head, data[end + 4:end + 4 + n]))
                data = data[end + 4 + n:]
                continue
        d = s.recv(65536)
        assert d, "the connection closed after %d of 2 responses" % len(out)
        data += d
    return out


def check_list(r, i):
    assert r.status == 200, "call %d: %s" % (i, r.describe())
    res = r.rpc(i).get("result")
    assert res and not res.get("isError"), "call %d: %r" % (i, res)
    assert isinstance(res.get("structuredContent", {}).get("documents"), list), res


def main(t):
    br, sbx = t.br, t.sbx
    port = br.port
    cred = uptest.xkey(sbx.key("boldsign", "us"))
    sbx.add_fault(provider="boldsign", region="us", method="GET", route="/v1/document/list",
                  mode="latency", latency_ms=LATENCY_MS)
    sid, ver, _ = sbtest.initialize(port, extra=cred, path="/boldsign/mcp")
    h = sbtest.mcp_headers(session=sid, version=ver, extra=cred)

    def req(i, tool="list_documents"):
        return sbtest.build_request("POST", "/boldsign/mcp", h, call_body(i, tool), port=port)

    def pipelined():
        s = sbtest.connect(port, timeout=30)
        try:
            t0 = time.monotonic()
            s.sendall(req(10))
            time.sleep(LATENCY_MS / 4000.0)  # the call is waiting on the sandbox now
            s.sendall(req(11, "ping"))
            r1, r2 = read_two(s, 20)
            check_list(r1, 10)
            assert r2.status == 200, r2.describe()
            assert r2.rpc(11).get("result") == {}, r2.describe()
            took = time.monotonic() - t0
        finally:
            s.close()
        return "both answered in order, %.2f s" % took
    t.check("a request sent while the call on its connection waits is answered after it",
            pipelined)

    def closed():
        time.sleep(0.5)
        fds0, inflight0 = br.fd_count(), uptest.metric(port, "signbridge_http_in_flight")
        for i in range(5):
            s = sbtest.connect(port, timeout=30)
            s.sendall(req(20 + i))
            time.sleep(LATENCY_MS / 4000.0)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x00" * 8)  # plain FIN
            s.close()
        deadline = time.monotonic() + 10
        while True:
            fds, inflight = br.fd_count(), uptest.metric(port, "signbridge_http_in_flight")
            # the scrape itself is one request in flight
            if fds <= fds0 and inflight <= inflight0:
                break
            assert time.monotonic() < deadline, \
                "after 5 closed calls: fds %d (before %d), in flight %g (before %g)" % (
                    fds, fds0, inflight, inflight0)
            time.sleep(0.1)
        s = sbtest.connect(port, timeout=30)
        try:
            s.sendall(req(30))
            check_list(sbtest.read_response(s, timeout=20), 30)
        finally:
            s.close()
        return "fds %d, in flight %g: as before; the next call answered" % (fds, inflight)
    t.check("a client that closes while its call waits is let go", closed)

    def sequential():
        s = sbtest.connect(port, timeout=30)
        try:
            t0 = time.monotonic()
            for i in range(20):
                s.sendall(req(40 + i))
                check_list(sbtest.read_response(s, timeout=20), 40 + i)
            took = time.monotonic() - t0
        finally:
            s.close()
        # each waits LATENCY_MS upstream; a connection left waiting for a read would stall
        assert took < 20 * LATENCY_MS / 1000.0 + 10, "%.1f s for 20 calls" % took
        return "20 calls in %.1f s" % took
    t.check("calls one after another on one connection, each resumed once", sequential)


if __name__ == "__main__":
    uptest.run(main, bridge_env={"SIGNBRIDGE_LIMITS_HTTP_THREADS": "1"})
