/* Unit tests for sb_up: the destination-address policy (sb_up_address_is_private), policy refusals
 * made by the engine before any byte is sent (private destinations not allow-listed, plain http
 * outside the allowed prefixes), allowed_networks parsing (and its error path), response-header
 * lookup, and the lanes: a local request runs and completes on the submitting lane's thread, one
 * from any other thread on the shared lane; an attached source runs when its fd is readable and
 * when kicked; a local request is cancelled from another thread; a kept-alive connection parked
 * in the lane's epoll set is reused, and dropped without a busy loop when the server closes it;
 * sb_up_lane_reap runs nothing off a lane or inside a callback; a callback takes the response's
 * body and headers (sb_up_take) once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <curl/mprintf.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/sb_config.h"
#include "upstream/sb_region.h"
#include "upstream/sb_up.h"

/* ---- sb_up_address_is_private ----------------------------------------------------------------- */

static void test_private_ipv4(void **state)
{
    (void)state;
    static const char *const priv[] = {
        "127.0.0.1", "127.255.255.254", "10.0.0.1", "10.255.255.255", "172.16.0.1",
        "172.31.255.255", "192.168.0.1", "192.168.255.255", "169.254.169.254", "169.254.0.1",
        "100.64.0.1", "100.127.255.255", "0.0.0.0", "0.1.2.3",
    };
    for (size_t i = 0; i < sizeof priv / sizeof priv[0]; i++) {
        if (!sb_up_address_is_private(priv[i])) fail_msg("%s should be private", priv[i]);
    }
}

static void test_public_ipv4(void **state)
{
    (void)state;
    static const char *const pub[] = {
        "8.8.8.8", "1.1.1.1", "93.184.216.34", "172.15.255.255", "172.32.0.1", "192.167.255.255",
        "192.169.0.1", "100.63.255.255", "100.128.0.1", "169.253.255.255", "169.255.0.1",
        "11.0.0.1", "126.255.255.255", "128.0.0.1", "52.95.110.1",
    };
    for (size_t i = 0; i < sizeof pub / sizeof pub[0]; i++) {
        if (sb_up_address_is_private(pub[i])) fail_msg("%s should be public", pub[i]);
    }
}

static void test_private_ipv6(void **state)
{
    (void)state;
    static const char *const priv[] = {
        "::1", "::", "fe80::1", "fe80::abcd:1234", "febf::1", "fc00::1", "fd12:3456:789a::1",
        "fdff:ffff::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
        "::ffff:192.168.1.1", "::ffff:100.64.0.1",
    };
    for (size_t i = 0; i < sizeof priv / sizeof priv[0]; i++) {
        if (!sb_up_address_is_private(priv[i])) fail_msg("%s should be private", priv[i]);
    }
}

static void test_public_ipv6(void **state)
{
    (void)state;
    static const char *const pub[] = {
        "2001:4860:4860::8888", "2606:4700:4700::1111", "2a00:1450:4001:81c::200e",
        "::ffff:8.8.8.8", "fbff::1", "2001:db9::1",
    };
    for (size_t i = 0; i < sizeof pub / sizeof pub[0]; i++) {
        if (sb_up_address_is_private(pub[i])) fail_msg("%s should be public", pub[i]);
    }
}

static void test_not_an_address_is_refused(void **state)
{
    (void)state;
    /* anything that does not parse as an address is treated as refused */
    assert_int_equal(sb_up_address_is_private(""), 1);
    assert_int_equal(sb_up_address_is_private("localhost"), 1);
    assert_int_equal(sb_up_address_is_private("10.0.0"), 1);
    assert_int_equal(sb_up_address_is_private("256.1.1.1"), 1);
    assert_int_equal(sb_up_address_is_private("1.2.3.4 "), 1);
}

/* ---- engine: refusals by policy ------------------------------------------------------------------ */

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, calls, error, status;
    char text[256];
} waiter;

static void on_done(const sb_up_result *r, void *arg)
{
    waiter *w = arg;
    pthread_mutex_lock(&w->mu);
    w->calls++;
    w->done = 1;
    w->error = r->error;
    w->status = r->status;
    snprintf(w->text, sizeof w->text, "%s", r->error_text ? r->error_text : "");
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Submit a GET for url to u and wait (at most 10 s) for its completion. */
static void run_get(sb_up *u, const char *url, waiter *w)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    sb_up_request rq = {.method = "GET", .url = url, .idempotent = 1, .timeout_ms = 5000};
    assert_int_equal(sb_up_submit(u, &rq, on_done, w, NULL), 0);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        if (pthread_cond_timedwait(&w->cv, &w->mu, &dl) != 0) break;
    pthread_mutex_unlock(&w->mu);
    assert_int_equal(w->done, 1);
}

