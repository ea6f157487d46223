/* sb_jwt: JWS compact RS256/ES256 with the algorithm pinned per key; JWK / JWKS; claim checks. */
#include "auth/sb_jwt.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "core/sb_util.h"

enum { K_RS256 = 1, K_ES256 = 2 };

#define KID_MAX 256

struct sb_jwk {
    int type; /* K_RS256 | K_ES256 */
    int has_private;
    EVP_PKEY *pkey; /* cached; read-only after creation */
    /* EVP_DigestVerifyInit done once on pkey, read-only after creation: each verification copies
     * it instead of initialising its own, which fetched the signature algorithm every time
     * (~15% of an RS256 verification). NULL when that init failed: each verification inits. */
    EVP_MD_CTX *vtmpl;
    size_t sig_len; /* RSA: modulus bytes; EC: 64 */
    char *a, *b;    /* base64url public parts: n,e (RSA) or x,y (EC) */
    char kid[KID_MAX];
};

struct sb_jwks {
    size_t n;
    sb_jwk *keys[SB_JWKS_MAX_KEYS];
};

static const EVP_MD *g_sha256;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void init_md(void)
{
    /* an explicitly fetched digest avoids the implicit fetch in every EVP_DigestVerifyInit */
    g_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *sha256(void)
{
    pthread_once(&g_once, init_md);
    return g_sha256 ? g_sha256 : EVP_sha256();
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

const char *sb_jwt_strerror(int code)
{
    switch (code) {
    case SB_JWT_OK:
        return "ok";
    case SB_JWT_EMALFORMED:
        return "malformed";
    case SB_JWT_EALG:
        return "alg";
    case SB_JWT_EKID:
        return "kid";
    case SB_JWT_ESIG:
        return "signature";
    case SB_JWT_EEXPIRED:
        return "expired";
    case SB_JWT_ENOTYET:
        return "not_yet_valid";
    case SB_JWT_EISS:
        return "issuer";
    case SB_JWT_EAUD:
        return "audience";
    default:
        return "internal";
    }
}

/* ---------------------------------------------------------------------------------------------
 * base64url helpers
 */

/* Strict base64url without padding: alphabet only, length % 4 != 1, zero trailing bits. Decoded
 * length or -1. */
static long b64url_decode(const char *in, size_t n, unsigned char *out, size_t outcap)
{
    static const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if (n % 4 == 1) return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return -1;
    }
    if (n % 4) { /* canonical: the unused low bits of the last character are zero */
        const char *p = strchr(alpha, in[n - 1]);
        int v = (int)(p - alpha);
        if ((n % 4 == 2 && (v & 0x0f)) || (n % 4 == 3 && (v & 0x03))) return -1;
    }
    if (n == 0) return 0;
    return sb_base64_decode(in, n, out, outcap);
}

static char *b64url_dup(const unsigned char *in, size_t n)
{
    char *s = malloc(sb_base64url_len(n) + 1);
    if (!s) return NULL;
    size_t w = sb_base64url_encode(in, n, s);
    s[w] = '\0';
    return s;
}

static int buf_b64url(sb_buf *out, const unsigned char *in, size_t n)
{
    char stackbuf[512];
    size_t need = sb_base64url_len(n) + 1;
    char *tmp = need <= sizeof stackbuf ? stackbuf : malloc(need);
    if (!tmp) return -1;
    size_t w = sb_base64url_encode(in, n, tmp);
    int rc = sb_buf_append(out, tmp, w);
    if (tmp != stackbuf) free(tmp);
    return rc;
}

static char *bn_b64url(const BIGNUM *bn, int pad)
{
    int n = pad > 0 ? pad : BN_num_bytes(bn);
    if (n <= 0 || n > 2048) return NULL;
    unsigned char tmp[2048];
    if (BN_bn2binpad(bn, tmp, n) != n) return NULL;
    return b64url_dup(tmp, (size_t)n);
}

/* ---------------------------------------------------------------------------------------------
 * Keys
 */

void sb_jwk_free(sb_jwk *k)
{
    if (!k) return;
    EVP_MD_CTX_free(k->vtmpl);
    EVP_PKEY_free(k->pkey);
    free(k->a);
    free(k->b);
    free(k);
}

int sb_jwk_has_private(const sb_jwk *k)
{
    return k ? k->has_private : 0;
}
const char *sb_jwk_kid(const sb_jwk *k)
{
    return k ? k->kid : NULL;
}
const char *sb_jwk_alg(const sb_jwk *k)
{
    if (!k) return NULL;
    return k->type == K_RS256 ? "RS256" : "ES256";
}

static int alg_type(const char *alg)
{
    if (!alg) return 0;
    if (strcmp(alg, "RS256") == 0) return K_RS256;
    if (strcmp(alg, "ES256") == 0) return K_ES256;
    return 0;
}

static int is_p256(EVP_PKEY *pkey)
{
    char name[64];
    size_t nl = 0;
    if (EVP_PKEY_get_group_name(pkey, name, sizeof name, &nl) != 1) return 0;
    return strcmp(name, "prime256v1") == 0 || strcmp(name, "P-256") == 0 ||
           strcmp(name, "secp256r1") == 0;
}

/* Take ownership of pkey; fill the public parts and the thumbprint kid (unless kid is given).
 * Checks the key type against want (0 = infer). NULL with a reason on failure (pkey freed). */
static sb_jwk *jwk_wrap(EVP_PKEY *pkey, int want, int has_private, const char *kid, char *err,
                        size_t errlen)
{
    sb_jwk *k = calloc(1, sizeof *k);
    BIGNUM *b1 = NULL, *b2 = NULL;
    if (!k) {
        EVP_PKEY_free(pkey);
        seterr(err, errlen, "out of memory");
        return NULL;
    }
    k->pkey = pkey;
    k->has_private = has_private;
    int id = EVP_PKEY_get_base_id(pkey);
    if (id == EVP_PKEY_RSA) {
        if (want && want != K_RS256) {
            seterr(err, errlen, "RSA key cannot be pinned to ES256");
            goto fail;
        }
        k->type = K_RS256;
        int bits = EVP_PKEY_get_bits(pkey);
        if (bits < 2048 || bits > 8192) {
            seterr(err, errlen, "RSA key size %d not in 2048..8192", bits);
            goto fail;
        }
        if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &b1) != 1 ||
            EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &b2) != 1) {
            seterr(err, errlen, "cannot read RSA public key");
            goto fail;
        }
        k->a = bn_b64url(b1, 0);
        k->b = bn_b64url(b2, 0);
        k->sig_len = (size_t)BN_num_bytes(b1);
    } else if (id == EVP_PKEY_EC) {
        if (want && want != K_ES256) {
            seterr(err, errlen, "EC key cannot be pinned to RS256");
            goto fail;
        }
        k->type = K_ES256;
        if (!is_p256(pkey)) {
            seterr(err, errlen, "EC key is not on P-256");
            goto fail;
        }
        if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &b1) != 1 ||
            EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &b2) != 1) {
            seterr(err, errlen, "cannot read EC public key");
            goto fail;
        }
        k->a = bn_b64url(b1, 32);
        k->b = bn_b64url(b2, 32);
        k->sig_len = 64;
    } else {
        seterr(err, errlen, "unsupported key type (RSA or EC P-256 only)");
        goto fail;
    }
    if (!k->a || !k->b) {
        seterr(err, errlen, "cannot encode public key");
        goto fail;
    }
    if (kid) {
        sb_strlcpy(k->kid, kid, sizeof k->kid);
    } else {
        /* RFC 7638: members in lexicographic order, no whitespace */
        sb_buf t;
        sb_buf_init(&t, 4096);
        int rc =
            k->type == K_RS256
                ? sb_buf_printf(&t, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", k->b, k->a)
                : sb_buf_printf(&t, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
                                k->a, k->b);
        unsigned char md[32];
        unsigned int mdl = 0;
        if (rc != 0 || EVP_Digest(t.data, t.len, md, &mdl, sha256(), NULL) != 1 || mdl != 32) {
            sb_buf_free(&t);
            seterr(err, errlen, "cannot compute thumbprint");
            goto fail;
        }
        sb_buf_free(&t);
        size_t w = sb_base64url_encode(md, 32, k->kid);
        k->kid[w] = '\0';
    }
    k->vtmpl = EVP_MD_CTX_new();
    if (k->vtmpl && EVP_DigestVerifyInit(k->vtmpl, NULL, sha256(), NULL, pkey) != 1) {
        EVP_MD_CTX_free(k->vtmpl); /* each verification initialises its own */
        k->vtmpl = NULL;
        ERR_clear_error();
    }
    BN_free(b1);
    BN_free(b2);
    return k;
fail:
    BN_free(b1);
    BN_free(b2);
    sb_jwk_free(k);
    return NULL;
}

