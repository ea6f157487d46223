/* sb_iinkedsign: the iinked Sign adapter (API v1; ../shared/reference/iinked-sign-api.md).
 * Credential: api_key header. Probe: POST /packages/list {take:1}. Times: ISO 8601 strings.
 * Tools (docs/tools.md has the matrix and the reasons for the gaps): list_documents,
 * get_document, revoke_document (packages/rescind), send_document (each file uploaded to
 * files/upload -- an https URL is fetched first -- then packages/add), send_from_template
 * (packages/add with templateId), change_signer and extend_expiry (packages/update),
 * get_signing_link (read the package for the signer id, then link/sign), download_document
 * (packages/{id}/download), list_templates and get_template (templates/list: iinked has no
 * template get-by-id). iinked documents no API for reminders, contacts, users, teams, the account
 * (with an API key) or a machine-readable audit trail: those tools are not offered. */
#include "providers/sb_provider.h"

#include "core/sb_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IK_MAX_FILE ((size_t)25 << 20)     /* per file: signbridge's cap (iinked publishes none) */
#define IK_MAX_DOWNLOAD ((size_t)64 << 20) /* a package download (several signed documents) */
#define IK_TPL_PAGE 100                    /* templates/list page size for get_template */
#define IK_TPL_PAGES 10                    /* get_template reads at most this many pages */
#define IK_DOCX_MIME "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

static int ik_auth(const char *key, size_t len, sb_buf *out)
{
    return sb_buf_printf(out, "api_key: %.*s", (int)len, key);
}

