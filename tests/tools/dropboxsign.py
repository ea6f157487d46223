"""tools-dropboxsign (issue 5, acceptance 1): every tool the Dropbox Sign adapter serves, through
signbridge against the sandbox.

Starts signbridge-sandbox (--no-rate-limits, --seed 4242) and signbridge (--sandbox-url, port 0,
SIGNBRIDGE_SECRET_FILE in a temp dir, SIGNBRIDGE_LOG_LEVEL=debug) with tests/upstream/uptest.py,
opens MCP sessions on /dropboxsign/mcp with demo API keys from /_sandbox/accounts (the team admin,
a team member, an account off a team) and, for every tool of the adapter:

- calls it and checks the normalized structuredContent: valid against the tool's outputSchema
  (schemas/tools/<tool>.json, checked here too), and the values equal what the sandbox answers
  when asked directly with the same key (ids, titles, statuses, signers, times, roles, quotas);
- checks in the sandbox's request log (GET /_sandbox/requests) exactly what reached Dropbox Sign:
  method, path, query parameters, JSON or multipart body fields, auth scheme (Basic);
- covers not found (unknown id -> isError naming "no such item"), forbidden (another account's
  request -> 403 "refused") and validation failures (bad arguments -> isError naming the field,
  and nothing sent upstream, or no action sent after a lookup).

tools/list on /dropboxsign/mcp must list exactly the tools implemented. At the end signbridge must
not have logged tool_output_invalid, both processes exit 0 on SIGTERM with no sanitizer report, and
no key reaches signbridge's log. Standard library only.
"""

import base64
import calendar
import email.parser
import email.policy
import json
import os
import re
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "upstream"))

import uptest  # noqa: E402  (puts tests/integration on sys.path)
import sbtest  # noqa: E402

ROUTE = "/dropboxsign/mcp"
TOOLS = sorted([
    "list_documents", "get_document", "revoke_document", "send_document", "send_from_template",
    "remind_signers", "change_signer", "extend_expiry", "download_document", "get_signing_link",
    "list_templates", "get_template", "get_account", "list_users", "get_user", "list_teams",
    "get_team",
])
UNKNOWN_DOC = "0123456789abcdef0123456789abcdef01234567"
PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
       b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")
SOURCE_ROOT = os.environ.get("SB_SOURCE_ROOT") or os.path.abspath(os.path.join(HERE, "..", ".."))


# ------------------------------------------------------------------------------------------------
# A small JSON Schema check of structuredContent against the tool's outputSchema (the subset the
# contracts use: type, required, properties, additionalProperties, enum, items, $ref, minimum,
# format date-time). signbridge validates too; this proves the contract from the outside.

SCHEMAS = {}


def schema_of(tool):
    if tool not in SCHEMAS:
        with open(os.path.join(SOURCE_ROOT, "schemas", "tools", tool + ".json")) as f:
            SCHEMAS[tool] = json.load(f)
    return SCHEMAS[tool]


RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _type_ok(v, t):
    return {"string": isinstance(v, str), "null": v is None, "boolean": isinstance(v, bool),
            "object": isinstance(v, dict), "array": isinstance(v, list),
            "integer": isinstance(v, int) and not isinstance(v, bool),
            "number": isinstance(v, (int, float)) and not isinstance(v, bool)}[t]


def validate(v, s, root, path="$"):
    if "$ref" in s:
        name = s["$ref"].split("/")[-1]
        return validate(v, root["$defs"][name], root, path)
    t = s.get("type")
    if t is not None:
        ts = t if isinstance(t, list) else [t]
        assert any(_type_ok(v, x) for x in ts), "%s: %r is not %s" % (path, v, t)
    if "enum" in s:
        assert v in s["enum"], "%s: %r not in %s" % (path, v, s["enum"])
    if s.get("format") == "date-time" and isinstance(v, str):
        assert RFC3339.match(v), "%s: %r is not RFC 3339" % (path, v)
    if "minimum" in s and isinstance(v, (int, float)):
        assert v >= s["minimum"], "%s: %r < %r" % (path, v, s["minimum"])
    if isinstance(v, dict):
        props = s.get("properties", {})
        for r in s.get("required", []):
            assert r in v, "%s: required %r missing" % (path, r)
        for k, x in v.items():
            if k in props:
                validate(x, props[k], root, path + "." + k)
            elif s.get("additionalProperties") is False:
                raise AssertionError("%s: extra property %r" % (path, k))
            elif isinstance(s.get("additionalProperties"), dict):
                validate(x, s["additionalProperties"], root, path + "." + k)
    if isinstance(v, list) and "items" in s:
        for i, x in enumerate(v):
            validate(x, s["items"], root, "%s[%d]" % (path, i))


def valid_output(tool, res):
    assert not res.is_error, "%s failed: %s" % (tool, res.describe())
    sc = res.structured
    assert isinstance(sc, dict), "%s: no structuredContent: %s" % (tool, res.describe())
    out = schema_of(tool)["outputSchema"]
    validate(sc, out, out)
    assert sc.get("provider") == "dropboxsign" and sc.get("region") == "global", \
        "%s: provider/region %r/%r" % (tool, sc.get("provider"), sc.get("region"))
    return sc


# ------------------------------------------------------------------------------------------------
# Helpers


def rfc(epoch):
    """The RFC 3339 form signbridge gives an epoch (None stays None)."""
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(epoch))


def neutral_doc_status(d):
    if d["is_complete"]:
        return "completed"
    if d["is_declined"]:
        return "declined"
    if d["has_error"]:
        return "failed"
    if d.get("expires_at") and d["expires_at"] < time.time():
        return "expired"
    acted = any(s.get("signed_at") or s.get("last_viewed_at") for s in d["signatures"])
    return "in_progress" if acted else "sent"


def neutral_signer_status(s):
    st = s["status_code"]
    if st in ("signed", "declined", "expired"):
        return st
    if st.startswith("error"):
        return "failed"
    return "viewed" if s.get("last_viewed_at") else "pending"