int sb_jwk_generate(sb_jwk **out, const char *alg)
{
    if (!out) return SB_JWT_EINTERNAL;
    *out = NULL;
    int t = alg_type(alg);
    if (!t) return SB_JWT_EALG;
    EVP_PKEY *pkey = t == K_RS256 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                                  : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!pkey) {
        ERR_clear_error();
        return SB_JWT_EINTERNAL;
    }
    *out = jwk_wrap(pkey, t, 1, NULL, NULL, 0);
    return *out ? 0 : SB_JWT_EINTERNAL;
}

/* Whether a public key is sound, with the same answer every time. EC: OpenSSL's check (the
 * point is on P-256). RSA: OpenSSL's EVP_PKEY_public_check (SP 800-56B 6.4.2.1) decides "n is not
 * a power of a prime" with one Miller-Rabin round on a random base, so a modulus with a factor p
 * where b^(n-1) = 1 mod p for some bases is accepted on one parse and refused on the next (found
 * by fuzz_jwt: a JWKS that parsed, was serialized and no longer parsed; a refreshed key set could
 * lose a key the same way). The same checks here with the base fixed at 2: n odd, no factor below
 * 752, gcd(2^(n-1) - 1 mod n, n) = 1 (which refuses every prime and prime power: for them
 * 2^(n-1) = 1 mod p), e odd and 1 < e < n. The modulus size is jwk_wrap's check. */
