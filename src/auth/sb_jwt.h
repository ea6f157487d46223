/* sb_jwt: JSON Web Tokens (JWS compact, RS256 and ES256) and JSON Web Keys, with the algorithm
 * pinned per key (never taken from the token) and the claims checked here. */
#ifndef SB_JWT_H
#define SB_JWT_H
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "core/sb_buf.h"

#define SB_JWT_MAX_TOKEN 8192
#define SB_JWKS_MAX_KEYS 32

/* One key: kid, pinned alg ("RS256"|"ES256"), cached EVP_PKEY (private or public). Immutable after
 * creation, so any number of threads may verify with it at once. */
typedef struct sb_jwk sb_jwk;
/* Up to SB_JWKS_MAX_KEYS keys; read-only after building, so thread-safe to verify with. */
typedef struct sb_jwks sb_jwks;

enum {
    SB_JWT_OK = 0,
    SB_JWT_EMALFORMED = -1, /* not a well-formed JWS / JSON, or a required claim is missing */
    SB_JWT_EALG = -2,       /* header alg is not the key's pinned algorithm */
    SB_JWT_EKID = -3,       /* no key for the header kid (or no kid and not exactly one key) */
    SB_JWT_ESIG = -4,       /* bad signature (including a signature of the wrong length) */
    SB_JWT_EEXPIRED = -5,   /* exp (beyond leeway) in the past */
    SB_JWT_ENOTYET = -6,    /* nbf or iat (beyond leeway) in the future */
    SB_JWT_EISS = -7,
    SB_JWT_EAUD = -8,
    SB_JWT_EINTERNAL = -9, /* allocation / OpenSSL failure, bad arguments, buffer too small */
};

/* Generate a key: "RS256" = RSA 2048 (e=65537), "ES256" = P-256. *out owned by the caller
 * (sb_jwk_free). 0 or SB_JWT_EALG (unknown alg) / SB_JWT_EINTERNAL. */
int sb_jwk_generate(sb_jwk **out, const char *alg);
/* A PEM private or public key (PKCS#8, traditional RSA/EC, SubjectPublicKeyInfo); alg NULL = RS256
 * for RSA, ES256 for P-256; other key types/curves (and RSA below 2048 bits or encrypted PEM)
 * refused. kid = RFC 7638 JWK thumbprint (base64url SHA-256) of the public key. *out owned by the
 * caller. 0 or negative with a short reason in err. */
int sb_jwk_from_pem(sb_jwk **out, const char *pem, size_t len, const char *alg, char *err,
                    size_t errlen);
/* Append a PKCS#8 private (include_private and the key has one) or SPKI public PEM to out. */
int sb_jwk_to_pem(const sb_jwk *k, int include_private, sb_buf *out);
int sb_jwk_has_private(const sb_jwk *k);
/* Borrowed strings, valid as long as the key. */
const char *sb_jwk_kid(const sb_jwk *k);
const char *sb_jwk_alg(const sb_jwk *k);
/* Append the public JWK object {kty,use:"sig",alg,kid,n,e | crv,x,y} to the JSON array arr. */
int sb_jwk_public_json(const sb_jwk *k, cJSON *arr);
void sb_jwk_free(sb_jwk *k);

/* An empty key set (NULL on allocation failure); free with sb_jwks_free. */
sb_jwks *sb_jwks_new(void);
/* Takes ownership of k (also on failure: frees it); -1 when full or duplicate kid. */
int sb_jwks_add(sb_jwks *s, sb_jwk *k);
/* Parse a remote JWKS document {"keys":[...]}: RSA (n,e; 2048..8192 bits) and EC P-256 (x,y)
 * public keys with use absent or "sig"; alg from the JWK's "alg" (RS256/ES256 only) or inferred
 * (RSA->RS256, P-256->ES256); keys without kid get their thumbprint; other keys skipped (private
 * parts ignored); 0 keys usable -> error. *out owned by the caller. 0 or negative, reason in err.
 */
int sb_jwks_parse(sb_jwks **out, const char *json, size_t len, char *err, size_t errlen);
/* Append {"keys":[public JWKs]} to out. */
int sb_jwks_json(const sb_jwks *s, sb_buf *out);
size_t sb_jwks_count(const sb_jwks *s);
/* Borrowed; NULL when no key has that kid. */
const sb_jwk *sb_jwks_get(const sb_jwks *s, const char *kid);
void sb_jwks_free(sb_jwks *s);

/* Sign: header {"alg":<key's alg>,"typ":typ (e.g. "at+jwt"; NULL = "JWT"),"kid":<kid>} . claims,
 * compact serialization appended to out (left unchanged on failure). ES256 signatures in JOSE raw
 * R||S form (64 bytes), not DER. 0 or SB_JWT_EINTERNAL (no private key, out too small, ...). */
int sb_jwt_sign(const sb_jwk *k, const char *typ, const cJSON *claims, sb_buf *out);

typedef struct sb_jwt_expect {
    const char *iss; /* required equal when non-NULL */
    const char *aud; /* required: aud (string, or array containing it) when non-NULL */
    int64_t now_s;   /* 0 = time(NULL) */
    int leeway_s;    /* for exp/nbf/iat; exp is REQUIRED */
    const char *typ; /* when non-NULL the header typ must equal it (case-insensitive,
                        "application/" prefix allowed); mismatch -> SB_JWT_EMALFORMED */
} sb_jwt_expect;

/* Verify: length <= SB_JWT_MAX_TOKEN, three base64url parts (no padding), header JSON; the key is
 * chosen by header kid (a token without kid is tried only when the set has exactly one key); the
 * header alg must EQUAL the key's pinned alg (so "none", HS256 signed with the public key,
 * RS256-vs-ES256 confusion all -> SB_JWT_EALG); a header with "crit" is refused (EMALFORMED);
 * signature verified with the cached EVP_PKEY (wrong length -> ESIG); then exp (required: missing
 * or not a number -> SB_JWT_EMALFORMED) / nbf / iat / iss / aud. ex may be NULL (no iss/aud/typ
 * check, now, no leeway). On OK *claims_out (if not NULL) receives the payload object (caller
 * cJSON_Delete); on failure it is set to NULL. err (may be NULL) gets a short reason without
 * echoing the token. Thread-safe for concurrent calls on the same set. */
int sb_jwt_verify(const sb_jwks *ks, const char *token, size_t len, const sb_jwt_expect *ex,
                  cJSON **claims_out, char *err, size_t errlen);

/* The times of claims that sb_jwt_verify accepted, for a caller that keeps the outcome and checks
 * them again later with the same leeway: *exp (0 without one) and *not_before, the later of nbf
 * and iat (-HUGE_VAL without either). */
void sb_jwt_claim_times(const cJSON *claims, double *exp, double *not_before);

/* Short constant name for a code ("ok", "malformed", "alg", "kid", "signature", "expired",
 * "not_yet_valid", "issuer", "audience", "internal"). */
const char *sb_jwt_strerror(int code);

#endif
