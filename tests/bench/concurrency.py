"""Concurrency benchmark of signbridge (issue 4): N concurrent MCP tools/call list_documents,
each on its own HTTP connection, through signbridge to a sandbox answering that route after 1 s.

Run by tests/bench/concurrency.sh (which picks the binaries); usage:
    python3 concurrency.py --signbridge BIN --sandbox BIN [--calls 2000] [--latency-ms 1000]
                           [--max-wall 2.5] [--thread-slack 2] [--smoke]
                           [--client c|python] [--client-bin PATH]
                           [--upstream-front none|nginx] [--nginx BIN] [--h2-streams 256]
                           [--max-host-connections N]

Setup (untimed): sandbox (--no-rate-limits) + signbridge on port 0; a latency fault of
--latency-ms on BoldSign's GET /v1/document/list; N connections opened to signbridge and kept
alive; a few MCP sessions initialized (one per --sessions, shared round-robin by the connections:
a session carries many concurrent calls); each call's request bytes built in advance.
Timed: every connection sends its tools/call at once; the wall time runs from the first send to
the last complete response.  Meanwhile /proc/PID/status of signbridge is sampled (Threads, VmHWM),
and every 250 ms or so the CPU of signbridge, the sandbox and the load client ("bench cpu timeline":
the cores each kept busy; a sum near 2 means the burst waits for this 2-core machine's CPU).

The load client (--client): "c" (the default when --client-bin, tests/bench/conc_client.c built as
bench_conc_client, is executable) opens the N connections and drives the timed phase and the
baseline from one epoll thread, run as a subprocess (this script keeps sampling meanwhile; "go" on
its stdin starts the clock); "python" (the default otherwise) does it all with asyncio here, which
costs ~5 s of client time for 10,000 calls on its own.  Both feed the same checks and lines.
Latency: "bench latency" runs from the instant a call's own request write began to its complete
response (as the asyncio client always measured it); "bench latency from send" from the end of
that write; "bench latency from t0" from t0, the instant every call was released.
--upstream-front nginx: signbridge's provider traffic goes through an nginx started here (its own
prefix, config, throwaway CA from tests/sandbox/make-test-ca.sh and logs in a temp dir; one worker;
`listen 127.0.0.1:PORT ssl http2`; proxy_pass over HTTP/1.1 keep-alive to the sandbox), as real
providers answer over TLS + HTTP/2: signbridge gets --sandbox-url https://127.0.0.1:PORT and
SIGNBRIDGE_UPSTREAM_CA_FILE.  The /_sandbox/ control calls and the baseline still go straight to
the sandbox (the load client speaks plain HTTP/1.1 only).  The front's connections (sampled through
the kernel's sock_diag, tcp_to, and counted by its stub_status on a second, plain-HTTP listener)
are printed, and it must exit 0 on SIGQUIT with no [crit]/[alert]/[emerg] in its error log.
Prints plain lines of figures, "ok - ..."/"not ok - ..." checks and "N passed, N failed"; exits 1
unless every call succeeded and (without --smoke) the wall time is within --max-wall and the thread
count stayed within --thread-slack of its idle value.
"""

import argparse
import asyncio
import calendar
import json
import os
import re
import resource
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "upstream"))

import uptest  # noqa: E402
import sbtest  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--signbridge", required=True)
    p.add_argument("--sandbox", required=True)
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--sessions", type=int, default=20)
    p.add_argument("--latency-ms", type=int, default=1000)
    p.add_argument("--max-wall", type=float, default=2.5)
    p.add_argument("--thread-slack", type=int, default=2)
    p.add_argument("--settle-time-wait", type=float, default=0, metavar="S",
                   help="wait up to S seconds for the machine's TIME_WAIT sockets (left by earlier "
                        "runs) to drop under 1,000 before starting: each makes connect() search "
                        "longer for a free port (default 0: only report them)")
    # 1 by default: the figure is about holding 2,000 calls in flight; with 20 documents per page
    # the load generator and the sandbox alone need ~2.9 s on 2 cores (see the baseline line)
    p.add_argument("--page-size", type=int, default=1)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--client", choices=["c", "python"], default=None,
                   help="load client: c (default when --client-bin is executable) or python")
    p.add_argument("--client-bin", default=None, help="bench_conc_client (tests/bench/conc_client.c)")
    p.add_argument("--client-timeout-s", type=int, default=120,
                   help="the C client's bound on each of its phases")
    p.add_argument("--upstream-front", choices=["none", "nginx"], default="none",
                   help="nginx: signbridge reaches the sandbox through an nginx TLS + HTTP/2 front "
                        "(as real providers answer), not over plain HTTP/1.1")
    p.add_argument("--nginx", default="/usr/sbin/nginx", help="the nginx binary of --upstream-front nginx")
    p.add_argument("--proxy-floor", choices=["none", "nginx"], default="none",
                   help="nginx: after the baseline, the same calls through nginx as a plain "
                        "reverse proxy of the sandbox (one worker per core): the floor any proxy "
                        "sets on this machine (C client only)")
    p.add_argument("--h2-streams", type=int, default=256,
                   help="the front's http2_max_concurrent_streams")
    p.add_argument("--max-host-connections", type=int, default=None,
                   help="SIGNBRIDGE_UPSTREAM_MAX_HOST_CONNECTIONS (per lane); default "
                        "max(8192, calls + 256) straight to the sandbox (one HTTP/1.1 connection "
                        "per call in flight), signbridge's own default through the nginx front")
    p.add_argument("--helpers-batch", action="store_true",
                   help="run the sandbox and the C load client as SCHED_BATCH (every thread): they "
                        "no longer preempt the proxy measured when they wake, as an upstream and "
                        "a load generator on machines of their own never do (peer.sh has the same "
                        "option); signbridge and nginx (the proxy floor) run as they are")
    p.add_argument("--sb-env", action="append", default=[], metavar="NAME=VALUE",
                   help="an environment variable for signbridge (the harness passes no other "
                        "SIGNBRIDGE_* through); repeatable")
    a = p.parse_args()
    for kv in a.sb_env:
        if "=" not in kv or not kv.split("=", 1)[0]:
            p.error("--sb-env wants NAME=VALUE, got %r" % kv)
    have_bin = bool(a.client_bin) and os.access(a.client_bin, os.X_OK)
    if a.client is None:
        a.client = "c" if have_bin else "python"
    return a


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, need))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals))) - 1))
    return sorted_vals[i]


