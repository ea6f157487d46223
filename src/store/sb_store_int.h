/* sb_store_int: the interface between sb_store.c (validation, SQL, migrations) and a backend. */
#ifndef SB_STORE_INT_H
#define SB_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "store/sb_store.h"

typedef enum { SB_SP_NULL, SB_SP_I64, SB_SP_TEXT, SB_SP_BLOB } sb_sp_type;

/* One bound parameter ($1..$n in the SQL; the SQLite backend rewrites them to ?1..?n). */
typedef struct {
    sb_sp_type t;
    int64_t i;
    const void *p; /* TEXT (NUL-terminated) or BLOB bytes; borrowed */
    size_t n;      /* BLOB length */
} sb_sparam;

/* The first result row of a statement, read by a column spec: 'b' = blob, 'i' = int64 (NULL → 0).
 * At most one 'b' and three 'i'. blob is malloc'd (NUL-terminated) and owned by the caller. */
typedef struct {
    int has_row;
    unsigned char *blob;
    size_t blen;
    int64_t i[3];
    int64_t changes; /* rows affected (DELETE without RETURNING) */
} sb_sres;

/* One migration: SQL with the token {BLOB} for the binary type (BYTEA / BLOB). Statements are
 * separated by ';' and run inside one transaction with the bookkeeping row. */
typedef struct {
    int64_t version;
    const char *name;
    const char *sql;
} sb_migration;

typedef struct {
    const char *name;
    /* Run one statement with params; fill res per cols (may be NULL/"" when no row is wanted). */
    int (*query)(void *be, const char *sql, const sb_sparam *p, int np, const char *cols,
                 sb_sres *res);
    /* Apply the pending migrations of list[0..n) under the backend's lock; *version = after. */
    int (*migrate)(void *be, const sb_migration *list, size_t n, int64_t *version, char *err,
                   size_t errlen);
    void (*close)(void *be);
} sb_store_ops;

int sb_store_sqlite_open(void **be, const char *path, const sb_store_opts *o, char *err,
                         size_t errlen);
int sb_store_pg_open(void **be, const char *url, const sb_store_opts *o, char *err, size_t errlen);
/* Load libpq (soname, e.g. SB_LIBPQ_SONAME) once per process with dlopen and resolve the functions
 * the PostgreSQL backend calls; thread-safe, later calls return 0 at once. On failure err names the
 * library and the package to install, nothing stays loaded, and a later call may try again. */
#define SB_LIBPQ_SONAME "libpq.so.5"
int sb_store_pg_load(const char *soname, char *err, size_t errlen);
extern const sb_store_ops sb_store_sqlite_ops;
extern const sb_store_ops sb_store_pg_ops;

/* The migration runner both backends use on one connection (ctx): begin_sql opens a transaction
 * that holds the backend's migration lock; exec runs statements without parameters; query as in
 * sb_store_ops. On any failure the transaction is rolled back. */
typedef struct {
    void *ctx;
    int (*exec)(void *ctx, const char *sql, char *err, size_t errlen);
    int (*query)(void *ctx, const char *sql, const sb_sparam *p, int np, const char *cols,
                 sb_sres *res);
    const char *begin_sql;
    const char *blob_type;
} sb_migrator;
int sb_store_migrate_run(const sb_migrator *m, const sb_migration *list, size_t n, int64_t *version,
                         char *err, size_t errlen);

/* Expand {BLOB} in sql to blob_type into a malloc'd string (NULL on allocation failure). */
char *sb_store_expand_sql(const char *sql, const char *blob_type);
/* Write a message into err[0..errlen) (safe for NULL/0). */
void sb_store_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
