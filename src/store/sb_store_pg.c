/* sb_store_pg: the PostgreSQL backend (libpq): a bounded pool of connections, each used by one
 * thread at a time; parameters bound in binary, results read in binary. libpq is loaded with
 * dlopen when a PostgreSQL store is opened, so a process on the SQLite store never maps it (nor
 * the Kerberos, LDAP and TLS libraries it brings): docs/store.md. */
#include <dlfcn.h>
#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/sb_store_int.h"

#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25
#define MAX_PARAMS 8
#define MIGRATION_LOCK "SELECT pg_advisory_xact_lock(7306195405312)" /* "sb_store" */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n;
    int acquire_ms;
    PGconn **conns;
    unsigned char *busy;
} pg_be;

/* the libpq functions this backend calls, resolved once from libpq.so.5 (typed by libpq-fe.h) */
#define PQ_FUNCS(X)                                                                                \
    X(PQclear)                                                                                     \
    X(PQcmdTuples)                                                                                 \
    X(PQconnectdbParams)                                                                           \
    X(PQerrorMessage)                                                                              \
    X(PQexec)                                                                                      \
    X(PQexecParams)                                                                                \
    X(PQfinish)                                                                                    \
    X(PQgetisnull)                                                                                 \
    X(PQgetlength)                                                                                 \
    X(PQgetvalue)                                                                                  \
    X(PQnfields)                                                                                   \
    X(PQntuples)                                                                                   \
    X(PQreset)                                                                                     \
    X(PQresultErrorMessage)                                                                        \
    X(PQresultStatus)                                                                              \
    X(PQsetNoticeProcessor)                                                                        \
    X(PQstatus)

static struct {
#define PQ_FIELD(f) __typeof__(f) *f;
    PQ_FUNCS(PQ_FIELD)
#undef PQ_FIELD
} pq;

static pthread_mutex_t pq_mu = PTHREAD_MUTEX_INITIALIZER;
static int pq_loaded;

int sb_store_pg_load(const char *soname, char *err, size_t errlen)
{
    pthread_mutex_lock(&pq_mu);
    if (pq_loaded) {
        pthread_mutex_unlock(&pq_mu);
        return 0;
    }
    /* RTLD_LOCAL: libpq's symbols (and the OpenSSL it links) stay out of the global scope */
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        sb_store_seterr(err, errlen,
                        "store: postgresql: cannot load %s (%s); install libpq5 (Debian, Ubuntu) "
                        "or postgresql-libs to use a PostgreSQL store",
                        soname, why ? why : "not found");
        pthread_mutex_unlock(&pq_mu);
        return SB_STORE_ERR;
    }
    const char *missing = NULL;
#define PQ_LOAD(f)                                                                                 \
    if (!missing) {                                                                                \
        *(void **)&pq.f = dlsym(h, #f);                                                            \
        if (!pq.f) missing = #f;                                                                   \
    }
    PQ_FUNCS(PQ_LOAD)
#undef PQ_LOAD
    if (missing) {
        sb_store_seterr(err, errlen, "store: postgresql: %s has no %s (libpq 10 or later needed)",
                        soname, missing);
        memset(&pq, 0, sizeof pq);
        dlclose(h);
        pthread_mutex_unlock(&pq_mu);
        return SB_STORE_ERR;
    }
    pq_loaded = 1; /* the handle stays open for the life of the process */
    pthread_mutex_unlock(&pq_mu);
    return 0;
}

static void quiet_notice(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

static PGconn *acquire(pg_be *b, int *slot)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += b->acquire_ms / 1000;
    until.tv_nsec += (long)(b->acquire_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&b->mu);
    for (;;) {
        for (int i = 0; i < b->n; i++) {
            if (!b->busy[i]) {
                b->busy[i] = 1;
                pthread_mutex_unlock(&b->mu);
                *slot = i;
                PGconn *c = b->conns[i];
                /* reconnect a broken connection */
                if (pq.PQstatus(c) != CONNECTION_OK) pq.PQreset(c);
                return c;
            }
        }
        if (pthread_cond_timedwait(&b->cv, &b->mu, &until) == ETIMEDOUT) {
            pthread_mutex_unlock(&b->mu);
            return NULL;
        }
    }
}

