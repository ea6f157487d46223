/* sb_verify: checks a provider credential with the provider before signbridge keeps it (OAuth
 * sign-in with an API key; later signbridge keys): probes the named region, or every region of
 * the provider in parallel (the first 2xx wins), with the provider's cheap authenticated read. */
#ifndef SB_VERIFY_H
#define SB_VERIFY_H
#include <stddef.h>

#include "upstream/sb_region.h"
#include "upstream/sb_up.h"

/* Called exactly once, on the upstream engine thread (do not block). ok = 1: the key works in
 * `region`. ok = 0: `message` says why (every region that refused it, or what failed). */
typedef void (*sb_verify_done_fn)(void *arg, int ok, const char *region, const char *message);

/* Verify key[0..key_len) for provider in region ("" = detect among every region of the
 * provider; "private" with instance for an iinked private instance). bearer: the key is a
 * provider OAuth access token. The key is copied. Returns 0 when started (done will be called),
 * -1 when nothing could be started (done is not called): unknown provider or region. */
int sb_verify_key(sb_up *up, const sb_regions *rg, const char *provider, const char *region,
                  const char *instance, const char *key, size_t key_len, int bearer,
                  unsigned timeout_ms, sb_verify_done_fn done, void *arg);

/* The same, waiting for the answer (for management paths: the CLI, the admin listener; never on
 * a serving thread). 1 when the key works (region_out = its region), 0 when refused or unreachable
 * (message says why), -1 when nothing could be started. The engine's deadline bounds the wait. */
int sb_verify_key_wait(sb_up *up, const sb_regions *rg, const char *provider, const char *region,
                       const char *instance, const char *key, size_t key_len, unsigned timeout_ms,
                       char region_out[24], char *message, size_t msgcap);

#endif
