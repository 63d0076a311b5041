/* SPDX-License-Identifier: Apache-2.0 */
/* query/func_range.c: the range-vector functions of promql.md 3.1-3.4, 3.7 and 3.8: rate,
 * increase, delta (extrapolated), irate, idelta, resets, changes, the *_over_time family,
 * deriv, predict_linear and holt_winters. Each is called with one step's windows and emits one
 * element per window with at least one point (and whatever else the function requires).
 * Every formula is evaluated in the order Prometheus 2.55 evaluates it, so that results are
 * bit-identical (no fused multiply-add: query/ is built with -ffp-contract=off). */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "query/func.h"
#include "query/query_internal.h"

struct rctx {
    int64_t range_start, range_end; /* the window (rate) */
    int64_t range_ms;
    int64_t t_ms;        /* step time (predict_linear) */
    double p1, p2;       /* scalar parameters */
    bool counter, is_rate;
    double *scratch;     /* n doubles (quantiles) */
};

typedef bool range_fn(const struct query_point *p, size_t n, const struct rctx *x, double *out);

/* a - b, saturated (offsets and @ times come from the query text) */
static int64_t sat_sub(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r))
        return b < 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* a - b wrapping like Go's int64 arithmetic (no undefined behaviour on odd inputs) */
static int64_t wrap_sub(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a - (uint64_t)b);
}

/* The right end of argument i's window: step time - offset, or the @ time - offset (an @ makes
 * the window the same at every step, as Prometheus's at-adjusted offset does). */
static int64_t window_end(const struct qcall *c, size_t i)
{
    const struct query_expr *e = c->expr ? query_call_arg(c->expr, i) : NULL;
    while (e && query_expr_kind(e) == QUERY_PAREN)
        e = query_expr_inner(e);
    if (!e || (query_expr_kind(e) != QUERY_MATRIX_SELECTOR && query_expr_kind(e) != QUERY_SUBQUERY))
        return c->t_ms;
    int64_t off = query_offset_ms(e), at = 0;
    switch (query_at(e, &at)) {
    case QUERY_AT_TIME:
        return sat_sub(at, off);
    case QUERY_AT_START:
        return sat_sub(c->start_ms, off);
    case QUERY_AT_END:
        return sat_sub(c->end_ms, off);
    case QUERY_AT_NONE:
        break;
    }
    return sat_sub(c->t_ms, off);
}

static bool has_suffix(struct mp_str s, const char *suf)
{
    size_t n = strlen(suf);
    return s.len >= n && memcmp(s.ptr + s.len - n, suf, n) == 0;
}

/* rate/increase on a series whose name does not look like a counter: info annotation. */
static int counter_info(struct qcall *c, const struct mp_labels *ls, struct mp_err *err)
{
    struct mp_str name = mp_labels_metric_name(ls);
    if (name.len == 0 || has_suffix(name, "_total") || has_suffix(name, "_sum") ||
        has_suffix(name, "_count") || has_suffix(name, "_bucket"))
        return 0;
    struct mp_buf q;
    mp_buf_init(&q, 0);
    int rc = query_go_quote(&q, name, 0);
    if (rc == 0)
        rc = query_annots_add(c->annots, false,
                              "metric might not be a counter, name does not end in "
                              "_total/_sum/_count/_bucket: %s",
                              q.data);
    mp_buf_fini(&q);
    return rc ? query_func_oom(err) : 0;
}

/* Calls fn on every non-empty window of argument argi and appends its outputs. keep_name:
 * last_over_time keeps __name__; everything else drops it. */
