"""store-replicas (issue 6): two signbridge processes sharing one PostgreSQL behave as one service.

Needs SB_TEST_PG_URL (scripts/test starts a throwaway PostgreSQL with scripts/pg-test-server);
without it the test exits 77 (meson: skipped).  Starts a provider sandbox, signbridge A (tests/
upstream/uptest.py) and signbridge B, both with SIGNBRIDGE_STORE_URL=$SB_TEST_PG_URL and A's
secret_file (so a credential has one fingerprint on both), and checks:
  - the region cache A wrote at initialize is used by B: B's initialize with the same key sends
    nothing to the provider (the sandbox's request log is unchanged);
  - an API-key session created on A works on B (tools/list with A's Mcp-Session-Id), and not with
    another key;
  - an idempotent send_document made on A and retried on B is sent once (B answers A's document);
    the same key raced on A and B at once is also sent once;
  - DELETE on A: B answers 404 for that session within 1 s;
  - /readyz: a signbridge on a PostgreSQL of its own (scripts/pg-test-server) answers 200, then
    503 within ~1 s of that database stopping (the ping is cached for at most 1 s).
Standard library only.
"""

import base64
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
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
SEND = "POST /v1/document/send"


def send_args(key, title):
    return {"title": title, "message": "Please sign.", "idempotency_key": key,
            "files": [{"base64": base64.b64encode(PDF).decode(), "name": "nda.pdf"}],
            "signers": [{"name": "Ann Signer", "email": "ann@example.org"}]}


def psql(url, sql):
    p = subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-qAt", url, "-c", sql],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    assert p.returncode == 0, "psql %s: %s" % (sql, p.stderr[-500:])
    return p.stdout


def schema_url(base, schema):
    """The URL of `base` with the schema as search_path: this test's tables stay its own."""
    return "%s%soptions=-csearch_path%%3D%s" % (base, "&" if "?" in base else "?", schema)


