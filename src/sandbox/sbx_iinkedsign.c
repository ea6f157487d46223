/* sbx_iinkedsign: the iinked Sign (formerly Syngrafii) emulator of signbridge-sandbox: the v1 REST
 * API, the IdentityServer-style OAuth endpoints and the signer link pages of every datacenter.
 *
 * Built from ../shared/reference/iinked-sign-api.md and ../shared/seeds/iinked-sign-api-
 * authentication.md (and the public docs they cite, https://docs.iinkedsign.com/v4/...), never
 * from signbridge's adapter.
 *
 * Hosts (one base path each; `base_url` in /_sandbox/accounts = host + "/api/v1"):
 *   /iinkedsign/us          https://sign.syngrafii.com        /iinkedsign/ca  https://sign.syngrafii.ca
 *   /iinkedsign/eu          https://sign.syngrafii.eu
 *   /iinkedsign/sandbox-us  https://sandbox.syngrafii.com     /iinkedsign/sandbox-eu  ...syngrafii.eu
 *   /iinkedsign/private/acme  https://acme.syngrafii.com (any other instance: 404 instance_not_found)
 *
 * REST endpoints emulated (base .../api/v1; auth `api_key: <key>` or `Authorization: Bearer <token>`):
 *   POST /files/upload                     VERIFIED  multipart, raw bytes, ?type=temporary&externalId=
 *   POST /packages/add                     VERIFIED  {packageId, package:null|{...}}
 *   POST /packages/update                  VERIFIED  {packageId, package:{...}} (change signer, extend
 *                                                    timeSignBy, rename, send a draft with state:"open")
 *   GET  /packages/{packageId}             VERIFIED  the package object
 *   GET  /packages/{packageId}/status      VERIFIED
 *   GET  /packages/{packageId}/data        VERIFIED
 *   POST /packages/list                    VERIFIED  {items,total,take,skip}
 *   POST /packages/rescind                 VERIFIED  {packageId}
 *   POST /packages/{packageId}/link/sign/{signerId}  VERIFIED  {packageId,name,link,type,token,timeExpires}
 *   POST /templates/list                   VERIFIED  {items,total,take,skip}
 *   POST /packages/send                    ASSUMED path (the docs only say "call the send API"): {packageId}
 *   POST /packages/delete                  ASSUMED path (implied by package_delete_retention): {packageId}
 *   GET  /packages/{packageId}/download?type=executed|cac|masterfile   ASSUMED path; application/pdf
 * OAuth (same host):
 *   GET/POST /connect/authorize            VERIFIED params (response_type, client_id, redirect_uri,
 *                                          scope, state, nonce, prompt, code_challenge[_method]); the
 *                                          page is an HTML login/consent form (or a 302 at once when
 *                                          the sandbox auto-approves)
 *   POST /connect/token                    VERIFIED for authorization_code; ASSUMED: form encoding,
 *                                          refresh_token grant (rotating, one-time use)
 *   GET  /.well-known/openid-configuration[/jwks], GET|POST /connect/userinfo   ASSUMED (IdentityServer)
 * Signer pages: GET/POST /link/{token} (what a `link` URL opens: view, sign, decline).
 *
 * Decisions and assumptions (where the public docs are silent):
 *  - POST /files/upload answers a JSON ARRAY of file objects, one per uploaded file part (the docs:
 *    "Upload one or more files", response "List of uploaded files"); each is
 *    {fileId,name,timeCreated,fileName,type,externalId}. Parts need no `name` parameter (the docs'
 *    examples carry only filename), so this file has its own lenient multipart parser. A PDF whose
 *    first KiB lacks "%PDF-" gets 400 {"error":"file_exception_pdf","message":"PDF Error: PDF header
 *    not found."}; DOCX/DOC are accepted when their magic bytes fit (and "converted").
 *  - packages/add: `state` defaults to "draft" (so a caller that wants a send must say "open");
 *    `timeSignBy` defaults to 30 days ahead; ids are GUIDs; `type` is required unless a template
 *    gives one (or state is select/add); documents are required except for select/add; signers are
 *    required for state open. Package states: draft, open, executed, expired, rescinded, select, add.
 *  - packages/list: without memberId/teamId/allMembers a caller sees its own packages (an
 *    organization key acts as the organization's administrator member); allMembers:true or another
 *    memberId needs an organization key, an admin OAuth user, or a user key with Sign Editor or
 *    Package Editor (else 403 package_not_authorized); teamId needs membership (403
 *    team_not_authorized). take defaults to 25 and is capped at 100; sortBy created (default,
 *    newest first) | modified | name | sign_by. search is a word match over the documented fields,
 *    "*" suffix = prefix match, every term must match.
 *  - Permissions: the organization API key and admin OAuth users see and change everything; a user
 *    key acts as its member: reads its own (and shared) packages, and writes need Package Editor or
 *    Sign Editor (the seeded user key has neither: every write answers 403 package_not_authorized).
 *    Another member's package reads as 404 package_not_found (the documented message says "not
 *    found or you do not have permission").
 *  - Auth failures: 401 {"error":"unauthorized","message":...} with WWW-Authenticate: Bearer; an
 *    unknown, foreign-region or foreign-instance key is 401; `X-API-Key` (or any header but
 *    `api_key`) is 401; an invalid/expired bearer token is 401 with an empty body
 *    (WWW-Authenticate: Bearer error="invalid_token", as ASP.NET's JwtBearer does). A token
 *    without the `organization` scope gets 403 scope_not_authorized.
 *  - Bodies: JSON property names are matched case-insensitively (ASP.NET); non-JSON Content-Type
 *    -> 415; an empty body -> 400 except on the two list endpoints (treated as {}).
 *  - Rate limit: none published; 120 requests / 60 s per credential (override key "iinkedsign"),
 *    429 {"error":"rate_limit","message":"Too many requests over a short period..."} with
 *    Retry-After and no X-RateLimit-* headers.
 *  - Rules: rescind only open packages; send only draft/select/add; update not after
 *    executed/expired/rescinded (update may move draft/select/add to "open" (a send) and
 *    select/add to "draft"; type changes only before sending); on an open package `signers`
 *    items must carry the signerId to change (no adding/removing), and a signer who signed cannot
 *    be changed; on a draft `signers` replaces the list; timeSignBy must be in the future (that
 *    is extend-expiry); delete refuses open packages and executed ones inside their retention (90
 *    days after execution: package_delete_retention); download type executed/cac needs an
 *    executed package (400 package_invalid_state), masterfile (audit trail) any sent package;
 *    sign links only for open packages and unsigned signers (valid 1 h). select/add packages are
 *    deleted 24 h after creation unless converted (documented), open packages past timeSignBy
 *    become expired, unused temporary uploads vanish after 24 h.
 *  - Lifecycle: nothing is asynchronous in iinked's docs, so a package is "open" at once. advance
 *    (and the auto-progress timer) acts on open packages only: viewed = the next signer opens
 *    it; signed = the next signer signs all revisions (the package executes when the last one
 *    signs); completed = every remaining signer signs; declined = the next signer declines;
 *    expired; revoked = rescinded. "Next" = first unsigned signer for Sequential, every unsigned
 *    signer otherwise.
 *  - Mapping to DESIGN.md section 2 tools: list_documents = POST /packages/list; get_document =
 *    GET /packages/{id} (or /status); get_document_history = download?type=masterfile;
 *    download_document = download?type=executed; list_templates = POST /templates/list;
 *    get_signing_link = POST /packages/{id}/link/sign/{signerId}; send_document = POST
 *    /files/upload + POST /packages/add {state:"open"}; send_from_template = POST /packages/add
 *    {templateId, signers[].templateRole}; revoke_document = POST /packages/rescind;
 *    change_signer and extend_expiry = POST /packages/update; get_account = GET
 *    /connect/userinfo (OAuth tokens only).
 *  - Signers: role "signer", type "signer", state pending|viewed|signed|declined; recipients type
 *    "cc". index/order are 0-based. Times are .NET round-trip UTC ("2025-11-06T16:07:16.19Z").
 *  - Decline: iinked Sign lets a signer decline (support.syngrafii.com "How to Decline a Signing
 *    Package"): the signer gets timeDeclined/declineMessage and the package is rescinded. advance
 *    "declined" does exactly that (the task brief assumed no decline exists; the product docs say
 *    otherwise).
 *  - OAuth: one client per host (an integrator's app registration) for every organization on it;
 *    confidential (secret in the body or HTTP Basic, not both); PKCE optional (plain/S256); codes
 *    single-use, 60 s; access tokens RS256 JWTs (typ at+jwt, 1 h) that are also looked up
 *    server-side (so they only work on their own host); refresh tokens (with offline_access) 30
 *    days, rotated on every use, a used one is invalid_grant; id_token when openid is asked.
 *    Token errors are 400 {"error":...} (IdentityServer). Redirect URIs: the seeded ones
 *    (https://claude.ai/api/mcp/auth_callback, https://chatgpt.com/connector_platform_oauth_redirect,
 *    https://oauth.pstmn.io/v1/callback) plus any http://127.0.0.1, http://localhost, http://[::1]
 *    or https://localhost URI (any port and path).
 *
 * Deliberately not emulated (no public iinked Sign API for them, and inventing endpoints would let
 * signbridge pass against behaviour the real service does not have): contacts (list/get/create/
 * update/delete), users/members and teams endpoints, account info (beyond /connect/userinfo),
 * template get by id, reminders (iinked only has automatic reminders configured per package), a
 * JSON audit trail (the MasterFile PDF is the audit trail), webhooks (/events/endpoints/set: the
 * sandbox never calls out), auto-template codes, meetings of Video Signing Rooms (a stub meeting
 * object only), embedded editor links, ID verification.
 *
 * Concurrency: one rwlock over all state (readers in parallel; writer-preferring so the 100 ms
 * tick is not starved). Each package keeps its list item pre-serialised, so packages/list is a
 * filter plus memcpy. */
#include "sandbox/sbx.h"
#include "sandbox/sbx_providers.h"

#include "core/sb_buf.h"
#include "core/sb_util.h"

#include <ctype.h>
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
#include <time.h>

/* ---- limits and defaults ------------------------------------------------------------------ */

#define IK_RATE_LIMIT 120u
#define IK_RATE_WINDOW 60u
#define IK_CODE_TTL_MS 60000ull
#define IK_ACCESS_TTL_S 3600ull
#define IK_REFRESH_TTL_S (30ull * 86400)
#define IK_LINK_TTL_MS (3600ull * 1000)
#define IK_DAY_MS (86400ull * 1000)
#define IK_RETENTION_MS (90ull * IK_DAY_MS)
#define IK_TEMP_FILE_MS IK_DAY_MS
#define IK_MAX_DOCS 15
#define IK_MAX_SIGNERS 50
#define IK_MAX_RECIPS 50
#define IK_MAX_FILE (25u * 1024 * 1024)
#define IK_MAX_UPLOAD_PARTS 16
#define IK_MAX_EVENTS 96
#define IK_MAX_NAME 200
#define IK_MAX_TEXT 4000
#define IK_MAX_EXT 8192
#define IK_DEF_TAKE 25
#define IK_MAX_TAKE 100
#define IK_NBUCKET 4096
#define IK_NHOSTS 6
#define IK_MAX_ORGS 8

static const char *const ik_regions[] = {"us", "ca", "eu", "sandbox-us", "sandbox-eu", "private", NULL};

enum { ROLE_ADMIN = 1, ROLE_SIGN_EDITOR = 2, ROLE_PACKAGE_EDITOR = 4, ROLE_TEMPLATE_EDITOR = 8 };

/* ---- data model ---------------------------------------------------------------------------- */

typedef struct ik_map_ent {
    const char *key; /* points into the value (owned by it) */
    void *val;
    struct ik_map_ent *next;
} ik_map_ent;

typedef struct ik_map {
    ik_map_ent *b[IK_NBUCKET];
    size_t n;
} ik_map;

typedef struct ik_member {
    char id[37];
    char first[24], last[24], email[96], password[32];
    int team;
    unsigned roles;
} ik_member;

typedef struct ik_team {
    char id[37];
    char name[48];
} ik_team;

typedef struct ik_folder {
    char id[37];
    char name[48];
    int member;
} ik_folder;

typedef struct ik_apikey {
    char id[37];
    char key[72];
    char name[40];
    int member;
    int org_key;
} ik_apikey;

typedef struct ik_contact {
    char first[24], last[24], email[96], mobile[20];
} ik_contact;

typedef struct ik_tsigner {
    char id[37];
    char first[24], last[24], email[96]; /* empty: a role to fill at package creation */
    char trole[32];
} ik_tsigner;

typedef struct ik_tdoc {
    char id[37];
    char file_id[37];
    char code[24];
    char name[80];
    char file_name[96];
    int pages;
} ik_tdoc;

typedef struct ik_trecip {
    char id[37];
    char first[24], last[24], email[96];
    char trole[32];
} ik_trecip;

struct ik_org;

typedef struct ik_template {
    char id[37];
    char code[24];
    struct ik_org *org;
    int member, team, folder, shared;
    uint64_t created, updated, last_used;
    char name[80];
    char desc[160];
    char ptype[24]; /* packageType */
    char type[16];  /* template | auto_template */
    ik_tdoc docs[3];
    int ndocs;
    ik_tsigner signers[4];
    int nsigners;
    ik_trecip recips[2];
    int nrecips;
} ik_template;

typedef struct ik_file {
    char id[37];
    struct ik_org *org;
    char *name, *file_name, *external_id;
    char type[16];  /* temporary */
    char ftype[8];  /* pdf | docx | doc */
    uint64_t created;
    size_t size;
    int pages;
    int used;
} ik_file;

typedef struct ik_rev {
    char id[37];
    uint64_t opened, signed_at;
} ik_rev;

typedef struct ik_doc {
    char id[37];
    char file_id[37];
    char tdoc_id[37];
    char *external_id, *name, *file_name;
    char ftype[8];
    size_t size;
    int pages;
    uint64_t uploaded;
    ik_rev *revs; /* one per signer, parallel to pkg->signers */
} ik_doc;

typedef struct ik_signer {
    char id[37];
    char tsigner_id[37];
    char *first, *last, *email, *mobile, *trole, *decline_msg;
    uint64_t created, updated, viewed, signed_at, declined;
    char link[40]; /* the signer's standing link token (status links, signLink) */
    int next;
} ik_signer;

typedef struct ik_recip {
    char id[37];
    char *first, *last, *email, *trole;
} ik_recip;

typedef struct ik_event {
    uint64_t ms;
    char *text;
} ik_event;

typedef struct ik_pkg {
    char id[37];
    struct ik_org *org;
    int member, team, folder, shared, api;
    char template_id[37];
    char key_id[37];
    char meeting_id[37];
    char type[24];
    char state[12];
    char *name, *category, *client_no, *matter_no, *description, *message, *rescind_msg,
        *reminder_msg;
    cJSON *ext; /* externalData (NULL = null) */
    uint64_t created, modified, sign_by, rescinded, executed, retention, meeting_start;
    ik_doc *docs;
    int ndocs;
    ik_signer *signers;
    int nsigners;
    ik_recip *recips;
    int nrecips;
    ik_event *ev;
    int nev;
    int gen_links;
    uint64_t last_step;
    char *item; /* cached packages/list item JSON */
    size_t item_len;
} ik_pkg;

struct ik_host;

typedef struct ik_org {
    char id[37];
    char name[64];
    char domain[48];
    char tz[40];
    struct ik_host *host;
    ik_member members[4];
    int nmembers;
    ik_team teams[2];
    ik_folder folders[3];
    int nfolders;
    ik_apikey keys[2];
    ik_contact contacts[10];
    ik_template tpls[5];
    int ntpls;
    ik_pkg **pkgs; /* creation order */
    int npkgs, cappkgs;
    ik_file **files;
    int nfiles, capfiles;
} ik_org;

typedef struct ik_host {
    const char *region;
    const char *instance; /* private instance name, else NULL */
    char client_id[48];
    char client_secret[64];
    ik_org *orgs[2];
    int norgs;
} ik_host;

enum { TK_CODE = 1, TK_ACCESS, TK_REFRESH, TK_LINK };

typedef struct ik_tok {
    int kind;
    char *tok;
    ik_host *host;
    ik_org *org;
    int member;
    uint64_t expires; /* wall ms; 0 = no expiry (standing signer links) */
    uint64_t auth_time;
    char scope[128];
    char *redirect_uri, *challenge, *nonce;
    char method[8];
    ik_pkg *pkg; /* links */
    char signer_id[37];
} ik_tok;

typedef struct ik_state {
    pthread_rwlock_t lock;
    pthread_mutex_t keymu;
    uint64_t seed;
    sbx_rng rt; /* runtime ids (deterministic per seed and request order) */
    ik_host hosts[IK_NHOSTS];
    ik_org *orgs[IK_MAX_ORGS];
    int norgs;
    ik_map pkgs, files, toks;
    uint64_t last_cleanup;
    /* the RS256 signing key (kept across resets) */
    EVP_PKEY *jwk;
    char kid[40];
    char jwk_n[400];
    char jwk_e[16];
} ik_state;

/* The signed-in member and what it may do. */
typedef struct ik_caller {
    ik_org *org;
    int member;
    int org_wide;  /* may read/filter every member's packages */
    int can_write; /* may add/update/rescind/send/delete */
    int tpl_wide;  /* may read every member's templates */
    int admin;     /* organization key or Administrator */
    const char *key_id;
} ik_caller;

/* ---- small helpers ---------------------------------------------------------------------- */

static ik_state *ik_st(void)
{
    return (ik_state *)sbx_iinkedsign.state;
}

static char *ik_dup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void ik_set(char **dst, const char *v)
{
    char *n = v ? strdup(v) : NULL;
    free(*dst);
    *dst = n;
}

static size_t ik_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)(h ^ (h >> 29)) & (IK_NBUCKET - 1);
}

static void *map_get(const ik_map *m, const char *k)
{
    for (ik_map_ent *e = m->b[ik_hash(k)]; e; e = e->next)
        if (strcmp(e->key, k) == 0) return e->val;
    return NULL;
}

static int map_put(ik_map *m, const char *k, void *v)
{
    ik_map_ent *e = malloc(sizeof *e);
    if (!e) return -1;
    size_t h = ik_hash(k);
    e->key = k;
    e->val = v;
    e->next = m->b[h];
    m->b[h] = e;
    m->n++;
    return 0;
}

static void *map_del(ik_map *m, const char *k)
{
    ik_map_ent **pp = &m->b[ik_hash(k)];
    for (; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->key, k) == 0) {
            ik_map_ent *e = *pp;
            void *v = e->val;
            *pp = e->next;
            free(e);
            m->n--;
            return v;
        }
    }
    return NULL;
}

static void map_clear(ik_map *m)
{
    for (size_t i = 0; i < IK_NBUCKET; i++) {
        ik_map_ent *e = m->b[i];
        while (e) {
            ik_map_ent *n = e->next;
            free(e);
            e = n;
        }
        m->b[i] = NULL;
    }
    m->n = 0;
}

/* .NET round-trip style UTC time with trailing zeros trimmed: 2025-11-06T16:07:16.19Z */
static void ik_time(uint64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    unsigned frac = (unsigned)(ms % 1000);
    if (!frac) {
        snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        return;
    }
    char f[4];
    snprintf(f, sizeof f, "%03u", frac);
    if (f[2] == '0') {
        f[2] = 0;
        if (f[1] == '0') f[1] = 0;
    }
    char tmp[96];
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d.%sZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, f);
    sb_strlcpy(out, tmp, cap);
}

/* ISO 8601: full RFC 3339, a date-time without zone (UTC), or a bare date. 0/-1. */
static int ik_parse_time(const char *s, uint64_t *out)
{
    if (!s) return -1;
    size_t n = strlen(s);
    if (n < 10 || n > 40) return -1;
    char buf[48];
    int64_t ms;
    if (sb_parse_rfc3339(s, &ms) == 0) goto ok;
    if (n == 10) {
        snprintf(buf, sizeof buf, "%sT00:00:00Z", s);
    } else {
        snprintf(buf, sizeof buf, "%sZ", s);
    }
    if (sb_parse_rfc3339(buf, &ms) != 0) return -1;
ok:
    if (ms < 0) return -1;
    *out = (uint64_t)ms;
    return 0;
}

static void jstr(cJSON *o, const char *k, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

/* A GUID string, or null for "" */
static void jid(cJSON *o, const char *k, const char *v)
{
    jstr(o, k, v && *v ? v : NULL);
}

static void jtime(cJSON *o, const char *k, uint64_t ms)
{
    if (!ms) {
        cJSON_AddNullToObject(o, k);
        return;
    }
    char t[40];
    ik_time(ms, t, sizeof t);
    cJSON_AddStringToObject(o, k, t);
}

/* Case-insensitive object member lookup (ASP.NET model binding ignores case). */
static const cJSON *jget(const cJSON *o, const char *k)
{
    if (!cJSON_IsObject(o)) return NULL;
    for (const cJSON *c = o->child; c; c = c->next)
        if (c->string && strcasecmp(c->string, k) == 0) return c;
    return NULL;
}

static int ik_is_guid(const char *s)
{
    if (!s || strlen(s) != 36) return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

/* Normalise a GUID to lowercase into out[37]; 0/-1. */
static int ik_guid_norm(const char *s, char out[37])
{
    if (!ik_is_guid(s)) return -1;
    for (int i = 0; i < 36; i++) out[i] = (char)tolower((unsigned char)s[i]);
    out[36] = 0;
    return 0;
}

/* A GUID derived from a base id and a salt (stable, for ids that are computed, not stored). */
static void ik_derive_guid(const char *base, const char *salt, char out[37])
{
    sbx_rng r;
    char b[128];
    snprintf(b, sizeof b, "%s/%s", base, salt);
    sbx_rng_init(&r, 0x1ed5u, b);
    sbx_rng_uuid(&r, out);
}

static void ik_rng_b64(sbx_rng *r, size_t nbytes, char *out, size_t cap)
{
    unsigned char raw[32];
    if (nbytes > sizeof raw) nbytes = sizeof raw;
    for (size_t i = 0; i < nbytes; i++) {
        if (i % 8 == 0) {
            uint64_t v = sbx_rng_next(r);
            for (size_t j = 0; j < 8 && i + j < nbytes; j++) raw[i + j] = (unsigned char)(v >> (8 * j));
        }
    }
    char enc[64];
    sb_base64url_encode(raw, nbytes, enc);
    sb_strlcpy(out, enc, cap);
}

static void ik_lower(char *s)
{
    for (; *s; s++) *s = (char)tolower((unsigned char)*s);
}

/* camelCase -> snake_case for error codes (timeSignBy -> time_sign_by). */
static void ik_snake(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (; *in && o + 2 < cap; in++) {
        if (isupper((unsigned char)*in)) {
            if (o) out[o++] = '_';
            out[o++] = (char)tolower((unsigned char)*in);
        } else {
            out[o++] = *in;
        }
    }
    out[o] = 0;
}

static int ik_email_ok(const char *e)
{
    if (!e) return 0;
    size_t n = strlen(e);
    if (n < 3 || n > 254) return 0;
    const char *at = strchr(e, '@');
    if (!at || at == e || strchr(at + 1, '@')) return 0;
    const char *dot = strchr(at + 1, '.');
    if (!dot || dot == at + 1 || dot[1] == 0) return 0;
    for (const char *p = e; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == ',' || *p == ';' || *p == '<' || *p == '>' ||
            *p == '"')
            return 0;
    return e[n - 1] != '.';
}

static int ik_utf8_ok(const char *s)
{
    return s && sb_utf8_valid(s, strlen(s));
}

/* Percent-encode for a URL query value. */
static void ik_urlenc(sb_buf *b, const char *s)
{
    static const char hx[] = "0123456789ABCDEF";
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            sb_buf_append(b, s, 1);
        } else {
            char e[3] = {'%', hx[c >> 4], hx[c & 15]};
            sb_buf_append(b, e, 3);
        }
    }
}

/* ---- responses ---------------------------------------------------------------------------- */

static void ik_err(sbx_resp *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void ik_err(sbx_resp *r, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", code);
    cJSON_AddStringToObject(o, "message", msg);
    sbx_resp_json(r, status, o);
}

static const char IK_RATE_MSG[] =
    "Too many requests over a short period of time from the same IP address or API Key. Please "
    "slow down and retry later.";

static const char *ik_status_code(int status)
{
    switch (status) {
    case 400: return "request_invalid";
    case 401: return "unauthorized";
    case 403: return "not_authorized";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 408: return "request_timeout";
    case 409: return "request_conflict";
    case 413: return "request_too_large";
    case 415: return "request_invalid_content_type";
    case 429: return "rate_limit";
    case 502: return "server_bad_gateway";
    case 503: return "server_unavailable";
    case 504: return "server_timeout";
    default: return status >= 500 ? "server_exception" : "request_invalid";
    }
}

/* The provider's error format for injected faults and rate limits. */
static void ik_error(sbx *s, sbx_req *req, sbx_resp *resp, int status, const char *message)
{
    (void)s;
    (void)req;
    if (status == 429) {
        ik_err(resp, 429, "rate_limit", "%s", message && *message ? message : IK_RATE_MSG);
        sbx_resp_header(resp, "Retry-After", "60");
        return;
    }
    ik_err(resp, status, ik_status_code(status), "%s",
           message && *message ? message : "An error occurred while processing the request.");
}

/* ---- PDF generation ------------------------------------------------------------------------- */

/* Append s to a PDF string literal: ( ) \ escaped, anything outside printable ASCII -> '?'. */
static void pdf_text(sb_buf *b, const char *s, size_t max)
{
    size_t n = 0;
    for (; s && *s && n < max; s++, n++) {
        unsigned char c = (unsigned char)*s;
        if (c == '(' || c == ')' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sb_buf_append(b, e, 2);
        } else if (c >= 0x20 && c < 0x7f) {
            sb_buf_append(b, s, 1);
        } else if (c >= 0xc0 || c < 0x80) {
            sb_buf_append(b, "?", 1); /* one '?' per UTF-8 sequence */
        }
    }
}

/* A small, valid one-page PDF (correct xref offsets) showing title and lines. */
static void ik_pdf(sb_buf *out, const char *title, const char *const *lines, size_t n)
{
    sb_buf content;
    sb_buf_init(&content, 1u << 20);
    sb_buf_puts(&content, "BT /F1 16 Tf 56 790 Td (");
    pdf_text(&content, title, 90);
    sb_buf_puts(&content, ") Tj /F1 10 Tf");
    for (size_t i = 0; i < n && i < 60; i++) {
        sb_buf_puts(&content, " 0 -13 Td (");
        pdf_text(&content, lines[i], 110);
        sb_buf_puts(&content, ") Tj");
    }
    sb_buf_puts(&content, " ET\n");
    size_t off[6];
    sb_buf_puts(out, "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n");
    off[1] = out->len;
    sb_buf_puts(out, "1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");
    off[2] = out->len;
    sb_buf_puts(out, "2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n");
    off[3] = out->len;
    sb_buf_puts(out, "3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources "
                     "<< /Font << /F1 5 0 R >> >> /Contents 4 0 R >>\nendobj\n");
    off[4] = out->len;
    sb_buf_printf(out, "4 0 obj\n<< /Length %zu >>\nstream\n", content.len);
    sb_buf_append(out, content.data ? content.data : "", content.len);
    sb_buf_puts(out, "endstream\nendobj\n");
    off[5] = out->len;
    sb_buf_puts(out, "5 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>\nendobj\n");
    size_t xref = out->len;
    sb_buf_puts(out, "xref\n0 6\n0000000000 65535 f \n");
    for (int i = 1; i <= 5; i++) sb_buf_printf(out, "%010zu 00000 n \n", off[i]);
    sb_buf_printf(out, "trailer\n<< /Size 6 /Root 1 0 R >>\nstartxref\n%zu\n%%%%EOF\n", xref);
    sb_buf_free(&content);
}

/* ---- multipart (lenient: parts without a `name`, as in the iinked docs' examples) ----------- */

typedef struct ik_part {
    char filename[256];
    char ctype[96];
    int has_filename;
    const char *data;
    size_t len;
} ik_part;

static const char *ik_memfind(const char *h, size_t hl, const char *nd, size_t nl)
{
    if (nl == 0 || hl < nl) return NULL;
    const char *end = h + hl - nl;
    for (const char *p = h; p <= end; p++) {
        p = memchr(p, nd[0], (size_t)(end - p) + 1);
        if (!p) return NULL;
        if (memcmp(p, nd, nl) == 0) return p;
    }
    return NULL;
}

/* Value of parameter `name` in a header value (quoted or token); 1 found, 0 not. */
static int ik_hparam(const char *v, size_t vl, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + nl < vl; i++) {
        if ((i == 0 || v[i - 1] == ';' || v[i - 1] == ' ' || v[i - 1] == '\t') &&
            strncasecmp(v + i, name, nl) == 0 && v[i + nl] == '=') {
            const char *p = v + i + nl + 1, *e = v + vl;
            size_t o = 0;
            if (p < e && *p == '"') {
                p++;
                while (p < e && *p != '"') {
                    if (*p == '\\' && p + 1 < e) p++;
                    if (o + 1 < cap) out[o++] = *p;
                    p++;
                }
            } else {
                while (p < e && *p != ';' && *p != ' ' && *p != '\t') {
                    if (o + 1 < cap) out[o++] = *p;
                    p++;
                }
            }
            out[o] = 0;
            return 1;
        }
    }
    return 0;
}

