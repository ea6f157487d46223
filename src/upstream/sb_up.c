#include "upstream/sb_up.h"

#include "core/sb_buf.h"
#include "core/sb_log.h"
#include "core/sb_util.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HDR_BYTES 65536
#define POOL_MAX 256

typedef struct net {
    int family;
    unsigned char addr[16];
    unsigned prefix;
} net;

typedef struct job {
    struct job *next_q;           /* submit queue / backoff list */
    struct job *prev_a, *next_a;  /* active list */
    uint64_t id;
    char *method, *url, *body;
    size_t body_len;
    struct curl_slist *headers;
    int idempotent;
    int policy;                   /* SB_UP_POLICY_* */
    uint64_t deadline_ms, start_us, retry_at_ms;
    size_t max_resp;
    unsigned attempts;
    CURL *easy;
    sb_buf resp, hdrs;
    int too_big, refused, cancel, in_multi;
    sb_up_done_fn done;
    void *arg;
    struct sb_up *u;
} job;

struct sb_up {
    sb_up_options o;
    char **http_prefixes;
    size_t n_http_prefixes;
    net nets[SB_UP_MAX_ALLOW];
    size_t n_nets;
    CURLM *multi;
    int ep, evfd;
    pthread_t thread;
    pthread_mutex_t mu;        /* protects queue, cancels, stopping */
    job *q_head, *q_tail;
    uint64_t *cancels;
    size_t n_cancels, cap_cancels;
    int stopping;
    atomic_uint in_flight;
    atomic_uint_fast64_t next_id;
    /* engine-thread only */
    job *active;
    job *backoff;              /* sorted by retry_at_ms */
    uint64_t curl_deadline_ms; /* 0 = none */
    CURL *pool[POOL_MAX];
    size_t npool;
};

/* ---- address policy ------------------------------------------------------------------------ */

static int in_net(const unsigned char *a, const unsigned char *n, unsigned prefix)
{
    unsigned full = prefix / 8, rest = prefix % 8;
    if (memcmp(a, n, full) != 0) return 0;
    if (!rest) return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[full] & mask) == (n[full] & mask);
}

static int v4_private(const unsigned char *a)
{
    static const struct {
        unsigned char n[4];
        unsigned p;
    } r[] = {{{0, 0, 0, 0}, 8},       {{10, 0, 0, 0}, 8},    {{100, 64, 0, 0}, 10},
             {{127, 0, 0, 0}, 8},     {{169, 254, 0, 0}, 16}, {{172, 16, 0, 0}, 12},
             {{192, 0, 0, 0}, 24},    {{192, 168, 0, 0}, 16}, {{198, 18, 0, 0}, 15},
             {{224, 0, 0, 0}, 4},     {{240, 0, 0, 0}, 4}};
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
        if (in_net(a, r[i].n, r[i].p)) return 1;
    return 0;
}

static int v6_private(const unsigned char *a)
{
    static const unsigned char zero[16] = {0};
    static const unsigned char loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a, zero, 16) == 0 || memcmp(a, loop, 16) == 0) return 1;
    if (memcmp(a, mapped, 12) == 0) return v4_private(a + 12);
    if ((a[0] & 0xfe) == 0xfc) return 1;                 /* fc00::/7 ULA */
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) return 1; /* fe80::/10 link-local */
    if (a[0] == 0xff) return 1;                          /* multicast */
    return 0;
}

int sb_up_address_is_private(const char *ip)
{
    unsigned char a[16];
    if (inet_pton(AF_INET, ip, a) == 1) return v4_private(a);
    if (inet_pton(AF_INET6, ip, a) == 1) return v6_private(a);
    return 1;
}

static int parse_net(const char *s, net *out)
{
    char buf[64];
    sb_strlcpy(buf, s, sizeof buf);
    char *slash = strchr(buf, '/');
    int64_t prefix = -1;
    if (slash) {
        *slash = '\0';
        if (sb_parse_i64(slash + 1, 0, 128, &prefix) < 0) return -1;
    }
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        out->prefix = prefix < 0 ? 32 : (unsigned)prefix;
        return out->prefix <= 32 ? 0 : -1;
    }
    if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        out->prefix = prefix < 0 ? 128 : (unsigned)prefix;
        return 0;
    }
    return -1;
}

