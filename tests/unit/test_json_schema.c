/* Unit tests for sb_json_schema: every keyword valid and invalid, messages, $ref, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/sb_json_schema.h"

/* ---------------------------------------------------------------------------------------------
 * Helpers
 */

static cJSON *parse_or_die(const char *text, const char *file, int line)
{
    cJSON *j = cJSON_Parse(text);
    if (!j) {
        print_error("bad JSON in test: %s\n", text);
        _fail(file, line);
    }
    return j;
}

/* Validate `inst` against `schema` (root = schema) with where = "arguments". */
static int run(const char *schema, const char *inst, char *err, size_t errlen, const char *file,
               int line)
{
    cJSON *s = parse_or_die(schema, file, line);
    cJSON *i = parse_or_die(inst, file, line);
    int rc = sb_schema_validate(s, s, i, "arguments", err, errlen);
    cJSON_Delete(s);
    cJSON_Delete(i);
    return rc;
}

static void expect_ok_(const char *schema, const char *inst, const char *file, int line)
{
    char err[512];
    memset(err, 'x', sizeof err);
    int rc = run(schema, inst, err, sizeof err, file, line);
    if (rc != 0) {
        print_error("expected valid: schema=%s instance=%s\n  got rc=%d err=%s\n", schema, inst, rc,
                    err);
        _fail(file, line);
    }
    if (err[0] != '\0') {
        print_error("err not empty on success: %s\n", err);
        _fail(file, line);
    }
}

static void expect_fail_(const char *schema, const char *inst, const char *want, const char *file,
                         int line)
{
    char err[512];
    int rc = run(schema, inst, err, sizeof err, file, line);
    if (rc != -1) {
        print_error("expected invalid: schema=%s instance=%s (rc=%d)\n", schema, inst, rc);
        _fail(file, line);
    }
    if (want && !strstr(err, want)) {
        print_error("schema=%s instance=%s\n  message: %s\n  wanted:  %s\n", schema, inst, err,
                    want);
        _fail(file, line);
    }
}

#define OK(schema, inst) expect_ok_(schema, inst, __FILE__, __LINE__)
#define BAD(schema, inst, want) expect_fail_(schema, inst, want, __FILE__, __LINE__)

static void expect_check_(const char *schema, const char *want, const char *file, int line)
{
    char err[512];
    cJSON *s = parse_or_die(schema, file, line);
    int rc = sb_schema_check(s, err, sizeof err);
    cJSON_Delete(s);
    if (!want) {
        if (rc != 0) {
            print_error("expected check() to accept %s\n  got: %s\n", schema, err);
            _fail(file, line);
        }
        return;
    }
    if (rc != -1 || !strstr(err, want)) {
        print_error("expected check() to reject %s\n  rc=%d message: %s\n  wanted: %s\n", schema,
                    rc, err, want);
        _fail(file, line);
    }
}

#define CHECK_OK(schema) expect_check_(schema, NULL, __FILE__, __LINE__)
#define CHECK_BAD(schema, want) expect_check_(schema, want, __FILE__, __LINE__)

/* n nested arrays built without the parser (which stops at 1000 levels). */
static cJSON *deep_array(size_t n)
{
    cJSON *v = cJSON_CreateArray();
    assert_non_null(v);
    for (size_t i = 1; i < n; i++) {
        cJSON *outer = cJSON_CreateArray();
        assert_non_null(outer);
        cJSON_AddItemToArray(outer, v);
        v = outer;
    }
    return v;
}

/* cJSON_Delete recurses; free a single-child chain level by level instead. */
static void free_deep(cJSON *v)
{
    while (v) {
        cJSON *child = v->child;
        v->child = NULL;
        cJSON_Delete(v);
        v = child;
    }
}

/* 1 if s is well-formed UTF-8 (used to check that truncation never splits a character). */
static int utf8_ok(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    while (*u) {
        int n = *u < 0x80 ? 1 : (*u >> 5) == 6 ? 2 : (*u >> 4) == 14 ? 3 : (*u >> 3) == 30 ? 4 : 0;
        if (!n) return 0;
        for (int i = 1; i < n; i++)
            if ((u[i] & 0xC0) != 0x80) return 0;
        u += n;
    }
    return 1;
}

/* ---------------------------------------------------------------------------------------------
 * type
 */

static void test_type_each(void **state)
{
    (void)state;
    OK("{\"type\":\"string\"}", "\"x\"");
    OK("{\"type\":\"number\"}", "1.5");
    OK("{\"type\":\"number\"}", "3");
    OK("{\"type\":\"integer\"}", "3");
    OK("{\"type\":\"integer\"}", "3.0");
    OK("{\"type\":\"integer\"}", "-1e3");
    OK("{\"type\":\"boolean\"}", "true");
    OK("{\"type\":\"boolean\"}", "false");
    OK("{\"type\":\"object\"}", "{}");
    OK("{\"type\":\"array\"}", "[]");
    OK("{\"type\":\"null\"}", "null");
    BAD("{\"type\":\"string\"}", "1", "arguments: must be of type string, got number (type)");
    BAD("{\"type\":\"integer\"}", "1.5", "must be of type integer, got number (type)");
    BAD("{\"type\":\"number\"}", "\"1\"", "got string (type)");
    BAD("{\"type\":\"boolean\"}", "0", "got number (type)");
    BAD("{\"type\":\"object\"}", "[]", "got array (type)");
    BAD("{\"type\":\"array\"}", "{}", "got object (type)");
    BAD("{\"type\":\"null\"}", "false", "got boolean (type)");
    BAD("{\"type\":\"string\"}", "null", "got null (type)");
}

static void test_type_array(void **state)
{
    (void)state;
    OK("{\"type\":[\"string\",\"null\"]}", "null");
    OK("{\"type\":[\"string\",\"null\"]}", "\"a\"");
    OK("{\"type\":[\"integer\",\"string\"]}", "7");
    BAD("{\"type\":[\"string\",\"null\"]}", "1", "must be of type string or null, got number");
    BAD("{\"type\":[\"string\",\"integer\",\"null\"]}", "1.5",
        "must be of type string, integer or null, got number (type)");
}

static void test_type_in_property_path(void **state)
{
    (void)state;
    BAD("{\"properties\":{\"x\":{\"type\":\"string\"}}}", "{\"x\":5}",
        "arguments.x: must be of type string, got number (type)");
}

/* ---------------------------------------------------------------------------------------------
 * Objects
 */

static void test_properties_and_paths(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"object\",\"properties\":{\"signers\":{\"type\":\"array\","
                    "\"items\":{\"type\":\"object\",\"properties\":{\"email\":{\"type\":\"string\","
                    "\"format\":\"email\"}}}}}}";
    OK(s, "{\"signers\":[{\"email\":\"a@b.co\"}]}");
    OK(s, "{\"other\":1}");
    BAD(s, "{\"signers\":[{\"email\":\"a@b.co\"},{\"email\":\"nope\"}]}",
        "arguments.signers[1].email: must be a valid email address (format)");
    BAD("{\"properties\":{\"weird name\":{\"type\":\"string\"}}}", "{\"weird name\":1}",
        "arguments[\"weird name\"]: must be of type string");
    BAD("{\"properties\":{\"a\\\"b\":{\"type\":\"string\"}}}", "{\"a\\\"b\":1}",
        "arguments[\"a\\\"b\"]: must be");
    BAD("{\"properties\":{\"a\\nb\":{\"type\":\"string\"}}}", "{\"a\\nb\":1}",
        "arguments[\"a\\nb\"]: must be");
    BAD("{\"properties\":{\"a\\u0001\":{\"type\":\"string\"}}}", "{\"a\\u0001\":1}",
        "arguments[\"a\\u0001\"]: must be");
    BAD("{\"properties\":{\"\":{\"type\":\"string\"}}}", "{\"\":1}", "arguments[\"\"]: must be");
    BAD("{\"properties\":{\"$x_1\":{\"type\":\"string\"}}}", "{\"$x_1\":1}",
        "arguments.$x_1: must be");
    BAD("{\"properties\":{\"1a\":{\"type\":\"string\"}}}", "{\"1a\":1}", "arguments[\"1a\"]:");
    BAD("{\"properties\":{\"caf\xc3\xa9\":{\"type\":\"string\"}}}", "{\"caf\xc3\xa9\":1}",
        "arguments[\"caf\xc3\xa9\"]:");
}