static int pkey_public_ok(EVP_PKEY *pkey)
{
    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
        EVP_PKEY_CTX *chk = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        int ok = chk && EVP_PKEY_public_check(chk) == 1;
        EVP_PKEY_CTX_free(chk);
        ERR_clear_error();
        return ok;
    }
    BIGNUM *n = NULL, *e = NULL, *x = BN_new(), *g = BN_new(), *nm1 = BN_new();
    BN_CTX *ctx = BN_CTX_new();
    int ok = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
             EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) == 1 && x && g && nm1 &&
             ctx && BN_is_odd(n) && BN_is_odd(e) && !BN_is_one(e) && BN_cmp(e, n) < 0;
    for (BN_ULONG d = 3; ok && d < 752; d += 2) /* an odd d divides n only if a prime below it does */
        ok = BN_mod_word(n, d) != 0;
    ok = ok && BN_copy(nm1, n) && BN_sub_word(nm1, 1) &&
         BN_mod_exp_mont_word(x, 2, nm1, n, ctx, NULL) == 1 && BN_sub_word(x, 1) &&
         BN_gcd(g, x, n, ctx) == 1 && BN_is_one(g);
    BN_free(n);
    BN_free(e);
    BN_free(x);
    BN_free(g);
    BN_free(nm1);
    BN_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1; /* never prompt; encrypted keys are refused */
}

int sb_jwk_from_pem(sb_jwk **out, const char *pem, size_t len, const char *alg, char *err,
                    size_t errlen)
{
    seterr(err, errlen, "%s", "");
    if (!out) return SB_JWT_EINTERNAL;
    *out = NULL;
    int want = 0;
    if (alg) {
        want = alg_type(alg);
        if (!want) {
            seterr(err, errlen, "unsupported alg (RS256 or ES256 only)");
            return SB_JWT_EALG;
        }
    }
    if (!pem || len == 0 || len > 65536) {
        seterr(err, errlen, "empty or oversize PEM");
        return SB_JWT_EMALFORMED;
    }
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) return SB_JWT_EINTERNAL;
    int priv = 1;
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
    if (!pkey) {
        priv = 0;
        BIO_free(bio);
        bio = BIO_new_mem_buf(pem, (int)len);
        if (!bio) {
            ERR_clear_error();
            return SB_JWT_EINTERNAL;
        }
        pkey = PEM_read_bio_PUBKEY(bio, NULL, no_password, NULL);
    }
    BIO_free(bio);
    ERR_clear_error();
    if (!pkey) {
        seterr(err, errlen, "not a PEM private or public key (or encrypted)");
        return SB_JWT_EMALFORMED;
    }
    /* the checks sb_jwks_parse applies to a published key (pkey_public_ok), and for a private key
     * that it matches its public half: else a corrupt PEM would be accepted here and publish a
     * JWK no verifier accepts (found by fuzz_jwk). Keys over 8192 bits are refused by jwk_wrap
     * without the (slow) checks. */
    int ok = 1;
    if (EVP_PKEY_get_bits(pkey) <= 8192) {
        ok = pkey_public_ok(pkey);
        if (ok && priv) {
            EVP_PKEY_CTX *chk = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
            ok = chk && EVP_PKEY_pairwise_check(chk) == 1;
            EVP_PKEY_CTX_free(chk);
        }
    }
    ERR_clear_error();
    if (!ok) {
        EVP_PKEY_free(pkey);
        seterr(err, errlen, "the key fails OpenSSL's consistency checks");
        return SB_JWT_EMALFORMED;
    }
    *out = jwk_wrap(pkey, want, priv, NULL, err, errlen);
    return *out ? 0 : SB_JWT_EALG;
}

