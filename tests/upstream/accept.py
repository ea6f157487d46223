"""upstream-accept (issue 8): the serving lanes' own accept when descriptors run out.

signbridge runs under `prlimit --nofile=96` (idle it holds ~25).  The test opens 150 connections
at once and leaves them idle, so accept(2) fails with EMFILE while the kernel still queues more.
Then:
  - signbridge does not spin: it stops accepting for 100 ms at a time (CPU over 2 s < 0.5 s, and
    at most ~20 "http_accept" warnings per lane and second in the log);
  - once the test closes its connections, accepting resumes by itself: /healthz answers, and an
    MCP session lists tools and lists documents;
  - its descriptors go back to where they were, and signbridge_http_connections{lane} counts
    only the connections still open (every one taken was counted in and out).
"""

import json
import socket
import time

import uptest
import sbtest  # noqa: E402  (uptest put it on sys.path)

NOFILE = 96
OPEN = 150


class LimitedBridge(uptest.Bridge):
    def command(self):
        return ["prlimit", "--nofile=%d:%d" % (NOFILE, NOFILE), "--"] + super().command()


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, clock ticks


def main(t):
    br, sbx = t.br, t.sbx
    port = br.port
    fds_idle = br.fd_count()
    socks = []
    state = {}

    def exhaust():
        for _ in range(OPEN):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        time.sleep(0.5)  # let the lanes accept what they can
        c0 = cpu_s(br.pid)
        time.sleep(2.0)
        used = cpu_s(br.pid) - c0
        fds = br.fd_count()
        state["fds"] = fds
        assert fds <= NOFILE, "%d descriptors open under a limit of %d" % (fds, NOFILE)
        assert fds >= NOFILE - 8, "only %d descriptors taken: the limit was not reached" % fds
        assert used < 0.5, "%.2f s of CPU in 2 s with the descriptors exhausted: spinning" % used
        warns = [json.loads(line) for line in br.stderr_text().splitlines()
                 if '"http_accept"' in line]
        assert warns, "no http_accept warning logged"
        assert all(w.get("level") == "warn" for w in warns), warns[:3]
        assert len(warns) <= 2 * 3 * 20, "%d http_accept warnings in ~3 s" % len(warns)
        return "%d descriptors in use (limit %d), %.2f s CPU in 2 s, %d warnings" % (
            fds, NOFILE, used, len(warns))
    t.check("%d connections against a limit of %d descriptors: accept pauses, no spinning"
            % (OPEN, NOFILE), exhaust)

    def resumes():
        for s in socks:
            s.close()
        socks.clear()
        deadline = time.monotonic() + 10
        ok = False
        while time.monotonic() < deadline and not ok:
            try:
                ok = sbtest.request(port, "GET", "/healthz", [], None, timeout=2).status == 200
            except OSError:
                time.sleep(0.1)
        assert ok, "/healthz did not answer within 10 s of the connections closing"
        s = br.session("/boldsign/mcp", uptest.xkey(sbx.key("boldsign", "us")))
        s.rpc("tools/list")
        res = s.call("list_documents", {"page_size": 2})
        assert not res.is_error, res.describe()
        fds_end = uptest.wait_until(lambda: br.fd_count() <= fds_idle + 8, timeout=10)
        assert fds_end, "descriptors: %d idle, %d after" % (fds_idle, br.fd_count())
        return "served again; descriptors %d idle, %d after" % (fds_idle, br.fd_count())
    t.check("once the connections close, accepting resumes by itself", resumes)

    def counted():
        # every connection taken and closed was counted in and out: the lanes now hold only the
        # scrape's own connection (and the session's, if its keep-alive is still open)
        def held():
            r = sbtest.request(port, "GET", "/metrics", [], None, timeout=5)
            assert r.status == 200, r.describe()
            return sum(float(line.rsplit(" ", 1)[1]) for line in r.body.decode().splitlines()
                       if line.startswith("signbridge_http_connections{"))
        n = uptest.wait_until(lambda: held() <= 2, timeout=10)
        assert n, "signbridge_http_connections still sums to %d" % held()
        return "the lanes hold %d connection(s)" % held()
    t.check("signbridge_http_connections returns to the connections still open", counted)


if __name__ == "__main__":
    uptest.Bridge = LimitedBridge
    uptest.run(main)
