/* sbx_dropboxsign: the Dropbox Sign (HelloSign) API v3 emulator of signbridge-sandbox, built from
 * reference/dropbox-sign-api.md and the official OpenAPI description (dropbox-sign-openapi.yaml),
 * never from signbridge's adapter.
 *
 * One region, "global". Under http://HOST/dropboxsign/global:
 *   /v3/...   stands for https://api.hellosign.com/v3      (REST; base_url of accounts())
 *   /app/...  stands for https://app.hellosign.com          (OAuth, signing and details pages)
 *   /s3/...   stands for the short-lived S3 links of files_as_file_url (no auth, they expire)
 *
 * REST endpoints emulated (auth: `Authorization: Basic base64(<api key>:)` or
 * `Authorization: Bearer <OAuth access token>`; nothing else counts as a credential):
 *   GET  /account                      (account_id | email_address of self or a teammate)
 *   PUT  /account                      (callback_url, locale)
 *   POST /account/verify               ({email_address} -> {account:{email_address}} or {})
 *   GET  /api_app/list, GET /api_app/{client_id}
 *   GET  /embedded/sign_url/{signature_id}        (embedded requests only)
 *   GET  /signature_request/list       (account_id incl. "all", page, page_size 1-100, query)
 *   GET  /signature_request/{id}
 *   POST /signature_request/send, /send_with_template, /create_embedded,
 *        /create_embedded_with_template  (JSON, multipart or urlencoded; bracket keys
 *        `signers[0][name]`, `files[0]`/`files[]`, JSON-valued multipart fields as the SDK sends)
 *   POST /signature_request/remind/{id}     ({email_address}; 1 h rule; not embedded)
 *   POST /signature_request/cancel/{id}     (empty 200, queued; canceled ~1 s later; then 410)
 *   POST /signature_request/remove/{id}     (complete/declined only; API key only; then 410)
 *   POST /signature_request/update/{id}     ({signature_id, email_address?, name?, expires_at?})
 *   POST /signature_request/release_hold/{id}
 *   GET  /signature_request/files/{id}      (file_type pdf|zip; 409 for ~1 s after a send)
 *   GET  /signature_request/files_as_file_url/{id} (link under /s3/, no auth, lives 5 min),
 *        /signature_request/files_as_data_uri/{id}
 *   GET  /template/list, /template/{id}, /template/files/{id}, /template/files_as_file_url/{id},
 *        /template/files_as_data_uri/{id}
 *   GET  /team (404 not_found off a team), /team/info, /team/members/{team_id}
 * OAuth (app.hellosign.com stand-in): GET/POST /app/oauth/authorize (HTML form or auto-approve,
 * state required, optional redirect_uri limited to the app's registered and loopback URIs),
 * POST /app/oauth/token (authorization_code: client_id, client_secret, code, state) and
 * POST /app/oauth/token?refresh (grant_type=refresh_token), JSON, multipart or urlencoded bodies,
 * no PKCE. Access tokens live 1 h, codes 60 s (single use); refresh tokens rotate (ASSUMED).
 * Bearer tokens are checked against the operation's OAuth scopes from the spec.
 *
 * Rate limits (per account, 60 s windows): standard 100, high tier 25 (send, send_with_template,
 * create_embedded*, files*, template/files*), test mode 10 (sends with test_mode=1). Every
 * authenticated response carries X-RateLimit-Limit, X-RateLimit-Remaining, X-Ratelimit-Reset.
 *
 * Lifecycle: awaiting_signature -> viewed -> signers sign in order -> complete; declined; expired
 * (expires_at passed: unsigned signatures become "expired"); canceled (asynchronous, then 410
 * deleted); removed (410). on_hold_by_requester until release_hold; has_error (error_file).
 * A send appends a signature page unless form_fields_per_document or text tags are used, and the
 * spec forbids /update on such requests: that rule is enforced.
 *
 * Errors: {"error":{"error_msg","error_name","error_path"?}} with the statuses of the reference
 * (400 bad_request naming the parameter in error_path, 401 unauthorized, 402, 403 forbidden,
 * 404 not_found, 409 conflict, 410 deleted, 429 exceeded_rate). Unknown paths answer 404 before
 * any credential check (as measured live for /v3/oauth/token). 200 bodies carry `warnings` for
 * ignored parameters (unsupported_parameter) and for an unapproved API app's client_id, whose
 * requests are forced into test mode (test_mode_only).
 *
 * ASSUMED (undocumented; the nearest documented behaviour was chosen): the exact error_msg texts;
 * 400 for reminding within the hour, a signed signer, a closed request or a signer whose turn has
 * not come; 409 for a second cancel while one is queued and for sign URLs of signed signatures;
 * 400 for /embedded/sign_url on a non-embedded request; rotating refresh tokens; /remove hides
 * the request from the caller only; canceled requests leave the lists; signers of grouped signers
 * each sign individually.
 *
 * Deliberately not emulated: bulk send and bulk jobs, unclaimed drafts, template create/edit,
 * account create, team management writes, API app writes, fax and fax lines, reports, event
 * callbacks (nothing leaves the sandbox), signer attachments and form-field response data
 * (response_data stays empty), and the contents of uploaded files (a generated PDF stands in).
 * Dropbox Sign has no contacts or audit-trail API and no users API beyond the team's members:
 * those tools have nothing to call here.
 *
 * Memory: allocation failures abort (redis style); every input is bounded before it is stored. */
#include "sandbox/sbx.h"
#include "sandbox/sbx_providers.h"

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/sb_buf.h"
#include "core/sb_util.h"

/* ---- limits and constants ------------------------------------------------------------------ */

#define DBX_REGION "global"
#define DBX_MAX_ACCTS 8
#define DBX_MAX_DOCS 10000
#define DBX_MAX_SIGNERS 40
#define DBX_MAX_CC 25
#define DBX_MAX_FILES 20
#define DBX_MAX_TIDS 5
#define DBX_MAX_TPL_ROLES 4
#define DBX_MAX_CODES 512
#define DBX_MAX_TOKENS 2048
#define DBX_MAX_LINKS 256
#define DBX_MAX_TERMS 16
#define DBX_BODY_MAX (40u * 1024u * 1024u) /* Dropbox Sign's upload cap */
#define DBX_ACCESS_TTL 3600
#define DBX_CODE_TTL_MS 60000u
#define DBX_PREP_MS 1000u   /* files being prepared after a send */
#define DBX_CANCEL_MS 1000u /* queued cancelation */
#define DBX_LINK_TTL 300    /* files_as_file_url lifetime, seconds */
#define DBX_REMIND_GAP 3600

/* OAuth scopes (bit mask). */
enum {
    SC_BASIC_ACCOUNT_INFO = 1u << 0,
    SC_REQUEST_SIGNATURE = 1u << 1,
    SC_ACCOUNT_ACCESS = 1u << 2,
    SC_SIGNATURE_REQUEST_ACCESS = 1u << 3,
    SC_TEMPLATE_ACCESS = 1u << 4,
    SC_TEAM_ACCESS = 1u << 5,
    SC_API_APP_ACCESS = 1u << 6,
    SC_API_KEY_ONLY = 1u << 30 /* route flag: no OAuth access at all */
};
static const struct {
    const char *name;
    unsigned bit;
} dbx_scope_names[] = {{"basic_account_info", SC_BASIC_ACCOUNT_INFO},
                       {"request_signature", SC_REQUEST_SIGNATURE},
                       {"account_access", SC_ACCOUNT_ACCESS},
                       {"signature_request_access", SC_SIGNATURE_REQUEST_ACCESS},
                       {"template_access", SC_TEMPLATE_ACCESS},
                       {"team_access", SC_TEAM_ACCESS},
                       {"api_app_access", SC_API_APP_ACCESS}};

/* Signature status. EXPIRED is set on tick when expires_at passes. */
enum { S_AWAITING, S_SIGNED, S_DECLINED, S_ON_HOLD, S_HOLD_REQ, S_ERROR_FILE, S_EXPIRED };
static const char *const dbx_status_names[] = {
    "awaiting_signature",   "signed",     "declined", "on_hold",
    "on_hold_by_requester", "error_file", "expired"};

enum { D_ACTIVE, D_CANCELED, D_REMOVED };

/* ---- state ----------------------------------------------------------------------------------- */

typedef struct dbx_account {
    char id[41];
    char email[128];
    char name[96];
    char password[32];
    char keys[4][65];
    int nkeys;
    int on_team;
    char role_code[2]; /* "a" admin, "m" member, "d" developer, "" none */
    char callback_url[512];
    char locale[16];
    int api; /* has API keys: listed by accounts() */
} dbx_account;

typedef struct dbx_app {
    char client_id[33];
    char secret[65];
    char name[64];
    char callback_url[256];
    int owner;
    int approved;
    unsigned scopes;
    int64_t created_at;
} dbx_app;

typedef struct dbx_template {
    char id[41];
    int owner;
    uint32_t access; /* accounts that can use it */
    char title[96];
    char message[160];
    char filename[96];
    int64_t updated_at;
    int nroles;
    char roles[DBX_MAX_TPL_ROLES][48];
    int ncc;
    char cc_roles[2][48];
    int ncf;
    char cfields[3][48];
} dbx_template;

typedef struct dbx_signer {
    char sig_id[33];
    char email[256];
    char name[256];
    char role[64];       /* "" = null */
    char group_guid[41]; /* "" = null */
    char decline_reason[128];
    char sms[24];
    int order; /* -1 = null */
    int status;
    int has_pin, has_sms_auth, has_sms_delivery;
    int64_t signed_at, viewed_at, reminded_at; /* 0 = null */
} dbx_signer;

typedef struct dbx_doc {
    char id[41];
    int owner;
    int state;
    int test_mode, is_complete, is_declined, has_error, embedded, ordered, sig_page;
    int64_t created_at, expires_at;                 /* expires_at 0 = none */
    char *title, *subject, *message, *redirect_url; /* subject/message/redirect NULL = null */
    char client_id[33];
    cJSON *metadata;      /* object, owned */
    cJSON *custom_fields; /* array in response form, owned */
    char *meta_text;      /* metadata values for search */
    char **cc;
    int ncc;
    char **files;
    int nfiles;
    char tids[DBX_MAX_TIDS][41];
    int ntids;
    dbx_signer *sg;
    int nsg;
    uint64_t ready_ms, cancel_at_ms, last_step_ms;
    int cancel_pending;
    uint32_t vis;    /* accounts that see it: owner and signers */
    uint32_t hidden; /* accounts that removed their access (/signature_request/remove) */
    char *json;      /* cached SignatureRequestResponse, rebuilt when dirty */
    size_t json_len;
    int dirty;
} dbx_doc;

typedef struct dbx_code {
    char code[48];
    char client_id[33];
    char redirect_uri[512];
    char state[256];
    int acct;
    uint64_t exp_ms;
    int used;
} dbx_code;

typedef struct dbx_token {
    char tok[64];
    char client_id[33];
    int acct;
    unsigned scopes;
    uint64_t exp_ms; /* 0 = no expiry (refresh tokens) */
} dbx_token;

typedef struct dbx_link {
    char tok[48];
    char doc_id[41];
    int is_template;
    int force_download;
    uint64_t exp_ms;
} dbx_link;

typedef struct dbx_state {
    int ready;
    uint64_t seed;
    sbx_rng rng; /* ids created at run time: deterministic per seed and request order */
    char origin[200];
    char base[256]; /* origin + /dropboxsign/global */
    dbx_account accts[DBX_MAX_ACCTS];
    int nacct;
    char team_id[41];
    char team_name[64];
    char invited[2][96];
    dbx_app apps[2];
    int napps;
    dbx_template *tpls;
    int ntpl;
    dbx_doc **docs;
    size_t ndocs, capdocs;
    dbx_code codes[DBX_MAX_CODES];
    int ncodes;
    dbx_token access[DBX_MAX_TOKENS];
    int naccess;
    dbx_token refresh[DBX_MAX_TOKENS];
    int nrefresh;
    dbx_link links[DBX_MAX_LINKS];
    int nlinks;
} dbx_state;

static dbx_state g_dbx;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER; /* guards g_dbx */

/* ---- small helpers -----------------------------------------------------------------------------
 */

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) abort();
    return p;
}

static void *xcalloc(size_t n, size_t m)
{
    void *p = calloc(n ? n : 1, m ? m : 1);
    if (!p) abort();
    return p;
}

static char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

static void xappend(sb_buf *b, const char *s)
{
    if (sb_buf_puts(b, s) != 0) abort();
}

static void xappendn(sb_buf *b, const char *s, size_t n)
{
    if (sb_buf_append(b, s, n) != 0) abort();
}

static int starts_with(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static int ci_starts_with(const char *s, const char *p)
{
    return strncasecmp(s, p, strlen(p)) == 0;
}

/* 1 if s looks like an e-mail address: printable ASCII, one '@', a dot in the domain. */
static int email_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 3 || n > 254) return 0;
    const char *at = strchr(s, '@');
    if (!at || at == s || strchr(at + 1, '@')) return 0;
    const char *dot = strrchr(at + 1, '.');
    if (!dot || dot == at + 1 || dot[1] == '\0') return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '(' || c == ')' || c == ',' ||
            c == ';' || c == ':' || c == '\\' || c == '"' || c == '[' || c == ']')
            return 0;
    }
    return 1;
}

static int url_ok(const char *s)
{
    size_t n = strlen(s);
    if (n > 2000) return 0;
    if (!ci_starts_with(s, "http://") && !ci_starts_with(s, "https://")) return 0;
    const char *h = strstr(s, "://") + 3;
    if (!*h || *h == '/') return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f) return 0;
    return 1;
}

static void rand_hex(dbx_state *st, size_t nbytes, char *out)
{
    sbx_rng_hex(&st->rng, nbytes, out);
}

static uint32_t bit(int acct)
{
    return acct >= 0 && acct < 32 ? (1u << acct) : 0;
}

/* URL-encode s (RFC 3986 unreserved kept) into b. */
static void url_encode_append(sb_buf *b, const char *s)
{
    static const char hexd[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            xappendn(b, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hexd[c >> 4], hexd[c & 15]};
            xappendn(b, e, 3);
        }
    }
}

/* HTML-escape s (any length) onto b. */
static void html_append(sb_buf *b, const char *s)
{
    for (; *s; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            break;
        }
        if (rep)
            xappend(b, rep);
        else
            xappendn(b, s, 1);
    }
}

/* ---- JSON helpers ------------------------------------------------------------------------------
 */

static cJSON *jget(const cJSON *o, const char *k)
{
    return o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
}

static void jstr_or_null(cJSON *o, const char *k, const char *v)
{
    if (v && *v)
        cJSON_AddStringToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

static void jint_or_null(cJSON *o, const char *k, int64_t v)
{
    if (v)
        cJSON_AddNumberToObject(o, k, (double)v);
    else
        cJSON_AddNullToObject(o, k);
}

/* Parameter accessors over the merged request parameters (JSON body, or bracket-keyed form and
 * multipart fields turned into the same JSON shape). Each returns 1 present, 0 absent or null,
 * -1 present with the wrong type. */
static int p_str(const cJSON *o, const char *k, const char **out)
{
    const cJSON *v = jget(o, k);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v)) return -1;
    *out = v->valuestring;
    return 1;
}

static int p_bool(const cJSON *o, const char *k, int *out)
{
    const cJSON *v = jget(o, k);
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsBool(v)) {
        *out = cJSON_IsTrue(v);
        return 1;
    }
    if (cJSON_IsNumber(v) && (v->valuedouble == 0 || v->valuedouble == 1)) {
        *out = v->valuedouble == 1;
        return 1;
    }
    if (cJSON_IsString(v)) {
        const char *s = v->valuestring;
        if (!strcmp(s, "1") || !strcasecmp(s, "true")) {
            *out = 1;
            return 1;
        }
        if (!strcmp(s, "0") || !strcasecmp(s, "false") || !*s) {
            *out = 0;
            return 1;
        }
    }
    return -1;
}

static int p_int(const cJSON *o, const char *k, int64_t *out)
{
    const cJSON *v = jget(o, k);
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d != d || d < -9e15 || d > 9e15 || d != (double)(int64_t)d) return -1;
        *out = (int64_t)d;
        return 1;
    }
    if (cJSON_IsString(v)) {
        if (!*v->valuestring) return 0;
        return sb_parse_i64(v->valuestring, INT64_MIN / 2, INT64_MAX / 2, out) == 0 ? 1 : -1;
    }
    return -1;
}

/* ---- response helpers -------------------------------------------------------------------------
 */

static const char *err_name_for(int status)
{
    switch (status) {
    case 400:
        return "bad_request";
    case 401:
        return "unauthorized";
    case 402:
        return "payment_required";
    case 403:
        return "forbidden";
    case 404:
        return "not_found";
    case 405:
        return "method_not_supported";
    case 409:
        return "conflict";
    case 410:
        return "deleted";
    case 422:
        return "unprocessable_entity";
    case 429:
        return "exceeded_rate";
    case 503:
        return "maintenance";
    default:
        return status >= 500 ? "unknown" : "bad_request";
    }
}

/* {"error":{"error_msg","error_name","error_path"?}} */
static void dbx_err(sbx_resp *resp, int status, const char *name, const char *msg, const char *path)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(e, "error_msg", msg);
    if (path && *path) cJSON_AddStringToObject(e, "error_path", path);
    cJSON_AddStringToObject(e, "error_name", name ? name : err_name_for(status));
    sbx_resp_json(resp, status, root);
}

static void bad_request(sbx_resp *resp, const char *msg, const char *path)
{
    dbx_err(resp, 400, "bad_request", msg, path);
}

static void not_found(sbx_resp *resp)
{
    dbx_err(resp, 404, "not_found", "Not found.", NULL);
}

static void deleted(sbx_resp *resp)
{
    dbx_err(resp, 410, "deleted", "This resource has been deleted.", NULL);
}

/* Start a raw JSON body in resp (we append cached object texts without re-parsing them). */
static sb_buf *raw_begin(sbx_resp *resp)
{
    sb_buf_reset(&resp->body);
    return &resp->body;
}

static void raw_end(sbx_resp *resp, int status)
{
    resp->status = status;
    snprintf(resp->content_type, sizeof resp->content_type, "application/json");
}

static void append_json(sb_buf *b, const cJSON *j)
{
    char *t = cJSON_PrintUnformatted(j);
    if (!t) abort();
    xappend(b, t);
    free(t);
}

/* ---- request parameters: JSON, multipart and urlencoded bodies in one shape -------------------
 */

typedef struct dbx_file {
    char name[128];
    const char *data; /* into the request body */
    size_t len;
} dbx_file;

/* Keys whose plain (bracket-less) form value may carry JSON, as the official SDKs send multipart
 * fields: every non-file parameter JSON-encoded. */
static const char *const dbx_json_keys[] = {"signers",
                                            "grouped_signers",
                                            "cc_email_addresses",
                                            "file_urls",
                                            "template_ids",
                                            "ccs",
                                            "custom_fields",
                                            "metadata",
                                            "signing_options",
                                            "field_options",
                                            "attachments",
                                            "form_fields_per_document",
                                            "form_field_groups",
                                            "form_field_rules",
                                            "signer_experience",
                                            NULL};

static int is_json_key(const char *k)
{
    for (int i = 0; dbx_json_keys[i]; i++)
        if (!strcmp(dbx_json_keys[i], k)) return 1;
    return 0;
}

/* Put "a[b][0][c]" = val into root as nested objects ("[]" appends). Arrays are made later. */
static void form_put(cJSON *root, const char *key, const char *val, size_t vlen)
{
    char segs[6][72];
    int nseg = 0;
    size_t kl = strlen(key);
    const char *br = memchr(key, '[', kl);
    size_t bl = br ? (size_t)(br - key) : kl;
    if (bl == 0 || bl >= sizeof segs[0]) return;
    memcpy(segs[0], key, bl);
    segs[0][bl] = '\0';
    nseg = 1;
    const char *p = br;
    while (p && *p == '[') {
        const char *e = strchr(p, ']');
        if (!e || nseg >= 6 || (size_t)(e - p - 1) >= sizeof segs[0]) {
            /* malformed: keep the whole key as a plain name */
            nseg = 0;
            break;
        }
        memcpy(segs[nseg], p + 1, (size_t)(e - p - 1));
        segs[nseg][e - p - 1] = '\0';
        nseg++;
        p = e + 1;
    }
    if (nseg == 0 || (p && *p)) {
        if (kl >= sizeof segs[0]) return;
        memcpy(segs[0], key, kl + 1);
        nseg = 1;
    }
    cJSON *node = root;
    for (int i = 0; i < nseg; i++) {
        char autoname[24];
        const char *name = segs[i];
        if (!*name) {
            snprintf(autoname, sizeof autoname, "%d", cJSON_GetArraySize(node));
            name = autoname;
        }
        if (i == nseg - 1) {
            cJSON *v = NULL;
            if (nseg == 1 && is_json_key(name) && vlen && (val[0] == '[' || val[0] == '{'))
                v = cJSON_ParseWithLength(val, vlen);
            if (!v) v = cJSON_CreateString(val);
            if (!v) abort();
            if (cJSON_GetObjectItemCaseSensitive(node, name))
                cJSON_ReplaceItemInObjectCaseSensitive(node, name, v);
            else
                cJSON_AddItemToObject(node, name, v);
        } else {
            cJSON *c = cJSON_GetObjectItemCaseSensitive(node, name);
            if (!cJSON_IsObject(c)) {
                cJSON *n = cJSON_CreateObject();
                if (c)
                    cJSON_ReplaceItemInObjectCaseSensitive(node, name, n);
                else
                    cJSON_AddItemToObject(node, name, n);
                c = n;
            }
            node = c;
        }
    }
}

static int all_index_keys(const cJSON *o)
{
    if (!cJSON_IsObject(o) || !o->child) return 0;
    for (const cJSON *c = o->child; c; c = c->next) {
        int64_t v;
        if (!c->string || sb_parse_i64(c->string, 0, 100000, &v) != 0) return 0;
    }
    return 1;
}

static int cmp_index_items(const void *a, const void *b)
{
    int64_t x = 0, y = 0;
    sb_parse_i64((*(cJSON *const *)a)->string, 0, 100000, &x);
    sb_parse_i64((*(cJSON *const *)b)->string, 0, 100000, &y);
    return x < y ? -1 : x > y;
}

/* Objects keyed 0..n become arrays, in place (metadata keeps its keys). */
static void arrays_from_indexes(cJSON *o, int depth)
{
    if (depth > 8 || !cJSON_IsObject(o)) return;
    for (cJSON *c = o->child; c; c = c->next) {
        if (depth == 0 && c->string && !strcmp(c->string, "metadata")) continue;
        arrays_from_indexes(c, depth + 1);
    }
    if (depth == 0 || !all_index_keys(o)) return;
    int n = cJSON_GetArraySize(o);
    cJSON **items = xcalloc((size_t)n, sizeof *items);
    int i = 0;
    for (cJSON *c = o->child; c && i < n; c = c->next)
        items[i++] = c;
    qsort(items, (size_t)n, sizeof *items, cmp_index_items);
    for (i = 0; i < n; i++) {
        if (!(items[i]->type & cJSON_StringIsConst)) free(items[i]->string);
        items[i]->string = NULL;
        items[i]->type &= ~cJSON_StringIsConst;
        items[i]->prev = i ? items[i - 1] : items[n - 1]; /* cJSON: child->prev is the tail */
        items[i]->next = i + 1 < n ? items[i + 1] : NULL;
    }
    o->child = items[0];
    o->type = (o->type & ~0xFF) | cJSON_Array;
    free(items);
}

