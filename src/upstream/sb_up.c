#include "upstream/sb_up.h"

#include "core/sb_buf.h"
#include "core/sb_later.h"
#include "core/sb_log.h"
#include "core/sb_util.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
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
#define LANE_ID_MUL 32 /* job id = sequence * 32 + lane index */

typedef struct net {
    int family;
    unsigned char addr[16];
    unsigned prefix;
} net;

typedef struct job {
    struct job *next_q;           /* submit queue / backoff list */
    struct job *prev_a, *next_a;  /* active list */
    struct job *hnext;            /* the lane's id table (for sb_up_cancel) */
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
    int plain;                 /* the URL is http:// (HTTP/1.1: one transfer per connection) */
    sb_up_done_fn done;
    void *arg;
    struct sb_up *u;
    struct lane *l;               /* the lane that runs it */
    int fail_err;                 /* a failure found while starting it from sb_up_submit */
    const char *fail_text;
} job;

/* A function to run on a lane's thread (sb_up_lane_call), with its caller waiting. */
typedef struct lane_task {
    struct lane_task *next;
    void (*fn)(void *);
    void *arg;
    int done;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} lane_task;

/* The most connections a lane keeps for reuse: a transfer that starts while the lane has this many
 * open closes its connection when it ends (CURLOPT_FORBID_REUSE), so a load test that raises the
 * host cap to thousands does not keep thousands open afterwards. libcurl's own bound
 * (CURLMOPT_MAXCONNECTS) is the host cap instead: over its bound libcurl searches every
 * connection it holds, busy ones included, for the oldest idle one each time a transfer ends --
 * with 5,000 calls in flight on a lane that walk was 10-20% of signbridge's CPU in the burst. */
#define MAX_CACHED_CONNS 1024

typedef struct fdrec {
    unsigned char ours;   /* opened by open_cb and not yet closed by close_cb */
    unsigned char in_ep;  /* registered in the lane's epoll set */
    unsigned char parked; /* registered for EPOLLIN while libcurl watches it no more */
    unsigned char plain;  /* opened for a plain-HTTP (http://) transfer */
    uint32_t events;      /* the registered events */
} fdrec;

/* One event-loop thread with its own libcurl multi handle. Lane 0 takes requests from any
 * thread; lanes 1..n also run one external event source (the HTTP server's daemon), so a call's
 * request, upstream transfer and reply stay on one thread. */
typedef struct lane {
    struct sb_up *u;
    unsigned idx;
    CURLM *multi;
    int ep, evfd;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;        /* protects queue, cancels, tasks, stopping */
    job *q_head, *q_tail;
    uint64_t *cancels;
    size_t n_cancels, cap_cancels;
    lane_task *tasks;
    int stopping;
    /* lane-thread only */
    job *active;
    job *backoff;              /* sorted by retry_at_ms */
    job *failed;               /* started from sb_up_submit and failed: finished by the loop */
    job *local_head, *local_tail; /* submitted on this thread, on the active list, not started
                                     yet (linked by next_q; flush_local starts them) */
    unsigned nlocal;
    job **ht;                  /* active jobs by id (power-of-two buckets), or NULL */
    size_t ht_n, ht_count;
    int direct;                /* inside sb_up_submit's start: failures go to `failed` */
    int reaping;               /* inside check_info: completions are being delivered */
    unsigned nconns;           /* sockets open_cb opened and close_cb has not closed */
    unsigned nplain;           /* of those, opened for plain-HTTP transfers */
    unsigned nplain_xfers;     /* plain-HTTP transfers in the multi handle (in_multi set) */
    /* the sockets libcurl opened through open_cb, by descriptor: whether each is in `ep` and
     * with which events. An idle kept-alive connection stays in `ep` ("parked") between
     * transfers, so reusing it costs no epoll_ctl (see sock_cb). */
    struct fdrec *fds;
    size_t nfds;
    uint64_t curl_deadline_ms; /* 0 = none */
    uint64_t busy_since_us;    /* when the lane last came back from a wait (or a yield) */
    atomic_uint_fast64_t yields; /* sched_yield calls (o.yield_us) */
    unsigned poll_win_us;      /* lane_wait's current poll window (0..o.poll_us) */
    atomic_uint_fast64_t poll_hits, poll_misses; /* polls that found an event / ran out */
    CURL *pool[POOL_MAX];
    size_t npool;
    atomic_int src_kick;       /* sb_up_lane_kick: run the source this turn */
    int src_fd;                /* the external source, or -1 */
    void (*src_run)(void *);
    long (*src_timeout)(void *);
    void *src_arg;
    int w_fd;                  /* sb_up_lane_watch: a second descriptor, or -1 */
    void (*w_ready)(void *);
    void *w_arg;
} lane;

struct sb_up {
    sb_up_options o;
    char **http_prefixes;
    size_t n_http_prefixes;
    net nets[SB_UP_MAX_ALLOW];
    size_t n_nets;
    atomic_uint in_flight;
    atomic_uint_fast64_t next_id;
    unsigned nlanes;           /* 1 + o.lanes */
    /* "Accept-Encoding: ..." naming what this libcurl decodes (what CURLOPT_ACCEPT_ENCODING ""
     * would send): given as a header of the job's list, so libcurl does not format it (nor the
     * User-Agent line) for every request -- see sb_up_submit */
    char accept_encoding[64];
    lane lanes[1 + SB_UP_MAX_LANES];
};

