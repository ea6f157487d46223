"""sandbox-lifecycle: documents move through their lifecycle as each provider allows, the control
endpoints record what happened, and /_sandbox/reset restores the seed.

- A send appears (BoldSign only after its asynchronous window: properties 403 "Invalid Document ID"
  right after the send, then 200; Dropbox Sign files 409 right after the send, then 200).
- POST /_sandbox/documents/{id}/advance moves documents: viewed, signed, completed, declined,
  expired, revoked (as the provider allows; moves from a final state are refused with 409).
- Provider rules: BoldSign remind 204 while in progress, refused once completed; revoke needs a
  message, then Revoked; Dropbox Sign remind twice within an hour refused; cancel -> empty 200, then
  410; iinked rescind -> rescinded; auto-progress (auto_progress_ms) completes a send by itself.
- /_sandbox/requests records method, path, query, auth scheme, account and body; /_sandbox/stats
  counts per provider/region/route.
- /_sandbox/reset restores the seed (same ids as a fresh process with the same --seed); another
  seed gives other keys.
"""

import base64
import json
import time
import uuid

import sbxtest
from sbxtest import Sandbox, basic, bold_auth, expect, iinked_auth, jbody, stop_and_check, wait_until

PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>"
       b"endobj 3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")
DATA_URI = "data:application/pdf;base64," + base64.b64encode(PDF).decode()


def sig_field(n):
    return [{"id": "sign%d" % n, "fieldType": "Signature", "pageNumber": 1,
             "bounds": {"x": 100, "y": 100 + 80 * n, "width": 200, "height": 50}, "isRequired": True}]


# ---- BoldSign ---------------------------------------------------------------------------------

class Bold:
    def __init__(self, sb, region="us"):
        self.sb = sb
        self.a = sb.account("boldsign", region)
        self.base = self.a["base_url"]
        self.h = bold_auth(self.a["api_key"])

    def send(self, title, signers=2):
        body = {"title": title, "message": "please sign", "enableSigningOrder": True, "files": [DATA_URI],
                "signers": [{"name": "Signer %d" % i, "emailAddress": "signer%d.%s@example.com" % (i, uuid.uuid4().hex[:6]),
                             "signerOrder": i, "signerType": "Signer", "formFields": sig_field(i)}
                            for i in range(1, signers + 1)]}
        r = self.sb.post(self.base + "/v1/document/send", self.h, body)
        expect(r, 201, "BoldSign send")
        did = jbody(r).get("documentId")
        assert isinstance(did, str) and did, "201 without documentId: %s" % r.describe()
        return did

    def props(self, did):
        return self.sb.get(self.base + "/v1/document/properties?" + sbxtest.q(documentId=did), self.h)

    def ready(self, did):
        r = wait_until(lambda: self.props(did).status == 200 and self.props(did), timeout=15)
        assert r and r.status == 200, "properties never became 200 after the send: %s" % self.props(did).describe()
        return jbody(r)

    def listed(self, did):
        r = expect(self.sb.get(self.base + "/v1/document/list?Page=1&PageSize=100", self.h), 200)
        return any(d.get("documentId") == did for d in jbody(r).get("result", []))


