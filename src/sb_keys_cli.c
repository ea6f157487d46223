/* sb_keys_cli: `signbridge keys create|list|show|rotate|revoke` — manage signbridge keys in the
 * store (docs/keys.md). Uses the same configuration, store and provider endpoints (--sandbox-url)
 * as the server; `create` verifies the provider key with the provider before storing it. */
#include "sb_keys_cli.h"

#include "auth/sb_cred.h"
#include "auth/sb_keys.h"
#include "bridge/sb_verify.h"
#include "core/sb_config.h"
#include "core/sb_log.h"
#include "core/sb_util.h"
#include "store/sb_store.h"
#include "upstream/sb_region.h"
#include "upstream/sb_up.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *keys_usage =
    "usage: signbridge keys COMMAND [options]\n"
    "  create --provider P --api-key K|- [--region R] --name N --scope read|write\n"
    "         [--tools t1,t2] [--expires RFC3339|90d|12h] [--created-by WHO]\n"
    "         verifies the provider key with the provider, prints the new key alone on one line\n"
    "  list                        every key (id, name, provider, region, scope, status, ...)\n"
    "  show ID                     one key as JSON\n"
    "  rotate ID --overlap DURATION   a new key; the old one works for DURATION more (e.g. 1h)\n"
    "  revoke ID                   refuse the key from now on (every replica within a second)\n"
    "common options: --store URL, --config FILE, --sandbox-url URL, --json (list as JSON)\n"
    "--api-key - reads the provider key from standard input.\n";

static void print_table(const sb_key_info *a, size_t n)
{
    printf("%-15s %-24s %-12s %-10s %-6s %-9s %-25s %-25s %s\n", "ID", "NAME", "PROVIDER", "REGION",
           "SCOPE", "STATUS", "EXPIRES", "LAST USED", "TOOLS");
    for (size_t i = 0; i < n; i++) {
        cJSON *j = sb_key_info_json(&a[i]);
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "status");
        const cJSON *ex = cJSON_GetObjectItemCaseSensitive(j, "expires_at");
        const cJSON *lu = cJSON_GetObjectItemCaseSensitive(j, "last_used_at");
        printf("%-15s %-24.24s %-12s %-10s %-6s %-9s %-25s %-25s %s\n", a[i].id, a[i].name,
               a[i].provider, a[i].region, a[i].write ? "write" : "read",
               cJSON_IsString(st) ? st->valuestring : "",
               cJSON_IsString(ex) ? ex->valuestring : "never",
               cJSON_IsString(lu) ? lu->valuestring : "never", a[i].tools[0] ? a[i].tools : "*");
        cJSON_Delete(j);
    }
}

int sb_keys_cli(int argc, char **argv, char **envp)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(keys_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1], *id = NULL, *config_file = NULL, *api_key = NULL;
    const char *expires = NULL, *overlap = NULL, *scope = NULL;
    int as_json = 0;
    sb_key_info in;
    memset(&in, 0, sizeof in);
    cJSON *ov = cJSON_CreateObject();
    int rc = 2;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define VAL()                                                                             \
    do {                                                                                  \
        if (!v) {                                                                         \
            fprintf(stderr, "signbridge keys: %s needs a value\n", a);                    \
            goto out;                                                                     \
        }                                                                                 \
        i++;                                                                              \
    } while (0)
        if (!strcmp(a, "--store")) {
            VAL();
            cJSON *so = cJSON_AddObjectToObject(ov, "store");
            cJSON_AddStringToObject(so, "url", v);
        } else if (!strcmp(a, "--config")) {
            VAL();
            config_file = v;
        } else if (!strcmp(a, "--sandbox-url")) {
            VAL();
            cJSON_AddStringToObject(ov, "sandbox_url", v);
        } else if (!strcmp(a, "--provider")) {
            VAL();
            sb_strlcpy(in.provider, v, sizeof in.provider);
        } else if (!strcmp(a, "--api-key")) {
            VAL();
            api_key = v;
        } else if (!strcmp(a, "--region")) {
            VAL();
            sb_strlcpy(in.region, v, sizeof in.region);
        } else if (!strcmp(a, "--instance")) {
            VAL();
            sb_strlcpy(in.instance, v, sizeof in.instance);
        } else if (!strcmp(a, "--name")) {
            VAL();
            if (strlen(v) >= sizeof in.name) {
                fprintf(stderr, "signbridge keys: --name: at most %zu bytes\n", sizeof in.name - 1);
                goto out;
            }
            sb_strlcpy(in.name, v, sizeof in.name);
        } else if (!strcmp(a, "--scope")) {
            VAL();
            scope = v;
        } else if (!strcmp(a, "--tools")) {
            VAL();
            if (strlen(v) >= sizeof in.tools) {
                fprintf(stderr, "signbridge keys: --tools: too long\n");
                goto out;
            }
            sb_strlcpy(in.tools, v, sizeof in.tools);
        } else if (!strcmp(a, "--expires")) {
            VAL();
            expires = v;
        } else if (!strcmp(a, "--overlap")) {
            VAL();
            overlap = v;
        } else if (!strcmp(a, "--created-by")) {
            VAL();
            sb_strlcpy(in.created_by, v, sizeof in.created_by);
        } else if (!strcmp(a, "--json")) {
            as_json = 1;
        } else if (a[0] != '-' && !id) {
            id = a;
        } else {
            fprintf(stderr, "signbridge keys: unknown option %s\n%s", a, keys_usage);
            goto out;
        }
