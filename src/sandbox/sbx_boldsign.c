/* sbx_boldsign: the BoldSign emulator of signbridge-sandbox (regions us, eu, ca, au).
 *
 * Built from ../shared/reference/boldsign-api.md, the BoldSign OpenAPI description
 * (boldsign-openapi.yml) and the official Node SDK's models (npm `boldsign` 3.2.0), never from
 * signbridge's adapter. `http://HOST/boldsign/{region}` stands for
 * https://api[-eu|-ca|-au].boldsign.com and `http://HOST/boldsign/{region}/account` for the
 * region's account (OAuth) host.
 *
 * REST endpoints emulated (paths matched case-insensitively, as ASP.NET does; query parameter
 * names bound case-insensitively; arrays as repeated keys, `Key[]` or `Key[n]`):
 *   GET    /v1/document/list                 PascalCase filters, pageDetails + result
 *   GET    /v1/document/teamlist             as list, UserId[]/TeamId[]; admins only (else 403)
 *   GET    /v1/document/properties           DocumentProperties incl. documentHistory
 *   GET    /v1/document/download             application/pdf generated on the fly (title inside)
 *   GET    /v1/document/downloadAuditLog     application/pdf of the audit trail
 *   GET    /v1/document/getEmbeddedSignLink  {"signLink"}
 *   POST   /v1/document/send                 JSON (base64 data-URI `files`, `fileUrls`),
 *                                            multipart (`Files` parts, JSON-string or bracket
 *                                            keyed fields) or form-urlencoded -> 201 {"documentId"}
 *   POST   /v1/document/remind               204
 *   POST   /v1/document/revoke               204 (message required)
 *   DELETE /v1/document/delete               204 (trash, or deletePermanently)
 *   PATCH  /v1/document/changeRecipient      204
 *   PATCH  /v1/document/extendExpiry         200, empty body
 *   GET    /v1/template/list | properties | download;  POST /v1/template/send -> 201;
 *   DELETE /v1/template/delete -> 204
 *   GET    /v1/contacts/list | get;  POST /v1/contacts/create (array body) -> 201;
 *   PUT    /v1/contacts/update -> 200;  DELETE /v1/contacts/delete -> 204
 *   GET    /v1/users/list | get;  GET /v1/teams/list (`results`) | get
 *   GET    /v1/brand/list (the cheap key/region probe) | get
 *   GET    /v1/senderIdentities/list;  GET /v1/plan/apiCreditsCount
 *   GET    /app/document/sign                a minimal HTML page behind the embedded sign link
 * OAuth 2.0 / OIDC (IdentityServer style) under /account:
 *   GET  /.well-known/openid-configuration, /.well-known/openid-configuration/jwks
 *   GET|POST /connect/authorize (HTML login+consent form; PKCE S256/plain required)
 *   POST /connect/token (authorization_code, refresh_token (rotating, reuse revokes the family),
 *        client_credentials; client_secret_post or client_secret_basic)
 *   POST /connect/revocation (RFC 7009);  GET|POST /connect/userinfo
 * Access tokens are RS256 JWTs signed with a per-region RSA-2048 key (generated on first use and
 * kept for the life of the process, so POST /_sandbox/reset stays fast); they are accepted as
 * Bearer only in their own region, for their own account, and checked for signature, iss, aud,
 * exp, nbf, revocation and (coarsely) scope.
 *
 * Behaviour: credentials are X-API-KEY (any header case) or Bearer; a key of another region, an
 * unknown key or no credential -> 401 with an empty body. Rate limit: 50 requests/hour/account
 * (the BoldSign sandbox figure; tier ""), X-RateLimit-Limit/Remaining/Reset on every authenticated
 * response, 429 {"error"} with Retry-After. Sends are asynchronous: for about a second the new
 * document is not listed and properties/getEmbeddedSignLink/... answer 403 "Invalid Document ID".
 * Unknown ids answer 403 "Invalid Document ID" / "Invalid Template ID" / ... (as BoldSign does);
 * body validation errors and lifecycle-rule refusals (remind/revoke/change recipient/extend expiry
 * on a document that is not in progress, a signer who already signed, ...) answer 400 {"error"};
 * template/send answers 422 (the only error status its spec declares). Unknown paths: 404, wrong
 * method: 405, both with empty bodies (ASP.NET routing).
 * Lifecycle: POST /_sandbox/documents/{id}/advance (viewed, signed, completed, declined, expired,
 * revoked), or with auto-progress on, documents sent through the API take one step per interval
 * (the next signer in order views, then signs; then the document completes). Scheduled documents
 * go out at scheduledSendTime; in-progress documents past expiryDate expire (on the 100 ms tick).
 * Seeded fixtures do not auto-progress, so seeded data stays stable for tests.
 *
 * Seed (deterministic per seed; timestamps relative to the current UTC day): per region two
 * accounts, each with two API keys, an OAuth app (claude.ai/claude.com/chatgpt.com callbacks and
 * any loopback redirect), five users (admin = key owner and demo login, team admin, members, one
 * pending invitation), two teams, ten contacts, two brands, two sender identities (one approved),
 * four templates with roles and form fields, and 28 documents covering every status (InProgress
 * incl. waiting-for-me and expiring soon, Completed, Declined, Expired, Revoked, Draft, Scheduled)
 * with matching signer states and audit trails.
 *
 * Deliberately left out: behalfList, draft/edit/embedded request+edit URLs, prefill, tags,
 * authentication changes, attachments, custom fields, contact groups, identity verification,
 * brand/user/team/sender-identity writes, template create/edit, webhooks (the sandbox has no
 * outbound network). Uploaded files are validated and measured but not stored: downloads return a
 * generated PDF that names the document, its status and signers.
 */
#include "sandbox/sbx.h"
#include "sandbox/sbx_providers.h"

#include "core/sb_buf.h"
#include "core/sb_util.h"

#include <ctype.h>
#include <math.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- limits and constants -------------------------------------------------------------------- */

#define BS_NREG 4
#define BS_ACCTS_PER_REGION 2
#define BS_NACCT (BS_NREG * BS_ACCTS_PER_REGION)
#define BS_NUSERS 5
#define BS_NTEAMS 2
#define BS_NTPL 4
#define BS_NBRANDS 2
#define BS_NIDENT 2
#define BS_SEED_DOCS 28
#define BS_SEED_CONTACTS 10
#define BS_MAX_DOCS 20000    /* per account: sends beyond this answer 422 */
#define BS_MAX_CONTACTS 5000 /* per account */
#define BS_MAX_SIGNERS 50
#define BS_MAX_FIELDS 200 /* per signer */
#define BS_MAX_FILES 25
#define BS_MAX_LABELS 50
#define BS_MAX_CC 50
#define BS_MAX_HIST 300
#define BS_MAX_CODES 10000
#define BS_MAX_ATOKENS 100000
#define BS_MAX_RTOKENS 100000
#define BS_PROCESSING_MS 1000 /* BoldSign's asynchronous send window */
#define BS_RATE_LIMIT 50      /* requests per hour per account (sandbox) */
#define BS_RATE_WINDOW 3600
#define BS_CODE_TTL_MS 60000
#define BS_AT_TTL 3600
#define BS_RT_TTL (30 * 86400)
#define BS_AUD "BoldSign.Api"

static const char *const bs_regions[] = {"us", "eu", "ca", "au", NULL};

static const char *const bs_api_scopes[] = {
    "BoldSign.Documents.All",      "BoldSign.Documents.Write",     "BoldSign.Documents.Delete",
    "BoldSign.Documents.Create",   "BoldSign.Templates.All",       "BoldSign.Templates.Read",
    "BoldSign.Templates.Write",    "BoldSign.Templates.Delete",    "BoldSign.Templates.Create",
    "BoldSign.Users.All",          "BoldSign.Users.Read",          "BoldSign.Users.Write",
    "BoldSign.Teams.All",          "BoldSign.Teams.Read",          "BoldSign.Teams.Write",
    "BoldSign.SenderIdentity.All", "BoldSign.SenderIdentity.Read", NULL};
static const char *const bs_oidc_scopes[] = {"openid", "profile", "email", "offline_access", NULL};

/* ---- small helpers --------------------------------------------------------------------------- */

static char *xstrdup(const char *s)
{
    if (!s) return NULL;
    size_t n = strlen(s);
    char *p = malloc(n + 1);
    if (p) memcpy(p, s, n + 1);
    return p;
}

static void set_str(char **dst, const char *v)
{
    char *n = xstrdup(v);
    free(*dst);
    *dst = n;
}

static int starts_ci(const char *s, const char *prefix)
{
    return s && strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Case-insensitive object member lookup (ASP.NET binds JSON property names case-insensitively). */
static const cJSON *jget(const cJSON *o, const char *k)
{
    if (!cJSON_IsObject(o)) return NULL;
    for (const cJSON *c = o->child; c; c = c->next)
        if (c->string && strcasecmp(c->string, k) == 0) return c;
    return NULL;
}

/* Optional string: 0 absent or null, 1 present, -1 wrong type. */
static int jstr(const cJSON *o, const char *k, const char **out)
{
    const cJSON *v = jget(o, k);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsString(v)) {
        *out = v->valuestring;
        return 1;
    }
    return -1;
}

/* Optional boolean (JSON bool, or "true"/"false" from multipart/form bodies). */
static int jbool(const cJSON *o, const char *k, int *out)
{
    const cJSON *v = jget(o, k);
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsBool(v)) {
        *out = cJSON_IsTrue(v);
        return 1;
    }
    if (cJSON_IsString(v)) {
        if (strcasecmp(v->valuestring, "true") == 0) {
            *out = 1;
            return 1;
        }
        if (strcasecmp(v->valuestring, "false") == 0) {
            *out = 0;
            return 1;
        }
        if (!v->valuestring[0]) return 0;
    }
    return -1;
}

/* Optional integer (JSON number without fraction, or a decimal string). */
static int jint(const cJSON *o, const char *k, int64_t *out)
{
    const cJSON *v = jget(o, k);
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!isfinite(d) || d != floor(d) || fabs(d) > 9.0e15) return -1;
        *out = (int64_t)d;
        return 1;
    }
    if (cJSON_IsString(v)) {
        if (!v->valuestring[0]) return 0;
        return sb_parse_i64(v->valuestring, -9000000000000000LL, 9000000000000000LL, out) == 0 ? 1
                                                                                               : -1;
    }
    return -1;
}

static double jnum_or(const cJSON *o, const char *k, double def)
{
    const cJSON *v = jget(o, k);
    if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) return v->valuedouble;
    if (cJSON_IsString(v)) {
        char *end = NULL;
        double d = strtod(v->valuestring, &end);
        if (end && end != v->valuestring && *end == '\0' && isfinite(d)) return d;
    }
    return def;
}

static void jadd_str(cJSON *o, const char *k, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

static void jadd_num(cJSON *o, const char *k, double v)
{
    cJSON_AddNumberToObject(o, k, v);
}

static void jadd_bool(cJSON *o, const char *k, int v)
{
    cJSON_AddBoolToObject(o, k, v ? 1 : 0);
}

static cJSON *jstr_array(char *const *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(v[i] ? v[i] : ""));
    return a;
}

/* A plausible e-mail address: one '@', non-empty local part, a dotted domain, no spaces or
 * control characters, at most 254 bytes. */
static int email_ok(const char *s)
{
    if (!s) return 0;
    size_t n = strlen(s);
    if (n < 3 || n > 254) return 0;
    const char *at = strchr(s, '@');
    if (!at || at == s || strchr(at + 1, '@')) return 0;
    const char *dot = strchr(at + 1, '.');
    if (!dot || dot == at + 1 || dot[1] == '\0' || s[n - 1] == '.') return 0;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '<' || *p == '>' || *p == '"' || *p == ',' ||
            *p == ';' || *p == '(' || *p == ')' || *p == '\\' || (unsigned char)*p == 0x7f)
            return 0;
    return 1;
}

/* A text field: valid UTF-8, no more than max bytes. */
static int text_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    return n <= max && sb_utf8_valid(s, n);
}

static int is_blank(const char *s)
{
    if (!s) return 1;
    for (; *s; s++)
        if (!isspace((unsigned char)*s)) return 0;
    return 1;
}

/* ---- time ------------------------------------------------------------------------------------ */

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const int64_t doe = z - era * 146097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Parse the date-time forms ASP.NET binds: "yyyy-MM-dd", "yyyy-MM-ddTHH:mm[:ss[.fff]]" with an
 * optional "Z" or "+hh:mm" offset (no offset = UTC). Epoch seconds into *out. 0 or -1. */
static int parse_dt(const char *s, int64_t *out)
{
    if (!s) return -1;
    size_t n = strlen(s);
    if (n < 10 || n > 40) return -1;
    int Y, M, D, h = 0, mi = 0, sec = 0;
    if (digits(s, 4, &Y) || s[4] != '-' || digits(s + 5, 2, &M) || s[7] != '-' ||
        digits(s + 8, 2, &D))
        return -1;
    if (Y < 1970 || Y > 9999 || M < 1 || M > 12 || D < 1 || D > 31) return -1;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (D > mdays[M - 1] || (M == 2 && D == 29 && !leap)) return -1;
    const char *p = s + 10;
    int64_t off = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (digits(p, 2, &h) || p[2] != ':' || digits(p + 3, 2, &mi)) return -1;
        p += 5;
        if (*p == ':') {
            if (digits(p + 1, 2, &sec)) return -1;
            p += 3;
            if (*p == '.' || *p == ',') {
                p++;
                if (!isdigit((unsigned char)*p)) return -1;
                while (isdigit((unsigned char)*p))
                    p++;
            }
        }
        if (h > 23 || mi > 59 || sec > 60) return -1;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int oh, om;
            int sign = *p == '-' ? -1 : 1;
            p++;
            if (digits(p, 2, &oh)) return -1;
            p += 2;
            if (*p == ':') p++;
            if (digits(p, 2, &om)) return -1;
            p += 2;
            if (oh > 23 || om > 59) return -1;
            off = sign * (oh * 3600 + om * 60);
        }
    }
    if (*p) return -1;
    *out = days_from_civil(Y, M, D) * 86400 + h * 3600 + mi * 60 + sec - off;
    return 0;
}

static void fmt_dt(int64_t t, char *out, size_t cap)
{
    int y, m, d;
    int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
    int64_t rem = t - days * 86400;
    civil_from_days(days, &y, &m, &d);
    snprintf(out, cap, "%04d-%02d-%02d %02d:%02d:%02d UTC", y, m, d, (int)(rem / 3600),
             (int)(rem / 60 % 60), (int)(rem % 60));
}

/* ---- state ----------------------------------------------------------------------------------- */

typedef struct bs_field {
    char id[64];
    char ftype[16]; /* FormField.fieldType, e.g. "Signature" */
    int page;
    double x, y, w, h;
    int required, readonly;
    char *value;
} bs_field;

typedef struct bs_signer {
    char id[37];
    char *name, *email, *role, *pmsg, *host_email;
    const char *status;   /* None | NotCompleted | Completed | Declined | Revoked | Expired */
    const char *stype;    /* Signer | Reviewer | InPersonSigner */
    const char *auth;     /* None | EmailOTP | AccessCode | SMSOTP | IdVerification */
    const char *delivery; /* Email | SMS | EmailAndSMS | WhatsApp */
    char cc_code[8], phone[24];
    int viewed, order, reassigned, delivery_failed;
    bs_field *fields;
    int nfields;
} bs_signer;

typedef struct bs_hist {
    char id[37];
    const char *action; /* AuditTrail.action */
    char *name, *email, *to_name, *to_email;
    char ip[16];
    int64_t ts;
} bs_hist;

typedef struct bs_file {
    char id[37];
    char *name;
    int pages;
    int tpl; /* template index or -1 */
} bs_file;

typedef struct bs_doc {
    char id[37];
    int sender; /* user index */
    char *title, *message;
    /* InProgress | Completed | Declined | Expired | Revoked | Draft | Scheduled */
    const char *status;
    bs_signer *signers;
    int nsigners;
    char **cc;
    int ncc;
    bs_file *files;
    int nfiles;
    char **labels;
    int nlabels;
    cJSON *meta; /* object of strings, owned */
    char *brand_id;
    char *behalf_name, *behalf_email;
    int64_t created, activity, expiry, scheduled; /* scheduled: 0 = none */
    char *activity_by;
    const char *activity_action;
    int expiry_days;
    const char *expiry_type;
    int64_t expiry_value;
    int signing_order, deleted, disable_emails, reassign, print_sign, hide_id, no_expiry_alert;
    int auto_remind, remind_days, remind_count;
    const char *dl_option;
    char *revoke_msg, *decline_msg;
    bs_hist *hist;
    int nhist, caphist;
    uint64_t ready_ms;     /* asynchronous processing ends (wall ms); 0 = ready */
    uint64_t next_step_ms; /* auto-progress */
    int api_sent;
    char *list_json; /* cached list item (regenerated on every change) */
    size_t list_len;
    unsigned user_mask; /* bit u: account user u is a signer or cc (kept by doc_touch) */
    int dirty;          /* list_json is stale: lists render this one on the fly */
} bs_doc;

typedef struct bs_user {
    char id[37];
    char email[96], first[32], last[32];
    int team;
    int role;   /* 0 Admin, 1 TeamAdmin, 2 Member */
    int status; /* 0 Active, 1 InvitationPending, 2 Deactivated */
    int64_t created, modified;
} bs_user;

typedef struct bs_team {
    char id[37];
    char name[48];
    int64_t created, modified;
} bs_team;

typedef struct bs_contact {
    char id[37];
    char *name, *email, *company, *job;
    char cc_code[8], phone[24];
    int owner;
} bs_contact;

typedef struct bs_role {
    char name[48];
    int index, order;
    char def_name[64], def_email[96];
    const char *stype;
    bs_field fields[4];
    int nfields;
} bs_role;

typedef struct bs_template {
    char id[37];
    char name[80], desc[160], doc_title[120], doc_msg[200];
    int creator;        /* user index */
    int shared_team;    /* -1 = not shared, BS_NTEAMS = every team */
    const char *access; /* Edit | Use */
    bs_role roles[3];
    int nroles;
    char file_id[37], file_name[80];
    int pages;
    char label[24];
    int brand; /* -1 = none */
    int signing_order;
    char cc[96];
    int64_t created, activity;
    int deleted;
    char *list_json; /* pre-rendered list item (templates do not change once seeded) */
    size_t list_len;
} bs_template;

typedef struct bs_brand {
    char id[37];
    char name[80];
    int is_default;
} bs_brand;

typedef struct bs_ident {
    char id[37];
    char name[64], email[96];
    int approved;
    int64_t created;
} bs_ident;

typedef struct bs_account {
    int region;
    char id[37];
    char company[64], slug[48];
    char keys[2][64];
    char client_id[40], client_secret[64];
    char password[32];
    bs_user users[BS_NUSERS];
    bs_team teams[BS_NTEAMS];
    bs_contact *contacts;
    int ncontacts, capcontacts;
    bs_template tpls[BS_NTPL];
    bs_brand brands[BS_NBRANDS];
    bs_ident idents[BS_NIDENT];
    bs_doc **docs; /* sorted by activity date, newest first */
    int ndocs, capdocs;
    double credits;
} bs_account;

typedef struct bs_code {
    char code[64];
    int acct, user;
    char *redirect, *scope, *challenge, *nonce;
    char method[8];
    char family[40];
    uint64_t exp_ms, auth_time;
    int used;
} bs_code;

typedef struct bs_atok {
    char jti[40];
    char family[40];
    int acct;
    uint64_t exp_ms;
    int revoked;
} bs_atok;

typedef struct bs_rtok {
    char tok[64];
    char family[40];
    int acct, user;
    char *scope;
    uint64_t exp_ms, auth_time;
    int used, revoked;
} bs_rtok;

typedef struct bs_state {
    pthread_rwlock_t lock; /* guards everything below that changes after init */
    uint64_t seed;
    bs_account acct[BS_NACCT];
    sbx_rng rt; /* ids created at run time */
    bs_code *codes;
    int ncodes, capcodes;
    bs_atok *atoks;
    int natoks, capatoks;
    bs_rtok *rtoks;
    int nrtoks, caprtoks;
} bs_state;

/* Per-region RSA keys: generated on first use (about 250 ms each), kept across resets, freed at
 * process exit. */
typedef struct bs_key {
    EVP_PKEY *pk;
    char kid[40];
    char n[400];
    char e[16];
} bs_key;
static bs_key g_keys[BS_NREG];
static pthread_mutex_t g_key_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_key_atexit;

static bs_state *state(void)
{
    return (bs_state *)sbx_boldsign.state;
}

static int region_index(const char *r)
{
    for (int i = 0; bs_regions[i]; i++)
        if (r && strcmp(r, bs_regions[i]) == 0) return i;
    return -1;
}

static const char *user_role_name(int r)
{
    return r == 0 ? "Admin" : r == 1 ? "TeamAdmin" : "Member";
}

static const char *team_role_name(int r)
{
    return r == 0 ? "AccountAdmin" : r == 1 ? "TeamAdmin" : "TeamMember";
}

static const char *user_status_name(int s)
{
    return s == 0 ? "Active" : s == 1 ? "InvitationPending" : "Deactivated";
}

static void user_full_name(const bs_user *u, char *out, size_t cap)
{
    snprintf(out, cap, "%s %s", u->first, u->last);
}

/* ---- freeing --------------------------------------------------------------------------------- */

static void fields_free(bs_field *f, int n)
{
    if (!f) return;
    for (int i = 0; i < n; i++)
        free(f[i].value);
    free(f);
}

static void signer_clear(bs_signer *g)
{
    free(g->name);
    free(g->email);
    free(g->role);
    free(g->pmsg);
    free(g->host_email);
    fields_free(g->fields, g->nfields);
    memset(g, 0, sizeof *g);
}