static int addr_allowed(const sb_up *u, const struct sockaddr *sa)
{
    const unsigned char *a;
    int fam = sa->sa_family, priv;
    if (fam == AF_INET) {
        a = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
        priv = v4_private(a);
    } else if (fam == AF_INET6) {
        a = (const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
        priv = v6_private(a);
    } else {
        return 0;
    }
    if (!priv) return 1;
    for (size_t i = 0; i < u->n_nets; i++)
        if (u->nets[i].family == fam && in_net(a, u->nets[i].addr, u->nets[i].prefix)) return 1;
    return 0;
}

/* 1 for any address in a refused range, whatever the engine allows (PUBLIC policy). */
static int addr_private(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return v4_private((const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr);
    if (sa->sa_family == AF_INET6)
        return v6_private((const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return 1;
}

static curl_socket_t open_cb(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    job *j = clientp;
    if (purpose == CURLSOCKTYPE_IPCXN && j->policy != SB_UP_POLICY_TRUSTED &&
        (j->policy == SB_UP_POLICY_PUBLIC ? addr_private(&addr->addr)
                                          : !addr_allowed(j->u, &addr->addr))) {
        j->refused = 1;
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

/* ---- curl callbacks ----------------------------------------------------------------------- */

static size_t write_cb(char *p, size_t sz, size_t nm, void *ud)
{
    job *j = ud;
    size_t n = sz * nm;
    if (j->resp.len + n > j->max_resp || sb_buf_append(&j->resp, p, n) != 0) {
        j->too_big = 1;
        return 0;
    }
    return n;
}

static size_t header_cb(char *p, size_t sz, size_t nm, void *ud)
{
    job *j = ud;
    size_t n = sz * nm;
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) sb_buf_reset(&j->hdrs); /* a new response */
    sb_buf_append(&j->hdrs, p, n); /* bounded; excess headers are dropped */
    return n;
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    sb_up *u = userp;
    (void)e;
    struct epoll_event ev = {0};
    ev.data.fd = s;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(u->ep, EPOLL_CTL_DEL, s, NULL);
        curl_multi_assign(u->multi, s, NULL);
        return 0;
    }
    ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u);
    if (socketp) {
        if (epoll_ctl(u->ep, EPOLL_CTL_MOD, s, &ev) < 0 && errno == ENOENT)
            epoll_ctl(u->ep, EPOLL_CTL_ADD, s, &ev);
    } else {
        if (epoll_ctl(u->ep, EPOLL_CTL_ADD, s, &ev) < 0 && errno == EEXIST)
            epoll_ctl(u->ep, EPOLL_CTL_MOD, s, &ev);
        curl_multi_assign(u->multi, s, (void *)1);
    }
    return 0;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    sb_up *u = userp;
    (void)m;
    u->curl_deadline_ms = timeout_ms < 0 ? 0 : sb_mono_ms() + (uint64_t)timeout_ms;
    if (timeout_ms >= 0 && u->curl_deadline_ms == 0) u->curl_deadline_ms = 1;
    return 0;
}

/* ---- jobs ------------------------------------------------------------------------------------ */

static int http_allowed(const sb_up *u, const char *url)
{
    for (size_t i = 0; i < u->n_http_prefixes; i++)
        if (strncmp(url, u->http_prefixes[i], strlen(u->http_prefixes[i])) == 0) return 1;
    return 0;
}

static void job_free(sb_up *u, job *j)
{
    if (j->easy) {
        if (u->npool < POOL_MAX) {
            curl_easy_reset(j->easy);
            u->pool[u->npool++] = j->easy;
        } else {
            curl_easy_cleanup(j->easy);
        }
    }
    free(j->method);
    free(j->url);
    free(j->body);
    curl_slist_free_all(j->headers);
    sb_buf_free(&j->resp);
    sb_buf_free(&j->hdrs);
    free(j);
}

static void active_remove(sb_up *u, job *j)
{
    if (j->prev_a)
        j->prev_a->next_a = j->next_a;
    else if (u->active == j)
        u->active = j->next_a;
    if (j->next_a) j->next_a->prev_a = j->prev_a;
    j->prev_a = j->next_a = NULL;
}

static void finish(sb_up *u, job *j, int error, int status, const char *text)
{
    if (j->in_multi) {
        curl_multi_remove_handle(u->multi, j->easy);
        j->in_multi = 0;
    }
    active_remove(u, j);
    if (j->resp.data == NULL) sb_buf_append(&j->resp, "", 0);
    if (j->hdrs.data == NULL) sb_buf_append(&j->hdrs, "", 0);
    sb_up_result r = {
        .error = error,
        .status = status,
        .error_text = text ? text : "",
        .body = j->resp.data ? j->resp.data : "",
        .body_len = j->resp.len,
        .attempts = j->attempts,
        .elapsed_us = sb_mono_us() - j->start_us,
        .hdrs_ = j->hdrs.data,
    };
    j->done(&r, j->arg);
    job_free(u, j);
    atomic_fetch_sub(&u->in_flight, 1);
}

static int start_attempt(sb_up *u, job *j)
{
    uint64_t now = sb_mono_ms();
    if (now >= j->deadline_ms) {
        finish(u, j, SB_UP_ETIMEDOUT, 0, "deadline passed before the request could be sent");
        return -1;
    }
    if (!j->easy) j->easy = u->npool ? u->pool[--u->npool] : curl_easy_init();
    if (!j->easy) {
        finish(u, j, SB_UP_EIO, 0, "out of memory");
        return -1;
    }
    CURL *e = j->easy;
    curl_easy_reset(e);
    sb_buf_reset(&j->resp);
    sb_buf_reset(&j->hdrs);
    j->too_big = j->refused = 0;
    j->attempts++;
    curl_easy_setopt(e, CURLOPT_URL, j->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, j);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, j->policy == SB_UP_POLICY_TRUSTED ||
                                                 (j->policy == SB_UP_POLICY_DEFAULT &&
                                                  http_allowed(u, j->url))
                                             ? "http,https"
                                             : "https");
    /* Wait for a connection's HTTP/2 answer only where multiplexing can happen (https + ALPN):
     * over plain HTTP/1.1 it would queue every call behind one busy connection. */
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, strncmp(j->url, "https://", 8) == 0 ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)u->o.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(j->deadline_ms - now));
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, j);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_cb);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, j);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->headers);
    if (!j->idempotent || u->o.max_retries == 0) {
        /* libcurl silently resends a request whose reused connection dies before the first
         * response byte: an action must go out exactly once, so it gets a connection of its own */
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    }
    curl_easy_setopt(e, CURLOPT_USERAGENT, "signbridge");
    if (u->o.ca_file && *u->o.ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, u->o.ca_file);
    if (strcmp(j->method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, j->method);
        if (j->body || strcmp(j->method, "DELETE") != 0) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->body_len);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->body ? j->body : "");
        }
    }
    if (curl_multi_add_handle(u->multi, e) != CURLM_OK) {
        finish(u, j, SB_UP_EIO, 0, "cannot start the transfer");
        return -1;
    }
    j->in_multi = 1;
    return 0;
}

