/* SPDX-License-Identifier: Apache-2.0 */
/* tests/query/test_stats_cancel.c: the query statistics of query.h (sample totals as
 * Prometheus counts them, per-step totals, phase timings) and cancellation (a caller's token,
 * its poll hook, the engine's shutdown flag; in evaluation and in the concurrency queue).
 * Threads only where a query must hold the single concurrency slot; every wait is on a
 * condition the other side sets, never on time. */
#include "test_eval.h"

#include "test_cancel_holder.h"

#define S(x) ((int64_t)((x) * 1000))

TestSuite(stats_cancel);

static void load(struct ev_fx *f)
{
    ev_load(f, "metric{a=\"1\"}", S(10), "0+10x10");
    ev_load(f, "metric{a=\"2\"}", S(10), "0+1x10");
}

static int exec_range(struct ev_fx *f, const char *q, int64_t s, int64_t e, int64_t step,
                      const struct query_exec_opts *o)
{
    query_result_fini(&f->r);
    memset(&f->err, 0, sizeof f->err);
    return query_exec_range(f->eng, f->db, q, strlen(q), s, e, step, o, &f->r, &f->err);
}

static int exec_instant(struct ev_fx *f, const char *q, int64_t t, const struct query_exec_opts *o)
{
    query_result_fini(&f->r);
    memset(&f->err, 0, sizeof f->err);
    return query_exec_instant(f->eng, f->db, q, strlen(q), t, o, &f->r, &f->err);
}

static void expect_total(struct ev_fx *f, const char *q, int64_t t, int64_t want)
{
    cr_assert_eq(ev_instant(f, q, t), 0, "%s: %s", q, f->err.msg);
    cr_expect_eq(f->r.stats.total_queryable_samples, want, "%s: %lld, want %lld", q,
                 (long long)f->r.stats.total_queryable_samples, (long long)want);
}

Test(stats_cancel, totals)
{
    struct ev_fx f;
    ev_open(&f);
    load(&f);
    expect_total(&f, "metric", S(100), 2);
    expect_total(&f, "metric{a=\"1\"}", S(100), 1);
    expect_total(&f, "nothing", S(100), 0);
    expect_total(&f, "1 + 2", S(100), 0);
    /* a window counts all of its samples: [70s, 100s] holds 4 per series */
    expect_total(&f, "rate(metric[30s])", S(100), 8);
    expect_total(&f, "metric[30s]", S(100), 8);
    expect_total(&f, "sum(metric) + sum(metric)", S(100), 4);
    /* a subquery argument counts through its windows only (its inner selector: not) */
    expect_total(&f, "max_over_time(metric[30s:10s])", S(100), 8);
    /* a bare subquery counts what its inner evaluation read */
    expect_total(&f, "metric[30s:10s]", S(100), 8);
    /* range: each step counts again */
    cr_assert_eq(ev_range(&f, "metric", 0, S(30), S(10)), 0);
    cr_expect_eq(f.r.stats.total_queryable_samples, 8);
    cr_assert_eq(ev_range(&f, "count_over_time(metric[20s])", S(20), S(40), S(10)), 0);
    cr_expect_eq(f.r.stats.total_queryable_samples, 18);
    cr_expect_null(f.r.stats.samples_per_step); /* not asked for */
    const struct query_stats *st = &f.r.stats;
    cr_expect_geq(st->exec_total_ns, st->eval_total_ns);
    cr_expect_geq(st->eval_total_ns, 0);
    cr_expect_geq(st->exec_queue_ns, 0);
    cr_expect_geq(st->prepare_ns, 0);
    cr_expect_geq(st->inner_eval_ns, 0);
    cr_expect_geq(st->result_sort_ns, 0);
    cr_expect_gt(st->exec_total_ns, 0);
    ev_close(&f);
}

Test(stats_cancel, per_step)
{
    struct query_engine_opts eo;
    query_engine_opts_init(&eo);
    eo.per_step_stats = true;
    struct ev_fx f;
    ev_open_opts(&f, &eo);
    load(&f);
    struct query_exec_opts o = {.per_step_stats = true};
    cr_assert_eq(exec_range(&f, "count_over_time(metric[20s])", S(20), S(40), S(10), &o), 0);
    const struct query_stats *st = &f.r.stats;
    cr_assert_eq(st->nsteps, 3);
    cr_assert_not_null(st->samples_per_step);
    cr_expect_eq(st->step_start_ms, S(20));
    cr_expect_eq(st->step_ms, S(10));
    for (size_t i = 0; i < 3; i++)
        cr_expect_eq(st->samples_per_step[i], 6, "step %zu: %lld", i,
                     (long long)st->samples_per_step[i]);
    /* series that exist only at some steps: a="3" has samples at 0s and 10s */
    ev_load(&f, "metric{a=\"3\"}", S(10), "5 5");
    cr_assert_eq(exec_range(&f, "metric", 0, S(30), S(10), &o), 0);
    cr_assert_eq(st->nsteps, 4);
    int64_t want[] = {3, 3, 3, 3}; /* a=3 lasts by the lookback delta */
    for (size_t i = 0; i < 4; i++)
        cr_expect_eq(st->samples_per_step[i], want[i], "step %zu", i);
    cr_expect_eq(st->total_queryable_samples, 12);
    /* instant: one step at the query time */
    cr_assert_eq(exec_instant(&f, "metric[30s:10s]", S(100), &o), 0);
    cr_assert_eq(st->nsteps, 1);
    cr_expect_eq(st->step_start_ms, S(100));
    cr_expect_eq(st->samples_per_step[0], 12); /* 3 series x 4 inner steps */
    /* the call alone does not turn it on */
    cr_assert_eq(exec_instant(&f, "metric", S(100), NULL), 0);
    cr_expect_null(st->samples_per_step);
    ev_close(&f);

    /* nor does the engine alone */
    ev_open(&f);
    load(&f);
    cr_assert_eq(exec_instant(&f, "metric", S(100), &o), 0);
    cr_expect_null(f.r.stats.samples_per_step);
    cr_expect_eq(f.r.stats.total_queryable_samples, 2);
    ev_close(&f);
}

