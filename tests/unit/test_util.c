/* Unit tests for core helpers: sb_util (encodings, UTF-8, numbers, time), sb_buf, sb_arena,
 * sb_loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "core/sb_arena.h"
#include "core/sb_buf.h"
#include "core/sb_gzip.h"
#include "core/sb_json.h"
#include "core/sb_jw.h"
#include "core/sb_later.h"
#include "core/sb_log.h"
#include "core/sb_loop.h"
#include "core/sb_util.h"

/* ---------------------------------------------------------------------------------------------
 * Helpers
 */

/* Run fn in a forked child (for inputs that may crash a buggy implementation: the crash must not
 * take the rest of the suite with it). 1 if the child exited with status 0. */
static int child_ok(void (*fn)(void))
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return 0;
    if (pid == 0) {
        fn();
        _exit(0);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* ---------------------------------------------------------------------------------------------
 * base64 / base64url
 */

static const struct {
    const char *raw, *std, *url;
} k_rfc4648[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

static void test_base64_rfc4648_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof k_rfc4648 / sizeof k_rfc4648[0]; i++) {
        const char *raw = k_rfc4648[i].raw;
        size_t n = strlen(raw);
        char out[32];
        memset(out, 'X', sizeof out);
        assert_int_equal(sb_base64_len(n), strlen(k_rfc4648[i].std));
        size_t w = sb_base64_encode((const unsigned char *)raw, n, out);
        assert_int_equal(w, strlen(k_rfc4648[i].std));
        assert_string_equal(out, k_rfc4648[i].std);

        memset(out, 'X', sizeof out);
        assert_int_equal(sb_base64url_len(n), strlen(k_rfc4648[i].url));
        w = sb_base64url_encode((const unsigned char *)raw, n, out);
        assert_int_equal(w, strlen(k_rfc4648[i].url));
        assert_string_equal(out, k_rfc4648[i].url);

        /* decode both forms (padding optional) */
        unsigned char dec[32];
        long d = sb_base64_decode(k_rfc4648[i].std, strlen(k_rfc4648[i].std), dec, sizeof dec);
        assert_int_equal(d, (long)n);
        assert_memory_equal(dec, raw, n);
        d = sb_base64_decode(k_rfc4648[i].url, strlen(k_rfc4648[i].url), dec, sizeof dec);
        assert_int_equal(d, (long)n);
        assert_memory_equal(dec, raw, n);
    }
}

static void test_base64_alphabets(void **state)
{
    (void)state;
    /* 0xfb 0xff 0xbf exercises both alphabet-specific characters */
    const unsigned char in[] = {0xfb, 0xff, 0xbf, 0xfe};
    char out[16];
    sb_base64_encode(in, sizeof in, out);
    assert_string_equal(out, "+/+//g==");
    sb_base64url_encode(in, sizeof in, out);
    assert_string_equal(out, "-_-__g");
    unsigned char dec[8];
    assert_int_equal(sb_base64_decode("+/+//g==", 8, dec, sizeof dec), 4);
    assert_memory_equal(dec, in, 4);
    assert_int_equal(sb_base64_decode("-_-__g", 6, dec, sizeof dec), 4);
    assert_memory_equal(dec, in, 4);
}

static void test_base64_round_trip_all_lengths(void **state)
{
    (void)state;
    unsigned char in[300], dec[300];
    char enc[512];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (unsigned char)(i * 37 + 11);
    assert_int_equal(sb_random_bytes(in + 200, 100), 0);
    for (size_t n = 0; n <= sizeof in; n++) {
        size_t w = sb_base64url_encode(in, n, enc);
        assert_int_equal(w, sb_base64url_len(n));
        assert_int_equal(enc[w], '\0');
        for (size_t k = 0; k < w; k++)
            assert_null(strchr("+/=", enc[k]));
        long d = sb_base64_decode(enc, w, dec, sizeof dec);
        assert_int_equal(d, (long)n);
        assert_memory_equal(dec, in, n);

        w = sb_base64_encode(in, n, enc);
        assert_int_equal(w, sb_base64_len(n));
        assert_int_equal(w % 4, 0);
        d = sb_base64_decode(enc, w, dec, sizeof dec);
        assert_int_equal(d, (long)n);
        assert_memory_equal(dec, in, n);
    }
}

static void test_base64_decode_rejects_bad_input(void **state)
{
    (void)state;
    unsigned char dec[64];
    static const char *const bad[] = {
        "Z",        /* one character cannot encode a byte */
        "Zm9vY",    /* 4k+1 characters */
        "Zm9v!A==", /* character outside both alphabets */
        "Zm 9v",    /* whitespace */
        "Zm=9v",    /* padding in the middle */
        "Zh==",     /* non-canonical trailing bits ("Zg==" is canonical) */
        "Zm9=",     /* non-canonical trailing bits ("Zm8=" is canonical) */
        "Zm9v\n",   /* newline */
        "Zm9v.A",   /* '.' is in neither alphabet */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        long d = sb_base64_decode(bad[i], strlen(bad[i]), dec, sizeof dec);
        if (d != -1) fail_msg("decode accepted \"%s\" (returned %ld)", bad[i], d);
    }
    /* an embedded NUL is not base64 */
    assert_int_equal(sb_base64_decode("Zm\0v", 4, dec, sizeof dec), -1);
}

static void test_base64_decode_rejects_bad_padding(void **state)
{
    (void)state;
    unsigned char dec[64];
    /* No valid encoding ends in more than two '=', and a complete 4-character group never takes
     * padding: these are malformed even when padding is optional. */
    static const char *const bad[] = {"Zg===", "Zg=====", "Zm9v=", "Zm9v==", "====", "="};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        long d = sb_base64_decode(bad[i], strlen(bad[i]), dec, sizeof dec);
        if (d != -1) fail_msg("decode accepted malformed padding \"%s\" (returned %ld)", bad[i], d);
    }
}

static void test_base64_decode_output_bound(void **state)
{
    (void)state;
    unsigned char dec[8];
    memset(dec, 0xAA, sizeof dec);
    /* "foobar" needs 6 bytes */
    assert_int_equal(sb_base64_decode("Zm9vYmFy", 8, dec, 5), -1);
    assert_int_equal(dec[5], 0xAA); /* nothing written past outcap */
    assert_int_equal(sb_base64_decode("Zm9vYmFy", 8, dec, 6), 6);
    assert_memory_equal(dec, "foobar", 6);
    assert_int_equal(sb_base64_decode("Zg", 2, dec, 0), -1);
    assert_int_equal(sb_base64_decode("", 0, dec, 0), 0);
}

/* The decoder as it was, a character at a time: the reference the table decoder must agree with. */
static long ref_base64_decode(const char *in, size_t n, unsigned char *out, size_t outcap)
{
    size_t pad = 0;
    while (n > 0 && in[n - 1] == '=')
        n--, pad++;
    if (n % 4 == 1) return -1;
    if (pad && (pad > 2 || n % 4 == 0 || (n + pad) % 4 != 0)) return -1;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)in[i], v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+' || c == '-')
            v = 62;
        else if (c == '/' || c == '_')
            v = 63;
        else
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= outcap) return -1;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) return -1;
    return (long)o;
}

/* Against the reference: every length to 40, every output bound around the decoded length, one
 * character of every value (all 256) at every position, and random mixes of both alphabets with
 * padding and a stray character now and then. */
static void test_base64_decode_matches_reference(void **state)
{
    (void)state;
    static const char alpha[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_";
    unsigned char got[64], want[64];
    char in[48];
    unsigned seed = 12345;
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)(round % 41);
        for (size_t k = 0; k < n; k++) {
            seed = seed * 1103515245u + 12345u;
            in[k] = alpha[(seed >> 16) % 66];
        }
        seed = seed * 1103515245u + 12345u;
        if (n && (seed >> 16) % 4 == 0) in[n - 1] = '='; /* padding, valid or not */
        if (n > 1 && (seed >> 16) % 8 == 1) in[n - 2] = '=';
        if (n && (seed >> 16) % 16 == 2) in[(seed >> 20) % n] = (char)((seed >> 8) & 0xff);
        for (size_t cap = 0; cap <= 32; cap += (cap + 3 < n * 3 / 4 ? 7 : 1)) {
            memset(got, 0, sizeof got);
            memset(want, 0, sizeof want);
            long g = sb_base64_decode(in, n, got, cap), w = ref_base64_decode(in, n, want, cap);
            if (g != w)
                fail_msg("\"%.*s\" cap %zu: decoded %ld, reference %ld", (int)n, in, cap, g, w);
            if (w > 0) assert_memory_equal(got, want, (size_t)w);
        }
    }
    /* each byte value at each position of a valid 8-character text, and of 6 and 7 */
    for (size_t n = 6; n <= 8; n++)
        for (size_t at = 0; at < n; at++)
            for (int c = 0; c < 256; c++) {
                memcpy(in, "Zm9vYmFy", 8);
                in[at] = (char)c;
                long g = sb_base64_decode(in, n, got, sizeof got);
                long w = ref_base64_decode(in, n, want, sizeof want);
                if (g != w)
                    fail_msg("byte %d at %zu of %zu: decoded %ld, reference %ld", c, at, n, g, w);
                if (w > 0) assert_memory_equal(got, want, (size_t)w);
            }
}

/* ---------------------------------------------------------------------------------------------
 * Small helpers: hex, random, ct_equal, strlcpy, strcaseeq
 */

static void test_hex_and_random(void **state)
{
    (void)state;
    const unsigned char in[] = {0x00, 0x01, 0xab, 0xff};
    char out[9];
    sb_hex_encode(in, sizeof in, out);
    assert_string_equal(out, "0001abff");

    unsigned char a[32], b[32];
    assert_int_equal(sb_random_bytes(a, sizeof a), 0);
    assert_int_equal(sb_random_bytes(b, sizeof b), 0);
    assert_true(memcmp(a, b, sizeof a) != 0);
    assert_int_equal(sb_random_bytes(a, 0), 0);
}

static void test_u64_dec(void **state)
{
    (void)state;
    static const uint64_t v[] = {0, 1, 9, 10, 99, 100, 4242, 1795500100, 999999999999999ull,
                                 18446744073709551615ull};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        char want[32], buf[24];
        snprintf(want, sizeof want, "%llu", (unsigned long long)v[i]);
        char *e = buf + sizeof buf, *p = sb_u64_dec(v[i], e);
        assert_int_equal((size_t)(e - p), strlen(want));
        assert_memory_equal(p, want, strlen(want));
    }
}

