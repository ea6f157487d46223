#!/usr/bin/env python3
"""tools-boldsign: every tool of the BoldSign adapter (src/providers/sb_boldsign.c), end to end.

Starts signbridge-sandbox (--no-rate-limits, --seed 4242) and signbridge (--sandbox-url, port 0,
SIGNBRIDGE_SECRET_FILE in a temp dir, SIGNBRIDGE_LOG_LEVEL=debug) -- tests/upstream/uptest.py --,
initializes an MCP session on /boldsign/mcp with a demo API key from /_sandbox/accounts, and for
every tool the adapter serves:

- calls it and checks the normalized structuredContent: the tool's outputSchema (checked here
  too, independently of signbridge's own check), and values against the seeded data the sandbox
  returns when asked directly;
- checks what reached the sandbox (GET /_sandbox/requests): method, path, query parameters, JSON
  body fields, auth_scheme;
- covers not-found (unknown id -> isError naming "not found"), forbidden (another account's id;
  BoldSign's own 403 body for a non-admin) and validation failures (isError naming the argument,
  nothing sent upstream).

It also proves that none of the known defects of BoldSign's own MCP server (boldsign-mcp 0.0.5,
reference/esign-mcp-peers.md section 3) exists here: date filters are accepted and sent as RFC 3339,
booleans reach BoldSign as JSON booleans, schema defaults are applied, and an upstream error comes
back as isError:true.

Last, a page of documents over the 100,000 characters of text clients take (20 documents of 10
signers with long names are added for it) comes back cut from its end at a whole document, with a
note, its text block still the structured content.

Sending files by URL and by base64 in one document (BoldSign takes files or fileUrls, not both)
makes signbridge fetch the URL itself: a second sandbox with TLS (a throwaway CA from
tests/sandbox/make-test-ca.sh, trusted through SIGNBRIDGE_UPSTREAM_CA_FILE) serves the file.

Standard library only. Prints ok / not ok lines and "N passed, N failed"; exits non-zero on failure.
"""

import atexit
import base64
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "upstream"))

import uptest  # noqa: E402
from uptest import request, short, xkey  # noqa: E402

SOURCE_ROOT = os.environ.get("SB_SOURCE_ROOT") or os.path.join(HERE, "..", "..")
PROVIDER = "boldsign"
REGION = "us"
PATH = "/boldsign/mcp"

EXPECTED_TOOLS = {
    "list_documents", "get_document", "get_document_history", "download_document",
    "get_signing_link", "send_document", "send_from_template", "remind_signers",
    "revoke_document", "change_signer", "extend_expiry", "list_templates", "get_template",
    "list_contacts", "get_contact", "create_contact", "update_contact", "delete_contact",
    "list_users", "get_user", "list_teams", "get_team", "get_account",
}

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24


# ------------------------------------------------------------------------------------------------
# A small JSON Schema checker for the tool contracts (the keywords they use)

SCHEMAS = {}


def schema(tool):
    if tool not in SCHEMAS:
        with open(os.path.join(SOURCE_ROOT, "schemas", "tools", tool + ".json")) as f:
            SCHEMAS[tool] = json.load(f)
    return SCHEMAS[tool]


RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}


def _type_ok(v, t):
    if t == "null":
        return v is None
    if t == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    return isinstance(v, TYPES[t])


def validate(v, s, root, path="$"):
    if "$ref" in s:
        ref = s["$ref"]
        assert ref.startswith("#/$defs/"), "unsupported $ref %s" % ref
        return validate(v, root["$defs"][ref[8:]], root, path)
    t = s.get("type")
    if t is not None:
        ts = t if isinstance(t, list) else [t]
        assert any(_type_ok(v, x) for x in ts), "%s: %r is not of type %s" % (path, short(json.dumps(v), 80), t)
    if "enum" in s:
        assert v in s["enum"], "%s: %r is not one of %s" % (path, v, s["enum"])
    if isinstance(v, str) and s.get("format") == "date-time":
        assert RFC3339.match(v), "%s: %r is not an RFC 3339 date-time" % (path, v)
    if isinstance(v, (int, float)) and not isinstance(v, bool) and "minimum" in s:
        assert v >= s["minimum"], "%s: %r < minimum %r" % (path, v, s["minimum"])
    if isinstance(v, dict):
        for r in s.get("required", []):
            assert r in v, "%s: required property %r missing" % (path, r)
        props = s.get("properties", {})
        ap = s.get("additionalProperties", True)
        for k, x in v.items():
            if k in props:
                validate(x, props[k], root, "%s.%s" % (path, k))
            elif ap is False:
                raise AssertionError("%s: property %r is not allowed" % (path, k))
            elif isinstance(ap, dict):
                validate(x, ap, root, "%s.%s" % (path, k))
    if isinstance(v, list) and "items" in s:
        for i, x in enumerate(v):
            validate(x, s["items"], root, "%s[%d]" % (path, i))


def check_output(tool, res):
    assert not res.is_error, "%s failed: %s" % (tool, res.describe())
    sc = res.structured
    assert isinstance(sc, dict), "%s: no structuredContent: %s" % (tool, res.describe())
    out = schema(tool)["outputSchema"]
    validate(sc, out, out)
    assert sc["provider"] == PROVIDER and sc["region"] == REGION, \
        "%s: provider/region %r/%r" % (tool, sc.get("provider"), sc.get("region"))
    return sc


# ------------------------------------------------------------------------------------------------
# Helpers


def rfc(epoch):
    """The RFC 3339 form signbridge gives BoldSign's epoch seconds (null for <= 0)."""
    if not epoch or epoch <= 0:
        return None
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z")


def same_time(a, b):
    """Two RFC 3339 strings name the same second."""
    if a is None or b is None:
        return a is None and b is None
    def p(x):
        return datetime.datetime.fromisoformat(x.replace("Z", "+00:00")).timestamp()
    return abs(p(a) - p(b)) < 1


def qs(req):
    return urllib.parse.parse_qs(req.get("query") or "", keep_blank_values=True)


def body_json(req):
    b = req.get("body")
    if b is None and req.get("body_base64"):
        b = base64.b64decode(req["body_base64"]).decode("utf-8")
    assert b is not None and not req.get("body_truncated"), \
        "the request body was not logged whole: %s" % short(json.dumps(req), 300)
    return json.loads(b)


def neutral_signer(s):
    st = s.get("status")
    if st == "Completed":
        return "signed"
    if st in ("Declined", "Revoked", "Expired"):
        return st.lower()
    return "viewed" if s.get("isViewed") else "pending"


def neutral_doc(d):
    st = d["status"]
    m = {"Completed": "completed", "Declined": "declined", "Expired": "expired",
         "Revoked": "revoked", "Draft": "draft", "Scheduled": "scheduled"}
    if st in m:
        return m[st]
    return "in_progress" if any(neutral_signer(s) != "pending" for s in d["signerDetails"]) \
        else "sent"


class T:
    """The test context: processes, the session and the direct view of the sandbox."""

    def __init__(self, t, tls):
        self.t, self.sbx, self.br, self.tls = t, t.sbx, t.br, tls
        self.acct = self.sbx.account(PROVIDER, REGION)
        self.other = self.sbx.account(PROVIDER, REGION, 1)
        self.key = self.acct["api_key"]
        self.base = self.acct["base_url"]
        self.s = self.br.session(PATH, xkey(self.key))

    def check(self, name, fn, *a):
        return self.t.check(name, fn, *a)

    def direct(self, method, path, key=None, body=None, expect=(200, 201, 204)):
        """A request straight to the sandbox (to learn the seeded data)."""
        h = [("X-API-KEY", key or self.key)]
        if body is not None:
            h.append(("Content-Type", "application/json"))
        p = urllib.parse.urlsplit(self.base).path + path
        r = request(self.sbx.port, method, p, h, body, timeout=20)
        assert r.status in expect, "direct %s %s: %s" % (method, path, r.describe())
        return r

    def dget(self, path, key=None):
        return self.direct("GET", path, key).json()

    def call(self, tool, args):
        """(ToolResult, [BoldSign requests the call caused])."""
        seq = self.sbx.last_seq()
        res = self.s.call(tool, args, timeout=60)
        return res, self.sbx.requests(since=seq, provider=PROVIDER)

    def one(self, reqs, method, path):
        """The only request, which must be `method path` with the caller's key."""
        assert len(reqs) == 1, "expected 1 request to BoldSign, got %d: %s" % (
            len(reqs), [(q["method"], q["path"]) for q in reqs])
        return self.expect(reqs[0], method, path)

    def expect(self, q, method, path):
        assert (q["method"], q["path"]) == (method, path), \
            "request %s %s, expected %s %s" % (q["method"], q["path"], method, path)
        assert q["auth_scheme"] == "x-api-key", "auth_scheme %r" % q["auth_scheme"]
        assert q["account_id"] == self.acct["account_id"], "account %r" % q["account_id"]
        return q

    def refused(self, tool, args, words):
        """isError naming `words` (each, case-insensitively), and nothing sent to BoldSign."""
        res, reqs = self.call(tool, args)
        assert res.is_error, "%s %r should fail: %s" % (tool, args, res.describe())
        for w in words:
            assert w.lower() in res.text.lower(), "the error does not name %r: %s" % (w, res.text)
        assert not reqs, "%s sent %d request(s) although the arguments were refused: %s" % (
            tool, len(reqs), [(q["method"], q["path"]) for q in reqs])
        return res

    def not_found(self, tool, args, method, path):
        res, reqs = self.call(tool, args)
        assert res.is_error, "%s with an unknown id should fail: %s" % (tool, res.describe())
        assert "not found" in res.text.lower(), "the error does not say not found: %s" % res.text
        assert reqs and reqs[-1]["method"] == method and reqs[-1]["path"] == path and \
            reqs[-1]["status"] == 403, "requests: %s" % [(q["method"], q["path"], q["status"]) for q in reqs]
        return res