int sb_jwk_to_pem(const sb_jwk *k, int include_private, sb_buf *out)
{
    if (!k || !out) return SB_JWT_EINTERNAL;
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio) return SB_JWT_EINTERNAL;
    int ok = include_private && k->has_private
                 ? PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL)
                 : PEM_write_bio_PUBKEY(bio, k->pkey);
    int rc = SB_JWT_EINTERNAL;
    if (ok == 1) {
        char *p = NULL;
        long n = BIO_get_mem_data(bio, &p);
        if (n > 0 && p && sb_buf_append(out, p, (size_t)n) == 0) rc = 0;
    }
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

int sb_jwk_public_json(const sb_jwk *k, cJSON *arr)
{
    if (!k || !arr || !cJSON_IsArray(arr)) return SB_JWT_EINTERNAL;
    cJSON *o = cJSON_CreateObject();
    if (!o) return SB_JWT_EINTERNAL;
    int ok = 1;
    if (k->type == K_RS256) {
        ok &= cJSON_AddStringToObject(o, "kty", "RSA") != NULL;
        ok &= cJSON_AddStringToObject(o, "use", "sig") != NULL;
        ok &= cJSON_AddStringToObject(o, "alg", "RS256") != NULL;
        ok &= cJSON_AddStringToObject(o, "kid", k->kid) != NULL;
        ok &= cJSON_AddStringToObject(o, "n", k->a) != NULL;
        ok &= cJSON_AddStringToObject(o, "e", k->b) != NULL;
    } else {
        ok &= cJSON_AddStringToObject(o, "kty", "EC") != NULL;
        ok &= cJSON_AddStringToObject(o, "use", "sig") != NULL;
        ok &= cJSON_AddStringToObject(o, "alg", "ES256") != NULL;
        ok &= cJSON_AddStringToObject(o, "kid", k->kid) != NULL;
        ok &= cJSON_AddStringToObject(o, "crv", "P-256") != NULL;
        ok &= cJSON_AddStringToObject(o, "x", k->a) != NULL;
        ok &= cJSON_AddStringToObject(o, "y", k->b) != NULL;
    }
    if (!ok || !cJSON_AddItemToArray(arr, o)) {
        cJSON_Delete(o);
        return SB_JWT_EINTERNAL;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Key sets
 */

sb_jwks *sb_jwks_new(void)
{
    return calloc(1, sizeof(sb_jwks));
}

void sb_jwks_free(sb_jwks *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n; i++)
        sb_jwk_free(s->keys[i]);
    free(s);
}

size_t sb_jwks_count(const sb_jwks *s)
{
    return s ? s->n : 0;
}

const sb_jwk *sb_jwks_get(const sb_jwks *s, const char *kid)
{
    if (!s || !kid) return NULL;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->keys[i]->kid, kid) == 0) return s->keys[i];
    return NULL;
}

int sb_jwks_add(sb_jwks *s, sb_jwk *k)
{
    if (!s || !k || s->n >= SB_JWKS_MAX_KEYS || sb_jwks_get(s, k->kid)) {
        sb_jwk_free(k);
        return -1;
    }
    s->keys[s->n++] = k;
    return 0;
}

int sb_jwks_json(const sb_jwks *s, sb_buf *out)
{
    if (!s || !out) return SB_JWT_EINTERNAL;
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = root ? cJSON_AddArrayToObject(root, "keys") : NULL;
    int rc = arr ? 0 : SB_JWT_EINTERNAL;
    for (size_t i = 0; rc == 0 && i < s->n; i++)
        rc = sb_jwk_public_json(s->keys[i], arr);
    char *txt = rc == 0 ? cJSON_PrintUnformatted(root) : NULL;
    if (rc == 0 && (!txt || sb_buf_puts(out, txt) != 0)) rc = SB_JWT_EINTERNAL;
    free(txt);
    cJSON_Delete(root);
    return rc;
}