/* ---- cancellation ---- */

static bool never(void *ctx)
{
    (void)ctx;
    return false;
}

Test(stats_cancel, token_set_before)
{
    struct ev_fx f;
    ev_open(&f);
    load(&f);
    struct query_cancel tok;
    query_cancel_init(&tok, never, NULL);
    cr_assert(!query_cancel_is_set(&tok));
    struct query_exec_opts o = {.cancel = &tok};
    cr_assert_eq(exec_instant(&f, "metric", S(100), &o), 0, "%s", f.err.msg);
    query_cancel_set(&tok);
    cr_assert(query_cancel_is_set(&tok));
    cr_assert_eq(exec_instant(&f, "metric", S(100), &o), MP_ECANCELED);
    cr_expect_str_eq(f.err.msg, "query was canceled in query queue");
    cr_expect_eq(f.r.nseries, 0);
    ev_close(&f);
}

/* A hook that cancels its own token on the first poll (made in the queue, where it answers
 * "not yet"), so the evaluation's first check stops the query. */
static bool cancel_self(void *ctx)
{
    query_cancel_set(ctx);
    return false;
}

static bool says_gone(void *ctx)
{
    int *calls = ctx;
    (*calls)++;
    return true;
}

Test(stats_cancel, in_evaluation)
{
    struct ev_fx f;
    ev_open(&f);
    load(&f);
    struct query_cancel tok;
    query_cancel_init(&tok, cancel_self, &tok);
    struct query_exec_opts o = {.cancel = &tok};
    cr_assert_eq(exec_range(&f, "rate(metric[30s])", 0, S(100), S(1), &o), MP_ECANCELED);
    cr_expect_str_eq(f.err.msg, "query was canceled in expression evaluation");
    cr_expect_eq(f.r.nseries, 0);
    /* a hook that reports the client gone at once: the queue notices it */
    int calls = 0;
    query_cancel_init(&tok, says_gone, &calls);
    cr_assert_eq(exec_instant(&f, "metric", S(100), &o), MP_ECANCELED);
    cr_expect_str_eq(f.err.msg, "query was canceled in query queue");
    cr_expect_eq(calls, 1);
    cr_expect(query_cancel_is_set(&tok));
    ev_close(&f);
}

/* Cancels on its second poll: the first one was made before the query found the queue full. */
static bool second_poll(void *ctx)
{
    int *calls = ctx;
    return ++*calls >= 2;
}

Test(stats_cancel, in_queue_and_shutdown)
{
    struct query_engine_opts eo;
    query_engine_opts_init(&eo);
    eo.max_concurrency = 1;
    struct ev_fx f;
    ev_open_opts(&f, &eo);
    load(&f);
    struct cancel_holder h;
    cancel_holder_start(&h, f.eng, f.db, "metric", S(100));
    /* a token cancelled while waiting for the slot */
    int calls = 0;
    struct query_cancel tok;
    query_cancel_init(&tok, second_poll, &calls);
    struct query_exec_opts o = {.cancel = &tok};
    cr_assert_eq(exec_instant(&f, "metric", S(100), &o), MP_ECANCELED);
    cr_expect_str_eq(f.err.msg, "query was canceled in query queue");
    cr_expect_eq(calls, 2);
    /* shutdown: queued and later queries are refused, the running one stops at its next
     * check */
    query_engine_cancel_all(f.eng);
    cr_assert_eq(exec_instant(&f, "metric", S(100), NULL), MP_ECANCELED);
    cr_expect_str_eq(f.err.msg, "query was canceled in query queue");
    cancel_holder_finish(&h);
    cr_expect_eq(h.rc, MP_ECANCELED);
    cr_expect_str_eq(h.err.msg, "query was canceled in expression evaluation");
    query_engine_cancel_all(NULL);
    ev_close(&f);
}
