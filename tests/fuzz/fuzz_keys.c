/* Fuzz target: the request-credential helpers (issue 10): the signbridge key shape
 * (sb_keys_is_key), key expiry / overlap parsing (sb_keys_parse_when, both modes) and credential
 * extraction from request headers (sb_cred_extract: X-API-Key, Authorization Bearer / Basic,
 * api_key). The input is a header block, "Name: value" per line ('\n' or "\r\n"); each value (and
 * the whole input) is also given to the key helpers. A credential extracted is checked against
 * its declared length and fingerprinted. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/sb_cred.h"
#include "auth/sb_keys.h"
#include "core/sb_util.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HDRS 32

typedef struct hdrs {
    const char *name[MAX_HDRS];
    const char *value[MAX_HDRS];
    size_t n;
} hdrs;

static const char *get_hdr(void *ctx, const char *name)
{
    const hdrs *h = ctx;
    for (size_t i = 0; i < h->n; i++)
        if (strcasecmp(h->name[i], name) == 0) return h->value[i];
    return NULL;
}

static void key_helpers(const char *s, size_t n)
{
    (void)sb_keys_is_key(s, n);
    int64_t ms = 0;
    if (sb_keys_parse_when(s, 1800000000000LL, &ms, 0) == 0 && ms == INT64_MIN) abort();
    if (sb_keys_parse_when(s, 0, &ms, 1) == 0 && ms < 0) abort(); /* a duration is never negative */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024) return 0;
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    key_helpers(buf, strlen(buf));
    key_helpers(buf, size); /* the declared length may differ from strlen (embedded NULs) */

    hdrs h = {.n = 0};
    char *p = buf;
    while (p && *p && h.n < MAX_HDRS) {
        char *eol = strchr(p, '\n'), *next = NULL;
        if (eol) {
            next = eol + 1;
            if (eol > p && eol[-1] == '\r') eol--;
            *eol = 0;
        }
        char *colon = strchr(p, ':');
        if (colon) {
            *colon = 0;
            char *v = colon + 1;
            while (*v == ' ' || *v == '\t') v++;
            h.name[h.n] = p;
            h.value[h.n] = v;
            h.n++;
            key_helpers(v, strlen(v));
        }
        p = next;
    }

    sb_cred *c = malloc(sizeof *c);
    if (!c) abort();
    char err[160];
    err[0] = 0;
    int rc = sb_cred_extract(get_hdr, &h, c, err, sizeof err);
    if (rc == 0) {
        if (c->len == 0 || c->len > SB_CRED_MAX || c->kind == SB_CRED_NONE) abort();
        if (c->secret[c->len] != 0) abort();
        static const unsigned char secret[32] = {1, 2, 3};
        static sb_cred_fpkey *fk;
        if (!fk && !(fk = sb_cred_fpkey_new(secret, sizeof secret))) abort();
        char fp[SB_FP_HEX];
        sb_cred_fingerprint_k(fk, "boldsign", c, fp);
        if (strlen(fp) != SB_FP_HEX - 1) abort();
        /* it is HMAC-SHA256(secret, "boldsign\n" credential), as OpenSSL's one-shot HMAC says */
        static unsigned char msg[9 + SB_CRED_MAX];
        memcpy(msg, "boldsign\n", 9);
        memcpy(msg + 9, c->secret, c->len);
        unsigned char md[32];
        unsigned int mdlen = 0;
        if (!HMAC(EVP_sha256(), secret, sizeof secret, msg, 9 + c->len, md, &mdlen) || mdlen != 32)
            abort();
        char want[SB_FP_HEX];
        sb_hex_encode(md, 32, want);
        if (strcmp(fp, want) != 0) abort();
        (void)sb_keys_is_key(c->secret, c->len);
        (void)sb_cred_kind_name(c->kind);
    } else if (rc == -1) {
        if (!err[0]) abort(); /* a refusal always says why */
    } else if (rc != 1) {
        abort();
    }
    sb_cred_wipe(c);
    free(c);
    free(buf);
    return 0;
}