def boldsign(checks, sb):
    b = Bold(sb)
    state = {}

    def async_send():
        did = b.send("Lifecycle async")
        r = b.props(did)
        assert r.status == 403 and jbody(r) == {"error": "Invalid Document ID"}, \
            "right after a send, properties should be 403 {\"error\":\"Invalid Document ID\"}: %s" % r.describe()
        assert not b.listed(did), "the document is listed before its processing window ended"
        p = b.ready(did)
        assert p.get("status") == "InProgress", "status after processing: %r" % p.get("status")
        assert b.listed(did), "not listed after processing"
        state["did"] = did
    checks.check("BoldSign: send 201, properties 403 \"Invalid Document ID\" at once, then 200 InProgress and listed",
                 async_send)
    did = state.get("did")
    if not did:
        return

    def remind_in_progress():
        r = sb.post(b.base + "/v1/document/remind?" + sbxtest.q(documentId=did), b.h, {"message": "nudge"})
        expect(r, 204, "remind while in progress")
        assert r.body == b"", "204 with a body: %r" % r.body[:100]
    checks.check("BoldSign: remind an in-progress document -> 204", remind_in_progress)

    def steps():
        expect(sb.advance(did, "viewed"), 200, "advance viewed")
        p = jbody(b.props(did))
        assert p["signerDetails"][0].get("isViewed") is True, "viewed: first signer isViewed: %s" % p["signerDetails"][0]
        expect(sb.advance(did, "signed"), 200, "advance signed")
        p = jbody(b.props(did))
        assert p["signerDetails"][0]["status"] == "Completed", "signed: first signer status %r" % p["signerDetails"][0]["status"]
        assert p["signerDetails"][1]["status"] == "NotCompleted", "second signer %r" % p["signerDetails"][1]["status"]
        assert p["status"] == "InProgress", p["status"]
        expect(sb.advance(did, "completed"), 200, "advance completed")
        p = jbody(b.props(did))
        assert p["status"] == "Completed", "completed: status %r" % p["status"]
        assert all(s["status"] == "Completed" for s in p["signerDetails"]), p["signerDetails"]
        actions = [h.get("action") for h in p.get("documentHistory", [])]
        assert "Completed" in actions or "Signed" in actions, "documentHistory records the signing: %s" % actions
    checks.check("BoldSign: advance viewed -> signed (first signer) -> completed, visible in properties", steps)

    def completed_rules():
        r = sb.post(b.base + "/v1/document/remind?" + sbxtest.q(documentId=did), b.h, {"message": "nudge"})
        assert r.status == 400 and isinstance(jbody(r).get("error"), str), \
            "remind on a completed document should be 400 {error}: %s" % r.describe()
        r = sb.post(b.base + "/v1/document/revoke?" + sbxtest.q(documentId=did), b.h, {"message": "stop"})
        assert 400 <= r.status < 500 and isinstance(jbody(r).get("error"), str), \
            "revoke of a completed document should be refused: %s" % r.describe()
        r = sb.advance(did, "declined")
        assert r.status == 409, "advance declined from Completed should be 409: %s" % r.describe()
    checks.check("BoldSign: completed documents refuse remind (400), revoke, and further advances (409)",
                 completed_rules)

    def revoke():
        d2 = b.send("Lifecycle revoke")
        b.ready(d2)
        r = sb.post(b.base + "/v1/document/revoke?" + sbxtest.q(documentId=d2), b.h, {"message": ""})
        assert r.status == 400, "revoke with an empty message should be 400: %s" % r.describe()
        r = sb.post(b.base + "/v1/document/revoke?" + sbxtest.q(documentId=d2), b.h, {"message": "withdrawn"})
        expect(r, 204, "revoke")
        p = jbody(b.props(d2))
        assert p["status"] == "Revoked", "after revoke: %r" % p["status"]
        assert p.get("revokeMessage") == "withdrawn", "revokeMessage %r" % p.get("revokeMessage")
    checks.check("BoldSign: revoke needs a message (400), then 204 and status Revoked with the message", revoke)

    for to, want in (("declined", "Declined"), ("expired", "Expired"), ("revoked", "Revoked")):
        def other(to=to, want=want):
            d = b.send("Lifecycle " + to)
            b.ready(d)
            expect(sb.advance(d, to), 200, "advance " + to)
            p = jbody(b.props(d))
            assert p["status"] == want, "advance %s: status %r" % (to, p["status"])
        checks.check("BoldSign: advance %s -> status %s" % (to, want), other)


# ---- Dropbox Sign -----------------------------------------------------------------------------

class Dbx:
    def __init__(self, sb):
        self.sb = sb
        self.a = sb.account("dropboxsign", "global")
        self.base = self.a["base_url"]
        self.h = basic(self.a["api_key"])

    def send(self, title, signers=2):
        body = {"title": title, "subject": title, "message": "please sign", "test_mode": True,
                "file_urls": ["https://example.com/%s.pdf" % uuid.uuid4().hex],
                "signers": [{"name": "Signer %d" % i, "email_address": "dbx%d.%s@example.com" % (i, uuid.uuid4().hex[:6]),
                             "order": i - 1} for i in range(1, signers + 1)]}
        r = self.sb.post(self.base + "/signature_request/send", self.h, body)
        expect(r, 200, "Dropbox Sign send")
        sr = jbody(r)["signature_request"]
        return sr

    def get(self, sid):
        return self.sb.get(self.base + "/signature_request/" + sid, self.h)


