/* sb_ptoken: provider-token mode: accept a provider's own OAuth access tokens (RS256/ES256 JWTs,
 * e.g. BoldSign's identity server) by discovering each configured issuer's JWKS and verifying with
 * sb_jwt, the issuer pinned by configuration (never trusted from the token). */
#ifndef SB_PTOKEN_H
#define SB_PTOKEN_H
#include <stddef.h>

#include <cjson/cJSON.h>

#include "auth/sb_jwt.h"

#define SB_PTOKEN_MAX_ISSUERS 16
#define SB_PTOKEN_LEEWAY_S 60    /* clock skew allowed for exp/nbf/iat */
#define SB_PTOKEN_KID_RETRY_S 30 /* an unknown kid forces a refresh at most this often */
#define SB_PTOKEN_MAX_DISCOVERY 65536
#define SB_PTOKEN_MAX_JWKS 262144

typedef struct sb_ptoken_issuer {
    char issuer[256];   /* exact issuer URL, e.g. https://account-eu.boldsign.com */
    char provider[16];  /* e.g. "boldsign" */
    char region[24];    /* e.g. "eu" */
    char audience[256]; /* "" = do not check aud */
} sb_ptoken_issuer;

typedef struct sb_ptoken sb_ptoken;

/* fetch(url) is supplied by the caller (the server uses its upstream engine; tests may use a
 * blocking libcurl call): returns a malloc'd body (freed here with free()) of at most max bytes,
 * its length in *len, or NULL on any failure (non-2xx included). Called only from
 * sb_ptoken_refresh. */
typedef char *(*sb_ptoken_fetch_fn)(void *ud, const char *url, size_t max, size_t *len);

/* A verifier for n issuers (copied; at most SB_PTOKEN_MAX_ISSUERS). No keys until the first
 * sb_ptoken_refresh. NULL on bad arguments or allocation failure. Free with sb_ptoken_free. */
sb_ptoken *sb_ptoken_new(const sb_ptoken_issuer *iss, size_t n, sb_ptoken_fetch_fn fetch, void *ud);

/* Refresh discovery (issuer + "/.well-known/openid-configuration", whose "issuer" must equal the
 * configured issuer exactly, and whose jwks_uri (https, or the issuer's own origin) is fetched and
 * parsed with sb_jwks_parse) for every issuer without keys, whose keys are older than max_age_s, or
 * marked by an unknown kid. Call from a background timer (blocking: fetch is called here, outside
 * any lock the verifiers take); thread-safe against concurrent verify and refresh (the key set is
 * swapped under a lock and reference-counted). A failed refresh keeps the previous keys. 0 when
 * every attempted refresh succeeded, else -(number of issuers that failed). */
int sb_ptoken_refresh(sb_ptoken *p, int max_age_s);

/* Verify a bearer token: decode the payload's iss WITHOUT trusting it except to pick the configured
 * issuer (unknown iss -> SB_JWT_EISS), then sb_jwt_verify against that issuer's cached keys with
 * iss/aud/exp checked (leeway SB_PTOKEN_LEEWAY_S); on OK fill provider/region of that issuer and
 * *claims_out (if not NULL; caller cJSON_Delete). An unknown kid (or an issuer with no keys yet)
 * marks the issuer for refresh (at most once per SB_PTOKEN_KID_RETRY_S). A token that verified is
 * kept (SHA-256 of it, never the token, in 1,024 slots) with its issuer's key generation, exp and
 * the later of nbf and iat: presented again while that issuer's key set is unchanged and those
 * times still pass (same leeway), it is not verified again, and *claims_out is its payload parsed
 * from the same bytes; any refresh that swaps the issuer's keys makes it verify again.
 * signbridge_provider_token_checks_total{result="verified"|"cached"} counts both ways. Returns an
 * SB_JWT_* code; err (may be NULL) gets a short reason, never the token. Thread-safe. */
int sb_ptoken_verify(sb_ptoken *p, const char *token, size_t len, char provider[16],
                     char region[24], cJSON **claims_out, char *err, size_t errlen);

/* Seconds since the issuer's keys were last fetched (-1 when never / unknown index): for health. */
long sb_ptoken_key_age_s(sb_ptoken *p, size_t issuer_index);

void sb_ptoken_free(sb_ptoken *p);

#endif
