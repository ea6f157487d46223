/* sb_bridge_session: MCP sessions shared through the store (ns "session"), so that any replica
 * serves a session another created and a DELETE on one ends it everywhere. Internal to bridge/. */
#ifndef SB_BRIDGE_SESSION_H
#define SB_BRIDGE_SESSION_H

#include "mcp/sb_mcp.h"
#include "store/sb_store.h"

typedef struct sb_bridge_sessions sb_bridge_sessions;

/* A context for the hooks: the store is borrowed and must outlive it; idle_s is the sessions' idle
 * timeout (their TTL in the store). NULL on failure. Free with sb_bridge_sessions_free after the
 * engine stopped using the hooks. */
sb_bridge_sessions *sb_bridge_sessions_new(sb_store *st, unsigned idle_s);
/* Install the hooks on the engine (sb_mcp_set_session_hooks). */
void sb_bridge_sessions_attach(sb_bridge_sessions *ss, sb_mcp *m);
void sb_bridge_sessions_free(sb_bridge_sessions *ss);

#endif
