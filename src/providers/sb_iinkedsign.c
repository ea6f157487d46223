/* sb_iinkedsign: the iinked Sign adapter (API v1; ../shared/reference/iinked-sign-api.md).
 * Credential: api_key header. Probe: POST /packages/list {take:1}. Times: ISO 8601 strings. */
#include "providers/sb_provider.h"

#include "core/sb_util.h"

#include <stdio.h>
#include <string.h>

static int ik_auth(const char *key, size_t len, sb_buf *out)
{
    return sb_buf_printf(out, "api_key: %.*s", (int)len, key);
}

static int ik_probe(const sb_pctx *c, sb_preq *r)
{
    sb_preq_init(r, "POST", 1); /* a read despite the method */
    if (sb_preq_url(r, c->base_url, "/packages/list") < 0) return -1;
    cJSON *b = cJSON_CreateObject();
    cJSON_AddNumberToObject(b, "take", 1);
    cJSON_AddNumberToObject(b, "skip", 0);
    return sb_preq_json(r, b);
}

static void ik_error(const sb_presp *r, char *out, size_t cap)
{
    out[0] = '\0';
    const char *m = sb_jstr(r->json, "message"), *e = sb_jstr(r->json, "error");
    if (m && e)
        snprintf(out, cap, "%s (%s)", m, e);
    else if (m)
        sb_strlcpy(out, m, cap);
    else if (e)
        sb_strlcpy(out, e, cap);
}

static const char *doc_status(const char *state, int acted)
{
    if (!state) return "in_progress";
    if (strcmp(state, "draft") == 0 || strcmp(state, "select") == 0) return "draft";
    if (strcmp(state, "executed") == 0) return "completed";
    if (strcmp(state, "expired") == 0) return "expired";
    if (strcmp(state, "rescinded") == 0) return "revoked";
    return acted ? "in_progress" : "sent";
}

static cJSON *map_package(const cJSON *d)
{
    const char *id = sb_jstr(d, "packageId");
    if (!id) return NULL;
    const cJSON *signers = cJSON_GetObjectItemCaseSensitive(d, "signers");
    int acted = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, signers) acted |= sb_jbool(s, "isExecuted", 0);
    const char *state = sb_jstr(d, "state");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    sb_jadd_str(o, "title", sb_jstr(d, "name"));
    cJSON_AddStringToObject(o, "status", doc_status(state, acted));
    sb_jadd_str(o, "provider_status", state);
    sb_jadd_iso(o, "created_at", sb_jstr(d, "timeCreated"));
    sb_jadd_iso(o, "updated_at", sb_jstr(d, "timeLastModified"));
    sb_jadd_iso(o, "expires_at", sb_jstr(d, "timeSignBy"));
    sb_jadd_str(o, "message", sb_jstr(d, "message"));
    cJSON *sender = cJSON_AddObjectToObject(o, "sender");
    cJSON_AddNullToObject(sender, "name");
    cJSON_AddNullToObject(sender, "email");
    cJSON *arr = cJSON_AddArrayToObject(o, "signers");
    cJSON_ArrayForEach(s, signers)
    {
        cJSON *x = cJSON_CreateObject();
        char name[300];
        const char *fn = sb_jstr(s, "firstName"), *ln = sb_jstr(s, "lastName");
        snprintf(name, sizeof name, "%s%s%s", fn ? fn : "", fn && ln ? " " : "", ln ? ln : "");
        sb_jadd_str(x, "id", sb_jstr(s, "signerId"));
        sb_jadd_str(x, "name", name[0] ? name : NULL);
        sb_jadd_str(x, "email", sb_jstr(s, "email"));
        int done = sb_jbool(s, "isExecuted", 0);
        cJSON_AddStringToObject(x, "status", done ? "signed" : "pending");
        sb_jadd_str(x, "provider_status", done ? "executed" : (sb_jbool(s, "isNext", 0) ? "next" : "waiting"));
        const cJSON *idx = cJSON_GetObjectItemCaseSensitive(s, "index");
        sb_jadd_int_or_null(x, "order", cJSON_IsNumber(idx) ? idx->valuedouble : -1);
        sb_jadd_iso(x, "signed_at", sb_jstr(s, "timeExecuted"));
        cJSON_AddNullToObject(x, "viewed_at");
        cJSON_AddItemToArray(arr, x);
    }
    cJSON *cc = cJSON_AddArrayToObject(o, "cc");
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(d, "recipients"))
    {
        const char *e = sb_jstr(c, "email");
        if (e) cJSON_AddItemToArray(cc, cJSON_CreateString(e));
    }
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

static const char *state_of(const char *neutral)
{
    if (strcmp(neutral, "draft") == 0) return "draft";
    if (strcmp(neutral, "sent") == 0 || strcmp(neutral, "in_progress") == 0) return "open";
    if (strcmp(neutral, "completed") == 0) return "executed";
    if (strcmp(neutral, "expired") == 0) return "expired";
    if (strcmp(neutral, "revoked") == 0) return "rescinded";
    return NULL;
}

