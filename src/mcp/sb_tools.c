#include "mcp/sb_tools.h"

#include "core/sb_embed.h"
#include "core/sb_json_schema.h"
#include "core/sb_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sb_registry {
    sb_tool **tools;
    size_t n, cap;
    size_t listing_bytes; /* sum of the tools' listing_len */
};

sb_registry *sb_registry_new(void)
{
    return calloc(1, sizeof(sb_registry));
}

void sb_registry_free(sb_registry *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) {
        cJSON_Delete(r->tools[i]->contract);
        free(r->tools[i]->listing);
        free(r->tools[i]);
    }
    free(r->tools);
    free(r);
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

static int check_object_schema(const cJSON *s, const char *what, const char *tool, char *err,
                               size_t errlen)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(s, "type");
    if (!cJSON_IsObject(s) || !cJSON_IsString(type) || strcmp(type->valuestring, "object") != 0) {
        snprintf(err, errlen, "tool %s: %s must be a schema with \"type\":\"object\"", tool, what);
        return -1;
    }
    char sub[400];
    if (sb_schema_check(s, sub, sizeof sub) != 0) {
        snprintf(err, errlen, "tool %s: %s: %s", tool, what, sub);
        return -1;
    }
    return 0;
}

int sb_registry_add(sb_registry *r, cJSON *contract, sb_tool_fn fn, void *ud, char *err,
                    size_t errlen)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(contract, "name");
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(contract, "description");
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(contract, "inputSchema");
    const cJSON *outs = cJSON_GetObjectItemCaseSensitive(contract, "outputSchema");
    const cJSON *ann = cJSON_GetObjectItemCaseSensitive(contract, "annotations");
    if (!cJSON_IsString(name) || !valid_name(name->valuestring)) {
        snprintf(err, errlen, "tool contract: name must match [A-Za-z0-9_.-]{1,64}");
        return -1;
    }
    const char *nm = name->valuestring;
    if (sb_registry_find(r, nm)) {
        snprintf(err, errlen, "tool %s: defined twice", nm);
        return -1;
    }
    if (!cJSON_IsString(desc) || strlen(desc->valuestring) < 10) {
        snprintf(err, errlen, "tool %s: description missing or too short", nm);
        return -1;
    }
    if (check_object_schema(in, "inputSchema", nm, err, errlen) < 0) return -1;
    if (outs && check_object_schema(outs, "outputSchema", nm, err, errlen) < 0) return -1;
    if (ann && !cJSON_IsObject(ann)) {
        snprintf(err, errlen, "tool %s: annotations must be an object", nm);
        return -1;
    }
    sb_tool *t = calloc(1, sizeof *t);
    if (!t) return -1;
    if (r->n == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 32;
        sb_tool **nt = realloc(r->tools, nc * sizeof *nt);
        if (!nt) {
            free(t);
            return -1;
        }
        r->tools = nt;
        r->cap = nc;
    }
    t->listing = cJSON_PrintUnformatted(contract);
    if (!t->listing) {
        free(t);
        return -1;
    }
    t->listing_len = strlen(t->listing);
    r->listing_bytes += t->listing_len;
    sb_strlcpy(t->name, nm, sizeof t->name);
    t->contract = contract;
    t->input_schema = in;
    t->output_schema = outs;
    t->read_only = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ann, "readOnlyHint"));
    t->fn = fn;
    t->ud = ud;
    t->index = r->n;
    r->tools[r->n++] = t;
    return 0;
}

int sb_registry_add_embedded(sb_registry *r, const char *name, sb_tool_fn fn, void *ud, char *err,
                             size_t errlen)
{
    const sb_embedded_file *f = sb_embed_find(name);
    if (!f) {
        snprintf(err, errlen, "%s: not embedded", name);
        return -1;
    }
    cJSON *c = cJSON_ParseWithLength(f->data, f->len);
    if (!c) {
        snprintf(err, errlen, "%s: invalid JSON", name);
        return -1;
    }
    if (sb_registry_add(r, c, fn, ud, err, errlen) < 0) {
        cJSON_Delete(c);
        return -1;
    }
    return 0;
}

const sb_tool *sb_registry_find(const sb_registry *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->tools[i]->name, name) == 0) return r->tools[i];
    return NULL;
}

size_t sb_registry_count(const sb_registry *r)
{
    return r->n;
}

size_t sb_registry_listing_bytes(const sb_registry *r)
{
    return r->listing_bytes;
}

const sb_tool *sb_registry_at(const sb_registry *r, size_t i)
{
    return i < r->n ? r->tools[i] : NULL;
}

/* Cursor: base64url("sbc1:" offset ":" check) where check is a small keyed digest of the offset,
 * so only cursors minted here decode. */
static unsigned check_of(size_t off)
{
    unsigned h = 0x9e3779b9u;
    for (int i = 0; i < 8; i++) h = (h ^ (unsigned)((off >> (8 * i)) & 0xff)) * 16777619u;
    return h & 0xffffff;
}

void sb_cursor_encode(size_t offset, char *out, size_t cap)
{
    char raw[64];
    int n = snprintf(raw, sizeof raw, "sbc1:%zu:%06x", offset, check_of(offset));
    if (cap < sb_base64url_len((size_t)n) + 1) {
        if (cap) out[0] = '\0';
        return;
    }
    sb_base64url_encode((const unsigned char *)raw, (size_t)n, out);
}

int sb_cursor_decode(const char *cursor, size_t *offset)
{
    size_t n = strlen(cursor);
    if (n == 0 || n > 60) return -1;
    unsigned char raw[64];
    long m = sb_base64_decode(cursor, n, raw, sizeof raw - 1);
    if (m < 0) return -1;
    raw[m] = '\0';
    const char *s = (const char *)raw;
    if (strncmp(s, "sbc1:", 5) != 0) return -1;
    const char *colon = strchr(s + 5, ':');
    if (!colon) return -1;
    char num[24];
    size_t nl = (size_t)(colon - (s + 5));
    if (nl == 0 || nl >= sizeof num) return -1;
    memcpy(num, s + 5, nl);
    num[nl] = '\0';
    int64_t off;
    if (sb_parse_i64(num, 0, 1000000000, &off) < 0) return -1;
    char chk[16];
    snprintf(chk, sizeof chk, "%06x", check_of((size_t)off));
    if (strcmp(colon + 1, chk) != 0) return -1;
    *offset = (size_t)off;
    return 0;
}