static const char *jstr(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

/* Decode a base64url JWK member into a BIGNUM (NULL when absent, bad or longer than max bytes). */
static BIGNUM *jwk_bn(const cJSON *o, const char *name, size_t max, size_t *nbytes)
{
    const char *s = jstr(o, name);
    unsigned char tmp[1100];
    if (!s || max > sizeof tmp) return NULL;
    size_t sl = strlen(s);
    if (sl == 0 || sl > (max * 4 + 2) / 3 + 1) return NULL;
    long n = b64url_decode(s, sl, tmp, sizeof tmp);
    if (n <= 0 || (size_t)n > max) return NULL;
    if (nbytes) *nbytes = (size_t)n;
    return BN_bin2bn(tmp, (int)n, NULL);
}

/* Build a public EVP_PKEY from a JWK object; NULL if unusable. */
static EVP_PKEY *jwk_to_pkey(const cJSON *o, int type)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    BIGNUM *b1 = NULL, *b2 = NULL;
    unsigned char pt[65]; /* referenced by bld until OSSL_PARAM_BLD_to_param */
    if (!bld) return NULL;
    if (type == K_RS256) {
        b1 = jwk_bn(o, "n", 1024, NULL);
        b2 = jwk_bn(o, "e", 8, NULL);
        if (!b1 || !b2) goto done;
        if (!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, b1) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, b2))
            goto done;
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    } else {
        size_t xl = 0, yl = 0;
        b1 = jwk_bn(o, "x", 32, &xl);
        b2 = jwk_bn(o, "y", 32, &yl);
        if (!b1 || !b2 || xl != 32 || yl != 32) goto done;
        pt[0] = 0x04;
        if (BN_bn2binpad(b1, pt + 1, 32) != 32 || BN_bn2binpad(b2, pt + 33, 32) != 32) goto done;
        if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
            !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt))
            goto done;
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    }
    params = OSSL_PARAM_BLD_to_param(bld);
    if (!ctx || !params || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
        goto done;
    }
    if (!pkey_public_ok(pkey)) { /* point on the curve / sane RSA exponent and modulus */
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
done:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(b1);
    BN_free(b2);
    ERR_clear_error();
    return pkey;
}

int sb_jwks_parse(sb_jwks **out, const char *json, size_t len, char *err, size_t errlen)
{
    seterr(err, errlen, "%s", "");
    if (!out) return SB_JWT_EINTERNAL;
    *out = NULL;
    if (!json || len == 0) {
        seterr(err, errlen, "empty JWKS document");
        return SB_JWT_EMALFORMED;
    }
    cJSON *root = cJSON_ParseWithLength(json, len);
    const cJSON *keys = root ? cJSON_GetObjectItemCaseSensitive(root, "keys") : NULL;
    if (!cJSON_IsObject(root) || !cJSON_IsArray(keys)) {
        cJSON_Delete(root);
        seterr(err, errlen, "not a JWKS document (no \"keys\" array)");
        return SB_JWT_EMALFORMED;
    }
    sb_jwks *s = sb_jwks_new();
    if (!s) {
        cJSON_Delete(root);
        return SB_JWT_EINTERNAL;
    }
    size_t seen = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, keys)
    {
        if (s->n >= SB_JWKS_MAX_KEYS) break;
        seen++;
        if (!cJSON_IsObject(o)) continue;
        const char *kty = jstr(o, "kty");
        const cJSON *use = cJSON_GetObjectItemCaseSensitive(o, "use");
        const cJSON *alg = cJSON_GetObjectItemCaseSensitive(o, "alg");
        const cJSON *kid = cJSON_GetObjectItemCaseSensitive(o, "kid");
        if (!kty) continue;
        if (use && !(cJSON_IsString(use) && strcmp(use->valuestring, "sig") == 0)) continue;
        int type;
        if (strcmp(kty, "RSA") == 0)
            type = K_RS256;
        else if (strcmp(kty, "EC") == 0) {
            const char *crv = jstr(o, "crv");
            if (!crv || strcmp(crv, "P-256") != 0) continue;
            type = K_ES256;
        } else
            continue;
        if (alg && (!cJSON_IsString(alg) || alg_type(alg->valuestring) != type)) continue;
        if (kid &&
            (!cJSON_IsString(kid) || !kid->valuestring[0] || strlen(kid->valuestring) >= KID_MAX))
            continue;
        EVP_PKEY *pkey = jwk_to_pkey(o, type);
        if (!pkey) continue;
        sb_jwk *k = jwk_wrap(pkey, type, 0, kid ? kid->valuestring : NULL, NULL, 0);
        if (k) sb_jwks_add(s, k); /* a duplicate kid is dropped */
    }
    cJSON_Delete(root);
    if (s->n == 0) {
        seterr(err, errlen, "no usable key among %zu (RSA >= 2048 bits or EC P-256, use sig)",
               seen);
        sb_jwks_free(s);
        return SB_JWT_EMALFORMED;
    }
    *out = s;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Sign
 */

