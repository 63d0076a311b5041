/* SPDX-License-Identifier: Apache-2.0 */
/* tests/query/test_func_range.c: the range-vector functions (promql.md 3.1-3.4, 3.7, 3.8)
 * called through query_func_lookup with hand-built windows. Expected values are the spec's
 * worked examples or were worked out by hand from its formulas in the same operation order
 * (double arithmetic), so they are exact. */
#include "test_func.h"

#define S(sec) ((int64_t)(sec) * 1000)

static const struct query_point counter6[] = {{S(0), 0},  {S(10), 10}, {S(20), 20},
                                              {S(30), 30}, {S(40), 40}, {S(50), 50}};

/* fn over one series of the given points, window [t - range, t]: the number of outputs, and
 * the value of the first in *v */
static size_t run_window(const char *fn, int64_t t, int64_t range, const struct query_point *p,
                         size_t n, double *v)
{
    struct fx f;
    fx_init(&f, t);
    fx_matrix(&f, 0, range);
    fx_window(&f, 0, fx_labels(&f, "__name__", "x_total", NULL), p, n);
    cr_assert_eq(fx_run(&f, fn), 0, "%s: %s", fn, f.err.msg);
    size_t k = f.out.n;
    if (k)
        *v = f.out.s[0].v;
    fx_fini(&f);
    return k;
}

static double one_window(const char *fn, int64_t t, int64_t range, const struct query_point *p,
                         size_t n)
{
    double v = 0;
    cr_assert_eq(run_window(fn, t, range, p, n, &v), 1, "%s", fn);
    return v;
}

static size_t n_outputs(const char *fn, int64_t t, int64_t range, const struct query_point *p,
                        size_t n)
{
    double v;
    return run_window(fn, t, range, p, n, &v);
}

Test(func_rate, spec_worked_values)
{
    /* zero clamp at the start, dEnd = 5 s */
    fx_assert_same(one_window("rate", S(55), S(60), counter6, 6), 0.9166666666666666);
    static const struct query_point reset[] = {{S(0), 100}, {S(10), 110}, {S(20), 5},
                                               {S(30), 15}, {S(40), 25},  {S(50), 35}};
    fx_assert_same(one_window("increase", S(55), S(60), reset, 6), 54);
    fx_assert_same(one_window("rate", S(55), S(60), reset, 6), 0.9);
    static const struct query_point gauge[] = {{S(0), 3},  {S(10), 1}, {S(20), 4},
                                               {S(30), 1}, {S(40), 5}, {S(50), 9}};
    fx_assert_same(one_window("delta", S(55), S(60), gauge, 6), 7.199999999999999);
}

Test(func_rate, threshold_is_tested_before_the_zero_clamp)
{
    /* 2.55: dStart 20 s >= 11 s -> 5 s; dZero 7 s is not below it: 45 (2.42 gave 47) */
    static const struct query_point p[] = {
        {S(20), 7}, {S(30), 17}, {S(40), 27}, {S(50), 37}, {S(60), 47}};
    fx_assert_same(one_window("increase", S(60), S(60), p, 5), 45);
    /* dStart 10 s < threshold, dZero 1 s wins: 20 * 21/20 */
    static const struct query_point z[] = {{S(10), 1}, {S(20), 11}, {S(30), 21}};
    fx_assert_same(one_window("increase", S(30), S(30), z, 3), 21);
    /* delta never clamps: 20 * (20 + 10) / 20 */
    fx_assert_same(one_window("delta", S(30), S(30), z, 3), 30);
}

Test(func_rate, extrapolation_threshold_boundaries)
{
    /* 10 * 1.1 is exactly 11: a gap of 11 s is not "close enough", half an interval is used */
    static const struct query_point at11[] = {{11000, 0}, {21000, 10}, {31000, 20}};
    fx_assert_same(one_window("delta", 31000, 31000, at11, 3), 25);
    static const struct query_point below[] = {{10999, 0}, {20999, 10}, {30999, 20}};
    fx_assert_same(one_window("delta", 30999, 30999, below, 3), 30.999000000000002);
    /* the same at the end */
    static const struct query_point start0[] = {{0, 0}, {10000, 10}, {20000, 20}};
    fx_assert_same(one_window("delta", 31000, 31000, start0, 3), 25);
    fx_assert_same(one_window("delta", 30999, 30999, start0, 3), 30.999000000000002);
}