def same_document(n, d):
    """Compare a neutral document with the sandbox's own signature_request."""
    assert n["id"] == d["signature_request_id"], "id %r != %r" % (n["id"], d["signature_request_id"])
    assert n["title"] == d["title"], "title %r != %r" % (n["title"], d["title"])
    assert n["status"] == neutral_doc_status(d), "status %r, expected %r (sandbox %s)" % (
        n["status"], neutral_doc_status(d), json.dumps(d)[:400])
    assert n["created_at"] == rfc(d["created_at"]), "created_at %r vs %r" % (n["created_at"], d["created_at"])
    assert n["expires_at"] == rfc(d.get("expires_at")), "expires_at %r vs %r" % (
        n["expires_at"], d.get("expires_at"))
    assert n["message"] == d.get("message"), "message %r vs %r" % (n["message"], d.get("message"))
    assert n["sender"] == {"name": None, "email": d["requester_email_address"]}, n["sender"]
    assert n["cc"] == d["cc_email_addresses"], "cc %r vs %r" % (n["cc"], d["cc_email_addresses"])
    assert n.get("test_mode") == d["test_mode"], "test_mode %r vs %r" % (n.get("test_mode"), d["test_mode"])
    assert len(n["signers"]) == len(d["signatures"]), "signers %d vs %d" % (
        len(n["signers"]), len(d["signatures"]))
    for x, s in zip(n["signers"], d["signatures"]):
        assert x["id"] == s["signature_id"] and x["email"] == s["signer_email_address"] \
            and x["name"] == s["signer_name"], "signer %r vs %r" % (x, s)
        assert x["provider_status"] == s["status_code"], "signer status %r vs %r" % (x, s)
        assert x["status"] == neutral_signer_status(s), "signer %r: status, expected %s" % (
            x, neutral_signer_status(s))
        want = None if s["order"] is None else s["order"] + 1  # neutral order counts from 1
        assert x["order"] == want, "order %r vs %r" % (x["order"], s["order"])
        assert x["signed_at"] == rfc(s.get("signed_at")) and x["viewed_at"] == rfc(s.get("last_viewed_at")), \
            "signer times %r vs %r" % (x, s)
        assert x.get("role") == s.get("signer_role"), "role %r vs %r" % (x.get("role"), s.get("signer_role"))


def multipart_fields(entry):
    """{name: value or (filename, content_type, bytes)} of a logged multipart body."""
    body = base64.b64decode(entry["body_base64"]) if "body_base64" in entry else entry["body"].encode("utf-8")
    assert not entry.get("body_truncated"), "the logged body is truncated"
    raw = b"Content-Type: " + entry["content_type"].encode() + b"\r\n\r\n" + body
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    assert msg.is_multipart(), "not a multipart body: %r" % entry["content_type"]
    out = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        fn = part.get_param("filename", header="content-disposition")
        data = part.get_payload(decode=True)
        if fn is not None:
            out[name] = (fn, part.get_content_type(), data)
        else:
            out[name] = data.decode("utf-8")
    return out


def query_of(entry):
    return dict(urllib.parse.parse_qsl(entry["query"], keep_blank_values=True))


def json_body(entry):
    assert entry["content_type"].startswith("application/json"), "content type %r" % entry["content_type"]
    return json.loads(entry["body"])


class Ctx:
    def __init__(self, t):
        self.t, self.sbx, self.br = t, t.sbx, t.br
        accts = [a for a in self.sbx.accounts() if a["provider"] == "dropboxsign" and a.get("api_key")]
        assert len(accts) >= 3, "the sandbox lists %d Dropbox Sign accounts with keys" % len(accts)
        self.admin, self.member, self.solo = accts[0], accts[1], accts[2]
        assert self.admin.get("team_id") and self.member.get("team_id") and not self.solo.get("team_id"), \
            "unexpected demo accounts: %r" % [(a["email"], a.get("team_id")) for a in accts]
        self.base_path = urllib.parse.urlsplit(self.admin["base_url"]).path
        self.sessions = {}

    def session(self, who="admin"):
        if who not in self.sessions:
            acct = getattr(self, who)
            self.sessions[who] = self.br.session(ROUTE, uptest.basic(acct["api_key"]))
        return self.sessions[who]

    # -- the sandbox asked directly, as the account itself --------------------------------------
    def direct(self, path, who="admin", expect=200):
        acct = getattr(self, who)
        r = uptest.request(self.sbx.port, "GET", self.base_path + path, uptest.basic(acct["api_key"]),
                           timeout=20)
        assert r.status == expect, "sandbox GET %s: %s" % (path, r.describe())
        return r

    def dj(self, path, who="admin"):
        return self.direct(path, who).json()

    def sr(self, doc, who="admin"):
        return self.dj("/signature_request/" + doc, who)["signature_request"]

    def all_docs(self, who="admin"):
        return self.dj("/signature_request/list?page_size=100", who)["signature_requests"]

    # -- a tool call and what it sent ----------------------------------------------------------
    def traced(self, tool, args, who="admin"):
        sess = self.session(who)  # initialize probes GET /account: not part of the call
        seq = self.sbx.last_seq()
        res = sess.call(tool, args, timeout=30)
        reqs = self.sbx.requests(since=seq, provider="dropboxsign")
        return res, reqs


def expect_requests(reqs, expected, who_id=None):
    """reqs match [(method, path)] in order; each with Basic auth (or none for no_auth fetches)."""
    got = [(q["method"], q["path"]) for q in reqs]
    assert got == expected, "upstream requests %r, expected %r" % (got, expected)
    for q, (m, p) in zip(reqs, expected):
        if p.startswith("/v3/"):
            assert q["auth_scheme"] == "basic", "%s %s went with auth %r" % (m, p, q["auth_scheme"])
            if who_id:
                assert q["account_id"] == who_id, "%s %s as account %r" % (m, p, q["account_id"])
            assert q["request_id"], "%s %s without X-Request-Id" % (m, p)


def expect_error(res, *patterns):
    assert res.is_error, "expected an error, got %s" % res.describe()
    for p in patterns:
        assert re.search(p, res.text), "error text does not match /%s/: %r" % (p, res.text)


def nothing_sent(reqs, what="nothing"):
    assert not reqs, "%s reached the sandbox: %r" % (what, [(q["method"], q["path"]) for q in reqs])


def no_action(reqs):
    posts = [(q["method"], q["path"]) for q in reqs if q["method"] != "GET"]
    assert not posts, "an action reached the sandbox: %r" % posts


# ------------------------------------------------------------------------------------------------
# The tests


def test_tools_list(c):
    s = c.session()
    names, cursor = [], None
    for _ in range(20):
        r, msg = s.rpc("tools/list", {"cursor": cursor} if cursor else {})
        assert msg and "result" in msg, "tools/list: %s" % r.describe()
        names += [x["name"] for x in msg["result"]["tools"]]
        cursor = msg["result"].get("nextCursor")
        if not cursor:
            break
    assert sorted(names) == TOOLS, "tools/list on %s: %s\n  expected %s\n  extra %s missing %s" % (
        ROUTE, sorted(names), TOOLS, sorted(set(names) - set(TOOLS)), sorted(set(TOOLS) - set(names)))


def test_list_documents(c):
    res, reqs = c.traced("list_documents", {"page_size": 7, "page": 2})
    sc = valid_output("list_documents", res)
    expect_requests(reqs, [("GET", "/v3/signature_request/list")], c.admin["account_id"])
    assert query_of(reqs[0]) == {"page": "2", "page_size": "7"}, reqs[0]["query"]
    direct = c.dj("/signature_request/list?page=2&page_size=7")
    assert [d["id"] for d in sc["documents"]] == [d["signature_request_id"] for d in direct["signature_requests"]]
    for n, d in zip(sc["documents"], direct["signature_requests"]):
        same_document(n, d)
    li = direct["list_info"]
    assert (sc["page"], sc["page_size"], sc["total"]) == (2, 7, li["num_results"]), sc
    assert sc["next_page"] == (3 if li["num_pages"] > 2 else None), sc["next_page"]