/* DER ECDSA signature -> raw R||S (64 bytes). */
static int ecdsa_der_to_raw(const unsigned char *der, size_t len, unsigned char raw[64])
{
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
    if (!sig) return -1;
    const BIGNUM *r = NULL, *s = NULL;
    ECDSA_SIG_get0(sig, &r, &s);
    int ok = BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32;
    ECDSA_SIG_free(sig);
    return ok ? 0 : -1;
}

/* raw R||S -> DER; *der malloc'd by OpenSSL (OPENSSL_free). Length or -1. */
static int ecdsa_raw_to_der(const unsigned char raw[64], unsigned char **der)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, 32, NULL), *s = BN_bin2bn(raw + 32, 32, NULL);
    if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1) {
        ECDSA_SIG_free(sig);
        BN_free(r);
        BN_free(s);
        return -1;
    }
    *der = NULL;
    int n = i2d_ECDSA_SIG(sig, der);
    ECDSA_SIG_free(sig);
    return n > 0 ? n : -1;
}

int sb_jwt_sign(const sb_jwk *k, const char *typ, const cJSON *claims, sb_buf *out)
{
    if (!k || !k->has_private || !claims || !cJSON_IsObject(claims) || !out)
        return SB_JWT_EINTERNAL;
    size_t start = out->len;
    int rc = SB_JWT_EINTERNAL;
    char *payload = NULL;
    EVP_MD_CTX *md = NULL;
    unsigned char *sig = NULL;
    sb_buf h;
    sb_buf_init(&h, 1024);
    if (sb_buf_printf(&h, "{\"alg\":\"%s\",\"typ\":", sb_jwk_alg(k)) != 0 ||
        sb_buf_json_string(&h, typ ? typ : "JWT") != 0 || sb_buf_puts(&h, ",\"kid\":") != 0 ||
        sb_buf_json_string(&h, k->kid) != 0 || sb_buf_puts(&h, "}") != 0)
        goto done;
    payload = cJSON_PrintUnformatted(claims);
    if (!payload) goto done;
    if (buf_b64url(out, (const unsigned char *)h.data, h.len) != 0 || sb_buf_puts(out, ".") != 0 ||
        buf_b64url(out, (const unsigned char *)payload, strlen(payload)) != 0)
        goto done;
    size_t siglen = 0;
    md = EVP_MD_CTX_new();
    if (!md || EVP_DigestSignInit(md, NULL, sha256(), NULL, k->pkey) != 1 ||
        EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)out->data + start,
                       out->len - start) != 1)
        goto done;
    sig = malloc(siglen ? siglen : 1);
    if (!sig || EVP_DigestSign(md, sig, &siglen, (const unsigned char *)out->data + start,
                               out->len - start) != 1)
        goto done;
    if (sb_buf_puts(out, ".") != 0) goto done;
    if (k->type == K_ES256) {
        unsigned char raw[64];
        if (ecdsa_der_to_raw(sig, siglen, raw) != 0 || buf_b64url(out, raw, 64) != 0) goto done;
    } else if (buf_b64url(out, sig, siglen) != 0)
        goto done;
    rc = 0;
done:
    if (rc != 0 && out->data) {
        out->len = start;
        out->data[start] = '\0';
    }
    ERR_clear_error();
    EVP_MD_CTX_free(md);
    free(sig);
    free(payload);
    sb_buf_free(&h);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Verify
 */

/* Decode one base64url part holding a JSON object (NUL-free, valid UTF-8, nothing after it). */
static cJSON *part_json(const char *p, size_t n)
{
    size_t cap = n / 4 * 3 + 3;
    char *buf = malloc(cap + 1);
    if (!buf) return NULL;
    long dl = b64url_decode(p, n, (unsigned char *)buf, cap);
    cJSON *j = NULL;
    if (dl > 0 && !memchr(buf, '\0', (size_t)dl) && sb_utf8_valid(buf, (size_t)dl)) {
        buf[dl] = '\0';
        const char *end = NULL;
        j = cJSON_ParseWithOpts(buf, &end, 1);
        if (j && !cJSON_IsObject(j)) {
            cJSON_Delete(j);
            j = NULL;
        }
    }
    free(buf);
    return j;
}