static void test_ct_equal(void **state)
{
    (void)state;
    assert_int_equal(sb_ct_equal("abc", 3, "abc", 3), 1);
    assert_int_equal(sb_ct_equal("abc", 3, "abd", 3), 0);
    assert_int_equal(sb_ct_equal("abc", 3, "xbc", 3), 0);
    assert_int_equal(sb_ct_equal("abc", 3, "abcd", 4), 0); /* prefix is not equal */
    assert_int_equal(sb_ct_equal("abcd", 4, "abc", 3), 0);
    assert_int_equal(sb_ct_equal("", 0, "", 0), 1);
    assert_int_equal(sb_ct_equal("", 0, "a", 1), 0);
    const unsigned char x[] = {0, 1, 2, 0x80}, y[] = {0, 1, 2, 0x81};
    assert_int_equal(sb_ct_equal(x, 4, x, 4), 1);
    assert_int_equal(sb_ct_equal(x, 4, y, 4), 0);
    assert_int_equal(sb_ct_equal(x, 3, y, 3), 1);
    /* eight bytes a step, then the tail: every length to 40, every position of a difference,
     * every bit of it, and at unaligned starts */
    unsigned char p[48], q[48];
    for (size_t i = 0; i < sizeof p; i++) p[i] = (unsigned char)(i * 37 + 11);
    for (size_t off = 0; off < 3; off++)
        for (size_t n = 0; n <= 40; n++) {
            memcpy(q, p, sizeof q);
            assert_int_equal(sb_ct_equal(p + off, n, q + off, n), 1);
            assert_int_equal(sb_ct_equal(p + off, n, q + off, n + 1), 0);
            for (size_t at = 0; at < n; at++)
                for (int bit = 0; bit < 8; bit++) {
                    q[off + at] ^= (unsigned char)(1u << bit);
                    assert_int_equal(sb_ct_equal(p + off, n, q + off, n), 0);
                    q[off + at] ^= (unsigned char)(1u << bit);
                }
        }
}

static void test_strlcpy_strcaseeq(void **state)
{
    (void)state;
    char buf[6];
    memset(buf, 'X', sizeof buf);
    assert_int_equal(sb_strlcpy(buf, "hello world", sizeof buf), 11);
    assert_string_equal(buf, "hello");
    assert_int_equal(sb_strlcpy(buf, "hi", sizeof buf), 2);
    assert_string_equal(buf, "hi");
    buf[0] = 'Q';
    assert_int_equal(sb_strlcpy(buf, "abc", 0), 3);
    assert_int_equal(buf[0], 'Q');
    assert_int_equal(sb_strlcpy(buf, "abc", 1), 3);
    assert_string_equal(buf, "");

    assert_true(sb_strcaseeq("Content-Type", "content-type"));
    assert_false(sb_strcaseeq("Content-Type", "content-typ"));
}

/* ---------------------------------------------------------------------------------------------
 * UTF-8
 */

#define U8(s) (s), (sizeof(s) - 1)

static void test_utf8_valid_sequences(void **state)
{
    (void)state;
    assert_true(sb_utf8_valid(U8("")));
    assert_true(sb_utf8_valid(U8("plain ascii\n\t~")));
    assert_true(sb_utf8_valid(U8("a\0b")));             /* NUL is a valid code point when counted */
    assert_true(sb_utf8_valid(U8("h\xC3\xA9llo")));     /* U+00E9 */
    assert_true(sb_utf8_valid(U8("\xC2\x80")));         /* U+0080, smallest 2-byte */
    assert_true(sb_utf8_valid(U8("\xDF\xBF")));         /* U+07FF */
    assert_true(sb_utf8_valid(U8("\xE0\xA0\x80")));     /* U+0800, smallest 3-byte */
    assert_true(sb_utf8_valid(U8("\xE2\x82\xAC")));     /* U+20AC euro */
    assert_true(sb_utf8_valid(U8("\xED\x9F\xBF")));     /* U+D7FF, below surrogates */
    assert_true(sb_utf8_valid(U8("\xEE\x80\x80")));     /* U+E000, above surrogates */
    assert_true(sb_utf8_valid(U8("\xEF\xBF\xBF")));     /* U+FFFF */
    assert_true(sb_utf8_valid(U8("\xF0\x90\x80\x80"))); /* U+10000, smallest 4-byte */
    assert_true(sb_utf8_valid(U8("\xF0\x9D\x84\x9E"))); /* U+1D11E */
    assert_true(sb_utf8_valid(U8("\xF4\x8F\xBF\xBF"))); /* U+10FFFF, the largest */
    assert_true(sb_utf8_valid(U8("\xE6\x97\xA5\xE6\x9C\xAC\xF0\x9F\x98\x80 ok")));
}

static void test_utf8_invalid_sequences(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t n;
        const char *why;
    } bad[] = {
        {U8("\xC0\x80"), "overlong NUL (2 bytes)"},
        {U8("\xC1\xBF"), "overlong U+007F (2 bytes)"},
        {U8("\xE0\x80\x80"), "overlong NUL (3 bytes)"},
        {U8("\xE0\x9F\xBF"), "overlong U+07FF (3 bytes)"},
        {U8("\xF0\x80\x80\x80"), "overlong NUL (4 bytes)"},
        {U8("\xF0\x8F\xBF\xBF"), "overlong U+FFFF (4 bytes)"},
        {U8("\xED\xA0\x80"), "surrogate U+D800"},
        {U8("\xED\xBF\xBF"), "surrogate U+DFFF"},
        {U8("\xED\xA0\xBD\xED\xB8\x80"), "CESU-8 surrogate pair"},
        {U8("\xF4\x90\x80\x80"), "U+110000"},
        {U8("\xF5\x80\x80\x80"), "lead byte F5"},
        {U8("\xF7\xBF\xBF\xBF"), "U+1FFFFF"},
        {U8("\xF8\x88\x80\x80\x80"), "5-byte form"},
        {U8("\xFC\x84\x80\x80\x80\x80"), "6-byte form"},
        {U8("\xFE"), "byte FE"},
        {U8("\xFF"), "byte FF"},
        {U8("\x80"), "lone continuation"},
        {U8("a\xBF"), "lone continuation after ascii"},
        {U8("\xC3"), "truncated 2-byte"},
        {U8("\xE2\x82"), "truncated 3-byte"},
        {U8("\xF0\x9D\x84"), "truncated 4-byte"},
        {U8("ok\xF0"), "truncated 4-byte at end"},
        {U8("\xC3\x41"), "bad continuation"},
        {U8("\xE2\x28\xA1"), "bad continuation in 3-byte"},
        {U8("\xF0\x9D\x84\x20"), "bad last continuation"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (sb_utf8_valid(bad[i].s, bad[i].n)) fail_msg("accepted: %s", bad[i].why);
    /* the length bound is respected: a valid sequence cut by n is invalid */
    assert_false(sb_utf8_valid("\xC3\xA9", 1));
    assert_false(sb_utf8_valid("\xF0\x9D\x84\x9E", 3));
    assert_true(sb_utf8_valid("ab\xC3\xA9", 2));
}

/* ---------------------------------------------------------------------------------------------
 * sb_parse_i64
 */

static void test_parse_i64(void **state)
{
    (void)state;
    int64_t v = 0;
    assert_int_equal(sb_parse_i64("0", 0, 10, &v), 0);
    assert_true(v == 0);
    assert_int_equal(sb_parse_i64("10", 0, 10, &v), 0);
    assert_true(v == 10);
    assert_int_equal(sb_parse_i64("-5", -10, 10, &v), 0);
    assert_true(v == -5);
    assert_int_equal(sb_parse_i64("+7", 0, 10, &v), 0);
    assert_true(v == 7);
    assert_int_equal(sb_parse_i64("007", 0, 10, &v), 0);
    assert_true(v == 7);
    assert_int_equal(sb_parse_i64("9223372036854775807", INT64_MIN, INT64_MAX, &v), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(sb_parse_i64("-9223372036854775808", INT64_MIN, INT64_MAX, &v), 0);
    assert_true(v == INT64_MIN);

    /* bounds */
    v = 1234;
    assert_int_equal(sb_parse_i64("11", 0, 10, &v), -1);
    assert_int_equal(sb_parse_i64("-1", 0, 10, &v), -1);
    assert_int_equal(sb_parse_i64("9223372036854775808", INT64_MIN, INT64_MAX, &v), -1);
    assert_int_equal(sb_parse_i64("-9223372036854775809", INT64_MIN, INT64_MAX, &v), -1);
    assert_int_equal(sb_parse_i64("99999999999999999999999", INT64_MIN, INT64_MAX, &v), -1);

    /* junk and empty */
    static const char *const junk[] = {"",    "-",   "+",   " 1",  "1 ",    "1a",  "a1",  "0x10",
                                       "1e3", "1.0", "--1", "+-1", "1,000", "\t5", "5\n", "１"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        if (sb_parse_i64(junk[i], INT64_MIN, INT64_MAX, &v) != -1)
            fail_msg("accepted \"%s\"", junk[i]);
    assert_int_equal(sb_parse_i64(NULL, 0, 10, &v), -1);
    assert_true(v == 1234); /* untouched on failure */
}

/* ---------------------------------------------------------------------------------------------
 * RFC 3339
 */

static int64_t parse_ok(const char *s)
{
    int64_t ms = INT64_MIN;
    if (sb_parse_rfc3339(s, &ms) != 0) fail_msg("rejected valid date-time \"%s\"", s);
    return ms;
}

static void test_rfc3339_parse_valid(void **state)
{
    (void)state;
    assert_true(parse_ok("1970-01-01T00:00:00Z") == 0);
    assert_true(parse_ok("2000-01-01T00:00:00Z") == 946684800000LL);
    assert_true(parse_ok("2000-01-01t00:00:00z") == 946684800000LL); /* RFC 3339 §5.6 note */
    assert_true(parse_ok("1969-12-31T23:59:59Z") == -1000);
    assert_true(parse_ok("2026-11-22T08:00:00.000Z") == 1795334400000LL);
    /* offsets */
    assert_true(parse_ok("2000-01-01T01:00:00+01:00") == 946684800000LL);
    assert_true(parse_ok("1999-12-31T19:00:00-05:00") == 946684800000LL);
    assert_true(parse_ok("2000-01-01T05:30:00+05:30") == 946684800000LL);
    assert_true(parse_ok("2000-01-01T00:00:00+00:00") == 946684800000LL);
    assert_true(parse_ok("2000-01-01T00:00:00-00:00") == 946684800000LL);
    assert_true(parse_ok("1999-12-31T10:15:00-13:45") == 946684800000LL);
    /* fractions */
    assert_true(parse_ok("2000-01-01T00:00:00.5Z") == 946684800500LL);
    assert_true(parse_ok("2000-01-01T00:00:00.05Z") == 946684800050LL);
    assert_true(parse_ok("2000-01-01T00:00:00.123Z") == 946684800123LL);
    assert_true(parse_ok("2000-01-01T00:00:00.123456789Z") == 946684800123LL);
    assert_true(parse_ok("2000-01-01T01:00:00.250+01:00") == 946684800250LL);
    /* leap years */
    assert_true(parse_ok("2000-02-29T00:00:00Z") == 951782400000LL); /* divisible by 400 */
    assert_true(parse_ok("2024-02-29T12:00:00Z") == 1709208000000LL);
    assert_true(parse_ok("2023-03-01T00:00:00Z") - parse_ok("2023-02-28T00:00:00Z") == 86400000);
    assert_true(parse_ok("2024-03-01T00:00:00Z") - parse_ok("2024-02-28T00:00:00Z") ==
                2 * 86400000LL);
    /* month lengths */
    assert_true(parse_ok("2021-01-31T23:59:59Z") + 1000 == parse_ok("2021-02-01T00:00:00Z"));
    assert_true(parse_ok("2021-04-30T00:00:00Z") + 86400000 == parse_ok("2021-05-01T00:00:00Z"));
    assert_true(parse_ok("2021-12-31T00:00:00Z") + 86400000 == parse_ok("2022-01-01T00:00:00Z"));
    /* a leap second is a valid RFC 3339 time */
    int64_t ms;
    assert_int_equal(sb_parse_rfc3339("2016-12-31T23:59:60Z", &ms), 0);
}

static void test_rfc3339_parse_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "2000-01-01",
        "2000-01-01T00:00:00",       /* no offset */
        "2000-01-01T00:00Z",         /* no seconds */
        "2000-01-01T00:00:00+0100",  /* offset without colon */
        "2000-01-01T00:00:00+01",    /* short offset */
        "2000-01-01T00:00:00+24:00", /* offset hour */
        "2000-01-01T00:00:00+01:60", /* offset minute */
        "2000-01-01T00:00:00.Z",     /* empty fraction */
        "2000-01-01T00:00:00ZZ",     /* trailing junk */
        "2000-01-01T00:00:00Z ",
        "2000-01-01X00:00:00Z",
        "2000/01/01T00:00:00Z",
        "2000-1-01T00:00:00Z",
        "20000-01-01T00:00:00Z",
        "2000-00-01T00:00:00Z", /* month 0 */
        "2000-13-01T00:00:00Z", /* month 13 */
        "2000-01-00T00:00:00Z", /* day 0 */
        "2000-01-32T00:00:00Z",
        "2000-04-31T00:00:00Z", /* April has 30 days */
        "2023-02-29T00:00:00Z", /* not a leap year */
        "1900-02-29T00:00:00Z", /* divisible by 100, not by 400 */
        "2024-02-30T00:00:00Z",
        "2000-01-01T24:00:00Z",
        "2000-01-01T23:60:00Z",
        "2000-01-01T23:59:61Z",
        "2000-01-01T-1:00:00Z",
        "2000-01-01T00:00:00.1a2Z",
        "+2000-01-01T00:00:00Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 42;
        if (sb_parse_rfc3339(bad[i], &ms) != -1) fail_msg("accepted \"%s\"", bad[i]);
    }
}

static void test_rfc3339_format_and_round_trip(void **state)
{
    (void)state;
    char out[32];
    sb_rfc3339(0, out, sizeof out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    sb_rfc3339(951782400123ULL, out, sizeof out);
    assert_string_equal(out, "2000-02-29T00:00:00.123Z");
    sb_rfc3339(1795334400000ULL, out, sizeof out);
    assert_string_equal(out, "2026-11-22T08:00:00.000Z");
    sb_rfc3339(4102444799999ULL, out, sizeof out);
    assert_string_equal(out, "2099-12-31T23:59:59.999Z");

    /* the documented minimum buffer (25 bytes) holds the whole string */
    char exact[25];
    sb_rfc3339(1709208000007ULL, exact, sizeof exact);
    assert_string_equal(exact, "2024-02-29T12:00:00.007Z");
    /* a short buffer is truncated but terminated */
    char small[11];
    memset(small, 'X', sizeof small);
    sb_rfc3339(0, small, sizeof small);
    assert_string_equal(small, "1970-01-01");

    /* round trips, including now */
    const uint64_t samples[] = {0,
                                1,
                                999,
                                86399999,
                                951782400000ULL,
                                1709208000123ULL,
                                sb_wall_ms(),
                                253402300799999ULL /* 9999-12-31T23:59:59.999Z */};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        sb_rfc3339(samples[i], out, sizeof out);
        int64_t ms = -1;
        assert_int_equal(sb_parse_rfc3339(out, &ms), 0);
        assert_true((uint64_t)ms == samples[i]);
    }
}

static void test_rfc3339_matches_gmtime(void **state)
{
    (void)state;
    /* the hand-rolled calendar agrees with gmtime_r + snprintf everywhere: every third day of
     * 1970-2216 at a varying time of day, and pseudo-random instants up to year 9999 */
    char a[64], b[64];
    uint64_t x = 88172645463325252ULL;
    for (uint64_t i = 0; i < 30000 + 50000; i++) {
        uint64_t ms;
        if (i < 30000) {
            ms = i * 3 * 86400000ULL + (i * 7919ULL) % 86400000ULL;
        } else {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ms = x % 253402300800000ULL;
        }
        sb_rfc3339(ms, a, sizeof a);
        time_t t = (time_t)(ms / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        snprintf(b, sizeof b, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (unsigned)(ms % 1000));
        if (strcmp(a, b) != 0) fail_msg("%llu: %s vs %s", (unsigned long long)ms, a, b);
    }
}

static void test_clocks(void **state)
{
    (void)state;
    uint64_t a = sb_mono_ms(), au = sb_mono_us();
    sleep_ms(20);
    uint64_t b = sb_mono_ms(), bu = sb_mono_us();
    assert_true(b >= a + 15);
    assert_true(bu >= au + 15000);
    /* wall clock is after 2020 */
    assert_true(sb_wall_ms() > 1577836800000ULL);
}

/* ---------------------------------------------------------------------------------------------
 * sb_buf
 */

static void test_buf_append_max(void **state)
{
    (void)state;
    sb_buf b;
    sb_buf_init(&b, 10);
    assert_null(b.data);
    assert_int_equal(sb_buf_append(&b, "hello", 5), 0);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "hello");
    /* 5 + 6 > 10: refused, buffer unchanged */
    assert_int_equal(sb_buf_append(&b, "world!", 6), SB_BUF_ETOOBIG);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "hello");
    assert_int_equal(sb_buf_puts(&b, "world!"), SB_BUF_ETOOBIG);
    assert_string_equal(b.data, "hello");
    /* exactly up to the maximum is fine */
    assert_int_equal(sb_buf_puts(&b, "world"), 0);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "helloworld");
    assert_int_equal(sb_buf_append(&b, "", 0), 0);
    assert_int_equal(sb_buf_append(&b, "x", 1), SB_BUF_ETOOBIG);
    assert_int_equal(sb_buf_printf(&b, "%d", 1), SB_BUF_ETOOBIG);
    assert_string_equal(b.data, "helloworld");
    assert_true(b.cap <= b.max + 1);

    sb_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(sb_buf_puts(&b, "0123456789"), 0);
    sb_buf_free(&b);
    assert_null(b.data);

    /* a zero maximum still accepts nothing, without crashing */
    sb_buf_init(&b, 0);
    assert_int_equal(sb_buf_append(&b, "", 0), 0);
    assert_int_equal(sb_buf_append(&b, "a", 1), SB_BUF_ETOOBIG);
    sb_buf_free(&b);
}

