"""tools-iinkedsign (issue 5, acceptance 1): every tool the iinked Sign adapter serves, called
through signbridge against the provider sandbox.

Starts signbridge-sandbox (SANDBOX_BIN, --no-rate-limits, --seed 4242, port 0) and signbridge
(SIGNBRIDGE_BIN, --sandbox-url, port 0, SIGNBRIDGE_SECRET_FILE in a temporary directory,
SIGNBRIDGE_LOG_LEVEL=debug), opens MCP sessions on /iinkedsign/us/mcp with the demo organization
key from /_sandbox/accounts (and the member "user key" for the forbidden cases), and for every tool:

  - checks the normalized structuredContent (against the tool's outputSchema from schemas/tools/,
    with a small validator here, and against the seeded data the sandbox returns when asked
    directly with the same key);
  - checks what reached the sandbox, from GET /_sandbox/requests: method, path, query, JSON and
    multipart bodies, auth_scheme api_key, the key's account;
  - covers not found (an unknown id: isError naming it), forbidden (the user key without editor
    roles: 403) and validation failures (bad arguments: isError naming the field, and nothing sent
    upstream).

tools/list on the route must list exactly the tools the adapter implements. At the end both
processes get SIGTERM (exit 0, no sanitizer report), and signbridge's log must hold no
"tool_output_invalid" line and no API key. Standard library only.
"""

import base64
import io
import json
import os
import re
import sys
import time
import traceback
import urllib.parse
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "sandbox"))

import sbtest  # noqa: E402
import sbxtest  # noqa: E402
from sbtest import Checks, request, short  # noqa: E402

SEED = 4242
PROVIDER = "iinkedsign"
ROUTE = "/iinkedsign/us/mcp"
SOURCE_ROOT = os.environ.get("SB_SOURCE_ROOT") or os.path.normpath(os.path.join(HERE, "..", ".."))

TOOLS = {
    "list_documents", "get_document", "revoke_document", "send_document", "send_from_template",
    "change_signer", "extend_expiry", "get_signing_link", "download_document", "list_templates",
    "get_template",
}

UNKNOWN_ID = "0b1f5c4e-7d2a-4e8b-9c61-3f0a2d7e9b15"

PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
       b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
       b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\n"
       b"trailer<</Root 1 0 R>>\n%%EOF\n")


def docx_bytes():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    return buf.getvalue()


def b64(data):
    return base64.b64encode(data).decode()


# ------------------------------------------------------------------------------------------------
# Times


def ms(iso):
    """Epoch milliseconds of an ISO 8601 time (RFC 3339, or no zone = UTC)."""
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|z|[+-]\d\d:\d\d)?",
                     iso or "")
    assert m, "not an ISO 8601 time: %r" % (iso,)
    import calendar
    secs = calendar.timegm(tuple(int(m.group(i)) for i in range(1, 7)))
    frac = int((m.group(7) or "0")[:3].ljust(3, "0"))
    z = m.group(8)
    off = 0
    if z and z not in ("Z", "z"):
        off = (int(z[1:3]) * 60 + int(z[4:6])) * (1 if z[0] == "+" else -1)
    return (secs - off * 60) * 1000 + frac


def same_time(a, b, what):
    if a is None or b is None:
        assert a is None and b is None, "%s: %r vs %r" % (what, a, b)
        return
    assert ms(a) == ms(b), "%s: %r vs %r" % (what, a, b)


# ------------------------------------------------------------------------------------------------
# A small validator for the tool contracts' outputSchema (the subset they use)


RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def schema_errors(inst, sch, root, where="$"):
    if "$ref" in sch:
        ref = sch["$ref"]
        assert ref.startswith("#/$defs/"), ref
        return schema_errors(inst, root["$defs"][ref[8:]], root, where)
    errs = []
    types = sch.get("type")
    if types is not None:
        types = types if isinstance(types, list) else [types]
        ok = False
        for t in types:
            ok |= (t == "null" and inst is None) or (t == "string" and isinstance(inst, str)) or \
                (t == "boolean" and isinstance(inst, bool)) or \
                (t == "integer" and isinstance(inst, int) and not isinstance(inst, bool)) or \
                (t == "number" and isinstance(inst, (int, float)) and not isinstance(inst, bool)) or \
                (t == "object" and isinstance(inst, dict)) or (t == "array" and isinstance(inst, list))
        if not ok:
            return ["%s: %r is not of type %s" % (where, short(json.dumps(inst), 80), types)]
    if "enum" in sch and inst not in sch["enum"]:
        errs.append("%s: %r not in %s" % (where, inst, sch["enum"]))
    if sch.get("format") == "date-time" and isinstance(inst, str) and not RFC3339.match(inst):
        errs.append("%s: %r is not an RFC 3339 date-time" % (where, inst))
    if isinstance(inst, dict):
        for k in sch.get("required", []):
            if k not in inst:
                errs.append("%s: required %r missing" % (where, k))
        props = sch.get("properties", {})
        for k, v in inst.items():
            if k in props:
                errs += schema_errors(v, props[k], root, "%s.%s" % (where, k))
            elif sch.get("additionalProperties") is False:
                errs.append("%s: unexpected property %r" % (where, k))
            elif isinstance(sch.get("additionalProperties"), dict):
                errs += schema_errors(v, sch["additionalProperties"], root, "%s.%s" % (where, k))
    if isinstance(inst, list) and "items" in sch:
        for i, v in enumerate(inst):
            errs += schema_errors(v, sch["items"], root, "%s[%d]" % (where, i))
    if isinstance(inst, int) and "minimum" in sch and inst < sch["minimum"]:
        errs.append("%s: %r < %r" % (where, inst, sch["minimum"]))
    return errs


_SCHEMAS = {}


def output_schema(tool):
    if tool not in _SCHEMAS:
        with open(os.path.join(SOURCE_ROOT, "schemas", "tools", tool + ".json")) as f:
            _SCHEMAS[tool] = json.load(f)["outputSchema"]
    return _SCHEMAS[tool]


def check_schema(tool, sc):
    sch = output_schema(tool)
    errs = schema_errors(sc, sch, sch)
    assert not errs, "%s structuredContent does not match its outputSchema: %s" % (tool, errs[:5])


# ------------------------------------------------------------------------------------------------
# MCP


class Result:
    def __init__(self, tool, result):
        self.tool = tool
        self.raw = result
        self.is_error = bool(result.get("isError"))
        self.text = "".join(c.get("text", "") for c in result.get("content", [])
                            if isinstance(c, dict) and c.get("type") == "text")
        self.sc = result.get("structuredContent")

    def describe(self):
        return "%s isError=%s text=%r" % (self.tool, self.is_error, short(self.text, 500))

    def ok(self):
        assert not self.is_error, "expected success: " + self.describe()
        assert isinstance(self.sc, dict), "no structuredContent: " + self.describe()
        check_schema(self.tool, self.sc)
        assert json.loads(self.text) == self.sc, "the text is not the structured content"
        region = self.sc.get("region") or ""
        assert self.sc.get("provider") == PROVIDER and (region == "us" or region.startswith(
            "sandbox-")), "provider/region: %r" % ({k: self.sc.get(k) for k in ("provider", "region")})
        return self.sc

    def error(self, *words):
        assert self.is_error, "expected isError: " + self.describe()
        low = self.text.lower()
        missing = [w for w in words if w.lower() not in low]
        assert not missing, "error text lacks %s: %r" % (missing, self.text)
        return self.text


