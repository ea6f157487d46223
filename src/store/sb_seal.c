/* sb_seal: AES-256-GCM sealing with OpenSSL EVP (see sb_seal.h for the format). */
#include "store/sb_seal.h"

#include "core/sb_util.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <string.h>

static int ad_ok(const void *ad, size_t ad_len)
{
    return ad_len <= SB_SEAL_MAX_AD && (ad || !ad_len);
}

int sb_seal_seal(const uint8_t key[SB_SEAL_KEY_LEN], const void *ad, size_t ad_len,
                 const void *plain, size_t plain_len, uint8_t *out, size_t out_cap, size_t *out_len)
{
    if (out_len) *out_len = 0;
    if (!key || !out || !out_len || !ad_ok(ad, ad_len) || (plain_len && !plain) ||
        plain_len > SB_SEAL_MAX_PLAIN || out_cap < plain_len + SB_SEAL_OVERHEAD)
        return -1;
    uint8_t *nonce = out + 1, *ct = out + 1 + SB_SEAL_NONCE_LEN, *tag = ct + plain_len;
    out[0] = SB_SEAL_VERSION;
    if (RAND_bytes(nonce, SB_SEAL_NONCE_LEN) != 1) return -1;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx) return -1;
    int ok = 0, n = 0;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SB_SEAL_NONCE_LEN, NULL) == 1 &&
        EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) == 1 &&
        /* The version byte is authenticated too. */
        EVP_EncryptUpdate(ctx, NULL, &n, out, 1) == 1 &&
        (!ad_len || EVP_EncryptUpdate(ctx, NULL, &n, ad, (int)ad_len) == 1) &&
        (!plain_len || EVP_EncryptUpdate(ctx, ct, &n, plain, (int)plain_len) == 1) &&
        EVP_EncryptFinal_ex(ctx, ct + plain_len, &n) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SB_SEAL_TAG_LEN, tag) == 1)
        ok = 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        OPENSSL_cleanse(out, plain_len + SB_SEAL_OVERHEAD);
        return -1;
    }
    *out_len = plain_len + SB_SEAL_OVERHEAD;
    return 0;
}

int sb_seal_open(const uint8_t key[SB_SEAL_KEY_LEN], const void *ad, size_t ad_len,
                 const uint8_t *sealed, size_t sealed_len, uint8_t *out, size_t out_cap,
                 size_t *out_len)
{
    if (out_len) *out_len = 0;
    if (!key || !sealed || !out_len || !ad_ok(ad, ad_len) || sealed_len < SB_SEAL_OVERHEAD ||
        sealed_len - SB_SEAL_OVERHEAD > SB_SEAL_MAX_PLAIN)
        return -1;
    size_t plain_len = sealed_len - SB_SEAL_OVERHEAD;
    if ((plain_len && !out) || out_cap < plain_len) return -1;
    if (sealed[0] != SB_SEAL_VERSION) return -1;
    const uint8_t *nonce = sealed + 1, *ct = sealed + 1 + SB_SEAL_NONCE_LEN, *tag = ct + plain_len;
    uint8_t tagbuf[SB_SEAL_TAG_LEN];
    memcpy(tagbuf, tag, sizeof tagbuf); /* EVP's SET_TAG takes a non-const pointer */
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx) return -1;
    int ok = 0, n = 0;
    uint8_t dummy[16];
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SB_SEAL_NONCE_LEN, NULL) == 1 &&
        EVP_DecryptInit_ex(ctx, NULL, NULL, key, nonce) == 1 &&
        EVP_DecryptUpdate(ctx, NULL, &n, sealed, 1) == 1 &&
        (!ad_len || EVP_DecryptUpdate(ctx, NULL, &n, ad, (int)ad_len) == 1) &&
        (!plain_len || EVP_DecryptUpdate(ctx, out, &n, ct, (int)plain_len) == 1) &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SB_SEAL_TAG_LEN, tagbuf) == 1 &&
        EVP_DecryptFinal_ex(ctx, plain_len ? out + plain_len : dummy, &n) == 1)
        ok = 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        if (out && plain_len) OPENSSL_cleanse(out, plain_len);
        return -1;
    }
    *out_len = plain_len;
    return 0;
}

int sb_seal_derive_key(const unsigned char *secret, size_t len, uint8_t out[SB_SEAL_KEY_LEN])
{
    static const char label[] = "signbridge seal key v1";
    if (!out) return -1;
    memset(out, 0, SB_SEAL_KEY_LEN);
    if (!secret || !len || len > INT_MAX) return -1;
    unsigned int n = 0;
    if (!HMAC(EVP_sha256(), secret, (int)len, (const unsigned char *)label, sizeof label - 1, out,
              &n) ||
        n != SB_SEAL_KEY_LEN) {
        OPENSSL_cleanse(out, SB_SEAL_KEY_LEN);
        return -1;
    }
    return 0;
}

/* "ns/rec" into ad (SB_SEAL_MAX_AD bytes); its length, or -1 when it does not fit. */
static int record_ad(char *ad, const char *ns, const char *rec)
{
    if (!ns || !rec) return -1;
    int n = snprintf(ad, SB_SEAL_MAX_AD, "%s/%s", ns, rec);
    return n < 0 || n >= SB_SEAL_MAX_AD ? -1 : n;
}

char *sb_seal_b64(const uint8_t key[SB_SEAL_KEY_LEN], const char *ns, const char *rec,
                  const void *plain, size_t plain_len)
{
    char ad[SB_SEAL_MAX_AD];
    int adl = record_ad(ad, ns, rec);
    if (adl < 0 || plain_len > SB_SEAL_MAX_PLAIN) return NULL;
    size_t cap = plain_len + SB_SEAL_OVERHEAD, n = 0;
    uint8_t *sealed = malloc(cap);
    char *b64 = malloc(sb_base64url_len(cap) + 1);
    if (!sealed || !b64 ||
        sb_seal_seal(key, ad, (size_t)adl, plain, plain_len, sealed, cap, &n) != 0) {
        free(sealed);
        free(b64);
        return NULL;
    }
    sb_base64url_encode(sealed, n, b64);
    free(sealed);
    return b64;
}

long sb_seal_open_b64(const uint8_t key[SB_SEAL_KEY_LEN], const char *ns, const char *rec,
                      const char *b64, char *out, size_t cap)
{
    char ad[SB_SEAL_MAX_AD];
    int adl = record_ad(ad, ns, rec);
    if (adl < 0 || !b64 || !out || cap < 1) return -1;
    size_t bl = strlen(b64), n = 0;
    uint8_t *sealed = malloc(bl + 4);
    if (!sealed) return -1;
    long sl = sb_base64_decode(b64, bl, sealed, bl + 4);
    int rc =
        sl > 0 ? sb_seal_open(key, ad, (size_t)adl, sealed, (size_t)sl, (uint8_t *)out, cap - 1, &n)
               : -1;
    free(sealed);
    if (rc != 0) return -1;
    out[n] = 0;
    return (long)n;
}
