#include "auth/sb_oauth.h"

#include "auth/sb_jwt.h"
#include "core/sb_buf.h"
#include "core/sb_log.h"
#include "core/sb_metrics.h"
#include "core/sb_util.h"
#include "store/sb_seal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Store namespaces (docs/store.md). Keys of secrets (codes, refresh tokens) are SHA-256 hashes. */
#define NS_CLIENT "oauth_client"
#define NS_CIMD "oauth_cimd"
#define NS_REQ "oauth_req"
#define NS_UP "oauth_up"
#define NS_CODE "oauth_code"
#define NS_CODE_USED "oauth_code_used"
#define NS_GRANT "oauth_grant"
#define NS_REFRESH "oauth_refresh"
#define NS_SIGNING "oauth_signing"

#define REQ_TTL_S 600
#define MAX_FORM 64
#define MAX_VALUE 4096
#define GRANT_CACHE 256
#define GRANT_CACHE_MS 1000
#define TOKEN_CACHE 1024 /* verified access tokens kept (tok_slot): a power of two */

typedef struct grant_slot {
    char gid[48];
    uint64_t loaded_ms;
    int used;
    char provider[16], region[24], instance[64], client[160], scope[128];
    int bearer;
    size_t cred_len;
    char cred[SB_CRED_MAX + 1];
} grant_slot;

/* What verifying one access token found, kept so that the signature is checked once per token,
 * not per request: an RS256 check costs more than serving a tools/list with an API key. A
 * token's signature and claims never change and the signing keys are fixed for the process, so
 * the outcome holds until the token expires. Keyed by SHA-256 of the audience it was checked
 * for and the token (the token itself is not kept); exp and the later of nbf and iat are checked
 * again at every use, with the same leeway. The grant is still looked up per request (the grant
 * cache, GRANT_CACHE_MS), so revoking it takes effect as before. */
typedef struct tok_slot {
    unsigned char digest[32];
    int used;
    double exp, not_before; /* not_before: max(nbf, iat), or -HUGE_VAL without either */
    char gid[48];
    int flags;                   /* scope_flags of its scope */
    char fingerprint[SB_FP_HEX]; /* the principal's: HMAC of the grant id */
} tok_slot;

struct sb_oauth {
    sb_oauth_options o;
    char issuer[256];
    uint8_t seal_key[SB_SEAL_KEY_LEN];
    unsigned char secret[32];
    sb_jwk *signer;  /* borrowed from keys */
    sb_jwks *keys;
    char *jwks_json;
    size_t jwks_len;
    char *as_meta, *oidc_meta;
    pthread_mutex_t cache_mu;
    grant_slot cache[GRANT_CACHE];
    pthread_mutex_t tok_mu;
    tok_slot *tokens; /* TOKEN_CACHE slots, allocated at the first verified token (tok_mu) */
    EVP_MD *sha256;   /* fetched once: the token digest per request */
    sb_mseries *tok_verified, *tok_cached; /* signbridge_oauth_token_checks_total{result} */
};

enum { P_CIMD = 1, P_VERIFY, P_EXCHANGE, P_REFRESH };

struct sb_oauth_pending {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs, done, parked, dropped;
    void (*wake)(void *);
    void *wctx;
    int kind;
    cJSON *state;   /* continuation data */
    int up_error, up_status;
    char *up_body;
    size_t up_len;
    char cache_control[128];
    int v_ok;
    char v_region[24];
    char v_msg[600];
};

/* ---- small helpers --------------------------------------------------------------------------- */

static int rand_token(char *out, size_t cap, size_t nbytes, const char *prefix)
{
    unsigned char r[48];
    if (nbytes > sizeof r || sb_random_bytes(r, nbytes) != 0) return -1;
    size_t pl = strlen(prefix);
    if (pl + sb_base64url_len(nbytes) + 1 > cap) return -1;
    memcpy(out, prefix, pl);
    sb_base64url_encode(r, nbytes, out + pl);
    return 0;
}

static void hmac_b64(const sb_oauth *o, const char *a, const char *b, char out[64])
{
    unsigned char md[32];
    unsigned mdlen = 0;
    sb_buf m;
    sb_buf_init(&m, 8192);
    sb_buf_printf(&m, "csrf\n%s\n%s", a, b);
    HMAC(EVP_sha256(), o->secret, 32, (const unsigned char *)(m.data ? m.data : ""), m.len, md,
         &mdlen);
    sb_buf_free(&m);
    sb_base64url_encode(md, 32, out);
}

static int url_encode(sb_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            if (sb_buf_append(b, p, 1) != 0) return -1;
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            if (sb_buf_append(b, e, 3) != 0) return -1;
        }
    }
    return 0;
}

static int html_escape(sb_buf *b, const char *s)
{
    for (const char *p = s ? s : ""; *p; p++) {
        int rc;
        switch (*p) {
        case '<': rc = sb_buf_puts(b, "&lt;"); break;
        case '>': rc = sb_buf_puts(b, "&gt;"); break;
        case '&': rc = sb_buf_puts(b, "&amp;"); break;
        case '"': rc = sb_buf_puts(b, "&quot;"); break;
        case '\'': rc = sb_buf_puts(b, "&#39;"); break;
        default: rc = sb_buf_append(b, p, 1);
        }
        if (rc) return -1;
    }
    return 0;
}

/* application/x-www-form-urlencoded: up to MAX_FORM pairs, decoded in place into a copy. */
typedef struct form {
    char *buf;
    size_t n;
    const char *k[MAX_FORM], *v[MAX_FORM];
    int bad;
} form;

static int hexv(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static size_t pct_decode(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '+') {
            *w++ = ' ';
        } else if (*r == '%' && hexv(r[1]) >= 0 && hexv(r[2]) >= 0) {
            *w++ = (char)(hexv(r[1]) * 16 + hexv(r[2]));
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = 0;
    return (size_t)(w - s);
}

static void form_parse(form *f, const char *body, size_t len)
{
    memset(f, 0, sizeof *f);
    f->buf = malloc(len + 1);
    if (!f->buf) {
        f->bad = 1;
        return;
    }
    memcpy(f->buf, body ? body : "", len);
    f->buf[len] = 0;
    char *save = NULL;
    for (char *p = f->buf; p && *p;) {
        char *amp = strchr(p, '&');
        if (amp) *amp = 0;
        (void)save;
        if (*p) {
            char *eq = strchr(p, '=');
            if (eq) *eq = 0;
            size_t kl = pct_decode(p);
            size_t vl = eq ? pct_decode(eq + 1) : 0;
            if (f->n >= MAX_FORM || kl != strlen(p) || (eq && vl != strlen(eq + 1)) ||
                vl > MAX_VALUE) {
                f->bad = 1; /* too many fields, an embedded NUL, or an oversized value */
            } else {
                /* a repeated parameter is an error (RFC 6749 §3.1) */
                for (size_t i = 0; i < f->n; i++)
                    if (strcmp(f->k[i], p) == 0) f->bad = 1;
                f->k[f->n] = p;
                f->v[f->n++] = eq ? eq + 1 : "";
            }
        }
        p = amp ? amp + 1 : NULL;
    }
}

static const char *form_get(const form *f, const char *k)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->k[i], k) == 0) return f->v[i];
    return NULL;
}

static void form_free(form *f)
{
    if (f->buf) {
        explicit_bzero(f->buf, strlen(f->buf));
        free(f->buf);
    }
    memset(f, 0, sizeof *f);
}

static int add_hdr(sb_oauth_resp *r, const char *name, const char *val)
{
    if (r->nh >= SB_OAUTH_MAX_HDRS) return -1;
    char *v = strdup(val);
    if (!v) return -1;
    r->hname[r->nh] = name;
    r->hval[r->nh++] = v;
    return 0;
}

void sb_oauth_resp_free(sb_oauth_resp *r)
{
    if (!r) return;
    free(r->body);
    for (size_t i = 0; i < r->nh; i++) free(r->hval[i]);
    memset(r, 0, sizeof *r);
}

static int resp_json(sb_oauth_resp *r, int status, cJSON *o)
{
    r->status = status;
    sb_strlcpy(r->ctype, "application/json", sizeof r->ctype);
    r->body = o ? cJSON_PrintUnformatted(o) : NULL;
    r->len = r->body ? strlen(r->body) : 0;
    cJSON_Delete(o);
    add_hdr(r, "Cache-Control", "no-store");
    return 0;
}

static int oauth_error(sb_oauth_resp *r, int status, const char *err, const char *desc)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", err);
    if (desc) cJSON_AddStringToObject(o, "error_description", desc);
    if (status == 401) add_hdr(r, "WWW-Authenticate", "Basic realm=\"signbridge\"");
    return resp_json(r, status, o);
}

/* signbridge_oauth_events_total{event}: every logged OAuth event counts, labelled by its name
 * without the "oauth_" prefix (a fixed set: tokens_issued, token_refused, grant_revoked, ...). */
static _Atomic(sb_mfamily *) g_events;

static sb_mfamily *events_family(void)
{
    sb_mfamily *f = atomic_load(&g_events);
    if (!f) {
        f = sb_metrics_family(sb_metrics_global(), SB_METRIC_COUNTER, "signbridge_oauth_events_total",
                              "OAuth authorization server events (tokens issued, refused, grants "
                              "revoked, ...).",
                              1, (const char *const[]){"event"});
        atomic_store(&g_events, f);
    }
    return f;
}

static void count_event(const char *event)
{
    sb_mfamily *f = events_family();
    const char *e = strncmp(event, "oauth_", 6) == 0 ? event + 6 : event;
    sb_metrics_inc(sb_metrics_series(f, (const char *const[]){e}));
}

static void log_event(int level, const char *event, const char *client, const char *error,
                      const char *detail)
{
    count_event(event);
    if (!sb_log_enabled(level)) return;
    cJSON *f = cJSON_CreateObject();
    if (client) {
        char c[161];
        sb_strlcpy(c, client, sizeof c);
        cJSON_AddStringToObject(f, "client_id", c);
    }
    if (error) cJSON_AddStringToObject(f, "error", error);
    if (detail) cJSON_AddStringToObject(f, "detail", detail);
    sb_log_obj(level, event, f);
}

static const char *page_style =
    "<style>body{font-family:system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 "
    "1rem;color:#1b1b1b}fieldset{border:1px solid #ccc;border-radius:6px;margin:1rem 0;padding:"
    "1rem}label{display:block;margin:.5rem 0 .2rem}input[type=password],select{width:100%;"
    "padding:.4rem}button{margin-top:.8rem;padding:.5rem 1rem}.err{color:#a00}.warn{background:"
    "#fff4d6;padding:.5rem}code{background:#f2f2f2;padding:0 .2rem}</style>";

static int html_page(sb_oauth_resp *r, int status, const char *title, const char *body_html)
{
    sb_buf b;
    sb_buf_init(&b, 1 << 20);
    sb_buf_puts(&b, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta "
                    "name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>");
    html_escape(&b, title);
    sb_buf_printf(&b, "</title>%s</head><body>%s</body></html>\n", page_style, body_html);
    r->status = status;
    sb_strlcpy(r->ctype, "text/html; charset=utf-8", sizeof r->ctype);
    r->body = sb_buf_detach(&b, &r->len);
    add_hdr(r, "Cache-Control", "no-store");
    add_hdr(r, "X-Frame-Options", "DENY");
    add_hdr(r, "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https: http:; "
            "frame-ancestors 'none'; base-uri 'none'");
    add_hdr(r, "Referrer-Policy", "no-referrer");
    return 0;
}

static int html_error(sb_oauth_resp *r, int status, const char *msg)
{
    sb_buf b;
    sb_buf_init(&b, 8192);
    sb_buf_puts(&b, "<h1>Sign-in cannot continue</h1><p class=\"err\">");
    html_escape(&b, msg);
    sb_buf_puts(&b, "</p><p>Close this window and start the connection again from your AI "
                    "client.</p>");
    html_page(r, status, "signbridge sign-in", b.data ? b.data : "");
    sb_buf_free(&b);
    return 0;
}

/* ---- store helpers --------------------------------------------------------------------------- */

static cJSON *store_get_json(sb_oauth *o, const char *ns, const char *key, int64_t *version)
{
    sb_store_rec rec = {0};
    if (sb_store_get(o->o.store, ns, key, &rec) != SB_STORE_OK) return NULL;
    cJSON *j = cJSON_ParseWithLength((const char *)rec.value, rec.len);
    if (version) *version = rec.version;
    sb_store_rec_free(&rec);
    return j;
}

static cJSON *store_take_json(sb_oauth *o, const char *ns, const char *key)
{
    sb_store_rec rec = {0};
    if (sb_store_take(o->o.store, ns, key, &rec) != SB_STORE_OK) return NULL;
    cJSON *j = cJSON_ParseWithLength((const char *)rec.value, rec.len);
    sb_store_rec_free(&rec);
    return j;
}