/* 0 ok, -1 malformed. Parts point into body. */
static int ik_multipart(const char *body, size_t len, const char *ct, ik_part *parts, int max,
                        int *nout)
{
    *nout = 0;
    char bnd[220];
    if (!ik_hparam(ct, strlen(ct), "boundary", bnd, sizeof bnd) || !bnd[0] || strlen(bnd) > 200)
        return -1;
    char delim[224];
    int dl = snprintf(delim, sizeof delim, "--%s", bnd);
    const char *end = body + len;
    const char *p = ik_memfind(body, len, delim, (size_t)dl);
    if (!p) return -1;
    for (;;) {
        p += dl;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') return 0;
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
            p += 2;
        else if (end - p >= 1 && p[0] == '\n')
            p += 1;
        else
            return -1;
        const char *hend = ik_memfind(p, (size_t)(end - p), "\r\n\r\n", 4);
        size_t hsep = 4;
        if (!hend) {
            hend = ik_memfind(p, (size_t)(end - p), "\n\n", 2);
            hsep = 2;
        }
        if (!hend) return -1;
        if (*nout >= max) return -2;
        ik_part *pt = &parts[*nout];
        memset(pt, 0, sizeof *pt);
        for (const char *h = p; h < hend;) {
            const char *le = memchr(h, '\n', (size_t)(hend - h));
            if (!le) le = hend;
            size_t ll = (size_t)(le - h);
            if (ll && h[ll - 1] == '\r') ll--;
            if (ll > 20 && strncasecmp(h, "Content-Disposition:", 20) == 0) {
                char fn[768];
                if (ik_hparam(h + 20, ll - 20, "filename*", fn, sizeof fn)) {
                    const char *q = strstr(fn, "''");
                    const char *enc = q ? q + 2 : fn;
                    char *dec = sbx_url_decode(enc, strlen(enc), 0);
                    if (dec) {
                        sb_strlcpy(pt->filename, dec, sizeof pt->filename);
                        free(dec);
                    }
                    pt->has_filename = 1;
                } else if (ik_hparam(h + 20, ll - 20, "filename", fn, sizeof fn)) {
                    sb_strlcpy(pt->filename, fn, sizeof pt->filename);
                    pt->has_filename = 1;
                }
            } else if (ll > 13 && strncasecmp(h, "Content-Type:", 13) == 0) {
                const char *v = h + 13;
                size_t vl = ll - 13;
                while (vl && (*v == ' ' || *v == '\t')) v++, vl--;
                if (vl >= sizeof pt->ctype) vl = sizeof pt->ctype - 1;
                memcpy(pt->ctype, v, vl);
                pt->ctype[vl] = 0;
            }
            h = le + 1;
        }
        const char *data = hend + hsep;
        const char *next = ik_memfind(data, (size_t)(end - data), delim, (size_t)dl);
        if (!next) return -1;
        const char *dend = next;
        if (dend > data && dend[-1] == '\n') dend--;
        if (dend > data && dend[-1] == '\r') dend--;
        pt->data = data;
        pt->len = (size_t)(dend - data);
        (*nout)++;
        p = next;
    }
}

/* ---- entities --------------------------------------------------------------------------------- */

static void file_free(ik_file *f)
{
    if (!f) return;
    free(f->name);
    free(f->file_name);
    free(f->external_id);
    free(f);
}

static void signer_clear(ik_signer *s)
{
    free(s->first);
    free(s->last);
    free(s->email);
    free(s->mobile);
    free(s->trole);
    free(s->decline_msg);
    memset(s, 0, sizeof *s);
}

static void pkg_free(ik_pkg *p)
{
    if (!p) return;
    for (int i = 0; i < p->ndocs; i++) {
        free(p->docs[i].external_id);
        free(p->docs[i].name);
        free(p->docs[i].file_name);
        free(p->docs[i].revs);
    }
    free(p->docs);
    for (int i = 0; i < p->nsigners; i++) signer_clear(&p->signers[i]);
    free(p->signers);
    for (int i = 0; i < p->nrecips; i++) {
        free(p->recips[i].first);
        free(p->recips[i].last);
        free(p->recips[i].email);
        free(p->recips[i].trole);
    }
    free(p->recips);
    for (int i = 0; i < p->nev; i++) free(p->ev[i].text);
    free(p->ev);
    free(p->name);
    free(p->category);
    free(p->client_no);
    free(p->matter_no);
    free(p->description);
    free(p->message);
    free(p->rescind_msg);
    free(p->reminder_msg);
    cJSON_Delete(p->ext);
    free(p->item);
    free(p);
}

static void tok_free(ik_tok *t)
{
    if (!t) return;
    free(t->tok);
    free(t->redirect_uri);
    free(t->challenge);
    free(t->nonce);
    free(t);
}

static void pkg_event(ik_pkg *p, uint64_t ms, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pkg_event(ik_pkg *p, uint64_t ms, const char *fmt, ...)
{
    if (p->nev >= IK_MAX_EVENTS) return;
    if (!p->ev) {
        p->ev = calloc(IK_MAX_EVENTS, sizeof *p->ev);
        if (!p->ev) return;
    }
    char t[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t, sizeof t, fmt, ap);
    va_end(ap);
    p->ev[p->nev].ms = ms;
    p->ev[p->nev].text = strdup(t);
    if (p->ev[p->nev].text) p->nev++;
}

static int org_add_pkg(ik_org *o, ik_pkg *p)
{
    if (o->npkgs == o->cappkgs) {
        int nc = o->cappkgs ? o->cappkgs * 2 : 64;
        ik_pkg **np = realloc(o->pkgs, (size_t)nc * sizeof *np);
        if (!np) return -1;
        o->pkgs = np;
        o->cappkgs = nc;
    }
    o->pkgs[o->npkgs++] = p;
    return 0;
}

static int org_add_file(ik_org *o, ik_file *f)
{
    if (o->nfiles == o->capfiles) {
        int nc = o->capfiles ? o->capfiles * 2 : 32;
        ik_file **nf = realloc(o->files, (size_t)nc * sizeof *nf);
        if (!nf) return -1;
        o->files = nf;
        o->capfiles = nc;
    }
    o->files[o->nfiles++] = f;
    return 0;
}

static void org_remove_file(ik_org *o, ik_file *f)
{
    for (int i = 0; i < o->nfiles; i++) {
        if (o->files[i] == f) {
            memmove(&o->files[i], &o->files[i + 1], (size_t)(o->nfiles - i - 1) * sizeof *o->files);
            o->nfiles--;
            return;
        }
    }
}

static int signer_done(const ik_signer *s)
{
    return s->signed_at != 0;
}

static int pkg_all_signed(const ik_pkg *p)
{
    if (p->nsigners == 0) return 0;
    for (int i = 0; i < p->nsigners; i++)
        if (!signer_done(&p->signers[i])) return 0;
    return 1;
}

static int pkg_is_sequential(const ik_pkg *p)
{
    return strcmp(p->type, "Sequential") == 0;
}

/* Recompute the signers' `next` flags from the state and signing progress. */
static void pkg_recompute(ik_pkg *p)
{
    int open = strcmp(p->state, "open") == 0;
    int seq = pkg_is_sequential(p), given = 0;
    for (int i = 0; i < p->nsigners; i++) {
        ik_signer *s = &p->signers[i];
        s->next = 0;
        if (!open || signer_done(s) || s->declined) continue;
        if (seq) {
            if (!given) s->next = 1;
            given = 1;
        } else {
            s->next = 1;
        }
    }
}

static int doc_executed(const ik_pkg *p, const ik_doc *d)
{
    if (p->nsigners == 0) return 0;
    for (int i = 0; i < p->nsigners; i++)
        if (!d->revs[i].signed_at) return 0;
    return 1;
}

static uint64_t doc_executed_at(const ik_pkg *p, const ik_doc *d)
{
    uint64_t m = 0;
    if (!doc_executed(p, d)) return 0;
    for (int i = 0; i < p->nsigners; i++)
        if (d->revs[i].signed_at > m) m = d->revs[i].signed_at;
    return m;
}

static int pkg_revs_signed(const ik_pkg *p)
{
    int n = 0;
    for (int d = 0; d < p->ndocs; d++)
        for (int i = 0; i < p->nsigners; i++) n += p->docs[d].revs[i].signed_at != 0;
    return n;
}

static const char *signer_state(const ik_pkg *p, const ik_signer *s)
{
    if (s->declined) return "declined";
    if (s->signed_at) return "signed";
    if (s->viewed) return "viewed";
    (void)p;
    return "pending";
}

/* (Re)allocate every document's revisions for the current signers (ids from rng). */
static int pkg_alloc_revs(ik_pkg *p, sbx_rng *r)
{
    for (int d = 0; d < p->ndocs; d++) {
        free(p->docs[d].revs);
        p->docs[d].revs = calloc((size_t)(p->nsigners ? p->nsigners : 1), sizeof(ik_rev));
        if (!p->docs[d].revs) return -1;
        for (int i = 0; i < p->nsigners; i++) sbx_rng_uuid(r, p->docs[d].revs[i].id);
    }
    return 0;
}

/* ---- JSON views ------------------------------------------------------------------------------- */

static void host_base(sbx *s, const ik_host *h, char *out, size_t cap)
{
    sbx_base_url(s, "iinkedsign", h->region, h->instance, out, cap);
}

static cJSON *pkg_list_item(const ik_pkg *p)
{
    const ik_org *o = p->org;
    cJSON *it = cJSON_CreateObject();
    cJSON_AddStringToObject(it, "packageId", p->id);
    cJSON_AddStringToObject(it, "organizationId", o->id);
    cJSON_AddStringToObject(it, "memberId", o->members[p->member].id);
    jid(it, "teamId", p->team >= 0 ? o->teams[p->team].id : NULL);
    jid(it, "folderId", p->folder >= 0 ? o->folders[p->folder].id : NULL);
    cJSON_AddBoolToObject(it, "shared", p->shared);
    jtime(it, "timeCreated", p->created);
    jtime(it, "timeLastModified", p->modified);
    jtime(it, "timeSignBy", p->sign_by);
    jstr(it, "name", p->name);
    jstr(it, "category", p->category);
    jstr(it, "clientNumber", p->client_no);
    jstr(it, "matterNumber", p->matter_no);
    jstr(it, "description", p->description);
    cJSON_AddStringToObject(it, "type", p->type);
    cJSON_AddStringToObject(it, "state", p->state);
    cJSON_AddItemToObject(it, "externalData", p->ext ? cJSON_Duplicate(p->ext, 1) : cJSON_CreateNull());
    cJSON *docs = cJSON_AddArrayToObject(it, "documents");
    for (int d = 0; d < p->ndocs; d++) {
        const ik_doc *dc = &p->docs[d];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "documentId", dc->id);
        jstr(j, "externalId", dc->external_id);
        cJSON_AddNumberToObject(j, "index", d);
        jstr(j, "name", dc->name);
        jstr(j, "fileName", dc->file_name);
        cJSON_AddBoolToObject(j, "isExecuted", doc_executed(p, dc));
        jtime(j, "timeExecuted", doc_executed_at(p, dc));
        cJSON_AddItemToArray(docs, j);
    }
    cJSON *sig = cJSON_AddArrayToObject(it, "signers");
    for (int i = 0; i < p->nsigners; i++) {
        const ik_signer *s = &p->signers[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "signerId", s->id);
        cJSON_AddNumberToObject(j, "index", i);
        jstr(j, "firstName", s->first);
        jstr(j, "lastName", s->last);
        jstr(j, "email", s->email);
        cJSON_AddStringToObject(j, "role", "signer");
        cJSON_AddStringToObject(j, "type", "signer");
        cJSON_AddBoolToObject(j, "verify", 0);
        cJSON_AddBoolToObject(j, "isVerified", 0);
        cJSON_AddBoolToObject(j, "isNext", s->next);
        cJSON_AddBoolToObject(j, "isExecuted", signer_done(s));
        jtime(j, "timeExecuted", s->signed_at);
        cJSON_AddItemToArray(sig, j);
    }
    cJSON *rc = cJSON_AddArrayToObject(it, "recipients");
    for (int i = 0; i < p->nrecips; i++) {
        const ik_recip *r = &p->recips[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "recipientId", r->id);
        jstr(j, "firstName", r->first);
        jstr(j, "lastName", r->last);
        jstr(j, "email", r->email);
        cJSON_AddStringToObject(j, "type", "cc");
        cJSON_AddItemToArray(rc, j);
    }
    cJSON_AddBoolToObject(it, "isExecuted", strcmp(p->state, "executed") == 0);
    jtime(it, "timeExecuted", p->executed);
    return it;
}

/* Re-serialise the cached list item and touch timeLastModified. Call after every change. */
static void pkg_changed(ik_pkg *p, uint64_t now)
{
    if (now) p->modified = now;
    pkg_recompute(p);
    cJSON *it = pkg_list_item(p);
    char *s = cJSON_PrintUnformatted(it);
    cJSON_Delete(it);
    free(p->item);
    p->item = s;
    p->item_len = s ? strlen(s) : 0;
}

static void link_url(const char *base, const char *tok, char *out, size_t cap)
{
    snprintf(out, cap, "%s/link/%s", base, tok);
}

static cJSON *pkg_full(const ik_pkg *p, const char *base, int with_links)
{
    const ik_org *o = p->org;
    int nrevs = p->ndocs * p->nsigners;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "packageId", p->id);
    cJSON_AddStringToObject(j, "organizationId", o->id);
    cJSON_AddStringToObject(j, "memberId", o->members[p->member].id);
    jid(j, "teamId", p->team >= 0 ? o->teams[p->team].id : NULL);
    jid(j, "folderId", p->folder >= 0 ? o->folders[p->folder].id : NULL);
    cJSON_AddBoolToObject(j, "shared", p->shared);
    jid(j, "meetingId", p->meeting_id);
    jid(j, "templateId", p->template_id);
    cJSON_AddNullToObject(j, "formId");
    jid(j, "keyId", p->key_id);
    jstr(j, "name", p->name);
    jstr(j, "category", p->category);
    jstr(j, "clientNumber", p->client_no);
    jstr(j, "matterNumber", p->matter_no);
    jstr(j, "description", p->description);
    jstr(j, "message", p->message);
    jstr(j, "rescindMessage", p->rescind_msg);
    jstr(j, "reminderMessage", p->reminder_msg);
    jtime(j, "timeCreated", p->created);
    cJSON_AddNullToObject(j, "timeReminder");
    jtime(j, "timeRetention", p->retention);
    jtime(j, "timeRescinded", p->rescinded);
    cJSON_AddNullToObject(j, "timeDeleted");
    jtime(j, "timeSignBy", p->sign_by);
    jtime(j, "timeLastModified", p->modified);
    cJSON *opt = cJSON_AddObjectToObject(j, "options");
    cJSON_AddBoolToObject(opt, "embedded", strcmp(p->state, "select") == 0 || strcmp(p->state, "add") == 0);
    cJSON_AddBoolToObject(j, "hasSecurityPassphrase", 0);
    cJSON_AddStringToObject(j, "locale", "en-US");
    cJSON_AddStringToObject(j, "timeZone", o->tz);
    cJSON *fmt = cJSON_AddObjectToObject(j, "format");
    cJSON_AddStringToObject(fmt, "locale", "en-US");
    cJSON_AddNumberToObject(j, "revisionsSigned", pkg_revs_signed(p));
    cJSON_AddNumberToObject(j, "revisionsCount", nrevs);
    cJSON_AddNullToObject(j, "restrictedType");
    cJSON_AddBoolToObject(j, "api", p->api);
    cJSON_AddStringToObject(j, "type", p->type);
    cJSON_AddStringToObject(j, "state", p->state);
    cJSON_AddItemToObject(j, "externalData", p->ext ? cJSON_Duplicate(p->ext, 1) : cJSON_CreateNull());
    cJSON_AddStringToObject(j, "version", "4.0");
    if (p->meeting_id[0]) {
        cJSON *m = cJSON_AddObjectToObject(j, "meeting");
        cJSON_AddStringToObject(m, "meetingId", p->meeting_id);
        cJSON_AddStringToObject(m, "organizationId", o->id);
        cJSON_AddStringToObject(m, "packageId", p->id);
        jtime(m, "timeStart", p->meeting_start);
        cJSON_AddStringToObject(m, "duration", "01:00:00");
        cJSON_AddBoolToObject(m, "isPrivate", 1);
        cJSON_AddStringToObject(m, "type", "video");
        cJSON_AddStringToObject(m, "state", strcmp(p->state, "open") == 0 ? "scheduled" : "closed");
    } else {
        cJSON_AddNullToObject(j, "meeting");
    }
    cJSON *docs = cJSON_AddArrayToObject(j, "documents");
    for (int d = 0; d < p->ndocs; d++) {
        const ik_doc *dc = &p->docs[d];
        cJSON *dj = cJSON_CreateObject();
        cJSON_AddStringToObject(dj, "documentId", dc->id);
        cJSON_AddStringToObject(dj, "packageId", p->id);
        jid(dj, "fileId", dc->file_id);
        cJSON_AddNullToObject(dj, "autoTemplateId");
        cJSON_AddNullToObject(dj, "autoTemplateDocumentId");
        jstr(dj, "externalId", dc->external_id);
        cJSON_AddNumberToObject(dj, "index", d);
        jstr(dj, "name", dc->name);
        jstr(dj, "fileName", dc->file_name);
        cJSON_AddStringToObject(dj, "fileType", dc->ftype);
        cJSON_AddNumberToObject(dj, "fileSize", (double)dc->size);
        cJSON_AddNumberToObject(dj, "numberPages", dc->pages);
        jtime(dj, "timeUploaded", dc->uploaded);
        jtime(dj, "timeLastModified", p->modified);
        int signed_n = 0;
        for (int i = 0; i < p->nsigners; i++) signed_n += dc->revs[i].signed_at != 0;
        cJSON_AddNumberToObject(dj, "revisionsSigned", signed_n);
        cJSON_AddNumberToObject(dj, "revisionsCount", p->nsigners);
        cJSON_AddNullToObject(dj, "description");
        cJSON_AddBoolToObject(dj, "cac", 0);
        cJSON_AddNumberToObject(dj, "cacPages", 0);
        cJSON_AddStringToObject(dj, "state", doc_executed(p, dc) ? "executed" : p->state);
        cJSON *revs = cJSON_AddArrayToObject(dj, "revisions");
        for (int i = 0; i < p->nsigners; i++) {
            const ik_rev *rv = &dc->revs[i];
            cJSON *rj = cJSON_CreateObject();
            cJSON_AddStringToObject(rj, "documentId", dc->id);
            cJSON_AddStringToObject(rj, "revisionId", rv->id);
            cJSON_AddNumberToObject(rj, "revisionNumber", i + 1);
            jid(rj, "revisionBeforeId", i > 0 ? dc->revs[i - 1].id : NULL);
            jtime(rj, "timeLastOpened", rv->opened);
            cJSON_AddStringToObject(rj, "signerId", p->signers[i].id);
            cJSON_AddBoolToObject(rj, "isSigned", rv->signed_at != 0);
            jtime(rj, "timeSigned", rv->signed_at);
            jstr(rj, "address", rv->signed_at ? "127.0.0.1" : NULL);
            cJSON_AddItemToArray(revs, rj);
        }
        cJSON_AddItemToArray(docs, dj);
    }
    cJSON *sig = cJSON_AddArrayToObject(j, "signers");
    for (int i = 0; i < p->nsigners; i++) {
        const ik_signer *s = &p->signers[i];
        cJSON *sj = cJSON_CreateObject();
        cJSON_AddStringToObject(sj, "signerId", s->id);
        cJSON_AddStringToObject(sj, "packageId", p->id);
        cJSON_AddNullToObject(sj, "memberId");
        cJSON_AddNullToObject(sj, "signerTag");
        jtime(sj, "timeCreated", s->created);
        jtime(sj, "timeDeclined", s->declined);
        jtime(sj, "timeUpdated", s->updated);
        cJSON_AddNumberToObject(sj, "index", i);
        cJSON_AddStringToObject(sj, "locale", "en-US");
        cJSON_AddBoolToObject(sj, "signCac", 0);
        cJSON_AddBoolToObject(sj, "verify", 0);
        jstr(sj, "firstName", s->first);
        jstr(sj, "lastName", s->last);
        jstr(sj, "email", s->email);
        cJSON_AddNullToObject(sj, "mobileNumberCountryCode");
        jstr(sj, "mobileNumberOriginal", s->mobile);
        jstr(sj, "mobileNumber", s->mobile);
        jstr(sj, "declineMessage", s->decline_msg);
        jstr(sj, "declineReason", s->declined ? "other" : NULL);
        cJSON_AddBoolToObject(sj, "next", s->next);
        int rs = 0;
        for (int d = 0; d < p->ndocs; d++) rs += p->docs[d].revs[i].signed_at != 0;
        cJSON_AddNumberToObject(sj, "revisionsSigned", rs);
        cJSON_AddNumberToObject(sj, "revisionsCount", p->ndocs);
        cJSON_AddStringToObject(sj, "role", "signer");
        cJSON_AddStringToObject(sj, "type", "signer");
        cJSON_AddStringToObject(sj, "state", signer_state(p, s));
        cJSON_AddNullToObject(sj, "verification");
        jstr(sj, "templateRole", s->trole);
        cJSON_AddBoolToObject(sj, "isNext", s->next);
        cJSON_AddBoolToObject(sj, "isExecuted", signer_done(s));
        jtime(sj, "timeExecuted", s->signed_at);
        if (with_links && s->link[0]) {
            char u[512];
            link_url(base, s->link, u, sizeof u);
            cJSON_AddStringToObject(sj, "signLink", u);
        }
        cJSON_AddItemToArray(sig, sj);
    }
    cJSON *rc = cJSON_AddArrayToObject(j, "recipients");
    for (int i = 0; i < p->nrecips; i++) {
        const ik_recip *r = &p->recips[i];
        cJSON *rj = cJSON_CreateObject();
        cJSON_AddStringToObject(rj, "recipientId", r->id);
        cJSON_AddStringToObject(rj, "packageId", p->id);
        jstr(rj, "firstName", r->first);
        jstr(rj, "lastName", r->last);
        jstr(rj, "email", r->email);
        jstr(rj, "templateRole", r->trole);
        cJSON_AddStringToObject(rj, "type", "cc");
        cJSON_AddItemToArray(rc, rj);
    }
    cJSON_AddBoolToObject(j, "isExecuted", strcmp(p->state, "executed") == 0);
    jtime(j, "timeExecuted", p->executed);
    return j;
}

static cJSON *pkg_status(const ik_pkg *p, const char *base)
{
    const ik_org *o = p->org;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "packageId", p->id);
    cJSON_AddStringToObject(j, "organizationId", o->id);
    cJSON_AddStringToObject(j, "memberId", o->members[p->member].id);
    jstr(j, "name", p->name);
    jtime(j, "timeSignBy", p->sign_by);
    cJSON_AddStringToObject(j, "type", p->type);
    cJSON_AddStringToObject(j, "state", p->state);
    cJSON_AddItemToObject(j, "externalData", p->ext ? cJSON_Duplicate(p->ext, 1) : cJSON_CreateNull());
    cJSON_AddBoolToObject(j, "isExecuted", strcmp(p->state, "executed") == 0);
    int links = strcmp(p->state, "open") == 0;
    char u[512];
    cJSON *docs = cJSON_AddArrayToObject(j, "documents");
    for (int d = 0; d < p->ndocs; d++) {
        const ik_doc *dc = &p->docs[d];
        cJSON *dj = cJSON_CreateObject();
        cJSON_AddStringToObject(dj, "packageId", p->id);
        cJSON_AddStringToObject(dj, "documentId", dc->id);
        jid(dj, "fileId", dc->file_id);
        jstr(dj, "externalId", dc->external_id);
        jstr(dj, "name", dc->name);
        jstr(dj, "fileName", dc->file_name);
        cJSON_AddNumberToObject(dj, "order", d);
        cJSON_AddBoolToObject(dj, "isExecuted", doc_executed(p, dc));
        cJSON *revs = cJSON_AddArrayToObject(dj, "revisions");
        for (int i = 0; i < p->nsigners; i++) {
            const ik_signer *s = &p->signers[i];
            cJSON *rj = cJSON_CreateObject();
            cJSON_AddStringToObject(rj, "revisionId", dc->revs[i].id);
            cJSON_AddStringToObject(rj, "signerId", s->id);
            if (links && s->link[0]) {
                link_url(base, s->link, u, sizeof u);
                cJSON_AddStringToObject(rj, "link", u);
            } else {
                cJSON_AddNullToObject(rj, "link");
            }
            cJSON_AddBoolToObject(rj, "isNext", s->next && !dc->revs[i].signed_at);
            cJSON_AddBoolToObject(rj, "isSigned", dc->revs[i].signed_at != 0);
            cJSON_AddItemToArray(revs, rj);
        }
        cJSON_AddItemToArray(docs, dj);
    }
    cJSON *sig = cJSON_AddArrayToObject(j, "signers");
    for (int i = 0; i < p->nsigners; i++) {
        const ik_signer *s = &p->signers[i];
        cJSON *sj = cJSON_CreateObject();
        cJSON_AddStringToObject(sj, "signerId", s->id);
        jstr(sj, "firstName", s->first);
        jstr(sj, "lastName", s->last);
        jstr(sj, "email", s->email);
        jstr(sj, "mobileNumber", s->mobile);
        cJSON_AddNumberToObject(sj, "order", i);
        cJSON *lk = cJSON_AddArrayToObject(sj, "links");
        if (links && s->link[0]) {
            link_url(base, s->link, u, sizeof u);
            for (int d = 0; d < p->ndocs; d++) {
                const ik_doc *dc = &p->docs[d];
                cJSON *l = cJSON_CreateObject();
                cJSON_AddStringToObject(l, "token", s->link);
                cJSON_AddStringToObject(l, "documentId", dc->id);
                cJSON_AddStringToObject(l, "revisionId", dc->revs[i].id);
                jstr(l, "name", dc->name);
                cJSON_AddStringToObject(l, "link", u);
                jtime(l, "timeExpires", p->sign_by);
                cJSON_AddStringToObject(l, "type", "package_sign");
                cJSON_AddBoolToObject(l, "isNext", s->next && !dc->revs[i].signed_at);
                cJSON_AddBoolToObject(l, "isSigned", dc->revs[i].signed_at != 0);
                cJSON_AddItemToArray(lk, l);
            }
        }
        cJSON_AddItemToArray(sig, sj);
    }
    return j;
}

