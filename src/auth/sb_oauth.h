/* sb_oauth: signbridge's own OAuth 2.1 authorization server toward AI clients (RFC 8414 / OIDC
 * metadata, RFC 7591 registration, client ID metadata documents, PKCE-only authorize with a consent
 * page, token with rotating refresh-token families, RFC 7009 revocation, JWKS) and its resource
 * server (RFC 9728 metadata, bearer-token checks that map a token to the grant's upstream
 * credential). Everything durable is in the store; upstream credentials are sealed (AES-256-GCM).
 * Transport-neutral: sb_http feeds requests in and writes responses out (docs/auth.md). */
#ifndef SB_OAUTH_H
#define SB_OAUTH_H
#include <stddef.h>
#include <stdint.h>

#include "auth/sb_cred.h"
#include "store/sb_store.h"
#include "upstream/sb_region.h"
#include "upstream/sb_up.h"

typedef struct sb_oauth sb_oauth;
typedef struct sb_oauth_pending sb_oauth_pending;

/* Scope names (docs/auth.md). */
#define SB_SCOPE_READ "signbridge.read"
#define SB_SCOPE_WRITE "signbridge.write"
#define SB_SCOPES_ALL SB_SCOPE_READ " " SB_SCOPE_WRITE

#define SB_OAUTH_MAX_APPS 16
#define SB_OAUTH_MAX_KEYS 8
#define SB_OAUTH_MAX_BODY (64 * 1024) /* form and registration bodies */

/* The provider's own OAuth app signbridge signs users in with (per provider, optionally per
 * region: "" = every region). URLs "" = the provider's defaults (or the sandbox's). */
typedef struct sb_oauth_app {
    char provider[16];
    char region[24];
    char client_id[256];
    char client_secret[256];
    char scope[512];
    char authorize_url[256];
    char token_url[256];
} sb_oauth_app;

/* Checks a provider API key with the provider (sb_verify_key's shape). Returns 0 when started;
 * done(arg, ok, region, message) is then called exactly once, from any thread. */
typedef int (*sb_oauth_verify_fn)(void *ud, const char *provider, const char *region,
                                  const char *instance, const char *key, size_t key_len,
                                  void (*done)(void *arg, int ok, const char *region,
                                               const char *message),
                                  void *arg);

typedef struct sb_oauth_options {
    const char *issuer;            /* the public origin, no trailing slash (copied) */
    sb_store *store;               /* borrowed */
    const unsigned char *secret;   /* 32-byte server secret (copied): sealing key, CSRF, hashes */
    sb_up *up;                     /* borrowed: provider token exchange, metadata documents */
    const sb_regions *regions;     /* borrowed */
    const char *default_provider;  /* provider of /mcp */
    const char *sandbox_url;       /* "" or the sandbox origin (provider OAuth URLs follow it) */
    /* Signing keys as PEM text (copied): the first signs, every one verifies (rotation). None:
     * a key is generated once and kept sealed in the store, shared by every replica. */
    const char *signing_pems[SB_OAUTH_MAX_KEYS];
    size_t n_signing;
    unsigned access_ttl_s;         /* 0 = 3600 */
    unsigned refresh_ttl_s;        /* 0 = 30 days */
    unsigned code_ttl_s;           /* 0 = 60 */
    unsigned client_ttl_s;         /* registered clients unused this long are dropped; 0 = 90 d */
    unsigned upstream_timeout_ms;  /* 0 = 10000 */
    /* URL prefixes of client ID metadata documents that may be fetched over http from any
     * address (tests; an operator's own hosts). Everything else: https, public addresses only. */
    const char *cimd_trusted[8];
    size_t n_cimd_trusted;
    sb_oauth_app apps[SB_OAUTH_MAX_APPS];
    size_t n_apps;
    sb_oauth_verify_fn verify;
    void *verify_ud;
} sb_oauth_options;

/* Create: loads or creates the signing keys. NULL with err on failure. */
sb_oauth *sb_oauth_new(const sb_oauth_options *o, char *err, size_t errlen);
void sb_oauth_free(sb_oauth *o);

/* 1 when path (no query) is one of the OAuth endpoints this module answers: the well-known
 * metadata, /authorize, /consent, /token, /register, /revoke, /jwks.json, /oauth/callback/...
 * (*needs_body = 1 for those that read a request body). */
int sb_oauth_is_endpoint(const char *path, int *needs_body);

/* One request as the transport sees it. Getters return NULL when absent. */
typedef struct sb_oauth_req {
    const char *method;
    const char *path;              /* without the query */
    const char *(*query)(void *ctx, const char *name);
    const char *(*header)(void *ctx, const char *name);
    void *ctx;
    const char *body;              /* complete body (may be NULL) */
    size_t body_len;
    const char *request_id;
} sb_oauth_req;

#define SB_OAUTH_MAX_HDRS 8
/* A response: body and header values are malloc'd and owned by the struct (sb_oauth_resp_free). */
typedef struct sb_oauth_resp {
    int status;
    char ctype[64];
    char *body;
    size_t len;
    const char *hname[SB_OAUTH_MAX_HDRS];  /* static strings */
    char *hval[SB_OAUTH_MAX_HDRS];
    size_t nh;
} sb_oauth_resp;
void sb_oauth_resp_free(sb_oauth_resp *r);

/* Answer an OAuth endpoint. Returns 0 with *out filled, or 1 when the answer needs a network
 * round trip: then *pending is set and the transport parks the connection (sb_oauth_park) and,
 * once woken, calls sb_oauth_resume with the same request (headers still readable). */
int sb_oauth_handle(sb_oauth *o, const sb_oauth_req *rq, sb_oauth_resp *out,
                    sb_oauth_pending **pending);
/* Park: calls suspend(ctx) unless the work is already done (then returns 0: resume at once);
 * 1 when parked: wake(ctx) will be called exactly once, from another thread, when done. suspend
 * is called under the pending's lock, so a wake can never come before it. */
int sb_oauth_park(sb_oauth_pending *p, void (*suspend)(void *ctx), void (*wake)(void *ctx),
                  void *ctx);
/* Continue after the wake: like sb_oauth_handle (0 with *out, or 1 with a new *pending). Frees
 * the old pending. */
int sb_oauth_resume(sb_oauth *o, sb_oauth_pending *p, const sb_oauth_req *rq, sb_oauth_resp *out,
                    sb_oauth_pending **pending);
/* The transport gives up on a pending (connection closed): no wake will come; frees it when the
 * network work finishes. */
void sb_oauth_pending_drop(sb_oauth_pending *p);

/* Resource server: check a bearer token presented at the MCP route `route` (e.g. "/mcp"). On
 * success (0) fills the principal's credential (the grant's upstream credential), fingerprint,
 * provider region, client and read_only (no write scope); provider, route and request_id are
 * the transport's. -1: invalid token (401 invalid_token; err says why, never the token). -2:
 * the token is valid but the grant behind it is unusable now (store down, upstream refresh
 * failed): 503. */
int sb_oauth_authenticate(sb_oauth *o, const char *token, size_t len, sb_principal *p, char *err,
                          size_t errlen);

/* The RFC 9728 metadata URL for an MCP route (issuer + /.well-known/oauth-protected-resource +
 * route) into out. */
void sb_oauth_prm_url(const sb_oauth *o, const char *route, char *out, size_t cap);

#endif
