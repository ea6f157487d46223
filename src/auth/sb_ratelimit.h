/* sb_ratelimit: per-credential limits on MCP requests: a token bucket per credential fingerprint
 * (in memory on one machine, in the store when replicas share PostgreSQL) and a cap on the
 * tools/call requests one credential has in flight (per process on one machine; across replicas
 * through leased slot records in the store when shared, at most 64). docs/operations.md. */
#ifndef SB_RATELIMIT_H
#define SB_RATELIMIT_H
#include <stddef.h>

struct sb_store;
typedef struct sb_ratelimit sb_ratelimit;

/* The limits; every field 0 = that limit is off. burst 0 = requests_per_minute / 6, at least 1. */
typedef struct sb_ratelimit_limits {
    unsigned requests_per_minute;
    unsigned burst;
    unsigned max_concurrent_calls;
} sb_ratelimit_limits;

/* Which limit refused a request. */
typedef enum { SB_RATELIMIT_RATE = 1, SB_RATELIMIT_CONCURRENCY = 2 } sb_ratelimit_kind;

typedef struct sb_ratelimit_refusal {
    sb_ratelimit_kind kind;
    unsigned retry_after_s;     /* at least 1 */
    sb_ratelimit_limits limits; /* the limits in force when it was refused */
} sb_ratelimit_refusal;

/* A new limiter. store (borrowed, may be NULL) is used for the buckets when shared is 1 (several
 * replicas on one database); otherwise the buckets live in this process. Free with
 * sb_ratelimit_free (no call may be in progress). NULL when out of memory. */
sb_ratelimit *sb_ratelimit_new(struct sb_store *store, int shared, const sb_ratelimit_limits *l);
void sb_ratelimit_free(sb_ratelimit *rl);

/* Replace the limits (SIGHUP); thread-safe, takes effect for the next request. */
void sb_ratelimit_configure(sb_ratelimit *rl, const sb_ratelimit_limits *l);
void sb_ratelimit_get(const sb_ratelimit *rl, sb_ratelimit_limits *out);

/* Count one request of credential `key` (a fingerprint, never the credential). 0 = allowed, 1 =
 * refused (*out filled), negative on bad arguments. A store that does not answer allows the
 * request (fail open) and logs a warning at most every 10 s. Thread-safe. */
int sb_ratelimit_take(sb_ratelimit *rl, const char *key, sb_ratelimit_refusal *out);

/* A tools/call begins: 0 = admitted (the caller must call sb_ratelimit_call_end with the same key
 * when the request ends), 1 = refused (*out filled; do not call _end). Thread-safe. */
int sb_ratelimit_call_begin(sb_ratelimit *rl, const char *key, sb_ratelimit_refusal *out);
void sb_ratelimit_call_end(sb_ratelimit *rl, const char *key);

/* The limit's label for metrics and messages: "rate" or "concurrency" (static). */
const char *sb_ratelimit_kind_name(sb_ratelimit_kind k);

#endif
