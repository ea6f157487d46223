/* Unit tests for sb_metrics: rendering, escaping, bounded cardinality, concurrent updates,
 * histogram bucket math, and the cost of one update. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/sb_buf.h"
#include "core/sb_metrics.h"

static char *render(sb_metrics *m)
{
    sb_buf b;
    sb_buf_init(&b, 1 << 24);
    assert_int_equal(sb_metrics_render(m, &b), 0);
    return sb_buf_detach(&b, NULL);
}

static void assert_contains(const char *hay, const char *needle)
{
    const char *h = hay ? hay : "(null)";
    if (!hay || !strstr(hay, needle)) fail_msg("missing %s in:\n%s", needle, h);
}

static void test_render_counter_gauge(void **state)
{
    (void)state;
    sb_metrics *m = sb_metrics_new(0);
    sb_mfamily *c = sb_metrics_family(m, SB_METRIC_COUNTER, "x_requests_total", "Requests.", 2,
                                      (const char *const[]){"route", "status"});
    sb_mfamily *g = sb_metrics_family(m, SB_METRIC_GAUGE, "x_in_flight", "In flight.", 0, NULL);
    assert_non_null(c);
    assert_non_null(g);
    sb_mseries *s = sb_metrics_series(c, (const char *const[]){"mcp", "200"});
    sb_metrics_inc(s);
    sb_metrics_add(s, 4);
    /* the same labels give the same series */
    assert_ptr_equal(s, sb_metrics_series(c, (const char *const[]){"mcp", "200"}));
    sb_metrics_inc(sb_metrics_series(c, (const char *const[]){"mcp", "404"}));
    sb_mseries *gs = sb_metrics_series(g, NULL);
    sb_metrics_set(gs, 7);
    sb_metrics_gauge_add(gs, -9);
    assert_int_equal(sb_metrics_value(gs), -2);
    char *out = render(m);
    assert_string_equal(out, "# HELP x_requests_total Requests.\n"
                             "# TYPE x_requests_total counter\n"
                             "x_requests_total{route=\"mcp\",status=\"200\"} 5\n"
                             "x_requests_total{route=\"mcp\",status=\"404\"} 1\n"
                             "# HELP x_in_flight In flight.\n"
                             "# TYPE x_in_flight gauge\n"
                             "x_in_flight -2\n");
    free(out);
    /* same name again: same family when the shape matches, NULL otherwise */
    assert_ptr_equal(c, sb_metrics_family(m, SB_METRIC_COUNTER, "x_requests_total", "again", 2,
                                          (const char *const[]){"route", "status"}));
    assert_null(sb_metrics_family(m, SB_METRIC_GAUGE, "x_requests_total", "", 2,
                                  (const char *const[]){"route", "status"}));
    assert_null(sb_metrics_family(m, SB_METRIC_COUNTER, "x_requests_total", "", 1,
                                  (const char *const[]){"route"}));
    /* invalid names */
    assert_null(sb_metrics_family(m, SB_METRIC_COUNTER, "9bad", "", 0, NULL));
    assert_null(sb_metrics_family(m, SB_METRIC_COUNTER, "bad-name", "", 0, NULL));
    assert_null(sb_metrics_family(m, SB_METRIC_COUNTER, "ok", "", 1, (const char *const[]){"a:b"}));
    assert_null(
        sb_metrics_family(m, SB_METRIC_COUNTER, "ok2", "", 1, (const char *const[]){"__x"}));
    assert_null(
        sb_metrics_family(m, SB_METRIC_HISTOGRAM, "ok3", "", 1, (const char *const[]){"le"}));
    assert_non_null(sb_metrics_family(m, SB_METRIC_COUNTER, "ns:ok_total", "", 0, NULL));
    /* NULL series are ignored */
    sb_metrics_inc(NULL);
    sb_metrics_observe(NULL, 1.0);
    assert_null(sb_metrics_series(NULL, NULL));
    sb_metrics_free(m);
}