static void test_buf_json_string(void **state)
{
    (void)state;
    sb_buf b;
    sb_buf_init(&b, 4096);
    assert_int_equal(sb_buf_json_string(&b, ""), 0);
    assert_string_equal(b.data, "\"\"");
    sb_buf_reset(&b);
    assert_int_equal(sb_buf_json_string(&b, "{\"a\":\"x\\y\"}\n\r\t\b\f\x01\x1f\x7f h\xc3\xa9"), 0);
    assert_string_equal(b.data,
                        "\"{\\\"a\\\":\\\"x\\\\y\\\"}\\n\\r\\t\\b\\f\\u0001\\u001f\x7f h\xc3\xa9\"");
    /* every control character, escaped, and nothing else changed */
    char all[64];
    for (int i = 1; i < 64; i++) all[i - 1] = (char)i;
    all[63] = '\0';
    sb_buf_reset(&b);
    assert_int_equal(sb_buf_json_string(&b, all), 0);
    assert_string_equal(b.data,
                        "\"\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r"
                        "\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017"
                        "\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f !\\\"#$%&'()*+,-./"
                        "0123456789:;<=>?\"");
    sb_buf_free(&b);
    /* all or nothing at the maximum: "ab\"" needs 6 bytes with its quotes */
    sb_buf_init(&b, 8);
    assert_int_equal(sb_buf_puts(&b, "xyz"), 0);
    assert_int_equal(sb_buf_json_string(&b, "ab\""), SB_BUF_ETOOBIG);
    assert_string_equal(b.data, "xyz");
    assert_int_equal(sb_buf_json_string(&b, "abc"), 0);
    assert_string_equal(b.data, "xyz\"abc\"");
    sb_buf_free(&b);
    /* a length instead of a NUL: a NUL among the bytes is escaped, short and long */
    sb_buf_init(&b, 1 << 20);
    assert_int_equal(sb_buf_json_stringn(&b, "a\0\"b", 4), 0);
    assert_int_equal(b.len, 12);
    assert_memory_equal(b.data, "\"a\\u0000\\\"b\"", 12);
    char big[400];
    memset(big, 'x', sizeof big);
    big[200] = '\0';
    sb_buf_reset(&b);
    assert_int_equal(sb_buf_json_stringn(&b, big, sizeof big), 0);
    assert_int_equal(b.len, sizeof big + 5 + 2);
    assert_memory_equal(b.data + 201, "\\u0000", 6);
    assert_int_equal(sb_buf_json_stringn(&b, big, 0), 0); /* "" */
    assert_int_equal(b.len, sizeof big + 5 + 4);
    sb_buf_free(&b);
}

/* The escaper against a byte-by-byte reference, on strings of every length up to 600 (the short
 * path; past 256 bytes, the one-pass path of a string without control characters -- quotes and
 * backslashes only, the second set -- and the sized one; blocks of 16 with zero to sixteen
 * escapes, the last 32 bytes) at densities from none to every byte, with the exact maximum (all
 * or nothing) checked too. */
