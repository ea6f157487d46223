#include "core/sb_buf.h"

#include "core/sb_util.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__SSE2__) && (defined(__GNUC__) || defined(__clang__))
#include <tmmintrin.h>
#define SB_ESC_SHUFFLE 1
#endif

void sb_buf_init(sb_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

static int grow(sb_buf *b, size_t need)
{
    if (need > b->max || need == SIZE_MAX) return SB_BUF_ETOOBIG;
    if (need < b->cap) return 0; /* room for need bytes plus the NUL */
    size_t cap = b->cap ? b->cap : 256;
    while (cap <= need) cap = cap > SIZE_MAX / 2 ? need + 1 : cap * 2;
    size_t limit = b->max == SIZE_MAX ? SIZE_MAX : b->max + 1;
    if (cap > limit) cap = limit;
    char *p = realloc(b->data, cap);
    if (!p) return SB_BUF_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int sb_buf_append(sb_buf *b, const void *p, size_t n)
{
    if (n > b->max - b->len) return SB_BUF_ETOOBIG;
    int rc = grow(b, b->len + n);
    if (rc) return rc;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int sb_buf_reserve(sb_buf *b, size_t n)
{
    if (n > b->max - b->len) return SB_BUF_ETOOBIG;
    return grow(b, b->len + n);
}

int sb_buf_puts(sb_buf *b, const char *s)
{
    return sb_buf_append(b, s, strlen(s));
}

int sb_buf_vprintf(sb_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap2);
    va_end(ap2);
    if (n < 0) return SB_BUF_ENOMEM;
    if ((size_t)n < sizeof small) return sb_buf_append(b, small, (size_t)n);
    if ((size_t)n > b->max - b->len) return SB_BUF_ETOOBIG;
    int rc = grow(b, b->len + (size_t)n);
    if (rc) return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int sb_buf_printf(sb_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = sb_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

/* Bytes each byte takes once escaped: 1, 2 (\" \\ \n \r \t \b \f) or 6 (\u00XX). */
static const unsigned char esc_len[256] = {
    6, 6, 6, 6, 6, 6, 6, 6, 2, 2, 2, 6, 2, 2, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
    1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

/* The letter after the backslash of a two-byte escape (0: the byte takes \u00XX). */
static const unsigned char esc_two[256] = {
    ['"'] = '"', ['\\'] = '\\', ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't',
};

/* One escaped byte (esc_len[c] of 2 or 6) at o; returns the bytes written. */
static size_t esc_one(unsigned char *o, unsigned char c)
{
    static const char hx[] = "0123456789abcdef";
    if (esc_two[c]) {
        o[0] = '\\';
        o[1] = esc_two[c];
        return 2;
    }
    memcpy(o, "\\u00", 4);
    o[4] = (unsigned char)hx[c >> 4];
    o[5] = (unsigned char)hx[c & 15];
    return 6;
}

/* Write [p, end) escaped at o, a byte at a time; returns the end. */
static unsigned char *esc_bytes(unsigned char *o, const unsigned char *p, const unsigned char *end)
{
    for (; p < end; p++) {
        if (esc_len[*p] == 1)
            *o++ = *p;
        else
            o += esc_one(o, *p);
    }
    return o;
}

#ifdef __SSE2__
/* 0xff in each byte of v below 0x20 (a control character), 0 elsewhere. */
static inline __m128i ctl_bytes(__m128i v)
{
    return _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x1f)), _mm_set1_epi8(0x1f));
}

/* The bytes of v that need escaping: a quote, a backslash or a control character. */
static unsigned special_mask(__m128i v)
{
    __m128i ctl = ctl_bytes(v);
    __m128i q = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
    __m128i bs = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(ctl, _mm_or_si128(q, bs)));
}

static unsigned special16(const unsigned char *p)
{
    return special_mask(_mm_loadu_si128((const __m128i *)(const void *)p));
}
#endif

#ifdef SB_ESC_SHUFFLE
/* The escape of a block with quotes and backslashes in one shuffle (SSSE3's pshufb) per 8 bytes,
 * whatever their number, instead of a step per escape: a JSON text escaped into a text block has
 * one every few bytes, and the count per block varies, which the step loop's branches mispredict.
 * For each mask of the bytes of an 8-byte run that take a backslash, esc_shuf is the shuffle that
 * spreads the run out with a gap (0x80, which pshufb turns into 0) before each of them, and
 * esc_shuf_len the run's length escaped. Filled at load, with esc_shuf_on set when the CPU has
 * SSSE3 (every x86-64 server since 2006, but the build targets plain x86-64). */
static unsigned char esc_shuf[256][16] __attribute__((aligned(16)));
static unsigned char esc_shuf_len[256];
static int esc_shuf_cpu, esc_shuf_on;

__attribute__((constructor)) static void esc_shuf_init(void)
{
    for (unsigned m = 0; m < 256; m++) {
        unsigned j = 0;
        for (unsigned i = 0; i < 8; i++) {
            if (m >> i & 1) esc_shuf[m][j++] = 0x80;
            esc_shuf[m][j++] = (unsigned char)i;
        }
        esc_shuf_len[m] = (unsigned char)j;
        for (; j < 16; j++) esc_shuf[m][j] = 0x80; /* past the run: written over later */
    }
    __builtin_cpu_init();
    esc_shuf_cpu = esc_shuf_on = __builtin_cpu_supports("ssse3") != 0;
}

/* Escapes whole blocks of [p, end) at *op while they hold no control character, and returns
 * where it stopped: fewer than 16 bytes left, or a block with a control character (for the
 * caller's loop). Writes up to 16 bytes past the escaped text (the caller's slack). */
__attribute__((target("ssse3"))) static const unsigned char *
esc_blocks_shuf(unsigned char **op, const unsigned char *p, const unsigned char *end)
{
    const __m128i qv = _mm_set1_epi8('"'), bv = _mm_set1_epi8('\\');
    const __m128i cv = _mm_set1_epi8(0x1f), gap = _mm_set1_epi8((char)0x80);
    unsigned char *o = *op;
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i ctl = _mm_cmpeq_epi8(_mm_max_epu8(v, cv), cv);
        __m128i qb = _mm_or_si128(_mm_cmpeq_epi8(v, qv), _mm_cmpeq_epi8(v, bv));
        unsigned m = (unsigned)_mm_movemask_epi8(qb);
        if (_mm_movemask_epi8(ctl)) break;
        if (!m) {
            _mm_storeu_si128((__m128i *)(void *)o, v);
            p += 16;
            o += 16;
            continue;
        }
        unsigned lo = m & 255, hi = m >> 8;
        __m128i s = _mm_load_si128((const __m128i *)(const void *)esc_shuf[lo]);
        __m128i r = _mm_or_si128(_mm_shuffle_epi8(v, s), _mm_and_si128(_mm_cmpeq_epi8(s, gap), bv));
        _mm_storeu_si128((__m128i *)(void *)o, r);
        o += esc_shuf_len[lo];
        s = _mm_load_si128((const __m128i *)(const void *)esc_shuf[hi]);
        r = _mm_or_si128(_mm_shuffle_epi8(_mm_srli_si128(v, 8), s),
                         _mm_and_si128(_mm_cmpeq_epi8(s, gap), bv));
        _mm_storeu_si128((__m128i *)(void *)o, r);
        o += esc_shuf_len[hi];
        p += 16;
    }
    *op = o;
    return p;
}
#endif

