#!/usr/bin/env python3
"""crash-safety (issue 10): SIGKILL under load, restart on the same store, nothing lost.

For the SQLite store (and PostgreSQL when SB_TEST_PG_URL is set), one sandbox and one signbridge
(OAuth on, a fixed port, its own secret file, SIGNBRIDGE_LIMITS_CALL_TIMEOUT_S=6 so a retry that
meets a pending record answers quickly):

  setup   4 OAuth grants (register + authorize + consent + token); 2 "quiet" grants whose refresher
          is paused at the kill, 2 "busy" grants refreshed without pause (a refresh may be in
          flight when the process dies)
  load    3 readers (list_documents on 3 providers), 4 refreshers (refresh-token rotation +
          tools/list with the new access token), 2 senders (BoldSign send_document, each with a
          new idempotency_key and a unique title) -- for ~3 s, then SIGKILL
  store   SQLite: PRAGMA integrity_check = ok (python sqlite3 on the file, after the kill)
  restart same port, store and secret file, then:
    - every grant's first access token still works (tools/list);
    - quiet grants: the last refresh token the client holds refreshes (200, new pair, works);
    - busy grants: the last refresh token the client holds refreshes, or -- only when a refresh
      was in flight at the kill (rotation committed, answer lost) -- invalid_grant;
    - every send that completed before the kill, retried with its key and arguments: the same
      document_id and no new send request at the sandbox;
    - every send in flight at the kill, retried with its key: any answer, but the sandbox has at
      most ONE send with its title over the whole test (never sent twice);
    - a second retry round sends nothing at all;
    - after a SIGTERM the process exits 0 and the log holds no token or key.
"""

import os
import sqlite3
import sys
import threading
import time
import base64
import json

sys.dont_write_bytecode = True
import secrets  # noqa: E402,F401  (the stdlib one, before tests/upstream/secrets.py is on the path)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "auth"))
import oauthlib_sb as L  # noqa: E402
import sbtest  # noqa: E402
import uptest  # noqa: E402

PG_URL = os.environ.get("SB_TEST_PG_URL", "").strip()
LOAD_S = 3.0
SEND_ROUTE = "POST /v1/document/send"
PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
       b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")
READ_PATHS = {"boldsign": ("us", "/boldsign/mcp"), "dropboxsign": ("global", "/dropboxsign/mcp"),
              "iinkedsign": ("us", "/iinkedsign/mcp")}


class Grant:
    def __init__(self, tk, quiet):
        self.client_id = tk["client_id"]
        self.first_at = tk["access_token"]
        self.at, self.rt = tk["access_token"], tk["refresh_token"]
        self.quiet = quiet
        self.lock = threading.Lock()   # held for each refresh; the killer takes quiet ones'
        self.in_flight = False
        self.refreshes = 0
        self.error = None


def refresher(stop, port, g):
    while not stop.is_set():
        with g.lock:
            if stop.is_set():
                return
            g.in_flight = True
            try:
                r, j = L.refresh(port, g.client_id, g.rt)
            except Exception:  # noqa: BLE001 - the process was killed mid-request
                return
            if r.status != 200 or not j.get("refresh_token"):
                g.error = "refresh: %s" % r.describe()
                return
            g.at, g.rt = j["access_token"], j["refresh_token"]
            g.in_flight = False
            g.refreshes += 1
        try:
            L.tools_list(port, g.at)
        except Exception:  # noqa: BLE001
            return
        time.sleep(0.05)


def reader(stop, port, sbx, prov, counter):
    region, path = READ_PATHS[prov]
    cred = uptest.xkey(sbx.key(prov, region))
    try:
        sid, ver, _ = sbtest.initialize(port, extra=cred, path=path, timeout=10)
        i = 10
        while not stop.is_set():
            i += 1
            r, m = sbtest.rpc(port, sid, "tools/call", {"name": "list_documents",
                                                         "arguments": {"page_size": 3}},
                              id_=i, version=ver, extra=cred, path=path, timeout=10)
            if r.status == 200:
                counter.append(1)
            time.sleep(0.01)
    except Exception:  # noqa: BLE001 - killed
        return


