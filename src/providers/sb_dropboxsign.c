/* sb_dropboxsign: the Dropbox Sign adapter (API v3; ../shared/reference/dropbox-sign-api.md and
 * dropbox-sign-openapi.yaml). Credential: Authorization: Basic base64(<key>:). Probe: GET /account.
 * Times: epoch seconds. Bodies: JSON, except sends that upload files (multipart/form-data with
 * bracket keys: files[0], signers[0][name], ...). Dropbox Sign has no contacts API, no
 * machine-readable audit trail and no separate audit certificate download: those tools are not
 * served (docs/tools.md). Tools that need a signer's signature_id (reminders, change signer,
 * extend expiry, signing links) read the signature request first and act in a second step. */
#include "providers/sb_provider.h"

#include "core/sb_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What signbridge uploads to Dropbox Sign in one send at most (the reference gives no figure;
 * the request-body buffer of sb_preq is 48 MiB). */
#define DX_UPLOAD_MAX ((size_t)40 << 20)
/* Dropbox Sign refuses a reminder within an hour of the last one to that signer (reference A2). */
#define DX_REMIND_GAP_S 3600
/* get_user: team member pages scanned for the member's role name. */
#define DX_MEMBER_PAGES_MAX 20

static int dx_auth(const char *key, size_t len, sb_buf *out)
{
    char user[1100];
    if (len + 2 > sizeof user) return -1;
    memcpy(user, key, len);
    user[len] = ':';
    char enc[1500];
    sb_base64_encode((const unsigned char *)user, len + 1, enc);
    explicit_bzero(user, sizeof user);
    int rc = sb_buf_printf(out, "Authorization: Basic %s", enc);
    explicit_bzero(enc, sizeof enc);
    return rc;
}

static int dx_probe(const sb_pctx *c, sb_preq *r)
{
    sb_preq_init(r, "GET", 1);
    return sb_preq_url(r, c->base_url, "/account");
}

static void dx_error(const sb_presp *r, char *out, size_t cap)
{
    out[0] = '\0';
    const cJSON *e = sb_jget(r->json, "error");
    const char *m = sb_jstr(e, "error_msg");
    const char *n = sb_jstr(e, "error_name");
    const char *p = sb_jstr(e, "error_path");
    if (m && n && p && *p)
        snprintf(out, cap, "%s (%s, parameter %s)", m, n, p);
    else if (m && n)
        snprintf(out, cap, "%s (%s)", m, n);
    else if (m)
        sb_strlcpy(out, m, cap);
}

/* ---- small helpers ------------------------------------------------------------------------- */

static long long now_s(void)
{
    return (long long)(sb_wall_ms() / 1000);
}

static void add_where(cJSON *o, const sb_pctx *c)
{
    sb_jput_str(o, "provider", c->provider);
    sb_jput_str(o, "region", c->region);
}

/* "Dropbox Sign warned: <msg> (<name>); ..." for the warnings[] of a 200 body, or "". */
static void warnings_text(const cJSON *root, sb_buf *out)
{
    const cJSON *w, *ws = sb_jget(root, "warnings");
    int n = 0;
    cJSON_ArrayForEach(w, ws)
    {
        const char *m = sb_jstr(w, "warning_msg"), *nm = sb_jstr(w, "warning_name");
        if (!m) continue;
        sb_buf_printf(out, "%s%s%s%s%s", n++ ? "; " : " Dropbox Sign warned: ", m, nm ? " (" : "",
                      nm ? nm : "", nm ? ")" : "");
    }
    if (n) sb_buf_puts(out, ".");
}

/* Set "message" from a buffer, with the answer's warnings appended. */
static void add_message(cJSON *o, sb_buf *msg, const cJSON *answer)
{
    warnings_text(answer, msg);
    sb_jput_str(o, "message", msg->data ? msg->data : "");
}

/* Add the answer's warnings to a list result as its note. */
static void add_list_warnings(cJSON *o, const cJSON *answer)
{
    sb_buf w;
    sb_buf_init(&w, 4096);
    warnings_text(answer, &w);
    if (w.len) {
        const char *old = sb_jstr(o, "note");
        sb_buf n;
        sb_buf_init(&n, 8192);
        sb_buf_printf(&n, "%s%s", old ? old : "", old ? w.data : w.data + 1);
        if (old)
            cJSON_ReplaceItemInObjectCaseSensitive(o, "note", cJSON_CreateString(n.data));
        else
            sb_jput_str(o, "note", n.data);
        sb_buf_free(&n);
    }
    sb_buf_free(&w);
}

/* A validated id argument, or NULL with err. */
static const char *id_arg(const cJSON *a, const char *name, char *err, size_t errlen)
{
    const char *id = sb_jstr(a, name);
    if (!id || !sb_id_ok(id)) {
        snprintf(err, errlen, "%s has characters a Dropbox Sign id never has", name);
        return NULL;
    }
    return id;
}

/* url = base + prefix + id (id already checked with sb_id_ok). */
static int url_with_id(sb_preq *r, const sb_pctx *c, const char *prefix, const char *id)
{
    char path[300];
    int n = snprintf(path, sizeof path, "%s%s", prefix, id);
    if (n < 0 || (size_t)n >= sizeof path) return -1;
    return sb_preq_url(r, c->base_url, path);
}

static int id_path(const sb_pctx *c, const cJSON *a, sb_preq *r, const char *prefix, char *err,
                   size_t errlen)
{
    const char *id = id_arg(a, "document_id", err, errlen);
    if (!id) return -1;
    return url_with_id(r, c, prefix, id);
}

/* Build the next step's request: method, idempotency, base + prefix + id. */
static int next_with_id(sb_pstep *step, const sb_pctx *c, const char *method, int idempotent,
                        const char *prefix, const char *id)
{
    sb_preq_free(&step->next);
    sb_preq_init(&step->next, method, idempotent);
    return url_with_id(&step->next, c, prefix, id);
}

/* ---- the neutral document ------------------------------------------------------------------ */

/* The members of a signature the writers read, looked up at once (sb_jpick). */
enum { S_ID, S_NAME, S_EMAIL, S_ROLE, S_ORDER, S_STATUS, S_SIGNED, S_VIEWED, S_N };
static const char *const sig_names[S_N] = {"signature_id", "signer_name",    "signer_email_address",
                                           "signer_role",  "order",          "status_code",
                                           "signed_at",    "last_viewed_at"};

static const char *signer_status(const cJSON *const *m)
{
    const char *st = sb_jv_str(m[S_STATUS]);
    if (!st) return "pending";
    if (strcmp(st, "signed") == 0) return "signed";
    if (strcmp(st, "declined") == 0) return "declined";
    if (strncmp(st, "error", 5) == 0) return "failed";
    if (strcmp(st, "expired") == 0) return "expired";
    return sb_jv_num(m[S_VIEWED], 0) > 0 ? "viewed" : "pending";
}

/* A signature (signer) in the neutral model, written. */
static void write_signer(sb_jw *w, const cJSON *s)
{
    const cJSON *m[S_N];
    sb_jpick(s, sig_names, S_N, m);
    sb_jw_open(w, '{');
    sb_jw_jstr(w, "id", m[S_ID]);
    sb_jw_jstr(w, "name", m[S_NAME]);
    sb_jw_jstr(w, "email", m[S_EMAIL]);
    sb_jw_str(w, "status", signer_status(m));
    sb_jw_jstr(w, "provider_status", m[S_STATUS]);
    /* Dropbox Sign counts from 0; the neutral order counts from 1 (as send_document's input) */
    const cJSON *ord = m[S_ORDER];
    sb_pjw_int_or_null(w, "order", cJSON_IsNumber(ord) ? ord->valuedouble + 1 : -1);
    sb_pjw_epoch(w, "signed_at", sb_jv_num(m[S_SIGNED], -1));
    sb_pjw_epoch(w, "viewed_at", sb_jv_num(m[S_VIEWED], -1));
    if (cJSON_IsString(m[S_ROLE])) sb_jw_jstr(w, "role", m[S_ROLE]);
    sb_jw_close(w, '}');
}

/* The same, as a tree. */
static cJSON *map_signer(const cJSON *s)
{
    sb_buf b;
    sb_buf_init(&b, SB_PJW_MAX);
    sb_jw w;
    sb_jw_init(&w, &b);
    write_signer(&w, s);
    return sb_pjw_tree(&w);
}

/* The members of a signature request write_request reads, looked up at once (sb_jpick). */
enum { R_ID, R_SIGS, R_COMPLETE, R_DECLINED, R_ERROR, R_EXPIRES, R_CREATED, R_TITLE, R_MESSAGE,
       R_REQUESTER, R_CC, R_TEST, R_N };
static const char *const req_names[R_N] = {
    "signature_request_id", "signatures", "is_complete", "is_declined", "has_error",
    "expires_at", "created_at", "title", "message", "requester_email_address",
    "cc_email_addresses", "test_mode"};

/* A signature request in the neutral model, written; -1 (nothing written) without an id or when
 * `a`'s status filter leaves it out (*dropped counts it). */
