/* Unit tests for auth/sb_oauth's resource-server side (sb_oauth_authenticate): an access token's
 * signature is verified once and the outcome kept (tok_slot), but never past what verification
 * itself would accept -- expiry is checked again at every use, the outcome is bound to the MCP
 * URL it was verified for, and a changed token is verified afresh. The tokens are minted here
 * with the server's own (test) signing key; their grant is not in the store, so a token that
 * passes verification is then refused by the grant lookup, whose message tells the two apart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "auth/sb_jwt.h"
#include "auth/sb_oauth.h"
#include "core/sb_buf.h"
#include "core/sb_config.h"
#include "core/sb_log.h"
#include "core/sb_metrics.h"

/* Test-only key (fuzz_oauth's and fuzz_jwt's EC key): never used outside the tests. */
static const char k_ec_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                               "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQguYmtGmMLQWOQBzbN\n"
                               "FgeDpQMHaay+eAE3ltrGP74zrZyhRANCAARj0BrMqgaUYZNAjK8QuX+Clyn9skf7\n"
                               "T+rYGcJLmqMjG7aKhqmg/sdyWJEpJuQvprP8D2+CBkRrfjKu2d6c8gEI\n"
                               "-----END PRIVATE KEY-----\n";

#define ISSUER "https://sb.example"
#define NO_GRANT "the grant behind this token was revoked or expired; sign in again"

typedef struct fixture {
    sb_config cfg;
    sb_regions regions;
    sb_store *st;
    sb_oauth *o;
    sb_jwk *key;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    char err[256];
    sb_log_set_level(SB_LOG_OFF); /* refusals are logged */
    assert_int_equal(sb_config_load(&f->cfg, NULL, NULL, NULL, err, sizeof err), 0);
    assert_int_equal(sb_regions_init(&f->regions, &f->cfg, err, sizeof err), 0);
    assert_int_equal(sb_store_open(&f->st, "sqlite::memory:", NULL, err, sizeof err), 0);
    static const unsigned char secret[32] = {7, 7, 7};
    sb_oauth_options oo = {.issuer = ISSUER,
                           .store = f->st,
                           .secret = secret,
                           .regions = &f->regions,
                           .default_provider = "boldsign",
                           .sandbox_url = "",
                           .signing_pems = {k_ec_pem},
                           .n_signing = 1};
    f->o = sb_oauth_new(&oo, err, sizeof err);
    assert_non_null(f->o);
    assert_int_equal(sb_jwk_from_pem(&f->key, k_ec_pem, strlen(k_ec_pem), NULL, err, sizeof err),
                     0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    sb_jwk_free(f->key);
    sb_oauth_free(f->o);
    sb_store_close(f->st);
    free(f);
    return 0;
}

/* An access token as signbridge issues them, for route, expiring at exp (epoch seconds). */
static char *mint(const fixture *f, const char *route, double exp)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "iss", ISSUER);
    char aud[256];
    snprintf(aud, sizeof aud, "%s%s", ISSUER, route);
    cJSON_AddStringToObject(c, "aud", aud);
    cJSON_AddStringToObject(c, "sub", "user-1");
    cJSON_AddStringToObject(c, "gid", "g0123456789abcdef");
    cJSON_AddStringToObject(c, "scope", "signbridge.read signbridge.write");
    cJSON_AddNumberToObject(c, "iat", (double)time(NULL) - 60);
    cJSON_AddNumberToObject(c, "exp", exp);
    sb_buf b;
    sb_buf_init(&b, 1 << 16);
    assert_int_equal(sb_jwt_sign(f->key, "at+jwt", c, &b), 0);
    cJSON_Delete(c);
    return sb_buf_detach(&b, NULL);
}