static size_t ref_escape(const unsigned char *s, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        const char *two = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                          : c == '\t' ? "\\t" : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
        if (two) {
            memcpy(out + o, two, 2);
            o += 2;
        } else if (c < 0x20) {
            out[o++] = '\\', out[o++] = 'u', out[o++] = '0', out[o++] = '0';
            out[o++] = hx[c >> 4], out[o++] = hx[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
    return o;
}

static void escapes_vs_reference(const unsigned char *specials, size_t nspecials)
{
    static char want[600 * 6 + 8];
    unsigned char s[601];
    unsigned seed = 12345;
    for (size_t n = 0; n <= 600; n += (n < 80 ? 1 : 7)) {
        for (unsigned density = 0; density <= 16; density += (density < 4 ? 1 : 4)) {
            for (size_t i = 0; i < n; i++) {
                seed = seed * 1103515245u + 12345u;
                unsigned r = (seed >> 16) & 15;
                s[i] = r < density ? specials[(seed >> 8) % nspecials]
                                   : (unsigned char)(' ' + 1 + (seed >> 20) % 90);
                if (s[i] == '"' && r >= density) s[i] = 'q';
                if (s[i] == '\\' && r >= density) s[i] = 'b';
            }
            s[n] = '\0';
            size_t wl = ref_escape(s, n, want);
            sb_buf b;
            sb_buf_init(&b, (size_t)1 << 20);
            assert_int_equal(sb_buf_puts(&b, "x"), 0);
            assert_int_equal(sb_buf_json_string(&b, (const char *)s), 0);
            assert_int_equal(b.len, wl + 1);
            assert_memory_equal(b.data + 1, want, wl);
            sb_buf_free(&b);
            /* exactly enough room (no slack past the text), then one byte short */
            sb_buf_init(&b, wl);
            assert_int_equal(sb_buf_json_string(&b, (const char *)s), 0);
            assert_memory_equal(b.data, want, wl);
            sb_buf_free(&b);
            sb_buf_init(&b, wl - 1);
            assert_int_equal(sb_buf_json_string(&b, (const char *)s), SB_BUF_ETOOBIG);
            sb_buf_free(&b);
        }
    }
}

static void test_buf_json_string_vs_reference(void **state)
{
    (void)state;
    static const unsigned char all[] = {'"', '\\', '\n', '\t', 0x01, 0x1f, '\b'};
    static const unsigned char no_ctl[] = {'"', '\\'};
    /* both block paths: SSSE3's shuffle (where the CPU has it) and the step per escape */
    int shuffle = sb_buf_escape_shuffle(1);
    for (int pass = 0; pass < 2; pass++) {
        escapes_vs_reference(all, sizeof all);
        escapes_vs_reference(no_ctl, sizeof no_ctl);
        sb_buf_escape_shuffle(0);
    }
    assert_int_equal(sb_buf_escape_shuffle(1), shuffle);
}

/* sb_json_parse and sb_json_parse_in (which parses the arena's copy of the text in place) accept
 * and build exactly what cJSON_ParseWithLength does, and leave the text as it was (fuzz_jsonrpc
 * checks arbitrary inputs; these are the corners worth naming). */
static void same_as_cjson(const char *s, size_t n)
{
    char *text = malloc(n + 1);
    assert_non_null(text);
    memcpy(text, s, n);
    text[n] = '\0';
    sb_arena *ar = sb_arena_new(n * 40 + 65536);
    assert_non_null(ar);
    cJSON *a = cJSON_ParseWithLength(s, n), *b = sb_json_parse(s, n),
          *c = sb_json_parse_in(text, n, ar);
    if ((a == NULL) != (b == NULL) || (a == NULL) != (c == NULL))
        fail_msg("\"%.*s\": cJSON %s, sb_json_parse %s, sb_json_parse_in %s", (int)n, s,
                 a ? "accepts" : "refuses", b ? "accepts" : "refuses", c ? "accepts" : "refuses");
    if (a) {
        char *pa = cJSON_PrintUnformatted(a), *pb = cJSON_PrintUnformatted(b),
             *pc = cJSON_PrintUnformatted(c);
        if (strcmp(pa, pb) != 0) fail_msg("\"%.*s\": %s vs %s", (int)n, s, pa, pb);
        if (strcmp(pa, pc) != 0) fail_msg("\"%.*s\" in an arena: %s vs %s", (int)n, s, pa, pc);
        free(pa);
        free(pb);
        free(pc);
    }
    if (memcmp(text, s, n) != 0) fail_msg("\"%.*s\": sb_json_parse_in changed its text", (int)n, s);
    cJSON_Delete(a);
    cJSON_Delete(b);
    sb_arena_free(ar);
    free(text);
}

static void test_json_parse_matches_cjson(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "{}", "[]", "null", "true", "false", "nul", "tru", "-", "1e", "1e5e5", "01", "-0", "1.5",
        "1.", ".5", "+1", "123456789012345", "1234567890123456", "-999999999999999",
        "3.141592653589793", "1e400", "[1,]", "[,1]", "{\"a\"}", "{\"a\":}", "{\"a\":1,}",
        "{\"a\":1 \"b\":2}", "\"abc", "\"abc\\\"", "\"a\\\\\"", "\"\\u00e9\\u20ac\\ud83d\\ude00\"",
        "\"\\ud83d\"", "\"\\ude00\"", "\"\\ud83d\\u0041\"", "\"\\uZZZZ\"", "\"\\u12\"", "\"\\x\"",
        "\"\\/\\b\\f\\n\\r\\t\"", "  [ 1 , 2 ]  trailing", "[1] [2]", "\xEF\xBB\xBF[1]",
        "\xEF\xBB\xBF", "\"\x01\x1f raw controls\"", "{\"a\":{\"b\":[true,false,null]}}",
        "{\"dup\":1,\"dup\":2}", "[\"\xff\xfe\"]", "  ", "[", "{", "{\"a\":[1,{\"b\":2}]",
        /* escapes unescaped in place: in keys, runs between them, an escape whose six bytes take
         * an escaped quote (cJSON still finds the string's end by pairs), a pair at the end */
        "{\"k\\u0041y\":\"v\\n\\t\\\"q\\\"\",\"n\":[\"a\\\\b\",\"\\ud83d\\ude00x\"]}",
        "[\"\\u00a\\\"x\",1]", "[\"\\u0\\\"a\"]", "[\"abc\\u00e9def\\u20acghi\\/\"]",
        "[\"0123456789abcdef0123456789\\\"tail\"]", "[\"\\\\\"]", "[\"x\\\\\\\\\\\\\"]",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        same_as_cjson(cases[i], strlen(cases[i]));
    /* NUL bytes count as whitespace inside the given length */
    same_as_cjson("[1,\0 2]", 7);
    same_as_cjson("\0\0[1]", 5);
    /* long numbers, and nesting at and past cJSON's limit */
    char big[2100];
    memset(big, '7', 300);
    big[300] = '\0';
    same_as_cjson(big, 300);
    for (int depth = 999; depth <= 1001; depth++) {
        size_t k = 0;
        for (int d = 0; d < depth; d++) big[k++] = '[';
        for (int d = 0; d < depth; d++) big[k++] = ']';
        same_as_cjson(big, k);
    }
    assert_null(sb_json_parse(NULL, 0));
    assert_null(sb_json_parse("1", 0));
}

/* An arena parse marks each string value that needs no escaping with its length (sb_json_clean),
 * and only those; sb_jw_vjstr writes every string as sb_jw_vstr does. */
static void test_json_clean_hint(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int clean;
        size_t len;
    } cases[] = {
        {"[\"plain\"]", 1, 5},
        {"[\"\"]", 1, 0},
        {"[\"0123456789abcdef0123456789abcdef-long-and-clean\"]", 1, 47},
        {"[\"caf\xc3\xa9 \xe2\x82\xac\"]", 1, 9},                /* UTF-8 as it stands */
        {"[\"a\\nb\"]", 0, 0},                                       /* an escape */
        {"[\"\\u0041\"]", 0, 0},                                      /* even one that needs none */
        {"[\"tab\there\"]", 0, 0},                                     /* a raw control character */
        {"[\"0123456789abcdef0123456789\x01" "abcdef\"]", 0, 0},          /* one past 16 bytes */
        {"[\"0123456789abcdef0123456789abcdef\x1f\"]", 0, 0},          /* one at the very end */
        {"[\"0123456789abcde\x7f\"]", 1, 16},                          /* DEL needs none */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sb_arena *ar = sb_arena_new(0);
        assert_non_null(ar);
        const char *t = cases[i].text;
        cJSON *arena_tree = sb_json_parse_in(t, strlen(t), ar), *heap_tree = sb_json_parse(t, strlen(t));
        assert_non_null(arena_tree);
        assert_non_null(heap_tree);
        size_t n = 99;
        if (sb_json_clean(arena_tree->child, &n) != cases[i].clean)
            fail_msg("case %zu (%s): clean %d", i, t, !cases[i].clean);
        if (cases[i].clean) assert_int_equal(n, cases[i].len);
        /* only an arena tree carries the hint: sb_json_parse's trees are cJSON's */
        assert_int_equal(sb_json_clean(heap_tree->child, &n), 0);
        assert_int_equal(heap_tree->child->valueint, 0);
        /* written the same way either way */
        for (int k = 0; k < 2; k++) {
            sb_buf a, b;
            sb_buf_init(&a, 1 << 16);
            sb_buf_init(&b, 1 << 16);
            sb_jw wa, wb;
            sb_jw_init(&wa, &a);
            sb_jw_init(&wb, &b);
            const cJSON *v = k ? heap_tree->child : arena_tree->child;
            sb_jw_vjstr(&wa, v);
            sb_jw_vstr(&wb, v->valuestring);
            assert_int_equal(sb_jw_finish(&wa), 0);
            assert_string_equal(a.data, b.data);
            sb_buf_free(&a);
            sb_buf_free(&b);
        }
        cJSON_Delete(heap_tree);
        sb_arena_free(ar);
    }
    /* not a string, or none: null; a cJSON-made string: no hint, escaped */
    cJSON *num = cJSON_CreateNumber(5), *str = cJSON_CreateString("q\"q");
    size_t n;
    assert_int_equal(sb_json_clean(num, &n), 0);
    assert_int_equal(sb_json_clean(str, &n), 0);
    assert_int_equal(sb_json_clean(NULL, &n), 0);
    sb_buf b;
    sb_buf_init(&b, 1 << 16);
    sb_jw w;
    sb_jw_init(&w, &b);
    sb_jw_open(&w, '[');
    sb_jw_vjstr(&w, num);
    sb_jw_vjstr(&w, NULL);
    sb_jw_vjstr(&w, str);
    sb_jw_vclean(&w, "2026-11-25T00:00:00.000Z", 24);
    sb_jw_close(&w, ']');
    assert_int_equal(sb_jw_finish(&w), 0);
    assert_string_equal(b.data, "[null,null,\"q\\\"q\",\"2026-11-25T00:00:00.000Z\"]");
    sb_buf_free(&b);
    cJSON_Delete(num);
    cJSON_Delete(str);
    /* a clean string into a buffer that must grow, and one over its limit */
    sb_arena *ar = sb_arena_new(0);
    const char *big = "[\"0123456789012345678901234567890123456789\"]";
    cJSON *t = sb_json_parse_in(big, strlen(big), ar);
    assert_non_null(t);
    sb_buf_init(&b, 1 << 16);
    sb_jw_init(&w, &b);
    sb_jw_vjstr(&w, t->child);
    assert_int_equal(sb_jw_finish(&w), 0);
    assert_int_equal(b.len, 42);
    sb_buf_free(&b);
    sb_buf_init(&b, 20);
    sb_jw_init(&w, &b);
    sb_jw_vjstr(&w, t->child);
    assert_int_not_equal(sb_jw_finish(&w), 0);
    sb_buf_free(&b);
    sb_arena_free(ar);
}

static void test_buf_printf_max(void **state)
{
    (void)state;
    sb_buf b;
    sb_buf_init(&b, 10);
    assert_int_equal(sb_buf_printf(&b, "%s-%d", "ab", 7), 0);
    assert_string_equal(b.data, "ab-7");
    assert_int_equal(sb_buf_printf(&b, "%s", "1234567"), SB_BUF_ETOOBIG); /* 4 + 7 > 10 */
    assert_int_equal(b.len, 4);
    assert_string_equal(b.data, "ab-7");
    assert_int_equal(sb_buf_printf(&b, "%s", "123456"), 0);
    assert_string_equal(b.data, "ab-7123456");
    sb_buf_free(&b);

    /* the long path (output >= 256 bytes) */
    char big[400];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    sb_buf_init(&b, 700);
    assert_int_equal(sb_buf_puts(&b, "head:"), 0);
    assert_int_equal(sb_buf_printf(&b, "%s", big), 0);
    assert_int_equal(b.len, 5 + 399);
    assert_int_equal(sb_buf_printf(&b, "[%s]", big), SB_BUF_ETOOBIG); /* 404 + 401 > 700 */
    assert_int_equal(b.len, 404);
    assert_int_equal(strlen(b.data), 404);
    assert_memory_equal(b.data, "head:zzz", 8);
    assert_int_equal(b.data[404], '\0');
    assert_int_equal(sb_buf_printf(&b, "%.296s", big), 0); /* exactly 700 */
    assert_int_equal(b.len, 700);
    assert_int_equal(strlen(b.data), 700);
    sb_buf_free(&b);
}

static void test_buf_detach(void **state)
{
    (void)state;
    sb_buf b;
    sb_buf_init(&b, 100);
    size_t len = 99;
    char *p = sb_buf_detach(&b, &len);
    assert_non_null(p);
    assert_string_equal(p, "");
    assert_int_equal(len, 0);
    free(p);

    assert_int_equal(sb_buf_printf(&b, "n=%d", 42), 0);
    p = sb_buf_detach(&b, &len);
    assert_string_equal(p, "n=42");
    assert_int_equal(len, 4);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    free(p);
    /* reusable after detach */
    assert_int_equal(sb_buf_puts(&b, "again"), 0);
    assert_string_equal(b.data, "again");
    sb_buf_free(&b);
}

static void buf_unbounded_child(void)
{
    sb_buf b;
    sb_buf_init(&b, SIZE_MAX);
    if (sb_buf_append(&b, "abc", 3) != 0) _exit(2);
    if (sb_buf_printf(&b, "%0300d", 1) != 0) _exit(3);
    if (b.len != 303 || strncmp(b.data, "abc000", 6) != 0) _exit(4);
    sb_buf_free(&b);
}

static void test_buf_max_size_max(void **state)
{
    (void)state;
    /* SIZE_MAX as the maximum ("no practical limit") must not wrap the capacity computation */
    assert_true(child_ok(buf_unbounded_child));
}

/* ---------------------------------------------------------------------------------------------
 * sb_arena
 */

static void test_arena_alignment_and_zero(void **state)
{
    (void)state;
    sb_arena *a = sb_arena_new(0);
    assert_non_null(a);
    const size_t al = alignof(max_align_t);
    static const size_t sizes[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 100, 4095, 4097, 10000, 0};
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            unsigned char *p = sb_arena_alloc(a, sizes[i]);
            assert_non_null(p);
            assert_int_equal((uintptr_t)p % al, 0);
            for (size_t k = 0; k < sizes[i]; k++)
                assert_int_equal(p[k], 0);
            memset(p, 0xEE, sizes[i]); /* ASan checks the whole range is ours */
        }
    }
    char *s = sb_arena_strdup(a, "hello");
    assert_string_equal(s, "hello");
    s = sb_arena_strndup(a, "abcdef", 3);
    assert_string_equal(s, "abc");
    s = sb_arena_printf(a, "%s-%04d", "id", 7);
    assert_string_equal(s, "id-0007");
    assert_true(sb_arena_used(a) > 0);
    sb_arena_free(a);
    sb_arena_free(NULL);
}

