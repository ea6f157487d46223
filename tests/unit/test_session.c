/* Unit tests for sb_session (the session table and per-session tables) and the sb_mcp engine
 * driven directly, without HTTP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zlib.h>

#include "core/sb_loop.h"
#include "core/sb_util.h"
#include "mcp/sb_jsonrpc.h"
#include "mcp/sb_mcp.h"
#include "mcp/sb_session.h"
#include "mcp/sb_tools.h"

/* ---------------------------------------------------------------------------------------------
 * Helpers
 */

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static struct timespec deadline_in(unsigned ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += ms / 1000;
    dl.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    return dl;
}

static int is_b64url(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_'))
            return 0;
    return 1;
}

/* ---------------------------------------------------------------------------------------------
 * Session table
 */

static int cmp_ids(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void test_session_ids_unique(void **state)
{
    (void)state;
    enum { N = 10000 };
    sb_sessions *t = sb_sessions_new(N + 10, 3600);
    assert_non_null(t);
    char(*ids)[SB_SESSION_ID_LEN + 1] = calloc(N, sizeof *ids);
    assert_non_null(ids);
    for (int i = 0; i < N; i++) {
        sb_session *s = NULL;
        assert_int_equal(sb_sessions_create(t, "fp", &s), 0);
        assert_non_null(s);
        assert_int_equal(strlen(s->id), SB_SESSION_ID_LEN);
        assert_int_equal(SB_SESSION_ID_LEN, 43);
        if (!is_b64url(s->id)) fail_msg("session id is not base64url: %s", s->id);
        memcpy(ids[i], s->id, sizeof ids[i]);
        sb_session_release(s);
    }
    assert_int_equal(sb_sessions_count(t), N);
    qsort(ids, N, sizeof *ids, cmp_ids);
    for (int i = 1; i < N; i++)
        if (strcmp(ids[i - 1], ids[i]) == 0) fail_msg("duplicate session id %s", ids[i]);
    /* every id can be found again */
    for (int i = 0; i < N; i += 97) {
        sb_session *s = sb_sessions_get(t, ids[i], "fp");
        assert_non_null(s);
        assert_string_equal(s->id, ids[i]);
        sb_session_release(s);
    }
    free(ids);
    sb_sessions_free(t);
}

static void test_session_get_and_fingerprint(void **state)
{
    (void)state;
    sb_sessions *t = sb_sessions_new(10, 3600);
    sb_session *s = NULL;
    assert_int_equal(sb_sessions_create(t, "fp-alice", &s), 0);
    char id[SB_SESSION_ID_LEN + 1];
    memcpy(id, s->id, sizeof id);
    assert_string_equal(s->fingerprint, "fp-alice");
    sb_session_release(s);

    sb_session *g = sb_sessions_get(t, id, "fp-alice");
    assert_non_null(g);
    assert_ptr_equal(g, s);
    sb_session_release(g);

    /* wrong fingerprint, a prefix of it, an extension of it, anonymous */
    assert_null(sb_sessions_get(t, id, "fp-bob"));
    assert_null(sb_sessions_get(t, id, "fp-alic"));
    assert_null(sb_sessions_get(t, id, "fp-alice2"));
    assert_null(sb_sessions_get(t, id, ""));
    assert_null(sb_sessions_get(t, id, NULL));

    /* unknown, malformed, truncated, extended ids */
    assert_null(sb_sessions_get(t, NULL, "fp-alice"));
    assert_null(sb_sessions_get(t, "", "fp-alice"));
    char other[SB_SESSION_ID_LEN + 1];
    memcpy(other, id, sizeof other);
    other[10] = other[10] == 'A' ? 'B' : 'A';
    assert_null(sb_sessions_get(t, other, "fp-alice"));
    char shorter[SB_SESSION_ID_LEN];
    memcpy(shorter, id, SB_SESSION_ID_LEN - 1);
    shorter[SB_SESSION_ID_LEN - 1] = '\0';
    assert_null(sb_sessions_get(t, shorter, "fp-alice"));
    char longer[SB_SESSION_ID_LEN + 2];
    memcpy(longer, id, SB_SESSION_ID_LEN);
    longer[SB_SESSION_ID_LEN] = 'x';
    longer[SB_SESSION_ID_LEN + 1] = '\0';
    assert_null(sb_sessions_get(t, longer, "fp-alice"));

    /* an anonymous session is found only anonymously */
    sb_session *anon = NULL;
    assert_int_equal(sb_sessions_create(t, NULL, &anon), 0);
    assert_string_equal(anon->fingerprint, "");
    memcpy(other, anon->id, sizeof other);
    sb_session_release(anon);
    g = sb_sessions_get(t, other, "");
    assert_non_null(g);
    sb_session_release(g);
    g = sb_sessions_get(t, other, NULL);
    assert_non_null(g);
    sb_session_release(g);
    assert_null(sb_sessions_get(t, other, "fp-alice"));
    sb_sessions_free(t);
}

static void test_session_end(void **state)
{
    (void)state;
    sb_sessions *t = sb_sessions_new(10, 3600);
    sb_session *s = NULL;
    assert_int_equal(sb_sessions_create(t, "fp", &s), 0);
    char id[SB_SESSION_ID_LEN + 1];
    memcpy(id, s->id, sizeof id);

    /* wrong fingerprint cannot end it */
    assert_int_equal(sb_sessions_end(t, id, "other"), -1);
    sb_session *g = sb_sessions_get(t, id, "fp");
    assert_non_null(g);
    sb_session_release(g);

    assert_int_equal(sb_sessions_end(t, id, "fp"), 0);
    assert_int_equal(sb_sessions_count(t), 0);
    assert_null(sb_sessions_get(t, id, "fp"));
    assert_int_equal(sb_sessions_end(t, id, "fp"), -1); /* second end */
    assert_int_equal(sb_sessions_end(t, "nope", "fp"), -1);
    /* our reference is still valid after the end */
    assert_int_equal(s->ended, 1);
    sb_session_release(s);
    sb_sessions_free(t);
}

static void test_session_max(void **state)
{
    (void)state;
    sb_sessions *t = sb_sessions_new(3, 3600);
    sb_session *s[4] = {0};
    for (int i = 0; i < 3; i++)
        assert_int_equal(sb_sessions_create(t, "fp", &s[i]), 0);
    assert_int_equal(sb_sessions_count(t), 3);
    sb_session *extra = NULL;
    assert_int_equal(sb_sessions_create(t, "fp", &extra), -1);
    assert_null(extra);
    assert_int_equal(sb_sessions_count(t), 3);
    /* ending one frees a slot */
    assert_int_equal(sb_sessions_end(t, s[1]->id, "fp"), 0);
    assert_int_equal(sb_sessions_create(t, "fp", &s[3]), 0);
    assert_int_equal(sb_sessions_create(t, "fp", &extra), -1);
    for (int i = 0; i < 4; i++)
        sb_session_release(s[i]);
    sb_sessions_free(t);
}

static void test_session_idle_expiry(void **state)
{
    (void)state;
    sb_sessions *t = sb_sessions_new(2, 1);
    sb_session *idle = NULL, *busy = NULL, *held = NULL;
    assert_int_equal(sb_sessions_create(t, "fp", &idle), 0);
    assert_int_equal(sb_sessions_create(t, "fp", &busy), 0);
    char idle_id[SB_SESSION_ID_LEN + 1], busy_id[SB_SESSION_ID_LEN + 1];
    memcpy(idle_id, idle->id, sizeof idle_id);
    memcpy(busy_id, busy->id, sizeof busy_id);
    sb_session_release(idle);
    /* a session with an in-flight call does not expire */
    int marker = 1;
    assert_int_equal(sb_session_put(busy, &busy->calls, "n:1", &marker), 0);
    held = busy; /* keep our reference to clean up the entry later */
    assert_int_equal(sb_sessions_sweep(t), 0);

    sleep_ms(1150);
    assert_null(sb_sessions_get(t, idle_id, "fp")); /* expired even before the sweep */
    assert_int_equal(sb_sessions_sweep(t), 1);
    assert_int_equal(sb_sessions_count(t), 1);
    sb_session *g = sb_sessions_get(t, busy_id, "fp");
    assert_non_null(g);
    sb_session_release(g);

    /* once the call is gone, the session expires too */
    assert_ptr_equal(sb_session_take(held, &held->calls, "n:1"), &marker);
    sleep_ms(1150);
    assert_int_equal(sb_sessions_sweep(t), 1);
    assert_int_equal(sb_sessions_count(t), 0);
    assert_null(sb_sessions_get(t, busy_id, "fp"));
    sb_session_release(held);

    /* a full table makes room by expiring idle sessions */
    sb_session *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(sb_sessions_create(t, "fp", &a), 0);
    assert_int_equal(sb_sessions_create(t, "fp", &b), 0);
    sb_session_release(a);
    sb_session_release(b);
    assert_int_equal(sb_sessions_create(t, "fp", &c), -1);
    sleep_ms(1150);
    assert_int_equal(sb_sessions_create(t, "fp", &c), 0);
    assert_int_equal(sb_sessions_count(t), 1);
    sb_session_release(c);
    sb_sessions_free(t);
}

static void test_session_use_refreshes(void **state)
{
    (void)state;
    sb_sessions *t = sb_sessions_new(10, 1);
    sb_session *s = NULL;
    assert_int_equal(sb_sessions_create(t, "fp", &s), 0);
    char id[SB_SESSION_ID_LEN + 1];
    memcpy(id, s->id, sizeof id);
    sb_session_release(s);
    for (int i = 0; i < 3; i++) {
        sleep_ms(600);
        sb_session *g = sb_sessions_get(t, id, "fp"); /* use within the idle window */
        assert_non_null(g);
        sb_session_release(g);
    }
    assert_int_equal(sb_sessions_sweep(t), 0);
    assert_int_equal(sb_sessions_count(t), 1);
    sb_sessions_free(t);
}

static void test_session_tables(void **state)
{
    (void)state;
    sb_sessions *t = sb_sessions_new(10, 3600);
    sb_session *s = NULL;
    assert_int_equal(sb_sessions_create(t, "fp", &s), 0);
    int a = 1, b = 2, c = 3;

    assert_null(sb_session_take(s, &s->calls, "n:1"));
    assert_int_equal(sb_session_put(s, &s->calls, "n:1", &a), 0);
    assert_int_equal(sb_session_put(s, &s->calls, "n:1", &b), -1);  /* duplicate key */
    assert_int_equal(sb_session_put(s, &s->calls, "s:1", &b), 0);   /* different key */
    assert_int_equal(sb_session_put(s, &s->pending, "n:1", &c), 0); /* other table */

    assert_ptr_equal(sb_session_take(s, &s->calls, "n:1"), &a);
    assert_null(sb_session_take(s, &s->calls, "n:1"));
    assert_int_equal(sb_session_put(s, &s->calls, "n:1", &c), 0); /* reusable after take */

    /* remove only when the key still maps to that pointer */
    assert_int_equal(sb_session_remove(s, &s->calls, "s:1", &a), 0);
    assert_int_equal(sb_session_remove(s, &s->calls, "s:1", &b), 1);
    assert_int_equal(sb_session_remove(s, &s->calls, "s:1", &b), 0);
    assert_int_equal(sb_session_remove(s, &s->calls, "zz", &b), 0);

    /* key capacity: 79 characters fit, 80 do not */
    char k79[80], k80[81];
    memset(k79, 'k', 79);
    k79[79] = '\0';
    memset(k80, 'k', 80);
    k80[80] = '\0';
    assert_int_equal(sb_session_put(s, &s->pending, k79, &a), 0);
    assert_int_equal(sb_session_put(s, &s->pending, k80, &a), -1);
    assert_ptr_equal(sb_session_take(s, &s->pending, k79), &a);

    /* many entries */
    char key[32];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "n:%d", 1000 + i);
        assert_int_equal(sb_session_put(s, &s->pending, key, &b), 0);
    }
    for (int i = 199; i >= 0; i -= 2) {
        snprintf(key, sizeof key, "n:%d", 1000 + i);
        assert_ptr_equal(sb_session_take(s, &s->pending, key), &b);
    }
    assert_int_equal(s->pending.count, 101);
    for (int i = 0; i < 200; i += 2) { /* the survivors are still found after the table grew */
        snprintf(key, sizeof key, "n:%d", 1000 + i);
        assert_int_equal(sb_session_put(s, &s->pending, key, &a), -1);
    }

    /* draining */
    assert_int_equal(s->calls.count, 1);
    assert_ptr_equal(sb_session_take_any(s, &s->calls), &c);
    assert_null(sb_session_take_any(s, &s->calls));
    assert_int_equal(s->calls.count, 0);
    /* remaining entries (pending "n:1" and 100 more) are freed with the session */
    sb_session_release(s);
    sb_sessions_free(t);
    sb_session_release(NULL);
    sb_sessions_free(NULL);
}

