/* sb_log: structured logging, one JSON object per line, with levels. Never give it a secret. */
#ifndef SB_LOG_H
#define SB_LOG_H
#include <cjson/cJSON.h>

#include "core/sb_buf.h"

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
 * each line is written with a single write(2) (or kept for one, sb_log_batch). */
void sb_log_obj(int level, const char *event, cJSON *fields);
/* A line written field by field, without a cJSON tree: the line sb_log_obj writes for the same
 * fields in the same order, byte for byte (cJSON's escapes and number forms). For the access log's
 * line per request, where building and printing a tree took ~24k instructions, more than serving
 * a tools/list. Use: sb_log_line_begin -- 0: the level is on and the line is started; -1: nothing
 * to do (level off, or no memory: the line is dropped, as sb_log_obj drops it), no other call
 * needed -- then any number of fields, then sb_log_line_end, which writes the line with one
 * write(2) (or keeps it for one, sb_log_batch) and frees it. A field that would take the line past
 * SB_LOG_LINE_MAX bytes is left out whole. Keys must be valid UTF-8; values are copied as cJSON
 * prints them. */
#define SB_LOG_LINE_MAX 65536
typedef struct sb_log_line {
    sb_buf b;
} sb_log_line;
int sb_log_line_begin(sb_log_line *l, int level, const char *event);
void sb_log_line_str(sb_log_line *l, const char *key, const char *value);
void sb_log_line_num(sb_log_line *l, const char *key, double value);
void sb_log_line_end(sb_log_line *l);
/* An event-loop thread's lines written together: with sb_log_batch(1) the lines this thread writes
 * (sb_log_obj, sb_log_line_end, sb_log_msg) are kept, in order, in a buffer of SB_LOG_BATCH bytes
 * (PIPE_BUF: one write of it to a pipe is never interleaved with another thread's), and written
 * with one write(2) by sb_log_flush -- at the end of the loop's turn -- or when the next line
 * would not fit; a line longer than the buffer is written on its own, after what was kept.
 * sb_log_batch(0) writes what is kept and goes back to a write per line (every other thread
 * writes each line at once). A busy turn serving many requests writes their access-log lines
 * with one system call instead of one each; a line waits at most until its turn ends (a
 * process killed by a signal loses what its current turns kept). */
#define SB_LOG_BATCH 4096
void sb_log_batch(int on);
void sb_log_flush(void);

/* Convenience: {"ts","level","event","msg":<formatted>}. */
void sb_log_msg(int level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