static void release(pg_be *b, int slot)
{
    pthread_mutex_lock(&b->mu);
    b->busy[slot] = 0;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

static int64_t read_int(const char *v, int len)
{
    const unsigned char *u = (const unsigned char *)v;
    uint64_t x = 0;
    for (int i = 0; i < len; i++)
        x = (x << 8) | u[i];
    if (len == 8) return (int64_t)x;
    if (len == 4) return (int32_t)(uint32_t)x;
    if (len == 2) return (int16_t)(uint16_t)x;
    return 0;
}

static int run(PGconn *c, const char *sql, const sb_sparam *p, int np, const char *cols,
               sb_sres *res)
{
    if (np > MAX_PARAMS) return SB_STORE_EINVAL;
    Oid types[MAX_PARAMS];
    const char *vals[MAX_PARAMS];
    int lens[MAX_PARAMS], fmts[MAX_PARAMS];
    unsigned char ints[MAX_PARAMS][8];
    for (int i = 0; i < np; i++) {
        switch (p[i].t) {
        case SB_SP_NULL:
            types[i] = OID_INT8;
            vals[i] = NULL;
            lens[i] = 0;
            fmts[i] = 1;
            break;
        case SB_SP_I64: {
            uint64_t x = (uint64_t)p[i].i;
            for (int k = 7; k >= 0; k--, x >>= 8)
                ints[i][k] = (unsigned char)(x & 0xff);
            types[i] = OID_INT8;
            vals[i] = (const char *)ints[i];
            lens[i] = 8;
            fmts[i] = 1;
            break;
        }
        case SB_SP_TEXT:
            types[i] = OID_TEXT;
            vals[i] = p[i].p;
            lens[i] = 0;
            fmts[i] = 0;
            break;
        case SB_SP_BLOB:
            types[i] = OID_BYTEA;
            vals[i] = p[i].p;
            lens[i] = (int)p[i].n;
            fmts[i] = 1;
            break;
        default:
            return SB_STORE_EINVAL;
        }
    }
    PGresult *r = pq.PQexecParams(c, sql, np, types, vals, lens, fmts, 1);
    ExecStatusType s = pq.PQresultStatus(r);
    int rc = 0;
    if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK) {
        const char *ct = pq.PQcmdTuples(r);
        res->changes = ct && *ct ? strtoll(ct, NULL, 10) : 0;
        if (s == PGRES_TUPLES_OK && pq.PQntuples(r) > 0 && cols && *cols) {
            int ni = 0;
            for (int col = 0; cols[col] && col < pq.PQnfields(r) && !rc; col++) {
                const char *v = pq.PQgetvalue(r, 0, col);
                int len = pq.PQgetisnull(r, 0, col) ? 0 : pq.PQgetlength(r, 0, col);
                if (cols[col] == 'b') {
                    res->blob = malloc((size_t)len + 1);
                    if (!res->blob) {
                        rc = SB_STORE_ERR;
                        break;
                    }
                    if (len) memcpy(res->blob, v, (size_t)len);
                    res->blob[len] = '\0';
                    res->blen = (size_t)len;
                } else if (cols[col] == 'i' && ni < 3) {
                    res->i[ni++] = read_int(v, len);
                }
            }
            if (!rc) res->has_row = 1;
        }
    } else {
        rc = SB_STORE_ERR;
    }
    pq.PQclear(r);
    return rc;
}

static int pg_query(void *be, const char *sql, const sb_sparam *p, int np, const char *cols,
                    sb_sres *res)
{
    pg_be *b = be;
    int slot;
    PGconn *c = acquire(b, &slot);
    if (!c) return SB_STORE_ERR;
    int rc = run(c, sql, p, np, cols, res);
    release(b, slot);
    return rc;
}

static int pg_exec(void *ctx, const char *sql, char *err, size_t errlen)
{
    PGresult *r = pq.PQexec(ctx, sql);
    ExecStatusType s = pq.PQresultStatus(r);
    int ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
    if (!ok) sb_store_seterr(err, errlen, "store: postgresql: %s", pq.PQresultErrorMessage(r));
    pq.PQclear(r);
    return ok ? 0 : -1;
}

static int pg_query_conn(void *ctx, const char *sql, const sb_sparam *p, int np, const char *cols,
                         sb_sres *res)
{
    return run(ctx, sql, p, np, cols, res);
}

static int pg_migrate(void *be, const sb_migration *list, size_t n, int64_t *version, char *err,
                      size_t errlen)
{
    pg_be *b = be;
    int slot;
    PGconn *c = acquire(b, &slot);
    if (!c) return SB_STORE_ERR;
    sb_migrator m = {.ctx = c,
                     .exec = pg_exec,
                     .query = pg_query_conn,
                     .begin_sql = "BEGIN; " MIGRATION_LOCK,
                     .blob_type = "BYTEA"};
    int rc = sb_store_migrate_run(&m, list, n, version, err, errlen);
    release(b, slot);
    return rc;
}

static void pg_close(void *be)
{
    pg_be *b = be;
    if (!b) return;
    for (int i = 0; i < b->n; i++)
        if (b->conns && b->conns[i]) pq.PQfinish(b->conns[i]);
    free(b->conns);
    free(b->busy);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

int sb_store_pg_open(void **be, const char *url, const sb_store_opts *o, char *err, size_t errlen)
{
    *be = NULL;
    if (sb_store_pg_load(SB_LIBPQ_SONAME, err, errlen)) return SB_STORE_ERR;
    pg_be *b = calloc(1, sizeof *b);
    if (!b) return SB_STORE_ERR;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    b->acquire_ms = o->acquire_ms;
    b->conns = calloc((size_t)o->pool_size, sizeof *b->conns);
    b->busy = calloc((size_t)o->pool_size, 1);
    if (!b->conns || !b->busy) {
        pg_close(b);
        return SB_STORE_ERR;
    }
    for (int i = 0; i < o->pool_size; i++) {
        /* bounded waits on a dead network: connect timeout, TCP keepalives and a user timeout,
         * as defaults the URL may override (the URL's own values come later and win) */
        static const char *const kw[] = {"connect_timeout", "keepalives", "keepalives_idle",
                                         "keepalives_interval", "keepalives_count",
                                         "tcp_user_timeout", "dbname", NULL};
        const char *const val[] = {"5", "1", "10", "5", "3", "15000", url, NULL};
        PGconn *c = pq.PQconnectdbParams(kw, val, 1);
        b->conns[i] = c;
        b->n = i + 1;
        if (!c || pq.PQstatus(c) != CONNECTION_OK) {
            /* libpq's message names host and user, never the password. */
            sb_store_seterr(err, errlen, "store: postgresql: %s",
                            c ? pq.PQerrorMessage(c) : "out of memory");
            pg_close(b);
            return SB_STORE_ERR;
        }
        pq.PQsetNoticeProcessor(c, quiet_notice, NULL);
        if (pg_exec(c, "SET statement_timeout = 30000", err, errlen)) {
            pg_close(b);
            return SB_STORE_ERR;
        }
    }
    *be = b;
    return 0;
}

const sb_store_ops sb_store_pg_ops = {
    .name = "postgresql", .query = pg_query, .migrate = pg_migrate, .close = pg_close};
