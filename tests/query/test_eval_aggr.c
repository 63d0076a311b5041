/* SPDX-License-Identifier: Apache-2.0 */
/* tests/query/test_eval_aggr.c: every aggregation operator (promql.md 4) through the engine:
 * grouping, group order, the exact per-group algorithms (Kahan sum, 2.55 avg, Welford
 * stddev/stdvar, NaN handling of min/max), topk/bottomk heaps, quantile, count_values, limitk,
 * limit_ratio, parameter errors and warnings, and an aggregation over range-query steps. */
#include "test_eval.h"

#define S(x) ((int64_t)((x) * 1000))
#define MA1 "{__name__=\"m\", i=\"1\", job=\"a\"}"
#define MA2 "{__name__=\"m\", i=\"2\", job=\"a\"}"
#define MB3 "{__name__=\"m\", i=\"3\", job=\"b\"}"

static void load_m(struct ev_fx *f)
{
    ev_add(f, "m{job=\"a\", i=\"1\"}", 0, 1);
    ev_add(f, "m{job=\"a\", i=\"2\"}", 0, 2);
    ev_add(f, "m{job=\"b\", i=\"3\"}", 0, 4);
}

static void open_exp(struct ev_fx *f)
{
    struct query_engine_opts eo;
    query_engine_opts_init(&eo);
    eo.parse.experimental_functions = true;
    ev_open_opts(f, &eo);
}

Test(eval_aggr, grouping_and_simple_ops)
{
    struct ev_fx f;
    ev_open(&f);
    load_m(&f);
    EV_VEC(&f, "sum(m)", S(10), {"{}", 7});
    EV_VEC_ORDERED(&f, "sum by (job) (m)", S(10), {"{job=\"a\"}", 3}, {"{job=\"b\"}", 4});
    EV_VEC(&f, "sum without (i) (m)", S(10), {"{job=\"a\"}", 3}, {"{job=\"b\"}", 4});
    EV_VEC(&f, "sum by (__name__) (m)", S(10), {"{__name__=\"m\"}", 7});
    EV_VEC(&f, "sum by (nope) (m)", S(10), {"{}", 7});
    EV_VEC(&f, "count(m)", S(10), {"{}", 3});
    EV_VEC(&f, "avg by (job) (m)", S(10), {"{job=\"a\"}", 1.5}, {"{job=\"b\"}", 4});
    EV_VEC(&f, "min(m)", S(10), {"{}", 1});
    EV_VEC(&f, "max by (job) (m)", S(10), {"{job=\"a\"}", 2}, {"{job=\"b\"}", 4});
    EV_VEC(&f, "group by (job) (m)", S(10), {"{job=\"a\"}", 1}, {"{job=\"b\"}", 1});
    EV_VEC(&f, "stdvar by (job) (m)", S(10), {"{job=\"a\"}", 0.25}, {"{job=\"b\"}", 0});
    EV_VEC(&f, "stddev by (job) (m)", S(10), {"{job=\"a\"}", 0.5}, {"{job=\"b\"}", 0});
    ev_expect_empty(&f, "sum(nothing)", S(10));
    ev_close(&f);
}

/* Welford as promql.md 4.2, in the same operation order. */
static double welford_var(const double *v, size_t n)
{
    double count = 1, mean = v[0], m2 = 0;
    for (size_t i = 1; i < n; i++) {
        count++;
        double d = v[i] - mean;
        mean += d / count;
        m2 += d * (v[i] - mean);
    }
    return m2 / count;
}

Test(eval_aggr, exact_float_algorithms)
{
    struct ev_fx f;
    ev_open(&f);
    /* Kahan: plain summation would give 0 */
    ev_add(&f, "k{i=\"1\"}", 0, 1e100);
    ev_add(&f, "k{i=\"2\"}", 0, 1);
    ev_add(&f, "k{i=\"3\"}", 0, -1e100);
    EV_VEC(&f, "sum(k)", S(1), {"{}", 1});
    EV_VEC(&f, "avg(k)", S(1), {"{}", 1.0 / 3});
    /* avg switches to the incremental mean when the sum overflows */
    ev_add(&f, "big{i=\"1\"}", 0, 1e308);
    ev_add(&f, "big{i=\"2\"}", 0, 1e308);
    EV_VEC(&f, "avg(big)", S(1), {"{}", 1e308});
    EV_VEC(&f, "sum(big)", S(1), {"{}", INFINITY});
    /* Welford */
    static const double w[] = {2, 4, 4, 4, 5, 5, 7, 9};
    char name[64];
    for (size_t i = 0; i < 8; i++) {
        snprintf(name, sizeof name, "w{i=\"%zu\"}", i);
        ev_add(&f, name, 0, w[i]);
    }
    double var = welford_var(w, 8);
    cr_assert(fabs(var - 4) < 1e-12);
    EV_VEC(&f, "stdvar(w)", S(1), {"{}", var});
    EV_VEC(&f, "stddev(w)", S(1), {"{}", sqrt(var)});
    ev_close(&f);
}