static void strv_free(char **v, int n)
{
    if (!v) return;
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void hist_clear(bs_hist *h)
{
    free(h->name);
    free(h->email);
    free(h->to_name);
    free(h->to_email);
}

static void doc_free(bs_doc *d)
{
    if (!d) return;
    free(d->title);
    free(d->message);
    for (int i = 0; i < d->nsigners; i++)
        signer_clear(&d->signers[i]);
    free(d->signers);
    strv_free(d->cc, d->ncc);
    for (int i = 0; i < d->nfiles; i++)
        free(d->files[i].name);
    free(d->files);
    strv_free(d->labels, d->nlabels);
    cJSON_Delete(d->meta);
    free(d->brand_id);
    free(d->behalf_name);
    free(d->behalf_email);
    free(d->activity_by);
    free(d->revoke_msg);
    free(d->decline_msg);
    for (int i = 0; i < d->nhist; i++)
        hist_clear(&d->hist[i]);
    free(d->hist);
    free(d->list_json);
    free(d);
}

static void contact_clear(bs_contact *c)
{
    free(c->name);
    free(c->email);
    free(c->company);
    free(c->job);
}

static void code_clear(bs_code *c)
{
    free(c->redirect);
    free(c->scope);
    free(c->challenge);
    free(c->nonce);
}

static void state_free(bs_state *st)
{
    if (!st) return;
    for (int a = 0; a < BS_NACCT; a++) {
        bs_account *ac = &st->acct[a];
        for (int i = 0; i < ac->ndocs; i++)
            doc_free(ac->docs[i]);
        free(ac->docs);
        for (int i = 0; i < ac->ncontacts; i++)
            contact_clear(&ac->contacts[i]);
        free(ac->contacts);
        for (int i = 0; i < BS_NTPL; i++)
            free(ac->tpls[i].list_json);
    }
    for (int i = 0; i < st->ncodes; i++)
        code_clear(&st->codes[i]);
    free(st->codes);
    free(st->atoks);
    for (int i = 0; i < st->nrtoks; i++)
        free(st->rtoks[i].scope);
    free(st->rtoks);
    pthread_rwlock_destroy(&st->lock);
    free(st);
}

/* ---- JSON renderers -------------------------------------------------------------------------- */
/* Shapes of the OpenAPI components; every object there is additionalProperties:false, so only
 * spec fields are emitted, and non-nullable objects are omitted rather than sent as null. */

static cJSON *notif_json(void)
{
    static const char *const k[] = {"signatureRequest", "declined",      "revoked",      "signed",
                                    "completed",        "expired",       "reassigned",   "deleted",
                                    "reminders",        "editRecipient", "editDocument", "viewed"};
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        jadd_bool(o, k[i], 1);
    return o;
}

static cJSON *bounds_json(const bs_field *f)
{
    cJSON *b = cJSON_CreateObject();
    jadd_num(b, "x", f->x);
    jadd_num(b, "y", f->y);
    jadd_num(b, "width", f->w);
    jadd_num(b, "height", f->h);
    return b;
}

static void lower_copy(const char *s, char *out, size_t cap)
{
    size_t i = 0;
    for (; s[i] && i + 1 < cap; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[i] = '\0';
}

/* DocumentFormFields */
static cJSON *doc_field_json(const bs_field *f)
{
    char t[16];
    lower_copy(f->ftype, t, sizeof t);
    cJSON *o = cJSON_CreateObject();
    jadd_str(o, "id", f->id);
    jadd_str(o, "formFieldId", f->id);
    jadd_str(o, "type", t);
    jadd_str(o, "value", f->value);
    jadd_str(o, "font", "Helvetica");
    jadd_bool(o, "isRequired", f->required);
    jadd_bool(o, "isReadOnly", f->readonly);
    jadd_num(o, "lineHeight", 15);
    jadd_num(o, "fontSize", 13);
    jadd_str(o, "fontColor", "#000000");
    jadd_bool(o, "isUnderline", 0);
    jadd_bool(o, "isItalic", 0);
    jadd_bool(o, "isBold", 0);
    jadd_str(o, "groupName", NULL);
    jadd_str(o, "label", NULL);
    jadd_str(o, "placeholder", NULL);
    jadd_str(o, "validationtype", "None");
    jadd_str(o, "validationCustomRegex", NULL);
    jadd_str(o, "validationCustomRegexMessage", NULL);
    jadd_str(o, "dateFormat", strcmp(f->ftype, "DateSigned") == 0 ? "MM/dd/yyyy" : NULL);
    jadd_str(o, "timeFormat", NULL);
    jadd_str(o, "hyperlinkText", NULL);
    cJSON_AddItemToObject(o, "conditionalRules", cJSON_CreateArray());
    cJSON_AddItemToObject(o, "bounds", bounds_json(f));
    jadd_num(o, "pageNumber", f->page);
    jadd_str(o, "dataSyncTag", NULL);
    cJSON_AddItemToObject(o, "dropdownOptions", cJSON_CreateArray());
    jadd_str(o, "textAlign", "Left");
    jadd_str(o, "textDirection", "LTR");
    jadd_num(o, "characterSpacing", 0);
    jadd_str(o, "backgroundHexColor", NULL);
    jadd_num(o, "tabIndex", 0);
    jadd_bool(o, "allowEditFormField", 0);
    jadd_bool(o, "allowDeleteFormField", 0);
    jadd_bool(o, "hidden", 0);
    jadd_bool(o, "isMasked", 0);
    return o;
}

/* DocumentSignerDetails; list items carry formFields:[] (as the reference example shows). */
static cJSON *signer_json(const bs_signer *g, int full)
{
    cJSON *o = cJSON_CreateObject();
    jadd_str(o, "id", g->id);
    jadd_str(o, "signerName", g->name);
    jadd_str(o, "signerRole", g->role ? g->role : "");
    jadd_str(o, "signerEmail", g->email);
    jadd_str(o, "status", g->status);
    jadd_bool(o, "enableAccessCode", strcmp(g->auth, "AccessCode") == 0);
    jadd_str(o, "isAuthenticationFailed", NULL);
    jadd_bool(o, "enableEmailOTP", strcmp(g->auth, "EmailOTP") == 0);
    jadd_str(o, "authenticationType", g->auth);
    jadd_bool(o, "isDeliveryFailed", g->delivery_failed);
    jadd_bool(o, "isViewed", g->viewed);
    jadd_num(o, "order", g->order);
    jadd_str(o, "signerType", g->stype);
    jadd_str(o, "hostEmail", g->host_email);
    jadd_str(o, "hostName", NULL);
    jadd_bool(o, "isReassigned", g->reassigned);
    jadd_str(o, "privateMessage", g->pmsg ? g->pmsg : "");
    jadd_bool(o, "allowFieldConfiguration", 0);
    cJSON *ff = cJSON_AddArrayToObject(o, "formFields");
    if (full)
        for (int i = 0; i < g->nfields; i++)
            cJSON_AddItemToArray(ff, doc_field_json(&g->fields[i]));
    jadd_num(o, "language", 1);
    jadd_str(o, "locale", "EN");
    jadd_str(o, "signType", "Single");
    jadd_str(o, "groupId", NULL);
    if (g->phone[0]) {
        cJSON *p = cJSON_AddObjectToObject(o, "phoneNumber");
        jadd_str(p, "countryCode", g->cc_code);
        jadd_str(p, "number", g->phone);
    }
    if (full) cJSON_AddItemToObject(o, "recipientNotificationSettings", notif_json());
    jadd_str(o, "authenticationRetryCount", NULL);
    jadd_bool(o, "enableQes", 0);
    jadd_str(o, "deliveryMode", g->delivery);
    cJSON_AddArrayToObject(o, "groupSigners");
    return o;
}

static cJSON *doc_sender_json(const bs_account *a, const bs_doc *d)
{
    const bs_user *u = &a->users[d->sender];
    char nm[80];
    user_full_name(u, nm, sizeof nm);
    cJSON *o = cJSON_CreateObject();
    jadd_str(o, "name", nm);
    jadd_str(o, "privateMessage", NULL);
    jadd_str(o, "emailAddress", u->email);
    jadd_bool(o, "isViewed", 0);
    return o;
}

static cJSON *doc_cc_json(const bs_doc *d)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < d->ncc; i++) {
        cJSON *o = cJSON_CreateObject();
        jadd_str(o, "emailAddress", d->cc[i]);
        jadd_bool(o, "isViewed", 0);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

/* Document (list item) */
static cJSON *doc_list_json(const bs_account *a, const bs_doc *d)
{
    cJSON *o = cJSON_CreateObject();
    jadd_str(o, "documentId", d->id);
    cJSON_AddItemToObject(o, "senderDetail", doc_sender_json(a, d));
    cJSON_AddItemToObject(o, "ccDetails", doc_cc_json(d));
    jadd_num(o, "createdDate", (double)d->created);
    jadd_num(o, "activityDate", (double)d->activity);
    jadd_str(o, "activityBy", d->activity_by);
    jadd_str(o, "messageTitle", d->title);
    jadd_str(o, "status", d->status);
    cJSON *sa = cJSON_AddArrayToObject(o, "signerDetails");
    for (int i = 0; i < d->nsigners; i++)
        cJSON_AddItemToArray(sa, signer_json(&d->signers[i], 0));
    jadd_num(o, "expiryDate", (double)d->expiry);
    jadd_bool(o, "enableSigningOrder", d->signing_order);
    jadd_bool(o, "isDeleted", d->deleted);
    cJSON_AddItemToObject(o, "labels", jstr_array(d->labels, d->nlabels));
    jadd_num(o, "cursor", (double)d->activity);
    jadd_str(o, "brandId", d->brand_id);
    if (d->scheduled)
        jadd_num(o, "scheduledSendTime", (double)d->scheduled);
    else
        jadd_str(o, "scheduledSendTime", NULL);
    jadd_bool(o, "inEditingMode", 0);
    jadd_str(o, "displayStatus", d->status);
    return o;
}

static cJSON *hist_json(const bs_hist *h)
{
    cJSON *o = cJSON_CreateObject();
    jadd_str(o, "id", h->id);
    jadd_str(o, "name", h->name);
    jadd_str(o, "email", h->email);
    jadd_str(o, "toName", h->to_name);
    jadd_str(o, "toEmail", h->to_email);
    jadd_str(o, "ipaddress", h->ip);
    jadd_str(o, "action", h->action);
    jadd_num(o, "timestamp", (double)h->ts);
    return o;
}

static cJSON *reminder_json(const bs_doc *d)
{
    cJSON *o = cJSON_CreateObject();
    jadd_bool(o, "enableAutoReminder", d->auto_remind);
    jadd_num(o, "reminderDays", d->remind_days);
    jadd_num(o, "reminderCount", d->remind_count);
    return o;
}

/* DocumentProperties */
static cJSON *doc_props_json(const bs_account *a, const bs_doc *d)
{
    cJSON *o = cJSON_CreateObject();
    jadd_str(o, "documentId", d->id);
    jadd_str(o, "brandId", d->brand_id);
    jadd_str(o, "messageTitle", d->title);
    jadd_str(o, "documentDescription", d->message);
    jadd_str(o, "status", d->status);
    cJSON *fa = cJSON_AddArrayToObject(o, "files");
    for (int i = 0; i < d->nfiles; i++) {
        const bs_file *f = &d->files[i];
        cJSON *fo = cJSON_CreateObject();
        jadd_str(fo, "id", f->id);
        jadd_str(fo, "documentName", f->name);
        jadd_num(fo, "order", i + 1);
        jadd_num(fo, "pageCount", f->pages);
        jadd_str(fo, "templateName", f->tpl >= 0 ? a->tpls[f->tpl].name : NULL);
        jadd_str(fo, "templateId", f->tpl >= 0 ? a->tpls[f->tpl].id : NULL);
        cJSON_AddItemToArray(fa, fo);
    }
    cJSON_AddItemToObject(o, "senderDetail", doc_sender_json(a, d));
    cJSON *sa = cJSON_AddArrayToObject(o, "signerDetails");
    for (int i = 0; i < d->nsigners; i++)
        cJSON_AddItemToArray(sa, signer_json(&d->signers[i], 1));
    cJSON_AddArrayToObject(o, "formGroups");
    cJSON_AddArrayToObject(o, "commonFields");
    if (d->behalf_email) {
        cJSON *b = cJSON_AddObjectToObject(o, "behalfOf");
        jadd_str(b, "name", d->behalf_name);
        jadd_str(b, "emailAddress", d->behalf_email);
    }
    cJSON_AddItemToObject(o, "ccDetails", doc_cc_json(d));
    cJSON_AddItemToObject(o, "reminderSettings", reminder_json(d));
    cJSON *ra = cJSON_AddArrayToObject(o, "reassign");
    for (int i = 0; i < d->nsigners; i++) {
        if (!d->signers[i].reassigned) continue;
        cJSON *r = cJSON_CreateObject();
        jadd_str(r, "signerEmail", d->signers[i].email);
        jadd_num(r, "order", d->signers[i].order);
        jadd_str(r, "message", NULL);
        cJSON_AddItemToArray(ra, r);
    }
    cJSON *ha = cJSON_AddArrayToObject(o, "documentHistory");
    for (int i = 0; i < d->nhist; i++)
        cJSON_AddItemToArray(ha, hist_json(&d->hist[i]));
    jadd_str(o, "activityBy", d->activity_by);
    jadd_num(o, "activityDate", (double)d->activity);
    jadd_str(o, "activityAction", d->activity_action);
    jadd_num(o, "createdDate", (double)d->created);
    jadd_num(o, "expiryDays", d->expiry_days);
    jadd_num(o, "expiryDate", (double)d->expiry);
    jadd_bool(o, "enableSigningOrder", d->signing_order);
    jadd_bool(o, "isDeleted", d->deleted);
    jadd_str(o, "revokeMessage", d->revoke_msg);
    jadd_str(o, "declineMessage", d->decline_msg);
    jadd_str(o, "applicationId", NULL);
    cJSON_AddItemToObject(o, "labels", jstr_array(d->labels, d->nlabels));
    jadd_bool(o, "disableEmails", d->disable_emails);
    jadd_bool(o, "enablePrintAndSign", d->print_sign);
    jadd_bool(o, "enableReassign", d->reassign);
    jadd_bool(o, "disableExpiryAlert", d->no_expiry_alert);
    jadd_bool(o, "hideDocumentId", d->hide_id);
    jadd_str(o, "expiryDateType", d->expiry_type);
    jadd_num(o, "expiryValue", (double)d->expiry_value);
    jadd_str(o, "documentDownloadOption", d->dl_option);
    cJSON_AddItemToObject(o, "metaData",
                          d->meta ? cJSON_Duplicate(d->meta, 1) : cJSON_CreateObject());
    cJSON_AddItemToObject(o, "recipientNotificationSettings", notif_json());
    jadd_bool(o, "enableAuditTrailLocalization", 0);
    jadd_str(o, "downloadFileName", NULL);
    if (d->scheduled)
        jadd_num(o, "scheduledSendTime", (double)d->scheduled);
    else
        jadd_str(o, "scheduledSendTime", NULL);
    cJSON *st = cJSON_AddArrayToObject(o, "allowedSignatureTypes");
    cJSON_AddItemToArray(st, cJSON_CreateString("Text"));
    cJSON_AddItemToArray(st, cJSON_CreateString("Draw"));
    cJSON_AddItemToArray(st, cJSON_CreateString("Image"));
    cJSON *gs = cJSON_AddObjectToObject(o, "groupSignerSettings");
    jadd_bool(gs, "enabled", 0);
    cJSON_AddArrayToObject(gs, "allowedDirectories");
    jadd_bool(o, "inEditingMode", 0);
    jadd_str(o, "displayStatus", d->status);
    jadd_bool(o, "enableAllowSignEverywhere", 0);
    jadd_bool(o, "isCombinedAudit", 0);
    jadd_bool(o, "isCombinedAttachment", 0);
    jadd_str(o, "documentTimeZone", NULL);
    return o;
}

/* TemplateFormFields */
static cJSON *tpl_field_json(const bs_field *f)
{
    char t[16];
    lower_copy(f->ftype, t, sizeof t);
    cJSON *o = cJSON_CreateObject();
    jadd_str(o, "id", f->id);
    jadd_str(o, "fieldType", f->ftype);
    jadd_str(o, "type", t);
    jadd_str(o, "value", f->value);
    jadd_str(o, "font", "Helvetica");
    jadd_bool(o, "isRequired", f->required);
    jadd_bool(o, "isReadOnly", f->readonly);
    jadd_num(o, "lineHeight", 15);
    jadd_num(o, "fontSize", 13);
    jadd_str(o, "fontHexColor", "#000000");
    jadd_bool(o, "isUnderLineFont", 0);
    jadd_bool(o, "isItalicFont", 0);
    jadd_bool(o, "isBoldFont", 0);
    jadd_str(o, "groupName", NULL);
    jadd_str(o, "label", NULL);
    jadd_str(o, "placeholder", NULL);
    jadd_str(o, "validationtype", "None");
    jadd_str(o, "validationCustomRegex", NULL);
    jadd_str(o, "validationCustomRegexMessage", NULL);
    jadd_str(o, "dateFormat", strcmp(f->ftype, "DateSigned") == 0 ? "MM/dd/yyyy" : NULL);
    jadd_str(o, "timeFormat", NULL);
    cJSON_AddArrayToObject(o, "dropdownOptions");
    cJSON_AddItemToObject(o, "bounds", bounds_json(f));
    jadd_num(o, "pageNumber", f->page);
    cJSON_AddArrayToObject(o, "conditionalRules");
    jadd_str(o, "dataSyncTag", NULL);
    jadd_str(o, "textAlign", "Left");
    jadd_str(o, "textDirection", "LTR");
    jadd_num(o, "characterSpacing", 0);
    jadd_num(o, "characterLimit", 0);
    jadd_str(o, "hyperlinkText", NULL);
    jadd_str(o, "backgroundHexColor", NULL);
    jadd_num(o, "tabIndex", 0);
    jadd_bool(o, "allowEditFormField", 0);
    jadd_bool(o, "allowDeleteFormField", 0);
    jadd_bool(o, "isMasked", 0);
    jadd_bool(o, "isDefaultValueRequired", 0);
    return o;
}

/* Roles */
static cJSON *role_json(const bs_role *r)
{
    cJSON *o = cJSON_CreateObject();
    jadd_str(o, "name", r->name);
    jadd_num(o, "index", r->index);
    jadd_str(o, "defaultSignerName", r->def_name[0] ? r->def_name : NULL);
    jadd_str(o, "defaultSignerEmail", r->def_email[0] ? r->def_email : NULL);
    jadd_num(o, "signerOrder", r->order);
    jadd_str(o, "signerType", r->stype);
    jadd_str(o, "hostEmail", NULL);
    jadd_str(o, "hostName", NULL);
    jadd_num(o, "language", 1);
    jadd_str(o, "locale", "EN");
    jadd_str(o, "signType", "Single");
    jadd_str(o, "defaultGroupId", NULL);
    jadd_bool(o, "allowRoleEdit", 1);
    jadd_bool(o, "allowRoleDelete", 1);
    jadd_bool(o, "enableAccessCode", 0);
    jadd_bool(o, "enableEmailOTP", 0);
    jadd_str(o, "imposeAuthentication", "None");
    jadd_str(o, "deliveryMode", "Email");
    jadd_bool(o, "allowFieldConfiguration", 0);
    cJSON *fa = cJSON_AddArrayToObject(o, "formFields");
    for (int i = 0; i < r->nfields; i++)
        cJSON_AddItemToArray(fa, tpl_field_json(&r->fields[i]));
    jadd_bool(o, "enableEditRecipients", 1);
    jadd_bool(o, "enableDeleteRecipients", 1);
    cJSON_AddItemToObject(o, "recipientNotificationSettings", notif_json());
    jadd_bool(o, "enableQes", 0);
    cJSON_AddArrayToObject(o, "groupSigners");
    return o;
}

/* Template (list item): the template id travels in documentId. */
static cJSON *tpl_list_json(const bs_account *a, const bs_template *t)
{
    const bs_user *u = &a->users[t->creator];
    char nm[80];
    user_full_name(u, nm, sizeof nm);
    cJSON *o = cJSON_CreateObject();
    jadd_str(o, "documentId", t->id);
    cJSON *sd = cJSON_AddObjectToObject(o, "senderDetail");
    jadd_str(sd, "name", nm);
    jadd_str(sd, "emailAddress", u->email);
    jadd_str(sd, "userId", u->id);
    cJSON *cc = cJSON_AddArrayToObject(o, "ccDetails");
    if (t->cc[0]) {
        cJSON *c = cJSON_CreateObject();
        jadd_str(c, "emailAddress", t->cc);
        jadd_str(c, "userId", NULL);
        cJSON_AddItemToArray(cc, c);
    }
    jadd_num(o, "createdDate", (double)t->created);
    jadd_num(o, "activityDate", (double)t->activity);
    jadd_str(o, "activityBy", u->email);
    jadd_str(o, "messageTitle", t->doc_title);
    jadd_str(o, "status", "Completed");
    cJSON *sa = cJSON_AddArrayToObject(o, "signerDetails");
    for (int i = 0; i < t->nroles; i++) {
        const bs_role *r = &t->roles[i];
        cJSON *s = cJSON_CreateObject();
        jadd_str(s, "signerName", r->def_name);
        jadd_str(s, "signerRole", r->name);
        jadd_str(s, "signerEmail", r->def_email);
        jadd_str(s, "status", "None");
        jadd_bool(s, "enableAccessCode", 0);
        jadd_bool(s, "enableEmailOTP", 0);
        jadd_str(s, "imposeAuthentication", "None");
        jadd_str(s, "deliveryMode", "Email");
        jadd_bool(s, "allowFieldConfiguration", 0);
        jadd_str(s, "userId", NULL);
        jadd_num(s, "order", r->order);
        jadd_str(s, "signerType", r->stype);
        jadd_str(s, "hostEmail", NULL);
        jadd_str(s, "hostName", NULL);
        jadd_str(s, "hostUserId", NULL);
        jadd_str(s, "signType", "Single");
        jadd_str(s, "groupId", NULL);
        cJSON_AddArrayToObject(s, "groupSigners");
        cJSON_AddItemToArray(sa, s);
    }
    jadd_bool(o, "enableSigningOrder", t->signing_order);
    jadd_str(o, "templateName", t->name);
    jadd_str(o, "templateDescription", t->desc);
    jadd_str(o, "accessType", t->access);
    jadd_str(o, "accessTid", NULL);
    jadd_bool(o, "isTemplate", 1);
    cJSON *tl = cJSON_AddArrayToObject(o, "templateLabels");
    cJSON *ll = cJSON_AddArrayToObject(o, "labels");
    if (t->label[0]) {
        cJSON_AddItemToArray(tl, cJSON_CreateString(t->label));
        cJSON_AddItemToArray(ll, cJSON_CreateString(t->label));
    }
    jadd_str(o, "brandId", t->brand >= 0 ? a->brands[t->brand].id : NULL);
    return o;
}

/* TemplateProperties */
static cJSON *tpl_props_json(const bs_account *a, const bs_template *t)
{
    const bs_user *u = &a->users[t->creator];
    char nm[80];
    user_full_name(u, nm, sizeof nm);
    cJSON *o = cJSON_CreateObject();
    jadd_str(o, "templateId", t->id);
    jadd_str(o, "title", t->name);
    jadd_str(o, "description", t->desc);
    jadd_str(o, "documentTitle", t->doc_title);
    jadd_str(o, "documentMessage", t->doc_msg);
    cJSON *fa = cJSON_AddArrayToObject(o, "files");
    cJSON *f = cJSON_CreateObject();
    jadd_str(f, "documentId", t->file_id);
    jadd_str(f, "documentName", t->file_name);
    jadd_num(f, "order", 1);
    jadd_num(f, "pageCount", t->pages);
    cJSON_AddItemToArray(fa, f);
    cJSON *ra = cJSON_AddArrayToObject(o, "roles");
    for (int i = 0; i < t->nroles; i++)
        cJSON_AddItemToArray(ra, role_json(&t->roles[i]));
    cJSON_AddArrayToObject(o, "formGroups");
    cJSON_AddArrayToObject(o, "commonFields");
    cJSON *cc = cJSON_AddArrayToObject(o, "cCDetails");
    if (t->cc[0]) cJSON_AddItemToArray(cc, cJSON_CreateString(t->cc));
    jadd_str(o, "brandId", t->brand >= 0 ? a->brands[t->brand].id : NULL);
    jadd_bool(o, "allowMessageEditing", 1);
    jadd_bool(o, "allowNewRoles", 1);
    jadd_bool(o, "allowNewFiles", 1);
    jadd_bool(o, "allowModifyFiles", 1);
    jadd_bool(o, "enableReassign", 1);
    jadd_bool(o, "EnablePrintAndSign", 0);
    jadd_bool(o, "enableSigningOrder", t->signing_order);
    jadd_num(o, "createdDate", (double)t->created);
    cJSON *cb = cJSON_AddObjectToObject(o, "createdBy");
    jadd_str(cb, "emailAddress", u->email);
    jadd_str(cb, "name", nm);
    cJSON *sh = cJSON_AddArrayToObject(o, "sharedTemplateDetail");
    cJSON *sharing = cJSON_CreateObject();
    cJSON *steams = cJSON_AddArrayToObject(sharing, "teams");
    for (int i = 0; i < BS_NTEAMS; i++) {
        if (t->shared_team != i && t->shared_team != BS_NTEAMS) continue;
        cJSON *x = cJSON_CreateObject();
        jadd_str(x, "teamId", a->teams[i].id);
        jadd_str(x, "accessType", t->access);
        cJSON_AddItemToArray(sh, x);
        cJSON *y = cJSON_CreateObject();
        jadd_str(y, "teamId", a->teams[i].id);
        jadd_str(y, "accessType", t->access);
        cJSON_AddItemToArray(steams, y);
    }
    cJSON_AddArrayToObject(o, "documentInfo");
    cJSON *ll = cJSON_AddArrayToObject(o, "labels");
    cJSON *tl = cJSON_AddArrayToObject(o, "templateLabels");
    if (t->label[0]) {
        cJSON_AddItemToArray(ll, cJSON_CreateString(t->label));
        cJSON_AddItemToArray(tl, cJSON_CreateString(t->label));
    }
    jadd_str(o, "documentDownloadOption", "Combined");
    cJSON_AddItemToObject(o, "recipientNotificationSettings", notif_json());
    cJSON *fp = cJSON_AddObjectToObject(o, "formFieldPermission");
    jadd_bool(fp, "canAdd", 1);
    jadd_bool(fp, "canModify", 1);
    jadd_bool(fp, "canModifyDefaultValue", 1);
    cJSON *st = cJSON_AddArrayToObject(o, "allowedSignatureTypes");
    cJSON_AddItemToArray(st, cJSON_CreateString("Text"));
    cJSON_AddItemToArray(st, cJSON_CreateString("Draw"));
    cJSON_AddItemToArray(st, cJSON_CreateString("Image"));
    cJSON *gs = cJSON_AddObjectToObject(o, "groupSignerSettings");
    jadd_bool(gs, "enabled", 0);
    cJSON_AddArrayToObject(gs, "allowedDirectories");
    cJSON_AddItemToObject(o, "sharing", sharing);
    jadd_bool(o, "enableAllowSignEverywhere", 0);
    jadd_str(o, "documentTimeZone", NULL);
    return o;
}

static cJSON *contact_json(const bs_contact *c)
{
    cJSON *o = cJSON_CreateObject();
    jadd_str(o, "id", c->id);
    jadd_str(o, "name", c->name);
    jadd_str(o, "email", c->email);
    jadd_str(o, "companyName", c->company);
    jadd_str(o, "jobTitle", c->job);
    if (c->phone[0]) {
        cJSON *p = cJSON_AddObjectToObject(o, "phoneNumber");
        jadd_str(p, "countryCode", c->cc_code);
        jadd_str(p, "number", c->phone);
    }
    return o;
}

/* UsersDetails / UserProperties (same fields) */
static cJSON *user_json(const bs_account *a, const bs_user *u)
{
    cJSON *o = cJSON_CreateObject();
    jadd_str(o, "userId", u->id);
    jadd_str(o, "email", u->email);
    jadd_str(o, "firstName", u->first);
    jadd_str(o, "lastName", u->last);
    jadd_str(o, "teamId", a->teams[u->team].id);
    jadd_str(o, "teamName", a->teams[u->team].name);
    jadd_str(o, "role", user_role_name(u->role));
    jadd_str(o, "userStatus", user_status_name(u->status));
    jadd_num(o, "createdDate", (double)u->created);
    jadd_num(o, "modifiedDate", (double)u->modified);
    cJSON_AddObjectToObject(o, "metaData");
    return o;
}

static cJSON *brand_json(const bs_account *a, const bs_brand *b)
{
    char disp[128];
    snprintf(disp, sizeof disp, "{SenderName} from %s", a->company);
    cJSON *o = cJSON_CreateObject();
    jadd_str(o, "brandId", b->id);
    jadd_str(o, "brandLogo", NULL);
    jadd_str(o, "brandName", b->name);
    jadd_str(o, "backgroundColor", "#FFFFFF");
    jadd_str(o, "buttonColor", "#0565FF");
    jadd_str(o, "buttonTextColor", "#FFFFFF");
    jadd_str(o, "emailDisplayName", disp);
    jadd_str(o, "disclaimerTitle", NULL);
    jadd_str(o, "disclaimerDescription", NULL);
    jadd_str(o, "redirectUrl", NULL);
    jadd_bool(o, "isDefault", b->is_default);
    jadd_bool(o, "canHideTagLine", 0);
    jadd_bool(o, "combineAuditTrail", 0);
    jadd_bool(o, "combineAttachments", 0);
    jadd_bool(o, "excludeAuditTrailFromEmail", 0);
    jadd_str(o, "emailSignedDocument", "Attachment");
    jadd_str(o, "documentTimeZone", NULL);
    jadd_bool(o, "showBuiltInFormFields", 1);
    jadd_bool(o, "allowCustomFieldCreation", 0);
    jadd_bool(o, "showSharedCustomFields", 0);
    jadd_bool(o, "hideDecline", 0);
    jadd_bool(o, "hideSave", 0);
    cJSON *ex = cJSON_AddObjectToObject(o, "documentExpirySettings");
    jadd_str(ex, "expiryDateType", "Days");
    jadd_num(ex, "expiryValue", 60);
    jadd_bool(ex, "enableDefaultExpiryAlert", 1);
    jadd_bool(ex, "enableAutoReminder", 0);
    jadd_num(ex, "reminderDays", 3);
    jadd_num(ex, "reminderCount", 3);
    cJSON *cd = cJSON_AddObjectToObject(o, "customDomainSettings");
    jadd_str(cd, "domainName", NULL);
    jadd_str(cd, "fromName", NULL);
    jadd_bool(o, "isDomainVerified", 0);
    cJSON *sf = cJSON_AddObjectToObject(o, "signatureFrameSettings");
    jadd_bool(sf, "enableSignatureFrame", 0);
    jadd_bool(sf, "showRecipientName", 0);
    jadd_bool(sf, "showRecipientEmail", 0);
    jadd_bool(sf, "showTimeStamp", 0);
    return o;
}

static cJSON *ident_json(const bs_account *a, const bs_ident *x)
{
    static const char *const k[] = {"viewed",         "sent",
                                    "deliveryFailed", "declined",
                                    "revoked",        "reassigned",
                                    "completed",      "signed",
                                    "expired",        "authenticationFailed",
                                    "reminders",      "attachSignedDocument"};
    cJSON *o = cJSON_CreateObject();
    jadd_str(o, "id", x->id);
    jadd_str(o, "name", x->name);
    jadd_str(o, "email", x->email);
    jadd_str(o, "status", x->approved ? "Approved" : "Pending");
    jadd_str(o, "createdBy", a->users[0].email);
    if (x->approved) {
        char ts[32];
        int y, m, d;
        civil_from_days(x->created / 86400 + 1, &y, &m, &d);
        snprintf(ts, sizeof ts, "%04d-%02d-%02dT09:00:00Z", y, m, d);
        jadd_str(o, "approvedDate", ts);
    } else {
        jadd_str(o, "approvedDate", NULL);
    }
    cJSON *n = cJSON_AddObjectToObject(o, "notificationSettings");
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        jadd_bool(n, k[i], i != 11);
    jadd_str(o, "brandId", NULL);
    jadd_str(o, "redirectUrl", NULL);
    cJSON_AddObjectToObject(o, "metaData");
    jadd_str(o, "locale", "EN");
    return o;
}

/* ---- document bookkeeping -------------------------------------------------------------------- */

static void doc_mask(const bs_account *a, bs_doc *d)
{
    d->user_mask = 0;
    for (int u = 0; u < BS_NUSERS; u++) {
        int hit = 0;
        for (int i = 0; i < d->nsigners && !hit; i++)
            hit = d->signers[i].email && strcasecmp(d->signers[i].email, a->users[u].email) == 0;
        for (int i = 0; i < d->ncc && !hit; i++)
            hit = strcasecmp(d->cc[i], a->users[u].email) == 0;
        if (hit) d->user_mask |= 1u << u;
    }
}

static void doc_touch(const bs_account *a, bs_doc *d)
{
    doc_mask(a, d);
    d->dirty = 0;
    free(d->list_json);
    d->list_json = NULL;
    d->list_len = 0;
    cJSON *j = doc_list_json(a, d);
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (s) {
        d->list_json = s;
        d->list_len = strlen(s);
    }
}

static int doc_cmp(const void *x, const void *y)
{
    const bs_doc *a = *(bs_doc *const *)x, *b = *(bs_doc *const *)y;
    if (a->activity != b->activity) return a->activity > b->activity ? -1 : 1;
    if (a->created != b->created) return a->created > b->created ? -1 : 1;
    return strcmp(a->id, b->id);
}

static void acct_sort(bs_account *a)
{
    if (a->ndocs > 1) qsort(a->docs, (size_t)a->ndocs, sizeof a->docs[0], doc_cmp);
}

static void hist_add(bs_doc *d, sbx_rng *rng, const char *action, const char *name,
                     const char *email, const char *to_name, const char *to_email, int64_t ts)
{
    if (d->nhist == d->caphist) {
        if (d->caphist >= BS_MAX_HIST) {
            /* keep the first entry (Sent), drop the oldest after it */
            hist_clear(&d->hist[1]);
            memmove(&d->hist[1], &d->hist[2], (size_t)(d->nhist - 2) * sizeof d->hist[0]);
            d->nhist--;
        } else {
            int nc = d->caphist ? d->caphist * 2 : 8;
            if (nc > BS_MAX_HIST) nc = BS_MAX_HIST;
            bs_hist *n = realloc(d->hist, (size_t)nc * sizeof *n);
            if (!n) return;
            d->hist = n;
            d->caphist = nc;
        }
    }
    bs_hist *h = &d->hist[d->nhist++];
    memset(h, 0, sizeof *h);
    sbx_rng_uuid(rng, h->id);
    h->action = action;
    h->name = xstrdup(name);
    h->email = xstrdup(email);
    h->to_name = xstrdup(to_name);
    h->to_email = xstrdup(to_email);
    snprintf(h->ip, sizeof h->ip, "203.0.113.%u", (unsigned)(sbx_rng_range(rng, 250) + 2));
    h->ts = ts;
}

static void doc_set_activity(bs_doc *d, int64_t ts, const char *by, const char *action)
{
    d->activity = ts;
    set_str(&d->activity_by, by);
    d->activity_action = action;
}

static bs_doc *find_doc(bs_account *a, const char *id)
{
    if (!id) return NULL;
    for (int i = 0; i < a->ndocs; i++)
        if (strcasecmp(a->docs[i]->id, id) == 0) return a->docs[i];
    return NULL;
}

static int doc_add(bs_account *a, bs_doc *d)
{
    if (a->ndocs == a->capdocs) {
        int nc = a->capdocs ? a->capdocs * 2 : 64;
        bs_doc **n = realloc(a->docs, (size_t)nc * sizeof *n);
        if (!n) return -1;
        a->docs = n;
        a->capdocs = nc;
    }
    a->docs[a->ndocs++] = d;
    return 0;
}

/* The signer whose turn it is (lowest order among the pending when the signing order is on,
 * else the first pending), or -1. */
static int next_signer(const bs_doc *d)
{
    int best = -1;
    for (int i = 0; i < d->nsigners; i++) {
        if (strcmp(d->signers[i].status, "NotCompleted") != 0) continue;
        if (!d->signing_order) return i;
        if (best < 0 || d->signers[i].order < d->signers[best].order) best = i;
    }
    return best;
}

static int signer_turn(const bs_doc *d, int i)
{
    if (strcmp(d->signers[i].status, "NotCompleted") != 0) return 0;
    if (!d->signing_order) return 1;
    int n = next_signer(d);
    return n >= 0 && d->signers[n].order == d->signers[i].order;
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

/* Re-render the list item and restore the newest-activity-first order; the usual change (new
 * activity "now") just moves the document to the front. */
static void doc_changed(bs_account *a, bs_doc *d)
{
    doc_touch(a, d);
    int i = 0;
    while (i < a->ndocs && a->docs[i] != d)
        i++;
    if (i == a->ndocs) return;
    int j = i == 0 ? 1 : 0; /* the current first other document */
    if (j >= a->ndocs || doc_cmp(&d, &a->docs[j]) <= 0) {
        memmove(&a->docs[1], &a->docs[0], (size_t)i * sizeof a->docs[0]);
        a->docs[0] = d;
    } else {
        acct_sort(a);
    }
}

static void sender_name(const bs_account *a, const bs_doc *d, char *out, size_t cap)
{
    user_full_name(&a->users[d->sender], out, cap);
}

static void lc_view(bs_doc *d, int i, int64_t ts, sbx_rng *rng)
{
    bs_signer *g = &d->signers[i];
    if (g->viewed) return;
    g->viewed = 1;
    hist_add(d, rng, "Viewed", g->name, g->email, NULL, NULL, ts);
    doc_set_activity(d, ts, g->email, "Viewed");
}

static void fmt_date_us(int64_t ts, char *out, size_t cap)
{
    int y, m, dd;
    civil_from_days(ts / 86400, &y, &m, &dd);
    snprintf(out, cap, "%02d/%02d/%04d", m, dd, y);
}

/* Signer i signs (or reviews); the document completes when nobody is pending. */
static void lc_sign(const bs_account *a, bs_doc *d, int i, int64_t ts, sbx_rng *rng)
{
    bs_signer *g = &d->signers[i];
    if (strcmp(g->status, "NotCompleted") != 0) return;
    lc_view(d, i, ts > 60 ? ts - 60 : ts, rng);
    g->status = "Completed";
    int reviewer = strcmp(g->stype, "Reviewer") == 0;
    for (int k = 0; k < g->nfields; k++) {
        bs_field *f = &g->fields[k];
        if (f->value) continue;
        char v[96];
        if (strcmp(f->ftype, "DateSigned") == 0)
            fmt_date_us(ts, v, sizeof v);
        else if (strcmp(f->ftype, "Signature") == 0 || strcmp(f->ftype, "Initial") == 0)
            snprintf(v, sizeof v, "%s", g->name ? g->name : "signed");
        else
            continue;
        f->value = xstrdup(v);
    }
    hist_add(d, rng, reviewer ? "Reviewed" : "Signed", g->name, g->email, NULL, NULL, ts);
    doc_set_activity(d, ts, g->email, reviewer ? "Reviewed" : "Signed");
    if (next_signer(d) < 0) {
        char nm[80];
        sender_name(a, d, nm, sizeof nm);
        d->status = "Completed";
        hist_add(d, rng, "Completed", nm, a->users[d->sender].email, NULL, NULL, ts);
    }
}

static void lc_decline(bs_doc *d, int i, int64_t ts, const char *msg, sbx_rng *rng)
{
    bs_signer *g = &d->signers[i];
    lc_view(d, i, ts > 60 ? ts - 60 : ts, rng);
    g->status = "Declined";
    d->status = "Declined";
    set_str(&d->decline_msg, msg);
    hist_add(d, rng, "Declined", g->name, g->email, NULL, NULL, ts);
    doc_set_activity(d, ts, g->email, "Declined");
}

static void lc_expire(bs_doc *d, int64_t ts)
{
    for (int i = 0; i < d->nsigners; i++)
        if (strcmp(d->signers[i].status, "NotCompleted") == 0) d->signers[i].status = "Expired";
    d->status = "Expired";
    if (d->expiry > ts) d->expiry = ts;
    d->activity = ts;
    d->activity_action = "Expired";
}

static void lc_revoke(const bs_account *a, bs_doc *d, int user, const char *msg, int64_t ts,
                      sbx_rng *rng)
{
    char nm[80];
    user_full_name(&a->users[user], nm, sizeof nm);
    for (int i = 0; i < d->nsigners; i++)
        if (strcmp(d->signers[i].status, "NotCompleted") == 0) d->signers[i].status = "Revoked";
    d->status = "Revoked";
    set_str(&d->revoke_msg, msg);
    hist_add(d, rng, "Recalled", nm, a->users[user].email, NULL, NULL, ts);
    doc_set_activity(d, ts, a->users[user].email, "Revoked");
}

/* Move a sent document one step: the next signer views, then signs. 1 if something moved. */
static int lc_step(const bs_account *a, bs_doc *d, int64_t ts, sbx_rng *rng)
{
    int i = next_signer(d);
    if (i < 0) return 0;
    if (!d->signers[i].viewed)
        lc_view(d, i, ts, rng);
    else
        lc_sign(a, d, i, ts, rng);
    return 1;
}

static void doc_defaults(bs_doc *d)
{
    d->status = "InProgress";
    d->expiry_days = 60;
    d->expiry_type = "Days";
    d->expiry_value = 60;
    d->reassign = 1;
    d->remind_days = 3;
    d->remind_count = 3;
    d->dl_option = "Combined";
    d->activity_action = "None";
}

static bs_field *default_fields(int k, int *n)
{
    bs_field *f = calloc(2, sizeof *f);
    if (!f) {
        *n = 0;
        return NULL;
    }
    snprintf(f[0].id, sizeof f[0].id, "Signature%d", k + 1);
    snprintf(f[0].ftype, sizeof f[0].ftype, "Signature");
    f[0].page = 1;
    f[0].x = 60;
    f[0].y = 560 + 70 * (k % 3);
    f[0].w = 200;
    f[0].h = 40;
    f[0].required = 1;
    snprintf(f[1].id, sizeof f[1].id, "DateSigned%d", k + 1);
    snprintf(f[1].ftype, sizeof f[1].ftype, "DateSigned");
    f[1].page = 1;
    f[1].x = 320;
    f[1].y = 570 + 70 * (k % 3);
    f[1].w = 120;
    f[1].h = 25;
    f[1].required = 1;
    *n = 2;
    return f;
}

/* ---- seeding --------------------------------------------------------------------------------- */

static const char *const first_names[] = {"Alex",   "Priya", "Jordan", "Mei",   "Carlos", "Fatima",
                                          "Liam",   "Sofia", "Noah",   "Aisha", "Ethan",  "Yuki",
                                          "Olivia", "Mateo", "Hannah", "Ravi",  "Chloe",  "Diego",
                                          "Emma",   "Kofi",  "Lucas",  "Amara", "Ben",    "Ingrid"};
static const char *const last_names[] = {"Morgan",  "Patel",   "Kim",    "Nguyen", "Garcia",
                                         "Schmidt", "Rossi",   "Dubois", "Tanaka", "Okafor",
                                         "Silva",   "Novak",   "Jensen", "Cohen",  "Lopez",
                                         "Fischer", "Ivanova", "Brown",  "Martin", "Singh"};
static const char *const companies[BS_NREG][BS_ACCTS_PER_REGION] = {
    {"Northwind Traders", "Tailspin Toys"},
    {"Fabrikam Europe", "Contoso Legal"},
    {"Maple Leaf Logistics", "Northern Lights Media"},
    {"Wingtip Outfitters", "Coral Coast Realty"}};
static const char *const partner_orgs[] = {"acme-corp",       "globex",           "initech",
                                           "umbrella-health", "stark-industries", "wayne-holdings",
                                           "hooli",           "vandelay-imports"};
static const char *const jobs[] = {"Procurement Manager", "General Counsel", "CFO",
                                   "Operations Lead",     "HR Director",     "Account Executive"};
static const char *const doc_titles[BS_SEED_DOCS] = {"Mutual NDA",
                                                     "Consulting Agreement",
                                                     "Statement of Work Q3",
                                                     "Master Services Agreement",
                                                     "Office Lease Renewal",
                                                     "Offer Letter",
                                                     "Vendor Onboarding Form",
                                                     "Photo Release Form",
                                                     "Purchase Agreement",
                                                     "Data Processing Addendum",
                                                     "Contractor Agreement",
                                                     "Mutual NDA (template)",
                                                     "Partnership Agreement",
                                                     "Employee Handbook Acknowledgement",
                                                     "Loan Agreement",
                                                     "Referral Agreement",
                                                     "Equipment Lease",
                                                     "Sales Order 1042",
                                                     "Sponsorship Agreement",
                                                     "Reseller Agreement",
                                                     "Change Order 7",
                                                     "Sublease Agreement",
                                                     "Severance Agreement",
                                                     "Draft Services Proposal",
                                                     "Draft Pricing Addendum",
                                                     "Scheduled Renewal Notice",
                                                     "Scheduled Policy Update",
                                                     "Employment Offer (on behalf)"};

typedef struct seed_plan {
    const char *status;
    int nsig;
    int sender;
    int me_signer; /* which signer slot is user 0, -1 none */
    int steps;     /* view/sign steps applied before the final state */
    int order;     /* signing order on */
    int tpl;       /* template used, -1 */
    int days_ago;
} seed_plan;

static const seed_plan plans[BS_SEED_DOCS] = {
    {"InProgress", 2, 0, -1, 0, 0, -1, 1},  {"InProgress", 2, 0, -1, 1, 0, -1, 2},
    {"InProgress", 2, 0, -1, 2, 1, -1, 3},  {"InProgress", 3, 0, -1, 3, 1, -1, 5},
    {"InProgress", 1, 0, -1, 0, 0, -1, 28}, {"InProgress", 2, 1, 0, 0, 0, -1, 4},
    {"InProgress", 2, 2, -1, 1, 0, -1, 6},  {"InProgress", 1, 0, -1, 0, 0, -1, 2},
    {"Completed", 1, 0, -1, 2, 0, -1, 20},  {"Completed", 2, 0, -1, 4, 1, -1, 25},
    {"Completed", 2, 1, 1, 4, 0, -1, 30},   {"Completed", 2, 0, -1, 4, 0, 0, 12},
    {"Completed", 3, 3, -1, 6, 1, -1, 40},  {"Completed", 1, 0, -1, 2, 0, -1, 55},
    {"Declined", 2, 0, -1, 2, 1, -1, 9},    {"Declined", 1, 0, -1, 0, 0, -1, 14},
    {"Declined", 2, 2, -1, 0, 0, -1, 18},   {"Expired", 2, 0, -1, 2, 1, -1, 70},
    {"Expired", 1, 0, -1, 1, 0, -1, 80},    {"Expired", 1, 1, -1, 0, 0, -1, 90},
    {"Revoked", 2, 0, -1, 0, 0, -1, 8},     {"Revoked", 1, 0, -1, 1, 0, -1, 11},
    {"Revoked", 2, 3, -1, 2, 1, -1, 16},    {"Draft", 1, 0, -1, 0, 0, -1, 3},
    {"Draft", 2, 0, -1, 0, 0, -1, 1},       {"Scheduled", 1, 0, -1, 0, 0, -1, 1},
    {"Scheduled", 2, 1, -1, 0, 0, -1, 2},   {"InProgress", 2, 0, -1, 1, 0, 1, 3}};

static const char *pick(sbx_rng *r, const char *const *v, size_t n)
{
    return v[sbx_rng_range(r, n)];
}

static void slugify(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    int dash = 0;
    for (; *s && o + 1 < cap; s++) {
        if (isalnum((unsigned char)*s)) {
            out[o++] = (char)tolower((unsigned char)*s);
            dash = 0;
        } else if (!dash && o > 0) {
            out[o++] = '-';
            dash = 1;
        }
    }
    while (o > 0 && out[o - 1] == '-')
        o--;
    out[o] = '\0';
}

static void make_email(const char *first, const char *last, const char *domain, char *out,
                       size_t cap)
{
    char f[32], l[32];
    lower_copy(first, f, sizeof f);
    lower_copy(last, l, sizeof l);
    int w = snprintf(out, cap, "%s.%s@%s", f, l, domain);
    if (w < 0) out[0] = '\0';
}

/* BoldSign API keys look like base64 of a GUID. */
static void make_api_key(sbx_rng *r, char *out, size_t cap)
{
    char g[37];
    sbx_rng_uuid(r, g);
    char b[64];
    size_t n = sb_base64_encode((const unsigned char *)g, 36, b);
    b[n] = '\0';
    snprintf(out, cap, "%s", b);
}

static void seed_template(bs_account *a, sbx_rng *r, int t, int64_t base)
{
    static const struct {
        const char *name, *desc, *title, *msg, *file, *label;
        int creator, shared, pages, nroles, order;
        const char *roles[3];
        const char *stypes[3];
    } T[BS_NTPL] = {{"Mutual NDA",
                     "Two-way non-disclosure agreement",
                     "Mutual NDA",
                     "Please review and sign the mutual NDA.",
                     "mutual-nda.pdf",
                     "legal",
                     0,
                     -1,
                     2,
                     2,
                     1,
                     {"Disclosing Party", "Receiving Party", NULL},
                     {"Signer", "Signer", NULL}},
                    {"Employment Offer Letter",
                     "Offer letter for new hires",
                     "Your offer from {company}",
                     "Congratulations! Please sign your offer letter.",
                     "offer-letter.pdf",
                     "hr",
                     1,
                     0,
                     3,
                     2,
                     1,
                     {"Candidate", "HR Manager", NULL},
                     {"Signer", "Signer", NULL}},
                    {"Master Services Agreement",
                     "MSA with statement of work",
                     "Master Services Agreement",
                     "Please sign the MSA.",
                     "msa.pdf",
                     "sales",
                     0,
                     BS_NTEAMS,
                     4,
                     3,
                     0,
                     {"Client", "Provider", "Legal Reviewer"},
                     {"Signer", "Signer", "Reviewer"}},
                    {"Equipment Lease",
                     "Equipment lease for field staff",
                     "Equipment Lease",
                     "Please sign the lease.",
                     "equipment-lease.pdf",
                     "operations",
                     2,
                     1,
                     2,
                     1,
                     0,
                     {"Lessee", NULL, NULL},
                     {"Signer", NULL, NULL}}};
    bs_template *tp = &a->tpls[t];
    memset(tp, 0, sizeof *tp);
    sbx_rng_uuid(r, tp->id);
    snprintf(tp->name, sizeof tp->name, "%s", T[t].name);
    snprintf(tp->desc, sizeof tp->desc, "%s", T[t].desc);
    if (strstr(T[t].title, "{company}"))
        snprintf(tp->doc_title, sizeof tp->doc_title, "Your offer from %s", a->company);
    else
        snprintf(tp->doc_title, sizeof tp->doc_title, "%s", T[t].title);
    snprintf(tp->doc_msg, sizeof tp->doc_msg, "%s", T[t].msg);
    tp->creator = T[t].creator;
    tp->shared_team = T[t].shared;
    tp->access = t == 3 ? "Use" : "Edit";
    tp->nroles = T[t].nroles;
    tp->signing_order = T[t].order;
    sbx_rng_uuid(r, tp->file_id);
    snprintf(tp->file_name, sizeof tp->file_name, "%s", T[t].file);
    tp->pages = T[t].pages;
    snprintf(tp->label, sizeof tp->label, "%s", T[t].label);
    tp->brand = t == 0 ? 0 : -1;
    if (t == 1) snprintf(tp->cc, sizeof tp->cc, "%s", a->users[1].email);
    tp->created = base - (int64_t)(120 + 10 * t) * 86400 + (int64_t)sbx_rng_range(r, 86400);
    tp->activity = tp->created + (int64_t)sbx_rng_range(r, 20 * 86400);
    for (int i = 0; i < tp->nroles; i++) {
        bs_role *ro = &tp->roles[i];
        snprintf(ro->name, sizeof ro->name, "%s", T[t].roles[i]);
        ro->index = i + 1;
        ro->order = i + 1;
        ro->stype = T[t].stypes[i];
        if (t == 1 && i == 1) { /* HR Manager defaults to the team admin */
            char nm[80];
            user_full_name(&a->users[1], nm, sizeof nm);
            snprintf(ro->def_name, sizeof ro->def_name, "%.63s", nm);
            snprintf(ro->def_email, sizeof ro->def_email, "%s", a->users[1].email);
        }
        int nf = 0;
        if (strcmp(ro->stype, "Reviewer") != 0) {
            bs_field *f = &ro->fields[nf++];
            snprintf(f->id, sizeof f->id, "%s_Signature",
                     t == 0 ? (i ? "receiving" : "disclosing") : (i ? "role2" : "role1"));
            snprintf(f->ftype, sizeof f->ftype, "Signature");
            f->page = tp->pages;
            f->x = 60 + 260 * (i % 2);
            f->y = 600;
            f->w = 200;
            f->h = 40;
            f->required = 1;
            f = &ro->fields[nf++];
            snprintf(f->id, sizeof f->id, "%s_DateSigned",
                     t == 0 ? (i ? "receiving" : "disclosing") : (i ? "role2" : "role1"));
            snprintf(f->ftype, sizeof f->ftype, "DateSigned");
            f->page = tp->pages;
            f->x = 60 + 260 * (i % 2);
            f->y = 650;
            f->w = 120;
            f->h = 25;
            f->required = 1;
            if (i == 0) {
                f = &ro->fields[nf++];
                snprintf(f->id, sizeof f->id, "%s", t == 1 ? "StartDate" : "CompanyName");
                snprintf(f->ftype, sizeof f->ftype, "TextBox");
                f->page = 1;
                f->x = 120;
                f->y = 200;
                f->w = 220;
                f->h = 25;
                f->required = 0;
            }
        }
        ro->nfields = nf;
    }
}

static int seed_contact(bs_account *a, sbx_rng *r, int i)
{
    bs_contact *c = &a->contacts[i];
    memset(c, 0, sizeof *c);
    const char *f = pick(r, first_names, sizeof first_names / sizeof first_names[0]);
    const char *l = pick(r, last_names, sizeof last_names / sizeof last_names[0]);
    const char *org = partner_orgs[(size_t)i % (sizeof partner_orgs / sizeof partner_orgs[0])];
    char nm[80], em[128], dom[64], co[64];
    snprintf(nm, sizeof nm, "%s %s", f, l);
    snprintf(dom, sizeof dom, "%s.example.net", org);
    make_email(f, l, dom, em, sizeof em);
    size_t k = 0;
    for (const char *p = org; *p && k + 1 < sizeof co; p++)
        co[k++] =
            *p == '-' ? ' ' : (char)((p == org || p[-1] == '-') ? toupper((unsigned char)*p) : *p);
    co[k] = '\0';
    sbx_rng_uuid(r, c->id);
    c->name = xstrdup(nm);
    c->email = xstrdup(em);
    c->company = xstrdup(co);
    c->job = xstrdup(jobs[(size_t)i % (sizeof jobs / sizeof jobs[0])]);
    if (i % 2 == 0) {
        snprintf(c->cc_code, sizeof c->cc_code, "+1");
        snprintf(c->phone, sizeof c->phone, "555%07u", (unsigned)sbx_rng_range(r, 10000000));
    }
    c->owner = i % 3 == 2 ? 1 : 0;
    return (c->name && c->email && c->company && c->job) ? 0 : -1;
}

static int seed_doc(bs_account *a, sbx_rng *r, int idx, int64_t base)
{
    const seed_plan *p = &plans[idx];
    bs_doc *d = calloc(1, sizeof *d);
    if (!d) return -1;
    doc_defaults(d);
    sbx_rng_uuid(r, d->id);
    d->sender = p->sender;
    d->signing_order = p->order;
    d->title = xstrdup(doc_titles[idx]);
    char msg[160];
    snprintf(msg, sizeof msg, "Please review and sign %s.", doc_titles[idx]);
    d->message = xstrdup(msg);
    d->created = base - (int64_t)p->days_ago * 86400 + (int64_t)sbx_rng_range(r, 12 * 3600);
    d->expiry_days = idx == 4 || p->status[0] == 'E' ? 30 : 60;
    d->expiry_value = d->expiry_days;
    d->expiry = d->created + (int64_t)d->expiry_days * 86400;
    if (idx % 3 == 0) d->brand_id = xstrdup(a->brands[0].id);
    if (idx % 5 == 0) {
        d->cc = calloc(1, sizeof *d->cc);
        if (d->cc) {
            d->cc[0] = xstrdup(a->users[1].email);
            d->ncc = 1;
        }
    }
    static const char *const labels[] = {"sales", "hr", "legal", "urgent", "q3-renewals"};
    if (idx % 4 != 3) {
        d->labels = calloc(1, sizeof *d->labels);
        if (d->labels) {
            d->labels[0] = xstrdup(labels[(size_t)idx % 5]);
            d->nlabels = 1;
        }
    }
    d->meta = cJSON_CreateObject();
    if (idx % 6 == 0 && d->meta)
        cJSON_AddStringToObject(d->meta, "crmId",
                                "OPP-10"
                                "42");
    /* files */
    d->files = calloc(1, sizeof *d->files);
    if (d->files) {
        d->nfiles = 1;
        sbx_rng_uuid(r, d->files[0].id);
        d->files[0].tpl = p->tpl;
        if (p->tpl >= 0) {
            d->files[0].name = xstrdup(a->tpls[p->tpl].file_name);
            d->files[0].pages = a->tpls[p->tpl].pages;
        } else {
            char fn[96];
            slugify(doc_titles[idx], fn, sizeof fn - 4);
            strncat(fn, ".pdf", sizeof fn - strlen(fn) - 1);
            d->files[0].name = xstrdup(fn);
            d->files[0].pages = 1 + (int)sbx_rng_range(r, 5);
        }
    }
    /* signers */
    d->signers = calloc((size_t)p->nsig, sizeof *d->signers);
    if (!d->signers) {
        doc_free(d);
        return -1;
    }
    d->nsigners = p->nsig;
    for (int k = 0; k < p->nsig; k++) {
        bs_signer *g = &d->signers[k];
        sbx_rng_uuid(r, g->id);
        g->stype = (idx == 3 && k == 2) ? "Reviewer" : "Signer";
        g->auth = (idx == 1 && k == 1) ? "EmailOTP" : "None";
        g->delivery = "Email";
        g->order = k + 1;
        g->status = "NotCompleted";
        if (k == p->me_signer) {
            char nm[80];
            user_full_name(&a->users[0], nm, sizeof nm);
            g->name = xstrdup(nm);
            g->email = xstrdup(a->users[0].email);
        } else if (p->sender >= 2 && k == 1) {
            char nm[80];
            user_full_name(&a->users[3 - (p->sender == 3)], nm, sizeof nm);
            g->name = xstrdup(nm);
            g->email = xstrdup(a->users[3 - (p->sender == 3)].email);
        } else {
            const bs_contact *c = &a->contacts[(idx + k * 3) % a->ncontacts];
            g->name = xstrdup(c->name);
            g->email = xstrdup(c->email);
        }
        if (p->tpl >= 0 && k < a->tpls[p->tpl].nroles)
            g->role = xstrdup(a->tpls[p->tpl].roles[k].name);
        g->fields = default_fields(k, &g->nfields);
    }
    if (idx == 7) d->signers[0].delivery_failed = 1;
    if (idx == 27) {
        d->behalf_name = xstrdup(a->idents[0].name);
        d->behalf_email = xstrdup(a->idents[0].email);
    }
    /* history: Sent, then view/sign steps, then the final state */
    const bs_user *su = &a->users[d->sender];
    char snm[80];
    user_full_name(su, snm, sizeof snm);
    int64_t t = d->created;
    if (strcmp(p->status, "Draft") == 0) {
        d->status = "Draft";
        for (int k = 0; k < d->nsigners; k++)
            d->signers[k].status = "None";
        doc_set_activity(d, t, su->email, "None");
    } else if (strcmp(p->status, "Scheduled") == 0) {
        d->status = "Scheduled";
        for (int k = 0; k < d->nsigners; k++)
            d->signers[k].status = "None";
        d->scheduled = base + 2 * 86400 + 10 * 3600 + (int64_t)idx * 600;
        d->expiry = d->scheduled + (int64_t)d->expiry_days * 86400;
        doc_set_activity(d, t, su->email, "DocumentScheduled");
    } else {
        hist_add(d, r, "Sent", snm, su->email, NULL, NULL, t);
        doc_set_activity(d, t, su->email, "None");
        int64_t limit = strcmp(p->status, "Expired") == 0 ? d->expiry - 3600 : base - 3600;
        int64_t step = (limit - t) / (p->steps + 2);
        if (step > 26 * 3600) step = 26 * 3600;
        if (step < 60) step = 60;
        for (int sidx = 0; sidx < p->steps; sidx++) {
            t += step / 2 + (int64_t)sbx_rng_range(r, (uint64_t)(step / 2));
            lc_step(a, d, t, r);
        }
        t += step / 2 + (int64_t)sbx_rng_range(r, (uint64_t)(step / 2));
        if (strcmp(p->status, "Completed") == 0) {
            while (strcmp(d->status, "Completed") == 0 ? 0 : lc_step(a, d, t, r))
                t += 600 + (int64_t)sbx_rng_range(r, 3600);
        } else if (strcmp(p->status, "Declined") == 0) {
            int i = next_signer(d);
            if (i >= 0) lc_decline(d, i, t, "The terms need another review.", r);
        } else if (strcmp(p->status, "Expired") == 0) {
            lc_expire(d, d->expiry);
        } else if (strcmp(p->status, "Revoked") == 0) {
            lc_revoke(a, d, d->sender, "Superseded by a corrected version.", t, r);
        }
    }
    if (idx == 4) d->expiry = base + 2 * 86400 + 6 * 3600;
    if (doc_add(a, d) < 0) {
        doc_free(d);
        return -1;
    }
    doc_touch(a, d);
    return 0;
}

static int seed_account(bs_account *a, uint64_t seed, int region, int k, int64_t base)
{
    char stream[48];
    snprintf(stream, sizeof stream, "boldsign/%s/%d", bs_regions[region], k);
    sbx_rng rr;
    sbx_rng *r = &rr;
    sbx_rng_init(r, seed, stream);
    memset(a, 0, sizeof *a);
    a->region = region;
    sbx_rng_uuid(r, a->id);
    snprintf(a->company, sizeof a->company, "%s", companies[region][k]);
    char s0[40];
    slugify(a->company, s0, sizeof s0);
    snprintf(a->slug, sizeof a->slug, "%s-%s", s0, bs_regions[region]);
    make_api_key(r, a->keys[0], sizeof a->keys[0]);
    make_api_key(r, a->keys[1], sizeof a->keys[1]);
    sbx_rng_uuid(r, a->client_id);
    sbx_rng_hex(r, 24, a->client_secret);
    char ph[13];
    sbx_rng_hex(r, 6, ph);
    snprintf(a->password, sizeof a->password, "Demo-%s", ph);
    a->credits = 500;
    char domain[64];
    snprintf(domain, sizeof domain, "%s.example.com", a->slug);
    static const char *const team_names[] = {"Operations", "Sales",  "Legal",
                                             "Finance",    "People", "Partnerships"};
    size_t t0 = (size_t)sbx_rng_range(r, 6);
    for (int i = 0; i < BS_NTEAMS; i++) {
        bs_team *t = &a->teams[i];
        sbx_rng_uuid(r, t->id);
        snprintf(t->name, sizeof t->name, "%s", team_names[(t0 + (size_t)i * 3) % 6]);
        t->created = base - (int64_t)(400 - i * 30) * 86400;
        t->modified = t->created + 86400 * (int64_t)(1 + sbx_rng_range(r, 30));
    }
    for (int i = 0; i < BS_NUSERS; i++) {
        bs_user *u = &a->users[i];
        sbx_rng_uuid(r, u->id);
        const char *f, *l;
        for (;;) { /* distinct names within the account */
            f = pick(r, first_names, sizeof first_names / sizeof first_names[0]);
            l = pick(r, last_names, sizeof last_names / sizeof last_names[0]);
            int dup = 0;
            for (int j = 0; j < i; j++)
                if (strcmp(a->users[j].first, f) == 0) dup = 1;
            if (!dup) break;
        }
        snprintf(u->first, sizeof u->first, "%s", f);
        snprintf(u->last, sizeof u->last, "%s", l);
        make_email(f, l, domain, u->email, sizeof u->email);
        u->team = i < 2 ? 0 : 1;
        u->role = i == 0 ? 0 : i == 1 ? 1 : 2;
        u->status = i == 4 ? 1 : 0;
        u->created = base - (int64_t)(380 - i * 40) * 86400;
        u->modified = u->created + 86400 * (int64_t)(1 + sbx_rng_range(r, 60));
    }
    for (int i = 0; i < BS_NBRANDS; i++) {
        bs_brand *b = &a->brands[i];
        sbx_rng_uuid(r, b->id);
        snprintf(b->name, sizeof b->name, "%s%s", a->company, i ? " Legal" : "");
        b->is_default = i == 0;
    }
    for (int i = 0; i < BS_NIDENT; i++) {
        bs_ident *x = &a->idents[i];
        sbx_rng_uuid(r, x->id);
        const char *f = pick(r, first_names, sizeof first_names / sizeof first_names[0]);
        const char *l = pick(r, last_names, sizeof last_names / sizeof last_names[0]);
        snprintf(x->name, sizeof x->name, "%s %s", f, l);
        char dom[64];
        snprintf(dom, sizeof dom, "%s.example.net", partner_orgs[(size_t)(region * 2 + k + i) % 8]);
        make_email(f, l, dom, x->email, sizeof x->email);
        x->approved = i == 0;
        x->created = base - (int64_t)(200 - i * 50) * 86400;
    }
    a->capcontacts = 32;
    a->contacts = calloc((size_t)a->capcontacts, sizeof *a->contacts);
    if (!a->contacts) return -1;
    for (int i = 0; i < BS_SEED_CONTACTS; i++) {
        a->ncontacts = i + 1;
        if (seed_contact(a, r, i) < 0) return -1;
    }
    for (int t = 0; t < BS_NTPL; t++)
        seed_template(a, r, t, base);
    for (int i = 0; i < BS_SEED_DOCS; i++)
        if (seed_doc(a, r, i, base) < 0) return -1;
    acct_sort(a);
    for (int t = 0; t < BS_NTPL; t++) {
        cJSON *j = tpl_list_json(a, &a->tpls[t]);
        a->tpls[t].list_json = j ? cJSON_PrintUnformatted(j) : NULL;
        cJSON_Delete(j);
        if (!a->tpls[t].list_json) return -1;
        a->tpls[t].list_len = strlen(a->tpls[t].list_json);
    }
    return 0;
}

/* ---- keys and JWTs --------------------------------------------------------------------------- */

static void free_keys(void)
{
    pthread_mutex_lock(&g_key_mu);
    for (int i = 0; i < BS_NREG; i++) {
        EVP_PKEY_free(g_keys[i].pk);
        g_keys[i].pk = NULL;
    }
    pthread_mutex_unlock(&g_key_mu);
}

/* The region's signing key, generated on first use. NULL if OpenSSL fails. */
static bs_key *region_key(int region)
{
    if (region < 0 || region >= BS_NREG) return NULL;
    pthread_mutex_lock(&g_key_mu);
    bs_key *k = &g_keys[region];
    if (!k->pk) {
        EVP_PKEY *pk = EVP_RSA_gen(2048);
        BIGNUM *n = NULL, *e = NULL;
        if (pk && EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n) &&
            EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e) && BN_num_bytes(n) <= 256 &&
            BN_num_bytes(e) <= 8) {
            unsigned char nb[256], eb[8], h[SHA256_DIGEST_LENGTH];
            int nl = BN_bn2bin(n, nb), el = BN_bn2bin(e, eb);
            k->n[sb_base64url_encode(nb, (size_t)nl, k->n)] = '\0';
            k->e[sb_base64url_encode(eb, (size_t)el, k->e)] = '\0';
            SHA256(nb, (size_t)nl, h);
            for (int i = 0; i < 16; i++)
                snprintf(k->kid + 2 * i, 3, "%02X", h[i]);
            k->pk = pk;
            pk = NULL;
        }
        EVP_PKEY_free(pk);
        BN_free(n);
        BN_free(e);
        if (!g_key_atexit) {
            g_key_atexit = 1;
            atexit(free_keys);
        }
    }
    bs_key *res = k->pk ? k : NULL;
    pthread_mutex_unlock(&g_key_mu);
    return res;
}

static int b64url_append(sb_buf *b, const void *data, size_t n)
{
    char *tmp = malloc(sb_base64url_len(n) + 1);
    if (!tmp) return -1;
    size_t l = sb_base64url_encode(data, n, tmp);
    int rc = sb_buf_append(b, tmp, l);
    free(tmp);
    return rc;
}

/* Sign payload as an RS256 JWS. malloc'd compact token (caller frees), or NULL. */
static char *jwt_sign(const bs_key *k, const char *typ, const cJSON *payload)
{
    char hdr[160];
    snprintf(hdr, sizeof hdr, "{\"alg\":\"RS256\",\"kid\":\"%s\",\"typ\":\"%s\"}", k->kid, typ);
    char *ps = cJSON_PrintUnformatted(payload);
    if (!ps) return NULL;
    sb_buf b;
    sb_buf_init(&b, 64 * 1024);
    int ok = b64url_append(&b, hdr, strlen(hdr)) == 0 && sb_buf_append(&b, ".", 1) == 0 &&
             b64url_append(&b, ps, strlen(ps)) == 0;
    free(ps);
    unsigned char sig[512];
    size_t siglen = sizeof sig;
    EVP_MD_CTX *ctx = ok ? EVP_MD_CTX_new() : NULL;
    ok = ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k->pk) == 1 &&
         EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)b.data, b.len) == 1;
    EVP_MD_CTX_free(ctx);
    ok = ok && sb_buf_append(&b, ".", 1) == 0 && b64url_append(&b, sig, siglen) == 0;
    if (!ok) {
        sb_buf_free(&b);
        return NULL;
    }
    return sb_buf_detach(&b, NULL);
}

