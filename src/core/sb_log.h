/* sb_log: structured logging, one JSON object per line, with levels. Never give it a secret. */
#ifndef SB_LOG_H
#define SB_LOG_H
#include <cjson/cJSON.h>

enum sb_log_level { SB_LOG_DEBUG = 0, SB_LOG_INFO, SB_LOG_WARN, SB_LOG_ERROR, SB_LOG_OFF };

/* Parse "debug|info|warn|warning|error|off"; -1 if unknown. */
int sb_log_level_parse(const char *s);
const char *sb_log_level_name(int level);
void sb_log_set_level(int level);
int sb_log_get_level(void);
/* Direct log lines to fd (default 2). */
void sb_log_set_fd(int fd);
int sb_log_enabled(int level);
/* Write {"ts","level","event",...fields}. Takes ownership of `fields` (may be NULL). Thread-safe:
 * each line is written with a single write(2). */
void sb_log_obj(int level, const char *event, cJSON *fields);
/* Convenience: {"ts","level","event","msg":<formatted>}. */
void sb_log_msg(int level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