/* A single string where a list is expected becomes a one-element list. */
static void wrap_lists(cJSON *p)
{
    static const char *const lists[] = {"file_urls", "cc_email_addresses", "template_ids", NULL};
    for (int i = 0; lists[i]; i++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(p, lists[i]);
        if (cJSON_IsString(v)) {
            cJSON *arr = cJSON_CreateArray();
            cJSON_AddItemToArray(arr, cJSON_CreateString(v->valuestring));
            cJSON_ReplaceItemInObjectCaseSensitive(p, lists[i], arr);
        }
    }
}

typedef struct dbx_params {
    cJSON *p;
    dbx_file files[DBX_MAX_FILES];
    int nfiles;
    int too_many_files;
    int files_in_json;
} dbx_params;

/* Parse the body (and the query string) into pr->p. 0, or -1 with a 400 written. */
static int parse_params(const sbx_req *req, sbx_resp *resp, dbx_params *pr)
{
    memset(pr, 0, sizeof *pr);
    const char *ct = req->content_type ? req->content_type : "";
    if (req->body_len > DBX_BODY_MAX) {
        dbx_err(resp, 413, "bad_request", "Request entity too large.", NULL);
        return -1;
    }
    int is_json =
        ci_starts_with(ct, "application/json") || (!*ct && req->body_len && req->body[0] == '{');
    if (req->body_len == 0) {
        pr->p = cJSON_CreateObject();
    } else if (is_json) {
        pr->p = cJSON_ParseWithLength(req->body, req->body_len);
        if (!cJSON_IsObject(pr->p)) {
            cJSON_Delete(pr->p);
            pr->p = NULL;
            bad_request(resp, "Invalid JSON in request body.", NULL);
            return -1;
        }
        if (jget(pr->p, "files")) pr->files_in_json = 1;
    } else if (ci_starts_with(ct, "multipart/form-data")) {
        sbx_part *parts = NULL;
        size_t np = 0;
        if (sbx_parse_multipart(req->body, req->body_len, ct, &parts, &np) != 0) {
            bad_request(resp, "Malformed multipart/form-data body.", NULL);
            return -1;
        }
        pr->p = cJSON_CreateObject();
        for (size_t i = 0; i < np; i++) {
            const sbx_part *pt = &parts[i];
            if (pt->filename) {
                if (starts_with(pt->name, "file")) { /* files[0], files[], file[0], files */
                    if (pr->nfiles >= DBX_MAX_FILES) {
                        pr->too_many_files = 1;
                        continue;
                    }
                    dbx_file *f = &pr->files[pr->nfiles++];
                    sb_strlcpy(f->name, *pt->filename ? pt->filename : "document.pdf",
                               sizeof f->name);
                    f->data = pt->data;
                    f->len = pt->len;
                }
                continue;
            }
            char *v = xstrndup(pt->data, pt->len);
            form_put(pr->p, pt->name, v, pt->len);
            free(v);
        }
        sbx_parts_free(parts, np);
    } else {
        sbx_kv *kv = NULL;
        size_t n = 0;
        if (sbx_parse_form(req->body, req->body_len, &kv, &n) != 0) {
            bad_request(resp, "Malformed form body.", NULL);
            return -1;
        }
        pr->p = cJSON_CreateObject();
        for (size_t i = 0; i < n; i++)
            form_put(pr->p, kv[i].key, kv[i].val, strlen(kv[i].val));
        sbx_kv_free(kv, n);
    }
    if (!pr->p) abort();
    /* query parameters fill what the body did not say */
    if (req->nquery) {
        cJSON *q = cJSON_CreateObject();
        for (size_t i = 0; i < req->nquery; i++)
            form_put(q, req->query[i].key, req->query[i].val, strlen(req->query[i].val));
        for (cJSON *c = q->child; c;) {
            cJSON *next = c->next;
            if (!jget(pr->p, c->string)) {
                cJSON *d = cJSON_DetachItemViaPointer(q, c);
                cJSON_AddItemToObject(pr->p, d->string, d);
                /* AddItemToObject copied the key; the detached item still owns its old one */
            }
            c = next;
        }
        cJSON_Delete(q);
    }
    arrays_from_indexes(pr->p, 0);
    wrap_lists(pr->p);
    return 0;
}

/* ---- documents ------------------------------------------------------------------------------- */

static void doc_free(dbx_doc *d)
{
    if (!d) return;
    free(d->title);
    free(d->subject);
    free(d->message);
    free(d->redirect_url);
    cJSON_Delete(d->metadata);
    cJSON_Delete(d->custom_fields);
    free(d->meta_text);
    for (int i = 0; i < d->ncc; i++)
        free(d->cc[i]);
    free(d->cc);
    for (int i = 0; i < d->nfiles; i++)
        free(d->files[i]);
    free(d->files);
    free(d->sg);
    free(d->json);
    free(d);
}

static void doc_touch(dbx_doc *d)
{
    d->dirty = 1;
}

static void doc_recompute_vis(dbx_state *st, dbx_doc *d)
{
    uint32_t v = bit(d->owner);
    for (int i = 0; i < d->nsg; i++)
        for (int a = 0; a < st->nacct; a++)
            if (!strcasecmp(d->sg[i].email, st->accts[a].email)) v |= bit(a);
    d->vis = v;
}

static void doc_set_meta_text(dbx_doc *d)
{
    free(d->meta_text);
    d->meta_text = NULL;
    if (d->metadata && d->metadata->child) {
        d->meta_text = cJSON_PrintUnformatted(d->metadata);
        if (!d->meta_text) abort();
    }
}

static dbx_doc *doc_find(dbx_state *st, const char *id)
{
    if (!id || strlen(id) != 40) return NULL;
    for (size_t i = 0; i < st->ndocs; i++)
        if (st->docs[i]->id[0] == id[0] && !strcmp(st->docs[i]->id, id)) return st->docs[i];
    return NULL;
}

static void doc_add(dbx_state *st, dbx_doc *d)
{
    if (st->ndocs == st->capdocs) {
        size_t nc = st->capdocs ? st->capdocs * 2 : 128;
        dbx_doc **nd = realloc(st->docs, nc * sizeof *nd);
        if (!nd) abort();
        st->docs = nd;
        st->capdocs = nc;
    }
    st->docs[st->ndocs++] = d;
    d->dirty = 1;
}

static int doc_expired(const dbx_doc *d)
{
    for (int i = 0; i < d->nsg; i++)
        if (d->sg[i].status == S_EXPIRED) return 1;
    return 0;
}

/* Still open for signing: not complete, declined, expired, errored, canceled or removed. */
static int doc_in_progress(const dbx_doc *d)
{
    return d->state == D_ACTIVE && !d->is_complete && !d->is_declined && !d->has_error &&
           !doc_expired(d);
}

/* Index of the signer whose turn it is (ordered: lowest order still awaiting), or -1. */
static int doc_current(const dbx_doc *d)
{
    int best = -1;
    for (int i = 0; i < d->nsg; i++) {
        if (d->sg[i].status != S_AWAITING) continue;
        if (!d->ordered) return i;
        if (best < 0 || d->sg[i].order < d->sg[best].order) best = i;
    }
    return best;
}

static void doc_update_complete(dbx_doc *d)
{
    int all = d->nsg > 0;
    for (int i = 0; i < d->nsg; i++)
        if (d->sg[i].status != S_SIGNED) all = 0;
    d->is_complete = all;
}

static void sig_new_id(dbx_state *st, dbx_signer *g)
{
    rand_hex(st, 16, g->sig_id);
}

static dbx_signer *doc_add_signer(dbx_doc *d)
{
    dbx_signer *ns = realloc(d->sg, (size_t)(d->nsg + 1) * sizeof *ns);
    if (!ns) abort();
    d->sg = ns;
    dbx_signer *g = &d->sg[d->nsg++];
    memset(g, 0, sizeof *g);
    g->order = -1;
    return g;
}

static void doc_add_cc(dbx_doc *d, const char *email)
{
    char **n = realloc(d->cc, (size_t)(d->ncc + 1) * sizeof *n);
    if (!n) abort();
    d->cc = n;
    d->cc[d->ncc++] = xstrdup(email);
}

static void doc_add_file(dbx_doc *d, const char *name)
{
    char **n = realloc(d->files, (size_t)(d->nfiles + 1) * sizeof *n);
    if (!n) abort();
    d->files = n;
    d->files[d->nfiles++] = xstrdup(name);
}

/* ---- seeded demo data ---------------------------------------------------------------------------
 */

static const char *const first_names[] = {"Avery",  "Jordan", "Priya",  "Mateo", "Hannah",
                                          "Kenji",  "Olivia", "Samuel", "Lucia", "Noah",
                                          "Amara",  "Felix",  "Ingrid", "Omar",  "Chloe",
                                          "Rafael", "Mei",    "Tobias", "Zara",  "Elliot"};
static const char *const last_names[] = {
    "Whitfield", "Okafor",  "Lindqvist", "Moreau", "Castillo",  "Nakamura", "Brennan", "Haddad",
    "Kowalski",  "Fischer", "Delgado",   "Osei",   "Marchetti", "Sato",     "Quinn",   "Varga"};
static const char *const companies[] = {
    "Northwind Traders", "Globex",    "Initech", "Umbrella Health",  "Stark Logistics",
    "Wayne Capital",     "Acme Corp", "Hooli",   "Vandelay Imports", "Soylent Foods"};
static const char *const domains[] = {"example.com", "example.org", "example.net",
                                      "mail.example.com", "corp.example"};
static const char *const doc_titles[] = {"Mutual NDA",
                                         "Master Services Agreement",
                                         "Statement of Work",
                                         "Offer Letter",
                                         "Consulting Agreement",
                                         "Lease Renewal",
                                         "Vendor Onboarding Form",
                                         "Purchase Order Approval",
                                         "Data Processing Addendum",
                                         "Independent Contractor Agreement",
                                         "Sales Contract",
                                         "Employee Handbook Acknowledgement"};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const char *pick(sbx_rng *r, const char *const *arr, size_t n)
{
    return arr[sbx_rng_range(r, n)];
}

static void make_person(sbx_rng *r, char *name, size_t ncap, char *email, size_t ecap)
{
    const char *f = pick(r, first_names, NELEM(first_names));
    const char *l = pick(r, last_names, NELEM(last_names));
    const char *dm = pick(r, domains, NELEM(domains));
    snprintf(name, ncap, "%s %s", f, l);
    char lf[32], ll[32];
    size_t i;
    for (i = 0; f[i] && i < sizeof lf - 1; i++)
        lf[i] = (char)tolower((unsigned char)f[i]);
    lf[i] = '\0';
    for (i = 0; l[i] && i < sizeof ll - 1; i++)
        ll[i] = (char)tolower((unsigned char)l[i]);
    ll[i] = '\0';
    snprintf(email, ecap, "%s.%s@%s", lf, ll, dm);
}

static void seed_accounts(dbx_state *st, uint64_t seed)
{
    sbx_rng r;
    sbx_rng_init(&r, seed, "dropboxsign:accounts");
    /* 0: API user, team admin; 1: API user, team member; 2: API user, no team;
     * 3: team developer without API keys; 4: outside sender without API keys. */
    static const struct {
        const char *dom;
        int api, team, nkeys;
        const char *role;
    } spec[] = {{"acme-legal.example", 1, 1, 2, "a"},
                {"acme-legal.example", 1, 1, 1, "m"},
                {"solo-studio.example", 1, 0, 1, ""},
                {"acme-legal.example", 0, 1, 0, "d"},
                {"partner-firm.example", 0, 0, 0, ""}};
    st->nacct = (int)NELEM(spec);
    for (int i = 0; i < st->nacct; i++) {
        dbx_account *a = &st->accts[i];
        memset(a, 0, sizeof *a);
        sbx_rng_hex(&r, 20, a->id);
        const char *f = pick(&r, first_names, NELEM(first_names));
        const char *l = pick(&r, last_names, NELEM(last_names));
        snprintf(a->name, sizeof a->name, "%s %s", f, l);
        char lf[32];
        size_t k;
        for (k = 0; f[k] && k < sizeof lf - 1; k++)
            lf[k] = (char)tolower((unsigned char)f[k]);
        lf[k] = '\0';
        snprintf(a->email, sizeof a->email, "%s%d@%s", lf, i + 1, spec[i].dom);
        char pw[13];
        sbx_rng_hex(&r, 6, pw);
        snprintf(a->password, sizeof a->password, "dbx-%s", pw);
        a->api = spec[i].api;
        a->on_team = spec[i].team;
        sb_strlcpy(a->role_code, spec[i].role, sizeof a->role_code);
        a->nkeys = spec[i].nkeys;
        for (int j = 0; j < a->nkeys; j++)
            sbx_rng_hex(&r, 32, a->keys[j]);
        sb_strlcpy(a->locale, "en-US", sizeof a->locale);
    }
    sbx_rng_hex(&r, 20, st->team_id);
    snprintf(st->team_name, sizeof st->team_name, "Acme Legal Ops");
    snprintf(st->invited[0], sizeof st->invited[0], "new.hire@acme-legal.example");
    snprintf(st->invited[1], sizeof st->invited[1], "contractor@acme-legal.example");

    /* API apps of account 0: an approved one charging users (every user scope) and an
     * unapproved one charging the owner. */
    st->napps = 2;
    dbx_app *ap = &st->apps[0];
    memset(st->apps, 0, sizeof st->apps);
    sbx_rng_hex(&r, 16, ap->client_id);
    sbx_rng_hex(&r, 32, ap->secret);
    snprintf(ap->name, sizeof ap->name, "signbridge sandbox connector");
    snprintf(ap->callback_url, sizeof ap->callback_url, "https://claude.ai/api/mcp/auth_callback");
    ap->owner = 0;
    ap->approved = 1;
    ap->scopes = SC_ACCOUNT_ACCESS | SC_SIGNATURE_REQUEST_ACCESS | SC_TEMPLATE_ACCESS |
                 SC_TEAM_ACCESS | SC_API_APP_ACCESS;
    ap->created_at = (int64_t)sbx_now() - 86400 * 200;
    ap = &st->apps[1];
    sbx_rng_hex(&r, 16, ap->client_id);
    sbx_rng_hex(&r, 32, ap->secret);
    snprintf(ap->name, sizeof ap->name, "Internal test app");
    snprintf(ap->callback_url, sizeof ap->callback_url, "http://127.0.0.1/oauth/callback");
    ap->owner = 0;
    ap->approved = 0;
    ap->scopes = SC_BASIC_ACCOUNT_INFO | SC_REQUEST_SIGNATURE;
    ap->created_at = (int64_t)sbx_now() - 86400 * 30;
}

static void seed_templates(dbx_state *st, uint64_t seed)
{
    static const struct {
        int owner;
        uint32_t share; /* extra accounts */
        const char *title, *msg, *file;
        const char *roles[DBX_MAX_TPL_ROLES];
        const char *ccs[2];
        const char *cfs[3];
    } spec[] = {
        {0,
         1u << 1,
         "Mutual NDA",
         "Please sign this NDA as soon as possible.",
         "mutual_nda.pdf",
         {"Disclosing Party", "Receiving Party"},
         {"Legal"},
         {"Effective Date", "Company Name"}},
        {0,
         0,
         "Offer Letter",
         "We are delighted to offer you the position.",
         "offer_letter.pdf",
         {"Candidate", "Hiring Manager"},
         {"HR"},
         {"Start Date", "Salary"}},
        {0,
         0,
         "Independent Contractor Agreement",
         "Please review and sign.",
         "contractor_agreement.pdf",
         {"Contractor"},
         {NULL},
         {"Hourly Rate"}},
        {1,
         0,
         "Vendor Onboarding Form",
         "Welcome aboard! Please complete the form.",
         "vendor_onboarding.pdf",
         {"Vendor"},
         {"Procurement"},
         {NULL}},
        {2,
         0,
         "Photography Services Agreement",
         "Please sign before the shoot.",
         "photo_services.pdf",
         {"Client", "Photographer"},
         {NULL},
         {"Shoot Date"}},
        {2,
         0,
         "Model Release",
         "Thank you for modelling with us.",
         "model_release.pdf",
         {"Model"},
         {"Studio Manager"},
         {NULL}},
    };
    sbx_rng r;
    sbx_rng_init(&r, seed, "dropboxsign:templates");
    st->ntpl = (int)NELEM(spec);
    st->tpls = xcalloc((size_t)st->ntpl, sizeof *st->tpls);
    int64_t now = (int64_t)sbx_now();
    for (int i = 0; i < st->ntpl; i++) {
        dbx_template *t = &st->tpls[i];
        sbx_rng_hex(&r, 20, t->id);
        t->owner = spec[i].owner;
        t->access = bit(t->owner) | spec[i].share;
        sb_strlcpy(t->title, spec[i].title, sizeof t->title);
        sb_strlcpy(t->message, spec[i].msg, sizeof t->message);
        sb_strlcpy(t->filename, spec[i].file, sizeof t->filename);
        t->updated_at = now - 86400 * (int64_t)(30 + sbx_rng_range(&r, 300));
        for (int j = 0; j < DBX_MAX_TPL_ROLES && spec[i].roles[j]; j++)
            sb_strlcpy(t->roles[t->nroles++], spec[i].roles[j], sizeof t->roles[0]);
        for (int j = 0; j < 2 && spec[i].ccs[j]; j++)
            sb_strlcpy(t->cc_roles[t->ncc++], spec[i].ccs[j], sizeof t->cc_roles[0]);
        for (int j = 0; j < 3 && spec[i].cfs[j]; j++)
            sb_strlcpy(t->cfields[t->ncf++], spec[i].cfs[j], sizeof t->cfields[0]);
    }
}

static dbx_template *tpl_find(dbx_state *st, const char *id)
{
    for (int i = 0; i < st->ntpl; i++)
        if (!strcmp(st->tpls[i].id, id)) return &st->tpls[i];
    return NULL;
}

/* Seeded request kinds; every account gets the cycle, so every status exists everywhere. */
enum {
    K_AWAITING,
    K_VIEWED,
    K_PARTIAL,
    K_COMPLETE,
    K_DECLINED,
    K_CANCELED,
    K_EXPIRED,
    K_TEST_AWAITING,
    K_TEST_COMPLETE,
    K_HOLD,
    K_ERROR,
    K_EMBEDDED,
    K_TEMPLATE_AWAITING,
    K_TEMPLATE_COMPLETE,
    K_REMINDED,
    K_NKINDS
};

static void seed_doc(dbx_state *st, sbx_rng *r, int owner, int kind, int64_t created, int64_t now,
                     int to_acct)
{
    dbx_doc *d = xcalloc(1, sizeof *d);
    sbx_rng_hex(r, 20, d->id);
    d->owner = owner;
    d->state = kind == K_CANCELED ? D_CANCELED : D_ACTIVE;
    d->created_at = created;
    d->metadata = cJSON_CreateObject();
    d->custom_fields = cJSON_CreateArray();
    d->sig_page = 0;
    const char *company = pick(r, companies, NELEM(companies));
    dbx_template *tpl = NULL;
    if (kind == K_TEMPLATE_AWAITING || kind == K_TEMPLATE_COMPLETE) {
        for (int i = 0; i < st->ntpl; i++)
            if (st->tpls[i].access & bit(owner)) {
                tpl = &st->tpls[i];
                if (sbx_rng_range(r, 2)) break;
            }
    }
    char title[200];
    if (tpl)
        snprintf(title, sizeof title, "%s - %s", tpl->title, company);
    else
        snprintf(title, sizeof title, "%s - %s", pick(r, doc_titles, NELEM(doc_titles)), company);
    d->title = xstrdup(title);
    d->subject = xstrdup(title);
    d->message = xstrdup(tpl ? tpl->message : "Please review and sign at your convenience.");
    char num[24];
    snprintf(num, sizeof num, "%" PRIu64, 1000 + sbx_rng_range(r, 9000));
    cJSON_AddStringToObject(d->metadata, "custom_id", num);
    if (sbx_rng_range(r, 2))
        cJSON_AddStringToObject(d->metadata, "department", sbx_rng_range(r, 2) ? "Legal" : "Sales");
    doc_set_meta_text(d);
    char fname[128];
    if (tpl) {
        snprintf(fname, sizeof fname, "%s", tpl->filename);
        snprintf(d->tids[d->ntids++], sizeof d->tids[0], "%s", tpl->id);
        for (int i = 0; i < tpl->ncf; i++) {
            cJSON *cf = cJSON_CreateObject();
            cJSON_AddStringToObject(cf, "name", tpl->cfields[i]);
            cJSON_AddStringToObject(cf, "type", "text");
            cJSON_AddStringToObject(cf, "value", i == 0 ? company : "TBD");
            cJSON_AddBoolToObject(cf, "required", 0);
            char api_id[24];
            snprintf(api_id, sizeof api_id, "cf_%d", i + 1);
            cJSON_AddStringToObject(cf, "api_id", api_id);
            cJSON_AddNullToObject(cf, "editor");
            cJSON_AddItemToArray(d->custom_fields, cf);
        }
    } else {
        size_t k = 0;
        for (const char *c = d->title; *c && k < 60; c++)
            fname[k++] = (isalnum((unsigned char)*c)) ? (char)tolower((unsigned char)*c) : '_';
        snprintf(fname + k, sizeof fname - k, ".pdf");
        d->sig_page = (kind == K_AWAITING || kind == K_COMPLETE) ? 1 : 0;
    }
    doc_add_file(d, fname);

    int nsg = tpl ? tpl->nroles : 1 + (int)sbx_rng_range(r, 3);
    if (kind == K_PARTIAL && nsg < 2) nsg = 2;
    d->ordered = tpl ? 1 : (kind == K_PARTIAL || sbx_rng_range(r, 3) == 0);
    for (int i = 0; i < nsg; i++) {
        dbx_signer *g = doc_add_signer(d);
        sbx_rng_hex(r, 16, g->sig_id);
        if (i == 0 && to_acct >= 0) {
            sb_strlcpy(g->name, st->accts[to_acct].name, sizeof g->name);
            sb_strlcpy(g->email, st->accts[to_acct].email, sizeof g->email);
        } else {
            make_person(r, g->name, sizeof g->name, g->email, sizeof g->email);
        }
        if (tpl) sb_strlcpy(g->role, tpl->roles[i], sizeof g->role);
        g->order = d->ordered ? i : -1;
        g->status = S_AWAITING;
        g->has_pin = sbx_rng_range(r, 6) == 0;
    }
    if (tpl) {
        for (int i = 0; i < tpl->ncc; i++) {
            char n[128], e[128];
            make_person(r, n, sizeof n, e, sizeof e);
            doc_add_cc(d, e);
        }
    } else if (sbx_rng_range(r, 3) == 0) {
        char n[128], e[128];
        make_person(r, n, sizeof n, e, sizeof e);
        doc_add_cc(d, e);
    }
    int64_t t = created + 3600;
    switch (kind) {
    case K_VIEWED:
        d->sg[0].viewed_at = t;
        break;
    case K_PARTIAL:
        d->sg[0].viewed_at = t;
        d->sg[0].signed_at = t + 600;
        d->sg[0].status = S_SIGNED;
        d->sg[1].viewed_at = t + 7200;
        break;
    case K_COMPLETE:
    case K_TEST_COMPLETE:
    case K_TEMPLATE_COMPLETE:
        for (int i = 0; i < d->nsg; i++) {
            d->sg[i].viewed_at = t + i * 3600;
            d->sg[i].signed_at = t + i * 3600 + 300;
            d->sg[i].status = S_SIGNED;
        }
        break;
    case K_DECLINED:
        d->sg[0].viewed_at = t;
        d->sg[0].status = S_DECLINED;
        snprintf(d->sg[0].decline_reason, sizeof d->sg[0].decline_reason,
                 "The payment terms need another look.");
        d->is_declined = 1;
        break;
    case K_EXPIRED:
        d->expires_at = now - 86400 * 2;
        for (int i = 0; i < d->nsg; i++)
            d->sg[i].status = S_EXPIRED;
        break;
    case K_HOLD:
        for (int i = 0; i < d->nsg; i++)
            d->sg[i].status = S_HOLD_REQ;
        break;
    case K_ERROR:
        d->has_error = 1;
        for (int i = 0; i < d->nsg; i++)
            d->sg[i].status = S_ERROR_FILE;
        break;
    case K_EMBEDDED:
        d->embedded = 1;
        snprintf(d->client_id, sizeof d->client_id, "%s", st->apps[0].client_id);
        break;
    case K_REMINDED:
        d->sg[0].reminded_at = now - 600; /* a reminder 10 minutes ago: the next one is refused */
        break;
    default:
        break;
    }
    if (kind == K_TEST_AWAITING || kind == K_TEST_COMPLETE) d->test_mode = 1;
    if ((kind == K_AWAITING || kind == K_VIEWED || kind == K_TEMPLATE_AWAITING) &&
        sbx_rng_range(r, 2))
        d->expires_at = now + 86400 * (int64_t)(10 + sbx_rng_range(r, 50));
    doc_update_complete(d);
    doc_recompute_vis(st, d);
    doc_add(st, d);
}