static cJSON *pkg_data(const ik_pkg *p)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "packageId", p->id);
    jstr(j, "name", p->name);
    cJSON_AddStringToObject(j, "type", p->type);
    cJSON_AddStringToObject(j, "state", p->state);
    cJSON_AddItemToObject(j, "externalData", p->ext ? cJSON_Duplicate(p->ext, 1) : cJSON_CreateNull());
    cJSON *docs = cJSON_AddArrayToObject(j, "documents");
    for (int d = 0; d < p->ndocs; d++) {
        const ik_doc *dc = &p->docs[d];
        cJSON *dj = cJSON_CreateObject();
        cJSON_AddStringToObject(dj, "documentId", dc->id);
        cJSON_AddStringToObject(dj, "packageId", p->id);
        jstr(dj, "name", dc->name);
        jstr(dj, "fileName", dc->file_name);
        cJSON_AddStringToObject(dj, "state", doc_executed(p, dc) ? "executed" : p->state);
        cJSON *data = cJSON_AddArrayToObject(dj, "data");
        for (int i = 0; i < p->nsigners; i++) {
            const ik_rev *rv = &dc->revs[i];
            const ik_signer *s = &p->signers[i];
            if (!rv->signed_at) continue;
            char full[128], when[40], gid[37];
            snprintf(full, sizeof full, "%s %s", s->first ? s->first : "", s->last ? s->last : "");
            ik_time(rv->signed_at, when, sizeof when);
            static const char *const kinds[][2] = {{"signature", "signer_name"},
                                                   {"date", "signed_date"}};
            for (int k = 0; k < 2; k++) {
                cJSON *e = cJSON_CreateObject();
                ik_derive_guid(rv->id, kinds[k][0], gid);
                cJSON_AddStringToObject(e, "id", gid);
                char did[48];
                snprintf(did, sizeof did, "%s_%d", kinds[k][1], i + 1);
                cJSON_AddStringToObject(e, "dataId", did);
                cJSON_AddStringToObject(e, "signerId", s->id);
                cJSON_AddStringToObject(e, "source", "signer");
                cJSON_AddStringToObject(e, "type", kinds[k][0]);
                cJSON_AddStringToObject(e, "value", k == 0 ? full : when);
                cJSON_AddNumberToObject(e, "pageNumber", dc->pages > 0 ? dc->pages : 1);
                cJSON_AddItemToArray(data, e);
            }
        }
        cJSON_AddItemToArray(docs, dj);
    }
    return j;
}

static cJSON *tpl_item(const ik_template *t)
{
    const ik_org *o = t->org;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "organizationId", o->id);
    cJSON_AddStringToObject(j, "templateId", t->id);
    cJSON_AddStringToObject(j, "templateCode", t->code);
    cJSON_AddStringToObject(j, "memberId", o->members[t->member].id);
    jid(j, "teamId", t->team >= 0 ? o->teams[t->team].id : NULL);
    jid(j, "folderId", t->folder >= 0 ? o->folders[t->folder].id : NULL);
    cJSON_AddBoolToObject(j, "shared", t->shared);
    jtime(j, "timeCreated", t->created);
    jtime(j, "timeUpdated", t->updated);
    jtime(j, "timeLastUsed", t->last_used);
    cJSON_AddStringToObject(j, "name", t->name);
    cJSON_AddStringToObject(j, "description", t->desc);
    cJSON_AddStringToObject(j, "packageType", t->ptype);
    cJSON_AddStringToObject(j, "type", t->type);
    cJSON_AddStringToObject(j, "state", "active");
    cJSON *docs = cJSON_AddArrayToObject(j, "documents");
    for (int d = 0; d < t->ndocs; d++) {
        cJSON *dj = cJSON_CreateObject();
        cJSON_AddStringToObject(dj, "documentId", t->docs[d].id);
        cJSON_AddStringToObject(dj, "documentCode", t->docs[d].code);
        cJSON_AddNumberToObject(dj, "index", d);
        cJSON_AddStringToObject(dj, "name", t->docs[d].name);
        cJSON_AddStringToObject(dj, "fileName", t->docs[d].file_name);
        cJSON_AddItemToArray(docs, dj);
    }
    cJSON *sig = cJSON_AddArrayToObject(j, "signers");
    for (int i = 0; i < t->nsigners; i++) {
        const ik_tsigner *s = &t->signers[i];
        cJSON *sj = cJSON_CreateObject();
        cJSON_AddStringToObject(sj, "signerId", s->id);
        cJSON_AddNumberToObject(sj, "index", i);
        jstr(sj, "firstName", s->first[0] ? s->first : NULL);
        jstr(sj, "lastName", s->last[0] ? s->last : NULL);
        jstr(sj, "email", s->email[0] ? s->email : NULL);
        cJSON_AddStringToObject(sj, "role", "signer");
        cJSON_AddStringToObject(sj, "templateRole", s->trole);
        cJSON_AddStringToObject(sj, "type", "signer");
        cJSON_AddItemToArray(sig, sj);
    }
    cJSON *rc = cJSON_AddArrayToObject(j, "recipients");
    for (int i = 0; i < t->nrecips; i++) {
        const ik_trecip *r = &t->recips[i];
        cJSON *rj = cJSON_CreateObject();
        cJSON_AddStringToObject(rj, "recipientId", r->id);
        jstr(rj, "firstName", r->first[0] ? r->first : NULL);
        jstr(rj, "lastName", r->last[0] ? r->last : NULL);
        jstr(rj, "email", r->email[0] ? r->email : NULL);
        cJSON_AddStringToObject(rj, "templateRole", r->trole);
        cJSON_AddStringToObject(rj, "type", "cc");
        cJSON_AddItemToArray(rc, rj);
    }
    return j;
}

static cJSON *file_json(const ik_file *f)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "fileId", f->id);
    jstr(j, "name", f->name);
    jtime(j, "timeCreated", f->created);
    jstr(j, "fileName", f->file_name);
    cJSON_AddStringToObject(j, "type", f->type);
    jstr(j, "externalId", f->external_id);
    return j;
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

static void pkg_view(ik_pkg *p, int si, uint64_t now)
{
    ik_signer *s = &p->signers[si];
    if (!s->viewed) {
        s->viewed = now;
        pkg_event(p, now, "Viewed by %s %s <%s>", s->first, s->last, s->email);
    }
    for (int d = 0; d < p->ndocs; d++)
        if (!p->docs[d].revs[si].opened) p->docs[d].revs[si].opened = now;
}

static void pkg_execute(ik_pkg *p, uint64_t now)
{
    snprintf(p->state, sizeof p->state, "executed");
    p->executed = now;
    p->retention = now + IK_RETENTION_MS;
    pkg_event(p, now, "Package executed: all signers have signed");
}

static void pkg_sign(ik_pkg *p, int si, uint64_t now)
{
    ik_signer *s = &p->signers[si];
    pkg_view(p, si, now);
    s->signed_at = now;
    for (int d = 0; d < p->ndocs; d++)
        if (!p->docs[d].revs[si].signed_at) p->docs[d].revs[si].signed_at = now;
    pkg_event(p, now, "Signed by %s %s <%s>", s->first, s->last, s->email);
    if (pkg_all_signed(p)) pkg_execute(p, now);
}

static void pkg_rescind(ik_pkg *p, uint64_t now, const char *msg)
{
    snprintf(p->state, sizeof p->state, "rescinded");
    p->rescinded = now;
    if (msg) ik_set(&p->rescind_msg, msg);
    pkg_event(p, now, "Package rescinded%s%s", msg ? ": " : "", msg ? msg : "");
}

static void pkg_decline(ik_pkg *p, int si, uint64_t now, const char *msg)
{
    ik_signer *s = &p->signers[si];
    pkg_view(p, si, now);
    s->declined = now;
    s->updated = now;
    ik_set(&s->decline_msg, msg);
    pkg_event(p, now, "Declined by %s %s <%s>", s->first, s->last, s->email);
    pkg_rescind(p, now, "The package was declined by a signer.");
}

static void pkg_expire(ik_pkg *p, uint64_t now)
{
    snprintf(p->state, sizeof p->state, "expired");
    if (!p->sign_by || p->sign_by > now) p->sign_by = now;
    pkg_event(p, now, "Package expired (not signed by the sign-by date)");
}

/* The signer who acts next: first unsigned signer with `next` set (-1 if none). */
static int pkg_next_signer(const ik_pkg *p)
{
    for (int i = 0; i < p->nsigners; i++)
        if (p->signers[i].next && !signer_done(&p->signers[i])) return i;
    return -1;
}

/* ---- seed data ------------------------------------------------------------------------------ */

static const struct {
    const char *region, *instance;
    int norgs;
    const char *names[2];
    const char *domains[2];
    const char *tz;
} ik_host_desc[IK_NHOSTS] = {
    {"us", NULL, 2, {"Northwind Legal LLP", "Contoso Realty Inc."},
     {"northwind-legal.example", "contoso-realty.example"}, "Eastern Standard Time"},
    {"ca", NULL, 1, {"Maple Leaf Credit Union", NULL}, {"mapleleaf-cu.example", NULL},
     "Eastern Standard Time"},
    {"eu", NULL, 1, {"Europa Logistik GmbH", NULL}, {"europa-logistik.example", NULL},
     "Central European Standard Time"},
    {"sandbox-us", NULL, 1, {"Sandbox Developer Co (US)", NULL}, {"sandbox-us-dev.example", NULL},
     "Pacific Standard Time"},
    {"sandbox-eu", NULL, 1, {"Sandbox Developer Co (EU)", NULL}, {"sandbox-eu-dev.example", NULL},
     "GMT Standard Time"},
    {"private", "acme", 1, {"Acme Corporation", NULL}, {"acme.example", NULL},
     "Mountain Standard Time"},
};

static const char *const ik_first[] = {"Ava",   "Liam",  "Olivia", "Noah",  "Emma",  "Lucas",
                                       "Mia",   "Ethan", "Sofia",  "Mateo", "Chloe", "Arjun",
                                       "Hannah", "Kenji", "Amara", "Felix", "Ingrid", "Omar",
                                       "Priya", "Tomas"};
static const char *const ik_last[] = {"Tremblay", "Nguyen", "Schmidt", "Okafor", "Rossi",
                                      "Dubois",   "Kowalski", "Larsen", "Fraser", "Sato",
                                      "Haddad",   "Moreau", "Silva",  "Walsh",  "Novak",
                                      "Lindqvist"};
static const char *const ik_contact_domains[] = {"example.com", "example.org", "example.net",
                                                 "mail.example.com"};
static const char *const ik_doc_names[] = {
    "Mutual Non-Disclosure Agreement", "Master Services Agreement", "Employment Offer Letter",
    "Commercial Lease Renewal", "Purchase and Sale Agreement", "Loan Agreement",
    "Consulting Agreement", "Vendor Onboarding Form", "Board Resolution", "Shareholder Consent",
    "Independent Contractor Agreement", "Power of Attorney", "Mortgage Commitment",
    "Statement of Work", "Data Processing Addendum", "R\xc3\xa9siliation de bail"};
static const char *const ik_categories[] = {"Real Estate", "Employment", "Corporate", "Lending",
                                            "Procurement"};

enum { F_SOON = 1, F_OLD = 2, F_DECLINED = 4 };

typedef struct ik_plan {
    const char *state, *type;
    int nsig, nsigned, viewed, tpl, owner, ndocs, recips, flags;
} ik_plan;

static const ik_plan ik_pkg_plan[] = {
    {"draft", "concurrent", 1, 0, 0, -1, 0, 1, 0, 0},
    {"draft", "Sequential", 2, 0, 0, 1, 0, 2, 0, 0},
    {"select", "concurrent", 1, 0, 0, -1, 1, 1, 0, 0},
    {"open", "concurrent", 1, 0, 0, -1, 0, 1, 0, 0},
    {"open", "concurrent", 2, 0, 1, 0, 0, 1, 0, 0},
    {"open", "Sequential", 2, 1, 1, -1, 1, 2, 0, 0},
    {"open", "Sequential", 3, 1, 2, 2, 0, 1, 1, 0},
    {"open", "Counterpart", 3, 1, 1, -1, 2, 1, 0, 0},
    {"open", "video_closing_room", 2, 0, 0, -1, 0, 1, 0, 0},
    {"open", "Live Session", 2, 0, 0, -1, 1, 1, 0, 0},
    {"open", "concurrent", 2, 1, 1, -1, 0, 1, 0, F_SOON},
    {"open", "Sequential", 2, 0, 0, 1, 0, 2, 0, 0},
    {"open", "concurrent", 1, 0, 1, -1, 2, 1, 1, 0},
    {"executed", "concurrent", 1, 1, 1, -1, 0, 1, 0, 0},
    {"executed", "Sequential", 2, 2, 2, -1, 1, 2, 0, 0},
    {"executed", "Sequential", 3, 3, 3, 2, 0, 1, 1, 0},
    {"executed", "Counterpart", 2, 2, 2, -1, 2, 1, 0, 0},
    {"executed", "concurrent", 1, 1, 1, 0, 0, 1, 0, F_OLD},
    {"expired", "concurrent", 1, 0, 0, -1, 0, 1, 0, 0},
    {"expired", "Sequential", 2, 1, 1, -1, 1, 1, 0, 0},
    {"rescinded", "concurrent", 2, 0, 1, -1, 0, 1, 0, 0},
    {"rescinded", "Sequential", 2, 0, 1, -1, 2, 1, 0, F_DECLINED},
    {"rescinded", "concurrent", 1, 0, 0, -1, 1, 1, 0, 0},
    {"open", "concurrent", 2, 0, 0, -1, 3, 1, 0, 0},
    {"draft", "concurrent", 1, 0, 0, -1, 3, 1, 0, 0},
    {"open", "Sequential", 2, 0, 1, -1, 0, 1, 0, 0},
    {"open", "concurrent", 1, 0, 0, 3, 0, 1, 0, 0},
    {"executed", "concurrent", 2, 2, 2, 0, 0, 1, 0, 0},
    {"add", "concurrent", 1, 0, 0, -1, 2, 1, 0, 0},
};
#define IK_NPLAN ((int)(sizeof ik_pkg_plan / sizeof ik_pkg_plan[0]))

static const struct {
    const char *name, *desc, *ptype, *type;
    int member, shared, team, ndocs;
    const char *docs[3];
    int nroles;
    const char *roles[4];
    int named0;
    const char *cc;
} ik_tpl_plan[] = {
    {"Mutual NDA", "Two-way confidentiality agreement", "concurrent", "template", 0, 1, 0, 1,
     {"Mutual Non-Disclosure Agreement"}, 2, {"Disclosing Party", "Receiving Party"}, 0, NULL},
    {"Employment Offer", "Offer letter and confidentiality undertaking", "Sequential", "template",
     0, 1, 1, 2, {"Offer Letter", "Confidentiality Undertaking"}, 2, {"Employer", "Candidate"}, 1,
     NULL},
    {"Service Agreement", "Master services agreement with a witness", "Sequential", "template", 1,
     1, 0, 1, {"Master Services Agreement"}, 3, {"Client", "Provider", "Witness"}, 0, "Legal"},
    {"Invoice Approval", "Auto-template for supplier invoices", "concurrent", "auto_template", 0,
     1, -1, 1, {"Supplier Invoice"}, 1, {"Approver"}, 0, NULL},
    {"Residential Lease", "Personal lease template", "concurrent", "template", 1, 0, -1, 1,
     {"Residential Lease"}, 2, {"Tenant", "Landlord"}, 0, NULL},
};

static void slug_file(const char *name, const char *ext, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = name; *p && o + 8 < cap; p++) {
        unsigned char c = (unsigned char)*p;
        if (isalnum(c))
            out[o++] = (char)tolower(c);
        else if (o && out[o - 1] != '-')
            out[o++] = '-';
    }
    while (o && out[o - 1] == '-') o--;
    snprintf(out + o, cap - o, ".%s", ext);
}

static ik_file *file_new(ik_state *st, ik_org *o, sbx_rng *r, const char *name, const char *fname,
                         const char *ftype, size_t size, int pages, uint64_t created, int used)
{
    ik_file *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    sbx_rng_uuid(r, f->id);
    f->org = o;
    f->name = ik_dup(name);
    f->file_name = ik_dup(fname);
    snprintf(f->type, sizeof f->type, "temporary");
    snprintf(f->ftype, sizeof f->ftype, "%s", ftype);
    f->size = size;
    f->pages = pages;
    f->created = created;
    f->used = used;
    if (org_add_file(o, f) < 0 || map_put(&st->files, f->id, f) < 0) {
        org_remove_file(o, f);
        file_free(f);
        return NULL;
    }
    return f;
}

static int link_register(ik_state *st, ik_pkg *p, const ik_signer *s, const char *tok,
                         uint64_t expires)
{
    ik_tok *t = calloc(1, sizeof *t);
    if (!t) return -1;
    t->kind = TK_LINK;
    t->tok = strdup(tok);
    t->pkg = p;
    t->expires = expires;
    snprintf(t->signer_id, sizeof t->signer_id, "%s", s->id);
    if (!t->tok || map_put(&st->toks, t->tok, t) < 0) {
        tok_free(t);
        return -1;
    }
    return 0;
}

static void link_unregister(ik_state *st, const char *tok)
{
    if (!tok || !tok[0]) return;
    ik_tok *t = map_get(&st->toks, tok);
    if (t && t->kind == TK_LINK) {
        map_del(&st->toks, tok);
        tok_free(t);
    }
}

/* A new standing link token for a signer (registered). */
static void signer_new_link(ik_state *st, ik_pkg *p, ik_signer *s, sbx_rng *r)
{
    link_unregister(st, s->link);
    ik_rng_b64(r, 16, s->link, sizeof s->link);
    if (link_register(st, p, s, s->link, 0) < 0) s->link[0] = 0;
}

static void seed_template(ik_org *o, sbx_rng *r, int ti, uint64_t now)
{
    ik_template *t = &o->tpls[ti];
    memset(t, 0, sizeof *t);
    sbx_rng_uuid(r, t->id);
    char hx[9];
    sbx_rng_hex(r, 4, hx);
    snprintf(t->code, sizeof t->code, "T-%s", hx);
    t->org = o;
    t->member = ik_tpl_plan[ti].member;
    t->team = ik_tpl_plan[ti].team;
    t->folder = ti == 0 ? 0 : -1;
    t->shared = ik_tpl_plan[ti].shared;
    t->created = now - (uint64_t)(300 - ti * 20) * IK_DAY_MS;
    t->updated = t->created + (uint64_t)(ti + 1) * 3 * IK_DAY_MS;
    t->last_used = now - (uint64_t)(ti + 1) * IK_DAY_MS;
    snprintf(t->name, sizeof t->name, "%s", ik_tpl_plan[ti].name);
    snprintf(t->desc, sizeof t->desc, "%s", ik_tpl_plan[ti].desc);
    snprintf(t->ptype, sizeof t->ptype, "%s", ik_tpl_plan[ti].ptype);
    snprintf(t->type, sizeof t->type, "%s", ik_tpl_plan[ti].type);
    t->ndocs = ik_tpl_plan[ti].ndocs;
    for (int d = 0; d < t->ndocs; d++) {
        ik_tdoc *td = &t->docs[d];
        sbx_rng_uuid(r, td->id);
        sbx_rng_uuid(r, td->file_id);
        sbx_rng_hex(r, 3, hx);
        snprintf(td->code, sizeof td->code, "D-%s", hx);
        snprintf(td->name, sizeof td->name, "%s", ik_tpl_plan[ti].docs[d]);
        slug_file(td->name, "pdf", td->file_name, sizeof td->file_name);
        td->pages = 1 + (int)sbx_rng_range(r, 6);
    }
    t->nsigners = ik_tpl_plan[ti].nroles;
    for (int i = 0; i < t->nsigners; i++) {
        ik_tsigner *s = &t->signers[i];
        sbx_rng_uuid(r, s->id);
        snprintf(s->trole, sizeof s->trole, "%s", ik_tpl_plan[ti].roles[i]);
        if (i == 0 && ik_tpl_plan[ti].named0) {
            const ik_member *m = &o->members[0];
            snprintf(s->first, sizeof s->first, "%s", m->first);
            snprintf(s->last, sizeof s->last, "%s", m->last);
            snprintf(s->email, sizeof s->email, "%s", m->email);
        }
    }
    if (ik_tpl_plan[ti].cc) {
        t->nrecips = 1;
        sbx_rng_uuid(r, t->recips[0].id);
        snprintf(t->recips[0].trole, sizeof t->recips[0].trole, "%s", ik_tpl_plan[ti].cc);
    }
}

static int seed_pkg(ik_state *st, ik_org *o, sbx_rng *r, int i, uint64_t now)
{
    const ik_plan *pl = &ik_pkg_plan[i];
    const ik_template *t = pl->tpl >= 0 ? &o->tpls[pl->tpl] : NULL;
    ik_pkg *p = calloc(1, sizeof *p);
    if (!p) return -1;
    sbx_rng_uuid(r, p->id);
    p->org = o;
    p->member = pl->owner;
    p->team = o->members[pl->owner].team;
    p->folder = pl->owner == 0 ? (i % 4 == 0 ? 0 : (i % 4 == 2 ? 1 : -1))
                               : (pl->owner == 1 && i % 3 == 0 ? 2 : -1);
    p->shared = i % 5 == 0;
    p->api = i % 2 == 0;
    if (p->api) snprintf(p->key_id, sizeof p->key_id, "%s", o->keys[0].id);
    snprintf(p->type, sizeof p->type, "%s", t ? t->ptype : pl->type);
    int nsig = t ? t->nsigners : pl->nsig;
    int ndocs = t ? t->ndocs : pl->ndocs;
    const ik_contact *cp = &o->contacts[(i * 3 + 1) % 10];
    char nm[160];
    const char *base = t ? t->name
                         : ik_doc_names[(size_t)(i * 7 + (int)sbx_rng_range(r, 3)) %
                                        (sizeof ik_doc_names / sizeof ik_doc_names[0])];
    snprintf(nm, sizeof nm, "%s - %s", base, cp->last);
    p->name = ik_dup(nm);
    if (t) snprintf(p->template_id, sizeof p->template_id, "%s", t->id);
    int embedded = !strcmp(pl->state, "select") || !strcmp(pl->state, "add");
    p->created = embedded ? now - (uint64_t)(2 + i % 5) * 3600 * 1000ull
                 : (pl->flags & F_OLD) ? now - 210 * IK_DAY_MS
                                     : now - (uint64_t)(44 - i) * IK_DAY_MS -
                                           sbx_rng_range(r, 12 * 3600 * 1000ull);
    if (o == o->host->orgs[0]) {
        char b[32];
        snprintf(b, sizeof b, "C-%04d", 1000 + i * 13);
        p->client_no = ik_dup(b);
        snprintf(b, sizeof b, "M-%05d", 20000 + i * 37);
        p->matter_no = ik_dup(b);
    }
    p->category = ik_dup(ik_categories[(size_t)i % (sizeof ik_categories / sizeof ik_categories[0])]);
    snprintf(nm, sizeof nm, "Demo package %d (%s, %s)", i + 1, pl->state, p->type);
    p->description = ik_dup(nm);
    if (strcmp(pl->state, "draft") != 0 && !embedded)
        p->message = ik_dup("Please review and sign the attached documents.");
    if (i % 4 == 1) {
        p->ext = cJSON_CreateObject();
        snprintf(nm, sizeof nm, "OPP-%04d", 3100 + i);
        cJSON_AddStringToObject(p->ext, "crmId", nm);
    }
    /* documents */
    p->docs = calloc((size_t)ndocs, sizeof *p->docs);
    if (!p->docs) goto fail;
    p->ndocs = ndocs;
    for (int d = 0; d < ndocs; d++) {
        ik_doc *dc = &p->docs[d];
        char fname[128];
        const char *dname = t ? t->docs[d].name : (d == 0 ? base : "Schedule A");
        slug_file(dname, "pdf", fname, sizeof fname);
        sbx_rng_uuid(r, dc->id);
        dc->name = ik_dup(dname);
        dc->file_name = ik_dup(fname);
        snprintf(dc->ftype, sizeof dc->ftype, "pdf");
        dc->size = 18000 + (size_t)sbx_rng_range(r, 90000);
        dc->pages = t ? t->docs[d].pages : 1 + (int)sbx_rng_range(r, 8);
        dc->uploaded = p->created - 600000;
        if (t) {
            snprintf(dc->file_id, sizeof dc->file_id, "%s", t->docs[d].file_id);
            snprintf(dc->tdoc_id, sizeof dc->tdoc_id, "%s", t->docs[d].id);
        } else {
            ik_file *f = file_new(st, o, r, dname, fname, "pdf", dc->size, dc->pages, dc->uploaded, 1);
            if (!f) goto fail;
            snprintf(dc->file_id, sizeof dc->file_id, "%s", f->id);
        }
    }
    /* signers */
    p->signers = calloc((size_t)nsig, sizeof *p->signers);
    if (!p->signers) goto fail;
    p->nsigners = nsig;
    for (int k = 0; k < nsig; k++) {
        ik_signer *s = &p->signers[k];
        sbx_rng_uuid(r, s->id);
        const ik_contact *c = &o->contacts[(i + k * 3) % 10];
        if (t && t->signers[k].email[0]) {
            s->first = ik_dup(t->signers[k].first);
            s->last = ik_dup(t->signers[k].last);
            s->email = ik_dup(t->signers[k].email);
        } else {
            s->first = ik_dup(c->first);
            s->last = ik_dup(c->last);
            s->email = ik_dup(c->email);
            if (k == 0 && i % 3 == 0) s->mobile = ik_dup(c->mobile);
        }
        if (t) {
            s->trole = ik_dup(t->signers[k].trole);
            snprintf(s->tsigner_id, sizeof s->tsigner_id, "%s", t->signers[k].id);
        }
        s->created = s->updated = p->created;
        signer_new_link(st, p, s, r);
    }
    if (pl->recips) {
        p->recips = calloc(1, sizeof *p->recips);
        if (!p->recips) goto fail;
        p->nrecips = 1;
        const ik_contact *c = &o->contacts[(i + 1) % 10];
        sbx_rng_uuid(r, p->recips[0].id);
        p->recips[0].first = ik_dup(c->first);
        p->recips[0].last = ik_dup(c->last);
        p->recips[0].email = ik_dup(c->email);
        if (t && t->nrecips) p->recips[0].trole = ik_dup(t->recips[0].trole);
    }
    if (pkg_alloc_revs(p, r) < 0) goto fail;
    if (strcmp(pl->type, "video_closing_room") == 0) {
        sbx_rng_uuid(r, p->meeting_id);
        p->meeting_start = now + 3 * IK_DAY_MS;
    }
    /* timeline */
    pkg_event(p, p->created, "Package created by %s %s", o->members[p->member].first,
              o->members[p->member].last);
    uint64_t sent = p->created + 3600 * 1000ull;
    int is_draft = strcmp(pl->state, "draft") == 0 || embedded;
    if (is_draft) {
        snprintf(p->state, sizeof p->state, "%s", pl->state);
        p->sign_by = now + (uint64_t)(20 + sbx_rng_range(r, 20)) * IK_DAY_MS;
        p->modified = p->created;
    } else {
        snprintf(p->state, sizeof p->state, "open");
        pkg_recompute(p);
        pkg_event(p, sent, "Package sent to %d signer%s", nsig, nsig == 1 ? "" : "s");
        int all_sign = strcmp(pl->state, "executed") == 0;
        for (int k = 0; k < (all_sign ? nsig : pl->viewed) && k < nsig; k++)
            pkg_view(p, k, sent + (uint64_t)(k + 1) * 2 * 3600 * 1000ull);
        for (int k = 0; k < (all_sign ? nsig : pl->nsigned) && k < nsig; k++)
            pkg_sign(p, k, sent + (uint64_t)(k + 1) * 3 * 3600 * 1000ull);
        uint64_t last = sent + (uint64_t)(pl->nsigned + 1) * 3 * 3600 * 1000ull;
        if (strcmp(pl->state, "open") == 0) {
            p->sign_by = (pl->flags & F_SOON) ? now + 2 * IK_DAY_MS
                                              : now + (uint64_t)(7 + sbx_rng_range(r, 24)) * IK_DAY_MS;
        } else if (strcmp(pl->state, "executed") == 0) {
            p->sign_by = p->created + 30 * IK_DAY_MS;
        } else if (strcmp(pl->state, "expired") == 0) {
            p->sign_by = now - (uint64_t)(1 + sbx_rng_range(r, 5)) * IK_DAY_MS;
            pkg_expire(p, p->sign_by);
            last = p->sign_by;
        } else if (strcmp(pl->state, "rescinded") == 0) {
            p->sign_by = p->created + 30 * IK_DAY_MS;
            if (pl->flags & F_DECLINED)
                pkg_decline(p, 0, last, "The fee schedule does not match what we agreed.");
            else
                pkg_rescind(p, last, i % 2 ? NULL : "Superseded by a corrected version.");
        }
        p->modified = p->executed ? p->executed : last;
        if (p->modified > now) p->modified = now;
    }
    p->last_step = now;
    pkg_changed(p, 0);
    if (org_add_pkg(o, p) < 0 || map_put(&st->pkgs, p->id, p) < 0) goto fail_unlinked;
    return 0;
fail:
    pkg_free(p);
    return -1;
fail_unlinked:
    for (int k = 0; k < p->nsigners; k++) link_unregister(st, p->signers[k].link);
    pkg_free(p);
    return -1;
}

