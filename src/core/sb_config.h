/* sb_config: the server configuration: embedded defaults < JSON file < SIGNBRIDGE_* env < flags,
 * validated against schemas/config.schema.json. */
#ifndef SB_CONFIG_H
#define SB_CONFIG_H
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#define SB_MAX_ORIGINS 32

typedef struct sb_config {
    char listen[128];          /* "ADDR:PORT"; port 0 picks a free port */
    char public_url[256];      /* external origin; "" = derived from the bound listen address */
    char log_level[16];
    char default_provider[32];
    char secret_file[512];     /* server secret (HMAC key for fingerprints); created if absent */
    char instructions[2048];   /* MCP `instructions` returned by initialize */
    char sandbox_url[256];     /* "" or the sandbox origin every provider region points at */
    size_t n_base_urls;
    struct {
        char key[48];          /* "provider/region" */
        char url[256];
    } base_urls[16];
    struct {
        char confirm[16];      /* off | destructive | all */
        char audit_log[512];
        unsigned idempotency_ttl_s;
    } actions;
    struct {
        unsigned timeout_ms, probe_timeout_ms, connect_timeout_ms, max_host_connections;
        unsigned max_retries, region_cache_ttl_s;
        size_t max_response_bytes;
        char ca_file[512];
        size_t n_allowed_networks;
        char allowed_networks[16][64];
    } upstream;
    struct {
        char url[4096];        /* sqlite:PATH, PATH or postgresql://... (may hold a password) */
    } store;
    struct {
        char listen[128];
        char token[256];
    } admin;
    struct {
        int enabled;
        size_t n_signing_key_files;
        char signing_key_files[8][512];
        unsigned access_token_ttl_s, refresh_token_ttl_s, code_ttl_s;
        size_t n_cimd_trusted;
        char cimd_trusted[8][256];
        struct {
            int enabled;
            unsigned refresh_s;
            size_t n_issuers;
            struct {
                char issuer[256], provider[16], region[24], audience[256];
            } issuers[16];
        } ptok;
        size_t n_apps;
        struct {
            char provider[16], region[24];
            char client_id[256], client_secret[256], scope[512], authorize_url[256],
                token_url[256];
        } apps[16];
    } oauth;
    struct {
        int enabled;           /* serve GET /metrics */
        int on_admin;          /* also serve it on the admin listener */
    } metrics;
    struct {
        unsigned requests_per_minute; /* per credential; 0 = off (reloadable) */
        unsigned burst;                /* bucket size; 0 = rpm / 6, at least 1 */
        unsigned max_concurrent_calls; /* in-flight tools/call per credential; 0 = off */
    } ratelimit;
    size_t n_allowed_origins;
    char allowed_origins[SB_MAX_ORIGINS][256];
    /* limits */
    size_t max_body_bytes;
    unsigned max_connections;
    unsigned connection_timeout_s;
    size_t max_header_bytes;   /* per-connection memory for the request line + headers */
    unsigned max_sessions;
    unsigned session_idle_timeout_s;
    unsigned tools_page_size;
    unsigned call_timeout_s;   /* deadline for one tools/call, including waits for the client */
    unsigned http_threads;     /* libmicrohttpd worker threads (epoll each) */
    unsigned lane_yield_us;    /* a lane busy this long without waiting yields its core; 0 = never */
    unsigned lane_poll_us;     /* a serving lane polls this long at most before it sleeps; 0 = never */
    unsigned drain_timeout_s;  /* on SIGTERM: how long in-flight requests may finish */
} sb_config;

/*
 * Build the configuration. `file` may be NULL (defaults + environment only). `overrides` is a JSON
 * object in the same shape as the file (from command-line flags), may be NULL, not taken.
 * `envp` is the environment to read SIGNBRIDGE_* from (NULL = none).
 * Every leaf of the config schema can be set by SIGNBRIDGE_<PATH> where PATH is the dotted path
 * upper-cased with '.' -> '_' (e.g. SIGNBRIDGE_LIMITS_MAX_BODY_BYTES); arrays take comma lists.
 * On failure returns -1 and writes a message naming the field and the rule into err.
 */
int sb_config_load(sb_config *cfg, const char *file, const cJSON *overrides, char *const *envp,
                   char *err, size_t errlen);

/* The merged, validated configuration as JSON (for --check-config); caller frees with cJSON_Delete. */
cJSON *sb_config_to_json(const sb_config *cfg);

/* Copy url into out[0..cap) with the password of a "scheme://user:password@host" URL replaced by
 * "***" (for logs and --check-config); other URLs are copied as they are (truncated to fit). */
void sb_config_redact_url(const char *url, char *out, size_t cap);

/* The embedded config schema (parsed once, owned by the module). */
const cJSON *sb_config_schema(void);

#endif