static int cmp_doc_created(const void *a, const void *b)
{
    const dbx_doc *x = *(dbx_doc *const *)a, *y = *(dbx_doc *const *)b;
    if (x->created_at != y->created_at) return x->created_at < y->created_at ? -1 : 1;
    return strcmp(x->id, y->id);
}

static void seed_docs(dbx_state *st, uint64_t seed)
{
    sbx_rng r;
    sbx_rng_init(&r, seed, "dropboxsign:documents");
    int64_t now = (int64_t)sbx_now();
    static const int per_acct[] = {32, 16, 24, 0, 0};
    for (int a = 0; a < st->nacct; a++) {
        int n = per_acct[a];
        for (int i = 0; i < n; i++) {
            int kind = i % K_NKINDS;
            int64_t created =
                now - 86400 * (int64_t)(1 + (n - i) * 2) - (int64_t)sbx_rng_range(&r, 80000);
            if (kind == K_EXPIRED) created = now - 86400 * 45;
            seed_doc(st, &r, a, kind, created, now, -1);
        }
    }
    /* received requests: the outside sender (4) and the team developer (3) ask the API users
     * to sign, so from:/to: searches and awaiting_my_signature have something to find. */
    for (int a = 0; a < 3; a++) {
        seed_doc(st, &r, 4, K_AWAITING, now - 86400 * 3 - a * 1000, now, a);
        seed_doc(st, &r, 4, K_COMPLETE, now - 86400 * 20 - a * 1000, now, a);
    }
    seed_doc(st, &r, 3, K_VIEWED, now - 86400 * 5, now, 0);
    seed_doc(st, &r, 3, K_AWAITING, now - 86400 * 6, now, 1);
    qsort(st->docs, st->ndocs, sizeof *st->docs, cmp_doc_created);
}

static void state_clear(dbx_state *st)
{
    for (size_t i = 0; i < st->ndocs; i++)
        doc_free(st->docs[i]);
    free(st->docs);
    free(st->tpls);
    memset(st, 0, sizeof *st);
}

/* ---- serialisation ----------------------------------------------------------------------------
 */

/* Keep the public base in step with the server's origin (the port is known only after init). */
static void sync_origin(dbx_state *st, sbx *s)
{
    const char *o = sbx_origin(s);
    if (!o) o = "";
    if (!strcmp(o, st->origin) && st->base[0]) return;
    sb_strlcpy(st->origin, o, sizeof st->origin);
    sbx_base_url(s, "dropboxsign", DBX_REGION, NULL, st->base, sizeof st->base);
    for (size_t i = 0; i < st->ndocs; i++)
        st->docs[i]->dirty = 1;
}

static cJSON *signer_json(const dbx_signer *g)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "signature_id", g->sig_id);
    jstr_or_null(o, "signer_group_guid", g->group_guid);
    cJSON_AddStringToObject(o, "signer_email_address", g->email);
    jstr_or_null(o, "signer_name", g->name);
    jstr_or_null(o, "signer_role", g->role);
    if (g->order >= 0)
        cJSON_AddNumberToObject(o, "order", g->order);
    else
        cJSON_AddNullToObject(o, "order");
    cJSON_AddStringToObject(o, "status_code", dbx_status_names[g->status]);
    jstr_or_null(o, "decline_reason", g->status == S_DECLINED ? g->decline_reason : NULL);
    jint_or_null(o, "signed_at", g->signed_at);
    jint_or_null(o, "last_viewed_at", g->viewed_at);
    jint_or_null(o, "last_reminded_at", g->reminded_at);
    cJSON_AddBoolToObject(o, "has_pin", g->has_pin);
    cJSON_AddBoolToObject(o, "has_sms_auth", g->has_sms_auth);
    cJSON_AddBoolToObject(o, "has_sms_delivery", g->has_sms_delivery);
    jstr_or_null(o, "sms_phone_number", g->sms);
    cJSON_AddNullToObject(o, "reassigned_by");
    cJSON_AddNullToObject(o, "reassignment_reason");
    cJSON_AddNullToObject(o, "reassigned_from");
    cJSON_AddNullToObject(o, "error");
    return o;
}

static cJSON *doc_json(const dbx_state *st, const dbx_doc *d)
{
    char url[512];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "test_mode", d->test_mode);
    cJSON_AddStringToObject(o, "signature_request_id", d->id);
    cJSON_AddStringToObject(o, "requester_email_address", st->accts[d->owner].email);
    cJSON_AddStringToObject(o, "title", d->title);
    cJSON_AddStringToObject(o, "original_title", d->title);
    jstr_or_null(o, "subject", d->subject);
    jstr_or_null(o, "message", d->message);
    cJSON_AddItemToObject(o, "metadata",
                          d->metadata ? cJSON_Duplicate(d->metadata, 1) : cJSON_CreateObject());
    cJSON_AddNumberToObject(o, "created_at", (double)d->created_at);
    jint_or_null(o, "expires_at", d->expires_at);
    cJSON_AddBoolToObject(o, "is_complete", d->is_complete);
    cJSON_AddBoolToObject(o, "is_declined", d->is_declined);
    cJSON_AddBoolToObject(o, "has_error", d->has_error);
    snprintf(url, sizeof url, "%s/v3/signature_request/files/%s", st->base, d->id);
    cJSON_AddStringToObject(o, "files_url", url);
    if (d->embedded || !doc_in_progress(d)) {
        cJSON_AddNullToObject(o, "signing_url");
    } else {
        snprintf(url, sizeof url, "%s/app/sign/%s", st->base, d->id);
        cJSON_AddStringToObject(o, "signing_url", url);
    }
    snprintf(url, sizeof url, "%s/app/home/manage?guid=%s", st->base, d->id);
    cJSON_AddStringToObject(o, "details_url", url);
    cJSON *cc = cJSON_AddArrayToObject(o, "cc_email_addresses");
    for (int i = 0; i < d->ncc; i++)
        cJSON_AddItemToArray(cc, cJSON_CreateString(d->cc[i]));
    jstr_or_null(o, "signing_redirect_url", d->redirect_url);
    if (d->is_complete) {
        snprintf(url, sizeof url, "/v3/signature_request/final_copy/%s", d->id);
        cJSON_AddStringToObject(o, "final_copy_uri", url);
    } else {
        cJSON_AddNullToObject(o, "final_copy_uri");
    }
    if (d->ntids) {
        cJSON *t = cJSON_AddArrayToObject(o, "template_ids");
        for (int i = 0; i < d->ntids; i++)
            cJSON_AddItemToArray(t, cJSON_CreateString(d->tids[i]));
    } else {
        cJSON_AddNullToObject(o, "template_ids");
    }
    cJSON_AddItemToObject(o, "custom_fields",
                          d->custom_fields ? cJSON_Duplicate(d->custom_fields, 1)
                                           : cJSON_CreateArray());
    cJSON_AddArrayToObject(o, "attachments");
    cJSON_AddArrayToObject(o, "response_data");
    cJSON *sigs = cJSON_AddArrayToObject(o, "signatures");
    for (int i = 0; i < d->nsg; i++)
        cJSON_AddItemToArray(sigs, signer_json(&d->sg[i]));
    cJSON_AddNullToObject(o, "bulk_send_job_id");
    cJSON *se = cJSON_AddObjectToObject(o, "signer_experience");
    cJSON_AddStringToObject(se, "form_view", "disabled");
    return o;
}

/* The cached text of a request (rebuilt when dirty). Caller holds g_mu. */
static const char *doc_text(const dbx_state *st, dbx_doc *d, size_t *len)
{
    if (d->dirty || !d->json) {
        cJSON *j = doc_json(st, d);
        char *t = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        if (!t) abort();
        free(d->json);
        d->json = t;
        d->json_len = strlen(t);
        d->dirty = 0;
    }
    *len = d->json_len;
    return d->json;
}

static cJSON *quotas_json(void)
{
    cJSON *q = cJSON_CreateObject();
    cJSON_AddNumberToObject(q, "api_signature_requests_left", 1250);
    cJSON_AddNullToObject(q, "documents_left");
    cJSON_AddNumberToObject(q, "templates_total", 100);
    cJSON_AddNumberToObject(q, "templates_left", 94);
    cJSON_AddNumberToObject(q, "sms_verifications_left", 10);
    cJSON_AddNumberToObject(q, "num_fax_pages_left", 0);
    return q;
}

static cJSON *account_json(const dbx_state *st, int a)
{
    const dbx_account *ac = &st->accts[a];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "account_id", ac->id);
    cJSON_AddStringToObject(o, "email_address", ac->email);
    cJSON_AddBoolToObject(o, "is_locked", 0);
    cJSON_AddBoolToObject(o, "is_paid_hs", 1);
    cJSON_AddBoolToObject(o, "is_paid_hf", 0);
    cJSON_AddItemToObject(o, "quotas", quotas_json());
    jstr_or_null(o, "callback_url", ac->callback_url);
    jstr_or_null(o, "role_code", ac->role_code);
    jstr_or_null(o, "team_id", ac->on_team ? st->team_id : NULL);
    jstr_or_null(o, "locale", ac->locale);
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "fax_pages_sent", 0);
    cJSON *se = cJSON_AddObjectToObject(o, "settings");
    cJSON_AddBoolToObject(se, "signer_access_codes", 1);
    cJSON_AddBoolToObject(se, "sms_delivery", 0);
    cJSON_AddBoolToObject(se, "sms_authentication", 0);
    return o;
}

static cJSON *text_field_extras(cJSON *f)
{
    cJSON *avg = cJSON_AddObjectToObject(f, "avg_text_length");
    cJSON_AddNumberToObject(avg, "num_lines", 1);
    cJSON_AddNumberToObject(avg, "num_chars_per_line", 24);
    cJSON_AddBoolToObject(f, "isMultiline", 0);
    cJSON_AddNumberToObject(f, "originalFontSize", 12);
    cJSON_AddStringToObject(f, "fontFamily", "helvetica");
    return f;
}

static cJSON *template_json(const dbx_state *st, const dbx_template *t, int viewer)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "template_id", t->id);
    cJSON_AddStringToObject(o, "title", t->title);
    cJSON_AddStringToObject(o, "message", t->message);
    cJSON_AddNumberToObject(o, "updated_at", (double)t->updated_at);
    cJSON_AddBoolToObject(o, "is_embedded", 0);
    cJSON_AddBoolToObject(o, "is_creator", t->owner == viewer);
    cJSON_AddBoolToObject(o, "can_edit", t->owner == viewer);
    cJSON_AddBoolToObject(o, "is_locked", 0);
    cJSON_AddObjectToObject(o, "metadata");
    cJSON *roles = cJSON_AddArrayToObject(o, "signer_roles");
    for (int i = 0; i < t->nroles; i++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "name", t->roles[i]);
        cJSON_AddNumberToObject(r, "order", i);
        cJSON_AddItemToArray(roles, r);
    }
    cJSON *ccr = cJSON_AddArrayToObject(o, "cc_roles");
    for (int i = 0; i < t->ncc; i++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "name", t->cc_roles[i]);
        cJSON_AddItemToArray(ccr, r);
    }
    cJSON *docs = cJSON_AddArrayToObject(o, "documents");
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddItemToArray(docs, doc);
    cJSON_AddStringToObject(doc, "name", t->filename);
    cJSON_AddNumberToObject(doc, "index", 0);
    cJSON_AddArrayToObject(doc, "field_groups");
    cJSON *ff = cJSON_AddArrayToObject(doc, "form_fields");
    for (int i = 0; i < t->nroles; i++) {
        char api_id[32], nm[64], signer[16];
        snprintf(signer, sizeof signer, "%d", i + 1);
        snprintf(api_id, sizeof api_id, "sig_%d", i + 1);
        snprintf(nm, sizeof nm, "Signature %d", i + 1);
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "api_id", api_id);
        cJSON_AddStringToObject(f, "name", nm);
        cJSON_AddStringToObject(f, "type", "signature");
        cJSON_AddStringToObject(f, "signer", signer);
        cJSON_AddNumberToObject(f, "x", 72);
        cJSON_AddNumberToObject(f, "y", 600 - 60 * i);
        cJSON_AddNumberToObject(f, "width", 180);
        cJSON_AddNumberToObject(f, "height", 30);
        cJSON_AddBoolToObject(f, "required", 1);
        cJSON_AddNullToObject(f, "group");
        cJSON_AddItemToArray(ff, f);
        snprintf(api_id, sizeof api_id, "date_%d", i + 1);
        snprintf(nm, sizeof nm, "Date Signed %d", i + 1);
        f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "api_id", api_id);
        cJSON_AddStringToObject(f, "name", nm);
        cJSON_AddStringToObject(f, "type", "date_signed");
        cJSON_AddStringToObject(f, "signer", signer);
        cJSON_AddNumberToObject(f, "x", 300);
        cJSON_AddNumberToObject(f, "y", 600 - 60 * i);
        cJSON_AddNumberToObject(f, "width", 100);
        cJSON_AddNumberToObject(f, "height", 20);
        cJSON_AddBoolToObject(f, "required", 1);
        cJSON_AddNullToObject(f, "group");
        cJSON_AddItemToArray(ff, f);
    }
    cJSON *cf = cJSON_AddArrayToObject(doc, "custom_fields");
    for (int i = 0; i < t->ncf; i++) {
        char api_id[32];
        snprintf(api_id, sizeof api_id, "cf_%d", i + 1);
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "api_id", api_id);
        cJSON_AddStringToObject(f, "name", t->cfields[i]);
        cJSON_AddStringToObject(f, "type", "text");
        cJSON_AddNullToObject(f, "signer");
        cJSON_AddNumberToObject(f, "x", 72);
        cJSON_AddNumberToObject(f, "y", 700 - 30 * i);
        cJSON_AddNumberToObject(f, "width", 200);
        cJSON_AddNumberToObject(f, "height", 16);
        cJSON_AddBoolToObject(f, "required", 0);
        cJSON_AddNullToObject(f, "group");
        cJSON_AddItemToArray(cf, text_field_extras(f));
    }
    cJSON_AddArrayToObject(doc, "static_fields");
    cJSON *accts = cJSON_AddArrayToObject(o, "accounts");
    for (int a = 0; a < st->nacct; a++) {
        if (!(t->access & bit(a))) continue;
        cJSON *ac = cJSON_CreateObject();
        cJSON_AddStringToObject(ac, "account_id", st->accts[a].id);
        cJSON_AddStringToObject(ac, "email_address", st->accts[a].email);
        cJSON_AddBoolToObject(ac, "is_locked", 0);
        cJSON_AddBoolToObject(ac, "is_paid_hs", 1);
        cJSON_AddBoolToObject(ac, "is_paid_hf", 0);
        cJSON *q = cJSON_AddObjectToObject(ac, "quotas");
        cJSON_AddNumberToObject(q, "templates_left", 94);
        cJSON_AddNumberToObject(q, "api_signature_requests_left", 1250);
        cJSON_AddNumberToObject(q, "documents_left", 1000);
        cJSON_AddNumberToObject(q, "sms_verifications_left", 10);
        cJSON_AddItemToArray(accts, ac);
    }
    cJSON_AddArrayToObject(o, "attachments");
    return o;
}

static void scope_list(unsigned scopes, cJSON *arr)
{
    for (size_t i = 0; i < NELEM(dbx_scope_names); i++)
        if (scopes & dbx_scope_names[i].bit)
            cJSON_AddItemToArray(arr, cJSON_CreateString(dbx_scope_names[i].name));
}

static cJSON *app_json(const dbx_state *st, const dbx_app *ap, int viewer)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "callback_url", ap->callback_url);
    cJSON_AddStringToObject(o, "client_id", ap->client_id);
    cJSON_AddNumberToObject(o, "created_at", (double)ap->created_at);
    cJSON *dm = cJSON_AddArrayToObject(o, "domains");
    cJSON_AddItemToArray(dm, cJSON_CreateString("127.0.0.1"));
    cJSON_AddItemToArray(dm, cJSON_CreateString("localhost"));
    cJSON_AddStringToObject(o, "name", ap->name);
    cJSON_AddBoolToObject(o, "is_approved", ap->approved);
    cJSON *oa = cJSON_AddObjectToObject(o, "oauth");
    cJSON_AddStringToObject(oa, "callback_url", ap->callback_url);
    jstr_or_null(oa, "secret", ap->owner == viewer ? ap->secret : NULL);
    scope_list(ap->scopes, cJSON_AddArrayToObject(oa, "scopes"));
    cJSON_AddBoolToObject(oa, "charges_users", (ap->scopes & SC_REQUEST_SIGNATURE) == 0);
    cJSON *op = cJSON_AddObjectToObject(o, "options");
    cJSON_AddBoolToObject(op, "can_insert_everywhere", 0);
    cJSON *ow = cJSON_AddObjectToObject(o, "owner_account");
    cJSON_AddStringToObject(ow, "account_id", st->accts[ap->owner].id);
    cJSON_AddStringToObject(ow, "email_address", st->accts[ap->owner].email);
    return o;
}

static cJSON *list_info(int64_t page, int64_t page_size, int64_t total)
{
    cJSON *li = cJSON_CreateObject();
    cJSON_AddNumberToObject(li, "page", (double)page);
    cJSON_AddNumberToObject(li, "num_pages", (double)((total + page_size - 1) / page_size));
    cJSON_AddNumberToObject(li, "num_results", (double)total);
    cJSON_AddNumberToObject(li, "page_size", (double)page_size);
    return li;
}

static void add_warning(cJSON **warnings, const char *name, const char *msg)
{
    if (!*warnings) *warnings = cJSON_CreateArray();
    if (cJSON_GetArraySize(*warnings) >= 20) return;
    cJSON *w = cJSON_CreateObject();
    cJSON_AddStringToObject(w, "warning_msg", msg);
    cJSON_AddStringToObject(w, "warning_name", name);
    cJSON_AddItemToArray(*warnings, w);
}

/* {"<key>":<obj>[,"warnings":[...]]}; takes obj and warnings. */
static void reply_obj(sbx_resp *resp, int status, const char *key, cJSON *obj, cJSON *warnings)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, key, obj);
    if (warnings) cJSON_AddItemToObject(root, "warnings", warnings);
    sbx_resp_json(resp, status, root);
}

/* {"signature_request":<cached>[,"warnings":[...]]}; takes warnings. */
static void reply_doc(const dbx_state *st, sbx_resp *resp, dbx_doc *d, cJSON *warnings)
{
    size_t n;
    const char *t = doc_text(st, d, &n);
    sb_buf *b = raw_begin(resp);
    xappend(b, "{\"signature_request\":");
    xappendn(b, t, n);
    if (warnings) {
        xappend(b, ",\"warnings\":");
        append_json(b, warnings);
        cJSON_Delete(warnings);
    }
    xappend(b, "}");
    raw_end(resp, 200);
}

/* ---- generated files: a small valid PDF naming the document, and a stored ZIP -------------------
 */

static void pdf_str(sb_buf *b, const char *s, size_t max)
{
    xappend(b, "(");
    for (size_t i = 0; s[i] && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '(' || c == ')' || c == '\\') {
            char e[2] = {'\\', (char)c};
            xappendn(b, e, 2);
        } else if (c < 0x20 || c > 0x7e) {
            xappend(b, "?");
        } else {
            xappendn(b, (const char *)&c, 1);
        }
    }
    xappend(b, ")");
}