static void test_engine_refuses_private_destinations(void **state)
{
    (void)state;
    const char *http_ok[] = {"http://127.0.0.1:9", "http://[::1]:9", NULL};
    sb_up_options o = {.http_allowed_prefixes = http_ok, .max_retries = 3};
    char err[200] = "";
    sb_up *u = sb_up_start(&o, err, sizeof err);
    assert_non_null(u);
    waiter w;
    run_get(u, "http://127.0.0.1:9/v1/brand/list", &w);
    assert_int_equal(w.error, SB_UP_EREFUSED);
    assert_int_equal(w.status, 0);
    assert_int_equal(w.calls, 1);
    assert_non_null(strstr(w.text, "refused"));
    run_get(u, "http://[::1]:9/v1/brand/list", &w);
    assert_int_equal(w.error, SB_UP_EREFUSED);
    /* the count drops just after the callback returns */
    for (int i = 0; i < 100 && sb_up_in_flight(u) != 0; i++) usleep(10000);
    assert_int_equal(sb_up_in_flight(u), 0);
    sb_up_stop(u);
}

static void test_engine_allow_listed_network_is_contacted(void **state)
{
    (void)state;
    /* 127.0.0.1 allow-listed: the engine connects (port 9 on loopback is normally closed, so the
     * outcome is a connection failure -- anything but a policy refusal) */
    const char *http_ok[] = {"http://127.0.0.1:9", NULL};
    const char *nets[] = {"127.0.0.0/8", NULL};
    sb_up_options o = {.http_allowed_prefixes = http_ok, .allowed_networks = nets};
    char err[200] = "";
    sb_up *u = sb_up_start(&o, err, sizeof err);
    assert_non_null(u);
    waiter w;
    run_get(u, "http://127.0.0.1:9/x", &w);
    assert_int_not_equal(w.error, SB_UP_EREFUSED);
    assert_int_not_equal(w.error, SB_UP_OK);
    sb_up_stop(u);
}

static void test_engine_refuses_plain_http_elsewhere(void **state)
{
    (void)state;
    const char *http_ok[] = {"http://127.0.0.1:9", NULL};
    const char *nets[] = {"127.0.0.0/8", NULL};
    sb_up_options o = {.http_allowed_prefixes = http_ok, .allowed_networks = nets};
    char err[200] = "";
    sb_up *u = sb_up_start(&o, err, sizeof err);
    assert_non_null(u);
    waiter w;
    /* another port on the same host is not an allowed http prefix: https only */
    run_get(u, "http://127.0.0.1:10/x", &w);
    assert_int_equal(w.error, SB_UP_EREFUSED);
    run_get(u, "ftp://127.0.0.1:9/x", &w);
    assert_int_equal(w.error, SB_UP_EREFUSED);
    sb_up_stop(u);
}

static void test_bad_allowed_network(void **state)
{
    (void)state;
    static const char *const bad[] = {"not-a-network", "10.0.0.0/33", "10.0.0.0/x", "::1/129"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *nets[] = {bad[i], NULL};
        sb_up_options o = {.allowed_networks = nets};
        char err[200] = "";
        sb_up *u = sb_up_start(&o, err, sizeof err);
        if (u) {
            sb_up_stop(u);
            fail_msg("allowed network \"%s\" was accepted", bad[i]);
        }
        assert_non_null(strstr(err, bad[i]));
    }
}

/* A failed start must not close descriptors it never opened (fd 0 here). */
static void test_failed_start_closes_nothing(void **state)
{
    (void)state;
    int saved = dup(0); /* -1 if fd 0 is already closed */
    int nul = open("/dev/null", O_RDONLY);
    assert_true(nul >= 0);
    if (nul != 0) {
        assert_int_equal(dup2(nul, 0), 0);
        close(nul);
    }
    struct stat before, after;
    assert_int_equal(fstat(0, &before), 0);
    const char *nets[] = {"not-a-network", NULL};
    sb_up_options o = {.allowed_networks = nets};
    char err[200] = "";
    sb_up *u = sb_up_start(&o, err, sizeof err);
    assert_null(u);
    /* still open, and still the same file (a closed fd 0 may be reused at once, e.g. by the
     * sanitizer runtime) */
    int still_open = fstat(0, &after) == 0 && after.st_dev == before.st_dev &&
                     after.st_ino == before.st_ino && after.st_rdev == before.st_rdev;
    if (saved >= 0) {
        dup2(saved, 0);
        close(saved);
    }
    if (!still_open) fail_msg("sb_up_start closed descriptor 0 on its error path");
}

