/* sb_store: argument checks, the SQL of every operation and the migrations, shared by both
 * backends (sb_store_sqlite.c, sb_store_pg.c). */
#include "store/sb_store.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/sb_store_int.h"

struct sb_store {
    const sb_store_ops *ops;
    void *be;
    int64_t schema_version;
};

/* ---------------------------------------------------------------------------------------------
 * Migrations: append only; never edit one that has shipped.
 */
static const sb_migration k_migrations[] = {
    {1, "kv",
     "CREATE TABLE sb_kv ("
     " ns TEXT NOT NULL,"
     " key TEXT NOT NULL,"
     " value {BLOB} NOT NULL,"
     " expires_at BIGINT,"
     " version BIGINT NOT NULL,"
     " updated_at BIGINT NOT NULL,"
     " PRIMARY KEY (ns, key));"
     "CREATE INDEX sb_kv_expires ON sb_kv (expires_at) WHERE expires_at IS NOT NULL"},
};

/* ---------------------------------------------------------------------------------------------
 * SQL ($1.. parameters; "excluded" and RETURNING work on SQLite >= 3.35 and PostgreSQL >= 9.5/
 * all supported versions).
 */
#define LIVE "(expires_at IS NULL OR expires_at > $3)"

static const char k_sql_get[] =
    "SELECT value, expires_at, version FROM sb_kv WHERE ns = $1 AND key = $2 AND " LIVE;

static const char k_sql_put[] =
    "INSERT INTO sb_kv (ns, key, value, expires_at, version, updated_at)"
    " VALUES ($1, $2, $3, $4, 1, $5)"
    " ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value,"
    " expires_at = excluded.expires_at, version = sb_kv.version + 1,"
    " updated_at = excluded.updated_at"
    " RETURNING version";

/* Insert, or replace only an expired record: no row returned = a live record exists. */
static const char k_sql_claim[] =
    "INSERT INTO sb_kv (ns, key, value, expires_at, version, updated_at)"
    " VALUES ($1, $2, $3, $4, 1, $5)"
    " ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value,"
    " expires_at = excluded.expires_at, version = sb_kv.version + 1,"
    " updated_at = excluded.updated_at"
    " WHERE sb_kv.expires_at IS NOT NULL AND sb_kv.expires_at <= $5"
    " RETURNING version";

static const char k_sql_cas[] =
    "UPDATE sb_kv SET value = $4, expires_at = $5, version = version + 1, updated_at = $3"
    " WHERE ns = $1 AND key = $2 AND version = $6 AND " LIVE " RETURNING version";

static const char k_sql_version[] =
    "SELECT version FROM sb_kv WHERE ns = $1 AND key = $2 AND " LIVE;

static const char k_sql_delete_any[] =
    "DELETE FROM sb_kv WHERE ns = $1 AND key = $2 RETURNING version";

static const char k_sql_delete_ver[] =
    "DELETE FROM sb_kv WHERE ns = $1 AND key = $2 AND version = $3 RETURNING version";

static const char k_sql_exists[] = "SELECT version FROM sb_kv WHERE ns = $1 AND key = $2";

static const char k_sql_take[] = "DELETE FROM sb_kv WHERE ns = $1 AND key = $2 AND " LIVE
                                 " RETURNING value, expires_at, version";

static const char k_sql_sweep[] =
    "DELETE FROM sb_kv WHERE expires_at IS NOT NULL AND expires_at <= $1";

static const char k_sql_ping[] = "SELECT 1";

/* ---------------------------------------------------------------------------------------------
 * Helpers
 */
void sb_store_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