static int store_put_json(sb_oauth *o, const char *ns, const char *key, const cJSON *j,
                          int64_t ttl_s)
{
    char *s = cJSON_PrintUnformatted(j);
    if (!s) return -1;
    int rc = sb_store_put(o->o.store, ns, key, s, strlen(s),
                          ttl_s > 0 ? sb_store_now_ms() + ttl_s * 1000 : 0, NULL);
    free(s);
    return rc == SB_STORE_OK ? 0 : -1;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* ---- routes and resources -------------------------------------------------------------------- */

/* Parse an MCP path into provider / region / instance (sb_regions_mcp_path, the grammar sb_http
 * routes by). 0 or -1. */
static int parse_route(const sb_oauth *o, const char *path, char provider[16], char region[24],
                       char instance[64])
{
    return sb_regions_mcp_path(o->o.regions, path, o->o.default_provider, provider, region,
                               instance)
               ? 0
               : -1;
}

/* A `resource` value: this issuer + an MCP path. Returns the route offset or -1. */
static int resource_route(const sb_oauth *o, const char *res, char provider[16], char region[24],
                          char instance[64])
{
    size_t il = strlen(o->issuer);
    if (!res || strncmp(res, o->issuer, il) != 0 || res[il] != '/') return -1;
    if (strchr(res, '?') || strchr(res, '#')) return -1;
    if (parse_route(o, res + il, provider, region, instance) != 0) return -1;
    return (int)il;
}

void sb_oauth_prm_url(const sb_oauth *o, const char *route, char *out, size_t cap)
{
    snprintf(out, cap, "%s/.well-known/oauth-protected-resource%s", o->issuer,
             route && strcmp(route, "/") != 0 ? route : "");
}

/* ---- signing keys ---------------------------------------------------------------------------- */

static int load_keys(sb_oauth *o, char *err, size_t errlen)
{
    o->keys = sb_jwks_new();
    if (!o->keys) return -1;
    for (size_t i = 0; i < o->o.n_signing; i++) {
        sb_jwk *k = NULL;
        const char *pem = o->o.signing_pems[i];
        char e[200];
        if (sb_jwk_from_pem(&k, pem, strlen(pem), NULL, e, sizeof e) != 0) {
            snprintf(err, errlen, "oauth: signing key %zu: %s", i + 1, e);
            return -1;
        }
        if (i == 0 && !sb_jwk_has_private(k)) {
            sb_jwk_free(k);
            snprintf(err, errlen, "oauth: the first signing key must hold its private part");
            return -1;
        }
        if (i == 0) o->signer = k;
        if (sb_jwks_add(o->keys, k) != 0) {
            snprintf(err, errlen, "oauth: signing key %zu repeats another", i + 1);
            return -1;
        }
    }
    if (o->o.n_signing) return 0;
    /* generated once, sealed in the store, shared by every replica */
    const char *key = "default";
    char pem[8192];
    sb_store_rec rec = {0};
    int created = 0;
    for (int attempt = 0; attempt < 2 && !o->signer; attempt++) {
        if (sb_store_get(o->o.store, NS_SIGNING, key, &rec) == SB_STORE_OK) {
            char b64[12000];
            sb_strlcpy(b64, (const char *)rec.value, sizeof b64);
            sb_store_rec_free(&rec);
            long n = sb_seal_open_b64(o->seal_key, NS_SIGNING, key, b64, pem, sizeof pem);
            sb_jwk *k = NULL;
            char e[200];
            if (n < 0 || sb_jwk_from_pem(&k, pem, (size_t)n, NULL, e, sizeof e) != 0) {
                explicit_bzero(pem, sizeof pem);
                snprintf(err, errlen,
                         "oauth: the signing key in the store cannot be opened (was the server "
                         "secret changed?)");
                return -1;
            }
            explicit_bzero(pem, sizeof pem);
            o->signer = k;
            if (sb_jwks_add(o->keys, k) != 0) return -1;
            break;
        }
        sb_jwk *k = NULL;
        sb_buf p;
        sb_buf_init(&p, 8192);
        if (sb_jwk_generate(&k, "RS256") != 0 || sb_jwk_to_pem(k, 1, &p) != 0) {
            sb_jwk_free(k);
            sb_buf_free(&p);
            snprintf(err, errlen, "oauth: cannot generate a signing key");
            return -1;
        }
        char *b64 = sb_seal_b64(o->seal_key, NS_SIGNING, key, p.data, p.len);
        explicit_bzero(p.data, p.len);
        sb_buf_free(&p);
        sb_jwk_free(k);
        if (!b64) return -1;
        /* claim: concurrent replicas agree on one key; the loser reads the winner's */
        sb_store_claim(o->o.store, NS_SIGNING, key, b64, strlen(b64), 0, &created, NULL, NULL);
        free(b64);
    }
    if (!o->signer) {
        snprintf(err, errlen, "oauth: cannot load or create the signing key in the store");
        return -1;
    }
    return 0;
}

/* ---- metadata -------------------------------------------------------------------------------- */

static char *build_as_meta(const sb_oauth *o, int oidc)
{
    char u[400];
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "issuer", o->issuer);
    snprintf(u, sizeof u, "%s/authorize", o->issuer);
    cJSON_AddStringToObject(m, "authorization_endpoint", u);
    snprintf(u, sizeof u, "%s/token", o->issuer);
    cJSON_AddStringToObject(m, "token_endpoint", u);
    snprintf(u, sizeof u, "%s/register", o->issuer);
    cJSON_AddStringToObject(m, "registration_endpoint", u);
    snprintf(u, sizeof u, "%s/revoke", o->issuer);
    cJSON_AddStringToObject(m, "revocation_endpoint", u);
    snprintf(u, sizeof u, "%s/jwks.json", o->issuer);
    cJSON_AddStringToObject(m, "jwks_uri", u);
    const char *rt[] = {"code"};
    cJSON_AddItemToObject(m, "response_types_supported", cJSON_CreateStringArray(rt, 1));
    const char *rm[] = {"query"};
    cJSON_AddItemToObject(m, "response_modes_supported", cJSON_CreateStringArray(rm, 1));
    const char *gt[] = {"authorization_code", "refresh_token"};
    cJSON_AddItemToObject(m, "grant_types_supported", cJSON_CreateStringArray(gt, 2));
    const char *cc[] = {"S256"};
    cJSON_AddItemToObject(m, "code_challenge_methods_supported", cJSON_CreateStringArray(cc, 1));
    const char *am[] = {"none", "client_secret_basic", "client_secret_post"};
    cJSON_AddItemToObject(m, "token_endpoint_auth_methods_supported",
                          cJSON_CreateStringArray(am, 3));
    cJSON_AddItemToObject(m, "revocation_endpoint_auth_methods_supported",
                          cJSON_CreateStringArray(am, 3));
    const char *sc[] = {SB_SCOPE_READ, SB_SCOPE_WRITE};
    cJSON_AddItemToObject(m, "scopes_supported", cJSON_CreateStringArray(sc, 2));
    cJSON_AddBoolToObject(m, "client_id_metadata_document_supported", 1);
    cJSON_AddBoolToObject(m, "authorization_response_iss_parameter_supported", 1);
    if (oidc) {
        const char *st[] = {"public"};
        cJSON_AddItemToObject(m, "subject_types_supported", cJSON_CreateStringArray(st, 1));
        const char *al[] = {sb_jwk_alg(o->signer)};
        cJSON_AddItemToObject(m, "id_token_signing_alg_values_supported",
                              cJSON_CreateStringArray(al, 1));
    }
    snprintf(u, sizeof u, "%s/", o->issuer);
    cJSON_AddStringToObject(m, "service_documentation", "https://github.com/signbridge/docs/auth.md");
    char *s = cJSON_PrintUnformatted(m);
    cJSON_Delete(m);
    return s;
}

static int serve_prm(sb_oauth *o, const char *route, sb_oauth_resp *out)
{
    char prov[16], reg[24], inst[64];
    const char *r = route[0] ? route : "/mcp";
    if (parse_route(o, r, prov, reg, inst) != 0) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "error", "not_found");
        cJSON_AddStringToObject(e, "error_description",
                                "No MCP endpoint at that path: protected-resource metadata "
                                "exists for /mcp, /{provider}/mcp and /{provider}/{region}/mcp.");
        return resp_json(out, 404, e);
    }
    char res[400];
    snprintf(res, sizeof res, "%s%s", o->issuer, r);
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "resource", res);
    const char *as[] = {o->issuer};
    cJSON_AddItemToObject(m, "authorization_servers", cJSON_CreateStringArray(as, 1));
    const char *sc[] = {SB_SCOPE_READ, SB_SCOPE_WRITE};
    cJSON_AddItemToObject(m, "scopes_supported", cJSON_CreateStringArray(sc, 2));
    const char *bm[] = {"header"};
    cJSON_AddItemToObject(m, "bearer_methods_supported", cJSON_CreateStringArray(bm, 1));
    char name[120];
    snprintf(name, sizeof name, "signbridge (%s%s%s)", prov, reg[0] ? " " : "", reg);
    cJSON_AddStringToObject(m, "resource_name", name);
    char u[400];
    snprintf(u, sizeof u, "%s/jwks.json", o->issuer);
    cJSON_AddStringToObject(m, "jwks_uri", u);
    resp_json(out, 200, m);
    /* metadata may be cached briefly; overwrite the no-store default */
    free(out->hval[0]);
    out->hval[0] = strdup("public, max-age=300");
    add_hdr(out, "Access-Control-Allow-Origin", "*");
    return 0;
}

static int serve_static_json(sb_oauth_resp *out, const char *json)
{
    out->status = 200;
    sb_strlcpy(out->ctype, "application/json", sizeof out->ctype);
    out->body = strdup(json);
    out->len = out->body ? strlen(out->body) : 0;
    add_hdr(out, "Cache-Control", "public, max-age=300");
    add_hdr(out, "Access-Control-Allow-Origin", "*");
    return 0;
}

/* ---- redirect URIs and scopes ---------------------------------------------------------------- */

/* Split "scheme://host[:port]/rest": host and the rest after the port. 0 or -1. */
static int split_url(const char *u, const char **scheme_end, char host[256], const char **rest)
{
    const char *s = strstr(u, "://");
    if (!s) return -1;
    const char *h = s + 3, *e = h;
    if (*h == '[') {
        e = strchr(h, ']');
        if (!e) return -1;
        e++;
    } else {
        while (*e && *e != ':' && *e != '/' && *e != '?' && *e != '#') e++;
    }
    if (e == h || (size_t)(e - h) >= 256) return -1;
    memcpy(host, h, (size_t)(e - h));
    host[e - h] = 0;
    if (*e == ':') {
        e++;
        while (*e >= '0' && *e <= '9') e++;
    }
    /* No userinfo ("https://claude.ai@evil.example/", "http://127.0.0.1:80@evil.example/"): a
     * browser goes to the host after the '@', not the one shown on the consent page. The
     * authority ends at '/', '?', '#' or the end; anything else there is not a port. */
    if (strchr(host, '@') || (*e && *e != '/' && *e != '?' && *e != '#')) return -1;
    *scheme_end = s;
    *rest = e;
    return 0;
}

static int is_loopback_redirect(const char *u)
{
    const char *se, *rest;
    char host[256];
    if (strncmp(u, "http://", 7) != 0 || split_url(u, &se, host, &rest) != 0) return 0;
    return strcmp(host, "127.0.0.1") == 0 || strcmp(host, "localhost") == 0 ||
           strcmp(host, "[::1]") == 0;
}

static int redirect_valid(const char *u)
{
    size_t n = strlen(u);
    if (n < 9 || n > 2000 || strchr(u, '#') || !sb_utf8_valid(u, n)) return 0;
    for (const char *p = u; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == '"' || *p == '<' || *p == '>' || *p == '\\')
            return 0;
    const char *se, *rest;
    char host[256];
    if (split_url(u, &se, host, &rest) != 0) return 0;
    /* Hosts in ASCII only (IDNs as A-labels, "xn--..."): the consent page shows the host, and a
     * confusable ("сlaude.ai" with a Cyrillic с, fullwidth "ａ") must not pass for another. */
    for (const char *p = host; *p; p++)
        if ((unsigned char)*p >= 0x80) return 0;
    if (strncmp(u, "https://", 8) == 0) return 1;
    return is_loopback_redirect(u);
}

/* Exact match, except the port of a loopback redirect (RFC 8252 §7.3). */
static int redirect_matches(const char *reg, const char *given)
{
    if (strcmp(reg, given) == 0) return 1;
    if (!is_loopback_redirect(reg) || !is_loopback_redirect(given)) return 0;
    const char *s1, *r1, *s2, *r2;
    char h1[256], h2[256];
    if (split_url(reg, &s1, h1, &r1) || split_url(given, &s2, h2, &r2)) return 0;
    return strcmp(h1, h2) == 0 && strcmp(r1, r2) == 0;
}

/* Scope flags from a space-separated list (unknown scopes are ignored; none = both). */
enum { SC_READ = 1, SC_WRITE = 2 };
static int scope_flags(const char *s, int dflt)
{
    int f = 0;
    if (!s) return dflt;
    const char *p = s;
    while (*p) {
        while (*p == ' ') p++;
        const char *e = p;
        while (*e && *e != ' ') e++;
        size_t l = (size_t)(e - p);
        if (l == strlen(SB_SCOPE_READ) && strncmp(p, SB_SCOPE_READ, l) == 0) f |= SC_READ;
        if (l == strlen(SB_SCOPE_WRITE) && strncmp(p, SB_SCOPE_WRITE, l) == 0)
            f |= SC_WRITE | SC_READ; /* write implies read */
        p = e;
    }
    return f ? f : dflt;
}

static const char *scope_string(int f)
{
    if (f & SC_WRITE) return SB_SCOPES_ALL;
    return SB_SCOPE_READ;
}

/* ---- clients --------------------------------------------------------------------------------- */

static int cimd_trusted(const sb_oauth *o, const char *url)
{
    for (size_t i = 0; i < o->o.n_cimd_trusted; i++)
        if (strncmp(url, o->o.cimd_trusted[i], strlen(o->o.cimd_trusted[i])) == 0) return 1;
    return 0;
}

/* A client_id that names a metadata document: https with a path (or a trusted prefix). */
static int is_cimd_id(const sb_oauth *o, const char *id)
{
    if (cimd_trusted(o, id)) return 1;
    if (strncmp(id, "https://", 8) != 0 || strlen(id) > 1000) return 0;
    const char *slash = strchr(id + 8, '/');
    return slash && slash[1] != 0 && !strchr(id, '#');
}

static int redirect_list_ok(const cJSON *ru, char *why, size_t cap)
{
    if (!cJSON_IsArray(ru) || cJSON_GetArraySize(ru) < 1 || cJSON_GetArraySize(ru) > 20) {
        snprintf(why, cap, "redirect_uris must be an array of 1 to 20 URLs");
        return -1;
    }
    const cJSON *u;
    cJSON_ArrayForEach(u, ru)
    {
        if (!cJSON_IsString(u) || !redirect_valid(u->valuestring)) {
            snprintf(why, cap,
                     "every redirect URI must be https, or http on a loopback host "
                     "(127.0.0.1, localhost, [::1]), without a fragment");
            return -1;
        }
    }
    return 0;
}