/* Verify an RS256 compact JWS with the region key (algorithm pinned); the payload object
 * (caller deletes) or NULL. Claims are checked by the caller. */
static cJSON *jwt_verify(const bs_key *k, const char *tok)
{
    size_t n = strlen(tok);
    if (n < 10 || n > 8192) return NULL;
    const char *d1 = strchr(tok, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d2 || strchr(d2 + 1, '.')) return NULL;
    unsigned char hb[1024], pb[6144], sig[600];
    long hl = sb_base64_decode(tok, (size_t)(d1 - tok), hb, sizeof hb - 1);
    long pl = sb_base64_decode(d1 + 1, (size_t)(d2 - d1 - 1), pb, sizeof pb - 1);
    long sl = sb_base64_decode(d2 + 1, n - (size_t)(d2 + 1 - tok), sig, sizeof sig);
    if (hl <= 0 || pl <= 0 || sl <= 0) return NULL;
    cJSON *h = cJSON_ParseWithLength((const char *)hb, (size_t)hl);
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(h, "alg");
    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(h, "kid");
    int hok = cJSON_IsString(alg) && strcmp(alg->valuestring, "RS256") == 0 &&
              (!kid || (cJSON_IsString(kid) && strcmp(kid->valuestring, k->kid) == 0));
    cJSON_Delete(h);
    if (!hok) return NULL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok =
        ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k->pk) == 1 &&
        EVP_DigestVerify(ctx, sig, (size_t)sl, (const unsigned char *)tok, (size_t)(d2 - tok)) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) return NULL;
    cJSON *p = cJSON_ParseWithLength((const char *)pb, (size_t)pl);
    if (!cJSON_IsObject(p)) {
        cJSON_Delete(p);
        return NULL;
    }
    return p;
}

/* ---- request plumbing ------------------------------------------------------------------------ */

typedef struct bs_ctx {
    sbx *s;
    bs_state *st;
    sbx_req *req;
    sbx_resp *resp;
    int region;
    bs_account *a; /* resolved account (REST) */
    int acct;      /* its index */
    int me;        /* user index acting */
    int bearer;
    char scope[1024]; /* bearer scopes, space separated */
    int64_t now;
    uint64_t now_ms;
} bs_ctx;

static void json_error(sbx_resp *resp, int status, const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    sbx_resp_json(resp, status, o);
}

static void fail(bs_ctx *c, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(bs_ctx *c, int status, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_error(c->resp, status, msg);
}

static void empty(bs_ctx *c, int status)
{
    sbx_resp_bytes(c->resp, status, NULL, NULL, 0);
}

static const char *qp(bs_ctx *c, const char *key)
{
    return sbx_query(c->req, key, 1);
}

/* All values of an array query parameter: repeated `Key`, `Key[]` or `Key[n]`, any case. */
static size_t qall(bs_ctx *c, const char *key, const char **out, size_t max)
{
    size_t n = 0, kl = strlen(key);
    for (size_t i = 0; i < c->req->nquery && n < max; i++) {
        const char *k = c->req->query[i].key;
        if (!k || strncasecmp(k, key, kl) != 0) continue;
        const char *t = k + kl;
        if (*t == '[') {
            t++;
            while (isdigit((unsigned char)*t))
                t++;
            if (*t != ']' || t[1]) continue;
        } else if (*t) {
            continue;
        }
        if (c->req->query[i].val && c->req->query[i].val[0]) out[n++] = c->req->query[i].val;
    }
    return n;
}

/* Page (required) and PageSize (1..100, default 10). 0, or -1 with a 400 written. */
static int paging(bs_ctx *c, int *page, int *size)
{
    const char *p = qp(c, "Page");
    const char *z = qp(c, "PageSize");
    int64_t v;
    if (!p || !*p) {
        fail(c, 400, "The Page field is required.");
        return -1;
    }
    if (sb_parse_i64(p, -2147483647, 2147483647, &v) != 0) {
        fail(c, 400, "The value '%.64s' is not valid for Page.", p);
        return -1;
    }
    if (v < 1) {
        fail(c, 400, "Page must be greater than or equal to 1.");
        return -1;
    }
    *page = (int)v;
    *size = 10;
    if (z && *z) {
        if (sb_parse_i64(z, -2147483647, 2147483647, &v) != 0) {
            fail(c, 400, "The value '%.64s' is not valid for PageSize.", z);
            return -1;
        }
        if (v < 1 || v > 100) {
            fail(c, 400, "PageSize must be between 1 and 100.");
            return -1;
        }
        *size = (int)v;
    }
    return 0;
}

static int total_pages(int total, int size)
{
    return total == 0 ? 0 : (total + size - 1) / size;
}

/* Parse the request body into JSON. Multipart and form-urlencoded bodies are converted (see
 * form_to_json); multipart file parts are returned in *parts (caller frees with sbx_parts_free).
 * *root NULL for an empty body. 0, or -1 with an error written (status `bad`). */
static int parse_body(bs_ctx *c, cJSON **root, sbx_part **parts, size_t *nparts, int bad);

static void issuer_of(bs_ctx *c, char *out, size_t cap)
{
    char base[256];
    sbx_base_url(c->s, "boldsign", bs_regions[c->region], NULL, base, sizeof base);
    snprintf(out, cap, "%s/account", base);
}

static int scope_has(const char *scopes, const char *want)
{
    size_t wl = strlen(want);
    const char *p = scopes;
    while (p && *p) {
        while (*p == ' ')
            p++;
        const char *e = strchr(p, ' ');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == wl && strncmp(p, want, l) == 0) return 1;
        p = e;
    }
    return 0;
}

static int scope_has_prefix(const char *scopes, const char *prefix)
{
    size_t pl = strlen(prefix);
    const char *p = scopes;
    while (p && *p) {
        while (*p == ' ')
            p++;
        if (strncmp(p, prefix, pl) == 0) return 1;
        p = strchr(p, ' ');
    }
    return 0;
}

static int find_user_by_id(const bs_account *a, const char *id)
{
    for (int i = 0; i < BS_NUSERS; i++)
        if (id && strcasecmp(a->users[i].id, id) == 0) return i;
    return -1;
}

static bs_atok *find_atok(bs_state *st, const char *jti)
{
    for (int i = 0; i < st->natoks; i++)
        if (strcmp(st->atoks[i].jti, jti) == 0) return &st->atoks[i];
    return NULL;
}

/* Validate a Bearer access token for this region: signature, iss, aud, exp, nbf, not revoked.
 * Returns the account index (and *user, scope) or -1. Takes the state lock itself. */
static int bearer_check(bs_ctx *c, const char *tok, int *user, char *scope, size_t scap)
{
    bs_key *k = region_key(c->region);
    if (!k) return -1;
    cJSON *p = jwt_verify(k, tok);
    if (!p) return -1;
    char iss[300];
    issuer_of(c, iss, sizeof iss);
    const cJSON *jiss = cJSON_GetObjectItemCaseSensitive(p, "iss");
    const cJSON *aud = cJSON_GetObjectItemCaseSensitive(p, "aud");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(p, "exp");
    const cJSON *nbf = cJSON_GetObjectItemCaseSensitive(p, "nbf");
    const cJSON *jti = cJSON_GetObjectItemCaseSensitive(p, "jti");
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(p, "sub");
    const cJSON *cid = cJSON_GetObjectItemCaseSensitive(p, "client_id");
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(p, "scope");
    int ok = cJSON_IsString(jiss) && strcmp(jiss->valuestring, iss) == 0 && cJSON_IsNumber(exp) &&
             exp->valuedouble > (double)c->now && cJSON_IsString(jti) && cJSON_IsString(cid);
    if (ok && nbf) ok = cJSON_IsNumber(nbf) && nbf->valuedouble <= (double)c->now + 60;
    if (ok) {
        int aud_ok = 0;
        if (cJSON_IsString(aud)) aud_ok = strcmp(aud->valuestring, BS_AUD) == 0;
        if (cJSON_IsArray(aud)) {
            const cJSON *x;
            cJSON_ArrayForEach(x, aud) if (cJSON_IsString(x) && strcmp(x->valuestring, BS_AUD) == 0)
                aud_ok = 1;
        }
        ok = aud_ok;
    }
    int acct = -1;
    if (ok) {
        for (int i = 0; i < BS_NACCT; i++)
            if (c->st->acct[i].region == c->region &&
                strcmp(c->st->acct[i].client_id, cid->valuestring) == 0)
                acct = i;
        ok = acct >= 0;
    }
    if (ok) {
        pthread_rwlock_rdlock(&c->st->lock);
        bs_atok *t = find_atok(c->st, jti->valuestring);
        ok = t && !t->revoked && t->acct == acct && t->exp_ms > c->now_ms;
        pthread_rwlock_unlock(&c->st->lock);
    }
    if (ok) {
        *user = 0;
        if (cJSON_IsString(sub)) {
            int u = find_user_by_id(&c->st->acct[acct], sub->valuestring);
            if (u < 0 || c->st->acct[acct].users[u].status != 0) ok = 0;
            *user = u;
        }
    }
    if (ok) {
        scope[0] = '\0';
        if (cJSON_IsString(sc)) {
            snprintf(scope, scap, "%s", sc->valuestring);
        } else if (cJSON_IsArray(sc)) {
            size_t o = 0;
            const cJSON *x;
            cJSON_ArrayForEach(x, sc)
            {
                if (!cJSON_IsString(x)) continue;
                int w = snprintf(scope + o, scap - o, "%s%s", o ? " " : "", x->valuestring);
                if (w < 0 || (size_t)w >= scap - o) break;
                o += (size_t)w;
            }
        }
    }
    cJSON_Delete(p);
    return ok ? acct : -1;
}

