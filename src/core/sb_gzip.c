/* sb_gzip: gzip bodies spliced around a part compressed once (see sb_gzip.h). */
#include "core/sb_gzip.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define MAX_PART ((size_t)1 << 30)

int sb_gzip_part_make(sb_gzip_part *p, const void *data, size_t len)
{
    memset(p, 0, sizeof *p);
    if (len > MAX_PART) return -1;
    z_stream s;
    memset(&s, 0, sizeof s);
    /* raw deflate (no zlib header): the gzip framing is written around it per reply */
    if (deflateInit2(&s, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) != Z_OK) return -1;
    /* the bound covers the data; a sync flush adds at most an empty stored block and padding */
    size_t cap = (size_t)deflateBound(&s, (uLong)len) + 16;
    unsigned char *z = malloc(cap);
    if (!z) {
        deflateEnd(&s);
        return -1;
    }
    s.next_in = (Bytef *)(uintptr_t)data;
    s.avail_in = (uInt)len;
    s.next_out = z;
    s.avail_out = (uInt)cap;
    /* Z_SYNC_FLUSH: every block so far is emitted and the stream ends on a byte boundary with
     * no final block, so a reply can append blocks of its own after it */
    int rc = deflate(&s, Z_SYNC_FLUSH);
    int done = rc == Z_OK && s.avail_in == 0 && s.avail_out > 0;
    size_t zlen = cap - s.avail_out;
    deflateEnd(&s); /* Z_DATA_ERROR for a stream left unfinished on purpose; it is freed */
    if (!done) {
        free(z);
        return -1;
    }
    p->z = z;
    p->zlen = zlen;
    p->len = len;
    p->crc = (uint32_t)crc32(0L, data, (uInt)len);
    p->op = (uint32_t)crc32_combine_gen((z_off_t)len);
    return 0;
}

void sb_gzip_part_free(sb_gzip_part *p)
{
    free(p->z);
    memset(p, 0, sizeof *p);
}

/* Stored blocks (RFC 1951 §3.2.4) for n bytes, at most 65,535 per block; the last one marked
 * final when `final`. Starts on a byte boundary and ends on one. */
static int stored(sb_buf *b, const unsigned char *s, size_t n, int final)
{
    do {
        size_t k = n > 65535 ? 65535 : n;
        unsigned char h[5] = {(unsigned char)(final && k == n), (unsigned char)(k & 0xff),
                              (unsigned char)(k >> 8), (unsigned char)(~k & 0xff),
                              (unsigned char)((~k >> 8) & 0xff)};
        int rc = sb_buf_append(b, h, sizeof h);
        if (rc == 0 && k) rc = sb_buf_append(b, s, k);
        if (rc != 0) return rc;
        s += k;
        n -= k;
    } while (n);
    return 0;
}

static void le32(unsigned char *o, uint32_t v)
{
    o[0] = (unsigned char)v;
    o[1] = (unsigned char)(v >> 8);
    o[2] = (unsigned char)(v >> 16);
    o[3] = (unsigned char)(v >> 24);
}

int sb_gzip_splice(sb_buf *b, const void *pre, size_t pre_len, const sb_gzip_part *part,
                   const void *post, size_t post_len)
{
    /* ID1 ID2, CM deflate, no flags, no time, no extra flags, OS unknown */
    static const unsigned char head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
    size_t mid = part ? part->zlen : 0;
    int rc = sb_buf_reserve(b, sizeof head + pre_len + mid + post_len + 5 * (pre_len / 65535 + 1) +
                                   5 * (post_len / 65535 + 1) + 8);
    if (rc == 0) rc = sb_buf_append(b, head, sizeof head);
    if (rc == 0 && pre_len) rc = stored(b, pre, pre_len, 0);
    if (rc == 0 && mid) rc = sb_buf_append(b, part->z, mid);
    if (rc == 0) rc = stored(b, post, post_len, 1);
    if (rc != 0) return rc;
    uLong crc = crc32(0L, pre, (uInt)pre_len);
    if (part && part->len) crc = crc32_combine_op(crc, part->crc, part->op);
    crc = crc32(crc, post, (uInt)post_len);
    unsigned char tail[8];
    le32(tail, (uint32_t)crc);
    le32(tail + 4, (uint32_t)(pre_len + (part ? part->len : 0) + post_len)); /* ISIZE: mod 2^32 */
    return sb_buf_append(b, tail, sizeof tail);
}

/* ---- Accept-Encoding --------------------------------------------------------------------- */

static int ows(char c)
{
    return c == ' ' || c == '\t';
}

/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ): 1 when valid and above 0, 0 when
 * 0 or malformed. */
static int q_positive(const char *v, size_t n)
{
    if (n == 0 || (v[0] != '0' && v[0] != '1')) return 0;
    if (n == 1) return v[0] == '1';
    if (v[1] != '.' || n > 5) return 0;
    int nonzero = 0;
    for (size_t i = 2; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') return 0;
        if (v[i] != '0') nonzero = 1;
    }
    if (v[0] == '1') return !nonzero; /* "1.000" at most */
    return nonzero;
}

static int name_is(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    if (n != l) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != lit[i]) return 0;
    }
    return 1;
}

int sb_gzip_accepted(const char *v)
{
    if (!v) return 0;
    int gzip = -1, star = -1; /* -1 not named, 0 refused, 1 accepted */
    const char *p = v;
    for (;;) {
        while (ows(*p) || *p == ',') p++;
        if (!*p) break;
        const char *name = p;
        while (*p && *p != ',' && *p != ';' && !ows(*p)) p++;
        size_t nlen = (size_t)(p - name);
        int ok = 1;
        for (;;) { /* parameters: only q means anything here */
            while (ows(*p)) p++;
            if (*p != ';') break;
            p++;
            while (ows(*p)) p++;
            const char *pn = p;
            while (*p && *p != '=' && *p != ',' && *p != ';' && !ows(*p)) p++;
            size_t pnlen = (size_t)(p - pn);
            const char *val = p;
            size_t vlen = 0;
            if (*p == '=') {
                val = ++p;
                while (*p && *p != ',' && *p != ';' && !ows(*p)) p++;
                vlen = (size_t)(p - val);
            }
            if (pnlen == 1 && (pn[0] == 'q' || pn[0] == 'Q')) ok = q_positive(val, vlen);
        }
        if (*p && *p != ',') { /* something after the member that is not a parameter */
            ok = 0;
            while (*p && *p != ',') p++;
        }
        if (name_is(name, nlen, "gzip") || name_is(name, nlen, "x-gzip"))
            gzip = gzip == 1 ? 1 : ok;
        else if (name_is(name, nlen, "*"))
            star = star == 1 ? 1 : ok;
    }
    return gzip >= 0 ? gzip : star == 1;
}
