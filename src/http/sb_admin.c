#include "http/sb_admin.h"

#include "core/sb_buf.h"
#include "core/sb_log.h"
#include "core/sb_metrics.h"
#include "core/sb_util.h"
#include "http/sb_http.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if MHD_VERSION < 0x00097002
typedef int MHD_RESULT_T;
#else
typedef enum MHD_Result MHD_RESULT_T;
#endif

#define ADMIN_MAX_BODY (64 * 1024)

struct sb_admin {
    struct MHD_Daemon *d;
    sb_admin_options o;
    char token[256];
    unsigned port;
};

typedef struct areq {
    sb_buf body;
    int too_big;
} areq;

static MHD_RESULT_T reply(struct MHD_Connection *c, int status, cJSON *o)
{
    char *b = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    struct MHD_Response *r = MHD_create_response_from_buffer(
        b ? strlen(b) : 0, b ? b : (char *)"", b ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(b);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"signbridge-admin\"");
    MHD_RESULT_T rc = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return rc;
}

static MHD_RESULT_T error(struct MHD_Connection *c, int status, const char *err, const char *desc)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", err);
    cJSON_AddStringToObject(o, "error_description", desc);
    return reply(c, status, o);
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* tools: an array of names or a comma list, into out. 0 or -1. */
static int tools_arg(const cJSON *t, char *out, size_t cap)
{
    out[0] = 0;
    if (!t || cJSON_IsNull(t)) return 0;
    if (cJSON_IsString(t)) return strlen(t->valuestring) < cap ? (sb_strlcpy(out, t->valuestring, cap), 0) : -1;
    if (!cJSON_IsArray(t)) return -1;
    sb_buf b;
    sb_buf_init(&b, cap - 1);
    const cJSON *x;
    int rc = 0;
    cJSON_ArrayForEach(x, t)
    {
        if (!cJSON_IsString(x) || strchr(x->valuestring, ',')) rc = -1;
        else if (sb_buf_printf(&b, "%s%s", b.len ? "," : "", x->valuestring) != 0) rc = -1;
    }
    if (rc == 0) sb_strlcpy(out, b.data ? b.data : "", cap);
    sb_buf_free(&b);
    return rc;
}

static MHD_RESULT_T create_key(sb_admin *a, struct MHD_Connection *c, const cJSON *in)
{
    sb_key_info ki;
    memset(&ki, 0, sizeof ki);
    const char *prov = jstr(in, "provider"), *key = jstr(in, "api_key"), *name = jstr(in, "name");
    const char *scope = jstr(in, "scope"), *region = jstr(in, "region"), *exp = jstr(in, "expires");
    const char *inst = jstr(in, "instance"), *by = jstr(in, "created_by");
    if (!prov || !key || !name || !scope)
        return error(c, 400, "invalid_request", "provider, api_key, name and scope are required");
    /* a non-string expiry (e.g. a number of seconds) must not silently become "never expires" */
    const cJSON *expv = cJSON_GetObjectItemCaseSensitive(in, "expires");
    if (expv && !cJSON_IsNull(expv) && !cJSON_IsString(expv))
        return error(c, 400, "invalid_request",
                     "expires: a string, an RFC 3339 time or a duration (90d, 12h)");
    if (strcmp(scope, "read") && strcmp(scope, "write"))
        return error(c, 400, "invalid_request", "scope must be read or write");
    if (strlen(prov) >= sizeof ki.provider || strlen(name) >= sizeof ki.name ||
        (region && strlen(region) >= sizeof ki.region) ||
        (inst && strlen(inst) >= sizeof ki.instance) || strlen(key) > SB_CRED_MAX || !key[0] ||
        sb_keys_is_key(key, strlen(key)))
        return error(c, 400, "invalid_request", "a field is too long, or api_key is not a provider key");
    sb_strlcpy(ki.provider, prov, sizeof ki.provider);
    sb_strlcpy(ki.name, name, sizeof ki.name);
    sb_strlcpy(ki.region, region ? region : "", sizeof ki.region);
    sb_strlcpy(ki.instance, inst ? inst : "", sizeof ki.instance);
    snprintf(ki.created_by, sizeof ki.created_by, "%s", by ? by : "admin-api");
    ki.write = !strcmp(scope, "write");
    if (tools_arg(cJSON_GetObjectItemCaseSensitive(in, "tools"), ki.tools, sizeof ki.tools) != 0)
        return error(c, 400, "invalid_request", "tools must be an array of tool names");
    if (exp && sb_keys_parse_when(exp, (int64_t)sb_wall_ms(), &ki.expires_ms, 0) != 0)
        return error(c, 400, "invalid_request", "expires: an RFC 3339 time or a duration (90d, 12h)");
    char err[600];
    if (sb_keys_check(&ki, sb_keys_known_tools(), err, sizeof err) != 0)
        return error(c, 400, "invalid_request", err);
    char vregion[24] = "";
    int vr = a->o.verify ? a->o.verify(a->o.verify_ud, ki.provider, ki.instance[0] ? "private" : ki.region,
                                       ki.instance, key, strlen(key), vregion, err, sizeof err)
                         : -1;
    if (vr == -1) return error(c, 400, "invalid_request", "unknown provider or region");
    if (vr == 0) return error(c, 422, "provider_rejected", err);
    sb_strlcpy(ki.region, ki.instance[0] ? "private" : vregion, sizeof ki.region);
    char nk[SB_KEY_LEN + 1];
    sb_key_info out;
    if (sb_keys_create(a->o.keys, &ki, key, strlen(key), nk, &out, err, sizeof err) != 0)
        return error(c, 503, "store_unavailable", err);
    cJSON *o = sb_key_info_json(&out);
    cJSON_AddStringToObject(o, "key", nk);
    explicit_bzero(nk, sizeof nk);
    MHD_RESULT_T rc = reply(c, 201, o);
    return rc;
}

