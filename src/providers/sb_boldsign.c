/* sb_boldsign: the BoldSign adapter (REST v1; ../shared/reference/boldsign-api.md and the
 * BoldSign OpenAPI description). Credential: X-API-KEY. Probe: GET /v1/brand/list. Times are
 * epoch seconds. Bodies are JSON (booleans as JSON booleans, files as base64 data URIs);
 * multi-step tools keep their state in step->scratch under "phase". */
#include "providers/sb_provider.h"

#include "core/sb_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define BS_MAX_FILE ((size_t)25 << 20)      /* BoldSign: 25 MB per file */
#define BS_MAX_B64_TOTAL ((size_t)44 << 20) /* base64 of all files in one request body */
#define BS_DEFAULT_REASON "The sender changed this signer."

static int bs_auth(const char *key, size_t len, sb_buf *out)
{
    return sb_buf_printf(out, "X-API-KEY: %.*s", (int)len, key);
}

static int bs_probe(const sb_pctx *c, sb_preq *r)
{
    sb_preq_init(r, "GET", 1);
    return sb_preq_url(r, c->base_url, "/v1/brand/list");
}

/* BoldSign answers unknown or foreign ids with 403 {"error":"Invalid Document ID"} (likewise
 * Template, Contact, User, Team): say that this means "not found" to the reader. */
static void bs_error(const sb_presp *r, char *out, size_t cap)
{
    out[0] = '\0';
    const char *e = sb_jstr(r->json, "error");
    if (!e) e = sb_jstr(r->json, "title"); /* ASP.NET ProblemDetails */
    if (e) sb_strlcpy(out, e, cap);
    /* ProblemDetails: {"errors":{"Field":["message"]}} -> name the first field */
    const cJSON *errs = sb_jget(r->json, "errors");
    if (cJSON_IsObject(errs) && errs->child) {
        const cJSON *f = errs->child;
        const cJSON *m = cJSON_IsArray(f) ? cJSON_GetArrayItem(f, 0) : f;
        size_t n = strlen(out);
        if (f->string && cJSON_IsString(m) && n < cap)
            snprintf(out + n, cap - n, "%s%s: %s", n ? " - " : "", f->string, m->valuestring);
    }
    if (!r->json && r->body && r->len > 0 && r->len < 200 && sb_utf8_valid(r->body, r->len) &&
        !memchr(r->body, '<', r->len)) {
        size_t n = r->len < cap ? r->len : cap - 1;
        memcpy(out, r->body, n);
        out[n] = '\0';
    }
    size_t n = strlen(out);
    if (n > 11 && strncmp(out, "Invalid ", 8) == 0 && strcmp(out + n - 3, " ID") == 0 &&
        r->status == 403) {
        char what[48];
        snprintf(what, sizeof what, "%.*s", (int)(n - 11), out + 8);
        for (char *p = what; *p; p++)
            if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
        snprintf(out + n, cap - n, " - not found: no %s with this id in this account", what);
    }
}

/* ---- small helpers ------------------------------------------------------------------------ */

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
                                                      ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* A request that cannot be built: a URL or body over sb_preq's bounds, or no memory. */
static int too_large(char *err, size_t errlen)
{
    return fail(err, errlen,
                "the request would be larger than signbridge sends to BoldSign (a URL over 8 KB "
                "or a body over 48 MB): ask for less");
}

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

/* A validated id argument, or NULL with err naming the argument. */
static const char *id_arg(const cJSON *a, const char *key, char *err, size_t errlen)
{
    const char *id = sb_jstr(a, key);
    if (!id || !sb_id_ok(id)) {
        fail(err, errlen,
             "%s has characters a BoldSign id never has (only letters, digits and -._~:@ are "
             "possible)",
             key);
        return NULL;
    }
    return id;
}

/* GET base+path?qname=id (a read: the engine may retry it). */
static int get_by_id(const sb_pctx *c, sb_preq *r, const char *path, const char *qname,
                     const char *id, char *err, size_t errlen)
{
    sb_preq_init(r, "GET", 1);
    if (sb_preq_url(r, c->base_url, path) < 0 || sb_preq_query(r, qname, id) < 0)
        return too_large(err, errlen);
    return 0;
}

/* An action: method base+path?qname=id (sent once: never retried by the engine). */
static int action_req(const sb_pctx *c, sb_preq *r, const char *method, const char *path,
                      const char *qname, const char *id, char *err, size_t errlen)
{
    sb_preq_init(r, method, 0);
    if (sb_preq_url(r, c->base_url, path) < 0 || sb_preq_query(r, qname, id) < 0)
        return too_large(err, errlen);
    return 0;
}

/* The JSON body (taken). */
static int json_body(sb_preq *r, cJSON *b, char *err, size_t errlen)
{
    return sb_preq_json(r, b) < 0 ? too_large(err, errlen) : 0;
}

/* GET base+path?Page&PageSize[&extra][&search=query] for the list tools. */
static int list_req(const sb_pctx *c, sb_preq *r, const char *path, const cJSON *a,
                    const char *search, const char *xk, const char *xv, char *err, size_t errlen)
{
    sb_preq_init(r, "GET", 1);
    const char *q = sb_jstr(a, "query");
    if (sb_preq_url(r, c->base_url, path) < 0 ||
        sb_preq_query_int(r, "Page", (long long)sb_jnum(a, "page", 1)) < 0 ||
        sb_preq_query_int(r, "PageSize", (long long)sb_jnum(a, "page_size", 20)) < 0 ||
        (xk && sb_preq_query(r, xk, xv) < 0) || (q && sb_preq_query(r, search, q) < 0))
        return too_large(err, errlen);
    return 0;
}

static cJSON *with_where(const sb_pctx *c, cJSON *o)
{
    sb_jput_str(o, "provider", c->provider);
    sb_jput_str(o, "region", c->region);
    return o;
}

/* {outcome: done, message, provider, region} for an action. */
static cJSON *action_result(const sb_pctx *c, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    sb_jput_str(o, "outcome", "done");
    sb_jput_str(o, "message", message);
    return with_where(c, o);
}

/* page, page_size, total and whether there is a next page, from BoldSign's pageDetails (which
 * differ per resource: documents and templates report totalRecordsCount and totalPages, contacts
 * only the count, users and teams neither). */
static void page_of(const cJSON *a, const cJSON *pd, int count, long *page_out, long *size_out,
                    long long *total_out, int *has_next_out)
{
    long page = (long)sb_jnum(pd, "page", sb_jnum(a, "page", 1));
    long size = (long)sb_jnum(pd, "pageSize", sb_jnum(a, "page_size", 20));
    if (page < 1) page = (long)sb_jnum(a, "page", 1);
    if (size < 1) size = (long)sb_jnum(a, "page_size", 20);
    long long total = (long long)sb_jnum(pd, "totalRecordsCount", -1);
    long pages = (long)sb_jnum(pd, "totalPages", -1);
    int has_next;
    if (pages >= 0)
        has_next = page < pages;
    else if (total >= 0)
        has_next = (long long)page * size < total;
    else
        has_next = count >= size;
    *page_out = page;
    *size_out = size;
    *total_out = total;
    *has_next_out = has_next;
}

/* The neutral list envelope around items. */
static cJSON *list_out(const sb_pctx *c, const cJSON *a, const char *name, cJSON *items,
                       const cJSON *pd, int count)
{
    long page, size;
    long long total;
    int has_next;
    page_of(a, pd, count, &page, &size, &total, &has_next);
    return sb_list_result(c, name, items, page, size, total, has_next);
}

/* "+1 5550903623" from {countryCode, number}; "" when absent. */
static void phone_str(const cJSON *ph, char *out, size_t cap)
{
    const char *cc = nonempty(sb_jstr(ph, "countryCode")), *num = nonempty(sb_jstr(ph, "number"));
    out[0] = '\0';
    if (num && cc)
        snprintf(out, cap, "%s%s %s", cc[0] == '+' ? "" : "+", cc, num);
    else if (num)
        snprintf(out, cap, "%s", num);
}

/* ITU-T E.164 country codes are prefix-free: 1 and 7 are one digit, these two, the rest three. */
static size_t cc_len(const char *d)
{
    static const char two[][3] = {"20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41",
                                  "43", "44", "45", "46", "47", "48", "49", "51", "52", "53", "54",
                                  "55", "56", "57", "58", "60", "61", "62", "63", "64", "65", "66",
                                  "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98"};
    if (d[0] == '1' || d[0] == '7') return 1;
    for (size_t i = 0; i < sizeof two / sizeof two[0]; i++)
        if (d[0] == two[i][0] && d[1] == two[i][1]) return 2;
    return 3;
}

/* "+<country code> <number>" (spaces, dashes, dots and parentheses allowed) -> BoldSign's
 * PhoneNumber {countryCode "+1", number "5551234567"}. 0 or -1 with err naming `field`. */
static int parse_phone(const char *in, const char *field, char *cc, size_t cccap, char *num,
                       size_t numcap, char *err, size_t errlen)
{
    char digits[24];
    size_t nd = 0, first_group = 0;
    int in_first = 1;
    const char *p = in;
    while (*p == ' ')
        p++;
    if (*p != '+')
        return fail(err, errlen, "%s must start with + and the country code, e.g. +1 5551234567",
                    field);
    for (p++; *p; p++) {
        if (*p >= '0' && *p <= '9') {
            if (nd + 1 >= sizeof digits)
                return fail(err, errlen, "%s has too many digits for a phone number", field);
            digits[nd++] = *p;
            if (in_first) first_group++;
        } else if (*p == ' ' || *p == '-' || *p == '.' || *p == '(' || *p == ')') {
            if (nd > 0) in_first = 0;
        } else {
            return fail(err, errlen,
                        "%s may hold only +, digits, spaces, dashes, dots and parentheses", field);
        }
    }
    digits[nd] = '\0';
    size_t cl = first_group >= 1 && first_group <= 3 && first_group < nd
                    ? first_group
                    : (nd ? cc_len(digits) : 0);
    if (nd < 5 || nd - cl < 4 || nd > 15)
        return fail(err, errlen,
                    "%s is not a phone number: write +<country code> <number>, e.g. +1 5551234567",
                    field);
    snprintf(cc, cccap, "+%.*s", (int)cl, digits);
    snprintf(num, numcap, "%s", digits + cl);
    return 0;
}

