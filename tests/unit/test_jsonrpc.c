/* Unit tests for sb_jsonrpc: classification, invalid envelopes, parse errors, builders, id keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mcp/sb_jsonrpc.h"

/* ---------------------------------------------------------------------------------------------
 * Helpers
 */

static int parse_str(const char *s, sb_rpc_msg *m, char *err, size_t errlen)
{
    return sb_rpc_parse(s, strlen(s), m, err, errlen);
}

/* Expect `body` to fail with `code`; the message must be non-empty and the doc freeable. */
static void expect_code_(const char *body, size_t len, int code, const char *file, int line)
{
    sb_rpc_msg m;
    char err[256];
    memset(err, 0, sizeof err);
    int rc = sb_rpc_parse(body, len, &m, err, sizeof err);
    sb_rpc_msg_free(&m);
    if (rc != code) {
        print_error("body %.*s: expected %d, got %d (%s)\n", (int)(len > 200 ? 200 : len), body,
                    code, rc, err);
        _fail(file, line);
    }
    if (err[0] == '\0') {
        print_error("body %.*s: no error message\n", (int)(len > 200 ? 200 : len), body);
        _fail(file, line);
    }
}

#define EXPECT_CODE(body, code) expect_code_(body, strlen(body), code, __FILE__, __LINE__)
#define EXPECT_CODE_N(body, len, code) expect_code_(body, len, code, __FILE__, __LINE__)

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

/* ---------------------------------------------------------------------------------------------
 * Classification
 */

static void test_request(void **state)
{
    (void)state;
    sb_rpc_msg m;
    char err[256];
    assert_int_equal(
        parse_str("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/list\",\"params\":{\"a\":1}}",
                  &m, err, sizeof err),
        0);
    assert_int_equal(m.kind, SB_RPC_REQUEST);
    assert_non_null(m.doc);
    assert_true(cJSON_IsNumber(m.id));
    assert_true(m.id->valuedouble == 7);
    assert_string_equal(m.method, "tools/list");
    assert_true(cJSON_IsObject(m.params));
    assert_null(m.result);
    assert_null(m.error);
    sb_rpc_msg_free(&m);
    assert_null(m.doc);

    /* string id, no params, surrounding whitespace */
    assert_int_equal(parse_str(" \r\n\t{\"method\":\"ping\",\"id\":\"abc\",\"jsonrpc\":\"2.0\"}\n ",
                               &m, err, sizeof err),
                     0);
    assert_int_equal(m.kind, SB_RPC_REQUEST);
    assert_true(cJSON_IsString(m.id));
    assert_string_equal(m.id->valuestring, "abc");
    assert_null(m.params);
    sb_rpc_msg_free(&m);

    /* params as an array (by-position params are legal JSON-RPC) */
    assert_int_equal(parse_str("{\"jsonrpc\":\"2.0\",\"id\":-3,\"method\":\"x\",\"params\":[1,2]}",
                               &m, err, sizeof err),
                     0);
    assert_true(cJSON_IsArray(m.params));
    assert_true(m.id->valuedouble == -3);
    sb_rpc_msg_free(&m);

    /* the largest exact integer id, and an integer written with an exponent */
    assert_int_equal(parse_str("{\"jsonrpc\":\"2.0\",\"id\":9007199254740991,\"method\":\"x\"}", &m,
                               err, sizeof err),
                     0);
    sb_rpc_msg_free(&m);
    assert_int_equal(
        parse_str("{\"jsonrpc\":\"2.0\",\"id\":1e3,\"method\":\"x\"}", &m, err, sizeof err), 0);
    assert_true(m.id->valuedouble == 1000);
    sb_rpc_msg_free(&m);
    /* id 0 and the empty string are valid ids */
    assert_int_equal(
        parse_str("{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"x\"}", &m, err, sizeof err), 0);
    assert_int_equal(m.kind, SB_RPC_REQUEST);
    sb_rpc_msg_free(&m);
    assert_int_equal(
        parse_str("{\"jsonrpc\":\"2.0\",\"id\":\"\",\"method\":\"x\"}", &m, err, sizeof err), 0);
    assert_int_equal(m.kind, SB_RPC_REQUEST);
    sb_rpc_msg_free(&m);
}

