/* sb_dropboxsign: the Dropbox Sign adapter (API v3; ../shared/reference/dropbox-sign-api.md).
 * Credential: Authorization: Basic base64(<key>:). Probe: GET /account. Times: epoch seconds. */
#include "providers/sb_provider.h"

#include "core/sb_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(r->json, "error");
    const char *m = sb_jstr(e, "error_msg");
    const char *n = sb_jstr(e, "error_name");
    if (m && n)
        snprintf(out, cap, "%s (%s)", m, n);
    else if (m)
        sb_strlcpy(out, m, cap);
}

static const char *signer_status(const cJSON *s)
{
    const char *st = sb_jstr(s, "status_code");
    if (!st) return "pending";
    if (strcmp(st, "signed") == 0) return "signed";
    if (strcmp(st, "declined") == 0) return "declined";
    if (strncmp(st, "error", 5) == 0) return "failed";
    if (strcmp(st, "expired") == 0) return "expired";
    return sb_jnum(s, "last_viewed_at", 0) > 0 ? "viewed" : "pending";
}

static cJSON *map_request(const cJSON *d)
{
    const char *id = sb_jstr(d, "signature_request_id");
    if (!id) return NULL;
    const cJSON *sigs = cJSON_GetObjectItemCaseSensitive(d, "signatures");
    int complete = sb_jbool(d, "is_complete", 0), declined = sb_jbool(d, "is_declined", 0);
    int error = sb_jbool(d, "has_error", 0);
    double expires = sb_jnum(d, "expires_at", -1), created = sb_jnum(d, "created_at", -1);
    double updated = created;
    int acted = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, sigs)
    {
        double a = sb_jnum(s, "signed_at", -1), v = sb_jnum(s, "last_viewed_at", -1);
        if (a > updated) updated = a;
        if (v > updated) updated = v;
        if (a > 0 || v > 0) acted = 1;
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
    } else if (expires > 0 && expires < (double)(sb_wall_ms() / 1000)) {
        status = "expired";
        pstatus = "expired";
    } else {
        status = acted ? "in_progress" : "sent";
        pstatus = "awaiting_signature";
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    sb_jadd_str(o, "title", sb_jstr(d, "title"));
    cJSON_AddStringToObject(o, "status", status);
    cJSON_AddStringToObject(o, "provider_status", pstatus);
    sb_jadd_epoch(o, "created_at", created);
    sb_jadd_epoch(o, "updated_at", updated);
    sb_jadd_epoch(o, "expires_at", expires);
    sb_jadd_str(o, "message", sb_jstr(d, "message"));
    cJSON *sender = cJSON_AddObjectToObject(o, "sender");
    cJSON_AddNullToObject(sender, "name");
    sb_jadd_str(sender, "email", sb_jstr(d, "requester_email_address"));
    cJSON *arr = cJSON_AddArrayToObject(o, "signers");
    cJSON_ArrayForEach(s, sigs)
    {
        cJSON *x = cJSON_CreateObject();
        sb_jadd_str(x, "id", sb_jstr(s, "signature_id"));
        sb_jadd_str(x, "name", sb_jstr(s, "signer_name"));
        sb_jadd_str(x, "email", sb_jstr(s, "signer_email_address"));
        cJSON_AddStringToObject(x, "status", signer_status(s));
        sb_jadd_str(x, "provider_status", sb_jstr(s, "status_code"));
        const cJSON *ord = cJSON_GetObjectItemCaseSensitive(s, "order");
        sb_jadd_int_or_null(x, "order", cJSON_IsNumber(ord) ? ord->valuedouble : -1);
        sb_jadd_epoch(x, "signed_at", sb_jnum(s, "signed_at", -1));
        sb_jadd_epoch(x, "viewed_at", sb_jnum(s, "last_viewed_at", -1));
        cJSON_AddItemToArray(arr, x);
    }
    cJSON *cc = cJSON_AddArrayToObject(o, "cc");
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(d, "cc_email_addresses"))
    {
        if (cJSON_IsString(c)) cJSON_AddItemToArray(cc, cJSON_CreateString(c->valuestring));
    }
    const cJSON *tm = cJSON_GetObjectItemCaseSensitive(d, "test_mode");
    if (cJSON_IsBool(tm)) cJSON_AddBoolToObject(o, "test_mode", cJSON_IsTrue(tm));
    return o;
}

