/* Fuzz target: configuration loading (src/core/sb_config.h). The input is written to a memfd and
 * loaded as the configuration file (via /proc/self/fd/N) with an empty environment; a loaded
 * configuration is also serialized back (sb_config_to_json). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/sb_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int g_fd = -1;
static char g_path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g_fd < 0) {
        g_fd = memfd_create("fuzz-config", 0);
        if (g_fd < 0) abort();
        snprintf(g_path, sizeof g_path, "/proc/self/fd/%d", g_fd);
    }
    if (ftruncate(g_fd, 0) != 0 || lseek(g_fd, 0, SEEK_SET) != 0) abort();
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(g_fd, data + off, size - off);
        if (n <= 0) abort();
        off += (size_t)n;
    }
    static sb_config cfg; /* large: keep it off the stack */
    char *envp[] = {NULL};
    char err[512];
    memset(&cfg, 0, sizeof cfg);
    if (sb_config_load(&cfg, g_path, NULL, envp, err, sizeof err) == 0) {
        cJSON *j = sb_config_to_json(&cfg);
        cJSON_Delete(j);
    }
    return 0;
}