static void unauthorized(bs_ctx *c, int bearer)
{
    sbx_resp_bytes(c->resp, 401, NULL, NULL, 0);
    if (bearer) sbx_resp_header(c->resp, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
}

/* Resolve the caller: X-API-KEY (own region only) or Bearer. 0, or -1 with a 401 written. */
static int authenticate(bs_ctx *c)
{
    const char *key = sbx_header(c->req, "X-API-KEY");
    const char *az = sbx_header(c->req, "Authorization");
    if (key) {
        snprintf(c->req->auth_scheme, sizeof c->req->auth_scheme, "x-api-key");
        while (*key == ' ')
            key++;
        size_t kl = strlen(key);
        while (kl && key[kl - 1] == ' ')
            kl--;
        for (int i = 0; i < BS_NACCT; i++) {
            bs_account *a = &c->st->acct[i];
            if (a->region != c->region) continue;
            for (int j = 0; j < 2; j++)
                if (sb_ct_equal(a->keys[j], strlen(a->keys[j]), key, kl)) {
                    c->a = a;
                    c->acct = i;
                    c->me = 0;
                    snprintf(c->req->account_id, sizeof c->req->account_id, "%s", a->id);
                    return 0;
                }
        }
        unauthorized(c, 0);
        return -1;
    }
    if (az && strncasecmp(az, "Bearer ", 7) == 0) {
        snprintf(c->req->auth_scheme, sizeof c->req->auth_scheme, "bearer");
        const char *t = az + 7;
        while (*t == ' ')
            t++;
        int user = 0;
        int acct = bearer_check(c, t, &user, c->scope, sizeof c->scope);
        if (acct < 0) {
            unauthorized(c, 1);
            return -1;
        }
        c->a = &c->st->acct[acct];
        c->acct = acct;
        c->me = user;
        c->bearer = 1;
        snprintf(c->req->account_id, sizeof c->req->account_id, "%s", c->a->id);
        return 0;
    }
    snprintf(c->req->auth_scheme, sizeof c->req->auth_scheme, "%s",
             az && strncasecmp(az, "Basic ", 6) == 0 ? "basic" : "none");
    unauthorized(c, 0);
    return -1;
}

static void rate_headers(bs_ctx *c, unsigned lim, unsigned rem, uint64_t reset)
{
    char v[32];
    snprintf(v, sizeof v, "%u", lim);
    sbx_resp_header(c->resp, "X-RateLimit-Limit", v);
    snprintf(v, sizeof v, "%u", rem);
    sbx_resp_header(c->resp, "X-RateLimit-Remaining", v);
    snprintf(v, sizeof v, "%llu", (unsigned long long)reset);
    sbx_resp_header(c->resp, "X-RateLimit-Reset", v);
}

/* ---- form bodies -> JSON --------------------------------------------------------------------- */

/* Properties that are arrays in SendForSign / SendForSignFromTemplateForm: repeated form fields
 * (e.g. the SDK's `signers` parts, each a JSON string) accumulate into them. */
static const char *const form_array_keys[] = {"signers",
                                              "cc",
                                              "labels",
                                              "fileUrls",
                                              "roles",
                                              "textTagDefinitions",
                                              "documentInfo",
                                              "formGroups",
                                              "allowedSignatureTypes",
                                              "roleRemovalIndices",
                                              "removeFormFields",
                                              "files",
                                              NULL};

static int is_form_array_key(const char *k)
{
    for (int i = 0; form_array_keys[i]; i++)
        if (strcasecmp(form_array_keys[i], k) == 0) return 1;
    return 0;
}

static cJSON *maybe_json(const char *v)
{
    while (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')
        v++;
    if (*v != '{' && *v != '[') return NULL;
    return cJSON_Parse(v);
}

static void obj_replace(cJSON *o, const char *k, cJSON *item)
{
    cJSON *old = (cJSON *)jget(o, k);
    if (old) cJSON_DeleteItemFromObjectCaseSensitive(o, old->string);
    cJSON_AddItemToObject(o, k, item);
}

/* Split "Signers[0][FormFields][1].Bounds.X" into segments. Returns the count (0 = unusable). */
static int split_form_key(const char *key, char segs[][64], int max)
{
    int n = 0;
    const char *p = key;
    while (*p && n < max) {
        if (*p == '[') {
            const char *e = strchr(p, ']');
            if (!e) return 0;
            size_t l = (size_t)(e - p - 1);
            if (l == 0 || l >= 64) return 0;
            memcpy(segs[n], p + 1, l);
            segs[n++][l] = '\0';
            p = e + 1;
            if (*p == '.') p++;
        } else {
            size_t l = strcspn(p, "[.");
            if (l == 0 || l >= 64) return 0;
            memcpy(segs[n], p, l);
            segs[n++][l] = '\0';
            p += l;
            if (*p == '.') p++;
        }
    }
    return *p ? 0 : n;
}

static void form_put(cJSON *root, const char *key, const char *val)
{
    char segs[10][64];
    int ns = split_form_key(key, segs, 10);
    if (ns == 0) return;
    if (ns == 1) {
        cJSON *pv = maybe_json(val);
        if (is_form_array_key(segs[0])) {
            cJSON *arr = (cJSON *)jget(root, segs[0]);
            if (!cJSON_IsArray(arr)) {
                arr = cJSON_CreateArray();
                obj_replace(root, segs[0], arr);
            }
            if (cJSON_IsArray(pv)) {
                cJSON *it;
                while ((it = pv->child) != NULL)
                    cJSON_AddItemToArray(arr, cJSON_DetachItemViaPointer(pv, it));
                cJSON_Delete(pv);
            } else {
                cJSON_AddItemToArray(arr, pv ? pv : cJSON_CreateString(val));
            }
        } else {
            obj_replace(root, segs[0], pv ? pv : cJSON_CreateString(val));
        }
        return;
    }
    cJSON *cur = root;
    for (int i = 0; i < ns - 1; i++) {
        cJSON *child = (cJSON *)jget(cur, segs[i]);
        if (cJSON_IsArray(child)) { /* mixed forms: index into an existing array */
            int64_t ix;
            if (sb_parse_i64(segs[i + 1], 0, 1000, &ix) == 0 && cJSON_GetArraySize(child) > ix &&
                cJSON_IsObject(cJSON_GetArrayItem(child, (int)ix)) && i + 2 < ns) {
                cur = cJSON_GetArrayItem(child, (int)ix);
                i++;
                continue;
            }
        }
        if (!cJSON_IsObject(child)) {
            child = cJSON_CreateObject();
            obj_replace(cur, segs[i], child);
        }
        cur = child;
    }
    obj_replace(cur, segs[ns - 1], cJSON_CreateString(val));
}

static int all_numeric_keys(const cJSON *o)
{
    if (!cJSON_IsObject(o) || !o->child) return 0;
    for (const cJSON *c = o->child; c; c = c->next) {
        int64_t v;
        if (!c->string || sb_parse_i64(c->string, 0, 100000, &v) != 0) return 0;
    }
    return 1;
}

static int key_cmp(const void *x, const void *y)
{
    const cJSON *a = *(cJSON *const *)x, *b = *(cJSON *const *)y;
    long ia = strtol(a->string, NULL, 10), ib = strtol(b->string, NULL, 10);
    return ia < ib ? -1 : ia > ib;
}

/* Objects whose keys are all indexes ("0", "1", ...) become arrays, recursively. */
static void fix_arrays(cJSON *node, int depth)
{
    if (depth > 12 || !node) return;
    for (cJSON *c = node->child; c; c = c->next) {
        fix_arrays(c, depth + 1);
        if (!all_numeric_keys(c)) continue;
        int n = cJSON_GetArraySize(c);
        cJSON **v = calloc((size_t)n, sizeof *v);
        if (!v) continue;
        int i = 0;
        for (cJSON *x = c->child; x && i < n; x = x->next)
            v[i++] = x;
        qsort(v, (size_t)i, sizeof *v, key_cmp);
        cJSON *arr = cJSON_CreateArray();
        for (int k = 0; k < i; k++)
            cJSON_AddItemToArray(arr, cJSON_DetachItemViaPointer(c, v[k]));
        free(v);
        if (cJSON_IsObject(node) && c->string) {
            char *k = xstrdup(c->string);
            if (!k) {
                cJSON_Delete(arr);
                continue;
            }
            cJSON_ReplaceItemInObjectCaseSensitive(node, k, arr);
            free(k);
        } else {
            cJSON_ReplaceItemViaPointer(node, c, arr);
        }
        c = arr;
    }
}

static int is_file_part(const sbx_part *p)
{
    return p->filename && p->name && starts_ci(p->name, "files");
}

static int parse_body(bs_ctx *c, cJSON **root, sbx_part **parts, size_t *nparts, int bad)
{
    *root = NULL;
    if (parts) {
        *parts = NULL;
        *nparts = 0;
    }
    const char *ct = c->req->content_type ? c->req->content_type : "";
    size_t len = c->req->body_len;
    if (len == 0) return 0;
    if (starts_ci(ct, "multipart/form-data")) {
        sbx_part *p = NULL;
        size_t n = 0;
        if (!parts) {
            fail(c, 415, "Unsupported content type '%.80s'.", ct);
            return -1;
        }
        if (sbx_parse_multipart(c->req->body, len, ct, &p, &n) < 0) {
            fail(c, bad, "The multipart/form-data body is malformed.");
            return -1;
        }
        cJSON *o = cJSON_CreateObject();
        for (size_t i = 0; o && i < n; i++) {
            if (is_file_part(&p[i]) || !p[i].name) continue;
            char *v = malloc(p[i].len + 1);
            if (!v) continue;
            memcpy(v, p[i].data, p[i].len);
            v[p[i].len] = '\0';
            form_put(o, p[i].name, v);
            free(v);
        }
        fix_arrays(o, 0);
        *root = o;
        *parts = p;
        *nparts = n;
        return 0;
    }
    if (starts_ci(ct, "application/x-www-form-urlencoded")) {
        sbx_kv *kv = NULL;
        size_t n = 0;
        if (!parts) {
            fail(c, 415, "Unsupported content type '%.80s'.", ct);
            return -1;
        }
        if (sbx_parse_form(c->req->body, len, &kv, &n) < 0) {
            fail(c, bad, "The form body is malformed.");
            return -1;
        }
        cJSON *o = cJSON_CreateObject();
        for (size_t i = 0; o && i < n; i++)
            if (kv[i].key && kv[i].val) form_put(o, kv[i].key, kv[i].val);
        sbx_kv_free(kv, n);
        fix_arrays(o, 0);
        *root = o;
        return 0;
    }
    if (!*ct || strcasestr(ct, "json") || starts_ci(ct, "text/plain")) {
        cJSON *j = cJSON_ParseWithLength(c->req->body, len);
        if (!j) {
            fail(c, bad, "The request body is not valid JSON.");
            return -1;
        }
        *root = j;
        return 0;
    }
    fail(c, 415, "Unsupported content type '%.80s'.", ct);
    return -1;
}

/* ---- PDF generation -------------------------------------------------------------------------- */

static void pdf_string(sb_buf *b, const char *s, size_t max)
{
    sb_buf_append(b, "(", 1);
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && n < max; p++, n++) {
        char ch = (char)*p;
        if (*p >= 0x80 || *p < 0x20) ch = '?';
        if (ch == '(' || ch == ')' || ch == '\\') sb_buf_append(b, "\\", 1);
        sb_buf_append(b, &ch, 1);
    }
    sb_buf_append(b, ")", 1);
}

/* A one-page PDF 1.4 with a heading and text lines; valid xref offsets. 0 or -1. */
static int make_pdf(sb_buf *out, const char *title, const char *const *lines, int n)
{
    sb_buf cs;
    sb_buf_init(&cs, 1 << 20);
    sb_buf_puts(&cs, "BT /F1 18 Tf 72 740 Td ");
    pdf_string(&cs, title, 90);
    sb_buf_puts(&cs, " Tj ET\nBT /F1 10 Tf 72 712 Td 14 TL\n");
    for (int i = 0; i < n && i < 46; i++) {
        pdf_string(&cs, lines[i] ? lines[i] : "", 110);
        sb_buf_puts(&cs, " Tj T*\n");
    }
    sb_buf_puts(&cs, "ET\n");
    size_t off[8];
    sb_buf_reset(out);
    sb_buf_puts(out, "%PDF-1.4\n%\xE2\xE3\xCF\xD3\n");
    off[1] = out->len;
    sb_buf_puts(out, "1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");
    off[2] = out->len;
    sb_buf_puts(out, "2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n");
    off[3] = out->len;
    sb_buf_puts(out, "3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources "
                     "<< /Font << /F1 4 0 R >> >> /Contents 5 0 R >>\nendobj\n");
    off[4] = out->len;
    sb_buf_puts(out, "4 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>\nendobj\n");
    off[5] = out->len;
    sb_buf_printf(out, "5 0 obj\n<< /Length %zu >>\nstream\n", cs.len);
    sb_buf_append(out, cs.data ? cs.data : "", cs.len);
    sb_buf_puts(out, "\nendstream\nendobj\n");
    off[6] = out->len;
    sb_buf_puts(out, "6 0 obj\n<< /Title ");
    pdf_string(out, title, 200);
    sb_buf_puts(out, " /Producer (signbridge-sandbox BoldSign emulator) >>\nendobj\n");
    size_t xref = out->len;
    sb_buf_puts(out, "xref\n0 7\n0000000000 65535 f \n");
    for (int i = 1; i <= 6; i++)
        sb_buf_printf(out, "%010zu 00000 n \n", off[i]);
    int rc = sb_buf_printf(
        out, "trailer\n<< /Size 7 /Root 1 0 R /Info 6 0 R >>\nstartxref\n%zu\n%%%%EOF\n", xref);
    sb_buf_free(&cs);
    return rc == 0 ? 0 : -1;
}

static void safe_filename(const char *s, const char *suffix, char *out, size_t cap)
{
    size_t o = 0;
    for (; s && *s && o + 1 + strlen(suffix) < cap && o < 80; s++) {
        unsigned char ch = (unsigned char)*s;
        out[o++] =
            (isalnum(ch) || ch == ' ' || ch == '-' || ch == '_' || ch == '.') ? (char)ch : '_';
    }
    if (o == 0) out[o++] = 'D';
    out[o] = '\0';
    strncat(out, suffix, cap - o - 1);
}

static void send_pdf(bs_ctx *c, const char *fname, const char *title, const char *const *lines,
                     int n)
{
    sb_buf b;
    sb_buf_init(&b, 4 << 20);
    if (make_pdf(&b, title, lines, n) < 0) {
        sb_buf_free(&b);
        fail(c, 500, "Unable to generate the PDF.");
        return;
    }
    sbx_resp_bytes(c->resp, 200, "application/pdf", b.data, b.len);
    sb_buf_free(&b);
    char cd[200];
    snprintf(cd, sizeof cd, "attachment; filename=\"%s\"", fname);
    sbx_resp_header(c->resp, "Content-Disposition", cd);
}

/* ---- documents: reads ------------------------------------------------------------------------ */

static const char *const doc_status_enum[] = {
    "None",     "WaitingForMe", "WaitingForOthers", "NeedAttention", "Completed",
    "Declined", "Revoked",      "Expired",          "Draft",         "Scheduled",
    NULL};

static const char *enum_ci(const char *v, const char *const *e)
{
    for (int i = 0; v && e[i]; i++)
        if (strcasecmp(v, e[i]) == 0) return e[i];
    return NULL;
}

#define BS_QMAX 64

typedef struct doc_filter {
    const char *status[BS_QMAX];
    size_t nstatus;
    const char *sentby[BS_QMAX];
    size_t nsentby;
    const char *recips[BS_QMAX];
    size_t nrecips;
    const char *labels[BS_QMAX];
    size_t nlabels;
    const char *brands[BS_QMAX];
    size_t nbrands;
    const char *users[BS_QMAX];
    size_t nusers;
    const char *teams[BS_QMAX];
    size_t nteams;
    const char *search;
    int transmit; /* 0 Both, 1 Sent, 2 Received */
    int expiring;
    int has_start, has_end, has_cursor;
    int64_t start, end, cursor;
    int team_mode;
} doc_filter;

static int qdate(bs_ctx *c, const char *name, int *has, int64_t *out)
{
    const char *v = qp(c, name);
    *has = 0;
    if (!v || !*v) return 0;
    if (parse_dt(v, out) != 0) {
        fail(c, 400, "The value '%.64s' is not valid for %s.", v, name);
        return -1;
    }
    *has = 1;
    return 0;
}

static int parse_doc_filter(bs_ctx *c, doc_filter *f, int team_mode)
{
    memset(f, 0, sizeof *f);
    f->team_mode = team_mode;
    const char *st[BS_QMAX];
    size_t n = qall(c, "Status", st, BS_QMAX);
    for (size_t i = 0; i < n; i++) {
        const char *e = enum_ci(st[i], doc_status_enum);
        if (!e) {
            fail(c, 400, "The value '%.64s' is not valid for Status.", st[i]);
            return -1;
        }
        f->status[f->nstatus++] = e;
    }
    f->nsentby = qall(c, "SentBy", f->sentby, BS_QMAX);
    f->nrecips = qall(c, "Recipients", f->recips, BS_QMAX);
    f->nlabels = qall(c, "Labels", f->labels, BS_QMAX);
    f->nbrands = qall(c, "BrandIds", f->brands, BS_QMAX);
    if (team_mode) {
        f->nusers = qall(c, "UserId", f->users, BS_QMAX);
        f->nteams = qall(c, "TeamId", f->teams, BS_QMAX);
    }
    f->search = qp(c, "SearchKey");
    if (f->search && !*f->search) f->search = NULL;
    const char *tt = qp(c, "TransmitType");
    if (tt && *tt) {
        static const char *const te[] = {"Both", "Sent", "Received", NULL};
        const char *e = enum_ci(tt, te);
        if (!e) {
            fail(c, 400, "The value '%.64s' is not valid for TransmitType.", tt);
            return -1;
        }
        f->transmit = e == te[0] ? 0 : e == te[1] ? 1 : 2;
    }
    const char *df = qp(c, "DateFilterType");
    if (df && *df) {
        static const char *const de[] = {"SentBetween", "Expiring", NULL};
        const char *e = enum_ci(df, de);
        if (!e) {
            fail(c, 400, "The value '%.64s' is not valid for DateFilterType.", df);
            return -1;
        }
        f->expiring = e == de[1];
    }
    if (qdate(c, "StartDate", &f->has_start, &f->start) < 0) return -1;
    if (qdate(c, "EndDate", &f->has_end, &f->end) < 0) return -1;
    const char *cur = qp(c, "NextCursor");
    if (cur && *cur) {
        if (sb_parse_i64(cur, 0, INT64_MAX, &f->cursor) != 0) {
            fail(c, 400, "The value '%.64s' is not valid for NextCursor.", cur);
            return -1;
        }
        f->has_cursor = f->cursor > 0;
    }
    return 0;
}

static int in_list_ci(const char *v, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v && strcasecmp(v, list[i]) == 0) return 1;
    return 0;
}

static int status_matches(const bs_ctx *c, const bs_doc *d, const char *want)
{
    const char *me = c->a->users[c->me].email;
    if (strcmp(want, "None") == 0) return 1;
    int inprog = strcmp(d->status, "InProgress") == 0;
    if (strcmp(want, "WaitingForMe") == 0) {
        if (!inprog) return 0;
        for (int i = 0; i < d->nsigners; i++)
            if (d->signers[i].email && strcasecmp(d->signers[i].email, me) == 0 &&
                signer_turn(d, i))
                return 1;
        return 0;
    }
    if (strcmp(want, "WaitingForOthers") == 0) {
        if (!inprog) return 0;
        for (int i = 0; i < d->nsigners; i++)
            if (strcmp(d->signers[i].status, "NotCompleted") == 0 &&
                (!d->signers[i].email || strcasecmp(d->signers[i].email, me) != 0))
                return 1;
        return 0;
    }
    if (strcmp(want, "NeedAttention") == 0) {
        if (!inprog) return 0;
        if (d->expiry - c->now < 3 * 86400) return 1;
        for (int i = 0; i < d->nsigners; i++)
            if (d->signers[i].delivery_failed) return 1;
        return 0;
    }
    return strcmp(d->status, want) == 0;
}

static int doc_visible(const bs_ctx *c, const bs_doc *d)
{
    return !(d->ready_ms && d->ready_ms > c->now_ms);
}

static int doc_matches(const bs_ctx *c, const bs_doc *d, const doc_filter *f)
{
    if (d->deleted || !doc_visible(c, d)) return 0;
    const bs_account *a = c->a;
    const bs_user *me = &a->users[c->me];
    int sent = d->sender == c->me;
    int recv = (d->user_mask >> c->me) & 1;
    if (strcmp(d->status, "Draft") == 0 && !sent) return 0;
    if (!f->team_mode) {
        if (f->transmit == 1 && !sent) return 0;
        if (f->transmit == 2 && !recv) return 0;
        if (f->transmit == 0 && !sent && !recv) return 0;
    } else {
        if (me->role == 1 && a->users[d->sender].team != me->team) return 0;
        if (f->nusers && !in_list_ci(a->users[d->sender].id, f->users, f->nusers)) return 0;
        if (f->nteams && !in_list_ci(a->teams[a->users[d->sender].team].id, f->teams, f->nteams))
            return 0;
    }
    if (f->nstatus) {
        int ok = 0;
        for (size_t i = 0; i < f->nstatus && !ok; i++)
            ok = status_matches(c, d, f->status[i]);
        if (!ok) return 0;
    }
    if (f->nsentby && !in_list_ci(a->users[d->sender].email, f->sentby, f->nsentby)) return 0;
    if (f->nrecips) {
        int ok = 0;
        for (int i = 0; i < d->nsigners && !ok; i++)
            ok = in_list_ci(d->signers[i].email, f->recips, f->nrecips);
        if (!ok) return 0;
    }
    if (f->nlabels) {
        int ok = 0;
        for (int i = 0; i < d->nlabels && !ok; i++)
            ok = in_list_ci(d->labels[i], f->labels, f->nlabels);
        if (!ok) return 0;
    }
    if (f->nbrands && !in_list_ci(d->brand_id, f->brands, f->nbrands)) return 0;
    int64_t t = f->expiring ? d->expiry : d->created;
    if (f->has_start && t < f->start) return 0;
    if (f->has_end && t > f->end) return 0;
    if (f->has_cursor && d->activity >= f->cursor) return 0;
    if (f->search) {
        const char *s = f->search;
        char snm[80];
        user_full_name(&a->users[d->sender], snm, sizeof snm);
        int ok = strcasestr(d->title ? d->title : "", s) || strcasestr(d->id, s) ||
                 strcasestr(snm, s) || strcasestr(a->users[d->sender].email, s);
        for (int i = 0; i < d->nsigners && !ok; i++)
            ok = (d->signers[i].name && strcasestr(d->signers[i].name, s)) ||
                 (d->signers[i].email && strcasestr(d->signers[i].email, s));
        if (!ok) return 0;
    }
    return 1;
}

static void page_details(sb_buf *b, int size, int page, int total, int full)
{
    if (full)
        sb_buf_printf(b,
                      "\"pageDetails\":{\"pageSize\":%d,\"page\":%d,\"totalRecordsCount\":%d,"
                      "\"totalPages\":%d,\"sortedColumn\":null,\"sortDirection\":null}",
                      size, page, total, total_pages(total, size));
    else
        sb_buf_printf(b, "\"pageDetails\":{\"pageSize\":%d,\"page\":%d}", size, page);
}

static void h_doc_list_common(bs_ctx *c, int team_mode)
{
    int page, size;
    doc_filter f;
    if (paging(c, &page, &size) < 0 || parse_doc_filter(c, &f, team_mode) < 0) return;
    if (team_mode && c->a->users[c->me].role == 2) {
        fail(c, 403,
             "Unauthorized request: only account admins and team admins can list team "
             "documents.");
        return;
    }
    /* one pass: count every match, keep the page's window (at most 100) */
    const bs_doc *win[100];
    int total = 0, nwin = 0;
    int64_t first = (int64_t)(page - 1) * size;
    for (int i = 0; i < c->a->ndocs; i++) {
        const bs_doc *d = c->a->docs[i];
        if (!doc_matches(c, d, &f)) continue;
        if (total >= first && nwin < size) win[nwin++] = d;
        total++;
    }
    /* written straight into the response buffer: list items are pre-rendered */
    sb_buf *b = &c->resp->body;
    sb_buf_reset(b);
    size_t need = 512; /* the page details and brackets; then the items, sized at once */
    for (int i = 0; i < nwin; i++) need += (win[i]->list_json ? win[i]->list_len : 2048) + 1;
    sb_buf_reserve(b, need);
    sb_buf_append(b, "{", 1);
    page_details(b, size, page, total, 1);
    sb_buf_puts(b, ",\"result\":[");
    for (int i = 0; i < nwin; i++) {
        if (i) sb_buf_append(b, ",", 1);
        if (win[i]->list_json && !win[i]->dirty) {
            sb_buf_append(b, win[i]->list_json, win[i]->list_len);
        } else { /* changed by the timer and not re-rendered yet */
            cJSON *j = doc_list_json(c->a, win[i]);
            char *js = j ? cJSON_PrintUnformatted(j) : NULL;
            cJSON_Delete(j);
            if (js)
                sb_buf_puts(b, js);
            else
                sb_buf_printf(b, "{\"documentId\":\"%s\"}", win[i]->id);
            free(js);
        }
    }
    sb_buf_puts(b, "]}");
    c->resp->status = 200;
    sb_strlcpy(c->resp->content_type, "application/json; charset=utf-8",
               sizeof c->resp->content_type);
}

static void h_doc_list(bs_ctx *c)
{
    h_doc_list_common(c, 0);
}

static void h_doc_teamlist(bs_ctx *c)
{
    h_doc_list_common(c, 1);
}

/* The document named by query parameter `param` (403 "Invalid Document ID" when unknown, of
 * another account, or still being processed after a send). */
static bs_doc *doc_param(bs_ctx *c, const char *param)
{
    const char *id = qp(c, param);
    if (!id || !*id) {
        fail(c, 400, "The %s field is required.", param);
        return NULL;
    }
    bs_doc *d = find_doc(c->a, id);
    if (!d || !doc_visible(c, d)) {
        fail(c, 403, "Invalid Document ID");
        return NULL;
    }
    return d;
}

static void h_doc_props(bs_ctx *c)
{
    bs_doc *d = doc_param(c, "documentId");
    if (!d) return;
    sbx_resp_json(c->resp, 200, doc_props_json(c->a, d));
}

static void h_doc_download(bs_ctx *c)
{
    bs_doc *d = doc_param(c, "documentId");
    if (!d) return;
    char lines[64][160];
    const char *lp[64];
    int n = 0;
    char snm[80], when[40];
    sender_name(c->a, d, snm, sizeof snm);
    snprintf(lines[n++], 160, "Document ID: %s", d->id);
    snprintf(lines[n++], 160, "Status: %s", d->status);
    snprintf(lines[n++], 160, "Sent by: %.60s <%.80s>", snm, c->a->users[d->sender].email);
    fmt_dt(d->created, when, sizeof when);
    snprintf(lines[n++], 160, "Created: %s", when);
    snprintf(lines[n++], 160, "Message: %.120s", d->message ? d->message : "");
    snprintf(lines[n++], 160, "Files: %d", d->nfiles);
    lines[n++][0] = '\0';
    snprintf(lines[n++], 160, "Signers:");
    for (int i = 0; i < d->nsigners && n < 60; i++)
        snprintf(lines[n++], 160, "  %d. %.60s <%.60s> - %s", d->signers[i].order,
                 d->signers[i].name ? d->signers[i].name : "",
                 d->signers[i].email ? d->signers[i].email : "", d->signers[i].status);
    for (int i = 0; i < n; i++)
        lp[i] = lines[i];
    char fn[128];
    safe_filename(d->title, ".pdf", fn, sizeof fn);
    send_pdf(c, fn, d->title ? d->title : "Document", lp, n);
    char nm[80];
    user_full_name(&c->a->users[c->me], nm, sizeof nm);
    hist_add(d, &c->st->rt, "Downloaded", nm, c->a->users[c->me].email, NULL, NULL, c->now);
}

static void h_doc_auditlog(bs_ctx *c)
{
    bs_doc *d = doc_param(c, "documentId");
    if (!d) return;
    char lines[50][320];
    const char *lp[50];
    int n = 0;
    snprintf(lines[n++], 320, "Document: %.100s", d->title ? d->title : "");
    snprintf(lines[n++], 320, "Document ID: %s   Status: %s", d->id, d->status);
    lines[n++][0] = '\0';
    int start = d->nhist > 44 ? d->nhist - 44 : 0;
    for (int i = start; i < d->nhist && n < 48; i++) {
        char when[40];
        fmt_dt(d->hist[i].ts, when, sizeof when);
        snprintf(lines[n++], 320, "%s  %-12s %.50s <%.60s>%s%.60s  IP %s", when, d->hist[i].action,
                 d->hist[i].name ? d->hist[i].name : "", d->hist[i].email ? d->hist[i].email : "",
                 d->hist[i].to_email ? " -> " : "", d->hist[i].to_email ? d->hist[i].to_email : "",
                 d->hist[i].ip);
    }
    for (int i = 0; i < n; i++)
        lp[i] = lines[i];
    char fn[128];
    safe_filename(d->title, " - Audit Trail.pdf", fn, sizeof fn);
    send_pdf(c, fn, "Audit Trail", lp, n);
    char nm[80];
    user_full_name(&c->a->users[c->me], nm, sizeof nm);
    hist_add(d, &c->st->rt, "DownloadedAuditTrail", nm, c->a->users[c->me].email, NULL, NULL,
             c->now);
}

static int url_ok(const char *u)
{
    if (!u) return 0;
    size_t n = strlen(u);
    if (n > 2048) return 0;
    const char *h = NULL;
    if (strncasecmp(u, "https://", 8) == 0)
        h = u + 8;
    else if (strncasecmp(u, "http://", 7) == 0)
        h = u + 7;
    if (!h || !*h || *h == '/') return 0;
    for (const char *p = u; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '"' || *p == '<' || *p == '>') return 0;
    return 1;
}

static void url_encode(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; s && *s && o + 4 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = '\0';
}

static void h_doc_signlink(bs_ctx *c)
{
    bs_doc *d = doc_param(c, "DocumentId");
    if (!d) return;
    const char *email = qp(c, "SignerEmail");
    const char *ccode = qp(c, "CountryCode");
    const char *phone = qp(c, "PhoneNumber");
    const char *till = qp(c, "SignLinkValidTill");
    const char *redirect = qp(c, "RedirectUrl");
    if ((!email || !*email) && (!phone || !*phone)) {
        fail(c, 400, "The SignerEmail field is required.");
        return;
    }
    if (strcmp(d->status, "InProgress") != 0) {
        fail(c, 400,
             "Signing links are only available for in-progress documents; this document "
             "is %s.",
             d->status);
        return;
    }
    int si = -1;
    for (int i = 0; i < d->nsigners && si < 0; i++) {
        const bs_signer *g = &d->signers[i];
        if (email && *email && g->email && strcasecmp(g->email, email) == 0) si = i;
        if ((!email || !*email) && phone && strcmp(g->phone, phone) == 0 &&
            (!ccode || !*ccode || strcmp(g->cc_code, ccode) == 0))
            si = i;
    }
    if (si < 0) {
        fail(c, 400, "The signer '%.100s' is not a recipient of this document.",
             email && *email ? email : phone);
        return;
    }
    bs_signer *g = &d->signers[si];
    if (strcmp(g->status, "NotCompleted") != 0) {
        fail(c, 400, "The signer has already %s the document.",
             strcmp(g->status, "Declined") == 0 ? "declined" : "signed");
        return;
    }
    if (!signer_turn(d, si)) {
        fail(c, 400, "It is not this signer's turn to sign: the document uses a signing order.");
        return;
    }
    if (till && *till) {
        int64_t t;
        if (parse_dt(till, &t) != 0) {
            fail(c, 400, "The value '%.64s' is not valid for SignLinkValidTill.", till);
            return;
        }
        if (t <= c->now || t > c->now + 30 * 86400) {
            fail(c, 400, "SignLinkValidTill must be in the future and within 30 days.");
            return;
        }
    }
    if (redirect && *redirect && !url_ok(redirect)) {
        fail(c, 400, "The value '%.64s' is not valid for RedirectUrl.", redirect);
        return;
    }
    char base[256], link[700], tok[48];
    sbx_base_url(c->s, "boldsign", bs_regions[c->region], NULL, base, sizeof base);
    sbx_rng_hex(&c->st->rt, 12, tok);
    snprintf(link, sizeof link, "%s/app/document/sign?documentId=%s&signerId=%s&t=%s", base, d->id,
             g->id, tok);
    char nm[80];
    sender_name(c->a, d, nm, sizeof nm);
    hist_add(d, &c->st->rt, "GeneratedEmbeddedSignLink", nm, c->a->users[d->sender].email, g->name,
             g->email, c->now);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "signLink", link);
    sbx_resp_json(c->resp, 200, o);
}

