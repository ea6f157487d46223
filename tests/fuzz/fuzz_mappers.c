/* Fuzz target: the provider adapters' response mappers (src/providers/sb_provider.h). For each
 * adapter (BoldSign, Dropbox Sign, iinked Sign), each of its tools and a small set of valid
 * arguments per tool, the request is built as the bridge does (fresh scratch object), then the
 * input is handed to `map` as a 200 answer (parsed JSON when it parses); a SB_PMAP_NEXT answer
 * gets the same input again as the next step's answer (up to 4 steps). Everything returned is
 * freed. `error_message` is run on the input as a 400 and as a 200 answer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sb_embed.h"
#include "core/sb_json_schema.h"
#include "providers/sb_provider.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define EMAIL_A "a@example.com"
#define EMAIL_B "b@example.com"
#define PDF_B64 "JVBERi0xLjQK" /* "%PDF-1.4\n" */

/* Minimal plausible arguments, valid against each tool's inputSchema (checked at start-up). */
static const struct {
    const char *tool;
    const char *args;
} k_args[] = {
    {"list_documents", "{}"},
    {"list_documents", "{\"status\":[\"completed\",\"sent\"],\"query\":\"nda\",\"page\":2,"
                       "\"page_size\":5,\"created_after\":\"2026-01-01T00:00:00Z\"}"},
    {"get_document", "{\"document_id\":\"abc\"}"},
    {"get_document_history", "{\"document_id\":\"abc\"}"},
    {"download_document", "{\"document_id\":\"abc\"}"},
    {"download_document", "{\"document_id\":\"abc\",\"kind\":\"audit_trail\"}"},
    {"get_signing_link", "{\"document_id\":\"abc\",\"signer_email\":\"" EMAIL_A "\"}"},
    {"send_document", "{\"title\":\"NDA\",\"files\":[{\"base64\":\"" PDF_B64 "\",\"name\":\"a.pdf\"}],"
                      "\"signers\":[{\"name\":\"Ada Lovelace\",\"email\":\"" EMAIL_A "\"}]}"},
    {"send_document", "{\"title\":\"NDA\",\"files\":[{\"url\":\"https://files.example.com/a.pdf\","
                      "\"name\":\"a.pdf\"}],\"signers\":[{\"name\":\"Ada Lovelace\",\"email\":\"" EMAIL_A "\","
                      "\"order\":1},{\"name\":\"Bob Smith\",\"email\":\"" EMAIL_B "\",\"order\":2}],"
                      "\"signing_order\":true,\"cc\":[\"c@example.com\"],\"expires_in_days\":7}"},
    {"send_from_template", "{\"template_id\":\"tpl\",\"signers\":[{\"role\":\"Signer\",\"name\":\"Ada Lovelace\","
                           "\"email\":\"" EMAIL_A "\"}]}"},
    {"remind_signers", "{\"document_id\":\"abc\"}"},
    {"remind_signers", "{\"document_id\":\"abc\",\"signer_emails\":[\"" EMAIL_A "\"]}"},
    {"revoke_document", "{\"document_id\":\"abc\",\"reason\":\"wrong file\"}"},
    {"change_signer", "{\"document_id\":\"abc\",\"old_email\":\"" EMAIL_A "\",\"new_name\":\"Bob Smith\","
                      "\"new_email\":\"" EMAIL_B "\"}"},
    {"extend_expiry", "{\"document_id\":\"abc\",\"days\":7}"},
    {"extend_expiry", "{\"document_id\":\"abc\",\"expires_at\":\"2030-01-01T00:00:00Z\"}"},
    {"list_templates", "{}"},
    {"get_template", "{\"template_id\":\"tpl\"}"},
    {"list_contacts", "{}"},
    {"get_contact", "{\"contact_id\":\"c1\"}"},
    {"create_contact", "{\"name\":\"Ada Lovelace\",\"email\":\"" EMAIL_A "\"}"},
    {"update_contact", "{\"contact_id\":\"c1\",\"name\":\"Bob Smith\"}"},
    {"delete_contact", "{\"contact_id\":\"c1\"}"},
    {"list_users", "{}"},
    {"get_user", "{\"user_id\":\"u1\"}"},
    {"list_teams", "{}"},
    {"get_team", "{\"team_id\":\"t1\"}"},
    {"get_account", "{}"},
};
#define NARGS (sizeof k_args / sizeof k_args[0])

