#include "bridge/sb_bridge.h"

#include "bridge/sb_bridge_session.h"

#include "auth/sb_cred.h"
#include "core/sb_arena.h"
#include "core/sb_buf.h"
#include "core/sb_embed.h"
#include "core/sb_later.h"
#include "core/sb_json.h"
#include "core/sb_log.h"
#include "core/sb_metrics.h"
#include "core/sb_util.h"
#include "mcp/sb_jsonrpc.h"
#include "providers/sb_provider.h"

#include <openssl/sha.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <unistd.h>

#define CACHE_BUCKETS 1024

typedef struct cache_entry {
    struct cache_entry *next;
    char key[SB_FP_HEX + 8];
    char region[24];
    uint64_t expires_ms;
} cache_entry;

typedef struct file_entry {
    struct file_entry *next;
    char token[48];
    char mime[96], name[160];
    unsigned char *data;
    size_t len;
    uint64_t expires_ms;
} file_entry;

#define TOOL_SLOTS 64

struct sb_bridge {
    sb_bridge_options o;
    pthread_mutex_t cache_mu;
    cache_entry *cache[CACHE_BUCKETS];
    size_t ncache;
    pthread_mutex_t file_mu;
    file_entry *files;
    size_t file_bytes;
    pthread_mutex_t idem_mu;
    struct idem_entry *idem;
    size_t nidem;
    uint64_t idem_last_sweep;
    pthread_mutex_t audit_mu;
    int audit_fd;
    sb_loop *loop;                /* the engine's (sb_bridge_attach): store writes off the
                                     upstream thread */
    sb_bridge_sessions *shared_sessions;
    /* each registered tool's entry in each adapter (NULL: not served there), by registry position,
     * so tools/list does not look tools up by name: filled by sb_bridge_register_tools */
    const sb_tool *slot_tool[TOOL_SLOTS];
    const sb_ptool *slot_ptool[SB_N_ADAPTERS][TOOL_SLOTS];
    /* metrics (docs/operations.md), families of sb_metrics_global() */
    sb_mfamily *m_tools, *m_up_duration, *m_up_requests, *m_admissions;
};

/* ---- metrics --------------------------------------------------------------------------------- */

static void count_admission(sb_bridge *b, const char *provider, const char *outcome)
{
    sb_metrics_inc(sb_metrics_series(b->m_admissions, (const char *const[]){provider, outcome}));
}

/* One upstream request as the bridge sees it (retries included): submit to completion. */
static void count_upstream(sb_bridge *b, const char *provider, const char *region, int error,
                           int status, uint64_t submit_us)
{
    static const char *const classes[] = {"error", "1xx", "2xx", "3xx", "4xx", "5xx"};
    const char *cls = error == SB_UP_OK && status >= 200 && status < 600 ? classes[status / 100]
                                                                         : "error";
    const char *l[] = {provider, region};
    sb_metrics_observe_us(sb_metrics_series(b->m_up_duration, l), sb_mono_us() - submit_us);
    sb_metrics_inc(
        sb_metrics_series(b->m_up_requests, (const char *const[]){provider, region, cls}));
}

/* The engine runs cancel hooks with only a pointer-sized argument: the upstream engine is
 * process-wide, like the bridge. */
static sb_up *g_up;

/* ---- region cache ------------------------------------------------------------------------ */

static unsigned cache_bucket(const char *key)
{
    unsigned h = 2166136261u;
    for (const char *c = key; *c; c++) h = (h ^ (unsigned char)*c) * 16777619u;
    return h % CACHE_BUCKETS;
}

static void cache_mem_put(sb_bridge *b, const char *key, const char *region, uint64_t exp);

/* A region name as stored: short, [a-z0-9_-]. */
static int region_ok(const unsigned char *v, size_t len)
{
    if (!len || len >= 24) return 0;
    for (size_t i = 0; i < len; i++)
        if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9') || v[i] == '-' ||
              v[i] == '_'))
            return 0;
    return 1;
}

/* The memory front, then the store (ns "region", key = the credential fingerprint: an HMAC,
 * never the key), whose answer is kept in memory for what is left of its TTL. */
static int cache_get(sb_bridge *b, const char *key, char *region, size_t cap)
{
    int found = 0;
    uint64_t now = sb_mono_ms();
    pthread_mutex_lock(&b->cache_mu);
    for (cache_entry *e = b->cache[cache_bucket(key)]; e; e = e->next) {
        if (strcmp(e->key, key) == 0 && e->expires_ms > now) {
            sb_strlcpy(region, e->region, cap);
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&b->cache_mu);
    if (found || !b->o.store) return found;
    sb_store_rec rec;
    if (sb_store_get(b->o.store, "region", key, &rec) == 0) {
        if (region_ok(rec.value, rec.len) && rec.len < cap) {
            memcpy(region, rec.value, rec.len);
            region[rec.len] = '\0';
            int64_t left = rec.expires_at_ms ? rec.expires_at_ms - sb_store_now_ms()
                                             : (int64_t)b->o.cache_ttl_s * 1000;
            if (left > 0) cache_mem_put(b, key, region, sb_mono_ms() + (uint64_t)left);
            found = 1;
        }
        sb_store_rec_free(&rec);
    }
    return found;
}

static void cache_clear_locked(sb_bridge *b)
{
    for (size_t i = 0; i < CACHE_BUCKETS; i++) {
        cache_entry *e = b->cache[i];
        while (e) {
            cache_entry *n = e->next;
            free(e);
            e = n;
        }
        b->cache[i] = NULL;
    }
    b->ncache = 0;
}

static void cache_mem_put(sb_bridge *b, const char *key, const char *region, uint64_t exp)
{
    unsigned h = cache_bucket(key);
    pthread_mutex_lock(&b->cache_mu);
    for (cache_entry *e = b->cache[h]; e; e = e->next) {
        if (strcmp(e->key, key) == 0) {
            sb_strlcpy(e->region, region, sizeof e->region);
            e->expires_ms = exp;
            pthread_mutex_unlock(&b->cache_mu);
            return;
        }
    }
    if (b->ncache >= b->o.cache_max) cache_clear_locked(b); /* bounded: start over */
    cache_entry *e = calloc(1, sizeof *e);
    if (e) {
        sb_strlcpy(e->key, key, sizeof e->key);
        sb_strlcpy(e->region, region, sizeof e->region);
        e->expires_ms = exp;
        e->next = b->cache[h];
        b->cache[h] = e;
        b->ncache++;
    }
    pthread_mutex_unlock(&b->cache_mu);
}

typedef struct region_write {
    sb_bridge *b;
    char key[SB_FP_HEX + 8];
    char region[24];
    int64_t expires_at_ms;
} region_write;

static void region_write_run(void *arg)
{
    region_write *w = arg;
    sb_store_put(w->b->o.store, "region", w->key, w->region, strlen(w->region), w->expires_at_ms,
                 NULL);
    free(w);
}

/* Remember a detection: memory at once; the store from the loop thread, since detections end on
 * the upstream engine thread, which never waits on the store. */
static void cache_put(sb_bridge *b, const char *key, const char *region)
{
    cache_mem_put(b, key, region, sb_mono_ms() + (uint64_t)b->o.cache_ttl_s * 1000);
    if (!b->o.store || !region_ok((const unsigned char *)region, strlen(region)) ||
        !sb_store_valid_key(key))
        return;
    region_write *w = calloc(1, sizeof *w);
    if (!w) return;
    w->b = b;
    sb_strlcpy(w->key, key, sizeof w->key);
    sb_strlcpy(w->region, region, sizeof w->region);
    w->expires_at_ms = sb_store_now_ms() + (int64_t)b->o.cache_ttl_s * 1000;
    if (!b->loop || sb_loop_post(b->loop, region_write_run, w) < 0) region_write_run(w);
}

size_t sb_bridge_cache_size(sb_bridge *b)
{
    pthread_mutex_lock(&b->cache_mu);
    size_t n = b->ncache;
    pthread_mutex_unlock(&b->cache_mu);
    return n;
}

/* ---- file links -------------------------------------------------------------------------- */

static void files_expire_locked(sb_bridge *b, uint64_t now)
{
    for (file_entry **pp = &b->files; *pp;) {
        file_entry *f = *pp;
        if (f->expires_ms <= now) {
            *pp = f->next;
            b->file_bytes -= f->len;
            free(f->data);
            free(f);
        } else {
            pp = &f->next;
        }
    }
}

int sb_bridge_file_put(sb_bridge *b, const void *data, size_t len, const char *mime,
                       const char *name, char *token, size_t cap)
{
    file_entry *f = calloc(1, sizeof *f);
    if (!f) return -1;
    f->data = malloc(len ? len : 1);
    if (!f->data) {
        free(f);
        return -1;
    }
    memcpy(f->data, data, len);
    f->len = len;
    sb_strlcpy(f->mime, mime, sizeof f->mime);
    sb_strlcpy(f->name, name, sizeof f->name);
    unsigned char rnd[24];
    sb_random_bytes(rnd, sizeof rnd);
    sb_base64url_encode(rnd, sizeof rnd, f->token);
    uint64_t now = sb_mono_ms();
    f->expires_ms = now + (uint64_t)b->o.file_ttl_s * 1000;
    pthread_mutex_lock(&b->file_mu);
    files_expire_locked(b, now);
    if (b->file_bytes + len > b->o.file_store_max_bytes) {
        pthread_mutex_unlock(&b->file_mu);
        free(f->data);
        free(f);
        return -1;
    }
    f->next = b->files;
    b->files = f;
    b->file_bytes += len;
    sb_strlcpy(token, f->token, cap);
    pthread_mutex_unlock(&b->file_mu);
    return 0;
}

void *sb_bridge_file_get(sb_bridge *b, const char *token, size_t *len, char *mime, size_t mimecap,
                         char *name, size_t namecap)
{
    void *copy = NULL;
    size_t tl = strlen(token);
    pthread_mutex_lock(&b->file_mu);
    files_expire_locked(b, sb_mono_ms());
    for (file_entry *f = b->files; f; f = f->next) {
        if (sb_ct_equal(f->token, strlen(f->token), token, tl)) {
            copy = malloc(f->len ? f->len : 1);
            if (copy) {
                memcpy(copy, f->data, f->len);
                *len = f->len;
                sb_strlcpy(mime, f->mime, mimecap);
                sb_strlcpy(name, f->name, namecap);
            }
            break;
        }
    }
    pthread_mutex_unlock(&b->file_mu);
    return copy;
}

/* ---- upstream requests ------------------------------------------------------------------- */

/* Submit a built request with the caller's credential. 0 or -1. */
static int submit(sb_bridge *b, const sb_adapter *a, const sb_pctx *ctx, sb_preq *r,
                  unsigned timeout_ms, sb_up_done_fn done, void *arg, uint64_t *id)
{
    sb_buf auth;
    sb_buf_init(&auth, 2048);
    int rc = ctx->bearer ? sb_buf_printf(&auth, "Authorization: Bearer %.*s", (int)ctx->key_len,
                                         ctx->key)
                         : a->auth_header(ctx->key, ctx->key_len, &auth);
    if (rc == 0) rc = sb_preq_header(r, "%s", auth.data);
    explicit_bzero(auth.data ? auth.data : (char *)"", auth.len);
    sb_buf_free(&auth);
    int has_accept = 0;
    for (size_t i = 0; i < r->nheaders; i++) has_accept |= strncasecmp(r->headers[i], "Accept:", 7) == 0;
    if (rc == 0 && !has_accept) rc = sb_preq_header(r, "Accept: application/json");
    if (rc == 0 && ctx->request_id && ctx->request_id[0])
        rc = sb_preq_header(r, "X-Request-Id: %s", ctx->request_id);
    if (rc < 0) return -1;
    sb_up_request rq = {
        .method = r->method,
        .url = r->url.data,
        .headers = (const char *const *)r->headers,
        .body = r->body.len || strcmp(r->method, "GET") != 0 ? (r->body.data ? r->body.data : "")
                                                              : NULL,
        .body_len = r->body.len,
        .idempotent = r->idempotent,
        .timeout_ms = timeout_ms,
        .max_response = r->max_response,
        .local = 1, /* on the caller's lane: nothing here waits for the answer */
    };
    (void)b;
    return sb_up_submit(g_up, &rq, done, arg, id);
}

static int base_for(sb_bridge *b, const sb_principal *p, const char *region, char *out, size_t cap)
{
    if (p->instance[0]) return sb_regions_private_url(b->o.regions, p->instance, out, cap);
    const sb_region *r = sb_regions_find(b->o.regions, p->provider, region);
    if (!r) return -1;
    sb_strlcpy(out, r->base_url, cap);
    return 0;
}

/* ---- admission: which region does this key belong to? -------------------------------------- */

enum { P_PENDING = 0, P_OK, P_REJECTED, P_UNKNOWN };

typedef struct probe_state {
    pthread_mutex_t mu;
    int refs;
    sb_bridge *b;
    sb_mcp_call *call;
    const sb_adapter *a;
    sb_principal p; /* copy (holds the key): wiped on free */
    int phase;      /* 1: the pinned region only; 2: every region */
    int done;
    size_t n, pending;
    char regions[SB_MAX_REGIONS][24];
    int outcome[SB_MAX_REGIONS];
    int status[SB_MAX_REGIONS];
} probe_state;

typedef struct probe_arg {
    probe_state *st;
    size_t idx;
    uint64_t submit_us;
} probe_arg;

static void probe_release(probe_state *st)
{
    pthread_mutex_lock(&st->mu);
    int last = --st->refs == 0;
    pthread_mutex_unlock(&st->mu);
    if (!last) return;
    sb_mcp_call_release(st->call);
    sb_cred_wipe(&st->p.cred); /* the only secret in the principal */
    pthread_mutex_destroy(&st->mu);
    free(st);
}

static void refuse(probe_state *st, int status, const char *error, const char *desc,
                   const char *key_region)
{
    char www[1200];
    snprintf(www, sizeof www,
             "Bearer resource_metadata=\"%s/.well-known/oauth-protected-resource%s\", "
             "error=\"invalid_token\", error_description=\"the %s credential was not accepted "
             "(%s)\"",
             st->b->o.public_url, st->p.route, st->a->display, error);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "error", error);
    cJSON_AddStringToObject(body, "error_description", desc);
    cJSON_AddStringToObject(body, "provider", st->p.provider);
    cJSON *tried = cJSON_AddArrayToObject(body, "regions_tried");
    for (size_t i = 0; i < st->n; i++)
        if (st->outcome[i] != P_PENDING) cJSON_AddItemToArray(tried, cJSON_CreateString(st->regions[i]));
    if (key_region) cJSON_AddStringToObject(body, "key_region", key_region);
    cJSON *f = cJSON_CreateObject();
    char fp[13];
    sb_strlcpy(fp, st->p.fingerprint, sizeof fp);
    cJSON_AddStringToObject(f, "fingerprint", fp);
    cJSON_AddStringToObject(f, "provider", st->p.provider);
    cJSON_AddStringToObject(f, "route", st->p.route);
    cJSON_AddStringToObject(f, "error", error);
    sb_log_obj(SB_LOG_INFO, "admission_refused", f);
    sb_mcp_admit_refuse(st->call, status, status == 401 ? www : NULL, body);
}

