#include "http/sb_http.h"

#include "auth/sb_cred.h"
#include "auth/sb_keys.h"
#include "auth/sb_oauth.h"
#include "auth/sb_ptoken.h"
#include "auth/sb_ratelimit.h"
#include "core/sb_buf.h"
#include "core/sb_log.h"
#include "core/sb_metrics.h"
#include "core/sb_util.h"
#include "mcp/sb_jsonrpc.h"
#include "upstream/sb_region.h"
#include "upstream/sb_up.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/socket.h>
#include <unistd.h>

#if MHD_VERSION < 0x00097002
typedef int MHD_RESULT_T;
#else
typedef enum MHD_Result MHD_RESULT_T;
#endif

/* The allowed Origins: immutable once published; replaced whole on SIGHUP (the old lists are
 * kept until sb_http_stop, so a reader never sees freed memory). */
typedef struct origin_list {
    struct origin_list *retired; /* the list this one replaced */
    size_t n;
    char o[SB_MAX_ORIGINS][256];
} origin_list;

#define INBOX_MAX 256   /* connections handed to a lane and not yet taken by it */
/* New requests a lane starts per libmicrohttpd run; the rest of a burst waits suspended (in
 * arrival order) for the next runs, so the lane turns to its upstream answers in between instead
 * of reading thousands of requests before it answers any (steady load at 50 connections stays
 * well under it: ~25 ready connections per lane per run) */
#define INTAKE_BUDGET 32
#define STR_(x) #x
#define STR(x) STR_(x)
#define ACCEPT_BATCH 64 /* accepted per wake-up, so one lane's burst cannot starve its calls */

typedef struct handed {
    int fd;
    socklen_t len;
    struct sockaddr_storage addr;
} handed;

/* One serving lane as the HTTP server sees it. The lanes' daemons have no listening socket of
 * their own: each lane watches the shared one and gives every connection it accepts to the lane
 * holding the fewest (itself on a tie), so 50 connections opened at once end up 25 and 25, not 40
 * and 10 -- an uneven split left one core idle and tripled the p99 of the busy one. */
typedef struct lane_srv {
    struct sb_http *h;
    unsigned i;
    atomic_int conns;   /* connections its daemon holds (libmicrohttpd's notifications) */
    atomic_int pending; /* handed to it and not yet added */
    sb_mseries *m_conns; /* signbridge_http_connections{lane}, or NULL */
    pthread_mutex_t mu; /* inbox and open */
    int open;           /* takes connections: set once attached, cleared when stopping */
    handed inbox[INBOX_MAX];
    size_t ninbox;
    int watching;       /* the listening socket is in this lane's watch (lane thread only) */
    int closing;        /* its daemon is being stopped: never watch again (lane thread only) */
    uint64_t resume_ms; /* accepting paused (descriptors ran out) until then; 0 = not paused */
    unsigned run_intake; /* requests started in the current run (lane thread only) */
    struct req_ctx *held_head, *held_tail; /* requests over the budget, suspended, oldest first */
} lane_srv;

struct sb_http {
    struct MHD_Daemon *d;         /* without lanes: one daemon with its own epoll thread pool */
    /* with lanes (o.up has serving lanes): one external-epoll daemon per lane; the lanes accept
     * on one listening socket that this server owns (lane_accept) */
    struct MHD_Daemon *ds[SB_UP_MAX_LANES];
    lane_srv ls[SB_UP_MAX_LANES];
    unsigned nl;                  /* serving lanes (ls[0..nl-1]), set before any starts */
    unsigned nd;
    unsigned lane_limit;          /* connections per lane (limits.max_connections shared out) */
    int lsock;
    int qsock;                    /* the pool daemon's listen socket once quiesced, or -1 */
    int quiesced;
    _Atomic(origin_list *) origins;
    atomic_int keys_loaded;
    sb_http_options o;
    sb_cred_fpkey *fp; /* o.secret, keyed once for the per-request fingerprints */
    unsigned port;
    int loopback;
    char public_url[300];
    char prm_base[320];           /* <public>/.well-known/oauth-protected-resource */
    char public_host[260];        /* host[:port] of public_url, for the Host check */
    atomic_uint in_flight;
    atomic_int draining;
    /* metrics (docs/operations.md): families of sb_metrics_global(), label sets pre-resolved */
    int metrics_on;
    sb_mfamily *m_requests;
    sb_mseries *m_duration[7];    /* per route kind */
    sb_mseries *m_in_flight;
    sb_mseries *m_held;           /* signbridge_http_requests_held_total */
};

enum route { R_NONE = 0, R_MCP, R_HEALTH, R_READY, R_FILE, R_METRICS, R_OAUTH };
/* the route label of signbridge_http_requests_total: the kind, never the raw path */
static const char *const route_names[] = {"not_found", "mcp", "healthz", "readyz", "files",
                                          "metrics", "oauth"};

/* The request headers read on every request. They are found in one pass over libmicrohttpd's
 * list at the first lookup (hdr): each MHD_lookup_connection_value walked the whole list with a
 * caseless compare, and the ~16 lookups of a request were 4% of a tools/list's instructions.
 * The first header of each name is kept, as the lookup finds it. */
#define KNOWN_HEADERS(X)                                                                           \
    X(H_X_API_KEY, "X-API-Key")                                                                    \
    X(H_AUTHORIZATION, "Authorization")                                                            \
    X(H_API_KEY, "api_key")                                                                        \
    X(H_REQUEST_ID, "X-Request-Id")                                                                \
    X(H_READ_ONLY, "X-Read-Only")                                                                  \
    X(H_CONTENT_TYPE, "Content-Type")                                                              \
    X(H_ACCEPT, "Accept")                                                                          \
    X(H_CONTENT_LENGTH, "Content-Length")                                                          \
    X(H_TRANSFER_ENCODING, "Transfer-Encoding")                                                    \
    X(H_SESSION_ID, "Mcp-Session-Id")                                                              \
    X(H_PROTOCOL_VERSION, "MCP-Protocol-Version")                                                  \
    X(H_ACCEPT_ENCODING, "Accept-Encoding")                                                        \
    X(H_ORIGIN, "Origin")                                                                          \
    X(H_HOST, "Host")
enum known_header {
#define X(e, s) e,
    KNOWN_HEADERS(X)
#undef X
        H_N
};
static const struct {
    const char *name;
    size_t len;
} k_known[H_N] = {
#define X(e, s) {s, sizeof s - 1},
    KNOWN_HEADERS(X)
#undef X
};

typedef struct req_ctx {
    sb_http *h;
    struct req_ctx *held_prev, *held_next; /* on its lane's held list while held */
    int held;                     /* held (suspended) over its lane's intake budget */
    int started;                  /* on_request's first step has run */
    struct MHD_Connection *conn;
    uint64_t start_us;
    char request_id[72];
    const char *method;
    char path[257];
    enum route route;
    sb_buf body;
    int too_big;
    size_t discarded;
    int has_cred;
    sb_cred_kind cred_kind;
    char fingerprint[SB_FP_HEX];
    char owner[SB_FP_HEX + 140]; /* session owner key: fingerprint + route */
    const char *origin_ok;        /* echo in Access-Control-Allow-Origin when set: the request's
                                   * Origin header (libmicrohttpd keeps it until the request ends) */
    sb_mcp_call *call;
    sb_oauth_pending *opend;      /* an OAuth answer waiting on the network */
    int status;
    char rpc_method[48];
    char session[12];
    int rl_slot;                  /* holds a concurrency slot of h->o.ratelimit */
    int deferred;                 /* no body: first_step runs at the next call (keep-alive) */
    int lane;                     /* the upstream lane running this connection's daemon, or -1 */
    /* SSE output */
    char *ev;                     /* current event bytes */
    size_t ev_len, ev_off;
    int stream_done;
    size_t bytes_out;
    /* the MCP route, parsed from the path (copied into the principal) */
    char provider[16];
    char region_pin[24];
    char instance[64];
    char mcp_path[128];            /* the principal's route, e.g. "/boldsign/eu/mcp" */
    /* who is calling, from the credential check until the MCP call has taken its own copy:
     * sb_principal_size bytes (~1.2 KB for an API key, not the 5 KiB struct with its
     * 4 KiB credential buffer, which is filled on the serving thread's stack). Holds the raw
     * credential: wiped and freed by drop_principal. */
    sb_principal *pr;
    int hv_done;              /* hv is filled (at the first hdr) */
    const char *hv[H_N];      /* the known headers' values (libmicrohttpd's strings), or NULL */
} req_ctx;

/* the serving lane whose daemon this thread runs (-1: none) */
static __thread int tl_lane = -1;

/* ---- helpers ------------------------------------------------------------------------------ */

static MHD_RESULT_T index_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                 size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    (void)value_size;
    req_ctx *r = cls;
    for (int k = 0; k < H_N; k++)
        if (k_known[k].len == key_size && !r->hv[k] &&
            strncasecmp(key, k_known[k].name, key_size) == 0) {
            r->hv[k] = value;
            break;
        }
    return MHD_YES;
}

/* The value of known header k (the first of that name), or NULL. The headers are complete from
 * the first access-handler call on, and the strings live until the request ends. */
static const char *hdr(req_ctx *r, enum known_header k)
{
    if (!r->hv_done) {
        MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, index_header, r);
        r->hv_done = 1;
    }
    return r->hv[k];
}

/* Any header by name, for callbacks (credential extraction, the OAuth server): a known one from
 * the index, another by libmicrohttpd's lookup. */
