#include "mcp/sb_mcp.h"

#include "core/sb_arena.h"
#include "core/sb_buf.h"
#include "core/sb_gzip.h"
#include "core/sb_json.h"
#include "core/sb_json_schema.h"
#include "core/sb_later.h"
#include "core/sb_log.h"
#include "core/sb_util.h"
#include "mcp/sb_jsonrpc.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_METHODS 32

static const char *const k_versions[] = {"2025-11-25", "2025-06-18", "2025-03-26"};
#define N_VERSIONS (sizeof k_versions / sizeof k_versions[0])

static const char *const k_levels[] = {"debug",    "info",  "notice", "warning",
                                       "error",    "critical", "alert", "emergency"};
#define N_LEVELS 8

typedef struct method_entry {
    char name[48];
    sb_method_fn fn;
    void *ud;
} method_entry;

#define TL_GZ_MAX 16    /* compressed tools/list pages kept (~6 KB each) */
#define SB_WWW_MAX 512  /* a call's WWW-Authenticate value, as sb_mcp_reply.www_authenticate */
#define TL_GZ_TOOLS 256 /* registries larger than this answer tools/list uncompressed */
typedef struct tl_gz {
    uint64_t mask[TL_GZ_TOOLS / 64]; /* the registry indexes of the page's tools */
    size_t next;                     /* its nextCursor's offset, SIZE_MAX for none */
    sb_gzip_part part;               /* its result object, compressed */
} tl_gz;

struct sb_mcp {
    sb_mcp_options o;
    char *name, *title, *version, *instructions;
    sb_registry *tools;
    sb_sessions *sessions;
    sb_loop *loop;
    method_entry methods[MAX_METHODS];
    size_t nmethods;
    cJSON *capabilities;
    atomic_uint_fast64_t next_server_id;
    sb_mcp_admit_fn admit;
    void *admit_ud;
    sb_mcp_visible_fn visible;
    void *visible_ud;
    sb_mcp_session_hooks shared; /* all NULL: sessions live in this process only */
    /* tools/list pages compressed once for clients that take gzip: at most TL_GZ_MAX distinct
     * pages (one per set of visible tools and cursor), published under tl_mu, freed with m */
    pthread_mutex_t tl_mu;
    tl_gz tl_gz[TL_GZ_MAX];
    size_t tl_n;
};

typedef struct qmsg {
    struct qmsg *next;
    char *json;
    size_t len;
    int final;
} qmsg;

typedef struct pending_req {
    struct pending_req *next_in_call; /* call's list, under call lock */
    char key[40];
    sb_mcp_call *call; /* holds a reference */
    sb_mcp_reply_fn fn;
    void *arg;
} pending_req;

struct sb_mcp_call {
    pthread_mutex_t mu;
    int refs;
    sb_mcp *m;
    sb_session *s; /* reference */
    cJSON *id;
    char key[80];
    char method[48];
    cJSON *progress_token;
    const sb_tool *tool;
    /* state, under mu */
    int finished, cancelled, tracked;
    qmsg *qh, *qt;
    size_t nq;
    int final_queued;
    int parked;
    sb_mcp_wake_fn wake;
    void *wake_ctx;
    sb_mcp_cancel_fn on_cancel;
    void *cancel_arg;
    uint64_t deadline_timer;
    pending_req *pending;
    /* caller context and HTTP details */
    void *principal;
    size_t principal_len;
    int http_status;
    char http_session[SB_SESSION_ID_LEN + 1];
    char *www;                    /* WWW-Authenticate of a 401/403, SB_WWW_MAX bytes; NULL: none
                                   * (set under mu, never moved once allocated) */
    cJSON *init_result; /* initialize: the result to send once admitted */
    struct deferred *deferred, *deferred_tail;
    int detached;
};

typedef struct deferred {
    struct deferred *next;
    sb_mcp_timer_fn fn;
    void *arg;
} deferred;

/* ------------------------------------------------------------------------------------------ */

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

sb_mcp *sb_mcp_new(const sb_mcp_options *o, sb_registry *tools, sb_loop *loop)
{
    sb_mcp *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->o = *o;
    m->name = xstrdup(o->server_name ? o->server_name : "signbridge");
    m->title = xstrdup(o->server_title ? o->server_title : "signbridge");
    m->version = xstrdup(o->server_version ? o->server_version : "0");
    m->instructions = xstrdup(o->instructions);
    if (!m->o.page_size) m->o.page_size = 100;
    if (!m->o.call_timeout_s) m->o.call_timeout_s = 300;
    m->tools = tools;
    m->loop = loop;
    m->sessions = sb_sessions_new(o->max_sessions, o->session_idle_s);
    m->capabilities = cJSON_CreateObject();
    atomic_init(&m->next_server_id, 1);
    pthread_mutex_init(&m->tl_mu, NULL);
    if (!m->name || !m->title || !m->version || !m->sessions || !m->capabilities) {
        sb_mcp_free(m);
        return NULL;
    }
    cJSON *tc = cJSON_AddObjectToObject(m->capabilities, "tools");
    cJSON_AddBoolToObject(tc, "listChanged", 0);
    cJSON_AddObjectToObject(m->capabilities, "logging");
    cJSON_AddObjectToObject(m->capabilities, "completions");
    return m;
}

void sb_mcp_free(sb_mcp *m)
{
    if (!m) return;
    sb_sessions_free(m->sessions);
    sb_registry_free(m->tools);
    cJSON_Delete(m->capabilities);
    free(m->name);
    free(m->title);
    free(m->version);
    free(m->instructions);
    for (size_t i = 0; i < m->tl_n; i++) sb_gzip_part_free(&m->tl_gz[i].part);
    pthread_mutex_destroy(&m->tl_mu);
    free(m);
}

sb_registry *sb_mcp_registry(sb_mcp *m)
{
    return m->tools;
}

sb_sessions *sb_mcp_sessions(sb_mcp *m)
{
    return m->sessions;
}

sb_loop *sb_mcp_loop(sb_mcp *m)
{
    return m->loop;
}

int sb_mcp_add_method(sb_mcp *m, const char *method, sb_method_fn fn, void *ud)
{
    if (m->nmethods >= MAX_METHODS || strlen(method) >= sizeof m->methods[0].name) return -1;
    method_entry *e = &m->methods[m->nmethods++];
    sb_strlcpy(e->name, method, sizeof e->name);
    e->fn = fn;
    e->ud = ud;
    return 0;
}

int sb_mcp_add_capability(sb_mcp *m, const char *cap_name, cJSON *capability)
{
    if (!capability) capability = cJSON_CreateObject();
    if (!capability) return -1;
    if (cJSON_GetObjectItemCaseSensitive(m->capabilities, cap_name))
        cJSON_ReplaceItemInObjectCaseSensitive(m->capabilities, cap_name, capability);
    else
        cJSON_AddItemToObject(m->capabilities, cap_name, capability);
    return 0;
}

static const method_entry *find_method(const sb_mcp *m, const char *name)
{
    for (size_t i = 0; i < m->nmethods; i++)
        if (strcmp(m->methods[i].name, name) == 0) return &m->methods[i];
    return NULL;
}

static int version_supported(const char *v)
{
    for (size_t i = 0; i < N_VERSIONS; i++)
        if (strcmp(v, k_versions[i]) == 0) return 1;
    return 0;
}

/* ---- replies ------------------------------------------------------------------------------ */

