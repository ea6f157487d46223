#include "mcp/sb_session.h"

#include "core/sb_util.h"

#include <stdlib.h>
#include <string.h>

#define NBUCKETS 4096

struct sb_sessions {
    pthread_mutex_t mu;
    sb_session *buckets[NBUCKETS];
    size_t count;
    unsigned max, idle_s;
    uint64_t last_sweep_ms;
};

static unsigned bucket_of(const char *id)
{
    /* ids are uniformly random: the first characters are a fine hash */
    unsigned h = 2166136261u;
    for (int i = 0; i < 8 && id[i]; i++) h = (h ^ (unsigned char)id[i]) * 16777619u;
    return h % NBUCKETS;
}

sb_sessions *sb_sessions_new(unsigned max, unsigned idle_s)
{
    sb_sessions *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    pthread_mutex_init(&t->mu, NULL);
    t->max = max ? max : 100000;
    t->idle_s = idle_s ? idle_s : 3600;
    t->last_sweep_ms = sb_mono_ms();
    return t;
}

static void map_free(sb_session_map *m)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        sb_session_entry *e = m->buckets[i];
        while (e) {
            sb_session_entry *n = e->next;
            free(e);
            e = n;
        }
    }
    free(m->buckets);
    m->buckets = NULL;
    m->nbuckets = m->count = 0;
}

void sb_session_ref(sb_session *s)
{
    pthread_mutex_lock(&s->mu);
    s->refs++;
    pthread_mutex_unlock(&s->mu);
}