def sender(stop, port, sbx, tag, sends):
    cred = uptest.xkey(sbx.key("boldsign", "us"))
    try:
        sid, ver, _ = sbtest.initialize(port, extra=cred, path="/boldsign/mcp", timeout=10)
    except Exception:  # noqa: BLE001
        return
    n = 0
    while not stop.is_set():
        n += 1
        title = "crash %s %d %d" % (tag, n, int(time.time() * 1000))
        args = {"title": title, "files": [{"base64": base64.b64encode(PDF).decode(),
                                           "name": "c.pdf"}],
                "signers": [{"name": "Kim Crash", "email": "kim.crash@example.org"}],
                "idempotency_key": "k-" + title.replace(" ", "-")}
        rec = {"title": title, "args": args, "state": "in flight", "doc": None}
        sends.append(rec)
        try:
            r, m = sbtest.rpc(port, sid, "tools/call", {"name": "send_document", "arguments": args},
                              id_=100 + n, version=ver, extra=cred, path="/boldsign/mcp",
                              timeout=15)
            res = uptest.tool_result_of(m) if r.status == 200 else None
        except Exception:  # noqa: BLE001 - killed mid-call
            return
        if res is None:
            rec["state"] = "lost"
            return
        rec["state"] = "error" if res.is_error else "ok"
        rec["doc"] = (res.structured or {}).get("document_id")
        rec["text"] = res.text
        time.sleep(0.03)


def sends_by_title(sbx):
    out = {}
    for q in sbx.requests(since=0, provider="boldsign"):
        if q.get("route") != SEND_ROUTE:
            continue
        body = q.get("body") or ""
        try:
            title = json.loads(body).get("title") if isinstance(body, str) else body.get("title")
        except (ValueError, AttributeError):
            title = None
        if title:
            out[title] = out.get(title, 0) + 1
    return out


def scenario(t, name, sbx, store, tmp, procs, sqlite_path=None):
    secret = os.path.join(tmp, "secret-%s" % name)
    port = L.free_port()
    br = L.Bridge(sbx, store=store, secret_file=secret, listen="127.0.0.1:%d" % port,
                  env={"SIGNBRIDGE_LIMITS_CALL_TIMEOUT_S": "6"})
    procs.append(br)
    br.start()
    key = sbx.key("boldsign", "us")
    grants = [Grant(L.obtain_tokens(port, key), quiet=(i < 2)) for i in range(4)]
    stop = threading.Event()
    sends, reads = [], []
    threads = [threading.Thread(target=refresher, args=(stop, port, g)) for g in grants]
    threads += [threading.Thread(target=reader, args=(stop, port, sbx, p, reads))
                for p in READ_PATHS]
    threads += [threading.Thread(target=sender, args=(stop, port, sbx, "%s-%d" % (name, i), sends))
                for i in range(2)]
    for th in threads:
        th.daemon = True
        th.start()
    time.sleep(LOAD_S)
    for g in grants:          # pause the quiet grants' refreshers between two refreshes
        if g.quiet:
            g.lock.acquire()
    br.kill()                 # SIGKILL, under load
    stop.set()
    for g in grants:
        if g.quiet:
            g.lock.release()
    for th in threads:
        th.join(20)
    t.check("%s: SIGKILL under load (%d reads, %d refreshes, %d sends started)" % (
        name, len(reads), sum(g.refreshes for g in grants), len(sends)),
        lambda: _eq(br.proc.returncode, -9, "returncode"))
    t.check("%s: the load really ran (reads, refreshes and sends before the kill)" % name,
            lambda: _true(reads and sum(g.refreshes for g in grants) and
                          any(s["state"] == "ok" for s in sends),
                          "reads %d, refreshes %s, sends %s" % (
                              len(reads), [g.refreshes for g in grants],
                              [s["state"] for s in sends])))
    for g in grants:
        if g.error:
            t.checks.fail("%s: refreshes before the kill" % name, g.error)

    if sqlite_path:
        def integrity():
            assert os.path.exists(sqlite_path), "no store file %s" % sqlite_path
            db = sqlite3.connect(sqlite_path, timeout=10)
            try:
                rows = db.execute("PRAGMA integrity_check").fetchall()
            finally:
                db.close()
            assert rows == [("ok",)], "integrity_check: %r" % rows[:5]
        t.check("%s: PRAGMA integrity_check = ok on the store after SIGKILL" % name, integrity)

    br.start()
    t.check("%s: restarted on the same port" % name, lambda: _eq(br.port, port, "port"))

    for i, g in enumerate(grants):
        t.check("%s: grant %d: its first access token works after the restart" % (name, i),
                lambda g=g: L.tools_list(port, g.first_at))
        t.check("%s: grant %d: the latest access token the client holds works" % (name, i),
                lambda g=g: L.tools_list(port, g.at))

        def refresh_after(g=g):
            r, j = L.refresh(port, g.client_id, g.rt)
            if r.status == 200:
                assert j.get("access_token") and j.get("refresh_token"), r.describe()
                L.tools_list(port, j["access_token"])
                return
            if not g.quiet and g.in_flight:
                assert r.status == 400 and j.get("error") == "invalid_grant", r.describe()
                print("# %s: grant %d: a refresh was in flight at the kill; the client's refresh "
                      "token was already rotated (invalid_grant)" % (name, i), flush=True)
                return
            raise AssertionError("refresh after the restart: %s" % r.describe())
        t.check("%s: grant %d (%s): the latest refresh token refreshes after the restart" % (
            name, i, "paused at the kill" if g.quiet else
            ("refresh in flight at the kill" if g.in_flight else "busy")), refresh_after)

    cred = uptest.xkey(key)
    sid, ver, _ = sbtest.initialize(port, extra=cred, path="/boldsign/mcp", timeout=10)
    seq = sbx.last_seq()
    nid = [1000]

    def retry(rec):
        nid[0] += 1
        r, m = sbtest.rpc(port, sid, "tools/call", {"name": "send_document", "arguments": rec["args"]},
                          id_=nid[0], version=ver, extra=cred, path="/boldsign/mcp", timeout=30)
        assert r.status == 200 and m and "result" in m, r.describe()
        return uptest.ToolResult(m["result"])

    done = [s for s in sends if s["state"] == "ok"]
    lost = [s for s in sends if s["state"] != "ok"]

    def replayed():
        bad = []
        for s in done:
            res = retry(s)
            if res.is_error or (res.structured or {}).get("document_id") != s["doc"]:
                bad.append("%s: %s" % (s["title"], res.describe()))
        time.sleep(0.3)
        new = [q for q in sbx.requests(since=seq, provider="boldsign") if q.get("route") == SEND_ROUTE]
        assert not bad, "%d of %d not replayed, e.g. %s" % (len(bad), len(done), bad[:2])
        counts = sends_by_title(sbx)
        once = [s["title"] for s in done if counts.get(s["title"]) != 1]
        assert not once, "%d completed send(s) not logged exactly once at the sandbox, e.g. %s" % (
            len(once), once[:2])
        assert not new, "%d new send request(s) after retrying completed sends" % len(new)
    t.check("%s: each of the %d sends completed before the kill, retried with its key: the same "
            "document_id, nothing sent again" % (name, len(done)), replayed)

    def in_flight():
        notes = []
        for s in lost:
            res = retry(s)
            notes.append("error" if res.is_error else "ok")
        counts = sends_by_title(sbx)
        dup = {k: v for k, v in counts.items() if v > 1 and k.startswith("crash %s" % name)}
        assert not dup, "sent more than once: %s" % dup
        print("# %s: %d send(s) in flight at the kill; retries answered %s" % (
            name, len(lost), notes), flush=True)
    t.check("%s: sends in flight at the kill, retried with their keys: never sent twice" % name,
            in_flight)

    def second_round():
        seq2 = sbx.last_seq()
        for s in sends:
            retry(s)
        time.sleep(0.3)
        new = [q for q in sbx.requests(since=seq2, provider="boldsign")
               if q.get("route") == SEND_ROUTE]
        assert not new, "a second retry round sent %d request(s)" % len(new)
        counts = sends_by_title(sbx)
        dup = {k: v for k, v in counts.items() if v > 1 and k.startswith("crash %s" % name)}
        assert not dup, "sent more than once: %s" % dup
    t.check("%s: a second retry round of every key sends nothing; no title sent twice" % name,
            second_round)

    rc = br.stop()
    t.check("%s: SIGTERM after the restart -> exit 0" % name, lambda: _eq(rc, 0, "exit code"))
    hits = L.log_secret_hits(br.stderr_text())
    t.check("%s: no token, code or key in signbridge's log" % name,
            lambda: _true(not hits, "found: %s" % hits[:5]))
    crash = br.crash_report()
    t.check("%s: no sanitizer report" % name, lambda: _true(crash is None, crash))


