/* SPDX-License-Identifier: Apache-2.0 */
/* tests/query/test_eval_limits.c: engine limits and options (promql.md 6): max_samples at the
 * limit and one past, the evaluation timeout, per-call lookback override, option validation
 * and the stats of a result. */
#include "test_eval.h"

#include <pthread.h>

#include "common/alloc.h"
#include "common/metrics.h"

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

Test(eval_limits, self_metrics)
{
    struct mp_metrics_registry *reg;
    cr_assert_eq(mp_metrics_registry_create(&reg), 0);
    struct query_engine_opts eo;
    query_engine_opts_init(&eo);
    eo.metrics = reg;
    struct ev_fx f;
    ev_open_opts(&f, &eo);
    ev_load(&f, "metric{a=\"1\"}", S(10), "0+10x10");
    cr_assert_eq(ev_instant(&f, "count_over_time(metric[30s])", S(100)), 0);
    cr_assert_eq(ev_instant(&f, "metric", S(100)), 0);
    struct mp_buf b;
    mp_buf_init(&b, 0);
    cr_assert_eq(mp_metrics_render(reg, &b), 0);
    cr_assert_eq(mp_buf_append(&b, "", 1), 0);
    cr_assert_not_null(strstr(b.data, "\nprometheus_engine_query_samples_total 5\n"), "%s",
                       b.data);
    cr_assert_not_null(strstr(b.data, "\nprometheus_engine_queries 0\n"));
    cr_assert_not_null(strstr(b.data, "\nprometheus_engine_queries_concurrent_max 20\n"));
    mp_buf_fini(&b);
    ev_close(&f);
    mp_metrics_registry_destroy(reg);
}

struct par {
    struct ev_fx *f;
    int ok;
};

static void *par_run(void *arg)
{
    struct par *p = arg;
    for (int i = 0; i < 20; i++) {
        struct query_result r = {0};
        struct mp_err err = {0};
        if (query_exec_range(p->f->eng, p->f->db, "sum(metric)", 11, 0, S(100), S(10), NULL, &r,
                             &err) == 0 &&
            r.nseries == 1 && r.series[0].npoints == 11)
            p->ok++;
        query_result_fini(&r);
    }
    return NULL;
}

Test(eval_limits, queries_queue_behind_max_concurrency)
{
    struct query_engine_opts eo;
    query_engine_opts_init(&eo);
    eo.max_concurrency = 1;
    struct ev_fx f;
    ev_open_opts(&f, &eo);
    ev_load(&f, "metric{a=\"1\"}", S(10), "0+10x10");
    pthread_t th[3];
    struct par p[3] = {{&f, 0}, {&f, 0}, {&f, 0}};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, par_run, &p[i]), 0);
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(p[i].ok, 20);
    }
    ev_close(&f);
}

/* Every fallible allocation of a query, failed in turn: the query reports MP_ENOMEM (or the
 * storage error it maps to) and leaks nothing (the sanitizer build checks), until it passes
 * with the same result as without injection. */
Test(eval_limits, injected_allocation_failures)
{
    static const char *const qs[] = {
        "sum by (job) (rate(m[1m])) / on(job) group_left count by (job) (m)",
        "topk(2, m) or count_values(\"v\", m)",
        "max_over_time(sort_desc(m)[1m:20s]) and absent(nope{a=\"b\"})",
        "-timestamp(m offset 10s) + quantile(0.5, m)",
    };
    struct ev_fx f;
    ev_open(&f);
    ev_load(&f, "m{job=\"a\", i=\"1\"}", S(10), "0+1x10");
    ev_load(&f, "m{job=\"a\", i=\"2\"}", S(10), "0+2x10");
    ev_load(&f, "m{job=\"b\", i=\"3\"}", S(10), "5 stale 7+1x8");
    for (size_t q = 0; q < sizeof qs / sizeof qs[0]; q++) {
        cr_assert_eq(ev_range(&f, qs[q], S(50), S(100), S(10)), 0, "%s: %s", qs[q], f.err.msg);
        size_t want = f.r.nseries;
        int failures = 0;
        for (uint64_t k = 1; k < 5000; k++) {
            query_result_fini(&f.r);
            memset(&f.err, 0, sizeof f.err);
            mp_alloc_fail_at(k);
            int rc = query_exec_range(f.eng, f.db, qs[q], strlen(qs[q]), S(50), S(100), S(10),
                                      NULL, &f.r, &f.err);
            mp_alloc_fail_at(0);
            if (rc == 0) {
                cr_assert_eq(f.r.nseries, want, "%s: failure %llu", qs[q], (unsigned long long)k);
                break;
            }
            failures++;
            cr_assert(rc == MP_ENOMEM || rc == MP_EIO, "%s: allocation %llu: rc %d (%s)", qs[q],
                      (unsigned long long)k, rc, f.err.msg);
            cr_assert_eq(f.r.nseries, 0);
        }
        cr_assert_gt(failures, 10, "%s", qs[q]);
    }
    ev_close(&f);
}

Test(eval_limits, no_storage)
{
    struct query_engine_opts eo;
    query_engine_opts_init(&eo);
    struct query_engine *e;
    cr_assert_eq(query_engine_create(&eo, &e, NULL), 0);
    struct query_result r = {0};
    cr_assert_eq(query_exec_instant(e, NULL, "vector(1) or up", 15, 0, NULL, &r, NULL), 0);
    cr_assert_eq(r.nseries, 1);
    query_result_fini(&r);
    query_engine_destroy(e);
}