static void reply_body(sb_mcp_reply *out, int status, char *body)
{
    out->status = status;
    out->body = body;
    out->body_len = body ? strlen(body) : 0;
}

static void reply_error(sb_mcp_reply *out, int status, const cJSON *id, int code, const char *msg)
{
    reply_body(out, status, sb_rpc_error(id, code, msg, NULL));
}

/* ---- calls -------------------------------------------------------------------------------- */

void sb_mcp_call_ref(sb_mcp_call *c)
{
    pthread_mutex_lock(&c->mu);
    c->refs++;
    pthread_mutex_unlock(&c->mu);
}

void sb_mcp_call_release(sb_mcp_call *c)
{
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    int last = --c->refs == 0;
    pthread_mutex_unlock(&c->mu);
    if (!last) return;
    qmsg *q = c->qh;
    while (q) {
        qmsg *n = q->next;
        free(q->json);
        free(q);
        q = n;
    }
    cJSON_Delete(c->id);
    cJSON_Delete(c->progress_token);
    cJSON_Delete(c->init_result);
    if (c->principal) {
        explicit_bzero(c->principal, c->principal_len);
        free(c->principal);
    }
    free(c->www);
    sb_session_release(c->s);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* Append a message; call lock held. Takes json. */
static void enqueue_locked(sb_mcp_call *c, char *json, int final)
{
    qmsg *q = malloc(sizeof *q);
    if (!q) {
        free(json);
        return;
    }
    q->next = NULL;
    q->json = json;
    q->len = strlen(json);
    q->final = final;
    if (c->qt)
        c->qt->next = q;
    else
        c->qh = q;
    c->qt = q;
    c->nq++;
    if (final) c->final_queued = 1;
}

static void wake_locked(sb_mcp_call *c)
{
    if (c->parked) {
        c->parked = 0;
        c->wake(c->wake_ctx);
    }
}

/* After a call ends (finished or cancelled): leave the session table, stop the deadline timer,
 * and settle outstanding server-to-client requests. Called without the call lock. */
static void after_end(sb_mcp_call *c, uint64_t timer, pending_req *pend)
{
    if (c->tracked && sb_session_remove(c->s, &c->s->calls, c->key, c)) sb_mcp_call_release(c);
    if (timer && sb_loop_cancel(c->m->loop, timer)) sb_mcp_call_release(c);
    while (pend) {
        pending_req *n = pend->next_in_call;
        /* whoever takes it from the session table settles it */
        if (sb_session_take(c->s, &c->s->pending, pend->key) == pend) {
            pend->fn(c, NULL, NULL, pend->arg);
            sb_mcp_call_release(pend->call);
            free(pend);
        }
        pend = n;
    }
}

static void finish(sb_mcp_call *c, char *json)
{
    if (!json) json = sb_rpc_error(c->id, SB_RPC_INTERNAL_ERROR, "Internal error", NULL);
    pthread_mutex_lock(&c->mu);
    if (c->finished || c->cancelled) {
        pthread_mutex_unlock(&c->mu);
        free(json);
        return;
    }
    c->finished = 1;
    enqueue_locked(c, json, 1);
    wake_locked(c);
    uint64_t timer = c->deadline_timer;
    c->deadline_timer = 0;
    pending_req *pend = c->pending;
    c->pending = NULL;
    pthread_mutex_unlock(&c->mu);
    after_end(c, timer, pend);
}

static void cancel_call(sb_mcp_call *c)
{
    pthread_mutex_lock(&c->mu);
    if (c->finished || c->cancelled) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    c->cancelled = 1;
    wake_locked(c);
    sb_mcp_cancel_fn fn = c->on_cancel;
    void *arg = c->cancel_arg;
    c->on_cancel = NULL;
    uint64_t timer = c->deadline_timer;
    c->deadline_timer = 0;
    pending_req *pend = c->pending;
    c->pending = NULL;
    pthread_mutex_unlock(&c->mu);
    after_end(c, timer, pend);
    if (fn) fn(c, arg);
}

static cJSON *validate_output(sb_mcp_call *c, cJSON *result)
{
    if (!c->tool || !c->tool->output_schema || !cJSON_IsObject(result)) return result;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(result, "isError"))) return result;
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(result, "structuredContent");
    char err[512];
    if (sc && sb_schema_validate(c->tool->output_schema, c->tool->output_schema, sc,
                                 "structuredContent", err, sizeof err) == 0)
        return result;
    if (!sc) snprintf(err, sizeof err, "structuredContent missing");
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "tool", c->tool->name);
    cJSON_AddStringToObject(f, "error", err);
    sb_log_obj(SB_LOG_ERROR, "tool_output_invalid", f);
    cJSON_Delete(result);
    result = cJSON_CreateObject();
    cJSON *content = cJSON_AddArrayToObject(result, "content");
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "type", "text");
    cJSON_AddStringToObject(t, "text",
                            "signbridge produced a result that does not match this tool's output "
                            "schema; the failure was logged. Try again or report it.");
    cJSON_AddItemToArray(content, t);
    cJSON_AddBoolToObject(result, "isError", 1);
    return result;
}

void sb_mcp_call_result(sb_mcp_call *c, cJSON *result)
{
    if (!result) result = cJSON_CreateObject();
    result = validate_output(c, result);
    finish(c, sb_rpc_result(c->id, result));
}

/* Whether to check this result against the tool's outputSchema: a self-check of the adapters'
 * mappings (the arguments are always validated). Every result of a tool's first 64, then one in
 * 64 (docs/benchmarks.md: validating a 10-document list costs ~8% of a call's CPU), and every one
 * when debug logging is on. */
static int sample_output(sb_mcp_call *c)
{
    if (!c->tool) return 0;
    unsigned long n = __atomic_fetch_add(&((sb_tool *)c->tool)->outputs, 1, __ATOMIC_RELAXED);
    return n < 64 || (n & 63) == 0 || sb_log_enabled(SB_LOG_DEBUG);
}

static void delete_tree(void *tree)
{
    cJSON_Delete(tree);
}

void sb_mcp_call_tool_json(sb_mcp_call *c, cJSON *structured, char *json)
{
    char err[512];
    int ok = json != NULL;
    size_t jl = ok ? strlen(json) : 0;
    if (ok && c->tool && c->tool->output_schema && sample_output(c)) {
        const cJSON *tree = structured;
        sb_arena *a = NULL;
        if (!tree) {
            /* a result written without a tree is read back only for the check, into an arena
             * (a node per value from malloc cost twice the parse) */
            a = sb_arena_new(sb_json_arena_bound(jl));
            tree = sb_json_parse_in(json, jl, a);
        }
        ok = tree && sb_schema_validate(c->tool->output_schema, c->tool->output_schema, tree,
                                        "structuredContent", err, sizeof err) == 0;
        sb_arena_free(a);
        if (!structured && !ok)
            structured = sb_json_parse(json, jl); /* reported below (NULL: not JSON) */
    }
    if (!ok) {
        /* the slow path reports and replaces an invalid result */
        free(json);
        cJSON *r = cJSON_CreateObject();
        cJSON_AddArrayToObject(r, "content");
        if (structured) cJSON_AddItemToObject(r, "structuredContent", structured);
        sb_mcp_call_result(c, r);
        return;
    }
    /* freed once this turn's answers are sent (sb_later): ~500 nodes of a list result */
    if (structured) sb_later(delete_tree, structured);
    sb_buf b;
    sb_buf_init(&b, (size_t)256 << 20);
    /* the text block (escaped: a little more than the JSON) plus the JSON itself, at once */
    sb_buf_reserve(&b, jl + jl + jl / 4 + 256); /* a hint: appending still checks */
    int rc = sb_buf_puts(&b, "{\"jsonrpc\":\"2.0\",\"id\":");
    if (rc == 0) rc = c->id ? sb_buf_json_value(&b, c->id) : sb_buf_puts(&b, "null");
    if (rc == 0) rc = sb_buf_puts(&b, ",\"result\":{\"content\":[{\"type\":\"text\",\"text\":");
    if (rc == 0) rc = sb_buf_json_stringn(&b, json, jl);
    if (rc == 0) rc = sb_buf_puts(&b, "}],\"structuredContent\":");
    if (rc == 0) rc = sb_buf_append(&b, json, jl);
    if (rc == 0) rc = sb_buf_puts(&b, "}}");
    free(json);
    if (rc != 0) {
        sb_buf_free(&b);
        finish(c, NULL); /* -32603 */
        return;
    }
    finish(c, sb_buf_detach(&b, NULL));
}

