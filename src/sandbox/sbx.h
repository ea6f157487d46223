/* sbx: the sandbox framework: one HTTP server emulating every provider and region, the control
 * endpoints under /_sandbox/, faults, latency, rate limits, the request log and statistics.
 * Provider emulators (sbx_boldsign.c, sbx_dropboxsign.c, sbx_iinkedsign.c) plug in through
 * sbx_provider. The sandbox shares only src/core/ with signbridge (DESIGN.md §5): it is built
 * from the providers' published API descriptions, never from signbridge's adapters. */
#ifndef SBX_H
#define SBX_H
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "core/sb_buf.h"

typedef struct sbx sbx;

/* ---- requests ---------------------------------------------------------------------------- */

typedef struct sbx_kv {
    char *key; /* decoded; owned by the request */
    char *val;
} sbx_kv;

/* A multipart/form-data part (RFC 7578). */
typedef struct sbx_part {
    char *name;         /* form field name, e.g. "signers[0][email_address]" or "files[0]";
                           "" when the part declared none */
    char *filename;     /* NULL for plain fields */
    char *content_type; /* NULL when the part declared none */
    const char *data;   /* points into the request body (not NUL-terminated) */
    size_t len;
} sbx_part;

typedef struct sbx_req {
    const char *method;   /* "GET", "POST", ... */
    const char *provider; /* "boldsign" | "dropboxsign" | "iinkedsign" */
    const char *region;   /* one of the provider's regions, e.g. "eu", "global", "sandbox-us", "private" */
    const char *instance; /* iinked private instance name ([a-z0-9-]{1,63}), else NULL */
    /* The path below /{provider}/{region}[/{instance}], always starting with '/', percent-decoding
     * NOT applied (match literally; decode ids yourself with sbx_url_decode if needed), without the
     * query string. E.g. "/v1/document/list", "/v3/signature_request/list", "/api/v1/packages/list",
     * "/account/connect/token". */
    const char *path;
    const char *raw_query; /* the query string without '?', "" if none */
    sbx_kv *query;         /* decoded query parameters in order; repeated keys kept */
    size_t nquery;
    const char *body;      /* NUL-terminated for convenience; may contain NULs (use body_len) */
    size_t body_len;
    const char *content_type; /* the Content-Type header or "" */
    uint64_t now_ms;          /* wall clock at arrival */
    void *conn_;              /* framework-private */

    /* Filled in by the provider handler (they appear in /_sandbox/requests and /_sandbox/stats): */
    char auth_scheme[24]; /* how the caller authenticated: "x-api-key", "basic", "api_key",
                             "bearer", "client_secret", "none" */
    char account_id[64];  /* the account the credential resolved to, "" if none */
    char route[96];       /* logical route for statistics, e.g. "GET /v1/document/list"; defaults
                             to "METHOD path" when left empty */
} sbx_req;

/* Case-insensitive header lookup; NULL if absent. */
const char *sbx_header(const sbx_req *r, const char *name);
/* First query value for key; `ci` = 1 compares keys case-insensitively (ASP.NET binding). */
const char *sbx_query(const sbx_req *r, const char *key, int ci);
/* All values for key, in order (up to max). Returns how many. */
size_t sbx_query_all(const sbx_req *r, const char *key, int ci, const char **out, size_t max);

/* Parse application/x-www-form-urlencoded bytes. *out is malloc'd (free with sbx_kv_free). 0/-1. */
int sbx_parse_form(const char *s, size_t n, sbx_kv **out, size_t *nout);
void sbx_kv_free(sbx_kv *kv, size_t n);
/* Parse a multipart/form-data body with the boundary from content_type. Parts point into body.
 * *out is malloc'd (free with sbx_parts_free). 0, or -1 if the body is malformed. */
int sbx_parse_multipart(const char *body, size_t len, const char *content_type, sbx_part **out,
                        size_t *nout);
void sbx_parts_free(sbx_part *p, size_t n);
/* Percent-decode (and '+' -> ' ' when plus_is_space) into a malloc'd NUL-terminated string. */
char *sbx_url_decode(const char *s, size_t n, int plus_is_space);