static void list_regions(const probe_state *st, int outcome, char *out, size_t cap)
{
    out[0] = '\0';
    size_t o = 0;
    for (size_t i = 0; i < st->n; i++) {
        if (st->outcome[i] != outcome) continue;
        int w = snprintf(out + o, cap - o, "%s%s", o ? ", " : "", st->regions[i]);
        if (w < 0 || (size_t)w >= cap - o) break;
        o += (size_t)w;
    }
}

static int start_probes(probe_state *st);

/* Decide once every probe of the phase has answered (or at the first success). Lock held. */
static void decide_locked(probe_state *st, int *action, char *region, char *msg, size_t msgcap,
                          int *status, const char **err)
{
    *action = 0; /* 0 wait, 1 admit, 2 refuse, 3 go to phase 2 */
    for (size_t i = 0; i < st->n; i++) {
        if (st->outcome[i] == P_OK) {
            if (st->phase == 1 || !st->p.region_pin[0]) {
                sb_strlcpy(region, st->regions[i], 24);
                *action = 1;
                return;
            }
        }
    }
    if (st->pending > 0) return;
    if (st->phase == 1) {
        /* the pinned region rejected or did not answer */
        if (st->outcome[0] == P_REJECTED && !st->p.instance[0]) {
            *action = 3;
            return;
        }
        *status = st->outcome[0] == P_REJECTED ? 401 : 503;
        *err = st->outcome[0] == P_REJECTED ? "invalid_api_key" : "region_unreachable";
        snprintf(msg, msgcap,
                 st->outcome[0] == P_REJECTED
                     ? "%s rejected this API key in %s (HTTP %d). Check the key, or create a new "
                       "one in the %s dashboard."
                     : "%s did not answer in %s (HTTP %d) while signbridge checked the key. "
                       "Try again in a moment.",
                 st->a->display, st->p.instance[0] ? st->p.instance : st->regions[0],
                 st->status[0], st->a->display);
        *action = 2;
        return;
    }
    /* phase 2 or unpinned: nobody accepted */
    char rejected[256], unknown[256];
    list_regions(st, P_REJECTED, rejected, sizeof rejected);
    list_regions(st, P_UNKNOWN, unknown, sizeof unknown);
    if (st->p.region_pin[0]) {
        /* phase 2 found the key's home, if any */
        for (size_t i = 0; i < st->n; i++) {
            if (st->outcome[i] == P_OK) {
                snprintf(msg, msgcap,
                         "%s rejected this API key in region %s, but it is valid in region %s. "
                         "Connect to /%s/%s/mcp (or to /%s/mcp, which finds the region itself).",
                         st->a->display, st->p.region_pin, st->regions[i], st->p.provider,
                         st->regions[i], st->p.provider);
                sb_strlcpy(region, st->regions[i], 24);
                *status = 401;
                *err = "wrong_region";
                *action = 2;
                return;
            }
        }
    }
    if (unknown[0]) {
        snprintf(msg, msgcap,
                 "signbridge could not verify this %s API key: %s%s%s did not answer; "
                 "rejected in: %s. Try again in a moment.",
                 st->a->display, unknown, "", "", rejected[0] ? rejected : "none");
        *status = 503;
        *err = "region_unreachable";
    } else {
        snprintf(msg, msgcap,
                 "%s rejected this API key in every region signbridge tried (%s). Check the key "
                 "(it may be revoked, expired, or from another provider).",
                 st->a->display, rejected);
        *status = 401;
        *err = "invalid_api_key";
    }
    *action = 2;
}

static void after_probe(probe_state *st)
{
    int action, status = 0;
    char region[24] = "", msg[700] = "";
    const char *err = "";
    pthread_mutex_lock(&st->mu);
    if (st->done) {
        pthread_mutex_unlock(&st->mu);
        return;
    }
    decide_locked(st, &action, region, msg, sizeof msg, &status, &err);
    if (action == 1 || action == 2) st->done = 1;
    pthread_mutex_unlock(&st->mu);
    if (action == 1) {
        char key[SB_FP_HEX + 8];
        snprintf(key, sizeof key, "%s", st->p.fingerprint);
        if (!st->p.instance[0]) cache_put(st->b, key, region);
        count_admission(st->b, st->p.provider, "ok");
        sb_mcp_admit_ok(st->call, st->p.instance[0] ? "private" : region);
    } else if (action == 2) {
        count_admission(st->b, st->p.provider, "refused");
        refuse(st, status, err, msg, strcmp(err, "wrong_region") == 0 ? region : NULL);
    } else if (action == 3) {
        /* phase 2: probe every other region to say where the key belongs */
        pthread_mutex_lock(&st->mu);
        st->phase = 2;
        size_t n = 0;
        for (size_t i = 0; i < st->b->o.regions->n; i++) {
            const sb_region *r = &st->b->o.regions->r[i];
            if (strcmp(r->provider, st->p.provider) != 0) continue;
            if (n == 0) {
                /* keep slot 0: the pinned region's rejection */
                n = 1;
            }
            if (strcmp(r->name, st->regions[0]) == 0) continue;
            sb_strlcpy(st->regions[n], r->name, sizeof st->regions[n]);
            st->outcome[n] = P_PENDING;
            n++;
        }
        st->n = n;
        pthread_mutex_unlock(&st->mu);
        if (start_probes(st) < 0) after_probe(st);
    }
}

