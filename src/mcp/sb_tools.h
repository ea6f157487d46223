/* sb_tools: the tool registry: contracts loaded from embedded JSON (schemas/), checked at start-up,
 * looked up by name, listed in pages. */
#ifndef SB_TOOLS_H
#define SB_TOOLS_H
#include <stddef.h>
#include <cjson/cJSON.h>

typedef struct sb_mcp_call sb_mcp_call;

/* A tool implementation. Called with validated arguments (defaults applied). It must eventually
 * finish the call exactly once (sb_mcp_call_result / _tool_error / _error), synchronously or later
 * from any thread. Return 0; a negative return (having finished nothing) makes the engine answer
 * -32603. `args` is owned by the engine and valid only during this call: copy what you keep. */
typedef int (*sb_tool_fn)(sb_mcp_call *call, const cJSON *args, void *ud);

typedef struct sb_tool {
    char name[129];
    cJSON *contract;             /* owned: name, title, description, inputSchema, outputSchema?, annotations */
    const cJSON *input_schema;   /* borrowed from contract */
    const cJSON *output_schema;  /* borrowed, may be NULL */
    char *listing;               /* owned: the contract serialized once, for tools/list */
    size_t listing_len;
    int read_only;               /* annotations.readOnlyHint */
    size_t index;                /* position in its registry */
    unsigned long outputs;       /* results produced (atomic): output validation samples them */
    sb_tool_fn fn;
    void *ud;
} sb_tool;

typedef struct sb_registry sb_registry;

sb_registry *sb_registry_new(void);
void sb_registry_free(sb_registry *r);
/* Add a tool from its contract (taken on success, left to the caller on failure). Checks: name
 * [A-Za-z0-9_.-]{1,64} and unique, non-empty description, inputSchema an object schema with
 * "type":"object", outputSchema (if any) likewise, both well-formed (sb_schema_check). 0 or -1 with
 * the reason in err. */
int sb_registry_add(sb_registry *r, cJSON *contract, sb_tool_fn fn, void *ud, char *err,
                    size_t errlen);
/* Same, from an embedded file under schemas/ (e.g. "tools/list_documents.json"). */
int sb_registry_add_embedded(sb_registry *r, const char *name, sb_tool_fn fn, void *ud, char *err,
                             size_t errlen);
const sb_tool *sb_registry_find(const sb_registry *r, const char *name);
size_t sb_registry_count(const sb_registry *r);
/* The bytes of every tool's listing together (a tools/list page is at most this plus commas). */
size_t sb_registry_listing_bytes(const sb_registry *r);
const sb_tool *sb_registry_at(const sb_registry *r, size_t i);

/* Opaque pagination cursors: encode an offset; decode returns -1 for anything not minted here. */
void sb_cursor_encode(size_t offset, char *out, size_t cap);
int sb_cursor_decode(const char *cursor, size_t *offset);

#endif
