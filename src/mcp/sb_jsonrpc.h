/* sb_jsonrpc: JSON-RPC 2.0 envelopes: parse one message, build responses and errors. */
#ifndef SB_JSONRPC_H
#define SB_JSONRPC_H
#include <stddef.h>
#include <cjson/cJSON.h>

enum {
    SB_RPC_PARSE_ERROR = -32700,
    SB_RPC_INVALID_REQUEST = -32600,
    SB_RPC_METHOD_NOT_FOUND = -32601,
    SB_RPC_INVALID_PARAMS = -32602,
    SB_RPC_INTERNAL_ERROR = -32603,
    SB_RPC_SERVER_ERROR = -32000,      /* HTTP-level failures (SDK convention) */
    SB_RPC_SESSION_NOT_FOUND = -32001, /* SDK convention */
    SB_RPC_RESOURCE_NOT_FOUND = -32002,
};

typedef enum { SB_RPC_REQUEST = 1, SB_RPC_NOTIFICATION, SB_RPC_RESPONSE } sb_rpc_kind;

typedef struct sb_rpc_msg {
    sb_rpc_kind kind;
    cJSON *doc;           /* owned: the whole message; free with sb_rpc_msg_free */
    const cJSON *id;      /* request/response: string or integer number (borrowed from doc) */
    const char *method;   /* request/notification */
    const cJSON *params;  /* object, array or NULL */
    const cJSON *result;  /* response */
    const cJSON *error;   /* error response */
} sb_rpc_msg;

#define SB_RPC_BATCH 1

/*
 * Parse a POST body. Checks UTF-8 first, bounds nesting (cJSON's limit), then the envelope.
 * Returns 0 with *out filled; SB_RPC_BATCH with out->doc set to the array (caller decides);
 * or a negative JSON-RPC error code (SB_RPC_PARSE_ERROR / SB_RPC_INVALID_REQUEST) with a message in
 * err and, when readable, out->id set (out->doc then still owned and must be freed).
 */
int sb_rpc_parse(const char *body, size_t len, sb_rpc_msg *out, char *err, size_t errlen);
/* Classify an already parsed value (takes ownership of v into out->doc). Same returns. */
int sb_rpc_classify(cJSON *v, sb_rpc_msg *out, char *err, size_t errlen);
void sb_rpc_msg_free(sb_rpc_msg *m);

/* Serialize {"jsonrpc":"2.0","id":id,"result":result}. Takes `result`. malloc'd string or NULL. */
char *sb_rpc_result(const cJSON *id, cJSON *result);
/* Serialize an error response; id NULL -> "id":null. `data` taken (may be NULL). */
char *sb_rpc_error(const cJSON *id, int code, const char *message, cJSON *data);
/* Serialize a request or notification (id NULL). Takes `params` (may be NULL). */
char *sb_rpc_request(const cJSON *id, const char *method, cJSON *params);
/* A stable map key for an id: "s:<string>" or "n:<integer>". Returns -1 if it does not fit. */
int sb_rpc_id_key(const cJSON *id, char *out, size_t cap);

#endif