static void test_invalid_utf8_name_escaped(void **state)
{
    (void)state;
    /* cJSON passes raw bytes through; the message must not. */
    BAD("{\"additionalProperties\":false}", "{\"a\xff\":1}", "unexpected property 'a\\xff'");
    BAD("{\"required\":[\"it's\"]}", "{}", "missing required property 'it\\'s'");
}

static void test_required(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"object\",\"required\":[\"title\",\"body\"]}";
    OK(s, "{\"title\":\"t\",\"body\":\"b\"}");
    OK(s, "{\"title\":null,\"body\":0,\"extra\":1}");
    BAD(s, "{\"body\":\"b\"}", "arguments: missing required property 'title' (required)");
    BAD(s, "{\"title\":\"t\"}", "missing required property 'body' (required)");
    /* required only applies to objects */
    OK("{\"required\":[\"a\"]}", "[1]");
    BAD("{\"properties\":{\"o\":{\"required\":[\"z\"]}}}", "{\"o\":{}}",
        "arguments.o: missing required property 'z' (required)");
}

static void test_additional_properties(void **state)
{
    (void)state;
    const char *s = "{\"properties\":{\"a\":{}},\"additionalProperties\":false}";
    OK(s, "{}");
    OK(s, "{\"a\":1}");
    BAD(s, "{\"a\":1,\"foo\":2}", "arguments: unexpected property 'foo' (additionalProperties)");
    OK("{\"additionalProperties\":true}", "{\"x\":1}");
    const char *t = "{\"properties\":{\"a\":{}},\"additionalProperties\":{\"type\":\"integer\"}}";
    OK(t, "{\"a\":\"s\",\"b\":1,\"c\":2}");
    BAD(t, "{\"a\":\"s\",\"b\":\"x\"}", "arguments.b: must be of type integer, got string (type)");
    BAD("{\"additionalProperties\":false}", "{\"x y\":1}", "unexpected property 'x y'");
}

static void test_min_max_properties(void **state)
{
    (void)state;
    const char *s = "{\"minProperties\":1,\"maxProperties\":2}";
    OK(s, "{\"a\":1}");
    OK(s, "{\"a\":1,\"b\":2}");
    BAD(s, "{}", "arguments: must have at least 1 property (minProperties)");
    BAD(s, "{\"a\":1,\"b\":2,\"c\":3}", "must have at most 2 properties (maxProperties)");
    OK(s, "[]");
}

/* ---------------------------------------------------------------------------------------------
 * Arrays
 */

static void test_items(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"array\",\"items\":{\"type\":\"string\"}}";
    OK(s, "[]");
    OK(s, "[\"a\",\"b\"]");
    BAD(s, "[\"a\",2]", "arguments[1]: must be of type string, got number (type)");
    OK("{\"items\":true}", "[1,\"a\",null]");
    OK("{\"items\":false}", "[]");
    BAD("{\"items\":false}", "[1]", "arguments[0]: no value is allowed here (false schema)");
}

static void test_prefix_items(void **state)
{
    (void)state;
    const char *s = "{\"prefixItems\":[{\"type\":\"string\"},{\"type\":\"integer\"}],"
                    "\"items\":{\"type\":\"boolean\"}}";
    OK(s, "[]");
    OK(s, "[\"a\"]");
    OK(s, "[\"a\",1,true,false]");
    BAD(s, "[1]", "arguments[0]: must be of type string");
    BAD(s, "[\"a\",\"b\"]", "arguments[1]: must be of type integer");
    BAD(s, "[\"a\",1,true,2]", "arguments[3]: must be of type boolean");
    /* without items anything may follow the prefix */
    OK("{\"prefixItems\":[{\"type\":\"string\"}]}", "[\"a\",1,{}]");
}

static void test_min_max_items(void **state)
{
    (void)state;
    const char *s = "{\"minItems\":1,\"maxItems\":3}";
    OK(s, "[1]");
    OK(s, "[1,2,3]");
    BAD(s, "[]", "arguments: must contain at least 1 item (minItems)");
    BAD(s, "[1,2,3,4]", "arguments: must contain at most 3 items (maxItems)");
    OK(s, "\"not an array\"");
}

static void test_unique_items_small(void **state)
{
    (void)state;
    const char *s = "{\"uniqueItems\":true}";
    OK(s, "[]");
    OK(s, "[1,2,\"1\",true,null,[1],{\"a\":1}]");
    OK(s, "[{\"a\":1},{\"a\":2},[1,2],[2,1]]");
    BAD(s, "[1,2,1]", "arguments: must not contain duplicate items ([0] and [2]) (uniqueItems)");
    BAD(s, "[1,1.0]", "([0] and [1])");
    BAD(s, "[{\"a\":1,\"b\":2},{\"b\":2,\"a\":1}]", "(uniqueItems)");
    BAD(s, "[[1,[2]],[1,[2]]]", "(uniqueItems)");
    OK("{\"uniqueItems\":false}", "[1,1]");
}