def dropboxsign(checks, sb):
    d = Dbx(sb)
    state = {}

    def files_409():
        sr = d.send("Dbx files")
        sid = sr["signature_request_id"]
        r = sb.get(d.base + "/signature_request/files/" + sid, d.h)
        assert r.status == 409 and jbody(r)["error"]["error_name"] == "conflict", \
            "files right after a send should be 409 conflict: %s" % r.describe()
        r = wait_until(lambda: (lambda x: x if x.status == 200 else None)(
            sb.get(d.base + "/signature_request/files/" + sid, d.h)), timeout=15)
        assert r, "files never became 200"
        assert r.header("Content-Type", "").startswith("application/pdf") and r.body.startswith(b"%PDF-"), r.describe()
        state["sr"] = sr
    checks.check("Dropbox Sign: files 409 conflict right after a send, then 200 application/pdf", files_409)
    sr = state.get("sr")
    if not sr:
        return
    sid = sr["signature_request_id"]
    first = sr["signatures"][0]["signer_email_address"]

    def remind_twice():
        r = sb.post(d.base + "/signature_request/remind/" + sid, d.h, {"email_address": first})
        expect(r, 200, "first reminder")
        sig = [s for s in jbody(r)["signature_request"]["signatures"] if s["signer_email_address"] == first][0]
        assert isinstance(sig.get("last_reminded_at"), int), "last_reminded_at after a reminder: %s" % sig
        r = sb.post(d.base + "/signature_request/remind/" + sid, d.h, {"email_address": first})
        assert 400 <= r.status < 500, "a second reminder within the hour should be refused: %s" % r.describe()
        e = jbody(r).get("error", {})
        assert isinstance(e.get("error_msg"), str) and isinstance(e.get("error_name"), str), r.describe()
    checks.check("Dropbox Sign: remind 200 (last_reminded_at set), a second remind within an hour refused with an error body",
                 remind_twice)

    def steps():
        expect(sb.advance(sid, "viewed"), 200, "advance viewed")
        s = jbody(d.get(sid))["signature_request"]
        assert isinstance(s["signatures"][0].get("last_viewed_at"), int), "viewed: %s" % s["signatures"][0]
        expect(sb.advance(sid, "signed"), 200, "advance signed")
        s = jbody(d.get(sid))["signature_request"]
        assert s["signatures"][0]["status_code"] == "signed" and isinstance(s["signatures"][0].get("signed_at"), int), s["signatures"][0]
        assert s["signatures"][1]["status_code"] == "awaiting_signature", s["signatures"][1]
        assert s["is_complete"] is False
        expect(sb.advance(sid, "completed"), 200, "advance completed")
        s = jbody(d.get(sid))["signature_request"]
        assert s["is_complete"] is True and all(x["status_code"] == "signed" for x in s["signatures"]), s
        r = sb.advance(sid, "declined")
        assert r.status == 409, "advance declined from complete should be 409: %s" % r.describe()
    checks.check("Dropbox Sign: advance viewed -> signed -> completed (is_complete), then 409 for declined", steps)

    def cancel():
        s2 = d.send("Dbx cancel")
        sid2 = s2["signature_request_id"]
        r = sb.post(d.base + "/signature_request/cancel/" + sid2, d.h)
        expect(r, 200, "cancel")
        assert r.body == b"", "cancel should answer an empty 200, got %r" % r.body[:200]
        r = wait_until(lambda: (lambda x: x if x.status == 410 else None)(d.get(sid2)), timeout=15)
        assert r, "after cancel (asynchronous) the request should become 410 deleted: %s" % d.get(sid2).describe()
        assert jbody(r)["error"]["error_name"] == "deleted", r.describe()
    checks.check("Dropbox Sign: cancel -> empty 200, then GET 410 deleted", cancel)

    def declined():
        s3 = d.send("Dbx declined")
        expect(sb.advance(s3["signature_request_id"], "declined"), 200)
        s = jbody(d.get(s3["signature_request_id"]))["signature_request"]
        assert s["is_declined"] is True and any(x["status_code"] == "declined" for x in s["signatures"]), s
    checks.check("Dropbox Sign: advance declined -> is_declined, a signature declined", declined)

    def expired():
        s4 = d.send("Dbx expired")
        expect(sb.advance(s4["signature_request_id"], "expired"), 200)
        s = jbody(d.get(s4["signature_request_id"]))["signature_request"]
        assert s["is_complete"] is False and s.get("expires_at") and s["expires_at"] <= time.time() + 5, \
            "expired: expires_at should be in the past: %s" % s.get("expires_at")
        assert any(x["status_code"] == "expired" for x in s["signatures"]), [x["status_code"] for x in s["signatures"]]
    checks.check("Dropbox Sign: advance expired -> expires_at passed, signatures expired", expired)

    def revoked():
        s5 = d.send("Dbx revoked")
        expect(sb.advance(s5["signature_request_id"], "revoked"), 200)
        r = wait_until(lambda: (lambda x: x if x.status == 410 else None)(d.get(s5["signature_request_id"])), timeout=15)
        assert r, "advance revoked = canceled: the request should become 410"
    checks.check("Dropbox Sign: advance revoked -> canceled (410)", revoked)


