/* Unit tests for sb_config: defaults, file, environment and override layering, and error messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/sb_config.h"
#include "core/sb_json_schema.h"

/* ---------------------------------------------------------------------------------------------
 * Helpers
 */

/* A temporary config file under /tmp holding `text` (n bytes); removed by the test. */
static char *tmp_file(const char *text, size_t n)
{
    char tmpl[] = "/tmp/sb_test_config_XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, text + off, n - off);
        assert_true(w > 0);
        off += (size_t)w;
    }
    close(fd);
    char *p = strdup(tmpl);
    assert_non_null(p);
    return p;
}

static char *tmp_json(const char *text)
{
    return tmp_file(text, strlen(text));
}

static void rm_tmp(char *path)
{
    unlink(path);
    free(path);
}

/* Load with an optional file body, env array and overrides text; returns the rc. */
static int load(sb_config *cfg, const char *file_text, char *const *envp, const char *overrides,
                char *err, size_t errlen)
{
    char *path = file_text ? tmp_json(file_text) : NULL;
    cJSON *ov = NULL;
    if (overrides) {
        ov = cJSON_Parse(overrides);
        assert_non_null(ov);
    }
    memset(cfg, 0x5A, sizeof *cfg);
    int rc = sb_config_load(cfg, path, ov, envp, err, errlen);
    cJSON_Delete(ov);
    if (path) rm_tmp(path);
    return rc;
}

/* Expect failure with a message containing every one of the (NULL-terminated) fragments. */
static void expect_error_(const char *file_text, char *const *envp, const char *overrides,
                          const char *const *want, const char *srcfile, int line)
{
    sb_config cfg;
    char err[512];
    memset(err, 0, sizeof err);
    int rc = load(&cfg, file_text, envp, overrides, err, sizeof err);
    if (rc != -1) {
        print_error("expected an error for file=%s overrides=%s (rc=%d)\n",
                    file_text ? file_text : "(none)", overrides ? overrides : "(none)", rc);
        _fail(srcfile, line);
    }
    for (const char *const *w = want; *w; w++) {
        if (!strstr(err, *w)) {
            print_error("message: %s\n  wanted:  %s\n", err, *w);
            _fail(srcfile, line);
        }
    }
}

#define EXPECT_ERROR(file_text, envp, overrides, ...)                                              \
    do {                                                                                           \
        const char *const want_[] = {__VA_ARGS__, NULL};                                           \
        expect_error_(file_text, envp, overrides, want_, __FILE__, __LINE__);                      \
    } while (0)

static void expect_ok(sb_config *cfg, const char *file_text, char *const *envp,
                      const char *overrides)
{
    char err[512] = "";
    int rc = load(cfg, file_text, envp, overrides, err, sizeof err);
    if (rc != 0) fail_msg("expected success, got rc=%d: %s", rc, err);
}

/* ---------------------------------------------------------------------------------------------
 * Defaults and layering
 */

static void check_defaults(const sb_config *c)
{
    assert_string_equal(c->listen, "127.0.0.1:8080");
    assert_string_equal(c->public_url, "");
    assert_string_equal(c->log_level, "info");
    assert_string_equal(c->default_provider, "boldsign");
    assert_string_equal(c->secret_file, "signbridge.secret");
    assert_true(strlen(c->instructions) > 20);
    assert_int_equal(c->n_allowed_origins, 0);
    assert_int_equal(c->max_body_bytes, 4194304);
    assert_int_equal(c->max_connections, 16384);
    assert_int_equal(c->connection_timeout_s, 120);
    assert_int_equal(c->max_header_bytes, 12288);
    assert_int_equal(c->max_sessions, 100000);
    assert_int_equal(c->session_idle_timeout_s, 3600);
    assert_int_equal(c->tools_page_size, 100);
    assert_int_equal(c->call_timeout_s, 300);
    assert_int_equal(c->http_threads, 2);
    assert_int_equal(c->lane_yield_us, 100);
    assert_int_equal(c->lane_poll_us, 200);
    assert_int_equal(c->upstream.max_host_connections, 64);
}