static const char *hdr_cb(void *ctx, const char *name)
{
    size_t n = strlen(name);
    for (int k = 0; k < H_N; k++)
        if (k_known[k].len == n && strcasecmp(name, k_known[k].name) == 0) return hdr(ctx, k);
    return MHD_lookup_connection_value(((req_ctx *)ctx)->conn, MHD_HEADER_KIND, name);
}

static int is_loopback_host(const char *host, size_t n)
{
    /* host without port; IPv6 in brackets */
    if (n == 9 && strncasecmp(host, "localhost", 9) == 0) return 1;
    if (n == 5 && strncmp(host, "[::1]", 5) == 0) return 1;
    if (n >= 4 && n <= 15 && strncmp(host, "127.", 4) == 0) {
        for (size_t i = 4; i < n; i++)
            if (!((host[i] >= '0' && host[i] <= '9') || host[i] == '.')) return 0;
        return 1;
    }
    return 0;
}

/* Split "host[:port]" (IPv6 in brackets); returns the host length. */
static size_t host_len(const char *hp)
{
    if (hp[0] == '[') {
        const char *e = strchr(hp, ']');
        return e ? (size_t)(e - hp) + 1 : strlen(hp);
    }
    const char *c = strchr(hp, ':');
    return c ? (size_t)(c - hp) : strlen(hp);
}

static int origin_allowed(const sb_http *h, const char *origin)
{
    const origin_list *ol = atomic_load(&((sb_http *)h)->origins);
    for (size_t i = 0; ol && i < ol->n; i++)
        if (strcmp(origin, ol->o[i]) == 0) return 1;
    if (h->public_url[0] && strcmp(origin, h->public_url) == 0) return 1;
    const char *p = NULL;
    if (strncmp(origin, "http://", 7) == 0)
        p = origin + 7;
    else if (strncmp(origin, "https://", 8) == 0)
        p = origin + 8;
    if (!p || strchr(p, '/') || strchr(p, '@')) return 0;
    return is_loopback_host(p, host_len(p));
}

static int host_allowed(const sb_http *h, const char *host)
{
    if (!host) return 1; /* HTTP/1.0 without Host */
    if (is_loopback_host(host, host_len(host))) return 1;
    if (h->public_host[0] && strcasecmp(host, h->public_host) == 0) return 1;
    /* Only a loopback-bound server without a public URL can insist on loopback Host names. */
    return !(h->loopback && !h->o.cfg->public_url[0]);
}

static void add_common_headers(req_ctx *r, struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (r->origin_ok) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->origin_ok);
        MHD_add_response_header(resp, "Vary", "Origin");
        MHD_add_response_header(resp, "Access-Control-Expose-Headers",
                                "Mcp-Session-Id, WWW-Authenticate, X-Request-Id");
    }
}

static MHD_RESULT_T queue(req_ctx *r, int status, const char *ctype, char *body, size_t len,
                          const char *const *extra)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, body ? body : (char *)"",
                                        body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    if (ctype) MHD_add_response_header(resp, "Content-Type", ctype);
    add_common_headers(r, resp);
    for (const char *const *e = extra; e && e[0]; e += 2) MHD_add_response_header(resp, e[0], e[1]);
    r->status = status;
    r->bytes_out = len;
    MHD_RESULT_T rc = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static MHD_RESULT_T queue_rpc_error(req_ctx *r, int status, int code, const char *msg,
                                    const char *const *extra)
{
    char *b = sb_rpc_error(NULL, code, msg, NULL);
    return queue(r, status, "application/json", b, b ? strlen(b) : 0, extra);
}

static MHD_RESULT_T queue_json(req_ctx *r, int status, cJSON *o, const char *const *extra)
{
    char *b = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return queue(r, status, "application/json", b, b ? strlen(b) : 0, extra);
}

static void make_request_id(req_ctx *r)
{
    const char *in = hdr(r, H_REQUEST_ID);
    if (in) {
        size_t n = strlen(in);
        int ok = n >= 1 && n <= 64;
        for (size_t i = 0; ok && i < n; i++) {
            char c = in[i];
            ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.';
        }
        if (ok) {
            sb_strlcpy(r->request_id, in, sizeof r->request_id);
            return;
        }
    }
    /* 128 bits from a per-thread random seed and a counter: unique and unguessable enough for
     * an id (it is no secret), without a getrandom system call per request (4% of a tools/list) */
    static __thread uint64_t seed[2], counter;
    if (seed[0] == 0 && seed[1] == 0) sb_random_bytes(seed, sizeof seed);
    uint64_t n = ++counter, w[2] = {seed[0] + n * 0x9E3779B97F4A7C15ULL, seed[1] ^ n};
    unsigned char rnd[16];
    for (int k = 0; k < 2; k++) {
        uint64_t z = w[k];
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL; /* splitmix64's finalizer */
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
        memcpy(rnd + 8 * k, &z, 8);
    }
    sb_hex_encode(rnd, sizeof rnd, r->request_id);
}

static int media_type_is(const char *v, const char *type)
{
    size_t n = strlen(type);
    while (*v == ' ') v++;
    return strncasecmp(v, type, n) == 0 && (v[n] == '\0' || v[n] == ';' || v[n] == ' ');
}

/* Accept must allow both application/json and text/event-stream (absent = anything). */
static int accept_ok(const char *a)
{
    if (!a) return 1;
    int json = 0, sse = 0;
    const char *p = a;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        if (!*p) break;
        const char *e = p;
        while (*e && *e != ',') e++;
        size_t n = (size_t)(e - p);
        const char *semi = memchr(p, ';', n);
        size_t tn = semi ? (size_t)(semi - p) : n;
        while (tn && p[tn - 1] == ' ') tn--;
        if ((tn == 3 && strncmp(p, "*/*", 3) == 0)) json = sse = 1;
        if (tn == 16 && strncasecmp(p, "application/json", 16) == 0) json = 1;
        if (tn == 13 && strncasecmp(p, "application/*", 13) == 0) json = 1;
        if (tn == 17 && strncasecmp(p, "text/event-stream", 17) == 0) sse = 1;
        if (tn == 6 && strncasecmp(p, "text/*", 6) == 0) sse = 1;
        p = e;
    }
    return json && sse;
}

/* MCP routes (sb_regions_mcp_path: /mcp, /{provider}/mcp, /{provider}/{region}/mcp,
 * /iinkedsign/private/{instance}/mcp) on a path whose trailing slash is already dropped. Fills the
 * principal's provider, pin and instance. */
static int parse_mcp_route(req_ctx *r, const char *path)
{
    const sb_regions *rt = r->h->o.regions;
    if (!rt) { /* no region table: only the default route */
        if (strcmp(path, "/mcp") != 0) return 0;
        sb_strlcpy(r->provider, r->h->o.cfg->default_provider, sizeof r->provider);
        return 1;
    }
    return sb_regions_mcp_path(rt, path, r->h->o.cfg->default_provider, r->provider, r->region_pin,
                               r->instance);
}

static int parse_route(req_ctx *r, const char *url)
{
    sb_strlcpy(r->path, url, sizeof r->path);
    if (strcmp(url, "/healthz") == 0) return R_HEALTH;
    if (strcmp(url, "/readyz") == 0) return R_READY;
    if (strcmp(url, "/metrics") == 0 && r->h->metrics_on) return R_METRICS;
    if (strncmp(url, "/files/", 7) == 0 && strlen(url + 7) < 64 && !strchr(url + 7, '/'))
        return R_FILE;
    if (r->h->o.oauth && sb_oauth_is_endpoint(url, NULL)) return R_OAUTH;
    /* the route without one trailing slash (the same route), parsed once */
    char *route = r->mcp_path;
    size_t n = strlen(url);
    if (n > 1 && url[n - 1] == '/') n--;
    if (n >= sizeof r->mcp_path) return R_NONE;
    memcpy(route, url, n);
    route[n] = '\0';
    if (parse_mcp_route(r, route)) return R_MCP;
    route[0] = '\0';
    return R_NONE;
}

/* ---- SSE streaming ------------------------------------------------------------------------ */

static void park_conn(void *ctx)
{
    req_ctx *r = ctx;
    MHD_suspend_connection(r->conn);
}

static void wake_conn(void *ctx)
{
    req_ctx *r = ctx;
    MHD_resume_connection(r->conn);
    /* libmicrohttpd has no wake-up channel of its own in external mode: the lane that runs this
     * connection's daemon is told to run it (at once, on that lane's own thread) */
    if (r->lane >= 0) sb_up_lane_kick(r->h->o.up, (unsigned)r->lane);
}

static int sse_event(req_ctx *r, char *json, size_t len)
{
    /* JSON from cJSON_PrintUnformatted has no raw newlines */
    size_t cap = len + 32;
    char *ev = malloc(cap);
    if (!ev) {
        free(json);
        return -1;
    }
    memcpy(ev, "event: message\ndata: ", 21);
    memcpy(ev + 21, json, len);
    memcpy(ev + 21 + len, "\n\n", 2);
    free(json);
    free(r->ev);
    r->ev = ev;
    r->ev_len = 21 + len + 2;
    r->ev_off = 0;
    return 0;
}

/* The rate-limit key of the caller: its credential fingerprint (never the credential). */
static const char *rl_key(const req_ctx *r)
{
    return r->fingerprint[0] ? r->fingerprint : "anonymous";
}

/* The call has produced its last message: its concurrency slot is free from now on, before that
 * message is sent -- a client that has read its answer and calls again at once must find the
 * slot free (on_completed, which releases what is still held, runs only after the last byte has
 * left, and on another replica's view of the shared slots, later still). */
static void call_ended(req_ctx *r)
{
    if (!r->rl_slot) return;
    r->rl_slot = 0;
    sb_ratelimit_call_end(r->h->o.ratelimit, rl_key(r));
}