void sb_mcp_call_tool_error(sb_mcp_call *c, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *r = cJSON_CreateObject();
    cJSON *content = cJSON_AddArrayToObject(r, "content");
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "type", "text");
    cJSON_AddStringToObject(t, "text", msg);
    cJSON_AddItemToArray(content, t);
    cJSON_AddBoolToObject(r, "isError", 1);
    finish(c, sb_rpc_result(c->id, r));
}

void sb_mcp_call_error(sb_mcp_call *c, int code, const char *message, cJSON *data)
{
    finish(c, sb_rpc_error(c->id, code, message, data));
}

void sb_mcp_call_notify(sb_mcp_call *c, const char *method, cJSON *params)
{
    char *json = sb_rpc_request(NULL, method, params);
    if (!json) return;
    pthread_mutex_lock(&c->mu);
    if (c->finished || c->cancelled) {
        pthread_mutex_unlock(&c->mu);
        free(json);
        return;
    }
    enqueue_locked(c, json, 0);
    wake_locked(c);
    pthread_mutex_unlock(&c->mu);
}

void sb_mcp_call_progress(sb_mcp_call *c, double progress, double total, const char *message)
{
    if (!c->progress_token) return;
    cJSON *p = cJSON_CreateObject();
    cJSON_AddItemToObject(p, "progressToken", cJSON_Duplicate(c->progress_token, 0));
    cJSON_AddNumberToObject(p, "progress", progress);
    if (total > 0) cJSON_AddNumberToObject(p, "total", total);
    if (message) cJSON_AddStringToObject(p, "message", message);
    sb_mcp_call_notify(c, "notifications/progress", p);
}

static int level_index(const char *level)
{
    for (int i = 0; i < N_LEVELS; i++)
        if (strcmp(level, k_levels[i]) == 0) return i;
    return -1;
}

void sb_mcp_call_log(sb_mcp_call *c, const char *level, const char *logger, cJSON *data)
{
    int li = level_index(level);
    pthread_mutex_lock(&c->s->mu);
    int min = c->s->log_level;
    pthread_mutex_unlock(&c->s->mu);
    if (li < 0 || li < min) {
        cJSON_Delete(data);
        return;
    }
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "level", level);
    if (logger) cJSON_AddStringToObject(p, "logger", logger);
    cJSON_AddItemToObject(p, "data", data ? data : cJSON_CreateNull());
    sb_mcp_call_notify(c, "notifications/message", p);
}

int sb_mcp_call_request(sb_mcp_call *c, const char *method, cJSON *params, sb_mcp_reply_fn reply,
                        void *arg)
{
    pending_req *p = calloc(1, sizeof *p);
    if (!p) {
        cJSON_Delete(params);
        return -1;
    }
    uint64_t n = atomic_fetch_add(&c->m->next_server_id, 1);
    char idstr[32];
    snprintf(idstr, sizeof idstr, "sb-%llu", (unsigned long long)n);
    cJSON *id = cJSON_CreateString(idstr);
    sb_rpc_id_key(id, p->key, sizeof p->key);
    char *json = sb_rpc_request(id, method, params);
    cJSON_Delete(id);
    if (!json) {
        free(p);
        return -1;
    }
    p->call = c;
    p->fn = reply;
    p->arg = arg;
    sb_mcp_call_ref(c);
    if (sb_session_put(c->s, &c->s->pending, p->key, p) < 0) {
        sb_mcp_call_release(c);
        free(json);
        free(p);
        return -1;
    }
    pthread_mutex_lock(&c->mu);
    if (c->finished || c->cancelled) {
        pthread_mutex_unlock(&c->mu);
        free(json);
        if (sb_session_take(c->s, &c->s->pending, p->key) == p) {
            sb_mcp_call_release(c);
            free(p);
        }
        return -1;
    }
    p->next_in_call = c->pending;
    c->pending = p;
    enqueue_locked(c, json, 0);
    wake_locked(c);
    pthread_mutex_unlock(&c->mu);
    return 0;
}

typedef struct timer_ctx {
    sb_mcp_call *c;
    sb_mcp_timer_fn fn;
    void *arg;
} timer_ctx;

static void timer_fire(void *p)
{
    timer_ctx *t = p;
    t->fn(t->c, t->arg);
    sb_mcp_call_release(t->c);
    free(t);
}

int sb_mcp_call_after(sb_mcp_call *c, uint64_t ms, sb_mcp_timer_fn fn, void *arg)
{
    timer_ctx *t = malloc(sizeof *t);
    if (!t) return -1;
    t->c = c;
    t->fn = fn;
    t->arg = arg;
    sb_mcp_call_ref(c);
    if (sb_loop_after(c->m->loop, ms, timer_fire, t) == 0) {
        sb_mcp_call_release(c);
        free(t);
        return -1;
    }
    return 0;
}

void sb_mcp_call_on_cancel(sb_mcp_call *c, sb_mcp_cancel_fn fn, void *arg)
{
    pthread_mutex_lock(&c->mu);
    int already = c->cancelled;
    if (!already) {
        c->on_cancel = fn;
        c->cancel_arg = arg;
    }
    pthread_mutex_unlock(&c->mu);
    if (already && fn) fn(c, arg);
}

int sb_mcp_call_done(sb_mcp_call *c)
{
    pthread_mutex_lock(&c->mu);
    int d = c->finished || c->cancelled;
    pthread_mutex_unlock(&c->mu);
    return d;
}

int sb_mcp_call_client_has(sb_mcp_call *c, const char *cap)
{
    if (strcmp(cap, "elicitation") == 0) return c->s->client_elicitation;
    if (strcmp(cap, "sampling") == 0) return c->s->client_sampling;
    if (strcmp(cap, "roots") == 0) return c->s->client_roots;
    return 0;
}

const void *sb_mcp_call_principal(sb_mcp_call *c, size_t *len)
{
    if (len) *len = c->principal_len;
    return c->principal;
}

const char *sb_mcp_call_region(sb_mcp_call *c)
{
    return c->s->region;
}

const sb_tool *sb_mcp_call_tool(sb_mcp_call *c)
{
    return c->tool;
}