# ------------------------------------------------------------------------------------------------
# The tests


def t_tools_list(x):
    def f():
        r, msg = x.s.rpc("tools/list", {})
        names = {t["name"] for t in msg["result"]["tools"]}
        assert names == EXPECTED_TOOLS, "missing %s, extra %s" % (
            sorted(EXPECTED_TOOLS - names), sorted(names - EXPECTED_TOOLS))
    x.check("tools/list on /boldsign/mcp lists exactly the 23 tools the adapter implements", f)


def t_list_documents(x):
    direct = x.dget("/v1/document/list?Page=1&PageSize=100")
    docs = {d["documentId"]: d for d in direct["result"]}
    total = direct["pageDetails"]["totalRecordsCount"]

    def defaults():
        res, reqs = x.call("list_documents", {})
        sc = check_output("list_documents", res)
        q = qs(x.one(reqs, "GET", "/v1/document/list"))
        assert q == {"Page": ["1"], "PageSize": ["20"]}, "query %r (defaults page=1, page_size=20)" % q
        assert sc["page"] == 1 and sc["page_size"] == 20 and sc["total"] == total, sc
        assert sc["next_page"] == (2 if total > 20 else None), sc["next_page"]
        first = [d["documentId"] for d in direct["result"][:20]]
        assert [d["id"] for d in sc["documents"]] == first, "ids differ from the sandbox's page 1"
        for d in sc["documents"]:
            raw = docs[d["id"]]
            assert d["title"] == raw["messageTitle"] and d["provider_status"] == raw["status"], d
            assert d["status"] == neutral_doc(raw), "%s: status %s for %s" % (d["id"], d["status"], raw["status"])
            assert d["created_at"] == rfc(raw["createdDate"]) and d["expires_at"] == rfc(raw["expiryDate"]), d
            assert d["sender"]["email"] == raw["senderDetail"]["emailAddress"], d["sender"]
            assert [s["email"] for s in d["signers"]] == [s["signerEmail"] for s in raw["signerDetails"]]
            assert [s["status"] for s in d["signers"]] == [neutral_signer(s) for s in raw["signerDetails"]]
            assert d["cc"] == [c["emailAddress"] for c in raw["ccDetails"]], d["cc"]
    x.check("list_documents {}: GET /v1/document/list?Page=1&PageSize=20 (defaults applied), the "
            "seeded page 1 normalized", defaults)

    def paging():
        res, reqs = x.call("list_documents", {"page": 2, "page_size": 5})
        sc = check_output("list_documents", res)
        q = qs(x.one(reqs, "GET", "/v1/document/list"))
        assert q["Page"] == ["2"] and q["PageSize"] == ["5"], q
        assert [d["id"] for d in sc["documents"]] == [d["documentId"] for d in direct["result"][5:10]]
        assert sc["page"] == 2 and sc["next_page"] == 3 and sc["total"] == total, sc
    x.check("list_documents page 2 of 5: Page=2&PageSize=5, next_page 3, the sandbox's items 6-10",
            paging)

    def dates_and_status():
        inprog = sorted(d["createdDate"] for d in direct["result"] if d["status"] == "InProgress")
        lo, hi = inprog[1], inprog[-2]
        after = datetime.datetime.fromtimestamp(lo, datetime.timezone(datetime.timedelta(hours=2)))
        args = {"status": ["sent", "in_progress"], "created_after": after.isoformat(),
                "created_before": rfc(hi).replace(".000Z", "Z"), "page_size": 100}
        res, reqs = x.call("list_documents", args)
        sc = check_output("list_documents", res)
        q = qs(x.one(reqs, "GET", "/v1/document/list"))
        assert sorted(q.get("Status", [])) == ["WaitingForMe", "WaitingForOthers"], q
        assert q.get("DateFilterType") == ["SentBetween"], q
        # RFC 3339, normalized to UTC
        assert q.get("StartDate") == [rfc(lo).replace(".000Z", "Z")], q
        assert q.get("EndDate") == [rfc(hi).replace(".000Z", "Z")], q
        want = sorted(d["documentId"] for d in direct["result"]
                      if d["status"] == "InProgress" and lo <= d["createdDate"] <= hi)
        got = sorted(d["id"] for d in sc["documents"])
        assert want and got == want, "documents %s, expected %s" % (got, want)
        assert all(d["status"] in ("sent", "in_progress") for d in sc["documents"])
    x.check("defect check (BoldSign MCP: date filters reject every value): list_documents with "
            "created_after (+02:00) / created_before is accepted, sends DateFilterType=SentBetween "
            "and StartDate/EndDate as RFC 3339 UTC, and returns exactly the documents in range",
            dates_and_status)

    def one_status():
        res, reqs = x.call("list_documents", {"status": ["in_progress"], "page_size": 100})
        sc = check_output("list_documents", res)
        q = qs(x.one(reqs, "GET", "/v1/document/list"))
        assert sorted(q["Status"]) == ["WaitingForMe", "WaitingForOthers"], q
        want = sorted(k for k, d in docs.items() if neutral_doc(d) == "in_progress")
        assert sorted(d["id"] for d in sc["documents"]) == want, sc["documents"]
        assert "note" in sc, "a page filtered by signbridge must carry a note"
        res, reqs = x.call("list_documents", {"status": ["completed", "declined"], "query": "Agreement"})
        sc = check_output("list_documents", res)
        q = qs(x.one(reqs, "GET", "/v1/document/list"))
        assert sorted(q["Status"]) == ["Completed", "Declined"] and q["SearchKey"] == ["Agreement"], q
        want = sorted(k for k, d in docs.items() if d["status"] in ("Completed", "Declined")
                      and "agreement" in d["messageTitle"].lower())
        assert want and sorted(d["id"] for d in sc["documents"]) == want, sc["documents"]
    x.check("list_documents status filters: in_progress -> Status=WaitingForMe&Status=WaitingForOthers "
            "(sent vs in_progress split by signbridge, with a note); completed+declined and query "
            "-> Status=Completed&Status=Declined&SearchKey=", one_status)

    def invalid():
        x.refused("list_documents", {"page_size": 500}, ["page_size"])
        x.refused("list_documents", {"status": ["signed"]}, ["status"])
        x.refused("list_documents", {"created_after": "yesterday"}, ["created_after"])
    x.check("list_documents with page_size 500, an unknown status, a non-RFC 3339 date: isError "
            "naming the argument, nothing sent", invalid)


def find_doc(x, pred):
    for d in x.dget("/v1/document/list?Page=1&PageSize=100")["result"]:
        if pred(d):
            return d
    raise AssertionError("no seeded document matches")


