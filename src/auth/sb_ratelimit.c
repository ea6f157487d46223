#include "auth/sb_ratelimit.h"

#include "core/sb_log.h"
#include "core/sb_metrics.h"
#include "core/sb_util.h"
#include "store/sb_store.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Buckets are counted in micro-tokens: one request costs SB_RL_UNIT. */
#define SB_RL_UNIT 1000000LL
#define SB_RL_STRIPES 64
#define SB_RL_BUCKETS 1024 /* per stripe */
#define SB_RL_MAX_ENTRIES 131072
#define SB_RL_KEY 97
#define SB_RL_NS "ratelimit"
#define SB_RL_CAS_TRIES 32
#define SB_RL_SLOT_NS "ratelimit_slot"
#define SB_RL_MAX_SHARED_SLOTS 64
/* A shared concurrency slot is a lease: a replica that dies holding one frees it this late. */
#define SB_RL_SLOT_LEASE_MS (600LL * 1000)

typedef struct rl_ent {
    struct rl_ent *next;
    char key[SB_RL_KEY];
    int64_t tokens_u; /* local bucket */
    int64_t last_ms;
    int bucket_used; /* the local bucket has been touched */
    unsigned inflight;
    uint64_t slots; /* shared mode: the store slots ("<key>:<i>") this process holds */
} rl_ent;

/* A stripe's lock and its buckets (b: SB_RL_BUCKETS heads in sb_ratelimit.buckets). The locks
 * sit together and the 512 KiB of bucket heads apart, so initializing the locks touches one page,
 * not one per stripe (an idle process keeps the heads untouched: zero pages never faulted in). */
typedef struct {
    pthread_mutex_t mu;
    rl_ent **b;
} rl_stripe;

struct sb_ratelimit {
    sb_store *store;
    int shared;
    _Atomic unsigned rpm, burst, max_conc;
    atomic_size_t n_ent;
    _Atomic uint64_t last_warn_ms;
    sb_mseries *m_rate, *m_conc;
    rl_stripe s[SB_RL_STRIPES];
    rl_ent *buckets[SB_RL_STRIPES * SB_RL_BUCKETS];
};

static uint64_t hash_key(const char *k)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * 1099511628211ULL;
    return h;
}

sb_ratelimit *sb_ratelimit_new(sb_store *store, int shared, const sb_ratelimit_limits *l)
{
    sb_ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl) return NULL;
    rl->store = store;
    rl->shared = shared && store;
    for (size_t i = 0; i < SB_RL_STRIPES; i++) {
        pthread_mutex_init(&rl->s[i].mu, NULL);
        rl->s[i].b = rl->buckets + i * SB_RL_BUCKETS;
    }
    sb_ratelimit_configure(rl, l);
    sb_mfamily *f = sb_metrics_family(
        sb_metrics_global(), SB_METRIC_COUNTER, "signbridge_ratelimit_refusals_total",
        "MCP requests refused by a per-credential limit.", 1, (const char *const[]){"limit"});
    rl->m_rate = sb_metrics_series(f, (const char *const[]){"rate"});
    rl->m_conc = sb_metrics_series(f, (const char *const[]){"concurrency"});
    return rl;
}

void sb_ratelimit_free(sb_ratelimit *rl)
{
    if (!rl) return;
    for (size_t i = 0; i < SB_RL_STRIPES; i++) {
        for (size_t j = 0; j < SB_RL_BUCKETS; j++) {
            rl_ent *e = rl->s[i].b[j];
            while (e) {
                rl_ent *n = e->next;
                free(e);
                e = n;
            }
        }
        pthread_mutex_destroy(&rl->s[i].mu);
    }
    free(rl);
}

void sb_ratelimit_configure(sb_ratelimit *rl, const sb_ratelimit_limits *l)
{
    if (!rl) return;
    sb_ratelimit_limits z = {0};
    if (!l) l = &z;
    unsigned burst = l->burst;
    if (!burst && l->requests_per_minute)
        burst = l->requests_per_minute / 6 ? l->requests_per_minute / 6 : 1;
    atomic_store(&rl->rpm, l->requests_per_minute);
    atomic_store(&rl->burst, burst);
    atomic_store(&rl->max_conc, l->max_concurrent_calls);
}

