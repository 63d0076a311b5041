/* SPDX-License-Identifier: Apache-2.0 */
/* tests/query/test_eval_limits.c: engine limits and options (promql.md 6): max_samples at the
 * limit and one past, the evaluation timeout, per-call lookback override, option validation
 * and the stats of a result. */
#include "test_eval.h"

#define S(x) ((int64_t)((x) * 1000))
#define TOO_MANY "query processing would load too many samples into memory in query execution"

Test(eval_limits, max_samples_at_the_limit_and_one_past)
{
    struct query_engine_opts eo;
    query_engine_opts_init(&eo);
    eo.max_samples = 5;
    struct ev_fx f;
    ev_open_opts(&f, &eo);
    ev_load(&f, "metric{a=\"1\"}", S(10), "0+10x10");
    cr_assert_eq(ev_range(&f, "metric", 0, S(40), S(10)), 0, "%s", f.err.msg);
    cr_assert_eq(f.r.series[0].npoints, 5);
    cr_assert_eq(ev_range(&f, "metric", 0, S(50), S(10)), MP_ELIMIT);
    cr_assert_str_eq(f.err.msg, TOO_MANY);
    cr_assert_eq(f.r.nseries, 0);
    /* a range window holds its samples: [40 s, 100 s] has 7 */
    ev_expect_err(&f, "count_over_time(metric[1m])", S(100), MP_ELIMIT, TOO_MANY);
    EV_VEC(&f, "count_over_time(metric[30s])", S(100), {"{a=\"1\"}", 4});
    ev_close(&f);
}

Test(eval_limits, timeout_stops_evaluation)
{
    struct query_engine_opts eo;
    query_engine_opts_init(&eo);
    eo.timeout_ms = 1;
    struct ev_fx f;
    ev_open_opts(&f, &eo);
    ev_load(&f, "metric{a=\"1\"}", S(10), "0+10x10");
    /* millions of inner steps: far longer than 1 ms on any machine */
    ev_expect_err(&f, "sum_over_time(metric[2h:1ms])", S(100), MP_ETIMEOUT,
                  "query timed out in expression evaluation");
    ev_close(&f);
}

Test(eval_limits, lookback_override_and_options)
{
    struct ev_fx f;
    ev_open(&f);
    ev_load(&f, "metric{a=\"1\"}", S(10), "0+10x10");
    struct query_exec_opts o = {.lookback_delta_ms = S(10)};
    query_result_fini(&f.r);
    cr_assert_eq(query_exec_instant(f.eng, f.db, "metric", 6, S(110), &o, &f.r, &f.err), 0);
    cr_assert_eq(f.r.nseries, 1);
    query_result_fini(&f.r);
    cr_assert_eq(query_exec_instant(f.eng, f.db, "metric", 6, S(110) + 1, &o, &f.r, &f.err), 0);
    cr_assert_eq(f.r.nseries, 0);
    struct query_engine_opts eo;
    query_engine_opts_init(&eo);
    cr_assert_eq(eo.lookback_delta_ms, S(300));
    cr_assert_eq(eo.max_samples, 50000000);
    eo.max_concurrency = 0;
    struct query_engine *e = NULL;
    struct mp_err err = {0};
    cr_assert_eq(query_engine_create(&eo, &e, &err), MP_EINVAL);
    cr_assert_null(e);
    query_engine_destroy(NULL);
    ev_close(&f);
}

Test(eval_limits, stats)
{
    struct ev_fx f;
    ev_open(&f);
    ev_load(&f, "metric{a=\"1\"}", S(10), "0+10x10");
    cr_assert_eq(ev_instant(&f, "metric", S(100)), 0);
    cr_assert_eq(f.r.stats.total_queryable_samples, 1);
    cr_assert_geq(f.r.stats.peak_samples, 1);
    cr_assert_eq(ev_instant(&f, "count_over_time(metric[30s])", S(100)), 0);
    cr_assert_eq(f.r.stats.total_queryable_samples, 4);
    cr_assert_geq(f.r.stats.peak_samples, 4);
    cr_assert_eq(ev_range(&f, "metric", 0, S(30), S(10)), 0);
    cr_assert_eq(f.r.stats.total_queryable_samples, 4);
    cr_assert_eq(f.r.stats.peak_samples, 4);
    ev_close(&f);
}