static void pick_name(sbx_rng *r, int salt, char *first, size_t fc, char *last, size_t lc)
{
    size_t nf = sizeof ik_first / sizeof ik_first[0], nl = sizeof ik_last / sizeof ik_last[0];
    snprintf(first, fc, "%s", ik_first[(sbx_rng_range(r, nf) + (size_t)salt * 7) % nf]);
    snprintf(last, lc, "%s", ik_last[(sbx_rng_range(r, nl) + (size_t)salt * 5) % nl]);
}

static int seed_org(ik_state *st, ik_org *o, int hi, int oi, uint64_t now)
{
    sbx_rng r;
    char stream[96];
    snprintf(stream, sizeof stream, "iinkedsign/%s/%s/%d", ik_host_desc[hi].region,
             ik_host_desc[hi].instance ? ik_host_desc[hi].instance : "", oi);
    sbx_rng_init(&r, st->seed, stream);
    sbx_rng_uuid(&r, o->id);
    snprintf(o->name, sizeof o->name, "%s", ik_host_desc[hi].names[oi]);
    snprintf(o->domain, sizeof o->domain, "%s", ik_host_desc[hi].domains[oi]);
    snprintf(o->tz, sizeof o->tz, "%s", ik_host_desc[hi].tz);
    static const unsigned roles[4] = {
        ROLE_ADMIN | ROLE_SIGN_EDITOR | ROLE_PACKAGE_EDITOR | ROLE_TEMPLATE_EDITOR,
        ROLE_PACKAGE_EDITOR | ROLE_TEMPLATE_EDITOR, ROLE_SIGN_EDITOR, 0};
    static const int teams[4] = {0, 0, 1, 1};
    o->nmembers = 4;
    for (int m = 0; m < 4; m++) {
        ik_member *mb = &o->members[m];
        sbx_rng_uuid(&r, mb->id);
        pick_name(&r, m, mb->first, sizeof mb->first, mb->last, sizeof mb->last);
        char em[sizeof mb->email];
        snprintf(em, sizeof em, "%s.%s@%s", mb->first, mb->last, o->domain);
        ik_lower(em);
        sb_strlcpy(mb->email, em, sizeof mb->email);
        char hx[13];
        sbx_rng_hex(&r, 6, hx);
        snprintf(mb->password, sizeof mb->password, "Sbx-%s!", hx);
        mb->roles = roles[m];
        mb->team = teams[m];
    }
    static const char *const team_names[2] = {"Commercial", "Private Client"};
    for (int t = 0; t < 2; t++) {
        sbx_rng_uuid(&r, o->teams[t].id);
        snprintf(o->teams[t].name, sizeof o->teams[t].name, "%s", team_names[t]);
    }
    static const char *const folder_names[3] = {"Clients 2025", "Archive", "HR"};
    static const int folder_owner[3] = {0, 0, 1};
    o->nfolders = 3;
    for (int f = 0; f < 3; f++) {
        sbx_rng_uuid(&r, o->folders[f].id);
        snprintf(o->folders[f].name, sizeof o->folders[f].name, "%s", folder_names[f]);
        o->folders[f].member = folder_owner[f];
    }
    for (int k = 0; k < 2; k++) {
        ik_apikey *ak = &o->keys[k];
        char hx[49];
        sbx_rng_uuid(&r, ak->id);
        sbx_rng_hex(&r, 24, hx);
        snprintf(ak->key, sizeof ak->key, "iks_%s", hx);
        ak->org_key = k == 0;
        ak->member = k == 0 ? 0 : 3;
        snprintf(ak->name, sizeof ak->name, "%s", k == 0 ? "Integration (organization key)"
                                                          : "Reporting (user key)");
    }
    for (int c = 0; c < 10; c++) {
        ik_contact *ct = &o->contacts[c];
        pick_name(&r, c + 11, ct->first, sizeof ct->first, ct->last, sizeof ct->last);
        char em[sizeof ct->email];
        snprintf(em, sizeof em, "%s.%s%d@%s", ct->first, ct->last, c,
                 ik_contact_domains[(size_t)c % 4]);
        ik_lower(em);
        sb_strlcpy(ct->email, em, sizeof ct->email);
        snprintf(ct->mobile, sizeof ct->mobile, "+1555010%04u", (unsigned)sbx_rng_range(&r, 10000));
    }
    o->ntpls = (int)(sizeof ik_tpl_plan / sizeof ik_tpl_plan[0]);
    for (int t = 0; t < o->ntpls; t++) seed_template(o, &r, t, now);
    static const char *const uploads[3][2] = {
        {"Purchase Order 4471.pdf", "pdf"}, {"Board Minutes.pdf", "pdf"}, {"Offer Draft.docx", "docx"}};
    for (int u = 0; u < 3; u++) {
        char fn[64];
        snprintf(fn, sizeof fn, "%s", uploads[u][0]);
        if (!file_new(st, o, &r, fn, fn, uploads[u][1], 24000 + (size_t)u * 5000, 2 + u,
                      now - (uint64_t)(u + 1) * 3600 * 1000ull, 0))
            return -1;
    }
    for (int i = 0; i < IK_NPLAN; i++)
        if (seed_pkg(st, o, &r, i, now) < 0) return -1;
    return 0;
}

static void ik_fini(sbx *s);

static int ik_init(sbx *s, uint64_t seed)
{
    if (sbx_iinkedsign.state) ik_fini(s);
    ik_state *st = calloc(1, sizeof *st);
    if (!st) return -1;
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&st->lock, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&st->keymu, NULL);
    st->seed = seed;
    sbx_rng_init(&st->rt, seed, "iinkedsign/runtime");
    sbx_iinkedsign.state = st;
    uint64_t now = sb_wall_ms();
    for (int h = 0; h < IK_NHOSTS; h++) {
        ik_host *hs = &st->hosts[h];
        hs->region = ik_host_desc[h].region;
        hs->instance = ik_host_desc[h].instance;
        sbx_rng r;
        char stream[64], hx[49];
        snprintf(stream, sizeof stream, "iinkedsign/client/%s", hs->region);
        hx[0] = 0;
        sbx_rng_init(&r, seed, stream);
        sbx_rng_hex(&r, 8, hx);
        snprintf(hs->client_id, sizeof hs->client_id, "sbx-%.16s", hx);
        sbx_rng_hex(&r, 24, hx);
        snprintf(hs->client_secret, sizeof hs->client_secret, "%s", hx);
        for (int oi = 0; oi < ik_host_desc[h].norgs; oi++) {
            ik_org *o = calloc(1, sizeof *o);
            if (!o || st->norgs >= IK_MAX_ORGS) {
                free(o);
                return -1;
            }
            o->host = hs;
            hs->orgs[hs->norgs++] = o;
            st->orgs[st->norgs++] = o;
            if (seed_org(st, o, h, oi, now) < 0) return -1;
        }
    }
    return 0;
}

static void ik_fini(sbx *s)
{
    (void)s;
    ik_state *st = ik_st();
    if (!st) return;
    for (size_t b = 0; b < IK_NBUCKET; b++)
        for (ik_map_ent *e = st->toks.b[b]; e; e = e->next) tok_free(e->val);
    map_clear(&st->toks);
    map_clear(&st->pkgs);
    map_clear(&st->files);
    for (int i = 0; i < st->norgs; i++) {
        ik_org *o = st->orgs[i];
        for (int k = 0; k < o->npkgs; k++) pkg_free(o->pkgs[k]);
        free(o->pkgs);
        for (int k = 0; k < o->nfiles; k++) file_free(o->files[k]);
        free(o->files);
        free(o);
    }
    if (st->jwk) EVP_PKEY_free(st->jwk);
    pthread_rwlock_destroy(&st->lock);
    pthread_mutex_destroy(&st->keymu);
    free(st);
    sbx_iinkedsign.state = NULL;
}

static void ik_accounts(sbx *s, cJSON *arr)
{
    ik_state *st = ik_st();
    if (!st) return;
    pthread_rwlock_rdlock(&st->lock);
    for (int h = 0; h < IK_NHOSTS; h++) {
        const ik_host *hs = &st->hosts[h];
        char base[300], u[400];
        host_base(s, hs, base, sizeof base);
        for (int oi = 0; oi < hs->norgs; oi++) {
            const ik_org *o = hs->orgs[oi];
            const ik_member *adm = &o->members[0];
            cJSON *a = cJSON_CreateObject();
            cJSON_AddStringToObject(a, "provider", "iinkedsign");
            cJSON_AddStringToObject(a, "region", hs->region);
            if (hs->instance) cJSON_AddStringToObject(a, "instance", hs->instance);
            cJSON_AddStringToObject(a, "account_id", o->id);
            cJSON_AddStringToObject(a, "organization_name", o->name);
            cJSON_AddStringToObject(a, "email", adm->email);
            cJSON_AddStringToObject(a, "member_id", adm->id);
            cJSON_AddStringToObject(a, "api_key", o->keys[0].key);
            cJSON_AddStringToObject(a, "api_key_header", "api_key");
            snprintf(u, sizeof u, "%s/api/v1", base);
            cJSON_AddStringToObject(a, "base_url", u);
            cJSON *uk = cJSON_AddObjectToObject(a, "user_api_key");
            cJSON_AddStringToObject(uk, "api_key", o->keys[1].key);
            cJSON_AddStringToObject(uk, "member_id", o->members[3].id);
            cJSON_AddStringToObject(uk, "email", o->members[3].email);
            cJSON_AddStringToObject(uk, "note", "user key without Sign/Package/Template Editor "
                                                "roles: own packages only, writes answer 403");
            cJSON *oa = cJSON_AddObjectToObject(a, "oauth");
            cJSON_AddStringToObject(oa, "client_id", hs->client_id);
            cJSON_AddStringToObject(oa, "client_secret", hs->client_secret);
            snprintf(u, sizeof u, "%s/connect/authorize", base);
            cJSON_AddStringToObject(oa, "authorize_url", u);
            snprintf(u, sizeof u, "%s/connect/token", base);
            cJSON_AddStringToObject(oa, "token_url", u);
            snprintf(u, sizeof u, "%s/connect/userinfo", base);
            cJSON_AddStringToObject(oa, "userinfo_url", u);
            snprintf(u, sizeof u, "%s/.well-known/openid-configuration", base);
            cJSON_AddStringToObject(oa, "discovery_url", u);
            snprintf(u, sizeof u, "%s/.well-known/openid-configuration/jwks", base);
            cJSON_AddStringToObject(oa, "jwks_url", u);
            cJSON_AddStringToObject(oa, "issuer", base);
            cJSON_AddStringToObject(oa, "scope", "profile offline_access organization");
            cJSON_AddStringToObject(oa, "pkce", "optional (S256 or plain)");
            cJSON *ru = cJSON_AddArrayToObject(oa, "redirect_uris");
            static const char *const uris[] = {
                "https://claude.ai/api/mcp/auth_callback",
                "https://chatgpt.com/connector_platform_oauth_redirect",
                "https://oauth.pstmn.io/v1/callback", "http://127.0.0.1/*", "http://localhost/*",
                "http://[::1]/*", "https://localhost/*"};
            for (size_t i = 0; i < sizeof uris / sizeof uris[0]; i++)
                cJSON_AddItemToArray(ru, cJSON_CreateString(uris[i]));
            cJSON *us = cJSON_AddObjectToObject(oa, "user");
            cJSON_AddStringToObject(us, "email", adm->email);
            cJSON_AddStringToObject(us, "password", adm->password);
            cJSON_AddItemToArray(arr, a);
        }
    }
    pthread_rwlock_unlock(&st->lock);
}

/* ---- request input ---------------------------------------------------------------------------- */

typedef struct ik_in {
    const cJSON *o;
    sbx_resp *resp;
    const char *pfx; /* error code prefix: package, signer, document, ... */
    int bad;
} ik_in;

static void in_fail(ik_in *in, int status, const char *kind, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void in_fail(ik_in *in, int status, const char *kind, const char *key, const char *fmt, ...)
{
    if (in->bad) return;
    in->bad = 1;
    char sk[64], code[128], msg[400];
    ik_snake(key, sk, sizeof sk);
    snprintf(code, sizeof code, "%s_%s_%s", in->pfx, kind, sk);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ik_err(in->resp, status, code, "%s", msg);
}

/* Optional string: NULL when absent or null (or on error: check in->bad). */
static const char *in_str(ik_in *in, const char *key, size_t max)
{
    const cJSON *v = jget(in->o, key);
    if (in->bad || !v || cJSON_IsNull(v)) return NULL;
    if (!cJSON_IsString(v) || !ik_utf8_ok(v->valuestring)) {
        in_fail(in, 400, "invalid", key, "'%s' must be a string.", key);
        return NULL;
    }
    if (strlen(v->valuestring) > max) {
        in_fail(in, 400, "length", key, "'%s' must be %zu characters or fewer.", key, max);
        return NULL;
    }
    return v->valuestring;
}

/* Optional boolean: def when absent or null. */
static int in_bool(ik_in *in, const char *key, int def)
{
    const cJSON *v = jget(in->o, key);
    if (in->bad || !v || cJSON_IsNull(v)) return def;
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    in_fail(in, 400, "invalid", key, "'%s' must be true or false.", key);
    return def;
}

/* Optional integer in [min,max]: def when absent or null. */
static long in_int(ik_in *in, const char *key, long def, long min, long max)
{
    const cJSON *v = jget(in->o, key);
    if (in->bad || !v || cJSON_IsNull(v)) return def;
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(long)v->valuedouble) {
        in_fail(in, 400, "invalid", key, "'%s' must be an integer.", key);
        return def;
    }
    long n = (long)v->valuedouble;
    if (n < min || n > max) {
        in_fail(in, 400, "range", key, "'%s' must be between %ld and %ld.", key, min, max);
        return def;
    }
    return n;
}

/* Optional array (NULL when absent or null). */
static const cJSON *in_arr(ik_in *in, const char *key, int max)
{
    const cJSON *v = jget(in->o, key);
    if (in->bad || !v || cJSON_IsNull(v)) return NULL;
    if (!cJSON_IsArray(v)) {
        in_fail(in, 400, "invalid", key, "'%s' must be an array.", key);
        return NULL;
    }
    if (cJSON_GetArraySize(v) > max) {
        in_fail(in, 400, "range", key, "'%s' may contain at most %d items.", key, max);
        return NULL;
    }
    return v;
}

static int ct_is_json(const char *ct)
{
    if (!ct) return 0;
    while (*ct == ' ') ct++;
    if (strncasecmp(ct, "application/json", 16) == 0 || strncasecmp(ct, "text/json", 9) == 0)
        return 1;
    const char *semi = strchr(ct, ';');
    size_t n = semi ? (size_t)(semi - ct) : strlen(ct);
    return n >= 5 && strncasecmp(ct + n - 5, "+json", 5) == 0;
}

/* The JSON object body, or NULL with the error written. allow_empty: an empty body is {}. */
static cJSON *ik_body(const sbx_req *req, sbx_resp *resp, int allow_empty)
{
    size_t n = req->body_len;
    const char *b = req->body;
    size_t i = 0;
    while (i < n && isspace((unsigned char)b[i])) i++;
    if (i == n) {
        if (allow_empty) return cJSON_CreateObject();
        ik_err(resp, 400, "request_invalid_body", "A non-empty JSON request body is required.");
        return NULL;
    }
    if (!ct_is_json(req->content_type)) {
        ik_err(resp, 415, "request_invalid_content_type",
               "Unsupported Content-Type '%.60s': send the body as application/json.",
               req->content_type);
        return NULL;
    }
    cJSON *o = cJSON_ParseWithLength(b, n);
    if (!o) {
        ik_err(resp, 400, "request_invalid_json", "The request body is not valid JSON.");
        return NULL;
    }
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        ik_err(resp, 400, "request_invalid_body", "The request body must be a JSON object.");
        return NULL;
    }
    return o;
}

/* ---- authentication --------------------------------------------------------------------------- */

static void caller_for_member(ik_caller *c, ik_org *o, int member, int org_key)
{
    memset(c, 0, sizeof *c);
    c->org = o;
    c->member = member;
    unsigned r = org_key ? ~0u : o->members[member].roles;
    c->org_wide = (r & (ROLE_ADMIN | ROLE_SIGN_EDITOR | ROLE_PACKAGE_EDITOR)) != 0;
    c->can_write = (r & (ROLE_ADMIN | ROLE_SIGN_EDITOR | ROLE_PACKAGE_EDITOR)) != 0;
    c->tpl_wide = (r & (ROLE_ADMIN | ROLE_SIGN_EDITOR | ROLE_TEMPLATE_EDITOR)) != 0;
    c->admin = (r & ROLE_ADMIN) != 0;
}

static void ik_unauthorized(sbx_resp *resp, const char *msg)
{
    ik_err(resp, 401, "unauthorized", "%s", msg);
    sbx_resp_header(resp, "WWW-Authenticate", "Bearer");
}

static int scope_has(const char *scopes, const char *want)
{
    size_t wl = strlen(want);
    for (const char *p = scopes; *p;) {
        while (*p == ' ') p++;
        const char *e = p;
        while (*e && *e != ' ') e++;
        if ((size_t)(e - p) == wl && strncmp(p, want, wl) == 0) return 1;
        p = e;
    }
    return 0;
}

/* 0 with *c filled, -1 with the response written. */
static int ik_auth(ik_state *st, ik_host *h, sbx_req *req, sbx_resp *resp, ik_caller *c,
                   char *rlkey, size_t rlcap)
{
    const char *key = sbx_header(req, "api_key");
    if (key && *key) {
        snprintf(req->auth_scheme, sizeof req->auth_scheme, "api_key");
        size_t kl = strlen(key);
        for (int oi = 0; oi < h->norgs; oi++) {
            ik_org *o = h->orgs[oi];
            for (int k = 0; k < 2; k++) {
                const ik_apikey *ak = &o->keys[k];
                if (sb_ct_equal(ak->key, strlen(ak->key), key, kl)) {
                    caller_for_member(c, o, ak->member, ak->org_key);
                    c->key_id = ak->id;
                    snprintf(req->account_id, sizeof req->account_id, "%s", o->id);
                    snprintf(rlkey, rlcap, "key:%s", ak->id);
                    return 0;
                }
            }
        }
        ik_unauthorized(resp, "The API key is not valid for this iinked Sign instance. Keys are "
                              "issued per datacenter (sandbox, US, CA, EU or private instance).");
        return -1;
    }
    const char *az = sbx_header(req, "Authorization");
    if (az && strncasecmp(az, "Bearer ", 7) == 0) {
        snprintf(req->auth_scheme, sizeof req->auth_scheme, "bearer");
        const char *tok = az + 7;
        while (*tok == ' ') tok++;
        ik_tok *t = *tok && strlen(tok) < 4096 ? map_get(&st->toks, tok) : NULL;
        if (!t || t->kind != TK_ACCESS || t->host != h || t->expires <= req->now_ms) {
            sbx_resp_bytes(resp, 401, NULL, NULL, 0);
            sbx_resp_header(resp, "WWW-Authenticate",
                            t && t->kind == TK_ACCESS && t->host == h
                                ? "Bearer error=\"invalid_token\", error_description=\"The token expired\""
                                : "Bearer error=\"invalid_token\"");
            return -1;
        }
        snprintf(req->account_id, sizeof req->account_id, "%s", t->org->id);
        if (!scope_has(t->scope, "organization")) {
            ik_err(resp, 403, "scope_not_authorized",
                   "The access token lacks the 'organization' scope required by the API.");
            return -1;
        }
        caller_for_member(c, t->org, t->member, 0);
        snprintf(rlkey, rlcap, "oauth:%s:%s", t->org->id, t->org->members[t->member].id);
        return 0;
    }
    if (sbx_header(req, "X-API-Key") || sbx_header(req, "api-key") || sbx_header(req, "apikey")) {
        snprintf(req->auth_scheme, sizeof req->auth_scheme, "x-api-key");
        ik_unauthorized(resp, "Authorization has been denied for this request: iinked Sign reads "
                              "the API key from the 'api_key' request header.");
        return -1;
    }
    if (az && strncasecmp(az, "Basic ", 6) == 0)
        snprintf(req->auth_scheme, sizeof req->auth_scheme, "basic");
    ik_unauthorized(resp, "Authorization has been denied for this request. Send 'api_key: <API "
                          "key>' or 'Authorization: Bearer <access token>'.");
    return -1;
}

/* ---- package access --------------------------------------------------------------------------- */

static int pkg_visible(const ik_caller *c, const ik_pkg *p)
{
    return p->org == c->org && (c->org_wide || p->member == c->member || p->shared);
}

static ik_pkg *pkg_find(ik_state *st, const ik_caller *c, const char *id, sbx_resp *resp)
{
    char norm[37];
    ik_pkg *p = NULL;
    if (id && ik_guid_norm(id, norm) == 0) p = map_get(&st->pkgs, norm);
    if (!p || !pkg_visible(c, p)) {
        ik_err(resp, 404, "package_not_found",
               "The Package was not found or you do not have permission to access the Package.");
        return NULL;
    }
    return p;
}

static int pkg_writable(const ik_caller *c, const ik_pkg *p, sbx_resp *resp)
{
    if (c->can_write && (c->org_wide || p->member == c->member)) return 1;
    ik_err(resp, 403, "package_not_authorized",
           "You do not have permission to modify this Package (the Package Editor or Sign Editor "
           "role is required).");
    return 0;
}

static ik_template *tpl_find(const ik_caller *c, const char *id)
{
    char norm[37];
    if (!id || ik_guid_norm(id, norm) < 0) return NULL;
    for (int i = 0; i < c->org->ntpls; i++) {
        ik_template *t = &c->org->tpls[i];
        if (strcmp(t->id, norm) == 0 && (t->shared || c->tpl_wide || t->member == c->member))
            return t;
    }
    return NULL;
}

static ik_file *file_find(ik_state *st, const ik_caller *c, const char *id)
{
    char norm[37];
    if (!id || ik_guid_norm(id, norm) < 0) return NULL;
    ik_file *f = map_get(&st->files, norm);
    return f && f->org == c->org ? f : NULL;
}

/* ---- packages/add and friends: signer, recipient and document input --------------------------- */

typedef struct ik_sin {
    const char *id, *first, *last, *email, *mobile, *trole, *tid;
    const ik_tsigner *ts;
} ik_sin;

typedef struct ik_din {
    const char *file_name, *name, *external_id;
    ik_file *f;
    const ik_tdoc *td;
} ik_din;

static int parse_people(ik_in *in, const cJSON *arr, ik_sin *out, int max, int *n, int recip)
{
    *n = 0;
    if (!arr) return 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        if (*n >= max) break;
        if (!cJSON_IsObject(e)) {
            in_fail(in, 400, "invalid", recip ? "recipients" : "signers",
                    "Each item of '%s' must be an object.", recip ? "recipients" : "signers");
            return -1;
        }
        ik_in sub = {e, in->resp, recip ? "recipient" : "signer", 0};
        ik_sin *s = &out[(*n)++];
        memset(s, 0, sizeof *s);
        s->id = in_str(&sub, recip ? "recipientId" : "signerId", 64);
        s->first = in_str(&sub, "firstName", 100);
        s->last = in_str(&sub, "lastName", 100);
        s->email = in_str(&sub, "email", 254);
        s->mobile = in_str(&sub, "mobileNumber", 32);
        s->trole = in_str(&sub, "templateRole", 64);
        s->tid = in_str(&sub, recip ? "templateRecipientId" : "templateSignerId", 64);
        if (sub.bad) {
            in->bad = 1;
            return -1;
        }
    }
    return 0;
}

static int is_blank(const char *s)
{
    if (!s) return 1;
    for (; *s; s++)
        if (!isspace((unsigned char)*s)) return 0;
    return 1;
}

static int validate_person(ik_in *in, const ik_sin *s, int recip)
{
    ik_in sub = {NULL, in->resp, recip ? "recipient" : "signer", 0};
    if (is_blank(s->first))
        in_fail(&sub, 400, "invalid", "firstName", "%s 'firstName' is required.",
                recip ? "Recipient" : "Signer");
    else if (is_blank(s->last))
        in_fail(&sub, 400, "invalid", "lastName", "%s 'lastName' is required.",
                recip ? "Recipient" : "Signer");
    else if (!ik_email_ok(s->email))
        in_fail(&sub, 400, "invalid", "email", "A valid %s 'email' is required%s%.100s%s.",
                recip ? "recipient" : "signer", s->email ? " ('" : "", s->email ? s->email : "",
                s->email ? "' is not valid)" : "");
    if (sub.bad) in->bad = 1;
    return sub.bad ? -1 : 0;
}

