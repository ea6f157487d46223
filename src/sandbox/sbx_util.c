/* sbx_util: request-body parsers, deterministic randomness, tokens, PKCE and HTML escaping for the
 * sandbox (part of the sbx framework, see sbx.h). */
#include "sandbox/sbx.h"

#include "core/sb_util.h"

#include <ctype.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static int hexv(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

char *sbx_url_decode(const char *s, size_t n, int plus_is_space)
{
    char *out = malloc(n + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n) {
            int h = hexv((unsigned char)s[i + 1]);
            int l = hexv((unsigned char)s[i + 2]);
            if (h >= 0 && l >= 0) {
                out[o++] = (char)(h << 4 | l);
                i += 2;
                continue;
            }
        }
        out[o++] = (plus_is_space && s[i] == '+') ? ' ' : s[i];
    }
    out[o] = '\0';
    return out;
}

void sbx_kv_free(sbx_kv *kv, size_t n)
{
    if (!kv) return;
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].val);
    }
    free(kv);
}

int sbx_parse_form(const char *s, size_t n, sbx_kv **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    size_t cap = 0, cnt = 0;
    sbx_kv *kv = NULL;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && s[j] != '&') j++;
        if (j > i) {
            const char *eq = memchr(s + i, '=', j - i);
            size_t kl = eq ? (size_t)(eq - (s + i)) : j - i;
            if (cnt == cap) {
                size_t nc = cap ? cap * 2 : 8;
                if (nc > 4096) goto fail; /* bounded: no more than 4096 pairs */
                sbx_kv *nk = realloc(kv, nc * sizeof *nk);
                if (!nk) goto fail;
                kv = nk;
                cap = nc;
            }
            kv[cnt].key = sbx_url_decode(s + i, kl, 1);
            kv[cnt].val = eq ? sbx_url_decode(eq + 1, (size_t)(s + j - eq - 1), 1)
                             : sbx_url_decode("", 0, 1);
            if (!kv[cnt].key || !kv[cnt].val) {
                free(kv[cnt].key);
                free(kv[cnt].val);
                goto fail;
            }
            cnt++;
        }
        i = j + 1;
    }
    *out = kv;
    *nout = cnt;
    return 0;
fail:
    sbx_kv_free(kv, cnt);
    return -1;
}

void sbx_parts_free(sbx_part *p, size_t n)
{
    if (!p) return;
    for (size_t i = 0; i < n; i++) {
        free(p[i].name);
        free(p[i].filename);
        free(p[i].content_type);
    }
    free(p);
}

static const char *memfind(const char *h, size_t hl, const char *nd, size_t nl)
{
    if (nl == 0 || hl < nl) return NULL;
    for (size_t i = 0; i + nl <= hl; i++)
        if (h[i] == nd[0] && memcmp(h + i, nd, nl) == 0) return h + i;
    return NULL;
}

/* Extract a parameter (name=value or name="value") from a header value. malloc'd or NULL. */
static char *header_param(const char *v, size_t vl, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + nl < vl; i++) {
        if ((i == 0 || v[i - 1] == ';' || v[i - 1] == ' ') && strncasecmp(v + i, name, nl) == 0 &&
            v[i + nl] == '=') {
            const char *p = v + i + nl + 1, *e = v + vl;
            if (p < e && *p == '"') {
                p++;
                const char *q = p;
                while (q < e && *q != '"') {
                    if (*q == '\\' && q + 1 < e) q++;
                    q++;
                }
                return strndup(p, (size_t)(q - p));
            }
            const char *q = p;
            while (q < e && *q != ';' && *q != ' ') q++;
            return strndup(p, (size_t)(q - p));
        }
    }
    return NULL;
}