static void test_arena_bytes(void **state)
{
    (void)state;
    sb_arena *a = sb_arena_new(0);
    assert_non_null(a);
    const size_t al = alignof(max_align_t);
    /* string bytes are packed one after the other; an aligned allocation after them is still
     * aligned and zeroed, and the next bytes do not overlap it */
    char *s1 = sb_arena_alloc_bytes(a, 3), *s2 = sb_arena_alloc_bytes(a, 5);
    assert_non_null(s1);
    assert_ptr_equal(s2, s1 + 3);
    memcpy(s1, "ab", 3);
    memcpy(s2, "cdef", 5);
    unsigned char *p = sb_arena_alloc(a, 24);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % al, 0);
    for (int k = 0; k < 24; k++) assert_int_equal(p[k], 0);
    memset(p, 0xEE, 24);
    char *s3 = sb_arena_alloc_bytes(a, 2);
    assert_true(s3 >= (char *)p + 24 || s3 + 2 <= (char *)p);
    assert_string_equal(s1, "ab");
    assert_string_equal(s2, "cdef");
    /* many small ones across blocks */
    for (int i = 0; i < 20000; i++) {
        char *q = sb_arena_alloc_bytes(a, (size_t)(i % 13) + 1);
        assert_non_null(q);
        memset(q, 'x', (size_t)(i % 13) + 1);
    }
    sb_arena_free(a);
    /* the limit holds for bytes too */
    a = sb_arena_new(100);
    assert_non_null(sb_arena_alloc_bytes(a, 60));
    assert_null(sb_arena_alloc_bytes(a, 60));
    sb_arena_free(a);
}

static void test_arena_limit(void **state)
{
    (void)state;
    const size_t max = 16384;
    sb_arena *a = sb_arena_new(max);
    assert_non_null(a);
    size_t got = 0;
    int failed = 0;
    for (int i = 0; i < 10000; i++) {
        void *p = sb_arena_alloc(a, 64);
        if (!p) {
            failed = 1;
            break;
        }
        got += 64;
        assert_true(sb_arena_used(a) <= max);
    }
    assert_true(failed);
    assert_true(got <= max);
    assert_true(got >= max / 2); /* the limit is not wildly conservative */
    assert_true(sb_arena_used(a) <= max);
    /* a request larger than the limit fails outright; the arena stays usable for frees */
    assert_null(sb_arena_alloc(a, max + 1));
    sb_arena_free(a);

    a = sb_arena_new(1000);
    assert_null(sb_arena_alloc(a, 2000));
    assert_non_null(sb_arena_alloc(a, 500));
    assert_null(sb_arena_alloc(a, 600));
    assert_true(sb_arena_used(a) <= 1000);
    sb_arena_free(a);
}

static void test_arena_huge_requests(void **state)
{
    (void)state;
    sb_arena *a = sb_arena_new(1 << 20);
    assert_non_null(a);
    /* sizes near SIZE_MAX must fail, not wrap around to a tiny allocation */
    void *p1 = sb_arena_alloc(a, SIZE_MAX);
    void *p2 = sb_arena_alloc(a, SIZE_MAX - 1);
    void *p3 = sb_arena_alloc(a, SIZE_MAX - 8);
    sb_arena_free(a);
    if (p1 || p2 || p3)
        fail_msg("sb_arena_alloc returned a block for a request near SIZE_MAX (%p %p %p)", p1, p2,
                 p3);
}

static void arena_overflow_child(void)
{
    sb_arena *a = sb_arena_new(1 << 20);
    if (!sb_arena_alloc(a, 100)) _exit(2);
    const size_t al = alignof(max_align_t);
    void *p = sb_arena_alloc(a, SIZE_MAX - al + 1); /* already aligned: no rounding wrap */
    if (p) _exit(3);
    sb_arena_free(a);
}

static void test_arena_total_overflow(void **state)
{
    (void)state;
    /* total + size must not wrap past the limit check (would hand out a short block) */
    assert_true(child_ok(arena_overflow_child));
}

/* ---------------------------------------------------------------------------------------------
 * sb_loop
 */

typedef struct rec {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n;
    int order[64];
    uint64_t at[64];
    int on_thread[64];
    sb_loop *loop;
} rec;

typedef struct tag {
    rec *r;
    int id;
} tag;

static void rec_init(rec *r, sb_loop *l)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->loop = l;
}

static void rec_destroy(rec *r)
{
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
}

static void rec_fn(void *arg)
{
    tag *t = arg;
    rec *r = t->r;
    pthread_mutex_lock(&r->mu);
    if (r->n < 64) {
        r->order[r->n] = t->id;
        r->at[r->n] = sb_mono_ms();
        r->on_thread[r->n] = sb_loop_on_thread(r->loop);
        r->n++;
    }
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Wait (bounded) until at least n callbacks ran. Returns the count seen. */
static int rec_wait(rec *r, int n, unsigned timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->mu);
    while (r->n < n)
        if (pthread_cond_timedwait(&r->cv, &r->mu, &dl) == ETIMEDOUT) break;
    int got = r->n;
    pthread_mutex_unlock(&r->mu);
    return got;
}

static int rec_count(rec *r)
{
    pthread_mutex_lock(&r->mu);
    int n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static void test_loop_post_runs_in_order(void **state)
{
    (void)state;
    sb_loop *l = sb_loop_start();
    assert_non_null(l);
    assert_false(sb_loop_on_thread(l));
    rec r;
    rec_init(&r, l);
    tag tags[50];
    for (int i = 0; i < 50; i++) {
        tags[i] = (tag){&r, i};
        assert_int_equal(sb_loop_post(l, rec_fn, &tags[i]), 0);
    }
    assert_int_equal(rec_wait(&r, 50, 5000), 50);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(r.order[i], i);
        assert_true(r.on_thread[i]);
    }
    sb_loop_stop(l);
    rec_destroy(&r);
}

static void test_loop_after_runs_in_due_order(void **state)
{
    (void)state;
    sb_loop *l = sb_loop_start();
    assert_non_null(l);
    rec r;
    rec_init(&r, l);
    tag t[3] = {{&r, 120}, {&r, 40}, {&r, 80}};
    uint64_t start = sb_mono_ms();
    uint64_t ids[3];
    for (int i = 0; i < 3; i++) {
        ids[i] = sb_loop_after(l, (uint64_t)t[i].id, rec_fn, &t[i]);
        assert_true(ids[i] > 0);
    }
    assert_true(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
    assert_int_equal(rec_wait(&r, 3, 5000), 3);
    assert_int_equal(r.order[0], 40);
    assert_int_equal(r.order[1], 80);
    assert_int_equal(r.order[2], 120);
    for (int i = 0; i < 3; i++) {
        assert_true(r.at[i] >= start + (uint64_t)r.order[i]); /* never early */
        assert_true(r.on_thread[i]);
    }
    sb_loop_stop(l);
    rec_destroy(&r);
}

/* A task that blocks the loop until the test opens the gate. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int entered, open;
} gate;

static void gate_fn(void *arg)
{
    gate *g = arg;
    pthread_mutex_lock(&g->mu);
    g->entered = 1;
    pthread_cond_broadcast(&g->cv);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10; /* bounded even if the test fails before opening it */
    while (!g->open)
        if (pthread_cond_timedwait(&g->cv, &g->mu, &dl) == ETIMEDOUT) break;
    pthread_mutex_unlock(&g->mu);
}

static void test_loop_after_heap_order(void **state)
{
    (void)state;
    sb_loop *l = sb_loop_start();
    assert_non_null(l);
    rec r;
    rec_init(&r, l);
    gate g = {.entered = 0, .open = 0};
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.cv, NULL);
    assert_int_equal(sb_loop_post(l, gate_fn, &g), 0);
    pthread_mutex_lock(&g.mu);
    while (!g.entered)
        pthread_cond_wait(&g.cv, &g.mu);
    pthread_mutex_unlock(&g.mu);

    /* 16 timers in a scrambled order, all scheduled while the loop is busy */
    enum { N = 16 };
    tag t[N];
    uint64_t ids[N];
    for (int i = 0; i < N; i++) {
        int slot = (i * 7 + 3) % N; /* a permutation of 0..15 */
        t[i] = (tag){&r, slot};
        ids[i] = sb_loop_after(l, (uint64_t)slot * 15, rec_fn, &t[i]);
        assert_true(ids[i] > 0);
    }
    /* cancel two of them (from the middle of the heap) */
    int cancelled_slots[2] = {t[5].id, t[11].id};
    assert_int_equal(sb_loop_cancel(l, ids[5]), 1);
    assert_int_equal(sb_loop_cancel(l, ids[11]), 1);
    assert_int_equal(sb_loop_cancel(l, ids[5]), 0); /* second cancel: already gone */
    sleep_ms(N * 15 + 20);                          /* everything is due now */
    pthread_mutex_lock(&g.mu);
    g.open = 1;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);

    assert_int_equal(rec_wait(&r, N - 2, 5000), N - 2);
    sleep_ms(30);
    assert_int_equal(rec_count(&r), N - 2);
    for (int i = 1; i < N - 2; i++)
        assert_true(r.order[i - 1] < r.order[i]);
    for (int i = 0; i < N - 2; i++) {
        assert_int_not_equal(r.order[i], cancelled_slots[0]);
        assert_int_not_equal(r.order[i], cancelled_slots[1]);
    }
    sb_loop_stop(l);
    rec_destroy(&r);
    pthread_mutex_destroy(&g.mu);
    pthread_cond_destroy(&g.cv);
}