/* Bind signers to a template's signer slots. out receives one entry per slot, in slot order. */
static int bind_template_signers(ik_in *in, const ik_template *t, ik_sin *given, int ng,
                                 ik_sin *out, int *nout)
{
    int used[IK_MAX_SIGNERS] = {0};
    *nout = t->nsigners;
    for (int k = 0; k < t->nsigners; k++) {
        memset(&out[k], 0, sizeof out[k]);
        out[k].ts = &t->signers[k];
    }
    /* explicit bindings */
    for (int g = 0; g < ng; g++) {
        if (!given[g].trole && !given[g].tid) continue;
        int slot = -1;
        for (int k = 0; k < t->nsigners && slot < 0; k++) {
            if (given[g].tid && strcasecmp(given[g].tid, t->signers[k].id) == 0) slot = k;
            if (given[g].trole && strcasecmp(given[g].trole, t->signers[k].trole) == 0) slot = k;
        }
        if (slot < 0) {
            ik_err(in->resp, 400, "package_invalid_template_role",
                   "Template role '%.64s' was not found on the Template '%s'.",
                   given[g].trole ? given[g].trole : given[g].tid, t->name);
            in->bad = 1;
            return -1;
        }
        if (out[slot].first || out[slot].email) {
            ik_err(in->resp, 400, "package_duplicate_template_role",
                   "Template role '%s' was assigned more than once.", t->signers[slot].trole);
            in->bad = 1;
            return -1;
        }
        const ik_tsigner *ts = out[slot].ts;
        out[slot] = given[g];
        out[slot].ts = ts;
        used[g] = 1;
    }
    /* unbound signers fill the remaining role slots in order */
    for (int g = 0; g < ng; g++) {
        if (used[g] || given[g].trole || given[g].tid) continue;
        int slot = -1;
        for (int k = 0; k < t->nsigners && slot < 0; k++)
            if (!out[k].first && !out[k].email && !t->signers[k].email[0]) slot = k;
        if (slot < 0) {
            ik_err(in->resp, 400, "package_invalid_signers",
                   "The Template '%s' has %d signer role%s; more signers were given than roles.",
                   t->name, t->nsigners, t->nsigners == 1 ? "" : "s");
            in->bad = 1;
            return -1;
        }
        const ik_tsigner *ts = out[slot].ts;
        out[slot] = given[g];
        out[slot].ts = ts;
    }
    for (int k = 0; k < t->nsigners; k++) {
        const ik_tsigner *ts = &t->signers[k];
        if (!out[k].first && !out[k].last && !out[k].email) {
            if (!ts->email[0]) {
                ik_err(in->resp, 400, "package_invalid_signers",
                       "A signer is required for template role '%s'.", ts->trole);
                in->bad = 1;
                return -1;
            }
            out[k].first = ts->first;
            out[k].last = ts->last;
            out[k].email = ts->email;
        }
        out[k].trole = ts->trole;
        out[k].tid = ts->id;
    }
    return 0;
}

static int check_duplicates(ik_in *in, const ik_sin *sg, int ns, const ik_sin *rc, int nr)
{
    for (int i = 0; i < ns; i++)
        for (int j = i + 1; j < ns; j++)
            if (strcasecmp(sg[i].email, sg[j].email) == 0) {
                ik_err(in->resp, 400, "package_duplicate_recipients",
                       "Signer '%.100s' was added more than once: signer email addresses must be "
                       "unique within a Package.",
                       sg[i].email);
                in->bad = 1;
                return -1;
            }
    for (int i = 0; i < nr; i++) {
        for (int j = 0; j < ns; j++)
            if (strcasecmp(rc[i].email, sg[j].email) == 0) {
                ik_err(in->resp, 400, "package_duplicate_recipients_signer",
                       "'%.100s' is both a signer and a recipient of the Package.", rc[i].email);
                in->bad = 1;
                return -1;
            }
        for (int j = i + 1; j < nr; j++)
            if (strcasecmp(rc[i].email, rc[j].email) == 0) {
                ik_err(in->resp, 400, "package_duplicate_recipients",
                       "Recipient '%.100s' was added more than once.", rc[i].email);
                in->bad = 1;
                return -1;
            }
    }
    return 0;
}

/* Documents: template documents first (replaced by templateDocumentId), then the given ones. */
static int parse_documents(ik_state *st, const ik_caller *c, ik_in *in, const cJSON *arr,
                           const ik_template *t, ik_din *out, int *n)
{
    *n = 0;
    if (t)
        for (int d = 0; d < t->ndocs; d++) {
            memset(&out[*n], 0, sizeof out[0]);
            out[*n].td = &t->docs[d];
            (*n)++;
        }
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        if (!cJSON_IsObject(e)) {
            in_fail(in, 400, "invalid", "documents", "Each item of 'documents' must be an object.");
            return -1;
        }
        ik_in sub = {e, in->resp, "document", 0};
        const char *fid = in_str(&sub, "fileId", 64);
        const char *fname = in_str(&sub, "fileName", 255);
        const char *name = in_str(&sub, "name", IK_MAX_NAME);
        const char *ext = in_str(&sub, "externalId", 255);
        const char *tdid = in_str(&sub, "templateDocumentId", 64);
        const char *atc = in_str(&sub, "autoTemplateCode", 64);
        if (sub.bad) {
            in->bad = 1;
            return -1;
        }
        ik_din *slot = NULL;
        if (tdid) {
            for (int k = 0; k < *n && !slot; k++)
                if (out[k].td && strcasecmp(out[k].td->id, tdid) == 0) slot = &out[k];
            if (!slot) {
                ik_err(in->resp, 404, "document_not_found",
                       "Template document '%.64s' was not found on the Template.", tdid);
                in->bad = 1;
                return -1;
            }
        } else {
            if (*n >= IK_MAX_DOCS) {
                ik_err(in->resp, 400, "package_range_documents",
                       "A Package can contain at most %d documents.", IK_MAX_DOCS);
                in->bad = 1;
                return -1;
            }
            slot = &out[(*n)++];
            memset(slot, 0, sizeof *slot);
        }
        if (atc) {
            int found = 0;
            for (int k = 0; k < c->org->ntpls; k++)
                if (strcmp(c->org->tpls[k].type, "auto_template") == 0 &&
                    strcasecmp(c->org->tpls[k].code, atc) == 0)
                    found = 1;
            if (!found) {
                ik_err(in->resp, 404, "template_not_found",
                       "Auto template '%.64s' was not found or you do not have permission to "
                       "access it.",
                       atc);
                in->bad = 1;
                return -1;
            }
        }
        if (fid) {
            ik_file *f = file_find(st, c, fid);
            if (!f) {
                ik_err(in->resp, 404, "file_not_found",
                       "The File was not found or you do not have permission to access the File.");
                in->bad = 1;
                return -1;
            }
            slot->f = f;
        } else if (!slot->td) {
            ik_err(in->resp, 400, "document_invalid_file_id",
                   "Document 'fileId' is required (upload the file with POST /files/upload first).");
            in->bad = 1;
            return -1;
        }
        if (fname) slot->file_name = fname;
        if (name) slot->name = name;
        if (ext) slot->external_id = ext;
    }
    return 0;
}

static int valid_type(const char *t)
{
    static const char *const types[] = {"concurrent", "Sequential", "Counterpart",
                                        "video_closing_room", "Live Session"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(t, types[i]) == 0) return 1;
    return 0;
}

/* Install signers (replacing any) on p from validated input. */
static int pkg_set_signers(ik_state *st, ik_pkg *p, const ik_sin *sg, int ns, uint64_t now)
{
    ik_signer *arr = calloc((size_t)(ns ? ns : 1), sizeof *arr);
    if (!arr) return -1;
    for (int i = 0; i < p->nsigners; i++) {
        link_unregister(st, p->signers[i].link);
        signer_clear(&p->signers[i]);
    }
    free(p->signers);
    p->signers = arr;
    p->nsigners = ns;
    for (int i = 0; i < ns; i++) {
        ik_signer *s = &arr[i];
        sbx_rng_uuid(&st->rt, s->id);
        s->first = ik_dup(sg[i].first);
        s->last = ik_dup(sg[i].last);
        s->email = ik_dup(sg[i].email);
        s->mobile = ik_dup(sg[i].mobile);
        s->trole = ik_dup(sg[i].trole);
        if (sg[i].tid) snprintf(s->tsigner_id, sizeof s->tsigner_id, "%s", sg[i].tid);
        s->created = s->updated = now;
        signer_new_link(st, p, s, &st->rt);
    }
    return pkg_alloc_revs(p, &st->rt);
}

static int pkg_set_recips(ik_state *st, ik_pkg *p, const ik_sin *rc, int nr)
{
    for (int i = 0; i < p->nrecips; i++) {
        free(p->recips[i].first);
        free(p->recips[i].last);
        free(p->recips[i].email);
        free(p->recips[i].trole);
    }
    free(p->recips);
    p->recips = NULL;
    p->nrecips = 0;
    if (!nr) return 0;
    p->recips = calloc((size_t)nr, sizeof *p->recips);
    if (!p->recips) return -1;
    p->nrecips = nr;
    for (int i = 0; i < nr; i++) {
        sbx_rng_uuid(&st->rt, p->recips[i].id);
        p->recips[i].first = ik_dup(rc[i].first);
        p->recips[i].last = ik_dup(rc[i].last);
        p->recips[i].email = ik_dup(rc[i].email);
        p->recips[i].trole = ik_dup(rc[i].trole);
    }
    return 0;
}

/* Common text fields of add/update. */
static void apply_texts(ik_in *in, ik_pkg *p)
{
    static const struct {
        const char *key;
        size_t off;
        size_t max;
    } f[] = {{"description", offsetof(ik_pkg, description), IK_MAX_TEXT},
             {"message", offsetof(ik_pkg, message), IK_MAX_TEXT},
             {"category", offsetof(ik_pkg, category), 100},
             {"clientNumber", offsetof(ik_pkg, client_no), 100},
             {"matterNumber", offsetof(ik_pkg, matter_no), 100},
             {"reminderMessage", offsetof(ik_pkg, reminder_msg), IK_MAX_TEXT}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        const cJSON *v = jget(in->o, f[i].key);
        if (!v) continue;
        const char *s = in_str(in, f[i].key, f[i].max);
        if (in->bad) return;
        ik_set((char **)((char *)p + f[i].off), s);
    }
    const cJSON *ext = jget(in->o, "externalData");
    if (ext) {
        if (!cJSON_IsNull(ext) && !cJSON_IsObject(ext)) {
            in_fail(in, 400, "invalid", "externalData", "'externalData' must be a JSON object.");
            return;
        }
        char *txt = cJSON_PrintUnformatted(ext);
        size_t tl = txt ? strlen(txt) : 0;
        free(txt);
        if (tl > IK_MAX_EXT) {
            in_fail(in, 400, "length", "externalData", "'externalData' must be %d bytes or fewer.",
                    IK_MAX_EXT);
            return;
        }
        cJSON_Delete(p->ext);
        p->ext = cJSON_IsNull(ext) ? NULL : cJSON_Duplicate(ext, 1);
    }
}

static void pkg_send(ik_pkg *p, uint64_t now)
{
    snprintf(p->state, sizeof p->state, "open");
    p->last_step = now;
    pkg_event(p, now, "Package sent to %d signer%s", p->nsigners, p->nsigners == 1 ? "" : "s");
}

static void pkg_unlink(ik_state *st, ik_pkg *p)
{
    for (int i = 0; i < p->nsigners; i++) link_unregister(st, p->signers[i].link);
    /* API-generated sign links of this package */
    for (size_t b = 0; b < IK_NBUCKET; b++) {
        ik_map_ent **pp = &st->toks.b[b];
        while (*pp) {
            ik_tok *t = (*pp)->val;
            if (t->kind == TK_LINK && t->pkg == p) {
                ik_map_ent *e = *pp;
                *pp = e->next;
                free(e);
                st->toks.n--;
                tok_free(t);
            } else {
                pp = &(*pp)->next;
            }
        }
    }
}

/* ---- REST handlers ------------------------------------------------------------------------- */

typedef struct ik_ctx {
    sbx *s;
    ik_state *st;
    ik_host *h;
    sbx_req *req;
    sbx_resp *resp;
    ik_caller c;
    char base[300]; /* host base URL */
} ik_ctx;

static int find_member(const ik_org *o, const char *id)
{
    char norm[37];
    if (!id || ik_guid_norm(id, norm) < 0) return -2;
    for (int i = 0; i < o->nmembers; i++)
        if (strcmp(o->members[i].id, norm) == 0) return i;
    return -2;
}

static int find_team(const ik_org *o, const char *id)
{
    char norm[37];
    if (!id || ik_guid_norm(id, norm) < 0) return -2;
    for (int i = 0; i < 2; i++)
        if (strcmp(o->teams[i].id, norm) == 0) return i;
    return -2;
}

static int find_folder(const ik_org *o, const char *id)
{
    char norm[37];
    if (!id || ik_guid_norm(id, norm) < 0) return -2;
    for (int i = 0; i < o->nfolders; i++)
        if (strcmp(o->folders[i].id, norm) == 0) return i;
    return -2;
}

static int is_word_char(unsigned char c)
{
    return isalnum(c) || c >= 0x80;
}

static int word_match(const char *text, const char *w, size_t wl, int prefix)
{
    if (!text) return 0;
    const char *p = text;
    while (*p) {
        while (*p && !is_word_char((unsigned char)*p)) p++;
        const char *b = p;
        while (*p && is_word_char((unsigned char)*p)) p++;
        size_t n = (size_t)(p - b);
        if (n && (prefix ? n >= wl : n == wl) && strncasecmp(b, w, wl) == 0) return 1;
    }
    return 0;
}

static int pkg_word(const ik_pkg *p, const char *w, size_t wl, int prefix)
{
    const char *f[] = {p->name, p->description, p->message, p->category, p->client_no, p->matter_no};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (word_match(f[i], w, wl, prefix)) return 1;
    for (int i = 0; i < p->nsigners; i++) {
        const ik_signer *s = &p->signers[i];
        if (word_match(s->first, w, wl, prefix) || word_match(s->last, w, wl, prefix) ||
            word_match(s->email, w, wl, prefix) || word_match(s->mobile, w, wl, prefix))
            return 1;
    }
    for (int i = 0; i < p->nrecips; i++) {
        const ik_recip *r = &p->recips[i];
        if (word_match(r->first, w, wl, prefix) || word_match(r->last, w, wl, prefix) ||
            word_match(r->email, w, wl, prefix))
            return 1;
    }
    return 0;
}

/* Every word of q (a trailing '*' = prefix match) must occur in a searchable field. */
static int pkg_search(const ik_pkg *p, const char *q)
{
    const char *c = q;
    int any = 0;
    while (*c) {
        while (*c && !is_word_char((unsigned char)*c)) c++;
        const char *b = c;
        while (*c && is_word_char((unsigned char)*c)) c++;
        size_t n = (size_t)(c - b);
        if (!n) continue;
        any = 1;
        if (!pkg_word(p, b, n, *c == '*')) return 0;
    }
    (void)any;
    return 1;
}

static int str_in_arr(const cJSON *arr, const char *v, int ci)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        if (cJSON_IsString(e) && (ci ? strcasecmp(e->valuestring, v) : strcmp(e->valuestring, v)) == 0)
            return 1;
    }
    return 0;
}

static int arr_of_strings(ik_in *in, const cJSON *a, const char *key)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        if (!cJSON_IsString(e)) {
            in_fail(in, 400, "invalid", key, "'%s' must be an array of strings.", key);
            return -1;
        }
    }
    return 0;
}

static int cmp_name(const void *a, const void *b)
{
    const ik_pkg *x = *(ik_pkg *const *)a, *y = *(ik_pkg *const *)b;
    int r = strcasecmp(x->name ? x->name : "", y->name ? y->name : "");
    return r ? r : strcmp(x->id, y->id);
}
static int cmp_modified(const void *a, const void *b)
{
    const ik_pkg *x = *(ik_pkg *const *)a, *y = *(ik_pkg *const *)b;
    if (x->modified != y->modified) return x->modified > y->modified ? -1 : 1;
    return strcmp(x->id, y->id);
}
static int cmp_signby(const void *a, const void *b)
{
    const ik_pkg *x = *(ik_pkg *const *)a, *y = *(ik_pkg *const *)b;
    if (x->sign_by != y->sign_by) return x->sign_by < y->sign_by ? -1 : 1;
    return strcmp(x->id, y->id);
}

static void h_list(ik_ctx *x)
{
    cJSON *b = ik_body(x->req, x->resp, 1);
    if (!b) return;
    const ik_caller *c = &x->c;
    ik_in in = {b, x->resp, "package", 0};
    const char *member_id = in_str(&in, "memberId", 64);
    const char *team_id = in_str(&in, "teamId", 64);
    const char *folder_id = in_str(&in, "folderId", 64);
    int all = in_bool(&in, "allMembers", 0);
    const char *search = in_str(&in, "search", 256);
    const cJSON *types = in_arr(&in, "types", 32);
    const cJSON *states = in_arr(&in, "states", 32);
    int executed = -1;
    const cJSON *ie = jget(b, "isExecuted");
    if (ie && !cJSON_IsNull(ie)) {
        if (cJSON_IsBool(ie))
            executed = cJSON_IsTrue(ie);
        else
            in_fail(&in, 400, "invalid", "isExecuted", "'isExecuted' must be true, false or null.");
    }
    long days = in_int(&in, "days", -1, 0, 36500);
    const char *sort = in_str(&in, "sortBy", 32);
    long take = in_int(&in, "take", IK_DEF_TAKE, 0, 1000000);
    long skip = in_int(&in, "skip", 0, 0, 100000000);
    if (!in.bad && types) arr_of_strings(&in, types, "types");
    if (!in.bad && states) arr_of_strings(&in, states, "states");
    if (in.bad) goto out;
    if (take <= 0) take = IK_DEF_TAKE;
    if (take > IK_MAX_TAKE) take = IK_MAX_TAKE;
    ik_org *o = c->org;
    int mf = -1, tf = -1, ff = -1;
    if (member_id) {
        mf = find_member(o, member_id);
        if (mf != c->member && !c->org_wide) {
            ik_err(x->resp, 403, "package_not_authorized",
                   "You do not have permission to list Packages of other members (an "
                   "organization API key, an organization OAuth app or the Sign Editor or Package "
                   "Editor role is required).");
            goto out;
        }
    }
    if (all && !c->org_wide) {
        ik_err(x->resp, 403, "package_not_authorized",
               "You do not have permission to list Packages of all members (an organization API "
               "key, an organization OAuth app or the Sign Editor or Package Editor role is "
               "required).");
        goto out;
    }
    if (team_id) {
        tf = find_team(o, team_id);
        if (tf >= 0 && !c->admin && o->members[c->member].team != tf) {
            ik_err(x->resp, 403, "team_not_authorized",
                   "You must belong to the Team to list its Packages.");
            goto out;
        }
    }
    if (folder_id) ff = find_folder(o, folder_id);
    if (!member_id && !all && !team_id) mf = c->member;
    if (search && is_blank(search)) search = NULL;
    uint64_t now = x->req->now_ms;
    ik_pkg **sel = malloc((size_t)(o->npkgs ? o->npkgs : 1) * sizeof *sel);
    if (!sel) {
        ik_err(x->resp, 500, "server_exception", "Out of memory.");
        goto out;
    }
    int n = 0;
    for (int i = o->npkgs - 1; i >= 0; i--) {
        ik_pkg *p = o->pkgs[i];
        if (!c->org_wide && p->member != c->member && !p->shared) continue;
        if (mf != -1 && p->member != mf) continue;
        if (tf != -1 && p->team != tf) continue;
        if (ff != -1 && p->folder != ff) continue;
        if (types && cJSON_GetArraySize(types) && !str_in_arr(types, p->type, 0)) continue;
        if (states && cJSON_GetArraySize(states) && !str_in_arr(states, p->state, 1)) continue;
        if (executed != -1 && (strcmp(p->state, "executed") == 0) != executed) continue;
        if (days >= 0 && (!p->sign_by || p->sign_by < now ||
                          p->sign_by > now + (uint64_t)days * IK_DAY_MS))
            continue;
        if (search && !pkg_search(p, search)) continue;
        sel[n++] = p;
    }
    if (sort && (strcasecmp(sort, "name") == 0))
        qsort(sel, (size_t)n, sizeof *sel, cmp_name);
    else if (sort && (strcasecmp(sort, "modified") == 0 || strcasecmp(sort, "last_modified") == 0 ||
                      strcasecmp(sort, "updated") == 0))
        qsort(sel, (size_t)n, sizeof *sel, cmp_modified);
    else if (sort && (strcasecmp(sort, "sign_by") == 0 || strcasecmp(sort, "signby") == 0 ||
                      strcasecmp(sort, "time_sign_by") == 0))
        qsort(sel, (size_t)n, sizeof *sel, cmp_signby);
    sb_buf out;
    sb_buf_init(&out, 64u << 20);
    sb_buf_puts(&out, "{\"items\":[");
    int first = 1;
    for (long i = skip; i < n && i < skip + take; i++) {
        if (!first) sb_buf_append(&out, ",", 1);
        first = 0;
        sb_buf_append(&out, sel[i]->item ? sel[i]->item : "{}", sel[i]->item ? sel[i]->item_len : 2);
    }
    sb_buf_printf(&out, "],\"total\":%d,\"take\":%ld,\"skip\":%ld}", n, take, skip);
    sbx_resp_bytes(x->resp, 200, "application/json; charset=utf-8", out.data, out.len);
    sb_buf_free(&out);
    free(sel);
out:
    cJSON_Delete(b);
}

static void h_templates(ik_ctx *x)
{
    cJSON *b = ik_body(x->req, x->resp, 1);
    if (!b) return;
    const ik_caller *c = &x->c;
    ik_in in = {b, x->resp, "template", 0};
    const char *member_id = in_str(&in, "memberId", 64);
    const char *team_id = in_str(&in, "teamId", 64);
    const char *folder_id = in_str(&in, "folderId", 64);
    int all = in_bool(&in, "allMembers", 0);
    const char *search = in_str(&in, "search", 256);
    int personal = in_bool(&in, "personal", 0);
    int shared = in_bool(&in, "shared", 0);
    long recent = in_int(&in, "mostRecent", -1, 0, 36500);
    const char *sort = in_str(&in, "sortBy", 32);
    const char *coll = in_str(&in, "collectionCode", 64);
    const cJSON *ptypes = in_arr(&in, "packageTypes", 32);
    const cJSON *types = in_arr(&in, "types", 32);
    long take = in_int(&in, "take", IK_DEF_TAKE, 0, 1000000);
    long skip = in_int(&in, "skip", 0, 0, 100000000);
    if (!in.bad && ptypes) arr_of_strings(&in, ptypes, "packageTypes");
    if (!in.bad && types) arr_of_strings(&in, types, "types");
    if (in.bad) goto out;
    if (take <= 0) take = IK_DEF_TAKE;
    if (take > IK_MAX_TAKE) take = IK_MAX_TAKE;
    const ik_org *o = c->org;
    int mf = -1, tf = -1, ff = -1;
    if (member_id) {
        mf = find_member(o, member_id);
        if (mf != c->member && !c->tpl_wide) {
            ik_err(x->resp, 403, "template_not_authorized",
                   "You do not have permission to list Templates of other members (an "
                   "organization API key, an organization OAuth app or the Sign Editor or Template "
                   "Editor role is required).");
            goto out;
        }
    }
    if (all && !c->tpl_wide) {
        ik_err(x->resp, 403, "template_not_authorized",
               "You do not have permission to list Templates of all members.");
        goto out;
    }
    if (team_id) {
        tf = find_team(o, team_id);
        if (tf >= 0 && !c->admin && o->members[c->member].team != tf) {
            ik_err(x->resp, 403, "team_not_authorized",
                   "You must belong to the Team to list its Templates.");
            goto out;
        }
    }
    if (folder_id) ff = find_folder(o, folder_id);
    uint64_t now = x->req->now_ms;
    const ik_template *sel[8];
    int n = 0;
    for (int i = 0; i < o->ntpls && n < 8; i++) {
        const ik_template *t = &o->tpls[i];
        int own = t->member == c->member;
        if (!own && !t->shared && !c->tpl_wide) continue;
        if (mf != -1 && t->member != mf) continue;
        if (!member_id && !all && !team_id && !own && !t->shared) continue;
        if (tf != -1 && t->team != tf) continue;
        if (ff != -1 && t->folder != ff) continue;
        if (personal && (t->shared || (!own && !member_id && !all && !team_id))) continue;
        if (shared && !t->shared) continue;
        if (recent >= 0 && t->last_used + (uint64_t)recent * IK_DAY_MS < now) continue;
        if (coll && *coll) continue; /* no template collections are seeded */
        if (ptypes && cJSON_GetArraySize(ptypes) && !str_in_arr(ptypes, t->ptype, 0)) continue;
        if (types && cJSON_GetArraySize(types) && !str_in_arr(types, t->type, 1)) continue;
        if (search && !is_blank(search)) {
            int ok = 1;
            const char *q = search;
            while (*q && ok) {
                while (*q && !is_word_char((unsigned char)*q)) q++;
                const char *wb = q;
                while (*q && is_word_char((unsigned char)*q)) q++;
                size_t wl = (size_t)(q - wb);
                if (!wl) continue;
                int pre = *q == '*', hit = word_match(t->name, wb, wl, pre) ||
                                           word_match(t->desc, wb, wl, pre);
                for (int k = 0; k < t->nsigners && !hit; k++)
                    hit = word_match(t->signers[k].trole, wb, wl, pre) ||
                          word_match(t->signers[k].first, wb, wl, pre) ||
                          word_match(t->signers[k].last, wb, wl, pre) ||
                          word_match(t->signers[k].email, wb, wl, pre);
                ok = hit;
            }
            if (!ok) continue;
        }
        sel[n++] = t;
    }
    /* sortBy: last_used (default, most recent first) | name | created | updated */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0; j--) {
            const ik_template *a = sel[j - 1], *bb = sel[j];
            int swap;
            if (sort && strcasecmp(sort, "name") == 0)
                swap = strcasecmp(a->name, bb->name) > 0;
            else if (sort && strcasecmp(sort, "created") == 0)
                swap = a->created < bb->created;
            else if (sort && strcasecmp(sort, "updated") == 0)
                swap = a->updated < bb->updated;
            else
                swap = a->last_used < bb->last_used;
            if (!swap) break;
            sel[j - 1] = bb;
            sel[j] = a;
        }
    cJSON *r = cJSON_CreateObject();
    cJSON *items = cJSON_AddArrayToObject(r, "items");
    for (long i = skip; i < n && i < skip + take; i++) cJSON_AddItemToArray(items, tpl_item(sel[i]));
    cJSON_AddNumberToObject(r, "total", n);
    cJSON_AddNumberToObject(r, "take", (double)take);
    cJSON_AddNumberToObject(r, "skip", (double)skip);
    sbx_resp_json(x->resp, 200, r);
out:
    cJSON_Delete(b);
}

static int check_sign_by(ik_in *in, const char *v, uint64_t now, uint64_t *out)
{
    if (ik_parse_time(v, out) < 0) {
        in_fail(in, 400, "invalid", "timeSignBy",
                "'timeSignBy' must be an ISO 8601 date-time (e.g. 2030-01-31T17:00:00Z).");
        return -1;
    }
    if (*out <= now) {
        in_fail(in, 400, "range", "timeSignBy", "'timeSignBy' must be in the future.");
        return -1;
    }
    return 0;
}

static int resolve_team_folder(ik_in *in, const ik_caller *c, const char *team_id,
                               const char *folder_id, int *team, int *folder)
{
    if (team_id) {
        *team = find_team(c->org, team_id);
        if (*team < 0 || (!c->admin && c->org->members[c->member].team != *team)) {
            in_fail(in, 400, "invalid", "teamId", "'teamId' is not a Team you belong to.");
            return -1;
        }
    }
    if (folder_id) {
        *folder = find_folder(c->org, folder_id);
        if (*folder < 0) {
            ik_err(in->resp, 404, "folder_not_found",
                   "The Folder was not found or you do not have permission to access the Folder.");
            in->bad = 1;
            return -1;
        }
    }
    return 0;
}

static void pkg_response(ik_ctx *x, const ik_pkg *p, int with_pkg)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "packageId", p->id);
    if (with_pkg)
        cJSON_AddItemToObject(r, "package", pkg_full(p, x->base, p->gen_links));
    else
        cJSON_AddNullToObject(r, "package");
    sbx_resp_json(x->resp, 200, r);
}

