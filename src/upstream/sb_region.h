/* sb_region: the providers, their regions and the REST base URL of each (defaults of DESIGN.md §1,
 * overridable per entry in config, or all at once by a sandbox URL). */
#ifndef SB_REGION_H
#define SB_REGION_H
#include <stddef.h>

#include "core/sb_config.h"

#define SB_MAX_REGIONS 16

typedef struct sb_region {
    const char *provider;  /* "boldsign" | "dropboxsign" | "iinkedsign" */
    const char *name;      /* "us", "eu", "global", "sandbox-us", ... */
    char base_url[256];    /* REST base, no trailing slash */
} sb_region;

typedef struct sb_regions {
    sb_region r[SB_MAX_REGIONS];
    size_t n;
    char iinked_private_pattern[256]; /* contains "{instance}" */
    char sandbox_url[256];            /* "" unless pointed at a sandbox */
} sb_regions;

/* Build the table from the defaults, cfg->base_urls overrides, and cfg->sandbox_url (which, when
 * set, replaces every base URL with <sandbox>/<provider>/<region><rest prefix>). 0 or -1 + err. */
int sb_regions_init(sb_regions *t, const sb_config *cfg, char *err, size_t errlen);
/* The region entry, or NULL. */
const sb_region *sb_regions_find(const sb_regions *t, const char *provider, const char *region);
/* 1 if provider is known. */
int sb_regions_provider_known(const sb_regions *t, const char *provider);
/* An MCP path, the one grammar of sb_http's routes and of sb_oauth's `resource` values and
 * protected-resource metadata: "/mcp" (default_provider), "/{provider}/mcp",
 * "/{provider}/{region}/mcp" or "/iinkedsign/private/{instance}/mcp"; segments are
 * [a-z0-9-]{1,63}, the provider and region are in t, nothing else (no trailing slash: a caller that
 * allows one strips it first). Fills provider, region (the pin; "private" for an instance; "" if
 * none) and instance ("" if none). 1 when path is one, else 0 (and the outputs are ""). */
int sb_regions_mcp_path(const sb_regions *t, const char *path, const char *default_provider,
                        char provider[16], char region[24], char instance[64]);
/* REST base for an iinked private instance ([a-z0-9-]{1,63}); -1 if the name is invalid. */
int sb_regions_private_url(const sb_regions *t, const char *instance, char *out, size_t cap);

#endif