char *sb_store_expand_sql(const char *sql, const char *blob_type)
{
    static const char tok[] = "{BLOB}";
    size_t n = 0, tl = strlen(tok), bl = strlen(blob_type);
    for (const char *p = sql; (p = strstr(p, tok)); p += tl)
        n++;
    size_t len = strlen(sql) + n * bl + 1;
    char *out = malloc(len);
    if (!out) return NULL;
    char *o = out;
    for (const char *p = sql; *p;) {
        if (strncmp(p, tok, tl) == 0) {
            memcpy(o, blob_type, bl);
            o += bl;
            p += tl;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
}

int sb_store_migrate_run(const sb_migrator *m, const sb_migration *list, size_t n, int64_t *version,
                         char *err, size_t errlen)
{
    static const char create[] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                 " version BIGINT PRIMARY KEY, name TEXT NOT NULL,"
                                 " applied_at BIGINT NOT NULL)";
    int64_t known = n ? list[n - 1].version : 0;
    if (m->exec(m->ctx, m->begin_sql, err, errlen)) return SB_STORE_ERR;
    int rc = m->exec(m->ctx, create, err, errlen) ? SB_STORE_ERR : 0;
    sb_sres res = {0};
    if (!rc) {
        rc = m->query(m->ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", NULL, 0,
                      "i", &res);
        if (rc) sb_store_seterr(err, errlen, "store: cannot read schema_migrations");
    }
    int64_t cur = res.i[0];
    if (!rc && cur > known) {
        sb_store_seterr(err, errlen,
                        "store: database schema version %lld is newer than this binary's %lld",
                        (long long)cur, (long long)known);
        rc = SB_STORE_ESCHEMA;
    }
    for (size_t i = 0; !rc && i < n; i++) {
        if (list[i].version <= cur) continue;
        char *sql = sb_store_expand_sql(list[i].sql, m->blob_type);
        if (!sql || m->exec(m->ctx, sql, err, errlen)) {
            rc = SB_STORE_ERR;
        } else {
            sb_sparam p[] = {{.t = SB_SP_I64, .i = list[i].version},
                             {.t = SB_SP_TEXT, .p = list[i].name},
                             {.t = SB_SP_I64, .i = sb_store_now_ms()}};
            memset(&res, 0, sizeof res);
            rc = m->query(m->ctx,
                          "INSERT INTO schema_migrations (version, name, applied_at)"
                          " VALUES ($1, $2, $3)",
                          p, 3, "", &res);
            if (rc)
                sb_store_seterr(err, errlen, "store: cannot record migration %lld",
                                (long long)list[i].version);
            else
                cur = list[i].version;
        }
        free(sql);
    }
    if (rc) {
        m->exec(m->ctx, "ROLLBACK", NULL, 0);
        return rc;
    }
    if (m->exec(m->ctx, "COMMIT", err, errlen)) return SB_STORE_ERR;
    *version = cur;
    return 0;
}

int64_t sb_store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sb_store_valid_ns(const char *ns)
{
    if (!ns) return 0;
    size_t n = 0;
    for (; ns[n]; n++) {
        char c = ns[n];
        if (n >= SB_STORE_MAX_NS) return 0;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return 0;
    }
    return n > 0;
}

int sb_store_valid_key(const char *key)
{
    if (!key) return 0;
    size_t n = strnlen(key, SB_STORE_MAX_KEY + 1);
    if (n == 0 || n > SB_STORE_MAX_KEY) return 0;
    /* Well-formed UTF-8 without control characters (both backends store it as TEXT). */
    const unsigned char *s = (const unsigned char *)key;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c < 0x20 || c == 0x7f) return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
        if (!len || c > 0xf4 || i + len > n) return 0;
        uint32_t cp = c & (0x7f >> len);
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

static int check_args(const sb_store *st, const char *ns, const char *key)
{
    if (!st || !sb_store_valid_ns(ns) || !sb_store_valid_key(key)) return SB_STORE_EINVAL;
    return 0;
}

static int check_value(const void *value, size_t len, int64_t expires_at_ms)
{
    if (len > SB_STORE_MAX_VALUE || (len && !value) || expires_at_ms < 0) return SB_STORE_EINVAL;
    return 0;
}

static sb_sparam p_text(const char *s)
{
    return (sb_sparam){.t = SB_SP_TEXT, .p = s};
}

static sb_sparam p_i64(int64_t v)
{
    return (sb_sparam){.t = SB_SP_I64, .i = v};
}

static sb_sparam p_exp(int64_t v)
{
    return v ? p_i64(v) : (sb_sparam){.t = SB_SP_NULL};
}

static sb_sparam p_blob(const void *p, size_t n)
{
    static const unsigned char empty[1];
    return (sb_sparam){.t = SB_SP_BLOB, .p = p ? p : empty, .n = n};
}

/* The statement timing observer (sb_store_set_observer). */
static _Atomic(sb_store_observer) g_observer;

void sb_store_set_observer(sb_store_observer fn)
{
    atomic_store(&g_observer, fn);
}

/* The operation a statement belongs to: the observer's label. */
static const char *op_of(const char *sql)
{
    if (sql == k_sql_get) return "get";
    if (sql == k_sql_put) return "put";
    if (sql == k_sql_claim) return "claim";
    if (sql == k_sql_cas || sql == k_sql_version) return "cas";
    if (sql == k_sql_delete_any || sql == k_sql_delete_ver || sql == k_sql_exists) return "delete";
    if (sql == k_sql_take) return "take";
    if (sql == k_sql_sweep) return "sweep";
    if (sql == k_sql_ping) return "ping";
    return "other";
}

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int q(sb_store *st, const char *sql, const sb_sparam *p, int np, const char *cols,
             sb_sres *res)
{
    memset(res, 0, sizeof *res);
    sb_store_observer obs = atomic_load(&g_observer);
    uint64_t t0 = obs ? mono_us() : 0;
    int rc = st->ops->query(st->be, sql, p, np, cols, res);
    if (obs) obs(op_of(sql), mono_us() - t0);
    if (rc) {
        free(res->blob);
        memset(res, 0, sizeof *res);
    }
    return rc;
}

static void res_to_rec(sb_sres *res, sb_store_rec *out)
{
    out->value = res->blob;
    out->len = res->blen;
    out->expires_at_ms = res->i[0];
    out->version = res->i[1];
    res->blob = NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Public API
 */
int sb_store_open(sb_store **out, const char *url, const sb_store_opts *opts, char *err,
                  size_t errlen)
{
    if (out) *out = NULL;
    sb_store_seterr(err, errlen, "%s", "");
    if (!out || !url || !*url || strnlen(url, SB_STORE_MAX_URL + 1) > SB_STORE_MAX_URL) {
        sb_store_seterr(err, errlen, "store: missing or oversized URL");
        return SB_STORE_EINVAL;
    }
    sb_store_opts o = {.busy_timeout_ms = 5000, .pool_size = 4, .acquire_ms = 5000};
    if (opts) {
        if (opts->busy_timeout_ms > 0) o.busy_timeout_ms = opts->busy_timeout_ms;
        if (opts->pool_size > 0) o.pool_size = opts->pool_size > 64 ? 64 : opts->pool_size;
        if (opts->acquire_ms > 0) o.acquire_ms = opts->acquire_ms;
    }
    sb_store *st = calloc(1, sizeof *st);
    if (!st) return SB_STORE_ERR;
    int rc;
    if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0) {
        st->ops = &sb_store_pg_ops;
        rc = sb_store_pg_open(&st->be, url, &o, err, errlen);
    } else {
        const char *path = url;
        if (strncmp(url, "sqlite:", 7) == 0) {
            path = url + 7;
            if (strncmp(path, "//", 2) == 0) path += 2; /* sqlite:///abs/path */
        } else if (strstr(url, "://")) {
            path = "";
        }
        if (!*path) {
            sb_store_seterr(err, errlen,
                            "store: unsupported URL (sqlite:PATH, PATH or postgresql://...)");
            free(st);
            return SB_STORE_EINVAL;
        }
        st->ops = &sb_store_sqlite_ops;
        rc = sb_store_sqlite_open(&st->be, path, &o, err, errlen);
    }
    if (rc) {
        free(st);
        return rc;
    }
    rc = st->ops->migrate(st->be, k_migrations, sizeof k_migrations / sizeof k_migrations[0],
                          &st->schema_version, err, errlen);
    if (rc) {
        st->ops->close(st->be);
        free(st);
        return rc;
    }
    *out = st;
    return 0;
}

void sb_store_close(sb_store *st)
{
    if (!st) return;
    st->ops->close(st->be);
    free(st);
}

const char *sb_store_backend(const sb_store *st)
{
    return st ? st->ops->name : NULL;
}

int sb_store_schema_version(sb_store *st, int64_t *out)
{
    if (!st || !out) return SB_STORE_EINVAL;
    *out = st->schema_version;
    return 0;
}

int sb_store_ping(sb_store *st)
{
    if (!st) return SB_STORE_EINVAL;
    sb_sres res;
    int rc = q(st, k_sql_ping, NULL, 0, "i", &res);
    if (rc) return rc;
    return res.has_row && res.i[0] == 1 ? 0 : SB_STORE_ERR;
}

void sb_store_rec_free(sb_store_rec *rec)
{
    if (!rec) return;
    free(rec->value);
    memset(rec, 0, sizeof *rec);
}

int sb_store_get(sb_store *st, const char *ns, const char *key, sb_store_rec *out)
{
    if (out) memset(out, 0, sizeof *out);
    int rc = check_args(st, ns, key);
    if (rc || !out) return SB_STORE_EINVAL;
    sb_sparam p[] = {p_text(ns), p_text(key), p_i64(sb_store_now_ms())};
    sb_sres res;
    rc = q(st, k_sql_get, p, 3, "bii", &res);
    if (rc) return rc;
    if (!res.has_row) return SB_STORE_NOTFOUND;
    res_to_rec(&res, out);
    return 0;
}

int sb_store_put(sb_store *st, const char *ns, const char *key, const void *value, size_t len,
                 int64_t expires_at_ms, int64_t *version_out)
{
    int rc = check_args(st, ns, key);
    if (rc || (rc = check_value(value, len, expires_at_ms))) return rc;
    sb_sparam p[] = {p_text(ns), p_text(key), p_blob(value, len), p_exp(expires_at_ms),
                     p_i64(sb_store_now_ms())};
    sb_sres res;
    rc = q(st, k_sql_put, p, 5, "i", &res);
    if (rc) return rc;
    if (!res.has_row) return SB_STORE_ERR;
    if (version_out) *version_out = res.i[0];
    return 0;
}

int sb_store_claim(sb_store *st, const char *ns, const char *key, const void *value, size_t len,
                   int64_t expires_at_ms, int *created, int64_t *version_out,
                   sb_store_rec *existing)
{
    if (existing) memset(existing, 0, sizeof *existing);
    int rc = check_args(st, ns, key);
    if (rc || (rc = check_value(value, len, expires_at_ms))) return rc;
    if (!created) return SB_STORE_EINVAL;
    *created = 0;
    /* A live record seen by the insert may be deleted or expire before we read it: retry. */
    for (int attempt = 0; attempt < 8; attempt++) {
        int64_t now = sb_store_now_ms();
        sb_sparam p[] = {p_text(ns), p_text(key), p_blob(value, len), p_exp(expires_at_ms),
                         p_i64(now)};
        sb_sres res;
        rc = q(st, k_sql_claim, p, 5, "i", &res);
        if (rc) return rc;
        if (res.has_row) {
            *created = 1;
            if (version_out) *version_out = res.i[0];
            return 0;
        }
        if (!existing) return 0;
        rc = sb_store_get(st, ns, key, existing);
        if (rc != SB_STORE_NOTFOUND) return rc;
    }
    return SB_STORE_ERR;
}

int sb_store_cas(sb_store *st, const char *ns, const char *key, int64_t expect_version,
                 const void *value, size_t len, int64_t expires_at_ms, int64_t *version_out)
{
    int rc = check_args(st, ns, key);
    if (rc || (rc = check_value(value, len, expires_at_ms))) return rc;
    if (expect_version < 0) return SB_STORE_EINVAL;
    if (expect_version == 0) {
        int created = 0;
        rc = sb_store_claim(st, ns, key, value, len, expires_at_ms, &created, version_out, NULL);
        if (rc) return rc;
        return created ? 0 : SB_STORE_CONFLICT;
    }
    int64_t now = sb_store_now_ms();
    sb_sparam p[] = {p_text(ns),         p_text(key),          p_i64(now),
                     p_blob(value, len), p_exp(expires_at_ms), p_i64(expect_version)};
    sb_sres res;
    rc = q(st, k_sql_cas, p, 6, "i", &res);
    if (rc) return rc;
    if (res.has_row) {
        if (version_out) *version_out = res.i[0];
        return 0;
    }
    sb_sparam p2[] = {p_text(ns), p_text(key), p_i64(now)};
    rc = q(st, k_sql_version, p2, 3, "i", &res);
    if (rc) return rc;
    return res.has_row ? SB_STORE_CONFLICT : SB_STORE_NOTFOUND;
}

int sb_store_delete(sb_store *st, const char *ns, const char *key, int64_t expect_version)
{
    int rc = check_args(st, ns, key);
    if (rc) return rc;
    if (expect_version < 0) return SB_STORE_EINVAL;
    sb_sres res;
    if (expect_version == 0) {
        sb_sparam p[] = {p_text(ns), p_text(key)};
        rc = q(st, k_sql_delete_any, p, 2, "i", &res);
        if (rc) return rc;
        return res.has_row ? 0 : SB_STORE_NOTFOUND;
    }
    sb_sparam p[] = {p_text(ns), p_text(key), p_i64(expect_version)};
    rc = q(st, k_sql_delete_ver, p, 3, "i", &res);
    if (rc) return rc;
    if (res.has_row) return 0;
    rc = q(st, k_sql_exists, p, 2, "i", &res);
    if (rc) return rc;
    return res.has_row ? SB_STORE_CONFLICT : SB_STORE_NOTFOUND;
}

int sb_store_take(sb_store *st, const char *ns, const char *key, sb_store_rec *out)
{
    if (out) memset(out, 0, sizeof *out);
    int rc = check_args(st, ns, key);
    if (rc || !out) return SB_STORE_EINVAL;
    sb_sparam p[] = {p_text(ns), p_text(key), p_i64(sb_store_now_ms())};
    sb_sres res;
    rc = q(st, k_sql_take, p, 3, "bii", &res);
    if (rc) return rc;
    if (!res.has_row) return SB_STORE_NOTFOUND;
    res_to_rec(&res, out);
    return 0;
}

int sb_store_sweep(sb_store *st, int64_t now_ms, uint64_t *deleted)
{
    if (deleted) *deleted = 0;
    if (!st || now_ms < 0) return SB_STORE_EINVAL;
    sb_sparam p[] = {p_i64(now_ms ? now_ms : sb_store_now_ms())};
    sb_sres res;
    int rc = q(st, k_sql_sweep, p, 1, "", &res);
    if (rc) return rc;
    if (deleted) *deleted = (uint64_t)res.changes;
    return 0;
}