static void test_defaults_without_file_or_env(void **state)
{
    (void)state;
    sb_config c;
    expect_ok(&c, NULL, NULL, NULL);
    check_defaults(&c);

    /* an empty environment and an environment without SIGNBRIDGE_* change nothing */
    char *env0[] = {NULL};
    expect_ok(&c, NULL, env0, NULL);
    check_defaults(&c);
    char *env1[] = {"PATH=/usr/bin",
                    "HOME=/root",
                    "SIGNBRIDGE=1",
                    "SIGNBRIDGE_LISTENX=1.2.3.4:1",
                    "XSIGNBRIDGE_LISTEN=1.2.3.4:1",
                    NULL};
    expect_ok(&c, NULL, env1, NULL);
    check_defaults(&c);
    /* an empty overrides object changes nothing */
    expect_ok(&c, NULL, env0, "{}");
    check_defaults(&c);
}

static void test_env_and_overrides_without_file(void **state)
{
    (void)state;
    sb_config c;
    char *env[] = {"SIGNBRIDGE_LOG_LEVEL=error", "SIGNBRIDGE_LIMITS_CALL_TIMEOUT_S=60",
                   "SIGNBRIDGE_LIMITS_MAX_BODY_BYTES=8192", "SIGNBRIDGE_LISTEN=127.0.0.1:7777",
                   NULL};
    expect_ok(&c, NULL, env, NULL);
    assert_string_equal(c.log_level, "error");
    assert_int_equal(c.call_timeout_s, 60);
    assert_int_equal(c.max_body_bytes, 8192);
    assert_string_equal(c.listen, "127.0.0.1:7777");
    assert_int_equal(c.max_sessions, 100000);

    /* overrides win over env, field by field; limits merge deeply */
    expect_ok(&c, NULL, env,
              "{\"listen\": \"10.0.0.1:1234\", \"limits\": {\"max_body_bytes\": 65536}}");
    assert_string_equal(c.listen, "10.0.0.1:1234");
    assert_int_equal(c.max_body_bytes, 65536);
    assert_int_equal(c.call_timeout_s, 60);
    assert_string_equal(c.log_level, "error");

    /* overrides alone */
    expect_ok(&c, NULL, NULL, "{\"default_provider\": \"iinkedsign\"}");
    assert_string_equal(c.default_provider, "iinkedsign");
}

static void test_errors_without_file(void **state)
{
    (void)state;
    /* the schema rules, reached through the overrides and the environment */
    EXPECT_ERROR(NULL, NULL, "{\"listen\": 8080}", "listen", "type");
    EXPECT_ERROR(NULL, NULL, "{\"limits\": {\"max_body_bytes\": \"big\"}}", "max_body_bytes",
                 "type");
    EXPECT_ERROR(NULL, NULL, "{\"limits\": {\"max_body_bytes\": 10}}", "max_body_bytes", "minimum");
    EXPECT_ERROR(NULL, NULL, "{\"bogus\": 1}", "bogus", "additionalProperties");
    EXPECT_ERROR(NULL, NULL, "{\"limits\": {\"bogus\": 1}}", "bogus", "additionalProperties");
    EXPECT_ERROR(NULL, NULL, "{\"listen\": \"localhost\"}", "listen", "format");
    char *env[] = {"SIGNBRIDGE_LIMITS_MAX_BODY_BYTES=10", NULL};
    EXPECT_ERROR(NULL, env, NULL, "max_body_bytes", "minimum");
}

