#include "providers/sb_provider.h"

#include "core/sb_json.h"
#include "core/sb_util.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const sb_adapter *const k_adapters[SB_N_ADAPTERS] = {
    &sb_adapter_boldsign, &sb_adapter_dropboxsign, &sb_adapter_iinkedsign};

const sb_adapter *sb_adapter_at(size_t i)
{
    return i < SB_N_ADAPTERS ? k_adapters[i] : NULL;
}

const sb_adapter *sb_adapter_find(const char *provider)
{
    for (size_t i = 0; i < SB_N_ADAPTERS; i++)
        if (strcmp(provider, k_adapters[i]->name) == 0) return k_adapters[i];
    return NULL;
}

const sb_ptool *sb_adapter_tool(const sb_adapter *a, const char *tool)
{
    for (size_t i = 0; i < a->ntools; i++)
        if (strcmp(a->tools[i].tool, tool) == 0) return &a->tools[i];
    return NULL;
}

void sb_preq_init(sb_preq *r, const char *method, int idempotent)
{
    memset(r, 0, sizeof *r);
    sb_strlcpy(r->method, method, sizeof r->method);
    sb_buf_init(&r->url, 8192);
    sb_buf_init(&r->body, (size_t)48 << 20);
    r->idempotent = idempotent;
}

void sb_preq_free(sb_preq *r)
{
    sb_buf_free(&r->url);
    sb_buf_free(&r->body);
    for (size_t i = 0; i < r->nheaders; i++) {
        explicit_bzero(r->headers[i], strlen(r->headers[i]));
        free(r->headers[i]);
    }
    r->nheaders = 0;
}

int sb_preq_header(sb_preq *r, const char *fmt, ...)
{
    if (r->nheaders >= SB_PREQ_MAX_HEADERS) return -1;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf || strpbrk(buf, "\r\n")) return -1;
    r->headers[r->nheaders] = strdup(buf);
    if (!r->headers[r->nheaders]) return -1;
    r->nheaders++;
    r->headers[r->nheaders] = NULL;
    return 0;
}

int sb_preq_url(sb_preq *r, const char *base, const char *path)
{
    sb_buf_reset(&r->url);
    if (sb_buf_puts(&r->url, base) != 0) return -1;
    return sb_buf_puts(&r->url, path);
}

int sb_pct_encode(const char *s, sb_buf *out)
{
    static const char hx[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        int keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '.' || c == '_' || c == '~';
        if (keep) {
            if (sb_buf_append(out, p, 1) != 0) return -1;
        } else {
            char e[3] = {'%', hx[c >> 4], hx[c & 15]};
            if (sb_buf_append(out, e, 3) != 0) return -1;
        }
    }
    return 0;
}

int sb_preq_query(sb_preq *r, const char *key, const char *value)
{
    const char *sep = r->url.data && strchr(r->url.data, '?') ? "&" : "?";
    if (sb_buf_puts(&r->url, sep) != 0 || sb_pct_encode(key, &r->url) != 0 ||
        sb_buf_puts(&r->url, "=") != 0)
        return -1;
    return sb_pct_encode(value, &r->url);
}

int sb_preq_query_int(sb_preq *r, const char *key, long long v)
{
    char b[32];
    snprintf(b, sizeof b, "%lld", v);
    return sb_preq_query(r, key, b);
}

int sb_preq_json(sb_preq *r, cJSON *body)
{
    char *s = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (!s) return -1;
    sb_buf_reset(&r->body);
    int rc = sb_buf_puts(&r->body, s);
    free(s);
    if (rc == 0) rc = sb_preq_header(r, "Content-Type: application/json");
    return rc;
}

int sb_preq_multipart_begin(sb_preq *r)
{
    unsigned char rnd[12];
    char hex[25];
    sb_random_bytes(rnd, sizeof rnd);
    sb_hex_encode(rnd, sizeof rnd, hex);
    snprintf(r->boundary, sizeof r->boundary, "----signbridge%s", hex);
    sb_buf_reset(&r->body);
    return sb_preq_header(r, "Content-Type: multipart/form-data; boundary=%s", r->boundary);
}

static int mp_escape_ok(const char *s)
{
    return s && !strpbrk(s, "\"\r\n");
}