static int write_request(sb_jw *w, const cJSON *d, const cJSON *a, size_t *dropped)
{
    const cJSON *m[R_N];
    sb_jpick(d, req_names, R_N, m);
    const cJSON *idv = m[R_ID];
    if (!cJSON_IsString(idv)) return -1;
    const cJSON *sigs = m[R_SIGS];
    int complete = sb_jv_bool(m[R_COMPLETE], 0), declined = sb_jv_bool(m[R_DECLINED], 0);
    int error = sb_jv_bool(m[R_ERROR], 0);
    double expires = sb_jv_num(m[R_EXPIRES], -1), created = sb_jv_num(m[R_CREATED], -1);
    double updated = created;
    int acted = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, sigs)
    {
        static const char *const times[] = {"signed_at", "last_viewed_at"};
        const cJSON *t[2];
        sb_jpick(s, times, 2, t);
        double at = sb_jv_num(t[0], -1), v = sb_jv_num(t[1], -1);
        if (at > updated) updated = at;
        if (v > updated) updated = v;
        if (at > 0 || v > 0) acted = 1;
    }
    const char *status, *pstatus;
    if (complete) {
        status = "completed";
        pstatus = "complete";
    } else if (declined) {
        status = "declined";
        pstatus = "declined";
    } else if (error) {
        status = "failed";
        pstatus = "error";
    } else if (expires > 0 && expires < (double)now_s()) {
        status = "expired";
        pstatus = "expired";
    } else {
        status = acted ? "in_progress" : "sent";
        pstatus = "awaiting_signature";
    }
    if (a && !sb_status_wanted(a, status)) {
        (*dropped)++;
        return -1;
    }
    sb_jw_open(w, '{');
    sb_jw_jstr(w, "id", idv);
    sb_jw_jstr(w, "title", m[R_TITLE]);
    sb_jw_str(w, "status", status);
    sb_jw_str(w, "provider_status", pstatus);
    sb_pjw_epoch(w, "created_at", created);
    sb_pjw_epoch(w, "updated_at", updated);
    sb_pjw_epoch(w, "expires_at", expires);
    sb_jw_jstr(w, "message", m[R_MESSAGE]);
    sb_jw_obj(w, "sender");
    sb_jw_null(w, "name");
    sb_jw_jstr(w, "email", m[R_REQUESTER]);
    sb_jw_close(w, '}');
    sb_jw_arr(w, "signers");
    cJSON_ArrayForEach(s, sigs) write_signer(w, s);
    sb_jw_close(w, ']');
    sb_jw_arr(w, "cc");
    const cJSON *c;
    cJSON_ArrayForEach(c, m[R_CC])
    {
        if (cJSON_IsString(c)) sb_jw_vjstr(w, c);
    }
    sb_jw_close(w, ']');
    const cJSON *tm = m[R_TEST];
    if (cJSON_IsBool(tm)) sb_jw_bool(w, "test_mode", cJSON_IsTrue(tm));
    sb_jw_close(w, '}');
    return 0;
}

/* A signature request in the neutral model, as a tree, or NULL without an id. */
static cJSON *map_request(const cJSON *d)
{
    return sb_pjw_item_tree(write_request, d);
}

/* The signature_request object of an answer, or NULL with err. */
static const cJSON *answer_request(const sb_presp *r, char *err, size_t errlen)
{
    const cJSON *sr = sb_jget(r->json, "signature_request");
    if (!cJSON_IsObject(sr) || !sb_jstr(sr, "signature_request_id")) {
        snprintf(err, errlen, "Dropbox Sign's answer has no signature_request");
        return NULL;
    }
    return sr;
}

/* Why a signature request can no longer be acted on, or NULL while it is out for signature. */
static const char *closed_reason(const cJSON *sr)
{
    if (sb_jbool(sr, "is_complete", 0)) return "it is already completed";
    if (sb_jbool(sr, "is_declined", 0)) return "it was declined";
    if (sb_jbool(sr, "has_error", 0)) return "it is in an error state";
    double exp = sb_jnum(sr, "expires_at", -1);
    if (exp > 0 && exp < (double)now_s()) return "it has expired";
    return NULL;
}

/* The entry of sr's signatures whose email matches, preferring one that has not signed. */
static const cJSON *find_signature(const cJSON *sr, const char *email)
{
    const cJSON *s, *found = NULL;
    cJSON_ArrayForEach(s, sb_jget(sr, "signatures"))
    {
        const char *e = sb_jstr(s, "signer_email_address");
        if (!e || !sb_strcaseeq(e, email)) continue;
        if (!found) found = s;
        const char *st = sb_jstr(s, "status_code");
        if (!st || strcmp(st, "signed") != 0) return s;
    }
    return found;
}

/* "a@x, b@y" of sr's signers, for messages. */
static void signer_emails(const cJSON *sr, char *out, size_t cap)
{
    sb_join_field(sb_jget(sr, "signatures"), "signer_email_address", out, cap);
}

/* Step 0 of the tools that read the signature request first. */
static int read_first_build(const sb_pctx *c, const cJSON *a, sb_preq *r, char *err, size_t errlen)
{
    sb_preq_init(r, "GET", 1);
    return id_path(c, a, r, "/signature_request/", err, errlen);
}

/* ---- list_documents, get_document, revoke_document ------------------------------------------ */


static int list_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                      size_t errlen)
{
    (void)step;
    (void)err;
    (void)errlen;
    sb_preq_init(r, "GET", 1);
    if (sb_preq_url(r, c->base_url, "/signature_request/list") < 0) return -1;
    sb_preq_query_int(r, "page", (long long)sb_jnum(a, "page", 1));
    sb_preq_query_int(r, "page_size", (long long)sb_jnum(a, "page_size", 20));
    /* Dropbox Sign search syntax: terms joined with AND */
    sb_buf q;
    sb_buf_init(&q, 1024);
    const char *text = sb_jstr(a, "query");
    if (text) sb_buf_puts(&q, text);
    const cJSON *st = sb_jget(a, "status");
    if (cJSON_GetArraySize(st) == 1) {
        const char *s = cJSON_GetArrayItem(st, 0)->valuestring;
        const char *term = strcmp(s, "completed") == 0  ? "complete:true"
                           : strcmp(s, "declined") == 0 ? "declined:true"
                                                        : NULL;
        if (term) sb_buf_printf(&q, "%s%s", q.len ? " AND " : "", term);
    }
    const char *after = sb_jstr(a, "created_after"), *before = sb_jstr(a, "created_before");
    if (after || before)
        sb_buf_printf(&q, "%screated:[%.10s TO %.10s]", q.len ? " AND " : "",
                      after ? after : "1970-01-01", before ? before : "9999-12-31");
    int rc = q.len ? sb_preq_query(r, "query", q.data) : 0;
    sb_buf_free(&q);
    return rc;
}

static int list_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                    cJSON **out, char *err, size_t errlen)
{
    (void)out;
    const cJSON *res = sb_jget(r->json, "signature_requests");
    const cJSON *li = sb_jget(r->json, "list_info");
    if (!cJSON_IsArray(res)) {
        snprintf(err, errlen, "Dropbox Sign's list has no \"signature_requests\" array");
        return -1;
    }
    sb_jw w;
    sb_jw_init(&w, &step->json);
    sb_pjw_list_begin(&w, "documents");
    size_t dropped = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, res) write_request(&w, d, a, &dropped);
    long page = (long)sb_jnum(li, "page", sb_jnum(a, "page", 1));
    long size = (long)sb_jnum(li, "page_size", sb_jnum(a, "page_size", 20));
    long pages = (long)sb_jnum(li, "num_pages", -1);
    long long total = (long long)sb_jnum(li, "num_results", -1);
    sb_pjw_list_end(&w, c, page, size, dropped ? -1 : total, pages >= 0 ? page < pages : 0);
    /* the note: why the page may be short, then what Dropbox Sign warned of */
    sb_buf note;
    sb_buf_init(&note, 8192);
    if (dropped)
        sb_buf_puts(&note, "Dropbox Sign cannot filter by every status: this page was filtered "
                           "here, so it may hold fewer than page_size documents; keep paging "
                           "while next_page is set.");
    sb_buf warn;
    sb_buf_init(&warn, 4096);
    warnings_text(r->json, &warn);
    if (warn.len) sb_buf_puts(&note, note.len ? warn.data : warn.data + 1);
    if (note.len) sb_jw_str(&w, "note", note.data);
    sb_buf_free(&warn);
    sb_buf_free(&note);
    sb_jw_close(&w, '}');
    if (sb_jw_finish(&w) != 0) {
        snprintf(err, errlen, "the document list is too large");
        return -1;
    }
    return SB_PMAP_JSON;
}

static int get_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                     size_t errlen)
{
    (void)step;
    return read_first_build(c, a, r, err, errlen);
}

static int get_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step, cJSON **out,
                   char *err, size_t errlen)
{
    (void)a;
    (void)out;
    return sb_pjw_document(c, step, write_request, sb_jget(r->json, "signature_request"),
                           "Dropbox Sign's answer has no signature_request", err, errlen);
}

static int revoke_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                        size_t errlen)
{
    (void)step;
    sb_preq_init(r, "POST", 0);
    return id_path(c, a, r, "/signature_request/cancel/", err, errlen);
}

static int revoke_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                      cJSON **out, char *err, size_t errlen)
{
    (void)step;
    (void)r;
    (void)err;
    (void)errlen;
    cJSON *o = cJSON_CreateObject();
    sb_jput_str(o, "outcome", "done");
    sb_jput_str(o, "document_id", sb_jstr(a, "document_id"));
    sb_jput_str(o, "status", "revoke_requested");
    sb_jput_str(o, "message",
                            "Dropbox Sign accepted the cancellation; it completes asynchronously "
                            "(Dropbox Sign gives no reason field, so the reason was not sent). "
                            "Check with get_document.");
    add_where(o, c);
    *out = o;
    return 0;
}

/* ---- sending ------------------------------------------------------------------------------- */

/* Turn a JSON value into multipart fields with bracket keys: a[b], a[0], booleans as 1/0. */
static int mp_put_json(sb_preq *r, const char *name, const cJSON *v, int depth)
{
    char key[300];
    if (depth > 6) return -1;
    if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
        int i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, v)
        {
            int n = cJSON_IsObject(v) ? snprintf(key, sizeof key, "%s[%s]", name, e->string)
                                      : snprintf(key, sizeof key, "%s[%d]", name, i);
            i++;
            if (n < 0 || (size_t)n >= sizeof key || mp_put_json(r, key, e, depth + 1) < 0)
                return -1;
        }
        return 0;
    }
    if (cJSON_IsBool(v)) return sb_preq_multipart_field(r, name, cJSON_IsTrue(v) ? "1" : "0");
    if (cJSON_IsNumber(v)) {
        char num[32];
        double x = v->valuedouble;
        if (isfinite(x) && x == floor(x) && fabs(x) <= 9007199254740992.0)
            snprintf(num, sizeof num, "%lld", (long long)x);
        else
            snprintf(num, sizeof num, "%.17g", x);
        return sb_preq_multipart_field(r, name, num);
    }
    if (cJSON_IsString(v)) return sb_preq_multipart_field(r, name, v->valuestring);
    return 0; /* null: not sent */
}

/* A file name fit for a multipart header: no quotes, no control characters, not empty. */
static int filename_ok(const char *s)
{
    if (!s || !*s) return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == '"' || *p == 0x7f || *p == '\\') return 0;
    return 1;
}

