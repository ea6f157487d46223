/* Fuzz target: signbridge's OAuth 2.1 server request handling (issue 10; src/auth/sb_oauth.h):
 * one HTTP request per input, given to sb_oauth_handle against an in-memory SQLite store
 * (sqlite::memory:) with a fixed EC signing key, one provider app per provider and no upstream
 * (sb_up NULL, no key verifier: every network step fails closed). With each store, two clients
 * are registered (client_secret_basic and none, redirect https://client.example/cb); "$CID" /
 * "$SEC" / "$PUB" in the input are replaced by the confidential client's id and secret and the
 * public client's id, so the fuzzer reaches past the client lookup.
 * Input: "METHOD PATH[?QUERY]\n" (query percent-decoded like the transport), header lines
 * "Name: value\n" up to an empty line, then the body. A Bearer token in Authorization is also
 * checked by sb_oauth_authenticate (the resource server). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "auth/sb_oauth.h"
#include "core/sb_config.h"
#include "core/sb_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Test-only key (the same as fuzz_jwt's EC key): never used outside the fuzz targets. */
static const char k_ec_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                               "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQguYmtGmMLQWOQBzbN\n"
                               "FgeDpQMHaay+eAE3ltrGP74zrZyhRANCAARj0BrMqgaUYZNAjK8QuX+Clyn9skf7\n"
                               "T+rYGcJLmqMjG7aKhqmg/sdyWJEpJuQvprP8D2+CBkRrfjKu2d6c8gEI\n"
                               "-----END PRIVATE KEY-----\n";

#define MAX_KV 64

typedef struct kv {
    char *name[MAX_KV];
    char *value[MAX_KV];
    size_t n;
} kv;

typedef struct ctx {
    kv query, hdr;
} ctx;

static const char *get_query(void *c, const char *name)
{
    const kv *q = &((ctx *)c)->query;
    for (size_t i = 0; i < q->n; i++)
        if (!strcmp(q->name[i], name)) return q->value[i];
    return NULL;
}

static const char *get_hdr(void *c, const char *name)
{
    const kv *h = &((ctx *)c)->hdr;
    for (size_t i = 0; i < h->n; i++)
        if (!strcasecmp(h->name[i], name)) return h->value[i];
    return NULL;
}

static int hexv(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* In-place percent/plus decoding, as the transport (libmicrohttpd) does for the query. */
static void url_decode(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '+') *w++ = ' ';
        else if (*r == '%' && hexv(r[1]) >= 0 && hexv(r[2]) >= 0) {
            *w++ = (char)(hexv(r[1]) * 16 + hexv(r[2]));
            r += 2;
        } else *w++ = *r;
    }
    *w = 0;
}

static void parse_query(char *q, kv *out)
{
    while (q && *q && out->n < MAX_KV) {
        char *amp = strchr(q, '&');
        if (amp) *amp = 0;
        char *eq = strchr(q, '=');
        if (eq) *eq = 0;
        url_decode(q);
        out->name[out->n] = q;
        if (eq) url_decode(eq + 1);
        out->value[out->n] = eq ? eq + 1 : q + strlen(q); /* "name" alone: empty value */
        out->n++;
        q = amp ? amp + 1 : NULL;
    }
}

/* data with every placeholder from[k] replaced by to[k]; malloc'd, NUL-terminated, *len set. */
static char *substitute(const uint8_t *data, size_t size, const char *const *from,
                        const char *const *to, size_t n, size_t *len)
{
    size_t cap = size * 2 + 64, l = 0;
    char *o = malloc(cap + 1);
    if (!o) abort();
    for (size_t i = 0; i < size;) {
        size_t k = 0;
        for (; k < n; k++) {
            size_t fl = strlen(from[k]);
            if (size - i >= fl && !memcmp(data + i, from[k], fl)) break;
        }
        const char *piece = k < n ? to[k] : (const char *)data + i;
        size_t pl = k < n ? strlen(to[k]) : 1;
        if (l + pl > cap) {
            cap = (l + pl) * 2;
            o = realloc(o, cap + 1);
            if (!o) abort();
        }
        memcpy(o + l, piece, pl);
        l += pl;
        i += k < n ? strlen(from[k]) : 1;
    }
    o[l] = 0;
    *len = l;
    return o;
}

static const char *register_hdr(void *c, const char *name)
{
    (void)c;
    return !strcasecmp(name, "Content-Type") ? "application/json" : NULL;
}

static const char *no_query(void *c, const char *name)
{
    (void)c, (void)name;
    return NULL;
}

/* POST /register; the id (and secret) into id/sec. */
static void register_client(sb_oauth *o, const char *method, char *id, char *sec, size_t cap)
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"redirect_uris\":[\"https://client.example/cb\"],\"client_name\":\"fuzz\","
             "\"token_endpoint_auth_method\":\"%s\"}",
             method);
    sb_oauth_req rq = {.method = "POST", .path = "/register", .query = no_query,
                       .header = register_hdr, .body = body, .body_len = strlen(body),
                       .request_id = "fuzz-init"};
    sb_oauth_resp out;
    sb_oauth_pending *p = NULL;
    if (sb_oauth_handle(o, &rq, &out, &p) != 0 || out.status != 201) abort();
    cJSON *j = cJSON_ParseWithLength(out.body, out.len);
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "client_id"));
    if (!v) abort();
    snprintf(id, cap, "%s", v);
    v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "client_secret"));
    snprintf(sec, cap, "%s", v ? v : "");
    cJSON_Delete(j);
    sb_oauth_resp_free(&out);
}

static sb_config g_cfg;
static sb_regions g_regions;

