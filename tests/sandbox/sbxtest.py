"""sbxtest: shared helpers for the sandbox tests (tests/sandbox/*.py).

Starts the provider sandbox (SANDBOX_BIN, i.e. the built signbridge-sandbox) on 127.0.0.1:0 with
--port-file and a fixed --seed, drives it over raw HTTP/1.1 (tests/integration/sbtest.py), and stops
it with SIGTERM, checking that it exits 0 and printed no sanitizer report.  Standard library only.

A test module defines `main(checks, sb)` and ends with `sbxtest.run(main, args=[...])`.
"""

import base64
import json
import os
import sys
import time
import traceback
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import sbtest  # noqa: E402
from sbtest import Checks, ConnectionClosed, connect, read_response, request, short  # noqa: E402,F401

SANDBOX_BIN = os.environ.get("SANDBOX_BIN", "")
SEED = 4242  # every sandbox test runs with this seed unless it says otherwise


def require_sandbox():
    if not SANDBOX_BIN or not os.access(SANDBOX_BIN, os.X_OK):
        print("not ok - setup: SANDBOX_BIN is unset or not executable (%r)" % SANDBOX_BIN)
        print("0 passed, 1 failed")
        sys.exit(1)


class Sandbox(sbtest.Server):
    """One signbridge-sandbox process on 127.0.0.1:0."""

    def __init__(self, args=(), seed=SEED, env=None, start_timeout=30.0):
        require_sandbox()
        full = ["--seed", str(seed)] + list(args)
        super().__init__(args=full, env=env, start_timeout=start_timeout, binary=SANDBOX_BIN)

    @property
    def origin(self):
        return "http://127.0.0.1:%d" % self.port

    # -- HTTP --------------------------------------------------------------------------------

    def path(self, url):
        """The path+query of an absolute sandbox URL (or a path, returned as is)."""
        if url.startswith("http://") or url.startswith("https://"):
            u = urllib.parse.urlsplit(url)
            return u.path + ("?" + u.query if u.query else "")
        return url

    def call(self, method, url, headers=None, body=None, timeout=15.0):
        """One request; url is absolute (a base_url + path) or a path. body: bytes, str or JSON."""
        headers = list(headers or [])
        if body is not None and not isinstance(body, (bytes, bytearray, str)):
            if not any(k.lower() == "content-type" for k, _ in headers):
                headers.append(("Content-Type", "application/json"))
        return request(self.port, method, self.path(url), headers, body, timeout=timeout)

    def get(self, url, headers=None, timeout=15.0):
        return self.call("GET", url, headers, None, timeout)

    def post(self, url, headers=None, body=None, timeout=15.0):
        return self.call("POST", url, headers, body, timeout)

    # -- control endpoints ---------------------------------------------------------------------

    def ctl(self, method, path, body=None, expect=(200, 201)):
        r = self.call(method, path, [], body)
        assert r.status in expect, "%s %s: %s" % (method, path, r.describe())
        return r.json() if r.body else {}

    def accounts(self):
        return self.ctl("GET", "/_sandbox/accounts")["accounts"]

    def account(self, provider, region, instance=None, index=0):
        """The index-th demo account of provider in region (for iinked private: that instance)."""
        found = []
        for a in self.accounts():
            if a.get("provider") != provider or a.get("region") != region:
                continue
            if instance is not None and instance not in a.get("base_url", ""):
                continue
            found.append(a)
        assert len(found) > index, "no %s account #%d in %s%s (accounts: %s)" % (
            provider, index, region, "/" + instance if instance else "",
            short(json.dumps([(a.get("provider"), a.get("region")) for a in self.accounts()]), 400))
        return found[index]

    def add_fault(self, rule):
        return self.ctl("POST", "/_sandbox/faults", rule, expect=(201,))["id"]

    def clear_faults(self):
        return self.ctl("DELETE", "/_sandbox/faults")

    def config(self, **kw):
        return self.ctl("POST", "/_sandbox/config", kw)

    def reset(self, seed=None):
        return self.ctl("POST", "/_sandbox/reset", {} if seed is None else {"seed": seed})

    def log(self, since=0, provider=None):
        q = "?since=%d" % since + ("&provider=" + provider if provider else "")
        return self.ctl("GET", "/_sandbox/requests" + q)

    def stats(self, provider=None):
        return self.ctl("GET", "/_sandbox/stats" + ("?provider=" + provider if provider else ""))

    def advance(self, doc_id, to):
        return self.call("POST", "/_sandbox/documents/%s/advance" % urllib.parse.quote(doc_id, safe=""),
                         [], {"to": to})