/* The last path segment of an URL, sanitized, as a file name (or document_<i>.pdf). */
static void name_from_url(const char *url, int i, char *out, size_t cap)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    const char *end = p + strcspn(p, "?#");
    const char *seg = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '/') seg = q + 1;
    size_t k = 0;
    if (seg)
        for (const char *q = seg; q < end && k + 1 < cap && k < 100; q++)
            out[k++] = (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
                               (*q >= '0' && *q <= '9') || *q == '.' || *q == '-' || *q == '_'
                           ? *q
                           : '_';
    out[k] = '\0';
    if (k == 0 || strcmp(out, ".") == 0 || strcmp(out, "..") == 0)
        snprintf(out, cap, "document_%d.pdf", i + 1);
}

static int url_ok(const char *u)
{
    return u && (strncmp(u, "https://", 8) == 0 || strncmp(u, "http://", 7) == 0) &&
           !strpbrk(u, " \r\n\t");
}

/* A signer's authentication as Dropbox Sign fields (pin; sms_phone_number with type
 * authentication). 0, or -1 with err naming the argument. */
static int signer_auth(const cJSON *s, const char *path, int test_mode, cJSON *out, char *err,
                       size_t errlen)
{
    const cJSON *au = sb_jget(s, "authentication");
    const char *type = sb_jstr(au, "type");
    if (!type || strcmp(type, "none") == 0) return 0;
    if (strcmp(type, "access_code") == 0) {
        const char *code = sb_jstr(au, "access_code");
        size_t n = code ? strlen(code) : 0;
        if (!code) {
            snprintf(err, errlen, "%s.authentication.access_code is required with type access_code",
                     path);
            return -1;
        }
        if (n < 4 || n > 12) {
            snprintf(err, errlen,
                     "%s.authentication.access_code must be 4 to 12 characters for Dropbox Sign "
                     "(its signer pin), got %zu",
                     path, n);
            return -1;
        }
        sb_jput_str(out, "pin", code);
        return 0;
    }
    if (strcmp(type, "sms_otp") == 0) {
        const char *ph = sb_jstr(au, "phone");
        if (!ph) {
            snprintf(err, errlen, "%s.authentication.phone is required with type sms_otp", path);
            return -1;
        }
        size_t nd = strlen(ph + 1);
        if (ph[0] != '+' || strspn(ph + 1, "0123456789") != nd || nd < 7 || nd > 15) {
            snprintf(err, errlen,
                     "%s.authentication.phone must be an E.164 number (+ and digits, e.g. "
                     "+14155550100) for Dropbox Sign",
                     path);
            return -1;
        }
        if (test_mode) {
            snprintf(err, errlen,
                     "%s.authentication type sms_otp is not available in Dropbox Sign's test "
                     "mode: use access_code, or send with test_mode false",
                     path);
            return -1;
        }
        sb_jput_str(out, "sms_phone_number", ph);
        sb_jput_str(out, "sms_phone_number_type", "authentication");
        return 0;
    }
    snprintf(err, errlen,
             "%s.authentication type %s is not offered by Dropbox Sign (it has access_code, as a "
             "signer pin, and sms_otp)",
             path, type);
    return -1;
}

/* The send body without files (title, subject, message, signers, cc, expiry, test mode), or NULL
 * with err. expires_at: 0 = none. */
static cJSON *send_body(const cJSON *a, long long expires_at, char *err, size_t errlen)
{
    int test_mode = sb_jbool(a, "test_mode", 0);
    int ordered = sb_jbool(a, "signing_order", 0);
    cJSON *b = cJSON_CreateObject();
    const char *title = sb_jstr(a, "title"), *msg = sb_jstr(a, "message");
    sb_jput_str(b, "title", title ? title : "");
    sb_jput_str(b, "subject", title ? title : "");
    if (msg && *msg) sb_jput_str(b, "message", msg);
    cJSON *signers = sb_jput_arr(b, "signers");
    const cJSON *s;
    int i = 0;
    cJSON_ArrayForEach(s, sb_jget(a, "signers"))
    {
        char path[32];
        snprintf(path, sizeof path, "signers[%d]", i);
        cJSON *x = cJSON_CreateObject();
        cJSON_AddItemToArray(signers, x);
        sb_jput_str(x, "name", sb_jstr(s, "name") ? sb_jstr(s, "name") : "");
        sb_jput_str(x, "email_address", sb_jstr(s, "email") ? sb_jstr(s, "email") : "");
        if (ordered) {
            /* Dropbox Sign's order counts from 0 */
            double o = sb_jnum(s, "order", i + 1);
            sb_jput_num(x, "order", o - 1);
        }
        if (signer_auth(s, path, test_mode, x, err, errlen) < 0) {
            cJSON_Delete(b);
            return NULL;
        }
        i++;
    }
    const cJSON *cc = sb_jget(a, "cc");
    if (cJSON_GetArraySize(cc) > 0)
        cJSON_AddItemToObjectCS(b, "cc_email_addresses", cJSON_Duplicate(cc, 1));
    if (expires_at > 0) sb_jput_num(b, "expires_at", (double)expires_at);
    sb_jput_bool(b, "test_mode", test_mode);
    return b;
}

/* Check the files argument. Counts URL and base64 files. 0, or -1 with err. */
static int check_files(const cJSON *a, int *nurl, int *nb64, char *err, size_t errlen)
{
    const cJSON *f;
    int i = 0;
    *nurl = *nb64 = 0;
    cJSON_ArrayForEach(f, sb_jget(a, "files"))
    {
        const char *url = sb_jstr(f, "url"), *b64 = sb_jstr(f, "base64");
        const char *name = sb_jstr(f, "name");
        if (url && !b64) {
            if (!url_ok(url)) {
                snprintf(err, errlen, "files[%d].url must be an https URL (or http)", i);
                return -1;
            }
            (*nurl)++;
        } else if (b64) {
            (*nb64)++;
        } else {
            snprintf(err, errlen, "files[%d] needs either url, or base64 with name", i);
            return -1;
        }
        if (name && !filename_ok(name)) {
            snprintf(err, errlen,
                     "files[%d].name must not contain quotes, backslashes or control characters",
                     i);
            return -1;
        }
        i++;
    }
    return 0;
}

static const char *type_word(const char *mime)
{
    if (strcmp(mime, "application/pdf") == 0) return "PDF";
    if (strcmp(mime, "image/png") == 0) return "PNG";
    if (strcmp(mime, "image/jpeg") == 0) return "JPEG";
    return "DOCX";
}

/* Decode and check files[i]: an upload's bytes must be of its mime_type; a fetched URL's type is
 * read from its bytes (*type). Adds its size to *total. The bytes (malloc'd), or NULL with err. */
static unsigned char *file_bytes(int i, const cJSON *f, const char *b64, int fetched, size_t *total,
                                 size_t *lenp, const char **type, char *err, size_t errlen)
{
    char e2[200] = "";
    size_t len = 0;
    size_t room = *total < DX_UPLOAD_MAX ? DX_UPLOAD_MAX - *total : 0;
    unsigned char *data = sb_decode_base64_arg(b64, room, &len, e2, sizeof e2);
    if (!data) {
        if (strstr(e2, "larger"))
            snprintf(err, errlen,
                     "files[%d]: the files add up to more than %zu MiB, which signbridge does not "
                     "upload to Dropbox Sign in one request; send large files by url instead",
                     i, DX_UPLOAD_MAX >> 20);
        else
            snprintf(err, errlen, "files[%d].base64: %s", i, e2);
        return NULL;
    }
    const char *mime = sb_jstr(f, "mime_type");
    if (!mime) mime = "application/pdf";
    const char *seen = sb_sniff_mime(data, len);
    int rc = 0;
    if (len == 0) {
        snprintf(err, errlen, "files[%d] is empty", i);
        rc = -1;
    } else if (fetched && !seen) {
        snprintf(err, errlen,
                 "files[%d].url did not answer with a PDF, DOCX, PNG or JPEG file (%zu bytes)", i,
                 len);
        rc = -1;
    } else if (!fetched && (!seen || strcmp(seen, mime) != 0)) {
        snprintf(err, errlen,
                 "files[%d] is not a %s file, as its mime_type (%s) says%s%s: check the base64 "
                 "content or the mime_type",
                 i, type_word(mime), mime, seen ? "; its bytes are " : "",
                 seen ? type_word(seen) : "");
        rc = -1;
    }
    if (rc < 0) {
        free(data);
        return NULL;
    }
    *total += len;
    *lenp = len;
    *type = fetched ? seen : mime;
    return data;
}

/* Check every uploaded (base64) file before anything is fetched or sent. 0, or -1 with err. */
static int check_uploads(const cJSON *a, char *err, size_t errlen)
{
    size_t total = 0, len;
    const char *type;
    int i = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, sb_jget(a, "files"))
    {
        const char *b64 = sb_jstr(f, "base64");
        if (b64) {
            unsigned char *d = file_bytes(i, f, b64, 0, &total, &len, &type, err, errlen);
            if (!d) return -1;
            free(d);
        }
        i++;
    }
    return 0;
}

/* Append files[i] to the multipart body. 0, or -1 with err. */
static int mp_add_file(sb_preq *r, int i, const cJSON *f, const char *b64, const char *name,
                       int fetched, size_t *total, char *err, size_t errlen)
{
    size_t len;
    const char *seen;
    unsigned char *data = file_bytes(i, f, b64, fetched, total, &len, &seen, err, errlen);
    if (!data) return -1;
    char field[32], fname[200];
    snprintf(field, sizeof field, "files[%d]", i);
    sb_strlcpy(fname, name, sizeof fname);
    if (fetched && !strchr(fname, '.')) {
        /* a name from the URL without an extension: the one the bytes show */
        const char *ext = strcmp(seen, "application/pdf") == 0 ? ".pdf"
                          : strcmp(seen, "image/png") == 0     ? ".png"
                          : strcmp(seen, "image/jpeg") == 0    ? ".jpg"
                                                               : ".docx";
        size_t n = strlen(fname);
        if (n + strlen(ext) < sizeof fname) memcpy(fname + n, ext, strlen(ext) + 1);
    }
    int rc = sb_preq_multipart_file(r, field, fname, seen, data, len);
    if (rc < 0) snprintf(err, errlen, "files[%d] could not be added to the upload", i);
    free(data);
    return rc;
}

/* The multipart send: the fields of send_body plus every file (base64 from the arguments, or
 * fetched earlier into scratch "fetched"[i]). 0, or -1 with err. */
