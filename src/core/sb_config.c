#include "core/sb_config.h"

#include "core/sb_buf.h"
#include "core/sb_embed.h"
#include "core/sb_json_schema.h"
#include "core/sb_util.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cJSON *g_schema;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void load_schema(void)
{
    const sb_embedded_file *f = sb_embed_find("config.schema.json");
    if (f) g_schema = cJSON_ParseWithLength(f->data, f->len);
}

const cJSON *sb_config_schema(void)
{
    pthread_once(&g_once, load_schema);
    return g_schema;
}

static cJSON *read_json_file(const char *path, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    sb_buf b;
    sb_buf_init(&b, 1 << 20);
    char chunk[8192];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
        if ((rc = sb_buf_append(&b, chunk, n)) != 0) break;
    fclose(fp);
    if (rc) {
        snprintf(err, errlen, "%s: larger than 1 MiB", path);
        sb_buf_free(&b);
        return NULL;
    }
    if (!sb_utf8_valid(b.data ? b.data : "", b.len)) {
        snprintf(err, errlen, "%s: not valid UTF-8", path);
        sb_buf_free(&b);
        return NULL;
    }
    const char *end = NULL;
    /* the length includes the NUL: cJSON then insists nothing but whitespace follows */
    cJSON *doc = cJSON_ParseWithLengthOpts(b.data ? b.data : "", b.len + 1, &end, 1);
    if (!doc) {
        size_t off = end && b.data ? (size_t)(end - b.data) : 0;
        unsigned line = 1;
        for (size_t i = 0; i < off && i < b.len; i++) line += b.data[i] == '\n';
        snprintf(err, errlen, "%s: invalid JSON near line %u", path, line);
    }
    sb_buf_free(&b);
    return doc;
}

/* Merge src into dst (objects deep, everything else replaced). src is not taken. */
static int merge(cJSON *dst, const cJSON *src)
{
    for (const cJSON *it = src->child; it; it = it->next) {
        cJSON *cur = cJSON_GetObjectItemCaseSensitive(dst, it->string);
        if (cur && cJSON_IsObject(cur) && cJSON_IsObject(it)) {
            if (merge(cur, it) < 0) return -1;
            continue;
        }
        cJSON *copy = cJSON_Duplicate(it, 1);
        if (!copy) return -1;
        if (cur)
            cJSON_ReplaceItemInObjectCaseSensitive(dst, it->string, copy);
        else
            cJSON_AddItemToObject(dst, it->string, copy);
    }
    return 0;
}

static const char *env_get(char *const *envp, const char *name)
{
    if (!envp) return NULL;
    size_t n = strlen(name);
    for (char *const *e = envp; *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
    return NULL;
}

static cJSON *env_value(const cJSON *prop, const char *val, const char *path, const char *var,
                        char *err, size_t errlen)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(prop, "type");
    const char *t = cJSON_IsString(type) ? type->valuestring : "string";
    if (strcmp(t, "integer") == 0) {
        int64_t v;
        if (sb_parse_i64(val, INT64_MIN / 2, INT64_MAX / 2, &v) < 0) {
            snprintf(err, errlen, "config.%s (from %s): must be an integer (type)", path, var);
            return NULL;
        }
        return cJSON_CreateNumber((double)v);
    }
    if (strcmp(t, "boolean") == 0) {
        if (strcmp(val, "true") == 0 || strcmp(val, "1") == 0) return cJSON_CreateTrue();
        if (strcmp(val, "false") == 0 || strcmp(val, "0") == 0) return cJSON_CreateFalse();
        snprintf(err, errlen, "config.%s (from %s): must be true or false (type)", path, var);
        return NULL;
    }
    if (strcmp(t, "array") == 0) {
        cJSON *arr = cJSON_CreateArray();
        const char *p = val;
        while (arr && *p) {
            const char *c = strchr(p, ',');
            size_t n = c ? (size_t)(c - p) : strlen(p);
            while (n && isspace((unsigned char)*p)) p++, n--;
            while (n && isspace((unsigned char)p[n - 1])) n--;
            if (n) {
                char *s = strndup(p, n);
                if (s) cJSON_AddItemToArray(arr, cJSON_CreateString(s));
                free(s);
            }
            if (!c) break;
            p = c + 1;
        }
        return arr;
    }
    return cJSON_CreateString(val);
}

