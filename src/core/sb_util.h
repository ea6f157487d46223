/* sb_util: small pure helpers: randomness, encodings, constant-time compare, time, UTF-8, numbers. */
#ifndef SB_UTIL_H
#define SB_UTIL_H
#include <stddef.h>
#include <stdint.h>

/* Fill buf with n bytes from the kernel CSPRNG (getrandom). 0 or -1. */
int sb_random_bytes(void *buf, size_t n);
/* Write 2n lowercase hex digits plus NUL into out (size >= 2n+1). */
void sb_hex_encode(const unsigned char *in, size_t n, char *out);
/* The decimal digits of v, written to end at `end` (at most 20 bytes before it, no NUL); returns
 * where they start. What printf's "%llu" prints, without printf. */
char *sb_u64_dec(uint64_t v, char *end);
/* Lowercase hex SHA-256 of s[0..n) into out (65 bytes): store keys for secrets and ids. */
void sb_sha256_hex(const void *s, size_t n, char out[65]);
/* base64url without padding. out must hold sb_base64url_len(n)+1 bytes; returns length written. */
size_t sb_base64url_len(size_t n);
size_t sb_base64url_encode(const unsigned char *in, size_t n, char *out);
/* Standard base64 with padding (for Basic auth). Same sizing rule with sb_base64_len. */
size_t sb_base64_len(size_t n);
size_t sb_base64_encode(const unsigned char *in, size_t n, char *out);
/* Decode standard or url-safe base64 (padding optional; trailing bits must be zero). Returns
 * decoded length or -1 on bad input or when the output would exceed outcap (then nothing is
 * written; on bad input out may hold part of the output). */
long sb_base64_decode(const char *in, size_t n, unsigned char *out, size_t outcap);
/* Constant-time equality of two byte strings (length difference is not secret). 1 if equal. */
int sb_ct_equal(const void *a, size_t alen, const void *b, size_t blen);
/* Monotonic milliseconds / microseconds; wall-clock milliseconds since the epoch. */
uint64_t sb_mono_ms(void);
uint64_t sb_mono_us(void);
uint64_t sb_wall_ms(void);
/* RFC 3339 UTC with milliseconds ("2026-11-22T08:00:00.000Z") into out (>= 25 bytes). */
void sb_rfc3339(uint64_t wall_ms, char *out, size_t outlen);
/* Parse an RFC 3339 date-time; 0 and *out_ms on success, -1 otherwise. */
int sb_parse_rfc3339(const char *s, int64_t *out_ms);
/* 1 if s[0..n) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int sb_utf8_valid(const char *s, size_t n);
/* Strict decimal parse of a whole string into [min,max]. 0 or -1. */
int sb_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
/* Case-insensitive ASCII compare helpers. */
int sb_strcaseeq(const char *a, const char *b);
/* Bounded copy that always NUL-terminates; returns strlen(src) (truncated if >= cap). */
size_t sb_strlcpy(char *dst, const char *src, size_t cap);

#endif