/* the lane whose thread this is, or NULL */
static __thread lane *tl_lane;

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
    /* non-blocking from the start: libcurl would make it so (a patched libcurl, scripts/lean-deps,
     * then skips its fcntl) */
    curl_socket_t s =
        socket(addr->family, addr->socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, addr->protocol);
    lane *l = j->l;
    if (s >= 0 && (size_t)s >= l->nfds && s < (1 << 24)) {
        size_t n = l->nfds ? l->nfds : 64;
        while (n <= (size_t)s) n *= 2;
        fdrec *f = realloc(l->fds, n * sizeof *f);
        if (f) {
            memset(f + l->nfds, 0, (n - l->nfds) * sizeof *f);
            l->fds = f;
            l->nfds = n;
        }
    }
    /* a new socket is in no epoll set, whatever an earlier one with this number was */
    if (s >= 0 && (size_t)s < l->nfds) {
        l->fds[s] = (fdrec){.ours = 1, .plain = (unsigned char)j->plain};
        l->nconns++;
        l->nplain += (unsigned)j->plain;
    }
    return s;
}

/* libcurl closes the sockets open_cb opened through here (CURLOPT_CLOSESOCKETFUNCTION, data: the
 * lane): the record goes, and so does the registration -- explicitly, since closing removes it
 * only when no other descriptor (a forked child's, say) still refers to the socket, and a stale
 * one would report its events under a number that a new socket may take. Connections close
 * seldom: this costs nothing per call. */
static int close_cb(void *clientp, curl_socket_t s)
{
    lane *l = clientp;
    if (s >= 0 && (size_t)s < l->nfds) {
        if (l->fds[s].in_ep) epoll_ctl(l->ep, EPOLL_CTL_DEL, s, NULL);
        if (l->fds[s].ours) {
            l->nconns--;
            l->nplain -= l->fds[s].plain;
        }
        l->fds[s] = (fdrec){0};
    }
    return close(s);
}

static fdrec *fd_ours(lane *l, curl_socket_t s)
{
    return s >= 0 && (size_t)s < l->nfds && l->fds[s].ours ? &l->fds[s] : NULL;
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
    lane *l = userp;
    (void)e;
    struct epoll_event ev = {0};
    ev.data.fd = s;
    fdrec *f = fd_ours(l, s);
    if (what == CURL_POLL_REMOVE) {
        curl_multi_assign(l->multi, s, NULL);
        if (f && f->in_ep && f->events == EPOLLIN) {
            /* a transfer ended and its connection goes back to libcurl's cache: leave the
             * socket in the set, where the next transfer on it finds it (2 system calls fewer
             * per proxied call). Nothing arrives on an idle HTTP connection but its close, and
             * the loop takes a socket out when that wakes it (see run). */
            f->parked = 1;
            return 0;
        }
        epoll_ctl(l->ep, EPOLL_CTL_DEL, s, NULL);
        if (f) f->in_ep = 0;
        return 0;
    }
    ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u);
    if (f) {
        f->parked = 0;
        if (f->in_ep && f->events == ev.events) return 0; /* parked as wanted */
        int rc = f->in_ep ? epoll_ctl(l->ep, EPOLL_CTL_MOD, s, &ev) : -1;
        if (rc < 0) rc = epoll_ctl(l->ep, EPOLL_CTL_ADD, s, &ev);
        if (rc < 0 && errno == EEXIST) rc = epoll_ctl(l->ep, EPOLL_CTL_MOD, s, &ev);
        f->in_ep = rc == 0;
        f->events = ev.events;
        return 0; /* the record, not socketp, says what is registered */
    }
    if (socketp) {
        if (epoll_ctl(l->ep, EPOLL_CTL_MOD, s, &ev) < 0 && errno == ENOENT)
            epoll_ctl(l->ep, EPOLL_CTL_ADD, s, &ev);
    } else {
        if (epoll_ctl(l->ep, EPOLL_CTL_ADD, s, &ev) < 0 && errno == EEXIST)
            epoll_ctl(l->ep, EPOLL_CTL_MOD, s, &ev);
        curl_multi_assign(l->multi, s, (void *)1);
    }
    return 0;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    lane *l = userp;
    (void)m;
    l->curl_deadline_ms = timeout_ms < 0 ? 0 : sb_mono_ms() + (uint64_t)timeout_ms;
    if (timeout_ms >= 0 && l->curl_deadline_ms == 0) l->curl_deadline_ms = 1;
    return 0;
}

/* ---- jobs ------------------------------------------------------------------------------------ */

static int http_allowed(const sb_up *u, const char *url)
{
    for (size_t i = 0; i < u->n_http_prefixes; i++)
        if (strncmp(url, u->http_prefixes[i], strlen(u->http_prefixes[i])) == 0) return 1;
    return 0;
}

