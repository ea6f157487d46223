#!/usr/bin/env python3
"""cli: the signbridge command line, configuration loading and process lifecycle.

Env: SIGNBRIDGE_BIN (binary), SB_SOURCE_ROOT.  Output: "ok - name" / "not ok - name: detail",
then "N passed, N failed"; exit 1 on any failure.
"""

import gzip
import json
import os
import re
import socket
import stat
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sbtest as T  # noqa: E402

checks = T.Checks()
TMP = tempfile.TemporaryDirectory(prefix="sbcli-")
SECRET = os.path.join(TMP.name, "secret")
BASE_ENV = {"SIGNBRIDGE_SECRET_FILE": SECRET}


def sb(*args, env=None, timeout=10):
    e = dict(BASE_ENV)
    e.update(env or {})
    return T.run([T.BIN] + list(args), env=e, timeout=timeout, cwd=TMP.name)


def write(name, text):
    path = os.path.join(TMP.name, name)
    with open(path, "w") as f:
        f.write(text if isinstance(text, str) else json.dumps(text))
    return path


def out(p):
    return "exit %s; stdout=%r; stderr=%r" % (p.returncode, T.short(p.stdout), T.short(p.stderr))


def expect_exit(p, code):
    assert p.returncode == code, "expected exit %d: %s" % (code, out(p))


def check_config_json(p):
    expect_exit(p, 0)
    try:
        cfg = json.loads(p.stdout)
    except ValueError as e:
        raise AssertionError("--check-config stdout is not JSON (%s): %s" % (e, out(p)))
    assert isinstance(cfg, dict), "--check-config printed %r" % T.short(p.stdout)
    return cfg


def project_version():
    root = T.SOURCE_ROOT
    try:
        with open(os.path.join(root, "meson.build")) as f:
            m = re.search(r"version\s*:\s*'([^']+)'", f.read())
            return m.group(1) if m else None
    except OSError:
        return None


# ------------------------------------------------------------------------------------------------


def c_version():
    p = sb("--version")
    expect_exit(p, 0)
    assert re.search(r"\d+\.\d+\.\d+", p.stdout), "no version number on stdout: %s" % out(p)
    v = project_version()
    if v:
        assert v in p.stdout, "version %s (meson.build) not in %r" % (v, p.stdout)


def c_help():
    p = sb("--help")
    expect_exit(p, 0)
    text = p.stdout + p.stderr
    for flag in ("--listen", "--port-file"):
        assert flag in text, "--help does not mention %s: %s" % (flag, out(p))


def c_help_all_flags():
    p = sb("--help")
    expect_exit(p, 0)
    text = p.stdout + p.stderr
    missing = [f for f in ("--config", "--check-config", "--help", "--version", "--log-level",
                           "--listen", "--port-file", "--conformance") if f not in text]
    assert not missing, "--help does not mention %s" % ", ".join(missing)


def c_unknown_flag():
    p = sb("--no-such-flag")
    assert p.returncode not in (0, None) and p.returncode > 0, "unknown flag: %s" % out(p)
    assert p.stderr.strip(), "no message for an unknown flag"


def c_check_config_defaults():
    cfg = check_config_json(sb("--check-config"))
    assert cfg.get("listen") == "127.0.0.1:8080", "default listen: %r" % cfg.get("listen")
    lim = cfg.get("limits") or {}
    assert lim.get("max_body_bytes") == 4194304, "default limits: %r" % lim
    assert lim.get("tools_page_size") == 100, "default limits: %r" % lim


VALID = {
    "listen": "127.0.0.1:9999",
    "log_level": "warn",
    "default_provider": "dropboxsign",
    "allowed_origins": ["https://a.example"],
    "instructions": "hello from the test",
    "limits": {"tools_page_size": 7, "max_body_bytes": 65536},
}


