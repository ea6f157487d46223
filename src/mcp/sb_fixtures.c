#include "mcp/sb_fixtures.h"

#include "core/sb_buf.h"
#include "core/sb_embed.h"
#include "core/sb_json_schema.h"
#include "mcp/sb_jsonrpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The fixtures mirror the reference "everything server" of @modelcontextprotocol/conformance
 * (examples/servers/typescript/everything-server.ts): same names, same texts where the suite
 * documents them. Tool contracts live in schemas/fixtures/conformance-tools.json; the resources and
 * prompts are the small static tables below. Everything here is read-only after start-up, so the
 * handlers need no locking; per-call state (timers, client requests) is allocated per call and
 * freed on every path.
 */

#define FX_TOOLS_FILE "fixtures/conformance-tools.json"
#define FX_LOGGER "conformance-test-server"
#define FX_STEP_MS 50
#define FX_URI_MAX 2048         /* longest URI we accept in params */
#define FX_ARG_MAX 10000        /* longest prompt argument value */
#define FX_ECHO_MAX (64 * 1024) /* longest text we build from client-provided data */
#define FX_COMPLETIONS_MAX 100  /* spec: at most 100 values */

/* 1x1 red PNG (RGBA), checked: valid chunks and CRCs. */
static const char k_png_b64[] = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHw"
                                "AFBQIAX8jx0gAAAABJRU5ErkJggg==";
/* 16 frames of 8 kHz mono 16-bit PCM (a short square wave), a complete RIFF/WAVE file. */
static const char k_wav_b64[] =
    "UklGRkQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YSAAAADoA+gD6APoAxj8GPwY/Bj86APoA+gD6AMY"
    "/Bj8GPwY/A==";

/* ---- small helpers --------------------------------------------------------------------------- */

/* The string value of obj[key], or NULL if absent or not a string. */
static const char *str_item(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

/* Copy at most cap-1 bytes of s into out without splitting a UTF-8 sequence; appends "..." when
 * shortened. For echoing client-provided names in error messages. */
static void clip(const char *s, char *out, size_t cap)
{
    size_t n = strlen(s);
    if (n < cap) {
        memcpy(out, s, n + 1);
        return;
    }
    if (cap < 4) {
        if (cap) out[0] = '\0';
        return;
    }
    n = cap - 4;
    /* back up to the start of a UTF-8 sequence */
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    memcpy(out, s, n);
    memcpy(out + n, "...", 4);
}

static cJSON *text_block(const char *text)
{
    cJSON *b = cJSON_CreateObject();
    if (!b || !cJSON_AddStringToObject(b, "type", "text") ||
        !cJSON_AddStringToObject(b, "text", text)) {
        cJSON_Delete(b);
        return NULL;
    }
    return b;
}

/* {"type":kind,"data":data,"mimeType":mime} for image and audio blocks. */
static cJSON *media_block(const char *kind, const char *data, const char *mime)
{
    cJSON *b = cJSON_CreateObject();
    if (!b || !cJSON_AddStringToObject(b, "type", kind) ||
        !cJSON_AddStringToObject(b, "data", data) ||
        !cJSON_AddStringToObject(b, "mimeType", mime)) {
        cJSON_Delete(b);
        return NULL;
    }
    return b;
}

/* {"type":"resource","resource":{"uri","mimeType","text"}} */
static cJSON *resource_block(const char *uri, const char *mime, const char *text)
{
    cJSON *b = cJSON_CreateObject();
    cJSON *r = b && cJSON_AddStringToObject(b, "type", "resource")
                   ? cJSON_AddObjectToObject(b, "resource")
                   : NULL;
    if (!r || !cJSON_AddStringToObject(r, "uri", uri) ||
        !cJSON_AddStringToObject(r, "mimeType", mime) ||
        !cJSON_AddStringToObject(r, "text", text)) {
        cJSON_Delete(b);
        return NULL;
    }
    return b;
}

/* Append block (taken) to array; 0 or -1 (block freed). */
static int push(cJSON *array, cJSON *block)
{
    if (!block) return -1;
    if (!array || !cJSON_AddItemToArray(array, block)) {
        cJSON_Delete(block);
        return -1;
    }
    return 0;
}

/* A CallToolResult holding the given blocks (taken; NULL entries mean allocation failed). */
static cJSON *tool_result(cJSON *const *blocks, size_t n)
{
    cJSON *r = cJSON_CreateObject();
    cJSON *content = r ? cJSON_AddArrayToObject(r, "content") : NULL;
    int ok = content != NULL;
    for (size_t i = 0; i < n; i++)
        if (push(ok ? content : NULL, blocks[i]) < 0) ok = 0;
    if (!ok) {
        cJSON_Delete(r);
        return NULL;
    }
    return r;
}

/* Finish a tool call with one text block. 0, or -1 (nothing finished) on allocation failure. */
static int finish_text(sb_mcp_call *c, const char *text)
{
    cJSON *b = text_block(text);
    cJSON *r = tool_result(&b, 1);
    if (!r) return -1;
    sb_mcp_call_result(c, r);
    return 0;
}

/* finish_text for asynchronous paths, where nobody is left to report -1 to. */
static void finish_text_async(sb_mcp_call *c, const char *text)
{
    if (finish_text(c, text) < 0)
        sb_mcp_call_error(c, SB_RPC_INTERNAL_ERROR, "Internal error: out of memory", NULL);
}

static void invalid_params(sb_mcp_call *c, const char *message)
{
    sb_mcp_call_error(c, SB_RPC_INVALID_PARAMS, message, NULL);
}

/* params must be absent, null or an object. */
static int params_ok(sb_mcp_call *c, const cJSON *params, const char *method)
{
    if (!params || cJSON_IsNull(params) || cJSON_IsObject(params)) return 0;
    char msg[160];
    snprintf(msg, sizeof msg, "Invalid params: %s expects params to be an object", method);
    invalid_params(c, msg);
    return -1;
}

/* An optional pagination cursor: 0 with *off set (0 without a cursor), or -1 (call finished). */
static int cursor_ok(sb_mcp_call *c, const cJSON *params, size_t n, size_t *off)
{
    const cJSON *cur = cJSON_GetObjectItemCaseSensitive(params, "cursor");
    *off = 0;
    if (!cur || cJSON_IsNull(cur)) return 0;
    if (!cJSON_IsString(cur) || sb_cursor_decode(cur->valuestring, off) < 0 || *off > n) {
        invalid_params(c, "Invalid params: unknown or expired cursor; list again without a "
                          "cursor to start from the beginning");
        return -1;
    }
    return 0;
}

/* Loose URI check (RFC 3986 scheme ":" rest, printable ASCII, bounded): what we echo back into
 * fields the schema types as "format":"uri". */
static int uri_like(const char *s)
{
    size_t n = strlen(s);
    if (n < 3 || n > FX_URI_MAX) return 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'))) return 0;
    size_t i = 1;
    for (; s[i] && s[i] != ':'; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '+' || ch == '-' || ch == '.'))
            return 0;
    }
    if (s[i] != ':' || !s[i + 1]) return 0;
    for (i++; s[i]; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch >= 0x7F || ch == '"' || ch == '<' || ch == '>' || ch == '\\' ||
            ch == '^' || ch == '`' || ch == '{' || ch == '|' || ch == '}')
            return 0;
    }
    return 1;
}