def test_list_documents_filters(c):
    res, reqs = c.traced("list_documents", {"status": ["completed"], "query": "NDA",
                                            "created_after": "2020-01-01T00:00:00Z",
                                            "created_before": "2099-12-31T00:00:00Z"})
    sc = valid_output("list_documents", res)
    expect_requests(reqs, [("GET", "/v3/signature_request/list")])
    q = query_of(reqs[0])
    assert q.get("query") == "NDA AND complete:true AND created:[2020-01-01 TO 2099-12-31]", q
    assert all(d["status"] == "completed" for d in sc["documents"]), sc["documents"]
    # a status Dropbox Sign cannot search: filtered in signbridge, with a note
    res, reqs = c.traced("list_documents", {"status": ["in_progress"], "page_size": 100})
    sc = valid_output("list_documents", res)
    assert "query" not in query_of(reqs[0]), reqs[0]["query"]
    assert sc["documents"] and all(d["status"] == "in_progress" for d in sc["documents"]), sc
    assert sc["total"] is None and "filtered" in sc.get("note", ""), sc


def test_get_document(c):
    docs = c.all_docs()
    seen = set()
    for d in docs:
        st = neutral_doc_status(d)
        if st in seen:
            continue
        seen.add(st)
        res, reqs = c.traced("get_document", {"document_id": d["signature_request_id"]})
        sc = valid_output("get_document", res)
        expect_requests(reqs, [("GET", "/v3/signature_request/" + d["signature_request_id"])])
        same_document(sc["document"], c.sr(d["signature_request_id"]))
    assert {"sent", "in_progress", "completed", "declined", "expired", "failed"} <= seen, seen


def test_not_found(c):
    for tool, args in [("get_document", {"document_id": UNKNOWN_DOC}),
                       ("download_document", {"document_id": UNKNOWN_DOC}),
                       ("revoke_document", {"document_id": UNKNOWN_DOC, "reason": "x"}),
                       ("remind_signers", {"document_id": UNKNOWN_DOC}),
                       ("change_signer", {"document_id": UNKNOWN_DOC, "old_email": "a@example.com",
                                          "new_name": "B", "new_email": "b@example.com"}),
                       ("extend_expiry", {"document_id": UNKNOWN_DOC, "days": 3}),
                       ("get_signing_link", {"document_id": UNKNOWN_DOC, "signer_email": "a@example.com"}),
                       ("get_template", {"template_id": "f" * 40}),
                       ("send_from_template", {"template_id": "f" * 40,
                                               "signers": [{"role": "R", "name": "N", "email": "n@example.com"}]}),
                       ("get_team", {"team_id": "f" * 40}),
                       ("get_user", {"user_id": "f" * 40})]:
        res, reqs = c.traced(tool, args)
        expect_error(res, r"Dropbox Sign found no such item \(404\)", r"Not found|does not exist")
        assert len(reqs) == 1 and reqs[0]["status"] == 404, "%s: %r" % (tool, [(q["path"], q["status"]) for q in reqs])


def test_bad_ids(c):
    for tool, args in [("get_document", {"document_id": "../account"}),
                       ("get_template", {"template_id": "a/b"}),
                       ("get_user", {"user_id": "x y"}),
                       ("revoke_document", {"document_id": "a?b=c", "reason": "x"})]:
        res, reqs = c.traced(tool, args)
        field = [k for k in args if k.endswith("_id")][0]
        expect_error(res, field)
        nothing_sent(reqs)


def test_schema_validation(c):
    for tool, args, field in [
            ("send_document", {"title": "T", "files": [{"url": "https://example.com/a.pdf"}]}, "signers"),
            ("send_document", {"title": "T", "files": [{"url": "https://example.com/a.pdf"}],
                               "signers": [{"name": "A", "email": "not-an-email"}]}, "email"),
            ("extend_expiry", {"document_id": UNKNOWN_DOC, "days": 0}, "days"),
            ("get_document", {}, "document_id"),
            ("list_documents", {"page_size": 101}, "page_size")]:
        res, reqs = c.traced(tool, args)
        expect_error(res, field)
        nothing_sent(reqs)


def test_revoke(c):
    docs = c.all_docs()
    mine = [d for d in docs if d["requester_email_address"] == c.admin["email"]
            and neutral_doc_status(d) == "sent" and not d["test_mode"]]
    doc = mine[-1]["signature_request_id"]
    res, reqs = c.traced("revoke_document", {"document_id": doc, "reason": "tools test"})
    sc = valid_output("revoke_document", res)
    expect_requests(reqs, [("POST", "/v3/signature_request/cancel/" + doc)])
    assert reqs[0].get("body", "") == "" and reqs[0]["status"] == 200, reqs[0]
    assert sc["outcome"] == "done" and sc["status"] == "revoke_requested" and sc["document_id"] == doc, sc
    # Dropbox Sign cancels asynchronously: the request is gone (410) about a second later
    gone = uptest.wait_until(lambda: _status(c, "/signature_request/" + doc) == 410, timeout=5)
    assert gone, "the request was not canceled"
    res = c.session().call("get_document", {"document_id": doc})
    expect_error(res, r"no such item \(410\)")


def _status(c, path, who="admin"):
    acct = getattr(c, who)
    return uptest.request(c.sbx.port, "GET", c.base_path + path, uptest.basic(acct["api_key"]),
                          timeout=20).status


def test_forbidden(c):
    # the team member can read a request it was asked to sign, but only the sender may act on it
    docs = c.all_docs("member")
    theirs = [d for d in docs if d["requester_email_address"] != c.member["email"]
              and neutral_doc_status(d) in ("sent", "in_progress")]
    assert theirs, "no request of another sender visible to the member"
    d = theirs[0]
    doc = d["signature_request_id"]
    res, reqs = c.traced("revoke_document", {"document_id": doc, "reason": "not mine"}, who="member")
    expect_error(res, r"Dropbox Sign refused this \(403\)", "permission")
    expect_requests(reqs, [("POST", "/v3/signature_request/cancel/" + doc)], c.member["account_id"])
    res, reqs = c.traced("remind_signers", {"document_id": doc, "signer_emails": [c.member["email"]]},
                         who="member")
    expect_error(res, r"refused this \(403\)")
    expect_requests(reqs, [("GET", "/v3/signature_request/" + doc),
                           ("POST", "/v3/signature_request/remind/" + doc)])
    # the team admin may read the member's requests but not cancel them
    own = [x for x in c.all_docs("member") if x["requester_email_address"] == c.member["email"]
           and neutral_doc_status(x) == "sent"]
    res, reqs = c.traced("revoke_document", {"document_id": own[0]["signature_request_id"], "reason": "x"})
    expect_error(res, r"refused this \(403\)")
    # a request the account cannot see at all is "not found" (Dropbox Sign does not say it exists)
    other = [x for x in c.all_docs("solo")][0]["signature_request_id"]
    res, reqs = c.traced("get_document", {"document_id": other}, who="member")
    expect_error(res, r"no such item \(404\)")