class Session:
    def __init__(self, port, path, cred):
        self.port, self.path, self.cred = port, path, list(cred)
        self.sid, self.version, self.init = sbtest.initialize(port, extra=self.cred, path=path,
                                                              timeout=30.0)
        self.next_id = 10

    def rpc(self, method, params=None, timeout=30.0):
        self.next_id += 1
        r, msg = sbtest.rpc(self.port, self.sid, method, params, id_=self.next_id,
                            version=self.version, extra=self.cred, timeout=timeout, path=self.path)
        assert r.status == 200 and msg is not None, "%s: %s" % (method, r.describe())
        return msg

    def call(self, tool, args=None, timeout=40.0):
        msg = self.rpc("tools/call", {"name": tool, "arguments": args or {}}, timeout)
        assert "result" in msg, "tools/call %s: JSON-RPC error %r" % (tool, msg.get("error"))
        return Result(tool, msg["result"])


# ------------------------------------------------------------------------------------------------
# The test environment


class Env:
    def __init__(self, checks, sbx, br):
        self.checks, self.sbx, self.br = checks, sbx, br
        self.acct = sbx.account(PROVIDER, "us")
        self.key = self.acct["api_key"]
        self.base = self.acct["base_url"]
        self.base_path = urllib.parse.urlsplit(self.base).path  # /iinkedsign/us/api/v1
        self.user_key = self.acct["user_api_key"]["api_key"]
        self.s = Session(br.port, ROUTE, [("X-API-Key", self.key)])

    def check(self, name, fn, *a, **kw):
        return self.checks.check(name, fn, *a, **kw)

    # -- the sandbox, directly, with the same key
    def direct(self, method, path, body=None, key=None, expect=(200,)):
        h = sbxtest.iinked_auth(key or self.key)
        r = self.sbx.call(method, self.base + path, h, body)
        assert r.status in expect, "direct %s %s: %s" % (method, path, r.describe())
        return r.json() if r.body and r.header("content-type", "").startswith("application/json") \
            else r

    def package(self, pid):
        return self.direct("GET", "/packages/" + pid)

    def all_packages(self):
        return self.direct("POST", "/packages/list", {"allMembers": True, "take": 100})["items"]

    # -- the request log
    def seq(self):
        return self.sbx.ctl("GET", "/_sandbox/requests?limit=1").get("last_seq", 0)

    def log(self, since, provider=PROVIDER):
        q = "/_sandbox/requests?since=%d&limit=1000" % since
        if provider:
            q += "&provider=" + provider
        return self.sbx.ctl("GET", q)["requests"]

    def upstream(self, since, routes, key_account=None):
        """The iinked requests since `since`, which must be exactly `routes` [(method, path)],
        each with auth_scheme api_key, resolved to the key's account, with a request id."""
        got = self.log(since)
        seen = [(q["method"], q["path"]) for q in got]
        want = [(m, self.base_path.replace("/iinkedsign/us", "") + p) for m, p in routes]
        assert seen == want, "upstream requests %s, expected %s" % (seen, want)
        for q in got:
            assert q["auth_scheme"] == "api_key", "auth_scheme %r on %s" % (q["auth_scheme"], q["path"])
            assert q["region"] == "us", "region %r" % q["region"]
            assert q["account_id"] == (key_account or self.acct["account_id"]), \
                "account %r" % q["account_id"]
            assert q["request_id"], "no X-Request-Id reached the sandbox on %s" % q["path"]
        return got

    def nothing_sent(self, since):
        got = self.log(since, provider=None)
        assert not got, "requests reached the sandbox: %s" % [(q["method"], q["path"]) for q in got]


def jbody(entry):
    assert "body" in entry, "no text body logged for %s" % entry["path"]
    return json.loads(entry["body"])


def raw_body(entry):
    if "body" in entry:
        return entry["body"].encode()
    return base64.b64decode(entry.get("body_base64", ""))


def query(entry):
    return dict(urllib.parse.parse_qsl(entry["query"], keep_blank_values=True))


# ------------------------------------------------------------------------------------------------
# Expected normalization (iinked -> the neutral model), for comparing with direct reads


def signer_status(s, pkg):
    st = s.get("state")
    if s.get("isExecuted") or st == "signed":
        return "signed"
    if st == "declined" or s.get("timeDeclined"):
        return "declined"
    if pkg.get("state") == "expired":
        return "expired"
    if pkg.get("state") == "rescinded":
        return "revoked"
    opened = any(r.get("signerId") == s.get("signerId") and r.get("timeLastOpened")
                 for d in pkg.get("documents") or [] for r in d.get("revisions") or [])
    return "viewed" if st == "viewed" or opened else "pending"


def doc_status(pkg):
    st = pkg.get("state")
    sig = [signer_status(s, pkg) for s in pkg.get("signers") or []]
    if st in ("draft", "select", "add"):
        return "draft"
    if st == "executed":
        return "completed"
    if st == "expired":
        return "expired"
    if st == "rescinded":
        return "declined" if "declined" in sig else "revoked"
    return "in_progress" if any(x in ("signed", "viewed", "declined") for x in sig) else "sent"


def compare_document(doc, pkg):
    """A normalized document against the package the sandbox returns directly."""
    assert doc["id"] == pkg["packageId"], "id %r vs %r" % (doc["id"], pkg["packageId"])
    assert doc["title"] == pkg.get("name"), "title %r vs %r" % (doc["title"], pkg.get("name"))
    assert doc["provider_status"] == pkg["state"], "provider_status %r vs %r" % (
        doc["provider_status"], pkg["state"])
    assert doc["status"] == doc_status(pkg), "status %r, expected %r for %s" % (
        doc["status"], doc_status(pkg), pkg["state"])
    same_time(doc["created_at"], pkg.get("timeCreated"), "created_at")
    same_time(doc["updated_at"], pkg.get("timeLastModified"), "updated_at")
    same_time(doc["expires_at"], pkg.get("timeSignBy"), "expires_at")
    assert doc.get("message") == pkg.get("message"), "message %r vs %r" % (doc.get("message"),
                                                                           pkg.get("message"))
    assert len(doc["signers"]) == len(pkg["signers"]), "signer count"
    for x, s in zip(doc["signers"], pkg["signers"]):
        assert x["id"] == s["signerId"] and x["email"] == s["email"], "signer %r vs %r" % (x, s)
        assert x["name"] == "%s %s" % (s["firstName"], s["lastName"]), "name %r" % x["name"]
        assert x["order"] == s["index"] + 1, "order %r for index %r" % (x["order"], s["index"])
        assert x["status"] == signer_status(s, pkg), "signer status %r, expected %r" % (
            x["status"], signer_status(s, pkg))
        same_time(x["signed_at"], s.get("timeExecuted"), "signed_at")
        if s.get("templateRole"):
            assert x.get("role") == s["templateRole"], "role %r" % x.get("role")
    assert doc["cc"] == [r["email"] for r in pkg.get("recipients") or []], "cc %r" % doc["cc"]


