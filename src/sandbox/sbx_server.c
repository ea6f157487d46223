/* sbx_server: the sandbox's HTTP server: routing to provider emulators, /_sandbox/ control
 * endpoints, injected faults and latency, rate-limit counters, the request log and statistics. */
#include "sandbox/sbx_server.h"

#include "core/sb_log.h"
#include "core/sb_loop.h"
#include "core/sb_util.h"
#include "sandbox/sbx_providers.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#if MHD_VERSION < 0x00097002
typedef int MHD_RESULT_T;
#else
typedef enum MHD_Result MHD_RESULT_T;
#endif

#define MAX_BODY ((size_t)64 << 20)
#define LOG_CAP 4096
#define LOG_BODY_MAX 65536
#define MAX_FAULTS 64
#define RATE_BUCKETS 4096
#define HANG_DEFAULT_MS 600000

enum fault_mode {
    F_NONE = 0,
    F_LATENCY,
    F_ERROR,
    F_RATE_LIMIT,
    F_RESET,
    F_TRUNCATE,
    F_MALFORMED,
    F_DRIP,
    F_OVERSIZE,
    F_HANG
};

static const char *const fault_names[] = {"none",      "latency",   "error", "rate_limit",
                                          "reset",     "truncate",  "malformed", "drip",
                                          "oversize",  "hang"};

typedef struct fault {
    unsigned id;
    char provider[32], region[32], method[12], path[256];
    enum fault_mode mode;
    int status;
    char message[256];
    unsigned latency_ms, jitter_ms, retry_after, drip_ms, drip_bytes, hang_ms;
    size_t size;
    unsigned count;     /* remaining applications; 0 = unlimited */
    unsigned applied;
    double probability; /* 0..1; 1 = always */
} fault;

typedef struct log_entry {
    uint64_t seq, time_ms;
    char provider[16], region[16], instance[64], method[12], path[512], query[1024];
    char auth_scheme[24], account_id[64], request_id[72], content_type[128], route[96];
    int status;
    char *body; /* malloc'd, up to LOG_BODY_MAX */
    size_t body_len;
    int body_truncated;
    char fault[16];
} log_entry;

typedef struct stat_entry {
    char key[200]; /* provider \t region \t method \t route */
    uint64_t count;
} stat_entry;

typedef struct rate_entry {
    struct rate_entry *next;
    char key[160];
    uint64_t window_start;
    unsigned count;
} rate_entry;

struct sbx {
    struct MHD_Daemon *d;
    sb_loop *loop;
    unsigned port;
    char origin[96];
    uint64_t seed;
    sbx_provider *providers[3];
    size_t nprov;
    pthread_rwlock_t state_lock;
    atomic_int rate_limits_on, auto_approve;
    atomic_uint auto_progress_ms, latency_ms;
    atomic_uint oauth_access_ttl_s; /* 0 = each provider's default */
    pthread_mutex_t cfg_mu;
    cJSON *rate_overrides; /* {"boldsign":N, "dropboxsign:high":N} */
    pthread_mutex_t fault_mu;
    fault faults[MAX_FAULTS];
    size_t nfaults;
    unsigned next_fault_id;
    pthread_mutex_t rate_mu;
    rate_entry *rate[RATE_BUCKETS];
    size_t nrate;
    pthread_mutex_t log_mu;
    log_entry *log; /* ring of LOG_CAP */
    uint64_t log_seq;
    pthread_mutex_t stats_mu;
    stat_entry *stats;
    size_t nstats, capstats;
    uint64_t total;
    atomic_int stopping;
};

typedef struct req_ctx {
    sbx *s;
    struct MHD_Connection *conn;
    char *url;
    const char *method;
    sb_buf body;
    int too_big;
    int phase; /* 0 collecting, 1 waiting (latency/hang), 2 ready to answer */
    sbx_resp resp;
    fault f;   /* the fault applied (mode F_NONE if none) */
    int close_now;
    /* streaming state (truncate, drip, oversize) */
    size_t sent;
    uint64_t drip_next_ms;
    int drip_suspended;
    void **slot; /* the connection's socket context while this request is pending */
} req_ctx;

/* ---- small helpers ------------------------------------------------------------------------- */

static const char *find_header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

const char *sbx_header(const sbx_req *r, const char *name)
{
    return find_header(r->conn_, name);
}

static int keyeq(const char *a, const char *b, int ci)
{
    return ci ? strcasecmp(a, b) == 0 : strcmp(a, b) == 0;
}

const char *sbx_query(const sbx_req *r, const char *key, int ci)
{
    for (size_t i = 0; i < r->nquery; i++)
        if (keyeq(r->query[i].key, key, ci)) return r->query[i].val;
    return NULL;
}

size_t sbx_query_all(const sbx_req *r, const char *key, int ci, const char **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < r->nquery && n < max; i++)
        if (keyeq(r->query[i].key, key, ci)) out[n++] = r->query[i].val;
    return n;
}

static void resp_init(sbx_resp *r)
{
    r->status = 0;
    r->nheaders = 0;
    r->content_type[0] = '\0';
    r->location = NULL;
    sb_buf_init(&r->body, MAX_BODY);
    sb_buf_init(&r->headers, SBX_MAX_HEADERS * (SBX_HEADER_NAME_MAX + SBX_HEADER_VALUE_MAX));
}

/* The length of the packed "name\0value\0" pair at p. */
static size_t header_pair_len(const char *p)
{
    size_t n = strlen(p) + 1;
    return n + strlen(p + n) + 1;
}

void sbx_resp_header(sbx_resp *r, const char *name, const char *value)
{
    size_t nl = strnlen(name, SBX_HEADER_NAME_MAX - 1);
    size_t vl = strnlen(value, SBX_HEADER_VALUE_MAX - 1);
    sb_buf *h = &r->headers;
    for (size_t off = 0; off < h->len;) { /* a header set again replaces its earlier value */
        char *p = h->data + off;
        size_t pl = header_pair_len(p);
        if (strncasecmp(p, name, nl) == 0 && p[nl] == '\0') {
            memmove(p, p + pl, h->len - off - pl + 1);
            h->len -= pl;
            r->nheaders--;
            break;
        }
        off += pl;
    }
    if (r->nheaders >= SBX_MAX_HEADERS) return;
    size_t at = h->len;
    if (sb_buf_append(h, name, nl) < 0 || sb_buf_append(h, "", 1) < 0 ||
        sb_buf_append(h, value, vl) < 0 || sb_buf_append(h, "", 1) < 0) {
        h->len = at; /* out of memory: the header is dropped whole */
        if (h->data) h->data[at] = '\0';
        return;
    }
    r->nheaders++;
}

void sbx_resp_bytes(sbx_resp *r, int status, const char *ctype, const void *data, size_t len)
{
    r->status = status;
    sb_buf_reset(&r->body);
    if (len) sb_buf_append(&r->body, data, len);
    sb_strlcpy(r->content_type, ctype ? ctype : "", sizeof r->content_type);
}

void sbx_resp_text(sbx_resp *r, int status, const char *ctype, const char *text)
{
    sbx_resp_bytes(r, status, ctype, text, strlen(text));
}