static int send_multipart(const sb_pctx *c, const cJSON *a, const cJSON *scratch, sb_preq *r,
                          char *err, size_t errlen)
{
    long long exp = (long long)sb_jnum(scratch, "expires_at", 0);
    cJSON *body = send_body(a, exp, err, errlen);
    if (!body) return -1;
    sb_preq_init(r, "POST", 0);
    int rc = sb_preq_url(r, c->base_url, "/signature_request/send");
    if (rc == 0) rc = sb_preq_multipart_begin(r);
    const cJSON *e;
    cJSON_ArrayForEach(e, body)
    {
        if (rc == 0) rc = mp_put_json(r, e->string, e, 0);
    }
    cJSON_Delete(body);
    if (rc < 0) {
        snprintf(err, errlen, "the send could not be encoded");
        return -1;
    }
    const cJSON *fetched = sb_jget(scratch, "fetched");
    size_t total = 0;
    int i = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, sb_jget(a, "files"))
    {
        const char *b64 = sb_jstr(f, "base64"), *url = sb_jstr(f, "url");
        const char *name = sb_jstr(f, "name");
        char derived[128];
        int was_fetched = !b64;
        if (!b64) b64 = sb_jstr(cJSON_GetArrayItem(fetched, i), "b64");
        if (!b64) {
            snprintf(err, errlen, "files[%d] was not fetched", i);
            return -1;
        }
        if (!name) {
            name_from_url(url ? url : "", i, derived, sizeof derived);
            name = derived;
        }
        if (mp_add_file(r, i, f, b64, name, was_fetched, &total, err, errlen) < 0) return -1;
        i++;
    }
    if (sb_preq_multipart_end(r) < 0) {
        snprintf(err, errlen, "the send is larger than signbridge's request buffer");
        return -1;
    }
    return 0;
}

/* The next URL file to fetch at or after index `from`, or -1. */
static int next_url_file(const cJSON *a, int from)
{
    const cJSON *files = sb_jget(a, "files");
    for (int i = from; i < cJSON_GetArraySize(files); i++) {
        const cJSON *f = cJSON_GetArrayItem(files, i);
        if (sb_jstr(f, "url") && !sb_jstr(f, "base64")) return i;
    }
    return -1;
}

/* A GET of the caller's file URL without the provider credential. */
static int fetch_request(sb_preq *r, const cJSON *a, int i)
{
    const cJSON *f = cJSON_GetArrayItem(sb_jget(a, "files"), i);
    sb_preq_init(r, "GET", 1);
    r->no_auth = 1;
    r->max_response = DX_UPLOAD_MAX;
    sb_buf_reset(&r->url);
    return sb_buf_puts(&r->url, sb_jstr(f, "url"));
}

static int send_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                      size_t errlen)
{
    int nurl, nb64;
    if (check_files(a, &nurl, &nb64, err, errlen) < 0) return -1;
    long long exp = 0;
    double days = sb_jnum(a, "expires_in_days", -1);
    if (days > 0) exp = now_s() + (long long)days * 86400;
    sb_jput_num(step->scratch, "expires_at", (double)exp);
    cJSON *body = send_body(a, exp, err, errlen);
    if (!body) return -1;
    if (nb64 == 0) {
        /* every file by URL: Dropbox Sign downloads them itself (file_urls, JSON body) */
        cJSON *urls = sb_jput_arr(body, "file_urls");
        const cJSON *f;
        cJSON_ArrayForEach(f, sb_jget(a, "files"))
        {
            cJSON_AddItemToArray(urls, cJSON_CreateString(sb_jstr(f, "url")));
        }
        sb_preq_init(r, "POST", 0);
        if (sb_preq_url(r, c->base_url, "/signature_request/send") < 0) {
            cJSON_Delete(body);
            return -1;
        }
        return sb_preq_json(r, body);
    }
    cJSON_Delete(body);
    if (nurl == 0) return send_multipart(c, a, step->scratch, r, err, errlen);
    /* URLs and uploads together: Dropbox Sign takes files[] or file_urls[], not both, so
     * signbridge fetches the URLs first and uploads everything */
    if (check_uploads(a, err, errlen) < 0) return -1;
    cJSON *fetched = sb_jput_arr(step->scratch, "fetched");
    for (int i = 0; i < nurl + nb64; i++)
        cJSON_AddItemToArray(fetched, cJSON_CreateObject());
    int first = next_url_file(a, 0);
    sb_jput_num(step->scratch, "fetching", first);
    return fetch_request(r, a, first);
}

/* The answer to a send (or send_with_template): the neutral result. */
static int sent_result(const sb_pctx *c, const cJSON *a, const sb_presp *r, const char *what,
                       cJSON **out, char *err, size_t errlen)
{
    const cJSON *sr = answer_request(r, err, errlen);
    if (!sr) return -1;
    cJSON *doc = map_request(sr);
    if (!doc) {
        snprintf(err, errlen, "Dropbox Sign's answer has no signature_request id");
        return -1;
    }
    cJSON *o = cJSON_CreateObject();
    sb_jput_str(o, "outcome", "done");
    sb_jput_str(o, "document_id", sb_jstr(sr, "signature_request_id"));
    sb_jput_str(o, "status",
                            sb_jget(doc, "status")->valuestring);
    sb_buf m;
    sb_buf_init(&m, 8192);
    int n = cJSON_GetArraySize(sb_jget(sr, "signatures"));
    sb_buf_printf(&m, "Dropbox Sign sent \"%s\"%s to %d signer%s%s. Follow it with get_document.",
                  sb_jstr(sr, "title") ? sb_jstr(sr, "title") : "", what, n, n == 1 ? "" : "s",
                  sb_jbool(sr, "test_mode", 0) ? " in test mode (not legally binding)" : "");
    (void)a;
    add_message(o, &m, r->json);
    sb_buf_free(&m);
    cJSON_AddItemToObjectCS(o, "document", doc);
    add_where(o, c);
    *out = o;
    return 0;
}

static int send_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                    cJSON **out, char *err, size_t errlen)
{
    const cJSON *fetching = sb_jget(step->scratch, "fetching");
    if (!cJSON_IsNumber(fetching)) return sent_result(c, a, r, "", out, err, errlen);
    /* a caller's file URL was fetched: keep it, fetch the next, or upload everything */
    int i = fetching->valueint;
    if (r->len == 0) {
        snprintf(err, errlen, "files[%d].url answered with an empty file", i);
        return -1;
    }
    if (r->len > DX_UPLOAD_MAX) {
        snprintf(err, errlen, "files[%d].url is larger than %zu MiB", i, DX_UPLOAD_MAX >> 20);
        return -1;
    }
    char *b64 = malloc(sb_base64_len(r->len) + 1);
    if (!b64) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    sb_base64_encode((const unsigned char *)r->body, r->len, b64);
    cJSON *slot = cJSON_GetArrayItem(sb_jget(step->scratch, "fetched"), i);
    sb_jput_str(slot, "b64", b64);
    free(b64);
    int nxt = next_url_file(a, i + 1);
    if (nxt >= 0) {
        cJSON_SetNumberValue((cJSON *)fetching, nxt);
        sb_preq_free(&step->next);
        return fetch_request(&step->next, a, nxt) == 0 ? SB_PMAP_NEXT : -1;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(step->scratch, "fetching");
    sb_preq_free(&step->next);
    if (send_multipart(c, a, step->scratch, &step->next, err, errlen) < 0) return -1;
    /* the fetched copies are no longer needed */
    cJSON_DeleteItemFromObjectCaseSensitive(step->scratch, "fetched");
    return SB_PMAP_NEXT;
}

/* ---- send_from_template -------------------------------------------------------------------- */

static int tpl_send_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                          size_t errlen)
{
    (void)step;
    if (sb_jget(a, "expires_in_days")) {
        snprintf(err, errlen,
                 "expires_in_days: Dropbox Sign's send_with_template takes no expiry (only "
                 "/signature_request/send has expires_at). Send without expires_in_days, then "
                 "set the expiry with extend_expiry");
        return -1;
    }
    const char *id = id_arg(a, "template_id", err, errlen);
    if (!id) return -1;
    sb_preq_init(r, "GET", 1);
    return url_with_id(r, c, "/template/", id);
}

/* Whether a template has a signer role / CC role / merge field of this name. */
static int tpl_has_role(const cJSON *t, const char *list, const char *name)
{
    const cJSON *x;
    cJSON_ArrayForEach(x, sb_jget(t, list))
    {
        const char *n = sb_jstr(x, "name");
        if (n && strcmp(n, name) == 0) return 1;
    }
    return 0;
}

static void tpl_names(const cJSON *t, const char *list, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    const cJSON *x;
    cJSON_ArrayForEach(x, sb_jget(t, list))
    {
        const char *n = sb_jstr(x, "name");
        if (!n) continue;
        int w = snprintf(out + o, cap - o, "%s\"%s\"", o ? ", " : "", n);
        if (w < 0 || (size_t)w >= cap - o) break;
        o += (size_t)w;
    }
    if (!o) sb_strlcpy(out, "none", cap);
}

static int tpl_has_field(const cJSON *t, const char *name, char *names, size_t cap)
{
    size_t o = 0;
    int found = 0;
    names[0] = '\0';
    const cJSON *d, *f;
    cJSON_ArrayForEach(d, sb_jget(t, "documents"))
    {
        cJSON_ArrayForEach(f, sb_jget(d, "custom_fields"))
        {
            const char *n = sb_jstr(f, "name"), *id = sb_jstr(f, "api_id");
            if ((n && strcmp(n, name) == 0) || (id && strcmp(id, name) == 0)) found = 1;
            if (!n) continue;
            int w = snprintf(names + o, cap - o, "%s\"%s\"", o ? ", " : "", n);
            if (w > 0 && (size_t)w < cap - o) o += (size_t)w;
        }
    }
    if (!o) sb_strlcpy(names, "none", cap);
    return found;
}