# -- each provider's credential convention -----------------------------------------------------

def bold_auth(key):
    return [("X-API-KEY", key)]


def basic(key, password=""):
    tok = base64.b64encode(("%s:%s" % (key, password)).encode()).decode()
    return [("Authorization", "Basic " + tok)]


def iinked_auth(key):
    return [("api_key", key)]


def bearer(token):
    return [("Authorization", "Bearer " + token)]


def form(fields):
    """(headers, body) of an application/x-www-form-urlencoded body."""
    return ([("Content-Type", "application/x-www-form-urlencoded")],
            urllib.parse.urlencode(fields))


def q(**kw):
    return urllib.parse.urlencode(kw, doseq=True)


def jbody(resp):
    """The JSON body, or an AssertionError naming the response."""
    try:
        return json.loads(resp.body)
    except Exception:
        raise AssertionError("body is not JSON: %s" % resp.describe())


def expect(resp, status, what=""):
    assert resp.status == status, "%sexpected HTTP %d, got %s" % (
        what + ": " if what else "", status, resp.describe())
    return resp


def wait_until(fn, timeout=10.0, step=0.1):
    """Poll fn() until it returns a truthy value (returned) or timeout (returns the last value)."""
    deadline = time.monotonic() + timeout
    v = fn()
    while not v and time.monotonic() < deadline:
        time.sleep(step)
        v = fn()
    return v


# -- running a test module ---------------------------------------------------------------------

def stop_and_check(checks, sb):
    """SIGTERM the sandbox: it must have been alive, exit 0, and print no sanitizer report."""
    alive = sb.alive()
    rc = sb.stop()
    if alive:
        checks.ok("sandbox alive at the end of the test")
    else:
        checks.fail("sandbox alive at the end of the test", "it exited early with %r; stderr: %s"
                    % (rc, sb.stderr_text()[-1500:]))
    if rc == 0:
        checks.ok("sandbox exits 0 on SIGTERM")
    elif alive:
        checks.fail("sandbox exits 0 on SIGTERM", "exit status %r; stderr: %s"
                    % (rc, sb.stderr_text()[-1500:]))
    crash = sb.crash_report()
    if crash:
        checks.fail("no sanitizer report from the sandbox", crash + " ... " + sb.stderr_text()[-3000:])
    else:
        checks.ok("no sanitizer report from the sandbox")


def run(main, args=(), seed=SEED, env=None):
    checks = Checks()
    sb = Sandbox(args, seed=seed, env=env)
    try:
        sb.start()
    except Exception as e:  # noqa: BLE001
        checks.fail("sandbox starts", e)
        sys.exit(checks.finish())
    print("# signbridge-sandbox on port %d (pid %d, seed %d)" % (sb.port, sb.proc.pid, seed), flush=True)
    try:
        main(checks, sb)
    except Exception as e:  # noqa: BLE001 - report, then still stop the sandbox
        checks.fail("test body raised", "%s: %s | %s" % (type(e).__name__, e,
                                                          traceback.format_exc()[-800:]))
    finally:
        stop_and_check(checks, sb)
        sb.tmp.cleanup()
    sys.exit(checks.finish())
