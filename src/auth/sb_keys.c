#include "auth/sb_keys.h"

#include "core/sb_buf.h"
#include "core/sb_embed.h"
#include "core/sb_log.h"
#include "core/sb_util.h"
#include "store/sb_seal.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_KEY "sbkey"        /* id -> record (with the sealed credential) */
#define NS_HASH "sbkey_hash"  /* sha256(key) -> id */
#define NS_INDEX "sbkey_index"
#define CACHE 256

typedef struct slot {
    char hash[65];
    uint64_t loaded_ms;
    int used;
    sb_key_info info;
    size_t cred_len;
    char cred[SB_CRED_MAX + 1];
} slot;

struct sb_keys {
    sb_store *st;
    unsigned char secret[32];
    uint8_t seal_key[SB_SEAL_KEY_LEN];
    pthread_mutex_t mu;
    slot cache[CACHE];
};

static const char B62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static int base62(char *out, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char r[64];
        if (sb_random_bytes(r, sizeof r) != 0) return -1;
        for (size_t j = 0; j < sizeof r && i < n; j++)
            if (r[j] < 248) out[i++] = B62[r[j] % 62]; /* no modulo bias */
    }
    out[n] = 0;
    return 0;
}

int sb_keys_is_key(const char *s, size_t n)
{
    if (!s || n != SB_KEY_LEN || strncmp(s, SB_KEY_PREFIX, 4) != 0) return 0;
    for (size_t i = 4; i < n; i++)
        if (!strchr(B62, s[i]) || !s[i]) return 0;
    return 1;
}

sb_keys *sb_keys_new(sb_store *st, const unsigned char *secret)
{
    if (!st || !secret) return NULL;
    sb_keys *k = calloc(1, sizeof *k);
    if (!k) return NULL;
    k->st = st;
    memcpy(k->secret, secret, 32);
    sb_seal_derive_key(k->secret, 32, k->seal_key);
    pthread_mutex_init(&k->mu, NULL);
    return k;
}

void sb_keys_free(sb_keys *k)
{
    if (!k) return;
    explicit_bzero(k->cache, sizeof k->cache);
    explicit_bzero(k->secret, sizeof k->secret);
    explicit_bzero(k->seal_key, sizeof k->seal_key);
    pthread_mutex_destroy(&k->mu);
    free(k);
}

/* ---- records --------------------------------------------------------------------------------- */

cJSON *sb_key_info_json(const sb_key_info *i)
{
    cJSON *o = cJSON_CreateObject();
    char t[40];
    cJSON_AddStringToObject(o, "id", i->id);
    cJSON_AddStringToObject(o, "name", i->name);
    cJSON_AddStringToObject(o, "provider", i->provider);
    cJSON_AddStringToObject(o, "region", i->region);
    if (i->instance[0]) cJSON_AddStringToObject(o, "instance", i->instance);
    cJSON_AddStringToObject(o, "scope", i->write ? "write" : "read");
    cJSON *tools = cJSON_AddArrayToObject(o, "tools");
    char buf[sizeof i->tools];
    sb_strlcpy(buf, i->tools, sizeof buf);
    for (char *p = buf, *e; p && *p; p = e ? e + 1 : NULL) {
        e = strchr(p, ',');
        if (e) *e = 0;
        if (*p) cJSON_AddItemToArray(tools, cJSON_CreateString(p));
    }
    if (i->expires_ms) {
        sb_rfc3339((uint64_t)i->expires_ms, t, sizeof t);
        cJSON_AddStringToObject(o, "expires_at", t);
    } else {
        cJSON_AddNullToObject(o, "expires_at");
    }
    cJSON_AddStringToObject(o, "created_by", i->created_by);
    sb_rfc3339((uint64_t)i->created_ms, t, sizeof t);
    cJSON_AddStringToObject(o, "created_at", t);
    if (i->last_used_ms) {
        sb_rfc3339((uint64_t)i->last_used_ms, t, sizeof t);
        cJSON_AddStringToObject(o, "last_used_at", t);
    } else {
        cJSON_AddNullToObject(o, "last_used_at");
    }
    const char *status = i->revoked                                                 ? "revoked"
                         : i->expires_ms && (int64_t)sb_wall_ms() >= i->expires_ms ? "expired"
                         : i->replaced_by[0]                                        ? "rotating"
                                                                                    : "active";
    cJSON_AddStringToObject(o, "status", status);
    if (i->revoked) {
        sb_rfc3339((uint64_t)i->revoked_ms, t, sizeof t);
        cJSON_AddStringToObject(o, "revoked_at", t);
    }
    if (i->replaced_by[0]) cJSON_AddStringToObject(o, "replaced_by", i->replaced_by);
    return o;
}

