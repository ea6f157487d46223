/* sb_store: the persistent store: namespaced key → opaque value records with expiry and a version
 * counter, on SQLite (one machine) or PostgreSQL (many replicas). Knows no protocol. */
#ifndef SB_STORE_H
#define SB_STORE_H

#include <stddef.h>
#include <stdint.h>

/* Bounds. Namespaces are [a-z0-9_]{1,64}; keys are 1..512 bytes of well-formed UTF-8 without
 * control characters (callers use ids, hashes, base64url); values are 0..1 MiB of opaque bytes
 * (JSON, sealed blobs). */
#define SB_STORE_MAX_NS 64
#define SB_STORE_MAX_KEY 512
#define SB_STORE_MAX_VALUE (1024 * 1024)
#define SB_STORE_MAX_URL 4096

/* Results. Every function returns 0 or one of these; none crashes on NULL or bad input. */
enum {
    SB_STORE_OK = 0,
    SB_STORE_ERR = -1,      /* backend failure (I/O, connection, SQL error, busy past timeout) */
    SB_STORE_EINVAL = -2,   /* bad argument: NULL, bad namespace/key, value too large, bad URL */
    SB_STORE_NOTFOUND = -3, /* no live record (absent or expired) */
    SB_STORE_CONFLICT = -4, /* compare-and-swap: version differs, or the record already exists */
    SB_STORE_ESCHEMA = -5,  /* the database's schema is newer than this binary knows */
};

typedef struct sb_store sb_store;

/* Options for sb_store_open; NULL means all defaults. */
typedef struct {
    int busy_timeout_ms; /* SQLite: wait this long for a lock (default 5000) */
    int pool_size;       /* PostgreSQL: connections in the pool (default 4, max 64) */
    int acquire_ms; /* PostgreSQL: wait this long for a free pooled connection (default 5000) */
} sb_store_opts;

/* One record as read. `value` is malloc'd (NUL-terminated for convenience, `len` excludes the NUL)
 * and owned by the caller: release with sb_store_rec_free. expires_at_ms is 0 for "never". */
typedef struct {
    unsigned char *value;
    size_t len;
    int64_t expires_at_ms;
    int64_t version;
} sb_store_rec;

/* Open a store and run pending migrations (table `schema_migrations`; the same migrations on both
 * backends, applied under a lock so that concurrent openers apply each once).
 * url: "sqlite:PATH", a bare PATH, or "postgresql://..." / "postgres://..." (a libpq URI; libpq's
 * environment variables apply). SQLite is opened in WAL mode with busy_timeout and
 * synchronous=NORMAL; PostgreSQL through a pool of `pool_size` connections.
 * On success *out owns the store (sb_store_close). On failure *out is NULL and, when err is not
 * NULL, a message (never containing the URL's password) is written to err[0..errlen). The store
 * is thread-safe: any thread may call any function on it concurrently (except close). */
int sb_store_open(sb_store **out, const char *url, const sb_store_opts *opts, char *err,
                  size_t errlen);

/* Close and free the store (NULL is a no-op). No other call may be in progress. */
void sb_store_close(sb_store *st);

/* "sqlite" or "postgresql" (static string); NULL for NULL. */
const char *sb_store_backend(const sb_store *st);

/* The schema version the database is at after open (highest applied migration). */
int sb_store_schema_version(sb_store *st, int64_t *out);

/* Readiness: a round trip to the database. 0 when it answers. */
int sb_store_ping(sb_store *st);

/* Free a record's value and zero it (NULL and an empty record are fine). */
void sb_store_rec_free(sb_store_rec *rec);

/* The current wall-clock time in Unix milliseconds, as the store compares expiry against it. */
int64_t sb_store_now_ms(void);

/* Read the live record ns/key into *out (caller frees with sb_store_rec_free). NOTFOUND when
 * absent or expired (an expired record is never returned, swept or not). */
int sb_store_get(sb_store *st, const char *ns, const char *key, sb_store_rec *out);

/* Create or replace ns/key (upsert). expires_at_ms: 0 = never, else Unix ms. The version is 1 for
 * a new record, previous + 1 for a replaced one (also when the previous had expired). The value is
 * copied; value may be NULL when len is 0. *version_out (optional) receives the new version. */
int sb_store_put(sb_store *st, const char *ns, const char *key, const void *value, size_t len,
                 int64_t expires_at_ms, int64_t *version_out);

/* Claim if absent: atomically create ns/key unless a live record exists (an expired one is
 * replaced). *created = 1 when this caller created it (then *version_out is the new version),
 * 0 when a live record already existed: then, if existing is not NULL, it receives that record
 * (caller frees). Across threads, processes and replicas sharing one database, exactly one
 * concurrent claimer sees *created = 1. */
int sb_store_claim(sb_store *st, const char *ns, const char *key, const void *value, size_t len,
                   int64_t expires_at_ms, int *created, int64_t *version_out,
                   sb_store_rec *existing);

/* Compare-and-swap: replace the live record ns/key only if its version is expect_version; then
 * *version_out (optional) = expect_version + 1. expect_version 0 means "only if absent" (like
 * claim, without reading the existing record). CONFLICT when the version differs, NOTFOUND when
 * there is no live record and expect_version != 0. */
int sb_store_cas(sb_store *st, const char *ns, const char *key, int64_t expect_version,
                 const void *value, size_t len, int64_t expires_at_ms, int64_t *version_out);

/* Delete ns/key. expect_version 0: whatever its version; otherwise only at that version
 * (CONFLICT if it differs). NOTFOUND when no record (live or expired) was there. */
int sb_store_delete(sb_store *st, const char *ns, const char *key, int64_t expect_version);

/* Take: atomically read and delete the live record (one-time codes, single-use tokens): exactly
 * one concurrent taker gets it into *out (caller frees); the others get NOTFOUND. */
int sb_store_take(sb_store *st, const char *ns, const char *key, sb_store_rec *out);

/* Delete every record whose expiry is at or before now_ms (0 = the current time), all namespaces.
 * *deleted (optional) receives the count. */
int sb_store_sweep(sb_store *st, int64_t now_ms, uint64_t *deleted);

/* Timing: fn(op, microseconds) is called after every database statement, on the calling thread,
 * op being "get", "put", "claim", "cas", "delete", "take", "sweep" or "ping" (static strings; an
 * operation may run more than one statement). Process-wide; NULL = none. fn must be cheap and
 * must not call the store. */
typedef void (*sb_store_observer)(const char *op, uint64_t us);
void sb_store_set_observer(sb_store_observer fn);

/* 1 if ns is a valid namespace, key a valid key (length and bytes); 0 otherwise. */
int sb_store_valid_ns(const char *ns);
int sb_store_valid_key(const char *key);

#endif