/* ---- tools: static content ------------------------------------------------------------------- */

static int tool_simple_text(sb_mcp_call *c, const cJSON *args, void *ud)
{
    (void)args;
    (void)ud;
    return finish_text(c, "This is a simple text response for testing.");
}

static int tool_image(sb_mcp_call *c, const cJSON *args, void *ud)
{
    (void)args;
    (void)ud;
    cJSON *b = media_block("image", k_png_b64, "image/png");
    cJSON *r = tool_result(&b, 1);
    if (!r) return -1;
    sb_mcp_call_result(c, r);
    return 0;
}

static int tool_audio(sb_mcp_call *c, const cJSON *args, void *ud)
{
    (void)args;
    (void)ud;
    cJSON *b = media_block("audio", k_wav_b64, "audio/wav");
    cJSON *r = tool_result(&b, 1);
    if (!r) return -1;
    sb_mcp_call_result(c, r);
    return 0;
}

static int tool_embedded_resource(sb_mcp_call *c, const cJSON *args, void *ud)
{
    (void)args;
    (void)ud;
    cJSON *b = resource_block("test://embedded-resource", "text/plain",
                              "This is an embedded resource content.");
    cJSON *r = tool_result(&b, 1);
    if (!r) return -1;
    sb_mcp_call_result(c, r);
    return 0;
}

static int tool_multiple(sb_mcp_call *c, const cJSON *args, void *ud)
{
    (void)args;
    (void)ud;
    cJSON *b[3];
    b[0] = text_block("Multiple content types test:");
    b[1] = media_block("image", k_png_b64, "image/png");
    b[2] = resource_block("test://mixed-content-resource", "application/json",
                          "{\"test\":\"data\",\"value\":123}");
    cJSON *r = tool_result(b, 3);
    if (!r) return -1;
    sb_mcp_call_result(c, r);
    return 0;
}

static int tool_error(sb_mcp_call *c, const cJSON *args, void *ud)
{
    (void)args;
    (void)ud;
    sb_mcp_call_tool_error(c, "%s", "This tool intentionally returns an error for testing");
    return 0;
}

/* ---- tools: paced steps (logging, progress) -------------------------------------------------- */

/* Runs step 0 now and steps 1..last FX_STEP_MS apart; step `last` finishes the call. */
typedef void (*step_fn)(sb_mcp_call *c, int step);
typedef struct paced {
    step_fn fn;
    int next;
    int last;
} paced;

static void paced_tick(sb_mcp_call *c, void *arg);

/* Takes p (freed here or by the timer callback). */
static void paced_run(sb_mcp_call *c, paced *p)
{
    for (;;) {
        if (sb_mcp_call_done(c)) break; /* cancelled or timed out: stop quietly */
        int s = p->next++;
        p->fn(c, s);
        if (s >= p->last) break;
        if (sb_mcp_call_after(c, FX_STEP_MS, paced_tick, p) == 0) return; /* p goes to the timer */
        /* could not arm a timer: carry on without the pause rather than hang the call */
    }
    free(p);
}

static void paced_tick(sb_mcp_call *c, void *arg)
{
    paced *p = arg;
    if (sb_mcp_call_done(c)) {
        free(p);
        return;
    }
    paced_run(c, p);
}

static int paced_start(sb_mcp_call *c, step_fn fn, int last)
{
    paced *p = malloc(sizeof *p);
    if (!p) return -1;
    p->fn = fn;
    p->next = 0;
    p->last = last;
    paced_run(c, p);
    return 0;
}

static void logging_step(sb_mcp_call *c, int step)
{
    static const char *const k_msgs[] = {"Tool execution started", "Tool processing data",
                                         "Tool execution completed"};
    if (step < 0 || step > 2) return;
    cJSON *data = cJSON_CreateString(k_msgs[step]);
    if (data) sb_mcp_call_log(c, "info", FX_LOGGER, data);
    if (step == 2) finish_text_async(c, "Tool with logging executed successfully");
}

static int tool_logging(sb_mcp_call *c, const cJSON *args, void *ud)
{
    (void)args;
    (void)ud;
    return paced_start(c, logging_step, 2);
}

static void progress_step(sb_mcp_call *c, int step)
{
    if (step < 0 || step > 2) return;
    double done = 50.0 * step;
    char msg[64];
    snprintf(msg, sizeof msg, "Completed step %d of 100", 50 * step);
    sb_mcp_call_progress(c, done, 100.0, msg);
    if (step == 2)
        finish_text_async(c, "Progress fixture completed in three steps (0, 50 and 100 of 100); "
                             "progress notifications are sent only when the request carries "
                             "_meta.progressToken.");
}

static int tool_progress(sb_mcp_call *c, const cJSON *args, void *ud)
{
    (void)args;
    (void)ud;
    return paced_start(c, progress_step, 2);
}

/* ---- tools: sampling ------------------------------------------------------------------------- */

/* A client's JSON-RPC error as "message (code N)" into out. */
static void describe_error(const cJSON *error, char *out, size_t cap)
{
    const char *m = str_item(error, "message");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(error, "code");
    char clipped[300];
    clip(m ? m : "no message", clipped, sizeof clipped);
    if (cJSON_IsNumber(code)) /* valueint is clamped by cJSON: no float-to-int overflow */
        snprintf(out, cap, "%s (code %d)", clipped, code->valueint);
    else
        snprintf(out, cap, "%s", clipped);
}

/* The first text of a sampling result's content (an object or, from 2025-11-25, an array). */
static const char *sampled_text(const cJSON *content)
{
    if (cJSON_IsObject(content)) {
        const char *type = str_item(content, "type");
        return type && strcmp(type, "text") == 0 ? str_item(content, "text") : NULL;
    }
    if (cJSON_IsArray(content)) {
        for (const cJSON *b = content->child; b; b = b->next) {
            const char *type = cJSON_IsObject(b) ? str_item(b, "type") : NULL;
            const char *t = type && strcmp(type, "text") == 0 ? str_item(b, "text") : NULL;
            if (t) return t;
        }
    }
    return NULL;
}