def t_get_document(x):
    d = find_doc(x, lambda d: d["status"] == "InProgress" and
                 any(s["status"] == "Completed" for s in d["signerDetails"]))
    did = d["documentId"]

    def ok():
        props = x.dget("/v1/document/properties?documentId=" + did)
        res, reqs = x.call("get_document", {"document_id": did})
        sc = check_output("get_document", res)
        q = x.one(reqs, "GET", "/v1/document/properties")
        assert qs(q) == {"documentId": [did]}, qs(q)
        doc = sc["document"]
        assert doc["id"] == did and doc["title"] == props["messageTitle"], doc
        assert doc["status"] == "in_progress" and doc["provider_status"] == "InProgress", doc
        assert doc["message"] == props["documentDescription"], doc["message"]
        assert doc["created_at"] == rfc(props["createdDate"]), doc["created_at"]
        assert doc["updated_at"] == rfc(props["activityDate"]), doc["updated_at"]
        assert doc["expires_at"] == rfc(props["expiryDate"]), doc["expires_at"]
        assert doc["sender"] == {"name": props["senderDetail"]["name"],
                                 "email": props["senderDetail"]["emailAddress"]}, doc["sender"]
        hist = props["documentHistory"]
        for s, raw in zip(doc["signers"], props["signerDetails"]):
            assert s["id"] == raw["id"] and s["name"] == raw["signerName"], s
            assert s["order"] == raw["order"] and s["provider_status"] == raw["status"], s
            assert s["status"] == neutral_signer(raw), s
            signed = [h["timestamp"] for h in hist if h["action"] == "Signed" and
                      h["email"].lower() == raw["signerEmail"].lower()]
            assert s["signed_at"] == (rfc(signed[-1]) if signed else None), s
        assert any(s["status"] == "signed" and s["signed_at"] for s in doc["signers"])
    x.check("get_document: GET /v1/document/properties?documentId=, title/status/times/sender/"
            "signers (signed_at from the audit trail) match the sandbox", ok)

    x.check("get_document with an unknown id: isError saying not found (BoldSign's 403 Invalid "
            "Document ID)", lambda: x.not_found("get_document", {"document_id": UNKNOWN_ID},
                                                "GET", "/v1/document/properties"))

    def foreign():
        od = x.dget("/v1/document/list?Page=1&PageSize=1", key=x.other["api_key"])["result"][0]
        res = x.not_found("get_document", {"document_id": od["documentId"]}, "GET",
                          "/v1/document/properties")
        assert od["documentId"] not in json.dumps(res.structured or {}), res.describe()
    x.check("get_document on another account's document: refused by BoldSign (403), isError, "
            "nothing of it leaks", foreign)

    x.check("get_document with document_id \"../x\": isError naming document_id, nothing sent",
            lambda: x.refused("get_document", {"document_id": "../x"}, ["document_id"]))


def t_history(x):
    d = find_doc(x, lambda d: d["status"] == "Completed" and len(d["signerDetails"]) > 1)
    did = d["documentId"]

    def ok():
        props = x.dget("/v1/document/properties?documentId=" + did)
        res, reqs = x.call("get_document_history", {"document_id": did})
        sc = check_output("get_document_history", res)
        assert qs(x.one(reqs, "GET", "/v1/document/properties")) == {"documentId": [did]}
        hist = sorted(props["documentHistory"], key=lambda h: h["timestamp"])
        ev = sc["events"]
        assert sc["document_id"] == did and len(ev) == len(hist), (len(ev), len(hist))
        times = [e["time"] for e in ev]
        assert times == sorted(times), "events are not oldest first"
        amap = {"Sent": "sent", "Viewed": "viewed", "Signed": "signed", "Completed": "completed"}
        for e, h in zip(ev, hist):
            assert e["time"] == rfc(h["timestamp"]), (e, h)
            assert e["actor_email"] == h["email"] and e["actor_name"] == h["name"], (e, h)
            assert e["ip_address"] == h.get("ipaddress"), (e, h)
            if h["action"] in amap:
                assert e["action"] == amap[h["action"]], (e, h)
        assert ev[0]["action"] == "sent" and "signed" in [e["action"] for e in ev]
    x.check("get_document_history: documentHistory of /v1/document/properties, oldest first, "
            "actions sent/viewed/signed/completed, actor, IP", ok)
    x.check("get_document_history with an unknown id: isError saying not found",
            lambda: x.not_found("get_document_history", {"document_id": UNKNOWN_ID}, "GET",
                                "/v1/document/properties"))


def embedded_blob(res):
    for c in res.raw.get("content", []):
        if c.get("type") == "resource":
            return base64.b64decode(c["resource"]["blob"]), c["resource"]
    raise AssertionError("no embedded resource in %s" % res.describe())


def t_download(x):
    did = find_doc(x, lambda d: d["status"] == "Completed")["documentId"]

    def doc():
        want = x.direct("GET", "/v1/document/download?documentId=" + did).body
        res, reqs = x.call("download_document", {"document_id": did})
        sc = check_output("download_document", res)
        assert qs(x.one(reqs, "GET", "/v1/document/download")) == {"documentId": [did]}
        data, rr = embedded_blob(res)
        assert data[:5] == b"%PDF-" and rr["mimeType"] == "application/pdf", rr
        assert sc["kind"] == "document" and sc["delivery"] == "embedded", sc
        assert sc["size_bytes"] == len(data) and abs(len(data) - len(want)) < 64, (sc, len(want))
        assert sc["mime_type"] == "application/pdf" and sc["file_name"].endswith(".pdf"), sc
    x.check("defect check (defaults not applied): download_document without kind downloads the "
            "document (GET /v1/document/download), embedded PDF with size and type", doc)

    def audit():
        res, reqs = x.call("download_document", {"document_id": did, "kind": "audit_trail"})
        sc = check_output("download_document", res)
        assert qs(x.one(reqs, "GET", "/v1/document/downloadAuditLog")) == {"documentId": [did]}
        data, _ = embedded_blob(res)
        assert data[:5] == b"%PDF-" and sc["kind"] == "audit_trail", sc
        assert b"Audit Trail" in data or len(data) > 100, "not the audit trail"
    x.check("download_document kind audit_trail: GET /v1/document/downloadAuditLog, embedded PDF",
            audit)
    x.check("download_document with an unknown id: isError saying not found",
            lambda: x.not_found("download_document", {"document_id": UNKNOWN_ID}, "GET",
                                "/v1/document/download"))
    x.check("download_document with kind \"zip\": isError naming kind, nothing sent",
            lambda: x.refused("download_document", {"document_id": did, "kind": "zip"}, ["kind"]))


def signer_turn(d):
    """(document, email of a signer whose turn it is) for a sent, unsigned document."""
    order = d.get("enableSigningOrder")
    pending = [s for s in d["signerDetails"] if s["status"] == "NotCompleted"]
    if not pending:
        return None
    if order:
        pending.sort(key=lambda s: s["order"])
    return pending[0]["signerEmail"]


def t_signing_link(x):
    d = find_doc(x, lambda d: d["status"] == "InProgress" and d["expiryDate"] > time.time() + 86400
                 and signer_turn(d))
    did, email = d["documentId"], signer_turn(d)

    def ok():
        res, reqs = x.call("get_signing_link", {"document_id": did, "signer_email": email,
                                                "redirect_url": "https://example.com/done?x=1"})
        sc = check_output("get_signing_link", res)
        q = qs(x.one(reqs, "GET", "/v1/document/getEmbeddedSignLink"))
        assert q == {"DocumentId": [did], "SignerEmail": [email],
                     "RedirectUrl": ["https://example.com/done?x=1"]}, q
        assert sc["url"].startswith(x.base + "/app/document/sign?"), sc["url"]
        assert sc["document_id"] == did and sc["signer_email"] == email and sc["expires_at"] is None
        page = request(x.sbx.port, "GET", urllib.parse.urlsplit(sc["url"]).path + "?" +
                       urllib.parse.urlsplit(sc["url"]).query)
        assert page.status == 200, page.describe()
    x.check("get_signing_link: GET /v1/document/getEmbeddedSignLink?DocumentId=&SignerEmail=&"
            "RedirectUrl=, the signLink works", ok)
    x.check("get_signing_link with redirect_url http://: isError naming redirect_url, nothing sent",
            lambda: x.refused("get_signing_link", {"document_id": did, "signer_email": email,
                                                   "redirect_url": "http://example.com/"},
                              ["redirect_url"]))
    x.check("get_signing_link without signer_email: isError naming signer_email, nothing sent",
            lambda: x.refused("get_signing_link", {"document_id": did}, ["signer_email"]))
    x.check("get_signing_link with an unknown id: isError saying not found",
            lambda: x.not_found("get_signing_link", {"document_id": UNKNOWN_ID,
                                                     "signer_email": email},
                                "GET", "/v1/document/getEmbeddedSignLink"))


