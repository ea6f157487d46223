"""upstream-intake (issue 8): a burst larger than a lane's intake budget is served in full.

A serving lane starts at most 32 new requests per libmicrohttpd run; the rest of a burst is held
(suspended, oldest first) and started in the next runs, so the lane answers what its upstream
has answered in between. signbridge runs with one lane (limits.http_threads 1) so the whole burst
lands on it. The test opens 240 connections, writes a request on each back to back -- MCP
tools/call list_documents (a body, proxied to the sandbox), ping (a body, answered at once) and
GET /healthz (no body) in turn -- and then reads every answer:
  - every request is answered 200 with its own JSON-RPC id, and every tools/call with a document
    list (the sandbox received one list request per call);
  - signbridge_http_requests_held_total shows requests were held (the budget was exceeded);
  - the lane, busy through the burst, gave its core away (limits.lane_yield_us, set to 1 us
    here so that any busy turn yields): signbridge_lane_yields_total grew;
  - nothing is left held: /metrics' signbridge_http_in_flight falls back to the scrape itself,
    and the lane serves a new session afterwards.
"""

import json
import socket

import uptest
import sbtest  # noqa: E402  (uptest put it on sys.path)

N = 240


def main(t):
    br, sbx = t.br, t.sbx
    port = br.port
    cred = uptest.xkey(sbx.key("boldsign", "us"))
    sid, ver, _ = sbtest.initialize(port, extra=cred, path="/boldsign/mcp")
    held0 = uptest.metric(port, "signbridge_http_requests_held_total")
    yields0 = uptest.metric(port, "signbridge_lane_yields_total")
    lists0 = sbx.route_count("boldsign", "us", "GET /v1/document/list")

    def burst():
        socks = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(N)]
        kinds = []
        wire = []
        for i in range(N):
            k = ("call", "ping", "health")[i % 3]
            kinds.append(k)
            if k == "health":
                wire.append(sbtest.build_request("GET", "/healthz", [], None, port=port))
                continue
            body = {"jsonrpc": "2.0", "id": 1000 + i, "method": "tools/call",
                    "params": {"name": "list_documents", "arguments": {"page_size": 1}}}
            if k == "ping":
                body = {"jsonrpc": "2.0", "id": 1000 + i, "method": "ping"}
            h = sbtest.mcp_headers(session=sid, version=ver, extra=cred)
            wire.append(sbtest.build_request("POST", "/boldsign/mcp", h, body, port=port))
        for s, w in zip(socks, wire):
            s.sendall(w)
        calls = 0
        for i, s in enumerate(socks):
            r = sbtest.read_response(s, timeout=30, method="GET" if kinds[i] == "health" else "POST")
            s.close()
            assert r.status == 200, "request %d (%s): %s" % (i, kinds[i], r.describe())
            if kinds[i] == "health":
                continue
            msg = r.rpc(1000 + i)
            assert "result" in msg, "request %d: %r" % (i, msg)
            if kinds[i] == "call":
                res = msg["result"]
                assert not res.get("isError"), "call %d: %r" % (i, res)
                assert isinstance(res.get("structuredContent", {}).get("documents"), list), res
                calls += 1
        lists = sbx.route_count("boldsign", "us", "GET /v1/document/list") - lists0
        assert lists == calls, "%d proxied calls, %d list requests upstream" % (calls, lists)
        held = uptest.metric(port, "signbridge_http_requests_held_total") - held0
        assert held >= 1, "no request was held: the burst never exceeded the budget"
        yields = uptest.metric(port, "signbridge_lane_yields_total") - yields0
        assert yields >= 1, "the lane never yielded its core during the burst"
        print("# %d answered (%d proxied calls), %d held over the budget, %d yields"
              % (N, calls, held, yields), flush=True)
        return True
    t.check("a burst of %d requests on one lane is answered in full, some held" % N, burst)

    def drained():
        def in_flight():
            return uptest.metric(port, "signbridge_http_in_flight")
        n = uptest.wait_until(lambda: in_flight() <= 1, timeout=10)
        assert n, "signbridge_http_in_flight stays at %d" % in_flight()
        s = br.session("/boldsign/mcp", cred)
        res = s.call("list_documents", {"page_size": 1})
        assert not res.is_error, res.describe()
        return "nothing left in flight; a new session is served"
    t.check("nothing is left held afterwards", drained)


if __name__ == "__main__":
    uptest.run(main, bridge_env={"SIGNBRIDGE_LIMITS_HTTP_THREADS": "1",
                                 "SIGNBRIDGE_LIMITS_LANE_YIELD_US": "1"})
