"""metrics (issue 9): GET /metrics serves the Prometheus text exposition format 0.0.4.

Starts a provider sandbox and a signbridge pointed at it (tests/upstream/uptest.py), scrapes
/metrics, runs some load through /boldsign/mcp (initialize, tools/list, list_documents calls, a
failing get_document, a second session admitted from the region cache, a 404 path), scrapes again
and checks that the counters and histogram counts moved by what the load did.  Every scrape is
parsed by a strict parser written here: each line is `# HELP name text`, `# TYPE name type` or a
sample `name{labels} value`; names and label names are valid; label values are quoted and escaped;
each family has HELP then TYPE before its samples and appears once; no series repeats; histogram
buckets are cumulative, ordered, end with le="+Inf" equal to _count, and have a _sum.  Also: POST
/metrics is 405, a raw path never becomes a label, and with metrics.enabled=false /metrics is 404.
Standard library only.
"""

import json
import math
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "upstream"))

import uptest  # noqa: E402  (puts tests/integration on sys.path too)
from sbtest import request  # noqa: E402

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
VALUE = re.compile(r"[+-]?(Inf|NaN|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)\Z")
TYPES = ("counter", "gauge", "histogram")


class ParseError(AssertionError):
    pass


def parse_labels(s, i, where):
    """Parse `{a="x",b="y"}` starting at s[i] == '{'; returns (labels as tuple of pairs, next i)."""
    assert s[i] == "{"
    i += 1
    labels = []
    if i < len(s) and s[i] == "}":
        return tuple(labels), i + 1
    while True:
        m = LABEL.match(s, i)
        if not m:
            raise ParseError("%s: bad label name at column %d" % (where, i))
        name = m.group(0)
        i = m.end()
        if s[i:i + 2] != '="':
            raise ParseError("%s: expected =\" after label %s" % (where, name))
        i += 2
        val = []
        while True:
            if i >= len(s):
                raise ParseError("%s: unterminated label value" % where)
            c = s[i]
            if c == "\\":
                nx = s[i + 1:i + 2]
                if nx not in ("\\", '"', "n"):
                    raise ParseError("%s: bad escape \\%s in a label value" % (where, nx))
                val.append({"\\": "\\", '"': '"', "n": "\n"}[nx])
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise ParseError("%s: raw newline in a label value" % where)
            else:
                val.append(c)
                i += 1
        if name in (n for n, _ in labels):
            raise ParseError("%s: label %s repeated" % (where, name))
        labels.append((name, "".join(val)))
        if i < len(s) and s[i] == ",":
            i += 1
            continue
        if i < len(s) and s[i] == "}":
            return tuple(labels), i + 1
        raise ParseError("%s: expected , or } after label %s" % (where, name))


def parse_value(v, where):
    if not VALUE.match(v):
        raise ParseError("%s: bad sample value %r" % (where, v))
    return float(v)