Test(func_rate, range_seconds_with_milliseconds)
{
    /* range 1.5 s = Duration.Seconds() 1.5; dStart 0.5 s (dZero 1 s is not below it):
     * 1 * ((1 + 0.5 + 0) / 1 / 1.5) */
    static const struct query_point p[] = {{0, 1}, {1000, 2}};
    fx_assert_same(one_window("rate", 1000, 1500, p, 2), 1.0);
}

Test(func_rate, fewer_than_two_samples_give_nothing)
{
    static const struct query_point one[] = {{S(10), 5}};
    cr_assert_eq(n_outputs("rate", S(60), S(60), one, 1), 0);
    cr_assert_eq(n_outputs("increase", S(60), S(60), one, 1), 0);
    cr_assert_eq(n_outputs("delta", S(60), S(60), one, 1), 0);
    cr_assert_eq(n_outputs("irate", S(60), S(60), one, 1), 0);
    cr_assert_eq(n_outputs("idelta", S(60), S(60), one, 1), 0);
    cr_assert_eq(n_outputs("deriv", S(60), S(60), one, 1), 0);
    cr_assert_eq(n_outputs("rate", S(60), S(60), one, 0), 0);
    cr_assert_eq(n_outputs("sum_over_time", S(60), S(60), one, 0), 0);
}

/* rate of counter6 through the call expr at step t (query end end_ms) */
static double rate_expr(const char *expr, int64_t t, int64_t end_ms)
{
    struct fx f;
    fx_init(&f, t);
    f.c.end_ms = end_ms;
    fx_expr(&f, expr);
    fx_matrix(&f, 0, S(60));
    fx_window(&f, 0, fx_labels(&f, "__name__", "x_total", NULL), counter6, 6);
    double v = fx_one(&f, "rate");
    fx_fini(&f);
    return v;
}

Test(func_rate, offset_and_at_move_the_window)
{
    /* all three windows end at 55 s */
    fx_assert_same(rate_expr("rate(x_total[1m] offset 30s)", S(85), S(85)), 0.9166666666666666);
    fx_assert_same(rate_expr("rate(x_total[1m] @ 85 offset 30s)", S(1000), S(1000)),
                   0.9166666666666666);
    fx_assert_same(rate_expr("rate(x_total[1m:10s] @ end())", S(1000), S(55)), 0.9166666666666666);
    fx_assert_same(rate_expr("rate((x_total[1m:10s] offset -5s))", S(50), S(50)),
                   0.9166666666666666);
}

Test(func_rate, names_are_dropped_and_non_counters_get_an_info)
{
    struct fx f;
    fx_init(&f, S(55));
    fx_matrix(&f, 0, S(60));
    fx_window(&f, 0, fx_labels(&f, "__name__", "foo", "job", "a", NULL), counter6, 6);
    fx_window(&f, 0, fx_labels(&f, "__name__", "bar_count", "job", "a", NULL), counter6, 6);
    cr_assert_eq(fx_run(&f, "rate"), 0);
    cr_assert_eq(f.out.n, 2);
    fx_assert_labels(&f, 0, "{job=\"a\"}");
    fx_assert_labels(&f, 1, "{job=\"a\"}");
    cr_assert_eq(f.an.ninfos, 1);
    cr_assert(fx_has_info(&f, "PromQL info: metric might not be a counter, name does not end in "
                              "_total/_sum/_count/_bucket: \"foo\""));
    fx_fini(&f);

    /* delta is for gauges: no info; delayed name removal keeps and marks the name */
    fx_init(&f, S(55));
    f.c.delayed_name_removal = true;
    fx_matrix(&f, 0, S(60));
    fx_window(&f, 0, fx_labels(&f, "__name__", "foo", NULL), counter6, 6);
    cr_assert_eq(fx_run(&f, "delta"), 0);
    cr_assert_eq(f.an.ninfos, 0);
    fx_assert_labels(&f, 0, "{__name__=\"foo\"}");
    cr_assert(f.out.s[0].drop_name);
    cr_assert_eq(f.out.s[0].t_ms, S(55));
    fx_fini(&f);
}