/* ---- documents: sending ---------------------------------------------------------------------- */

static const char *const field_types[] = {
    "Signature",   "Initial", "CheckBox",   "TextBox",      "Label",     "DateSigned",
    "RadioButton", "Image",   "Attachment", "EditableDate", "Hyperlink", "Dropdown",
    "Title",       "Company", "Formula",    "Drawing",      NULL};
static const char *const signer_types[] = {"Signer", "Reviewer", "InPersonSigner", NULL};
static const char *const auth_types[] = {"None",   "EmailOTP",       "AccessCode",
                                         "SMSOTP", "IdVerification", NULL};
static const char *const delivery_modes[] = {"Email", "SMS", "EmailAndSMS", "WhatsApp", NULL};
static const char *const expiry_types[] = {"Days", "Hours", "SpecificDateTime", NULL};
static const char *const dl_options[] = {"Combined", "Individually", NULL};

/* Typed, validated property readers. Each returns -1 after writing the error (status st),
 * 0 when absent, 1 when present. `path` prefixes the property name in messages. */
static int rd_str(bs_ctx *c, int st, const cJSON *o, const char *path, const char *k, size_t max,
                  const char **out)
{
    int r = jstr(o, k, out);
    if (r < 0 || (r > 0 && !text_ok(*out, max))) {
        if (r > 0 && strlen(*out) > max)
            fail(c, st, "%s%s must be at most %zu characters long.", path, k, max);
        else
            fail(c, st, "The value of %s%s is not a valid string.", path, k);
        return -1;
    }
    return r;
}

static int rd_bool(bs_ctx *c, int st, const cJSON *o, const char *path, const char *k, int *out)
{
    int r = jbool(o, k, out);
    if (r < 0) {
        fail(c, st, "The value of %s%s is not a valid boolean.", path, k);
        return -1;
    }
    return r;
}

static int rd_int(bs_ctx *c, int st, const cJSON *o, const char *path, const char *k, int64_t lo,
                  int64_t hi, int64_t *out)
{
    int r = jint(o, k, out);
    if (r < 0) {
        fail(c, st, "The value of %s%s is not a valid integer.", path, k);
        return -1;
    }
    if (r > 0 && (*out < lo || *out > hi)) {
        fail(c, st, "%s%s must be between %lld and %lld.", path, k, (long long)lo, (long long)hi);
        return -1;
    }
    return r;
}

static int rd_enum(bs_ctx *c, int st, const cJSON *o, const char *path, const char *k,
                   const char *const *e, const char **out)
{
    const char *v;
    int r = jstr(o, k, &v);
    if (r == 0) return 0;
    if (r < 0 || !(*out = enum_ci(v, e))) {
        fail(c, st, "The value '%.40s' is not valid for %s%s.", r > 0 ? v : "", path, k);
        return -1;
    }
    return 1;
}

static int rd_phone(bs_ctx *c, int st, const cJSON *o, const char *path, const char *k, char *cc,
                    size_t cccap, char *num, size_t numcap)
{
    const cJSON *p = jget(o, k);
    if (!p || cJSON_IsNull(p)) return 0;
    const char *a, *b;
    if (!cJSON_IsObject(p) || jstr(p, "countryCode", &a) <= 0 || jstr(p, "number", &b) <= 0) {
        fail(c, st, "%s%s requires countryCode and number.", path, k);
        return -1;
    }
    size_t al = strlen(a), bl = strlen(b);
    int ok = al >= 1 && al < cccap && al <= 5 && bl >= 4 && bl < numcap && bl <= 15;
    for (size_t i = 0; ok && i < al; i++)
        ok = isdigit((unsigned char)a[i]) || (i == 0 && a[i] == '+');
    for (size_t i = 0; ok && i < bl; i++)
        ok = isdigit((unsigned char)b[i]);
    if (!ok) {
        fail(c, st, "%s%s is not a valid phone number.", path, k);
        return -1;
    }
    snprintf(cc, cccap, "%s%s", a[0] == '+' ? "" : "+", a);
    snprintf(num, numcap, "%s", b);
    return 1;
}

static int add_file(bs_doc *d, sbx_rng *r, const char *name, int pages, int tpl)
{
    bs_file *n = realloc(d->files, (size_t)(d->nfiles + 1) * sizeof *n);
    if (!n) return -1;
    d->files = n;
    bs_file *f = &d->files[d->nfiles];
    memset(f, 0, sizeof *f);
    sbx_rng_uuid(r, f->id);
    f->name = xstrdup(name);
    f->pages = pages;
    f->tpl = tpl;
    d->nfiles++;
    return 0;
}

static int pdf_pages(const unsigned char *p, size_t n)
{
    int count = 0;
    for (size_t i = 0; i + 10 < n; i++) {
        if (p[i] != '/' || memcmp(p + i, "/Type", 5) != 0) continue;
        size_t j = i + 5;
        while (j < n && (p[j] == ' ' || p[j] == '\r' || p[j] == '\n' || p[j] == '\t'))
            j++;
        if (j + 5 <= n && memcmp(p + j, "/Page", 5) == 0 && (j + 5 == n || p[j + 5] != 's'))
            count++;
    }
    return count ? count : 1;
}

static const char *ext_for_mime(const char *m, size_t n)
{
    static const struct {
        const char *mime, *ext;
    } M[] = {
        {"application/pdf", ".pdf"},
        {"image/png", ".png"},
        {"image/jpeg", ".jpg"},
        {"image/jpg", ".jpg"},
        {"application/msword", ".doc"},
        {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", ".docx"},
        {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx"},
        {"application/vnd.openxmlformats-officedocument.presentationml.presentation", ".pptx"}};
    for (size_t i = 0; i < sizeof M / sizeof M[0]; i++)
        if (strlen(M[i].mime) == n && strncasecmp(m, M[i].mime, n) == 0) return M[i].ext;
    return NULL;
}

static const char *ext_ok(const char *name)
{
    static const char *const E[] = {".pdf",  ".png",  ".jpg",  ".jpeg", ".doc",
                                    ".docx", ".xlsx", ".pptx", NULL};
    const char *dot = name ? strrchr(name, '.') : NULL;
    return dot ? enum_ci(dot, E) : NULL;
}

/* Check one file's bytes; 0, or -1 with the error written. Adds the file to d. */
static int take_file(bs_ctx *c, int st, bs_doc *d, const char *name, const unsigned char *data,
                     size_t n, int *pages_total)
{
    const char *ext = ext_ok(name);
    if (!ext) {
        fail(c, st,
             "The file '%.80s' has an unsupported type; use PDF, PNG, JPG, DOCX, XLSX or "
             "PPTX.",
             name);
        return -1;
    }
    if (n == 0) {
        fail(c, st, "The file '%.80s' is empty.", name);
        return -1;
    }
    if (n > 25u * 1024 * 1024) {
        fail(c, st, "The file '%.80s' exceeds the 25 MB limit.", name);
        return -1;
    }
    int pages = 1;
    if (strcasecmp(ext, ".pdf") == 0) {
        if (n < 5 || memcmp(data, "%PDF-", 5) != 0) {
            fail(c, 422, "The file '%.80s' is not a valid PDF document.", name);
            return -1;
        }
        pages = pdf_pages(data, n);
        if (pages > 1000) {
            fail(c, st, "The file '%.80s' exceeds the 1000 page limit.", name);
            return -1;
        }
    }
    *pages_total += pages;
    if (add_file(d, &c->st->rt, name, pages, -1) < 0) {
        fail(c, 500, "Out of memory.");
        return -1;
    }
    return 0;
}

static int take_b64_file(bs_ctx *c, int st, bs_doc *d, int idx, const char *s, const char *fname,
                         int *pages_total)
{
    const char *b64 = s;
    char name[128];
    const char *ext = NULL;
    if (strncasecmp(s, "data:", 5) == 0) {
        const char *comma = strchr(s, ',');
        const char *semi = comma ? memchr(s, ';', (size_t)(comma - s)) : NULL;
        if (!comma || !semi || strncasecmp(semi, ";base64,", 8) != 0) {
            fail(c, st,
                 "Files[%d] must be a base64 data URI such as "
                 "data:application/pdf;base64,JVBERi0...",
                 idx);
            return -1;
        }
        ext = ext_for_mime(s + 5, (size_t)(semi - s - 5));
        if (!ext) {
            fail(c, st, "Files[%d] has an unsupported content type '%.*s'.", idx,
                 (int)((semi - s - 5) > 80 ? 80 : (semi - s - 5)), s + 5);
            return -1;
        }
        b64 = comma + 1;
    } else if (!fname) {
        fail(c, st, "Files[%d] must be a base64 data URI such as data:application/pdf;base64,...",
             idx);
        return -1;
    }
    if (fname && *fname)
        snprintf(name, sizeof name, "%.100s", fname);
    else
        snprintf(name, sizeof name, "Document%d%s", idx + 1, ext ? ext : ".pdf");
    size_t bl = strlen(b64);
    if (bl > 36u * 1024 * 1024) {
        fail(c, st, "Files[%d] exceeds the 25 MB limit.", idx);
        return -1;
    }
    unsigned char *buf = malloc(bl / 4 * 3 + 4);
    if (!buf) {
        fail(c, 500, "Out of memory.");
        return -1;
    }
    long n = sb_base64_decode(b64, bl, buf, bl / 4 * 3 + 4);
    if (n < 0) {
        free(buf);
        fail(c, st, "Files[%d] is not valid base64.", idx);
        return -1;
    }
    int rc = take_file(c, st, d, name, buf, (size_t)n, pages_total);
    free(buf);
    return rc;
}

/* files (JSON data URIs or {base64,fileName}), multipart `Files` parts and fileUrls. */
static int send_files(bs_ctx *c, int st, const cJSON *b, sbx_part *parts, size_t nparts, bs_doc *d,
                      int *pages_total, int *have_urls)
{
    const cJSON *files = jget(b, "files");
    const cJSON *urls = jget(b, "fileUrls");
    int nf = 0, nu = 0;
    if (files && !cJSON_IsNull(files) && !cJSON_IsArray(files)) {
        fail(c, st, "The value of files is not valid: an array is expected.");
        return -1;
    }
    if (urls && !cJSON_IsNull(urls) && !cJSON_IsArray(urls)) {
        fail(c, st, "The value of fileUrls is not valid: an array of URLs is expected.");
        return -1;
    }
    nf = cJSON_GetArraySize(files);
    nu = cJSON_GetArraySize(urls);
    size_t nparts_files = 0;
    for (size_t i = 0; i < nparts; i++)
        nparts_files += is_file_part(&parts[i]);
    if ((nf || nparts_files) && nu) {
        fail(c, st, "Files and FileUrls cannot be used together; provide one of them.");
        return -1;
    }
    if ((size_t)nf + nparts_files + (size_t)nu + (size_t)d->nfiles > BS_MAX_FILES) {
        fail(c, st, "A document can have at most %d files.", BS_MAX_FILES);
        return -1;
    }
    int idx = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, files)
    {
        if (cJSON_IsString(it)) {
            if (take_b64_file(c, st, d, idx, it->valuestring, NULL, pages_total) < 0) return -1;
        } else if (cJSON_IsObject(it)) {
            const char *b64, *fn;
            if (jstr(it, "base64", &b64) <= 0) {
                fail(c, st, "Files[%d].base64 is required.", idx);
                return -1;
            }
            if (jstr(it, "fileName", &fn) < 0) fn = NULL;
            if (fn && !text_ok(fn, 250)) {
                fail(c, st, "Files[%d].fileName is not valid.", idx);
                return -1;
            }
            if (take_b64_file(c, st, d, idx, b64, fn, pages_total) < 0) return -1;
        } else {
            fail(c, st, "Files[%d] must be a base64 data URI.", idx);
            return -1;
        }
        idx++;
    }
    for (size_t i = 0; i < nparts; i++) {
        if (!is_file_part(&parts[i])) continue;
        const char *fn = parts[i].filename;
        const char *slash = strrchr(fn, '/');
        if (slash) fn = slash + 1;
        slash = strrchr(fn, '\\');
        if (slash) fn = slash + 1;
        char name[128];
        snprintf(name, sizeof name, "%.100s", *fn ? fn : "Document.pdf");
        if (!sb_utf8_valid(name, strlen(name))) snprintf(name, sizeof name, "Document%zu.pdf", i);
        if (!ext_ok(name) && parts[i].content_type) {
            const char *ct = parts[i].content_type;
            const char *e = ext_for_mime(ct, strcspn(ct, "; "));
            if (e) strncat(name, e, sizeof name - strlen(name) - 1);
        }
        if (take_file(c, st, d, name, (const unsigned char *)parts[i].data, parts[i].len,
                      pages_total) < 0)
            return -1;
    }
    idx = 0;
    cJSON_ArrayForEach(it, urls)
    {
        if (!cJSON_IsString(it) || !url_ok(it->valuestring)) {
            fail(c, st, "FileUrls[%d] is not a valid absolute http(s) URL.", idx);
            return -1;
        }
        const char *u = it->valuestring;
        const char *q = u + strcspn(u, "?#");
        const char *s = q;
        while (s > u && s[-1] != '/')
            s--;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(q - s > 100 ? 100 : q - s), s);
        if (!ext_ok(name)) snprintf(name, sizeof name, "Document%d.pdf", idx + 1);
        if (add_file(d, &c->st->rt, name, 1, -1) < 0) {
            fail(c, 500, "Out of memory.");
            return -1;
        }
        *have_urls = 1;
        idx++;
    }
    return 0;
}

/* Signer options shared by document signers and template roles. */
static int signer_opts(bs_ctx *c, int st, const cJSON *j, const char *path, bs_signer *g)
{
    const char *v;
    int64_t n;
    int b = 0;
    if (rd_enum(c, st, j, path, "signerType", signer_types, &g->stype) < 0) return -1;
    if (rd_enum(c, st, j, path, "authenticationType", auth_types, &g->auth) < 0) return -1;
    int r = rd_bool(c, st, j, path, "enableEmailOTP", &b);
    if (r < 0) return -1;
    if (r > 0 && b) g->auth = "EmailOTP";
    if (rd_enum(c, st, j, path, "deliveryMode", delivery_modes, &g->delivery) < 0) return -1;
    if (rd_str(c, st, j, path, "privateMessage", 5000, &v) < 0) return -1;
    if (v) set_str(&g->pmsg, v);
    if (rd_str(c, st, j, path, "signerRole", 256, &v) < 0) return -1;
    if (v) set_str(&g->role, v);
    if ((r = rd_str(c, st, j, path, "authenticationCode", 50, &v)) < 0) return -1;
    if (strcmp(g->auth, "AccessCode") == 0 && (r == 0 || is_blank(v))) {
        fail(c, st, "%sAuthenticationCode is required when the authentication type is AccessCode.",
             path);
        return -1;
    }
    if (rd_phone(c, st, j, path, "phoneNumber", g->cc_code, sizeof g->cc_code, g->phone,
                 sizeof g->phone) < 0)
        return -1;
    if ((strcmp(g->delivery, "Email") != 0 || strcmp(g->auth, "SMSOTP") == 0) && !g->phone[0]) {
        fail(c, st, "%sPhoneNumber is required for delivery mode %s%s.", path, g->delivery,
             strcmp(g->auth, "SMSOTP") == 0 ? " / SMS OTP" : "");
        return -1;
    }
    if ((r = rd_str(c, st, j, path, "hostEmail", 254, &v)) < 0) return -1;
    if (strcmp(g->stype, "InPersonSigner") == 0) {
        if (!v || !email_ok(v)) {
            fail(c, st, "%sHostEmail is required for an in-person signer.", path);
            return -1;
        }
        set_str(&g->host_email, v);
    }
    if ((r = rd_int(c, st, j, path, "signerOrder", 1, 50, &n)) < 0) return -1;
    if (r > 0) g->order = (int)n;
    return 0;
}

static int signer_fields(bs_ctx *c, int st, const cJSON *j, const char *path, bs_signer *g,
                         int pages_known, int *seq)
{
    const cJSON *ff = jget(j, "formFields");
    if (!ff || cJSON_IsNull(ff)) return 0;
    if (!cJSON_IsArray(ff)) {
        fail(c, st, "%sFormFields must be an array.", path);
        return -1;
    }
    int n = cJSON_GetArraySize(ff);
    if (n + g->nfields > BS_MAX_FIELDS) {
        fail(c, st, "%sFormFields: at most %d fields per signer.", path, BS_MAX_FIELDS);
        return -1;
    }
    if (n == 0) return 0;
    bs_field *nf = realloc(g->fields, (size_t)(g->nfields + n) * sizeof *nf);
    if (!nf) {
        fail(c, 500, "Out of memory.");
        return -1;
    }
    g->fields = nf;
    int k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, ff)
    {
        char fp[96];
        snprintf(fp, sizeof fp, "%sFormFields[%d].", path, k++);
        if (!cJSON_IsObject(it)) {
            fail(c, st, "%.90s is not an object.", fp);
            return -1;
        }
        bs_field f;
        memset(&f, 0, sizeof f);
        const char *ft = NULL, *id = NULL, *val = NULL;
        int64_t page;
        if (rd_enum(c, st, it, fp, "fieldType", field_types, &ft) < 0) return -1;
        if (!ft) {
            fail(c, st, "The %sFieldType field is required.", fp);
            return -1;
        }
        int r = rd_int(c, st, it, fp, "pageNumber", 1, 1000, &page);
        if (r < 0) return -1;
        if (r == 0) {
            fail(c, st, "The %sPageNumber field is required.", fp);
            return -1;
        }
        if (pages_known > 0 && page > pages_known) {
            fail(c, st, "%sPageNumber %lld exceeds the document's page count (%d).", fp,
                 (long long)page, pages_known);
            return -1;
        }
        const cJSON *bd = jget(it, "bounds");
        if (!cJSON_IsObject(bd)) {
            fail(c, st, "The %sBounds field is required.", fp);
            return -1;
        }
        f.x = jnum_or(bd, "x", -1);
        f.y = jnum_or(bd, "y", -1);
        f.w = jnum_or(bd, "width", 0);
        f.h = jnum_or(bd, "height", 0);
        if (f.x < 0 || f.y < 0 || f.w < 1 || f.h < 1 || f.x > 100000 || f.y > 100000 ||
            f.w > 100000 || f.h > 100000) {
            fail(c, st, "%sBounds: x and y must be >= 0, width and height >= 1.", fp);
            return -1;
        }
        if (rd_str(c, st, it, fp, "id", 60, &id) < 0 ||
            rd_str(c, st, it, fp, "value", 2000, &val) < 0)
            return -1;
        int req = 1, ro = 0;
        if (rd_bool(c, st, it, fp, "isRequired", &req) < 0 ||
            rd_bool(c, st, it, fp, "isReadOnly", &ro) < 0)
            return -1;
        snprintf(f.ftype, sizeof f.ftype, "%s", ft);
        if (id && *id)
            snprintf(f.id, sizeof f.id, "%s", id);
        else
            snprintf(f.id, sizeof f.id, "%s%d", ft, ++*seq);
        f.page = (int)page;
        f.required = req;
        f.readonly = ro;
        f.value = xstrdup(val);
        g->fields[g->nfields++] = f;
    }
    return 0;
}

static int signer_init(bs_signer *g, sbx_rng *r, int order)
{
    memset(g, 0, sizeof *g);
    sbx_rng_uuid(r, g->id);
    g->status = "NotCompleted";
    g->stype = "Signer";
    g->auth = "None";
    g->delivery = "Email";
    g->order = order;
    return 0;
}

static int need_contact(bs_ctx *c, int st, const char *path, const bs_signer *g)
{
    if (!g->name || is_blank(g->name)) {
        fail(c, st, "The %sName field is required.", path);
        return -1;
    }
    int needs_email = strcmp(g->delivery, "SMS") != 0 && strcmp(g->delivery, "WhatsApp") != 0;
    if (needs_email && !g->email) {
        fail(c, st, "The %sEmailAddress field is required.", path);
        return -1;
    }
    if (g->email && !email_ok(g->email)) {
        fail(c, st, "%sEmailAddress '%.80s' is not a valid email address.", path, g->email);
        return -1;
    }
    return 0;
}

/* Options common to both send forms; d already carries defaults. */
static int send_options(bs_ctx *c, int st, const cJSON *b, bs_doc *d, const bs_template *tp)
{
    const char *v;
    int64_t n;
    int r, bv;
    if ((r = rd_str(c, st, b, "", "title", 256, &v)) < 0) return -1;
    if (r > 0 && !is_blank(v))
        set_str(&d->title, v);
    else if (!tp) {
        fail(c, st, "The Title field is required.");
        return -1;
    }
    if ((r = rd_str(c, st, b, "", "message", 5000, &v)) < 0) return -1;
    if (r > 0) set_str(&d->message, v);
    if (rd_bool(c, st, b, "", "enableSigningOrder", &d->signing_order) < 0 ||
        rd_bool(c, st, b, "", "disableEmails", &d->disable_emails) < 0 ||
        rd_bool(c, st, b, "", "disableSMS", &bv) < 0 ||
        rd_bool(c, st, b, "", "hideDocumentId", &d->hide_id) < 0 ||
        rd_bool(c, st, b, "", "enablePrintAndSign", &d->print_sign) < 0 ||
        rd_bool(c, st, b, "", "enableReassign", &d->reassign) < 0 ||
        rd_bool(c, st, b, "", "disableExpiryAlert", &d->no_expiry_alert) < 0 ||
        rd_bool(c, st, b, "", "useTextTags", &bv) < 0 ||
        rd_bool(c, st, b, "", "AutoDetectFields", &bv) < 0 ||
        rd_bool(c, st, b, "", "enableEmbeddedSigning", &bv) < 0 ||
        rd_bool(c, st, b, "", "allowScheduledSend", &bv) < 0 ||
        rd_bool(c, st, b, "", "isSandbox", &bv) < 0)
        return -1;
    if (rd_enum(c, st, b, "", "documentDownloadOption", dl_options, &d->dl_option) < 0) return -1;
    /* expiry */
    const char *et = "Days";
    if (rd_enum(c, st, b, "", "expiryDateType", expiry_types, &et) < 0) return -1;
    int64_t days = 60, val = 0;
    int has_val;
    if (rd_int(c, st, b, "", "expiryDays", 1, 180, &days) < 0) return -1;
    if ((has_val = rd_int(c, st, b, "", "expiryValue", 1, INT64_MAX / 2, &val)) < 0) return -1;
    d->expiry_type = et;
    int64_t from = c->now;
    int64_t sched = 0;
    if ((r = rd_int(c, st, b, "", "scheduledSendTime", 0, INT64_MAX / 2, &sched)) < 0) return -1;
    if (r > 0 && sched > 0) {
        if (sched < c->now + 1800) {
            fail(c, st, "ScheduledSendTime must be at least 30 minutes in the future.");
            return -1;
        }
        if (sched > c->now + 180LL * 86400) {
            fail(c, st, "ScheduledSendTime must be within 180 days.");
            return -1;
        }
        d->scheduled = sched;
        from = sched;
    }
    if (strcmp(et, "Days") == 0) {
        int64_t dd = has_val > 0 && jget(b, "expiryDateType") ? val : days;
        if (dd < 1 || dd > 180) {
            fail(c, st, "ExpiryValue must be between 1 and 180 days.");
            return -1;
        }
        d->expiry_days = (int)dd;
        d->expiry_value = dd;
        d->expiry = from + dd * 86400;
    } else if (strcmp(et, "Hours") == 0) {
        if (has_val <= 0 || val > 4320) {
            fail(c, st, "ExpiryValue (1 to 4320 hours) is required when ExpiryDateType is Hours.");
            return -1;
        }
        d->expiry_value = val;
        d->expiry_days = (int)((val + 23) / 24);
        d->expiry = from + val * 3600;
    } else {
        if (has_val <= 0 || val <= from + 3600 || val > c->now + 180LL * 86400) {
            fail(c, st,
                 "ExpiryValue must be a Unix time between one hour and 180 days ahead when "
                 "ExpiryDateType is SpecificDateTime.");
            return -1;
        }
        d->expiry_value = val;
        d->expiry_days = (int)((val - from + 86399) / 86400);
        d->expiry = val;
    }
    /* reminders */
    const cJSON *rs = jget(b, "reminderSettings");
    if (rs && !cJSON_IsNull(rs)) {
        if (!cJSON_IsObject(rs)) {
            fail(c, st, "ReminderSettings must be an object.");
            return -1;
        }
        if (rd_bool(c, st, rs, "ReminderSettings.", "enableAutoReminder", &d->auto_remind) < 0)
            return -1;
        if ((r = rd_int(c, st, rs, "ReminderSettings.", "reminderDays", 1, 180, &n)) < 0) return -1;
        if (r > 0) d->remind_days = (int)n;
        if ((r = rd_int(c, st, rs, "ReminderSettings.", "reminderCount", 1, 5, &n)) < 0) return -1;
        if (r > 0) d->remind_count = (int)n;
    }
    /* cc */
    const cJSON *cc = jget(b, "cc");
    if (cc && !cJSON_IsNull(cc)) {
        if (!cJSON_IsArray(cc) || cJSON_GetArraySize(cc) > BS_MAX_CC) {
            fail(c, st, "CC must be an array of at most %d recipients.", BS_MAX_CC);
            return -1;
        }
        int k = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, cc)
        {
            const char *e = NULL;
            if (cJSON_IsObject(it)) jstr(it, "emailAddress", &e);
            if (!e || !email_ok(e)) {
                fail(c, st, "CC[%d].EmailAddress is required and must be a valid email address.",
                     k);
                return -1;
            }
            char **nc = realloc(d->cc, (size_t)(d->ncc + 1) * sizeof *nc);
            if (!nc) return -1;
            d->cc = nc;
            d->cc[d->ncc++] = xstrdup(e);
            k++;
        }
    }
    /* labels */
    const cJSON *lb = jget(b, "labels");
    if (lb && !cJSON_IsNull(lb)) {
        if (!cJSON_IsArray(lb) || cJSON_GetArraySize(lb) > BS_MAX_LABELS) {
            fail(c, st, "Labels must be an array of at most %d strings.", BS_MAX_LABELS);
            return -1;
        }
        const cJSON *it;
        cJSON_ArrayForEach(it, lb)
        {
            if (!cJSON_IsString(it) || is_blank(it->valuestring) ||
                !text_ok(it->valuestring, 255)) {
                fail(c, st, "Labels must be non-empty strings of at most 255 characters.");
                return -1;
            }
            char **nl = realloc(d->labels, (size_t)(d->nlabels + 1) * sizeof *nl);
            if (!nl) return -1;
            d->labels = nl;
            d->labels[d->nlabels++] = xstrdup(it->valuestring);
        }
    }
    /* brand */
    if (rd_str(c, st, b, "", "brandId", 64, &v) < 0) return -1;
    if (v && *v) {
        int found = -1;
        for (int i = 0; i < BS_NBRANDS; i++)
            if (strcasecmp(c->a->brands[i].id, v) == 0) found = i;
        if (found < 0) {
            fail(c, st, "Invalid brand ID.");
            return -1;
        }
        set_str(&d->brand_id, c->a->brands[found].id);
    }
    /* on behalf of a sender identity */
    if (rd_str(c, st, b, "", "onBehalfOf", 254, &v) < 0) return -1;
    if (v && *v) {
        int found = -1;
        for (int i = 0; i < BS_NIDENT; i++)
            if (strcasecmp(c->a->idents[i].email, v) == 0) found = i;
        if (found < 0) {
            fail(c, st, "The OnBehalfOf email '%.80s' is not a sender identity of this account.",
                 v);
            return -1;
        }
        if (!c->a->idents[found].approved) {
            fail(c, st, "The sender identity '%.80s' has not approved sending on its behalf.", v);
            return -1;
        }
        set_str(&d->behalf_name, c->a->idents[found].name);
        set_str(&d->behalf_email, c->a->idents[found].email);
    }
    /* metadata */
    const cJSON *md = jget(b, "metaData");
    if (md && !cJSON_IsNull(md)) {
        if (!cJSON_IsObject(md) || cJSON_GetArraySize(md) > 50) {
            fail(c, st, "MetaData must be an object of at most 50 string pairs.");
            return -1;
        }
        const cJSON *it;
        cJSON_ArrayForEach(it, md)
        {
            if (!(cJSON_IsString(it) || cJSON_IsNull(it)) || strlen(it->string) > 50 ||
                (cJSON_IsString(it) && !text_ok(it->valuestring, 500))) {
                fail(c, st,
                     "MetaData values must be strings (keys up to 50, values up to 500 "
                     "characters).");
                return -1;
            }
        }
        cJSON_Delete(d->meta);
        d->meta = cJSON_Duplicate(md, 1);
    }
    return 0;
}

static bs_doc *new_doc(bs_ctx *c)
{
    bs_doc *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    doc_defaults(d);
    sbx_rng_uuid(&c->st->rt, d->id);
    d->sender = c->me;
    d->created = c->now;
    d->meta = cJSON_CreateObject();
    return d;
}

/* The new document goes out: asynchronous processing, history, bookkeeping. */
static void publish_doc(bs_ctx *c, bs_doc *d)
{
    const bs_user *u = &c->a->users[d->sender];
    char nm[80];
    user_full_name(u, nm, sizeof nm);
    d->api_sent = 1;
    d->ready_ms = c->now_ms + BS_PROCESSING_MS;
    if (d->scheduled) {
        d->status = "Scheduled";
        for (int i = 0; i < d->nsigners; i++)
            d->signers[i].status = "None";
        doc_set_activity(d, c->now, u->email, "DocumentScheduled");
    } else {
        hist_add(d, &c->st->rt, "Sent", nm, u->email, NULL, NULL, c->now);
        doc_set_activity(d, c->now, u->email, "None");
    }
    if (c->a->credits >= 1) c->a->credits -= 1;
    doc_changed(c->a, d);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "documentId", d->id);
    sbx_resp_json(c->resp, 201, o);
}

static int room_for_doc(bs_ctx *c, int st)
{
    if (c->a->ndocs >= BS_MAX_DOCS) {
        fail(c, st,
             "The sandbox document limit for this account has been reached; POST "
             "/_sandbox/reset to start over.");
        return 0;
    }
    return 1;
}

static void h_doc_send(bs_ctx *c)
{
    const int st = 400;
    cJSON *b = NULL;
    sbx_part *parts = NULL;
    size_t nparts = 0;
    if (parse_body(c, &b, &parts, &nparts, st) < 0) return;
    bs_doc *d = NULL;
    if (!cJSON_IsObject(b)) {
        fail(c, st, "The request body is required: a SendForSign object.");
        goto out;
    }
    if (!room_for_doc(c, 422)) goto out;
    d = new_doc(c);
    if (!d) {
        fail(c, 500, "Out of memory.");
        goto out;
    }
    if (send_options(c, st, b, d, NULL) < 0) goto out;
    int pages = 0, urls = 0;
    if (send_files(c, st, b, parts, nparts, d, &pages, &urls) < 0) goto out;
    if (d->nfiles == 0) {
        fail(c, st, "Files or FileUrls is required: add at least one document.");
        goto out;
    }
    const cJSON *sg = jget(b, "signers");
    if (!cJSON_IsArray(sg) || cJSON_GetArraySize(sg) == 0) {
        fail(c, st, "The Signers field is required.");
        goto out;
    }
    int ns = cJSON_GetArraySize(sg);
    if (ns > BS_MAX_SIGNERS) {
        fail(c, st, "A document can have at most %d signers.", BS_MAX_SIGNERS);
        goto out;
    }
    d->signers = calloc((size_t)ns, sizeof *d->signers);
    if (!d->signers) {
        fail(c, 500, "Out of memory.");
        goto out;
    }
    int k = 0, seq = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, sg)
    {
        char path[32];
        snprintf(path, sizeof path, "Signers[%d].", k);
        bs_signer *g = &d->signers[k++];
        signer_init(g, &c->st->rt, k);
        d->nsigners = k;
        if (!cJSON_IsObject(it)) {
            fail(c, st, "Signers[%d] must be an object.", k - 1);
            goto out;
        }
        const char *nm, *em;
        if (rd_str(c, st, it, path, "name", 256, &nm) < 0 ||
            rd_str(c, st, it, path, "emailAddress", 254, &em) < 0)
            goto out;
        g->name = xstrdup(nm);
        g->email = em && *em ? xstrdup(em) : NULL;
        if (signer_opts(c, st, it, path, g) < 0) goto out;
        if (need_contact(c, st, path, g) < 0) goto out;
        if (signer_fields(c, st, it, path, g, urls ? 0 : pages, &seq) < 0) goto out;
    }
    if (doc_add(c->a, d) < 0) {
        fail(c, 500, "Out of memory.");
        goto out;
    }
    publish_doc(c, d);
    d = NULL;
out:
    doc_free(d);
    cJSON_Delete(b);
    sbx_parts_free(parts, nparts);
}

static int tpl_visible(const bs_account *a, int me, const bs_template *t)
{
    if (t->deleted) return 0;
    const bs_user *u = &a->users[me];
    return t->creator == me || u->role == 0 || t->shared_team == BS_NTEAMS ||
           t->shared_team == u->team;
}