/* ---------------------------------------------------------------------------------------------
 * Engine fixture
 */

typedef struct engine {
    sb_loop *loop;
    sb_mcp *m;
} engine;

/* Tool behaviour, selected by the tool's ud */
enum { T_SYNC = 1, T_ASYNC, T_NEVER, T_FAIL };

typedef struct async_job {
    sb_mcp_call *c;
    char who[64];
} async_job;

static void async_finish(void *arg)
{
    async_job *j = arg;
    sb_mcp_call_progress(j->c, 1, 2, "halfway");
    cJSON *r = cJSON_CreateObject();
    cJSON *content = cJSON_AddArrayToObject(r, "content");
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "type", "text");
    char text[100];
    snprintf(text, sizeof text, "later %s", j->who);
    cJSON_AddStringToObject(t, "text", text);
    cJSON_AddItemToArray(content, t);
    sb_mcp_call_result(j->c, r);
    sb_mcp_call_release(j->c);
    free(j);
}

typedef struct cancel_rec {
    pthread_mutex_t mu;
    int cancelled;
} cancel_rec;

static cancel_rec g_cancel = {PTHREAD_MUTEX_INITIALIZER, 0};

static void on_cancel(sb_mcp_call *c, void *arg)
{
    (void)c;
    cancel_rec *r = arg;
    pthread_mutex_lock(&r->mu);
    r->cancelled++;
    pthread_mutex_unlock(&r->mu);
}

static int tool_fn(sb_mcp_call *c, const cJSON *args, void *ud)
{
    int mode = (int)(intptr_t)ud;
    const cJSON *who = cJSON_GetObjectItemCaseSensitive(args, "recipient");
    if (mode == T_FAIL) return -1;
    if (mode == T_NEVER) {
        sb_mcp_call_on_cancel(c, on_cancel, &g_cancel);
        return 0;
    }
    if (mode == T_ASYNC) {
        async_job *j = calloc(1, sizeof *j);
        if (!j) return -1;
        sb_mcp_call_ref(c);
        j->c = c;
        sb_strlcpy(j->who, cJSON_IsString(who) ? who->valuestring : "?", sizeof j->who);
        if (sb_loop_post(sb_mcp_loop(sb_mcp_call_engine(c)), async_finish, j) < 0) {
            sb_mcp_call_release(c);
            free(j);
            return -1;
        }
        return 0;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON *content = cJSON_AddArrayToObject(r, "content");
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "type", "text");
    char text[100];
    snprintf(text, sizeof text, "hello %s", cJSON_IsString(who) ? who->valuestring : "?");
    cJSON_AddStringToObject(t, "text", text);
    cJSON_AddItemToArray(content, t);
    sb_mcp_call_result(c, r);
    return 0;
}

static cJSON *contract(const char *name)
{
    char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"name\":\"%s\",\"title\":\"Greeter %s\","
             "\"description\":\"Say hello to someone by name (test tool).\","
             "\"inputSchema\":{\"type\":\"object\",\"properties\":{\"recipient\":"
             "{\"type\":\"string\",\"minLength\":1}},\"required\":[\"recipient\"],"
             "\"additionalProperties\":false},"
             "\"annotations\":{\"readOnlyHint\":true}}",
             name, name);
    cJSON *c = cJSON_Parse(buf);
    assert_non_null(c);
    return c;
}

static void add_tool(sb_registry *r, const char *name, int mode)
{
    char err[256] = "";
    cJSON *c = contract(name);
    if (sb_registry_add(r, c, tool_fn, (void *)(intptr_t)mode, err, sizeof err) != 0) {
        cJSON_Delete(c);
        fail_msg("sb_registry_add(%s): %s", name, err);
    }
}