def wait_ready(c, doc):
    """Dropbox Sign prepares the files of a new request (~1 s, 409 meanwhile)."""
    assert uptest.wait_until(lambda: _status(c, "/signature_request/files/" + doc) == 200, timeout=6), \
        "files of %s never became ready" % doc


def test_send_urls(c):
    args = {"title": "Tools test NDA", "message": "Please sign.\nThanks", "cc": ["legal@example.com"],
            "expires_in_days": 10, "test_mode": True, "signing_order": True,
            "files": [{"url": "https://files.example.com/contracts/nda.pdf"},
                      {"url": "https://files.example.com/contracts/annex.pdf?dl=1"}],
            "signers": [{"name": "Ana Ruiz", "email": "ana@example.com", "order": 2,
                         "authentication": {"type": "access_code", "access_code": "Blue42x"}},
                        {"name": "Bo Lin", "email": "bo@example.com", "order": 1}]}
    t0 = int(time.time())
    res, reqs = c.traced("send_document", dict(args, idempotency_key="tools-send-urls"))
    sc = valid_output("send_document", res)
    expect_requests(reqs, [("POST", "/v3/signature_request/send")], c.admin["account_id"])
    b = json_body(reqs[0])
    exp = b.pop("expires_at")
    assert t0 + 10 * 86400 - 5 <= exp <= int(time.time()) + 10 * 86400 + 5, exp
    assert b == {"title": "Tools test NDA", "subject": "Tools test NDA", "message": "Please sign.\nThanks",
                 "signers": [{"name": "Ana Ruiz", "email_address": "ana@example.com", "order": 1, "pin": "Blue42x"},
                             {"name": "Bo Lin", "email_address": "bo@example.com", "order": 0}],
                 "cc_email_addresses": ["legal@example.com"], "test_mode": True,
                 "file_urls": ["https://files.example.com/contracts/nda.pdf",
                               "https://files.example.com/contracts/annex.pdf?dl=1"]}, b
    assert sc["outcome"] == "done" and sc["status"] == "sent", sc
    assert "test mode" in sc["message"], sc["message"]
    doc = sc["document_id"]
    same_document(sc["document"], c.sr(doc))
    assert sc["document"]["expires_at"] == rfc(exp)
    # a retry with the same idempotency_key sends nothing and answers the first outcome
    res2, reqs2 = c.traced("send_document", dict(args, idempotency_key="tools-send-urls"))
    nothing_sent(reqs2, "a retried send")
    assert res2.structured and res2.structured.get("document_id") == doc, res2.describe()
    c.sent_url_doc = doc


def test_send_base64(c):
    args = {"title": "Tools test upload", "test_mode": False,
            "files": [{"base64": base64.b64encode(PDF).decode(), "name": "contract.pdf"},
                      {"base64": "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\nxx").decode(),
                       "name": "stamp.png", "mime_type": "image/png"}],
            "signers": [{"name": "Cy Doe", "email": "cy@example.com",
                         "authentication": {"type": "sms_otp", "phone": "+14155550100"}},
                        {"name": "Di Roe", "email": "di@example.com", "authentication": {"type": "none"}}]}
    res, reqs = c.traced("send_document", args)
    sc = valid_output("send_document", res)
    expect_requests(reqs, [("POST", "/v3/signature_request/send")])
    assert reqs[0]["content_type"].startswith("multipart/form-data; boundary="), reqs[0]["content_type"]
    f = multipart_fields(reqs[0])
    assert f.pop("files[0]") == ("contract.pdf", "application/pdf", PDF), "files[0]"
    assert f.pop("files[1]") == ("stamp.png", "image/png", b"\x89PNG\r\n\x1a\nxx"), "files[1]"
    assert f == {"title": "Tools test upload", "subject": "Tools test upload",
                 "signers[0][name]": "Cy Doe", "signers[0][email_address]": "cy@example.com",
                 "signers[0][sms_phone_number]": "+14155550100",
                 "signers[0][sms_phone_number_type]": "authentication",
                 "signers[1][name]": "Di Roe", "signers[1][email_address]": "di@example.com",
                 "test_mode": "0"}, f
    d = c.sr(sc["document_id"])
    same_document(sc["document"], d)
    assert d["signatures"][0]["has_sms_auth"] is True and d["signatures"][0]["order"] is None, d["signatures"][0]


def test_send_mixed(c):
    """A URL and an upload together: signbridge fetches the URL (no credential) and uploads both."""
    src = c.all_docs()[-1]["signature_request_id"]
    link = c.dj("/signature_request/files_as_file_url/" + src)["file_url"]
    pdf_bytes = uptest.request(c.sbx.port, "GET", urllib.parse.urlsplit(link).path, [], timeout=20).body
    args = {"title": "Tools test mixed",
            "files": [{"url": link},
                      {"base64": base64.b64encode(PDF).decode(), "name": "b.pdf"}],
            "signers": [{"name": "Ed Poe", "email": "ed@example.com"}]}
    res, reqs = c.traced("send_document", args)
    sc = valid_output("send_document", res)
    s3 = urllib.parse.urlsplit(link).path.split("/dropboxsign/global", 1)[1]
    expect_requests(reqs, [("GET", s3), ("POST", "/v3/signature_request/send")])
    assert reqs[0]["auth_scheme"] == "none" and not reqs[0]["request_id"], \
        "the file URL was fetched with credentials: %r" % reqs[0]
    f = multipart_fields(reqs[1])
    name = urllib.parse.urlsplit(link).path.rsplit("/", 1)[1]
    assert f["files[0]"] == (name, "application/pdf", pdf_bytes), (f["files[0]"][:2], len(pdf_bytes))
    assert f["files[1]"] == ("b.pdf", "application/pdf", PDF), f["files[1]"][:2]
    assert "file_urls[0]" not in f and f["signers[0][email_address]"] == "ed@example.com", sorted(f)
    same_document(sc["document"], c.sr(sc["document_id"]))