Test(eval_aggr, nan_and_inf)
{
    struct ev_fx f;
    ev_open(&f);
    ev_add(&f, "x{i=\"1\"}", 0, NAN);
    ev_add(&f, "x{i=\"2\"}", 0, 5);
    ev_add(&f, "infs{i=\"1\"}", 0, INFINITY);
    ev_add(&f, "infs{i=\"2\"}", 0, 1);
    ev_add(&f, "pm{i=\"1\"}", 0, INFINITY);
    ev_add(&f, "pm{i=\"2\"}", 0, -INFINITY);
    /* a NaN current value is always replaced */
    EV_VEC(&f, "min(x)", S(1), {"{}", 5});
    EV_VEC(&f, "max(x)", S(1), {"{}", 5});
    EV_VEC(&f, "sum(x)", S(1), {"{}", NAN});
    EV_VEC(&f, "stddev(x)", S(1), {"{}", NAN});
    EV_VEC(&f, "avg(infs)", S(1), {"{}", INFINITY});
    EV_VEC(&f, "sum(infs)", S(1), {"{}", INFINITY});
    EV_VEC(&f, "avg(pm)", S(1), {"{}", NAN});
    EV_VEC(&f, "stdvar(infs)", S(1), {"{}", NAN});
    EV_VEC(&f, "count(x)", S(1), {"{}", 2});
    EV_VEC(&f, "quantile(0.5, x)", S(1), {"{}", NAN});
    ev_close(&f);
}

Test(eval_aggr, topk_and_bottomk)
{
    struct ev_fx f;
    ev_open(&f);
    load_m(&f);
    ev_add(&f, "t{i=\"1\"}", 0, NAN);
    ev_add(&f, "t{i=\"2\"}", 0, 1);
    ev_add(&f, "t{i=\"3\"}", 0, 3);
    EV_VEC_ORDERED(&f, "topk(2, m)", S(10), {MB3, 4}, {MA2, 2});
    EV_VEC_ORDERED(&f, "bottomk(2, m)", S(10), {MA1, 1}, {MA2, 2});
    EV_VEC_ORDERED(&f, "topk by (job) (1, m)", S(10), {MA2, 2}, {MB3, 4});
    EV_VEC_ORDERED(&f, "bottomk by (job) (1, m)", S(10), {MA1, 1}, {MB3, 4});
    /* NaN loses in both directions and sorts last */
    EV_VEC(&f, "topk(1, t)", S(10), {"{__name__=\"t\", i=\"3\"}", 3});
    EV_VEC(&f, "bottomk(1, t)", S(10), {"{__name__=\"t\", i=\"2\"}", 1});
    EV_VEC_ORDERED(&f, "topk(5, t)", S(10), {"{__name__=\"t\", i=\"3\"}", 3},
                   {"{__name__=\"t\", i=\"2\"}", 1}, {"{__name__=\"t\", i=\"1\"}", NAN});
    EV_VEC_ORDERED(&f, "bottomk(5, t)", S(10), {"{__name__=\"t\", i=\"2\"}", 1},
                   {"{__name__=\"t\", i=\"3\"}", 3}, {"{__name__=\"t\", i=\"1\"}", NAN});
    /* k is truncated */
    EV_VEC(&f, "topk(1.9, m)", S(10), {MB3, 4});
    ev_expect_empty(&f, "topk(0, m)", S(10));
    ev_expect_empty(&f, "topk(-1, m)", S(10));
    ev_expect_err(&f, "topk(scalar(nothing), m)", S(10), MP_EEXEC,
                  "Scalar value NaN overflows int64");
    ev_expect_err(&f, "topk(1e19, m)", S(10), MP_EEXEC, "Scalar value 1e+19 overflows int64");
    /* range query: a series is present only at steps where it is in the top k */
    ev_add(&f, "m{job=\"a\", i=\"1\"}", S(10), 10);
    cr_assert_eq(ev_range(&f, "topk(1, m)", 0, S(10), S(10)), 0, "%s", f.err.msg);
    cr_assert_eq(f.r.nseries, 2);
    ev_expect_points(&f, 0, MA1, "10:10");
    ev_expect_points(&f, 1, MB3, "0:4");
    ev_close(&f);
}

Test(eval_aggr, quantile_and_its_warning)
{
    struct ev_fx f;
    ev_open(&f);
    ev_add(&f, "q{i=\"1\"}", 0, 10);
    ev_add(&f, "q{i=\"2\"}", 0, 30);
    ev_add(&f, "q{i=\"3\"}", 0, 40);
    ev_add(&f, "q{i=\"4\"}", 0, 50);
    EV_VEC(&f, "quantile(0.25, q)", S(1), {"{}", 25});
    EV_VEC(&f, "quantile(0, q)", S(1), {"{}", 10});
    EV_VEC(&f, "quantile(1, q)", S(1), {"{}", 50});
    cr_assert_eq(f.r.nwarnings, 0);
    EV_VEC(&f, "quantile(2, q)", S(1), {"{}", INFINITY});
    cr_assert_eq(f.r.nwarnings, 1);
    cr_assert_str_eq(f.r.warnings[0],
                     "PromQL warning: quantile value should be between 0 and 1, got 2");
    EV_VEC(&f, "quantile(-0.5, q)", S(1), {"{}", -INFINITY});
    ev_close(&f);
}