static void engine_start(engine *e, unsigned page_size, unsigned max_sessions,
                         unsigned call_timeout_s)
{
    e->loop = sb_loop_start();
    assert_non_null(e->loop);
    sb_registry *reg = sb_registry_new();
    assert_non_null(reg);
    add_tool(reg, "greet", T_SYNC);
    add_tool(reg, "greet_b", T_SYNC);
    add_tool(reg, "greet_later", T_ASYNC);
    add_tool(reg, "greet_never", T_NEVER);
    add_tool(reg, "greet_broken", T_FAIL);
    assert_int_equal(sb_registry_count(reg), 5);
    sb_mcp_options o = {
        .server_name = "signbridge-test",
        .server_title = "signbridge test",
        .server_version = "9.9.9",
        .instructions = "Test instructions.",
        .page_size = page_size,
        .max_sessions = max_sessions,
        .session_idle_s = 3600,
        .call_timeout_s = call_timeout_s,
    };
    e->m = sb_mcp_new(&o, reg, e->loop);
    assert_non_null(e->m);
    assert_ptr_equal(sb_mcp_registry(e->m), reg);
    assert_ptr_equal(sb_mcp_loop(e->m), e->loop);
}

static void engine_stop(engine *e)
{
    /* as main() does: the loop first (its leftover tasks and timers still use the engine) */
    sb_loop_stop(e->loop);
    sb_mcp_free(e->m);
}

/* POST `body`; returns the parsed body (NULL when empty) and fills *r (body freed here). */
static cJSON *post_(engine *e, const char *session, const char *version, const char *fp,
                    const char *body, sb_mcp_reply *r)
{
    sb_mcp_req req = {.session_id = session,
                      .protocol_version = version,
                      .fingerprint = fp,
                      .request_id = "test"};
    sb_mcp_post(e->m, &req, body, strlen(body), r);
    cJSON *j = NULL;
    if (r->body) {
        assert_int_equal(r->body_len, strlen(r->body));
        j = cJSON_Parse(r->body);
        if (!j) fail_msg("reply body is not JSON: %s", r->body);
        free(r->body);
        r->body = NULL;
    }
    return j;
}

/* initialize; returns the session id in sid */
static void initialize(engine *e, const char *fp, const char *version, char *sid)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
             "\"protocolVersion\":\"%s\",\"capabilities\":{\"elicitation\":{}},"
             "\"clientInfo\":{\"name\":\"unit\",\"version\":\"1\"}}}",
             version);
    sb_mcp_reply r;
    cJSON *j = post_(e, NULL, NULL, fp, body, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(j);
    assert_null(r.call);
    assert_int_equal(strlen(r.session_id), SB_SESSION_ID_LEN);
    memcpy(sid, r.session_id, SB_SESSION_ID_LEN + 1);
    cJSON_Delete(j);
}

static const cJSON *result_of(const cJSON *j)
{
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "result");
    if (!cJSON_IsObject(r)) {
        char *s = cJSON_PrintUnformatted(j);
        print_error("no result in %s\n", s ? s : "?");
        free(s);
        fail();
    }
    return r;
}

static int error_code(const cJSON *j)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
    return cJSON_IsNumber(c) ? (int)c->valuedouble : 0;
}

static const char *error_message(const cJSON *j)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    return cJSON_IsString(m) ? m->valuestring : "";
}

/* text of content[0] of a CallToolResult */
static const char *tool_text(const cJSON *result)
{
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(result, "content");
    const cJSON *first = cJSON_GetArrayItem(content, 0);
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(first, "text");
    assert_true(cJSON_IsString(text));
    return text->valuestring;
}

#define V "2025-11-25"
#define TOOLS_LIST "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}"

/* ---------------------------------------------------------------------------------------------
 * Engine: lifecycle
 */

static void test_engine_initialize(void **state)
{
    (void)state;
    engine e;
    engine_start(&e, 100, 100, 60);
    const char *body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
                       "\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},"
                       "\"clientInfo\":{\"name\":\"unit\",\"version\":\"1\"}}}";
    sb_mcp_reply r;
    cJSON *j = post_(&e, NULL, NULL, "fp", body, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(strlen(r.session_id), SB_SESSION_ID_LEN);
    assert_true(is_b64url(r.session_id));
    assert_string_equal(r.rpc_method, "initialize");
    const cJSON *res = result_of(j);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(res, "protocolVersion")->valuestring,
                        "2025-06-18");
    const cJSON *si = cJSON_GetObjectItemCaseSensitive(res, "serverInfo");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(si, "name")->valuestring,
                        "signbridge-test");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(si, "version")->valuestring, "9.9.9");
    const cJSON *caps = cJSON_GetObjectItemCaseSensitive(res, "capabilities");
    assert_true(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(caps, "tools")));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(res, "instructions")->valuestring,
                        "Test instructions.");
    assert_true(cJSON_GetObjectItemCaseSensitive(j, "id")->valuedouble == 1);
    cJSON_Delete(j);
    char first[SB_SESSION_ID_LEN + 1];
    memcpy(first, r.session_id, sizeof first);

    /* an unsupported version is answered with the latest */
    body = "{\"jsonrpc\":\"2.0\",\"id\":\"i2\",\"method\":\"initialize\",\"params\":{"
           "\"protocolVersion\":\"1999-01-01\",\"capabilities\":{},"
           "\"clientInfo\":{\"name\":\"unit\",\"version\":\"1\"}}}";
    j = post_(&e, NULL, NULL, "fp", body, &r);
    assert_int_equal(r.status, 200);
    res = result_of(j);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(res, "protocolVersion")->valuestring,
                        "2025-11-25");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "id")->valuestring, "i2");
    assert_string_not_equal(r.session_id, first); /* a new session each time */
    cJSON_Delete(j);

    /* the three supported versions are echoed */
    static const char *const vers[] = {"2025-11-25", "2025-06-18", "2025-03-26"};
    for (size_t i = 0; i < 3; i++) {
        char b[400];
        snprintf(b, sizeof b,
                 "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"initialize\",\"params\":{"
                 "\"protocolVersion\":\"%s\",\"capabilities\":{},"
                 "\"clientInfo\":{\"name\":\"unit\",\"version\":\"1\"}}}",
                 vers[i]);
        j = post_(&e, NULL, NULL, "fp", b, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(
            cJSON_GetObjectItemCaseSensitive(result_of(j), "protocolVersion")->valuestring,
            vers[i]);
        cJSON_Delete(j);
    }
    assert_int_equal(sb_sessions_count(sb_mcp_sessions(e.m)), 5);

    /* initialize without params -> -32602, no session */
    j = post_(&e, NULL, NULL, "fp", "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"initialize\"}", &r);
    assert_int_equal(error_code(j), SB_RPC_INVALID_PARAMS);
    assert_string_equal(r.session_id, "");
    cJSON_Delete(j);

    /* initialize inside an existing session -> 400 */
    j = post_(&e, first, NULL, "fp", body, &r);
    assert_int_equal(r.status, 400);
    assert_int_equal(error_code(j), SB_RPC_INVALID_REQUEST);
    cJSON_Delete(j);
    assert_int_equal(sb_sessions_count(sb_mcp_sessions(e.m)), 5);

    /* ping in the session */
    j = post_(&e, first, V, "fp", "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"ping\"}", &r);
    assert_int_equal(r.status, 200);
    assert_null(result_of(j)->child);
    cJSON_Delete(j);
    engine_stop(&e);
}

static void test_engine_session_required(void **state)
{
    (void)state;
    engine e;
    engine_start(&e, 100, 100, 60);
    char sid[SB_SESSION_ID_LEN + 1];
    initialize(&e, "fp-alice", "2025-11-25", sid);
    sb_mcp_reply r;

    /* no session header */
    cJSON *j = post_(&e, NULL, V, "fp-alice", TOOLS_LIST, &r);
    assert_int_equal(r.status, 400);
    assert_non_null(j);
    assert_true(error_code(j) != 0);
    cJSON_Delete(j);

    /* unknown session (well-formed id) */
    char unknown[SB_SESSION_ID_LEN + 1];
    memset(unknown, 'A', SB_SESSION_ID_LEN);
    unknown[SB_SESSION_ID_LEN] = '\0';
    j = post_(&e, unknown, V, "fp-alice", TOOLS_LIST, &r);
    assert_int_equal(r.status, 404);
    cJSON_Delete(j);
    j = post_(&e, "garbage", V, "fp-alice", TOOLS_LIST, &r);
    assert_int_equal(r.status, 404);
    cJSON_Delete(j);

    /* the right session with a different caller */
    j = post_(&e, sid, V, "fp-bob", TOOLS_LIST, &r);
    assert_int_equal(r.status, 404);
    cJSON_Delete(j);
    j = post_(&e, sid, V, "", TOOLS_LIST, &r);
    assert_int_equal(r.status, 404);
    cJSON_Delete(j);

    /* the right caller */
    j = post_(&e, sid, V, "fp-alice", TOOLS_LIST, &r);
    assert_int_equal(r.status, 200);
    assert_true(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(result_of(j), "tools")));
    cJSON_Delete(j);
    /* no MCP-Protocol-Version header is accepted (the negotiated version is assumed) */
    j = post_(&e, sid, NULL, "fp-alice", TOOLS_LIST, &r);
    assert_int_equal(r.status, 200);
    cJSON_Delete(j);
    engine_stop(&e);
}

