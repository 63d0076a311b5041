/* SPDX-License-Identifier: Apache-2.0 */
/* common/metrics.h: self-metrics registry rendered as Prometheus text format 0.0.4.
 *
 * Every module registers its own counters, gauges and histograms here; web/ renders the
 * registry on /metrics. Output matches client_golang's expfmt: families sorted by name, each
 * with "# HELP" and "# TYPE"; children sorted by label values; label names printed in sorted
 * order with histogram "le" last; values as strconv.FormatFloat(v, 'g', -1, 64) ("0", "1",
 * "1.23456789e+08", "+Inf", "NaN"); label values escape \\ \" \n, HELP escapes \\ \n.
 * Families without children (an unused vector) are left out, as Gather does.
 *
 * Thread safety: everything is thread-safe. Updates (mp_counter_*, mp_gauge_*,
 * mp_histogram_observe) are lock-free atomics on 64-byte aligned cells, for hot paths.
 * Registration and vector child lookup take a lock; cache the child pointer where the label
 * values are fixed. Rendering snapshots the family list under the registry lock and calls
 * gauge callbacks without holding it. Lock order: registry lock, then a vector's lock.
 *
 * Lifetime: the registry owns every family and child; pointers returned by the registration
 * and lookup functions stay valid until mp_metrics_registry_destroy. Children are never
 * removed.
 *
 * Why a global default registry (STYLE 2.8 keeps globals to the logger and allocator): like
 * the logger, self-metrics are registered from every module at init time, and /metrics must
 * see all of them. mp_metrics_default() is that registry; tests create their own. */
#ifndef COMMON_METRICS_H
#define COMMON_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/str.h"

enum mp_metric_type {
    MP_METRIC_COUNTER,
    MP_METRIC_GAUGE,
    MP_METRIC_HISTOGRAM,
    MP_METRIC_UNTYPED,
};

struct mp_metrics_registry; /* opaque */
struct mp_metrics_vec;      /* opaque: one family with label names and children */
struct mp_counter;          /* opaque, lock-free */
struct mp_gauge;            /* opaque, lock-free */
struct mp_histogram;        /* opaque, lock-free */

/* Upper bounds of client_golang DefBuckets, as an initializer:
 * static const double b[] = MP_METRICS_DEFAULT_BUCKETS; (a macro, not an exported array,
 * so that ASan builds define no unprefixed __odr_asan symbol). */
#define MP_METRICS_DEFAULT_BUCKETS {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

MP_NODISCARD int mp_metrics_registry_create(struct mp_metrics_registry **out);
void mp_metrics_registry_destroy(struct mp_metrics_registry *r); /* NULL is a no-op */
/* Process-wide registry, created on first use, never destroyed. */
struct mp_metrics_registry *mp_metrics_default(void);

/* Registration. name must match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*
 * without a leading "__" (histograms may not use "le"), no duplicates; help is copied.
 * Registering a name again with the same type, label names and buckets returns the existing
 * metric (so a module can be initialised twice against the default registry); a different
 * description gives MP_EEXISTS. Bad names: MP_EINVAL. Messages go to err. */
MP_NODISCARD int mp_metrics_counter_register(struct mp_metrics_registry *r, const char *name,
                                             const char *help, struct mp_counter **out,
                                             struct mp_err *err);
MP_NODISCARD int mp_metrics_gauge_register(struct mp_metrics_registry *r, const char *name,
                                           const char *help, struct mp_gauge **out,
                                           struct mp_err *err);
/* bounds: strictly increasing finite upper bounds, without +Inf (added implicitly). */
MP_NODISCARD int mp_metrics_histogram_register(struct mp_metrics_registry *r, const char *name,
                                               const char *help, const double *bounds,
                                               size_t nbounds, struct mp_histogram **out,
                                               struct mp_err *err);
/* A value computed at scrape time (type COUNTER, GAUGE or UNTYPED). fn is called from the
 * rendering thread without registry locks held; it must be thread-safe and must not
 * register metrics. ctx must outlive the registry. */
typedef double mp_metrics_value_fn(void *ctx);
MP_NODISCARD int mp_metrics_func_register(struct mp_metrics_registry *r, enum mp_metric_type type,
                                          const char *name, const char *help,
                                          mp_metrics_value_fn *fn, void *ctx,
                                          struct mp_err *err);
/* A labelled family (COUNTER, GAUGE or HISTOGRAM; bounds only for HISTOGRAM). label_names
 * are copied and may be given in any order. */
MP_NODISCARD int mp_metrics_vec_register(struct mp_metrics_registry *r, enum mp_metric_type type,
                                         const char *name, const char *help,
                                         const char *const *label_names, size_t nlabels,
                                         const double *bounds, size_t nbounds,
                                         struct mp_metrics_vec **out, struct mp_err *err);

/* Child for one tuple of label values, given in the order of the label names at registration
 * (exactly nlabels strings, copied; an empty string is a legal value). Creates the child on
 * first use (small fixed allocation, aborts on OOM like mp_xmalloc). Returns NULL when the
 * vector has a different type. Thread-safe; takes the vector's read lock (write lock on
 * creation). */
struct mp_counter *mp_metrics_vec_counter(struct mp_metrics_vec *v, const char *const *values);
struct mp_gauge *mp_metrics_vec_gauge(struct mp_metrics_vec *v, const char *const *values);
struct mp_histogram *mp_metrics_vec_histogram(struct mp_metrics_vec *v,
                                              const char *const *values);

/* Updates. Counters only go up: a negative or NaN add is ignored. */
void mp_counter_inc(struct mp_counter *c);
void mp_counter_add(struct mp_counter *c, double v);
double mp_counter_get(const struct mp_counter *c);
void mp_gauge_set(struct mp_gauge *g, double v);
void mp_gauge_add(struct mp_gauge *g, double v);
void mp_gauge_inc(struct mp_gauge *g);
void mp_gauge_dec(struct mp_gauge *g);
double mp_gauge_get(const struct mp_gauge *g);
/* v lands in the first bucket whose upper bound is >= v (NaN goes to +Inf only). */
void mp_histogram_observe(struct mp_histogram *h, double v);
uint64_t mp_histogram_count(const struct mp_histogram *h);
double mp_histogram_sum(const struct mp_histogram *h);

/* Appends the whole registry in text format 0.0.4 to out (whose cap bounds the size).
 * 0, MP_ENOMEM or MP_ELIMIT; on error out holds a partial page. */
MP_NODISCARD int mp_metrics_render(struct mp_metrics_registry *r, struct mp_buf *out);

/* Value text as client_golang writes it (writeFloat): 0 and -0 are "0", else
 * mp_float_format_go. Returns the length like snprintf; cap 32 always suffices. */
int mp_metrics_format_value(double v, char *buf, size_t cap);

/* Registers the client_golang process collector set read from /proc/self
 * (process_cpu_seconds_total, process_open_fds, process_max_fds,
 * process_virtual_memory_bytes, process_virtual_memory_max_bytes,
 * process_resident_memory_bytes, process_start_time_seconds) plus
 * meshprom_allocator_bytes (live bytes of common/alloc.h) and
 * meshprom_log_messages_suppressed_total. Idempotent. */
MP_NODISCARD int mp_metrics_process_register(struct mp_metrics_registry *r, struct mp_err *err);

#endif
