/* SPDX-License-Identifier: Apache-2.0 */
/* tests/query/test_eval.c: the evaluation model (promql.md 2): instant selection and its
 * lookback edges, staleness, offset and @ (start()/end()), subquery step alignment, range
 * query steps, timestamp(), absent(), the sort family, __name__ dropping, the duplicate
 * labelset error, result types and the range-query argument errors. Values are worked out by
 * hand from the spec. */
#include "test_eval.h"

#define S(x) ((int64_t)((x) * 1000))

/* metric{a="1"}: 0, 10, ..., 100 at t = 0 s, 10 s, ..., 100 s */
static void load_metric(struct ev_fx *f)
{
    ev_load(f, "metric{a=\"1\"}", S(10), "0+10x10");
}

Test(eval_select, lookback_is_inclusive_at_both_ends)
{
    struct ev_fx f;
    ev_open(&f);
    load_metric(&f);
    EV_VEC(&f, "metric", S(100), {"{__name__=\"metric\", a=\"1\"}", 100});
    EV_VEC(&f, "metric", S(105), {"{__name__=\"metric\", a=\"1\"}", 100});
    /* the last sample at 100 s is still inside [400 s - 5 m, 400 s] */
    EV_VEC(&f, "metric", S(400), {"{__name__=\"metric\", a=\"1\"}", 100});
    ev_expect_empty(&f, "metric", S(400) + 1);
    ev_expect_empty(&f, "metric", -1);
    EV_VEC(&f, "metric", 0, {"{__name__=\"metric\", a=\"1\"}", 0});
    ev_expect_empty(&f, "nothing", S(100));
    ev_close(&f);
}

Test(eval_select, matchers_go_through_the_index)
{
    struct ev_fx f;
    ev_open(&f);
    ev_add(&f, "m{job=\"a\", i=\"1\"}", 0, 1);
    ev_add(&f, "m{job=\"a\", i=\"2\"}", 0, 2);
    ev_add(&f, "m{job=\"b\", i=\"3\"}", 0, 3);
    ev_add(&f, "other{job=\"a\"}", 0, 4);
    EV_VEC(&f, "m{job=\"a\"}", S(10), {"{__name__=\"m\", i=\"1\", job=\"a\"}", 1},
           {"{__name__=\"m\", i=\"2\", job=\"a\"}", 2});
    EV_VEC(&f, "m{job!=\"a\"}", S(10), {"{__name__=\"m\", i=\"3\", job=\"b\"}", 3});
    EV_VEC(&f, "{job=\"a\", i=~\"1|4|\"}", S(10), {"{__name__=\"m\", i=\"1\", job=\"a\"}", 1},
           {"{__name__=\"other\", job=\"a\"}", 4});
    EV_VEC(&f, "{__name__=~\"m|other\", i!~\".+\"}", S(10),
           {"{__name__=\"other\", job=\"a\"}", 4});
    ev_close(&f);
}

Test(eval_select, stale_marker_hides_the_series)
{
    struct ev_fx f;
    ev_open(&f);
    ev_load(&f, "s{a=\"x\"}", S(10), "1 2 stale");
    EV_VEC(&f, "s", S(15), {"{__name__=\"s\", a=\"x\"}", 2});
    ev_expect_empty(&f, "s", S(20));
    ev_expect_empty(&f, "s", S(100));
    /* range selection drops the marker: two real samples */
    EV_VEC(&f, "count_over_time(s[1m])", S(30), {"{a=\"x\"}", 2});
    /* the instant query of a range vector: raw samples without the marker */
    cr_assert_eq(ev_instant(&f, "s[1m]", S(30)), 0, "%s", f.err.msg);
    cr_assert_eq(f.r.type, QUERY_TYPE_MATRIX);
    ev_expect_points(&f, 0, "{__name__=\"s\", a=\"x\"}", "0:1 10:2");
    ev_close(&f);
}