static void test_engine_protocol_version_header(void **state)
{
    (void)state;
    engine e;
    engine_start(&e, 100, 100, 60);
    char sid[SB_SESSION_ID_LEN + 1];
    initialize(&e, "fp", "2025-06-18", sid);
    sb_mcp_reply r;
    static const char *const bad[] = {"1999-01-01", "2025-11-26", "", "latest", "2025-06-18 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *j = post_(&e, sid, bad[i], "fp", TOOLS_LIST, &r);
        if (r.status != 400) fail_msg("version header \"%s\": status %d", bad[i], r.status);
        assert_non_null(j);
        assert_true(error_code(j) != 0);
        cJSON_Delete(j);
    }
    static const char *const good[] = {"2025-11-25", "2025-06-18", "2025-03-26"};
    for (size_t i = 0; i < 3; i++) {
        cJSON *j = post_(&e, sid, good[i], "fp", TOOLS_LIST, &r);
        assert_int_equal(r.status, 200);
        cJSON_Delete(j);
    }
    engine_stop(&e);
}

static void test_engine_bad_bodies(void **state)
{
    (void)state;
    engine e;
    engine_start(&e, 100, 100, 60);
    char sid[SB_SESSION_ID_LEN + 1];
    initialize(&e, "fp", V, sid);
    sb_mcp_reply r;

    /* a batch */
    cJSON *j = post_(&e, sid, V, "fp",
                     "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"},"
                     "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}]",
                     &r);
    assert_int_equal(r.status, 400);
    assert_int_equal(error_code(j), SB_RPC_INVALID_REQUEST);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "id")));
    cJSON_Delete(j);
    j = post_(&e, NULL, NULL, "fp", "[]", &r);
    assert_int_equal(r.status, 400);
    assert_int_equal(error_code(j), SB_RPC_INVALID_REQUEST);
    cJSON_Delete(j);

    /* parse error */
    j = post_(&e, sid, V, "fp", "{\"jsonrpc\":\"2.0\",", &r);
    assert_int_equal(r.status, 400);
    assert_int_equal(error_code(j), SB_RPC_PARSE_ERROR);
    cJSON_Delete(j);

    /* invalid envelope: the readable id is echoed */
    j = post_(&e, sid, V, "fp", "{\"jsonrpc\":\"1.0\",\"id\":77,\"method\":\"ping\"}", &r);
    assert_int_equal(r.status, 400);
    assert_int_equal(error_code(j), SB_RPC_INVALID_REQUEST);
    assert_true(cJSON_GetObjectItemCaseSensitive(j, "id")->valuedouble == 77);
    cJSON_Delete(j);

    /* deep nesting */
    char *deep = malloc(200001);
    assert_non_null(deep);
    memset(deep, '[', 200000);
    deep[200000] = '\0';
    j = post_(&e, sid, V, "fp", deep, &r);
    free(deep);
    assert_int_equal(r.status, 400);
    assert_int_equal(error_code(j), SB_RPC_PARSE_ERROR);
    cJSON_Delete(j);
    engine_stop(&e);
}

static void test_engine_methods_and_notifications(void **state)
{
    (void)state;
    engine e;
    engine_start(&e, 100, 100, 60);
    char sid[SB_SESSION_ID_LEN + 1];
    initialize(&e, "fp", V, sid);
    sb_mcp_reply r;

    /* notification: 202, no body */
    cJSON *j = post_(&e, sid, V, "fp",
                     "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", &r);
    assert_int_equal(r.status, 202);
    assert_null(j);
    assert_null(r.call);
    /* an unknown notification is ignored the same way */
    j = post_(&e, sid, V, "fp", "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/whatever\"}", &r);
    assert_int_equal(r.status, 202);
    assert_null(j);
    /* a response to nothing pending: 202 too */
    j = post_(&e, sid, V, "fp", "{\"jsonrpc\":\"2.0\",\"id\":\"sb-404\",\"result\":{}}", &r);
    assert_int_equal(r.status, 202);
    assert_null(j);
    /* a notification needs a session as well */
    j = post_(&e, NULL, V, "fp", "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}",
              &r);
    assert_int_equal(r.status, 400);
    cJSON_Delete(j);

    /* unknown method */
    j = post_(&e, sid, V, "fp", "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/destroy\"}", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(error_code(j), SB_RPC_METHOD_NOT_FOUND);
    assert_true(cJSON_GetObjectItemCaseSensitive(j, "id")->valuedouble == 5);
    assert_string_equal(r.rpc_method, "tools/destroy");
    cJSON_Delete(j);

    /* logging/setLevel */
    j = post_(&e, sid, V, "fp",
              "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"logging/setLevel\",\"params\":{"
              "\"level\":\"warning\"}}",
              &r);
    assert_int_equal(r.status, 200);
    result_of(j);
    cJSON_Delete(j);
    j = post_(&e, sid, V, "fp",
              "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"logging/setLevel\",\"params\":{"
              "\"level\":\"loud\"}}",
              &r);
    assert_int_equal(error_code(j), SB_RPC_INVALID_PARAMS);
    cJSON_Delete(j);
    engine_stop(&e);
}

/* ---------------------------------------------------------------------------------------------
 * Engine: tools/list paging
 */

static void test_engine_tools_list_paging(void **state)
{
    (void)state;
    engine e;
    engine_start(&e, 1, 100, 60);
    char sid[SB_SESSION_ID_LEN + 1];
    initialize(&e, "fp", V, sid);
    sb_mcp_reply r;
    static const char *const want[] = {"greet", "greet_b", "greet_later", "greet_never",
                                       "greet_broken"};
    char cursor[256] = "";
    size_t pages = 0;
    for (;;) {
        char body[512];
        if (cursor[0])
            snprintf(body, sizeof body,
                     "{\"jsonrpc\":\"2.0\",\"id\":%zu,\"method\":\"tools/list\",\"params\":{"
                     "\"cursor\":\"%s\"}}",
                     pages + 10, cursor);
        else
            snprintf(body, sizeof body,
                     "{\"jsonrpc\":\"2.0\",\"id\":%zu,\"method\":\"tools/list\"}", pages + 10);
        cJSON *j = post_(&e, sid, V, "fp", body, &r);
        assert_int_equal(r.status, 200);
        assert_true(cJSON_GetObjectItemCaseSensitive(j, "id")->valuedouble == (double)(pages + 10));
        const cJSON *res = result_of(j);
        const cJSON *tools = cJSON_GetObjectItemCaseSensitive(res, "tools");
        assert_int_equal(cJSON_GetArraySize(tools), 1);
        assert_true(pages < 5);
        const cJSON *tool = cJSON_GetArrayItem(tools, 0);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(tool, "name")->valuestring,
                            want[pages]);
        assert_true(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(tool, "inputSchema")));
        assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(tool, "description")));
        pages++;
        const cJSON *next = cJSON_GetObjectItemCaseSensitive(res, "nextCursor");
        if (!next) {
            cJSON_Delete(j);
            break;
        }
        assert_true(cJSON_IsString(next));
        assert_true(strlen(next->valuestring) < sizeof cursor);
        sb_strlcpy(cursor, next->valuestring, sizeof cursor);
        cJSON_Delete(j);
    }
    assert_int_equal(pages, 5);

    /* a null cursor is the first page */
    cJSON *j = post_(&e, sid, V, "fp",
                     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\",\"params\":{"
                     "\"cursor\":null}}",
                     &r);
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(
            cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(result_of(j), "tools"), 0), "name")
            ->valuestring,
        "greet");
    cJSON_Delete(j);

    /* garbage cursors */
    char past[96];
    sb_cursor_encode(99, past, sizeof past);
    char forged[96];
    sb_base64url_encode((const unsigned char *)"sbc1:1:000000", 13, forged);
    const char *bad[] = {"\"abc\"", "\"\"", "5", "{}", "\"!!!!\"", NULL, NULL};
    char past_q[128], forged_q[128];
    snprintf(past_q, sizeof past_q, "\"%s\"", past);
    snprintf(forged_q, sizeof forged_q, "\"%s\"", forged);
    bad[5] = past_q;
    bad[6] = forged_q;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char body[512];
        snprintf(body, sizeof body,
                 "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/list\",\"params\":{"
                 "\"cursor\":%s}}",
                 bad[i]);
        j = post_(&e, sid, V, "fp", body, &r);
        if (error_code(j) != SB_RPC_INVALID_PARAMS)
            fail_msg("cursor %s: expected -32602, got %d", bad[i], error_code(j));
        cJSON_Delete(j);
    }
    engine_stop(&e);
}

