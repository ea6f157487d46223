/* Fuzz target: the MCP engine (src/mcp/sb_mcp.h) driven directly, as tests/unit/test_session.c
 * does. One engine with three trivial tools (sync, async on the loop, never finishing) and one
 * initialized session are created once per process; each input is POSTed as a body on that
 * session (any running call is drained and detached), then tried as an initialize body without a
 * session (a session it creates is deleted again). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sb_loop.h"
#include "mcp/sb_mcp.h"
#include "mcp/sb_tools.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { T_SYNC = 1, T_ASYNC, T_NEVER };

static sb_loop *g_loop;
static sb_mcp *g_mcp;
static char g_sid[SB_SESSION_ID_LEN + 1];

static cJSON *text_result(const char *text)
{
    cJSON *r = cJSON_CreateObject();
    cJSON *content = cJSON_AddArrayToObject(r, "content");
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "type", "text");
    cJSON_AddStringToObject(t, "text", text);
    cJSON_AddItemToArray(content, t);
    return r;
}

static void async_finish(void *arg)
{
    sb_mcp_call *c = arg;
    sb_mcp_call_progress(c, 1, 2, "halfway");
    sb_mcp_call_result(c, text_result("later"));
    sb_mcp_call_release(c);
}

static int tool_fn(sb_mcp_call *c, const cJSON *args, void *ud)
{
    int mode = (int)(intptr_t)ud;
    if (mode == T_NEVER) return 0; /* ends when cancelled (detach) */
    if (mode == T_ASYNC) {
        sb_mcp_call_ref(c);
        if (sb_loop_post(sb_mcp_loop(sb_mcp_call_engine(c)), async_finish, c) < 0) {
            sb_mcp_call_release(c);
            return -1;
        }
        return 0;
    }
    const cJSON *who = cJSON_GetObjectItemCaseSensitive(args, "recipient");
    sb_mcp_call_log(c, "info", "fuzz", cJSON_CreateString("hello"));
    sb_mcp_call_result(c, text_result(cJSON_IsString(who) ? who->valuestring : "?"));
    return 0;
}

static void add_tool(sb_registry *r, const char *name, int mode, int with_output)
{
    char buf[1024], err[256];
    snprintf(buf, sizeof buf,
             "{\"name\":\"%s\",\"description\":\"Say hello (fuzz tool).\","
             "\"inputSchema\":{\"type\":\"object\",\"properties\":{\"recipient\":"
             "{\"type\":\"string\",\"minLength\":1},\"n\":{\"type\":\"integer\",\"default\":3}},"
             "\"required\":[\"recipient\"],\"additionalProperties\":false}%s,"
             "\"annotations\":{\"readOnlyHint\":%s}}",
             name,
             with_output ? ",\"outputSchema\":{\"type\":\"object\",\"properties\":{\"x\":"
                           "{\"type\":\"string\"}}}"
                         : "",
             mode == T_SYNC ? "true" : "false");
    cJSON *c = cJSON_Parse(buf);
    if (!c || sb_registry_add(r, c, tool_fn, (void *)(intptr_t)mode, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_engine: sb_registry_add(%s): %s\n", name, err);
        abort();
    }
}

static void noop(void *ctx)
{
    (void)ctx;
}

static void drain(sb_mcp_reply *r)
{
    free(r->body);
    r->body = NULL;
    if (!r->call) return;
    int status;
    const char *sid, *www;
    sb_mcp_call_http_meta(r->call, &status, &sid, &www);
    size_t queued;
    int final_queued;
    sb_mcp_call_peek(r->call, &queued, &final_queued);
    for (int i = 0; i < 1000; i++) {
        char *json = NULL;
        size_t len = 0;
        int is_final = 0;
        int rc = sb_mcp_call_next(r->call, &json, &len, &is_final, noop, noop, NULL);
        if (rc != 1) break; /* 0: ended; 2: parked (the wake comes later, a no-op) */
        free(json);
        if (is_final) break;
    }
    sb_mcp_call_detach(r->call);
    r->call = NULL;
}

static void engine_stop(void)
{
    sb_loop_stop(g_loop);
    sb_mcp_free(g_mcp);
}

static void engine_start(void)
{
    g_loop = sb_loop_start();
    sb_registry *reg = sb_registry_new();
    if (!g_loop || !reg) abort();
    add_tool(reg, "greet", T_SYNC, 0);
    add_tool(reg, "greet_out", T_SYNC, 1);
    add_tool(reg, "greet_later", T_ASYNC, 0);
    add_tool(reg, "greet_never", T_NEVER, 0);
    sb_mcp_options o = {
        .server_name = "signbridge-fuzz",
        .server_title = "signbridge fuzz",
        .server_version = "0.0.0",
        .instructions = "Fuzz.",
        .page_size = 2,
        .max_sessions = 1000,
        .session_idle_s = 3600,
        .call_timeout_s = 30,
    };
    g_mcp = sb_mcp_new(&o, reg, g_loop);
    if (!g_mcp) abort();
    static const char init[] =
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
        "\"protocolVersion\":\"2025-11-25\",\"capabilities\":{\"elicitation\":{}},"
        "\"clientInfo\":{\"name\":\"fuzz\",\"version\":\"1\"}}}";
    sb_mcp_req req = {.fingerprint = "fp", .request_id = "fuzz"};
    sb_mcp_reply r;
    sb_mcp_post(g_mcp, &req, init, strlen(init), &r);
    if (r.status != 200 || strlen(r.session_id) != SB_SESSION_ID_LEN) {
        fprintf(stderr, "fuzz_engine: initialize failed (%d)\n", r.status);
        abort();
    }
    memcpy(g_sid, r.session_id, sizeof g_sid);
    drain(&r);
    static const char inited[] = "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}";
    req.session_id = g_sid;
    req.protocol_version = "2025-11-25";
    sb_mcp_post(g_mcp, &req, inited, strlen(inited), &r);
    drain(&r);
    atexit(engine_stop);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_mcp) engine_start();
    const char *body = (const char *)data;

    /* on the session */
    sb_mcp_req req = {.session_id = g_sid,
                      .protocol_version = "2025-11-25",
                      .fingerprint = "fp",
                      .request_id = "fuzz"};
    sb_mcp_reply r;
    memset(&r, 0, sizeof r);
    sb_mcp_post(g_mcp, &req, body, size, &r);
    drain(&r);

    /* as an initialize (no session, no protocol header); a created session is ended again */
    sb_mcp_req init = {.fingerprint = "fp2", .request_id = "fuzz-init"};
    memset(&r, 0, sizeof r);
    sb_mcp_post(g_mcp, &init, body, size, &r);
    char sid[SB_SESSION_ID_LEN + 1];
    memcpy(sid, r.session_id, sizeof sid);
    drain(&r);
    if (sid[0]) {
        sb_mcp_req del = {.session_id = sid, .fingerprint = "fp2", .request_id = "fuzz-del"};
        sb_mcp_delete(g_mcp, &del, &r);
        drain(&r);
    }
    return 0;
}