static const char *js(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static int64_t jnum64(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

static void rec_to_info(const cJSON *r, sb_key_info *i)
{
    memset(i, 0, sizeof *i);
    sb_strlcpy(i->id, js(r, "id"), sizeof i->id);
    sb_strlcpy(i->name, js(r, "name"), sizeof i->name);
    sb_strlcpy(i->provider, js(r, "provider"), sizeof i->provider);
    sb_strlcpy(i->region, js(r, "region"), sizeof i->region);
    sb_strlcpy(i->instance, js(r, "instance"), sizeof i->instance);
    i->write = !strcmp(js(r, "scope"), "write");
    sb_strlcpy(i->tools, js(r, "tools"), sizeof i->tools);
    i->expires_ms = jnum64(r, "expires_ms");
    sb_strlcpy(i->created_by, js(r, "created_by"), sizeof i->created_by);
    i->created_ms = jnum64(r, "created_ms");
    i->last_used_ms = jnum64(r, "last_used_ms");
    i->revoked = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "revoked"));
    i->revoked_ms = jnum64(r, "revoked_ms");
    sb_strlcpy(i->replaced_by, js(r, "replaced_by"), sizeof i->replaced_by);
}

static cJSON *info_to_rec(const sb_key_info *i)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "id", i->id);
    cJSON_AddStringToObject(r, "name", i->name);
    cJSON_AddStringToObject(r, "provider", i->provider);
    cJSON_AddStringToObject(r, "region", i->region);
    cJSON_AddStringToObject(r, "instance", i->instance);
    cJSON_AddStringToObject(r, "scope", i->write ? "write" : "read");
    cJSON_AddStringToObject(r, "tools", i->tools);
    cJSON_AddNumberToObject(r, "expires_ms", (double)i->expires_ms);
    cJSON_AddStringToObject(r, "created_by", i->created_by);
    cJSON_AddNumberToObject(r, "created_ms", (double)i->created_ms);
    cJSON_AddNumberToObject(r, "last_used_ms", (double)i->last_used_ms);
    cJSON_AddBoolToObject(r, "revoked", i->revoked);
    cJSON_AddNumberToObject(r, "revoked_ms", (double)i->revoked_ms);
    cJSON_AddStringToObject(r, "replaced_by", i->replaced_by);
    return r;
}

static cJSON *get_rec(sb_keys *k, const char *id, int64_t *ver, int *rc_out)
{
    sb_store_rec rec = {0};
    int rc = sb_store_get(k->st, NS_KEY, id, &rec);
    if (rc_out) *rc_out = rc;
    if (rc != SB_STORE_OK) return NULL;
    cJSON *j = cJSON_ParseWithLength((const char *)rec.value, rec.len);
    if (ver) *ver = rec.version;
    sb_store_rec_free(&rec);
    return j;
}

static int put_rec(sb_keys *k, const char *id, const cJSON *r, int64_t expect_ver)
{
    char *s = cJSON_PrintUnformatted(r);
    if (!s) return -1;
    int rc = expect_ver >= 0 ? sb_store_cas(k->st, NS_KEY, id, expect_ver, s, strlen(s), 0, NULL)
                             : sb_store_put(k->st, NS_KEY, id, s, strlen(s), 0, NULL);
    free(s);
    return rc;
}