/* Seconds to wait before a retry as the response asks (Retry-After, X-RateLimit-Reset), or -1. */
static long wait_hint_s(const char *hdrs)
{
    sb_up_result r = {.hdrs_ = hdrs};
    const char *ra = sb_up_header(&r, "Retry-After");
    int64_t v;
    if (ra) {
        if (sb_parse_i64(ra, 0, 86400 * 7, &v) == 0) return (long)v;
        time_t t = curl_getdate(ra, NULL);
        if (t > 0) {
            long d = (long)(t - time(NULL));
            return d < 0 ? 0 : d;
        }
    }
    const char *rs = sb_up_header(&r, "X-RateLimit-Reset");
    if (rs && sb_parse_i64(rs, 0, INT64_MAX / 2, &v) == 0) {
        if (v > 1000000000) {
            long d = (long)(v - (int64_t)time(NULL));
            return d < 0 ? 0 : d;
        }
        return (long)v;
    }
    return -1;
}

static void backoff_insert(sb_up *u, job *j)
{
    job **pp = &u->backoff;
    while (*pp && (*pp)->retry_at_ms <= j->retry_at_ms) pp = &(*pp)->next_q;
    j->next_q = *pp;
    *pp = j;
}

/* Decide whether to retry; returns 1 if scheduled. */
static int maybe_retry(sb_up *u, job *j, int retryable, long hint_s)
{
    if (!j->idempotent || !retryable || j->cancel || j->attempts > u->o.max_retries) return 0;
    uint64_t now = sb_mono_ms();
    uint64_t wait;
    if (hint_s >= 0) {
        wait = (uint64_t)hint_s * 1000;
    } else {
        uint64_t cap = (uint64_t)u->o.backoff_base_ms << (j->attempts - 1);
        if (cap > 5000) cap = 5000;
        uint32_t r;
        sb_random_bytes(&r, sizeof r);
        wait = cap / 2 + r % (cap / 2 + 1);
    }
    if (now + wait + 50 >= j->deadline_ms) return 0; /* would not fit in the deadline */
    if (j->in_multi) {
        curl_multi_remove_handle(u->multi, j->easy);
        j->in_multi = 0;
    }
    j->retry_at_ms = now + wait;
    backoff_insert(u, j);
    return 1;
}