void sbx_resp_json(sbx_resp *r, int status, cJSON *body)
{
    if (!body) {
        sbx_resp_bytes(r, status, NULL, NULL, 0);
        return;
    }
    /* printed straight into the body (what cJSON_PrintUnformatted gives, without its copy) */
    r->status = status;
    sb_buf_reset(&r->body);
    if (sb_buf_json_value(&r->body, body) != 0) sb_buf_reset(&r->body); /* as cJSON: no body */
    cJSON_Delete(body);
    sb_strlcpy(r->content_type, "application/json; charset=utf-8", sizeof r->content_type);
}

void sbx_resp_redirect(sbx_resp *r, const char *location)
{
    sbx_resp_bytes(r, 302, NULL, NULL, 0);
    free(r->location);
    r->location = strdup(location);
}

void sbx_base_url(const sbx *s, const char *provider, const char *region, const char *instance,
                  char *out, size_t cap)
{
    if (instance && *instance)
        snprintf(out, cap, "%s/%s/%s/%s", s->origin, provider, region, instance);
    else
        snprintf(out, cap, "%s/%s/%s", s->origin, provider, region);
}

const char *sbx_origin(const sbx *s)
{
    return s->origin;
}

sbx_provider *sbx_find_provider(sbx *s, const char *name)
{
    for (size_t i = 0; i < s->nprov; i++)
        if (strcmp(s->providers[i]->name, name) == 0) return s->providers[i];
    return NULL;
}

unsigned sbx_oauth_access_ttl(const sbx *s, unsigned dflt)
{
    unsigned v = atomic_load(&((sbx *)s)->oauth_access_ttl_s);
    return v ? v : dflt;
}

int sbx_auto_approve(const sbx *s)
{
    return atomic_load(&((sbx *)s)->auto_approve);
}

unsigned sbx_auto_progress_ms(const sbx *s)
{
    return atomic_load(&((sbx *)s)->auto_progress_ms);
}

uint64_t sbx_seed(const sbx *s)
{
    return s->seed;
}

/* ---- rate limits --------------------------------------------------------------------------- */

int sbx_rate_take(sbx *s, const char *provider, const char *tier, const char *key,
                  unsigned limit, unsigned window_s, unsigned *out_limit, unsigned *remaining,
                  uint64_t *reset_unix)
{
    if (window_s == 0) window_s = 60;
    uint64_t now = sbx_now();
    uint64_t wstart = now - now % window_s;
    /* overrides */
    pthread_mutex_lock(&s->cfg_mu);
    if (s->rate_overrides) {
        char ok[80];
        snprintf(ok, sizeof ok, "%s%s%s", provider, tier && *tier ? ":" : "", tier ? tier : "");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(s->rate_overrides, ok);
        if (!cJSON_IsNumber(v)) v = cJSON_GetObjectItemCaseSensitive(s->rate_overrides, provider);
        if (cJSON_IsNumber(v) && v->valuedouble >= 0) limit = (unsigned)v->valuedouble;
    }
    pthread_mutex_unlock(&s->cfg_mu);
    if (out_limit) *out_limit = limit;
    if (reset_unix) *reset_unix = wstart + window_s;
    if (!atomic_load(&s->rate_limits_on)) {
        if (remaining) *remaining = limit;
        return 1;
    }
    char full[160];
    snprintf(full, sizeof full, "%s|%s|%s", provider, tier ? tier : "", key);
    unsigned h = 2166136261u;
    for (const char *c = full; *c; c++) h = (h ^ (unsigned char)*c) * 16777619u;
    h %= RATE_BUCKETS;
    pthread_mutex_lock(&s->rate_mu);
    rate_entry *e = s->rate[h];
    while (e && strcmp(e->key, full) != 0) e = e->next;
    if (!e) {
        if (s->nrate < 100000) e = calloc(1, sizeof *e);
        if (e) {
            sb_strlcpy(e->key, full, sizeof e->key);
            e->next = s->rate[h];
            s->rate[h] = e;
            s->nrate++;
        }
    }
    int allowed = 1;
    unsigned used = 0;
    if (e) {
        if (e->window_start != wstart) {
            e->window_start = wstart;
            e->count = 0;
        }
        if (e->count >= limit)
            allowed = 0;
        else
            e->count++;
        used = e->count;
    }
    pthread_mutex_unlock(&s->rate_mu);
    if (remaining) *remaining = used >= limit ? 0 : limit - used;
    return allowed;
}

static void rate_clear(sbx *s)
{
    pthread_mutex_lock(&s->rate_mu);
    for (size_t i = 0; i < RATE_BUCKETS; i++) {
        rate_entry *e = s->rate[i];
        while (e) {
            rate_entry *n = e->next;
            free(e);
            e = n;
        }
        s->rate[i] = NULL;
    }
    s->nrate = 0;
    pthread_mutex_unlock(&s->rate_mu);
}

/* ---- faults -------------------------------------------------------------------------------- */

static void copy_str(const cJSON *o, const char *k, char *out, size_t cap, const char *def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    sb_strlcpy(out, cJSON_IsString(v) ? v->valuestring : def, cap);
}

static unsigned get_uint(const cJSON *o, const char *k, unsigned def, unsigned max)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0) return def;
    return v->valuedouble > max ? max : (unsigned)v->valuedouble;
}

/* Parse a fault rule. 0 or -1 with err. */
static int fault_parse(const cJSON *o, fault *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    if (!cJSON_IsObject(o)) {
        snprintf(err, errlen, "a fault must be a JSON object");
        return -1;
    }
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(o, "mode");
    if (!cJSON_IsString(mode)) {
        snprintf(err, errlen, "mode is required: one of latency, error, rate_limit, reset, "
                              "truncate, malformed, drip, oversize, hang");
        return -1;
    }
    for (int i = 1; i <= F_HANG; i++)
        if (strcmp(mode->valuestring, fault_names[i]) == 0) f->mode = (enum fault_mode)i;
    if (f->mode == F_NONE) {
        snprintf(err, errlen, "unknown mode \"%.32s\"", mode->valuestring);
        return -1;
    }
    copy_str(o, "provider", f->provider, sizeof f->provider, "*");
    copy_str(o, "region", f->region, sizeof f->region, "*");
    copy_str(o, "method", f->method, sizeof f->method, "*");
    copy_str(o, "route", f->path, sizeof f->path, "*");
    copy_str(o, "message", f->message, sizeof f->message,
             f->mode == F_RATE_LIMIT ? "Too many requests" : "Injected fault");
    f->status = (int)get_uint(o, "status", f->mode == F_RATE_LIMIT ? 429 : 503, 599);
    if (f->status < 400) f->status = 503;
    f->latency_ms = get_uint(o, "latency_ms", f->mode == F_LATENCY ? 1000 : 0, 3600000);
    f->jitter_ms = get_uint(o, "jitter_ms", 0, 3600000);
    f->retry_after = get_uint(o, "retry_after", 1, 86400);
    f->drip_ms = get_uint(o, "drip_ms", 100, 60000);
    f->drip_bytes = get_uint(o, "drip_bytes", 16, 1 << 20);
    if (f->drip_bytes == 0) f->drip_bytes = 1;
    f->hang_ms = get_uint(o, "hang_ms", HANG_DEFAULT_MS, 3600000);
    f->size = get_uint(o, "size", 64u << 20, 1u << 30);
    f->count = get_uint(o, "count", 0, 1u << 30);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "probability");
    f->probability = cJSON_IsNumber(p) ? p->valuedouble : 1.0;
    if (f->probability < 0 || f->probability > 1) {
        snprintf(err, errlen, "probability must be between 0 and 1");
        return -1;
    }
    return 0;
}