int sb_preq_multipart_field(sb_preq *r, const char *name, const char *value)
{
    if (!mp_escape_ok(name)) return -1;
    return sb_buf_printf(&r->body,
                         "--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n", r->boundary,
                         name) == 0 &&
                   sb_buf_puts(&r->body, value) == 0 && sb_buf_puts(&r->body, "\r\n") == 0
               ? 0
               : -1;
}

int sb_preq_multipart_file(sb_preq *r, const char *name, const char *filename,
                           const char *content_type, const void *data, size_t len)
{
    if (!mp_escape_ok(name) || !mp_escape_ok(filename) || !mp_escape_ok(content_type)) return -1;
    if (sb_buf_printf(&r->body,
                      "--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                      "Content-Type: %s\r\n\r\n",
                      r->boundary, name, filename, content_type) != 0)
        return -1;
    if (sb_buf_append(&r->body, data, len) != 0) return -1;
    return sb_buf_puts(&r->body, "\r\n");
}

int sb_preq_multipart_end(sb_preq *r)
{
    return sb_buf_printf(&r->body, "--%s--\r\n", r->boundary);
}

unsigned char *sb_decode_base64_arg(const char *b64, size_t max, size_t *len, char *err,
                                    size_t errlen)
{
    const char *p = b64;
    if (strncmp(p, "data:", 5) == 0) {
        const char *comma = strchr(p, ',');
        if (!comma || !strstr(p, ";base64")) {
            snprintf(err, errlen, "a data: URI file must be base64 (data:<type>;base64,...)");
            return NULL;
        }
        p = comma + 1;
    }
    size_t n = strlen(p);
    size_t cap = n / 4 * 3 + 3;
    if (cap > max + 3) {
        snprintf(err, errlen, "the file is larger than %zu bytes", max);
        return NULL;
    }
    unsigned char *out = malloc(cap + 1);
    if (!out) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    long got = sb_base64_decode(p, n, out, cap);
    if (got < 0) {
        free(out);
        snprintf(err, errlen, "the file's base64 content is not valid base64");
        return NULL;
    }
    if ((size_t)got > max) {
        free(out);
        snprintf(err, errlen, "the file is larger than %zu bytes", max);
        return NULL;
    }
    *len = (size_t)got;
    return out;
}

const char *sb_sniff_mime(const unsigned char *d, size_t n)
{
    if (n >= 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) return "image/png";
    if (n >= 3 && memcmp(d, "\xff\xd8\xff", 3) == 0) return "image/jpeg";
    if (n >= 4 && memcmp(d, "PK\x03\x04", 4) == 0)
        return "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
    if (memmem(d, n < 1024 ? n : 1024, "%PDF-", 5)) return "application/pdf";
    return NULL;
}

int sb_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 128) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == '~' || c == ':' || c == '@'))
            return 0;
    }
    return 1;
}

const cJSON *sb_jget(const cJSON *o, const char *key)
{
    /* cJSON_GetObjectItemCaseSensitive's walk, comparing a member's first two bytes before
     * calling strcmp: a mapper looks up some twenty names in objects of thirty members, many of
     * which share a first letter ("signerName", "status", "signType") */
    if (!o || !key) return NULL;
    const cJSON *c = o->child;
    while (c && c->string &&
           (c->string[0] != key[0] ||
            (key[0] && (c->string[1] != key[1] || strcmp(c->string + 1, key + 1) != 0))))
        c = c->next;
    return c && c->string ? c : NULL;
}

void sb_jpick(const cJSON *o, const char *const *names, size_t n, const cJSON **out)
{
    assert(n <= SB_JPICK_MAX);
    /* the names by their first byte's low five bits: a member is compared only with the names
     * that may match it, mostly none or one */
    uint32_t by_first[32] = {0}, pending = 0;
    for (size_t i = 0; i < n; i++) {
        out[i] = NULL;
        by_first[(unsigned char)names[i][0] & 31] |= (uint32_t)1 << i;
        pending |= (uint32_t)1 << i;
    }
    if (!o) return;
    /* sb_jget's walk: it stops at a member without a name (o is an array), finding nothing more */
    for (const cJSON *c = o->child; c && c->string && pending; c = c->next) {
        const char *s = c->string;
        for (uint32_t cand = by_first[(unsigned char)s[0] & 31] & pending; cand; cand &= cand - 1) {
            unsigned i = (unsigned)__builtin_ctz(cand);
            const char *k = names[i];
            if (k[0] == s[0] && (!k[0] || (k[1] == s[1] && strcmp(k + 1, s + 1) == 0))) {
                out[i] = c; /* the first member so named: never replaced */
                pending &= ~((uint32_t)1 << i);
                break; /* names are distinct: no other can match */
            }
        }
    }
}