static int each_window(struct qcall *c, size_t argi, range_fn *fn, struct rctx *x, bool keep_name,
                       bool info, struct mp_err *err)
{
    const struct qarg *a = &c->args[argi];
    for (size_t i = 0; i < a->nwin; i++) {
        const struct qwindow *w = &a->win[i];
        double v;
        if (w->n == 0 || !fn(w->p, w->n, x, &v))
            continue;
        int rc = keep_name ? query_func_push_kept(c, w->labels, w->drop_name, v, err)
                           : query_func_push_dropped(c, w->labels, v, err);
        if (rc == 0 && info)
            rc = counter_info(c, w->labels, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- rate, increase, delta (3.1) -------------------------------------------------------- */

/* time.Duration(range).Seconds() for a whole number of milliseconds */
static double range_seconds(int64_t ms)
{
    return (double)(ms / 1000) + (double)((ms % 1000) * 1000000) / 1e9;
}

static bool extrapolated(const struct query_point *p, size_t n, const struct rctx *x, double *out)
{
    if (n < 2)
        return false;
    double result = p[n - 1].v - p[0].v;
    if (x->counter)
        for (size_t i = 1; i < n; i++)
            if (p[i].v < p[i - 1].v)
                result += p[i - 1].v;
    double d_start = (double)wrap_sub(p[0].t_ms, x->range_start) / 1000;
    double d_end = (double)wrap_sub(x->range_end, p[n - 1].t_ms) / 1000;
    double sampled = (double)wrap_sub(p[n - 1].t_ms, p[0].t_ms) / 1000;
    double avg = sampled / (double)(n - 1);
    double threshold = avg * 1.1;
    if (d_start >= threshold)
        d_start = avg / 2;
    if (x->counter && result > 0 && p[0].v >= 0) {
        double d_zero = sampled * (p[0].v / result); /* never extrapolate below zero */
        if (d_zero < d_start)
            d_start = d_zero;
    }
    if (d_end >= threshold)
        d_end = avg / 2;
    double factor = (sampled + d_start + d_end) / sampled;
    if (x->is_rate)
        factor /= range_seconds(x->range_ms);
    *out = result * factor;
    return true;
}

static int rate_like(struct qcall *c, bool counter, bool is_rate, struct mp_err *err)
{
    int64_t end = window_end(c, 0);
    struct rctx x = {.range_start = sat_sub(end, c->args[0].range_ms),
                     .range_end = end,
                     .range_ms = c->args[0].range_ms,
                     .counter = counter,
                     .is_rate = is_rate};
    return each_window(c, 0, extrapolated, &x, false, counter, err);
}

int query_func_rate(struct qcall *c, struct mp_err *err)
{
    return rate_like(c, true, true, err);
}

int query_func_increase(struct qcall *c, struct mp_err *err)
{
    return rate_like(c, true, false, err);
}

int query_func_delta(struct qcall *c, struct mp_err *err)
{
    return rate_like(c, false, false, err);
}

/* ---- irate, idelta (3.2) ---------------------------------------------------------------- */

static bool instant_value(const struct query_point *p, size_t n, const struct rctx *x, double *out)
{
    if (n < 2)
        return false;
    const struct query_point *a = &p[n - 2], *b = &p[n - 1];
    double r = (x->is_rate && b->v < a->v) ? b->v : b->v - a->v;
    int64_t dt = wrap_sub(b->t_ms, a->t_ms);
    if (dt == 0)
        return false;
    if (x->is_rate)
        r /= (double)dt / 1000;
    *out = r;
    return true;
}

int query_func_irate(struct qcall *c, struct mp_err *err)
{
    struct rctx x = {.is_rate = true};
    return each_window(c, 0, instant_value, &x, false, false, err);
}

int query_func_idelta(struct qcall *c, struct mp_err *err)
{
    struct rctx x = {.is_rate = false};
    return each_window(c, 0, instant_value, &x, false, false, err);
}

/* ---- resets, changes (3.3) -------------------------------------------------------------- */

static bool resets(const struct query_point *p, size_t n, const struct rctx *x, double *out)
{
    (void)x;
    size_t k = 0;
    for (size_t i = 1; i < n; i++)
        if (p[i].v < p[i - 1].v)
            k++;
    *out = (double)k;
    return true;
}

static bool changes(const struct query_point *p, size_t n, const struct rctx *x, double *out)
{
    (void)x;
    size_t k = 0;
    for (size_t i = 1; i < n; i++)
        if (p[i].v != p[i - 1].v && !(isnan(p[i].v) && isnan(p[i - 1].v)))
            k++;
    *out = (double)k;
    return true;
}

int query_func_resets(struct qcall *c, struct mp_err *err)
{
    return each_window(c, 0, resets, &(struct rctx){0}, false, false, err);
}

int query_func_changes(struct qcall *c, struct mp_err *err)
{
    return each_window(c, 0, changes, &(struct rctx){0}, false, false, err);
}

/* ---- *_over_time (3.4) ------------------------------------------------------------------ */

static bool sum_ot(const struct query_point *p, size_t n, const struct rctx *x, double *out)
{
    (void)x;
    double s = 0, c = 0;
    for (size_t i = 0; i < n; i++)
        query_kahan_inc(p[i].v, &s, &c);
    *out = isinf(s) ? s : s + c;
    return true;
}

static bool avg_ot(const struct query_point *p, size_t n, const struct rctx *x, double *out)
{
    (void)x;
    double sum = 0, c = 0, count = 0, mean = 0;
    bool incremental = false;
    for (size_t i = 0; i < n; i++) {
        double v = p[i].v;
        count += 1;
        if (!incremental) {
            double ns = sum, nc = c;
            query_kahan_inc(v, &ns, &nc);
            if (count == 1 || !isinf(ns)) {
                sum = ns;
                c = nc;
                continue;
            }
            /* the sum would overflow: continue with an incremental mean */
            incremental = true;
            mean = sum / (count - 1);
            c = c / (count - 1);
        }
        if (isinf(mean)) {
            if (isinf(v) && (mean > 0) == (v > 0))
                continue;
            if (!isinf(v) && !isnan(v))
                continue;
        }
        double corrected = mean + c;
        query_kahan_inc(v / count - corrected / count, &mean, &c);
    }
    *out = incremental ? mean + c : (sum + c) / count;
    return true;
}

static bool count_ot(const struct query_point *p, size_t n, const struct rctx *x, double *out)
{
    (void)p;
    (void)x;
    *out = (double)n;
    return true;
}

static bool min_ot(const struct query_point *p, size_t n, const struct rctx *x, double *out)
{
    (void)x;
    double m = p[0].v;
    for (size_t i = 0; i < n; i++)
        if (p[i].v < m || isnan(m))
            m = p[i].v;
    *out = m;
    return true;
}

static bool max_ot(const struct query_point *p, size_t n, const struct rctx *x, double *out)
{
    (void)x;
    double m = p[0].v;
    for (size_t i = 0; i < n; i++)
        if (p[i].v > m || isnan(m))
            m = p[i].v;
    *out = m;
    return true;
}

static bool last_ot(const struct query_point *p, size_t n, const struct rctx *x, double *out)
{
    (void)x;
    *out = p[n - 1].v;
    return true;
}

static bool present_ot(const struct query_point *p, size_t n, const struct rctx *x, double *out)
{
    (void)p;
    (void)n;
    (void)x;
    *out = 1;
    return true;
}

/* Welford with Kahan on both accumulators; the population variance. */
static double variance(const struct query_point *p, size_t n)
{
    double count = 0, mean = 0, c_mean = 0, aux = 0, c_aux = 0;
    for (size_t i = 0; i < n; i++) {
        count++;
        double delta = p[i].v - (mean + c_mean);
        query_kahan_inc(delta / count, &mean, &c_mean);
        query_kahan_inc(delta * (p[i].v - (mean + c_mean)), &aux, &c_aux);
    }
    return (aux + c_aux) / count;
}

static bool stdvar_ot(const struct query_point *p, size_t n, const struct rctx *x, double *out)
{
    (void)x;
    *out = variance(p, n);
    return true;
}

static bool stddev_ot(const struct query_point *p, size_t n, const struct rctx *x, double *out)
{
    (void)x;
    *out = sqrt(variance(p, n));
    return true;
}

static bool quantile_ot(const struct query_point *p, size_t n, const struct rctx *x, double *out)
{
    for (size_t i = 0; i < n; i++)
        x->scratch[i] = p[i].v;
    *out = query_quantile(x->p1, x->scratch, n);
    return true;
}

static bool mad_ot(const struct query_point *p, size_t n, const struct rctx *x, double *out)
{
    for (size_t i = 0; i < n; i++)
        x->scratch[i] = p[i].v;
    double median = query_quantile(0.5, x->scratch, n);
    for (size_t i = 0; i < n; i++)
        x->scratch[i] = fabs(p[i].v - median);
    *out = query_quantile(0.5, x->scratch, n);
    return true;
}

/* The scratch array for the quantile functions: as long as the longest window. */
static int with_scratch(struct qcall *c, size_t argi, range_fn *fn, struct rctx *x,
                        struct mp_err *err)
{
    const struct qarg *a = &c->args[argi];
    size_t max = 0;
    for (size_t i = 0; i < a->nwin; i++)
        if (a->win[i].n > max)
            max = a->win[i].n;
    if (max == 0)
        return 0;
    if (max > SIZE_MAX / sizeof(double))
        return query_func_oom(err);
    x->scratch = mp_malloc(max * sizeof(double));
    if (!x->scratch)
        return query_func_oom(err);
    int rc = each_window(c, argi, fn, x, false, false, err);
    mp_free(x->scratch);
    return rc;
}

#define OVER_TIME(name, fn, keep)                                                                 \
    int query_func_##name(struct qcall *c, struct mp_err *err)                                    \
    {                                                                                             \
        return each_window(c, 0, fn, &(struct rctx){0}, keep, false, err);                        \
    }
OVER_TIME(sum_over_time, sum_ot, false)
OVER_TIME(avg_over_time, avg_ot, false)
OVER_TIME(count_over_time, count_ot, false)
OVER_TIME(min_over_time, min_ot, false)
OVER_TIME(max_over_time, max_ot, false)
OVER_TIME(last_over_time, last_ot, true)
OVER_TIME(present_over_time, present_ot, false)
OVER_TIME(stddev_over_time, stddev_ot, false)
OVER_TIME(stdvar_over_time, stdvar_ot, false)

int query_func_quantile_over_time(struct qcall *c, struct mp_err *err)
{
    double q = c->args[0].scalar;
    bool any = false; /* Prometheus warns once it evaluates a non-empty window */
    for (size_t i = 0; i < c->args[1].nwin; i++)
        any = any || c->args[1].win[i].n > 0;
    if (any && query_func_warn_quantile(c, q, err))
        return MP_ENOMEM;
    struct rctx x = {.p1 = q};
    return with_scratch(c, 1, quantile_ot, &x, err);
}

int query_func_mad_over_time(struct qcall *c, struct mp_err *err)
{
    struct rctx x = {0};
    return with_scratch(c, 0, mad_ot, &x, err);
}

/* ---- deriv, predict_linear (3.7) -------------------------------------------------------- */

static void linreg(const struct query_point *p, size_t n, int64_t icpt_t, double *slope,
                   double *icpt)
{
    double fn = 0, sx = 0, cx = 0, sy = 0, cy = 0, sxy = 0, cxy = 0, sx2 = 0, cx2 = 0;
    double y0 = p[0].v;
    bool const_y = true;
    for (size_t i = 0; i < n; i++) {
        if (const_y && i > 0 && p[i].v != y0)
            const_y = false;
        fn += 1.0;
        double xv = (double)wrap_sub(p[i].t_ms, icpt_t) / 1e3;
        query_kahan_inc(xv, &sx, &cx);
        query_kahan_inc(p[i].v, &sy, &cy);
        double xy = xv * p[i].v, xx = xv * xv;
        query_kahan_inc(xy, &sxy, &cxy);
        query_kahan_inc(xx, &sx2, &cx2);
    }
    if (const_y) {
        *slope = isinf(y0) ? NAN : 0;
        *icpt = isinf(y0) ? NAN : y0;
        return;
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    double cov = sxy - sx * sy / fn;
    double var = sx2 - sx * sx / fn;
    *slope = cov / var;
    *icpt = sy / fn - *slope * sx / fn;
}

static bool deriv(const struct query_point *p, size_t n, const struct rctx *x, double *out)
{
    (void)x;
    if (n < 2)
        return false;
    double slope, icpt;
    linreg(p, n, p[0].t_ms, &slope, &icpt);
    *out = slope;
    return true;
}

static bool predict(const struct query_point *p, size_t n, const struct rctx *x, double *out)
{
    if (n < 2)
        return false;
    double slope, icpt;
    linreg(p, n, x->t_ms, &slope, &icpt);
    *out = slope * x->p1 + icpt;
    return true;
}

int query_func_deriv(struct qcall *c, struct mp_err *err)
{
    return each_window(c, 0, deriv, &(struct rctx){0}, false, false, err);
}

int query_func_predict_linear(struct qcall *c, struct mp_err *err)
{
    struct rctx x = {.t_ms = c->t_ms, .p1 = c->args[1].scalar};
    return each_window(c, 0, predict, &x, false, false, err);
}

/* ---- per-window kernels (func.h) ------------------------------------------------------- */

struct query_kernel {
    qfunc_fn *f;
    range_fn *fn;
    bool counter, is_rate;
};

static const struct query_kernel kernels[] = {
    {query_func_rate, extrapolated, true, true},
    {query_func_increase, extrapolated, true, false},
    {query_func_delta, extrapolated, false, false},
    {query_func_irate, instant_value, false, true},
    {query_func_idelta, instant_value, false, false},
    {query_func_resets, resets, false, false},
    {query_func_changes, changes, false, false},
    {query_func_sum_over_time, sum_ot, false, false},
    {query_func_avg_over_time, avg_ot, false, false},
    {query_func_count_over_time, count_ot, false, false},
    {query_func_min_over_time, min_ot, false, false},
    {query_func_max_over_time, max_ot, false, false},
    {query_func_last_over_time, last_ot, false, false},
    {query_func_present_over_time, present_ot, false, false},
    {query_func_stddev_over_time, stddev_ot, false, false},
    {query_func_stdvar_over_time, stdvar_ot, false, false},
    {query_func_deriv, deriv, false, false},
};

const struct query_kernel *query_func_kernel(qfunc_fn *f)
{
    for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++)
        if (kernels[i].f == f)
            return &kernels[i];
    return NULL;
}

bool query_kernel_value(const struct query_kernel *k, const struct query_point *p, size_t n,
                        int64_t end_ms, int64_t range_ms, double *out)
{
    /* the rctx of rate_like (irate and the others read only is_rate, or nothing) */
    struct rctx x = {.range_start = sat_sub(end_ms, range_ms),
                     .range_end = end_ms,
                     .range_ms = range_ms,
                     .counter = k->counter,
                     .is_rate = k->is_rate};
    return n > 0 && k->fn(p, n, &x, out);
}

/* ---- holt_winters (3.8) ----------------------------------------------------------------- */

static bool holt_winters(const struct query_point *p, size_t n, const struct rctx *x, double *out)
{
    if (n < 2)
        return false;
    double sf = x->p1, tf = x->p2;
    double s0 = 0, s1 = p[0].v, b = p[1].v - p[0].v;
    for (size_t i = 1; i < n; i++) {
        double xv = sf * p[i].v;
        if (i - 1 != 0) {
            double t1 = tf * (s1 - s0), t2 = (1 - tf) * b;
            b = t1 + t2;
        }
        double y = (1 - sf) * (s1 + b);
        s0 = s1;
        s1 = xv + y;
    }
    *out = s1;
    return true;
}

static int factor_error(struct mp_err *err, const char *what, const char *sym, double v)
{
    struct mp_buf b;
    mp_buf_init(&b, 0);
    if (query_fmt_go_f(&b, v)) {
        mp_buf_fini(&b);
        return query_func_oom(err);
    }
    int rc = mp_err_set(err, MP_EEXEC, "invalid %s factor. Expected: 0 < %s < 1, got: %s", what,
                        sym, b.data);
    mp_buf_fini(&b);
    return rc;
}

int query_func_holt_winters(struct qcall *c, struct mp_err *err)
{
    double sf = c->args[1].scalar, tf = c->args[2].scalar;
    bool any = false; /* Prometheus checks the factors when it evaluates a window */
    for (size_t i = 0; i < c->args[0].nwin; i++)
        any = any || c->args[0].win[i].n > 0;
    if (!any)
        return 0;
    if (sf <= 0 || sf >= 1) /* NaN passes, as in Prometheus */
        return factor_error(err, "smoothing", "sf", sf);
    if (tf <= 0 || tf >= 1)
        return factor_error(err, "trend", "tf", tf);
    struct rctx x = {.p1 = sf, .p2 = tf};
    return each_window(c, 0, holt_winters, &x, false, false, err);
}