/* POST /register (RFC 7591). */
static int do_register(sb_oauth *o, const sb_oauth_req *rq, sb_oauth_resp *out)
{
    const char *ct = rq->header(rq->ctx, "Content-Type");
    if (!ct || strncasecmp(ct, "application/json", 16) != 0)
        return oauth_error(out, 400, "invalid_client_metadata",
                           "send the client metadata as application/json");
    cJSON *in = cJSON_ParseWithLength(rq->body ? rq->body : "", rq->body_len);
    if (!cJSON_IsObject(in)) {
        cJSON_Delete(in);
        return oauth_error(out, 400, "invalid_client_metadata", "the body is not a JSON object");
    }
    char why[200];
    const cJSON *ru = cJSON_GetObjectItemCaseSensitive(in, "redirect_uris");
    if (redirect_list_ok(ru, why, sizeof why) != 0) {
        cJSON_Delete(in);
        log_event(SB_LOG_WARN, "oauth_register_refused", NULL, "invalid_redirect_uri", why);
        return oauth_error(out, 400, "invalid_redirect_uri", why);
    }
    const char *am = jstr(in, "token_endpoint_auth_method");
    if (!am) am = "client_secret_basic"; /* RFC 7591 default */
    if (strcmp(am, "none") && strcmp(am, "client_secret_basic") && strcmp(am, "client_secret_post")) {
        cJSON_Delete(in);
        return oauth_error(out, 400, "invalid_client_metadata",
                           "token_endpoint_auth_method must be none, client_secret_basic or "
                           "client_secret_post");
    }
    const cJSON *gt = cJSON_GetObjectItemCaseSensitive(in, "grant_types"), *g;
    if (gt) {
        int ok = cJSON_IsArray(gt);
        cJSON_ArrayForEach(g, gt) ok = ok && cJSON_IsString(g) &&
                                       (!strcmp(g->valuestring, "authorization_code") ||
                                        !strcmp(g->valuestring, "refresh_token"));
        if (!ok) {
            cJSON_Delete(in);
            return oauth_error(out, 400, "invalid_client_metadata",
                               "grant_types may hold authorization_code and refresh_token only");
        }
    }
    const cJSON *rt = cJSON_GetObjectItemCaseSensitive(in, "response_types"), *r;
    if (rt) {
        int ok = cJSON_IsArray(rt);
        cJSON_ArrayForEach(r, rt) ok = ok && cJSON_IsString(r) && !strcmp(r->valuestring, "code");
        if (!ok) {
            cJSON_Delete(in);
            return oauth_error(out, 400, "invalid_client_metadata", "response_types must be [\"code\"]");
        }
    }
    const char *name = jstr(in, "client_name");
    if (name && (strlen(name) > 200 || !sb_utf8_valid(name, strlen(name)))) {
        cJSON_Delete(in);
        return oauth_error(out, 400, "invalid_client_metadata", "client_name: at most 200 characters");
    }
    char id[64], secret[64] = "", sh[65] = "";
    if (rand_token(id, sizeof id, 18, "sbc_") != 0) {
        cJSON_Delete(in);
        return oauth_error(out, 500, "server_error", NULL);
    }
    if (strcmp(am, "none") != 0) {
        if (rand_token(secret, sizeof secret, 32, "") != 0) {
            cJSON_Delete(in);
            return oauth_error(out, 500, "server_error", NULL);
        }
        sb_sha256_hex(secret, strlen(secret), sh);
    }
    int64_t now = (int64_t)(sb_wall_ms() / 1000);
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "client_id", id);
    cJSON_AddStringToObject(rec, "client_name", name ? name : "");
    cJSON_AddItemToObject(rec, "redirect_uris", cJSON_Duplicate(ru, 1));
    cJSON_AddStringToObject(rec, "auth_method", am);
    if (sh[0]) cJSON_AddStringToObject(rec, "secret_sha256", sh);
    cJSON_AddNumberToObject(rec, "created", (double)now);
    unsigned ttl = o->o.client_ttl_s ? o->o.client_ttl_s : 90u * 86400u;
    if (store_put_json(o, NS_CLIENT, id, rec, ttl) != 0) {
        cJSON_Delete(rec);
        cJSON_Delete(in);
        return oauth_error(out, 503, "temporarily_unavailable", "the store is not answering");
    }
    cJSON_Delete(rec);
    cJSON *resp = cJSON_CreateObject();
    cJSON_AddStringToObject(resp, "client_id", id);
    cJSON_AddNumberToObject(resp, "client_id_issued_at", (double)now);
    if (secret[0]) {
        cJSON_AddStringToObject(resp, "client_secret", secret);
        cJSON_AddNumberToObject(resp, "client_secret_expires_at", 0);
    }
    cJSON_AddItemToObject(resp, "redirect_uris", cJSON_Duplicate(ru, 1));
    if (name) cJSON_AddStringToObject(resp, "client_name", name);
    cJSON_AddStringToObject(resp, "token_endpoint_auth_method", am);
    const char *gts[] = {"authorization_code", "refresh_token"};
    cJSON_AddItemToObject(resp, "grant_types", cJSON_CreateStringArray(gts, 2));
    const char *rts[] = {"code"};
    cJSON_AddItemToObject(resp, "response_types", cJSON_CreateStringArray(rts, 1));
    const char *sc = jstr(in, "scope");
    cJSON_AddStringToObject(resp, "scope", scope_string(scope_flags(sc, SC_READ | SC_WRITE)));
    cJSON_Delete(in);
    explicit_bzero(secret, sizeof secret);
    log_event(SB_LOG_INFO, "oauth_client_registered", id, NULL, NULL);
    return resp_json(out, 201, resp);
}

/* Validate a fetched client ID metadata document; the client record, or NULL with why. */
static cJSON *cimd_validate(const char *url, const char *body, size_t len, char *why, size_t cap)
{
    cJSON *d = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(d)) {
        snprintf(why, cap, "the client metadata document is not a JSON object");
        cJSON_Delete(d);
        return NULL;
    }
    const char *cid = jstr(d, "client_id");
    if (!cid || strcmp(cid, url) != 0) {
        snprintf(why, cap, "the document's client_id does not equal its URL");
        cJSON_Delete(d);
        return NULL;
    }
    const cJSON *ru = cJSON_GetObjectItemCaseSensitive(d, "redirect_uris");
    if (redirect_list_ok(ru, why, cap) != 0) {
        cJSON_Delete(d);
        return NULL;
    }
    const char *am = jstr(d, "token_endpoint_auth_method");
    if (am && strcmp(am, "none") != 0) {
        snprintf(why, cap, "token_endpoint_auth_method must be none for a metadata-document client");
        cJSON_Delete(d);
        return NULL;
    }
    const char *name = jstr(d, "client_name");
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "client_id", url);
    char nm[201];
    sb_strlcpy(nm, name && sb_utf8_valid(name, strlen(name)) ? name : "", sizeof nm);
    cJSON_AddStringToObject(rec, "client_name", nm);
    cJSON_AddItemToObject(rec, "redirect_uris", cJSON_Duplicate(ru, 1));
    cJSON_AddStringToObject(rec, "auth_method", "none");
    cJSON_AddBoolToObject(rec, "cimd", 1);
    int loop_only = 1;
    const cJSON *u;
    cJSON_ArrayForEach(u, ru) loop_only &= is_loopback_redirect(u->valuestring);
    cJSON_AddBoolToObject(rec, "localhost_only", loop_only);
    cJSON_Delete(d);
    return rec;
}

/* Cache lifetime from Cache-Control max-age, clamped to [300 s, 1 d]; default 1 h. */
static int64_t cimd_ttl(const char *cc)
{
    int64_t t = 3600;
    const char *m = cc ? strstr(cc, "max-age=") : NULL;
    if (m) {
        char num[16];
        size_t i = 0;
        for (m += 8; *m >= '0' && *m <= '9' && i < sizeof num - 1; m++) num[i++] = *m;
        num[i] = 0;
        int64_t v;
        if (sb_parse_i64(num, 0, INT64_MAX / 2, &v) == 0) t = v;
    }
    if (cc && (strstr(cc, "no-store") || strstr(cc, "no-cache"))) t = 300;
    return t < 300 ? 300 : t > 86400 ? 86400 : t;
}

/* Find a client by id: registered, or a cached metadata document. */
static cJSON *client_lookup(sb_oauth *o, const char *id)
{
    if (!id || !id[0] || strlen(id) > 1000) return NULL;
    if (is_cimd_id(o, id)) {
        char h[65];
        sb_sha256_hex(id, strlen(id), h);
        return store_get_json(o, NS_CIMD, h, NULL);
    }
    if (!sb_store_valid_key(id)) return NULL;
    return store_get_json(o, NS_CLIENT, id, NULL);
}

/* ---- pending network work -------------------------------------------------------------------- */

static sb_oauth_pending *pending_new(int kind, cJSON *state)
{
    sb_oauth_pending *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->refs = 2; /* the network work's and the transport's */
    p->kind = kind;
    p->state = state;
    return p;
}

static void pending_release(sb_oauth_pending *p)
{
    pthread_mutex_lock(&p->mu);
    int last = --p->refs == 0;
    pthread_mutex_unlock(&p->mu);
    if (!last) return;
    cJSON *secret = cJSON_GetObjectItemCaseSensitive(p->state, "key");
    if (cJSON_IsString(secret)) explicit_bzero(secret->valuestring, strlen(secret->valuestring));
    cJSON_Delete(p->state);
    if (p->up_body) {
        explicit_bzero(p->up_body, p->up_len);
        free(p->up_body);
    }
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static void pending_complete(sb_oauth_pending *p)
{
    pthread_mutex_lock(&p->mu);
    p->done = 1;
    if (p->parked && !p->dropped && p->wake) p->wake(p->wctx);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pending_release(p);
}

static void up_done(const sb_up_result *r, void *arg)
{
    sb_oauth_pending *p = arg;
    p->up_error = r->error;
    p->up_status = r->status;
    if (r->body && r->body_len) {
        p->up_body = malloc(r->body_len + 1);
        if (p->up_body) {
            memcpy(p->up_body, r->body, r->body_len);
            p->up_body[r->body_len] = 0;
            p->up_len = r->body_len;
        }
    }
    const char *cc = sb_up_header(r, "Cache-Control");
    if (cc) sb_strlcpy(p->cache_control, cc, sizeof p->cache_control);
    pending_complete(p);
}

static void verify_done(void *arg, int ok, const char *region, const char *message)
{
    sb_oauth_pending *p = arg;
    p->v_ok = ok;
    sb_strlcpy(p->v_region, region ? region : "", sizeof p->v_region);
    sb_strlcpy(p->v_msg, message ? message : "", sizeof p->v_msg);
    pending_complete(p);
}

int sb_oauth_park(sb_oauth_pending *p, void (*suspend)(void *ctx), void (*wake)(void *ctx),
                  void *ctx)
{
    pthread_mutex_lock(&p->mu);
    if (p->done) {
        pthread_mutex_unlock(&p->mu);
        return 0;
    }
    suspend(ctx);
    p->parked = 1;
    p->wake = wake;
    p->wctx = ctx;
    pthread_mutex_unlock(&p->mu);
    return 1;
}

void sb_oauth_pending_drop(sb_oauth_pending *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->dropped = 1;
    pthread_mutex_unlock(&p->mu);
    pending_release(p);
}

/* Submit an upstream request for p (which owns the network reference). -1: nothing started (p's
 * network reference is dropped here). */
static int submit_up(sb_oauth *o, sb_oauth_pending *p, const char *method, const char *url,
                     const char *const *headers, const char *body, int policy, size_t max)
{
    sb_up_request rq = {.method = method,
                        .url = url,
                        .headers = headers,
                        .body = body,
                        .body_len = body ? strlen(body) : 0,
                        /* client-supplied URLs (metadata documents) get 10 s at most */
                        .timeout_ms = policy != SB_UP_POLICY_DEFAULT || !o->o.upstream_timeout_ms
                                          ? 10000
                                          : o->o.upstream_timeout_ms,
                        .max_response = max,
                        .policy = policy};
    if (!o->o.up || sb_up_submit(o->o.up, &rq, up_done, p, NULL) != 0) {
        pending_release(p);
        return -1;
    }
    return 0;
}

/* ---- redirects back to the client ------------------------------------------------------------ */

/* 302 to uri with the given query parameters (NULL-terminated name/value pairs; NULL values
 * skipped) plus iss (RFC 9207). */
static int redirect_client(sb_oauth *o, sb_oauth_resp *out, const char *uri, ...)
{
    sb_buf b;
    sb_buf_init(&b, 16384);
    sb_buf_puts(&b, uri);
    char sep = strchr(uri, '?') ? '&' : '?';
    va_list ap;
    va_start(ap, uri);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k) break;
        const char *v = va_arg(ap, const char *);
        if (!v) continue;
        sb_buf_printf(&b, "%c%s=", sep, k);
        url_encode(&b, v);
        sep = '&';
    }
    va_end(ap);
    sb_buf_printf(&b, "%ciss=", sep);
    url_encode(&b, o->issuer);
    out->status = 302;
    int rc = add_hdr(out, "Location", b.data ? b.data : uri);
    add_hdr(out, "Cache-Control", "no-store");
    sb_buf_free(&b);
    return rc;
}

static int redirect_error(sb_oauth *o, sb_oauth_resp *out, const cJSON *req, const char *uri,
                          const char *state, const char *err, const char *desc)
{
    log_event(SB_LOG_WARN, "oauth_authorize_refused", req ? jstr(req, "client_id") : NULL, err,
              desc);
    return redirect_client(o, out, uri, "error", err, "error_description", desc, "state", state,
                           (const char *)NULL);
}

/* ---- the consent page ------------------------------------------------------------------------ */

static const char *provider_display(const char *p)
{
    if (!strcmp(p, "boldsign")) return "BoldSign";
    if (!strcmp(p, "dropboxsign")) return "Dropbox Sign";
    if (!strcmp(p, "iinkedsign")) return "iinked Sign";
    return p;
}

static const char *cookie_name(const sb_oauth *o)
{
    return strncmp(o->issuer, "https://", 8) == 0 ? "__Host-sb_consent" : "sb_consent";
}

/* The consent nonce from the Cookie header into out ("" if none or malformed). */
static void cookie_nonce(const sb_oauth *o, const sb_oauth_req *rq, char out[64])
{
    out[0] = 0;
    const char *c = rq->header(rq->ctx, "Cookie");
    const char *name = cookie_name(o);
    size_t nl = strlen(name);
    for (const char *p = c; p && *p;) {
        while (*p == ' ' || *p == ';') p++;
        if (strncmp(p, name, nl) == 0 && p[nl] == '=') {
            const char *v = p + nl + 1;
            size_t l = 0;
            while (v[l] && v[l] != ';' && l < 63) l++;
            if (l >= 32 && l < 63) {
                int ok = 1;
                for (size_t i = 0; i < l; i++)
                    ok &= (v[i] >= 'A' && v[i] <= 'Z') || (v[i] >= 'a' && v[i] <= 'z') ||
                          (v[i] >= '0' && v[i] <= '9') || v[i] == '-' || v[i] == '_';
                if (ok) {
                    memcpy(out, v, l);
                    out[l] = 0;
                }
            }
            return;
        }
        p = strchr(p, ';');
    }
}