def t_templates(x):
    direct = x.dget("/v1/template/list?Page=1&PageSize=100")

    def listing():
        res, reqs = x.call("list_templates", {})
        sc = check_output("list_templates", res)
        q = qs(x.one(reqs, "GET", "/v1/template/list"))
        assert q == {"Page": ["1"], "PageSize": ["20"], "TemplateType": ["all"]}, q
        assert sc["total"] == direct["pageDetails"]["totalRecordsCount"], sc["total"]
        assert [t["id"] for t in sc["templates"]] == [t["documentId"] for t in direct["result"]]
        for t, raw in zip(sc["templates"], direct["result"]):
            assert t["title"] == raw["templateName"] and t["description"] == raw["templateDescription"]
            assert [r["name"] for r in t["roles"]] == [s["signerRole"] for s in raw["signerDetails"]]
            assert [r["order"] for r in t["roles"]] == [s["order"] for s in raw["signerDetails"]]
            assert t["owner"]["email"] == raw["senderDetail"]["emailAddress"], t["owner"]
            assert t["created_at"] == rfc(raw["createdDate"]), t
        kinds = {r["kind"] for t in sc["templates"] for r in t["roles"]}
        assert kinds <= {"signer", "reviewer"}, kinds
    x.check("defect check (defaults not applied): list_templates {} sends Page=1&PageSize=20&"
            "TemplateType=all; templates with roles match the sandbox", listing)

    def search():
        res, reqs = x.call("list_templates", {"query": "NDA", "page_size": 2})
        sc = check_output("list_templates", res)
        q = qs(x.one(reqs, "GET", "/v1/template/list"))
        assert q["SearchKey"] == ["NDA"] and q["PageSize"] == ["2"], q
        assert sc["templates"] and all("nda" in t["title"].lower() for t in sc["templates"]), sc
    x.check("list_templates query: SearchKey=", search)

    tpl = next(t for t in direct["result"] if t["templateName"] == "Mutual NDA")

    def get():
        props = x.dget("/v1/template/properties?templateId=" + tpl["documentId"])
        res, reqs = x.call("get_template", {"template_id": tpl["documentId"]})
        sc = check_output("get_template", res)
        assert qs(x.one(reqs, "GET", "/v1/template/properties")) == {"templateId": [tpl["documentId"]]}
        t = sc["template"]
        assert t["id"] == props["templateId"] and t["title"] == props["title"], t
        assert [(r["name"], r["order"]) for r in t["roles"]] == \
            [(r["name"], r["signerOrder"]) for r in props["roles"]], t["roles"]
        want = [(f["id"], r["name"], f["isRequired"]) for r in props["roles"] for f in r["formFields"]]
        assert [(f["name"], f["role"], f["required"]) for f in t["fields"]] == want, t["fields"]
        assert t["owner"]["email"] == props["createdBy"]["emailAddress"], t["owner"]
    x.check("get_template: GET /v1/template/properties?templateId=, roles (order, defaults) and "
            "fields per role match the sandbox", get)
    x.check("get_template with an unknown id: isError saying not found (403 Invalid Template ID)",
            lambda: x.not_found("get_template", {"template_id": UNKNOWN_ID}, "GET",
                                "/v1/template/properties"))


def phone_of(c):
    p = c.get("phoneNumber") or {}
    if not p.get("number"):
        return None
    return "%s %s" % (p["countryCode"], p["number"])


def t_contacts(x):
    direct = x.dget("/v1/contacts/list?Page=1&PageSize=100&ContactType=AllContacts")

    def listing():
        res, reqs = x.call("list_contacts", {"page_size": 4, "page": 2})
        sc = check_output("list_contacts", res)
        q = qs(x.one(reqs, "GET", "/v1/contacts/list"))
        assert q == {"Page": ["2"], "PageSize": ["4"], "ContactType": ["AllContacts"]}, q
        total = direct["pageDetails"]["totalRecordsCount"]
        assert sc["total"] == total and sc["next_page"] == (3 if total > 8 else None), sc
        for c, raw in zip(sc["contacts"], direct["result"][4:8]):
            assert c["id"] == raw["id"] and c["name"] == raw["name"] and c["email"] == raw["email"]
            assert c["phone"] == phone_of(raw) and c["company"] == raw.get("companyName"), c
            assert c["job_title"] == raw.get("jobTitle"), c
        assert len(sc["contacts"]) == len(direct["result"][4:8])
    x.check("defect check (defaults not applied): list_contacts sends ContactType=AllContacts, "
            "Page, PageSize; contacts (phone \"+cc number\") match the sandbox", listing)

    def search():
        name = direct["result"][0]["name"].split()[0]
        res, reqs = x.call("list_contacts", {"query": name})
        sc = check_output("list_contacts", res)
        assert qs(x.one(reqs, "GET", "/v1/contacts/list"))["SearchKey"] == [name]
        assert sc["contacts"] and all(name.lower() in (c["name"] + c["email"]).lower()
                                      for c in sc["contacts"])
    x.check("list_contacts query: SearchKey=", search)

    raw = next(c for c in direct["result"] if phone_of(c))

    def get():
        res, reqs = x.call("get_contact", {"contact_id": raw["id"]})
        sc = check_output("get_contact", res)
        assert qs(x.one(reqs, "GET", "/v1/contacts/get")) == {"id": [raw["id"]]}
        assert sc["contact"] == {"id": raw["id"], "name": raw["name"], "email": raw["email"],
                                 "phone": phone_of(raw), "company": raw.get("companyName"),
                                 "job_title": raw.get("jobTitle")}, sc["contact"]
    x.check("get_contact: GET /v1/contacts/get?id=, the contact normalized", get)
    x.check("get_contact with an unknown id: isError saying not found",
            lambda: x.not_found("get_contact", {"contact_id": UNKNOWN_ID}, "GET", "/v1/contacts/get"))

    made = {}

    def create():
        args = {"name": "Quinn Tester", "email": "quinn.tester@example.org",
                "phone": "+44 20 7946 0958", "company": "Tester Ltd", "job_title": "QA"}
        res, reqs = x.call("create_contact", args)
        sc = check_output("create_contact", res)
        q = x.one(reqs, "POST", "/v1/contacts/create")
        b = body_json(q)
        assert isinstance(b, list) and len(b) == 1, "the body must be an array: %r" % b
        assert b[0] == {"name": "Quinn Tester", "email": "quinn.tester@example.org",
                        "phoneNumber": {"countryCode": "+44", "number": "2079460958"},
                        "companyName": "Tester Ltd", "jobTitle": "QA"}, b
        assert q["status"] == 201 and sc["outcome"] == "done", sc
        c = sc["contact"]
        assert c["email"] == args["email"] and c["phone"] == "+44 2079460958", c
        got = x.dget("/v1/contacts/get?id=" + c["id"])
        assert got["email"] == args["email"] and got["companyName"] == "Tester Ltd", got
        made["id"] = c["id"]
    x.check("create_contact: POST /v1/contacts/create with an array body (phone split into "
            "countryCode/number), 201 createdContacts -> the contact with its new id", create)
    x.check("create_contact with phone \"555-1234\": isError naming phone, nothing sent",
            lambda: x.refused("create_contact", {"name": "A", "email": "a@example.org",
                                                 "phone": "555-1234"}, ["phone"]))
    x.check("create_contact without email: isError naming email, nothing sent",
            lambda: x.refused("create_contact", {"name": "A"}, ["email"]))

    def update():
        cid = made["id"]
        res, reqs = x.call("update_contact", {"contact_id": cid, "job_title": "Head of QA"})
        sc = check_output("update_contact", res)
        assert len(reqs) == 2, [(q["method"], q["path"]) for q in reqs]
        assert qs(x.expect(reqs[0], "GET", "/v1/contacts/get")) == {"id": [cid]}
        q = x.expect(reqs[1], "PUT", "/v1/contacts/update")
        assert qs(q) == {"id": [cid]}
        b = body_json(q)
        assert b == {"name": "Quinn Tester", "email": "quinn.tester@example.org",
                     "phoneNumber": {"countryCode": "+44", "number": "2079460958"},
                     "companyName": "Tester Ltd", "jobTitle": "Head of QA"}, b
        assert sc["contact"]["job_title"] == "Head of QA" and sc["contact"]["company"] == "Tester Ltd"
        got = x.dget("/v1/contacts/get?id=" + cid)
        assert got["jobTitle"] == "Head of QA" and got["phoneNumber"]["number"] == "2079460958", got
    x.check("update_contact (job_title only): GET then PUT /v1/contacts/update?id= with the whole "
            "contact, the fields left out keep their value", update)

    def update_missing():
        res, reqs = x.call("update_contact", {"contact_id": UNKNOWN_ID, "name": "X"})
        assert res.is_error and "not found" in res.text.lower(), res.describe()
        assert [(q["method"], q["path"]) for q in reqs] == [("GET", "/v1/contacts/get")], reqs
    x.check("update_contact with an unknown id: isError saying not found, nothing written", update_missing)
    x.check("update_contact with only contact_id: isError (nothing to change), nothing sent",
            lambda: x.refused("update_contact", {"contact_id": UNKNOWN_ID}, ["propert"]))

    def delete():
        cid = made["id"]
        res, reqs = x.call("delete_contact", {"contact_id": cid})
        sc = check_output("delete_contact", res)
        assert qs(x.one(reqs, "DELETE", "/v1/contacts/delete")) == {"id": [cid]}
        assert sc["deleted"] is True and sc["contact_id"] == cid and sc["outcome"] == "done", sc
        x.direct("GET", "/v1/contacts/get?id=" + cid, expect=(403,))
    x.check("delete_contact: DELETE /v1/contacts/delete?id= (204), the contact is gone", delete)
    x.check("delete_contact with an unknown id: isError saying not found",
            lambda: x.not_found("delete_contact", {"contact_id": UNKNOWN_ID}, "DELETE",
                                "/v1/contacts/delete"))