int sb_buf_escape_shuffle(int on)
{
#ifdef SB_ESC_SHUFFLE
    esc_shuf_on = on && esc_shuf_cpu;
    return esc_shuf_on;
#else
    (void)on;
    return 0;
#endif
}

/* Write u[0..len) escaped at o; returns the end. With `slack` (16 bytes of room past the escaped
 * text) and SSE2 it copies 16 bytes at a time, past the end too. */
static unsigned char *esc_write(unsigned char *o, const unsigned char *p, size_t len, int slack)
{
    const unsigned char *end = p + len;
#ifdef __SSE2__
    while (slack && end - p >= 16) {
#ifdef SB_ESC_SHUFFLE
        if (esc_shuf_on && (p = esc_blocks_shuf(&o, p, end), end - p < 16)) break;
#endif
        /* a block with a control character (or no SSSE3) */
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        unsigned m = special_mask(v);
        _mm_storeu_si128((__m128i *)(void *)o, v);
        if (!m) {
            p += 16;
            o += 16;
            continue;
        }
        if (end - p < 32) { /* near the end: the first escape, then the next 16 from after it */
            unsigned k = (unsigned)__builtin_ctz(m);
            p += k;
            o += k;
            o += esc_one(o, *p++);
            continue;
        }
        /* every escape of this block in one go (a JSON text escaped into a text block has a quote
         * every few bytes): each is written over the copy, then the rest of the block is copied
         * again after it -- loads stay within the 32 bytes ahead, stores within the slack */
        unsigned at = 0;
        do {
            unsigned k = (unsigned)__builtin_ctz(m);
            m &= m - 1;
            o += k - at;
            if (p[k] == '"' || p[k] == '\\') {
                /* the common case: a backslash, then the rest of the block from the byte itself */
                *o++ = '\\';
                at = k;
            } else {
                o += esc_one(o, p[k]);
                at = k + 1;
            }
            __m128i rest = _mm_loadu_si128((const __m128i *)(const void *)(p + at));
            _mm_storeu_si128((__m128i *)(void *)o, rest);
        } while (m);
        o += 16 - at;
        p += 16;
    }
#else
    (void)slack;
#endif
    /* the tail, or a short string (most values), 8 bytes at a time while none needs escaping:
     * `hit` has a byte's high bit set for a byte below 0x20, a quote or a backslash (a borrow can
     * also mark a byte above one of those, never a block without one), and a block with a hit
     * goes byte by byte */
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    while (end - p >= 8) {
        uint64_t x, q, bs;
        memcpy(&x, p, 8);
        q = x ^ (ones * '"');
        bs = x ^ (ones * '\\');
        uint64_t hit = (((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((bs - ones) & ~bs)) & high;
        if (!hit) {
            memcpy(o, &x, 8);
            p += 8;
            o += 8;
            continue;
        }
        o = esc_bytes(o, p, p + 8);
        p += 8;
    }
    return esc_bytes(o, p, end);
}

/* 1 when u[0..len) holds a byte below 0x20 (escaped as \u00XX or a two-byte escape): one
 * compare per 16-byte block, tested once at the end. */
static int has_ctl(const unsigned char *u, size_t len)
{
    size_t i = 0;
#ifdef __SSE2__
    __m128i acc = _mm_setzero_si128();
    for (; i + 16 <= len; i += 16)
        acc = _mm_or_si128(acc, ctl_bytes(_mm_loadu_si128((const __m128i *)(const void *)(u + i))));
    if (_mm_movemask_epi8(acc)) return 1;
#endif
    for (; i < len; i++)
        if (u[i] < 0x20) return 1;
    return 0;
}

int sb_buf_json_string(sb_buf *b, const char *s)
{
    return sb_buf_json_stringn(b, s, strlen(s));
}

int sb_buf_json_stringn(sb_buf *b, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t room = b->max - b->len;
    /* Room for the most the escaped string can take (plus slack), then one pass:
     * - a short string (keys, most values): every byte \u00XX;
     * - a long one without a control character -- a JSON text escaped into a text block, whose
     *   own strings hold escapes, never the raw bytes: twice its length. */
    size_t worst = 0;
    if (len <= 256 && 6 * len + 2 + 16 <= room)
        worst = 6 * len + 2 + 16;
    else if (room >= 18 && len <= (room - 18) / 2 && !has_ctl(u, len))
        worst = 2 * len + 2 + 16;
    if (worst) {
        int rc = grow(b, b->len + worst);
        if (rc) return rc;
        unsigned char *o = (unsigned char *)b->data + b->len;
        *o = '"';
        unsigned char *e = esc_write(o + 1, u, len, 1);
        *e++ = '"';
        b->len += (size_t)(e - o);
        b->data[b->len] = '\0';
        return 0;
    }
    /* else (a control character, or too little room for that) one pass to size it, one to write
     * it -- all or nothing, one allocation (a JSON document escaped into a text block has
     * thousands of quotes: run-by-run appends cost more) */
    size_t n = 2, i = 0;
#ifdef __SSE2__
    for (; i + 16 <= len; i += 16) {
        unsigned m = special16(u + i);
        n += 16;
        for (; m; m &= m - 1) n += esc_len[u[i + (unsigned)__builtin_ctz(m)]] - 1u;
    }
#endif
    for (; i < len; i++) n += esc_len[u[i]];
    if (n > room) return SB_BUF_ETOOBIG;
    int slack = n + 16 <= room;
    int rc = grow(b, b->len + n + (slack ? 16 : 0)); /* and the NUL */
    if (rc) return rc;
    unsigned char *o = (unsigned char *)b->data + b->len;
    *o = '"';
    unsigned char *e = esc_write(o + 1, u, len, slack);
    *e = '"';
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

void sb_buf_reset(sb_buf *b)
{
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

void sb_buf_free(sb_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *sb_buf_detach(sb_buf *b, size_t *len)
{
    char *p = b->data;
    if (!p) p = calloc(1, 1);
    if (len) *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

/* ---- JSON serialization --------------------------------------------------------------------- */

int sb_buf_json_number(sb_buf *b, double d)
{
    char tmp[32];
    int n;
    if (isnan(d) || isinf(d)) return sb_buf_append(b, "null", 4);
    if (d == 0 && signbit(d)) return sb_buf_append(b, "-0", 2);
    if (fabs(d) < 1e15 && d == (double)(int64_t)d) {
        /* an integer: what "%1.15g" prints, without printf */
        int64_t v = (int64_t)d;
        char *e = tmp + sizeof tmp, *p = sb_u64_dec(v < 0 ? (uint64_t)(-v) : (uint64_t)v, e);
        if (v < 0) *--p = '-';
        return sb_buf_append(b, p, (size_t)(e - p));
    }
    /* cJSON's rule: 15 significant digits, 17 when 15 do not read back as the same double (equal
     * within its relative epsilon) */
    n = snprintf(tmp, sizeof tmp, "%1.15g", d);
    if (n > 0 && (size_t)n < sizeof tmp) {
        double t = strtod(tmp, NULL), m = fabs(t) > fabs(d) ? fabs(t) : fabs(d);
        if (!(fabs(t - d) <= m * DBL_EPSILON)) n = snprintf(tmp, sizeof tmp, "%1.17g", d);
    }
    if (n <= 0 || (size_t)n >= sizeof tmp) return -3;
    return sb_buf_append(b, tmp, (size_t)n);
}

/* One byte, inline while there is room (the punctuation between a document's ~500 values). */
static inline int put1(sb_buf *b, char c)
{
    if (b->len + 1 < b->cap && b->len < b->max) {
        b->data[b->len++] = c;
        b->data[b->len] = '\0';
        return 0;
    }
    return sb_buf_append(b, &c, 1);
}

static int json_value(sb_buf *b, const cJSON *v, int depth)
{
    int rc;
    if (!v || depth > 10000) return -3;
    switch (v->type & 0xFF) {
    case cJSON_NULL:
        return sb_buf_append(b, "null", 4);
    case cJSON_False:
        return sb_buf_append(b, "false", 5);
    case cJSON_True:
        return sb_buf_append(b, "true", 4);
    case cJSON_Number:
        return sb_buf_json_number(b, v->valuedouble);
    case cJSON_String:
        return v->valuestring ? sb_buf_json_string(b, v->valuestring) : -3;
    case cJSON_Raw:
        return v->valuestring ? sb_buf_puts(b, v->valuestring) : -3;
    case cJSON_Array:
    case cJSON_Object: {
        int obj = (v->type & 0xFF) == cJSON_Object;
        if ((rc = put1(b, obj ? '{' : '[')) != 0) return rc;
        for (const cJSON *c = v->child; c; c = c->next) {
            if (c != v->child && (rc = put1(b, ',')) != 0) return rc;
            if (obj) {
                if (!c->string) return -3;
                if ((rc = sb_buf_json_string(b, c->string)) != 0) return rc;
                if ((rc = put1(b, ':')) != 0) return rc;
            }
            if ((rc = json_value(b, c, depth + 1)) != 0) return rc;
        }
        return put1(b, obj ? '}' : ']');
    }
    default:
        return -3;
    }
}

int sb_buf_json_value(sb_buf *b, const cJSON *v)
{
    return json_value(b, v, 0);
}

char *sb_json_print(const cJSON *v)
{
    sb_buf b;
    sb_buf_init(&b, (size_t)1 << 30);
    if (sb_buf_reserve(&b, 4096) != 0 || json_value(&b, v, 0) != 0) {
        sb_buf_free(&b);
        return NULL;
    }
    return sb_buf_detach(&b, NULL);
}
