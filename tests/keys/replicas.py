"""keys-replicas: signbridge keys across two replicas on one PostgreSQL (issue 7, docs/keys.md).

Needs SB_TEST_PG_URL (scripts/test sets it from scripts/pg-test-server); exits 77 (skip) without
it. One sandbox, a fresh PostgreSQL schema, one secret file shared by the CLI and two signbridge
processes A and B (A also serves the admin API when built in). Checks: a key created with the CLI
works on both; revoked with the CLI, then with A's admin API, then rotated with --overlap 0s on A,
it is refused by B within one second (B polled every 100 ms, its cache warmed just before; the
first refusal must come <= 1.0 s after the revocation returned); no key or provider key in either
log. Ends with "N passed, N failed".
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import keyslib as K  # noqa: E402
from keyslib import L  # noqa: E402

ADMIN_TOKEN = "adm-" + "0d9e8c7b6a5f4e3d2c1b0a9f8e7d6c5b"
LIMIT = 1.0


def main():
    base = os.environ.get("SB_TEST_PG_URL", "")
    if not base:
        print("skipped: SB_TEST_PG_URL is not set (scripts/test starts a throwaway PostgreSQL)")
        print("0 passed, 0 failed")
        return 77
    L.require_bins()
    t = L.Checks()
    sbx = L.Sandbox(args=["--no-rate-limits"])
    brs = []
    try:
        sbx.start()
        url = L.pg_schema_url(base, "keys")
        if url is None:
            t.fail("setup", "psql is not installed: cannot create a schema")
            return finish(t, sbx, brs)
        secret_file = os.path.join(sbx.dir, "shared.secret")
        admin = K.admin_supported()
        env = {"SIGNBRIDGE_ADMIN_TOKEN": ADMIN_TOKEN} if admin else {}
        a_port_file = os.path.join(sbx.dir, "admin-a.port")
        A = L.Bridge(sbx, store=url, secret_file=secret_file, env=env)
        if admin:
            A.args += ["--admin-listen", "127.0.0.1:0", "--admin-port-file", a_port_file]
        B = L.Bridge(sbx, store=url, secret_file=secret_file)
        brs += [A, B]
        A.start()
        B.start()
        L.remember("pg url", url)
        bs_key = L.remember("boldsign api key", sbx.key("boldsign", "us"))

        def works_on_both(k, what):
            for name, br in (("A", A), ("B", B)):
                s = K.Sess(br.port, K.xkey(k))
                r, res = s.call("list_documents", {})
                assert r.status == 200 and res and not res.get("isError"), \
                    "%s on replica %s: %s" % (what, name, r.describe())
                assert "send_document" not in s.tools(), "%s: read key lists send_document on %s" % (
                    what, name)

        def refused_on_b(k, revoke, word, what):
            # warm B's cache (the worst case: a lookup cached just before the revocation)
            r = K.init_raw(B.port, K.xkey(k))
            assert r.status == 200, "%s before: %s" % (what, r.describe())
            revoke()
            r, el = K.poll_status(B.port, K.xkey(k), 401, LIMIT + 2.0, step=0.1)
            K.assert_401(r, word, what + " on replica B")
            assert el <= LIMIT, "%s: replica B refused it %.3f s after the revocation returned " \
                "(limit %.1f s)" % (what, el, LIMIT)
            print("# %s: B refused after %.3f s" % (what, el), flush=True)

        st = {}

        def create():
            for i in range(3):
                st[i] = K.create(secret_file, url, sbx, "boldsign", bs_key, "replica-%d" % i, "read")
                works_on_both(st[i][0], "key %d" % i)
        if not t.check("a key created with the CLI against PostgreSQL works on both replicas", create):
            return finish(t, sbx, brs)

        def cli_revoke():
            k, kid = st[0]

            def rv():
                p = K.cli(["revoke", kid], secret_file, url)
                assert p.returncode == 0, "revoke: %d %r" % (p.returncode, p.stderr)
            refused_on_b(k, rv, "revoked", "CLI revoke")
            assert K.init_raw(A.port, K.xkey(k)).status == 401, "A still accepts the revoked key"
        t.check("revoked with the CLI: refused by replica B within %.1f s" % LIMIT, cli_revoke)

        if admin:
            def admin_revoke():
                k, kid = st[1]
                with open(a_port_file) as f:
                    ap = int(f.read())
                adm = K.Admin(ap, ADMIN_TOKEN)

                def rv():
                    r = adm.req("DELETE", "/admin/keys/" + kid)
                    assert r.status in (200, 204), "DELETE on A: %s" % r.describe()
                refused_on_b(k, rv, "revoked", "admin revoke on A")
            t.check("revoked with replica A's admin API: refused by replica B within %.1f s" % LIMIT,
                    admin_revoke)
        else:
            t.fail("revoked with replica A's admin API", "no --admin-listen in this build")

        def rotate():
            k, kid = st[2]
            new = {}

            def rv():
                p = K.cli(["rotate", kid, "--overlap", "0s"], secret_file, url)
                assert p.returncode == 0, "rotate: %d %r" % (p.returncode, p.stderr)
                new["k"] = L.remember("rotated key", p.stdout.strip())
            refused_on_b(k, rv, "rotated", "rotate --overlap 0s")
            works_on_both(new["k"], "the rotated key")
        t.check("rotated with --overlap 0s: the old key refused by B within %.1f s, the new one "
                "works on both" % LIMIT, rotate)

        def listing():
            arr = K.list_json(secret_file, url)
            by = {x["id"]: x["status"] for x in arr}
            assert by.get(st[0][1]) == "revoked" and by.get(st[2][1]) in ("expired", "rotating"), by
        t.check("keys list --json on PostgreSQL shows the revoked and rotated keys", listing)
    except Exception as e:  # noqa: BLE001
        t.fail("setup", "%s: %s" % (type(e).__name__, e))
    return finish(t, sbx, brs)


def finish(t, sbx, brs):
    for name, br in zip("AB", brs):
        alive = br.alive()
        rc = br.stop()
        if not alive or rc != 0:
            t.fail("replica %s exits 0 on SIGTERM" % name, "alive=%s rc=%r %s" % (
                alive, rc, L.short(br.stderr_text()[-1200:], 1200)))
        text = br.stderr_text()
        secrets = L.SECRETS + ([("server secret", br.secret_text())] if br.secret_text() else [])
        hits = L.uptest.find_secrets(text, secrets)
        if hits or K.KEY_RE.search(text):
            t.fail("no key or provider key in replica %s's log" % name,
                   "; ".join("%s at line %d" % h for h in hits[:10]))
        elif text.strip():
            t.ok("no key or provider key in replica %s's log (%d lines)" % (name,
                                                                           len(text.splitlines())))
    cli_text = "\n".join(K.CLI_STDERR)
    hits = L.uptest.find_secrets(cli_text, L.SECRETS)
    if hits or K.KEY_RE.search(cli_text):
        t.fail("no secret in the CLI's stderr", "; ".join(l for l, _ in hits))
    sbx.stop()
    L.pg_drop_schemas()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
