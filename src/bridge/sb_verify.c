#include "bridge/sb_verify.h"

#include "core/sb_buf.h"
#include "core/sb_util.h"
#include "providers/sb_provider.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct vstate {
    pthread_mutex_t mu;
    int refs, pending, decided;
    size_t n;
    char regions[SB_MAX_REGIONS][24];
    int status[SB_MAX_REGIONS];
    int error[SB_MAX_REGIONS];
    char provider[16];
    sb_verify_done_fn done;
    void *arg;
} vstate;

typedef struct varg {
    vstate *st;
    size_t idx;
} varg;

static void release(vstate *st)
{
    pthread_mutex_lock(&st->mu);
    int last = --st->refs == 0;
    pthread_mutex_unlock(&st->mu);
    if (!last) return;
    pthread_mutex_destroy(&st->mu);
    free(st);
}

static void conclude_locked(vstate *st, int *ok, char *region, char *msg, size_t cap)
{
    sb_buf b;
    sb_buf_init(&b, cap - 1);
    *ok = 0;
    for (size_t i = 0; i < st->n; i++) {
        if (st->error[i] == 0 && ((st->status[i] >= 200 && st->status[i] < 300) ||
                                  st->status[i] == 429)) {
            *ok = 1;
            sb_strlcpy(region, st->regions[i], 24);
            sb_buf_free(&b);
            msg[0] = 0;
            return;
        }
    }
    int rejected = 0, unknown = 0;
    for (size_t i = 0; i < st->n; i++) {
        if (st->error[i] == 0 && (st->status[i] == 401 || st->status[i] == 403)) rejected++;
        else unknown++;
    }
    if (rejected && !unknown) {
        sb_buf_printf(&b, "The provider rejected this API key in %s: ",
                      st->n == 1 ? "region" : "every region");
        for (size_t i = 0; i < st->n; i++) sb_buf_printf(&b, "%s%s", i ? ", " : "", st->regions[i]);
        sb_buf_puts(&b, ". Check the key, and that it belongs to this provider and region.");
    } else {
        sb_buf_puts(&b, "The provider could not be reached to check this key (");
        for (size_t i = 0, k = 0; i < st->n; i++) {
            if (st->error[i] == 0 && (st->status[i] == 401 || st->status[i] == 403)) continue;
            if (st->error[i])
                sb_buf_printf(&b, "%s%s: network error", k++ ? ", " : "", st->regions[i]);
            else
                sb_buf_printf(&b, "%s%s: HTTP %d", k++ ? ", " : "", st->regions[i],
                              st->status[i]);
        }
        sb_buf_puts(&b, "). Try again in a moment.");
    }
    sb_strlcpy(msg, b.data ? b.data : "verification failed", cap);
    sb_buf_free(&b);
}

static void probe_done(const sb_up_result *r, void *arg)
{
    varg *va = arg;
    vstate *st = va->st;
    int fire = 0, ok = 0;
    char region[24] = "", msg[600] = "";
    pthread_mutex_lock(&st->mu);
    st->error[va->idx] = r->error;
    st->status[va->idx] = r->status;
    st->pending--;
    int win = r->error == 0 && ((r->status >= 200 && r->status < 300) || r->status == 429);
    if (!st->decided && (win || st->pending == 0)) {
        st->decided = 1;
        fire = 1;
        if (win) {
            ok = 1;
            sb_strlcpy(region, st->regions[va->idx], sizeof region);
        } else {
            conclude_locked(st, &ok, region, msg, sizeof msg);
        }
    }
    pthread_mutex_unlock(&st->mu);
    if (fire) st->done(st->arg, ok, region, msg);
    free(va);
    release(st);
}

