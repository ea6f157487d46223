/* Unit tests for store/sb_seal: AES-256-GCM sealing of values at rest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/sb_util.h"
#include "store/sb_seal.h"

static const uint8_t k_key[SB_SEAL_KEY_LEN] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f};
static const char k_ad[] = "upstream_cred/dropboxsign:4f1c";
static const char k_plain[] = "{\"access_token\":\"tok-secret\",\"refresh_token\":\"r-secret\"}";

static void test_round_trip(void **state)
{
    (void)state;
    uint8_t sealed[256], out[256];
    size_t slen = 0, olen = 0;
    size_t plen = strlen(k_plain);
    assert_int_equal(
        sb_seal_seal(k_key, k_ad, strlen(k_ad), k_plain, plen, sealed, sizeof sealed, &slen), 0);
    assert_int_equal(slen, plen + SB_SEAL_OVERHEAD);
    assert_int_equal(sealed[0], SB_SEAL_VERSION);
    assert_null(memmem(sealed, slen, "tok-secret", 10)); /* no plaintext in the output */
    assert_int_equal(sb_seal_open(k_key, k_ad, strlen(k_ad), sealed, slen, out, sizeof out, &olen),
                     0);
    assert_int_equal(olen, plen);
    assert_memory_equal(out, k_plain, plen);

    /* A fresh nonce per value: sealing the same input twice differs. */
    uint8_t sealed2[256];
    size_t slen2 = 0;
    assert_int_equal(
        sb_seal_seal(k_key, k_ad, strlen(k_ad), k_plain, plen, sealed2, sizeof sealed2, &slen2), 0);
    assert_int_equal(slen2, slen);
    assert_memory_not_equal(sealed + 1, sealed2 + 1, SB_SEAL_NONCE_LEN);

    /* Empty plaintext and empty AD. */
    assert_int_equal(sb_seal_seal(k_key, NULL, 0, NULL, 0, sealed, sizeof sealed, &slen), 0);
    assert_int_equal(slen, SB_SEAL_OVERHEAD);
    assert_int_equal(sb_seal_open(k_key, NULL, 0, sealed, slen, out, sizeof out, &olen), 0);
    assert_int_equal(olen, 0);
    assert_int_equal(sb_seal_open(k_key, "x", 1, sealed, slen, out, sizeof out, &olen), -1);
}

static void test_large(void **state)
{
    (void)state;
    size_t n = SB_SEAL_MAX_PLAIN;
    uint8_t *plain = malloc(n), *sealed = malloc(n + SB_SEAL_OVERHEAD), *out = malloc(n);
    assert_non_null(plain);
    assert_non_null(sealed);
    assert_non_null(out);
    for (size_t i = 0; i < n; i++)
        plain[i] = (uint8_t)(i * 31 + 7);
    size_t slen = 0, olen = 0;
    assert_int_equal(
        sb_seal_seal(k_key, k_ad, strlen(k_ad), plain, n, sealed, n + SB_SEAL_OVERHEAD, &slen), 0);
    assert_int_equal(sb_seal_open(k_key, k_ad, strlen(k_ad), sealed, slen, out, n, &olen), 0);
    assert_int_equal(olen, n);
    assert_memory_equal(out, plain, n);
    /* One byte too many is refused. */
    assert_int_equal(
        sb_seal_seal(k_key, NULL, 0, plain, n + 1, sealed, n + SB_SEAL_OVERHEAD + 1, &slen), -1);
    free(plain);
    free(sealed);
    free(out);
}

static void test_tamper_every_byte(void **state)
{
    (void)state;
    uint8_t sealed[256], out[256];
    size_t slen = 0, olen = 0, plen = strlen(k_plain);
    assert_int_equal(
        sb_seal_seal(k_key, k_ad, strlen(k_ad), k_plain, plen, sealed, sizeof sealed, &slen), 0);
    for (size_t i = 0; i < slen; i++) {
        for (int bit = 0; bit < 8; bit++) {
            sealed[i] ^= (uint8_t)(1u << bit);
            memset(out, 0xAA, sizeof out);
            olen = 99;
            assert_int_equal(
                sb_seal_open(k_key, k_ad, strlen(k_ad), sealed, slen, out, sizeof out, &olen), -1);
            assert_int_equal(olen, 0);
            assert_null(memmem(out, sizeof out, "tok-secret", 10)); /* nothing leaked */
            sealed[i] ^= (uint8_t)(1u << bit);
        }
    }
    /* Truncated at every length, and extended by a byte. */
    for (size_t n = 0; n < slen; n++)
        assert_int_equal(sb_seal_open(k_key, k_ad, strlen(k_ad), sealed, n, out, sizeof out, &olen),
                         -1);
    uint8_t longer[257];
    memcpy(longer, sealed, slen);
    longer[slen] = 0;
    assert_int_equal(
        sb_seal_open(k_key, k_ad, strlen(k_ad), longer, slen + 1, out, sizeof out, &olen), -1);
    /* Untouched: still opens. */
    assert_int_equal(sb_seal_open(k_key, k_ad, strlen(k_ad), sealed, slen, out, sizeof out, &olen),
                     0);
}