static int list_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                      size_t errlen)
{
    (void)step;
    (void)err;
    (void)errlen;
    sb_preq_init(r, "POST", 1);
    if (sb_preq_url(r, c->base_url, "/packages/list") < 0) return -1;
    long page = (long)sb_jnum(a, "page", 1), size = (long)sb_jnum(a, "page_size", 20);
    cJSON *b = cJSON_CreateObject();
    cJSON_AddNumberToObject(b, "take", (double)size);
    cJSON_AddNumberToObject(b, "skip", (double)((page - 1) * size));
    cJSON_AddStringToObject(b, "sortBy", "created");
    const char *q = sb_jstr(a, "query");
    if (q) cJSON_AddStringToObject(b, "search", q);
    const cJSON *st;
    cJSON *states = NULL;
    cJSON_ArrayForEach(st, cJSON_GetObjectItemCaseSensitive(a, "status"))
    {
        const char *s = cJSON_IsString(st) ? state_of(st->valuestring) : NULL;
        if (!s) continue;
        if (!states) states = cJSON_AddArrayToObject(b, "states");
        int dup = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, states) dup |= strcmp(e->valuestring, s) == 0;
        if (!dup) cJSON_AddItemToArray(states, cJSON_CreateString(s));
    }
    return sb_preq_json(r, b);
}

static int in_range(const cJSON *a, const cJSON *doc)
{
    const char *after = sb_jstr(a, "created_after"), *before = sb_jstr(a, "created_before");
    if (!after && !before) return 1;
    const char *created = sb_jstr(doc, "created_at");
    int64_t t, lim;
    if (!created || sb_parse_rfc3339(created, &t) < 0) return 0;
    if (after && sb_parse_rfc3339(after, &lim) == 0 && t < lim) return 0;
    if (before && sb_parse_rfc3339(before, &lim) == 0 && t > lim) return 0;
    return 1;
}

static int list_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                    cJSON **out, char *err, size_t errlen)
{
    (void)step;
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(r->json, "items");
    if (!cJSON_IsArray(res)) {
        snprintf(err, errlen, "iinked Sign's package list has no \"items\" array");
        return -1;
    }
    cJSON *items = cJSON_CreateArray();
    size_t dropped = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, res)
    {
        cJSON *m = map_package(d);
        if (!m) continue;
        if (!status_wanted(a, cJSON_GetObjectItemCaseSensitive(m, "status")->valuestring) ||
            !in_range(a, m)) {
            cJSON_Delete(m);
            dropped++;
            continue;
        }
        cJSON_AddItemToArray(items, m);
    }
    long page = (long)sb_jnum(a, "page", 1), size = (long)sb_jnum(a, "page_size", 20);
    long long total = (long long)sb_jnum(r->json, "total", -1);
    long long skip = (long long)sb_jnum(r->json, "skip", (double)((page - 1) * size));
    int has_next = total >= 0 ? skip + cJSON_GetArraySize(res) < total
                              : cJSON_GetArraySize(res) >= size;
    *out = sb_list_result(c, "documents", items, page, size, dropped ? -1 : total, has_next);
    if (dropped)
        cJSON_AddStringToObject(*out, "note",
                                "iinked Sign cannot filter by every criterion: this page was "
                                "filtered here, so it may hold fewer than page_size documents; "
                                "keep paging while next_page is set.");
    return 0;
}

static int get_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                      size_t errlen)
{
    (void)step;
    const char *id = sb_jstr(a, "document_id");
    if (!id || !sb_id_ok(id)) {
        snprintf(err, errlen, "document_id has characters an iinked package id never has");
        return -1;
    }
    sb_preq_init(r, "GET", 1);
    char path[256];
    snprintf(path, sizeof path, "/packages/%s", id);
    return sb_preq_url(r, c->base_url, path);
}

static int get_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                    cJSON **out, char *err, size_t errlen)
{
    (void)step;
    (void)a;
    const cJSON *pkg = cJSON_GetObjectItemCaseSensitive(r->json, "package");
    cJSON *d = map_package(cJSON_IsObject(pkg) ? pkg : r->json);
    if (!d) {
        snprintf(err, errlen, "iinked Sign's package has no packageId");
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
        snprintf(err, errlen, "document_id has characters an iinked package id never has");
        return -1;
    }
    sb_preq_init(r, "POST", 0);
    if (sb_preq_url(r, c->base_url, "/packages/rescind") < 0) return -1;
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "packageId", id);
    cJSON_AddStringToObject(b, "rescindMessage", sb_jstr(a, "reason"));
    cJSON_AddBoolToObject(b, "notify", 1);
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
    cJSON_AddStringToObject(o, "message", "iinked Sign rescinded the package; signers were notified.");
    cJSON_AddStringToObject(o, "provider", c->provider);
    cJSON_AddStringToObject(o, "region", c->region);
    *out = o;
    return 0;
}

static const sb_ptool ik_tools[] = {
    {"list_documents", list_build, list_map},
    {"get_document", get_build, get_map},
    {"revoke_document", revoke_build, revoke_map},
};

const sb_adapter sb_adapter_iinkedsign = {
    .name = "iinkedsign",
    .display = "iinked Sign",
    .auth_header = ik_auth,
    .probe = ik_probe,
    .error_message = ik_error,
    .tools = ik_tools,
    .ntools = sizeof ik_tools / sizeof ik_tools[0],
};
