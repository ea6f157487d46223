#include "core/sb_log.h"

#include "core/sb_util.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_int g_level = SB_LOG_INFO;
static atomic_int g_fd = 2;

static const char *names[] = {"debug", "info", "warn", "error", "off"};

int sb_log_level_parse(const char *s)
{
    if (!s) return -1;
    for (int i = 0; i <= SB_LOG_OFF; i++)
        if (strcmp(s, names[i]) == 0) return i;
    if (strcmp(s, "warning") == 0) return SB_LOG_WARN;
    return -1;
}

const char *sb_log_level_name(int level)
{
    return level >= 0 && level <= SB_LOG_OFF ? names[level] : "unknown";
}

void sb_log_set_level(int level)
{
    atomic_store(&g_level, level);
}

int sb_log_get_level(void)
{
    return atomic_load(&g_level);
}

void sb_log_set_fd(int fd)
{
    atomic_store(&g_fd, fd);
}

int sb_log_enabled(int level)
{
    return level >= atomic_load(&g_level) && level < SB_LOG_OFF;
}

void sb_log_obj(int level, const char *event, cJSON *fields)
{
    if (!sb_log_enabled(level)) {
        cJSON_Delete(fields);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    if (!o) {
        cJSON_Delete(fields);
        return;
    }
    char ts[40];
    sb_rfc3339(sb_wall_ms(), ts, sizeof ts);
    cJSON_AddStringToObject(o, "ts", ts);
    cJSON_AddStringToObject(o, "level", names[level]);
    cJSON_AddStringToObject(o, "event", event);
    if (fields) {
        cJSON *it = fields->child;
        while (it) {
            cJSON *next = it->next;
            cJSON_DetachItemViaPointer(fields, it);
            cJSON_AddItemToObject(o, it->string, it);
            it = next;
        }
        cJSON_Delete(fields);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) return;
    size_t n = strlen(s);
    s[n] = '\n'; /* replace the NUL: one write per line */
    ssize_t w = write(atomic_load(&g_fd), s, n + 1);
    (void)w;
    free(s);
}

void sb_log_msg(int level, const char *event, const char *fmt, ...)
{
    if (!sb_log_enabled(level)) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *f = cJSON_CreateObject();
    if (f) cJSON_AddStringToObject(f, "msg", msg);
    sb_log_obj(level, event, f);
}
