#include "core/sb_metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

const double sb_metrics_bounds[SB_METRICS_NBUCKETS - 1] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
/* the same bounds in microseconds (observations are compared as integers) and as printed */
static const uint64_t bounds_us[SB_METRICS_NBUCKETS - 1] = {
    1000,   2500,   5000,    10000,   25000,   50000,    100000,
    250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000};
static const char *const bounds_txt[SB_METRICS_NBUCKETS] = {
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
    "0.5",   "1",      "2.5",   "5",    "10",    "30",   "+Inf"};

struct sb_mseries {
    sb_mfamily *f;
    uint32_t hash;
    char *values[SB_METRICS_MAX_LABELS]; /* point into the same allocation */
    size_t lens[SB_METRICS_MAX_LABELS];
    atomic_uint_fast64_t v;         /* counter value; histogram sum in microseconds */
    atomic_int_fast64_t g;          /* gauge value */
    atomic_uint_fast64_t buckets[]; /* histogram only: per-bucket (not cumulative) */
};

struct sb_mfamily {
    sb_mfamily *next;
    sb_metric_type type;
    char *name, *help;
    size_t nlabels;
    char *labels[SB_METRICS_MAX_LABELS];
    size_t max_series, mask;
    _Atomic(sb_mseries *) *slots; /* open addressing, 2x max_series rounded to 2^k */
    sb_mseries **order;           /* insertion order, for rendering */
    atomic_size_t n;
    sb_mseries *other; /* the overflow series (all labels "other") */
    atomic_int other_used;
    pthread_mutex_t mu; /* serializes insertions only */
};

struct sb_metrics {
    pthread_mutex_t mu; /* the family list */
    sb_mfamily *head, *tail;
    size_t max_series;
};

/* ---- names and label values --------------------------------------------------------------- */

static int name_ok(const char *s, int colon)
{
    if (!s || !*s) return 0;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
        if (!ok) return 0;
    }
    return 1;
}

/* The stored length of a label value: at most SB_METRICS_LABEL_MAX bytes, cut before a UTF-8
 * continuation byte. */
static size_t cut_len(const char *v)
{
    size_t n = strnlen(v, SB_METRICS_LABEL_MAX + 1);
    if (n <= SB_METRICS_LABEL_MAX) return n;
    n = SB_METRICS_LABEL_MAX;
    while (n > 0 && ((unsigned char)v[n] & 0xC0) == 0x80)
        n--;
    return n;
}

static uint32_t hash_values(const sb_mfamily *f, const char *const *vals, size_t *lens)
{
    uint32_t h = 2166136261u;
    for (size_t k = 0; k < f->nlabels; k++) {
        const char *v = vals[k] ? vals[k] : "";
        lens[k] = cut_len(v);
        for (size_t i = 0; i < lens[k]; i++)
            h = (h ^ (unsigned char)v[i]) * 16777619u;
        h = (h ^ 0xFFu) * 16777619u; /* separator: ("a","b") differs from ("ab","") */
    }
    return h;
}

static int series_eq(const sb_mseries *s, uint32_t h, const char *const *vals, const size_t *lens)
{
    if (s->hash != h) return 0;
    for (size_t k = 0; k < s->f->nlabels; k++) {
        const char *v = vals[k] ? vals[k] : "";
        if (s->lens[k] != lens[k] || memcmp(s->values[k], v, lens[k]) != 0) return 0;
    }
    return 1;
}

static sb_mseries *series_alloc(sb_mfamily *f, uint32_t h, const char *const *vals,
                                const size_t *lens)
{
    size_t nb = f->type == SB_METRIC_HISTOGRAM ? SB_METRICS_NBUCKETS : 0;
    size_t head = sizeof(sb_mseries) + nb * sizeof(atomic_uint_fast64_t);
    size_t text = 0;
    for (size_t k = 0; k < f->nlabels; k++)
        text += lens[k] + 1;
    sb_mseries *s = calloc(1, head + text);
    if (!s) return NULL;
    s->f = f;
    s->hash = h;
    atomic_init(&s->v, 0);
    atomic_init(&s->g, 0);
    for (size_t i = 0; i < nb; i++)
        atomic_init(&s->buckets[i], 0);
    char *p = (char *)s + head;
    for (size_t k = 0; k < f->nlabels; k++) {
        memcpy(p, vals[k] ? vals[k] : "", lens[k]);
        p[lens[k]] = '\0';
        s->values[k] = p;
        s->lens[k] = lens[k];
        p += lens[k] + 1;
    }
    return s;
}