static cJSON *phone_json(const char *cc, const char *num)
{
    cJSON *o = cJSON_CreateObject();
    sb_jput_str(o, "countryCode", cc);
    sb_jput_str(o, "number", num);
    return o;
}

/* yyyy-MM-dd or yyyy-MM-ddTHH:mm:ssZ of epoch seconds (UTC). */
static void fmt_utc(int64_t secs, int date_only, char *out, size_t cap)
{
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, date_only ? "%Y-%m-%d" : "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- status mapping ---------------------------------------------------------------------- */

/* A signer's neutral status from its status and isViewed members (either may be NULL). */
static const char *signer_status(const cJSON *status, const cJSON *viewed)
{
    const char *st = sb_jv_str(status);
    if (!st) return "pending";
    if (strcmp(st, "Completed") == 0) return "signed";
    if (strcmp(st, "Declined") == 0) return "declined";
    if (strcmp(st, "Revoked") == 0) return "revoked";
    if (strcmp(st, "Expired") == 0) return "expired";
    return sb_jv_bool(viewed, 0) ? "viewed" : "pending";
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
    static const char *const names[] = {"status", "isViewed"};
    const cJSON *s, *m[2];
    cJSON_ArrayForEach(s, signers)
    {
        sb_jpick(s, names, 2, m);
        if (strcmp(signer_status(m[0], m[1]), "pending") != 0) return "in_progress";
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

/* The members write_document reads, looked up at once (sb_jpick). */
enum { D_ID, D_SIGNERS, D_STATUS, D_HIST, D_TITLE, D_CREATED, D_ACTIVITY, D_EXPIRY, D_DESC,
       D_SENDER, D_CC, D_N };
static const char *const doc_names[D_N] = {
    "documentId", "signerDetails", "status",     "documentHistory",     "messageTitle",
    "createdDate", "activityDate", "expiryDate", "documentDescription", "senderDetail",
    "ccDetails"};
enum { S_EMAIL, S_ID, S_NAME, S_STATUS, S_VIEWED, S_ORDER, S_ROLE, S_N };
static const char *const signer_names[S_N] = {"signerEmail", "id",       "signerName", "status",
                                              "isViewed",    "order",    "signerRole"};

/* A document (a list item or document/properties) in the neutral model, written; -1 (nothing
 * written) without a documentId or when `a`'s status filter leaves it out (*dropped counts it). */
static int write_document(sb_jw *w, const cJSON *d, const cJSON *a, size_t *dropped)
{
    const cJSON *m[D_N];
    sb_jpick(d, doc_names, D_N, m);
    const char *id = sb_jv_str(m[D_ID]);
    if (!id) return -1;
    const cJSON *signers = m[D_SIGNERS];
    const char *st = sb_jv_str(m[D_STATUS]);
    const char *status = doc_status(st, signers);
    /* BoldSign has one InProgress status for both sent and in_progress */
    if (a && !sb_status_wanted(a, status)) {
        (*dropped)++;
        return -1;
    }
    const cJSON *hist = m[D_HIST];
    sb_jw_open(w, '{');
    sb_jw_jstr(w, "id", m[D_ID]);
    sb_jw_jstr(w, "title", m[D_TITLE]);
    sb_jw_str(w, "status", status);
    sb_jw_jstr(w, "provider_status", m[D_STATUS]);
    sb_pjw_epoch(w, "created_at", sb_jv_num(m[D_CREATED], -1));
    sb_pjw_epoch(w, "updated_at", sb_jv_num(m[D_ACTIVITY], -1));
    sb_pjw_epoch(w, "expires_at", sb_jv_num(m[D_EXPIRY], -1));
    sb_jw_jstr(w, "message", m[D_DESC]);
    const cJSON *sd = m[D_SENDER];
    sb_jw_obj(w, "sender");
    sb_jw_jstr(w, "name", sb_jget(sd, "name"));
    sb_jw_jstr(w, "email", sb_jget(sd, "emailAddress"));
    sb_jw_close(w, '}');
    sb_jw_arr(w, "signers");
    const cJSON *s;
    cJSON_ArrayForEach(s, signers)
    {
        const cJSON *sm[S_N];
        sb_jpick(s, signer_names, S_N, sm);
        const char *email = sb_jv_str(sm[S_EMAIL]);
        sb_jw_open(w, '{');
        sb_jw_jstr(w, "id", sm[S_ID]);
        sb_jw_jstr(w, "name", sm[S_NAME]);
        sb_jw_jstr(w, "email", sm[S_EMAIL]);
        sb_jw_str(w, "status", signer_status(sm[S_STATUS], sm[S_VIEWED]));
        sb_jw_jstr(w, "provider_status", sm[S_STATUS]);
        sb_pjw_int_or_null(w, "order", sb_jv_num(sm[S_ORDER], -1));
        sb_pjw_epoch(w, "signed_at", history_time(hist, email, "Signed"));
        sb_pjw_epoch(w, "viewed_at", history_time(hist, email, "Viewed"));
        if (nonempty(sb_jv_str(sm[S_ROLE]))) sb_jw_jstr(w, "role", sm[S_ROLE]);
        sb_jw_close(w, '}');
    }
    sb_jw_close(w, ']');
    sb_jw_arr(w, "cc");
    const cJSON *c;
    cJSON_ArrayForEach(c, m[D_CC])
    {
        const cJSON *e = sb_jget(c, "emailAddress");
        if (cJSON_IsString(e)) sb_jw_vjstr(w, e);
    }
    sb_jw_close(w, ']');
    sb_jw_close(w, '}');
    return 0;
}

/* ---- list_documents -------------------------------------------------------------------------- */

/* The values of document/list's Status filter (an enum of its own: None, WaitingForMe,
 * WaitingForOthers, NeedAttention, Completed, Declined, Revoked, Expired, Scheduled, Draft) for a
 * neutral status. BoldSign's InProgress documents are those waiting for me or for others. */
static size_t status_to_bs(const char *neutral, const char **out)
{
    static const char *const map[][3] = {{"sent", "WaitingForMe", "WaitingForOthers"},
                                         {"in_progress", "WaitingForMe", "WaitingForOthers"},
                                         {"completed", "Completed", NULL},
                                         {"declined", "Declined", NULL},
                                         {"expired", "Expired", NULL},
                                         {"revoked", "Revoked", NULL},
                                         {"draft", "Draft", NULL},
                                         {"scheduled", "Scheduled", NULL}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i][0], neutral) == 0) {
            out[0] = map[i][1];
            out[1] = map[i][2];
            return map[i][2] ? 2 : 1;
        }
    return 0; /* failed: BoldSign has no such status */
}

/* An RFC 3339 argument as BoldSign's date-time (UTC, whole seconds; `up` rounds up). */
static void date_arg(const char *v, int up, char *out, size_t cap)
{
    int64_t ms;
    if (sb_parse_rfc3339(v, &ms) < 0) {
        sb_strlcpy(out, v, cap); /* validated by the contract: not reached */
        return;
    }
    int64_t s = ms / 1000 - (ms % 1000 < 0);
    if (up && ms % 1000 != 0) s++;
    fmt_utc(s, 0, out, cap);
}

static int list_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                      size_t errlen)
{
    (void)step;
    sb_preq_init(r, "GET", 1);
    if (sb_preq_url(r, c->base_url, "/v1/document/list") < 0 ||
        sb_preq_query_int(r, "Page", (long long)sb_jnum(a, "page", 1)) < 0 ||
        sb_preq_query_int(r, "PageSize", (long long)sb_jnum(a, "page_size", 20)) < 0)
        return too_large(err, errlen);
    const cJSON *st;
    const char *sent[16];
    size_t ns = 0;
    cJSON_ArrayForEach(st, sb_jget(a, "status"))
    {
        const char *b[2];
        size_t nb = cJSON_IsString(st) ? status_to_bs(st->valuestring, b) : 0;
        for (size_t k = 0; k < nb; k++) {
            int dup = 0;
            for (size_t i = 0; i < ns; i++)
                dup |= strcmp(sent[i], b[k]) == 0;
            if (!dup && ns < 16) {
                sent[ns++] = b[k];
                if (sb_preq_query(r, "Status", b[k]) < 0) return too_large(err, errlen);
            }
        }
    }
    const char *q = sb_jstr(a, "query");
    if (q && sb_preq_query(r, "SearchKey", q) < 0) return too_large(err, errlen);
    const char *after = sb_jstr(a, "created_after"), *before = sb_jstr(a, "created_before");
    if (after || before) {
        char start[40] = "1970-01-01T00:00:00Z", end[40] = "9999-12-31T23:59:59Z";
        if (after) date_arg(after, 0, start, sizeof start);
        if (before) date_arg(before, 1, end, sizeof end);
        if (sb_preq_query(r, "DateFilterType", "SentBetween") < 0 ||
            sb_preq_query(r, "StartDate", start) < 0 || sb_preq_query(r, "EndDate", end) < 0)
            return too_large(err, errlen);
    }
    return 0;
}


static int list_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                    cJSON **out, char *err, size_t errlen)
{
    (void)out;
    const cJSON *res = sb_jget(r->json, "result");
    const cJSON *pd = sb_jget(r->json, "pageDetails");
    if (!cJSON_IsArray(res))
        return fail(err, errlen, "BoldSign's document list has no \"result\" array");
    sb_jw w;
    sb_jw_init(&w, &step->json);
    sb_pjw_list_begin(&w, "documents");
    size_t dropped = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, res) write_document(&w, d, a, &dropped);
    long page, size;
    long long total;
    int has_next;
    page_of(a, pd, cJSON_GetArraySize(res), &page, &size, &total, &has_next);
    sb_pjw_list_end(&w, c, page, size, total, has_next);
    if (dropped)
        sb_jw_str(&w, "note",
                  "BoldSign has one status (InProgress) for both sent and in_progress, and none "
                  "for failed: signbridge filtered this page itself, so it may hold fewer than "
                  "page_size documents; keep paging until next_page is null.");
    sb_jw_close(&w, '}');
    if (sb_jw_finish(&w) != 0) return fail(err, errlen, "the document list is too large");
    return SB_PMAP_JSON;
}

/* ---- get_document / get_document_history / revoke_document ----------------------------------- */

static int props_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                       size_t errlen)
{
    (void)step;
    const char *id = id_arg(a, "document_id", err, errlen);
    if (!id) return -1;
    return get_by_id(c, r, "/v1/document/properties", "documentId", id, err, errlen);
}