#undef VAL
    }
    sb_config cfg;
    char err[600];
    if (sb_config_load(&cfg, config_file, ov, envp, err, sizeof err) < 0) {
        fprintf(stderr, "signbridge keys: invalid configuration: %s\n", err);
        goto out;
    }
    sb_log_set_level(SB_LOG_WARN);
    unsigned char secret[32];
    if (sb_secret_load_or_create(cfg.secret_file, secret, err, sizeof err) < 0) {
        fprintf(stderr, "signbridge keys: %s\n", err);
        goto out;
    }
    sb_store *st = NULL;
    if (sb_store_open(&st, cfg.store.url, NULL, err, sizeof err) != 0) {
        char safe[sizeof cfg.store.url];
        sb_config_redact_url(cfg.store.url, safe, sizeof safe);
        fprintf(stderr, "signbridge keys: cannot open the store %s: %s\n", safe, err);
        rc = 1;
        goto out;
    }
    sb_keys *k = sb_keys_new(st, secret);
    explicit_bzero(secret, sizeof secret);
    rc = 1;
    if (!k) goto done;
    int64_t now = (int64_t)sb_wall_ms();
    if (!strcmp(cmd, "create")) {
        if (!scope || (strcmp(scope, "read") && strcmp(scope, "write"))) {
            fprintf(stderr, "signbridge keys: --scope read|write is required\n");
            rc = 2;
            goto done;
        }
        in.write = !strcmp(scope, "write");
        if (expires && sb_keys_parse_when(expires, now, &in.expires_ms, 0) != 0) {
            fprintf(stderr, "signbridge keys: --expires: an RFC 3339 time or a duration like 90d, "
                            "12h, 30m\n");
            rc = 2;
            goto done;
        }
        if (!in.created_by[0]) {
            const char *u = getenv("USER");
            snprintf(in.created_by, sizeof in.created_by, "cli:%s", u && *u ? u : "unknown");
        }
        if (sb_keys_check(&in, sb_keys_known_tools(), err, sizeof err) != 0) {
            fprintf(stderr, "signbridge keys: %s\n", err);
            rc = 2;
            goto done;
        }
        char keybuf[SB_CRED_MAX + 2];
        if (!api_key) {
            fprintf(stderr, "signbridge keys: --api-key is required (- reads it from stdin)\n");
            rc = 2;
            goto done;
        }
        if (!strcmp(api_key, "-")) {
            if (!fgets(keybuf, sizeof keybuf, stdin)) keybuf[0] = 0;
            keybuf[strcspn(keybuf, "\r\n")] = 0;
        } else {
            sb_strlcpy(keybuf, api_key, sizeof keybuf);
        }
        size_t kl = strlen(keybuf);
        if (!kl || kl > SB_CRED_MAX || sb_keys_is_key(keybuf, kl)) {
            fprintf(stderr, "signbridge keys: --api-key must be the provider's API key\n");
            rc = 2;
            goto done;
        }
        sb_regions regions;
        if (sb_regions_init(&regions, &cfg, err, sizeof err) < 0) {
            fprintf(stderr, "signbridge keys: %s\n", err);
            goto done;
        }
        if (in.region[0] && !sb_regions_find(&regions, in.provider, in.region) &&
            !(in.instance[0] && !strcmp(in.region, "private"))) {
            fprintf(stderr, "signbridge keys: unknown region %s for %s\n", in.region, in.provider);
            rc = 2;
            goto done;
        }
        const char *http_ok[2] = {regions.sandbox_url[0] ? regions.sandbox_url : NULL, NULL};
        const char *nets[20] = {0};
        size_t nn = 0;
        for (size_t i = 0; i < cfg.upstream.n_allowed_networks && nn < 16; i++)
            nets[nn++] = cfg.upstream.allowed_networks[i];
        if (regions.sandbox_url[0]) {
            nets[nn++] = "127.0.0.0/8";
            nets[nn++] = "::1";
        }
        sb_up_options uo = {.ca_file = cfg.upstream.ca_file[0] ? cfg.upstream.ca_file : NULL,
                            .http_allowed_prefixes = http_ok, .allowed_networks = nets,
                            .connect_timeout_ms = cfg.upstream.connect_timeout_ms};
        sb_up *up = sb_up_start(&uo, err, sizeof err);
        if (!up) {
            fprintf(stderr, "signbridge keys: %s\n", err);
            goto done;
        }
        char vregion[24] = "", vmsg[600] = "";
        int vr = sb_verify_key_wait(up, &regions, in.provider,
                                    in.instance[0] ? "private" : in.region, in.instance, keybuf,
                                    kl, cfg.upstream.probe_timeout_ms, vregion, vmsg, sizeof vmsg);
        sb_up_stop(up);
        if (vr != 1) {
            fprintf(stderr, "signbridge keys: the provider key was not accepted: %s\n", vmsg);
            explicit_bzero(keybuf, sizeof keybuf);
            goto done;
        }
        sb_strlcpy(in.region, in.instance[0] ? "private" : vregion, sizeof in.region);
        char newkey[SB_KEY_LEN + 1];
        sb_key_info out;
        int cr = sb_keys_create(k, &in, keybuf, kl, newkey, &out, err, sizeof err);
        explicit_bzero(keybuf, sizeof keybuf);
        if (cr != 0) {
            fprintf(stderr, "signbridge keys: %s\n", err);
            goto done;
        }
        printf("%s\n", newkey);
        fflush(stdout);
        explicit_bzero(newkey, sizeof newkey);
        fprintf(stderr, "created %s (%s, %s %s, scope %s%s%s); the key is shown only once\n",
                out.id, out.name, out.provider, out.region, out.write ? "write" : "read",
                out.tools[0] ? ", tools " : "", out.tools);
        rc = 0;
    } else if (!strcmp(cmd, "list")) {
        sb_key_info *a = NULL;
        size_t n = 0;
        if (sb_keys_list(k, &a, &n) != 0) {
            fprintf(stderr, "signbridge keys: the store did not answer\n");
            goto done;
        }
        if (as_json) {
            cJSON *arr = cJSON_CreateArray();
            for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, sb_key_info_json(&a[i]));
            char *s = cJSON_Print(arr);
            printf("%s\n", s ? s : "[]");
            free(s);
            cJSON_Delete(arr);
        } else {
            print_table(a, n);
        }
        free(a);
        rc = 0;
    } else if (!strcmp(cmd, "show") || !strcmp(cmd, "revoke") || !strcmp(cmd, "rotate")) {
        if (!id) {
            fprintf(stderr, "signbridge keys %s: which key? (an id from `signbridge keys list`)\n",
                    cmd);
            rc = 2;
            goto done;
        }
        sb_key_info info;
        int gr = sb_keys_get(k, id, &info);
        if (gr == SB_STORE_NOTFOUND) {
            fprintf(stderr, "signbridge keys: no key %s\n", id);
            goto done;
        }
        if (gr != 0) {
            fprintf(stderr, "signbridge keys: the store did not answer\n");
            goto done;
        }
        if (!strcmp(cmd, "show")) {
            cJSON *j = sb_key_info_json(&info);
            char *s = cJSON_Print(j);
            printf("%s\n", s ? s : "{}");
            free(s);
            cJSON_Delete(j);
            rc = 0;
        } else if (!strcmp(cmd, "revoke")) {
            if (sb_keys_revoke(k, id) != 0) {
                fprintf(stderr, "signbridge keys: the store did not accept the revocation\n");
                goto done;
            }
            fprintf(stderr, "revoked %s (%s)\n", id, info.name);
            rc = 0;
        } else {
            int64_t ov_ms = 0;
            if (!overlap || sb_keys_parse_when(overlap, now, &ov_ms, 1) != 0) {
                fprintf(stderr, "signbridge keys rotate: --overlap DURATION is required (e.g. 1h, "
                                "30m, 0s)\n");
                rc = 2;
                goto done;
            }
            char newkey[SB_KEY_LEN + 1];
            sb_key_info out;
            if (sb_keys_rotate(k, id, ov_ms, newkey, &out, err, sizeof err) != 0) {
                fprintf(stderr, "signbridge keys: %s\n", err);
                goto done;
            }
            printf("%s\n", newkey);
            fflush(stdout);
            explicit_bzero(newkey, sizeof newkey);
            fprintf(stderr, "rotated %s -> %s; the old key works for %s more\n", id, out.id,
                    overlap);
            rc = 0;
        }
    } else {
        fprintf(stderr, "signbridge keys: unknown command %s\n%s", cmd, keys_usage);
        rc = 2;
    }
done:
    sb_keys_free(k);
    sb_store_close(st);
out:
    cJSON_Delete(ov);
    return rc;
}