/* ---------------------------------------------------------------------------------------------
 * Engine: tools/list compressed for clients that take gzip
 */

/* gzip member -> malloc'd bytes (NUL-terminated); zlib checks the trailer (CRC and size) */
static char *gunzip(const char *z, size_t zlen, size_t *outlen)
{
    z_stream s;
    memset(&s, 0, sizeof s);
    assert_int_equal(inflateInit2(&s, 16 + 15), Z_OK);
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    s.next_in = (Bytef *)(uintptr_t)z;
    s.avail_in = (uInt)zlen;
    int rc;
    do {
        if (cap - len < 4096) out = realloc(out, cap *= 2);
        assert_non_null(out);
        s.next_out = (Bytef *)out + len;
        s.avail_out = (uInt)(cap - len - 1);
        rc = inflate(&s, Z_NO_FLUSH);
        len = cap - 1 - s.avail_out;
        if (rc != Z_OK && rc != Z_STREAM_END) fail_msg("inflate: %d", rc);
    } while (rc != Z_STREAM_END);
    assert_int_equal(s.avail_in, 0); /* one member, nothing after it */
    inflateEnd(&s);
    out[len] = '\0';
    *outlen = len;
    return out;
}

/* POST body with or without Accept-Encoding: gzip; returns the body as sent (caller frees) */
static char *post_enc(engine *e, const char *sid, const char *body, int gzip, sb_mcp_reply *r)
{
    sb_mcp_req req = {.session_id = sid, .protocol_version = V, .fingerprint = "fp",
                      .request_id = "test", .accept_encoding = gzip ? "gzip, deflate" : NULL};
    sb_mcp_post(e->m, &req, body, strlen(body), r);
    assert_int_equal(r->status, 200);
    assert_non_null(r->body);
    char *b = r->body;
    r->body = NULL;
    return b;
}

static int hide_greet_b(const sb_tool *t, const void *principal, char *www, size_t cap, void *ud)
{
    (void)principal, (void)www, (void)cap, (void)ud;
    return strcmp(t->name, "greet_b") == 0 ? -1 : 0;
}

static void test_engine_tools_list_gzip(void **state)
{
    (void)state;
    for (unsigned page = 1; page <= 100; page += 99) { /* paged one by one, and all at once */
        for (int hide = 0; hide <= 1; hide++) {
            engine e;
            engine_start(&e, page, 100, 60);
            if (hide) sb_mcp_set_visibility(e.m, hide_greet_b, NULL);
            char sid[SB_SESSION_ID_LEN + 1];
            initialize(&e, "fp", V, sid);
            const char *ids[] = {"7", "\"a\\\"b\\u00e9\\\\\"", "-1.5e3", "\"x\""};
            char cursor[256] = "";
            size_t pages = 0;
            for (;;) {
                for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++) {
                    char body[512];
                    snprintf(body, sizeof body,
                             "{\"jsonrpc\":\"2.0\",\"id\":%s,\"method\":\"tools/list\"%s%s%s}",
                             ids[k], cursor[0] ? ",\"params\":{\"cursor\":\"" : "", cursor,
                             cursor[0] ? "\"}" : "");
                    sb_mcp_reply plain, gz;
                    char *pb = post_enc(&e, sid, body, 0, &plain);
                    char *zb = post_enc(&e, sid, body, 1, &gz);
                    assert_null(plain.content_encoding);
                    assert_int_equal(plain.vary_encoding, 1);
                    assert_non_null(gz.content_encoding);
                    assert_string_equal(gz.content_encoding, "gzip");
                    assert_int_equal(gz.vary_encoding, 1);
                    size_t n;
                    char *unz = gunzip(zb, gz.body_len, &n);
                    /* the same bytes, whichever id and page, first use or cached */
                    assert_int_equal(n, plain.body_len);
                    assert_memory_equal(unz, pb, n);
                    free(unz);
                    free(zb);
                    if (k + 1 == sizeof ids / sizeof ids[0]) {
                        cJSON *j = cJSON_Parse(pb);
                        assert_non_null(j);
                        const cJSON *res = result_of(j);
                        const cJSON *tools = cJSON_GetObjectItemCaseSensitive(res, "tools");
                        for (int t = 0; t < cJSON_GetArraySize(tools); t++)
                            assert_string_not_equal(
                                cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(tools, t),
                                                                 "name")
                                    ->valuestring,
                                hide ? "greet_b" : "none");
                        pages++;
                        const cJSON *next = cJSON_GetObjectItemCaseSensitive(res, "nextCursor");
                        if (next) sb_strlcpy(cursor, next->valuestring, sizeof cursor);
                        else cursor[0] = '\0';
                        cJSON_Delete(j);
                    }
                    free(pb);
                }
                if (!cursor[0]) break;
            }
            assert_int_equal(pages, page == 1 ? 5u - (unsigned)hide : 1u);
            /* an error reply is never compressed */
            sb_mcp_reply r;
            char *eb = post_enc(&e, sid,
                                "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\","
                                "\"params\":{\"cursor\":\"!!\"}}",
                                1, &r);
            assert_null(r.content_encoding);
            assert_non_null(strstr(eb, "-32602"));
            free(eb);
            engine_stop(&e);
        }
    }
}

static void test_cursor_codec(void **state)
{
    (void)state;
    char c[96];
    size_t off = 12345;
    for (size_t v = 0; v < 2000; v += 7) {
        sb_cursor_encode(v, c, sizeof c);
        assert_true(c[0] != '\0');
        assert_true(is_b64url(c));
        assert_int_equal(sb_cursor_decode(c, &off), 0);
        assert_int_equal(off, v);
    }
    off = 12345;
    assert_int_equal(sb_cursor_decode("", &off), -1);
    assert_int_equal(sb_cursor_decode("abc", &off), -1);
    assert_int_equal(sb_cursor_decode("c2JjMTox", &off), -1); /* "sbc1:1" without a check */
    char longc[200];
    memset(longc, 'A', sizeof longc - 1);
    longc[sizeof longc - 1] = '\0';
    assert_int_equal(sb_cursor_decode(longc, &off), -1);
    assert_int_equal(off, 12345);
    /* a tampered cursor does not decode */
    sb_cursor_encode(3, c, sizeof c);
    c[strlen(c) - 2] = c[strlen(c) - 2] == 'A' ? 'B' : 'A';
    assert_int_equal(sb_cursor_decode(c, &off), -1);
    /* too small an output buffer gives "" */
    char tiny[4] = "xyz";
    sb_cursor_encode(3, tiny, sizeof tiny);
    assert_string_equal(tiny, "");
}

/* ---------------------------------------------------------------------------------------------
 * Engine: tools/call
 */

static cJSON *call_tool(engine *e, const char *sid, const char *id, const char *name,
                        const char *args_json, sb_mcp_reply *r)
{
    char body[1024];
    if (args_json)
        snprintf(body, sizeof body,
                 "{\"jsonrpc\":\"2.0\",\"id\":%s,\"method\":\"tools/call\",\"params\":{"
                 "\"name\":\"%s\",\"arguments\":%s}}",
                 id, name, args_json);
    else
        snprintf(body, sizeof body,
                 "{\"jsonrpc\":\"2.0\",\"id\":%s,\"method\":\"tools/call\",\"params\":{"
                 "\"name\":\"%s\"}}",
                 id, name);
    return post_(e, sid, V, "fp", body, r);
}

