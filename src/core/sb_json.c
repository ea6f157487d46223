#include "core/sb_json.h"

#include "core/sb_arena.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* The structure follows cJSON 1.7's parser step for step (positions, the whitespace rule, the
 * nesting limit, escapes), so that every input gives the same tree or the same refusal; only the
 * inner loops differ. */

/* The parse's state. The position is not in it: each step takes it as `p` and returns where it
 * stopped (NULL: refused), so it stays in a register through the recursion instead of being
 * stored and reloaded at every byte looked at. */
typedef struct pbuf {
    const unsigned char *c, *end; /* the text, and one past its last byte */
    size_t depth;
    sb_arena *arena; /* NULL: malloc (the tree is freed with cJSON_Delete) */
    /* with an arena: zeroed nodes taken from it in batches of 32 (one arena call per batch
     * instead of one per node), and c is the arena's own copy of the text, writable through w:
     * a string is its bytes in that copy (parse_string_raw) */
    cJSON *nodes;
    size_t nnodes;
    unsigned char *w;
} pbuf;

#define NODE_BATCH 32

static inline const unsigned char *parse_value(cJSON *item, pbuf *b, const unsigned char *p);

static cJSON *new_item(pbuf *b)
{
    if (b->arena) {
        if (!b->nnodes) {
            b->nodes = sb_arena_alloc(b->arena, NODE_BATCH * sizeof(cJSON)); /* zeroed */
            if (!b->nodes) return sb_arena_alloc(b->arena, sizeof(cJSON)); /* near the limit */
            b->nnodes = NODE_BATCH;
        }
        b->nnodes--;
        return b->nodes++;
    }
    cJSON *n = malloc(sizeof *n);
    if (n) memset(n, 0, sizeof *n);
    return n;
}

/* Bytes <= 32 are whitespace; stopping at the end leaves the position on the last byte. */
static const unsigned char *skip_ws_run(const unsigned char *p, const unsigned char *end)
{
    while (p < end && *p <= 32) p++;
    return p == end ? p - 1 : p;
}

/* compact JSON (what providers send) has no whitespace: one test, then the loop only if needed */
static inline const unsigned char *skip_ws(const unsigned char *p, const unsigned char *end)
{
    return p < end && *p <= 32 ? skip_ws_run(p, end) : p;
}

static int is_num_char(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || ch == '+' || ch == '-' || ch == 'e' || ch == 'E' ||
           ch == '.';
}

static const unsigned char *parse_number(cJSON *item, const unsigned char *t,
                                         const unsigned char *end)
{
    /* the run of number characters, however long (as this cJSON does), then strtod on it; an
     * integer of at most 15 digits (what most are: epoch seconds, counts, orders) is exact as a
     * double, what strtod would give, and is read from the text in the same pass */
    size_t avail = (size_t)(end - t), neg = t[0] == '-', k = neg;
    uint64_t u = 0;
    while (k < avail && k - neg < 16 && t[k] >= '0' && t[k] <= '9')
        u = u * 10 + (uint64_t)(t[k++] - '0');
    size_t i = k;
    while (i < avail && is_num_char(t[i])) i++;
    double v;
    size_t used;
    if (i == k && k - neg >= 1 && k - neg <= 15) {
        v = neg ? -(double)u : (double)u;
        used = i;
    } else {
        char small[64], *num = small;
        if (i >= sizeof small && !(num = malloc(i + 1))) return NULL;
        memcpy(num, t, i);
        num[i] = '\0';
        char *stop = NULL;
        v = strtod(num, &stop);
        used = (size_t)(stop - num);
        if (num != small) free(num);
    }
    if (used == 0) return NULL;
    item->valuedouble = v;
    if (v >= INT_MAX)
        item->valueint = INT_MAX;
    else if (v <= (double)INT_MIN)
        item->valueint = INT_MIN;
    else
        item->valueint = (int)v;
    item->type = cJSON_Number;
    return t + used;
}