const char *sb_jv_str(const cJSON *v)
{
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int sb_jv_bool(const cJSON *v, int def)
{
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

double sb_jv_num(const cJSON *v, double def)
{
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return def;
    /* provider numbers are untrusted: keep them where any integer conversion is defined */
    double x = v->valuedouble;
    if (x > 9007199254740992.0) return 9007199254740992.0;
    if (x < -9007199254740992.0) return -9007199254740992.0;
    return x;
}

const char *sb_jstr(const cJSON *o, const char *key)
{
    return sb_jv_str(sb_jget(o, key));
}

int sb_jbool(const cJSON *o, const char *key, int def)
{
    return sb_jv_bool(sb_jget(o, key), def);
}

double sb_jnum(const cJSON *o, const char *key, double def)
{
    return sb_jv_num(sb_jget(o, key), def);
}

cJSON *sb_jput_(cJSON *o, const char *key, cJSON *item)
{
    if (item && cJSON_AddItemToObjectCS(o, key, item)) return item;
    cJSON_Delete(item);
    return NULL;
}

/* o[key] = v, key constant (a literal: see the macros in sb_provider.h) */
static void add_cs(cJSON *o, const char *key, cJSON *v)
{
    if (v && !cJSON_AddItemToObjectCS(o, key, v)) cJSON_Delete(v);
}

void sb_jadd_str_(cJSON *o, const char *key, const char *v)
{
    add_cs(o, key, v ? cJSON_CreateString(v) : cJSON_CreateNull());
}

/* An RFC 3339 time from epoch seconds in ts (1970 .. 9999), or 0 (no time at all). */
static int epoch_text(double epoch_s, char ts[40])
{
    if (!(epoch_s > 0 && epoch_s < 253402300800.0)) return 0;
    sb_rfc3339((uint64_t)(epoch_s * 1000.0), ts, 40);
    return 1;
}

int sb_ptime_ms(const char *iso, int64_t *ms)
{
    if (iso && sb_parse_rfc3339(iso, ms) == 0) return 0;
    /* providers sometimes omit the zone: read it as UTC */
    char buf[48];
    if (iso && strlen(iso) >= 19 && strlen(iso) < 40) {
        snprintf(buf, sizeof buf, "%sZ", iso);
        if (sb_parse_rfc3339(buf, ms) == 0) return 0;
    }
    return -1;
}

/* A provider's ISO 8601 time normalized to RFC 3339 UTC in ts, or 0 when it cannot be read. */
static int iso_text(const char *iso, char ts[40])
{
    int64_t ms;
    if (sb_ptime_ms(iso, &ms) < 0) return 0;
    sb_rfc3339((uint64_t)ms, ts, 40);
    return 1;
}

void sb_jadd_epoch_(cJSON *o, const char *key, double epoch_s)
{
    char ts[40];
    add_cs(o, key, epoch_text(epoch_s, ts) ? cJSON_CreateString(ts) : cJSON_CreateNull());
}

void sb_jadd_iso_(cJSON *o, const char *key, const char *iso)
{
    char ts[40];
    add_cs(o, key, iso_text(iso, ts) ? cJSON_CreateString(ts) : cJSON_CreateNull());
}

void sb_jadd_int_or_null_(cJSON *o, const char *key, double v)
{
    add_cs(o, key, v < 0 ? cJSON_CreateNull() : cJSON_CreateNumber(v));
}

/* a time as written: sb_rfc3339's digits, '-', ':', '.', 'T' and 'Z' need no escaping */
static void vtime(sb_jw *w, int ok, const char *ts)
{
    if (ok)
        sb_jw_vclean(w, ts, strlen(ts));
    else
        sb_jw_vnull(w);
}

void sb_pjw_vepoch(sb_jw *w, double epoch_s)
{
    char ts[40];
    vtime(w, epoch_text(epoch_s, ts), ts);
}

void sb_pjw_viso(sb_jw *w, const char *iso)
{
    char ts[40];
    vtime(w, iso_text(iso, ts), ts);
}

void sb_pjw_vint_or_null(sb_jw *w, double v)
{
    if (v < 0)
        sb_jw_vnull(w);
    else
        sb_jw_vnum(w, v);
}

cJSON *sb_pjw_tree(sb_jw *w)
{
    cJSON *t = sb_jw_finish(w) == 0 && w->b->data ? sb_json_parse(w->b->data, w->b->len) : NULL;
    sb_buf_free(w->b);
    return t;
}

cJSON *sb_pjw_item_tree(sb_pjw_item_fn fn, const cJSON *item)
{
    sb_buf b;
    sb_buf_init(&b, SB_PJW_MAX);
    sb_jw w;
    sb_jw_init(&w, &b);
    if (fn(&w, item, NULL, NULL) != 0) {
        sb_buf_free(&b);
        return NULL;
    }
    return sb_pjw_tree(&w);
}

int sb_pjw_document(const sb_pctx *c, sb_pstep *step, sb_pjw_item_fn fn, const cJSON *item,
                    const char *missing, char *err, size_t errlen)
{
    sb_jw w;
    sb_jw_init(&w, &step->json);
    sb_jw_open(&w, '{');
    sb_jw_key_(&w, SB_JW_KEY("document"));
    if (fn(&w, item, NULL, NULL) != 0) {
        snprintf(err, errlen, "%s", missing);
        return -1;
    }
    sb_jw_str(&w, "provider", c->provider);
    sb_jw_str(&w, "region", c->region);
    sb_jw_close(&w, '}');
    if (sb_jw_finish(&w) != 0) {
        snprintf(err, errlen, "the document is too large");
        return -1;
    }
    return SB_PMAP_JSON;
}

void sb_join_field(const cJSON *arr, const char *field, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    const cJSON *s;
    cJSON_ArrayForEach(s, arr)
    {
        const char *e = sb_jstr(s, field);
        if (!e) continue;
        int w = snprintf(out + o, cap - o, "%s%s", o ? ", " : "", e);
        if (w < 0 || (size_t)w >= cap - o) break;
        o += (size_t)w;
    }
    if (!out[0]) sb_strlcpy(out, "none", cap);
}

int sb_status_wanted(const cJSON *a, const char *neutral)
{
    const cJSON *want = cJSON_GetObjectItemCaseSensitive(a, "status");
    if (!cJSON_IsArray(want) || cJSON_GetArraySize(want) == 0) return 1;
    const cJSON *w;
    cJSON_ArrayForEach(w, want)
    {
        if (cJSON_IsString(w) && strcmp(w->valuestring, neutral) == 0) return 1;
    }
    return 0;
}

cJSON *sb_list_result(const sb_pctx *c, const char *name, cJSON *items, long page, long page_size,
                      long long total, int has_next)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, name, items);
    sb_jput_num(o, "page", (double)page);
    sb_jput_num(o, "page_size", (double)page_size);
    sb_jadd_int_or_null(o, "total", total < 0 ? -1 : (double)total);
    sb_jadd_int_or_null(o, "next_page", has_next ? (double)(page + 1) : -1);
    sb_jput_str(o, "provider", c->provider);
    sb_jput_str(o, "region", c->region);
    return o;
}

void sb_pjw_list_end(sb_jw *w, const sb_pctx *c, long page, long page_size, long long total,
                     int has_next)
{
    sb_jw_close(w, ']');
    sb_jw_num(w, "page", (double)page);
    sb_jw_num(w, "page_size", (double)page_size);
    sb_pjw_int_or_null(w, "total", total < 0 ? -1 : (double)total);
    sb_pjw_int_or_null(w, "next_page", has_next ? (double)(page + 1) : -1);
    sb_jw_str(w, "provider", c->provider);
    sb_jw_str(w, "region", c->region);
}
