#include "core/sb_util.h"

#include <openssl/sha.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

int sb_random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

void sb_hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[in[i] >> 4];
        out[2 * i + 1] = hx[in[i] & 15];
    }
    out[2 * n] = '\0';
}

size_t sb_base64url_len(size_t n)
{
    return (n / 3) * 4 + (n % 3 ? n % 3 + 1 : 0);
}

size_t sb_base64_len(size_t n)
{
    return ((n + 2) / 3) * 4;
}

static size_t b64(const unsigned char *in, size_t n, char *out, const char *alpha, int pad)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = alpha[v >> 18];
        out[o++] = alpha[(v >> 12) & 63];
        out[o++] = alpha[(v >> 6) & 63];
        out[o++] = alpha[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = alpha[v >> 18];
        out[o++] = alpha[(v >> 12) & 63];
        if (pad) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = alpha[v >> 18];
        out[o++] = alpha[(v >> 12) & 63];
        out[o++] = alpha[(v >> 6) & 63];
        if (pad) out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

size_t sb_base64url_encode(const unsigned char *in, size_t n, char *out)
{
    return b64(in, n, out, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", 0);
}

size_t sb_base64_encode(const unsigned char *in, size_t n, char *out)
{
    return b64(in, n, out, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 1);
}

/* The value of a character in either alphabet (standard "+/" and URL-safe "-_"), -1 outside. */
/* clang-format off */
static const signed char B64VAL[256] = { /* sixteen a row */
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, 62, -1, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
    -1,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, 63,
    -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};
/* clang-format on */

long sb_base64_decode(const char *in, size_t n, unsigned char *out, size_t outcap)
{
    size_t pad = 0;
    while (n > 0 && in[n - 1] == '=') n--, pad++;
    if (n % 4 == 1) return -1;
    /* padding is optional, but when present it must complete the last group exactly */
    if (pad && (pad > 2 || n % 4 == 0 || (n + pad) % 4 != 0)) return -1;
    size_t need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (need > outcap) return -1; /* nothing written */
    const unsigned char *u = (const unsigned char *)in;
    size_t i = 0, o = 0;
    /* four characters, three bytes, a step: a JWT's payload, a document's content */
    for (; i + 4 <= n; i += 4, o += 3) {
        int a = B64VAL[u[i]], b = B64VAL[u[i + 1]], c = B64VAL[u[i + 2]], d = B64VAL[u[i + 3]];
        if ((a | b | c | d) < 0) return -1;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        out[o] = (unsigned char)(v >> 16);
        out[o + 1] = (unsigned char)(v >> 8);
        out[o + 2] = (unsigned char)v;
    }
    if (i < n) { /* two or three characters left: one or two bytes */
        int a = B64VAL[u[i]], b = B64VAL[u[i + 1]], c = n - i == 3 ? B64VAL[u[i + 2]] : 0;
        if ((a | b | c) < 0) return -1;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6;
        /* non-canonical trailing bits: the ones below the last whole byte must be zero */
        if (n - i == 2 ? (v & 0xffff) : (v & 0xff)) return -1;
        out[o++] = (unsigned char)(v >> 16);
        if (n - i == 3) out[o++] = (unsigned char)(v >> 8);
    }
    return (long)o;
}

char *sb_u64_dec(uint64_t v, char *end)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

int sb_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    /* eight bytes a step (a session lookup compares two ids of 40-80 bytes per request); the
     * empty asm hides the running difference from the compiler, so that it cannot stop at the
     * first one found */
    const unsigned char *x = a, *y = b;
    size_t n = alen < blen ? alen : blen, i = 0;
    uint64_t d = alen != blen;
    for (; i + 8 <= n; i += 8) {
        uint64_t u, v;
        memcpy(&u, x + i, 8);
        memcpy(&v, y + i, 8);
        d |= u ^ v;
        __asm__ volatile("" : "+r"(d));
    }
    for (; i < n; i++) {
        d |= (uint64_t)(x[i] ^ y[i]);
        __asm__ volatile("" : "+r"(d));
    }
    return d == 0;
}

uint64_t sb_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t sb_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t sb_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void sb_rfc3339(uint64_t wall_ms, char *out, size_t outlen)
{
    uint64_t secs = wall_ms / 1000;
    if (outlen >= 25 && secs < 253402300800ULL) { /* before year 10000: four-digit years */
        /* civil date from days since 1970-01-01 (H. Hinnant's algorithm), without gmtime_r and
         * snprintf: result mappers format a time per document field */
        uint64_t days = secs / 86400, rem = secs % 86400;
        uint64_t z = days + 719468, era = z / 146097, doe = z - era * 146097;
        uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
        unsigned d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
        unsigned m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
        unsigned y = (unsigned)(yoe + era * 400 + (m <= 2));
        unsigned hh = (unsigned)(rem / 3600), mi = (unsigned)(rem / 60 % 60), ss = (unsigned)(rem % 60);
        unsigned ms = (unsigned)(wall_ms % 1000);
        /* "YYYY-MM-DDTHH:MM:SS.mmmZ", two digits at a time from a table (a mapper formats some
         * 30 times per page of documents: a digit at a time cost nearly three times as much) */
        static const char d2[] = "00010203040506070809101112131415161718192021222324252627282930"
                                 "31323334353637383940414243444546474849505152535455565758596061"
                                 "62636465666768697071727374757677787980818283848586878889909192"
                                 "93949596979899";
#define SB_D2(at, v) memcpy(out + (at), d2 + 2 * (v), 2)
        memcpy(out, "0000-00-00T00:00:00.000Z", 25);
        SB_D2(0, y / 100);
        SB_D2(2, y % 100);
        SB_D2(5, m);
        SB_D2(8, d);
        SB_D2(11, hh);
        SB_D2(14, mi);
        SB_D2(17, ss);
        out[20] = (char)('0' + ms / 100);
        SB_D2(21, ms % 100);
#undef SB_D2
        return;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(wall_ms % 1000));
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return d[m - 1];
}

int sb_parse_rfc3339(const char *s, int64_t *out_ms)
{
    int y, mo, d, h, mi, se;
    size_t n = strlen(s);
    if (n < 20) return -1;
    if (digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) ||
        s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &se))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 60)
        return -1;
    const char *p = s + 19;
    int ms = 0;
    if (*p == '.') {
        p++;
        int nd = 0;
        while (isdigit((unsigned char)*p)) {
            if (nd < 3) ms = ms * 10 + (*p - '0');
            nd++;
            p++;
        }
        if (nd == 0) return -1;
        while (nd < 3) {
            ms *= 10;
            nd++;
        }
    }
    int off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return -1;
        off = (oh * 60 + om) * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return -1;
    }
    if (*p) return -1;
    /* days from civil (Howard Hinnant) */
    int yy = y - (mo <= 2);
    int era = (yy >= 0 ? yy : yy - 399) / 400;
    unsigned yoe = (unsigned)(yy - era * 400);
    unsigned doy = (unsigned)((153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1);
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = (int64_t)era * 146097 + (int64_t)doe - 719468;
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + (se > 59 ? 59 : se) - (int64_t)off * 60;
    *out_ms = secs * 1000 + ms;
    return 0;
}

int sb_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned cp;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i < len) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

int sb_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!s || !*s) return -1;
    const char *p = s;
    if (*p == '-' || *p == '+') p++;
    if (!*p) return -1;
    for (const char *q = p; *q; q++)
        if (!isdigit((unsigned char)*q)) return -1;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return -1;
    if (v < min || v > max) return -1;
    *out = v;
    return 0;
}

int sb_strcaseeq(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

size_t sb_strlcpy(char *dst, const char *src, size_t cap)
{
    size_t n = strlen(src);
    if (cap) {
        size_t c = n < cap - 1 ? n : cap - 1;
        memcpy(dst, src, c);
        dst[c] = '\0';
    }
    return n;
}

void sb_sha256_hex(const void *s, size_t n, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)s, n, md);
    sb_hex_encode(md, sizeof md, out);
}