Test(eval_select, offset_and_at)
{
    struct ev_fx f;
    ev_open(&f);
    load_metric(&f);
    const char *l = "{__name__=\"metric\", a=\"1\"}";
    EV_VEC(&f, "metric offset 30s", S(100), {l, 70});
    EV_VEC(&f, "metric offset -20s", S(50), {l, 70});
    EV_VEC(&f, "metric @ 50", S(1000), {l, 50});
    EV_VEC(&f, "metric @ 50 offset 10s", S(1000), {l, 40});
    EV_VEC(&f, "metric @ 55.5", S(0), {l, 50});
    /* the range window is closed: [40 s, 60 s] holds 40, 50, 60 */
    EV_VEC(&f, "count_over_time(metric[20s] @ 60)", S(5000), {"{a=\"1\"}", 3});
    EV_VEC(&f, "count_over_time(metric[20s] offset 40s)", S(100), {"{a=\"1\"}", 3});
    /* range query: @ start() and @ end() pin every step */
    cr_assert_eq(ev_range(&f, "metric @ start()", S(10), S(30), S(10)), 0, "%s", f.err.msg);
    ev_expect_points(&f, 0, l, "10:10 20:10 30:10");
    cr_assert_eq(ev_range(&f, "metric @ end()", S(10), S(30), S(10)), 0, "%s", f.err.msg);
    ev_expect_points(&f, 0, l, "10:30 20:30 30:30");
    cr_assert_eq(ev_range(&f, "metric offset 10s", S(10), S(30), S(10)), 0, "%s", f.err.msg);
    ev_expect_points(&f, 0, l, "10:0 20:10 30:20");
    ev_close(&f);
}

Test(eval_subquery, steps_align_to_absolute_multiples)
{
    struct ev_fx f;
    ev_open(&f);
    load_metric(&f);
    const char *l = "{__name__=\"metric\", a=\"1\"}";
    /* [105 s - 45 s, 105 s]: multiples of 20 s from 60 s */
    cr_assert_eq(ev_instant(&f, "metric[45s:20s]", S(105)), 0, "%s", f.err.msg);
    cr_assert_eq(f.r.type, QUERY_TYPE_MATRIX);
    ev_expect_points(&f, 0, l, "60:60 80:80 100:100");
    cr_assert_eq(ev_instant(&f, "metric[45s:20s] offset 10s", S(105)), 0, "%s", f.err.msg);
    ev_expect_points(&f, 0, l, "60:60 80:80");
    /* default step: the 1 m evaluation interval; first multiple of 60 s >= -20 s is 0 */
    cr_assert_eq(ev_instant(&f, "metric[2m:]", S(100)), 0, "%s", f.err.msg);
    ev_expect_points(&f, 0, l, "0:0 60:60");
    /* negative start: ceiling toward +inf, -20 s; no sample at or before it */
    cr_assert_eq(ev_instant(&f, "metric[25s:20s]", S(5)), 0, "%s", f.err.msg);
    ev_expect_points(&f, 0, l, "0:0");
    cr_assert_eq(ev_instant(&f, "metric[30s:10s] @ 50", S(999)), 0, "%s", f.err.msg);
    ev_expect_points(&f, 0, l, "20:20 30:30 40:40 50:50");
    EV_VEC(&f, "count_over_time(metric[45s:20s])", S(105), {"{a=\"1\"}", 3});
    EV_VEC(&f, "sum_over_time(metric[30s:10s] @ 50)", S(999), {"{a=\"1\"}", 140});
    ev_close(&f);
}

