/* sb_cred: the caller's credential as sent in request headers, its HMAC fingerprint, and the
 * server secret that keys the fingerprints. The credential itself is never logged or stored. */
#ifndef SB_CRED_H
#define SB_CRED_H
#include <stddef.h>

typedef enum {
    SB_CRED_NONE = 0,
    SB_CRED_X_API_KEY,  /* X-API-Key: <key> (any case) */
    SB_CRED_BASIC,      /* Authorization: Basic base64(<key>:) */
    SB_CRED_API_KEY,    /* api_key: <key> (iinked style) */
    SB_CRED_BEARER,     /* Authorization: Bearer <token> */
} sb_cred_kind;

#define SB_CRED_MAX 4096 /* provider JWTs (BoldSign: ~1 KiB, more with many scopes) */
#define SB_FP_HEX 65

typedef struct sb_cred {
    sb_cred_kind kind;
    size_t len;
    char secret[SB_CRED_MAX + 1]; /* wipe with sb_cred_wipe when done */
} sb_cred;

/* Who is calling, per request: the route's provider and pinned region, the credential and its
 * fingerprint. Copied into each MCP call as its opaque principal; wiped when the call is freed. */
typedef struct sb_principal {
    char provider[16];     /* "boldsign" | "dropboxsign" | "iinkedsign" */
    char region_pin[24];   /* region named in the path, "" if none ("private" for instances) */
    char instance[64];     /* iinked private instance, "" if none */
    char route[128];       /* the MCP path, e.g. "/boldsign/eu/mcp" */
    char request_id[72];   /* the HTTP request id (sent upstream, written in audit records) */
    int read_only;         /* the caller asked for a read-only connection */
    int anonymous;         /* no credential (only where the deployment allows it) */
    int upstream_bearer;   /* cred is a provider-issued OAuth access token (Bearer upstream) */
    char region[24];       /* a region already known for this credential (an OAuth grant's,
                              verified at sign-in): admission trusts it without probing */
    char client[160];      /* OAuth client id (audit), "" for API keys */
    char key_id[24];       /* signbridge key id (audit), "" otherwise */
    char tools[512];       /* comma-separated tool allow-list ("" = every tool) */
    char fingerprint[SB_FP_HEX];
    sb_cred cred;
} sb_principal;

/* The bytes of *p that matter: everything up to the credential's terminating NUL. A principal is
 * copied into each MCP call with this length (~1.2 KB for an API key instead of the 5 KiB
 * struct with its 4 KiB buffer), so a copy must be read through sb_principal_ok. */
static inline size_t sb_principal_size(const sb_principal *p)
{
    size_t n = p->cred.len <= SB_CRED_MAX ? p->cred.len : SB_CRED_MAX;
    return offsetof(sb_principal, cred.secret) + n + 1;
}

/* 1 when (p, len) is a principal copied with sb_principal_size: its fields and its credential's
 * len bytes (plus the NUL) are all inside len. */
static inline int sb_principal_ok(const void *p, size_t len)
{
    const sb_principal *q = p;
    return p && len >= offsetof(sb_principal, cred.secret) + 1 && len <= sizeof *q &&
           q->cred.len <= SB_CRED_MAX && len == sb_principal_size(q);
}

/* Case-insensitive header lookup supplied by the transport; NULL if absent. */
typedef const char *(*sb_header_fn)(void *ctx, const char *name);

/* Extract the credential. Returns 0 with *out set, 1 when none was sent, -1 when one was sent but
 * is malformed (err says how, without echoing it). Precedence: X-API-Key, Authorization, api_key. */
int sb_cred_extract(sb_header_fn get, void *ctx, sb_cred *out, char *err, size_t errlen);
/* Credential fingerprints: hex HMAC-SHA256(server secret, provider "\n" credential). The HMAC key
 * is set up once (OpenSSL's one-shot HMAC() looks the algorithm up and keys it on every call: 10%
 * of a tools/list); a server makes one at start and fingerprints every request with it. Safe to
 * use from many threads at once: each thread keeps its own keyed copy (freed when the thread
 * exits, or by sb_cred_fpkey_free on the freeing thread) and re-initializes it per fingerprint. */
typedef struct sb_cred_fpkey sb_cred_fpkey;
/* A new key for secret (copied); NULL without memory or a working libcrypto. Free with
 * sb_cred_fpkey_free (it wipes the key). */
sb_cred_fpkey *sb_cred_fpkey_new(const unsigned char *secret, size_t secret_len);
void sb_cred_fpkey_free(sb_cred_fpkey *k);
/* The fingerprint of c on provider into out (65 bytes); 64 zeros only without a working
 * libcrypto (fails closed to one constant). */
void sb_cred_fingerprint_k(const sb_cred_fpkey *k, const char *provider, const sb_cred *c,
                           char out[SB_FP_HEX]);
const char *sb_cred_kind_name(sb_cred_kind k);
void sb_cred_wipe(sb_cred *c);

/* Read the 32-byte server secret from path (hex), or create it (mode 0600) when absent. */
int sb_secret_load_or_create(const char *path, unsigned char out[32], char *err, size_t errlen);

#endif