static void on_done(sb_up *u, CURL *e, CURLcode code)
{
    job *j = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&j);
    if (!j) return;
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(u->multi, e);
    j->in_multi = 0;
    if (j->cancel) {
        finish(u, j, SB_UP_ECANCELLED, (int)status, "cancelled");
        return;
    }
    if (j->too_big) {
        char msg[96];
        snprintf(msg, sizeof msg, "response larger than %zu bytes", j->max_resp);
        finish(u, j, SB_UP_ETOOBIG, (int)status, msg);
        return;
    }
    if (j->refused) {
        finish(u, j, SB_UP_EREFUSED, 0, "destination address refused by policy (private or "
                                        "loopback network not allow-listed)");
        return;
    }
    if (code == CURLE_OK) {
        int retryable = status == 429 || status == 502 || status == 503 || status == 504;
        if (retryable && maybe_retry(u, j, 1, wait_hint_s(j->hdrs.data ? j->hdrs.data : "")))
            return;
        finish(u, j, SB_UP_OK, (int)status, NULL);
        return;
    }
    const char *text = curl_easy_strerror(code);
    switch (code) {
    case CURLE_UNSUPPORTED_PROTOCOL:
        finish(u, j, SB_UP_EREFUSED, 0, "scheme not allowed (https only)");
        return;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
        if (maybe_retry(u, j, 1, -1)) return;
        finish(u, j, SB_UP_ECONNECT, 0, text);
        return;
    case CURLE_OPERATION_TIMEDOUT:
        if (sb_mono_ms() + 50 < j->deadline_ms && status == 0 && maybe_retry(u, j, 1, -1)) return;
        finish(u, j, sb_mono_ms() + 50 >= j->deadline_ms ? SB_UP_ETIMEDOUT : SB_UP_ECONNECT,
               (int)status, text);
        return;
    default:
        finish(u, j, SB_UP_EIO, (int)status, text);
        return;
    }
}

static void check_info(sb_up *u)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(u->multi, &left)))
        if (m->msg == CURLMSG_DONE) on_done(u, m->easy_handle, m->data.result);
}

static void drain_commands(sb_up *u, int *stopping)
{
    uint64_t v;
    ssize_t r = read(u->evfd, &v, sizeof v);
    (void)r;
    pthread_mutex_lock(&u->mu);
    job *q = u->q_head;
    u->q_head = u->q_tail = NULL;
    uint64_t *cancels = u->cancels;
    size_t nc = u->n_cancels;
    u->cancels = NULL;
    u->n_cancels = u->cap_cancels = 0;
    *stopping = u->stopping;
    pthread_mutex_unlock(&u->mu);
    while (q) {
        job *n = q->next_q;
        q->next_q = NULL;
        q->next_a = u->active;
        if (u->active) u->active->prev_a = q;
        u->active = q;
        start_attempt(u, q);
        q = n;
    }
    for (size_t i = 0; i < nc; i++) {
        for (job *j = u->active; j; j = j->next_a) {
            if (j->id != cancels[i]) continue;
            j->cancel = 1;
            /* in backoff: take it out of the list */
            for (job **pp = &u->backoff; *pp; pp = &(*pp)->next_q)
                if (*pp == j) {
                    *pp = j->next_q;
                    break;
                }
            finish(u, j, SB_UP_ECANCELLED, 0, "cancelled");
            break;
        }
    }
    free(cancels);
}