/* Apply SIGNBRIDGE_* variables for every leaf of the schema below `props`. */
static int apply_env(cJSON *doc, const cJSON *props, const char *prefix, char *const *envp,
                     char *err, size_t errlen)
{
    for (const cJSON *p = props ? props->child : NULL; p; p = p->next) {
        char path[256], var[300];
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", p->string);
        int n = snprintf(var, sizeof var, "SIGNBRIDGE_");
        for (const char *c = path; *c && n < (int)sizeof var - 1; c++)
            var[n++] = *c == '.' ? '_' : (char)toupper((unsigned char)*c);
        var[n] = '\0';
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(p, "type");
        if (cJSON_IsString(type) && strcmp(type->valuestring, "object") == 0) {
            cJSON *sub = cJSON_GetObjectItemCaseSensitive(doc, p->string);
            if (!sub) sub = cJSON_AddObjectToObject(doc, p->string);
            if (!cJSON_IsObject(sub)) continue; /* validation reports the type error */
            if (apply_env(sub, cJSON_GetObjectItemCaseSensitive(p, "properties"), path, envp, err,
                          errlen) < 0)
                return -1;
            continue;
        }
        const char *val = env_get(envp, var);
        if (!val) continue;
        cJSON *v = env_value(p, val, path, var, err, errlen);
        if (!v) return -1;
        if (cJSON_GetObjectItemCaseSensitive(doc, p->string))
            cJSON_ReplaceItemInObjectCaseSensitive(doc, p->string, v);
        else
            cJSON_AddItemToObject(doc, p->string, v);
    }
    return 0;
}

static void get_str(const cJSON *o, const char *k, char *out, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsString(v)) sb_strlcpy(out, v->valuestring, cap);
}

static double get_num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static int check_listen(const char *l, char *err, size_t errlen)
{
    const char *colon = strrchr(l, ':');
    int64_t port;
    if (!colon || colon == l || sb_parse_i64(colon + 1, 0, 65535, &port) < 0) {
        snprintf(err, errlen, "config.listen: must be ADDR:PORT with a port 0-65535 (format)");
        return -1;
    }
    return 0;
}