static void probe_done(const sb_up_result *r, void *arg)
{
    probe_arg *pa = arg;
    probe_state *st = pa->st;
    int outcome;
    count_upstream(st->b, st->p.provider, st->regions[pa->idx], r->error, r->status,
                   pa->submit_us);
    if (r->error == SB_UP_OK && ((r->status >= 200 && r->status < 300) || r->status == 429))
        outcome = P_OK; /* a rate limit comes after authentication */
    else if (r->error == SB_UP_OK && (r->status == 401 || r->status == 403))
        outcome = P_REJECTED;
    else
        outcome = P_UNKNOWN;
    pthread_mutex_lock(&st->mu);
    st->outcome[pa->idx] = outcome;
    st->status[pa->idx] = r->status;
    st->pending--;
    pthread_mutex_unlock(&st->mu);
    after_probe(st);
    free(pa);
    probe_release(st);
}

/* Probe every region still pending. Every probe is counted before any is sent, so a fast answer
 * cannot conclude the round while others are still to go out. -1 when none could be sent. */
static int start_probes(probe_state *st)
{
    int todo[SB_MAX_REGIONS] = {0};
    pthread_mutex_lock(&st->mu);
    for (size_t i = 0; i < st->n; i++) {
        if (st->outcome[i] != P_PENDING) continue;
        todo[i] = 1;
        st->pending++;
        st->refs++;
    }
    pthread_mutex_unlock(&st->mu);
    int started = 0;
    for (size_t i = 0; i < st->n; i++) {
        if (!todo[i]) continue;
        char base[512];
        sb_preq r;
        sb_preq_init(&r, "GET", 1);
        probe_arg *pa = malloc(sizeof *pa);
        int ok = pa && base_for(st->b, &st->p, st->regions[i], base, sizeof base) == 0;
        if (ok) {
            sb_pctx ctx = {.provider = st->p.provider, .region = st->regions[i], .base_url = base,
                           .key = st->p.cred.secret, .key_len = st->p.cred.len,
                           .bearer = st->p.upstream_bearer,
                           .request_id = st->p.request_id};
            pa->st = st;
            pa->idx = i;
            pa->submit_us = sb_mono_us();
            ok = st->a->probe(&ctx, &r) == 0;
            ok = ok && submit(st->b, st->a, &ctx, &r, st->b->o.probe_timeout_ms, probe_done, pa,
                              NULL) == 0;
        }
        sb_preq_free(&r);
        if (!ok) {
            free(pa);
            pthread_mutex_lock(&st->mu);
            st->outcome[i] = P_UNKNOWN;
            st->pending--;
            st->refs--; /* never reaches zero here: the caller holds one */
            pthread_mutex_unlock(&st->mu);
        } else {
            started++;
        }
    }
    return started ? 0 : -1;
}

static void admit(sb_mcp_call *c, void *ud)
{
    sb_bridge *b = ud;
    size_t plen;
    const sb_principal *p = sb_mcp_call_principal(c, &plen);
    if (!sb_principal_ok(p, plen) || p->anonymous) {
        sb_mcp_admit_ok(c, "");
        return;
    }
    const sb_adapter *a = sb_adapter_find(p->provider);
    if (!a) {
        count_admission(b, p->provider, "refused");
        sb_mcp_admit_refuse(c, 404, NULL, NULL);
        return;
    }
    /* 0. a region an OAuth grant recorded (verified with the provider at sign-in) */
    if (p->region[0] && (!p->region_pin[0] || strcmp(p->region, p->region_pin) == 0)) {
        count_admission(b, p->provider, "grant");
        sb_mcp_admit_ok(c, p->instance[0] ? "private" : p->region);
        return;
    }
    /* 1. the region pinned in the path (verified below); 2. a cached detection */
    char cached[24];
    if (!p->instance[0] && cache_get(b, p->fingerprint, cached, sizeof cached) &&
        (!p->region_pin[0] || strcmp(cached, p->region_pin) == 0)) {
        count_admission(b, p->provider, "cached");
        sb_mcp_admit_ok(c, cached);
        return;
    }
    probe_state *st = calloc(1, sizeof *st);
    if (!st) {
        count_admission(b, p->provider, "refused");
        sb_mcp_admit_refuse(c, 503, NULL, NULL);
        return;
    }
    pthread_mutex_init(&st->mu, NULL);
    st->refs = 1;
    st->b = b;
    sb_mcp_call_ref(c);
    st->call = c;
    st->a = a;
    memcpy(&st->p, p, plen); /* the rest of st->p stays zero (calloc) */
    if (p->region_pin[0]) {
        st->phase = 1;
        sb_strlcpy(st->regions[0], p->instance[0] ? "private" : p->region_pin,
                   sizeof st->regions[0]);
        st->n = 1;
    } else {
        /* 3. detect: probe every region of the provider in parallel; the first 2xx wins */
        st->phase = 2;
        for (size_t i = 0; i < b->o.regions->n && st->n < SB_MAX_REGIONS; i++)
            if (strcmp(b->o.regions->r[i].provider, p->provider) == 0)
                sb_strlcpy(st->regions[st->n++], b->o.regions->r[i].name, sizeof st->regions[0]);
    }
    if (start_probes(st) < 0) after_probe(st);
    probe_release(st);
}

/* ---- visibility ---------------------------------------------------------------------------- */

/* 1 if name is an item of the comma-separated list. */
static int in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && strncmp(p, name, n) == 0) return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

/* a's entry for tool t (NULL when a does not serve it) */
static const sb_ptool *adapter_tool(const sb_bridge *b, const sb_adapter *a, const sb_tool *t)
{
    if (t->index < TOOL_SLOTS && b->slot_tool[t->index] == t)
        for (size_t k = 0; k < SB_N_ADAPTERS; k++)
            if (sb_adapter_at(k) == a) return b->slot_ptool[k][t->index];
    return sb_adapter_tool(a, t->name);
}

static int visible(const sb_tool *t, const void *principal, char *www, size_t wwwlen, void *ud)
{
    sb_bridge *b = ud;
    const sb_principal *p = principal;
    if (!p || p->anonymous) return 0;
    const sb_adapter *a = sb_adapter_find(p->provider);
    if (!a || !adapter_tool(b, a, t)) return 1;
    if (p->tools[0] && !in_list(p->tools, t->name)) {
        /* a signbridge key limited to some tools: the others are out of its scope */
        snprintf(www, wwwlen,
                 "Bearer error=\"insufficient_scope\", "
                 "resource_metadata=\"%s/.well-known/oauth-protected-resource%s\", "
                 "error_description=\"this key may call only: %.300s\"",
                 b->o.public_url, p->route, p->tools);
        return 2;
    }
    if (p->read_only && !t->read_only) {
        snprintf(www, wwwlen,
                 "Bearer error=\"insufficient_scope\", scope=\"signbridge.read signbridge.write\", "
                 "resource_metadata=\"%s/.well-known/oauth-protected-resource%s\", "
                 "error_description=\"this connection is read-only\"",
                 b->o.public_url, p->route);
        return 2;
    }
    return 0;
}

/* ---- tool calls ---------------------------------------------------------------------------- */

#define IDEM_KEY_MAX (SB_FP_HEX + 300) /* fingerprint|tool|idempotency_key, cut to fit */

typedef struct tool_job {
    sb_bridge *b;
    sb_mcp_call *call;
    cJSON *args;
    const sb_adapter *a;
    const sb_ptool *pt;
    char provider[16], region[24];
    char *base;                 /* the region's REST base URL (owned) */
    unsigned timeout_ms;
    uint64_t deadline_ms;
    sb_pstep step;
    int action;                 /* not read-only: idempotency, confirmation and audit apply */
    char *idem_key;             /* NULL unless the call carries an idempotency_key (owned,
                                 * IDEM_KEY_MAX bytes); dropped with drop_idem_key */
    char upstream_request_id[128];
    int fetching;               /* the current step fetches a caller's file URL */
    uint64_t submit_us;         /* when the current step was submitted (metrics) */
    const char *m_outcome;      /* NULL: ok or error from the result; else this outcome label */
} tool_job;

/* signbridge_tool_calls_total: outcome is ok, error, declined or replayed. */
static void count_tool(sb_bridge *b, sb_mcp_call *c, const char *provider, const char *region,
                       const char *outcome)
{
    const sb_tool *t = sb_mcp_call_tool(c);
    const char *l[] = {t ? t->name : "", provider, region, outcome};
    sb_metrics_inc(sb_metrics_series(b->m_tools, l));
}

static void cancel_upstream(sb_mcp_call *c, void *arg)
{
    (void)c;
    sb_up_cancel(g_up, (uint64_t)(uintptr_t)arg);
}

/* The job no longer speaks for its idempotency record (another call's, or none was made). */
static void drop_idem_key(tool_job *j)
{
    free(j->idem_key);
    j->idem_key = NULL;
}

static void job_free(tool_job *j)
{
    free(j->base);
    drop_idem_key(j);
    sb_mcp_call_release(j->call);
    cJSON_Delete(j->args);
    cJSON_Delete(j->step.scratch);
    free(j);
}


/* ---- finishing a tool call: idempotency records, audit, result size ------------------------- */

static cJSON *error_result(const char *text)
{
    cJSON *r = cJSON_CreateObject();
    cJSON *content = cJSON_AddArrayToObject(r, "content");
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "type", "text");
    cJSON_AddStringToObject(t, "text", text);
    cJSON_AddItemToArray(content, t);
    cJSON_AddBoolToObject(r, "isError", 1);
    return r;
}

static void idem_complete(sb_bridge *b, const char *key, const cJSON *result, int store);
static void audit(sb_bridge *b, tool_job *j, const char *outcome, const cJSON *result);

/* Every outcome of a tool call goes through here: it is recorded for idempotent replays (when
 * `store`), audited for actions, and handed to the engine (result taken). */
