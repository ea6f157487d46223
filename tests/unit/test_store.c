/* Unit tests for store/sb_store on both backends: SQLite always (a temp directory), PostgreSQL when
 * SB_TEST_PG_URL is set (scripts/test starts a throwaway server; each run gets its own schema,
 * dropped at the end); without it the PostgreSQL group reports "skipped". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/sb_store.h"
#include "store/sb_store_int.h"

typedef struct {
    int pg;
    char url[1024];
    char dir[256]; /* SQLite: temp directory */
} backend;

static backend g_sqlite, g_pg;
static char g_pg_schema[64];
static char g_pg_base[1024];

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static sb_store *open_ok(const backend *b)
{
    sb_store *st = NULL;
    char err[256];
    int rc = sb_store_open(&st, b->url, NULL, err, sizeof err);
    if (rc) fprintf(stderr, "open %s: %d %s\n", b->pg ? "pg" : b->url, rc, err);
    assert_int_equal(rc, 0);
    assert_non_null(st);
    return st;
}

/* Run one SQL statement outside the store (schema checks, tampering); returns the first column of
 * the first row as an integer, or -1. */
static long long raw_sql(const backend *b, const char *sql)
{
    long long v = -1;
    if (b->pg) {
        PGconn *c = PQconnectdb(g_pg_base);
        assert_int_equal(PQstatus(c), CONNECTION_OK);
        char sp[128];
        snprintf(sp, sizeof sp, "SET search_path = %s", g_pg_schema);
        PQclear(PQexec(c, sp));
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
            v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        else if (PQresultStatus(r) == PGRES_COMMAND_OK)
            v = 0;
        PQclear(r);
        PQfinish(c);
    } else {
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open(b->url + 7, &db), SQLITE_OK);
        sqlite3_busy_timeout(db, 5000);
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
            int s = sqlite3_step(st);
            if (s == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
            else if (s == SQLITE_DONE)
                v = 0;
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
    }
    return v;
}

/* ---------------------------------------------------------------------------------------------
 * Group set-up
 */
static int setup_sqlite(void **state)
{
    snprintf(g_sqlite.dir, sizeof g_sqlite.dir, "/tmp/sb-store-test-XXXXXX");
    if (!mkdtemp(g_sqlite.dir)) return -1;
    snprintf(g_sqlite.url, sizeof g_sqlite.url, "sqlite:%s/store.db", g_sqlite.dir);
    *state = &g_sqlite;
    return 0;
}

static int teardown_sqlite(void **state)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_sqlite.dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int setup_pg(void **state)
{
    const char *base = getenv("SB_TEST_PG_URL");
    if (!base || !*base) return 0;
    snprintf(g_pg_base, sizeof g_pg_base, "%s", base);
    snprintf(g_pg_schema, sizeof g_pg_schema, "sbtest_%ld_%ld", (long)getpid(), (long)time(NULL));
    PGconn *c = PQconnectdb(base);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "SB_TEST_PG_URL: %s", PQerrorMessage(c));
        PQfinish(c);
        return -1;
    }
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE SCHEMA %s", g_pg_schema);
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    PQfinish(c);
    if (!ok) return -1;
    g_pg.pg = 1;
    snprintf(g_pg.url, sizeof g_pg.url, "%s%coptions=-csearch_path%%3D%s", base,
             strchr(base, '?') ? '&' : '?', g_pg_schema);
    *state = &g_pg;
    return 0;
}