static void job_free(lane *l, job *j)
{
    if (j->easy) {
        if (l->npool < POOL_MAX) {
            curl_easy_reset(j->easy);
            l->pool[l->npool++] = j->easy;
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

static size_t slot_of(uint64_t id, size_t n)
{
    return (size_t)((id / LANE_ID_MUL) * 0x9E3779B97F4A7C15ULL >> 20) & (n - 1);
}

/* Make j active: on the list (for shutdown) and in the id table (for cancel). The table is
 * rebuilt from the list when it grows, so a job added while it could not be allocated is found
 * again once it can. */
static void active_add(lane *l, job *j)
{
    j->next_a = l->active;
    if (l->active) l->active->prev_a = j;
    l->active = j;
    j->hnext = NULL;
    if (l->ht_count + 1 > l->ht_n || !l->ht) {
        size_t n = l->ht_n ? l->ht_n * 2 : 64;
        job **nt = calloc(n, sizeof *nt);
        if (nt) {
            size_t count = 0;
            for (job *x = l->active; x; x = x->next_a, count++) {
                size_t b = slot_of(x->id, n);
                x->hnext = nt[b];
                nt[b] = x;
            }
            free(l->ht);
            l->ht = nt;
            l->ht_n = n;
            l->ht_count = count;
            return;
        }
        if (!l->ht) return; /* no table: active_find walks the list */
    }
    size_t b = slot_of(j->id, l->ht_n);
    j->hnext = l->ht[b];
    l->ht[b] = j;
    l->ht_count++;
}

static job *active_find(const lane *l, uint64_t id)
{
    if (!l->ht) { /* no table (it could not be allocated): the list */
        for (job *j = l->active; j; j = j->next_a)
            if (j->id == id) return j;
        return NULL;
    }
    for (job *j = l->ht[slot_of(id, l->ht_n)]; j; j = j->hnext)
        if (j->id == id) return j;
    return NULL;
}

static void active_remove(lane *l, job *j)
{
    if (l->ht) {
        for (job **pp = &l->ht[slot_of(j->id, l->ht_n)]; *pp; pp = &(*pp)->hnext)
            if (*pp == j) {
                *pp = j->hnext;
                l->ht_count--;
                break;
            }
        j->hnext = NULL;
    }
    if (j->prev_a)
        j->prev_a->next_a = j->next_a;
    else if (l->active == j)
        l->active = j->next_a;
    if (j->next_a) j->next_a->prev_a = j->prev_a;
    j->prev_a = j->next_a = NULL;
}

/* Take j's transfer out of the multi handle, if it is there: the one place that clears in_multi,
 * so the lane's count of plain-HTTP transfers moves with it. */
static void multi_leave(lane *l, job *j)
{
    if (!j->in_multi) return;
    curl_multi_remove_handle(l->multi, j->easy);
    j->in_multi = 0;
    l->nplain_xfers -= (unsigned)j->plain;
}

static void finish(lane *l, job *j, int error, int status, const char *text)
{
    multi_leave(l, j);
    active_remove(l, j);
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
        .job_ = j,
    };
    j->done(&r, j->arg);
    job_free(l, j);
    atomic_fetch_sub(&l->u->in_flight, 1);
}

/* A transfer that cannot start. From sb_up_submit (l->direct) its callback must not run inside
 * the caller's call: the loop finishes it at the end of the turn. */
static void start_failed(lane *l, job *j, int error, const char *text)
{
    if (!l->direct) {
        finish(l, j, error, 0, text);
        return;
    }
    j->fail_err = error;
    j->fail_text = text;
    j->next_q = l->failed;
    l->failed = j;
}

static int start_attempt(lane *l, job *j)
{
    uint64_t now = sb_mono_ms();
    if (now >= j->deadline_ms) {
        start_failed(l, j, SB_UP_ETIMEDOUT, "deadline passed before the request could be sent");
        return -1;
    }
    /* a pooled handle was reset when its job ended (job_free) and a new one has nothing to
     * reset: only a retry, on this job's own handle, starts from what the last attempt set */
    if (j->easy) {
        curl_easy_reset(j->easy);
    } else {
        j->easy = l->npool ? l->pool[--l->npool] : curl_easy_init();
        if (!j->easy) {
            start_failed(l, j, SB_UP_EIO, "out of memory");
            return -1;
        }
    }
    CURL *e = j->easy;
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
                                                  http_allowed(l->u, j->url))
                                             ? "http,https"
                                             : "https");
    /* Wait for a connection's HTTP/2 answer only where multiplexing can happen (https + ALPN):
     * over plain HTTP/1.1 it would queue every call behind one busy connection. */
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, strncmp(j->url, "https://", 8) == 0 ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)l->u->o.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(j->deadline_ms - now));
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, j);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_cb);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, j);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, close_cb);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, l);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->headers);
    if (!j->idempotent || l->u->o.max_retries == 0) {
        /* libcurl silently resends a request whose reused connection dies before the first
         * response byte: an action must go out exactly once, so it gets a connection of its own */
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    } else {
        if (l->nconns >= MAX_CACHED_CONNS) {
            /* enough kept already: this transfer's connection closes when it ends */
            curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
        }
        if (j->plain && l->nplain_xfers >= l->nplain &&
            l->nconns < l->u->o.max_host_connections) {
            /* Every plain-HTTP connection the lane holds carries a transfer, and HTTP/1.1
             * carries one at a time: none can be reused, so libcurl's search for one is skipped.
             * That search walks every connection to the host, calling its liveness checks on
             * each -- with thousands in flight in a burst, 9% of the lane's CPU (perf, 10,000
             * calls). The counts are the lane's, over all hosts: while another host's transfers
             * are still connecting, this one may connect where an idle connection was left (one
             * connection more, never a wrong answer). Only while the host cap leaves room for a
             * new connection: at the cap a transfer waits for one to come free and reuses it,
             * where a fresh one would close it and connect again. HTTPS is left to libcurl: an
             * HTTP/2 connection takes more streams. */
            curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
        }
    }
    /* 32 KiB reads (libcurl's default is 16): a 10-document list answer (~18 KB) arrives in one
     * recv instead of two, and libcurl polls once less -- 14 -> 12 system calls per proxied call
     * (strace). The buffer's untouched pages cost nothing: 2,000 calls at once peak the same. */
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 32768L);
    if (l->u->o.ca_file && *l->u->o.ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, l->u->o.ca_file);
    if (strcmp(j->method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, j->method);
        if (j->body || strcmp(j->method, "DELETE") != 0) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->body_len);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->body ? j->body : "");
        }
    }
    if (curl_multi_add_handle(l->multi, e) != CURLM_OK) {
        start_failed(l, j, SB_UP_EIO, "cannot start the transfer");
        return -1;
    }
    j->in_multi = 1;
    l->nplain_xfers += (unsigned)j->plain;
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

static void backoff_insert(lane *l, job *j)
{
    job **pp = &l->backoff;
    while (*pp && (*pp)->retry_at_ms <= j->retry_at_ms) pp = &(*pp)->next_q;
    j->next_q = *pp;
    *pp = j;
}

