/* Fuzz target: JWT verification and JWKS parsing (src/auth/sb_jwt.h). Two fixed keys (RSA 2048 and
 * EC P-256, embedded below so seed tokens signed with them reach the claim checks) form the key
 * set, built once per process. Each input is verified as a token (fixed clock, iss/aud/typ
 * expected), parsed as a JWKS document (a parsed set is serialized back and used to verify the
 * input too), and parsed as a PEM key. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/sb_jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Test-only keys: never used outside this fuzz target and its seed corpus. */
static const char k_rsa_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                                "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDLil+YWlHfEnhY\n"
                                "969Holfr8V3rXXDowovCLkB/NyGZGqeBQTyKbRp6kpK1bOhktKX/rXo/ty9jUtuB\n"
                                "Z9TDVVRLEZqL8xwNNYTa2qQ1JTHq7aPDz+SxFV24YQVZYy1RywYdPhRal1Oz+7y3\n"
                                "MBOuYN+RyZ1+M8Ec3ADEZkI/UoR7pMrMKYXbofwE1nNONJr83bj2KyqiwBJ7lQH2\n"
                                "2dc0KB1S+tfimjbkHxYf5po6ClpYvKt957EWqKG4wR36QhxEnXbIK6ARs2imrld9\n"
                                "N+FOssR80M09YmpTjCyZ31R3wK9/D4bm3kFazhqcruQ+4+cqYA02uqcuJH8u0G/Z\n"
                                "/pN5phDTAgMBAAECggEAHZKjRQ2Ka7DRT4vdKblKsPtGvBW9e/QYPkReFp26Afa/\n"
                                "c6Y415v2huyY6EdElK0ymS1pX6yL9BBr2Cdv4Fmbf7S1EbRm1Px7qxitVxNqZ0nT\n"
                                "y3V/MsN59HoUPuKMCSBIaSNF7cui27mtt6gClAl7MkFq4pU+b6T/b4m0AmNI4HXU\n"
                                "mNBtzbXHe+DwOhtT+X34OUVHjujoy4tgwNMN73NwUQm/6omn14rSMiyKWtouNdhk\n"
                                "nGoffDIZUS5wHMgb1IkqGv9JVBc6HbQIEAhUqaZE0JlPcc1nR1QYd/03MzabED0A\n"
                                "kH/eESaSJLwyK1spwd8shjmXTEL9Xds7Cygxq7lwsQKBgQDxn6UU1MWpLNhqpT41\n"
                                "tfYIGoUuG7ReOSC6MwLwzTg9v/X3YeCh1bWm9w3eyfGOHyzUEICqSwHSs7u7tyIS\n"
                                "zb+gjudHLmYIGjMMx0i6jcLWf4WOHsb4jC7QWgO2ize3ZuK/Raq0RauobKiYPiM2\n"
                                "BDVDIWRQ4AtAz7jijoo1Ej9ipQKBgQDXpqfcBppehWPRaO8iayXNl3spvkFSK6an\n"
                                "r4T8z4lyg/YsCtF/8jfrPAXUx6yVYOfMHShVSp1AK+dKn9GtZHNM/200Lflh6/k6\n"
                                "XOFQUY3XHR9ecAvZUg4OAvHYhZ/Cn8gZsknnfyb7Uf+NIXaDTx1xl/7rafGf/tPG\n"
                                "+tHaWLEkFwKBgQCS/Ic0UOudqsZMuhFKI1N0Qo3aKshiuWYLX5TeYDlidzBuOYCp\n"
                                "cpR66bfqW/cyegyPRSrAbbjCMMx3uURlI/z683QGfVdcfnOnxmOb+TkZu6HHfzmT\n"
                                "YdPos5mmprJSQ6iUqxDZcbinUNKPKt3Ism6kU9/uwxyVZMgYKpYxCtS8cQKBgQDK\n"
                                "KOxBYltCcq+Rd1p+HI4SvofyKO3ZVxxjJDJ6QSArnzOeNAITfIEZX2pj/091taN3\n"
                                "AHp4AnuJ1d58YXhRoNJKA0VfXh3jwzAfm0SJY/qhBycKA+XHs5mDXxVTEmkjLWCL\n"
                                "XkzT3KoxfbwglJciH3+NppyOGgIuJ9hmN2mU1AIzvwKBgCu60AXexGmqP7qHBRIH\n"
                                "PCMCDMhap/PM8+8UUTRgtjxVaj9GRf5HcMxZN1QgcNJSp7WxpyHoxYzNP6mPvDaf\n"
                                "ktfGhd9u5U+rW01ySY0v9tHYyV4XvyVICZujOhCPHbpaXLrtUyqULI6LAxqtKSL2\n"
                                "EYfLwE0agaaaYz6gzig71bYH\n"
                                "-----END PRIVATE KEY-----\n";
static const char k_ec_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                               "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQguYmtGmMLQWOQBzbN\n"
                               "FgeDpQMHaay+eAE3ltrGP74zrZyhRANCAARj0BrMqgaUYZNAjK8QuX+Clyn9skf7\n"
                               "T+rYGcJLmqMjG7aKhqmg/sdyWJEpJuQvprP8D2+CBkRrfjKu2d6c8gEI\n"
                               "-----END PRIVATE KEY-----\n";

static sb_jwks *g_set;

static void init_keys(void)
{
    const char *pems[] = {k_rsa_pem, k_ec_pem};
    g_set = sb_jwks_new();
    if (!g_set) abort();
    for (int i = 0; i < 2; i++) {
        sb_jwk *k = NULL;
        char err[128];
        if (sb_jwk_from_pem(&k, pems[i], strlen(pems[i]), NULL, err, sizeof err) != 0) abort();
        if (sb_jwks_add(g_set, k) != 0) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_set) init_keys();
    const char *in = (const char *)data;
    char err[128];
    cJSON *claims = NULL;
    sb_jwt_expect ex = {.iss = "https://as.example",
                        .aud = "https://rs.example",
                        .now_s = 1800000000,
                        .leeway_s = 60};
    int rc = sb_jwt_verify(g_set, in, size, &ex, &claims, err, sizeof err);
    if ((rc == 0) != (claims != NULL)) abort();
    cJSON_Delete(claims);
    ex.typ = "at+jwt";
    rc = sb_jwt_verify(g_set, in, size, &ex, NULL, err, sizeof err);
    (void)rc;

    sb_jwks *s = NULL;
    if (sb_jwks_parse(&s, in, size, err, sizeof err) == 0) {
        if (sb_jwks_count(s) == 0 || sb_jwks_count(s) > SB_JWKS_MAX_KEYS) abort();
        sb_buf b;
        sb_buf_init(&b, 1 << 20);
        if (sb_jwks_json(s, &b) != 0) abort();
        sb_jwks *again = NULL;
        if (sb_jwks_parse(&again, b.data, b.len, err, sizeof err) != 0) abort();
        if (sb_jwks_count(again) != sb_jwks_count(s)) abort();
        sb_jwks_free(again);
        sb_buf_free(&b);
        sb_jwt_verify(s, in, size, NULL, NULL, err, sizeof err);
        sb_jwks_free(s);
    } else if (s) {
        abort();
    }

    sb_jwk *k = NULL;
    if (sb_jwk_from_pem(&k, in, size, NULL, err, sizeof err) == 0) sb_jwk_free(k);
    return 0;
}