static void test_unique_items_large(void **state)
{
    (void)state;
    static char buf[100000];
    size_t n = 0;
    n += (size_t)snprintf(buf + n, sizeof buf - n, "[");
    for (int i = 0; i < 2000; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s{\"k\":%d,\"s\":\"v%d\"}", i ? "," : "",
                              i, i % 7);
    snprintf(buf + n, sizeof buf - n, "]");
    OK("{\"uniqueItems\":true}", buf);
    /* the same with duplicates at [1500] and [1900] (both equal to [5]); reported by smallest j */
    static char dup[100000];
    n = 0;
    n += (size_t)snprintf(dup + n, sizeof dup - n, "[");
    for (int i = 0; i < 2000; i++) {
        int k = (i == 1500 || i == 1900) ? 5 : i;
        n += (size_t)snprintf(dup + n, sizeof dup - n, "%s{\"s\":\"v%d\",\"k\":%d}", i ? "," : "",
                              k % 7, k);
    }
    snprintf(dup + n, sizeof dup - n, "]");
    BAD("{\"uniqueItems\":true}", dup, "([5] and [1500]) (uniqueItems)");
    /* 1 and 1.0 collide in the hashed path too */
    n = 0;
    n += (size_t)snprintf(buf + n, sizeof buf - n, "[");
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%d,", i + 10);
    snprintf(buf + n, sizeof buf - n, "-0,0.0]");
    BAD("{\"uniqueItems\":true}", buf, "([100] and [101])");
}

/* ---------------------------------------------------------------------------------------------
 * enum / const
 */

static void test_enum(void **state)
{
    (void)state;
    const char *s = "{\"enum\":[\"a\",\"b\"]}";
    OK(s, "\"a\"");
    OK(s, "\"b\"");
    BAD(s, "\"c\"", "arguments: must be one of \"a\", \"b\" (enum)");
    BAD("{\"properties\":{\"status\":{\"enum\":[\"a\",\"b\"]}}}", "{\"status\":1}",
        "arguments.status: must be one of \"a\", \"b\" (enum)");
    OK("{\"enum\":[1,null,true,{\"x\":[1,2]}]}", "{\"x\":[1,2.0]}");
    OK("{\"enum\":[1,null]}", "1.0");
    BAD("{\"enum\":[1,null,true,{\"x\":[1,2]},[]]}", "{\"x\":[2,1]}",
        "must be one of 1, null, true, {...}, [] (enum)");
    BAD("{\"enum\":[\"q\\\"x\"]}", "1", "must be one of \"q\\\"x\" (enum)");
}

static void test_enum_long_list_truncated(void **state)
{
    (void)state;
    char schema[4096];
    size_t n = (size_t)snprintf(schema, sizeof schema, "{\"enum\":[");
    for (int i = 0; i < 60; i++)
        n += (size_t)snprintf(schema + n, sizeof schema - n, "%s\"value_number_%02d\"",
                              i ? "," : "", i);
    snprintf(schema + n, sizeof schema - n, "]}");
    char err[512];
    assert_int_equal(run(schema, "\"zzz\"", err, sizeof err, __FILE__, __LINE__), -1);
    assert_non_null(strstr(err, "must be one of \"value_number_00\", \"value_number_01\""));
    assert_non_null(strstr(err, ", ... (enum)"));
    assert_null(strstr(err, "value_number_59"));
    assert_true(strlen(err) < 300);
    /* a very long string value is cut */
    char longv[600];
    memset(longv, 'z', sizeof longv);
    memcpy(longv, "{\"enum\":[\"", 10);
    memcpy(longv + 500, "\"]}", 4);
    assert_int_equal(run(longv, "1", err, sizeof err, __FILE__, __LINE__), -1);
    assert_non_null(strstr(err, "...\" (enum)"));
}

static void test_const(void **state)
{
    (void)state;
    OK("{\"const\":\"x\"}", "\"x\"");
    BAD("{\"const\":\"x\"}", "\"y\"", "arguments: must be equal to \"x\" (const)");
    OK("{\"const\":{\"a\":1,\"b\":[true,null]}}", "{\"b\":[true,null],\"a\":1}");
    BAD("{\"const\":{\"a\":1,\"b\":[true,null]}}", "{\"b\":[true,null],\"a\":1,\"c\":0}",
        "(const)");
    BAD("{\"const\":{\"a\":1}}", "{\"b\":1}", "must be equal to {...} (const)");
    OK("{\"const\":null}", "null");
    BAD("{\"const\":null}", "false", "must be equal to null (const)");
    OK("{\"const\":2}", "2.0");
    BAD("{\"const\":2}", "2.5", "must be equal to 2 (const)");
    BAD("{\"const\":[1,2]}", "[1,2,3]", "must be equal to [...] (const)");
    OK("{\"const\":[]}", "[]");
    BAD("{\"const\":\"\"}", "[]", "(const)");
}

/* ---------------------------------------------------------------------------------------------
 * Strings
 */

static void test_string_length_unicode(void **state)
{
    (void)state;
    const char *s = "{\"minLength\":2,\"maxLength\":5}";
    OK(s, "\"ab\"");
    OK(s, "\"abcde\"");
    BAD(s, "\"a\"", "arguments: must be at least 2 characters long (minLength)");
    BAD(s, "\"abcdef\"", "arguments: must be at most 5 characters long (maxLength)");
    /* h\u00e9llo: 5 code points, 6 bytes */
    OK(s, "\"h\xc3\xa9llo\"");
    OK(s, "\"h\\u00e9llo\"");
    /* 5 emoji = 5 code points, 20 bytes; 6 emoji too long */
    OK(s, "\"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\"");
    BAD(s,
        "\"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f"
        "\x98\x80\"",
        "(maxLength)");
    /* one 4-byte code point is shorter than 2 */
    BAD(s, "\"\xf0\x9f\x98\x80\"", "(minLength)");
    /* surrogate pair escape decodes to one code point */
    BAD(s, "\"\\ud83d\\ude00\"", "(minLength)");
    OK("{\"maxLength\":1}", "\"\xe2\x82\xac\"");
    OK("{\"minLength\":0}", "\"\"");
    BAD("{\"minLength\":1}", "\"\"", "(minLength)");
    /* ill-formed bytes count one each */
    BAD("{\"maxLength\":1}", "\"\xff\xfe\"", "(maxLength)");
    OK("{\"minLength\":5}", "5");
}

static void test_format_email(void **state)
{
    (void)state;
    const char *s = "{\"format\":\"email\"}";
    const char *good[] = {"a@b.co",
                          "first.last@example.com",
                          "x+tag@sub.example.org",
                          "o'brien@example.ie",
                          "user_1@my-host.example",
                          "A@B.CD",
                          "a!#$%&*/=?^`{|}~-@example.com"};
    const char *bad[] = {
        "",          "plain",           "@example.com",   "a@",           "a@b",      "a@@b.com",
        "a@b@c.com", "a b@c.com",       "a@b c.com",      ".a@b.com",     "a.@b.com", "a..b@c.com",
        "a@b..com",  "a@.b.com",        "a@b.com.",       "a@-b.com",     "a@b-.com", "a@b_c.com",
        "a@1.2.3.4", "\\\"q\\\"@b.com", "a\\u0000@b.com", "a@b.c\xc3\xa9"};
    char inst[200];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        snprintf(inst, sizeof inst, "\"%s\"", good[i]);
        OK(s, inst);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(inst, sizeof inst, "\"%s\"", bad[i]);
        BAD(s, inst, "arguments: must be a valid email address (format)");
    }
    /* local part of 64 ok, 65 not */
    char local[100];
    memset(local, 'a', 65);
    snprintf(inst, sizeof inst, "\"%.64s@b.com\"", local);
    OK(s, inst);
    snprintf(inst, sizeof inst, "\"%.65s@b.com\"", local);
    BAD(s, inst, "(format)");
    /* label of 64 characters is too long */
    snprintf(inst, sizeof inst, "\"a@%.64s.com\"", local);
    BAD(s, inst, "(format)");
    snprintf(inst, sizeof inst, "\"a@%.63s.com\"", local);
    OK(s, inst);
    /* format only applies to strings */
    OK(s, "5");
}

static void test_format_date_time(void **state)
{
    (void)state;
    const char *s = "{\"format\":\"date-time\"}";
    const char *good[] = {
        "2024-02-29T12:00:00Z",      "2000-02-29T00:00:00Z",      "2023-12-31T23:59:59.999Z",
        "1985-04-12T23:20:50.52Z",   "1996-12-19T16:39:57-08:00", "1990-12-31T15:59:59+05:30",
        "2024-01-01t00:00:00z",      "1998-12-31T23:59:60Z",      "1998-12-31T15:59:60-08:00",
        "1999-01-01T05:29:60+05:30", "0001-01-01T00:00:00+23:59", "2024-06-30T00:00:00.000000001Z"};
    const char *bad[] = {"",
                         "2023-02-29T12:00:00Z", /* not a leap year */
                         "1900-02-29T12:00:00Z", /* divisible by 100, not 400 */
                         "2024-02-30T12:00:00Z",
                         "2024-04-31T12:00:00Z",
                         "2024-13-01T12:00:00Z",
                         "2024-00-01T12:00:00Z",
                         "2024-01-00T12:00:00Z",
                         "2024-01-01T24:00:00Z",
                         "2024-01-01T23:60:00Z",
                         "2024-01-01T23:59:61Z",
                         "2024-01-01T23:58:60Z", /* leap second not at 23:59 UTC */
                         "1998-12-31T23:59:60+01:00",
                         "2024-01-01T12:00:00",   /* no offset */
                         "2024-01-01 12:00:00Z",  /* space separator */
                         "2024-01-01T12:00Z",     /* no seconds */
                         "2024-01-01T12:00:00.Z", /* empty fraction */
                         "2024-01-01T12:00:00+0100",
                         "2024-01-01T12:00:00+24:00",
                         "2024-01-01T12:00:00+01:60",
                         "2024-01-01T12:00:00ZZ",
                         "2024-1-01T12:00:00Z",
                         "24-01-01T12:00:00Z",
                         "2024-01-01",
                         "2024-01-01T12:00:00Z ",
                         "\xd9\xa2\060\062\064-01-01T12:00:00Z"};
    char inst[200];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        snprintf(inst, sizeof inst, "\"%s\"", good[i]);
        OK(s, inst);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(inst, sizeof inst, "\"%s\"", bad[i]);
        BAD(s, inst, "arguments: must be a valid RFC 3339 date-time (format)");
    }
}