static void sampling_reply(sb_mcp_call *c, const cJSON *result, const cJSON *error, void *arg)
{
    (void)arg;
    if (!result && !error) return; /* the call ended first; nothing was allocated */
    if (error) {
        char why[400];
        describe_error(error, why, sizeof why);
        sb_mcp_call_tool_error(c,
                               "Sampling failed: the client answered sampling/createMessage "
                               "with an error: %s.",
                               why);
        return;
    }
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(result, "content");
    if (!cJSON_IsObject(result) || (!cJSON_IsObject(content) && !cJSON_IsArray(content))) {
        sb_mcp_call_tool_error(c, "Sampling failed: the client's sampling/createMessage result "
                                  "has no content object.");
        return;
    }
    const char *text = sampled_text(content);
    if (!text) {
        sb_mcp_call_tool_error(c, "Sampling failed: the client's sampling/createMessage result "
                                  "holds no text content, which this fixture can display.");
        return;
    }
    sb_buf b;
    sb_buf_init(&b, FX_ECHO_MAX);
    if (sb_buf_puts(&b, "LLM response: ") < 0 || sb_buf_puts(&b, text) < 0) {
        sb_buf_free(&b);
        sb_mcp_call_tool_error(c,
                               "Sampling failed: the model's answer is longer than %d bytes, "
                               "more than this fixture returns.",
                               FX_ECHO_MAX);
        return;
    }
    size_t len;
    char *s = sb_buf_detach(&b, &len);
    if (s)
        finish_text_async(c, s);
    else
        sb_mcp_call_error(c, SB_RPC_INTERNAL_ERROR, "Internal error: out of memory", NULL);
    free(s);
}

static int tool_sampling(sb_mcp_call *c, const cJSON *args, void *ud)
{
    (void)ud;
    const char *prompt = str_item(args, "prompt");
    if (!prompt) { /* the schema requires it; defend anyway */
        sb_mcp_call_tool_error(c, "Invalid arguments for tool test_sampling: 'prompt' must be a "
                                  "string.");
        return 0;
    }
    if (!sb_mcp_call_client_has(c, "sampling")) {
        sb_mcp_call_tool_error(c, "This client did not declare the sampling capability in "
                                  "initialize, so test_sampling cannot ask it for an LLM "
                                  "completion. Connect with a client that supports sampling.");
        return 0;
    }
    cJSON *p = cJSON_CreateObject();
    cJSON *msgs = p ? cJSON_AddArrayToObject(p, "messages") : NULL;
    cJSON *m = cJSON_CreateObject();
    cJSON *content = m && cJSON_AddStringToObject(m, "role", "user")
                         ? cJSON_AddObjectToObject(m, "content")
                         : NULL;
    int ok = msgs && content && cJSON_AddStringToObject(content, "type", "text") &&
             cJSON_AddStringToObject(content, "text", prompt);
    if (ok) {
        ok = push(msgs, m) == 0;
        m = NULL;
    }
    if (!ok || !cJSON_AddNumberToObject(p, "maxTokens", 100)) {
        cJSON_Delete(m);
        cJSON_Delete(p);
        return -1;
    }
    if (sb_mcp_call_request(c, "sampling/createMessage", p, sampling_reply, NULL) < 0)
        sb_mcp_call_tool_error(c, "Sampling failed: the sampling/createMessage request could not "
                                  "be sent to the client. Try again.");
    return 0;
}

/* ---- tools: elicitation ---------------------------------------------------------------------- */

/* {"type":t,"description":d} added to props under name; returns the new object or NULL. */
static cJSON *add_field(cJSON *props, const char *name, const char *type, const char *desc)
{
    cJSON *f = props ? cJSON_AddObjectToObject(props, name) : NULL;
    if (!f || !cJSON_AddStringToObject(f, "type", type) ||
        !cJSON_AddStringToObject(f, "description", desc))
        return NULL;
    return f;
}

/* A JSON array of n strings (cJSON_CreateStringArray refuses n == 0). */
static cJSON *string_array(const char *const *v, size_t n)
{
    return n ? cJSON_CreateStringArray(v, (int)n) : cJSON_CreateArray();
}

/* obj[key] = item (taken in every case); 0 or -1. */
static int put(cJSON *obj, const char *key, cJSON *item)
{
    if (!item) return -1;
    if (!obj || !cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        return -1;
    }
    return 0;
}

/* Add [{"const":v,"title":t}...] under key to obj; 0 or -1. */
static int add_titled(cJSON *obj, const char *key, const char *const *v, const char *const *t,
                      size_t n)
{
    cJSON *a = obj ? cJSON_AddArrayToObject(obj, key) : NULL;
    if (!a) return -1;
    for (size_t i = 0; i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddStringToObject(e, "const", v[i]) ||
            !cJSON_AddStringToObject(e, "title", t[i]) || !cJSON_AddItemToArray(a, e)) {
            cJSON_Delete(e);
            return -1;
        }
    }
    return 0;
}

/* A requestedSchema shell: {"type":"object","properties":{},"required":[...]}. */
static cJSON *form_schema(cJSON **props, const char *const *required, size_t nreq)
{
    cJSON *s = cJSON_CreateObject();
    *props = NULL;
    if (!s || !cJSON_AddStringToObject(s, "type", "object") ||
        !(*props = cJSON_AddObjectToObject(s, "properties")) ||
        put(s, "required", string_array(required, nreq)) < 0) {
        cJSON_Delete(s);
        return NULL;
    }
    return s;
}

static cJSON *schema_user_info(void)
{
    static const char *const req[] = {"username", "email"};
    cJSON *props;
    cJSON *s = form_schema(&props, req, 2);
    if (s && (!add_field(props, "username", "string", "User's response") ||
              !add_field(props, "email", "string", "User's email address"))) {
        cJSON_Delete(s);
        return NULL;
    }
    return s;
}

static cJSON *schema_sep1034(void)
{
    static const char *const status[] = {"active", "inactive", "pending"};
    cJSON *props;
    cJSON *s = form_schema(&props, NULL, 0);
    if (!s) return NULL;
    cJSON *name = add_field(props, "name", "string", "User name");
    cJSON *age = add_field(props, "age", "integer", "User age");
    cJSON *score = add_field(props, "score", "number", "User score");
    cJSON *st = add_field(props, "status", "string", "User status");
    cJSON *ver = add_field(props, "verified", "boolean", "Verification status");
    if (!name || !age || !score || !st || !ver || put(st, "enum", string_array(status, 3)) < 0 ||
        !cJSON_AddStringToObject(name, "default", "John Doe") ||
        !cJSON_AddNumberToObject(age, "default", 30) ||
        !cJSON_AddNumberToObject(score, "default", 95.5) ||
        !cJSON_AddStringToObject(st, "default", "active") ||
        !cJSON_AddBoolToObject(ver, "default", 1)) {
        cJSON_Delete(s);
        return NULL;
    }
    return s;
}