int sb_verify_key(sb_up *up, const sb_regions *rg, const char *provider, const char *region,
                  const char *instance, const char *key, size_t key_len, int bearer,
                  unsigned timeout_ms, sb_verify_done_fn done, void *arg)
{
    const sb_adapter *a = sb_adapter_find(provider);
    if (!up || !rg || !a || !key || !key_len || !done) return -1;
    vstate *st = calloc(1, sizeof *st);
    if (!st) return -1;
    pthread_mutex_init(&st->mu, NULL);
    st->done = done;
    st->arg = arg;
    sb_strlcpy(st->provider, provider, sizeof st->provider);
    char bases[SB_MAX_REGIONS][256];
    if (instance && instance[0]) {
        if (sb_regions_private_url(rg, instance, bases[0], sizeof bases[0]) != 0) goto fail;
        sb_strlcpy(st->regions[0], "private", sizeof st->regions[0]);
        st->n = 1;
    } else if (region && region[0]) {
        const sb_region *r = sb_regions_find(rg, provider, region);
        if (!r) goto fail;
        sb_strlcpy(bases[0], r->base_url, sizeof bases[0]);
        sb_strlcpy(st->regions[0], r->name, sizeof st->regions[0]);
        st->n = 1;
    } else {
        for (size_t i = 0; i < rg->n && st->n < SB_MAX_REGIONS; i++) {
            if (strcmp(rg->r[i].provider, provider) != 0) continue;
            /* sandbox regions of iinked are detected only when named */
            if (strncmp(rg->r[i].name, "sandbox", 7) == 0 && rg->sandbox_url[0] == 0) continue;
            sb_strlcpy(bases[st->n], rg->r[i].base_url, sizeof bases[0]);
            sb_strlcpy(st->regions[st->n++], rg->r[i].name, sizeof st->regions[0]);
        }
        if (!st->n) goto fail;
    }
    /* count every probe before sending any: a fast answer must not conclude early */
    st->pending = (int)st->n;
    st->refs = (int)st->n + 1;
    for (size_t i = 0; i < st->n; i++) {
        sb_preq rq;
        sb_preq_init(&rq, "GET", 1);
        sb_pctx ctx = {.provider = provider, .region = st->regions[i], .base_url = bases[i],
                       .key = key, .key_len = key_len, .bearer = bearer};
        varg *va = malloc(sizeof *va);
        sb_buf auth;
        sb_buf_init(&auth, 2048);
        int rc = va && a->probe(&ctx, &rq) == 0 ? 0 : -1;
        if (rc == 0)
            rc = bearer ? sb_buf_printf(&auth, "Authorization: Bearer %.*s", (int)key_len, key)
                        : a->auth_header(key, key_len, &auth);
        if (rc == 0) rc = sb_preq_header(&rq, "%s", auth.data);
        if (rc == 0) rc = sb_preq_header(&rq, "Accept: application/json");
        explicit_bzero(auth.data ? auth.data : (char *)"", auth.len);
        sb_buf_free(&auth);
        if (rc == 0) {
            va->st = st;
            va->idx = i;
            sb_up_request ur = {.method = rq.method, .url = rq.url.data,
                                .headers = (const char *const *)rq.headers, .idempotent = 1,
                                .timeout_ms = timeout_ms ? timeout_ms : 5000};
            rc = sb_up_submit(up, &ur, probe_done, va, NULL);
        }
        for (size_t h = 0; h < rq.nheaders; h++)
            if (rq.headers[h]) explicit_bzero(rq.headers[h], strlen(rq.headers[h]));
        sb_preq_free(&rq);
        if (rc != 0) {
            /* this probe never runs: answer it as a network failure */
            free(va);
            sb_up_result fake = {.error = SB_UP_EIO};
            varg *v2 = malloc(sizeof *v2);
            if (!v2) {
                /* cannot even record it: account for it by hand */
                pthread_mutex_lock(&st->mu);
                st->error[i] = SB_UP_EIO;
                st->pending--;
                st->refs--;
                pthread_mutex_unlock(&st->mu);
                continue;
            }
            v2->st = st;
            v2->idx = i;
            probe_done(&fake, v2);
        }
    }
    release(st);
    return 0;
fail:
    pthread_mutex_destroy(&st->mu);
    free(st);
    return -1;
}

typedef struct vwait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, ok;
    char region[24];
    char msg[600];
} vwait;

static void wait_done(void *arg, int ok, const char *region, const char *message)
{
    vwait *w = arg;
    pthread_mutex_lock(&w->mu);
    w->ok = ok;
    sb_strlcpy(w->region, region ? region : "", sizeof w->region);
    sb_strlcpy(w->msg, message ? message : "", sizeof w->msg);
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int sb_verify_key_wait(sb_up *up, const sb_regions *rg, const char *provider, const char *region,
                       const char *instance, const char *key, size_t key_len, unsigned timeout_ms,
                       char region_out[24], char *message, size_t msgcap)
{
    vwait w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    if (sb_verify_key(up, rg, provider, region, instance, key, key_len, 0, timeout_ms, wait_done,
                      &w) != 0) {
        if (message && msgcap) snprintf(message, msgcap, "unknown provider or region");
        return -1;
    }
    pthread_mutex_lock(&w.mu);
    while (!w.done) pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    if (region_out) sb_strlcpy(region_out, w.region, 24);
    if (message && msgcap) sb_strlcpy(message, w.msg, msgcap);
    return w.ok ? 1 : 0;
}