static void test_loop_timer_added_while_sleeping(void **state)
{
    (void)state;
    /* The loop thread sleeps at most 1 s and is not woken for a timer due after its planned
     * wake-up; one due sooner must still wake it, and one due later must still run on time. */
    sb_loop *l = sb_loop_start();
    assert_non_null(l);
    rec r;
    rec_init(&r, l);
    tag far = {&r, 5000}, late = {&r, 1400}, soon = {&r, 60};
    sleep_ms(50); /* the thread is asleep, planning to look again within 1 s */
    uint64_t start = sb_mono_ms();
    uint64_t idf = sb_loop_after(l, 5000, rec_fn, &far);
    assert_true(idf > 0);
    assert_true(sb_loop_after(l, 1400, rec_fn, &late) > 0);
    assert_true(sb_loop_after(l, 60, rec_fn, &soon) > 0);
    assert_int_equal(rec_wait(&r, 1, 5000), 1);
    assert_int_equal(r.order[0], 60);
    assert_true(r.at[0] >= start + 60);
    assert_true(r.at[0] < start + 600); /* woken for it, not at the next 1 s turn */
    assert_int_equal(rec_wait(&r, 2, 5000), 2);
    assert_int_equal(r.order[1], 1400);
    assert_true(r.at[1] >= start + 1400);
    assert_true(r.at[1] < start + 1900);
    assert_int_equal(sb_loop_cancel(l, idf), 1);
    sb_loop_stop(l);
    rec_destroy(&r);
}

static void test_loop_cancel(void **state)
{
    (void)state;
    sb_loop *l = sb_loop_start();
    assert_non_null(l);
    rec r;
    rec_init(&r, l);
    tag a = {&r, 1}, b = {&r, 2}, c = {&r, 3};

    /* cancelled before it runs: 1, and it never runs */
    uint64_t ida = sb_loop_after(l, 30, rec_fn, &a);
    assert_true(ida > 0);
    assert_int_equal(sb_loop_cancel(l, ida), 1);
    uint64_t idb = sb_loop_after(l, 90, rec_fn, &b);
    assert_true(idb > 0);
    assert_int_equal(rec_wait(&r, 1, 5000), 1);
    assert_int_equal(r.order[0], 2);
    sleep_ms(20);
    assert_int_equal(rec_count(&r), 1);

    /* cancelled after it ran: 0 */
    assert_int_equal(sb_loop_cancel(l, idb), 0);
    uint64_t idc = sb_loop_after(l, 0, rec_fn, &c);
    assert_true(idc > 0);
    assert_int_equal(rec_wait(&r, 2, 5000), 2);
    assert_int_equal(r.order[1], 3);
    assert_int_equal(sb_loop_cancel(l, idc), 0);

    /* ids never seen, and 0 */
    assert_int_equal(sb_loop_cancel(l, 0), 0);
    assert_int_equal(sb_loop_cancel(l, 999999), 0);
    sb_loop_stop(l);
    rec_destroy(&r);
}

/* From a task on the loop thread: schedule a timer and post another task. */
typedef struct nested {
    rec *r;
    tag t1, t2;
} nested;

static void nested_fn(void *arg)
{
    nested *n = arg;
    sb_loop *l = n->r->loop;
    if (sb_loop_after(l, 10, rec_fn, &n->t1) == 0) return;
    sb_loop_post(l, rec_fn, &n->t2);
}

static void test_loop_reentrant_scheduling(void **state)
{
    (void)state;
    sb_loop *l = sb_loop_start();
    assert_non_null(l);
    rec r;
    rec_init(&r, l);
    nested n = {&r, {&r, 1}, {&r, 2}};
    assert_int_equal(sb_loop_post(l, nested_fn, &n), 0);
    assert_int_equal(rec_wait(&r, 2, 5000), 2);
    assert_int_equal(r.order[0], 2); /* the posted task first, then the 10 ms timer */
    assert_int_equal(r.order[1], 1);
    sb_loop_stop(l);
    rec_destroy(&r);
}

/* A timer callback run by sb_loop_stop: new work is refused by then. */
typedef struct at_stop {
    rec *r;
    tag t;
    int post_rc;
    uint64_t after_id;
} at_stop;

static void never_fn(void *arg)
{
    (void)arg;
    fail_msg("work scheduled during stop ran");
}

static void at_stop_fn(void *arg)
{
    at_stop *a = arg;
    a->post_rc = sb_loop_post(a->r->loop, never_fn, NULL);
    a->after_id = sb_loop_after(a->r->loop, 0, never_fn, NULL);
    rec_fn(&a->t);
}

static void test_loop_stop_refuses_new_work(void **state)
{
    (void)state;
    sb_loop *l = sb_loop_start();
    assert_non_null(l);
    rec r;
    rec_init(&r, l);
    at_stop a = {&r, {&r, 1}, 12345, 12345};
    assert_true(sb_loop_after(l, 60000, at_stop_fn, &a) > 0);
    sb_loop_stop(l);
    assert_int_equal(r.n, 1);
    assert_int_equal(a.post_rc, -1);
    assert_true(a.after_id == 0);
    rec_destroy(&r);
}

static void test_loop_stop_semantics(void **state)
{
    (void)state;
    sb_loop *l = sb_loop_start();
    assert_non_null(l);
    rec r;
    rec_init(&r, l);
    tag tags[20], late = {&r, 100}, later = {&r, 200};
    /* pending timers run at stop (early, in due order, after the posted tasks) so their owners
     * can release what they hold */
    assert_true(sb_loop_after(l, 120000, rec_fn, &later) > 0);
    assert_true(sb_loop_after(l, 60000, rec_fn, &late) > 0);
    for (int i = 0; i < 20; i++) {
        tags[i] = (tag){&r, i};
        assert_int_equal(sb_loop_post(l, rec_fn, &tags[i]), 0);
    }
    uint64_t t0 = sb_mono_ms();
    sb_loop_stop(l); /* posted tasks run first */
    assert_true(sb_mono_ms() - t0 < 5000);
    assert_int_equal(r.n, 22);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(r.order[i], i);
        assert_true(r.on_thread[i]);
    }
    assert_int_equal(r.order[20], 100);
    assert_int_equal(r.order[21], 200);
    rec_destroy(&r);
    sb_loop_stop(NULL);
}

static void test_loop_many_timers(void **state)
{
    (void)state;
    /* more timers than the initial hash size (1024): the table grows */
    sb_loop *l = sb_loop_start();
    assert_non_null(l);
    rec r;
    rec_init(&r, l);
    enum { N = 3000 };
    tag t = {&r, 7};
    uint64_t *ids = calloc(N, sizeof *ids);
    assert_non_null(ids);
    for (int i = 0; i < N; i++) {
        ids[i] = sb_loop_after(l, 60000, rec_fn, &t);
        assert_true(ids[i] > 0);
    }
    for (int i = 0; i < N; i += 2)
        assert_int_equal(sb_loop_cancel(l, ids[i]), 1);
    for (int i = 0; i < N; i += 2)
        assert_int_equal(sb_loop_cancel(l, ids[i]), 0);
    for (int i = 1; i < N; i += 2)
        assert_int_equal(sb_loop_cancel(l, ids[i]), 1);
    assert_int_equal(rec_count(&r), 0);
    free(ids);
    sb_loop_stop(l);
    rec_destroy(&r);
}

/* ---- sb_later -------------------------------------------------------------------------------- */

static int later_log[SB_LATER_MAX * 2 + 8];
static int later_n;

static void later_note(void *arg)
{
    later_log[later_n++] = (int)(intptr_t)arg;
}

static void later_chain(void *arg)
{
    later_note(arg);
    sb_later(later_note, (void *)(intptr_t)((int)(intptr_t)arg + 1000)); /* put off while flushing */
}

/* sb_jw writes what sb_buf_json_value prints for the tree the same calls would build. */
static void test_jw_matches_printer(void **state)
{
    (void)state;
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "s", "quote \" backslash \\ tab \t nl \n ctl \x01 utf8 \xc3\xa9");
    cJSON_AddNullToObject(t, "n");
    cJSON_AddNumberToObject(t, "i", -42);
    cJSON_AddNumberToObject(t, "f", 0.1);
    cJSON_AddNumberToObject(t, "big", 1e300);
    cJSON_AddTrueToObject(t, "yes");
    cJSON_AddFalseToObject(t, "no");
    cJSON_AddObjectToObject(t, "empty_o");
    cJSON_AddArrayToObject(t, "empty_a");
    cJSON *arr = cJSON_AddArrayToObject(t, "items");
    for (int k = 0; k < 3; k++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "k", k);
        cJSON *in = cJSON_AddArrayToObject(o, "in");
        cJSON_AddItemToArray(in, cJSON_CreateString("x"));
        cJSON_AddItemToArray(in, cJSON_CreateNull());
        cJSON_AddItemToArray(in, cJSON_CreateNumber(2.5));
        cJSON_AddItemToArray(arr, o);
    }
    sb_buf want;
    sb_buf_init(&want, 1 << 20);
    assert_int_equal(sb_buf_json_value(&want, t), 0);

    sb_buf got;
    sb_buf_init(&got, 1 << 20);
    sb_jw w;
    sb_jw_init(&w, &got);
    sb_jw_open(&w, '{');
    sb_jw_str(&w, "s", "quote \" backslash \\ tab \t nl \n ctl \x01 utf8 \xc3\xa9");
    sb_jw_str(&w, "n", NULL);
    sb_jw_num(&w, "i", -42);
    sb_jw_num(&w, "f", 0.1);
    sb_jw_num(&w, "big", 1e300);
    sb_jw_bool(&w, "yes", 1);
    sb_jw_bool(&w, "no", 0);
    sb_jw_obj(&w, "empty_o");
    sb_jw_close(&w, '}');
    sb_jw_arr(&w, "empty_a");
    sb_jw_close(&w, ']');
    sb_jw_arr(&w, "items");
    for (int k = 0; k < 3; k++) {
        sb_jw_open(&w, '{');
        sb_jw_num(&w, "k", k);
        sb_jw_arr(&w, "in");
        sb_jw_vstr(&w, "x");
        sb_jw_vnull(&w);
        sb_jw_vnum(&w, 2.5);
        sb_jw_close(&w, ']');
        sb_jw_close(&w, '}');
    }
    sb_jw_close(&w, ']');
    sb_jw_close(&w, '}');
    assert_int_equal(sb_jw_finish(&w), 0);
    assert_string_equal(got.data, want.data);
    assert_int_equal(got.len, want.len);

    /* a top-level array, and appending after what the buffer held */
    sb_buf_reset(&got);
    sb_buf_puts(&got, "pre:");
    sb_jw_init(&w, &got);
    sb_jw_open(&w, '[');
    sb_jw_vbool(&w, 1);
    sb_jw_open(&w, '{');
    sb_jw_close(&w, '}');
    sb_jw_close(&w, ']');
    assert_int_equal(sb_jw_finish(&w), 0);
    assert_string_equal(got.data, "pre:[true,{}]");
    sb_buf_free(&got);
    sb_buf_free(&want);
    cJSON_Delete(t);
}