def parse_exposition(text):
    """Strict parse. Returns {family: {"type", "help", "samples": [(name, labels dict, value)]}}."""
    if not text.endswith("\n"):
        raise ParseError("the exposition does not end with a newline")
    families = {}
    cur = None          # family whose samples may follow
    pending_help = None  # (name, text) of a HELP not yet followed by TYPE
    seen_series = set()
    for n, line in enumerate(text[:-1].split("\n"), 1):
        where = "line %d %r" % (n, line[:120])
        if line == "":
            raise ParseError("%s: empty line" % where)
        if line.startswith("#"):
            m = re.match(r"# (HELP|TYPE) (\S+) ?(.*)\Z", line, re.S)
            if not m:
                raise ParseError("%s: a comment that is neither HELP nor TYPE" % where)
            kind, name, rest = m.groups()
            if not NAME.match(name):
                raise ParseError("%s: bad metric name" % where)
            if name in families or (pending_help and pending_help[0] == name and kind == "HELP"):
                raise ParseError("%s: family %s described twice" % (where, name))
            if kind == "HELP":
                if pending_help:
                    raise ParseError("%s: HELP of %s not followed by TYPE" % (where, pending_help[0]))
                if re.search(r"\\[^\\n]|\\\Z", rest):
                    raise ParseError("%s: bad escape in HELP text" % where)
                pending_help = (name, rest)
                cur = None
            else:
                if not pending_help or pending_help[0] != name:
                    raise ParseError("%s: TYPE without a HELP just before it" % where)
                if rest not in TYPES:
                    raise ParseError("%s: unknown type %r" % (where, rest))
                families[name] = {"type": rest, "help": pending_help[1], "samples": []}
                cur = name
                pending_help = None
            continue
        m = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line)
        if not m:
            raise ParseError("%s: bad sample name" % where)
        sname = m.group(0)
        i = m.end()
        labels = ()
        if i < len(line) and line[i] == "{":
            labels, i = parse_labels(line, i, where)
        if line[i:i + 1] != " ":
            raise ParseError("%s: expected one space before the value" % where)
        rest = line[i + 1:]
        if " " in rest:
            raise ParseError("%s: trailing fields (timestamps are not expected)" % where)
        value = parse_value(rest, where)
        if cur is None:
            raise ParseError("%s: sample before its family's HELP and TYPE" % where)
        ftype = families[cur]["type"]
        allowed = {cur} if ftype != "histogram" else {cur + "_bucket", cur + "_sum", cur + "_count"}
        if sname not in allowed:
            raise ParseError("%s: sample %s outside family %s (%s)" % (where, sname, cur, ftype))
        ld = dict(labels)
        if sname.endswith("_bucket") and ftype == "histogram":
            if "le" not in ld:
                raise ParseError("%s: bucket without le" % where)
        elif "le" in ld and ftype == "histogram":
            raise ParseError("%s: le outside a bucket" % where)
        key = (sname, tuple(sorted(labels)))
        if key in seen_series:
            raise ParseError("%s: series repeated" % where)
        seen_series.add(key)
        if ftype == "counter" and (value < 0 or math.isnan(value)):
            raise ParseError("%s: negative counter" % where)
        families[cur]["samples"].append((sname, ld, value))
    if pending_help:
        raise ParseError("HELP of %s not followed by TYPE" % pending_help[0])
    for name, f in families.items():
        if f["type"] == "counter" and not name.endswith("_total"):
            raise ParseError("counter %s does not end in _total" % name)
        if f["type"] == "histogram":
            check_histogram(name, f["samples"])
    return families


def check_histogram(name, samples):
    groups = {}
    for sname, ld, v in samples:
        base = tuple(sorted((k, x) for k, x in ld.items() if k != "le"))
        g = groups.setdefault(base, {"buckets": [], "sum": None, "count": None})
        if sname.endswith("_bucket"):
            g["buckets"].append((ld["le"], v))
        elif sname.endswith("_sum"):
            g["sum"] = v
        else:
            g["count"] = v
    for base, g in groups.items():
        where = "%s%s" % (name, dict(base))
        if not g["buckets"] or g["sum"] is None or g["count"] is None:
            raise ParseError("%s: histogram without buckets, _sum or _count" % where)
        les = [le for le, _ in g["buckets"]]
        if les[-1] != "+Inf":
            raise ParseError("%s: last bucket is le=%r, not +Inf" % (where, les[-1]))
        bounds = [float(le) for le in les]
        if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
            raise ParseError("%s: bucket bounds not strictly increasing: %s" % (where, les))
        counts = [v for _, v in g["buckets"]]
        if any(b < a for a, b in zip(counts, counts[1:])):
            raise ParseError("%s: buckets not cumulative: %s" % (where, counts))
        if counts[-1] != g["count"]:
            raise ParseError("%s: +Inf bucket %s != _count %s" % (where, counts[-1], g["count"]))
        if g["sum"] < 0:
            raise ParseError("%s: negative _sum" % where)


# ------------------------------------------------------------------------------------------------


def scrape(port):
    r = request(port, "GET", "/metrics", [], None, timeout=10.0)
    assert r.status == 200, "GET /metrics: " + r.describe()
    ct = r.header("Content-Type", "")
    assert ct.startswith("text/plain") and "version=0.0.4" in ct, "Content-Type %r" % ct
    text = r.body.decode("utf-8")
    return text, parse_exposition(text)


def value(fams, sample, **labels):
    """The value of one sample (0 when absent). sample: a family or a _bucket/_sum/_count name."""
    fam = sample
    for suf in ("_bucket", "_sum", "_count"):
        if fam not in fams and fam.endswith(suf):
            fam = fam[:-len(suf)]
    for sname, ld, v in (fams.get(fam) or {}).get("samples", []):
        if sname == sample and ld == labels:
            return v
    return 0.0