static cJSON *schema_sep1330(void)
{
    static const char *const opts[] = {"option1", "option2", "option3"};
    static const char *const vals[] = {"value1", "value2", "value3"};
    static const char *const single_titles[] = {"First Option", "Second Option", "Third Option"};
    static const char *const multi_titles[] = {"First Choice", "Second Choice", "Third Choice"};
    static const char *const legacy[] = {"opt1", "opt2", "opt3"};
    static const char *const legacy_names[] = {"Option One", "Option Two", "Option Three"};
    cJSON *props;
    cJSON *s = form_schema(&props, NULL, 0);
    if (!s) return NULL;
    cJSON *us = add_field(props, "untitledSingle", "string", "Select one option");
    cJSON *ts = add_field(props, "titledSingle", "string", "Select one option with titles");
    cJSON *le = add_field(props, "legacyEnum", "string", "Select one option (legacy)");
    cJSON *um = add_field(props, "untitledMulti", "array", "Select multiple options");
    cJSON *tm = add_field(props, "titledMulti", "array", "Select multiple options with titles");
    cJSON *umi = um ? cJSON_AddObjectToObject(um, "items") : NULL;
    cJSON *tmi = tm ? cJSON_AddObjectToObject(tm, "items") : NULL;
    int ok =
        us && ts && le && umi && tmi && put(us, "enum", string_array(opts, 3)) == 0 &&
        add_titled(ts, "oneOf", vals, single_titles, 3) == 0 &&
        put(le, "enum", string_array(legacy, 3)) == 0 &&
        put(le, "enumNames", string_array(legacy_names, 3)) == 0 &&
        cJSON_AddNumberToObject(um, "minItems", 1) && cJSON_AddNumberToObject(um, "maxItems", 3) &&
        cJSON_AddStringToObject(umi, "type", "string") &&
        put(umi, "enum", string_array(opts, 3)) == 0 &&
        cJSON_AddNumberToObject(tm, "minItems", 1) && cJSON_AddNumberToObject(tm, "maxItems", 3) &&
        add_titled(tmi, "anyOf", vals, multi_titles, 3) == 0;
    if (!ok) {
        cJSON_Delete(s);
        return NULL;
    }
    return s;
}

/* What one elicitation fixture asks and how it reports the answer. Static: no per-call state. */
typedef struct elicit_kind {
    const char *tool;
    const char *prefix;     /* "User response" / "Elicitation completed" */
    const char *message;    /* fixed message, or NULL to take args.message */
    cJSON *(*schema)(void); /* builds the requestedSchema */
} elicit_kind;

static const elicit_kind k_elicit_user = {"test_elicitation", "User response", NULL,
                                          schema_user_info};
static const elicit_kind k_elicit_1034 = {
    "test_elicitation_sep1034_defaults", "Elicitation completed",
    "Please review and update the form fields with defaults", schema_sep1034};
static const elicit_kind k_elicit_1330 = {"test_elicitation_sep1330_enums", "Elicitation completed",
                                          "Please select options from the enum fields",
                                          schema_sep1330};

static void elicit_reply(sb_mcp_call *c, const cJSON *result, const cJSON *error, void *arg)
{
    const elicit_kind *k = arg;
    if (!result && !error) return; /* the call ended first; nothing was allocated */
    if (error) {
        char why[400];
        describe_error(error, why, sizeof why);
        sb_mcp_call_tool_error(c,
                               "Elicitation failed: the client answered elicitation/create with "
                               "an error: %s.",
                               why);
        return;
    }
    const char *action = str_item(result, "action");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(result, "content");
    if (!cJSON_IsObject(result) || !action ||
        (strcmp(action, "accept") != 0 && strcmp(action, "decline") != 0 &&
         strcmp(action, "cancel") != 0) ||
        (content && !cJSON_IsObject(content) && !cJSON_IsNull(content))) {
        sb_mcp_call_tool_error(c, "Elicitation failed: the client's elicitation/create result is "
                                  "malformed (action must be accept, decline or cancel, and "
                                  "content an object).");
        return;
    }
    if (!cJSON_IsObject(content)) content = NULL;
    int accepted = strcmp(action, "accept") == 0;
    if (accepted) {
        /* validate against the form, closed: an answer may not add fields nobody asked for */
        cJSON *schema = k->schema();
        cJSON *empty = content ? NULL : cJSON_CreateObject();
        if (schema && !cJSON_AddFalseToObject(schema, "additionalProperties")) {
            cJSON_Delete(schema);
            schema = NULL;
        }
        if (!schema || (!content && !empty)) {
            cJSON_Delete(schema);
            cJSON_Delete(empty);
            sb_mcp_call_error(c, SB_RPC_INTERNAL_ERROR, "Internal error: out of memory", NULL);
            return;
        }
        char why[512];
        int rc = sb_schema_validate(schema, schema, content ? content : empty, "content", why,
                                    sizeof why);
        cJSON_Delete(schema);
        cJSON_Delete(empty);
        if (rc != 0) {
            sb_mcp_call_tool_error(c,
                                   "Elicitation failed: the user accepted, but the answer does "
                                   "not match the requested form: %s.",
                                   why);
            return;
        }
    }
    char *json = content ? cJSON_PrintUnformatted(content) : NULL;
    if (content && !json) {
        sb_mcp_call_error(c, SB_RPC_INTERNAL_ERROR, "Internal error: out of memory", NULL);
        return;
    }
    sb_buf b;
    sb_buf_init(&b, FX_ECHO_MAX);
    int rc = sb_buf_printf(&b, "%s: action=%s, content=%s", k->prefix, action, json ? json : "{}");
    free(json);
    if (rc == 0 && !accepted)
        rc = sb_buf_puts(&b, strcmp(action, "decline") == 0
                                 ? " (the user declined to provide the requested information)"
                                 : " (the user cancelled the request without answering)");
    if (rc < 0) {
        sb_buf_free(&b);
        sb_mcp_call_tool_error(c,
                               "Elicitation failed: the user's answer is longer than %d bytes, "
                               "more than this fixture returns.",
                               FX_ECHO_MAX);
        return;
    }
    size_t len;
    char *s = sb_buf_detach(&b, &len);
    if (s)
        finish_text_async(c, s);
    else
        sb_mcp_call_error(c, SB_RPC_INTERNAL_ERROR, "Internal error: out of memory", NULL);
    free(s);
}

static int elicit_start(sb_mcp_call *c, const cJSON *args, const elicit_kind *k)
{
    const char *message = k->message ? k->message : str_item(args, "message");
    if (!message) { /* the schema requires it; defend anyway */
        sb_mcp_call_tool_error(c, "Invalid arguments for tool %s: 'message' must be a string.",
                               k->tool);
        return 0;
    }
    if (!sb_mcp_call_client_has(c, "elicitation")) {
        sb_mcp_call_tool_error(c,
                               "This client did not declare the elicitation capability in "
                               "initialize, so %s cannot ask the user for input. Connect with "
                               "a client that supports elicitation.",
                               k->tool);
        return 0;
    }
    cJSON *p = cJSON_CreateObject();
    if (!p || !cJSON_AddStringToObject(p, "message", message) ||
        put(p, "requestedSchema", k->schema()) < 0) {
        cJSON_Delete(p);
        return -1;
    }
    /* `mode` is left out: optional ("form") in 2025-11-25 and unknown to 2025-06-18 clients. */
    if (sb_mcp_call_request(c, "elicitation/create", p, elicit_reply, (void *)k) < 0)
        sb_mcp_call_tool_error(c, "Elicitation failed: the elicitation/create request could not "
                                  "be sent to the client. Try again.");
    return 0;
}

static int tool_elicitation(sb_mcp_call *c, const cJSON *args, void *ud)
{
    (void)ud;
    return elicit_start(c, args, &k_elicit_user);
}

static int tool_elicitation_1034(sb_mcp_call *c, const cJSON *args, void *ud)
{
    (void)ud;
    return elicit_start(c, args, &k_elicit_1034);
}