/* GET|HEAD /metrics (metrics.on_admin): no operator token, like on the main listener. */
static MHD_RESULT_T serve_metrics(sb_admin *a, struct MHD_Connection *c, const char *method)
{
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return error(c, 405, "invalid_request", "GET /metrics");
    sb_buf b;
    sb_buf_init(&b, 64u * 1024 * 1024);
    if (a->o.metrics_render(a->o.metrics_ud, &b) != 0) {
        sb_buf_free(&b);
        return error(c, 500, "server_error", "metrics");
    }
    size_t len = 0;
    char *body = sb_buf_detach(&b, &len);
    if (!body) return MHD_NO;
    if (strcmp(method, "HEAD") == 0) len = 0;
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", SB_METRICS_CONTENT_TYPE);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_RESULT_T rc = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return rc;
}

static MHD_RESULT_T route(sb_admin *a, struct MHD_Connection *c, const char *url,
                          const char *method, areq *r)
{
    if (a->o.metrics_render && strcmp(url, "/metrics") == 0) return serve_metrics(a, c, method);
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0 ||
        !sb_ct_equal(auth + 7, strlen(auth + 7), a->token, strlen(a->token))) {
        sb_log_msg(SB_LOG_WARN, "admin_refused", "%s %s without a valid operator token", method,
                   url);
        return error(c, 401, "unauthorized", "send the operator token as Authorization: Bearer");
    }
    if (r->too_big) return error(c, 413, "invalid_request", "the body is larger than 64 KiB");
    cJSON *in = r->body.len ? cJSON_ParseWithLength(r->body.data, r->body.len) : NULL;
    if (r->body.len && !cJSON_IsObject(in)) {
        cJSON_Delete(in);
        return error(c, 400, "invalid_request", "the body must be a JSON object");
    }
    MHD_RESULT_T rc;
    const char *base = "/admin/keys";
    size_t bl = strlen(base);
    if (!strcmp(url, base)) {
        if (!strcmp(method, "POST")) {
            rc = in ? create_key(a, c, in) : error(c, 400, "invalid_request", "a JSON body is required");
        } else if (!strcmp(method, "GET")) {
            sb_key_info *arr = NULL;
            size_t n = 0;
            if (sb_keys_list(a->o.keys, &arr, &n) != 0) {
                rc = error(c, 503, "store_unavailable", "the store did not answer");
            } else {
                cJSON *o = cJSON_CreateObject();
                cJSON *ks = cJSON_AddArrayToObject(o, "keys");
                for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(ks, sb_key_info_json(&arr[i]));
                free(arr);
                rc = reply(c, 200, o);
            }
        } else {
            rc = error(c, 405, "invalid_request", "use GET or POST");
        }
    } else if (!strncmp(url, base, bl) && url[bl] == '/') {
        char id[64];
        const char *rest = url + bl + 1, *slash = strchr(rest, '/');
        size_t il = slash ? (size_t)(slash - rest) : strlen(rest);
        if (il == 0 || il >= sizeof id) {
            cJSON_Delete(in);
            return error(c, 404, "not_found", "no such key");
        }
        memcpy(id, rest, il);
        id[il] = 0;
        const char *action = slash ? slash + 1 : "";
        sb_key_info info;
        int g = sb_keys_get(a->o.keys, id, &info);
        if (g == SB_STORE_NOTFOUND) {
            rc = error(c, 404, "not_found", "no such key");
        } else if (g != 0) {
            rc = error(c, 503, "store_unavailable", "the store did not answer");
        } else if (!action[0] && !strcmp(method, "GET")) {
            rc = reply(c, 200, sb_key_info_json(&info));
        } else if ((!action[0] && !strcmp(method, "DELETE")) ||
                   (!strcmp(action, "revoke") && !strcmp(method, "POST"))) {
            if (sb_keys_revoke(a->o.keys, id) != 0) {
                rc = error(c, 503, "store_unavailable", "the store did not accept the revocation");
            } else {
                sb_keys_get(a->o.keys, id, &info);
                rc = reply(c, 200, sb_key_info_json(&info));
            }
        } else if (!strcmp(action, "rotate") && !strcmp(method, "POST")) {
            const char *ovs = jstr(in, "overlap");
            int64_t ov = 0;
            char err[300];
            char nk[SB_KEY_LEN + 1];
            sb_key_info out;
            if (!ovs || sb_keys_parse_when(ovs, 0, &ov, 1) != 0) {
                rc = error(c, 400, "invalid_request", "overlap: a duration such as \"1h\" or \"0s\"");
            } else if (sb_keys_rotate(a->o.keys, id, ov, nk, &out, err, sizeof err) != 0) {
                rc = error(c, 409, "conflict", err);
            } else {
                cJSON *o = sb_key_info_json(&out);
                cJSON_AddStringToObject(o, "key", nk);
                cJSON_AddStringToObject(o, "replaces", id);
                explicit_bzero(nk, sizeof nk);
                rc = reply(c, 201, o);
            }
        } else {
            rc = error(c, 405, "invalid_request", "GET, DELETE, POST .../rotate or POST .../revoke");
        }
    } else {
        rc = error(c, 404, "not_found", "admin endpoints: /admin/keys, /admin/keys/{id}");
    }
    if (in) {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(in, "api_key");
        if (cJSON_IsString(k)) explicit_bzero(k->valuestring, strlen(k->valuestring));
    }
    cJSON_Delete(in);
    return rc;
}