static void quiet_notice(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

static int teardown_pg(void **state)
{
    if (!g_pg.pg) return 0;
    PGconn *c = PQconnectdb(g_pg_base);
    PQsetNoticeProcessor(c, quiet_notice, NULL);
    char sql[128];
    snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", g_pg_schema);
    PQclear(PQexec(c, sql));
    PQfinish(c);
    return 0;
}

#define BACKEND(state)                                                                             \
    const backend *b = *(state);                                                                   \
    if (!b) {                                                                                      \
        skip();                                                                                    \
        return;                                                                                    \
    }

/* ---------------------------------------------------------------------------------------------
 * Tests
 */
static void test_migrations(void **state)
{
    BACKEND(state);
    for (int round = 0; round < 3; round++) {
        sb_store *st = open_ok(b);
        int64_t v = 0;
        assert_int_equal(sb_store_schema_version(st, &v), 0);
        assert_int_equal(v, 1);
        assert_string_equal(sb_store_backend(st), b->pg ? "postgresql" : "sqlite");
        assert_int_equal(sb_store_ping(st), 0);
        sb_store_close(st);
        assert_int_equal(raw_sql(b, "SELECT COUNT(*) FROM schema_migrations"), 1);
    }
    if (!b->pg) assert_int_equal(raw_sql(b, "PRAGMA journal_mode"), 0); /* text "wal" → 0 */
    /* A database written by a newer binary is refused, not downgraded. */
    assert_int_equal(raw_sql(b, "INSERT INTO schema_migrations (version, name, applied_at)"
                                " VALUES (999, 'future', 0)"),
                     0);
    sb_store *st = NULL;
    char err[256] = "";
    assert_int_equal(sb_store_open(&st, b->url, NULL, err, sizeof err), SB_STORE_ESCHEMA);
    assert_null(st);
    assert_non_null(strstr(err, "newer"));
    assert_int_equal(raw_sql(b, "DELETE FROM schema_migrations WHERE version = 999"), 0);
    sb_store_close(open_ok(b));
}

static void test_put_get_delete(void **state)
{
    BACKEND(state);
    sb_store *st = open_ok(b);
    sb_store_rec r;
    int64_t v = 0;
    assert_int_equal(sb_store_get(st, "region", "fp1", &r), SB_STORE_NOTFOUND);
    assert_null(r.value);
    assert_int_equal(sb_store_put(st, "region", "fp1", "{\"r\":\"eu\"}", 10, 0, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(sb_store_get(st, "region", "fp1", &r), 0);
    assert_int_equal(r.len, 10);
    assert_string_equal((char *)r.value, "{\"r\":\"eu\"}");
    assert_int_equal(r.version, 1);
    assert_int_equal(r.expires_at_ms, 0);
    sb_store_rec_free(&r);
    assert_int_equal(sb_store_put(st, "region", "fp1", "{\"r\":\"us\"}", 10, 0, &v), 0);
    assert_int_equal(v, 2);
    /* Namespaces are separate. */
    assert_int_equal(sb_store_get(st, "idem", "fp1", &r), SB_STORE_NOTFOUND);
    assert_int_equal(sb_store_put(st, "idem", "fp1", "x", 1, 0, &v), 0);
    assert_int_equal(v, 1);
    /* Binary values with NULs survive. */
    const unsigned char bin[] = {0, 1, 2, 0xff, 0, 0x80};
    assert_int_equal(sb_store_put(st, "sealed_cred", "k", bin, sizeof bin, 0, NULL), 0);
    assert_int_equal(sb_store_get(st, "sealed_cred", "k", &r), 0);
    assert_int_equal(r.len, sizeof bin);
    assert_memory_equal(r.value, bin, sizeof bin);
    sb_store_rec_free(&r);
    /* UTF-8 key. */
    assert_int_equal(sb_store_put(st, "region", "clé-✓", "1", 1, 0, NULL), 0);
    assert_int_equal(sb_store_get(st, "region", "clé-✓", &r), 0);
    sb_store_rec_free(&r);

    assert_int_equal(sb_store_delete(st, "region", "fp1", 1), SB_STORE_CONFLICT);
    assert_int_equal(sb_store_delete(st, "region", "fp1", 2), 0);
    assert_int_equal(sb_store_delete(st, "region", "fp1", 0), SB_STORE_NOTFOUND);
    assert_int_equal(sb_store_get(st, "region", "fp1", &r), SB_STORE_NOTFOUND);
    assert_int_equal(sb_store_get(st, "idem", "fp1", &r), 0);
    sb_store_rec_free(&r);
    assert_int_equal(sb_store_delete(st, "idem", "fp1", 0), 0);

    /* Take: exactly once. */
    assert_int_equal(sb_store_put(st, "oauth_code", "c1", "grant", 5, 0, NULL), 0);
    assert_int_equal(sb_store_take(st, "oauth_code", "c1", &r), 0);
    assert_string_equal((char *)r.value, "grant");
    sb_store_rec_free(&r);
    assert_int_equal(sb_store_take(st, "oauth_code", "c1", &r), SB_STORE_NOTFOUND);
    sb_store_close(st);

    /* Durable across reopen. */
    st = open_ok(b);
    assert_int_equal(sb_store_get(st, "sealed_cred", "k", &r), 0);
    assert_memory_equal(r.value, bin, sizeof bin);
    sb_store_rec_free(&r);
    sb_store_close(st);
}

static void test_expiry_sweep(void **state)
{
    BACKEND(state);
    sb_store *st = open_ok(b);
    int64_t now = sb_store_now_ms();
    sb_store_rec r;
    uint64_t n = 0;
    assert_int_equal(sb_store_sweep(st, 0, &n), 0); /* clean slate for the count below */
    assert_int_equal(sb_store_put(st, "ended_session", "old", "1", 1, now - 1, NULL), 0);
    assert_int_equal(sb_store_get(st, "ended_session", "old", &r), SB_STORE_NOTFOUND);
    assert_int_equal(sb_store_take(st, "ended_session", "old", &r), SB_STORE_NOTFOUND);
    assert_int_equal(sb_store_put(st, "ended_session", "soon", "1", 1, now + 300, NULL), 0);
    assert_int_equal(sb_store_put(st, "ended_session", "later", "1", 1, now + 3600000, NULL), 0);
    assert_int_equal(sb_store_put(st, "ended_session", "never", "1", 1, 0, NULL), 0);
    assert_int_equal(sb_store_get(st, "ended_session", "soon", &r), 0);
    assert_int_equal(r.expires_at_ms, now + 300);
    sb_store_rec_free(&r);
    assert_int_equal(sb_store_sweep(st, 0, &n), 0);
    assert_int_equal(n, 1); /* "old" */
    sleep_ms(400);
    assert_int_equal(sb_store_get(st, "ended_session", "soon", &r), SB_STORE_NOTFOUND);
    assert_int_equal(sb_store_sweep(st, 0, &n), 0);
    assert_int_equal(n, 1); /* "soon" */
    assert_int_equal(sb_store_sweep(st, now + 7200000, &n), 0);
    assert_int_equal(n, 1); /* "later" */
    assert_int_equal(sb_store_get(st, "ended_session", "never", &r), 0);
    sb_store_rec_free(&r);
    assert_int_equal(sb_store_delete(st, "ended_session", "never", 0), 0);
    assert_int_equal(sb_store_sweep(NULL, 0, &n), SB_STORE_EINVAL);
    assert_int_equal(sb_store_sweep(st, -5, &n), SB_STORE_EINVAL);
    /* Sweeping an empty store. */
    assert_int_equal(sb_store_sweep(st, 0, NULL), 0);
    sb_store_close(st);
}

static void test_claim(void **state)
{
    BACKEND(state);
    sb_store *st = open_ok(b);
    int created = -1;
    int64_t v = 0, now = sb_store_now_ms();
    sb_store_rec ex;
    assert_int_equal(sb_store_claim(st, "idem", "req-1", "A", 1, now + 60000, &created, &v, &ex),
                     0);
    assert_int_equal(created, 1);
    assert_int_equal(v, 1);
    assert_null(ex.value);
    assert_int_equal(sb_store_claim(st, "idem", "req-1", "B", 1, now + 60000, &created, &v, &ex),
                     0);
    assert_int_equal(created, 0);
    assert_string_equal((char *)ex.value, "A");
    assert_int_equal(ex.version, 1);
    sb_store_rec_free(&ex);
    /* An expired claim may be taken over; its version keeps counting. */
    assert_int_equal(sb_store_put(st, "idem", "req-2", "old", 3, now - 10, NULL), 0);
    assert_int_equal(sb_store_claim(st, "idem", "req-2", "new", 3, 0, &created, &v, NULL), 0);
    assert_int_equal(created, 1);
    assert_int_equal(v, 2);
    assert_int_equal(sb_store_claim(st, "idem", "req-2", "new", 3, 0, &created, NULL, NULL), 0);
    assert_int_equal(created, 0);
    assert_int_equal(sb_store_claim(st, "idem", "req-2", "x", 1, 0, NULL, NULL, NULL),
                     SB_STORE_EINVAL);
    sb_store_close(st);
}

/* Two (or more) replicas racing: every thread has its own store handle (own connection) and one
 * handle is shared by two threads; each key must be created exactly once. */
#define RACE_THREADS 6
#define RACE_KEYS 150

typedef struct {
    sb_store *st;
    int id;
    int wins[RACE_KEYS];
    int errors;
    pthread_barrier_t *bar;
} racer;

static void *race_main(void *arg)
{
    racer *r = arg;
    pthread_barrier_wait(r->bar);
    for (int k = 0; k < RACE_KEYS; k++) {
        char key[32], val[32];
        snprintf(key, sizeof key, "send-%d", k);
        snprintf(val, sizeof val, "{\"by\":%d}", r->id);
        int created = 0;
        sb_store_rec ex;
        int rc = sb_store_claim(r->st, "idem", key, val, strlen(val), 0, &created, NULL, &ex);
        if (rc) {
            r->errors++;
            continue;
        }
        r->wins[k] = created;
        if (!created && !ex.value) r->errors++;
        sb_store_rec_free(&ex);
    }
    return NULL;
}

static void test_claim_race(void **state)
{
    BACKEND(state);
    sb_store *shared = open_ok(b);
    sb_store *own[RACE_THREADS];
    racer *rs = calloc(RACE_THREADS, sizeof *rs);
    assert_non_null(rs);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, RACE_THREADS);
    pthread_t th[RACE_THREADS];
    for (int i = 0; i < RACE_THREADS; i++) {
        own[i] = i < 2 ? NULL : open_ok(b);
        rs[i].st = i < 2 ? shared : own[i];
        rs[i].id = i;
        rs[i].bar = &bar;
        assert_int_equal(pthread_create(&th[i], NULL, race_main, &rs[i]), 0);
    }
    for (int i = 0; i < RACE_THREADS; i++)
        pthread_join(th[i], NULL);
    sb_store_rec r;
    for (int k = 0; k < RACE_KEYS; k++) {
        int wins = 0, winner = -1;
        for (int i = 0; i < RACE_THREADS; i++)
            if (rs[i].wins[k]) {
                wins++;
                winner = i;
            }
        assert_int_equal(wins, 1);
        char key[32], want[32];
        snprintf(key, sizeof key, "send-%d", k);
        snprintf(want, sizeof want, "{\"by\":%d}", winner);
        assert_int_equal(sb_store_get(shared, "idem", key, &r), 0);
        assert_string_equal((char *)r.value, want);
        assert_int_equal(r.version, 1);
        sb_store_rec_free(&r);
        assert_int_equal(sb_store_delete(shared, "idem", key, 0), 0);
    }
    for (int i = 0; i < RACE_THREADS; i++) {
        assert_int_equal(rs[i].errors, 0);
        sb_store_close(own[i]);
    }
    pthread_barrier_destroy(&bar);
    free(rs);
    sb_store_close(shared);
}

static void test_cas(void **state)
{
    BACKEND(state);
    sb_store *st = open_ok(b);
    int64_t v = 0;
    assert_int_equal(sb_store_cas(st, "oauth_family", "f1", 0, "g0", 2, 0, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(sb_store_cas(st, "oauth_family", "f1", 0, "g0", 2, 0, &v), SB_STORE_CONFLICT);
    assert_int_equal(sb_store_cas(st, "oauth_family", "f1", 1, "g1", 2, 0, &v), 0);
    assert_int_equal(v, 2);
    /* A stale writer (still at version 1) loses. */
    assert_int_equal(sb_store_cas(st, "oauth_family", "f1", 1, "gX", 2, 0, &v), SB_STORE_CONFLICT);
    assert_int_equal(sb_store_cas(st, "oauth_family", "f1", 3, "gX", 2, 0, &v), SB_STORE_CONFLICT);
    sb_store_rec r;
    assert_int_equal(sb_store_get(st, "oauth_family", "f1", &r), 0);
    assert_string_equal((char *)r.value, "g1");
    assert_int_equal(r.version, 2);
    sb_store_rec_free(&r);
    assert_int_equal(sb_store_cas(st, "oauth_family", "nope", 1, "x", 1, 0, &v), SB_STORE_NOTFOUND);
    assert_int_equal(sb_store_cas(st, "oauth_family", "f1", -1, "x", 1, 0, &v), SB_STORE_EINVAL);
    /* An expired record cannot be swapped, only re-created. */
    assert_int_equal(sb_store_put(st, "oauth_family", "f2", "a", 1, sb_store_now_ms() - 1, &v), 0);
    assert_int_equal(sb_store_cas(st, "oauth_family", "f2", v, "b", 1, 0, NULL), SB_STORE_NOTFOUND);
    assert_int_equal(sb_store_cas(st, "oauth_family", "f2", 0, "b", 1, 0, &v), 0);
    assert_int_equal(sb_store_delete(st, "oauth_family", "f1", 0), 0);
    assert_int_equal(sb_store_delete(st, "oauth_family", "f2", 0), 0);
    sb_store_close(st);
}

static void test_big_and_empty_values(void **state)
{
    BACKEND(state);
    sb_store *st = open_ok(b);
    size_t n = SB_STORE_MAX_VALUE;
    unsigned char *big = malloc(n + 1);
    assert_non_null(big);
    for (size_t i = 0; i <= n; i++)
        big[i] = (unsigned char)(i * 131 + 17);
    assert_int_equal(sb_store_put(st, "sealed_cred", "big", big, n, 0, NULL), 0);
    sb_store_rec r;
    assert_int_equal(sb_store_get(st, "sealed_cred", "big", &r), 0);
    assert_int_equal(r.len, n);
    assert_memory_equal(r.value, big, n);
    sb_store_rec_free(&r);
    assert_int_equal(sb_store_put(st, "sealed_cred", "big", big, n + 1, 0, NULL), SB_STORE_EINVAL);
    assert_int_equal(sb_store_put(st, "sealed_cred", "big", big, SIZE_MAX, 0, NULL),
                     SB_STORE_EINVAL);
    free(big);
    /* Empty values, with and without a pointer. */
    assert_int_equal(sb_store_put(st, "sealed_cred", "empty", "", 0, 0, NULL), 0);
    assert_int_equal(sb_store_get(st, "sealed_cred", "empty", &r), 0);
    assert_int_equal(r.len, 0);
    assert_non_null(r.value);
    assert_int_equal(r.value[0], 0);
    sb_store_rec_free(&r);
    assert_int_equal(sb_store_put(st, "sealed_cred", "empty2", NULL, 0, 0, NULL), 0);
    assert_int_equal(sb_store_get(st, "sealed_cred", "empty2", &r), 0);
    assert_int_equal(r.len, 0);
    sb_store_rec_free(&r);
    assert_int_equal(sb_store_put(st, "sealed_cred", "nullptr", NULL, 5, 0, NULL), SB_STORE_EINVAL);
    sb_store_delete(st, "sealed_cred", "big", 0);
    sb_store_delete(st, "sealed_cred", "empty", 0);
    sb_store_delete(st, "sealed_cred", "empty2", 0);
    sb_store_close(st);
}

static void test_bad_input(void **state)
{
    BACKEND(state);
    sb_store *st = open_ok(b);
    sb_store_rec r;
    int created;
    char longkey[SB_STORE_MAX_KEY + 2];
    memset(longkey, 'k', sizeof longkey);
    longkey[SB_STORE_MAX_KEY + 1] = '\0';
    const char *bad_keys[] = {NULL,           "",          longkey, "\xff", "a\xc3", "\xc0\x80",
                              "\xed\xa0\x80", "tab\there", "nl\n",  "\x7f"};
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        assert_int_equal(sb_store_put(st, "idem", bad_keys[i], "v", 1, 0, NULL), SB_STORE_EINVAL);
        assert_int_equal(sb_store_get(st, "idem", bad_keys[i], &r), SB_STORE_EINVAL);
        assert_int_equal(sb_store_delete(st, "idem", bad_keys[i], 0), SB_STORE_EINVAL);
        assert_int_equal(sb_store_claim(st, "idem", bad_keys[i], "v", 1, 0, &created, NULL, NULL),
                         SB_STORE_EINVAL);
        assert_int_equal(sb_store_take(st, "idem", bad_keys[i], &r), SB_STORE_EINVAL);
        assert_int_equal(sb_store_cas(st, "idem", bad_keys[i], 1, "v", 1, 0, NULL),
                         SB_STORE_EINVAL);
    }
    longkey[SB_STORE_MAX_KEY] = '\0'; /* exactly the maximum */
    assert_int_equal(sb_store_put(st, "idem", longkey, "v", 1, 0, NULL), 0);
    assert_int_equal(sb_store_delete(st, "idem", longkey, 0), 0);
    const char *bad_ns[] = {NULL,
                            "",
                            "Idem",
                            "id-em",
                            "idem ",
                            "a234567890123456789012345678901"
                            "2345678901234567890123456789012345"};
    for (size_t i = 0; i < sizeof bad_ns / sizeof bad_ns[0]; i++)
        assert_int_equal(sb_store_put(st, bad_ns[i], "k", "v", 1, 0, NULL), SB_STORE_EINVAL);
    assert_int_equal(sb_store_put(st, "idem", "k", "v", 1, -1, NULL), SB_STORE_EINVAL);
    assert_int_equal(sb_store_put(NULL, "idem", "k", "v", 1, 0, NULL), SB_STORE_EINVAL);
    assert_int_equal(sb_store_get(st, "idem", "k", NULL), SB_STORE_EINVAL);
    assert_int_equal(sb_store_get(NULL, "idem", "k", &r), SB_STORE_EINVAL);
    assert_int_equal(sb_store_ping(NULL), SB_STORE_EINVAL);
    assert_null(sb_store_backend(NULL));
    sb_store_close(NULL);
    sb_store_rec_free(NULL);
    /* SQL injection is just a key. */
    const char *inj = "k'; DROP TABLE sb_kv; --";
    assert_int_equal(sb_store_put(st, "idem", inj, "v", 1, 0, NULL), 0);
    assert_int_equal(sb_store_get(st, "idem", inj, &r), 0);
    sb_store_rec_free(&r);
    assert_int_equal(sb_store_delete(st, "idem", inj, 0), 0);
    assert_int_equal(sb_store_ping(st), 0);
    sb_store_close(st);

    /* Bad URLs. */
    sb_store *s2 = (sb_store *)1;
    char err[256];
    assert_int_equal(sb_store_open(&s2, NULL, NULL, err, sizeof err), SB_STORE_EINVAL);
    assert_null(s2);
    assert_int_equal(sb_store_open(&s2, "", NULL, err, sizeof err), SB_STORE_EINVAL);
    assert_int_equal(sb_store_open(&s2, "sqlite:", NULL, err, sizeof err), SB_STORE_EINVAL);
    assert_int_equal(sb_store_open(&s2, "mysql://x/y", NULL, NULL, 0), SB_STORE_EINVAL);
    assert_int_equal(sb_store_open(NULL, "sqlite:/tmp/x.db", NULL, err, sizeof err),
                     SB_STORE_EINVAL);
    assert_int_equal(sb_store_open(&s2, "sqlite:/nonexistent-dir/x/y.db", NULL, err, sizeof err),
                     SB_STORE_ERR);
    assert_null(s2);
    assert_int_equal(sb_store_open(&s2,
                                   "postgresql://sbtest:hunter2@127.0.0.1:1/none?connect_timeout=2",
                                   NULL, err, sizeof err),
                     SB_STORE_ERR);
    assert_null(s2);
    assert_null(strstr(err, "hunter2"));
    char *huge = malloc(SB_STORE_MAX_URL + 10);
    assert_non_null(huge);
    memset(huge, 'a', SB_STORE_MAX_URL + 9);
    huge[SB_STORE_MAX_URL + 9] = '\0';
    assert_int_equal(sb_store_open(&s2, huge, NULL, err, sizeof err), SB_STORE_EINVAL);
    free(huge);
}

/* Crash safety (SQLite): a child holding the database mid-transaction, and a child writing as
 * fast as it can, are killed with SIGKILL; the database reopens intact with every acknowledged
 * write and nothing of the unfinished transaction. */
/* PostgreSQL: a client killed mid-transaction leaves nothing of it behind. */
static void crash_pg(const backend *b)
{
    sb_store *s = open_ok(b);
    assert_int_equal(sb_store_put(s, "crash", "kept", "v1", 2, 0, NULL), 0);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        PGconn *c = PQconnectdb(b->url);
        if (PQstatus(c) != CONNECTION_OK) _exit(2);
        PQclear(PQexec(c, "BEGIN"));
        PQclear(PQexec(c, "UPDATE sb_kv SET value = '\\x00' WHERE ns = 'crash'"));
        PQclear(PQexec(c, "INSERT INTO sb_kv VALUES ('crash', 'u0', '\\x00', NULL, 1, 0)"));
        if (write(fds[1], "M", 1) != 1) _exit(4);
        for (;;)
            pause();
    }
    close(fds[1]);
    char c;
    assert_int_equal(read(fds[0], &c, 1), 1);
    assert_int_equal(c, 'M');
    close(fds[0]);
    assert_int_equal(kill(pid, SIGKILL), 0);
    waitpid(pid, NULL, 0);
    sb_store_close(s);
    s = open_ok(b);
    sb_store_rec r;
    /* The server notices the dead client and rolls back; the row lock it held is released. */
    assert_int_equal(sb_store_put(s, "crash", "after", "ok", 2, 0, NULL), 0);
    assert_int_equal(sb_store_get(s, "crash", "kept", &r), 0);
    assert_string_equal((char *)r.value, "v1");
    sb_store_rec_free(&r);
    assert_int_equal(sb_store_get(s, "crash", "u0", &r), SB_STORE_NOTFOUND);
    assert_int_equal(sb_store_put(s, "crash", "kept", "v2", 2, 0, NULL), 0); /* lock released */
    sb_store_close(s);
}

static void test_crash_safety(void **state)
{
    BACKEND(state);
    if (b->pg) {
        crash_pg(b);
        return;
    }
    for (int mode = 0; mode < 2; mode++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            sb_store *st = NULL;
            if (sb_store_open(&st, b->url, NULL, NULL, 0)) _exit(2);
            char key[32];
            for (int i = 0; i < 100; i++) {
                snprintf(key, sizeof key, "c%d-%d", mode, i);
                if (sb_store_put(st, "crash", key, key, strlen(key), 0, NULL)) _exit(3);
                if (write(fds[1], "+", 1) != 1) _exit(4);
            }
            if (mode == 0) {
                /* Hold an open write transaction with uncommitted rows, then wait to be killed. */
                sqlite3 *db = NULL;
                if (sqlite3_open(b->url + 7, &db) != SQLITE_OK) _exit(5);
                sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
                for (int i = 0; i < 2000; i++) {
                    char sql[200];
                    snprintf(
                        sql, sizeof sql,
                        "INSERT INTO sb_kv VALUES ('crash', 'u%d', zeroblob(4000), NULL, 1, 0)", i);
                    sqlite3_exec(db, sql, NULL, NULL, NULL);
                }
                sqlite3_exec(db, "UPDATE sb_kv SET value = x'00' WHERE ns = 'crash'", NULL, NULL,
                             NULL);
                if (write(fds[1], "M", 1) != 1) _exit(4);
            } else {
                for (int i = 100;; i++) {
                    snprintf(key, sizeof key, "c%d-%d", mode, i);
                    if (sb_store_put(st, "crash", key, key, strlen(key), 0, NULL)) _exit(3);
                    if (write(fds[1], "+", 1) != 1) _exit(4);
                }
            }
            for (;;)
                pause();
        }
        close(fds[1]);
        int acked = 0;
        char c;
        for (;;) {
            ssize_t n = read(fds[0], &c, 1);
            if (n <= 0) break;
            if (c == '+') acked++;
            if (c == 'M' || (mode == 1 && acked >= 400)) break;
        }
        assert_int_equal(kill(pid, SIGKILL), 0);
        int st_ = 0;
        waitpid(pid, &st_, 0);
        assert_true(WIFSIGNALED(st_));
        /* Count what the pipe still held (acknowledged before the kill). */
        while (read(fds[0], &c, 1) == 1)
            if (c == '+') acked++;
        close(fds[0]);
        assert_true(acked >= 100);

        assert_int_equal(raw_sql(b, "PRAGMA quick_check"), 0); /* "ok" → 0 */
        sb_store *s = open_ok(b);
        sb_store_rec r;
        for (int i = 0; i < acked; i++) {
            char key[32];
            snprintf(key, sizeof key, "c%d-%d", mode, i);
            assert_int_equal(sb_store_get(s, "crash", key, &r), 0);
            assert_string_equal((char *)r.value, key);
            sb_store_rec_free(&r);
        }
        assert_int_equal(sb_store_get(s, "crash", "u0", &r), SB_STORE_NOTFOUND);
        assert_int_equal(sb_store_put(s, "crash", "after", "ok", 2, 0, NULL), 0);
        sb_store_close(s);
    }
    assert_int_equal(raw_sql(b, "SELECT COUNT(*) FROM sb_kv WHERE ns = 'crash' AND key LIKE 'u%'"),
                     0);
}

/* libpq is loaded on demand: a missing library is a clear error naming it and the package, a
 * PostgreSQL URL then fails to open with that message, and the real libpq loads (once, however
 * many threads ask) */
static void *load_thread(void *arg)
{
    char err[256];
    *(int *)arg = sb_store_pg_load(SB_LIBPQ_SONAME, err, sizeof err);
    return NULL;
}

static void test_libpq_on_demand(void **state)
{
    (void)state;
    char err[256] = "";
    assert_int_equal(sb_store_pg_load("libsb-no-such-libpq.so.5", err, sizeof err), SB_STORE_ERR);
    assert_non_null(strstr(err, "cannot load libsb-no-such-libpq.so.5"));
    assert_non_null(strstr(err, "install libpq5"));
    err[0] = 0;
    /* a library without libpq's functions is refused by name, and nothing stays loaded */
    assert_int_equal(sb_store_pg_load("libz.so.1", err, sizeof err), SB_STORE_ERR);
    assert_non_null(strstr(err, "libz.so.1 has no PQclear"));
    pthread_t t[4];
    int rc[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, load_thread, &rc[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(rc[i], 0);
    }
    assert_int_equal(sb_store_pg_load("libsb-no-such-libpq.so.5", err, sizeof err), 0);
}

#define STORE_TESTS                                                                                \
    cmocka_unit_test(test_migrations), cmocka_unit_test(test_put_get_delete),                      \
        cmocka_unit_test(test_expiry_sweep), cmocka_unit_test(test_claim),                         \
        cmocka_unit_test(test_claim_race), cmocka_unit_test(test_cas),                             \
        cmocka_unit_test(test_big_and_empty_values), cmocka_unit_test(test_bad_input),             \
        cmocka_unit_test(test_crash_safety)

int main(void)
{
    const struct CMUnitTest tests[] = {STORE_TESTS};
    const struct CMUnitTest loader[] = {cmocka_unit_test(test_libpq_on_demand)};
    int fails = cmocka_run_group_tests_name("libpq", loader, NULL, NULL);
    fails += cmocka_run_group_tests_name("sqlite", tests, setup_sqlite, teardown_sqlite);
    if (!getenv("SB_TEST_PG_URL") || !*getenv("SB_TEST_PG_URL"))
        printf("postgresql: skipped (SB_TEST_PG_URL is not set)\n");
    fails += cmocka_run_group_tests_name("postgresql", tests, setup_pg, teardown_pg);
    return fails ? 1 : 0;
}
