/* sb_up: the asynchronous upstream HTTP engine: event-loop threads ("lanes"), each owning one
 * libcurl multi handle (socket-action + epoll), connection reuse and HTTP/2, deadlines on
 * everything, bounded responses, retries for idempotent requests only, https only, and a
 * destination-IP filter. It moves bytes and knows no provider protocol.
 *
 * Lane 0 is the shared engine: it runs requests submitted from any thread. Serving lanes
 * (options.lanes of them) each also run one external event source -- the HTTP server attaches a
 * libmicrohttpd daemon to each -- and run the requests their own thread submits with `local`
 * set, so a proxied call's request, upstream transfer and reply stay on one thread with no
 * cross-thread wake-up (../shared/reference/c-service-practice.md 2.5, design C). */
#ifndef SB_UP_H
#define SB_UP_H
#include <stddef.h>
#include <stdint.h>

typedef struct sb_up sb_up;

#define SB_UP_MAX_ALLOW 16
#define SB_UP_MAX_LANES 16

typedef struct sb_up_options {
    const char *ca_file;              /* PEM bundle for TLS verification; NULL = system store */
    unsigned max_host_connections;    /* per host; 0 = 1024 (HTTP/1.1 upstreams need one per concurrent call) */
    unsigned connect_timeout_ms;      /* 0 = 5000 */
    size_t max_response_bytes;        /* default cap per response; 0 = 8 MiB */
    unsigned max_retries;             /* for idempotent requests (0 = none) */
    unsigned backoff_base_ms;         /* 0 = 200 */
    /* URL prefixes that may be fetched over plain http (e.g. the sandbox). Everything else must be
     * https. NULL-terminated, copied. */
    const char *const *http_allowed_prefixes;
    /* Destinations in loopback, private, link-local, CGNAT, ULA or unspecified ranges are refused
     * unless listed here as "ADDR" or "ADDR/PREFIX" (IPv4 or IPv6). NULL-terminated, copied. */
    const char *const *allowed_networks;
    unsigned lanes;                   /* serving lanes besides the shared one (0..SB_UP_MAX_LANES) */
    /* A lane that has run this many microseconds without waiting for an event gives its core
     * away once (sched_yield) before its next wait, so that other runnable threads on a saturated
     * host get a turn sooner than the scheduler's tick; 0 = never. */
    unsigned yield_us;
    /* A serving lane polls its events for up to this many microseconds before it sleeps, the
     * window adapting to how soon events come (sb_up.c, lane_wait); 0 = never. */
    unsigned poll_us;
} sb_up_options;

enum {
    SB_UP_OK = 0,
    SB_UP_ETIMEDOUT = -1,  /* the deadline passed */
    SB_UP_ECONNECT = -2,   /* could not connect (after retries, for idempotent requests) */
    SB_UP_ETOOBIG = -3,    /* the response exceeded its cap */
    SB_UP_ECANCELLED = -4, /* sb_up_cancel or shutdown */
    SB_UP_EREFUSED = -5,   /* refused by policy: scheme, destination address */
    SB_UP_EIO = -6,        /* any other transfer failure (reset, malformed HTTP, TLS) */
};

typedef struct sb_up_request {
    const char *method;           /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *url;              /* absolute */
    const char *const *headers;   /* "Name: value" lines, NULL-terminated; copied */
    const char *body;             /* copied; may be NULL */
    size_t body_len;
    int idempotent;               /* retries allowed (reads); never set for sends or actions */
    unsigned timeout_ms;          /* total deadline including retries and backoff; 0 = 30000 */
    size_t max_response;          /* 0 = the engine default */
    int policy;                   /* SB_UP_POLICY_*: which destinations this request may reach */
    /* 1: when submitted on a serving lane's thread, run it on that lane (its callback then runs
     * there too). Only for callers that never block waiting for the result: a lane thread that
     * waits for its own lane's transfer would wait forever. 0: the shared lane. */
    int local;
} sb_up_request;

/* Destination policy per request. DEFAULT: the engine's options (https, or an http prefix it
 * allows; public addresses, or a network it allows). PUBLIC: https only and public addresses only,
 * whatever the engine allows (fetching URLs a client supplied, e.g. OAuth client metadata).
 * TRUSTED: http or https to any address (only for URLs an operator allow-listed). */
enum { SB_UP_POLICY_DEFAULT = 0, SB_UP_POLICY_PUBLIC = 1, SB_UP_POLICY_TRUSTED = 2 };

typedef struct sb_up_result {
    int error;                    /* SB_UP_OK or SB_UP_E* */
    int status;                   /* HTTP status of the last attempt (0 when none arrived) */
    const char *error_text;       /* human-readable detail when error != 0 */
    const char *body;             /* the response body (NUL-terminated; valid during the callback) */
    size_t body_len;
    unsigned attempts;
    uint64_t elapsed_us;
    const void *hdrs_;            /* private: use sb_up_header */
    void *job_;                   /* private: sb_up_take */
} sb_up_result;