static int get_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step, cJSON **out,
                   char *err, size_t errlen)
{
    (void)a;
    (void)out;
    return sb_pjw_document(c, step, write_document, r->json,
                           "BoldSign's document properties have no documentId", err, errlen);
}

/* BoldSign's audit actions in the neutral vocabulary; others become snake_case. */
static void event_action(const char *a, char *out, size_t cap)
{
    static const char *const map[][2] = {{"Recalled", "revoked"},
                                         {"Reminder", "reminded"},
                                         {"AutoReminder", "reminded"},
                                         {"EditRecipient", "signer_changed"},
                                         {"Reassigned", "reassigned"},
                                         {"ExpiryDateExtended", "expiry_extended"},
                                         {"MovedToTrash", "deleted"},
                                         {"GeneratedEmbeddedSignLink", "signing_link_created"},
                                         {"DownloadedAuditTrail", "audit_trail_downloaded"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i][0], a) == 0) {
            sb_strlcpy(out, map[i][1], cap);
            return;
        }
    size_t o = 0;
    for (const char *p = a; *p && o + 2 < cap; p++) {
        if (*p >= 'A' && *p <= 'Z') {
            if (o > 0 && !(p[-1] >= 'A' && p[-1] <= 'Z')) out[o++] = '_';
            out[o++] = (char)(*p - 'A' + 'a');
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

typedef struct hist_item {
    const cJSON *h;
    double ts;
    int idx;
} hist_item;

static int hist_cmp(const void *x, const void *y)
{
    const hist_item *a = x, *b = y;
    if (a->ts != b->ts) return a->ts < b->ts ? -1 : 1;
    return a->idx - b->idx;
}

static int history_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                       cJSON **out, char *err, size_t errlen)
{
    (void)step;
    if (!sb_jstr(r->json, "documentId"))
        return fail(err, errlen, "BoldSign's document properties have no documentId");
    const cJSON *hist = sb_jget(r->json, "documentHistory");
    int n = cJSON_IsArray(hist) ? cJSON_GetArraySize(hist) : 0;
    hist_item *items = n ? calloc((size_t)n, sizeof *items) : NULL;
    if (n && !items) return fail(err, errlen, "out of memory");
    int k = 0;
    const cJSON *h, *src = n ? hist : NULL;
    cJSON_ArrayForEach(h, src)
    {
        if (!cJSON_IsObject(h) || !sb_jstr(h, "action")) continue;
        items[k].h = h;
        items[k].ts = sb_jnum(h, "timestamp", 0);
        items[k].idx = k;
        k++;
    }
    if (k > 1) qsort(items, (size_t)k, sizeof *items, hist_cmp);
    cJSON *o = cJSON_CreateObject();
    sb_jput_str(o, "document_id", sb_jstr(a, "document_id"));
    cJSON *ev = sb_jput_arr(o, "events");
    for (int i = 0; i < k; i++) {
        const cJSON *x = items[i].h;
        char act[64];
        event_action(sb_jstr(x, "action"), act, sizeof act);
        cJSON *e = cJSON_CreateObject();
        sb_jadd_epoch(e, "time", items[i].ts);
        sb_jput_str(e, "action", act);
        sb_jadd_str(e, "actor_name", nonempty(sb_jstr(x, "name")));
        sb_jadd_str(e, "actor_email", nonempty(sb_jstr(x, "email")));
        sb_jadd_str(e, "target_email", nonempty(sb_jstr(x, "toEmail")));
        sb_jadd_str(e, "ip_address", nonempty(sb_jstr(x, "ipaddress")));
        cJSON_AddItemToArray(ev, e);
    }
    free(items);
    *out = with_where(c, o);
    return 0;
}

static int revoke_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                        size_t errlen)
{
    (void)step;
    const char *id = id_arg(a, "document_id", err, errlen);
    if (!id) return -1;
    if (action_req(c, r, "POST", "/v1/document/revoke", "documentId", id, err, errlen) < 0)
        return -1;
    cJSON *b = cJSON_CreateObject();
    sb_jput_str(b, "message", sb_jstr(a, "reason"));
    return json_body(r, b, err, errlen);
}

static int revoke_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                      cJSON **out, char *err, size_t errlen)
{
    (void)step;
    (void)r;
    (void)err;
    (void)errlen;
    cJSON *o = action_result(c, "BoldSign revoked the document; signers can no longer sign it.");
    sb_jput_str(o, "document_id", sb_jstr(a, "document_id"));
    sb_jput_str(o, "status", "revoked");
    *out = o;
    return 0;
}

/* ---- download_document ------------------------------------------------------------------- */

static int dl_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                    size_t errlen)
{
    (void)step;
    const char *id = id_arg(a, "document_id", err, errlen);
    if (!id) return -1;
    const char *kind = sb_jstr(a, "kind");
    int audit = kind && strcmp(kind, "audit_trail") == 0;
    if (get_by_id(c, r, audit ? "/v1/document/downloadAuditLog" : "/v1/document/download",
                  "documentId", id, err, errlen) < 0)
        return -1; /* err set */
    r->max_response = BS_MAX_FILE + ((size_t)1 << 20);
    return 0;
}

static int dl_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step, cJSON **out,
                  char *err, size_t errlen)
{
    const char *id = sb_jstr(a, "document_id"), *kind = sb_jstr(a, "kind");
    int audit = kind && strcmp(kind, "audit_trail") == 0;
    if (!r->body || r->len == 0) return fail(err, errlen, "BoldSign sent an empty file");
    if (r->json) return fail(err, errlen, "BoldSign sent JSON where the file was expected");
    /* a PDF; a ZIP when the document's download option is "Individually" */
    const char *mime = "application/octet-stream", *ext = "bin";
    if (r->len >= 5 && memcmp(r->body, "%PDF-", 5) == 0)
        mime = "application/pdf", ext = "pdf";
    else if (r->len >= 4 && memcmp(r->body, "PK\x03\x04", 4) == 0)
        mime = "application/zip", ext = "zip";
    step->blob = r->body;
    step->blob_len = r->len;
    sb_strlcpy(step->mime, mime, sizeof step->mime);
    snprintf(step->filename, sizeof step->filename, "%s%s.%s", id, audit ? "-audit-trail" : "",
             ext);
    cJSON *o = cJSON_CreateObject();
    sb_jput_str(o, "document_id", id);
    sb_jput_str(o, "kind", audit ? "audit_trail" : "document");
    sb_jput_str(o, "file_name", step->filename);
    sb_jput_str(o, "mime_type", mime);
    *out = with_where(c, o);
    return SB_PMAP_BLOB;
}

/* ---- get_signing_link -------------------------------------------------------------------- */

static int link_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                      size_t errlen)
{
    (void)step;
    const char *id = id_arg(a, "document_id", err, errlen);
    if (!id) return -1;
    const char *email = sb_jstr(a, "signer_email"), *redirect = sb_jstr(a, "redirect_url");
    if (!email) return fail(err, errlen, "signer_email is required");
    if (redirect && (strncasecmp(redirect, "https://", 8) != 0 || strlen(redirect) < 9 ||
                     strpbrk(redirect, " \"<>\\")))
        return fail(err, errlen, "redirect_url must be an https:// URL");
    if (get_by_id(c, r, "/v1/document/getEmbeddedSignLink", "DocumentId", id, err, errlen) < 0)
        return -1;
    if (sb_preq_query(r, "SignerEmail", email) < 0 ||
        (redirect && sb_preq_query(r, "RedirectUrl", redirect) < 0))
        return too_large(err, errlen);
    return 0;
}

static int link_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                    cJSON **out, char *err, size_t errlen)
{
    (void)step;
    const char *link = sb_jstr(r->json, "signLink");
    if (!link || strncmp(link, "http", 4) != 0)
        return fail(err, errlen, "BoldSign's answer has no signLink");
    cJSON *o = cJSON_CreateObject();
    sb_jput_str(o, "document_id", sb_jstr(a, "document_id"));
    sb_jput_str(o, "signer_email", sb_jstr(a, "signer_email"));
    sb_jput_str(o, "url", link);
    sb_jput_null(o, "expires_at"); /* BoldSign does not say, unless asked for one */
    *out = with_where(c, o);
    return 0;
}

/* ---- remind_signers / change_signer / extend_expiry -------------------------------------- */

static int remind_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                        size_t errlen)
{
    (void)step;
    const char *id = id_arg(a, "document_id", err, errlen);
    if (!id) return -1;
    if (action_req(c, r, "POST", "/v1/document/remind", "documentId", id, err, errlen) < 0)
        return -1;
    const cJSON *e;
    cJSON_ArrayForEach(e, sb_jget(a, "signer_emails"))
    {
        if (cJSON_IsString(e) && sb_preq_query(r, "receiverEmails", e->valuestring) < 0)
            return fail(err, errlen,
                        "signer_emails: too many addresses for one reminder; send several "
                        "reminders with fewer signer_emails");
    }
    cJSON *b = cJSON_CreateObject();
    const char *msg = sb_jstr(a, "message");
    if (msg) sb_jput_str(b, "message", msg);
    return json_body(r, b, err, errlen);
}

static int remind_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                      cJSON **out, char *err, size_t errlen)
{
    (void)step;
    (void)r;
    (void)err;
    (void)errlen;
    const cJSON *emails = sb_jget(a, "signer_emails");
    cJSON *o = action_result(c, emails ? "BoldSign sent a reminder to the signers named."
                                       : "BoldSign sent a reminder to the signers who have not "
                                         "signed yet.");
    sb_jput_str(o, "document_id", sb_jstr(a, "document_id"));
    if (cJSON_IsArray(emails)) cJSON_AddItemToObjectCS(o, "reminded", cJSON_Duplicate(emails, 1));
    *out = o;
    return 0;
}

static int change_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                        size_t errlen)
{
    (void)step;
    const char *id = id_arg(a, "document_id", err, errlen);
    if (!id) return -1;
    const char *reason = sb_jstr(a, "reason");
    if (action_req(c, r, "PATCH", "/v1/document/changeRecipient", "documentId", id, err, errlen) <
        0)
        return -1;
    cJSON *b = cJSON_CreateObject();
    sb_jput_str(b, "oldSignerEmail", sb_jstr(a, "old_email"));
    sb_jput_str(b, "newSignerName", sb_jstr(a, "new_name"));
    sb_jput_str(b, "newSignerEmail", sb_jstr(a, "new_email"));
    sb_jput_str(b, "reason", reason ? reason : BS_DEFAULT_REASON);
    return json_body(r, b, err, errlen);
}