def user_name(u):
    return " ".join(p for p in (u.get("firstName"), u.get("lastName")) if p)


def t_users_teams_account(x):
    users = x.dget("/v1/users/list?Page=1&PageSize=100")["result"]

    def ulist():
        res, reqs = x.call("list_users", {})
        sc = check_output("list_users", res)
        assert qs(x.one(reqs, "GET", "/v1/users/list")) == {"Page": ["1"], "PageSize": ["20"]}
        assert sc["total"] is None and sc["next_page"] is None, sc  # users/list reports no total
        for u, raw in zip(sc["users"], users):
            assert u["id"] == raw["userId"] and u["email"] == raw["email"], u
            assert u["name"] == user_name(raw) and u["role"] == raw["role"], u
            assert u["status"] == raw["userStatus"] and u["team_id"] == raw["teamId"], u
            assert u["team_name"] == raw["teamName"] and u["created_at"] == rfc(raw["createdDate"])
        assert len(sc["users"]) == len(users)
        res, reqs = x.call("list_users", {"query": users[1]["lastName"], "page_size": 3})
        sc = check_output("list_users", res)
        q = qs(x.one(reqs, "GET", "/v1/users/list"))
        assert q["Search"] == [users[1]["lastName"]] and q["PageSize"] == ["3"], q
        assert users[1]["userId"] in [u["id"] for u in sc["users"]], sc
    x.check("list_users: GET /v1/users/list?Page&PageSize[&Search], users normalized (no total: "
            "BoldSign reports none)", ulist)

    def uget():
        raw = users[2]
        res, reqs = x.call("get_user", {"user_id": raw["userId"]})
        sc = check_output("get_user", res)
        assert qs(x.one(reqs, "GET", "/v1/users/get")) == {"userId": [raw["userId"]]}
        assert sc["user"]["email"] == raw["email"] and sc["user"]["role"] == raw["role"], sc
    x.check("get_user: GET /v1/users/get?userId=", uget)
    x.check("get_user with an unknown id: isError saying not found",
            lambda: x.not_found("get_user", {"user_id": UNKNOWN_ID}, "GET", "/v1/users/get"))

    teams = x.dget("/v1/teams/list?Page=1&PageSize=100")["results"]

    def tlist():
        res, reqs = x.call("list_teams", {"query": teams[0]["teamName"][:3]})
        sc = check_output("list_teams", res)
        q = qs(x.one(reqs, "GET", "/v1/teams/list"))
        assert q == {"Page": ["1"], "PageSize": ["20"], "SearchKey": [teams[0]["teamName"][:3]]}, q
        assert teams[0]["teamId"] in [t["id"] for t in sc["teams"]], sc
        res, reqs = x.call("list_teams", {})
        sc = check_output("list_teams", res)
        assert [(t["id"], t["name"], t["created_at"]) for t in sc["teams"]] == \
            [(t["teamId"], t["teamName"], rfc(t["createdDate"])) for t in teams], sc["teams"]
    x.check("list_teams: GET /v1/teams/list (the \"results\" envelope), SearchKey=", tlist)

    def tget():
        raw = x.dget("/v1/teams/get?teamId=" + teams[0]["teamId"])
        res, reqs = x.call("get_team", {"team_id": teams[0]["teamId"]})
        sc = check_output("get_team", res)
        assert qs(x.one(reqs, "GET", "/v1/teams/get")) == {"teamId": [teams[0]["teamId"]]}
        t = sc["team"]
        assert t["id"] == raw["teamId"] and t["name"] == raw["teamName"], t
        assert [(m["id"], m["email"], m["role"], m["status"], m["name"]) for m in t["members"]] == \
            [(u["userId"], u["email"], u["userRole"], u["userStatus"], user_name(u))
             for u in raw["users"]], t["members"]
    x.check("get_team: GET /v1/teams/get?teamId=, members with userRole/userStatus", tget)
    x.check("get_team with an unknown id: isError saying not found",
            lambda: x.not_found("get_team", {"team_id": UNKNOWN_ID}, "GET", "/v1/teams/get"))

    def forbidden():
        msg = "Unauthorized request: only account admins and team admins can view teams."
        fid = x.sbx.add_fault(provider=PROVIDER, region=REGION, route="/v1/teams/list",
                              mode="error", status=403, message=msg, count=1)
        try:
            res, reqs = x.call("list_teams", {})
        finally:
            x.sbx.ctl("DELETE", "/_sandbox/faults/%s" % fid, expect=(200, 204, 404))
        assert res.is_error, res.describe()
        assert "403" in res.text and "only account admins" in res.text, res.text
        assert len(reqs) == 1 and reqs[0]["status"] == 403, reqs
    x.check("list_teams refused for a non-admin (BoldSign's 403 {\"error\"} body): isError with "
            "BoldSign's own message", forbidden)

    def account():
        credits = x.dget("/v1/plan/apiCreditsCount")["BalanceCredits"]
        res, reqs = x.call("get_account", {})
        sc = check_output("get_account", res)
        assert [(q["method"], q["path"]) for q in reqs] == \
            [("GET", "/v1/users/list"), ("GET", "/v1/plan/apiCreditsCount")], reqs
        for q in reqs:
            x.expect(q, q["method"], q["path"])
        assert qs(reqs[0]) == {"Page": ["1"], "PageSize": ["100"]}, qs(reqs[0])
        a = sc["account"]
        assert a["email"] == x.acct["email"] and a["id"] == x.acct["user_id"], a
        admin = next(u for u in users if u["userId"] == x.acct["user_id"])
        assert a["role"] == "Admin" and a["name"] == user_name(admin), a
        assert a["team_id"] == admin["teamId"], a
        assert a["quotas"] == {"BalanceCredits": credits}, a["quotas"]
    x.check("get_account: the account admin (GET /v1/users/list) and the credit balance (GET "
            "/v1/plan/apiCreditsCount)", account)


