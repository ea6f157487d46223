/* sb_boldsign: the BoldSign adapter (REST v1; ../shared/reference/boldsign-api.md).
 * Credential: X-API-KEY. Probe: GET /v1/brand/list. Times are epoch seconds. */
#include "providers/sb_provider.h"

#include "core/sb_util.h"

#include <stdio.h>
#include <string.h>

static int bs_auth(const char *key, size_t len, sb_buf *out)
{
    return sb_buf_printf(out, "X-API-KEY: %.*s", (int)len, key);
}

static int bs_probe(const sb_pctx *c, sb_preq *r)
{
    sb_preq_init(r, "GET", 1);
    return sb_preq_url(r, c->base_url, "/v1/brand/list");
}

static void bs_error(const sb_presp *r, char *out, size_t cap)
{
    out[0] = '\0';
    const char *e = sb_jstr(r->json, "error");
    if (!e) e = sb_jstr(r->json, "title"); /* ASP.NET ProblemDetails */
    if (e) sb_strlcpy(out, e, cap);
}

/* ---- status mapping ---------------------------------------------------------------------- */

static const char *signer_status(const cJSON *s)
{
    const char *st = sb_jstr(s, "status");
    if (!st) return "pending";
    if (strcmp(st, "Completed") == 0) return "signed";
    if (strcmp(st, "Declined") == 0) return "declined";
    if (strcmp(st, "Revoked") == 0) return "revoked";
    if (strcmp(st, "Expired") == 0) return "expired";
    return sb_jbool(s, "isViewed", 0) ? "viewed" : "pending";
}

static const char *doc_status(const char *st, const cJSON *signers)
{
    if (!st) return "in_progress";
    if (strcmp(st, "Completed") == 0) return "completed";
    if (strcmp(st, "Declined") == 0) return "declined";
    if (strcmp(st, "Expired") == 0) return "expired";
    if (strcmp(st, "Revoked") == 0) return "revoked";
    if (strcmp(st, "Draft") == 0) return "draft";
    if (strcmp(st, "Scheduled") == 0) return "scheduled";
    /* InProgress: "sent" until somebody has acted */
    const cJSON *s;
    cJSON_ArrayForEach(s, signers)
    {
        const char *ss = signer_status(s);
        if (strcmp(ss, "pending") != 0) return "in_progress";
    }
    return "sent";
}

/* History times per signer email, from documentHistory (properties only). */
static double history_time(const cJSON *hist, const char *email, const char *action)
{
    double t = -1;
    const cJSON *h;
    cJSON_ArrayForEach(h, hist)
    {
        const char *a = sb_jstr(h, "action"), *e = sb_jstr(h, "email");
        if (a && e && email && strcmp(a, action) == 0 && strcasecmp(e, email) == 0)
            t = sb_jnum(h, "timestamp", t);
    }
    return t;
}

static cJSON *map_document(const cJSON *d)
{
    const char *id = sb_jstr(d, "documentId");
    if (!id) return NULL;
    const cJSON *signers = cJSON_GetObjectItemCaseSensitive(d, "signerDetails");
    const cJSON *hist = cJSON_GetObjectItemCaseSensitive(d, "documentHistory");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    sb_jadd_str(o, "title", sb_jstr(d, "messageTitle"));
    const char *st = sb_jstr(d, "status");
    cJSON_AddStringToObject(o, "status", doc_status(st, signers));
    sb_jadd_str(o, "provider_status", st);
    sb_jadd_epoch(o, "created_at", sb_jnum(d, "createdDate", -1));
    sb_jadd_epoch(o, "updated_at", sb_jnum(d, "activityDate", -1));
    sb_jadd_epoch(o, "expires_at", sb_jnum(d, "expiryDate", -1));
    sb_jadd_str(o, "message", sb_jstr(d, "documentDescription"));
    const cJSON *sd = cJSON_GetObjectItemCaseSensitive(d, "senderDetail");
    cJSON *sender = cJSON_AddObjectToObject(o, "sender");
    sb_jadd_str(sender, "name", sb_jstr(sd, "name"));
    sb_jadd_str(sender, "email", sb_jstr(sd, "emailAddress"));
    cJSON *arr = cJSON_AddArrayToObject(o, "signers");
    const cJSON *s;
    cJSON_ArrayForEach(s, signers)
    {
        cJSON *x = cJSON_CreateObject();
        const char *email = sb_jstr(s, "signerEmail");
        sb_jadd_str(x, "id", sb_jstr(s, "id"));
        sb_jadd_str(x, "name", sb_jstr(s, "signerName"));
        sb_jadd_str(x, "email", email);
        cJSON_AddStringToObject(x, "status", signer_status(s));
        sb_jadd_str(x, "provider_status", sb_jstr(s, "status"));
        sb_jadd_int_or_null(x, "order", sb_jnum(s, "order", -1));
        sb_jadd_epoch(x, "signed_at", history_time(hist, email, "Signed"));
        sb_jadd_epoch(x, "viewed_at", history_time(hist, email, "Viewed"));
        cJSON_AddItemToArray(arr, x);
    }
    cJSON *cc = cJSON_AddArrayToObject(o, "cc");
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(d, "ccDetails"))
    {
        const char *e = sb_jstr(c, "emailAddress");
        if (e) cJSON_AddItemToArray(cc, cJSON_CreateString(e));
    }
    return o;
}

/* ---- list_documents -------------------------------------------------------------------------- */

static const char *status_to_bs(const char *neutral)
{
    static const char *const map[][2] = {
        {"sent", "InProgress"},   {"in_progress", "InProgress"}, {"completed", "Completed"},
        {"declined", "Declined"}, {"expired", "Expired"},        {"revoked", "Revoked"},
        {"draft", "Draft"},       {"scheduled", "Scheduled"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i][0], neutral) == 0) return map[i][1];
    return NULL;
}