static void job_finish(tool_job *j, cJSON *result, int store)
{
    int is_error = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(result, "isError"));
    cJSON *sc = cJSON_GetObjectItemCaseSensitive(result, "structuredContent");
    if (j->action && sc && !cJSON_GetObjectItemCaseSensitive(sc, "outcome")) {
        cJSON_AddStringToObject(sc, "outcome", "done");
        /* keep the text copy identical to the structured content */
        cJSON *content = cJSON_GetObjectItemCaseSensitive(result, "content");
        cJSON *last = content ? cJSON_GetArrayItem(content, cJSON_GetArraySize(content) - 1) : NULL;
        const char *type = sb_jstr(last, "type");
        if (type && strcmp(type, "text") == 0) {
            char *txt = sb_json_print(sc);
            if (txt) cJSON_ReplaceItemInObjectCaseSensitive(last, "text", cJSON_CreateString(txt));
            free(txt);
        }
    }
    if (j->action) audit(j->b, j, is_error ? "error" : "ok", result);
    count_tool(j->b, j->call, j->provider, j->region,
               j->m_outcome ? j->m_outcome : is_error ? "error" : "ok");
    if (j->idem_key) idem_complete(j->b, j->idem_key, result, store);
    sb_mcp_call_result(j->call, result);
}

__attribute__((format(printf, 3, 4))) static void job_error(tool_job *j, int store,
                                                            const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    job_finish(j, error_result(msg), store);
}

#define MAX_RESULT_TEXT 100000 /* clients reject or cut longer tool results (Claude ~150k) */
#define MAX_RESULT_JSON ((size_t)64 << 20) /* a result written as text, before it is cut */

/* Keep a list result's JSON under MAX_RESULT_TEXT: drop items from the end, and say so. */
static char *fit_text(cJSON *structured)
{
    char *txt = sb_json_print(structured);
    static const char *const lists[] = {"documents", "templates", "contacts", "users", "teams",
                                        "events"};
    cJSON *arr = NULL;
    for (size_t i = 0; i < sizeof lists / sizeof lists[0] && !arr; i++) {
        cJSON *a = cJSON_GetObjectItemCaseSensitive(structured, lists[i]);
        if (cJSON_IsArray(a)) arr = a;
    }
    if (!txt || strlen(txt) <= MAX_RESULT_TEXT || !arr) return txt;
    int before = cJSON_GetArraySize(arr);
    while (txt && strlen(txt) > MAX_RESULT_TEXT - 400 && cJSON_GetArraySize(arr) > 0) {
        /* drop a proportional share at once, then one by one */
        int n = cJSON_GetArraySize(arr);
        int drop = (int)((double)n * (double)(strlen(txt) - MAX_RESULT_TEXT) / (double)strlen(txt));
        if (drop < 1) drop = 1;
        while (drop-- > 0 && cJSON_GetArraySize(arr) > 0)
            cJSON_DeleteItemFromArray(arr, cJSON_GetArraySize(arr) - 1);
        free(txt);
        txt = sb_json_print(structured);
    }
    int after = cJSON_GetArraySize(arr);
    char note[400];
    snprintf(note, sizeof note,
             "This page was cut from %d to %d items to stay under the %d-character limit of tool "
             "results; ask again with page_size=%d to page through every item.",
             before, after, MAX_RESULT_TEXT, after > 0 ? after : 1);
    if (cJSON_GetObjectItemCaseSensitive(structured, "note"))
        cJSON_ReplaceItemInObjectCaseSensitive(structured, "note", cJSON_CreateString(note));
    else
        cJSON_AddStringToObject(structured, "note", note);
    free(txt);
    return sb_json_print(structured);
}

static void tool_result(tool_job *j, cJSON *structured)
{
    if (!j->action && !j->idem_key) {
        /* the hot path (reads): serialize once */
        char *txt = fit_text(structured);
        count_tool(j->b, j->call, j->provider, j->region, "ok");
        sb_mcp_call_tool_json(j->call, structured, txt);
        return;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON *content = cJSON_AddArrayToObject(r, "content");
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "type", "text");
    char *txt = fit_text(structured);
    cJSON_AddStringToObject(t, "text", txt ? txt : "{}");
    free(txt);
    cJSON_AddItemToArray(content, t);
    cJSON_AddItemToObject(r, "structuredContent", structured);
    job_finish(j, r, 1);
}

/* A result the adapter wrote as JSON text (SB_PMAP_JSON; the text is taken). */
static void tool_result_json(tool_job *j, sb_buf *json)
{
    if (!j->action && !j->idem_key && json->len <= MAX_RESULT_TEXT) {
        /* the hot path (a page of documents): no tree at all */
        count_tool(j->b, j->call, j->provider, j->region, "ok");
        sb_mcp_call_tool_json(j->call, NULL, sb_buf_detach(json, NULL));
        return;
    }
    /* the rare ones (a page over what clients take, to be cut; a recorded result) use the tree */
    cJSON *tree = json->data ? sb_json_parse(json->data, json->len) : NULL;
    sb_buf_free(json);
    if (!tree) {
        job_error(j, 0, "signbridge could not build this result; try again.");
        return;
    }
    tool_result(j, tree);
}

static void tool_done(const sb_up_result *r, void *arg);

/* Send one step's request with the caller's credential (unless the step says otherwise). */
static int start_step(tool_job *j, sb_preq *r)
{
    /* Once submitted, the job may complete and be freed on another thread: read what we need
     * first, and hold the call across the submission. */
    sb_mcp_call *call = j->call;
    int first = j->step.step == 0;
    sb_mcp_call_ref(call);
    size_t plen;
    const sb_principal *p = sb_mcp_call_principal(call, &plen);
    sb_pctx ctx = {.provider = j->provider, .region = j->region, .base_url = j->base,
                   .key = p->cred.secret, .key_len = p->cred.len, .request_id = p->request_id,
                   .bearer = p->upstream_bearer};
    uint64_t now = sb_mono_ms();
    unsigned left = j->deadline_ms > now + 50 ? (unsigned)(j->deadline_ms - now) : 50;
    uint64_t id = 0;
    int rc;
    j->fetching = r->no_auth;
    j->submit_us = sb_mono_us();
    if (r->no_auth) {
        sb_up_request rq = {.method = r->method, .url = r->url.data,
                            .headers = (const char *const *)r->headers,
                            .body = r->body.len ? r->body.data : NULL, .body_len = r->body.len,
                            .idempotent = r->idempotent, .timeout_ms = left,
                            .max_response = r->max_response, .local = 1};
        rc = sb_up_submit(g_up, &rq, tool_done, j, &id);
    } else {
        rc = submit(j->b, j->a, &ctx, r, left, tool_done, j, &id);
    }
    /* j may be gone from here on */
    if (rc == 0 && first) sb_mcp_call_on_cancel(call, cancel_upstream, (void *)(uintptr_t)id);
    sb_mcp_call_release(call);
    return rc;
}

static void http_error(tool_job *j, const sb_up_result *r, sb_presp *pr)
{
    int store = r->status >= 400 && r->status < 500 && r->status != 408 && r->status != 409 &&
                r->status != 429;
    if (j->fetching) {
        job_error(j, 0, "Fetching the file URL you gave failed (HTTP %d): nothing was sent to %s. "
                        "Check that the URL is public and returns the file, or send the file as "
                        "base64.",
                  r->status, j->a->display);
        return;
    }
    const char *prov = j->a->display, *region = j->region;
    char pmsg[400];
    j->a->error_message(pr, pmsg, sizeof pmsg);
    const char *sep = pmsg[0] ? ": " : "";
    int st = r->status;
    if (st == 401)
        job_error(j, store, "%s rejected the API key in region %s (401)%s%s. The key may "
                                  "have been revoked or rotated: reconnect with a valid key.",
                               prov, region, sep, pmsg);
    else if (st == 403 && strstr(pmsg, "Invalid Document ID"))
        job_error(j, store, "%s says the document is not available (403%s%s). A document "
                                  "sent moments ago is still being processed: try again in 2 s; "
                                  "otherwise check the id with list_documents.",
                               prov, sep, pmsg);
    else if (st == 403)
        job_error(j, store, "%s refused this (403)%s%s. The key lacks the permission, or the "
                                  "item belongs to someone else.",
                               prov, sep, pmsg);
    else if (st == 404 || st == 410)
        job_error(j, store, "%s found no such item (%d)%s%s. Check the id with the matching "
                                  "list tool.",
                               prov, st, sep, pmsg);
    else if (st == 409)
        job_error(j, store, "%s is still processing this (409)%s%s. Try again in a few "
                                  "seconds.",
                               prov, sep, pmsg);
    else if (st == 429) {
        const char *ra = sb_up_header(r, "Retry-After");
        char wait[32] = "a minute";
        if (ra) {
            snprintf(wait, sizeof wait, "%s s", ra);
        } else if ((ra = sb_up_header(r, "X-RateLimit-Reset"))) {
            int64_t v;
            if (sb_parse_i64(ra, 0, INT64_MAX / 2, &v) == 0) {
                int64_t d = v > 1000000000 ? v - (int64_t)(sb_wall_ms() / 1000) : v;
                snprintf(wait, sizeof wait, "%lld s", (long long)(d < 1 ? 1 : d));
            }
        }
        job_error(j, store, "%s rate limit reached (429)%s%s. Retry after %s.", prov, sep,
                               pmsg, wait);
    } else if (st >= 400 && st < 500)
        job_error(j, store, "%s rejected the request (%d)%s%s. Fix the arguments and try "
                                  "again.",
                               prov, st, sep, pmsg);
    else
        job_error(j, store, "%s failed (%d)%s%s. This is on the provider's side: try again "
                                  "later.",
                               prov, st, sep, pmsg);
}

