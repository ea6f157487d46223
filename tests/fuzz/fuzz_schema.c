/* Fuzz target: the JSON Schema validator (src/core/sb_json_schema.h). The input is
 * "<schema>\0<instance>" (no NUL: the whole input is both). Both are parsed with cJSON; the schema
 * is checked, the instance validated and defaulted against it. The instance is also validated
 * (and defaulted) against every embedded tool contract's inputSchema and outputSchema. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/sb_embed.h"
#include "core/sb_json_schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_CONTRACTS 64
static cJSON *g_schemas[2 * MAX_CONTRACTS];
static size_t g_nschemas;
static cJSON *g_contracts[MAX_CONTRACTS];
static size_t g_ncontracts;
static int g_loaded;

static void unload(void)
{
    for (size_t i = 0; i < g_ncontracts; i++) cJSON_Delete(g_contracts[i]);
}

static void load_contracts(void)
{
    g_loaded = 1;
    for (size_t i = 0; i < sb_embedded_count && g_ncontracts < MAX_CONTRACTS; i++) {
        const sb_embedded_file *f = &sb_embedded_files[i];
        if (strncmp(f->name, "tools/", 6) != 0) continue;
        size_t n = strlen(f->name);
        if (n < 5 || strcmp(f->name + n - 5, ".json") != 0) continue;
        cJSON *c = cJSON_ParseWithLength(f->data, f->len);
        if (!c) abort(); /* the build embeds only valid JSON */
        g_contracts[g_ncontracts++] = c;
        cJSON *in = cJSON_GetObjectItemCaseSensitive(c, "inputSchema");
        cJSON *out = cJSON_GetObjectItemCaseSensitive(c, "outputSchema");
        if (in) g_schemas[g_nschemas++] = in;
        if (out) g_schemas[g_nschemas++] = out;
    }
    atexit(unload);
}

static void exercise(const cJSON *schema, const cJSON *instance)
{
    char err[512];
    (void)sb_schema_validate(schema, NULL, instance, "arguments", err, sizeof err);
    (void)sb_schema_validate(schema, schema, instance, NULL, err, 17); /* short: truncation */
    cJSON *copy = cJSON_Duplicate(instance, 1);
    if (copy) {
        (void)sb_schema_apply_defaults(schema, NULL, copy);
        (void)sb_schema_validate(schema, NULL, copy, "arguments", err, sizeof err);
        cJSON_Delete(copy);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_loaded) load_contracts();
    const char *s = (const char *)data;
    const char *nul = memchr(s, '\0', size);
    size_t slen = nul ? (size_t)(nul - s) : size;
    const char *inst = nul ? nul + 1 : s;
    size_t ilen = nul ? size - slen - 1 : size;

    cJSON *schema = cJSON_ParseWithLength(s, slen);
    cJSON *instance = cJSON_ParseWithLength(inst, ilen);
    char err[512];
    if (schema) {
        (void)sb_schema_check(schema, err, sizeof err);
        (void)sb_schema_check(schema, err, 9);
        if (instance) exercise(schema, instance);
        else {
            /* the schema against itself, and against an empty object */
            exercise(schema, schema);
            cJSON *empty = cJSON_CreateObject();
            exercise(schema, empty);
            cJSON_Delete(empty);
        }
    }
    const cJSON *target = instance ? instance : schema;
    if (target)
        for (size_t i = 0; i < g_nschemas; i++) exercise(g_schemas[i], target);
    cJSON_Delete(schema);
    cJSON_Delete(instance);
    return 0;
}
