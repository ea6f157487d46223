/* sb_session: MCP sessions: random ids bound to a credential fingerprint, idle expiry, and the
 * per-session tables of in-flight requests and server-to-client requests. */
#ifndef SB_SESSION_H
#define SB_SESSION_H
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#define SB_SESSION_ID_LEN 43  /* base64url of 32 random bytes (256 bits) */
#define SB_FP_MAX 200         /* owner key capacity: credential fingerprint + route */

typedef struct sb_session_entry {
    struct sb_session_entry *next; /* bucket chain */
    uint32_t hash;                 /* FNV-1a of key */
    char key[80];                  /* sb_rpc_id_key */
    void *ptr;                     /* not owned */
} sb_session_entry;

/* A per-session keyed table: a chained hash table, empty (no buckets) until the first put, doubling
 * when it holds more entries than buckets. Owns its entries; freed with the session. */
typedef struct sb_session_map {
    sb_session_entry **buckets;    /* nbuckets chains (NULL while empty) */
    size_t nbuckets;               /* 0 or a power of two */
    size_t count;                  /* entries */
} sb_session_map;

typedef struct sb_session {
    char id[SB_SESSION_ID_LEN + 1];
    char fingerprint[SB_FP_MAX];  /* "" = anonymous (only where the route allows it) */
    char protocol_version[16];
    int client_elicitation;       /* client declared the elicitation capability (form) */
    int client_sampling;
    int client_roots;
    char client_name[64];
    int log_level;                /* MCP logging level index (0 debug .. 7 emergency) */
    int initialized;              /* notifications/initialized seen */
    int admitted;                 /* admission (credential and region checks) passed; until then
                                     the session cannot be looked up */
    char region[24];              /* the provider region this session is bound to ("" = none) */
    /* everything below is protected by mu */
    pthread_mutex_t mu;
    int refs;
    int ended;
    uint64_t last_used_ms;
    uint64_t alive_checked_ms;    /* when the shared store last confirmed it (sb_mcp hooks) */
    sb_session_map calls;         /* in-flight client requests: key -> sb_mcp_call* */
    sb_session_map pending;       /* server-to-client requests awaiting a reply: key -> void* */
    struct sb_session *hnext;     /* table chain (table lock) */
} sb_session;

typedef struct sb_sessions sb_sessions;

/* A table holding at most `max` sessions, each expiring after `idle_s` without use. */
sb_sessions *sb_sessions_new(unsigned max, unsigned idle_s);
void sb_sessions_free(sb_sessions *t);
/* Create a session bound to `fingerprint`. Returns a new reference in *out (release it with
 * sb_session_release), 0 on success; -1 when the table is full even after expiring idle sessions. */
int sb_sessions_create(sb_sessions *t, const char *fingerprint, sb_session **out);
/* Insert a session known elsewhere (another replica created it; the shared store holds it) with
 * tmpl's id, fingerprint, protocol version, client capabilities, log level and region; it is
 * admitted and initialized. Returns a new reference in *out, 0; -1 when the id is already in the
 * table, the id is malformed, or the table is full. tmpl is only read. */
int sb_sessions_adopt(sb_sessions *t, const sb_session *tmpl, sb_session **out);
/* Look up a live session. NULL when unknown, ended, expired, or bound to another fingerprint (all
 * indistinguishable to the caller, by design). On success returns a new reference. */
sb_session *sb_sessions_get(sb_sessions *t, const char *id, const char *fingerprint);
/* End a session (DELETE). 0 if it existed for this fingerprint, -1 otherwise. */
int sb_sessions_end(sb_sessions *t, const char *id, const char *fingerprint);
/* Expire idle sessions now. Returns how many were removed. */
size_t sb_sessions_sweep(sb_sessions *t);
size_t sb_sessions_count(sb_sessions *t);
/* A reference to every live session (for shutdown). *out is malloc'd; release each session and
 * free the array. 0 or -1. */
int sb_sessions_snapshot(sb_sessions *t, sb_session ***out, size_t *n);

void sb_session_ref(sb_session *s);
void sb_session_release(sb_session *s);

/* Per-session keyed tables (&s->calls, &s->pending; thread-safe: all under s->mu; O(1) expected).
 * Keys are copied (at most 79 characters); pointers are not owned. put fails (-1) if the key
 * exists, is too long, or allocation fails. */
int sb_session_put(sb_session *s, sb_session_map *table, const char *key, void *ptr);
/* Remove and return the entry's pointer (NULL if absent). */
void *sb_session_take(sb_session *s, sb_session_map *table, const char *key);
/* Remove and return some entry's pointer (NULL if the table is empty). For draining a table. */
void *sb_session_take_any(sb_session *s, sb_session_map *table);
/* Remove the entry only if it still maps to ptr. 1 if removed, 0 if absent. */
int sb_session_remove(sb_session *s, sb_session_map *table, const char *key, void *ptr);

#endif