def test_send_validation(c):
    base = {"title": "T", "files": [{"url": "https://example.com/a.pdf"}]}
    cases = [
        ({"signers": [{"name": "A", "email": "a@example.com",
                       "authentication": {"type": "access_code", "access_code": "x" * 20}}]},
         r"signers\[0\]\.authentication\.access_code", r"4 to 12"),
        ({"signers": [{"name": "A", "email": "a@example.com", "authentication": {"type": "email_otp"}}]},
         r"signers\[0\]\.authentication type email_otp"),
        ({"signers": [{"name": "A", "email": "a@example.com"},
                      {"name": "B", "email": "b@example.com",
                       "authentication": {"type": "sms_otp", "phone": "+14155550100"}}], "test_mode": True},
         r"signers\[1\]\.authentication.*test mode"),
        ({"signers": [{"name": "A", "email": "a@example.com", "authentication": {"type": "sms_otp"}}]},
         r"signers\[0\]\.authentication\.phone"),
        ({"files": [{"url": "ftp://example.com/a.pdf"}], "signers": [{"name": "A", "email": "a@example.com"}]},
         r"files\[0\]\.url"),
        ({"files": [{"base64": base64.b64encode(b"hello, not a pdf").decode(), "name": "a.pdf"}],
          "signers": [{"name": "A", "email": "a@example.com"}]}, r"files\[0\]", "PDF"),
        ({"files": [{"base64": base64.b64encode(PDF).decode(), "name": "a.png", "mime_type": "image/png"}],
          "signers": [{"name": "A", "email": "a@example.com"}]}, r"files\[0\] is not a PNG", "bytes are PDF"),
        ({"files": [{"base64": "%%%%not base64", "name": "a.pdf"}],
          "signers": [{"name": "A", "email": "a@example.com"}]}, r"files\[0\]\.base64"),
        ({"files": [{"base64": base64.b64encode(PDF).decode(), "name": 'a"b.pdf'}],
          "signers": [{"name": "A", "email": "a@example.com"}]}, r"files\[0\]\.name"),
    ]
    # with a URL file too: the upload is checked before the URL is fetched
    cases.append(({"files": [{"url": "https://example.com/a.pdf"},
                             {"base64": base64.b64encode(b"plain text").decode(), "name": "b.pdf"}],
                   "signers": [{"name": "A", "email": "a@example.com"}]}, r"files\[1\] is not a PDF"))
    for extra, *pats in cases:
        res, reqs = c.traced("send_document", dict(base, **extra))
        expect_error(res, r"^Dropbox Sign: ", *pats)
        nothing_sent(reqs)
    # a URL that does not give a document: fetched, then nothing sent to Dropbox Sign
    res, reqs = c.traced("send_document", {
        "title": "T", "signers": [{"name": "A", "email": "a@example.com"}],
        "files": [{"url": c.sbx.origin + "/_sandbox/health"},
                  {"base64": base64.b64encode(PDF).decode(), "name": "b.pdf"}]})
    expect_error(res, r"files\[0\]\.url did not answer with a PDF, DOCX, PNG or JPEG")
    nothing_sent(reqs)


def template_named(c, title):
    for t in c.dj("/template/list?page_size=100")["templates"]:
        if t["title"] == title:
            return t
    raise AssertionError("no template %r" % title)


def test_send_from_template(c):
    t = template_named(c, "Offer Letter")
    tid = t["template_id"]
    args = {"template_id": tid, "title": "Offer for Fay", "message": "Welcome!", "test_mode": True,
            "cc": ["hr@example.com"], "prefill": [{"field": "Salary", "value": "120,000"},
                                                  {"field": "Start Date", "value": "2027-01-04"}],
            "signers": [{"role": "Candidate", "name": "Fay Wu", "email": "fay@example.com"},
                        {"role": "Hiring Manager", "name": "Gus Hale", "email": "gus@example.com"}]}
    res, reqs = c.traced("send_from_template", args)
    sc = valid_output("send_from_template", res)
    expect_requests(reqs, [("GET", "/v3/template/" + tid),
                           ("POST", "/v3/signature_request/send_with_template")])
    assert json_body(reqs[1]) == {
        "template_ids": [tid], "title": "Offer for Fay", "subject": "Offer for Fay", "message": "Welcome!",
        "signers": [{"role": "Candidate", "name": "Fay Wu", "email_address": "fay@example.com"},
                    {"role": "Hiring Manager", "name": "Gus Hale", "email_address": "gus@example.com"}],
        "ccs": [{"role": "HR", "email_address": "hr@example.com"}],
        "custom_fields": [{"name": "Salary", "value": "120,000"}, {"name": "Start Date", "value": "2027-01-04"}],
        "test_mode": True}, reqs[1]["body"]
    d = c.sr(sc["document_id"])
    same_document(sc["document"], d)
    assert [s["role"] for s in sc["document"]["signers"]] == ["Candidate", "Hiring Manager"]
    assert {f["name"]: f["value"] for f in d["custom_fields"]} == {"Salary": "120,000", "Start Date": "2027-01-04"}
    c.template_doc = sc["document_id"]


def test_send_from_template_validation(c):
    t = template_named(c, "Offer Letter")
    ok = {"template_id": t["template_id"], "cc": ["hr@example.com"],
          "signers": [{"role": "Candidate", "name": "F", "email": "f@example.com"},
                      {"role": "Hiring Manager", "name": "G", "email": "g@example.com"}]}
    cases = [
        (dict(ok, signers=[{"role": "candidate", "name": "F", "email": "f@example.com"}]),
         r"signers\[0\]\.role", "Candidate", 1),
        (dict(ok, cc=[]), r"\bcc\b", "HR", 1),
        (dict(ok, cc=["a@example.com", "b@example.com"]), r"\bcc\b", "CC role", 1),
        (dict(ok, prefill=[{"field": "Bonus", "value": "1"}]), r"prefill\[0\]\.field", "Salary", 1),
        (dict(ok, expires_in_days=5), r"^Dropbox Sign: expires_in_days", "extend_expiry", 0),
    ]
    for args, p1, p2, nget in cases:
        res, reqs = c.traced("send_from_template", args)
        expect_error(res, p1, p2)
        assert len(reqs) == nget and all(q["method"] == "GET" for q in reqs), \
            "sent: %r" % [(q["method"], q["path"]) for q in reqs]


