/* signbridge: command line, configuration, start and orderly stop. */
#include "auth/sb_cred.h"
#include "core/sb_config.h"
#include "core/sb_log.h"
#include "core/sb_loop.h"
#include "core/sb_metrics.h"
#include "core/sb_util.h"
#include "http/sb_http.h"
#include "mcp/sb_fixtures.h"
#include "mcp/sb_mcp.h"
#include "sb_launch.h"
#include "sb_version.h"
#include "upstream/sb_region.h"
#include "upstream/sb_up.h"
#include "bridge/sb_bridge.h"
#include "auth/sb_keys.h"
#include "auth/sb_oauth.h"
#include "sb_keys_cli.h"
#include "http/sb_admin.h"
#include "auth/sb_ratelimit.h"
#include "auth/sb_ptoken.h"
#include "bridge/sb_verify.h"
#include "store/sb_seal.h"
#include "store/sb_store.h"

#include <curl/curl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

extern char **environ;

/* The command-line overrides, kept from start to exit for SIGHUP reloads (a global: reachable, so
 * an early exit does not report it as a leak). */
cJSON *g_flags_kept;

static const char usage[] =
    "usage: signbridge [options]\n"
    "       signbridge keys create|list|show|rotate|revoke ...   (signbridge keys --help)\n"
    "\n"
    "A hosted MCP server bridging AI clients to e-signature providers.\n"
    "\n"
    "options:\n"
    "  --config FILE        JSON configuration (schemas/config.schema.json)\n"
    "  --check-config       validate the configuration, print it merged, and exit\n"
    "  --listen ADDR:PORT   listen address (port 0 picks a free port)\n"
    "  --port-file FILE     write the bound port there once ready to serve\n"
    "  --log-level LEVEL    debug | info | warn | error | off\n"
    "  --conformance        serve the MCP conformance fixture pack at /mcp without\n"
    "                       authentication (loopback listen addresses only)\n"
    "  --sandbox            start the bundled provider sandbox (signbridge-sandbox), point\n"
    "                       every provider at it, and print its demo credentials\n"
    "  --sandbox-url URL    point every provider and region at a running sandbox\n"
    "  --admin-listen A:P   the admin API for signbridge keys (needs SIGNBRIDGE_ADMIN_TOKEN)\n"
    "  --admin-port-file F  write the admin listener's bound port to F\n"
    "  --store URL          the persistent store: sqlite:PATH, PATH or postgresql://...\n"
    "                       (default sqlite:signbridge.db in the working directory)\n"
    "  --version            print the version and exit\n"
    "  --help               this text\n"
    "\n"
    "Every configuration field can also be set with SIGNBRIDGE_<FIELD>, e.g.\n"
    "SIGNBRIDGE_LISTEN, SIGNBRIDGE_LOG_LEVEL, SIGNBRIDGE_LIMITS_MAX_BODY_BYTES.\n"
    "Precedence: flags > environment > config file > defaults.\n";