int sb_config_load(sb_config *cfg, const char *file, const cJSON *overrides, char *const *envp,
                   char *err, size_t errlen)
{
    if (errlen) err[0] = '\0';
    const cJSON *schema = sb_config_schema();
    if (!schema) {
        snprintf(err, errlen, "embedded config schema missing or invalid");
        return -1;
    }
    cJSON *doc = NULL;
    if (file) {
        doc = read_json_file(file, err, errlen);
        if (!doc) return -1;
        if (!cJSON_IsObject(doc)) {
            snprintf(err, errlen, "config: must be of type object (type)");
            cJSON_Delete(doc);
            return -1;
        }
    } else {
        doc = cJSON_CreateObject();
    }
    int rc = -1;
    if (!doc) goto out;
    if (apply_env(doc, cJSON_GetObjectItemCaseSensitive(schema, "properties"), "", envp, err,
                  errlen) < 0)
        goto out;
    if (overrides && merge(doc, overrides) < 0) goto out;
    if (sb_schema_apply_defaults(schema, schema, doc) < 0) goto out;
    if (sb_schema_validate(schema, schema, doc, "config", err, errlen) != 0) goto out;

    memset(cfg, 0, sizeof *cfg);
    get_str(doc, "listen", cfg->listen, sizeof cfg->listen);
    if (check_listen(cfg->listen, err, errlen) < 0) goto out;
    get_str(doc, "public_url", cfg->public_url, sizeof cfg->public_url);
    get_str(doc, "log_level", cfg->log_level, sizeof cfg->log_level);
    get_str(doc, "default_provider", cfg->default_provider, sizeof cfg->default_provider);
    get_str(doc, "secret_file", cfg->secret_file, sizeof cfg->secret_file);
    get_str(doc, "instructions", cfg->instructions, sizeof cfg->instructions);
    get_str(doc, "sandbox_url", cfg->sandbox_url, sizeof cfg->sandbox_url);
    if (cfg->sandbox_url[0] && strncmp(cfg->sandbox_url, "http://", 7) != 0 &&
        strncmp(cfg->sandbox_url, "https://", 8) != 0) {
        snprintf(err, errlen, "config.sandbox_url: must be an http:// or https:// URL (format)");
        goto out;
    }
    const cJSON *bu;
    cJSON_ArrayForEach(bu, cJSON_GetObjectItemCaseSensitive(doc, "base_urls"))
    {
        if (cfg->n_base_urls >= 16 || !cJSON_IsString(bu)) break;
        if (strlen(bu->string) >= sizeof cfg->base_urls[0].key) {
            snprintf(err, errlen, "config.base_urls: key too long");
            goto out;
        }
        sb_strlcpy(cfg->base_urls[cfg->n_base_urls].key, bu->string, sizeof cfg->base_urls[0].key);
        sb_strlcpy(cfg->base_urls[cfg->n_base_urls].url, bu->valuestring,
                   sizeof cfg->base_urls[0].url);
        cfg->n_base_urls++;
    }
    const cJSON *origins = cJSON_GetObjectItemCaseSensitive(doc, "allowed_origins");
    const cJSON *o;
    cJSON_ArrayForEach(o, origins)
    {
        if (cfg->n_allowed_origins < SB_MAX_ORIGINS && cJSON_IsString(o))
            sb_strlcpy(cfg->allowed_origins[cfg->n_allowed_origins++], o->valuestring, 256);
    }
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(doc, "actions");
    get_str(act, "confirm", cfg->actions.confirm, sizeof cfg->actions.confirm);
    get_str(act, "audit_log", cfg->actions.audit_log, sizeof cfg->actions.audit_log);
    cfg->actions.idempotency_ttl_s = (unsigned)get_num(act, "idempotency_ttl_s");
    const cJSON *up = cJSON_GetObjectItemCaseSensitive(doc, "upstream");
    cfg->upstream.timeout_ms = (unsigned)get_num(up, "timeout_ms");
    cfg->upstream.probe_timeout_ms = (unsigned)get_num(up, "probe_timeout_ms");
    cfg->upstream.connect_timeout_ms = (unsigned)get_num(up, "connect_timeout_ms");
    cfg->upstream.max_host_connections = (unsigned)get_num(up, "max_host_connections");
    cfg->upstream.max_retries = (unsigned)get_num(up, "max_retries");
    cfg->upstream.region_cache_ttl_s = (unsigned)get_num(up, "region_cache_ttl_s");
    cfg->upstream.max_response_bytes = (size_t)get_num(up, "max_response_bytes");
    get_str(up, "ca_file", cfg->upstream.ca_file, sizeof cfg->upstream.ca_file);
    const cJSON *an;
    cJSON_ArrayForEach(an, cJSON_GetObjectItemCaseSensitive(up, "allowed_networks"))
    {
        if (cfg->upstream.n_allowed_networks < 16 && cJSON_IsString(an))
            sb_strlcpy(cfg->upstream.allowed_networks[cfg->upstream.n_allowed_networks++],
                       an->valuestring, 64);
    }
    get_str(cJSON_GetObjectItemCaseSensitive(doc, "store"), "url", cfg->store.url,
            sizeof cfg->store.url);
    const cJSON *adm = cJSON_GetObjectItemCaseSensitive(doc, "admin");
    get_str(adm, "listen", cfg->admin.listen, sizeof cfg->admin.listen);
    get_str(adm, "token", cfg->admin.token, sizeof cfg->admin.token);
    const cJSON *oa = cJSON_GetObjectItemCaseSensitive(doc, "oauth");
    cfg->oauth.enabled = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(oa, "enabled"));
    cfg->oauth.access_token_ttl_s = (unsigned)get_num(oa, "access_token_ttl_s");
    cfg->oauth.refresh_token_ttl_s = (unsigned)get_num(oa, "refresh_token_ttl_s");
    cfg->oauth.code_ttl_s = (unsigned)get_num(oa, "code_ttl_s");
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(oa, "signing_key_files"))
    {
        if (cfg->oauth.n_signing_key_files < 8 && cJSON_IsString(it))
            sb_strlcpy(cfg->oauth.signing_key_files[cfg->oauth.n_signing_key_files++],
                       it->valuestring, 512);
    }
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(oa, "cimd_trusted_prefixes"))
    {
        if (cfg->oauth.n_cimd_trusted < 8 && cJSON_IsString(it))
            sb_strlcpy(cfg->oauth.cimd_trusted[cfg->oauth.n_cimd_trusted++], it->valuestring, 256);
    }
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(oa, "provider_tokens");
    cfg->oauth.ptok.enabled = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pt, "enabled"));
    cfg->oauth.ptok.refresh_s = (unsigned)get_num(pt, "refresh_s");
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(pt, "issuers"))
    {
        if (cfg->oauth.ptok.n_issuers >= 16 || !cJSON_IsObject(it)) continue;
        if (strlen(it->string) >= 256) {
            snprintf(err, errlen, "config.oauth.provider_tokens.issuers: issuer URL too long");
            goto out;
        }
        __typeof__(cfg->oauth.ptok.issuers[0]) *is =
            &cfg->oauth.ptok.issuers[cfg->oauth.ptok.n_issuers++];
        sb_strlcpy(is->issuer, it->string, sizeof is->issuer);
        get_str(it, "provider", is->provider, sizeof is->provider);
        get_str(it, "region", is->region, sizeof is->region);
        get_str(it, "audience", is->audience, sizeof is->audience);
    }
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(oa, "apps"))
    {
        if (cfg->oauth.n_apps >= 16 || !cJSON_IsObject(it)) continue;
        char key[64];
        sb_strlcpy(key, it->string, sizeof key);
        char *slash = strchr(key, '/');
        if (slash) *slash = 0;
        if (strlen(key) >= 16 || (slash && strlen(slash + 1) >= 24)) {
            snprintf(err, errlen, "config.oauth.apps: key \"%s\" is not provider or provider/region",
                     it->string);
            goto out;
        }
        __typeof__(cfg->oauth.apps[0]) *ap = &cfg->oauth.apps[cfg->oauth.n_apps++];
        sb_strlcpy(ap->provider, key, sizeof ap->provider);
        sb_strlcpy(ap->region, slash ? slash + 1 : "", sizeof ap->region);
        get_str(it, "client_id", ap->client_id, sizeof ap->client_id);
        get_str(it, "client_secret", ap->client_secret, sizeof ap->client_secret);
        get_str(it, "scope", ap->scope, sizeof ap->scope);
        get_str(it, "authorize_url", ap->authorize_url, sizeof ap->authorize_url);
        get_str(it, "token_url", ap->token_url, sizeof ap->token_url);
    }
    const cJSON *met = cJSON_GetObjectItemCaseSensitive(doc, "metrics");
    cfg->metrics.enabled = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(met, "enabled"));
    cfg->metrics.on_admin = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(met, "on_admin"));
    const cJSON *rl = cJSON_GetObjectItemCaseSensitive(doc, "ratelimit");
    cfg->ratelimit.requests_per_minute = (unsigned)get_num(rl, "requests_per_minute");
    cfg->ratelimit.burst = (unsigned)get_num(rl, "burst");
    cfg->ratelimit.max_concurrent_calls = (unsigned)get_num(rl, "max_concurrent_calls");
    const cJSON *lim = cJSON_GetObjectItemCaseSensitive(doc, "limits");
    cfg->max_body_bytes = (size_t)get_num(lim, "max_body_bytes");
    cfg->max_connections = (unsigned)get_num(lim, "max_connections");
    cfg->connection_timeout_s = (unsigned)get_num(lim, "connection_timeout_s");
    cfg->max_header_bytes = (size_t)get_num(lim, "max_header_bytes");
    cfg->max_sessions = (unsigned)get_num(lim, "max_sessions");
    cfg->session_idle_timeout_s = (unsigned)get_num(lim, "session_idle_timeout_s");
    cfg->tools_page_size = (unsigned)get_num(lim, "tools_page_size");
    cfg->call_timeout_s = (unsigned)get_num(lim, "call_timeout_s");
    cfg->http_threads = (unsigned)get_num(lim, "http_threads");
    cfg->lane_yield_us = (unsigned)get_num(lim, "lane_yield_us");
    cfg->lane_poll_us = (unsigned)get_num(lim, "lane_poll_us");
    cfg->drain_timeout_s = (unsigned)get_num(lim, "drain_timeout_s");
    rc = 0;
