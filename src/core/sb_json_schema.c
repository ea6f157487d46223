/* sb_json_schema: a JSON Schema (2020-12 subset) validator for tool arguments and config. */
#include "core/sb_json_schema.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Maximum nesting of validation steps (subschema applications, $ref hops included). */
#define SB_SCHEMA_DEPTH_MAX 64
/* Maximum value nesting examined by deep equality (enum, const, uniqueItems). */
#define SB_SCHEMA_EQ_DEPTH_MAX 64
/* Total subschema applications per call: stops exponential blow-up through anyOf/$ref DAGs. */
#define SB_SCHEMA_STEPS_MAX 4000000UL
/* Path segments remembered; a deeper path is rendered with a trailing "...". */
#define SB_SCHEMA_SEG_MAX 160
/* Bytes of a property name shown in a message before it is cut with "...". */
#define SB_SCHEMA_NAME_SHOWN 64
/* Longest JSON-pointer reference token we resolve. */
#define SB_SCHEMA_TOKEN_MAX 256
/* Below this many items uniqueItems compares pairwise without allocating. */
#define SB_SCHEMA_UNIQUE_SMALL 16

#if defined(__GNUC__) || defined(__clang__)
#define SB_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SB_PRINTF(f, a)
#endif

/* ---------------------------------------------------------------------------------------------
 * Bounded string builder: never overflows, always NUL-terminated, remembers truncation.
 */
typedef struct {
    char *p;
    size_t cap;
    size_t len;
    int trunc;
} sbuf;

static void sb_init(sbuf *b, char *p, size_t cap)
{
    b->p = p;
    b->cap = cap;
    b->len = 0;
    b->trunc = 0;
    if (cap) p[0] = '\0';
}

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->cap == 0) {
        b->trunc = 1;
        return;
    }
    size_t room = b->cap - 1 - b->len;
    if (n > room) {
        n = room;
        b->trunc = 1;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void sb_putc(sbuf *b, char ch)
{
    sb_put(b, &ch, 1);
}

static void SB_PRINTF(2, 3) sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof tmp) {
        n = (int)sizeof tmp - 1;
        b->trunc = 1;
    }
    sb_put(b, tmp, (size_t)n);
}

/* ---------------------------------------------------------------------------------------------
 * UTF-8
 */

/* Length of the well-formed UTF-8 sequence at s (at most n bytes available), or 0 if the bytes
 * there are not one (overlong, surrogate, > U+10FFFF, truncated, stray continuation). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;
    if (c < 0xE0) return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c < 0xF0) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0;  /* overlong */
        if (c == 0xED && s[1] >= 0xA0) return 0; /* surrogate */
        return 3;
    }
    if (c < 0xF5) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90) return 0;  /* overlong */
        if (c == 0xF4 && s[1] >= 0x90) return 0; /* > U+10FFFF */
        return 4;
    }
    return 0;
}

/* Number of code points in s; an ill-formed byte counts as one. Stops counting at `stop`. */
static size_t utf8_count(const char *s, size_t n, size_t stop)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, count = 0;
    while (i < n && count < stop) {
        if (u[i] < 0x80) {
            i++;
        } else {
            size_t k = utf8_seq(u + i, n - i);
            i += k ? k : 1;
        }
        count++;
    }
    return count;
}

/* Append s, escaped so that the result is printable and unambiguous inside `quote` quotes:
 * backslash and the quote are backslash-escaped, control characters become \n, \t, \r or \u00XX,
 * ill-formed UTF-8 bytes become \xNN. At most `maxin` input bytes are shown, then "...". */
static void sb_put_escaped(sbuf *b, const char *s, char quote, size_t maxin)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), i = 0;
    while (i < n) {
        if (i >= maxin) {
            sb_puts(b, "...");
            return;
        }
        unsigned char c = u[i];
        if (c == (unsigned char)quote || c == '\\') {
            sb_putc(b, '\\');
            sb_putc(b, (char)c);
            i++;
        } else if (c == '\n') {
            sb_puts(b, "\\n");
            i++;
        } else if (c == '\t') {
            sb_puts(b, "\\t");
            i++;
        } else if (c == '\r') {
            sb_puts(b, "\\r");
            i++;
        } else if (c < 0x20 || c == 0x7F) {
            sb_printf(b, "\\u%04x", c);
            i++;
        } else if (c < 0x80) {
            sb_putc(b, (char)c);
            i++;
        } else {
            size_t k = utf8_seq(u + i, n - i);
            if (k) {
                sb_put(b, s + i, k);
                i += k;
            } else {
                sb_printf(b, "\\x%02x", c);
                i++;
            }
        }
    }
}

/* Copy msg into err (errlen bytes), never splitting a UTF-8 sequence. */
static void write_err(char *err, size_t errlen, const char *msg, size_t len)
{
    if (!err || errlen == 0) return;
    size_t cut = len;
    if (cut > errlen - 1) {
        cut = errlen - 1;
        while (cut > 0 && ((unsigned char)msg[cut] & 0xC0) == 0x80)
            cut--;
    }
    memcpy(err, msg, cut);
    err[cut] = '\0';
}

/* ---------------------------------------------------------------------------------------------
 * Numbers and values in messages
 */

static void sb_put_num(sbuf *b, double d)
{
    char tmp[40];
    if (!isfinite(d)) {
        sb_puts(b, d != d ? "NaN" : (d > 0 ? "Infinity" : "-Infinity"));
        return;
    }
    if (d == floor(d) && fabs(d) < 1e15) {
        snprintf(tmp, sizeof tmp, "%.0f", d == 0 ? 0.0 : d);
    } else {
        snprintf(tmp, sizeof tmp, "%.15g", d);
        if (strtod(tmp, NULL) != d) snprintf(tmp, sizeof tmp, "%.17g", d);
    }
    sb_puts(b, tmp);
}

static void sb_put_value(sbuf *b, const cJSON *v)
{
    if (cJSON_IsString(v) && v->valuestring) {
        sb_putc(b, '"');
        sb_put_escaped(b, v->valuestring, '"', 40);
        sb_putc(b, '"');
    } else if (cJSON_IsNumber(v)) {
        sb_put_num(b, v->valuedouble);
    } else if (cJSON_IsTrue(v)) {
        sb_puts(b, "true");
    } else if (cJSON_IsFalse(v)) {
        sb_puts(b, "false");
    } else if (cJSON_IsNull(v)) {
        sb_puts(b, "null");
    } else if (cJSON_IsArray(v)) {
        sb_puts(b, v->child ? "[...]" : "[]");
    } else if (cJSON_IsObject(v)) {
        sb_puts(b, v->child ? "{...}" : "{}");
    } else {
        sb_puts(b, "?");
    }
}