static void transport_error(tool_job *j, const sb_up_result *r)
{
    if (j->fetching && r->error == SB_UP_EREFUSED) {
        job_error(j, 0, "signbridge refused to fetch the file URL you gave (%s): nothing was sent "
                        "to %s. Use an https URL on the public internet, or send the file as "
                        "base64.",
                  r->error_text, j->a->display);
        return;
    }
    if (j->fetching && r->error != SB_UP_ECANCELLED) {
        job_error(j, 0, "Fetching the file URL you gave failed (%s): nothing was sent to %s. Use a "
                        "public https URL that answers quickly with a file of at most 25 MB, or "
                        "send the file as base64.",
                  r->error_text, j->a->display);
        return;
    }
    const char *prov = j->a->display, *region = j->region;
    int action = j->action;
    const int store = 0; /* transient: a retry with the same key may try again */
    switch (r->error) {
    case SB_UP_ECANCELLED:
        /* the call is over (cancelled); release waiters of the same key */
        if (j->idem_key) idem_complete(j->b, j->idem_key, NULL, 0);
        break;
    case SB_UP_ETIMEDOUT:
        job_error(j, store, "%s (%s) did not answer within %u s. %s", prov, region,
                               j->timeout_ms / 1000,
                               action ? "The action may or may not have happened: check with "
                                        "get_document before trying again."
                                      : "Try again in a moment.");
        break;
    case SB_UP_ECONNECT:
        job_error(j, store, "signbridge could not reach %s (%s): %s. Try again later.", prov,
                               region, r->error_text);
        break;
    case SB_UP_ETOOBIG:
        job_error(j, store, "%s's answer was too large (%s). %s", prov, r->error_text,
                  action ? "The action may or may not have happened: check with get_document "
                           "before trying again."
                         : "Ask for less (a smaller page_size).");
        break;
    case SB_UP_EREFUSED:
        job_error(j, store, "signbridge refused to fetch this: %s. Use an https URL on the "
                                  "public internet, or send the file as base64.",
                               r->error_text);
        break;
    default:
        job_error(j, store, "The connection to %s (%s) failed: %s. %s", prov, region,
                               r->error_text,
                               action ? "The action may or may not have happened: check with "
                                        "get_document before trying again."
                                      : "Try again.");
    }
}

/* Return a file: embedded when small, else a short-lived signbridge link. */
static void blob_result(tool_job *j, cJSON *meta)
{
    sb_bridge *b = j->b;
    const sb_pstep *s = &j->step;
    cJSON_AddNumberToObject(meta, "size_bytes", (double)s->blob_len);
    if (!cJSON_GetObjectItemCaseSensitive(meta, "file_name"))
        cJSON_AddStringToObject(meta, "file_name", s->filename[0] ? s->filename : "document.pdf");
    if (!cJSON_GetObjectItemCaseSensitive(meta, "mime_type"))
        cJSON_AddStringToObject(meta, "mime_type", s->mime[0] ? s->mime : "application/pdf");
    const char *fname = sb_jstr(meta, "file_name"), *mime = sb_jstr(meta, "mime_type");
    cJSON *r = cJSON_CreateObject();
    cJSON *content = cJSON_AddArrayToObject(r, "content");
    if (s->blob_len <= b->o.embed_max_bytes) {
        cJSON_AddStringToObject(meta, "delivery", "embedded");
        char *b64 = malloc(sb_base64_len(s->blob_len) + 1);
        if (!b64) {
            cJSON_Delete(r);
            cJSON_Delete(meta);
            job_error(j, 0, "signbridge is out of memory; try again.");
            return;
        }
        sb_base64_encode((const unsigned char *)s->blob, s->blob_len, b64);
        cJSON *res = cJSON_CreateObject();
        cJSON_AddStringToObject(res, "type", "resource");
        cJSON *rr = cJSON_AddObjectToObject(res, "resource");
        char uri[400];
        snprintf(uri, sizeof uri, "signbridge://%s/documents/%s/%s", j->provider,
                 sb_jstr(meta, "document_id") ? sb_jstr(meta, "document_id") : "file", fname);
        cJSON_AddStringToObject(rr, "uri", uri);
        cJSON_AddStringToObject(rr, "mimeType", mime);
        cJSON_AddStringToObject(rr, "blob", b64);
        free(b64);
        cJSON_AddItemToArray(content, res);
    } else {
        char token[64], url[700];
        if (sb_bridge_file_put(b, s->blob, s->blob_len, mime, fname, token, sizeof token) < 0) {
            cJSON_Delete(r);
            cJSON_Delete(meta);
            job_error(j, 0, "The file (%zu bytes) is too large to hand over right now; try again "
                            "later.",
                      s->blob_len);
            return;
        }
        snprintf(url, sizeof url, "%s/files/%s", b->o.public_url, token);
        cJSON_AddStringToObject(meta, "delivery", "link");
        cJSON_AddStringToObject(meta, "url", url);
        sb_jadd_epoch(meta, "expires_at", (double)(sb_wall_ms() / 1000 + b->o.file_ttl_s));
        cJSON *l = cJSON_CreateObject();
        cJSON_AddStringToObject(l, "type", "resource_link");
        cJSON_AddStringToObject(l, "uri", url);
        cJSON_AddStringToObject(l, "name", fname);
        cJSON_AddStringToObject(l, "mimeType", mime);
        cJSON_AddStringToObject(l, "description", "Short-lived download link (no credential needed)");
        cJSON_AddItemToArray(content, l);
    }
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "type", "text");
    char *txt = cJSON_PrintUnformatted(meta);
    cJSON_AddStringToObject(t, "text", txt ? txt : "{}");
    free(txt);
    cJSON_AddItemToArray(content, t);
    cJSON_AddItemToObject(r, "structuredContent", meta);
    job_finish(j, r, 1);
}

static void free_tree(void *arena)
{
    sb_arena_free(arena);
}

static void process_result(tool_job *j, const sb_up_result *r)
{
    sb_mcp_call *c = j->call;
    if (r->error != SB_UP_OK) {
        transport_error(j, r);
        job_free(j);
        return;
    }
    const char *urid = sb_up_header(r, "X-Request-Id");
    if (!urid) urid = sb_up_header(r, "X-Correlation-Id");
    if (urid) sb_strlcpy(j->upstream_request_id, urid, sizeof j->upstream_request_id);
    sb_presp pr = {.status = r->status, .body = r->body, .len = r->body_len};
    /* the answer's tree lives in an arena, released in one go: mappers and error messages only
     * read it and copy what they keep (sb_json_parse_in), in an arena bounded by
     * sb_json_arena_bound */
    sb_arena *tree = NULL;
    if (r->body_len) {
        tree = sb_arena_new(sb_json_arena_bound(r->body_len));
        pr.json = sb_json_parse_in(r->body, r->body_len, tree);
    }
    if (r->status < 200 || r->status >= 300) {
        http_error(j, r, &pr);
        sb_arena_free(tree);
        job_free(j);
        return;
    }
    sb_pctx ctx = {.provider = j->provider, .region = j->region, .base_url = j->base};
    cJSON *out = NULL;
    char err[300] = "";
    sb_preq_init(&j->step.next, "GET", 1);
    sb_buf_init(&j->step.json, MAX_RESULT_JSON);
    int rc = j->pt->map(&ctx, j->args, &pr, &j->step, &out, err, sizeof err);
    if (rc == SB_PMAP_DONE && out) {
        tool_result(j, out);
    } else if (rc == SB_PMAP_JSON) {
        cJSON_Delete(out);
        tool_result_json(j, &j->step.json);
    } else if (rc == SB_PMAP_BLOB && out && j->step.blob) {
        blob_result(j, out);
    } else if (rc == SB_PMAP_NEXT && !sb_mcp_call_done(c)) {
        cJSON_Delete(out);
        sb_preq next = j->step.next;
        sb_preq_init(&j->step.next, "GET", 1);
        j->step.step++;
        sb_arena_free(tree);
        sb_buf_free(&j->step.json);
        int sr = start_step(j, &next);
        sb_preq_free(&next);
        if (sr == 0) return; /* the job lives on */
        job_error(j, 0, "signbridge is shutting down or out of memory; try again.");
        job_free(j);
        return;
    } else if (rc == SB_PMAP_FAIL) {
        cJSON_Delete(out);
        job_error(j, 1, "%s", err[0] ? err : "The provider refused this.");
    } else if (rc == SB_PMAP_NEXT) {
        /* cancelled between steps: nothing more is sent */
        if (j->idem_key) idem_complete(j->b, j->idem_key, NULL, 0);
    } else {
        cJSON_Delete(out);
        if (r->body_len && !pr.json)
            job_error(j, 0, "%s returned a malformed response (not JSON, %zu bytes). %s",
                      j->a->display, r->body_len,
                      j->action ? "The action may or may not have happened: check with "
                                  "get_document before trying again."
                                : "Try again; if it persists the provider has a problem.");
        else
            job_error(j, 0, "%s returned an answer signbridge does not understand: %s.",
                      j->a->display, err[0] ? err : "unexpected shape");
    }
    sb_preq_free(&j->step.next);
    sb_buf_free(&j->step.json);
    /* the answer's tree goes once this turn's answers are sent (sb_later) */
    sb_later(free_tree, tree);
    job_free(j);
}

/* An upstream answer copied off the engine thread: mapping, validation and serialization run on
 * the HTTP worker that delivers the call (sb_mcp_call_defer), so they use every core. */
typedef struct up_copy {
    tool_job *j;
    int error, status;
    unsigned attempts;
    char *error_text, *body, *hdrs;
    size_t body_len;
} up_copy;

static void process_copy(sb_mcp_call *c, void *arg)
{
    (void)c;
    up_copy *u = arg;
    sb_up_result r = {.error = u->error, .status = u->status,
                      .error_text = u->error_text ? u->error_text : "",
                      .body = u->body ? u->body : "", .body_len = u->body_len,
                      .attempts = u->attempts, .hdrs_ = u->hdrs};
    process_result(u->j, &r);
    free(u->error_text);
    free(u->body);
    free(u->hdrs);
    free(u);
}

/* Keep only the headers process_result reads. */
static char *pick_headers(const sb_up_result *r)
{
    static const char *const names[] = {"Retry-After", "X-RateLimit-Reset", "X-Request-Id",
                                        "X-Correlation-Id", "Content-Type"};
    sb_buf b;
    sb_buf_init(&b, 8192);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = sb_up_header(r, names[i]);
        if (v) sb_buf_printf(&b, "%s: %s\r\n", names[i], v);
    }
    return sb_buf_detach(&b, NULL);
}