/* Decide whether to retry; returns 1 if scheduled. */
static int maybe_retry(lane *l, job *j, int retryable, long hint_s)
{
    if (!j->idempotent || !retryable || j->cancel || j->attempts > l->u->o.max_retries) return 0;
    uint64_t now = sb_mono_ms();
    uint64_t wait;
    if (hint_s >= 0) {
        wait = (uint64_t)hint_s * 1000;
    } else {
        uint64_t cap = (uint64_t)l->u->o.backoff_base_ms << (j->attempts - 1);
        if (cap > 5000) cap = 5000;
        uint32_t r;
        sb_random_bytes(&r, sizeof r);
        wait = cap / 2 + r % (cap / 2 + 1);
    }
    if (now + wait + 50 >= j->deadline_ms) return 0; /* would not fit in the deadline */
    multi_leave(l, j);
    j->retry_at_ms = now + wait;
    backoff_insert(l, j);
    return 1;
}

static void on_done(lane *l, CURL *e, CURLcode code)
{
    job *j = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&j);
    if (!j) return;
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    multi_leave(l, j); /* e is j->easy (its CURLOPT_PRIVATE) */
    if (j->cancel) {
        finish(l, j, SB_UP_ECANCELLED, (int)status, "cancelled");
        return;
    }
    if (j->too_big) {
        char msg[96];
        snprintf(msg, sizeof msg, "response larger than %zu bytes", j->max_resp);
        finish(l, j, SB_UP_ETOOBIG, (int)status, msg);
        return;
    }
    if (j->refused) {
        finish(l, j, SB_UP_EREFUSED, 0, "destination address refused by policy (private or "
                                        "loopback network not allow-listed)");
        return;
    }
    if (code == CURLE_OK) {
        int retryable = status == 429 || status == 502 || status == 503 || status == 504;
        if (retryable && maybe_retry(l, j, 1, wait_hint_s(j->hdrs.data ? j->hdrs.data : "")))
            return;
        finish(l, j, SB_UP_OK, (int)status, NULL);
        return;
    }
    const char *text = curl_easy_strerror(code);
    switch (code) {
    case CURLE_UNSUPPORTED_PROTOCOL:
        finish(l, j, SB_UP_EREFUSED, 0, "scheme not allowed (https only)");
        return;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
        if (maybe_retry(l, j, 1, -1)) return;
        finish(l, j, SB_UP_ECONNECT, 0, text);
        return;
    case CURLE_OPERATION_TIMEDOUT:
        if (sb_mono_ms() + 50 < j->deadline_ms && status == 0 && maybe_retry(l, j, 1, -1)) return;
        finish(l, j, sb_mono_ms() + 50 >= j->deadline_ms ? SB_UP_ETIMEDOUT : SB_UP_ECONNECT,
               (int)status, text);
        return;
    default:
        finish(l, j, SB_UP_EIO, (int)status, text);
        return;
    }
}

/* Completed transfers: their callbacks run here. Returns how many. */
static int check_info(lane *l)
{
    CURLMsg *m;
    int left, n = 0;
    l->reaping = 1;
    while ((m = curl_multi_info_read(l->multi, &left)))
        if (m->msg == CURLMSG_DONE) {
            on_done(l, m->easy_handle, m->data.result);
            n++;
        }
    l->reaping = 0;
    return n;
}

#define LOCAL_BATCH 8 /* transfers submitted on a lane's thread before they are started anyway */
/* Start the transfers submitted on this lane's thread since the last flush, one after another,
 * then let libcurl send them. `direct`: called from inside sb_up_submit, so a transfer that cannot
 * start is finished by the loop, not in the caller's call (start_failed). */