static int tool_elicitation_1330(sb_mcp_call *c, const cJSON *args, void *ud)
{
    (void)ud;
    return elicit_start(c, args, &k_elicit_1330);
}

/* ---- tools: JSON Schema 2020-12 -------------------------------------------------------------- */

static int tool_json_schema(sb_mcp_call *c, const cJSON *args, void *ud)
{
    (void)ud;
    /* The engine validates allOf/anyOf and additionalProperties; if/then/else is enforced here:
     * contactMethod "phone" requires phone, anything else (or none) requires email. */
    const char *method = str_item(args, "contactMethod");
    int phone = cJSON_GetObjectItemCaseSensitive(args, "phone") != NULL;
    int email = cJSON_GetObjectItemCaseSensitive(args, "email") != NULL;
    if (method && strcmp(method, "phone") == 0 && !phone) {
        sb_mcp_call_tool_error(c, "Invalid arguments for tool json_schema_2020_12_tool: "
                                  "contactMethod is \"phone\", so 'phone' is required (then).");
        return 0;
    }
    if (!(method && strcmp(method, "phone") == 0) && !email) {
        sb_mcp_call_tool_error(c, "Invalid arguments for tool json_schema_2020_12_tool: "
                                  "'email' is required unless contactMethod is \"phone\" (else).");
        return 0;
    }
    char *json = cJSON_PrintUnformatted(args);
    if (!json) return -1;
    sb_buf b;
    sb_buf_init(&b, FX_ECHO_MAX);
    int rc = sb_buf_printf(&b, "JSON Schema 2020-12 tool called with: %s", json);
    free(json);
    if (rc < 0) {
        sb_buf_free(&b);
        sb_mcp_call_tool_error(c,
                               "The arguments are longer than %d bytes, more than "
                               "json_schema_2020_12_tool echoes back.",
                               FX_ECHO_MAX);
        return 0;
    }
    size_t len;
    char *s = sb_buf_detach(&b, &len);
    if (!s) return -1;
    rc = finish_text(c, s);
    free(s);
    return rc;
}

/* ---- tool registration ----------------------------------------------------------------------- */

typedef struct fx_tool {
    const char *name;
    sb_tool_fn fn;
} fx_tool;

static const fx_tool k_tools[] = {
    {"test_simple_text", tool_simple_text},
    {"test_image_content", tool_image},
    {"test_audio_content", tool_audio},
    {"test_embedded_resource", tool_embedded_resource},
    {"test_multiple_content_types", tool_multiple},
    {"test_tool_with_logging", tool_logging},
    {"test_tool_with_progress", tool_progress},
    {"test_error_handling", tool_error},
    {"test_sampling", tool_sampling},
    {"test_elicitation", tool_elicitation},
    {"test_elicitation_sep1034_defaults", tool_elicitation_1034},
    {"test_elicitation_sep1330_enums", tool_elicitation_1330},
    {"json_schema_2020_12_tool", tool_json_schema},
};
#define N_TOOLS (sizeof k_tools / sizeof k_tools[0])

int sb_fixtures_add_tools(sb_registry *r, char *err, size_t errlen)
{
    const sb_embedded_file *f = sb_embed_find(FX_TOOLS_FILE);
    if (!f) {
        snprintf(err, errlen, "%s: not embedded", FX_TOOLS_FILE);
        return -1;
    }
    cJSON *arr = cJSON_ParseWithLength(f->data, f->len);
    if (!cJSON_IsArray(arr)) {
        cJSON_Delete(arr);
        snprintf(err, errlen, "%s: not a JSON array of tool contracts", FX_TOOLS_FILE);
        return -1;
    }
    unsigned char seen[N_TOOLS] = {0};
    int rc = 0;
    while (rc == 0 && arr->child) {
        cJSON *contract = cJSON_DetachItemViaPointer(arr, arr->child);
        const char *name = str_item(contract, "name");
        size_t i = 0;
        while (name && i < N_TOOLS && strcmp(k_tools[i].name, name) != 0)
            i++;
        if (!name || i == N_TOOLS) {
            char nm[80];
            clip(name ? name : "(no name)", nm, sizeof nm);
            snprintf(err, errlen, "%s: tool %s has no implementation", FX_TOOLS_FILE, nm);
            cJSON_Delete(contract);
            rc = -1;
        } else if (sb_registry_add(r, contract, k_tools[i].fn, NULL, err, errlen) < 0) {
            cJSON_Delete(contract);
            rc = -1;
        } else {
            seen[i] = 1;
        }
    }
    cJSON_Delete(arr);
    for (size_t i = 0; rc == 0 && i < N_TOOLS; i++) {
        if (!seen[i]) {
            snprintf(err, errlen, "%s: no contract for tool %s", FX_TOOLS_FILE, k_tools[i].name);
            rc = -1;
        }
    }
    return rc;
}

/* ---- resources ------------------------------------------------------------------------------- */

typedef struct fx_resource {
    const char *uri, *name, *title, *description, *mime;
    const char *text; /* text contents, or NULL for blob */
    const char *blob; /* base64 */
} fx_resource;

static const fx_resource k_resources[] = {
    {"test://static-text", "static-text", "Static Text Resource",
     "A static text resource for testing.", "text/plain",
     "This is the content of the static text resource.", NULL},
    {"test://static-binary", "static-binary", "Static Binary Resource",
     "A static binary resource (a 1x1 PNG image) for testing.", "image/png", NULL, k_png_b64},
    {"test://watched-resource", "watched-resource", "Watched Resource",
     "A text resource that clients can subscribe to; its content never changes, so no update "
     "notifications are ever sent.",
     "text/plain", "Watched resource content", NULL},
};
#define N_RESOURCES (sizeof k_resources / sizeof k_resources[0])

#define TEMPLATE_URI "test://template/{id}/data"
#define TEMPLATE_PREFIX "test://template/"
#define TEMPLATE_SUFFIX "/data"
#define TEMPLATE_ID_MAX 64

static const fx_resource *find_resource(const char *uri)
{
    for (size_t i = 0; i < N_RESOURCES; i++)
        if (strcmp(k_resources[i].uri, uri) == 0) return &k_resources[i];
    return NULL;
}

/* Match uri against test://template/{id}/data. Returns 1 with id copied out (valid token),
 * 0 when the uri does not have the template's shape, -1 when it does but the id is unacceptable. */
static int match_template(const char *uri, char *id, size_t idcap)
{
    size_t n = strlen(uri), pl = strlen(TEMPLATE_PREFIX), sl = strlen(TEMPLATE_SUFFIX);
    if (n <= pl + sl || strncmp(uri, TEMPLATE_PREFIX, pl) != 0 ||
        strcmp(uri + n - sl, TEMPLATE_SUFFIX) != 0)
        return 0;
    const char *s = uri + pl;
    size_t len = n - pl - sl;
    if (memchr(s, '/', len)) return 0; /* {id} never expands to a '/' */
    if (len > TEMPLATE_ID_MAX || len >= idcap) return -1;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.' || ch == '~'))
            return -1;
    }
    memcpy(id, s, len);
    id[len] = '\0';
    return 1;
}