static unsigned hex4(const unsigned char *p)
{
    unsigned h = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char ch = p[i];
        if (ch >= '0' && ch <= '9')
            h += (unsigned)(ch - '0');
        else if (ch >= 'A' && ch <= 'F')
            h += 10u + (unsigned)(ch - 'A');
        else if (ch >= 'a' && ch <= 'f')
            h += 10u + (unsigned)(ch - 'a');
        else
            return 0; /* as cJSON: an invalid digit reads as code point 0 */
        if (i < 3) h <<= 4;
    }
    return h;
}

/* \uXXXX (or a surrogate pair) at p, before end: UTF-8 into *o. Returns the escape's length, or
 * 0 when it is invalid. */
static unsigned char utf16_escape(const unsigned char *p, const unsigned char *end,
                                  unsigned char **o)
{
    if (end - p < 6) return 0;
    unsigned long cp;
    unsigned first = hex4(p + 2);
    unsigned char seq;
    if (first >= 0xDC00 && first <= 0xDFFF) return 0;
    if (first >= 0xD800 && first <= 0xDBFF) {
        const unsigned char *q = p + 6;
        if (end - q < 6 || q[0] != '\\' || q[1] != 'u') return 0;
        unsigned second = hex4(q + 2);
        if (second < 0xDC00 || second > 0xDFFF) return 0;
        cp = 0x10000 + (((unsigned long)(first & 0x3FF) << 10) | (second & 0x3FF));
        seq = 12;
    } else {
        cp = first;
        seq = 6;
    }
    unsigned char n, mark = 0;
    if (cp < 0x80)
        n = 1;
    else if (cp < 0x800)
        n = 2, mark = 0xC0;
    else if (cp < 0x10000)
        n = 3, mark = 0xE0;
    else if (cp <= 0x10FFFF)
        n = 4, mark = 0xF0;
    else
        return 0;
    for (unsigned char k = (unsigned char)(n - 1); k > 0; k--) {
        (*o)[k] = (unsigned char)((cp | 0x80) & 0xBF);
        cp >>= 6;
    }
    (*o)[0] = n > 1 ? (unsigned char)((cp | mark) & 0xFF) : (unsigned char)(cp & 0x7F);
    *o += n;
    return seq;
}

/* The first '"' or '\\' in [p, lim), or NULL -- and with `ctl`, the first byte below 0x20 too
 * (ctl is a constant where this is inlined): 16 bytes at a time with SSE2, never reading past lim
 * (most strings are short keys and values, where two memchr calls cost more). */
static inline __attribute__((always_inline)) const unsigned char *
string_stop(const unsigned char *p, const unsigned char *lim, int ctl)
{
#ifdef __SSE2__
    const __m128i qv = _mm_set1_epi8('"'), bv = _mm_set1_epi8('\\'), cv = _mm_set1_epi8(0x1f);
    while (lim - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i hit = _mm_or_si128(_mm_cmpeq_epi8(v, qv), _mm_cmpeq_epi8(v, bv));
        if (ctl) hit = _mm_or_si128(hit, _mm_cmpeq_epi8(_mm_max_epu8(v, cv), cv)); /* v <= 0x1f */
        unsigned m = (unsigned)_mm_movemask_epi8(hit);
        if (m) return p + __builtin_ctz(m);
        p += 16;
    }
#endif
    for (; p < lim; p++)
        if (*p == '"' || *p == '\\' || (ctl && *p < 0x20)) return p;
    return NULL;
}

/* The closing quote of the string whose bytes start at p, escapes skipped in pairs (where cJSON
 * finds it), or NULL; *nesc counts the escapes' backslashes. */
static const unsigned char *string_end(const unsigned char *p, const unsigned char *lim,
                                       size_t *nesc)
{
    while (p < lim && *p != '"') {
        if (*p == '\\') {
            if (p + 1 >= lim) return NULL;
            ++*nesc;
            p++;
        }
        p++;
    }
    return p < lim ? p : NULL;
}

/* The bytes [p, end) of a string with its escapes undone, written at o (which may be p itself or
 * behind it: the unescaped form is never longer, and each escape is read whole before its at
 * most 4 bytes are written). Returns the end of what was written, or NULL for a bad escape. */