static void test_format_date(void **state)
{
    (void)state;
    const char *s = "{\"format\":\"date\"}";
    OK(s, "\"2024-02-29\"");
    OK(s, "\"2000-02-29\"");
    OK(s, "\"1999-12-31\"");
    BAD(s, "\"2023-02-29\"", "arguments: must be a valid date (YYYY-MM-DD) (format)");
    BAD(s, "\"2100-02-29\"", "(format)");
    BAD(s, "\"2024-06-31\"", "(format)");
    BAD(s, "\"2024-6-30\"", "(format)");
    BAD(s, "\"2024-06-30T00:00:00Z\"", "(format)");
    BAD(s, "\"20240630\"", "(format)");
    BAD(s, "\"\"", "(format)");
}

static void test_format_uri(void **state)
{
    (void)state;
    const char *s = "{\"format\":\"uri\"}";
    const char *good[] = {"https://example.com",
                          "http://example.com/a/b?c=d&e=f#frag",
                          "mailto:someone@example.com",
                          "urn:isbn:0451450523",
                          "git+ssh://git@host/x.git",
                          "https://[::1]:8443/x",
                          "https://example.com/%E2%82%AC",
                          "file:///etc/hosts",
                          "a:b"};
    const char *bad[] = {"",
                         "example.com",
                         "/relative/path",
                         "https:",
                         ":nothing",
                         "1http://x",
                         "ht tp://x",
                         "http://exa mple.com",
                         "http://example.com/\\u0001",
                         "http://example.com/<x>",
                         "http://example.com/%zz",
                         "http://example.com/%4",
                         "http://x/#a#b",
                         "http://\xc3\xa9xample.com",
                         "http://example.com/\\\"q\\\""};
    char inst[200];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        snprintf(inst, sizeof inst, "\"%s\"", good[i]);
        OK(s, inst);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(inst, sizeof inst, "\"%s\"", bad[i]);
        BAD(s, inst, "arguments: must be a valid URI (format)");
    }
}

static void test_format_unknown_ignored(void **state)
{
    (void)state;
    OK("{\"format\":\"hostname\"}", "\"!!!\"");
    OK("{\"format\":\"uuid\"}", "\"x\"");
    OK("{\"pattern\":\"^a$\"}", "\"b\""); /* pattern is documented as unsupported */
}

/* ---------------------------------------------------------------------------------------------
 * Numbers
 */

static void test_numeric_bounds(void **state)
{
    (void)state;
    const char *s = "{\"properties\":{\"page_size\":{\"type\":\"integer\",\"minimum\":1,"
                    "\"maximum\":100}}}";
    OK(s, "{\"page_size\":1}");
    OK(s, "{\"page_size\":100}");
    BAD(s, "{\"page_size\":101}", "arguments.page_size: must be <= 100 (maximum)");
    BAD(s, "{\"page_size\":0}", "arguments.page_size: must be >= 1 (minimum)");
    const char *x = "{\"exclusiveMinimum\":0,\"exclusiveMaximum\":1.5}";
    OK(x, "0.0001");
    OK(x, "1.4999");
    BAD(x, "0", "arguments: must be > 0 (exclusiveMinimum)");
    BAD(x, "1.5", "arguments: must be < 1.5 (exclusiveMaximum)");
    BAD("{\"minimum\":0.1}", "0.05", "must be >= 0.1 (minimum)");
    BAD("{\"maximum\":-2.5e-3}", "0", "must be <= -0.0025 (maximum)");
    BAD("{\"maximum\":1e300}", "1e301", "must be <= 1e+300 (maximum)");
    OK("{\"minimum\":5}", "\"not a number\"");
    /* draft-4 boolean exclusiveMinimum is not the 2020-12 form: ignored by validate */
    OK("{\"minimum\":1,\"exclusiveMinimum\":true}", "1");
}

/* ---------------------------------------------------------------------------------------------
 * $ref
 */

static void test_ref_defs(void **state)
{
    (void)state;
    const char *s = "{\"$defs\":{\"email\":{\"type\":\"string\",\"format\":\"email\"}},"
                    "\"properties\":{\"to\":{\"$ref\":\"#/$defs/email\"}}}";
    OK(s, "{\"to\":\"a@b.co\"}");
    BAD(s, "{\"to\":\"x\"}", "arguments.to: must be a valid email address (format)");
    const char *d = "{\"definitions\":{\"n\":{\"type\":\"integer\"}},\"items\":{\"$ref\":"
                    "\"#/definitions/n\"}}";
    OK(d, "[1,2]");
    BAD(d, "[1,\"2\"]", "arguments[1]: must be of type integer");
    /* pointer escapes: ~1 is '/', ~0 is '~', %25 is '%' */
    const char *e = "{\"$defs\":{\"a/b\":{\"type\":\"string\"},\"c~d\":{\"type\":\"null\"},"
                    "\"p%q\":{\"const\":1}},\"properties\":{\"x\":{\"$ref\":\"#/$defs/a~1b\"},"
                    "\"y\":{\"$ref\":\"#/$defs/c~0d\"},\"z\":{\"$ref\":\"#/$defs/p%25q\"}}}";
    OK(e, "{\"x\":\"s\",\"y\":null,\"z\":1}");
    BAD(e, "{\"x\":1}", "arguments.x: must be of type string");
    BAD(e, "{\"y\":1}", "arguments.y: must be of type null");
    BAD(e, "{\"z\":2}", "arguments.z: must be equal to 1 (const)");
    /* $ref with sibling keywords: both apply */
    const char *sib = "{\"$defs\":{\"s\":{\"type\":\"string\"}},\"$ref\":\"#/$defs/s\","
                      "\"maxLength\":2}";
    OK(sib, "\"ab\"");
    BAD(sib, "\"abc\"", "(maxLength)");
    BAD(sib, "1", "(type)");
    /* pointer into an array */
    const char *arr = "{\"x-list\":[true,{\"type\":\"string\"}],\"properties\":{\"a\":{\"$ref\":"
                      "\"#/x-list/1\"},\"b\":{\"$ref\":\"#/x-list/01\"}}}";
    OK(arr, "{\"a\":\"x\"}");
    BAD(arr, "{\"a\":1}", "arguments.a: must be of type string");
    BAD(arr, "{\"b\":1}", "arguments.b: cannot resolve \"#/x-list/01\" ($ref)");
    BAD("{\"allOf\":[true],\"properties\":{\"a\":{\"$ref\":\"#/allOf/1\"}}}", "{\"a\":1}",
        "arguments.a: cannot resolve \"#/allOf/1\" ($ref)");
}

static void test_ref_recursive_tree(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"object\",\"required\":[\"name\"],\"properties\":{\"name\":{"
                    "\"type\":\"string\"},\"children\":{\"type\":\"array\",\"items\":{\"$ref\":"
                    "\"#\"}}},\"additionalProperties\":false}";
    OK(s, "{\"name\":\"a\",\"children\":[{\"name\":\"b\",\"children\":[{\"name\":\"c\"}]}]}");
    BAD(s, "{\"name\":\"a\",\"children\":[{\"name\":\"b\",\"children\":[{\"nam\":\"c\"}]}]}",
        "arguments.children[0].children[0]: missing required property 'name' (required)");
}