/* Recipients with optional template binding; out validated. */
static int parse_recips(ik_in *in, const cJSON *jrec, const ik_template *t, ik_sin *out, int *nr)
{
    if (parse_people(in, jrec, out, IK_MAX_RECIPS, nr, 1) < 0) return -1;
    for (int i = 0; i < *nr; i++) {
        if (out[i].trole || out[i].tid) {
            int ok = 0;
            for (int k = 0; t && k < t->nrecips && !ok; k++)
                if ((out[i].trole && strcasecmp(out[i].trole, t->recips[k].trole) == 0) ||
                    (out[i].tid && strcasecmp(out[i].tid, t->recips[k].id) == 0)) {
                    out[i].trole = t->recips[k].trole;
                    ok = 1;
                }
            if (!ok) {
                ik_err(in->resp, 400, "package_invalid_template_role",
                       "Recipient template role '%.64s' was not found on the Template.",
                       out[i].trole ? out[i].trole : out[i].tid);
                in->bad = 1;
                return -1;
            }
        }
        if (validate_person(in, &out[i], 1) < 0) return -1;
    }
    return 0;
}

static void h_add(ik_ctx *x)
{
    const ik_caller *c = &x->c;
    if (!c->can_write) {
        ik_err(x->resp, 403, "package_not_authorized",
               "You do not have permission to add Packages (the Package Editor or Sign Editor "
               "role is required).");
        return;
    }
    cJSON *b = ik_body(x->req, x->resp, 0);
    if (!b) return;
    ik_state *st = x->st;
    uint64_t now = x->req->now_ms;
    ik_in in = {b, x->resp, "package", 0};
    ik_sin *given = calloc(3 * IK_MAX_SIGNERS + IK_MAX_RECIPS, sizeof *given);
    ik_din *docs = calloc(IK_MAX_DOCS + 4, sizeof *docs);
    ik_pkg *p = NULL;
    if (!given || !docs) {
        ik_err(x->resp, 500, "server_exception", "Out of memory.");
        goto out;
    }
    ik_sin *sg = given + IK_MAX_SIGNERS, *rc = given + 2 * IK_MAX_SIGNERS;
    const char *name = in_str(&in, "name", IK_MAX_NAME);
    const char *type = in_str(&in, "type", 32);
    const char *state = in_str(&in, "state", 16);
    const char *sign_by = in_str(&in, "timeSignBy", 40);
    const char *tid = in_str(&in, "templateId", 64);
    const cJSON *jsig = in_arr(&in, "signers", IK_MAX_SIGNERS);
    const cJSON *jrec = in_arr(&in, "recipients", IK_MAX_RECIPS);
    const cJSON *jdoc = in_arr(&in, "documents", IK_MAX_DOCS);
    int ret_pkg = in_bool(&in, "returnPackage", 0);
    int gen_links = in_bool(&in, "generateSignerLinks", 0);
    int shared = in_bool(&in, "shared", 0);
    const char *team_id = in_str(&in, "teamId", 64);
    const char *folder_id = in_str(&in, "folderId", 64);
    if (in.bad) goto out;
    ik_template *t = NULL;
    if (tid) {
        t = tpl_find(c, tid);
        if (!t) {
            ik_err(x->resp, 404, "template_not_found",
                   "The Template was not found or you do not have permission to access the "
                   "Template.");
            goto out;
        }
    }
    if (!state) state = "draft";
    if (strcmp(state, "open") && strcmp(state, "draft") && strcmp(state, "select") &&
        strcmp(state, "add")) {
        ik_err(x->resp, 400, "package_invalid_state",
               "Valid Package 'state' is required: open, draft, select or add.");
        goto out;
    }
    int embedded = !strcmp(state, "select") || !strcmp(state, "add");
    if (!type && t) type = t->ptype;
    if (!type && embedded) type = "concurrent";
    if (!type || !valid_type(type)) {
        ik_err(x->resp, 400, "package_invalid_type", "Valid Package 'type' is required.");
        goto out;
    }
    if (!name || is_blank(name)) {
        if (!t) {
            ik_err(x->resp, 400, "package_invalid_name", "Package 'name' is required.");
            goto out;
        }
        name = t->name;
    }
    int ng = 0, ns = 0, nr = 0, nd = 0;
    if (parse_people(&in, jsig, given, IK_MAX_SIGNERS, &ng, 0) < 0) goto out;
    if (t) {
        if (bind_template_signers(&in, t, given, ng, sg, &ns) < 0) goto out;
    } else {
        memcpy(sg, given, (size_t)ng * sizeof *sg);
        ns = ng;
    }
    for (int i = 0; i < ns; i++)
        if (validate_person(&in, &sg[i], 0) < 0) goto out;
    if (parse_recips(&in, jrec, t, rc, &nr) < 0) goto out;
    if (check_duplicates(&in, sg, ns, rc, nr) < 0) goto out;
    if (parse_documents(st, c, &in, jdoc, t, docs, &nd) < 0) goto out;
    if (!embedded && nd == 0) {
        ik_err(x->resp, 400, "package_add_no_documents",
               "At least one document is required to add a Package.");
        goto out;
    }
    if (!strcmp(state, "open") && ns == 0) {
        ik_err(x->resp, 400, "package_add_no_signers",
               "At least one signer is required to add an open Package.");
        goto out;
    }
    uint64_t sb = now + 30 * IK_DAY_MS;
    if (sign_by && check_sign_by(&in, sign_by, now, &sb) < 0) goto out;
    int team = c->org->members[c->member].team, folder = -1;
    if (resolve_team_folder(&in, c, team_id, folder_id, &team, &folder) < 0) goto out;
    ik_pkg scratch;
    memset(&scratch, 0, sizeof scratch);
    apply_texts(&in, &scratch);
    free(scratch.description);
    free(scratch.message);
    free(scratch.category);
    free(scratch.client_no);
    free(scratch.matter_no);
    free(scratch.reminder_msg);
    cJSON_Delete(scratch.ext);
    if (in.bad) goto out;

    p = calloc(1, sizeof *p);
    if (!p) goto oom;
    sbx_rng_uuid(&st->rt, p->id);
    p->org = c->org;
    p->member = c->member;
    p->team = team;
    p->folder = folder;
    p->shared = shared;
    p->api = 1;
    if (c->key_id) snprintf(p->key_id, sizeof p->key_id, "%s", c->key_id);
    if (t) snprintf(p->template_id, sizeof p->template_id, "%s", t->id);
    snprintf(p->type, sizeof p->type, "%s", type);
    p->name = ik_dup(name);
    apply_texts(&in, p);
    p->created = p->modified = now;
    p->sign_by = sb;
    p->gen_links = gen_links;
    p->docs = calloc((size_t)(nd ? nd : 1), sizeof *p->docs);
    if (!p->docs) goto oom;
    p->ndocs = nd;
    for (int d = 0; d < nd; d++) {
        ik_doc *dc = &p->docs[d];
        const ik_din *di = &docs[d];
        sbx_rng_uuid(&st->rt, dc->id);
        if (di->f) {
            snprintf(dc->file_id, sizeof dc->file_id, "%s", di->f->id);
            snprintf(dc->ftype, sizeof dc->ftype, "%s", di->f->ftype);
            dc->size = di->f->size;
            dc->pages = di->f->pages;
            dc->uploaded = di->f->created;
            dc->file_name = ik_dup(di->file_name ? di->file_name : di->f->file_name);
            dc->name = ik_dup(di->name ? di->name : di->f->name);
            dc->external_id = ik_dup(di->external_id ? di->external_id : di->f->external_id);
            di->f->used = 1;
        } else {
            snprintf(dc->file_id, sizeof dc->file_id, "%s", di->td->file_id);
            snprintf(dc->ftype, sizeof dc->ftype, "pdf");
            dc->size = 48213;
            dc->pages = di->td->pages;
            dc->uploaded = t ? t->updated : now;
            dc->file_name = ik_dup(di->file_name ? di->file_name : di->td->file_name);
            dc->name = ik_dup(di->name ? di->name : di->td->name);
            dc->external_id = ik_dup(di->external_id);
        }
        if (di->td) snprintf(dc->tdoc_id, sizeof dc->tdoc_id, "%s", di->td->id);
    }
    if (pkg_set_signers(st, p, sg, ns, now) < 0 || pkg_set_recips(st, p, rc, nr) < 0) goto oom;
    if (!strcmp(type, "video_closing_room")) {
        sbx_rng_uuid(&st->rt, p->meeting_id);
        p->meeting_start = sb > now + IK_DAY_MS ? sb - IK_DAY_MS : now + 3600 * 1000ull;
    }
    snprintf(p->state, sizeof p->state, "%s", state);
    pkg_event(p, now, "Package created through the API by %s %s", c->org->members[c->member].first,
              c->org->members[c->member].last);
    if (!strcmp(state, "open")) pkg_send(p, now);
    p->last_step = now;
    pkg_changed(p, now);
    if (org_add_pkg(c->org, p) < 0) goto oom;
    if (map_put(&st->pkgs, p->id, p) < 0) {
        c->org->npkgs--;
        goto oom;
    }
    if (t) t->last_used = now;
    pkg_response(x, p, ret_pkg || gen_links);
    p = NULL;
    goto out;
oom:
    ik_err(x->resp, 500, "server_exception", "Out of memory.");
out:
    if (p) {
        pkg_unlink(st, p);
        pkg_free(p);
    }
    free(given);
    free(docs);
    cJSON_Delete(b);
}

static int pkg_closed(const ik_pkg *p)
{
    return !strcmp(p->state, "executed") || !strcmp(p->state, "expired") ||
           !strcmp(p->state, "rescinded");
}

static int pkg_is_draft(const ik_pkg *p)
{
    return !strcmp(p->state, "draft") || !strcmp(p->state, "select") || !strcmp(p->state, "add");
}

static ik_pkg *body_pkg(ik_ctx *x, ik_in *in)
{
    const char *id = in_str(in, "packageId", 64);
    if (in->bad) return NULL;
    if (!id) {
        ik_err(x->resp, 400, "package_invalid_package_id", "'packageId' is required.");
        return NULL;
    }
    return pkg_find(x->st, &x->c, id, x->resp);
}

static void h_update(ik_ctx *x)
{
    cJSON *b = ik_body(x->req, x->resp, 0);
    if (!b) return;
    ik_state *st = x->st;
    uint64_t now = x->req->now_ms;
    ik_in in = {b, x->resp, "package", 0};
    ik_sin *buf = calloc(2 * IK_MAX_SIGNERS + IK_MAX_RECIPS, sizeof *buf);
    if (!buf) {
        ik_err(x->resp, 500, "server_exception", "Out of memory.");
        goto out;
    }
    ik_pkg *p = body_pkg(x, &in);
    if (!p || !pkg_writable(&x->c, p, x->resp)) goto out;
    if (pkg_closed(p)) {
        ik_err(x->resp, 400, "package_invalid_state",
               "The Package is %s and can no longer be updated.", p->state);
        goto out;
    }
    const char *name = in_str(&in, "name", IK_MAX_NAME);
    const char *type = in_str(&in, "type", 32);
    const char *state = in_str(&in, "state", 16);
    const char *sign_by = in_str(&in, "timeSignBy", 40);
    const cJSON *jsig = in_arr(&in, "signers", IK_MAX_SIGNERS);
    const cJSON *jrec = in_arr(&in, "recipients", IK_MAX_RECIPS);
    int gen_links = in_bool(&in, "generateSignerLinks", p->gen_links);
    int shared = in_bool(&in, "shared", p->shared);
    if (in.bad) goto out;
    if (jget(b, "name") && (!name || is_blank(name))) {
        ik_err(x->resp, 400, "package_invalid_name", "Package 'name' is required.");
        goto out;
    }
    if (type && strcmp(type, p->type) != 0) {
        if (!valid_type(type)) {
            ik_err(x->resp, 400, "package_invalid_type", "Valid Package 'type' is required.");
            goto out;
        }
        if (!pkg_is_draft(p)) {
            ik_err(x->resp, 400, "package_invalid_type",
                   "The 'type' of a Package cannot be changed once it has been sent.");
            goto out;
        }
    }
    int send = 0, to_draft = 0;
    if (state && strcmp(state, p->state) != 0) {
        if (!strcmp(state, "open") && pkg_is_draft(p)) {
            send = 1;
        } else if (!strcmp(state, "draft") && pkg_is_draft(p)) {
            to_draft = 1; /* select/add converted to a draft (kept past the 24 h clean-up) */
        } else {
            ik_err(x->resp, 400, "package_invalid_state",
                   "The Package 'state' cannot change from %s to %.16s.", p->state, state);
            goto out;
        }
    }
    uint64_t sb = p->sign_by;
    if (sign_by && check_sign_by(&in, sign_by, now, &sb) < 0) goto out;
    /* signers */
    ik_sin *sg = buf, *rc = buf + 2 * IK_MAX_SIGNERS;
    int ns = 0, nr = 0, replace = 0;
    int change_idx[IK_MAX_SIGNERS];
    if (jsig) {
        if (parse_people(&in, jsig, sg, IK_MAX_SIGNERS, &ns, 0) < 0) goto out;
        if (pkg_is_draft(p)) {
            replace = 1;
            for (int i = 0; i < ns; i++)
                if (validate_person(&in, &sg[i], 0) < 0) goto out;
        } else {
            for (int i = 0; i < ns; i++) {
                if (!sg[i].id) {
                    ik_err(x->resp, 400, "signer_invalid_signer_id",
                           "'signerId' is required to change a signer of an open Package "
                           "(signers cannot be added or removed once it is sent).");
                    goto out;
                }
                char norm[37];
                int k = -1;
                if (ik_guid_norm(sg[i].id, norm) == 0)
                    for (int j = 0; j < p->nsigners; j++)
                        if (!strcmp(p->signers[j].id, norm)) k = j;
                if (k < 0) {
                    ik_err(x->resp, 404, "signer_not_found",
                           "The Signer '%.64s' was not found on the Package.", sg[i].id);
                    goto out;
                }
                for (int j = 0; j < i; j++)
                    if (change_idx[j] == k) {
                        ik_err(x->resp, 400, "package_duplicate_recipients",
                               "Signer '%s' appears more than once.", p->signers[k].id);
                        goto out;
                    }
                if (signer_done(&p->signers[k])) {
                    ik_err(x->resp, 400, "signer_invalid_state",
                           "Signer '%s' has already signed and cannot be changed.",
                           p->signers[k].id);
                    goto out;
                }
                change_idx[i] = k;
                const ik_signer *cur = &p->signers[k];
                if (!sg[i].first) sg[i].first = cur->first;
                if (!sg[i].last) sg[i].last = cur->last;
                if (!sg[i].email) sg[i].email = cur->email;
                if (!jget(cJSON_GetArrayItem(jsig, i), "mobileNumber")) sg[i].mobile = cur->mobile;
                if (validate_person(&in, &sg[i], 0) < 0) goto out;
            }
        }
    }
    if (jrec && parse_recips(&in, jrec, NULL, rc, &nr) < 0) goto out;
    {
        /* duplicates against the resulting signer and recipient lists */
        ik_sin *all = buf + IK_MAX_SIGNERS; /* the final signer list */
        int na = 0;
        if (replace) {
            memcpy(all, sg, (size_t)ns * sizeof *all);
            na = ns;
        } else {
            for (int j = 0; j < p->nsigners; j++) {
                memset(&all[na], 0, sizeof all[na]);
                all[na].email = p->signers[j].email;
                for (int i = 0; i < ns && jsig; i++)
                    if (change_idx[i] == j) all[na].email = sg[i].email;
                na++;
            }
        }
        ik_sin *rl = rc;
        int nrl = nr;
        ik_sin cur_r[IK_MAX_RECIPS];
        if (!jrec) {
            for (int j = 0; j < p->nrecips && j < IK_MAX_RECIPS; j++) {
                memset(&cur_r[j], 0, sizeof cur_r[j]);
                cur_r[j].email = p->recips[j].email;
            }
            rl = cur_r;
            nrl = p->nrecips;
        }
        if (check_duplicates(&in, all, na, rl, nrl) < 0) goto out;
    }
    if (send && (replace ? ns : p->nsigners) == 0) {
        ik_err(x->resp, 400, "package_send_no_signers",
               "At least one signer is required to send a Package.");
        goto out;
    }
    if (send && p->ndocs == 0) {
        ik_err(x->resp, 400, "package_send_no_documents",
               "At least one document is required to send a Package.");
        goto out;
    }
    ik_pkg scratch;
    memset(&scratch, 0, sizeof scratch);
    apply_texts(&in, &scratch);
    free(scratch.description);
    free(scratch.message);
    free(scratch.category);
    free(scratch.client_no);
    free(scratch.matter_no);
    free(scratch.reminder_msg);
    cJSON_Delete(scratch.ext);
    if (in.bad) goto out;
    /* apply */
    if (name) ik_set(&p->name, name);
    if (type) snprintf(p->type, sizeof p->type, "%s", type);
    apply_texts(&in, p);
    p->shared = shared;
    p->gen_links = gen_links;
    if (sb != p->sign_by) {
        char t1[40];
        ik_time(sb, t1, sizeof t1);
        pkg_event(p, now, "Sign-by date changed to %s", t1);
        p->sign_by = sb;
    }
    if (replace) {
        if (pkg_set_signers(st, p, sg, ns, now) < 0) {
            ik_err(x->resp, 500, "server_exception", "Out of memory.");
            goto out;
        }
    } else if (jsig) {
        for (int i = 0; i < ns; i++) {
            ik_signer *s = &p->signers[change_idx[i]];
            char *nf = ik_dup(sg[i].first), *nl = ik_dup(sg[i].last), *ne = ik_dup(sg[i].email),
                 *nm = ik_dup(sg[i].mobile);
            int changed_person = strcasecmp(ne ? ne : "", s->email ? s->email : "") != 0;
            pkg_event(p, now, "Signer changed from %s %s <%s> to %s %s <%s>", s->first, s->last,
                      s->email, nf ? nf : "", nl ? nl : "", ne ? ne : "");
            free(s->first);
            free(s->last);
            free(s->email);
            free(s->mobile);
            s->first = nf;
            s->last = nl;
            s->email = ne;
            s->mobile = nm;
            s->updated = now;
            if (changed_person) {
                s->viewed = 0;
                for (int d = 0; d < p->ndocs; d++) p->docs[d].revs[change_idx[i]].opened = 0;
                signer_new_link(st, p, s, &st->rt);
            }
        }
    }
    if (jrec && pkg_set_recips(st, p, rc, nr) < 0) {
        ik_err(x->resp, 500, "server_exception", "Out of memory.");
        goto out;
    }
    if (to_draft) snprintf(p->state, sizeof p->state, "draft");
    if (send) pkg_send(p, now);
    pkg_changed(p, now);
    pkg_response(x, p, 1);
out:
    free(buf);
    cJSON_Delete(b);
}

static void h_rescind(ik_ctx *x)
{
    cJSON *b = ik_body(x->req, x->resp, 0);
    if (!b) return;
    ik_in in = {b, x->resp, "package", 0};
    ik_pkg *p = body_pkg(x, &in);
    if (!p || !pkg_writable(&x->c, p, x->resp)) goto out;
    const char *msg = in_str(&in, "rescindMessage", IK_MAX_TEXT);
    int notify = in_bool(&in, "notify", 0);
    if (in.bad) goto out;
    if (strcmp(p->state, "open") != 0) {
        ik_err(x->resp, 400, "package_invalid_state",
               "Only open Packages can be rescinded; this Package is %s.", p->state);
        goto out;
    }
    pkg_rescind(p, x->req->now_ms, msg && *msg ? msg : NULL);
    if (notify) pkg_event(p, x->req->now_ms, "Signers notified of the rescind");
    pkg_changed(p, x->req->now_ms);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "packageId", p->id);
    sbx_resp_json(x->resp, 200, r);
out:
    cJSON_Delete(b);
}

static void h_send(ik_ctx *x)
{
    cJSON *b = ik_body(x->req, x->resp, 0);
    if (!b) return;
    ik_in in = {b, x->resp, "package", 0};
    ik_pkg *p = body_pkg(x, &in);
    if (!p || !pkg_writable(&x->c, p, x->resp)) goto out;
    uint64_t now = x->req->now_ms;
    if (!pkg_is_draft(p)) {
        ik_err(x->resp, 400, "package_invalid_state",
               "Only draft Packages can be sent; this Package is %s.", p->state);
        goto out;
    }
    if (p->nsigners == 0) {
        ik_err(x->resp, 400, "package_send_no_signers",
               "At least one signer is required to send a Package.");
        goto out;
    }
    if (p->ndocs == 0) {
        ik_err(x->resp, 400, "package_send_no_documents",
               "At least one document is required to send a Package.");
        goto out;
    }
    if (p->sign_by && p->sign_by <= now) {
        ik_err(x->resp, 400, "package_range_time_sign_by",
               "The Package's 'timeSignBy' has passed; update it before sending.");
        goto out;
    }
    pkg_send(p, now);
    pkg_changed(p, now);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "packageId", p->id);
    sbx_resp_json(x->resp, 200, r);
out:
    cJSON_Delete(b);
}

static void h_delete(ik_ctx *x)
{
    cJSON *b = ik_body(x->req, x->resp, 0);
    if (!b) return;
    ik_in in = {b, x->resp, "package", 0};
    ik_pkg *p = body_pkg(x, &in);
    if (!p || !pkg_writable(&x->c, p, x->resp)) goto out;
    uint64_t now = x->req->now_ms;
    if (!strcmp(p->state, "open")) {
        ik_err(x->resp, 400, "package_invalid_state",
               "Open Packages must be rescinded before they can be deleted.");
        goto out;
    }
    if (!strcmp(p->state, "executed") && p->retention > now) {
        char t1[40];
        ik_time(p->retention, t1, sizeof t1);
        ik_err(x->resp, 400, "package_delete_retention",
               "The Package cannot be deleted before the end of its retention period (%s).", t1);
        goto out;
    }
    ik_org *o = p->org;
    for (int i = 0; i < o->npkgs; i++)
        if (o->pkgs[i] == p) {
            memmove(&o->pkgs[i], &o->pkgs[i + 1], (size_t)(o->npkgs - i - 1) * sizeof *o->pkgs);
            o->npkgs--;
            break;
        }
    map_del(&x->st->pkgs, p->id);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "packageId", p->id);
    pkg_unlink(x->st, p);
    pkg_free(p);
    sbx_resp_json(x->resp, 200, r);
out:
    cJSON_Delete(b);
}

static void h_get(ik_ctx *x, const char *id, int what)
{
    ik_pkg *p = pkg_find(x->st, &x->c, id, x->resp);
    if (!p) return;
    cJSON *j = what == 0 ? pkg_full(p, x->base, p->gen_links)
                         : what == 1 ? pkg_status(p, x->base) : pkg_data(p);
    sbx_resp_json(x->resp, 200, j);
}

static void h_download(ik_ctx *x, const char *id)
{
    ik_pkg *p = pkg_find(x->st, &x->c, id, x->resp);
    if (!p) return;
    const char *type = sbx_query(x->req, "type", 1);
    if (!type || !*type) type = "executed";
    int kind = !strcasecmp(type, "executed") ? 0 : !strcasecmp(type, "cac") ? 1
                                                 : !strcasecmp(type, "masterfile") ? 2 : -1;
    if (kind < 0) {
        ik_err(x->resp, 400, "package_invalid_download_type",
               "Valid download 'type' is required: executed, cac or masterfile.");
        return;
    }
    if (kind < 2 && strcmp(p->state, "executed") != 0) {
        ik_err(x->resp, 400, "package_invalid_state",
               "The Package has not been executed (it is %s): only executed Packages can be "
               "downloaded as %s.",
               p->state, kind == 0 ? "executed documents" : "a CAC");
        return;
    }
    if (kind == 2 && pkg_is_draft(p)) {
        ik_err(x->resp, 400, "package_invalid_state",
               "The MasterFile audit trail is available once the Package has been sent.");
        return;
    }
    char lines[IK_MAX_EVENTS + 40][200];
    const char *lp[IK_MAX_EVENTS + 40];
    size_t n = 0;
    char t1[40], title[300];
#define LINE(...) (snprintf(lines[n], sizeof lines[n], __VA_ARGS__), lp[n] = lines[n], n++)
    LINE("Package: %s", p->id);
    LINE("Organization: %s", p->org->name);
    LINE("Type: %s    State: %s", p->type, p->state);
    if (kind == 2) {
        snprintf(title, sizeof title, "MasterFile Audit Trail - %s", p->name ? p->name : "");
        LINE("%s", "");
        for (int i = 0; i < p->nev && n < IK_MAX_EVENTS + 30; i++) {
            ik_time(p->ev[i].ms, t1, sizeof t1);
            LINE("%s  %s", t1, p->ev[i].text);
        }
    } else {
        snprintf(title, sizeof title, "%s%s", kind == 1 ? "Certificate of Authenticity - " : "",
                 p->name ? p->name : "");
        ik_time(p->executed, t1, sizeof t1);
        LINE("Executed: %s", t1);
        LINE("%s", "Documents:");
        for (int d = 0; d < p->ndocs && n < 30; d++)
            LINE("  %d. %s (%s)", d + 1, p->docs[d].name ? p->docs[d].name : "",
                 p->docs[d].file_name ? p->docs[d].file_name : "");
        LINE("%s", "Signed by:");
        for (int i = 0; i < p->nsigners && n < IK_MAX_EVENTS + 30; i++) {
            ik_time(p->signers[i].signed_at, t1, sizeof t1);
            LINE("  %s %s <%s> at %s", p->signers[i].first, p->signers[i].last,
                 p->signers[i].email, t1);
        }
    }
#undef LINE
    sb_buf pdf;
    sb_buf_init(&pdf, 4u << 20);
    ik_pdf(&pdf, title, lp, n);
    sbx_resp_bytes(x->resp, 200, "application/pdf", pdf.data, pdf.len);
    sb_buf_free(&pdf);
    char fn[160], cd[220];
    slug_file(p->name ? p->name : "package", "pdf", fn, sizeof fn);
    snprintf(cd, sizeof cd, "attachment; filename=\"%s%s\"",
             kind == 2 ? "masterfile-" : kind == 1 ? "cac-" : "", fn);
    sbx_resp_header(x->resp, "Content-Disposition", cd);
}

static void h_link(ik_ctx *x, const char *id, const char *sid)
{
    ik_pkg *p = pkg_find(x->st, &x->c, id, x->resp);
    if (!p) return;
    if (strcmp(p->state, "open") != 0) {
        ik_err(x->resp, 400, "package_invalid_state",
               "Sign links can only be generated for open Packages; this Package is %s.", p->state);
        return;
    }
    char norm[37];
    int k = -1;
    if (ik_guid_norm(sid, norm) == 0)
        for (int i = 0; i < p->nsigners; i++)
            if (!strcmp(p->signers[i].id, norm)) k = i;
    if (k < 0) {
        ik_err(x->resp, 404, "signer_not_found",
               "The Signer was not found or you do not have permission to access the Signer.");
        return;
    }
    if (signer_done(&p->signers[k])) {
        ik_err(x->resp, 400, "signer_invalid_state", "The Signer has already signed the Package.");
        return;
    }
    char tok[40], u[512];
    sbx_token("", 16, tok, sizeof tok);
    uint64_t exp = x->req->now_ms + IK_LINK_TTL_MS;
    if (link_register(x->st, p, &p->signers[k], tok, exp) < 0) {
        ik_err(x->resp, 500, "server_exception", "Out of memory.");
        return;
    }
    link_url(x->base, tok, u, sizeof u);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "packageId", p->id);
    jstr(r, "name", p->name);
    cJSON_AddStringToObject(r, "link", u);
    cJSON_AddStringToObject(r, "type", "package_sign");
    cJSON_AddStringToObject(r, "token", tok);
    jtime(r, "timeExpires", exp);
    sbx_resp_json(x->resp, 200, r);
}

/* Page count of a PDF: "/Type /Page" objects (not /Pages), at least 1. */
static int pdf_pages(const char *d, size_t n)
{
    int pages = 0;
    for (const char *p = d; (p = ik_memfind(p, (size_t)(d + n - p), "/Type", 5)) != NULL; p += 5) {
        const char *q = p + 5;
        while (q < d + n && (*q == ' ' || *q == '\r' || *q == '\n')) q++;
        if (d + n - q >= 5 && memcmp(q, "/Page", 5) == 0 && (d + n - q == 5 || q[5] != 's'))
            pages++;
        if (pages > 100000) break;
    }
    return pages ? pages : 1;
}