static int change_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                      cJSON **out, char *err, size_t errlen)
{
    (void)step;
    (void)r;
    (void)err;
    (void)errlen;
    char msg[800];
    snprintf(msg, sizeof msg,
             "BoldSign replaced signer %.254s with %.200s <%.254s>; the new signer gets the "
             "signing email.",
             sb_jstr(a, "old_email"), sb_jstr(a, "new_name"), sb_jstr(a, "new_email"));
    cJSON *o = action_result(c, msg);
    sb_jput_str(o, "document_id", sb_jstr(a, "document_id"));
    cJSON *s = sb_jput_obj(o, "signer");
    sb_jput_str(s, "name", sb_jstr(a, "new_name"));
    sb_jput_str(s, "email", sb_jstr(a, "new_email"));
    sb_jput_str(s, "status", "pending");
    sb_jput_null(s, "provider_status");
    sb_jput_null(s, "order");
    sb_jput_null(s, "signed_at");
    sb_jput_null(s, "viewed_at");
    *out = o;
    return 0;
}

/* extend_expiry: read the document's expiry type (the new value's format depends on it), then
 * PATCH extendExpiry. */
static int extend_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                        size_t errlen)
{
    const char *id = id_arg(a, "document_id", err, errlen);
    if (!id) return -1;
    int64_t now = (int64_t)(sb_wall_ms() / 1000), target;
    const char *at = sb_jstr(a, "expires_at");
    if (at) {
        int64_t ms;
        if (sb_parse_rfc3339(at, &ms) < 0)
            return fail(err, errlen, "expires_at is not an RFC 3339 date-time");
        target = ms / 1000;
        if (target <= now + 60) return fail(err, errlen, "expires_at must be in the future");
    } else {
        double days = sb_jnum(a, "days", -1);
        if (days < 1) return fail(err, errlen, "give expires_at or days");
        target = now + (int64_t)days * 86400;
    }
    sb_jput_num(step->scratch, "target", (double)target);
    return get_by_id(c, r, "/v1/document/properties", "documentId", id, err, errlen);
}

static int extend_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                      cJSON **out, char *err, size_t errlen)
{
    const char *phase = sb_jstr(step->scratch, "phase");
    if (!phase) {
        /* the value's format (reference: "yyyy-MM-dd for days type, ISO date time for specific
         * date time and integer for hours type"); the integer is ASSUMED to count hours from now */
        if (!sb_jstr(r->json, "documentId"))
            return fail(err, errlen, "BoldSign's document properties have no documentId");
        const char *type = sb_jstr(r->json, "expiryDateType");
        int64_t target = (int64_t)sb_jnum(step->scratch, "target", 0);
        int64_t now = (int64_t)(sb_wall_ms() / 1000);
        char value[40], when[40], msg[300];
        int64_t effective;
        if (type && strcmp(type, "Hours") == 0) {
            int64_t h = (target - now + 3599) / 3600;
            if (h < 1) h = 1;
            snprintf(value, sizeof value, "%lld", (long long)h);
            effective = now + h * 3600;
            fmt_utc(effective, 0, when, sizeof when);
            snprintf(msg, sizeof msg,
                     "BoldSign extended the document by hours: it now expires in %lld hours "
                     "(%s).",
                     (long long)h, when);
        } else if (type && strcmp(type, "SpecificDateTime") == 0) {
            fmt_utc(target, 0, value, sizeof value);
            effective = target;
            snprintf(msg, sizeof msg, "BoldSign extended the document: it now expires at %s.",
                     value);
        } else {
            fmt_utc(target, 1, value, sizeof value);
            effective = target - target % 86400 + 86399; /* the end of that day */
            snprintf(msg, sizeof msg,
                     "BoldSign extended the document: it counts whole days, so it now expires at "
                     "the end of %s.",
                     value);
        }
        char iso[40];
        fmt_utc(effective, 0, iso, sizeof iso);
        sb_jput_str(step->scratch, "phase", "patch");
        sb_jput_str(step->scratch, "expires_at", iso);
        sb_jput_str(step->scratch, "message", msg);
        sb_preq *n = &step->next;
        sb_preq_init(n, "PATCH", 0);
        if (sb_preq_url(n, c->base_url, "/v1/document/extendExpiry") < 0 ||
            sb_preq_query(n, "documentId", sb_jstr(a, "document_id")) < 0)
            return fail(err, errlen, "the request is too large");
        cJSON *b = cJSON_CreateObject();
        sb_jput_str(b, "newExpiryValue", value);
        if (sb_preq_json(n, b) < 0) return fail(err, errlen, "out of memory");
        return SB_PMAP_NEXT;
    }
    cJSON *o = action_result(c, sb_jstr(step->scratch, "message"));
    sb_jput_str(o, "document_id", sb_jstr(a, "document_id"));
    sb_jadd_str(o, "expires_at", sb_jstr(step->scratch, "expires_at"));
    *out = o;
    return 0;
}

/* ---- sending: send_document / send_from_template ----------------------------------------- */

static int b64_canonical(const char *s, size_t n)
{
    if (n % 4) return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '+' || ch == '/' || ch == '='))
            return 0;
    }
    return 1;
}

/* The base64 payload of a files[i].base64 argument (a data: URI's prefix skipped). */
static const char *b64_payload(const char *b64)
{
    if (strncmp(b64, "data:", 5) == 0) {
        const char *comma = strchr(b64, ',');
        return comma ? comma + 1 : b64;
    }
    return b64;
}

/* Check one base64 file: decodes, at most 25 MB, a type BoldSign takes. Sets *mime and *b64len
 * (the length of its canonical base64). */
static int check_b64_file(const char *b64, int i, const char **mime, size_t *b64len, char *err,
                          size_t errlen)
{
    char e2[160];
    size_t len;
    unsigned char *d = sb_decode_base64_arg(b64, BS_MAX_FILE, &len, e2, sizeof e2);
    if (!d) return fail(err, errlen, "files[%d].base64: %s (BoldSign's limit is 25 MB)", i, e2);
    *mime = sb_sniff_mime(d, len);
    free(d);
    if (!*mime)
        return fail(err, errlen,
                    "files[%d].base64 is not a PDF, DOCX, PNG or JPEG file (the types BoldSign "
                    "takes)",
                    i);
    *b64len = sb_base64_len(len);
    return 0;
}

/* Append "data:<mime>;base64,<payload>" for a base64 argument to the body. */
static int put_b64_file(sb_buf *body, const char *b64, char *err, size_t errlen)
{
    const char *p = b64_payload(b64);
    size_t n = strlen(p);
    char e2[160];
    size_t len;
    unsigned char *d = sb_decode_base64_arg(b64, BS_MAX_FILE, &len, e2, sizeof e2);
    if (!d) return fail(err, errlen, "a file: %s", e2);
    const char *mime = sb_sniff_mime(d, len);
    int rc = sb_buf_printf(body, "\"data:%s;base64,", mime ? mime : "application/pdf");
    if (rc == 0 && b64_canonical(p, n)) {
        rc = sb_buf_append(body, p, n);
    } else if (rc == 0) {
        char *enc = malloc(sb_base64_len(len) + 1);
        if (!enc) rc = -1;
        if (enc) {
            size_t el = sb_base64_encode(d, len, enc);
            rc = sb_buf_append(body, enc, el);
            free(enc);
        }
    }
    free(d);
    if (rc == 0) rc = sb_buf_puts(body, "\"");
    return rc < 0 ? fail(err, errlen, "the files are too large for one request") : 0;
}

/* Write the send body: `base` (taken; every option but the files) plus "files" as data URIs in
 * the order of the files argument: base64 arguments, and for URL files the data URIs signbridge
 * made of what it fetched (`fetched`: an array of data URI strings or nulls). */
static int write_send_body(sb_preq *r, cJSON *base, const cJSON *files, const cJSON *fetched,
                           char *err, size_t errlen)
{
    char *head = cJSON_PrintUnformatted(base);
    cJSON_Delete(base);
    if (!head) return fail(err, errlen, "out of memory");
    size_t hl = strlen(head);
    sb_buf_reset(&r->body);
    int rc = hl >= 2 ? sb_buf_append(&r->body, head, hl - 1) : -1; /* without the closing brace */
    free(head);
    if (rc == 0) rc = sb_buf_puts(&r->body, hl > 2 ? ",\"files\":[" : "\"files\":[");
    int i = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, files)
    {
        if (rc != 0) break;
        if (i > 0) rc = sb_buf_puts(&r->body, ",");
        const char *b64 = sb_jstr(f, "base64");
        const cJSON *got = cJSON_GetArrayItem(fetched, i);
        if (rc == 0 && b64) {
            if (put_b64_file(&r->body, b64, err, errlen) < 0) return -1;
        } else if (rc == 0 && cJSON_IsString(got)) {
            rc = sb_buf_puts(&r->body, "\"");
            if (rc == 0) rc = sb_buf_puts(&r->body, got->valuestring);
            if (rc == 0) rc = sb_buf_puts(&r->body, "\"");
        } else if (rc == 0) {
            return fail(err, errlen, "files[%d] was not fetched", i);
        }
        i++;
    }
    if (rc == 0) rc = sb_buf_puts(&r->body, "]}");
    if (rc == 0) rc = sb_preq_header(r, "Content-Type: application/json");
    return rc < 0 ? fail(err, errlen, "the files are too large for one BoldSign request") : 0;
}

static int url_ok(const char *u)
{
    if (!u || strncasecmp(u, "https://", 8) != 0 || !u[8] || u[8] == '/') return 0;
    for (const unsigned char *p = (const unsigned char *)u; *p; p++)
        if (*p <= ' ' || *p == '"' || *p == '<' || *p == '>' || *p == '\\' || *p == 0x7f) return 0;
    return 1;
}

static int test_mode_refused(const cJSON *a, char *err, size_t errlen)
{
    if (!sb_jbool(a, "test_mode", 0)) return 0;
    return fail(err, errlen,
                "test_mode: BoldSign has no per-document test mode. Connect with a BoldSign "
                "sandbox API key instead (everything it sends is a watermarked test document), "
                "or leave test_mode out");
}