/* A one-page PDF with the title and up to 24 lines. Appends to out. */
static void make_pdf(sb_buf *out, const char *title, const char *const *lines, int nlines)
{
    sb_buf content;
    sb_buf_init(&content, 1 << 20);
    xappend(&content, "BT /F1 18 Tf 72 720 Td ");
    pdf_str(&content, title, 200);
    xappend(&content, " Tj ET\nBT /F1 11 Tf 72 690 Td 15 TL\n");
    for (int i = 0; i < nlines && i < 24; i++) {
        pdf_str(&content, lines[i], 200);
        xappend(&content, " Tj T*\n");
    }
    xappend(&content, "ET\n");

    size_t base = out->len;
    size_t off[7];
    xappend(out, "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n");
    off[1] = out->len - base;
    xappend(out, "1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");
    off[2] = out->len - base;
    xappend(out, "2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n");
    off[3] = out->len - base;
    xappend(out, "3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << "
                 "/Font << /F1 5 0 R >> >> /Contents 4 0 R >>\nendobj\n");
    off[4] = out->len - base;
    if (sb_buf_printf(out, "4 0 obj\n<< /Length %zu >>\nstream\n", content.len) != 0) abort();
    xappendn(out, content.data, content.len);
    xappend(out, "endstream\nendobj\n");
    off[5] = out->len - base;
    xappend(out, "5 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>\nendobj\n");
    off[6] = out->len - base;
    xappend(out, "6 0 obj\n<< /Title ");
    pdf_str(out, title, 200);
    xappend(out, " /Producer (signbridge-sandbox Dropbox Sign) >>\nendobj\n");
    size_t xref = out->len - base;
    xappend(out, "xref\n0 7\n0000000000 65535 f \n");
    for (int i = 1; i <= 6; i++)
        if (sb_buf_printf(out, "%010zu 00000 n \n", off[i]) != 0) abort();
    if (sb_buf_printf(out,
                      "trailer\n<< /Size 7 /Root 1 0 R /Info 6 0 R >>\nstartxref\n%zu\n%%%%EOF\n",
                      xref) != 0)
        abort();
    sb_buf_free(&content);
}

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32_buf(const unsigned char *p, size_t n)
{
    pthread_once(&crc_once, crc_init);
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static void le16(sb_buf *b, unsigned v)
{
    unsigned char x[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    xappendn(b, (const char *)x, 2);
}

static void le32(sb_buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    xappendn(b, (const char *)x, 4);
}

/* ZIP (stored) of one PDF per file name. */
static void make_zip(sb_buf *out, const char *title, char **names, int n, const char *const *lines,
                     int nlines)
{
    sb_buf cd;
    sb_buf_init(&cd, 1 << 20);
    int count = 0;
    for (int i = 0; i < n && i < DBX_MAX_FILES; i++) {
        char fname[128];
        size_t k = 0;
        for (const char *c = names[i]; *c && k < 100; c++)
            fname[k++] =
                (isalnum((unsigned char)*c) || *c == '.' || *c == '-' || *c == '_') ? *c : '_';
        fname[k] = '\0';
        if (!k) snprintf(fname, sizeof fname, "document_%d.pdf", i + 1);
        sb_buf pdf;
        sb_buf_init(&pdf, 1 << 20);
        char t2[400];
        snprintf(t2, sizeof t2, "%s (%s)", title, names[i]);
        make_pdf(&pdf, t2, lines, nlines);
        uint32_t crc = crc32_buf((const unsigned char *)pdf.data, pdf.len);
        uint32_t off = (uint32_t)out->len;
        size_t fl = strlen(fname);
        le32(out, 0x04034b50u);
        le16(out, 10);
        le16(out, 0);
        le16(out, 0);
        le16(out, 0);
        le16(out, 0x21);
        le32(out, crc);
        le32(out, (uint32_t)pdf.len);
        le32(out, (uint32_t)pdf.len);
        le16(out, (unsigned)fl);
        le16(out, 0);
        xappendn(out, fname, fl);
        xappendn(out, pdf.data, pdf.len);
        le32(&cd, 0x02014b50u);
        le16(&cd, 20);
        le16(&cd, 10);
        le16(&cd, 0);
        le16(&cd, 0);
        le16(&cd, 0);
        le16(&cd, 0x21);
        le32(&cd, crc);
        le32(&cd, (uint32_t)pdf.len);
        le32(&cd, (uint32_t)pdf.len);
        le16(&cd, (unsigned)fl);
        le16(&cd, 0);
        le16(&cd, 0);
        le16(&cd, 0);
        le16(&cd, 0);
        le32(&cd, 0);
        le32(&cd, off);
        xappendn(&cd, fname, fl);
        sb_buf_free(&pdf);
        count++;
    }
    uint32_t cdoff = (uint32_t)out->len;
    xappendn(out, cd.data ? cd.data : "", cd.len);
    le32(out, 0x06054b50u);
    le16(out, 0);
    le16(out, 0);
    le16(out, (unsigned)count);
    le16(out, (unsigned)count);
    le32(out, (uint32_t)cd.len);
    le32(out, cdoff);
    le16(out, 0);
    sb_buf_free(&cd);
}

/* The PDF (or zip) of a request into out. */
static void doc_file(const dbx_state *st, const dbx_doc *d, int zip, sb_buf *out)
{
    char lines[DBX_MAX_SIGNERS + 4][200];
    const char *lp[DBX_MAX_SIGNERS + 4];
    int n = 0;
    snprintf(lines[n++], sizeof lines[0], "Signature request %s", d->id);
    snprintf(lines[n++], sizeof lines[0], "Sent by %s", st->accts[d->owner].email);
    snprintf(lines[n++], sizeof lines[0], "%s%s", d->is_complete ? "Completed" : "In progress",
             d->test_mode ? " - TEST MODE, not legally binding" : "");
    for (int i = 0; i < d->nsg && n < (int)NELEM(lines); i++)
        snprintf(lines[n++], sizeof lines[0], "%.60s <%.80s>: %s", d->sg[i].name, d->sg[i].email,
                 dbx_status_names[d->sg[i].status]);
    for (int i = 0; i < n; i++)
        lp[i] = lines[i];
    if (zip)
        make_zip(out, d->title, d->files, d->nfiles, lp, n);
    else
        make_pdf(out, d->title, lp, n);
}

static void tpl_file(const dbx_template *t, int zip, sb_buf *out)
{
    const char *lp[2] = {"Template document", t->message};
    char *names[1] = {(char *)t->filename};
    if (zip)
        make_zip(out, t->title, names, 1, lp, 2);
    else
        make_pdf(out, t->title, lp, 2);
}

/* ---- request context, auth and rate limits ------------------------------------------------------
 */

typedef struct dbx_ctx {
    dbx_state *st;
    sbx *s;
    sbx_req *req;
    sbx_resp *resp;
    int acct;
    int bearer;
    unsigned scopes;
    const char *id; /* path parameter ("" when the route has none) */
    char idbuf[160];
    dbx_params pr; /* POST/PUT parameters */
    int64_t now;
    cJSON *warnings;
} dbx_ctx;

typedef void (*dbx_handler)(dbx_ctx *c);

typedef struct dbx_route {
    const char *method;
    const char *pattern; /* relative to /v3; "{}" = one path segment */
    const char *name;    /* for req->route */
    int tier;            /* 0 standard, 1 high */
    unsigned scopes;     /* OAuth scopes any of which grants access; SC_API_KEY_ONLY: none */
    dbx_handler fn;
} dbx_route;

static void set_route(sbx_req *req, const char *method, const char *name)
{
    snprintf(req->route, sizeof req->route, "%s %s", method, name);
}

static int find_key(const dbx_state *st, const char *key)
{
    size_t kl = strlen(key);
    for (int a = 0; a < st->nacct; a++)
        for (int k = 0; k < st->accts[a].nkeys; k++)
            if (sb_ct_equal(st->accts[a].keys[k], strlen(st->accts[a].keys[k]), key, kl)) return a;
    return -1;
}

static dbx_token *find_access(dbx_state *st, const char *tok)
{
    for (int i = 0; i < st->naccess; i++)
        if (!strcmp(st->access[i].tok, tok)) return &st->access[i];
    return NULL;
}

/* Resolve the caller. 0 with c->acct set, or -1 with a 401 written. */
static int authenticate(dbx_ctx *c)
{
    const char *h = sbx_header(c->req, "Authorization");
    /* the scheme tried, for the request log; only Basic and Bearer are Dropbox's */
    sb_strlcpy(c->req->auth_scheme,
               sbx_header(c->req, "X-API-Key") ? "x-api-key"
               : sbx_header(c->req, "api_key") ? "api_key"
                                               : "none",
               sizeof c->req->auth_scheme);
    if (!h || !*h) {
        dbx_err(c->resp, 401, "unauthorized", "Unauthorized user. No credentials supplied.", NULL);
        return -1;
    }
    while (*h == ' ')
        h++;
    if (ci_starts_with(h, "Basic ")) {
        sb_strlcpy(c->req->auth_scheme, "basic", sizeof c->req->auth_scheme);
        const char *v = h + 6;
        while (*v == ' ')
            v++;
        size_t vl = strlen(v);
        while (vl && v[vl - 1] == ' ')
            vl--;
        unsigned char dec[512];
        long n = vl ? sb_base64_decode(v, vl, dec, sizeof dec - 1) : -1;
        if (n <= 0) {
            dbx_err(c->resp, 401, "unauthorized", "Unauthorized api key", NULL);
            return -1;
        }
        dec[n] = '\0';
        char *colon = memchr(dec, ':', (size_t)n);
        if (!colon || memchr(dec, '\0', (size_t)n)) {
            dbx_err(c->resp, 401, "unauthorized", "Unauthorized api key", NULL);
            return -1;
        }
        *colon = '\0';
        int a = find_key(c->st, (const char *)dec);
        if (a < 0) {
            dbx_err(c->resp, 401, "unauthorized", "Unauthorized api key", NULL);
            return -1;
        }
        c->acct = a;
        c->bearer = 0;
    } else if (ci_starts_with(h, "Bearer ")) {
        sb_strlcpy(c->req->auth_scheme, "bearer", sizeof c->req->auth_scheme);
        const char *v = h + 7;
        while (*v == ' ')
            v++;
        dbx_token *t = strlen(v) < sizeof t->tok ? find_access(c->st, v) : NULL;
        if (!t) {
            dbx_err(c->resp, 401, "unauthorized", "Unauthorized user. Invalid access token.", NULL);
            return -1;
        }
        if (t->exp_ms <= c->req->now_ms) {
            dbx_err(c->resp, 401, "unauthorized", "Unauthorized user. Access token has expired.",
                    NULL);
            return -1;
        }
        c->acct = t->acct;
        c->bearer = 1;
        c->scopes = t->scopes;
    } else {
        dbx_err(c->resp, 401, "unauthorized", "Unauthorized user. No credentials supplied.", NULL);
        return -1;
    }
    sb_strlcpy(c->req->account_id, c->st->accts[c->acct].id, sizeof c->req->account_id);
    return 0;
}

static void rate_headers(sbx_resp *resp, unsigned limit, unsigned remaining, uint64_t reset)
{
    char v[32];
    snprintf(v, sizeof v, "%u", limit);
    sbx_resp_header(resp, "X-RateLimit-Limit", v);
    snprintf(v, sizeof v, "%u", remaining);
    sbx_resp_header(resp, "X-RateLimit-Remaining", v);
    snprintf(v, sizeof v, "%" PRIu64, reset);
    sbx_resp_header(resp, "X-Ratelimit-Reset", v);
}

static void too_many(sbx_resp *resp, unsigned limit, uint64_t reset, uint64_t now_s)
{
    dbx_err(resp, 429, "exceeded_rate", "Too many requests.", NULL);
    rate_headers(resp, limit, 0, reset);
    char v[24];
    snprintf(v, sizeof v, "%" PRIu64, reset > now_s ? reset - now_s : 1);
    sbx_resp_header(resp, "Retry-After", v);
}

/* 1 when this request sends in test mode (the 10/min tier). */
static int is_test_send(const dbx_ctx *c)
{
    int t = 0;
    return c->pr.p && p_bool(c->pr.p, "test_mode", &t) == 1 && t;
}

/* Take one request from the caller's window. 0 allowed (headers set), -1 with 429 written. */
static int rate_limit(dbx_ctx *c, const dbx_route *rt)
{
    const char *tier = rt->tier ? "high" : "standard";
    unsigned lim = rt->tier ? 25 : 100;
    if (rt->tier && is_test_send(c)) {
        tier = "test";
        lim = 10;
    }
    char key[96];
    snprintf(key, sizeof key, "%s:%s", c->st->accts[c->acct].id, tier);
    unsigned limit = lim, remaining = 0;
    uint64_t reset = 0;
    int ok = sbx_rate_take(c->s, "dropboxsign", tier, key, lim, 60, &limit, &remaining, &reset);
    if (!ok) {
        too_many(c->resp, limit, reset, c->req->now_ms / 1000);
        return -1;
    }
    rate_headers(c->resp, limit, remaining, reset);
    return 0;
}

/* ---- shared lookups -----------------------------------------------------------------------------
 */

static int is_admin(const dbx_state *st, int a)
{
    return st->accts[a].on_team &&
           (!strcmp(st->accts[a].role_code, "a") || !strcmp(st->accts[a].role_code, "d"));
}

static int can_read(const dbx_state *st, int a, const dbx_doc *d)
{
    if (d->vis & bit(a)) return 1;
    return is_admin(st, a) && st->accts[d->owner].on_team;
}

static int can_manage(const dbx_state *st, int a, const dbx_doc *d)
{
    if (d->owner == a) return 1;
    if (d->client_id[0])
        for (int i = 0; i < st->napps; i++)
            if (!strcmp(st->apps[i].client_id, d->client_id) && st->apps[i].owner == a) return 1;
    return 0;
}

/* The request named by the path, readable by the caller; NULL with 404/410 written. */
static dbx_doc *doc_for_read(dbx_ctx *c)
{
    dbx_doc *d = doc_find(c->st, c->id);
    if (!d || !can_read(c->st, c->acct, d)) {
        not_found(c->resp);
        return NULL;
    }
    if (d->state != D_ACTIVE || (d->hidden & bit(c->acct))) {
        deleted(c->resp);
        return NULL;
    }
    return d;
}

/* As doc_for_read, and the caller must be the sender (or own the API app it was sent with). */
static dbx_doc *doc_for_write(dbx_ctx *c)
{
    dbx_doc *d = doc_for_read(c);
    if (d && !can_manage(c->st, c->acct, d)) {
        dbx_err(c->resp, 403, "forbidden",
                "You do not have permission to modify this signature request.", NULL);
        return NULL;
    }
    return d;
}

/* page / page_size from the query string. 0, or -1 with a 400 written. */
static int paging(dbx_ctx *c, int64_t *page, int64_t *page_size)
{
    const char *p = sbx_query(c->req, "page", 0);
    const char *ps = sbx_query(c->req, "page_size", 0);
    *page = 1;
    *page_size = 20;
    if (p && *p && sb_parse_i64(p, 1, 1000000, page) != 0) {
        bad_request(c->resp, "Page must be a positive integer.", "page");
        return -1;
    }
    if (ps && *ps && sb_parse_i64(ps, 1, 100, page_size) != 0) {
        bad_request(c->resp, "Page size must be between 1 and 100.", "page_size");
        return -1;
    }
    return 0;
}

/* Accounts whose items a list shows, from account_id. 0, or -1 with a 400 written. */
static int list_mask(dbx_ctx *c, uint32_t *mask)
{
    const char *aid = sbx_query(c->req, "account_id", 0);
    const dbx_state *st = c->st;
    *mask = bit(c->acct);
    if (!aid || !*aid || !strcmp(aid, st->accts[c->acct].id)) return 0;
    if (!strcmp(aid, "all")) {
        if (st->accts[c->acct].on_team)
            for (int a = 0; a < st->nacct; a++)
                if (st->accts[a].on_team) *mask |= bit(a);
        return 0;
    }
    for (int a = 0; a < st->nacct; a++)
        if (!strcmp(aid, st->accts[a].id) && st->accts[a].on_team && st->accts[c->acct].on_team) {
            *mask = bit(a);
            return 0;
        }
    bad_request(c->resp, "The account_id must belong to a member of your team.", "account_id");
    return -1;
}

/* ---- search (https://developers.hellosign.com/api/reference/search/)
 * ------------------------------ */

enum {
    Q_ANY,
    Q_TO,
    Q_FROM,
    Q_TITLE,
    Q_SUBJECT,
    Q_MESSAGE,
    Q_METADATA,
    Q_FILENAME,
    Q_COMPLETE,
    Q_DECLINED,
    Q_AWAITING_MINE,
    Q_TEST_MODE,
    Q_CREATED,
    Q_TEMPLATE,
    Q_OWNER
};

typedef struct dbx_term {
    int field;
    int group; /* OR-group index: a document matches when every term of some group matches */
    char val[128];
    int64_t lo, hi; /* created range [lo, hi) */
} dbx_term;

typedef struct dbx_query {
    dbx_term t[DBX_MAX_TERMS];
    int n;
    int ngroups;
} dbx_query;

static int64_t day_start(const char *s, int *ok)
{
    int y, m, d;
    char tail;
    *ok = 0;
    if (sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || y < 1970 || y > 9999 || m < 1 ||
        m > 12 || d < 1 || d > 31)
        return 0;
    /* days from civil (Howard Hinnant) */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    *ok = 1;
    return (era * 146097 + doe - 719468) * 86400;
}

/* Compile the query string. 0, or -1 with a 400 written. */
static int query_compile(dbx_ctx *c, const char *q, dbx_query *out)
{
    memset(out, 0, sizeof *out);
    out->ngroups = 1;
    if (!q) return 0;
    size_t ql = strlen(q);
    if (ql > 1000) {
        bad_request(c->resp, "Query is too long.", "query");
        return -1;
    }
    char *buf = xstrdup(q);
    for (char *p = buf; *p; p++)
        if (*p == '+') *p = ' ';
    char *p = buf;
    int rc = 0;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '(' || *p == ')')
            p++;
        if (!*p) break;
        char tok[300];
        size_t tl = 0;
        int quoted = 0;
        /* a token runs to the next blank outside quotes and created:[... TO ...] ranges */
        int in_range = 0;
        while (*p && tl < sizeof tok - 1) {
            if (*p == '"') {
                quoted = !quoted;
                p++;
                continue;
            }
            if (!quoted && (*p == '[' || *p == '{')) in_range = 1;
            if (!quoted && (*p == ']' || *p == '}')) in_range = 0;
            if (!quoted && !in_range && (*p == ' ' || *p == '\t')) break;
            tok[tl++] = *p++;
        }
        tok[tl] = '\0';
        while (tl && (tok[tl - 1] == ')'))
            tok[--tl] = '\0';
        if (!tl) continue;
        if (!strcmp(tok, "AND")) continue;
        if (!strcmp(tok, "OR")) {
            if (out->n && out->t[out->n - 1].group == out->ngroups - 1) out->ngroups++;
            continue;
        }
        if (out->n >= DBX_MAX_TERMS) break;
        dbx_term *t = &out->t[out->n];
        memset(t, 0, sizeof *t);
        t->group = out->ngroups - 1;
        char *colon = strchr(tok, ':');
        const char *val = tok;
        t->field = Q_ANY;
        if (colon) {
            *colon = '\0';
            static const struct {
                const char *n;
                int f;
            } fields[] = {{"to", Q_TO},
                          {"from", Q_FROM},
                          {"title", Q_TITLE},
                          {"subject", Q_SUBJECT},
                          {"message", Q_MESSAGE},
                          {"metadata", Q_METADATA},
                          {"filename", Q_FILENAME},
                          {"complete", Q_COMPLETE},
                          {"declined", Q_DECLINED},
                          {"awaiting_my_signature", Q_AWAITING_MINE},
                          {"test_mode", Q_TEST_MODE},
                          {"created", Q_CREATED},
                          {"template", Q_TEMPLATE},
                          {"owner", Q_OWNER}};
            int found = 0;
            for (size_t i = 0; i < NELEM(fields); i++)
                if (!strcmp(tok, fields[i].n)) {
                    t->field = fields[i].f;
                    found = 1;
                }
            if (found)
                val = colon + 1;
            else
                *colon = ':';
        }
        if (val[0] == '*') {
            bad_request(c->resp, "Leading wildcards are not supported in search queries.", "query");
            rc = -1;
            break;
        }
        if (t->field == Q_CREATED) {
            char open = val[0];
            size_t vl = strlen(val);
            char close = vl ? val[vl - 1] : 0;
            char lo[32] = "", hi[32] = "";
            const char *to = strstr(val, " TO ");
            if ((open != '[' && open != '{') || (close != ']' && close != '}') || !to) {
                bad_request(c->resp,
                            "Invalid created range; use created:[YYYY-MM-DD TO YYYY-MM-DD].",
                            "query");
                rc = -1;
                break;
            }
            snprintf(lo, sizeof lo, "%.*s", (int)(to - val - 1), val + 1);
            snprintf(hi, sizeof hi, "%.*s", (int)(val + vl - 1 - (to + 4)), to + 4);
            int ok1 = 1, ok2 = 1;
            t->lo = strcmp(lo, "*") ? day_start(lo, &ok1) : INT64_MIN;
            t->hi = strcmp(hi, "*") ? day_start(hi, &ok2) : INT64_MAX;
            if (!ok1 || !ok2) {
                bad_request(c->resp, "Invalid date in created range.", "query");
                rc = -1;
                break;
            }
            if (open == '{' && t->lo != INT64_MIN) t->lo += 86400;
            if (close == ']' && t->hi != INT64_MAX) t->hi += 86400;
        } else {
            snprintf(t->val, sizeof t->val, "%.127s", val);
            size_t vl = strlen(t->val);
            if (vl && t->val[vl - 1] == '*') t->val[vl - 1] = '\0';
        }
        out->n++;
    }
    free(buf);
    return rc;
}

/* Search terms match at the start of a word, case-insensitively (the index is word-based). */
static int has(const char *hay, const char *needle)
{
    if (!hay || !*needle) return 0;
    for (const char *p = hay; (p = strcasestr(p, needle)) != NULL; p++)
        if (p == hay || !isalnum((unsigned char)p[-1])) return 1;
    return 0;
}

static int truthy(const char *v)
{
    return !strcasecmp(v, "true") || !strcmp(v, "1");
}

static int term_doc(const dbx_state *st, int me, const dbx_term *t, const dbx_doc *d)
{
    const char *v = t->val;
    const char *mine = st->accts[me].email;
    switch (t->field) {
    case Q_TO: {
        const char *who = !strcasecmp(v, "me") ? mine : v;
        for (int i = 0; i < d->nsg; i++)
            if (has(d->sg[i].email, who) || has(d->sg[i].name, who)) return 1;
        return 0;
    }
    case Q_FROM:
    case Q_OWNER: {
        const char *who = !strcasecmp(v, "me") ? mine : v;
        return has(st->accts[d->owner].email, who) || has(st->accts[d->owner].name, who);
    }
    case Q_TITLE:
        return has(d->title, v);
    case Q_SUBJECT:
        return has(d->subject, v);
    case Q_MESSAGE:
        return has(d->message, v);
    case Q_METADATA:
        return has(d->meta_text, v);
    case Q_FILENAME:
        for (int i = 0; i < d->nfiles; i++)
            if (has(d->files[i], v)) return 1;
        return 0;
    case Q_COMPLETE:
        return d->is_complete == truthy(v);
    case Q_DECLINED:
        return d->is_declined == truthy(v);
    case Q_TEST_MODE:
        return d->test_mode == truthy(v);
    case Q_AWAITING_MINE: {
        int cur = doc_in_progress(d) ? doc_current(d) : -1;
        int mineturn = 0;
        for (int i = 0; i < d->nsg; i++)
            if (!strcasecmp(d->sg[i].email, mine) && d->sg[i].status == S_AWAITING &&
                (!d->ordered || i == cur))
                mineturn = 1;
        return mineturn == truthy(v);
    }
    case Q_CREATED:
        return d->created_at >= t->lo && d->created_at < t->hi;
    case Q_TEMPLATE:
        for (int i = 0; i < d->ntids; i++)
            if (!strcasecmp(d->tids[i], v)) return 1;
        return 0;
    default:
        if (has(d->title, v) || has(d->subject, v) || has(d->message, v) || has(d->meta_text, v) ||
            has(st->accts[d->owner].email, v))
            return 1;
        for (int i = 0; i < d->nsg; i++)
            if (has(d->sg[i].email, v) || has(d->sg[i].name, v)) return 1;
        for (int i = 0; i < d->nfiles; i++)
            if (has(d->files[i], v)) return 1;
        return 0;
    }
}

static int term_tpl(const dbx_state *st, int me, const dbx_term *t, const dbx_template *tp)
{
    const char *v = t->val;
    switch (t->field) {
    case Q_TITLE:
        return has(tp->title, v);
    case Q_MESSAGE:
        return has(tp->message, v);
    case Q_FILENAME:
        return has(tp->filename, v);
    case Q_OWNER:
    case Q_FROM: {
        const char *who = !strcasecmp(v, "me") ? st->accts[me].email : v;
        return has(st->accts[tp->owner].email, who);
    }
    case Q_ANY:
        if (has(tp->title, v) || has(tp->message, v) || has(tp->filename, v)) return 1;
        for (int i = 0; i < tp->nroles; i++)
            if (has(tp->roles[i], v)) return 1;
        return 0;
    default:
        return 0;
    }
}

static int query_match(const dbx_state *st, int me, const dbx_query *q, const dbx_doc *d,
                       const dbx_template *tp)
{
    if (!q->n) return 1;
    for (int g = 0; g < q->ngroups; g++) {
        int all = 1, any = 0;
        for (int i = 0; i < q->n && all; i++) {
            if (q->t[i].group != g) continue;
            any = 1;
            all = d ? term_doc(st, me, &q->t[i], d) : term_tpl(st, me, &q->t[i], tp);
        }
        if (any && all) return 1;
    }
    return 0;
}

/* ---- handlers: account, API apps, team ----------------------------------------------------------
 */

static void h_account_get(dbx_ctx *c)
{
    const dbx_state *st = c->st;
    const char *aid = sbx_query(c->req, "account_id", 0);
    const char *em = sbx_query(c->req, "email_address", 0);
    int target = c->acct;
    if ((aid && *aid) || (em && *em)) {
        target = -1;
        for (int a = 0; a < st->nacct; a++) {
            int hit =
                (aid && *aid) ? !strcmp(aid, st->accts[a].id) : !strcasecmp(em, st->accts[a].email);
            if (hit && (a == c->acct || (st->accts[a].on_team && st->accts[c->acct].on_team)))
                target = a;
        }
        if (target < 0) {
            not_found(c->resp);
            return;
        }
    }
    reply_obj(c->resp, 200, "account", account_json(st, target), NULL);
}