# ------------------------------------------------------------------------------------------------
# The checks


def t_tools_list(e):
    def run():
        names, cursor = [], None
        while True:
            msg = e.s.rpc("tools/list", {"cursor": cursor} if cursor else {})
            names += [t["name"] for t in msg["result"]["tools"]]
            cursor = msg["result"].get("nextCursor")
            if not cursor:
                break
        assert set(names) == TOOLS and len(names) == len(TOOLS), \
            "tools/list: extra %s, missing %s" % (sorted(set(names) - TOOLS),
                                                  sorted(TOOLS - set(names)))
    e.check("tools/list on %s lists exactly the %d tools the iinked adapter implements"
            % (ROUTE, len(TOOLS)), run)


def t_list_documents(e):
    def page():
        seq = e.seq()
        sc = e.s.call("list_documents", {"page_size": 5}).ok()
        got = e.upstream(seq, [("POST", "/packages/list")])
        want = e.direct("POST", "/packages/list", {"take": 5, "skip": 0, "sortBy": "created"})
        body = jbody(got[0])
        assert body == {"take": 5, "skip": 0, "sortBy": "created"}, "body %r" % body
        assert [d["id"] for d in sc["documents"]] == [p["packageId"] for p in want["items"]], \
            "ids differ from the sandbox's own list"
        for d, p in zip(sc["documents"], want["items"]):
            compare_document(d, p)
        assert sc["page"] == 1 and sc["page_size"] == 5 and sc["total"] == want["total"], \
            "paging %r" % {k: sc[k] for k in ("page", "page_size", "total", "next_page")}
        assert sc["next_page"] == (2 if want["total"] > 5 else None), "next_page %r" % sc["next_page"]
    e.check("list_documents: POST /packages/list {take, skip, sortBy}; documents match the "
            "sandbox's list, uniform paging", page)

    def filtered():
        seq = e.seq()
        sc = e.s.call("list_documents", {"status": ["completed"], "query": "Agreement*",
                                          "page": 1, "page_size": 50}).ok()
        got = e.upstream(seq, [("POST", "/packages/list")])
        body = jbody(got[0])
        assert body.get("states") == ["executed"] and body.get("search") == "Agreement*", \
            "body %r" % body
        want = e.direct("POST", "/packages/list", {"take": 50, "skip": 0, "sortBy": "created",
                                                   "states": ["executed"], "search": "Agreement*"})
        assert [d["id"] for d in sc["documents"]] == [p["packageId"] for p in want["items"]]
        assert all(d["status"] == "completed" for d in sc["documents"])
    e.check("list_documents: status and query become states[] and search", filtered)

    def second_page():
        seq = e.seq()
        sc = e.s.call("list_documents", {"page": 2, "page_size": 4}).ok()
        body = jbody(e.upstream(seq, [("POST", "/packages/list")])[0])
        assert body["take"] == 4 and body["skip"] == 4, "body %r" % body
        assert sc["page"] == 2
    e.check("list_documents: page 2 skips page_size items", second_page)

    def invalid():
        seq = e.seq()
        r = e.s.call("list_documents", {"page_size": 500})
        r.error("page_size")
        e.nothing_sent(seq)
    e.check("list_documents: page_size 500 -> isError naming page_size, nothing sent", invalid)


def t_get_document(e, pkgs):
    def each(p):
        full = e.package(p["packageId"])
        seq = e.seq()
        sc = e.s.call("get_document", {"document_id": p["packageId"]}).ok()
        e.upstream(seq, [("GET", "/packages/" + p["packageId"])])
        compare_document(sc["document"], full)
        return sc["document"]

    wanted = {}
    for p in pkgs:
        st = p["state"]
        if st not in wanted or (st == "open" and any(s["isExecuted"] for s in p["signers"])
                                and "open-partly" not in wanted):
            key = "open-partly" if st == "open" and any(s["isExecuted"] for s in p["signers"]) else st
            wanted.setdefault(key, p)
    for key, p in sorted(wanted.items()):
        e.check("get_document (%s package): GET /packages/{id}; normalized like the sandbox's "
                "own package" % key, each, p)

    declined = None
    for p in pkgs:
        if p["state"] == "rescinded":
            full = e.package(p["packageId"])
            if any(s.get("timeDeclined") for s in full["signers"]):
                declined = p
                break

    def decl():
        assert declined, "the seed has no declined package"
        d = each(declined)
        assert d["status"] == "declined" and "declined" in [s["status"] for s in d["signers"]], d
    e.check("get_document: a package a signer declined is declined (signer declined)", decl)

    def viewed():
        p = next(p for p in pkgs if p["state"] == "open" and not any(s["isExecuted"] for s in p["signers"])
                 and signer_status(e.package(p["packageId"])["signers"][0], e.package(p["packageId"])) == "viewed")
        d = each(p)
        assert d["status"] == "in_progress" and d["signers"][0]["status"] == "viewed" and \
            d["signers"][0]["viewed_at"], d["signers"][0]
    e.check("get_document: a signer who opened it is viewed with viewed_at; the package is "
            "in_progress", viewed)

    def missing():
        seq = e.seq()
        r = e.s.call("get_document", {"document_id": UNKNOWN_ID})
        r.error("no such item", "not found")
        e.upstream(seq, [("GET", "/packages/" + UNKNOWN_ID)])
    e.check("get_document: unknown id -> isError naming not found (404 package_not_found)", missing)

    def bad():
        seq = e.seq()
        e.s.call("get_document", {"document_id": "../packages/list"}).error("document_id")
        e.s.call("get_document", {}).error("document_id")
        e.nothing_sent(seq)
    e.check("get_document: an id with '/' or none -> isError naming document_id, nothing sent", bad)


def t_revoke(e, victim, user_pkg):
    def run():
        seq = e.seq()
        sc = e.s.call("revoke_document", {"document_id": victim, "reason": "Wrong fee schedule"}).ok()
        got = e.upstream(seq, [("POST", "/packages/rescind")])
        assert jbody(got[0]) == {"packageId": victim, "rescindMessage": "Wrong fee schedule",
                                 "notify": True}, "body %r" % jbody(got[0])
        assert sc["status"] == "revoked" and sc.get("outcome", "done") == "done" and sc["document_id"] == victim
        pkg = e.package(victim)
        assert pkg["state"] == "rescinded" and pkg["rescindMessage"] == "Wrong fee schedule", pkg["state"]
    e.check("revoke_document: POST /packages/rescind {packageId, rescindMessage, notify}; the "
            "package is rescinded", run)

    def again():
        seq = e.seq()
        e.s.call("revoke_document", {"document_id": victim, "reason": "again"}).error("400", "rescinded")
        e.upstream(seq, [("POST", "/packages/rescind")])
    e.check("revoke_document: a rescinded package -> isError with iinked's reason", again)

    def missing():
        seq = e.seq()
        e.s.call("revoke_document", {"document_id": UNKNOWN_ID, "reason": "x"}).error("not found")
        e.upstream(seq, [("POST", "/packages/rescind")])
    e.check("revoke_document: unknown id -> isError naming not found", missing)

    def forbidden():
        us = Session(e.br.port, ROUTE, [("X-API-Key", e.user_key)])
        seq = e.seq()
        us.call("revoke_document", {"document_id": user_pkg, "reason": "x"}).error("403", "permission")
        got = e.log(seq)
        assert [(q["path"], q["status"]) for q in got] == [
            (e.base_path.replace("/iinkedsign/us", "") + "/packages/rescind", 403)], got
        assert e.package(user_pkg)["state"] == "open", "the package changed"
    e.check("revoke_document: the user key without editor roles -> isError 403 (forbidden)", forbidden)

    def invalid():
        seq = e.seq()
        e.s.call("revoke_document", {"document_id": victim}).error("reason")
        e.nothing_sent(seq)
    e.check("revoke_document: no reason -> isError naming reason, nothing sent", invalid)