static int tpl_send_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                        cJSON **out, char *err, size_t errlen)
{
    if (step->step > 0) return sent_result(c, a, r, " from the template", out, err, errlen);
    const cJSON *t = sb_jget(r->json, "template");
    if (!cJSON_IsObject(t)) {
        snprintf(err, errlen, "Dropbox Sign's answer has no template");
        return -1;
    }
    char names[1200];
    cJSON *b = cJSON_CreateObject();
    cJSON *ids = sb_jput_arr(b, "template_ids");
    cJSON_AddItemToArray(ids, cJSON_CreateString(sb_jstr(a, "template_id")));
    const char *title = sb_jstr(a, "title"), *msg = sb_jstr(a, "message");
    if (title) {
        sb_jput_str(b, "title", title);
        sb_jput_str(b, "subject", title);
    }
    if (msg && *msg) sb_jput_str(b, "message", msg);
    cJSON *signers = sb_jput_arr(b, "signers");
    const cJSON *s;
    int i = 0;
    cJSON_ArrayForEach(s, sb_jget(a, "signers"))
    {
        const char *role = sb_jstr(s, "role");
        if (!role || !tpl_has_role(t, "signer_roles", role)) {
            tpl_names(t, "signer_roles", names, sizeof names);
            snprintf(err, errlen,
                     "nothing was sent: signers[%d].role \"%s\" is not a role of this template "
                     "(roles are case-sensitive: %s)",
                     i, role ? role : "", names);
            cJSON_Delete(b);
            return -1;
        }
        cJSON *x = cJSON_CreateObject();
        sb_jput_str(x, "role", role);
        sb_jput_str(x, "name", sb_jstr(s, "name") ? sb_jstr(s, "name") : "");
        sb_jput_str(x, "email_address", sb_jstr(s, "email") ? sb_jstr(s, "email") : "");
        cJSON_AddItemToArray(signers, x);
        i++;
    }
    /* CCs go by CC role: the cc emails fill the template's CC roles in order */
    const cJSON *cc = sb_jget(a, "cc");
    const cJSON *roles = sb_jget(t, "cc_roles");
    int ncc = cJSON_GetArraySize(cc), nroles = cJSON_GetArraySize(roles);
    if (ncc != nroles) {
        tpl_names(t, "cc_roles", names, sizeof names);
        snprintf(err, errlen,
                 "nothing was sent: cc has %d email%s but this template has %d CC role%s (%s); "
                 "Dropbox Sign takes one email per CC role, in the roles' order, and requires "
                 "every CC role to be filled",
                 ncc, ncc == 1 ? "" : "s", nroles, nroles == 1 ? "" : "s", names);
        cJSON_Delete(b);
        return -1;
    }
    if (ncc) {
        cJSON *ccs = sb_jput_arr(b, "ccs");
        for (int k = 0; k < ncc; k++) {
            cJSON *x = cJSON_CreateObject();
            const char *rn = sb_jstr(cJSON_GetArrayItem(roles, k), "name");
            sb_jput_str(x, "role", rn ? rn : "");
            sb_jput_str(x, "email_address", cJSON_GetArrayItem(cc, k)->valuestring);
            cJSON_AddItemToArray(ccs, x);
        }
    }
    const cJSON *pf = sb_jget(a, "prefill");
    if (cJSON_GetArraySize(pf) > 0) {
        cJSON *cf = sb_jput_arr(b, "custom_fields");
        const cJSON *p;
        i = 0;
        cJSON_ArrayForEach(p, pf)
        {
            const char *field = sb_jstr(p, "field"), *value = sb_jstr(p, "value");
            if (!field || !tpl_has_field(t, field, names, sizeof names)) {
                snprintf(err, errlen,
                         "nothing was sent: prefill[%d].field \"%s\" is not a merge field of this "
                         "template (its fields: %s)",
                         i, field ? field : "", names);
                cJSON_Delete(b);
                return -1;
            }
            cJSON *x = cJSON_CreateObject();
            sb_jput_str(x, "name", field);
            sb_jput_str(x, "value", value ? value : "");
            cJSON_AddItemToArray(cf, x);
            i++;
        }
    }
    sb_jput_bool(b, "test_mode", sb_jbool(a, "test_mode", 0));
    sb_preq_free(&step->next);
    sb_preq_init(&step->next, "POST", 0);
    if (sb_preq_url(&step->next, c->base_url, "/signature_request/send_with_template") < 0) {
        cJSON_Delete(b);
        return -1;
    }
    if (sb_preq_json(&step->next, b) < 0) {
        snprintf(err, errlen, "the send could not be encoded");
        return -1;
    }
    return SB_PMAP_NEXT;
}

/* ---- remind_signers ------------------------------------------------------------------------ */

static int remind_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                        size_t errlen)
{
    (void)step;
    return read_first_build(c, a, r, err, errlen);
}

/* POST remind/{id} for targets[i]. */
static int remind_next(const sb_pctx *c, const cJSON *a, sb_pstep *step, int i)
{
    const cJSON *t =
        cJSON_GetArrayItem(sb_jget(step->scratch, "targets"), i);
    if (next_with_id(step, c, "POST", 0, "/signature_request/remind/", sb_jstr(a, "document_id")) <
        0)
        return -1;
    cJSON *b = cJSON_CreateObject();
    sb_jput_str(b, "email_address", sb_jstr(t, "email"));
    if (sb_jstr(t, "name")) sb_jput_str(b, "name", sb_jstr(t, "name"));
    return sb_preq_json(&step->next, b);
}

/* Plan the reminders from the signature request: who, and who is skipped (and why). */
static int remind_plan(const cJSON *a, const cJSON *sr, cJSON *scratch, sb_buf *skipped, char *err,
                       size_t errlen)
{
    const char *why = closed_reason(sr);
    if (why) {
        snprintf(err, errlen,
                 "nobody was reminded: Dropbox Sign reminds only while a request is "
                 "out for signature, and %s",
                 why);
        return -1;
    }
    const cJSON *sigs = sb_jget(sr, "signatures");
    const cJSON *want = sb_jget(a, "signer_emails");
    cJSON *targets = sb_jput_arr(scratch, "targets");
    long long now = now_s();
    /* who may sign now: in an ordered request, the lowest order still awaiting */
    double turn = -1;
    const cJSON *s;
    cJSON_ArrayForEach(s, sigs)
    {
        const char *st = sb_jstr(s, "status_code");
        const cJSON *o = sb_jget(s, "order");
        if (st && strcmp(st, "awaiting_signature") == 0 && cJSON_IsNumber(o) &&
            (turn < 0 || o->valuedouble < turn))
            turn = o->valuedouble;
    }
    char list[1200];
    if (cJSON_IsArray(want)) {
        const cJSON *w;
        cJSON_ArrayForEach(w, want)
        {
            const cJSON *sg = find_signature(sr, w->valuestring);
            if (!sg) {
                signer_emails(sr, list, sizeof list);
                snprintf(err, errlen,
                         "nobody was reminded: %s is not a signer of this document (its signers: "
                         "%s)",
                         w->valuestring, list);
                return -1;
            }
        }
    }
    int dup;
    cJSON_ArrayForEach(s, sigs)
    {
        const char *email = sb_jstr(s, "signer_email_address");
        const char *st = sb_jstr(s, "status_code");
        if (!email) continue;
        int listed = 0;
        if (cJSON_IsArray(want)) {
            const cJSON *w;
            cJSON_ArrayForEach(w, want)
            {
                if (sb_strcaseeq(w->valuestring, email)) listed = 1;
            }
            if (!listed) continue;
        }
        if (!st || strcmp(st, "awaiting_signature") != 0) {
            if (listed)
                sb_buf_printf(skipped, " %s was not reminded (Dropbox Sign status %s).", email,
                              st ? st : "unknown");
            continue;
        }
        const cJSON *o = sb_jget(s, "order");
        if (!listed && turn >= 0 && cJSON_IsNumber(o) && o->valuedouble > turn) continue;
        double last = sb_jnum(s, "last_reminded_at", -1);
        if (last > 0 && now - (long long)last < DX_REMIND_GAP_S) {
            char ts[40];
            sb_rfc3339((uint64_t)((long long)last + DX_REMIND_GAP_S) * 1000, ts, sizeof ts);
            sb_buf_printf(skipped,
                          " %s was not reminded: Dropbox Sign refuses a reminder within an hour "
                          "of the last one; try again after %s.",
                          email, ts);
            continue;
        }
        /* two signers with one email: Dropbox Sign wants the name too */
        dup = 0;
        const cJSON *s2;
        cJSON_ArrayForEach(s2, sigs)
        {
            const char *e2 = sb_jstr(s2, "signer_email_address");
            if (s2 != s && e2 && sb_strcaseeq(e2, email)) dup = 1;
        }
        cJSON *t = cJSON_CreateObject();
        sb_jput_str(t, "email", email);
        if (dup && sb_jstr(s, "signer_name"))
            sb_jput_str(t, "name", sb_jstr(s, "signer_name"));
        cJSON_AddItemToArray(targets, t);
    }
    if (cJSON_GetArraySize(targets) == 0) {
        snprintf(err, errlen, "nobody was reminded:%s",
                 skipped->len ? skipped->data : " no signer is waiting to sign");
        size_t n = strlen(err);
        if (n && err[n - 1] == '.') err[n - 1] = '\0'; /* the bridge ends the sentence */
        return -1;
    }
    return 0;
}

static int remind_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                      cJSON **out, char *err, size_t errlen)
{
    cJSON *sc = step->scratch;
    if (step->step == 0) {
        const cJSON *sr = answer_request(r, err, errlen);
        if (!sr) return -1;
        sb_buf skipped;
        sb_buf_init(&skipped, 4096);
        int rc = remind_plan(a, sr, sc, &skipped, err, errlen);
        if (rc == 0) {
            sb_jput_str(sc, "skipped", skipped.len ? skipped.data : "");
            sb_jput_str(sc, "title", sb_jstr(sr, "title") ? sb_jstr(sr, "title") : "");
            sb_jput_arr(sc, "reminded");
            rc = remind_next(c, a, step, 0) == 0 ? SB_PMAP_NEXT : -1;
        }
        sb_buf_free(&skipped);
        return rc;
    }
    /* the answer to reminder step-1 */
    const cJSON *targets = sb_jget(sc, "targets");
    int done = step->step - 1;
    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(sc, "reminded"),
                         cJSON_CreateString(sb_jstr(cJSON_GetArrayItem(targets, done), "email")));
    if (done + 1 < cJSON_GetArraySize(targets))
        return remind_next(c, a, step, done + 1) == 0 ? SB_PMAP_NEXT : -1;
    cJSON *o = cJSON_CreateObject();
    sb_jput_str(o, "outcome", "done");
    sb_jput_str(o, "document_id", sb_jstr(a, "document_id"));
    cJSON *rem = cJSON_Duplicate(sb_jget(sc, "reminded"), 1);
    sb_buf m;
    sb_buf_init(&m, 8192);
    int n = cJSON_GetArraySize(rem);
    sb_buf_printf(&m, "Dropbox Sign sent %d reminder%s for \"%s\" (", n, n == 1 ? "" : "s",
                  sb_jstr(sc, "title"));
    const cJSON *e;
    int k = 0;
    cJSON_ArrayForEach(e, rem)
    {
        sb_buf_printf(&m, "%s%s", k++ ? ", " : "", e->valuestring);
    }
    sb_buf_puts(&m, ").");
    sb_buf_puts(&m, sb_jstr(sc, "skipped"));
    if (sb_jstr(a, "message"))
        sb_buf_puts(&m, " Dropbox Sign's reminder takes no custom message, so the message was "
                        "not sent.");
    add_message(o, &m, r->json);
    sb_buf_free(&m);
    cJSON_AddItemToObjectCS(o, "reminded", rem);
    add_where(o, c);
    *out = o;
    return 0;
}