/* Misuse and limits: the first error sticks, and nothing half-written passes sb_jw_finish. */
static void test_jw_errors(void **state)
{
    (void)state;
    sb_buf b;
    sb_jw w;
    sb_buf_init(&b, 1 << 16);

    sb_jw_init(&w, &b); /* a key outside an object */
    sb_jw_str(&w, "k", "v");
    assert_int_equal(sb_jw_finish(&w), -3);

    sb_buf_reset(&b); /* a key in an array */
    sb_jw_init(&w, &b);
    sb_jw_open(&w, '[');
    sb_jw_str(&w, "k", "v");
    assert_int_equal(sb_jw_finish(&w), -3);

    sb_buf_reset(&b); /* a container left open */
    sb_jw_init(&w, &b);
    sb_jw_open(&w, '{');
    assert_int_equal(sb_jw_finish(&w), -3);

    sb_buf_reset(&b); /* a key without its value */
    sb_jw_init(&w, &b);
    sb_jw_open(&w, '{');
    sb_jw_key_(&w, SB_JW_KEY("k"));
    sb_jw_close(&w, '}');
    assert_int_equal(sb_jw_finish(&w), -3);

    sb_buf_reset(&b); /* one close too many */
    sb_jw_init(&w, &b);
    sb_jw_open(&w, '[');
    sb_jw_close(&w, ']');
    sb_jw_close(&w, ']');
    assert_int_equal(sb_jw_finish(&w), -3);

    sb_buf_reset(&b); /* nesting past the limit */
    sb_jw_init(&w, &b);
    for (int i = 0; i < SB_JW_MAX_DEPTH + 2; i++) sb_jw_open(&w, '[');
    assert_int_equal(sb_jw_finish(&w), -3);
    sb_buf_free(&b);

    /* past the buffer's maximum: SB_BUF_ETOOBIG, and it sticks */
    sb_buf small;
    sb_buf_init(&small, 24);
    sb_jw_init(&w, &small);
    sb_jw_open(&w, '{');
    sb_jw_str(&w, "a", "0123456789");
    sb_jw_str(&w, "b", "0123456789");
    sb_jw_close(&w, '}');
    assert_int_equal(sb_jw_finish(&w), SB_BUF_ETOOBIG);
    assert_true(small.len <= 24);
    sb_buf_free(&small);
}

static void test_later(void **state)
{
    (void)state;
    later_n = 0;
    sb_later(later_note, (void *)1); /* a thread that does not flush: at once */
    assert_int_equal(later_n, 1);
    sb_later(NULL, NULL);            /* nothing to run */
    sb_later_enable(1);
    sb_later(later_note, (void *)2);
    sb_later(later_chain, (void *)3);
    sb_later(later_note, (void *)4);
    assert_int_equal(later_n, 1); /* all put off */
    sb_later_flush();
    /* oldest first, and what ran put off runs in the same flush */
    assert_int_equal(later_n, 5);
    assert_int_equal(later_log[1], 2);
    assert_int_equal(later_log[2], 3);
    assert_int_equal(later_log[3], 4);
    assert_int_equal(later_log[4], 1003);
    sb_later_flush(); /* empty */
    assert_int_equal(later_n, 5);
    /* full: the one over the bound runs at once, the others wait */
    later_n = 0;
    for (int i = 0; i < SB_LATER_MAX + 1; i++) sb_later(later_note, (void *)(intptr_t)i);
    assert_int_equal(later_n, 1);
    assert_int_equal(later_log[0], SB_LATER_MAX);
    sb_later_flush();
    assert_int_equal(later_n, SB_LATER_MAX + 1);
    assert_int_equal(later_log[1], 0);
    /* switching off runs what is left */
    later_n = 0;
    sb_later(later_note, (void *)7);
    sb_later_enable(0);
    assert_int_equal(later_n, 1);
    sb_later(later_note, (void *)8);
    assert_int_equal(later_n, 2);
}

/* ---- sb_gzip ----------------------------------------------------------------------------- */

/* inflate one gzip member with zlib (which checks the CRC-32 and the size); 0 on success */
static int gunzip_to(const sb_buf *z, unsigned char *out, size_t cap, size_t *len)
{
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, 16 + 15) != Z_OK) return -1;
    s.next_in = (Bytef *)z->data;
    s.avail_in = (uInt)z->len;
    s.next_out = out;
    s.avail_out = (uInt)cap;
    int rc = inflate(&s, Z_FINISH);
    *len = cap - s.avail_out;
    int left = (int)s.avail_in;
    inflateEnd(&s);
    return rc == Z_STREAM_END && left == 0 ? 0 : -1;
}

static void test_gzip_splice(void **state)
{
    (void)state;
    /* pre and post around a part: lengths across the 65,535-byte stored-block limit */
    size_t big = 200000, srclen = big + 16; /* the pieces start up to 11 bytes into src */
    unsigned char *src = malloc(srclen), *out = malloc(3 * big + 16);
    assert_non_null(src);
    assert_non_null(out);
    uint32_t x = 12345;
    static const char *const words[] = {"{\"type\":\"string\",", "\"description\":\"",
                                        "\\\"quoted\\\" ", "caf\xc3\xa9 ", "\x01", "0123456789",
                                        "\"}", "[]", ",\n"};
    for (size_t i = 0; i < srclen;) { /* compressible but not trivial: JSON-ish words, bytes */
        x = x * 1103515245u + 12345u;
        const char *w = words[(x >> 16) % 9];
        for (; *w && i < srclen; w++) src[i++] = (unsigned char)*w;
        if (i < srclen && (x >> 8) % 5 == 0) src[i++] = (unsigned char)(x >> 24);
    }
    const size_t pre_lens[] = {0, 1, 30, 65535, 65536, 131071};
    const size_t part_lens[] = {0, 1, 48231, big};
    const size_t post_lens[] = {0, 1, 65536};
    for (size_t a = 0; a < 6; a++)
        for (size_t b = 0; b < 5; b++) /* b == 4: no part at all */
            for (size_t c = 0; c < 3; c++) {
                sb_gzip_part part, *pp = NULL;
                size_t plen = b < 4 ? part_lens[b] : 0;
                if (b < 4) {
                    assert_int_equal(sb_gzip_part_make(&part, src + 7, plen), 0);
                    assert_int_equal(part.len, plen);
                    assert_true(plen < 1000 || part.zlen < plen / 2);
                    pp = &part;
                }
                sb_buf z;
                sb_buf_init(&z, 1 << 22);
                assert_int_equal(sb_gzip_splice(&z, src + 3, pre_lens[a], pp, src + 11,
                                                post_lens[c]),
                                 0);
                size_t n;
                if (gunzip_to(&z, out, 3 * big + 16, &n) != 0)
                    fail_msg("pre %zu part %zu post %zu: not one valid gzip member", pre_lens[a],
                             plen, post_lens[c]);
                assert_int_equal(n, pre_lens[a] + plen + post_lens[c]);
                assert_memory_equal(out, src + 3, pre_lens[a]);
                if (plen) assert_memory_equal(out + pre_lens[a], src + 7, plen);
                if (post_lens[c])
                    assert_memory_equal(out + pre_lens[a] + plen, src + 11, post_lens[c]);
                sb_buf_free(&z);
                if (pp) sb_gzip_part_free(pp);
                if (pp) assert_null(part.z);
            }
    /* the same part serves many replies: splicing does not change it */
    sb_gzip_part part;
    assert_int_equal(sb_gzip_part_make(&part, src, 5000), 0);
    for (int i = 0; i < 3; i++) {
        sb_buf z;
        sb_buf_init(&z, 1 << 20);
        char pre[32];
        int pl = snprintf(pre, sizeof pre, "{\"id\":%d,\"r\":", i);
        assert_int_equal(sb_gzip_splice(&z, pre, (size_t)pl, &part, "}", 1), 0);
        size_t n;
        assert_int_equal(gunzip_to(&z, out, 3 * big, &n), 0);
        assert_int_equal(n, (size_t)pl + 5001);
        assert_memory_equal(out, pre, (size_t)pl);
        assert_memory_equal(out + pl, src, 5000);
        assert_int_equal(out[n - 1], '}');
        sb_buf_free(&z);
    }
    /* a buffer whose maximum is too small refuses, whatever the piece that overflows */
    for (size_t max = 0; max < part.zlen + 60; max += 7) {
        sb_buf z;
        sb_buf_init(&z, max);
        int rc = sb_gzip_splice(&z, "{\"id\":1,\"r\":", 12, &part, "}", 1);
        assert_true(rc == SB_BUF_ETOOBIG || (rc == 0 && z.len <= max));
        sb_buf_free(&z);
    }
    sb_gzip_part_free(&part);
    sb_gzip_part_free(&part); /* twice is harmless */
    free(src);
    free(out);
}

/* What the log wrote to fd since offset *off, NUL-terminated, in buf. */
static size_t log_read(int fd, off_t *off, char *buf, size_t cap)
{
    ssize_t n = pread(fd, buf, cap - 1, *off);
    assert_true(n >= 0);
    buf[n] = '\0';
    *off += n;
    return (size_t)n;
}

/* Log lines to a fresh unlinked temporary file at level info: its descriptor, and the level
 * before in *old (log_release puts both back). */
static int log_capture(int *old)
{
    char path[] = "/tmp/sb_log_test.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    sb_log_set_fd(fd);
    *old = sb_log_get_level();
    sb_log_set_level(SB_LOG_INFO);
    return fd;
}

static void log_release(int fd, int old)
{
    sb_log_set_level(old);
    sb_log_set_fd(2);
    close(fd);
}

/* The line written in place is the line sb_log_obj writes for the same fields: escapes, number
 * forms, order; a field past the bound is left out whole; a level that is off writes nothing. */