void sb_ratelimit_get(const sb_ratelimit *rl, sb_ratelimit_limits *out)
{
    if (!out) return;
    *out = (sb_ratelimit_limits){0};
    if (!rl) return;
    out->requests_per_minute = atomic_load(&((sb_ratelimit *)rl)->rpm);
    out->burst = atomic_load(&((sb_ratelimit *)rl)->burst);
    out->max_concurrent_calls = atomic_load(&((sb_ratelimit *)rl)->max_conc);
}

const char *sb_ratelimit_kind_name(sb_ratelimit_kind k)
{
    return k == SB_RATELIMIT_CONCURRENCY ? "concurrency" : "rate";
}

/* An idle entry: nothing in flight and its bucket full again (or never used). */
static int ent_idle(const rl_ent *e, uint64_t now, double rate_u_ms, int64_t cap_u)
{
    if (e->inflight) return 0;
    if (!e->bucket_used || rate_u_ms <= 0) return 1;
    return (double)e->tokens_u + (double)((int64_t)now - e->last_ms) * rate_u_ms >= (double)cap_u;
}

/* Find or create the entry for key in its (locked) stripe; NULL when the table is full of live
 * entries (the caller then lets the request through: memory stays bounded). */
static rl_ent *ent_get(sb_ratelimit *rl, rl_stripe *s, size_t slot, const char *key, uint64_t now,
                       double rate_u_ms, int64_t cap_u)
{
    for (rl_ent *e = s->b[slot]; e; e = e->next)
        if (strcmp(e->key, key) == 0) return e;
    if (atomic_load(&rl->n_ent) >= SB_RL_MAX_ENTRIES) {
        /* drop the idle entries of this stripe */
        for (size_t j = 0; j < SB_RL_BUCKETS; j++) {
            rl_ent **pp = &s->b[j];
            while (*pp) {
                rl_ent *e = *pp;
                if (ent_idle(e, now, rate_u_ms, cap_u)) {
                    *pp = e->next;
                    free(e);
                    atomic_fetch_sub(&rl->n_ent, 1);
                } else {
                    pp = &e->next;
                }
            }
        }
        if (atomic_load(&rl->n_ent) >= SB_RL_MAX_ENTRIES) return NULL;
    }
    rl_ent *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    sb_strlcpy(e->key, key, sizeof e->key);
    e->next = s->b[slot];
    s->b[slot] = e;
    atomic_fetch_add(&rl->n_ent, 1);
    return e;
}

/* Refill a bucket to now and take one token. 1 = taken, 0 = empty (*retry_s set). */
static int bucket_take(int64_t *tokens_u, int64_t *last_ms, int64_t now, double rate_u_ms,
                       int64_t cap_u, unsigned *retry_s)
{
    if (now > *last_ms) {
        double t = (double)*tokens_u + (double)(now - *last_ms) * rate_u_ms;
        *tokens_u = t >= (double)cap_u ? cap_u : (int64_t)t;
        *last_ms = now;
    }
    if (*tokens_u > cap_u) *tokens_u = cap_u; /* the burst was lowered */
    if (*tokens_u >= SB_RL_UNIT) {
        *tokens_u -= SB_RL_UNIT;
        return 1;
    }
    double ms = (double)(SB_RL_UNIT - *tokens_u) / rate_u_ms;
    double s = ceil(ms / 1000.0);
    *retry_s = s < 1 ? 1 : s > 86400 ? 86400 : (unsigned)s;
    return 0;
}

static void warn_store(sb_ratelimit *rl)
{
    uint64_t now = sb_mono_ms(), last = atomic_load(&rl->last_warn_ms);
    if (last && now - last < 10000) return;
    if (!atomic_compare_exchange_strong(&rl->last_warn_ms, &last, now ? now : 1)) return;
    sb_log_msg(SB_LOG_WARN, "ratelimit",
               "the store does not answer: per-credential rate limits let requests through");
}

/* The shared bucket: record "tokens_u last_ms" under ratelimit/<key>, updated with CAS. 1 =
 * taken, 0 = empty, -1 = store failure. */
