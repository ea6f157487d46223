/* Unit tests for auth/sb_cred's fingerprints: HMAC-SHA256(server secret, provider "\n"
 * credential) as OpenSSL's one-shot HMAC() computes it, with each thread's reused context keyed
 * right when keys alternate, when a key is freed and another takes its address, and on many
 * threads at once; and the extraction's visible-ASCII rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/sb_cred.h"
#include "core/sb_util.h"

/* The expected fingerprint, from first principles. */
static void expect_fp(const unsigned char *secret, size_t sl, const char *provider,
                      const char *cred, char out[SB_FP_HEX])
{
    unsigned char msg[600], md[32];
    unsigned int mdl = 0;
    size_t pl = strlen(provider), cl = strlen(cred);
    memcpy(msg, provider, pl);
    msg[pl] = '\n';
    memcpy(msg + pl + 1, cred, cl);
    assert_non_null(HMAC(EVP_sha256(), secret, (int)sl, msg, pl + 1 + cl, md, &mdl));
    assert_int_equal(mdl, 32);
    sb_hex_encode(md, 32, out);
}

static void cred_of(sb_cred *c, const char *s)
{
    memset(c, 0, sizeof *c);
    c->kind = SB_CRED_X_API_KEY;
    c->len = strlen(s);
    memcpy(c->secret, s, c->len + 1);
}

static void fp_matches_hmac(void **state)
{
    (void)state;
    unsigned char s1[32], s2[100]; /* the second longer than a SHA-256 block: hashed first */
    for (size_t i = 0; i < sizeof s1; i++) s1[i] = (unsigned char)(i * 7 + 1);
    for (size_t i = 0; i < sizeof s2; i++) s2[i] = (unsigned char)(i * 13 + 5);
    sb_cred_fpkey *k1 = sb_cred_fpkey_new(s1, sizeof s1), *k2 = sb_cred_fpkey_new(s2, sizeof s2);
    assert_non_null(k1);
    assert_non_null(k2);
    const char *creds[] = {"a", "sk_live_0123456789abcdefghijklmnopqrstuvwxyz",
                           ("a credential of a length past one SHA-256 block, to make the inner "
                            "hash take more than one compression")};
    const char *provs[] = {"boldsign", "dropboxsign", "iinkedsign"};
    char got[SB_FP_HEX], want[SB_FP_HEX];
    /* keys alternate on one thread: the reused context must be re-keyed each time */
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < 3; i++)
            for (size_t j = 0; j < 3; j++) {
                sb_cred c;
                cred_of(&c, creds[i]);
                sb_cred_fingerprint_k(k1, provs[j], &c, got);
                expect_fp(s1, sizeof s1, provs[j], creds[i], want);
                assert_string_equal(got, want);
                sb_cred_fingerprint_k(k2, provs[j], &c, got);
                expect_fp(s2, sizeof s2, provs[j], creds[i], want);
                assert_string_equal(got, want);
            }
    /* the same input twice gives the same answer (no state carried over) */
    sb_cred c;
    cred_of(&c, "repeat");
    char again[SB_FP_HEX];
    sb_cred_fingerprint_k(k1, "boldsign", &c, got);
    sb_cred_fingerprint_k(k1, "boldsign", &c, again);
    assert_string_equal(got, again);
    sb_cred_fpkey_free(k1);
    sb_cred_fpkey_free(k2);
}

static void fp_key_replaced_at_same_address(void **state)
{
    (void)state;
    sb_cred c;
    cred_of(&c, "key-x");
    char got[SB_FP_HEX], want[SB_FP_HEX];
    for (int i = 0; i < 20; i++) {
        unsigned char s[32];
        memset(s, i + 1, sizeof s);
        sb_cred_fpkey *k = sb_cred_fpkey_new(s, sizeof s); /* often where the last one was */
        assert_non_null(k);
        sb_cred_fingerprint_k(k, "boldsign", &c, got);
        expect_fp(s, sizeof s, "boldsign", "key-x", want);
        assert_string_equal(got, want);
        sb_cred_fpkey_free(k);
    }
}

typedef struct {
    sb_cred_fpkey *k;
    const unsigned char *secret;
    int bad;
} thr_arg;

static void *fp_thread(void *p)
{
    thr_arg *a = p;
    for (int i = 0; i < 500; i++) {
        char cred[32], got[SB_FP_HEX], want[SB_FP_HEX];
        snprintf(cred, sizeof cred, "c%d", i);
        sb_cred c;
        cred_of(&c, cred);
        sb_cred_fingerprint_k(a->k, "boldsign", &c, got);
        unsigned char msg[64], md[32];
        unsigned int mdl = 0;
        int n = snprintf((char *)msg, sizeof msg, "boldsign\n%s", cred);
        HMAC(EVP_sha256(), a->secret, 32, msg, (size_t)n, md, &mdl);
        sb_hex_encode(md, 32, want);
        if (strcmp(got, want) != 0) a->bad++;
    }
    return NULL;
}

static void fp_many_threads(void **state)
{
    (void)state;
    unsigned char s[32];
    memset(s, 0x42, sizeof s);
    sb_cred_fpkey *k = sb_cred_fpkey_new(s, sizeof s);
    assert_non_null(k);
    pthread_t t[4];
    thr_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (thr_arg){.k = k, .secret = s};
        assert_int_equal(pthread_create(&t[i], NULL, fp_thread, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].bad, 0);
    }
    sb_cred_fpkey_free(k);
}

/* sb_cred_extract's X-API-Key: a header callback over one value */
static const char *g_key_value;
static const char *key_hdr(void *ctx, const char *name)
{
    (void)ctx;
    return strcmp(name, "X-API-Key") == 0 ? g_key_value : NULL;
}

/* Only visible ASCII (0x21-0x7e) is a credential: every length to 64 and a 900-byte token (the
 * SSE2 blocks and the tail), a bad byte at every position, and the two bounds accepted. */
static void extract_visible_ascii_only(void **state)
{
    (void)state;
    static const unsigned char bad[] = {0x01, 0x1f, 0x7f, 0x80, 0xc3, 0xff};
    char v[901], err[200];
    sb_cred c;
    size_t lens[66];
    for (size_t n = 1; n <= 64; n++) lens[n - 1] = n;
    lens[64] = 900;
    lens[65] = 17;
    for (size_t k = 0; k < sizeof lens / sizeof *lens; k++) {
        size_t n = lens[k];
        for (size_t i = 0; i < n; i++) v[i] = (char)(0x21 + (i * 7) % 94); /* 0x21..0x7e */
        v[n] = '\0';
        v[0] = 0x21;
        v[n - 1] = 0x7e;
        g_key_value = v;
        assert_int_equal(sb_cred_extract(key_hdr, NULL, &c, err, sizeof err), 0);
        assert_int_equal(c.len, n);
        assert_memory_equal(c.secret, v, n);
        for (size_t at = 0; at < n; at++) {
            char keep = v[at];
            for (size_t b = 0; b < sizeof bad; b++) {
                v[at] = (char)bad[b];
                assert_int_equal(sb_cred_extract(key_hdr, NULL, &c, err, sizeof err), -1);
            }
            if (at > 0 && at < n - 1) { /* a space inside (not trimmed) */
                v[at] = ' ';
                assert_int_equal(sb_cred_extract(key_hdr, NULL, &c, err, sizeof err), -1);
            }
            v[at] = keep;
        }
    }
    sb_cred_wipe(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fp_matches_hmac),
        cmocka_unit_test(fp_key_replaced_at_same_address),
        cmocka_unit_test(fp_many_threads),
        cmocka_unit_test(extract_visible_ascii_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