static int ik_probe(const sb_pctx *c, sb_preq *r)
{
    sb_preq_init(r, "POST", 1); /* a read despite the method */
    if (sb_preq_url(r, c->base_url, "/packages/list") < 0) return -1;
    cJSON *b = cJSON_CreateObject();
    sb_jput_num(b, "take", 1);
    sb_jput_num(b, "skip", 0);
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

/* ---- small helpers --------------------------------------------------------------------------- */

static int is_state(const char *state, const char *want)
{
    return state && strcmp(state, want) == 0;
}

/* Not sent yet: draft, or the embedded editor's select/add. */
static int draft_state(const char *s)
{
    return is_state(s, "draft") || is_state(s, "select") || is_state(s, "add");
}

static int closed_state(const char *s)
{
    return is_state(s, "executed") || is_state(s, "expired") || is_state(s, "rescinded");
}

/* An ISO 8601 time as iinked writes it (RFC 3339, or without a zone = UTC) -> epoch ms. */
static int ik_time_ms(const char *iso, int64_t *ms)
{
    if (!iso) return -1;
    if (sb_parse_rfc3339(iso, ms) == 0) return 0;
    size_t n = strlen(iso);
    if (n >= 19 && n < 40) {
        char buf[48];
        snprintf(buf, sizeof buf, "%sZ", iso);
        if (sb_parse_rfc3339(buf, ms) == 0) return 0;
    }
    return -1;
}

static int bad_id(const char *id, const char *field, const char *what, char *err, size_t errlen)
{
    if (id && sb_id_ok(id)) return 0;
    snprintf(err, errlen, "%s has characters an iinked %s id never has", field, what);
    return -1;
}

/* url = base + "/packages/" + id + suffix (id already checked with sb_id_ok, encoded anyway). */
static int package_url(sb_preq *r, const sb_pctx *c, const char *id, const char *suffix)
{
    if (sb_preq_url(r, c->base_url, "/packages/") < 0 || sb_pct_encode(id, &r->url) < 0) return -1;
    return suffix ? sb_buf_puts(&r->url, suffix) : 0;
}

/* The package object of an answer: {packageId, package:{...}} or the package itself. */
static const cJSON *package_of(const cJSON *j)
{
    const cJSON *p = sb_jget(j, "package");
    return cJSON_IsObject(p) ? p : j;
}

static void set_item(cJSON *o, const char *key, cJSON *v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    cJSON_AddItemToObject(o, key, v);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* "Ana María da Silva" -> first "Ana María da", last "Silva" (the last word is the last name:
 * iinked wants both and has no single name field). -1 for one word. */
static int split_name(const char *name, char *first, size_t fc, char *last, size_t lc)
{
    const char *b = name, *e = name + strlen(name);
    while (b < e && is_space(*b))
        b++;
    while (e > b && is_space(e[-1]))
        e--;
    const char *sp = e;
    while (sp > b && !is_space(sp[-1]))
        sp--;
    if (sp == b) return -1; /* one word */
    const char *fe = sp;
    while (fe > b && is_space(fe[-1]))
        fe--;
    snprintf(first, fc, "%.*s", (int)(fe - b), b);
    snprintf(last, lc, "%.*s", (int)(e - sp), sp);
    return first[0] && last[0] ? 0 : -1;
}

/* Names for a cc recipient, who is given by email alone (iinked wants names for recipients):
 * "jane.doe@x" -> Jane / Doe, "legal@x" -> Legal / CC. */
static void cc_names(const char *email, char *first, size_t fc, char *last, size_t lc)
{
    char local[128];
    size_t n = 0;
    for (const char *p = email; *p && *p != '@' && *p != '+' && n + 1 < sizeof local; p++)
        local[n++] = (*p == '.' || *p == '_' || *p == '-') ? ' ' : *p;
    local[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((i == 0 || local[i - 1] == ' ') && local[i] >= 'a' && local[i] <= 'z')
            local[i] = (char)(local[i] - 'a' + 'A');
    if (split_name(local, first, fc, last, lc) < 0) {
        const char *b = local;
        while (*b == ' ')
            b++;
        snprintf(first, fc, "%s", *b ? b : "Copy");
        snprintf(last, lc, "CC");
    }
}

static cJSON *person_json(const char *first, const char *last, const char *email)
{
    cJSON *p = cJSON_CreateObject();
    sb_jput_str(p, "firstName", first);
    sb_jput_str(p, "lastName", last);
    sb_jput_str(p, "email", email);
    return p;
}

/* A PDF has "%PDF-" in its first KiB; a DOCX is a ZIP ("PK\3\4"). */
static int magic_ok(const void *d, size_t n, int docx)
{
    const char *m = sb_sniff_mime(d, n);
    return m && strcmp(m, docx ? "application/vnd.openxmlformats-officedocument."
                                 "wordprocessingml.document"
                               : "application/pdf") == 0;
}

/* ---- the neutral document model -------------------------------------------------------------- */

/* When the signer first opened any document of the package (documents[].revisions[]), or -1. */
static int64_t first_opened(const cJSON *docs, const char *sid)
{
    int64_t best = -1;
    if (!sid) return -1;
    const cJSON *d, *rv;
    cJSON_ArrayForEach(d, docs)
    {
        cJSON_ArrayForEach(rv, sb_jget(d, "revisions"))
        {
            const char *rs = sb_jstr(rv, "signerId");
            int64_t t;
            if (rs && sb_strcaseeq(rs, sid) && ik_time_ms(sb_jstr(rv, "timeLastOpened"), &t) == 0 &&
                (best < 0 || t < best))
                best = t;
        }
    }
    return best;
}

/* The members of a signer the writers read, looked up at once (sb_jpick). */
enum { G_ID, G_STATE, G_EXECUTED, G_DECLINED, G_FIRST, G_LAST, G_EMAIL, G_NEXT, G_INDEX, G_ORDER,
       G_EXECUTED_AT, G_ROLE, G_N };
static const char *const signer_names[G_N] = {
    "signerId", "state", "isExecuted", "timeDeclined", "firstName",    "lastName",
    "email",    "isNext", "index",     "order",        "timeExecuted", "templateRole"};

/* What one signer of a package (list item, package object or status answer) did. */
typedef struct signer_facts {
    const cJSON *m[G_N]; /* the signer's members */
    const char *sid, *pst, *status;
    int64_t opened; /* first opened, epoch ms, or -1 */
    int done;
} signer_facts;

/* The facts of signer s of a package in `state` with documents `docs`; acted/declined are or-ed
 * with what this signer did. */
static void signer_facts_of(const cJSON *s, const char *state, const cJSON *docs, signer_facts *f,
                            int *acted, int *declined)
{
    sb_jpick(s, signer_names, G_N, f->m);
    f->sid = sb_jv_str(f->m[G_ID]);
    f->pst = sb_jv_str(f->m[G_STATE]);
    f->opened = first_opened(docs, f->sid);
    int done = sb_jv_bool(f->m[G_EXECUTED], 0) || is_state(f->pst, "signed");
    int decl = !done && (is_state(f->pst, "declined") || sb_jv_str(f->m[G_DECLINED]) != NULL);
    int viewed = !done && !decl && (is_state(f->pst, "viewed") || f->opened >= 0);
    *acted |= done || decl || viewed;
    *declined |= decl;
    f->done = done;
    f->status = done                           ? "signed"
                : decl                         ? "declined"
                : is_state(state, "expired")   ? "expired"
                : is_state(state, "rescinded") ? "revoked"
                : viewed                       ? "viewed"
                                               : "pending";
}

/* A signer in the neutral model, written from its facts. */
static void write_signer(sb_jw *w, const signer_facts *f)
{
    char name[300];
    const cJSON *const *m = f->m;
    const char *fn = sb_jv_str(m[G_FIRST]), *ln = sb_jv_str(m[G_LAST]);
    snprintf(name, sizeof name, "%s%s%s", fn ? fn : "", fn && ln ? " " : "", ln ? ln : "");
    sb_jw_open(w, '{');
    sb_jw_jstr(w, "id", m[G_ID]);
    sb_jw_str(w, "name", name[0] ? name : NULL);
    sb_jw_jstr(w, "email", m[G_EMAIL]);
    sb_jw_str(w, "status", f->status);
    if (f->pst)
        sb_jw_jstr(w, "provider_status", m[G_STATE]);
    else
        sb_jw_str(w, "provider_status",
                  f->done ? "executed" : (sb_jv_bool(m[G_NEXT], 0) ? "next" : "waiting"));
    /* iinked's index is 0-based; the neutral order is the 1-based signing position */
    const cJSON *idx = m[G_INDEX];
    if (!cJSON_IsNumber(idx)) idx = m[G_ORDER];
    sb_pjw_int_or_null(w, "order",
                       cJSON_IsNumber(idx) && idx->valuedouble >= 0 ? idx->valuedouble + 1 : -1);
    sb_pjw_iso(w, "signed_at", sb_jv_str(m[G_EXECUTED_AT]));
    if (f->opened >= 0) {
        char ts[40];
        sb_rfc3339((uint64_t)f->opened, ts, sizeof ts);
        sb_jw_str(w, "viewed_at", ts);
    } else {
        sb_jw_null(w, "viewed_at");
    }
    if (cJSON_IsString(m[G_ROLE])) sb_jw_jstr(w, "role", m[G_ROLE]);
    sb_jw_close(w, '}');
}

/* The same, as a tree. */
static cJSON *map_signer(const cJSON *s, const cJSON *pkg)
{
    signer_facts f;
    int acted = 0, declined = 0;
    signer_facts_of(s, sb_jstr(pkg, "state"), sb_jget(pkg, "documents"), &f, &acted, &declined);
    sb_buf b;
    sb_buf_init(&b, SB_PJW_MAX);
    sb_jw w;
    sb_jw_init(&w, &b);
    write_signer(&w, &f);
    return sb_pjw_tree(&w);
}

static const char *doc_status(const char *state, int acted, int declined)
{
    if (!state) return "in_progress";
    if (draft_state(state)) return "draft";
    if (strcmp(state, "executed") == 0) return "completed";
    if (strcmp(state, "expired") == 0) return "expired";
    if (strcmp(state, "rescinded") == 0) return declined ? "declined" : "revoked";
    return acted ? "in_progress" : "sent";
}

static int in_range(const cJSON *a, const char *created_iso);

/* The members of a package write_package reads, looked up at once (sb_jpick). */
enum { P_ID, P_STATE, P_SIGNERS, P_DOCS, P_CREATED, P_NAME, P_MODIFIED, P_SIGN_BY, P_MESSAGE,
       P_RECIPIENTS, P_N };
static const char *const package_names[P_N] = {
    "packageId",        "state",      "signers", "documents", "timeCreated", "name",
    "timeLastModified", "timeSignBy", "message", "recipients"};

/* A package in the neutral model, written; -1 (nothing written) without a packageId or when
 * `a`'s filters (status, created range) leave it out (*dropped counts it). */
static int write_package(sb_jw *w, const cJSON *d, const cJSON *a, size_t *dropped)
{
    const cJSON *m[P_N];
    sb_jpick(d, package_names, P_N, m);
    const cJSON *idv = m[P_ID];
    if (!cJSON_IsString(idv)) return -1;
    const char *state = sb_jv_str(m[P_STATE]);
    const cJSON *signers = m[P_SIGNERS], *s;
    /* the package's status needs every signer's facts before the signers are written: the first
     * SIGNERS_KEPT are kept for writing, any further are worked out again */
    enum { SIGNERS_KEPT = 16 };
    signer_facts kept[SIGNERS_KEPT], f;
    int acted = 0, declined = 0, n = 0;
    cJSON_ArrayForEach(s, signers)
    {
        if (!cJSON_IsObject(s)) continue;
        signer_facts_of(s, state, m[P_DOCS], n < SIGNERS_KEPT ? &kept[n] : &f, &acted, &declined);
        n++;
    }
    const char *status = doc_status(state, acted, declined);
    if (a && (!sb_status_wanted(a, status) || !in_range(a, sb_jv_str(m[P_CREATED])))) {
        (*dropped)++;
        return -1;
    }
    sb_jw_open(w, '{');
    sb_jw_jstr(w, "id", idv);
    sb_jw_jstr(w, "title", m[P_NAME]);
    sb_jw_str(w, "status", status);
    sb_jw_jstr(w, "provider_status", m[P_STATE]);
    sb_pjw_iso(w, "created_at", sb_jv_str(m[P_CREATED]));
    sb_pjw_iso(w, "updated_at", sb_jv_str(m[P_MODIFIED]));
    sb_pjw_iso(w, "expires_at", sb_jv_str(m[P_SIGN_BY]));
    sb_jw_jstr(w, "message", m[P_MESSAGE]);
    sb_jw_obj(w, "sender");
    sb_jw_null(w, "name");
    sb_jw_null(w, "email");
    sb_jw_close(w, '}');
    sb_jw_arr(w, "signers");
    n = 0;
    cJSON_ArrayForEach(s, signers)
    {
        if (!cJSON_IsObject(s)) continue;
        if (n >= SIGNERS_KEPT) {
            int x = 0, y = 0;
            signer_facts_of(s, state, m[P_DOCS], &f, &x, &y);
        }
        write_signer(w, n < SIGNERS_KEPT ? &kept[n] : &f);
        n++;
    }
    sb_jw_close(w, ']');
    sb_jw_arr(w, "cc");
    const cJSON *c;
    cJSON_ArrayForEach(c, m[P_RECIPIENTS])
    {
        const cJSON *e = sb_jget(c, "email");
        if (cJSON_IsString(e)) sb_jw_vjstr(w, e);
    }
    sb_jw_close(w, ']');
    sb_jw_close(w, '}');
    return 0;
}

/* The same, as a tree, or NULL without a packageId. */
static cJSON *map_package(const cJSON *d)
{
    return sb_pjw_item_tree(write_package, d);
}

/* The package's signer with this email (case-insensitive), its position in *index. */
static const cJSON *signer_by_email(const cJSON *pkg, const char *email, int *index)
{
    int i = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, sb_jget(pkg, "signers"))
    {
        const char *e = sb_jstr(s, "email");
        if (e && sb_strcaseeq(e, email)) {
            if (index) *index = i;
            return s;
        }
        i++;
    }
    return NULL;
}

/* "a@x, b@y" -- the signers' emails, for messages that say which exist. */
static void signer_emails(const cJSON *pkg, char *out, size_t cap)
{
    sb_join_field(sb_jget(pkg, "signers"), "email", out, cap);
}

/* ---- list_documents, get_document, revoke_document ------------------------------------------- */


static const char *state_of(const char *neutral)
{
    if (strcmp(neutral, "draft") == 0) return "draft";
    if (strcmp(neutral, "sent") == 0 || strcmp(neutral, "in_progress") == 0) return "open";
    if (strcmp(neutral, "completed") == 0) return "executed";
    if (strcmp(neutral, "expired") == 0) return "expired";
    /* a declined package is rescinded in iinked (the signer's decline rescinds it) */
    if (strcmp(neutral, "revoked") == 0 || strcmp(neutral, "declined") == 0) return "rescinded";
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
    sb_jput_num(b, "take", (double)size);
    sb_jput_num(b, "skip", (double)((page - 1) * size));
    sb_jput_str(b, "sortBy", "created");
    const char *q = sb_jstr(a, "query");
    if (q) sb_jput_str(b, "search", q);
    const cJSON *st;
    cJSON *states = NULL;
    cJSON_ArrayForEach(st, sb_jget(a, "status"))
    {
        const char *s = cJSON_IsString(st) ? state_of(st->valuestring) : NULL;
        if (!s) continue;
        if (!states) states = sb_jput_arr(b, "states");
        int dup = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, states) dup |= strcmp(e->valuestring, s) == 0;
        if (!dup) cJSON_AddItemToArray(states, cJSON_CreateString(s));
    }
    return sb_preq_json(r, b);
}

/* Whether a package created at created_iso (iinked's time) is within a's created range. */
static int in_range(const cJSON *a, const char *created_iso)
{
    const char *after = sb_jstr(a, "created_after"), *before = sb_jstr(a, "created_before");
    if (!after && !before) return 1;
    int64_t t, lim;
    if (sb_ptime_ms(created_iso, &t) < 0) return 0;
    if (after && sb_parse_rfc3339(after, &lim) == 0 && t < lim) return 0;
    if (before && sb_parse_rfc3339(before, &lim) == 0 && t > lim) return 0;
    return 1;
}

static int list_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                    cJSON **out, char *err, size_t errlen)
{
    (void)out;
    const cJSON *res = sb_jget(r->json, "items");
    if (!cJSON_IsArray(res)) {
        snprintf(err, errlen, "iinked Sign's package list has no \"items\" array");
        return -1;
    }
    sb_jw w;
    sb_jw_init(&w, &step->json);
    sb_pjw_list_begin(&w, "documents");
    size_t dropped = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, res) write_package(&w, d, a, &dropped);
    long page = (long)sb_jnum(a, "page", 1), size = (long)sb_jnum(a, "page_size", 20);
    long long total = (long long)sb_jnum(r->json, "total", -1);
    long long skip = (long long)sb_jnum(r->json, "skip", (double)((page - 1) * size));
    int has_next =
        total >= 0 ? skip + cJSON_GetArraySize(res) < total : cJSON_GetArraySize(res) >= size;
    sb_pjw_list_end(&w, c, page, size, dropped ? -1 : total, has_next);
    if (dropped)
        sb_jw_str(&w, "note",
                  "iinked Sign cannot filter by every criterion: this page was filtered here, so "
                  "it may hold fewer than page_size documents; keep paging while next_page is "
                  "set.");
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
    const char *id = sb_jstr(a, "document_id");
    if (bad_id(id, "document_id", "package", err, errlen) < 0) return -1;
    sb_preq_init(r, "GET", 1);
    return package_url(r, c, id, NULL);
}