static void test_escaping(void **state)
{
    (void)state;
    sb_metrics *m = sb_metrics_new(0);
    sb_mfamily *c = sb_metrics_family(m, SB_METRIC_COUNTER, "esc_total",
                                      "Help with \\ backslash\nand newline \"quoted\".", 1,
                                      (const char *const[]){"v"});
    sb_metrics_inc(sb_metrics_series(c, (const char *const[]){"a\"b\\c\nd"}));
    sb_metrics_inc(sb_metrics_series(c, (const char *const[]){NULL})); /* NULL is "" */
    sb_metrics_inc(sb_metrics_series(c, (const char *const[]){""}));
    char *out = render(m);
    assert_string_equal(out, "# HELP esc_total Help with \\\\ backslash\\nand newline \"quoted\".\n"
                             "# TYPE esc_total counter\n"
                             "esc_total{v=\"a\\\"b\\\\c\\nd\"} 1\n"
                             "esc_total{v=\"\"} 2\n");
    free(out);
    /* long values are cut at 128 bytes, on a UTF-8 boundary: both map to the same series */
    char longv[300], longw[300];
    memset(longv, 'x', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    memcpy(longw, longv, sizeof longw);
    longw[200] = 'y';
    sb_mseries *a = sb_metrics_series(c, (const char *const[]){longv});
    assert_ptr_equal(a, sb_metrics_series(c, (const char *const[]){longw}));
    char utf[200];
    memset(utf, 'x', sizeof utf);
    memcpy(utf + 127, "\xc3\xa9", 2); /* é straddles the cut */
    utf[150] = '\0';
    sb_metrics_inc(sb_metrics_series(c, (const char *const[]){utf}));
    out = render(m);
    char want[200];
    memset(want, 'x', 127);
    memcpy(want, "esc_total{v=\"", 13);
    memset(want + 13, 'x', 127);
    snprintf(want + 13 + 127, sizeof want - 140, "\"} 1\n");
    assert_contains(out, want);
    free(out);
    sb_metrics_free(m);
}

static void test_bounded_cardinality(void **state)
{
    (void)state;
    sb_metrics *m = sb_metrics_new(16);
    sb_mfamily *c = sb_metrics_family(m, SB_METRIC_COUNTER, "card_total", "Cardinality.", 2,
                                      (const char *const[]){"a", "b"});
    for (int i = 0; i < 1000; i++) {
        char v[16];
        snprintf(v, sizeof v, "v%d", i);
        sb_metrics_inc(sb_metrics_series(c, (const char *const[]){v, "x"}));
    }
    assert_int_equal(sb_metrics_series_count(c), 16);
    /* earlier series keep counting on their own */
    sb_metrics_inc(sb_metrics_series(c, (const char *const[]){"v3", "x"}));
    sb_mseries *other = sb_metrics_series(c, (const char *const[]){"other", "other"});
    assert_int_equal(sb_metrics_value(other), 1000 - 16);
    assert_ptr_equal(other, sb_metrics_series(c, (const char *const[]){"new", "one"}));
    assert_int_equal(sb_metrics_series_count(c), 16);
    char *out = render(m);
    assert_contains(out, "card_total{a=\"v3\",b=\"x\"} 2\n");
    assert_contains(out, "card_total{a=\"other\",b=\"other\"} 984\n");
    assert_null(strstr(out, "v16"));
    /* exactly 16 + 1 sample lines */
    int lines = 0;
    for (const char *p = out; (p = strstr(p, "card_total{")); p++)
        lines++;
    assert_int_equal(lines, 17);
    free(out);
    /* the default bound is 256 */
    sb_metrics *m2 = sb_metrics_new(0);
    sb_mfamily *c2 =
        sb_metrics_family(m2, SB_METRIC_COUNTER, "d_total", "", 1, (const char *const[]){"a"});
    for (int i = 0; i < 5000; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        sb_metrics_inc(sb_metrics_series(c2, (const char *const[]){v}));
    }
    assert_int_equal(sb_metrics_series_count(c2), SB_METRICS_MAX_SERIES);
    sb_metrics_free(m2);
    sb_metrics_free(m);
}

static void test_histogram_buckets(void **state)
{
    (void)state;
    sb_metrics *m = sb_metrics_new(0);
    sb_mfamily *h = sb_metrics_family(m, SB_METRIC_HISTOGRAM, "lat_seconds", "Latency.", 1,
                                      (const char *const[]){"route"});
    sb_mseries *s = sb_metrics_series(h, (const char *const[]){"mcp"});
    sb_metrics_observe_us(s, 0);    /* le 0.001 */
    sb_metrics_observe_us(s, 1000); /* le 0.001: bounds are inclusive */
    sb_metrics_observe_us(s, 1001); /* le 0.0025 */
    sb_metrics_observe(s, 0.0025);  /* le 0.0025 */
    sb_metrics_observe(s, 0.3);     /* le 0.5 */
    sb_metrics_observe(s, 30.0);    /* le 30 */
    sb_metrics_observe(s, 31.0);    /* +Inf */
    sb_metrics_observe(s, -1.0);    /* clamped to 0 */
    assert_int_equal(sb_metrics_value(s), 8);
    char *out = render(m);
    const char *want = "# HELP lat_seconds Latency.\n"
                       "# TYPE lat_seconds histogram\n"
                       "lat_seconds_bucket{route=\"mcp\",le=\"0.001\"} 3\n"
                       "lat_seconds_bucket{route=\"mcp\",le=\"0.0025\"} 5\n"
                       "lat_seconds_bucket{route=\"mcp\",le=\"0.005\"} 5\n"
                       "lat_seconds_bucket{route=\"mcp\",le=\"0.01\"} 5\n"
                       "lat_seconds_bucket{route=\"mcp\",le=\"0.025\"} 5\n"
                       "lat_seconds_bucket{route=\"mcp\",le=\"0.05\"} 5\n"
                       "lat_seconds_bucket{route=\"mcp\",le=\"0.1\"} 5\n"
                       "lat_seconds_bucket{route=\"mcp\",le=\"0.25\"} 5\n"
                       "lat_seconds_bucket{route=\"mcp\",le=\"0.5\"} 6\n"
                       "lat_seconds_bucket{route=\"mcp\",le=\"1\"} 6\n"
                       "lat_seconds_bucket{route=\"mcp\",le=\"2.5\"} 6\n"
                       "lat_seconds_bucket{route=\"mcp\",le=\"5\"} 6\n"
                       "lat_seconds_bucket{route=\"mcp\",le=\"10\"} 6\n"
                       "lat_seconds_bucket{route=\"mcp\",le=\"30\"} 7\n"
                       "lat_seconds_bucket{route=\"mcp\",le=\"+Inf\"} 8\n"
                       "lat_seconds_sum{route=\"mcp\"} 61.304501\n"
                       "lat_seconds_count{route=\"mcp\"} 8\n";
    assert_string_equal(out, want);
    free(out);
    /* every bound lands in its own bucket; a hair above goes to the next */
    for (size_t i = 0; i < SB_METRICS_NBUCKETS - 1; i++) {
        sb_metrics *m2 = sb_metrics_new(0);
        sb_mfamily *h2 = sb_metrics_family(m2, SB_METRIC_HISTOGRAM, "b", "", 0, NULL);
        sb_mseries *s2 = sb_metrics_series(h2, NULL);
        sb_metrics_observe(s2, sb_metrics_bounds[i]);
        sb_metrics_observe(s2, sb_metrics_bounds[i] + 0.000001);
        char *o2 = render(m2);
        /* the cumulative count at bound i is 1, at bound i+1 (or +Inf) 2 */
        const char *p = o2;
        for (size_t k = 0; k < i; k++)
            p = strstr(p, "b_bucket") + 1;
        p = strstr(p, "b_bucket");
        assert_non_null(p);
        const char *sp = strchr(p, ' ');
        assert_int_equal(strtol(sp + 1, NULL, 10), 1);
        p = strstr(p + 1, "b_bucket");
        sp = strchr(p, ' ');
        assert_int_equal(strtol(sp + 1, NULL, 10), 2);
        free(o2);
        sb_metrics_free(m2);
    }
    /* an unlabelled histogram puts le alone in braces */
    sb_metrics *m3 = sb_metrics_new(0);
    sb_metrics_observe_us(
        sb_metrics_series(sb_metrics_family(m3, SB_METRIC_HISTOGRAM, "u", "", 0, NULL), NULL), 5);
    out = render(m3);
    assert_contains(out, "u_bucket{le=\"0.001\"} 1\n");
    assert_contains(out, "u_sum 0.000005\n");
    assert_contains(out, "u_count 1\n");
    free(out);
    sb_metrics_free(m3);
    sb_metrics_free(m);
}

/* ---- concurrency ------------------------------------------------------------------------------
 */

#define THREADS 4
#define PER_THREAD 200000

typedef struct worker {
    sb_mfamily *c, *h, *g;
    int id;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        char v[8];
        snprintf(v, sizeof v, "k%d", i % 8); /* shared series, created concurrently */
        sb_metrics_inc(sb_metrics_series(w->c, (const char *const[]){v}));
        sb_metrics_observe_us(sb_metrics_series(w->h, (const char *const[]){v}),
                              (uint64_t)i % 4000);
        sb_mseries *g = sb_metrics_series(w->g, NULL);
        sb_metrics_gauge_add(g, 1);
        sb_metrics_gauge_add(g, -1);
    }
    return NULL;
}