static const char *json_type_name(const cJSON *v)
{
    switch (v->type & 0xFF) {
    case cJSON_False:
    case cJSON_True:
        return "boolean";
    case cJSON_NULL:
        return "null";
    case cJSON_Number:
        return "number";
    case cJSON_String:
        return "string";
    case cJSON_Array:
        return "array";
    case cJSON_Object:
        return "object";
    default:
        return "invalid";
    }
}

static int is_integral(double d)
{
    return isfinite(d) && floor(d) == d;
}

/* A keyword value that must be a non-negative integer; -1 when it is not one. */
static double nonneg_int(const cJSON *v)
{
    if (!cJSON_IsNumber(v) || !is_integral(v->valuedouble) || v->valuedouble < 0) return -1;
    return v->valuedouble;
}

static int type_name_valid(const char *t)
{
    static const char *const names[] = {"string", "number", "integer", "boolean",
                                        "object", "array",  "null"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(t, names[i]) == 0) return 1;
    return 0;
}

static int type_matches(const char *t, const cJSON *v)
{
    switch (t[0]) {
    case 's':
        return strcmp(t, "string") == 0 && cJSON_IsString(v);
    case 'n':
        if (strcmp(t, "number") == 0) return cJSON_IsNumber(v);
        return strcmp(t, "null") == 0 && cJSON_IsNull(v);
    case 'i':
        return strcmp(t, "integer") == 0 && cJSON_IsNumber(v) && is_integral(v->valuedouble);
    case 'b':
        return strcmp(t, "boolean") == 0 && cJSON_IsBool(v);
    case 'o':
        return strcmp(t, "object") == 0 && cJSON_IsObject(v);
    case 'a':
        return strcmp(t, "array") == 0 && cJSON_IsArray(v);
    default:
        return 0;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Deep equality (cJSON_Compare semantics, bounded recursion, exact numeric comparison so that
 * it agrees with the hash used by uniqueItems). 1 equal, 0 different, -1 too deep to tell.
 */
static int json_equal(const cJSON *a, const cJSON *b, int depth)
{
    if ((a->type & 0xFF) != (b->type & 0xFF)) return 0;
    switch (a->type & 0xFF) {
    case cJSON_False:
    case cJSON_True:
    case cJSON_NULL:
        return 1;
    case cJSON_Number:
        return a->valuedouble == b->valuedouble;
    case cJSON_String:
    case cJSON_Raw:
        if (!a->valuestring || !b->valuestring) return a->valuestring == b->valuestring;
        return strcmp(a->valuestring, b->valuestring) == 0;
    case cJSON_Array: {
        const cJSON *x = a->child, *y = b->child;
        if (x && y && depth >= SB_SCHEMA_EQ_DEPTH_MAX) return -1;
        for (; x && y; x = x->next, y = y->next) {
            int r = json_equal(x, y, depth + 1);
            if (r != 1) return r;
        }
        return x == NULL && y == NULL;
    }
    case cJSON_Object: {
        const cJSON *x = a->child, *y = b->child;
        size_t na = 0, nb = 0;
        for (const cJSON *m = x; m; m = m->next)
            na++;
        for (const cJSON *m = y; m; m = m->next)
            nb++;
        if (na != nb) return 0;
        if (na == 0) return 1;
        if (depth >= SB_SCHEMA_EQ_DEPTH_MAX) return -1;
        /* Fast path: same keys in the same order. */
        for (; x && y; x = x->next, y = y->next) {
            if (!x->string || !y->string || strcmp(x->string, y->string) != 0) break;
            int r = json_equal(x, y, depth + 1);
            if (r != 1) return r;
        }
        if (!x) return 1;
        /* Slow path for the rest: every key of each side has an equal value on the other. */
        for (const cJSON *m = x; m; m = m->next) {
            const cJSON *o = m->string ? cJSON_GetObjectItemCaseSensitive(b, m->string) : NULL;
            if (!o) return 0;
            int r = json_equal(m, o, depth + 1);
            if (r != 1) return r;
        }
        for (const cJSON *m = y; m; m = m->next) {
            const cJSON *o = m->string ? cJSON_GetObjectItemCaseSensitive(a, m->string) : NULL;
            if (!o) return 0;
            int r = json_equal(o, m, depth + 1);
            if (r != 1) return r;
        }
        return 1;
    }
    default:
        return 0;
    }
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t str_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    if (!s) return 0;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Hash consistent with json_equal (equal values hash alike; deep levels are not looked at). */
static uint64_t json_hash(const cJSON *v, int depth)
{
    uint64_t tag = (uint64_t)(v->type & 0xFF);
    switch (v->type & 0xFF) {
    case cJSON_Number: {
        double d = v->valuedouble;
        uint64_t bits;
        if (d == 0) d = 0.0; /* -0 == 0 */
        memcpy(&bits, &d, sizeof bits);
        return mix64(bits ^ tag);
    }
    case cJSON_String:
    case cJSON_Raw:
        return mix64(str_hash(v->valuestring) ^ tag);
    case cJSON_Array: {
        uint64_t h = mix64(tag);
        if (depth >= SB_SCHEMA_EQ_DEPTH_MAX) return h;
        for (const cJSON *c = v->child; c; c = c->next)
            h = mix64(h + json_hash(c, depth + 1));
        return h;
    }
    case cJSON_Object: {
        uint64_t h = mix64(tag), sum = 0;
        if (depth >= SB_SCHEMA_EQ_DEPTH_MAX) return h;
        for (const cJSON *c = v->child; c; c = c->next)
            sum += mix64(str_hash(c->string) ^ json_hash(c, depth + 1));
        return mix64(h ^ sum);
    }
    default:
        return mix64(tag);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Formats
 */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int is_alnum(char c)
{
    return is_alpha(c) || is_digit(c);
}

static int is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* n decimal digits at s into *out; 0 or -1. */
static int take_digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit(s[i])) return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return days[m - 1];
}

/* YYYY-MM-DD at s; 0 and 10 bytes consumed, or -1. */
static int parse_full_date(const char *s)
{
    int y, m, d;
    if (take_digits(s, 4, &y) || s[4] != '-' || take_digits(s + 5, 2, &m) || s[7] != '-' ||
        take_digits(s + 8, 2, &d))
        return -1;
    if (m < 1 || m > 12 || d < 1 || d > days_in_month(y, m)) return -1;
    return 0;
}

static int fmt_date(const char *s)
{
    return parse_full_date(s) == 0 && s[10] == '\0';
}

/* RFC 3339 date-time: full-date "T" HH:MM:SS [.frac] ("Z" / ("+"/"-") HH:MM). T and Z may be
 * lower case. A leap second (:60) is accepted only at 23:59 UTC. */
static int fmt_date_time(const char *s)
{
    int hh, mm, ss, oh = 0, om = 0, sign = 0;
    if (parse_full_date(s) < 0) return 0;
    s += 10;
    if (*s != 'T' && *s != 't') return 0;
    s++;
    if (take_digits(s, 2, &hh) || s[2] != ':' || take_digits(s + 3, 2, &mm) || s[5] != ':' ||
        take_digits(s + 6, 2, &ss))
        return 0;
    s += 8;
    if (hh > 23 || mm > 59 || ss > 60) return 0;
    if (*s == '.') {
        s++;
        if (!is_digit(*s)) return 0;
        while (is_digit(*s))
            s++;
    }
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        sign = *s == '+' ? 1 : -1;
        s++;
        if (take_digits(s, 2, &oh) || s[2] != ':' || take_digits(s + 3, 2, &om)) return 0;
        if (oh > 23 || om > 59) return 0;
        s += 5;
    } else {
        return 0;
    }
    if (*s != '\0') return 0;
    if (ss == 60) {
        int utc = ((hh * 60 + mm - sign * (oh * 60 + om)) % 1440 + 1440) % 1440;
        if (utc != 23 * 60 + 59) return 0;
    }
    return 1;
}

static int email_atext(char c)
{
    return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+/=?^_`{|}~-", c) != NULL);
}

/* local@domain: one '@'; local part 1..64 bytes of atext separated by single dots; domain of
 * at least two dot-separated labels of 1..63 [A-Za-z0-9-] (no leading/trailing '-'), <= 253
 * bytes, the last label not all digits. Quoted local parts and address literals are refused. */
static int fmt_email(const char *s)
{
    const char *at = strchr(s, '@');
    if (!at || strchr(at + 1, '@')) return 0;
    size_t llen = (size_t)(at - s);
    if (llen == 0 || llen > 64) return 0;
    if (s[0] == '.' || at[-1] == '.') return 0;
    for (const char *p = s; p < at; p++) {
        if (*p == '.') {
            if (p[1] == '.') return 0;
        } else if (!email_atext(*p)) {
            return 0;
        }
    }
    const char *d = at + 1;
    size_t dlen = strlen(d);
    if (dlen == 0 || dlen > 253) return 0;
    int labels = 0, all_digits = 1;
    const char *p = d;
    for (;;) {
        const char *start = p;
        all_digits = 1;
        while (is_alnum(*p) || *p == '-') {
            if (!is_digit(*p)) all_digits = 0;
            p++;
        }
        size_t n = (size_t)(p - start);
        if (n == 0 || n > 63 || start[0] == '-' || p[-1] == '-') return 0;
        labels++;
        if (*p == '\0') break;
        if (*p != '.') return 0;
        p++;
    }
    return labels >= 2 && !all_digits;
}

/* scheme ":" rest: scheme = ALPHA *(ALPHA / DIGIT / "+" / "-" / "."), rest non-empty printable
 * ASCII without space or the characters never allowed in a URI ("<>\^`{|}), '%' followed by two
 * hex digits, at most one '#'. */
static int fmt_uri(const char *s)
{
    if (!is_alpha(s[0])) return 0;
    const char *p = s + 1;
    while (is_alnum(*p) || *p == '+' || *p == '-' || *p == '.')
        p++;
    if (*p != ':') return 0;
    p++;
    if (*p == '\0') return 0;
    int hashes = 0;
    for (; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7F) return 0;
        if (strchr("\"<>\\^`{|}", c)) return 0;
        if (c == '%') {
            if (!is_hex(p[1]) || !is_hex(p[2])) return 0;
            p += 2;
        } else if (c == '#') {
            if (++hashes > 1) return 0;
        }
    }
    return 1;
}

/* ---------------------------------------------------------------------------------------------
 * $ref resolution: "#" or "#/json/pointer" (~0 ~1 and %XX unescaped) against root.
 */
static const cJSON *resolve_ref(const cJSON *root, const char *ref)
{
    if (!root || !ref || ref[0] != '#') return NULL;
    const char *p = ref + 1;
    const cJSON *cur = root;
    if (*p == '\0') return cur;
    if (*p != '/') return NULL;
    while (*p == '/') {
        char tok[SB_SCHEMA_TOKEN_MAX];
        size_t n = 0;
        p++;
        while (*p && *p != '/') {
            char c = *p;
            if (c == '%') {
                if (!is_hex(p[1]) || !is_hex(p[2])) return NULL;
                char hex[3] = {p[1], p[2], '\0'};
                c = (char)strtol(hex, NULL, 16);
                p += 3;
            } else {
                p++;
            }
            if (c == '\0') return NULL;
            if (n + 1 >= sizeof tok) return NULL;
            tok[n++] = c;
        }
        tok[n] = '\0';
        /* ~1 -> '/', ~0 -> '~', in that order of precedence (single pass). */
        size_t w = 0;
        for (size_t r = 0; r < n; r++) {
            if (tok[r] == '~') {
                if (tok[r + 1] == '0') {
                    tok[w++] = '~';
                } else if (tok[r + 1] == '1') {
                    tok[w++] = '/';
                } else {
                    return NULL;
                }
                r++;
            } else {
                tok[w++] = tok[r];
            }
        }
        tok[w] = '\0';
        if (cJSON_IsObject(cur)) {
            cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
        } else if (cJSON_IsArray(cur)) {
            if (w == 0 || (tok[0] == '0' && w > 1)) return NULL;
            size_t idx = 0;
            for (size_t i = 0; i < w; i++) {
                if (!is_digit(tok[i]) || idx > 100000000) return NULL;
                idx = idx * 10 + (size_t)(tok[i] - '0');
            }
            cur = cur->child;
            while (cur && idx--)
                cur = cur->next;
        } else {
            return NULL;
        }
        if (!cur) return NULL;
    }
    return cur;
}

/* ---------------------------------------------------------------------------------------------
 * Context, paths and errors
 */
typedef struct {
    const char *key; /* NULL: array index */
    size_t idx;
} seg;

typedef struct {
    const cJSON *root;
    const char *where;
    char *err;
    size_t errlen;
    int depth;
    unsigned long steps;
    int quiet; /* > 0 inside anyOf/oneOf/not: failures are expected, do not format them */
    int fatal; /* depth/budget/broken schema: propagate through every combinator */
    size_t nseg;
    seg segs[SB_SCHEMA_SEG_MAX];
} ctx;

static void push_key(ctx *c, const char *key)
{
    if (c->nseg < SB_SCHEMA_SEG_MAX) {
        c->segs[c->nseg].key = key ? key : "";
        c->segs[c->nseg].idx = 0;
    }
    c->nseg++;
}

static void push_idx(ctx *c, size_t idx)
{
    if (c->nseg < SB_SCHEMA_SEG_MAX) {
        c->segs[c->nseg].key = NULL;
        c->segs[c->nseg].idx = idx;
    }
    c->nseg++;
}

static void pop(ctx *c)
{
    c->nseg--;
}

static int ident_like(const char *k)
{
    if (!(is_alpha(k[0]) || k[0] == '_' || k[0] == '$')) return 0;
    for (const char *p = k + 1; *p; p++)
        if (!(is_alnum(*p) || *p == '_' || *p == '$')) return 0;
    return 1;
}

static void render_path(const ctx *c, sbuf *b)
{
    sb_put_escaped(b, c->where, '"', SB_SCHEMA_NAME_SHOWN);
    size_t n = c->nseg < SB_SCHEMA_SEG_MAX ? c->nseg : SB_SCHEMA_SEG_MAX;
    for (size_t i = 0; i < n; i++) {
        const seg *s = &c->segs[i];
        if (b->len > 300) {
            sb_puts(b, "...");
            return;
        }
        if (!s->key) {
            sb_printf(b, "[%zu]", s->idx);
        } else if (ident_like(s->key)) {
            sb_putc(b, '.');
            if (strlen(s->key) > SB_SCHEMA_NAME_SHOWN) {
                sb_put(b, s->key, SB_SCHEMA_NAME_SHOWN);
                sb_puts(b, "...");
            } else {
                sb_puts(b, s->key);
            }
        } else {
            sb_puts(b, "[\"");
            sb_put_escaped(b, s->key, '"', SB_SCHEMA_NAME_SHOWN);
            sb_puts(b, "\"]");
        }
    }
    if (c->nseg > SB_SCHEMA_SEG_MAX) sb_puts(b, "...");
}

static int wants_msg(const ctx *c)
{
    return !c->quiet && !c->fatal && c->err && c->errlen;
}

/* Write "<path>: <text> (<rule>)" (rule may be NULL) into err. */
static void emit(const ctx *c, const char *rule, const char *txt)
{
    char msg[768];
    sbuf b;
    if (!c->err || !c->errlen) return;
    sb_init(&b, msg, sizeof msg);
    render_path(c, &b);
    sb_puts(&b, ": ");
    sb_puts(&b, txt);
    if (rule) {
        sb_puts(&b, " (");
        sb_puts(&b, rule);
        sb_putc(&b, ')');
    }
    write_err(c->err, c->errlen, msg, b.len);
}

/* Report a failure (unless inside anyOf/oneOf/not, where it is expected) and return -1. */
static int SB_PRINTF(3, 4) fail(ctx *c, const char *rule, const char *fmt, ...)
{
    if (!wants_msg(c)) return -1;
    char txt[400];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(txt, sizeof txt, fmt, ap);
    va_end(ap);
    if (n < 0) txt[0] = '\0';
    emit(c, rule, txt);
    return -1;
}

/* A failure no combinator may absorb (depth, budget, unresolvable $ref, out of memory): it is
 * reported even inside anyOf/oneOf/not and makes every enclosing step fail at once. */
static int SB_PRINTF(3, 4) fail_fatal(ctx *c, const char *rule, const char *fmt, ...)
{
    if (c->fatal) return -1;
    c->fatal = 1;
    char txt[400];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(txt, sizeof txt, fmt, ap);
    va_end(ap);
    if (n < 0) txt[0] = '\0';
    emit(c, rule, txt);
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * Validation
 */

/* The keywords of one schema object, gathered in one pass over its members. */
typedef struct {
    const cJSON *type, *enum_, *const_, *ref, *properties, *required, *addl, *items, *prefix;
    const cJSON *min_len, *max_len, *minimum, *maximum, *xmin, *xmax;
    const cJSON *min_items, *max_items, *unique, *min_props, *max_props, *format;
    const cJSON *all_of, *any_of, *one_of, *not_;
} keywords;

#define KW(field, name)                                                                            \
    if (!k->field && strcmp(s, name) == 0) {                                                       \
        k->field = m;                                                                              \
        continue;                                                                                  \
    }

static void gather(const cJSON *schema, keywords *k)
{
    memset(k, 0, sizeof *k);
    for (const cJSON *m = schema->child; m; m = m->next) {
        const char *s = m->string;
        if (!s) continue;
        switch (s[0]) {
        case '$':
            KW(ref, "$ref");
            break;
        case 'a':
            KW(addl, "additionalProperties");
            KW(all_of, "allOf");
            KW(any_of, "anyOf");
            break;
        case 'c':
            KW(const_, "const");
            break;
        case 'e':
            KW(enum_, "enum");
            KW(xmin, "exclusiveMinimum");
            KW(xmax, "exclusiveMaximum");
            break;
        case 'f':
            KW(format, "format");
            break;
        case 'i':
            KW(items, "items");
            break;
        case 'm':
            KW(min_len, "minLength");
            KW(max_len, "maxLength");
            KW(minimum, "minimum");
            KW(maximum, "maximum");
            KW(min_items, "minItems");
            KW(max_items, "maxItems");
            KW(min_props, "minProperties");
            KW(max_props, "maxProperties");
            break;
        case 'n':
            KW(not_, "not");
            break;
        case 'o':
            KW(one_of, "oneOf");
            break;
        case 'p':
            KW(properties, "properties");
            KW(prefix, "prefixItems");
            break;
        case 'r':
            KW(required, "required");
            break;
        case 't':
            KW(type, "type");
            break;
        case 'u':
            KW(unique, "uniqueItems");
            break;
        default:
            break;
        }
    }
}

#undef KW

static int validate_node(ctx *c, const cJSON *schema, const cJSON *inst);

static int check_type(ctx *c, const cJSON *type, const cJSON *inst)
{
    if (cJSON_IsString(type)) {
        if (type->valuestring && type_matches(type->valuestring, inst)) return 0;
    } else if (cJSON_IsArray(type)) {
        for (const cJSON *t = type->child; t; t = t->next)
            if (cJSON_IsString(t) && t->valuestring && type_matches(t->valuestring, inst)) return 0;
    } else {
        return 0; /* malformed: sb_schema_check reports it */
    }
    if (!wants_msg(c)) return -1;
    char names[200];
    sbuf b;
    sb_init(&b, names, sizeof names);
    if (cJSON_IsString(type)) {
        sb_put_escaped(&b, type->valuestring ? type->valuestring : "", '"', 32);
    } else {
        int first = 1;
        for (const cJSON *t = type->child; t; t = t->next) {
            if (!cJSON_IsString(t) || !t->valuestring) continue;
            if (!first) sb_puts(&b, t->next ? ", " : " or ");
            sb_put_escaped(&b, t->valuestring, '"', 32);
            first = 0;
        }
    }
    return fail(c, "type", "must be of type %s, got %s", names, json_type_name(inst));
}

static int check_enum(ctx *c, const cJSON *en, const cJSON *inst)
{
    if (!cJSON_IsArray(en)) return 0;
    for (const cJSON *v = en->child; v; v = v->next) {
        int r = json_equal(inst, v, 0);
        if (r == 1) return 0;
        if (r < 0) return fail_fatal(c, "enum", "value nested too deeply to compare");
    }
    if (!wants_msg(c)) return -1;
    char list[240];
    sbuf b;
    sb_init(&b, list, sizeof list);
    int shown = 0;
    for (const cJSON *v = en->child; v; v = v->next) {
        if (shown == 10 || b.len > 160) {
            sb_puts(&b, ", ...");
            break;
        }
        if (shown) sb_puts(&b, ", ");
        sb_put_value(&b, v);
        shown++;
    }
    if (shown == 0) return fail(c, "enum", "no value is allowed (empty enum)");
    return fail(c, "enum", "must be one of %s", list);
}

static int check_const(ctx *c, const cJSON *k, const cJSON *inst)
{
    int r = json_equal(inst, k, 0);
    if (r == 1) return 0;
    if (r < 0) return fail_fatal(c, "const", "value nested too deeply to compare");
    if (!wants_msg(c)) return -1;
    char v[120];
    sbuf b;
    sb_init(&b, v, sizeof v);
    sb_put_value(&b, k);
    return fail(c, "const", "must be equal to %s", v);
}

static int check_string(ctx *c, const keywords *k, const cJSON *inst)
{
    const char *s = inst->valuestring ? inst->valuestring : "";
    if (k->min_len || k->max_len) {
        size_t bytes = strlen(s);
        double lo = nonneg_int(k->min_len), hi = nonneg_int(k->max_len);
        /* Code points <= bytes: decide from the byte length when possible. */
        if (lo > 0 && (double)bytes >= lo) {
            size_t stop = lo > (double)SIZE_MAX / 2 ? SIZE_MAX : (size_t)lo;
            if ((double)utf8_count(s, bytes, stop) < lo)
                return fail(c, "minLength", "must be at least %.0f characters long", lo);
        } else if (lo > 0) {
            return fail(c, "minLength", "must be at least %.0f characters long", lo);
        }
        if (hi >= 0 && (double)bytes > hi) {
            size_t stop = hi >= (double)SIZE_MAX / 2 ? SIZE_MAX : (size_t)hi + 1;
            if ((double)utf8_count(s, bytes, stop) > hi)
                return fail(c, "maxLength", "must be at most %.0f characters long", hi);
        }
    }
    if (cJSON_IsString(k->format) && k->format->valuestring) {
        const char *f = k->format->valuestring;
        if (strcmp(f, "email") == 0) {
            if (!fmt_email(s)) return fail(c, "format", "must be a valid email address");
        } else if (strcmp(f, "date-time") == 0) {
            if (!fmt_date_time(s)) return fail(c, "format", "must be a valid RFC 3339 date-time");
        } else if (strcmp(f, "date") == 0) {
            if (!fmt_date(s)) return fail(c, "format", "must be a valid date (YYYY-MM-DD)");
        } else if (strcmp(f, "uri") == 0) {
            if (!fmt_uri(s)) return fail(c, "format", "must be a valid URI");
        }
    }
    return 0;
}

static int check_number(ctx *c, const keywords *k, const cJSON *inst)
{
    double d = inst->valuedouble;
    char num[48];
    sbuf b;
    sb_init(&b, num, sizeof num);
    if (cJSON_IsNumber(k->minimum) && !(d >= k->minimum->valuedouble)) {
        sb_put_num(&b, k->minimum->valuedouble);
        return fail(c, "minimum", "must be >= %s", num);
    }
    if (cJSON_IsNumber(k->maximum) && !(d <= k->maximum->valuedouble)) {
        sb_put_num(&b, k->maximum->valuedouble);
        return fail(c, "maximum", "must be <= %s", num);
    }
    if (cJSON_IsNumber(k->xmin) && !(d > k->xmin->valuedouble)) {
        sb_put_num(&b, k->xmin->valuedouble);
        return fail(c, "exclusiveMinimum", "must be > %s", num);
    }
    if (cJSON_IsNumber(k->xmax) && !(d < k->xmax->valuedouble)) {
        sb_put_num(&b, k->xmax->valuedouble);
        return fail(c, "exclusiveMaximum", "must be < %s", num);
    }
    return 0;
}

typedef struct {
    uint64_t h;
    size_t idx;
    const cJSON *v;
} hentry;

static int hentry_cmp(const void *pa, const void *pb)
{
    const hentry *a = pa, *b = pb;
    if (a->h != b->h) return a->h < b->h ? -1 : 1;
    return a->idx < b->idx ? -1 : (a->idx > b->idx ? 1 : 0);
}

/* Finds the duplicate pair (i < j) with the smallest j. 1 found, 0 none, -1 too deep, -2 OOM. */
static int find_duplicate(const cJSON *arr, size_t n, size_t *pi, size_t *pj)
{
    if (n < 2) return 0;
    if (n <= SB_SCHEMA_UNIQUE_SMALL) {
        size_t j = 1;
        for (const cJSON *b = arr->child->next; b; b = b->next, j++) {
            size_t i = 0;
            for (const cJSON *a = arr->child; a != b; a = a->next, i++) {
                int r = json_equal(a, b, 0);
                if (r < 0) return -1;
                if (r == 1) {
                    *pi = i;
                    *pj = j;
                    return 1;
                }
            }
        }
        return 0;
    }
    /* Large array: sort by hash, compare only within runs of equal hashes. */
    hentry *e = malloc(n * sizeof *e);
    if (!e) return -2;
    size_t i = 0;
    for (const cJSON *v = arr->child; v && i < n; v = v->next, i++) {
        e[i].h = json_hash(v, 0);
        e[i].idx = i;
        e[i].v = v;
    }
    qsort(e, n, sizeof *e, hentry_cmp);
    int found = 0, rc = 0;
    size_t best_i = 0, best_j = 0;
    for (size_t run = 0; run < n && rc == 0;) {
        size_t end = run + 1;
        while (end < n && e[end].h == e[run].h)
            end++;
        for (size_t b = run + 1; b < end && rc == 0; b++) {
            if (found && e[b].idx >= best_j) break; /* run is sorted by index */
            for (size_t a = run; a < b; a++) {
                int r = json_equal(e[a].v, e[b].v, 0);
                if (r < 0) {
                    rc = -1;
                    break;
                }
                if (r == 1) {
                    if (!found || e[b].idx < best_j) {
                        best_i = e[a].idx;
                        best_j = e[b].idx;
                        found = 1;
                    }
                    break;
                }
            }
        }
        run = end;
    }
    free(e);
    if (rc) return rc;
    if (found) {
        *pi = best_i;
        *pj = best_j;
    }
    return found;
}

static int check_array(ctx *c, const keywords *k, const cJSON *inst)
{
    size_t n = 0;
    for (const cJSON *v = inst->child; v; v = v->next)
        n++;
    double lo = nonneg_int(k->min_items), hi = nonneg_int(k->max_items);
    if (lo >= 0 && (double)n < lo)
        return fail(c, "minItems", "must contain at least %.0f item%s", lo, lo == 1 ? "" : "s");
    if (hi >= 0 && (double)n > hi)
        return fail(c, "maxItems", "must contain at most %.0f item%s", hi, hi == 1 ? "" : "s");
    const cJSON *prefix = cJSON_IsArray(k->prefix) ? k->prefix->child : NULL;
    const cJSON *items = (cJSON_IsObject(k->items) || cJSON_IsBool(k->items)) ? k->items : NULL;
    if (prefix || items) {
        size_t i = 0;
        for (const cJSON *v = inst->child; v; v = v->next, i++) {
            const cJSON *s = prefix ? prefix : items;
            if (prefix) prefix = prefix->next;
            if (!s) break;
            if (cJSON_IsTrue(s)) continue;
            push_idx(c, i);
            int r = validate_node(c, s, v);
            pop(c);
            if (r) return r;
        }
    }
    if (cJSON_IsTrue(k->unique)) {
        size_t i = 0, j = 0;
        int r = find_duplicate(inst, n, &i, &j);
        if (r == -1) return fail_fatal(c, "uniqueItems", "items nested too deeply to compare");
        if (r == -2) return fail_fatal(c, "uniqueItems", "out of memory");
        if (r == 1)
            return fail(c, "uniqueItems", "must not contain duplicate items ([%zu] and [%zu])", i,
                        j);
    }
    return 0;
}

static int check_object(ctx *c, const keywords *k, const cJSON *inst)
{
    if (cJSON_IsArray(k->required)) {
        for (const cJSON *r = k->required->child; r; r = r->next) {
            if (!cJSON_IsString(r) || !r->valuestring) continue;
            if (cJSON_GetObjectItemCaseSensitive(inst, r->valuestring)) continue;
            if (!wants_msg(c)) return -1;
            char name[200];
            sbuf b;
            sb_init(&b, name, sizeof name);
            sb_put_escaped(&b, r->valuestring, '\'', SB_SCHEMA_NAME_SHOWN);
            return fail(c, "required", "missing required property '%s'", name);
        }
    }
    if (k->min_props || k->max_props) {
        size_t n = 0;
        for (const cJSON *m = inst->child; m; m = m->next)
            n++;
        double lo = nonneg_int(k->min_props), hi = nonneg_int(k->max_props);
        if (lo >= 0 && (double)n < lo)
            return fail(c, "minProperties", "must have at least %.0f propert%s", lo,
                        lo == 1 ? "y" : "ies");
        if (hi >= 0 && (double)n > hi)
            return fail(c, "maxProperties", "must have at most %.0f propert%s", hi,
                        hi == 1 ? "y" : "ies");
    }
    const cJSON *props = cJSON_IsObject(k->properties) ? k->properties : NULL;
    const cJSON *addl = (cJSON_IsObject(k->addl) || cJSON_IsBool(k->addl)) ? k->addl : NULL;
    if (addl && cJSON_IsTrue(addl)) addl = NULL;
    if (!props && !addl) return 0;
    for (const cJSON *m = inst->child; m; m = m->next) {
        const cJSON *ps =
            (props && m->string) ? cJSON_GetObjectItemCaseSensitive(props, m->string) : NULL;
        if (!ps) {
            if (!addl) continue;
            if (cJSON_IsFalse(addl)) {
                if (!wants_msg(c)) return -1;
                char name[200];
                sbuf b;
                sb_init(&b, name, sizeof name);
                sb_put_escaped(&b, m->string ? m->string : "", '\'', SB_SCHEMA_NAME_SHOWN);
                return fail(c, "additionalProperties", "unexpected property '%s'", name);
            }
            ps = addl;
        }
        if (cJSON_IsTrue(ps)) continue;
        push_key(c, m->string);
        int r = validate_node(c, ps, m);
        pop(c);
        if (r) return r;
    }
    return 0;
}

static int schema_list_ok(const cJSON *a)
{
    return cJSON_IsArray(a) && a->child;
}

static int check_combinators(ctx *c, const keywords *k, const cJSON *inst)
{
    if (schema_list_ok(k->all_of)) {
        for (const cJSON *s = k->all_of->child; s; s = s->next) {
            int r = validate_node(c, s, inst);
            if (r) return r;
        }
    }
    if (schema_list_ok(k->any_of)) {
        int ok = 0, total = 0;
        c->quiet++;
        for (const cJSON *s = k->any_of->child; s; s = s->next) {
            total++;
            if (validate_node(c, s, inst) == 0) {
                ok = 1;
                break;
            }
            if (c->fatal) break;
        }
        c->quiet--;
        if (c->fatal) return -1;
        if (!ok)
            return fail(c, "anyOf", "must match at least one of the %d allowed schemas", total);
    }
    if (schema_list_ok(k->one_of)) {
        int matches = 0, total = 0;
        c->quiet++;
        for (const cJSON *s = k->one_of->child; s; s = s->next) {
            total++;
            if (validate_node(c, s, inst) == 0 && ++matches > 1) break;
            if (c->fatal) break;
        }
        c->quiet--;
        if (c->fatal) return -1;
        if (matches == 0)
            return fail(c, "oneOf", "must match exactly one of the %d schemas, matched none",
                        total);
        if (matches > 1)
            return fail(c, "oneOf", "must match exactly one schema, matched more than one");
    }
    if (k->not_ && (cJSON_IsObject(k->not_) || cJSON_IsBool(k->not_))) {
        c->quiet++;
        int r = validate_node(c, k->not_, inst);
        c->quiet--;
        if (c->fatal) return -1;
        if (r == 0) return fail(c, "not", "must not match the schema in \"not\"");
    }
    return 0;
}

static int validate_obj(ctx *c, const cJSON *schema, const cJSON *inst)
{
    keywords k;
    int r;
    gather(schema, &k);
    if (k.ref) {
        const cJSON *t = cJSON_IsString(k.ref) ? resolve_ref(c->root, k.ref->valuestring) : NULL;
        if (!t) {
            char ref[120];
            sbuf b;
            sb_init(&b, ref, sizeof ref);
            if (cJSON_IsString(k.ref) && k.ref->valuestring)
                sb_put_escaped(&b, k.ref->valuestring, '"', 80);
            return fail_fatal(c, "$ref", "cannot resolve \"%s\"", ref);
        }
        if ((r = validate_node(c, t, inst))) return r;
    }
    if (k.type && (r = check_type(c, k.type, inst))) return r;
    if (k.enum_ && (r = check_enum(c, k.enum_, inst))) return r;
    if (k.const_ && (r = check_const(c, k.const_, inst))) return r;
    switch (inst->type & 0xFF) {
    case cJSON_String:
        if ((k.min_len || k.max_len || k.format) && (r = check_string(c, &k, inst))) return r;
        break;
    case cJSON_Number:
        if ((k.minimum || k.maximum || k.xmin || k.xmax) && (r = check_number(c, &k, inst)))
            return r;
        break;
    case cJSON_Array:
        if ((r = check_array(c, &k, inst))) return r;
        break;
    case cJSON_Object:
        if ((r = check_object(c, &k, inst))) return r;
        break;
    default:
        break;
    }
    if (k.all_of || k.any_of || k.one_of || k.not_) return check_combinators(c, &k, inst);
    return 0;
}

static int validate_node(ctx *c, const cJSON *schema, const cJSON *inst)
{
    if (c->fatal) return -1;
    if (++c->steps > SB_SCHEMA_STEPS_MAX)
        return fail_fatal(c, "complexity", "schema evaluation exceeds %lu steps",
                          SB_SCHEMA_STEPS_MAX);
    if (c->depth >= SB_SCHEMA_DEPTH_MAX)
        return fail_fatal(c, "depth", "exceeds the maximum nesting depth of %d",
                          SB_SCHEMA_DEPTH_MAX);
    if (cJSON_IsTrue(schema)) return 0;
    if (cJSON_IsFalse(schema)) return fail(c, "false schema", "no value is allowed here");
    if (!cJSON_IsObject(schema)) return fail_fatal(c, "schema", "invalid schema");
    c->depth++;
    int r = validate_obj(c, schema, inst);
    c->depth--;
    return r;
}

int sb_schema_validate(const cJSON *schema, const cJSON *root, const cJSON *instance,
                       const char *where, char *err, size_t errlen)
{
    ctx c;
    c.root = root ? root : schema;
    c.where = where ? where : "value";
    c.err = err;
    c.errlen = errlen;
    c.depth = 0;
    c.steps = 0;
    c.quiet = 0;
    c.fatal = 0;
    c.nseg = 0;
    if (err && errlen) err[0] = '\0';
    if (!schema) return fail(&c, "schema", "no schema");
    if (!instance) return fail(&c, NULL, "missing value");
    return validate_node(&c, schema, instance) ? -1 : 0;
}

/* ---------------------------------------------------------------------------------------------
 * Schema check
 */

static int sc_node(ctx *c, const cJSON *s);

static int is_schema(const cJSON *s)
{
    return cJSON_IsObject(s) || cJSON_IsBool(s);
}

/* Check a keyword whose value is one schema. */
static int sc_sub(ctx *c, const char *kw, const cJSON *v)
{
    push_key(c, kw);
    int r = is_schema(v) ? sc_node(c, v) : fail(c, NULL, "must be a schema (object or boolean)");
    pop(c);
    return r;
}

/* Check a keyword whose value is an object of schemas (properties, $defs, definitions). */
static int sc_map(ctx *c, const char *kw, const cJSON *v)
{
    int r = 0;
    push_key(c, kw);
    if (!cJSON_IsObject(v)) {
        r = fail(c, NULL, "must be an object of schemas");
    } else {
        for (const cJSON *m = v->child; m && !r; m = m->next) {
            push_key(c, m->string);
            r = is_schema(m) ? sc_node(c, m)
                             : fail(c, NULL, "must be a schema (object or boolean)");
            pop(c);
        }
    }
    pop(c);
    return r;
}

/* Check a keyword whose value is an array of schemas (allOf, anyOf, oneOf, prefixItems). */
static int sc_list(ctx *c, const char *kw, const cJSON *v)
{
    int r = 0;
    push_key(c, kw);
    if (!cJSON_IsArray(v) || !v->child) {
        r = fail(c, NULL, "must be a non-empty array of schemas");
    } else {
        size_t i = 0;
        for (const cJSON *m = v->child; m && !r; m = m->next, i++) {
            push_idx(c, i);
            r = is_schema(m) ? sc_node(c, m)
                             : fail(c, NULL, "must be a schema (object or boolean)");
            pop(c);
        }
    }
    pop(c);
    return r;
}

static int sc_type(ctx *c, const cJSON *v)
{
    int r = 0;
    push_key(c, "type");
    if (cJSON_IsString(v)) {
        if (!v->valuestring || !type_name_valid(v->valuestring)) {
            char t[100];
            sbuf b;
            sb_init(&b, t, sizeof t);
            sb_put_escaped(&b, v->valuestring ? v->valuestring : "", '"', 64);
            r = fail(c, NULL, "unknown type \"%s\"", t);
        }
    } else if (cJSON_IsArray(v) && v->child) {
        size_t i = 0;
        for (const cJSON *t = v->child; t && !r; t = t->next, i++) {
            push_idx(c, i);
            if (!cJSON_IsString(t) || !t->valuestring) {
                r = fail(c, NULL, "must be a type name");
            } else if (!type_name_valid(t->valuestring)) {
                char tn[100];
                sbuf b;
                sb_init(&b, tn, sizeof tn);
                sb_put_escaped(&b, t->valuestring, '"', 64);
                r = fail(c, NULL, "unknown type \"%s\"", tn);
            } else {
                for (const cJSON *u = v->child; u != t; u = u->next)
                    if (cJSON_IsString(u) && u->valuestring &&
                        strcmp(u->valuestring, t->valuestring) == 0) {
                        r = fail(c, NULL, "duplicate type \"%s\"", t->valuestring);
                        break;
                    }
            }
            pop(c);
        }
    } else {
        r = fail(c, NULL, "must be a type name or a non-empty array of type names");
    }
    pop(c);
    return r;
}

static int sc_ref(ctx *c, const cJSON *node, const cJSON *v)
{
    int r = 0;
    push_key(c, "$ref");
    char ref[120];
    sbuf b;
    sb_init(&b, ref, sizeof ref);
    if (cJSON_IsString(v) && v->valuestring) sb_put_escaped(&b, v->valuestring, '"', 80);
    if (!cJSON_IsString(v) || !v->valuestring) {
        r = fail(c, NULL, "must be a string");
    } else if (v->valuestring[0] != '#') {
        r = fail(c, NULL, "unsupported reference \"%s\" (only \"#...\" is supported)", ref);
    } else {
        const cJSON *t = resolve_ref(c->root, v->valuestring);
        if (!t) {
            r = fail(c, NULL, "cannot resolve \"%s\"", ref);
        } else if (!is_schema(t)) {
            r = fail(c, NULL, "\"%s\" does not point to a schema", ref);
        } else {
            /* A chain of $refs that leads back here loops without consuming the instance. */
            for (int hops = 0; hops < SB_SCHEMA_DEPTH_MAX; hops++) {
                if (t == node) {
                    r = fail(c, NULL, "reference cycle through \"%s\"", ref);
                    break;
                }
                const cJSON *next =
                    cJSON_IsObject(t) ? cJSON_GetObjectItemCaseSensitive(t, "$ref") : NULL;
                if (!cJSON_IsString(next)) break;
                t = resolve_ref(c->root, next->valuestring);
                if (!t) break; /* reported where that $ref is */
            }
        }
    }
    pop(c);
    return r;
}

static int sc_nonneg(ctx *c, const char *kw, const cJSON *v)
{
    if (!v || nonneg_int(v) >= 0) return 0;
    push_key(c, kw);
    fail(c, NULL, "must be a non-negative integer");
    pop(c);
    return -1;
}

static int sc_number(ctx *c, const char *kw, const cJSON *v)
{
    if (!v || cJSON_IsNumber(v)) return 0;
    push_key(c, kw);
    fail(c, NULL, "must be a number");
    pop(c);
    return -1;
}

static int sc_kind(ctx *c, const char *kw, const cJSON *v, int ok, const char *what)
{
    if (!v || ok) return 0;
    push_key(c, kw);
    fail(c, NULL, "must be %s", what);
    pop(c);
    return -1;
}

static int sc_obj(ctx *c, const cJSON *s)
{
    keywords k;
    const cJSON *defs = cJSON_GetObjectItemCaseSensitive(s, "$defs");
    const cJSON *definitions = cJSON_GetObjectItemCaseSensitive(s, "definitions");
    const cJSON *dflt = cJSON_GetObjectItemCaseSensitive(s, "default");
    gather(s, &k);
    if (k.type && sc_type(c, k.type)) return -1;
    if (k.ref && sc_ref(c, s, k.ref)) return -1;
    if (k.properties && sc_map(c, "properties", k.properties)) return -1;
    if (defs && sc_map(c, "$defs", defs)) return -1;
    if (definitions && sc_map(c, "definitions", definitions)) return -1;
    if (k.required) {
        int ok = cJSON_IsArray(k.required);
        for (const cJSON *r = ok ? k.required->child : NULL; r; r = r->next)
            if (!cJSON_IsString(r)) ok = 0;
        if (sc_kind(c, "required", k.required, ok, "an array of strings")) return -1;
    }
    if (k.addl && sc_sub(c, "additionalProperties", k.addl)) return -1;
    if (k.items && sc_sub(c, "items", k.items)) return -1;
    if (k.prefix && sc_list(c, "prefixItems", k.prefix)) return -1;
    if (k.enum_ &&
        sc_kind(c, "enum", k.enum_, cJSON_IsArray(k.enum_) && k.enum_->child, "a non-empty array"))
        return -1;
    if (sc_nonneg(c, "minLength", k.min_len) || sc_nonneg(c, "maxLength", k.max_len) ||
        sc_nonneg(c, "minItems", k.min_items) || sc_nonneg(c, "maxItems", k.max_items) ||
        sc_nonneg(c, "minProperties", k.min_props) || sc_nonneg(c, "maxProperties", k.max_props))
        return -1;
    if (sc_number(c, "minimum", k.minimum) || sc_number(c, "maximum", k.maximum) ||
        sc_number(c, "exclusiveMinimum", k.xmin) || sc_number(c, "exclusiveMaximum", k.xmax))
        return -1;
    if (sc_kind(c, "uniqueItems", k.unique, cJSON_IsBool(k.unique), "a boolean")) return -1;
    if (sc_kind(c, "format", k.format, cJSON_IsString(k.format), "a string")) return -1;
    if (k.all_of && sc_list(c, "allOf", k.all_of)) return -1;
    if (k.any_of && sc_list(c, "anyOf", k.any_of)) return -1;
    if (k.one_of && sc_list(c, "oneOf", k.one_of)) return -1;
    if (k.not_ && sc_sub(c, "not", k.not_)) return -1;
    static const char *const strings[] = {"$schema", "$id", "title", "description"};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, strings[i]);
        if (sc_kind(c, strings[i], v, cJSON_IsString(v), "a string")) return -1;
    }
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(s, "examples");
    if (sc_kind(c, "examples", ex, cJSON_IsArray(ex), "an array")) return -1;
    if (dflt) {
        /* A default that its own schema rejects would be injected by apply_defaults. */
        char sub[400];
        if (sb_schema_validate(s, c->root, dflt, "default", sub, sizeof sub) != 0) {
            push_key(c, "default");
            fail(c, NULL, "invalid default: %s", sub);
            pop(c);
            return -1;
        }
    }
    return 0;
}