static void test_ref_unresolvable(void **state)
{
    (void)state;
    BAD("{\"$ref\":\"#/$defs/missing\"}", "1",
        "arguments: cannot resolve \"#/$defs/missing\" ($ref)");
    BAD("{\"$ref\":\"other.json#/x\"}", "1", "($ref)");
    BAD("{\"$ref\":\"#/$defs/a~2\",\"$defs\":{\"a~2\":true}}", "1", "($ref)");
    /* an unresolvable $ref is a broken schema: "not" must not turn it into success */
    BAD("{\"not\":{\"$ref\":\"#/nope\"}}", "1", "cannot resolve \"#/nope\" ($ref)");
    BAD("{\"anyOf\":[{\"$ref\":\"#/nope\"},true]}", "1", "($ref)");
}

static void test_ref_root_against_separate_root(void **state)
{
    (void)state;
    cJSON *root =
        cJSON_Parse("{\"$defs\":{\"id\":{\"type\":\"string\",\"minLength\":3}},"
                    "\"tools\":{\"t\":{\"properties\":{\"id\":{\"$ref\":\"#/$defs/id\"}}}}}");
    assert_non_null(root);
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(root, "tools");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(tools, "t");
    cJSON *ok = cJSON_Parse("{\"id\":\"abc\"}");
    cJSON *bad = cJSON_Parse("{\"id\":\"ab\"}");
    char err[256];
    assert_int_equal(sb_schema_validate(t, root, ok, "arguments", err, sizeof err), 0);
    assert_int_equal(sb_schema_validate(t, root, bad, "arguments", err, sizeof err), -1);
    assert_string_equal(err, "arguments.id: must be at least 3 characters long (minLength)");
    /* NULL root means the schema itself */
    assert_int_equal(sb_schema_validate(t, NULL, bad, NULL, err, sizeof err), -1);
    assert_string_equal(err, "value.id: cannot resolve \"#/$defs/id\" ($ref)");
    cJSON_Delete(ok);
    cJSON_Delete(bad);
    cJSON_Delete(root);
}

/* ---------------------------------------------------------------------------------------------
 * Combinators and boolean schemas
 */

static void test_all_of(void **state)
{
    (void)state;
    const char *s = "{\"allOf\":[{\"type\":\"integer\"},{\"minimum\":3}]}";
    OK(s, "3");
    BAD(s, "2", "arguments: must be >= 3 (minimum)");
    BAD(s, "3.5", "(type)");
}

static void test_any_of(void **state)
{
    (void)state;
    const char *s = "{\"anyOf\":[{\"type\":\"string\",\"maxLength\":2},{\"type\":\"integer\"}]}";
    OK(s, "\"ab\"");
    OK(s, "7");
    BAD(s, "\"abc\"", "arguments: must match at least one of the 2 allowed schemas (anyOf)");
    BAD(s, "null", "(anyOf)");
    BAD("{\"properties\":{\"v\":{\"anyOf\":[{\"type\":\"null\"},{\"minimum\":1}]}}}", "{\"v\":0}",
        "arguments.v: must match at least one");
}

static void test_one_of(void **state)
{
    (void)state;
    const char *s = "{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":10}]}";
    OK(s, "3");
    OK(s, "10.5");
    BAD(s, "11", "arguments: must match exactly one schema, matched more than one (oneOf)");
    OK(s, "\"x\""); /* minimum ignores strings: only the second matches */
    BAD(s, "5.5", "must match exactly one of the 2 schemas, matched none (oneOf)");
}

static void test_not(void **state)
{
    (void)state;
    const char *s = "{\"not\":{\"type\":\"string\"}}";
    OK(s, "1");
    BAD(s, "\"s\"", "arguments: must not match the schema in \"not\" (not)");
    OK("{\"not\":false}", "1");
    BAD("{\"not\":true}", "1", "(not)");
    /* not(not(x)) == x */
    OK("{\"not\":{\"not\":{\"type\":\"null\"}}}", "null");
    BAD("{\"not\":{\"not\":{\"type\":\"null\"}}}", "0", "(not)");
}

static void test_boolean_schemas(void **state)
{
    (void)state;
    OK("true", "{\"anything\":[1,2]}");
    BAD("false", "null", "arguments: no value is allowed here (false schema)");
    const char *s = "{\"properties\":{\"gone\":false,\"any\":true}}";
    OK(s, "{\"any\":1}");
    BAD(s, "{\"gone\":1}", "arguments.gone: no value is allowed here (false schema)");
    OK("{\"allOf\":[true,true]}", "1");
    BAD("{\"allOf\":[true,false]}", "1", "(false schema)");
    OK("{\"anyOf\":[false,true]}", "1");
    OK("{\"$defs\":{\"t\":true},\"$ref\":\"#/$defs/t\"}", "1");
    BAD("{\"$defs\":{\"f\":false},\"$ref\":\"#/$defs/f\"}", "1", "(false schema)");
}

static void test_ignored_keywords(void **state)
{
    (void)state;
    OK("{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"$id\":\"x\","
       "\"title\":\"t\",\"description\":\"d\",\"default\":5,\"examples\":[1],\"x-vendor\":{}}",
       "\"whatever\"");
}

/* ---------------------------------------------------------------------------------------------
 * Limits: depth, cycles, budget
 */

static void test_deep_instance_fails_cleanly(void **state)
{
    (void)state;
    cJSON *deep = deep_array(200000);
    cJSON *schema = cJSON_Parse("{\"type\":\"array\",\"items\":{\"$ref\":\"#\"}}");
    assert_non_null(schema);
    char err[512];
    assert_int_equal(sb_schema_validate(schema, schema, deep, "arguments", err, sizeof err), -1);
    assert_non_null(strstr(err, "arguments[0][0][0]"));
    assert_non_null(strstr(err, "exceeds the maximum nesting depth of 64 (depth)"));
    /* same through items without $ref: each level is one step */
    cJSON *s2 = cJSON_Parse("{\"items\":{\"items\":{\"items\":{\"items\":{}}}}}");
    assert_int_equal(sb_schema_validate(s2, s2, deep, "arguments", err, sizeof err), 0);
    /* a schema that does not descend accepts it without looking further */
    cJSON *s3 = cJSON_Parse("{\"type\":\"array\",\"minItems\":1}");
    assert_int_equal(sb_schema_validate(s3, s3, deep, "arguments", err, sizeof err), 0);
    /* uniqueItems/const/enum comparisons of deep values are bounded too */
    cJSON *pair = cJSON_CreateArray();
    cJSON_AddItemToArray(pair, deep_array(200000));
    cJSON_AddItemToArray(pair, deep_array(200000));
    cJSON *s4 = cJSON_Parse("{\"uniqueItems\":true}");
    assert_int_equal(sb_schema_validate(s4, s4, pair, "arguments", err, sizeof err), -1);
    assert_non_null(strstr(err, "(uniqueItems)"));
    cJSON *s5 = cJSON_CreateObject();
    cJSON_AddItemToObject(s5, "const", deep_array(100000));
    assert_int_equal(sb_schema_validate(s5, s5, deep, "arguments", err, sizeof err), -1);
    assert_non_null(strstr(err, "too deeply to compare (const)"));
    cJSON *s6 = cJSON_Parse("{\"enum\":[[[[1]]]]}");
    assert_int_equal(sb_schema_validate(s6, s6, deep, "arguments", err, sizeof err), -1);
    assert_non_null(strstr(err, "(enum)"));

    cJSON *a = cJSON_DetachItemFromArray(pair, 0);
    cJSON *b = cJSON_DetachItemFromArray(pair, 0);
    free_deep(a);
    free_deep(b);
    cJSON_Delete(pair);
    free_deep(cJSON_DetachItemFromObject(s5, "const"));
    cJSON_Delete(s5);
    cJSON_Delete(s6);
    cJSON_Delete(s4);
    cJSON_Delete(s3);
    cJSON_Delete(s2);
    cJSON_Delete(schema);
    free_deep(deep);
}