void sb_mcp_call_http_meta(sb_mcp_call *c, int *status, const char **session_id,
                           const char **www)
{
    pthread_mutex_lock(&c->mu);
    *status = c->http_status;
    *session_id = c->http_session;
    *www = c->www ? c->www : "";
    pthread_mutex_unlock(&c->mu);
}

void sb_mcp_set_admit(sb_mcp *m, sb_mcp_admit_fn fn, void *ud)
{
    m->admit = fn;
    m->admit_ud = ud;
}

void sb_mcp_set_session_hooks(sb_mcp *m, const sb_mcp_session_hooks *h)
{
    if (h)
        m->shared = *h;
    else
        memset(&m->shared, 0, sizeof m->shared);
}

static void session_record(const sb_session *s, sb_mcp_session_rec *r)
{
    memset(r, 0, sizeof *r);
    memcpy(r->id, s->id, sizeof r->id);
    sb_strlcpy(r->owner, s->fingerprint, sizeof r->owner);
    sb_strlcpy(r->protocol_version, s->protocol_version, sizeof r->protocol_version);
    sb_strlcpy(r->client_name, s->client_name, sizeof r->client_name);
    sb_strlcpy(r->region, s->region, sizeof r->region);
    r->client_elicitation = s->client_elicitation;
    r->client_sampling = s->client_sampling;
    r->client_roots = s->client_roots;
    r->log_level = s->log_level;
}

static size_t end_session_calls(sb_session *s, int shutdown);

static void session_persist(sb_mcp *m, sb_session *s)
{
    if (!m->shared.persist) return;
    sb_mcp_session_rec r;
    pthread_mutex_lock(&s->mu);
    session_record(s, &r);
    pthread_mutex_unlock(&s->mu);
    m->shared.persist(&r, m->shared.ud);
}

/* Look up the request's session: this process's table first (checking with the shared store, at
 * most once a second, that no other replica ended it), then the shared store. New reference or
 * NULL (unknown, ended, expired, another owner). */
static sb_session *session_lookup(sb_mcp *m, const sb_mcp_req *req)
{
    sb_session *s = sb_sessions_get(m->sessions, req->session_id, req->fingerprint);
    if (s) {
        if (!m->shared.alive) return s;
        uint64_t now = sb_mono_ms();
        pthread_mutex_lock(&s->mu);
        int check = now - s->alive_checked_ms >= 1000;
        if (check) s->alive_checked_ms = now;
        pthread_mutex_unlock(&s->mu);
        if (!check || m->shared.alive(s->id, m->shared.ud)) return s;
        /* ended on another replica */
        if (sb_sessions_end(m->sessions, s->id, req->fingerprint) == 0) end_session_calls(s, 0);
        sb_session_release(s);
        return NULL;
    }
    if (!m->shared.load || !req->session_id || strlen(req->session_id) != SB_SESSION_ID_LEN)
        return NULL;
    sb_mcp_session_rec r;
    memset(&r, 0, sizeof r);
    if (m->shared.load(req->session_id, &r, m->shared.ud) != 0) return NULL;
    const char *fp = req->fingerprint ? req->fingerprint : "";
    r.owner[sizeof r.owner - 1] = '\0';
    if (!sb_ct_equal(r.owner, strlen(r.owner), fp, strlen(fp)) ||
        !sb_ct_equal(r.id, strnlen(r.id, sizeof r.id), req->session_id, SB_SESSION_ID_LEN))
        return NULL;
    sb_session tmpl;
    memset(&tmpl, 0, sizeof tmpl);
    memcpy(tmpl.id, r.id, sizeof tmpl.id);
    tmpl.id[SB_SESSION_ID_LEN] = '\0';
    sb_strlcpy(tmpl.fingerprint, r.owner, sizeof tmpl.fingerprint);
    sb_strlcpy(tmpl.protocol_version,
               version_supported(r.protocol_version) ? r.protocol_version : SB_MCP_LATEST,
               sizeof tmpl.protocol_version);
    sb_strlcpy(tmpl.client_name, r.client_name, sizeof tmpl.client_name);
    sb_strlcpy(tmpl.region, r.region, sizeof tmpl.region);
    tmpl.client_elicitation = r.client_elicitation != 0;
    tmpl.client_sampling = r.client_sampling != 0;
    tmpl.client_roots = r.client_roots != 0;
    tmpl.log_level = r.log_level >= 0 && r.log_level <= 8 ? r.log_level : 1;
    if (sb_sessions_adopt(m->sessions, &tmpl, &s) == 0) return s;
    /* adopted meanwhile by a concurrent request: use that one */
    return sb_sessions_get(m->sessions, req->session_id, req->fingerprint);
}

void sb_mcp_set_visibility(sb_mcp *m, sb_mcp_visible_fn fn, void *ud)
{
    m->visible = fn;
    m->visible_ud = ud;
}

const char *sb_mcp_call_method(sb_mcp_call *c)
{
    return c->method;
}

const char *sb_mcp_call_fingerprint(sb_mcp_call *c)
{
    return c->s->fingerprint;
}

sb_mcp *sb_mcp_call_engine(sb_mcp_call *c)
{
    return c->m;
}

static void run_deferred(sb_mcp_call *c)
{
    for (;;) {
        pthread_mutex_lock(&c->mu);
        deferred *d = c->deferred;
        c->deferred = c->deferred_tail = NULL;
        pthread_mutex_unlock(&c->mu);
        if (!d) return;
        while (d) {
            deferred *n = d->next;
            d->fn(c, d->arg);
            free(d);
            d = n;
        }
    }
}

void sb_mcp_call_run(sb_mcp_call *c)
{
    run_deferred(c);
}

void sb_mcp_call_defer(sb_mcp_call *c, sb_mcp_timer_fn fn, void *arg)
{
    deferred *d = malloc(sizeof *d);
    if (!d) {
        fn(c, arg); /* cannot queue: run here */
        return;
    }
    d->next = NULL;
    d->fn = fn;
    d->arg = arg;
    pthread_mutex_lock(&c->mu);
    if (c->detached) {
        pthread_mutex_unlock(&c->mu);
        free(d);
        fn(c, arg);
        return;
    }
    if (c->deferred_tail)
        c->deferred_tail->next = d;
    else
        c->deferred = d;
    c->deferred_tail = d;
    wake_locked(c);
    pthread_mutex_unlock(&c->mu);
}

int sb_mcp_call_next(sb_mcp_call *c, char **json, size_t *len, int *is_final, sb_mcp_wake_fn park,
                     sb_mcp_wake_fn wake, void *ctx)
{
    run_deferred(c);
    pthread_mutex_lock(&c->mu);
    if (c->deferred) {
        /* more work arrived meanwhile: run it first */
        pthread_mutex_unlock(&c->mu);
        return sb_mcp_call_next(c, json, len, is_final, park, wake, ctx);
    }
    qmsg *q = c->qh;
    if (q) {
        c->qh = q->next;
        if (!c->qh) c->qt = NULL;
        c->nq--;
        pthread_mutex_unlock(&c->mu);
        *json = q->json;
        *len = q->len;
        *is_final = q->final;
        free(q);
        return 1;
    }
    if (c->finished || c->cancelled) {
        pthread_mutex_unlock(&c->mu);
        return 0;
    }
    c->parked = 1;
    c->wake = wake;
    c->wake_ctx = ctx;
    park(ctx);
    pthread_mutex_unlock(&c->mu);
    return 2;
}