def dropbox_file_url(e):
    """An unauthenticated https-style file link the sandbox serves (Dropbox Sign's S3 link)."""
    d = e.sbx.account("dropboxsign", "global")
    h = sbxtest.basic(d["api_key"])
    lst = e.sbx.get(d["base_url"] + "/signature_request/list?page_size=20", h)
    assert lst.status == 200, lst.describe()
    for sr in json.loads(lst.body)["signature_requests"]:
        r = e.sbx.get(d["base_url"] + "/signature_request/files_as_file_url/" +
                      sr["signature_request_id"], h)
        if r.status == 200:
            return json.loads(r.body)["file_url"]
    raise AssertionError("no Dropbox Sign file link in the sandbox")


def t_send_document(e):
    created = {}

    def send():
        url = dropbox_file_url(e)
        seq, seq_all = e.seq(), e.seq()
        t0 = time.time()
        sc = e.s.call("send_document", {
            "title": "Consulting Agreement - Okafor",
            "message": "Please sign by Friday.",
            "files": [{"base64": b64(PDF), "name": "consulting agreement.pdf"},
                      {"url": url}],
            "signers": [{"name": "Grace Okafor", "email": "grace.okafor@example.com", "order": 2},
                        {"name": "Ana María da Silva", "email": "ana.silva@example.org", "order": 1}],
            "signing_order": True,
            "cc": ["legal@northwind-legal.example", "mary-jane.watson@example.net"],
            "expires_in_days": 10,
            "idempotency_key": "send-1",
        }).ok()
        got = e.upstream(seq, [("POST", "/files/upload"), ("POST", "/files/upload"),
                               ("POST", "/packages/add")])
        # the file URL was fetched without any credential, between the two uploads
        every = [q for q in e.log(seq_all, provider=None)]
        fetch = [q for q in every if q["provider"] == "dropboxsign"]
        assert len(fetch) == 1 and fetch[0]["method"] == "GET" and fetch[0]["auth_scheme"] == "none" \
            and fetch[0]["route"].endswith("/s3/{token}/{file}"), "the URL fetch: %r" % fetch
        order = [(q["provider"], q["method"]) for q in every]
        assert order == [("iinkedsign", "POST"), ("dropboxsign", "GET"), ("iinkedsign", "POST"),
                         ("iinkedsign", "POST")], "order %r" % order
        up1, up2, add = got
        for u in (up1, up2):
            assert query(u) == {"type": "temporary"}, "upload query %r" % u["query"]
            assert u["content_type"].startswith("multipart/form-data; boundary="), u["content_type"]
        m1 = raw_body(up1)
        assert b'filename="consulting agreement.pdf"' in m1 and b"Content-Type: application/pdf" in m1 \
            and PDF in m1, "multipart of files[0]: %r" % m1[:300]
        m2 = raw_body(up2)
        assert b'filename="' in m2 and b".pdf\"" in m2 and b"%PDF-" in m2, \
            "multipart of the URL file: %r" % m2[:300]
        body = jbody(add)
        assert body["name"] == "Consulting Agreement - Okafor" and body["state"] == "open" and \
            body["type"] == "Sequential" and body["message"] == "Please sign by Friday." and \
            body["returnPackage"] is True, "add body %r" % body
        assert body["signers"] == [
            {"firstName": "Ana María da", "lastName": "Silva", "email": "ana.silva@example.org"},
            {"firstName": "Grace", "lastName": "Okafor", "email": "grace.okafor@example.com"}], \
            "signers (sorted by order, names split) %r" % body["signers"]
        assert body["recipients"] == [
            {"firstName": "Legal", "lastName": "CC", "email": "legal@northwind-legal.example"},
            {"firstName": "Mary Jane", "lastName": "Watson", "email": "mary-jane.watson@example.net"}], \
            "recipients %r" % body["recipients"]
        assert [d["fileName"] for d in body["documents"]][0] == "consulting agreement.pdf", body["documents"]
        assert len(body["documents"]) == 2 and all(d.get("fileId") for d in body["documents"])
        due = ms(body["timeSignBy"]) / 1000.0
        assert abs(due - (t0 + 10 * 86400)) < 120, "timeSignBy %r not 10 days ahead" % body["timeSignBy"]
        # the normalized result, against the package the sandbox now holds
        pid = sc["document_id"]
        pkg = e.package(pid)
        assert sc["status"] == "sent" and sc.get("outcome", "done") == "done" and pid in sc["message"], sc
        compare_document(sc["document"], pkg)
        assert pkg["type"] == "Sequential" and pkg["state"] == "open"
        assert [d["fileId"] for d in pkg["documents"]] == [d["fileId"] for d in body["documents"]]
        assert [s["order"] for s in sc["document"]["signers"]] == [1, 2]
        created["pid"] = pid
    e.check("send_document: upload each file (multipart, raw bytes, type=temporary; the https "
            "URL fetched without credential first), then POST /packages/add {state open, type "
            "Sequential, signers split and ordered, recipients, documents, timeSignBy}", send)

    def docx():
        seq = e.seq()
        sc = e.s.call("send_document", {
            "title": "Offer letter", "files": [{"base64": b64(docx_bytes()), "name": "Offer – José",
                                                 "mime_type": "application/vnd.openxmlformats-"
                                                              "officedocument.wordprocessingml.document"}],
            "signers": [{"name": "José Ramírez", "email": "jose@example.com"}]}).ok()
        up, add = e.upstream(seq, [("POST", "/files/upload"), ("POST", "/packages/add")])
        m = raw_body(up)
        assert b"Content-Type: application/octet-stream" in m, "a DOCX goes as octet-stream"
        assert b"filename*=UTF-8''Offer%20%E2%80%93%20Jos%C3%A9.docx" in m, \
            "UTF-8 name in filename*: %r" % m[:400]
        body = jbody(add)
        assert body["type"] == "concurrent" and "recipients" not in body and "timeSignBy" not in body, body
        pkg = e.package(sc["document_id"])
        assert pkg["documents"][0]["fileName"] == "Offer – José.docx", pkg["documents"][0]["fileName"]
        compare_document(sc["document"], pkg)
    e.check("send_document: a DOCX goes as application/octet-stream with the UTF-8 name in "
            "filename*; concurrent without order", docx)

    def refused_url():
        seq = e.seq()
        e.s.call("send_document", {"title": "x", "files": [{"url": "http://example.com/a.pdf"}],
                                   "signers": [{"name": "A B", "email": "a@example.com"}]}).error(
            "refused")
        e.nothing_sent(seq)
    e.check("send_document: a plain-http URL outside the sandbox is refused by policy; nothing "
            "reaches the sandbox", refused_url)

    def not_pdf_url():
        seq = e.seq()
        r = e.s.call("send_document", {"title": "x",
                                       "files": [{"url": e.sbx.origin + "/_sandbox/health"}],
                                       "signers": [{"name": "A B", "email": "a@example.com"}]})
        r.error("files[0].url", "pdf")
        e.nothing_sent(seq)  # /_sandbox/ is not logged, and nothing was uploaded
    e.check("send_document: a URL that is not a PDF -> isError naming files[0].url, nothing "
            "uploaded", not_pdf_url)

    base = {"title": "x", "files": [{"base64": b64(PDF), "name": "a.pdf"}],
            "signers": [{"name": "Ann Bell", "email": "ann@example.com"}]}

    def variant(**kw):
        a = json.loads(json.dumps(base))
        a.update(kw)
        return a

    cases = [
        ("a one-word signer name", variant(signers=[{"name": "Cher", "email": "c@example.com"}]),
         ["signers[0].name"]),
        ("a PNG file", variant(files=[{"base64": b64(b"\x89PNG\r\n\x1a\n...."), "name": "a.png",
                                       "mime_type": "image/png"}]), ["files[0].mime_type"]),
        ("bytes that are not a PDF", variant(files=[{"base64": b64(b"hello world"), "name": "a.pdf"}]),
         ["files[0]", "not a pdf"]),
        ("invalid base64", variant(files=[{"base64": "!!!!****", "name": "a.pdf"}]),
         ["files[0].base64"]),
        ("an ftp URL", variant(files=[{"url": "ftp://example.com/a.pdf"}]), ["files[0].url"]),
        ("an access code", variant(signers=[{"name": "Ann Bell", "email": "ann@example.com",
                                             "authentication": {"type": "access_code",
                                                                "access_code": "1234"}}]),
         ["signers[0].authentication"]),
        ("test_mode on a production datacenter", variant(test_mode=True), ["test_mode", "sandbox"]),
        ("a cc who is a signer", variant(cc=["ANN@example.com"]), ["cc[0]"]),
        ("a cc twice", variant(cc=["bo@example.com", "BO@example.com"]), ["cc[1]"]),
        ("a signer twice", variant(signers=[{"name": "Ann Bell", "email": "ann@example.com"},
                                            {"name": "Ann Bell", "email": "ann@example.com"}]),
         ["signers[1].email"]),
        ("no signers (schema)", variant(signers=[]), ["signers"]),
        ("no files (schema)", {"title": "x", "signers": base["signers"]}, ["files"]),
    ]
    for what, args, words in cases:
        def run(args=args, words=words):
            seq = e.seq()
            e.s.call("send_document", args).error(*words)
            e.nothing_sent(seq)
        e.check("send_document: %s -> isError naming %s, nothing sent" % (what, ", ".join(words)), run)

    def sandbox_test_mode():
        acct = e.sbx.account(PROVIDER, "sandbox-us")
        s2 = Session(e.br.port, "/iinkedsign/sandbox-us/mcp", [("api_key", acct["api_key"])])
        seq = e.seq()
        r = s2.call("send_document", variant(test_mode=True))
        sc = r.ok()
        assert sc["region"] == "sandbox-us" and "not binding" in sc["message"], sc
        got = e.log(seq)
        assert [(q["region"], q["method"], q["route"]) for q in got] == [
            ("sandbox-us", "POST", "POST /api/v1/files/upload"),
            ("sandbox-us", "POST", "POST /api/v1/packages/add")], got
    e.check("send_document: test_mode on a sandbox datacenter (/iinkedsign/sandbox-us/mcp) sends "
            "there", sandbox_test_mode)

    def forbidden():
        us = Session(e.br.port, ROUTE, [("X-API-Key", e.user_key)])
        seq = e.seq()
        us.call("send_document", base).error("403", "permission")
        got = e.log(seq)
        assert [(q["route"], q["status"]) for q in got] == [("POST /api/v1/files/upload", 403)], got
    e.check("send_document: the user key without editor roles -> isError 403 at the upload, "
            "nothing created", forbidden)
    return created.get("pid")