/* ---- responses --------------------------------------------------------------------------- */

#define SBX_MAX_HEADERS 16
#define SBX_HEADER_NAME_MAX 48   /* bytes, NUL included: longer names are cut */
#define SBX_HEADER_VALUE_MAX 512 /* bytes, NUL included: longer values are cut */

typedef struct sbx_resp {
    int status;   /* 0 = not answered yet (the framework answers 404) */
    sb_buf body;  /* initialised by the framework with a 64 MiB maximum */
    char content_type[96];
    int nheaders;
    /* the headers set with sbx_resp_header, packed as "name\0value\0" pairs in the order set (a
     * header set again moves to the end with its new value): a few dozen bytes, where fixed
     * arrays for 16 made every request's context ~10 KB */
    sb_buf headers;
    char *location;  /* set by sbx_resp_redirect (no length limit); owned by the framework */
} sbx_resp;

/* JSON body (taken; NULL = empty body). Sets Content-Type application/json (charset=utf-8)
 * unless body is NULL. */
void sbx_resp_json(sbx_resp *r, int status, cJSON *body);
void sbx_resp_bytes(sbx_resp *r, int status, const char *content_type, const void *data, size_t len);
void sbx_resp_text(sbx_resp *r, int status, const char *content_type, const char *text);
/* Add (or replace, same name case-insensitively) a response header. */
void sbx_resp_header(sbx_resp *r, const char *name, const char *value);
/* 302 redirect to location (any length). */
void sbx_resp_redirect(sbx_resp *r, const char *location);

/* ---- provider plug-in ---------------------------------------------------------------------- */

typedef struct sbx_provider {
    const char *name;                 /* path segment, e.g. "boldsign" */
    const char *const *regions;       /* NULL-terminated region names; "private" means a path
                                         segment with the instance name follows */
    /* (Re)create all state from the seed: accounts, keys, users, teams, contacts, templates,
     * documents in every status. Called at start and on POST /_sandbox/reset. Must be
     * deterministic per seed (use sbx_rng). Return 0 or -1. */
    int (*init)(sbx *s, uint64_t seed);
    /* Serve one request (REST and OAuth alike). Runs on any HTTP worker thread, concurrently:
     * protect your state with your own mutex. Must set resp->status (or leave it 0 for a generic
     * 404). Fill req->auth_scheme / account_id / route. */
    void (*handle)(sbx *s, sbx_req *req, sbx_resp *resp);
    /* Write an error in this provider's own format (used for injected faults and rate limits):
     * status 4xx/5xx with message. For 429 also set this provider's rate-limit headers. */
    void (*error)(sbx *s, sbx_req *req, sbx_resp *resp, int status, const char *message);
    /* Move a document (id in any of this provider's regions) to a lifecycle state named in the
     * provider-neutral vocabulary: "viewed", "signed" (next signer signs), "completed",
     * "declined", "expired", "revoked". 0 done, 1 not this provider's document, -1 refused (err
     * says why). */
    int (*advance)(sbx *s, const char *doc_id, const char *to, char *err, size_t errlen);
    /* Called every 100 ms on the loop thread: advance timed lifecycles. May be NULL. */
    void (*tick)(sbx *s, uint64_t now_ms);
    /* Append this provider's demo accounts to `arr` as objects
     * {"provider","region","account_id","email","api_key","base_url","oauth":{...}} where
     * base_url is the REST base that stands for the provider's real one (build it with
     * sbx_base_url + the provider's own prefix, e.g. "/v3" for Dropbox Sign, "/api/v1" for
     * iinked, nothing for BoldSign), and oauth holds client ids/secrets, authorize/token URLs,
     * redirect URIs accepted, and the demo user's login. */
    void (*accounts)(sbx *s, cJSON *arr);
    /* Free all state (at exit). May be NULL. */
    void (*fini)(sbx *s);
    void *state; /* the provider's own state (set by init) */
} sbx_provider;