def test_remind(c):
    # an ordered request from a template: by default only the signer whose turn it is
    doc = c.template_doc
    res, reqs = c.traced("remind_signers", {"document_id": doc, "message": "friendly nudge"})
    sc = valid_output("remind_signers", res)
    expect_requests(reqs, [("GET", "/v3/signature_request/" + doc), ("POST", "/v3/signature_request/remind/" + doc)])
    assert json_body(reqs[1]) == {"email_address": "fay@example.com"}, reqs[1]["body"]
    assert sc["reminded"] == ["fay@example.com"] and sc["outcome"] == "done", sc
    assert "no custom message" in sc["message"], sc["message"]
    d = c.sr(doc)
    assert d["signatures"][0]["last_reminded_at"], d["signatures"][0]
    # a second reminder within the hour: refused before anything is sent, saying when
    res, reqs = c.traced("remind_signers", {"document_id": doc, "signer_emails": ["fay@example.com"]})
    expect_error(res, "fay@example.com", "within an hour", r"try again after \d{4}-\d\d-\d\dT")
    no_action(reqs)
    # an unordered request with two signers: one reminder each, by email
    docs = c.all_docs()
    multi = [x for x in docs if x["requester_email_address"] == c.admin["email"] and len(x["signatures"]) >= 2
             and neutral_doc_status(x) in ("sent", "in_progress") and all(s["order"] is None for s in x["signatures"])
             and all(s["status_code"] == "awaiting_signature" and not s["last_reminded_at"] for s in x["signatures"])
             and x["signing_url"]]
    assert multi, "no unordered two-signer request to remind"
    x = multi[0]
    emails = [s["signer_email_address"] for s in x["signatures"]]
    xid = x["signature_request_id"]
    res, reqs = c.traced("remind_signers", {"document_id": xid})
    sc = valid_output("remind_signers", res)
    expect_requests(reqs, [("GET", "/v3/signature_request/" + xid)] +
                    [("POST", "/v3/signature_request/remind/" + xid)] * len(emails))
    assert [json_body(q)["email_address"] for q in reqs[1:]] == emails, [q["body"] for q in reqs[1:]]
    assert sc["reminded"] == emails, sc
    # validation after the lookup: not a signer, a finished request
    res, reqs = c.traced("remind_signers", {"document_id": xid, "signer_emails": ["nobody@example.com"]})
    expect_error(res, "nobody@example.com is not a signer", re.escape(emails[0]))
    no_action(reqs)
    done = [y for y in docs if y["requester_email_address"] == c.admin["email"] and y["is_complete"]][0]
    res, reqs = c.traced("remind_signers", {"document_id": done["signature_request_id"]})
    expect_error(res, "nobody was reminded", "completed")
    no_action(reqs)


def test_change_signer(c):
    doc = c.template_doc
    before = c.sr(doc)
    sid = [s for s in before["signatures"] if s["signer_email_address"] == "gus@example.com"][0]["signature_id"]
    res, reqs = c.traced("change_signer", {"document_id": doc, "old_email": "GUS@example.com",
                                           "new_name": "Hal Ives", "new_email": "hal@example.com",
                                           "reason": "Gus left", "idempotency_key": "tools-change-1"})
    sc = valid_output("change_signer", res)
    expect_requests(reqs, [("GET", "/v3/signature_request/" + doc), ("POST", "/v3/signature_request/update/" + doc)])
    assert json_body(reqs[1]) == {"signature_id": sid, "email_address": "hal@example.com", "name": "Hal Ives"}, \
        reqs[1]["body"]
    after = c.sr(doc)
    new = [s for s in after["signatures"] if s["signer_email_address"] == "hal@example.com"]
    assert new and sc["signer"]["id"] == new[0]["signature_id"] and sc["signer"]["name"] == "Hal Ives", sc
    assert sc["signer"]["role"] == "Hiring Manager" and "no reason" in sc["message"], sc
    # a signer who already signed cannot be changed: refused after the lookup
    docs = c.all_docs()
    partial = [x for x in docs if x["requester_email_address"] == c.admin["email"]
               and any(s["status_code"] == "signed" for s in x["signatures"]) and not x["is_complete"]]
    x = partial[0]
    signed = [s for s in x["signatures"] if s["status_code"] == "signed"][0]["signer_email_address"]
    res, reqs = c.traced("change_signer", {"document_id": x["signature_request_id"], "old_email": signed,
                                           "new_name": "Z", "new_email": "z@example.com"})
    expect_error(res, "already signed")
    no_action(reqs)
    res, reqs = c.traced("change_signer", {"document_id": doc, "old_email": "gus@example.com",
                                           "new_name": "Z", "new_email": "z@example.com"})
    expect_error(res, "gus@example.com is not a signer", "hal@example.com")
    no_action(reqs)
    # Dropbox Sign refuses /update on a request with an appended signature page: its own words
    res, reqs = c.traced("change_signer", {"document_id": c.sent_url_doc, "old_email": "bo@example.com",
                                           "new_name": "Z", "new_email": "z@example.com"})
    expect_error(res, r"rejected the request \(400\)", "signature page")


def test_extend_expiry(c):
    doc = c.template_doc
    before = c.sr(doc)
    t0 = int(time.time())
    res, reqs = c.traced("extend_expiry", {"document_id": doc, "days": 45})
    sc = valid_output("extend_expiry", res)
    expect_requests(reqs, [("GET", "/v3/signature_request/" + doc), ("POST", "/v3/signature_request/update/" + doc)])
    b = json_body(reqs[1])
    assert b["signature_id"] in [s["signature_id"] for s in before["signatures"]], b
    assert set(b) == {"signature_id", "expires_at"} and t0 + 45 * 86400 - 5 <= b["expires_at"] <= t0 + 45 * 86400 + 5, b
    after = c.sr(doc)
    assert after["expires_at"] == b["expires_at"] and sc["expires_at"] == rfc(b["expires_at"]), (sc, after["expires_at"])
    res, reqs = c.traced("extend_expiry", {"document_id": doc, "expires_at": "2031-02-03T04:05:06+01:00"})
    sc = valid_output("extend_expiry", res)
    assert json_body(reqs[1])["expires_at"] == 1927854306 and sc["expires_at"] == "2031-02-03T03:05:06.000Z", sc
    # validation: a past date sends nothing; a finished request is refused after the lookup
    res, reqs = c.traced("extend_expiry", {"document_id": doc, "expires_at": "2001-01-01T00:00:00Z"})
    expect_error(res, r"^Dropbox Sign: expires_at", "not in the future")
    nothing_sent(reqs)
    res, reqs = c.traced("extend_expiry", {"document_id": doc, "days": 3, "expires_at": "2031-01-01T00:00:00Z"})
    expect_error(res, "oneOf|one of|exactly one")
    nothing_sent(reqs)
    done = [y for y in c.all_docs() if y["requester_email_address"] == c.admin["email"] and y["is_declined"]][0]
    res, reqs = c.traced("extend_expiry", {"document_id": done["signature_request_id"], "days": 3})
    expect_error(res, "declined")
    no_action(reqs)