static int sc_node(ctx *c, const cJSON *s)
{
    if (cJSON_IsBool(s)) return 0;
    if (!cJSON_IsObject(s)) return fail(c, NULL, "must be a schema (object or boolean)");
    if (c->depth >= SB_SCHEMA_DEPTH_MAX)
        return fail(c, NULL, "nested deeper than %d levels", SB_SCHEMA_DEPTH_MAX);
    c->depth++;
    int r = sc_obj(c, s);
    c->depth--;
    return r;
}

int sb_schema_check(const cJSON *schema, char *err, size_t errlen)
{
    ctx c;
    memset(&c, 0, sizeof c);
    c.root = schema;
    c.where = "schema";
    c.err = err;
    c.errlen = errlen;
    if (err && errlen) err[0] = '\0';
    if (!schema) return fail(&c, NULL, "missing");
    return sc_node(&c, schema) ? -1 : 0;
}

/* ---------------------------------------------------------------------------------------------
 * Defaults
 */

/* Follow a chain of $refs (bounded) to the schema that holds the keywords. */
static const cJSON *deref(const cJSON *root, const cJSON *s)
{
    for (int hops = 0; hops < SB_SCHEMA_DEPTH_MAX && cJSON_IsObject(s); hops++) {
        const cJSON *ref = cJSON_GetObjectItemCaseSensitive(s, "$ref");
        if (!cJSON_IsString(ref)) return s;
        const cJSON *t = resolve_ref(root, ref->valuestring);
        if (!t) return s;
        s = t;
    }
    return s;
}