static const sb_adapter *const k_adapters[] = {&sb_adapter_boldsign, &sb_adapter_dropboxsign,
                                               &sb_adapter_iinkedsign};
#define NADAPTERS (sizeof k_adapters / sizeof k_adapters[0])

static cJSON *g_args[NARGS];
static int g_loaded;

static void unload(void)
{
    for (size_t i = 0; i < NARGS; i++) cJSON_Delete(g_args[i]);
}

static void load_args(void)
{
    g_loaded = 1;
    for (size_t i = 0; i < NARGS; i++) {
        char name[96], err[512];
        snprintf(name, sizeof name, "tools/%s.json", k_args[i].tool);
        const sb_embedded_file *f = sb_embed_find(name);
        cJSON *contract = f ? cJSON_ParseWithLength(f->data, f->len) : NULL;
        const cJSON *in = cJSON_GetObjectItemCaseSensitive(contract, "inputSchema");
        g_args[i] = cJSON_Parse(k_args[i].args);
        if (!in || !g_args[i] ||
            sb_schema_validate(in, NULL, g_args[i], "arguments", err, sizeof err) != 0) {
            fprintf(stderr, "fuzz_mappers: bad arguments for %s: %s\n", k_args[i].tool,
                    in ? err : "no contract");
            abort();
        }
        sb_schema_apply_defaults(in, NULL, g_args[i]); /* as the engine does */
        cJSON_Delete(contract);
    }
    atexit(unload);
}

static void run_tool(const sb_adapter *a, const sb_ptool *pt, const cJSON *args,
                     const sb_presp *resp)
{
    sb_pctx ctx = {.provider = a->name, .region = "us", .base_url = "https://api.example.com/v1",
                   .key = "k3y", .key_len = 3, .request_id = "fuzz"};
    sb_pstep step;
    memset(&step, 0, sizeof step);
    step.scratch = cJSON_CreateObject();
    char err[400] = "";
    sb_preq first;
    sb_preq_init(&first, "GET", 1);
    int brc = pt->build(&ctx, args, &step, &first, err, sizeof err);
    sb_preq_free(&first);
    if (brc == 0) {
        for (int s = 0; s < 4; s++) {
            cJSON *out = NULL;
            err[0] = '\0';
            sb_preq_init(&step.next, "GET", 1);
            sb_buf_init(&step.json, (size_t)64 << 20);
            int rc = pt->map(&ctx, args, resp, &step, &out, err, sizeof err);
            if (rc == SB_PMAP_JSON) {
                /* a result written as text is one whole JSON object, whatever the answer */
                cJSON *back = step.json.data ? cJSON_ParseWithLength(step.json.data, step.json.len)
                                             : NULL;
                if (!cJSON_IsObject(back)) abort();
                cJSON_Delete(back);
            }
            sb_buf_free(&step.json);
            cJSON_Delete(out);
            sb_preq_free(&step.next);
            if (rc != SB_PMAP_NEXT) break;
            step.step++;
            step.blob = NULL;
            step.blob_len = 0;
        }
    }
    cJSON_Delete(step.scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_loaded) load_args();
    sb_presp resp = {.status = 200, .body = (const char *)data, .len = size};
    if (size) resp.json = cJSON_ParseWithLength(resp.body, size);

    for (size_t ai = 0; ai < NADAPTERS; ai++) {
        const sb_adapter *a = k_adapters[ai];
        for (size_t i = 0; i < NARGS; i++) {
            const sb_ptool *pt = sb_adapter_tool(a, k_args[i].tool);
            if (pt) run_tool(a, pt, g_args[i], &resp);
        }
        char msg[300];
        a->error_message(&resp, msg, sizeof msg);
        sb_presp bad = resp;
        bad.status = 400;
        a->error_message(&bad, msg, sizeof msg);
        a->error_message(&bad, msg, 8);
    }
    cJSON_Delete(resp.json);
    return 0;
}