static cJSON *fault_json(const fault *f)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", f->id);
    cJSON_AddStringToObject(o, "mode", fault_names[f->mode]);
    cJSON_AddStringToObject(o, "provider", f->provider);
    cJSON_AddStringToObject(o, "region", f->region);
    cJSON_AddStringToObject(o, "method", f->method);
    cJSON_AddStringToObject(o, "route", f->path);
    cJSON_AddNumberToObject(o, "status", f->status);
    cJSON_AddStringToObject(o, "message", f->message);
    cJSON_AddNumberToObject(o, "latency_ms", f->latency_ms);
    cJSON_AddNumberToObject(o, "jitter_ms", f->jitter_ms);
    cJSON_AddNumberToObject(o, "retry_after", f->retry_after);
    cJSON_AddNumberToObject(o, "drip_ms", f->drip_ms);
    cJSON_AddNumberToObject(o, "drip_bytes", f->drip_bytes);
    cJSON_AddNumberToObject(o, "hang_ms", f->hang_ms);
    cJSON_AddNumberToObject(o, "size", (double)f->size);
    cJSON_AddNumberToObject(o, "count", f->count);
    cJSON_AddNumberToObject(o, "applied", f->applied);
    cJSON_AddNumberToObject(o, "probability", f->probability);
    return o;
}

static int fault_add(sbx *s, const cJSON *o, char *err, size_t errlen, unsigned *id)
{
    fault f;
    if (fault_parse(o, &f, err, errlen) < 0) return -1;
    pthread_mutex_lock(&s->fault_mu);
    if (s->nfaults >= MAX_FAULTS) {
        pthread_mutex_unlock(&s->fault_mu);
        snprintf(err, errlen, "at most %d fault rules", MAX_FAULTS);
        return -1;
    }
    f.id = ++s->next_fault_id;
    s->faults[s->nfaults++] = f;
    pthread_mutex_unlock(&s->fault_mu);
    *id = f.id;
    return 0;
}

static int glob_match(const char *pat, const char *s)
{
    if (strcmp(pat, "*") == 0) return 1;
    size_t n = strlen(pat);
    if (n && pat[n - 1] == '*') return strncmp(pat, s, n - 1) == 0;
    return strcmp(pat, s) == 0;
}

/* The first matching rule (consumed once); out->mode F_NONE if none. */
static void fault_match(sbx *s, const char *provider, const char *region, const char *method,
                        const char *path, fault *out)
{
    out->mode = F_NONE;
    pthread_mutex_lock(&s->fault_mu);
    for (size_t i = 0; i < s->nfaults; i++) {
        fault *f = &s->faults[i];
        if (!glob_match(f->provider, provider) || !glob_match(f->region, region) ||
            !(strcmp(f->method, "*") == 0 || strcasecmp(f->method, method) == 0) ||
            !glob_match(f->path, path))
            continue;
        if (f->probability < 1.0) {
            uint64_t r;
            sb_random_bytes(&r, sizeof r);
            if ((double)(r >> 11) / 9007199254740992.0 >= f->probability) continue;
        }
        f->applied++;
        *out = *f;
        if (f->count && --f->count == 0) {
            memmove(f, f + 1, (s->nfaults - i - 1) * sizeof *f);
            s->nfaults--;
        }
        break;
    }
    pthread_mutex_unlock(&s->fault_mu);
}

/* ---- request log and stats ----------------------------------------------------------------- */

static void record(sbx *s, const sbx_req *rq, const req_ctx *c)
{
    char key[200];
    snprintf(key, sizeof key, "%s\t%s\t%s\t%s", rq->provider, rq->region, rq->method, rq->route);
    pthread_mutex_lock(&s->stats_mu);
    s->total++;
    size_t i = 0;
    for (; i < s->nstats; i++)
        if (strcmp(s->stats[i].key, key) == 0) break;
    if (i == s->nstats && s->nstats < 10000) {
        if (s->nstats == s->capstats) {
            size_t nc = s->capstats ? s->capstats * 2 : 64;
            stat_entry *ns = realloc(s->stats, nc * sizeof *ns);
            if (ns) {
                s->stats = ns;
                s->capstats = nc;
            }
        }
        if (s->nstats < s->capstats) {
            sb_strlcpy(s->stats[i].key, key, sizeof s->stats[i].key);
            s->stats[i].count = 0;
            s->nstats++;
        }
    }
    if (i < s->nstats) s->stats[i].count++;
    pthread_mutex_unlock(&s->stats_mu);

    size_t bl = rq->body_len > LOG_BODY_MAX ? LOG_BODY_MAX : rq->body_len;
    char *body = NULL;
    if (bl) {
        body = malloc(bl);
        if (body) memcpy(body, rq->body, bl);
    }
    pthread_mutex_lock(&s->log_mu);
    log_entry *e = &s->log[s->log_seq % LOG_CAP];
    free(e->body);
    memset(e, 0, sizeof *e);
    e->seq = ++s->log_seq;
    e->time_ms = rq->now_ms;
    sb_strlcpy(e->provider, rq->provider, sizeof e->provider);
    sb_strlcpy(e->region, rq->region, sizeof e->region);
    sb_strlcpy(e->instance, rq->instance ? rq->instance : "", sizeof e->instance);
    sb_strlcpy(e->method, rq->method, sizeof e->method);
    sb_strlcpy(e->path, rq->path, sizeof e->path);
    sb_strlcpy(e->query, rq->raw_query, sizeof e->query);
    sb_strlcpy(e->auth_scheme, rq->auth_scheme, sizeof e->auth_scheme);
    sb_strlcpy(e->account_id, rq->account_id, sizeof e->account_id);
    const char *rid = sbx_header(rq, "X-Request-Id");
    sb_strlcpy(e->request_id, rid ? rid : "", sizeof e->request_id);
    sb_strlcpy(e->content_type, rq->content_type, sizeof e->content_type);
    sb_strlcpy(e->route, rq->route, sizeof e->route);
    sb_strlcpy(e->fault, c->f.mode ? fault_names[c->f.mode] : "", sizeof e->fault);
    e->status = c->resp.status;
    e->body = body;
    e->body_len = body ? bl : 0;
    e->body_truncated = rq->body_len > bl;
    pthread_mutex_unlock(&s->log_mu);
}