static ssize_t sse_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    req_ctx *r = cls;
    (void)pos;
    for (;;) {
        if (r->ev && r->ev_off < r->ev_len) {
            size_t n = r->ev_len - r->ev_off;
            if (n > max) n = max;
            memcpy(buf, r->ev + r->ev_off, n);
            r->ev_off += n;
            r->bytes_out += n;
            return (ssize_t)n;
        }
        if (r->stream_done) return MHD_CONTENT_READER_END_OF_STREAM;
        char *json;
        size_t len;
        int final;
        int rc = sb_mcp_call_next(r->call, &json, &len, &final, park_conn, wake_conn, r);
        if (rc == 2) return 0; /* suspended until the next message */
        if (rc == 0) {
            r->stream_done = 1;
            call_ended(r);
            continue;
        }
        if (final) {
            r->stream_done = 1;
            call_ended(r);
        }
        if (sse_event(r, json, len) < 0) return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

static MHD_RESULT_T start_sse(req_ctx *r, char *first, size_t len, int final)
{
    if (sse_event(r, first, len) < 0) return MHD_NO;
    if (final) {
        r->stream_done = 1;
        call_ended(r);
    }
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, sse_reader, r, NULL);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache, no-transform");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    add_common_headers(r, resp);
    r->status = 200;
    MHD_RESULT_T rc = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    return rc;
}

static MHD_RESULT_T too_large(req_ctx *r)
{
    char msg[160];
    if (r->route == R_OAUTH) {
        /* OAuth endpoints: an OAuth-shaped error with their own (smaller) limit */
        snprintf(msg, sizeof msg, "the request body is larger than %d bytes", SB_OAUTH_MAX_BODY);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "error", "invalid_request");
        cJSON_AddStringToObject(o, "error_description", msg);
        return queue_json(r, 413, o, NULL);
    }
    snprintf(msg, sizeof msg, "Payload Too Large: the body limit is %zu bytes",
             r->h->o.cfg->max_body_bytes);
    return queue_rpc_error(r, 413, SB_RPC_SERVER_ERROR, msg, NULL);
}

/* A call is running: wait for its first message, then answer JSON (result only) or SSE. */
static MHD_RESULT_T drive_call(req_ctx *r)
{
    char *json;
    size_t len;
    int final;
    /* start the call (a tool call sends its upstream request here), then deliver an upstream
     * answer that arrived while the request was being sent: the call is then answered in this
     * turn instead of parking the connection until the loop's next one (sb_up_lane_reap) */
    if (r->lane >= 0) {
        sb_mcp_call_run(r->call);
        sb_up_lane_reap(r->h->o.up);
    }
    int rc = sb_mcp_call_next(r->call, &json, &len, &final, park_conn, wake_conn, r);
    if (rc == 2) return MHD_YES; /* suspended; we are called again on wake */
    if (rc == 0) {
        /* cancelled before anything was produced: nothing more is sent for it */
        call_ended(r);
        return queue(r, 202, NULL, NULL, 0, NULL);
    }
    if (final) {
        call_ended(r);
        int status;
        const char *sid, *www;
        sb_mcp_call_http_meta(r->call, &status, &sid, &www);
        const char *extra[6];
        size_t ne = 0;
        if (sid[0]) {
            extra[ne++] = "Mcp-Session-Id";
            extra[ne++] = sid;
            sb_strlcpy(r->session, sid, 9);
        }
        if (www[0]) {
            extra[ne++] = "WWW-Authenticate";
            extra[ne++] = www;
        }
        extra[ne] = extra[ne + 1] = NULL;
        return queue(r, status, "application/json", json, len, extra);
    }
    return start_sse(r, json, len, 0);
}

/* ---- MCP route ---------------------------------------------------------------------------- */

static MHD_RESULT_T unauthorized(req_ctx *r, const char *error, const char *desc)
{
    char www[900];
    if (!r->h->o.oauth && error)
        snprintf(www, sizeof www, "Bearer realm=\"signbridge\", error=\"%s\", "
                 "error_description=\"%s\"", error, desc);
    else if (!r->h->o.oauth)
        snprintf(www, sizeof www, "Bearer realm=\"signbridge\"");
    else if (error)
        snprintf(www, sizeof www,
                 "Bearer resource_metadata=\"%s%s\", scope=\"%s\", error=\"%s\", "
                 "error_description=\"%s\"",
                 r->h->prm_base, r->mcp_path, SB_SCOPES_ALL, error, desc);
    else
        snprintf(www, sizeof www, "Bearer resource_metadata=\"%s%s\", scope=\"%s\"",
                 r->h->prm_base, r->mcp_path, SB_SCOPES_ALL);
    const char *extra[] = {"WWW-Authenticate", www, NULL, NULL};
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", error ? error : "unauthorized");
    cJSON_AddStringToObject(
        o, "error_description",
        desc ? desc
             : "No credential. Send your provider API key as X-API-Key: <key>, Authorization: "
               "Basic base64(<key>:), or api_key: <key>; or sign in with OAuth and send "
               "Authorization: Bearer <token>.");
    cJSON *acc = cJSON_AddArrayToObject(o, "accepted_headers");
    cJSON_AddItemToArray(acc, cJSON_CreateString("X-API-Key"));
    cJSON_AddItemToArray(acc, cJSON_CreateString("Authorization: Basic"));
    cJSON_AddItemToArray(acc, cJSON_CreateString("api_key"));
    cJSON_AddItemToArray(acc, cJSON_CreateString("Authorization: Bearer"));
    return queue_json(r, 401, o, extra);
}

/* Provider-token mode: verify a provider-issued JWT (sb_ptoken) and make it the principal's
 * upstream credential (Bearer), in the issuer's region. Returns an SB_JWT_* code; on SB_JWT_EISS
 * (not a configured provider issuer) the caller tries signbridge's own tokens. */
static int provider_token(req_ctx *r, sb_principal *p, const char *tok, size_t tl, char *err,
                          size_t errlen)
{
    char prov[16], reg[24], e[160];
    cJSON *cl = NULL;
    int rc = sb_ptoken_verify(r->h->o.ptoken, tok, tl, prov, reg, &cl, e, sizeof e);
    if (rc != SB_JWT_OK) {
        snprintf(err, errlen, "the provider access token was refused (%s)", sb_jwt_strerror(rc));
        return rc;
    }
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(cl, "sub");
    const cJSON *iss = cJSON_GetObjectItemCaseSensitive(cl, "iss");
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(cl, "scope");
    const cJSON *cid = cJSON_GetObjectItemCaseSensitive(cl, "client_id");
    char scopes[1024] = "";
    if (cJSON_IsString(sc)) {
        sb_strlcpy(scopes, sc->valuestring, sizeof scopes);
    } else if (cJSON_IsArray(sc)) {
        const cJSON *x;
        size_t o = 0;
        cJSON_ArrayForEach(x, sc) if (cJSON_IsString(x) && o < sizeof scopes - 2) {
            o += (size_t)snprintf(scopes + o, sizeof scopes - o, "%s%s", o ? " " : "",
                                  x->valuestring);
            if (o >= sizeof scopes) o = sizeof scopes - 1;
        }
    }
    if (strcmp(prov, p->provider) != 0 || (p->region_pin[0] && strcmp(p->region_pin, reg) != 0) ||
        tl > SB_CRED_MAX) {
        cJSON_Delete(cl);
        snprintf(err, errlen, "the provider access token is for %s %s, not this MCP URL", prov,
                 reg);
        return SB_JWT_EAUD;
    }
    /* sessions and idempotency belong to the user (tokens rotate), keyed by issuer and subject */
    sb_cred who = {.kind = SB_CRED_BEARER};
    who.len = (size_t)snprintf(who.secret, sizeof who.secret, "ptoken\n%s\n%s",
                               cJSON_IsString(iss) ? iss->valuestring : "",
                               cJSON_IsString(sub) ? sub->valuestring : "");
    if (who.len >= sizeof who.secret) who.len = sizeof who.secret - 1;
    sb_cred_fingerprint_k(r->h->fp, p->provider, &who, p->fingerprint);
    sb_cred_wipe(&who);
    sb_strlcpy(r->fingerprint, p->fingerprint, sizeof r->fingerprint);
    p->cred.kind = SB_CRED_BEARER;
    memcpy(p->cred.secret, tok, tl);
    p->cred.secret[tl] = 0;
    p->cred.len = tl;
    p->upstream_bearer = 1;
    sb_strlcpy(p->region, reg, sizeof p->region);
    sb_strlcpy(p->client, cJSON_IsString(cid) ? cid->valuestring : "", sizeof p->client);
    /* writes need a write scope: signbridge.write or the provider's All/Write/Create scopes */
    p->read_only = p->read_only || !(strstr(scopes, SB_SCOPE_WRITE) || strstr(scopes, ".All") ||
                                     strstr(scopes, ".Write") || strstr(scopes, ".Create"));
    cJSON_Delete(cl);
    return SB_JWT_OK;
}