static int get_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step, cJSON **out,
                   char *err, size_t errlen)
{
    (void)a;
    (void)out;
    return sb_pjw_document(c, step, write_package, package_of(r->json),
                           "iinked Sign's package has no packageId", err, errlen);
}

static int revoke_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                        size_t errlen)
{
    (void)step;
    const char *id = sb_jstr(a, "document_id");
    if (bad_id(id, "document_id", "package", err, errlen) < 0) return -1;
    sb_preq_init(r, "POST", 0);
    if (sb_preq_url(r, c->base_url, "/packages/rescind") < 0) return -1;
    cJSON *b = cJSON_CreateObject();
    sb_jput_str(b, "packageId", id);
    sb_jput_str(b, "rescindMessage", sb_jstr(a, "reason"));
    sb_jput_bool(b, "notify", 1);
    return sb_preq_json(r, b);
}

/* An action's result ("outcome" is the bridge's to add: done, or declined_by_user). */
static cJSON *action_result(const sb_pctx *c, const char *document_id, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    if (document_id) sb_jput_str(o, "document_id", document_id);
    sb_jput_str(o, "message", message);
    sb_jput_str(o, "provider", c->provider);
    sb_jput_str(o, "region", c->region);
    return o;
}

static int revoke_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                      cJSON **out, char *err, size_t errlen)
{
    (void)step;
    (void)r;
    (void)err;
    (void)errlen;
    cJSON *o = action_result(c, sb_jstr(a, "document_id"),
                             "iinked Sign rescinded the package; signers were notified.");
    sb_jput_str(o, "status", "revoked");
    *out = o;
    return 0;
}

/* ---- sending: signers, cc, expiry, test mode ------------------------------------------------- */

/* test_mode: iinked has no per-document test flag; its sandbox datacenters are the test mode. */
static int test_mode_ok(const sb_pctx *c, const cJSON *a, char *err, size_t errlen)
{
    if (!sb_jbool(a, "test_mode", 0) || strncmp(c->region, "sandbox-", 8) == 0) return 0;
    snprintf(err, errlen,
             "test_mode: iinked Sign has no test mode on its production datacenters (this "
             "connection is in %s); send non-binding documents from a sandbox datacenter "
             "(/iinkedsign/sandbox-us/mcp or /iinkedsign/sandbox-eu/mcp with a sandbox API key), "
             "or leave test_mode false",
             c->region);
    return -1;
}

/* signers[] of packages/add from the tool's signers (with_role: templateRole from role).
 * Checks names, duplicates and authentication; signing_order sorts by order. */
