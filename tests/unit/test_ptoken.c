/* Unit tests for auth/sb_ptoken: provider-token verification against discovered JWKS, with an
 * in-memory fetch function (the sandbox end-to-end test is tests/sandbox/ptoken.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/sb_ptoken.h"
#include "core/sb_metrics.h"

#define ISS_US "https://idp.example/us"
#define ISS_EU "https://idp.example/eu"

typedef struct fake {
    char disc_us[1024], disc_eu[1024];
    sb_buf jwks_us, jwks_eu;
    int calls;
    pthread_mutex_t mu;
} fake;

static char *dup_n(const char *s, size_t n, size_t *len)
{
    char *r = malloc(n + 1);
    memcpy(r, s, n);
    r[n] = 0;
    *len = n;
    return r;
}

static char *fake_fetch(void *ud, const char *url, size_t max, size_t *len)
{
    fake *f = ud;
    pthread_mutex_lock(&f->mu);
    f->calls++;
    char *r = NULL;
    if (strcmp(url, ISS_US "/.well-known/openid-configuration") == 0)
        r = dup_n(f->disc_us, strlen(f->disc_us), len);
    else if (strcmp(url, ISS_EU "/.well-known/openid-configuration") == 0)
        r = dup_n(f->disc_eu, strlen(f->disc_eu), len);
    else if (strcmp(url, "https://idp.example/us/jwks") == 0 && f->jwks_us.len)
        r = dup_n(f->jwks_us.data, f->jwks_us.len, len);
    else if (strcmp(url, "https://keys.example/eu.json") == 0 && f->jwks_eu.len)
        r = dup_n(f->jwks_eu.data, f->jwks_eu.len, len);
    if (r && *len > max) {
        free(r);
        r = NULL;
    }
    pthread_mutex_unlock(&f->mu);
    return r;
}

static void set_jwks(sb_buf *b, const sb_jwk *k)
{
    sb_buf_reset(b);
    sb_jwks *s = sb_jwks_new();
    sb_buf pem;
    sb_buf_init(&pem, 1 << 16);
    sb_jwk_to_pem(k, 0, &pem);
    sb_jwk *pub = NULL;
    assert_int_equal(sb_jwk_from_pem(&pub, pem.data, pem.len, NULL, NULL, 0), 0);
    sb_buf_free(&pem);
    sb_jwks_add(s, pub);
    assert_int_equal(sb_jwks_json(s, b), 0);
    sb_jwks_free(s);
}

static char *token(const sb_jwk *k, const char *iss, const char *aud, long exp_in)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "iss", iss);
    cJSON_AddStringToObject(c, "aud", aud);
    cJSON_AddStringToObject(c, "sub", "user-7");
    cJSON_AddNumberToObject(c, "exp", (double)(time(NULL) + exp_in));
    sb_buf b;
    sb_buf_init(&b, SB_JWT_MAX_TOKEN);
    assert_int_equal(sb_jwt_sign(k, "at+jwt", c, &b), 0);
    cJSON_Delete(c);
    return sb_buf_detach(&b, NULL);
}

static int vfy(sb_ptoken *p, const char *t, char prov[16], char reg[24])
{
    char err[128];
    cJSON *claims = NULL;
    int rc = sb_ptoken_verify(p, t, strlen(t), prov, reg, &claims, err, sizeof err);
    assert_true((rc == 0) == (claims != NULL));
    if (strlen(t) > 16) assert_null(strstr(err, t + strlen(t) - 16));
    cJSON_Delete(claims);
    return rc;
}

static void test_discovery_and_verify(void **state)
{
    (void)state;
    fake f = {0};
    pthread_mutex_init(&f.mu, NULL);
    sb_buf_init(&f.jwks_us, 1 << 16);
    sb_buf_init(&f.jwks_eu, 1 << 16);
    sb_jwk *kus = NULL, *keu = NULL, *keu2 = NULL;
    assert_int_equal(sb_jwk_generate(&kus, "RS256"), 0);
    assert_int_equal(sb_jwk_generate(&keu, "ES256"), 0);
    assert_int_equal(sb_jwk_generate(&keu2, "RS256"), 0);
    snprintf(f.disc_us, sizeof f.disc_us, "{\"issuer\":\"%s\",\"jwks_uri\":\"%s/jwks\"}", ISS_US,
             ISS_US);
    snprintf(f.disc_eu, sizeof f.disc_eu,
             "{\"issuer\":\"%s\",\"jwks_uri\":\"https://keys.example/eu.json\"}", ISS_EU);
    set_jwks(&f.jwks_us, kus);
    set_jwks(&f.jwks_eu, keu);
    sb_ptoken_issuer cfg[2] = {
        {.issuer = ISS_US, .provider = "boldsign", .region = "us", .audience = "api"},
        {.issuer = ISS_EU, .provider = "boldsign", .region = "eu", .audience = ""},
    };
    assert_null(sb_ptoken_new(cfg, 0, fake_fetch, &f));
    assert_null(sb_ptoken_new(cfg, 2, NULL, &f));
    sb_ptoken *p = sb_ptoken_new(cfg, 2, fake_fetch, &f);
    assert_non_null(p);
    char prov[16] = "", reg[24] = "";
    char *tus = token(kus, ISS_US, "api", 300), *teu = token(keu, ISS_EU, "whatever", 300);
    /* before any refresh: no keys */
    assert_int_equal(vfy(p, tus, prov, reg), SB_JWT_EKID);
    assert_int_equal(sb_ptoken_key_age_s(p, 0), -1);
    assert_int_equal(sb_ptoken_refresh(p, 3600), 0);
    assert_int_equal(f.calls, 4);
    assert_int_equal(sb_ptoken_key_age_s(p, 0), 0);
    assert_int_equal(vfy(p, tus, prov, reg), 0);
    assert_string_equal(prov, "boldsign");
    assert_string_equal(reg, "us");
    assert_int_equal(vfy(p, teu, prov, reg), 0);
    assert_string_equal(reg, "eu");
    /* fresh keys: nothing refetched */
    assert_int_equal(sb_ptoken_refresh(p, 3600), 0);
    assert_int_equal(f.calls, 4);
    /* unknown issuer, wrong audience, a US-signed token claiming the EU issuer, expired */
    char *t = token(kus, "https://evil.example", "api", 300);
    assert_int_equal(vfy(p, t, prov, reg), SB_JWT_EISS);
    free(t);
    t = token(kus, ISS_US, "other", 300);
    assert_int_equal(vfy(p, t, prov, reg), SB_JWT_EAUD);
    free(t);
    t = token(kus, ISS_EU, "api", 300);
    assert_true(vfy(p, t, prov, reg) < 0); /* kid unknown in the EU set */
    free(t);
    t = token(kus, ISS_US, "api", -3600);
    assert_int_equal(vfy(p, t, prov, reg), SB_JWT_EEXPIRED);
    free(t);
    assert_int_equal(vfy(p, "a.b.c", prov, reg), SB_JWT_EISS);
    assert_int_equal(sb_ptoken_verify(p, "", 0, prov, reg, NULL, NULL, 0), SB_JWT_EMALFORMED);
    /* tampered: flip a signature character */
    t = strdup(tus);
    char *c = strrchr(t, '.') + 3;
    *c = *c == 'A' ? 'B' : 'A';
    assert_int_equal(vfy(p, t, prov, reg), SB_JWT_ESIG);
    free(t);
    /* key rotation in the EU: the new kid is unknown until a refresh, which the unknown kid
     * requests (the EU mark was consumed above? the US-signed token claiming EU set it: reset by
     * this refresh) */
    set_jwks(&f.jwks_eu, keu2);
    t = token(keu2, ISS_EU, "x", 300);
    int calls = f.calls;
    assert_int_equal(sb_ptoken_refresh(p, 3600), 0); /* the earlier unknown kid marked the EU */
    assert_int_equal(f.calls, calls + 2);
    assert_int_equal(vfy(p, t, prov, reg), 0);
    assert_int_equal(vfy(p, teu, prov, reg), SB_JWT_EKID); /* the old key is gone */
    /* within 30 s a second unknown kid does not force another fetch */
    calls = f.calls;
    assert_int_equal(sb_ptoken_refresh(p, 3600), 0);
    assert_int_equal(f.calls, calls);
    free(t);
    /* a discovery document naming another issuer, or a foreign http jwks_uri: refused, old keys
     * kept */
    snprintf(f.disc_us, sizeof f.disc_us, "{\"issuer\":\"%s/\",\"jwks_uri\":\"%s/jwks\"}", ISS_US,
             ISS_US);
    assert_int_equal(sb_ptoken_refresh(p, 0), -1);
    snprintf(f.disc_us, sizeof f.disc_us,
             "{\"issuer\":\"%s\",\"jwks_uri\":\"http://idp.example.evil/jwks\"}", ISS_US);
    assert_int_equal(sb_ptoken_refresh(p, 0), -1);
    assert_int_equal(vfy(p, tus, prov, reg), 0);
    free(tus);
    free(teu);
    sb_ptoken_free(p);
    sb_jwk_free(kus);
    sb_jwk_free(keu);
    sb_jwk_free(keu2);
    sb_buf_free(&f.jwks_us);
    sb_buf_free(&f.jwks_eu);
    pthread_mutex_destroy(&f.mu);
}

