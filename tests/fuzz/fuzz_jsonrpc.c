/* Fuzz target: JSON-RPC envelopes (src/mcp/sb_jsonrpc.h). The input is a POST body: parse it,
 * classify batch members, key the id, build the responses the engine would send, free it all.
 * Also: sb_json_print (core/sb_buf) prints every parsed document byte for byte as
 * cJSON_PrintUnformatted does (responses are printed with it), and sb_json_parse (core/sb_json)
 * accepts exactly what cJSON_ParseWithLength accepts, building the same tree (also when it
 * allocates the tree from an arena, sb_json_parse_in) and ending where cJSON ends
 * (sb_json_parse_end), whose every string said to need no escaping (sb_json_clean) needs none,
 * has the length said, and is written by sb_jw_vjstr as sb_jw_vstr writes it. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sb_arena.h"
#include "core/sb_buf.h"
#include "core/sb_json.h"
#include "core/sb_jw.h"
#include "mcp/sb_jsonrpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void respond(const sb_rpc_msg *m, int rc, const char *err)
{
    char key[160];
    if (m->id) (void)sb_rpc_id_key(m->id, key, sizeof key);
    if (rc < 0) {
        free(sb_rpc_error(m->id, rc, err, NULL));
        return;
    }
    switch (m->kind) {
    case SB_RPC_REQUEST: {
        cJSON *r = cJSON_CreateObject();
        if (m->params) cJSON_AddItemToObject(r, "echo", cJSON_Duplicate(m->params, 1));
        free(sb_rpc_result(m->id, r));
        free(sb_rpc_error(m->id, SB_RPC_METHOD_NOT_FOUND, m->method ? m->method : "?",
                          m->params ? cJSON_Duplicate(m->params, 1) : NULL));
        break;
    }
    case SB_RPC_NOTIFICATION:
        free(sb_rpc_request(NULL, m->method ? m->method : "x",
                            m->params ? cJSON_Duplicate(m->params, 1) : NULL));
        break;
    case SB_RPC_RESPONSE:
        free(sb_rpc_request(m->id, "ping", NULL));
        break;
    }
}

/* Every string of an arena tree that sb_json_clean calls clean is, and writes the same. */
static void check_clean(const cJSON *v)
{
    for (; v; v = v->next) {
        size_t n;
        if (sb_json_clean(v, &n)) {
            const unsigned char *u = (const unsigned char *)v->valuestring;
            if (strlen(v->valuestring) != n) {
                fprintf(stderr, "clean string of length %zu said to be %zu\n",
                        strlen(v->valuestring), n);
                abort();
            }
            for (size_t i = 0; i < n; i++)
                if (u[i] < 0x20 || u[i] == '"' || u[i] == '\\') {
                    fprintf(stderr, "string said clean holds byte 0x%02x at %zu\n", u[i], i);
                    abort();
                }
        }
        if (cJSON_IsString(v)) {
            sb_buf a, b;
            sb_buf_init(&a, 1 << 24);
            sb_buf_init(&b, 1 << 24);
            sb_jw wa, wb;
            sb_jw_init(&wa, &a);
            sb_jw_init(&wb, &b);
            sb_jw_vjstr(&wa, v);
            sb_jw_vstr(&wb, v->valuestring);
            if (sb_jw_finish(&wa) != sb_jw_finish(&wb) || a.len != b.len ||
                (a.len && memcmp(a.data, b.data, a.len) != 0)) {
                fprintf(stderr, "sb_jw_vjstr differs from sb_jw_vstr:\n%.*s\n%.*s\n", (int)a.len,
                        a.data ? a.data : "", (int)b.len, b.data ? b.data : "");
                abort();
            }
            sb_buf_free(&a);
            sb_buf_free(&b);
        }
        check_clean(v->child);
    }
}