Test(func_irate, last_two_samples)
{
    static const struct query_point p[] = {{S(0), 10}, {S(10), 20}, {S(20), 5}};
    fx_assert_same(one_window("irate", S(30), S(60), p, 3), 0.5); /* reset: 5 / 10 s */
    fx_assert_same(one_window("idelta", S(30), S(60), p, 3), -15);
    static const struct query_point q[] = {{S(0), 10}, {1500, 13}};
    fx_assert_same(one_window("irate", S(30), S(60), q, 2), 2);
    static const struct query_point same_t[] = {{S(1), 1}, {S(1), 2}};
    cr_assert_eq(n_outputs("irate", S(30), S(60), same_t, 2), 0);
}

Test(func_resets_changes, nan_rules)
{
    static const struct query_point p[] = {{S(0), 1},   {S(1), 2}, {S(2), NAN},
                                           {S(3), NAN}, {S(4), 3}, {S(5), 1}};
    fx_assert_same(one_window("resets", S(5), S(60), p, 6), 1);
    fx_assert_same(one_window("changes", S(5), S(60), p, 6), 4);
    fx_assert_same(one_window("resets", S(5), S(60), p, 1), 0);
    fx_assert_same(one_window("changes", S(5), S(60), p, 1), 0);
}

Test(func_over_time, sum_avg_count_min_max_last_present)
{
    static const struct query_point k[] = {{S(0), 1e100}, {S(1), 1}, {S(2), -1e100}};
    fx_assert_same(one_window("sum_over_time", S(2), S(60), k, 3), 1); /* Kahan keeps the 1 */
    static const struct query_point inf[] = {{S(0), INFINITY}, {S(1), 1}};
    fx_assert_same(one_window("sum_over_time", S(2), S(60), inf, 2), INFINITY);
    static const struct query_point a[] = {{S(0), 1}, {S(1), 2}, {S(2), 3}, {S(3), 4}};
    fx_assert_same(one_window("avg_over_time", S(3), S(60), a, 4), 2.5);
    fx_assert_same(one_window("count_over_time", S(3), S(60), a, 4), 4);
    static const struct query_point big[] = {{S(0), 1e308}, {S(1), 1e308}};
    fx_assert_same(one_window("avg_over_time", S(3), S(60), big, 2), 1e308); /* incremental */
    static const struct query_point mixed[] = {{S(0), INFINITY}, {S(1), 5}, {S(2), 7}};
    fx_assert_same(one_window("avg_over_time", S(3), S(60), mixed, 3), INFINITY);
    static const struct query_point nans[] = {{S(0), NAN}, {S(1), 1}, {S(2), NAN}, {S(3), 0.5}};
    fx_assert_same(one_window("min_over_time", S(3), S(60), nans, 4), 0.5);
    fx_assert_same(one_window("max_over_time", S(3), S(60), nans, 4), 1);
    fx_assert_same(one_window("min_over_time", S(3), S(60), nans, 1), NAN);
    fx_assert_same(one_window("last_over_time", S(3), S(60), nans, 4), 0.5);
    fx_assert_same(one_window("present_over_time", S(3), S(60), nans, 1), 1);
}

Test(func_over_time, last_over_time_keeps_the_name)
{
    static const struct query_point p[] = {{S(0), 1}, {S(1), 2}};
    struct fx f;
    fx_init(&f, S(1));
    fx_matrix(&f, 0, S(60));
    fx_window(&f, 0, fx_labels(&f, "__name__", "up", "job", "j", NULL), p, 2);
    fx_assert_same(fx_one(&f, "last_over_time"), 2);
    fx_assert_labels(&f, 0, "{__name__=\"up\", job=\"j\"}");
    fx_fini(&f);
    fx_init(&f, S(1));
    fx_matrix(&f, 0, S(60));
    fx_window(&f, 0, fx_labels(&f, "__name__", "up", "job", "j", NULL), p, 2);
    fx_assert_same(fx_one(&f, "max_over_time"), 2);
    fx_assert_labels(&f, 0, "{job=\"j\"}");
    fx_fini(&f);
}