out:
    if (rc && err[0] == '\0') snprintf(err, errlen, "config: out of memory");
    cJSON_Delete(doc);
    return rc;
}

void sb_config_redact_url(const char *url, char *out, size_t cap)
{
    if (!cap) return;
    out[0] = '\0';
    if (!url) return;
    const char *scheme = strstr(url, "://");
    const char *auth = scheme ? scheme + 3 : NULL;
    const char *end = auth ? auth + strcspn(auth, "/?#") : NULL;
    const char *at = NULL;
    for (const char *p = auth; p && p < end; p++)
        if (*p == '@') at = p; /* the last '@' before the path ends the userinfo */
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon)
        sb_strlcpy(out, url, cap);
    else
        snprintf(out, cap, "%.*s:***%s", (int)(colon - url), url, at);
    /* libpq also takes ?password=... (and &password=...) in the query */
    char *q = strchr(out, '?');
    while (q) {
        char *p = strstr(q, "password=");
        if (!p) break;
        if (p[-1] != '?' && p[-1] != '&') {
            q = p + 9;
            continue;
        }
        char *v = p + 9, *e = v + strcspn(v, "&#");
        size_t rest = strlen(e);
        if ((size_t)(v - out) + 3 + rest + 1 > cap) {
            *v = '\0'; /* no room to mask: cut it */
            break;
        }
        memmove(v + 3, e, rest + 1);
        memcpy(v, "***", 3);
        q = v + 3;
    }
}