static void test_engine_tools_call(void **state)
{
    (void)state;
    engine e;
    engine_start(&e, 100, 100, 60);
    char sid[SB_SESSION_ID_LEN + 1];
    initialize(&e, "fp", V, sid);
    sb_mcp_reply r;

    /* success, finished synchronously: plain JSON */
    cJSON *j = call_tool(&e, sid, "\"c1\"", "greet", "{\"recipient\":\"Ada\"}", &r);
    assert_int_equal(r.status, 200);
    assert_null(r.call);
    assert_string_equal(r.rpc_method, "tools/call");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "id")->valuestring, "c1");
    const cJSON *res = result_of(j);
    assert_string_equal(tool_text(res), "hello Ada");
    assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "isError")));
    cJSON_Delete(j);

    /* the same id may be reused once the first call has finished */
    j = call_tool(&e, sid, "\"c1\"", "greet_b", "{\"recipient\":\"Bo\"}", &r);
    assert_string_equal(tool_text(result_of(j)), "hello Bo");
    cJSON_Delete(j);

    /* invalid arguments: a tool result with isError and a message naming the field */
    static const struct {
        const char *args, *want;
    } invalid[] = {
        {"{}", "recipient"},
        {"{\"recipient\":5}", "recipient"},
        {"{\"recipient\":\"\"}", "recipient"},
        {"{\"recipient\":\"x\",\"colour\":\"red\"}", "colour"},
        {NULL, "recipient"}, /* no arguments at all */
        {"null", "recipient"},
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        j = call_tool(&e, sid, "2", "greet", invalid[i].args, &r);
        assert_int_equal(r.status, 200);
        res = result_of(j);
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "isError")))
            fail_msg("arguments %s: no isError", invalid[i].args ? invalid[i].args : "(none)");
        const char *text = tool_text(res);
        if (!strstr(text, invalid[i].want))
            fail_msg("arguments %s: message does not name %s: %s",
                     invalid[i].args ? invalid[i].args : "(none)", invalid[i].want, text);
        assert_non_null(strstr(text, "greet"));
        cJSON_Delete(j);
    }

    /* arguments that are not an object: a protocol error */
    j = call_tool(&e, sid, "3", "greet", "\"Ada\"", &r);
    assert_int_equal(error_code(j), SB_RPC_INVALID_PARAMS);
    cJSON_Delete(j);
    j = call_tool(&e, sid, "3", "greet", "[1]", &r);
    assert_int_equal(error_code(j), SB_RPC_INVALID_PARAMS);
    cJSON_Delete(j);

    /* unknown tool */
    j = call_tool(&e, sid, "4", "no_such_tool", "{}", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(error_code(j), SB_RPC_INVALID_PARAMS);
    assert_non_null(strstr(error_message(j), "no_such_tool"));
    assert_true(cJSON_GetObjectItemCaseSensitive(j, "id")->valuedouble == 4);
    cJSON_Delete(j);

    /* name missing or not a string */
    j = post_(&e, sid, V, "fp",
              "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":{}}", &r);
    assert_int_equal(error_code(j), SB_RPC_INVALID_PARAMS);
    cJSON_Delete(j);
    j = post_(&e, sid, V, "fp",
              "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":{\"name\":7}}",
              &r);
    assert_int_equal(error_code(j), SB_RPC_INVALID_PARAMS);
    cJSON_Delete(j);

    /* a tool function that fails without finishing -> -32603 */
    j = call_tool(&e, sid, "6", "greet_broken", "{\"recipient\":\"x\"}", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(error_code(j), SB_RPC_INTERNAL_ERROR);
    cJSON_Delete(j);
    engine_stop(&e);
}

/* ---------------------------------------------------------------------------------------------
 * Engine: running calls (streamed)
 */

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int parked, woken;
} waiter;

static void w_park(void *ctx)
{
    waiter *w = ctx;
    pthread_mutex_lock(&w->mu);
    w->parked++;
    pthread_mutex_unlock(&w->mu);
}

static void w_wake(void *ctx)
{
    waiter *w = ctx;
    pthread_mutex_lock(&w->mu);
    w->woken++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Next message of a running call, waiting (bounded) when parked. Returns sb_mcp_call_next's
 * 1 or 0, or -1 on timeout. */
static int next_msg(sb_mcp_call *c, waiter *w, cJSON **msg, int *is_final)
{
    for (int rounds = 0; rounds < 100; rounds++) {
        pthread_mutex_lock(&w->mu);
        int seen = w->woken;
        pthread_mutex_unlock(&w->mu);
        char *json = NULL;
        size_t len = 0;
        int rc = sb_mcp_call_next(c, &json, &len, is_final, w_park, w_wake, w);
        if (rc == 1) {
            assert_int_equal(len, strlen(json));
            *msg = cJSON_Parse(json);
            free(json);
            assert_non_null(*msg);
            return 1;
        }
        if (rc == 0) return 0;
        assert_int_equal(rc, 2);
        struct timespec dl = deadline_in(5000);
        pthread_mutex_lock(&w->mu);
        while (w->woken == seen)
            if (pthread_cond_timedwait(&w->cv, &w->mu, &dl) == ETIMEDOUT) break;
        int woke = w->woken != seen;
        pthread_mutex_unlock(&w->mu);
        if (!woke) return -1;
    }
    return -1;
}

/* A tool whose result is written as JSON text (as the bridge's mappers write theirs): a greeting
 * as {"greeting":"hello <who>"}, or for "bad" one its output schema refuses. */
static int json_tool_fn(sb_mcp_call *c, const cJSON *args, void *ud)
{
    (void)ud;
    const cJSON *who = cJSON_GetObjectItemCaseSensitive(args, "recipient");
    char text[160];
    if (cJSON_IsString(who) && strcmp(who->valuestring, "bad") == 0)
        snprintf(text, sizeof text, "{\"greeting\":5}");
    else
        snprintf(text, sizeof text, "{\"greeting\":\"hello \\\"%s\\\"\"}",
                 cJSON_IsString(who) ? who->valuestring : "?");
    char *json = strdup(text);
    if (!json) return -1;
    sb_mcp_call_tool_json(c, NULL, json);
    return 0;
}

/* A result written as JSON text with no tree is read back for the output self-check (every one
 * of a tool's first 64): a valid one is sent as text and structuredContent, an invalid one is
 * replaced by an isError result; and the check is sampled after the first 64. */
static void test_engine_tool_json_output_check(void **state)
{
    (void)state;
    engine e;
    e.loop = sb_loop_start();
    assert_non_null(e.loop);
    sb_registry *reg = sb_registry_new();
    assert_non_null(reg);
    cJSON *c = cJSON_Parse(
        "{\"name\":\"greet_json\",\"title\":\"Greeter\",\"description\":\"Greets (test tool).\","
        "\"inputSchema\":{\"type\":\"object\",\"properties\":{\"recipient\":{\"type\":\"string\"}},"
        "\"required\":[\"recipient\"]},"
        "\"outputSchema\":{\"type\":\"object\",\"properties\":{\"greeting\":{\"type\":\"string\"}},"
        "\"required\":[\"greeting\"]}}");
    assert_non_null(c);
    char err[256] = "";
    if (sb_registry_add(reg, c, json_tool_fn, NULL, err, sizeof err) != 0) fail_msg("%s", err);
    sb_mcp_options o = {.server_name = "t", .server_title = "t", .server_version = "1",
                        .page_size = 100, .max_sessions = 10, .session_idle_s = 3600,
                        .call_timeout_s = 60};
    e.m = sb_mcp_new(&o, reg, e.loop);
    assert_non_null(e.m);
    char sid[SB_SESSION_ID_LEN + 1];
    initialize(&e, "fp", V, sid);
    sb_mcp_reply r;
    for (int i = 0; i < 70; i++) {
        cJSON *j = call_tool(&e, sid, "7", "greet_json", "{\"recipient\":\"Ada\"}", &r);
        const cJSON *res = result_of(j);
        assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "isError")));
        assert_string_equal(tool_text(res), "{\"greeting\":\"hello \\\"Ada\\\"\"}");
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(res, "structuredContent"), "greeting");
        assert_true(cJSON_IsString(g));
        assert_string_equal(g->valuestring, "hello \"Ada\"");
        cJSON_Delete(j);
    }
    /* the 71st result is not checked (1 in 64 after the first 64), the 129th is: an invalid one
     * goes out as it is at the first and is replaced at the second */
    cJSON *j = call_tool(&e, sid, "8", "greet_json", "{\"recipient\":\"bad\"}", &r);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(result_of(j), "isError")));
    cJSON_Delete(j);
    for (int i = 71; i < 128; i++)
        cJSON_Delete(call_tool(&e, sid, "9", "greet_json", "{\"recipient\":\"Bo\"}", &r));
    j = call_tool(&e, sid, "10", "greet_json", "{\"recipient\":\"bad\"}", &r);
    const cJSON *res = result_of(j);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "isError")));
    assert_non_null(strstr(tool_text(res), "output schema"));
    cJSON_Delete(j);
    engine_stop(&e);
}

