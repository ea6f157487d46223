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

/* this thread's kept lines (sb_log_batch) */
static __thread int tl_on;
static __thread size_t tl_len;
static __thread char tl_buf[SB_LOG_BATCH];

static void write_out(const char *p, size_t n)
{
    ssize_t w = write(atomic_load(&g_fd), p, n);
    (void)w; /* a log line that cannot be written is dropped: nothing to report it to */
}

void sb_log_flush(void)
{
    if (!tl_len) return;
    write_out(tl_buf, tl_len);
    tl_len = 0;
}

void sb_log_batch(int on)
{
    if (!on) sb_log_flush();
    tl_on = on;
}

/* One whole line (ending in a newline): kept when this thread batches, else written now. */
static void emit(const char *p, size_t n)
{
    if (tl_on) {
        if (tl_len + n > sizeof tl_buf) sb_log_flush();
        if (n <= sizeof tl_buf) {
            memcpy(tl_buf + tl_len, p, n);
            tl_len += n;
            return;
        }
    }
    write_out(p, n);
}

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
    emit(s, n + 1);
    free(s);
}

int sb_log_line_begin(sb_log_line *l, int level, const char *event)
{
    sb_buf_init(&l->b, SB_LOG_LINE_MAX - 2);
    if (!sb_log_enabled(level)) return -1;
    char ts[40];
    sb_rfc3339(sb_wall_ms(), ts, sizeof ts);
    if (sb_buf_reserve(&l->b, 512) != 0 || sb_buf_append(&l->b, "{\"ts\":", 6) != 0 ||
        sb_buf_json_string(&l->b, ts) != 0 || sb_buf_append(&l->b, ",\"level\":", 9) != 0 ||
        sb_buf_json_string(&l->b, names[level]) != 0 ||
        sb_buf_append(&l->b, ",\"event\":", 9) != 0 || sb_buf_json_string(&l->b, event) != 0) {
        sb_buf_free(&l->b);
        return -1;
    }
    return 0;
}

static void line_cut(sb_log_line *l, size_t mark)
{
    l->b.len = mark;
    l->b.data[mark] = '\0';
}

/* ,"key": -- then the value; on failure the line is cut back to where the field began (*mark).
 * A key without a byte to escape (every key the code writes) goes in with one append. */
static int line_key(sb_log_line *l, const char *key, size_t *mark)
{
    *mark = l->b.len;
    if (!l->b.data) return -1; /* not started */
    size_t n = strlen(key);
    char k[68];
    int plain = n <= sizeof k - 4;
    for (size_t i = 0; plain && i < n; i++)
        plain = (unsigned char)key[i] >= 0x20 && key[i] != '"' && key[i] != '\\';
    if (plain) {
        k[0] = ',';
        k[1] = '"';
        memcpy(k + 2, key, n);
        k[n + 2] = '"';
        k[n + 3] = ':';
        if (sb_buf_append(&l->b, k, n + 4) == 0) return 0;
    } else if (sb_buf_append(&l->b, ",", 1) == 0 && sb_buf_json_string(&l->b, key) == 0 &&
               sb_buf_append(&l->b, ":", 1) == 0) {
        return 0;
    }
    line_cut(l, *mark);
    return -1;
}

void sb_log_line_str(sb_log_line *l, const char *key, const char *value)
{
    size_t mark;
    if (line_key(l, key, &mark) != 0) return;
    if (sb_buf_json_string(&l->b, value ? value : "") != 0) line_cut(l, mark);
}

void sb_log_line_num(sb_log_line *l, const char *key, double value)
{
    size_t mark;
    if (line_key(l, key, &mark) != 0) return;
    if (sb_buf_json_number(&l->b, value) != 0) line_cut(l, mark);
}

void sb_log_line_end(sb_log_line *l)
{
    if (!l->b.data) return;
    l->b.max += 2; /* the fields were bounded two bytes short: "}\n" always fits */
    if (sb_buf_append(&l->b, "}\n", 2) == 0) emit(l->b.data, l->b.len);
    sb_buf_free(&l->b);
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