static void test_wrong_ad_and_key(void **state)
{
    (void)state;
    uint8_t sealed[256], out[256];
    size_t slen = 0, olen = 0, plen = strlen(k_plain);
    assert_int_equal(
        sb_seal_seal(k_key, k_ad, strlen(k_ad), k_plain, plen, sealed, sizeof sealed, &slen), 0);
    const char *other = "upstream_cred/dropboxsign:4f1d";
    assert_int_equal(
        sb_seal_open(k_key, other, strlen(other), sealed, slen, out, sizeof out, &olen), -1);
    assert_int_equal(
        sb_seal_open(k_key, k_ad, strlen(k_ad) - 1, sealed, slen, out, sizeof out, &olen), -1);
    assert_int_equal(sb_seal_open(k_key, NULL, 0, sealed, slen, out, sizeof out, &olen), -1);
    for (int i = 0; i < SB_SEAL_KEY_LEN; i++) {
        uint8_t key2[SB_SEAL_KEY_LEN];
        memcpy(key2, k_key, sizeof key2);
        key2[i] ^= 0x80;
        assert_int_equal(
            sb_seal_open(key2, k_ad, strlen(k_ad), sealed, slen, out, sizeof out, &olen), -1);
    }
}

static void test_record_b64(void **state)
{
    (void)state;
    char *b64 = sb_seal_b64(k_key, "grant", "g_abc", k_plain, strlen(k_plain));
    assert_non_null(b64);
    assert_int_equal(
        strspn(b64, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        strlen(b64)); /* base64url, no padding */
    /* the same as sealing "grant/g_abc" by hand, then encoding */
    uint8_t raw[256];
    long rl = sb_base64_decode(b64, strlen(b64), raw, sizeof raw);
    assert_int_equal(rl, (long)(strlen(k_plain) + SB_SEAL_OVERHEAD));
    uint8_t plain[256];
    size_t pl = 0;
    assert_int_equal(
        sb_seal_open(k_key, "grant/g_abc", 11, raw, (size_t)rl, plain, sizeof plain, &pl), 0);
    assert_memory_equal(plain, k_plain, strlen(k_plain));
    char out[256];
    assert_int_equal(sb_seal_open_b64(k_key, "grant", "g_abc", b64, out, sizeof out),
                     (long)strlen(k_plain));
    assert_string_equal(out, k_plain);
    /* bound to its record: another key or namespace does not open it */
    assert_int_equal(sb_seal_open_b64(k_key, "grant", "g_abd", b64, out, sizeof out), -1);
    assert_int_equal(sb_seal_open_b64(k_key, "key", "g_abc", b64, out, sizeof out), -1);
    /* no room for the plaintext and its NUL; bad base64; tampered */
    assert_int_equal(sb_seal_open_b64(k_key, "grant", "g_abc", b64, out, strlen(k_plain)), -1);
    assert_int_equal(sb_seal_open_b64(k_key, "grant", "g_abc", "!!!", out, sizeof out), -1);
    b64[5] = b64[5] == 'A' ? 'B' : 'A';
    assert_int_equal(sb_seal_open_b64(k_key, "grant", "g_abc", b64, out, sizeof out), -1);
    free(b64);
    /* an empty secret seals and opens; a record name too long for the associated data does not */
    b64 = sb_seal_b64(k_key, "grant", "g_empty", "", 0);
    assert_non_null(b64);
    assert_int_equal(sb_seal_open_b64(k_key, "grant", "g_empty", b64, out, sizeof out), 0);
    assert_string_equal(out, "");
    free(b64);
    char *longrec = malloc(SB_SEAL_MAX_AD + 1);
    assert_non_null(longrec);
    memset(longrec, 'r', SB_SEAL_MAX_AD);
    longrec[SB_SEAL_MAX_AD] = 0;
    assert_null(sb_seal_b64(k_key, "grant", longrec, k_plain, strlen(k_plain)));
    assert_int_equal(sb_seal_open_b64(k_key, "grant", longrec, "AAAA", out, sizeof out), -1);
    free(longrec);
    assert_null(sb_seal_b64(k_key, NULL, "x", k_plain, 1));
    assert_int_equal(sb_seal_open_b64(k_key, "grant", "x", NULL, out, sizeof out), -1);
}

static void test_bad_args(void **state)
{
    (void)state;
    uint8_t sealed[256], out[256];
    size_t slen = 0, olen = 0;
    assert_int_equal(sb_seal_seal(NULL, NULL, 0, "a", 1, sealed, sizeof sealed, &slen), -1);
    assert_int_equal(sb_seal_seal(k_key, NULL, 0, "a", 1, NULL, sizeof sealed, &slen), -1);
    assert_int_equal(sb_seal_seal(k_key, NULL, 0, "a", 1, sealed, sizeof sealed, NULL), -1);
    assert_int_equal(sb_seal_seal(k_key, NULL, 0, NULL, 1, sealed, sizeof sealed, &slen), -1);
    assert_int_equal(sb_seal_seal(k_key, NULL, 3, "a", 1, sealed, sizeof sealed, &slen), -1);
    /* Output buffer one byte short. */
    assert_int_equal(
        sb_seal_seal(k_key, NULL, 0, "abc", 3, sealed, 3 + SB_SEAL_OVERHEAD - 1, &slen), -1);
    assert_int_equal(sb_seal_seal(k_key, NULL, 0, "abc", 3, sealed, sizeof sealed, &slen), 0);
    assert_int_equal(sb_seal_open(k_key, NULL, 0, sealed, slen, out, 2, &olen), -1);
    assert_int_equal(sb_seal_open(k_key, NULL, 0, NULL, slen, out, sizeof out, &olen), -1);
    assert_int_equal(sb_seal_open(NULL, NULL, 0, sealed, slen, out, sizeof out, &olen), -1);
    assert_int_equal(sb_seal_open(k_key, NULL, 0, sealed, slen, out, sizeof out, NULL), -1);
    /* Unknown version byte. */
    sealed[0] = 2;
    assert_int_equal(sb_seal_open(k_key, NULL, 0, sealed, slen, out, sizeof out, &olen), -1);
}

/* sb_seal_derive_key = HMAC-SHA256(secret, "signbridge seal key v1"): a known answer (computed
 * independently with Python's hmac module for the secret 00 01 .. 1f). */
static void test_derive_key(void **state)
{
    (void)state;
    static const uint8_t want[32] = {
        0x21, 0x4c, 0x4d, 0x8c, 0xc1, 0x09, 0xd7, 0x2c, 0x10, 0x35, 0xe2, 0x31, 0x48, 0x55, 0x2a, 0x0a,
        0xa5, 0x60, 0x82, 0x99, 0x2b, 0x5b, 0x4e, 0x72, 0xeb, 0xac, 0x40, 0x18, 0xd4, 0xf5, 0xd4, 0x8c};
    unsigned char secret[32];
    for (int i = 0; i < 32; i++) secret[i] = (unsigned char)i;
    uint8_t key[SB_SEAL_KEY_LEN];
    assert_int_equal(sb_seal_derive_key(secret, sizeof secret, key), 0);
    assert_memory_equal(key, want, sizeof want);
    /* a key that seals and opens */
    uint8_t sealed[64], out[64];
    size_t slen = 0, olen = 0;
    assert_int_equal(sb_seal_seal(key, "a", 1, "xyz", 3, sealed, sizeof sealed, &slen), 0);
    assert_int_equal(sb_seal_open(key, "a", 1, sealed, slen, out, sizeof out, &olen), 0);
    assert_int_equal(sb_seal_derive_key(NULL, 32, key), -1);
    assert_int_equal(sb_seal_derive_key(secret, 0, key), -1);
    assert_int_equal(sb_seal_derive_key(secret, 32, NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),        cmocka_unit_test(test_large),
        cmocka_unit_test(test_tamper_every_byte), cmocka_unit_test(test_wrong_ad_and_key),
        cmocka_unit_test(test_bad_args),          cmocka_unit_test(test_derive_key),
        cmocka_unit_test(test_record_b64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