def t_send_from_template(e):
    tpls = e.direct("POST", "/templates/list", {"take": 100})["items"]
    svc = next(t for t in tpls if len(t["signers"]) == 3 and t["recipients"])
    roles = [s["templateRole"] for s in svc["signers"]]
    created = {}

    def send():
        seq = e.seq()
        t0 = time.time()
        sc = e.s.call("send_from_template", {
            "template_id": svc["templateId"], "title": "MSA - Fraser Holdings",
            "message": "Countersigned copy to follow.",
            "signers": [{"role": roles[2], "name": "Wendy Witness", "email": "wendy@example.com"},
                        {"role": roles[0], "name": "Carl Client", "email": "carl@example.com"},
                        {"role": roles[1], "name": "Paula Provider", "email": "paula@example.com"}],
            "cc": ["records@example.com"], "expires_in_days": 5}).ok()
        (add,) = e.upstream(seq, [("POST", "/packages/add")])
        body = jbody(add)
        assert body["templateId"] == svc["templateId"] and body["state"] == "open" and \
            body["name"] == "MSA - Fraser Holdings" and body["message"] == "Countersigned copy to follow." \
            and "type" not in body and "documents" not in body, "body %r" % body
        assert [(s["templateRole"], s["firstName"], s["lastName"], s["email"]) for s in body["signers"]] \
            == [(roles[2], "Wendy", "Witness", "wendy@example.com"),
                (roles[0], "Carl", "Client", "carl@example.com"),
                (roles[1], "Paula", "Provider", "paula@example.com")], body["signers"]
        assert body["recipients"] == [{"firstName": "Records", "lastName": "CC",
                                       "email": "records@example.com"}], body["recipients"]
        assert abs(ms(body["timeSignBy"]) / 1000.0 - (t0 + 5 * 86400)) < 120
        pkg = e.package(sc["document_id"])
        compare_document(sc["document"], pkg)
        assert pkg["templateId"] == svc["templateId"]
        assert [s["role"] for s in sc["document"]["signers"]] == roles, \
            "signers follow the template's role order: %r" % [s["role"] for s in sc["document"]["signers"]]
        created["pid"] = sc["document_id"]
    e.check("send_from_template: POST /packages/add {templateId, signers[].templateRole, "
            "recipients, state open}; signers land in the template's roles", send)

    def missing():
        seq = e.seq()
        e.s.call("send_from_template", {"template_id": UNKNOWN_ID, "signers": [
            {"role": "Client", "name": "Carl Client", "email": "carl@example.com"}]}).error("not found")
        e.upstream(seq, [("POST", "/packages/add")])
    e.check("send_from_template: unknown template -> isError naming not found", missing)

    def bad_role():
        seq = e.seq()
        e.s.call("send_from_template", {"template_id": svc["templateId"], "signers": [
            {"role": "Janitor", "name": "Carl Client", "email": "carl@example.com"}]}).error(
            "400", "Janitor")
        e.upstream(seq, [("POST", "/packages/add")])
    e.check("send_from_template: a role the template lacks -> isError with iinked's reason", bad_role)

    def forbidden():
        us = Session(e.br.port, ROUTE, [("X-API-Key", e.user_key)])
        seq = e.seq()
        us.call("send_from_template", {"template_id": svc["templateId"], "signers": [
            {"role": roles[0], "name": "Carl Client", "email": "carl@example.com"}]}).error("403")
        got = e.log(seq)
        assert [(q["route"], q["status"]) for q in got] == [("POST /api/v1/packages/add", 403)], got
    e.check("send_from_template: the user key without editor roles -> isError 403", forbidden)

    sig = [{"role": roles[0], "name": "Carl Client", "email": "carl@example.com"}]
    cases = [
        ("prefill", {"template_id": svc["templateId"], "signers": sig,
                     "prefill": [{"field": "Fee", "value": "100"}]}, ["prefill"]),
        ("a role twice", {"template_id": svc["templateId"], "signers": sig + [
            {"role": roles[0], "name": "Dan Dee", "email": "dan@example.com"}]}, ["signers[1].role"]),
        ("a one-word name", {"template_id": svc["templateId"], "signers": [
            {"role": roles[0], "name": "Carl", "email": "carl@example.com"}]}, ["signers[0].name"]),
        ("a template id with '/'", {"template_id": "a/b", "signers": sig}, ["template_id"]),
        ("no role (schema)", {"template_id": svc["templateId"], "signers": [
            {"name": "Carl Client", "email": "carl@example.com"}]}, ["role"]),
    ]
    for what, args, words in cases:
        def run(args=args, words=words):
            seq = e.seq()
            e.s.call("send_from_template", args).error(*words)
            e.nothing_sent(seq)
        e.check("send_from_template: %s -> isError naming %s, nothing sent" % (what, ", ".join(words)),
                run)
    return created.get("pid")