def test_download(c):
    doc = c.template_doc
    wait_ready(c, doc)
    res, reqs = c.traced("download_document", {"document_id": doc})
    sc = valid_output("download_document", res)
    expect_requests(reqs, [("GET", "/v3/signature_request/" + doc), ("GET", "/v3/signature_request/files/" + doc)])
    assert query_of(reqs[1]) == {"file_type": "pdf"}, reqs[1]["query"]
    direct = c.direct("/signature_request/files/%s?file_type=pdf" % doc).body
    assert sc["delivery"] == "embedded" and sc["kind"] == "document" and sc["mime_type"] == "application/pdf", sc
    assert sc["file_name"] == "Offer_for_Fay.pdf" and sc["size_bytes"] == len(direct), sc
    blobs = [x["resource"] for x in res.raw["content"] if x.get("type") == "resource"]
    assert blobs and base64.b64decode(blobs[0]["blob"]) == direct and blobs[0]["mimeType"] == "application/pdf", \
        "embedded file differs from the sandbox's PDF"
    # the audit trail: Dropbox Sign has no separate file; refused before anything is sent
    res, reqs = c.traced("download_document", {"document_id": doc, "kind": "audit_trail"})
    expect_error(res, r"^Dropbox Sign: kind audit_trail", "no separate audit-trail")
    nothing_sent(reqs)
    # files still being prepared right after a send: 409, "still processing"
    sent = c.session().call("send_document", {"title": "Fresh", "files": [{"url": "https://example.com/f.pdf"}],
                                              "signers": [{"name": "A", "email": "a@example.com"}]})
    fresh = valid_output("send_document", sent)["document_id"]
    res, reqs = c.traced("download_document", {"document_id": fresh})
    expect_error(res, r"still processing this \(409\)", "Try again")


def test_signing_link(c):
    docs = c.all_docs()
    # embedded requests (no signing_url): Dropbox Sign gives sign URLs only for those
    emb = [x for x in docs if x["requester_email_address"] == c.admin["email"] and x["signing_url"] is None
           and neutral_doc_status(x) in ("sent", "in_progress")
           and any(s["status_code"] == "awaiting_signature" for s in x["signatures"])]
    assert emb, "no embedded request in the seed"
    x = emb[0]
    s = [s for s in x["signatures"] if s["status_code"] == "awaiting_signature"][0]
    res, reqs = c.traced("get_signing_link", {"document_id": x["signature_request_id"],
                                              "signer_email": s["signer_email_address"].upper()})
    sc = valid_output("get_signing_link", res)
    expect_requests(reqs, [("GET", "/v3/signature_request/" + x["signature_request_id"]),
                           ("GET", "/v3/embedded/sign_url/" + s["signature_id"])])
    assert sc["url"].startswith(c.sbx.origin + "/dropboxsign/global/app/embedded/sign?signature_id=" + s["signature_id"]), sc
    exp = calendar.timegm(time.strptime(sc["expires_at"], "%Y-%m-%dT%H:%M:%S.000Z"))
    assert abs(exp - (time.time() + 3600)) < 120, sc["expires_at"]
    assert sc["signer_email"] == s["signer_email_address"].upper() and sc["document_id"] == x["signature_request_id"]
    # not a signer: refused after the lookup
    res, reqs = c.traced("get_signing_link", {"document_id": x["signature_request_id"],
                                              "signer_email": "stranger@example.com"})
    expect_error(res, "stranger@example.com is not a signer")
    assert len(reqs) == 1, [(q["method"], q["path"]) for q in reqs]
    # a redirect is set when a request is sent, not per link: not sent ("where the provider
    # supports it"), the link still comes
    res, reqs = c.traced("get_signing_link", {"document_id": x["signature_request_id"],
                                              "signer_email": s["signer_email_address"],
                                              "redirect_url": "https://example.com/done"})
    valid_output("get_signing_link", res)
    assert reqs[1]["query"] == "" and "example.com/done" not in json.dumps(reqs), reqs
    # a request sent by email: Dropbox Sign's own refusal
    res, reqs = c.traced("get_signing_link", {"document_id": c.template_doc, "signer_email": "fay@example.com"})
    expect_error(res, r"rejected the request \(400\)", "embedded")


def test_templates(c):
    res, reqs = c.traced("list_templates", {"page_size": 2})
    sc = valid_output("list_templates", res)
    expect_requests(reqs, [("GET", "/v3/template/list")])
    assert query_of(reqs[0]) == {"page": "1", "page_size": "2"}, reqs[0]["query"]
    direct = c.dj("/template/list?page=1&page_size=2")
    assert [t["id"] for t in sc["templates"]] == [t["template_id"] for t in direct["templates"]]
    assert sc["total"] == direct["list_info"]["num_results"] and sc["next_page"] == 2, sc
    for n, t in zip(sc["templates"], direct["templates"]):
        assert n["title"] == t["title"] and n["description"] == t["message"] and n["updated_at"] == rfc(t["updated_at"])
        assert [(r["name"], r["order"], r["kind"]) for r in n["roles"]] == \
            [(r["name"], None if r.get("order") is None else r["order"] + 1, "signer") for r in t["signer_roles"]] + [(r["name"], None, "cc") for r in t["cc_roles"]]
        merge = [f["name"] for d in t["documents"] for f in d["custom_fields"]]
        form = [f["name"] for d in t["documents"] for f in d["form_fields"]]
        assert [f["name"] for f in n["fields"]] == merge + form, n["fields"]
    res, reqs = c.traced("list_templates", {"query": "NDA"})
    sc = valid_output("list_templates", res)
    assert query_of(reqs[0]).get("query") == "NDA", reqs[0]["query"]
    assert sc["templates"] and all("NDA" in t["title"] for t in sc["templates"]), sc["templates"]


def test_get_template(c):
    t = template_named(c, "Mutual NDA")
    res, reqs = c.traced("get_template", {"template_id": t["template_id"]})
    sc = valid_output("get_template", res)
    expect_requests(reqs, [("GET", "/v3/template/" + t["template_id"])])
    n = sc["template"]
    assert n["id"] == t["template_id"] and n["title"] == "Mutual NDA", n
    assert [r["name"] for r in n["roles"]] == ["Disclosing Party", "Receiving Party", "Legal"], n["roles"]
    f = {x["name"]: x for x in n["fields"]}
    assert f["Effective Date"] == {"name": "Effective Date", "type": "text", "role": None, "required": False}, f


def test_account(c):
    res, reqs = c.traced("get_account", {})
    sc = valid_output("get_account", res)
    expect_requests(reqs, [("GET", "/v3/account")])
    a = c.dj("/account")["account"]
    assert sc["account"] == {"id": a["account_id"], "name": None, "email": a["email_address"],
                             "team_id": a["team_id"], "role": a["role_code"], "quotas": a["quotas"]}, sc
    res, reqs = c.traced("get_account", {}, who="solo")
    sc = valid_output("get_account", res)
    assert sc["account"]["email"] == c.solo["email"] and sc["account"]["team_id"] is None, sc