static int typ_matches(const char *got, const char *want)
{
    if (!got) return 0;
    if (sb_strcaseeq(got, want)) return 1;
    static const char pfx[] = "application/";
    size_t pl = sizeof pfx - 1;
    if (strncasecmp(got, pfx, pl) == 0 && sb_strcaseeq(got + pl, want)) return 1;
    if (strncasecmp(want, pfx, pl) == 0 && sb_strcaseeq(got, want + pl)) return 1;
    return 0;
}

/* A finite numeric claim (NumericDate); 1 and *v, 0 when absent, -1 when present but unusable. */
static int num_claim(const cJSON *c, const char *name, double *v)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(c, name);
    if (!x) return 0;
    if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble)) return -1;
    *v = x->valuedouble;
    return 1;
}

void sb_jwt_claim_times(const cJSON *claims, double *exp, double *not_before)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(claims, "exp");
    *exp = cJSON_IsNumber(x) ? x->valuedouble : 0;
    *not_before = -HUGE_VAL;
    static const char *const from[] = {"nbf", "iat"};
    for (size_t k = 0; k < 2; k++) {
        x = cJSON_GetObjectItemCaseSensitive(claims, from[k]);
        if (cJSON_IsNumber(x) && x->valuedouble > *not_before) *not_before = x->valuedouble;
    }
}

static int check_sig(const sb_jwk *k, const char *signing_input, size_t silen,
                     const unsigned char *sig, size_t siglen)
{
    unsigned char *der = NULL;
    const unsigned char *s = sig;
    size_t sl = siglen;
    if (siglen != k->sig_len) return SB_JWT_ESIG;
    if (k->type == K_ES256) {
        int n = ecdsa_raw_to_der(sig, &der);
        if (n < 0) return SB_JWT_EINTERNAL;
        s = der;
        sl = (size_t)n;
    }
    int rc = SB_JWT_EINTERNAL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    /* a copy of the key's initialised context (concurrent copies only read it) */
    if (md && (k->vtmpl ? EVP_MD_CTX_copy_ex(md, k->vtmpl)
                        : EVP_DigestVerifyInit(md, NULL, sha256(), NULL, k->pkey)) == 1) {
        int v = EVP_DigestVerify(md, s, sl, (const unsigned char *)signing_input, silen);
        rc = v == 1 ? 0 : SB_JWT_ESIG;
    }
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    ERR_clear_error();
    return rc;
}