def t_change_signer(e, pid, draft):
    def run():
        before = e.package(pid)
        old = before["signers"][1]
        seq = e.seq()
        sc = e.s.call("change_signer", {"document_id": pid, "old_email": old["email"].upper(),
                                        "new_name": "Noah Larsen", "new_email": "noah.larsen@example.com",
                                        "reason": "Grace left the company"}).ok()
        get, upd = e.upstream(seq, [("GET", "/packages/" + pid), ("POST", "/packages/update")])
        body = jbody(upd)
        assert body == {"packageId": pid, "signers": [
            {"firstName": "Noah", "lastName": "Larsen", "email": "noah.larsen@example.com",
             "signerId": old["signerId"], "mobileNumber": None}]}, "update body %r" % body
        after = e.package(pid)
        assert [s["email"] for s in after["signers"]] == [before["signers"][0]["email"],
                                                          "noah.larsen@example.com"]
        assert after["signers"][1]["signerId"] == old["signerId"]
        s = sc["signer"]
        assert s["email"] == "noah.larsen@example.com" and s["name"] == "Noah Larsen" and \
            s["status"] == "pending" and s["order"] == 2 and s["id"] == old["signerId"], s
        assert sc.get("outcome", "done") == "done" and sc["document_id"] == pid and "reason" in sc["message"]
    e.check("change_signer: GET /packages/{id} for the signer id, then POST /packages/update "
            "{packageId, signers:[{signerId, new names, email}]}", run)

    def on_draft():
        before = e.package(draft)
        assert before["state"] == "draft" and len(before["signers"]) >= 2, before["state"]
        first = before["signers"][0]
        seq = e.seq()
        e.s.call("change_signer", {"document_id": draft, "old_email": first["email"],
                                   "new_name": "Kenji Sato", "new_email": "kenji.sato@example.com"}).ok()
        _, upd = e.upstream(seq, [("GET", "/packages/" + draft), ("POST", "/packages/update")])
        body = jbody(upd)
        assert [s["email"] for s in body["signers"]] == ["kenji.sato@example.com"] + \
            [s["email"] for s in before["signers"][1:]], "a draft gets its whole list: %r" % body
        after = e.package(draft)
        assert [s["email"] for s in after["signers"]] == ["kenji.sato@example.com"] + \
            [s["email"] for s in before["signers"][1:]], "signers lost: %r" % after["signers"]
    e.check("change_signer on a draft: the whole signer list goes back, nobody is lost", on_draft)

    def signed():
        r = e.sbx.advance(pid, "signed")  # the first signer (Sequential) signs
        assert r.status == 200, r.describe()
        who = e.package(pid)["signers"][0]["email"]
        seq = e.seq()
        e.s.call("change_signer", {"document_id": pid, "old_email": who, "new_name": "X Y",
                                   "new_email": "x@example.com"}).error("already signed")
        e.upstream(seq, [("GET", "/packages/" + pid)])
    e.check("change_signer: a signer who signed -> isError, only the read went out", signed)

    def unknown_email():
        seq = e.seq()
        e.s.call("change_signer", {"document_id": pid, "old_email": "nobody@example.com",
                                   "new_name": "X Y", "new_email": "x@example.com"}).error(
            "no signer with email nobody@example.com", "noah.larsen@example.com")
        e.upstream(seq, [("GET", "/packages/" + pid)])
    e.check("change_signer: an email that is no signer -> isError listing the signers", unknown_email)

    def missing():
        seq = e.seq()
        e.s.call("change_signer", {"document_id": UNKNOWN_ID, "old_email": "a@example.com",
                                   "new_name": "X Y", "new_email": "x@example.com"}).error("not found")
        e.upstream(seq, [("GET", "/packages/" + UNKNOWN_ID)])
    e.check("change_signer: unknown id -> isError naming not found", missing)

    def invalid():
        seq = e.seq()
        e.s.call("change_signer", {"document_id": pid, "old_email": "a@example.com",
                                   "new_name": "Prince", "new_email": "x@example.com"}).error("new_name")
        e.s.call("change_signer", {"document_id": pid, "old_email": "not-an-email",
                                   "new_name": "X Y", "new_email": "x@example.com"}).error("old_email")
        e.nothing_sent(seq)
    e.check("change_signer: a one-word new_name or a bad email -> isError naming the field, "
            "nothing sent", invalid)


