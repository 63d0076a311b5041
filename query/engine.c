/* SPDX-License-Identifier: Apache-2.0 */
/* query/engine.c: the engine (query.h): options, the max_concurrency gate (a counting queue
 * whose wait counts against the query's timeout, as Prometheus's ActiveQueryTracker), and the
 * two entry points that parse, evaluate (eval.c) and turn the step matrix into the result:
 * instant vectors keep evaluation order, range results are sorted by labels, and with delayed
 * name removal __name__ goes at the very end (then the duplicate-labelset check runs). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/metrics.h"
#include "common/time.h"
#include "query/eval_core.h"

struct query_engine {
    struct query_engine_opts o;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int running;
    _Atomic bool stop; /* query_engine_cancel_all */
    /* Prometheus's engine self-metrics (NULL without a registry) */
    struct mp_gauge *queries;   /* executing or waiting */
    struct mp_counter *samples; /* samples loaded by all queries */
};

/* prometheus_engine_* as 2.55 registers them (the duration summary is left out: the registry
 * has no summaries). */
static int register_metrics(struct query_engine *e, struct mp_metrics_registry *r,
                            struct mp_err *err)
{
    struct mp_gauge *max, *log_on;
    struct mp_counter *log_fail;
    int rc = mp_metrics_gauge_register(r, "prometheus_engine_queries",
                                       "The current number of queries being executed or waiting.",
                                       &e->queries, err);
    if (rc == 0)
        rc = mp_metrics_gauge_register(r, "prometheus_engine_queries_concurrent_max",
                                       "The max number of concurrent queries.", &max, err);
    if (rc == 0)
        rc = mp_metrics_counter_register(r, "prometheus_engine_query_samples_total",
                                         "The total number of samples loaded by all queries.",
                                         &e->samples, err);
    if (rc == 0)
        rc = mp_metrics_gauge_register(r, "prometheus_engine_query_log_enabled",
                                       "State of the query log.", &log_on, err);
    if (rc == 0)
        rc = mp_metrics_counter_register(r, "prometheus_engine_query_log_failures_total",
                                         "The number of query log failures.", &log_fail, err);
    if (rc == 0)
        mp_gauge_set(max, e->o.max_concurrency);
    return rc;
}

void query_engine_opts_init(struct query_engine_opts *o)
{
    *o = (struct query_engine_opts){
        .lookback_delta_ms = 5 * 60 * 1000,
        .timeout_ms = 2 * 60 * 1000,
        .max_samples = 50000000,
        .max_concurrency = 20,
    };
    query_parse_opts_init(&o->parse);
}

int query_engine_create(const struct query_engine_opts *o, struct query_engine **out,
                        struct mp_err *err)
{
    *out = NULL;
    if (o->lookback_delta_ms <= 0)
        return mp_err_set(err, MP_EINVAL, "lookback delta must be positive");
    if (o->timeout_ms <= 0)
        return mp_err_set(err, MP_EINVAL, "query timeout must be positive");
    if (o->max_samples <= 0)
        return mp_err_set(err, MP_EINVAL, "max samples must be positive");
    if (o->max_concurrency <= 0)
        return mp_err_set(err, MP_EINVAL, "max concurrency must be positive");
    struct query_engine *e = mp_xcalloc(1, sizeof *e);
    e->o = *o;
    if (o->metrics) {
        int rc = register_metrics(e, o->metrics, err);
        if (rc) {
            mp_free(e);
            return rc;
        }
    }
    pthread_mutex_init(&e->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e->cv, &ca);
    pthread_condattr_destroy(&ca);
    *out = e;
    return 0;
}

void query_engine_destroy(struct query_engine *e)
{
    if (!e)
        return;
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    mp_free(e);
}