static void h_upload(ik_ctx *x)
{
    const ik_caller *c = &x->c;
    if (!c->can_write) {
        ik_err(x->resp, 403, "file_not_authorized",
               "You do not have permission to upload files (the Package Editor or Sign Editor "
               "role is required).");
        return;
    }
    const char *ct = x->req->content_type;
    if (!ct || strncasecmp(ct, "multipart/form-data", 19) != 0) {
        ik_err(x->resp, 415, "file_invalid_content_type",
               "Upload files as multipart/form-data (one part per file, raw bytes, with "
               "Content-Disposition: form-data; filename=\"...\").");
        return;
    }
    const char *qtype = sbx_query(x->req, "type", 1);
    const char *ext = sbx_query(x->req, "externalId", 1);
    if (qtype && *qtype && strcasecmp(qtype, "temporary") != 0) {
        ik_err(x->resp, 400, "file_invalid_type", "Valid upload 'type' is required: temporary.");
        return;
    }
    if (ext && (strlen(ext) > 255 || !ik_utf8_ok(ext))) {
        ik_err(x->resp, 400, "file_length_external_id", "'externalId' must be 255 characters or fewer.");
        return;
    }
    ik_part parts[IK_MAX_UPLOAD_PARTS];
    int np = 0;
    int rc = ik_multipart(x->req->body, x->req->body_len, ct, parts, IK_MAX_UPLOAD_PARTS, &np);
    if (rc == -2) {
        ik_err(x->resp, 400, "file_range_files", "At most %d files can be uploaded at once.",
               IK_MAX_UPLOAD_PARTS);
        return;
    }
    if (rc < 0) {
        ik_err(x->resp, 400, "file_invalid_request", "The multipart/form-data body is malformed.");
        return;
    }
    int nfiles = 0;
    for (int i = 0; i < np; i++) {
        ik_part *pt = &parts[i];
        if (!pt->has_filename) continue;
        nfiles++;
        if (!pt->filename[0] || !ik_utf8_ok(pt->filename)) {
            ik_err(x->resp, 400, "file_invalid_file_name", "Each file needs a filename.");
            return;
        }
        if (pt->len > IK_MAX_FILE) {
            ik_err(x->resp, 400, "file_range_size", "Files may not exceed 25 MB ('%.100s').",
                   pt->filename);
            return;
        }
        const char *dot = strrchr(pt->filename, '.');
        const char *fext = dot ? dot + 1 : "";
        int is_pdf = !strcasecmp(fext, "pdf") || !strncasecmp(pt->ctype, "application/pdf", 15);
        int is_docx = !strcasecmp(fext, "docx"), is_doc = !strcasecmp(fext, "doc");
        if (is_pdf) {
            size_t scan = pt->len < 1024 ? pt->len : 1024;
            if (!ik_memfind(pt->data, scan, "%PDF-", 5)) {
                ik_err(x->resp, 400, "file_exception_pdf", "PDF Error: PDF header not found.");
                return;
            }
        } else if (is_docx) {
            if (pt->len < 4 || memcmp(pt->data, "PK\x03\x04", 4) != 0) {
                ik_err(x->resp, 400, "file_exception_conversion",
                       "The file '%.100s' could not be converted to PDF.", pt->filename);
                return;
            }
        } else if (is_doc) {
            if (pt->len < 8 || memcmp(pt->data, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 8) != 0) {
                ik_err(x->resp, 400, "file_exception_conversion",
                       "The file '%.100s' could not be converted to PDF.", pt->filename);
                return;
            }
        } else {
            ik_err(x->resp, 400, "file_invalid_file_type",
                   "Unsupported file type '.%.16s': upload PDF, DOCX or DOC files.", fext);
            return;
        }
    }
    if (!nfiles) {
        ik_err(x->resp, 400, "file_upload_no_files",
               "No files were uploaded: send one multipart part per file with a filename.");
        return;
    }
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < np; i++) {
        ik_part *pt = &parts[i];
        if (!pt->has_filename) continue;
        const char *dot = strrchr(pt->filename, '.');
        const char *fext = dot ? dot + 1 : "";
        int is_pdf = !strcasecmp(fext, "pdf") || !strncasecmp(pt->ctype, "application/pdf", 15);
        ik_file *f = file_new(x->st, c->org, &x->st->rt, pt->filename, pt->filename,
                              is_pdf ? "pdf" : (!strcasecmp(fext, "docx") ? "docx" : "doc"),
                              pt->len, is_pdf ? pdf_pages(pt->data, pt->len) : 1 + (int)(pt->len / 40000),
                              x->req->now_ms, 0);
        if (!f) {
            cJSON_Delete(arr);
            ik_err(x->resp, 500, "server_exception", "Out of memory.");
            return;
        }
        if (ext && *ext) f->external_id = ik_dup(ext);
        cJSON_AddItemToArray(arr, file_json(f));
    }
    sbx_resp_json(x->resp, 200, arr);
}

/* ---- OAuth: keys and JWTs ----------------------------------------------------------------- */

static size_t b64u(const unsigned char *in, size_t n, char *out)
{
    return sb_base64url_encode(in, n, out);
}

/* Generate the RS256 key once (lazily; RSA-2048 generation takes a moment). 0/-1. */
static int ik_key(ik_state *st)
{
    pthread_mutex_lock(&st->keymu);
    if (st->jwk) {
        pthread_mutex_unlock(&st->keymu);
        return 0;
    }
    EVP_PKEY *pk = EVP_RSA_gen(2048);
    BIGNUM *n = NULL, *e = NULL;
    int ok = pk && EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
             EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e) == 1;
    if (ok) {
        unsigned char nb[512], eb[16], md[32];
        int nl = BN_bn2bin(n, nb), el = BN_bn2bin(e, eb);
        ok = nl > 0 && nl <= 512 && el > 0 && el <= 16;
        if (ok) {
            b64u(nb, (size_t)nl, st->jwk_n);
            b64u(eb, (size_t)el, st->jwk_e);
            SHA256(nb, (size_t)nl, md);
            for (int i = 0; i < 16; i++) snprintf(st->kid + 2 * i, 3, "%02X", md[i]);
            st->jwk = pk;
            pk = NULL;
        }
    }
    BN_free(n);
    BN_free(e);
    EVP_PKEY_free(pk);
    pthread_mutex_unlock(&st->keymu);
    return ok ? 0 : -1;
}

/* header.payload.signature (RS256); malloc'd or NULL. */
static char *ik_jwt(ik_state *st, const char *typ, cJSON *claims)
{
    if (ik_key(st) < 0) return NULL;
    cJSON *h = cJSON_CreateObject();
    cJSON_AddStringToObject(h, "alg", "RS256");
    cJSON_AddStringToObject(h, "kid", st->kid);
    cJSON_AddStringToObject(h, "typ", typ);
    char *hs = cJSON_PrintUnformatted(h), *ps = cJSON_PrintUnformatted(claims);
    cJSON_Delete(h);
    char *out = NULL;
    if (!hs || !ps) goto done;
    size_t hl = strlen(hs), pl = strlen(ps);
    size_t cap = sb_base64url_len(hl) + sb_base64url_len(pl) + 400 + 4;
    out = malloc(cap);
    if (!out) goto done;
    size_t o = b64u((const unsigned char *)hs, hl, out);
    out[o++] = '.';
    o += b64u((const unsigned char *)ps, pl, out + o);
    out[o] = 0;
    unsigned char sig[512];
    size_t sl = sizeof sig;
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    int ok = mc && EVP_DigestSignInit(mc, NULL, EVP_sha256(), NULL, st->jwk) == 1 &&
             EVP_DigestSign(mc, sig, &sl, (const unsigned char *)out, o) == 1;
    EVP_MD_CTX_free(mc);
    if (!ok || sb_base64url_len(sl) + o + 2 > cap) {
        free(out);
        out = NULL;
        goto done;
    }
    out[o++] = '.';
    o += b64u(sig, sl, out + o);
    out[o] = 0;
done:
    free(hs);
    free(ps);
    return out;
}

/* ---- OAuth: endpoints ------------------------------------------------------------------------- */

static const char *const ik_scopes[] = {"openid", "profile", "email", "offline_access",
                                        "organization", NULL};

static int redirect_ok(const char *u)
{
    if (!u || strlen(u) > 1000 || strchr(u, '#')) return 0;
    static const char *const fixed[] = {"https://claude.ai/api/mcp/auth_callback",
                                        "https://chatgpt.com/connector_platform_oauth_redirect",
                                        "https://oauth.pstmn.io/v1/callback"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (!strcmp(u, fixed[i])) return 1;
    static const char *const loop[] = {"http://127.0.0.1", "http://localhost", "http://[::1]",
                                       "https://localhost", "https://127.0.0.1"};
    for (size_t i = 0; i < sizeof loop / sizeof loop[0]; i++) {
        size_t n = strlen(loop[i]);
        if (!strncasecmp(u, loop[i], n) && (u[n] == 0 || u[n] == ':' || u[n] == '/' || u[n] == '?')) {
            if (u[n] == ':') {
                const char *p = u + n + 1;
                int digits = 0;
                while (isdigit((unsigned char)*p)) p++, digits++;
                if (!digits || digits > 5 || (*p && *p != '/' && *p != '?')) return 0;
            }
            return 1;
        }
    }
    return 0;
}

static int scopes_ok(const char *scope)
{
    if (!scope || !*scope || strlen(scope) >= 128) return 0;
    int any = 0;
    for (const char *p = scope; *p;) {
        while (*p == ' ') p++;
        const char *e = p;
        while (*e && *e != ' ') e++;
        if (e == p) break;
        int ok = 0;
        for (int i = 0; ik_scopes[i]; i++)
            if (strlen(ik_scopes[i]) == (size_t)(e - p) && !strncmp(p, ik_scopes[i], (size_t)(e - p)))
                ok = 1;
        if (!ok) return 0;
        any = 1;
        p = e;
    }
    return any;
}

/* 302 back to the client with params (k=v pairs, NULL-terminated; NULL values skipped). */
static void oauth_redirect(sbx_resp *resp, const char *uri, const char *const *kv)
{
    sb_buf b;
    sb_buf_init(&b, 8192);
    sb_buf_puts(&b, uri);
    char sep = strchr(uri, '?') ? '&' : '?';
    for (int i = 0; kv[i]; i += 2) {
        if (!kv[i + 1]) continue;
        sb_buf_append(&b, &sep, 1);
        sep = '&';
        sb_buf_puts(&b, kv[i]);
        sb_buf_append(&b, "=", 1);
        ik_urlenc(&b, kv[i + 1]);
    }
    sbx_resp_redirect(resp, b.data ? b.data : uri);
    sb_buf_free(&b);
}

static void html_page(sbx_resp *resp, int status, const char *title, const char *body_html)
{
    sb_buf b;
    sb_buf_init(&b, 1u << 20);
    char t[256];
    sbx_html_escape(title, t, sizeof t);
    sb_buf_printf(&b,
                  "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>%s - "
                  "iinked Sign</title><style>body{font-family:sans-serif;max-width:32rem;margin:3rem "
                  "auto}label{display:block;margin:.6rem 0}input[type=email],input[type=password]"
                  "{width:100%%}</style></head><body><h1>%s</h1>\n",
                  t, t);
    sb_buf_puts(&b, body_html);
    sb_buf_puts(&b, "\n</body></html>\n");
    sbx_resp_bytes(resp, status, "text/html; charset=utf-8", b.data, b.len);
    sb_buf_free(&b);
    sbx_resp_header(resp, "Cache-Control", "no-store");
    sbx_resp_header(resp, "X-Frame-Options", "DENY");
}

typedef struct ik_authz {
    const char *response_type, *client_id, *redirect_uri, *scope, *state, *nonce, *challenge,
        *method, *prompt, *login_hint;
} ik_authz;

static const char *kv_get(const sbx_kv *kv, size_t n, const char *k)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(kv[i].key, k)) return kv[i].val;
    return NULL;
}

static void authz_from(ik_authz *a, const sbx_kv *kv, size_t n)
{
    a->response_type = kv_get(kv, n, "response_type");
    a->client_id = kv_get(kv, n, "client_id");
    a->redirect_uri = kv_get(kv, n, "redirect_uri");
    a->scope = kv_get(kv, n, "scope");
    a->state = kv_get(kv, n, "state");
    a->nonce = kv_get(kv, n, "nonce");
    a->challenge = kv_get(kv, n, "code_challenge");
    a->method = kv_get(kv, n, "code_challenge_method");
    a->prompt = kv_get(kv, n, "prompt");
    a->login_hint = kv_get(kv, n, "login_hint");
}

/* Validate an authorization request. 1 ok; 0 with the response written (error page or redirect). */
static int authz_check(ik_ctx *x, ik_authz *a)
{
    ik_host *h = x->h;
    if (!a->client_id || strcmp(a->client_id, h->client_id) != 0) {
        html_page(x->resp, 400, "Error",
                  "<p>Sorry, there was an error: <strong>unauthorized_client</strong></p><p>Unknown "
                  "client or client not enabled on this iinked Sign instance.</p>");
        return 0;
    }
    if (!redirect_ok(a->redirect_uri)) {
        html_page(x->resp, 400, "Error",
                  "<p>Sorry, there was an error: <strong>invalid_request</strong></p><p>Invalid "
                  "redirect_uri: it is not registered for this client.</p>");
        return 0;
    }
    const char *err = NULL, *desc = NULL;
    if (!a->response_type || strcmp(a->response_type, "code") != 0) {
        err = "unsupported_response_type";
        desc = "Response type not supported";
    } else if (!a->scope || !*a->scope) {
        err = "invalid_scope";
        desc = "scope missing";
    } else if (!scopes_ok(a->scope)) {
        err = "invalid_scope";
        desc = "Invalid scope";
    } else if (a->state && strlen(a->state) > 2000) {
        err = "invalid_request";
        desc = "state too long";
    } else if (a->nonce && strlen(a->nonce) > 300) {
        err = "invalid_request";
        desc = "Nonce too long";
    } else if (a->challenge) {
        size_t cl = strlen(a->challenge);
        const char *m = a->method && *a->method ? a->method : "plain";
        if (cl < 43 || cl > 128) {
            err = "invalid_request";
            desc = "code challenge too short or too long";
        } else if (strcmp(m, "S256") && strcmp(m, "plain")) {
            err = "invalid_request";
            desc = "Transform algorithm not supported";
        }
    } else if (a->method && *a->method) {
        err = "invalid_request";
        desc = "code_challenge_method without code_challenge";
    }
    if (err) {
        const char *kv[] = {"error", err, "error_description", desc, "state", a->state, NULL};
        oauth_redirect(x->resp, a->redirect_uri, kv);
        return 0;
    }
    return 1;
}

static void issue_code(ik_ctx *x, const ik_authz *a, ik_org *o, int member)
{
    ik_tok *t = calloc(1, sizeof *t);
    char code[64];
    sbx_token("", 32, code, sizeof code);
    if (!t) goto oom;
    t->kind = TK_CODE;
    t->tok = strdup(code);
    t->host = x->h;
    t->org = o;
    t->member = member;
    t->expires = x->req->now_ms + IK_CODE_TTL_MS;
    t->auth_time = x->req->now_ms / 1000;
    snprintf(t->scope, sizeof t->scope, "%s", a->scope);
    t->redirect_uri = ik_dup(a->redirect_uri);
    t->challenge = ik_dup(a->challenge);
    t->nonce = ik_dup(a->nonce);
    snprintf(t->method, sizeof t->method, "%s",
             a->challenge ? (a->method && *a->method ? a->method : "plain") : "");
    if (!t->tok || !t->redirect_uri || map_put(&x->st->toks, t->tok, t) < 0) goto oom;
    snprintf(x->req->account_id, sizeof x->req->account_id, "%s", o->id);
    char sess[40];
    sbx_token("", 16, sess, sizeof sess);
    const char *kv[] = {"code", code, "scope", a->scope, "state", a->state, "session_state", sess,
                        "iss", x->base, NULL};
    oauth_redirect(x->resp, a->redirect_uri, kv);
    return;
oom:
    tok_free(t);
    html_page(x->resp, 500, "Error", "<p>Sorry, there was an error: server_error</p>");
}

static void login_form(ik_ctx *x, const ik_authz *a, const char *error)
{
    sb_buf b;
    sb_buf_init(&b, 1u << 20);
    char e1[4200], e2[4200];
    const char *hidden[][2] = {{"response_type", a->response_type}, {"client_id", a->client_id},
                               {"redirect_uri", a->redirect_uri}, {"scope", a->scope},
                               {"state", a->state}, {"nonce", a->nonce},
                               {"code_challenge", a->challenge},
                               {"code_challenge_method", a->method}, {"prompt", a->prompt}};
    if (error) {
        sbx_html_escape(error, e1, sizeof e1);
        sb_buf_printf(&b, "<p role=\"alert\" class=\"error\">%s</p>\n", e1);
    }
    sbx_html_escape(a->client_id, e1, sizeof e1);
    sbx_html_escape(a->scope, e2, sizeof e2);
    sb_buf_printf(&b,
                  "<p>The application <strong>%s</strong> wants to access your iinked Sign "
                  "organization (scopes: <code>%s</code>).</p>\n",
                  e1, e2);
    sbx_html_escape(x->base, e1, sizeof e1);
    sb_buf_printf(&b, "<form method=\"post\" action=\"%s/connect/authorize\">\n", e1);
    for (size_t i = 0; i < sizeof hidden / sizeof hidden[0]; i++) {
        if (!hidden[i][1]) continue;
        sbx_html_escape(hidden[i][1], e1, sizeof e1);
        sb_buf_printf(&b, "<input type=\"hidden\" name=\"%s\" value=\"%s\">\n", hidden[i][0], e1);
    }
    sbx_html_escape(a->login_hint ? a->login_hint : "", e1, sizeof e1);
    sb_buf_printf(&b,
                  "<label>Email <input type=\"email\" name=\"email\" value=\"%s\" "
                  "autocomplete=\"username\"></label>\n"
                  "<label>Password <input type=\"password\" name=\"password\" "
                  "autocomplete=\"current-password\"></label>\n"
                  "<button type=\"submit\" name=\"action\" value=\"approve\">Approve</button>\n"
                  "<button type=\"submit\" name=\"action\" value=\"deny\">Deny</button>\n</form>",
                  e1);
    html_page(x->resp, 200, "Sign in", b.data ? b.data : "");
    sb_buf_free(&b);
}

static void h_authorize(ik_ctx *x)
{
    sbx_req *req = x->req;
    snprintf(req->route, sizeof req->route, "%s /connect/authorize", req->method);
    int post = !strcmp(req->method, "POST");
    if (!post && strcmp(req->method, "GET") != 0) {
        sbx_resp_bytes(x->resp, 405, NULL, NULL, 0);
        sbx_resp_header(x->resp, "Allow", "GET, POST");
        return;
    }
    sbx_kv *form = NULL;
    size_t nform = 0;
    ik_authz a;
    memset(&a, 0, sizeof a);
    if (post) {
        if (strncasecmp(req->content_type, "application/x-www-form-urlencoded", 33) != 0 ||
            sbx_parse_form(req->body, req->body_len, &form, &nform) < 0) {
            html_page(x->resp, 400, "Error",
                      "<p>Sorry, there was an error: <strong>invalid_request</strong></p>");
            return;
        }
        authz_from(&a, form, nform);
    } else {
        authz_from(&a, req->query, req->nquery);
    }
    if (!authz_check(x, &a)) goto out;
    ik_host *h = x->h;
    if (!post) {
        if (sbx_auto_approve(x->s) || (a.prompt && !strcmp(a.prompt, "none") && 0)) {
            issue_code(x, &a, h->orgs[0], 0);
        } else if (a.prompt && !strcmp(a.prompt, "none")) {
            const char *kv[] = {"error", "login_required", "state", a.state, NULL};
            oauth_redirect(x->resp, a.redirect_uri, kv);
        } else {
            login_form(x, &a, NULL);
        }
        goto out;
    }
    const char *action = kv_get(form, nform, "action");
    if (!action) action = kv_get(form, nform, "button");
    if (action && (!strcasecmp(action, "deny") || !strcasecmp(action, "cancel") ||
                   !strcasecmp(action, "no"))) {
        const char *kv[] = {"error", "access_denied", "state", a.state, NULL};
        oauth_redirect(x->resp, a.redirect_uri, kv);
        goto out;
    }
    const char *email = kv_get(form, nform, "email");
    if (!email) email = kv_get(form, nform, "username");
    const char *pw = kv_get(form, nform, "password");
    for (int oi = 0; email && pw && oi < h->norgs; oi++) {
        ik_org *o = h->orgs[oi];
        for (int m = 0; m < o->nmembers; m++) {
            const ik_member *mb = &o->members[m];
            if (!strcasecmp(mb->email, email) &&
                sb_ct_equal(mb->password, strlen(mb->password), pw, strlen(pw))) {
                issue_code(x, &a, o, m);
                goto out;
            }
        }
    }
    login_form(x, &a, "Invalid email or password.");
out:
    sbx_kv_free(form, nform);
}

static void token_error(sbx_resp *resp, int status, const char *err, const char *desc)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", err);
    if (desc) cJSON_AddStringToObject(o, "error_description", desc);
    sbx_resp_json(resp, status, o);
    sbx_resp_header(resp, "Cache-Control", "no-store, no-cache, max-age=0");
    sbx_resp_header(resp, "Pragma", "no-cache");
}

static ik_tok *tok_new(ik_ctx *x, int kind, const char *tokstr, const ik_tok *from, uint64_t ttl_ms)
{
    ik_tok *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->kind = kind;
    t->tok = strdup(tokstr);
    t->host = x->h;
    t->org = from->org;
    t->member = from->member;
    t->auth_time = from->auth_time;
    t->expires = x->req->now_ms + ttl_ms;
    snprintf(t->scope, sizeof t->scope, "%s", from->scope);
    if (!t->tok || map_put(&x->st->toks, t->tok, t) < 0) {
        tok_free(t);
        return NULL;
    }
    return t;
}

/* Mint access (+refresh, +id_token) for the grant described by g. */
static void mint_tokens(ik_ctx *x, const ik_tok *g)
{
    uint64_t now_s = x->req->now_ms / 1000;
    const ik_member *mb = &g->org->members[g->member];
    char jti[40], base[300];
    snprintf(base, sizeof base, "%s", x->base);
    sbx_token("", 16, jti, sizeof jti);
    cJSON *cl = cJSON_CreateObject();
    cJSON_AddStringToObject(cl, "iss", base);
    cJSON_AddNumberToObject(cl, "nbf", (double)now_s);
    cJSON_AddNumberToObject(cl, "iat", (double)now_s);
    cJSON_AddNumberToObject(cl, "exp", (double)(now_s + IK_ACCESS_TTL_S));
    cJSON_AddStringToObject(cl, "aud", "iinkedsign_api");
    cJSON *sc = cJSON_AddArrayToObject(cl, "scope");
    for (int i = 0; ik_scopes[i]; i++)
        if (scope_has(g->scope, ik_scopes[i])) cJSON_AddItemToArray(sc, cJSON_CreateString(ik_scopes[i]));
    cJSON *amr = cJSON_AddArrayToObject(cl, "amr");
    cJSON_AddItemToArray(amr, cJSON_CreateString("pwd"));
    cJSON_AddStringToObject(cl, "client_id", x->h->client_id);
    cJSON_AddStringToObject(cl, "sub", mb->id);
    cJSON_AddNumberToObject(cl, "auth_time", (double)g->auth_time);
    cJSON_AddStringToObject(cl, "idp", "local");
    cJSON_AddStringToObject(cl, "organization_id", g->org->id);
    cJSON_AddStringToObject(cl, "jti", jti);
    char *at = ik_jwt(x->st, "at+jwt", cl);
    cJSON_Delete(cl);
    if (!at || !tok_new(x, TK_ACCESS, at, g, IK_ACCESS_TTL_S * 1000)) {
        free(at);
        token_error(x->resp, 500, "server_error", NULL);
        return;
    }
    cJSON *r = cJSON_CreateObject();
    if (scope_has(g->scope, "openid")) {
        unsigned char md[32];
        char ath[64];
        SHA256((const unsigned char *)at, strlen(at), md);
        b64u(md, 16, ath);
        cJSON *ic = cJSON_CreateObject();
        cJSON_AddStringToObject(ic, "iss", base);
        cJSON_AddNumberToObject(ic, "nbf", (double)now_s);
        cJSON_AddNumberToObject(ic, "iat", (double)now_s);
        cJSON_AddNumberToObject(ic, "exp", (double)(now_s + 300));
        cJSON_AddStringToObject(ic, "aud", x->h->client_id);
        cJSON *am = cJSON_AddArrayToObject(ic, "amr");
        cJSON_AddItemToArray(am, cJSON_CreateString("pwd"));
        cJSON_AddStringToObject(ic, "at_hash", ath);
        if (g->nonce) cJSON_AddStringToObject(ic, "nonce", g->nonce);
        cJSON_AddStringToObject(ic, "sub", mb->id);
        cJSON_AddNumberToObject(ic, "auth_time", (double)g->auth_time);
        cJSON_AddStringToObject(ic, "idp", "local");
        char *it = ik_jwt(x->st, "JWT", ic);
        cJSON_Delete(ic);
        if (it) cJSON_AddStringToObject(r, "id_token", it);
        free(it);
    }
    cJSON_AddStringToObject(r, "access_token", at);
    cJSON_AddNumberToObject(r, "expires_in", (double)IK_ACCESS_TTL_S);
    cJSON_AddStringToObject(r, "token_type", "Bearer");
    free(at);
    if (scope_has(g->scope, "offline_access")) {
        char rt[80];
        sbx_token("", 32, rt, sizeof rt);
        /* IdentityServer's refresh tokens are opaque 64-hex-char handles; ours are base64url. */
        if (!tok_new(x, TK_REFRESH, rt, g, IK_REFRESH_TTL_S * 1000)) {
            cJSON_Delete(r);
            token_error(x->resp, 500, "server_error", NULL);
            return;
        }
        cJSON_AddStringToObject(r, "refresh_token", rt);
    }
    cJSON_AddStringToObject(r, "scope", g->scope);
    sbx_resp_json(x->resp, 200, r);
    sbx_resp_header(x->resp, "Cache-Control", "no-store, no-cache, max-age=0");
    sbx_resp_header(x->resp, "Pragma", "no-cache");
}

