/* sb_metrics: process metrics (counters, gauges, fixed-bucket histograms) with bounded label sets,
 * rendered in the Prometheus text exposition format 0.0.4. Lock-free updates (C11 atomics). */
#ifndef SB_METRICS_H
#define SB_METRICS_H
#include <stddef.h>
#include <stdint.h>

#include "core/sb_buf.h"

typedef struct sb_metrics sb_metrics; /* a registry: a list of families */
typedef struct sb_mfamily sb_mfamily; /* one metric name, its type, help and label names */
typedef struct sb_mseries sb_mseries; /* one label combination of a family */

typedef enum { SB_METRIC_COUNTER = 0, SB_METRIC_GAUGE, SB_METRIC_HISTOGRAM } sb_metric_type;

#define SB_METRICS_MAX_LABELS 4
#define SB_METRICS_MAX_SERIES 256 /* default label combinations per family */
#define SB_METRICS_LABEL_MAX 128  /* longer label values are cut (at a UTF-8 boundary) */
#define SB_METRICS_NBUCKETS 15    /* histogram buckets, +Inf included */

/* The histogram bucket upper bounds in seconds (the last, +Inf, is not listed): 0.001 .. 30. */
extern const double sb_metrics_bounds[SB_METRICS_NBUCKETS - 1];

/* A new empty registry; each family holds at most max_series label combinations (0 = default)
 * besides the overflow series. Free with sb_metrics_free (frees every family and series). */
sb_metrics *sb_metrics_new(size_t max_series);
void sb_metrics_free(sb_metrics *m);
/* The process-wide registry (created on first use, never freed). */
sb_metrics *sb_metrics_global(void);

/* Find or create a family. name and label names must match [a-zA-Z_:][a-zA-Z0-9_:]* (labels
 * without ':'), nlabels <= SB_METRICS_MAX_LABELS. Strings are copied. Asking again for an existing
 * name returns the same family when type and labels match, NULL otherwise (or on bad input / out
 * of memory). Thread-safe. */
sb_mfamily *sb_metrics_family(sb_metrics *m, sb_metric_type type, const char *name,
                              const char *help, size_t nlabels, const char *const *label_names);

/* The series for these label values (nlabels strings, NULL taken as ""), created on first use.
 * Once the family holds max_series combinations, new combinations (and the all-"other" one) get
 * the single overflow series whose every label is "other". NULL only when f is NULL or memory is
 * out. Lookup of an existing series is lock-free and allocates nothing. Keep the pointer: series
 * live as long as the registry. */
sb_mseries *sb_metrics_series(sb_mfamily *f, const char *const *values);

/* Updates: thread-safe, lock-free; a NULL series is ignored. */
void sb_metrics_add(sb_mseries *s, uint64_t n);         /* counter */
void sb_metrics_inc(sb_mseries *s);                     /* counter += 1 */
void sb_metrics_set(sb_mseries *s, int64_t v);          /* gauge */
void sb_metrics_gauge_add(sb_mseries *s, int64_t d);    /* gauge += d (d may be negative) */
void sb_metrics_observe_us(sb_mseries *s, uint64_t us); /* histogram, a duration in microseconds */
void sb_metrics_observe(sb_mseries *s, double seconds); /* histogram */

/* Current values, for tests: a counter or gauge value, a histogram's count. */
int64_t sb_metrics_value(const sb_mseries *s);
/* Number of label combinations held (the overflow series not counted). */
size_t sb_metrics_series_count(const sb_mfamily *f);

/* Append the whole exposition (HELP, TYPE, samples; label values escaped) to out. 0, or the
 * sb_buf error. Thread-safe with concurrent updates. */
int sb_metrics_render(sb_metrics *m, sb_buf *out);

/* The Content-Type of the rendering. */
#define SB_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