Test(eval_subquery, range_query_of_a_subquery)
{
    struct ev_fx f;
    ev_open(&f);
    load_metric(&f);
    /* at 20 s: 0+10+20; 30 s: 10+20+30; 40 s: 20+30+40 */
    cr_assert_eq(ev_range(&f, "sum_over_time(metric[20s:10s])", S(20), S(40), S(10)), 0, "%s",
                 f.err.msg);
    cr_assert_eq(f.r.nseries, 1);
    ev_expect_points(&f, 0, "{a=\"1\"}", "20:30 30:60 40:90");
    /* nested: the inner subquery of each outer step is evaluated on its own grid */
    EV_VEC(&f, "max_over_time(sum_over_time(metric[10s:10s])[20s:10s])", S(100),
           {"{a=\"1\"}", 190});
    ev_close(&f);
}

Test(eval_range, steps_and_sorting)
{
    struct ev_fx f;
    ev_open(&f);
    load_metric(&f);
    ev_load(&f, "metric{a=\"0\"}", S(10), "_x5 7");
    cr_assert_eq(ev_range(&f, "metric", 0, S(30), S(10)), 0, "%s", f.err.msg);
    cr_assert_eq(f.r.type, QUERY_TYPE_MATRIX);
    cr_assert_eq(f.r.nseries, 1); /* a="0" starts at 60 s: no point, no series */
    ev_expect_points(&f, 0, "{__name__=\"metric\", a=\"1\"}", "0:0 10:10 20:20 30:30");
    /* end not aligned to the step: 0, 25 */
    cr_assert_eq(ev_range(&f, "metric", 0, S(30), S(25)), 0, "%s", f.err.msg);
    ev_expect_points(&f, 0, "{__name__=\"metric\", a=\"1\"}", "0:0 25:20");
    cr_assert_eq(ev_range(&f, "metric", S(50), S(70), S(10)), 0, "%s", f.err.msg);
    cr_assert_eq(f.r.nseries, 2);
    ev_expect_points(&f, 0, "{__name__=\"metric\", a=\"0\"}", "60:7 70:7");
    ev_expect_points(&f, 1, "{__name__=\"metric\", a=\"1\"}", "50:50 60:60 70:70");
    /* scalar expressions give one series without labels */
    cr_assert_eq(ev_range(&f, "time() * 2", 0, S(20), S(10)), 0, "%s", f.err.msg);
    cr_assert_eq(f.r.nseries, 1);
    ev_expect_points(&f, 0, "{}", "0:0 10:20 20:40");
    ev_close(&f);
}

Test(eval_range, argument_errors)
{
    struct ev_fx f;
    ev_open(&f);
    load_metric(&f);
    cr_assert_eq(ev_range(&f, "metric[1m]", 0, S(10), S(10)), MP_EINVAL);
    cr_assert_str_eq(f.err.msg, "invalid expression type \"range vector\" for range query, "
                                "must be Scalar or instant Vector");
    cr_assert_eq(ev_range(&f, "\"s\"", 0, S(10), S(10)), MP_EINVAL);
    cr_assert_str_eq(f.err.msg, "invalid expression type \"string\" for range query, must be "
                                "Scalar or instant Vector");
    cr_assert_eq(ev_range(&f, "metric", 0, S(10), 0), MP_EINVAL);
    cr_assert_eq(ev_range(&f, "metric", S(10), 0, S(1)), MP_EINVAL);
    cr_assert_eq(ev_instant(&f, "metric{", 0), MP_EPARSE);
    cr_assert_eq(strncmp(f.err.msg, "1:", 2), 0, "%s", f.err.msg);
    ev_close(&f);
}

Test(eval_types, scalar_and_string_results)
{
    struct ev_fx f;
    ev_open(&f);
    load_metric(&f);
    ev_expect_scalar(&f, "1 + 2 * 3", S(10), 7);
    ev_expect_scalar(&f, "2 ^ 3 ^ 2", S(10), 512);
    ev_expect_scalar(&f, "-(1) % 0", S(10), NAN);
    ev_expect_scalar(&f, "1 < bool 2", S(10), 1);
    ev_expect_scalar(&f, "scalar(metric)", S(50), 50);
    ev_expect_scalar(&f, "scalar(nothing)", S(50), NAN);
    ev_expect_scalar(&f, "time()", S(12.5), 12.5);
    cr_assert_eq(ev_instant(&f, "(\"hello\")", S(3)), 0, "%s", f.err.msg);
    cr_assert_eq(f.r.type, QUERY_TYPE_STRING);
    cr_assert_str_eq(f.r.string, "hello");
    EV_VEC(&f, "vector(3)", S(1), {"{}", 3});
    ev_close(&f);
}