# ---- iinked Sign ------------------------------------------------------------------------------

class Ik:
    def __init__(self, sb):
        self.sb = sb
        self.a = sb.account("iinkedsign", "us")
        self.base = self.a["base_url"]
        self.h = iinked_auth(self.a["api_key"])

    def upload(self):
        boundary = "sbx" + uuid.uuid4().hex
        body = (("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"doc.pdf\"\r\n"
                 "Content-Type: application/pdf\r\n\r\n" % boundary).encode() + PDF +
                ("\r\n--%s--\r\n" % boundary).encode())
        r = self.sb.post(self.base + "/files/upload?type=temporary", self.h +
                         [("Content-Type", "multipart/form-data; boundary=" + boundary)], body)
        expect(r, 200, "iinked upload")
        j = jbody(r)
        f = j[0] if isinstance(j, list) else j
        return f["fileId"]

    def add(self, name, signers=2):
        fid = self.upload()
        body = {"name": name, "type": "Sequential", "state": "open",
                "signers": [{"firstName": "Ik%d" % i, "lastName": "Signer", "email": "ik%d.%s@example.com" % (i, uuid.uuid4().hex[:6])}
                            for i in range(signers)],
                "documents": [{"fileId": fid}]}
        r = self.sb.post(self.base + "/packages/add", self.h, body)
        expect(r, 200, "iinked packages/add")
        return jbody(r)["packageId"]

    def get(self, pid):
        return jbody(expect(self.sb.get(self.base + "/packages/" + pid, self.h), 200, "GET package"))


def iinkedsign(checks, sb):
    k = Ik(sb)
    state = {}

    def steps():
        pid = k.add("Ik lifecycle")
        state["pid"] = pid
        p = k.get(pid)
        assert p["state"] == "open", "new package state %r" % p["state"]
        expect(sb.advance(pid, "viewed"), 200)
        expect(sb.advance(pid, "signed"), 200)
        p = k.get(pid)
        assert p["signers"][0].get("isExecuted") is True, "signed: first signer isExecuted: %s" % p["signers"][0]
        assert p["state"] == "open"
        expect(sb.advance(pid, "completed"), 200)
        p = k.get(pid)
        assert p["state"] == "executed" and p.get("isExecuted") is True, "completed -> executed: %s" % p["state"]
        r = sb.advance(pid, "revoked")
        assert r.status == 409, "advance revoked from executed should be 409: %s" % r.describe()
    checks.check("iinked: packages/add open, advance viewed -> signed -> completed = executed, then 409", steps)

    def rescind():
        pid = k.add("Ik rescind")
        r = sb.post(k.base + "/packages/rescind", k.h, {"packageId": pid, "rescindMessage": "withdrawn", "notify": False})
        expect(r, 200, "rescind")
        assert jbody(r).get("packageId") == pid, r.describe()
        assert k.get(pid)["state"] == "rescinded"
        r = sb.post(k.base + "/packages/rescind", k.h, {"packageId": pid})
        assert r.status == 400 and isinstance(jbody(r).get("error"), str), "rescinding twice: %s" % r.describe()
    checks.check("iinked: rescind -> {packageId}, state rescinded; rescinding again refused", rescind)

    for to, want in (("expired", "expired"), ("revoked", "rescinded"), ("declined", "rescinded")):
        def other(to=to, want=want):
            pid = k.add("Ik " + to)
            expect(sb.advance(pid, to), 200, "advance " + to)
            assert k.get(pid)["state"] == want, "advance %s: state %r" % (to, k.get(pid)["state"])
        checks.check("iinked: advance %s -> state %s" % (to, want), other)