static bs_template *tpl_param(bs_ctx *c, int st)
{
    const char *id = qp(c, "templateId");
    if (!id || !*id) {
        fail(c, st == 422 ? 422 : 400, "The templateId field is required.");
        return NULL;
    }
    for (int i = 0; i < BS_NTPL; i++)
        if (strcasecmp(c->a->tpls[i].id, id) == 0 && tpl_visible(c->a, c->me, &c->a->tpls[i]))
            return &c->a->tpls[i];
    fail(c, st, "Invalid Template ID");
    return NULL;
}

/* POST /v1/template/send?templateId= : roles fill the template's roles by roleIndex (defaults
 * from the template); existingFormFields prefill the role's fields. */
static void h_tpl_send(bs_ctx *c)
{
    const int st = 422;
    cJSON *b = NULL;
    sbx_part *parts = NULL;
    size_t nparts = 0;
    bs_doc *d = NULL;
    bs_template *tp = tpl_param(c, 422);
    if (!tp) return;
    if (parse_body(c, &b, &parts, &nparts, st) < 0) return;
    if (b && !cJSON_IsObject(b)) {
        fail(c, st, "The request body must be a SendForSignFromTemplateForm object.");
        goto out;
    }
    if (!b) b = cJSON_CreateObject();
    if (!room_for_doc(c, 422)) goto out;
    d = new_doc(c);
    if (!d) {
        fail(c, 500, "Out of memory.");
        goto out;
    }
    d->title = xstrdup(tp->doc_title);
    d->message = xstrdup(tp->doc_msg);
    d->signing_order = tp->signing_order;
    if (tp->brand >= 0) d->brand_id = xstrdup(c->a->brands[tp->brand].id);
    if (tp->cc[0]) {
        d->cc = calloc(1, sizeof *d->cc);
        if (d->cc) {
            d->cc[0] = xstrdup(tp->cc);
            d->ncc = 1;
        }
    }
    if (send_options(c, st, b, d, tp) < 0) goto out;
    if (add_file(d, &c->st->rt, tp->file_name, tp->pages, (int)(tp - c->a->tpls)) < 0) {
        fail(c, 500, "Out of memory.");
        goto out;
    }
    int pages = tp->pages, urls = 0;
    if (send_files(c, st, b, parts, nparts, d, &pages, &urls) < 0) goto out;
    /* roles */
    const cJSON *roles = jget(b, "roles");
    if (roles && !cJSON_IsNull(roles) && !cJSON_IsArray(roles)) {
        fail(c, st, "Roles must be an array.");
        goto out;
    }
    const cJSON *rem = jget(b, "roleRemovalIndices");
    int removed[8] = {0};
    const cJSON *it;
    cJSON_ArrayForEach(it, rem)
    {
        if (!cJSON_IsNumber(it) || it->valuedouble < 1 || it->valuedouble > tp->nroles) {
            fail(c, st, "RoleRemovalIndices contains an invalid role index.");
            goto out;
        }
        removed[(int)it->valuedouble] = 1;
    }
    const cJSON *given[8] = {0};
    int k = 0;
    cJSON_ArrayForEach(it, roles)
    {
        int64_t ri;
        char path[32];
        snprintf(path, sizeof path, "Roles[%d].", k++);
        if (!cJSON_IsObject(it)) {
            fail(c, st, "Roles[%d] must be an object.", k - 1);
            goto out;
        }
        int r = rd_int(c, st, it, path, "roleIndex", 1, 50, &ri);
        if (r < 0) goto out;
        if (r == 0) {
            fail(c, st, "The %sRoleIndex field is required.", path);
            goto out;
        }
        if (ri > tp->nroles) {
            fail(c, st, "Invalid role index %lld: the template '%s' has roles 1 to %d.",
                 (long long)ri, tp->name, tp->nroles);
            goto out;
        }
        if (given[ri]) {
            fail(c, st, "Role index %lld is given more than once.", (long long)ri);
            goto out;
        }
        given[ri] = it;
    }
    d->signers = calloc((size_t)tp->nroles, sizeof *d->signers);
    if (!d->signers) {
        fail(c, 500, "Out of memory.");
        goto out;
    }
    int seq = 100;
    for (int i = 0; i < tp->nroles; i++) {
        const bs_role *ro = &tp->roles[i];
        if (removed[ro->index]) continue;
        const cJSON *j = given[ro->index];
        char path[32];
        snprintf(path, sizeof path, "Roles[%d].", ro->index);
        bs_signer *g = &d->signers[d->nsigners++];
        signer_init(g, &c->st->rt, ro->order);
        g->stype = ro->stype;
        g->role = xstrdup(ro->name);
        const char *nm = NULL, *em = NULL;
        if (j && (rd_str(c, st, j, path, "signerName", 256, &nm) < 0 ||
                  rd_str(c, st, j, path, "signerEmail", 254, &em) < 0))
            goto out;
        if (!nm || !*nm) nm = ro->def_name[0] ? ro->def_name : NULL;
        if (!em || !*em) em = ro->def_email[0] ? ro->def_email : NULL;
        if (!nm || (!em && !(j && jget(j, "phoneNumber")))) {
            fail(c, st,
                 "Signer details are required for the role '%s' (roleIndex %d): give "
                 "signerName and signerEmail.",
                 ro->name, ro->index);
            goto out;
        }
        g->name = xstrdup(nm);
        g->email = em ? xstrdup(em) : NULL;
        g->fields = ro->nfields ? calloc((size_t)ro->nfields, sizeof *g->fields) : NULL;
        for (int f = 0; g->fields && f < ro->nfields; f++) {
            g->fields[f] = ro->fields[f];
            g->fields[f].value = NULL;
            g->nfields++;
        }
        if (j) {
            if (signer_opts(c, st, j, path, g) < 0) goto out;
            if (signer_fields(c, st, j, path, g, urls ? 0 : pages, &seq) < 0) goto out;
            const cJSON *ex = jget(j, "existingFormFields");
            if (ex && !cJSON_IsNull(ex) && !cJSON_IsArray(ex)) {
                fail(c, st, "%sExistingFormFields must be an array.", path);
                goto out;
            }
            const cJSON *e;
            cJSON_ArrayForEach(e, ex)
            {
                const char *fid = NULL, *fname = NULL, *val = NULL;
                if (!cJSON_IsObject(e)) continue;
                jstr(e, "id", &fid);
                jstr(e, "name", &fname);
                if (jstr(e, "value", &val) < 0 || (val && !text_ok(val, 2000))) {
                    fail(c, st, "%sExistingFormFields: value must be a string.", path);
                    goto out;
                }
                const char *want = fid ? fid : fname;
                int hit = -1;
                for (int f = 0; want && f < g->nfields; f++)
                    if (strcasecmp(g->fields[f].id, want) == 0) hit = f;
                if (hit < 0) {
                    fail(c, st, "%sExistingFormFields: no form field '%.60s' in role '%s'.", path,
                         want ? want : "(missing id)", ro->name);
                    goto out;
                }
                set_str(&g->fields[hit].value, val);
                int ro_flag = 0;
                if (jbool(e, "isReadOnly", &ro_flag) > 0) g->fields[hit].readonly = ro_flag;
            }
        }
        if (need_contact(c, st, path, g) < 0) goto out;
    }
    if (d->nsigners == 0) {
        fail(c, st, "At least one signer is required: every role was removed.");
        goto out;
    }
    if (doc_add(c->a, d) < 0) {
        fail(c, 500, "Out of memory.");
        goto out;
    }
    publish_doc(c, d);
    d = NULL;
out:
    doc_free(d);
    cJSON_Delete(b);
    sbx_parts_free(parts, nparts);
}

/* ---- documents: actions ---------------------------------------------------------------------- */

static const char *state_phrase(const char *status)
{
    if (strcmp(status, "Completed") == 0) return "has already been completed";
    if (strcmp(status, "Declined") == 0) return "has been declined";
    if (strcmp(status, "Revoked") == 0) return "has been revoked";
    if (strcmp(status, "Expired") == 0) return "has expired";
    if (strcmp(status, "Draft") == 0) return "is a draft and has not been sent";
    if (strcmp(status, "Scheduled") == 0) return "is scheduled and has not been sent yet";
    return "is not in progress";
}

static void h_doc_remind(bs_ctx *c)
{
    bs_doc *d = doc_param(c, "documentId");
    if (!d) return;
    cJSON *b = NULL;
    if (parse_body(c, &b, NULL, NULL, 400) < 0) return;
    const char *msg = NULL;
    if (b && !cJSON_IsObject(b)) {
        fail(c, 400, "The request body must be a ReminderMessage object.");
        goto out;
    }
    if (rd_str(c, 400, b, "", "message", 5000, &msg) < 0) goto out;
    if (strcmp(d->status, "InProgress") != 0) {
        fail(c, 400, "Reminders cannot be sent: the document %s.", state_phrase(d->status));
        goto out;
    }
    const char *emails[BS_MAX_SIGNERS];
    size_t ne = qall(c, "receiverEmails", emails, BS_MAX_SIGNERS);
    int targets[BS_MAX_SIGNERS], nt = 0;
    if (ne) {
        for (size_t i = 0; i < ne; i++) {
            int hit = -1;
            for (int k = 0; k < d->nsigners && hit < 0; k++)
                if (d->signers[k].email && strcasecmp(d->signers[k].email, emails[i]) == 0) hit = k;
            if (hit < 0) {
                fail(c, 400, "The email address '%.80s' is not a signer of this document.",
                     emails[i]);
                goto out;
            }
            if (strcmp(d->signers[hit].status, "NotCompleted") != 0) {
                fail(c, 400, "The signer '%.80s' has already signed the document.", emails[i]);
                goto out;
            }
            if (!signer_turn(d, hit)) {
                fail(c, 400,
                     "The signer '%.80s' cannot be reminded before it is their turn to "
                     "sign.",
                     emails[i]);
                goto out;
            }
            targets[nt++] = hit;
        }
    } else {
        for (int k = 0; k < d->nsigners; k++)
            if (signer_turn(d, k)) targets[nt++] = k;
    }
    if (nt == 0) {
        fail(c, 400, "There are no pending signers to remind.");
        goto out;
    }
    char nm[80];
    user_full_name(&c->a->users[c->me], nm, sizeof nm);
    for (int i = 0; i < nt; i++)
        hist_add(d, &c->st->rt, "Reminder", nm, c->a->users[c->me].email,
                 d->signers[targets[i]].name, d->signers[targets[i]].email, c->now);
    empty(c, 204);
out:
    cJSON_Delete(b);
}

static void h_doc_revoke(bs_ctx *c)
{
    bs_doc *d = doc_param(c, "documentId");
    if (!d) return;
    cJSON *b = NULL;
    if (parse_body(c, &b, NULL, NULL, 400) < 0) return;
    const char *msg = NULL;
    if (b && !cJSON_IsObject(b)) {
        fail(c, 400, "The request body must be a RevokeDocument object.");
        goto out;
    }
    if (rd_str(c, 400, b, "", "message", 5000, &msg) < 0) goto out;
    if (!msg || is_blank(msg)) {
        fail(c, 400, "The Message field is required.");
        goto out;
    }
    if (strcmp(d->status, "InProgress") != 0 && strcmp(d->status, "Scheduled") != 0) {
        fail(c, 400, "The document cannot be revoked: it %s.", state_phrase(d->status));
        goto out;
    }
    lc_revoke(c->a, d, c->me, msg, c->now, &c->st->rt);
    doc_changed(c->a, d);
    empty(c, 204);
out:
    cJSON_Delete(b);
}

static void h_doc_delete(bs_ctx *c)
{
    bs_doc *d = doc_param(c, "documentId");
    if (!d) return;
    const char *pv = qp(c, "deletePermanently");
    int perm = 0;
    if (pv && *pv) {
        if (strcasecmp(pv, "true") == 0)
            perm = 1;
        else if (strcasecmp(pv, "false") != 0) {
            fail(c, 400, "The value '%.40s' is not valid for deletePermanently.", pv);
            return;
        }
    }
    if (d->sender != c->me && c->a->users[c->me].role != 0) {
        fail(c, 403, "Only the sender can delete this document.");
        return;
    }
    if (perm) {
        int i = 0;
        while (i < c->a->ndocs && c->a->docs[i] != d)
            i++;
        if (i < c->a->ndocs) {
            memmove(&c->a->docs[i], &c->a->docs[i + 1],
                    (size_t)(c->a->ndocs - i - 1) * sizeof c->a->docs[0]);
            c->a->ndocs--;
        }
        doc_free(d);
    } else {
        char nm[80];
        user_full_name(&c->a->users[c->me], nm, sizeof nm);
        if (strcmp(d->status, "InProgress") == 0)
            lc_revoke(c->a, d, c->me, "The document was deleted by the sender.", c->now,
                      &c->st->rt);
        d->deleted = 1;
        hist_add(d, &c->st->rt, "MovedToTrash", nm, c->a->users[c->me].email, NULL, NULL, c->now);
        doc_changed(c->a, d);
    }
    empty(c, 204);
}

static void h_doc_change_recipient(bs_ctx *c)
{
    bs_doc *d = doc_param(c, "documentId");
    if (!d) return;
    cJSON *b = NULL;
    if (parse_body(c, &b, NULL, NULL, 400) < 0) return;
    const char *nn = NULL, *reason = NULL, *ne = NULL, *oe = NULL;
    int64_t order = 0;
    int has_order;
    char ncc[8] = "", nph[24] = "", occ[8] = "", oph[24] = "";
    if (!cJSON_IsObject(b)) {
        fail(c, 400, "The request body is required: a ChangeRecipient object.");
        goto out;
    }
    if (rd_str(c, 400, b, "", "newSignerName", 256, &nn) < 0 ||
        rd_str(c, 400, b, "", "reason", 5000, &reason) < 0 ||
        rd_str(c, 400, b, "", "newSignerEmail", 254, &ne) < 0 ||
        rd_str(c, 400, b, "", "oldSignerEmail", 254, &oe) < 0)
        goto out;
    if ((has_order = rd_int(c, 400, b, "", "order", 1, 50, &order)) < 0) goto out;
    if (rd_phone(c, 400, b, "", "phoneNumber", ncc, sizeof ncc, nph, sizeof nph) < 0 ||
        rd_phone(c, 400, b, "", "oldPhoneNumber", occ, sizeof occ, oph, sizeof oph) < 0)
        goto out;
    if (!nn || is_blank(nn)) {
        fail(c, 400, "The NewSignerName field is required.");
        goto out;
    }
    if (!reason || is_blank(reason)) {
        fail(c, 400, "The Reason field is required.");
        goto out;
    }
    if (ne && *ne && !email_ok(ne)) {
        fail(c, 400, "The NewSignerEmail field is not a valid e-mail address.");
        goto out;
    }
    if (oe && *oe && !email_ok(oe)) {
        fail(c, 400, "The OldSignerEmail field is not a valid e-mail address.");
        goto out;
    }
    if (strcmp(d->status, "InProgress") != 0) {
        fail(c, 400, "The recipient cannot be changed: the document %s.", state_phrase(d->status));
        goto out;
    }
    if ((!oe || !*oe) && !oph[0] && has_order <= 0) {
        fail(c, 400, "The OldSignerEmail field is required.");
        goto out;
    }
    int hit = -1;
    for (int i = 0; i < d->nsigners && hit < 0; i++) {
        const bs_signer *g = &d->signers[i];
        if (oe && *oe && (!g->email || strcasecmp(g->email, oe) != 0)) continue;
        if (!(oe && *oe) && oph[0] && strcmp(g->phone, oph) != 0) continue;
        if (has_order > 0 && g->order != order) continue;
        hit = i;
    }
    if (hit < 0) {
        fail(c, 400, "No signer '%.80s' was found in this document.", oe && *oe ? oe : oph);
        goto out;
    }
    bs_signer *g = &d->signers[hit];
    if (strcmp(g->status, "Completed") == 0) {
        fail(c, 400,
             "The signer has already signed the document, so the recipient cannot be "
             "changed.");
        goto out;
    }
    if (strcmp(g->status, "NotCompleted") != 0) {
        fail(c, 400, "The recipient cannot be changed for a signer whose status is %s.", g->status);
        goto out;
    }
    int needs_email = strcmp(g->delivery, "SMS") != 0 && strcmp(g->delivery, "WhatsApp") != 0;
    if (needs_email && (!ne || !*ne)) {
        fail(c, 400, "The NewSignerEmail field is required.");
        goto out;
    }
    for (int i = 0; ne && *ne && i < d->nsigners; i++)
        if (i != hit && d->signers[i].email && strcasecmp(d->signers[i].email, ne) == 0 &&
            d->signers[i].order == g->order) {
            fail(c, 400, "'%.80s' is already a recipient of this document.", ne);
            goto out;
        }
    char oldname[260], oldemail[260];
    snprintf(oldname, sizeof oldname, "%s", g->name ? g->name : "");
    snprintf(oldemail, sizeof oldemail, "%s", g->email ? g->email : "");
    set_str(&g->name, nn);
    if (ne && *ne) set_str(&g->email, ne);
    if (nph[0]) {
        snprintf(g->cc_code, sizeof g->cc_code, "%s", ncc);
        snprintf(g->phone, sizeof g->phone, "%s", nph);
    }
    g->viewed = 0;
    g->delivery_failed = 0;
    hist_add(d, &c->st->rt, "EditRecipient", oldname, oldemail, g->name, g->email, c->now);
    d->activity = c->now;
    set_str(&d->activity_by, c->a->users[c->me].email);
    doc_changed(c->a, d);
    empty(c, 204);
out:
    cJSON_Delete(b);
}

static void h_doc_extend(bs_ctx *c)
{
    bs_doc *d = doc_param(c, "documentId");
    if (!d) return;
    cJSON *b = NULL;
    if (parse_body(c, &b, NULL, NULL, 400) < 0) return;
    const char *nv = NULL, *nd = NULL;
    int warn = 0;
    if (b && !cJSON_IsObject(b)) {
        fail(c, 400, "The request body must be an ExtendExpiry object.");
        goto out;
    }
    const cJSON *nvj = jget(b, "newExpiryValue");
    char numbuf[32];
    if (cJSON_IsNumber(nvj)) { /* tolerate a JSON number for the hours form */
        snprintf(numbuf, sizeof numbuf, "%.0f", nvj->valuedouble);
        nv = numbuf;
    } else if (rd_str(c, 400, b, "", "newExpiryValue", 64, &nv) < 0) {
        goto out;
    }
    if (rd_str(c, 400, b, "", "newExpiryDate", 64, &nd) < 0 ||
        rd_bool(c, 400, b, "", "warnPrior", &warn) < 0)
        goto out;
    if ((!nv || !*nv) && (!nd || !*nd)) {
        fail(c, 400, "The NewExpiryValue field is required.");
        goto out;
    }
    if (strcmp(d->status, "InProgress") != 0 || d->expiry <= c->now) {
        fail(c, 400, "The expiry date cannot be extended: the document %s.",
             strcmp(d->status, "InProgress") == 0 ? "has expired" : state_phrase(d->status));
        goto out;
    }
    int64_t t = 0;
    const char *v = nv && *nv ? nv : nd;
    if (strcmp(d->expiry_type, "Hours") == 0 && nv && *nv) {
        int64_t h;
        if (sb_parse_i64(nv, 1, 4320, &h) != 0) {
            fail(c, 400, "NewExpiryValue must be a number of hours (1 to 4320) for this document.");
            goto out;
        }
        t = c->now + h * 3600;
    } else if (parse_dt(v, &t) != 0) {
        fail(c, 400, "NewExpiryValue '%.40s' is not valid: use yyyy-MM-dd%s.", v,
             strcmp(d->expiry_type, "SpecificDateTime") == 0 ? " or an ISO 8601 date-time" : "");
        goto out;
    } else if (strlen(v) == 10) {
        t += 86399; /* a date means the end of that day */
    }
    if (t <= c->now) {
        fail(c, 400, "The new expiry date must be in the future.");
        goto out;
    }
    if (t <= d->expiry) {
        fail(c, 400, "The new expiry date must be later than the current expiry date.");
        goto out;
    }
    if (t > c->now + 180LL * 86400) {
        fail(c, 400, "The new expiry date cannot be more than 180 days from today.");
        goto out;
    }
    d->expiry = t;
    d->no_expiry_alert = !warn && d->no_expiry_alert;
    char nm[80];
    user_full_name(&c->a->users[c->me], nm, sizeof nm);
    hist_add(d, &c->st->rt, "ExpiryDateExtended", nm, c->a->users[c->me].email, NULL, NULL, c->now);
    doc_changed(c->a, d);
    empty(c, 200);
out:
    cJSON_Delete(b);
}

/* ---- templates ------------------------------------------------------------------------------- */

static void h_tpl_list(bs_ctx *c)
{
    int page, size;
    if (paging(c, &page, &size) < 0) return;
    static const char *const types[] = {"mytemplates", "sharedtemplate", "all", NULL};
    const char *tt = qp(c, "TemplateType");
    const char *type = "all";
    if (tt && *tt && !(type = enum_ci(tt, types))) {
        fail(c, 400, "The value '%.40s' is not valid for TemplateType.", tt);
        return;
    }
    const char *search = qp(c, "SearchKey");
    const char *created_by[BS_QMAX], *labels[BS_QMAX], *brands[BS_QMAX], *teams[BS_QMAX],
        *behalf[BS_QMAX];
    size_t ncb = qall(c, "CreatedBy", created_by, BS_QMAX);
    size_t nl = qall(c, "TemplateLabels", labels, BS_QMAX);
    size_t nb = qall(c, "BrandIds", brands, BS_QMAX);
    size_t nt = qall(c, "SharedWithTeamId", teams, BS_QMAX);
    size_t nbh = qall(c, "OnBehalfOf", behalf, BS_QMAX);
    int hs, he;
    int64_t s0, e0;
    if (qdate(c, "StartDate", &hs, &s0) < 0 || qdate(c, "EndDate", &he, &e0) < 0) return;
    const bs_template *hits[BS_NTPL];
    int n = 0;
    for (int i = 0; i < BS_NTPL; i++) {
        const bs_template *t = &c->a->tpls[i];
        if (!tpl_visible(c->a, c->me, t)) continue;
        int mine = t->creator == c->me;
        if (strcmp(type, "mytemplates") == 0 && !mine) continue;
        if (strcmp(type, "sharedtemplate") == 0 && (mine || t->shared_team < 0)) continue;
        if (search && *search && !strcasestr(t->name, search) && !strcasestr(t->desc, search) &&
            !strcasestr(t->doc_title, search) && !strcasestr(t->id, search))
            continue;
        if (ncb && !in_list_ci(c->a->users[t->creator].email, created_by, ncb)) continue;
        if (nl && !in_list_ci(t->label, labels, nl)) continue;
        if (nb && !(t->brand >= 0 && in_list_ci(c->a->brands[t->brand].id, brands, nb))) continue;
        if (nt) {
            int ok = 0;
            for (int k = 0; k < BS_NTEAMS && !ok; k++)
                ok = (t->shared_team == k || t->shared_team == BS_NTEAMS) &&
                     in_list_ci(c->a->teams[k].id, teams, nt);
            if (!ok) continue;
        }
        if (nbh) continue; /* no template is kept on behalf of a sender identity */
        if (hs && t->created < s0) continue;
        if (he && t->created > e0) continue;
        hits[n++] = t;
    }
    /* newest activity first */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && hits[j]->activity > hits[j - 1]->activity; j--) {
            const bs_template *x = hits[j];
            hits[j] = hits[j - 1];
            hits[j - 1] = x;
        }
    sb_buf *b = &c->resp->body;
    sb_buf_reset(b);
    sb_buf_append(b, "{", 1);
    page_details(b, size, page, n, 1);
    sb_buf_puts(b, ",\"result\":[");
    int k = 0;
    for (int64_t i = (int64_t)(page - 1) * size; i < n && i < (int64_t)page * size; i++) {
        if (k++) sb_buf_append(b, ",", 1);
        sb_buf_append(b, hits[i]->list_json, hits[i]->list_len);
    }
    sb_buf_puts(b, "]}");
    c->resp->status = 200;
    sb_strlcpy(c->resp->content_type, "application/json; charset=utf-8",
               sizeof c->resp->content_type);
}

static void h_tpl_props(bs_ctx *c)
{
    bs_template *t = tpl_param(c, 403);
    if (t) sbx_resp_json(c->resp, 200, tpl_props_json(c->a, t));
}

static void h_tpl_download(bs_ctx *c)
{
    bs_template *t = tpl_param(c, 403);
    if (!t) return;
    const char *iv = qp(c, "includeFormFieldValues");
    if (iv && *iv && strcasecmp(iv, "true") != 0 && strcasecmp(iv, "false") != 0) {
        fail(c, 400, "The value '%.40s' is not valid for includeFormFieldValues.", iv);
        return;
    }
    char lines[20][160];
    const char *lp[20];
    int n = 0;
    snprintf(lines[n++], 160, "Template ID: %s", t->id);
    snprintf(lines[n++], 160, "Description: %.140s", t->desc);
    snprintf(lines[n++], 160, "File: %s (%d pages)", t->file_name, t->pages);
    snprintf(lines[n++], 160, "Roles:");
    for (int i = 0; i < t->nroles; i++)
        snprintf(lines[n++], 160, "  %d. %s (%s)", t->roles[i].index, t->roles[i].name,
                 t->roles[i].stype);
    for (int i = 0; i < n; i++)
        lp[i] = lines[i];
    char fn[128];
    safe_filename(t->name, ".pdf", fn, sizeof fn);
    send_pdf(c, fn, t->name, lp, n);
}

static void h_tpl_delete(bs_ctx *c)
{
    bs_template *t = tpl_param(c, 403);
    if (!t) return;
    if (t->creator != c->me && c->a->users[c->me].role != 0) {
        fail(c, 403, "Only the template owner or an account admin can delete this template.");
        return;
    }
    t->deleted = 1;
    empty(c, 204);
}

/* ---- contacts -------------------------------------------------------------------------------- */

static void h_contacts_list(bs_ctx *c)
{
    int page, size;
    if (paging(c, &page, &size) < 0) return;
    static const char *const types[] = {"MyContacts", "AllContacts", NULL};
    const char *ct = qp(c, "ContactType");
    const char *type = "AllContacts";
    if (ct && *ct && !(type = enum_ci(ct, types))) {
        fail(c, 400, "The value '%.40s' is not valid for ContactType.", ct);
        return;
    }
    int mine = strcmp(type, "MyContacts") == 0;
    const char *search = qp(c, "SearchKey");
    if (search && !*search) search = NULL;
    int total = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            cJSON *o = cJSON_CreateObject();
            cJSON *pd = cJSON_AddObjectToObject(o, "pageDetails");
            jadd_num(pd, "pageSize", size);
            jadd_num(pd, "page", page);
            jadd_num(pd, "totalRecordsCount", total);
            cJSON *res = cJSON_AddArrayToObject(o, "result");
            int64_t first = (int64_t)(page - 1) * size, k = 0;
            for (int i = 0; i < c->a->ncontacts && cJSON_GetArraySize(res) < size; i++) {
                const bs_contact *x = &c->a->contacts[i];
                if (mine && x->owner != c->me) continue;
                if (search && !strcasestr(x->name, search) && !strcasestr(x->email, search))
                    continue;
                if (k++ < first) continue;
                cJSON_AddItemToArray(res, contact_json(x));
            }
            sbx_resp_json(c->resp, 200, o);
            return;
        }
        for (int i = 0; i < c->a->ncontacts; i++) {
            const bs_contact *x = &c->a->contacts[i];
            if (mine && x->owner != c->me) continue;
            if (search && !strcasestr(x->name, search) && !strcasestr(x->email, search)) continue;
            total++;
        }
    }
}

static int contact_index(bs_ctx *c, const char *id)
{
    for (int i = 0; id && i < c->a->ncontacts; i++)
        if (strcasecmp(c->a->contacts[i].id, id) == 0) return i;
    return -1;
}

static void h_contact_get(bs_ctx *c)
{
    const char *id = qp(c, "id");
    if (!id || !*id) {
        fail(c, 400, "The id field is required.");
        return;
    }
    int i = contact_index(c, id);
    if (i < 0) {
        fail(c, 403, "Invalid Contact ID");
        return;
    }
    sbx_resp_json(c->resp, 200, contact_json(&c->a->contacts[i]));
}

/* Validate ContactDetails into out-parameters; 0 or -1 (400 written). */
static int contact_fields(bs_ctx *c, const cJSON *o, const char *path, const char **name,
                          const char **email, const char **company, const char **job, char *cc,
                          char *ph)
{
    if (!cJSON_IsObject(o)) {
        fail(c, 400, "%sThe contact must be an object.", path);
        return -1;
    }
    if (rd_str(c, 400, o, path, "name", 256, name) < 0 ||
        rd_str(c, 400, o, path, "email", 254, email) < 0 ||
        rd_str(c, 400, o, path, "companyName", 256, company) < 0 ||
        rd_str(c, 400, o, path, "jobTitle", 256, job) < 0)
        return -1;
    if (!*email || !**email) {
        fail(c, 400, "The %sEmail field is required.", path);
        return -1;
    }
    if (!email_ok(*email)) {
        fail(c, 400, "%sEmail '%.80s' is not a valid email address.", path, *email);
        return -1;
    }
    if (!*name || is_blank(*name)) {
        fail(c, 400, "The %sName field is required.", path);
        return -1;
    }
    if (rd_phone(c, 400, o, path, "phoneNumber", cc, 8, ph, 24) < 0) return -1;
    return 0;
}

static void h_contact_create(bs_ctx *c)
{
    cJSON *b = NULL;
    if (parse_body(c, &b, NULL, NULL, 400) < 0) return;
    if (!cJSON_IsArray(b) || cJSON_GetArraySize(b) == 0) {
        fail(c, 400, "The request body must be a non-empty array of contacts.");
        cJSON_Delete(b);
        return;
    }
    int n = cJSON_GetArraySize(b);
    if (n > 100 || c->a->ncontacts + n > BS_MAX_CONTACTS) {
        fail(c, 400, "Too many contacts: at most 100 per request and %d per account.",
             BS_MAX_CONTACTS);
        cJSON_Delete(b);
        return;
    }
    /* validate everything first: the request is all or nothing */
    int k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, b)
    {
        char path[24], cc[8] = "", ph[24] = "";
        const char *nm, *em, *co, *jb;
        snprintf(path, sizeof path, "[%d].", k);
        if (contact_fields(c, it, path, &nm, &em, &co, &jb, cc, ph) < 0) {
            cJSON_Delete(b);
            return;
        }
        for (int i = 0; i < c->a->ncontacts; i++)
            if (strcasecmp(c->a->contacts[i].email, em) == 0) {
                fail(c, 400, "A contact with the email '%.80s' already exists.", em);
                cJSON_Delete(b);
                return;
            }
        int j = 0;
        const cJSON *it2;
        cJSON_ArrayForEach(it2, b)
        {
            const char *em2;
            if (j++ <= k) continue;
            if (jstr(it2, "email", &em2) > 0 && strcasecmp(em2, em) == 0) {
                fail(c, 400, "The email '%.80s' appears more than once in the request.", em);
                cJSON_Delete(b);
                return;
            }
        }
        k++;
    }
    if (c->a->ncontacts + n > c->a->capcontacts) {
        int nc = c->a->capcontacts;
        while (nc < c->a->ncontacts + n)
            nc *= 2;
        bs_contact *x = realloc(c->a->contacts, (size_t)nc * sizeof *x);
        if (!x) {
            fail(c, 500, "Out of memory.");
            cJSON_Delete(b);
            return;
        }
        c->a->contacts = x;
        c->a->capcontacts = nc;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "createdContacts");
    cJSON_ArrayForEach(it, b)
    {
        char cc[8] = "", ph[24] = "";
        const char *nm, *em, *co, *jb;
        contact_fields(c, it, "", &nm, &em, &co, &jb, cc, ph);
        bs_contact *x = &c->a->contacts[c->a->ncontacts++];
        memset(x, 0, sizeof *x);
        sbx_rng_uuid(&c->st->rt, x->id);
        x->name = xstrdup(nm);
        x->email = xstrdup(em);
        x->company = xstrdup(co);
        x->job = xstrdup(jb);
        snprintf(x->cc_code, sizeof x->cc_code, "%s", cc);
        snprintf(x->phone, sizeof x->phone, "%s", ph);
        x->owner = c->me;
        cJSON *r = cJSON_CreateObject();
        jadd_str(r, "id", x->id);
        jadd_str(r, "email", x->email);
        cJSON_AddItemToArray(arr, r);
    }
    cJSON_Delete(b);
    sbx_resp_json(c->resp, 201, o);
}

static void h_contact_update(bs_ctx *c)
{
    const char *id = qp(c, "id");
    if (!id || !*id) {
        fail(c, 400, "The id field is required.");
        return;
    }
    int i = contact_index(c, id);
    if (i < 0) {
        fail(c, 400, "Invalid Contact ID");
        return;
    }
    cJSON *b = NULL;
    if (parse_body(c, &b, NULL, NULL, 400) < 0) return;
    char cc[8] = "", ph[24] = "";
    const char *nm, *em, *co, *jb;
    if (!b) {
        fail(c, 400, "The request body is required: a ContactDetails object.");
        return;
    }
    if (contact_fields(c, b, "", &nm, &em, &co, &jb, cc, ph) < 0) {
        cJSON_Delete(b);
        return;
    }
    for (int k = 0; k < c->a->ncontacts; k++)
        if (k != i && strcasecmp(c->a->contacts[k].email, em) == 0) {
            fail(c, 400, "A contact with the email '%.80s' already exists.", em);
            cJSON_Delete(b);
            return;
        }
    bs_contact *x = &c->a->contacts[i];
    set_str(&x->name, nm);
    set_str(&x->email, em);
    set_str(&x->company, co);
    set_str(&x->job, jb);
    snprintf(x->cc_code, sizeof x->cc_code, "%s", cc);
    snprintf(x->phone, sizeof x->phone, "%s", ph);
    cJSON_Delete(b);
    empty(c, 200);
}