/* 429 with Retry-After and a JSON-RPC error saying which limit refused and when to retry. */
static MHD_RESULT_T too_many(req_ctx *r, const cJSON *id, const sb_ratelimit_refusal *rf)
{
    char msg[300], ra[16];
    snprintf(ra, sizeof ra, "%u", rf->retry_after_s);
    if (rf->kind == SB_RATELIMIT_CONCURRENCY)
        snprintf(msg, sizeof msg,
                 "Too Many Requests: this credential already has %u tool calls in flight (limit "
                 "max_concurrent_calls); retry in %u s",
                 rf->limits.max_concurrent_calls, rf->retry_after_s);
    else
        snprintf(msg, sizeof msg,
                 "Too Many Requests: this credential exceeded %u requests per minute (burst %u, "
                 "limit requests_per_minute); retry in %u s",
                 rf->limits.requests_per_minute, rf->limits.burst, rf->retry_after_s);
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "limit", sb_ratelimit_kind_name(rf->kind));
    cJSON_AddNumberToObject(data, "retry_after_s", rf->retry_after_s);
    if (rf->kind == SB_RATELIMIT_CONCURRENCY) {
        cJSON_AddNumberToObject(data, "max_concurrent_calls", rf->limits.max_concurrent_calls);
    } else {
        cJSON_AddNumberToObject(data, "requests_per_minute", rf->limits.requests_per_minute);
        cJSON_AddNumberToObject(data, "burst", rf->limits.burst);
    }
    char *b = sb_rpc_error(id, SB_RPC_SERVER_ERROR, msg, data);
    const char *extra[] = {"Retry-After", ra, NULL, NULL};
    return queue(r, 429, "application/json", b, b ? strlen(b) : 0, extra);
}

/* Wipes and frees the request's principal (it holds the raw credential). */
static void drop_principal(req_ctx *r)
{
    if (!r->pr) return;
    explicit_bzero(r->pr, sb_principal_size(r->pr));
    free(r->pr);
    r->pr = NULL;
}

/* Appends s to the string of length `at` in dst (cap bytes), cut to fit and NUL-terminated as
 * snprintf would; returns the new length. */
static size_t cat(char *dst, size_t cap, size_t at, const char *s)
{
    if (at + 1 >= cap) return at;
    size_t n = sb_strlcpy(dst + at, s, cap - at);
    return n < cap - at ? at + n : cap - 1;
}

/* mcp_precheck's body: p is the principal being filled, on the caller's stack; once the caller is
 * known, its sb_principal_size bytes are copied to r->pr. */
static MHD_RESULT_T mcp_precheck_p(req_ctx *r, const char *method, sb_principal *p)
{
    sb_http *h = r->h;
    if (strcmp(method, "OPTIONS") == 0) {
        const char *extra[] = {"Access-Control-Allow-Methods", "POST, GET, DELETE, OPTIONS",
                               "Access-Control-Allow-Headers",
                               "Content-Type, Accept, Authorization, X-API-Key, api_key, "
                               "Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID",
                               "Access-Control-Max-Age", "600", NULL, NULL};
        return queue(r, 204, NULL, NULL, 0, extra);
    }
    int is_post = strcmp(method, "POST") == 0, is_del = strcmp(method, "DELETE") == 0;
    /* credential */
    char err[200];
    int rc = sb_cred_extract(hdr_cb, r, &p->cred, err, sizeof err);
    if (rc < 0) return unauthorized(r, "invalid_request", err);
    if (rc == 0) {
        r->has_cred = 1;
        r->cred_kind = p->cred.kind;
        if (p->cred.kind == SB_CRED_BEARER && !h->o.oauth && !h->o.ptoken) {
            sb_cred_wipe(&p->cred);
            return unauthorized(r, "invalid_token",
                                "Bearer tokens are not accepted by this deployment: send your "
                                "provider API key instead");
        }
        if (p->cred.kind == SB_CRED_BEARER) {
            /* signbridge's own access token: the grant behind it supplies the upstream
             * credential; the client's token itself never goes upstream */
            char tok[SB_CRED_MAX + 1];
            size_t tl = p->cred.len;
            memcpy(tok, p->cred.secret, tl + 1);
            sb_cred_wipe(&p->cred);
            int arc = -1, done = 0;
            if (h->o.ptoken) {
                /* provider-token mode: the provider's own token, for the provider's API */
                int pr = provider_token(r, p, tok, tl, err, sizeof err);
                if (pr != SB_JWT_EISS || !h->o.oauth) {
                    done = 1;
                    arc = pr == SB_JWT_OK ? 0 : -1;
                }
            }
            if (!done && h->o.oauth)
                arc = sb_oauth_authenticate(h->o.oauth, tok, tl, p, err, sizeof err);
            else if (!done)
                snprintf(err, sizeof err, "the access token was not issued by a known issuer");
            explicit_bzero(tok, sizeof tok);
            if (arc == -1) return unauthorized(r, "invalid_token", err);
            if (arc < 0) {
                const char *extra[] = {"Retry-After", "2", NULL, NULL};
                return queue_rpc_error(r, 503, SB_RPC_SERVER_ERROR, err, extra);
            }
            sb_strlcpy(r->fingerprint, p->fingerprint, sizeof r->fingerprint);
        } else if (sb_keys_is_key(p->cred.secret, p->cred.len)) {
            /* a signbridge key: replaced by the provider credential it stands for; it never
             * goes upstream itself */
            char key[SB_KEY_LEN + 1];
            memcpy(key, p->cred.secret, SB_KEY_LEN + 1);
            sb_cred_wipe(&p->cred);
            p->cred.kind = r->cred_kind;
            int krc = h->o.keys ? sb_keys_authenticate(h->o.keys, key, SB_KEY_LEN, p, "/mcp", err,
                                                       sizeof err)
                                : -1;
            explicit_bzero(key, sizeof key);
            if (!h->o.keys) snprintf(err, sizeof err, "signbridge keys are not enabled here");
            if (krc == -1) return unauthorized(r, "invalid_token", err);
            if (krc < 0) {
                const char *extra[] = {"Retry-After", "2", NULL, NULL};
                return queue_rpc_error(r, 503, SB_RPC_SERVER_ERROR, err, extra);
            }
            sb_strlcpy(r->fingerprint, p->fingerprint, sizeof r->fingerprint);
        } else {
            sb_cred_fingerprint_k(h->fp, p->provider, &p->cred, r->fingerprint);
        }
    } else if (!h->o.anonymous_ok) {
        return unauthorized(r, NULL, NULL);
    } else {
        p->anonymous = 1;
    }
    sb_strlcpy(p->fingerprint, r->fingerprint, sizeof p->fingerprint);
    sb_strlcpy(p->request_id, r->request_id, sizeof p->request_id);
    const char *ro = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "read_only");
    const char *roh = hdr(r, H_READ_ONLY);
    p->read_only = p->read_only || (ro && (strcmp(ro, "1") == 0 || strcmp(ro, "true") == 0)) ||
                   (roh && (strcmp(roh, "1") == 0 || strcasecmp(roh, "true") == 0));
    /* "<fingerprint>:<route>[:ro]" (formatting it with snprintf was 2% of a tools/list) */
    size_t o = cat(r->owner, sizeof r->owner, 0, r->fingerprint);
    o = cat(r->owner, sizeof r->owner, o, ":");
    o = cat(r->owner, sizeof r->owner, o, p->route);
    if (p->read_only) cat(r->owner, sizeof r->owner, o, ":ro");
    drop_principal(r);
    r->pr = malloc(sb_principal_size(p));
    if (!r->pr)
        return queue_rpc_error(r, 503, SB_RPC_SERVER_ERROR, "Service Unavailable: out of memory",
                               NULL);
    memcpy(r->pr, p, sb_principal_size(p));
    /* after the credential: an unauthenticated GET gets the 401 challenge like every method */
    if (!is_post && !is_del) {
        const char *extra[] = {"Allow", "POST, DELETE", NULL, NULL};
        return queue_rpc_error(r, 405, SB_RPC_SERVER_ERROR,
                               "Method Not Allowed: this server does not offer a GET event "
                               "stream; POST JSON-RPC messages",
                               extra);
    }
    /* per-credential rate limit (docs/operations.md): every MCP POST and DELETE counts */
    if (h->o.ratelimit) {
        sb_ratelimit_refusal rf;
        if (sb_ratelimit_take(h->o.ratelimit, rl_key(r), &rf) == 1) return too_many(r, NULL, &rf);
    }
    if (is_post) {
        const char *ct = hdr(r, H_CONTENT_TYPE);
        if (!ct || !media_type_is(ct, "application/json"))
            return queue_rpc_error(r, 415, SB_RPC_SERVER_ERROR,
                                   "Unsupported Media Type: Content-Type must be application/json",
                                   NULL);
        if (!accept_ok(hdr(r, H_ACCEPT)))
            return queue_rpc_error(r, 406, SB_RPC_SERVER_ERROR,
                                   "Not Acceptable: Client must accept both application/json and "
                                   "text/event-stream",
                                   NULL);
        const char *cl = hdr(r, H_CONTENT_LENGTH);
        int64_t n;
        if (cl && sb_parse_i64(cl, 0, INT64_MAX, &n) == 0 &&
            (uint64_t)n > h->o.cfg->max_body_bytes) {
            r->too_big = 1;
            return too_large(r);
        }
    }
    return MHD_YES;
}

/* Checks made from the headers alone, before any body is read. Returns MHD_YES to go on reading
 * the body, or the result of queueing a refusal (r->status set). The principal is filled on this
 * thread's stack (its 4 KiB credential buffer is not kept per request) and wiped here. */
static MHD_RESULT_T mcp_precheck(req_ctx *r, const char *method)
{
    sb_principal p;
    memset(&p, 0, offsetof(sb_principal, cred.secret) + 1);
    sb_strlcpy(p.provider, r->provider, sizeof p.provider);
    sb_strlcpy(p.region_pin, r->region_pin, sizeof p.region_pin);
    sb_strlcpy(p.instance, r->instance, sizeof p.instance);
    sb_strlcpy(p.route, r->mcp_path, sizeof p.route);
    MHD_RESULT_T rc = mcp_precheck_p(r, method, &p);
    explicit_bzero(&p, offsetof(sb_principal, cred));
    sb_cred_wipe(&p.cred);
    return rc;
}