def main(t):
    br, sbx = t.br, t.sbx
    port = br.port
    key = sbx.key("boldsign", "us")
    cred = uptest.xkey(key)
    state = {}

    def first_scrape():
        text, fams = scrape(port)
        for fam, typ in (("signbridge_build_info", "gauge"),
                         ("signbridge_http_requests_total", "counter"),
                         ("signbridge_http_request_duration_seconds", "histogram"),
                         ("signbridge_http_in_flight", "gauge"),
                         ("signbridge_http_connections", "gauge"),
                         ("signbridge_tool_calls_total", "counter"),
                         ("signbridge_upstream_request_duration_seconds", "histogram"),
                         ("signbridge_upstream_requests_total", "counter"),
                         ("signbridge_sessions", "gauge"),
                         ("signbridge_admissions_total", "counter"),
                         ("signbridge_upstream_in_flight", "gauge"),
                         ("signbridge_lane_yields_total", "counter"),
                         ("signbridge_store_operation_duration_seconds", "histogram"),
                         ("signbridge_ratelimit_refusals_total", "counter"),
                         ("signbridge_oauth_events_total", "counter")):
            assert fam in fams, "family %s missing; have %s" % (fam, sorted(fams))
            assert fams[fam]["type"] == typ, "%s is a %s" % (fam, fams[fam]["type"])
            assert fams[fam]["help"], "%s has an empty HELP" % fam
        bi = fams["signbridge_build_info"]["samples"]
        assert len(bi) == 1 and bi[0][2] == 1 and bi[0][1].get("version"), "build_info: %r" % bi
        # the in-flight gauge counts this very scrape
        assert value(fams, "signbridge_http_in_flight") >= 1, "http_in_flight < 1"
        state["before"] = fams
        return "%d families, %d lines" % (len(fams), text.count("\n"))
    t.check("first scrape: 200 text/plain version=0.0.4, strictly valid, every family present",
            first_scrape)

    def load():
        s1 = br.session("/boldsign/mcp", cred)
        r, msg = s1.rpc("tools/list")
        assert r.status == 200 and msg and "result" in msg, "tools/list: " + r.describe()
        for _ in range(3):
            res = s1.call("list_documents", {"page_size": 2})
            assert not res.is_error, "list_documents: " + res.describe()
        bad = s1.call("get_document", {"document_id": "no-such-document-0000"})
        assert bad.is_error, "get_document on a bogus id succeeded: " + bad.describe()
        # a second session with the same key: admitted from the region cache
        s2 = br.session("/boldsign/mcp", cred)
        res = s2.call("list_documents", {"page_size": 1})
        assert not res.is_error, "list_documents (2nd session): " + res.describe()
        r = request(port, "GET", "/no/such/path-%d" % os.getpid(), [], None)
        assert r.status == 404, "GET /no/such/path: " + r.describe()
        # an OAuth token request from an unknown client: refused (an OAuth event)
        r = request(port, "POST", "/token", [("Content-Type", "application/x-www-form-urlencoded")],
                    b"grant_type=refresh_token&refresh_token=nope&client_id=no-such-client")
        assert r.status in (400, 401), "POST /token: " + r.describe()
        return "2 sessions, 4 list_documents, 1 failing get_document"
    t.check("load: initialize, tools/list, list_documents x4, a failing call, a 404", load)

    def moved():
        b = state["before"]
        want = [
            # (what, sample, labels, at least this much more)
            ("POST /mcp 200 (2 initialize, tools/list, 5 calls)", "signbridge_http_requests_total",
             {"route": "mcp", "method": "POST", "status": "200"}, 8),
            ("POST /mcp 202 (notifications/initialized x2)", "signbridge_http_requests_total",
             {"route": "mcp", "method": "POST", "status": "202"}, 2),
            ("GET not_found 404", "signbridge_http_requests_total",
             {"route": "not_found", "method": "GET", "status": "404"}, 1),
            ("GET /metrics 200 (the first scrape)", "signbridge_http_requests_total",
             {"route": "metrics", "method": "GET", "status": "200"}, 1),
            ("mcp request durations", "signbridge_http_request_duration_seconds_count",
             {"route": "mcp"}, 10),
            ("list_documents ok", "signbridge_tool_calls_total",
             {"tool": "list_documents", "provider": "boldsign", "region": "us", "outcome": "ok"}, 4),
            ("get_document error", "signbridge_tool_calls_total",
             {"tool": "get_document", "provider": "boldsign", "region": "us", "outcome": "error"}, 1),
            ("upstream 2xx boldsign/us", "signbridge_upstream_requests_total",
             {"provider": "boldsign", "region": "us", "status_class": "2xx"}, 4),
            ("upstream 4xx boldsign/us (the bogus id)", "signbridge_upstream_requests_total",
             {"provider": "boldsign", "region": "us", "status_class": "4xx"}, 1),
            ("upstream durations boldsign/us", "signbridge_upstream_request_duration_seconds_count",
             {"provider": "boldsign", "region": "us"}, 5),
            ("admission ok", "signbridge_admissions_total",
             {"provider": "boldsign", "outcome": "ok"}, 1),
            ("admission cached", "signbridge_admissions_total",
             {"provider": "boldsign", "outcome": "cached"}, 1),
            ("OAuth token refused", "signbridge_oauth_events_total", {"event": "token_refused"}, 1),
        ]
        last = []

        def ok():
            # a request is counted when it completes, just after its response went out: retry
            text, a = scrape(port)
            state["after"], state["after_text"] = a, text
            last[:] = [(w, value(b, s, **lb), value(a, s, **lb), d) for w, s, lb, d in want
                       if value(a, s, **lb) - value(b, s, **lb) < d]
            return not last
        uptest.wait_until(ok, timeout=10.0, step=0.2)
        assert not last, "; ".join("%s: %s -> %s (want +%d)" % x for x in last)
        a = state["after"]
        store_ops = sum(v for sn, _, v in a["signbridge_store_operation_duration_seconds"]["samples"]
                        if sn.endswith("_count"))
        store_before = sum(v for sn, _, v in
                           b["signbridge_store_operation_duration_seconds"]["samples"]
                           if sn.endswith("_count"))
        assert store_ops > store_before, "store latency histogram did not move"
        assert value(a, "signbridge_ratelimit_refusals_total", limit="rate") == 0, "refusals"
        assert value(a, "signbridge_sessions") >= 2, "sessions gauge %s" % value(a, "signbridge_sessions")
        sums = value(a, "signbridge_upstream_request_duration_seconds_sum",
                     provider="boldsign", region="us")
        assert sums > value(b, "signbridge_upstream_request_duration_seconds_sum",
                            provider="boldsign", region="us"), "upstream _sum did not grow"
        return "%d counters checked" % len(want)
    t.check("second scrape: counters, histogram counts and gauges moved by the load", moved)

    def no_raw_paths():
        text = state["after_text"]
        assert "/no/such/path" not in text and "path-%d" % os.getpid() not in text, \
            "a raw path reached the exposition"
        routes = {ld.get("route") for _, ld, _ in state["after"]["signbridge_http_requests_total"]["samples"]}
        assert routes <= {"mcp", "healthz", "readyz", "metrics", "files", "oauth", "not_found"}, routes
        return "routes %s" % sorted(routes)
    t.check("route labels are route kinds, never raw paths", no_raw_paths)

    def bad_methods():
        r = request(port, "POST", "/metrics", [("Content-Type", "text/plain")], b"x")
        assert r.status == 405, "POST /metrics: " + r.describe()
        r = request(port, "HEAD", "/metrics", [], None)
        assert r.status == 200, "HEAD /metrics: " + r.describe()
        # hostile methods all land in one series
        for m in ("FOO", "BAR", "BAZ%d" % os.getpid()):
            request(port, m, "/x", [], None)
        text, fams = scrape(port)
        assert "BAZ" not in text, "a raw method reached the exposition"
        return "405 for POST; methods outside the usual set count as OTHER"
    t.check("POST /metrics is 405, HEAD is 200; unknown methods are not labels", bad_methods)

    def readyz():
        r = request(port, "GET", "/readyz", [], None)
        assert r.status == 200, "/readyz: " + r.describe()
        o = json.loads(r.body)
        assert o.get("status") == "ready" and o.get("keys_loaded") is True, o
        return json.dumps(o)
    t.check("/readyz says the signing keys are loaded", readyz)

    def keep_alive():
        # answers to GET requests (health checks, metadata, scrapes) leave the connection open:
        # three requests on one connection, each answered 200 without "Connection: close"
        import socket
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            buf = b""
            for path in ("/healthz", "/readyz", "/metrics"):
                s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
                while b"\r\n\r\n" not in buf:
                    chunk = s.recv(65536)
                    assert chunk, "%s: the connection was closed" % path
                    buf += chunk
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                assert lines[0].startswith("HTTP/1.1 200"), "%s: %s" % (path, lines[0])
                hdrs = {k.strip().lower(): v.strip() for k, _, v in
                        (ln.partition(":") for ln in lines[1:])}
                assert hdrs.get("connection", "").lower() != "close", "%s: Connection: close" % path
                n = int(hdrs["content-length"])
                while len(buf) < n:
                    chunk = s.recv(65536)
                    assert chunk, "%s: body cut short" % path
                    buf += chunk
                buf = buf[n:]
        finally:
            s.close()
        return "3 answers on one connection"
    t.check("GET /healthz, /readyz and /metrics keep the connection open", keep_alive)

    def lanes_balanced():
        # 40 connections opened at once and left idle (each lane holds what it accepted until
        # the connection timeout): the lanes (limits.http_threads of them) hold about half each,
        # whichever lane the kernel wakes to accept them
        import socket
        socks = []
        try:
            for _ in range(40):
                socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            deadline = time.monotonic() + 5
            while True:
                _, fams = scrape(port)
                fam = fams.get("signbridge_http_connections")
                assert fam and fam["type"] == "gauge" and fam["help"], \
                    "signbridge_http_connections missing"
                per = {ld["lane"]: v for _, ld, v in fam["samples"]}
                # the scrape's own connection counts too (while it is open)
                if sum(per.values()) >= 40 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        finally:
            for s in socks:
                s.close()
        assert len(per) >= 2, "lanes: %r" % per
        assert sum(per.values()) >= 40, "the 40 connections are not all counted: %r" % per
        assert max(per.values()) - min(per.values()) <= 2, "lanes out of balance: %r" % per
        return "per lane: " + ", ".join("%s=%d" % (k, v) for k, v in sorted(per.items()))
    t.check("40 connections opened at once are shared evenly between the serving lanes",
            lanes_balanced)

    def disabled():
        br2 = uptest.Bridge(sbx, env={"SIGNBRIDGE_METRICS_ENABLED": "false",
                                      "SIGNBRIDGE_ADMIN_LISTEN": "127.0.0.1:0",
                                      "SIGNBRIDGE_ADMIN_TOKEN": "metrics-test-operator-token"})
        admin_port_file = os.path.join(br2.dir, "admin-port")
        br2.args += ["--admin-port-file", admin_port_file]
        br2.start()
        try:
            r = request(br2.port, "GET", "/metrics", [], None)
            assert r.status == 404, "GET /metrics with metrics.enabled=false: " + r.describe()
            r = request(br2.port, "GET", "/healthz", [], None)
            assert r.status == 200, "/healthz: " + r.describe()
            with open(admin_port_file) as f:
                aport = int(f.read())
            r = request(aport, "GET", "/metrics", [], None)
            assert r.status == 200, "admin GET /metrics: " + r.describe()
            fams = parse_exposition(r.body.decode("utf-8"))
            assert "signbridge_build_info" in fams, sorted(fams)
        finally:
            rc = br2.stop()
            br2.tmp.cleanup()
        assert rc == 0, "the second signbridge exited %r" % rc
        return "404"
    t.check("metrics.enabled=false: GET /metrics is 404 there, 200 on the admin listener", disabled)

    def parser_is_strict():
        good = ('# HELP a_total A.\n# TYPE a_total counter\na_total{x="1\\"\\\\\\n"} 3\n'
                '# HELP h H.\n# TYPE h histogram\nh_bucket{le="0.1"} 1\nh_bucket{le="+Inf"} 2\n'
                'h_sum 0.5\nh_count 2\n')
        parse_exposition(good)
        bad = [
            "a_total 1\n",                                              # no HELP/TYPE
            "# HELP a_total A.\na_total 1\n",                           # no TYPE
            "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"\\q\"} 1\n",  # bad escape
            "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"a\"b\"} 1\n",
            "# HELP a_total A.\n# TYPE a_total counter\na_total{1x=\"a\"} 1\n",
            "# HELP a_total A.\n# TYPE a_total counter\na_total one\n",
            "# HELP a-b A.\n# TYPE a-b counter\n",
            "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
            "h_sum 0\nh_count 1\n",                                     # not cumulative
            "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
            "h_sum 0\nh_count 3\n",                                     # +Inf != count
            "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 0\nh_count 1\n",
            "# HELP a_total A.\n# TYPE a_total counter\na_total 1\na_total 2\n",  # repeated
            "# HELP a_total A.\n# TYPE a_total counter\na_total 1",     # no final newline
        ]
        for i, b in enumerate(bad):
            try:
                parse_exposition(b)
            except ParseError:
                continue
            raise AssertionError("bad exposition #%d accepted: %r" % (i, b))
        return "%d malformed expositions rejected" % len(bad)
    t.check("the test's parser rejects malformed expositions", parser_is_strict)


uptest.run(main)