def c_check_config_valid():
    path = write("valid.json", VALID)
    cfg = check_config_json(sb("--config", path, "--check-config"))
    assert cfg.get("listen") == "127.0.0.1:9999", cfg
    assert cfg.get("log_level") == "warn", cfg
    assert cfg.get("default_provider") == "dropboxsign", cfg
    assert cfg.get("allowed_origins") == ["https://a.example"], cfg
    assert cfg.get("instructions") == "hello from the test", cfg
    lim = cfg.get("limits") or {}
    assert lim.get("tools_page_size") == 7 and lim.get("max_body_bytes") == 65536, lim
    # merged: defaults fill what the file leaves out
    assert lim.get("call_timeout_s") == 300 and lim.get("max_sessions") == 100000, \
        "defaults not merged: %r" % lim


def c_invalid(doc, field, rule, raw=False):
    def fn():
        path = write("invalid.json", doc if raw else json.dumps(doc))
        p = sb("--config", path, "--check-config")
        expect_exit(p, 2)
        if field:
            assert field in p.stderr, "stderr does not name %r: %s" % (field, out(p))
        if rule:
            assert rule in p.stderr, "stderr does not name the rule %r: %s" % (rule, out(p))
        assert not p.stdout.strip().startswith("{"), "printed a config for an invalid file"
    return fn


def c_invalid_json():
    path = write("broken.json", '{"listen": "127.0.0.1:1", ')
    p = sb("--config", path, "--check-config")
    expect_exit(p, 2)
    assert p.stderr.strip(), "no error message: %s" % out(p)
    assert "json" in p.stderr.lower() or "broken.json" in p.stderr or "parse" in p.stderr.lower(), \
        "message does not say what is wrong: %s" % out(p)


def c_invalid_startup():
    path = write("invalid.json", json.dumps({"limits": {"max_body_bytes": 10}}))
    p = sb("--config", path, "--listen", "127.0.0.1:0", timeout=20)
    expect_exit(p, 2)
    assert "limits.max_body_bytes" in p.stderr, out(p)


def c_missing_file():
    p = sb("--config", os.path.join(TMP.name, "does-not-exist.json"), "--check-config")
    assert p.returncode is not None and p.returncode > 0, "missing config file: %s" % out(p)
    assert "does-not-exist.json" in p.stderr, "message does not name the file: %s" % out(p)


def c_env_override():
    path = write("valid.json", VALID)
    cfg = check_config_json(sb("--config", path, "--check-config",
                               env={"SIGNBRIDGE_LIMITS_TOOLS_PAGE_SIZE": "4"}))
    assert (cfg.get("limits") or {}).get("tools_page_size") == 4, \
        "env did not win over the file: %r" % cfg.get("limits")


def c_env_more():
    cfg = check_config_json(sb("--check-config", env={
        "SIGNBRIDGE_LOG_LEVEL": "error",
        "SIGNBRIDGE_ALLOWED_ORIGINS": "https://a.example,https://b.example",
        "SIGNBRIDGE_LIMITS_MAX_BODY_BYTES": "65536"}))
    assert cfg.get("log_level") == "error", cfg.get("log_level")
    assert cfg.get("allowed_origins") == ["https://a.example", "https://b.example"], \
        cfg.get("allowed_origins")
    assert (cfg.get("limits") or {}).get("max_body_bytes") == 65536, cfg.get("limits")
    assert cfg.get("secret_file") == SECRET, "SIGNBRIDGE_SECRET_FILE: %r" % cfg.get("secret_file")


def c_flag_beats_env():
    cfg = check_config_json(sb("--check-config", "--log-level", "debug", "--listen", "127.0.0.1:7777",
                               env={"SIGNBRIDGE_LOG_LEVEL": "error",
                                    "SIGNBRIDGE_LISTEN": "127.0.0.1:6666"}))
    assert cfg.get("log_level") == "debug", "flag did not win: %r" % cfg.get("log_level")
    assert cfg.get("listen") == "127.0.0.1:7777", "flag did not win: %r" % cfg.get("listen")


