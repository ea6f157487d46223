/* sb_jw: JSON written as it is built, into an sb_buf, for results that would otherwise be a cJSON
 * tree printed once and deleted (a page of documents is ~500 values: building, printing and
 * freeing the tree cost more than mapping them). The output is byte for byte what
 * sb_buf_json_value prints for the tree built by the same calls in the same order. */
#ifndef SB_JW_H
#define SB_JW_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/sb_buf.h"

#define SB_JW_MAX_DEPTH 32

typedef struct sb_jw {
    sb_buf *b;         /* borrowed: the writer appends to it */
    int err;           /* the first failure (SB_BUF_ETOOBIG, SB_BUF_ENOMEM, -3 nesting), then every
                          call is a no-op */
    unsigned depth;    /* open containers */
    int after_key;     /* a key was written: the next value is its member's */
    uint32_t nonempty; /* bit d: the container at depth d has a member already */
} sb_jw;

/* Start writing into b (which keeps what it holds). */
void sb_jw_init(sb_jw *w, sb_buf *b);
/* 0 when every call succeeded and every container was closed, else the first error (or -3). */
int sb_jw_finish(const sb_jw *w);

/* A member's key: a string literal (the macros refuse anything else) that needs no escaping,
 * written as "key": (inline: its length is known where it is written, so the copy is a move or
 * two; a mapper writes some 300 keys per page of documents). */
#define SB_JW_KEY(key) "\"" key "\":", sizeof("\"" key "\":") - 1
void sb_jw_put_slow_(sb_jw *w, const char *p, size_t n);
void sb_jw_misuse_(sb_jw *w);
static inline void sb_jw_key_(sb_jw *w, const char *tok, size_t n)
{
    if (w->err) return;
    if (w->after_key || w->depth == 0) {
        sb_jw_misuse_(w); /* a key needs an open object and a value after the last one */
        return;
    }
    uint32_t bit = (uint32_t)1 << w->depth;
    size_t comma = (w->nonempty & bit) != 0;
    sb_buf *b = w->b;
    if (b->len + comma + n < b->cap && b->len + comma + n <= b->max) {
        char *o = b->data + b->len;
        *o = ',';
        memcpy(o + comma, tok, n);
        b->len += comma + n;
        b->data[b->len] = '\0';
    } else {
        if (comma) sb_jw_put_slow_(w, ",", 1);
        sb_jw_put_slow_(w, tok, n);
        if (w->err) return;
    }
    w->nonempty |= bit;
    w->after_key = 1;
}

/* Values, as an array element or (after a key) an object member. */
void sb_jw_open(sb_jw *w, char c);        /* '{' or '[' */
void sb_jw_close(sb_jw *w, char c);       /* '}' or ']' */
void sb_jw_vstr(sb_jw *w, const char *v); /* a string, or null when v is NULL */
/* Node v's string, or null when v is NULL or not a string: what sb_jw_vstr writes for it, copied
 * without a scan when the parse found it needs no escaping (sb_json_clean; a provider answer's
 * strings mostly). */
struct cJSON;
void sb_jw_vjstr(sb_jw *w, const struct cJSON *v);
/* s[0..n) as a string, copied as it stands: the caller knows it holds no quote, backslash or byte
 * below 0x20 (a time it formatted, a clean string of a parse). */
void sb_jw_vclean(sb_jw *w, const char *s, size_t n);
void sb_jw_vnum(sb_jw *w, double v);      /* as cJSON prints a number */
void sb_jw_vbool(sb_jw *w, int v);
void sb_jw_vnull(sb_jw *w);

/* Members of the object being written. */
#define sb_jw_obj(w, key) (sb_jw_key_((w), SB_JW_KEY(key)), sb_jw_open((w), '{'))
#define sb_jw_arr(w, key) (sb_jw_key_((w), SB_JW_KEY(key)), sb_jw_open((w), '['))
#define sb_jw_str(w, key, v) (sb_jw_key_((w), SB_JW_KEY(key)), sb_jw_vstr((w), (v)))
#define sb_jw_jstr(w, key, v) (sb_jw_key_((w), SB_JW_KEY(key)), sb_jw_vjstr((w), (v)))
#define sb_jw_num(w, key, v) (sb_jw_key_((w), SB_JW_KEY(key)), sb_jw_vnum((w), (v)))
#define sb_jw_bool(w, key, v) (sb_jw_key_((w), SB_JW_KEY(key)), sb_jw_vbool((w), (v)))
#define sb_jw_null(w, key) (sb_jw_key_((w), SB_JW_KEY(key)), sb_jw_vnull((w)))

#endif