static MHD_RESULT_T mcp_finish(req_ctx *r, const char *method)
{
    if (!r->pr) /* mcp_precheck passed, so it is there: an invariant, answered all the same */
        return queue_rpc_error(r, 500, SB_RPC_INTERNAL_ERROR, "Internal error: no principal",
                               NULL);
    sb_mcp_req mreq = {
        .session_id = hdr(r, H_SESSION_ID),
        .protocol_version = hdr(r, H_PROTOCOL_VERSION),
        .fingerprint = r->owner,
        .request_id = r->request_id,
        .principal = r->pr,
        .principal_len = sb_principal_size(r->pr),
        .accept_encoding = hdr(r, H_ACCEPT_ENCODING),
    };
    if (mreq.session_id) sb_strlcpy(r->session, mreq.session_id, 9);
    /* per-credential cap on tools/call in flight: the slot is held until the call's last message
     * (call_ended) or the request's end, whichever comes first (the body is parsed a second time
     * only while a cap is configured) */
    sb_ratelimit_limits rll;
    sb_ratelimit_get(r->h->o.ratelimit, &rll);
    if (rll.max_concurrent_calls && strcmp(method, "POST") == 0 && r->body.data &&
        memmem(r->body.data, r->body.len, "tools/call", 10)) {
        cJSON *msg = cJSON_ParseWithLength(r->body.data, r->body.len);
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(msg, "method");
        if (cJSON_IsString(m) && strcmp(m->valuestring, "tools/call") == 0) {
            sb_ratelimit_refusal rf;
            if (sb_ratelimit_call_begin(r->h->o.ratelimit, rl_key(r), &rf) == 1) {
                sb_buf_free(&r->body);
                MHD_RESULT_T q = too_many(r, cJSON_GetObjectItemCaseSensitive(msg, "id"), &rf);
                cJSON_Delete(msg);
                return q;
            }
            r->rl_slot = 1;
        }
        cJSON_Delete(msg);
    }
    sb_mcp_reply rep;
    if (strcmp(method, "DELETE") == 0)
        sb_mcp_delete(r->h->o.mcp, &mreq, &rep);
    else
        sb_mcp_post(r->h->o.mcp, &mreq, r->body.data ? r->body.data : "", r->body.len, &rep);
    drop_principal(r); /* a call holds its own copy */
    sb_buf_free(&r->body);
    sb_strlcpy(r->rpc_method, rep.rpc_method, sizeof r->rpc_method);
    if (rep.session_id[0]) sb_strlcpy(r->session, rep.session_id, 9);
    if (rep.call) {
        r->call = rep.call;
        return drive_call(r);
    }
    const char *extra[10];
    size_t ne = 0;
    if (rep.content_encoding) {
        extra[ne++] = "Content-Encoding";
        extra[ne++] = rep.content_encoding;
    }
    if (rep.vary_encoding) {
        extra[ne++] = "Vary";
        extra[ne++] = "Accept-Encoding";
    }
    if (rep.session_id[0]) {
        extra[ne++] = "Mcp-Session-Id";
        extra[ne++] = rep.session_id;
    }
    if (rep.www_authenticate[0]) {
        extra[ne++] = "WWW-Authenticate";
        extra[ne++] = rep.www_authenticate;
    }
    extra[ne] = extra[ne + 1] = NULL;
    if (!rep.body) return queue(r, rep.status, NULL, NULL, 0, extra);
    return queue(r, rep.status, "application/json", rep.body, rep.body_len, extra);
}

/* ---- OAuth endpoints (src/auth/sb_oauth) ---------------------------------------------------- */

static const char *query_cb(void *ctx, const char *name)
{
    req_ctx *r = ctx;
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

static void oauth_req_init(req_ctx *r, const char *method, sb_oauth_req *rq)
{
    *rq = (sb_oauth_req){.method = method, .path = r->path, .query = query_cb, .header = hdr_cb,
                         .ctx = r, .body = r->body.data, .body_len = r->body.len,
                         .request_id = r->request_id};
}

static MHD_RESULT_T oauth_queue(req_ctx *r, sb_oauth_resp *out)
{
    const char *extra[2 * SB_OAUTH_MAX_HDRS + 2];
    size_t ne = 0;
    for (size_t i = 0; i < out->nh; i++) {
        extra[ne++] = out->hname[i];
        extra[ne++] = out->hval[i];
    }
    extra[ne] = extra[ne + 1] = NULL;
    char *body = out->body;
    size_t len = out->len;
    out->body = NULL;
    int head = r->method && strcmp(r->method, "HEAD") == 0;
    if (head) {
        free(body);
        body = NULL;
        len = 0;
    }
    MHD_RESULT_T rc = queue(r, out->status ? out->status : 500, out->ctype[0] ? out->ctype : NULL,
                            body, len, extra);
    sb_oauth_resp_free(out);
    return rc;
}

static MHD_RESULT_T oauth_continue(req_ctx *r);

/* An answer that waits on the network: park the connection until it is done. */
static MHD_RESULT_T oauth_wait(req_ctx *r, sb_oauth_pending *p)
{
    r->opend = p;
    if (sb_oauth_park(p, park_conn, wake_conn, r)) return MHD_YES;
    return oauth_continue(r);
}

static MHD_RESULT_T oauth_continue(req_ctx *r)
{
    sb_oauth_pending *p = r->opend, *next = NULL;
    if (sb_oauth_park(p, park_conn, wake_conn, r)) return MHD_YES; /* resumed early (shutdown) */
    r->opend = NULL;
    sb_oauth_req rq;
    oauth_req_init(r, r->method, &rq);
    sb_oauth_resp out;
    int rc = sb_oauth_resume(r->h->o.oauth, p, &rq, &out, &next);
    if (rc == 1) return oauth_wait(r, next);
    return oauth_queue(r, &out);
}

static MHD_RESULT_T oauth_run(req_ctx *r, const char *method)
{
    sb_oauth_req rq;
    oauth_req_init(r, method, &rq);
    sb_oauth_resp out;
    sb_oauth_pending *p = NULL;
    int rc = sb_oauth_handle(r->h->o.oauth, &rq, &out, &p);
    if (rc == 1) return oauth_wait(r, p);
    return oauth_queue(r, &out);
}

/* ---- /metrics ------------------------------------------------------------------------------ */

static MHD_RESULT_T serve_metrics(req_ctx *r, const char *method)
{
    sb_http *h = r->h;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        const char *extra[] = {"Allow", "GET, HEAD", NULL, NULL};
        return queue_rpc_error(r, 405, SB_RPC_SERVER_ERROR, "Method Not Allowed: use GET", extra);
    }
    sb_buf b;
    sb_buf_init(&b, 16u << 20);
    int rc = h->o.metrics_render ? h->o.metrics_render(h->o.metrics_ud, &b)
                                 : sb_metrics_render(sb_metrics_global(), &b);
    if (rc < 0) {
        sb_buf_free(&b);
        return queue_rpc_error(r, 500, SB_RPC_SERVER_ERROR, "Internal error: metrics", NULL);
    }
    size_t len = 0;
    char *body = sb_buf_detach(&b, &len);
    if (!body) return MHD_NO;
    const char *extra[] = {"Cache-Control", "no-store", NULL, NULL};
    return queue(r, 200, SB_METRICS_CONTENT_TYPE, body, len, extra);
}

/* The method label: the usual ones, everything else OTHER (clients choose methods). */
static const char *method_label(const char *m)
{
    static const char *const known[] = {"GET", "POST", "DELETE", "HEAD", "OPTIONS", "PUT", "PATCH"};
    for (size_t i = 0; m && i < sizeof known / sizeof known[0]; i++)
        if (strcmp(m, known[i]) == 0) return known[i];
    return "OTHER";
}

static void count_request(sb_http *h, const req_ctx *r, uint64_t dur_us)
{
    char status[4];
    int st = r->status >= 0 && r->status < 1000 ? r->status : 0, k = 0;
    if (st >= 100) status[k++] = (char)('0' + st / 100);
    if (st >= 10) status[k++] = (char)('0' + st / 10 % 10);
    status[k++] = (char)('0' + st % 10);
    status[k] = '\0';
    const char *route = route_names[r->route];
    const char *labels[] = {route, method_label(r->method), status};
    sb_metrics_inc(sb_metrics_series(h->m_requests, labels));
    sb_metrics_observe_us(h->m_duration[r->route], dur_us);
}

/* ---- libmicrohttpd callbacks -------------------------------------------------------------- */

/* 404 {"error":"not_found","error_description":...} */
static MHD_RESULT_T not_found(req_ctx *r, const char *description)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", "not_found");
    cJSON_AddStringToObject(o, "error_description", description);
    return queue_json(r, 404, o, NULL);
}

/* The first step of a request, once its headers are in: request id, Origin and Host checks,
 * routing; answers what can be answered without a body. MHD_YES without an answer queued means
 * the request goes on (its body, then the final step in on_request). */