static void test_engine_async_call(void **state)
{
    (void)state;
    engine e;
    engine_start(&e, 100, 100, 60);
    char sid[SB_SESSION_ID_LEN + 1];
    initialize(&e, "fp", V, sid);
    sb_mcp_reply r;
    cJSON *j = post_(&e, sid, V, "fp",
                     "{\"jsonrpc\":\"2.0\",\"id\":\"a1\",\"method\":\"tools/call\",\"params\":{"
                     "\"name\":\"greet_later\",\"arguments\":{\"recipient\":\"Cy\"},"
                     "\"_meta\":{\"progressToken\":\"tok-1\"}}}",
                     &r);
    assert_int_equal(r.status, 200);
    assert_null(j);
    assert_non_null(r.call);
    assert_string_equal(sb_mcp_call_method(r.call), "tools/call");
    assert_string_equal(sb_mcp_call_fingerprint(r.call), "fp");
    assert_ptr_equal(sb_mcp_call_engine(r.call), e.m);
    assert_true(sb_mcp_call_client_has(r.call, "elicitation"));
    assert_false(sb_mcp_call_client_has(r.call, "sampling"));

    waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    cJSON *msg = NULL;
    int fin = -1;
    /* first the progress notification, then the result */
    assert_int_equal(next_msg(r.call, &w, &msg, &fin), 1);
    assert_int_equal(fin, 0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(msg, "method")->valuestring,
                        "notifications/progress");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(msg, "params");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(p, "progressToken")->valuestring, "tok-1");
    assert_null(cJSON_GetObjectItemCaseSensitive(msg, "id"));
    cJSON_Delete(msg);

    assert_int_equal(next_msg(r.call, &w, &msg, &fin), 1);
    assert_int_equal(fin, 1);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(msg, "id")->valuestring, "a1");
    assert_string_equal(tool_text(result_of(msg)), "later Cy");
    cJSON_Delete(msg);
    assert_int_equal(next_msg(r.call, &w, &msg, &fin), 0);
    assert_true(sb_mcp_call_done(r.call));
    size_t q = 99;
    int fq = 0;
    sb_mcp_call_peek(r.call, &q, &fq);
    assert_int_equal(q, 0);
    assert_int_equal(fq, 1);
    sb_mcp_call_detach(r.call);
    engine_stop(&e);
}

static int cancel_count(void)
{
    pthread_mutex_lock(&g_cancel.mu);
    int n = g_cancel.cancelled;
    pthread_mutex_unlock(&g_cancel.mu);
    return n;
}

static void test_engine_cancel_and_delete(void **state)
{
    (void)state;
    engine e;
    engine_start(&e, 100, 100, 60);
    char sid[SB_SESSION_ID_LEN + 1];
    initialize(&e, "fp", V, sid);
    sb_mcp_reply r, r2;
    int base = cancel_count();

    /* a call that never finishes by itself */
    cJSON *j = call_tool(&e, sid, "41", "greet_never", "{\"recipient\":\"x\"}", &r);
    assert_null(j);
    assert_int_equal(r.status, 200);
    assert_non_null(r.call);
    assert_false(sb_mcp_call_done(r.call));

    /* a second request with the same id while the first runs */
    j = call_tool(&e, sid, "41", "greet", "{\"recipient\":\"x\"}", &r2);
    assert_int_equal(r2.status, 200);
    assert_int_equal(error_code(j), SB_RPC_INVALID_REQUEST);
    cJSON_Delete(j);

    /* notifications/cancelled for another id does nothing; for ours cancels */
    j = post_(&e, sid, V, "fp",
              "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{"
              "\"requestId\":\"41\"}}",
              &r2);
    assert_int_equal(r2.status, 202);
    assert_null(j);
    assert_false(sb_mcp_call_done(r.call));
    assert_int_equal(cancel_count(), base);
    j = post_(&e, sid, V, "fp",
              "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{"
              "\"requestId\":41,\"reason\":\"user\"}}",
              &r2);
    assert_int_equal(r2.status, 202);
    assert_true(sb_mcp_call_done(r.call));
    assert_int_equal(cancel_count(), base + 1);
    waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    cJSON *msg = NULL;
    int fin = 0;
    assert_int_equal(next_msg(r.call, &w, &msg, &fin), 0); /* nothing is sent for it */
    sb_mcp_call_detach(r.call);

    /* the id is free again */
    j = call_tool(&e, sid, "41", "greet", "{\"recipient\":\"x\"}", &r2);
    assert_string_equal(tool_text(result_of(j)), "hello x");
    cJSON_Delete(j);

    /* DELETE cancels what still runs, then the session is gone */
    j = call_tool(&e, sid, "42", "greet_never", "{\"recipient\":\"x\"}", &r);
    assert_null(j);
    assert_non_null(r.call);
    sb_mcp_req req = {.session_id = sid, .protocol_version = V, .fingerprint = "fp-other"};
    sb_mcp_delete(e.m, &req, &r2);
    assert_int_equal(r2.status, 404); /* someone else's session */
    free(r2.body);
    assert_false(sb_mcp_call_done(r.call));
    req.fingerprint = "fp";
    sb_mcp_delete(e.m, &req, &r2);
    assert_int_equal(r2.status, 200);
    free(r2.body);
    assert_true(sb_mcp_call_done(r.call));
    assert_int_equal(cancel_count(), base + 2);
    sb_mcp_call_detach(r.call);

    j = post_(&e, sid, V, "fp", TOOLS_LIST, &r2);
    assert_int_equal(r2.status, 404);
    cJSON_Delete(j);
    j = post_(&e, sid, V, "fp", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", &r2);
    assert_int_equal(r2.status, 404);
    cJSON_Delete(j);
    sb_mcp_delete(e.m, &req, &r2);
    assert_int_equal(r2.status, 404); /* already gone */
    free(r2.body);
    req.session_id = NULL;
    sb_mcp_delete(e.m, &req, &r2);
    assert_int_equal(r2.status, 400);
    free(r2.body);
    assert_int_equal(sb_sessions_count(sb_mcp_sessions(e.m)), 0);
    engine_stop(&e);
}

static void test_engine_detach_cancels(void **state)
{
    (void)state;
    engine e;
    engine_start(&e, 100, 100, 60);
    char sid[SB_SESSION_ID_LEN + 1];
    initialize(&e, "fp", V, sid);
    sb_mcp_reply r;
    int base = cancel_count();
    cJSON *j = call_tool(&e, sid, "51", "greet_never", "{\"recipient\":\"x\"}", &r);
    assert_null(j);
    assert_non_null(r.call);
    /* the client goes away */
    sb_mcp_call_detach(r.call);
    assert_int_equal(cancel_count(), base + 1);
    /* and the id can be used again */
    j = call_tool(&e, sid, "51", "greet", "{\"recipient\":\"y\"}", &r);
    assert_string_equal(tool_text(result_of(j)), "hello y");
    cJSON_Delete(j);
    engine_stop(&e);
}

static void test_engine_call_deadline(void **state)
{
    (void)state;
    engine e;
    engine_start(&e, 100, 100, 1); /* every call ends within 1 s */
    char sid[SB_SESSION_ID_LEN + 1];
    initialize(&e, "fp", V, sid);
    sb_mcp_reply r;
    cJSON *j = call_tool(&e, sid, "61", "greet_never", "{\"recipient\":\"x\"}", &r);
    assert_null(j);
    assert_non_null(r.call);
    waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    cJSON *msg = NULL;
    int fin = 0;
    uint64_t t0 = sb_mono_ms();
    assert_int_equal(next_msg(r.call, &w, &msg, &fin), 1);
    uint64_t took = sb_mono_ms() - t0;
    assert_true(took >= 900 && took < 4000);
    assert_int_equal(fin, 1);
    const cJSON *res = result_of(msg);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "isError")));
    assert_non_null(strstr(tool_text(res), "greet_never"));
    cJSON_Delete(msg);
    assert_int_equal(next_msg(r.call, &w, &msg, &fin), 0);
    sb_mcp_call_detach(r.call);
    engine_stop(&e);
}