/* The options both sends share: title, message, cc, expiry. */
static void common_send_fields(const cJSON *a, cJSON *b)
{
    const char *title = sb_jstr(a, "title"), *msg = sb_jstr(a, "message");
    if (title) sb_jput_str(b, "title", title);
    if (msg) sb_jput_str(b, "message", msg);
    const cJSON *cc = sb_jget(a, "cc");
    if (cJSON_GetArraySize(cc) > 0) {
        cJSON *arr = sb_jput_arr(b, "cc");
        const cJSON *e;
        cJSON_ArrayForEach(e, cc)
        {
            if (!cJSON_IsString(e)) continue;
            cJSON *x = cJSON_CreateObject();
            sb_jput_str(x, "emailAddress", e->valuestring);
            cJSON_AddItemToArray(arr, x);
        }
    }
    double days = sb_jnum(a, "expires_in_days", -1);
    if (days >= 1) {
        sb_jput_str(b, "expiryDateType", "Days");
        sb_jput_num(b, "expiryValue", days);
    }
}

/* signers -> BoldSign DocumentSigner[]: name, emailAddress, signerType, signerOrder,
 * authenticationType (+ authenticationCode / phoneNumber). */
static int signers_json(const cJSON *a, cJSON *arr, char *err, size_t errlen)
{
    int ordered = sb_jbool(a, "signing_order", 0);
    int i = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, sb_jget(a, "signers"))
    {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, x);
        sb_jput_str(x, "name", sb_jstr(s, "name"));
        sb_jput_str(x, "emailAddress", sb_jstr(s, "email"));
        sb_jput_str(x, "signerType", "Signer");
        double order = sb_jnum(s, "order", -1);
        if (order >= 1)
            sb_jput_num(x, "signerOrder", order);
        else if (ordered)
            sb_jput_num(x, "signerOrder", i + 1);
        const cJSON *au = sb_jget(s, "authentication");
        const char *type = sb_jstr(au, "type");
        const char *code = sb_jstr(au, "access_code"), *phone = sb_jstr(au, "phone");
        if (!type) type = "none";
        if (code && strcmp(type, "access_code") != 0)
            return fail(err, errlen,
                        "signers[%d].authentication.access_code goes only with type access_code",
                        i);
        if (phone && strcmp(type, "sms_otp") != 0)
            return fail(err, errlen, "signers[%d].authentication.phone goes only with type sms_otp",
                        i);
        if (strcmp(type, "access_code") == 0) {
            if (!code)
                return fail(err, errlen,
                            "signers[%d].authentication.access_code is required with type "
                            "access_code",
                            i);
            sb_jput_str(x, "authenticationType", "AccessCode");
            sb_jput_str(x, "authenticationCode", code);
        } else if (strcmp(type, "email_otp") == 0) {
            sb_jput_str(x, "authenticationType", "EmailOTP");
        } else if (strcmp(type, "sms_otp") == 0) {
            char cc[8], num[24], field[64];
            snprintf(field, sizeof field, "signers[%d].authentication.phone", i);
            if (!phone) return fail(err, errlen, "%s is required with type sms_otp", field);
            if (parse_phone(phone, field, cc, sizeof cc, num, sizeof num, err, errlen) < 0)
                return -1;
            sb_jput_str(x, "authenticationType", "SMSOTP");
            cJSON_AddItemToObjectCS(x, "phoneNumber", phone_json(cc, num));
        } else {
            sb_jput_str(x, "authenticationType", "None");
        }
        i++;
    }
    return 0;
}

static int send_result(const sb_pctx *c, const cJSON *a, const sb_presp *r, cJSON **out, char *err,
                       size_t errlen)
{
    const char *id = sb_jstr(r->json, "documentId");
    if (!id) return fail(err, errlen, "BoldSign's answer has no documentId");
    char msg[400];
    snprintf(msg, sizeof msg,
             "BoldSign accepted the document and is sending it to %d signer(s). It may take a "
             "few seconds before get_document can see it.",
             cJSON_GetArraySize(sb_jget(a, "signers")));
    cJSON *o = action_result(c, msg);
    sb_jput_str(o, "document_id", id);
    sb_jput_str(o, "status", "sent");
    *out = o;
    return 0;
}

/* A request fetching files[idx].url without the caller's credential. */
static int fetch_req(sb_preq *n, cJSON *scratch, const cJSON *files, int idx)
{
    const char *url = sb_jstr(cJSON_GetArrayItem(files, idx), "url");
    sb_preq_init(n, "GET", 1);
    n->no_auth = 1;
    n->max_response = BS_MAX_FILE;
    cJSON_ReplaceItemInObjectCaseSensitive(scratch, "idx", cJSON_CreateNumber(idx));
    return url ? sb_preq_url(n, url, "") : -1;
}

static int next_url(const cJSON *files, int from)
{
    for (int i = from; i < cJSON_GetArraySize(files); i++)
        if (sb_jstr(cJSON_GetArrayItem(files, i), "url")) return i;
    return -1;
}

static int send_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                      size_t errlen)
{
    if (test_mode_refused(a, err, errlen) < 0) return -1;
    const cJSON *files = sb_jget(a, "files");
    int nurl = 0, nb64 = 0, i = 0;
    size_t total = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, files)
    {
        const char *url = sb_jstr(f, "url"), *b64 = sb_jstr(f, "base64");
        if (url && b64) return fail(err, errlen, "files[%d]: give url or base64, not both", i);
        if (url) {
            if (!url_ok(url))
                return fail(err, errlen,
                            "files[%d].url must be an https:// URL that BoldSign can download", i);
            nurl++;
        } else if (b64) {
            const char *mime = NULL;
            size_t bl = 0;
            if (check_b64_file(b64, i, &mime, &bl, err, errlen) < 0) return -1;
            total += bl + 100;
            nb64++;
        } else {
            return fail(err, errlen, "files[%d] needs url or base64 (with name)", i);
        }
        i++;
    }
    if (i == 0) return fail(err, errlen, "files: give at least one file");
    if (total > BS_MAX_B64_TOTAL)
        return fail(err, errlen,
                    "files: together the files are too large for one BoldSign request (at most "
                    "%zu MB of files)",
                    BS_MAX_B64_TOTAL / 4 * 3 >> 20);
    cJSON *base = cJSON_CreateObject();
    common_send_fields(a, base);
    sb_jput_bool(base, "enableSigningOrder", sb_jbool(a, "signing_order", 0));
    if (signers_json(a, sb_jput_arr(base, "signers"), err, errlen) < 0) {
        cJSON_Delete(base);
        return -1;
    }
    if (nb64 == 0) {
        /* URLs only: BoldSign downloads them itself */
        cJSON *urls = sb_jput_arr(base, "fileUrls");
        cJSON_ArrayForEach(f, files)
        {
            cJSON_AddItemToArray(urls, cJSON_CreateString(sb_jstr(f, "url")));
        }
        sb_preq_init(r, "POST", 0);
        if (sb_preq_url(r, c->base_url, "/v1/document/send") < 0) {
            cJSON_Delete(base);
            return too_large(err, errlen);
        }
        return json_body(r, base, err, errlen);
    }
    if (nurl == 0) {
        sb_preq_init(r, "POST", 0);
        if (sb_preq_url(r, c->base_url, "/v1/document/send") < 0) {
            cJSON_Delete(base);
            return too_large(err, errlen);
        }
        return write_send_body(r, base, files, NULL, err, errlen);
    }
    /* BoldSign takes files or fileUrls, not both: signbridge fetches the URL files itself
     * (without the caller's credential) and sends everything as data URIs */
    sb_jput_str(step->scratch, "phase", "fetch");
    sb_jput_num(step->scratch, "idx", 0);
    sb_jput_num(step->scratch, "total", (double)total);
    cJSON *fetched = sb_jput_arr(step->scratch, "fetched");
    for (int k = 0; k < i; k++)
        cJSON_AddItemToArray(fetched, cJSON_CreateNull());
    cJSON_AddItemToObjectCS(step->scratch, "base", base);
    if (fetch_req(r, step->scratch, files, next_url(files, 0)) < 0)
        return fail(err, errlen, "a file URL is too long");
    return 0;
}

static int send_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                    cJSON **out, char *err, size_t errlen)
{
    const char *phase = sb_jstr(step->scratch, "phase");
    if (!phase || strcmp(phase, "fetch") != 0) return send_result(c, a, r, out, err, errlen);
    const cJSON *files = sb_jget(a, "files");
    int idx = (int)sb_jnum(step->scratch, "idx", -1);
    const char *mime = r->body ? sb_sniff_mime((const unsigned char *)r->body, r->len) : NULL;
    if (!mime) {
        fail(err, errlen,
             "Nothing was sent to BoldSign: files[%d].url did not give a PDF, DOCX, PNG or JPEG "
             "file. Check the URL, or send the file as base64.",
             idx);
        return SB_PMAP_FAIL;
    }
    if (r->len > BS_MAX_FILE) {
        fail(err, errlen,
             "Nothing was sent to BoldSign: files[%d].url gave a file larger than 25 MB "
             "(BoldSign's limit).",
             idx);
        return SB_PMAP_FAIL;
    }
    double total = sb_jnum(step->scratch, "total", 0) + (double)sb_base64_len(r->len) + 100;
    if (total > (double)BS_MAX_B64_TOTAL) {
        fail(err, errlen,
             "Nothing was sent to BoldSign: together the files are too large for one request "
             "(about %zu MB at most). Send fewer or smaller files.",
             BS_MAX_B64_TOTAL / 4 * 3 >> 20);
        return SB_PMAP_FAIL;
    }
    cJSON_ReplaceItemInObjectCaseSensitive(step->scratch, "total", cJSON_CreateNumber(total));
    size_t cap = strlen(mime) + sb_base64_len(r->len) + 20;
    char *uri = malloc(cap);
    if (!uri) return fail(err, errlen, "out of memory");
    int pre = snprintf(uri, cap, "data:%s;base64,", mime);
    sb_base64_encode((const unsigned char *)r->body, r->len, uri + pre);
    cJSON *fetched = cJSON_GetObjectItemCaseSensitive(step->scratch, "fetched");
    cJSON_ReplaceItemInArray(fetched, idx, cJSON_CreateString(uri));
    free(uri);
    int nxt = next_url(files, idx + 1);
    if (nxt >= 0) {
        if (fetch_req(&step->next, step->scratch, files, nxt) < 0)
            return fail(err, errlen, "a file URL is too long");
        return SB_PMAP_NEXT;
    }
    cJSON_ReplaceItemInObjectCaseSensitive(step->scratch, "phase", cJSON_CreateString("send"));
    cJSON *base = cJSON_DetachItemFromObjectCaseSensitive(step->scratch, "base");
    sb_preq *n = &step->next;
    sb_preq_init(n, "POST", 0);
    if (!base || sb_preq_url(n, c->base_url, "/v1/document/send") < 0) {
        cJSON_Delete(base);
        return fail(err, errlen, "out of memory");
    }
    if (write_send_body(n, base, files, fetched, err, errlen) < 0) return -1;
    return SB_PMAP_NEXT;
}