static void test_file_values(void **state)
{
    (void)state;
    sb_config c;
    /* an empty file object is all defaults */
    expect_ok(&c, "{}", NULL, NULL);
    check_defaults(&c);

    expect_ok(&c,
              "{\n"
              "  \"listen\": \"0.0.0.0:9000\",\n"
              "  \"public_url\": \"https://sign.example.com\",\n"
              "  \"log_level\": \"debug\",\n"
              "  \"default_provider\": \"dropboxsign\",\n"
              "  \"secret_file\": \"/var/lib/sb/secret\",\n"
              "  \"instructions\": \"Be careful.\",\n"
              "  \"allowed_origins\": [\"https://a.example\", \"https://b.example:8443\"],\n"
              "  \"limits\": {\"max_body_bytes\": 2048, \"max_sessions\": 7,\n"
              "             \"tools_page_size\": 3, \"http_threads\": 4}\n"
              "}\n",
              NULL, NULL);
    assert_string_equal(c.listen, "0.0.0.0:9000");
    assert_string_equal(c.public_url, "https://sign.example.com");
    assert_string_equal(c.log_level, "debug");
    assert_string_equal(c.default_provider, "dropboxsign");
    assert_string_equal(c.secret_file, "/var/lib/sb/secret");
    assert_string_equal(c.instructions, "Be careful.");
    assert_int_equal(c.n_allowed_origins, 2);
    assert_string_equal(c.allowed_origins[0], "https://a.example");
    assert_string_equal(c.allowed_origins[1], "https://b.example:8443");
    assert_int_equal(c.max_body_bytes, 2048);
    assert_int_equal(c.max_sessions, 7);
    assert_int_equal(c.tools_page_size, 3);
    assert_int_equal(c.http_threads, 4);
    /* limits not in the file keep their defaults */
    assert_int_equal(c.max_connections, 16384);
    assert_int_equal(c.call_timeout_s, 300);
    assert_int_equal(c.session_idle_timeout_s, 3600);

    /* IPv6 listen and port 0 */
    expect_ok(&c, "{\"listen\": \"[::1]:0\"}", NULL, NULL);
    assert_string_equal(c.listen, "[::1]:0");
}

static void test_env_overrides_file(void **state)
{
    (void)state;
    sb_config c;
    const char *file = "{\"listen\": \"0.0.0.0:9000\", \"log_level\": \"warn\","
                       " \"limits\": {\"max_body_bytes\": 2048, \"max_sessions\": 7}}";
    char *env[] = {"SIGNBRIDGE_LISTEN=127.0.0.1:7777", "SIGNBRIDGE_LIMITS_MAX_BODY_BYTES=8192",
                   "SIGNBRIDGE_LIMITS_HTTP_THREADS=8", "SIGNBRIDGE_PUBLIC_URL=https://x.example",
                   "SIGNBRIDGE_LIMITS_LANE_YIELD_US=0", "SIGNBRIDGE_LIMITS_LANE_POLL_US=0", NULL};
    expect_ok(&c, file, env, NULL);
    assert_string_equal(c.listen, "127.0.0.1:7777");        /* env wins */
    assert_int_equal(c.max_body_bytes, 8192);               /* env wins inside limits */
    assert_int_equal(c.http_threads, 8);                    /* env only */
    assert_int_equal(c.lane_yield_us, 0);                   /* env only: never yield */
    assert_int_equal(c.lane_poll_us, 0);                    /* env only: never poll */
    assert_string_equal(c.public_url, "https://x.example"); /* env only */
    assert_string_equal(c.log_level, "warn");               /* file only */
    assert_int_equal(c.max_sessions, 7);                    /* file only, sibling kept */
    assert_int_equal(c.connection_timeout_s, 120);          /* default */
}

static void test_overrides_win_over_env(void **state)
{
    (void)state;
    sb_config c;
    const char *file = "{\"listen\": \"0.0.0.0:9000\", \"limits\": {\"max_sessions\": 7}}";
    char *env[] = {"SIGNBRIDGE_LISTEN=127.0.0.1:7777", "SIGNBRIDGE_LIMITS_MAX_BODY_BYTES=8192",
                   "SIGNBRIDGE_LOG_LEVEL=error", NULL};
    expect_ok(&c, file, env,
              "{\"listen\": \"10.0.0.1:1234\", \"limits\": {\"max_body_bytes\": 65536}}");
    assert_string_equal(c.listen, "10.0.0.1:1234"); /* overrides win */
    assert_int_equal(c.max_body_bytes, 65536);      /* overrides win inside limits */
    assert_string_equal(c.log_level, "error");      /* env kept where not overridden */
    assert_int_equal(c.max_sessions, 7);            /* file kept: limits merged deeply */
}

