#include "auth/sb_cred.h"

#include "core/sb_util.h"

#include <errno.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Every byte visible ASCII (0x21-0x7e): sixteen at a time with SSE2 (an OAuth access token is
 * ~900 bytes, checked on every request) */
static int printable(const char *s, size_t n)
{
    size_t i = 0;
#ifdef __SSE2__
    const __m128i lo = _mm_set1_epi8(0x21), hi = _mm_set1_epi8(0x7e);
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        __m128i in = _mm_and_si128(_mm_cmpeq_epi8(_mm_max_epu8(v, lo), v),
                                   _mm_cmpeq_epi8(_mm_min_epu8(v, hi), v));
        if (_mm_movemask_epi8(in) != 0xFFFF) return 0;
    }
#endif
    for (; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e) return 0;
    return 1;
}

static int set_secret(sb_cred *out, sb_cred_kind kind, const char *s, size_t n, char *err,
                      size_t errlen)
{
    while (n && (*s == ' ' || *s == '\t')) s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    if (n == 0 || n > SB_CRED_MAX || !printable(s, n)) {
        snprintf(err, errlen, "the %s credential is empty, longer than %d bytes, or has characters "
                              "other than visible ASCII", sb_cred_kind_name(kind), SB_CRED_MAX);
        return -1;
    }
    out->kind = kind;
    out->len = n;
    memcpy(out->secret, s, n);
    out->secret[n] = '\0';
    return 0;
}

int sb_cred_extract(sb_header_fn get, void *ctx, sb_cred *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *v = get(ctx, "X-API-Key");
    if (v) return set_secret(out, SB_CRED_X_API_KEY, v, strlen(v), err, errlen);
    v = get(ctx, "Authorization");
    if (v) {
        if (strncasecmp(v, "Bearer ", 7) == 0)
            return set_secret(out, SB_CRED_BEARER, v + 7, strlen(v + 7), err, errlen);
        if (strncasecmp(v, "Basic ", 6) == 0) {
            const char *b = v + 6;
            while (*b == ' ') b++;
            size_t bl = strlen(b);
            unsigned char dec[SB_CRED_MAX + 2];
            long n = bl > 4 * (SB_CRED_MAX + 2) / 3 + 4 ? -1 : sb_base64_decode(b, bl, dec, sizeof dec - 1);
            if (n < 0) {
                snprintf(err, errlen, "Authorization: Basic must carry base64(<api key>:)");
                return -1;
            }
            dec[n] = '\0';
            const char *colon = memchr(dec, ':', (size_t)n);
            size_t kl = colon ? (size_t)(colon - (const char *)dec) : (size_t)n;
            int rc = set_secret(out, SB_CRED_BASIC, (const char *)dec, kl, err, errlen);
            OPENSSL_cleanse(dec, sizeof dec);
            return rc;
        }
        snprintf(err, errlen, "Authorization must use the Bearer or Basic scheme");
        return -1;
    }
    v = get(ctx, "api_key");
    if (v) return set_secret(out, SB_CRED_API_KEY, v, strlen(v), err, errlen);
    return 1;
}

struct sb_cred_fpkey {
    EVP_MAC *mac;
    EVP_MAC_CTX *keyed; /* initialized with the secret, never updated: threads work on copies */
    uint64_t id;        /* tells this key from an earlier one freed at the same address */
};

/* Each thread keeps a copy of the last key it fingerprinted with and re-initializes it per use
 * (EVP_MAC_init with no key keeps the key): duplicating the keyed context for every fingerprint
 * -- three digest contexts and their allocations -- took ~0.75 us, 10% of serving a tools/list;
 * a reset takes ~0.3. The copy is freed when its thread exits, when the thread next uses another
 * key, or by sb_cred_fpkey_free on the thread that frees the key. */
typedef struct fp_tls {
    uint64_t id;
    EVP_MAC_CTX *x;
} fp_tls;
static pthread_key_t g_fp_tls;
static pthread_once_t g_fp_once = PTHREAD_ONCE_INIT;
static int g_fp_tls_ok;
static atomic_uint_fast64_t g_fp_next_id = 1;

static void fp_tls_free(void *p)
{
    fp_tls *t = p;
    EVP_MAC_CTX_free(t->x); /* cleanses its copy of the key */
    free(t);
}

static void fp_tls_init(void)
{
    g_fp_tls_ok = pthread_key_create(&g_fp_tls, fp_tls_free) == 0;
}

/* This thread's context keyed with k, ready for updates; NULL when none can be had. */
static EVP_MAC_CTX *thread_ctx(const sb_cred_fpkey *k)
{
    pthread_once(&g_fp_once, fp_tls_init);
    if (!g_fp_tls_ok) return NULL;
    fp_tls *t = pthread_getspecific(g_fp_tls);
    if (!t) {
        t = calloc(1, sizeof *t);
        if (!t) return NULL;
        if (pthread_setspecific(g_fp_tls, t) != 0) {
            free(t);
            return NULL;
        }
    }
    if (t->id != k->id || !t->x) {
        EVP_MAC_CTX_free(t->x);
        t->x = EVP_MAC_CTX_dup(k->keyed);
        t->id = t->x ? k->id : 0;
        if (!t->x) return NULL;
    }
    if (!EVP_MAC_init(t->x, NULL, 0, NULL)) {
        EVP_MAC_CTX_free(t->x);
        t->x = NULL;
        t->id = 0;
        return NULL;
    }
    return t->x;
}