static const char *const dbx_locales[] = {
    "en-US", "en-GB", "fr-FR", "de-DE", "sv-SE", "zh-CN", "da-DK", "nl-NL", "es-ES", "es-MX",
    "it-IT", "ja-JP", "ko-KR", "pt-BR", "nb-NO", "pl-PL", "ru-RU", "zh-TW", NULL};

static void h_account_put(dbx_ctx *c)
{
    dbx_account *ac = &c->st->accts[c->acct];
    const char *cb = NULL, *loc = NULL, *aid = NULL;
    int rc;
    if ((rc = p_str(c->pr.p, "account_id", &aid)) < 0 || (rc == 1 && *aid && strcmp(aid, ac->id))) {
        bad_request(c->resp, "You can only update your own account.", "account_id");
        return;
    }
    if ((rc = p_str(c->pr.p, "callback_url", &cb)) < 0 || (rc == 1 && *cb && !url_ok(cb))) {
        bad_request(c->resp, "The callback URL is not a valid URL.", "callback_url");
        return;
    }
    if ((rc = p_str(c->pr.p, "locale", &loc)) < 0) {
        bad_request(c->resp, "Invalid locale.", "locale");
        return;
    }
    if (rc == 1) {
        int ok = 0;
        for (int i = 0; dbx_locales[i]; i++)
            if (!strcmp(dbx_locales[i], loc)) ok = 1;
        if (!ok) {
            bad_request(c->resp, "Invalid locale.", "locale");
            return;
        }
    }
    if (cb) sb_strlcpy(ac->callback_url, cb, sizeof ac->callback_url);
    if (loc) sb_strlcpy(ac->locale, loc, sizeof ac->locale);
    reply_obj(c->resp, 200, "account", account_json(c->st, c->acct), NULL);
}

static void h_account_verify(dbx_ctx *c)
{
    const char *em = NULL;
    int rc = p_str(c->pr.p, "email_address", &em);
    if (rc <= 0 || !*em) {
        bad_request(c->resp, "This value should not be blank.", "email_address");
        return;
    }
    if (!email_ok(em)) {
        bad_request(c->resp, "This value is not a valid email address.", "email_address");
        return;
    }
    cJSON *root = cJSON_CreateObject();
    for (int a = 0; a < c->st->nacct; a++)
        if (!strcasecmp(c->st->accts[a].email, em)) {
            cJSON *o = cJSON_AddObjectToObject(root, "account");
            cJSON_AddStringToObject(o, "email_address", c->st->accts[a].email);
            break;
        }
    sbx_resp_json(c->resp, 200, root);
}

static int app_visible(const dbx_state *st, int a, const dbx_app *ap)
{
    return ap->owner == a || (is_admin(st, a) && st->accts[ap->owner].on_team);
}

static void h_app_list(dbx_ctx *c)
{
    int64_t page, ps;
    if (paging(c, &page, &ps) < 0) return;
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "api_apps");
    int64_t total = 0;
    for (int i = 0; i < c->st->napps; i++) {
        if (!app_visible(c->st, c->acct, &c->st->apps[i])) continue;
        if (total >= (page - 1) * ps && total < page * ps)
            cJSON_AddItemToArray(arr, app_json(c->st, &c->st->apps[i], c->acct));
        total++;
    }
    cJSON_AddItemToObject(root, "list_info", list_info(page, ps, total));
    sbx_resp_json(c->resp, 200, root);
}

static void h_app_get(dbx_ctx *c)
{
    for (int i = 0; i < c->st->napps; i++)
        if (!strcmp(c->st->apps[i].client_id, c->id) &&
            app_visible(c->st, c->acct, &c->st->apps[i])) {
            reply_obj(c->resp, 200, "api_app", app_json(c->st, &c->st->apps[i], c->acct), NULL);
            return;
        }
    not_found(c->resp);
}

static void team_missing(sbx_resp *resp)
{
    dbx_err(resp, 404, "not_found", "Team does not exist", NULL);
}

static void h_team(dbx_ctx *c)
{
    const dbx_state *st = c->st;
    if (!st->accts[c->acct].on_team) {
        team_missing(c->resp);
        return;
    }
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "name", st->team_name);
    cJSON *accs = cJSON_AddArrayToObject(t, "accounts");
    for (int a = 0; a < st->nacct; a++)
        if (st->accts[a].on_team) cJSON_AddItemToArray(accs, account_json(st, a));
    cJSON_AddArrayToObject(t, "invited_accounts");
    cJSON *inv = cJSON_AddArrayToObject(t, "invited_emails");
    for (int i = 0; i < 2; i++)
        cJSON_AddItemToArray(inv, cJSON_CreateString(st->invited[i]));
    reply_obj(c->resp, 200, "team", t, NULL);
}

static int team_size(const dbx_state *st)
{
    int n = 0;
    for (int a = 0; a < st->nacct; a++)
        n += st->accts[a].on_team;
    return n;
}

static void h_team_info(dbx_ctx *c)
{
    const dbx_state *st = c->st;
    const char *tid = sbx_query(c->req, "team_id", 0);
    if (!st->accts[c->acct].on_team || (tid && *tid && strcmp(tid, st->team_id))) {
        team_missing(c->resp);
        return;
    }
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "team_id", st->team_id);
    cJSON_AddStringToObject(t, "name", st->team_name);
    cJSON_AddNumberToObject(t, "num_members", team_size(st));
    cJSON_AddNumberToObject(t, "num_sub_teams", 0);
    reply_obj(c->resp, 200, "team", t, NULL);
}

static void h_team_members(dbx_ctx *c)
{
    const dbx_state *st = c->st;
    int64_t page, ps;
    if (paging(c, &page, &ps) < 0) return;
    if (!st->accts[c->acct].on_team || strcmp(c->id, st->team_id)) {
        team_missing(c->resp);
        return;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "team_members");
    int64_t total = 0;
    for (int a = 0; a < st->nacct; a++) {
        if (!st->accts[a].on_team) continue;
        if (total >= (page - 1) * ps && total < page * ps) {
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "account_id", st->accts[a].id);
            cJSON_AddStringToObject(m, "email_address", st->accts[a].email);
            const char *rc = st->accts[a].role_code;
            cJSON_AddStringToObject(m, "role",
                                    !strcmp(rc, "a")   ? "Admin"
                                    : !strcmp(rc, "d") ? "Developer"
                                                       : "Member");
            cJSON_AddItemToArray(arr, m);
        }
        total++;
    }
    cJSON_AddItemToObject(root, "list_info", list_info(page, ps, total));
    sbx_resp_json(c->resp, 200, root);
}

/* ---- handlers: templates
 * -------------------------------------------------------------------------- */

static void h_tpl_list(dbx_ctx *c)
{
    int64_t page, ps;
    uint32_t mask;
    dbx_query q;
    if (paging(c, &page, &ps) < 0 || list_mask(c, &mask) < 0 ||
        query_compile(c, sbx_query(c->req, "query", 0), &q) < 0)
        return;
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "templates");
    int64_t total = 0;
    for (int i = c->st->ntpl - 1; i >= 0; i--) {
        const dbx_template *t = &c->st->tpls[i];
        if (!(t->access & mask) || !query_match(c->st, c->acct, &q, NULL, t)) continue;
        if (total >= (page - 1) * ps && total < page * ps)
            cJSON_AddItemToArray(arr, template_json(c->st, t, c->acct));
        total++;
    }
    cJSON_AddItemToObject(root, "list_info", list_info(page, ps, total));
    sbx_resp_json(c->resp, 200, root);
}

static const dbx_template *tpl_for_read(dbx_ctx *c)
{
    const dbx_template *t = tpl_find(c->st, c->id);
    uint32_t mask = bit(c->acct);
    if (is_admin(c->st, c->acct))
        for (int a = 0; a < c->st->nacct; a++)
            if (c->st->accts[a].on_team) mask |= bit(a);
    if (!t || !(t->access & mask)) {
        not_found(c->resp);
        return NULL;
    }
    return t;
}

static void h_tpl_get(dbx_ctx *c)
{
    const dbx_template *t = tpl_for_read(c);
    if (t) reply_obj(c->resp, 200, "template", template_json(c->st, t, c->acct), NULL);
}

/* ---- handlers: listing and reading signature requests -------------------------------------------
 */

static void h_sr_list(dbx_ctx *c)
{
    int64_t page, ps;
    uint32_t mask;
    dbx_query q;
    if (paging(c, &page, &ps) < 0 || list_mask(c, &mask) < 0 ||
        query_compile(c, sbx_query(c->req, "query", 0), &q) < 0)
        return;
    dbx_state *st = c->st;
    sb_buf *b = raw_begin(c->resp);
    xappend(b, "{\"signature_requests\":[");
    int64_t total = 0, first = (page - 1) * ps, last = page * ps;
    int out = 0;
    for (size_t i = st->ndocs; i-- > 0;) {
        dbx_doc *d = st->docs[i];
        if (d->state != D_ACTIVE || !(d->vis & mask) || (d->hidden & bit(c->acct))) continue;
        if (q.n && !query_match(st, c->acct, &q, d, NULL)) continue;
        if (total >= first && total < last) {
            size_t n;
            const char *t = doc_text(st, d, &n);
            if (out++) xappend(b, ",");
            xappendn(b, t, n);
        }
        total++;
    }
    char tail[200];
    snprintf(tail, sizeof tail,
             "],\"list_info\":{\"page\":%" PRId64 ",\"num_pages\":%" PRId64
             ",\"num_results\":%" PRId64 ",\"page_size\":%" PRId64 "}}",
             page, (total + ps - 1) / ps, total, ps);
    xappend(b, tail);
    raw_end(c->resp, 200);
}

static void h_sr_get(dbx_ctx *c)
{
    dbx_doc *d = doc_for_read(c);
    if (d) reply_doc(c->st, c->resp, d, NULL);
}

/* ---- handlers: sending
 * ------------------------------------------------------------------------------ */

enum { M_SEND, M_EMBEDDED, M_TEMPLATE, M_EMBEDDED_TEMPLATE };

static const char *const dbx_send_params[] = {"allow_decline",
                                              "allow_reassign",
                                              "attachments",
                                              "cc_email_addresses",
                                              "ccs",
                                              "client_id",
                                              "custom_fields",
                                              "expires_at",
                                              "field_options",
                                              "file_urls",
                                              "files",
                                              "form_field_groups",
                                              "form_field_rules",
                                              "form_fields_per_document",
                                              "grouped_signers",
                                              "hide_text_tags",
                                              "is_eid",
                                              "is_qualified_signature",
                                              "message",
                                              "metadata",
                                              "populate_auto_fill_fields",
                                              "signer_experience",
                                              "signers",
                                              "signing_options",
                                              "signing_redirect_url",
                                              "subject",
                                              "template_ids",
                                              "test_mode",
                                              "title",
                                              "use_text_tags",
                                              NULL};

/* 400 naming the parameter pre[i]suf (pre alone when i < 0). Always -1. */
static int badp(dbx_ctx *c, const char *msg, const char *pre, int i, const char *suf)
{
    char path[96];
    if (i < 0)
        snprintf(path, sizeof path, "%s%s", pre, suf);
    else
        snprintf(path, sizeof path, "%s[%d]%s", pre, i, suf);
    bad_request(c->resp, msg, path);
    return -1;
}

static int str_len_ok(dbx_ctx *c, const char *key, size_t max, const char **out)
{
    int rc = p_str(c->pr.p, key, out);
    if (rc < 0) {
        bad_request(c->resp, "This value should be of type string.", key);
        return -1;
    }
    if (rc == 1 && strlen(*out) > max) {
        char msg[96];
        snprintf(msg, sizeof msg, "This value is too long. It should have %zu characters or less.",
                 max);
        bad_request(c->resp, msg, key);
        return -1;
    }
    if (rc == 1 && !sb_utf8_valid(*out, strlen(*out))) {
        bad_request(c->resp, "This value is not valid UTF-8.", key);
        return -1;
    }
    return 0;
}

static int bool_ok(dbx_ctx *c, const char *key, int *out)
{
    *out = 0;
    if (p_bool(c->pr.p, key, out) < 0) {
        bad_request(c->resp, "This value should be of type boolean.", key);
        return -1;
    }
    return 0;
}

static int count_nodes(const cJSON *j, int depth)
{
    int n = 0;
    if (depth > 4) return 1000;
    for (const cJSON *c = j ? j->child : NULL; c; c = c->next)
        n += 1 + count_nodes(c, depth + 1);
    return n;
}

static int metadata_ok(dbx_ctx *c, cJSON **out)
{
    *out = NULL;
    cJSON *m = jget(c->pr.p, "metadata");
    if (!m || cJSON_IsNull(m)) return 0;
    if (!cJSON_IsObject(m)) {
        bad_request(c->resp, "Metadata must be an object of key-value pairs.", "metadata");
        return -1;
    }
    if (cJSON_GetArraySize(m) > 10 || count_nodes(m, 0) > 60) {
        bad_request(c->resp, "Metadata can have at most 10 keys (50 nested keys).", "metadata");
        return -1;
    }
    for (const cJSON *k = m->child; k; k = k->next) {
        if (!k->string || strlen(k->string) > 40) {
            bad_request(c->resp, "Metadata keys must be 40 characters or less.", "metadata");
            return -1;
        }
        char *t = cJSON_IsString(k) ? NULL : cJSON_PrintUnformatted(k);
        size_t vl = cJSON_IsString(k) ? strlen(k->valuestring) : (t ? strlen(t) : 0);
        free(t);
        if (vl > 1000) {
            bad_request(c->resp, "Metadata values must be 1000 characters or less.", "metadata");
            return -1;
        }
    }
    *out = cJSON_Duplicate(m, 1);
    return 0;
}

static int enum_ok(const char *v, const char *const *allowed)
{
    for (int i = 0; allowed[i]; i++)
        if (!strcmp(v, allowed[i])) return 1;
    return 0;
}

/* Validate one signer object and append it to d. 0, or -1 with a 400 written. */
static int parse_signer(dbx_ctx *c, const cJSON *o, const char *path, int tmode,
                        const char *role_from_key, int test_mode, dbx_doc *d, int64_t *order)
{
    char p[160];
    const char *name = NULL, *email = NULL, *role = NULL, *pin = NULL, *sms = NULL, *smst = NULL;
    if (!cJSON_IsObject(o)) {
        bad_request(c->resp, "Each signer must be an object.", path);
        return -1;
    }
#define SPATH(f) (snprintf(p, sizeof p, "%s[%s]", path, f), p)
    if (p_str(o, "name", &name) <= 0 || !*name) {
        bad_request(c->resp, "This value should not be blank.", SPATH("name"));
        return -1;
    }
    if (strlen(name) > 255 || !sb_utf8_valid(name, strlen(name))) {
        bad_request(c->resp, "This value is too long. It should have 255 characters or less.",
                    SPATH("name"));
        return -1;
    }
    if (p_str(o, "email_address", &email) <= 0 || !*email) {
        bad_request(c->resp, "This value should not be blank.", SPATH("email_address"));
        return -1;
    }
    if (!email_ok(email)) {
        bad_request(c->resp, "This value is not a valid email address.", SPATH("email_address"));
        return -1;
    }
    if (tmode) {
        if (role_from_key)
            role = role_from_key;
        else if (p_str(o, "role", &role) <= 0 || !*role) {
            bad_request(c->resp, "This value should not be blank.", SPATH("role"));
            return -1;
        }
    }
    *order = -1;
    if (!tmode) {
        int rc = p_int(o, "order", order);
        if (rc < 0 || (rc == 1 && (*order < 0 || *order > 1000))) {
            bad_request(c->resp, "Signer order must be a non-negative integer.", SPATH("order"));
            return -1;
        }
        if (rc == 0) *order = -1;
    }
    int rc = p_str(o, "pin", &pin);
    if (rc < 0 || (rc == 1 && *pin && (strlen(pin) < 4 || strlen(pin) > 12))) {
        bad_request(c->resp, "The access code must be 4 to 12 characters long.", SPATH("pin"));
        return -1;
    }
    if (rc == 1)
        for (const char *q = pin; *q; q++)
            if (!isalnum((unsigned char)*q)) {
                bad_request(c->resp, "The access code may only contain letters and numbers.",
                            SPATH("pin"));
                return -1;
            }
    rc = p_str(o, "sms_phone_number", &sms);
    if (rc < 0 || (rc == 1 && *sms &&
                   (sms[0] != '+' || strlen(sms) < 8 || strlen(sms) > 16 ||
                    strspn(sms + 1, "0123456789") != strlen(sms) - 1))) {
        bad_request(c->resp, "The phone number must be in E.164 format.",
                    SPATH("sms_phone_number"));
        return -1;
    }
    if (rc == 1 && *sms && test_mode) {
        bad_request(c->resp, "SMS features are not available in test mode.",
                    SPATH("sms_phone_number"));
        return -1;
    }
    static const char *const smstypes[] = {"authentication", "delivery", NULL};
    rc = p_str(o, "sms_phone_number_type", &smst);
    if (rc < 0 || (rc == 1 && !enum_ok(smst, smstypes))) {
        bad_request(c->resp, "Must be one of: authentication, delivery.",
                    SPATH("sms_phone_number_type"));
        return -1;
    }
#undef SPATH
    if (d->nsg >= DBX_MAX_SIGNERS) {
        bad_request(c->resp, "Too many signers.", "signers");
        return -1;
    }
    dbx_signer *g = doc_add_signer(d);
    sig_new_id(c->st, g);
    sb_strlcpy(g->name, name, sizeof g->name);
    sb_strlcpy(g->email, email, sizeof g->email);
    if (role) sb_strlcpy(g->role, role, sizeof g->role);
    g->status = S_AWAITING;
    g->has_pin = pin && *pin;
    if (sms && *sms) {
        sb_strlcpy(g->sms, sms, sizeof g->sms);
        if (smst && !strcmp(smst, "delivery"))
            g->has_sms_delivery = 1;
        else
            g->has_sms_auth = 1;
    }
    return 0;
}

static int parse_signers_plain(dbx_ctx *c, dbx_doc *d, int test_mode)
{
    cJSON *sg = jget(c->pr.p, "signers"), *gs = jget(c->pr.p, "grouped_signers");
    if (cJSON_IsNull(sg)) sg = NULL;
    if (cJSON_IsNull(gs)) gs = NULL;
    if (sg && gs) {
        bad_request(c->resp, "Specify either signers or grouped_signers, not both.", "signers");
        return -1;
    }
    if (!sg && !gs) {
        bad_request(c->resp, "This value should not be blank.", "signers");
        return -1;
    }
    int any_order = 0;
    if (sg) {
        if (!cJSON_IsArray(sg) || cJSON_GetArraySize(sg) == 0) {
            bad_request(c->resp, "Signers must be a non-empty array.", "signers");
            return -1;
        }
        int i = 0;
        for (const cJSON *o = sg->child; o; o = o->next, i++) {
            char path[48];
            int64_t ord;
            snprintf(path, sizeof path, "signers[%d]", i);
            if (parse_signer(c, o, path, 0, NULL, test_mode, d, &ord) < 0) return -1;
            d->sg[d->nsg - 1].order = (int)ord;
            if (ord >= 0) any_order = 1;
        }
    } else {
        if (!cJSON_IsArray(gs) || cJSON_GetArraySize(gs) == 0) {
            bad_request(c->resp, "Grouped signers must be a non-empty array.", "grouped_signers");
            return -1;
        }
        int i = 0;
        for (const cJSON *g = gs->child; g; g = g->next, i++) {
            const char *gname = NULL;
            int64_t gord = -1;
            if (!cJSON_IsObject(g))
                return badp(c, "Each group must be an object.", "grouped_signers", i, "");
            if (p_str(g, "group", &gname) <= 0 || !*gname)
                return badp(c, "This value should not be blank.", "grouped_signers", i, "[group]");
            int rc = p_int(g, "order", &gord);
            if (rc < 0 || (rc == 1 && (gord < 0 || gord > 1000)))
                return badp(c, "Group order must be a non-negative integer.", "grouped_signers", i,
                            "[order]");
            if (rc == 1)
                any_order = 1;
            else
                gord = -1;
            const cJSON *ms = jget(g, "signers");
            if (!cJSON_IsArray(ms) || cJSON_GetArraySize(ms) == 0)
                return badp(c, "Each group needs signers.", "grouped_signers", i, "[signers]");
            char guid[41];
            rand_hex(c->st, 20, guid);
            int j = 0;
            for (const cJSON *o = ms->child; o; o = o->next, j++) {
                char path[64];
                int64_t ignored;
                snprintf(path, sizeof path, "grouped_signers[%d][signers][%d]", i, j);
                if (parse_signer(c, o, path, 0, NULL, test_mode, d, &ignored) < 0) return -1;
                dbx_signer *s = &d->sg[d->nsg - 1];
                s->order = (int)gord;
                sb_strlcpy(s->group_guid, guid, sizeof s->group_guid);
            }
        }
    }
    d->ordered = any_order;
    if (any_order) { /* signers without an order go after the ordered ones */
        int maxo = -1;
        for (int i = 0; i < d->nsg; i++)
            if (d->sg[i].order > maxo) maxo = d->sg[i].order;
        for (int i = 0; i < d->nsg; i++)
            if (d->sg[i].order < 0) d->sg[i].order = ++maxo;
    }
    return 0;
}

/* Roles of the templates in template_ids (validated) into tpls. 0, or -1 with an error. */
static int parse_templates(dbx_ctx *c, const dbx_template **tpls, int *ntpl)
{
    cJSON *ids = jget(c->pr.p, "template_ids");
    *ntpl = 0;
    if (!ids || cJSON_IsNull(ids)) {
        bad_request(c->resp, "This value should not be blank.", "template_ids");
        return -1;
    }
    if (!cJSON_IsArray(ids) || cJSON_GetArraySize(ids) == 0) {
        bad_request(c->resp, "Template ids must be a non-empty array.", "template_ids");
        return -1;
    }
    if (cJSON_GetArraySize(ids) > DBX_MAX_TIDS) {
        bad_request(c->resp, "At most 5 templates may be combined.", "template_ids");
        return -1;
    }
    int i = 0;
    for (const cJSON *t = ids->child; t; t = t->next, i++) {
        if (!cJSON_IsString(t))
            return badp(c, "Template ids must be strings.", "template_ids", i, "");
        const dbx_template *tp = tpl_find(c->st, t->valuestring);
        uint32_t mask = bit(c->acct);
        if (!tp || !(tp->access & mask))
            return badp(c, "Template not found.", "template_ids", i, "");
        for (int k = 0; k < *ntpl; k++)
            if (tpls[k] == tp) return badp(c, "Duplicate template id.", "template_ids", i, "");
        tpls[(*ntpl)++] = tp;
    }
    return 0;
}

static int role_index(const dbx_template *const *tpls, int ntpl, const char *role, int cc)
{
    int idx = 0;
    for (int t = 0; t < ntpl; t++) {
        int n = cc ? tpls[t]->ncc : tpls[t]->nroles;
        for (int r = 0; r < n; r++, idx++)
            if (!strcmp(cc ? tpls[t]->cc_roles[r] : tpls[t]->roles[r], role)) return idx;
    }
    return -1;
}