void sb_mcp_call_peek(sb_mcp_call *c, size_t *queued, int *final_queued)
{
    pthread_mutex_lock(&c->mu);
    *queued = c->nq;
    *final_queued = c->final_queued;
    pthread_mutex_unlock(&c->mu);
}

void sb_mcp_call_detach(sb_mcp_call *c)
{
    pthread_mutex_lock(&c->mu);
    c->parked = 0;
    c->wake = NULL;
    c->detached = 1;
    pthread_mutex_unlock(&c->mu);
    cancel_call(c);
    run_deferred(c); /* nobody will ask for messages any more */
    sb_mcp_call_release(c);
}

static void deadline_fire(void *p)
{
    sb_mcp_call *c = p;
    pthread_mutex_lock(&c->mu);
    c->deadline_timer = 0;
    pthread_mutex_unlock(&c->mu);
    if (c->tool)
        sb_mcp_call_tool_error(c,
                               "The tool %s did not finish within %u s and was stopped. Nothing "
                               "more will happen for this call; try again later.",
                               c->tool->name, c->m->o.call_timeout_s);
    else
        sb_mcp_call_error(c, SB_RPC_INTERNAL_ERROR, "Request timed out", NULL);
    sb_mcp_call_release(c);
}

/* Sets the call's WWW-Authenticate value (call lock held). The buffer is allocated on first use
 * (most calls never have one) and keeps its address, so sb_mcp_call_http_meta's pointer stays
 * valid; out of memory leaves the header out. */
static void set_www_locked(sb_mcp_call *c, const char *www)
{
    if (!c->www && !*www) return;
    if (!c->www && !(c->www = malloc(SB_WWW_MAX))) return;
    sb_strlcpy(c->www, www, SB_WWW_MAX);
}

static sb_mcp_call *call_new(sb_mcp *m, sb_session *s, const sb_rpc_msg *msg,
                             const sb_mcp_req *req)
{
    sb_mcp_call *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->http_status = 200;
    if (req && req->principal && req->principal_len) {
        c->principal = malloc(req->principal_len);
        if (!c->principal) {
            free(c);
            return NULL;
        }
        memcpy(c->principal, req->principal, req->principal_len);
        c->principal_len = req->principal_len;
    }
    pthread_mutex_init(&c->mu, NULL);
    c->refs = 1;
    c->m = m;
    sb_session_ref(s);
    c->s = s;
    c->id = cJSON_Duplicate(msg->id, 0);
    sb_rpc_id_key(msg->id, c->key, sizeof c->key);
    sb_strlcpy(c->method, msg->method, sizeof c->method);
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(msg->params, "_meta");
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(meta, "progressToken");
    if (cJSON_IsString(tok) || cJSON_IsNumber(tok)) c->progress_token = cJSON_Duplicate(tok, 0);
    return c;
}

/* ---- methods ------------------------------------------------------------------------------ */

static cJSON *initialize_result(sb_mcp *m, sb_session *s, const sb_rpc_msg *msg)
{
    const cJSON *p = msg->params;
    const cJSON *pv = cJSON_GetObjectItemCaseSensitive(p, "protocolVersion");
    const cJSON *caps = cJSON_GetObjectItemCaseSensitive(p, "capabilities");
    const cJSON *info = cJSON_GetObjectItemCaseSensitive(p, "clientInfo");
    const char *ver = cJSON_IsString(pv) && version_supported(pv->valuestring) ? pv->valuestring
                                                                                 : SB_MCP_LATEST;
    sb_strlcpy(s->protocol_version, ver, sizeof s->protocol_version);
    s->client_elicitation = cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(caps, "elicitation"));
    s->client_sampling = cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(caps, "sampling"));
    s->client_roots = cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(caps, "roots"));
    const cJSON *cn = cJSON_GetObjectItemCaseSensitive(info, "name");
    if (cJSON_IsString(cn)) sb_strlcpy(s->client_name, cn->valuestring, sizeof s->client_name);

    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "protocolVersion", ver);
    cJSON_AddItemToObject(r, "capabilities", cJSON_Duplicate(m->capabilities, 1));
    cJSON *si = cJSON_AddObjectToObject(r, "serverInfo");
    cJSON_AddStringToObject(si, "name", m->name);
    cJSON_AddStringToObject(si, "title", m->title);
    cJSON_AddStringToObject(si, "version", m->version);
    if (m->instructions && *m->instructions)
        cJSON_AddStringToObject(r, "instructions", m->instructions);
    return r;
}

/* tools/list is the hot path: build it from the pre-serialized contracts. */

/* The result object of a page: {"tools":[listings],"nextCursor":...} (next == SIZE_MAX: none). */
static int tl_result(const sb_mcp *m, const uint16_t *pick, size_t n, size_t next, sb_buf *b)
{
    int rc = sb_buf_puts(b, "{\"tools\":[");
    for (size_t k = 0; k < n && rc == 0; k++) {
        const sb_tool *t = sb_registry_at(m->tools, pick[k]);
        if (k) rc = sb_buf_append(b, ",", 1);
        if (rc == 0) rc = sb_buf_append(b, t->listing, t->listing_len);
    }
    if (rc == 0) rc = sb_buf_puts(b, "]");
    if (rc == 0 && next != SIZE_MAX) {
        char c[96];
        sb_cursor_encode(next, c, sizeof c);
        rc = sb_buf_printf(b, ",\"nextCursor\":\"%s\"", c);
    }
    if (rc == 0) rc = sb_buf_puts(b, "}");
    return rc;
}

/* The compressed result of the page (pick, n, next), compressed at its first use and kept while m
 * lives (the registry only grows before serving starts), or NULL when the cache is full or
 * compression fails: the caller then answers uncompressed. */
static const sb_gzip_part *tl_gzip(sb_mcp *m, const uint16_t *pick, size_t n, size_t next)
{
    uint64_t mask[TL_GZ_TOOLS / 64] = {0};
    for (size_t k = 0; k < n; k++) mask[pick[k] / 64] |= (uint64_t)1 << (pick[k] % 64);
    pthread_mutex_lock(&m->tl_mu);
    for (size_t i = 0; i < m->tl_n; i++) {
        const tl_gz *e = &m->tl_gz[i];
        if (e->next == next && memcmp(e->mask, mask, sizeof mask) == 0) {
            pthread_mutex_unlock(&m->tl_mu);
            return &e->part; /* immutable once published */
        }
    }
    int full = m->tl_n == TL_GZ_MAX;
    pthread_mutex_unlock(&m->tl_mu);
    if (full) return NULL;
    /* compress outside the lock (~1 ms for 48 KB at level 9); a racing thread may do the same page:
     * the first to publish wins */
    sb_buf b;
    sb_buf_init(&b, (size_t)64 << 20);
    sb_gzip_part part;
    int rc = tl_result(m, pick, n, next, &b);
    if (rc == 0) rc = sb_gzip_part_make(&part, b.data, b.len);
    sb_buf_free(&b);
    if (rc != 0) return NULL;
    const sb_gzip_part *out = NULL;
    pthread_mutex_lock(&m->tl_mu);
    for (size_t i = 0; i < m->tl_n && !out; i++)
        if (m->tl_gz[i].next == next && memcmp(m->tl_gz[i].mask, mask, sizeof mask) == 0)
            out = &m->tl_gz[i].part;
    if (!out && m->tl_n < TL_GZ_MAX) {
        tl_gz *e = &m->tl_gz[m->tl_n];
        memcpy(e->mask, mask, sizeof mask);
        e->next = next;
        e->part = part;
        part.z = NULL; /* moved */
        out = &e->part;
        m->tl_n++;
    }
    pthread_mutex_unlock(&m->tl_mu);
    sb_gzip_part_free(&part);
    return out;
}

