#include "upstream/sb_region.h"

#include "core/sb_util.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *provider, *name, *url, *sandbox_suffix;
} k_defaults[] = {
    {"boldsign", "us", "https://api.boldsign.com", ""},
    {"boldsign", "eu", "https://api-eu.boldsign.com", ""},
    {"boldsign", "ca", "https://api-ca.boldsign.com", ""},
    {"boldsign", "au", "https://api-au.boldsign.com", ""},
    {"dropboxsign", "global", "https://api.hellosign.com/v3", "/v3"},
    {"iinkedsign", "us", "https://sign.syngrafii.com/api/v1", "/api/v1"},
    {"iinkedsign", "ca", "https://sign.syngrafii.ca/api/v1", "/api/v1"},
    {"iinkedsign", "eu", "https://sign.syngrafii.eu/api/v1", "/api/v1"},
    {"iinkedsign", "sandbox-us", "https://sandbox.syngrafii.com/api/v1", "/api/v1"},
    {"iinkedsign", "sandbox-eu", "https://sandbox.syngrafii.eu/api/v1", "/api/v1"},
};

static void trim_slash(char *s)
{
    size_t n = strlen(s);
    while (n && s[n - 1] == '/') s[--n] = '\0';
}

int sb_regions_init(sb_regions *t, const sb_config *cfg, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    const char *sbx = cfg ? cfg->sandbox_url : "";
    sb_strlcpy(t->sandbox_url, sbx, sizeof t->sandbox_url);
    trim_slash(t->sandbox_url);
    for (size_t i = 0; i < sizeof k_defaults / sizeof k_defaults[0]; i++) {
        sb_region *r = &t->r[t->n++];
        r->provider = k_defaults[i].provider;
        r->name = k_defaults[i].name;
        if (t->sandbox_url[0])
            snprintf(r->base_url, sizeof r->base_url, "%s/%s/%s%s", t->sandbox_url, r->provider,
                     r->name, k_defaults[i].sandbox_suffix);
        else
            sb_strlcpy(r->base_url, k_defaults[i].url, sizeof r->base_url);
    }
    if (t->sandbox_url[0])
        snprintf(t->iinked_private_pattern, sizeof t->iinked_private_pattern,
                 "%s/iinkedsign/private/{instance}/api/v1", t->sandbox_url);
    else
        sb_strlcpy(t->iinked_private_pattern, "https://{instance}.syngrafii.com/api/v1",
                   sizeof t->iinked_private_pattern);
    for (size_t i = 0; cfg && i < cfg->n_base_urls; i++) {
        const char *key = cfg->base_urls[i].key, *slash = strchr(key, '/');
        char prov[32];
        size_t pl = slash ? (size_t)(slash - key) : 0;
        if (!slash || pl >= sizeof prov) {
            snprintf(err, errlen, "config.base_urls: key \"%s\" must be provider/region", key);
            return -1;
        }
        memcpy(prov, key, pl);
        prov[pl] = '\0';
        if (strcmp(prov, "iinkedsign") == 0 && strcmp(slash + 1, "private") == 0) {
            if (!strstr(cfg->base_urls[i].url, "{instance}")) {
                snprintf(err, errlen, "config.base_urls[\"iinkedsign/private\"]: must contain "
                                      "{instance}");
                return -1;
            }
            sb_strlcpy(t->iinked_private_pattern, cfg->base_urls[i].url,
                       sizeof t->iinked_private_pattern);
            continue;
        }
        sb_region *r = (sb_region *)sb_regions_find(t, prov, slash + 1);
        if (!r) {
            snprintf(err, errlen, "config.base_urls: unknown provider/region \"%s\"", key);
            return -1;
        }
        sb_strlcpy(r->base_url, cfg->base_urls[i].url, sizeof r->base_url);
        trim_slash(r->base_url);
    }
    return 0;
}

const sb_region *sb_regions_find(const sb_regions *t, const char *provider, const char *region)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->r[i].provider, provider) == 0 && strcmp(t->r[i].name, region) == 0)
            return &t->r[i];
    return NULL;
}

int sb_regions_provider_known(const sb_regions *t, const char *provider)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->r[i].provider, provider) == 0) return 1;
    return 0;
}

int sb_regions_private_url(const sb_regions *t, const char *instance, char *out, size_t cap)
{
    size_t n = strlen(instance);
    if (n == 0 || n > 63) return -1;
    for (size_t i = 0; i < n; i++) {
        char c = instance[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return -1;
    }
    const char *p = strstr(t->iinked_private_pattern, "{instance}");
    if (!p) return -1;
    int w = snprintf(out, cap, "%.*s%s%s", (int)(p - t->iinked_private_pattern),
                     t->iinked_private_pattern, instance, p + 10);
    return w < 0 || (size_t)w >= cap ? -1 : 0;
}

/* One path segment: [a-z0-9-]{1,63}, shorter than cap. */
static int mcp_seg(const char *s, size_t n, size_t cap)
{
    if (n == 0 || n > 63 || n >= cap) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

int sb_regions_mcp_path(const sb_regions *t, const char *path, const char *default_provider,
                        char provider[16], char region[24], char instance[64])
{
    provider[0] = region[0] = instance[0] = '\0';
    if (!t || !path || path[0] != '/') return 0;
    if (strcmp(path, "/mcp") == 0) {
        if (!default_provider || strlen(default_provider) >= 16 ||
            !sb_regions_provider_known(t, default_provider))
            return 0;
        sb_strlcpy(provider, default_provider, 16);
        return 1;
    }
    const char *seg[4];
    size_t len[4], n = 0;
    const char *p = path;
    while (*p == '/') {
        if (n == 4) return 0;
        p++;
        const char *e = strchr(p, '/');
        seg[n] = p;
        len[n] = e ? (size_t)(e - p) : strlen(p);
        if (len[n] == 0) return 0; /* "//" or a trailing slash */
        p += len[n++];
    }
    if (n < 2 || len[n - 1] != 3 || memcmp(seg[n - 1], "mcp", 3) != 0) return 0;
    if (!mcp_seg(seg[0], len[0], 16)) return 0;
    memcpy(provider, seg[0], len[0]);
    provider[len[0]] = '\0';
    if (!sb_regions_provider_known(t, provider)) goto no;
    if (n == 2) return 1;
    if (!mcp_seg(seg[1], len[1], 24)) goto no;
    memcpy(region, seg[1], len[1]);
    region[len[1]] = '\0';
    if (n == 3) {
        if (sb_regions_find(t, provider, region)) return 1;
        goto no;
    }
    /* four segments: only an iinked private instance */
    if (strcmp(provider, "iinkedsign") != 0 || strcmp(region, "private") != 0 ||
        !mcp_seg(seg[2], len[2], 64))
        goto no;
    memcpy(instance, seg[2], len[2]);
    instance[len[2]] = '\0';
    return 1;
no:
    provider[0] = region[0] = instance[0] = '\0';
    return 0;
}