static void test_deep_objects_fail_cleanly(void **state)
{
    (void)state;
    /* {"a":{"a":{...}}} 100000 deep against a recursive properties schema */
    cJSON *v = cJSON_CreateObject();
    for (int i = 0; i < 100000; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "a", v);
        v = o;
    }
    cJSON *schema = cJSON_Parse("{\"properties\":{\"a\":{\"$ref\":\"#\"}}}");
    char err[512];
    assert_int_equal(sb_schema_validate(schema, schema, v, "arguments", err, sizeof err), -1);
    assert_non_null(strstr(err, "arguments.a.a.a"));
    assert_non_null(strstr(err, "(depth)"));
    cJSON_Delete(schema);
    free_deep(v);
}

static void test_ref_cycles_terminate(void **state)
{
    (void)state;
    BAD("{\"$ref\":\"#\"}", "1", "arguments: exceeds the maximum nesting depth of 64 (depth)");
    BAD("{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},\"b\":{\"$ref\":\"#/$defs/a\"}},"
        "\"$ref\":\"#/$defs/a\"}",
        "{}", "(depth)");
    BAD("{\"allOf\":[{\"$ref\":\"#\"}]}", "null", "(depth)");
    /* fatal errors cut through anyOf/oneOf/not instead of being retried or inverted */
    BAD("{\"anyOf\":[{\"$ref\":\"#\"},{\"$ref\":\"#\"}]}", "1", "(depth)");
    BAD("{\"oneOf\":[{\"$ref\":\"#\"},{\"$ref\":\"#\"},true]}", "1", "(depth)");
    BAD("{\"not\":{\"$ref\":\"#\"}}", "1", "(depth)");
}

static void test_step_budget(void **state)
{
    (void)state;
    /* a_i = anyOf[a_{i+1}, a_{i+1}], a_30 = false: 2^30 evaluations without a budget */
    char schema[8192];
    size_t n = (size_t)snprintf(schema, sizeof schema, "{\"$defs\":{");
    for (int i = 0; i < 30; i++)
        n += (size_t)snprintf(schema + n, sizeof schema - n,
                              "\"a%d\":{\"anyOf\":[{\"$ref\":\"#/$defs/a%d\"},{\"$ref\":"
                              "\"#/$defs/a%d\"}]},",
                              i, i + 1, i + 1);
    snprintf(schema + n, sizeof schema - n, "\"a30\":false},\"$ref\":\"#/$defs/a0\"}");
    clock_t t0 = clock();
    BAD(schema, "1", "(complexity)");
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    assert_true(secs < 30.0);
}

/* ---------------------------------------------------------------------------------------------
 * Messages
 */

static void test_small_errlen(void **state)
{
    (void)state;
    cJSON *s = cJSON_Parse("{\"required\":[\"title\"]}");
    cJSON *i = cJSON_Parse("{}");
    for (size_t len = 1; len <= 80; len++) {
        char *err = malloc(len); /* exact size so ASan sees any overflow */
        assert_non_null(err);
        memset(err, 'x', len);
        assert_int_equal(sb_schema_validate(s, s, i, "arguments", err, len), -1);
        assert_true(strlen(err) < len);
        assert_int_equal(
            strncmp(err, "arguments: missing required property 'title' (required)", strlen(err)),
            0);
        free(err);
    }
    char eight[8];
    assert_int_equal(sb_schema_validate(s, s, i, "arguments", eight, sizeof eight), -1);
    assert_string_equal(eight, "argumen");
    /* NULL / zero-length err are fine */
    assert_int_equal(sb_schema_validate(s, s, i, "arguments", NULL, 0), -1);
    char one = 'x';
    assert_int_equal(sb_schema_validate(s, s, i, "arguments", &one, 0), -1);
    assert_int_equal(one, 'x');
    cJSON_Delete(s);
    cJSON_Delete(i);
}

static void test_truncation_keeps_utf8(void **state)
{
    (void)state;
    cJSON *s = cJSON_Parse("{\"properties\":{\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\":{\"type\":"
                           "\"string\"}}}");
    cJSON *i = cJSON_Parse("{\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\":1}");
    for (size_t len = 1; len < 40; len++) {
        char *err = malloc(len);
        assert_non_null(err);
        assert_int_equal(sb_schema_validate(s, s, i, "v", err, len), -1);
        assert_true(utf8_ok(err));
        free(err);
    }
    cJSON_Delete(s);
    cJSON_Delete(i);
}

static void test_long_names_and_paths_bounded(void **state)
{
    (void)state;
    char name[1200];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    cJSON *s = cJSON_CreateObject();
    cJSON *props = cJSON_AddObjectToObject(s, "properties");
    cJSON *p = cJSON_AddObjectToObject(props, name);
    cJSON_AddStringToObject(p, "type", "string");
    cJSON *i = cJSON_CreateObject();
    cJSON_AddNumberToObject(i, name, 1);
    char err[1024];
    assert_int_equal(sb_schema_validate(s, s, i, "arguments", err, sizeof err), -1);
    assert_non_null(strstr(err, "arguments.nnnn"));
    assert_non_null(strstr(err, "...: must be of type string, got number (type)"));
    assert_true(strlen(err) < 200);
    cJSON_Delete(i);
    /* unexpected long property with spaces */
    name[3] = ' ';
    cJSON_AddFalseToObject(s, "additionalProperties");
    i = cJSON_CreateObject();
    cJSON_AddNumberToObject(i, name, 1);
    assert_int_equal(sb_schema_validate(s, s, i, "arguments", err, sizeof err), -1);
    assert_non_null(strstr(err, "unexpected property 'nnn nnn"));
    assert_non_null(strstr(err, "...' (additionalProperties)"));
    assert_true(strlen(err) < 200);
    cJSON_Delete(i);
    cJSON_Delete(s);

    /* a 30-level path of long weird names is cut, message still names the rule */
    cJSON *sch = cJSON_Parse("{\"additionalProperties\":{\"$ref\":\"#\"},\"type\":\"object\"}");
    cJSON *inst = cJSON_CreateString("leaf");
    for (int k = 0; k < 30; k++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "a rather long property name with spaces", inst);
        inst = o;
    }
    assert_int_equal(sb_schema_validate(sch, sch, inst, "arguments", err, sizeof err), -1);
    assert_non_null(strstr(err, "arguments[\"a rather long"));
    assert_non_null(strstr(err, "...: must be of type object, got string (type)"));
    assert_true(strlen(err) < 500);
    cJSON_Delete(inst);
    cJSON_Delete(sch);
}

static void test_where_default_and_success_clears_err(void **state)
{
    (void)state;
    cJSON *s = cJSON_Parse("{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"integer\"}]}");
    cJSON *i = cJSON_Parse("1");
    char err[64] = "stale";
    assert_int_equal(sb_schema_validate(s, s, i, NULL, err, sizeof err), 0);
    assert_string_equal(err, "");
    cJSON *b = cJSON_Parse("true");
    assert_int_equal(sb_schema_validate(s, s, b, NULL, err, sizeof err), -1);
    assert_true(strncmp(err, "value: must match", 17) == 0);
    assert_int_equal(sb_schema_validate(NULL, NULL, b, NULL, err, sizeof err), -1);
    assert_int_equal(sb_schema_validate(s, s, NULL, NULL, err, sizeof err), -1);
    cJSON_Delete(b);
    cJSON_Delete(i);
    cJSON_Delete(s);
}

/* ---------------------------------------------------------------------------------------------
 * sb_schema_check
 */