def t_extend(e, open_pkg, executed):
    def days():
        t0 = time.time()
        seq = e.seq()
        sc = e.s.call("extend_expiry", {"document_id": open_pkg, "days": 45}).ok()
        (upd,) = e.upstream(seq, [("POST", "/packages/update")])
        body = jbody(upd)
        assert set(body) == {"packageId", "timeSignBy"} and body["packageId"] == open_pkg, body
        assert abs(ms(body["timeSignBy"]) / 1000.0 - (t0 + 45 * 86400)) < 120, body
        pkg = e.package(open_pkg)
        same_time(sc["expires_at"], pkg["timeSignBy"], "expires_at")
        assert sc.get("outcome", "done") == "done" and sc["document_id"] == open_pkg
    e.check("extend_expiry {days}: POST /packages/update {packageId, timeSignBy}; expires_at is "
            "the package's new timeSignBy", days)

    def at():
        when = "2031-03-04T05:06:07Z"
        seq = e.seq()
        sc = e.s.call("extend_expiry", {"document_id": open_pkg, "expires_at": "2031-03-04T06:06:07+01:00"}).ok()
        body = jbody(e.upstream(seq, [("POST", "/packages/update")])[0])
        same_time(body["timeSignBy"], when, "timeSignBy")
        same_time(sc["expires_at"], when, "expires_at")
        same_time(e.package(open_pkg)["timeSignBy"], when, "the package's timeSignBy")
    e.check("extend_expiry {expires_at}: the time goes up in UTC", at)

    def closed():
        seq = e.seq()
        e.s.call("extend_expiry", {"document_id": executed, "days": 3}).error("400", "executed")
        e.upstream(seq, [("POST", "/packages/update")])
    e.check("extend_expiry: an executed package -> isError with iinked's reason", closed)

    def missing():
        seq = e.seq()
        e.s.call("extend_expiry", {"document_id": UNKNOWN_ID, "days": 3}).error("not found")
        e.upstream(seq, [("POST", "/packages/update")])
    e.check("extend_expiry: unknown id -> isError naming not found", missing)

    def invalid():
        seq = e.seq()
        e.s.call("extend_expiry", {"document_id": open_pkg, "expires_at": "2001-01-01T00:00:00Z"}).error(
            "expires_at")
        e.s.call("extend_expiry", {"document_id": open_pkg}).error()
        e.s.call("extend_expiry", {"document_id": open_pkg, "days": 0}).error("days")
        e.nothing_sent(seq)
    e.check("extend_expiry: a past expires_at, neither field, days 0 -> isError, nothing sent", invalid)


def t_signing_link(e, pid, executed):
    def run():
        pkg = e.package(pid)
        s = next(x for x in pkg["signers"] if not x["isExecuted"])
        seq = e.seq()
        t0 = time.time()
        sc = e.s.call("get_signing_link", {"document_id": pid, "signer_email": s["email"],
                                           "redirect_url": "https://example.com/done"}).ok()
        e.upstream(seq, [("GET", "/packages/" + pid),
                         ("POST", "/packages/%s/link/sign/%s" % (pid, s["signerId"]))])
        assert sc["url"].startswith(e.sbx.origin + "/iinkedsign/us/link/"), sc["url"]
        assert sc["document_id"] == pid and sc["signer_email"] == s["email"]
        assert 3000 < ms(sc["expires_at"]) / 1000.0 - t0 < 4000, "expires_at %r" % sc["expires_at"]
        page = request(e.sbx.port, "GET", urllib.parse.urlsplit(sc["url"]).path)
        assert page.status == 200 and b"<" in page.body, page.describe()
    e.check("get_signing_link: GET /packages/{id} for the signer id, then POST "
            "/packages/{id}/link/sign/{signerId}; the link opens", run)

    def signed():
        pkg = e.package(pid)
        s = next(x for x in pkg["signers"] if x["isExecuted"])
        seq = e.seq()
        e.s.call("get_signing_link", {"document_id": pid, "signer_email": s["email"]}).error(
            "already signed")
        e.upstream(seq, [("GET", "/packages/" + pid)])
    e.check("get_signing_link: a signer who signed -> isError, only the read went out", signed)

    def closed():
        seq = e.seq()
        e.s.call("get_signing_link", {"document_id": executed, "signer_email": "a@example.com"}).error(
            "executed")
        e.upstream(seq, [("GET", "/packages/" + executed)])
    e.check("get_signing_link: an executed package -> isError naming its state", closed)

    def unknown():
        seq = e.seq()
        e.s.call("get_signing_link", {"document_id": pid, "signer_email": "zed@example.com"}).error(
            "no signer with email zed@example.com")
        e.upstream(seq, [("GET", "/packages/" + pid)])
        seq = e.seq()
        e.s.call("get_signing_link", {"document_id": UNKNOWN_ID, "signer_email": "a@example.com"}).error(
            "not found")
        e.upstream(seq, [("GET", "/packages/" + UNKNOWN_ID)])
    e.check("get_signing_link: unknown signer email or package -> isError (not found)", unknown)

    def invalid():
        seq = e.seq()
        e.s.call("get_signing_link", {"document_id": pid, "signer_email": "nope"}).error("signer_email")
        e.s.call("get_signing_link", {"document_id": "a b", "signer_email": "a@example.com"}).error(
            "document_id")
        e.nothing_sent(seq)
    e.check("get_signing_link: a bad email or id -> isError naming the field, nothing sent", invalid)


def t_download(e, executed, open_pkg):
    def kind(k, qtype, suffix):
        seq = e.seq()
        r = e.s.call("download_document", {"document_id": executed, "kind": k} if k else
                     {"document_id": executed})
        sc = r.ok()
        (got,) = e.upstream(seq, [("GET", "/packages/%s/download" % executed)])
        assert query(got) == {"type": qtype}, "query %r" % got["query"]
        res = [c for c in r.raw["content"] if c.get("type") == "resource"]
        assert len(res) == 1, "no embedded resource: %r" % r.raw["content"]
        data = base64.b64decode(res[0]["resource"]["blob"])
        assert data.startswith(b"%PDF-") and res[0]["resource"]["mimeType"] == "application/pdf"
        direct = e.direct("GET", "/packages/%s/download?type=%s" % (executed, qtype))
        assert data == direct.body, "the file differs from the sandbox's own download"
        assert sc["document_id"] == executed and sc["kind"] == (k or "document") and \
            sc["size_bytes"] == len(data) and sc["delivery"] == "embedded" and \
            sc["mime_type"] == "application/pdf" and sc["file_name"] == executed + suffix, sc
    e.check("download_document (document): GET /packages/{id}/download?type=executed, the PDF "
            "embedded", kind, None, "executed", ".pdf")
    e.check("download_document (audit_trail): type=cac, the certificate embedded", kind,
            "audit_trail", "cac", "-certificate.pdf")

    def unexecuted():
        seq = e.seq()
        e.s.call("download_document", {"document_id": open_pkg}).error("400", "not been executed")
        e.upstream(seq, [("GET", "/packages/%s/download" % open_pkg)])
    e.check("download_document: a package not executed -> isError saying so", unexecuted)

    def missing():
        seq = e.seq()
        e.s.call("download_document", {"document_id": UNKNOWN_ID}).error("not found")
        e.upstream(seq, [("GET", "/packages/%s/download" % UNKNOWN_ID)])
    e.check("download_document: unknown id -> isError naming not found", missing)

    def invalid():
        seq = e.seq()
        e.s.call("download_document", {"document_id": executed, "kind": "zip"}).error("kind")
        e.s.call("download_document", {"document_id": "x?type=masterfile"}).error("document_id")
        e.nothing_sent(seq)
    e.check("download_document: a bad kind or id -> isError naming the field, nothing sent", invalid)