static cJSON *log_json(const log_entry *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "seq", (double)e->seq);
    char ts[40];
    sb_rfc3339(e->time_ms, ts, sizeof ts);
    cJSON_AddStringToObject(o, "time", ts);
    cJSON_AddStringToObject(o, "provider", e->provider);
    cJSON_AddStringToObject(o, "region", e->region);
    if (e->instance[0]) cJSON_AddStringToObject(o, "instance", e->instance);
    cJSON_AddStringToObject(o, "method", e->method);
    cJSON_AddStringToObject(o, "path", e->path);
    cJSON_AddStringToObject(o, "query", e->query);
    cJSON_AddStringToObject(o, "route", e->route);
    cJSON_AddStringToObject(o, "auth_scheme", e->auth_scheme);
    cJSON_AddStringToObject(o, "account_id", e->account_id);
    cJSON_AddStringToObject(o, "request_id", e->request_id);
    cJSON_AddStringToObject(o, "content_type", e->content_type);
    cJSON_AddNumberToObject(o, "status", e->status);
    if (e->fault[0]) cJSON_AddStringToObject(o, "fault", e->fault);
    if (e->body && sb_utf8_valid(e->body, e->body_len) && !memchr(e->body, 0, e->body_len)) {
        char *t = strndup(e->body, e->body_len);
        cJSON_AddStringToObject(o, "body", t ? t : "");
        free(t);
    } else if (e->body) {
        char *b64 = malloc(sb_base64_len(e->body_len) + 1);
        if (b64) {
            sb_base64_encode((const unsigned char *)e->body, e->body_len, b64);
            cJSON_AddStringToObject(o, "body_base64", b64);
            free(b64);
        }
    } else {
        cJSON_AddStringToObject(o, "body", "");
    }
    if (e->body_truncated) cJSON_AddBoolToObject(o, "body_truncated", 1);
    return o;
}

static void log_clear(sbx *s)
{
    pthread_mutex_lock(&s->log_mu);
    for (size_t i = 0; i < LOG_CAP; i++) {
        free(s->log[i].body);
        memset(&s->log[i], 0, sizeof s->log[i]);
    }
    s->log_seq = 0;
    pthread_mutex_unlock(&s->log_mu);
    pthread_mutex_lock(&s->stats_mu);
    s->nstats = 0;
    s->total = 0;
    pthread_mutex_unlock(&s->stats_mu);
}

/* ---- control endpoints ------------------------------------------------------------------- */

static void ctl_json(sbx_resp *r, int status, cJSON *o)
{
    sbx_resp_json(r, status, o);
}

static void ctl_error(sbx_resp *r, int status, const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    ctl_json(r, status, o);
}

static cJSON *stats_json(sbx *s, const char *only_provider)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *providers = cJSON_CreateObject();
    cJSON *routes = cJSON_CreateArray();
    uint64_t total = 0;
    pthread_mutex_lock(&s->stats_mu);
    for (size_t i = 0; i < s->nstats; i++) {
        char k[200];
        sb_strlcpy(k, s->stats[i].key, sizeof k);
        char *f[4] = {k, NULL, NULL, NULL};
        for (int j = 1; j < 4; j++) {
            char *t = strchr(f[j - 1], '\t');
            if (!t) break;
            *t = '\0';
            f[j] = t + 1;
        }
        if (!f[3]) continue;
        if (only_provider && strcmp(only_provider, f[0]) != 0) continue;
        double n = (double)s->stats[i].count;
        total += s->stats[i].count;
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "provider", f[0]);
        cJSON_AddStringToObject(r, "region", f[1]);
        cJSON_AddStringToObject(r, "method", f[2]);
        cJSON_AddStringToObject(r, "route", f[3]);
        cJSON_AddNumberToObject(r, "count", n);
        cJSON_AddItemToArray(routes, r);
        /* nested: providers.P.total, .regions.R.total, .regions.R.routes["route"] */
        cJSON *p = cJSON_GetObjectItemCaseSensitive(providers, f[0]);
        if (!p) {
            p = cJSON_AddObjectToObject(providers, f[0]);
            cJSON_AddNumberToObject(p, "total", 0);
            cJSON_AddObjectToObject(p, "regions");
            cJSON_AddObjectToObject(p, "methods");
        }
        cJSON *pt = cJSON_GetObjectItemCaseSensitive(p, "total");
        cJSON_SetNumberValue(pt, pt->valuedouble + n);
        cJSON *methods = cJSON_GetObjectItemCaseSensitive(p, "methods");
        cJSON *m = cJSON_GetObjectItemCaseSensitive(methods, f[2]);
        if (!m) m = cJSON_AddNumberToObject(methods, f[2], 0);
        cJSON_SetNumberValue(m, m->valuedouble + n);
        cJSON *regions = cJSON_GetObjectItemCaseSensitive(p, "regions");
        cJSON *rg = cJSON_GetObjectItemCaseSensitive(regions, f[1]);
        if (!rg) {
            rg = cJSON_AddObjectToObject(regions, f[1]);
            cJSON_AddNumberToObject(rg, "total", 0);
            cJSON_AddObjectToObject(rg, "routes");
        }
        cJSON *rt = cJSON_GetObjectItemCaseSensitive(rg, "total");
        cJSON_SetNumberValue(rt, rt->valuedouble + n);
        cJSON_AddNumberToObject(cJSON_GetObjectItemCaseSensitive(rg, "routes"), f[3], n);
    }
    pthread_mutex_unlock(&s->stats_mu);
    cJSON_AddNumberToObject(o, "total", (double)total);
    cJSON_AddItemToObject(o, "providers", providers);
    cJSON_AddItemToObject(o, "routes", routes);
    return o;
}

static void providers_init(sbx *s)
{
    for (size_t i = 0; i < s->nprov; i++) {
        if (s->providers[i]->init(s, s->seed) < 0)
            sb_log_msg(SB_LOG_ERROR, "sandbox_init", "provider %s failed to initialise",
                       s->providers[i]->name);
    }
}

static void providers_fini(sbx *s)
{
    for (size_t i = 0; i < s->nprov; i++)
        if (s->providers[i]->fini) s->providers[i]->fini(s);
}

static void faults_clear(sbx *s)
{
    pthread_mutex_lock(&s->fault_mu);
    s->nfaults = 0;
    pthread_mutex_unlock(&s->fault_mu);
}

static cJSON *config_json(sbx *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "rate_limits", atomic_load(&s->rate_limits_on));
    cJSON_AddBoolToObject(o, "oauth_auto_approve", atomic_load(&s->auto_approve));
    cJSON_AddNumberToObject(o, "auto_progress_ms", atomic_load(&s->auto_progress_ms));
    cJSON_AddNumberToObject(o, "latency_ms", atomic_load(&s->latency_ms));
    cJSON_AddNumberToObject(o, "oauth_access_ttl_s", atomic_load(&s->oauth_access_ttl_s));
    cJSON_AddNumberToObject(o, "seed", (double)s->seed);
    pthread_mutex_lock(&s->cfg_mu);
    cJSON_AddItemToObject(o, "rate_limit_overrides",
                          s->rate_overrides ? cJSON_Duplicate(s->rate_overrides, 1)
                                            : cJSON_CreateObject());
    pthread_mutex_unlock(&s->cfg_mu);
    return o;
}