/* Add id to the index (compare-and-swap loop: concurrent creators on replicas). */
static int index_add(sb_keys *k, const char *id)
{
    for (int attempt = 0; attempt < 20; attempt++) {
        sb_store_rec rec = {0};
        int64_t ver = 0;
        cJSON *ix = NULL;
        int rc = sb_store_get(k->st, NS_INDEX, "all", &rec);
        if (rc == SB_STORE_OK) {
            ix = cJSON_ParseWithLength((const char *)rec.value, rec.len);
            ver = rec.version;
            sb_store_rec_free(&rec);
        } else if (rc != SB_STORE_NOTFOUND) {
            return -1;
        }
        if (!cJSON_IsArray(ix)) {
            cJSON_Delete(ix);
            ix = cJSON_CreateArray();
        }
        if (cJSON_GetArraySize(ix) >= SB_KEYS_MAX) {
            cJSON_Delete(ix);
            return -1;
        }
        cJSON_AddItemToArray(ix, cJSON_CreateString(id));
        char *s = cJSON_PrintUnformatted(ix);
        cJSON_Delete(ix);
        if (!s) return -1;
        rc = sb_store_cas(k->st, NS_INDEX, "all", ver, s, strlen(s), 0, NULL);
        free(s);
        if (rc == SB_STORE_OK) return 0;
        if (rc != SB_STORE_CONFLICT && rc != SB_STORE_NOTFOUND) return -1;
    }
    return -1;
}

/* ---- operations ------------------------------------------------------------------------------ */

static int tool_known(const char *name, size_t n, const char *const *known)
{
    for (const char *const *t = known; t && *t; t++)
        if (strlen(*t) == n && strncmp(*t, name, n) == 0) return 1;
    return 0;
}

int sb_keys_check(const sb_key_info *in, const char *const *known_tools, char *err, size_t errlen)
{
    if (!in->name[0] || !sb_utf8_valid(in->name, strlen(in->name))) {
        snprintf(err, errlen, "--name is required (a label for this key, e.g. \"cursor-laptop\")");
        return -1;
    }
    for (const char *p = in->name; *p; p++)
        if ((unsigned char)*p < 0x20) {
            snprintf(err, errlen, "the name has control characters");
            return -1;
        }
    if (strcmp(in->provider, "boldsign") && strcmp(in->provider, "dropboxsign") &&
        strcmp(in->provider, "iinkedsign")) {
        snprintf(err, errlen, "provider must be boldsign, dropboxsign or iinkedsign");
        return -1;
    }
    const char *p = in->tools;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || (known_tools && !tool_known(p, n, known_tools))) {
            snprintf(err, errlen, "unknown tool in --tools: \"%.*s\"", (int)(n > 64 ? 64 : n), p);
            return -1;
        }
        p += n + (e ? 1 : 0);
        if (e && !*p) {
            snprintf(err, errlen, "--tools ends with a comma");
            return -1;
        }
    }
    if (in->expires_ms && in->expires_ms <= (int64_t)sb_wall_ms()) {
        snprintf(err, errlen, "the expiry is in the past");
        return -1;
    }
    return 0;
}

static int make_key(sb_keys *k, sb_key_info *info, const char *cred, size_t len, char *key_out,
                    char *err, size_t errlen)
{
    char idr[13], kr[33];
    if (base62(idr, 12) || base62(kr, 32)) {
        snprintf(err, errlen, "out of randomness");
        return -1;
    }
    snprintf(info->id, sizeof info->id, "k_%s", idr);
    snprintf(key_out, SB_KEY_LEN + 1, "%s%s", SB_KEY_PREFIX, kr);
    explicit_bzero(kr, sizeof kr);
    info->created_ms = (int64_t)sb_wall_ms();
    char *sealed = sb_seal_b64(k->seal_key, NS_KEY, info->id, cred, len);
    if (!sealed) {
        snprintf(err, errlen, "cannot seal the credential");
        return -1;
    }
    char h[65];
    sb_sha256_hex(key_out, strlen(key_out), h);
    cJSON *r = info_to_rec(info);
    cJSON_AddStringToObject(r, "cred", sealed);
    free(sealed);
    int rc = put_rec(k, info->id, r, -1);
    cJSON_Delete(r);
    cJSON *hr = cJSON_CreateObject();
    cJSON_AddStringToObject(hr, "id", info->id);
    char *hs = cJSON_PrintUnformatted(hr);
    cJSON_Delete(hr);
    if (rc == 0 && hs) rc = sb_store_put(k->st, NS_HASH, h, hs, strlen(hs), 0, NULL);
    free(hs);
    if (rc == 0) rc = index_add(k, info->id);
    if (rc != 0) {
        snprintf(err, errlen, "the store did not accept the key");
        explicit_bzero(key_out, SB_KEY_LEN + 1);
        return -1;
    }
    return 0;
}