static void test_log_line_matches_obj(void **state)
{
    (void)state;
    int old, fd = log_capture(&old);
    static const char *strs[] = {"", "plain", "q\"uote", "back\\slash", "ctl\x01\x1f\n\t\b\f\r",
                                 "del\x7f", "utf-8 \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
                                 "/boldsign/mcp?x=1&y=</script>"};
    static const double nums[] = {0, 200, -5, 1795500100, 123456789012345.0, 1.5, -0.25,
                                  1e300, 3.141592653589793, 0.1, -0.0};
    char a[4096], b[4096];
    off_t off = 0;
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++) {
        for (size_t j = 0; j < sizeof nums / sizeof *nums; j++) {
            cJSON *f = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "request_id", strs[i]);
            cJSON_AddNumberToObject(f, "status", nums[j]);
            cJSON_AddStringToObject(f, strs[(i + 1) % 8][0] ? "k\"ey" : "key", strs[(i + 3) % 8]);
            sb_log_obj(SB_LOG_INFO, "http_request", f);
            size_t na = log_read(fd, &off, a, sizeof a);
            sb_log_line l;
            assert_int_equal(sb_log_line_begin(&l, SB_LOG_INFO, "http_request"), 0);
            sb_log_line_str(&l, "request_id", strs[i]);
            sb_log_line_num(&l, "status", nums[j]);
            sb_log_line_str(&l, strs[(i + 1) % 8][0] ? "k\"ey" : "key", strs[(i + 3) % 8]);
            sb_log_line_end(&l);
            size_t nb = log_read(fd, &off, b, sizeof b);
            /* the same bytes after the time stamp (the two may fall in different milliseconds) */
            const char *la = strstr(a, ",\"level\":"), *lb = strstr(b, ",\"level\":");
            assert_non_null(la);
            assert_non_null(lb);
            assert_int_equal(la - a, lb - b);
            assert_int_equal(na, nb);
            assert_string_equal(la, lb);
            assert_int_equal(memcmp(a, "{\"ts\":\"", 7), 0);
            assert_int_equal(b[nb - 1], '\n');
        }
    }
    /* NaN and infinities print as null, as cJSON prints them */
    sb_log_line l;
    assert_int_equal(sb_log_line_begin(&l, SB_LOG_INFO, "e"), 0);
    sb_log_line_num(&l, "nan", 0.0 / 0.0);
    sb_log_line_num(&l, "inf", 1.0 / 0.0);
    sb_log_line_end(&l);
    log_read(fd, &off, b, sizeof b);
    assert_non_null(strstr(b, "\"nan\":null,\"inf\":null}\n"));
    /* a value that would pass the bound is left out whole; the rest of the line stands */
    size_t big = SB_LOG_LINE_MAX;
    char *v = malloc(big + 1);
    assert_non_null(v);
    memset(v, 'x', big);
    v[big] = '\0';
    assert_int_equal(sb_log_line_begin(&l, SB_LOG_INFO, "e"), 0);
    sb_log_line_str(&l, "before", "1");
    sb_log_line_str(&l, "big", v);
    sb_log_line_num(&l, "after", 2);
    sb_log_line_end(&l);
    char *c = malloc(2 * big);
    assert_non_null(c);
    size_t nc = log_read(fd, &off, c, 2 * big);
    assert_true(nc < 1024);
    assert_non_null(strstr(c, ",\"before\":\"1\",\"after\":2}\n"));
    assert_null(strstr(c, "\"big\""));
    cJSON *parsed = cJSON_Parse(c);
    assert_non_null(parsed);
    cJSON_Delete(parsed);
    /* one that fits exactly up to the bound still closes the line */
    assert_int_equal(sb_log_line_begin(&l, SB_LOG_INFO, "e"), 0);
    size_t used = l.b.len + strlen(",\"big\":\"\"");
    v[SB_LOG_LINE_MAX - 2 - used] = '\0';
    sb_log_line_str(&l, "big", v);
    assert_int_equal(l.b.len, SB_LOG_LINE_MAX - 2);
    sb_log_line_end(&l);
    nc = log_read(fd, &off, c, 2 * big);
    assert_int_equal(nc, SB_LOG_LINE_MAX);
    assert_int_equal(memcmp(c + nc - 3, "\"}\n", 3), 0);
    free(c);
    free(v);
    /* below the level: nothing started, nothing written; the other calls are harmless */
    sb_log_set_level(SB_LOG_WARN);
    assert_int_equal(sb_log_line_begin(&l, SB_LOG_INFO, "e"), -1);
    sb_log_line_str(&l, "k", "v");
    sb_log_line_num(&l, "n", 1);
    sb_log_line_end(&l);
    assert_int_equal(log_read(fd, &off, b, sizeof b), 0);
    log_release(fd, old);
}

/* sb_log_batch: a thread's lines kept, in order, until sb_log_flush or until the next would not
 * fit; a line longer than the buffer written after what was kept; sb_log_batch(0) writes the
 * rest; other threads' lines (here: after batching is off) written at once. */
static void test_log_batch(void **state)
{
    (void)state;
    int old, fd = log_capture(&old);
    static char buf[4 * SB_LOG_BATCH];
    off_t off = 0;
    sb_log_batch(1);
    sb_log_msg(SB_LOG_INFO, "one", "first");
    sb_log_line l;
    assert_int_equal(sb_log_line_begin(&l, SB_LOG_INFO, "two"), 0);
    sb_log_line_str(&l, "k", "second");
    sb_log_line_end(&l);
    sb_log_msg(SB_LOG_WARN, "three", "third");
    assert_int_equal(log_read(fd, &off, buf, sizeof buf), 0); /* kept */
    sb_log_flush();
    size_t n = log_read(fd, &off, buf, sizeof buf);
    char *a = strstr(buf, "\"first\""), *b = strstr(buf, "\"second\""),
         *c = strstr(buf, "\"third\"");
    assert_true(a && b && c && a < b && b < c);
    assert_int_equal(buf[n - 1], '\n');
    sb_log_flush(); /* nothing kept: nothing written */
    assert_int_equal(log_read(fd, &off, buf, sizeof buf), 0);
    /* lines past the buffer: what was kept goes first, each write a whole number of lines */
    size_t lines = 0, total = 0;
    while (total < SB_LOG_BATCH) {
        sb_log_msg(SB_LOG_INFO, "fill", "line %zu", lines++);
        size_t got = log_read(fd, &off, buf, sizeof buf);
        if (got) assert_int_equal(buf[got - 1], '\n'); /* whole lines only */
        total += got;
    }
    assert_true(total > 0); /* the line that did not fit sent the kept ones out */
    sb_log_flush();
    assert_true(log_read(fd, &off, buf, sizeof buf) > 0); /* and was kept itself */
    /* a line longer than the buffer, after one kept line */
    sb_log_msg(SB_LOG_INFO, "small", "before the big one");
    char *big = malloc(SB_LOG_BATCH + 100);
    assert_non_null(big);
    memset(big, 'y', SB_LOG_BATCH + 99);
    big[SB_LOG_BATCH + 99] = '\0';
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "big", big);
    sb_log_obj(SB_LOG_INFO, "big", f);
    n = log_read(fd, &off, buf, sizeof buf);
    char *s = strstr(buf, "before the big one"), *y = strstr(buf, "yyyy");
    assert_true(s && y && s < y);
    assert_int_equal(buf[n - 1], '\n');
    free(big);
    /* off: the kept line goes out, and the next is written at once */
    sb_log_msg(SB_LOG_INFO, "kept", "last kept");
    sb_log_batch(0);
    n = log_read(fd, &off, buf, sizeof buf);
    assert_non_null(strstr(buf, "last kept"));
    sb_log_msg(SB_LOG_INFO, "direct", "written at once");
    n = log_read(fd, &off, buf, sizeof buf);
    assert_non_null(strstr(buf, "written at once"));
    log_release(fd, old);
}

static void test_gzip_accepted(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        int want;
    } cases[] = {
        {NULL, 0},
        {"", 0},
        {"gzip", 1},
        {"GZip", 1},
        {"x-gzip", 1},
        {"gzip, deflate", 1},
        {"gzip, deflate, br, zstd", 1},
        {"br;q=1.0, gzip;q=0.8, *;q=0.1", 1},
        {"deflate, br", 0},
        {"identity", 0},
        {"gzip;q=0", 0},
        {"gzip;q=0.000", 0},
        {"gzip;q=0.001", 1},
        {"gzip; q=0.5", 1},
        {"gzip ;q=1", 1},
        {"gzip;Q=1", 1},
        {"gzip;q=1.000", 1},
        {"gzip;q=1.001", 0}, /* malformed weights refuse */
        {"gzip;q=2", 0},
        {"gzip;q=", 0},
        {"gzip;q=0.5000", 0},
        {"gzip;q=abc", 0},
        {"*", 1},
        {"*;q=0", 0},
        {"deflate, *", 1},
        {"gzip;q=0, *", 0}, /* named and refused: "*" does not bring it back */
        {"*, gzip;q=0", 0},
        {"gzipx", 0},
        {"xgzip", 0},
        {"gzip foo", 0},
        {" , ,gzip,, ", 1},
        {"deflate;level=9, gzip", 1},
        {"\tgzip\t", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (sb_gzip_accepted(cases[i].v) != cases[i].want)
            fail_msg("Accept-Encoding \"%s\": want %d", cases[i].v ? cases[i].v : "(none)",
                     cases[i].want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_rfc4648_vectors),
        cmocka_unit_test(test_base64_alphabets),
        cmocka_unit_test(test_base64_round_trip_all_lengths),
        cmocka_unit_test(test_base64_decode_rejects_bad_input),
        cmocka_unit_test(test_base64_decode_matches_reference),
        cmocka_unit_test(test_base64_decode_rejects_bad_padding),
        cmocka_unit_test(test_base64_decode_output_bound),
        cmocka_unit_test(test_hex_and_random),
        cmocka_unit_test(test_u64_dec),
        cmocka_unit_test(test_ct_equal),
        cmocka_unit_test(test_strlcpy_strcaseeq),
        cmocka_unit_test(test_utf8_valid_sequences),
        cmocka_unit_test(test_utf8_invalid_sequences),
        cmocka_unit_test(test_parse_i64),
        cmocka_unit_test(test_rfc3339_parse_valid),
        cmocka_unit_test(test_rfc3339_parse_invalid),
        cmocka_unit_test(test_rfc3339_format_and_round_trip),
        cmocka_unit_test(test_rfc3339_matches_gmtime),
        cmocka_unit_test(test_clocks),
        cmocka_unit_test(test_buf_append_max),
        cmocka_unit_test(test_json_clean_hint),
        cmocka_unit_test(test_buf_printf_max),
        cmocka_unit_test(test_buf_json_string),
        cmocka_unit_test(test_buf_json_string_vs_reference),
        cmocka_unit_test(test_json_parse_matches_cjson),
        cmocka_unit_test(test_buf_detach),
        cmocka_unit_test(test_buf_max_size_max),
        cmocka_unit_test(test_arena_alignment_and_zero),
        cmocka_unit_test(test_arena_bytes),
        cmocka_unit_test(test_arena_limit),
        cmocka_unit_test(test_arena_huge_requests),
        cmocka_unit_test(test_arena_total_overflow),
        cmocka_unit_test(test_loop_post_runs_in_order),
        cmocka_unit_test(test_loop_after_runs_in_due_order),
        cmocka_unit_test(test_loop_after_heap_order),
        cmocka_unit_test(test_loop_cancel),
        cmocka_unit_test(test_loop_timer_added_while_sleeping),
        cmocka_unit_test(test_loop_reentrant_scheduling),
        cmocka_unit_test(test_loop_stop_semantics),
        cmocka_unit_test(test_loop_stop_refuses_new_work),
        cmocka_unit_test(test_loop_many_timers),
        cmocka_unit_test(test_later),
        cmocka_unit_test(test_jw_matches_printer),
        cmocka_unit_test(test_jw_errors),
        cmocka_unit_test(test_gzip_splice),
        cmocka_unit_test(test_gzip_accepted),
        cmocka_unit_test(test_log_line_matches_obj),
        cmocka_unit_test(test_log_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