static MHD_RESULT_T first_step(req_ctx *r, const char *url, const char *method)
{
    sb_http *h = r->h;
    const char *origin = hdr(r, H_ORIGIN);
    if (origin) {
        /* browser-based clients read metadata and call /token and /register cross-origin;
         * only the consent form must come from this origin */
        int open = r->route == R_OAUTH && strcmp(r->path, "/consent") != 0;
        if (!origin_allowed(h, origin) && !open)
            return queue_rpc_error(r, 403, SB_RPC_SERVER_ERROR,
                                   "Forbidden: Origin not allowed", NULL);
        if (!open) r->origin_ok = origin;
    }
    if (!host_allowed(h, hdr(r, H_HOST)))
        return queue_rpc_error(r, 403, SB_RPC_SERVER_ERROR, "Forbidden: Host not allowed",
                               NULL);
    if (atomic_load(&h->draining) && r->route != R_HEALTH && r->route != R_READY &&
        r->route != R_METRICS) {
        const char *extra[] = {"Retry-After", "1", "Connection", "close", NULL, NULL};
        return queue_rpc_error(r, 503, SB_RPC_SERVER_ERROR,
                               "Service Unavailable: this server is shutting down; retry",
                               extra);
    }
    switch (r->route) {
    case R_HEALTH: {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "status", "ok");
        return queue_json(r, 200, o, NULL);
    }
    case R_READY: {
        /* not ready while draining: load balancers stop sending before the listener closes */
        int draining = atomic_load(&h->draining);
        /* and not ready while a dependency (the store) does not answer */
        int unready = !draining && h->o.ready && h->o.ready(h->o.ready_ud) != 0;
        /* and not before the OAuth signing keys are loaded */
        int nokeys = !atomic_load(&h->keys_loaded);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "status",
                                draining ? "draining"
                                : unready ? "store_unavailable"
                                : nokeys  ? "keys_not_loaded"
                                          : "ready");
        cJSON_AddBoolToObject(o, "keys_loaded", !nokeys);
        cJSON_AddNumberToObject(o, "in_flight", atomic_load(&h->in_flight));
        return queue_json(r, draining || unready || nokeys ? 503 : 200, o, NULL);
    }
    case R_MCP:
        return mcp_precheck(r, method);
    case R_OAUTH: {
        int needs_body = 0;
        sb_oauth_is_endpoint(r->path, &needs_body);
        if (!needs_body || strcmp(method, "POST") != 0) return oauth_run(r, method);
        const char *cl = hdr(r, H_CONTENT_LENGTH);
        int64_t n;
        if (cl && sb_parse_i64(cl, 0, INT64_MAX, &n) == 0 && (uint64_t)n > SB_OAUTH_MAX_BODY) {
            r->too_big = 1;
            return too_large(r);
        }
        sb_buf_free(&r->body);
        sb_buf_init(&r->body, SB_OAUTH_MAX_BODY);
        return MHD_YES;
    }
    case R_METRICS:
        return serve_metrics(r, method);
    case R_FILE: {
        size_t len = 0;
        char mime[96] = "", name[160] = "", disp[220];
        void *data = h->o.file_get && strcmp(method, "GET") == 0
                         ? h->o.file_get(h->o.file_ud, url + 7, &len, mime, sizeof mime,
                                         name, sizeof name)
                         : NULL;
        if (!data)
            return not_found(r, "No such file, or its link has expired: download it again with "
                                "download_document.");
        for (char *c = name; *c; c++)
            if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20) *c = '_';
        snprintf(disp, sizeof disp, "attachment; filename=\"%s\"", name);
        const char *extra[] = {"Content-Disposition", disp, "Cache-Control", "no-store",
                               NULL, NULL};
        return queue(r, 200, mime[0] ? mime : "application/octet-stream", data, len, extra);
    }
    default:
        return not_found(r, "No such endpoint. MCP endpoints: /mcp, /{provider}/mcp, "
                            "/{provider}/{region}/mcp, /iinkedsign/private/{instance}/mcp.");
    }
}

/* A request that carries a body (Content-Length above 0, or chunked). */
static int has_body(req_ctx *r)
{
    const char *cl = hdr(r, H_CONTENT_LENGTH);
    return (cl && strcmp(cl, "0") != 0) || hdr(r, H_TRANSFER_ENCODING) != NULL;
}

/* Holds a new request over its lane's intake budget: suspended, at the end of the lane's list. */
static void hold(lane_srv *l, req_ctx *r)
{
    r->held = 1;
    if (r->h->m_held) sb_metrics_inc(r->h->m_held);
    r->held_prev = l->held_tail;
    r->held_next = NULL;
    if (l->held_tail)
        l->held_tail->held_next = r;
    else
        l->held_head = r;
    l->held_tail = r;
    MHD_suspend_connection(r->conn);
}

/* Takes r off its lane's held list (resumed, or the connection is going away). */
static void unhold(lane_srv *l, req_ctx *r)
{
    if (r->held_prev)
        r->held_prev->held_next = r->held_next;
    else
        l->held_head = r->held_next;
    if (r->held_next)
        r->held_next->held_prev = r->held_prev;
    else
        l->held_tail = r->held_prev;
    r->held_prev = r->held_next = NULL;
    r->held = 0;
}

static MHD_RESULT_T on_request(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    sb_http *h = cls;
    (void)version;
    req_ctx *r = *con_cls;
    lane_srv *ls = tl_lane >= 0 && (unsigned)tl_lane < h->nl ? &h->ls[tl_lane] : NULL;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        *con_cls = r;
        r->h = h;
        r->lane = tl_lane;
        r->conn = conn;
        r->start_us = sb_mono_us();
        r->method = method;
        atomic_fetch_add(&h->in_flight, 1);
        sb_metrics_gauge_add(h->m_in_flight, 1);
        if (ls && ls->run_intake >= INTAKE_BUDGET) {
            hold(ls, r);
            return MHD_YES;
        }
    }
    if (r->held) return MHD_YES; /* libmicrohttpd does not call a suspended connection: a guard */
    if (!r->started) {
        r->started = 1;
        if (ls) ls->run_intake++;
        sb_buf_init(&r->body, h->o.cfg->max_body_bytes);
        make_request_id(r);
        r->route = (enum route)parse_route(r, url);
        /* libmicrohttpd (0.9.75) closes the connection after an answer queued while it still
         * reads the request, even one without a body: a GET (health checks, metadata, metrics,
         * JWKS) is answered from the next call instead, and the connection stays open */
        if (!has_body(r)) {
            r->deferred = 1;
            return MHD_YES;
        }
        MHD_RESULT_T rc = first_step(r, url, method);
        /* a request that was held resumes with its body already there: on to it now */
        if (rc != MHD_YES || *upload_size == 0) return rc;
    }
    if (r->deferred) {
        r->deferred = 0;
        MHD_RESULT_T rc = first_step(r, url, method);
        if (rc != MHD_YES || r->status || r->call || r->opend) return rc;
        /* nothing answered yet: on to the final step, in this same call */
    }
    if (r->status) {
        /* already answered (refusal queued early): discard any body */
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->call) return drive_call(r);
    if (r->opend) return oauth_continue(r);
    if (*upload_size) {
        if (!r->too_big && sb_buf_append(&r->body, upload, *upload_size) != 0) {
            r->too_big = 1;
            sb_buf_free(&r->body);
        }
        if (r->too_big) {
            /* Read and discard the rest (bounded), so the client is not reset mid-send and can
             * read the 413; past the bound, answer at once and let MHD close. */
            r->discarded += *upload_size;
            *upload_size = 0;
            if (r->discarded > 4 * h->o.cfg->max_body_bytes + (1u << 20)) return too_large(r);
            return MHD_YES;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->too_big) return too_large(r);
    if (r->route == R_OAUTH) return oauth_run(r, method);
    return mcp_finish(r, method);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    sb_http *h = cls;
    (void)conn;
    req_ctx *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    if (r->held && r->lane >= 0 && (unsigned)r->lane < h->nl) unhold(&h->ls[r->lane], r);
    if (r->call) sb_mcp_call_detach(r->call);
    if (r->opend) sb_oauth_pending_drop(r->opend);
    call_ended(r); /* a slot still held: the client went away, or the call never finished */
    uint64_t dur_us = sb_mono_us() - r->start_us;
    if (h->metrics_on) count_request(h, r, dur_us);
    sb_log_line l; /* written in place: a cJSON tree printed took more than a tools/list */
    if (sb_log_line_begin(&l, SB_LOG_INFO, "http_request") == 0) {
        sb_log_line_str(&l, "request_id", r->request_id);
        sb_log_line_str(&l, "method", r->method ? r->method : "");
        sb_log_line_str(&l, "path", r->path);
        sb_log_line_num(&l, "status", r->status);
        sb_log_line_num(&l, "duration_us", (double)dur_us);
        sb_log_line_num(&l, "bytes_out", (double)r->bytes_out);
        if (r->rpc_method[0]) sb_log_line_str(&l, "rpc_method", r->rpc_method);
        if (r->session[0]) sb_log_line_str(&l, "session", r->session);
        if (r->has_cred) {
            char fp[13];
            sb_strlcpy(fp, r->fingerprint, sizeof fp);
            sb_log_line_str(&l, "credential", sb_cred_kind_name(r->cred_kind));
            sb_log_line_str(&l, "fingerprint", fp);
        }
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
            sb_log_line_num(&l, "terminated", (double)toe);
        sb_log_line_end(&l);
    }
    sb_buf_free(&r->body);
    free(r->ev);
    drop_principal(r);
    free(r);
    sb_metrics_gauge_add(h->m_in_flight, -1);
    atomic_fetch_sub(&h->in_flight, 1);
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
    sb_log_msg(SB_LOG_DEBUG, "mhd", "%s", msg);
}

/* ---- start / stop ------------------------------------------------------------------------- */