static const sb_oauth_app *find_app(const sb_oauth *o, const char *provider, const char *region)
{
    /* region NULL: whether the provider has an app at all (the first one) */
    const sb_oauth_app *any = NULL, *first = NULL;
    for (size_t i = 0; i < o->o.n_apps; i++) {
        const sb_oauth_app *a = &o->o.apps[i];
        if (strcmp(a->provider, provider) != 0) continue;
        if (region && a->region[0] && strcmp(a->region, region) == 0) return a;
        if (!a->region[0]) any = a;
        if (!first) first = a;
    }
    return any ? any : region ? NULL : first;
}

static int render_consent(sb_oauth *o, sb_oauth_resp *out, int status, const char *req_id,
                          const cJSON *req, const char *nonce, const char *error)
{
    char csrf[64];
    hmac_b64(o, req_id, nonce, csrf);
    const char *prov = jstr(req, "provider"), *pin = jstr(req, "region_pin");
    const char *name = jstr(req, "client_name");
    const char *ru = jstr(req, "redirect_uri");
    const char *se, *rest;
    char host[256] = "";
    if (ru) split_url(ru, &se, host, &rest);
    int write = (scope_flags(jstr(req, "scope"), 0) & SC_WRITE) != 0;
    sb_buf b;
    sb_buf_init(&b, 1 << 18);
    sb_buf_puts(&b, "<h1>Connect ");
    html_escape(&b, name && name[0] ? name : "an application");
    sb_buf_printf(&b, " to %s</h1>\n<p><strong id=\"client-name\">", provider_display(prov));
    html_escape(&b, name && name[0] ? name : jstr(req, "client_id"));
    sb_buf_printf(&b, "</strong> asks to use your %s account through signbridge. After you "
                      "approve, you return to <code id=\"redirect-host\">",
                  provider_display(prov));
    html_escape(&b, host);
    sb_buf_puts(&b, "</code>.</p>\n<p>It asks to:</p><ul id=\"scopes\">"
                    "<li><code>" SB_SCOPE_READ "</code>: read documents, templates, contacts, "
                    "users, teams and audit trails</li>");
    if (write)
        sb_buf_puts(&b, "<li><code>" SB_SCOPE_WRITE "</code>: send documents for signature, "
                        "send reminders, revoke documents, change signers and edit "
                        "contacts</li>");
    sb_buf_puts(&b, "</ul>\n");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "localhost_only")))
        sb_buf_puts(&b, "<p class=\"warn\">This client only returns to your own computer "
                        "(localhost). Approve only if you started this sign-in yourself.</p>\n");
    if (error) {
        sb_buf_puts(&b, "<p class=\"err\" id=\"error\">");
        html_escape(&b, error);
        sb_buf_puts(&b, "</p>\n");
    }
    sb_buf_printf(&b, "<form method=\"post\" action=\"%s/consent\">\n"
                      "<input type=\"hidden\" name=\"request_id\" value=\"%s\">\n"
                      "<input type=\"hidden\" name=\"csrf_token\" value=\"%s\">\n",
                  o->issuer, req_id, csrf);
    sb_buf_puts(&b, "<label for=\"region\">Region of your account</label>"
                    "<select name=\"region\" id=\"region\">");
    if (pin && pin[0]) {
        sb_buf_printf(&b, "<option value=\"%s\" selected>%s</option>", pin, pin);
    } else {
        sb_buf_puts(&b, "<option value=\"\" selected>Detect automatically</option>");
        for (size_t i = 0; i < o->o.regions->n; i++)
            if (strcmp(o->o.regions->r[i].provider, prov) == 0)
                sb_buf_printf(&b, "<option value=\"%s\">%s</option>", o->o.regions->r[i].name,
                              o->o.regions->r[i].name);
    }
    sb_buf_printf(&b, "</select>\n<fieldset><legend>Use an API key</legend>"
                      "<label for=\"api_key\">%s API key</label>"
                      "<input type=\"password\" name=\"api_key\" id=\"api_key\" "
                      "autocomplete=\"off\">\n<p>signbridge checks the key with %s, keeps it "
                      "encrypted, and never shows it to the client.</p>"
                      "<button type=\"submit\" name=\"action\" value=\"api_key\">Connect with this "
                      "key</button></fieldset>\n",
                  provider_display(prov), provider_display(prov));
    if (find_app(o, prov, pin && pin[0] ? pin : NULL))
        sb_buf_printf(&b, "<fieldset><legend>Or sign in with %s</legend><button type=\"submit\" "
                          "name=\"action\" value=\"provider\">Sign in with %s</button>"
                          "</fieldset>\n",
                      provider_display(prov), provider_display(prov));
    sb_buf_puts(&b, "<button type=\"submit\" name=\"action\" value=\"deny\">Deny</button>\n"
                    "</form>\n");
    html_page(out, status, "Connect to signbridge", b.data ? b.data : "");
    sb_buf_free(&b);
    sb_buf c;
    sb_buf_init(&c, 512);
    int https = strncmp(o->issuer, "https://", 8) == 0;
    sb_buf_printf(&c, "%s=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Lax%s", cookie_name(o),
                  nonce, REQ_TTL_S, https ? "; Secure" : "");
    add_hdr(out, "Set-Cookie", c.data ? c.data : "");
    sb_buf_free(&c);
    return 0;
}

static int pkce_challenge_ok(const char *c)
{
    if (!c || strlen(c) != 43) return 0;
    for (const char *p = c; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return 0;
    return 1;
}

static int authorize_with_client(sb_oauth *o, const sb_oauth_req *rq, cJSON *client,
                                 sb_oauth_resp *out)
{
    const char *redirect = rq->query(rq->ctx, "redirect_uri");
    const cJSON *uris = cJSON_GetObjectItemCaseSensitive(client, "redirect_uris"), *u;
    const char *use = NULL;
    if (!redirect) {
        if (cJSON_GetArraySize(uris) == 1) use = cJSON_GetArrayItem(uris, 0)->valuestring;
    } else {
        cJSON_ArrayForEach(u, uris) if (cJSON_IsString(u) &&
                                        redirect_matches(u->valuestring, redirect)) use = redirect;
    }
    if (!use) {
        log_event(SB_LOG_WARN, "oauth_authorize_refused", jstr(client, "client_id"),
                  "invalid_redirect_uri", "redirect_uri does not match a registered one");
        return html_error(out, 400,
                          redirect ? "The redirect_uri does not match any redirect URI this "
                                     "client registered."
                                   : "redirect_uri is required: this client registered several.");
    }
    char ruse[2001];
    sb_strlcpy(ruse, use, sizeof ruse);
    const char *state = rq->query(rq->ctx, "state");
    if (state && strlen(state) > 1024)
        return html_error(out, 400, "The state parameter is longer than 1024 characters.");
    const char *rt = rq->query(rq->ctx, "response_type");
    if (!rt || strcmp(rt, "code") != 0)
        return redirect_error(o, out, client, ruse, state, "unsupported_response_type",
                              "response_type must be code");
    const char *ch = rq->query(rq->ctx, "code_challenge");
    const char *cm = rq->query(rq->ctx, "code_challenge_method");
    if (!ch)
        return redirect_error(o, out, client, ruse, state, "invalid_request",
                              "PKCE is required: send code_challenge with "
                              "code_challenge_method=S256");
    if (!cm || strcmp(cm, "S256") != 0)
        return redirect_error(o, out, client, ruse, state, "invalid_request",
                              "code_challenge_method must be S256 (plain is not accepted)");
    if (!pkce_challenge_ok(ch))
        return redirect_error(o, out, client, ruse, state, "invalid_request",
                              "code_challenge must be the base64url SHA-256 of the verifier "
                              "(43 characters)");
    char res[400], prov[16], reg[24], inst[64];
    const char *resource = rq->query(rq->ctx, "resource");
    if (resource) {
        sb_strlcpy(res, resource, sizeof res);
        size_t l = strlen(res);
        if (l > 1 && res[l - 1] == '/') res[l - 1] = 0; /* the same resource with a slash */
    } else {
        snprintf(res, sizeof res, "%s/mcp", o->issuer);
    }
    if (strlen(resource ? resource : "") >= sizeof res ||
        resource_route(o, res, prov, reg, inst) < 0)
        return redirect_error(o, out, client, ruse, state, "invalid_target",
                              "resource must be one of this server's MCP URLs, such as "
                              "<origin>/mcp or <origin>/{provider}/mcp");
    const char *scope = scope_string(scope_flags(rq->query(rq->ctx, "scope"), SC_READ | SC_WRITE));
    char req_id[48], nonce[64];
    cookie_nonce(o, rq, nonce);
    if (rand_token(req_id, sizeof req_id, 18, "") != 0 ||
        (!nonce[0] && rand_token(nonce, sizeof nonce, 24, "") != 0))
        return html_error(out, 500, "Out of randomness.");
    char nh[65];
    sb_sha256_hex(nonce, strlen(nonce), nh);
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "client_id", jstr(client, "client_id"));
    cJSON_AddStringToObject(rec, "client_name", jstr(client, "client_name") ? jstr(client, "client_name") : "");
    cJSON_AddStringToObject(rec, "redirect_uri", ruse);
    cJSON_AddBoolToObject(rec, "redirect_given", redirect != NULL);
    if (state) cJSON_AddStringToObject(rec, "state", state);
    cJSON_AddStringToObject(rec, "challenge", ch);
    cJSON_AddStringToObject(rec, "scope", scope);
    cJSON_AddStringToObject(rec, "resource", res);
    cJSON_AddStringToObject(rec, "provider", prov);
    cJSON_AddStringToObject(rec, "region_pin", reg);
    cJSON_AddStringToObject(rec, "instance", inst);
    cJSON_AddStringToObject(rec, "nonce_sha256", nh);
    cJSON_AddBoolToObject(rec, "localhost_only",
                          cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(client, "localhost_only")));
    if (store_put_json(o, NS_REQ, req_id, rec, REQ_TTL_S) != 0) {
        cJSON_Delete(rec);
        return html_error(out, 503, "The server's store is not answering; try again shortly.");
    }
    int rc = render_consent(o, out, 200, req_id, rec, nonce, NULL);
    cJSON_Delete(rec);
    return rc;
}

/* GET /authorize */
static int do_authorize(sb_oauth *o, const sb_oauth_req *rq, sb_oauth_resp *out,
                        sb_oauth_pending **pending)
{
    const char *cid = rq->query(rq->ctx, "client_id");
    if (!cid || !cid[0]) return html_error(out, 400, "client_id is missing.");
    cJSON *client = client_lookup(o, cid);
    if (!client && is_cimd_id(o, cid)) {
        cJSON *st = cJSON_CreateObject();
        cJSON_AddStringToObject(st, "client_id", cid);
        sb_oauth_pending *p = pending_new(P_CIMD, st);
        if (!p) {
            cJSON_Delete(st);
            return html_error(out, 500, "Out of memory.");
        }
        const char *hdrs[] = {"Accept: application/json", NULL};
        int policy = cimd_trusted(o, cid) ? SB_UP_POLICY_TRUSTED : SB_UP_POLICY_PUBLIC;
        if (submit_up(o, p, "GET", cid, hdrs, NULL, policy, 65536) != 0) {
            pending_release(p);
            return html_error(out, 503, "Cannot fetch the client's metadata document now.");
        }
        *pending = p;
        return 1;
    }
    if (!client) {
        log_event(SB_LOG_WARN, "oauth_authorize_refused", cid, "invalid_client", "unknown client");
        return html_error(out, 400,
                          "Unknown client_id: the client is not registered here (or its "
                          "registration expired). Reconnect so that it registers again.");
    }
    int rc = authorize_with_client(o, rq, client, out);
    cJSON_Delete(client);
    return rc;
}

static int cimd_continue(sb_oauth *o, sb_oauth_pending *p, const sb_oauth_req *rq,
                         sb_oauth_resp *out)
{
    const char *cid = jstr(p->state, "client_id");
    char why[300];
    if (p->up_error != SB_UP_OK || p->up_status != 200 || !p->up_body) {
        if (p->up_error == SB_UP_EREFUSED)
            snprintf(why, sizeof why, "signbridge fetches client metadata documents only over "
                                      "https from public addresses.");
        else
            snprintf(why, sizeof why, "the document could not be fetched (%s%d).",
                     p->up_error ? "network error " : "HTTP ",
                     p->up_error ? -p->up_error : p->up_status);
        log_event(SB_LOG_WARN, "oauth_cimd_refused", cid, "invalid_client", why);
        char msg[400];
        snprintf(msg, sizeof msg, "The client's metadata document was refused: %s", why);
        return html_error(out, 400, msg);
    }
    cJSON *rec = cimd_validate(cid, p->up_body, p->up_len, why, sizeof why);
    if (!rec) {
        log_event(SB_LOG_WARN, "oauth_cimd_refused", cid, "invalid_client", why);
        char msg[400];
        snprintf(msg, sizeof msg, "The client's metadata document is not valid: %s", why);
        return html_error(out, 400, msg);
    }
    char h[65];
    sb_sha256_hex(cid, strlen(cid), h);
    store_put_json(o, NS_CIMD, h, rec, cimd_ttl(p->cache_control));
    int rc = authorize_with_client(o, rq, rec, out);
    cJSON_Delete(rec);
    return rc;
}

/* ---- grants and codes ------------------------------------------------------------------------ */

/* Create a grant for the authorization request `req` holding the upstream credential; returns
 * 0 and the grant id. */
static int grant_create(sb_oauth *o, const cJSON *req, const char *kind, const char *region,
                        const char *cred, const char *refresh, int64_t up_exp_ms, char gid[48])
{
    if (rand_token(gid, 48, 18, "g_") != 0) return -1;
    char *c = sb_seal_b64(o->seal_key, NS_GRANT, gid, cred, strlen(cred));
    char *r = refresh && refresh[0]
                  ? sb_seal_b64(o->seal_key, NS_GRANT, gid, refresh, strlen(refresh))
                  : NULL;
    if (!c || (refresh && refresh[0] && !r)) {
        free(c);
        free(r);
        return -1;
    }
    cJSON *g = cJSON_CreateObject();
    cJSON_AddStringToObject(g, "client_id", jstr(req, "client_id"));
    cJSON_AddStringToObject(g, "client_name", jstr(req, "client_name"));
    cJSON_AddStringToObject(g, "provider", jstr(req, "provider"));
    cJSON_AddStringToObject(g, "region", region);
    cJSON_AddStringToObject(g, "instance", jstr(req, "instance"));
    cJSON_AddStringToObject(g, "scope", jstr(req, "scope"));
    cJSON_AddStringToObject(g, "resource", jstr(req, "resource"));
    cJSON_AddStringToObject(g, "kind", kind);
    cJSON_AddStringToObject(g, "cred", c);
    if (r) cJSON_AddStringToObject(g, "refresh", r);
    cJSON_AddNumberToObject(g, "up_exp_ms", (double)up_exp_ms);
    cJSON_AddNumberToObject(g, "created", (double)(sb_wall_ms() / 1000));
    free(c);
    free(r);
    unsigned ttl = o->o.refresh_ttl_s ? o->o.refresh_ttl_s : 30u * 86400u;
    int rc = store_put_json(o, NS_GRANT, gid, g, ttl);
    cJSON_Delete(g);
    return rc;
}

