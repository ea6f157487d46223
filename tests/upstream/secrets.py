"""upstream-secrets (issue 4, acceptance 6): no key, token or secret in any log line, at any level.

signbridge runs with SIGNBRIDGE_LOG_LEVEL=debug and a server secret file.  A scenario touching
every credential path: each provider with each caller style (X-API-Key, Basic, api_key), region
detection and its cache, a pinned region, a wrong region, wrong keys, a bearer token, malformed
credentials, upstream errors whose bodies come back (401, 403, 404, 429, 5xx, reset, malformed),
an action, session end (DELETE).  Then signbridge's stderr (every level) must contain none of:
every API key /_sandbox/accounts lists (api_key, api_keys, user_api_key), each in its Basic
base64(key:) form, the OAuth client secrets and demo passwords, the wrong keys and bearer token the
test sent, and the server secret file's contents.  The same check runs in every upstream test;
this one also reads the meson test logs of the build (meson-logs/testlog*.txt|json next to
SIGNBRIDGE_BIN) and checks the sections of signbridge's test suites (upstream, integration) for
the same secrets.
"""

import base64
import os
import re

import uptest
import sbtest  # noqa: E402  (uptest put it on sys.path)
from uptest import STYLES, initialize_raw

WRONG = [
    ("wrong key 1", "d3Jvbmcta2V5LXNpZ25icmlkZ2UtdGVzdC0wMDAx"),
    ("wrong key 2", "iks_0000deadbeef0000deadbeef0000deadbeef0000dead"),
    ("bearer token", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1cHRlc3QifQ.c2lnbmF0dXJlLXVwdGVzdA"),
]


def scenario(t):
    sbx, br = t.sbx, t.br
    port = br.port
    for label, v in WRONG:
        t.extra_secrets.append((label, v))
        t.extra_secrets.append((label + " as Basic", uptest.basic_value(v)))
    done = []

    # every provider x every caller style, list + get + tools/list + DELETE
    for provider, region, path in (("boldsign", "ca", "/boldsign/mcp"),
                                   ("dropboxsign", "global", "/dropboxsign/mcp"),
                                   ("iinkedsign", "sandbox-eu", "/iinkedsign/mcp")):
        key = sbx.key(provider, region)
        for style, mk in STYLES.items():
            s = br.session(path, mk(key))
            res = s.call("list_documents", {"page_size": 2})
            assert not res.is_error, "%s/%s: %s" % (provider, style, res.describe())
            s.rpc("tools/list")
            s.call("get_document", {"document_id": "no-such-document-0000"})
            r = sbtest.request(port, "DELETE", path,
                               sbtest.mcp_headers(session=s.sid, version=s.version, extra=s.cred))
            assert r.status in (200, 202, 204), "DELETE: %s" % r.describe()
            done.append("%s/%s" % (provider, style))

    # pinned right and wrong region; wrong keys; bearer; malformed credentials
    eu = sbx.key("boldsign", "eu", index=1)
    br.session("/boldsign/eu/mcp", uptest.xkey(eu)).call("list_documents", {"page_size": 1})
    initialize_raw(port, "/boldsign/au/mcp", uptest.basic(eu))
    for label, v in WRONG[:2]:
        for style, mk in STYLES.items():
            for path in ("/boldsign/mcp", "/dropboxsign/mcp", "/iinkedsign/mcp", "/boldsign/us/mcp"):
                initialize_raw(port, path, mk(v))
    initialize_raw(port, "/boldsign/mcp", [("Authorization", "Bearer " + WRONG[2][1])])
    initialize_raw(port, "/boldsign/mcp", [("Authorization", "Basic !!!" + WRONG[0][1])])
    initialize_raw(port, "/boldsign/mcp", [("Authorization", "Basic " + base64.b64encode(
        WRONG[0][1].encode()).decode())])  # no colon
    initialize_raw(port, "/boldsign/mcp", [("X-API-Key", WRONG[0][1] + "\x01")])
    # a session used with another credential (404) must not log either
    us = sbx.key("boldsign", "us")
    s = br.session("/boldsign/mcp", uptest.xkey(us))
    sbtest.rpc(port, s.sid, "tools/list", version=s.version, extra=uptest.xkey(eu),
               path="/boldsign/mcp")

    # upstream errors that carry bodies back
    for rule in ({"mode": "error", "status": 401}, {"mode": "error", "status": 403},
                 {"mode": "error", "status": 404}, {"mode": "rate_limit", "retry_after": 30},
                 {"mode": "error", "status": 500}, {"mode": "reset"}, {"mode": "malformed"}):
        fid = sbx.add_fault(provider="boldsign", region="us", route="/v1/document/*", **rule)
        s.call("list_documents", {"page_size": 1})
        sbx.ctl("DELETE", "/_sandbox/faults/%s" % fid)
    # an action
    res = s.call("list_documents", {"page_size": 50})
    ids = [d["id"] for d in res.structured["documents"] if d["status"] in ("sent", "in_progress")]
    if ids:
        s.call("revoke_document", {"document_id": ids[0], "reason": "uptest secrets"})
    # logging/setLevel debug through MCP too
    s.rpc("logging/setLevel", {"level": "debug"})
    return done


def meson_logs():
    """Text of the meson test logs of the build SIGNBRIDGE_BIN belongs to ([(file, text)])."""
    d = os.path.join(os.path.dirname(os.path.abspath(sbtest.BIN)), "meson-logs")
    out = []
    if os.path.isdir(d):
        for name in sorted(os.listdir(d)):
            if name.startswith("testlog") and (name.endswith(".txt") or name.endswith(".json")):
                with open(os.path.join(d, name), "rb") as f:
                    out.append((os.path.join(d, name), f.read().decode("utf-8", "replace")))
    return out


def sections(text):
    """[(test name, section text)] of a meson testlog.txt ('test: signbridge:suite / name')."""
    parts = re.split(r"(?m)^={10,} \d+/\d+ ={10,}\n", text)
    out = []
    for p in parts[1:]:
        m = re.search(r"(?m)^test:\s+(.*)$", p)
        out.append((m.group(1).strip() if m else "?", p))
    return out


def main(t):
    def run_scenario():
        done = scenario(t)
        assert len(done) == 9, done
    t.check("scenario: 3 providers x 3 caller styles, pins, wrong keys, bearer, malformed "
            "credentials, upstream error bodies, an action", run_scenario)

    def debug_lines_present():
        text = t.br.stderr_text()
        assert '"level":"debug"' in text, "no debug-level line in the log: the level is not debug"
        assert text.count('"event":"http_request"') >= 50, "fewer request lines than expected"
    t.check("signbridge logged at debug level (so every level is covered)", debug_lines_present)

    def meson():
        logs = meson_logs()
        secrets = uptest.secrets_of(t.sbx)  # same seed in every test: same keys
        hits = []
        checked = 0
        for path, text in logs:
            if path.endswith(".txt"):
                for name, body in sections(text):
                    m = re.match(r"[^:]*:(\S+) / ", name)  # "signbridge:upstream / upstream-faults"
                    if not m or m.group(1) not in ("upstream", "integration"):
                        continue
                    checked += 1
                    hits.extend("%s in %s section %r" % (label, os.path.basename(path), name)
                                for label, _ in uptest.find_secrets(body, secrets))
        print("# meson logs: %d files, %d signbridge test sections checked" % (len(logs), checked))
        assert not hits, "; ".join(hits[:10])
    t.check("no key in the meson test logs of signbridge's tests (upstream, integration)", meson)


uptest.run(main)