Test(eval_functions, timestamp_of_selector_and_expression)
{
    struct ev_fx f;
    ev_open(&f);
    load_metric(&f);
    EV_VEC(&f, "timestamp(metric)", S(105), {"{a=\"1\"}", 100});
    EV_VEC(&f, "timestamp(metric offset 10s)", S(105), {"{a=\"1\"}", 90});
    EV_VEC(&f, "timestamp(metric @ 33)", S(105), {"{a=\"1\"}", 30});
    EV_VEC(&f, "timestamp(metric + 1)", S(105), {"{a=\"1\"}", 105});
    cr_assert_eq(ev_range(&f, "timestamp(metric)", S(5), S(25), S(10)), 0, "%s", f.err.msg);
    ev_expect_points(&f, 0, "{a=\"1\"}", "5:0 15:10 25:20");
    ev_close(&f);
}

Test(eval_functions, absent_labels_and_steps)
{
    struct ev_fx f;
    ev_open(&f);
    load_metric(&f);
    ev_load(&f, "s{a=\"x\"}", S(10), "1 2 stale");
    EV_VEC(&f, "absent(nothing{job=\"x\", a=~\"b\", c=\"\"})", S(10), {"{job=\"x\"}", 1});
    EV_VEC(&f, "absent(nothing{job=\"x\", job=\"y\", k=\"v\"})", S(10), {"{k=\"v\"}", 1});
    EV_VEC(&f, "absent(sum(nothing))", S(10), {"{}", 1});
    ev_expect_empty(&f, "absent(metric)", S(10));
    EV_VEC(&f, "absent_over_time(nothing{job=\"a\"}[1m])", S(10), {"{job=\"a\"}", 1});
    ev_expect_empty(&f, "absent_over_time(metric[1m])", S(10));
    EV_VEC(&f, "absent_over_time(nothing[1m:10s])", S(10), {"{}", 1});
    cr_assert_eq(ev_range(&f, "absent(s)", 0, S(40), S(10)), 0, "%s", f.err.msg);
    ev_expect_points(&f, 0, "{}", "20:1 30:1 40:1");
    /* s has samples up to 10 s: the 5 s windows at 20 s and later are empty */
    cr_assert_eq(ev_range(&f, "absent_over_time(s{a=\"x\"}[5s])", 0, S(30), S(10)), 0, "%s",
                 f.err.msg);
    ev_expect_points(&f, 0, "{a=\"x\"}", "20:1 30:1");
    ev_close(&f);
}