/* send_from_template: read the template (role names -> roleIndex, field names -> the role that
 * owns them), then POST template/send. */
static int tsend_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                       size_t errlen)
{
    (void)step;
    if (test_mode_refused(a, err, errlen) < 0) return -1;
    const char *id = id_arg(a, "template_id", err, errlen);
    if (!id) return -1;
    return get_by_id(c, r, "/v1/template/properties", "templateId", id, err, errlen);
}

/* Index of the role named `name` (exact, else the only case-insensitive match), or -1. */
static int find_role(const cJSON *roles, const char *name)
{
    int i = 0, ci = -1, nci = 0;
    const cJSON *ro;
    cJSON_ArrayForEach(ro, roles)
    {
        const char *n = sb_jstr(ro, "name");
        if (n && strcmp(n, name) == 0) return i;
        if (n && strcasecmp(n, name) == 0) ci = i, nci++;
        i++;
    }
    return nci == 1 ? ci : -1;
}

/* The role owning the form field `name` (by id, exact then case-insensitive), or -1; *fid gets
 * the field's own id. */
static int find_field(const cJSON *roles, const char *name, const char **fid)
{
    for (int pass = 0; pass < 2; pass++) {
        int i = 0;
        const cJSON *ro;
        cJSON_ArrayForEach(ro, roles)
        {
            const cJSON *ff;
            cJSON_ArrayForEach(ff, sb_jget(ro, "formFields"))
            {
                const char *id = sb_jstr(ff, "id");
                if (id && (pass ? strcasecmp(id, name) : strcmp(id, name)) == 0) {
                    *fid = id;
                    return i;
                }
            }
            i++;
        }
    }
    return -1;
}

static void role_names(const cJSON *roles, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    const cJSON *ro;
    cJSON_ArrayForEach(ro, roles)
    {
        const char *n = sb_jstr(ro, "name");
        int w = snprintf(out + o, cap - o, "%s\"%s\"", o ? ", " : "", n ? n : "");
        if (w < 0 || (size_t)w >= cap - o) break;
        o += (size_t)w;
    }
}

#define BS_MAX_ROLES 50

static int tsend_roles(const cJSON *a, const cJSON *roles, cJSON *body, char *err, size_t errlen)
{
    cJSON *ent[BS_MAX_ROLES] = {0};
    int nroles = cJSON_GetArraySize(roles), rc = -1;
    char names[600];
    role_names(roles, names, sizeof names);
    if (nroles > BS_MAX_ROLES) return fail(err, errlen, "the template has too many roles");
    int i = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, sb_jget(a, "signers"))
    {
        const char *role = sb_jstr(s, "role");
        int k = role ? find_role(roles, role) : -1;
        if (k < 0) {
            fail(err, errlen,
                 "Nothing was sent: signers[%d].role \"%.100s\" is not a role of this template. "
                 "Its roles (see get_template): %s.",
                 i, role ? role : "", names);
            rc = SB_PMAP_FAIL;
            goto out;
        }
        if (ent[k]) {
            fail(err, errlen,
                 "Nothing was sent: signers[%d].role \"%.100s\" is given twice; give each role "
                 "one signer.",
                 i, role);
            rc = SB_PMAP_FAIL;
            goto out;
        }
        const cJSON *ro = cJSON_GetArrayItem(roles, k);
        ent[k] = cJSON_CreateObject();
        sb_jput_num(ent[k], "roleIndex", sb_jnum(ro, "index", k + 1));
        sb_jput_str(ent[k], "signerName", sb_jstr(s, "name"));
        sb_jput_str(ent[k], "signerEmail", sb_jstr(s, "email"));
        i++;
    }
    i = 0;
    cJSON_ArrayForEach(s, sb_jget(a, "prefill"))
    {
        const char *name = sb_jstr(s, "field"), *fid = NULL;
        int k = name ? find_field(roles, name, &fid) : -1;
        if (k < 0) {
            fail(err, errlen,
                 "Nothing was sent: prefill[%d].field \"%.100s\" is not a field of this "
                 "template's roles. Use a field name that get_template lists.",
                 i, name ? name : "");
            rc = SB_PMAP_FAIL;
            goto out;
        }
        const cJSON *ro = cJSON_GetArrayItem(roles, k);
        if (!ent[k]) {
            /* a role left to its default signer */
            const char *dn = nonempty(sb_jstr(ro, "defaultSignerName"));
            const char *de = nonempty(sb_jstr(ro, "defaultSignerEmail"));
            if (!dn || !de) {
                fail(err, errlen,
                     "Nothing was sent: prefill[%d].field \"%.80s\" belongs to the role "
                     "\"%.80s\", which has no signer in this call and no default signer. Give "
                     "that role a signer.",
                     i, name, sb_jstr(ro, "name") ? sb_jstr(ro, "name") : "");
                rc = SB_PMAP_FAIL;
                goto out;
            }
            ent[k] = cJSON_CreateObject();
            sb_jput_num(ent[k], "roleIndex", sb_jnum(ro, "index", k + 1));
            sb_jput_str(ent[k], "signerName", dn);
            sb_jput_str(ent[k], "signerEmail", de);
        }
        cJSON *ex = cJSON_GetObjectItemCaseSensitive(ent[k], "existingFormFields");
        if (!ex) ex = sb_jput_arr(ent[k], "existingFormFields");
        cJSON *x = cJSON_CreateObject();
        sb_jput_str(x, "id", fid);
        sb_jput_str(x, "value", sb_jstr(s, "value"));
        cJSON_AddItemToArray(ex, x);
        i++;
    }
    cJSON *arr = sb_jput_arr(body, "roles");
    for (int k = 0; k < nroles; k++)
        if (ent[k]) {
            cJSON_AddItemToArray(arr, ent[k]);
            ent[k] = NULL;
        }
    rc = 0;
out:
    for (int k = 0; k < BS_MAX_ROLES; k++)
        cJSON_Delete(ent[k]);
    return rc;
}

static int tsend_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                     cJSON **out, char *err, size_t errlen)
{
    if (sb_jstr(step->scratch, "phase")) return send_result(c, a, r, out, err, errlen);
    const cJSON *roles = sb_jget(r->json, "roles");
    if (!sb_jstr(r->json, "templateId") || !cJSON_IsArray(roles))
        return fail(err, errlen, "BoldSign's template properties have no templateId or roles");
    cJSON *body = cJSON_CreateObject();
    common_send_fields(a, body);
    int rc = tsend_roles(a, roles, body, err, errlen);
    if (rc < 0) {
        cJSON_Delete(body);
        return rc;
    }
    sb_jput_str(step->scratch, "phase", "send");
    sb_preq *n = &step->next;
    sb_preq_init(n, "POST", 0);
    if (sb_preq_url(n, c->base_url, "/v1/template/send") < 0 ||
        sb_preq_query(n, "templateId", sb_jstr(a, "template_id")) < 0) {
        cJSON_Delete(body);
        return fail(err, errlen, "out of memory");
    }
    if (sb_preq_json(n, body) < 0) return fail(err, errlen, "out of memory");
    return SB_PMAP_NEXT;
}

/* ---- templates ------------------------------------------------------------------------------ */

static const char *role_kind(const char *signer_type)
{
    return signer_type && strcmp(signer_type, "Reviewer") == 0 ? "reviewer" : "signer";
}

static cJSON *map_role(const char *name, double order, const char *dn, const char *de,
                       const char *stype)
{
    cJSON *x = cJSON_CreateObject();
    sb_jput_str(x, "name", name ? name : "");
    sb_jadd_int_or_null(x, "order", order >= 1 ? order : -1);
    sb_jadd_str(x, "default_name", nonempty(dn));
    sb_jadd_str(x, "default_email", nonempty(de));
    sb_jput_str(x, "kind", role_kind(stype));
    return x;
}

static void add_person(cJSON *o, const char *key, const cJSON *p)
{
    cJSON *x = cJSON_AddObjectToObject(o, key);
    sb_jadd_str(x, "name", sb_jstr(p, "name"));
    sb_jadd_str(x, "email", sb_jstr(p, "emailAddress"));
}

/* A template of template/list (its id is in documentId). */
static cJSON *map_tpl_item(const cJSON *t)
{
    const char *id = sb_jstr(t, "documentId");
    if (!id) return NULL;
    cJSON *o = cJSON_CreateObject();
    sb_jput_str(o, "id", id);
    const char *title = sb_jstr(t, "templateName");
    sb_jadd_str(o, "title", title ? title : sb_jstr(t, "messageTitle"));
    sb_jadd_str(o, "description", sb_jstr(t, "templateDescription"));
    cJSON *roles = sb_jput_arr(o, "roles");
    const cJSON *s;
    cJSON_ArrayForEach(s, sb_jget(t, "signerDetails"))
    {
        cJSON_AddItemToArray(roles, map_role(sb_jstr(s, "signerRole"), sb_jnum(s, "order", -1),
                                             sb_jstr(s, "signerName"), sb_jstr(s, "signerEmail"),
                                             sb_jstr(s, "signerType")));
    }
    sb_jadd_epoch(o, "created_at", sb_jnum(t, "createdDate", -1));
    sb_jadd_epoch(o, "updated_at", sb_jnum(t, "activityDate", -1));
    add_person(o, "owner", sb_jget(t, "senderDetail"));
    return o;
}

static void add_field(cJSON *arr, const cJSON *ff, const char *role)
{
    const char *id = sb_jstr(ff, "id");
    if (!id) return;
    cJSON *x = cJSON_CreateObject();
    sb_jput_str(x, "name", id);
    const char *type = sb_jstr(ff, "type");
    sb_jadd_str(x, "type", type ? type : sb_jstr(ff, "fieldType"));
    sb_jadd_str(x, "role", role);
    const cJSON *req = sb_jget(ff, "isRequired");
    if (cJSON_IsBool(req))
        sb_jput_bool(x, "required", cJSON_IsTrue(req));
    else
        sb_jput_null(x, "required");
    cJSON_AddItemToArray(arr, x);
}