static int parse_template_people(dbx_ctx *c, dbx_doc *d, const dbx_template *const *tpls, int ntpl,
                                 int test_mode)
{
    cJSON *sg = jget(c->pr.p, "signers");
    if (!sg || cJSON_IsNull(sg)) {
        bad_request(c->resp, "This value should not be blank.", "signers");
        return -1;
    }
    if (!(cJSON_IsArray(sg) || cJSON_IsObject(sg)) || !sg->child) {
        bad_request(c->resp, "Signers must be a non-empty array.", "signers");
        return -1;
    }
    int i = 0;
    for (const cJSON *o = sg->child; o; o = o->next, i++) {
        char path[160];
        int64_t ignored;
        const char *rk = cJSON_IsObject(sg) ? o->string : NULL; /* signers[Role][name]= */
        if (rk)
            snprintf(path, sizeof path, "signers[%.100s]", rk);
        else
            snprintf(path, sizeof path, "signers[%d]", i);
        if (parse_signer(c, o, path, 1, rk, test_mode, d, &ignored) < 0) return -1;
        dbx_signer *s = &d->sg[d->nsg - 1];
        int ri = role_index(tpls, ntpl, s->role, 0);
        if (ri < 0) {
            char msg[160], p2[180];
            snprintf(msg, sizeof msg, "Role \"%.60s\" does not exist in the template.", s->role);
            snprintf(p2, sizeof p2, "%s[role]", path);
            bad_request(c->resp, msg, p2);
            return -1;
        }
        for (int k = 0; k < d->nsg - 1; k++)
            if (!strcmp(d->sg[k].role, s->role)) {
                char p2[180];
                snprintf(p2, sizeof p2, "%s[role]", path);
                bad_request(c->resp, "Each role can only have one signer.", p2);
                return -1;
            }
        s->order = ri;
    }
    for (int t = 0; t < ntpl; t++)
        for (int r = 0; r < tpls[t]->nroles; r++) {
            int found = 0;
            for (int k = 0; k < d->nsg; k++)
                if (!strcmp(d->sg[k].role, tpls[t]->roles[r])) found = 1;
            if (!found) {
                char msg[160];
                snprintf(msg, sizeof msg, "A signer is required for the role \"%.60s\".",
                         tpls[t]->roles[r]);
                bad_request(c->resp, msg, "signers");
                return -1;
            }
        }
    d->ordered = 1;
    /* ccs: [{role,email_address}] or ccs[Role][email_address]= or ccs[Role]=email */
    cJSON *ccs = jget(c->pr.p, "ccs");
    if (ccs && !cJSON_IsNull(ccs) && !(cJSON_IsArray(ccs) || cJSON_IsObject(ccs))) {
        bad_request(c->resp, "CCs must be an array.", "ccs");
        return -1;
    }
    int nccs = 0;
    char cc_roles_seen[8][48];
    i = 0;
    for (const cJSON *o = ccs ? ccs->child : NULL; o; o = o->next, i++) {
        const char *role = NULL, *email = NULL;
        char path[160];
        if (cJSON_IsObject(ccs)) {
            snprintf(path, sizeof path, "ccs[%.100s]", o->string);
            role = o->string;
            if (cJSON_IsString(o))
                email = o->valuestring;
            else
                p_str(o, "email_address", &email);
        } else {
            snprintf(path, sizeof path, "ccs[%d]", i);
            if (!cJSON_IsObject(o)) {
                bad_request(c->resp, "Each CC must be an object.", path);
                return -1;
            }
            p_str(o, "role", &role);
            p_str(o, "email_address", &email);
        }
        char p2[180];
        if (!role || !*role) {
            snprintf(p2, sizeof p2, "%s[role]", path);
            bad_request(c->resp, "This value should not be blank.", p2);
            return -1;
        }
        if (!email || !email_ok(email)) {
            snprintf(p2, sizeof p2, "%s[email_address]", path);
            bad_request(c->resp, "This value is not a valid email address.", p2);
            return -1;
        }
        if (role_index(tpls, ntpl, role, 1) < 0) {
            snprintf(p2, sizeof p2, "%s[role]", path);
            bad_request(c->resp, "This CC role does not exist in the template.", p2);
            return -1;
        }
        if (d->ncc >= DBX_MAX_CC) {
            bad_request(c->resp, "Too many CCs.", "ccs");
            return -1;
        }
        doc_add_cc(d, email);
        if (nccs < 8) sb_strlcpy(cc_roles_seen[nccs++], role, sizeof cc_roles_seen[0]);
    }
    for (int t = 0; t < ntpl; t++)
        for (int r = 0; r < tpls[t]->ncc; r++) {
            int found = 0;
            for (int k = 0; k < nccs; k++)
                if (!strcmp(cc_roles_seen[k], tpls[t]->cc_roles[r])) found = 1;
            if (!found) {
                char msg[160];
                snprintf(msg, sizeof msg, "A CC email address is required for the role \"%.60s\".",
                         tpls[t]->cc_roles[r]);
                bad_request(c->resp, msg, "ccs");
                return -1;
            }
        }
    return 0;
}

/* custom_fields: [{name*, value, editor, required}] (a JSON string is accepted too). */
static int parse_custom_fields(dbx_ctx *c, dbx_doc *d, const dbx_template *const *tpls, int ntpl)
{
    cJSON *cf = jget(c->pr.p, "custom_fields");
    cJSON *parsed = NULL;
    if (!cf || cJSON_IsNull(cf)) return 0;
    if (cJSON_IsString(cf)) {
        parsed = cJSON_Parse(cf->valuestring);
        cf = parsed;
    }
    if (!cJSON_IsArray(cf)) {
        cJSON_Delete(parsed);
        bad_request(c->resp, "Custom fields must be an array.", "custom_fields");
        return -1;
    }
    int i = 0, rc = 0;
    for (const cJSON *o = cf->child; o && !rc; o = o->next, i++) {
        const char *name = NULL, *value = NULL, *editor = NULL;
        int req = 0;
        if (!cJSON_IsObject(o)) {
            rc = badp(c, "Each custom field must be an object.", "custom_fields", i, "");
            break;
        }
        if (p_str(o, "name", &name) <= 0 || !*name || strlen(name) > 255) {
            rc = badp(c, "This value should not be blank.", "custom_fields", i, "[name]");
            break;
        }
        if (p_str(o, "value", &value) < 0 || (value && strlen(value) > 5000)) {
            rc = badp(c, "This value should be a string.", "custom_fields", i, "[value]");
            break;
        }
        if (p_bool(o, "required", &req) < 0) {
            rc = badp(c, "This value should be of type boolean.", "custom_fields", i, "[required]");
            break;
        }
        if (p_str(o, "editor", &editor) < 0) {
            rc = badp(c, "This value should be a string.", "custom_fields", i, "[editor]");
            break;
        }
        if (req && (!editor || !*editor)) {
            rc = badp(c, "An editor is required when the custom field is required.",
                      "custom_fields", i, "[editor]");
            break;
        }
        if (editor && *editor && ntpl && role_index(tpls, ntpl, editor, 0) < 0) {
            rc = badp(c, "The editor must be one of the signer roles.", "custom_fields", i,
                      "[editor]");
            break;
        }
        if (cJSON_GetArraySize(d->custom_fields) >= 50) {
            rc = badp(c, "Too many custom fields.", "custom_fields", -1, "");
            break;
        }
        char api_id[32];
        snprintf(api_id, sizeof api_id, "custom_%d", i + 1);
        for (int t = 0; t < ntpl; t++)
            for (int k = 0; k < tpls[t]->ncf; k++)
                if (!strcmp(tpls[t]->cfields[k], name))
                    snprintf(api_id, sizeof api_id, "cf_%d", k + 1);
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "name", name);
        cJSON_AddStringToObject(f, "type", "text");
        cJSON_AddStringToObject(f, "value", value ? value : "");
        cJSON_AddBoolToObject(f, "required", req);
        cJSON_AddStringToObject(f, "api_id", api_id);
        jstr_or_null(f, "editor", editor);
        cJSON_AddItemToArray(d->custom_fields, f);
    }
    cJSON_Delete(parsed);
    return rc;
}

/* Files (uploads) or file_urls. `required`: one of them must be there. */
static int parse_files(dbx_ctx *c, dbx_doc *d, int required)
{
    cJSON *urls = jget(c->pr.p, "file_urls");
    if (cJSON_IsNull(urls)) urls = NULL;
    if (c->pr.files_in_json) {
        bad_request(c->resp, "Files must be uploaded with a multipart/form-data request.", "files");
        return -1;
    }
    if (c->pr.too_many_files) {
        bad_request(c->resp, "Too many files: at most 20 may be sent.", "files");
        return -1;
    }
    if (c->pr.nfiles && urls) {
        bad_request(c->resp, "Specify either files or file_urls, not both.", "files");
        return -1;
    }
    if (!c->pr.nfiles && !urls) {
        if (!required) return 0;
        bad_request(c->resp, "You must specify either files or file_urls.", "files");
        return -1;
    }
    for (int i = 0; i < c->pr.nfiles; i++) {
        if (c->pr.files[i].len == 0) return badp(c, "The file is empty.", "files", i, "");
        doc_add_file(d, c->pr.files[i].name);
    }
    if (urls) {
        if (!cJSON_IsArray(urls) || cJSON_GetArraySize(urls) == 0) {
            bad_request(c->resp, "File URLs must be a non-empty array.", "file_urls");
            return -1;
        }
        if (cJSON_GetArraySize(urls) > DBX_MAX_FILES) {
            bad_request(c->resp, "Too many files: at most 20 may be sent.", "file_urls");
            return -1;
        }
        int i = 0;
        for (const cJSON *u = urls->child; u; u = u->next, i++) {
            if (!cJSON_IsString(u) || !url_ok(u->valuestring))
                return badp(c, "This value is not a valid URL.", "file_urls", i, "");
            const char *s = u->valuestring;
            const char *end = s + strcspn(s, "?#");
            const char *slash = s;
            for (const char *q = s; q < end; q++)
                if (*q == '/') slash = q + 1;
            char name[128];
            size_t nl = (size_t)(end - slash);
            if (nl == 0 || strchr(slash, '/') == slash)
                snprintf(name, sizeof name, "document_%d.pdf", i + 1);
            else
                snprintf(name, sizeof name, "%.*s", (int)(nl > 100 ? 100 : nl), slash);
            doc_add_file(d, name);
        }
    }
    return 0;
}

static const dbx_app *app_find(const dbx_state *st, const char *client_id)
{
    for (int i = 0; i < st->napps; i++)
        if (!strcmp(st->apps[i].client_id, client_id)) return &st->apps[i];
    return NULL;
}

static void h_send_common(dbx_ctx *c, int mode)
{
    dbx_state *st = c->st;
    int tmode = mode == M_TEMPLATE || mode == M_EMBEDDED_TEMPLATE;
    int embedded = mode == M_EMBEDDED || mode == M_EMBEDDED_TEMPLATE;
    if (st->ndocs >= DBX_MAX_DOCS) {
        dbx_err(c->resp, 402, "payment_required", "You must upgrade to make additional requests.",
                NULL);
        return;
    }
    const dbx_template *tpls[DBX_MAX_TIDS];
    int ntpl = 0;
    const char *title = NULL, *subject = NULL, *message = NULL, *client_id = NULL, *redirect = NULL;
    int test_mode = 0, b;
    int64_t expires_at = 0;
    cJSON *meta = NULL;
    /* unknown parameters are ignored with a warning */
    for (const cJSON *k = c->pr.p->child; k; k = k->next)
        if (k->string && !enum_ok(k->string, dbx_send_params)) {
            char msg[160];
            snprintf(msg, sizeof msg, "Parameter \"%.80s\" is not supported and was ignored.",
                     k->string);
            add_warning(&c->warnings, "unsupported_parameter", msg);
        }
    if (tmode && parse_templates(c, tpls, &ntpl) < 0) return;
    if (str_len_ok(c, "title", 255, &title) < 0 || str_len_ok(c, "subject", 255, &subject) < 0 ||
        str_len_ok(c, "message", 5000, &message) < 0 ||
        str_len_ok(c, "client_id", 64, &client_id) < 0 ||
        str_len_ok(c, "signing_redirect_url", 2000, &redirect) < 0)
        return;
    if (redirect && *redirect && !url_ok(redirect)) {
        bad_request(c->resp, "This value is not a valid URL.", "signing_redirect_url");
        return;
    }
    if (bool_ok(c, "test_mode", &test_mode) < 0 || bool_ok(c, "allow_decline", &b) < 0 ||
        bool_ok(c, "allow_reassign", &b) < 0 || bool_ok(c, "hide_text_tags", &b) < 0 ||
        bool_ok(c, "is_eid", &b) < 0)
        return;
    int use_text_tags = 0;
    if (bool_ok(c, "use_text_tags", &use_text_tags) < 0) return;
    const dbx_app *app = NULL;
    if (client_id && *client_id) {
        app = app_find(st, client_id);
        if (!app || (embedded && !app_visible(st, c->acct, app))) {
            bad_request(c->resp, "No API app was found with this client_id.", "client_id");
            return;
        }
    } else if (embedded) {
        bad_request(c->resp, "This value should not be blank.", "client_id");
        return;
    }
    if (app && !app->approved && !test_mode) {
        test_mode = 1;
        add_warning(&c->warnings, "test_mode_only",
                    "This API app is not approved for production: the request was sent in "
                    "test_mode.");
    }
    if (!tmode) {
        int rc = p_int(c->pr.p, "expires_at", &expires_at);
        if (rc < 0 ||
            (rc == 1 && (expires_at <= c->now || expires_at > c->now + 86400LL * 365 * 10))) {
            bad_request(c->resp, "The expiration date must be a unix time in the future.",
                        "expires_at");
            return;
        }
    }
    /* signing_options / field_options / signer_experience enums */
    static const char *const sig_types[] = {"draw", "phone", "type", "upload", NULL};
    static const char *const date_formats[] = {"MM / DD / YYYY",
                                               "MM - DD - YYYY",
                                               "DD / MM / YYYY",
                                               "DD - MM - YYYY",
                                               "YYYY / MM / DD",
                                               "YYYY - MM - DD",
                                               NULL};
    static const char *const form_views[] = {"disabled", "enabled", "enabled_by_default", "forced",
                                             NULL};
    const cJSON *so = jget(c->pr.p, "signing_options");
    if (so && !cJSON_IsNull(so)) {
        const char *dt = NULL;
        if (!cJSON_IsObject(so) || p_str(so, "default_type", &dt) <= 0 || !enum_ok(dt, sig_types)) {
            bad_request(c->resp, "Must be one of: draw, phone, type, upload.",
                        "signing_options[default_type]");
            return;
        }
    }
    const cJSON *fo = jget(c->pr.p, "field_options");
    if (fo && !cJSON_IsNull(fo)) {
        const char *df = NULL;
        if (!cJSON_IsObject(fo) || p_str(fo, "date_format", &df) <= 0 ||
            !enum_ok(df, date_formats)) {
            bad_request(c->resp, "The date format is not supported.", "field_options[date_format]");
            return;
        }
    }
    const cJSON *se = jget(c->pr.p, "signer_experience");
    if (se && !cJSON_IsNull(se)) {
        const char *fv = NULL;
        if (!cJSON_IsObject(se) || p_str(se, "form_view", &fv) < 0 ||
            (fv && !enum_ok(fv, form_views))) {
            bad_request(c->resp, "Must be one of: disabled, enabled, enabled_by_default, forced.",
                        "signer_experience[form_view]");
            return;
        }
    }
    const cJSON *ffpd = jget(c->pr.p, "form_fields_per_document");
    int has_fields = 0;
    if (ffpd && !cJSON_IsNull(ffpd) && !(cJSON_IsString(ffpd) && !*ffpd->valuestring)) {
        if (!cJSON_IsArray(ffpd)) {
            bad_request(c->resp, "Form fields must be an array.", "form_fields_per_document");
            return;
        }
        has_fields = cJSON_GetArraySize(ffpd) > 0;
    }
    if (metadata_ok(c, &meta) < 0) return;

    dbx_doc *d = xcalloc(1, sizeof *d);
    d->metadata = meta ? meta : cJSON_CreateObject();
    d->custom_fields = cJSON_CreateArray();
    d->owner = c->acct;
    d->state = D_ACTIVE;
    if (tmode) {
        for (int i = 0; i < ntpl; i++) {
            doc_add_file(d, tpls[i]->filename);
            snprintf(d->tids[d->ntids++], sizeof d->tids[0], "%s", tpls[i]->id);
        }
        if (parse_files(c, d, 0) < 0 || parse_template_people(c, d, tpls, ntpl, test_mode) < 0 ||
            parse_custom_fields(c, d, tpls, ntpl) < 0) {
            doc_free(d);
            return;
        }
    } else {
        if (parse_files(c, d, 1) < 0 || parse_signers_plain(c, d, test_mode) < 0 ||
            parse_custom_fields(c, d, NULL, 0) < 0) {
            doc_free(d);
            return;
        }
        cJSON *cc = jget(c->pr.p, "cc_email_addresses");
        if (cc && !cJSON_IsNull(cc)) {
            if (!cJSON_IsArray(cc) || cJSON_GetArraySize(cc) > DBX_MAX_CC) {
                doc_free(d);
                bad_request(c->resp, "CC email addresses must be an array of at most 25.",
                            "cc_email_addresses");
                return;
            }
            int i = 0;
            for (const cJSON *e = cc->child; e; e = e->next, i++) {
                if (!cJSON_IsString(e) || !*e->valuestring) {
                    doc_free(d);
                    badp(c, "This value should not be blank.", "cc_email_addresses", i, "");
                    return;
                }
                if (!email_ok(e->valuestring)) {
                    doc_free(d);
                    badp(c, "This value is not a valid email address.", "cc_email_addresses", i,
                         "");
                    return;
                }
                doc_add_cc(d, e->valuestring);
            }
        }
        d->sig_page = !has_fields && !use_text_tags;
    }
    rand_hex(st, 20, d->id);
    const char *dt = title && *title       ? title
                     : tmode               ? tpls[0]->title
                     : subject && *subject ? subject
                                           : d->files[0];
    d->title = xstrdup(dt);
    d->subject = xstrdup(subject && *subject ? subject : dt);
    if (message && *message)
        d->message = xstrdup(message);
    else if (tmode && tpls[0]->message[0])
        d->message = xstrdup(tpls[0]->message);
    if (redirect && *redirect) d->redirect_url = xstrdup(redirect);
    d->test_mode = test_mode;
    d->embedded = embedded;
    if (app) sb_strlcpy(d->client_id, app->client_id, sizeof d->client_id);
    d->expires_at = expires_at;
    d->created_at = c->now;
    d->ready_ms = c->req->now_ms + DBX_PREP_MS;
    d->last_step_ms = c->req->now_ms;
    doc_set_meta_text(d);
    doc_recompute_vis(st, d);
    doc_add(st, d);
    cJSON *w = c->warnings;
    c->warnings = NULL;
    reply_doc(st, c->resp, d, w);
}

static void h_send(dbx_ctx *c)
{
    h_send_common(c, M_SEND);
}

static void h_send_tpl(dbx_ctx *c)
{
    h_send_common(c, M_TEMPLATE);
}

static void h_create_embedded(dbx_ctx *c)
{
    h_send_common(c, M_EMBEDDED);
}

static void h_create_embedded_tpl(dbx_ctx *c)
{
    h_send_common(c, M_EMBEDDED_TEMPLATE);
}

/* ---- handlers: actions on a request -----------------------------------------------------------
 */

/* Why a request is not open for signing (NULL if it is). */
static const char *closed_reason(const dbx_doc *d)
{
    if (d->cancel_pending) return "This signature request is being canceled.";
    if (d->is_complete) return "This signature request has already been completed.";
    if (d->is_declined) return "This signature request has been declined.";
    if (doc_expired(d)) return "This signature request has expired.";
    if (d->has_error) return "This signature request has an error and cannot be changed.";
    return NULL;
}

static void h_remind(dbx_ctx *c)
{
    const char *em = NULL, *name = NULL;
    int rc = p_str(c->pr.p, "email_address", &em);
    if (rc <= 0 || !*em) {
        bad_request(c->resp, "This value should not be blank.", "email_address");
        return;
    }
    if (!email_ok(em)) {
        bad_request(c->resp, "This value is not a valid email address.", "email_address");
        return;
    }
    if (p_str(c->pr.p, "name", &name) < 0) {
        bad_request(c->resp, "This value should be of type string.", "name");
        return;
    }
    dbx_doc *d = doc_for_write(c);
    if (!d) return;
    if (d->embedded) {
        bad_request(c->resp, "Reminders cannot be sent for embedded signature requests.", NULL);
        return;
    }
    const char *why = closed_reason(d);
    if (why) {
        bad_request(c->resp, why, NULL);
        return;
    }
    int idx = -1;
    for (int i = 0; i < d->nsg; i++)
        if (!strcasecmp(d->sg[i].email, em) && (!name || !*name || !strcmp(d->sg[i].name, name)))
            idx = i;
    if (idx < 0) {
        bad_request(c->resp, "No signer with this email address is on this signature request.",
                    "email_address");
        return;
    }
    dbx_signer *g = &d->sg[idx];
    if (g->status == S_SIGNED) {
        bad_request(c->resp, "This signer has already signed.", "email_address");
        return;
    }
    if (g->status == S_HOLD_REQ || g->status == S_ON_HOLD) {
        bad_request(c->resp, "This signature request is on hold.", NULL);
        return;
    }
    if (g->status != S_AWAITING) {
        bad_request(c->resp, "This signer cannot be reminded.", "email_address");
        return;
    }
    if (d->ordered && doc_current(d) != idx) {
        bad_request(c->resp, "It is not this signer's turn to sign yet.", "email_address");
        return;
    }
    if (g->reminded_at && c->now - g->reminded_at < DBX_REMIND_GAP) {
        bad_request(c->resp,
                    "You cannot send a reminder within 1 hour of the last reminder that was sent.",
                    NULL);
        return;
    }
    g->reminded_at = c->now;
    doc_touch(d);
    reply_doc(c->st, c->resp, d, NULL);
}

static void h_cancel(dbx_ctx *c)
{
    dbx_doc *d = doc_for_write(c);
    if (!d) return;
    if (d->cancel_pending) {
        dbx_err(c->resp, 409, "conflict", "An identical request is already being processed.", NULL);
        return;
    }
    if (d->is_complete || d->is_declined || doc_expired(d)) {
        bad_request(c->resp,
                    d->is_complete   ? "This signature request is complete and cannot be canceled."
                    : d->is_declined ? "This signature request was declined and cannot be canceled."
                                     : "This signature request has expired and cannot be canceled.",
                    NULL);
        return;
    }
    d->cancel_pending = 1;
    d->cancel_at_ms = c->req->now_ms + DBX_CANCEL_MS;
    sbx_resp_bytes(c->resp, 200, "application/json", NULL, 0);
}

static void h_remove(dbx_ctx *c)
{
    dbx_doc *d = doc_for_read(c);
    if (!d) return;
    if (!d->is_complete && !d->is_declined) {
        bad_request(c->resp,
                    "Only signature requests that are fully executed (signed or declined) can be "
                    "removed. Use /signature_request/cancel for incomplete requests.",
                    NULL);
        return;
    }
    d->hidden |= bit(c->acct);
    sbx_resp_bytes(c->resp, 200, "application/json", NULL, 0);
}