static int shared_take(sb_ratelimit *rl, const char *key, double rate_u_ms, int64_t cap_u,
                       unsigned *retry_s)
{
    for (int attempt = 0; attempt < SB_RL_CAS_TRIES; attempt++) {
        int64_t now = sb_store_now_ms();
        int64_t tokens = cap_u, last = now, ver = 0;
        sb_store_rec rec = {0};
        int rc = sb_store_get(rl->store, SB_RL_NS, key, &rec);
        if (rc == 0) {
            char *end = NULL;
            long long t = strtoll((const char *)rec.value, &end, 10);
            long long l = end && *end == ' ' ? strtoll(end + 1, NULL, 10) : 0;
            ver = rec.version;
            if (t >= 0 && l > 0) {
                tokens = t;
                last = l;
            }
            sb_store_rec_free(&rec);
        } else if (rc != SB_STORE_NOTFOUND) {
            return -1;
        }
        if (!bucket_take(&tokens, &last, now, rate_u_ms, cap_u, retry_s)) return 0;
        char val[64];
        int n = snprintf(val, sizeof val, "%lld %lld", (long long)tokens, (long long)last);
        /* kept while it is not full again, plus a minute */
        int64_t exp = now + (int64_t)((double)(cap_u - tokens) / rate_u_ms) + 60000;
        rc = sb_store_cas(rl->store, SB_RL_NS, key, ver, val, (size_t)n, exp, NULL);
        if (rc == 0) return 1;
        if (rc != SB_STORE_CONFLICT && rc != SB_STORE_NOTFOUND) return -1;
    }
    return 1; /* contention beyond reason: let it through */
}

int sb_ratelimit_take(sb_ratelimit *rl, const char *key, sb_ratelimit_refusal *out)
{
    if (!rl || !key || !out) return -1;
    unsigned rpm = atomic_load(&rl->rpm), burst = atomic_load(&rl->burst);
    if (!rpm) return 0;
    if (!burst) burst = 1;
    double rate_u_ms = (double)rpm * (double)SB_RL_UNIT / 60000.0;
    int64_t cap_u = (int64_t)burst * SB_RL_UNIT;
    unsigned retry = 1;
    int taken;
    if (rl->shared) {
        taken = shared_take(rl, key, rate_u_ms, cap_u, &retry);
        if (taken < 0) {
            warn_store(rl);
            return 0;
        }
    } else {
        uint64_t h = hash_key(key);
        rl_stripe *s = &rl->s[h % SB_RL_STRIPES];
        size_t slot = (size_t)((h / SB_RL_STRIPES) % SB_RL_BUCKETS);
        uint64_t now = sb_mono_ms();
        pthread_mutex_lock(&s->mu);
        rl_ent *e = ent_get(rl, s, slot, key, now, rate_u_ms, cap_u);
        if (!e) {
            pthread_mutex_unlock(&s->mu);
            return 0;
        }
        if (!e->bucket_used) {
            e->bucket_used = 1;
            e->tokens_u = cap_u;
            e->last_ms = (int64_t)now;
        }
        taken = bucket_take(&e->tokens_u, &e->last_ms, (int64_t)now, rate_u_ms, cap_u, &retry);
        pthread_mutex_unlock(&s->mu);
    }
    if (taken) return 0;
    *out = (sb_ratelimit_refusal){.kind = SB_RATELIMIT_RATE, .retry_after_s = retry};
    sb_ratelimit_get(rl, &out->limits);
    sb_metrics_inc(rl->m_rate);
    return 1;
}

/* Shared mode: claim one of the credential's `cap` slot records in the store (claim-if-absent,
 * with a lease). 0 = got slot *idx, 1 = every slot is taken, -1 = the store did not answer. */