typedef struct renderer {
    sb_metrics *m;
    volatile int stop;
    int renders;
} renderer;

static void *render_loop(void *arg)
{
    renderer *r = arg;
    while (!r->stop) {
        char *out = render(r->m);
        free(out);
        r->renders++;
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    sb_metrics *m = sb_metrics_new(0);
    worker w[THREADS];
    pthread_t t[THREADS], rt;
    sb_mfamily *c =
        sb_metrics_family(m, SB_METRIC_COUNTER, "c_total", "", 1, (const char *const[]){"k"});
    sb_mfamily *h =
        sb_metrics_family(m, SB_METRIC_HISTOGRAM, "h_seconds", "", 1, (const char *const[]){"k"});
    sb_mfamily *g = sb_metrics_family(m, SB_METRIC_GAUGE, "g", "", 0, NULL);
    renderer r = {.m = m};
    assert_int_equal(pthread_create(&rt, NULL, render_loop, &r), 0);
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){.c = c, .h = h, .g = g, .id = i};
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    r.stop = 1;
    pthread_join(rt, NULL);
    assert_int_equal(sb_metrics_series_count(c), 8);
    int64_t total = 0, htotal = 0;
    for (int k = 0; k < 8; k++) {
        char v[8];
        snprintf(v, sizeof v, "k%d", k);
        int64_t n = sb_metrics_value(sb_metrics_series(c, (const char *const[]){v}));
        assert_int_equal(n, (int64_t)THREADS * PER_THREAD / 8);
        total += n;
        htotal += sb_metrics_value(sb_metrics_series(h, (const char *const[]){v}));
    }
    assert_int_equal(total, (int64_t)THREADS * PER_THREAD);
    assert_int_equal(htotal, (int64_t)THREADS * PER_THREAD);
    assert_int_equal(sb_metrics_value(sb_metrics_series(g, NULL)), 0);
    char *out = render(m);
    char want[64];
    snprintf(want, sizeof want, "c_total{k=\"k0\"} %d\n", THREADS * PER_THREAD / 8);
    assert_contains(out, want);
    snprintf(want, sizeof want, "h_seconds_count{k=\"k0\"} %d\n", THREADS * PER_THREAD / 8);
    assert_contains(out, want);
    free(out);
    sb_metrics_free(m);
}

/* The cost of what one HTTP request does: a 3-label lookup + increment and a histogram update. */
static void test_cost(void **state)
{
    (void)state;
    sb_metrics *m = sb_metrics_new(0);
    sb_mfamily *c = sb_metrics_family(m, SB_METRIC_COUNTER, "r_total", "", 3,
                                      (const char *const[]){"route", "method", "status"});
    sb_mseries *h = sb_metrics_series(sb_metrics_family(m, SB_METRIC_HISTOGRAM, "d_seconds", "", 1,
                                                        (const char *const[]){"route"}),
                                      (const char *const[]){"mcp"});
    const int n = 2000000;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < n; i++) {
        const char *st = (i & 7) ? "200" : "202";
        sb_metrics_inc(sb_metrics_series(c, (const char *const[]){"mcp", "POST", st}));
        sb_metrics_observe_us(h, (uint64_t)(i & 4095));
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / n;
    print_message("metrics cost per request (lookup+inc+observe): %.1f ns\n", ns);
    assert_true(ns < 20000); /* generous: sanitizer builds */
    sb_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_counter_gauge), cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_bounded_cardinality),  cmocka_unit_test(test_histogram_buckets),
        cmocka_unit_test(test_concurrent),           cmocka_unit_test(test_cost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
