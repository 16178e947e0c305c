/* metrics.h — counters, gauges and histograms rendered in the Prometheus
 * text format. Thread-safe; series are created on first use. */
#ifndef AC_CORE_METRICS_H
#define AC_CORE_METRICS_H

#include <stddef.h>

typedef struct ac_metrics ac_metrics;

/* Creates an empty registry. Caller frees. */
ac_metrics *ac_metrics_new(void);
void ac_metrics_free(ac_metrics *m);

/* Declares a metric's help text and type ("counter", "gauge",
 * "histogram"); series of undeclared metrics render as untyped. */
void ac_metrics_describe(ac_metrics *m, const char *name, const char *type, const char *help);

/* Adds delta to the counter/gauge series name{labels}. labels is the
 * inside of the braces, already escaped (ac_metrics_label helps), or "". */
void ac_metrics_add(ac_metrics *m, const char *name, const char *labels, double delta);

/* Sets a gauge series. */
void ac_metrics_set(ac_metrics *m, const char *name, const char *labels, double value);

/* Records one observation in the histogram series name{labels} (buckets
 * from 5 ms to 10 s, in seconds). */
void ac_metrics_observe(ac_metrics *m, const char *name, const char *labels, double value);

/* Appends key="value" (escaped) to out, comma-separating from what is
 * there. */
void ac_metrics_label(char *out, size_t size, const char *key, const char *value);

/* The whole registry as Prometheus text (caller frees). */
char *ac_metrics_render(ac_metrics *m);

#endif
