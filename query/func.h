/* SPDX-License-Identifier: Apache-2.0 */
/* query/func.h: helpers shared by the function implementations (query/func*.c) and, for the
 * numeric pieces (Kahan-Neumaier increment, quantile), by the evaluator's aggregations and
 * tests/query. Private to query/ and tests/query. No state; thread-safe. */
#ifndef QUERY_FUNC_H
#define QUERY_FUNC_H

#include <math.h>

#include "query/eval.h"

/* Kahan-Neumaier increment of 2.55 (promql.md 3.0): adds inc to *sum, compensation in *c.
 * An infinite sum resets the compensation. */
static inline void query_kahan_inc(double inc, double *sum, double *c)
{
    double t = *sum + inc;
    if (isinf(t))
        *c = 0;
    else if (fabs(*sum) >= fabs(inc))
        *c += (*sum - t) + inc;
    else
        *c += (inc - t) + *sum;
    *sum = t;
}

/* A quantile parameter outside [0, 1]: *out is NaN (q NaN), -Inf or +Inf and true is returned. */
static inline bool query_quantile_outside(double q, double *out)
{
    if (isnan(q) || q < 0 || q > 1) {
        *out = isnan(q) ? NAN : q < 0 ? -INFINITY : INFINITY;
        return true;
    }
    return false;
}

/* promql.md 3.6: the q-quantile of vals[0..n) (sorted in place, NaN first). NaN for n == 0 or
 * q NaN, -Inf for q < 0, +Inf for q > 1. */
double query_quantile(double q, double *vals, size_t n);

/* Appends v as Go's fmt %g prints a float64: the shortest digits that round-trip, in exponent
 * form ("1e+06", "1.5e-05") when the decimal exponent is < -4 or >= 6, else plain ("0.5");
 * "NaN", "+Inf", "-Inf". MP_ENOMEM/MP_ELIMIT from the buffer. */
MP_NODISCARD int query_fmt_go_g(struct mp_buf *out, double v);
/* Go's fmt %f: six decimals, "NaN", "+Inf", "-Inf". */
MP_NODISCARD int query_fmt_go_f(struct mp_buf *out, double v);

/* Appends an output element whose value changed meaning: __name__ is dropped (or, with
 * delayed name removal, marked). A new reference to ls is taken. 0 or MP_ENOMEM (err set). */
MP_NODISCARD int query_func_push_dropped(struct qcall *c, const struct mp_labels *ls, double v,
                                         struct mp_err *err);
/* Appends an element that keeps its labels and its drop_name mark (last_over_time). */
MP_NODISCARD int query_func_push_kept(struct qcall *c, const struct mp_labels *ls,
                                      bool drop_name, double v, struct mp_err *err);
/* The warning for a quantile parameter outside [0, 1] ("quantile value should be between 0 and
 * 1, got %g"); 0 if q is fine or the warning was added, MP_ENOMEM (err set). */
MP_NODISCARD int query_func_warn_quantile(struct qcall *c, double q, struct mp_err *err);
/* MP_ENOMEM with a message. */
int query_func_oom(struct mp_err *err);

/* A range-vector function reduced to its per-window kernel, for the evaluator's per-series
 * loop: the one-argument functions whose value depends only on the window's points, its end
 * and its range (rate, increase, delta, irate, idelta, resets, changes, deriv, and the
 * *_over_time functions without a parameter). query_func_kernel gives NULL for the others.
 * query_kernel_value computes the value the function would give for one window ending at
 * end_ms (the step's @/offset-adjusted time); false when it emits nothing. Labels, name
 * dropping and annotations are the caller's. */
struct query_kernel;
const struct query_kernel *query_func_kernel(qfunc_fn *f);
bool query_kernel_value(const struct query_kernel *k, const struct query_point *p, size_t n,
                        int64_t end_ms, int64_t range_ms, double *out);

/* The implementations, by family (func_range.c, func_hist.c, func_label.c). */
qfunc_fn query_func_rate, query_func_increase, query_func_delta, query_func_irate,
    query_func_idelta, query_func_resets, query_func_changes, query_func_deriv,
    query_func_predict_linear, query_func_holt_winters, query_func_sum_over_time,
    query_func_avg_over_time, query_func_count_over_time, query_func_min_over_time,
    query_func_max_over_time, query_func_last_over_time, query_func_present_over_time,
    query_func_quantile_over_time, query_func_stddev_over_time, query_func_stdvar_over_time,
    query_func_mad_over_time;
qfunc_fn query_func_histogram_quantile;
qfunc_fn query_func_label_replace, query_func_label_join;

#endif