static void do_tools_list(sb_mcp *m, const sb_mcp_req *req, const sb_rpc_msg *msg,
                          sb_mcp_reply *out)
{
    const cJSON *cur = cJSON_GetObjectItemCaseSensitive(msg->params, "cursor");
    size_t off = 0;
    size_t total = sb_registry_count(m->tools);
    if (cur && !cJSON_IsNull(cur)) {
        if (!cJSON_IsString(cur) || sb_cursor_decode(cur->valuestring, &off) < 0 || off > total) {
            reply_error(out, 200, msg->id, SB_RPC_INVALID_PARAMS,
                        "Invalid params: unknown or expired cursor; call tools/list without a "
                        "cursor to start again");
            return;
        }
    }
    out->vary_encoding = 1;
    /* the page: `off` counts visible tools, so walk the registry skipping hidden ones */
    uint16_t stack_pick[TL_GZ_TOOLS];
    uint16_t *pick = stack_pick;
    size_t cap = m->o.page_size < total ? m->o.page_size : total;
    if (total > UINT16_MAX + (size_t)1) goto internal;
    if (cap > TL_GZ_TOOLS && !(pick = malloc(cap * sizeof *pick))) goto internal;
    size_t seen = 0, n = 0, i = 0;
    char www[8];
    for (; i < total; i++) {
        const sb_tool *t = sb_registry_at(m->tools, i);
        if (m->visible && m->visible(t, req->principal, www, sizeof www, m->visible_ud) != 0)
            continue;
        if (seen++ < off) continue;
        if (n == m->o.page_size) break;
        pick[n++] = (uint16_t)i;
    }
    size_t next = SIZE_MAX; /* a cursor only when more visible tools follow */
    for (size_t j = i; j < total; j++)
        if (!m->visible || m->visible(sb_registry_at(m->tools, j), req->principal, www, sizeof www,
                                      m->visible_ud) == 0) {
            next = off + n;
            break;
        }
    sb_buf b;
    sb_buf_init(&b, (size_t)64 << 20);
    int rc = sb_buf_puts(&b, "{\"jsonrpc\":\"2.0\",\"id\":");
    if (rc == 0) rc = msg->id ? sb_buf_json_value(&b, msg->id) : sb_buf_puts(&b, "null");
    if (rc == 0) rc = sb_buf_puts(&b, ",\"result\":");
    const sb_gzip_part *gz = NULL;
    if (rc == 0 && total <= TL_GZ_TOOLS && sb_gzip_accepted(req->accept_encoding))
        gz = tl_gzip(m, pick, n, next);
    if (gz) {
        /* {"jsonrpc":"2.0","id":<id>,"result": + the compressed page + } */
        sb_buf z;
        sb_buf_init(&z, (size_t)64 << 20);
        rc = sb_gzip_splice(&z, b.data, b.len, gz, "}", 1);
        sb_buf_free(&b);
        b = z;
        if (rc == 0) out->content_encoding = "gzip";
    } else if (rc == 0) {
        /* room for the whole page at once: growing by doubling moved ~40 KB around several times */
        rc = sb_buf_reserve(&b, sb_registry_listing_bytes(m->tools) + total + 256);
        if (rc == 0) rc = tl_result(m, pick, n, next, &b);
        if (rc == 0) rc = sb_buf_puts(&b, "}");
    }
    if (pick != stack_pick) free(pick);
    if (rc != 0) {
        sb_buf_free(&b);
        out->content_encoding = NULL;
        goto internal;
    }
    size_t len;
    out->status = 200;
    out->body = sb_buf_detach(&b, &len);
    out->body_len = len;
    return;
internal:
    reply_error(out, 200, msg->id, SB_RPC_INTERNAL_ERROR, "Internal error");
}

static void do_set_level(sb_session *s, const sb_rpc_msg *msg, sb_mcp_reply *out)
{
    const cJSON *lv = cJSON_GetObjectItemCaseSensitive(msg->params, "level");
    int li = cJSON_IsString(lv) ? level_index(lv->valuestring) : -1;
    if (li < 0) {
        reply_error(out, 200, msg->id, SB_RPC_INVALID_PARAMS,
                    "Invalid params: level must be one of debug, info, notice, warning, error, "
                    "critical, alert, emergency");
        return;
    }
    pthread_mutex_lock(&s->mu);
    s->log_level = li;
    pthread_mutex_unlock(&s->mu);
    reply_body(out, 200, sb_rpc_result(msg->id, cJSON_CreateObject()));
}

static void run_tool(sb_mcp_call *c, const sb_rpc_msg *msg)
{
    const cJSON *p = msg->params;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(p, "name");
    if (!cJSON_IsString(name)) {
        sb_mcp_call_error(c, SB_RPC_INVALID_PARAMS, "Invalid params: \"name\" must be a string",
                          NULL);
        return;
    }
    const sb_tool *t = sb_registry_find(c->m->tools, name->valuestring);
    int vis = 0;
    if (t && c->m->visible) {
        char www[512] = "";
        vis = c->m->visible(t, c->principal, www, sizeof www, c->m->visible_ud);
        if (vis == 2) {
            pthread_mutex_lock(&c->mu);
            c->http_status = 403;
            set_www_locked(c, www);
            pthread_mutex_unlock(&c->mu);
            char msgbuf[300];
            snprintf(msgbuf, sizeof msgbuf,
                     "Forbidden: insufficient_scope: this connection may not call %.64s (it is "
                     "read-only or restricted); reconnect with the needed scope",
                     t->name);
            sb_mcp_call_error(c, SB_RPC_SERVER_ERROR, msgbuf, NULL);
            return;
        }
        if (vis != 0) t = NULL;
    }
    if (!t) {
        char msgbuf[256];
        snprintf(msgbuf, sizeof msgbuf, "Unknown tool: %.128s", name->valuestring);
        sb_mcp_call_error(c, SB_RPC_INVALID_PARAMS, msgbuf, NULL);
        return;
    }
    c->tool = t;
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(p, "arguments");
    if (args && !cJSON_IsObject(args) && !cJSON_IsNull(args)) {
        sb_mcp_call_error(c, SB_RPC_INVALID_PARAMS,
                          "Invalid params: \"arguments\" must be an object", NULL);
        return;
    }
    cJSON *a = args && cJSON_IsObject(args) ? cJSON_Duplicate(args, 1) : cJSON_CreateObject();
    if (!a) {
        sb_mcp_call_error(c, SB_RPC_INTERNAL_ERROR, "Internal error", NULL);
        return;
    }
    char err[512];
    if (sb_schema_apply_defaults(t->input_schema, t->input_schema, a) < 0 ||
        sb_schema_validate(t->input_schema, t->input_schema, a, "arguments", err, sizeof err) !=
            0) {
        cJSON_Delete(a);
        sb_mcp_call_tool_error(c,
                               "Invalid arguments for tool %s: %s. Fix the arguments to match "
                               "the tool's inputSchema and call it again.",
                               t->name, err);
        return;
    }
    int rc = t->fn(c, a, t->ud);
    cJSON_Delete(a);
    if (rc < 0) sb_mcp_call_error(c, SB_RPC_INTERNAL_ERROR, "Internal error", NULL);
}

