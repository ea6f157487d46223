/* sb_bridge_session: the engine's shared-session hooks on the store (see the header).
 *
 * Records live in ns "session" under hex(SHA-256(session id)) -- the id itself is never a key, so
 * reading the database does not hand out usable ids. A live record is
 *   {"o":owner key,"v":protocol version,"n":client name,"r":region,"e":0|1,"s":0|1,"t":0|1,"l":n}
 * with the idle timeout as TTL (refreshed while the session is used); DELETE replaces it with
 * {"ended":true} for the same TTL, which every replica sees at its next liveness check (at most
 * once a second per session). */
#include "bridge/sb_bridge_session.h"

#include "core/sb_util.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#define NS "session"

struct sb_bridge_sessions {
    sb_store *st;
    unsigned idle_s;
};

static void store_key(const char *id, char out[65])
{
    sb_sha256_hex(id, strlen(id), out);
}

static int64_t expiry(const sb_bridge_sessions *ss)
{
    return sb_store_now_ms() + (int64_t)ss->idle_s * 1000;
}

static int persist(const sb_mcp_session_rec *r, void *ud)
{
    sb_bridge_sessions *ss = ud;
    cJSON *o = cJSON_CreateObject();
    if (!o) return -1;
    cJSON_AddStringToObject(o, "o", r->owner);
    cJSON_AddStringToObject(o, "v", r->protocol_version);
    cJSON_AddStringToObject(o, "n", r->client_name);
    cJSON_AddStringToObject(o, "r", r->region);
    cJSON_AddNumberToObject(o, "e", r->client_elicitation);
    cJSON_AddNumberToObject(o, "s", r->client_sampling);
    cJSON_AddNumberToObject(o, "t", r->client_roots);
    cJSON_AddNumberToObject(o, "l", r->log_level);
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!json) return -1;
    char key[65];
    store_key(r->id, key);
    int rc = sb_store_put(ss->st, NS, key, json, strlen(json), expiry(ss), NULL);
    free(json);
    return rc;
}

static void copy_str(const cJSON *o, const char *k, char *out, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    sb_strlcpy(out, cJSON_IsString(v) ? v->valuestring : "", cap);
}

static int get_int(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valueint : 0;
}

static int load(const char *id, sb_mcp_session_rec *out, void *ud)
{
    sb_bridge_sessions *ss = ud;
    char key[65];
    store_key(id, key);
    sb_store_rec rec;
    if (sb_store_get(ss->st, NS, key, &rec) != 0) return -1;
    cJSON *o = cJSON_ParseWithLength((const char *)rec.value, rec.len);
    sb_store_rec_free(&rec);
    int rc = -1;
    if (cJSON_IsObject(o) && !cJSON_GetObjectItemCaseSensitive(o, "ended") &&
        cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "o"))) {
        memset(out, 0, sizeof *out);
        sb_strlcpy(out->id, id, sizeof out->id);
        copy_str(o, "o", out->owner, sizeof out->owner);
        copy_str(o, "v", out->protocol_version, sizeof out->protocol_version);
        copy_str(o, "n", out->client_name, sizeof out->client_name);
        copy_str(o, "r", out->region, sizeof out->region);
        out->client_elicitation = get_int(o, "e");
        out->client_sampling = get_int(o, "s");
        out->client_roots = get_int(o, "t");
        out->log_level = get_int(o, "l");
        rc = 0;
    }
    cJSON_Delete(o);
    return rc;
}

static void end(const char *id, void *ud)
{
    sb_bridge_sessions *ss = ud;
    static const char ended[] = "{\"ended\":true}";
    char key[65];
    store_key(id, key);
    sb_store_put(ss->st, NS, key, ended, sizeof ended - 1, expiry(ss), NULL);
}

static int alive(const char *id, void *ud)
{
    sb_bridge_sessions *ss = ud;
    char key[65];
    store_key(id, key);
    sb_store_rec rec;
    if (sb_store_get(ss->st, NS, key, &rec) != 0) return 1; /* unknown there, or store trouble */
    int ended = rec.len >= 8 && memcmp(rec.value, "{\"ended\"", 8) == 0;
    /* in use: keep the shared record from expiring under it (at most one write per idle/2) */
    int64_t now = sb_store_now_ms();
    if (!ended && rec.expires_at_ms && rec.expires_at_ms - now < (int64_t)ss->idle_s * 500)
        sb_store_cas(ss->st, NS, key, rec.version, rec.value, rec.len, expiry(ss), NULL);
    sb_store_rec_free(&rec);
    return !ended;
}

sb_bridge_sessions *sb_bridge_sessions_new(sb_store *st, unsigned idle_s)
{
    if (!st) return NULL;
    sb_bridge_sessions *ss = calloc(1, sizeof *ss);
    if (!ss) return NULL;
    ss->st = st;
    ss->idle_s = idle_s ? idle_s : 3600;
    return ss;
}

void sb_bridge_sessions_attach(sb_bridge_sessions *ss, sb_mcp *m)
{
    if (!ss || !m) return;
    sb_mcp_session_hooks h = {
        .persist = persist, .load = load, .end = end, .alive = alive, .ud = ss};
    sb_mcp_set_session_hooks(m, &h);
}

void sb_bridge_sessions_free(sb_bridge_sessions *ss)
{
    free(ss);
}