int sb_keys_create(sb_keys *k, const sb_key_info *in, const char *cred, size_t len,
                   char *key_out, sb_key_info *out, char *err, size_t errlen)
{
    if (!k || !in || !cred || !len || len > SB_CRED_MAX || !key_out) {
        snprintf(err, errlen, "bad arguments");
        return -1;
    }
    sb_key_info info = *in;
    info.id[0] = 0;
    info.last_used_ms = 0;
    info.revoked = 0;
    info.revoked_ms = 0;
    info.replaced_by[0] = 0;
    if (make_key(k, &info, cred, len, key_out, err, errlen) != 0) return -1;
    if (out) *out = info;
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "key_id", info.id);
    cJSON_AddStringToObject(f, "name", info.name);
    cJSON_AddStringToObject(f, "provider", info.provider);
    sb_log_obj(SB_LOG_INFO, "key_created", f);
    return 0;
}

int sb_keys_list(sb_keys *k, sb_key_info **arr, size_t *n)
{
    *arr = NULL;
    *n = 0;
    sb_store_rec rec = {0};
    int rc = sb_store_get(k->st, NS_INDEX, "all", &rec);
    if (rc == SB_STORE_NOTFOUND) return 0;
    if (rc != SB_STORE_OK) return -1;
    cJSON *ix = cJSON_ParseWithLength((const char *)rec.value, rec.len);
    sb_store_rec_free(&rec);
    int m = cJSON_GetArraySize(ix);
    sb_key_info *a = m > 0 ? calloc((size_t)m, sizeof *a) : NULL;
    if (m > 0 && !a) {
        cJSON_Delete(ix);
        return -1;
    }
    for (int i = m - 1; i >= 0; i--) {
        const cJSON *id = cJSON_GetArrayItem(ix, i);
        if (!cJSON_IsString(id)) continue;
        cJSON *r = get_rec(k, id->valuestring, NULL, NULL);
        if (!r) continue;
        rec_to_info(r, &a[*n]);
        (*n)++;
        cJSON_Delete(r);
    }
    cJSON_Delete(ix);
    *arr = a;
    return 0;
}

int sb_keys_get(sb_keys *k, const char *id, sb_key_info *out)
{
    if (!id || !sb_store_valid_key(id)) return SB_STORE_NOTFOUND;
    int rc;
    cJSON *r = get_rec(k, id, NULL, &rc);
    if (!r) return rc == SB_STORE_NOTFOUND ? SB_STORE_NOTFOUND : -1;
    rec_to_info(r, out);
    cJSON_Delete(r);
    return 0;
}

static void cache_clear(sb_keys *k)
{
    pthread_mutex_lock(&k->mu);
    explicit_bzero(k->cache, sizeof k->cache);
    pthread_mutex_unlock(&k->mu);
}