static void tool_done(const sb_up_result *r, void *arg)
{
    tool_job *j = arg;
    if (!j->fetching) /* a caller's file URL is not the provider */
        count_upstream(j->b, j->provider, j->region, r->error, r->status, j->submit_us);
    up_copy *u = calloc(1, sizeof *u);
    if (u) {
        u->j = j;
        u->error = r->error;
        u->status = r->status;
        u->attempts = r->attempts;
        u->error_text = strdup(r->error_text ? r->error_text : "");
        u->body_len = r->body_len;
        /* the engine's buffers change hands (an ~18 KB list answer is not copied) */
        if (u->error_text && sb_up_take(r, &u->body, &u->hdrs) < 0) {
            u->body = malloc(r->body_len + 1);
            if (u->body) {
                memcpy(u->body, r->body, r->body_len);
                u->body[r->body_len] = '\0';
            }
            u->hdrs = pick_headers(r);
        }
    }
    if (!u || !u->body || !u->error_text || !u->hdrs) {
        if (u) {
            free(u->error_text);
            free(u->body);
            free(u->hdrs);
            free(u);
        }
        process_result(j, r); /* out of memory: do it here */
        return;
    }
    sb_mcp_call_defer(j->call, process_copy, u);
}

/* ---- idempotency records ---------------------------------------------------------------- */

typedef struct idem_entry {
    struct idem_entry *next;
    char key[SB_FP_HEX + 300];
    unsigned char args_hash[32];
    int done;
    int stored;   /* this process claimed the store's record (ns "idem") for the key */
    char *result; /* the CallToolResult JSON of the first outcome */
    uint64_t expires_ms;
    sb_mcp_call **waiters;
    size_t nwait, capwait;
} idem_entry;

/* Canonical JSON: object members sorted by name (recursively), so a retry whose client orders
 * the arguments differently still matches. */
static void canonicalize(cJSON *v)
{
    if (cJSON_IsArray(v)) {
        cJSON *e;
        cJSON_ArrayForEach(e, v) canonicalize(e);
        return;
    }
    if (!cJSON_IsObject(v)) return;
    /* insertion sort of the child list by key */
    cJSON *sorted = NULL;
    cJSON *it = v->child;
    while (it) {
        cJSON *next = it->next;
        it->prev = it->next = NULL;
        canonicalize(it);
        cJSON **pp = &sorted;
        while (*pp && strcmp((*pp)->string, it->string) <= 0) pp = &(*pp)->next;
        it->next = *pp;
        *pp = it;
        it = next;
    }
    /* rebuild prev links (cJSON keeps child->prev pointing at the last element) */
    cJSON *prev = NULL, *last = NULL;
    for (cJSON *e = sorted; e; e = e->next) {
        e->prev = prev;
        prev = e;
        last = e;
    }
    if (sorted) sorted->prev = last;
    v->child = sorted;
}

static void args_hash(const cJSON *args, unsigned char out[32])
{
    cJSON *c = cJSON_Duplicate(args, 1);
    cJSON_DeleteItemFromObjectCaseSensitive(c, "idempotency_key");
    canonicalize(c);
    char *s = cJSON_PrintUnformatted(c);
    SHA256((const unsigned char *)(s ? s : ""), s ? strlen(s) : 0, out);
    free(s);
    cJSON_Delete(c);
}

static void idem_expire_locked(sb_bridge *b, uint64_t now)
{
    if (now - b->idem_last_sweep < 10000) return;
    b->idem_last_sweep = now;
    for (idem_entry **pp = &b->idem; *pp;) {
        idem_entry *e = *pp;
        if (e->done && e->expires_ms <= now) {
            *pp = e->next;
            free(e->result);
            free(e->waiters);
            free(e);
            b->nidem--;
        } else {
            pp = &e->next;
        }
    }
}

/* Shared records (ns "idem"): key = hex(SHA-256(fingerprint|tool|idempotency_key)); value
 * {"s":"pending","h":args hash} while the first call runs (TTL idempotency_pending_ttl_s), then
 * {"s":"done","h":args hash,"r":CallToolResult} (TTL idempotency_ttl_s). A transient failure
 * deletes the record, so a retry may try again. */
static void hex32(const unsigned char h[32], char out[65])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hx[h[i] >> 4];
        out[2 * i + 1] = hx[h[i] & 15];
    }
    out[64] = '\0';
}

static void idem_store_key(const char *key, char out[65])
{
    unsigned char h[32];
    SHA256((const unsigned char *)key, strlen(key), h);
    hex32(h, out);
}

/* Parse a shared record: 1 done (then *result is the detached CallToolResult, caller's), 0 pending,
 * -1 unreadable. *hash_ok says whether it was made with the same arguments. */
static int idem_parse(const sb_store_rec *rec, const unsigned char h[32], int *hash_ok,
                      cJSON **result)
{
    *result = NULL;
    *hash_ok = 0;
    cJSON *o = cJSON_ParseWithLength((const char *)rec->value, rec->len);
    const char *st = sb_jstr(o, "s"), *hs = sb_jstr(o, "h");
    int rc = -1;
    if (st && hs) {
        char want[65];
        hex32(h, want);
        *hash_ok = strcmp(hs, want) == 0;
        if (strcmp(st, "done") == 0) {
            *result = cJSON_DetachItemFromObjectCaseSensitive(o, "r");
            rc = *result ? 1 : -1;
        } else if (strcmp(st, "pending") == 0) {
            rc = 0;
        }
    }
    cJSON_Delete(o);
    return rc;
}

/* A first call running in another process: poll its record from the event loop until it has an
 * outcome, within the call's deadline. */
typedef struct idem_wait {
    sb_bridge *b;
    char skey[65];
    unsigned char h[32];
    uint64_t deadline_ms;
} idem_wait;

static void idem_poll(sb_mcp_call *c, void *arg)
{
    idem_wait *w = arg;
    if (sb_mcp_call_done(c)) {
        free(w);
        return;
    }
    sb_store_rec rec;
    int rc = sb_store_get(w->b->o.store, "idem", w->skey, &rec);
    if (rc == SB_STORE_NOTFOUND) {
        free(w);
        sb_mcp_call_result(c, error_result("The first call with this idempotency_key did not "
                                           "finish (it failed, was cancelled or its signbridge "
                                           "stopped). Check the outcome (e.g. with get_document) "
                                           "before retrying."));
        return;
    }
    if (rc == 0) {
        int hash_ok;
        cJSON *r;
        int st = idem_parse(&rec, w->h, &hash_ok, &r);
        sb_store_rec_free(&rec);
        if (st == 1) {
            free(w);
            sb_mcp_call_result(c, r);
            return;
        }
    }
    if (sb_mono_ms() >= w->deadline_ms ||
        sb_mcp_call_after(c, 200, idem_poll, w) < 0) {
        free(w);
        sb_mcp_call_result(c, error_result("The first call with this idempotency_key is still in "
                                           "progress (on another signbridge instance). Nothing "
                                           "was sent again. Retry with the same key in a minute "
                                           "to get its outcome, or check with get_document."));
    }
}

/* Replay a stored result to a call (a fresh copy). */
static void replay(sb_mcp_call *c, const char *json)
{
    cJSON *r = json ? cJSON_Parse(json) : NULL;
    if (!r)
        r = error_result("The first call with this idempotency_key did not finish (it was "
                         "cancelled or signbridge stopped). Check the outcome (e.g. with "
                         "get_document) before retrying with a new key.");
    sb_mcp_call_result(c, r);
}

static void idem_complete(sb_bridge *b, const char *key, const cJSON *result, int store)
{
    char *json = result ? cJSON_PrintUnformatted(result) : NULL;
    sb_mcp_call **waiters = NULL;
    size_t nwait = 0;
    int shared = 0;
    unsigned char h[32];
    pthread_mutex_lock(&b->idem_mu);
    for (idem_entry **pp = &b->idem; *pp; pp = &(*pp)->next) {
        idem_entry *e = *pp;
        if (strcmp(e->key, key) != 0 || e->done) continue;
        shared = e->stored;
        memcpy(h, e->args_hash, sizeof h);
        waiters = e->waiters;
        nwait = e->nwait;
        e->waiters = NULL;
        e->nwait = e->capwait = 0;
        if (store && json) {
            e->done = 1;
            e->result = strdup(json);
            e->expires_ms = sb_mono_ms() + (uint64_t)b->o.idempotency_ttl_s * 1000;
        } else {
            *pp = e->next;
            free(e);
            b->nidem--;
        }
        break;
    }
    pthread_mutex_unlock(&b->idem_mu);
    if (shared && b->o.store) {
        char skey[65], hs[65];
        idem_store_key(key, skey);
        hex32(h, hs);
        sb_buf v;
        sb_buf_init(&v, SB_STORE_MAX_VALUE);
        if (store && json &&
            sb_buf_printf(&v, "{\"s\":\"done\",\"h\":\"%s\",\"r\":%s}", hs, json) == 0) {
            if (sb_store_put(b->o.store, "idem", skey, v.data, v.len,
                             sb_store_now_ms() + (int64_t)b->o.idempotency_ttl_s * 1000,
                             NULL) != 0)
                sb_log_msg(SB_LOG_WARN, "idempotency", "could not record an outcome in the store");
        } else {
            sb_store_delete(b->o.store, "idem", skey, 0);
        }
        sb_buf_free(&v);
    }
    for (size_t i = 0; i < nwait; i++) {
        replay(waiters[i], json);
        sb_mcp_call_release(waiters[i]);
    }
    free(waiters);
    free(json);
}

