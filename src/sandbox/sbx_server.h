/* sbx_server: starting and stopping the sandbox HTTP server (framework-internal; see sbx.h). */
#ifndef SBX_SERVER_H
#define SBX_SERVER_H
#include "sandbox/sbx.h"

typedef struct sbx_options {
    const char *listen;        /* "ADDR:PORT" */
    uint64_t seed;
    const char *tls_cert_pem;  /* PEM contents (not paths), or NULL for plain HTTP */
    const char *tls_key_pem;
    int rate_limits;           /* 1 = on (default) */
    int auto_approve;
    unsigned auto_progress_ms;
    unsigned latency_ms;       /* added to every provider response */
    const char *const *faults; /* JSON fault rules (as for POST /_sandbox/faults), NULL-terminated */
    unsigned threads;
    unsigned max_head_bytes; /* the largest request head (libmicrohttpd's pool), 0 = 16 KiB */
} sbx_options;

/* Start serving. NULL with err filled on failure. */
sbx *sbx_start(const sbx_options *o, char *err, size_t errlen);
unsigned sbx_port(const sbx *s);
/* Stop serving and free everything. */
void sbx_stop(sbx *s);

#endif