static int slot_claim(sb_ratelimit *rl, const char *key, unsigned cap, uint64_t held, int *idx)
{
    if (cap > SB_RL_MAX_SHARED_SLOTS) cap = SB_RL_MAX_SHARED_SLOTS;
    for (unsigned i = 0; i < cap; i++) {
        if (held & (1ULL << i)) continue;
        char k[SB_RL_KEY + 8];
        snprintf(k, sizeof k, "%s:%u", key, i);
        int created = 0;
        int rc = sb_store_claim(rl->store, SB_RL_SLOT_NS, k, "1", 1,
                                sb_store_now_ms() + SB_RL_SLOT_LEASE_MS, &created, NULL, NULL);
        if (rc != SB_STORE_OK) return -1;
        if (created) {
            *idx = (int)i;
            return 0;
        }
    }
    return 1;
}

/* The credential's entry (created if absent) with its stripe locked: unlock with
 * pthread_mutex_unlock(&(*sp)->mu). NULL (stripe still locked) when the table is full. */
static rl_ent *entry_locked(sb_ratelimit *rl, const char *key, rl_stripe **sp)
{
    uint64_t h = hash_key(key);
    rl_stripe *s = &rl->s[h % SB_RL_STRIPES];
    size_t slot = (size_t)((h / SB_RL_STRIPES) % SB_RL_BUCKETS);
    unsigned rpm = atomic_load(&rl->rpm), burst = atomic_load(&rl->burst);
    double rate_u_ms = (double)rpm * (double)SB_RL_UNIT / 60000.0;
    pthread_mutex_lock(&s->mu);
    *sp = s;
    return ent_get(rl, s, slot, key, sb_mono_ms(), rate_u_ms, (int64_t)burst * SB_RL_UNIT);
}

static int refuse_concurrency(sb_ratelimit *rl, sb_ratelimit_refusal *out)
{
    *out = (sb_ratelimit_refusal){.kind = SB_RATELIMIT_CONCURRENCY, .retry_after_s = 1};
    sb_ratelimit_get(rl, &out->limits);
    sb_metrics_inc(rl->m_conc);
    return 1;
}

int sb_ratelimit_call_begin(sb_ratelimit *rl, const char *key, sb_ratelimit_refusal *out)
{
    if (!rl || !key || !out) return -1;
    unsigned cap = atomic_load(&rl->max_conc);
    rl_stripe *s;
    if (cap && rl->shared && strlen(key) < SB_RL_KEY) {
        /* replicas share the cap: one store slot per call in flight */
        rl_ent *e = entry_locked(rl, key, &s);
        uint64_t held = e ? e->slots : 0;
        pthread_mutex_unlock(&s->mu);
        if (!e) return 0;
        int idx = -1;
        int rc = slot_claim(rl, key, cap, held, &idx);
        if (rc < 0) return 0; /* fail open, like the rate limit */
        if (rc == 1) return refuse_concurrency(rl, out);
        e = entry_locked(rl, key, &s);
        if (e) {
            e->slots |= 1ULL << idx;
            e->inflight++;
        }
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    rl_ent *e = entry_locked(rl, key, &s);
    int refused = 0;
    if (e) {
        if (cap && e->inflight >= cap)
            refused = 1;
        else
            e->inflight++;
    }
    pthread_mutex_unlock(&s->mu);
    if (!e || !refused) return 0; /* table full: admitted without a slot */
    return refuse_concurrency(rl, out);
}

void sb_ratelimit_call_end(sb_ratelimit *rl, const char *key)
{
    if (!rl || !key) return;
    uint64_t h = hash_key(key);
    rl_stripe *s = &rl->s[h % SB_RL_STRIPES];
    size_t slot = (size_t)((h / SB_RL_STRIPES) % SB_RL_BUCKETS);
    int idx = -1;
    pthread_mutex_lock(&s->mu);
    for (rl_ent *e = s->b[slot]; e; e = e->next)
        if (strcmp(e->key, key) == 0) {
            if (e->inflight) e->inflight--;
            if (e->slots) {
                idx = __builtin_ctzll(e->slots); /* slots are interchangeable: free any one */
                e->slots &= e->slots - 1;
            }
            break;
        }
    pthread_mutex_unlock(&s->mu);
    if (idx >= 0 && rl->store) {
        char k[SB_RL_KEY + 8];
        snprintf(k, sizeof k, "%s:%d", key, idx);
        sb_store_delete(rl->store, SB_RL_SLOT_NS, k, 0);
    }
}