static void test_check_accepts_good(void **state)
{
    (void)state;
    CHECK_OK("true");
    CHECK_OK("false");
    CHECK_OK("{}");
    CHECK_OK("{\"x-unknown\":{\"anything\":1},\"pattern\":\"^a\"}");
    CHECK_OK(
        "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"type\":\"object\","
        "\"required\":[\"a\"],\"additionalProperties\":false,\"minProperties\":0,"
        "\"maxProperties\":3,\"properties\":{\"a\":{\"type\":[\"string\",\"null\"],"
        "\"minLength\":1,\"maxLength\":10,\"format\":\"email\"},\"b\":{\"$ref\":"
        "\"#/$defs/n\"},\"c\":{\"type\":\"array\",\"items\":{\"enum\":[1,2]},\"minItems\":0,"
        "\"maxItems\":2,\"uniqueItems\":true,\"prefixItems\":[true]},\"d\":{\"anyOf\":["
        "{\"const\":1},{\"not\":{\"type\":\"null\"}}],\"allOf\":[true],\"oneOf\":[false,true]},"
        "\"e\":{\"type\":\"integer\",\"default\":3,\"minimum\":1,\"maximum\":5,"
        "\"exclusiveMinimum\":0,\"exclusiveMaximum\":6}},"
        "\"$defs\":{\"n\":{\"type\":\"number\"}},\"definitions\":{\"m\":true},"
        "\"examples\":[{\"a\":\"x@y.z\"}]}");
    CHECK_OK("{\"type\":\"object\",\"properties\":{\"children\":{\"type\":\"array\",\"items\":"
             "{\"$ref\":\"#\"}}}}");
}

static void test_check_rejects_bad(void **state)
{
    (void)state;
    CHECK_BAD("{\"properties\":{\"x\":{\"type\":\"strin\"}}}",
              "schema.properties.x.type: unknown type \"strin\"");
    CHECK_BAD("{\"type\":[\"string\",\"nul\"]}", "schema.type[1]: unknown type \"nul\"");
    CHECK_BAD("{\"type\":[\"string\",\"string\"]}", "schema.type[1]: duplicate type \"string\"");
    CHECK_BAD("{\"type\":[]}", "schema.type: must be a type name or a non-empty array");
    CHECK_BAD("{\"type\":5}", "schema.type: must be a type name");
    CHECK_BAD("{\"required\":\"a\"}", "schema.required: must be an array of strings");
    CHECK_BAD("{\"required\":[\"a\",1]}", "schema.required: must be an array of strings");
    CHECK_BAD("{\"minLength\":-1}", "schema.minLength: must be a non-negative integer");
    CHECK_BAD("{\"maxLength\":1.5}", "schema.maxLength: must be a non-negative integer");
    CHECK_BAD("{\"minItems\":\"3\"}", "schema.minItems: must be a non-negative integer");
    CHECK_BAD("{\"maxItems\":null}", "schema.maxItems: must be a non-negative integer");
    CHECK_BAD("{\"minProperties\":-2}", "schema.minProperties: must be a non-negative integer");
    CHECK_BAD("{\"maxProperties\":true}", "schema.maxProperties: must be a non-negative integer");
    CHECK_BAD("{\"minimum\":\"1\"}", "schema.minimum: must be a number");
    CHECK_BAD("{\"maximum\":[]}", "schema.maximum: must be a number");
    CHECK_BAD("{\"exclusiveMinimum\":true}", "schema.exclusiveMinimum: must be a number");
    CHECK_BAD("{\"exclusiveMaximum\":false}", "schema.exclusiveMaximum: must be a number");
    CHECK_BAD("{\"enum\":\"a\"}", "schema.enum: must be a non-empty array");
    CHECK_BAD("{\"enum\":[]}", "schema.enum: must be a non-empty array");
    CHECK_BAD("{\"properties\":[]}", "schema.properties: must be an object of schemas");
    CHECK_BAD("{\"properties\":{\"a b\":5}}",
              "schema.properties[\"a b\"]: must be a schema (object or boolean)");
    CHECK_BAD("{\"$defs\":{\"x\":{\"type\":\"nope\"}}}", "schema.$defs.x.type: unknown type");
    CHECK_BAD("{\"definitions\":{\"x\":\"s\"}}", "schema.definitions.x: must be a schema");
    CHECK_BAD("{\"additionalProperties\":1}", "schema.additionalProperties: must be a schema");
    CHECK_BAD("{\"items\":[{}]}", "schema.items: must be a schema");
    CHECK_BAD("{\"items\":{\"minItems\":-1}}", "schema.items.minItems: must be a non-negative");
    CHECK_BAD("{\"prefixItems\":{}}", "schema.prefixItems: must be a non-empty array of schemas");
    CHECK_BAD("{\"prefixItems\":[true,3]}", "schema.prefixItems[1]: must be a schema");
    CHECK_BAD("{\"allOf\":[]}", "schema.allOf: must be a non-empty array of schemas");
    CHECK_BAD("{\"anyOf\":{}}", "schema.anyOf: must be a non-empty array of schemas");
    CHECK_BAD("{\"oneOf\":[{\"type\":\"x\"}]}", "schema.oneOf[0].type: unknown type \"x\"");
    CHECK_BAD("{\"not\":\"x\"}", "schema.not: must be a schema");
    CHECK_BAD("{\"uniqueItems\":1}", "schema.uniqueItems: must be a boolean");
    CHECK_BAD("{\"format\":1}", "schema.format: must be a string");
    CHECK_BAD("{\"title\":1}", "schema.title: must be a string");
    CHECK_BAD("{\"description\":{}}", "schema.description: must be a string");
    CHECK_BAD("{\"examples\":1}", "schema.examples: must be an array");
    CHECK_BAD("[]", "schema: must be a schema (object or boolean)");
    CHECK_BAD("5", "schema: must be a schema");
}

static void test_check_refs(void **state)
{
    (void)state;
    CHECK_OK("{\"$defs\":{\"a\":{\"type\":\"string\"}},\"properties\":{\"x\":{\"$ref\":"
             "\"#/$defs/a\"}}}");
    CHECK_OK("{\"definitions\":{\"a~b\":true},\"$ref\":\"#/definitions/a~0b\"}");
    CHECK_BAD("{\"properties\":{\"x\":{\"$ref\":\"#/$defs/missing\"}}}",
              "schema.properties.x.$ref: cannot resolve \"#/$defs/missing\"");
    CHECK_BAD("{\"$ref\":\"https://example.com/s.json\"}",
              "schema.$ref: unsupported reference \"https://example.com/s.json\"");
    CHECK_BAD("{\"$ref\":5}", "schema.$ref: must be a string");
    CHECK_BAD("{\"title\":\"t\",\"properties\":{\"x\":{\"$ref\":\"#/title\"}}}",
              "schema.properties.x.$ref: \"#/title\" does not point to a schema");
    CHECK_BAD("{\"$ref\":\"#\"}", "schema.$ref: reference cycle through \"#\"");
    CHECK_BAD("{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},\"b\":{\"$ref\":\"#/$defs/a\"}}}",
              "schema.$defs.a.$ref: reference cycle");
}

static void test_check_defaults_and_depth(void **state)
{
    (void)state;
    CHECK_BAD("{\"properties\":{\"n\":{\"type\":\"integer\",\"maximum\":10,\"default\":11}}}",
              "schema.properties.n.default: invalid default: default: must be <= 10 (maximum)");
    CHECK_OK("{\"properties\":{\"n\":{\"type\":\"integer\",\"maximum\":10,\"default\":10}}}");
    /* 100 nested "not" */
    char buf[2000];
    size_t n = 0;
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "{\"not\":");
    n += (size_t)snprintf(buf + n, sizeof buf - n, "true");
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "}");
    CHECK_BAD(buf, "nested deeper than 64 levels");
    /* small errlen and NULL */
    cJSON *s = cJSON_Parse("{\"type\":\"strin\"}");
    char e4[4];
    assert_int_equal(sb_schema_check(s, e4, sizeof e4), -1);
    assert_string_equal(e4, "sch");
    assert_int_equal(sb_schema_check(s, NULL, 0), -1);
    assert_int_equal(sb_schema_check(NULL, e4, sizeof e4), -1);
    cJSON_Delete(s);
}