def c_bad_env(var, value, rule=None):
    def fn():
        p = sb("--check-config", env={var: value})
        expect_exit(p, 2)
        field = var[len("SIGNBRIDGE_"):].lower()
        assert var in p.stderr or field.replace("limits_", "limits.") in p.stderr, \
            "stderr names neither %s nor the field: %s" % (var, out(p))
        if rule:
            assert rule in p.stderr, "stderr does not name the rule %r: %s" % (rule, out(p))
    return fn


def c_bad_log_level_flag():
    p = sb("--check-config", "--log-level", "loud")
    assert p.returncode is not None and p.returncode > 0, "--log-level loud: %s" % out(p)
    assert p.stderr.strip(), "no message: %s" % out(p)


def c_conformance_refuses(listen):
    def fn():
        pf = os.path.join(TMP.name, "refused.port")
        p = sb("--conformance", "--listen", listen, "--port-file", pf, timeout=20)
        expect_exit(p, 2)
        assert p.stderr.strip(), "no message on stderr: %s" % out(p)
        assert not os.path.exists(pf), "a port file was written"
    return fn


def c_production_starts():
    with T.Server(args=[], env={"SIGNBRIDGE_SECRET_FILE": os.path.join(TMP.name, "s2")}) as s:
        r = T.request(s.port, "GET", "/healthz")
        assert r.status == 200, r.describe()
        assert r.has_header("x-request-id"), "no X-Request-Id: %s" % r.describe()


def c_conformance_starts():
    with T.Server() as s:
        sid, v, res = T.initialize(s.port, api_key="sk-test-cli")
        assert v == "2025-11-25", v
        assert res.get("serverInfo", {}).get("name"), res


def c_sigterm():
    s = T.Server().start()
    try:
        T.request(s.port, "GET", "/healthz")
        rc = s.stop()
        assert rc == 0, "exit status after SIGTERM: %r; stderr tail: %s" % (rc, s.stderr_text()[-500:])
    finally:
        s.kill()
        s.tmp.cleanup()


def c_sigterm_with_open_connection():
    s = T.Server().start()
    try:
        sock = T.connect(s.port)
        sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        time.sleep(0.2)
        t0 = time.monotonic()
        rc = s.stop(timeout=15)
        sock.close()
        assert rc == 0, "exit status after SIGTERM with a half-sent request open: %r" % (rc,)
        assert time.monotonic() - t0 < 10, "shutdown took %.1fs" % (time.monotonic() - t0)
    finally:
        s.kill()
        s.tmp.cleanup()


def c_secret_file():
    s = T.Server()
    assert not os.path.exists(s.secret_file)
    s.start()
    try:
        assert os.path.exists(s.secret_file), "secret file not created at %s" % s.secret_file
        st = os.stat(s.secret_file)
        mode = stat.S_IMODE(st.st_mode)
        assert mode == 0o600, "secret file mode %o, expected 600" % mode
        assert st.st_size > 0, "secret file is empty"
        with open(s.secret_file, "rb") as f:
            first = f.read()
        assert s.stop() == 0
        s.start()   # second start must reuse, not replace, the secret
        with open(s.secret_file, "rb") as f:
            assert f.read() == first, "the secret changed across restarts"
        assert s.stop() == 0
    finally:
        s.kill()
        s.tmp.cleanup()


def c_port_file_format():
    with T.Server() as s:
        with open(s.port_file) as f:
            text = f.read()
        assert text == "%d\n" % s.port, "port file %r" % text
        r = T.request(s.port, "GET", "/healthz")
        assert r.status == 200, r.describe()


def c_busy_port():
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    busy = blocker.getsockname()[1]
    try:
        pf = os.path.join(TMP.name, "busy.port")
        p = sb("--conformance", "--listen", "127.0.0.1:%d" % busy, "--port-file", pf, timeout=20)
        assert p.returncode is not None and p.returncode > 0, "listen on a busy port: %s" % out(p)
        assert p.stderr.strip(), "no message: %s" % out(p)
    finally:
        blocker.close()


