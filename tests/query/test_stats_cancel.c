/* SPDX-License-Identifier: Apache-2.0 */
/* tests/query/test_stats_cancel.c: the query statistics of query.h (sample totals as
 * Prometheus counts them, per-step totals, phase timings) and cancellation (a caller's token,
 * its poll hook, the engine's shutdown flag; in evaluation and in the concurrency queue).
 * Threads only where a query must hold the single concurrency slot; every wait is on a
 * condition the other side sets, never on time. */
#include "test_eval.h"

#include <pthread.h>

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

/* Query A holds the only slot: its hook reports in on the first poll in evaluation and blocks
 * until released. */
struct holder {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int polls;
    bool inside, release;
    struct query_cancel tok;
    struct ev_fx *f;
    struct query_result r;
    struct mp_err err;
    int rc;
};

static bool hold_slot(void *ctx)
{
    struct holder *h = ctx;
    pthread_mutex_lock(&h->mu);
    if (++h->polls == 1) {
        h->tok.next_poll_ns = 0; /* poll again at the first check of the evaluation */
    } else if (!h->inside) {
        h->inside = true;
        pthread_cond_broadcast(&h->cv);
        while (!h->release)
            pthread_cond_wait(&h->cv, &h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    return false;
}

static void *run_holder(void *arg)
{
    struct holder *h = arg;
    struct query_exec_opts o = {.cancel = &h->tok};
    h->rc = query_exec_instant(h->f->eng, h->f->db, "metric", 6, S(100), &o, &h->r, &h->err);
    return NULL;
}

static void holder_start(struct holder *h, struct ev_fx *f, pthread_t *th)
{
    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->f = f;
    query_cancel_init(&h->tok, hold_slot, h);
    cr_assert_eq(pthread_create(th, NULL, run_holder, h), 0);
    pthread_mutex_lock(&h->mu);
    while (!h->inside)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
}

static void holder_finish(struct holder *h, pthread_t th)
{
    pthread_mutex_lock(&h->mu);
    h->release = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    cr_assert_eq(pthread_join(th, NULL), 0);
    query_result_fini(&h->r);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
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
    struct holder h;
    pthread_t th;
    holder_start(&h, &f, &th);
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
    holder_finish(&h, th);
    cr_expect_eq(h.rc, MP_ECANCELED);
    cr_expect_str_eq(h.err.msg, "query was canceled in expression evaluation");
    query_engine_cancel_all(NULL);
    ev_close(&f);
}
