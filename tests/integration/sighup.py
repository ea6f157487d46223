"""sighup (issue 9): SIGHUP reloads what can be reloaded safely and says what it could not.

Starts a provider sandbox and a signbridge (tests/upstream/uptest.py) with --config FILE holding
log_level "info", no rate limit and no allowed Origin.  Then:
  - before: 30 MCP requests with one credential are all let through; an Origin
    https://app.example.org is refused (403); each request is logged (http_request at info);
  - the file is rewritten: log_level "warn", ratelimit.requests_per_minute 60 with burst 3,
    allowed_origins ["https://app.example.org"], limits.max_sessions changed; SIGHUP;
  - one JSON log line "config_reloaded" lists applied [log_level, ratelimit.*, allowed_origins] and
    needs_restart [limits.max_sessions];
  - after: 3 requests are let through, the 4th gets 429; the Origin is accepted and echoed in
    Access-Control-Allow-Origin; no http_request line is logged any more (the level is warn);
  - the Origin is echoed on a proxied tools/call too (answered from a resumed connection);
  - a broken file + SIGHUP: "config_reload_failed", and the limits stay as they were;
  - the server still exits 0 on SIGTERM.
Standard library only.
"""

import json
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "upstream"))

import uptest  # noqa: E402  (puts tests/integration on sys.path too)
import sbtest  # noqa: E402
from sbtest import request  # noqa: E402

ORIGIN = "https://app.example.org"


def ping(port, cred, origin=None):
    h = sbtest.mcp_headers(extra=cred)
    if origin:
        h.append(("Origin", origin))
    return request(port, "POST", "/boldsign/mcp", h, {"jsonrpc": "2.0", "id": 1, "method": "ping"})


def log_lines(br, event):
    out = []
    for line in br.stderr_text().splitlines():
        try:
            o = json.loads(line)
        except ValueError:
            continue
        if o.get("event") == event:
            out.append(o)
    return out


def main(t):
    sbx = t.sbx
    sbx.start()
    cfg_path = os.path.join(sbx.dir, "signbridge.json")

    def write(cfg):
        tmp = cfg_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(cfg, f) if isinstance(cfg, dict) else f.write(cfg)
        os.replace(tmp, cfg_path)

    write({"log_level": "info", "ratelimit": {"requests_per_minute": 0},
           "limits": {"max_sessions": 1000}})
    br = uptest.Bridge(sbx)
    br.extra_env.pop("SIGNBRIDGE_LOG_LEVEL", None)  # the file decides the level
    br.args += ["--config", cfg_path]
    br.start()
    t.br = br
    port = br.port
    cred = uptest.xkey(sbx.key("boldsign", "us"))
    try:
        def before():
            for i in range(30):
                r = ping(port, cred)
                assert r.status != 429, "request %d refused without a limit" % i
            r = ping(port, cred, ORIGIN)
            assert r.status == 403, "Origin accepted before it was allowed: " + r.describe()
            # a request's line is written when libmicrohttpd reports it complete, which can come
            # after the client has read the answer: wait for the last ones (bounded)
            deadline = time.monotonic() + 5
            while len(log_lines(br, "http_request")) < 30 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(log_lines(br, "http_request")) >= 30, "requests are not logged at info"
            return "30 let through; Origin refused"
        t.check("before: no limit, Origin refused, requests logged", before)

        def reload():
            write({"log_level": "warn",
                   "ratelimit": {"requests_per_minute": 60, "burst": 3},
                   "allowed_origins": [ORIGIN],
                   "limits": {"max_sessions": 2000}})
            os.kill(br.pid, signal.SIGHUP)
            assert uptest.wait_until(lambda: log_lines(br, "config_reloaded"), timeout=5.0), \
                "no config_reloaded line: " + br.stderr_text()[-1000:]
            line = log_lines(br, "config_reloaded")[-1]
            applied, restart = set(line.get("applied", [])), set(line.get("needs_restart", []))
            want = {"log_level", "ratelimit.requests_per_minute", "ratelimit.burst",
                    "allowed_origins"}
            assert want <= applied, "applied %r" % sorted(applied)
            assert restart == {"limits.max_sessions"}, "needs_restart %r" % sorted(restart)
            assert line.get("level") == "warn", line  # something needs a restart
            assert line.get("ratelimit", {}).get("requests_per_minute") == 60, line
            assert line.get("log_level") == "warn", line
            return json.dumps(line)
        t.check("SIGHUP: one config_reloaded line lists what was applied and what needs a restart",
                reload)

        def after():
            n_logged = len(log_lines(br, "http_request"))
            ok = 0
            for _ in range(10):
                r = ping(port, cred)
                if r.status == 429:
                    break
                ok += 1
            assert ok in (3, 4), "%d let through before the first 429 (burst 3)" % ok
            assert r.status == 429 and r.header("Retry-After"), r.describe()
            r = ping(port, uptest.xkey(sbx.key("boldsign", "eu")), ORIGIN)
            assert r.status not in (403, 429), "allowed Origin refused: " + r.describe()
            assert r.header("Access-Control-Allow-Origin") == ORIGIN, r.describe()
            time.sleep(0.2)
            assert len(log_lines(br, "http_request")) == n_logged, "still logging at info"
            return "%d let through then 429; Origin accepted; info lines stopped" % ok
        t.check("after: the new limit applies, the Origin is allowed, the level is warn", after)

        def cors_resumed():
            # a tools/call is answered after the upstream, from a resumed connection: the Origin
            # is echoed there too (3 requests: within the burst, on a credential of its own)
            ex = uptest.xkey(sbx.key("boldsign", "ca")) + [("Origin", ORIGIN)]
            sid, ver, _ = sbtest.initialize(port, extra=ex, path="/boldsign/mcp")
            r, msg = sbtest.rpc(port, sid, "tools/call",
                                {"name": "list_documents", "arguments": {"page_size": 1}},
                                version=ver, extra=ex, path="/boldsign/mcp")
            assert r.status == 200 and msg and "result" in msg, r.describe()
            assert not msg["result"].get("isError"), msg
            assert r.header("Access-Control-Allow-Origin") == ORIGIN, r.describe()
            return "echoed on a proxied tools/call"
        t.check("an allowed Origin is echoed in Access-Control-Allow-Origin", cors_resumed)

        def broken():
            write("{not json")
            os.kill(br.pid, signal.SIGHUP)
            assert uptest.wait_until(lambda: log_lines(br, "config_reload_failed"), timeout=5.0), \
                "no config_reload_failed line"
            time.sleep(1.1)  # one token back at 60/min
            r = ping(port, cred)
            assert r.status != 429, r.describe()
            r = ping(port, cred)
            assert r.status == 429, "the limit was dropped by a broken file: " + r.describe()
            return "kept the previous settings"
        t.check("a broken file: config_reload_failed, the previous settings stay", broken)
    finally:
        uptest.stop_checked(t.checks, br, "signbridge (reloaded)")
        uptest.check_no_secrets(t.checks, sbx, br)
        br.tmp.cleanup()


def run():
    uptest.require_bins()
    checks = uptest.Checks()
    sbx = uptest.Sandbox(("--no-rate-limits",))
    t = uptest.Test(checks, sbx, None)
    try:
        main(t)
    except Exception as e:  # noqa: BLE001
        checks.fail("test body raised", "%s: %s" % (type(e).__name__, e))
    finally:
        uptest.stop_checked(checks, sbx, "the sandbox")
        sbx.tmp.cleanup()
    sys.exit(checks.finish())


run()
