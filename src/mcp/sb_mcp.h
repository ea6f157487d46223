/* sb_mcp: the MCP protocol engine (2025-11-25 wire, down to 2025-03-26): lifecycle, sessions,
 * dispatch, in-flight calls and their message streams. Transport-agnostic: the HTTP layer feeds
 * it bodies and drains each call's messages; unit tests and fuzzers drive it directly. */
#ifndef SB_MCP_H
#define SB_MCP_H
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "core/sb_loop.h"
#include "mcp/sb_session.h"
#include "mcp/sb_tools.h"

typedef struct sb_mcp sb_mcp;
typedef struct sb_mcp_call sb_mcp_call;

#define SB_MCP_LATEST "2025-11-25"

typedef struct sb_mcp_options {
    const char *server_name;     /* serverInfo.name */
    const char *server_title;
    const char *server_version;
    const char *instructions;    /* may be NULL */
    unsigned page_size;          /* tools/list page size */
    unsigned max_sessions;
    unsigned session_idle_s;
    unsigned call_timeout_s;     /* every call ends by then (isError / -32603) */
} sb_mcp_options;

/* Create the engine. The registry is taken; the loop is borrowed and must outlive the engine. */
sb_mcp *sb_mcp_new(const sb_mcp_options *o, sb_registry *tools, sb_loop *loop);
void sb_mcp_free(sb_mcp *m);
sb_registry *sb_mcp_registry(sb_mcp *m);
sb_sessions *sb_mcp_sessions(sb_mcp *m);
sb_loop *sb_mcp_loop(sb_mcp *m);

/* Admission: when set, `initialize` runs fn(call, ud) before a session becomes usable; fn (or
 * whatever it starts) must eventually call sb_mcp_admit_ok or sb_mcp_admit_refuse exactly once,
 * from any thread. Without it every caller is admitted at once. */
typedef void (*sb_mcp_admit_fn)(sb_mcp_call *c, void *ud);
void sb_mcp_set_admit(sb_mcp *m, sb_mcp_admit_fn fn, void *ud);
/* Admit: the session is bound to `region` (may be "") and the initialize result is sent. */
void sb_mcp_admit_ok(sb_mcp_call *c, const char *region);
/* Refuse: answer HTTP `status` (401, 403, 503...) with `body` (taken, a JSON object, may be NULL)
 * and WWW-Authenticate `www` (may be NULL); the session is discarded. */
void sb_mcp_admit_refuse(sb_mcp_call *c, int status, const char *www, cJSON *body);

/* Tool visibility per caller: return 0 to show and allow the tool, 1 to hide it (calling it is an
 * unknown tool), 2 to hide it for lack of scope (calling it gets HTTP 403 with the WWW-Authenticate
 * value written into www). */
typedef int (*sb_mcp_visible_fn)(const sb_tool *t, const void *principal, char *www,
                                 size_t wwwlen, void *ud);
void sb_mcp_set_visibility(sb_mcp *m, sb_mcp_visible_fn fn, void *ud);

/* Shared sessions (replicas): the engine stays protocol-only; whoever holds a shared store
 * implements these. Every hook runs on the thread handling the HTTP request (never the upstream
 * engine thread) and may block briefly. A record carries what another replica needs to serve the
 * session: its id, owner key (credential fingerprint + route), negotiated version, client
 * capabilities, log level and admitted region. */
typedef struct sb_mcp_session_rec {
    char id[SB_SESSION_ID_LEN + 1];
    char owner[SB_FP_MAX];
    char protocol_version[16];
    char client_name[64];
    char region[24];
    int client_elicitation, client_sampling, client_roots;
    int log_level;
} sb_mcp_session_rec;

typedef struct sb_mcp_session_hooks {
    /* a session was admitted here: record it (0, or negative: it then works on this replica only) */
    int (*persist)(const sb_mcp_session_rec *r, void *ud);
    /* an id unknown here: 0 with *out filled when the store holds it live, else negative */
    int (*load)(const char *id, sb_mcp_session_rec *out, void *ud);
    /* the session was ended (DELETE) here */
    void (*end)(const char *id, void *ud);
    /* is the session still live (not ended on another replica)? 1 yes, 0 ended. Asked at most once
     * per second per session, on use; errors should answer 1 (availability). */
    int (*alive)(const char *id, void *ud);
    void *ud;
} sb_mcp_session_hooks;
/* Install the hooks (copied; NULL removes them). Call before serving. */
void sb_mcp_set_session_hooks(sb_mcp *m, const sb_mcp_session_hooks *h);

