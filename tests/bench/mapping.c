/* tests/bench/mapping.c: the CPU of mapping one provider answer, phase by phase -- what a proxied
 * tools/call spends between the upstream bytes and the reply (issue 8, profile): parse the answer
 * into its arena (sb_json_parse_in), run the adapter's mapper, print the structured result once
 * (sb_json_print), escape it into the text block (sb_buf_json_string), release the answer's arena
 * and delete the result. A mapper that writes its result as text (SB_PMAP_JSON: the document
 * tools) has no tree: its writing counts as map, and print and delete are ~0. Run by tests/bench/mapping.sh on a live sandbox answer.
 *
 *   bench_mapping --answer FILE [--provider boldsign] [--tool list_documents]
 *                 [--args '{"page_size":10}'] [--iterations 20000]
 *
 * Prints one line: "bench mapping: <provider> <tool>, <bytes> bytes: parse X us, map X, print X,
 * escape X, release X, delete X, total X us (mean of N after 1,000 warm-up)". */
#include "core/sb_arena.h"
#include "core/sb_buf.h"
#include "core/sb_json.h"
#include "providers/sb_provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef SB_JEMALLOC
/* the allocator and settings signbridge runs with (meson options allocator, malloc_conf) */
const char *malloc_conf = SB_MALLOC_CONF;
#endif

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
    const char *answer = NULL, *provider = "boldsign", *tool = "list_documents";
    const char *args_json = "{\"page_size\":10}";
    long iters = 20000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--answer") == 0) answer = argv[i + 1];
        else if (strcmp(argv[i], "--provider") == 0) provider = argv[i + 1];
        else if (strcmp(argv[i], "--tool") == 0) tool = argv[i + 1];
        else if (strcmp(argv[i], "--args") == 0) args_json = argv[i + 1];
        else if (strcmp(argv[i], "--iterations") == 0) iters = strtol(argv[i + 1], NULL, 10);
        else {
            fprintf(stderr, "bench_mapping: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (!answer || iters < 1) {
        fprintf(stderr, "usage: bench_mapping --answer FILE [--provider P] [--tool T] [--args JSON] "
                        "[--iterations N]\n");
        return 2;
    }
    FILE *f = fopen(answer, "rb");
    static char body[1 << 22];
    size_t n = f ? fread(body, 1, sizeof body - 1, f) : 0;
    if (f) fclose(f);
    if (n == 0) {
        fprintf(stderr, "bench_mapping: cannot read %s\n", answer);
        return 1;
    }
    const sb_adapter *a = sb_adapter_find(provider);
    const sb_ptool *pt = a ? sb_adapter_tool(a, tool) : NULL;
    cJSON *args = cJSON_Parse(args_json);
    if (!pt || !args) {
        fprintf(stderr, "bench_mapping: no tool %s for %s, or bad --args\n", tool, provider);
        return 2;
    }
    sb_pctx ctx = {.provider = provider, .region = "us", .base_url = "https://example.invalid"};
    double t[6] = {0};
    long warm = 1000;
    for (long i = 0; i < warm + iters; i++) {
        double t0 = now_us();
        sb_arena *tree = sb_arena_new(n * 40 + 65536);
        sb_presp pr = {.status = 200, .body = body, .len = n};
        pr.json = sb_json_parse_in(body, n, tree);
        double t1 = now_us();
        sb_pstep st;
        memset(&st, 0, sizeof st);
        st.scratch = cJSON_CreateObject();
        sb_preq_init(&st.next, "GET", 1);
        sb_buf_init(&st.json, (size_t)64 << 20);
        cJSON *out = NULL;
        char err[300] = "";
        int rc = pt->map(&ctx, args, &pr, &st, &out, err, sizeof err);
        double t2 = now_us();
        if (!(rc == SB_PMAP_DONE && out) && rc != SB_PMAP_JSON) {
            fprintf(stderr, "bench_mapping: the mapper answered %d: %s\n", rc, err);
            return 1;
        }
        /* a mapper that writes its result as text (SB_PMAP_JSON) has nothing to print */
        char *txt = rc == SB_PMAP_JSON ? sb_buf_detach(&st.json, NULL) : sb_json_print(out);
        double t3 = now_us();
        sb_buf b;
        sb_buf_init(&b, (size_t)256 << 20);
        if (!txt || sb_buf_json_string(&b, txt) != 0) return 1;
        double t4 = now_us();
        sb_arena_free(tree);
        double t5 = now_us();
        cJSON_Delete(out);
        double t6 = now_us();
        sb_buf_free(&b);
        free(txt);
        sb_preq_free(&st.next);
        cJSON_Delete(st.scratch);
        if (i >= warm) {
            t[0] += t1 - t0, t[1] += t2 - t1, t[2] += t3 - t2;
            t[3] += t4 - t3, t[4] += t5 - t4, t[5] += t6 - t5;
        }
    }
    double sum = 0;
    for (int k = 0; k < 6; k++) sum += (t[k] /= (double)iters);
    printf("bench mapping: %s %s, %zu bytes: parse %.1f us, map %.1f, print %.1f, escape %.1f, "
           "release %.1f, delete %.1f, total %.1f us (mean of %ld after %ld warm-up)\n",
           provider, tool, n, t[0], t[1], t[2], t[3], t[4], t[5], sum, iters, warm);
    cJSON_Delete(args);
    return 0;
}
