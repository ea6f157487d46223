"""upstream-poll (issue 8): a serving lane polls before it sleeps while its events come soon.

signbridge runs with one serving lane (limits.http_threads 1) and limits.lane_poll_us at its
maximum, 100 ms, so that a sanitizer build's slower turns still fall within it. The test:
  - sends 200 tools/call list_documents one after another on one keep-alive connection (each
    proxied to the zero-latency sandbox): every answer is a document list, and
    signbridge_lane_polls_total{result="event"} grew -- the lane found the upstream's answers and
    the next requests by polling, instead of sleeping until they woke it;
  - then leaves it idle for 3 s: the polls stop (no more than the few a /metrics scrape, itself
    a request, brings) and the process uses under 5% of a core (a lane whose window stayed open
    would poll up to 100 ms of every 1 s wait: 10%);
  - starts a second signbridge with limits.lane_poll_us 0 and sends the same calls: both series
    stay at 0.
"""

import os
import time

import uptest
import sbtest  # noqa: E402  (uptest put it on sys.path)

CALLS = 200
CAP_US = 100000


def metric(port, name, label):
    r = sbtest.request(port, "GET", "/metrics", [], None, timeout=5)
    assert r.status == 200, r.describe()
    want = '%s{result="%s"} ' % (name, label)
    for line in r.body.decode().splitlines():
        if line.startswith(want):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no %s in /metrics" % want.strip())


def polls(port):
    return (metric(port, "signbridge_lane_polls_total", "event"),
            metric(port, "signbridge_lane_polls_total", "sleep"))


def calls(br, cred):
    """CALLS tools/call list_documents on one connection; each answer checked."""
    port = br.port
    sid, ver, _ = sbtest.initialize(port, extra=cred, path="/boldsign/mcp")
    h = sbtest.mcp_headers(session=sid, version=ver, extra=cred)
    s = sbtest.connect(port, timeout=30)
    try:
        for i in range(CALLS):
            body = {"jsonrpc": "2.0", "id": 100 + i, "method": "tools/call",
                    "params": {"name": "list_documents", "arguments": {"page_size": 2}}}
            s.sendall(sbtest.build_request("POST", "/boldsign/mcp", h, body, port=port))
            r = sbtest.read_response(s, timeout=30)
            assert r.status == 200, "call %d: %s" % (i, r.describe())
            res = r.rpc(100 + i).get("result")
            assert res and not res.get("isError"), "call %d: %r" % (i, res)
            assert isinstance(res.get("structuredContent", {}).get("documents"), list), res
    finally:
        s.close()


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))


def main(t):
    br, sbx = t.br, t.sbx
    cred = uptest.xkey(sbx.key("boldsign", "us"))

    def polled():
        e0, s0 = polls(br.port)
        lists0 = sbx.route_count("boldsign", "us", "GET /v1/document/list")
        calls(br, cred)
        lists = sbx.route_count("boldsign", "us", "GET /v1/document/list") - lists0
        assert lists == CALLS, "%d calls, %d list requests upstream" % (CALLS, lists)
        e1, s1 = polls(br.port)
        assert e1 - e0 >= 1, "no poll found an event in %d calls (sleeps %d)" % (CALLS, s1 - s0)
        return "%d polls found an event, %d ran out and slept" % (e1 - e0, s1 - s0)
    t.check("%d calls on one connection: the lane polls for its events" % CALLS, polled)

    def idle():
        time.sleep(1.5)  # the lane's next waits (1 s at most each) end its window
        before = polls(br.port)
        c0 = cpu_seconds(br.pid)
        time.sleep(3)
        used = cpu_seconds(br.pid) - c0
        after = polls(br.port)
        # the scrape that read `before` is itself a request, with a poll or two after it
        n = sum(after) - sum(before)
        assert n <= 4, "polls went on while idle: %r -> %r" % (before, after)
        assert used < 0.15, "%.2f s of CPU in 3 s idle" % used
        return "%d polls (the scrape's own) and %.2f s of CPU in 3 s idle" % (n, used)
    t.check("an idle lane stops polling", idle)

    def off():
        b2 = uptest.Bridge(sbx, env={"SIGNBRIDGE_LIMITS_HTTP_THREADS": "1",
                                     "SIGNBRIDGE_LIMITS_LANE_POLL_US": "0"})
        b2.start()
        try:
            calls(b2, cred)
            got = polls(b2.port)
            assert got == (0, 0), "lane_poll_us 0, yet polls %r" % (got,)
        finally:
            uptest.stop_checked(t.checks, b2, "the second signbridge")
            b2.tmp.cleanup()
        return "no poll with lane_poll_us 0"
    t.check("limits.lane_poll_us 0 turns polling off", off)


if __name__ == "__main__":
    uptest.run(main, bridge_env={"SIGNBRIDGE_LIMITS_HTTP_THREADS": "1",
                                 "SIGNBRIDGE_LIMITS_LANE_POLL_US": str(CAP_US)})