int sbx_parse_multipart(const char *body, size_t len, const char *content_type, sbx_part **out,
                        size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (!content_type || strncasecmp(content_type, "multipart/form-data", 19) != 0) return -1;
    char *b = header_param(content_type, strlen(content_type), "boundary");
    if (!b || !*b || strlen(b) > 200) {
        free(b);
        return -1;
    }
    char delim[210];
    int dl = snprintf(delim, sizeof delim, "--%s", b);
    free(b);
    sbx_part *parts = NULL;
    size_t cnt = 0, cap = 0;
    const char *p = memfind(body, len, delim, (size_t)dl);
    if (!p) return -1;
    const char *end = body + len;
    for (;;) {
        p += dl;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') break; /* closing delimiter */
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
            p += 2;
        else if (end - p >= 1 && p[0] == '\n')
            p += 1;
        else
            goto fail;
        /* headers */
        const char *hend = memfind(p, (size_t)(end - p), "\r\n\r\n", 4);
        size_t hsep = 4;
        if (!hend) {
            hend = memfind(p, (size_t)(end - p), "\n\n", 2);
            hsep = 2;
        }
        if (!hend) goto fail;
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 8;
            if (nc > 1024) goto fail;
            sbx_part *np = realloc(parts, nc * sizeof *np);
            if (!np) goto fail;
            parts = np;
            cap = nc;
        }
        sbx_part *pt = &parts[cnt];
        memset(pt, 0, sizeof *pt);
        cnt++;
        const char *h = p;
        while (h < hend) {
            const char *le = memfind(h, (size_t)(hend - h), "\n", 1);
            if (!le) le = hend;
            size_t ll = (size_t)(le - h);
            if (ll && h[ll - 1] == '\r') ll--;
            if (ll > 20 && strncasecmp(h, "Content-Disposition:", 20) == 0) {
                pt->name = header_param(h + 20, ll - 20, "name");
                char *fn = header_param(h + 20, ll - 20, "filename*");
                if (fn) {
                    const char *q = strstr(fn, "''");
                    pt->filename = sbx_url_decode(q ? q + 2 : fn, strlen(q ? q + 2 : fn), 0);
                    free(fn);
                } else {
                    pt->filename = header_param(h + 20, ll - 20, "filename");
                }
            } else if (ll > 13 && strncasecmp(h, "Content-Type:", 13) == 0) {
                const char *v = h + 13;
                size_t vl = ll - 13;
                while (vl && *v == ' ') v++, vl--;
                pt->content_type = strndup(v, vl);
            }
            h = le + 1;
        }
        if (!pt->name) pt->name = strdup(""); /* RFC 7578 wants a name; be lenient */
        if (!pt->name) goto fail;
        const char *data = hend + hsep;
        const char *next = memfind(data, (size_t)(end - data), delim, (size_t)dl);
        if (!next) goto fail;
        const char *dend = next;
        if (dend > data && dend[-1] == '\n') dend--;
        if (dend > data && dend[-1] == '\r') dend--;
        pt->data = data;
        pt->len = (size_t)(dend - data);
        p = next;
    }
    *out = parts;
    *nout = cnt;
    return 0;
fail:
    sbx_parts_free(parts, cnt);
    return -1;
}

/* splitmix64 */
void sbx_rng_init(sbx_rng *r, uint64_t seed, const char *stream)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *c = stream ? stream : ""; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ull;
    r->s = seed ^ h;
}

uint64_t sbx_rng_next(sbx_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t sbx_rng_range(sbx_rng *r, uint64_t n)
{
    return n ? sbx_rng_next(r) % n : 0;
}

void sbx_rng_hex(sbx_rng *r, size_t nbytes, char *out)
{
    static const char hx[] = "0123456789abcdef";
    uint64_t v = 0;
    for (size_t i = 0; i < nbytes; i++) {
        if (i % 8 == 0) v = sbx_rng_next(r);
        unsigned char c = (unsigned char)(v >> (8 * (i % 8)));
        out[2 * i] = hx[c >> 4];
        out[2 * i + 1] = hx[c & 15];
    }
    out[2 * nbytes] = '\0';
}

void sbx_rng_uuid(sbx_rng *r, char *out)
{
    char h[33];
    sbx_rng_hex(r, 16, h);
    h[12] = '4';
    h[16] = "89ab"[sbx_rng_next(r) & 3];
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
}

void sbx_token(const char *prefix, size_t nbytes, char *out, size_t cap)
{
    unsigned char rnd[64];
    if (nbytes > sizeof rnd) nbytes = sizeof rnd;
    sb_random_bytes(rnd, nbytes);
    char enc[96];
    sb_base64url_encode(rnd, nbytes, enc);
    snprintf(out, cap, "%s%s", prefix ? prefix : "", enc);
}

int sbx_pkce_ok(const char *verifier, const char *challenge, const char *method)
{
    if (!verifier || !challenge) return 0;
    size_t n = strlen(verifier);
    if (n < 43 || n > 128) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = verifier[i];
        if (!(isalnum((unsigned char)c) || c == '-' || c == '.' || c == '_' || c == '~')) return 0;
    }
    if (!method || strcmp(method, "plain") == 0)
        return sb_ct_equal(verifier, n, challenge, strlen(challenge));
    if (strcmp(method, "S256") != 0) return 0;
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)verifier, n, md);
    char enc[64];
    size_t el = sb_base64url_encode(md, sizeof md, enc);
    return sb_ct_equal(enc, el, challenge, strlen(challenge));
}

void sbx_html_escape(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    if (!cap) return;
    for (; s && *s; s++) {
        const char *rep = NULL;
        char one[2] = {*s, 0};
        switch (*s) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: rep = one;
        }
        size_t rl = strlen(rep);
        if (o + rl >= cap) break;
        memcpy(out + o, rep, rl);
        o += rl;
    }
    out[o] = '\0';
}

uint64_t sbx_now(void)
{
    return (uint64_t)time(NULL);
}