static unsigned char *unescape(unsigned char *o, const unsigned char *p, const unsigned char *end)
{
    while (p < end) {
        const unsigned char *bs = memchr(p, '\\', (size_t)(end - p));
        size_t run = bs ? (size_t)(bs - p) : (size_t)(end - p);
        memmove(o, p, run);
        o += run;
        if (!bs) break;
        p = bs;
        unsigned char seq = 2;
        switch (p[1]) {
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case '"':
        case '\\':
        case '/': *o++ = p[1]; break;
        case 'u':
            seq = utf16_escape(p, end, &o);
            if (seq == 0) return NULL;
            break;
        default:
            return NULL;
        }
        p += seq;
    }
    return o;
}

/* parse_string_raw's path for a string with an escape (or none closed): kept out of line */
static __attribute__((noinline)) unsigned char *parse_string_escaped(pbuf *b,
                                                                     const unsigned char *start,
                                                                     const unsigned char **pp)
{
    const unsigned char *lim = b->end;
    unsigned char *out;
    size_t nesc = 0;
    const unsigned char *end = string_end(start, lim, &nesc);
    if (!end) return NULL;
    if (b->w)
        out = b->w + (start - b->c);
    else if (!(out = malloc((size_t)(end - start) - nesc + 2))) /* as cJSON sizes it, plus 1 */
        return NULL;
    unsigned char *o = unescape(out, start, end);
    if (!o) {
        if (!b->w) free(out);
        return NULL;
    }
    *o = '\0';
    *pp = end + 1;
    return out;
}

/* The string literal at *pp: a malloc'd NUL-terminated copy or, with an arena (b->w), the string
 * in place (its own bytes in the arena's copy of the text, unescaped where they stand and ended
 * by a NUL), *pp then past its closing quote; NULL when it is not a valid one. With want_clean,
 * *clean is its length + 1 when it holds no escape and no byte below 0x20 -- it is then written in
 * JSON as it stands between quotes -- and 0 otherwise (always 0 without).
 * Inlined where it is called (a member's name, a string value): a call cost as much as the scan
 * of a short string. */
static inline __attribute__((always_inline)) unsigned char *
parse_string_raw(pbuf *b, const unsigned char **pp, int want_clean, size_t *clean)
{
    const unsigned char *q = *pp, *lim = b->end;
    *clean = 0;
    if (*q != '"') return NULL;
    const unsigned char *start = q + 1;
    unsigned char *out;
    /* most strings have no escape: the first quote or backslash is the closing quote, and the
     * run is taken at once */
    const unsigned char *qt = string_stop(start, lim, want_clean);
    if (__builtin_expect(qt && *qt == '"', 1))
        *clean = (size_t)(qt - start) + 1;
    else if (want_clean && qt && *qt < 0x20) /* a raw control character (cJSON takes it) */
        qt = string_stop(qt, lim, 0);
    if (__builtin_expect(!qt || *qt != '"', 0)) return parse_string_escaped(b, start, pp);
    size_t n = (size_t)(qt - start);
    if (b->w) {
        out = b->w + (start - b->c);
    } else {
        if (!(out = malloc(n + 1))) return NULL;
        memcpy(out, start, n);
    }
    out[n] = '\0';
    *pp = qt + 1;
    return out;
}

/* An array or an object (cJSON's parse_array / parse_object, which differ only in the name and
 * ':' before each member's value). */