static cJSON *signers_json(const cJSON *a, int with_role, char *err, size_t errlen)
{
    const cJSON *in = sb_jget(a, "signers");
    int n = cJSON_GetArraySize(in);
    if (n <= 0 || n > 50) {
        snprintf(err, errlen, "signers: give 1 to 50 signers");
        return NULL;
    }
    int idx[50];
    for (int i = 0; i < n; i++)
        idx[i] = i;
    if (!with_role && sb_jbool(a, "signing_order", 0)) {
        /* stable insertion sort by order (signers without one keep their place at the end) */
        for (int i = 1; i < n; i++)
            for (int k = i; k > 0; k--) {
                double x = sb_jnum(cJSON_GetArrayItem(in, idx[k - 1]), "order", 1e9);
                double y = sb_jnum(cJSON_GetArrayItem(in, idx[k]), "order", 1e9);
                if (x <= y) break;
                int t = idx[k - 1];
                idx[k - 1] = idx[k];
                idx[k] = t;
            }
    }
    cJSON *out = cJSON_CreateArray();
    for (int k = 0; k < n; k++) {
        int i = idx[k];
        const cJSON *s = cJSON_GetArrayItem(in, i);
        const char *name = sb_jstr(s, "name"), *email = sb_jstr(s, "email");
        char first[256], last[256];
        if (!name || !email || split_name(name, first, sizeof first, last, sizeof last) < 0) {
            snprintf(err, errlen,
                     "signers[%d].name must hold a first and a last name (iinked Sign requires "
                     "both): got \"%.80s\"",
                     i, name ? name : "");
            goto fail;
        }
        const cJSON *auth = sb_jget(s, "authentication");
        const char *at = sb_jstr(auth, "type");
        if (at && strcmp(at, "none") != 0) {
            snprintf(err, errlen,
                     "signers[%d].authentication: iinked Sign's API offers no %s for a signer "
                     "(only type none); leave authentication out",
                     i, strcmp(at, "access_code") == 0 ? "access code" : "one-time passcode");
            goto fail;
        }
        for (int j = 0; j < n; j++) {
            const cJSON *o = cJSON_GetArrayItem(in, j);
            const char *oe = sb_jstr(o, "email"), *orole = sb_jstr(o, "role");
            if (j < i && oe && sb_strcaseeq(oe, email)) {
                snprintf(err, errlen,
                         "signers[%d].email repeats signers[%d].email (%.100s): iinked Sign "
                         "takes each signer once",
                         i, j, email);
                goto fail;
            }
            if (with_role && j < i && orole && sb_jstr(s, "role") &&
                sb_strcaseeq(orole, sb_jstr(s, "role"))) {
                snprintf(err, errlen, "signers[%d].role repeats signers[%d].role (%.100s)", i, j,
                         orole);
                goto fail;
            }
        }
        cJSON *p = person_json(first, last, email);
        if (with_role) sb_jput_str(p, "templateRole", sb_jstr(s, "role"));
        cJSON_AddItemToArray(out, p);
    }
    return out;
fail:
    cJSON_Delete(out);
    return NULL;
}

/* The body parts send_document and send_from_template share; NULL with err. */
static cJSON *add_body(const sb_pctx *c, const cJSON *a, int with_role, char *err, size_t errlen)
{
    if (test_mode_ok(c, a, err, errlen) < 0) return NULL;
    cJSON *signers = signers_json(a, with_role, err, errlen);
    if (!signers) return NULL;
    cJSON *b = cJSON_CreateObject();
    const char *title = sb_jstr(a, "title");
    if (title) sb_jput_str(b, "name", title);
    sb_jput_str(b, "state", "open");
    const char *msg = sb_jstr(a, "message");
    if (msg && msg[0]) sb_jput_str(b, "message", msg);
    double days = sb_jnum(a, "expires_in_days", -1);
    if (days >= 1) {
        char ts[40];
        sb_rfc3339(sb_wall_ms() + (uint64_t)days * 86400000ull, ts, sizeof ts);
        sb_jput_str(b, "timeSignBy", ts);
    }
    cJSON_AddItemToObjectCS(b, "signers", signers);
    const cJSON *cc = sb_jget(a, "cc");
    if (cJSON_GetArraySize(cc) > 0) {
        cJSON *rc = sb_jput_arr(b, "recipients");
        const cJSON *e;
        int i = 0;
        cJSON_ArrayForEach(e, cc)
        {
            if (!cJSON_IsString(e)) continue;
            const cJSON *s;
            cJSON_ArrayForEach(s, signers)
            {
                if (sb_strcaseeq(sb_jstr(s, "email"), e->valuestring)) {
                    snprintf(err, errlen,
                             "cc[%d] (%.100s) is also a signer: iinked Sign takes a person either "
                             "as a signer or as a copy recipient",
                             i, e->valuestring);
                    cJSON_Delete(b);
                    return NULL;
                }
            }
            const cJSON *prev;
            cJSON_ArrayForEach(prev, rc)
            {
                if (sb_strcaseeq(sb_jstr(prev, "email"), e->valuestring)) {
                    snprintf(err, errlen, "cc[%d] (%.100s) repeats an earlier cc", i,
                             e->valuestring);
                    cJSON_Delete(b);
                    return NULL;
                }
            }
            char first[160], last[160];
            cc_names(e->valuestring, first, sizeof first, last, sizeof last);
            cJSON_AddItemToArray(rc, person_json(first, last, e->valuestring));
            i++;
        }
    }
    sb_jput_bool(b, "returnPackage", 1);
    return b;
}

/* The answer of packages/add: {packageId, package:{...}|null}. */
static int sent_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, cJSON **out, char *err,
                    size_t errlen)
{
    const cJSON *pkg = sb_jget(r->json, "package");
    const char *id = sb_jstr(r->json, "packageId");
    if (!id && cJSON_IsObject(pkg)) id = sb_jstr(pkg, "packageId");
    if (!id) {
        snprintf(err, errlen, "iinked Sign's packages/add answer has no packageId");
        return -1;
    }
    cJSON *doc = cJSON_IsObject(pkg) ? map_package(pkg) : NULL;
    int nsig = cJSON_GetArraySize(sb_jget(a, "signers"));
    char msg[600];
    if (doc && strcmp(sb_jstr(doc, "status"), "draft") == 0)
        snprintf(msg, sizeof msg,
                 "iinked Sign created package %s but kept it as a draft: nothing was sent. Check "
                 "it with get_document.",
                 id);
    else
        snprintf(msg, sizeof msg,
                 "iinked Sign created package %s and sent it to %d signer%s%s%s. Follow it with "
                 "get_document.",
                 id, nsig, nsig == 1 ? "" : "s",
                 sb_jbool(a, "signing_order", 0) ? ", who sign in order" : "",
                 strncmp(c->region, "sandbox-", 8) == 0 ? " (a sandbox datacenter: not binding)"
                                                        : "");
    cJSON *o = action_result(c, id, msg);
    sb_jput_str(o, "status", doc ? sb_jstr(doc, "status") : "sent");
    if (doc) cJSON_AddItemToObjectCS(o, "document", doc);
    *out = o;
    return 0;
}

/* ---- send_document: upload each file (fetching https URLs first), then packages/add ---------- */

typedef struct ik_file {
    const char *url; /* or NULL: base64 */
    const char *b64;
    char name[240]; /* as sent: sanitized, with the extension of its type */
    int docx;
} ik_file;

static int ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && sb_strcaseeq(s + n - m, suffix);
}