/* TemplateProperties: roles with their fields. */
static cJSON *map_tpl_props(const cJSON *t)
{
    const char *id = sb_jstr(t, "templateId");
    if (!id) return NULL;
    cJSON *o = cJSON_CreateObject();
    sb_jput_str(o, "id", id);
    sb_jadd_str(o, "title", sb_jstr(t, "title"));
    sb_jadd_str(o, "description", sb_jstr(t, "description"));
    cJSON *roles = sb_jput_arr(o, "roles");
    cJSON *fields = sb_jput_arr(o, "fields");
    const cJSON *ro, *ff;
    cJSON_ArrayForEach(ro, sb_jget(t, "roles"))
    {
        const char *name = sb_jstr(ro, "name");
        cJSON_AddItemToArray(
            roles, map_role(name, sb_jnum(ro, "signerOrder", -1), sb_jstr(ro, "defaultSignerName"),
                            sb_jstr(ro, "defaultSignerEmail"), sb_jstr(ro, "signerType")));
        cJSON_ArrayForEach(ff, sb_jget(ro, "formFields"))
        {
            add_field(fields, ff, name);
        }
    }
    cJSON_ArrayForEach(ff, sb_jget(t, "commonFields"))
    {
        add_field(fields, ff, NULL);
    }
    sb_jadd_epoch(o, "created_at", sb_jnum(t, "createdDate", -1));
    sb_jput_null(o, "updated_at");
    add_person(o, "owner", sb_jget(t, "createdBy"));
    return o;
}

static int tlist_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                       size_t errlen)
{
    (void)step;
    return list_req(c, r, "/v1/template/list", a, "SearchKey", "TemplateType", "all", err, errlen);
}

static int tlist_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                     cJSON **out, char *err, size_t errlen)
{
    (void)step;
    const cJSON *res = sb_jget(r->json, "result");
    if (!cJSON_IsArray(res))
        return fail(err, errlen, "BoldSign's template list has no \"result\" array");
    cJSON *items = cJSON_CreateArray();
    const cJSON *t;
    cJSON_ArrayForEach(t, res)
    {
        cJSON *m = map_tpl_item(t);
        if (m) cJSON_AddItemToArray(items, m);
    }
    *out =
        list_out(c, a, "templates", items, sb_jget(r->json, "pageDetails"),
                 cJSON_GetArraySize(res));
    return 0;
}

static int tget_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                      size_t errlen)
{
    (void)step;
    const char *id = id_arg(a, "template_id", err, errlen);
    return id ? get_by_id(c, r, "/v1/template/properties", "templateId", id, err, errlen) : -1;
}

static int tget_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                    cJSON **out, char *err, size_t errlen)
{
    (void)step;
    (void)a;
    cJSON *t = map_tpl_props(r->json);
    if (!t) return fail(err, errlen, "BoldSign's template properties have no templateId");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObjectCS(o, "template", t);
    *out = with_where(c, o);
    return 0;
}

/* ---- contacts ------------------------------------------------------------------------------- */

static cJSON *map_contact(const cJSON *x)
{
    const char *id = sb_jstr(x, "id");
    if (!id) return NULL;
    char ph[64];
    phone_str(sb_jget(x, "phoneNumber"), ph, sizeof ph);
    cJSON *o = cJSON_CreateObject();
    sb_jput_str(o, "id", id);
    sb_jadd_str(o, "name", sb_jstr(x, "name"));
    sb_jadd_str(o, "email", sb_jstr(x, "email"));
    sb_jadd_str(o, "phone", nonempty(ph));
    sb_jadd_str(o, "company", nonempty(sb_jstr(x, "companyName")));
    sb_jadd_str(o, "job_title", nonempty(sb_jstr(x, "jobTitle")));
    return o;
}

static int clist_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                       size_t errlen)
{
    (void)step;
    return list_req(c, r, "/v1/contacts/list", a, "SearchKey", "ContactType", "AllContacts", err,
                    errlen);
}

static int clist_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                     cJSON **out, char *err, size_t errlen)
{
    (void)step;
    const cJSON *res = sb_jget(r->json, "result");
    if (!cJSON_IsArray(res))
        return fail(err, errlen, "BoldSign's contact list has no \"result\" array");
    cJSON *items = cJSON_CreateArray();
    const cJSON *x;
    cJSON_ArrayForEach(x, res)
    {
        cJSON *m = map_contact(x);
        if (m) cJSON_AddItemToArray(items, m);
    }
    *out =
        list_out(c, a, "contacts", items, sb_jget(r->json, "pageDetails"),
                 cJSON_GetArraySize(res));
    return 0;
}

static int cget_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                      size_t errlen)
{
    (void)step;
    const char *id = id_arg(a, "contact_id", err, errlen);
    return id ? get_by_id(c, r, "/v1/contacts/get", "id", id, err, errlen) : -1;
}

static int cget_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                    cJSON **out, char *err, size_t errlen)
{
    (void)step;
    (void)a;
    cJSON *x = map_contact(r->json);
    if (!x) return fail(err, errlen, "BoldSign's contact has no id");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObjectCS(o, "contact", x);
    *out = with_where(c, o);
    return 0;
}

/* The phone argument as BoldSign's PhoneNumber, NULL when absent, or -1 with err. */
static int phone_arg(const cJSON *a, cJSON **out, char *err, size_t errlen)
{
    *out = NULL;
    const char *p = sb_jstr(a, "phone");
    if (!p) return 0;
    char cc[8], num[24];
    if (parse_phone(p, "phone", cc, sizeof cc, num, sizeof num, err, errlen) < 0) return -1;
    *out = phone_json(cc, num);
    return 0;
}

static int ccreate_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                         size_t errlen)
{
    (void)step;
    cJSON *phone;
    if (phone_arg(a, &phone, err, errlen) < 0) return -1;
    cJSON *body = cJSON_CreateArray();
    cJSON *x = cJSON_CreateObject();
    cJSON_AddItemToArray(body, x);
    sb_jput_str(x, "name", sb_jstr(a, "name"));
    sb_jput_str(x, "email", sb_jstr(a, "email"));
    if (phone) cJSON_AddItemToObjectCS(x, "phoneNumber", phone);
    const char *co = sb_jstr(a, "company"), *jt = sb_jstr(a, "job_title");
    if (co) sb_jput_str(x, "companyName", co);
    if (jt) sb_jput_str(x, "jobTitle", jt);
    sb_preq_init(r, "POST", 0);
    if (sb_preq_url(r, c->base_url, "/v1/contacts/create") < 0) {
        cJSON_Delete(body);
        return too_large(err, errlen);
    }
    return json_body(r, body, err, errlen);
}

static int ccreate_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                       cJSON **out, char *err, size_t errlen)
{
    (void)step;
    const cJSON *made =
        cJSON_GetArrayItem(sb_jget(r->json, "createdContacts"), 0);
    const char *id = sb_jstr(made, "id");
    if (!id) return fail(err, errlen, "BoldSign's answer has no createdContacts[0].id");
    cJSON *x = cJSON_CreateObject();
    sb_jput_str(x, "id", id);
    sb_jput_str(x, "name", sb_jstr(a, "name"));
    sb_jput_str(x, "email", sb_jstr(a, "email"));
    cJSON *ph = NULL;
    char e2[8];
    if (phone_arg(a, &ph, e2, sizeof e2) == 0 && ph) cJSON_AddItemToObjectCS(x, "phoneNumber", ph);
    const char *co = sb_jstr(a, "company"), *jt = sb_jstr(a, "job_title");
    if (co) sb_jput_str(x, "companyName", co);
    if (jt) sb_jput_str(x, "jobTitle", jt);
    cJSON *m = map_contact(x);
    cJSON_Delete(x);
    cJSON *o = action_result(c, "BoldSign saved the contact.");
    cJSON_AddItemToObjectCS(o, "contact", m);
    *out = o;
    return 0;
}

/* update_contact: read the contact, then PUT it whole with the fields given replaced (BoldSign's
 * update takes the complete ContactDetails). */
static int cupdate_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                         size_t errlen)
{
    (void)step;
    const char *id = id_arg(a, "contact_id", err, errlen);
    if (!id) return -1;
    cJSON *phone;
    if (phone_arg(a, &phone, err, errlen) < 0) return -1;
    cJSON_Delete(phone);
    return get_by_id(c, r, "/v1/contacts/get", "id", id, err, errlen);
}

static int cupdate_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                       cJSON **out, char *err, size_t errlen)
{
    if (sb_jstr(step->scratch, "phase")) {
        cJSON *o = action_result(c, "BoldSign updated the contact.");
        cJSON_AddItemToObjectCS(o, "contact",
                              cJSON_DetachItemFromObjectCaseSensitive(step->scratch, "contact"));
        *out = o;
        return 0;
    }
    const cJSON *cur = r->json;
    if (!sb_jstr(cur, "id")) return fail(err, errlen, "BoldSign's contact has no id");
    cJSON *b = cJSON_CreateObject();
    const char *v = sb_jstr(a, "name");
    if (!v) v = sb_jstr(cur, "name");
    sb_jput_str(b, "name", v ? v : "");
    v = sb_jstr(a, "email");
    if (!v) v = sb_jstr(cur, "email");
    sb_jput_str(b, "email", v ? v : "");
    cJSON *phone = NULL;
    if (phone_arg(a, &phone, err, errlen) < 0) {
        cJSON_Delete(b);
        return -1;
    }
    const cJSON *curph = sb_jget(cur, "phoneNumber");
    if (!phone && cJSON_IsObject(curph) && nonempty(sb_jstr(curph, "number")))
        phone = cJSON_Duplicate(curph, 1);
    if (phone) cJSON_AddItemToObjectCS(b, "phoneNumber", phone);
    v = sb_jstr(a, "company");
    if (!v) v = sb_jstr(cur, "companyName");
    if (v) sb_jput_str(b, "companyName", v);
    v = sb_jstr(a, "job_title");
    if (!v) v = sb_jstr(cur, "jobTitle");
    if (v) sb_jput_str(b, "jobTitle", v);
    /* what the contact will be */
    cJSON *shown = cJSON_Duplicate(b, 1);
    sb_jput_str(shown, "id", sb_jstr(cur, "id"));
    cJSON *m = map_contact(shown);
    cJSON_Delete(shown);
    cJSON_AddItemToObjectCS(step->scratch, "contact", m);
    sb_jput_str(step->scratch, "phase", "update");
    sb_preq *n = &step->next;
    sb_preq_init(n, "PUT", 0);
    if (sb_preq_url(n, c->base_url, "/v1/contacts/update") < 0 ||
        sb_preq_query(n, "id", sb_jstr(a, "contact_id")) < 0) {
        cJSON_Delete(b);
        return fail(err, errlen, "out of memory");
    }
    if (sb_preq_json(n, b) < 0) return fail(err, errlen, "out of memory");
    return SB_PMAP_NEXT;
}