/* ---------------------------------------------------------------------------------------------
 * Engine: shared sessions through the hooks (a fake store of one record shared by two engines)
 */

static struct {
    pthread_mutex_t mu;
    int have, ended, persists, loads, ends, alives;
    sb_mcp_session_rec rec;
} g_shared = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int fake_persist(const sb_mcp_session_rec *r, void *ud)
{
    (void)ud;
    pthread_mutex_lock(&g_shared.mu);
    g_shared.rec = *r;
    g_shared.have = 1;
    g_shared.ended = 0;
    g_shared.persists++;
    pthread_mutex_unlock(&g_shared.mu);
    return 0;
}

static int fake_load(const char *id, sb_mcp_session_rec *out, void *ud)
{
    (void)ud;
    pthread_mutex_lock(&g_shared.mu);
    g_shared.loads++;
    int ok = g_shared.have && !g_shared.ended && strcmp(g_shared.rec.id, id) == 0;
    if (ok) *out = g_shared.rec;
    pthread_mutex_unlock(&g_shared.mu);
    return ok ? 0 : -1;
}

static void fake_end(const char *id, void *ud)
{
    (void)ud;
    pthread_mutex_lock(&g_shared.mu);
    if (g_shared.have && strcmp(g_shared.rec.id, id) == 0) g_shared.ended = 1;
    g_shared.ends++;
    pthread_mutex_unlock(&g_shared.mu);
}

static int fake_alive(const char *id, void *ud)
{
    (void)ud;
    pthread_mutex_lock(&g_shared.mu);
    g_shared.alives++;
    int alive = !(g_shared.have && g_shared.ended && strcmp(g_shared.rec.id, id) == 0);
    pthread_mutex_unlock(&g_shared.mu);
    return alive;
}

static void test_engine_shared_sessions(void **state)
{
    (void)state;
    engine a, b;
    engine_start(&a, 100, 100, 60);
    engine_start(&b, 100, 100, 60);
    sb_mcp_session_hooks h = {.persist = fake_persist, .load = fake_load, .end = fake_end,
                              .alive = fake_alive};
    sb_mcp_set_session_hooks(a.m, &h);
    sb_mcp_set_session_hooks(b.m, &h);
    char sid[SB_SESSION_ID_LEN + 1];
    initialize(&a, "fp", "2025-06-18", sid);
    assert_int_equal(g_shared.persists, 1);
    assert_string_equal(g_shared.rec.id, sid);
    assert_string_equal(g_shared.rec.owner, "fp");
    assert_string_equal(g_shared.rec.protocol_version, "2025-06-18");
    assert_int_equal(g_shared.rec.client_elicitation, 1);

    /* B serves it (loaded once, then from its own table); another owner key gets 404 */
    sb_mcp_reply r;
    cJSON *j = post_(&b, sid, V, "other", TOOLS_LIST, &r);
    assert_int_equal(r.status, 404);
    cJSON_Delete(j);
    j = post_(&b, sid, V, "fp", TOOLS_LIST, &r);
    assert_int_equal(r.status, 200);
    result_of(j);
    cJSON_Delete(j);
    int loads = g_shared.loads;
    j = post_(&b, sid, V, "fp", TOOLS_LIST, &r);
    assert_int_equal(r.status, 200);
    cJSON_Delete(j);
    assert_int_equal(g_shared.loads, loads);
    assert_int_equal(sb_sessions_count(sb_mcp_sessions(b.m)), 1);

    /* DELETE on A: B's liveness check (at most 1 s old) ends it there too */
    sb_mcp_req req = {.session_id = sid, .fingerprint = "fp", .request_id = "t"};
    sb_mcp_delete(a.m, &req, &r);
    assert_int_equal(r.status, 200);
    free(r.body);
    assert_int_equal(g_shared.ends, 1);
    sleep_ms(1050);
    j = post_(&b, sid, V, "fp", TOOLS_LIST, &r);
    assert_int_equal(r.status, 404);
    cJSON_Delete(j);
    assert_int_equal(sb_sessions_count(sb_mcp_sessions(b.m)), 0);
    /* and it is not loaded again */
    j = post_(&b, sid, V, "fp", TOOLS_LIST, &r);
    assert_int_equal(r.status, 404);
    cJSON_Delete(j);
    engine_stop(&a);
    engine_stop(&b);
}

static void test_session_adopt(void **state)
{
    (void)state;
    sb_sessions *t = sb_sessions_new(2, 3600);
    sb_session tmpl;
    memset(&tmpl, 0, sizeof tmpl);
    memset(tmpl.id, 'A', SB_SESSION_ID_LEN);
    sb_strlcpy(tmpl.fingerprint, "fp", sizeof tmpl.fingerprint);
    sb_strlcpy(tmpl.protocol_version, "2025-03-26", sizeof tmpl.protocol_version);
    sb_strlcpy(tmpl.region, "eu", sizeof tmpl.region);
    tmpl.log_level = 3;
    sb_session *s = NULL;
    assert_int_equal(sb_sessions_adopt(t, &tmpl, &s), 0);
    assert_string_equal(s->region, "eu");
    assert_int_equal(s->admitted, 1);
    sb_session *g = sb_sessions_get(t, tmpl.id, "fp");
    assert_ptr_equal(g, s);
    sb_session_release(g);
    assert_null(sb_sessions_get(t, tmpl.id, "other"));
    sb_session *dup = NULL;
    assert_int_equal(sb_sessions_adopt(t, &tmpl, &dup), -1); /* already there */
    tmpl.id[5] = '\0';
    assert_int_equal(sb_sessions_adopt(t, &tmpl, &dup), -1); /* malformed id */
    sb_session_release(s);
    sb_sessions_free(t);
}

static void test_engine_max_sessions(void **state)
{
    (void)state;
    engine e;
    engine_start(&e, 100, 2, 60);
    char a[SB_SESSION_ID_LEN + 1], b[SB_SESSION_ID_LEN + 1];
    initialize(&e, "fp", V, a);
    initialize(&e, "fp", V, b);
    sb_mcp_reply r;
    cJSON *j = post_(&e, NULL, NULL, "fp",
                     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
                     "\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},"
                     "\"clientInfo\":{\"name\":\"unit\",\"version\":\"1\"}}}",
                     &r);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.session_id, "");
    assert_true(error_code(j) != 0);
    cJSON_Delete(j);
    /* ending one makes room */
    sb_mcp_req req = {.session_id = a, .protocol_version = V, .fingerprint = "fp"};
    sb_mcp_delete(e.m, &req, &r);
    assert_int_equal(r.status, 200);
    free(r.body);
    char c[SB_SESSION_ID_LEN + 1];
    initialize(&e, "fp", V, c);
    engine_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_ids_unique),
        cmocka_unit_test(test_session_get_and_fingerprint),
        cmocka_unit_test(test_session_end),
        cmocka_unit_test(test_session_max),
        cmocka_unit_test(test_session_idle_expiry),
        cmocka_unit_test(test_session_use_refreshes),
        cmocka_unit_test(test_session_tables),
        cmocka_unit_test(test_engine_initialize),
        cmocka_unit_test(test_engine_session_required),
        cmocka_unit_test(test_engine_protocol_version_header),
        cmocka_unit_test(test_engine_bad_bodies),
        cmocka_unit_test(test_engine_methods_and_notifications),
        cmocka_unit_test(test_engine_tools_list_paging),
        cmocka_unit_test(test_engine_tools_list_gzip),
        cmocka_unit_test(test_cursor_codec),
        cmocka_unit_test(test_engine_tools_call),
        cmocka_unit_test(test_engine_tool_json_output_check),
        cmocka_unit_test(test_engine_async_call),
        cmocka_unit_test(test_engine_cancel_and_delete),
        cmocka_unit_test(test_engine_detach_cancels),
        cmocka_unit_test(test_engine_call_deadline),
        cmocka_unit_test(test_engine_max_sessions),
        cmocka_unit_test(test_engine_shared_sessions),
        cmocka_unit_test(test_session_adopt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