static void test_notification(void **state)
{
    (void)state;
    sb_rpc_msg m;
    char err[256];
    assert_int_equal(parse_str("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", &m,
                               err, sizeof err),
                     0);
    assert_int_equal(m.kind, SB_RPC_NOTIFICATION);
    assert_null(m.id);
    assert_string_equal(m.method, "notifications/initialized");
    sb_rpc_msg_free(&m);

    assert_int_equal(parse_str("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\","
                               "\"params\":{\"requestId\":5,\"reason\":\"x\"}}",
                               &m, err, sizeof err),
                     0);
    assert_int_equal(m.kind, SB_RPC_NOTIFICATION);
    assert_true(cJSON_IsObject(m.params));
    sb_rpc_msg_free(&m);
}

static void test_response(void **state)
{
    (void)state;
    sb_rpc_msg m;
    char err[256];
    assert_int_equal(
        parse_str("{\"jsonrpc\":\"2.0\",\"id\":\"sb-1\",\"result\":{\"action\":\"accept\"}}", &m,
                  err, sizeof err),
        0);
    assert_int_equal(m.kind, SB_RPC_RESPONSE);
    assert_string_equal(m.id->valuestring, "sb-1");
    assert_true(cJSON_IsObject(m.result));
    assert_null(m.error);
    assert_null(m.method);
    sb_rpc_msg_free(&m);

    assert_int_equal(parse_str("{\"jsonrpc\":\"2.0\",\"id\":4,\"error\":{\"code\":-32601,"
                               "\"message\":\"nope\"}}",
                               &m, err, sizeof err),
                     0);
    assert_int_equal(m.kind, SB_RPC_RESPONSE);
    assert_null(m.result);
    assert_true(cJSON_IsObject(m.error));
    assert_true(num(m.error, "code") == -32601);
    sb_rpc_msg_free(&m);

    /* a null result is still a result */
    assert_int_equal(
        parse_str("{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":null}", &m, err, sizeof err), 0);
    assert_int_equal(m.kind, SB_RPC_RESPONSE);
    sb_rpc_msg_free(&m);
}

static void test_classify_direct(void **state)
{
    (void)state;
    sb_rpc_msg m;
    char err[256];
    cJSON *v = cJSON_CreateObject();
    cJSON_AddStringToObject(v, "jsonrpc", "2.0");
    cJSON_AddNumberToObject(v, "id", 12);
    cJSON_AddStringToObject(v, "method", "ping");
    assert_int_equal(sb_rpc_classify(v, &m, err, sizeof err), 0);
    assert_ptr_equal(m.doc, v);
    assert_int_equal(m.kind, SB_RPC_REQUEST);
    sb_rpc_msg_free(&m);

    /* ownership is taken on failure as well */
    v = cJSON_CreateString("hello");
    assert_int_equal(sb_rpc_classify(v, &m, err, sizeof err), SB_RPC_INVALID_REQUEST);
    assert_ptr_equal(m.doc, v);
    sb_rpc_msg_free(&m);

    v = cJSON_CreateArray();
    assert_int_equal(sb_rpc_classify(v, &m, err, sizeof err), SB_RPC_BATCH);
    sb_rpc_msg_free(&m);
}

/* ---------------------------------------------------------------------------------------------
 * Invalid envelopes: -32600
 */

static void test_invalid_envelopes(void **state)
{
    (void)state;
    const int IR = SB_RPC_INVALID_REQUEST;
    /* jsonrpc member */
    EXPECT_CODE("{\"id\":1,\"method\":\"ping\"}", IR);
    EXPECT_CODE("{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}", IR);
    EXPECT_CODE("{\"jsonrpc\":2.0,\"id\":1,\"method\":\"ping\"}", IR);
    EXPECT_CODE("{\"jsonrpc\":\"2.0 \",\"id\":1,\"method\":\"ping\"}", IR);
    EXPECT_CODE("{\"jsonrpc\":null,\"id\":1,\"method\":\"ping\"}", IR);
    /* id */
    EXPECT_CODE("{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}", IR);
    EXPECT_CODE("{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}", IR);
    EXPECT_CODE("{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}", IR);
    EXPECT_CODE("{\"jsonrpc\":\"2.0\",\"id\":{\"a\":1},\"method\":\"ping\"}", IR);
    EXPECT_CODE("{\"jsonrpc\":\"2.0\",\"id\":[1],\"method\":\"ping\"}", IR);
    EXPECT_CODE("{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"ping\"}", IR);
    EXPECT_CODE("{\"jsonrpc\":\"2.0\",\"id\":1e300,\"method\":\"ping\"}", IR);
    EXPECT_CODE("{\"jsonrpc\":\"2.0\",\"id\":9007199254740993,\"method\":\"ping\"}", IR);
    /* method */
    EXPECT_CODE("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\"}", IR);
    EXPECT_CODE("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}", IR);
    EXPECT_CODE("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":null}", IR);
    /* params */
    EXPECT_CODE("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":\"a string\"}", IR);
    EXPECT_CODE("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":42}", IR);
    EXPECT_CODE("{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"params\":true}", IR);
    /* responses */
    EXPECT_CODE("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"error\":{\"code\":1,"
                "\"message\":\"m\"}}",
                IR);
    EXPECT_CODE("{\"jsonrpc\":\"2.0\",\"id\":1}", IR);
    EXPECT_CODE("{\"jsonrpc\":\"2.0\",\"result\":{}}", IR);
    EXPECT_CODE("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":\"bad\"}", IR);
    EXPECT_CODE("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"message\":\"no code\"}}", IR);
    /* not objects */
    EXPECT_CODE("42", IR);
    EXPECT_CODE("\"request\"", IR);
    EXPECT_CODE("null", IR);
    EXPECT_CODE("true", IR);
    EXPECT_CODE("{}", IR);
}

static void test_invalid_envelope_keeps_id(void **state)
{
    (void)state;
    sb_rpc_msg m;
    char err[256];
    /* when the id is readable, it is reported so the error response can carry it */
    assert_int_equal(
        parse_str("{\"jsonrpc\":\"1.0\",\"id\":5,\"method\":\"x\"}", &m, err, sizeof err),
        SB_RPC_INVALID_REQUEST);
    assert_non_null(m.id);
    assert_true(m.id->valuedouble == 5);
    assert_non_null(strstr(err, "jsonrpc"));
    sb_rpc_msg_free(&m);

    assert_int_equal(
        parse_str("{\"jsonrpc\":\"2.0\",\"id\":\"r1\",\"method\":\"x\",\"params\":\"s\"}", &m, err,
                  sizeof err),
        SB_RPC_INVALID_REQUEST);
    assert_non_null(m.id);
    assert_string_equal(m.id->valuestring, "r1");
    assert_non_null(strstr(err, "params"));
    sb_rpc_msg_free(&m);

    /* an unusable id is not reported */
    assert_int_equal(
        parse_str("{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"x\"}", &m, err, sizeof err),
        SB_RPC_INVALID_REQUEST);
    assert_null(m.id);
    assert_non_null(strstr(err, "id"));
    sb_rpc_msg_free(&m);
}

/* ---------------------------------------------------------------------------------------------
 * Parse errors: -32700
 */

static void test_parse_errors(void **state)
{
    (void)state;
    const int PE = SB_RPC_PARSE_ERROR;
    EXPECT_CODE("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"", PE); /* truncated */
    EXPECT_CODE("{\"jsonrpc\":\"2.0\",\"id\":1,\"meth", PE);
    EXPECT_CODE("{", PE);
    EXPECT_CODE("", PE);
    EXPECT_CODE("   ", PE);
    EXPECT_CODE("{\"jsonrpc\":\"2.0\",\"method\":\"ping\"} x", PE); /* trailing garbage */
    EXPECT_CODE("{\"jsonrpc\":\"2.0\",\"method\":\"ping\"}{}", PE);
    EXPECT_CODE("{\"jsonrpc\":\"2.0\",\"method\":\"ping\"},", PE);
    EXPECT_CODE("{'jsonrpc':'2.0'}", PE);
    EXPECT_CODE("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",}", PE);
    EXPECT_CODE("nul", PE);
    /* invalid UTF-8, inside and outside strings */
    EXPECT_CODE("{\"jsonrpc\":\"2.0\",\"method\":\"p\xC3\x28ng\"}", PE);
    EXPECT_CODE("{\"jsonrpc\":\"2.0\",\"method\":\"\xED\xA0\x80\"}", PE); /* surrogate */
    EXPECT_CODE("{\"jsonrpc\":\"2.0\",\"method\":\"\xC0\xAF\"}", PE);     /* overlong */
    EXPECT_CODE("\xEF\xBB\xBF\xFF{}", PE);
    /* a NUL inside the body, and bytes after an embedded NUL */
    static const char nul_after[] = "{\"jsonrpc\":\"2.0\",\"method\":\"ping\"}\0garbage";
    EXPECT_CODE_N(nul_after, sizeof nul_after - 1, PE);
    /* the length bound is honoured: a valid prefix cut short is a parse error */
    const char *full = "{\"jsonrpc\":\"2.0\",\"method\":\"ping\"}";
    EXPECT_CODE_N(full, strlen(full) - 1, PE);

    /* the message names a position */
    sb_rpc_msg m;
    char err[256];
    assert_int_equal(parse_str("{\"a\":1} junk", &m, err, sizeof err), PE);
    assert_null(m.doc);
    assert_non_null(strstr(err, "Parse error"));
    sb_rpc_msg_free(&m);
}

static void test_deep_nesting(void **state)
{
    (void)state;
    const size_t n = 200000;
    char *body = malloc(n + 1);
    assert_non_null(body);
    memset(body, '[', n);
    body[n] = '\0';
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sb_rpc_msg m;
    char err[256] = "";
    int rc = sb_rpc_parse(body, n, &m, err, sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    sb_rpc_msg_free(&m);
    assert_int_equal(rc, SB_RPC_PARSE_ERROR);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(secs < 2.0);

    /* balanced deep nesting (valid JSON) is refused as well, or classified as a batch: never a
     * crash */
    char *bal = malloc(2 * n + 1);
    assert_non_null(bal);
    memset(bal, '[', n);
    memset(bal + n, ']', n);
    bal[2 * n] = '\0';
    rc = sb_rpc_parse(bal, 2 * n, &m, err, sizeof err);
    sb_rpc_msg_free(&m);
    assert_true(rc == SB_RPC_PARSE_ERROR || rc == SB_RPC_BATCH);

    /* deep objects */
    for (size_t i = 0; i + 5 <= n; i += 5)
        memcpy(body + i, "{\"a\":", 5);
    rc = sb_rpc_parse(body, n, &m, err, sizeof err);
    sb_rpc_msg_free(&m);
    assert_int_equal(rc, SB_RPC_PARSE_ERROR);
    free(bal);
    free(body);
}

static void test_batch_detection(void **state)
{
    (void)state;
    sb_rpc_msg m;
    char err[256];
    assert_int_equal(parse_str("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"},"
                               "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}]",
                               &m, err, sizeof err),
                     SB_RPC_BATCH);
    assert_true(cJSON_IsArray(m.doc));
    assert_int_equal(cJSON_GetArraySize(m.doc), 2);
    sb_rpc_msg_free(&m);

    assert_int_equal(parse_str(" [] ", &m, err, sizeof err), SB_RPC_BATCH);
    assert_true(cJSON_IsArray(m.doc));
    sb_rpc_msg_free(&m);

    /* a broken batch is a parse error, not a batch */
    EXPECT_CODE("[{\"jsonrpc\":\"2.0\"},", SB_RPC_PARSE_ERROR);
}

/* ---------------------------------------------------------------------------------------------
 * Builders
 */

static void test_result_builder(void **state)
{
    (void)state;
    cJSON *id = cJSON_CreateNumber(17);
    cJSON *res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "k", "v");
    char *s = sb_rpc_result(id, res); /* takes res */
    assert_non_null(s);
    cJSON *o = cJSON_Parse(s);
    assert_non_null(o);
    assert_string_equal(str(o, "jsonrpc"), "2.0");
    assert_true(num(o, "id") == 17);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "result");
    assert_true(cJSON_IsObject(r));
    assert_string_equal(str(r, "k"), "v");
    assert_null(cJSON_GetObjectItemCaseSensitive(o, "error"));
    assert_int_equal(cJSON_GetArraySize(o), 3);
    cJSON_Delete(o);
    free(s);

    /* NULL result -> {} ; string id kept as a string */
    cJSON *sid = cJSON_CreateString("a\"b");
    s = sb_rpc_result(sid, NULL);
    o = cJSON_Parse(s);
    assert_non_null(o);
    assert_string_equal(str(o, "id"), "a\"b");
    r = cJSON_GetObjectItemCaseSensitive(o, "result");
    assert_true(cJSON_IsObject(r));
    assert_null(r->child);
    cJSON_Delete(o);
    free(s);

    /* the output parses back as a response */
    s = sb_rpc_result(id, cJSON_CreateObject());
    sb_rpc_msg m;
    char err[256];
    assert_int_equal(parse_str(s, &m, err, sizeof err), 0);
    assert_int_equal(m.kind, SB_RPC_RESPONSE);
    sb_rpc_msg_free(&m);
    free(s);
    cJSON_Delete(id);
    cJSON_Delete(sid);
}