/* ---- change_signer, extend_expiry (POST /signature_request/update/{id}) --------------------- */

static int update_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                        size_t errlen)
{
    (void)step;
    return read_first_build(c, a, r, err, errlen);
}

static int update_next(const sb_pctx *c, const cJSON *a, sb_pstep *step, cJSON *body)
{
    if (next_with_id(step, c, "POST", 0, "/signature_request/update/", sb_jstr(a, "document_id")) <
        0) {
        cJSON_Delete(body);
        return -1;
    }
    return sb_preq_json(&step->next, body);
}

static int change_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                      cJSON **out, char *err, size_t errlen)
{
    const char *old = sb_jstr(a, "old_email"), *nemail = sb_jstr(a, "new_email");
    const char *nname = sb_jstr(a, "new_name");
    const cJSON *sr = answer_request(r, err, errlen);
    if (!sr) return -1;
    char list[1200];
    if (step->step == 0) {
        const char *why = closed_reason(sr);
        if (why) {
            snprintf(err, errlen,
                     "nothing was changed: a signer can be changed only while the "
                     "request is out for signature, and %s",
                     why);
            return -1;
        }
        const cJSON *sg = find_signature(sr, old);
        if (!sg) {
            signer_emails(sr, list, sizeof list);
            snprintf(err, errlen,
                     "nothing was changed: %s is not a signer of this document (its signers: %s)",
                     old, list);
            return -1;
        }
        const char *st = sb_jstr(sg, "status_code");
        if (st && (strcmp(st, "signed") == 0 || strcmp(st, "declined") == 0)) {
            snprintf(err, errlen, "nothing was changed: %s has already %s", old,
                     strcmp(st, "signed") == 0 ? "signed" : "declined");
            return -1;
        }
        const char *sid = sb_jstr(sg, "signature_id");
        if (!sid) {
            snprintf(err, errlen, "Dropbox Sign's answer has no signature_id for %s", old);
            return -1;
        }
        cJSON *b = cJSON_CreateObject();
        sb_jput_str(b, "signature_id", sid);
        if (!sb_strcaseeq(old, nemail)) sb_jput_str(b, "email_address", nemail);
        sb_jput_str(b, "name", nname);
        return update_next(c, a, step, b) == 0 ? SB_PMAP_NEXT : -1;
    }
    cJSON *o = cJSON_CreateObject();
    sb_jput_str(o, "outcome", "done");
    sb_jput_str(o, "document_id", sb_jstr(sr, "signature_request_id"));
    const cJSON *sg = find_signature(sr, nemail);
    if (sg) cJSON_AddItemToObjectCS(o, "signer", map_signer(sg));
    sb_buf m;
    sb_buf_init(&m, 8192);
    sb_buf_printf(&m,
                  "Dropbox Sign replaced %s with %s <%s> on \"%s\"; the new signer gets the "
                  "request by email.",
                  old, nname, nemail, sb_jstr(sr, "title") ? sb_jstr(sr, "title") : "");
    if (sb_jstr(a, "reason"))
        sb_buf_puts(&m, " Dropbox Sign records no reason for a change, so the reason was not "
                        "sent.");
    add_message(o, &m, r->json);
    sb_buf_free(&m);
    add_where(o, c);
    *out = o;
    return 0;
}

static int extend_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                        size_t errlen)
{
    long long when;
    const char *iso = sb_jstr(a, "expires_at");
    if (iso) {
        int64_t ms;
        if (sb_parse_rfc3339(iso, &ms) < 0) {
            snprintf(err, errlen, "expires_at is not an RFC 3339 date-time");
            return -1;
        }
        when = (long long)(ms / 1000);
        if (when <= now_s()) {
            snprintf(err, errlen, "expires_at (%s) is not in the future: give a later time", iso);
            return -1;
        }
    } else {
        when = now_s() + (long long)sb_jnum(a, "days", 1) * 86400;
    }
    sb_jput_num(step->scratch, "expires_at", (double)when);
    return update_build(c, a, step, r, err, errlen);
}

static int extend_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                      cJSON **out, char *err, size_t errlen)
{
    const cJSON *sr = answer_request(r, err, errlen);
    if (!sr) return -1;
    if (step->step == 0) {
        const char *why = closed_reason(sr);
        if (why) {
            snprintf(err, errlen,
                     "the expiry was not changed: only a request still out for "
                     "signature can be extended, and %s",
                     why);
            return -1;
        }
        /* /update needs a signature_id even for the expiry: any signer's will do; prefer one
         * who has not signed */
        const cJSON *s, *pick = NULL;
        cJSON_ArrayForEach(s, sb_jget(sr, "signatures"))
        {
            const char *st = sb_jstr(s, "status_code");
            if (!sb_jstr(s, "signature_id")) continue;
            if (!pick || (st && strcmp(st, "awaiting_signature") == 0 &&
                          strcmp(sb_jstr(pick, "status_code") ? sb_jstr(pick, "status_code") : "",
                                 "awaiting_signature") != 0))
                pick = s;
        }
        if (!pick) {
            snprintf(err, errlen, "Dropbox Sign's answer lists no signature_id to update");
            return -1;
        }
        cJSON *b = cJSON_CreateObject();
        sb_jput_str(b, "signature_id", sb_jstr(pick, "signature_id"));
        sb_jput_num(b, "expires_at", sb_jnum(step->scratch, "expires_at", 0));
        return update_next(c, a, step, b) == 0 ? SB_PMAP_NEXT : -1;
    }
    cJSON *o = cJSON_CreateObject();
    sb_jput_str(o, "outcome", "done");
    sb_jput_str(o, "document_id", sb_jstr(sr, "signature_request_id"));
    double exp = sb_jnum(sr, "expires_at", -1);
    sb_jadd_epoch(o, "expires_at", exp);
    char ts[40] = "";
    if (exp > 0) sb_rfc3339((uint64_t)exp * 1000, ts, sizeof ts);
    sb_buf m;
    sb_buf_init(&m, 4096);
    sb_buf_printf(&m, "Dropbox Sign moved the expiry of \"%s\" to %s.",
                  sb_jstr(sr, "title") ? sb_jstr(sr, "title") : "", ts[0] ? ts : "(not reported)");
    add_message(o, &m, r->json);
    sb_buf_free(&m);
    add_where(o, c);
    *out = o;
    return 0;
}

/* ---- download_document --------------------------------------------------------------------- */

static int download_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                          size_t errlen)
{
    (void)step;
    const char *kind = sb_jstr(a, "kind");
    if (kind && strcmp(kind, "audit_trail") == 0) {
        snprintf(err, errlen,
                 "kind audit_trail: Dropbox Sign's API has no separate audit-trail file or "
                 "certificate (GET /signature_request/files gives the document's PDF only); "
                 "use kind document, and get_document for who viewed and signed when");
        return -1;
    }
    return read_first_build(c, a, r, err, errlen);
}

static int download_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                        cJSON **out, char *err, size_t errlen)
{
    const char *id = sb_jstr(a, "document_id");
    if (step->step == 0) {
        const cJSON *sr = answer_request(r, err, errlen);
        if (!sr) return -1;
        char name[160];
        const char *title = sb_jstr(sr, "title");
        size_t k = 0;
        for (const char *p = title ? title : ""; *p && k < 100; p++)
            name[k++] = ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                         (*p >= '0' && *p <= '9') || *p == '-' || *p == '_')
                            ? *p
                            : '_';
        name[k] = '\0';
        char fname[170];
        snprintf(fname, sizeof fname, "%s.pdf", k ? name : id);
        sb_jput_str(step->scratch, "file_name", fname);
        if (next_with_id(step, c, "GET", 1, "/signature_request/files/", id) < 0) return -1;
        step->next.max_response = DX_UPLOAD_MAX;
        return sb_preq_query(&step->next, "file_type", "pdf") == 0 ? SB_PMAP_NEXT : -1;
    }
    if (r->len < 5 || memcmp(r->body, "%PDF-", 5) != 0) {
        snprintf(err, errlen, "the file Dropbox Sign returned is not a PDF (%zu bytes)", r->len);
        return -1;
    }
    step->blob = r->body;
    step->blob_len = r->len;
    sb_strlcpy(step->mime, "application/pdf", sizeof step->mime);
    sb_strlcpy(step->filename, sb_jstr(step->scratch, "file_name"), sizeof step->filename);
    cJSON *o = cJSON_CreateObject();
    sb_jput_str(o, "document_id", id);
    sb_jput_str(o, "kind", "document");
    sb_jput_str(o, "file_name", step->filename);
    sb_jput_str(o, "mime_type", "application/pdf");
    add_where(o, c);
    *out = o;
    return SB_PMAP_BLOB;
}

/* ---- get_signing_link ---------------------------------------------------------------------- */

static int link_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                      size_t errlen)
{
    (void)step;
    /* redirect_url ("where the provider supports it") is not used: Dropbox Sign sets the
     * redirect when the request is sent (signing_redirect_url), not per signing link */
    return read_first_build(c, a, r, err, errlen);
}

