/* sb_store_sqlite: the SQLite backend: one connection in WAL mode, guarded by a mutex, with a
 * cache of prepared statements keyed by their (static) SQL text. */
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "store/sb_store_int.h"

#define STMT_CACHE 16

typedef struct {
    sqlite3 *db;
    pthread_mutex_t mu;
    struct {
        const char *sql; /* the caller's pointer (static strings) */
        sqlite3_stmt *stmt;
    } cache[STMT_CACHE];
} sq_be;

/* $N → ?N (SQLite reads "$1" as a named parameter; ?N keeps the numbering explicit). */
static char *rewrite_params(const char *sql)
{
    char *s = strdup(sql);
    if (!s) return NULL;
    for (char *p = s; *p; p++)
        if (*p == '$' && p[1] >= '0' && p[1] <= '9') *p = '?';
    return s;
}

static sqlite3_stmt *get_stmt(sq_be *b, const char *sql, int *cached)
{
    *cached = 0;
    for (int i = 0; i < STMT_CACHE; i++) {
        if (b->cache[i].sql == sql) {
            *cached = 1;
            return b->cache[i].stmt;
        }
    }
    char *s = rewrite_params(sql);
    if (!s) return NULL;
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(b->db, s, -1, &stmt, NULL);
    free(s);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(stmt);
        return NULL;
    }
    for (int i = 0; i < STMT_CACHE; i++) {
        if (!b->cache[i].sql) {
            b->cache[i].sql = sql;
            b->cache[i].stmt = stmt;
            *cached = 1;
            break;
        }
    }
    return stmt;
}

static int bind_all(sqlite3_stmt *stmt, const sb_sparam *p, int np)
{
    for (int i = 0; i < np; i++) {
        int rc;
        switch (p[i].t) {
        case SB_SP_NULL:
            rc = sqlite3_bind_null(stmt, i + 1);
            break;
        case SB_SP_I64:
            rc = sqlite3_bind_int64(stmt, i + 1, p[i].i);
            break;
        case SB_SP_TEXT:
            rc = sqlite3_bind_text(stmt, i + 1, p[i].p, -1, SQLITE_STATIC);
            break;
        case SB_SP_BLOB:
            rc = sqlite3_bind_blob64(stmt, i + 1, p[i].p, p[i].n, SQLITE_STATIC);
            break;
        default:
            rc = SQLITE_MISUSE;
        }
        if (rc != SQLITE_OK) return -1;
    }
    return 0;
}

static int read_row(sqlite3_stmt *stmt, const char *cols, sb_sres *res)
{
    int ni = 0;
    for (int c = 0; cols && cols[c]; c++) {
        if (cols[c] == 'b') {
            const void *v = sqlite3_column_blob(stmt, c);
            size_t n = (size_t)sqlite3_column_bytes(stmt, c);
            res->blob = malloc(n + 1);
            if (!res->blob) return -1;
            if (n) memcpy(res->blob, v, n);
            res->blob[n] = '\0';
            res->blen = n;
        } else if (cols[c] == 'i' && ni < 3) {
            res->i[ni++] = sqlite3_column_int64(stmt, c);
        }
    }
    res->has_row = 1;
    return 0;
}

