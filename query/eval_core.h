/* SPDX-License-Identifier: Apache-2.0 */
/* query/eval_core.h: the evaluator core's private types, shared by query/engine.c and
 * query/eval*.c only (tests/query may use them too).
 *
 * Model (Prometheus 2.55 promql/engine.go rangeEval): every node yields a matrix over all
 * steps of the current evaluation (start, start + interval, ... <= end); an instant query is
 * a range evaluation with one step. Vector-typed nodes give series with a point at the steps
 * where they have a value, scalar-typed nodes one series with empty labels and a point at
 * every step. Subqueries evaluate their inner expression with their own steps by swapping
 * start/end/interval of the one struct qev.
 *
 * Samples held by live matrices are counted in qev.cur_samples against max_samples.
 * Ownership: a struct qmat owns its series' label references and points.
 * Threads: one evaluation belongs to one thread. */
#ifndef QUERY_EVAL_CORE_H
#define QUERY_EVAL_CORE_H

#include "query/eval.h"
#include "query/query_internal.h"

struct tsdb;

struct qser {
    struct mp_labels *labels; /* owned reference */
    struct query_point *p;    /* step timestamps (raw timestamps for range-vector values) */
    size_t n, cap;
    bool drop_name;
};

struct qmat {
    struct qser *s;
    size_t n, cap;
};

struct qev {
    struct tsdb *db;
    int64_t start, end, interval; /* the steps of the current (sub)evaluation */
    int64_t qstart, qend;         /* the query's, for @ start() and @ end() */
    int64_t lookback_ms;
    int64_t max_samples;
    int64_t cur_samples;   /* points held now */
    int64_t peak_samples;  /* most points held at once */
    int64_t total_samples; /* samples read from storage (stats) */
    int64_t deadline_ns;   /* mp_mono_ns() value after which evaluation stops */
    bool delayed;          /* promql-delayed-name-removal */
    /* qfeat: cancellation (query_ev_check) and statistics (query_ev_count) */
    struct query_cancel *cancel; /* the caller's token or NULL */
    const _Atomic bool *stop;    /* the engine's shutdown flag or NULL */
    int64_t *per_step;           /* per-step totals of the query's steps, NULL in subqueries */
    size_t per_step_n;
    int64_t qstep;               /* the query's step (1 for instant queries) */
    int64_t prepare_ns;          /* time spent opening queriers and selecting series */
    struct qannots annots;
    struct mp_labels_builder *lb;
    struct mp_err *err;
    /* step invariance (promql.md 2.5), set up by the outermost query_ev_eval: the
     * sub-expressions evaluated once and repeated (sorted by address) */
    const struct query_expr **inv;
    size_t ninv, invcap;
    bool inv_ready;
    bool invariant; /* evaluating such a sub-expression at its one step: not an instant query */
};

/* Counts n samples read at step ts of the query (Prometheus IncrementSamplesAtStep). */
static inline void query_ev_count(struct qev *ev, int64_t ts, int64_t n)
{
    ev->total_samples += n;
    if (ev->per_step) {
        size_t i = (size_t)((ts - ev->qstart) / ev->qstep);
        if (i < ev->per_step_n)
            ev->per_step[i] += n;
    }
}

/* cancel.c: true once stop or c is set, or c's poll hook (called at most every
 * QUERY_CANCEL_POLL_MS by the time now_ns) says so. Either pointer may be NULL. */
bool query_cancel_due(const _Atomic bool *stop, struct query_cancel *c, int64_t now_ns);

/* Steps of the current evaluation (0 when end < start). */
size_t query_ev_nsteps(const struct qev *ev);
/* True for the one step of an instant query (not for a step-invariant sub-expression
 * evaluated once within a range): instant vectors keep their order, sort sorts. */
bool query_ev_instant(const struct qev *ev);
/* MP_ETIMEOUT "query timed out in expression evaluation" once the deadline passed. */
MP_NODISCARD int query_ev_check(struct qev *ev);
/* Counts n more held points (n may be negative); MP_ELIMIT past max_samples. */
MP_NODISCARD int query_ev_hold(struct qev *ev, int64_t n);
/* Labels without __name__ (the reference ls moves into the result), or ls itself with
 * *drop_name set under delayed name removal. NULL on OOM (err set). */
