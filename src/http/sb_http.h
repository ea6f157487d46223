/* sb_http: the HTTP front end on libmicrohttpd (epoll): routing, limits, Origin/Host checks,
 * credentials, request ids, logs and request metrics; streams MCP call output as JSON or SSE via
 * suspend/resume. */
#ifndef SB_HTTP_H
#define SB_HTTP_H
#include <stddef.h>
#include <sys/socket.h>

#include "core/sb_buf.h"
#include "auth/sb_oauth.h"
#include "core/sb_config.h"
#include "mcp/sb_mcp.h"
#include "upstream/sb_region.h"

typedef struct sb_http sb_http;

typedef struct sb_http_options {
    const sb_config *cfg;         /* borrowed; must outlive the server */
    sb_mcp *mcp;                  /* borrowed */
    int anonymous_ok;             /* --conformance: no credential required at /mcp */
    sb_oauth *oauth;              /* borrowed; NULL: no OAuth endpoints, Bearer refused */
    struct sb_ptoken *ptoken;     /* borrowed; provider-token mode, or NULL */
    struct sb_keys *keys;         /* borrowed; signbridge keys (sbk_...), or NULL */
    const unsigned char *secret;  /* server secret for fingerprints (32 bytes), borrowed */
    const sb_regions *regions;    /* providers and regions for the MCP routes, borrowed */
    /* GET /files/{token}: returns a malloc'd copy of a short-lived file, or NULL (404). */
    void *(*file_get)(void *ud, const char *token, size_t *len, char *mime, size_t mimecap,
                      char *name, size_t namecap);
    void *file_ud;
    /* GET /metrics (when cfg->metrics.enabled): append the whole Prometheus exposition to out;
     * 0 or negative (500). NULL: only the HTTP layer's own families (sb_metrics_global()). */
    int (*metrics_render)(void *ud, sb_buf *out);
    void *metrics_ud;
    /* GET /readyz: when set, 0 = dependencies ready, anything else answers 503. Called on an HTTP
     * worker for every /readyz; it should be cheap (cache its own checks). */
    int (*ready)(void *ud);
    void *ready_ud;
    /* per-credential rate limits and concurrency caps (borrowed), or NULL = none */
    struct sb_ratelimit *ratelimit;
    /* 1: /readyz answers 503 "keys_not_loaded" until sb_http_set_keys_loaded(h, 1) */
    int keys_pending;
    /* The upstream engine (borrowed; must outlive sb_http_stop). When it has serving lanes, one
     * daemon runs on each lane's thread (requests, upstream transfers and replies on one thread);
     * NULL or no lanes: libmicrohttpd's own pool of cfg->http_threads epoll threads. */
    struct sb_up *up;
} sb_http_options;

/* Parse "ADDR:PORT" ("[v6]:PORT", "localhost:PORT") into a socket address; *loopback = 1 for a
 * loopback address. 0 or -1. */
int sb_http_parse_listen(const char *l, struct sockaddr_storage *ss, socklen_t *len, int *loopback);

/* Bind and start serving. NULL with a message in err on failure. */
sb_http *sb_http_start(const sb_http_options *o, char *err, size_t errlen);
/* Install the OAuth server once the public URL is known (before the port is announced). */
void sb_http_set_oauth(sb_http *h, sb_oauth *o);
/* Replace the allowed Origins (SIGHUP): the list is copied (at most SB_MAX_ORIGINS) and swapped
 * in atomically; requests in progress keep the list they started with. 0 or -1 (out of memory). */
int sb_http_set_allowed_origins(sb_http *h, const char (*origins)[256], size_t n);
/* With keys_pending, /readyz is 503 ("keys_not_loaded") until this is called with 1: main calls
 * it once the OAuth signing keys are loaded. */
void sb_http_set_keys_loaded(sb_http *h, int loaded);
/* The bound TCP port. */
unsigned sb_http_port(const sb_http *h);
/* The public origin (public_url, or http://<listen addr>:<port>). */
const char *sb_http_public_url(const sb_http *h);
/* Stop accepting new connections (for a graceful drain). */
void sb_http_quiesce(sb_http *h);
/* Number of requests currently in progress. */
unsigned sb_http_in_flight(const sb_http *h);
/* Stop the server and free it: every suspended connection is resumed and closed. */
void sb_http_stop(sb_http *h);

#endif
