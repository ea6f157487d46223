/* Benchmark: sb_jwt_verify with a cached key (src/auth/sb_jwt.h). Built by meson (bench_jwt_verify)
 * but not run as a test. Prints the median time of one verification for RS256 (RSA 2048) and ES256
 * (P-256) over N verifications each (default 20000; argv[1] overrides):
 *   jwt_verify_rs256_us_median 12.3
 *   jwt_verify_es256_us_median 45.6
 * Target (docs: release build): RS256 <= 30 us. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/sb_jwt.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int bench(const char *alg, const char *label, long n)
{
    sb_jwk *k = NULL;
    if (sb_jwk_generate(&k, alg) != 0) return -1;
    cJSON *claims = cJSON_Parse("{\"iss\":\"https://as.example\",\"aud\":\"https://rs.example\","
                                "\"sub\":\"user-1\",\"scope\":\"mcp:tools\",\"client_id\":\"c1\","
                                "\"exp\":4102444800,\"iat\":1700000000,\"jti\":\"abcdef0123\"}");
    sb_buf tok;
    sb_buf_init(&tok, SB_JWT_MAX_TOKEN);
    if (!claims || sb_jwt_sign(k, "at+jwt", claims, &tok) != 0) return -1;
    cJSON_Delete(claims);
    sb_jwks *set = sb_jwks_new();
    if (!set || sb_jwks_add(set, k) != 0) return -1;
    sb_jwt_expect ex = {
        .iss = "https://as.example", .aud = "https://rs.example", .leeway_s = 30, .typ = "at+jwt"};
    uint64_t *t = malloc((size_t)n * sizeof *t);
    if (!t) return -1;
    char err[128];
    for (long i = 0; i < n / 10 + 1; i++) /* warm-up */
        if (sb_jwt_verify(set, tok.data, tok.len, &ex, NULL, err, sizeof err) != 0) return -1;
    for (long i = 0; i < n; i++) {
        uint64_t t0 = now_ns();
        cJSON *c = NULL;
        int rc = sb_jwt_verify(set, tok.data, tok.len, &ex, &c, err, sizeof err);
        cJSON_Delete(c);
        t[i] = now_ns() - t0;
        if (rc != 0) {
            fprintf(stderr, "verify failed: %s\n", err);
            return -1;
        }
    }
    qsort(t, (size_t)n, sizeof *t, cmp_u64);
    printf("%s %.1f\n", label, (double)t[n / 2] / 1000.0);
    printf("# %s p99 %.1f us over %ld verifications\n", alg, (double)t[n * 99 / 100] / 1000.0, n);
    free(t);
    sb_jwks_free(set);
    sb_buf_free(&tok);
    return 0;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
    if (n < 10) n = 10;
    if (bench("RS256", "jwt_verify_rs256_us_median", n) != 0 ||
        bench("ES256", "jwt_verify_es256_us_median", n) != 0) {
        fprintf(stderr, "benchmark failed\n");
        return 1;
    }
    return 0;
}
