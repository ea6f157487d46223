/* sb_admin: the admin listener: an HTTP API for operators, on its own address (keep it private),
 * protected by an operator token: signbridge keys (create, list, show, rotate, revoke) — the same
 * operations as `signbridge keys` (docs/keys.md). One libmicrohttpd thread; requests are small
 * and rare, so handlers run synchronously (a create waits, bounded, for the provider check). */
#ifndef SB_ADMIN_H
#define SB_ADMIN_H
#include <stddef.h>

#include "auth/sb_keys.h"
#include "core/sb_buf.h"

typedef struct sb_admin sb_admin;

/* Check a provider key with the provider, waiting (sb_verify_key_wait's shape): 1 valid (region
 * written), 0 refused (message), -1 not started. */
typedef int (*sb_admin_verify_fn)(void *ud, const char *provider, const char *region,
                                  const char *instance, const char *key, size_t key_len,
                                  char region_out[24], char *message, size_t msgcap);

typedef struct sb_admin_options {
    const char *listen;        /* "ADDR:PORT" (port 0 picks one) */
    const char *token;         /* operator token (copied); required, at least 16 bytes */
    sb_keys *keys;             /* borrowed */
    sb_admin_verify_fn verify;
    void *verify_ud;
    /* GET /metrics without the operator token (metrics.on_admin): append the Prometheus
     * exposition to out, 0 or negative (500). NULL: /metrics is not served here. */
    int (*metrics_render)(void *ud, sb_buf *out);
    void *metrics_ud;
} sb_admin_options;

/* Start; NULL with err on failure. */
sb_admin *sb_admin_start(const sb_admin_options *o, char *err, size_t errlen);
unsigned sb_admin_port(const sb_admin *a);
void sb_admin_stop(sb_admin *a);

#endif