static void resource_not_found(sb_mcp_call *c, const char *uri)
{
    cJSON *data = cJSON_CreateObject();
    if (data && !cJSON_AddStringToObject(data, "uri", uri)) {
        cJSON_Delete(data);
        data = NULL;
    }
    sb_mcp_call_error(c, SB_RPC_RESOURCE_NOT_FOUND, "Resource not found", data);
}

static void bad_template_id(sb_mcp_call *c)
{
    invalid_params(c, "Invalid params: the {id} of " TEMPLATE_URI " must be 1-64 characters from "
                      "A-Z, a-z, 0-9, '-', '_', '.' and '~'");
}

/* The uri param of resources/read, subscribe and unsubscribe; NULL after answering -32602. */
static const char *uri_param(sb_mcp_call *c, const cJSON *params, const char *method)
{
    const char *uri = cJSON_IsObject(params) ? str_item(params, "uri") : NULL;
    if (!uri || !*uri || strlen(uri) > FX_URI_MAX) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "Invalid params: %s needs params {\"uri\": string} with a non-empty URI of at "
                 "most %d bytes",
                 method, FX_URI_MAX);
        invalid_params(c, msg);
        return NULL;
    }
    return uri;
}

static int res_list(sb_mcp_call *c, const cJSON *params, void *ud)
{
    (void)ud;
    size_t off;
    if (params_ok(c, params, "resources/list") < 0 || cursor_ok(c, params, N_RESOURCES, &off) < 0)
        return 0;
    cJSON *r = cJSON_CreateObject();
    cJSON *list = r ? cJSON_AddArrayToObject(r, "resources") : NULL;
    if (!list) goto fail;
    for (size_t i = off; i < N_RESOURCES; i++) {
        const fx_resource *x = &k_resources[i];
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddStringToObject(e, "uri", x->uri) ||
            !cJSON_AddStringToObject(e, "name", x->name) ||
            !cJSON_AddStringToObject(e, "title", x->title) ||
            !cJSON_AddStringToObject(e, "description", x->description) ||
            !cJSON_AddStringToObject(e, "mimeType", x->mime)) {
            cJSON_Delete(e);
            goto fail;
        }
        if (push(list, e) < 0) goto fail;
    }
    sb_mcp_call_result(c, r);
    return 0;
fail:
    cJSON_Delete(r);
    return -1;
}

static int res_templates_list(sb_mcp_call *c, const cJSON *params, void *ud)
{
    (void)ud;
    size_t off;
    if (params_ok(c, params, "resources/templates/list") < 0 || cursor_ok(c, params, 1, &off) < 0)
        return 0;
    cJSON *r = cJSON_CreateObject();
    cJSON *list = r ? cJSON_AddArrayToObject(r, "resourceTemplates") : NULL;
    if (!list) goto fail;
    if (off == 0) {
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddStringToObject(e, "uriTemplate", TEMPLATE_URI) ||
            !cJSON_AddStringToObject(e, "name", "template") ||
            !cJSON_AddStringToObject(e, "title", "Resource Template") ||
            !cJSON_AddStringToObject(
                e, "description",
                "A resource template with parameter substitution: {id} is "
                "1-64 characters from A-Z, a-z, 0-9, '-', '_', '.' and '~'.") ||
            !cJSON_AddStringToObject(e, "mimeType", "application/json")) {
            cJSON_Delete(e);
            goto fail;
        }
        if (push(list, e) < 0) goto fail;
    }
    sb_mcp_call_result(c, r);
    return 0;
fail:
    cJSON_Delete(r);
    return -1;
}

/* {"contents":[{"uri","mimeType","text"|"blob"}]} */
static cJSON *contents_result(const char *uri, const char *mime, const char *text, const char *blob)
{
    cJSON *r = cJSON_CreateObject();
    cJSON *list = r ? cJSON_AddArrayToObject(r, "contents") : NULL;
    cJSON *e = cJSON_CreateObject();
    int ok = list && e && cJSON_AddStringToObject(e, "uri", uri) &&
             cJSON_AddStringToObject(e, "mimeType", mime) &&
             (text ? cJSON_AddStringToObject(e, "text", text) != NULL
                   : cJSON_AddStringToObject(e, "blob", blob) != NULL);
    if (ok) {
        ok = push(list, e) == 0;
        e = NULL;
    }
    if (!ok) {
        cJSON_Delete(e);
        cJSON_Delete(r);
        return NULL;
    }
    return r;
}

static int res_read(sb_mcp_call *c, const cJSON *params, void *ud)
{
    (void)ud;
    const char *uri = uri_param(c, params, "resources/read");
    if (!uri) return 0;
    cJSON *r = NULL;
    const fx_resource *x = find_resource(uri);
    char id[TEMPLATE_ID_MAX + 1];
    if (x) {
        r = contents_result(x->uri, x->mime, x->text, x->blob);
    } else {
        int m = match_template(uri, id, sizeof id);
        if (m == 0) {
            resource_not_found(c, uri);
            return 0;
        }
        if (m < 0) {
            bad_template_id(c);
            return 0;
        }
        cJSON *doc = cJSON_CreateObject();
        char data[TEMPLATE_ID_MAX + 32];
        snprintf(data, sizeof data, "Data for ID: %s", id);
        char *text = NULL;
        if (doc && cJSON_AddStringToObject(doc, "id", id) &&
            cJSON_AddBoolToObject(doc, "templateTest", 1) &&
            cJSON_AddStringToObject(doc, "data", data))
            text = cJSON_PrintUnformatted(doc);
        cJSON_Delete(doc);
        if (text) r = contents_result(uri, "application/json", text, NULL);
        free(text);
    }
    if (!r) return -1;
    sb_mcp_call_result(c, r);
    return 0;
}

/* subscribe / unsubscribe: the fixture resources never change, so there is nothing to track
 * beyond checking the URI names something that exists. */
static int res_subscription(sb_mcp_call *c, const cJSON *params, void *ud)
{
    const char *method = ud;
    const char *uri = uri_param(c, params, method);
    if (!uri) return 0;
    if (!find_resource(uri)) {
        char id[TEMPLATE_ID_MAX + 1];
        int m = match_template(uri, id, sizeof id);
        if (m == 0) {
            resource_not_found(c, uri);
            return 0;
        }
        if (m < 0) {
            bad_template_id(c);
            return 0;
        }
    }
    cJSON *r = cJSON_CreateObject();
    if (!r) return -1;
    sb_mcp_call_result(c, r);
    return 0;
}

/* ---- prompts --------------------------------------------------------------------------------- */

typedef struct fx_prompt_arg {
    const char *name, *description;
} fx_prompt_arg;

typedef struct fx_prompt fx_prompt;
/* Append the prompt's messages to msgs; args holds every declared argument as a string. */
typedef int (*prompt_build_fn)(cJSON *msgs, const char *const *args);

struct fx_prompt {
    const char *name, *title, *description;
    fx_prompt_arg args[2];
    size_t nargs; /* all required */
    prompt_build_fn build;
};