static void test_env_comma_list(void **state)
{
    (void)state;
    sb_config c;
    char *env[] = {
        "SIGNBRIDGE_ALLOWED_ORIGINS=https://a.example, https://b.example ,,https://c.example",
        NULL};
    expect_ok(&c, NULL, env, NULL);
    assert_int_equal(c.n_allowed_origins, 3);
    assert_string_equal(c.allowed_origins[0], "https://a.example");
    assert_string_equal(c.allowed_origins[1], "https://b.example");
    assert_string_equal(c.allowed_origins[2], "https://c.example");

    char *one[] = {"SIGNBRIDGE_ALLOWED_ORIGINS=https://only.example", NULL};
    expect_ok(&c, NULL, one, NULL);
    assert_int_equal(c.n_allowed_origins, 1);
    assert_string_equal(c.allowed_origins[0], "https://only.example");

    /* the env list replaces (not extends) the file's list */
    expect_ok(&c, "{\"allowed_origins\": [\"https://file.example\"]}", env, NULL);
    assert_int_equal(c.n_allowed_origins, 3);
    assert_string_equal(c.allowed_origins[0], "https://a.example");

    char *empty[] = {"SIGNBRIDGE_ALLOWED_ORIGINS=", NULL};
    expect_ok(&c, NULL, empty, "{}");
    assert_int_equal(c.n_allowed_origins, 0);

    /* each element is still validated */
    char *bad[] = {"SIGNBRIDGE_ALLOWED_ORIGINS=https://ok.example,not a uri", NULL};
    EXPECT_ERROR(NULL, bad, NULL, "allowed_origins[1]", "format");
}

static void test_to_json_round_trip(void **state)
{
    (void)state;
    sb_config c;
    expect_ok(&c, NULL, NULL,
              "{\"allowed_origins\": [\"https://a.example\"], \"limits\": {\"max_sessions\": 9}}");
    cJSON *j = sb_config_to_json(&c);
    assert_non_null(j);
    /* what --check-config prints is itself a valid configuration */
    const cJSON *schema = sb_config_schema();
    assert_non_null(schema);
    char err[512] = "";
    int vrc = sb_schema_validate(schema, schema, j, "config", err, sizeof err);
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(j, "limits"), "max_sessions");
    double msv = cJSON_IsNumber(ms) ? ms->valuedouble : -1;
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    assert_non_null(text);
    if (vrc != 0) {
        free(text);
        fail_msg("sb_config_to_json output does not validate: %s", err);
    }
    assert_true(msv == 9);
    /* and loads back to the same configuration (as overrides: no file involved) */
    sb_config c2;
    expect_ok(&c2, NULL, NULL, text);
    free(text);
    assert_string_equal(c.listen, c2.listen);
    assert_string_equal(c.instructions, c2.instructions);
    assert_int_equal(c2.n_allowed_origins, 1);
    assert_string_equal(c2.allowed_origins[0], "https://a.example");
    assert_int_equal(c2.max_sessions, 9);
    assert_int_equal(c2.max_body_bytes, c.max_body_bytes);
}

/* ---------------------------------------------------------------------------------------------
 * Errors
 */

static void test_error_wrong_type(void **state)
{
    (void)state;
    EXPECT_ERROR("{\"listen\": 8080}", NULL, NULL, "listen", "type");
    EXPECT_ERROR("{\"limits\": {\"max_body_bytes\": \"big\"}}", NULL, NULL, "max_body_bytes",
                 "type");
    EXPECT_ERROR("{\"limits\": {\"max_body_bytes\": 2048.5}}", NULL, NULL, "max_body_bytes",
                 "type");
    EXPECT_ERROR("{\"limits\": 5}", NULL, NULL, "limits", "type");
    EXPECT_ERROR("{\"allowed_origins\": \"https://a.example\"}", NULL, NULL, "allowed_origins",
                 "type");
    EXPECT_ERROR("[1, 2]", NULL, NULL, "config", "type");
    EXPECT_ERROR(NULL, NULL, "{\"listen\": true}", "listen", "type");
}