static int link_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                    cJSON **out, char *err, size_t errlen)
{
    const char *email = sb_jstr(a, "signer_email");
    if (step->step == 0) {
        const cJSON *sr = answer_request(r, err, errlen);
        if (!sr) return -1;
        const cJSON *sg = find_signature(sr, email);
        char list[1200];
        if (!sg) {
            signer_emails(sr, list, sizeof list);
            snprintf(err, errlen, "%s is not a signer of this document (its signers: %s)", email,
                     list);
            return -1;
        }
        const char *st = sb_jstr(sg, "status_code");
        if (st && strcmp(st, "signed") == 0) {
            snprintf(err, errlen,
                     "%s has already signed this document: there is nothing left to "
                     "sign",
                     email);
            return -1;
        }
        const char *sid = sb_jstr(sg, "signature_id");
        if (!sid || !sb_id_ok(sid)) {
            snprintf(err, errlen, "Dropbox Sign's answer has no usable signature_id for %s", email);
            return -1;
        }
        return next_with_id(step, c, "GET", 1, "/embedded/sign_url/", sid) == 0 ? SB_PMAP_NEXT : -1;
    }
    const cJSON *e = sb_jget(r->json, "embedded");
    const char *url = sb_jstr(e, "sign_url");
    if (!url) {
        snprintf(err, errlen, "Dropbox Sign's answer has no embedded.sign_url");
        return -1;
    }
    cJSON *o = cJSON_CreateObject();
    sb_jput_str(o, "document_id", sb_jstr(a, "document_id"));
    sb_jput_str(o, "signer_email", email);
    sb_jput_str(o, "url", url);
    sb_jadd_epoch(o, "expires_at", sb_jnum(e, "expires_at", -1));
    add_where(o, c);
    *out = o;
    return 0;
}

/* ---- templates ----------------------------------------------------------------------------- */

static cJSON *map_template(const cJSON *t)
{
    const char *id = sb_jstr(t, "template_id");
    if (!id) return NULL;
    cJSON *o = cJSON_CreateObject();
    sb_jput_str(o, "id", id);
    sb_jadd_str(o, "title", sb_jstr(t, "title"));
    sb_jadd_str(o, "description", sb_jstr(t, "message"));
    cJSON *roles = sb_jput_arr(o, "roles");
    const cJSON *x;
    cJSON_ArrayForEach(x, sb_jget(t, "signer_roles"))
    {
        const char *n = sb_jstr(x, "name");
        if (!n) continue;
        cJSON *r = cJSON_CreateObject();
        sb_jput_str(r, "name", n);
        const cJSON *ord = sb_jget(x, "order");
        sb_jadd_int_or_null(r, "order", cJSON_IsNumber(ord) ? ord->valuedouble + 1 : -1);
        sb_jput_str(r, "kind", "signer");
        cJSON_AddItemToArray(roles, r);
    }
    cJSON_ArrayForEach(x, sb_jget(t, "cc_roles"))
    {
        const char *n = sb_jstr(x, "name");
        if (!n) continue;
        cJSON *r = cJSON_CreateObject();
        sb_jput_str(r, "name", n);
        sb_jput_null(r, "order");
        sb_jput_str(r, "kind", "cc");
        cJSON_AddItemToArray(roles, r);
    }
    /* fields: the merge fields (prefill by name) first, then the signers' form fields */
    cJSON *fields = sb_jput_arr(o, "fields");
    const cJSON *d, *f;
    cJSON_ArrayForEach(d, sb_jget(t, "documents"))
    {
        cJSON_ArrayForEach(f, sb_jget(d, "custom_fields"))
        {
            const char *n = sb_jstr(f, "name");
            if (!n) continue;
            cJSON *y = cJSON_CreateObject();
            sb_jput_str(y, "name", n);
            sb_jadd_str(y, "type", sb_jstr(f, "type"));
            sb_jput_null(y, "role");
            const cJSON *req = sb_jget(f, "required");
            if (cJSON_IsBool(req))
                sb_jput_bool(y, "required", cJSON_IsTrue(req));
            else
                sb_jput_null(y, "required");
            cJSON_AddItemToArray(fields, y);
        }
    }
    cJSON_ArrayForEach(d, sb_jget(t, "documents"))
    {
        cJSON_ArrayForEach(f, sb_jget(d, "form_fields"))
        {
            const char *n = sb_jstr(f, "name");
            if (!n) continue;
            cJSON *y = cJSON_CreateObject();
            sb_jput_str(y, "name", n);
            sb_jadd_str(y, "type", sb_jstr(f, "type"));
            /* "signer" is documented only as "the signer of the form field": kept as the role
             * only when it names one of the template's signer roles */
            const char *sg = sb_jstr(f, "signer");
            sb_jadd_str(y, "role", sg && tpl_has_role(t, "signer_roles", sg) ? sg : NULL);
            const cJSON *req = sb_jget(f, "required");
            if (cJSON_IsBool(req))
                sb_jput_bool(y, "required", cJSON_IsTrue(req));
            else
                sb_jput_null(y, "required");
            cJSON_AddItemToArray(fields, y);
        }
    }
    sb_jadd_epoch(o, "updated_at", sb_jnum(t, "updated_at", -1));
    return o;
}

static int tpl_list_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                          size_t errlen)
{
    (void)step;
    (void)err;
    (void)errlen;
    sb_preq_init(r, "GET", 1);
    if (sb_preq_url(r, c->base_url, "/template/list") < 0) return -1;
    sb_preq_query_int(r, "page", (long long)sb_jnum(a, "page", 1));
    sb_preq_query_int(r, "page_size", (long long)sb_jnum(a, "page_size", 20));
    const char *q = sb_jstr(a, "query");
    return q ? sb_preq_query(r, "query", q) : 0;
}

static int tpl_list_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                        cJSON **out, char *err, size_t errlen)
{
    (void)step;
    const cJSON *res = sb_jget(r->json, "templates");
    const cJSON *li = sb_jget(r->json, "list_info");
    if (!cJSON_IsArray(res)) {
        snprintf(err, errlen, "Dropbox Sign's list has no \"templates\" array");
        return -1;
    }
    cJSON *items = cJSON_CreateArray();
    const cJSON *t;
    cJSON_ArrayForEach(t, res)
    {
        cJSON *m = map_template(t);
        if (m) cJSON_AddItemToArray(items, m);
    }
    long page = (long)sb_jnum(li, "page", sb_jnum(a, "page", 1));
    long size = (long)sb_jnum(li, "page_size", sb_jnum(a, "page_size", 20));
    long pages = (long)sb_jnum(li, "num_pages", -1);
    long long total = (long long)sb_jnum(li, "num_results", -1);
    *out = sb_list_result(c, "templates", items, page, size, total, pages >= 0 ? page < pages : 0);
    add_list_warnings(*out, r->json);
    return 0;
}

static int tpl_get_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                         size_t errlen)
{
    (void)step;
    const char *id = id_arg(a, "template_id", err, errlen);
    if (!id) return -1;
    sb_preq_init(r, "GET", 1);
    return url_with_id(r, c, "/template/", id);
}

static int tpl_get_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                       cJSON **out, char *err, size_t errlen)
{
    (void)step;
    (void)a;
    cJSON *t = map_template(sb_jget(r->json, "template"));
    if (!t) {
        snprintf(err, errlen, "Dropbox Sign's answer has no template");
        return -1;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObjectCS(o, "template", t);
    add_where(o, c);
    *out = o;
    return 0;
}

/* ---- account, users, teams ----------------------------------------------------------------- */

static int account_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                         size_t errlen)
{
    (void)a;
    (void)step;
    (void)err;
    (void)errlen;
    sb_preq_init(r, "GET", 1);
    return sb_preq_url(r, c->base_url, "/account");
}

static const cJSON *answer_account(const sb_presp *r, char *err, size_t errlen)
{
    const cJSON *ac = sb_jget(r->json, "account");
    if (!cJSON_IsObject(ac) || !sb_jstr(ac, "account_id")) {
        snprintf(err, errlen, "Dropbox Sign's answer has no account");
        return NULL;
    }
    return ac;
}

static int account_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                       cJSON **out, char *err, size_t errlen)
{
    (void)a;
    (void)step;
    const cJSON *ac = answer_account(r, err, errlen);
    if (!ac) return -1;
    cJSON *o = cJSON_CreateObject();
    cJSON *x = sb_jput_obj(o, "account");
    sb_jadd_str(x, "id", sb_jstr(ac, "account_id"));
    sb_jput_null(x, "name"); /* Dropbox Sign's account has no name */
    sb_jadd_str(x, "email", sb_jstr(ac, "email_address"));
    sb_jadd_str(x, "team_id", sb_jstr(ac, "team_id"));
    sb_jadd_str(x, "role", sb_jstr(ac, "role_code"));
    cJSON *q = sb_jput_obj(x, "quotas");
    const cJSON *e;
    cJSON_ArrayForEach(e, sb_jget(ac, "quotas"))
    {
        if (cJSON_IsNumber(e))
            cJSON_AddNumberToObject(q, e->string, e->valuedouble);
        else if (cJSON_IsNull(e))
            cJSON_AddNullToObject(q, e->string);
    }
    add_where(o, c);
    *out = o;
    return 0;
}

/* A neutral user from a team member ({account_id, email_address, role}) or an account. */
static cJSON *map_user(const cJSON *m, const char *role, const char *team_id)
{
    const char *id = sb_jstr(m, "account_id");
    if (!id) return NULL;
    cJSON *u = cJSON_CreateObject();
    sb_jput_str(u, "id", id);
    sb_jput_null(u, "name"); /* Dropbox Sign keeps no names for accounts */
    sb_jadd_str(u, "email", sb_jstr(m, "email_address"));
    sb_jadd_str(u, "role", role);
    sb_jput_str(u, "status", sb_jbool(m, "is_locked", 0) ? "locked" : "active");
    sb_jadd_str(u, "team_id", team_id);
    return u;
}

static int members_request(const sb_pctx *c, sb_pstep *step, const char *team_id, long page,
                           long size)
{
    if (!sb_id_ok(team_id)) return -1;
    if (next_with_id(step, c, "GET", 1, "/team/members/", team_id) < 0) return -1;
    if (sb_preq_query_int(&step->next, "page", page) < 0) return -1;
    return sb_preq_query_int(&step->next, "page_size", size);
}