int sb_keys_revoke(sb_keys *k, const char *id)
{
    if (!id || !sb_store_valid_key(id)) return SB_STORE_NOTFOUND;
    for (int attempt = 0; attempt < 10; attempt++) {
        int64_t ver;
        int rc;
        cJSON *r = get_rec(k, id, &ver, &rc);
        if (!r) return rc == SB_STORE_NOTFOUND ? SB_STORE_NOTFOUND : -1;
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "revoked"))) {
            cJSON_Delete(r);
            return 0;
        }
        cJSON_ReplaceItemInObjectCaseSensitive(r, "revoked", cJSON_CreateBool(1));
        cJSON_ReplaceItemInObjectCaseSensitive(r, "revoked_ms", cJSON_CreateNumber((double)sb_wall_ms()));
        rc = put_rec(k, id, r, ver);
        cJSON_Delete(r);
        if (rc == SB_STORE_OK) {
            cache_clear(k);
            cJSON *f = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "key_id", id);
            sb_log_obj(SB_LOG_INFO, "key_revoked", f);
            return 0;
        }
        if (rc != SB_STORE_CONFLICT) return -1;
    }
    return -1;
}

int sb_keys_rotate(sb_keys *k, const char *id, int64_t overlap_ms, char *key_out,
                   sb_key_info *out, char *err, size_t errlen)
{
    if (!id || !sb_store_valid_key(id)) return SB_STORE_NOTFOUND;
    int64_t ver;
    int rc;
    cJSON *r = get_rec(k, id, &ver, &rc);
    if (!r) {
        snprintf(err, errlen, "no key %s", id);
        return rc == SB_STORE_NOTFOUND ? SB_STORE_NOTFOUND : -1;
    }
    sb_key_info old;
    rec_to_info(r, &old);
    int64_t now = (int64_t)sb_wall_ms();
    if (old.revoked || old.replaced_by[0] || (old.expires_ms && old.expires_ms <= now)) {
        snprintf(err, errlen, "key %s is %s: create a new one instead", id,
                 old.revoked ? "revoked" : old.replaced_by[0] ? "already rotated" : "expired");
        cJSON_Delete(r);
        return -1;
    }
    char cred[SB_CRED_MAX + 1];
    long n = sb_seal_open_b64(k->seal_key, NS_KEY, id, js(r, "cred"), cred, sizeof cred);
    if (n <= 0) {
        snprintf(err, errlen, "the key's credential cannot be opened (server secret changed?)");
        cJSON_Delete(r);
        return -1;
    }
    sb_key_info nk = old;
    nk.last_used_ms = 0;
    nk.replaced_by[0] = 0;
    rc = make_key(k, &nk, cred, (size_t)n, key_out, err, errlen);
    explicit_bzero(cred, sizeof cred);
    if (rc != 0) {
        cJSON_Delete(r);
        return -1;
    }
    int64_t until = now + (overlap_ms > 0 ? overlap_ms : 0);
    if (!old.expires_ms || until < old.expires_ms) old.expires_ms = until;
    sb_strlcpy(old.replaced_by, nk.id, sizeof old.replaced_by);
    cJSON *nr = info_to_rec(&old);
    cJSON_AddStringToObject(nr, "cred", js(r, "cred"));
    rc = put_rec(k, id, nr, ver);
    cJSON_Delete(nr);
    cJSON_Delete(r);
    if (rc != SB_STORE_OK) {
        /* the old key changed meanwhile (revoked?): withdraw the new one */
        sb_keys_revoke(k, nk.id);
        explicit_bzero(key_out, SB_KEY_LEN + 1);
        snprintf(err, errlen, "key %s changed during the rotation; try again", id);
        return -1;
    }
    cache_clear(k);
    if (out) *out = nk;
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "key_id", id);
    cJSON_AddStringToObject(f, "replaced_by", nk.id);
    cJSON_AddNumberToObject(f, "overlap_s", (double)(overlap_ms / 1000));
    sb_log_obj(SB_LOG_INFO, "key_rotated", f);
    return 0;
}

/* ---- authentication -------------------------------------------------------------------------- */