/* files[i] -> what to upload. -1 with err for what iinked cannot take. */
static int file_of(const cJSON *a, int i, ik_file *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    const cJSON *x = cJSON_GetArrayItem(sb_jget(a, "files"), i);
    if (!cJSON_IsObject(x)) {
        snprintf(err, errlen, "files[%d] is missing", i);
        return -1;
    }
    const char *mime = sb_jstr(x, "mime_type");
    if (!mime) mime = "application/pdf";
    if (strcmp(mime, IK_DOCX_MIME) == 0) {
        f->docx = 1;
    } else if (strcmp(mime, "application/pdf") != 0) {
        snprintf(err, errlen,
                 "files[%d].mime_type: iinked Sign takes PDF and Word (DOCX) files, not %s; "
                 "convert the file to PDF",
                 i, mime);
        return -1;
    }
    f->url = sb_jstr(x, "url");
    f->b64 = sb_jstr(x, "base64");
    const char *name = sb_jstr(x, "name");
    char from_url[200] = "";
    if (f->url) {
        const char *u = f->url;
        int scheme_ok = strncmp(u, "https://", 8) == 0 || strncmp(u, "http://", 7) == 0;
        for (const char *p = u; *p && scheme_ok; p++)
            if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '"' || *p == '\\') scheme_ok = 0;
        if (!scheme_ok) {
            snprintf(err, errlen,
                     "files[%d].url must be an https URL without spaces (or send the file as "
                     "base64 with a name)",
                     i);
            return -1;
        }
        /* the last path segment names the file when no name is given */
        const char *path = strchr(strstr(u, "//") + 2, '/');
        if (path) {
            size_t pl = strcspn(path, "?#");
            const char *seg = path + pl;
            while (seg > path && seg[-1] != '/')
                seg--;
            size_t sl = (size_t)(path + pl - seg);
            if (sl && sl < sizeof from_url)
                snprintf(from_url, sizeof from_url, "%.*s", (int)sl, seg);
        }
    } else if (!f->b64 || !name) {
        snprintf(err, errlen, "files[%d] needs url, or base64 with name", i);
        return -1;
    }
    if (!name || !name[0]) name = from_url[0] ? from_url : NULL;
    char base[200];
    if (name)
        snprintf(base, sizeof base, "%s", name);
    else
        snprintf(base, sizeof base, "document-%d", i + 1);
    /* never a quote, backslash, slash or control character in a multipart header */
    for (char *p = base; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\' || *p == '/')
            *p = '_';
    const char *ext = f->docx ? ".docx" : ".pdf";
    snprintf(f->name, sizeof f->name, "%s%s", base, ends_with_ci(base, ext) ? "" : ext);
    return 0;
}

/* Decode a base64 file and check its size and type. malloc'd bytes, or NULL with err. */
static unsigned char *file_bytes(const ik_file *f, int i, size_t *len, char *err, size_t errlen)
{
    char e[200] = "";
    unsigned char *d = sb_decode_base64_arg(f->b64, IK_MAX_FILE, len, e, sizeof e);
    if (!d) {
        snprintf(err, errlen, "files[%d].base64: %s (iinked Sign: at most 25 MB per file)", i, e);
        return NULL;
    }
    if (!magic_ok(d, *len, f->docx)) {
        free(d);
        snprintf(err, errlen,
                 "files[%d] (%.100s) is not a %s file: its bytes do not start like one", i, f->name,
                 f->docx ? "DOCX" : "PDF");
        return NULL;
    }
    return d;
}

/* POST /files/upload?type=temporary with one file part, raw bytes (reference B2: unused
 * temporary uploads are deleted after 24 h, so a send that fails later leaves nothing behind). */
static int upload_req(const sb_pctx *c, sb_preq *r, const ik_file *f, const void *data, size_t len)
{
    sb_preq_init(r, "POST", 0);
    if (sb_preq_url(r, c->base_url, "/files/upload") < 0 ||
        sb_preq_query(r, "type", "temporary") < 0 || sb_preq_multipart_begin(r) < 0)
        return -1;
    const char *ctype = f->docx ? "application/octet-stream" : "application/pdf";
    int ascii = 1;
    for (const char *p = f->name; *p; p++)
        ascii &= (unsigned char)*p < 0x80;
    int rc;
    if (ascii) {
        rc = sb_preq_multipart_file(r, "file", f->name, ctype, data, len);
    } else {
        /* UTF-8 names go in filename* (RFC 5987), with an ASCII fallback (reference B2) */
        char fallback[sizeof f->name];
        size_t o = 0;
        for (const char *p = f->name; *p && o + 1 < sizeof fallback; p++)
            if ((unsigned char)*p < 0x80)
                fallback[o++] = *p;
            else if (((unsigned char)*p & 0xC0) != 0x80)
                fallback[o++] = '_';
        fallback[o] = '\0';
        sb_buf enc;
        sb_buf_init(&enc, 4096);
        rc = sb_pct_encode(f->name, &enc) == 0 &&
                     sb_buf_printf(
                         &r->body,
                         "--%s\r\nContent-Disposition: form-data; name=\"file\"; "
                         "filename=\"%s\"; filename*=UTF-8''%s\r\nContent-Type: %s\r\n\r\n",
                         r->boundary, fallback, enc.data, ctype) == 0 &&
                     sb_buf_append(&r->body, data, len) == 0 && sb_buf_puts(&r->body, "\r\n") == 0
                 ? 0
                 : -1;
        sb_buf_free(&enc);
    }
    if (rc == 0) rc = sb_preq_multipart_end(r);
    return rc;
}

/* The request for files[i]: fetch its URL (no credential, capped), or upload its bytes. */
static int file_step(const sb_pctx *c, const cJSON *a, sb_pstep *step, int i, sb_preq *r, char *err,
                     size_t errlen)
{
    ik_file f;
    if (file_of(a, i, &f, err, errlen) < 0) return -1;
    set_item(step->scratch, "i", cJSON_CreateNumber(i));
    set_item(step->scratch, "name", cJSON_CreateString(f.name));
    if (f.url) {
        set_item(step->scratch, "phase", cJSON_CreateString("fetch"));
        sb_preq_init(r, "GET", 1);
        r->no_auth = 1;
        r->max_response = IK_MAX_FILE;
        return sb_buf_puts(&r->url, f.url) == 0 ? 0 : -1;
    }
    size_t len = 0;
    unsigned char *d = file_bytes(&f, i, &len, err, errlen);
    if (!d) return -1;
    set_item(step->scratch, "phase", cJSON_CreateString("upload"));
    int rc = upload_req(c, r, &f, d, len);
    free(d);
    return rc;
}

static int send_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                      size_t errlen)
{
    /* everything is checked before the first byte goes out */
    cJSON *b = add_body(c, a, 0, err, errlen);
    if (!b) return -1;
    cJSON_Delete(b);
    int n = cJSON_GetArraySize(sb_jget(a, "files"));
    if (n <= 0 || n > 10) {
        snprintf(err, errlen, "files: give 1 to 10 files");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        ik_file f;
        if (file_of(a, i, &f, err, errlen) < 0) return -1;
        if (f.url) continue;
        size_t len;
        unsigned char *d = file_bytes(&f, i, &len, err, errlen);
        if (!d) return -1;
        free(d);
    }
    cJSON_AddItemToObjectCS(step->scratch, "files", cJSON_CreateArray());
    return file_step(c, a, step, 0, r, err, errlen);
}