# ---- auto-progress, advance errors -------------------------------------------------------------

def auto_progress(checks, sb):
    def auto():
        sb.config(auto_progress_ms=150)
        try:
            d = Dbx(sb)
            sid = d.send("Dbx auto", signers=2)["signature_request_id"]
            r = wait_until(lambda: jbody(d.get(sid))["signature_request"]["is_complete"], timeout=30, step=0.2)
            assert r, "with auto_progress_ms 150 the request never completed: %s" % d.get(sid).describe()
            k = Ik(sb)
            pid = k.add("Ik auto")
            assert wait_until(lambda: k.get(pid)["state"] == "executed", timeout=30, step=0.2), \
                "iinked package never executed: %s" % k.get(pid)["state"]
            b = Bold(sb)
            did = b.send("Bold auto")
            assert wait_until(lambda: b.props(did).status == 200 and jbody(b.props(did))["status"] == "Completed",
                              timeout=30, step=0.2), "BoldSign document never completed: %s" % b.props(did).describe()
        finally:
            sb.config(auto_progress_ms=0)
    checks.check("auto_progress_ms 150: a send completes by itself (Dropbox Sign, iinked, BoldSign)", auto)

    def advance_errors():
        r = sb.advance("no-such-document-id", "viewed")
        assert r.status == 404, "unknown id: %s" % r.describe()
        r = sb.call("POST", "/_sandbox/documents/whatever/advance", [], {})
        assert r.status == 400, "no 'to': %s" % r.describe()
    checks.check("advance: unknown id 404, missing \"to\" 400", advance_errors)


# ---- request log and stats ---------------------------------------------------------------------

def control(checks, sb):
    def log():
        b, d, k = Bold(sb), Dbx(sb), Ik(sb)
        seq = sb.log()["last_seq"]
        expect(sb.get(b.base + "/v1/document/list?Page=1&PageSize=5", b.h + [("X-Request-Id", "req-abc-1")]), 200)
        body = {"email_address": d.a.get("email") or "nobody@example.com"}
        sb.post(d.base + "/account/verify", d.h, body)
        expect(sb.post(k.base + "/packages/list", k.h, {"take": 3, "skip": 0}), 200)
        entries = sb.log(since=seq)["requests"]
        assert len(entries) == 3, "3 requests since seq %d, got %d: %s" % (seq, len(entries), entries)
        e1, e2, e3 = entries
        assert (e1["provider"], e1["region"], e1["method"], e1["path"], e1["query"]) == \
            ("boldsign", "us", "GET", "/v1/document/list", "Page=1&PageSize=5"), e1
        assert e1["auth_scheme"] == "x-api-key" and e1["account_id"] == b.a["account_id"], e1
        assert e1["status"] == 200 and e1["request_id"] == "req-abc-1" and e1["route"].startswith("GET "), e1
        assert (e2["provider"], e2["method"], e2["path"], e2["auth_scheme"]) == \
            ("dropboxsign", "POST", "/v3/account/verify", "basic"), e2
        assert json.loads(e2["body"]) == body and e2["content_type"].startswith("application/json"), e2
        assert (e3["provider"], e3["path"], e3["auth_scheme"]) == ("iinkedsign", "/api/v1/packages/list", "api_key"), e3
        assert json.loads(e3["body"]) == {"take": 3, "skip": 0}, e3
        only = sb.log(since=seq, provider="dropboxsign")["requests"]
        assert [e["provider"] for e in only] == ["dropboxsign"], only
        assert isinstance(e1["seq"], int) and e1["seq"] > seq and e1["time"].endswith("Z"), e1
    checks.check("/_sandbox/requests records provider, region, method, path, query, auth scheme, account, body, status",
                 log)

    def bearer_logged():
        seq = sb.log()["last_seq"]
        b = Bold(sb)
        sb.get(b.base + "/v1/brand/list", [("Authorization", "Bearer not-a-token")])
        e = sb.log(since=seq)["requests"][-1]
        assert e["auth_scheme"] == "bearer" and e["status"] == 401, e
    checks.check("/_sandbox/requests: a Bearer attempt is logged as auth_scheme bearer (401)", bearer_logged)

    def stats():
        st = sb.stats()
        assert st["total"] > 0 and set(st["providers"]) >= {"boldsign", "dropboxsign", "iinkedsign"}, st
        bs = st["providers"]["boldsign"]
        routes = bs["regions"]["us"]["routes"]
        lst = [k for k in routes if "/v1/document/list" in k]
        assert lst and routes[lst[0]] >= 1, "boldsign us routes: %s" % routes
        assert bs["methods"].get("GET", 0) >= 1, bs["methods"]
        assert sum(r["count"] for r in st["routes"]) == st["total"], "routes do not add up to total"
        only = sb.stats("iinkedsign")
        assert set(only["providers"]) == {"iinkedsign"}, only["providers"].keys()
    checks.check("/_sandbox/stats counts per provider, region, method and route (and ?provider=)", stats)