def wait_visible(x, did, timeout=6.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = x.direct("GET", "/v1/document/properties?documentId=" + did, expect=(200, 403))
        if r.status == 200:
            return r.json()
        time.sleep(0.25)
    raise AssertionError("document %s never became visible" % did)


def t_send_document(x):
    sent = {}

    def b64_files():
        args = {"title": "Tools test NDA", "message": "Please sign.",
                "cc": ["cc.person@example.org"], "expires_in_days": 30,
                "files": [{"base64": base64.b64encode(PDF).decode(), "name": "nda.pdf"}],
                "signers": [{"name": "Ann Signer", "email": "ann@example.org"},
                            {"name": "Bob Signer", "email": "bob@example.org",
                             "authentication": {"type": "email_otp"}}]}
        res, reqs = x.call("send_document", args)
        sc = check_output("send_document", res)
        q = x.one(reqs, "POST", "/v1/document/send")
        assert q["content_type"].startswith("application/json") and q["status"] == 201, q
        b = body_json(q)
        assert b["enableSigningOrder"] is False, "enableSigningOrder %r: a JSON boolean false " \
            "(signing_order's default) was expected" % b.get("enableSigningOrder")
        assert b["title"] == args["title"] and b["message"] == args["message"], b
        assert b["cc"] == [{"emailAddress": "cc.person@example.org"}], b["cc"]
        assert b["expiryDateType"] == "Days" and b["expiryValue"] == 30, b
        assert b["files"] == ["data:application/pdf;base64," + args["files"][0]["base64"]], b["files"]
        assert "fileUrls" not in b, b
        assert b["signers"] == [
            {"name": "Ann Signer", "emailAddress": "ann@example.org", "signerType": "Signer",
             "authenticationType": "None"},
            {"name": "Bob Signer", "emailAddress": "bob@example.org", "signerType": "Signer",
             "authenticationType": "EmailOTP"}], b["signers"]
        assert sc["status"] == "sent" and sc["outcome"] == "done" and sc["document_id"], sc
        props = wait_visible(x, sc["document_id"])
        assert props["messageTitle"] == args["title"], props["messageTitle"]
        sent["id"] = sc["document_id"]
    x.check("defect check (booleans as strings, defaults not applied): send_document with a base64 "
            "PDF: POST /v1/document/send JSON, files as a data URI, enableSigningOrder a JSON "
            "false (the default), cc/expiry/authentication mapped; 201 -> status sent", b64_files)

    def url_files():
        args = {"title": "Ordered", "signing_order": True,
                "files": [{"url": "https://files.example.com/contract.pdf"}],
                "signers": [{"name": "C1", "email": "c1@example.org",
                             "authentication": {"type": "access_code", "access_code": "4711"}},
                            {"name": "C2", "email": "c2@example.org",
                             "authentication": {"type": "sms_otp", "phone": "+1 555 010 2030"}},
                            {"name": "C3", "email": "c3@example.org", "order": 3}]}
        res, reqs = x.call("send_document", args)
        sc = check_output("send_document", res)
        b = body_json(x.one(reqs, "POST", "/v1/document/send"))
        assert b["enableSigningOrder"] is True, b.get("enableSigningOrder")
        assert b["fileUrls"] == ["https://files.example.com/contract.pdf"] and "files" not in b, b
        s1, s2, s3 = b["signers"]
        assert s1["signerOrder"] == 1 and s2["signerOrder"] == 2 and s3["signerOrder"] == 3, b
        assert s1["authenticationType"] == "AccessCode" and s1["authenticationCode"] == "4711", s1
        assert s2["authenticationType"] == "SMSOTP" and \
            s2["phoneNumber"] == {"countryCode": "+1", "number": "5550102030"}, s2
        assert sc["status"] == "sent", sc
        props = wait_visible(x, sc["document_id"])
        assert props["enableSigningOrder"] is True, props["enableSigningOrder"]
    x.check("send_document with a file URL and signing_order: fileUrls (BoldSign downloads it), "
            "enableSigningOrder a JSON true, signerOrder, AccessCode and SMSOTP authentication",
            url_files)

    base = {"title": "X", "files": [{"base64": base64.b64encode(PDF).decode(), "name": "a.pdf"}],
            "signers": [{"name": "A", "email": "a@example.org"}]}

    def invalid():
        x.refused("send_document", dict(base, test_mode=True), ["test_mode"])
        x.refused("send_document", dict(base, files=[{"base64": base64.b64encode(b"hello world").decode(),
                                                      "name": "a.pdf"}]), ["files[0]"])
        x.refused("send_document", dict(base, files=[{"base64": "!!!notbase64", "name": "a.pdf"}]),
                  ["files[0]"])
        x.refused("send_document", dict(base, files=[{"url": "http://example.com/a.pdf"}]),
                  ["files[0].url"])
        x.refused("send_document", dict(base, signers=[{"name": "A", "email": "a@example.org",
                                                        "authentication": {"type": "access_code"}}]),
                  ["signers[0].authentication.access_code"])
        x.refused("send_document", dict(base, signers=[{"name": "A", "email": "a@example.org",
                                                        "authentication": {"type": "sms_otp",
                                                                           "phone": "12"}}]),
                  ["phone"])
        x.refused("send_document", {"title": "X", "files": base["files"]}, ["signers"])
        x.refused("send_document", dict(base, signers=[{"name": "A", "email": "not-an-email"}]),
                  ["email"])
    x.check("send_document refusals (test_mode, not a PDF, bad base64, http URL, access_code "
            "missing, bad phone, no signers, bad email): isError naming the argument, nothing "
            "sent", invalid)

    def upstream_error():
        fid = x.sbx.add_fault(provider=PROVIDER, region=REGION, route="/v1/document/send",
                              mode="error", status=422, message="The file is password protected.",
                              count=1)
        try:
            res, reqs = x.call("send_document", base)
        finally:
            x.sbx.ctl("DELETE", "/_sandbox/faults/%s" % fid, expect=(200, 204, 404))
        assert res.is_error is True and res.raw.get("isError") is True, res.describe()
        assert "422" in res.text and "password protected" in res.text, res.text
        assert len(reqs) == 1, "an action must be sent once, got %d" % len(reqs)
    x.check("defect check (upstream errors returned as successes): BoldSign's 422 on send comes "
            "back isError:true with BoldSign's message, sent once", upstream_error)

    if x.tls is None:
        x.t.checks.ok("send_document mixing URL and base64 files: SKIPPED (no openssl for the TLS "
                      "file server)")
        return

    def mixed():
        url = x.tls.file_url()
        seq_tls = x.tls.last_seq()
        args = dict(base, title="Mixed files",
                    files=[{"url": url}, {"base64": base64.b64encode(PNG).decode(), "name": "p.png",
                                          "mime_type": "image/png"}])
        res, reqs = x.call("send_document", args)
        sc = check_output("send_document", res)
        fetched = [q for q in x.tls.requests(since=seq_tls)]
        assert len(fetched) == 1 and fetched[0]["method"] == "GET", fetched
        assert fetched[0]["auth_scheme"] == "none", \
            "the caller's file URL got a credential (%s)" % fetched[0]["auth_scheme"]
        assert fetched[0]["path"] == urllib.parse.urlsplit(url).path.split("/global", 1)[1], fetched[0]
        b = body_json(x.one(reqs, "POST", "/v1/document/send"))
        assert "fileUrls" not in b and len(b["files"]) == 2, b.keys()
        f0 = b["files"][0]
        assert f0.startswith("data:application/pdf;base64,"), f0[:60]
        assert base64.b64decode(f0.split(",", 1)[1])[:5] == b"%PDF-", "files[0] is not the fetched PDF"
        assert b["files"][1] == "data:image/png;base64," + base64.b64encode(PNG).decode(), b["files"][1][:80]
        assert sc["status"] == "sent", sc
    x.check("send_document mixing a URL and a base64 file: signbridge fetches the URL itself with "
            "no credential (BoldSign takes files or fileUrls, not both) and sends both as data "
            "URIs, in order", mixed)

    def mixed_bad():
        png = {"base64": base64.b64encode(PNG).decode(), "name": "p.png"}
        not_a_file = "https://127.0.0.1:%d/_sandbox/health" % x.tls.port
        res, reqs = x.call("send_document", dict(base, files=[{"url": not_a_file}, png]))
        assert res.is_error and "files[0].url" in res.text, res.describe()
        assert not reqs, "BoldSign got %s" % [(q["method"], q["path"]) for q in reqs]
        gone = "https://127.0.0.1:%d/dropboxsign/global/s3/nosuchtoken/x.pdf" % x.tls.port
        res, reqs = x.call("send_document", dict(base, files=[png, {"url": gone}]))
        assert res.is_error, res.describe()
        assert not reqs, "BoldSign got %s" % [(q["method"], q["path"]) for q in reqs]
    x.check("send_document mixing files, when a URL gives no PDF/DOCX/PNG/JPEG or fails: isError, "
            "nothing sent to BoldSign", mixed_bad)


def t_send_from_template(x):
    tpls = {t["templateName"]: t for t in x.dget("/v1/template/list?Page=1&PageSize=100")["result"]}
    nda = tpls["Mutual NDA"]["documentId"]

    def ok():
        args = {"template_id": nda, "title": "NDA for Acme", "message": "Sign please",
                "cc": ["legal@example.org"], "expires_in_days": 14,
                "signers": [{"role": "Receiving Party", "name": "Rita R", "email": "rita@example.org"},
                            {"role": "disclosing party", "name": "Dan D", "email": "dan@example.org"}],
                "prefill": [{"field": "CompanyName", "value": "Acme Inc"}]}
        res, reqs = x.call("send_from_template", args)
        sc = check_output("send_from_template", res)
        assert [(q["method"], q["path"]) for q in reqs] == \
            [("GET", "/v1/template/properties"), ("POST", "/v1/template/send")], reqs
        for q in reqs:
            x.expect(q, q["method"], q["path"])
            assert qs(q) == {"templateId": [nda]}, qs(q)
        b = body_json(reqs[1])
        assert b["title"] == "NDA for Acme" and b["message"] == "Sign please", b
        assert b["cc"] == [{"emailAddress": "legal@example.org"}], b
        assert b["expiryDateType"] == "Days" and b["expiryValue"] == 14, b
        assert b["roles"] == [
            {"roleIndex": 1, "signerName": "Dan D", "signerEmail": "dan@example.org",
             "existingFormFields": [{"id": "CompanyName", "value": "Acme Inc"}]},
            {"roleIndex": 2, "signerName": "Rita R", "signerEmail": "rita@example.org"}], b["roles"]
        assert sc["status"] == "sent" and sc["outcome"] == "done", sc
        props = wait_visible(x, sc["document_id"])
        emails = [s["signerEmail"] for s in props["signerDetails"]]
        assert emails == ["dan@example.org", "rita@example.org"], emails
    x.check("send_from_template: GET /v1/template/properties (role names -> roleIndex, field -> "
            "its role), then POST /v1/template/send?templateId= with roles and existingFormFields",
            ok)

    def default_role():
        offer = tpls["Employment Offer Letter"]["documentId"]
        res, reqs = x.call("send_from_template", {
            "template_id": offer, "signers": [{"role": "Candidate", "name": "Cam", "email": "cam@example.org"}],
            "prefill": [{"field": "StartDate", "value": "2027-01-04"}]})
        sc = check_output("send_from_template", res)
        b = body_json(reqs[-1])
        assert b["roles"] == [{"roleIndex": 1, "signerName": "Cam", "signerEmail": "cam@example.org",
                               "existingFormFields": [{"id": "StartDate", "value": "2027-01-04"}]}], b
        props = wait_visible(x, sc["document_id"])
        assert [s["signerEmail"] for s in props["signerDetails"]][1] == \
            "lucas.cohen@northwind-traders-us.example.com", props["signerDetails"]
    x.check("send_from_template leaving a role to its default signer: only the roles given are "
            "sent; BoldSign fills the default", default_role)

    def bad_role():
        res, reqs = x.call("send_from_template", {
            "template_id": nda, "signers": [{"role": "Witness", "name": "W", "email": "w@example.org"}]})
        assert res.is_error and "signers[0].role" in res.text and "Witness" in res.text, res.describe()
        assert "Disclosing Party" in res.text, "the error should list the template's roles: " + res.text
        assert [(q["method"], q["path"]) for q in reqs] == [("GET", "/v1/template/properties")], \
            "only the template may be read: %s" % [(q["method"], q["path"]) for q in reqs]
        res, reqs = x.call("send_from_template", {
            "template_id": nda, "signers": [{"role": "Receiving Party", "name": "W", "email": "w@example.org"}],
            "prefill": [{"field": "NoSuchField", "value": "v"}]})
        assert res.is_error and "prefill[0].field" in res.text, res.describe()
        assert len(reqs) == 1, reqs
    x.check("send_from_template with an unknown role or field: isError naming signers[0].role "
            "(listing the roles) / prefill[0].field; nothing is sent", bad_role)
    x.check("send_from_template with test_mode: isError naming test_mode, nothing sent",
            lambda: x.refused("send_from_template", {
                "template_id": nda, "test_mode": True,
                "signers": [{"role": "Receiving Party", "name": "W", "email": "w@example.org"}]},
                ["test_mode"]))
    x.check("send_from_template without signers: isError naming signers, nothing sent",
            lambda: x.refused("send_from_template", {"template_id": nda}, ["signers"]))
    x.check("send_from_template with an unknown template: isError saying not found",
            lambda: x.not_found("send_from_template", {
                "template_id": UNKNOWN_ID,
                "signers": [{"role": "R", "name": "W", "email": "w@example.org"}]},
                "GET", "/v1/template/properties"))


def fresh_doc(x, title, signers=2, extra=None):
    """A new in-progress document sent directly to the sandbox (not through signbridge)."""
    body = {"title": title, "files": ["data:application/pdf;base64," + base64.b64encode(PDF).decode()],
            "signers": [{"name": "S%d" % i, "emailAddress": "s%d.%s@example.org" % (i, title.lower().replace(" ", ""))}
                        for i in range(signers)]}
    body.update(extra or {})
    did = x.direct("POST", "/v1/document/send", body=body, expect=(201,)).json()["documentId"]
    return wait_visible(x, did)


def t_actions(x):
    doc = fresh_doc(x, "Remind me")
    did = doc["documentId"]
    emails = [s["signerEmail"] for s in doc["signerDetails"]]

    def remind():
        res, reqs = x.call("remind_signers", {"document_id": did, "signer_emails": emails,
                                              "message": "Friendly nudge"})
        sc = check_output("remind_signers", res)
        q = x.one(reqs, "POST", "/v1/document/remind")
        assert qs(q) == {"documentId": [did], "receiverEmails": emails}, qs(q)
        assert body_json(q) == {"message": "Friendly nudge"} and q["status"] == 204, q
        assert sc["reminded"] == emails and sc["document_id"] == did and sc["outcome"] == "done", sc
        res, reqs = x.call("remind_signers", {"document_id": did})
        check_output("remind_signers", res)
        assert qs(x.one(reqs, "POST", "/v1/document/remind")) == {"documentId": [did]}
        hist = x.dget("/v1/document/properties?documentId=" + did)["documentHistory"]
        assert sum(1 for h in hist if h["action"] == "Reminder") >= 3, hist
    x.check("remind_signers: POST /v1/document/remind?documentId=&receiverEmails=... body "
            "{message} (204); without signer_emails, everyone pending", remind)

    def remind_done():
        done = find_doc(x, lambda d: d["status"] == "Completed")["documentId"]
        res, reqs = x.call("remind_signers", {"document_id": done})
        assert res.is_error is True, res.describe()
        assert "400" in res.text and "Reminders cannot be sent" in res.text, res.text
        assert len(reqs) == 1 and reqs[0]["status"] == 400, reqs
    x.check("defect check (upstream errors returned as successes): remind_signers on a completed "
            "document -> BoldSign's 400 comes back isError:true with BoldSign's message",
            remind_done)
    x.check("remind_signers with an unknown id: isError saying not found",
            lambda: x.not_found("remind_signers", {"document_id": UNKNOWN_ID}, "POST",
                                "/v1/document/remind"))
    x.check("remind_signers with a bad email: isError naming signer_emails, nothing sent",
            lambda: x.refused("remind_signers", {"document_id": did, "signer_emails": ["nope"]},
                              ["signer_emails"]))

    def change():
        old = doc["signerDetails"][1]["signerEmail"]
        res, reqs = x.call("change_signer", {"document_id": did, "old_email": old,
                                             "new_name": "Nora New", "new_email": "nora@example.org"})
        sc = check_output("change_signer", res)
        q = x.one(reqs, "PATCH", "/v1/document/changeRecipient")
        assert qs(q) == {"documentId": [did]} and q["status"] == 204, q
        b = body_json(q)
        assert b["oldSignerEmail"] == old and b["newSignerName"] == "Nora New", b
        assert b["newSignerEmail"] == "nora@example.org" and b["reason"], b
        assert sc["signer"]["email"] == "nora@example.org" and sc["signer"]["status"] == "pending", sc
        props = x.dget("/v1/document/properties?documentId=" + did)
        assert "nora@example.org" in [s["signerEmail"] for s in props["signerDetails"]], props
        res, reqs = x.call("change_signer", {"document_id": did, "old_email": "nora@example.org",
                                             "new_name": "Ned", "new_email": "ned@example.org",
                                             "reason": "Nora left"})
        check_output("change_signer", res)
        assert body_json(reqs[0])["reason"] == "Nora left", body_json(reqs[0])
    x.check("change_signer: PATCH /v1/document/changeRecipient?documentId= {oldSignerEmail, "
            "newSignerName, newSignerEmail, reason (a default when none is given)}", change)
    x.check("change_signer without new_email: isError naming new_email, nothing sent",
            lambda: x.refused("change_signer", {"document_id": did, "old_email": "a@example.org",
                                                "new_name": "N"}, ["new_email"]))

    def extend_days():
        res, reqs = x.call("extend_expiry", {"document_id": did, "days": 90})
        sc = check_output("extend_expiry", res)
        assert [(q["method"], q["path"]) for q in reqs] == \
            [("GET", "/v1/document/properties"), ("PATCH", "/v1/document/extendExpiry")], reqs
        q = x.expect(reqs[1], "PATCH", "/v1/document/extendExpiry")
        day = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=90)).strftime("%Y-%m-%d")
        assert qs(q) == {"documentId": [did]} and body_json(q) == {"newExpiryValue": day}, body_json(q)
        props = x.dget("/v1/document/properties?documentId=" + did)
        assert same_time(sc["expires_at"], rfc(props["expiryDate"])), (sc["expires_at"], props["expiryDate"])
    x.check("extend_expiry days (a Days document): GET properties, then PATCH /v1/document/"
            "extendExpiry {newExpiryValue: yyyy-MM-dd}; expires_at is BoldSign's new expiry",
            extend_days)

    def extend_hours():
        h = fresh_doc(x, "Hours doc", 1, {"expiryDateType": "Hours", "expiryValue": 48})
        target = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=100)
        res, reqs = x.call("extend_expiry", {"document_id": h["documentId"],
                                             "expires_at": target.strftime("%Y-%m-%dT%H:%M:%SZ")})
        sc = check_output("extend_expiry", res)
        v = body_json(reqs[-1])["newExpiryValue"]
        assert v in ("100", "101"), "newExpiryValue %r: whole hours for an Hours document" % v
        props = x.dget("/v1/document/properties?documentId=" + h["documentId"])
        assert abs(datetime.datetime.fromisoformat(sc["expires_at"].replace("Z", "+00:00")).timestamp()
                   - props["expiryDate"]) < 5, (sc["expires_at"], props["expiryDate"])
    x.check("extend_expiry expires_at on an Hours document: newExpiryValue in whole hours",
            extend_hours)

    def extend_bad():
        x.refused("extend_expiry", {"document_id": did, "expires_at": "2001-01-01T00:00:00Z"},
                  ["expires_at"])
        x.refused("extend_expiry", {"document_id": did}, ["oneOf"])  # expires_at or days
        x.refused("extend_expiry", {"document_id": did, "days": 400}, ["days"])
    x.check("extend_expiry with a past date, no date, 400 days: isError naming the argument, "
            "nothing sent", extend_bad)
    x.check("extend_expiry with an unknown id: isError saying not found, nothing written",
            lambda: x.not_found("extend_expiry", {"document_id": UNKNOWN_ID, "days": 5}, "GET",
                                "/v1/document/properties"))

    def revoke():
        res, reqs = x.call("revoke_document", {"document_id": did, "reason": "Wrong version"})
        sc = check_output("revoke_document", res)
        q = x.one(reqs, "POST", "/v1/document/revoke")
        assert qs(q) == {"documentId": [did]} and body_json(q) == {"message": "Wrong version"}, q
        assert sc["status"] == "revoked" and sc["outcome"] == "done" and sc["document_id"] == did
        assert x.dget("/v1/document/properties?documentId=" + did)["status"] == "Revoked"
        res, reqs = x.call("revoke_document", {"document_id": did, "reason": "again"})
        assert res.is_error and "400" in res.text, res.describe()
    x.check("revoke_document: POST /v1/document/revoke?documentId= {message} (204), revoked; a "
            "second revoke is BoldSign's 400 as isError", revoke)
    x.check("revoke_document without reason: isError naming reason, nothing sent",
            lambda: x.refused("revoke_document", {"document_id": did}, ["reason"]))
    x.check("revoke_document with an unknown id: isError saying not found",
            lambda: x.not_found("revoke_document", {"document_id": UNKNOWN_ID, "reason": "x"},
                                "POST", "/v1/document/revoke"))