Test(func_over_time, stddev_stdvar)
{
    static const struct query_point p[] = {{S(0), 2}, {S(1), 4}, {S(2), 4}, {S(3), 4},
                                           {S(4), 5}, {S(5), 5}, {S(6), 7}, {S(7), 9}};
    fx_assert_same(one_window("stdvar_over_time", S(7), S(60), p, 8), 4);
    fx_assert_same(one_window("stddev_over_time", S(7), S(60), p, 8), 2);
    static const struct query_point t[] = {{S(0), 0.1}, {S(1), 0.2}, {S(2), 0.3}};
    fx_assert_same(one_window("stdvar_over_time", S(7), S(60), t, 3), 0.006666666666666664);
    fx_assert_same(one_window("stdvar_over_time", S(7), S(60), t, 1), 0);
}

static double qot(double q, const struct query_point *p, size_t n, const char *warning)
{
    struct fx f;
    fx_init(&f, S(10));
    fx_scalar(&f, 0, q);
    fx_matrix(&f, 1, S(60));
    fx_window(&f, 1, fx_labels(&f, "__name__", "x", NULL), p, n);
    double v = fx_one(&f, "quantile_over_time");
    if (warning) {
        cr_assert_eq(f.an.nwarnings, 1);
        cr_assert(fx_has_warning(&f, warning), "got %s", f.an.warnings[0]);
    } else {
        cr_assert_eq(f.an.nwarnings, 0);
    }
    fx_fini(&f);
    return v;
}

Test(func_over_time, quantile_over_time)
{
    static const struct query_point p[] = {{S(0), 40}, {S(1), 10}, {S(2), 50}, {S(3), 30}};
    fx_assert_same(qot(0.25, p, 4, NULL), 25);
    fx_assert_same(qot(0, p, 4, NULL), 10);
    fx_assert_same(qot(1, p, 4, NULL), 50);
    fx_assert_same(qot(0.5, p, 1, NULL), 40);
    fx_assert_same(qot(2, p, 4, "PromQL warning: quantile value should be between 0 and 1, got 2"),
                   INFINITY);
    fx_assert_same(
        qot(-0.5, p, 4, "PromQL warning: quantile value should be between 0 and 1, got -0.5"),
        -INFINITY);
    fx_assert_same(qot(NAN, p, 4, "PromQL warning: quantile value should be between 0 and 1, got NaN"),
                   NAN);
    fx_assert_same(
        qot(1e6, p, 4, "PromQL warning: quantile value should be between 0 and 1, got 1e+06"),
        INFINITY);
    static const struct query_point n[] = {{S(0), 2}, {S(1), NAN}, {S(2), 1}};
    fx_assert_same(qot(0, n, 3, NULL), NAN); /* NaN sorts first */
    fx_assert_same(qot(1, n, 3, NULL), 2);
}

Test(func_over_time, quantile_warning_needs_a_sample)
{
    struct fx f;
    fx_init(&f, S(10));
    fx_scalar(&f, 0, 5);
    fx_matrix(&f, 1, S(60));
    cr_assert_eq(fx_run(&f, "quantile_over_time"), 0);
    cr_assert_eq(f.out.n, 0);
    cr_assert_eq(f.an.nwarnings, 0);
    fx_fini(&f);
}

Test(func_over_time, mad_over_time)
{
    static const struct query_point p[] = {{S(0), 1}, {S(1), 2}, {S(2), 3}, {S(3), 4}, {S(4), 100}};
    fx_assert_same(one_window("mad_over_time", S(4), S(60), p, 5), 1);
    fx_assert_same(one_window("mad_over_time", S(4), S(60), p, 1), 0);
}

