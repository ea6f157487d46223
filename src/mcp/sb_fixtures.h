/* sb_fixtures: the conformance fixture pack (tools, resources, prompts the official MCP conformance
 * suite calls), served only with --conformance, on the same registry and dispatch paths as the
 * real tools. */
#ifndef SB_FIXTURES_H
#define SB_FIXTURES_H
#include "mcp/sb_mcp.h"

/* Register the fixture tools into `r` (before the engine exists). 0 or -1 with err. */
int sb_fixtures_add_tools(sb_registry *r, char *err, size_t errlen);
/* Register the fixture resources, prompts and completion handlers on the engine. */
int sb_fixtures_add_methods(sb_mcp *m, char *err, size_t errlen);

#endif