static void test_header_lookup(void **state)
{
    (void)state;
    const char *hdrs = "HTTP/1.1 429 Too Many Requests\r\n"
                       "Content-Type: application/json\r\n"
                       "retry-after:   30  \r\n"
                       "X-RateLimit-Reset: 1767225600\r\n"
                       "\r\n";
    sb_up_result r = {.hdrs_ = hdrs};
    const char *v = sb_up_header(&r, "Retry-After");
    assert_non_null(v);
    assert_string_equal(v, "30");
    v = sb_up_header(&r, "x-ratelimit-reset");
    assert_non_null(v);
    assert_string_equal(v, "1767225600");
    assert_null(sb_up_header(&r, "Retry"));
    assert_null(sb_up_header(&r, "Location"));
    sb_up_result none = {.hdrs_ = NULL};
    assert_null(sb_up_header(&none, "Retry-After"));
}


/* ---- lanes -------------------------------------------------------------------------------------- */

/* A loopback HTTP/1.1 server: one thread accepting, one detached thread per connection; answers
 * "ok" to every request, except a path holding "/hang", which it never answers (that connection
 * is held until the client closes it). */
typedef struct mini_srv {
    int fd;
    unsigned port;
    atomic_int accepts;
    pthread_t th;
} mini_srv;

static void *mini_conn(void *arg)
{
    int c = (int)(intptr_t)arg;
    for (;;) { /* keep-alive: one request after another */
        char buf[4096];
        size_t got = 0;
        buf[0] = '\0';
        while (got < sizeof buf - 1 && !strstr(buf, "\r\n\r\n")) {
            ssize_t n = read(c, buf + got, sizeof buf - 1 - got);
            if (n <= 0) break;
            got += (size_t)n;
            buf[got] = '\0';
        }
        if (!strstr(buf, "\r\n\r\n")) break;
        if (strstr(buf, "/hang")) {
            char sink[256];
            while (read(c, sink, sizeof sink) > 0) {
            }
            break;
        }
        static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        if (write(c, ok, sizeof ok - 1) < 0) break;
        if (strstr(buf, "/closesoon")) {
            /* a kept-alive answer, then the server drops the idle connection */
            usleep(30000);
            break;
        }
    }
    close(c);
    return NULL;
}

static void *mini_run(void *arg)
{
    mini_srv *m = arg;
    for (;;) {
        int c = accept(m->fd, NULL, NULL);
        if (c < 0) return NULL;
        atomic_fetch_add(&m->accepts, 1);
        pthread_t t;
        if (pthread_create(&t, NULL, mini_conn, (void *)(intptr_t)c) != 0) {
            close(c);
            continue;
        }
        pthread_detach(t);
    }
}

static void mini_start(mini_srv *m)
{
    memset(m, 0, sizeof *m);
    m->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(m->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    assert_int_equal(bind(m->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(m->fd, 16), 0);
    assert_int_equal(getsockname(m->fd, (struct sockaddr *)&a, &al), 0);
    m->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&m->th, NULL, mini_run, m), 0);
}

static void mini_stop(mini_srv *m)
{
    shutdown(m->fd, SHUT_RDWR);
    close(m->fd);
    pthread_join(m->th, NULL);
}

/* The mini server and an engine with `lanes` serving lanes that may reach it (plain http on
 * loopback); max_retries > 0 lets idempotent requests reuse connections. */
static sb_up *loopback_engine(mini_srv *m, unsigned lanes, unsigned max_retries)
{
    mini_start(m);
    const char *http_ok[] = {"http://127.0.0.1:", NULL};
    const char *nets[] = {"127.0.0.0/8", NULL};
    sb_up_options o = {.http_allowed_prefixes = http_ok, .allowed_networks = nets, .lanes = lanes,
                       .max_retries = max_retries};
    char err[200] = "";
    sb_up *u = sb_up_start(&o, err, sizeof err);
    assert_non_null(u);
    return u;
}