sb_cred_fpkey *sb_cred_fpkey_new(const unsigned char *secret, size_t secret_len)
{
    sb_cred_fpkey *k = calloc(1, sizeof *k);
    if (!k) return NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end()};
    k->id = atomic_fetch_add(&g_fp_next_id, 1);
    k->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    k->keyed = k->mac ? EVP_MAC_CTX_new(k->mac) : NULL;
    if (!k->keyed || !EVP_MAC_init(k->keyed, secret, secret_len, params)) {
        sb_cred_fpkey_free(k);
        return NULL;
    }
    return k;
}

void sb_cred_fpkey_free(sb_cred_fpkey *k)
{
    if (!k) return;
    /* this thread's copy goes with it (other threads drop theirs on exit or their next key) */
    pthread_once(&g_fp_once, fp_tls_init);
    fp_tls *t = g_fp_tls_ok ? pthread_getspecific(g_fp_tls) : NULL;
    if (t && t->id == k->id) {
        EVP_MAC_CTX_free(t->x);
        t->x = NULL;
        t->id = 0;
    }
    EVP_MAC_CTX_free(k->keyed); /* the HMAC context cleanses its key */
    EVP_MAC_free(k->mac);
    free(k);
}

void sb_cred_fingerprint_k(const sb_cred_fpkey *k, const char *provider, const sb_cred *c,
                           char out[SB_FP_HEX])
{
    unsigned char md[32];
    size_t mdlen = 0;
    size_t pl = strnlen(provider, 63);
    EVP_MAC_CTX *own = NULL, *x = thread_ctx(k);
    if (!x) x = own = EVP_MAC_CTX_dup(k->keyed); /* no thread copy: one of this call's own */
    if (!x || !EVP_MAC_update(x, (const unsigned char *)provider, pl) ||
        !EVP_MAC_update(x, (const unsigned char *)"\n", 1) ||
        !EVP_MAC_update(x, (const unsigned char *)c->secret, c->len) ||
        !EVP_MAC_final(x, md, &mdlen, sizeof md) || mdlen != 32)
        memset(md, 0, sizeof md); /* only without a working libcrypto: fails closed */
    EVP_MAC_CTX_free(own);
    sb_hex_encode(md, 32, out);
}

const char *sb_cred_kind_name(sb_cred_kind k)
{
    switch (k) {
    case SB_CRED_X_API_KEY: return "X-API-Key";
    case SB_CRED_BASIC: return "Basic";
    case SB_CRED_API_KEY: return "api_key";
    case SB_CRED_BEARER: return "Bearer";
    default: return "none";
    }
}

void sb_cred_wipe(sb_cred *c)
{
    /* the credential's bytes and its NUL: every writer stores len + 1 bytes after wiping what
     * was there before, so nothing secret lies past them -- and the untouched rest of the 4 KiB
     * buffer is not brought into memory just to be zeroed */
    size_t n = c->len < SB_CRED_MAX ? c->len + 1 : sizeof c->secret;
    OPENSSL_cleanse(c->secret, n);
    OPENSSL_cleanse(c, offsetof(sb_cred, secret));
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int sb_secret_load_or_create(const char *path, unsigned char out[32], char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char buf[80];
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n < 64) {
            snprintf(err, errlen, "secret_file %s: expected 64 hex digits", path);
            return -1;
        }
        for (int i = 0; i < 32; i++) {
            int hi = hexval(buf[2 * i]), lo = hexval(buf[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                snprintf(err, errlen, "secret_file %s: expected 64 hex digits", path);
                return -1;
            }
            out[i] = (unsigned char)(hi << 4 | lo);
        }
        return 0;
    }
    if (errno != ENOENT) {
        snprintf(err, errlen, "secret_file %s: %s", path, strerror(errno));
        return -1;
    }
    if (sb_random_bytes(out, 32) < 0) {
        snprintf(err, errlen, "cannot read random bytes");
        return -1;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "secret_file %s: cannot create: %s", path, strerror(errno));
        return -1;
    }
    char hex[66];
    sb_hex_encode(out, 32, hex);
    hex[64] = '\n';
    ssize_t w = write(fd, hex, 65);
    int ok = w == 65 && fsync(fd) == 0;
    close(fd);
    OPENSSL_cleanse(hex, sizeof hex);
    if (!ok) {
        unlink(path);
        snprintf(err, errlen, "secret_file %s: write failed", path);
        return -1;
    }
    return 0;
}