def _eq(a, b, what):
    assert a == b, "%s: %r, expected %r" % (what, a, b)


def _true(v, msg):
    assert v, msg


def main():
    L.require_bins()
    checks = sbtest.Checks()

    class T:
        pass
    t = T()
    t.checks = checks
    t.check = checks.check
    import tempfile
    tmp = tempfile.mkdtemp(prefix="sb-crash-")
    sbx = uptest.Sandbox(["--no-rate-limits"])
    procs = []
    try:
        sbx.start()
        db = os.path.join(tmp, "store.db")
        scenario(t, "sqlite", sbx, "sqlite:" + db, tmp, procs, sqlite_path=db)
        if PG_URL:
            url = L.pg_schema_url(PG_URL, "crash")
            if url is None:
                checks.fail("postgresql", "SB_TEST_PG_URL is set but psql is missing")
            else:
                scenario(t, "postgresql", sbx, url, tmp, procs)
        else:
            print("# PostgreSQL: skipped (SB_TEST_PG_URL unset)", flush=True)
    except Exception as e:  # noqa: BLE001
        import traceback
        checks.fail("test body raised", "%s: %s | %s" % (type(e).__name__, e,
                                                          traceback.format_exc()[-1500:]))
    finally:
        for p in procs:
            p.kill()
            p.tmp.cleanup()
        sbx.stop()
        sbx.tmp.cleanup()
        L.pg_drop_schemas()
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