static void h_update(dbx_ctx *c)
{
    const char *sid = NULL, *em = NULL, *name = NULL;
    int64_t exp = 0;
    if (p_str(c->pr.p, "signature_id", &sid) <= 0 || !*sid) {
        bad_request(c->resp, "This value should not be blank.", "signature_id");
        return;
    }
    int rc_em = p_str(c->pr.p, "email_address", &em);
    int rc_nm = p_str(c->pr.p, "name", &name);
    int rc_ex = p_int(c->pr.p, "expires_at", &exp);
    if (rc_em < 0 || (rc_em == 1 && !email_ok(em))) {
        bad_request(c->resp, "This value is not a valid email address.", "email_address");
        return;
    }
    if (rc_nm < 0 || (rc_nm == 1 && (strlen(name) > 255 || !sb_utf8_valid(name, strlen(name))))) {
        bad_request(c->resp, "This value is too long. It should have 255 characters or less.",
                    "name");
        return;
    }
    if (rc_ex < 0 || (rc_ex == 1 && (exp <= c->now || exp > c->now + 86400LL * 365 * 10))) {
        bad_request(c->resp, "The expiration date must be a unix time in the future.",
                    "expires_at");
        return;
    }
    if (rc_em != 1 && (rc_nm != 1 || !*name) && rc_ex != 1) {
        bad_request(c->resp, "You must specify an email_address or a name to update.",
                    "email_address");
        return;
    }
    dbx_doc *d = doc_for_write(c);
    if (!d) return;
    if (d->sig_page) {
        bad_request(c->resp,
                    "This action cannot be performed on a signature request with an appended "
                    "signature page.",
                    NULL);
        return;
    }
    const char *why = closed_reason(d);
    if (why) {
        bad_request(c->resp, why, NULL);
        return;
    }
    dbx_signer *g = NULL;
    for (int i = 0; i < d->nsg; i++)
        if (!strcmp(d->sg[i].sig_id, sid)) g = &d->sg[i];
    if (!g) {
        dbx_err(c->resp, 404, "not_found", "Signature not found.", "signature_id");
        return;
    }
    if (g->status == S_SIGNED || g->status == S_DECLINED) {
        bad_request(c->resp, "This signer has already signed and cannot be updated.",
                    "signature_id");
        return;
    }
    if (rc_nm == 1 && *name) sb_strlcpy(g->name, name, sizeof g->name);
    if (rc_em == 1 && strcasecmp(g->email, em)) {
        sb_strlcpy(g->email, em, sizeof g->email);
        sig_new_id(c->st, g);
        g->viewed_at = 0;
        g->reminded_at = 0;
        doc_recompute_vis(c->st, d);
    }
    if (rc_ex == 1) d->expires_at = exp;
    doc_touch(d);
    reply_doc(c->st, c->resp, d, NULL);
}

static void h_release_hold(dbx_ctx *c)
{
    dbx_doc *d = doc_for_write(c);
    if (!d) return;
    int held = 0;
    for (int i = 0; i < d->nsg; i++)
        if (d->sg[i].status == S_HOLD_REQ) {
            d->sg[i].status = S_AWAITING;
            held = 1;
        }
    if (!held) {
        bad_request(c->resp, "This signature request is not on hold.", NULL);
        return;
    }
    d->last_step_ms = c->req->now_ms;
    doc_touch(d);
    reply_doc(c->st, c->resp, d, NULL);
}

/* ---- handlers: files --------------------------------------------------------------------------
 */

static int file_type_zip(dbx_ctx *c, int *zip)
{
    const char *ft = sbx_query(c->req, "file_type", 0);
    *zip = 0;
    if (!ft || !*ft || !strcmp(ft, "pdf")) return 0;
    if (!strcmp(ft, "zip")) {
        *zip = 1;
        return 0;
    }
    bad_request(c->resp, "The file_type must be pdf or zip.", "file_type");
    return -1;
}

static dbx_doc *doc_for_files(dbx_ctx *c)
{
    dbx_doc *d = doc_for_read(c);
    if (d && d->ready_ms > c->req->now_ms) {
        dbx_err(c->resp, 409, "conflict",
                "Files are still being processed. Please try again later.", NULL);
        return NULL;
    }
    return d;
}

static void disposition(sbx_resp *resp, const char *title, const char *ext, int attachment)
{
    char fn[120], v[200];
    size_t k = 0;
    for (const char *p = title; *p && k < 80; p++)
        fn[k++] = (isalnum((unsigned char)*p) || *p == '-' || *p == '_') ? *p : '_';
    fn[k] = '\0';
    snprintf(v, sizeof v, "%s; filename=\"%s.%s\"", attachment ? "attachment" : "inline",
             k ? fn : "document", ext);
    sbx_resp_header(resp, "Content-Disposition", v);
}

static void send_file(dbx_ctx *c, const dbx_doc *d, const dbx_template *t, int zip)
{
    sb_buf b;
    sb_buf_init(&b, 64u << 20);
    if (d)
        doc_file(c->st, d, zip, &b);
    else
        tpl_file(t, zip, &b);
    sbx_resp_bytes(c->resp, 200, zip ? "application/zip" : "application/pdf", b.data, b.len);
    disposition(c->resp, d ? d->title : t->title, zip ? "zip" : "pdf", 1);
    sb_buf_free(&b);
}

static void h_files(dbx_ctx *c)
{
    int zip;
    if (file_type_zip(c, &zip) < 0) return;
    dbx_doc *d = doc_for_files(c);
    if (d) send_file(c, d, NULL, zip);
}

static void h_tpl_files(dbx_ctx *c)
{
    int zip;
    if (file_type_zip(c, &zip) < 0) return;
    const dbx_template *t = tpl_for_read(c);
    if (t) send_file(c, NULL, t, zip);
}

static void file_url_reply(dbx_ctx *c, const char *id, int is_template)
{
    const char *fd = sbx_query(c->req, "force_download", 0);
    int64_t force = 1;
    if (fd && *fd && sb_parse_i64(fd, 0, 1, &force) != 0) {
        bad_request(c->resp, "force_download must be 0 or 1.", "force_download");
        return;
    }
    dbx_state *st = c->st;
    /* reuse the oldest slot when full */
    int slot = st->nlinks < DBX_MAX_LINKS ? st->nlinks++ : -1;
    if (slot < 0) {
        slot = 0;
        for (int i = 1; i < DBX_MAX_LINKS; i++)
            if (st->links[i].exp_ms < st->links[slot].exp_ms) slot = i;
    }
    dbx_link *l = &st->links[slot];
    memset(l, 0, sizeof *l);
    sbx_token("", 24, l->tok, sizeof l->tok);
    sb_strlcpy(l->doc_id, id, sizeof l->doc_id);
    l->is_template = is_template;
    l->force_download = (int)force;
    l->exp_ms = c->req->now_ms + DBX_LINK_TTL * 1000ull;
    char url[600];
    snprintf(url, sizeof url, "%s/s3/%s/%s.pdf", st->base, l->tok, id);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "file_url", url);
    cJSON_AddNumberToObject(root, "expires_at", (double)(c->now + DBX_LINK_TTL));
    sbx_resp_json(c->resp, 200, root);
}

static void h_files_url(dbx_ctx *c)
{
    dbx_doc *d = doc_for_files(c);
    if (d) file_url_reply(c, d->id, 0);
}

static void h_tpl_files_url(dbx_ctx *c)
{
    const dbx_template *t = tpl_for_read(c);
    if (t) file_url_reply(c, t->id, 1);
}

static void data_uri_reply(dbx_ctx *c, const dbx_doc *d, const dbx_template *t)
{
    sb_buf pdf;
    sb_buf_init(&pdf, 64u << 20);
    if (d)
        doc_file(c->st, d, 0, &pdf);
    else
        tpl_file(t, 0, &pdf);
    size_t el = sb_base64_len(pdf.len);
    char *enc = xmalloc(el + 64);
    int pre = snprintf(enc, 64, "data:application/pdf;base64,");
    sb_base64_encode((const unsigned char *)pdf.data, pdf.len, enc + pre);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "data_uri", enc);
    free(enc);
    sb_buf_free(&pdf);
    sbx_resp_json(c->resp, 200, root);
}

static void h_files_data_uri(dbx_ctx *c)
{
    dbx_doc *d = doc_for_files(c);
    if (d) data_uri_reply(c, d, NULL);
}

static void h_tpl_files_data_uri(dbx_ctx *c)
{
    const dbx_template *t = tpl_for_read(c);
    if (t) data_uri_reply(c, NULL, t);
}

/* ---- handlers: embedded signing -----------------------------------------------------------------
 */

static void h_sign_url(dbx_ctx *c)
{
    dbx_state *st = c->st;
    dbx_doc *d = NULL;
    dbx_signer *g = NULL;
    int gi = -1;
    if (strlen(c->id) == 32)
        for (size_t i = 0; i < st->ndocs && !g; i++)
            for (int k = 0; k < st->docs[i]->nsg; k++)
                if (!strcmp(st->docs[i]->sg[k].sig_id, c->id)) {
                    d = st->docs[i];
                    g = &d->sg[k];
                    gi = k;
                    break;
                }
    if (!d || !can_manage(st, c->acct, d)) {
        not_found(c->resp);
        return;
    }
    if (d->state != D_ACTIVE || (d->hidden & bit(c->acct))) {
        deleted(c->resp);
        return;
    }
    if (!d->embedded) {
        bad_request(c->resp, "This signature request was not created for embedded signing.", NULL);
        return;
    }
    if (g->status != S_AWAITING || !doc_in_progress(d)) {
        dbx_err(c->resp, 409, "conflict",
                g->status == S_SIGNED ? "This request has already been signed."
                                      : "This signature is not awaiting a signature.",
                NULL);
        return;
    }
    if (d->ordered && doc_current(d) != gi) {
        dbx_err(c->resp, 409, "conflict", "It is not this signer's turn to sign yet.", NULL);
        return;
    }
    char tok[48], url[600];
    sbx_token("", 16, tok, sizeof tok);
    snprintf(url, sizeof url, "%s/app/embedded/sign?signature_id=%s&token=%s", st->base, g->sig_id,
             tok);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "sign_url", url);
    cJSON_AddNumberToObject(e, "expires_at", (double)(c->now + 3600));
    reply_obj(c->resp, 200, "embedded", e, NULL);
}

/* ---- REST routing -------------------------------------------------------------------------------
 */

#define SR_SCOPES (SC_REQUEST_SIGNATURE | SC_SIGNATURE_REQUEST_ACCESS)

static const dbx_route dbx_routes[] = {
    {"GET", "/account", "/v3/account", 0, SC_ACCOUNT_ACCESS | SC_BASIC_ACCOUNT_INFO, h_account_get},
    {"PUT", "/account", "/v3/account", 0, SC_ACCOUNT_ACCESS, h_account_put},
    {"POST", "/account/verify", "/v3/account/verify", 0, SC_ACCOUNT_ACCESS, h_account_verify},
    {"GET", "/api_app/list", "/v3/api_app/list", 0, SC_API_APP_ACCESS, h_app_list},
    {"GET", "/api_app/{}", "/v3/api_app/{client_id}", 0, SC_API_APP_ACCESS, h_app_get},
    {"GET", "/embedded/sign_url/{}", "/v3/embedded/sign_url/{signature_id}", 0,
     SC_SIGNATURE_REQUEST_ACCESS, h_sign_url},
    {"GET", "/signature_request/list", "/v3/signature_request/list", 0, SR_SCOPES, h_sr_list},
    {"POST", "/signature_request/send", "/v3/signature_request/send", 1, SR_SCOPES, h_send},
    {"POST", "/signature_request/send_with_template", "/v3/signature_request/send_with_template", 1,
     SR_SCOPES, h_send_tpl},
    {"POST", "/signature_request/create_embedded", "/v3/signature_request/create_embedded", 1,
     SC_SIGNATURE_REQUEST_ACCESS, h_create_embedded},
    {"POST", "/signature_request/create_embedded_with_template",
     "/v3/signature_request/create_embedded_with_template", 1, SC_SIGNATURE_REQUEST_ACCESS,
     h_create_embedded_tpl},
    {"POST", "/signature_request/remind/{}", "/v3/signature_request/remind/{signature_request_id}",
     0, SR_SCOPES, h_remind},
    {"POST", "/signature_request/cancel/{}", "/v3/signature_request/cancel/{signature_request_id}",
     0, SR_SCOPES, h_cancel},
    {"POST", "/signature_request/remove/{}", "/v3/signature_request/remove/{signature_request_id}",
     0, SC_API_KEY_ONLY, h_remove},
    {"POST", "/signature_request/update/{}", "/v3/signature_request/update/{signature_request_id}",
     0, SC_SIGNATURE_REQUEST_ACCESS, h_update},
    {"POST", "/signature_request/release_hold/{}",
     "/v3/signature_request/release_hold/{signature_request_id}", 0, SC_SIGNATURE_REQUEST_ACCESS,
     h_release_hold},
    {"GET", "/signature_request/files/{}", "/v3/signature_request/files/{signature_request_id}", 1,
     SR_SCOPES, h_files},
    {"GET", "/signature_request/files_as_file_url/{}",
     "/v3/signature_request/files_as_file_url/{signature_request_id}", 1, SR_SCOPES, h_files_url},
    {"GET", "/signature_request/files_as_data_uri/{}",
     "/v3/signature_request/files_as_data_uri/{signature_request_id}", 1, SR_SCOPES,
     h_files_data_uri},
    {"GET", "/signature_request/{}", "/v3/signature_request/{signature_request_id}", 0, SR_SCOPES,
     h_sr_get},
    {"GET", "/template/list", "/v3/template/list", 0, SC_TEMPLATE_ACCESS, h_tpl_list},
    {"GET", "/template/files/{}", "/v3/template/files/{template_id}", 1, SC_TEMPLATE_ACCESS,
     h_tpl_files},
    {"GET", "/template/files_as_file_url/{}", "/v3/template/files_as_file_url/{template_id}", 1,
     SC_TEMPLATE_ACCESS, h_tpl_files_url},
    {"GET", "/template/files_as_data_uri/{}", "/v3/template/files_as_data_uri/{template_id}", 1,
     SC_TEMPLATE_ACCESS, h_tpl_files_data_uri},
    {"GET", "/template/{}", "/v3/template/{template_id}", 0, SC_TEMPLATE_ACCESS, h_tpl_get},
    {"GET", "/team", "/v3/team", 0, SC_TEAM_ACCESS, h_team},
    {"GET", "/team/info", "/v3/team/info", 0, SC_TEAM_ACCESS, h_team_info},
    {"GET", "/team/members/{}", "/v3/team/members/{team_id}", 0, SC_TEAM_ACCESS, h_team_members},
};

/* Match path against pattern; the "{}" segment is copied into id. 1 on match. */
static int path_match(const char *pattern, const char *path, char *id, size_t idcap)
{
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (p[0] == '{' && p[1] == '}') {
            size_t n = strcspn(s, "/");
            if (n == 0 || n >= idcap) return 0;
            memcpy(id, s, n);
            id[n] = '\0';
            s += n;
            p += 2;
            continue;
        }
        if (*p != *s) return 0;
        p++;
        s++;
    }
    return *p == '\0' && *s == '\0';
}

static const dbx_route *route_find(const char *method, const char *path, char *id, size_t idcap,
                                   int *wrong_method)
{
    *wrong_method = 0;
    for (size_t i = 0; i < NELEM(dbx_routes); i++) {
        if (!path_match(dbx_routes[i].pattern, path, id, idcap)) continue;
        if (!strcmp(dbx_routes[i].method, method)) return &dbx_routes[i];
        *wrong_method = 1;
    }
    return NULL;
}

static void rest(dbx_state *st, sbx *s, sbx_req *req, sbx_resp *resp)
{
    dbx_ctx c;
    memset(&c, 0, sizeof c);
    c.st = st;
    c.s = s;
    c.req = req;
    c.resp = resp;
    c.now = (int64_t)(req->now_ms / 1000);
    c.id = "";
    const char *sub = req->path + 3; /* below /v3 */
    int wrong = 0;
    const dbx_route *rt = route_find(req->method, sub, c.idbuf, sizeof c.idbuf, &wrong);
    if (rt) {
        set_route(req, rt->method, rt->name);
        c.id = c.idbuf;
    }
    if (!rt) { /* unknown paths answer 404 before any credential check (live: /v3/oauth/token) */
        if (wrong)
            dbx_err(resp, 405, "method_not_supported", "Method not supported.", NULL);
        else
            not_found(resp);
        return;
    }
    if (authenticate(&c) < 0) return;
    if (c.bearer && ((rt->scopes & SC_API_KEY_ONLY) || !(rt->scopes & c.scopes))) {
        dbx_err(resp, 403, "forbidden",
                (rt->scopes & SC_API_KEY_ONLY)
                    ? "This endpoint can only be used with an API key."
                    : "The access token does not have the scope this endpoint requires.",
                NULL);
        return;
    }
    if (!strcmp(req->method, "POST") || !strcmp(req->method, "PUT")) {
        if (parse_params(req, resp, &c.pr) < 0) return;
    }
    if (rate_limit(&c, rt) == 0) rt->fn(&c);
    cJSON_Delete(c.pr.p);
    cJSON_Delete(c.warnings);
}

/* ---- OAuth (app.hellosign.com stand-in)
 * ---------------------------------------------------------- */

static const char *kv_get(const sbx_kv *kv, size_t n, const char *k)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(kv[i].key, k)) return kv[i].val;
    return NULL;
}

static int loopback_uri(const char *u)
{
    static const char *const hosts[] = {"http://127.0.0.1", "http://localhost", "http://[::1]",
                                        NULL};
    for (int i = 0; hosts[i]; i++) {
        size_t hl = strlen(hosts[i]);
        if (strncasecmp(u, hosts[i], hl)) continue;
        const char *p = u + hl;
        if (*p == ':') {
            p++;
            size_t d = strspn(p, "0123456789");
            if (d == 0 || d > 5) return 0;
            p += d;
        }
        return *p == '\0' || *p == '/' || *p == '?';
    }
    return 0;
}

static int redirect_ok(const dbx_app *ap, const char *u)
{
    size_t n = strlen(u);
    if (n == 0 || n > 500 || strchr(u, '#')) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f) return 0;
    return !strcmp(u, ap->callback_url) || !strcmp(u, "https://claude.ai/api/mcp/auth_callback") ||
           !strcmp(u, "https://claude.com/api/mcp/auth_callback") ||
           !strcmp(u, "https://chatgpt.com/connector_platform_oauth_redirect") || loopback_uri(u);
}

static void html_page(sbx_resp *resp, int status, const char *title, const char *body_html)
{
    sb_buf b;
    sb_buf_init(&b, 1 << 20);
    xappend(&b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
    html_append(&b, title);
    xappend(&b, "</title></head><body><h1>");
    html_append(&b, title);
    xappend(&b, "</h1>");
    xappend(&b, body_html);
    xappend(&b, "</body></html>\n");
    sbx_resp_bytes(resp, status, "text/html; charset=utf-8", b.data, b.len);
    sb_buf_free(&b);
}

static void html_error(sbx_resp *resp, int status, const char *msg)
{
    sb_buf b;
    sb_buf_init(&b, 1 << 16);
    xappend(&b, "<p class=\"error\">");
    html_append(&b, msg);
    xappend(&b, "</p>");
    html_page(resp, status, "Dropbox Sign - Authorization error", b.data);
    sb_buf_free(&b);
}

static void redirect_with(sbx_resp *resp, const char *uri, const char *k1, const char *v1,
                          const char *k2, const char *v2, const char *k3, const char *v3)
{
    sb_buf b;
    sb_buf_init(&b, 8192);
    xappend(&b, uri);
    const char *ks[3] = {k1, k2, k3}, *vs[3] = {v1, v2, v3};
    int first = strchr(uri, '?') == NULL;
    for (int i = 0; i < 3; i++) {
        if (!ks[i] || !vs[i]) continue;
        xappend(&b, first ? "?" : "&");
        first = 0;
        xappend(&b, ks[i]);
        xappend(&b, "=");
        url_encode_append(&b, vs[i]);
    }
    sbx_resp_redirect(resp, b.data);
    sb_buf_free(&b);
}

static void authorize_form(dbx_state *st, sbx_resp *resp, int status, const dbx_app *ap,
                           const char *state, const char *redirect_uri, const char *error)
{
    sb_buf b;
    sb_buf_init(&b, 1 << 16);
    xappend(&b, "<p><strong>");
    html_append(&b, ap->name);
    xappend(&b, "</strong> would like to access your Dropbox Sign account (");
    cJSON *sc = cJSON_CreateArray();
    scope_list(ap->scopes, sc);
    int i = 0;
    for (const cJSON *x = sc->child; x; x = x->next, i++) {
        if (i) xappend(&b, ", ");
        html_append(&b, x->valuestring);
    }
    cJSON_Delete(sc);
    xappend(&b, ").</p>");
    if (error) {
        xappend(&b, "<p class=\"error\" role=\"alert\">");
        html_append(&b, error);
        xappend(&b, "</p>");
    }
    xappend(&b, "<form method=\"post\" action=\"");
    /* path only: the origin is the page's own */
    const char *path = strstr(st->base, "://");
    path = path ? strchr(path + 3, '/') : NULL;
    html_append(&b, path ? path : "/dropboxsign/global");
    xappend(&b, "/app/oauth/authorize\">\n"
                "<input type=\"hidden\" name=\"response_type\" value=\"code\">\n"
                "<input type=\"hidden\" name=\"client_id\" value=\"");
    html_append(&b, ap->client_id);
    xappend(&b, "\">\n<input type=\"hidden\" name=\"state\" value=\"");
    html_append(&b, state);
    xappend(&b, "\">\n<input type=\"hidden\" name=\"redirect_uri\" value=\"");
    html_append(&b, redirect_uri);
    xappend(&b, "\">\n<label>Email <input type=\"email\" name=\"email\" autocomplete=\"username\">"
                "</label>\n<label>Password <input type=\"password\" name=\"password\" "
                "autocomplete=\"current-password\"></label>\n"
                "<button type=\"submit\" name=\"action\" value=\"approve\">Approve</button>\n"
                "<button type=\"submit\" name=\"action\" value=\"deny\">Deny</button>\n"
                "</form>");
    html_page(resp, status, "Dropbox Sign - Authorize app", b.data);
    sb_buf_free(&b);
}

static void issue_code(dbx_state *st, sbx_req *req, sbx_resp *resp, const dbx_app *ap, int acct,
                       const char *state, const char *redirect_uri)
{
    /* drop used or expired codes, then the oldest if still full */
    int w = 0;
    for (int i = 0; i < st->ncodes; i++)
        if (!st->codes[i].used && st->codes[i].exp_ms > req->now_ms) st->codes[w++] = st->codes[i];
    st->ncodes = w;
    if (st->ncodes == DBX_MAX_CODES) {
        memmove(st->codes, st->codes + 1, (DBX_MAX_CODES - 1) * sizeof st->codes[0]);
        st->ncodes--;
    }
    dbx_code *cd = &st->codes[st->ncodes++];
    memset(cd, 0, sizeof *cd);
    sbx_token("", 24, cd->code, sizeof cd->code);
    sb_strlcpy(cd->client_id, ap->client_id, sizeof cd->client_id);
    sb_strlcpy(cd->redirect_uri, redirect_uri, sizeof cd->redirect_uri);
    sb_strlcpy(cd->state, state, sizeof cd->state);
    cd->acct = acct;
    cd->exp_ms = req->now_ms + DBX_CODE_TTL_MS;
    sb_strlcpy(req->account_id, st->accts[acct].id, sizeof req->account_id);
    redirect_with(resp, redirect_uri, "code", cd->code, "state", state, NULL, NULL);
}

static void oauth_authorize(dbx_state *st, sbx *s, sbx_req *req, sbx_resp *resp)
{
    int post = !strcmp(req->method, "POST");
    set_route(req, req->method, "/app/oauth/authorize");
    sb_strlcpy(req->auth_scheme, "none", sizeof req->auth_scheme);
    if (!post && strcmp(req->method, "GET")) {
        html_error(resp, 405, "Method not allowed.");
        return;
    }
    sbx_kv *form = NULL;
    size_t nform = 0;
    if (post && sbx_parse_form(req->body, req->body_len, &form, &nform) != 0) {
        html_error(resp, 400, "Malformed form.");
        return;
    }
#define P(k) (post ? kv_get(form, nform, k) : sbx_query(req, k, 0))
    const char *client_id = P("client_id"), *state = P("state"), *rtype = P("response_type");
    const char *ruri = P("redirect_uri");
    const dbx_app *ap = client_id ? app_find(st, client_id) : NULL;
    if (!ap) {
        html_error(resp, 400, "Invalid client_id: no API app has this client id.");
        goto out;
    }
    if (!ruri || !*ruri) ruri = ap->callback_url;
    if (!redirect_ok(ap, ruri)) {
        html_error(resp, 400, "The redirect_uri does not match the API app's OAuth callback URL.");
        goto out;
    }
    if (!state || !*state || strlen(state) > 255) {
        html_error(resp, 400, "Missing or invalid state parameter.");
        goto out;
    }
    if (!rtype || strcmp(rtype, "code")) {
        redirect_with(resp, ruri, "error", "unsupported_response_type", "state", state, NULL, NULL);
        goto out;
    }
    if (!post) {
        if (sbx_auto_approve(s)) {
            issue_code(st, req, resp, ap, ap->owner, state, ruri);
            goto out;
        }
        authorize_form(st, resp, 200, ap, state, ruri, NULL);
        goto out;
    }
    const char *action = P("action");
    if (action && !strcmp(action, "deny")) {
        redirect_with(resp, ruri, "error", "access_denied", "error_description",
                      "The user denied access.", "state", state);
        goto out;
    }
    const char *em = P("email"), *pw = P("password");
    if (!em) em = P("email_address");
    int acct = -1;
    for (int a = 0; em && pw && a < st->nacct; a++)
        if (!strcasecmp(st->accts[a].email, em) &&
            sb_ct_equal(st->accts[a].password, strlen(st->accts[a].password), pw, strlen(pw)))
            acct = a;
    if (acct < 0) {
        authorize_form(st, resp, 401, ap, state, ruri, "Invalid email address or password.");
        goto out;
    }
    if (!ap->approved && acct != ap->owner) {
        redirect_with(resp, ruri, "error", "access_denied", "error_description",
                      "This app has not been approved for production use.", "state", state);
        goto out;
    }
    issue_code(st, req, resp, ap, acct, state, ruri);
out:
#undef P
    sbx_kv_free(form, nform);
}

static dbx_token *token_slot(dbx_token *arr, int *n, uint64_t now_ms)
{
    int w = 0;
    for (int i = 0; i < *n; i++)
        if (!arr[i].exp_ms || arr[i].exp_ms > now_ms) arr[w++] = arr[i];
    *n = w;
    if (*n == DBX_MAX_TOKENS) {
        memmove(arr, arr + 1, (DBX_MAX_TOKENS - 1) * sizeof arr[0]);
        (*n)--;
    }
    dbx_token *t = &arr[(*n)++];
    memset(t, 0, sizeof *t);
    return t;
}

static void token_reply(dbx_state *st, sbx_req *req, sbx_resp *resp, const dbx_app *ap, int acct,
                        const char *state)
{
    dbx_token *a = token_slot(st->access, &st->naccess, req->now_ms);
    sbx_token("", 32, a->tok, sizeof a->tok);
    sb_strlcpy(a->client_id, ap->client_id, sizeof a->client_id);
    a->acct = acct;
    a->scopes = ap->scopes;
    a->exp_ms = req->now_ms + DBX_ACCESS_TTL * 1000ull;
    dbx_token *r = token_slot(st->refresh, &st->nrefresh, req->now_ms);
    sbx_token("", 32, r->tok, sizeof r->tok);
    sb_strlcpy(r->client_id, ap->client_id, sizeof r->client_id);
    r->acct = acct;
    r->scopes = ap->scopes;
    r->exp_ms = 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "access_token", a->tok);
    cJSON_AddStringToObject(o, "token_type", "Bearer");
    cJSON_AddStringToObject(o, "refresh_token", r->tok);
    cJSON_AddNumberToObject(o, "expires_in", DBX_ACCESS_TTL);
    jstr_or_null(o, "state", state);
    sb_strlcpy(req->account_id, st->accts[acct].id, sizeof req->account_id);
    sbx_resp_json(resp, 200, o);
}