/* The public origin + "/{provider}/{region}[/{instance}]" (no trailing slash), e.g.
 * "http://127.0.0.1:41000/boldsign/eu". */
void sbx_base_url(const sbx *s, const char *provider, const char *region, const char *instance,
                  char *out, size_t cap);
/* Public origin, e.g. "http://127.0.0.1:41000" or "https://127.0.0.1:41000". */
const char *sbx_origin(const sbx *s);
/* Provider by name (NULL if unknown). */
sbx_provider *sbx_find_provider(sbx *s, const char *name);

/* ---- deterministic randomness (seeded data) and secure tokens -------------------------------- */

typedef struct sbx_rng {
    uint64_t s;
} sbx_rng;
void sbx_rng_init(sbx_rng *r, uint64_t seed, const char *stream); /* independent stream per name */
uint64_t sbx_rng_next(sbx_rng *r);
uint64_t sbx_rng_range(sbx_rng *r, uint64_t n); /* [0, n) */
/* Lowercase hex of n random bytes (out >= 2n+1). */
void sbx_rng_hex(sbx_rng *r, size_t nbytes, char *out);
/* A GUID "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" (out >= 37). */
void sbx_rng_uuid(sbx_rng *r, char *out);
/* Cryptographically random token: prefix + base64url of nbytes (out must be large enough). */
void sbx_token(const char *prefix, size_t nbytes, char *out, size_t cap);
/* PKCE: 1 if BASE64URL(SHA256(verifier)) == challenge (method "S256"), or verifier == challenge
 * (method "plain"); verifier must be 43-128 chars of [A-Za-z0-9-._~]. */
int sbx_pkce_ok(const char *verifier, const char *challenge, const char *method);
/* HTML-escape s into out. */
void sbx_html_escape(const char *s, char *out, size_t cap);

/* ---- rate limits ------------------------------------------------------------------------- */

/* One fixed-window counter per key (e.g. "boldsign:acct-1" or "dropboxsign:acct:high").
 * `limit` requests per `window_s`. Returns 1 if this request is allowed, 0 if over the limit.
 * Fills limit/remaining/reset (unix seconds when the window ends). When rate limits are turned
 * off (POST /_sandbox/config {"rate_limits":false} or --no-rate-limits) always allows.
 * The effective limit for a key can be overridden by POST /_sandbox/config
 * {"rate_limit_overrides":{"<provider>[:<tier>]":N}}: the provider passes its tier name. */
int sbx_rate_take(sbx *s, const char *provider, const char *tier, const char *key,
                  unsigned limit, unsigned window_s, unsigned *out_limit, unsigned *remaining,
                  uint64_t *reset_unix);

/* ---- misc ---------------------------------------------------------------------------------- */

/* 1 when the providers' OAuth authorize pages should approve at once with the first demo user
 * (a 302 straight back to redirect_uri), set by --oauth-auto-approve or POST /_sandbox/config
 * {"oauth_auto_approve":true}. Otherwise the authorize page is an HTML form that a test can
 * complete with plain HTTP (GET the form, POST it back). */
int sbx_auto_approve(const sbx *s);
/* Lifetime of OAuth access tokens the emulators issue: POST /_sandbox/config
 * {"oauth_access_ttl_s":N} (0 = the provider's own default, dflt). */
unsigned sbx_oauth_access_ttl(const sbx *s, unsigned dflt);
/* Automatic lifecycle: 0 (default) = documents move only by POST /_sandbox/documents/{id}/advance
 * (and the providers' own short asynchronous windows); N > 0 = every N ms a sent document takes
 * its next step (viewed, then each signer signs in order, then completed) on `tick`. Set by
 * --auto-progress-ms N or POST /_sandbox/config {"auto_progress_ms":N}. */
unsigned sbx_auto_progress_ms(const sbx *s);
/* Seconds since the epoch (wall clock). */
uint64_t sbx_now(void);
/* The seed the sandbox runs with. */
uint64_t sbx_seed(const sbx *s);

#endif
