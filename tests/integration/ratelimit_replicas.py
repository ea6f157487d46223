"""ratelimit-replicas (issue 9, acceptance 4): two replicas sharing PostgreSQL hold a configured
per-credential rate limit within 10%.

Needs SB_TEST_PG_URL (scripts/test starts a throwaway PostgreSQL with scripts/pg-test-server);
without it the test exits 77 (meson: skipped).  Starts a provider sandbox and two signbridges
(tests/upstream/uptest.py) on one PostgreSQL schema of this test's own, with one secret_file (one
fingerprint per credential) and ratelimit.requests_per_minute=L, burst=B.  Four threads hammer A
and B alternately with one credential for WINDOW seconds; the requests let through (not 429) must
be within 10% of what the bucket allows, B + L * elapsed / 60 -- a limit kept per replica would
let through about twice that.  A second credential is let through meanwhile (per credential).
Standard library only.
"""

import os
import subprocess
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "upstream"))

import uptest  # noqa: E402  (puts tests/integration on sys.path too)
import sbtest  # noqa: E402
from sbtest import request  # noqa: E402

PG = os.environ.get("SB_TEST_PG_URL", "")
L, B, WINDOW, THREADS = 600, 10, 15.0, 4


def psql(url, sql):
    p = subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-qAt", url, "-c", sql],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    assert p.returncode == 0, "psql %s: %s" % (sql, p.stderr[-500:])
    return p.stdout


def schema_url(base, schema):
    return "%s%soptions=-csearch_path%%3D%s" % (base, "&" if "?" in base else "?", schema)


def ping(port, cred):
    return request(port, "POST", "/boldsign/mcp", sbtest.mcp_headers(extra=cred),
                   {"jsonrpc": "2.0", "id": 1, "method": "ping"})


def main(t):
    sbx, a = t.sbx, t.br
    cred = uptest.xkey(sbx.key("boldsign", "us"))
    other = uptest.xkey(sbx.key("boldsign", "eu"))
    env = {"SIGNBRIDGE_STORE_URL": STORE, "SIGNBRIDGE_SECRET_FILE": a.secret_file}
    env.update(LIMITS)
    b = uptest.Bridge(sbx, env=env)
    b.start()
    print("# signbridge B on port %d (pid %d)" % (b.port, b.proc.pid), flush=True)
    try:
        def both_pg():
            for srv in (a, b):
                assert '"store":"postgresql"' in srv.stderr_text(), "not on PostgreSQL"
        t.check("A and B run on one PostgreSQL", both_pg)

        def hammer():
            counts = {"ok": 0, "refused": 0, "other": 0, "errors": 0}
            lock = threading.Lock()
            stop = time.monotonic() + WINDOW
            t0 = time.monotonic()

            def worker(i):
                n = i
                while time.monotonic() < stop:
                    port = (a.port, b.port)[n % 2]
                    n += 1
                    try:
                        r = ping(port, cred)
                    except Exception:  # noqa: BLE001
                        with lock:
                            counts["errors"] += 1
                        continue
                    with lock:
                        counts["refused" if r.status == 429 else "ok"] += 1
            th = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
            for x in th:
                x.start()
            mid = time.monotonic() + WINDOW / 2
            while time.monotonic() < mid:
                time.sleep(0.05)
            r = ping(a.port, other)
            counts["other"] = r.status
            for x in th:
                x.join()
            elapsed = time.monotonic() - t0
            expect = B + L * elapsed / 60.0
            got = counts["ok"]
            desc = ("%d let through, %d refused, %d errors in %.1fs; the bucket allows %.0f"
                    % (got, counts["refused"], counts["errors"], elapsed, expect))
            print("# " + desc, flush=True)
            assert counts["refused"] > got, "the load did not exceed the limit: " + desc
            assert abs(got - expect) <= 0.10 * expect, "not within 10%: " + desc
            assert counts["other"] != 429, "another credential was refused"
            return desc
        t.check("A and B hammered alternately with one credential: accepted within 10%% of "
                "burst + %d/min x elapsed" % L, hammer)

        def shared_cap():
            # a third credential (fresh bucket): two slow calls on A, then one on B -> 429
            third = uptest.xkey(sbx.key("boldsign", "ca"))
            sbx.add_fault(provider="boldsign", region="ca", method="GET",
                          route="/v1/document/list", mode="latency", latency_ms=2000)
            path = "/boldsign/ca/mcp"
            sids = {}
            for srv in (a, b):
                sids[srv.port], _, _ = sbtest.initialize(srv.port, extra=third, path=path,
                                                         timeout=20.0)
            res = {}

            def call(srv, tag):
                r, msg = sbtest.rpc(srv.port, sids[srv.port], "tools/call",
                                    {"name": "list_documents", "arguments": {"page_size": 1}},
                                    id_=hash(tag) % 100000, extra=third, path=path, timeout=20.0)
                res[tag] = (r.status, msg)
            since = sbx.last_seq()
            th = [threading.Thread(target=call, args=(a, "a%d" % i)) for i in range(2)]
            for x in th:
                x.start()
            # both slow calls have reached the sandbox: A holds both slots
            sbx.wait_requests(since, 2, route_suffix="/list")
            call(b, "b")
            for x in th:
                x.join()
            assert res["b"][0] == 429, "B let a third concurrent call through: %r" % (res["b"],)
            assert res["a0"][0] == 200 and res["a1"][0] == 200, (res["a0"], res["a1"])
            sbx.clear_faults()
            call(b, "b2")
            assert res["b2"][0] == 200, "after the calls ended, B refused: %r" % (res["b2"],)
        t.check("the concurrency cap (2) is shared: two calls in flight on A, a third on B -> 429; "
                "after they end B serves", shared_cap)
    finally:
        uptest.stop_checked(t.checks, b, "signbridge B")
        b.tmp.cleanup()


if not PG:
    print("1..0 # SKIP SB_TEST_PG_URL is not set (scripts/test sets it)")
    sys.exit(77)
SCHEMA = "rl_" + uuid.uuid4().hex[:12]
psql(PG, "CREATE SCHEMA %s" % SCHEMA)
STORE = schema_url(PG, SCHEMA)
LIMITS = {"SIGNBRIDGE_RATELIMIT_REQUESTS_PER_MINUTE": str(L), "SIGNBRIDGE_RATELIMIT_BURST": str(B),
          "SIGNBRIDGE_RATELIMIT_MAX_CONCURRENT_CALLS": "2", "SIGNBRIDGE_LOG_LEVEL": "info"}
try:
    env = {"SIGNBRIDGE_STORE_URL": STORE}
    env.update(LIMITS)
    uptest.run(main, bridge_env=env)
finally:
    try:
        psql(PG, "DROP SCHEMA %s CASCADE" % SCHEMA)
    except Exception as e:  # noqa: BLE001
        print("# dropping schema %s: %s" % (SCHEMA, e))