static void flush_local(lane *l, int direct)
{
    if (!l->local_head) return;
    job *q = l->local_head;
    l->local_head = l->local_tail = NULL;
    l->nlocal = 0;
    int any = 0;
    l->direct = direct;
    while (q) {
        job *n = q->next_q;
        q->next_q = NULL;
        any |= start_attempt(l, q) == 0;
        q = n;
    }
    l->direct = 0;
    if (any) {
        int running;
        curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
}

/* Take what other threads (or this one) queued: new jobs, cancellations, tasks. */
static void drain_commands(lane *l, int *stopping)
{
    pthread_mutex_lock(&l->mu);
    job *q = l->q_head;
    l->q_head = l->q_tail = NULL;
    uint64_t *cancels = l->cancels;
    size_t nc = l->n_cancels;
    l->cancels = NULL;
    l->n_cancels = l->cap_cancels = 0;
    lane_task *tasks = l->tasks;
    l->tasks = NULL;
    *stopping = l->stopping;
    pthread_mutex_unlock(&l->mu);
    while (q) {
        job *n = q->next_q;
        q->next_q = NULL;
        active_add(l, q);
        start_attempt(l, q);
        q = n;
    }
    for (size_t i = 0; i < nc; i++) {
        job *j = active_find(l, cancels[i]);
        if (!j) continue; /* finished already */
        j->cancel = 1;
        /* in backoff: take it out of the list */
        for (job **pp = &l->backoff; *pp; pp = &(*pp)->next_q)
            if (*pp == j) {
                *pp = j->next_q;
                break;
            }
        /* submitted on this thread and not started yet */
        for (job **pp = &l->local_head; *pp; pp = &(*pp)->next_q)
            if (*pp == j) {
                *pp = j->next_q;
                if (l->local_tail == j) {
                    l->local_tail = NULL;
                    for (job *x = l->local_head; x; x = x->next_q) l->local_tail = x;
                }
                l->nlocal--;
                break;
            }
        /* started from sb_up_submit and failed: the loop finishes it */
        for (job **pp = &l->failed; *pp; pp = &(*pp)->next_q)
            if (*pp == j) {
                *pp = j->next_q;
                break;
            }
        finish(l, j, SB_UP_ECANCELLED, 0, "cancelled");
    }
    free(cancels);
    /* tasks were pushed newest first: run them in order */
    lane_task *rev = NULL;
    while (tasks) {
        lane_task *n = tasks->next;
        tasks->next = rev;
        rev = tasks;
        tasks = n;
    }
    while (rev) {
        lane_task *n = rev->next;
        rev->fn(rev->arg);
        pthread_mutex_lock(&rev->mu);
        rev->done = 1; /* the waiter frees the task once it sees this */
        pthread_cond_signal(&rev->cv);
        pthread_mutex_unlock(&rev->mu);
        rev = n;
    }
}

static int has_commands(lane *l)
{
    pthread_mutex_lock(&l->mu);
    int any = l->q_head || l->n_cancels || l->tasks || l->stopping;
    pthread_mutex_unlock(&l->mu);
    return any;
}

/* The first poll window after none: it doubles from here. */
#define POLL_MIN_US 10

/* epoll_wait on the lane's set, polled first on a serving lane (o.poll_us).
 *
 * A sleeping lane is woken by whoever sends to it -- the upstream answering, the client's next
 * request -- and on a virtual machine that wake-up is an interrupt to another virtual CPU: two
 * 'sleep, be woken' cycles made up about a quarter of a proxied call's CPU at one connection, and
 * more of its latency (docs/benchmarks.md). A lane that expects an event soon looks for it
 * with epoll_wait(0) for up to `poll_win_us`, handing its core to any other runnable thread
 * between looks (sched_yield), and only then sleeps. The window adapts as KVM's halt polling
 * does: an event that came after a sleep shorter than o.poll_us would have been caught by a
 * longer window (it doubles, from POLL_MIN_US, up to o.poll_us); a wait longer than o.poll_us
 * means polling is no use for now (it is 0 again). So a lane polls only while its events come
 * within o.poll_us of each other -- a fast upstream, a client's next request on a busy
 * connection; an idle lane, or one waiting on a provider tens of milliseconds away, sleeps at
 * once after one wasted window at most. */
static int lane_wait(lane *l, struct epoll_event *evs, int max, long timeout)
{
    unsigned cap = l->u->o.poll_us, win = l->poll_win_us;
    if (!cap || !l->src_run || timeout == 0) return epoll_wait(l->ep, evs, max, (int)timeout);
    uint64_t t0 = sb_mono_us();
    if (win) {
        /* never past the wait's own timeout (ms; negative: none) */
        if (timeout > 0 && (uint64_t)timeout * 1000 < win) win = (unsigned)timeout * 1000;
        for (;;) {
            int n = epoll_wait(l->ep, evs, max, 0);
            if (n != 0) {
                if (n > 0) atomic_fetch_add_explicit(&l->poll_hits, 1, memory_order_relaxed);
                return n;
            }
            if (sb_mono_us() - t0 >= win) break;
            sched_yield();
        }
        atomic_fetch_add_explicit(&l->poll_misses, 1, memory_order_relaxed);
    }
    int n = epoll_wait(l->ep, evs, max, (int)timeout);
    uint64_t waited = sb_mono_us() - t0;
    if (waited > cap)
        l->poll_win_us = 0;
    else if (n > 0)
        l->poll_win_us = l->poll_win_us ? (l->poll_win_us * 2 < cap ? l->poll_win_us * 2 : cap)
                                        : (POLL_MIN_US < cap ? POLL_MIN_US : cap);
    return n;
}

static void *run(void *arg)
{
    lane *l = arg;
    tl_lane = l;
    sb_later_enable(1); /* flushed at the end of every turn */
    sb_log_batch(1);    /* the turn's log lines written together at its end */
    int stopping = 0;
    for (;;) {
        uint64_t now = sb_mono_ms();
        long timeout = 1000;
        if (l->curl_deadline_ms) timeout = l->curl_deadline_ms > now ? (long)(l->curl_deadline_ms - now) : 0;
        if (l->backoff) {
            long b = l->backoff->retry_at_ms > now ? (long)(l->backoff->retry_at_ms - now) : 0;
            if (b < timeout) timeout = b;
        }
        uint64_t src_due = 0;
        if (l->src_timeout) {
            long st = l->src_timeout(l->src_arg);
            if (st >= 0) src_due = now + (uint64_t)st;
            if (st >= 0 && st < timeout) timeout = st;
        }
        flush_local(l, 0);
        /* work queued by this thread itself (a source that submitted, a callback that
         * cancelled) must not wait for the next event */
        if (timeout > 0 && (l->failed || has_commands(l) || atomic_load(&l->src_kick))) timeout = 0;
        struct epoll_event evs[128];
        uint64_t waited = sb_mono_us();
        int n = lane_wait(l, evs, 128, timeout);
        /* a call that took 30 us or more slept (or lost the core): the busy spell starts again */
        uint64_t back = sb_mono_us();
        if (back - waited >= 30) l->busy_since_us = back;
        int running, src_ready = 0, w_ready = 0;
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == l->evfd) {
                uint64_t v;
                ssize_t r = read(l->evfd, &v, sizeof v);
                (void)r;
                continue;
            }
            if (fd == l->src_fd && l->src_run) {
                src_ready = 1;
                continue;
            }
            if (fd == l->w_fd && l->w_ready) {
                w_ready = 1;
                continue;
            }
            fdrec *f = fd_ours(l, fd);
            if (f && f->parked) {
                /* an idle cached connection was closed (or sent something unasked): out of the
                 * set, so a level-triggered event does not wake the loop again; libcurl finds
                 * the connection dead when it next tries it */
                epoll_ctl(l->ep, EPOLL_CTL_DEL, fd, NULL);
                f->in_ep = f->parked = 0;
                continue;
            }
            int flags = 0;
            if (evs[i].events & EPOLLIN) flags |= CURL_CSELECT_IN;
            if (evs[i].events & EPOLLOUT) flags |= CURL_CSELECT_OUT;
            if (evs[i].events & (EPOLLERR | EPOLLHUP)) flags |= CURL_CSELECT_ERR;
            curl_multi_socket_action(l->multi, fd, flags, &running);
        }
        now = sb_mono_ms();
        if (l->curl_deadline_ms && now >= l->curl_deadline_ms) {
            l->curl_deadline_ms = 0;
            curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        int completed = check_info(l);
        while (l->backoff && l->backoff->retry_at_ms <= sb_mono_ms()) {
            job *j = l->backoff;
            l->backoff = j->next_q;
            j->next_q = NULL;
            start_attempt(l, j);
        }
        /* the source runs after the transfers' callbacks, so what they resumed is served in
         * this same turn; it also runs when its own timeout is due */
        int kicked = atomic_exchange(&l->src_kick, 0);
        if (w_ready && l->w_ready) {
            l->w_ready(l->w_arg);
            src_ready = 1;
        }
        if (l->src_run &&
            (src_ready || completed || kicked || (src_due && sb_mono_ms() >= src_due))) {
            l->src_run(l->src_arg);
            flush_local(l, 0);
            /* a source that wants to run again at once (libmicrohttpd takes two more runs to
             * bring a connection that answered back to reading) runs now, up to twice, instead
             * of after another epoll_wait on the lane's set that would find nothing */
            for (int k = 0; k < 2 && l->src_timeout && l->src_timeout(l->src_arg) == 0; k++) {
                l->src_run(l->src_arg);
                flush_local(l, 0);
            }
        }
        flush_local(l, 0);
        drain_commands(l, &stopping);
        while (l->failed) {
            job *j = l->failed;
            l->failed = j->next_q;
            j->next_q = NULL;
            finish(l, j, j->fail_err, 0, j->fail_text);
        }
        /* the turn's answers are on the wire (libmicrohttpd sends within its run): now the
         * cleanup the turn put off */
        sb_later_flush();
        sb_log_flush();
        if (stopping) break;
        /* Busy since its last wait for longer than o.yield_us (under load epoll_wait finds events
         * at once and never sleeps): give the core away. With a 4 ms scheduler tick and no
         * preemption, a lane that never sleeps otherwise keeps the core for a whole tick while
         * the clients and the other lane on it wait -- tools/list at 50 connections on 2 cores
         * had a p99 of two ticks (7.9 ms), 1.3-1.4 ms with a 100 us yield
         * (docs/benchmarks.md). With no other thread runnable the call returns at once. */
        if (l->u->o.yield_us && n > 0 && sb_mono_us() - l->busy_since_us >= l->u->o.yield_us) {
            sched_yield();
            atomic_fetch_add_explicit(&l->yields, 1, memory_order_relaxed);
            l->busy_since_us = sb_mono_us();
        }
    }
    /* shutdown: everything still running is cancelled */
    l->backoff = NULL; /* those jobs are on the active list too */
    l->local_head = l->local_tail = NULL;
    l->nlocal = 0;
    while (l->active) finish(l, l->active, SB_UP_ECANCELLED, 0, "engine stopping");
    sb_later_enable(0); /* runs what is left */
    sb_log_batch(0);    /* writes what is left */
    tl_lane = NULL;
    return NULL;
}

