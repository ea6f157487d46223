/* sb_gzip: gzip bodies (HTTP Content-Encoding) spliced around a part compressed once: a reply
 * whose bulk never changes (a tools/list page, ~48 KB of contracts) is compressed at its first use
 * and every later reply only wraps its own few changing bytes (the JSON-RPC id) around it, as
 * stored deflate blocks, with the CRC-32s combined (zlib's crc32_combine). */
#ifndef SB_GZIP_H
#define SB_GZIP_H
#include <stddef.h>
#include <stdint.h>

#include "core/sb_buf.h"

typedef struct sb_gzip_part {
    unsigned char *z; /* owned (free with sb_gzip_part_free): raw deflate data ending on a byte
                         boundary (a sync flush) and not marked final, so more blocks may follow */
    size_t zlen;
    size_t len;       /* bytes it inflates to */
    uint32_t crc;     /* their CRC-32 */
    uint32_t op;      /* zlib's crc32_combine_gen(len): combining a CRC with this part's is then
                         one multiplication per reply instead of a power computed each time */
} sb_gzip_part;

/* Compress len bytes (zlib level 9: done once, served many times) into *p. 0, or -1 (out of
 * memory, a zlib failure, or len over 1 GiB); *p is then empty. */
int sb_gzip_part_make(sb_gzip_part *p, const void *data, size_t len);
/* Free p's bytes; p becomes empty. Safe on an empty or zeroed part. */
void sb_gzip_part_free(sb_gzip_part *p);

/* Append to b one gzip member (RFC 1952) that inflates to pre, then part's bytes, then post.
 * pre and post go in stored blocks (any length; either may be empty). 0, or the sb_buf error
 * (b then holds a partial member: discard it). part may be NULL (nothing between). */
int sb_gzip_splice(sb_buf *b, const void *pre, size_t pre_len, const sb_gzip_part *part,
                   const void *post, size_t post_len);

/* 1 when an Accept-Encoding field value (RFC 9110 §12.5.3) accepts gzip: a "gzip" or "x-gzip"
 * member with a weight above 0, or else a "*" member with a weight above 0. Names compare without
 * case; a member whose weight is malformed counts as refused. NULL (no header) gives 0. */
int sb_gzip_accepted(const char *accept_encoding);

#endif