SENT = {}  # call index -> when its request was fully written
STARTED = {}  # call index -> when its request write began (the start of its "bench latency")
CLK = os.sysconf("SC_CLK_TCK")


def nofile_of(pid):
    """The soft RLIMIT_NOFILE of a process, or None."""
    try:
        with open("/proc/%d/limits" % pid) as f:
            for line in f:
                if line.startswith("Max open files"):
                    v = line.split()[3]
                    return None if v == "unlimited" else int(v)
    except (OSError, ValueError, IndexError):
        pass
    return None


HELPERS_BATCH = False  # --helpers-batch


def batch_threads(pid):
    """Every thread of pid to SCHED_BATCH (a helper of the measurement: the sandbox, the client)."""
    if not HELPERS_BATCH:
        return
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            os.sched_setscheduler(int(tid), os.SCHED_BATCH, os.sched_param(0))
        except ProcessLookupError:
            pass


def cpu_s(pid):
    """(user, system) CPU seconds of a process (all its threads)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) / float(CLK), int(fields[12]) / float(CLK))


def iso_ms(ts):
    """Milliseconds since the epoch of the sandbox log's "2026-11-22T09:16:49.348Z"."""
    m = re.match(r"(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)(?:\.(\d+))?Z", ts)
    if not m:
        return float("nan")
    y, mo, d, h, mi, se = (int(x) for x in m.groups()[:6])
    frac = float("0." + m.group(7)) if m.group(7) else 0.0
    return (calendar.timegm((y, mo, d, h, mi, se)) + frac) * 1000.0


async def open_all(port, n, batch=100):
    conns = []
    for i in range(0, n, batch):
        chunk = [uptest.AsyncConn(port) for _ in range(min(batch, n - i))]
        await asyncio.gather(*(c.open() for c in chunk))
        conns.extend(chunk)
    return conns


async def timed_call(conn, payload, out, idx):
    t = time.monotonic()
    STARTED[idx] = t
    try:
        conn.writer.write(payload)
        await conn.writer.drain()
        SENT[idx] = time.monotonic()
        st, h, b = await conn.read_response()
        out[idx] = (st, h, b, time.monotonic() - t, None)
    except Exception as e:  # noqa: BLE001
        out[idx] = (0, {}, b"", time.monotonic() - t, "%s: %s" % (type(e).__name__, e))


def write_requests(path, payloads):
    """The C client's --requests file: per request a decimal length line, then the bytes."""
    with open(path, "wb") as f:
        for p in payloads:
            f.write(b"%d\n" % len(p))
            f.write(p)


def parse_headers(raw):
    """{lower-case name: value} of a raw status line + headers block (as AsyncConn reads them)."""
    hdrs = {}
    for ln in raw.decode("latin-1").split("\r\n")[1:]:
        if ":" in ln:
            k, v = ln.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
    return hdrs


def read_client_out(path, n):
    """Records of the C client's --out file: [(status, headers, body, start_s, sent_s or None,
    done_s, error or None)], index = call.  Times: seconds since "go"."""
    with open(path, "rb") as f:
        data = f.read()
    recs = [None] * n
    pos = 0
    while pos < len(data):
        nl = data.index(b"\n", pos)
        fields = data[pos:nl].split()
        pos = nl + 1
        i, st = int(fields[0]), int(fields[1])
        start, sent, done = float(fields[2]), float(fields[3]), float(fields[4])
        hl, bl, el = int(fields[5]), int(fields[6]), int(fields[7])
        raw_h = data[pos:pos + hl]
        body = data[pos + hl:pos + hl + bl]
        err = data[pos + hl + bl:pos + hl + bl + el].decode("utf-8", "replace")
        pos += hl + bl + el
        recs[i] = (st, parse_headers(raw_h) if hl else {}, body, start,
                   sent if sent >= 0 else None, done, err or None)
    missing = [i for i, r in enumerate(recs) if r is None]
    if missing:
        raise RuntimeError("bench_conc_client: no record for %d calls (first %d)"
                           % (len(missing), missing[0]))
    return recs