static int load(sb_keys *k, const char *hash, slot *s, char *err, size_t errlen)
{
    sb_store_rec rec = {0};
    int rc = sb_store_get(k->st, NS_HASH, hash, &rec);
    if (rc == SB_STORE_NOTFOUND) {
        snprintf(err, errlen, "unknown signbridge key");
        return -1;
    }
    if (rc != SB_STORE_OK) {
        snprintf(err, errlen, "the key store is not answering");
        return -2;
    }
    cJSON *h = cJSON_ParseWithLength((const char *)rec.value, rec.len);
    sb_store_rec_free(&rec);
    char id[SB_KEY_ID_LEN + 2];
    sb_strlcpy(id, js(h, "id"), sizeof id);
    cJSON_Delete(h);
    cJSON *r = get_rec(k, id, NULL, &rc);
    if (!r) {
        snprintf(err, errlen, rc == SB_STORE_NOTFOUND ? "unknown signbridge key"
                                                      : "the key store is not answering");
        return rc == SB_STORE_NOTFOUND ? -1 : -2;
    }
    memset(s, 0, sizeof *s);
    rec_to_info(r, &s->info);
    long n = sb_seal_open_b64(k->seal_key, NS_KEY, id, js(r, "cred"), s->cred, sizeof s->cred);
    cJSON_Delete(r);
    if (n <= 0) {
        snprintf(err, errlen, "the key's credential cannot be opened");
        return -2;
    }
    s->cred_len = (size_t)n;
    sb_strlcpy(s->hash, hash, sizeof s->hash);
    s->loaded_ms = sb_mono_ms();
    s->used = 1;
    return 0;
}

static void touch(sb_keys *k, const sb_key_info *i)
{
    int64_t now = (int64_t)sb_wall_ms();
    if (now - i->last_used_ms < 60000) return;
    int64_t ver;
    cJSON *r = get_rec(k, i->id, &ver, NULL);
    if (!r) return;
    cJSON_ReplaceItemInObjectCaseSensitive(r, "last_used_ms", cJSON_CreateNumber((double)now));
    put_rec(k, i->id, r, ver); /* a conflict means someone else just wrote: fine */
    cJSON_Delete(r);
    pthread_mutex_lock(&k->mu);
    for (size_t j = 0; j < CACHE; j++)
        if (k->cache[j].used && !strcmp(k->cache[j].info.id, i->id))
            k->cache[j].info.last_used_ms = now;
    pthread_mutex_unlock(&k->mu);
}