static void test_error_builder(void **state)
{
    (void)state;
    cJSON *id = cJSON_CreateString("req-1");
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "detail", "why");
    char *s = sb_rpc_error(id, SB_RPC_INVALID_PARAMS, "Invalid params: \"x\"", data);
    assert_non_null(s);
    cJSON *o = cJSON_Parse(s);
    assert_non_null(o);
    assert_string_equal(str(o, "jsonrpc"), "2.0");
    assert_string_equal(str(o, "id"), "req-1");
    assert_null(cJSON_GetObjectItemCaseSensitive(o, "result"));
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    assert_true(cJSON_IsObject(e));
    assert_true(num(e, "code") == -32602);
    assert_string_equal(str(e, "message"), "Invalid params: \"x\"");
    assert_string_equal(str(cJSON_GetObjectItemCaseSensitive(e, "data"), "detail"), "why");
    cJSON_Delete(o);
    free(s);

    /* id NULL -> "id": null; no data member */
    s = sb_rpc_error(NULL, SB_RPC_PARSE_ERROR, "Parse error", NULL);
    o = cJSON_Parse(s);
    assert_non_null(o);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "id")));
    e = cJSON_GetObjectItemCaseSensitive(o, "error");
    assert_true(num(e, "code") == -32700);
    assert_null(cJSON_GetObjectItemCaseSensitive(e, "data"));
    cJSON_Delete(o);
    free(s);

    /* with an id, the output parses back as an error response */
    s = sb_rpc_error(id, SB_RPC_METHOD_NOT_FOUND, "Method not found", NULL);
    sb_rpc_msg m;
    char err[256];
    assert_int_equal(parse_str(s, &m, err, sizeof err), 0);
    assert_int_equal(m.kind, SB_RPC_RESPONSE);
    assert_non_null(m.error);
    sb_rpc_msg_free(&m);
    free(s);
    cJSON_Delete(id);
}