struct mp_labels *query_ev_drop_name(struct qev *ev, struct mp_labels *ls, bool *drop_name);

/* Appends a point to s, counting it. MP_ENOMEM, MP_ELIMIT. */
MP_NODISCARD int query_ser_push(struct qev *ev, struct qser *s, int64_t t_ms, double v);
/* Appends an empty series taking the reference ls; *out points at it (valid until the next
 * add). MP_ENOMEM (ls released). */
MP_NODISCARD int query_mat_add(struct qev *ev, struct qmat *m, struct mp_labels *ls,
                               bool drop_name, struct qser **out);
/* Frees m's series and uncounts their points; m is zeroed. */
void query_mat_fini(struct qev *ev, struct qmat *m);
/* Drops series without points (keeping order). */
void query_mat_compact(struct qmat *m);
/* True if two series have the same label set (Matrix.ContainsSameLabelset). */
bool query_mat_has_dup_labels(const struct qmat *m);
/* "vector cannot contain metrics with the same labelset" (MP_EEXEC). */
MP_NODISCARD int query_ev_err_dup(struct qev *ev);

/* Evaluates e over the current steps into out (zeroed first). */
MP_NODISCARD int query_ev_eval(struct qev *ev, const struct query_expr *e, struct qmat *out);

/* query_ev_eval for the argument of an aggregation that reads only grouping labels other than
 * __name__ (not the topk family or count_values, no `by (__name__)`): a range-vector function
 * over a selector then keeps each input series' labels, __name__ included, instead of
 * building a name-less copy per series (the caller treats the name as dropped). Values,
 * series order, limits and errors are those of query_ev_eval. */
MP_NODISCARD int query_ev_eval_for_grouping(struct qev *ev, const struct query_expr *e,
                                            struct qmat *out);

/* Arguments of one step of query_range_eval: the elements of argument i's matrix with a
 * point at this step, and for each element the index of its series in that matrix. */
struct qstep_in {
    struct qvector v; /* borrowed labels: never released */
    uint32_t *idx;
    size_t idx_cap;
    struct qmat m; /* the argument's matrix (owned by query_range_eval) */
    size_t *cur;   /* per series: next point */
};

/* One step: appends the result to out (owned label references). */
typedef int query_step_fn(struct qev *ev, void *ctx, int64_t ts, struct qstep_in *in,
                          struct qvector *out);
/* Called once per argument after it is evaluated (signatures, per-series caches). */
typedef int query_prep_fn(struct qev *ev, void *ctx, size_t i, const struct qmat *m);

/* Prometheus rangeEval: evaluates args (string-typed ones are skipped: their slot is empty),
 * then calls fn at every step with the gathered vectors and assembles the step results into
 * series (duplicate label sets at one step: the labelset error). For a single step the
 * result keeps fn's order. */
MP_NODISCARD int query_range_eval(struct qev *ev, const struct query_expr *const *args,
                                  size_t nargs, query_prep_fn *prep, query_step_fn *fn,
                                  void *ctx, struct qmat *out);
/* The same over matrices already evaluated (taken over and freed). */
MP_NODISCARD int query_range_eval_mats(struct qev *ev, struct qmat *mats, size_t nargs,
                                       query_prep_fn *prep, query_step_fn *fn, void *ctx,
                                       struct qmat *out);

/* eval_aggr.c / eval_binop.c */
MP_NODISCARD int query_eval_aggregate(struct qev *ev, const struct query_expr *e,
                                      struct qmat *out);
MP_NODISCARD int query_eval_binary(struct qev *ev, const struct query_expr *e, struct qmat *out);
/* eval_info.c: info(v [, data label selector]) */
MP_NODISCARD int query_eval_info(struct qev *ev, const struct query_expr *call, struct qmat *out);

#endif