# ---- reset and seeds ---------------------------------------------------------------------------

def snapshot(sb):
    """Keys, account ids and first-page document ids of every provider, origin-independent."""
    accts = sorted((a["provider"], a["region"], a["account_id"], a["api_key"], a.get("email"),
                    sb.path(a["base_url"])) for a in sb.accounts())
    b, d, k = Bold(sb), Dbx(sb), Ik(sb)
    docs = {
        "boldsign": [x["documentId"] for x in jbody(expect(sb.get(b.base + "/v1/document/list?Page=1&PageSize=100", b.h), 200))["result"]],
        "dropboxsign": [x["signature_request_id"] for x in jbody(expect(sb.get(d.base + "/signature_request/list?page_size=100", d.h), 200))["signature_requests"]],
        "iinkedsign": [x["packageId"] for x in jbody(expect(sb.post(k.base + "/packages/list", k.h, {"take": 100}), 200))["items"]],
        "bold_templates": [x["documentId"] for x in jbody(expect(sb.get(b.base + "/v1/template/list?Page=1&PageSize=100", b.h), 200))["result"]],
    }
    return accts, docs


def reset_and_seed(checks, sb):
    sb.reset()
    before = {}

    def restores():
        before["snap"] = snapshot(sb)
        Dbx(sb).send("after seed")
        Bold(sb).send("after seed")
        Ik(sb).add("after seed")
        sb.add_fault({"provider": "boldsign", "mode": "latency", "latency_ms": 1})
        time.sleep(1.5)
        changed = snapshot(sb)
        assert changed != before["snap"], "the sends changed nothing visible"
        r = sb.reset()
        assert r.get("reset") is True and r.get("seed") == sbxtest.SEED, r
        after = snapshot(sb)
        assert after == before["snap"], "after reset: %s != %s" % (json.dumps(after)[:300], json.dumps(before["snap"])[:300])
        assert sb.ctl("GET", "/_sandbox/faults")["faults"] == [], "reset should clear fault rules"
        assert sb.log()["last_seq"] <= 6, "reset should clear the request log (last_seq %d)" % sb.log()["last_seq"]
    checks.check("POST /_sandbox/reset restores the seed: same accounts, keys and documents; faults and log cleared",
                 restores)
    if "snap" not in before:
        return

    def fresh_same_seed():
        other = Sandbox([], seed=sbxtest.SEED)
        other.start()
        try:
            assert snapshot(other) == before["snap"], "a fresh process with the same --seed differs"
        finally:
            stop_and_check(checks, other)
            other.tmp.cleanup()
    checks.check("a fresh sandbox with the same --seed has the same ids and keys as after reset", fresh_same_seed)

    def other_seed():
        r = sb.reset(seed=sbxtest.SEED + 1)
        assert r.get("seed") == sbxtest.SEED + 1, r
        accts2, _ = snapshot(sb)
        keys1 = {x[3] for x in before["snap"][0]}
        keys2 = {x[3] for x in accts2}
        assert keys1.isdisjoint(keys2), "another seed should give other API keys (shared: %s)" % (keys1 & keys2)
        sb.reset(seed=sbxtest.SEED)
        assert snapshot(sb) == before["snap"], "reset back to the first seed should restore it"
    checks.check("another seed (reset {\"seed\":N}) gives different keys; resetting to the first seed restores it",
                 other_seed)


def main(checks, sb):
    sb.config(rate_limit_overrides={"boldsign": 100000, "dropboxsign": 100000, "iinkedsign": 100000})
    boldsign(checks, sb)
    dropboxsign(checks, sb)
    iinkedsign(checks, sb)
    auto_progress(checks, sb)
    control(checks, sb)
    reset_and_seed(checks, sb)


if __name__ == "__main__":
    sbxtest.run(main)