/* sb_oauth_authenticate on route (provider boldsign); its message, or "ok" */
static const char *auth(const fixture *f, const char *route, const char *tok, char *err,
                        size_t errlen)
{
    sb_principal p;
    memset(&p, 0, sizeof p);
    snprintf(p.provider, sizeof p.provider, "boldsign");
    snprintf(p.route, sizeof p.route, "%s", route);
    err[0] = '\0';
    int rc = sb_oauth_authenticate(f->o, tok, strlen(tok), &p, err, errlen);
    return rc == 0 ? "ok" : err;
}

static int64_t checks(const char *result)
{
    sb_mfamily *fam = sb_metrics_family(
        sb_metrics_global(), SB_METRIC_COUNTER, "signbridge_oauth_token_checks_total",
        "Access tokens presented at an MCP endpoint: signature verified, or a token verified "
        "before and still valid (cached).",
        1, (const char *const[]){"result"});
    return sb_metrics_value(sb_metrics_series(fam, (const char *const[]){result}));
}

/* Verified once, then taken from the cache: the same outcome, counted as cached. */
static void test_verified_once(void **state)
{
    fixture *f = *state;
    char err[200];
    char *tok = mint(f, "/mcp", (double)time(NULL) + 3600);
    int64_t v0 = checks("verified"), c0 = checks("cached");
    assert_string_equal(auth(f, "/mcp", tok, err, sizeof err), NO_GRANT);
    assert_int_equal(checks("verified"), v0 + 1);
    assert_int_equal(checks("cached"), c0);
    for (int i = 0; i < 5; i++)
        assert_string_equal(auth(f, "/mcp", tok, err, sizeof err), NO_GRANT);
    assert_int_equal(checks("verified"), v0 + 1);
    assert_int_equal(checks("cached"), c0 + 5);
    free(tok);
}

/* The outcome is bound to the MCP URL it was verified for: the same token at another route is
 * verified again and refused for its audience. */
static void test_bound_to_audience(void **state)
{
    fixture *f = *state;
    char err[200];
    char *tok = mint(f, "/mcp", (double)time(NULL) + 3600);
    assert_string_equal(auth(f, "/mcp", tok, err, sizeof err), NO_GRANT);
    int64_t v0 = checks("verified");
    assert_string_equal(auth(f, "/boldsign/eu/mcp", tok, err, sizeof err),
                        "the access token was issued for another MCP URL");
    assert_int_equal(checks("verified"), v0 + 1);
    free(tok);
}

/* A token changed in any byte is not the token verified: its signature is checked, and fails. */
static void test_changed_token(void **state)
{
    fixture *f = *state;
    char err[200];
    char *tok = mint(f, "/mcp", (double)time(NULL) + 3600);
    assert_string_equal(auth(f, "/mcp", tok, err, sizeof err), NO_GRANT);
    size_t n = strlen(tok);
    for (size_t at = 0; at < n; at += n / 7 + 1) {
        if (tok[at] == '.') continue;
        char *bad = strdup(tok);
        assert_non_null(bad);
        bad[at] = bad[at] == 'A' ? 'B' : 'A';
        int64_t c0 = checks("cached");
        assert_string_not_equal(auth(f, "/mcp", bad, err, sizeof err), NO_GRANT);
        assert_int_equal(checks("cached"), c0);
        free(bad);
    }
    free(tok);
}

/* Kept no longer than verification would accept it: a token inside the last two seconds of its
 * leeway (30 s past exp) is accepted, then refused as expired once they have passed, though it
 * is in the cache. */
static void test_expiry_checked_again(void **state)
{
    fixture *f = *state;
    char err[200];
    double now = (double)time(NULL);
    char *tok = mint(f, "/mcp", now - 28);
    assert_string_equal(auth(f, "/mcp", tok, err, sizeof err), NO_GRANT);
    int64_t c0 = checks("cached");
    while ((double)time(NULL) < now + 3)
        usleep(100 * 1000);
    assert_string_equal(auth(f, "/mcp", tok, err, sizeof err),
                        "the access token expired; refresh it");
    assert_int_equal(checks("cached"), c0); /* a miss: verified again, and refused */
    free(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_verified_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bound_to_audience, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_checked_again, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