int sb_http_parse_listen(const char *l, struct sockaddr_storage *ss, socklen_t *len, int *loopback)
{
    const char *colon = strrchr(l, ':');
    if (!colon) return -1;
    int64_t port;
    if (sb_parse_i64(colon + 1, 0, 65535, &port) < 0) return -1;
    char host[128];
    size_t hl = (size_t)(colon - l);
    if (hl == 0 || hl >= sizeof host) return -1;
    memcpy(host, l, hl);
    host[hl] = '\0';
    memset(ss, 0, sizeof *ss);
    if (host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1) return -1;
        *loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
        *len = sizeof *s6;
        return 0;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0) sb_strlcpy(host, "127.0.0.1", sizeof host);
    if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) return -1;
    *loopback = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
    *len = sizeof *s4;
    return 0;
}

/* ---- daemons ------------------------------------------------------------------------------ */

static unsigned daemon_flags(const struct sockaddr_storage *ss, unsigned mode)
{
    unsigned flags = mode | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ss->ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    return flags;
}

/* Without lanes: one daemon, its own epoll threads (http_threads of them). */
static int start_pool(sb_http *h, struct sockaddr_storage *ss)
{
    const sb_config *c = h->o.cfg;
    h->d = MHD_start_daemon(
        daemon_flags(ss, MHD_USE_EPOLL_INTERNAL_THREAD), 0, NULL, NULL, on_request, h,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)ss, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)c->http_threads, MHD_OPTION_CONNECTION_LIMIT, (unsigned)c->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)c->connection_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)c->max_header_bytes,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)4096, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h, MHD_OPTION_END);
    if (!h->d) return -1;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : 0;
    return 0;
}

static int lane_load(lane_srv *l)
{
    return atomic_load(&l->conns) + atomic_load(&l->pending);
}

static void lane_accept(void *arg);

/* Watch the listening socket on this lane (or stop): lane thread only. */
static void lane_listen(lane_srv *l, int on)
{
    sb_http *h = l->h;
    on = on && !l->closing && !atomic_load(&h->draining) && h->lsock >= 0;
    if (on == l->watching) return;
    if (sb_up_lane_watch(h->o.up, l->i, on ? h->lsock : -1, lane_accept, l) == 0) l->watching = on;
}

/* A connection accepted by lane l: to the lane holding the fewest (l itself on a tie, or when
 * the other's inbox is full); libmicrohttpd closes it if the daemon cannot take it. */
static void lane_place(lane_srv *l, handed *c)
{
    sb_http *h = l->h;
    lane_srv *best = l;
    int bl = lane_load(l);
    for (unsigned k = 0; k < h->nl; k++) {
        int ld = lane_load(&h->ls[k]);
        if (ld < bl) best = &h->ls[k], bl = ld;
    }
    if (best != l) {
        pthread_mutex_lock(&best->mu);
        int ok = best->open && best->ninbox < INBOX_MAX;
        if (ok) {
            best->inbox[best->ninbox++] = *c;
            atomic_fetch_add(&best->pending, 1);
        }
        pthread_mutex_unlock(&best->mu);
        if (ok) {
            sb_up_lane_kick(h->o.up, best->i);
            return;
        }
    }
    MHD_add_connection(h->ds[l->i], c->fd, (struct sockaddr *)&c->addr, c->len);
}

/* The listening socket is readable on lane l's thread. */
static void lane_accept(void *arg)
{
    lane_srv *l = arg;
    sb_http *h = l->h;
    for (int n = 0; n < ACCEPT_BATCH; n++) {
        /* every lane full: leave the rest in the kernel's queue until a connection closes (what
         * libmicrohttpd does at its limit) */
        int room = 0;
        for (unsigned k = 0; k < h->nl && !room; k++)
            room = lane_load(&h->ls[k]) < (int)h->lane_limit;
        if (!room) {
            lane_listen(l, 0);
            return;
        }
        handed c = {.len = sizeof c.addr};
        c.fd = accept4(h->lsock, (struct sockaddr *)&c.addr, &c.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c.fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* out of descriptors: a level-triggered socket would wake this lane in a loop */
                sb_log_msg(SB_LOG_WARN, "http_accept", "%s; not accepting for 100 ms", strerror(errno));
                lane_listen(l, 0);
                l->resume_ms = sb_mono_ms() + 100;
            }
            return; /* EAGAIN: taken by another lane, or none left */
        }
        lane_place(l, &c);
    }
}

/* Connections start and close on their lane's thread. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)c;
    (void)socket_context;
    sb_http *h = cls;
    if (tl_lane < 0 || (unsigned)tl_lane >= h->nl) return;
    lane_srv *l = &h->ls[tl_lane];
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        atomic_fetch_add(&l->conns, 1);
        if (l->m_conns) sb_metrics_gauge_add(l->m_conns, 1);
    } else {
        atomic_fetch_sub(&l->conns, 1);
        if (l->m_conns) sb_metrics_gauge_add(l->m_conns, -1);
        if (!l->watching && !l->resume_ms) lane_listen(l, 1); /* room again */
    }
}

static void lane_run(void *arg)
{
    lane_srv *l = arg;
    sb_http *h = l->h;
    if (l->resume_ms && sb_mono_ms() >= l->resume_ms) {
        l->resume_ms = 0;
        lane_listen(l, 1);
    }
    /* connections handed over by other lanes (a hand-off always kicks this lane, so reading no
     * pending ones without the lock misses none) */
    while (atomic_load(&l->pending) > 0) {
        handed in[16];
        size_t n = 0;
        pthread_mutex_lock(&l->mu);
        n = l->ninbox < sizeof in / sizeof in[0] ? l->ninbox : sizeof in / sizeof in[0];
        memcpy(in, l->inbox, n * sizeof in[0]); /* oldest first */
        memmove(l->inbox, l->inbox + n, (l->ninbox - n) * sizeof in[0]);
        l->ninbox -= n;
        pthread_mutex_unlock(&l->mu);
        if (!n) break;
        for (size_t k = 0; k < n; k++) {
            /* counted by the daemon's notification from here on */
            atomic_fetch_sub(&l->pending, 1);
            MHD_add_connection(h->ds[l->i], in[k].fd, (struct sockaddr *)&in[k].addr, in[k].len);
        }
    }
    /* a new run, a new budget: the oldest held requests go first (they count against it) */
    l->run_intake = 0;
    for (unsigned k = 0; k < INTAKE_BUDGET && l->held_head; k++) {
        req_ctx *r = l->held_head;
        unhold(l, r);
        MHD_resume_connection(r->conn);
    }
    MHD_run(h->ds[l->i]);
}

static long lane_timeout(void *arg)
{
    lane_srv *l = arg;
    MHD_UNSIGNED_LONG_LONG t;
    long ms = -1;
    if (l->held_head) return 0; /* held requests wait for the next run */
    if (MHD_get_timeout(l->h->ds[l->i], &t) == MHD_YES)
        ms = t > (MHD_UNSIGNED_LONG_LONG)INT_MAX ? INT_MAX : (long)t;
    if (l->resume_ms) {
        uint64_t now = sb_mono_ms();
        long r = l->resume_ms > now ? (long)(l->resume_ms - now) : 0;
        if (ms < 0 || r < ms) ms = r;
    }
    return ms;
}

/* Stop taking connections, and close what was handed to lane l and never added. */
static void lane_drop_inbox(lane_srv *l)
{
    pthread_mutex_lock(&l->mu);
    l->open = 0;
    for (size_t k = 0; k < l->ninbox; k++) close(l->inbox[k].fd);
    atomic_fetch_sub(&l->pending, (int)l->ninbox);
    l->ninbox = 0;
    pthread_mutex_unlock(&l->mu);
}

typedef struct lane_op {
    sb_http *h;
    unsigned i;
    int rc;
} lane_op;

static void lane_attach_fn(void *arg)
{
    lane_op *op = arg;
    lane_srv *l = &op->h->ls[op->i];
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(op->h->ds[op->i], MHD_DAEMON_INFO_EPOLL_FD);
    tl_lane = (int)op->i; /* this thread runs lane i from now on */
    op->rc = di ? sb_up_lane_attach(op->h->o.up, op->i, di->epoll_fd, lane_run, lane_timeout, l)
                : -1;
    if (op->rc == 0) {
        lane_listen(l, 1);
        if (!l->watching) op->rc = -1;
    }
    if (op->rc == 0) {
        pthread_mutex_lock(&l->mu);
        l->open = 1;
        pthread_mutex_unlock(&l->mu);
    }
}

static void lane_quiesce_fn(void *arg)
{
    lane_op *op = arg;
    lane_listen(&op->h->ls[op->i], 0); /* the listening socket is ours: the lane lets go of it */
}

static void lane_stop_fn(void *arg)
{
    lane_op *op = arg;
    struct MHD_Daemon *d = op->h->ds[op->i];
    if (!d) return;
    lane_listen(&op->h->ls[op->i], 0);
    op->h->ls[op->i].closing = 1; /* connections closing below must not re-arm the accept */
    sb_up_lane_attach(op->h->o.up, op->i, -1, NULL, NULL, NULL);
    lane_drop_inbox(&op->h->ls[op->i]);
    MHD_stop_daemon(d); /* suspended connections are resumed and closed; on this thread */
    op->h->ds[op->i] = NULL;
}

static void stop_lanes(sb_http *h)
{
    for (unsigned i = 0; i < h->nd; i++) {
        lane_op op = {.h = h, .i = i};
        if (!h->ds[i]) continue;
        if (sb_up_lane_call(h->o.up, i, lane_stop_fn, &op) < 0) {
            /* the lane is gone (engine stopped first): nothing runs the daemon any more */
            lane_drop_inbox(&h->ls[i]);
            MHD_stop_daemon(h->ds[i]);
            h->ds[i] = NULL;
        }
    }
    h->nd = 0;
    if (h->lsock >= 0) close(h->lsock);
    h->lsock = -1;
}