/* list_users: GET /account (is the caller on a team?), then GET /team/members/{team_id}. */
static int users_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                     cJSON **out, char *err, size_t errlen)
{
    long page = (long)sb_jnum(a, "page", 1), size = (long)sb_jnum(a, "page_size", 20);
    const char *q = sb_jstr(a, "query");
    if (step->step == 0) {
        const cJSON *ac = answer_account(r, err, errlen);
        if (!ac) return -1;
        const char *team = sb_jstr(ac, "team_id");
        if (team) {
            sb_jput_str(step->scratch, "team_id", team);
            if (members_request(c, step, team, page, size) < 0) {
                snprintf(err, errlen, "Dropbox Sign's team id has unexpected characters");
                return -1;
            }
            return SB_PMAP_NEXT;
        }
        /* not on a team: the account is the only user */
        cJSON *items = cJSON_CreateArray();
        const char *em = sb_jstr(ac, "email_address");
        if (page == 1 && (!q || (em && strcasestr(em, q))))
            cJSON_AddItemToArray(items, map_user(ac, NULL, NULL));
        *out = sb_list_result(c, "users", items, page, size, cJSON_GetArraySize(items), 0);
        sb_jput_str(*out, "note",
                                "This Dropbox Sign account is not on a team: it is its only user.");
        return 0;
    }
    const cJSON *res = sb_jget(r->json, "team_members");
    const cJSON *li = sb_jget(r->json, "list_info");
    if (!cJSON_IsArray(res)) {
        snprintf(err, errlen, "Dropbox Sign's answer has no \"team_members\" array");
        return -1;
    }
    const char *team = sb_jstr(step->scratch, "team_id");
    cJSON *items = cJSON_CreateArray();
    const cJSON *m;
    cJSON_ArrayForEach(m, res)
    {
        const char *em = sb_jstr(m, "email_address");
        if (q && !(em && strcasestr(em, q))) continue;
        cJSON *u = map_user(m, sb_jstr(m, "role"), team);
        if (u) cJSON_AddItemToArray(items, u);
    }
    long pg = (long)sb_jnum(li, "page", (double)page);
    long ps = (long)sb_jnum(li, "page_size", (double)size);
    long pages = (long)sb_jnum(li, "num_pages", -1);
    long long total = (long long)sb_jnum(li, "num_results", -1);
    *out = sb_list_result(c, "users", items, pg, ps, q ? -1 : total, pages >= 0 ? pg < pages : 0);
    if (q)
        sb_jput_str(*out, "note",
                                "Dropbox Sign cannot search team members: this page was filtered "
                                "here by email (Dropbox Sign keeps no member names), so keep "
                                "paging while next_page is set.");
    add_list_warnings(*out, r->json);
    return 0;
}

/* get_user: GET /account?account_id= (self or a teammate), then the team's member pages for the
 * member's role name (Member, Developer, Team Manager, Admin). */
static int user_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                      size_t errlen)
{
    (void)step;
    const char *id = id_arg(a, "user_id", err, errlen);
    if (!id) return -1;
    sb_preq_init(r, "GET", 1);
    if (sb_preq_url(r, c->base_url, "/account") < 0) return -1;
    return sb_preq_query(r, "account_id", id);
}

static int user_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                    cJSON **out, char *err, size_t errlen)
{
    cJSON *sc = step->scratch;
    const char *role = NULL;
    if (step->step == 0) {
        const cJSON *ac = answer_account(r, err, errlen);
        if (!ac) return -1;
        cJSON_AddItemToObjectCS(sc, "account", cJSON_Duplicate(ac, 1));
        const char *team = sb_jstr(ac, "team_id");
        if (team && sb_id_ok(team)) {
            if (members_request(c, step, team, 1, 100) == 0) return SB_PMAP_NEXT;
        }
    } else {
        const char *uid = sb_jstr(a, "user_id");
        const cJSON *m;
        cJSON_ArrayForEach(m, sb_jget(r->json, "team_members"))
        {
            const char *id = sb_jstr(m, "account_id");
            if (id && strcmp(id, uid) == 0) role = sb_jstr(m, "role");
        }
        const cJSON *li = sb_jget(r->json, "list_info");
        long page = (long)sb_jnum(li, "page", step->step),
             pages = (long)sb_jnum(li, "num_pages", 0);
        if (!role && page < pages && step->step < DX_MEMBER_PAGES_MAX) {
            const cJSON *ac = sb_jget(sc, "account");
            if (members_request(c, step, sb_jstr(ac, "team_id"), page + 1, 100) == 0)
                return SB_PMAP_NEXT;
        }
    }
    const cJSON *ac = sb_jget(sc, "account");
    const char *team = sb_jstr(ac, "team_id");
    cJSON *u = map_user(ac, role ? role : (team ? sb_jstr(ac, "role_code") : NULL), team);
    if (!u) {
        snprintf(err, errlen, "Dropbox Sign's account has no account_id");
        return -1;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObjectCS(o, "user", u);
    add_where(o, c);
    *out = o;
    return 0;
}

/* list_teams: GET /account (team_id, or none), then GET /team/info?team_id=. An account belongs
 * to one team at most (GET /team is 404 not_found off a team: the account read avoids it). */
static int teams_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                     cJSON **out, char *err, size_t errlen)
{
    long page = (long)sb_jnum(a, "page", 1), size = (long)sb_jnum(a, "page_size", 20);
    if (step->step == 0) {
        const cJSON *ac = answer_account(r, err, errlen);
        if (!ac) return -1;
        const char *team = sb_jstr(ac, "team_id");
        if (team) {
            sb_preq_free(&step->next);
            sb_preq_init(&step->next, "GET", 1);
            if (sb_preq_url(&step->next, c->base_url, "/team/info") < 0 ||
                sb_preq_query(&step->next, "team_id", team) < 0)
                return -1;
            return SB_PMAP_NEXT;
        }
        *out = sb_list_result(c, "teams", cJSON_CreateArray(), page, size, 0, 0);
        sb_jput_str(*out, "note", "This Dropbox Sign account is not on a team.");
        return 0;
    }
    const cJSON *t = sb_jget(r->json, "team");
    const char *id = sb_jstr(t, "team_id");
    if (!id) {
        snprintf(err, errlen, "Dropbox Sign's team info has no team_id");
        return -1;
    }
    const char *name = sb_jstr(t, "name"), *q = sb_jstr(a, "query");
    cJSON *items = cJSON_CreateArray();
    if (page == 1 && (!q || (name && strcasestr(name, q)))) {
        cJSON *x = cJSON_CreateObject();
        sb_jput_str(x, "id", id);
        sb_jadd_str(x, "name", name);
        cJSON_AddItemToArray(items, x);
    }
    *out = sb_list_result(c, "teams", items, page, size, q ? cJSON_GetArraySize(items) : 1, 0);
    double subs = sb_jnum(t, "num_sub_teams", 0);
    if (subs > 0 && subs < 1e9) {
        char note[240];
        snprintf(note, sizeof note,
                 "The account's team has %ld sub-team%s, which Dropbox Sign lists separately "
                 "(GET /team/sub_teams); they are not included.",
                 (long)subs, subs == 1 ? "" : "s");
        sb_jput_str(*out, "note", note);
    }
    add_list_warnings(*out, r->json);
    return 0;
}

/* get_team: GET /team/info?team_id=, then GET /team/members/{team_id} (first 100 members). */
static int team_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                      size_t errlen)
{
    (void)step;
    const char *id = id_arg(a, "team_id", err, errlen);
    if (!id) return -1;
    sb_preq_init(r, "GET", 1);
    if (sb_preq_url(r, c->base_url, "/team/info") < 0) return -1;
    return sb_preq_query(r, "team_id", id);
}

static int team_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                    cJSON **out, char *err, size_t errlen)
{
    const char *id = sb_jstr(a, "team_id");
    if (step->step == 0) {
        const cJSON *t = sb_jget(r->json, "team");
        if (!cJSON_IsObject(t)) {
            snprintf(err, errlen, "Dropbox Sign's answer has no team");
            return -1;
        }
        sb_jadd_str(step->scratch, "name", sb_jstr(t, "name"));
        if (members_request(c, step, id, 1, 100) < 0) return -1;
        return SB_PMAP_NEXT;
    }
    const cJSON *res = sb_jget(r->json, "team_members");
    if (!cJSON_IsArray(res)) {
        snprintf(err, errlen, "Dropbox Sign's answer has no \"team_members\" array");
        return -1;
    }
    cJSON *team = cJSON_CreateObject();
    sb_jput_str(team, "id", id);
    sb_jadd_str(team, "name", sb_jstr(step->scratch, "name"));
    cJSON *members = sb_jput_arr(team, "members");
    const cJSON *m;
    cJSON_ArrayForEach(m, res)
    {
        cJSON *u = map_user(m, sb_jstr(m, "role"), id);
        if (!u) continue;
        if (sb_jstr(step->scratch, "name"))
            sb_jput_str(u, "team_name", sb_jstr(step->scratch, "name"));
        cJSON_AddItemToArray(members, u);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObjectCS(o, "team", team);
    add_where(o, c);
    *out = o;
    return 0;
}

/* ---- the adapter --------------------------------------------------------------------------- */

static const sb_ptool dx_tools[] = {
    {"list_documents", list_build, list_map},
    {"get_document", get_build, get_map},
    {"revoke_document", revoke_build, revoke_map},
    {"send_document", send_build, send_map},
    {"send_from_template", tpl_send_build, tpl_send_map},
    {"remind_signers", remind_build, remind_map},
    {"change_signer", update_build, change_map},
    {"extend_expiry", extend_build, extend_map},
    {"download_document", download_build, download_map},
    {"get_signing_link", link_build, link_map},
    {"list_templates", tpl_list_build, tpl_list_map},
    {"get_template", tpl_get_build, tpl_get_map},
    {"get_account", account_build, account_map},
    {"list_users", account_build, users_map},
    {"get_user", user_build, user_map},
    {"list_teams", account_build, teams_map},
    {"get_team", team_build, team_map},
};

const sb_adapter sb_adapter_dropboxsign = {
    .name = "dropboxsign",
    .display = "Dropbox Sign",
    .auth_header = dx_auth,
    .probe = dx_probe,
    .error_message = dx_error,
    .tools = dx_tools,
    .ntools = sizeof dx_tools / sizeof dx_tools[0],
};