static void *run(void *arg)
{
    sb_up *u = arg;
    int stopping = 0;
    for (;;) {
        uint64_t now = sb_mono_ms();
        long timeout = 1000;
        if (u->curl_deadline_ms) timeout = u->curl_deadline_ms > now ? (long)(u->curl_deadline_ms - now) : 0;
        if (u->backoff) {
            long b = u->backoff->retry_at_ms > now ? (long)(u->backoff->retry_at_ms - now) : 0;
            if (b < timeout) timeout = b;
        }
        struct epoll_event evs[128];
        int n = epoll_wait(u->ep, evs, 128, (int)timeout);
        int running;
        for (int i = 0; i < n; i++) {
            if (evs[i].data.fd == u->evfd) {
                drain_commands(u, &stopping);
                continue;
            }
            int flags = 0;
            if (evs[i].events & EPOLLIN) flags |= CURL_CSELECT_IN;
            if (evs[i].events & EPOLLOUT) flags |= CURL_CSELECT_OUT;
            if (evs[i].events & (EPOLLERR | EPOLLHUP)) flags |= CURL_CSELECT_ERR;
            curl_multi_socket_action(u->multi, evs[i].data.fd, flags, &running);
        }
        now = sb_mono_ms();
        if (u->curl_deadline_ms && now >= u->curl_deadline_ms) {
            u->curl_deadline_ms = 0;
            curl_multi_socket_action(u->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        check_info(u);
        while (u->backoff && u->backoff->retry_at_ms <= sb_mono_ms()) {
            job *j = u->backoff;
            u->backoff = j->next_q;
            j->next_q = NULL;
            start_attempt(u, j);
        }
        if (stopping) break;
    }
    /* shutdown: everything still running is cancelled */
    u->backoff = NULL; /* those jobs are on the active list too */
    while (u->active) finish(u, u->active, SB_UP_ECANCELLED, 0, "engine stopping");
    return NULL;
}

/* ---- public API ---------------------------------------------------------------------------- */

const char *sb_up_header(const sb_up_result *r, const char *name)
{
    static __thread char value[512];
    const char *h = r->hdrs_;
    if (!h) return NULL;
    size_t nl = strlen(name);
    while (*h) {
        const char *le = strchr(h, '\n');
        size_t ll = le ? (size_t)(le - h) : strlen(h);
        if (ll > nl && h[nl] == ':' && strncasecmp(h, name, nl) == 0) {
            const char *v = h + nl + 1;
            size_t vl = ll - nl - 1;
            while (vl && (*v == ' ' || *v == '\t')) v++, vl--;
            while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' ')) vl--;
            if (vl >= sizeof value) vl = sizeof value - 1;
            memcpy(value, v, vl);
            value[vl] = '\0';
            return value;
        }
        if (!le) break;
        h = le + 1;
    }
    return NULL;
}

sb_up *sb_up_start(const sb_up_options *o, char *err, size_t errlen)
{
    sb_up *u = calloc(1, sizeof *u);
    if (!u) return NULL;
    u->ep = u->evfd = -1;
    u->o = *o;
    if (!u->o.max_host_connections) u->o.max_host_connections = 1024;
    if (!u->o.connect_timeout_ms) u->o.connect_timeout_ms = 5000;
    if (!u->o.max_response_bytes) u->o.max_response_bytes = (size_t)8 << 20;
    if (!u->o.backoff_base_ms) u->o.backoff_base_ms = 200;
    u->o.ca_file = o->ca_file ? strdup(o->ca_file) : NULL;
    for (const char *const *p = o->http_allowed_prefixes; p && *p; p++) {
        char **np = realloc(u->http_prefixes, (u->n_http_prefixes + 1) * sizeof *np);
        if (!np) break;
        u->http_prefixes = np;
        u->http_prefixes[u->n_http_prefixes++] = strdup(*p);
    }
    for (const char *const *p = o->allowed_networks; p && *p; p++) {
        if (u->n_nets >= SB_UP_MAX_ALLOW || parse_net(*p, &u->nets[u->n_nets]) < 0) {
            snprintf(err, errlen, "upstream: cannot use allowed network \"%s\"", *p);
            goto fail;
        }
        u->n_nets++;
    }
    pthread_mutex_init(&u->mu, NULL);
    atomic_init(&u->in_flight, 0);
    atomic_init(&u->next_id, 1);
    u->multi = curl_multi_init();
    u->ep = epoll_create1(EPOLL_CLOEXEC);
    u->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!u->multi || u->ep < 0 || u->evfd < 0) {
        snprintf(err, errlen, "upstream: cannot create the event loop");
        goto fail;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = u->evfd};
    epoll_ctl(u->ep, EPOLL_CTL_ADD, u->evfd, &ev);
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)u->o.max_host_connections);
    curl_multi_setopt(u->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    if (pthread_create(&u->thread, NULL, run, u) != 0) {
        snprintf(err, errlen, "upstream: cannot start the engine thread");
        goto fail;
    }
    return u;
fail:
    if (u->multi) curl_multi_cleanup(u->multi);
    if (u->ep >= 0) close(u->ep);
    if (u->evfd >= 0) close(u->evfd);
    for (size_t i = 0; i < u->n_http_prefixes; i++) free(u->http_prefixes[i]);
    free(u->http_prefixes);
    free((char *)u->o.ca_file);
    free(u);
    return NULL;
}