/* ---- registry ------------------------------------------------------------------------------ */

sb_metrics *sb_metrics_new(size_t max_series)
{
    sb_metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    pthread_mutex_init(&m->mu, NULL);
    m->max_series = max_series ? max_series : SB_METRICS_MAX_SERIES;
    return m;
}

static void family_free(sb_mfamily *f)
{
    size_t n = atomic_load(&f->n);
    for (size_t i = 0; i < n; i++)
        free(f->order[i]);
    free(f->other);
    free(f->order);
    free((void *)f->slots);
    free(f->name);
    free(f->help);
    for (size_t k = 0; k < f->nlabels; k++)
        free(f->labels[k]);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

void sb_metrics_free(sb_metrics *m)
{
    if (!m) return;
    for (sb_mfamily *f = m->head, *nx; f; f = nx) {
        nx = f->next;
        family_free(f);
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static sb_metrics *g_metrics;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
    g_metrics = sb_metrics_new(0);
}

sb_metrics *sb_metrics_global(void)
{
    pthread_once(&g_once, global_init);
    return g_metrics;
}

static int same_shape(const sb_mfamily *f, sb_metric_type type, size_t nlabels,
                      const char *const *label_names)
{
    if (f->type != type || f->nlabels != nlabels) return 0;
    for (size_t k = 0; k < nlabels; k++)
        if (strcmp(f->labels[k], label_names[k]) != 0) return 0;
    return 1;
}

sb_mfamily *sb_metrics_family(sb_metrics *m, sb_metric_type type, const char *name,
                              const char *help, size_t nlabels, const char *const *label_names)
{
    if (!m || !name_ok(name, 1) || nlabels > SB_METRICS_MAX_LABELS ||
        (type != SB_METRIC_COUNTER && type != SB_METRIC_GAUGE && type != SB_METRIC_HISTOGRAM))
        return NULL;
    for (size_t k = 0; k < nlabels; k++)
        if (!name_ok(label_names[k], 0) || strncmp(label_names[k], "__", 2) == 0 ||
            (type == SB_METRIC_HISTOGRAM && strcmp(label_names[k], "le") == 0))
            return NULL;
    pthread_mutex_lock(&m->mu);
    for (sb_mfamily *f = m->head; f; f = f->next) {
        if (strcmp(f->name, name) == 0) {
            pthread_mutex_unlock(&m->mu);
            return same_shape(f, type, nlabels, label_names) ? f : NULL;
        }
    }
    sb_mfamily *f = calloc(1, sizeof *f);
    if (!f) goto fail;
    pthread_mutex_init(&f->mu, NULL);
    f->type = type;
    f->nlabels = nlabels;
    f->max_series = nlabels ? m->max_series : 1;
    size_t slots = 4;
    while (slots < 2 * f->max_series)
        slots *= 2;
    f->mask = slots - 1;
    f->slots = calloc(slots, sizeof *f->slots);
    f->order = calloc(f->max_series, sizeof *f->order);
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    int ok = f->slots && f->order && f->name && f->help;
    for (size_t k = 0; k < nlabels; k++)
        ok = ok && (f->labels[k] = strdup(label_names[k]));
    atomic_init(&f->n, 0);
    atomic_init(&f->other_used, 0);
    const char *others[SB_METRICS_MAX_LABELS] = {"other", "other", "other", "other"};
    size_t olens[SB_METRICS_MAX_LABELS];
    if (ok) {
        uint32_t h = hash_values(f, others, olens);
        ok = (f->other = series_alloc(f, h, others, olens)) != NULL;
    }
    if (ok && nlabels == 0) {
        /* the one series of an unlabelled family exists from the start */
        f->order[0] = f->other;
        f->other = NULL;
        atomic_store(&f->n, 1);
    }
    if (!ok) {
        family_free(f);
        goto fail;
    }
    if (m->tail)
        m->tail->next = f;
    else
        m->head = f;
    m->tail = f;
    pthread_mutex_unlock(&m->mu);
    return f;
fail:
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

static sb_mseries *probe(sb_mfamily *f, uint32_t h, const char *const *vals, const size_t *lens,
                         size_t *free_slot)
{
    size_t i = h & f->mask;
    for (;;) {
        sb_mseries *s = atomic_load_explicit(&f->slots[i], memory_order_acquire);
        if (!s) {
            *free_slot = i;
            return NULL;
        }
        if (series_eq(s, h, vals, lens)) return s;
        i = (i + 1) & f->mask;
    }
}

static sb_mseries *overflow(sb_mfamily *f)
{
    if (!atomic_load_explicit(&f->other_used, memory_order_relaxed))
        atomic_store_explicit(&f->other_used, 1, memory_order_relaxed);
    return f->other;
}

sb_mseries *sb_metrics_series(sb_mfamily *f, const char *const *values)
{
    if (!f) return NULL;
    if (f->nlabels == 0) return f->order[0];
    size_t lens[SB_METRICS_MAX_LABELS];
    uint32_t h = hash_values(f, values, lens);
    if (series_eq(f->other, h, values, lens)) return overflow(f);
    size_t slot;
    sb_mseries *s = probe(f, h, values, lens, &slot);
    if (s) return s;
    pthread_mutex_lock(&f->mu);
    s = probe(f, h, values, lens, &slot); /* inserted meanwhile? */
    if (!s) {
        size_t n = atomic_load_explicit(&f->n, memory_order_relaxed);
        if (n >= f->max_series) {
            pthread_mutex_unlock(&f->mu);
            return overflow(f);
        }
        s = series_alloc(f, h, values, lens);
        if (!s) {
            pthread_mutex_unlock(&f->mu);
            return NULL;
        }
        f->order[n] = s;
        atomic_store_explicit(&f->n, n + 1, memory_order_release);
        atomic_store_explicit(&f->slots[slot], s, memory_order_release);
    }
    pthread_mutex_unlock(&f->mu);
    return s;
}

size_t sb_metrics_series_count(const sb_mfamily *f)
{
    return f ? atomic_load(&((sb_mfamily *)f)->n) : 0;
}

/* ---- updates --------------------------------------------------------------------------------- */

void sb_metrics_add(sb_mseries *s, uint64_t n)
{
    if (s) atomic_fetch_add_explicit(&s->v, n, memory_order_relaxed);
}

void sb_metrics_inc(sb_mseries *s)
{
    if (s) atomic_fetch_add_explicit(&s->v, 1, memory_order_relaxed);
}

void sb_metrics_set(sb_mseries *s, int64_t v)
{
    if (s) atomic_store_explicit(&s->g, v, memory_order_relaxed);
}

void sb_metrics_gauge_add(sb_mseries *s, int64_t d)
{
    if (s) atomic_fetch_add_explicit(&s->g, d, memory_order_relaxed);
}

void sb_metrics_observe_us(sb_mseries *s, uint64_t us)
{
    if (!s || s->f->type != SB_METRIC_HISTOGRAM) return;
    size_t i = 0;
    while (i < SB_METRICS_NBUCKETS - 1 && us > bounds_us[i])
        i++;
    atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->v, us, memory_order_relaxed);
}

void sb_metrics_observe(sb_mseries *s, double seconds)
{
    if (isnan(seconds)) return;
    if (seconds < 0) seconds = 0;
    if (seconds > 1e12) seconds = 1e12;
    sb_metrics_observe_us(s, (uint64_t)llround(seconds * 1e6));
}

int64_t sb_metrics_value(const sb_mseries *cs)
{
    sb_mseries *s = (sb_mseries *)cs;
    if (!s) return 0;
    switch (s->f->type) {
    case SB_METRIC_COUNTER:
        return (int64_t)atomic_load(&s->v);
    case SB_METRIC_GAUGE:
        return (int64_t)atomic_load(&s->g);
    default: {
        uint64_t c = 0;
        for (size_t i = 0; i < SB_METRICS_NBUCKETS; i++)
            c += atomic_load(&s->buckets[i]);
        return (int64_t)c;
    }
    }
}

/* ---- rendering ----------------------------------------------------------------------------- */

/* Escape for a label value (backslash, double quote, newline) or, with quote == 0, for HELP text
 * (backslash, newline). */
static int put_escaped(sb_buf *b, const char *s, size_t n, int quote)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        if (s[i] == '\\')
            rep = "\\\\";
        else if (s[i] == '\n')
            rep = "\\n";
        else if (quote && s[i] == '"')
            rep = "\\\"";
        if (!rep) continue;
        int rc = sb_buf_append(b, s + run, i - run);
        if (rc == 0) rc = sb_buf_append(b, rep, 2);
        if (rc) return rc;
        run = i + 1;
    }
    return sb_buf_append(b, s + run, n - run);
}