def c_config_applies():
    path = write("pagesize.json", {"limits": {"tools_page_size": 2}})
    with T.Server(args=["--conformance", "--config", path]) as s:
        sid, v, _ = T.initialize(s.port)
        r, msg = T.rpc(s.port, sid, "tools/list", {})
        assert msg and "result" in msg, r.describe()
        assert len(msg["result"]["tools"]) == 2, "page of %d tools with tools_page_size 2" % len(
            msg["result"]["tools"])
        assert msg["result"].get("nextCursor"), "no nextCursor"


def c_tools_list_gzip():
    """tools/list is answered gzip-compressed to a client whose Accept-Encoding takes gzip (what
    fetch, undici and httpx send), and the bytes inflate to the uncompressed answer exactly."""
    with T.Server(args=["--conformance"]) as s:
        sid, v, _ = T.initialize(s.port)
        body = {"jsonrpc": "2.0", "id": "g\"1", "method": "tools/list"}

        def post(enc):
            extra = [("Accept-Encoding", enc)] if enc is not None else []
            r = T.request(s.port, "POST", "/mcp", T.mcp_headers(session=sid, version=v, extra=extra),
                          body)
            assert r.status == 200, r.describe()
            return r

        plain = post(None)
        assert plain.header("content-encoding") is None, plain.describe()
        assert "accept-encoding" in (plain.header("vary") or "").lower(), plain.describe()
        want = plain.body
        assert json.loads(want)["id"] == 'g"1'
        for enc in ("gzip, deflate", "br;q=1, gzip;q=0.5", "*"):
            r = post(enc)
            assert r.header("content-encoding") == "gzip", "%s: %s" % (enc, r.describe())
            assert "accept-encoding" in (r.header("vary") or "").lower(), r.describe()
            got = gzip.decompress(r.body)
            assert got == want, "%s: inflated answer differs from the plain one" % enc
            assert len(r.body) * 4 < len(want), "gzip %d bytes for %d" % (len(r.body), len(want))
        for enc in ("identity", "gzip;q=0", "deflate, br", "gzip;q=0, *"):
            r = post(enc)
            assert r.header("content-encoding") is None, "%s: %s" % (enc, r.describe())
            assert r.body == want, enc
        # other methods are never compressed
        r = T.request(s.port, "POST", "/mcp",
                      T.mcp_headers(session=sid, version=v, extra=[("Accept-Encoding", "gzip")]),
                      {"jsonrpc": "2.0", "id": 9, "method": "ping"})
        assert r.status == 200 and r.header("content-encoding") is None, r.describe()
        assert r.json()["id"] == 9


def c_logs_json():
    with T.Server() as s:
        T.initialize(s.port, api_key="sk-test-cli")
        T.request(s.port, "GET", "/healthz")
        s.stop()
        text = s.stderr_text()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert lines, "no log lines at all on stderr"
    for ln in lines:
        try:
            obj = json.loads(ln)
        except ValueError:
            raise AssertionError("stderr line is not JSON: %r" % ln[:200])
        assert isinstance(obj, dict), "stderr line is not a JSON object: %r" % ln[:200]


def c_log_level_off():
    # error level: a clean start/stop logs nothing below error
    with T.Server(args=["--conformance", "--log-level", "error"]) as s:
        T.request(s.port, "GET", "/healthz")
        s.stop()
        text = s.stderr_text()
    for ln in text.splitlines():
        if not ln.strip():
            continue
        obj = json.loads(ln)
        lvl = str(obj.get("level", obj.get("lvl", ""))).lower()
        assert lvl in ("error", "fatal", "critical", ""), "logged %r at --log-level error" % ln[:200]