static void oauth_token(dbx_state *st, sbx *s, sbx_req *req, sbx_resp *resp)
{
    int refresh = sbx_query(req, "refresh", 0) != NULL;
    set_route(req, "POST", refresh ? "/app/oauth/token?refresh" : "/app/oauth/token");
    sb_strlcpy(req->auth_scheme, "client_secret", sizeof req->auth_scheme);
    if (strcmp(req->method, "POST")) {
        dbx_err(resp, 405, "method_not_supported", "Method not supported.", NULL);
        return;
    }
    dbx_params pr;
    if (parse_params(req, resp, &pr) < 0) return;
    const char *gt = NULL, *cid = NULL, *sec = NULL, *code = NULL, *state = NULL, *rt = NULL;
    p_str(pr.p, "grant_type", &gt);
    p_str(pr.p, "client_id", &cid);
    p_str(pr.p, "client_secret", &sec);
    p_str(pr.p, "code", &code);
    p_str(pr.p, "state", &state);
    p_str(pr.p, "refresh_token", &rt);
    const dbx_app *ap = NULL;
    if (!gt || !*gt) {
        bad_request(resp, "This value should not be blank.", "grant_type");
        goto out;
    }
    if (refresh && strcmp(gt, "refresh_token")) {
        dbx_err(resp, 400, "unsupported_grant_type",
                "The grant_type must be refresh_token for a refresh.", "grant_type");
        goto out;
    }
    if (strcmp(gt, "authorization_code") && strcmp(gt, "refresh_token")) {
        dbx_err(resp, 400, "unsupported_grant_type", "Unsupported grant_type.", "grant_type");
        goto out;
    }
    if (!cid || !*cid) {
        bad_request(resp, "This value should not be blank.", "client_id");
        goto out;
    }
    if (!sec || !*sec) {
        bad_request(resp, "This value should not be blank.", "client_secret");
        goto out;
    }
    ap = app_find(st, cid);
    if (!ap || !sb_ct_equal(ap->secret, strlen(ap->secret), sec, strlen(sec))) {
        dbx_err(resp, 401, "invalid_client", "Invalid client id or client secret.", NULL);
        goto out;
    }
    { /* the spec declares the X-RateLimit-* headers on the token endpoint's 200 too */
        unsigned limit = 100, remaining = 0;
        uint64_t reset = 0;
        char key[64];
        snprintf(key, sizeof key, "app:%s", ap->client_id);
        if (!sbx_rate_take(s, "dropboxsign", "oauth", key, 100, 60, &limit, &remaining, &reset)) {
            too_many(resp, limit, reset, req->now_ms / 1000);
            goto out;
        }
        rate_headers(resp, limit, remaining, reset);
    }
    if (!strcmp(gt, "refresh_token")) {
        if (!rt || !*rt) {
            bad_request(resp, "This value should not be blank.", "refresh_token");
            goto out;
        }
        int idx = -1;
        for (int i = 0; i < st->nrefresh; i++)
            if (!strcmp(st->refresh[i].tok, rt)) idx = i;
        if (idx < 0 || strcmp(st->refresh[idx].client_id, ap->client_id)) {
            dbx_err(resp, 400, "invalid_grant", "The refresh token is invalid.", "refresh_token");
            goto out;
        }
        int acct = st->refresh[idx].acct;
        /* rotate: the used refresh token is spent */
        st->refresh[idx] = st->refresh[--st->nrefresh];
        token_reply(st, req, resp, ap, acct, NULL);
        goto out;
    }
    if (!code || !*code) {
        bad_request(resp, "This value should not be blank.", "code");
        goto out;
    }
    if (!state || !*state) {
        bad_request(resp, "This value should not be blank.", "state");
        goto out;
    }
    dbx_code *cd = NULL;
    for (int i = 0; i < st->ncodes; i++)
        if (!strcmp(st->codes[i].code, code)) cd = &st->codes[i];
    if (!cd || cd->used || cd->exp_ms <= req->now_ms || strcmp(cd->client_id, ap->client_id)) {
        dbx_err(resp, 400, "invalid_grant", "The authorization code is invalid or has expired.",
                "code");
        goto out;
    }
    cd->used = 1;
    token_reply(st, req, resp, ap, cd->acct, state);
out:
    cJSON_Delete(pr.p);
}

/* ---- app pages and file links
 * -------------------------------------------------------------------- */

static void app_pages(dbx_state *st, sbx *s, sbx_req *req, sbx_resp *resp)
{
    const char *p = req->path + 4; /* below /app */
    if (!strcmp(p, "/oauth/authorize")) {
        oauth_authorize(st, s, req, resp);
        return;
    }
    if (!strcmp(p, "/oauth/token")) {
        oauth_token(st, s, req, resp);
        return;
    }
    sb_strlcpy(req->auth_scheme, "none", sizeof req->auth_scheme);
    const char *id = NULL;
    if (starts_with(p, "/sign/")) {
        set_route(req, req->method, "/app/sign/{signature_request_id}");
        id = p + 6;
    } else if (!strcmp(p, "/home/manage")) {
        set_route(req, req->method, "/app/home/manage");
        id = sbx_query(req, "guid", 0);
    } else if (!strcmp(p, "/embedded/sign")) {
        set_route(req, req->method, "/app/embedded/sign");
        const char *sid = sbx_query(req, "signature_id", 0);
        for (size_t i = 0; sid && i < st->ndocs && !id; i++)
            for (int k = 0; k < st->docs[i]->nsg; k++)
                if (!strcmp(st->docs[i]->sg[k].sig_id, sid)) id = st->docs[i]->id;
    } else {
        html_error(resp, 404, "Page not found.");
        return;
    }
    dbx_doc *d = id ? doc_find(st, id) : NULL;
    if (!d || d->state != D_ACTIVE) {
        html_error(resp, d ? 410 : 404, d ? "This request has been canceled." : "Not found.");
        return;
    }
    sb_buf b;
    sb_buf_init(&b, 1 << 16);
    xappend(&b, "<p>Signature request <code>");
    html_append(&b, d->id);
    xappend(&b, "</code> from ");
    html_append(&b, st->accts[d->owner].email);
    xappend(&b, "</p><ul>");
    for (int i = 0; i < d->nsg; i++) {
        xappend(&b, "<li>");
        html_append(&b, d->sg[i].name);
        xappend(&b, " &lt;");
        html_append(&b, d->sg[i].email);
        xappend(&b, "&gt;: ");
        html_append(&b, dbx_status_names[d->sg[i].status]);
        xappend(&b, "</li>");
    }
    xappend(&b, "</ul><p>This is the Dropbox Sign sandbox: signing happens through "
                "POST /_sandbox/documents/{id}/advance.</p>");
    html_page(resp, 200, d->title, b.data);
    sb_buf_free(&b);
}

static void s3_error(sbx_resp *resp, const char *msg)
{
    char body[300];
    snprintf(body, sizeof body,
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>"
             "<Message>%s</Message></Error>",
             msg);
    sbx_resp_text(resp, 403, "application/xml", body);
}

static void s3_file(dbx_state *st, sbx_req *req, sbx_resp *resp)
{
    set_route(req, req->method, "/s3/{token}/{file}");
    sb_strlcpy(req->auth_scheme, "none", sizeof req->auth_scheme);
    const char *p = req->path + 4;
    size_t tl = strcspn(p, "/");
    dbx_link *l = NULL;
    for (int i = 0; i < st->nlinks; i++)
        if (strlen(st->links[i].tok) == tl && !strncmp(st->links[i].tok, p, tl)) l = &st->links[i];
    if (!l || strcmp(req->method, "GET")) {
        s3_error(resp, "Access Denied");
        return;
    }
    if (l->exp_ms <= req->now_ms) {
        s3_error(resp, "Request has expired");
        return;
    }
    sb_buf b;
    sb_buf_init(&b, 64u << 20);
    const char *title = NULL;
    if (l->is_template) {
        const dbx_template *t = tpl_find(st, l->doc_id);
        if (t) {
            tpl_file(t, 0, &b);
            title = t->title;
        }
    } else {
        dbx_doc *d = doc_find(st, l->doc_id);
        if (d) {
            doc_file(st, d, 0, &b);
            title = d->title;
        }
    }
    if (!title) {
        sb_buf_free(&b);
        s3_error(resp, "Access Denied");
        return;
    }
    sbx_resp_bytes(resp, 200, "application/pdf", b.data, b.len);
    disposition(resp, title, "pdf", l->force_download);
    sb_buf_free(&b);
}

/* ---- lifecycle
 * ------------------------------------------------------------------------------------ */

/* One step: the current signer views, or signs when already viewed. Returns 1 if changed. */
static int doc_step(dbx_doc *d, int64_t now)
{
    if (!doc_in_progress(d) || d->cancel_pending) return 0;
    int cur = doc_current(d);
    if (cur < 0) return 0;
    dbx_signer *g = &d->sg[cur];
    if (!g->viewed_at) {
        g->viewed_at = now;
    } else {
        g->status = S_SIGNED;
        g->signed_at = now;
        doc_update_complete(d);
    }
    doc_touch(d);
    return 1;
}

static void doc_cancel_now(dbx_doc *d)
{
    d->state = D_CANCELED;
    d->cancel_pending = 0;
    doc_touch(d);
}

static int dbx_advance(sbx *s, const char *doc_id, const char *to, char *err, size_t errlen)
{
    (void)s;
    dbx_state *st = &g_dbx;
    pthread_mutex_lock(&g_mu);
    dbx_doc *d = st->ready ? doc_find(st, doc_id) : NULL;
    int rc = 0;
    int64_t now = (int64_t)sbx_now();
    if (!d) {
        rc = 1;
        goto out;
    }
    if (d->state != D_ACTIVE) {
        snprintf(err, errlen, "signature request %s is canceled", d->id);
        rc = -1;
        goto out;
    }
    if (!strcmp(to, "revoked") || !strcmp(to, "canceled")) {
        if (d->is_complete || d->is_declined) {
            snprintf(err, errlen, "a %s signature request cannot be canceled",
                     d->is_complete ? "complete" : "declined");
            rc = -1;
        } else {
            doc_cancel_now(d);
        }
        goto out;
    }
    for (int i = 0; i < d->nsg; i++) /* advancing releases a hold */
        if (d->sg[i].status == S_HOLD_REQ) d->sg[i].status = S_AWAITING;
    if (!doc_in_progress(d)) {
        snprintf(err, errlen, "signature request is %s",
                 d->is_complete   ? "complete"
                 : d->is_declined ? "declined"
                 : d->has_error   ? "in error"
                                  : "expired");
        rc = -1;
        goto out;
    }
    int cur = doc_current(d);
    if (!strcmp(to, "viewed")) {
        if (cur >= 0) d->sg[cur].viewed_at = now;
    } else if (!strcmp(to, "signed")) {
        if (cur >= 0) {
            if (!d->sg[cur].viewed_at) d->sg[cur].viewed_at = now;
            d->sg[cur].status = S_SIGNED;
            d->sg[cur].signed_at = now;
        }
        doc_update_complete(d);
    } else if (!strcmp(to, "completed")) {
        for (int i = 0; i < d->nsg; i++)
            if (d->sg[i].status == S_AWAITING) {
                if (!d->sg[i].viewed_at) d->sg[i].viewed_at = now;
                d->sg[i].status = S_SIGNED;
                d->sg[i].signed_at = now;
            }
        doc_update_complete(d);
    } else if (!strcmp(to, "declined")) {
        int i = cur >= 0 ? cur : 0;
        if (!d->sg[i].viewed_at) d->sg[i].viewed_at = now;
        d->sg[i].status = S_DECLINED;
        snprintf(d->sg[i].decline_reason, sizeof d->sg[i].decline_reason,
                 "Declined in the sandbox.");
        d->is_declined = 1;
    } else if (!strcmp(to, "expired")) {
        d->expires_at = now - 1;
        for (int i = 0; i < d->nsg; i++)
            if (d->sg[i].status == S_AWAITING) d->sg[i].status = S_EXPIRED;
    } else {
        snprintf(err, errlen,
                 "unknown state '%.40s' (viewed, signed, completed, declined, "
                 "expired, revoked)",
                 to);
        rc = -1;
        goto out;
    }
    d->ready_ms = 0;
    doc_touch(d);
out:
    pthread_mutex_unlock(&g_mu);
    return rc;
}

static void dbx_tick(sbx *s, uint64_t now_ms)
{
    dbx_state *st = &g_dbx;
    unsigned step = sbx_auto_progress_ms(s);
    int64_t now = (int64_t)(now_ms / 1000);
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; st->ready && i < st->ndocs; i++) {
        dbx_doc *d = st->docs[i];
        if (d->state != D_ACTIVE) continue;
        if (d->cancel_pending && d->cancel_at_ms <= now_ms) {
            doc_cancel_now(d);
            continue;
        }
        if (d->expires_at && d->expires_at <= now && !d->is_complete && !d->is_declined &&
            !doc_expired(d)) {
            for (int k = 0; k < d->nsg; k++)
                if (d->sg[k].status == S_AWAITING || d->sg[k].status == S_HOLD_REQ)
                    d->sg[k].status = S_EXPIRED;
            doc_touch(d);
            continue;
        }
        if (step && now_ms - d->last_step_ms >= step) {
            if (doc_step(d, now)) d->last_step_ms = now_ms;
        }
    }
    pthread_mutex_unlock(&g_mu);
}

/* ---- provider entry points
 * ------------------------------------------------------------------------ */

static int dbx_init(sbx *s, uint64_t seed)
{
    (void)s;
    dbx_state *st = &g_dbx;
    pthread_mutex_lock(&g_mu);
    state_clear(st);
    st->seed = seed;
    sbx_rng_init(&st->rng, seed, "dropboxsign:runtime");
    seed_accounts(st, seed);
    seed_templates(st, seed);
    seed_docs(st, seed);
    st->ready = 1;
    sbx_dropboxsign.state = st;
    pthread_mutex_unlock(&g_mu);
    return 0;
}

static void dbx_fini(sbx *s)
{
    (void)s;
    pthread_mutex_lock(&g_mu);
    state_clear(&g_dbx);
    sbx_dropboxsign.state = NULL;
    pthread_mutex_unlock(&g_mu);
}

static void dbx_handle(sbx *s, sbx_req *req, sbx_resp *resp)
{
    dbx_state *st = &g_dbx;
    pthread_mutex_lock(&g_mu);
    if (!st->ready) {
        dbx_err(resp, 503, "maintenance", "The service is starting.", NULL);
        goto out;
    }
    sync_origin(st, s);
    const char *p = req->path;
    if (!strcmp(p, "/v3") || starts_with(p, "/v3/"))
        rest(st, s, req, resp);
    else if (starts_with(p, "/app/"))
        app_pages(st, s, req, resp);
    else if (starts_with(p, "/s3/"))
        s3_file(st, req, resp);
    else {
        sb_strlcpy(req->auth_scheme, "none", sizeof req->auth_scheme);
        not_found(resp);
    }
out:
    pthread_mutex_unlock(&g_mu);
}

static void dbx_error(sbx *s, sbx_req *req, sbx_resp *resp, int status, const char *message)
{
    (void)s;
    (void)req;
    if (status == 429) {
        uint64_t now = sbx_now();
        uint64_t reset = now - now % 60 + 60;
        dbx_err(resp, 429, "exceeded_rate", message && *message ? message : "Too many requests.",
                NULL);
        rate_headers(resp, 100, 0, reset);
        char v[24];
        snprintf(v, sizeof v, "%" PRIu64, reset - now);
        sbx_resp_header(resp, "Retry-After", v);
        return;
    }
    if (status == 404 && (!message || !strcmp(message, "Not found"))) message = "Not found.";
    dbx_err(resp, status, err_name_for(status),
            message && *message ? message : "An unknown error occurred.", NULL);
}

static void dbx_accounts(sbx *s, cJSON *arr)
{
    dbx_state *st = &g_dbx;
    pthread_mutex_lock(&g_mu);
    if (!st->ready) goto out;
    sync_origin(st, s);
    char url[400];
    for (int a = 0; a < st->nacct; a++) {
        const dbx_account *ac = &st->accts[a];
        if (!ac->api) continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "provider", "dropboxsign");
        cJSON_AddStringToObject(o, "region", DBX_REGION);
        cJSON_AddStringToObject(o, "account_id", ac->id);
        cJSON_AddStringToObject(o, "email", ac->email);
        cJSON_AddStringToObject(o, "name", ac->name);
        cJSON_AddStringToObject(o, "api_key", ac->keys[0]);
        cJSON *keys = cJSON_AddArrayToObject(o, "api_keys");
        for (int k = 0; k < ac->nkeys; k++)
            cJSON_AddItemToArray(keys, cJSON_CreateString(ac->keys[k]));
        snprintf(url, sizeof url, "%.300s/v3", st->base);
        cJSON_AddStringToObject(o, "base_url", url);
        jstr_or_null(o, "team_id", ac->on_team ? st->team_id : NULL);
        jstr_or_null(o, "role_code", ac->role_code);
        cJSON *oa = cJSON_AddObjectToObject(o, "oauth");
        const dbx_app *ap = &st->apps[0];
        cJSON_AddStringToObject(oa, "client_id", ap->client_id);
        cJSON_AddStringToObject(oa, "client_secret", ap->secret);
        snprintf(url, sizeof url, "%.300s/app/oauth/authorize", st->base);
        cJSON_AddStringToObject(oa, "authorize_url", url);
        snprintf(url, sizeof url, "%.300s/app/oauth/token", st->base);
        cJSON_AddStringToObject(oa, "token_url", url);
        snprintf(url, sizeof url, "%.300s/app/oauth/token?refresh", st->base);
        cJSON_AddStringToObject(oa, "refresh_url", url);
        cJSON_AddBoolToObject(oa, "pkce", 0);
        scope_list(ap->scopes, cJSON_AddArrayToObject(oa, "scopes"));
        cJSON *ru = cJSON_AddArrayToObject(oa, "redirect_uris");
        cJSON_AddItemToArray(ru, cJSON_CreateString(ap->callback_url));
        cJSON_AddItemToArray(ru, cJSON_CreateString("http://127.0.0.1/*"));
        cJSON_AddItemToArray(ru, cJSON_CreateString("http://localhost/*"));
        cJSON *u = cJSON_AddObjectToObject(oa, "user");
        cJSON_AddStringToObject(u, "email", ac->email);
        cJSON_AddStringToObject(u, "password", ac->password);
        /* the second app: not approved, owner-charged scopes; only its owner may authorize it */
        const dbx_app *ap2 = &st->apps[1];
        cJSON *o2 = cJSON_AddObjectToObject(oa, "unapproved_app");
        cJSON_AddStringToObject(o2, "client_id", ap2->client_id);
        cJSON_AddStringToObject(o2, "client_secret", ap2->secret);
        scope_list(ap2->scopes, cJSON_AddArrayToObject(o2, "scopes"));
        cJSON_AddItemToArray(arr, o);
    }
out:
    pthread_mutex_unlock(&g_mu);
}

static const char *const dbx_regions[] = {DBX_REGION, NULL};

sbx_provider sbx_dropboxsign = {
    .name = "dropboxsign",
    .regions = dbx_regions,
    .init = dbx_init,
    .handle = dbx_handle,
    .error = dbx_error,
    .advance = dbx_advance,
    .tick = dbx_tick,
    .accounts = dbx_accounts,
    .fini = dbx_fini,
    .state = NULL,
};