def t_log(x):
    def f():
        text = x.br.stderr_text()
        bad = [ln for ln in text.splitlines() if "tool_output_invalid" in ln]
        assert not bad, "signbridge logged tool_output_invalid: %s" % bad[:3]
    x.check("no tool_output_invalid in signbridge's log", f)


# ------------------------------------------------------------------------------------------------
# A TLS sandbox serving a file at an https URL (Dropbox Sign's files_as_file_url link)


class TlsFiles:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sbtools-tls-")
        script = os.path.join(SOURCE_ROOT, "tests", "sandbox", "make-test-ca.sh")
        subprocess.run(["bash", script, self.dir], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
        self.ca = os.path.join(self.dir, "ca.pem")
        self.sbx = uptest.Sandbox(["--no-rate-limits", "--tls-cert", os.path.join(self.dir, "server.pem"),
                                   "--tls-key", os.path.join(self.dir, "server.key")])
        self.sbx.start()
        self.port = self.sbx.port

    def _get(self, path):
        out = subprocess.run(["curl", "-sS", "--cacert", self.ca, "https://127.0.0.1:%d%s" % (self.port, path)],
                             stdout=subprocess.PIPE, timeout=20, check=True).stdout
        return json.loads(out)

    def file_url(self):
        acct = next(a for a in self._get("/_sandbox/accounts")["accounts"]
                    if a["provider"] == "dropboxsign" and a.get("api_key"))
        base = urllib.parse.urlsplit(acct["base_url"]).path
        auth = base64.b64encode(("%s:" % acct["api_key"]).encode()).decode()
        def get(path):
            out = subprocess.run(["curl", "-sS", "--cacert", self.ca, "-H", "Authorization: Basic " + auth,
                                  "https://127.0.0.1:%d%s%s" % (self.port, base, path)],
                                 stdout=subprocess.PIPE, timeout=20, check=True).stdout
            return json.loads(out)
        srs = get("/signature_request/list?page_size=20")["signature_requests"]
        for sr in srs:
            r = get("/signature_request/files_as_file_url/%s" % sr["signature_request_id"])
            if r.get("file_url", "").startswith("https://"):
                return r["file_url"]
        raise AssertionError("the TLS sandbox gave no https file link")

    def last_seq(self):
        return self._get("/_sandbox/requests?limit=1").get("last_seq", 0)

    def requests(self, since):
        return [q for q in self._get("/_sandbox/requests?since=%d&limit=1000" % since)["requests"]
                if "/s3/" in q.get("path", "")]

    def stop(self):
        try:
            self.sbx.stop()
        finally:
            self.sbx.tmp.cleanup()
            shutil.rmtree(self.dir, ignore_errors=True)


def start_tls():
    if not shutil.which("openssl") or not shutil.which("curl"):
        return None
    try:
        return TlsFiles()
    except Exception as e:  # noqa: BLE001
        print("# TLS file server unavailable: %s" % e, flush=True)
        return None


def t_long_page(x):
    """Run last: it adds 20 documents of 10 signers with long names to the account."""
    def cut():
        title = ("Long page %02d " + "t" * 250)[:255]
        name = "Signer with a long name " + "n" * 170
        for i in range(20):
            res, _ = x.call("send_document", {
                "title": title % i, "message": "Please sign.",
                "files": [{"base64": base64.b64encode(PDF).decode(), "name": "long.pdf"}],
                "signers": [{"name": "%s %d" % (name, k), "email": "long%d.%d@example.org" % (i, k)}
                            for k in range(10)]})
            sent = check_output("send_document", res)
        wait_visible(x, sent["document_id"])  # BoldSign lists a sent document after a moment
        upstream = x.dget("/v1/document/list?Page=1&PageSize=100")["result"]
        longs = [d for d in upstream if d["messageTitle"].startswith("Long page ")]
        assert len(longs) == 20, "%d of the 20 documents listed upstream" % len(longs)
        res, reqs = x.call("list_documents", {"page_size": 100})
        sc = check_output("list_documents", res)
        x.one(reqs, "GET", "/v1/document/list")
        assert len(res.text) <= 100000, "text is %d characters" % len(res.text)
        assert json.loads(res.text) == sc, "the text block is not the structured content"
        n = len(sc["documents"])
        assert 0 < n < len(upstream), "%d of %d documents kept, %d characters" % (n, len(upstream), len(res.text))
        assert [d["id"] for d in sc["documents"]] == [d["documentId"] for d in upstream[:n]], \
            "the page was not cut from its end"
        assert "was cut from %d to %d items" % (len(upstream), n) in sc.get("note", ""), sc.get("note")
    x.check("list_documents page_size 100 over 100,000 characters of text: cut from the end at a "
            "whole document, the text block still the structured content, a note saying so", cut)


def main():
    uptest.require_bins()
    tls = start_tls()
    if tls is not None:
        atexit.register(tls.stop)
    env = {"SIGNBRIDGE_UPSTREAM_CA_FILE": tls.ca} if tls else {}

    def body(t):
        x = T(t, tls)
        for fn in (t_tools_list, t_list_documents, t_get_document, t_history, t_download,
                   t_signing_link, t_templates, t_contacts, t_users_teams_account,
                   t_send_document, t_send_from_template, t_actions, t_log, t_long_page):
            try:
                fn(x)
            except Exception as e:  # noqa: BLE001 - a setup step failed: report, go on
                t.checks.fail(fn.__name__, "%s: %s" % (type(e).__name__, e))
    uptest.run(body, bridge_env=env)


if __name__ == "__main__":
    main()