def compare_template(t, x):
    assert t["id"] == x["templateId"] and t["title"] == x["name"] and \
        t["description"] == x.get("description"), t
    same_time(t["created_at"], x.get("timeCreated"), "created_at")
    same_time(t["updated_at"], x.get("timeUpdated"), "updated_at")
    want = [(s["templateRole"], "signer", s["index"] + 1, s.get("email")) for s in x["signers"]] + \
        [(r["templateRole"], "cc", None, r.get("email")) for r in x.get("recipients") or []]
    got = [(r["name"], r["kind"], r["order"], r["default_email"]) for r in t["roles"]]
    assert got == want, "roles %r, expected %r" % (got, want)


def t_templates(e):
    def lst():
        seq = e.seq()
        sc = e.s.call("list_templates", {"page_size": 3}).ok()
        (got,) = e.upstream(seq, [("POST", "/templates/list")])
        assert jbody(got) == {"take": 3, "skip": 0}, jbody(got)
        want = e.direct("POST", "/templates/list", {"take": 3, "skip": 0})
        assert len(sc["templates"]) == len(want["items"]) > 0
        for t, x in zip(sc["templates"], want["items"]):
            compare_template(t, x)
        assert sc["total"] == want["total"] and \
            sc["next_page"] == (2 if want["total"] > 3 else None), sc
    e.check("list_templates: POST /templates/list {take, skip}; roles with order and defaults", lst)

    def search():
        seq = e.seq()
        sc = e.s.call("list_templates", {"query": "Lease"}).ok()
        (got,) = e.upstream(seq, [("POST", "/templates/list")])
        assert jbody(got) == {"take": 20, "skip": 0, "search": "Lease"}, jbody(got)
        want = e.direct("POST", "/templates/list", {"take": 20, "search": "Lease"})
        assert [t["id"] for t in sc["templates"]] == [x["templateId"] for x in want["items"]]
    e.check("list_templates: query becomes search", search)

    def one():
        want = e.direct("POST", "/templates/list", {"take": 100})["items"]
        x = want[-1]
        seq = e.seq()
        sc = e.s.call("get_template", {"template_id": x["templateId"].upper()}).ok()
        (got,) = e.upstream(seq, [("POST", "/templates/list")])
        assert jbody(got) == {"take": 100, "skip": 0}, jbody(got)
        compare_template(sc["template"], x)
    e.check("get_template: found by id in POST /templates/list (iinked has no get-by-id)", one)

    def missing():
        seq = e.seq()
        e.s.call("get_template", {"template_id": UNKNOWN_ID}).error("no template " + UNKNOWN_ID,
                                                                    "list_templates")
        e.upstream(seq, [("POST", "/templates/list")])
    e.check("get_template: unknown id -> isError naming it (one page read)", missing)

    def invalid():
        seq = e.seq()
        e.s.call("get_template", {"template_id": "x/y"}).error("template_id")
        e.s.call("list_templates", {"page": 0}).error("page")
        e.nothing_sent(seq)
    e.check("list_templates/get_template: bad arguments -> isError naming the field, nothing sent",
            invalid)


def t_logs(e):
    def clean():
        text = e.br.stderr_text()
        assert "tool_output_invalid" not in text, [ln for ln in text.splitlines()
                                                   if "tool_output_invalid" in ln][:3]
        for label, v in (("the organization key", e.key), ("the user key", e.user_key)):
            assert v not in text, "%s is in signbridge's log" % label
        assert text.strip(), "signbridge's log is empty"
    e.check("signbridge's log: no tool_output_invalid line, no API key", clean)


def main(checks, sbx, br):
    e = Env(checks, sbx, br)
    t_tools_list(e)
    pkgs = e.all_packages()
    admin = e.acct["member_id"]
    user_member = e.acct["user_api_key"]["member_id"]
    mine = [p for p in pkgs if p["memberId"] == admin]
    opens = [p["packageId"] for p in mine if p["state"] == "open" and p["type"] in ("concurrent",
                                                                                     "Sequential")]
    executed = next(p["packageId"] for p in mine if p["state"] == "executed")
    draft = next(p["packageId"] for p in mine if p["state"] == "draft" and len(p["signers"]) >= 2)
    user_pkg = next(p["packageId"] for p in pkgs if p["memberId"] == user_member and p["state"] == "open")
    t_list_documents(e)
    t_get_document(e, pkgs)
    t_revoke(e, opens[0], user_pkg)
    sent = t_send_document(e)
    t_send_from_template(e)
    t_extend(e, opens[1], executed)
    if sent:
        t_change_signer(e, sent, draft)
        t_signing_link(e, sent, executed)
    else:
        checks.fail("change_signer and get_signing_link", "send_document created no package to use")
    t_download(e, executed, opens[2])
    t_templates(e)
    t_logs(e)


def stop_checked(checks, proc, name):
    alive = proc.alive()
    rc = proc.stop(timeout=30)
    if not alive:
        checks.fail("%s alive at the end" % name, "exited early: %r; %s" % (rc, proc.stderr_text()[-1500:]))
    elif rc == 0:
        checks.ok("%s exits 0 on SIGTERM" % name)
    else:
        checks.fail("%s exits 0 on SIGTERM" % name, "exit %r; %s" % (rc, proc.stderr_text()[-1500:]))
    crash = proc.crash_report()
    if crash:
        checks.fail("no sanitizer report from %s" % name, crash + " ... " + proc.stderr_text()[-3000:])
    else:
        checks.ok("no sanitizer report from %s" % name)


def run():
    sbtest.require_bin()
    sbxtest.require_sandbox()
    checks = Checks()
    sbx = sbxtest.Sandbox(["--no-rate-limits"], seed=SEED)
    br = None
    try:
        sbx.start()
        br = sbtest.Server(args=["--sandbox-url", sbx.origin],
                           env={"SIGNBRIDGE_LOG_LEVEL": "debug"})
        br.start()
    except Exception as ex:  # noqa: BLE001
        checks.fail("sandbox and signbridge start", ex)
        if br is not None:
            br.kill()
        sbx.kill()
        sys.exit(checks.finish())
    print("# sandbox on port %d, signbridge on port %d" % (sbx.port, br.port), flush=True)
    try:
        main(checks, sbx, br)
    except Exception as ex:  # noqa: BLE001 - report, then still stop the processes
        checks.fail("test body raised", "%s: %s | %s" % (type(ex).__name__, ex,
                                                          traceback.format_exc()[-1500:]))
    finally:
        stop_checked(checks, br, "signbridge")
        stop_checked(checks, sbx, "the sandbox")
        br.tmp.cleanup()
        sbx.tmp.cleanup()
    sys.exit(checks.finish())


if __name__ == "__main__":
    run()