int sb_keys_authenticate(sb_keys *k, const char *key, size_t len, sb_principal *p,
                         const char *default_route, char *err, size_t errlen)
{
    if (!sb_keys_is_key(key, len)) {
        snprintf(err, errlen, "malformed signbridge key");
        return -1;
    }
    char h[65];
    sb_sha256_hex(key, len, h);
    unsigned idx = (unsigned)strtoul((char[9]){h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], 0},
                                     NULL, 16) % CACHE;
    slot s;
    int hit = 0;
    pthread_mutex_lock(&k->mu);
    if (k->cache[idx].used && !strcmp(k->cache[idx].hash, h) &&
        sb_mono_ms() - k->cache[idx].loaded_ms < SB_KEYS_CACHE_MS) {
        s = k->cache[idx];
        hit = 1;
    }
    pthread_mutex_unlock(&k->mu);
    if (!hit) {
        int rc = load(k, h, &s, err, errlen);
        if (rc != 0) return rc;
        pthread_mutex_lock(&k->mu);
        k->cache[idx] = s;
        pthread_mutex_unlock(&k->mu);
    }
    int64_t now = (int64_t)sb_wall_ms();
    int rc = 0;
    char t[40];
    if (s.info.revoked) {
        sb_rfc3339((uint64_t)s.info.revoked_ms, t, sizeof t);
        snprintf(err, errlen, "this signbridge key (%s) was revoked at %s", s.info.id, t);
        rc = -1;
    } else if (s.info.expires_ms && now >= s.info.expires_ms) {
        sb_rfc3339((uint64_t)s.info.expires_ms, t, sizeof t);
        if (s.info.replaced_by[0])
            snprintf(err, errlen,
                     "this signbridge key (%s) was rotated and its overlap ended at %s: use its "
                     "replacement (%s)",
                     s.info.id, t, s.info.replaced_by);
        else
            snprintf(err, errlen, "this signbridge key (%s) expired at %s", s.info.id, t);
        rc = -1;
    } else if (strcmp(p->route, default_route ? default_route : "/mcp") == 0) {
        sb_strlcpy(p->provider, s.info.provider, sizeof p->provider);
    } else if (strcmp(p->provider, s.info.provider) != 0) {
        snprintf(err, errlen, "this signbridge key is for %s: use /%s/mcp or /mcp",
                 s.info.provider, s.info.provider);
        rc = -1;
    }
    if (rc == 0 && p->region_pin[0] &&
        strcmp(p->region_pin, s.info.instance[0] ? "private" : s.info.region) != 0) {
        snprintf(err, errlen, "this signbridge key is for the %s region", s.info.region);
        rc = -1;
    }
    if (rc == 0 && s.info.instance[0] && p->instance[0] && strcmp(p->instance, s.info.instance)) {
        snprintf(err, errlen, "this signbridge key is for another instance");
        rc = -1;
    }
    if (rc == 0) {
        sb_cred_kind kind = p->cred.kind;
        memcpy(p->cred.secret, s.cred, s.cred_len);
        p->cred.secret[s.cred_len] = 0;
        p->cred.len = s.cred_len;
        p->cred.kind = kind;
        p->upstream_bearer = 0;
        sb_strlcpy(p->region, s.info.region, sizeof p->region);
        if (s.info.instance[0]) sb_strlcpy(p->instance, s.info.instance, sizeof p->instance);
        sb_strlcpy(p->key_id, s.info.id, sizeof p->key_id);
        sb_strlcpy(p->tools, s.info.tools, sizeof p->tools);
        p->read_only = p->read_only || !s.info.write;
        unsigned char md[32];
        unsigned mdlen = 0;
        char m[64];
        int ml = snprintf(m, sizeof m, "sbkey\n%s", s.info.id);
        HMAC(EVP_sha256(), k->secret, 32, (const unsigned char *)m, (size_t)ml, md, &mdlen);
        sb_hex_encode(md, 32, p->fingerprint);
    }
    sb_key_info info = s.info;
    explicit_bzero(&s, sizeof s);
    if (rc == 0) touch(k, &info);
    return rc;
}

/* ---- time ------------------------------------------------------------------------------------ */

int sb_keys_parse_when(const char *s, int64_t now_ms, int64_t *out_ms, int duration_only)
{
    if (!s || !*s) return -1;
    size_t n = strlen(s);
    char unit = s[n - 1];
    int64_t mult = unit == 'd' ? 86400000LL : unit == 'h' ? 3600000LL
                   : unit == 'm' ? 60000LL : unit == 's' ? 1000LL : 0;
    if (mult && n > 1 && n < 16) {
        char num[16];
        memcpy(num, s, n - 1);
        num[n - 1] = 0;
        int64_t v;
        if (sb_parse_i64(num, 0, 36500LL * 86400, &v) != 0) return -1;
        *out_ms = duration_only ? v * mult : now_ms + v * mult;
        return 0;
    }
    if (duration_only) return -1;
    int64_t t;
    if (sb_parse_rfc3339(s, &t) != 0) return -1;
    *out_ms = t;
    return 0;
}

static const char *tool_names[64];
static char tool_store[64][64];

static void tools_init(void)
{
    size_t n = 0;
    for (size_t i = 0; i < sb_embedded_count && n < 63; i++) {
        const char *f = sb_embedded_files[i].name;
        if (strncmp(f, "tools/", 6) != 0) continue;
        const char *b = f + 6, *dot = strstr(b, ".json");
        if (!dot || (size_t)(dot - b) >= sizeof tool_store[0]) continue;
        memcpy(tool_store[n], b, (size_t)(dot - b));
        tool_store[n][dot - b] = 0;
        tool_names[n] = tool_store[n];
        n++;
    }
    tool_names[n] = NULL;
}

const char *const *sb_keys_known_tools(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, tools_init);
    return tool_names;
}
