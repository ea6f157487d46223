/* sb_buf: bounded growable byte buffer (modelled on curl's dynbuf): every buffer has a hard maximum. */
#ifndef SB_BUF_H
#define SB_BUF_H
#include <stdarg.h>
#include <stddef.h>

#define SB_BUF_ETOOBIG (-2) /* appending would exceed the buffer's maximum */
#define SB_BUF_ENOMEM (-1)

typedef struct sb_buf {
    char *data;  /* owned; always NUL-terminated when non-NULL */
    size_t len;  /* bytes used, excluding the terminating NUL */
    size_t cap;  /* bytes allocated */
    size_t max;  /* hard limit on len */
} sb_buf;

/* Initialise an empty buffer that may grow to at most `max` bytes. Allocates nothing. */
void sb_buf_init(sb_buf *b, size_t max);
/* Append n bytes. 0 on success, SB_BUF_ETOOBIG past the maximum (buffer unchanged), SB_BUF_ENOMEM. */
int sb_buf_append(sb_buf *b, const void *p, size_t n);
int sb_buf_puts(sb_buf *b, const char *s);
int sb_buf_printf(sb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sb_buf_vprintf(sb_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Append s as a JSON string literal (quotes, backslash and control characters escaped; s must be
 * valid UTF-8). */
int sb_buf_json_string(sb_buf *b, const char *s);
/* The same for the len bytes at s (no NUL needed; a NUL among them is escaped as \u0000). */
int sb_buf_json_stringn(sb_buf *b, const char *s, size_t len);
/* Turns the SSSE3 path of the string escape on (only where the CPU has SSSE3; on at start when
 * it does) or off, and returns whether it is on: for tests and benchmarks, which compare the two.
 * Not to be called while other threads escape. */
int sb_buf_escape_shuffle(int on);
/* Append v serialized as compact JSON, byte for byte what cJSON_PrintUnformatted gives (numbers:
 * integers as integers, others with 15 significant digits unless 17 are needed to read back the
 * same double; NaN and infinities as null; raw items verbatim), several times faster: strings are
 * escaped by table and integers formatted without printf. 0, SB_BUF_ETOOBIG or SB_BUF_ENOMEM (the
 * buffer then holds a partial document), -3 for an item cJSON cannot print (invalid type, NULL
 * string). */
struct cJSON;
int sb_buf_json_value(sb_buf *b, const struct cJSON *v);
/* Append the number d as sb_buf_json_value prints it (NaN and infinities as null). */
int sb_buf_json_number(sb_buf *b, double d);
/* v as compact JSON in a malloc'd string (sb_buf_json_value's output; free() it), or NULL when it
 * cannot be printed or memory runs out: a faster cJSON_PrintUnformatted. */
char *sb_json_print(const struct cJSON *v);
/* Make room for n more bytes at once (fewer reallocations when the size is known). 0,
 * SB_BUF_ETOOBIG (len + n over the maximum: nothing changes) or SB_BUF_ENOMEM. */
int sb_buf_reserve(sb_buf *b, size_t n);
/* Drop the contents, keep the allocation. */
void sb_buf_reset(sb_buf *b);
/* Free the allocation; the buffer may be reused after sb_buf_init. */
void sb_buf_free(sb_buf *b);
/* Hand the data to the caller (who frees it with free()); the buffer becomes empty. Never NULL
 * unless allocation fails: an empty buffer yields "". */
char *sb_buf_detach(sb_buf *b, size_t *len);

#endif