static int defaults_rec(const cJSON *schema, const cJSON *root, cJSON *inst, int depth)
{
    if (depth >= SB_SCHEMA_DEPTH_MAX || !cJSON_IsObject(inst)) return 0;
    schema = deref(root, schema);
    if (!cJSON_IsObject(schema)) return 0;
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
    if (!cJSON_IsObject(props)) return 0;
    for (const cJSON *p = props->child; p; p = p->next) {
        if (!p->string || !cJSON_IsObject(p)) continue;
        const cJSON *ps = deref(root, p);
        cJSON *cur = cJSON_GetObjectItemCaseSensitive(inst, p->string);
        if (!cur) {
            const cJSON *d = cJSON_GetObjectItemCaseSensitive(p, "default");
            if (!d && cJSON_IsObject(ps)) d = cJSON_GetObjectItemCaseSensitive(ps, "default");
            if (!d) continue;
            cJSON *dup = cJSON_Duplicate(d, 1);
            if (!dup) return -1;
            if (!cJSON_AddItemToObject(inst, p->string, dup)) {
                cJSON_Delete(dup);
                return -1;
            }
            cur = dup; /* fill defaults nested inside an object default too */
        }
        if (cJSON_IsObject(cur) && defaults_rec(ps, root, cur, depth + 1) < 0) return -1;
    }
    return 0;
}

int sb_schema_apply_defaults(const cJSON *schema, const cJSON *root, cJSON *instance)
{
    if (!schema || !instance) return 0;
    return defaults_rec(schema, root ? root : schema, instance, 0);
}
