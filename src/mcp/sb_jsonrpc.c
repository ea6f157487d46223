#include "mcp/sb_jsonrpc.h"

#include "core/sb_buf.h"
#include "core/sb_json.h"
#include "core/sb_util.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int valid_id(const cJSON *id)
{
    if (cJSON_IsString(id)) return 1;
    if (cJSON_IsNumber(id)) {
        double v = id->valuedouble;
        return isfinite(v) && v == floor(v) && fabs(v) <= 9007199254740991.0;
    }
    return 0;
}

int sb_rpc_classify(cJSON *v, sb_rpc_msg *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->doc = v;
    if (cJSON_IsArray(v)) return SB_RPC_BATCH;
    if (!cJSON_IsObject(v)) {
        snprintf(err, errlen, "Invalid Request: a JSON-RPC message must be an object");
        return SB_RPC_INVALID_REQUEST;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(v, "id");
    if (id && valid_id(id)) out->id = id;
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(v, "jsonrpc");
    if (!cJSON_IsString(ver) || strcmp(ver->valuestring, "2.0") != 0) {
        snprintf(err, errlen, "Invalid Request: \"jsonrpc\" must be \"2.0\"");
        return SB_RPC_INVALID_REQUEST;
    }
    if (id && !valid_id(id)) {
        snprintf(err, errlen, "Invalid Request: \"id\" must be a string or an integer");
        return SB_RPC_INVALID_REQUEST;
    }
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(v, "method");
    if (method) {
        if (!cJSON_IsString(method) || method->valuestring[0] == '\0') {
            snprintf(err, errlen, "Invalid Request: \"method\" must be a non-empty string");
            return SB_RPC_INVALID_REQUEST;
        }
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(v, "params");
        if (params && !cJSON_IsObject(params) && !cJSON_IsArray(params)) {
            snprintf(err, errlen, "Invalid Request: \"params\" must be an object");
            return SB_RPC_INVALID_REQUEST;
        }
        out->method = method->valuestring;
        out->params = params;
        out->kind = id ? SB_RPC_REQUEST : SB_RPC_NOTIFICATION;
        return 0;
    }
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(v, "result");
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(v, "error");
    if ((result != NULL) == (error != NULL) || !id) {
        snprintf(err, errlen,
                 "Invalid Request: not a request, notification or response (a response needs "
                 "\"id\" and exactly one of \"result\" or \"error\")");
        return SB_RPC_INVALID_REQUEST;
    }
    if (error && (!cJSON_IsObject(error) ||
                  !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(error, "code")))) {
        snprintf(err, errlen, "Invalid Request: \"error\" must be an object with a numeric code");
        return SB_RPC_INVALID_REQUEST;
    }
    out->kind = SB_RPC_RESPONSE;
    out->result = result;
    out->error = error;
    return 0;
}

int sb_rpc_parse(const char *body, size_t len, sb_rpc_msg *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!sb_utf8_valid(body, len)) {
        snprintf(err, errlen, "Parse error: the body is not valid UTF-8");
        return SB_RPC_PARSE_ERROR;
    }
    const char *end = NULL;
    /* sb_json's parse gives cJSON's tree and end, with fewer steps per byte and no strtod for an
     * integer id (fuzz_jsonrpc checks the two agree) */
    cJSON *v = sb_json_parse_end(body, len, &end);
    if (!v) {
        /* the position of the refusal, as cJSON reports it (it refuses the same texts) */
        cJSON_Delete(cJSON_ParseWithLengthOpts(body, len, &end, 0));
        snprintf(err, errlen, "Parse error: invalid JSON at byte %zu",
                 end && end >= body ? (size_t)(end - body) : (size_t)0);
        return SB_RPC_PARSE_ERROR;
    }
    /* only whitespace may follow */
    size_t off = (size_t)(end - body);
    while (off < len && (body[off] == ' ' || body[off] == '\t' || body[off] == '\r' ||
                         body[off] == '\n'))
        off++;
    if (off != len) {
        cJSON_Delete(v);
        snprintf(err, errlen, "Parse error: unexpected data after the JSON value at byte %zu", off);
        return SB_RPC_PARSE_ERROR;
    }
    return sb_rpc_classify(v, out, err, errlen);
}

void sb_rpc_msg_free(sb_rpc_msg *m)
{
    cJSON_Delete(m->doc);
    memset(m, 0, sizeof *m);
}

static cJSON *envelope(const cJSON *id)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "jsonrpc", "2.0");
    cJSON_AddItemToObject(o, "id", id ? cJSON_Duplicate(id, 0) : cJSON_CreateNull());
    return o;
}

static char *finish(cJSON *o)
{
    char *s = o ? sb_json_print(o) : NULL;
    cJSON_Delete(o);
    return s;
}

char *sb_rpc_result(const cJSON *id, cJSON *result)
{
    cJSON *o = envelope(id);
    if (!o) {
        cJSON_Delete(result);
        return NULL;
    }
    cJSON_AddItemToObject(o, "result", result ? result : cJSON_CreateObject());
    return finish(o);
}

char *sb_rpc_error(const cJSON *id, int code, const char *message, cJSON *data)
{
    cJSON *o = envelope(id);
    if (!o) {
        cJSON_Delete(data);
        return NULL;
    }
    cJSON *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddNumberToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", message);
    if (data) cJSON_AddItemToObject(e, "data", data);
    return finish(o);
}

char *sb_rpc_request(const cJSON *id, const char *method, cJSON *params)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) {
        cJSON_Delete(params);
        return NULL;
    }
    cJSON_AddStringToObject(o, "jsonrpc", "2.0");
    if (id) cJSON_AddItemToObject(o, "id", cJSON_Duplicate(id, 0));
    cJSON_AddStringToObject(o, "method", method);
    if (params) cJSON_AddItemToObject(o, "params", params);
    return finish(o);
}

int sb_rpc_id_key(const cJSON *id, char *out, size_t cap)
{
    int n;
    if (cJSON_IsString(id)) {
        n = snprintf(out, cap, "s:%s", id->valuestring);
    } else if (cJSON_IsNumber(id)) {
        double d = id->valuedouble;
        if (d >= 0 && d < 1e15 && d == (double)(uint64_t)d && !signbit(d)) {
            /* a whole number (what ids are): the digits "%.0f" prints, without printf's
             * floating-point path (~1k instructions a request) */
            char t[24], *e = t + sizeof t, *p = sb_u64_dec((uint64_t)d, e);
            size_t len = (size_t)(e - p);
            if (cap < len + 3) return -1;
            out[0] = 'n';
            out[1] = ':';
            memcpy(out + 2, p, len);
            out[len + 2] = '\0';
            return 0;
        }
        n = snprintf(out, cap, "n:%.0f", d);
    } else {
        return -1;
    }
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}