/* The fileId of an upload answer: an array of file objects (one per part) or one object. */
static const char *uploaded_id(const cJSON *j)
{
    if (cJSON_IsArray(j)) return sb_jstr(cJSON_GetArrayItem(j, 0), "fileId");
    const cJSON *items = sb_jget(j, "items");
    if (cJSON_IsArray(items)) return sb_jstr(cJSON_GetArrayItem(items, 0), "fileId");
    return sb_jstr(j, "fileId");
}

static int send_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                    cJSON **out, char *err, size_t errlen)
{
    const char *phase = sb_jstr(step->scratch, "phase");
    int i = (int)sb_jnum(step->scratch, "i", 0);
    if (is_state(phase, "fetch")) {
        /* the caller's file arrived: upload it */
        ik_file f;
        if (file_of(a, i, &f, err, errlen) < 0) return -1;
        if (!r->len || r->len > IK_MAX_FILE || !magic_ok(r->body, r->len, f.docx)) {
            snprintf(err, errlen,
                     "files[%d].url did not give a %s file (%zu bytes%s); check the link, or send "
                     "the file as base64",
                     i, f.docx ? "DOCX" : "PDF", r->len,
                     r->len > IK_MAX_FILE ? ", over iinked's 25 MB" : "");
            return -1;
        }
        set_item(step->scratch, "phase", cJSON_CreateString("upload"));
        return upload_req(c, &step->next, &f, r->body, r->len) == 0 ? SB_PMAP_NEXT : -1;
    }
    if (is_state(phase, "upload")) {
        const char *fid = uploaded_id(r->json);
        if (!fid) {
            snprintf(err, errlen, "iinked Sign's files/upload answer has no fileId");
            return -1;
        }
        cJSON *files = cJSON_GetObjectItemCaseSensitive(step->scratch, "files");
        if (!cJSON_IsArray(files)) return -1;
        cJSON *doc = cJSON_CreateObject();
        sb_jput_str(doc, "fileId", fid);
        const char *nm = sb_jstr(step->scratch, "name");
        if (nm) sb_jput_str(doc, "fileName", nm);
        cJSON_AddItemToArray(files, doc);
        int n = cJSON_GetArraySize(sb_jget(a, "files"));
        if (i + 1 < n)
            return file_step(c, a, step, i + 1, &step->next, err, errlen) == 0 ? SB_PMAP_NEXT : -1;
        /* every file is up: create the package, sent at once (state open) */
        cJSON *b = add_body(c, a, 0, err, errlen);
        if (!b) return -1;
        sb_jput_str(b, "type",
                                sb_jbool(a, "signing_order", 0) ? "Sequential" : "concurrent");
        cJSON_AddItemToObject(
            b, "documents",
            cJSON_Duplicate(sb_jget(step->scratch, "files"), 1));
        set_item(step->scratch, "phase", cJSON_CreateString("add"));
        sb_preq_init(&step->next, "POST", 0);
        if (sb_preq_url(&step->next, c->base_url, "/packages/add") < 0) {
            cJSON_Delete(b);
            return -1;
        }
        return sb_preq_json(&step->next, b) == 0 ? SB_PMAP_NEXT : -1;
    }
    return sent_map(c, a, r, out, err, errlen);
}

/* ---- send_from_template ---------------------------------------------------------------------- */

static int tsend_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                       size_t errlen)
{
    (void)step;
    const char *tid = sb_jstr(a, "template_id");
    if (bad_id(tid, "template_id", "template", err, errlen) < 0) return -1;
    if (cJSON_GetArraySize(sb_jget(a, "prefill")) > 0) {
        snprintf(err, errlen,
                 "prefill: iinked Sign's API cannot prefill template fields when a package is "
                 "created; send without prefill (signers fill the fields)");
        return -1;
    }
    cJSON *b = add_body(c, a, 1, err, errlen);
    if (!b) return -1;
    sb_jput_str(b, "templateId", tid);
    sb_preq_init(r, "POST", 0);
    if (sb_preq_url(r, c->base_url, "/packages/add") < 0) {
        cJSON_Delete(b);
        return -1;
    }
    return sb_preq_json(r, b);
}

static int tsend_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                     cJSON **out, char *err, size_t errlen)
{
    (void)step;
    return sent_map(c, a, r, out, err, errlen);
}

/* ---- change_signer: read the package (signer ids), then packages/update ---------------------- */

static int change_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                        size_t errlen)
{
    (void)step;
    const char *id = sb_jstr(a, "document_id");
    if (bad_id(id, "document_id", "package", err, errlen) < 0) return -1;
    char first[256], last[256];
    const char *nn = sb_jstr(a, "new_name");
    if (!nn || split_name(nn, first, sizeof first, last, sizeof last) < 0) {
        snprintf(err, errlen,
                 "new_name must hold a first and a last name (iinked Sign requires both): got "
                 "\"%.80s\"",
                 nn ? nn : "");
        return -1;
    }
    sb_preq_init(r, "GET", 1);
    return package_url(r, c, id, NULL);
}

static int change_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                      cJSON **out, char *err, size_t errlen)
{
    const char *id = sb_jstr(a, "document_id"), *old = sb_jstr(a, "old_email");
    const char *ne = sb_jstr(a, "new_email"), *nn = sb_jstr(a, "new_name");
    const cJSON *pkg = package_of(r->json);
    if (step->step == 0) {
        const char *state = sb_jstr(pkg, "state");
        if (closed_state(state)) {
            snprintf(err, errlen,
                     "package %s is %s: only a package still out for signature (or a draft) can "
                     "change signers",
                     id, state);
            return -1;
        }
        int at = -1;
        const cJSON *s = signer_by_email(pkg, old, &at);
        if (!s) {
            char list[400];
            signer_emails(pkg, list, sizeof list);
            snprintf(err, errlen,
                     "package %s has no signer with email %s (its signers: %s); check with "
                     "get_document",
                     id, old, list);
            return -1;
        }
        if (sb_jbool(s, "isExecuted", 0) || is_state(sb_jstr(s, "state"), "signed")) {
            snprintf(err, errlen,
                     "%s has already signed package %s: a signer who signed cannot be "
                     "changed",
                     old, id);
            return -1;
        }
        int dup = -1;
        const cJSON *other = signer_by_email(pkg, ne, &dup);
        if (other && dup != at) {
            snprintf(err, errlen, "%s is already another signer of package %s", ne, id);
            return -1;
        }
        const char *sid = sb_jstr(s, "signerId");
        if (!sid || !sb_id_ok(sid)) {
            snprintf(err, errlen, "iinked Sign's package %s gives the signer no usable signerId",
                     id);
            return -1;
        }
        char first[256], last[256];
        if (split_name(nn, first, sizeof first, last, sizeof last) < 0) return -1;
        cJSON *b = cJSON_CreateObject();
        sb_jput_str(b, "packageId", id);
        cJSON *arr = sb_jput_arr(b, "signers");
        int i = 0;
        const cJSON *x;
        cJSON_ArrayForEach(x, sb_jget(pkg, "signers"))
        {
            /* a sent package takes the changed signer alone (by signerId); a draft gets its
             * whole list back, so a replace leaves the other signers as they are */
            if (i == at || draft_state(state)) {
                cJSON *p = i == at
                               ? person_json(first, last, ne)
                               : person_json(sb_jstr(x, "firstName") ? sb_jstr(x, "firstName") : "",
                                             sb_jstr(x, "lastName") ? sb_jstr(x, "lastName") : "",
                                             sb_jstr(x, "email") ? sb_jstr(x, "email") : "");
                sb_jput_str(p, "signerId",
                                        sb_jstr(x, "signerId") ? sb_jstr(x, "signerId") : "");
                if (i == at && !sb_strcaseeq(ne, old))
                    sb_jput_null(p, "mobileNumber"); /* a new person: not the old phone */
                else if (sb_jstr(x, "mobileNumber"))
                    sb_jput_str(p, "mobileNumber", sb_jstr(x, "mobileNumber"));
                cJSON_AddItemToArray(arr, p);
            }
            i++;
        }
        sb_preq_init(&step->next, "POST", 0);
        if (sb_preq_url(&step->next, c->base_url, "/packages/update") < 0) {
            cJSON_Delete(b);
            return -1;
        }
        return sb_preq_json(&step->next, b) == 0 ? SB_PMAP_NEXT : -1;
    }
    char msg[600];
    snprintf(msg, sizeof msg, "iinked Sign replaced signer %s with %s <%s> on package %s%s.", old,
             nn, ne, id,
             sb_jstr(a, "reason") ? " (iinked Sign records no reason for a signer change)" : "");
    cJSON *o = action_result(c, id, msg);
    const cJSON *s = signer_by_email(pkg, ne, NULL);
    if (s) {
        cJSON_AddItemToObjectCS(o, "signer", map_signer(s, pkg));
    }
    *out = o;
    return 0;
}

