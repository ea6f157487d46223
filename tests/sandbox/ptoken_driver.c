/* ptoken_driver: drives auth/sb_ptoken against the provider sandbox for tests/sandbox/ptoken.py.
 * Usage: ptoken_driver ORIGIN REGION... — configures the BoldSign issuer
 * ORIGIN/boldsign/REGION/account (audience "BoldSign.Api") for each REGION, refreshes the keys with
 * blocking libcurl as the fetch function (prints "refresh <rc> <number of keys per issuer>"), then
 * reads one token per stdin line (tokens never come through argv or the output) and prints per line
 * "OK <provider> <region> <claims.client_id>" or "ERR <code> <name>". A line "refresh" refreshes
 * again (max age 0). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "auth/sb_ptoken.h"

typedef struct body {
    char *p;
    size_t len, max;
    int over;
} body;

static size_t on_data(char *d, size_t sz, size_t n, void *ud)
{
    body *b = ud;
    size_t k = sz * n;
    if (b->len + k > b->max) {
        b->over = 1;
        return 0;
    }
    char *np = realloc(b->p, b->len + k + 1);
    if (!np) return 0;
    b->p = np;
    memcpy(b->p + b->len, d, k);
    b->len += k;
    b->p[b->len] = 0;
    return k;
}

static int g_fetches;

static char *fetch(void *ud, const char *url, size_t max, size_t *len)
{
    (void)ud;
    g_fetches++;
    CURL *c = curl_easy_init();
    if (!c) return NULL;
    body b = {.max = max};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    long status = 0;
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK || status < 200 || status > 299 || b.over || !b.p) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s ORIGIN REGION...\n", argv[0]);
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    size_t n = (size_t)(argc - 2);
    if (n > SB_PTOKEN_MAX_ISSUERS) return 2;
    sb_ptoken_issuer cfg[SB_PTOKEN_MAX_ISSUERS];
    memset(cfg, 0, sizeof cfg);
    for (size_t i = 0; i < n; i++) {
        snprintf(cfg[i].issuer, sizeof cfg[i].issuer, "%s/boldsign/%s/account", argv[1],
                 argv[2 + i]);
        snprintf(cfg[i].provider, sizeof cfg[i].provider, "boldsign");
        snprintf(cfg[i].region, sizeof cfg[i].region, "%s", argv[2 + i]);
        snprintf(cfg[i].audience, sizeof cfg[i].audience, "BoldSign.Api");
    }
    sb_ptoken *p = sb_ptoken_new(cfg, n, fetch, NULL);
    if (!p) return 1;
    int rc = sb_ptoken_refresh(p, 3600);
    printf("refresh %d fetches %d\n", rc, g_fetches);
    fflush(stdout);
    static char line[SB_JWT_MAX_TOKEN + 4096];
    while (fgets(line, sizeof line, stdin)) {
        size_t l = strcspn(line, "\r\n");
        line[l] = 0;
        if (strcmp(line, "refresh") == 0) {
            g_fetches = 0;
            rc = sb_ptoken_refresh(p, 3600);
            printf("refresh %d fetches %d\n", rc, g_fetches);
            fflush(stdout);
            continue;
        }
        char prov[16] = "", reg[24] = "", err[128];
        cJSON *claims = NULL;
        int v = sb_ptoken_verify(p, line, l, prov, reg, &claims, err, sizeof err);
        if (v == 0) {
            const cJSON *cid = cJSON_GetObjectItemCaseSensitive(claims, "client_id");
            printf("OK %s %s %s\n", prov, reg, cJSON_IsString(cid) ? cid->valuestring : "-");
        } else {
            printf("ERR %d %s\n", v, sb_jwt_strerror(v));
        }
        cJSON_Delete(claims);
        fflush(stdout);
    }
    sb_ptoken_free(p);
    curl_global_cleanup();
    return 0;
}