/* After dispatch: a call that finished at once with nothing before its result is answered as
 * plain JSON (with its HTTP details); otherwise the transport takes over our reference. */
static void settle(sb_mcp_call *c, sb_mcp_reply *out)
{
    pthread_mutex_lock(&c->mu);
    int plain = c->finished && c->nq == 1 && c->qh && c->qh->final && !c->deferred;
    qmsg *q = NULL;
    if (plain) {
        q = c->qh;
        c->qh = c->qt = NULL;
        c->nq = 0;
        out->status = c->http_status;
        memcpy(out->session_id, c->http_session, sizeof out->session_id);
        sb_strlcpy(out->www_authenticate, c->www ? c->www : "", sizeof out->www_authenticate);
    }
    pthread_mutex_unlock(&c->mu);
    if (plain) {
        out->body = q->json;
        out->body_len = q->len;
        free(q);
        sb_mcp_call_release(c);
        return;
    }
    out->status = 200;
    out->call = c; /* the transport inherits our reference */
}

static void run_call(sb_mcp *m, sb_session *s, const sb_rpc_msg *msg, const sb_mcp_req *req,
                     sb_mcp_reply *out)
{
    const method_entry *me = NULL;
    int is_tool = strcmp(msg->method, "tools/call") == 0;
    if (!is_tool) {
        me = find_method(m, msg->method);
        if (!me) {
            if (strcmp(msg->method, "completion/complete") == 0) {
                cJSON *r = cJSON_CreateObject();
                cJSON *cpl = cJSON_AddObjectToObject(r, "completion");
                cJSON_AddArrayToObject(cpl, "values");
                cJSON_AddBoolToObject(cpl, "hasMore", 0);
                reply_body(out, 200, sb_rpc_result(msg->id, r));
                return;
            }
            char buf[128];
            snprintf(buf, sizeof buf, "Method not found: %.64s", msg->method);
            reply_error(out, 200, msg->id, SB_RPC_METHOD_NOT_FOUND, buf);
            return;
        }
    }
    sb_mcp_call *c = call_new(m, s, msg, req);
    if (!c) {
        reply_error(out, 200, msg->id, SB_RPC_INTERNAL_ERROR, "Internal error");
        return;
    }
    /* in-flight table (for notifications/cancelled): holds a reference */
    sb_mcp_call_ref(c);
    if (sb_session_put(s, &s->calls, c->key, c) < 0) {
        sb_mcp_call_release(c);
        sb_mcp_call_release(c);
        reply_error(out, 200, msg->id, SB_RPC_INVALID_REQUEST,
                    "Invalid Request: a request with this id is already in progress");
        return;
    }
    c->tracked = 1;
    sb_mcp_call_ref(c);
    uint64_t tid = sb_loop_after(m->loop, (uint64_t)m->o.call_timeout_s * 1000, deadline_fire, c);
    if (!tid) {
        sb_mcp_call_release(c);
    } else {
        pthread_mutex_lock(&c->mu);
        if (!c->finished && !c->cancelled) c->deadline_timer = tid;
        pthread_mutex_unlock(&c->mu);
    }
    if (is_tool) {
        run_tool(c, msg);
    } else if (me->fn(c, msg->params, me->ud) < 0) {
        sb_mcp_call_error(c, SB_RPC_INTERNAL_ERROR, "Internal error", NULL);
    }
    settle(c, out);
}

static void on_notification(sb_session *s, const sb_rpc_msg *msg)
{
    if (strcmp(msg->method, "notifications/initialized") == 0) {
        pthread_mutex_lock(&s->mu);
        s->initialized = 1;
        pthread_mutex_unlock(&s->mu);
    } else if (strcmp(msg->method, "notifications/cancelled") == 0) {
        const cJSON *rid = cJSON_GetObjectItemCaseSensitive(msg->params, "requestId");
        char key[80];
        if (sb_rpc_id_key(rid, key, sizeof key) < 0) return;
        sb_mcp_call *c = sb_session_take(s, &s->calls, key);
        if (!c) return;
        pthread_mutex_lock(&c->mu);
        c->tracked = 0;
        pthread_mutex_unlock(&c->mu);
        cancel_call(c);
        sb_mcp_call_release(c); /* the table's reference */
    }
}

static void on_response(sb_session *s, const sb_rpc_msg *msg)
{
    char key[80];
    if (sb_rpc_id_key(msg->id, key, sizeof key) < 0) return;
    pending_req *p = sb_session_take(s, &s->pending, key);
    if (!p) return;
    sb_mcp_call *c = p->call;
    pthread_mutex_lock(&c->mu);
    for (pending_req **pp = &c->pending; *pp; pp = &(*pp)->next_in_call) {
        if (*pp == p) {
            *pp = p->next_in_call;
            break;
        }
    }
    int done = c->finished || c->cancelled;
    pthread_mutex_unlock(&c->mu);
    if (done)
        p->fn(c, NULL, NULL, p->arg);
    else
        p->fn(c, msg->result, msg->error, p->arg);
    sb_mcp_call_release(c);
    free(p);
}