Test(eval_aggr, count_values)
{
    struct ev_fx f;
    ev_open(&f);
    load_m(&f);
    ev_add(&f, "c{job=\"a\", i=\"1\"}", 0, 1);
    ev_add(&f, "c{job=\"a\", i=\"2\"}", 0, 1);
    ev_add(&f, "c{job=\"b\", i=\"3\"}", 0, 1e21);
    EV_VEC(&f, "count_values(\"v\", c)", S(1), {"{v=\"1\"}", 2},
           {"{v=\"1000000000000000000000\"}", 1});
    EV_VEC(&f, "count_values by (job) (\"v\", c)", S(1), {"{job=\"a\", v=\"1\"}", 2},
           {"{job=\"b\", v=\"1000000000000000000000\"}", 1});
    EV_VEC(&f, "count_values without (i) (\"v\", c)", S(1), {"{job=\"a\", v=\"1\"}", 2},
           {"{job=\"b\", v=\"1000000000000000000000\"}", 1});
    /* the value label replaces an existing label of that name */
    EV_VEC(&f, "count_values(\"job\", m)", S(1), {"{job=\"1\"}", 1}, {"{job=\"2\"}", 1},
           {"{job=\"4\"}", 1});
    ev_expect_err(&f, "count_values(\"a-b\", m)", S(1), MP_EEXEC,
                  "invalid label name \"a-b\"");
    ev_close(&f);
}

Test(eval_aggr, limitk_and_limit_ratio)
{
    struct ev_fx f;
    open_exp(&f);
    load_m(&f);
    EV_VEC(&f, "limitk(1, m)", S(1), {MA1, 1});
    EV_VEC(&f, "limitk by (job) (1, m)", S(1), {MA1, 1}, {MB3, 4});
    EV_VEC(&f, "limitk(10, m)", S(1), {MA1, 1}, {MA2, 2}, {MB3, 4});
    EV_VEC(&f, "limit_ratio(1, m)", S(1), {MA1, 1}, {MA2, 2}, {MB3, 4});
    EV_VEC(&f, "limit_ratio(-1, m)", S(1), {MA1, 1}, {MA2, 2}, {MB3, 4});
    ev_expect_empty(&f, "limit_ratio(0, m)", S(1));
    EV_VEC(&f, "limit_ratio(2, m)", S(1), {MA1, 1}, {MA2, 2}, {MB3, 4});
    cr_assert_eq(f.r.nwarnings, 1);
    cr_assert_str_eq(f.r.warnings[0], "PromQL warning: ratio value should be between -1 and 1, "
                                      "got 2, capping to 1");
    ev_expect_err(&f, "limit_ratio(scalar(nothing), m)", S(1), MP_EEXEC,
                  "Ratio value NaN is NaN");
    /* r and r - 1 select complementary sets */
    cr_assert_eq(ev_instant(&f, "limit_ratio(0.5, m)", S(1)), 0);
    size_t a = f.r.nseries;
    cr_assert_eq(ev_instant(&f, "limit_ratio(-0.5, m)", S(1)), 0);
    cr_assert_eq(a + f.r.nseries, 3);
    ev_close(&f);
}

Test(eval_aggr, steps_of_a_range_query)
{
    struct ev_fx f;
    ev_open(&f);
    ev_load(&f, "r{job=\"a\", i=\"1\"}", S(10), "1 2 3");
    ev_load(&f, "r{job=\"a\", i=\"2\"}", S(10), "_ 10 stale");
    ev_load(&f, "r{job=\"b\", i=\"3\"}", S(10), "_ _ 100");
    cr_assert_eq(ev_range(&f, "sum by (job) (r)", 0, S(20), S(10)), 0, "%s", f.err.msg);
    cr_assert_eq(f.r.nseries, 2);
    ev_expect_points(&f, 0, "{job=\"a\"}", "0:1 10:12 20:3");
    ev_expect_points(&f, 1, "{job=\"b\"}", "20:100");
    /* the parameter is taken at the first step only (2.55) */
    cr_assert_eq(ev_range(&f, "topk(scalar(count(r)), r)", 0, S(20), S(10)), 0, "%s",
                 f.err.msg);
    cr_assert_eq(f.r.nseries, 3);
    ev_expect_points(&f, 0, "{__name__=\"r\", i=\"1\", job=\"a\"}", "0:1");
    ev_expect_points(&f, 1, "{__name__=\"r\", i=\"2\", job=\"a\"}", "10:10");
    ev_expect_points(&f, 2, "{__name__=\"r\", i=\"3\", job=\"b\"}", "20:100");
    ev_close(&f);
}