/* Verifiers racing a refresher that swaps the key set every time (ASan/TSan food). */
typedef struct race {
    sb_ptoken *p;
    const char *tok;
    int bad;
    volatile int stop;
} race;

static void *verifier(void *arg)
{
    race *r = arg;
    for (int i = 0; i < 300; i++) {
        char prov[16], reg[24];
        if (sb_ptoken_verify(r->p, r->tok, strlen(r->tok), prov, reg, NULL, NULL, 0) != 0)
            __atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void *refresher(void *arg)
{
    race *r = arg;
    while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED))
        sb_ptoken_refresh(r->p, 0);
    return NULL;
}

/* One US issuer with a fresh key of alg, its keys fetched. */
typedef struct one {
    fake f;
    sb_jwk *k;
    sb_ptoken *p;
} one;

static void one_setup(one *o, const char *alg)
{
    memset(o, 0, sizeof *o);
    pthread_mutex_init(&o->f.mu, NULL);
    sb_buf_init(&o->f.jwks_us, 1 << 16);
    sb_buf_init(&o->f.jwks_eu, 1 << 16);
    assert_int_equal(sb_jwk_generate(&o->k, alg), 0);
    snprintf(o->f.disc_us, sizeof o->f.disc_us, "{\"issuer\":\"%s\",\"jwks_uri\":\"%s/jwks\"}",
             ISS_US, ISS_US);
    set_jwks(&o->f.jwks_us, o->k);
    sb_ptoken_issuer cfg = {.issuer = ISS_US, .provider = "boldsign", .region = "us"};
    o->p = sb_ptoken_new(&cfg, 1, fake_fetch, &o->f);
    assert_non_null(o->p);
    assert_int_equal(sb_ptoken_refresh(o->p, 0), 0);
}