/* ---- extend_expiry: packages/update {timeSignBy} --------------------------------------------- */

static int extend_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                        size_t errlen)
{
    const char *id = sb_jstr(a, "document_id");
    if (bad_id(id, "document_id", "package", err, errlen) < 0) return -1;
    int64_t now = (int64_t)sb_wall_ms(), when;
    const char *at = sb_jstr(a, "expires_at");
    double days = sb_jnum(a, "days", -1);
    if (at) {
        if (sb_parse_rfc3339(at, &when) < 0) {
            snprintf(err, errlen, "expires_at must be an RFC 3339 date-time");
            return -1;
        }
        if (when <= now) {
            snprintf(err, errlen, "expires_at (%s) is not in the future", at);
            return -1;
        }
    } else if (days >= 1) {
        when = now + (int64_t)days * 86400000;
    } else {
        snprintf(err, errlen, "give expires_at or days");
        return -1;
    }
    char ts[40];
    sb_rfc3339((uint64_t)when, ts, sizeof ts);
    sb_jput_str(step->scratch, "timeSignBy", ts);
    sb_preq_init(r, "POST", 0);
    if (sb_preq_url(r, c->base_url, "/packages/update") < 0) return -1;
    cJSON *b = cJSON_CreateObject();
    sb_jput_str(b, "packageId", id);
    sb_jput_str(b, "timeSignBy", ts);
    return sb_preq_json(r, b);
}

static int extend_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                      cJSON **out, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    const char *id = sb_jstr(a, "document_id");
    const char *got = sb_jstr(package_of(r->json), "timeSignBy");
    const char *ts = got ? got : sb_jstr(step->scratch, "timeSignBy");
    cJSON *o = action_result(c, id, "");
    sb_jadd_iso(o, "expires_at", ts);
    char msg[300];
    const char *e = sb_jstr(o, "expires_at");
    snprintf(msg, sizeof msg, "iinked Sign moved the sign-by date of package %s to %s.", id,
             e ? e : "the requested time");
    cJSON_ReplaceItemInObjectCaseSensitive(o, "message", cJSON_CreateString(msg));
    *out = o;
    return 0;
}

/* ---- get_signing_link: read the package (signer id by email), then link/sign ----------------- */

static int link_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                      size_t errlen)
{
    (void)step;
    const char *id = sb_jstr(a, "document_id");
    if (bad_id(id, "document_id", "package", err, errlen) < 0) return -1;
    sb_preq_init(r, "GET", 1);
    return package_url(r, c, id, NULL);
}

static int link_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                    cJSON **out, char *err, size_t errlen)
{
    const char *id = sb_jstr(a, "document_id"), *email = sb_jstr(a, "signer_email");
    if (step->step == 0) {
        const cJSON *pkg = package_of(r->json);
        const char *state = sb_jstr(pkg, "state");
        if (state && strcmp(state, "open") != 0) {
            snprintf(err, errlen,
                     "package %s is %s: iinked Sign gives signing links only for packages out "
                     "for signature (open)",
                     id, state);
            return -1;
        }
        const cJSON *s = signer_by_email(pkg, email, NULL);
        if (!s) {
            char list[400];
            signer_emails(pkg, list, sizeof list);
            snprintf(err, errlen,
                     "package %s has no signer with email %s (its signers: %s); check with "
                     "get_document",
                     id, email, list);
            return -1;
        }
        if (sb_jbool(s, "isExecuted", 0) || is_state(sb_jstr(s, "state"), "signed")) {
            snprintf(err, errlen, "%s has already signed package %s", email, id);
            return -1;
        }
        const char *sid = sb_jstr(s, "signerId");
        if (!sid || !sb_id_ok(sid)) {
            snprintf(err, errlen, "iinked Sign's package %s gives the signer no usable signerId",
                     id);
            return -1;
        }
        sb_preq_init(&step->next, "POST", 0); /* each call mints a new link */
        if (package_url(&step->next, c, id, "/link/sign/") < 0 ||
            sb_pct_encode(sid, &step->next.url) < 0)
            return -1;
        return SB_PMAP_NEXT;
    }
    const char *link = sb_jstr(r->json, "link");
    if (!link || (strncmp(link, "https://", 8) != 0 && strncmp(link, "http://", 7) != 0)) {
        snprintf(err, errlen, "iinked Sign's link/sign answer has no link URL");
        return -1;
    }
    cJSON *o = cJSON_CreateObject();
    sb_jput_str(o, "document_id", id);
    sb_jput_str(o, "signer_email", email);
    sb_jput_str(o, "url", link);
    sb_jadd_iso(o, "expires_at", sb_jstr(r->json, "timeExpires"));
    sb_jput_str(o, "provider", c->provider);
    sb_jput_str(o, "region", c->region);
    *out = o;
    return 0;
}

/* ---- download_document: packages/{id}/download?type=executed|cac ----------------------------- */

static int download_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                          size_t errlen)
{
    (void)step;
    const char *id = sb_jstr(a, "document_id");
    if (bad_id(id, "document_id", "package", err, errlen) < 0) return -1;
    const char *kind = sb_jstr(a, "kind");
    int audit = kind && strcmp(kind, "audit_trail") == 0;
    sb_preq_init(r, "GET", 1);
    r->max_response = IK_MAX_DOWNLOAD;
    if (package_url(r, c, id, "/download") < 0 ||
        sb_preq_query(r, "type", audit ? "cac" : "executed") < 0)
        return -1;
    return sb_preq_header(r, "Accept: application/pdf");
}