cJSON *sb_config_to_json(const sb_config *c)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "listen", c->listen);
    cJSON_AddStringToObject(o, "public_url", c->public_url);
    cJSON_AddStringToObject(o, "log_level", c->log_level);
    cJSON_AddStringToObject(o, "default_provider", c->default_provider);
    cJSON_AddStringToObject(o, "secret_file", c->secret_file);
    cJSON_AddStringToObject(o, "instructions", c->instructions);
    cJSON_AddStringToObject(o, "sandbox_url", c->sandbox_url);
    cJSON *bus = cJSON_AddObjectToObject(o, "base_urls");
    for (size_t i = 0; i < c->n_base_urls; i++)
        cJSON_AddStringToObject(bus, c->base_urls[i].key, c->base_urls[i].url);
    cJSON *arr = cJSON_AddArrayToObject(o, "allowed_origins");
    for (size_t i = 0; i < c->n_allowed_origins; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(c->allowed_origins[i]));
    cJSON *ac = cJSON_AddObjectToObject(o, "actions");
    cJSON_AddStringToObject(ac, "confirm", c->actions.confirm);
    cJSON_AddStringToObject(ac, "audit_log", c->actions.audit_log);
    cJSON_AddNumberToObject(ac, "idempotency_ttl_s", c->actions.idempotency_ttl_s);
    cJSON *u = cJSON_AddObjectToObject(o, "upstream");
    cJSON_AddNumberToObject(u, "timeout_ms", c->upstream.timeout_ms);
    cJSON_AddNumberToObject(u, "probe_timeout_ms", c->upstream.probe_timeout_ms);
    cJSON_AddNumberToObject(u, "connect_timeout_ms", c->upstream.connect_timeout_ms);
    cJSON_AddNumberToObject(u, "max_response_bytes", (double)c->upstream.max_response_bytes);
    cJSON_AddNumberToObject(u, "max_host_connections", c->upstream.max_host_connections);
    cJSON_AddNumberToObject(u, "max_retries", c->upstream.max_retries);
    cJSON_AddStringToObject(u, "ca_file", c->upstream.ca_file);
    cJSON *nets = cJSON_AddArrayToObject(u, "allowed_networks");
    for (size_t i = 0; i < c->upstream.n_allowed_networks; i++)
        cJSON_AddItemToArray(nets, cJSON_CreateString(c->upstream.allowed_networks[i]));
    cJSON_AddNumberToObject(u, "region_cache_ttl_s", c->upstream.region_cache_ttl_s);
    cJSON *adj = cJSON_AddObjectToObject(o, "admin");
    cJSON_AddStringToObject(adj, "listen", c->admin.listen);
    cJSON_AddStringToObject(adj, "token", c->admin.token[0] ? "(redacted)" : "");
    cJSON *oj = cJSON_AddObjectToObject(o, "oauth");
    cJSON_AddBoolToObject(oj, "enabled", c->oauth.enabled);
    cJSON *sk = cJSON_AddArrayToObject(oj, "signing_key_files");
    for (size_t i = 0; i < c->oauth.n_signing_key_files; i++)
        cJSON_AddItemToArray(sk, cJSON_CreateString(c->oauth.signing_key_files[i]));
    cJSON_AddNumberToObject(oj, "access_token_ttl_s", c->oauth.access_token_ttl_s);
    cJSON_AddNumberToObject(oj, "refresh_token_ttl_s", c->oauth.refresh_token_ttl_s);
    cJSON_AddNumberToObject(oj, "code_ttl_s", c->oauth.code_ttl_s);
    cJSON *ct = cJSON_AddArrayToObject(oj, "cimd_trusted_prefixes");
    for (size_t i = 0; i < c->oauth.n_cimd_trusted; i++)
        cJSON_AddItemToArray(ct, cJSON_CreateString(c->oauth.cimd_trusted[i]));
    cJSON *ptj = cJSON_AddObjectToObject(oj, "provider_tokens");
    cJSON_AddBoolToObject(ptj, "enabled", c->oauth.ptok.enabled);
    cJSON_AddNumberToObject(ptj, "refresh_s", c->oauth.ptok.refresh_s);
    cJSON *isj = cJSON_AddObjectToObject(ptj, "issuers");
    for (size_t i = 0; i < c->oauth.ptok.n_issuers; i++) {
        cJSON *x = cJSON_AddObjectToObject(isj, c->oauth.ptok.issuers[i].issuer);
        cJSON_AddStringToObject(x, "provider", c->oauth.ptok.issuers[i].provider);
        cJSON_AddStringToObject(x, "region", c->oauth.ptok.issuers[i].region);
        cJSON_AddStringToObject(x, "audience", c->oauth.ptok.issuers[i].audience);
    }
    cJSON *apps = cJSON_AddObjectToObject(oj, "apps");
    for (size_t i = 0; i < c->oauth.n_apps; i++) {
        char key[48];
        snprintf(key, sizeof key, "%s%s%s", c->oauth.apps[i].provider,
                 c->oauth.apps[i].region[0] ? "/" : "", c->oauth.apps[i].region);
        cJSON *a1 = cJSON_AddObjectToObject(apps, key);
        cJSON_AddStringToObject(a1, "client_id", c->oauth.apps[i].client_id);
        cJSON_AddStringToObject(a1, "client_secret", "(redacted)");
    }
    cJSON *st = cJSON_AddObjectToObject(o, "store");
    char red[sizeof c->store.url];
    sb_config_redact_url(c->store.url, red, sizeof red);
    cJSON_AddStringToObject(st, "url", red);
    cJSON *mt = cJSON_AddObjectToObject(o, "metrics");
    cJSON_AddBoolToObject(mt, "enabled", c->metrics.enabled);
    cJSON_AddBoolToObject(mt, "on_admin", c->metrics.on_admin);
    cJSON *rlj = cJSON_AddObjectToObject(o, "ratelimit");
    cJSON_AddNumberToObject(rlj, "requests_per_minute", c->ratelimit.requests_per_minute);
    cJSON_AddNumberToObject(rlj, "burst", c->ratelimit.burst);
    cJSON_AddNumberToObject(rlj, "max_concurrent_calls", c->ratelimit.max_concurrent_calls);
    cJSON *l = cJSON_AddObjectToObject(o, "limits");
    cJSON_AddNumberToObject(l, "max_body_bytes", (double)c->max_body_bytes);
    cJSON_AddNumberToObject(l, "max_connections", c->max_connections);
    cJSON_AddNumberToObject(l, "connection_timeout_s", c->connection_timeout_s);
    cJSON_AddNumberToObject(l, "max_header_bytes", (double)c->max_header_bytes);
    cJSON_AddNumberToObject(l, "max_sessions", c->max_sessions);
    cJSON_AddNumberToObject(l, "session_idle_timeout_s", c->session_idle_timeout_s);
    cJSON_AddNumberToObject(l, "tools_page_size", c->tools_page_size);
    cJSON_AddNumberToObject(l, "call_timeout_s", c->call_timeout_s);
    cJSON_AddNumberToObject(l, "http_threads", c->http_threads);
    cJSON_AddNumberToObject(l, "lane_yield_us", c->lane_yield_us);
    cJSON_AddNumberToObject(l, "lane_poll_us", c->lane_poll_us);
    cJSON_AddNumberToObject(l, "drain_timeout_s", c->drain_timeout_s);
    return o;
}