def test_users(c):
    team = c.admin["team_id"]
    res, reqs = c.traced("list_users", {"page_size": 2})
    sc = valid_output("list_users", res)
    expect_requests(reqs, [("GET", "/v3/account"), ("GET", "/v3/team/members/" + team)])
    assert query_of(reqs[1]) == {"page": "1", "page_size": "2"}, reqs[1]["query"]
    direct = c.dj("/team/members/%s?page=1&page_size=2" % team)
    assert [(u["id"], u["email"], u["role"]) for u in sc["users"]] == \
        [(m["account_id"], m["email_address"], m["role"]) for m in direct["team_members"]], sc["users"]
    assert all(u["status"] == "active" and u["team_id"] == team and u["name"] is None for u in sc["users"])
    assert sc["total"] == direct["list_info"]["num_results"] and sc["next_page"] == 2, sc
    res, reqs = c.traced("list_users", {"query": c.member["email"].split("@")[0].upper()})
    sc = valid_output("list_users", res)
    assert [u["email"] for u in sc["users"]] == [c.member["email"]] and sc["total"] is None and sc.get("note"), sc
    # an account off a team is its own only user
    res, reqs = c.traced("list_users", {}, who="solo")
    sc = valid_output("list_users", res)
    expect_requests(reqs, [("GET", "/v3/account")])
    assert [u["id"] for u in sc["users"]] == [c.solo["account_id"]] and sc["total"] == 1 and "not on a team" in sc["note"], sc


def test_get_user(c):
    team = c.admin["team_id"]
    res, reqs = c.traced("get_user", {"user_id": c.member["account_id"]})
    sc = valid_output("get_user", res)
    expect_requests(reqs, [("GET", "/v3/account"), ("GET", "/v3/team/members/" + team)])
    assert query_of(reqs[0]) == {"account_id": c.member["account_id"]}, reqs[0]["query"]
    a = c.dj("/account?account_id=" + c.member["account_id"])["account"]
    role = [m["role"] for m in c.dj("/team/members/%s?page_size=100" % team)["team_members"]
            if m["account_id"] == c.member["account_id"]][0]
    assert sc["user"] == {"id": a["account_id"], "name": None, "email": a["email_address"], "role": role,
                          "status": "active", "team_id": team}, sc
    # the solo account cannot see the team's accounts
    res, reqs = c.traced("get_user", {"user_id": c.member["account_id"]}, who="solo")
    expect_error(res, r"no such item \(404\)")


def test_teams(c):
    team = c.admin["team_id"]
    res, reqs = c.traced("list_teams", {})
    sc = valid_output("list_teams", res)
    expect_requests(reqs, [("GET", "/v3/account"), ("GET", "/v3/team/info")])
    assert query_of(reqs[1]) == {"team_id": team}, reqs[1]["query"]
    info = c.dj("/team/info?team_id=" + team)["team"]
    assert sc["teams"] == [{"id": info["team_id"], "name": info["name"]}] and sc["total"] == 1 \
        and sc["next_page"] is None, sc
    res, reqs = c.traced("list_teams", {"query": "no such team"})
    assert valid_output("list_teams", res)["teams"] == [], res.describe()
    # off a team: an empty list, without asking for a team (Dropbox Sign would answer 404)
    res, reqs = c.traced("list_teams", {}, who="solo")
    sc = valid_output("list_teams", res)
    expect_requests(reqs, [("GET", "/v3/account")])
    assert sc["teams"] == [] and sc["total"] == 0 and "not on a team" in sc["note"], sc


def test_get_team(c):
    team = c.admin["team_id"]
    res, reqs = c.traced("get_team", {"team_id": team})
    sc = valid_output("get_team", res)
    expect_requests(reqs, [("GET", "/v3/team/info"), ("GET", "/v3/team/members/" + team)])
    assert query_of(reqs[0]) == {"team_id": team} and query_of(reqs[1]) == {"page": "1", "page_size": "100"}
    info = c.dj("/team/info?team_id=" + team)["team"]
    members = c.dj("/team/members/%s?page_size=100" % team)["team_members"]
    assert sc["team"]["id"] == team and sc["team"]["name"] == info["name"], sc
    assert [(u["id"], u["email"], u["role"], u["team_name"]) for u in sc["team"]["members"]] == \
        [(m["account_id"], m["email_address"], m["role"], info["name"]) for m in members], sc
    res, reqs = c.traced("get_team", {"team_id": team}, who="solo")
    expect_error(res, r"no such item \(404\)")


def test_no_invalid_output(c):
    log = c.br.stderr_text()
    bad = [ln for ln in log.splitlines() if "tool_output_invalid" in ln]
    assert not bad, "signbridge logged tool_output_invalid: %s" % bad[:3]


def main(t):
    c = Ctx(t)
    order = [
        ("tools/list on %s lists exactly the %d Dropbox Sign tools" % (ROUTE, len(TOOLS)), test_tools_list),
        ("list_documents: page and page_size upstream, the sandbox's requests normalized", test_list_documents),
        ("list_documents: status, query and dates as Dropbox Sign search; other statuses filtered with a note",
         test_list_documents_filters),
        ("get_document: every normalized status matches the sandbox's request", test_get_document),
        ("unknown ids: not found (404) for every tool that takes an id, and no action sent", test_not_found),
        ("ids with URL characters are refused before anything is sent", test_bad_ids),
        ("arguments invalid for the contract: isError naming the field, nothing sent", test_schema_validation),
        ("send_document with URLs: JSON body with file_urls, signers, order, pin, cc, expiry, test_mode; "
         "a retry with the idempotency_key sends nothing", test_send_urls),
        ("send_document with base64 files: multipart with bracket keys, files[i] parts, sms authentication",
         test_send_base64),
        ("send_document with a URL and an upload: the URL fetched without credential, both uploaded",
         test_send_mixed),
        ("send_document validation (access code, email_otp, sms in test mode, URL, PDF, base64, file name): "
         "nothing sent", test_send_validation),
        ("send_from_template: template read, then JSON with template_ids, role signers, ccs, custom_fields",
         test_send_from_template),
        ("send_from_template validation (role, cc roles, prefill field, expiry): no send",
         test_send_from_template_validation),
        ("remind_signers: one POST per signer ({email_address}); whose turn; the hour rule; errors",
         test_remind),
        ("change_signer: signature_id looked up by email, POST update {signature_id,email_address,name}",
         test_change_signer),
        ("extend_expiry: POST update {signature_id, expires_at}; past dates and finished requests refused",
         test_extend_expiry),
        ("download_document: the PDF embedded; audit_trail refused; 409 while files are prepared", test_download),
        ("get_signing_link: signature_id by email, GET embedded/sign_url; redirect_url not sent",
         test_signing_link),
        ("revoke_document: POST cancel, revoke_requested, then gone (410)", test_revoke),
        ("Dropbox Sign 403 for requests of another sender: isError 'refused'", test_forbidden),
        ("list_templates: paging, query, roles and fields as the sandbox has them", test_templates),
        ("get_template: roles (signer and cc) and merge fields", test_get_template),
        ("get_account: id, email, team, role code and quotas", test_account),
        ("list_users: team members (or the account alone off a team)", test_users),
        ("get_user: the account by id, its role from the team's members", test_get_user),
        ("list_teams: the account's team from /team/info (or none, without a 404)", test_teams),
        ("get_team: /team/info and its members", test_get_team),
        ("signbridge logged no tool_output_invalid", test_no_invalid_output),
    ]
    for name, fn in order:
        t.check(name, fn, c)


if __name__ == "__main__":
    uptest.run(main)