static MHD_RESULT_T on_request(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    sb_admin *a = cls;
    (void)version;
    areq *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        sb_buf_init(&r->body, ADMIN_MAX_BODY);
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!r->too_big && sb_buf_append(&r->body, upload, *upload_size) != 0) {
            r->too_big = 1;
            sb_buf_free(&r->body);
        }
        *upload_size = 0;
        return MHD_YES;
    }
    return route(a, c, url, method, r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    areq *r = *con_cls;
    if (!r) return;
    if (r->body.data) explicit_bzero(r->body.data, r->body.len);
    sb_buf_free(&r->body);
    free(r);
    *con_cls = NULL;
}

sb_admin *sb_admin_start(const sb_admin_options *o, char *err, size_t errlen)
{
    if (!o->token || strlen(o->token) < 16 || strlen(o->token) >= 256) {
        snprintf(err, errlen, "admin: an operator token of 16 to 255 characters is required "
                              "(admin.token or SIGNBRIDGE_ADMIN_TOKEN)");
        return NULL;
    }
    struct sockaddr_storage ss;
    socklen_t sl;
    int loop;
    if (sb_http_parse_listen(o->listen, &ss, &sl, &loop) != 0) {
        snprintf(err, errlen, "admin: cannot parse admin.listen \"%s\"", o->listen);
        return NULL;
    }
    sb_admin *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->o = *o;
    sb_strlcpy(a->token, o->token, sizeof a->token);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
    if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    a->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, a, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, 64u,
                            MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_NOTIFY_COMPLETED,
                            on_completed, a, MHD_OPTION_END);
    if (!a->d) {
        snprintf(err, errlen, "admin: cannot listen on %s", o->listen);
        explicit_bzero(a->token, sizeof a->token);
        free(a);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(a->d, MHD_DAEMON_INFO_BIND_PORT);
    a->port = di ? di->port : 0;
    return a;
}

unsigned sb_admin_port(const sb_admin *a)
{
    return a ? a->port : 0;
}

void sb_admin_stop(sb_admin *a)
{
    if (!a) return;
    MHD_stop_daemon(a->d);
    explicit_bzero(a->token, sizeof a->token);
    free(a);
}