/* Run one statement under the caller's lock. */
static int run_locked(sq_be *b, const char *sql, const sb_sparam *p, int np, const char *cols,
                      sb_sres *res)
{
    int cached;
    sqlite3_stmt *stmt = get_stmt(b, sql, &cached);
    if (!stmt) return SB_STORE_ERR;
    int rc = bind_all(stmt, p, np) ? SB_STORE_ERR : 0;
    if (!rc) {
        int s = sqlite3_step(stmt);
        if (s == SQLITE_ROW) {
            if (cols && *cols && read_row(stmt, cols, res)) rc = SB_STORE_ERR;
            /* Finish the statement: a RETURNING or write statement commits at SQLITE_DONE. */
            while (!rc && (s = sqlite3_step(stmt)) == SQLITE_ROW) {
            }
        }
        if (!rc && s != SQLITE_DONE) rc = SB_STORE_ERR;
        if (!rc) res->changes = sqlite3_changes64(b->db);
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (!cached) sqlite3_finalize(stmt);
    return rc;
}

static int sq_query(void *be, const char *sql, const sb_sparam *p, int np, const char *cols,
                    sb_sres *res)
{
    sq_be *b = be;
    pthread_mutex_lock(&b->mu);
    int rc = run_locked(b, sql, p, np, cols, res);
    pthread_mutex_unlock(&b->mu);
    return rc;
}

static int sq_exec(void *ctx, const char *sql, char *err, size_t errlen)
{
    sq_be *b = ctx;
    char *msg = NULL;
    if (sqlite3_exec(b->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        sb_store_seterr(err, errlen, "store: sqlite: %s", msg ? msg : "error");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int sq_query_unlocked(void *ctx, const char *sql, const sb_sparam *p, int np,
                             const char *cols, sb_sres *res)
{
    /* Migration statements are used once: do not cache them (their text is not static). */
    sq_be *b = ctx;
    char *s = rewrite_params(sql);
    if (!s) return SB_STORE_ERR;
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(b->db, s, -1, &stmt, NULL) == SQLITE_OK ? 0 : SB_STORE_ERR;
    free(s);
    if (!rc) rc = bind_all(stmt, p, np) ? SB_STORE_ERR : 0;
    if (!rc) {
        int st = sqlite3_step(stmt);
        if (st == SQLITE_ROW && cols && *cols && read_row(stmt, cols, res))
            rc = SB_STORE_ERR;
        else if (st != SQLITE_ROW && st != SQLITE_DONE)
            rc = SB_STORE_ERR;
    }
    sqlite3_finalize(stmt);
    return rc;
}

static int sq_migrate(void *be, const sb_migration *list, size_t n, int64_t *version, char *err,
                      size_t errlen)
{
    sq_be *b = be;
    sb_migrator m = {.ctx = b,
                     .exec = sq_exec,
                     .query = sq_query_unlocked,
                     .begin_sql = "BEGIN IMMEDIATE",
                     .blob_type = "BLOB"};
    pthread_mutex_lock(&b->mu);
    int rc = sb_store_migrate_run(&m, list, n, version, err, errlen);
    pthread_mutex_unlock(&b->mu);
    return rc;
}

static void sq_close(void *be)
{
    sq_be *b = be;
    if (!b) return;
    for (int i = 0; i < STMT_CACHE; i++)
        sqlite3_finalize(b->cache[i].stmt);
    sqlite3_close_v2(b->db);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

int sb_store_sqlite_open(void **be, const char *path, const sb_store_opts *o, char *err,
                         size_t errlen)
{
    *be = NULL;
    sq_be *b = calloc(1, sizeof *b);
    if (!b) return SB_STORE_ERR;
    pthread_mutex_init(&b->mu, NULL);
    int rc = sqlite3_open_v2(path, &b->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                                 SQLITE_OPEN_EXRESCODE,
                             NULL);
    if (rc != SQLITE_OK) {
        sb_store_seterr(err, errlen, "store: sqlite: cannot open %s: %s", path,
                        b->db ? sqlite3_errmsg(b->db) : sqlite3_errstr(rc));
        sq_close(b);
        return SB_STORE_ERR;
    }
    sqlite3_busy_timeout(b->db, o->busy_timeout_ms);
    sqlite3_limit(b->db, SQLITE_LIMIT_LENGTH, SB_STORE_MAX_VALUE + 4096);
    /* journal_mode answers with a row: read it to be sure WAL took (not on :memory:). */
    sqlite3_stmt *stmt = NULL;
    const char *mode = NULL;
    if (sqlite3_prepare_v2(b->db, "PRAGMA journal_mode=WAL", -1, &stmt, NULL) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW)
        mode = (const char *)sqlite3_column_text(stmt, 0);
    int wal_ok = mode && (strcmp(mode, "wal") == 0 || strcmp(mode, "memory") == 0);
    sqlite3_finalize(stmt);
    if (!wal_ok) {
        sb_store_seterr(err, errlen, "store: sqlite: cannot enable WAL on %s: %s", path,
                        sqlite3_errmsg(b->db));
        sq_close(b);
        return SB_STORE_ERR;
    }
    if (sq_exec(b, "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON", err, errlen)) {
        sq_close(b);
        return SB_STORE_ERR;
    }
    *be = b;
    return 0;
}

const sb_store_ops sb_store_sqlite_ops = {
    .name = "sqlite", .query = sq_query, .migrate = sq_migrate, .close = sq_close};
