"""auth-persist: signbridge's OAuth state lives in the store.

(a) SQLite: tokens obtained, signbridge stopped with SIGTERM and started again on the same port,
    store file and secret file: the old access token still works at /mcp (tools/list), the
    refresh token still refreshes, the signing key (kid) is the same; then SIGKILL and restart:
    the same; and a refresh token used before the restart is still known as used (replay ->
    invalid_grant, family revoked).
(b) the same on PostgreSQL (SB_TEST_PG_URL; skipped when unset).
(c) two signbridge processes on one PostgreSQL and one secret file, both with public_url = A's
    origin: a token minted via A works on B (and one minted via B on A), a refresh on B of A's
    refresh token works, a session from A's initialize is honoured by B, and a session ended on A
    (DELETE) is ended on B within 1 s (404).
"""

import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oauthlib_sb as L  # noqa: E402
from oauthlib_sb import request, short  # noqa: E402

PG_URL = os.environ.get("SB_TEST_PG_URL", "").strip()


def kid_of(port):
    r = request(port, "GET", "/jwks.json")
    assert r.status == 200, r.describe()
    return sorted(k["kid"] for k in r.json()["keys"])


def restart_cycle(t, name, sbx, key, store, tmp, procs):
    """Scenario (a)/(b) on one store URL."""
    secret = os.path.join(tmp, "secret-%s" % name)
    port = L.free_port()
    br = L.Bridge(sbx, store=store, secret_file=secret, listen="127.0.0.1:%d" % port)
    procs.append(br)
    br.start()
    assert br.port == port, "listening on %d, asked for %d" % (br.port, port)
    tk = L.obtain_tokens(port, key)
    kid0 = kid_of(port)
    t.check("%s: fresh token works (tools/list)" % name, lambda: L.tools_list(port, tk["access_token"]))

    rc = br.stop()
    t.check("%s: SIGTERM exit 0" % name, lambda: _eq(rc, 0, "exit code"))
    br.start()
    t.check("%s: after SIGTERM restart the same port" % name, lambda: _eq(br.port, port, "port"))
    t.check("%s: signing key (kid) survives SIGTERM restart" % name,
            lambda: _eq(kid_of(port), kid0, "kid"))
    t.check("%s: old access token works after SIGTERM restart" % name,
            lambda: L.tools_list(port, tk["access_token"]))
    state = {}

    def refresh1():
        r, j = L.refresh(port, tk["client_id"], tk["refresh_token"])
        assert r.status == 200 and j.get("access_token") and j.get("refresh_token"), r.describe()
        L.tools_list(port, j["access_token"])
        state["t2"] = j
    t.check("%s: refresh token refreshes after SIGTERM restart" % name, refresh1)

    br.kill()  # SIGKILL
    t.check("%s: SIGKILL took effect" % name, lambda: _eq(br.proc.returncode, -9, "returncode"))
    br.start()
    t.check("%s: after SIGKILL restart the same port" % name, lambda: _eq(br.port, port, "port"))
    t.check("%s: signing key (kid) survives SIGKILL restart" % name,
            lambda: _eq(kid_of(port), kid0, "kid"))
    t2 = state.get("t2") or {}

    def after_kill():
        assert t2, "no refreshed tokens (the refresh check failed)"
        L.tools_list(port, t2["access_token"])
        L.tools_list(port, tk["access_token"])  # not revoked: the family is alive
    t.check("%s: access tokens work after SIGKILL restart" % name, after_kill)

    def refresh2():
        assert t2, "no refreshed tokens"
        r, j = L.refresh(port, tk["client_id"], t2["refresh_token"])
        assert r.status == 200 and j.get("access_token"), r.describe()
        L.tools_list(port, j["access_token"])
        state["t3"] = j
    t.check("%s: refresh token refreshes after SIGKILL restart" % name, refresh2)

    def replay():
        t3 = state.get("t3")
        assert t3, "no third tokens"
        r, j = L.refresh(port, tk["client_id"], tk["refresh_token"])  # used before both restarts
        assert r.status == 400 and j.get("error") == "invalid_grant", r.describe()
        deadline = time.monotonic() + 1.6
        while True:
            r = L.mcp_init(port, t3["access_token"])
            if r.status == 401 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert r.status == 401, "family not revoked: %s" % r.describe()
    t.check("%s: a refresh token used before the restarts is still a replay" % name, replay)
    rc = br.stop()
    t.check("%s: final SIGTERM exit 0, no crash report" % name,
            lambda: (_eq(rc, 0, "exit code"), _eq(br.crash_report(), None, "crash")))
    return br