int sb_jwt_verify(const sb_jwks *ks, const char *token, size_t len, const sb_jwt_expect *ex,
                  cJSON **claims_out, char *err, size_t errlen)
{
    static const sb_jwt_expect none = {0};
    if (claims_out) *claims_out = NULL;
    seterr(err, errlen, "%s", "");
    if (!ex) ex = &none;
    if (!ks) {
        seterr(err, errlen, "no key set");
        return SB_JWT_EINTERNAL;
    }
    if (!token || len == 0 || len > SB_JWT_MAX_TOKEN) {
        seterr(err, errlen, "token empty or longer than %d bytes", SB_JWT_MAX_TOKEN);
        return SB_JWT_EMALFORMED;
    }
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token))) {
        seterr(err, errlen, "not a compact JWS (three parts)");
        return SB_JWT_EMALFORMED;
    }
    size_t hl = (size_t)(d1 - token), pl = (size_t)(d2 - d1 - 1),
           sl = len - (size_t)(d2 + 1 - token);
    if (hl == 0 || pl == 0) {
        seterr(err, errlen, "empty header or payload");
        return SB_JWT_EMALFORMED;
    }
    /* all three parts: the base64url alphabet only (no padding) */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)token[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.')) {
            seterr(err, errlen, "character outside base64url");
            return SB_JWT_EMALFORMED;
        }
    }
    /* a signature that does not decode (truncated, non-canonical) is a bad signature */
    unsigned char sig[1100];
    long sigl = b64url_decode(d2 + 1, sl, sig, sizeof sig);
    cJSON *hdr = part_json(token, hl);
    if (!hdr) {
        seterr(err, errlen, "header is not a base64url JSON object");
        return SB_JWT_EMALFORMED;
    }
    int rc;
    cJSON *claims = NULL;
    const cJSON *jalg = cJSON_GetObjectItemCaseSensitive(hdr, "alg");
    const cJSON *jkid = cJSON_GetObjectItemCaseSensitive(hdr, "kid");
    const sb_jwk *k = NULL;
    if (!cJSON_IsString(jalg)) {
        seterr(err, errlen, "header has no alg");
        rc = SB_JWT_EMALFORMED;
        goto done;
    }
    if (!alg_type(jalg->valuestring)) {
        seterr(err, errlen, "alg not accepted");
        rc = SB_JWT_EALG;
        goto done;
    }
    if (cJSON_GetObjectItemCaseSensitive(hdr, "crit")) {
        seterr(err, errlen, "header has crit");
        rc = SB_JWT_EMALFORMED;
        goto done;
    }
    if (jkid) {
        if (!cJSON_IsString(jkid)) {
            seterr(err, errlen, "header kid is not a string");
            rc = SB_JWT_EMALFORMED;
            goto done;
        }
        k = sb_jwks_get(ks, jkid->valuestring);
    } else if (ks->n == 1) {
        k = ks->keys[0];
    }
    if (!k) {
        seterr(err, errlen, jkid ? "unknown kid" : "no kid and more than one key");
        rc = SB_JWT_EKID;
        goto done;
    }
    if (alg_type(jalg->valuestring) != k->type) {
        seterr(err, errlen, "alg does not match the key's algorithm");
        rc = SB_JWT_EALG;
        goto done;
    }
    if (ex->typ && !typ_matches(jstr(hdr, "typ"), ex->typ)) {
        seterr(err, errlen, "unexpected typ");
        rc = SB_JWT_EMALFORMED;
        goto done;
    }
    rc = sigl < 0 ? SB_JWT_ESIG : check_sig(k, token, hl + 1 + pl, sig, (size_t)sigl);
    if (rc != 0) {
        seterr(err, errlen, rc == SB_JWT_ESIG ? "bad signature" : "signature check failed");
        goto done;
    }
    claims = part_json(d1 + 1, pl);
    if (!claims) {
        seterr(err, errlen, "payload is not a base64url JSON object");
        rc = SB_JWT_EMALFORMED;
        goto done;
    }
    double now = ex->now_s ? (double)ex->now_s : (double)time(NULL);
    double lw = ex->leeway_s > 0 ? (double)ex->leeway_s : 0.0;
    double exp = 0, nbf = 0, iat = 0;
    int r = num_claim(claims, "exp", &exp);
    if (r <= 0) {
        seterr(err, errlen, r == 0 ? "exp missing" : "exp not a number");
        rc = SB_JWT_EMALFORMED;
        goto done;
    }
    if (now >= exp + lw) {
        seterr(err, errlen, "token expired");
        rc = SB_JWT_EEXPIRED;
        goto done;
    }
    r = num_claim(claims, "nbf", &nbf);
    if (r < 0 || (r > 0 && nbf > now + lw)) {
        seterr(err, errlen, r < 0 ? "nbf not a number" : "token not yet valid (nbf)");
        rc = r < 0 ? SB_JWT_EMALFORMED : SB_JWT_ENOTYET;
        goto done;
    }
    r = num_claim(claims, "iat", &iat);
    if (r < 0 || (r > 0 && iat > now + lw)) {
        seterr(err, errlen, r < 0 ? "iat not a number" : "token issued in the future (iat)");
        rc = r < 0 ? SB_JWT_EMALFORMED : SB_JWT_ENOTYET;
        goto done;
    }
    if (ex->iss) {
        const char *iss = jstr(claims, "iss");
        if (!iss || strcmp(iss, ex->iss) != 0) {
            seterr(err, errlen, "issuer mismatch");
            rc = SB_JWT_EISS;
            goto done;
        }
    }
    if (ex->aud) {
        const cJSON *aud = cJSON_GetObjectItemCaseSensitive(claims, "aud");
        int found = 0;
        if (cJSON_IsString(aud))
            found = strcmp(aud->valuestring, ex->aud) == 0;
        else if (cJSON_IsArray(aud)) {
            const cJSON *a;
            cJSON_ArrayForEach(a, aud)
            {
                if (cJSON_IsString(a) && strcmp(a->valuestring, ex->aud) == 0) found = 1;
            }
        }
        if (!found) {
            seterr(err, errlen, "audience mismatch");
            rc = SB_JWT_EAUD;
            goto done;
        }
    }
    rc = SB_JWT_OK;
    if (claims_out) {
        *claims_out = claims;
        claims = NULL;
    }
done:
    cJSON_Delete(hdr);
    cJSON_Delete(claims);
    return rc;
}