def main(t):
    sbx, a = t.sbx, t.br
    key = sbx.key("boldsign", "eu")  # not the first region probed: detection takes probes
    other = sbx.key("boldsign", "us")
    cred, cred2 = uptest.xkey(key), uptest.xkey(other)
    b = uptest.Bridge(sbx, env={"SIGNBRIDGE_STORE_URL": PG, "SIGNBRIDGE_SECRET_FILE": a.secret_file})
    b.start()
    print("# signbridge B on port %d (pid %d)" % (b.port, b.proc.pid), flush=True)
    st = {}
    try:
        def both_pg():
            for srv in (a, b):
                assert '"store":"postgresql"' in srv.stderr_text(), "not on PostgreSQL"
                r = request(srv.port, "GET", "/readyz")
                assert r.status == 200, r.describe()
                with open("/proc/%d/maps" % srv.proc.pid) as f:
                    assert any("libpq.so.5" in l for l in f), "libpq not loaded (dlopen)"
        t.check("A and B run on one PostgreSQL (libpq.so.5 loaded on demand); /readyz 200 on both",
                both_pg)

        def region_cache():
            seq = sbx.last_seq()
            st["a"] = a.session("/boldsign/mcp", cred)
            probes = sbx.requests(since=seq, provider="boldsign")
            assert probes, "A's initialize sent no probe (the test needs a cold cache)"
            seq = sbx.last_seq()
            time.sleep(0.2)  # A writes the detection from its event loop
            st["b"] = b.session("/boldsign/mcp", cred)
            got = sbx.requests(since=seq, provider="boldsign")
            assert not got, "B probed again: %r" % [(r["region"], r["route"]) for r in got]
            r, msg = st["b"].call("list_documents", {}).raw, None
            assert r is not None
        t.check("the region cache A wrote is used by B (no probe from B)", region_cache)

        def session_on_b():
            sid = st["a"].sid
            r, msg = sbtest.rpc(b.port, sid, "tools/list", id_=5, extra=cred, path="/boldsign/mcp")
            assert r.status == 200 and msg and "result" in msg, r.describe()
            names = [x["name"] for x in msg["result"]["tools"]]
            assert "send_document" in names, names
            r, _ = sbtest.rpc(b.port, sid, "tools/list", id_=6, extra=cred2, path="/boldsign/mcp")
            assert r.status == 404, "another key got %s" % r.describe()
            r, _ = sbtest.rpc(b.port, sid, "tools/list", id_=7, extra=cred, path="/dropboxsign/mcp")
            assert r.status in (401, 404), "another route got %s" % r.describe()
        t.check("a session created on A works on B (tools/list); another key or route gets 404",
                session_on_b)

        def idem_across():
            ik = "replicas-" + uuid.uuid4().hex
            seq = sbx.last_seq()
            ra = st["a"].call("send_document", send_args(ik, "Replica send"))
            assert not ra.is_error, ra.describe()
            rb = st["b"].call("send_document", send_args(ik, "Replica send"))
            assert not rb.is_error, rb.describe()
            assert rb.structured["document_id"] == ra.structured["document_id"], (ra.raw, rb.raw)
            sends = [r for r in sbx.requests(since=seq, provider="boldsign") if r["route"] == SEND]
            assert len(sends) == 1, "sent %d times" % len(sends)
        t.check("an idempotent send made on A and retried on B is sent once", idem_across)

        def idem_race():
            ik = "race-" + uuid.uuid4().hex
            seq = sbx.last_seq()
            sbx.config(latency_ms=400)
            out = {}

            def go(name, s):
                try:
                    out[name] = s.call("send_document", send_args(ik, "Raced send"), timeout=30)
                except Exception as e:  # noqa: BLE001
                    out[name] = e
            th = [threading.Thread(target=go, args=(n, st[n])) for n in ("a", "b")]
            for x in th:
                x.start()
            for x in th:
                x.join()
            sbx.config(latency_ms=0)
            for n in ("a", "b"):
                assert isinstance(out[n], uptest.ToolResult) and not out[n].is_error, \
                    "%s: %r" % (n, getattr(out[n], "raw", out[n]))
            assert out["a"].structured["document_id"] == out["b"].structured["document_id"], \
                (out["a"].raw, out["b"].raw)
            sends = [r for r in sbx.requests(since=seq, provider="boldsign") if r["route"] == SEND]
            assert len(sends) == 1, "sent %d times" % len(sends)
        t.check("the same idempotency_key raced on A and B at once is sent once; both get its "
                "outcome", idem_race)

        def delete_on_a():
            sid = st["a"].sid
            # B has just confirmed the session (its liveness cache is fresh: the worst case)
            r, _ = sbtest.rpc(b.port, sid, "tools/list", id_=8, extra=cred, path="/boldsign/mcp")
            assert r.status == 200, r.describe()
            r = request(a.port, "DELETE", "/boldsign/mcp",
                        sbtest.mcp_headers(session=sid, version=uptest.PROTO, extra=cred))
            assert r.status == 200, r.describe()
            t0 = time.monotonic()
            n = 0
            while True:
                n += 1
                r, _ = sbtest.rpc(b.port, sid, "tools/list", id_=9, extra=cred, path="/boldsign/mcp")
                dt = time.monotonic() - t0
                if r.status == 404:
                    break
                assert r.status == 200, r.describe()
                assert dt < 1.5, "B still serves the session %.2f s after the DELETE" % dt
                time.sleep(0.05)
            assert dt <= 1.1, "B answered 404 only after %.2f s" % dt
            print("# B answered 404 %.3f s after the DELETE on A (%d requests)" % (dt, n))
            r, _ = sbtest.rpc(a.port, sid, "tools/list", id_=10, extra=cred, path="/boldsign/mcp")
            assert r.status == 404, r.describe()
        t.check("DELETE on A: B answers 404 for the session within 1 s", delete_on_a)

        def delete_on_b():
            s = b.session("/boldsign/mcp", cred)
            r, _ = sbtest.rpc(a.port, s.sid, "ping", id_=3, extra=cred, path="/boldsign/mcp")
            assert r.status == 200, r.describe()
            r = request(b.port, "DELETE", "/boldsign/mcp",
                        sbtest.mcp_headers(session=s.sid, version=uptest.PROTO, extra=cred))
            assert r.status == 200, r.describe()
            time.sleep(1.05)
            r, _ = sbtest.rpc(a.port, s.sid, "ping", id_=4, extra=cred, path="/boldsign/mcp")
            assert r.status == 404, r.describe()
        t.check("and the other way round: a session B created, used on A, deleted on B is 404 on A",
                delete_on_b)

        def readyz_503():
            script = os.path.join(sbtest.SOURCE_ROOT or os.path.join(HERE, "..", ".."),
                                  "scripts", "pg-test-server")
            p = subprocess.run([script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               timeout=120)
            assert p.returncode == 0 and p.stdout.strip(), "pg-test-server: %s" % p.stderr[-500:]
            url = p.stdout.strip()
            stopped = False
            c = uptest.Bridge(sbx, env={"SIGNBRIDGE_STORE_URL": url})
            try:
                c.start()
                r = request(c.port, "GET", "/readyz")
                assert r.status == 200, r.describe()
                subprocess.run([script, "stop", url], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=60)
                stopped = True
                t0 = time.monotonic()
                while True:
                    r = request(c.port, "GET", "/readyz")
                    dt = time.monotonic() - t0
                    if r.status == 503:
                        break
                    assert dt < 3.0, "still %d %.1f s after the database stopped" % (r.status, dt)
                    time.sleep(0.1)
                assert r.json().get("status") == "store_unavailable", r.describe()
                assert request(c.port, "GET", "/healthz").status == 200
                print("# /readyz 503 %.2f s after the database stopped" % dt)
            finally:
                c.stop()
                c.tmp.cleanup()
                if not stopped:
                    subprocess.run([script, "stop", url], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, timeout=60)
        t.check("/readyz answers 503 (store_unavailable) once the store stops answering; /healthz "
                "stays 200", readyz_503)
    finally:
        uptest.stop_checked(t.checks, b, "signbridge B")
        uptest.check_no_secrets(t.checks, sbx, b, what="signbridge B's log")
        b.tmp.cleanup()


if __name__ == "__main__":
    if not PG:
        print("# SB_TEST_PG_URL is not set: skipped (scripts/test starts a PostgreSQL)")
        sys.exit(77)
    # a schema of our own (dropped at the end): other tests share the database
    schema = "sbreplicas_%d_%d" % (os.getpid(), int(time.time()))
    base = PG
    psql(base, "CREATE SCHEMA %s" % schema)
    PG = schema_url(base, schema)
    try:
        uptest.run(main, bridge_env={"SIGNBRIDGE_STORE_URL": PG})
    finally:
        psql(base, "DROP SCHEMA %s CASCADE" % schema)
