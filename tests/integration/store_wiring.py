"""store-wiring (issue 6): signbridge opens its persistent store and keeps shared state in it.

Starts a provider sandbox and a signbridge pointed at it (tests/upstream/uptest.py; signbridge runs
in a temp directory with the default store) and checks:
  - the default store is the SQLite file signbridge.db in the working directory, /readyz is 200;
  - `--store sqlite:PATH` and SIGNBRIDGE_STORE_URL pick another file (and not the default);
  - a bad store URL (unknown scheme, unreachable PostgreSQL with a password, unwritable path) ends
    the process with exit 1 and one clear line on stderr that never shows the password;
    --check-config shows the URL with its password masked; --help names --store;
  - --conformance leaves no store file behind;
  - an idempotent send_document (idempotency_key) made before a restart (SIGTERM) and before a
    SIGKILL is answered from the store afterwards: the sandbox's request log shows one
    POST /v1/document/send per key, and the replays carry the first document id.
Standard library only.
"""

import base64
import os
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "upstream"))

import uptest  # noqa: E402  (puts tests/integration on sys.path too)
import sbtest  # noqa: E402
from sbtest import request  # noqa: E402

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
SEND = "POST /v1/document/send"


def send_args(key, title):
    return {"title": title, "message": "Please sign.", "idempotency_key": key,
            "files": [{"base64": base64.b64encode(PDF).decode(), "name": "nda.pdf"}],
            "signers": [{"name": "Ann Signer", "email": "ann@example.org"}]}


def sends_since(sbx, seq):
    return [r for r in sbx.requests(since=seq, provider="boldsign") if r.get("route") == SEND]


def one_line_error(p, what, secret=None):
    assert p.returncode == 1, "%s: exit %r (want 1); stderr: %r" % (what, p.returncode, p.stderr)
    err = p.stderr.strip()
    assert err and "\n" not in err, "%s: stderr is not one line: %r" % (what, p.stderr)
    assert "store" in err, "%s: the message does not name the store: %r" % (what, err)
    if secret:
        assert secret not in p.stdout + p.stderr, "%s: the password is printed: %r" % (what, err)
    return err


