/* sb_jw: see sb_jw.h. */
#include "core/sb_jw.h"

#include "core/sb_json.h"

#include <string.h>

void sb_jw_init(sb_jw *w, sb_buf *b)
{
    memset(w, 0, sizeof *w);
    w->b = b;
}

int sb_jw_finish(const sb_jw *w)
{
    if (w->err) return w->err;
    return w->depth == 0 && !w->after_key ? 0 : -3;
}

static void put(sb_jw *w, const char *p, size_t n)
{
    sb_buf *b = w->b;
    if (b->len + n < b->cap && b->len + n <= b->max) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
        return;
    }
    int rc = sb_buf_append(b, p, n);
    if (rc) w->err = rc;
}

/* Before a value: its comma, unless it follows its key. */
static int value_begins(sb_jw *w)
{
    if (w->err) return 0;
    if (w->after_key) {
        w->after_key = 0;
        return 1;
    }
    uint32_t bit = (uint32_t)1 << w->depth;
    if (w->nonempty & bit) put(w, ",", 1);
    w->nonempty |= bit;
    return !w->err;
}

void sb_jw_put_slow_(sb_jw *w, const char *p, size_t n)
{
    put(w, p, n);
}

void sb_jw_misuse_(sb_jw *w)
{
    w->err = -3;
}

void sb_jw_open(sb_jw *w, char c)
{
    if (!value_begins(w)) return;
    if (w->depth + 1 >= SB_JW_MAX_DEPTH) {
        w->err = -3;
        return;
    }
    put(w, &c, 1);
    w->depth++;
    w->nonempty &= ~((uint32_t)1 << w->depth);
}

void sb_jw_close(sb_jw *w, char c)
{
    if (w->err) return;
    if (w->depth == 0 || w->after_key) {
        w->err = -3;
        return;
    }
    put(w, &c, 1);
    w->depth--;
}

void sb_jw_vstr(sb_jw *w, const char *v)
{
    if (!value_begins(w)) return;
    if (!v) {
        put(w, "null", 4);
        return;
    }
    int rc = sb_buf_json_string(w->b, v);
    if (rc) w->err = rc;
}

void sb_jw_vclean(sb_jw *w, const char *s, size_t n)
{
    if (!value_begins(w)) return;
    sb_buf *b = w->b;
    if (b->len + n + 2 < b->cap && b->len + n + 2 <= b->max) {
        char *o = b->data + b->len;
        o[0] = '"';
        memcpy(o + 1, s, n);
        o[n + 1] = '"';
        b->len += n + 2;
        b->data[b->len] = '\0';
        return;
    }
    /* the buffer grows: as any string */
    int rc = sb_buf_json_stringn(b, s, n);
    if (rc) w->err = rc;
}

void sb_jw_vjstr(sb_jw *w, const cJSON *v)
{
    size_t n;
    if (sb_json_clean(v, &n))
        sb_jw_vclean(w, v->valuestring, n);
    else
        sb_jw_vstr(w, cJSON_IsString(v) ? v->valuestring : NULL);
}

void sb_jw_vnum(sb_jw *w, double v)
{
    if (!value_begins(w)) return;
    int rc = sb_buf_json_number(w->b, v);
    if (rc) w->err = rc;
}

void sb_jw_vbool(sb_jw *w, int v)
{
    if (!value_begins(w)) return;
    if (v)
        put(w, "true", 4);
    else
        put(w, "false", 5);
}

void sb_jw_vnull(sb_jw *w)
{
    if (!value_begins(w)) return;
    put(w, "null", 4);
}
