/* sb_keys: signbridge keys (`sbk_…`) for agents and editors: each bound to one sealed provider
 * credential for one provider and region, with a name, scopes (read / write), an optional tool
 * allow-list and expiry; stored only as a hash; rotated with an overlap; revoked at once on every
 * replica (lookups cached for at most SB_KEYS_CACHE_MS). Knows the store, not HTTP (docs/keys.md). */
#ifndef SB_KEYS_H
#define SB_KEYS_H
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "auth/sb_cred.h"
#include "store/sb_store.h"

#define SB_KEY_PREFIX "sbk_"
#define SB_KEY_LEN 36           /* "sbk_" + 32 base62 characters (~190 random bits) */
#define SB_KEY_ID_LEN 14        /* "k_" + 12 base62 characters */
#define SB_KEYS_CACHE_MS 500    /* a revocation reaches every replica within this (+ a store read) */
#define SB_KEYS_MAX 10000       /* keys per store */

typedef struct sb_keys sb_keys;

typedef struct sb_key_info {
    char id[SB_KEY_ID_LEN + 2];
    char name[128];
    char provider[16];
    char region[24];
    char instance[64];
    int write;                  /* scope write (implies read); 0 = read only */
    char tools[512];            /* comma-separated allow-list; "" = every tool the scope allows */
    int64_t expires_ms;         /* 0 = never */
    char created_by[128];
    int64_t created_ms;
    int64_t last_used_ms;       /* updated at most once a minute */
    int revoked;
    int64_t revoked_ms;
    char replaced_by[SB_KEY_ID_LEN + 2]; /* set on the old key by a rotation */
} sb_key_info;

/* Borrow the store; the 32-byte server secret is copied (sealing key). NULL on failure. */
sb_keys *sb_keys_new(sb_store *st, const unsigned char *secret);
void sb_keys_free(sb_keys *k);

/* 1 if s[0..n) has the shape of a signbridge key (prefix and length). */
int sb_keys_is_key(const char *s, size_t n);

/* Validate and normalize a create request (name, provider, scope, tools against the known tool
 * names list — NULL-terminated, may be NULL to skip —, expiry in the future). 0 or -1 with err. */
int sb_keys_check(const sb_key_info *in, const char *const *known_tools, char *err, size_t errlen);

/* Create a key for the (already verified) provider credential cred[0..len). in->id, created_ms,
 * last_used_ms, revoked are ignored. Writes the new key (shown once, NUL-terminated) to key_out
 * (>= SB_KEY_LEN + 1) and the stored record to *out (optional). 0, or -1 with err. */
int sb_keys_create(sb_keys *k, const sb_key_info *in, const char *cred, size_t len,
                   char *key_out, sb_key_info *out, char *err, size_t errlen);

/* Every key (revoked ones included), newest first: *arr malloc'd (caller frees), *n entries. */
int sb_keys_list(sb_keys *k, sb_key_info **arr, size_t *n);

/* One key by id. 0, SB_STORE_NOTFOUND or -1. */
int sb_keys_get(sb_keys *k, const char *id, sb_key_info *out);

/* Revoke by id (idempotent). 0, SB_STORE_NOTFOUND or -1. */
int sb_keys_revoke(sb_keys *k, const char *id);

/* Rotate: a new key with the same credential, provider, region, scopes, tools, name and expiry;
 * the old one keeps working for overlap_ms (0 = refused at once), then is refused. 0 and the new
 * key in key_out, or SB_STORE_NOTFOUND / -1 with err (a revoked or already rotated key). */
int sb_keys_rotate(sb_keys *k, const char *id, int64_t overlap_ms, char *key_out,
                   sb_key_info *out, char *err, size_t errlen);

/* Authenticate a presented key for a request: 0 fills the principal's upstream credential
 * (the provider key, in place of the signbridge key), fingerprint (per key), region, read_only,
 * tools and, at the default route "/mcp", the provider; -1 refused (err says why: unknown,
 * expired, revoked, rotated, wrong provider or region: 401); -2 the store is down (503). */
int sb_keys_authenticate(sb_keys *k, const char *key, size_t len, sb_principal *p,
                         const char *default_route, char *err, size_t errlen);

/* The record as JSON (never the key or the credential); caller frees. */
cJSON *sb_key_info_json(const sb_key_info *i);

/* The tool names of the embedded contracts (NULL-terminated; static). */
const char *const *sb_keys_known_tools(void);

/* Parse "2027-01-01T00:00:00Z" or a duration ("90d", "12h", "30m", "3600s") into Unix ms from now.
 * 0 or -1. */
int sb_keys_parse_when(const char *s, int64_t now_ms, int64_t *out_ms, int duration_only);

#endif
