/* Unit tests for sb_up: the destination-address policy (sb_up_address_is_private), policy refusals
 * made by the engine before any byte is sent (private destinations not allow-listed, plain http
 * outside the allowed prefixes), allowed_networks parsing (and its error path), and response-header
 * lookup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