static int apply_config(sbx *s, const cJSON *o, char *err, size_t errlen)
{
    if (!cJSON_IsObject(o)) {
        snprintf(err, errlen, "body must be a JSON object");
        return -1;
    }
    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "rate_limits")))
        atomic_store(&s->rate_limits_on, cJSON_IsTrue(v));
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "oauth_auto_approve")))
        atomic_store(&s->auto_approve, cJSON_IsTrue(v));
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "auto_progress_ms")) && cJSON_IsNumber(v))
        atomic_store(&s->auto_progress_ms, v->valuedouble < 0 ? 0u : (unsigned)v->valuedouble);
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "latency_ms")) && cJSON_IsNumber(v))
        atomic_store(&s->latency_ms, v->valuedouble < 0 ? 0u : (unsigned)v->valuedouble);
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "oauth_access_ttl_s")) && cJSON_IsNumber(v))
        atomic_store(&s->oauth_access_ttl_s,
                     v->valuedouble < 0 ? 0u : v->valuedouble > 86400 ? 86400u : (unsigned)v->valuedouble);
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "rate_limit_overrides"))) {
        if (!cJSON_IsObject(v)) {
            snprintf(err, errlen, "rate_limit_overrides must be an object of numbers");
            return -1;
        }
        pthread_mutex_lock(&s->cfg_mu);
        cJSON_Delete(s->rate_overrides);
        s->rate_overrides = cJSON_Duplicate(v, 1);
        pthread_mutex_unlock(&s->cfg_mu);
    }
    return 0;
}

static void control(sbx *s, req_ctx *c, const char *path, sbx_resp *r)
{
    const char *m = c->method;
    const char *body = c->body.data ? c->body.data : "";
    if (strcmp(path, "/_sandbox/health") == 0) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "status", "ok");
        ctl_json(r, 200, o);
    } else if (strcmp(path, "/_sandbox/accounts") == 0 && strcmp(m, "GET") == 0) {
        cJSON *o = cJSON_CreateObject();
        cJSON *arr = cJSON_AddArrayToObject(o, "accounts");
        pthread_rwlock_rdlock(&s->state_lock);
        for (size_t i = 0; i < s->nprov; i++) s->providers[i]->accounts(s, arr);
        pthread_rwlock_unlock(&s->state_lock);
        ctl_json(r, 200, o);
    } else if (strcmp(path, "/_sandbox/stats") == 0 && strcmp(m, "GET") == 0) {
        const char *p = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "provider");
        ctl_json(r, 200, stats_json(s, p));
    } else if (strcmp(path, "/_sandbox/requests") == 0 && strcmp(m, "GET") == 0) {
        const char *since_s = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "since");
        const char *limit_s = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "limit");
        const char *prov = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "provider");
        int64_t since = 0, limit = 1000;
        if (since_s && sb_parse_i64(since_s, 0, INT64_MAX, &since) < 0) since = 0;
        if (limit_s && sb_parse_i64(limit_s, 1, LOG_CAP, &limit) < 0) limit = 1000;
        cJSON *o = cJSON_CreateObject();
        cJSON *arr = cJSON_AddArrayToObject(o, "requests");
        pthread_mutex_lock(&s->log_mu);
        uint64_t first = s->log_seq > LOG_CAP ? s->log_seq - LOG_CAP + 1 : 1;
        if ((uint64_t)since + 1 > first) first = (uint64_t)since + 1;
        int64_t n = 0;
        for (uint64_t q = first; q <= s->log_seq && n < limit; q++) {
            const log_entry *e = &s->log[(q - 1) % LOG_CAP];
            if (e->seq != q) continue;
            if (prov && strcmp(prov, e->provider) != 0) continue;
            cJSON_AddItemToArray(arr, log_json(e));
            n++;
        }
        cJSON_AddNumberToObject(o, "last_seq", (double)s->log_seq);
        pthread_mutex_unlock(&s->log_mu);
        ctl_json(r, 200, o);
    } else if (strcmp(path, "/_sandbox/reset") == 0 && strcmp(m, "POST") == 0) {
        cJSON *b = c->body.len ? cJSON_ParseWithLength(body, c->body.len) : NULL;
        const cJSON *seed = cJSON_GetObjectItemCaseSensitive(b, "seed");
        pthread_rwlock_wrlock(&s->state_lock);
        if (cJSON_IsNumber(seed) && seed->valuedouble >= 0) s->seed = (uint64_t)seed->valuedouble;
        providers_fini(s);
        providers_init(s);
        pthread_rwlock_unlock(&s->state_lock);
        cJSON_Delete(b);
        faults_clear(s);
        rate_clear(s);
        log_clear(s);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddBoolToObject(o, "reset", 1);
        cJSON_AddNumberToObject(o, "seed", (double)s->seed);
        ctl_json(r, 200, o);
    } else if (strcmp(path, "/_sandbox/faults") == 0) {
        if (strcmp(m, "GET") == 0) {
            cJSON *o = cJSON_CreateObject();
            cJSON *arr = cJSON_AddArrayToObject(o, "faults");
            pthread_mutex_lock(&s->fault_mu);
            for (size_t i = 0; i < s->nfaults; i++) cJSON_AddItemToArray(arr, fault_json(&s->faults[i]));
            pthread_mutex_unlock(&s->fault_mu);
            ctl_json(r, 200, o);
        } else if (strcmp(m, "DELETE") == 0) {
            faults_clear(s);
            ctl_json(r, 200, cJSON_CreateObject());
        } else if (strcmp(m, "POST") == 0) {
            cJSON *b = cJSON_ParseWithLength(body, c->body.len);
            char err[200];
            unsigned id = 0;
            if (!b) {
                ctl_error(r, 400, "body must be a JSON fault rule");
            } else if (fault_add(s, b, err, sizeof err, &id) < 0) {
                ctl_error(r, 400, err);
            } else {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddNumberToObject(o, "id", id);
                ctl_json(r, 201, o);
            }
            cJSON_Delete(b);
        } else {
            ctl_error(r, 405, "use GET, POST or DELETE");
        }
    } else if (strncmp(path, "/_sandbox/faults/", 17) == 0 && strcmp(m, "DELETE") == 0) {
        int64_t id;
        int found = 0;
        if (sb_parse_i64(path + 17, 1, UINT32_MAX, &id) == 0) {
            pthread_mutex_lock(&s->fault_mu);
            for (size_t i = 0; i < s->nfaults; i++) {
                if (s->faults[i].id == (unsigned)id) {
                    memmove(&s->faults[i], &s->faults[i + 1],
                            (s->nfaults - i - 1) * sizeof s->faults[0]);
                    s->nfaults--;
                    found = 1;
                    break;
                }
            }
            pthread_mutex_unlock(&s->fault_mu);
        }
        if (found)
            ctl_json(r, 200, cJSON_CreateObject());
        else
            ctl_error(r, 404, "no such fault");
    } else if (strcmp(path, "/_sandbox/config") == 0) {
        if (strcmp(m, "POST") == 0) {
            cJSON *b = cJSON_ParseWithLength(body, c->body.len);
            char err[200];
            if (apply_config(s, b, err, sizeof err) < 0) {
                ctl_error(r, 400, err);
                cJSON_Delete(b);
                return;
            }
            cJSON_Delete(b);
        }
        ctl_json(r, 200, config_json(s));
    } else if (strncmp(path, "/_sandbox/documents/", 20) == 0 && strcmp(m, "POST") == 0) {
        const char *id = path + 20;
        const char *slash = strchr(id, '/');
        if (!slash || strcmp(slash, "/advance") != 0 || slash == id || slash - id > 200) {
            ctl_error(r, 404, "use POST /_sandbox/documents/{id}/advance");
            return;
        }
        char docid[256];
        memcpy(docid, id, (size_t)(slash - id));
        docid[slash - id] = '\0';
        char *dec = sbx_url_decode(docid, strlen(docid), 0);
        cJSON *b = c->body.len ? cJSON_ParseWithLength(body, c->body.len) : NULL;
        const cJSON *to = cJSON_GetObjectItemCaseSensitive(b, "to");
        const char *tos = cJSON_IsString(to) ? to->valuestring : NULL;
        if (!tos) tos = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "to");
        if (!tos) {
            ctl_error(r, 400, "say where to: {\"to\":\"viewed|signed|completed|declined|expired|"
                              "revoked\"}");
        } else {
            char err[256] = "";
            int rc = 1;
            pthread_rwlock_rdlock(&s->state_lock);
            for (size_t i = 0; i < s->nprov && rc == 1; i++)
                if (s->providers[i]->advance)
                    rc = s->providers[i]->advance(s, dec ? dec : docid, tos, err, sizeof err);
            pthread_rwlock_unlock(&s->state_lock);
            if (rc == 0) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "id", dec ? dec : docid);
                cJSON_AddStringToObject(o, "to", tos);
                ctl_json(r, 200, o);
            } else if (rc == 1) {
                ctl_error(r, 404, "no document with that id");
            } else {
                ctl_error(r, 409, err[0] ? err : "refused");
            }
        }
        cJSON_Delete(b);
        free(dec);
    } else {
        ctl_error(r, 404, "unknown control endpoint; see docs/sandbox.md");
    }
}

