/* SPDX-License-Identifier: Apache-2.0 */
/* tests/query/test_eval_at.c: step-invariant evaluation of `@` (promql.md 2.5) and the
 * aggregation fast path over range functions (labels kept, name treated as dropped). A range
 * query evaluates an invariant sub-expression once and repeats it; every step must still
 * equal the instant query at that time (which has one step, so nothing is repeated), bit for
 * bit, with the same labels and series set. The samples read show that the sub-expression
 * really was evaluated once. */
#include "test_eval.h"

#define S(x) ((int64_t)((x) * 1000))

/* x{a="1"}, x{a="2"}: 0, 1, 2, ... and 0, 2, 4, ... every 10 s up to 1000 s; c_total grows
 * by 0.1 per step (irregular sums), y{a="1"} 5 every 10 s. */
static void load(struct ev_fx *f)
{
    ev_load(f, "x{a=\"1\", g=\"p\"}", S(10), "0+1x100");
    ev_load(f, "x{a=\"2\", g=\"p\"}", S(10), "0+2x100");
    ev_load(f, "x{a=\"3\", g=\"q\"}", S(10), "1+0.1x100");
    ev_load(f, "c_total{a=\"1\"}", S(10), "0+0.1x100");
    ev_load(f, "c_total{a=\"2\"}", S(10), "3+0.7x100");
    ev_load(f, "y{a=\"1\"}", S(10), "5x100");
}

/* Index of the series of r with the labels of ls, or r->nseries. */
static size_t find_series(const struct query_result *r, const struct mp_labels *ls)
{
    for (size_t i = 0; i < r->nseries; i++)
        if (mp_labels_equal(r->series[i].labels, ls))
            return i;
    return r->nseries;
}

/* The range query [start, end] / step of q equals, at every step, the instant query. */
static void expect_steps_equal_instants(struct ev_fx *f, const char *q, int64_t start,
                                        int64_t end, int64_t step)
{
    cr_assert_eq(ev_range(f, q, start, end, step), 0, "%s: %s", q, f->err.msg);
    struct query_result range = f->r;
    f->r = (struct query_result){0};
    size_t points = 0;
    for (int64_t t = start; t <= end; t += step) {
        cr_assert_eq(ev_instant(f, q, t), 0, "%s @ %lld: %s", q, (long long)t, f->err.msg);
        size_t got = 0;
        if (f->r.type == QUERY_TYPE_SCALAR) {
            cr_assert_eq(range.nseries, 1, "%s: scalar range has %zu series", q, range.nseries);
            const struct query_series *s = &range.series[0];
            size_t k = (size_t)((t - start) / step);
            cr_assert_lt(k, s->npoints);
            cr_assert_eq(s->points[k].t_ms, t);
            cr_assert(ev_same(s->points[k].v, f->r.scalar.v), "%s at %lld: %.17g vs %.17g", q,
                      (long long)t, s->points[k].v, f->r.scalar.v);
            points++;
            continue;
        }
        for (size_t i = 0; i < f->r.nseries; i++) {
            const struct query_series *in = &f->r.series[i];
            size_t j = find_series(&range, in->labels);
            char buf[256];
            cr_assert_lt(j, range.nseries, "%s at %lld: no range series %s", q, (long long)t,
                         ev_fmt(in->labels, buf, sizeof buf));
            const struct query_series *rs = &range.series[j];
            size_t k;
            for (k = 0; k < rs->npoints && rs->points[k].t_ms != t; k++)
                ;
            cr_assert_lt(k, rs->npoints, "%s at %lld: %s has no point", q, (long long)t,
                         ev_fmt(in->labels, buf, sizeof buf));
            cr_assert(ev_same(rs->points[k].v, in->points[0].v), "%s at %lld %s: %.17g vs %.17g",
                      q, (long long)t, ev_fmt(in->labels, buf, sizeof buf), rs->points[k].v,
                      in->points[0].v);
            got++;
        }
        points += got;
    }
    size_t total = 0;
    for (size_t i = 0; i < range.nseries; i++)
        total += range.series[i].npoints;
    cr_assert_eq(total, points, "%s: %zu range points, %zu instant points", q, total, points);
    query_result_fini(&range);
}

Test(eval_at, invariant_expressions_equal_per_step_evaluation)
{
    static const char *const queries[] = {
        "x @ 100",
        "x @ 100 offset 20s",
        "-x @ 100",
        "rate(c_total[1m] @ 300)",
        "sum by (g) (rate(c_total[1m] @ 300) + x @ 50)",
        "sum(irate(c_total[1m] @ 300)) by (a)",
        "avg(x @ 100) * 2 + 1",
        "histogram_quantile(0.5, x @ 100)",
        "x @ 100 + x",
        "x + on(a) group_left rate(c_total[1m] @ 300)",
        "topk(1, x @ 100)",
        "topk(scalar(y), x @ 100)",
        "quantile(0.3, x @ 100)",
        "count_values(\"v\", x @ 100)",
        "sort(x @ 100)",
        "sum(sort_desc(x @ 100))",
        "label_replace(x @ 100, \"b\", \"$1\", \"a\", \"(.*)\")",
        "absent(nope @ 100)",
        "absent_over_time(nope[1m] @ 100)",
        "scalar(sum(x @ 100))",
        "vector(1)",
        "pi()",
        "1 + 2",
        "timestamp(x @ 45)",
        "timestamp(sum(x @ 45))",
        "time() - x @ 100",
        "predict_linear(x[1m] @ 100, 60)",
        "hour(x @ 100)",
        "max_over_time((x @ 100)[2m:30s])",
        "max_over_time(rate(c_total[1m] @ 300)[2m:30s])",
        "max_over_time(x[2m:30s] @ 200)",
        "sum_over_time((x @ 100 + x)[1m:20s])",
        "x @ 100 > 50",
        "x @ 100 and x",
        "x @ 100 or y @ 10",
    };
    struct ev_fx f;
    ev_open(&f);
    load(&f);
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
        expect_steps_equal_instants(&f, queries[i], S(200), S(500), S(30));
        expect_steps_equal_instants(&f, queries[i], S(0), S(60), S(7));
    }
    ev_close(&f);
}

