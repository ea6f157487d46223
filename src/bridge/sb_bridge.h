/* sb_bridge: ties the MCP engine to the providers: registers the tool contracts, decides which
 * tools a caller sees, admits sessions by resolving the caller's region (path pin, cache, parallel
 * probes), and runs each tools/call as an asynchronous upstream request whose answer is mapped to
 * a tool result an LLM can act on. */
#ifndef SB_BRIDGE_H
#define SB_BRIDGE_H
#include <stddef.h>

#include "mcp/sb_mcp.h"
#include "store/sb_store.h"
#include "upstream/sb_region.h"
#include "upstream/sb_up.h"

typedef struct sb_bridge sb_bridge;

enum { SB_CONFIRM_OFF = 0, SB_CONFIRM_DESTRUCTIVE, SB_CONFIRM_ALL };

typedef struct sb_bridge_options {
    sb_up *up;                    /* borrowed */
    const sb_regions *regions;    /* borrowed */
    const char *public_url;       /* for resource_metadata in challenges */
    unsigned call_timeout_ms;     /* upstream deadline per tool call (retries included) */
    unsigned probe_timeout_ms;    /* per region probe */
    unsigned cache_ttl_s;         /* region cache */
    size_t cache_max;             /* region cache entries */
    size_t embed_max_bytes;       /* files up to this size are embedded in results (base64) */
    unsigned file_ttl_s;          /* larger files: how long their /files/{token} link works */
    size_t file_store_max_bytes;  /* total bytes of files held for links */
    int confirm;                  /* SB_CONFIRM_*: which actions ask the user first (elicitation)
                                     when the client supports it; sends count as destructive */
    const char *audit_path;       /* append audit lines here; NULL/"" = standard error */
    unsigned idempotency_ttl_s;   /* how long a first outcome is replayed */
    size_t idempotency_max;       /* records held at most */
    unsigned idempotency_pending_ttl_s; /* a first call's "pending" record lives this long in the
                                     store (the call deadline + a margin), so an owner that died
                                     does not block its key for the whole TTL; default 120 */
    sb_store *store;              /* borrowed, may be NULL (then everything stays in memory): the
                                     store replicas share (docs/store.md): idempotency records
                                     (ns "idem"), the region cache ("region") and sessions
                                     ("session"). Must outlive the bridge. */
    unsigned session_idle_s;      /* sessions' idle timeout: their TTL in the store */
} sb_bridge_options;

sb_bridge *sb_bridge_new(const sb_bridge_options *o);
/* Register every embedded contract under schemas/tools/. 0 or -1 with err. */
int sb_bridge_register_tools(sb_bridge *b, sb_registry *r, char *err, size_t errlen);
/* Install the admission and visibility hooks on the engine, and with a store the shared-session
 * hooks (sb_mcp_set_session_hooks); the engine's loop runs the store writes the upstream thread
 * must not wait for. */
void sb_bridge_attach(sb_bridge *b, sb_mcp *m);
/* Number of cached region resolutions (for tests/metrics). */
size_t sb_bridge_cache_size(sb_bridge *b);
void sb_bridge_free(sb_bridge *b);

/* Short-lived file links (GET /files/{token}). put copies the bytes and writes a random token
 * (>= 128 bits, base64url) into token; -1 when over the store's byte limit. get returns a malloc'd
 * copy (caller frees) with its type and name, or NULL when unknown or expired. */
int sb_bridge_file_put(sb_bridge *b, const void *data, size_t len, const char *mime,
                       const char *name, char *token, size_t cap);
void *sb_bridge_file_get(sb_bridge *b, const char *token, size_t *len, char *mime, size_t mimecap,
                         char *name, size_t namecap);

#endif