void sb_session_release(sb_session *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    int last = --s->refs == 0;
    pthread_mutex_unlock(&s->mu);
    if (!last) return;
    map_free(&s->calls);
    map_free(&s->pending);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void sb_sessions_free(sb_sessions *t)
{
    if (!t) return;
    for (size_t i = 0; i < NBUCKETS; i++) {
        sb_session *s = t->buckets[i];
        while (s) {
            sb_session *n = s->hnext;
            s->ended = 1;
            sb_session_release(s);
            s = n;
        }
    }
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* Remove expired sessions; table lock held. */
static size_t sweep_locked(sb_sessions *t, uint64_t now)
{
    size_t removed = 0;
    uint64_t idle_ms = (uint64_t)t->idle_s * 1000;
    for (size_t i = 0; i < NBUCKETS; i++) {
        sb_session **pp = &t->buckets[i];
        while (*pp) {
            sb_session *s = *pp;
            pthread_mutex_lock(&s->mu);
            int expired = s->ended || (now - s->last_used_ms > idle_ms && s->calls.count == 0);
            if (expired) s->ended = 1;
            pthread_mutex_unlock(&s->mu);
            if (expired) {
                *pp = s->hnext;
                t->count--;
                removed++;
                sb_session_release(s);
            } else {
                pp = &s->hnext;
            }
        }
    }
    t->last_sweep_ms = now;
    return removed;
}

int sb_sessions_create(sb_sessions *t, const char *fingerprint, sb_session **out)
{
    sb_session *s = calloc(1, sizeof *s);
    if (!s) return -1;
    unsigned char rnd[32];
    if (sb_random_bytes(rnd, sizeof rnd) < 0) {
        free(s);
        return -1;
    }
    sb_base64url_encode(rnd, sizeof rnd, s->id);
    sb_strlcpy(s->fingerprint, fingerprint ? fingerprint : "", sizeof s->fingerprint);
    pthread_mutex_init(&s->mu, NULL);
    s->refs = 2; /* the table's and the caller's */
    s->log_level = 1; /* info */
    s->admitted = 1;  /* the engine clears it while an admission check runs */
    pthread_mutex_lock(&t->mu);
    uint64_t now = sb_mono_ms(); /* read under the lock: never older than another's last use */
    s->last_used_ms = now;
    s->alive_checked_ms = now;
    if (t->count >= t->max || now - t->last_sweep_ms > 60000) sweep_locked(t, now);
    if (t->count >= t->max) {
        pthread_mutex_unlock(&t->mu);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return -1;
    }
    unsigned b = bucket_of(s->id);
    s->hnext = t->buckets[b];
    t->buckets[b] = s;
    t->count++;
    pthread_mutex_unlock(&t->mu);
    *out = s;
    return 0;
}

static sb_session *find_locked(sb_sessions *t, const char *id)
{
    if (!id || strlen(id) != SB_SESSION_ID_LEN) return NULL;
    for (sb_session *s = t->buckets[bucket_of(id)]; s; s = s->hnext)
        if (sb_ct_equal(s->id, SB_SESSION_ID_LEN, id, SB_SESSION_ID_LEN)) return s;
    return NULL;
}

int sb_sessions_adopt(sb_sessions *t, const sb_session *tmpl, sb_session **out)
{
    if (!tmpl || strnlen(tmpl->id, sizeof tmpl->id) != SB_SESSION_ID_LEN) return -1;
    sb_session *s = calloc(1, sizeof *s);
    if (!s) return -1;
    memcpy(s->id, tmpl->id, sizeof s->id);
    memcpy(s->fingerprint, tmpl->fingerprint, sizeof s->fingerprint);
    s->fingerprint[sizeof s->fingerprint - 1] = '\0';
    memcpy(s->protocol_version, tmpl->protocol_version, sizeof s->protocol_version);
    s->protocol_version[sizeof s->protocol_version - 1] = '\0';
    memcpy(s->client_name, tmpl->client_name, sizeof s->client_name);
    s->client_name[sizeof s->client_name - 1] = '\0';
    memcpy(s->region, tmpl->region, sizeof s->region);
    s->region[sizeof s->region - 1] = '\0';
    s->client_elicitation = tmpl->client_elicitation;
    s->client_sampling = tmpl->client_sampling;
    s->client_roots = tmpl->client_roots;
    s->log_level = tmpl->log_level;
    s->initialized = 1;
    s->admitted = 1;
    pthread_mutex_init(&s->mu, NULL);
    s->refs = 2; /* the table's and the caller's */
    pthread_mutex_lock(&t->mu);
    uint64_t now = sb_mono_ms();
    s->last_used_ms = now;
    s->alive_checked_ms = now;
    if (t->count >= t->max) sweep_locked(t, now);
    if (t->count >= t->max || find_locked(t, s->id)) {
        pthread_mutex_unlock(&t->mu);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return -1;
    }
    unsigned b = bucket_of(s->id);
    s->hnext = t->buckets[b];
    t->buckets[b] = s;
    t->count++;
    pthread_mutex_unlock(&t->mu);
    *out = s;
    return 0;
}

static int owner_matches(const sb_session *s, const char *fingerprint)
{
    const char *fp = fingerprint ? fingerprint : "";
    return sb_ct_equal(s->fingerprint, strlen(s->fingerprint), fp, strlen(fp));
}

sb_session *sb_sessions_get(sb_sessions *t, const char *id, const char *fingerprint)
{
    pthread_mutex_lock(&t->mu);
    sb_session *s = find_locked(t, id);
    if (s) {
        uint64_t now = sb_mono_ms();
        pthread_mutex_lock(&s->mu);
        int ok = !s->ended && s->admitted && owner_matches(s, fingerprint) &&
                 (now - s->last_used_ms <= (uint64_t)t->idle_s * 1000 || s->calls.count > 0);
        if (ok) {
            s->refs++;
            s->last_used_ms = now;
        }
        pthread_mutex_unlock(&s->mu);
        if (!ok) s = NULL;
    }
    pthread_mutex_unlock(&t->mu);
    return s;
}

int sb_sessions_end(sb_sessions *t, const char *id, const char *fingerprint)
{
    pthread_mutex_lock(&t->mu);
    sb_session *s = find_locked(t, id);
    int rc = -1;
    if (s) {
        pthread_mutex_lock(&s->mu);
        if (!s->ended && owner_matches(s, fingerprint)) {
            s->ended = 1;
            rc = 0;
        }
        pthread_mutex_unlock(&s->mu);
        if (rc == 0) {
            sb_session **pp = &t->buckets[bucket_of(id)];
            while (*pp != s) pp = &(*pp)->hnext;
            *pp = s->hnext;
            t->count--;
        }
    }
    pthread_mutex_unlock(&t->mu);
    if (rc == 0) sb_session_release(s);
    return rc;
}

size_t sb_sessions_sweep(sb_sessions *t)
{
    pthread_mutex_lock(&t->mu);
    size_t n = sweep_locked(t, sb_mono_ms());
    pthread_mutex_unlock(&t->mu);
    return n;
}

size_t sb_sessions_count(sb_sessions *t)
{
    pthread_mutex_lock(&t->mu);
    size_t n = t->count;
    pthread_mutex_unlock(&t->mu);
    return n;
}

int sb_sessions_snapshot(sb_sessions *t, sb_session ***out, size_t *n)
{
    pthread_mutex_lock(&t->mu);
    sb_session **arr = malloc((t->count ? t->count : 1) * sizeof *arr);
    size_t k = 0;
    if (arr) {
        for (size_t i = 0; i < NBUCKETS; i++) {
            for (sb_session *s = t->buckets[i]; s && k < t->count; s = s->hnext) {
                sb_session_ref(s);
                arr[k++] = s;
            }
        }
    }
    pthread_mutex_unlock(&t->mu);
    *out = arr;
    *n = k;
    return arr ? 0 : -1;
}

/* ---- per-session keyed tables (s->mu held inside) ------------------------------------------ */

#define MAP_MIN_BUCKETS 8

static uint32_t key_hash(const char *key)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) h = (h ^ *p) * 16777619u;
    return h;
}