static void test_error_range_and_enum(void **state)
{
    (void)state;
    EXPECT_ERROR("{\"limits\": {\"max_body_bytes\": 10}}", NULL, NULL, "max_body_bytes", "minimum");
    EXPECT_ERROR("{\"limits\": {\"http_threads\": 65}}", NULL, NULL, "http_threads", "maximum");
    EXPECT_ERROR("{\"limits\": {\"lane_yield_us\": -1}}", NULL, NULL, "lane_yield_us", "minimum");
    EXPECT_ERROR("{\"limits\": {\"lane_yield_us\": 1000001}}", NULL, NULL, "lane_yield_us",
                 "maximum");
    EXPECT_ERROR("{\"limits\": {\"lane_poll_us\": 100001}}", NULL, NULL, "lane_poll_us",
                 "maximum");
    EXPECT_ERROR("{\"limits\": {\"tools_page_size\": 0}}", NULL, NULL, "tools_page_size",
                 "minimum");
    EXPECT_ERROR("{\"log_level\": \"loud\"}", NULL, NULL, "log_level", "enum");
    EXPECT_ERROR("{\"default_provider\": \"docusign\"}", NULL, NULL, "default_provider", "enum");
    EXPECT_ERROR("{\"secret_file\": \"\"}", NULL, NULL, "secret_file", "minLength");
    /* the same rules apply to values from the environment and the overrides */
    char *env[] = {"SIGNBRIDGE_LIMITS_MAX_BODY_BYTES=10", NULL};
    EXPECT_ERROR(NULL, env, NULL, "max_body_bytes", "minimum");
    EXPECT_ERROR(NULL, NULL, "{\"limits\": {\"max_body_bytes\": 10}}", "max_body_bytes", "minimum");
}

static void test_error_unknown_fields(void **state)
{
    (void)state;
    EXPECT_ERROR("{\"bogus\": 1}", NULL, NULL, "bogus", "additionalProperties");
    EXPECT_ERROR("{\"limits\": {\"max_body_byte\": 4096}}", NULL, NULL, "max_body_byte",
                 "additionalProperties");
    EXPECT_ERROR("{\"limits\": {\"max_body_bytes\": 4096, \"extra\": {}}}", NULL, NULL, "extra",
                 "additionalProperties");
    EXPECT_ERROR(NULL, NULL, "{\"nope\": \"x\"}", "nope", "additionalProperties");
}

static void test_error_invalid_json_file(void **state)
{
    (void)state;
    sb_config c;
    char err[512] = "";
    static const char *const bad[] = {"{\"listen\": ", "{\n\"listen\": \"a:1\",\n}\n", "nope",
                                      "{} {}", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *path = tmp_json(bad[i]);
        err[0] = '\0';
        int rc = sb_config_load(&c, path, NULL, NULL, err, sizeof err);
        if (rc != -1) fail_msg("accepted invalid JSON file %s", bad[i]);
        if (!strstr(err, path)) fail_msg("message does not name the file %s: %s", path, err);
        rm_tmp(path);
    }
    /* invalid UTF-8 */
    char *path = tmp_json("{\"instructions\": \"\xC0\x80\"}");
    assert_int_equal(sb_config_load(&c, path, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "UTF-8"));
    rm_tmp(path);
}

static void test_error_missing_file(void **state)
{
    (void)state;
    sb_config c;
    char err[512] = "";
    const char *path = "/tmp/sb_test_config_does_not_exist_4b1d.json";
    unlink(path);
    assert_int_equal(sb_config_load(&c, path, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, path));
    /* a directory is not a config file either */
    assert_int_equal(sb_config_load(&c, "/tmp", NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "/tmp"));
}

static void test_error_env_values(void **state)
{
    (void)state;
    char *env1[] = {"SIGNBRIDGE_LIMITS_MAX_BODY_BYTES=lots", NULL};
    EXPECT_ERROR(NULL, env1, NULL, "SIGNBRIDGE_LIMITS_MAX_BODY_BYTES", "max_body_bytes");
    char *env2[] = {"SIGNBRIDGE_LIMITS_MAX_SESSIONS=12abc", NULL};
    EXPECT_ERROR(NULL, env2, NULL, "SIGNBRIDGE_LIMITS_MAX_SESSIONS");
    char *env3[] = {"SIGNBRIDGE_LIMITS_HTTP_THREADS=", NULL};
    EXPECT_ERROR(NULL, env3, NULL, "SIGNBRIDGE_LIMITS_HTTP_THREADS");
    char *env4[] = {"SIGNBRIDGE_LIMITS_CALL_TIMEOUT_S=1.5", NULL};
    EXPECT_ERROR(NULL, env4, NULL, "SIGNBRIDGE_LIMITS_CALL_TIMEOUT_S");
    /* a bad env value is reported even when the file sets the same field correctly */
    char *env5[] = {"SIGNBRIDGE_LIMITS_MAX_BODY_BYTES= 4096", NULL};
    EXPECT_ERROR("{\"limits\": {\"max_body_bytes\": 4096}}", env5, NULL,
                 "SIGNBRIDGE_LIMITS_MAX_BODY_BYTES");
    /* string enum from env */
    char *env6[] = {"SIGNBRIDGE_LOG_LEVEL=verbose", NULL};
    EXPECT_ERROR(NULL, env6, NULL, "log_level", "enum");
}