/* The real config schema must pass check(), and defaults must produce a valid document. */
static void test_config_schema_from_repo(void **state)
{
    (void)state;
    const char *root = getenv("SB_SOURCE_ROOT");
    if (!root) {
        print_message("SB_SOURCE_ROOT not set: skipping the repository schema check\n");
        skip();
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/schemas/config.schema.json", root);
    FILE *f = fopen(path, "rb");
    if (!f) skip();
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    cJSON *s = cJSON_Parse(text);
    assert_non_null(s);
    char err[512];
    if (sb_schema_check(s, err, sizeof err) != 0) fail_msg("config schema: %s", err);
    cJSON *doc = cJSON_CreateObject();
    assert_int_equal(sb_schema_apply_defaults(s, s, doc), 0);
    if (sb_schema_validate(s, s, doc, "config", err, sizeof err) != 0)
        fail_msg("defaults do not validate: %s", err);
    cJSON_Delete(doc);
    cJSON_Delete(s);
}

/* ---------------------------------------------------------------------------------------------
 * sb_schema_apply_defaults
 */

static void test_apply_defaults(void **state)
{
    (void)state;
    cJSON *s = cJSON_Parse(
        "{\"$defs\":{\"size\":{\"type\":\"integer\",\"default\":20},"
        "\"opts\":{\"type\":\"object\",\"properties\":{\"deep\":{\"default\":\"d\"}}}},"
        "\"properties\":{\"a\":{\"type\":\"string\",\"default\":\"x\"},"
        "\"b\":{\"type\":\"array\",\"default\":[1,{\"k\":2}]},"
        "\"c\":{\"type\":\"integer\"},"
        "\"size\":{\"$ref\":\"#/$defs/size\"},"
        "\"nested\":{\"type\":\"object\",\"properties\":{\"n1\":{\"default\":true},"
        "\"n2\":{\"default\":null}}},"
        "\"limits\":{\"type\":\"object\",\"default\":{},\"properties\":{\"max\":{\"default\":5}}},"
        "\"opts\":{\"$ref\":\"#/$defs/opts\"}}}");
    assert_non_null(s);
    cJSON *inst = cJSON_Parse("{\"a\":\"keep\",\"nested\":{\"n2\":1},\"opts\":{}}");
    assert_int_equal(sb_schema_apply_defaults(s, s, inst), 0);
    char *out = cJSON_PrintUnformatted(inst);
    assert_non_null(out);
    cJSON *want = cJSON_Parse("{\"a\":\"keep\",\"nested\":{\"n2\":1,\"n1\":true},"
                              "\"opts\":{\"deep\":\"d\"},\"b\":[1,{\"k\":2}],\"size\":20,"
                              "\"limits\":{\"max\":5}}");
    if (!cJSON_Compare(inst, want, 1)) fail_msg("got %s", out);
    cJSON_free(out);
    /* deep copies: changing the instance leaves the schema alone */
    cJSON *b = cJSON_GetObjectItemCaseSensitive(inst, "b");
    cJSON_ReplaceItemInArray(b, 0, cJSON_CreateNumber(99));
    const cJSON *sb = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s, "properties"), "b"),
        "default");
    assert_int_equal((int)cJSON_GetArrayItem(sb, 0)->valuedouble, 1);
    /* idempotent */
    assert_int_equal(sb_schema_apply_defaults(s, s, inst), 0);
    assert_int_equal(cJSON_GetArraySize(inst), 6);
    cJSON_Delete(want);
    cJSON_Delete(inst);

    /* non-object instance: nothing happens */
    cJSON *arr = cJSON_Parse("[1]");
    assert_int_equal(sb_schema_apply_defaults(s, s, arr), 0);
    assert_int_equal(cJSON_GetArraySize(arr), 1);
    cJSON_Delete(arr);
    /* present non-object property is not touched */
    cJSON *o = cJSON_Parse("{\"nested\":5}");
    assert_int_equal(sb_schema_apply_defaults(s, NULL, o), 0);
    assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(o, "nested")->valuedouble, 5);
    cJSON_Delete(o);
    cJSON_Delete(s);

    /* $ref'd root and a recursive schema terminate */
    cJSON *r = cJSON_Parse("{\"$defs\":{\"node\":{\"properties\":{\"next\":{\"$ref\":"
                           "\"#/$defs/node\"},\"v\":{\"default\":0}}}},\"$ref\":\"#/$defs/node\"}");
    cJSON *chain = cJSON_Parse("{\"next\":{\"next\":{}}}");
    assert_int_equal(sb_schema_apply_defaults(r, r, chain), 0);
    cJSON *want2 = cJSON_Parse("{\"next\":{\"next\":{\"v\":0},\"v\":0},\"v\":0}");
    assert_true(cJSON_Compare(chain, want2, 1));
    cJSON_Delete(want2);
    cJSON_Delete(chain);
    cJSON *loop = cJSON_Parse("{\"$ref\":\"#\"}");
    cJSON *empty = cJSON_CreateObject();
    assert_int_equal(sb_schema_apply_defaults(loop, loop, empty), 0);
    assert_int_equal(sb_schema_apply_defaults(NULL, NULL, empty), 0);
    cJSON_Delete(empty);
    cJSON_Delete(loop);
    cJSON_Delete(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_each),
        cmocka_unit_test(test_type_array),
        cmocka_unit_test(test_type_in_property_path),
        cmocka_unit_test(test_properties_and_paths),
        cmocka_unit_test(test_invalid_utf8_name_escaped),
        cmocka_unit_test(test_required),
        cmocka_unit_test(test_additional_properties),
        cmocka_unit_test(test_min_max_properties),
        cmocka_unit_test(test_items),
        cmocka_unit_test(test_prefix_items),
        cmocka_unit_test(test_min_max_items),
        cmocka_unit_test(test_unique_items_small),
        cmocka_unit_test(test_unique_items_large),
        cmocka_unit_test(test_enum),
        cmocka_unit_test(test_enum_long_list_truncated),
        cmocka_unit_test(test_const),
        cmocka_unit_test(test_string_length_unicode),
        cmocka_unit_test(test_format_email),
        cmocka_unit_test(test_format_date_time),
        cmocka_unit_test(test_format_date),
        cmocka_unit_test(test_format_uri),
        cmocka_unit_test(test_format_unknown_ignored),
        cmocka_unit_test(test_numeric_bounds),
        cmocka_unit_test(test_ref_defs),
        cmocka_unit_test(test_ref_recursive_tree),
        cmocka_unit_test(test_ref_unresolvable),
        cmocka_unit_test(test_ref_root_against_separate_root),
        cmocka_unit_test(test_all_of),
        cmocka_unit_test(test_any_of),
        cmocka_unit_test(test_one_of),
        cmocka_unit_test(test_not),
        cmocka_unit_test(test_boolean_schemas),
        cmocka_unit_test(test_ignored_keywords),
        cmocka_unit_test(test_deep_instance_fails_cleanly),
        cmocka_unit_test(test_deep_objects_fail_cleanly),
        cmocka_unit_test(test_ref_cycles_terminate),
        cmocka_unit_test(test_step_budget),
        cmocka_unit_test(test_small_errlen),
        cmocka_unit_test(test_truncation_keeps_utf8),
        cmocka_unit_test(test_long_names_and_paths_bounded),
        cmocka_unit_test(test_where_default_and_success_clears_err),
        cmocka_unit_test(test_check_accepts_good),
        cmocka_unit_test(test_check_rejects_bad),
        cmocka_unit_test(test_check_refs),
        cmocka_unit_test(test_check_defaults_and_depth),
        cmocka_unit_test(test_config_schema_from_repo),
        cmocka_unit_test(test_apply_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