static void test_request_builder(void **state)
{
    (void)state;
    cJSON *id = cJSON_CreateString("sb-9");
    cJSON *params = cJSON_CreateObject();
    cJSON_AddStringToObject(params, "message", "Confirm?");
    char *s = sb_rpc_request(id, "elicitation/create", params);
    assert_non_null(s);
    sb_rpc_msg m;
    char err[256];
    assert_int_equal(parse_str(s, &m, err, sizeof err), 0);
    assert_int_equal(m.kind, SB_RPC_REQUEST);
    assert_string_equal(m.method, "elicitation/create");
    assert_string_equal(m.id->valuestring, "sb-9");
    assert_string_equal(str(m.params, "message"), "Confirm?");
    sb_rpc_msg_free(&m);
    free(s);

    /* a notification: no id, no params */
    s = sb_rpc_request(NULL, "notifications/tools/list_changed", NULL);
    assert_non_null(s);
    cJSON *o = cJSON_Parse(s);
    assert_non_null(o);
    assert_null(cJSON_GetObjectItemCaseSensitive(o, "id"));
    assert_null(cJSON_GetObjectItemCaseSensitive(o, "params"));
    assert_string_equal(str(o, "jsonrpc"), "2.0");
    cJSON_Delete(o);
    assert_int_equal(parse_str(s, &m, err, sizeof err), 0);
    assert_int_equal(m.kind, SB_RPC_NOTIFICATION);
    sb_rpc_msg_free(&m);
    free(s);
    cJSON_Delete(id);
}