static int status_wanted(const cJSON *a, const char *neutral)
{
    const cJSON *want = cJSON_GetObjectItemCaseSensitive(a, "status");
    if (!cJSON_IsArray(want) || cJSON_GetArraySize(want) == 0) return 1;
    const cJSON *w;
    cJSON_ArrayForEach(w, want) if (cJSON_IsString(w) && strcmp(w->valuestring, neutral) == 0) return 1;
    return 0;
}

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
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(a, "status");
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
    (void)step;
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(r->json, "signature_requests");
    const cJSON *li = cJSON_GetObjectItemCaseSensitive(r->json, "list_info");
    if (!cJSON_IsArray(res)) {
        snprintf(err, errlen, "Dropbox Sign's list has no \"signature_requests\" array");
        return -1;
    }
    cJSON *items = cJSON_CreateArray();
    size_t dropped = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, res)
    {
        cJSON *m = map_request(d);
        if (!m) continue;
        if (!status_wanted(a, cJSON_GetObjectItemCaseSensitive(m, "status")->valuestring)) {
            cJSON_Delete(m);
            dropped++;
            continue;
        }
        cJSON_AddItemToArray(items, m);
    }
    long page = (long)sb_jnum(li, "page", sb_jnum(a, "page", 1));
    long size = (long)sb_jnum(li, "page_size", sb_jnum(a, "page_size", 20));
    long pages = (long)sb_jnum(li, "num_pages", -1);
    long long total = (long long)sb_jnum(li, "num_results", -1);
    *out = sb_list_result(c, "documents", items, page, size, dropped ? -1 : total,
                          pages >= 0 ? page < pages : 0);
    if (dropped)
        cJSON_AddStringToObject(*out, "note",
                                "Dropbox Sign cannot filter by every status: this page was "
                                "filtered here, so it may hold fewer than page_size documents; "
                                "keep paging while next_page is set.");
    return 0;
}

static int id_path(const sb_pctx *c, const cJSON *a, sb_preq *r, const char *prefix, char *err,
                   size_t errlen)
{
    const char *id = sb_jstr(a, "document_id");
    if (!id || !sb_id_ok(id)) {
        snprintf(err, errlen, "document_id has characters a Dropbox Sign id never has");
        return -1;
    }
    char path[256];
    snprintf(path, sizeof path, "%s%s", prefix, id);
    return sb_preq_url(r, c->base_url, path);
}

static int get_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                      size_t errlen)
{
    (void)step;
    sb_preq_init(r, "GET", 1);
    return id_path(c, a, r, "/signature_request/", err, errlen);
}

static int get_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                    cJSON **out, char *err, size_t errlen)
{
    (void)step;
    (void)a;
    cJSON *d = map_request(cJSON_GetObjectItemCaseSensitive(r->json, "signature_request"));
    if (!d) {
        snprintf(err, errlen, "Dropbox Sign's answer has no signature_request");
        return -1;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "document", d);
    cJSON_AddStringToObject(o, "provider", c->provider);
    cJSON_AddStringToObject(o, "region", c->region);
    *out = o;
    return 0;
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
    cJSON_AddStringToObject(o, "document_id", sb_jstr(a, "document_id"));
    cJSON_AddStringToObject(o, "status", "revoke_requested");
    cJSON_AddStringToObject(o, "message",
                            "Dropbox Sign accepted the cancellation; it completes asynchronously "
                            "(Dropbox Sign gives no reason field, so the reason was not sent). "
                            "Check with get_document.");
    cJSON_AddStringToObject(o, "provider", c->provider);
    cJSON_AddStringToObject(o, "region", c->region);
    *out = o;
    return 0;
}

static const sb_ptool dx_tools[] = {
    {"list_documents", list_build, list_map},
    {"get_document", get_build, get_map},
    {"revoke_document", revoke_build, revoke_map},
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
