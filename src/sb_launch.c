#include "sb_launch.h"

#include "core/sb_buf.h"
#include "core/sb_config.h"
#include "core/sb_util.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int sb_launch_sandbox(sb_launch *l, char *err, size_t errlen)
{
    memset(l, 0, sizeof *l);
    char self[PATH_MAX], bin[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    bin[0] = '\0';
    if (n > 0) {
        self[n] = '\0';
        snprintf(bin, sizeof bin, "%s/signbridge-sandbox", dirname(self));
        if (access(bin, X_OK) != 0) bin[0] = '\0';
    }
    snprintf(l->port_file, sizeof l->port_file, "/tmp/signbridge-sandbox.%d.port", (int)getpid());
    unlink(l->port_file);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* the sandbox must not outlive us */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(1);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        char *argv[] = {bin[0] ? bin : (char *)"signbridge-sandbox", (char *)"--listen",
                        (char *)"127.0.0.1:0", (char *)"--port-file", l->port_file,
                        (char *)"--no-rate-limits", NULL};
        if (bin[0])
            execv(bin, argv);
        else
            execvp("signbridge-sandbox", argv);
        fprintf(stderr, "signbridge: cannot run signbridge-sandbox: %s\n", strerror(errno));
        _exit(127);
    }
    l->pid = pid;
    for (int i = 0; i < 1000; i++) {
        FILE *f = fopen(l->port_file, "r");
        if (f) {
            unsigned port = 0;
            int ok = fscanf(f, "%u", &port) == 1;
            fclose(f);
            if (ok && port) {
                l->port = port;
                snprintf(l->url, sizeof l->url, "http://127.0.0.1:%u", port);
                unlink(l->port_file);
                return 0;
            }
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            l->pid = 0;
            snprintf(err, errlen, "signbridge-sandbox exited before it was ready (status %d)",
                     WIFEXITED(st) ? WEXITSTATUS(st) : -1);
            return -1;
        }
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    sb_launch_stop(l);
    snprintf(err, errlen, "signbridge-sandbox did not become ready within 10 s");
    return -1;
}

static size_t collect(char *p, size_t sz, size_t nm, void *ud)
{
    sb_buf *b = ud;
    return sb_buf_append(b, p, sz * nm) == 0 ? sz * nm : 0;
}

/* GET /_sandbox/accounts (caller frees), or NULL. */
static cJSON *fetch_accounts(const sb_launch *l)
{
    char url[128];
    snprintf(url, sizeof url, "%s/_sandbox/accounts", l->url);
    sb_buf b;
    sb_buf_init(&b, 4 << 20);
    CURL *c = curl_easy_init();
    if (!c) return NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
    CURLcode rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    cJSON *doc = rc == CURLE_OK && b.data ? cJSON_Parse(b.data) : NULL;
    sb_buf_free(&b);
    return doc;
}

void sb_launch_oauth_apps(const sb_launch *l, sb_config *cfg)
{
    cJSON *doc = fetch_accounts(l);
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(doc, "accounts"))
    {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(a, "provider");
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(a, "region");
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(a, "oauth");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "client_id");
        const cJSON *sec = cJSON_GetObjectItemCaseSensitive(o, "client_secret");
        if (!cJSON_IsString(p) || !cJSON_IsString(r) || !cJSON_IsString(id) ||
            !cJSON_IsString(sec) || cfg->oauth.n_apps >= 16)
            continue;
        int have = 0;
        for (size_t i = 0; i < cfg->oauth.n_apps; i++)
            have |= !strcmp(cfg->oauth.apps[i].provider, p->valuestring) &&
                    (!cfg->oauth.apps[i].region[0] ||
                     !strcmp(cfg->oauth.apps[i].region, r->valuestring));
        if (have) continue;
        __typeof__(cfg->oauth.apps[0]) *ap = &cfg->oauth.apps[cfg->oauth.n_apps++];
        memset(ap, 0, sizeof *ap);
        snprintf(ap->provider, sizeof ap->provider, "%s", p->valuestring);
        snprintf(ap->region, sizeof ap->region, "%s", r->valuestring);
        snprintf(ap->client_id, sizeof ap->client_id, "%s", id->valuestring);
        snprintf(ap->client_secret, sizeof ap->client_secret, "%s", sec->valuestring);
    }
    cJSON_Delete(doc);
}

void sb_launch_print_accounts(const sb_launch *l, const char *public_url)
{
    char url[128];
    snprintf(url, sizeof url, "%s/_sandbox/accounts", l->url);
    cJSON *doc = fetch_accounts(l);
    printf("signbridge is running with the bundled provider sandbox at %s\n", l->url);
    printf("MCP endpoint: %s/mcp  (provider routes: %s/{provider}/mcp, %s/{provider}/{region}/mcp)\n",
           public_url, public_url, public_url);
    printf("Demo credentials (send one as X-API-Key):\n");
    printf("  %-12s %-11s %-44s %s\n", "provider", "region", "api_key", "sandbox REST base");
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(doc, "accounts"))
    {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(a, "provider");
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(a, "region");
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(a, "api_key");
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(a, "base_url");
        printf("  %-12s %-11s %-44s %s\n", cJSON_IsString(p) ? p->valuestring : "?",
               cJSON_IsString(r) ? r->valuestring : "?", cJSON_IsString(k) ? k->valuestring : "?",
               cJSON_IsString(u) ? u->valuestring : "?");
    }
    if (!doc) printf("  (could not read %s)\n", url);
    printf("These are sandbox keys for local testing only.\n");
    printf("OAuth clients (Claude, ChatGPT, MCP Inspector): connect to %s/mcp; the consent page "
           "takes one of these keys or \"Sign in with BoldSign\" (docs/auth.md).\n",
           public_url);
    printf("Narrower keys for agents: signbridge keys create --sandbox-url %s --provider boldsign "
           "--api-key <key> --name my-agent --scope read (docs/keys.md).\n",
           l->url);
    fflush(stdout);
    cJSON_Delete(doc);
}

void sb_launch_stop(sb_launch *l)
{
    if (l->pid <= 0) return;
    kill(l->pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
        if (waitpid(l->pid, NULL, WNOHANG) == l->pid) {
            l->pid = 0;
            return;
        }
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    kill(l->pid, SIGKILL);
    waitpid(l->pid, NULL, 0);
    l->pid = 0;
}