Test(eval_at, delayed_name_removal_too)
{
    struct query_engine_opts eo;
    query_engine_opts_init(&eo);
    eo.delayed_name_removal = true;
    struct ev_fx f;
    ev_open_opts(&f, &eo);
    load(&f);
    expect_steps_equal_instants(&f, "sum by (g) (rate(c_total[1m] @ 300) + x @ 50)", S(200),
                                S(500), S(30));
    expect_steps_equal_instants(&f, "-x @ 100", S(200), S(500), S(30));
    expect_steps_equal_instants(&f, "sum by (a) (rate({__name__=~\"x|c_total\"}[1m] @ 300))",
                                S(200), S(500), S(30));
    ev_close(&f);
}

Test(eval_at, invariant_sub_expression_is_read_once)
{
    struct ev_fx f;
    ev_open(&f);
    load(&f);
    /* the window [240 s, 300 s] of two series: 7 samples each, read once for 11 steps and
     * counted at each (Prometheus's stats); held: the 14 samples and the 2 rates, not 11
     * steps of rates (22 points) */
    cr_assert_eq(ev_range(&f, "sum(rate(c_total[1m] @ 300))", S(0), S(100), S(10)), 0, "%s",
                 f.err.msg);
    cr_assert_eq(f.r.nseries, 1);
    cr_assert_eq(f.r.series[0].npoints, 11);
    cr_assert_eq(f.r.stats.total_queryable_samples, 11 * 14);
    cr_assert_lt(f.r.stats.peak_samples, 22, "peak %lld", (long long)f.r.stats.peak_samples);
    for (size_t k = 0; k < 11; k++) {
        cr_assert_eq(f.r.series[0].points[k].t_ms, S(10) * (int64_t)k);
        cr_assert(ev_same(f.r.series[0].points[k].v, f.r.series[0].points[0].v));
    }
    cr_assert_eq(ev_range(&f, "y + y @ 50", S(0), S(100), S(10)), 0, "%s", f.err.msg);
    ev_expect_points(&f, 0, "{a=\"1\"}", "0:10 10:10 20:10 30:10 40:10 50:10 60:10 70:10 80:10 "
                                         "90:10 100:10");
    cr_assert_eq(f.r.stats.total_queryable_samples, 22);
    /* timestamp() of an @ selector keeps its per-step special case */
    cr_assert_eq(ev_range(&f, "timestamp(y @ 45)", S(0), S(20), S(10)), 0, "%s", f.err.msg);
    ev_expect_points(&f, 0, "{a=\"1\"}", "0:40 10:40 20:40");
    ev_close(&f);
}

Test(eval_at, limits_count_the_repeated_points)
{
    struct query_engine_opts eo;
    query_engine_opts_init(&eo);
    eo.max_samples = 20;
    struct ev_fx f;
    ev_open_opts(&f, &eo);
    load(&f);
    /* 3 series x 11 steps do not fit, even though the selector reads 3 samples */
    cr_assert_eq(ev_range(&f, "x @ 100", S(0), S(100), S(10)), MP_ELIMIT, "%s", f.err.msg);
    cr_assert_eq(ev_range(&f, "y @ 100", S(0), S(100), S(10)), 0, "%s", f.err.msg);
    cr_assert_eq(f.r.series[0].npoints, 11);
    ev_close(&f);
}

Test(eval_at, grouping_fast_path_keeps_errors_and_names)
{
    struct ev_fx f;
    ev_open(&f);
    ev_add(&f, "p_total{a=\"1\"}", 0, 1);
    ev_add(&f, "p_total{a=\"1\"}", S(10), 3);
    ev_add(&f, "q_total{a=\"1\"}", 0, 2);
    ev_add(&f, "q_total{a=\"1\"}", S(10), 6);
    const char *msg = "vector cannot contain metrics with the same labelset";
    /* the name is not fixed by the selector: the collision still fails */
    ev_expect_err(&f, "sum(rate({__name__=~\"p_total|q_total\"}[1m]))", S(10), MP_EEXEC, msg);
    EV_VEC(&f, "sum(rate(p_total[1m]))", S(10), {"{}", 0.05});
    EV_VEC(&f, "sum by (a) (increase(p_total[1m]))", S(10), {"{a=\"1\"}", 3});
    EV_VEC(&f, "sum without () (rate(p_total[1m]))", S(10), {"{a=\"1\"}", 0.05});
    EV_VEC(&f, "max by (__name__) (rate(p_total[1m]))", S(10), {"{}", 0.05});
    EV_VEC(&f, "sum by (__name__) (last_over_time(p_total[1m]))", S(10),
           {"{__name__=\"p_total\"}", 3});
    EV_VEC(&f, "topk(1, rate(p_total[1m]))", S(10), {"{a=\"1\"}", 0.05});
    EV_VEC(&f, "count_values(\"v\", rate(p_total[1m]))", S(10), {"{v=\"0.05\"}", 1});
    ev_close(&f);
}