static void waiter_wait(waiter *w, int max_s)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += max_s;
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        if (pthread_cond_timedwait(&w->cv, &w->mu, &dl) != 0) break;
    pthread_mutex_unlock(&w->mu);
}

typedef struct lane_job {
    sb_up *u;
    char url[128];
    int local;
    unsigned timeout_ms;
    pthread_t submit_thread, done_thread;
    uint64_t id;
    int submitted;
    int reaped_in_done; /* what sb_up_lane_reap returned inside the callback */
    waiter w;
} lane_job;

static void lane_job_done(const sb_up_result *r, void *arg)
{
    lane_job *j = arg;
    j->done_thread = pthread_self();
    j->reaped_in_done = sb_up_lane_reap(j->u);
    on_done(r, &j->w);
}

static void lane_job_submit(void *arg)
{
    lane_job *j = arg;
    j->submit_thread = pthread_self();
    sb_up_request rq = {.method = "GET", .url = j->url, .idempotent = 1,
                        .timeout_ms = j->timeout_ms ? j->timeout_ms : 5000, .local = j->local};
    j->submitted = sb_up_submit(j->u, &rq, lane_job_done, j, &j->id) == 0;
}

static void lane_job_wait(lane_job *j, int max_s)
{
    waiter_wait(&j->w, max_s);
}

static void lane_job_init(lane_job *j, sb_up *u, const mini_srv *m, const char *path, int local)
{
    memset(j, 0, sizeof *j);
    j->u = u;
    j->local = local;
    snprintf(j->url, sizeof j->url, "http://127.0.0.1:%u%s", m->port, path);
    pthread_mutex_init(&j->w.mu, NULL);
    pthread_cond_init(&j->w.cv, NULL);
}

static void test_lanes_local_requests_stay_on_their_lane(void **state)
{
    (void)state;
    mini_srv m;
    sb_up *u = loopback_engine(&m, 2, 0);
    assert_int_equal(sb_up_lanes(u), 2);
    assert_int_equal(sb_up_lane_call(u, 2, lane_job_submit, NULL), -1); /* no such lane */

    for (unsigned lane = 0; lane < 2; lane++) {
        lane_job j;
        lane_job_init(&j, u, &m, "/ok", 1);
        assert_int_equal(sb_up_lane_call(u, lane, lane_job_submit, &j), 0);
        assert_true(j.submitted);
        lane_job_wait(&j, 5);
        assert_true(j.w.done);
        assert_int_equal(j.w.error, SB_UP_OK);
        assert_int_equal(j.w.status, 200);
        /* submitted and completed on the same lane thread, not the test's */
        assert_true(pthread_equal(j.submit_thread, j.done_thread));
        assert_false(pthread_equal(j.done_thread, pthread_self()));
    }
    /* local from a thread that is no lane, or not local from a lane: the shared lane runs it */
    lane_job a, b;
    lane_job_init(&a, u, &m, "/ok", 1);
    lane_job_submit(&a);
    lane_job_wait(&a, 5);
    assert_int_equal(a.w.status, 200);
    lane_job_init(&b, u, &m, "/ok", 0);
    assert_int_equal(sb_up_lane_call(u, 0, lane_job_submit, &b), 0);
    lane_job_wait(&b, 5);
    assert_int_equal(b.w.status, 200);
    assert_false(pthread_equal(b.submit_thread, b.done_thread));
    assert_true(pthread_equal(a.done_thread, b.done_thread)); /* both on lane 0 */

    /* a local request on a lane, cancelled from this thread: its callback runs at once */
    lane_job h;
    lane_job_init(&h, u, &m, "/hang", 1);
    h.timeout_ms = 20000;
    assert_int_equal(sb_up_lane_call(u, 1, lane_job_submit, &h), 0);
    usleep(100000);
    assert_int_equal(h.w.done, 0);
    sb_up_cancel(u, h.id);
    lane_job_wait(&h, 5);
    assert_true(h.w.done);
    assert_int_equal(h.w.error, SB_UP_ECANCELLED);
    assert_true(pthread_equal(h.submit_thread, h.done_thread));
    sb_up_stop(u);
    mini_stop(&m);
}

typedef struct src_state {
    sb_up *u;
    int pipefd[2];
    int runs, attach_rc;
    pthread_t run_thread, attach_thread;
    pthread_mutex_t mu;
} src_state;