Test(func_linear, deriv_and_predict_linear)
{
    static const struct query_point p[] = {{S(0), 0}, {S(10), 10}, {S(20), 20}};
    fx_assert_same(one_window("deriv", S(20), S(60), p, 3), 1);
    static const struct query_point q[] = {{S(0), 1}, {S(15), 4}, {S(20), 2.5}};
    fx_assert_same(one_window("deriv", S(20), S(60), q, 3), 0.10384615384615384);
    static const struct query_point c[] = {{S(0), 3}, {S(15), 3}};
    fx_assert_same(one_window("deriv", S(20), S(60), c, 2), 0);
    static const struct query_point ci[] = {{S(0), INFINITY}, {S(15), INFINITY}};
    fx_assert_same(one_window("deriv", S(20), S(60), ci, 2), NAN);

    struct fx f;
    fx_init(&f, S(20));
    fx_matrix(&f, 0, S(60));
    fx_scalar(&f, 1, 10);
    fx_window(&f, 0, fx_labels(&f, "__name__", "x", NULL), p, 3);
    fx_assert_same(fx_one(&f, "predict_linear"), 30);
    fx_fini(&f);
    /* the intercept is taken at the step time, offsets do not move it */
    fx_init(&f, S(30));
    fx_expr(&f, "predict_linear(x[1m] offset 10s, 60)");
    fx_matrix(&f, 0, S(60));
    fx_scalar(&f, 1, 60);
    fx_window(&f, 0, fx_labels(&f, "__name__", "x", NULL), q, 3);
    fx_assert_same(fx_one(&f, "predict_linear"), 10.634615384615387);
    fx_fini(&f);
}

static int hw(double sf, double tf, const struct query_point *p, size_t n, double *out,
              char *msg)
{
    struct fx f;
    fx_init(&f, S(10));
    fx_matrix(&f, 0, S(60));
    fx_scalar(&f, 1, sf);
    fx_scalar(&f, 2, tf);
    fx_window(&f, 0, fx_labels(&f, "__name__", "x", NULL), p, n);
    int rc = fx_run(&f, "holt_winters");
    if (rc == 0 && f.out.n == 1)
        *out = f.out.s[0].v;
    else if (rc == 0)
        rc = 1; /* no output */
    strcpy(msg, f.err.msg);
    fx_fini(&f);
    return rc;
}

Test(func_linear, holt_winters)
{
    static const struct query_point p[] = {{S(0), 1}, {S(1), 2}, {S(2), 3}};
    static const struct query_point q[] = {{S(0), 1}, {S(1), 3}, {S(2), 2}, {S(3), 5}, {S(4), 4}};
    double v = 0;
    char msg[MP_ERR_MSG_MAX];
    cr_assert_eq(hw(0.5, 0.5, p, 3, &v, msg), 0);
    fx_assert_same(v, 3);
    cr_assert_eq(hw(0.3, 0.6, q, 5, &v, msg), 0);
    fx_assert_same(v, 5.92584);
    cr_assert_eq(hw(0.5, 0.5, p, 1, &v, msg), 1); /* one sample: nothing */
    cr_assert_eq(hw(1, 0.5, p, 3, &v, msg), MP_EEXEC);
    cr_assert_str_eq(msg, "invalid smoothing factor. Expected: 0 < sf < 1, got: 1.000000");
    cr_assert_eq(hw(0.5, 0, p, 3, &v, msg), MP_EEXEC);
    cr_assert_str_eq(msg, "invalid trend factor. Expected: 0 < tf < 1, got: 0.000000");
    cr_assert_eq(hw(0.5, INFINITY, p, 3, &v, msg), MP_EEXEC);
    cr_assert_str_eq(msg, "invalid trend factor. Expected: 0 < tf < 1, got: +Inf");
    /* NaN passes the checks as in Prometheus */
    cr_assert_eq(hw(NAN, 0.5, p, 3, &v, msg), 0);
    fx_assert_same(v, NAN);
}

Test(func_rate, extreme_offsets_saturate)
{
    /* no overflow (UBSan) on a window far in the past; the value is whatever the arithmetic
     * gives, only the absence of undefined behaviour is checked */
    double v = rate_expr("rate(x_total[1m] offset 292y)", INT64_MIN + 1000, INT64_MIN + 1000);
    (void)v;
}