static int cdelete_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                         size_t errlen)
{
    (void)step;
    const char *id = id_arg(a, "contact_id", err, errlen);
    return id ? action_req(c, r, "DELETE", "/v1/contacts/delete", "id", id, err, errlen) : -1;
}

static int cdelete_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                       cJSON **out, char *err, size_t errlen)
{
    (void)step;
    (void)r;
    (void)err;
    (void)errlen;
    cJSON *o = action_result(c, "BoldSign deleted the contact.");
    sb_jput_str(o, "contact_id", sb_jstr(a, "contact_id"));
    sb_jput_bool(o, "deleted", 1);
    *out = o;
    return 0;
}

/* ---- users, teams, account --------------------------------------------------------------- */

static cJSON *map_user(const cJSON *u, const char *role_key, const char *team_id,
                       const char *team_name)
{
    const char *id = sb_jstr(u, "userId");
    if (!id) return NULL;
    const char *fn = nonempty(sb_jstr(u, "firstName")), *ln = nonempty(sb_jstr(u, "lastName"));
    char name[420];
    snprintf(name, sizeof name, "%s%s%s", fn ? fn : "", fn && ln ? " " : "", ln ? ln : "");
    cJSON *o = cJSON_CreateObject();
    sb_jput_str(o, "id", id);
    sb_jadd_str(o, "name", nonempty(name));
    sb_jadd_str(o, "email", sb_jstr(u, "email"));
    sb_jadd_str(o, "role", sb_jstr(u, role_key));
    sb_jadd_str(o, "status", sb_jstr(u, "userStatus"));
    sb_jadd_str(o, "team_id", team_id ? team_id : nonempty(sb_jstr(u, "teamId")));
    sb_jadd_str(o, "team_name", team_name ? team_name : sb_jstr(u, "teamName"));
    if (sb_jget(u, "createdDate"))
        sb_jadd_epoch(o, "created_at", sb_jnum(u, "createdDate", -1));
    return o;
}

static int ulist_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                       size_t errlen)
{
    (void)step;
    return list_req(c, r, "/v1/users/list", a, "Search", NULL, NULL, err, errlen);
}

static int ulist_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                     cJSON **out, char *err, size_t errlen)
{
    (void)step;
    const cJSON *res = sb_jget(r->json, "result");
    if (!cJSON_IsArray(res))
        return fail(err, errlen, "BoldSign's user list has no \"result\" array");
    cJSON *items = cJSON_CreateArray();
    const cJSON *u;
    cJSON_ArrayForEach(u, res)
    {
        cJSON *m = map_user(u, "role", NULL, NULL);
        if (m) cJSON_AddItemToArray(items, m);
    }
    *out = list_out(c, a, "users", items, sb_jget(r->json, "pageDetails"),
                    cJSON_GetArraySize(res));
    return 0;
}

static int uget_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                      size_t errlen)
{
    (void)step;
    const char *id = id_arg(a, "user_id", err, errlen);
    return id ? get_by_id(c, r, "/v1/users/get", "userId", id, err, errlen) : -1;
}

static int uget_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                    cJSON **out, char *err, size_t errlen)
{
    (void)step;
    (void)a;
    cJSON *u = map_user(r->json, "role", NULL, NULL);
    if (!u) return fail(err, errlen, "BoldSign's user has no userId");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObjectCS(o, "user", u);
    *out = with_where(c, o);
    return 0;
}

static cJSON *map_team(const cJSON *t, int members)
{
    const char *id = sb_jstr(t, "teamId");
    if (!id) return NULL;
    cJSON *o = cJSON_CreateObject();
    sb_jput_str(o, "id", id);
    sb_jadd_str(o, "name", sb_jstr(t, "teamName"));
    sb_jadd_epoch(o, "created_at", sb_jnum(t, "createdDate", -1));
    if (members) {
        cJSON *arr = sb_jput_arr(o, "members");
        const cJSON *u;
        cJSON_ArrayForEach(u, sb_jget(t, "users"))
        {
            cJSON *m = map_user(u, "userRole", id, sb_jstr(t, "teamName"));
            if (m) cJSON_AddItemToArray(arr, m);
        }
    }
    return o;
}

static int tmlist_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                        size_t errlen)
{
    (void)step;
    return list_req(c, r, "/v1/teams/list", a, "SearchKey", NULL, NULL, err, errlen);
}

static int tmlist_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                      cJSON **out, char *err, size_t errlen)
{
    (void)step;
    /* teams/list is the one envelope with "results" (plural) */
    const cJSON *res = sb_jget(r->json, "results");
    if (!cJSON_IsArray(res))
        return fail(err, errlen, "BoldSign's team list has no \"results\" array");
    cJSON *items = cJSON_CreateArray();
    const cJSON *t;
    cJSON_ArrayForEach(t, res)
    {
        cJSON *m = map_team(t, 0);
        if (m) cJSON_AddItemToArray(items, m);
    }
    *out = list_out(c, a, "teams", items, sb_jget(r->json, "pageDetails"),
                    cJSON_GetArraySize(res));
    return 0;
}

static int tmget_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                       size_t errlen)
{
    (void)step;
    const char *id = id_arg(a, "team_id", err, errlen);
    return id ? get_by_id(c, r, "/v1/teams/get", "teamId", id, err, errlen) : -1;
}

static int tmget_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                     cJSON **out, char *err, size_t errlen)
{
    (void)step;
    (void)a;
    cJSON *t = map_team(r->json, 1);
    if (!t) return fail(err, errlen, "BoldSign's team has no teamId");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObjectCS(o, "team", t);
    *out = with_where(c, o);
    return 0;
}

/* get_account: BoldSign has no "who am I" endpoint, and an API key belongs to the organization.
 * signbridge reports the organization's account admin (users/list, role Admin) and the API
 * credit balance (plan/apiCreditsCount). */
static int acct_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                      size_t errlen)
{
    (void)a;
    (void)step;
    sb_preq_init(r, "GET", 1);
    if (sb_preq_url(r, c->base_url, "/v1/users/list") < 0 || sb_preq_query_int(r, "Page", 1) < 0 ||
        sb_preq_query_int(r, "PageSize", 100) < 0)
        return too_large(err, errlen);
    return 0;
}

static int acct_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                    cJSON **out, char *err, size_t errlen)
{
    (void)a;
    if (!sb_jstr(step->scratch, "phase")) {
        const cJSON *res = sb_jget(r->json, "result");
        if (!cJSON_IsArray(res))
            return fail(err, errlen, "BoldSign's user list has no \"result\" array");
        const cJSON *u, *admin = NULL;
        cJSON_ArrayForEach(u, res)
        {
            const char *role = sb_jstr(u, "role");
            if (role && (strcasecmp(role, "Admin") == 0 || strcasecmp(role, "AccountAdmin") == 0)) {
                admin = u;
                break;
            }
        }
        cJSON *acct = admin ? map_user(admin, "role", NULL, NULL) : NULL;
        cJSON *o = cJSON_CreateObject();
        sb_jadd_str(o, "id", sb_jstr(acct, "id"));
        sb_jadd_str(o, "name", sb_jstr(acct, "name"));
        sb_jadd_str(o, "email", sb_jstr(acct, "email"));
        sb_jadd_str(o, "team_id", sb_jstr(acct, "team_id"));
        sb_jadd_str(o, "role", sb_jstr(acct, "role"));
        cJSON_Delete(acct);
        cJSON_AddItemToObjectCS(step->scratch, "account", o);
        sb_jput_str(step->scratch, "phase", "credits");
        sb_preq_init(&step->next, "GET", 1);
        if (sb_preq_url(&step->next, c->base_url, "/v1/plan/apiCreditsCount") < 0)
            return fail(err, errlen, "out of memory");
        return SB_PMAP_NEXT;
    }
    const cJSON *bal = sb_jget(r->json, "BalanceCredits");
    if (!cJSON_IsNumber(bal)) return fail(err, errlen, "BoldSign's answer has no BalanceCredits");
    cJSON *acct = cJSON_DetachItemFromObjectCaseSensitive(step->scratch, "account");
    if (!acct) return fail(err, errlen, "lost the account between steps");
    cJSON *q = sb_jput_obj(acct, "quotas");
    sb_jput_num(q, "BalanceCredits", bal->valuedouble);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObjectCS(o, "account", acct);
    *out = with_where(c, o);
    return 0;
}

static const sb_ptool bs_tools[] = {
    {"list_documents", list_build, list_map},
    {"get_document", props_build, get_map},
    {"get_document_history", props_build, history_map},
    {"download_document", dl_build, dl_map},
    {"get_signing_link", link_build, link_map},
    {"send_document", send_build, send_map},
    {"send_from_template", tsend_build, tsend_map},
    {"remind_signers", remind_build, remind_map},
    {"revoke_document", revoke_build, revoke_map},
    {"change_signer", change_build, change_map},
    {"extend_expiry", extend_build, extend_map},
    {"list_templates", tlist_build, tlist_map},
    {"get_template", tget_build, tget_map},
    {"list_contacts", clist_build, clist_map},
    {"get_contact", cget_build, cget_map},
    {"create_contact", ccreate_build, ccreate_map},
    {"update_contact", cupdate_build, cupdate_map},
    {"delete_contact", cdelete_build, cdelete_map},
    {"list_users", ulist_build, ulist_map},
    {"get_user", uget_build, uget_map},
    {"list_teams", tmlist_build, tmlist_map},
    {"get_team", tmget_build, tmget_map},
    {"get_account", acct_build, acct_map},
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