class CClient:
    """bench_conc_client as a subprocess: start() returns once its N connections are open; go()
    releases the calls and returns once all are done (a match of "done USER_S SYS_S": the client's
    CPU seconds); finish() waits for its exit and returns the records (read_client_out)."""

    def __init__(self, binary, port, payloads, workdir, tag, timeout_s):
        self.binary, self.port, self.timeout_s = binary, port, timeout_s
        self.req_path = os.path.join(workdir, tag + ".requests")
        self.out_path = os.path.join(workdir, tag + ".out")
        self.n = len(payloads)
        write_requests(self.req_path, payloads)
        self.proc = None

    async def start(self):
        self.proc = await asyncio.create_subprocess_exec(
            self.binary, "--port", str(self.port), "--requests", self.req_path,
            "--out", self.out_path, "--timeout-s", str(self.timeout_s),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        line = await self._line()
        if line != "ready %d" % self.n:
            raise RuntimeError("bench_conc_client: expected \"ready %d\", got %r (exit %s)"
                               % (self.n, line, self.proc.returncode))
        batch_threads(self.proc.pid)

    async def _line(self):
        try:
            raw = await asyncio.wait_for(self.proc.stdout.readline(), self.timeout_s + 30)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise RuntimeError("bench_conc_client: no answer within %d s" % (self.timeout_s + 30))
        if not raw:
            await self.proc.wait()
        return raw.decode("utf-8", "replace").strip()

    async def go(self):
        self.proc.stdin.write(b"go\n")
        await self.proc.stdin.drain()
        line = await self._line()
        m = re.fullmatch(r"done (\S+) (\S+)", line)
        if not m:
            rc = await self.proc.wait()
            raise RuntimeError("bench_conc_client: expected \"done ...\", got %r (exit %s)" % (line, rc))
        return m

    async def finish(self):
        """Wait for the exit (after go()); the records."""
        self.proc.stdin.close()
        rc = await self.proc.wait()
        if rc != 0:
            raise RuntimeError("bench_conc_client exited with %d" % rc)
        return read_client_out(self.out_path, self.n)

    async def kill(self):
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY = 4, 20
NLM_F_REQUEST, NLM_F_DUMP, NLMSG_DONE, NLMSG_ERROR = 1, 0x300, 3, 2


def tcp_to_diag_port(port):
    """tcp_to's count for one port through the kernel's sock_diag netlink interface (what `ss`
    uses): a dump of the established IPv4 TCP sockets in which the kernel itself keeps only those
    whose remote end is 127.0.0.1:port (a filter in inet_diag bytecode); each message is checked
    again here. /proc/net/tcp formats every socket of the namespace as text, TIME_WAIT ones
    included: with 10,000 calls' connections and the TIME_WAIT sockets of earlier runs one read
    took ~150 ms of CPU, and the sampler's reads every 500 ms took 0.7 s of the two cores from a
    10,000-call burst they were measuring (perf sched, 2026-11-24) -- the proxy floor's run has
    no sampler."""
    lo = socket.inet_aton("127.0.0.1")
    # one INET_DIAG_BC_D_COND (8) op and its inet_diag_hostcond (family, prefix length, port,
    # address): "yes" jumps to the end (keep), "no" past it (drop)
    bc = struct.pack("=BBH", 8, 16, 20) + struct.pack("=BBxxi", socket.AF_INET, 32, port) + lo
    attr = struct.pack("=HH", 4 + len(bc), 1) + bc  # INET_DIAG_REQ_BYTECODE
    n = 0
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)
    try:
        s.settimeout(5)
        # struct inet_diag_req_v2: family, protocol, ext, pad, states (1 << TCP_ESTABLISHED),
        # then an all-zero inet_diag_sockid (no socket named: a dump)
        req = struct.pack("=BBBBI", socket.AF_INET, socket.IPPROTO_TCP, 0, 0, 1 << 1) + bytes(48)
        req += attr
        s.sendto(struct.pack("=IHHII", 16 + len(req), SOCK_DIAG_BY_FAMILY,
                             NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + req, (0, 0))
        while True:
            data = s.recv(1 << 20)
            off = 0
            while off + 16 <= len(data):
                ln, typ = struct.unpack_from("=IH", data, off)
                if typ == NLMSG_DONE:
                    return n
                if typ == NLMSG_ERROR or ln < 16:
                    raise OSError("sock_diag dump failed")
                # inet_diag_msg after the 16-byte header: family, state, timer, retrans, then
                # sport and dport (big-endian), then the source and destination addresses
                dport = struct.unpack_from("!H", data, off + 16 + 6)[0]
                if dport == port and data[off + 16 + 24:off + 16 + 28] == lo:
                    n += 1
                off += (ln + 3) & ~3
    finally:
        s.close()


def tcp_to(ports):
    """{port: established IPv4 TCP connections whose remote end is 127.0.0.1:port} (the whole
    network namespace: the client side of every connection to the port): from sock_diag, or from
    /proc/net/tcp where netlink is not available."""
    try:
        return {p: tcp_to_diag_port(p) for p in ports}
    except (OSError, ValueError, struct.error):
        pass
    with open("/proc/net/tcp", "rb") as f:
        data = f.read()
    return {p: data.count(b" 0100007F:%04X 01 " % p) for p in ports}


def status_kb(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


class NginxFront:
    """nginx as a TLS + HTTP/2 front of the sandbox (--upstream-front nginx): its own prefix,
    config, throwaway CA (tests/sandbox/make-test-ca.sh) and logs in a temp dir; one worker;
    `listen 127.0.0.1:PORT ssl http2`; proxy_pass over HTTP/1.1 keep-alive to the sandbox.
    With tls=False (--proxy-floor nginx): a plain HTTP/1.1 reverse proxy of the sandbox with
    `workers` worker processes, the floor any proxy sets on this machine (no TLS, no CA)."""

    def __init__(self, binary, sandbox_port, streams, tls=True, workers=1):
        self.binary, self.sandbox_port, self.streams = binary, sandbox_port, streams
        self.tls_on, self.workers = tls, workers
        self.tmp = tempfile.TemporaryDirectory(prefix="conc-nginx-")
        self.dir = self.tmp.name
        self.tls = os.path.join(self.dir, "tls")
        self.ca_file = os.path.join(self.tls, "ca.pem")
        self.error_log = os.path.join(self.dir, "error.log")
        self.proc = None
        self.port = None
        self.version = "?"

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls_on else "http", self.port)

    def conf(self):
        d = self.dir
        if self.tls_on:
            listen = """listen 127.0.0.1:%d ssl http2;
        ssl_certificate %s/tls/server.pem;
        ssl_certificate_key %s/tls/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        http2_max_concurrent_streams %d;""" % (self.port, d, d, self.streams)
        else:
            # one listening socket per worker (reuseport): the calls spread evenly, as on
            # signbridge's lanes
            listen = "listen 127.0.0.1:%d%s;" % (self.port, " reuseport" if self.workers > 1 else "")
        return """# written by tests/bench/concurrency.py (--upstream-front nginx or --proxy-floor nginx)
worker_processes %(workers)d;
worker_rlimit_nofile 20000;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
events {
    worker_connections 20000;
    multi_accept on;
}
http {
    access_log off;
    client_body_temp_path %(d)s/tmp/body;
    proxy_temp_path %(d)s/tmp/proxy;
    fastcgi_temp_path %(d)s/tmp/fastcgi;
    uwsgi_temp_path %(d)s/tmp/uwsgi;
    scgi_temp_path %(d)s/tmp/scgi;
    upstream sandbox {
        server 127.0.0.1:%(sport)d;
        keepalive 20000;
        keepalive_requests 1000000;
        keepalive_timeout 120s;
    }
    server {
        %(listen)s
        keepalive_requests 1000000;
        keepalive_timeout 120s;
        location / {
            proxy_pass http://sandbox;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_pass_request_headers on;
            proxy_read_timeout 60s;
            proxy_buffering on;
        }
    }
    # plain-HTTP stub_status for this script: connections accepted by the front (all listeners)
    server {
        listen 127.0.0.1:%(status_port)d;
        location = /status { stub_status; }
    }
}
""" % {"d": d, "sport": self.sandbox_port, "listen": listen, "workers": self.workers,
       "status_port": self.status_port}

    def start(self, timeout=15.0):
        v = subprocess.run([self.binary, "-v"], capture_output=True, text=True)
        m = re.search(r"nginx/(\S+)", v.stderr + v.stdout)
        self.version = m.group(1) if m else "?"
        if self.tls_on:
            mk = os.path.join(HERE, "..", "sandbox", "make-test-ca.sh")
            r = subprocess.run(["bash", mk, self.tls], capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError("make-test-ca.sh failed: %s" % (r.stderr[-500:]))
        for t in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(self.dir, "tmp", t), exist_ok=True)
        self.port = free_port()
        self.status_port = free_port()
        with open(os.path.join(self.dir, "nginx.conf"), "w") as f:
            f.write(self.conf())
        self._out = open(os.path.join(self.dir, "stderr.log"), "ab")
        self.proc = subprocess.Popen(
            [self.binary, "-p", self.dir + "/", "-e", self.error_log,
             "-c", os.path.join(self.dir, "nginx.conf"), "-g", "daemon off;"],
            stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._out)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("nginx exited with %s: %s" % (self.proc.returncode, self.log_tail()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("nginx not listening on %d within %.0f s: %s"
                                       % (self.port, timeout, self.log_tail()))
                time.sleep(0.05)
        if not self.tls_on:
            return self
        # ALPN must select h2 (what signbridge's libcurl asks for on https)
        ctx = ssl.create_default_context(cafile=self.ca_file)
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with socket.create_connection(("127.0.0.1", self.port), timeout=5.0) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tl:
                self.alpn = tl.selected_alpn_protocol()
                self.tls_version = tl.version()
        if self.alpn != "h2":
            raise RuntimeError("nginx front: ALPN selected %r, not h2" % self.alpn)
        return self

    def check_proxy(self, key, page_size):
        """One GET through the front (TLS or not, HTTP/1.1): the sandbox must answer it."""
        import http.client
        if self.tls_on:
            ctx = ssl.create_default_context(cafile=self.ca_file)
            c = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=10)
        else:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request("GET", "/boldsign/us/v1/document/list?Page=1&PageSize=%d" % page_size,
                      headers={"X-API-KEY": key})
            r = c.getresponse()
            body = r.read()
        finally:
            c.close()
        if r.status != 200:
            raise RuntimeError("GET through the nginx front: HTTP %d %r" % (r.status, body[:200]))

    def status(self):
        """nginx stub_status: {"active", "accepts", "handled", "requests"} (each status query is
        itself one accepted connection and one request)."""
        r = sbtest.request(self.status_port, "GET", "/status", [], None, timeout=10)
        t = r.body.decode("latin-1")
        m = re.search(r"Active connections:\s*(\d+)\s+server accepts handled requests\s+(\d+)\s+"
                      r"(\d+)\s+(\d+)", t)
        if not m:
            raise RuntimeError("nginx stub_status: %r" % t[:200])
        return dict(zip(("active", "accepts", "handled", "requests"), (int(x) for x in m.groups())))

    def worker_pids(self):
        try:
            with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as f:
                return [int(x) for x in f.read().split()]
        except (OSError, ValueError):
            return []

    def log_tail(self, n=2000):
        out = []
        for name in ("error.log", "stderr.log"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    t = f.read()
                if t.strip():
                    out.append("%s: %s" % (name, t[-n:]))
            except OSError:
                pass
        return " | ".join(out) or "(no log)"

    def log_levels(self):
        """{level: count} of the error log's lines ([warn], [error], [crit], [alert], [emerg])."""
        counts = {}
        try:
            with open(self.error_log, errors="replace") as f:
                for line in f:
                    m = re.search(r"\[(debug|info|notice|warn|error|crit|alert|emerg)\]", line)
                    if m:
                        counts[m.group(1)] = counts.get(m.group(1), 0) + 1
        except OSError:
            pass
        return counts

    def stop(self, timeout=20.0):
        """Graceful stop (SIGQUIT); the exit code (None if it had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def cleanup(self):
        try:
            self._out.close()
        except AttributeError:
            pass
        self.tmp.cleanup()


async def sampler(br, stop, acc, conn_ports=(), cpu_pids=()):
    """Threads every 50 ms; descriptors (and, with conn_ports, the established connections to
    those ports, from sock_diag: tcp_to) every 500 ms (listing thousands of /proc/PID/fd entries
    costs the client real CPU, which it shares with signbridge); the CPU seconds (user + system)
    of each of cpu_pids at least 250 ms apart (listing the descriptors can hold a turn up longer),
    for the timeline of cores busy."""
    k = 0
    last_cpu = None
    while not stop.is_set():
        try:
            acc["threads"].append(br.threads())
            now = time.monotonic()
            if cpu_pids and (last_cpu is None or now - last_cpu >= 0.25):
                acc["cpu"].append((now, [sum(cpu_s(p)) for p in cpu_pids]))
                last_cpu = now
            if k % 10 == 0:
                acc["fds"].append(br.fd_count())
                if conn_ports:
                    acc["conns"].append(tcp_to(conn_ports))
        except (OSError, ValueError, TypeError):
            pass
        k += 1
        try:
            await asyncio.wait_for(stop.wait(), 0.05)
        except asyncio.TimeoutError:
            pass


async def bench(args, checks, sbx, br, front=None):
    work = tempfile.TemporaryDirectory(prefix="conc-bench-") if args.client == "c" else None
    live = []  # C clients to kill if anything goes wrong
    try:
        await bench_run(args, checks, sbx, br, work.name if work else None, live, front)
    finally:
        for c in live:
            await c.kill()
        if work is not None:
            work.cleanup()


def sandbox_list_request(page_size, key):
    """The sandbox's own BoldSign list request, as the baseline and the proxy floor send it."""
    return ("GET /boldsign/us/v1/document/list?Page=1&PageSize=%d HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "X-API-KEY: %s\r\n\r\n" % (page_size, key)).encode()


async def proxy_floor(args, sbx, workdir, live, n):
    """--proxy-floor nginx: the same n calls (the sandbox's own request, as the baseline sends
    it) through nginx as a plain HTTP/1.1 reverse proxy with one worker per core: what a proxy
    that does no MCP and no JSON at all costs on this machine, one upstream connection per call
    in flight as signbridge's.  Printed as one "bench proxy floor:" line; never a check."""
    key = sbx.key("boldsign", "us")
    req = sandbox_list_request(args.page_size, key)
    settle_time_wait(args.settle_time_wait)
    px = NginxFront(args.nginx, sbx.port, 0, tls=False, workers=os.cpu_count() or 2)
    try:
        px.start()
        px.check_proxy(key, args.page_size)
        workers = px.worker_pids()
        cl = CClient(args.client_bin, px.port, [req] * n, workdir, "proxyfloor",
                     args.client_timeout_s)
        live.append(cl)
        await cl.start()
        c0 = [cpu_s(w) for w in workers]
        s0 = cpu_s(sbx.proc.pid)
        done = await cl.go()
        c1 = [cpu_s(w) for w in workers]
        s1 = cpu_s(sbx.proc.pid)
        recs = await cl.finish()
        lat = sorted(r[5] - r[3] for r in recs)
        ok = sum(1 for r in recs if r[0] == 200)
        ncpu = (sum(b[0] - a[0] for a, b in zip(c0, c1)), sum(b[1] - a[1] for a, b in zip(c0, c1)))
        print("bench proxy floor (the same %d calls through nginx %s proxy_pass, plain HTTP/1.1, "
              "%d workers): wall %.3f s, %d ok, p50 %.3f s, p99 %.3f s; cpu nginx %.2f+%.2f s, "
              "sandbox %.2f+%.2f s, client %s+%s s"
              % (n, px.version, len(workers), max(r[5] for r in recs), ok, pct(lat, 50),
                 pct(lat, 99), ncpu[0], ncpu[1], s1[0] - s0[0], s1[1] - s0[1], done.group(1),
                 done.group(2)), flush=True)
    except Exception as e:  # noqa: BLE001
        print("# proxy floor not measured: %s" % e, flush=True)
    finally:
        px.stop()
        px.cleanup()


async def bench_run(args, checks, sbx, br, workdir, live, front=None):
    key = sbx.key("boldsign", "us")
    cred = uptest.xkey(key)
    path = "/boldsign/mcp"
    n = args.calls
    use_c = args.client == "c"
    nofile = raise_nofile(n + 256)
    if nofile < n + 64:
        checks.fail("enough file descriptors for %d connections" % n, "RLIMIT_NOFILE is %d" % nofile)
        return

    # -- setup (untimed) --
    t = time.monotonic()
    nsess = max(1, min(args.sessions, n))
    # the C client opens the N connections of the timed phase itself; here only the sessions'
    conns = await open_all(br.port, nsess if use_c else n)
    sids = []
    for c in conns[:nsess]:
        sids.append(await uptest.async_session(c, path, cred))
    # one warm-up call per session (region cached, upstream pool primed), before the fault
    for i, c in enumerate(conns[:nsess]):
        st, res, b = await uptest.async_call(c, path, cred, sids[i], 1, "list_documents",
                                             {"page_size": args.page_size})
        assert st == 200 and res is not None and not res.is_error, \
            "warm-up call failed: HTTP %d %s" % (st, sbtest.short(b))
    if use_c:
        for c in conns:  # the sessions live on; the timed calls use the C client's connections
            c.close()
        conns = []
    else:
        print("# setup: %d connections open, %d sessions, %.2fs" % (n, nsess, time.monotonic() - t),
              flush=True)
    sbx.add_fault(provider="boldsign", region="us", method="GET", route="/v1/document/list",
                  mode="latency", latency_ms=args.latency_ms)
    payloads = []
    for i in range(n):
        body = json.dumps({"jsonrpc": "2.0", "id": 1000 + i, "method": "tools/call",
                           "params": {"name": "list_documents",
                                      "arguments": {"page_size": args.page_size}}}).encode()
        hdrs = sbtest.mcp_headers(session=sids[i % nsess], version=uptest.PROTO, extra=cred)
        payloads.append(sbtest.build_request("POST", path, hdrs, body, port=br.port))
    client = None
    if use_c:
        client = CClient(args.client_bin, br.port, payloads, workdir, "calls", args.client_timeout_s)
        live.append(client)
        await client.start()
        print("# setup: %d connections open (bench_conc_client pid %d), %d sessions, %.2fs"
              % (n, client.proc.pid, nsess, time.monotonic() - t), flush=True)
    await asyncio.sleep(0.3)
    idle_threads = br.threads()
    idle_fds = br.fd_count()
    rss_before = br.vm_hwm_kb()
    # signbridge's upstream connections: to the front, or straight to the sandbox; with a front,
    # also the front's own to the sandbox (only signbridge connects to the front's port)
    conn_ports = (front.port, sbx.port) if front else (sbx.port,)
    idle_conns = tcp_to(conn_ports)
    workers = front.worker_pids() if front else []
    fst0 = front.status() if front else None

    # -- timed --
    stop = asyncio.Event()
    acc = {"threads": [], "fds": [], "conns": [], "cpu": []}
    # the load client: bench_conc_client, or this process
    cpu_pids = (br.pid, sbx.proc.pid, client.proc.pid if use_c else os.getpid())
    samp = asyncio.ensure_future(sampler(br, stop, acc, conn_ports, cpu_pids))
    out = [None] * n
    seq0 = sbx.last_seq()
    cpu0 = (cpu_s(br.pid), cpu_s(sbx.proc.pid), cpu_s(os.getpid()))
    wcpu0 = [cpu_s(w) for w in workers]
    wall0 = time.time()
    t0 = time.monotonic()
    if use_c:
        done = await client.go()
    else:
        await asyncio.gather(*(timed_call(conns[i], payloads[i], out, i) for i in range(n)))
    wall = time.monotonic() - t0
    stop.set()
    await samp
    peak_rss = br.vm_hwm_kb()
    cpu1 = (cpu_s(br.pid), cpu_s(sbx.proc.pid), cpu_s(os.getpid()))
    wcpu1 = [cpu_s(w) for w in workers]
    conns_after = tcp_to(conn_ports)
    fst1 = front.status() if front else None
    # per call, seconds after t0: write began, request fully written (None: never), complete
    if use_c:
        recs = await client.finish()
        out = [(st, h, b, dn - st0, err) for st, h, b, st0, _, dn, err in recs]
        starts = [r[3] for r in recs]
        sends = [r[4] for r in recs]
        dones = [r[5] for r in recs]
        wall = max(dones)  # from "go" to the last complete response (or failure)
        client_cpu = (float(done.group(1)), float(done.group(2)))
    else:
        starts = [STARTED[i] - t0 for i in range(n)]
        sends = [SENT[i] - t0 if i in SENT else None for i in range(n)]
        dones = [starts[i] + out[i][3] for i in range(n)]
        client_cpu = (cpu1[2][0] - cpu0[2][0], cpu1[2][1] - cpu0[2][1])
    for c in conns:
        c.close()
    # what reached the sandbox, read before the baseline adds its own n list requests
    upstream = sbx.route_count("boldsign", "us", "GET /v1/document/list")
    arrivals = sorted(iso_ms(r.get("time", "")) - wall0 * 1000.0 for r in sbx.requests(since=seq0)
                      if r.get("path") == "/v1/document/list")

    # -- baseline: the same calls straight to the sandbox (same latency, same page size), so the
    # figure above can be read against what the load generator and the fake upstream cost alone
    base = None
    try:
        req = sandbox_list_request(args.page_size, key)
        try:
            print("# baseline: the sandbox holds %d descriptors before it (RLIMIT_NOFILE %s)"
                  % (len(os.listdir("/proc/%d/fd" % sbx.proc.pid)), nofile_of(sbx.proc.pid)),
                  flush=True)
        except OSError:
            pass
        if use_c:
            bc = CClient(args.client_bin, sbx.port, [req] * n, workdir, "baseline",
                         args.client_timeout_s)
            live.append(bc)
            await bc.start()
            await bc.go()
            brecs = await bc.finish()
            base = max(r[5] for r in brecs)
            bok = sum(1 for r in brecs if r[0] == 200)
        else:
            direct = await open_all(sbx.port, n)
            bout = [None] * n
            tb = time.monotonic()
            await asyncio.gather(*(timed_call(direct[i], req, bout, i) for i in range(n)))
            base = time.monotonic() - tb
            bok = sum(1 for x in bout if x and x[0] == 200)
            for c in direct:
                c.close()
        print("bench baseline (the same %d calls straight to the sandbox): wall %.3f s, %d ok; "
              "signbridge adds %.3f s" % (n, base, bok, wall - base), flush=True)
    except Exception as e:  # noqa: BLE001
        print("# baseline not measured: %s" % e, flush=True)
    if front:
        print("# baseline through the front not measured: the load client speaks plain HTTP/1.1 "
              "only, the front TLS + HTTP/2", flush=True)
    if args.proxy_floor == "nginx" and use_c:
        await proxy_floor(args, sbx, workdir, live, n)
    elif args.proxy_floor == "nginx":
        print("# proxy floor not measured: it needs the C load client (--client c)", flush=True)

    # -- results (parsed after the clock stopped) --
    okn, errors = 0, {}
    lat = []
    for i, (st, h, b, dt, exc) in enumerate(out):
        lat.append(dt)
        why = exc
        if why is None:
            if st != 200:
                why = "HTTP %d" % st
            else:
                try:
                    msgs = uptest.messages_of(h, b)
                    res = next((uptest.tool_result_of(m) for m in msgs
                                if isinstance(m, dict) and m.get("id") == 1000 + i), None)
                except ValueError:
                    res = None
                if res is None:
                    why = "no JSON-RPC result"
                elif res.is_error:
                    why = "isError: " + res.text[:100]
                elif not (res.structured or {}).get("documents"):
                    why = "no documents in the result"
        if why is None:
            okn += 1
        else:
            errors[why] = errors.get(why, 0) + 1
    lat.sort()
    thr = acc["threads"] or [idle_threads]
    fds = acc["fds"] or [idle_fds]
    print("bench concurrency: calls %d, succeeded %d, failed %d, wall %.3f s, upstream latency %d ms"
          % (n, okn, n - okn, wall, args.latency_ms))
    sent = sorted(v for v in sends if v is not None)
    if sent:
        print("bench client send: first %.3f s, median %.3f s, last %.3f s after t0"
              % (sent[0], pct(sent, 50), sent[-1]))
    print("bench latency: p50 %.3f s, p90 %.3f s, p99 %.3f s, max %.3f s"
          % (pct(lat, 50), pct(lat, 90), pct(lat, 99), lat[-1]))
    from_send = sorted(dones[i] - sends[i] for i in range(n) if sends[i] is not None)
    if from_send:
        print("bench latency from send: p50 %.3f s, p90 %.3f s, p99 %.3f s, max %.3f s"
              % (pct(from_send, 50), pct(from_send, 90), pct(from_send, 99), from_send[-1]))
    from_t0 = sorted(dones)
    print("bench latency from t0: p50 %.3f s, p90 %.3f s, p99 %.3f s, max %.3f s"
          % (pct(from_t0, 50), pct(from_t0, 90), pct(from_t0, 99), from_t0[-1]))
    d = [(a[0] - b[0], a[1] - b[1]) for a, b in zip(cpu1, cpu0)]
    d[2] = client_cpu  # the load client's own CPU: this process, or bench_conc_client
    print("bench cpu during the timed phase (user+system): signbridge %.2f+%.2f s, sandbox %.2f+%.2f s, "
          "client %.2f+%.2f s; response bodies %.1f MiB (mean %.1f KiB)"
          % (d[0][0], d[0][1], d[1][0], d[1][1], d[2][0], d[2][1],
             sum(len(o[2]) for o in out) / 1048576.0, sum(len(o[2]) for o in out) / 1024.0 / n))
    # how many cores each process kept busy from each sampled instant to the next (>= 250 ms):
    # when their sum is ~2 the burst is bound by this machine's CPU, not by a wait; at most 40 rows
    tl = acc["cpu"]
    if len(tl) >= 2:
        rows = [(a[0] - t0, [(b[1][j] - a[1][j]) / max(b[0] - a[0], 1e-3) for j in range(3)])
                for a, b in zip(tl, tl[1:])][:40]
        print("bench cpu timeline (cores busy from each instant on, s after t0: "
              "signbridge/sandbox/client): %s"
              % " ".join("%.2f:%.1f/%.1f/%.1f" % ((t,) + tuple(r)) for t, r in rows))
    print("bench threads: idle %d, under load min %d max %d (%d samples)"
          % (idle_threads, min(thr), max(thr), len(thr)))
    print("bench memory: VmHWM before %.1f MiB, peak %.1f MiB; fds idle %d, peak %d"
          % (rss_before / 1024.0, peak_rss / 1024.0, idle_fds, max(fds)))
    conns = acc["conns"] + [conns_after]
    if front:
        peak_front = max(c[front.port] for c in conns)
        peak_fs = max(c[sbx.port] for c in conns)
        wcpu = [(a[0] - b[0], a[1] - b[1]) for a, b in zip(wcpu1, wcpu0)]
        whwm = [status_kb(w, "VmHWM") for w in workers]
        print("bench upstream front: nginx %s TLS+h2 (%s, ALPN %s, http2_max_concurrent_streams %d) "
              "on port %d; signbridge->front connections idle %d, peak %d; front->sandbox "
              "connections peak %d (sampled every 0.5 s)"
              % (front.version, front.tls_version, front.alpn, front.streams, front.port,
                 idle_conns[front.port], peak_front, peak_fs))
        print("bench front accepted %d connections and served %d requests during the timed phase "
              "(stub_status; minus the one status query)"
              % (fst1["accepts"] - fst0["accepts"] - 1, fst1["requests"] - fst0["requests"] - 1))
        print("bench front nginx worker: cpu during the timed phase %s s; VmHWM %s MiB"
              % (", ".join("%.2f+%.2f" % c for c in wcpu) or "?",
                 ", ".join("%.1f" % (h / 1024.0) for h in whwm if h is not None) or "?"))
    else:
        print("bench upstream connections: signbridge->sandbox idle %d, peak %d (sampled every 0.5 s), "
              "%d still open after the burst" % (idle_conns[sbx.port], max(c[sbx.port] for c in conns),
                                                 conns_after[sbx.port]))
        # each of signbridge's lanes (limits.http_threads, 2 by default) keeps at most 1,024
        # connections for reuse: a transfer started when its lane had that many open closes its
        # own when it ends (sb_up.c, MAX_CACHED_CONNS)
        if n > 2 * 1024 + 256:
            keep = 2 * 1024 + 64
            if conns_after[sbx.port] <= keep:
                checks.ok("signbridge keeps at most %d upstream connections after the burst (%d)"
                          % (keep, conns_after[sbx.port]))
            else:
                checks.fail("signbridge keeps at most %d upstream connections after the burst" % keep,
                            "%d still open" % conns_after[sbx.port])
    print("bench sandbox: %d list requests received in total (%d warm-up)" % (upstream, nsess))
    if arrivals:
        print("bench upstream arrival: first %.3f s, median %.3f s, last %.3f s after the first send"
              % (arrivals[0] / 1000.0, pct(arrivals, 50) / 1000.0, arrivals[-1] / 1000.0))
        if len(arrivals) < n:
            print("# upstream arrival: only the last %d of the %d calls' requests are still in the "
                  "sandbox's request log (a ring of 4096)" % (len(arrivals), n))
    lim = nofile_of(br.pid)
    if lim is not None and max(fds) >= lim - max(64, lim // 100):
        print("# warning: signbridge came within 1%% of its RLIMIT_NOFILE (%d descriptors, peak "
              "sampled %d; sampled every 0.5 s, the real peak may be the limit): it needs "
              "about %s per call (%s), so these figures include waits for descriptors"
              % (lim, max(fds), "one" if front else "two",
                 "the client's connection; upstream calls share HTTP/2 connections" if front else
                 "the client's connection and the upstream one"))
    if errors:
        print("# failures: " + "; ".join("%d x %s" % (v, k) for k, v in
                                         sorted(errors.items(), key=lambda kv: -kv[1])[:8]))
    # signbridge's warn/error log lines (e.g. upstream transfer failures), counted by event
    levels, samples = {}, {}
    for ln in br.stderr_text().splitlines():
        try:
            o = json.loads(ln)
        except ValueError:
            continue
        if isinstance(o, dict) and o.get("level") in ("warn", "warning", "error", "fatal"):
            k = "%s %s" % (o.get("level"), o.get("event"))
            levels[k] = levels.get(k, 0) + 1
            samples.setdefault(k, ln[:400])
    if levels:
        print("# signbridge log: " + "; ".join("%d x %s" % (v, k) for k, v in
                                                sorted(levels.items(), key=lambda kv: -kv[1])[:8]))
        for k, ln in list(samples.items())[:4]:
            print("#   e.g. %s" % ln)

    if okn == n:
        checks.ok("all %d calls succeeded" % n)
    else:
        checks.fail("all %d calls succeeded" % n, "%d failed: %s" % (n - okn, errors))
    if upstream >= n + nsess:
        checks.ok("every call reached the sandbox (%d list requests)" % upstream)
    else:
        checks.fail("every call reached the sandbox", "%d list requests for %d calls + %d warm-up"
                    % (upstream, n, nsess))
    in_band = max(thr) <= idle_threads + args.thread_slack and min(thr) >= idle_threads - args.thread_slack
    if args.smoke:
        checks.ok("smoke: wall %.3f s, threads %d..%d vs idle %d (no thresholds)"
                  % (wall, min(thr), max(thr), idle_threads))
    else:
        if wall <= args.max_wall:
            checks.ok("wall %.3f s <= %.1f s" % (wall, args.max_wall))
        else:
            checks.fail("wall <= %.1f s" % args.max_wall, "measured %.3f s" % wall)
        if in_band:
            checks.ok("threads stay within +-%d of idle %d (%d..%d)"
                      % (args.thread_slack, idle_threads, min(thr), max(thr)))
        else:
            checks.fail("threads stay within +-%d of idle %d" % (args.thread_slack, idle_threads),
                        "under load %d..%d" % (min(thr), max(thr)))


def stop_front(checks, front):
    """Stop the nginx front gracefully: it must exit 0 with no [crit]/[alert]/[emerg] line (and
    any [error] line is shown); then its temp dir goes."""
    alive = front.proc.poll() is None
    rc = front.stop()
    levels = front.log_levels()
    if not alive:
        checks.fail("nginx front alive at the end", "exited early with %r: %s"
                    % (front.proc.returncode, front.log_tail()))
    elif rc == 0:
        checks.ok("nginx front exits 0 on SIGQUIT")
    else:
        checks.fail("nginx front exits 0 on SIGQUIT", "exit status %r: %s" % (rc, front.log_tail()))
    bad = {k: v for k, v in levels.items() if k in ("crit", "alert", "emerg")}
    if levels:
        print("# nginx error log: %s" % ", ".join("%d [%s]" % (v, k) for k, v in sorted(levels.items())))
    if bad or levels.get("error"):
        print("# nginx error log tail: %s" % front.log_tail(3000))
    if bad:
        checks.fail("no [crit]/[alert]/[emerg] in the nginx front's error log", str(bad))
    else:
        checks.ok("no [crit]/[alert]/[emerg] in the nginx front's error log (%d [error])"
                  % levels.get("error", 0))
    front.cleanup()


def time_wait_count():
    """TCP sockets in TIME_WAIT on this machine (/proc/net/tcp and tcp6, state 06), or -1."""
    n = 0
    try:
        for f in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(f) as fh:
                    next(fh, None)
                    n += sum(1 for line in fh if line.split()[3:4] == ["06"])
            except FileNotFoundError:
                pass
    except OSError:
        return -1
    return n


def settle_time_wait(limit_s):
    """Report TIME_WAIT sockets, waiting up to limit_s seconds for fewer than 1,000."""
    t0 = time.monotonic()
    n = time_wait_count()
    while n >= 1000 and time.monotonic() - t0 < limit_s:
        time.sleep(1)
        n = time_wait_count()
    print("bench tcp: %d sockets in TIME_WAIT at the start (waited %.0f s of up to %.0f s for "
          "fewer than 1,000; earlier runs leave them, and each makes connect() search longer "
          "for a free port)" % (n, time.monotonic() - t0, limit_s), flush=True)


def main():
    global HELPERS_BATCH
    args = parse_args()
    HELPERS_BATCH = args.helpers_batch
    if HELPERS_BATCH:
        print("# the sandbox and the load client run as SCHED_BATCH (--helpers-batch)", flush=True)
    sbtest.BIN = args.signbridge
    uptest.SANDBOX_BIN = args.sandbox
    checks = sbtest.Checks()
    if args.client == "c" and not (args.client_bin and os.access(args.client_bin, os.X_OK)):
        checks.fail("load client", "--client c: %r is not executable (build bench_conc_client)"
                    % args.client_bin)
        return checks.finish()
    settle_time_wait(args.settle_time_wait)
    sbx = uptest.Sandbox(["--no-rate-limits"])
    br = None
    front = None
    try:
        sbx.start()
        batch_threads(sbx.proc.pid)
        # straight to the sandbox, one upstream HTTP/1.1 connection per call in flight: the
        # per-host cap must hold every call; through the TLS + HTTP/2 front, signbridge's own
        # default is what is measured unless --max-host-connections says otherwise
        cap = args.max_host_connections
        if cap is None and args.upstream_front == "none":
            cap = max(8192, args.calls + 256)
        env = {"SIGNBRIDGE_LOG_LEVEL": "info"}
        if cap is not None:
            env["SIGNBRIDGE_UPSTREAM_MAX_HOST_CONNECTIONS"] = str(cap)
        env.update(kv.split("=", 1) for kv in args.sb_env)
        url = None
        if args.upstream_front == "nginx":
            # signbridge's provider traffic goes through the front (TLS + HTTP/2, libcurl
            # multiplexes the calls); this script still drives /_sandbox/ on the sandbox itself
            front = NginxFront(args.nginx, sbx.port, args.h2_streams).start()
            front.check_proxy(sbx.key("boldsign", "us"), args.page_size)
            env["SIGNBRIDGE_UPSTREAM_CA_FILE"] = front.ca_file
            url = front.url
        br = uptest.Bridge(sbx, env=env, sandbox_url=url)
        br.start()
    except Exception as e:  # noqa: BLE001
        checks.fail("sandbox%s and signbridge start" % (", nginx front" if front or
                                                         args.upstream_front != "none" else ""), e)
        if br is not None:
            br.kill()
        if front is not None:
            front.kill()
            front.cleanup()
        sbx.kill()
        return checks.finish()
    print("# signbridge %s pid %d port %d; sandbox pid %d port %d; %d calls%s; client %s"
          % (args.signbridge, br.pid, br.port, sbx.proc.pid, sbx.port, args.calls,
             " (smoke)" if args.smoke else "",
             "bench_conc_client (%s)" % args.client_bin if args.client == "c" else "python asyncio"),
          flush=True)
    print("# SIGNBRIDGE_UPSTREAM_MAX_HOST_CONNECTIONS %s" % br.extra_env.get(
        "SIGNBRIDGE_UPSTREAM_MAX_HOST_CONNECTIONS", "unset (signbridge's default)"), flush=True)
    if front:
        print("# upstream front: nginx %s pid %d (workers %s) at %s -> sandbox port %d; "
              "signbridge --sandbox-url %s, SIGNBRIDGE_UPSTREAM_CA_FILE %s"
              % (front.version, front.proc.pid, front.worker_pids(), front.url, sbx.port,
                 front.url, front.ca_file), flush=True)
    try:
        asyncio.run(bench(args, checks, sbx, br, front))
    except Exception as e:  # noqa: BLE001
        import traceback
        checks.fail("benchmark ran", "%s: %s | %s" % (type(e).__name__, e, traceback.format_exc()[-800:]))
    finally:
        uptest.stop_checked(checks, br, "signbridge")
        if front is not None:
            stop_front(checks, front)
        uptest.stop_checked(checks, sbx, "the sandbox")
        br.tmp.cleanup()
        sbx.tmp.cleanup()
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