static void cache_drop(sb_oauth *o, const char *gid)
{
    pthread_mutex_lock(&o->cache_mu);
    for (size_t i = 0; i < GRANT_CACHE; i++)
        if (o->cache[i].used && strcmp(o->cache[i].gid, gid) == 0) {
            explicit_bzero(&o->cache[i], sizeof o->cache[i]);
        }
    pthread_mutex_unlock(&o->cache_mu);
}

static void grant_revoke(sb_oauth *o, const char *gid, const char *why)
{
    if (!gid || !sb_store_valid_key(gid)) return;
    sb_store_delete(o->o.store, NS_GRANT, gid, 0);
    cache_drop(o, gid);
    log_event(SB_LOG_WARN, "oauth_grant_revoked", NULL, NULL, why);
}

/* Issue a code for the grant and redirect to the client. */
static int finish_with_code(sb_oauth *o, sb_oauth_resp *out, const cJSON *req, const char *gid)
{
    char code[64], h[65];
    if (rand_token(code, sizeof code, 32, "") != 0)
        return html_error(out, 500, "Out of randomness.");
    sb_sha256_hex(code, strlen(code), h);
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "gid", gid);
    cJSON_AddStringToObject(c, "client_id", jstr(req, "client_id"));
    cJSON_AddStringToObject(c, "redirect_uri", jstr(req, "redirect_uri"));
    cJSON_AddBoolToObject(c, "redirect_given",
                          cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "redirect_given")));
    cJSON_AddStringToObject(c, "challenge", jstr(req, "challenge"));
    cJSON_AddStringToObject(c, "scope", jstr(req, "scope"));
    cJSON_AddStringToObject(c, "resource", jstr(req, "resource"));
    int rc = store_put_json(o, NS_CODE, h, c, o->o.code_ttl_s ? o->o.code_ttl_s : 60);
    cJSON_Delete(c);
    if (rc != 0) return html_error(out, 503, "The server's store is not answering; try again.");
    log_event(SB_LOG_INFO, "oauth_code_issued", jstr(req, "client_id"), NULL, NULL);
    rc = redirect_client(o, out, jstr(req, "redirect_uri"), "code", code, "state",
                         jstr(req, "state"), (const char *)NULL);
    explicit_bzero(code, sizeof code);
    return rc;
}

/* ---- provider sign-in ------------------------------------------------------------------------ */

/* The provider's authorize and token URLs for a region (the app's own, else the defaults, which
 * follow sandbox_url). 0 or -1. */
static int provider_urls(const sb_oauth *o, const sb_oauth_app *a, const char *provider,
                         const char *region, char *az, char *tok, size_t cap)
{
    if (a->authorize_url[0] && a->token_url[0]) {
        sb_strlcpy(az, a->authorize_url, cap);
        sb_strlcpy(tok, a->token_url, cap);
        return 0;
    }
    const char *sbx = o->o.sandbox_url && o->o.sandbox_url[0] ? o->o.sandbox_url : NULL;
    char base[280];
    const char *azp = "/connect/authorize", *tkp = "/connect/token";
    if (!strcmp(provider, "boldsign")) {
        if (sbx) snprintf(base, sizeof base, "%s/boldsign/%s/account", sbx, region);
        else snprintf(base, sizeof base, "https://account%s%s.boldsign.com",
                      strcmp(region, "us") ? "-" : "", strcmp(region, "us") ? region : "");
    } else if (!strcmp(provider, "dropboxsign")) {
        if (sbx) snprintf(base, sizeof base, "%s/dropboxsign/global/app", sbx);
        else sb_strlcpy(base, "https://app.hellosign.com", sizeof base);
        azp = "/oauth/authorize";
        tkp = "/oauth/token";
    } else if (!strcmp(provider, "iinkedsign")) {
        const sb_region *r = sb_regions_find(o->o.regions, provider, region);
        if (!r) return -1;
        sb_strlcpy(base, r->base_url, sizeof base);
        char *api = strstr(base, "/api/v1");
        if (api) *api = 0;
    } else {
        return -1;
    }
    snprintf(az, cap, "%s%s", base, azp);
    snprintf(tok, cap, "%s%s", base, tkp);
    return 0;
}

static const char *default_upstream_scope(const char *provider)
{
    if (!strcmp(provider, "boldsign"))
        return "openid profile email offline_access BoldSign.Documents.All "
               "BoldSign.Templates.All BoldSign.Users.Read BoldSign.Teams.Read";
    if (!strcmp(provider, "iinkedsign")) return "profile offline_access organization";
    return NULL;
}

static int start_provider_signin(sb_oauth *o, sb_oauth_resp *out, const char *req_id,
                                 const cJSON *req, const char *region, const char *nonce)
{
    const char *prov = jstr(req, "provider");
    const sb_oauth_app *a = find_app(o, prov, region);
    char az[320], tok[320];
    if (!a || provider_urls(o, a, prov, region, az, tok, sizeof az) != 0)
        return render_consent(o, out, 400, req_id, req, nonce,
                              "Signing in with the provider is not configured on this server: "
                              "use an API key.");
    char state[64], verifier[64], challenge[64], nh[65];
    unsigned char md[32];
    if (rand_token(state, sizeof state, 24, "") || rand_token(verifier, sizeof verifier, 32, ""))
        return html_error(out, 500, "Out of randomness.");
    SHA256((const unsigned char *)verifier, strlen(verifier), md);
    sb_base64url_encode(md, 32, challenge);
    sb_sha256_hex(nonce, strlen(nonce), nh);
    cJSON *u = cJSON_CreateObject();
    cJSON_AddStringToObject(u, "req_id", req_id);
    cJSON_AddStringToObject(u, "provider", prov);
    cJSON_AddStringToObject(u, "region", region);
    cJSON_AddStringToObject(u, "verifier", verifier);
    cJSON_AddStringToObject(u, "nonce_sha256", nh);
    int rc = store_put_json(o, NS_UP, state, u, REQ_TTL_S);
    cJSON_Delete(u);
    if (rc != 0) return html_error(out, 503, "The server's store is not answering; try again.");
    char cb[400];
    snprintf(cb, sizeof cb, "%s/oauth/callback/%s", o->issuer, prov);
    const char *scope = a->scope[0] ? a->scope : default_upstream_scope(prov);
    int pkce = strcmp(prov, "dropboxsign") != 0;
    sb_buf b;
    sb_buf_init(&b, 8192);
    sb_buf_printf(&b, "%s%cresponse_type=code&client_id=", az, strchr(az, '?') ? '&' : '?');
    url_encode(&b, a->client_id);
    sb_buf_puts(&b, "&redirect_uri=");
    url_encode(&b, cb);
    sb_buf_puts(&b, "&state=");
    url_encode(&b, state);
    if (scope) {
        sb_buf_puts(&b, "&scope=");
        url_encode(&b, scope);
    }
    if (pkce) sb_buf_printf(&b, "&code_challenge=%s&code_challenge_method=S256", challenge);
    out->status = 302;
    add_hdr(out, "Location", b.data ? b.data : az);
    add_hdr(out, "Cache-Control", "no-store");
    sb_buf_free(&b);
    log_event(SB_LOG_INFO, "oauth_provider_signin", jstr(req, "client_id"), NULL, prov);
    return 0;
}

/* POST /consent */
static int do_consent(sb_oauth *o, const sb_oauth_req *rq, sb_oauth_resp *out,
                      sb_oauth_pending **pending)
{
    form f;
    form_parse(&f, rq->body, rq->body_len);
    const char *req_id = form_get(&f, "request_id"), *csrf = form_get(&f, "csrf_token");
    const char *action = form_get(&f, "action");
    if (f.bad || !req_id || !sb_store_valid_key(req_id) || strlen(req_id) > 64) {
        form_free(&f);
        return html_error(out, 400, "The consent form is malformed.");
    }
    cJSON *req = store_get_json(o, NS_REQ, req_id, NULL);
    if (!req) {
        form_free(&f);
        return html_error(out, 400, "This sign-in request expired or was already used.");
    }
    char nonce[64], want[64], nh[65];
    cookie_nonce(o, rq, nonce);
    sb_sha256_hex(nonce, strlen(nonce), nh);
    hmac_b64(o, req_id, nonce, want);
    const char *rnh = jstr(req, "nonce_sha256");
    if (!nonce[0] || !csrf || !rnh || !sb_ct_equal(nh, strlen(nh), rnh, strlen(rnh)) ||
        !sb_ct_equal(csrf, strlen(csrf), want, strlen(want))) {
        log_event(SB_LOG_WARN, "oauth_consent_refused", jstr(req, "client_id"), "csrf",
                  "the consent form's CSRF token or cookie is missing or wrong");
        cJSON_Delete(req);
        form_free(&f);
        return html_error(out, 403,
                          "The consent form could not be verified (CSRF check failed). Start "
                          "the sign-in again from your client.");
    }
    const char *pin = jstr(req, "region_pin");
    const char *region = pin && pin[0] ? pin : form_get(&f, "region");
    if (region && (!strcmp(region, "auto") || !region[0])) region = NULL;
    char reg[24] = "";
    if (region) {
        if (strlen(region) >= sizeof reg ||
            (strcmp(region, "private") && !sb_regions_find(o->o.regions, jstr(req, "provider"), region))) {
            int rc = render_consent(o, out, 400, req_id, req, nonce, "Unknown region.");
            cJSON_Delete(req);
            form_free(&f);
            return rc;
        }
        sb_strlcpy(reg, region, sizeof reg);
    }
    int rc;
    if (action && !strcmp(action, "deny")) {
        cJSON *t = store_take_json(o, NS_REQ, req_id);
        rc = t ? redirect_error(o, out, req, jstr(req, "redirect_uri"), jstr(req, "state"),
                                "access_denied", "the user denied access")
               : html_error(out, 400, "This sign-in request was already used.");
        cJSON_Delete(t);
    } else if (action && !strcmp(action, "provider")) {
        if (!reg[0]) {
            for (size_t i = 0; i < o->o.regions->n; i++)
                if (!strcmp(o->o.regions->r[i].provider, jstr(req, "provider"))) {
                    sb_strlcpy(reg, o->o.regions->r[i].name, sizeof reg);
                    break;
                }
        }
        rc = start_provider_signin(o, out, req_id, req, reg, nonce);
    } else if (action && !strcmp(action, "api_key")) {
        const char *key = form_get(&f, "api_key");
        size_t kl = key ? strlen(key) : 0;
        while (kl && key[kl - 1] == ' ') kl--;
        while (kl && *key == ' ') key++, kl--;
        int ok = kl > 0 && kl <= SB_CRED_MAX;
        for (size_t i = 0; ok && i < kl; i++) ok = key[i] > 0x20 && key[i] < 0x7f;
        if (!ok) {
            rc = render_consent(o, out, 400, req_id, req, nonce,
                                "Enter the API key (printable characters, at most 1024).");
        } else {
            cJSON *st = cJSON_CreateObject();
            cJSON_AddStringToObject(st, "req_id", req_id);
            char kc[SB_CRED_MAX + 1];
            memcpy(kc, key, kl);
            kc[kl] = 0;
            cJSON_AddStringToObject(st, "key", kc);
            explicit_bzero(kc, sizeof kc);
            sb_oauth_pending *p = pending_new(P_VERIFY, st);
            const char *k2 = p ? jstr(st, "key") : NULL;
            if (!p || !o->o.verify ||
                o->o.verify(o->o.verify_ud, jstr(req, "provider"), reg, jstr(req, "instance"), k2,
                            kl, verify_done, p) != 0) {
                if (p) {
                    pending_release(p);
                    pending_release(p);
                } else {
                    cJSON_Delete(st);
                }
                rc = render_consent(o, out, 503, req_id, req, nonce,
                                    "The key cannot be checked right now; try again.");
            } else {
                *pending = p;
                rc = 1;
            }
        }
    } else {
        rc = render_consent(o, out, 400, req_id, req, nonce, "Choose how to connect.");
    }
    cJSON_Delete(req);
    form_free(&f);
    return rc;
}

static int verify_continue(sb_oauth *o, sb_oauth_pending *p, const sb_oauth_req *rq,
                           sb_oauth_resp *out)
{
    const char *req_id = jstr(p->state, "req_id");
    char nonce[64];
    cookie_nonce(o, rq, nonce);
    if (!p->v_ok) {
        cJSON *req = store_get_json(o, NS_REQ, req_id, NULL);
        if (!req) return html_error(out, 400, "This sign-in request expired.");
        log_event(SB_LOG_WARN, "oauth_consent_key_rejected", jstr(req, "client_id"),
                  "access_denied", p->v_msg);
        int rc = render_consent(o, out, 400, req_id, req, nonce, p->v_msg);
        cJSON_Delete(req);
        return rc;
    }
    cJSON *req = store_take_json(o, NS_REQ, req_id);
    if (!req) return html_error(out, 400, "This sign-in request expired or was already used.");
    char gid[48];
    int rc;
    if (grant_create(o, req, "api_key", p->v_region, jstr(p->state, "key"), NULL, 0, gid) != 0)
        rc = html_error(out, 503, "The server's store is not answering; try again.");
    else
        rc = finish_with_code(o, out, req, gid);
    cJSON_Delete(req);
    return rc;
}