Test(eval_functions, sort_orders_instant_vectors)
{
    struct query_engine_opts eo;
    query_engine_opts_init(&eo);
    eo.parse.experimental_functions = true;
    struct ev_fx f;
    ev_open_opts(&f, &eo);
    ev_add(&f, "m{i=\"a\"}", 0, 3);
    ev_add(&f, "m{i=\"b\"}", 0, 1);
    ev_add(&f, "m{i=\"c\"}", 0, NAN);
    ev_add(&f, "m{i=\"d\"}", 0, 2);
    EV_VEC_ORDERED(&f, "sort(m)", S(1), {"{__name__=\"m\", i=\"b\"}", 1},
                   {"{__name__=\"m\", i=\"d\"}", 2}, {"{__name__=\"m\", i=\"a\"}", 3},
                   {"{__name__=\"m\", i=\"c\"}", NAN});
    EV_VEC_ORDERED(&f, "sort_desc(m)", S(1), {"{__name__=\"m\", i=\"a\"}", 3},
                   {"{__name__=\"m\", i=\"d\"}", 2}, {"{__name__=\"m\", i=\"b\"}", 1},
                   {"{__name__=\"m\", i=\"c\"}", NAN});
    ev_add(&f, "n{x=\"a10\"}", 0, 1);
    ev_add(&f, "n{x=\"a9\"}", 0, 2);
    ev_add(&f, "n{x=\"b1\"}", 0, 3);
    EV_VEC_ORDERED(&f, "sort_by_label(n, \"x\")", S(1), {"{__name__=\"n\", x=\"a9\"}", 2},
                   {"{__name__=\"n\", x=\"a10\"}", 1}, {"{__name__=\"n\", x=\"b1\"}", 3});
    EV_VEC_ORDERED(&f, "sort_by_label_desc(n, \"x\")", S(1), {"{__name__=\"n\", x=\"b1\"}", 3},
                   {"{__name__=\"n\", x=\"a10\"}", 1}, {"{__name__=\"n\", x=\"a9\"}", 2});
    ev_close(&f);
}

Test(eval_names, metric_name_dropping)
{
    struct ev_fx f;
    ev_open(&f);
    load_metric(&f);
    EV_VEC(&f, "metric + 1", S(100), {"{a=\"1\"}", 101});
    EV_VEC(&f, "-metric", S(100), {"{a=\"1\"}", -100});
    EV_VEC(&f, "+metric", S(100), {"{__name__=\"metric\", a=\"1\"}", 100});
    EV_VEC(&f, "metric > 50", S(100), {"{__name__=\"metric\", a=\"1\"}", 100});
    EV_VEC(&f, "50 < metric", S(100), {"{__name__=\"metric\", a=\"1\"}", 100});
    EV_VEC(&f, "metric > bool 50", S(100), {"{a=\"1\"}", 1});
    EV_VEC(&f, "last_over_time(metric[1m])", S(100), {"{__name__=\"metric\", a=\"1\"}", 100});
    EV_VEC(&f, "max_over_time(metric[1m])", S(100), {"{a=\"1\"}", 100});
    ev_close(&f);
}

static void load_collision(struct ev_fx *f)
{
    ev_add(f, "x{a=\"1\"}", 0, 1);
    ev_add(f, "y{a=\"1\"}", 0, 2);
}

Test(eval_names, same_labelset_after_dropping_is_an_error)
{
    struct ev_fx f;
    ev_open(&f);
    load_collision(&f);
    const char *msg = "vector cannot contain metrics with the same labelset";
    ev_expect_err(&f, "{__name__=~\"x|y\"} + 1", S(1), MP_EEXEC, msg);
    ev_expect_err(&f, "-{__name__=~\"x|y\"}", S(1), MP_EEXEC, msg);
    ev_expect_err(&f, "max_over_time({__name__=~\"x|y\"}[1m])", S(1), MP_EEXEC, msg);
    ev_expect_err(&f, "timestamp({__name__=~\"x|y\"})", S(1), MP_EEXEC, msg);
    cr_assert_eq(ev_range(&f, "{__name__=~\"x|y\"} * 2", 0, S(20), S(10)), MP_EEXEC);
    cr_assert_str_eq(f.err.msg, msg);
    /* filters keep the name: no collision */
    EV_VEC(&f, "{__name__=~\"x|y\"} > 0", S(1), {"{__name__=\"x\", a=\"1\"}", 1},
           {"{__name__=\"y\", a=\"1\"}", 2});
    ev_close(&f);
}