/* ---- public API ---------------------------------------------------------------------------- */

int sb_up_take(const sb_up_result *r, char **body, char **hdrs)
{
    job *j = r ? r->job_ : NULL;
    if (!j || !j->resp.data || !j->hdrs.data || r->body != j->resp.data) return -1;
    *body = sb_buf_detach(&j->resp, NULL);
    *hdrs = sb_buf_detach(&j->hdrs, NULL);
    return 0;
}

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

static void lane_free(lane *l)
{
    for (size_t i = 0; i < l->npool; i++) curl_easy_cleanup(l->pool[i]);
    l->npool = 0;
    if (l->multi) curl_multi_cleanup(l->multi); /* closes cached connections: close_cb */
    free(l->fds);
    l->fds = NULL;
    l->nfds = 0;
    if (l->ep >= 0) close(l->ep);
    if (l->evfd >= 0) close(l->evfd);
    free(l->cancels);
    free(l->ht);
    pthread_mutex_destroy(&l->mu);
}

/* Tell a lane's thread to finish (it cancels what it still runs) and wake it. */
static void lane_signal_stop(lane *l)
{
    pthread_mutex_lock(&l->mu);
    l->stopping = 1;
    pthread_mutex_unlock(&l->mu);
    uint64_t one = 1;
    ssize_t w = write(l->evfd, &one, sizeof one);
    (void)w;
}

static int lane_init(sb_up *u, lane *l, unsigned idx)
{
    l->u = u;
    l->idx = idx;
    l->src_fd = -1;
    l->w_fd = -1;
    pthread_mutex_init(&l->mu, NULL);
    l->multi = curl_multi_init();
    l->ep = epoll_create1(EPOLL_CLOEXEC);
    l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!l->multi || l->ep < 0 || l->evfd < 0) return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = l->evfd};
    if (epoll_ctl(l->ep, EPOLL_CTL_ADD, l->evfd, &ev) < 0) return -1;
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
    curl_multi_setopt(l->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)u->o.max_host_connections);
    /* libcurl's cache otherwise holds 4 connections per transfer in flight at the moment one
     * ends, so every dip in a lane's load closed idle connections that the next burst opened
     * again: 15% of proxied calls at 50 connections paid a connect (and the upstream an accept).
     * A fixed size keeps them: busy connections count too, and the oldest idle one goes first. */
    curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, (long)u->o.max_host_connections);
    curl_multi_setopt(l->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    return 0;
}