static int download_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                        cJSON **out, char *err, size_t errlen)
{
    const char *id = sb_jstr(a, "document_id"), *kind = sb_jstr(a, "kind");
    int audit = kind && strcmp(kind, "audit_trail") == 0;
    if (!r->len || !magic_ok(r->body, r->len, 0)) {
        snprintf(err, errlen, "iinked Sign's download of package %s is not a PDF (%zu bytes)", id,
                 r->len);
        return -1;
    }
    step->blob = r->body;
    step->blob_len = r->len;
    sb_strlcpy(step->mime, "application/pdf", sizeof step->mime);
    snprintf(step->filename, sizeof step->filename, "%s%s.pdf", id, audit ? "-certificate" : "");
    cJSON *o = cJSON_CreateObject();
    sb_jput_str(o, "document_id", id);
    sb_jput_str(o, "kind", audit ? "audit_trail" : "document");
    sb_jput_str(o, "file_name", step->filename);
    sb_jput_str(o, "mime_type", step->mime);
    sb_jput_str(o, "provider", c->provider);
    sb_jput_str(o, "region", c->region);
    *out = o;
    return SB_PMAP_BLOB;
}

/* ---- templates: templates/list (list_templates; get_template pages through it) --------------- */

static cJSON *role_json(const cJSON *p, const char *kind, int index)
{
    const char *role = sb_jstr(p, "templateRole");
    char fallback[32];
    snprintf(fallback, sizeof fallback, "%s %d", strcmp(kind, "cc") == 0 ? "CC" : "Signer",
             index + 1);
    cJSON *x = cJSON_CreateObject();
    sb_jput_str(x, "name", role ? role : fallback);
    if (strcmp(kind, "signer") == 0) {
        const cJSON *idx = sb_jget(p, "index");
        sb_jadd_int_or_null(x, "order",
                            cJSON_IsNumber(idx) && idx->valuedouble >= 0 ? idx->valuedouble + 1
                                                                         : index + 1);
    } else {
        sb_jput_null(x, "order");
    }
    char name[300];
    const char *fn = sb_jstr(p, "firstName"), *ln = sb_jstr(p, "lastName");
    snprintf(name, sizeof name, "%s%s%s", fn ? fn : "", fn && ln ? " " : "", ln ? ln : "");
    sb_jadd_str(x, "default_name", name[0] ? name : NULL);
    sb_jadd_str(x, "default_email", sb_jstr(p, "email"));
    sb_jput_str(x, "kind", kind);
    return x;
}

static cJSON *map_template(const cJSON *t)
{
    const char *id = sb_jstr(t, "templateId");
    if (!id) return NULL;
    cJSON *o = cJSON_CreateObject();
    sb_jput_str(o, "id", id);
    sb_jadd_str(o, "title", sb_jstr(t, "name"));
    sb_jadd_str(o, "description", sb_jstr(t, "description"));
    cJSON *roles = sb_jput_arr(o, "roles");
    int i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, sb_jget(t, "signers"))
    {
        if (cJSON_IsObject(p)) cJSON_AddItemToArray(roles, role_json(p, "signer", i++));
    }
    i = 0;
    cJSON_ArrayForEach(p, sb_jget(t, "recipients"))
    {
        if (cJSON_IsObject(p)) cJSON_AddItemToArray(roles, role_json(p, "cc", i++));
    }
    sb_jadd_iso(o, "created_at", sb_jstr(t, "timeCreated"));
    sb_jadd_iso(o, "updated_at", sb_jstr(t, "timeUpdated"));
    return o;
}

static int tlist_req(const sb_pctx *c, sb_preq *r, long take, long skip, const char *search)
{
    sb_preq_init(r, "POST", 1); /* a read despite the method */
    if (sb_preq_url(r, c->base_url, "/templates/list") < 0) return -1;
    cJSON *b = cJSON_CreateObject();
    sb_jput_num(b, "take", (double)take);
    sb_jput_num(b, "skip", (double)skip);
    if (search) sb_jput_str(b, "search", search);
    return sb_preq_json(r, b);
}

static int tlist_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                       size_t errlen)
{
    (void)step;
    (void)err;
    (void)errlen;
    long page = (long)sb_jnum(a, "page", 1), size = (long)sb_jnum(a, "page_size", 20);
    return tlist_req(c, r, size, (page - 1) * size, sb_jstr(a, "query"));
}

static int tlist_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                     cJSON **out, char *err, size_t errlen)
{
    (void)step;
    const cJSON *res = sb_jget(r->json, "items");
    if (!cJSON_IsArray(res)) {
        snprintf(err, errlen, "iinked Sign's template list has no \"items\" array");
        return -1;
    }
    cJSON *items = cJSON_CreateArray();
    const cJSON *t;
    cJSON_ArrayForEach(t, res)
    {
        cJSON *m = map_template(t);
        if (m) cJSON_AddItemToArray(items, m);
    }
    long page = (long)sb_jnum(a, "page", 1), size = (long)sb_jnum(a, "page_size", 20);
    long long total = (long long)sb_jnum(r->json, "total", -1);
    long long skip = (long long)sb_jnum(r->json, "skip", (double)((page - 1) * size));
    int has_next =
        total >= 0 ? skip + cJSON_GetArraySize(res) < total : cJSON_GetArraySize(res) >= size;
    *out = sb_list_result(c, "templates", items, page, size, total, has_next);
    return 0;
}

static int tget_build(const sb_pctx *c, const cJSON *a, sb_pstep *step, sb_preq *r, char *err,
                      size_t errlen)
{
    (void)step;
    if (bad_id(sb_jstr(a, "template_id"), "template_id", "template", err, errlen) < 0) return -1;
    return tlist_req(c, r, IK_TPL_PAGE, 0, NULL);
}

static int tget_map(const sb_pctx *c, const cJSON *a, const sb_presp *r, sb_pstep *step,
                    cJSON **out, char *err, size_t errlen)
{
    const char *id = sb_jstr(a, "template_id");
    const cJSON *res = sb_jget(r->json, "items");
    if (!cJSON_IsArray(res)) {
        snprintf(err, errlen, "iinked Sign's template list has no \"items\" array");
        return -1;
    }
    const cJSON *t;
    cJSON_ArrayForEach(t, res)
    {
        const char *tid = sb_jstr(t, "templateId");
        if (!tid || !sb_strcaseeq(tid, id)) continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObjectCS(o, "template", map_template(t));
        sb_jput_str(o, "provider", c->provider);
        sb_jput_str(o, "region", c->region);
        *out = o;
        return 0;
    }
    long long skip = (long long)step->step * IK_TPL_PAGE, n = cJSON_GetArraySize(res);
    long long total = (long long)sb_jnum(r->json, "total", -1);
    int more = total >= 0 ? skip + n < total : n >= IK_TPL_PAGE;
    if (more && n > 0 && step->step + 1 < IK_TPL_PAGES) {
        if (tlist_req(c, &step->next, IK_TPL_PAGE, (long)(skip + IK_TPL_PAGE), NULL) < 0) return -1;
        return SB_PMAP_NEXT;
    }
    snprintf(err, errlen,
             "no template %s among the %lld templates this key can see%s; check the id with "
             "list_templates",
             id, skip + n, more ? " (signbridge searched the first 1,000)" : "");
    return -1;
}

static const sb_ptool ik_tools[] = {
    {"list_documents", list_build, list_map},
    {"get_document", get_build, get_map},
    {"revoke_document", revoke_build, revoke_map},
    {"send_document", send_build, send_map},
    {"send_from_template", tsend_build, tsend_map},
    {"change_signer", change_build, change_map},
    {"extend_expiry", extend_build, extend_map},
    {"get_signing_link", link_build, link_map},
    {"download_document", download_build, download_map},
    {"list_templates", tlist_build, tlist_map},
    {"get_template", tget_build, tget_map},
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