static void h_token(ik_ctx *x)
{
    sbx_req *req = x->req;
    snprintf(req->route, sizeof req->route, "%s /connect/token", req->method);
    if (strcmp(req->method, "POST") != 0) {
        sbx_resp_bytes(x->resp, 405, NULL, NULL, 0);
        sbx_resp_header(x->resp, "Allow", "POST");
        return;
    }
    sbx_kv *f = NULL;
    size_t nf = 0;
    if (strncasecmp(req->content_type, "application/x-www-form-urlencoded", 33) != 0 ||
        sbx_parse_form(req->body, req->body_len, &f, &nf) < 0) {
        token_error(x->resp, 400, "invalid_request", "Invalid content type: form-urlencoded required");
        return;
    }
    /* client authentication */
    char bid[200] = "", bsec[200] = "";
    const char *az = sbx_header(req, "Authorization");
    const char *cid = kv_get(f, nf, "client_id"), *csec = kv_get(f, nf, "client_secret");
    int basic = 0;
    if (az && !strncasecmp(az, "Basic ", 6)) {
        unsigned char dec[420];
        const char *v = az + 6;
        while (*v == ' ') v++;
        long dl = strlen(v) < 560 ? sb_base64_decode(v, strlen(v), dec, sizeof dec - 1) : -1;
        if (dl < 0) {
            token_error(x->resp, 400, "invalid_client", NULL);
            goto out;
        }
        dec[dl] = 0;
        char *colon = strchr((char *)dec, ':');
        if (!colon) {
            token_error(x->resp, 400, "invalid_client", NULL);
            goto out;
        }
        *colon = 0;
        char *u1 = sbx_url_decode((char *)dec, strlen((char *)dec), 1);
        char *u2 = sbx_url_decode(colon + 1, strlen(colon + 1), 1);
        snprintf(bid, sizeof bid, "%s", u1 ? u1 : "");
        snprintf(bsec, sizeof bsec, "%s", u2 ? u2 : "");
        free(u1);
        free(u2);
        basic = 1;
        if (csec) {
            token_error(x->resp, 400, "invalid_request",
                        "Client credentials were sent both in the Authorization header and in "
                        "the body");
            goto out;
        }
        if (cid && strcmp(cid, bid) != 0) {
            token_error(x->resp, 400, "invalid_client", NULL);
            goto out;
        }
        cid = bid;
        csec = bsec;
    }
    snprintf(req->auth_scheme, sizeof req->auth_scheme, "%s", basic ? "basic" : "client_secret");
    if (!cid || !csec || strcmp(cid, x->h->client_id) != 0 ||
        !sb_ct_equal(csec, strlen(csec), x->h->client_secret, strlen(x->h->client_secret))) {
        token_error(x->resp, 400, "invalid_client", NULL);
        goto out;
    }
    const char *gt = kv_get(f, nf, "grant_type");
    uint64_t now = req->now_ms;
    if (!gt) {
        token_error(x->resp, 400, "invalid_request", "grant_type is missing");
        goto out;
    }
    if (!strcmp(gt, "authorization_code")) {
        const char *code = kv_get(f, nf, "code"), *ru = kv_get(f, nf, "redirect_uri"),
                   *ver = kv_get(f, nf, "code_verifier");
        ik_tok *t = code && strlen(code) < 200 ? map_get(&x->st->toks, code) : NULL;
        if (!t || t->kind != TK_CODE || t->host != x->h) {
            token_error(x->resp, 400, "invalid_grant", NULL);
            goto out;
        }
        map_del(&x->st->toks, t->tok); /* single use, whatever happens next */
        int ok = t->expires > now && ru && !strcmp(ru, t->redirect_uri);
        if (ok && t->challenge)
            ok = ver && sbx_pkce_ok(ver, t->challenge, t->method);
        else if (ok && ver)
            ok = 0;
        if (ok) {
            snprintf(req->account_id, sizeof req->account_id, "%s", t->org->id);
            mint_tokens(x, t);
        } else {
            token_error(x->resp, 400, "invalid_grant", NULL);
        }
        tok_free(t);
    } else if (!strcmp(gt, "refresh_token")) {
        const char *rt = kv_get(f, nf, "refresh_token"), *scope = kv_get(f, nf, "scope");
        ik_tok *t = rt && strlen(rt) < 200 ? map_get(&x->st->toks, rt) : NULL;
        if (!t || t->kind != TK_REFRESH || t->host != x->h || t->expires <= now) {
            token_error(x->resp, 400, "invalid_grant", NULL);
            goto out;
        }
        if (scope && *scope) {
            for (const char *p = scope; *p;) {
                while (*p == ' ') p++;
                const char *e = p;
                while (*e && *e != ' ') e++;
                char one[64];
                if (e > p) {
                    snprintf(one, sizeof one, "%.*s", (int)(e - p), p);
                    if (!scope_has(t->scope, one)) {
                        token_error(x->resp, 400, "invalid_scope", NULL);
                        goto out;
                    }
                }
                p = e;
            }
        }
        map_del(&x->st->toks, t->tok); /* rotate: the used refresh token is gone */
        if (scope && *scope && strlen(scope) < sizeof t->scope)
            snprintf(t->scope, sizeof t->scope, "%s", scope);
        snprintf(req->account_id, sizeof req->account_id, "%s", t->org->id);
        mint_tokens(x, t);
        tok_free(t);
    } else {
        token_error(x->resp, 400, "unsupported_grant_type", NULL);
    }
out:
    sbx_kv_free(f, nf);
}

static void h_userinfo(ik_ctx *x)
{
    sbx_req *req = x->req;
    snprintf(req->route, sizeof req->route, "%s /connect/userinfo", req->method);
    snprintf(req->auth_scheme, sizeof req->auth_scheme, "bearer");
    const char *az = sbx_header(req, "Authorization");
    const char *tok = az && !strncasecmp(az, "Bearer ", 7) ? az + 7 : NULL;
    ik_tok *t = tok && strlen(tok) < 4096 ? map_get(&x->st->toks, tok) : NULL;
    if (!t || t->kind != TK_ACCESS || t->host != x->h || t->expires <= req->now_ms) {
        sbx_resp_bytes(x->resp, 401, NULL, NULL, 0);
        sbx_resp_header(x->resp, "WWW-Authenticate", "error=\"invalid_token\"");
        return;
    }
    snprintf(req->account_id, sizeof req->account_id, "%s", t->org->id);
    if (!scope_has(t->scope, "openid")) {
        sbx_resp_bytes(x->resp, 403, NULL, NULL, 0);
        sbx_resp_header(x->resp, "WWW-Authenticate", "error=\"insufficient_scope\"");
        return;
    }
    const ik_member *mb = &t->org->members[t->member];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "sub", mb->id);
    if (scope_has(t->scope, "profile")) {
        char full[64];
        snprintf(full, sizeof full, "%s %s", mb->first, mb->last);
        cJSON_AddStringToObject(o, "name", full);
        cJSON_AddStringToObject(o, "given_name", mb->first);
        cJSON_AddStringToObject(o, "family_name", mb->last);
    }
    if (scope_has(t->scope, "email") || scope_has(t->scope, "profile")) {
        cJSON_AddStringToObject(o, "email", mb->email);
        cJSON_AddBoolToObject(o, "email_verified", 1);
    }
    if (scope_has(t->scope, "organization")) {
        cJSON_AddStringToObject(o, "organization_id", t->org->id);
        cJSON_AddStringToObject(o, "organization_name", t->org->name);
    }
    sbx_resp_json(x->resp, 200, o);
}

static void h_discovery(ik_ctx *x)
{
    snprintf(x->req->route, sizeof x->req->route, "GET /.well-known/openid-configuration");
    char u[400];
    const char *b = x->base;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "issuer", b);
    snprintf(u, sizeof u, "%s/.well-known/openid-configuration/jwks", b);
    cJSON_AddStringToObject(o, "jwks_uri", u);
    snprintf(u, sizeof u, "%s/connect/authorize", b);
    cJSON_AddStringToObject(o, "authorization_endpoint", u);
    snprintf(u, sizeof u, "%s/connect/token", b);
    cJSON_AddStringToObject(o, "token_endpoint", u);
    snprintf(u, sizeof u, "%s/connect/userinfo", b);
    cJSON_AddStringToObject(o, "userinfo_endpoint", u);
    cJSON_AddBoolToObject(o, "frontchannel_logout_supported", 0);
    cJSON *a = cJSON_AddArrayToObject(o, "scopes_supported");
    for (int i = 0; ik_scopes[i]; i++) cJSON_AddItemToArray(a, cJSON_CreateString(ik_scopes[i]));
    static const char *const claims[] = {"sub", "name", "family_name", "given_name", "email",
                                         "email_verified", "organization_id", NULL};
    a = cJSON_AddArrayToObject(o, "claims_supported");
    for (int i = 0; claims[i]; i++) cJSON_AddItemToArray(a, cJSON_CreateString(claims[i]));
    a = cJSON_AddArrayToObject(o, "grant_types_supported");
    cJSON_AddItemToArray(a, cJSON_CreateString("authorization_code"));
    cJSON_AddItemToArray(a, cJSON_CreateString("refresh_token"));
    a = cJSON_AddArrayToObject(o, "response_types_supported");
    cJSON_AddItemToArray(a, cJSON_CreateString("code"));
    a = cJSON_AddArrayToObject(o, "response_modes_supported");
    cJSON_AddItemToArray(a, cJSON_CreateString("query"));
    a = cJSON_AddArrayToObject(o, "token_endpoint_auth_methods_supported");
    cJSON_AddItemToArray(a, cJSON_CreateString("client_secret_basic"));
    cJSON_AddItemToArray(a, cJSON_CreateString("client_secret_post"));
    a = cJSON_AddArrayToObject(o, "id_token_signing_alg_values_supported");
    cJSON_AddItemToArray(a, cJSON_CreateString("RS256"));
    a = cJSON_AddArrayToObject(o, "subject_types_supported");
    cJSON_AddItemToArray(a, cJSON_CreateString("public"));
    a = cJSON_AddArrayToObject(o, "code_challenge_methods_supported");
    cJSON_AddItemToArray(a, cJSON_CreateString("plain"));
    cJSON_AddItemToArray(a, cJSON_CreateString("S256"));
    cJSON_AddBoolToObject(o, "request_parameter_supported", 0);
    cJSON_AddBoolToObject(o, "authorization_response_iss_parameter_supported", 1);
    sbx_resp_json(x->resp, 200, o);
}

static void h_jwks(ik_ctx *x)
{
    snprintf(x->req->route, sizeof x->req->route, "GET /.well-known/openid-configuration/jwks");
    if (ik_key(x->st) < 0) {
        sbx_resp_bytes(x->resp, 500, NULL, NULL, 0);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *keys = cJSON_AddArrayToObject(o, "keys");
    cJSON *k = cJSON_CreateObject();
    cJSON_AddStringToObject(k, "kty", "RSA");
    cJSON_AddStringToObject(k, "use", "sig");
    cJSON_AddStringToObject(k, "kid", x->st->kid);
    cJSON_AddStringToObject(k, "e", x->st->jwk_e);
    cJSON_AddStringToObject(k, "n", x->st->jwk_n);
    cJSON_AddStringToObject(k, "alg", "RS256");
    cJSON_AddItemToArray(keys, k);
    sbx_resp_json(x->resp, 200, o);
}

/* ---- signer link pages ------------------------------------------------------------------------ */

static void h_link_page(ik_ctx *x, const char *tok)
{
    sbx_req *req = x->req;
    snprintf(req->route, sizeof req->route, "%s /link/{token}", req->method);
    ik_tok *t = strlen(tok) < 100 ? map_get(&x->st->toks, tok) : NULL;
    uint64_t now = req->now_ms;
    if (!t || t->kind != TK_LINK || t->pkg->org->host != x->h || (t->expires && t->expires <= now)) {
        html_page(x->resp, 404, "Link not valid",
                  "<p>This signing link is not valid or has expired.</p>");
        return;
    }
    ik_pkg *p = t->pkg;
    int si = -1;
    for (int i = 0; i < p->nsigners; i++)
        if (!strcmp(p->signers[i].id, t->signer_id)) si = i;
    if (si < 0) {
        html_page(x->resp, 404, "Link not valid", "<p>This signing link is no longer valid.</p>");
        return;
    }
    ik_signer *s = &p->signers[si];
    const char *note = NULL;
    int open = !strcmp(p->state, "open");
    if (!strcmp(req->method, "POST") && open) {
        sbx_kv *f = NULL;
        size_t nf = 0;
        sbx_parse_form(req->body, req->body_len, &f, &nf);
        const char *act = kv_get(f, nf, "action");
        if (act && !strcmp(act, "sign")) {
            if (signer_done(s))
                note = "You have already signed.";
            else if (!s->next)
                note = "It is not your turn to sign yet.";
            else {
                pkg_sign(p, si, now);
                pkg_changed(p, now);
                note = "Thank you, your signature was applied.";
            }
        } else if (act && !strcmp(act, "decline") && !signer_done(s)) {
            const char *why = kv_get(f, nf, "message");
            pkg_decline(p, si, now, why && *why && strlen(why) < 1000 ? why : "Declined.");
            pkg_changed(p, now);
            note = "You declined to sign; the package was rescinded.";
        }
        sbx_kv_free(f, nf);
    } else if (open && !signer_done(s)) {
        pkg_view(p, si, now);
        pkg_changed(p, now);
    }
    open = !strcmp(p->state, "open");
    sb_buf b;
    sb_buf_init(&b, 1u << 20);
    char e1[1200], e2[300], e3[300];
    if (note) {
        sbx_html_escape(note, e1, sizeof e1);
        sb_buf_printf(&b, "<p role=\"status\">%s</p>\n", e1);
    }
    sbx_html_escape(s->first, e1, sizeof e1);
    sbx_html_escape(s->last, e2, sizeof e2);
    sbx_html_escape(s->email, e3, sizeof e3);
    sb_buf_printf(&b, "<p>Signer: %s %s &lt;%s&gt; - state: %s</p>\n<ul>\n", e1, e2, e3,
                  signer_state(p, s));
    for (int d = 0; d < p->ndocs; d++) {
        sbx_html_escape(p->docs[d].name ? p->docs[d].name : "", e1, sizeof e1);
        sb_buf_printf(&b, "<li>%s%s</li>\n", e1, p->docs[d].revs[si].signed_at ? " (signed)" : "");
    }
    sb_buf_printf(&b, "</ul>\n<p>Package state: %s</p>\n", p->state);
    if (open && !signer_done(s)) {
        sbx_html_escape(x->base, e1, sizeof e1);
        sb_buf_printf(&b,
                      "<form method=\"post\" action=\"%s/link/%s\">\n<label>Message (when "
                      "declining) <input name=\"message\"></label>\n"
                      "<button name=\"action\" value=\"sign\"%s>Sign</button>\n"
                      "<button name=\"action\" value=\"decline\">Decline</button>\n</form>",
                      e1, tok, s->next ? "" : " disabled");
    }
    html_page(x->resp, 200, p->name ? p->name : "Package", b.data ? b.data : "");
    sb_buf_free(&b);
}

/* ---- dispatch --------------------------------------------------------------------------------- */

enum {
    R_NONE,
    R_UPLOAD,
    R_ADD,
    R_UPDATE,
    R_LIST,
    R_RESCIND,
    R_SEND,
    R_DELETE,
    R_GET,
    R_STATUS,
    R_DATA,
    R_DOWNLOAD,
    R_LINK,
    R_TLIST
};

static const struct {
    const char *method, *route;
    int write;
} ik_routes[] = {
    [R_NONE] = {"", "", 0},
    [R_UPLOAD] = {"POST", "POST /api/v1/files/upload", 1},
    [R_ADD] = {"POST", "POST /api/v1/packages/add", 1},
    [R_UPDATE] = {"POST", "POST /api/v1/packages/update", 1},
    [R_LIST] = {"POST", "POST /api/v1/packages/list", 0},
    [R_RESCIND] = {"POST", "POST /api/v1/packages/rescind", 1},
    [R_SEND] = {"POST", "POST /api/v1/packages/send", 1},
    [R_DELETE] = {"POST", "POST /api/v1/packages/delete", 1},
    [R_GET] = {"GET", "GET /api/v1/packages/{packageId}", 0},
    [R_STATUS] = {"GET", "GET /api/v1/packages/{packageId}/status", 0},
    [R_DATA] = {"GET", "GET /api/v1/packages/{packageId}/data", 0},
    [R_DOWNLOAD] = {"GET", "GET /api/v1/packages/{packageId}/download", 0},
    [R_LINK] = {"POST", "POST /api/v1/packages/{packageId}/link/sign/{signerId}", 1},
    [R_TLIST] = {"POST", "POST /api/v1/templates/list", 0},
};

/* Match "/files/upload", "/packages/..." or "/templates/list" (case-insensitive, one trailing '/'
 * tolerated). id/sid receive path parameters. */
static int match_rest(const char *sub, char *id, size_t idcap, char *sid, size_t sidcap)
{
    char path[512];
    size_t n = strlen(sub);
    if (n >= sizeof path) return R_NONE;
    memcpy(path, sub, n + 1);
    if (n > 1 && path[n - 1] == '/') path[--n] = 0;
    if (!strcasecmp(path, "/files/upload")) return R_UPLOAD;
    if (!strcasecmp(path, "/templates/list")) return R_TLIST;
    if (strncasecmp(path, "/packages/", 10) != 0) return R_NONE;
    const char *r = path + 10;
    static const struct {
        const char *name;
        int route;
    } fixed[] = {{"add", R_ADD},         {"update", R_UPDATE}, {"list", R_LIST},
                 {"rescind", R_RESCIND}, {"send", R_SEND},     {"delete", R_DELETE}};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (!strcasecmp(r, fixed[i].name)) return fixed[i].route;
    const char *slash = strchr(r, '/');
    size_t il = slash ? (size_t)(slash - r) : strlen(r);
    if (il == 0 || il >= idcap) return R_NONE;
    memcpy(id, r, il);
    id[il] = 0;
    if (!slash) return R_GET;
    if (!strcasecmp(slash, "/status")) return R_STATUS;
    if (!strcasecmp(slash, "/data")) return R_DATA;
    if (!strcasecmp(slash, "/download")) return R_DOWNLOAD;
    if (!strncasecmp(slash, "/link/sign/", 11)) {
        const char *s = slash + 11;
        size_t sl = strlen(s);
        if (sl == 0 || sl >= sidcap || strchr(s, '/')) return R_NONE;
        memcpy(sid, s, sl + 1);
        return R_LINK;
    }
    return R_NONE;
}

static void ik_rest(ik_ctx *x, const char *sub)
{
    sbx_req *req = x->req;
    char id[80] = "", sid[80] = "";
    int r = match_rest(sub, id, sizeof id, sid, sizeof sid);
    if (r == R_NONE) {
        sbx_resp_bytes(x->resp, 404, NULL, NULL, 0);
        return;
    }
    snprintf(req->route, sizeof req->route, "%s", ik_routes[r].route);
    if (strcmp(req->method, ik_routes[r].method) != 0) {
        sbx_resp_bytes(x->resp, 405, NULL, NULL, 0);
        sbx_resp_header(x->resp, "Allow", ik_routes[r].method);
        return;
    }
    ik_state *st = x->st;
    if (ik_routes[r].write)
        pthread_rwlock_wrlock(&st->lock);
    else
        pthread_rwlock_rdlock(&st->lock);
    char rlkey[120];
    if (ik_auth(st, x->h, req, x->resp, &x->c, rlkey, sizeof rlkey) < 0) goto out;
    unsigned lim = 0, rem = 0;
    uint64_t reset = 0;
    if (!sbx_rate_take(x->s, "iinkedsign", "", rlkey, IK_RATE_LIMIT, IK_RATE_WINDOW, &lim, &rem,
                       &reset)) {
        uint64_t now = sbx_now();
        char ra[24];
        snprintf(ra, sizeof ra, "%llu", (unsigned long long)(reset > now ? reset - now : 1));
        ik_err(x->resp, 429, "rate_limit", "%s", IK_RATE_MSG);
        sbx_resp_header(x->resp, "Retry-After", ra);
        goto out;
    }
    switch (r) {
    case R_UPLOAD: h_upload(x); break;
    case R_ADD: h_add(x); break;
    case R_UPDATE: h_update(x); break;
    case R_LIST: h_list(x); break;
    case R_RESCIND: h_rescind(x); break;
    case R_SEND: h_send(x); break;
    case R_DELETE: h_delete(x); break;
    case R_GET: h_get(x, id, 0); break;
    case R_STATUS: h_get(x, id, 1); break;
    case R_DATA: h_get(x, id, 2); break;
    case R_DOWNLOAD: h_download(x, id); break;
    case R_LINK: h_link(x, id, sid); break;
    case R_TLIST: h_templates(x); break;
    default: break;
    }
out:
    pthread_rwlock_unlock(&st->lock);
}

static ik_host *host_find(ik_state *st, const char *region, const char *instance)
{
    for (int i = 0; i < IK_NHOSTS; i++) {
        ik_host *h = &st->hosts[i];
        if (strcmp(h->region, region) != 0) continue;
        if (h->instance) {
            if (instance && !strcmp(instance, h->instance)) return h;
            continue;
        }
        return instance ? NULL : h;
    }
    return NULL;
}

static void ik_handle(sbx *s, sbx_req *req, sbx_resp *resp)
{
    ik_state *st = ik_st();
    if (!req->auth_scheme[0]) snprintf(req->auth_scheme, sizeof req->auth_scheme, "none");
    if (!st) {
        ik_err(resp, 503, "server_unavailable", "The iinked Sign emulator is not initialised.");
        return;
    }
    ik_host *h = host_find(st, req->region, req->instance);
    if (!h) {
        snprintf(req->route, sizeof req->route, "%s /{instance}", req->method);
        ik_err(resp, 404, "instance_not_found",
               "No iinked Sign instance '%.63s' exists (private instances answer at "
               "https://<instance>.syngrafii.com; this sandbox has: acme).",
               req->instance ? req->instance : req->region);
        return;
    }
    ik_ctx x;
    memset(&x, 0, sizeof x);
    x.s = s;
    x.st = st;
    x.h = h;
    x.req = req;
    x.resp = resp;
    host_base(s, h, x.base, sizeof x.base);
    const char *p = req->path;
    if (!strncasecmp(p, "/api/v1/", 8)) {
        ik_rest(&x, p + 7);
        return;
    }
    if (!strcmp(p, "/.well-known/openid-configuration")) {
        if (strcmp(req->method, "GET")) {
            sbx_resp_bytes(resp, 405, NULL, NULL, 0);
            return;
        }
        h_discovery(&x);
        return;
    }
    if (!strcmp(p, "/.well-known/openid-configuration/jwks")) {
        if (strcmp(req->method, "GET")) {
            sbx_resp_bytes(resp, 405, NULL, NULL, 0);
            return;
        }
        h_jwks(&x);
        return;
    }
    int connect = !strcasecmp(p, "/connect/authorize") || !strcasecmp(p, "/connect/token") ||
                  !strcasecmp(p, "/connect/userinfo");
    if (connect) {
        pthread_rwlock_wrlock(&st->lock);
        if (!strcasecmp(p, "/connect/authorize"))
            h_authorize(&x);
        else if (!strcasecmp(p, "/connect/token"))
            h_token(&x);
        else
            h_userinfo(&x);
        pthread_rwlock_unlock(&st->lock);
        return;
    }
    if (!strncmp(p, "/link/", 6) && p[6] && !strchr(p + 6, '/')) {
        if (strcmp(req->method, "GET") && strcmp(req->method, "POST")) {
            sbx_resp_bytes(resp, 405, NULL, NULL, 0);
            return;
        }
        pthread_rwlock_wrlock(&st->lock);
        h_link_page(&x, p + 6);
        pthread_rwlock_unlock(&st->lock);
        return;
    }
    sbx_resp_bytes(resp, 404, NULL, NULL, 0);
}

/* ---- timers and the control endpoint ------------------------------------------------------- */

static void ik_tick(sbx *s, uint64_t now)
{
    ik_state *st = ik_st();
    if (!st) return;
    unsigned step = sbx_auto_progress_ms(s);
    pthread_rwlock_wrlock(&st->lock);
    for (int oi = 0; oi < st->norgs; oi++) {
        ik_org *o = st->orgs[oi];
        for (int i = 0; i < o->npkgs; i++) {
            ik_pkg *p = o->pkgs[i];
            if ((!strcmp(p->state, "select") || !strcmp(p->state, "add")) &&
                p->created + IK_DAY_MS <= now) {
                /* embedded-editor packages not converted to draft/open within 24 h are deleted */
                memmove(&o->pkgs[i], &o->pkgs[i + 1], (size_t)(o->npkgs - i - 1) * sizeof *o->pkgs);
                o->npkgs--;
                i--;
                map_del(&st->pkgs, p->id);
                pkg_unlink(st, p);
                pkg_free(p);
                continue;
            }
            if (strcmp(p->state, "open") != 0) continue;
            if (p->sign_by && p->sign_by <= now) {
                pkg_expire(p, now);
                pkg_changed(p, now);
                continue;
            }
            if (step && now - p->last_step >= step) {
                p->last_step = now;
                int k = pkg_next_signer(p);
                if (k < 0) continue;
                if (!p->signers[k].viewed)
                    pkg_view(p, k, now);
                else
                    pkg_sign(p, k, now);
                pkg_changed(p, now);
            }
        }
        /* temporary uploads not used within 24 h are deleted */
        for (int i = 0; i < o->nfiles; i++) {
            ik_file *f = o->files[i];
            if (!f->used && f->created + IK_TEMP_FILE_MS <= now) {
                map_del(&st->files, f->id);
                org_remove_file(o, f);
                file_free(f);
                i--;
            }
        }
    }
    /* expired codes, tokens and links, every few seconds */
    if (now - st->last_cleanup >= 5000) {
        st->last_cleanup = now;
        for (size_t b = 0; b < IK_NBUCKET; b++) {
            ik_map_ent **pp = &st->toks.b[b];
            while (*pp) {
                ik_tok *t = (*pp)->val;
                if (t->expires && t->expires <= now) {
                    ik_map_ent *e = *pp;
                    *pp = e->next;
                    free(e);
                    st->toks.n--;
                    tok_free(t);
                } else {
                    pp = &(*pp)->next;
                }
            }
        }
    }
    pthread_rwlock_unlock(&st->lock);
}

static int ik_advance(sbx *s, const char *doc_id, const char *to, char *err, size_t errlen)
{
    (void)s;
    ik_state *st = ik_st();
    char norm[37];
    if (!st || !doc_id || !to || ik_guid_norm(doc_id, norm) < 0) return 1;
    pthread_rwlock_wrlock(&st->lock);
    int rc = 0;
    ik_pkg *p = map_get(&st->pkgs, norm);
    uint64_t now = sb_wall_ms();
    if (!p) {
        rc = 1;
        goto out;
    }
    if (strcmp(p->state, "open") != 0) {
        snprintf(err, errlen,
                 "iinked Sign package %s is %s: only open packages move (send a draft with POST "
                 "/api/v1/packages/send first)",
                 p->id, p->state);
        rc = -1;
        goto out;
    }
    int k = pkg_next_signer(p);
    if (!strcmp(to, "viewed")) {
        if (k < 0) {
            snprintf(err, errlen, "no signer is waiting to sign");
            rc = -1;
            goto out;
        }
        pkg_view(p, k, now);
    } else if (!strcmp(to, "signed")) {
        if (k < 0) {
            snprintf(err, errlen, "no signer is waiting to sign");
            rc = -1;
            goto out;
        }
        pkg_sign(p, k, now);
    } else if (!strcmp(to, "completed")) {
        if (p->nsigners == 0) {
            snprintf(err, errlen, "the package has no signers");
            rc = -1;
            goto out;
        }
        while ((k = pkg_next_signer(p)) >= 0 && !strcmp(p->state, "open")) {
            pkg_sign(p, k, now);
            pkg_recompute(p);
        }
    } else if (!strcmp(to, "declined")) {
        if (k < 0) {
            snprintf(err, errlen, "no signer is waiting to sign");
            rc = -1;
            goto out;
        }
        pkg_decline(p, k, now, "Declined in the sandbox.");
    } else if (!strcmp(to, "expired")) {
        pkg_expire(p, now);
    } else if (!strcmp(to, "revoked")) {
        pkg_rescind(p, now, "Rescinded in the sandbox.");
    } else {
        snprintf(err, errlen,
                 "unknown state '%.40s' (viewed, signed, completed, declined, expired, revoked)", to);
        rc = -1;
        goto out;
    }
    p->last_step = now;
    pkg_changed(p, now);
out:
    pthread_rwlock_unlock(&st->lock);
    return rc;
}

sbx_provider sbx_iinkedsign = {
    .name = "iinkedsign",
    .regions = ik_regions,
    .init = ik_init,
    .handle = ik_handle,
    .error = ik_error,
    .advance = ik_advance,
    .tick = ik_tick,
    .accounts = ik_accounts,
    .fini = ik_fini,
    .state = NULL,
};