def main(t):
    sbx, br = t.sbx, t.br
    key = sbx.key("boldsign", "us")
    cred = uptest.xkey(key)

    def default_file():
        path = os.path.join(br.dir, "signbridge.db")
        assert os.path.isfile(path), "no %s (files: %s)" % (path, os.listdir(br.dir))
        r = request(br.port, "GET", "/readyz")
        assert r.status == 200 and r.json().get("status") == "ready", r.describe()
        assert '"store":"sqlite"' in br.stderr_text(), "the ready line does not name the store"
        with open("/proc/%d/maps" % br.proc.pid) as f:
            libpq = [l.split()[-1] for l in f if "libpq" in l]
        assert not libpq, "libpq mapped by a process on SQLite: %s" % libpq[:1]
    t.check("default store: signbridge.db (SQLite) in the working directory; /readyz 200; libpq "
            "not loaded", default_file)

    ikey_term = "store-wiring-term-" + uuid.uuid4().hex
    ikey_kill = "store-wiring-kill-" + uuid.uuid4().hex
    first = {}

    def restart_keeps_record():
        seq = sbx.last_seq()
        s = br.session("/boldsign/mcp", cred)
        res = s.call("send_document", send_args(ikey_term, "Store wiring (SIGTERM)"))
        assert not res.is_error, res.describe()
        first["term"] = res.structured["document_id"]
        assert len(sends_since(sbx, seq)) == 1, "the first call did not send exactly once"
        rc = br.stop()
        assert rc == 0, "SIGTERM exit %r" % rc
        br.start()
        seq = sbx.last_seq()
        s = br.session("/boldsign/mcp", cred)
        res = s.call("send_document", send_args(ikey_term, "Store wiring (SIGTERM)"))
        assert not res.is_error, res.describe()
        assert res.structured["document_id"] == first["term"], \
            "replay has document %r, first was %r" % (res.structured["document_id"], first["term"])
        got = sends_since(sbx, seq)
        assert not got, "sent again after the restart: %r" % got
    t.check("idempotency record survives a restart (SIGTERM): the retry sends nothing and answers "
            "the first document id", restart_keeps_record)

    def sigkill_keeps_record():
        seq = sbx.last_seq()
        s = br.session("/boldsign/mcp", cred)
        res = s.call("send_document", send_args(ikey_kill, "Store wiring (SIGKILL)"))
        assert not res.is_error, res.describe()
        first["kill"] = res.structured["document_id"]
        br.kill()  # SIGKILL right after the answer
        br.start()
        s = br.session("/boldsign/mcp", cred)
        for ik, title, doc in ((ikey_kill, "Store wiring (SIGKILL)", first["kill"]),
                               (ikey_term, "Store wiring (SIGTERM)", first["term"])):
            res = s.call("send_document", send_args(ik, title))
            assert not res.is_error, res.describe()
            assert res.structured["document_id"] == doc, (res.structured, doc)
        got = sends_since(sbx, seq)
        assert len(got) == 1, "want exactly the one first send since, got %d" % len(got)
    t.check("idempotency record survives SIGKILL right after the outcome: retries send nothing",
            sigkill_keeps_record)

    def different_args():
        s = br.session("/boldsign/mcp", cred)
        res = s.call("send_document", send_args(ikey_term, "Another title"))
        assert res.is_error and "different arguments" in res.text, res.describe()
    t.check("the stored record still refuses the same key with different arguments", different_args)

    tmp = tempfile.TemporaryDirectory(prefix="sbstore-")

    def flag_path():
        path = os.path.join(tmp.name, "flag.db")
        srv = uptest.Bridge(sbx, env={"SIGNBRIDGE_LOG_LEVEL": "info"})
        srv.args += ["--store", "sqlite:" + path]
        with srv:
            assert os.path.isfile(path), "no %s" % path
            assert not os.path.exists(os.path.join(srv.dir, "signbridge.db")), \
                "the default file was created too"
            r = request(srv.port, "GET", "/readyz")
            assert r.status == 200, r.describe()
            sbtest.initialize(srv.port, extra=cred, path="/boldsign/mcp")
    t.check("--store sqlite:PATH opens that file (not the default)", flag_path)

    def env_url():
        path = os.path.join(tmp.name, "env.db")
        srv = uptest.Bridge(sbx, env={"SIGNBRIDGE_STORE_URL": path})
        with srv:
            assert os.path.isfile(path), "no %s" % path
            assert not os.path.exists(os.path.join(srv.dir, "signbridge.db"))
        # the flag wins over the environment
        path2 = os.path.join(tmp.name, "flag-wins.db")
        srv = uptest.Bridge(sbx, env={"SIGNBRIDGE_STORE_URL": os.path.join(tmp.name, "no.db")})
        srv.args += ["--store", path2]
        with srv:
            assert os.path.isfile(path2) and not os.path.exists(os.path.join(tmp.name, "no.db"))
    t.check("SIGNBRIDGE_STORE_URL (a bare path) selects the store; --store wins over it", env_url)

    def bad_urls():
        base = [sbtest.BIN, "--listen", "127.0.0.1:0", "--sandbox-url", sbx.origin]
        env = {"SIGNBRIDGE_SECRET_FILE": os.path.join(tmp.name, "secret")}
        p = sbtest.run(base + ["--store", "mysql://root:hunter2pw@db.example/x"], env=env, cwd=tmp.name)
        e1 = one_line_error(p, "unknown scheme", "hunter2pw")
        p = sbtest.run(base + ["--store", "postgresql://sb:s3cretpw@127.0.0.1:1/sb"], env=env,
                       cwd=tmp.name)
        e2 = one_line_error(p, "unreachable PostgreSQL", "s3cretpw")
        p = sbtest.run(base + ["--store", "sqlite:/nonexistent-dir/x/y.db"], env=env, cwd=tmp.name)
        e3 = one_line_error(p, "unwritable path")
        p = sbtest.run(base, env=dict(env, SIGNBRIDGE_STORE_URL="postgres://a:envpw123@127.0.0.1:1/x"),
                       cwd=tmp.name)
        one_line_error(p, "unreachable PostgreSQL from the environment", "envpw123")
        print("# %s\n# %s\n# %s" % (e1, e2, e3))
    t.check("a bad store URL: exit 1, one line naming the store, never the password", bad_urls)

    def check_config_and_help():
        p = sbtest.run([sbtest.BIN, "--check-config"],
                       env={"SIGNBRIDGE_STORE_URL": "postgresql://sb:cfgpw999@db:5432/sb"})
        assert p.returncode == 0, p.stderr
        assert "cfgpw999" not in p.stdout and "postgresql://sb:***@db:5432/sb" in p.stdout, p.stdout
        p = sbtest.run([sbtest.BIN, "--check-config"])
        assert '"url":\t"sqlite:signbridge.db"' in p.stdout, p.stdout
        p = sbtest.run([sbtest.BIN, "--help"])
        assert p.returncode == 0 and "--store URL" in p.stdout, p.stdout
    t.check("--check-config: store.url defaults to sqlite:signbridge.db, a password is masked; "
            "--help names --store", check_config_and_help)

    def conformance_no_files():
        srv = sbtest.Server(["--conformance"])
        with srv:
            sbtest.initialize(srv.port)
            r = request(srv.port, "GET", "/readyz")
            assert r.status == 200, r.describe()
            left = [f for f in os.listdir(srv.dir) if "signbridge.db" in f or f.endswith(".db")]
            assert not left, "store files in --conformance mode: %r" % left
    t.check("--conformance keeps its store in memory (no file)", conformance_no_files)
    tmp.cleanup()


if __name__ == "__main__":
    uptest.run(main)