/* Double the bucket array (or allocate the first one). On allocation failure the map keeps its
 * buckets: chains get longer, nothing is lost. */
static void map_grow(sb_session_map *m)
{
    size_t n = m->nbuckets ? m->nbuckets * 2 : MAP_MIN_BUCKETS;
    sb_session_entry **b = calloc(n, sizeof *b);
    if (!b) return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        sb_session_entry *e = m->buckets[i];
        while (e) {
            sb_session_entry *next = e->next;
            size_t j = e->hash & (n - 1);
            e->next = b[j];
            b[j] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

/* The link pointing at the entry for key (hash h), or NULL when absent. */
static sb_session_entry **map_find(sb_session_map *m, const char *key, uint32_t h)
{
    if (m->nbuckets == 0) return NULL;
    for (sb_session_entry **pp = &m->buckets[h & (m->nbuckets - 1)]; *pp; pp = &(*pp)->next)
        if ((*pp)->hash == h && strcmp((*pp)->key, key) == 0) return pp;
    return NULL;
}

/* Unlink and free the entry *pp points at; returns its pointer. */
static void *map_unlink(sb_session_map *m, sb_session_entry **pp)
{
    sb_session_entry *e = *pp;
    void *p = e->ptr;
    *pp = e->next;
    free(e);
    m->count--;
    return p;
}

int sb_session_put(sb_session *s, sb_session_map *table, const char *key, void *ptr)
{
    sb_session_entry *e = calloc(1, sizeof *e);
    if (!e) return -1;
    if (sb_strlcpy(e->key, key, sizeof e->key) >= sizeof e->key) {
        free(e);
        return -1;
    }
    e->ptr = ptr;
    e->hash = key_hash(e->key);
    pthread_mutex_lock(&s->mu);
    if (map_find(table, e->key, e->hash)) {
        pthread_mutex_unlock(&s->mu);
        free(e);
        return -1;
    }
    if (table->nbuckets == 0) map_grow(table);
    if (table->nbuckets == 0) { /* the first bucket array could not be allocated */
        pthread_mutex_unlock(&s->mu);
        free(e);
        return -1;
    }
    size_t b = e->hash & (table->nbuckets - 1);
    e->next = table->buckets[b];
    table->buckets[b] = e;
    table->count++;
    if (table->count > table->nbuckets) map_grow(table);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void *sb_session_take(sb_session *s, sb_session_map *table, const char *key)
{
    uint32_t h = key_hash(key);
    void *p = NULL;
    pthread_mutex_lock(&s->mu);
    sb_session_entry **pp = map_find(table, key, h);
    if (pp) p = map_unlink(table, pp);
    pthread_mutex_unlock(&s->mu);
    return p;
}

void *sb_session_take_any(sb_session *s, sb_session_map *table)
{
    void *p = NULL;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; table->count > 0 && i < table->nbuckets; i++) {
        if (table->buckets[i]) {
            p = map_unlink(table, &table->buckets[i]);
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return p;
}

int sb_session_remove(sb_session *s, sb_session_map *table, const char *key, void *ptr)
{
    uint32_t h = key_hash(key);
    int removed = 0;
    pthread_mutex_lock(&s->mu);
    sb_session_entry **pp = map_find(table, key, h);
    if (pp && (*pp)->ptr == ptr) {
        map_unlink(table, pp);
        removed = 1;
    }
    pthread_mutex_unlock(&s->mu);
    return removed;
}