/* ---------------------------------------------------------------------------------------------
 * Id keys
 */

static void test_id_key(void **state)
{
    (void)state;
    char k[80];
    cJSON *a = cJSON_CreateString("abc");
    assert_int_equal(sb_rpc_id_key(a, k, sizeof k), 0);
    assert_string_equal(k, "s:abc");
    cJSON *n = cJSON_CreateNumber(42);
    assert_int_equal(sb_rpc_id_key(n, k, sizeof k), 0);
    assert_string_equal(k, "n:42");
    /* the string "42" and the number 42 are different ids */
    cJSON *s42 = cJSON_CreateString("42");
    char k2[80];
    assert_int_equal(sb_rpc_id_key(s42, k2, sizeof k2), 0);
    assert_string_equal(k2, "s:42");
    assert_string_not_equal(k, k2);
    cJSON *neg = cJSON_CreateNumber(-7);
    assert_int_equal(sb_rpc_id_key(neg, k, sizeof k), 0);
    assert_string_equal(k, "n:-7");
    cJSON *big = cJSON_CreateNumber(9007199254740991.0);
    assert_int_equal(sb_rpc_id_key(big, k, sizeof k), 0);
    assert_string_equal(k, "n:9007199254740991");
    cJSON *empty = cJSON_CreateString("");
    assert_int_equal(sb_rpc_id_key(empty, k, sizeof k), 0);
    assert_string_equal(k, "s:");
    /* whole numbers are written without printf: the same key "%.0f" gives, for every form */
    static const double nums[] = {0, -0.0, 1, 9, 10, 99, 100, 4242, 1795500100, 999999999999999.0,
                                  1e15, 1e15 + 2, 9007199254740992.0, 1e300, -1, -0.4, 0.5, 1.5,
                                  2.5, 41.99, 1e-9};
    for (size_t i = 0; i < sizeof nums / sizeof *nums; i++) {
        char want[400], got[400];
        snprintf(want, sizeof want, "n:%.0f", nums[i]);
        cJSON *v = cJSON_CreateNumber(nums[i]);
        assert_int_equal(sb_rpc_id_key(v, got, sizeof got), 0);
        assert_string_equal(got, want);
        /* exactly room for it, then one byte short */
        size_t need = strlen(want) + 1;
        assert_int_equal(sb_rpc_id_key(v, got, need), 0);
        assert_string_equal(got, want);
        assert_int_equal(sb_rpc_id_key(v, got, need - 1), -1);
        cJSON_Delete(v);
    }

    /* not an id */
    cJSON *nul = cJSON_CreateNull();
    assert_int_equal(sb_rpc_id_key(nul, k, sizeof k), -1);
    assert_int_equal(sb_rpc_id_key(NULL, k, sizeof k), -1);
    cJSON *obj = cJSON_CreateObject();
    assert_int_equal(sb_rpc_id_key(obj, k, sizeof k), -1);

    /* does not fit */
    char small[6];
    assert_int_equal(sb_rpc_id_key(a, small, sizeof small), 0); /* "s:abc" + NUL: exactly 6 */
    assert_string_equal(small, "s:abc");
    cJSON_Delete(a);
    a = cJSON_CreateString("abcd");
    assert_int_equal(sb_rpc_id_key(a, small, sizeof small), -1);
    char longid[200];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    cJSON *lng = cJSON_CreateString(longid);
    assert_int_equal(sb_rpc_id_key(lng, k, sizeof k), -1);

    /* keys of parsed ids match keys of built ids */
    sb_rpc_msg m;
    char err[256];
    assert_int_equal(
        parse_str("{\"jsonrpc\":\"2.0\",\"id\":42,\"method\":\"x\"}", &m, err, sizeof err), 0);
    assert_int_equal(sb_rpc_id_key(m.id, k, sizeof k), 0);
    assert_string_equal(k, "n:42");
    sb_rpc_msg_free(&m);

    cJSON_Delete(a);
    cJSON_Delete(n);
    cJSON_Delete(s42);
    cJSON_Delete(neg);
    cJSON_Delete(big);
    cJSON_Delete(empty);
    cJSON_Delete(nul);
    cJSON_Delete(obj);
    cJSON_Delete(lng);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request),
        cmocka_unit_test(test_notification),
        cmocka_unit_test(test_response),
        cmocka_unit_test(test_classify_direct),
        cmocka_unit_test(test_invalid_envelopes),
        cmocka_unit_test(test_invalid_envelope_keeps_id),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_batch_detection),
        cmocka_unit_test(test_result_builder),
        cmocka_unit_test(test_error_builder),
        cmocka_unit_test(test_request_builder),
        cmocka_unit_test(test_id_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