/* A response header of the final attempt (case-insensitive name), or NULL. The value lives in a
 * per-thread buffer valid until the next sb_up_header call on the same thread. */
const char *sb_up_header(const sb_up_result *r, const char *name);

/* Inside the `done` callback: take the response's body and its raw header block instead of
 * copying them (both malloc'd and NUL-terminated; free() them): *body gets r->body's bytes
 * (body_len of them), *hdrs the block sb_up_header reads (an sb_up_result whose hdrs_ is that
 * block reads the same). r->body and sb_up_header(r, ...) must not be used afterwards. 0, or -1
 * (nothing taken) when r is no live result. */
int sb_up_take(const sb_up_result *r, char **body, char **hdrs);
/* Called exactly once per accepted request, on the thread of the lane that ran it. The result and everything it
 * points to are valid only during the call: copy what you keep. Do not block here. */
typedef void (*sb_up_done_fn)(const sb_up_result *r, void *arg);

sb_up *sb_up_start(const sb_up_options *o, char *err, size_t errlen);
/* Queue a request (everything is copied). 0 and *id (may be NULL) on success; -1 when the engine
 * is stopping or out of memory -- then `done` is never called. Thread-safe. */
int sb_up_submit(sb_up *u, const sb_up_request *rq, sb_up_done_fn done, void *arg, uint64_t *id);
/* Cancel a queued or running request: its `done` runs with SB_UP_ECANCELLED (unless it already
 * ran). Thread-safe; asynchronous. */
void sb_up_cancel(sb_up *u, uint64_t id);
/* Requests accepted and not yet completed. */
unsigned sb_up_in_flight(const sb_up *u);
/* The number of serving lanes (options.lanes). */
unsigned sb_up_lanes(const sb_up *u);
/* sched_yield calls the lanes have made (sb_up_options.yield_us), all lanes together. */
uint64_t sb_up_yields(const sb_up *u);
/* The serving lanes' polls before a wait (sb_up_options.poll_us), all lanes together: those that
 * found an event (*events) and those that ran out and slept (*sleeps). */
void sb_up_polls(const sb_up *u, uint64_t *events, uint64_t *sleeps);
/* Run fn(arg) on serving lane i's thread (0-based) and wait until it returns; on that thread
 * itself it runs at once. 0, or -1 (no such lane, or stopping: fn did not run). */
int sb_up_lane_call(sb_up *u, unsigned i, void (*fn)(void *), void *arg);
/* Only on serving lane i's thread (inside sb_up_lane_call): watch `fd` for reading and call
 * run(arg) on this thread when it is readable, or when the milliseconds timeout(arg) returns
 * (-1 = none; asked before every wait) have passed; run also follows the transfers' callbacks
 * of the same turn. One source per lane: a new one replaces the old; fd < 0 detaches. The
 * source is borrowed: detach it before freeing it. 0 or -1. */
int sb_up_lane_attach(sb_up *u, unsigned i, int fd, void (*run)(void *), long (*timeout)(void *),
                      void *arg);
/* Only on serving lane i's thread (inside sb_up_lane_call): also watch `fd` for reading (with
 * EPOLLEXCLUSIVE, so one listening socket watched by every lane wakes one of them per event) and
 * call ready(arg) on this thread when it is readable, just before the source runs in that turn.
 * One watch per lane; fd < 0 removes it. 0 or -1. */
int sb_up_lane_watch(sb_up *u, unsigned i, int fd, void (*ready)(void *), void *arg);
/* Make serving lane i run its source soon (at the end of its current turn, or at once if it is
 * waiting). Thread-safe and cheap: the HTTP server calls it after resuming a connection from any
 * thread, since libmicrohttpd has no wake-up channel of its own in external mode. */
void sb_up_lane_kick(sb_up *u, unsigned i);
/* On a serving lane's own thread, outside any `done` callback: run now the callbacks of this
 * lane's transfers that have already completed -- what the lane's next turn would do first. A
 * handler that submitted a `local` request calls it before it parks its connection: on a fast
 * upstream the whole answer often arrives while libcurl sends the request (sb_up_submit lets it
 * send at once), and the call is then answered in the same turn, without suspending and resuming
 * the connection and a second turn of the loop. Returns how many callbacks ran; 0 (and nothing
 * runs) on any other thread or inside a callback. */
int sb_up_lane_reap(sb_up *u);
/* Cancel everything still running (callbacks run with SB_UP_ECANCELLED), stop the threads, free. */
void sb_up_stop(sb_up *u);

/* 1 if the address (IPv4 or IPv6, as text) is in a range refused by default. For tests. */
int sb_up_address_is_private(const char *ip);

#endif