/* ---- provider dispatch --------------------------------------------------------------------- */

static int region_ok(const sbx_provider *p, const char *region)
{
    for (const char *const *r = p->regions; *r; r++)
        if (strcmp(*r, region) == 0) return 1;
    return 0;
}

static int instance_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

static void detect_auth(const sbx_req *rq, char *out, size_t cap)
{
    const char *a = sbx_header(rq, "Authorization");
    if (a && strncasecmp(a, "Basic ", 6) == 0)
        sb_strlcpy(out, "basic", cap);
    else if (a && strncasecmp(a, "Bearer ", 7) == 0)
        sb_strlcpy(out, "bearer", cap);
    else if (sbx_header(rq, "X-API-Key"))
        sb_strlcpy(out, "x-api-key", cap);
    else if (sbx_header(rq, "api_key"))
        sb_strlcpy(out, "api_key", cap);
    else
        sb_strlcpy(out, "none", cap);
}

static MHD_RESULT_T send_response(req_ctx *c);
static void *uri_logger(void *cls, const char *uri, struct MHD_Connection *conn);

static void resume_cb(void *arg)
{
    req_ctx *c = arg;
    MHD_resume_connection(c->conn);
}

/* Handle a provider request; returns -1 to close the connection at once (reset/hang expired). */
static int provider_request(sbx *s, req_ctx *c)
{
    /* URL: /{provider}/{region}[/{instance}]/rest... */
    char *url = c->url;
    char *q = strchr(url, '?');
    const char *raw_query = "";
    if (q) {
        *q = '\0';
        raw_query = q + 1;
    }
    char *p = url + 1;
    char *e = strchr(p, '/');
    if (!e) return 0;
    *e = '\0';
    sbx_provider *prov = sbx_find_provider(s, p);
    char *region = e + 1;
    char *e2 = strchr(region, '/');
    char rest_root[2] = "/";
    char *rest = rest_root;
    if (e2) {
        *e2 = '\0';
        rest = e2 + 1;
    } else {
        rest = rest_root + 1; /* "" */
    }
    if (!prov || !region_ok(prov, region)) return 0;
    char instance[64] = "";
    if (strcmp(region, "private") == 0) {
        char *e3 = strchr(rest, '/');
        size_t il = e3 ? (size_t)(e3 - rest) : strlen(rest);
        if (!instance_ok(rest, il)) return 0;
        memcpy(instance, rest, il);
        instance[il] = '\0';
        rest = e3 ? e3 + 1 : rest + il;
    }
    char path[2048];
    snprintf(path, sizeof path, "/%s", rest);

    sbx_req rq;
    memset(&rq, 0, sizeof rq);
    rq.method = c->method;
    rq.provider = prov->name;
    rq.region = region;
    rq.instance = instance[0] ? instance : NULL;
    rq.path = path;
    rq.raw_query = raw_query;
    if (*raw_query) sbx_parse_form(raw_query, strlen(raw_query), &rq.query, &rq.nquery);
    if (!c->body.data) sb_buf_append(&c->body, "", 0);
    rq.body = c->body.data ? c->body.data : "";
    rq.body_len = c->body.len;
    const char *ct = find_header(c->conn, "Content-Type");
    rq.content_type = ct ? ct : "";
    rq.now_ms = sb_wall_ms();
    rq.conn_ = c->conn;

    fault_match(s, prov->name, region, c->method, path, &c->f);
    int run_handler = c->f.mode != F_ERROR && c->f.mode != F_RATE_LIMIT &&
                      c->f.mode != F_RESET && c->f.mode != F_HANG;
    pthread_rwlock_rdlock(&s->state_lock);
    if (run_handler) {
        prov->handle(s, &rq, &c->resp);
    } else if (c->f.mode == F_ERROR || c->f.mode == F_RATE_LIMIT) {
        prov->error(s, &rq, &c->resp, c->f.status, c->f.message);
        if (c->f.mode == F_RATE_LIMIT) {
            char ra[16];
            snprintf(ra, sizeof ra, "%u", c->f.retry_after);
            sbx_resp_header(&c->resp, "Retry-After", ra);
        }
    }
    pthread_rwlock_unlock(&s->state_lock);
    if (!rq.auth_scheme[0]) detect_auth(&rq, rq.auth_scheme, sizeof rq.auth_scheme);
    if (!rq.route[0]) snprintf(rq.route, sizeof rq.route, "%s %.80s", rq.method, rq.path);
    if (run_handler && c->resp.status == 0) {
        prov->error(s, &rq, &c->resp, 404, "Not found");
    }
    if (c->f.mode == F_RESET || c->f.mode == F_HANG) c->resp.status = 0;
    record(s, &rq, c);
    sbx_kv_free(rq.query, rq.nquery);
    return 1;
}