Test(eval_names, delayed_name_removal)
{
    struct query_engine_opts eo;
    query_engine_opts_init(&eo);
    eo.delayed_name_removal = true;
    struct ev_fx f;
    ev_open_opts(&f, &eo);
    load_collision(&f);
    /* the name survives until the end, so a filter after the arithmetic still sees it */
    EV_VEC(&f, "({__name__=~\"x|y\"} + 1) and on(__name__) y", S(1), {"{a=\"1\"}", 3});
    EV_VEC(&f, "sum by (__name__) (x * 2)", S(1), {"{}", 2});
    ev_expect_err(&f, "{__name__=~\"x|y\"} + 1", S(1), MP_EEXEC,
                  "vector cannot contain metrics with the same labelset");
    ev_close(&f);
}

Test(eval_functions, rate_of_a_non_counter_gives_an_info)
{
    struct ev_fx f;
    ev_open(&f);
    load_metric(&f);
    ev_load(&f, "req_total", S(10), "0+10x10");
    EV_VEC(&f, "rate(metric[1m])", S(100), {"{a=\"1\"}", 1});
    cr_assert_eq(f.r.ninfos, 1);
    cr_assert_str_eq(f.r.infos[0], "PromQL info: metric might not be a counter, name does not "
                                   "end in _total/_sum/_count/_bucket: \"metric\"");
    EV_VEC(&f, "increase(req_total[1m])", S(100), {"{}", 60});
    cr_assert_eq(f.r.ninfos, 0);
    ev_close(&f);
}

Test(eval_functions, label_replace_checks_the_whole_matrix_label_join_does_not)
{
    struct ev_fx f;
    ev_open(&f);
    ev_add(&f, "x{a=\"1\"}", 0, 1);
    ev_add(&f, "x{a=\"2\"}", S(400), 2);
    /* the two series never share a step, yet their new label sets collide */
    cr_assert_eq(ev_range(&f, "label_replace(x, \"a\", \"z\", \"\", \"\")", 0, S(600), S(100)),
                 MP_EEXEC);
    cr_assert_str_eq(f.err.msg, "vector cannot contain metrics with the same labelset");
    cr_assert_eq(ev_range(&f, "label_join(x, \"a\", \"\", \"nope\")", 0, S(600), S(100)), 0, "%s",
                 f.err.msg);
    cr_assert_eq(f.r.nseries, 2);
    size_t first = f.r.series[0].npoints == 4 ? 0 : 1; /* equal label sets: either order */
    ev_expect_points(&f, first, "{__name__=\"x\"}", "0:1 100:1 200:1 300:1");
    ev_expect_points(&f, 1 - first, "{__name__=\"x\"}", "400:2 500:2 600:2");
    EV_VEC(&f, "label_replace(x, \"b\", \"$1\", \"a\", \"(.*)\")", S(100),
           {"{__name__=\"x\", a=\"1\", b=\"1\"}", 1});
    /* bad arguments fail even without input series */
    ev_expect_err(&f, "label_replace(nothing, \"1x\", \"\", \"a\", \"\")", S(100), MP_EEXEC,
                  "invalid destination label name in label_replace(): 1x");
    ev_close(&f);
}

Test(eval_functions, range_functions_with_at_start_and_end)
{
    struct ev_fx f;
    ev_open(&f);
    load_metric(&f);
    /* every step reads [80 s, 100 s] (end) or [30 s, 50 s] (start): no extrapolation */
    cr_assert_eq(ev_range(&f, "rate(metric[20s] @ end())", S(50), S(100), S(50)), 0, "%s",
                 f.err.msg);
    ev_expect_points(&f, 0, "{a=\"1\"}", "50:1 100:1");
    cr_assert_eq(ev_range(&f, "increase(metric[20s] @ start())", S(50), S(100), S(50)), 0, "%s",
                 f.err.msg);
    ev_expect_points(&f, 0, "{a=\"1\"}", "50:20 100:20");
    cr_assert_eq(ev_range(&f, "max_over_time(metric[20s:10s] @ start())", S(50), S(100), S(50)),
                 0, "%s", f.err.msg);
    ev_expect_points(&f, 0, "{a=\"1\"}", "50:50 100:50");
    ev_close(&f);
}