static void src_run(void *arg)
{
    src_state *s = arg;
    char b[16];
    while (read(s->pipefd[0], b, sizeof b) > 0) {
    }
    pthread_mutex_lock(&s->mu);
    s->runs++;
    s->run_thread = pthread_self();
    pthread_mutex_unlock(&s->mu);
}

static long src_timeout(void *arg)
{
    (void)arg;
    return -1;
}

static void src_attach(void *arg)
{
    src_state *s = arg;
    s->attach_thread = pthread_self();
    s->attach_rc = sb_up_lane_attach(s->u, 1, s->pipefd[0], src_run, src_timeout, s);
}

static void src_detach(void *arg)
{
    src_state *s = arg;
    s->attach_rc = sb_up_lane_attach(s->u, 1, -1, NULL, NULL, NULL);
}

static int src_runs(src_state *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->runs;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static int wait_runs(src_state *s, int want)
{
    for (int i = 0; i < 200 && src_runs(s) < want; i++) usleep(10000);
    return src_runs(s);
}

static void test_lanes_source_runs_when_ready_and_when_kicked(void **state)
{
    (void)state;
    sb_up_options o = {.lanes = 2};
    char err[200] = "";
    sb_up *u = sb_up_start(&o, err, sizeof err);
    assert_non_null(u);
    src_state s = {.u = u, .mu = PTHREAD_MUTEX_INITIALIZER};
    assert_int_equal(pipe2(s.pipefd, O_NONBLOCK | O_CLOEXEC), 0);
    /* attaching is only allowed on the lane's own thread */
    assert_int_equal(sb_up_lane_attach(u, 1, s.pipefd[0], src_run, src_timeout, &s), -1);
    assert_int_equal(sb_up_lane_call(u, 1, src_attach, &s), 0);
    assert_int_equal(s.attach_rc, 0);
    int base = src_runs(&s);
    assert_int_equal(write(s.pipefd[1], "x", 1), 1);
    assert_true(wait_runs(&s, base + 1) >= base + 1);
    assert_true(pthread_equal(s.run_thread, s.attach_thread));
    /* no event on the fd: a kick alone makes it run */
    base = src_runs(&s);
    sb_up_lane_kick(u, 1);
    assert_true(wait_runs(&s, base + 1) >= base + 1);
    /* quiet: it does not run by itself (the lane waits up to 1 s per turn) */
    base = src_runs(&s);
    usleep(300000);
    assert_int_equal(src_runs(&s), base);
    assert_int_equal(sb_up_lane_call(u, 1, src_detach, &s), 0);
    assert_int_equal(s.attach_rc, 0);
    assert_int_equal(write(s.pipefd[1], "y", 1), 1);
    usleep(200000);
    assert_int_equal(src_runs(&s), base); /* detached */
    sb_up_stop(u);
    close(s.pipefd[0]);
    close(s.pipefd[1]);
}

typedef struct many_jobs {
    lane_job j[40];
} many_jobs;

/* n jobs submitted in one go on the lane's own thread (sb_up_lane_call) */
typedef struct burst_task {
    lane_job *jobs;
    int n;
} burst_task;

static void burst_submit(void *arg)
{
    burst_task *t = arg;
    for (int i = 0; i < t->n; i++) lane_job_submit(&t->jobs[i]);
}

static void test_lanes_cancel_among_many(void **state)
{
    (void)state;
    /* 40 transfers waiting on a lane; each cancelled (newest first) from another thread is
     * found by its id and ends at once; the others keep waiting */
    mini_srv m;
    sb_up *u = loopback_engine(&m, 1, 0);
    many_jobs *mj = calloc(1, sizeof *mj);
    assert_non_null(mj);
    for (size_t i = 0; i < 40; i++) {
        lane_job_init(&mj->j[i], u, &m, "/hang", 1);
        mj->j[i].timeout_ms = 20000;
    }
    burst_task t = {.jobs = mj->j, .n = 40};
    assert_int_equal(sb_up_lane_call(u, 0, burst_submit, &t), 0);
    usleep(100000);
    for (int i = 39; i >= 0; i--) {
        assert_true(mj->j[i].submitted);
        sb_up_cancel(u, mj->j[i].id);
        lane_job_wait(&mj->j[i], 5);
        assert_true(mj->j[i].w.done);
        assert_int_equal(mj->j[i].w.error, SB_UP_ECANCELLED);
        if (i > 0) assert_int_equal(mj->j[i - 1].w.done, 0);
    }
    sb_up_cancel(u, mj->j[0].id); /* a second cancel of a finished transfer: nothing happens */
    sb_up_stop(u);
    mini_stop(&m);
    free(mj);
}

static double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

typedef struct reap_task {
    sb_up *u;
    int n;
} reap_task;

static void lane_reap_task(void *arg)
{
    reap_task *t = arg;
    t->n = sb_up_lane_reap(NULL) + sb_up_lane_reap(t->u);
}

static void test_lanes_parked_connections(void **state)
{
    (void)state;
    /* A kept-alive upstream connection stays in the lane's epoll set between transfers: the
     * next transfer reuses it; when the server closes it while it is idle, the lane takes it out
     * (no busy loop on its event) and the next transfer connects afresh. */
    mini_srv m;
    /* retries allowed: only then may an idempotent request reuse a connection */
    sb_up *u = loopback_engine(&m, 1, 1);
    assert_int_equal(sb_up_lane_reap(u), 0); /* not on a lane: nothing runs */
    for (int i = 0; i < 4; i++) {
        lane_job j;
        lane_job_init(&j, u, &m, i == 3 ? "/closesoon" : "/ok", 1);
        assert_int_equal(sb_up_lane_call(u, 0, lane_job_submit, &j), 0);
        lane_job_wait(&j, 5);
        assert_int_equal(j.w.error, SB_UP_OK);
        assert_int_equal(j.w.status, 200);
        assert_int_equal(j.reaped_in_done, 0); /* never from inside a callback */
    }
    assert_int_equal(atomic_load(&m.accepts), 1); /* one connection for all four */
    usleep(200000); /* the server has closed it */
    double c0 = cpu_ms();
    usleep(300000);
    double used = cpu_ms() - c0;
    /* a lane woken again and again by the closed socket would burn the whole 300 ms */
    assert_true(used < 100.0);
    for (int i = 0; i < 2; i++) {
        lane_job j;
        lane_job_init(&j, u, &m, "/ok", 1);
        assert_int_equal(sb_up_lane_call(u, 0, lane_job_submit, &j), 0);
        lane_job_wait(&j, 5);
        assert_int_equal(j.w.error, SB_UP_OK);
        assert_int_equal(j.w.status, 200);
    }
    assert_int_equal(atomic_load(&m.accepts), 2); /* a fresh one, then reused */
    /* on the lane with nothing completed: nothing to deliver */
    reap_task t = {.u = u, .n = -1};
    assert_int_equal(sb_up_lane_call(u, 0, lane_reap_task, &t), 0);
    assert_int_equal(t.n, 0);
    sb_up_stop(u);
    mini_stop(&m);
}

static void test_lanes_fresh_connect_only_when_all_busy(void **state)
{
    (void)state;
    /* A plain-HTTP transfer skips libcurl's search for a reusable connection only while every
     * plain-HTTP connection of its lane carries a transfer: an idle one is still reused, and once
     * a burst is over, its connections are (the lane's counts come back down). */
    mini_srv m;
    sb_up *u = loopback_engine(&m, 1, 1);
    lane_job warm;
    lane_job_init(&warm, u, &m, "/ok", 1);
    assert_int_equal(sb_up_lane_call(u, 0, lane_job_submit, &warm), 0);
    lane_job_wait(&warm, 5);
    assert_int_equal(warm.w.status, 200);
    assert_int_equal(atomic_load(&m.accepts), 1);
    for (int round = 0; round < 2; round++) {
        /* three at once on one lane: in the first round one takes the idle connection and
         * two connect; in the second all three find one kept */
        lane_job jobs[3];
        for (int i = 0; i < 3; i++) lane_job_init(&jobs[i], u, &m, "/ok", 1);
        burst_task t = {.jobs = jobs, .n = 3};
        assert_int_equal(sb_up_lane_call(u, 0, burst_submit, &t), 0);
        for (int i = 0; i < 3; i++) {
            lane_job_wait(&jobs[i], 5);
            assert_true(jobs[i].submitted);
            assert_int_equal(jobs[i].w.error, SB_UP_OK);
            assert_int_equal(jobs[i].w.status, 200);
        }
        assert_int_equal(atomic_load(&m.accepts), 3);
    }
    for (int i = 0; i < 4; i++) { /* one after another: always a kept connection */
        lane_job j;
        lane_job_init(&j, u, &m, "/ok", 1);
        assert_int_equal(sb_up_lane_call(u, 0, lane_job_submit, &j), 0);
        lane_job_wait(&j, 5);
        assert_int_equal(j.w.status, 200);
    }
    assert_int_equal(atomic_load(&m.accepts), 3);
    sb_up_stop(u);
    mini_stop(&m);
}

typedef struct take_job {
    waiter w;
    int took, again;
    char *body, *hdrs;
} take_job;

static void take_done(const sb_up_result *r, void *arg)
{
    take_job *t = arg;
    char *b2 = NULL, *h2 = NULL;
    t->took = sb_up_take(r, &t->body, &t->hdrs);
    t->again = sb_up_take(r, &b2, &h2); /* taken already: nothing */
    on_done(r, &t->w);
}

static void take_submit(void *arg)
{
    void **a = arg;
    sb_up_request rq = {.method = "GET", .url = a[1], .idempotent = 1, .timeout_ms = 5000,
                        .local = 1};
    sb_up_submit(a[0], &rq, take_done, a[2], NULL);
}

static void test_take_body_and_headers(void **state)
{
    (void)state;
    /* the callback takes the engine's buffers instead of copying them */
    mini_srv m;
    sb_up *u = loopback_engine(&m, 1, 0);
    take_job t = {.took = 1, .again = 1};
    pthread_mutex_init(&t.w.mu, NULL);
    pthread_cond_init(&t.w.cv, NULL);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/ok", m.port);
    void *args[3] = {u, url, &t};
    assert_int_equal(sb_up_lane_call(u, 0, take_submit, args), 0);
    waiter_wait(&t.w, 5);
    assert_true(t.w.done);
    assert_int_equal(t.w.status, 200);
    assert_int_equal(t.took, 0);
    assert_int_equal(t.again, -1);
    assert_non_null(t.body);
    assert_string_equal(t.body, "ok");
    assert_non_null(t.hdrs);
    sb_up_result taken = {.hdrs_ = t.hdrs}; /* read as sb_up_header reads a live result */
    assert_string_equal(sb_up_header(&taken, "content-length"), "2");
    sb_up_result none = {0};
    char *b = NULL, *h = NULL;
    assert_int_equal(sb_up_take(&none, &b, &h), -1); /* no live result */
    assert_int_equal(sb_up_take(NULL, &b, &h), -1);
    free(t.body);
    free(t.hdrs);
    sb_up_stop(u);
    mini_stop(&m);
}

/* The MCP path grammar shared by sb_http's routes and sb_oauth's resources. */
static void test_mcp_path(void **state)
{
    (void)state;
    sb_config cfg;
    sb_regions rt;
    char err[256], prov[16], reg[24], inst[64];
    assert_int_equal(sb_config_load(&cfg, NULL, NULL, NULL, err, sizeof err), 0);
    assert_int_equal(sb_regions_init(&rt, &cfg, err, sizeof err), 0);
    static const struct {
        const char *path, *prov, *reg, *inst;
    } good[] = {
        {"/mcp", "dropboxsign", "", ""},
        {"/boldsign/mcp", "boldsign", "", ""},
        {"/boldsign/eu/mcp", "boldsign", "eu", ""},
        {"/iinkedsign/sandbox-us/mcp", "iinkedsign", "sandbox-us", ""},
        {"/iinkedsign/private/acme-co/mcp", "iinkedsign", "private", "acme-co"},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(sb_regions_mcp_path(&rt, good[i].path, "dropboxsign", prov, reg, inst), 1);
        assert_string_equal(prov, good[i].prov);
        assert_string_equal(reg, good[i].reg);
        assert_string_equal(inst, good[i].inst);
    }
    static const char *const bad[] = {
        "",
        "mcp",
        "/",
        "/mcp/",
        "//mcp",
        "/boldsign/mcp/",
        "/boldsign//mcp",
        "/boldsign",
        "/BoldSign/mcp",
        "/bold_sign/mcp",
        "/nosuch/mcp",
        "/boldsign/xx/mcp",
        "/boldsign/EU/mcp",
        "/boldsign/eu/extra/mcp",
        "/dropboxsign/private/acme/mcp",
        "/iinkedsign/private/Acme/mcp",
        "/iinkedsign/private/a/b/mcp",
        "/boldsign/mcpx",
        "/boldsign/MCP",
        "/mcp?x=1",
        ("/iinkedsign/private/"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/mcp"), /* 64 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(prov, sizeof prov, "x");
        assert_int_equal(sb_regions_mcp_path(&rt, bad[i], "dropboxsign", prov, reg, inst), 0);
        assert_string_equal(prov, ""); /* nothing half-filled */
        assert_string_equal(reg, "");
        assert_string_equal(inst, "");
    }
    /* the default route needs a known default provider */
    assert_int_equal(sb_regions_mcp_path(&rt, "/mcp", "nosuch", prov, reg, inst), 0);
    assert_int_equal(sb_regions_mcp_path(&rt, "/mcp", NULL, prov, reg, inst), 0);
    assert_int_equal(sb_regions_mcp_path(NULL, "/mcp", "boldsign", prov, reg, inst), 0);
    /* 63 characters is the longest instance */
    char longest[128];
    snprintf(longest, sizeof longest, "/iinkedsign/private/%063d/mcp", 0);
    assert_int_equal(sb_regions_mcp_path(&rt, longest, "boldsign", prov, reg, inst), 1);
    assert_int_equal(strlen(inst), 63);
}

/* The lean build patches libcurl's printf (scripts/lean-deps-patches/curl-mprintf-runs.patch:
 * output staged and appended in runs, a %s written as one run), which formats every upstream
 * request's line, headers and URL. Its output must stay snprintf's: strings around the 256-byte
 * staging buffer's size, after staged bytes or none, with width and precision, NULL, and over
 * aprintf's limit (NULL, nothing partial). Debian's libcurl passes the same checks. */
static void test_libcurl_aprintf(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 1, 15, 255, 256, 257, 511, 512, 513, 5000, 100000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t n = lens[i], cap = 3 * n + 512;
        char *s = malloc(n + 1), *want = malloc(cap), *pad = malloc(300);
        assert_non_null(s);
        assert_non_null(want);
        assert_non_null(pad);
        for (size_t k = 0; k < n; k++) s[k] = (char)('a' + k % 26);
        s[n] = '\0';
        for (int pre = 0; pre < 300; pre += 97) { /* 0, 97, 194, 291 bytes staged first */
            memset(pad, 'x', (size_t)pre);
            pad[pre] = '\0';
            snprintf(want, cap, "%s[%s]%s|%d", pad, s, s, 42);
            char *got = curl_maprintf("%s[%s]%s|%d", pad, s, s, 42);
            assert_non_null(got);
            assert_string_equal(got, want);
            curl_free(got);
            snprintf(want, cap, "%s%10s|%-10s|%.3s", pad, s, s, s);
            got = curl_maprintf("%s%10s|%-10s|%.3s", pad, s, s, s);
            assert_non_null(got);
            assert_string_equal(got, want);
            curl_free(got);
        }
        free(s);
        free(want);
        free(pad);
    }
    char *got = curl_maprintf("%s|", (char *)NULL);
    assert_string_equal(got, "(nil)|");
    curl_free(got);
    size_t big = 9u << 20; /* over aprintf's 8 MB limit */
    char *h = malloc(big + 1);
    assert_non_null(h);
    memset(h, 'y', big);
    h[big] = '\0';
    assert_null(curl_maprintf("%s", h));
    assert_null(curl_maprintf("ab%s", h));
    free(h);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_private_ipv4),
        cmocka_unit_test(test_public_ipv4),
        cmocka_unit_test(test_private_ipv6),
        cmocka_unit_test(test_public_ipv6),
        cmocka_unit_test(test_not_an_address_is_refused),
        cmocka_unit_test(test_engine_refuses_private_destinations),
        cmocka_unit_test(test_engine_allow_listed_network_is_contacted),
        cmocka_unit_test(test_engine_refuses_plain_http_elsewhere),
        cmocka_unit_test(test_failed_start_closes_nothing),
        cmocka_unit_test(test_bad_allowed_network),
        cmocka_unit_test(test_header_lookup),
        cmocka_unit_test(test_mcp_path),
        cmocka_unit_test(test_lanes_local_requests_stay_on_their_lane),
        cmocka_unit_test(test_lanes_source_runs_when_ready_and_when_kicked),
        cmocka_unit_test(test_lanes_cancel_among_many),
        cmocka_unit_test(test_lanes_parked_connections),
        cmocka_unit_test(test_lanes_fresh_connect_only_when_all_busy),
        cmocka_unit_test(test_take_body_and_headers),
        cmocka_unit_test(test_libcurl_aprintf),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