/* ---- MHD glue ------------------------------------------------------------------------------ */

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    req_ctx *c = cls;
    (void)pos;
    switch (c->f.mode) {
    case F_TRUNCATE: {
        size_t half = c->resp.body.len / 2;
        if (c->sent >= half) return MHD_CONTENT_READER_END_WITH_ERROR;
        size_t n = half - c->sent < max ? half - c->sent : max;
        memcpy(buf, c->resp.body.data + c->sent, n);
        c->sent += n;
        return (ssize_t)n;
    }
    case F_OVERSIZE: {
        static const char head[] = "{\"padding\":\"";
        static const char tail[] = "\",\"result\":[]}";
        size_t total = c->f.size, hl = sizeof head - 1, tl = sizeof tail - 1;
        if (c->sent >= total) return MHD_CONTENT_READER_END_OF_STREAM;
        size_t n = 0;
        while (n < max && c->sent < total) {
            size_t pos2 = c->sent, run;
            if (pos2 < hl) {
                run = hl - pos2 < max - n ? hl - pos2 : max - n;
                memcpy(buf + n, head + pos2, run);
            } else if (pos2 < total - tl) {
                run = total - tl - pos2 < max - n ? total - tl - pos2 : max - n;
                memset(buf + n, 'a', run);
            } else {
                run = total - pos2 < max - n ? total - pos2 : max - n;
                memcpy(buf + n, tail + (pos2 - (total - tl)), run);
            }
            n += run;
            c->sent += run;
        }
        return (ssize_t)n;
    }
    case F_DRIP: {
        if (c->sent >= c->resp.body.len) return MHD_CONTENT_READER_END_OF_STREAM;
        uint64_t now = sb_mono_ms();
        if (now < c->drip_next_ms) {
            MHD_suspend_connection(c->conn);
            if (!sb_loop_after(c->s->loop, c->drip_next_ms - now, resume_cb, c))
                MHD_resume_connection(c->conn);
            return 0;
        }
        size_t n = c->resp.body.len - c->sent;
        if (n > c->f.drip_bytes) n = c->f.drip_bytes;
        if (n > max) n = max;
        memcpy(buf, c->resp.body.data + c->sent, n);
        c->sent += n;
        c->drip_next_ms = now + c->f.drip_ms;
        return (ssize_t)n;
    }
    default:
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

static MHD_RESULT_T send_response(req_ctx *c)
{
    sbx_resp *r = &c->resp;
    struct MHD_Response *resp;
    if (c->f.mode == F_MALFORMED && r->body.len > 1) {
        /* cut the JSON in half: it no longer parses */
        r->body.len = r->body.len / 2;
        if (r->body.len == 0) r->body.len = 1;
        r->body.data[r->body.len] = '\0';
        if (!r->content_type[0]) sb_strlcpy(r->content_type, "application/json", sizeof r->content_type);
    }
    if (c->f.mode == F_TRUNCATE || c->f.mode == F_DRIP) {
        resp = MHD_create_response_from_callback(r->body.len, 4096, stream_reader, c, NULL);
    } else if (c->f.mode == F_OVERSIZE) {
        r->status = 200;
        sb_strlcpy(r->content_type, "application/json", sizeof r->content_type);
        if (c->f.size < 40) c->f.size = 40;
        resp = MHD_create_response_from_callback(c->f.size, 64 * 1024, stream_reader, c, NULL);
    } else {
        /* hand the body over instead of copying it */
        size_t len = 0;
        char *data = r->body.data ? sb_buf_detach(&r->body, &len) : NULL;
        resp = data ? MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE)
                    : MHD_create_response_from_buffer(0, (char *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!resp) return MHD_NO;
    if (r->content_type[0]) MHD_add_response_header(resp, "Content-Type", r->content_type);
    for (size_t off = 0; off < r->headers.len; off += header_pair_len(r->headers.data + off)) {
        const char *n = r->headers.data + off;
        MHD_add_response_header(resp, n, n + strlen(n) + 1);
    }
    if (r->location) MHD_add_response_header(resp, "Location", r->location);
    MHD_RESULT_T rc = MHD_queue_response(c->conn, (unsigned)(r->status ? r->status : 500), resp);
    MHD_destroy_response(resp);
    return rc;
}

static void hard_reset(req_ctx *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci) {
        struct linger lg = {1, 0};
        setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
}

static MHD_RESULT_T on_request(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    sbx *s = cls;
    (void)version;
    req_ctx *c = *con_cls;
    if (!c) {
        /* normally created by uri_logger with the full URI; this is a fallback */
        c = uri_logger(s, url, conn);
        if (!c) return MHD_NO;
        *con_cls = c;
    }
    if (!c->method) {
        /* first call: headers only */
        c->method = method;
        c->conn = conn;
        return MHD_YES;
    }
    if (c->phase == 1) {
        /* woken after latency or hang */
        if (c->close_now) {
            hard_reset(c);
            return MHD_NO;
        }
        c->phase = 2;
        return send_response(c);
    }
    if (*upload_size) {
        if (!c->too_big && sb_buf_append(&c->body, upload, *upload_size) != 0) {
            c->too_big = 1;
            sb_buf_free(&c->body);
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (c->too_big) {
        sbx_resp_text(&c->resp, 413, "text/plain", "Request body too large");
        return send_response(c);
    }
    if (strncmp(url, "/_sandbox/", 10) == 0 || strcmp(url, "/_sandbox") == 0) {
        control(s, c, url, &c->resp);
        return send_response(c);
    }
    int handled = provider_request(s, c);
    if (!handled) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "error", "not_found");
        cJSON_AddStringToObject(o, "message",
                                "No provider/region here. Paths look like /boldsign/{us|eu|ca|au}/v1/..., "
                                "/dropboxsign/global/v3/..., /iinkedsign/{region}/api/v1/...; "
                                "see GET /_sandbox/accounts");
        sbx_resp_json(&c->resp, 404, o);
        return send_response(c);
    }
    if (c->f.mode == F_RESET) {
        hard_reset(c);
        return MHD_NO;
    }
    unsigned delay = atomic_load(&s->latency_ms);
    if (c->f.mode == F_LATENCY) {
        delay += c->f.latency_ms;
        if (c->f.jitter_ms) {
            uint32_t r;
            sb_random_bytes(&r, sizeof r);
            delay += r % (c->f.jitter_ms + 1);
        }
    }
    if (c->f.mode == F_HANG) {
        delay = c->f.hang_ms;
        c->close_now = 1;
    }
    if (delay > 0) {
        c->phase = 1;
        MHD_suspend_connection(conn);
        if (!sb_loop_after(s->loop, delay, resume_cb, c)) MHD_resume_connection(conn);
        return MHD_YES;
    }
    c->phase = 2;
    return send_response(c);
}

/* Frees a request context and everything it owns. */
static void req_ctx_free(req_ctx *c)
{
    free(c->url);
    sb_buf_free(&c->body);
    sb_buf_free(&c->resp.body);
    sb_buf_free(&c->resp.headers);
    free(c->resp.location);
    free(c);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    req_ctx *c = *con_cls;
    if (!c) return;
    *con_cls = NULL;
    void **slot = c->slot;
    if (slot && *slot == c) *slot = NULL;
    req_ctx_free(c);
}

/* A request MHD gives up on before the access handler (an oversized request line) never reaches
 * on_completed: the context uri_logger made is freed when the connection closes. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    (void)conn;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = calloc(1, sizeof(void *)); /* the pending-request slot */
        return;
    }
    void **slot = *socket_context;
    *socket_context = NULL;
    if (!slot) return;
    req_ctx *c = *slot;
    if (c) {
        req_ctx_free(c);
    }
    free(slot);
}