/* GET /oauth/callback/{provider} */
static int do_callback(sb_oauth *o, const sb_oauth_req *rq, sb_oauth_resp *out,
                       sb_oauth_pending **pending)
{
    const char *prov = rq->path + strlen("/oauth/callback/");
    const char *state = rq->query(rq->ctx, "state");
    if (!state || !sb_store_valid_key(state) || strlen(state) > 128)
        return html_error(out, 400, "The provider's answer has no valid state.");
    cJSON *u = store_take_json(o, NS_UP, state);
    if (!u) return html_error(out, 400, "This provider sign-in expired or was already used.");
    char nonce[64], nh[65];
    cookie_nonce(o, rq, nonce);
    sb_sha256_hex(nonce, strlen(nonce), nh);
    const char *unh = jstr(u, "nonce_sha256");
    if (!nonce[0] || !unh || !sb_ct_equal(nh, strlen(nh), unh, strlen(unh)) ||
        strcmp(prov, jstr(u, "provider")) != 0) {
        log_event(SB_LOG_WARN, "oauth_callback_refused", NULL, "csrf",
                  "the provider callback came without this browser's consent cookie");
        cJSON_Delete(u);
        return html_error(out, 403, "This sign-in was started in another browser (CSRF check "
                                    "failed).");
    }
    const char *err = rq->query(rq->ctx, "error");
    const char *code = rq->query(rq->ctx, "code");
    if (err || !code) {
        cJSON *req = store_take_json(o, NS_REQ, jstr(u, "req_id"));
        int rc = req ? redirect_error(o, out, req, jstr(req, "redirect_uri"), jstr(req, "state"),
                                      "access_denied", "the provider sign-in was not approved")
                     : html_error(out, 400, "This sign-in request expired.");
        cJSON_Delete(req);
        cJSON_Delete(u);
        return rc;
    }
    const sb_oauth_app *a = find_app(o, prov, jstr(u, "region"));
    char az[320], tok[320];
    if (!a || provider_urls(o, a, prov, jstr(u, "region"), az, tok, sizeof az) != 0) {
        cJSON_Delete(u);
        return html_error(out, 400, "Signing in with the provider is not configured.");
    }
    char cb[400];
    snprintf(cb, sizeof cb, "%s/oauth/callback/%s", o->issuer, prov);
    sb_buf b;
    sb_buf_init(&b, 16384);
    sb_buf_puts(&b, "grant_type=authorization_code&code=");
    url_encode(&b, code);
    sb_buf_puts(&b, "&redirect_uri=");
    url_encode(&b, cb);
    sb_buf_puts(&b, "&client_id=");
    url_encode(&b, a->client_id);
    sb_buf_puts(&b, "&client_secret=");
    url_encode(&b, a->client_secret);
    if (strcmp(prov, "dropboxsign") != 0) {
        sb_buf_puts(&b, "&code_verifier=");
        url_encode(&b, jstr(u, "verifier"));
    } else {
        sb_buf_puts(&b, "&state=");
        url_encode(&b, state);
    }
    cJSON *st = cJSON_CreateObject();
    cJSON_AddStringToObject(st, "req_id", jstr(u, "req_id"));
    cJSON_AddStringToObject(st, "region", jstr(u, "region"));
    cJSON_Delete(u);
    sb_oauth_pending *p = pending_new(P_EXCHANGE, st);
    const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded",
                          "Accept: application/json", NULL};
    int rc = p ? submit_up(o, p, "POST", tok, hdrs, b.data, SB_UP_POLICY_DEFAULT, 65536) : -1;
    explicit_bzero(b.data ? b.data : (char *)"", b.len);
    sb_buf_free(&b);
    if (rc != 0) {
        if (p) pending_release(p);
        else cJSON_Delete(st);
        return html_error(out, 503, "The provider cannot be reached now; try again.");
    }
    *pending = p;
    return 1;
}

static int exchange_continue(sb_oauth *o, sb_oauth_pending *p, sb_oauth_resp *out)
{
    cJSON *j = p->up_body ? cJSON_ParseWithLength(p->up_body, p->up_len) : NULL;
    const char *at = jstr(j, "access_token");
    if (p->up_error || p->up_status != 200 || !at || !at[0] || strlen(at) > SB_CRED_MAX) {
        char msg[200];
        snprintf(msg, sizeof msg, "The provider did not complete the sign-in (%s %d).",
                 p->up_error ? "network error" : "HTTP", p->up_error ? -p->up_error : p->up_status);
        log_event(SB_LOG_WARN, "oauth_provider_exchange_failed", NULL, "upstream", msg);
        cJSON_Delete(j);
        return html_error(out, 502, msg);
    }
    cJSON *req = store_take_json(o, NS_REQ, jstr(p->state, "req_id"));
    if (!req) {
        cJSON_Delete(j);
        return html_error(out, 400, "This sign-in request expired or was already used.");
    }
    double exp = jnum(j, "expires_in");
    int64_t up_exp = exp > 0 ? (int64_t)sb_wall_ms() + (int64_t)(exp * 1000) : 0;
    char gid[48];
    int rc;
    if (grant_create(o, req, "provider_oauth", jstr(p->state, "region"), at,
                     jstr(j, "refresh_token"), up_exp, gid) != 0)
        rc = html_error(out, 503, "The server's store is not answering; try again.");
    else
        rc = finish_with_code(o, out, req, gid);
    cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "access_token");
    if (cJSON_IsString(t)) explicit_bzero(t->valuestring, strlen(t->valuestring));
    t = cJSON_GetObjectItemCaseSensitive(j, "refresh_token");
    if (cJSON_IsString(t)) explicit_bzero(t->valuestring, strlen(t->valuestring));
    cJSON_Delete(j);
    cJSON_Delete(req);
    return rc;
}

/* ---- token endpoint -------------------------------------------------------------------------- */

/* Authenticate the client at /token or /revoke. Returns the client record (caller frees) or NULL
 * with *out written (401 invalid_client / 400 invalid_request). */
static cJSON *client_auth(sb_oauth *o, const sb_oauth_req *rq, const form *f, sb_oauth_resp *out)
{
    char bid[1024] = "", bsec[512] = "";
    int basic = 0;
    const char *auth = rq->header(rq->ctx, "Authorization");
    if (auth && strncasecmp(auth, "Basic ", 6) == 0) {
        unsigned char dec[1600];
        long n = sb_base64_decode(auth + 6, strlen(auth + 6), dec, sizeof dec - 1);
        if (n < 0) {
            oauth_error(out, 401, "invalid_client", "malformed Basic credentials");
            return NULL;
        }
        dec[n] = 0;
        char *colon = strchr((char *)dec, ':');
        if (!colon) {
            oauth_error(out, 401, "invalid_client", "malformed Basic credentials");
            return NULL;
        }
        *colon = 0;
        sb_strlcpy(bid, (char *)dec, sizeof bid);
        sb_strlcpy(bsec, colon + 1, sizeof bsec);
        pct_decode(bid);
        pct_decode(bsec);
        explicit_bzero(dec, sizeof dec);
        basic = 1;
    }
    const char *fid = form_get(f, "client_id"), *fsec = form_get(f, "client_secret");
    const char *id = basic ? bid : fid;
    const char *secret = basic ? bsec : fsec;
    if (basic && fid && strcmp(fid, bid) != 0) {
        oauth_error(out, 400, "invalid_request", "client_id differs from the Basic credentials");
        return NULL;
    }
    if (!id || !id[0]) {
        oauth_error(out, 401, "invalid_client", "client_id is missing");
        return NULL;
    }
    cJSON *c = client_lookup(o, id);
    if (!c) {
        log_event(SB_LOG_WARN, "oauth_token_refused", id, "invalid_client", "unknown client");
        oauth_error(out, 401, "invalid_client",
                    "unknown client: it is not registered here or its registration expired; "
                    "register again");
        return NULL;
    }
    const char *sh = jstr(c, "secret_sha256");
    if (sh) {
        char got[65];
        sb_sha256_hex(secret ? secret : "", secret ? strlen(secret) : 0, got);
        if (!secret || !sb_ct_equal(got, 64, sh, strlen(sh))) {
            explicit_bzero(bsec, sizeof bsec);
            cJSON_Delete(c);
            log_event(SB_LOG_WARN, "oauth_token_refused", id, "invalid_client", "bad secret");
            oauth_error(out, 401, "invalid_client", "client authentication failed");
            return NULL;
        }
    }
    explicit_bzero(bsec, sizeof bsec);
    return c;
}

static int issue_tokens(sb_oauth *o, sb_oauth_resp *out, const char *gid, const char *client_id,
                        const char *scope, const char *resource)
{
    int64_t now = (int64_t)(sb_wall_ms() / 1000);
    unsigned ttl = o->o.access_ttl_s ? o->o.access_ttl_s : 3600;
    char jti[40], rt[64], h[65];
    if (rand_token(jti, sizeof jti, 16, "") || rand_token(rt, sizeof rt, 32, "sbr_"))
        return oauth_error(out, 500, "server_error", NULL);
    cJSON *cl = cJSON_CreateObject();
    cJSON_AddStringToObject(cl, "iss", o->issuer);
    cJSON_AddStringToObject(cl, "sub", gid);
    cJSON_AddStringToObject(cl, "aud", resource);
    cJSON_AddStringToObject(cl, "client_id", client_id);
    cJSON_AddStringToObject(cl, "scope", scope);
    cJSON_AddStringToObject(cl, "gid", gid);
    cJSON_AddNumberToObject(cl, "iat", (double)now);
    cJSON_AddNumberToObject(cl, "nbf", (double)now);
    cJSON_AddNumberToObject(cl, "exp", (double)(now + ttl));
    cJSON_AddStringToObject(cl, "jti", jti);
    sb_buf at;
    sb_buf_init(&at, SB_JWT_MAX_TOKEN);
    int rc = sb_jwt_sign(o->signer, "at+jwt", cl, &at);
    cJSON_Delete(cl);
    if (rc != 0) {
        sb_buf_free(&at);
        return oauth_error(out, 500, "server_error", "cannot sign the access token");
    }
    sb_sha256_hex(rt, strlen(rt), h);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "gid", gid);
    cJSON_AddStringToObject(r, "client_id", client_id);
    cJSON_AddStringToObject(r, "scope", scope);
    cJSON_AddStringToObject(r, "resource", resource);
    cJSON_AddBoolToObject(r, "used", 0);
    rc = store_put_json(o, NS_REFRESH, h, r, o->o.refresh_ttl_s ? o->o.refresh_ttl_s : 30 * 86400);
    cJSON_Delete(r);
    if (rc != 0) {
        sb_buf_free(&at);
        return oauth_error(out, 503, "temporarily_unavailable", "the store is not answering");
    }
    cJSON *resp = cJSON_CreateObject();
    cJSON_AddStringToObject(resp, "access_token", at.data);
    cJSON_AddStringToObject(resp, "token_type", "Bearer");
    cJSON_AddNumberToObject(resp, "expires_in", ttl);
    cJSON_AddStringToObject(resp, "scope", scope);
    cJSON_AddStringToObject(resp, "refresh_token", rt);
    sb_buf_free(&at);
    explicit_bzero(rt, sizeof rt);
    log_event(SB_LOG_INFO, "oauth_tokens_issued", client_id, NULL, NULL);
    return resp_json(out, 200, resp);
}

static int verifier_ok(const char *v)
{
    size_t n = v ? strlen(v) : 0;
    if (n < 43 || n > 128) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((v[i] >= 'A' && v[i] <= 'Z') || (v[i] >= 'a' && v[i] <= 'z') ||
              (v[i] >= '0' && v[i] <= '9') || v[i] == '-' || v[i] == '.' || v[i] == '_' ||
              v[i] == '~'))
            return 0;
    return 1;
}

static int token_code(sb_oauth *o, const form *f, const cJSON *client, sb_oauth_resp *out)
{
    const char *code = form_get(f, "code"), *verifier = form_get(f, "code_verifier");
    const char *cid = jstr(client, "client_id");
    if (!code || !code[0]) return oauth_error(out, 400, "invalid_request", "code is missing");
    char h[65];
    sb_sha256_hex(code, strlen(code), h);
    cJSON *c = store_take_json(o, NS_CODE, h);
    if (!c) {
        cJSON *used = store_get_json(o, NS_CODE_USED, h, NULL);
        if (used) {
            /* a replayed code: revoke what it gave (RFC 6749 §4.1.2) */
            grant_revoke(o, jstr(used, "gid"), "authorization code used twice");
            cJSON_Delete(used);
        }
        log_event(SB_LOG_WARN, "oauth_token_refused", cid, "invalid_grant",
                  used ? "authorization code replayed" : "unknown or expired code");
        return oauth_error(out, 400, "invalid_grant",
                           "the authorization code is invalid, expired or already used");
    }
    cJSON *u = cJSON_CreateObject();
    cJSON_AddStringToObject(u, "gid", jstr(c, "gid"));
    store_put_json(o, NS_CODE_USED, h, u, 86400);
    cJSON_Delete(u);
    const char *why = NULL, *err = "invalid_grant";
    const char *ru = form_get(f, "redirect_uri"), *res = form_get(f, "resource");
    if (strcmp(jstr(c, "client_id"), cid) != 0) {
        why = "the code was issued to another client";
    } else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "redirect_given")) &&
               (!ru || strcmp(ru, jstr(c, "redirect_uri")) != 0)) {
        why = "redirect_uri differs from the authorization request's";
    } else if (!verifier) {
        why = "code_verifier is missing (PKCE)";
        err = "invalid_request";
    } else {
        char calc[64];
        unsigned char md[32];
        SHA256((const unsigned char *)verifier, strlen(verifier), md);
        sb_base64url_encode(md, 32, calc);
        const char *ch = jstr(c, "challenge");
        if (!verifier_ok(verifier) || !sb_ct_equal(calc, strlen(calc), ch, strlen(ch)))
            why = "PKCE verification failed: code_verifier does not match code_challenge";
    }
    if (!why && res) {
        char r2[400];
        sb_strlcpy(r2, res, sizeof r2);
        size_t l = strlen(r2);
        if (l > 1 && r2[l - 1] == '/') r2[l - 1] = 0;
        if (strcmp(r2, jstr(c, "resource")) != 0) {
            why = "resource differs from the one authorized";
            err = "invalid_target";
        }
    }
    if (why) {
        /* a failed redemption burns the code and the grant behind it */
        grant_revoke(o, jstr(c, "gid"), why);
        log_event(SB_LOG_WARN, "oauth_token_refused", cid, err, why);
        cJSON_Delete(c);
        return oauth_error(out, 400, err, why);
    }
    cJSON *g = store_get_json(o, NS_GRANT, jstr(c, "gid"), NULL);
    if (!g) {
        cJSON_Delete(c);
        return oauth_error(out, 400, "invalid_grant", "the grant was revoked");
    }
    cJSON_Delete(g);
    int rc = issue_tokens(o, out, jstr(c, "gid"), cid, jstr(c, "scope"), jstr(c, "resource"));
    cJSON_Delete(c);
    return rc;
}