/* name{a="x",b="y"[,le="..."]} */
static int put_series_name(sb_buf *b, const sb_mfamily *f, const char *suffix, const sb_mseries *s,
                           const char *le)
{
    int rc = sb_buf_puts(b, f->name);
    if (rc == 0 && suffix) rc = sb_buf_puts(b, suffix);
    if (rc || (f->nlabels == 0 && !le)) return rc;
    rc = sb_buf_append(b, "{", 1);
    for (size_t k = 0; rc == 0 && k < f->nlabels; k++) {
        if (k) rc = sb_buf_append(b, ",", 1);
        if (rc == 0) rc = sb_buf_puts(b, f->labels[k]);
        if (rc == 0) rc = sb_buf_append(b, "=\"", 2);
        if (rc == 0) rc = put_escaped(b, s->values[k], s->lens[k], 1);
        if (rc == 0) rc = sb_buf_append(b, "\"", 1);
    }
    if (rc == 0 && le) rc = sb_buf_printf(b, "%sle=\"%s\"", f->nlabels ? "," : "", le);
    if (rc == 0) rc = sb_buf_append(b, "}", 1);
    return rc;
}

static int render_series(sb_buf *b, const sb_mfamily *f, sb_mseries *s)
{
    int rc;
    switch (f->type) {
    case SB_METRIC_COUNTER:
        rc = put_series_name(b, f, NULL, s, NULL);
        return rc ? rc : sb_buf_printf(b, " %" PRIu64 "\n", (uint64_t)atomic_load(&s->v));
    case SB_METRIC_GAUGE:
        rc = put_series_name(b, f, NULL, s, NULL);
        return rc ? rc : sb_buf_printf(b, " %" PRId64 "\n", (int64_t)atomic_load(&s->g));
    default:
        break;
    }
    /* read the buckets once: _count is the +Inf bucket, so the two always agree */
    uint64_t cum = 0;
    rc = 0;
    for (size_t i = 0; rc == 0 && i < SB_METRICS_NBUCKETS; i++) {
        cum += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
        rc = put_series_name(b, f, "_bucket", s, bounds_txt[i]);
        if (rc == 0) rc = sb_buf_printf(b, " %" PRIu64 "\n", cum);
    }
    uint64_t sum = atomic_load_explicit(&s->v, memory_order_relaxed);
    if (rc == 0) rc = put_series_name(b, f, "_sum", s, NULL);
    if (rc == 0)
        rc = sb_buf_printf(b, " %" PRIu64 ".%06" PRIu64 "\n", sum / 1000000, sum % 1000000);
    if (rc == 0) rc = put_series_name(b, f, "_count", s, NULL);
    if (rc == 0) rc = sb_buf_printf(b, " %" PRIu64 "\n", cum);
    return rc;
}

int sb_metrics_render(sb_metrics *m, sb_buf *out)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    if (!m) return 0;
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    for (sb_mfamily *f = m->head; f && rc == 0; f = f->next) {
        rc = sb_buf_printf(out, "# HELP %s ", f->name);
        if (rc == 0) rc = put_escaped(out, f->help, strlen(f->help), 0);
        if (rc == 0) rc = sb_buf_printf(out, "\n# TYPE %s %s\n", f->name, types[f->type]);
        size_t n = atomic_load_explicit(&f->n, memory_order_acquire);
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = render_series(out, f, f->order[i]);
        if (rc == 0 && f->other && atomic_load_explicit(&f->other_used, memory_order_relaxed))
            rc = render_series(out, f, f->other);
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}