void sb_mcp_post(sb_mcp *m, const sb_mcp_req *req, const char *body, size_t len,
                 sb_mcp_reply *out)
{
    memset(out, 0, sizeof *out);
    sb_rpc_msg msg;
    char err[256];
    int rc = sb_rpc_parse(body, len, &msg, err, sizeof err);
    if (rc == SB_RPC_PARSE_ERROR) {
        reply_error(out, 400, NULL, rc, err);
        return;
    }
    if (rc == SB_RPC_BATCH) {
        sb_rpc_msg_free(&msg);
        reply_error(out, 400, NULL, SB_RPC_INVALID_REQUEST,
                    "Invalid Request: JSON-RPC batches are not supported (removed in MCP "
                    "2025-06-18); send one message per POST");
        return;
    }
    if (rc < 0) {
        reply_error(out, 400, msg.id, rc, err);
        sb_rpc_msg_free(&msg);
        return;
    }
    if (msg.method) sb_strlcpy(out->rpc_method, msg.method, sizeof out->rpc_method);

    if (req->protocol_version && !version_supported(req->protocol_version)) {
        char buf[200];
        snprintf(buf, sizeof buf,
                 "Bad Request: Unsupported protocol version: %.32s (supported versions: "
                 "2025-11-25, 2025-06-18, 2025-03-26)",
                 req->protocol_version);
        reply_error(out, 400, msg.kind == SB_RPC_REQUEST ? msg.id : NULL, SB_RPC_SERVER_ERROR, buf);
        sb_rpc_msg_free(&msg);
        return;
    }

    if (msg.kind == SB_RPC_REQUEST && strcmp(msg.method, "initialize") == 0) {
        if (req->session_id) {
            sb_session *old = session_lookup(m, req);
            if (old) {
                sb_session_release(old);
                reply_error(out, 400, msg.id, SB_RPC_INVALID_REQUEST,
                            "Invalid Request: this session is already initialized; initialize "
                            "without an Mcp-Session-Id header to start a new one");
            } else {
                reply_error(out, 404, msg.id, SB_RPC_SESSION_NOT_FOUND, "Session not found");
            }
            sb_rpc_msg_free(&msg);
            return;
        }
        if (!cJSON_IsObject(msg.params)) {
            reply_error(out, 200, msg.id, SB_RPC_INVALID_PARAMS,
                        "Invalid params: initialize needs params {protocolVersion, capabilities, "
                        "clientInfo}");
            sb_rpc_msg_free(&msg);
            return;
        }
        sb_session *s;
        if (sb_sessions_create(m->sessions, req->fingerprint, &s) < 0) {
            reply_error(out, 503, msg.id, SB_RPC_SERVER_ERROR,
                        "Service Unavailable: too many sessions; try again later");
            sb_rpc_msg_free(&msg);
            return;
        }
        cJSON *result = initialize_result(m, s, &msg);
        if (!m->admit) {
            session_persist(m, s);
            reply_body(out, 200, sb_rpc_result(msg.id, result));
            memcpy(out->session_id, s->id, sizeof out->session_id);
            sb_session_release(s);
            sb_rpc_msg_free(&msg);
            return;
        }
        /* admission runs as a call: it may need the network */
        s->admitted = 0;
        sb_mcp_call *c = call_new(m, s, &msg, req);
        if (!c) {
            cJSON_Delete(result);
            sb_sessions_end(m->sessions, s->id, req->fingerprint);
            sb_session_release(s);
            reply_error(out, 500, msg.id, SB_RPC_INTERNAL_ERROR, "Internal error");
            sb_rpc_msg_free(&msg);
            return;
        }
        c->init_result = result;
        sb_mcp_call_ref(c);
        uint64_t tid =
            sb_loop_after(m->loop, (uint64_t)m->o.call_timeout_s * 1000, deadline_fire, c);
        if (!tid) {
            sb_mcp_call_release(c);
        } else {
            pthread_mutex_lock(&c->mu);
            if (!c->finished && !c->cancelled) c->deadline_timer = tid;
            pthread_mutex_unlock(&c->mu);
        }
        m->admit(c, m->admit_ud);
        settle(c, out);
        sb_session_release(s);
        sb_rpc_msg_free(&msg);
        return;
    }

    if (!req->session_id) {
        reply_error(out, 400, msg.id, SB_RPC_SERVER_ERROR,
                    "Bad Request: Mcp-Session-Id header is required (initialize first)");
        sb_rpc_msg_free(&msg);
        return;
    }
    sb_session *s = session_lookup(m, req);
    if (!s) {
        reply_error(out, 404, msg.id, SB_RPC_SESSION_NOT_FOUND, "Session not found");
        sb_rpc_msg_free(&msg);
        return;
    }

    switch (msg.kind) {
    case SB_RPC_NOTIFICATION:
        on_notification(s, &msg);
        out->status = 202;
        break;
    case SB_RPC_RESPONSE:
        on_response(s, &msg);
        out->status = 202;
        break;
    case SB_RPC_REQUEST:
        if (strcmp(msg.method, "ping") == 0)
            reply_body(out, 200, sb_rpc_result(msg.id, cJSON_CreateObject()));
        else if (strcmp(msg.method, "tools/list") == 0)
            do_tools_list(m, req, &msg, out);
        else if (strcmp(msg.method, "logging/setLevel") == 0)
            do_set_level(s, &msg, out);
        else
            run_call(m, s, &msg, req, out);
        break;
    }
    if (out->status == 200 && !out->body && !out->call)
        reply_error(out, 500, msg.id, SB_RPC_INTERNAL_ERROR, "Internal error");
    sb_session_release(s);
    sb_rpc_msg_free(&msg);
}

/* Shared sessions: record the admitted session on the thread that delivers the call (admission
 * may end on the upstream engine thread, which must not wait on a store) before the initialize
 * result goes out, so the client cannot reach another replica first. */
static void admit_persist(sb_mcp_call *c, void *arg)
{
    (void)arg;
    session_persist(c->m, c->s);
    pthread_mutex_lock(&c->mu);
    cJSON *r = c->init_result;
    c->init_result = NULL;
    pthread_mutex_unlock(&c->mu);
    if (r) finish(c, sb_rpc_result(c->id, r));
}

void sb_mcp_admit_ok(sb_mcp_call *c, const char *region)
{
    sb_session *s = c->s;
    pthread_mutex_lock(&s->mu);
    sb_strlcpy(s->region, region ? region : "", sizeof s->region);
    s->admitted = 1;
    pthread_mutex_unlock(&s->mu);
    if (c->m->shared.persist) {
        pthread_mutex_lock(&c->mu);
        memcpy(c->http_session, s->id, sizeof c->http_session);
        pthread_mutex_unlock(&c->mu);
        sb_mcp_call_defer(c, admit_persist, NULL);
        return;
    }
    pthread_mutex_lock(&c->mu);
    memcpy(c->http_session, s->id, sizeof c->http_session);
    cJSON *r = c->init_result;
    c->init_result = NULL;
    pthread_mutex_unlock(&c->mu);
    finish(c, sb_rpc_result(c->id, r));
}

void sb_mcp_admit_refuse(sb_mcp_call *c, int status, const char *www, cJSON *body)
{
    pthread_mutex_lock(&c->mu);
    c->http_status = status;
    set_www_locked(c, www ? www : "");
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_lock(&c->s->mu);
    c->s->ended = 1; /* never admitted: the next sweep drops it */
    pthread_mutex_unlock(&c->s->mu);
    char *json = body ? cJSON_PrintUnformatted(body) : strdup("{}");
    cJSON_Delete(body);
    finish(c, json);
}

/* Stop every call of a session: cancel it (stop = 0) or finish it with a shutdown error. */
static size_t end_session_calls(sb_session *s, int shutdown)
{
    size_t n = 0;
    sb_mcp_call *c;
    while ((c = sb_session_take_any(s, &s->calls)) != NULL) {
        pthread_mutex_lock(&c->mu);
        c->tracked = 0;
        pthread_mutex_unlock(&c->mu);
        if (!shutdown)
            cancel_call(c);
        else if (c->tool)
            sb_mcp_call_tool_error(c, "signbridge is shutting down and stopped this call before "
                                      "it finished. Retry it in a moment.");
        else
            sb_mcp_call_error(c, SB_RPC_INTERNAL_ERROR, "Server shutting down", NULL);
        sb_mcp_call_release(c);
        n++;
    }
    return n;
}

size_t sb_mcp_shutdown(sb_mcp *m)
{
    sb_session **all;
    size_t n, stopped = 0;
    if (sb_sessions_snapshot(m->sessions, &all, &n) < 0) return 0;
    for (size_t i = 0; i < n; i++) {
        stopped += end_session_calls(all[i], 1);
        sb_session_release(all[i]);
    }
    free(all);
    return stopped;
}

void sb_mcp_delete(sb_mcp *m, const sb_mcp_req *req, sb_mcp_reply *out)
{
    memset(out, 0, sizeof *out);
    if (!req->session_id) {
        reply_error(out, 400, NULL, SB_RPC_SERVER_ERROR,
                    "Bad Request: Mcp-Session-Id header is required");
        return;
    }
    sb_session *s = session_lookup(m, req);
    if (!s || sb_sessions_end(m->sessions, req->session_id, req->fingerprint) < 0) {
        sb_session_release(s);
        reply_error(out, 404, NULL, SB_RPC_SESSION_NOT_FOUND, "Session not found");
        return;
    }
    if (m->shared.end) m->shared.end(s->id, m->shared.ud);
    end_session_calls(s, 0);
    sb_session_release(s);
    out->status = 200;
}