def replicas(t, sbx, key, store, tmp, procs):
    secret = os.path.join(tmp, "secret-replicas")
    pa = L.free_port()
    public = "http://127.0.0.1:%d" % pa
    cfg = {"public_url": public}
    a = L.Bridge(sbx, store=store, secret_file=secret, listen="127.0.0.1:%d" % pa, config=cfg)
    b = L.Bridge(sbx, store=store, secret_file=secret, config=cfg)
    procs += [a, b]
    a.start()
    b.start()
    assert a.port == pa

    def same_meta():
        ma = request(a.port, "GET", "/.well-known/oauth-authorization-server").json()
        mb = request(b.port, "GET", "/.well-known/oauth-authorization-server").json()
        assert ma.get("issuer") == public and mb.get("issuer") == public, (ma.get("issuer"), mb.get("issuer"))
        assert kid_of(a.port) == kid_of(b.port), "the replicas publish different keys"
    t.check("replicas: same issuer (public_url) and the same signing key", same_meta)

    tk = L.obtain_tokens(a.port, key, origin=public)
    t.check("replicas: token minted via A works on A", lambda: L.tools_list(a.port, tk["access_token"]))
    t.check("replicas: token minted via A works on B", lambda: L.tools_list(b.port, tk["access_token"]))

    def via_b():
        tb = L.obtain_tokens(b.port, key, origin=public)
        L.tools_list(a.port, tb["access_token"])
        L.tools_list(b.port, tb["access_token"])
    t.check("replicas: token obtained through B (register/authorize/consent/token) works on A", via_b)

    st = {}

    def refresh_on_b():
        r, j = L.refresh(b.port, tk["client_id"], tk["refresh_token"])
        assert r.status == 200 and j.get("access_token"), r.describe()
        L.tools_list(a.port, j["access_token"])
        st["t2"] = j
    t.check("replicas: A's refresh token refreshes on B", refresh_on_b)

    def session_shared():
        tok = (st.get("t2") or tk)["access_token"]
        sid, ver, _ = L.sbtest.initialize(a.port, extra=L.bearer(tok), timeout=20.0)
        st["sid"], st["tok"] = sid, tok
        names = L.tools_list(b.port, tok, sid=sid)
        assert names, names
    ok = t.check("replicas: a session initialized on A is honoured by B", session_shared)

    def session_end():
        sid, tok = st.get("sid"), st.get("tok")
        assert sid, "no session"
        r = request(a.port, "DELETE", "/mcp", L.sbtest.mcp_headers(session=sid, version=L.PROTO,
                                                                   extra=L.bearer(tok)))
        assert r.status in (200, 202, 204), "DELETE on A: %s" % r.describe()
        r = request(a.port, "POST", "/mcp", L.sbtest.mcp_headers(session=sid, version=L.PROTO,
                                                                 extra=L.bearer(tok)),
                    {"jsonrpc": "2.0", "id": 9, "method": "tools/list"})
        assert r.status == 404, "A still serves the deleted session: %s" % r.describe()
        t0 = time.monotonic()
        while True:
            r = request(b.port, "POST", "/mcp", L.sbtest.mcp_headers(session=sid, version=L.PROTO,
                                                                     extra=L.bearer(tok)),
                        {"jsonrpc": "2.0", "id": 9, "method": "tools/list"})
            if r.status == 404 or time.monotonic() - t0 > 1.0:
                break
            time.sleep(0.05)
        assert r.status == 404, "B still serves the session %.2fs after DELETE on A: %s" % (
            time.monotonic() - t0, r.describe())
    if ok:
        t.check("replicas: a session ended on A is ended on B within 1 s", session_end)
    else:
        t.fail("replicas: a session ended on A is ended on B within 1 s",
               "not run: the session was not shared between the replicas")

    def replay_across():
        r, j = L.refresh(a.port, tk["client_id"], tk["refresh_token"])  # used on B already
        assert r.status == 400 and j.get("error") == "invalid_grant", r.describe()
        t2 = st.get("t2")
        assert t2, "no refreshed tokens"
        deadline = time.monotonic() + 1.6
        while True:
            r = L.mcp_init(b.port, t2["access_token"])
            if r.status == 401 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert r.status == 401, "family not revoked on B: %s" % r.describe()
    t.check("replicas: a refresh replayed on A (used on B) revokes the family on B too", replay_across)
    for n, p in (("A", a), ("B", b)):
        rc = p.stop()
        t.check("replicas: %s exits 0, no crash report" % n,
                lambda: (_eq(rc, 0, "exit code"), _eq(p.crash_report(), None, "crash")))


def main():
    L.require_bins()
    t = L.Checks()
    sbx = L.Sandbox(args=["--no-rate-limits"])
    procs = []
    tmpd = tempfile.TemporaryDirectory(prefix="sbauth-persist-")
    tmp = tmpd.name
    try:
        sbx.start()
        key = L.remember("boldsign api key", sbx.key("boldsign", "us"))
        try:
            restart_cycle(t, "sqlite", sbx, key, "sqlite:" + os.path.join(tmp, "sb.db"), tmp, procs)
        except Exception as e:  # noqa: BLE001
            t.fail("sqlite: scenario", "%s: %s" % (type(e).__name__, e))
        if not PG_URL:
            print("# postgresql parts skipped: SB_TEST_PG_URL is not set")
        else:
            url = L.pg_schema_url(PG_URL, "r")
            if url is None:
                print("# postgresql parts skipped: psql is not installed")
            else:
                try:
                    restart_cycle(t, "postgresql", sbx, key, url, tmp, procs)
                except Exception as e:  # noqa: BLE001
                    t.fail("postgresql: scenario", "%s: %s" % (type(e).__name__, e))
                try:
                    replicas(t, sbx, key, L.pg_schema_url(PG_URL, "s"), tmp, procs)
                except Exception as e:  # noqa: BLE001
                    t.fail("replicas: scenario", "%s: %s" % (type(e).__name__, e))

        def no_secrets():
            secrets = L.uptest.secrets_of(sbx, None, extra=L.SECRETS)
            for p in procs:
                found = L.uptest.find_secrets(p.stderr_text(), secrets)
                assert not found, "secrets in a signbridge log: %s" % found[:10]
        t.check("no secret the test handled appears in any signbridge log", no_secrets)
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        t.fail("setup", "%s: %s" % (type(e).__name__, e))
    finally:
        for p in procs:
            p.kill()
        if t.failed:
            for i, p in enumerate(procs):
                sys.stdout.write("--- signbridge #%d log tail ---\n%s\n"
                                 % (i, short(p.stderr_text()[-2500:], 2500)))
        sbx.kill()
        if PG_URL:
            L.pg_drop_schemas()
        tmpd.cleanup()
    return t.finish()


def _eq(a, b, what):
    assert a == b, "%s: %r != %r" % (what, a, b)


if __name__ == "__main__":
    sys.exit(main())