static int list_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                      size_t errlen)
{
    (void)step;
    (void)err;
    (void)errlen;
    sb_preq_init(r, "GET", 1);
    if (sb_preq_url(r, c->base_url, "/v1/document/list") < 0) return -1;
    sb_preq_query_int(r, "Page", (long long)sb_jnum(a, "page", 1));
    sb_preq_query_int(r, "PageSize", (long long)sb_jnum(a, "page_size", 20));
    const cJSON *st;
    const char *sent[8];
    size_t ns = 0;
    cJSON_ArrayForEach(st, cJSON_GetObjectItemCaseSensitive(a, "status"))
    {
        const char *b = cJSON_IsString(st) ? status_to_bs(st->valuestring) : NULL;
        int dup = 0;
        for (size_t i = 0; b && i < ns; i++) dup |= strcmp(sent[i], b) == 0;
        if (b && !dup && ns < 8) {
            sent[ns++] = b;
            sb_preq_query(r, "Status", b);
        }
    }
    const char *q = sb_jstr(a, "query");
    if (q) sb_preq_query(r, "SearchKey", q);
    const char *after = sb_jstr(a, "created_after"), *before = sb_jstr(a, "created_before");
    if (after || before) {
        sb_preq_query(r, "DateFilterType", "SentBetween");
        sb_preq_query(r, "StartDate", after ? after : "1970-01-01T00:00:00Z");
        sb_preq_query(r, "EndDate", before ? before : "9999-12-31T23:59:59Z");
    }
    return 0;
}

static int status_wanted(const cJSON *a, const char *neutral)
{
    const cJSON *want = cJSON_GetObjectItemCaseSensitive(a, "status");
    if (!cJSON_IsArray(want) || cJSON_GetArraySize(want) == 0) return 1;
    const cJSON *w;
    cJSON_ArrayForEach(w, want) if (cJSON_IsString(w) && strcmp(w->valuestring, neutral) == 0) return 1;
    return 0;
}

static int list_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                    cJSON **out, char *err, size_t errlen)
{
    (void)step;
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(r->json, "result");
    const cJSON *pd = cJSON_GetObjectItemCaseSensitive(r->json, "pageDetails");
    if (!cJSON_IsArray(res)) {
        snprintf(err, errlen, "BoldSign's document list has no \"result\" array");
        return -1;
    }
    cJSON *items = cJSON_CreateArray();
    const cJSON *d;
    cJSON_ArrayForEach(d, res)
    {
        cJSON *m = map_document(d);
        if (!m) continue;
        /* BoldSign has one InProgress status for both sent and in_progress */
        if (!status_wanted(a, cJSON_GetObjectItemCaseSensitive(m, "status")->valuestring)) {
            cJSON_Delete(m);
            continue;
        }
        cJSON_AddItemToArray(items, m);
    }
    long page = (long)sb_jnum(pd, "page", sb_jnum(a, "page", 1));
    long size = (long)sb_jnum(pd, "pageSize", sb_jnum(a, "page_size", 20));
    long long total = (long long)sb_jnum(pd, "totalRecordsCount", -1);
    long pages = (long)sb_jnum(pd, "totalPages", -1);
    int has_next = pages >= 0 ? page < pages : cJSON_GetArraySize(res) >= size;
    *out = sb_list_result(c, "documents", items, page, size, total, has_next);
    return 0;
}

/* ---- get_document / revoke_document ---------------------------------------------------------- */

static int get_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                      size_t errlen)
{
    (void)step;
    const char *id = sb_jstr(a, "document_id");
    if (!id || !sb_id_ok(id)) {
        snprintf(err, errlen, "document_id has characters a BoldSign id never has");
        return -1;
    }
    sb_preq_init(r, "GET", 1);
    if (sb_preq_url(r, c->base_url, "/v1/document/properties") < 0) return -1;
    return sb_preq_query(r, "documentId", id);
}

static int get_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                    cJSON **out, char *err, size_t errlen)
{
    (void)step;
    (void)a;
    cJSON *d = map_document(r->json);
    if (!d) {
        snprintf(err, errlen, "BoldSign's document properties have no documentId");
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
    const char *id = sb_jstr(a, "document_id");
    if (!id || !sb_id_ok(id)) {
        snprintf(err, errlen, "document_id has characters a BoldSign id never has");
        return -1;
    }
    sb_preq_init(r, "POST", 0);
    if (sb_preq_url(r, c->base_url, "/v1/document/revoke") < 0 ||
        sb_preq_query(r, "documentId", id) < 0)
        return -1;
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "message", sb_jstr(a, "reason"));
    return sb_preq_json(r, b);
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
    cJSON_AddStringToObject(o, "status", "revoked");
    cJSON_AddStringToObject(o, "message", "BoldSign revoked the document; signers can no longer sign it.");
    cJSON_AddStringToObject(o, "provider", c->provider);
    cJSON_AddStringToObject(o, "region", c->region);
    *out = o;
    return 0;
}

static const sb_ptool bs_tools[] = {
    {"list_documents", list_build, list_map},
    {"get_document", get_build, get_map},
    {"revoke_document", revoke_build, revoke_map},
};

const sb_adapter sb_adapter_boldsign = {
    .name = "boldsign",
    .display = "BoldSign",
    .auth_header = bs_auth,
    .probe = bs_probe,
    .error_message = bs_error,
    .tools = bs_tools,
    .ntools = sizeof bs_tools / sizeof bs_tools[0],
};