static int write_port_file(const char *path, unsigned port)
{
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    char buf[16];
    int n = snprintf(buf, sizeof buf, "%u\n", port);
    int ok = write(fd, buf, (size_t)n) == n;
    close(fd);
    if (!ok || rename(tmp, path) < 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int listen_is_loopback(const char *listen)
{
    const char *colon = strrchr(listen, ':');
    if (!colon) return 0;
    size_t n = (size_t)(colon - listen);
    if (n == 9 && strncmp(listen, "localhost", 9) == 0) return 1;
    if (n == 5 && strncmp(listen, "[::1]", 5) == 0) return 1;
    char host[64];
    if (n >= sizeof host) return 0;
    memcpy(host, listen, n);
    host[n] = '\0';
    struct in_addr a;
    return inet_pton(AF_INET, host, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

static void *file_get_cb(void *ud, const char *token, size_t *len, char *mime, size_t mimecap,
                         char *name, size_t namecap)
{
    return sb_bridge_file_get(ud, token, len, mime, mimecap, name, namecap);
}

/* ---- OAuth ------------------------------------------------------------------------------------ */

typedef struct verify_ctx {
    sb_up *up;
    const sb_regions *regions;
    unsigned timeout_ms;
} verify_ctx;

static int verify_cb(void *ud, const char *provider, const char *region, const char *instance,
                     const char *key, size_t key_len,
                     void (*done)(void *arg, int ok, const char *region, const char *message),
                     void *arg)
{
    verify_ctx *v = ud;
    return sb_verify_key(v->up, v->regions, provider, region, instance, key, key_len, 0,
                         v->timeout_ms, done, arg);
}

/* Read a PEM file (at most 64 KiB) into a malloc'd string. */
static char *read_pem(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "oauth: cannot read signing key %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(65537);
    size_t n = buf ? fread(buf, 1, 65536, f) : 0;
    int more = buf && fgetc(f) != EOF;
    fclose(f);
    if (!buf || more || n == 0) {
        free(buf);
        snprintf(err, errlen, "oauth: signing key %s is empty or larger than 64 KiB", path);
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

static sb_oauth *oauth_start(const sb_config *cfg, sb_store *store, const unsigned char *secret,
                             sb_up *up, const sb_regions *regions, const char *issuer, char *err,
                             size_t errlen)
{
    static verify_ctx vctx;
    vctx = (verify_ctx){.up = up, .regions = regions, .timeout_ms = cfg->upstream.probe_timeout_ms};
    sb_oauth_options oo = {.issuer = issuer, .store = store, .secret = secret, .up = up,
                           .regions = regions, .default_provider = cfg->default_provider,
                           .sandbox_url = cfg->sandbox_url,
                           .access_ttl_s = cfg->oauth.access_token_ttl_s,
                           .refresh_ttl_s = cfg->oauth.refresh_token_ttl_s,
                           .code_ttl_s = cfg->oauth.code_ttl_s,
                           .upstream_timeout_ms = cfg->upstream.timeout_ms,
                           .verify = verify_cb, .verify_ud = &vctx};
    char *pems[8] = {0};
    sb_oauth *o = NULL;
    for (size_t i = 0; i < cfg->oauth.n_signing_key_files; i++) {
        pems[i] = read_pem(cfg->oauth.signing_key_files[i], err, errlen);
        if (!pems[i]) goto out;
        oo.signing_pems[oo.n_signing++] = pems[i];
    }
    for (size_t i = 0; i < cfg->oauth.n_cimd_trusted; i++)
        oo.cimd_trusted[oo.n_cimd_trusted++] = cfg->oauth.cimd_trusted[i];
    for (size_t i = 0; i < cfg->oauth.n_apps && i < SB_OAUTH_MAX_APPS; i++) {
        sb_oauth_app *a = &oo.apps[oo.n_apps++];
        sb_strlcpy(a->provider, cfg->oauth.apps[i].provider, sizeof a->provider);
        sb_strlcpy(a->region, cfg->oauth.apps[i].region, sizeof a->region);
        sb_strlcpy(a->client_id, cfg->oauth.apps[i].client_id, sizeof a->client_id);
        sb_strlcpy(a->client_secret, cfg->oauth.apps[i].client_secret, sizeof a->client_secret);
        sb_strlcpy(a->scope, cfg->oauth.apps[i].scope, sizeof a->scope);
        sb_strlcpy(a->authorize_url, cfg->oauth.apps[i].authorize_url, sizeof a->authorize_url);
        sb_strlcpy(a->token_url, cfg->oauth.apps[i].token_url, sizeof a->token_url);
    }
    o = sb_oauth_new(&oo, err, errlen);
    explicit_bzero(&oo, sizeof oo);
out:
    for (size_t i = 0; i < 8; i++) {
        if (pems[i]) explicit_bzero(pems[i], strlen(pems[i]));
        free(pems[i]);
    }
    return o;
}

/* ---- the admin listener's provider check ------------------------------------------------------ */

typedef struct admin_verify_ctx {
    sb_up *up;
    const sb_regions *regions;
    unsigned timeout_ms;
} admin_verify_ctx;

static int admin_verify(void *ud, const char *provider, const char *region, const char *instance,
                        const char *key, size_t key_len, char region_out[24], char *message,
                        size_t msgcap)
{
    admin_verify_ctx *v = ud;
    return sb_verify_key_wait(v->up, v->regions, provider, region, instance, key, key_len,
                              v->timeout_ms, region_out, message, msgcap);
}

/* ---- provider-token mode ----------------------------------------------------------------------- */

typedef struct fetch_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, ok;
    char *body;
    size_t len;
} fetch_wait;

static void fetch_done(const sb_up_result *r, void *arg)
{
    fetch_wait *w = arg;
    pthread_mutex_lock(&w->mu);
    if (r->error == SB_UP_OK && r->status >= 200 && r->status < 300 && r->body) {
        w->body = malloc(r->body_len + 1);
        if (w->body) {
            memcpy(w->body, r->body, r->body_len);
            w->body[r->body_len] = 0;
            w->len = r->body_len;
            w->ok = 1;
        }
    }
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* sb_ptoken's fetch: a GET through the upstream engine (its https and address policy apply),
 * waited for on the refresher thread; the engine's deadline bounds the wait. */
static char *ptoken_fetch(void *ud, const char *url, size_t max, size_t *len)
{
    fetch_wait w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    const char *hdrs[] = {"Accept: application/json", NULL};
    sb_up_request rq = {.method = "GET", .url = url, .headers = hdrs, .idempotent = 1,
                        .timeout_ms = 10000, .max_response = max};
    if (sb_up_submit(ud, &rq, fetch_done, &w, NULL) != 0) return NULL;
    pthread_mutex_lock(&w.mu);
    while (!w.done) pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    *len = w.len;
    return w.ok ? w.body : NULL;
}

typedef struct ptoken_ctx {
    sb_ptoken *pt;
    unsigned refresh_s;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop, started, first_done;
} ptoken_ctx;

/* Refresher: fetches every issuer's keys at start, then looks every 15 s for issuers whose keys
 * are older than refresh_s or were marked by an unknown kid. */
static void *ptoken_thread(void *arg)
{
    ptoken_ctx *c = arg;
    for (;;) {
        int rc = sb_ptoken_refresh(c->pt, (int)c->refresh_s);
        if (rc < 0)
            sb_log_msg(SB_LOG_WARN, "provider_tokens",
                       "%d issuer(s) could not be refreshed; keeping their previous keys", -rc);
        pthread_mutex_lock(&c->mu);
        if (!c->first_done) {
            c->first_done = 1;
            pthread_cond_broadcast(&c->cv);
        }
        pthread_mutex_unlock(&c->mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 15;
        pthread_mutex_lock(&c->mu);
        while (!c->stop &&
               pthread_cond_timedwait(&c->cv, &c->mu, &ts) == 0) {
        }
        int stop = c->stop;
        pthread_mutex_unlock(&c->mu);
        if (stop) return NULL;
    }
}

static int ptoken_start(ptoken_ctx *c, const sb_config *cfg, const sb_regions *regions, sb_up *up)
{
    sb_ptoken_issuer iss[SB_PTOKEN_MAX_ISSUERS];
    size_t n = 0;
    memset(iss, 0, sizeof iss);
    for (size_t i = 0; i < cfg->oauth.ptok.n_issuers && n < SB_PTOKEN_MAX_ISSUERS; i++, n++) {
        sb_strlcpy(iss[n].issuer, cfg->oauth.ptok.issuers[i].issuer, sizeof iss[n].issuer);
        sb_strlcpy(iss[n].provider, cfg->oauth.ptok.issuers[i].provider, sizeof iss[n].provider);
        sb_strlcpy(iss[n].region, cfg->oauth.ptok.issuers[i].region, sizeof iss[n].region);
        sb_strlcpy(iss[n].audience, cfg->oauth.ptok.issuers[i].audience, sizeof iss[n].audience);
    }
    if (n == 0) {
        /* BoldSign's regional identity servers (the sandbox's stand-ins under sandbox_url) */
        for (size_t i = 0; i < regions->n && n < SB_PTOKEN_MAX_ISSUERS; i++) {
            const sb_region *r = &regions->r[i];
            if (strcmp(r->provider, "boldsign") != 0) continue;
            char u[400];
            snprintf(u, sizeof u, "%s/boldsign/%s/account", regions->sandbox_url, r->name);
            if (regions->sandbox_url[0])
                sb_strlcpy(iss[n].issuer, u, sizeof iss[n].issuer);
            else if (strcmp(r->name, "us") == 0)
                sb_strlcpy(iss[n].issuer, "https://account.boldsign.com", sizeof iss[n].issuer);
            else
                snprintf(iss[n].issuer, sizeof iss[n].issuer, "https://account-%s.boldsign.com",
                         r->name);
            sb_strlcpy(iss[n].provider, "boldsign", sizeof iss[n].provider);
            sb_strlcpy(iss[n].region, r->name, sizeof iss[n].region);
            n++;
        }
    }
    c->pt = sb_ptoken_new(iss, n, ptoken_fetch, up);
    if (!c->pt) return -1;
    c->refresh_s = cfg->oauth.ptok.refresh_s ? cfg->oauth.ptok.refresh_s : 300;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    if (pthread_create(&c->thread, NULL, ptoken_thread, c) != 0) return -1;
    c->started = 1;
    /* serve with the issuers' keys in hand when they answer quickly; never wait more than 5 s */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 5;
    pthread_mutex_lock(&c->mu);
    while (!c->first_done && pthread_cond_timedwait(&c->cv, &c->mu, &ts) == 0) {
    }
    pthread_mutex_unlock(&c->mu);
    return 0;
}

static void ptoken_stop(ptoken_ctx *c)
{
    if (c->started) {
        pthread_mutex_lock(&c->mu);
        c->stop = 1;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->thread, NULL);
        c->started = 0;
    }
    sb_ptoken_free(c->pt);
    c->pt = NULL;
}

/* GET /readyz: the store must answer a ping; asked at most once a second (cached). */
typedef struct ready_ctx {
    sb_store *store;
    pthread_mutex_t mu;
    uint64_t checked_ms;
    int rc;
} ready_ctx;

static int ready_cb(void *ud)
{
    ready_ctx *rc = ud;
    pthread_mutex_lock(&rc->mu);
    uint64_t now = sb_mono_ms();
    if (rc->checked_ms == 0 || now - rc->checked_ms >= 1000) {
        rc->checked_ms = now;
        rc->rc = sb_store_ping(rc->store) == 0 ? 0 : -1;
        if (rc->rc) sb_log_msg(SB_LOG_WARN, "store", "the store does not answer a ping: not ready");
    }
    int r = rc->rc;
    pthread_mutex_unlock(&rc->mu);
    return r;
}

/* Expired store records are deleted every minute on the event loop thread. */
#define STORE_SWEEP_MS 60000
typedef struct sweep_ctx {
    sb_loop *loop;
    sb_store *store;
    _Atomic uint64_t timer;
    atomic_int stopping;
} sweep_ctx;

static void sweep_run(void *arg)
{
    sweep_ctx *sc = arg;
    if (atomic_load(&sc->stopping)) return;
    uint64_t deleted = 0;
    if (sb_store_sweep(sc->store, 0, &deleted) != 0)
        sb_log_msg(SB_LOG_WARN, "store", "sweeping expired records failed");
    else if (deleted)
        sb_log_msg(SB_LOG_DEBUG, "store", "swept %llu expired records", (unsigned long long)deleted);
    atomic_store(&sc->timer, sb_loop_after(sc->loop, STORE_SWEEP_MS, sweep_run, sc));
}

/* GET /metrics: refresh the gauges read from their owners, then render every family. */
typedef struct metrics_ctx {
    sb_mcp *mcp;
    sb_up *up;
    sb_mseries *sessions, *up_in_flight, *yields, *polls_event, *polls_sleep;
    /* the engine's own counters at the last scrape that counted: sb_up_yields, sb_up_polls */
    atomic_uint_fast64_t yields_seen, polls_event_seen, polls_sleep_seen;
} metrics_ctx;

/* Add to counter s what an engine counter gained since the last scrape (`seen`); two scrapes at
 * once count each step once (the larger reading wins the exchange). */
static void metrics_catch_up(sb_mseries *s, uint64_t now, atomic_uint_fast64_t *seen)
{
    uint_fast64_t was = atomic_load(seen);
    while (now > was && !atomic_compare_exchange_weak(seen, &was, now)) {
    }
    if (now > was) sb_metrics_add(s, now - was);
}

static int metrics_cb(void *ud, sb_buf *out)
{
    metrics_ctx *mc = ud;
    sb_metrics_set(mc->sessions, (int64_t)sb_sessions_count(sb_mcp_sessions(mc->mcp)));
    sb_metrics_set(mc->up_in_flight, mc->up ? (int64_t)sb_up_in_flight(mc->up) : 0);
    uint64_t ev = 0, sl = 0;
    sb_up_polls(mc->up, &ev, &sl);
    metrics_catch_up(mc->yields, mc->up ? sb_up_yields(mc->up) : 0, &mc->yields_seen);
    metrics_catch_up(mc->polls_event, ev, &mc->polls_event_seen);
    metrics_catch_up(mc->polls_sleep, sl, &mc->polls_sleep_seen);
    return sb_metrics_render(sb_metrics_global(), out);
}

static void metrics_init(metrics_ctx *mc)
{
    sb_metrics *m = sb_metrics_global();
    sb_metrics_set(sb_metrics_series(sb_metrics_family(m, SB_METRIC_GAUGE, "signbridge_build_info",
                                                       "Always 1; the version is a label.", 1,
                                                       (const char *const[]){"version"}),
                                     (const char *const[]){SB_VERSION}),
                   1);
    mc->sessions = sb_metrics_series(
        sb_metrics_family(m, SB_METRIC_GAUGE, "signbridge_sessions", "Live MCP sessions.", 0, NULL),
        NULL);
    mc->up_in_flight = sb_metrics_series(
        sb_metrics_family(m, SB_METRIC_GAUGE, "signbridge_upstream_in_flight",
                          "Upstream requests accepted by the engine and not yet completed.", 0,
                          NULL),
        NULL);
    mc->yields = sb_metrics_series(
        sb_metrics_family(m, SB_METRIC_COUNTER, "signbridge_lane_yields_total",
                          "Times a serving lane, busy for limits.lane_yield_us without waiting, "
                          "gave its core to other runnable threads.",
                          0, NULL),
        NULL);
    sb_mfamily *polls = sb_metrics_family(
        m, SB_METRIC_COUNTER, "signbridge_lane_polls_total",
        "Serving lanes' polls before a wait (limits.lane_poll_us), by whether one found an event "
        "(result=event) or ran out and the lane slept (result=sleep).",
        1, (const char *const[]){"result"});
    mc->polls_event = sb_metrics_series(polls, (const char *const[]){"event"});
    mc->polls_sleep = sb_metrics_series(polls, (const char *const[]){"sleep"});
}

/* signbridge_store_operation_duration_seconds{op}: every store statement (sb_store observer). */
static _Atomic(sb_mfamily *) g_store_hist;

static void store_observe(const char *op, uint64_t us)
{
    sb_mfamily *f = atomic_load(&g_store_hist);
    if (f) sb_metrics_observe_us(sb_metrics_series(f, (const char *const[]){op}), us);
}

static void store_metrics_init(void)
{
    atomic_store(&g_store_hist,
                 sb_metrics_family(sb_metrics_global(), SB_METRIC_HISTOGRAM,
                                   "signbridge_store_operation_duration_seconds",
                                   "One store database statement, by operation.", 1,
                                   (const char *const[]){"op"}));
    sb_store_set_observer(store_observe);
}

/* The leaves (dotted paths) that differ between two configurations as JSON; arrays compare
 * whole. Settings that apply at run time go to `applied`, the others to `restart`. Only paths
 * are listed, never values (some are secrets). */
static void config_diff(const cJSON *a, const cJSON *b, const char *prefix, cJSON *applied,
                        cJSON *restart)
{
    const cJSON *x;
    cJSON_ArrayForEach(x, b)
    {
        char path[160];
        snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", x->string);
        const cJSON *y = cJSON_GetObjectItemCaseSensitive(a, x->string);
        if (cJSON_IsObject(x) && cJSON_IsObject(y) && strcmp(path, "base_urls") != 0 &&
            strcmp(path, "oauth.apps") != 0) {
            config_diff(y, x, path, applied, restart);
            continue;
        }
        if (y && cJSON_Compare(x, y, 1)) continue;
        int live = strcmp(path, "log_level") == 0 || strcmp(path, "allowed_origins") == 0 ||
                   strncmp(path, "ratelimit.", 10) == 0;
        cJSON_AddItemToArray(live ? applied : restart, cJSON_CreateString(path));
    }
}

/* SIGHUP: read the config file and the environment again (the command-line flags still win) and
 * apply what is safe at run time: log_level, ratelimit.*, allowed_origins. Everything else that
 * changed is listed as needing a restart. *cfg is updated for the applied fields only (no other
 * thread reads them at run time: sb_http keeps its own Origin list, sb_ratelimit its limits). */
static void reload_config(sb_config *cfg, const char *file, const cJSON *ov, int keep_sandbox,
                          sb_http *http, sb_ratelimit *rl)
{
    sb_config *nc = malloc(sizeof *nc);
    char err[1024] = "";
    if (!nc) return;
    if (sb_config_load(nc, file, ov, environ, err, sizeof err) < 0) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "error", err);
        cJSON_AddStringToObject(f, "msg", "the configuration is invalid: nothing was changed");
        sb_log_obj(SB_LOG_ERROR, "config_reload_failed", f);
        free(nc);
        return;
    }
    if (keep_sandbox) sb_strlcpy(nc->sandbox_url, cfg->sandbox_url, sizeof nc->sandbox_url);
    cJSON *a = sb_config_to_json(cfg), *b = sb_config_to_json(nc);
    cJSON *f = cJSON_CreateObject();
    cJSON *applied = cJSON_AddArrayToObject(f, "applied");
    cJSON *restart = cJSON_AddArrayToObject(f, "needs_restart");
    config_diff(a, b, "", applied, restart);
    cJSON_Delete(a);
    cJSON_Delete(b);
    int new_level = sb_log_level_parse(nc->log_level);
    sb_strlcpy(cfg->log_level, nc->log_level, sizeof cfg->log_level);
    cfg->ratelimit = nc->ratelimit;
    sb_ratelimit_configure(rl, &(sb_ratelimit_limits){
                                   .requests_per_minute = nc->ratelimit.requests_per_minute,
                                   .burst = nc->ratelimit.burst,
                                   .max_concurrent_calls = nc->ratelimit.max_concurrent_calls});
    if (sb_http_set_allowed_origins(http, (const char(*)[256])nc->allowed_origins,
                                    nc->n_allowed_origins) == 0) {
        memcpy(cfg->allowed_origins, nc->allowed_origins, sizeof cfg->allowed_origins);
        cfg->n_allowed_origins = nc->n_allowed_origins;
    }
    free(nc);
    cJSON_AddStringToObject(f, "log_level", cfg->log_level);
    sb_ratelimit_limits l;
    sb_ratelimit_get(rl, &l);
    cJSON *rj = cJSON_AddObjectToObject(f, "ratelimit");
    cJSON_AddNumberToObject(rj, "requests_per_minute", l.requests_per_minute);
    cJSON_AddNumberToObject(rj, "burst", l.burst);
    cJSON_AddNumberToObject(rj, "max_concurrent_calls", l.max_concurrent_calls);
    cJSON_AddNumberToObject(f, "allowed_origins", (double)cfg->n_allowed_origins);
    /* at warn when something could not be applied; written before the new level applies, so a
     * reload that quietens the log still says so */
    sb_log_obj(cJSON_GetArraySize(restart) ? SB_LOG_WARN : SB_LOG_INFO, "config_reloaded", f);
    sb_log_set_level(new_level);
}

#ifdef SB_JEMALLOC
/* Linked with jemalloc (meson.build, option "allocator"), which reads this at its first
 * allocation: two arenas instead of four per CPU (the lanes do nearly all the allocating; each
 * thread keeps its own cache in front of them) and dirty pages returned within a second, so
 * memory follows the load back down. docs/benchmarks.md has the measurements. */
const char *malloc_conf = SB_MALLOC_CONF;
#endif

int main(int argc, char **argv)
{
#if defined(__GLIBC__) && !defined(SB_JEMALLOC)
    /* A fixed mmap threshold: buffers of 256 KiB and more (upstream answers up to
     * upstream.max_response_bytes, request bodies, files) are mapped and given back on free.
     * glibc's default raises the threshold after the first such free, so later big buffers
     * come from the worker threads' arenas and stay resident: the soak saw RSS step up by
     * 2 MiB after oversized upstream answers and not come back (docs/benchmarks.md "Soak"). */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
#endif
    if (argc > 1 && strcmp(argv[1], "keys") == 0) return sb_keys_cli(argc - 1, argv + 1, environ);
    const char *config_file = NULL, *port_file = NULL, *admin_port_file = NULL;
    int check_only = 0, conformance = 0, want_sandbox = 0;
    cJSON *ov = cJSON_CreateObject();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
#define NEED_VALUE()                                                                      \
    do {                                                                                  \
        if (!has_val) {                                                                   \
            fprintf(stderr, "signbridge: %s needs a value\n%s", a, usage);                \
            cJSON_Delete(ov);                                                             \
            return 2;                                                                     \
        }                                                                                 \
    } while (0)
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            cJSON_Delete(ov);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("signbridge %s\n", SB_VERSION);
            cJSON_Delete(ov);
            return 0;
        } else if (strcmp(a, "--config") == 0) {
            NEED_VALUE();
            config_file = argv[++i];
        } else if (strcmp(a, "--check-config") == 0) {
            check_only = 1;
        } else if (strcmp(a, "--listen") == 0) {
            NEED_VALUE();
            cJSON_AddStringToObject(ov, "listen", argv[++i]);
        } else if (strcmp(a, "--port-file") == 0) {
            NEED_VALUE();
            port_file = argv[++i];
        } else if (strcmp(a, "--admin-listen") == 0) {
            NEED_VALUE();
            cJSON *ad = cJSON_GetObjectItemCaseSensitive(ov, "admin");
            if (!ad) ad = cJSON_AddObjectToObject(ov, "admin");
            cJSON_AddStringToObject(ad, "listen", argv[++i]);
        } else if (strcmp(a, "--admin-port-file") == 0) {
            NEED_VALUE();
            admin_port_file = argv[++i];
        } else if (strcmp(a, "--log-level") == 0) {
            NEED_VALUE();
            cJSON_AddStringToObject(ov, "log_level", argv[++i]);
        } else if (strcmp(a, "--conformance") == 0) {
            conformance = 1;
        } else if (strcmp(a, "--sandbox") == 0) {
            want_sandbox = 1;
        } else if (strcmp(a, "--sandbox-url") == 0) {
            NEED_VALUE();
            cJSON_AddStringToObject(ov, "sandbox_url", argv[++i]);
        } else if (strcmp(a, "--store") == 0) {
            NEED_VALUE();
            cJSON *so = cJSON_GetObjectItemCaseSensitive(ov, "store");
            if (!so) so = cJSON_AddObjectToObject(ov, "store");
            cJSON_DeleteItemFromObjectCaseSensitive(so, "url");
            cJSON_AddStringToObject(so, "url", argv[++i]);
        } else {
            fprintf(stderr, "signbridge: unknown option %s\n%s", a, usage);
            cJSON_Delete(ov);
            return 2;
        }
    }

    sb_config cfg;
    char err[1024] = "";
    if (sb_config_load(&cfg, config_file, ov, environ, err, sizeof err) < 0) {
        fprintf(stderr, "signbridge: invalid configuration: %s\n", err);
        cJSON_Delete(ov);
        return 2;
    }
    /* ov (the flags) is kept for SIGHUP: flags still win over the reloaded file. Held in a
     * static too, so an early exit below does not count as a leak (it lives until exit). */
    g_flags_kept = ov;
    if (check_only) {
        cJSON_Delete(ov);
        cJSON *j = sb_config_to_json(&cfg);
        char *s = cJSON_Print(j);
        puts(s ? s : "{}");
        free(s);
        cJSON_Delete(j);
        return 0;
    }
    sb_log_set_level(sb_log_level_parse(cfg.log_level));
    if (conformance && !listen_is_loopback(cfg.listen)) {
        fprintf(stderr,
                "signbridge: --conformance serves fixtures without authentication and only "
                "listens on loopback; %s is not a loopback address\n",
                cfg.listen);
        return 2;
    }

    sb_launch sandbox = {0};
    if (want_sandbox) {
        if (cfg.sandbox_url[0]) {
            fprintf(stderr, "signbridge: --sandbox and --sandbox-url are exclusive\n");
            return 2;
        }
        if (sb_launch_sandbox(&sandbox, err, sizeof err) < 0) {
            fprintf(stderr, "signbridge: --sandbox: %s\n", err);
            return 1;
        }
        sb_strlcpy(cfg.sandbox_url, sandbox.url, sizeof cfg.sandbox_url);
        sb_launch_oauth_apps(&sandbox, &cfg);
    }
    sb_regions regions;
    if (sb_regions_init(&regions, &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "signbridge: invalid configuration: %s\n", err);
        sb_launch_stop(&sandbox);
        return 2;
    }

    unsigned char secret[32];
    if (sb_secret_load_or_create(cfg.secret_file, secret, err, sizeof err) < 0) {
        fprintf(stderr, "signbridge: %s\n", err);
        return 2;
    }
    /* the key that seals upstream credentials in the store (docs/store.md) */
    static uint8_t seal_key[SB_SEAL_KEY_LEN];
    if (sb_seal_derive_key(secret, sizeof secret, seal_key) < 0) {
        fprintf(stderr, "signbridge: cannot derive the sealing key\n");
        return 1;
    }

    /* The persistent store replicas share (idempotency, region cache, sessions). --conformance
     * keeps it in memory: nothing is left on disk. Never print the URL's password. */
    const char *store_url = conformance ? "sqlite::memory:" : cfg.store.url;
    char store_url_safe[sizeof cfg.store.url];
    sb_config_redact_url(store_url, store_url_safe, sizeof store_url_safe);
    sb_store *store = NULL;
    if (sb_store_open(&store, store_url, NULL, err, sizeof err) != 0) {
        /* one line: libpq's messages span several */
        size_t w = 0;
        for (size_t r = 0; err[r]; r++) {
            char ch = err[r] == '\n' || err[r] == '\t' || err[r] == '\r' ? ' ' : err[r];
            if (ch == ' ' && (w == 0 || err[w - 1] == ' ')) continue;
            err[w++] = ch;
        }
        while (w && err[w - 1] == ' ') w--;
        err[w] = '\0';
        fprintf(stderr, "signbridge: cannot open the store %s: %s\n", store_url_safe, err);
        sb_launch_stop(&sandbox);
        return 1;
    }

    /* thousands of concurrent calls need thousands of descriptors: take what we may */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    /* Signals are handled by this thread alone (sigwait); block them before threads start. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    uint64_t t0 = sb_mono_us();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    sb_loop *loop = sb_loop_start();
    sb_registry *reg = sb_registry_new();
    if (!loop || !reg) {
        fprintf(stderr, "signbridge: out of memory\n");
        return 1;
    }
    if (conformance && sb_fixtures_add_tools(reg, err, sizeof err) < 0) {
        fprintf(stderr, "signbridge: fixtures: %s\n", err);
        return 1;
    }
    sb_mcp_options mo = {
        .server_name = "signbridge",
        .server_title = "signbridge e-signature bridge",
        .server_version = SB_VERSION,
        .instructions = cfg.instructions,
        .page_size = cfg.tools_page_size,
        .max_sessions = cfg.max_sessions,
        .session_idle_s = cfg.session_idle_timeout_s,
        .call_timeout_s = cfg.call_timeout_s,
    };
    /* upstream engine and the provider bridge (not in --conformance mode) */
    const char *http_ok[SB_MAX_REGIONS + 3] = {0};
    size_t nh = 0;
    if (regions.sandbox_url[0]) http_ok[nh++] = regions.sandbox_url;
    for (size_t i = 0; i < regions.n && nh < SB_MAX_REGIONS + 1; i++)
        if (strncmp(regions.r[i].base_url, "http://", 7) == 0) http_ok[nh++] = regions.r[i].base_url;
    const char *nets[20] = {0};
    size_t nn = 0;
    for (size_t i = 0; i < cfg.upstream.n_allowed_networks; i++)
        nets[nn++] = cfg.upstream.allowed_networks[i];
    if (regions.sandbox_url[0]) {
        nets[nn++] = "127.0.0.0/8";
        nets[nn++] = "::1";
    }
    sb_up_options uo = {
        .ca_file = cfg.upstream.ca_file[0] ? cfg.upstream.ca_file : NULL,
        .http_allowed_prefixes = http_ok,
        .allowed_networks = nets,
        .max_host_connections = cfg.upstream.max_host_connections,
        .connect_timeout_ms = cfg.upstream.connect_timeout_ms,
        .max_response_bytes = cfg.upstream.max_response_bytes,
        .max_retries = cfg.upstream.max_retries,
        /* one serving lane per HTTP thread: each runs a daemon and its calls' transfers */
        .lanes = cfg.http_threads,
        .yield_us = cfg.lane_yield_us,
        .poll_us = cfg.lane_poll_us,
    };
    sb_up *up = NULL;
    sb_bridge *bridge = NULL;
    if (!conformance) {
        up = sb_up_start(&uo, err, sizeof err);
        if (!up) {
            fprintf(stderr, "signbridge: %s\n", err);
            return 1;
        }
    }
    sb_mcp *mcp = sb_mcp_new(&mo, reg, loop);
    if (!mcp) {
        fprintf(stderr, "signbridge: cannot create the MCP engine\n");
        return 1;
    }
    if (conformance && sb_fixtures_add_methods(mcp, err, sizeof err) < 0) {
        fprintf(stderr, "signbridge: fixtures: %s\n", err);
        return 1;
    }
    char public_url_buf[300];
    if (!conformance) {
        sb_bridge_options bo = {.up = up,
                                .regions = &regions,
                                .public_url = public_url_buf,
                                .call_timeout_ms = cfg.upstream.timeout_ms,
                                .probe_timeout_ms = cfg.upstream.probe_timeout_ms,
                                .cache_ttl_s = cfg.upstream.region_cache_ttl_s,
                                .confirm = strcmp(cfg.actions.confirm, "off") == 0   ? SB_CONFIRM_OFF
                                           : strcmp(cfg.actions.confirm, "all") == 0 ? SB_CONFIRM_ALL
                                                                                     : SB_CONFIRM_DESTRUCTIVE,
                                .audit_path = cfg.actions.audit_log,
                                .idempotency_ttl_s = cfg.actions.idempotency_ttl_s,
                                .idempotency_pending_ttl_s =
                                    (cfg.call_timeout_s > cfg.upstream.timeout_ms / 1000
                                         ? cfg.call_timeout_s
                                         : cfg.upstream.timeout_ms / 1000) +
                                    60,
                                .store = store,
                                .session_idle_s = cfg.session_idle_timeout_s};
        /* the public URL is known once the server is bound; fill it below */
        public_url_buf[0] = '\0';
        bridge = sb_bridge_new(&bo);
        if (!bridge) {
            fprintf(stderr, "signbridge: cannot open the audit log %s: %s\n", cfg.actions.audit_log,
                    strerror(errno));
            return 1;
        }
        if (sb_bridge_register_tools(bridge, reg, err, sizeof err) < 0) {
            fprintf(stderr, "signbridge: tools: %s\n", err);
            return 1;
        }
        sb_bridge_attach(bridge, mcp);
    }
    static ready_ctx rctx;
    rctx.store = store;
    pthread_mutex_init(&rctx.mu, NULL);
    static sweep_ctx sctx;
    sctx.loop = loop;
    sctx.store = store;
    atomic_store(&sctx.timer, sb_loop_after(loop, STORE_SWEEP_MS, sweep_run, &sctx));
    static metrics_ctx mctx;
    mctx.mcp = mcp;
    mctx.up = up;
    int admin_metrics = !conformance && cfg.admin.listen[0] && cfg.metrics.on_admin;
    if (cfg.metrics.enabled || admin_metrics) {
        metrics_init(&mctx);
        store_metrics_init();
    }
    /* per-credential limits (docs/operations.md): shared through the store on PostgreSQL */
    sb_ratelimit_limits rll = {.requests_per_minute = cfg.ratelimit.requests_per_minute,
                               .burst = cfg.ratelimit.burst,
                               .max_concurrent_calls = cfg.ratelimit.max_concurrent_calls};
    sb_ratelimit *ratelimit =
        conformance ? NULL
                    : sb_ratelimit_new(store, strcmp(sb_store_backend(store), "postgresql") == 0,
                                       &rll);
    if (!conformance && !ratelimit) {
        fprintf(stderr, "signbridge: out of memory\n");
        return 1;
    }
    sb_keys *keys = conformance ? NULL : sb_keys_new(store, secret);
    if (!conformance && !keys) {
        fprintf(stderr, "signbridge: out of memory\n");
        return 1;
    }
    static ptoken_ctx ptctx;
    if (!conformance && cfg.oauth.ptok.enabled &&
        ptoken_start(&ptctx, &cfg, &regions, up) != 0) {
        fprintf(stderr, "signbridge: cannot start provider-token mode\n");
        return 1;
    }
    sb_http_options ho = {
        .cfg = &cfg, .mcp = mcp, .anonymous_ok = conformance, .secret = secret, .regions = &regions,
        .file_get = bridge ? file_get_cb : NULL, .file_ud = bridge,
        .ptoken = ptctx.pt,
        .keys = keys,
        .metrics_render = metrics_cb, .metrics_ud = &mctx, .ready = ready_cb, .ready_ud = &rctx,
        .ratelimit = ratelimit, .keys_pending = !conformance && cfg.oauth.enabled, .up = up};
    sb_http *http = sb_http_start(&ho, err, sizeof err);
    if (!http) {
        fprintf(stderr, "signbridge: %s\n", err);
        return 1;
    }
    sb_strlcpy(public_url_buf, sb_http_public_url(http), sizeof public_url_buf);
    /* the OAuth server's issuer is the public origin, known once bound (docs/auth.md) */
    sb_oauth *oauth = NULL;
    if (!conformance && cfg.oauth.enabled) {
        oauth = oauth_start(&cfg, store, secret, up, &regions, public_url_buf, err, sizeof err);
        if (!oauth) {
            fprintf(stderr, "signbridge: %s\n", err);
            sb_http_stop(http);
            return 1;
        }
        sb_http_set_oauth(http, oauth);
        sb_http_set_keys_loaded(http, 1); /* the signing keys are loaded: /readyz may say ready */
    }
    sb_admin *admin = NULL;
    static admin_verify_ctx avctx;
    if (!conformance && cfg.admin.listen[0]) {
        avctx = (admin_verify_ctx){.up = up, .regions = &regions,
                                   .timeout_ms = cfg.upstream.probe_timeout_ms};
        sb_admin_options ao = {.listen = cfg.admin.listen, .token = cfg.admin.token, .keys = keys,
                               .verify = admin_verify, .verify_ud = &avctx,
                               .metrics_render = admin_metrics ? metrics_cb : NULL,
                               .metrics_ud = &mctx};
        admin = sb_admin_start(&ao, err, sizeof err);
        if (!admin) {
            fprintf(stderr, "signbridge: %s\n", err);
            sb_http_stop(http);
            sb_oauth_free(oauth); /* nothing serves any more: no leak report buries the message */
            sb_keys_free(keys);
            return 1;
        }
        if (admin_port_file && write_port_file(admin_port_file, sb_admin_port(admin)) < 0) {
            fprintf(stderr, "signbridge: cannot write port file %s: %s\n", admin_port_file,
                    strerror(errno));
            sb_admin_stop(admin);
            sb_http_stop(http);
            return 1;
        }
    }
    if (port_file && write_port_file(port_file, sb_http_port(http)) < 0) {
        fprintf(stderr, "signbridge: cannot write port file %s: %s\n", port_file, strerror(errno));
        sb_http_stop(http);
        return 1;
    }
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "version", SB_VERSION);
    cJSON_AddNumberToObject(f, "port", sb_http_port(http));
    cJSON_AddStringToObject(f, "url", sb_http_public_url(http));
    cJSON_AddStringToObject(f, "mode", conformance ? "conformance" : "default");
    cJSON_AddStringToObject(f, "store", sb_store_backend(store));
    cJSON_AddNumberToObject(f, "tools", (double)sb_registry_count(reg));
    cJSON_AddNumberToObject(f, "startup_us", (double)(sb_mono_us() - t0));
    sb_log_obj(SB_LOG_INFO, "ready", f);
    if (cfg.sandbox_url[0]) {
        f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "sandbox_url", cfg.sandbox_url);
        cJSON *rs = cJSON_AddObjectToObject(f, "regions");
        for (size_t i = 0; i < regions.n; i++) {
            char k[64];
            snprintf(k, sizeof k, "%s/%s", regions.r[i].provider, regions.r[i].name);
            cJSON_AddStringToObject(rs, k, regions.r[i].base_url);
        }
        sb_log_obj(SB_LOG_INFO, "upstream_sandbox", f);
    }
    if (want_sandbox) sb_launch_print_accounts(&sandbox, sb_http_public_url(http));

    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0) continue;
        if (sig == SIGHUP) {
            reload_config(&cfg, config_file, ov, want_sandbox, http, ratelimit);
            continue;
        }
        sb_log_msg(SB_LOG_INFO, "shutdown", "signal %d: stopping", sig);
        break;
    }
    /* Drain: stop accepting, let in-flight requests finish within the deadline, then stop the
     * calls still running (their clients get an error) and wait for those responses to go out. */
    sb_http_quiesce(http);
    uint64_t deadline = sb_mono_ms() + (uint64_t)cfg.drain_timeout_s * 1000;
    while (sb_http_in_flight(http) > 0 && sb_mono_ms() < deadline) usleep(10000);
    size_t stopped = sb_mcp_shutdown(mcp);
    uint64_t hard = sb_mono_ms() + 5000;
    while (sb_http_in_flight(http) > 0 && sb_mono_ms() < hard) usleep(10000);
    f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "calls_stopped", (double)stopped);
    cJSON_AddNumberToObject(f, "requests_left", sb_http_in_flight(http));
    sb_log_obj(SB_LOG_INFO, "drained", f);
    sb_http_stop(http);
    sb_up_stop(up); /* any upstream call still running completes as cancelled */
    atomic_store(&sctx.stopping, 1);
    sb_loop_cancel(loop, atomic_load(&sctx.timer));
    sb_loop_stop(loop); /* runs leftover timers, which still use the engine (and the store) */
    sb_mcp_free(mcp);
    sb_bridge_free(bridge);
    sb_oauth_free(oauth);
    sb_admin_stop(admin);
    ptoken_stop(&ptctx);
    sb_keys_free(keys);
    sb_ratelimit_free(ratelimit);
    sb_store_set_observer(NULL);
    sb_store_close(store); /* after the drain: nothing uses it any more */
    cJSON_Delete(ov);
    pthread_mutex_destroy(&rctx.mu);
    OPENSSL_cleanse(seal_key, sizeof seal_key);
    OPENSSL_cleanse(secret, sizeof secret);
    sb_launch_stop(&sandbox);
    curl_global_cleanup();
    sb_log_msg(SB_LOG_INFO, "stopped", "bye");
    return 0;
}
