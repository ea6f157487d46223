/* Fuzz target: JSON Web Keys (issue 10; src/auth/sb_jwt.h), separately from token verification
 * (fuzz_jwt): the input is parsed as a JWKS document, as a single JWK wrapped in {"keys":[...]},
 * and as a PEM key (alg NULL, RS256, ES256). Every key accepted must round-trip: a parsed set
 * serializes back to a set with the same kids; a PEM key exports to PEM and re-imports with the
 * same kid and alg. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/sb_jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_set(const char *json, size_t len)
{
    char err[160];
    sb_jwks *s = NULL;
    if (sb_jwks_parse(&s, json, len, err, sizeof err) != 0) {
        if (s) abort();
        return;
    }
    size_t n = sb_jwks_count(s);
    if (n == 0 || n > SB_JWKS_MAX_KEYS) abort();
    sb_buf b;
    sb_buf_init(&b, 1 << 20);
    if (sb_jwks_json(s, &b) != 0) abort();
    sb_jwks *again = NULL;
    if (sb_jwks_parse(&again, b.data, b.len, err, sizeof err) != 0) abort();
    if (sb_jwks_count(again) != n) abort();
    cJSON *doc = cJSON_ParseWithLength(b.data, b.len);
    cJSON *keys = cJSON_GetObjectItemCaseSensitive(doc, "keys"), *k;
    cJSON_ArrayForEach(k, keys)
    {
        const char *kid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(k, "kid"));
        if (!kid || !sb_jwks_get(s, kid) || !sb_jwks_get(again, kid)) abort();
        if (strcmp(sb_jwk_alg(sb_jwks_get(s, kid)), sb_jwk_alg(sb_jwks_get(again, kid))) != 0)
            abort();
    }
    cJSON_Delete(doc);
    sb_jwks_free(again);
    sb_buf_free(&b);
    sb_jwks_free(s);
}

static void check_pem(const char *pem, size_t len, const char *alg)
{
    char err[160];
    sb_jwk *k = NULL;
    if (sb_jwk_from_pem(&k, pem, len, alg, err, sizeof err) != 0) return;
    if (!sb_jwk_kid(k) || !sb_jwk_alg(k)) abort();
    for (int priv = 0; priv < 2; priv++) {
        sb_buf b;
        sb_buf_init(&b, 1 << 20);
        if (sb_jwk_to_pem(k, priv, &b) != 0) abort();
        sb_jwk *k2 = NULL;
        if (sb_jwk_from_pem(&k2, b.data, b.len, sb_jwk_alg(k), err, sizeof err) != 0) abort();
        if (strcmp(sb_jwk_kid(k), sb_jwk_kid(k2)) != 0) abort();
        if (strcmp(sb_jwk_alg(k), sb_jwk_alg(k2)) != 0) abort();
        if (sb_jwk_has_private(k2) != (priv && sb_jwk_has_private(k))) abort();
        sb_jwk_free(k2);
        sb_buf_free(&b);
    }
    cJSON *arr = cJSON_CreateArray();
    if (sb_jwk_public_json(k, arr) != 0) abort();
    char *txt = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    if (!txt) abort();
    size_t tl = strlen(txt);
    char *doc = malloc(tl + 16);
    memcpy(doc, "{\"keys\":", 8);
    memcpy(doc + 8, txt, tl);
    memcpy(doc + 8 + tl, "}", 2);
    sb_jwks *s = NULL;
    if (sb_jwks_parse(&s, doc, tl + 9, err, sizeof err) != 0) abort();
    if (sb_jwks_count(s) != 1 || !sb_jwks_get(s, sb_jwk_kid(k))) abort();
    sb_jwks_free(s);
    free(doc);
    free(txt);
    sb_jwk_free(k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256 * 1024) return 0;
    const char *in = (const char *)data;
    check_set(in, size);
    /* a single JWK object */
    char *w = malloc(size + 16);
    if (!w) return 0;
    memcpy(w, "{\"keys\":[", 9);
    memcpy(w + 9, in, size);
    memcpy(w + 9 + size, "]}", 2);
    check_set(w, size + 11);
    free(w);
    check_pem(in, size, NULL);
    check_pem(in, size, "RS256");
    check_pem(in, size, "ES256");
    return 0;
}