sb_up *sb_up_start(const sb_up_options *o, char *err, size_t errlen)
{
    sb_up *u = calloc(1, sizeof *u);
    if (!u) return NULL;
    u->o = *o;
    if (!u->o.max_host_connections) u->o.max_host_connections = 1024;
    if (!u->o.connect_timeout_ms) u->o.connect_timeout_ms = 5000;
    if (!u->o.max_response_bytes) u->o.max_response_bytes = (size_t)8 << 20;
    if (!u->o.backoff_base_ms) u->o.backoff_base_ms = 200;
    if (u->o.lanes > SB_UP_MAX_LANES) u->o.lanes = SB_UP_MAX_LANES;
    u->o.ca_file = o->ca_file ? strdup(o->ca_file) : NULL;
    u->nlanes = 0;
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    int f = cv ? cv->features : 0;
    snprintf(u->accept_encoding, sizeof u->accept_encoding, "Accept-Encoding: %s%s%s",
             (f & CURL_VERSION_LIBZ) ? "deflate, gzip" : "identity",
             (f & CURL_VERSION_BROTLI) ? ", br" : "", (f & CURL_VERSION_ZSTD) ? ", zstd" : "");
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
    atomic_init(&u->in_flight, 0);
    atomic_init(&u->next_id, 1);
    for (unsigned i = 0; i < 1 + u->o.lanes; i++) {
        u->nlanes = i + 1;
        if (lane_init(u, &u->lanes[i], i) < 0) {
            snprintf(err, errlen, "upstream: cannot create the event loop");
            goto fail;
        }
    }
    for (unsigned i = 0; i < u->nlanes; i++) {
        if (pthread_create(&u->lanes[i].thread, NULL, run, &u->lanes[i]) != 0) {
            snprintf(err, errlen, "upstream: cannot start the engine thread");
            goto fail;
        }
        u->lanes[i].started = 1;
    }
    return u;
fail:
    for (unsigned i = 0; i < u->nlanes; i++) {
        lane *l = &u->lanes[i];
        if (l->started) {
            lane_signal_stop(l);
            pthread_join(l->thread, NULL);
        }
        lane_free(l);
    }
    for (size_t i = 0; i < u->n_http_prefixes; i++) free(u->http_prefixes[i]);
    free(u->http_prefixes);
    free((char *)u->o.ca_file);
    free(u);
    return NULL;
}

/* Wake lane l's thread unless it is the calling thread (which drains its commands before it
 * sleeps again). */
static void wake(lane *l)
{
    if (tl_lane == l) return;
    uint64_t one = 1;
    ssize_t w = write(l->evfd, &one, sizeof one);
    (void)w;
}

int sb_up_submit(sb_up *u, const sb_up_request *rq, sb_up_done_fn done, void *arg, uint64_t *id)
{
    job *j = calloc(1, sizeof *j);
    if (!j) return -1;
    lane *l = rq->local && tl_lane && tl_lane->u == u ? tl_lane : &u->lanes[0];
    j->u = u;
    j->l = l;
    j->method = strdup(rq->method ? rq->method : "GET");
    j->url = strdup(rq->url);
    j->plain = j->url && strncasecmp(j->url, "http://", 7) == 0;
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
    /* no "Expect: 100-continue" round trip (libcurl asks for one only before a body) */
    if (ok && rq->body) {
        struct curl_slist *n = curl_slist_append(j->headers, "Expect:");
        if (n) j->headers = n;
    }
    /* the lines libcurl would otherwise format with its printf for every request (~5,000
     * instructions each, instructions.sh): with a header of that name in the list it sends
     * ours; CURLOPT_ACCEPT_ENCODING stays set, so answers are still decoded */
    const char *fixed[] = {"User-Agent: signbridge", u->accept_encoding};
    for (size_t i = 0; ok && i < sizeof fixed / sizeof fixed[0]; i++) {
        struct curl_slist *n = curl_slist_append(j->headers, fixed[i]);
        if (!n) ok = 0;
        else j->headers = n;
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
    /* the low bits say which lane runs it (for sb_up_cancel) */
    j->id = atomic_fetch_add(&u->next_id, 1) * LANE_ID_MUL + l->idx;
    if (!ok) {
        j->easy = NULL;
        job_free(l, j);
        return -1;
    }
    pthread_mutex_lock(&l->mu);
    if (l->stopping) {
        pthread_mutex_unlock(&l->mu);
        job_free(l, j);
        return -1;
    }
    atomic_fetch_add(&u->in_flight, 1);
    if (l == tl_lane) {
        /* On the lane's own thread (a request being served): started with the others this
         * libmicrohttpd run submits, once the run ends, or as soon as LOCAL_BATCH are waiting --
         * a run may handle thousands of requests, and those must not wait for its end. Sent
         * back to back, the upstream (its thread woken once) finds them together: at 50
         * connections the sandbox's CPU per call -14%, signbridge's -2%, calls served +5%
         * (medians of 12 runs, docs/benchmarks.md). libcurl's socket and timer callbacks only
         * update this lane's epoll set and deadline; completions are read by the loop, so no
         * `done` runs inside this call. */
        pthread_mutex_unlock(&l->mu);
        active_add(l, j);
        if (id) *id = j->id;
        if (l->local_tail)
            l->local_tail->next_q = j;
        else
            l->local_head = j;
        l->local_tail = j;
        if (++l->nlocal >= LOCAL_BATCH) flush_local(l, 1);
        return 0;
    }
    if (l->q_tail)
        l->q_tail->next_q = j;
    else
        l->q_head = j;
    l->q_tail = j;
    uint64_t jid = j->id;
    pthread_mutex_unlock(&l->mu);
    if (id) *id = jid;
    wake(l);
    return 0;
}

void sb_up_cancel(sb_up *u, uint64_t id)
{
    unsigned idx = (unsigned)(id % LANE_ID_MUL);
    if (idx >= u->nlanes) return;
    lane *l = &u->lanes[idx];
    pthread_mutex_lock(&l->mu);
    if (l->n_cancels == l->cap_cancels) {
        size_t nc = l->cap_cancels ? l->cap_cancels * 2 : 16;
        uint64_t *n = realloc(l->cancels, nc * sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&l->mu);
            return;
        }
        l->cancels = n;
        l->cap_cancels = nc;
    }
    l->cancels[l->n_cancels++] = id;
    pthread_mutex_unlock(&l->mu);
    wake(l);
}

