"""keys: acceptance of issue 7 -- scoped, expiring, revocable signbridge keys (docs/keys.md).

One sandbox (--no-rate-limits, seed 4242), one SQLite store and one secret file shared by the
`signbridge keys` CLI and one signbridge (--sandbox-url). Checks:
 a. a read key: no action tool listed, send_document -> 403 insufficient_scope, list_documents
    works; in all three header styles; the sandbox's request log shows the provider key in the
    provider's scheme (BoldSign x-api-key + account_id, Dropbox Sign basic + account_id) and never
    the signbridge key; a key used on another provider's route is refused;
 b. expired (--expires 2s), revoked and rotated (--overlap 3s) keys -> 401 saying which;
 c. a --tools allow-list: only those tools listed, another -> 403 insufficient_scope;
 d. CLI errors (exit codes 1 / 2 and messages);
 e. the admin API when built in (--admin-listen): operator token, create/list/show/rotate/revoke
    matching the CLI's view;
 f. no signbridge key, provider key or sealed credential in signbridge's log (debug), the CLI's
    stderr or (in clear) any value of the SQLite store.
Ends with "N passed, N failed".
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import keyslib as K  # noqa: E402
from keyslib import L  # noqa: E402

ADMIN_TOKEN = "adm-" + "7f3c9a1e5b2d4c6e8a0b1d3f5e7c9a2b"


def main():
    L.require_bins()
    t = L.Checks()
    sbx = L.Sandbox(args=["--no-rate-limits"])
    br = None
    try:
        sbx.start()
        work = sbx.dir
        secret_file = os.path.join(work, "shared.secret")
        db = os.path.join(work, "keys.db")
        store = "sqlite:" + db
        admin = K.admin_supported()
        extra_env = {}
        cfg = None
        admin_port_file = os.path.join(work, "admin.port")
        if admin:
            extra_env["SIGNBRIDGE_ADMIN_TOKEN"] = ADMIN_TOKEN
        br = L.Bridge(sbx, store=store, config=cfg, secret_file=secret_file, env=extra_env)
        if admin:
            br.args += ["--admin-listen", "127.0.0.1:0", "--admin-port-file", admin_port_file]
        br.start()
        port = br.port

        bs = sbx.account("boldsign", "us", 0)
        ds = sbx.account("dropboxsign", "global", 0)
        bs_key = L.remember("boldsign api key", bs["api_key"])
        ds_key = L.remember("dropboxsign api key", ds["api_key"])
        S = dict(secret_file=secret_file, store=store)
        st = {}

        # ---------------------------------------------------------------- a. read scope
        def create_keys():
            st["read"], st["read_id"] = K.create(secret_file, store, sbx, "boldsign", bs_key,
                                                 "ci-read", "read")
            st["write"], st["write_id"] = K.create(secret_file, store, sbx, "boldsign", bs_key,
                                                   "ci-write", "write")
            info = K.show(secret_file, store, st["read_id"])
            assert info.get("scope") == "read" and info.get("provider") == "boldsign" and \
                info.get("region") == "us" and info.get("status") == "active", "show: %r" % info
            txt = json.dumps(info)
            assert st["read"] not in txt and bs_key not in txt, "show prints a secret"
        if not t.check("a: keys create (read and write, BoldSign) prints the key alone; show", create_keys):
            return finish(t, sbx, br)

        def read_scope():
            w = K.Sess(port, K.xkey(st["write"])).tools()
            assert "send_document" in w, "write key: send_document not listed: %r" % w
            s = K.Sess(port, K.xkey(st["read"]))
            names = s.tools()
            actions = [n for n in w if n not in names]
            assert "send_document" in actions and len(actions) >= 5, \
                "read key lists action tools: %r (write key: %r)" % (names, w)
            ro = ("list_", "get_", "download_")
            bad = [n for n in names if not n.startswith(ro)]
            assert not bad, "read key lists non-read tools %r" % bad
            r, _ = s.call("send_document", {"title": "x", "files": [], "signers": []})
            K.assert_403_scope(r, "read key calling send_document")
        t.check("a: read key lists no action tool; send_document -> 403 insufficient_scope", read_scope)

        def read_works(style):
            seq = sbx.last_seq()
            s = K.Sess(port, K.STYLES[style](st["read"]))
            r, res = s.call("list_documents", {})
            assert r.status == 200 and res and not res.get("isError"), \
                "list_documents: %s" % r.describe()
            docs = (res.get("structuredContent") or {}).get("documents")
            assert isinstance(docs, list) and docs, "list_documents returned no documents: %r" % \
                L.short(json.dumps(res))
            reqs = sbx.requests(since=seq, provider="boldsign")
            assert reqs, "no BoldSign request in the sandbox log"
            for q in reqs:
                assert q.get("auth_scheme") == "x-api-key" and q.get("account_id") == bs["account_id"], \
                    "sandbox saw %r/%r, want x-api-key/%s" % (q.get("auth_scheme"), q.get("account_id"),
                                                            bs["account_id"])
        for style in ("X-API-Key", "Basic", "api_key"):
            t.check("a: read key (%s) works for reads: list_documents returns documents upstream "
                    "as x-api-key with the right account_id" % style, read_works, style)

        def routes():
            s = K.Sess(port, K.xkey(st["read"]), path="/boldsign/mcp")
            assert "list_documents" in s.tools()
            s = K.Sess(port, K.xkey(st["read"]), path="/boldsign/us/mcp")
            r, res = s.call("list_documents", {})
            assert r.status == 200 and res and not res.get("isError"), r.describe()
            r = K.init_raw(port, K.xkey(st["read"]), "/dropboxsign/mcp")
            assert r.status == 401, "BoldSign key at /dropboxsign/mcp: %s" % r.describe()
            r = K.init_raw(port, K.xkey(st["read"]), "/boldsign/eu/mcp")
            assert r.status == 401, "us key at /boldsign/eu/mcp: %s" % r.describe()
        t.check("a: key works at /boldsign/mcp and /boldsign/us/mcp, refused at /dropboxsign/mcp "
                "and /boldsign/eu/mcp", routes)

        def dropbox():
            k, _ = K.create(secret_file, store, sbx, "dropboxsign", ds_key, "ci-dbx", "read")
            st["dbx"] = k
            seq = sbx.last_seq()
            s = K.Sess(port, K.basic(k))
            r, res = s.call("list_documents", {})
            assert r.status == 200 and res and not res.get("isError"), r.describe()
            docs = (res.get("structuredContent") or {}).get("documents")
            assert isinstance(docs, list) and docs, "no documents: %r" % L.short(json.dumps(res))
            reqs = sbx.requests(since=seq, provider="dropboxsign")
            assert reqs, "no Dropbox Sign request in the sandbox log"
            for q in reqs:
                assert q.get("auth_scheme") == "basic" and q.get("account_id") == ds["account_id"], \
                    "sandbox saw %r/%r, want basic/%s" % (q.get("auth_scheme"), q.get("account_id"),
                                                        ds["account_id"])
        t.check("a: Dropbox Sign read key: list_documents upstream as basic with the right "
                "account_id", dropbox)

        # ---------------------------------------------------------------- c. allow-list
        def allow_list():
            k, kid = K.create(secret_file, store, sbx, "boldsign", bs_key, "ci-tools", "write",
                              tools="list_documents,get_document,send_document")
            s = K.Sess(port, K.xkey(k))
            names = sorted(s.tools())
            assert names == ["get_document", "list_documents", "send_document"], \
                "allow-listed key lists %r" % names
            r, _ = s.call("list_templates", {})
            www = K.assert_403_scope(r, "allow-listed key calling list_templates")
            assert "list_documents" in www, "the 403 does not name the allowed tools: %r" % www
            r, _ = s.call("remind_signers", {"document_id": "x"})
            K.assert_403_scope(r, "allow-listed key calling remind_signers")
            r, res = s.call("list_documents", {})
            assert r.status == 200 and res and not res.get("isError"), r.describe()
            info = K.show(secret_file, store, kid)
            assert info.get("tools") == ["list_documents", "get_document", "send_document"], info
            # read scope and an allow-list naming an action tool: still read-only
            k2, _ = K.create(secret_file, store, sbx, "boldsign", bs_key, "ci-tools-ro", "read",
                             tools="list_documents,send_document")
            s2 = K.Sess(port, K.xkey(k2))
            assert sorted(s2.tools()) == ["list_documents"], "read+tools lists %r" % s2.tools()
            r, _ = s2.call("send_document", {"title": "x", "files": [], "signers": []})
            K.assert_403_scope(r, "read key allow-listing send_document calling it")
        t.check("c: --tools allow-list: only those tools listed; others -> 403 insufficient_scope",
                allow_list)

        # ---------------------------------------------------------------- b. expiry, revoke, rotate
        def expired():
            k, kid = K.create(secret_file, store, sbx, "boldsign", bs_key, "ci-exp", "read",
                              expires="2s")
            r = K.init_raw(port, K.xkey(k))
            assert r.status == 200, "fresh expiring key: %s" % r.describe()
            time.sleep(2.3)
            r = K.init_raw(port, K.xkey(k))
            K.assert_401(r, "expired", "expired key")
            assert K.show(secret_file, store, kid).get("status") == "expired"
        t.check("b: a key created with --expires 2s works, then gets 401 saying expired", expired)

        def revoked():
            k, kid = K.create(secret_file, store, sbx, "boldsign", bs_key, "ci-rev", "read")
            s = K.Sess(port, K.xkey(k))
            assert s.tools()
            p = K.cli(["revoke", kid], secret_file, store)
            assert p.returncode == 0, "revoke: %d %r" % (p.returncode, p.stderr)
            r, el = K.poll_status(port, K.xkey(k), 401, 2.0)
            K.assert_401(r, "revoked", "revoked key")
            assert el <= 1.0, "the revocation took %.2fs to apply (limit 1s)" % el
            # an existing session with the revoked key is refused too
            r, _ = s.rpc("tools/list", {})
            assert r.status == 401, "revoked key in its open session: %s" % r.describe()
            info = K.show(secret_file, store, kid)
            assert info.get("status") == "revoked" and info.get("revoked_at"), info
            p = K.cli(["revoke", kid], secret_file, store)
            assert p.returncode == 0, "revoking again must be idempotent: %d %r" % (p.returncode,
                                                                                    p.stderr)
        t.check("b: a revoked key gets 401 saying revoked (within 1 s, open session too)", revoked)

        def rotated():
            k, kid = K.create(secret_file, store, sbx, "boldsign", bs_key, "ci-rot", "read")
            p = K.cli(["rotate", kid, "--overlap", "3s"], secret_file, store)
            t0 = time.monotonic()
            assert p.returncode == 0, "rotate: %d %r" % (p.returncode, p.stderr)
            new = p.stdout.strip()
            assert K.KEY_RE.fullmatch(new) and new != k, "rotate printed %r" % p.stdout
            L.remember("rotated key", new)
            r = K.init_raw(port, K.xkey(k))
            assert r.status == 200, "old key during the overlap: %s" % r.describe()
            r = K.init_raw(port, K.xkey(new))
            assert r.status == 200, "new key: %s" % r.describe()
            info = K.show(secret_file, store, kid)
            assert info.get("status") == "rotating" and info.get("replaced_by"), info
            time.sleep(max(0, 3.3 - (time.monotonic() - t0)))
            r = K.init_raw(port, K.xkey(k))
            K.assert_401(r, "rotated", "rotated key after its overlap")
            s = K.Sess(port, K.xkey(new))
            assert "send_document" not in s.tools(), "the rotated key lost its read scope"
            r, res = s.call("list_documents", {})
            assert r.status == 200 and res and not res.get("isError"), r.describe()
            p = K.cli(["rotate", kid, "--overlap", "1h"], secret_file, store)
            assert p.returncode == 1 and "rotated" in p.stderr, \
                "rotating an already rotated key: %d %r" % (p.returncode, p.stderr)
        t.check("b: rotate --overlap 3s: old key works during the overlap, then 401 saying "
                "rotated; the new key works with the same scope", rotated)

        def unknown_key():
            r = K.init_raw(port, K.xkey("sbk_" + "A" * 32))
            K.assert_401(r, "unknown", "unknown signbridge key")
        t.check("b: an unknown sbk_ key gets 401 (unknown)", unknown_key)

        # ---------------------------------------------------------------- d. CLI errors
        def cli_errors():
            p = K.cli(["create", "--provider", "boldsign", "--api-key", "-", "--name", "bad",
                       "--scope", "read"], secret_file, store, sbx, stdin="not-a-real-key-1234567\n")
            assert p.returncode == 1 and "not accepted" in p.stderr and not p.stdout.strip(), \
                "rejected provider key: exit %d stdout %r stderr %r" % (p.returncode, p.stdout,
                                                                      p.stderr)
            p = K.cli(["create", "--provider", "boldsign", "--api-key", "-", "--name", "x"],
                      secret_file, store, sbx, stdin=bs_key + "\n")
            assert p.returncode == 2 and "--scope" in p.stderr, \
                "missing --scope: exit %d %r" % (p.returncode, p.stderr)
            p = K.cli(["create", "--provider", "boldsign", "--api-key", "-", "--name", "x",
                       "--scope", "read", "--tools", "list_documents,steal_everything"],
                      secret_file, store, sbx, stdin=bs_key + "\n")
            assert p.returncode == 2 and "steal_everything" in p.stderr, \
                "unknown tool: exit %d %r" % (p.returncode, p.stderr)
            p = K.cli(["create", "--provider", "boldsign", "--api-key", "-", "--name", "x",
                       "--scope", "admin"], secret_file, store, sbx, stdin=bs_key + "\n")
            assert p.returncode == 2, "--scope admin: exit %d %r" % (p.returncode, p.stderr)
            p = K.cli(["create", "--provider", "boldsign", "--api-key", "-", "--name", "x",
                       "--scope", "read", "--expires", "2001-01-01T00:00:00Z"],
                      secret_file, store, sbx, stdin=bs_key + "\n")
            assert p.returncode == 2 and "past" in p.stderr, "past expiry: %d %r" % (p.returncode,
                                                                                 p.stderr)
            p = K.cli(["revoke", "k_NoSuchKey0000"], secret_file, store)
            assert p.returncode == 1 and "k_NoSuchKey0000" in p.stderr, \
                "revoke unknown id: exit %d %r" % (p.returncode, p.stderr)
            p = K.cli(["show", "k_NoSuchKey0000"], secret_file, store)
            assert p.returncode == 1, "show unknown id: exit %d" % p.returncode
            p = K.cli(["rotate", st["write_id"]], secret_file, store)
            assert p.returncode == 2 and "--overlap" in p.stderr, "rotate without --overlap: %d %r" % (
                p.returncode, p.stderr)
            # nothing was created by the failed attempts
            names = [x["name"] for x in K.list_json(secret_file, store)]
            assert "bad" not in names and "x" not in names, "a failed create stored a key: %r" % names
        t.check("d: CLI errors: rejected provider key -> 1; no --scope, unknown tool, bad scope, "
                "past expiry, rotate w/o --overlap -> 2; unknown id -> 1", cli_errors)

        def cli_list():
            arr = K.list_json(secret_file, store)
            ids = [x["id"] for x in arr]
            assert st["read_id"] in ids and st["write_id"] in ids, ids
            txt = json.dumps(arr)
            for _, v in L.SECRETS:
                assert v not in txt, "keys list --json prints a secret"
            p = K.cli(["list"], secret_file, store)
            assert p.returncode == 0 and st["read_id"] in p.stdout and "ci-read" in p.stdout, \
                p.stdout
        t.check("d: keys list (table and --json) shows every key, no secret", cli_list)

        # ---------------------------------------------------------------- e. admin API
        if not admin:
            t.fail("e: admin API", "the binary has no --admin-listen (src/http/sb_admin.c not "
                   "built in): not tested")
        else:
            admin_checks(t, sbx, br, admin_port_file, secret_file, store, bs_key, port)

        # ---------------------------------------------------------------- f. no secrets anywhere
        def last_used():
            info = K.show(secret_file, store, st["read_id"])
            assert info.get("last_used_at"), "last_used_at not set after use: %r" % info
        t.check("keys show: last_used_at is set after use", last_used)
    except Exception as e:  # noqa: BLE001
        t.fail("setup", "%s: %s" % (type(e).__name__, e))
    return finish(t, sbx, br)


def admin_checks(t, sbx, br, port_file, secret_file, store, bs_key, port):
    def get_port():
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with open(port_file) as f:
                    txt = f.read()
                if txt.endswith("\n") and txt.strip().isdigit():
                    return int(txt)
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("no admin port file %s" % port_file)
    try:
        ap = get_port()
    except AssertionError as e:
        t.fail("e: admin API listener", e)
        return
    A = K.Admin(ap, ADMIN_TOKEN)
    st = {}

    def auth():
        for what, kw in (("no token", dict(token=None, raw_auth="")),
                         ("wrong token", dict(token="adm-wrong-token-0000000000000000")),
                         ("Basic", dict(raw_auth="Basic YWRtaW46YWRtaW4="))):
            for m, p in (("GET", "/admin/keys"), ("POST", "/admin/keys"),
                         ("DELETE", "/admin/keys/k_AAAAAAAAAAAA")):
                if what == "no token":
                    r = K.request(ap, m, p, [], {} if m == "POST" else None)
                else:
                    r = A.req(m, p, {} if m == "POST" else None, **kw)
                assert r.status == 401, "%s %s with %s: %s" % (m, p, what, r.describe())
        # the admin API is not on the MCP listener
        r = K.request(port, "GET", "/admin/keys", [("Authorization", "Bearer " + ADMIN_TOKEN)])
        assert r.status in (401, 404, 405), "GET /admin/keys on the MCP port: %s" % r.describe()
        assert not r.body.startswith(b"[") and b'"keys"' not in r.body, \
            "the MCP port serves the admin API: %s" % r.describe()
    t.check("e: admin API: 401 without, with a wrong and with a non-Bearer operator token", auth)

    def create():
        r = A.req("POST", "/admin/keys", {"provider": "boldsign", "api_key": bs_key,
                                          "name": "admin-ci", "scope": "read",
                                          "tools": ["list_documents", "get_document"],
                                          "expires": "1h"})
        assert r.status == 201, "POST /admin/keys: %s" % r.describe()
        j = r.json()
        assert K.KEY_RE.fullmatch(j.get("key") or "") and K.ID_RE.fullmatch(j.get("id") or ""), j
        L.remember("admin-created key", j["key"])
        st["key"], st["id"] = j["key"], j["id"]
        s = K.Sess(port, K.xkey(j["key"]))
        assert sorted(s.tools()) == ["get_document", "list_documents"], s.tools()
        info = K.show(secret_file, store, j["id"])
        for f in ("name", "provider", "region", "scope", "tools", "expires_at"):
            assert info.get(f) == j.get(f), "CLI show %s=%r, admin created %r" % (f, info.get(f),
                                                                               j.get(f))
        assert info["name"] == "admin-ci" and info["scope"] == "read" and info["expires_at"], info
    if not t.check("e: POST /admin/keys -> 201 {key, id, ...}; the key works; CLI show agrees",
                   create):
        return

    def errors():
        r = A.req("POST", "/admin/keys", {"provider": "boldsign", "api_key": "not-a-real-key-99999",
                                          "name": "bad", "scope": "read"})
        assert r.status in (400, 422), "rejected provider key: %s" % r.describe()
        r = A.req("POST", "/admin/keys", {"provider": "boldsign", "api_key": bs_key, "name": "x"})
        assert r.status == 400, "no scope: %s" % r.describe()
        r = A.req("POST", "/admin/keys", {"provider": "boldsign", "api_key": bs_key, "name": "x",
                                          "scope": "read", "tools": ["nope_tool"]})
        assert r.status == 400 and b"nope_tool" in r.body, "unknown tool: %s" % r.describe()
        r = A.req("POST", "/admin/keys", {"provider": "boldsign", "api_key": bs_key, "name": "x",
                                          "scope": "read", "expires": 3600})
        assert r.status == 400, "a numeric expires must not mean never: %s" % r.describe()
        r = A.req("POST", "/admin/keys", b"{not json")
        assert r.status == 400, "bad JSON: %s" % r.describe()
        r = A.req("GET", "/admin/keys/k_NoSuchKey0000")
        assert r.status == 404, "unknown id: %s" % r.describe()
        r = A.req("DELETE", "/admin/keys/k_NoSuchKey0000")
        assert r.status == 404, "DELETE unknown id: %s" % r.describe()
        assert bs_key.encode() not in r.body
    t.check("e: admin API errors: rejected provider key 4xx, no scope / unknown tool / bad JSON "
            "400, unknown id 404", errors)

    def list_show():
        r = A.req("GET", "/admin/keys")
        assert r.status == 200, r.describe()
        j = r.json()
        arr = j.get("keys") if isinstance(j, dict) else j
        assert isinstance(arr, list), "GET /admin/keys: %s" % r.describe()
        cli = K.list_json(secret_file, store)
        strip = lambda x: {k: v for k, v in x.items() if k != "last_used_at"}  # noqa: E731
        assert [strip(x) for x in arr] == [strip(x) for x in cli], \
            "GET /admin/keys differs from keys list --json: %r vs %r" % (arr[:2], cli[:2])
        for _, v in L.SECRETS:
            assert v.encode() not in r.body, "GET /admin/keys shows a secret"
        r = A.req("GET", "/admin/keys/" + st["id"])
        assert r.status == 200, r.describe()
        assert strip(r.json()) == strip(K.show(secret_file, store, st["id"])), r.describe()
    t.check("e: GET /admin/keys and /admin/keys/{id} match the CLI's list --json / show", list_show)

    def rotate_revoke():
        r = A.req("POST", "/admin/keys/%s/rotate" % st["id"], {"overlap": "2s"})
        assert r.status in (200, 201), "rotate: %s" % r.describe()
        j = r.json()
        new = j.get("key") or ""
        assert K.KEY_RE.fullmatch(new) and new != st["key"], j
        L.remember("admin-rotated key", new)
        assert K.init_raw(port, K.xkey(st["key"])).status == 200, "old key during the overlap"
        assert K.init_raw(port, K.xkey(new)).status == 200, "new key"
        info = K.show(secret_file, store, st["id"])
        assert info.get("status") == "rotating" and info.get("replaced_by") == j.get("id"), \
            (info, j)
        time.sleep(2.3)
        K.assert_401(K.init_raw(port, K.xkey(st["key"])), "rotated", "admin-rotated old key")
        r = A.req("DELETE", "/admin/keys/" + j["id"])
        assert r.status in (200, 204), "DELETE: %s" % r.describe()
        rr, el = K.poll_status(port, K.xkey(new), 401, 2.0)
        K.assert_401(rr, "revoked", "admin-revoked key")
        assert el <= 1.0, "the admin revocation took %.2fs" % el
        assert K.show(secret_file, store, j["id"]).get("status") == "revoked"
        r = A.req("DELETE", "/admin/keys/" + j["id"])
        assert r.status in (200, 204), "DELETE again (idempotent): %s" % r.describe()
        # a CLI-created key revoked through the admin API
        k, kid = K.create(secret_file, store, sbx, "boldsign", bs_key, "cli-for-admin", "read")
        r = A.req("DELETE", "/admin/keys/" + kid)
        assert r.status in (200, 204), r.describe()
        rr, _ = K.poll_status(port, K.xkey(k), 401, 2.0)
        K.assert_401(rr, "revoked", "CLI key revoked by the admin API")
    t.check("e: admin rotate (overlap 2s) and DELETE work and match the CLI's view", rotate_revoke)

    def needs_token():
        for tok in (None, "short-token"):
            env = {"SIGNBRIDGE_ADMIN_TOKEN": tok} if tok else {}
            b = L.Bridge(sbx, store=store, secret_file=secret_file, env=env, start_timeout=10)
            b.args += ["--admin-listen", "127.0.0.1:0"]
            try:
                b.start()
            except RuntimeError as e:
                assert "operator token" in str(e), "start failed without naming the token: %s" % e
            else:
                b.stop()
                raise AssertionError("signbridge started an admin listener with token %r" % tok)
            finally:
                b.tmp.cleanup()
    t.check("e: --admin-listen without an operator token (or a short one) refuses to start",
            needs_token)


def finish(t, sbx, br):
    # f. secrets: stop everything first so logs and the store are complete
    db = None
    if br is not None:
        db = br.store[len("sqlite:"):] if br.store.startswith("sqlite:") else None
        alive = br.alive()
        rc = br.stop()
        if not alive or rc != 0:
            t.fail("signbridge exits 0 on SIGTERM", "alive=%s rc=%r stderr tail %s" % (
                alive, rc, L.short(br.stderr_text()[-1500:], 1500)))
        crash = br.crash_report()
        if crash:
            t.fail("signbridge: no sanitizer report", crash)
    try:
        secrets = L.uptest.secrets_of(sbx, br, list(L.SECRETS)) if sbx.port else list(L.SECRETS)
    except Exception as e:  # noqa: BLE001
        secrets = list(L.SECRETS)
        t.fail("collect secrets", e)
    sealed = []
    if db and os.path.exists(db):
        try:
            tables, dump = K.sqlite_dump(db)
            import re
            sealed = [("sealed credential", m) for m in re.findall(r'"cred":"([^"]{16,})"', dump)]
            hits = L.uptest.find_secrets(dump, secrets)
            keys_in_store = len(K.KEY_RE.findall(dump))
            if not dump.strip() or "sbkey" not in dump:
                t.fail("f: no key or provider key in the store", "the dump has no sbkey record "
                       "(tables %r): nothing was checked" % tables)
            elif hits or keys_in_store:
                t.fail("f: no key or provider key in the store",
                       "; ".join(l for l, _ in hits[:10]) + (" sbk_ x%d" % keys_in_store))
            else:
                t.ok("f: no signbridge key or provider key in clear in the SQLite store (%d tables, "
                     "%d secrets checked, %d sealed credentials)" % (len(tables), len(secrets),
                                                                     len(sealed)))
        except Exception as e:  # noqa: BLE001
            t.fail("f: store dump", "%s: %s" % (type(e).__name__, e))
    if br is not None:
        text = br.stderr_text()
        hits = L.uptest.find_secrets(text, secrets + sealed)
        if not text.strip():
            t.fail("f: no secret in signbridge's log", "empty log")
        elif hits or K.KEY_RE.search(text):
            t.fail("f: no secret in signbridge's log", "; ".join("%s at line %d" % h for h in hits[:10])
                   + (" (an sbk_ key)" if K.KEY_RE.search(text) else ""))
        else:
            t.ok("f: no signbridge key, provider key or sealed credential in signbridge's log "
                 "(%d lines)" % len(text.splitlines()))
    cli_text = "\n".join(K.CLI_STDERR)
    hits = L.uptest.find_secrets(cli_text, secrets + sealed)
    if not cli_text.strip():
        t.fail("f: no secret in the CLI's stderr", "no CLI output collected")
    elif hits or K.KEY_RE.search(cli_text):
        t.fail("f: no secret in the CLI's stderr", "; ".join(l for l, _ in hits[:10]))
    else:
        t.ok("f: no secret in the CLI's stderr (%d runs)" % len(K.CLI_STDERR))
    if sbx is not None and sbx.port:
        try:
            log = json.dumps(sbx.requests(since=0))
            found = [l for l, v in L.SECRETS if v.startswith("sbk_") and v in log]
            if K.KEY_RE.search(log) or found:
                t.fail("a: no signbridge key in the sandbox's request log", found or "sbk_")
            else:
                t.ok("a: no signbridge key anywhere in the sandbox's request log JSON (%d bytes)"
                     % len(log))
        except Exception as e:  # noqa: BLE001
            t.fail("a: sandbox request log", e)
    sbx.stop()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