static const unsigned char *parse_container(cJSON *item, pbuf *b, const unsigned char *p,
                                            int object)
{
    const unsigned char open = object ? '{' : '[', close = object ? '}' : ']';
    const unsigned char *const end = b->end;
    cJSON *head = NULL, *cur = NULL;
    if (b->depth >= CJSON_NESTING_LIMIT) return NULL;
    b->depth++;
    if (p >= end || *p != open) goto fail;
    p = skip_ws(p + 1, end);
    if (p < end && *p == close) goto success;
    if (p >= end) goto fail;
    p--;
    do {
        cJSON *n = new_item(b);
        if (!n) goto fail;
        if (!head) {
            head = cur = n;
        } else {
            cur->next = n;
            n->prev = cur;
            cur = n;
        }
        p = skip_ws(p + 1, end);
        if (object) {
            if (p >= end) goto fail;
            size_t clean;
            unsigned char *key = parse_string_raw(b, &p, 0, &clean);
            if (!key) goto fail;
            cur->string = (char *)key;
            p = skip_ws(p, end);
            if (p >= end || *p != ':') goto fail;
            p = skip_ws(p + 1, end);
        }
        if (!(p = parse_value(cur, b, p))) goto fail;
        p = skip_ws(p, end);
    } while (p < end && *p == ',');
    if (p >= end || *p != close) goto fail;
success:
    b->depth--;
    if (head) head->prev = cur;
    item->type = object ? cJSON_Object : cJSON_Array;
    item->child = head;
    return p + 1;
fail:
    if (head && !b->arena) cJSON_Delete(head);
    return NULL;
}

/* null, false or true at p (cJSON sets valueint 1 for true) */
static inline __attribute__((always_inline)) const unsigned char *
literal(cJSON *item, const unsigned char *p, const unsigned char *end, const char *word, int type)
{
    size_t n = __builtin_strlen(word); /* a constant: the memcmp below is a compare or two */
    if ((size_t)(end - p) < n || memcmp(p, word, n) != 0) return NULL;
    item->type = type;
    item->valueint = type == cJSON_True;
    return p + n;
}

/* Inlined into parse_container (the recursion goes through it): a call per value cost more than
 * most values take to read. */
static inline __attribute__((always_inline)) const unsigned char *
parse_value(cJSON *item, pbuf *b, const unsigned char *p)
{
    if (p >= b->end) return NULL;
    switch (*p) {
    case 'n':
        return literal(item, p, b->end, "null", cJSON_NULL);
    case 'f':
        return literal(item, p, b->end, "false", cJSON_False);
    case 't':
        return literal(item, p, b->end, "true", cJSON_True);
    case '"': {
        size_t clean;
        unsigned char *s = parse_string_raw(b, &p, 1, &clean);
        if (!s) return NULL;
        item->type = cJSON_String;
        item->valuestring = (char *)s;
        /* an arena tree's hint for sb_json_clean (cJSON leaves valueint 0 for a string, and
         * sb_json_parse's trees must be cJSON's) */
        if (b->arena && clean <= INT_MAX) item->valueint = (int)clean;
        return p;
    }
    case '[':
        return parse_container(item, b, p, 0);
    case '{':
        return parse_container(item, b, p, 1);
    default:
        if (*p == '-' || (*p >= '0' && *p <= '9')) return parse_number(item, p, b->end);
        return NULL;
    }
}

/* *end (if not NULL) is set to the byte after the value, in b.c's text, on success */
static cJSON *parse(const char *s, size_t len, sb_arena *arena, const unsigned char **end)
{
    if (!s || len == 0) return NULL;
    pbuf b = {.c = (const unsigned char *)s, .arena = arena};
    if (arena) {
        /* one copy of the whole text, parsed in place: no allocation or copy per string */
        b.w = sb_arena_alloc_bytes(arena, len + 1);
        if (!b.w) return NULL;
        memcpy(b.w, s, len);
        b.w[len] = '\0';
        b.c = b.w;
    }
    b.end = b.c + len;
    const unsigned char *p = b.c;
    if (len > 4 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) p += 3; /* a UTF-8 BOM */
    cJSON *item = new_item(&b);
    if (!item) return NULL;
    if (!(p = parse_value(item, &b, skip_ws(p, b.end)))) {
        if (!arena) cJSON_Delete(item);
        return NULL;
    }
    if (end) *end = p;
    return item;
}

cJSON *sb_json_parse(const char *s, size_t len)
{
    return parse(s, len, NULL, NULL);
}

cJSON *sb_json_parse_end(const char *s, size_t len, const char **end)
{
    const unsigned char *e = NULL;
    cJSON *v = parse(s, len, NULL, &e);
    if (v && end) *end = (const char *)e;
    return v;
}

cJSON *sb_json_parse_in(const char *s, size_t len, sb_arena *a)
{
    return a ? parse(s, len, a, NULL) : NULL;
}
