#include "core/sb_buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int sb_buf_json_string(sb_buf *b, const char *s)
{
    static const char hx[] = "0123456789abcdef";
    if (sb_buf_append(b, "\"", 1) != 0) return SB_BUF_ETOOBIG;
    const char *run = s;
    for (const char *p = s;; p++) {
        unsigned char c = (unsigned char)*p;
        if (c != '\0' && c != '"' && c != '\\' && c >= 0x20) continue;
        if (p > run && sb_buf_append(b, run, (size_t)(p - run)) != 0) return SB_BUF_ETOOBIG;
        if (c == '\0') break;
        char esc[7] = {'\\', (char)c, 0};
        size_t n = 2;
        switch (c) {
        case '"': case '\\': break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hx[c >> 4];
            esc[5] = hx[c & 15];
            n = 6;
        }
        if (sb_buf_append(b, esc, n) != 0) return SB_BUF_ETOOBIG;
        run = p + 1;
    }
    return sb_buf_append(b, "\"", 1);
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