static void h_contact_delete(bs_ctx *c)
{
    const char *id = qp(c, "id");
    if (!id || !*id) {
        fail(c, 400, "The id field is required.");
        return;
    }
    int i = contact_index(c, id);
    if (i < 0) {
        fail(c, 403, "Invalid Contact ID");
        return;
    }
    contact_clear(&c->a->contacts[i]);
    memmove(&c->a->contacts[i], &c->a->contacts[i + 1],
            (size_t)(c->a->ncontacts - i - 1) * sizeof c->a->contacts[0]);
    c->a->ncontacts--;
    empty(c, 204);
}

/* ---- users, teams, brands, sender identities, plan ------------------------------------------- */

static void h_users_list(bs_ctx *c)
{
    int page, size;
    if (paging(c, &page, &size) < 0) return;
    const char *search = qp(c, "Search");
    if (search && !*search) search = NULL;
    const char *ids[BS_QMAX];
    size_t nid = qall(c, "UserId", ids, BS_QMAX);
    cJSON *o = cJSON_CreateObject();
    cJSON *pd = cJSON_AddObjectToObject(o, "pageDetails");
    jadd_num(pd, "pageSize", size);
    jadd_num(pd, "page", page);
    cJSON *res = cJSON_AddArrayToObject(o, "result");
    int64_t first = (int64_t)(page - 1) * size, k = 0;
    for (int i = 0; i < BS_NUSERS && cJSON_GetArraySize(res) < size; i++) {
        const bs_user *u = &c->a->users[i];
        char nm[80];
        user_full_name(u, nm, sizeof nm);
        if (search && !strcasestr(nm, search) && !strcasestr(u->email, search)) continue;
        if (nid && !in_list_ci(u->id, ids, nid)) continue;
        if (k++ < first) continue;
        cJSON_AddItemToArray(res, user_json(c->a, u));
    }
    sbx_resp_json(c->resp, 200, o);
}

static void h_user_get(bs_ctx *c)
{
    const char *id = qp(c, "userId");
    if (!id || !*id) {
        fail(c, 400, "The userId field is required.");
        return;
    }
    int u = find_user_by_id(c->a, id);
    if (u < 0) {
        fail(c, 403, "Invalid User ID");
        return;
    }
    sbx_resp_json(c->resp, 200, user_json(c->a, &c->a->users[u]));
}

static int teams_allowed(bs_ctx *c)
{
    if (c->a->users[c->me].role == 2) {
        fail(c, 403, "Unauthorized request: only account admins and team admins can view teams.");
        return 0;
    }
    return 1;
}

static void h_teams_list(bs_ctx *c)
{
    int page, size;
    if (paging(c, &page, &size) < 0 || !teams_allowed(c)) return;
    const char *search = qp(c, "SearchKey");
    if (search && !*search) search = NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON *pd = cJSON_AddObjectToObject(o, "pageDetails");
    jadd_num(pd, "pageSize", size);
    jadd_num(pd, "page", page);
    cJSON *res = cJSON_AddArrayToObject(o, "results");
    int64_t first = (int64_t)(page - 1) * size, k = 0;
    for (int i = 0; i < BS_NTEAMS && cJSON_GetArraySize(res) < size; i++) {
        const bs_team *t = &c->a->teams[i];
        if (search && !strcasestr(t->name, search)) continue;
        if (k++ < first) continue;
        cJSON *x = cJSON_CreateObject();
        jadd_str(x, "teamName", t->name);
        jadd_str(x, "teamId", t->id);
        jadd_num(x, "createdDate", (double)t->created);
        jadd_num(x, "modifiedDate", (double)t->modified);
        cJSON_AddItemToArray(res, x);
    }
    sbx_resp_json(c->resp, 200, o);
}

static void h_team_get(bs_ctx *c)
{
    const char *id = qp(c, "teamId");
    if (!id || !*id) {
        fail(c, 400, "The teamId field is required.");
        return;
    }
    if (!teams_allowed(c)) return;
    int ti = -1;
    for (int i = 0; i < BS_NTEAMS; i++)
        if (strcasecmp(c->a->teams[i].id, id) == 0) ti = i;
    if (ti < 0) {
        fail(c, 403, "Invalid Team ID");
        return;
    }
    const bs_team *t = &c->a->teams[ti];
    cJSON *o = cJSON_CreateObject();
    jadd_str(o, "teamId", t->id);
    jadd_str(o, "teamName", t->name);
    cJSON *us = cJSON_AddArrayToObject(o, "users");
    for (int i = 0; i < BS_NUSERS; i++) {
        const bs_user *u = &c->a->users[i];
        if (u->team != ti) continue;
        cJSON *x = cJSON_CreateObject();
        jadd_str(x, "userId", u->id);
        jadd_str(x, "email", u->email);
        jadd_str(x, "firstName", u->first);
        jadd_str(x, "lastName", u->last);
        jadd_str(x, "userRole", team_role_name(u->role));
        jadd_str(x, "userStatus", user_status_name(u->status));
        cJSON_AddItemToArray(us, x);
    }
    jadd_num(o, "createdDate", (double)t->created);
    jadd_num(o, "modifiedDate", (double)t->modified);
    sbx_resp_json(c->resp, 200, o);
}

static void h_brand_list(bs_ctx *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *res = cJSON_AddArrayToObject(o, "result");
    for (int i = 0; i < BS_NBRANDS; i++)
        cJSON_AddItemToArray(res, brand_json(c->a, &c->a->brands[i]));
    sbx_resp_json(c->resp, 200, o);
}

static void h_brand_get(bs_ctx *c)
{
    const char *id = qp(c, "brandId");
    if (!id || !*id) {
        fail(c, 400, "The brandId field is required.");
        return;
    }
    for (int i = 0; i < BS_NBRANDS; i++)
        if (strcasecmp(c->a->brands[i].id, id) == 0) {
            sbx_resp_json(c->resp, 200, brand_json(c->a, &c->a->brands[i]));
            return;
        }
    fail(c, 422, "Invalid brand ID.");
}

static void h_idents_list(bs_ctx *c)
{
    int page, size;
    if (paging(c, &page, &size) < 0) return;
    const char *search = qp(c, "Search");
    if (search && !*search) search = NULL;
    const char *brands[BS_QMAX];
    size_t nb = qall(c, "BrandIds", brands, BS_QMAX);
    const bs_ident *hits[BS_NIDENT];
    int n = 0;
    for (int i = 0; i < BS_NIDENT; i++) {
        const bs_ident *x = &c->a->idents[i];
        if (search && !strcasestr(x->name, search) && !strcasestr(x->email, search)) continue;
        if (nb) continue; /* identities carry no brand */
        hits[n++] = x;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *res = cJSON_AddArrayToObject(o, "result");
    for (int64_t i = (int64_t)(page - 1) * size; i < n && i < (int64_t)page * size; i++)
        cJSON_AddItemToArray(res, ident_json(c->a, hits[i]));
    cJSON *pd = cJSON_AddObjectToObject(o, "pageDetails");
    jadd_num(pd, "pageSize", size);
    jadd_num(pd, "page", page);
    jadd_num(pd, "totalRecordsCount", n);
    jadd_num(pd, "totalPages", total_pages(n, size));
    jadd_str(pd, "sortedColumn", NULL);
    jadd_str(pd, "sortDirection", NULL);
    sbx_resp_json(c->resp, 200, o);
}

static void h_plan_credits(bs_ctx *c)
{
    cJSON *o = cJSON_CreateObject();
    jadd_num(o, "BalanceCredits", c->a->credits);
    sbx_resp_json(c->resp, 200, o);
}

/* ---- OAuth 2.0 / OpenID Connect (the region's account host) ---------------------------------- */

static const char *const registered_redirects[] = {
    "https://claude.ai/api/mcp/auth_callback", "https://claude.com/api/mcp/auth_callback",
    "https://chatgpt.com/connector_platform_oauth_redirect", NULL};

static int loopback_prefix(const char *u, const char *host)
{
    size_t n = strlen(host);
    if (strncasecmp(u, host, n) != 0) return 0;
    const char *p = u + n;
    if (*p == ':') {
        p++;
        if (!isdigit((unsigned char)*p)) return 0;
        int digs = 0;
        while (isdigit((unsigned char)*p)) {
            p++;
            digs++;
        }
        if (digs > 5) return 0;
    }
    return *p == '\0' || *p == '/' || *p == '?';
}

/* Registered redirect URIs, plus any loopback http://127.0.0.1|localhost|[::1] (any port, path). */
static int redirect_allowed(const char *u)
{
    if (!u || !*u || strlen(u) > 2000 || strchr(u, '#')) return 0;
    for (const char *p = u; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '"' || *p == '<' || *p == '>' || *p == '\\') return 0;
    for (int i = 0; registered_redirects[i]; i++)
        if (strcmp(u, registered_redirects[i]) == 0) return 1;
    return loopback_prefix(u, "http://127.0.0.1") || loopback_prefix(u, "http://localhost") ||
           loopback_prefix(u, "http://[::1]");
}

static int client_lookup(bs_ctx *c, const char *client_id)
{
    for (int i = 0; client_id && i < BS_NACCT; i++)
        if (c->st->acct[i].region == c->region && strcmp(c->st->acct[i].client_id, client_id) == 0)
            return i;
    return -1;
}

static int scope_known(const char *s, size_t n)
{
    for (int i = 0; bs_api_scopes[i]; i++)
        if (strlen(bs_api_scopes[i]) == n && strncmp(bs_api_scopes[i], s, n) == 0) return 1;
    for (int i = 0; bs_oidc_scopes[i]; i++)
        if (strlen(bs_oidc_scopes[i]) == n && strncmp(bs_oidc_scopes[i], s, n) == 0) return 1;
    return 0;
}

/* Every space-separated scope known; not empty; at most 900 bytes. */
static int scope_valid(const char *s)
{
    if (!s || strlen(s) > 900) return 0;
    int any = 0;
    const char *p = s;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p) break;
        size_t l = strcspn(p, " ");
        if (!scope_known(p, l)) return 0;
        any = 1;
        p += l;
    }
    return any;
}

static void oauth_json_error(bs_ctx *c, int status, const char *err, const char *desc)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", err);
    if (desc) cJSON_AddStringToObject(o, "error_description", desc);
    sbx_resp_json(c->resp, status, o);
    sbx_resp_header(c->resp, "Cache-Control", "no-store");
    sbx_resp_header(c->resp, "Pragma", "no-cache");
}

static void html_page(bs_ctx *c, int status, const char *title, const char *body_html)
{
    sb_buf b;
    sb_buf_init(&b, 1 << 20);
    char t[512];
    sbx_html_escape(title, t, sizeof t);
    sb_buf_printf(&b,
                  "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                  "<title>%s</title><style>body{font-family:sans-serif;max-width:34em;margin:3em "
                  "auto}label{display:block;margin:.6em 0}input{width:100%%}</style></head>\n"
                  "<body>\n%s\n</body></html>\n",
                  t, body_html);
    sbx_resp_bytes(c->resp, status, "text/html; charset=utf-8", b.data, b.len);
    sb_buf_free(&b);
    sbx_resp_header(c->resp, "Cache-Control", "no-store");
    sbx_resp_header(c->resp, "X-Frame-Options", "DENY");
}

static void html_error(bs_ctx *c, int status, const char *err, const char *desc)
{
    char d[600], e[128], body[1024];
    sbx_html_escape(desc, d, sizeof d);
    sbx_html_escape(err, e, sizeof e);
    snprintf(body, sizeof body, "<h1>BoldSign</h1><h2>Sorry, there was an error: %s</h2><p>%s</p>",
             e, d);
    html_page(c, status, "Error - BoldSign", body);
}

typedef struct az_params {
    const char *response_type, *client_id, *redirect_uri, *scope, *state, *challenge, *method,
        *nonce;
} az_params;

/* 302 to uri + query. A response header value holds at most SBX_HEADER_VALUE_MAX-1 bytes (sbx.h), so a
 * Location that would not fit is refused rather than truncated. */
static void redirect_with(bs_ctx *c, const char *uri, const char *query)
{
    sb_buf b;
    sb_buf_init(&b, 16384);
    sb_buf_puts(&b, uri);
    sb_buf_puts(&b, strchr(uri, '?') ? "&" : "?");
    sb_buf_puts(&b, query);
    if (b.data && b.len < SBX_HEADER_VALUE_MAX) {
        sbx_resp_redirect(c->resp, b.data);
    } else {
        html_error(c, 400, "invalid_request",
                   "The redirect URL (redirect_uri plus code, state and iss) is longer than the "
                   "sandbox can send in a Location header; use a shorter redirect_uri or state.");
    }
    sb_buf_free(&b);
}

static void az_error_redirect(bs_ctx *c, const az_params *p, const char *err, const char *desc)
{
    char q[5000], ed[800], st[3100], iss[300], isse[600];
    url_encode(desc, ed, sizeof ed);
    url_encode(p->state ? p->state : "", st, sizeof st);
    issuer_of(c, iss, sizeof iss);
    url_encode(iss, isse, sizeof isse);
    snprintf(q, sizeof q, "error=%s&error_description=%s%s%s&iss=%s", err, ed,
             p->state ? "&state=" : "", p->state ? st : "", isse);
    redirect_with(c, p->redirect_uri, q);
}

static void az_form(bs_ctx *c, const az_params *p, int acct, const char *error)
{
    const bs_account *a = &c->st->acct[acct];
    char iss[300];
    issuer_of(c, iss, sizeof iss);
    sb_buf b;
    sb_buf_init(&b, 1 << 20);
    char esc[13000];
    sbx_html_escape(a->company, esc, sizeof esc);
    sb_buf_printf(
        &b,
        "<h1>BoldSign</h1>\n<p>Sign in to your BoldSign account (sandbox, region <b>%s</b>) "
        "to let this application access <b>%s</b>.</p>\n",
        bs_regions[c->region], esc);
    sbx_html_escape(p->scope ? p->scope : "", esc, sizeof esc);
    sb_buf_printf(&b, "<p>Requested permissions: <code id=\"scope\">%s</code></p>\n", esc);
    if (error) {
        sbx_html_escape(error, esc, sizeof esc);
        sb_buf_printf(&b, "<p id=\"error\" role=\"alert\" style=\"color:#b00\">%s</p>\n", esc);
    }
    sbx_html_escape(iss, esc, sizeof esc);
    sb_buf_printf(&b, "<form method=\"post\" action=\"%s/connect/authorize\">\n", esc);
    const char *names[] = {"response_type", "client_id",      "redirect_uri",          "scope",
                           "state",         "code_challenge", "code_challenge_method", "nonce"};
    const char *vals[] = {p->response_type, p->client_id, p->redirect_uri, p->scope,
                          p->state,         p->challenge, p->method,       p->nonce};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!vals[i]) continue;
        sbx_html_escape(vals[i], esc, sizeof esc);
        sb_buf_printf(&b, "<input type=\"hidden\" name=\"%s\" value=\"%s\">\n", names[i], esc);
    }
    sbx_html_escape(a->users[0].email, esc, sizeof esc);
    sb_buf_printf(&b,
                  "<label>Email <input type=\"email\" name=\"email\" autocomplete=\"username\" "
                  "placeholder=\"%s\"></label>\n"
                  "<label>Password <input type=\"password\" name=\"password\" "
                  "autocomplete=\"current-password\"></label>\n"
                  "<button type=\"submit\" name=\"action\" value=\"approve\">Approve</button>\n"
                  "<button type=\"submit\" name=\"action\" value=\"deny\">Deny</button>\n"
                  "</form>\n",
                  esc);
    html_page(c, 200, "Sign in - BoldSign", b.data ? b.data : "");
    sb_buf_free(&b);
}

static void prune_codes(bs_state *st, uint64_t now_ms)
{
    int o = 0;
    for (int i = 0; i < st->ncodes; i++) {
        if (st->codes[i].exp_ms + 600000 < now_ms) { /* keep used/expired ones 10 min for reuse */
            code_clear(&st->codes[i]);
            continue;
        }
        st->codes[o++] = st->codes[i];
    }
    st->ncodes = o;
}

/* Issue a code and redirect. Caller holds the write lock. */
static void az_issue(bs_ctx *c, const az_params *p, int acct, int user)
{
    bs_state *st = c->st;
    prune_codes(st, c->now_ms);
    if (st->ncodes >= BS_MAX_CODES) {
        az_error_redirect(c, p, "temporarily_unavailable", "Too many pending authorization codes.");
        return;
    }
    if (st->ncodes == st->capcodes) {
        int nc = st->capcodes ? st->capcodes * 2 : 16;
        bs_code *n = realloc(st->codes, (size_t)nc * sizeof *n);
        if (!n) {
            az_error_redirect(c, p, "server_error", "Out of memory.");
            return;
        }
        st->codes = n;
        st->capcodes = nc;
    }
    bs_code *k = &st->codes[st->ncodes++];
    memset(k, 0, sizeof *k);
    sbx_token("", 32, k->code, sizeof k->code);
    sbx_token("", 16, k->family, sizeof k->family);
    k->acct = acct;
    k->user = user;
    k->redirect = xstrdup(p->redirect_uri);
    k->scope = xstrdup(p->scope);
    k->challenge = xstrdup(p->challenge);
    k->nonce = xstrdup(p->nonce);
    snprintf(k->method, sizeof k->method, "%s", p->method ? p->method : "plain");
    k->exp_ms = c->now_ms + BS_CODE_TTL_MS;
    k->auth_time = c->now_ms / 1000;
    char q[4000], st_e[3100], iss[300], isse[600];
    url_encode(p->state ? p->state : "", st_e, sizeof st_e);
    issuer_of(c, iss, sizeof iss);
    url_encode(iss, isse, sizeof isse);
    snprintf(q, sizeof q, "code=%s%s%s&iss=%s", k->code, p->state ? "&state=" : "",
             p->state ? st_e : "", isse);
    redirect_with(c, p->redirect_uri, q);
}

static int challenge_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 43 || n > 128) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("-._~", s[i])) return 0;
    return 1;
}

static const char *kvget(const sbx_kv *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (kv[i].key && strcmp(kv[i].key, key) == 0) return kv[i].val;
    return NULL;
}

static void h_authorize(bs_ctx *c)
{
    int post = strcmp(c->req->method, "POST") == 0;
    snprintf(c->req->route, sizeof c->req->route, "%s /account/connect/authorize", c->req->method);
    snprintf(c->req->auth_scheme, sizeof c->req->auth_scheme, "none");
    if (!post && strcmp(c->req->method, "GET") != 0) {
        empty(c, 405);
        return;
    }
    sbx_kv *kv = NULL;
    size_t nkv = 0;
    if (post) {
        if (!starts_ci(c->req->content_type, "application/x-www-form-urlencoded") ||
            sbx_parse_form(c->req->body, c->req->body_len, &kv, &nkv) < 0) {
            html_error(c, 400, "invalid_request",
                       "The authorize form must be posted as application/x-www-form-urlencoded.");
            return;
        }
    }
#define AZP(name) (post ? kvget(kv, nkv, name) : sbx_query(c->req, name, 0))
    az_params p = {
        AZP("response_type"), AZP("client_id"),      AZP("redirect_uri"),          AZP("scope"),
        AZP("state"),         AZP("code_challenge"), AZP("code_challenge_method"), AZP("nonce")};
    const char *email = post ? kvget(kv, nkv, "email") : NULL;
    const char *password = post ? kvget(kv, nkv, "password") : NULL;
    const char *action = post ? kvget(kv, nkv, "action") : NULL;
#undef AZP
    int acct = client_lookup(c, p.client_id);
    if (acct < 0) {
        html_error(c, 400, "invalid_client",
                   "Unknown client_id for this region: OAuth apps are regional; use the account "
                   "host of the region where the app was created.");
        goto out;
    }
    snprintf(c->req->account_id, sizeof c->req->account_id, "%s", c->st->acct[acct].id);
    if (!redirect_allowed(p.redirect_uri)) {
        html_error(c, 400, "invalid_request",
                   "The redirect_uri is missing or not registered for "
                   "this client.");
        goto out;
    }
    if (!p.response_type || strcmp(p.response_type, "code") != 0) {
        az_error_redirect(c, &p, "unsupported_response_type",
                          "Only response_type=code is supported.");
        goto out;
    }
    if (!scope_valid(p.scope)) {
        az_error_redirect(c, &p, "invalid_scope",
                          "The scope is missing or contains an unknown scope.");
        goto out;
    }
    if (!p.challenge) {
        az_error_redirect(c, &p, "invalid_request", "code challenge required");
        goto out;
    }
    if (p.method && strcmp(p.method, "S256") != 0 && strcmp(p.method, "plain") != 0) {
        az_error_redirect(c, &p, "invalid_request", "Transform algorithm not supported");
        goto out;
    }
    if (!challenge_ok(p.challenge)) {
        az_error_redirect(c, &p, "invalid_request", "Invalid code_challenge");
        goto out;
    }
    if ((p.state && strlen(p.state) > 1000) || (p.nonce && strlen(p.nonce) > 300)) {
        az_error_redirect(c, &p, "invalid_request", "state or nonce too long");
        goto out;
    }
    if (!post) {
        if (sbx_auto_approve(c->s))
            az_issue(c, &p, acct, 0);
        else
            az_form(c, &p, acct, NULL);
        goto out;
    }
    if (action && strcmp(action, "deny") == 0) {
        az_error_redirect(c, &p, "access_denied", "The user denied the request.");
        goto out;
    }
    const bs_account *a = &c->st->acct[acct];
    int user = -1;
    for (int i = 0; email && i < BS_NUSERS; i++)
        if (strcasecmp(a->users[i].email, email) == 0 && a->users[i].status == 0) user = i;
    if (user < 0 || !password ||
        !sb_ct_equal(password, strlen(password), a->password, strlen(a->password))) {
        az_form(c, &p, acct, "Invalid email or password.");
        goto out;
    }
    az_issue(c, &p, acct, user);
out:
    sbx_kv_free(kv, nkv);
}

static void revoke_family(bs_state *st, const char *family)
{
    for (int i = 0; i < st->nrtoks; i++)
        if (strcmp(st->rtoks[i].family, family) == 0) st->rtoks[i].revoked = 1;
    for (int i = 0; i < st->natoks; i++)
        if (strcmp(st->atoks[i].family, family) == 0) st->atoks[i].revoked = 1;
}

static void prune_tokens(bs_state *st, uint64_t now_ms)
{
    int o = 0;
    for (int i = 0; i < st->natoks; i++)
        if (st->atoks[i].exp_ms > now_ms) st->atoks[o++] = st->atoks[i];
    st->natoks = o;
    o = 0;
    for (int i = 0; i < st->nrtoks; i++) {
        if (st->rtoks[i].exp_ms <= now_ms) {
            free(st->rtoks[i].scope);
            continue;
        }
        st->rtoks[o++] = st->rtoks[i];
    }
    st->nrtoks = o;
}

/* Issue tokens and write the token response. user < 0: client credentials (no sub). Caller
 * holds the write lock. */
static void token_response(bs_ctx *c, int acct, int user, const char *scope, const char *family,
                           uint64_t auth_time, const char *nonce)
{
    bs_state *st = c->st;
    bs_account *a = &st->acct[acct];
    bs_key *k = region_key(c->region);
    if (!k) {
        oauth_json_error(c, 500, "server_error", "Signing key unavailable.");
        return;
    }
    if (st->natoks >= BS_MAX_ATOKENS || st->nrtoks >= BS_MAX_RTOKENS) prune_tokens(st, c->now_ms);
    if (st->natoks >= BS_MAX_ATOKENS || st->nrtoks >= BS_MAX_RTOKENS) {
        oauth_json_error(c, 503, "temporarily_unavailable", "Too many live tokens.");
        return;
    }
    char iss[300], jti[40];
    issuer_of(c, iss, sizeof iss);
    sbx_token("", 16, jti, sizeof jti);
    cJSON *p = cJSON_CreateObject();
    jadd_str(p, "iss", iss);
    jadd_num(p, "nbf", (double)c->now);
    jadd_num(p, "iat", (double)c->now);
    jadd_num(p, "exp", (double)(c->now + sbx_oauth_access_ttl(c->s, BS_AT_TTL)));
    jadd_str(p, "aud", BS_AUD);
    jadd_str(p, "scope", scope);
    jadd_str(p, "client_id", a->client_id);
    if (user >= 0) {
        jadd_str(p, "sub", a->users[user].id);
        jadd_num(p, "auth_time", (double)auth_time);
        jadd_str(p, "idp", "local");
        jadd_str(p, "email", a->users[user].email);
    }
    jadd_str(p, "account_id", a->id);
    jadd_str(p, "jti", jti);
    char *at = jwt_sign(k, "at+jwt", p);
    cJSON_Delete(p);
    if (!at) {
        oauth_json_error(c, 500, "server_error", "Unable to sign the token.");
        return;
    }
    if (st->natoks == st->capatoks) {
        int nc = st->capatoks ? st->capatoks * 2 : 64;
        bs_atok *n = realloc(st->atoks, (size_t)nc * sizeof *n);
        if (!n) {
            free(at);
            oauth_json_error(c, 500, "server_error", "Out of memory.");
            return;
        }
        st->atoks = n;
        st->capatoks = nc;
    }
    bs_atok *t = &st->atoks[st->natoks++];
    memset(t, 0, sizeof *t);
    snprintf(t->jti, sizeof t->jti, "%s", jti);
    snprintf(t->family, sizeof t->family, "%s", family);
    t->acct = acct;
    t->exp_ms = c->now_ms + (uint64_t)sbx_oauth_access_ttl(c->s, BS_AT_TTL) * 1000;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "access_token", at);
    free(at);
    jadd_num(o, "expires_in", sbx_oauth_access_ttl(c->s, BS_AT_TTL));
    jadd_str(o, "token_type", "Bearer");
    if (user >= 0 && scope_has(scope, "offline_access")) {
        if (st->nrtoks == st->caprtoks) {
            int nc = st->caprtoks ? st->caprtoks * 2 : 64;
            bs_rtok *n = realloc(st->rtoks, (size_t)nc * sizeof *n);
            if (!n) {
                cJSON_Delete(o);
                oauth_json_error(c, 500, "server_error", "Out of memory.");
                return;
            }
            st->rtoks = n;
            st->caprtoks = nc;
        }
        bs_rtok *r = &st->rtoks[st->nrtoks++];
        memset(r, 0, sizeof *r);
        sbx_token("", 32, r->tok, sizeof r->tok);
        snprintf(r->family, sizeof r->family, "%s", family);
        r->acct = acct;
        r->user = user;
        r->scope = xstrdup(scope);
        r->exp_ms = c->now_ms + (uint64_t)BS_RT_TTL * 1000;
        r->auth_time = auth_time;
        cJSON_AddStringToObject(o, "refresh_token", r->tok);
    }
    jadd_str(o, "scope", scope);
    if (user >= 0 && scope_has(scope, "openid")) {
        const bs_user *u = &a->users[user];
        char nm[80];
        user_full_name(u, nm, sizeof nm);
        cJSON *ip = cJSON_CreateObject();
        jadd_str(ip, "iss", iss);
        jadd_num(ip, "nbf", (double)c->now);
        jadd_num(ip, "iat", (double)c->now);
        jadd_num(ip, "exp", (double)(c->now + 300));
        jadd_str(ip, "aud", a->client_id);
        if (nonce) jadd_str(ip, "nonce", nonce);
        jadd_str(ip, "sub", u->id);
        jadd_num(ip, "auth_time", (double)auth_time);
        jadd_str(ip, "idp", "local");
        if (scope_has(scope, "email")) {
            jadd_str(ip, "email", u->email);
            jadd_bool(ip, "email_verified", 1);
        }
        if (scope_has(scope, "profile")) {
            jadd_str(ip, "name", nm);
            jadd_str(ip, "given_name", u->first);
            jadd_str(ip, "family_name", u->last);
        }
        char *it = jwt_sign(k, "JWT", ip);
        cJSON_Delete(ip);
        if (it) {
            cJSON_AddStringToObject(o, "id_token", it);
            free(it);
        }
    }
    sbx_resp_json(c->resp, 200, o);
    sbx_resp_header(c->resp, "Cache-Control", "no-store");
    sbx_resp_header(c->resp, "Pragma", "no-cache");
}

/* Client authentication at the token/revocation endpoints: client_secret_basic or
 * client_secret_post. Returns the account index, or -1 with invalid_client written. */
static int client_auth(bs_ctx *c, const sbx_kv *kv, size_t n)
{
    const char *az = sbx_header(c->req, "Authorization");
    char id[256] = "", secret[256] = "";
    int basic = 0;
    if (az && strncasecmp(az, "Basic ", 6) == 0) {
        basic = 1;
        const char *b64 = az + 6;
        while (*b64 == ' ')
            b64++;
        unsigned char dec[600];
        long dl = sb_base64_decode(b64, strlen(b64), dec, sizeof dec - 1);
        if (dl > 0) {
            dec[dl] = '\0';
            char *colon = strchr((char *)dec, ':');
            if (colon) {
                *colon = '\0';
                char *i = sbx_url_decode((char *)dec, strlen((char *)dec), 1);
                char *s = sbx_url_decode(colon + 1, strlen(colon + 1), 1);
                if (i) snprintf(id, sizeof id, "%s", i);
                if (s) snprintf(secret, sizeof secret, "%s", s);
                free(i);
                free(s);
            }
        }
    } else {
        const char *i = kvget(kv, n, "client_id"), *s = kvget(kv, n, "client_secret");
        if (i) snprintf(id, sizeof id, "%s", i);
        if (s) snprintf(secret, sizeof secret, "%s", s);
    }
    const char *bid = kvget(kv, n, "client_id");
    int acct = client_lookup(c, id);
    if (acct < 0 || !secret[0] ||
        !sb_ct_equal(secret, strlen(secret), c->st->acct[acct].client_secret,
                     strlen(c->st->acct[acct].client_secret)) ||
        (basic && bid && strcmp(bid, id) != 0)) {
        oauth_json_error(c, basic ? 401 : 400, "invalid_client", NULL);
        if (basic) sbx_resp_header(c->resp, "WWW-Authenticate", "Basic realm=\"BoldSign\"");
        return -1;
    }
    snprintf(c->req->account_id, sizeof c->req->account_id, "%s", c->st->acct[acct].id);
    return acct;
}

static int scope_subset(const char *want, const char *have)
{
    const char *p = want;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p) break;
        size_t l = strcspn(p, " ");
        char one[128];
        if (l >= sizeof one) return 0;
        memcpy(one, p, l);
        one[l] = '\0';
        if (!scope_has(have, one)) return 0;
        p += l;
    }
    return 1;
}