static int token_refresh(sb_oauth *o, const form *f, const cJSON *client, sb_oauth_resp *out)
{
    const char *rt = form_get(f, "refresh_token");
    const char *cid = jstr(client, "client_id");
    if (!rt || !rt[0]) return oauth_error(out, 400, "invalid_request", "refresh_token is missing");
    char h[65];
    sb_sha256_hex(rt, strlen(rt), h);
    int64_t ver = 0;
    cJSON *r = store_get_json(o, NS_REFRESH, h, &ver);
    if (!r) {
        log_event(SB_LOG_WARN, "oauth_token_refused", cid, "invalid_grant", "unknown refresh token");
        return oauth_error(out, 400, "invalid_grant", "the refresh token is invalid or expired");
    }
    const char *gid = jstr(r, "gid");
    if (strcmp(jstr(r, "client_id"), cid) != 0) {
        cJSON_Delete(r);
        return oauth_error(out, 400, "invalid_grant", "the refresh token belongs to another client");
    }
    int reused = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "used"));
    /* refuse a bad scope / resource before the token is marked used, so that a refused request
     * does not burn the refresh token (and a retry is not taken for a replay) */
    int have = scope_flags(jstr(r, "scope"), 0);
    const char *sc = form_get(f, "scope");
    int want = sc ? scope_flags(sc, -1) : have;
    if (!reused && sc && (want == -1 || (want & ~have))) {
        cJSON_Delete(r);
        log_event(SB_LOG_WARN, "oauth_token_refused", cid, "invalid_scope", "scope widened at refresh");
        return oauth_error(out, 400, "invalid_scope",
                           "a refresh cannot widen the scope the user granted");
    }
    const char *res = form_get(f, "resource");
    if (!reused && res) {
        char r2[400];
        sb_strlcpy(r2, res, sizeof r2);
        size_t l = strlen(r2);
        if (l > 1 && r2[l - 1] == '/') r2[l - 1] = 0;
        if (strcmp(r2, jstr(r, "resource")) != 0) {
            cJSON_Delete(r);
            return oauth_error(out, 400, "invalid_target", "resource differs from the one authorized");
        }
    }
    if (!reused) {
        cJSON_ReplaceItemInObjectCaseSensitive(r, "used", cJSON_CreateBool(1));
        char *s = cJSON_PrintUnformatted(r);
        int64_t keep = sb_store_now_ms() + (int64_t)(o->o.refresh_ttl_s ? o->o.refresh_ttl_s : 30 * 86400) * 1000;
        int rc = s ? sb_store_cas(o->o.store, NS_REFRESH, h, ver, s, strlen(s), keep, NULL) : -1;
        free(s);
        if (rc == SB_STORE_CONFLICT) reused = 1;
        else if (rc != SB_STORE_OK) {
            cJSON_Delete(r);
            return oauth_error(out, 503, "temporarily_unavailable", "the store is not answering");
        }
    }
    if (reused) {
        /* a refresh token used twice: someone holds a copy; end the whole family */
        grant_revoke(o, gid, "refresh token reused");
        log_event(SB_LOG_WARN, "oauth_token_refused", cid, "invalid_grant", "refresh token reused");
        cJSON_Delete(r);
        return oauth_error(out, 400, "invalid_grant",
                           "the refresh token was already used; the grant is revoked, sign in again");
    }
    int64_t gv = 0;
    cJSON *g = store_get_json(o, NS_GRANT, gid, &gv);
    if (!g) {
        cJSON_Delete(r);
        return oauth_error(out, 400, "invalid_grant", "the grant was revoked; sign in again");
    }
    /* keep the grant alive as long as it is used */
    store_put_json(o, NS_GRANT, gid, g, o->o.refresh_ttl_s ? o->o.refresh_ttl_s : 30 * 86400);
    cJSON_Delete(g);
    int rc = issue_tokens(o, out, gid, cid, scope_string(want), jstr(r, "resource"));
    cJSON_Delete(r);
    return rc;
}

/* Parse the form body into *f and authenticate the client. The client record (caller frees it,
 * and frees *f with form_free), or NULL with *out answered and *f already freed. */
static cJSON *form_client(sb_oauth *o, const sb_oauth_req *rq, form *f, sb_oauth_resp *out)
{
    form_parse(f, rq->body, rq->body_len);
    if (f->bad) {
        form_free(f);
        oauth_error(out, 400, "invalid_request", "malformed or repeated parameters");
        return NULL;
    }
    cJSON *client = client_auth(o, rq, f, out);
    if (!client) form_free(f);
    return client;
}

/* POST /token */
static int do_token(sb_oauth *o, const sb_oauth_req *rq, sb_oauth_resp *out)
{
    const char *ct = rq->header(rq->ctx, "Content-Type");
    if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0)
        return oauth_error(out, 400, "invalid_request",
                           "send the token request as application/x-www-form-urlencoded");
    form f;
    cJSON *client = form_client(o, rq, &f, out);
    if (!client) return 0;
    const char *gt = form_get(&f, "grant_type");
    int rc;
    if (gt && !strcmp(gt, "authorization_code"))
        rc = token_code(o, &f, client, out);
    else if (gt && !strcmp(gt, "refresh_token"))
        rc = token_refresh(o, &f, client, out);
    else
        rc = oauth_error(out, 400, "unsupported_grant_type",
                         "grant_type must be authorization_code or refresh_token");
    cJSON_Delete(client);
    form_free(&f);
    return rc;
}

/* POST /revoke (RFC 7009): revoking any token of a grant ends the grant. */
static int do_revoke(sb_oauth *o, const sb_oauth_req *rq, sb_oauth_resp *out)
{
    form f;
    cJSON *client = form_client(o, rq, &f, out);
    if (!client) return 0;
    const char *tok = form_get(&f, "token");
    if (!tok) {
        cJSON_Delete(client);
        form_free(&f);
        return oauth_error(out, 400, "invalid_request", "token is missing");
    }
    const char *cid = jstr(client, "client_id");
    if (!strncmp(tok, "sbr_", 4)) {
        char h[65];
        sb_sha256_hex(tok, strlen(tok), h);
        cJSON *r = store_get_json(o, NS_REFRESH, h, NULL);
        if (r && !strcmp(jstr(r, "client_id"), cid)) {
            grant_revoke(o, jstr(r, "gid"), "revoked by the client");
            sb_store_delete(o->o.store, NS_REFRESH, h, 0);
        }
        cJSON_Delete(r);
    } else {
        cJSON *cl = NULL;
        sb_jwt_expect ex = {.iss = o->issuer, .leeway_s = 60};
        char e[100];
        if (sb_jwt_verify(o->keys, tok, strlen(tok), &ex, &cl, e, sizeof e) == SB_JWT_OK &&
            jstr(cl, "client_id") && !strcmp(jstr(cl, "client_id"), cid))
            grant_revoke(o, jstr(cl, "gid"), "revoked by the client");
        cJSON_Delete(cl);
    }
    cJSON_Delete(client);
    form_free(&f);
    out->status = 200;
    sb_strlcpy(out->ctype, "application/json", sizeof out->ctype);
    out->body = strdup("{}");
    out->len = 2;
    add_hdr(out, "Cache-Control", "no-store");
    return 0;
}

/* ---- resource server ------------------------------------------------------------------------- */

/* Refresh a provider OAuth grant's upstream access token (blocking this thread up to the
 * upstream timeout; happens once per upstream token lifetime). 0, -1 (the provider refused:
 * the grant is dead), -2 (could not reach it). */
static int upstream_refresh(sb_oauth *o, const char *gid, cJSON *g, int64_t ver)
{
    const char *prov = jstr(g, "provider"), *region = jstr(g, "region");
    const sb_oauth_app *a = find_app(o, prov, region);
    char az[320], tok[320], rt[SB_CRED_MAX + 1];
    if (!a || provider_urls(o, a, prov, region, az, tok, sizeof az) != 0) return -1;
    if (!jstr(g, "refresh") ||
        sb_seal_open_b64(o->seal_key, NS_GRANT, gid, jstr(g, "refresh"), rt, sizeof rt) < 0)
        return -1;
    sb_buf b;
    sb_buf_init(&b, 16384);
    sb_buf_puts(&b, "grant_type=refresh_token&refresh_token=");
    url_encode(&b, rt);
    explicit_bzero(rt, sizeof rt);
    sb_buf_puts(&b, "&client_id=");
    url_encode(&b, a->client_id);
    sb_buf_puts(&b, "&client_secret=");
    url_encode(&b, a->client_secret);
    sb_oauth_pending *p = pending_new(P_REFRESH, NULL);
    const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded",
                          "Accept: application/json", NULL};
    char url[340];
    snprintf(url, sizeof url, "%s%s", tok, strcmp(prov, "dropboxsign") ? "" : "?refresh");
    int rc = p ? submit_up(o, p, "POST", url, hdrs, b.data, SB_UP_POLICY_DEFAULT, 65536) : -1;
    explicit_bzero(b.data ? b.data : (char *)"", b.len);
    sb_buf_free(&b);
    if (rc != 0) {
        if (p) pending_release(p);
        return -2;
    }
    pthread_mutex_lock(&p->mu);
    while (!p->done) pthread_cond_wait(&p->cv, &p->mu); /* sb_up's deadline bounds this */
    pthread_mutex_unlock(&p->mu);
    cJSON *j = p->up_body ? cJSON_ParseWithLength(p->up_body, p->up_len) : NULL;
    const char *at = jstr(j, "access_token");
    if (p->up_error || !at || p->up_status != 200) {
        int dead = !p->up_error && p->up_status >= 400 && p->up_status < 500;
        log_event(SB_LOG_WARN, "oauth_upstream_refresh_failed", jstr(g, "client_id"),
                  dead ? "invalid_grant" : "unavailable", prov);
        cJSON_Delete(j);
        pending_release(p);
        return dead ? -1 : -2;
    }
    char *c = sb_seal_b64(o->seal_key, NS_GRANT, gid, at, strlen(at));
    const char *nrt = jstr(j, "refresh_token");
    char *r = nrt ? sb_seal_b64(o->seal_key, NS_GRANT, gid, nrt, strlen(nrt)) : NULL;
    if (c) cJSON_ReplaceItemInObjectCaseSensitive(g, "cred", cJSON_CreateString(c));
    if (r) cJSON_ReplaceItemInObjectCaseSensitive(g, "refresh", cJSON_CreateString(r));
    double exp = jnum(j, "expires_in");
    cJSON_ReplaceItemInObjectCaseSensitive(
        g, "up_exp_ms", cJSON_CreateNumber(exp > 0 ? (double)sb_wall_ms() + exp * 1000 : 0));
    free(c);
    free(r);
    char *s = cJSON_PrintUnformatted(g);
    unsigned ttl = o->o.refresh_ttl_s ? o->o.refresh_ttl_s : 30u * 86400u;
    /* a concurrent refresh elsewhere wins the CAS; ours then stands only in memory this once */
    if (s) sb_store_cas(o->o.store, NS_GRANT, gid, ver, s, strlen(s),
                        sb_store_now_ms() + (int64_t)ttl * 1000, NULL);
    free(s);
    cJSON_Delete(j);
    pending_release(p);
    log_event(SB_LOG_INFO, "oauth_upstream_refreshed", jstr(g, "client_id"), NULL, prov);
    return 0;
}

/* Load a grant into a cache slot (store read, unseal, upstream refresh when due). */
static int grant_load(sb_oauth *o, const char *gid, grant_slot *s, char *err, size_t errlen)
{
    int64_t ver = 0;
    sb_store_rec rec = {0};
    int src = sb_store_get(o->o.store, NS_GRANT, gid, &rec);
    if (src == SB_STORE_NOTFOUND) {
        snprintf(err, errlen, "the grant behind this token was revoked or expired; sign in again");
        return -1;
    }
    if (src != SB_STORE_OK) {
        snprintf(err, errlen, "the store is not answering");
        return -2;
    }
    ver = rec.version;
    cJSON *g = cJSON_ParseWithLength((const char *)rec.value, rec.len);
    sb_store_rec_free(&rec);
    if (!g) {
        snprintf(err, errlen, "unreadable grant");
        return -2;
    }
    const char *kind = jstr(g, "kind");
    int bearer = kind && !strcmp(kind, "provider_oauth");
    double up_exp = jnum(g, "up_exp_ms");
    if (bearer && up_exp > 0 && (double)sb_wall_ms() + 60000 > up_exp) {
        int rc = upstream_refresh(o, gid, g, ver);
        if (rc == -1) {
            grant_revoke(o, gid, "the provider refused to refresh its token");
            cJSON_Delete(g);
            snprintf(err, errlen, "the provider sign-in expired; sign in again");
            return -1;
        }
        if (rc == -2) {
            cJSON_Delete(g);
            snprintf(err, errlen, "the provider cannot be reached to refresh the sign-in");
            return -2;
        }
    }
    memset(s, 0, sizeof *s);
    long n = jstr(g, "cred") ? sb_seal_open_b64(o->seal_key, NS_GRANT, gid, jstr(g, "cred"),
                                                s->cred, sizeof s->cred)
                             : -1;
    if (n <= 0) {
        cJSON_Delete(g);
        snprintf(err, errlen, "the grant's credential cannot be opened");
        return -2;
    }
    s->cred_len = (size_t)n;
    s->bearer = bearer;
    sb_strlcpy(s->gid, gid, sizeof s->gid);
    sb_strlcpy(s->provider, jstr(g, "provider") ? jstr(g, "provider") : "", sizeof s->provider);
    sb_strlcpy(s->region, jstr(g, "region") ? jstr(g, "region") : "", sizeof s->region);
    sb_strlcpy(s->instance, jstr(g, "instance") ? jstr(g, "instance") : "", sizeof s->instance);
    sb_strlcpy(s->client, jstr(g, "client_id") ? jstr(g, "client_id") : "", sizeof s->client);
    s->loaded_ms = sb_mono_ms();
    s->used = 1;
    cJSON_Delete(g);
    return 0;
}