/* Extra methods (resources, prompts, completion/complete): the handler finishes the call like
 * a tool does. `capability` (taken, may be NULL) is merged into the initialize result's
 * capabilities under `cap_name` (e.g. "resources", {"subscribe":true}). */
typedef int (*sb_method_fn)(sb_mcp_call *call, const cJSON *params, void *ud);
int sb_mcp_add_method(sb_mcp *m, const char *method, sb_method_fn fn, void *ud);
int sb_mcp_add_capability(sb_mcp *m, const char *cap_name, cJSON *capability);

/* ---- transport side ---------------------------------------------------------------------- */

typedef struct sb_mcp_req {
    const char *session_id;       /* Mcp-Session-Id header, or NULL */
    const char *protocol_version; /* MCP-Protocol-Version header, or NULL */
    const char *fingerprint;      /* session owner key (credential fingerprint and route);
                                     "" = anonymous */
    const char *request_id;       /* for logs */
    const void *principal;        /* opaque caller context (who, which provider/region, the
                                     credential), copied into every call it starts and wiped when
                                     the call is freed; may be NULL */
    size_t principal_len;
    const char *accept_encoding;  /* Accept-Encoding header, or NULL: tools/list answers
                                     gzip-compressed when it takes gzip (sb_gzip_accepted) */
} sb_mcp_req;

typedef struct sb_mcp_reply {
    int status;                   /* HTTP status */
    char *body;                   /* malloc'd JSON, or NULL for an empty body (202) */
    size_t body_len;
    char session_id[SB_SESSION_ID_LEN + 1]; /* non-empty: send as Mcp-Session-Id */
    sb_mcp_call *call;            /* non-NULL: still running; the transport holds one reference
                                     and drains it with sb_mcp_call_next, then sb_mcp_call_detach */
    char rpc_method[48];          /* the JSON-RPC method, for logs ("" if none) */
    char www_authenticate[512];   /* non-empty: send as WWW-Authenticate */
    const char *content_encoding; /* static string or NULL: the body is encoded so ("gzip"); send
                                     it as Content-Encoding */
    int vary_encoding;            /* the body depends on Accept-Encoding: send Vary */
} sb_mcp_reply;

/* Handle one POST body. Always fills *out (free out->body with free()). */
void sb_mcp_post(sb_mcp *m, const sb_mcp_req *req, const char *body, size_t len,
                 sb_mcp_reply *out);
/* Handle DELETE (end the session). */
void sb_mcp_delete(sb_mcp *m, const sb_mcp_req *req, sb_mcp_reply *out);

/* Shutdown: finish every running call at once with an error saying the server is stopping (their
 * streams end, their connections resume). Returns how many calls were stopped. */
size_t sb_mcp_shutdown(sb_mcp *m);

typedef void (*sb_mcp_wake_fn)(void *ctx);
/* Run the call's deferred work (sb_mcp_call_defer) now, on this thread: the first thing
 * sb_mcp_call_next does. A transport calls it first when it can then deliver events of its own
 * (an upstream answer that is already there) before asking for the next message. */
void sb_mcp_call_run(sb_mcp_call *c);
/*
 * Take the next message of a running call. Returns:
 *   1  *json (malloc'd, caller frees) / *len set; *is_final = 1 for the response, which is last;
 *   0  the call has ended and every message was taken;
 *   2  nothing yet: park(ctx) has been called under the call's lock, and wake(ctx) will be called
 *      exactly once, when the next message arrives or the call ends.
 */
int sb_mcp_call_next(sb_mcp_call *c, char **json, size_t *len, int *is_final, sb_mcp_wake_fn park,
                     sb_mcp_wake_fn wake, void *ctx);
/* HTTP details for the response: status (200 unless the call set another), the Mcp-Session-Id to
 * send ("" if none) and a WWW-Authenticate value ("" if none). Valid while the call is held. */
void sb_mcp_call_http_meta(sb_mcp_call *c, int *status, const char **session_id,
                           const char **www);
/* How many messages are queued and whether the final response is among them. */
void sb_mcp_call_peek(sb_mcp_call *c, size_t *queued, int *final_queued);
/* The transport is done with the call (response sent, or client gone). If the call has not
 * finished it is cancelled. Drops the transport's reference. */