static void same_parse(const uint8_t *data, size_t size)
{
    cJSON *a = cJSON_ParseWithLength((const char *)data, size);
    cJSON *b = sb_json_parse((const char *)data, size);
    char *pa = a ? cJSON_PrintUnformatted(a) : NULL, *pb = b ? cJSON_PrintUnformatted(b) : NULL;
    if ((a == NULL) != (b == NULL) || (pa == NULL) != (pb == NULL) ||
        (pa && strcmp(pa, pb) != 0)) {
        fprintf(stderr, "sb_json_parse differs from cJSON_ParseWithLength:\n%s\n%s\n",
                pa ? pa : (a ? "(unprintable)" : "(refused)"),
                pb ? pb : (b ? "(unprintable)" : "(refused)"));
        abort();
    }
    /* the arena-allocated form builds the same tree too (freed with its arena) */
    sb_arena *ar = sb_arena_new(0);
    if (!ar) abort();
    cJSON *c = sb_json_parse_in((const char *)data, size, ar);
    char *pc = c ? cJSON_PrintUnformatted(c) : NULL;
    if ((c == NULL) != (b == NULL) || (pc == NULL) != (pb == NULL) || (pc && strcmp(pc, pb) != 0)) {
        fprintf(stderr, "sb_json_parse_in differs from sb_json_parse:\n%s\n%s\n",
                pb ? pb : (b ? "(unprintable)" : "(refused)"),
                pc ? pc : (c ? "(unprintable)" : "(refused)"));
        abort();
    }
    check_clean(c);
    free(pc);
    sb_arena_free(ar);
    /* and where the value ends, as cJSON_ParseWithLengthOpts reports it (sb_rpc_parse refuses
     * what follows it) */
    const char *ea = NULL, *eb = NULL;
    cJSON *d = cJSON_ParseWithLengthOpts((const char *)data, size, &ea, 0);
    cJSON *e = sb_json_parse_end((const char *)data, size, &eb);
    if ((d == NULL) != (e == NULL) || (d && ea != eb)) {
        fprintf(stderr, "sb_json_parse_end ends at %td, cJSON at %td\n",
                eb ? eb - (const char *)data : (ptrdiff_t)-1,
                ea ? ea - (const char *)data : (ptrdiff_t)-1);
        abort();
    }
    cJSON_Delete(d);
    cJSON_Delete(e);
    free(pa);
    free(pb);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static void same_print(const uint8_t *data, size_t size)
{
    cJSON *doc = cJSON_ParseWithLength((const char *)data, size);
    if (!doc) return;
    char *a = cJSON_PrintUnformatted(doc), *b = sb_json_print(doc);
    if ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0)) {
        fprintf(stderr, "sb_json_print differs from cJSON_PrintUnformatted:\n%s\n%s\n",
                a ? a : "(null)", b ? b : "(null)");
        abort();
    }
    if (a) {
        /* the printed text escaped into a string, as a result's text block is: the same as
         * cJSON escapes it, through SSSE3's shuffles and through the step per escape */
        cJSON *str = cJSON_CreateString(a);
        char *want = str ? cJSON_PrintUnformatted(str) : NULL;
        for (int shuffle = 1; want && shuffle >= 0; shuffle--) {
            sb_buf_escape_shuffle(shuffle);
            sb_buf t;
            sb_buf_init(&t, (size_t)1 << 30);
            if (sb_buf_json_string(&t, a) != 0 || strcmp(t.data, want) != 0) {
                fprintf(stderr, "text block escape (shuffle %d) differs from cJSON's:\n%s\n%s\n",
                        shuffle, want, t.data ? t.data : "(null)");
                abort();
            }
            sb_buf_free(&t);
        }
        sb_buf_escape_shuffle(1);
        free(want);
        cJSON_Delete(str);
    }
    free(a);
    free(b);
    cJSON_Delete(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    same_print(data, size);
    same_parse(data, size);
    sb_rpc_msg m;
    char err[256];
    int rc = sb_rpc_parse((const char *)data, size, &m, err, sizeof err);
    if (rc == SB_RPC_BATCH) {
        /* the engine refuses batches, but classify each member as a batch-capable peer would */
        const cJSON *it;
        int i = 0;
        cJSON_ArrayForEach(it, m.doc)
        {
            if (i++ >= 64) break;
            sb_rpc_msg sub;
            char suberr[256];
            int src = sb_rpc_classify(cJSON_Duplicate(it, 1), &sub, suberr, sizeof suberr);
            respond(&sub, src == SB_RPC_BATCH ? SB_RPC_INVALID_REQUEST : src, suberr);
            sb_rpc_msg_free(&sub);
        }
        free(sb_rpc_error(NULL, SB_RPC_INVALID_REQUEST, "batch", NULL));
    } else {
        respond(&m, rc, err);
    }
    sb_rpc_msg_free(&m);
    return 0;
}