/* 0: go ahead (a pending record now exists); 1: answered already (replayed, waiting, refused). */
static int idem_begin(sb_bridge *b, tool_job *j, const cJSON *args)
{
    unsigned char h[32];
    args_hash(args, h);
    pthread_mutex_lock(&b->idem_mu);
    idem_expire_locked(b, sb_mono_ms());
    idem_entry *e = b->idem;
    while (e && strcmp(e->key, j->idem_key) != 0) e = e->next;
    if (e && memcmp(e->args_hash, h, 32) != 0) {
        pthread_mutex_unlock(&b->idem_mu);
        drop_idem_key(j); /* do not touch the other call's record */
        job_error(j, 0, "This idempotency_key was already used with different arguments. Use a "
                        "new key for a new request, or repeat the first call's exact arguments.");
        return 1;
    }
    if (e && e->done) {
        char *json = strdup(e->result);
        pthread_mutex_unlock(&b->idem_mu);
        audit(b, j, "replayed", NULL);
        count_tool(b, j->call, j->provider, j->region, "replayed");
        replay(j->call, json);
        free(json);
        return 1;
    }
    if (e) {
        /* the first call with this key is still running: wait for its outcome */
        if (e->nwait == e->capwait) {
            size_t nc = e->capwait ? e->capwait * 2 : 4;
            sb_mcp_call **nw = realloc(e->waiters, nc * sizeof *nw);
            if (!nw) {
                pthread_mutex_unlock(&b->idem_mu);
                drop_idem_key(j);
                job_error(j, 0, "signbridge is out of memory; try again.");
                return 1;
            }
            e->waiters = nw;
            e->capwait = nc;
        }
        sb_mcp_call_ref(j->call);
        e->waiters[e->nwait++] = j->call;
        pthread_mutex_unlock(&b->idem_mu);
        audit(b, j, "replayed", NULL); /* answered with the first call's outcome when it ends */
        count_tool(b, j->call, j->provider, j->region, "replayed");
        return 1;
    }
    if (b->nidem >= b->o.idempotency_max) {
        pthread_mutex_unlock(&b->idem_mu);
        drop_idem_key(j);
        job_error(j, 0, "signbridge holds too many idempotency records right now; try again in "
                        "a minute.");
        return 1;
    }
    e = calloc(1, sizeof *e);
    if (!e) {
        pthread_mutex_unlock(&b->idem_mu);
        drop_idem_key(j);
        job_error(j, 0, "signbridge is out of memory; try again.");
        return 1;
    }
    sb_strlcpy(e->key, j->idem_key, sizeof e->key);
    memcpy(e->args_hash, h, 32);
    if (b->o.store) {
        /* claim the key across processes and replicas: exactly one first call sends */
        char skey[65], hs[65], val[120];
        idem_store_key(j->idem_key, skey);
        hex32(h, hs);
        int n = snprintf(val, sizeof val, "{\"s\":\"pending\",\"h\":\"%s\"}", hs);
        int created = 0;
        sb_store_rec ex = {0};
        int rc = sb_store_claim(
            b->o.store, "idem", skey, val, (size_t)n,
            sb_store_now_ms() + (int64_t)b->o.idempotency_pending_ttl_s * 1000, &created, NULL,
            &ex);
        if (rc == 0 && created) {
            e->stored = 1;
        } else {
            pthread_mutex_unlock(&b->idem_mu);
            free(e);
            drop_idem_key(j);
            if (rc != 0) {
                job_error(j, 0, "signbridge could not record this idempotency_key (its store did "
                                "not answer), so nothing was sent. Try again in a moment.");
                return 1;
            }
            int hash_ok;
            cJSON *r;
            int st = idem_parse(&ex, h, &hash_ok, &r);
            sb_store_rec_free(&ex);
            if (st < 0 || !hash_ok) {
                cJSON_Delete(r);
                job_error(j, 0, "This idempotency_key was already used with different arguments. "
                                "Use a new key for a new request, or repeat the first call's "
                                "exact arguments.");
                return 1;
            }
            audit(b, j, "replayed", NULL);
            count_tool(b, j->call, j->provider, j->region, "replayed");
            if (st == 1) {
                sb_mcp_call_result(j->call, r);
                return 1;
            }
            idem_wait *w = calloc(1, sizeof *w);
            if (w) {
                w->b = b;
                memcpy(w->skey, skey, sizeof w->skey);
                memcpy(w->h, h, sizeof w->h);
                w->deadline_ms = sb_mono_ms() + b->o.call_timeout_ms;
            }
            if (!w || sb_mcp_call_after(j->call, 100, idem_poll, w) < 0) {
                free(w);
                sb_mcp_call_result(j->call,
                                   error_result("The first call with this idempotency_key is "
                                                "still in progress; nothing was sent again. Retry "
                                                "with the same key in a minute."));
            }
            return 1;
        }
    }
    e->next = b->idem;
    b->idem = e;
    b->nidem++;
    pthread_mutex_unlock(&b->idem_mu);
    return 0;
}

/* ---- audit ------------------------------------------------------------------------------------ */

static void audit(sb_bridge *b, tool_job *j, const char *outcome, const cJSON *result)
{
    size_t plen;
    const sb_principal *p = sb_mcp_call_principal(j->call, &plen);
    cJSON *o = cJSON_CreateObject();
    char ts[40];
    sb_rfc3339(sb_wall_ms(), ts, sizeof ts);
    cJSON_AddStringToObject(o, "ts", ts);
    cJSON_AddStringToObject(o, "event", "audit");
    char fp[13] = "";
    if (p) sb_strlcpy(fp, p->fingerprint, sizeof fp);
    cJSON_AddStringToObject(o, "credential", fp);
    if (p && p->client[0]) cJSON_AddStringToObject(o, "oauth_client", p->client);
    if (p && p->key_id[0]) cJSON_AddStringToObject(o, "signbridge_key", p->key_id);
    cJSON_AddStringToObject(o, "provider", j->provider);
    cJSON_AddStringToObject(o, "region", j->region);
    cJSON_AddStringToObject(o, "tool", sb_mcp_call_tool(j->call)->name);
    cJSON *targets = cJSON_AddObjectToObject(o, "targets");
    static const char *const keys[] = {"document_id", "template_id", "contact_id"};
    for (size_t i = 0; i < 3; i++) {
        const char *v = sb_jstr(j->args, keys[i]);
        if (v) cJSON_AddStringToObject(targets, keys[i], v);
    }
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(result, "structuredContent");
    const char *created = sb_jstr(sc, "document_id");
    if (created && !sb_jstr(j->args, "document_id"))
        cJSON_AddStringToObject(targets, "document_id", created);
    const char *cid = sb_jstr(cJSON_GetObjectItemCaseSensitive(sc, "contact"), "id");
    if (cid && !sb_jstr(j->args, "contact_id")) cJSON_AddStringToObject(targets, "contact_id", cid);
    cJSON_AddStringToObject(o, "outcome", outcome);
    if (strcmp(outcome, "error") == 0) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(result, "content");
        const char *txt = sb_jstr(cJSON_GetArrayItem(content, 0), "text");
        if (txt) {
            char short_txt[240];
            sb_strlcpy(short_txt, txt, sizeof short_txt);
            cJSON_AddStringToObject(o, "error", short_txt);
        }
    }
    if (j->idem_key) cJSON_AddBoolToObject(o, "idempotency_key", 1);
    if (p) cJSON_AddStringToObject(o, "request_id", p->request_id);
    if (j->upstream_request_id[0])
        cJSON_AddStringToObject(o, "upstream_request_id", j->upstream_request_id);
    char *line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!line) return;
    size_t n = strlen(line);
    line[n] = '\n';
    pthread_mutex_lock(&b->audit_mu);
    ssize_t w = write(b->audit_fd, line, n + 1);
    (void)w;
    pthread_mutex_unlock(&b->audit_mu);
    free(line);
}

/* ---- confirmation (elicitation) and the start of a call ---------------------------------------- */

static void job_start_upstream(tool_job *j)
{
    size_t plen;
    const sb_principal *p = sb_mcp_call_principal(j->call, &plen);
    sb_pctx ctx = {.provider = j->provider, .region = j->region, .base_url = j->base,
                   .key = p->cred.secret, .key_len = p->cred.len, .request_id = p->request_id,
                   .bearer = p->upstream_bearer};
    sb_preq r;
    sb_preq_init(&r, "GET", 1);
    char err[400] = "";
    if (j->pt->build(&ctx, j->args, &j->step, &r, err, sizeof err) < 0) {
        sb_preq_free(&r);
        job_error(j, 0, "%s: %s.", j->a->display, err[0] ? err : "cannot build the request");
        job_free(j);
        return;
    }
    int rc = start_step(j, &r);
    sb_preq_free(&r);
    if (rc < 0) {
        job_error(j, 0, "signbridge is shutting down or out of memory; try again.");
        job_free(j);
    }
}

/* A readable summary of what an action will do, for the confirmation prompt: the arguments with
 * file contents elided. */
static void summarize(const sb_tool *t, const cJSON *args, const char *provider, char *out,
                      size_t cap)
{
    cJSON *c = cJSON_Duplicate(args, 1);
    cJSON_DeleteItemFromObjectCaseSensitive(c, "idempotency_key");
    cJSON *files = cJSON_GetObjectItemCaseSensitive(c, "files");
    cJSON *f;
    cJSON_ArrayForEach(f, files)
    {
        cJSON *b64 = cJSON_GetObjectItemCaseSensitive(f, "base64");
        if (cJSON_IsString(b64)) {
            char note[64];
            snprintf(note, sizeof note, "<%zu bytes of base64>", strlen(b64->valuestring));
            cJSON_ReplaceItemInObjectCaseSensitive(f, "base64", cJSON_CreateString(note));
        }
    }
    char *s = cJSON_Print(c);
    cJSON_Delete(c);
    const char *title = sb_jstr(t->contract, "title");
    snprintf(out, cap, "Confirm: %s on %s?\n%s", title ? title : t->name, provider, s ? s : "");
    free(s);
}

static void confirm_reply(sb_mcp_call *c, const cJSON *result, const cJSON *error, void *arg)
{
    tool_job *j = arg;
    (void)c;
    if (!result && !error) {
        /* the call ended (cancelled or timed out) before the user answered */
        if (j->idem_key) idem_complete(j->b, j->idem_key, NULL, 0);
        job_free(j);
        return;
    }
    const char *action = sb_jstr(result, "action");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(result, "content");
    int ok = action && strcmp(action, "accept") == 0 &&
             cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(content, "confirm"));
    if (ok) {
        job_start_upstream(j);
        return;
    }
    cJSON *sc = cJSON_CreateObject();
    cJSON_AddStringToObject(sc, "outcome", "declined_by_user");
    cJSON_AddStringToObject(sc, "provider", j->provider);
    cJSON_AddStringToObject(sc, "region", j->region);
    char msg[200];
    snprintf(msg, sizeof msg, "Nothing was done: the user %s the confirmation.",
             error ? "could not answer" : (action && strcmp(action, "cancel") == 0) ? "cancelled"
                                                                                   : "declined");
    cJSON_AddStringToObject(sc, "message", msg);
    cJSON *r = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(r, "content");
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "type", "text");
    char *txt = sb_json_print(sc);
    cJSON_AddStringToObject(t, "text", txt ? txt : msg);
    free(txt);
    cJSON_AddItemToArray(arr, t);
    cJSON_AddItemToObject(r, "structuredContent", sc);
    audit(j->b, j, "declined", NULL);
    if (j->idem_key) idem_complete(j->b, j->idem_key, NULL, 0); /* nothing to replay */
    drop_idem_key(j);
    j->action = 0; /* audited already */
    j->m_outcome = "declined";
    job_finish(j, r, 0);
    job_free(j);
}