/* {"role":"user","content":block} appended to msgs; block taken. */
static int push_user(cJSON *msgs, cJSON *block)
{
    if (!block) return -1;
    cJSON *m = cJSON_CreateObject();
    if (!m || !cJSON_AddStringToObject(m, "role", "user")) {
        cJSON_Delete(block);
        cJSON_Delete(m);
        return -1;
    }
    if (put(m, "content", block) < 0) {
        cJSON_Delete(m);
        return -1;
    }
    return push(msgs, m);
}

static int build_simple(cJSON *msgs, const char *const *args)
{
    (void)args;
    return push_user(msgs, text_block("This is a simple prompt for testing."));
}

static int build_with_args(cJSON *msgs, const char *const *args)
{
    sb_buf b;
    sb_buf_init(&b, FX_ECHO_MAX);
    if (sb_buf_printf(&b, "Prompt with arguments: arg1='%s', arg2='%s'", args[0], args[1]) < 0) {
        sb_buf_free(&b);
        return -1;
    }
    size_t len;
    char *s = sb_buf_detach(&b, &len);
    if (!s) return -1;
    int rc = push_user(msgs, text_block(s));
    free(s);
    return rc;
}

static int build_embedded(cJSON *msgs, const char *const *args)
{
    if (push_user(msgs, resource_block(args[0], "text/plain",
                                       "Embedded resource content for testing.")) < 0)
        return -1;
    return push_user(msgs, text_block("Please process the embedded resource above."));
}

static int build_image(cJSON *msgs, const char *const *args)
{
    (void)args;
    if (push_user(msgs, media_block("image", k_png_b64, "image/png")) < 0) return -1;
    return push_user(msgs, text_block("Please analyze the image above."));
}

static const fx_prompt k_prompts[] = {
    {"test_simple_prompt",
     "Simple Test Prompt",
     "A simple prompt without arguments.",
     {{0}},
     0,
     build_simple},
    {"test_prompt_with_arguments",
     "Prompt With Arguments",
     "A prompt with two required arguments that are substituted into its text.",
     {{"arg1", "First test argument."}, {"arg2", "Second test argument."}},
     2,
     build_with_args},
    {"test_prompt_with_embedded_resource",
     "Prompt With Embedded Resource",
     "A prompt that embeds a text resource at the given URI.",
     {{"resourceUri", "URI of the resource to embed."}},
     1,
     build_embedded},
    {"test_prompt_with_image",
     "Prompt With Image",
     "A prompt that includes a PNG image.",
     {{0}},
     0,
     build_image},
};
#define N_PROMPTS (sizeof k_prompts / sizeof k_prompts[0])

static const fx_prompt *find_prompt(const char *name)
{
    for (size_t i = 0; i < N_PROMPTS; i++)
        if (strcmp(k_prompts[i].name, name) == 0) return &k_prompts[i];
    return NULL;
}

static int prompts_list(sb_mcp_call *c, const cJSON *params, void *ud)
{
    (void)ud;
    size_t off;
    if (params_ok(c, params, "prompts/list") < 0 || cursor_ok(c, params, N_PROMPTS, &off) < 0)
        return 0;
    cJSON *r = cJSON_CreateObject();
    cJSON *list = r ? cJSON_AddArrayToObject(r, "prompts") : NULL;
    if (!list) goto fail;
    for (size_t i = off; i < N_PROMPTS; i++) {
        const fx_prompt *p = &k_prompts[i];
        cJSON *e = cJSON_CreateObject();
        if (push(list, e) < 0 || !cJSON_AddStringToObject(e, "name", p->name) ||
            !cJSON_AddStringToObject(e, "title", p->title) ||
            !cJSON_AddStringToObject(e, "description", p->description))
            goto fail;
        if (p->nargs) {
            cJSON *args = cJSON_AddArrayToObject(e, "arguments");
            if (!args) goto fail;
            for (size_t j = 0; j < p->nargs; j++) {
                cJSON *a = cJSON_CreateObject();
                if (push(args, a) < 0 || !cJSON_AddStringToObject(a, "name", p->args[j].name) ||
                    !cJSON_AddStringToObject(a, "description", p->args[j].description) ||
                    !cJSON_AddBoolToObject(a, "required", 1))
                    goto fail;
            }
        }
    }
    sb_mcp_call_result(c, r);
    return 0;
fail:
    cJSON_Delete(r);
    return -1;
}