static void test_error_listen_format(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "localhost", "127.0.0.1:", "127.0.0.1:70000", "127.0.0.1:http", "127.0.0.1:-1",
        "[::1]",     ":80x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char file[128];
        snprintf(file, sizeof file, "{\"listen\": \"%s\"}", bad[i]);
        sb_config c;
        char err[512] = "";
        int rc = load(&c, file, NULL, NULL, err, sizeof err);
        if (rc != -1) fail_msg("accepted listen \"%s\"", bad[i]);
        if (!strstr(err, "listen")) fail_msg("message does not name listen: %s", err);
    }
    char *env[] = {"SIGNBRIDGE_LISTEN=nocolon", NULL};
    EXPECT_ERROR(NULL, env, NULL, "listen", "format");
    /* too short for the schema */
    EXPECT_ERROR("{\"listen\": \"a:\"}", NULL, NULL, "listen");
}

static void test_small_err_buffer(void **state)
{
    (void)state;
    sb_config c;
    char err[16];
    memset(err, 'Q', sizeof err);
    assert_int_equal(load(&c, "{\"bogus\": 1}", NULL, NULL, err, sizeof err), -1);
    assert_true(memchr(err, '\0', sizeof err) != NULL);
}

/* store.url: default, environment, and the password masked by sb_config_redact_url */
static void test_store_url(void **state)
{
    (void)state;
    sb_config cfg;
    char err[512];
    assert_int_equal(sb_config_load(&cfg, NULL, NULL, NULL, err, sizeof err), 0);
    assert_string_equal(cfg.store.url, "sqlite:signbridge.db");
    char *env[] = {"SIGNBRIDGE_STORE_URL=postgresql://u:pw@h/db", NULL};
    assert_int_equal(sb_config_load(&cfg, NULL, NULL, env, err, sizeof err), 0);
    assert_string_equal(cfg.store.url, "postgresql://u:pw@h/db");
    static const char *const cases[][2] = {
        {"postgresql://u:pw@h/db", "postgresql://u:***@h/db"},
        {"postgres://u:p@ss@h:5432/db", "postgres://u:***@h:5432/db"},
        {"postgresql://u@h/db?password=zz&sslmode=x", "postgresql://u@h/db?password=***&sslmode=x"},
        {"postgresql://h/db?sslmode=x&password=y", "postgresql://h/db?sslmode=x&password=***"},
        {"postgresql://h/db?xpassword=y", "postgresql://h/db?xpassword=y"},
        {"sqlite:/var/lib/x.db", "sqlite:/var/lib/x.db"},
        {"plain.db", "plain.db"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[256];
        sb_config_redact_url(cases[i][0], out, sizeof out);
        assert_string_equal(out, cases[i][1]);
    }
    char small[24];
    sb_config_redact_url("postgresql://u:secretpassword@host/db", small, sizeof small);
    assert_null(strstr(small, "secret"));
    sb_config_redact_url("postgresql://h/d?password=secretpw", small, sizeof small);
    assert_null(strstr(small, "secretpw"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_without_file_or_env),
        cmocka_unit_test(test_env_and_overrides_without_file),
        cmocka_unit_test(test_errors_without_file),
        cmocka_unit_test(test_file_values),
        cmocka_unit_test(test_env_overrides_file),
        cmocka_unit_test(test_overrides_win_over_env),
        cmocka_unit_test(test_env_comma_list),
        cmocka_unit_test(test_to_json_round_trip),
        cmocka_unit_test(test_error_wrong_type),
        cmocka_unit_test(test_error_range_and_enum),
        cmocka_unit_test(test_error_unknown_fields),
        cmocka_unit_test(test_error_invalid_json_file),
        cmocka_unit_test(test_error_missing_file),
        cmocka_unit_test(test_error_env_values),
        cmocka_unit_test(test_error_listen_format),
        cmocka_unit_test(test_small_err_buffer),
        cmocka_unit_test(test_store_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