/* MHD strips the query string from `url`; give providers the raw one back. MHD_OPTION_URI_LOG_CALLBACK
 * sees the full request URI first: stash it as the connection's context. */
static void *uri_logger(void *cls, const char *uri, struct MHD_Connection *conn)
{
    sbx *s = cls;
    (void)conn;
    req_ctx *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->s = s;
    c->conn = conn;
    size_t n = strnlen(uri, 65536);
    c->url = strndup(uri, n);
    sb_buf_init(&c->body, MAX_BODY);
    resp_init(&c->resp);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (ci && ci->socket_context) {
        void **slot = (void **)ci->socket_context;
        if (*slot) { /* a previous request on this connection that never completed */
            req_ctx *old = *slot;
            req_ctx_free(old);
        }
        *slot = c;
        c->slot = slot;
    }
    return c;
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
    sb_log_msg(SB_LOG_DEBUG, "mhd", "%s", msg);
}

static void tick(void *arg)
{
    sbx *s = arg;
    if (atomic_load(&s->stopping)) return;
    uint64_t now = sb_wall_ms();
    pthread_rwlock_rdlock(&s->state_lock);
    for (size_t i = 0; i < s->nprov; i++)
        if (s->providers[i]->tick) s->providers[i]->tick(s, now);
    pthread_rwlock_unlock(&s->state_lock);
    if (!atomic_load(&s->stopping)) sb_loop_after(s->loop, 100, tick, s);
}

static int parse_listen(const char *l, struct sockaddr_in *sa)
{
    const char *colon = strrchr(l, ':');
    if (!colon) return -1;
    int64_t port;
    if (sb_parse_i64(colon + 1, 0, 65535, &port) < 0) return -1;
    char host[64];
    size_t hl = (size_t)(colon - l);
    if (hl == 0 || hl >= sizeof host) return -1;
    memcpy(host, l, hl);
    host[hl] = '\0';
    if (strcmp(host, "localhost") == 0) sb_strlcpy(host, "127.0.0.1", sizeof host);
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

sbx *sbx_start(const sbx_options *o, char *err, size_t errlen)
{
    struct sockaddr_in sa;
    if (parse_listen(o->listen, &sa) < 0) {
        snprintf(err, errlen, "--listen: expected IPv4ADDR:PORT, got %s", o->listen);
        return NULL;
    }
    sbx *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->seed = o->seed;
    s->providers[0] = &sbx_boldsign;
    s->providers[1] = &sbx_dropboxsign;
    s->providers[2] = &sbx_iinkedsign;
    s->nprov = 3;
    pthread_rwlock_init(&s->state_lock, NULL);
    pthread_mutex_init(&s->cfg_mu, NULL);
    pthread_mutex_init(&s->fault_mu, NULL);
    pthread_mutex_init(&s->rate_mu, NULL);
    pthread_mutex_init(&s->log_mu, NULL);
    pthread_mutex_init(&s->stats_mu, NULL);
    atomic_init(&s->rate_limits_on, o->rate_limits);
    atomic_init(&s->auto_approve, o->auto_approve);
    atomic_init(&s->auto_progress_ms, o->auto_progress_ms);
    atomic_init(&s->latency_ms, o->latency_ms);
    atomic_init(&s->stopping, 0);
    s->log = calloc(LOG_CAP, sizeof *s->log);
    s->loop = sb_loop_start();
    if (!s->log || !s->loop) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (const char *const *f = o->faults; f && *f; f++) {
        cJSON *j = cJSON_Parse(*f);
        unsigned id;
        char ferr[200];
        if (!j || fault_add(s, j, ferr, sizeof ferr, &id) < 0) {
            snprintf(err, errlen, "--fault %s: %s", *f, j ? ferr : "not JSON");
            cJSON_Delete(j);
            goto fail;
        }
        cJSON_Delete(j);
    }
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    int tls = o->tls_cert_pem && o->tls_key_pem;
    if (tls) flags |= MHD_USE_TLS;
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_SOCK_ADDR, 0, &sa},
        {MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)(o->threads ? o->threads : 2), NULL},
        {MHD_OPTION_CONNECTION_LIMIT, 20000, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, 120, NULL},
        {MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s},
        {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)uri_logger, s},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, s},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT,
         (intptr_t)(o->max_head_bytes ? o->max_head_bytes : 16384), NULL},
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, s},
        {tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, (void *)o->tls_key_pem},
        {tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, (void *)o->tls_cert_pem},
        {MHD_OPTION_END, 0, NULL}};
    /* Providers initialise once the origin is known (their accounts carry base URLs); requests
     * that arrive meanwhile wait on the state lock. */
    pthread_rwlock_wrlock(&s->state_lock);
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_ARRAY, opts,
                            MHD_OPTION_END);
    if (!s->d) {
        pthread_rwlock_unlock(&s->state_lock);
        snprintf(err, errlen, "cannot listen on %s%s", o->listen,
                 tls ? " (or the TLS key/certificate is unusable)" : "");
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : 0;
    char host[64];
    inet_ntop(AF_INET, &sa.sin_addr, host, sizeof host);
    if (strcmp(host, "0.0.0.0") == 0) sb_strlcpy(host, "127.0.0.1", sizeof host);
    snprintf(s->origin, sizeof s->origin, "%s://%s:%u", tls ? "https" : "http", host, s->port);
    providers_init(s);
    pthread_rwlock_unlock(&s->state_lock);
    sb_loop_after(s->loop, 100, tick, s);
    return s;
fail:
    if (s->loop) sb_loop_stop(s->loop);
    free(s->log);
    free(s);
    return NULL;
}

unsigned sbx_port(const sbx *s)
{
    return s->port;
}

void sbx_stop(sbx *s)
{
    if (!s) return;
    atomic_store(&s->stopping, 1);
    /* new connections are refused at once (shutdown), but the listen socket is closed only after
     * MHD_stop_daemon, as libmicrohttpd asks: the daemon's thread takes it out of its epoll set
     * after the quiesce, and aborts the process if it has been closed by then (seen once in CI:
     * "Failed to remove listen FD from epoll set") */
    MHD_socket ls = MHD_quiesce_daemon(s->d);
    if (ls != MHD_INVALID_SOCKET) shutdown(ls, SHUT_RDWR);
    /* pending latency/hang timers fire now and resume their connections */
    sb_loop_stop(s->loop);
    usleep(100000);
    MHD_stop_daemon(s->d);
    if (ls != MHD_INVALID_SOCKET) close(ls);
    pthread_rwlock_wrlock(&s->state_lock);
    providers_fini(s);
    pthread_rwlock_unlock(&s->state_lock);
    log_clear(s);
    free(s->log);
    free(s->stats);
    rate_clear(s);
    cJSON_Delete(s->rate_overrides);
    free(s);
}