static void one_teardown(one *o)
{
    sb_ptoken_free(o->p);
    sb_jwk_free(o->k);
    sb_buf_free(&o->f.jwks_us);
    sb_buf_free(&o->f.jwks_eu);
    pthread_mutex_destroy(&o->f.mu);
}

static void test_concurrent_refresh(void **state)
{
    (void)state;
    one o;
    one_setup(&o, "ES256");
    char *t = token(o.k, ISS_US, "api", 300);
    race r = {.p = o.p, .tok = t};
    pthread_t v[3], w;
    pthread_create(&w, NULL, refresher, &r);
    for (int i = 0; i < 3; i++)
        pthread_create(&v[i], NULL, verifier, &r);
    for (int i = 0; i < 3; i++)
        pthread_join(v[i], NULL);
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELAXED);
    pthread_join(w, NULL);
    assert_int_equal(r.bad, 0);
    assert_true(o.f.calls > 2);
    free(t);
    one_teardown(&o);
}

static int64_t checks(const char *result)
{
    sb_mfamily *fam = sb_metrics_family(
        sb_metrics_global(), SB_METRIC_COUNTER, "signbridge_provider_token_checks_total",
        "Provider access tokens presented (provider-token mode): verified against the issuer's "
        "keys, or a token verified before with the same keys and still valid (cached).",
        1, (const char *const[]){"result"});
    return sb_metrics_value(sb_metrics_series(fam, (const char *const[]){result}));
}