static void wake(sb_up *u)
{
    uint64_t one = 1;
    ssize_t w = write(u->evfd, &one, sizeof one);
    (void)w;
}

int sb_up_submit(sb_up *u, const sb_up_request *rq, sb_up_done_fn done, void *arg, uint64_t *id)
{
    job *j = calloc(1, sizeof *j);
    if (!j) return -1;
    j->u = u;
    j->method = strdup(rq->method ? rq->method : "GET");
    j->url = strdup(rq->url);
    if (rq->body) {
        j->body = malloc(rq->body_len + 1);
        if (j->body) {
            memcpy(j->body, rq->body, rq->body_len);
            j->body[rq->body_len] = '\0';
        }
        j->body_len = rq->body_len;
    }
    int ok = j->method && j->url && (!rq->body || j->body);
    for (const char *const *h = rq->headers; ok && h && *h; h++) {
        struct curl_slist *n = curl_slist_append(j->headers, *h);
        if (!n) ok = 0;
        else j->headers = n;
    }
    /* no "Expect: 100-continue" round trip */
    if (ok) {
        struct curl_slist *n = curl_slist_append(j->headers, "Expect:");
        if (n) j->headers = n;
    }
    j->idempotent = rq->idempotent;
    j->policy = rq->policy;
    j->start_us = sb_mono_us();
    j->deadline_ms = sb_mono_ms() + (rq->timeout_ms ? rq->timeout_ms : 30000);
    j->max_resp = rq->max_response ? rq->max_response : u->o.max_response_bytes;
    sb_buf_init(&j->resp, j->max_resp + 1);
    sb_buf_init(&j->hdrs, MAX_HDR_BYTES);
    j->done = done;
    j->arg = arg;
    j->id = atomic_fetch_add(&u->next_id, 1);
    if (!ok) {
        j->easy = NULL;
        job_free(u, j);
        return -1;
    }
    pthread_mutex_lock(&u->mu);
    if (u->stopping) {
        pthread_mutex_unlock(&u->mu);
        job_free(u, j);
        return -1;
    }
    atomic_fetch_add(&u->in_flight, 1);
    if (u->q_tail)
        u->q_tail->next_q = j;
    else
        u->q_head = j;
    u->q_tail = j;
    uint64_t jid = j->id;
    pthread_mutex_unlock(&u->mu);
    if (id) *id = jid;
    wake(u);
    return 0;
}

void sb_up_cancel(sb_up *u, uint64_t id)
{
    pthread_mutex_lock(&u->mu);
    if (u->n_cancels == u->cap_cancels) {
        size_t nc = u->cap_cancels ? u->cap_cancels * 2 : 16;
        uint64_t *n = realloc(u->cancels, nc * sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&u->mu);
            return;
        }
        u->cancels = n;
        u->cap_cancels = nc;
    }
    u->cancels[u->n_cancels++] = id;
    pthread_mutex_unlock(&u->mu);
    wake(u);
}

unsigned sb_up_in_flight(const sb_up *u)
{
    return atomic_load(&((sb_up *)u)->in_flight);
}

void sb_up_stop(sb_up *u)
{
    if (!u) return;
    pthread_mutex_lock(&u->mu);
    u->stopping = 1;
    pthread_mutex_unlock(&u->mu);
    wake(u);
    pthread_join(u->thread, NULL);
    /* jobs queued after the thread stopped (none: submit refuses once stopping) */
    for (size_t i = 0; i < u->npool; i++) curl_easy_cleanup(u->pool[i]);
    curl_multi_cleanup(u->multi);
    close(u->ep);
    close(u->evfd);
    for (size_t i = 0; i < u->n_http_prefixes; i++) free(u->http_prefixes[i]);
    free(u->http_prefixes);
    free(u->cancels);
    free((char *)u->o.ca_file);
    pthread_mutex_destroy(&u->mu);
    free(u);
}