static unsigned slot_of(const char *gid)
{
    unsigned h = 2166136261u;
    for (const char *p = gid; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    return h % GRANT_CACHE;
}

#define AT_LEEWAY_S 30 /* clock skew allowed on an access token's exp, nbf and iat */

/* SHA-256 of aud, a NUL and the token: the key of its tok_slot. 0 or -1. */
static int token_digest(const sb_oauth *o, const char *aud, const char *token, size_t len,
                        unsigned char dg[32])
{
    EVP_MD_CTX *c = o->sha256 ? EVP_MD_CTX_new() : NULL;
    unsigned n = 0;
    int ok = c && EVP_DigestInit_ex(c, o->sha256, NULL) &&
             EVP_DigestUpdate(c, aud, strlen(aud) + 1) && EVP_DigestUpdate(c, token, len) &&
             EVP_DigestFinal_ex(c, dg, &n) && n == 32;
    EVP_MD_CTX_free(c);
    return ok ? 0 : -1;
}

/* The slot of a token verified earlier for this audience and still valid at now (seconds), copied
 * to *t: 1; else 0. */
static int token_cached(sb_oauth *o, const unsigned char dg[32], double now, tok_slot *t)
{
    unsigned i;
    memcpy(&i, dg, sizeof i);
    i &= TOKEN_CACHE - 1;
    int hit = 0;
    pthread_mutex_lock(&o->tok_mu);
    if (o->tokens && o->tokens[i].used && sb_ct_equal(o->tokens[i].digest, 32, dg, 32)) {
        *t = o->tokens[i];
        hit = 1;
    }
    pthread_mutex_unlock(&o->tok_mu);
    /* the checks sb_jwt_verify made, again: exp (beyond the leeway) and nbf / iat */
    if (hit && (now >= t->exp + AT_LEEWAY_S || t->not_before > now + AT_LEEWAY_S)) hit = 0;
    if (!hit) explicit_bzero(t, sizeof *t);
    return hit;
}

static void token_keep(sb_oauth *o, const tok_slot *t)
{
    unsigned i;
    memcpy(&i, t->digest, sizeof i);
    i &= TOKEN_CACHE - 1;
    pthread_mutex_lock(&o->tok_mu);
    if (!o->tokens) o->tokens = calloc(TOKEN_CACHE, sizeof *o->tokens);
    if (o->tokens) o->tokens[i] = *t; /* a token in the same slot gives way: it is verified again */
    pthread_mutex_unlock(&o->tok_mu);
}

/* Verify the token with the signing keys and fill *t from its claims (digest left to the caller).
 * 0, or -1 with the reason in err. */
static int token_verify(sb_oauth *o, const char *token, size_t len, const char *aud, tok_slot *t,
                        char *err, size_t errlen)
{
    sb_jwt_expect ex = {.iss = o->issuer, .aud = aud, .leeway_s = AT_LEEWAY_S, .typ = "at+jwt"};
    cJSON *cl = NULL;
    char e[160];
    int rc = sb_jwt_verify(o->keys, token, len, &ex, &cl, e, sizeof e);
    if (rc != SB_JWT_OK) {
        const char *why = rc == SB_JWT_EEXPIRED ? "the access token expired; refresh it"
                          : rc == SB_JWT_EAUD   ? "the access token was issued for another MCP URL"
                          : rc == SB_JWT_EISS   ? "the access token was not issued by this server"
                          : rc == SB_JWT_EALG   ? "the access token's algorithm is not accepted"
                          : rc == SB_JWT_ESIG || rc == SB_JWT_EKID
                              ? "the access token's signature does not verify"
                              : "the access token is malformed";
        snprintf(err, errlen, "%s", why);
        log_event(SB_LOG_WARN, "oauth_token_rejected", NULL, "invalid_token", e);
        return -1;
    }
    const char *gid = jstr(cl, "gid");
    if (!gid || !sb_store_valid_key(gid) || strlen(gid) >= sizeof t->gid) {
        cJSON_Delete(cl);
        snprintf(err, errlen, "the access token is malformed");
        return -1;
    }
    sb_strlcpy(t->gid, gid, sizeof t->gid);
    t->flags = scope_flags(jstr(cl, "scope"), 0);
    sb_jwt_claim_times(cl, &t->exp, &t->not_before);
    cJSON_Delete(cl);
    /* the fingerprint names the grant (sessions, idempotency, audit), never the credential */
    unsigned char md[32];
    unsigned mdlen = 0;
    char m[64];
    int ml = snprintf(m, sizeof m, "grant\n%s", t->gid);
    HMAC(EVP_sha256(), o->secret, 32, (const unsigned char *)m, (size_t)ml, md, &mdlen);
    sb_hex_encode(md, 32, t->fingerprint);
    explicit_bzero(md, sizeof md);
    t->used = 1;
    return 0;
}

int sb_oauth_authenticate(sb_oauth *o, const char *token, size_t len, sb_principal *p, char *err,
                          size_t errlen)
{
    char aud[400];
    snprintf(aud, sizeof aud, "%s%s", o->issuer, p->route);
    /* a token verified before for this MCP URL and still valid is not verified again */
    tok_slot t;
    unsigned char dg[32];
    int have_dg = token_digest(o, aud, token, len, dg) == 0;
    if (have_dg && token_cached(o, dg, (double)time(NULL), &t)) {
        sb_metrics_inc(o->tok_cached);
    } else {
        sb_metrics_inc(o->tok_verified);
        if (token_verify(o, token, len, aud, &t, err, errlen) != 0) {
            explicit_bzero(&t, sizeof t);
            return -1;
        }
        if (have_dg) {
            memcpy(t.digest, dg, sizeof dg);
            token_keep(o, &t);
        }
    }
    const char *gid = t.gid;
    grant_slot s;
    unsigned i = slot_of(gid);
    int hit = 0;
    pthread_mutex_lock(&o->cache_mu);
    if (o->cache[i].used && !strcmp(o->cache[i].gid, gid) &&
        sb_mono_ms() - o->cache[i].loaded_ms < GRANT_CACHE_MS) {
        s = o->cache[i];
        hit = 1;
    }
    pthread_mutex_unlock(&o->cache_mu);
    if (!hit) {
        int rc = grant_load(o, gid, &s, err, errlen);
        if (rc != 0) {
            explicit_bzero(&s, sizeof s);
            explicit_bzero(&t, sizeof t);
            return rc;
        }
        pthread_mutex_lock(&o->cache_mu);
        o->cache[i] = s;
        pthread_mutex_unlock(&o->cache_mu);
    }
    int rc = 0;
    if (strcmp(s.provider, p->provider) != 0) {
        snprintf(err, errlen, "the access token was issued for another provider");
        rc = -1;
    } else if (!(t.flags & SC_READ)) {
        snprintf(err, errlen, "the access token carries no signbridge scope");
        rc = -1;
    } else {
        p->cred.kind = SB_CRED_BEARER;
        memcpy(p->cred.secret, s.cred, s.cred_len);
        p->cred.secret[s.cred_len] = 0;
        p->cred.len = s.cred_len;
        p->upstream_bearer = s.bearer;
        sb_strlcpy(p->region, s.region, sizeof p->region);
        if (s.instance[0]) sb_strlcpy(p->instance, s.instance, sizeof p->instance);
        sb_strlcpy(p->client, s.client, sizeof p->client);
        p->read_only = p->read_only || !(t.flags & SC_WRITE);
        sb_strlcpy(p->fingerprint, t.fingerprint, sizeof p->fingerprint);
    }
    explicit_bzero(&s, sizeof s);
    explicit_bzero(&t, sizeof t);
    return rc;
}

/* ---- dispatch -------------------------------------------------------------------------------- */

#define WK_PRM "/.well-known/oauth-protected-resource"

int sb_oauth_is_endpoint(const char *path, int *needs_body)
{
    int nb = 0, yes = 0;
    if (!strcmp(path, "/consent") || !strcmp(path, "/token") || !strcmp(path, "/register") ||
        !strcmp(path, "/revoke"))
        yes = nb = 1;
    else if (!strcmp(path, "/authorize") || !strcmp(path, "/jwks.json") ||
             !strcmp(path, "/.well-known/oauth-authorization-server") ||
             !strcmp(path, "/.well-known/openid-configuration") ||
             !strncmp(path, WK_PRM, strlen(WK_PRM)) || !strncmp(path, "/oauth/callback/", 16))
        yes = 1;
    if (needs_body) *needs_body = nb;
    return yes;
}

static int method_not_allowed(sb_oauth_resp *out, const char *allow)
{
    add_hdr(out, "Allow", allow);
    return oauth_error(out, 405, "invalid_request", "method not allowed");
}

int sb_oauth_handle(sb_oauth *o, const sb_oauth_req *rq, sb_oauth_resp *out,
                    sb_oauth_pending **pending)
{
    memset(out, 0, sizeof *out);
    *pending = NULL;
    const char *path = rq->path, *m = rq->method;
    int get = !strcmp(m, "GET") || !strcmp(m, "HEAD"), post = !strcmp(m, "POST");
    if (!strcmp(m, "OPTIONS")) {
        out->status = 204;
        add_hdr(out, "Access-Control-Allow-Origin", "*");
        add_hdr(out, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        add_hdr(out, "Access-Control-Allow-Headers",
                "Authorization, Content-Type, MCP-Protocol-Version");
        add_hdr(out, "Access-Control-Max-Age", "600");
        return 0;
    }
    if (!strncmp(path, WK_PRM, strlen(WK_PRM)) &&
        (path[strlen(WK_PRM)] == 0 || path[strlen(WK_PRM)] == '/')) {
        if (!get) return method_not_allowed(out, "GET");
        return serve_prm(o, path + strlen(WK_PRM), out);
    }
    if (!strcmp(path, "/.well-known/oauth-authorization-server"))
        return get ? serve_static_json(out, o->as_meta) : method_not_allowed(out, "GET");
    if (!strcmp(path, "/.well-known/openid-configuration"))
        return get ? serve_static_json(out, o->oidc_meta) : method_not_allowed(out, "GET");
    if (!strcmp(path, "/jwks.json"))
        return get ? serve_static_json(out, o->jwks_json) : method_not_allowed(out, "GET");
    if (!strcmp(path, "/authorize"))
        return get ? do_authorize(o, rq, out, pending) : method_not_allowed(out, "GET");
    if (!strcmp(path, "/consent"))
        return post ? do_consent(o, rq, out, pending) : method_not_allowed(out, "POST");
    if (!strncmp(path, "/oauth/callback/", 16))
        return get ? do_callback(o, rq, out, pending) : method_not_allowed(out, "GET");
    int rc;
    if (!strcmp(path, "/token")) rc = post ? do_token(o, rq, out) : method_not_allowed(out, "POST");
    else if (!strcmp(path, "/register"))
        rc = post ? do_register(o, rq, out) : method_not_allowed(out, "POST");
    else if (!strcmp(path, "/revoke"))
        rc = post ? do_revoke(o, rq, out) : method_not_allowed(out, "POST");
    else
        rc = oauth_error(out, 404, "not_found", "no such endpoint");
    add_hdr(out, "Access-Control-Allow-Origin", "*");
    return rc;
}

int sb_oauth_resume(sb_oauth *o, sb_oauth_pending *p, const sb_oauth_req *rq, sb_oauth_resp *out,
                    sb_oauth_pending **pending)
{
    memset(out, 0, sizeof *out);
    *pending = NULL;
    int rc;
    switch (p->kind) {
    case P_CIMD: rc = cimd_continue(o, p, rq, out); break;
    case P_VERIFY: rc = verify_continue(o, p, rq, out); break;
    case P_EXCHANGE: rc = exchange_continue(o, p, out); break;
    default: rc = html_error(out, 500, "internal error");
    }
    pending_release(p);
    return rc;
}

/* ---- lifetime -------------------------------------------------------------------------------- */

sb_oauth *sb_oauth_new(const sb_oauth_options *opt, char *err, size_t errlen)
{
    /* the main events exist (at 0) from the start, for dashboards and alerts */
    static const char *const main_events[] = {"tokens_issued", "token_refused", "grant_revoked"};
    for (size_t i = 0; i < sizeof main_events / sizeof main_events[0]; i++)
        sb_metrics_series(events_family(), (const char *const[]){main_events[i]});
    if (!opt || !opt->store || !opt->secret || !opt->issuer || !opt->regions) {
        snprintf(err, errlen, "oauth: missing options");
        return NULL;
    }
    sb_oauth *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->o = *opt;
    sb_strlcpy(o->issuer, opt->issuer, sizeof o->issuer);
    size_t il = strlen(o->issuer);
    while (il && o->issuer[il - 1] == '/') o->issuer[--il] = 0;
    memcpy(o->secret, opt->secret, 32);
    sb_seal_derive_key(o->secret, 32, o->seal_key);
    pthread_mutex_init(&o->cache_mu, NULL);
    pthread_mutex_init(&o->tok_mu, NULL);
    o->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL); /* NULL: tokens are verified every time */
    sb_mfamily *tc = sb_metrics_family(
        sb_metrics_global(), SB_METRIC_COUNTER, "signbridge_oauth_token_checks_total",
        "Access tokens presented at an MCP endpoint: signature verified, or a token verified "
        "before and still valid (cached).",
        1, (const char *const[]){"result"});
    o->tok_verified = sb_metrics_series(tc, (const char *const[]){"verified"});
    o->tok_cached = sb_metrics_series(tc, (const char *const[]){"cached"});
    if (load_keys(o, err, errlen) != 0) {
        sb_oauth_free(o);
        return NULL;
    }
    sb_buf j;
    sb_buf_init(&j, 1 << 16);
    if (sb_jwks_json(o->keys, &j) != 0) {
        sb_buf_free(&j);
        snprintf(err, errlen, "oauth: cannot publish the signing keys");
        sb_oauth_free(o);
        return NULL;
    }
    o->jwks_json = sb_buf_detach(&j, &o->jwks_len);
    o->as_meta = build_as_meta(o, 0);
    o->oidc_meta = build_as_meta(o, 1);
    if (!o->as_meta || !o->oidc_meta || !o->jwks_json) {
        snprintf(err, errlen, "oauth: out of memory");
        sb_oauth_free(o);
        return NULL;
    }
    return o;
}

void sb_oauth_free(sb_oauth *o)
{
    if (!o) return;
    sb_jwks_free(o->keys);
    free(o->jwks_json);
    free(o->as_meta);
    free(o->oidc_meta);
    explicit_bzero(o->cache, sizeof o->cache);
    if (o->tokens) explicit_bzero(o->tokens, TOKEN_CACHE * sizeof *o->tokens);
    free(o->tokens);
    EVP_MD_free(o->sha256);
    explicit_bzero(o->seal_key, sizeof o->seal_key);
    explicit_bzero(o->secret, sizeof o->secret);
    pthread_mutex_destroy(&o->cache_mu);
    pthread_mutex_destroy(&o->tok_mu);
    free(o);
}