/* Verified once, then taken from the cache: the same outcome and claims, counted as cached. */
static void test_verified_once(void **state)
{
    (void)state;
    one o;
    one_setup(&o, "RS256");
    char *t = token(o.k, ISS_US, "api", 300);
    char prov[16] = "", reg[24] = "";
    int64_t v0 = checks("verified"), c0 = checks("cached");
    assert_int_equal(vfy(o.p, t, prov, reg), 0);
    assert_int_equal(checks("verified"), v0 + 1);
    for (int i = 0; i < 5; i++) {
        memset(prov, 0, sizeof prov);
        memset(reg, 0, sizeof reg);
        cJSON *cl = NULL;
        assert_int_equal(sb_ptoken_verify(o.p, t, strlen(t), prov, reg, &cl, NULL, 0), 0);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(cl, "sub")->valuestring, "user-7");
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(cl, "iss")->valuestring, ISS_US);
        cJSON_Delete(cl);
        assert_string_equal(prov, "boldsign");
        assert_string_equal(reg, "us");
    }
    assert_int_equal(sb_ptoken_verify(o.p, t, strlen(t), prov, reg, NULL, NULL, 0), 0);
    assert_int_equal(checks("verified"), v0 + 1);
    assert_int_equal(checks("cached"), c0 + 6);
    free(t);
    one_teardown(&o);
}

/* A token changed in any byte is not the token verified: it is checked again, and refused, even
 * when every slot of the cache holds a token that verified. */
static void test_changed_token(void **state)
{
    (void)state;
    one o;
    one_setup(&o, "ES256");
    char prov[16], reg[24];
    for (int i = 0; i < 700; i++) { /* about half of the 1,024 slots taken */
        char *u = token(o.k, ISS_US, "api", 300 + i);
        assert_int_equal(vfy(o.p, u, prov, reg), 0);
        free(u);
    }
    char *t = token(o.k, ISS_US, "api", 300);
    assert_int_equal(vfy(o.p, t, prov, reg), 0);
    size_t n = strlen(t);
    for (size_t at = 0; at < n; at += n / 23 + 1) { /* ~24 tokens: one meets a taken slot */
        if (t[at] == '.') continue;
        char *bad = strdup(t);
        assert_non_null(bad);
        bad[at] = bad[at] == 'A' ? 'B' : 'A';
        int64_t c0 = checks("cached");
        assert_int_not_equal(vfy(o.p, bad, prov, reg), 0);
        assert_int_equal(checks("cached"), c0);
        free(bad);
    }
    free(t);
    one_teardown(&o);
}

/* A refresh that swaps the issuer's keys makes every kept token verify again: once the key that
 * signed it is gone, it is refused, though it verified before. */
static void test_new_keys_verify_again(void **state)
{
    (void)state;
    one o;
    one_setup(&o, "ES256");
    char *t = token(o.k, ISS_US, "api", 300);
    char prov[16], reg[24];
    assert_int_equal(vfy(o.p, t, prov, reg), 0);
    assert_int_equal(sb_ptoken_refresh(o.p, 0), 0); /* the same key, fetched again */
    int64_t v0 = checks("verified");
    assert_int_equal(vfy(o.p, t, prov, reg), 0);
    assert_int_equal(checks("verified"), v0 + 1);
    sb_jwk *k2 = NULL;
    assert_int_equal(sb_jwk_generate(&k2, "ES256"), 0);
    pthread_mutex_lock(&o.f.mu);
    set_jwks(&o.f.jwks_us, k2);
    pthread_mutex_unlock(&o.f.mu);
    assert_int_equal(sb_ptoken_refresh(o.p, 0), 0);
    assert_int_equal(vfy(o.p, t, prov, reg), SB_JWT_EKID);
    sb_jwk_free(k2);
    free(t);
    one_teardown(&o);
}

/* Kept no longer than verification would accept it: a token inside the last two seconds of its
 * leeway (SB_PTOKEN_LEEWAY_S past exp) is accepted, then refused as expired once they have
 * passed, though it is in the cache. */
static void test_expiry_checked_again(void **state)
{
    (void)state;
    one o;
    one_setup(&o, "RS256");
    double now = (double)time(NULL);
    char *t = token(o.k, ISS_US, "api", -(SB_PTOKEN_LEEWAY_S - 2));
    char prov[16], reg[24];
    assert_int_equal(vfy(o.p, t, prov, reg), 0);
    int64_t c0 = checks("cached");
    while ((double)time(NULL) < now + 3)
        usleep(100 * 1000);
    assert_int_equal(vfy(o.p, t, prov, reg), SB_JWT_EEXPIRED);
    assert_int_equal(checks("cached"), c0); /* a miss: verified again, and refused */
    free(t);
    one_teardown(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_discovery_and_verify),
        cmocka_unit_test(test_concurrent_refresh),
        cmocka_unit_test(test_verified_once),
        cmocka_unit_test(test_changed_token),
        cmocka_unit_test(test_new_keys_verify_again),
        cmocka_unit_test(test_expiry_checked_again),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
