/* Unit tests for auth/sb_ratelimit: per-credential token buckets (in memory and shared through
 * the store) and the concurrency cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/sb_ratelimit.h"
#include "core/sb_metrics.h"
#include "store/sb_store.h"

static const char *k_fp1 = "1111111111111111111111111111111111111111111111111111111111111111";
static const char *k_fp2 = "2222222222222222222222222222222222222222222222222222222222222222";

static int64_t refusals(const char *limit)
{
    sb_mfamily *f = sb_metrics_family(
        sb_metrics_global(), SB_METRIC_COUNTER, "signbridge_ratelimit_refusals_total",
        "MCP requests refused by a per-credential limit.", 1, (const char *const[]){"limit"});
    return sb_metrics_value(sb_metrics_series(f, (const char *const[]){limit}));
}

static void test_local_bucket(void **state)
{
    (void)state;
    sb_ratelimit_limits l = {.requests_per_minute = 60, .burst = 5};
    sb_ratelimit *rl = sb_ratelimit_new(NULL, 0, &l);
    assert_non_null(rl);
    sb_ratelimit_refusal rf;
    int64_t before = refusals("rate");
    for (int i = 0; i < 5; i++)
        assert_int_equal(sb_ratelimit_take(rl, k_fp1, &rf), 0);
    assert_int_equal(sb_ratelimit_take(rl, k_fp1, &rf), 1);
    assert_int_equal(rf.kind, SB_RATELIMIT_RATE);
    assert_int_equal(rf.retry_after_s, 1);
    assert_int_equal(rf.limits.requests_per_minute, 60);
    assert_int_equal(rf.limits.burst, 5);
    assert_int_equal(refusals("rate"), before + 1);
    /* another credential has its own bucket */
    assert_int_equal(sb_ratelimit_take(rl, k_fp2, &rf), 0);
    /* a token comes back after a second at 60/min */
    usleep(1050 * 1000);
    assert_int_equal(sb_ratelimit_take(rl, k_fp1, &rf), 0);
    assert_int_equal(sb_ratelimit_take(rl, k_fp1, &rf), 1);
    /* reconfigured off: everything passes; default burst = rpm / 6 */
    sb_ratelimit_configure(rl, &(sb_ratelimit_limits){0});
    for (int i = 0; i < 100; i++)
        assert_int_equal(sb_ratelimit_take(rl, k_fp1, &rf), 0);
    sb_ratelimit_configure(rl, &(sb_ratelimit_limits){.requests_per_minute = 600});
    sb_ratelimit_limits got;
    sb_ratelimit_get(rl, &got);
    assert_int_equal(got.burst, 100);
    /* slow rate: Retry-After is when the next token is due */
    sb_ratelimit_configure(rl, &(sb_ratelimit_limits){.requests_per_minute = 2, .burst = 1});
    assert_int_equal(sb_ratelimit_take(rl, "fresh", &rf), 0);
    assert_int_equal(sb_ratelimit_take(rl, "fresh", &rf), 1);
    assert_in_range(rf.retry_after_s, 29, 30);
    sb_ratelimit_free(rl);
}

static void test_concurrency(void **state)
{
    (void)state;
    sb_ratelimit *rl = sb_ratelimit_new(NULL, 0, &(sb_ratelimit_limits){.max_concurrent_calls = 2});
    sb_ratelimit_refusal rf;
    int64_t before = refusals("concurrency");
    assert_int_equal(sb_ratelimit_call_begin(rl, k_fp1, &rf), 0);
    assert_int_equal(sb_ratelimit_call_begin(rl, k_fp1, &rf), 0);
    assert_int_equal(sb_ratelimit_call_begin(rl, k_fp1, &rf), 1);
    assert_int_equal(rf.kind, SB_RATELIMIT_CONCURRENCY);
    assert_int_equal(rf.retry_after_s, 1);
    assert_int_equal(rf.limits.max_concurrent_calls, 2);
    assert_int_equal(refusals("concurrency"), before + 1);
    assert_int_equal(sb_ratelimit_call_begin(rl, k_fp2, &rf), 0);
    sb_ratelimit_call_end(rl, k_fp1);
    assert_int_equal(sb_ratelimit_call_begin(rl, k_fp1, &rf), 0);
    /* the rate limit is off: takes always pass */
    assert_int_equal(sb_ratelimit_take(rl, k_fp1, &rf), 0);
    sb_ratelimit_call_end(rl, "never-began"); /* harmless */
    sb_ratelimit_free(rl);
}

static void test_shared_store(void **state)
{
    (void)state;
    char dir[] = "/tmp/sbrl-XXXXXX", path[64], url[80];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/rl.db", dir);
    snprintf(url, sizeof url, "sqlite:%s", path);
    sb_store *st = NULL;
    char err[256];
    assert_int_equal(sb_store_open(&st, url, NULL, err, sizeof err), 0);
    sb_ratelimit_limits l = {.requests_per_minute = 6, .burst = 4};
    /* two limiters on one store stand for two replicas: they share the bucket */
    sb_ratelimit *a = sb_ratelimit_new(st, 1, &l), *b = sb_ratelimit_new(st, 1, &l);
    sb_ratelimit_refusal rf;
    int ok = 0;
    for (int i = 0; i < 10; i++)
        ok += sb_ratelimit_take(i % 2 ? a : b, k_fp1, &rf) == 0;
    assert_int_equal(ok, 4);
    assert_int_equal(sb_ratelimit_take(a, k_fp2, &rf), 0);
    sb_store_rec rec;
    assert_int_equal(sb_store_get(st, "ratelimit", k_fp1, &rec), 0);
    assert_true(rec.expires_at_ms > sb_store_now_ms());
    sb_store_rec_free(&rec);
    sb_ratelimit_free(a);
    sb_ratelimit_free(b);
    sb_store_close(st);
    unlink(path);
    char wal[80];
    snprintf(wal, sizeof wal, "%s-wal", path);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", path);
    unlink(wal);
    rmdir(dir);
}

static void test_bad_args(void **state)
{
    (void)state;
    sb_ratelimit_refusal rf;
    assert_true(sb_ratelimit_take(NULL, k_fp1, &rf) < 0);
    assert_true(sb_ratelimit_call_begin(NULL, k_fp1, &rf) < 0);
    sb_ratelimit *rl = sb_ratelimit_new(NULL, 1, NULL); /* shared without a store: local */
    assert_true(sb_ratelimit_take(rl, NULL, &rf) < 0);
    assert_int_equal(sb_ratelimit_take(rl, k_fp1, &rf), 0);
    sb_ratelimit_call_end(NULL, k_fp1);
    sb_ratelimit_free(rl);
    sb_ratelimit_free(NULL);
    assert_string_equal(sb_ratelimit_kind_name(SB_RATELIMIT_RATE), "rate");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_bucket),
        cmocka_unit_test(test_concurrency),
        cmocka_unit_test(test_shared_store),
        cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