void query_engine_cancel_all(struct query_engine *e)
{
    if (!e)
        return;
    atomic_store(&e->stop, true);
    pthread_mutex_lock(&e->mu);
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

/* Waits for a free slot until deadline_ns. MP_ETIMEOUT "query timed out in query queue";
 * MP_ECANCELED "query was canceled in query queue" (the token is polled every
 * QUERY_CANCEL_POLL_MS while waiting). */
static int gate_enter(struct query_engine *e, int64_t deadline_ns, struct query_cancel *c,
                      struct mp_err *err)
{
    int rc = 0;
    if (e->queries)
        mp_gauge_inc(e->queries);
    for (;;) {
        /* the token's poll hook runs without the lock; the stop flag is set under it, so the
         * re-check below cannot miss the broadcast */
        int64_t now = mp_mono_ns();
        if (query_cancel_due(&e->stop, c, now)) {
            rc = mp_err_set(err, MP_ECANCELED, "query was canceled in query queue");
            break;
        }
        pthread_mutex_lock(&e->mu);
        if (e->running < e->o.max_concurrency) {
            e->running++;
            pthread_mutex_unlock(&e->mu);
            break;
        }
        if (now >= deadline_ns) {
            pthread_mutex_unlock(&e->mu);
            rc = mp_err_set(err, MP_ETIMEOUT, "query timed out in query queue");
            break;
        }
        int64_t wake = c && now + QUERY_CANCEL_POLL_MS * 1000000 < deadline_ns
                           ? now + QUERY_CANCEL_POLL_MS * 1000000
                           : deadline_ns;
        struct timespec ts = {.tv_sec = wake / 1000000000, .tv_nsec = wake % 1000000000};
        if (!atomic_load(&e->stop))
            pthread_cond_timedwait(&e->cv, &e->mu, &ts);
        pthread_mutex_unlock(&e->mu);
    }
    if (rc && e->queries)
        mp_gauge_dec(e->queries);
    return rc;
}

static void gate_leave(struct query_engine *e)
{
    pthread_mutex_lock(&e->mu);
    e->running--;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    if (e->queries)
        mp_gauge_dec(e->queries);
}

/* ---- result assembly ------------------------------------------------------------------------ */

static int cmp_series(const void *a, const void *b)
{
    return mp_labels_compare(((const struct query_series *)a)->labels,
                             ((const struct query_series *)b)->labels);
}

/* Delayed name removal's last step (cleanupMetricLabels), then the duplicate check. */
static int cleanup_names(struct qev *ev, struct qmat *m)
{
    if (!ev->delayed)
        return 0;
    for (size_t i = 0; i < m->n; i++) {
        if (!m->s[i].drop_name)
            continue;
        struct mp_labels *ls = query_drop_name(ev->lb, m->s[i].labels);
        if (!ls) {
            m->s[i].labels = mp_labels_empty();
            return mp_err_set(ev->err, MP_ENOMEM, "dropping names");
        }
        m->s[i].labels = ls;
        m->s[i].drop_name = false;
    }
    return query_mat_has_dup_labels(m) ? query_ev_err_dup(ev) : 0;
}

/* Moves the matrix into r as VECTOR (one point each) or MATRIX (sorted when asked). */
static int take_series(struct qev *ev, struct qmat *m, enum query_type type, bool sort,
                       struct query_result *r)
{
    query_mat_compact(m);
    r->type = type;
    r->series = mp_calloc(m->n ? m->n : 1, sizeof *r->series);
    if (!r->series)
        return mp_err_set(ev->err, MP_ENOMEM, "result");
    for (size_t i = 0; i < m->n; i++) {
        struct qser *s = &m->s[i];
        r->series[i] = (struct query_series){.labels = s->labels, .points = s->p, .npoints = s->n};
        if (type == QUERY_TYPE_VECTOR && s->n > 1)
            r->series[i].npoints = 1;
        s->labels = NULL;
        s->p = NULL;
        ev->cur_samples -= (int64_t)s->n;
        s->n = 0;
    }
    r->nseries = m->n;
    if (sort && r->nseries > 1)
        qsort(r->series, r->nseries, sizeof *r->series, cmp_series);
    return 0;
}

struct run {
    struct query_engine *e;
    struct tsdb *db;
    const char *src;
    size_t len;
    int64_t start, end, step;
    bool range;
    const struct query_exec_opts *o;
};

static int run_query(const struct run *q, struct query_result *out, struct mp_err *err)
{
    *out = (struct query_result){0};
    int64_t t_exec = mp_mono_ns();
    struct query_expr *root = NULL;
    struct query_parse_error pe;
    int rc = query_parse(q->src, q->len, &q->e->o.parse, &root, &pe);
    if (rc == MP_EPARSE)
        return mp_err_set(err, MP_EPARSE, "%s", pe.msg);
    if (rc)
        return mp_err_set(err, rc, "parsing the query");
    enum query_type type = query_expr_type(root);
    if (q->range) {
        if (q->step <= 0)
            rc = mp_err_set(err, MP_EINVAL,
                            "zero or negative query resolution step widths are not accepted. "
                            "Try a positive integer");
        else if (q->end < q->start)
            rc = mp_err_set(err, MP_EINVAL, "end timestamp must not be before start time");
        else if (type != QUERY_TYPE_SCALAR && type != QUERY_TYPE_VECTOR)
            rc = mp_err_set(err, MP_EINVAL,
                            "invalid expression type \"%s\" for range query, must be Scalar or "
                            "instant Vector",
                            query_type_name(type));
        if (rc) {
            query_expr_free(root);
            return rc;
        }
    }
    int64_t timeout = q->o && q->o->timeout_ms > 0 ? q->o->timeout_ms : q->e->o.timeout_ms;
    int64_t t_queue = mp_mono_ns(), deadline = t_queue + timeout * 1000000;
    struct query_cancel *cancel = q->o ? q->o->cancel : NULL;
    rc = gate_enter(q->e, deadline, cancel, err);
    if (rc) {
        query_expr_free(root);
        return rc;
    }
    int64_t t_eval = mp_mono_ns(), t_sort = 0;
    struct query_stats st = {.step_start_ms = q->start, .step_ms = q->range ? q->step : 1};
    if (q->e->o.per_step_stats && q->o && q->o->per_step_stats) {
        st.nsteps = q->end >= q->start ? (size_t)((q->end - q->start) / st.step_ms) + 1 : 0;
        st.samples_per_step = mp_calloc(st.nsteps ? st.nsteps : 1, sizeof *st.samples_per_step);
        if (!st.samples_per_step)
            st.nsteps = 0; /* out of memory: the totals only */
    }
    struct qev ev = {
        .db = q->db,
        .start = q->start,
        .end = q->end,
        .interval = q->range ? q->step : 1,
        .qstart = q->start,
        .qend = q->end,
        .lookback_ms = q->o && q->o->lookback_delta_ms > 0 ? q->o->lookback_delta_ms
                                                           : q->e->o.lookback_delta_ms,
        .max_samples = q->e->o.max_samples,
        .deadline_ns = deadline,
        .delayed = q->e->o.delayed_name_removal,
        .lb = mp_labels_builder_create(),
        .err = err,
        .cancel = cancel,
        .stop = &q->e->stop,
        .per_step = st.samples_per_step,
        .per_step_n = st.nsteps,
        .qstep = st.step_ms,
    };
    struct qmat m = {0};
    if (type == QUERY_TYPE_STRING) {
        const struct query_expr *s = root;
        while (s->kind == QUERY_PAREN)
            s = s->a;
        out->type = QUERY_TYPE_STRING;
        out->string = mp_malloc(s->str.len + 1);
        if (!out->string) {
            rc = mp_err_set(err, MP_ENOMEM, "result");
        } else {
            memcpy(out->string, s->str.ptr, s->str.len);
            out->string[s->str.len] = 0;
            out->scalar.t_ms = q->start;
        }
    } else {
        rc = query_ev_eval(&ev, root, &m);
    }
    if (rc == 0 && type != QUERY_TYPE_STRING) {
        rc = query_ev_check(&ev);
        if (rc == 0)
            rc = cleanup_names(&ev, &m);
    }
    if (rc == 0 && type != QUERY_TYPE_STRING) {
        if (q->range) {
            t_sort = mp_mono_ns();
            rc = take_series(&ev, &m, QUERY_TYPE_MATRIX, true, out);
            t_sort = mp_mono_ns() - t_sort;
        } else if (type == QUERY_TYPE_SCALAR) {
            out->type = QUERY_TYPE_SCALAR;
            out->scalar.t_ms = q->start;
            out->scalar.v = m.n && m.s[0].n ? m.s[0].p[0].v : 0;
        } else if (type == QUERY_TYPE_VECTOR) {
            rc = take_series(&ev, &m, QUERY_TYPE_VECTOR, false, out);
            for (size_t i = 0; rc == 0 && i < out->nseries; i++)
                out->series[i].points[0].t_ms = q->start;
        } else {
            rc = take_series(&ev, &m, QUERY_TYPE_MATRIX, true, out);
        }
    }
    query_mat_fini(&ev, &m);
    if (rc == 0) {
        query_annots_move(&ev.annots, out);
        st.total_queryable_samples = ev.total_samples;
        st.peak_samples = ev.peak_samples;
        int64_t now = mp_mono_ns();
        st.exec_total_ns = now - t_exec;
        st.exec_queue_ns = t_eval - t_queue;
        st.eval_total_ns = now - t_eval;
        st.prepare_ns = ev.prepare_ns;
        st.result_sort_ns = t_sort;
        st.inner_eval_ns = st.eval_total_ns - st.prepare_ns - t_sort;
        if (st.inner_eval_ns < 0)
            st.inner_eval_ns = 0;
        out->stats = st;
    } else {
        query_result_fini(out);
        mp_free(st.samples_per_step);
    }
    if (q->e->samples)
        mp_counter_add(q->e->samples, (double)ev.total_samples);
    query_annots_fini(&ev.annots);
    mp_labels_builder_destroy(ev.lb);
    gate_leave(q->e);
    query_expr_free(root);
    return rc;
}

int query_exec_instant(struct query_engine *e, struct tsdb *db, const char *src, size_t len,
                       int64_t t_ms, const struct query_exec_opts *o, struct query_result *out,
                       struct mp_err *err)
{
    struct run q = {.e = e, .db = db, .src = src, .len = len, .start = t_ms, .end = t_ms,
                    .step = 1, .o = o};
    return run_query(&q, out, err);
}

int query_exec_range(struct query_engine *e, struct tsdb *db, const char *src, size_t len,
                     int64_t start_ms, int64_t end_ms, int64_t step_ms,
                     const struct query_exec_opts *o, struct query_result *out,
                     struct mp_err *err)
{
    struct run q = {.e = e, .db = db, .src = src, .len = len, .start = start_ms, .end = end_ms,
                    .step = step_ms, .range = true, .o = o};
    return run_query(&q, out, err);
}