static void h_token(bs_ctx *c)
{
    snprintf(c->req->route, sizeof c->req->route, "POST /account/connect/token");
    snprintf(c->req->auth_scheme, sizeof c->req->auth_scheme, "client_secret");
    if (strcmp(c->req->method, "POST") != 0) {
        empty(c, 405);
        return;
    }
    sbx_kv *kv = NULL;
    size_t n = 0;
    if (!starts_ci(c->req->content_type, "application/x-www-form-urlencoded") ||
        sbx_parse_form(c->req->body, c->req->body_len, &kv, &n) < 0) {
        oauth_json_error(c, 400, "invalid_request",
                         "The token request must be application/x-www-form-urlencoded.");
        return;
    }
    bs_state *st = c->st;
    int acct = client_auth(c, kv, n);
    if (acct < 0) goto out;
    const char *gt = kvget(kv, n, "grant_type");
    if (!gt) {
        oauth_json_error(c, 400, "invalid_request", "grant_type is required.");
        goto out;
    }
    if (strcmp(gt, "authorization_code") == 0) {
        const char *code = kvget(kv, n, "code"), *ru = kvget(kv, n, "redirect_uri"),
                   *ver = kvget(kv, n, "code_verifier");
        bs_code *k = NULL;
        for (int i = 0; code && i < st->ncodes; i++)
            if (strcmp(st->codes[i].code, code) == 0) k = &st->codes[i];
        if (!k || k->acct != acct) {
            oauth_json_error(c, 400, "invalid_grant", "The authorization code is invalid.");
            goto out;
        }
        if (k->used) {
            revoke_family(st, k->family);
            oauth_json_error(c, 400, "invalid_grant",
                             "The authorization code has already been used; tokens issued from it "
                             "were revoked.");
            goto out;
        }
        if (k->exp_ms <= c->now_ms) {
            oauth_json_error(c, 400, "invalid_grant", "The authorization code has expired.");
            goto out;
        }
        if (!ru || strcmp(ru, k->redirect) != 0) {
            oauth_json_error(c, 400, "invalid_grant",
                             "The redirect_uri does not match the one "
                             "used in the authorization request.");
            goto out;
        }
        if (!ver) {
            oauth_json_error(c, 400, "invalid_grant", "code_verifier is required.");
            goto out;
        }
        if (!sbx_pkce_ok(ver, k->challenge, k->method)) {
            oauth_json_error(c, 400, "invalid_grant",
                             "The code_verifier does not match the "
                             "code_challenge.");
            goto out;
        }
        k->used = 1;
        token_response(c, acct, k->user, k->scope, k->family, k->auth_time, k->nonce);
    } else if (strcmp(gt, "refresh_token") == 0) {
        const char *rt = kvget(kv, n, "refresh_token"), *sc = kvget(kv, n, "scope");
        bs_rtok *r = NULL;
        for (int i = 0; rt && i < st->nrtoks; i++)
            if (strcmp(st->rtoks[i].tok, rt) == 0) r = &st->rtoks[i];
        if (!r || r->acct != acct) {
            oauth_json_error(c, 400, "invalid_grant", "The refresh token is invalid.");
            goto out;
        }
        if (r->used || r->revoked) {
            revoke_family(st, r->family);
            oauth_json_error(c, 400, "invalid_grant",
                             r->used ? "The refresh token has already been used: refresh tokens "
                                       "are single use, so the whole grant was revoked."
                                     : "The refresh token has been revoked.");
            goto out;
        }
        if (r->exp_ms <= c->now_ms) {
            oauth_json_error(c, 400, "invalid_grant", "The refresh token has expired.");
            goto out;
        }
        if (sc && *sc && (!scope_valid(sc) || !scope_subset(sc, r->scope))) {
            oauth_json_error(c, 400, "invalid_scope", "The requested scope exceeds the grant.");
            goto out;
        }
        if (r->user < 0 || c->st->acct[acct].users[r->user].status != 0) {
            oauth_json_error(c, 400, "invalid_grant", "The user is no longer active.");
            goto out;
        }
        r->used = 1;
        char scope[1024], family[40];
        snprintf(scope, sizeof scope, "%s", sc && *sc ? sc : r->scope);
        if (!scope_has(scope, "offline_access") &&
            strlen(scope) + sizeof " offline_access" < sizeof scope)
            strncat(scope, " offline_access", sizeof scope - strlen(scope) - 1);
        snprintf(family, sizeof family, "%s", r->family);
        int user = r->user;
        uint64_t at = r->auth_time;
        token_response(c, acct, user, scope, family, at, NULL); /* may realloc rtoks */
    } else if (strcmp(gt, "client_credentials") == 0) {
        const char *sc = kvget(kv, n, "scope");
        char scope[1024] = "";
        if (sc && *sc) {
            if (!scope_valid(sc) || scope_has_prefix(sc, "openid") || scope_has(sc, "profile") ||
                scope_has(sc, "email") || scope_has(sc, "offline_access")) {
                oauth_json_error(c, 400, "invalid_scope",
                                 "client_credentials may only request BoldSign API scopes.");
                goto out;
            }
            snprintf(scope, sizeof scope, "%s", sc);
        } else {
            size_t o = 0;
            for (int i = 0; bs_api_scopes[i]; i++) {
                int w =
                    snprintf(scope + o, sizeof scope - o, "%s%s", o ? " " : "", bs_api_scopes[i]);
                if (w < 0 || (size_t)w >= sizeof scope - o) break;
                o += (size_t)w;
            }
        }
        char family[40];
        sbx_token("", 16, family, sizeof family);
        token_response(c, acct, -1, scope, family, c->now_ms / 1000, NULL);
    } else {
        oauth_json_error(c, 400, "unsupported_grant_type", NULL);
    }
out:
    sbx_kv_free(kv, n);
}

static void h_revocation(bs_ctx *c)
{
    snprintf(c->req->route, sizeof c->req->route, "POST /account/connect/revocation");
    snprintf(c->req->auth_scheme, sizeof c->req->auth_scheme, "client_secret");
    if (strcmp(c->req->method, "POST") != 0) {
        empty(c, 405);
        return;
    }
    sbx_kv *kv = NULL;
    size_t n = 0;
    if (!starts_ci(c->req->content_type, "application/x-www-form-urlencoded") ||
        sbx_parse_form(c->req->body, c->req->body_len, &kv, &n) < 0) {
        oauth_json_error(c, 400, "invalid_request", "Use application/x-www-form-urlencoded.");
        return;
    }
    int acct = client_auth(c, kv, n);
    if (acct < 0) goto out;
    const char *tok = kvget(kv, n, "token");
    if (!tok || !*tok) {
        oauth_json_error(c, 400, "invalid_request", "token is required.");
        goto out;
    }
    bs_state *st = c->st;
    int done = 0;
    for (int i = 0; i < st->nrtoks && !done; i++)
        if (strcmp(st->rtoks[i].tok, tok) == 0 && st->rtoks[i].acct == acct) {
            revoke_family(st, st->rtoks[i].family);
            done = 1;
        }
    if (!done && strchr(tok, '.')) {
        bs_key *k = region_key(c->region);
        cJSON *p = k ? jwt_verify(k, tok) : NULL;
        const cJSON *jti = cJSON_GetObjectItemCaseSensitive(p, "jti");
        if (cJSON_IsString(jti)) {
            bs_atok *t = find_atok(st, jti->valuestring);
            if (t && t->acct == acct) t->revoked = 1;
        }
        cJSON_Delete(p);
    }
    empty(c, 200);
out:
    sbx_kv_free(kv, n);
}

static void h_userinfo(bs_ctx *c)
{
    snprintf(c->req->route, sizeof c->req->route, "%s /account/connect/userinfo", c->req->method);
    snprintf(c->req->auth_scheme, sizeof c->req->auth_scheme, "bearer");
    const char *az = sbx_header(c->req, "Authorization");
    int user = -1;
    char scope[1024];
    int acct = -1;
    if (az && strncasecmp(az, "Bearer ", 7) == 0) {
        const char *t = az + 7;
        while (*t == ' ')
            t++;
        acct = bearer_check(c, t, &user, scope, sizeof scope);
    }
    if (acct < 0) {
        empty(c, 401);
        sbx_resp_header(c->resp, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
        return;
    }
    snprintf(c->req->account_id, sizeof c->req->account_id, "%s", c->st->acct[acct].id);
    bs_key *k = region_key(c->region);
    cJSON *p = k ? jwt_verify(k, az + 7 + strspn(az + 7, " ")) : NULL;
    int has_sub = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(p, "sub"));
    cJSON_Delete(p);
    if (!has_sub || !scope_has(scope, "openid")) {
        empty(c, 403);
        sbx_resp_header(c->resp, "WWW-Authenticate", "Bearer error=\"insufficient_scope\"");
        return;
    }
    const bs_user *u = &c->st->acct[acct].users[user];
    char nm[80];
    user_full_name(u, nm, sizeof nm);
    cJSON *o = cJSON_CreateObject();
    jadd_str(o, "sub", u->id);
    if (scope_has(scope, "email")) {
        jadd_str(o, "email", u->email);
        jadd_bool(o, "email_verified", 1);
    }
    if (scope_has(scope, "profile")) {
        jadd_str(o, "name", nm);
        jadd_str(o, "given_name", u->first);
        jadd_str(o, "family_name", u->last);
        jadd_str(o, "preferred_username", u->email);
    }
    sbx_resp_json(c->resp, 200, o);
}

static void h_discovery(bs_ctx *c)
{
    snprintf(c->req->route, sizeof c->req->route, "GET /account/.well-known/openid-configuration");
    snprintf(c->req->auth_scheme, sizeof c->req->auth_scheme, "none");
    char iss[300], u[400];
    issuer_of(c, iss, sizeof iss);
    cJSON *o = cJSON_CreateObject();
    jadd_str(o, "issuer", iss);
    snprintf(u, sizeof u, "%s/.well-known/openid-configuration/jwks", iss);
    jadd_str(o, "jwks_uri", u);
    snprintf(u, sizeof u, "%s/connect/authorize", iss);
    jadd_str(o, "authorization_endpoint", u);
    snprintf(u, sizeof u, "%s/connect/token", iss);
    jadd_str(o, "token_endpoint", u);
    snprintf(u, sizeof u, "%s/connect/userinfo", iss);
    jadd_str(o, "userinfo_endpoint", u);
    snprintf(u, sizeof u, "%s/connect/revocation", iss);
    jadd_str(o, "revocation_endpoint", u);
    cJSON *sc = cJSON_AddArrayToObject(o, "scopes_supported");
    for (int i = 0; bs_oidc_scopes[i]; i++)
        cJSON_AddItemToArray(sc, cJSON_CreateString(bs_oidc_scopes[i]));
    for (int i = 0; bs_api_scopes[i]; i++)
        cJSON_AddItemToArray(sc, cJSON_CreateString(bs_api_scopes[i]));
    static const char *const claims[] = {"sub",        "email",       "email_verified",     "name",
                                         "given_name", "family_name", "preferred_username", NULL};
    cJSON *cl = cJSON_AddArrayToObject(o, "claims_supported");
    for (int i = 0; claims[i]; i++)
        cJSON_AddItemToArray(cl, cJSON_CreateString(claims[i]));
    static const char *const grants[] = {"authorization_code", "client_credentials",
                                         "refresh_token", NULL};
    cJSON *g = cJSON_AddArrayToObject(o, "grant_types_supported");
    for (int i = 0; grants[i]; i++)
        cJSON_AddItemToArray(g, cJSON_CreateString(grants[i]));
    cJSON *rt = cJSON_AddArrayToObject(o, "response_types_supported");
    cJSON_AddItemToArray(rt, cJSON_CreateString("code"));
    cJSON *rm = cJSON_AddArrayToObject(o, "response_modes_supported");
    cJSON_AddItemToArray(rm, cJSON_CreateString("query"));
    cJSON *ta = cJSON_AddArrayToObject(o, "token_endpoint_auth_methods_supported");
    cJSON_AddItemToArray(ta, cJSON_CreateString("client_secret_basic"));
    cJSON_AddItemToArray(ta, cJSON_CreateString("client_secret_post"));
    cJSON *ra = cJSON_AddArrayToObject(o, "revocation_endpoint_auth_methods_supported");
    cJSON_AddItemToArray(ra, cJSON_CreateString("client_secret_basic"));
    cJSON_AddItemToArray(ra, cJSON_CreateString("client_secret_post"));
    cJSON *st = cJSON_AddArrayToObject(o, "subject_types_supported");
    cJSON_AddItemToArray(st, cJSON_CreateString("public"));
    cJSON *ia = cJSON_AddArrayToObject(o, "id_token_signing_alg_values_supported");
    cJSON_AddItemToArray(ia, cJSON_CreateString("RS256"));
    cJSON *cm = cJSON_AddArrayToObject(o, "code_challenge_methods_supported");
    cJSON_AddItemToArray(cm, cJSON_CreateString("plain"));
    cJSON_AddItemToArray(cm, cJSON_CreateString("S256"));
    jadd_bool(o, "request_parameter_supported", 0);
    jadd_bool(o, "authorization_response_iss_parameter_supported", 1);
    sbx_resp_json(c->resp, 200, o);
}

static void h_jwks(bs_ctx *c)
{
    snprintf(c->req->route, sizeof c->req->route,
             "GET /account/.well-known/openid-configuration/jwks");
    snprintf(c->req->auth_scheme, sizeof c->req->auth_scheme, "none");
    bs_key *k = region_key(c->region);
    if (!k) {
        fail(c, 500, "Signing key unavailable.");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *keys = cJSON_AddArrayToObject(o, "keys");
    cJSON *j = cJSON_CreateObject();
    jadd_str(j, "kty", "RSA");
    jadd_str(j, "use", "sig");
    jadd_str(j, "kid", k->kid);
    jadd_str(j, "e", k->e);
    jadd_str(j, "n", k->n);
    jadd_str(j, "alg", "RS256");
    cJSON_AddItemToArray(keys, j);
    sbx_resp_json(c->resp, 200, o);
}

static void oauth(bs_ctx *c)
{
    const char *p = c->req->path + strlen("/account");
    const char *m = c->req->method;
    if (strcasecmp(p, "/.well-known/openid-configuration") == 0) {
        if (strcmp(m, "GET") != 0)
            empty(c, 405);
        else
            h_discovery(c);
        return;
    }
    if (strcasecmp(p, "/.well-known/openid-configuration/jwks") == 0) {
        if (strcmp(m, "GET") != 0)
            empty(c, 405);
        else
            h_jwks(c);
        return;
    }
    if (strcasecmp(p, "/connect/userinfo") == 0) {
        h_userinfo(c);
        return;
    }
    int authz = strcasecmp(p, "/connect/authorize") == 0;
    int token = strcasecmp(p, "/connect/token") == 0;
    int revoc = strcasecmp(p, "/connect/revocation") == 0;
    if (!authz && !token && !revoc) {
        snprintf(c->req->route, sizeof c->req->route, "%s %.80s", m, c->req->path);
        empty(c, 404);
        return;
    }
    /* make sure the signing key exists before taking the lock (first use costs ~250 ms) */
    if (token || revoc) region_key(c->region);
    pthread_rwlock_wrlock(&c->st->lock);
    if (authz)
        h_authorize(c);
    else if (token)
        h_token(c);
    else
        h_revocation(c);
    pthread_rwlock_unlock(&c->st->lock);
}

/* ---- the page behind an embedded sign link --------------------------------------------------- */

static void h_sign_page(bs_ctx *c)
{
    snprintf(c->req->route, sizeof c->req->route, "%s /app/document/sign", c->req->method);
    snprintf(c->req->auth_scheme, sizeof c->req->auth_scheme, "none");
    int post = strcmp(c->req->method, "POST") == 0;
    if (!post && strcmp(c->req->method, "GET") != 0) {
        empty(c, 405);
        return;
    }
    sbx_kv *kv = NULL;
    size_t nkv = 0;
    if (post && sbx_parse_form(c->req->body, c->req->body_len, &kv, &nkv) < 0) {
        html_error(c, 400, "invalid_request", "Malformed form.");
        return;
    }
    const char *did = sbx_query(c->req, "documentId", 1);
    const char *sid = sbx_query(c->req, "signerId", 1);
    const char *action = post ? kvget(kv, nkv, "action") : NULL;
    pthread_rwlock_wrlock(&c->st->lock);
    bs_account *a = NULL;
    bs_doc *d = NULL;
    for (int i = 0; i < BS_NACCT && !d; i++) {
        if (c->st->acct[i].region != c->region) continue;
        d = find_doc(&c->st->acct[i], did);
        a = &c->st->acct[i];
    }
    int si = -1;
    for (int i = 0; d && sid && i < d->nsigners; i++)
        if (strcasecmp(d->signers[i].id, sid) == 0) si = i;
    if (!d || si < 0 || !doc_visible(c, d)) {
        html_error(c, 404, "not_found", "This signing link is not valid.");
        goto out;
    }
    if (post && action && strcmp(d->status, "InProgress") == 0 && signer_turn(d, si)) {
        if (strcmp(action, "sign") == 0)
            lc_sign(a, d, si, c->now, &c->st->rt);
        else if (strcmp(action, "decline") == 0)
            lc_decline(d, si, c->now, "Declined from the signing page.", &c->st->rt);
        doc_changed(a, d);
    } else if (!post) {
        lc_view(d, si, c->now, &c->st->rt);
        doc_changed(a, d);
    }
    const bs_signer *g = &d->signers[si];
    char t[600], n[600], body[3000];
    sbx_html_escape(d->title ? d->title : "", t, sizeof t);
    sbx_html_escape(g->name ? g->name : "", n, sizeof n);
    int can = strcmp(d->status, "InProgress") == 0 && signer_turn(d, si);
    snprintf(body, sizeof body,
             "<h1>BoldSign</h1><h2 id=\"title\">%s</h2><p>Signer: <b>%s</b></p>"
             "<p>Document status: <b id=\"status\">%s</b>; your status: <b "
             "id=\"signer-status\">%s</b></p>%s",
             t, n, d->status, g->status,
             can ? "<form method=\"post\"><button name=\"action\" value=\"sign\">Sign</button> "
                   "<button name=\"action\" value=\"decline\">Decline</button></form>"
                 : "");
    html_page(c, 200, "Sign - BoldSign", body);
out:
    pthread_rwlock_unlock(&c->st->lock);
    sbx_kv_free(kv, nkv);
}

/* ---- REST dispatch --------------------------------------------------------------------------- */

typedef void (*bs_fn)(bs_ctx *c);
enum { SC_ANY = 0, SC_DOCS, SC_TPL, SC_TPLSEND, SC_USERS, SC_TEAMS, SC_SENDER };

typedef struct bs_route {
    const char *method, *path;
    bs_fn fn;
    int scope;
    int write; /* takes the state lock for writing */
} bs_route;

static const bs_route rest_routes[] = {
    {"GET", "/v1/document/list", h_doc_list, SC_DOCS, 0},
    {"GET", "/v1/document/teamlist", h_doc_teamlist, SC_DOCS, 0},
    {"GET", "/v1/document/properties", h_doc_props, SC_DOCS, 0},
    {"GET", "/v1/document/download", h_doc_download, SC_DOCS, 1},
    {"GET", "/v1/document/downloadAuditLog", h_doc_auditlog, SC_DOCS, 1},
    {"GET", "/v1/document/getEmbeddedSignLink", h_doc_signlink, SC_DOCS, 1},
    {"POST", "/v1/document/send", h_doc_send, SC_DOCS, 1},
    {"POST", "/v1/document/remind", h_doc_remind, SC_DOCS, 1},
    {"POST", "/v1/document/revoke", h_doc_revoke, SC_DOCS, 1},
    {"DELETE", "/v1/document/delete", h_doc_delete, SC_DOCS, 1},
    {"PATCH", "/v1/document/changeRecipient", h_doc_change_recipient, SC_DOCS, 1},
    {"PATCH", "/v1/document/extendExpiry", h_doc_extend, SC_DOCS, 1},
    {"GET", "/v1/template/list", h_tpl_list, SC_TPL, 0},
    {"GET", "/v1/template/properties", h_tpl_props, SC_TPL, 0},
    {"GET", "/v1/template/download", h_tpl_download, SC_TPL, 0},
    {"POST", "/v1/template/send", h_tpl_send, SC_TPLSEND, 1},
    {"DELETE", "/v1/template/delete", h_tpl_delete, SC_TPL, 1},
    {"GET", "/v1/contacts/list", h_contacts_list, SC_ANY, 0},
    {"GET", "/v1/contacts/get", h_contact_get, SC_ANY, 0},
    {"POST", "/v1/contacts/create", h_contact_create, SC_ANY, 1},
    {"PUT", "/v1/contacts/update", h_contact_update, SC_ANY, 1},
    {"DELETE", "/v1/contacts/delete", h_contact_delete, SC_ANY, 1},
    {"GET", "/v1/users/list", h_users_list, SC_USERS, 0},
    {"GET", "/v1/users/get", h_user_get, SC_USERS, 0},
    {"GET", "/v1/teams/list", h_teams_list, SC_TEAMS, 0},
    {"GET", "/v1/teams/get", h_team_get, SC_TEAMS, 0},
    {"GET", "/v1/brand/list", h_brand_list, SC_ANY, 0},
    {"GET", "/v1/brand/get", h_brand_get, SC_ANY, 0},
    {"GET", "/v1/senderIdentities/list", h_idents_list, SC_SENDER, 0},
    {"GET", "/v1/plan/apiCreditsCount", h_plan_credits, SC_ANY, 0},
};

static int scope_ok(const bs_ctx *c, int sc, const char **need)
{
    if (!c->bearer) return 1;
    switch (sc) {
    case SC_DOCS:
        *need = "BoldSign.Documents.*";
        return scope_has_prefix(c->scope, "BoldSign.Documents.");
    case SC_TPL:
        *need = "BoldSign.Templates.*";
        return scope_has_prefix(c->scope, "BoldSign.Templates.");
    case SC_TPLSEND:
        *need = "BoldSign.Templates.* or BoldSign.Documents.*";
        return scope_has_prefix(c->scope, "BoldSign.Templates.") ||
               scope_has_prefix(c->scope, "BoldSign.Documents.");
    case SC_USERS:
        *need = "BoldSign.Users.*";
        return scope_has_prefix(c->scope, "BoldSign.Users.");
    case SC_TEAMS:
        *need = "BoldSign.Teams.*";
        return scope_has_prefix(c->scope, "BoldSign.Teams.");
    case SC_SENDER:
        *need = "BoldSign.SenderIdentity.*";
        return scope_has_prefix(c->scope, "BoldSign.SenderIdentity.");
    default:
        *need = "a BoldSign API scope";
        return scope_has_prefix(c->scope, "BoldSign.");
    }
}

static void rest(bs_ctx *c)
{
    const bs_route *rt = NULL;
    const char *allow = NULL;
    for (size_t i = 0; i < sizeof rest_routes / sizeof rest_routes[0]; i++) {
        if (strcasecmp(c->req->path, rest_routes[i].path) != 0) continue;
        allow = rest_routes[i].method;
        if (strcmp(c->req->method, rest_routes[i].method) == 0) rt = &rest_routes[i];
    }
    if (!rt) {
        snprintf(c->req->route, sizeof c->req->route, "%s %.80s", c->req->method, c->req->path);
        empty(c, allow ? 405 : 404);
        if (allow) sbx_resp_header(c->resp, "Allow", allow);
        return;
    }
    snprintf(c->req->route, sizeof c->req->route, "%s %s", rt->method, rt->path);
    if (authenticate(c) < 0) return;
    unsigned lim = 0, rem = 0;
    uint64_t reset = 0;
    int ok = sbx_rate_take(c->s, "boldsign", "", c->a->id, BS_RATE_LIMIT, BS_RATE_WINDOW, &lim,
                           &rem, &reset);
    if (!ok) {
        fail(c, 429,
             "Too many requests: the rate limit of %u requests per hour for this account "
             "has been exceeded. Retry after the time given in Retry-After.",
             lim);
        rate_headers(c, lim, 0, reset);
        char ra[24];
        snprintf(ra, sizeof ra, "%llu",
                 (unsigned long long)(reset > (uint64_t)c->now ? reset - (uint64_t)c->now : 1));
        sbx_resp_header(c->resp, "Retry-After", ra);
        return;
    }
    const char *need = "";
    if (!scope_ok(c, rt->scope, &need)) {
        fail(c, 403, "The access token does not grant the scope this endpoint requires (%s).",
             need);
        rate_headers(c, lim, rem, reset);
        return;
    }
    if (rt->write)
        pthread_rwlock_wrlock(&c->st->lock);
    else
        pthread_rwlock_rdlock(&c->st->lock);
    rt->fn(c);
    pthread_rwlock_unlock(&c->st->lock);
    rate_headers(c, lim, rem, reset);
}

/* ---- provider callbacks ---------------------------------------------------------------------- */

static void bs_handle(sbx *s, sbx_req *req, sbx_resp *resp)
{
    bs_state *st = state();
    bs_ctx c;
    memset(&c, 0, sizeof c);
    c.s = s;
    c.st = st;
    c.req = req;
    c.resp = resp;
    c.region = region_index(req->region);
    c.now_ms = req->now_ms ? req->now_ms : sb_wall_ms();
    c.now = (int64_t)(c.now_ms / 1000);
    const char *path = req->path ? req->path : "/";
    if (!st || c.region < 0) {
        json_error(resp, 503, "The BoldSign emulator is not initialised.");
        return;
    }
    if (starts_ci(path, "/v1/"))
        rest(&c);
    else if (starts_ci(path, "/account/"))
        oauth(&c);
    else if (strcasecmp(path, "/app/document/sign") == 0)
        h_sign_page(&c);
    else {
        snprintf(req->route, sizeof req->route, "%s %.80s", req->method, path);
        empty(&c, 404);
    }
}

static void bs_error(sbx *s, sbx_req *req, sbx_resp *resp, int status, const char *message)
{
    (void)s;
    if (status == 401) {
        sbx_resp_bytes(resp, 401, NULL, NULL, 0);
        return;
    }
    if (req && req->path && starts_ci(req->path, "/account/")) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "error",
                                status == 429 || status == 503 ? "temporarily_unavailable"
                                : status >= 500                ? "server_error"
                                                               : "invalid_request");
        cJSON_AddStringToObject(o, "error_description", message ? message : "");
        sbx_resp_json(resp, status, o);
        return;
    }
    json_error(resp, status, message && *message ? message : "An error occurred.");
    if (status == 429) {
        char v[32];
        uint64_t reset = sbx_now() + 60;
        sbx_resp_header(resp, "X-RateLimit-Limit", "50");
        sbx_resp_header(resp, "X-RateLimit-Remaining", "0");
        snprintf(v, sizeof v, "%llu", (unsigned long long)reset);
        sbx_resp_header(resp, "X-RateLimit-Reset", v);
        sbx_resp_header(resp, "Retry-After", "60");
    }
}

static int bs_advance(sbx *s, const char *doc_id, const char *to, char *err, size_t errlen)
{
    (void)s;
    bs_state *st = state();
    if (!st || !doc_id) return 1;
    pthread_rwlock_wrlock(&st->lock);
    bs_account *a = NULL;
    bs_doc *d = NULL;
    for (int i = 0; i < BS_NACCT && !d; i++) {
        d = find_doc(&st->acct[i], doc_id);
        a = &st->acct[i];
    }
    int rc = 0;
    if (!d) {
        rc = 1;
        goto out;
    }
    int64_t now = (int64_t)sbx_now();
    d->ready_ms = 0; /* the control endpoint ends any processing window */
    if (strcmp(d->status, "InProgress") != 0) {
        snprintf(err, errlen, "the document is %s; only InProgress documents move", d->status);
        rc = -1;
        goto out;
    }
    int i = next_signer(d);
    if (strcmp(to, "viewed") == 0) {
        if (i < 0 || d->signers[i].viewed) {
            snprintf(err, errlen, "the next signer has already viewed the document");
            rc = -1;
            goto out;
        }
        lc_view(d, i, now, &st->rt);
    } else if (strcmp(to, "signed") == 0) {
        if (i < 0) {
            snprintf(err, errlen, "no signer is pending");
            rc = -1;
            goto out;
        }
        lc_sign(a, d, i, now, &st->rt);
    } else if (strcmp(to, "completed") == 0) {
        while ((i = next_signer(d)) >= 0)
            lc_sign(a, d, i, now, &st->rt);
    } else if (strcmp(to, "declined") == 0) {
        if (i < 0) {
            snprintf(err, errlen, "no signer is pending");
            rc = -1;
            goto out;
        }
        lc_decline(d, i, now, "Declined from the sandbox control endpoint.", &st->rt);
    } else if (strcmp(to, "expired") == 0) {
        lc_expire(d, now);
    } else if (strcmp(to, "revoked") == 0) {
        lc_revoke(a, d, d->sender, "Revoked from the sandbox control endpoint.", now, &st->rt);
    } else {
        snprintf(err, errlen,
                 "unknown state '%.40s' (viewed, signed, completed, declined, expired, "
                 "revoked)",
                 to ? to : "");
        rc = -1;
        goto out;
    }
    doc_changed(a, d);
out:
    pthread_rwlock_unlock(&st->lock);
    return rc;
}

static void bs_tick(sbx *s, uint64_t now_ms)
{
    bs_state *st = state();
    if (!st) return;
    unsigned step = sbx_auto_progress_ms(s);
    int64_t now = (int64_t)(now_ms / 1000);
    pthread_rwlock_wrlock(&st->lock);
    for (int ai = 0; ai < BS_NACCT; ai++) {
        bs_account *a = &st->acct[ai];
        int any = 0;
        for (int i = 0; i < a->ndocs; i++) {
            bs_doc *d = a->docs[i];
            int changed = 0;
            if (d->ready_ms && d->ready_ms <= now_ms) d->ready_ms = 0;
            if (strcmp(d->status, "Scheduled") == 0 && d->scheduled && d->scheduled <= now) {
                char nm[80];
                sender_name(a, d, nm, sizeof nm);
                d->status = "InProgress";
                for (int k = 0; k < d->nsigners; k++)
                    d->signers[k].status = "NotCompleted";
                hist_add(d, &st->rt, "Sent", nm, a->users[d->sender].email, NULL, NULL,
                         d->scheduled);
                doc_set_activity(d, d->scheduled, a->users[d->sender].email, "None");
                changed = 1;
            }
            if (strcmp(d->status, "InProgress") == 0 && d->expiry <= now) {
                lc_expire(d, d->expiry);
                changed = 1;
            }
            if (step && d->api_sent && !d->ready_ms && strcmp(d->status, "InProgress") == 0) {
                if (!d->next_step_ms) {
                    d->next_step_ms = now_ms + step;
                } else if (now_ms >= d->next_step_ms) {
                    changed |= lc_step(a, d, now, &st->rt);
                    d->next_step_ms = now_ms + step;
                }
            }
            if (changed) {
                doc_mask(a, d);
                d->dirty = 1;
                any = 1;
            }
        }
        if (any) acct_sort(a);
    }
    /* re-render a bounded number of stale list items per tick */
    int budget = 256;
    for (int ai = 0; ai < BS_NACCT && budget > 0; ai++) {
        bs_account *a = &st->acct[ai];
        for (int i = 0; i < a->ndocs && budget > 0; i++)
            if (a->docs[i]->dirty) {
                doc_touch(a, a->docs[i]);
                budget--;
            }
    }
    if (st->ncodes) prune_codes(st, now_ms);
    if (st->natoks || st->nrtoks) prune_tokens(st, now_ms);
    pthread_rwlock_unlock(&st->lock);
}

static void bs_accounts(sbx *s, cJSON *arr)
{
    bs_state *st = state();
    if (!st) return;
    for (int i = 0; i < BS_NACCT; i++) {
        const bs_account *a = &st->acct[i];
        const char *reg = bs_regions[a->region];
        char base[256], iss[300], u[400];
        sbx_base_url(s, "boldsign", reg, NULL, base, sizeof base);
        snprintf(iss, sizeof iss, "%s/account", base);
        cJSON *o = cJSON_CreateObject();
        jadd_str(o, "provider", "boldsign");
        jadd_str(o, "region", reg);
        jadd_str(o, "account_id", a->id);
        jadd_str(o, "name", a->company);
        jadd_str(o, "email", a->users[0].email);
        jadd_str(o, "user_id", a->users[0].id);
        jadd_str(o, "api_key", a->keys[0]);
        cJSON *ks = cJSON_AddArrayToObject(o, "api_keys");
        cJSON_AddItemToArray(ks, cJSON_CreateString(a->keys[0]));
        cJSON_AddItemToArray(ks, cJSON_CreateString(a->keys[1]));
        jadd_str(o, "base_url", base);
        jadd_str(o, "rate_limit", "50 requests/hour/account (override key \"boldsign\")");
        cJSON *oa = cJSON_AddObjectToObject(o, "oauth");
        jadd_str(oa, "issuer", iss);
        jadd_str(oa, "client_id", a->client_id);
        jadd_str(oa, "client_secret", a->client_secret);
        snprintf(u, sizeof u, "%s/connect/authorize", iss);
        jadd_str(oa, "authorize_url", u);
        snprintf(u, sizeof u, "%s/connect/token", iss);
        jadd_str(oa, "token_url", u);
        snprintf(u, sizeof u, "%s/connect/revocation", iss);
        jadd_str(oa, "revocation_url", u);
        snprintf(u, sizeof u, "%s/connect/userinfo", iss);
        jadd_str(oa, "userinfo_url", u);
        snprintf(u, sizeof u, "%s/.well-known/openid-configuration", iss);
        jadd_str(oa, "discovery_url", u);
        snprintf(u, sizeof u, "%s/.well-known/openid-configuration/jwks", iss);
        jadd_str(oa, "jwks_url", u);
        jadd_str(oa, "pkce", "required (S256 or plain)");
        cJSON *ru = cJSON_AddArrayToObject(oa, "redirect_uris");
        for (int k = 0; registered_redirects[k]; k++)
            cJSON_AddItemToArray(ru, cJSON_CreateString(registered_redirects[k]));
        cJSON_AddItemToArray(ru, cJSON_CreateString("http://127.0.0.1/*"));
        cJSON_AddItemToArray(ru, cJSON_CreateString("http://localhost/*"));
        cJSON_AddItemToArray(ru, cJSON_CreateString("http://[::1]/*"));
        cJSON *sc = cJSON_AddArrayToObject(oa, "scopes");
        for (int k = 0; bs_oidc_scopes[k]; k++)
            cJSON_AddItemToArray(sc, cJSON_CreateString(bs_oidc_scopes[k]));
        for (int k = 0; bs_api_scopes[k]; k++)
            cJSON_AddItemToArray(sc, cJSON_CreateString(bs_api_scopes[k]));
        cJSON *us = cJSON_AddObjectToObject(oa, "user");
        jadd_str(us, "email", a->users[0].email);
        jadd_str(us, "password", a->password);
        cJSON_AddItemToArray(arr, o);
    }
}

static void bs_fini(sbx *s)
{
    (void)s;
    state_free(state());
    sbx_boldsign.state = NULL;
}

static int bs_init(sbx *s, uint64_t seed)
{
    (void)s;
    if (sbx_boldsign.state) bs_fini(s);
    bs_state *st = calloc(1, sizeof *st);
    if (!st) return -1;
    pthread_rwlockattr_t at;
    pthread_rwlockattr_init(&at);
    pthread_rwlockattr_setkind_np(&at, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&st->lock, &at);
    pthread_rwlockattr_destroy(&at);
    st->seed = seed;
    sbx_rng_init(&st->rt, seed, "boldsign/runtime");
    int64_t base = (int64_t)(sbx_now() / 86400) * 86400;
    for (int r = 0; r < BS_NREG; r++)
        for (int k = 0; k < BS_ACCTS_PER_REGION; k++)
            if (seed_account(&st->acct[r * BS_ACCTS_PER_REGION + k], seed, r, k, base) < 0) {
                state_free(st);
                return -1;
            }
    sbx_boldsign.state = st;
    return 0;
}

sbx_provider sbx_boldsign = {
    .name = "boldsign",
    .regions = bs_regions,
    .init = bs_init,
    .handle = bs_handle,
    .error = bs_error,
    .advance = bs_advance,
    .tick = bs_tick,
    .accounts = bs_accounts,
    .fini = bs_fini,
    .state = NULL,
};