static void init_once(void)
{
    static int done;
    if (done) return;
    done = 1;
    sb_log_set_level(SB_LOG_OFF); /* quiet: every refusal is logged */
    char err[256];
    if (sb_config_load(&g_cfg, NULL, NULL, NULL, err, sizeof err) != 0) abort();
    if (sb_regions_init(&g_regions, &g_cfg, err, sizeof err) != 0) abort();
}

/* The store and the server are recycled every RECYCLE inputs (opening a store and running its
 * migrations costs far more than a request): bounded growth, and a single input replayed alone (a
 * libFuzzer reproducer) always meets a fresh store. The live ones stay reachable at exit. */
#define RECYCLE 256
static sb_store *g_st;
static sb_oauth *g_o;
static char g_cid[96], g_sec[96], g_pub[96];
static unsigned g_uses;

static void server_start(void)
{
    char err[256];
    if (sb_store_open(&g_st, "sqlite::memory:", NULL, err, sizeof err) != 0) abort();
    static const unsigned char secret[32] = {7, 7, 7};
    sb_oauth_options oo = {.issuer = "https://sb.example", .store = g_st, .secret = secret,
                           .regions = &g_regions, .default_provider = "boldsign",
                           .sandbox_url = "", .signing_pems = {k_ec_pem}, .n_signing = 1};
    static const char *const provs[] = {"boldsign", "dropboxsign", "iinkedsign"};
    for (size_t i = 0; i < 3; i++) {
        sb_oauth_app *a = &oo.apps[oo.n_apps++];
        snprintf(a->provider, sizeof a->provider, "%s", provs[i]);
        snprintf(a->client_id, sizeof a->client_id, "app-%s", provs[i]);
        snprintf(a->client_secret, sizeof a->client_secret, "app-secret");
    }
    g_o = sb_oauth_new(&oo, err, sizeof err);
    if (!g_o) abort();
    char unused[96];
    register_client(g_o, "client_secret_basic", g_cid, g_sec, sizeof g_cid);
    register_client(g_o, "none", g_pub, unused, sizeof g_pub);
    g_uses = 0;
}

static void server_stop(void)
{
    sb_oauth_free(g_o);
    sb_store_close(g_st);
    g_o = NULL;
    g_st = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > SB_OAUTH_MAX_BODY + 4096) return 0;
    init_once();
    if (g_o && g_uses >= RECYCLE) server_stop();
    if (!g_o) server_start();
    g_uses++;
    sb_oauth *o = g_o;

    const char *from[] = {"$CID", "$SEC", "$PUB"}, *to[] = {g_cid, g_sec, g_pub};
    size_t len;
    char *in = substitute(data, size, from, to, 3, &len);

    /* request line */
    ctx c = {0};
    char *nl = memchr(in, '\n', len);
    if (nl) *nl = 0;
    char *sp = strchr(in, ' ');
    const char *method = "GET";
    char *path = in;
    if (sp) {
        *sp = 0;
        method = in;
        path = sp + 1;
    }
    char *q = strchr(path, '?');
    if (q) {
        *q = 0;
        parse_query(q + 1, &c.query);
    }
    /* headers up to an empty line, then the body */
    const char *body = NULL;
    size_t body_len = 0;
    char *cur = nl ? nl + 1 : NULL;
    while (cur && cur < in + len) {
        char *e = memchr(cur, '\n', (size_t)(in + len - cur));
        char *next = e ? e + 1 : in + len;
        if (e) {
            if (e > cur && e[-1] == '\r') e--;
            *e = 0;
        }
        if (!*cur) {
            body = next;
            body_len = (size_t)(in + len - next);
            break;
        }
        char *colon = strchr(cur, ':');
        if (colon && c.hdr.n < MAX_KV) {
            *colon = 0;
            char *v = colon + 1;
            while (*v == ' ' || *v == '\t') v++;
            c.hdr.name[c.hdr.n] = cur;
            c.hdr.value[c.hdr.n] = v;
            c.hdr.n++;
        }
        cur = next;
    }

    int needs_body = 0;
    (void)sb_oauth_is_endpoint(path, &needs_body);
    sb_oauth_req rq = {.method = method, .path = path, .query = get_query, .header = get_hdr,
                       .ctx = &c, .body = body, .body_len = body_len, .request_id = "fuzz"};
    sb_oauth_resp out;
    sb_oauth_pending *pend = NULL;
    int rc = sb_oauth_handle(o, &rq, &out, &pend);
    if (rc == 0) {
        if (pend) abort();
        if (out.status < 100 || out.status > 599) abort();
        if (out.len && !out.body) abort();
        if (out.nh > SB_OAUTH_MAX_HDRS) abort();
        sb_oauth_resp_free(&out);
    } else if (rc == 1) {
        if (!pend) abort();
        sb_oauth_pending_drop(pend); /* the client went away */
    } else {
        abort();
    }

    const char *az = get_hdr(&c, "Authorization");
    if (az && !strncasecmp(az, "Bearer ", 7)) {
        sb_principal *pr = calloc(1, sizeof *pr);
        if (!pr) abort();
        snprintf(pr->route, sizeof pr->route, "%s", "/mcp");
        snprintf(pr->provider, sizeof pr->provider, "%s", "boldsign");
        char e2[160];
        int ar = sb_oauth_authenticate(o, az + 7, strlen(az + 7), pr, e2, sizeof e2);
        if (ar != 0 && ar != -1 && ar != -2) abort();
        sb_cred_wipe(&pr->cred);
        free(pr);
    }
    free(in);
    return 0;
}
