/* sb_seal: authenticated encryption of small secrets at rest (sealed upstream credentials):
 * AES-256-GCM, a random 96-bit nonce per value, bound to an associated-data string. */
#ifndef SB_SEAL_H
#define SB_SEAL_H

#include <stddef.h>
#include <stdint.h>

#define SB_SEAL_KEY_LEN 32
#define SB_SEAL_VERSION 1
#define SB_SEAL_NONCE_LEN 12
#define SB_SEAL_TAG_LEN 16
/* Sealed = version (1 byte) || nonce (12) || ciphertext (same length as the plaintext) || tag (16)
 */
#define SB_SEAL_OVERHEAD (1 + SB_SEAL_NONCE_LEN + SB_SEAL_TAG_LEN)
#define SB_SEAL_MAX_PLAIN (1024 * 1024 - SB_SEAL_OVERHEAD) /* a sealed value fits the store */
#define SB_SEAL_MAX_AD 4096

/* Seal plain[0..plain_len) under key (32 bytes) with associated data ad[0..ad_len) (e.g. the
 * store record's namespace and key: a sealed value copied to another record will not open).
 * Writes plain_len + SB_SEAL_OVERHEAD bytes to out (caller-owned, out_cap at least that) and sets
 * *out_len. plain may be NULL when plain_len is 0; ad may be NULL when ad_len is 0.
 * 0 on success; -1 on bad arguments (too large, out_cap too small) or a crypto/RNG failure, and
 * then out holds nothing meaningful. Thread-safe. */
int sb_seal_seal(const uint8_t key[SB_SEAL_KEY_LEN], const void *ad, size_t ad_len,
                 const void *plain, size_t plain_len, uint8_t *out, size_t out_cap,
                 size_t *out_len);

/* Open a sealed value: verify and decrypt into out (caller-owned; out_cap at least
 * sealed_len - SB_SEAL_OVERHEAD), *out_len = the plaintext length. -1 on any failure: wrong key,
 * wrong associated data, unknown version, truncated or tampered input; on failure out is wiped
 * (never returns unauthenticated plaintext). */
int sb_seal_open(const uint8_t key[SB_SEAL_KEY_LEN], const void *ad, size_t ad_len,
                 const uint8_t *sealed, size_t sealed_len, uint8_t *out, size_t out_cap,
                 size_t *out_len);

/* Seal plain[0..plain_len) for the store record ns/rec (associated data "ns/rec": a value copied
 * to another record will not open) and encode it base64url, as records keep it. Returns a malloc'd
 * NUL-terminated string the caller frees, or NULL (bad arguments, "ns/rec" of SB_SEAL_MAX_AD bytes
 * or more, out of memory, crypto failure). Thread-safe. */
char *sb_seal_b64(const uint8_t key[SB_SEAL_KEY_LEN], const char *ns, const char *rec,
                  const void *plain, size_t plain_len);

/* Open what sb_seal_b64 made for ns/rec into out (caller-owned, cap bytes including a NUL, which
 * is written after the plaintext). The plaintext length, or -1 on any failure (bad base64, wrong
 * key or record, tampered, cap too small). */
long sb_seal_open_b64(const uint8_t key[SB_SEAL_KEY_LEN], const char *ns, const char *rec,
                      const char *b64, char *out, size_t cap);

/* Derive the sealing key from the server secret: out = HMAC-SHA256(secret, "signbridge seal key
 * v1"). A distinct label keeps it independent of the other keys taken from the same secret (the
 * credential fingerprints use the secret itself). Every replica with the same secret_file derives
 * the same key. 0, or -1 on bad arguments or a crypto failure (then out is zeroed). */
int sb_seal_derive_key(const unsigned char *secret, size_t len, uint8_t out[SB_SEAL_KEY_LEN]);

#endif