static int wants_confirmation(const sb_bridge *b, const sb_tool *t)
{
    if (b->o.confirm == SB_CONFIRM_OFF || t->read_only) return 0;
    if (b->o.confirm == SB_CONFIRM_ALL) return 1;
    const cJSON *ann = cJSON_GetObjectItemCaseSensitive(t->contract, "annotations");
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ann, "destructiveHint")) ||
           strcmp(t->name, "send_document") == 0 || strcmp(t->name, "send_from_template") == 0;
}

static int tool_call(sb_mcp_call *c, const cJSON *args, void *ud)
{
    sb_bridge *b = ud;
    size_t plen;
    const sb_principal *p = sb_mcp_call_principal(c, &plen);
    const sb_tool *t = sb_mcp_call_tool(c);
    if (!sb_principal_ok(p, plen) || p->anonymous) {
        count_tool(b, c, "", "", "error");
        sb_mcp_call_tool_error(c, "This tool needs a provider API key: connect with X-API-Key.");
        return 0;
    }
    const sb_adapter *a = sb_adapter_find(p->provider);
    const sb_ptool *pt = a ? adapter_tool(b, a, t) : NULL;
    if (!pt) {
        count_tool(b, c, p->provider, sb_mcp_call_region(c), "error");
        sb_mcp_call_tool_error(c, "%s cannot do %s.", a ? a->display : p->provider, t->name);
        return 0;
    }
    const char *region = sb_mcp_call_region(c);
    tool_job *j = calloc(1, sizeof *j);
    if (!j) return -1;
    char base[512];
    if (base_for(b, p, region, base, sizeof base) < 0) {
        free(j);
        count_tool(b, c, p->provider, region, "error");
        sb_mcp_call_tool_error(c, "No %s region \"%s\" is configured.", a->display, region);
        return 0;
    }
    j->b = b;
    j->base = strdup(base);
    if (!j->base) {
        free(j);
        return -1;
    }
    j->a = a;
    j->pt = pt;
    j->action = !t->read_only;
    j->timeout_ms = b->o.call_timeout_ms;
    j->deadline_ms = sb_mono_ms() + b->o.call_timeout_ms;
    sb_strlcpy(j->provider, p->provider, sizeof j->provider);
    sb_strlcpy(j->region, region, sizeof j->region);
    j->step.scratch = cJSON_CreateObject();
    sb_mcp_call_ref(c);
    j->call = c;
    j->args = cJSON_Duplicate(args, 1);
    const char *ik = sb_jstr(args, "idempotency_key");
    if (j->action && ik) {
        /* scoped to the credential (and so the provider) and the tool */
        j->idem_key = malloc(IDEM_KEY_MAX);
        if (!j->idem_key) {
            job_free(j);
            return -1;
        }
        snprintf(j->idem_key, IDEM_KEY_MAX, "%s|%s|%s", p->fingerprint, t->name, ik);
        if (idem_begin(b, j, args) != 0) {
            job_free(j);
            return 0;
        }
    }
    if (wants_confirmation(b, t) && sb_mcp_call_client_has(c, "elicitation")) {
        char msg[4096];
        summarize(t, args, a->display, msg, sizeof msg);
        cJSON *params = cJSON_CreateObject();
        cJSON_AddStringToObject(params, "message", msg);
        cJSON *schema = cJSON_AddObjectToObject(params, "requestedSchema");
        cJSON_AddStringToObject(schema, "type", "object");
        cJSON *props = cJSON_AddObjectToObject(schema, "properties");
        cJSON *cf = cJSON_AddObjectToObject(props, "confirm");
        cJSON_AddStringToObject(cf, "type", "boolean");
        cJSON_AddStringToObject(cf, "title", "Go ahead");
        cJSON_AddStringToObject(cf, "description", "Check the details, then confirm to proceed.");
        cJSON_AddBoolToObject(cf, "default", 0);
        cJSON *req = cJSON_AddArrayToObject(schema, "required");
        cJSON_AddItemToArray(req, cJSON_CreateString("confirm"));
        if (sb_mcp_call_request(c, "elicitation/create", params, confirm_reply, j) == 0) return 0;
        /* could not ask: proceed as clients without elicitation do */
    }
    job_start_upstream(j);
    return 0;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

sb_bridge *sb_bridge_new(const sb_bridge_options *o)
{
    sb_bridge *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->o = *o;
    if (!b->o.idempotency_pending_ttl_s) b->o.idempotency_pending_ttl_s = 120;
    if (!b->o.call_timeout_ms) b->o.call_timeout_ms = 30000;
    if (!b->o.probe_timeout_ms) b->o.probe_timeout_ms = 5000;
    if (!b->o.cache_ttl_s) b->o.cache_ttl_s = 3600;
    if (!b->o.cache_max) b->o.cache_max = 100000;
    if (!b->o.embed_max_bytes) b->o.embed_max_bytes = 1 << 20;
    if (!b->o.file_ttl_s) b->o.file_ttl_s = 600;
    if (!b->o.file_store_max_bytes) b->o.file_store_max_bytes = (size_t)256 << 20;
    if (!b->o.idempotency_ttl_s) b->o.idempotency_ttl_s = 86400;
    if (!b->o.idempotency_max) b->o.idempotency_max = 200000;
    pthread_mutex_init(&b->cache_mu, NULL);
    pthread_mutex_init(&b->file_mu, NULL);
    pthread_mutex_init(&b->idem_mu, NULL);
    pthread_mutex_init(&b->audit_mu, NULL);
    b->audit_fd = 2;
    if (o->audit_path && *o->audit_path) {
        b->audit_fd = open(o->audit_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (b->audit_fd < 0) {
            pthread_mutex_destroy(&b->cache_mu);
            pthread_mutex_destroy(&b->file_mu);
            pthread_mutex_destroy(&b->idem_mu);
            pthread_mutex_destroy(&b->audit_mu);
            free(b);
            return NULL;
        }
    }
    g_up = o->up;
    sb_metrics *m = sb_metrics_global();
    b->m_tools = sb_metrics_family(
        m, SB_METRIC_COUNTER, "signbridge_tool_calls_total",
        "Tool calls answered, by tool, provider, region and outcome (ok, error, declined, "
        "replayed).",
        4, (const char *const[]){"tool", "provider", "region", "outcome"});
    b->m_up_duration = sb_metrics_family(
        m, SB_METRIC_HISTOGRAM, "signbridge_upstream_request_duration_seconds",
        "Upstream requests from submission to completion (retries included), by provider and "
        "region.",
        2, (const char *const[]){"provider", "region"});
    b->m_up_requests = sb_metrics_family(
        m, SB_METRIC_COUNTER, "signbridge_upstream_requests_total",
        "Upstream requests completed, by provider, region and status class (2xx, 3xx, 4xx, 5xx, "
        "error).",
        3, (const char *const[]){"provider", "region", "status_class"});
    b->m_admissions = sb_metrics_family(
        m, SB_METRIC_COUNTER, "signbridge_admissions_total",
        "Session admissions (initialize), by provider and outcome (ok, refused, cached).", 2,
        (const char *const[]){"provider", "outcome"});
    return b;
}

int sb_bridge_register_tools(sb_bridge *b, sb_registry *r, char *err, size_t errlen)
{
    for (size_t i = 0; i < sb_embedded_count; i++) {
        const char *n = sb_embedded_files[i].name;
        if (strncmp(n, "tools/", 6) != 0) continue;
        if (sb_registry_add_embedded(r, n, tool_call, b, err, errlen) < 0) return -1;
    }
    for (size_t i = 0; i < sb_registry_count(r) && i < TOOL_SLOTS; i++) {
        const sb_tool *t = sb_registry_at(r, i);
        if (t->fn != tool_call || t->ud != b) continue;
        b->slot_tool[i] = t;
        for (size_t k = 0; k < SB_N_ADAPTERS; k++)
            b->slot_ptool[k][i] = sb_adapter_tool(sb_adapter_at(k), t->name);
    }
    return 0;
}

void sb_bridge_attach(sb_bridge *b, sb_mcp *m)
{
    sb_mcp_set_admit(m, admit, b);
    sb_mcp_set_visibility(m, visible, b);
    b->loop = sb_mcp_loop(m);
    if (b->o.store && !b->shared_sessions) {
        b->shared_sessions = sb_bridge_sessions_new(b->o.store, b->o.session_idle_s);
        sb_bridge_sessions_attach(b->shared_sessions, m);
    }
}

void sb_bridge_free(sb_bridge *b)
{
    if (!b) return;
    pthread_mutex_lock(&b->cache_mu);
    cache_clear_locked(b);
    pthread_mutex_unlock(&b->cache_mu);
    pthread_mutex_destroy(&b->cache_mu);
    pthread_mutex_lock(&b->file_mu);
    b->o.file_ttl_s = 0;
    files_expire_locked(b, UINT64_MAX);
    pthread_mutex_unlock(&b->file_mu);
    pthread_mutex_destroy(&b->file_mu);
    while (b->idem) {
        idem_entry *e = b->idem;
        b->idem = e->next;
        for (size_t i = 0; i < e->nwait; i++) sb_mcp_call_release(e->waiters[i]);
        free(e->waiters);
        free(e->result);
        free(e);
    }
    pthread_mutex_destroy(&b->idem_mu);
    if (b->audit_fd > 2) close(b->audit_fd);
    pthread_mutex_destroy(&b->audit_mu);
    sb_bridge_sessions_free(b->shared_sessions);
    free(b);
}