def main():
    T.require_bin()
    checks.check("--version prints the version and exits 0", c_version)
    checks.check("--help exits 0 and mentions --listen and --port-file", c_help)
    checks.check("--help mentions every flag", c_help_all_flags)
    checks.check("unknown flag -> non-zero exit with a message", c_unknown_flag)
    checks.check("--check-config with no file -> 0 + default JSON", c_check_config_defaults)
    checks.check("--check-config on a valid file -> 0 + merged JSON", c_check_config_valid)
    checks.check("invalid config: wrong type -> 2 naming field and rule",
                 c_invalid({"limits": {"max_body_bytes": "big"}}, "limits.max_body_bytes", "type"))
    checks.check("invalid config: below minimum -> 2 naming field and rule",
                 c_invalid({"limits": {"max_body_bytes": 10}}, "limits.max_body_bytes", "minimum"))
    checks.check("invalid config: above maximum -> 2 naming field and rule",
                 c_invalid({"limits": {"http_threads": 65}}, "limits.http_threads", "maximum"))
    checks.check("invalid config: unknown top-level field -> 2, additionalProperties",
                 c_invalid({"bogus_field": 1}, "bogus_field", "additionalProperties"))
    checks.check("invalid config: unknown limits field -> 2, additionalProperties",
                 c_invalid({"limits": {"nope_limit": 1}}, "nope_limit", "additionalProperties"))
    checks.check("invalid config: enum -> 2 naming field and rule",
                 c_invalid({"log_level": "loud"}, "log_level", "enum"))
    checks.check("invalid config: non-integer number -> 2 naming the field",
                 c_invalid({"limits": {"max_body_bytes": 1.5}}, "limits.max_body_bytes", None))
    checks.check("invalid config: top level not an object -> 2",
                 c_invalid("[1, 2]", None, "type", raw=True))
    checks.check("invalid config: array item type -> 2 naming the field",
                 c_invalid({"allowed_origins": [5]}, "allowed_origins", "type"))
    checks.check("invalid JSON file -> 2 with a message", c_invalid_json)
    checks.check("invalid config at startup (no --check-config) -> 2", c_invalid_startup)
    checks.check("missing config file -> non-zero naming the file", c_missing_file)
    checks.check("env override SIGNBRIDGE_LIMITS_TOOLS_PAGE_SIZE shows in --check-config",
                 c_env_override)
    checks.check("env overrides: log level, allowed origins list, body cap, secret file", c_env_more)
    checks.check("flags win over the environment", c_flag_beats_env)
    checks.check("SIGNBRIDGE_LIMITS_MAX_BODY_BYTES=abc -> 2 naming it",
                 c_bad_env("SIGNBRIDGE_LIMITS_MAX_BODY_BYTES", "abc"))
    checks.check("SIGNBRIDGE_LIMITS_MAX_BODY_BYTES=10 -> 2, minimum",
                 c_bad_env("SIGNBRIDGE_LIMITS_MAX_BODY_BYTES", "10", "minimum"))
    checks.check("SIGNBRIDGE_LOG_LEVEL=loud -> 2, enum",
                 c_bad_env("SIGNBRIDGE_LOG_LEVEL", "loud", "enum"))
    checks.check("--log-level loud -> non-zero", c_bad_log_level_flag)
    checks.check("--conformance --listen 0.0.0.0:0 refuses (exit 2)",
                 c_conformance_refuses("0.0.0.0:0"))
    checks.check("--conformance --listen [::]:0 refuses (exit 2)", c_conformance_refuses("[::]:0"))
    checks.check("port file holds the port and a newline; server answers", c_port_file_format)
    checks.check("production mode (no --conformance) starts and answers /healthz with X-Request-Id",
                 c_production_starts)
    checks.check("--conformance mode starts and initializes", c_conformance_starts)
    checks.check("--config values apply at runtime (tools_page_size 2)", c_config_applies)
    checks.check("tools/list answers gzip to clients that take it, identical once inflated",
                 c_tools_list_gzip)
    checks.check("listen on a busy port -> non-zero exit with a message", c_busy_port)
    checks.check("SIGTERM -> exit 0", c_sigterm)
    checks.check("SIGTERM with a half-sent request open -> prompt exit 0",
                 c_sigterm_with_open_connection)
    checks.check("secret file created with mode 0600 and kept across restarts", c_secret_file)
    checks.check("stderr log lines are JSON objects", c_logs_json)
    checks.check("--log-level error logs nothing below error", c_log_level_off)
    TMP.cleanup()
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