/* With lanes: one listening socket, one daemon per serving lane of the upstream engine, each
 * run by its lane's thread (MHD in external epoll mode). A proxied call is parsed, sent upstream,
 * mapped and answered on one thread. */
static int start_lanes(sb_http *h, struct sockaddr_storage *ss, socklen_t sl, unsigned nl)
{
    const sb_config *c = h->o.cfg;
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss->ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    struct sockaddr_storage bound;
    socklen_t bl = sizeof bound;
    if (bind(fd, (struct sockaddr *)ss, sl) < 0 || listen(fd, 4096) < 0 ||
        getsockname(fd, (struct sockaddr *)&bound, &bl) < 0) {
        close(fd);
        return -1;
    }
    h->lsock = fd;
    h->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    /* the connection limit is shared out between the daemons */
    unsigned limit = (unsigned)((c->max_connections + nl - 1) / nl);
    if (limit < 1) limit = 1;
    h->lane_limit = limit;
    h->nl = nl;
    for (unsigned i = 0; i < nl; i++) {
        h->ls[i].h = h;
        h->ls[i].i = i;
        pthread_mutex_init(&h->ls[i].mu, NULL);
    }
    for (unsigned i = 0; i < nl; i++) {
        h->ds[i] = MHD_start_daemon(
            daemon_flags(ss, MHD_USE_EPOLL | MHD_USE_NO_LISTEN_SOCKET), 0, NULL, NULL, on_request,
            h, MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_CONNECTION_TIMEOUT,
            (unsigned)c->connection_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
            (size_t)c->max_header_bytes, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
            MHD_OPTION_NOTIFY_CONNECTION, on_connection, h, MHD_OPTION_EXTERNAL_LOGGER,
            on_mhd_log, h, MHD_OPTION_END);
        if (!h->ds[i]) break;
        h->nd = i + 1;
        lane_op op = {.h = h, .i = i, .rc = -1};
        if (sb_up_lane_call(h->o.up, i, lane_attach_fn, &op) < 0 || op.rc < 0) break;
    }
    if (h->nd == nl && h->ds[nl - 1]) return 0;
    stop_lanes(h);
    return -1;
}

sb_http *sb_http_start(const sb_http_options *o, char *err, size_t errlen)
{
    sb_http *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->o = *o;
    atomic_init(&h->in_flight, 0);
    atomic_init(&h->keys_loaded, !o->keys_pending);
    atomic_init(&h->origins, NULL);
    h->fp = sb_cred_fpkey_new(o->secret, 32);
    if (!h->fp ||
        sb_http_set_allowed_origins(h, o->cfg->allowed_origins, o->cfg->n_allowed_origins) < 0) {
        snprintf(err, errlen, "out of memory");
        sb_cred_fpkey_free(h->fp);
        free(h);
        return NULL;
    }
    h->metrics_on = o->cfg->metrics.enabled;
    if (h->metrics_on) {
        sb_metrics *m = sb_metrics_global();
        static const char *const req_labels[] = {"route", "method", "status"};
        static const char *const route_label[] = {"route"};
        h->m_requests = sb_metrics_family(
            m, SB_METRIC_COUNTER, "signbridge_http_requests_total",
            "HTTP requests answered, by route kind, method and status.", 3, req_labels);
        sb_mfamily *dur = sb_metrics_family(
            m, SB_METRIC_HISTOGRAM, "signbridge_http_request_duration_seconds",
            "Time from the request line to the end of the response, by route kind.", 1,
            route_label);
        for (size_t i = 0; i < sizeof route_names / sizeof route_names[0]; i++)
            h->m_duration[i] = sb_metrics_series(dur, (const char *const[]){route_names[i]});
        h->m_in_flight = sb_metrics_series(
            sb_metrics_family(m, SB_METRIC_GAUGE, "signbridge_http_in_flight",
                              "HTTP requests in progress.", 0, NULL),
            NULL);
        h->m_held = sb_metrics_series(
            sb_metrics_family(m, SB_METRIC_COUNTER, "signbridge_http_requests_held_total",
                              "Requests held back over a lane's intake budget (" STR(
                                  INTAKE_BUDGET) " new requests per run) and started in a later "
                                                 "run.",
                              0, NULL),
            NULL);
        unsigned nl = o->up ? sb_up_lanes(o->up) : 0;
        sb_mfamily *lc = nl ? sb_metrics_family(
                                  m, SB_METRIC_GAUGE, "signbridge_http_connections",
                                  "Open client connections, by the serving lane that holds them.",
                                  1, (const char *const[]){"lane"})
                            : NULL;
        for (unsigned i = 0; lc && i < nl && i < SB_UP_MAX_LANES; i++) {
            char v[12];
            snprintf(v, sizeof v, "%u", i);
            h->ls[i].m_conns = sb_metrics_series(lc, (const char *const[]){v});
        }
    }
    struct sockaddr_storage ss;
    socklen_t sl;
    if (sb_http_parse_listen(o->cfg->listen, &ss, &sl, &h->loopback) < 0) {
        snprintf(err, errlen, "listen: cannot parse address %s", o->cfg->listen);
        free(atomic_load(&h->origins));
        sb_cred_fpkey_free(h->fp);
        free(h);
        return NULL;
    }
    h->lsock = -1;
    h->qsock = -1;
    unsigned nl = o->up ? sb_up_lanes(o->up) : 0;
    if (nl > 0 ? start_lanes(h, &ss, sl, nl) < 0 : start_pool(h, &ss) < 0) {
        snprintf(err, errlen, "cannot listen on %s (address in use or not permitted)",
                 o->cfg->listen);
        free(atomic_load(&h->origins));
        sb_cred_fpkey_free(h->fp);
        free(h);
        return NULL;
    }
    if (o->cfg->public_url[0]) {
        sb_strlcpy(h->public_url, o->cfg->public_url, sizeof h->public_url);
        size_t n = strlen(h->public_url);
        while (n && h->public_url[n - 1] == '/') h->public_url[--n] = '\0';
    } else {
        char host[128];
        const char *colon = strrchr(o->cfg->listen, ':');
        size_t hl = (size_t)(colon - o->cfg->listen);
        memcpy(host, o->cfg->listen, hl);
        host[hl] = '\0';
        if (strcmp(host, "0.0.0.0") == 0) sb_strlcpy(host, "127.0.0.1", sizeof host);
        if (strcmp(host, "[::]") == 0) sb_strlcpy(host, "[::1]", sizeof host);
        snprintf(h->public_url, sizeof h->public_url, "http://%s:%u", host, h->port);
    }
    const char *hp = strstr(h->public_url, "://");
    if (hp) sb_strlcpy(h->public_host, hp + 3, sizeof h->public_host);
    char *slash = strchr(h->public_host, '/');
    if (slash) *slash = '\0';
    snprintf(h->prm_base, sizeof h->prm_base, "%s/.well-known/oauth-protected-resource",
             h->public_url);
    return h;
}

int sb_http_set_allowed_origins(sb_http *h, const char (*origins)[256], size_t n)
{
    if (!h) return -1;
    origin_list *ol = calloc(1, sizeof *ol);
    if (!ol) return -1;
    for (size_t i = 0; origins && i < n && i < SB_MAX_ORIGINS; i++)
        sb_strlcpy(ol->o[ol->n++], origins[i], sizeof ol->o[0]);
    /* one writer (start, then the signal thread): the chain of retired lists is freed at stop */
    ol->retired = atomic_load(&h->origins);
    atomic_store(&h->origins, ol);
    return 0;
}

void sb_http_set_keys_loaded(sb_http *h, int loaded)
{
    if (h) atomic_store(&h->keys_loaded, loaded ? 1 : 0);
}

void sb_http_set_oauth(sb_http *h, sb_oauth *o)
{
    __atomic_store_n(&h->o.oauth, o, __ATOMIC_RELEASE);
}

unsigned sb_http_port(const sb_http *h)
{
    return h->port;
}

const char *sb_http_public_url(const sb_http *h)
{
    return h->public_url;
}

void sb_http_quiesce(sb_http *h)
{
    atomic_store(&h->draining, 1);
    if (h->d) {
        /* new connections are refused at once (shutdown), but the descriptor stays open until
         * MHD_stop_daemon (sb_http_stop), as libmicrohttpd asks: the daemon's thread takes it out
         * of its epoll set after the quiesce, and aborts the process if it is closed by then */
        if (h->qsock < 0) {
            h->qsock = MHD_quiesce_daemon(h->d);
            if (h->qsock >= 0) shutdown(h->qsock, SHUT_RDWR);
        }
        return;
    }
    if (h->quiesced) return;
    for (unsigned i = 0; i < h->nd; i++) {
        lane_op op = {.h = h, .i = i};
        sb_up_lane_call(h->o.up, i, lane_quiesce_fn, &op);
    }
    h->quiesced = 1;
    if (h->lsock >= 0) close(h->lsock); /* no daemon watches it any more */
    h->lsock = -1;
}

unsigned sb_http_in_flight(const sb_http *h)
{
    return atomic_load(&((sb_http *)h)->in_flight);
}

void sb_http_stop(sb_http *h)
{
    if (!h) return;
    if (h->d) {
        MHD_stop_daemon(h->d);
        if (h->qsock >= 0) close(h->qsock);
    } else {
        stop_lanes(h);
    }
    for (origin_list *ol = atomic_load(&h->origins); ol;) {
        origin_list *next = ol->retired;
        free(ol);
        ol = next;
    }
    sb_cred_fpkey_free(h->fp);
    for (unsigned i = 0; i < h->nl; i++) pthread_mutex_destroy(&h->ls[i].mu);
    free(h);
}