static int prompts_get(sb_mcp_call *c, const cJSON *params, void *ud)
{
    (void)ud;
    char msg[300], nm[80];
    const char *name = cJSON_IsObject(params) ? str_item(params, "name") : NULL;
    if (!name) {
        invalid_params(c, "Invalid params: prompts/get needs params {\"name\": string, "
                          "\"arguments\"?: object of strings}");
        return 0;
    }
    const fx_prompt *p = find_prompt(name);
    if (!p) {
        clip(name, nm, sizeof nm);
        snprintf(msg, sizeof msg,
                 "Invalid params: unknown prompt '%s'; call prompts/list for the "
                 "available prompts",
                 nm);
        invalid_params(c, msg);
        return 0;
    }
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(params, "arguments");
    if (args && !cJSON_IsNull(args) && !cJSON_IsObject(args)) {
        invalid_params(c, "Invalid params: prompts/get arguments must be an object of strings");
        return 0;
    }
    /* every given argument is declared and a string of bounded length */
    for (const cJSON *a = cJSON_IsObject(args) ? args->child : NULL; a; a = a->next) {
        size_t j = 0;
        while (j < p->nargs && strcmp(p->args[j].name, a->string) != 0)
            j++;
        clip(a->string ? a->string : "", nm, sizeof nm);
        if (j == p->nargs) {
            snprintf(msg, sizeof msg, "Invalid params: prompt %s has no argument '%s'%s", p->name,
                     nm, p->nargs ? "" : " (it takes none)");
            invalid_params(c, msg);
            return 0;
        }
        if (!cJSON_IsString(a) || !a->valuestring || strlen(a->valuestring) > FX_ARG_MAX) {
            snprintf(msg, sizeof msg,
                     "Invalid params: argument '%s' of prompt %s must be a string of at most %d "
                     "bytes",
                     nm, p->name, FX_ARG_MAX);
            invalid_params(c, msg);
            return 0;
        }
    }
    const char *vals[2] = {NULL, NULL};
    for (size_t j = 0; j < p->nargs; j++) {
        vals[j] = cJSON_IsObject(args) ? str_item(args, p->args[j].name) : NULL;
        if (!vals[j]) {
            snprintf(msg, sizeof msg,
                     "Invalid params: missing required argument '%s' for prompt %s",
                     p->args[j].name, p->name);
            invalid_params(c, msg);
            return 0;
        }
    }
    if (p->build == build_embedded && (!vals[0] || !uri_like(vals[0]))) {
        snprintf(msg, sizeof msg,
                 "Invalid params: argument 'resourceUri' of prompt %s must be an "
                 "absolute URI such as test://example-resource",
                 p->name);
        invalid_params(c, msg);
        return 0;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON *msgs = r ? cJSON_AddArrayToObject(r, "messages") : NULL;
    if (!msgs || !cJSON_AddStringToObject(r, "description", p->description) ||
        p->build(msgs, vals) < 0) {
        cJSON_Delete(r);
        return -1;
    }
    sb_mcp_call_result(c, r);
    return 0;
}

/* ---- completion ------------------------------------------------------------------------------ */

static const char *const k_complete_arg1[] = {"paris",  "park", "party",
                                              "parade", "test", "testValue1"};
static const char *const k_complete_arg2[] = {"hello", "world", "wonder", "test", "testValue2"};
static const char *const k_complete_id[] = {"1", "2", "3", "123", "abc"};

static int complete_result(sb_mcp_call *c, const char *const *cands, size_t n, const char *prefix)
{
    cJSON *r = cJSON_CreateObject();
    cJSON *cpl = r ? cJSON_AddObjectToObject(r, "completion") : NULL;
    cJSON *vals = cpl ? cJSON_AddArrayToObject(cpl, "values") : NULL;
    if (!vals) goto fail;
    size_t plen = strlen(prefix), count = 0;
    for (size_t i = 0; i < n && count < FX_COMPLETIONS_MAX; i++) {
        if (strncmp(cands[i], prefix, plen) != 0) continue;
        if (push(vals, cJSON_CreateString(cands[i])) < 0) goto fail;
        count++;
    }
    if (!cJSON_AddNumberToObject(cpl, "total", (double)count) ||
        !cJSON_AddBoolToObject(cpl, "hasMore", 0))
        goto fail;
    sb_mcp_call_result(c, r);
    return 0;
fail:
    cJSON_Delete(r);
    return -1;
}

static int complete(sb_mcp_call *c, const cJSON *params, void *ud)
{
    (void)ud;
    static const char k_shape[] =
        "Invalid params: completion/complete needs params {\"ref\": {\"type\": \"ref/prompt\", "
        "\"name\": string} or {\"type\": \"ref/resource\", \"uri\": string}, \"argument\": "
        "{\"name\": string, \"value\": string}, \"context\"?: {\"arguments\"?: object of strings}}";
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(params, "ref");
    const cJSON *arg = cJSON_GetObjectItemCaseSensitive(params, "argument");
    const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(params, "context");
    const char *type = str_item(ref, "type");
    const char *aname = str_item(arg, "name");
    const char *value = str_item(arg, "value");
    if (!cJSON_IsObject(params) || !cJSON_IsObject(ref) || !type || !cJSON_IsObject(arg) ||
        !aname || !value || (ctx && !cJSON_IsNull(ctx) && !cJSON_IsObject(ctx))) {
        invalid_params(c, k_shape);
        return 0;
    }
    const cJSON *cargs = cJSON_GetObjectItemCaseSensitive(ctx, "arguments");
    if (cargs && !cJSON_IsNull(cargs)) {
        int ok = cJSON_IsObject(cargs);
        for (const cJSON *a = ok ? cargs->child : NULL; a; a = a->next)
            if (!cJSON_IsString(a)) ok = 0;
        if (!ok) {
            invalid_params(c, k_shape);
            return 0;
        }
    }
    char msg[300], nm[80];
    if (strcmp(type, "ref/prompt") == 0) {
        const char *pname = str_item(ref, "name");
        if (!pname) {
            invalid_params(c, k_shape);
            return 0;
        }
        const fx_prompt *p = find_prompt(pname);
        if (!p) {
            clip(pname, nm, sizeof nm);
            snprintf(msg, sizeof msg, "Invalid params: unknown prompt '%s'", nm);
            invalid_params(c, msg);
            return 0;
        }
        if (p == &k_prompts[1] && strcmp(aname, "arg1") == 0)
            return complete_result(c, k_complete_arg1,
                                   sizeof k_complete_arg1 / sizeof k_complete_arg1[0], value);
        if (p == &k_prompts[1] && strcmp(aname, "arg2") == 0)
            return complete_result(c, k_complete_arg2,
                                   sizeof k_complete_arg2 / sizeof k_complete_arg2[0], value);
        return complete_result(c, NULL, 0, value);
    }
    if (strcmp(type, "ref/resource") == 0) {
        const char *uri = str_item(ref, "uri");
        if (!uri) {
            invalid_params(c, k_shape);
            return 0;
        }
        if (strcmp(uri, TEMPLATE_URI) == 0 && strcmp(aname, "id") == 0)
            return complete_result(c, k_complete_id, sizeof k_complete_id / sizeof k_complete_id[0],
                                   value);
        if (strcmp(uri, TEMPLATE_URI) == 0 || find_resource(uri))
            return complete_result(c, NULL, 0, value);
        clip(uri, nm, sizeof nm);
        snprintf(msg, sizeof msg, "Invalid params: unknown resource template '%s'", nm);
        invalid_params(c, msg);
        return 0;
    }
    clip(type, nm, sizeof nm);
    snprintf(msg, sizeof msg,
             "Invalid params: unknown ref type '%s' (expected ref/prompt or ref/resource)", nm);
    invalid_params(c, msg);
    return 0;
}

/* ---- method registration --------------------------------------------------------------------- */

int sb_fixtures_add_methods(sb_mcp *m, char *err, size_t errlen)
{
    static const struct {
        const char *method;
        sb_method_fn fn;
    } k_methods[] = {
        {"resources/list", res_list},
        {"resources/templates/list", res_templates_list},
        {"resources/read", res_read},
        {"resources/subscribe", res_subscription},
        {"resources/unsubscribe", res_subscription},
        {"prompts/list", prompts_list},
        {"prompts/get", prompts_get},
        {"completion/complete", complete},
    };
    for (size_t i = 0; i < sizeof k_methods / sizeof k_methods[0]; i++) {
        /* the subscription handler names its method in messages */
        void *ud = k_methods[i].fn == res_subscription ? (void *)k_methods[i].method : NULL;
        if (sb_mcp_add_method(m, k_methods[i].method, k_methods[i].fn, ud) < 0) {
            snprintf(err, errlen, "fixtures: cannot register method %s", k_methods[i].method);
            return -1;
        }
    }
    /* sb_mcp_add_capability takes the object in every case */
    cJSON *res = cJSON_CreateObject();
    if (!res || !cJSON_AddBoolToObject(res, "subscribe", 1) ||
        !cJSON_AddBoolToObject(res, "listChanged", 0)) {
        cJSON_Delete(res);
        res = NULL;
    }
    if (!res || sb_mcp_add_capability(m, "resources", res) < 0) {
        snprintf(err, errlen, "fixtures: cannot declare the resources capability");
        return -1;
    }
    cJSON *pr = cJSON_CreateObject();
    if (!pr || !cJSON_AddBoolToObject(pr, "listChanged", 0)) {
        cJSON_Delete(pr);
        pr = NULL;
    }
    if (!pr || sb_mcp_add_capability(m, "prompts", pr) < 0) {
        snprintf(err, errlen, "fixtures: cannot declare the prompts capability");
        return -1;
    }
    return 0;
}