unsigned sb_up_in_flight(const sb_up *u)
{
    return atomic_load(&((sb_up *)u)->in_flight);
}

uint64_t sb_up_yields(const sb_up *u)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < u->nlanes; i++)
        n += atomic_load_explicit(&((sb_up *)u)->lanes[i].yields, memory_order_relaxed);
    return n;
}

void sb_up_polls(const sb_up *u, uint64_t *events, uint64_t *sleeps)
{
    *events = *sleeps = 0;
    if (!u) return;
    for (unsigned i = 0; i < u->nlanes; i++) {
        *events += atomic_load_explicit(&((sb_up *)u)->lanes[i].poll_hits, memory_order_relaxed);
        *sleeps += atomic_load_explicit(&((sb_up *)u)->lanes[i].poll_misses, memory_order_relaxed);
    }
}

unsigned sb_up_lanes(const sb_up *u)
{
    return u ? u->o.lanes : 0;
}

int sb_up_lane_call(sb_up *u, unsigned i, void (*fn)(void *), void *arg)
{
    if (!u || i >= u->o.lanes) return -1;
    lane *l = &u->lanes[1 + i];
    if (tl_lane == l) {
        fn(arg);
        return 0;
    }
    lane_task t = {.fn = fn, .arg = arg};
    pthread_mutex_init(&t.mu, NULL);
    pthread_cond_init(&t.cv, NULL);
    pthread_mutex_lock(&l->mu);
    if (l->stopping) {
        pthread_mutex_unlock(&l->mu);
        pthread_cond_destroy(&t.cv);
        pthread_mutex_destroy(&t.mu);
        return -1;
    }
    t.next = l->tasks;
    l->tasks = &t;
    pthread_mutex_unlock(&l->mu);
    wake(l);
    pthread_mutex_lock(&t.mu);
    while (!t.done) pthread_cond_wait(&t.cv, &t.mu);
    pthread_mutex_unlock(&t.mu);
    pthread_cond_destroy(&t.cv);
    pthread_mutex_destroy(&t.mu);
    return 0;
}

int sb_up_lane_reap(sb_up *u)
{
    lane *l = tl_lane;
    /* serving lanes only (lane 0 runs no handlers), and never from inside a callback that
     * check_info is delivering */
    if (!u || !l || l->u != u || l->idx == 0 || l->reaping) return 0;
    return check_info(l);
}

void sb_up_lane_kick(sb_up *u, unsigned i)
{
    if (!u || i >= u->o.lanes) return;
    lane *l = &u->lanes[1 + i];
    if (atomic_exchange(&l->src_kick, 1) == 0) wake(l);
}

int sb_up_lane_attach(sb_up *u, unsigned i, int fd, void (*run_fn)(void *),
                      long (*timeout_fn)(void *), void *arg)
{
    if (!u || i >= u->o.lanes) return -1;
    lane *l = &u->lanes[1 + i];
    if (tl_lane != l) return -1; /* only from the lane's own thread (inside sb_up_lane_call) */
    if (l->src_fd >= 0) {
        epoll_ctl(l->ep, EPOLL_CTL_DEL, l->src_fd, NULL);
        l->src_fd = -1;
    }
    l->src_run = NULL;
    l->src_timeout = NULL;
    l->src_arg = NULL;
    if (fd < 0) return 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) < 0) return -1;
    l->src_fd = fd;
    l->src_run = run_fn;
    l->src_timeout = timeout_fn;
    l->src_arg = arg;
    return 0;
}

int sb_up_lane_watch(sb_up *u, unsigned i, int fd, void (*ready)(void *), void *arg)
{
    if (!u || i >= u->o.lanes) return -1;
    lane *l = &u->lanes[1 + i];
    if (tl_lane != l) return -1; /* only from the lane's own thread */
    if (l->w_fd >= 0) epoll_ctl(l->ep, EPOLL_CTL_DEL, l->w_fd, NULL);
    l->w_fd = -1;
    l->w_ready = NULL;
    l->w_arg = NULL;
    if (fd < 0) return 0;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = fd};
    if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) < 0) return -1;
    l->w_fd = fd;
    l->w_ready = ready;
    l->w_arg = arg;
    return 0;
}

void sb_up_stop(sb_up *u)
{
    if (!u) return;
    for (unsigned i = 0; i < u->nlanes; i++) lane_signal_stop(&u->lanes[i]);
    for (unsigned i = 0; i < u->nlanes; i++) pthread_join(u->lanes[i].thread, NULL);
    /* jobs queued after a thread stopped: none (submit refuses once stopping) */
    for (unsigned i = 0; i < u->nlanes; i++) lane_free(&u->lanes[i]);
    for (size_t i = 0; i < u->n_http_prefixes; i++) free(u->http_prefixes[i]);
    free(u->http_prefixes);
    free((char *)u->o.ca_file);
    free(u);
}