void sb_mcp_call_detach(sb_mcp_call *c);

/* ---- tool / method side ------------------------------------------------------------------ */

/* Finish with a result object (taken). For tools/call this is a CallToolResult. */
void sb_mcp_call_result(sb_mcp_call *c, cJSON *result);
/* Finish a tools/call with structured content (taken) whose JSON text (taken, e.g. from
 * cJSON_PrintUnformatted(structured)) is also the text content: serialized once, not twice.
 * Validated against the tool's outputSchema like sb_mcp_call_result. structured may be NULL when
 * the result was written as text without a tree (sb_jw): it is then parsed only when checked. */
void sb_mcp_call_tool_json(sb_mcp_call *c, cJSON *structured, char *json);
/* Finish a tools/call with {"content":[{"type":"text","text":msg}],"isError":true}. */
void sb_mcp_call_tool_error(sb_mcp_call *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Finish with a JSON-RPC error. `data` taken, may be NULL. */
void sb_mcp_call_error(sb_mcp_call *c, int code, const char *message, cJSON *data);
/* Send a notification on this call's stream (params taken). Dropped once the call has ended. */
void sb_mcp_call_notify(sb_mcp_call *c, const char *method, cJSON *params);
/* notifications/progress, if the request carried _meta.progressToken (else nothing). */
void sb_mcp_call_progress(sb_mcp_call *c, double progress, double total, const char *message);
/* notifications/message at an MCP level ("debug".."emergency"), if the session's level allows.
 * `data` taken. */
void sb_mcp_call_log(sb_mcp_call *c, const char *level, const char *logger, cJSON *data);

/* Server-to-client request on this call's stream (elicitation/create, sampling/createMessage).
 * `reply(c, result, error, arg)` runs once when the client answers (result or error set), or with
 * both NULL if the call ends first (cancelled, timed out) -- then only to release `arg`. */
typedef void (*sb_mcp_reply_fn)(sb_mcp_call *c, const cJSON *result, const cJSON *error,
                                void *arg);
int sb_mcp_call_request(sb_mcp_call *c, const char *method, cJSON *params, sb_mcp_reply_fn reply,
                        void *arg);
/* Run fn(c, arg) on the event loop after ms; skipped (but still called with the call ended, so
 * `arg` can be released: check sb_mcp_call_done) if the call ended meanwhile. */
typedef void (*sb_mcp_timer_fn)(sb_mcp_call *c, void *arg);
int sb_mcp_call_after(sb_mcp_call *c, uint64_t ms, sb_mcp_timer_fn fn, void *arg);

/* Run fn(c, arg) on the thread that delivers this call's messages: the transport runs it the next
 * time it asks for a message (it is woken for that), so completion work spreads over the HTTP
 * worker threads instead of the thread that produced the event. If the transport is gone it runs
 * when the call is detached. Always runs exactly once. */
void sb_mcp_call_defer(sb_mcp_call *c, sb_mcp_timer_fn fn, void *arg);

/* Called once if the call is cancelled (notifications/cancelled, client gone, timeout) before it
 * finished. Runs on the thread that cancels. */
typedef void (*sb_mcp_cancel_fn)(sb_mcp_call *c, void *arg);
void sb_mcp_call_on_cancel(sb_mcp_call *c, sb_mcp_cancel_fn fn, void *arg);

int sb_mcp_call_done(sb_mcp_call *c);
/* The principal copied from the request that started the call (NULL if none) and its length. */
const void *sb_mcp_call_principal(sb_mcp_call *c, size_t *len);
/* The region the session is bound to ("" if none). */
const char *sb_mcp_call_region(sb_mcp_call *c);
/* The tool being called (tools/call only), else NULL. */
const sb_tool *sb_mcp_call_tool(sb_mcp_call *c);
/* Client capabilities of the session ("elicitation", "sampling", "roots"). */
int sb_mcp_call_client_has(sb_mcp_call *c, const char *capability);
const char *sb_mcp_call_method(sb_mcp_call *c);
const char *sb_mcp_call_fingerprint(sb_mcp_call *c);
sb_mcp *sb_mcp_call_engine(sb_mcp_call *c);
void sb_mcp_call_ref(sb_mcp_call *c);
void sb_mcp_call_release(sb_mcp_call *c);

#endif
