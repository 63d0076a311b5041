/* SPDX-License-Identifier: Apache-2.0 */
/* query/eval.c: the evaluator core (promql.md 2): matrices over steps, Prometheus's rangeEval
 * (query_range_eval), selectors read through the tsdb index, subqueries, function calls and the
 * functions the core evaluates itself (timestamp, absent, absent_over_time, the sort family).
 *
 * Selectors stream series by series: one series' samples in [first ref - lookback (or range),
 * last ref] are decoded once into a reused flat buffer, then the steps are walked with moving
 * indices (instant selection: the latest sample <= ref; range windows: [ref - range, ref] as
 * slices of the buffer that qwindow points into). Nothing is allocated per step or per sample
 * except the output points, which grow geometrically per series. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/time.h"
#include "query/eval_core.h"
#include "query/func.h"
#include "tsdb/tsdb.h"

#define DEFAULT_SUBQUERY_STEP_MS INT64_C(60000) /* global.evaluation_interval default */

/* ---- small helpers -------------------------------------------------------------------------- */

static int64_t sat_sub(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r))
        return b > 0 ? INT64_MIN : INT64_MAX;
    return r;
}

size_t query_ev_nsteps(const struct qev *ev)
{
    if (ev->end < ev->start)
        return 0;
    return (size_t)((ev->end - ev->start) / ev->interval) + 1;
}

bool query_ev_instant(const struct qev *ev)
{
    return ev->start == ev->end && !ev->invariant;
}

int query_ev_check(struct qev *ev)
{
    int64_t now = mp_mono_ns();
    if (ev->deadline_ns && now > ev->deadline_ns)
        return mp_err_set(ev->err, MP_ETIMEOUT, "query timed out in expression evaluation");
    if ((ev->cancel || ev->stop) && query_cancel_due(ev->stop, ev->cancel, now))
        return mp_err_set(ev->err, MP_ECANCELED, "query was canceled in expression evaluation");
    return 0;
}

int query_ev_hold(struct qev *ev, int64_t n)
{
    ev->cur_samples += n;
    if (ev->cur_samples > ev->peak_samples)
        ev->peak_samples = ev->cur_samples;
    if (n > 0 && ev->cur_samples > ev->max_samples)
        return mp_err_set(ev->err, MP_ELIMIT,
                          "query processing would load too many samples into memory in query "
                          "execution");
    return 0;
}

struct mp_labels *query_ev_drop_name(struct qev *ev, struct mp_labels *ls, bool *drop_name)
{
    if (ev->delayed) {
        *drop_name = true;
        return ls;
    }
    struct mp_labels *r = query_drop_name(ev->lb, ls);
    if (!r)
        mp_err_set(ev->err, MP_ENOMEM, "dropping the metric name");
    return r;
}

int query_ev_err_dup(struct qev *ev)
{
    return mp_err_set(ev->err, MP_EEXEC, "vector cannot contain metrics with the same labelset");
}

int query_ser_push(struct qev *ev, struct qser *s, int64_t t_ms, double v)
{
    if (s->n == s->cap) {
        /* a series usually has a point at most steps: start with room for all of them (as
         * Prometheus's getFPointSlice(numSteps)), up to 4096 */
        size_t steps = query_ev_nsteps(ev);
        size_t cap = s->cap ? s->cap * 2 : steps < 4096 ? steps : 4096;
        if (cap < 8)
            cap = 8;
        if (steps > s->n && cap > steps)
            cap = steps;
        struct query_point *p = mp_realloc(s->p, cap * sizeof *p);
        if (!p)
            return mp_err_set(ev->err, MP_ENOMEM, "series points");
        s->p = p;
        s->cap = cap;
    }
    int rc = query_ev_hold(ev, 1);
    if (rc)
        return rc;
    s->p[s->n++] = (struct query_point){t_ms, v};
    return 0;
}

int query_mat_add(struct qev *ev, struct qmat *m, struct mp_labels *ls, bool drop_name,
                  struct qser **out)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        struct qser *s = mp_realloc(m->s, cap * sizeof *s);
        if (!s) {
            mp_labels_release(ls);
            return mp_err_set(ev->err, MP_ENOMEM, "matrix");
        }
        m->s = s;
        m->cap = cap;
    }
    m->s[m->n] = (struct qser){.labels = ls, .drop_name = drop_name};
    *out = &m->s[m->n++];
    return 0;
}

static void ser_fini(struct qev *ev, struct qser *s)
{
    ev->cur_samples -= (int64_t)s->n;
    mp_labels_release(s->labels);
    mp_free(s->p);
    *s = (struct qser){0};
}

void query_mat_fini(struct qev *ev, struct qmat *m)
{
    for (size_t i = 0; i < m->n; i++)
        ser_fini(ev, &m->s[i]);
    mp_free(m->s);
    *m = (struct qmat){0};
}

void query_mat_compact(struct qmat *m)
{
    size_t k = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (m->s[i].n == 0) {
            mp_labels_release(m->s[i].labels);
            mp_free(m->s[i].p);
            continue;
        }
        m->s[k++] = m->s[i];
    }
    m->n = k;
}

/* ---- label-set hash table (output series by labels) ----------------------------------------- */

struct ltab {
    uint64_t *h;
    uint32_t *idx; /* index + 1; 0 = empty */
    size_t mask, n;
};

static void ltab_fini(struct ltab *t)
{
    mp_free(t->h);
    mp_free(t->idx);
    *t = (struct ltab){0};
}

static int ltab_grow(struct ltab *t)
{
    size_t cap = t->mask ? (t->mask + 1) * 2 : 64;
    uint64_t *h = mp_calloc(cap, sizeof *h);
    uint32_t *idx = mp_calloc(cap, sizeof *idx);
    if (!h || !idx) {
        mp_free(h);
        mp_free(idx);
        return MP_ENOMEM;
    }
    for (size_t i = 0; t->mask && i <= t->mask; i++) {
        if (!t->idx[i])
            continue;
        size_t j = t->h[i] & (cap - 1);
        while (idx[j])
            j = (j + 1) & (cap - 1);
        h[j] = t->h[i];
        idx[j] = t->idx[i];
    }
    mp_free(t->h);
    mp_free(t->idx);
    t->h = h;
    t->idx = idx;
    t->mask = cap - 1;
    return 0;
}

/* Finds the series of m with labels ls (by hash and equality); *found false and *slot set to
 * the insertion slot otherwise. */
static int ltab_find(struct ltab *t, const struct qmat *m, const struct mp_labels *ls,
                     size_t *index, bool *found, size_t *slot)
{
    if ((t->n + 1) * 2 > t->mask + 1) {
        int rc = ltab_grow(t);
        if (rc)
            return rc;
    }
    uint64_t h = mp_labels_hash(ls);
    size_t j = h & t->mask;
    while (t->idx[j]) {
        if (t->h[j] == h) {
            const struct mp_labels *o = m->s[t->idx[j] - 1].labels;
            if (o == ls || mp_labels_equal(o, ls)) {
                *index = t->idx[j] - 1;
                *found = true;
                return 0;
            }
        }
        j = (j + 1) & t->mask;
    }
    *found = false;
    *slot = j;
    return 0;
}

static void ltab_set(struct ltab *t, size_t slot, const struct mp_labels *ls, size_t index)
{
    t->h[slot] = mp_labels_hash(ls);
    t->idx[slot] = (uint32_t)(index + 1);
    t->n++;
}

bool query_mat_has_dup_labels(const struct qmat *m)
{
    if (m->n < 2)
        return false;
    if (m->n == 2)
        return mp_labels_equal(m->s[0].labels, m->s[1].labels);
    struct ltab t = {0};
    bool dup = false;
    for (size_t i = 0; i < m->n && !dup; i++) {
        size_t index, slot;
        bool found;
        if (ltab_find(&t, m, m->s[i].labels, &index, &found, &slot) != 0)
            break; /* OOM: no check rather than a false error */
        if (found)
            dup = true;
        else
            ltab_set(&t, slot, m->s[i].labels, i);
    }
    ltab_fini(&t);
    return dup;
}

static bool vec_has_dup(const struct qvector *v)
{
    if (v->n < 2)
        return false;
    struct qmat m = {.s = mp_malloc(v->n * sizeof *m.s), .n = v->n};
    if (!m.s)
        return false;
    for (size_t i = 0; i < v->n; i++)
        m.s[i] = (struct qser){.labels = v->s[i].labels};
    bool dup = query_mat_has_dup_labels(&m);
    mp_free(m.s);
    return dup;
}

/* ---- rangeEval ------------------------------------------------------------------------------ */

static void step_in_fini(struct qev *ev, struct qstep_in *in)
{
    mp_free(in->v.s);
    mp_free(in->idx);
    mp_free(in->cur);
    query_mat_fini(ev, &in->m);
}

static int step_in_init(struct qev *ev, struct qstep_in *in)
{
    size_t n = in->m.n ? in->m.n : 1;
    in->v.s = mp_malloc(n * sizeof *in->v.s);
    in->v.cap = n;
    in->idx = mp_malloc(n * sizeof *in->idx);
    in->idx_cap = n;
    in->cur = mp_calloc(n, sizeof *in->cur);
    if (!in->v.s || !in->idx || !in->cur)
        return mp_err_set(ev->err, MP_ENOMEM, "step vectors");
    return 0;
}

/* The elements of in->m with a point at ts (gatherVector). */
static void gather(struct qstep_in *in, int64_t ts)
{
    in->v.n = 0;
    for (size_t i = 0; i < in->m.n; i++) {
        struct qser *s = &in->m.s[i];
        size_t c = in->cur[i];
        if (c < s->n && s->p[c].t_ms == ts) {
            in->v.s[in->v.n] = (struct qsample){
                .labels = s->labels, .v = s->p[c].v, .t_ms = ts, .drop_name = s->drop_name};
            in->idx[in->v.n++] = (uint32_t)i;
            in->cur[i] = c + 1;
        }
    }
}

/* Moves one step's result into out: in first-result order for a single step, merged into
 * series by label set otherwise. */
static int merge_step(struct qev *ev, struct qvector *res, int64_t ts, struct ltab *tab,
                      int64_t **last_ts, size_t *last_cap, struct qmat *out)
{
    int rc = 0;
    if (query_ev_instant(ev)) {
        if (!ev->delayed && vec_has_dup(res))
            return query_ev_err_dup(ev);
        size_t i;
        for (i = 0; i < res->n && rc == 0; i++) {
            struct qser *s = NULL;
            rc = query_mat_add(ev, out, res->s[i].labels, res->s[i].drop_name, &s);
            if (rc == 0)
                rc = query_ser_push(ev, s, ts, res->s[i].v);
        }
        for (; i < res->n; i++)
            mp_labels_release(res->s[i].labels);
        res->n = 0;
        return rc;
    }
    size_t i;
    for (i = 0; i < res->n && rc == 0; i++) {
        struct qsample *x = &res->s[i];
        size_t index, slot;
        bool found;
        rc = ltab_find(tab, out, x->labels, &index, &found, &slot);
        if (rc) {
            rc = mp_err_set(ev->err, rc, "result series");
            break;
        }
        if (found) {
            if ((*last_ts)[index] == ts) {
                rc = query_ev_err_dup(ev);
                break;
            }
            mp_labels_release(x->labels);
            x->labels = NULL;
        } else {
            if (out->n == *last_cap) {
                size_t cap = *last_cap ? *last_cap * 2 : 16;
                int64_t *l = mp_realloc(*last_ts, cap * sizeof *l);
                if (!l) {
                    rc = mp_err_set(ev->err, MP_ENOMEM, "result series");
                    break;
                }
                *last_ts = l;
                *last_cap = cap;
            }
            struct qser *s;
            struct mp_labels *ls = x->labels;
            x->labels = NULL;
            rc = query_mat_add(ev, out, ls, x->drop_name, &s);
            if (rc)
                break;
            index = out->n - 1;
            ltab_set(tab, slot, ls, index);
        }
        (*last_ts)[index] = ts;
        rc = query_ser_push(ev, &out->s[index], ts, x->v);
    }
    for (; i < res->n; i++)
        mp_labels_release(res->s[i].labels);
    res->n = 0;
    return rc;
}

int query_range_eval_mats(struct qev *ev, struct qmat *mats, size_t nargs, query_prep_fn *prep,
                          query_step_fn *fn, void *ctx, struct qmat *out)
{
    *out = (struct qmat){0};
    int rc = 0;
    struct qstep_in *in = mp_calloc(nargs ? nargs : 1, sizeof *in);
    if (!in) {
        for (size_t i = 0; i < nargs; i++)
            query_mat_fini(ev, &mats[i]);
        return mp_err_set(ev->err, MP_ENOMEM, "step arguments");
    }
    for (size_t i = 0; i < nargs; i++) {
        in[i].m = mats[i];
        mats[i] = (struct qmat){0};
    }
    for (size_t i = 0; i < nargs && rc == 0; i++) {
        rc = step_in_init(ev, &in[i]);
        if (rc == 0 && prep)
            rc = prep(ev, ctx, i, &in[i].m);
    }
    struct qvector res = {0};
    struct ltab tab = {0};
    int64_t *last_ts = NULL;
    size_t last_cap = 0;
    for (int64_t ts = ev->start; rc == 0 && ts <= ev->end; ts += ev->interval) {
        rc = query_ev_check(ev);
        if (rc)
            break;
        int64_t gathered = 0;
        for (size_t i = 0; i < nargs; i++) {
            gather(&in[i], ts);
            gathered += (int64_t)in[i].v.n;
        }
        rc = query_ev_hold(ev, gathered);
        if (rc == 0)
            rc = fn(ev, ctx, ts, in, &res);
        if (rc == 0)
            rc = merge_step(ev, &res, ts, &tab, &last_ts, &last_cap, out);
        query_vec_clear(&res);
        ev->cur_samples -= gathered;
        if (ts > INT64_MAX - ev->interval)
            break;
    }
    query_vec_fini(&res);
    ltab_fini(&tab);
    mp_free(last_ts);
    for (size_t i = 0; i < nargs; i++)
        step_in_fini(ev, &in[i]);
    mp_free(in);
    if (rc)
        query_mat_fini(ev, out);
    return rc;
}

int query_range_eval(struct qev *ev, const struct query_expr *const *args, size_t nargs,
                     query_prep_fn *prep, query_step_fn *fn, void *ctx, struct qmat *out)
{
    *out = (struct qmat){0};
    struct qmat *mats = mp_calloc(nargs ? nargs : 1, sizeof *mats);
    if (!mats)
        return mp_err_set(ev->err, MP_ENOMEM, "arguments");
    int rc = 0;
    for (size_t i = 0; i < nargs && rc == 0; i++)
        if (query_expr_type(args[i]) != QUERY_TYPE_STRING)
            rc = query_ev_eval(ev, args[i], &mats[i]);
    if (rc == 0)
        rc = query_range_eval_mats(ev, mats, nargs, prep, fn, ctx, out);
    else
        for (size_t i = 0; i < nargs; i++)
            query_mat_fini(ev, &mats[i]);
    mp_free(mats);
    return rc;
}

/* ---- storage -------------------------------------------------------------------------------- */

struct ptbuf {
    struct query_point *p;
    size_t n, cap;
};

static const struct query_expr *unparen(const struct query_expr *e)
{
    while (e->kind == QUERY_PAREN)
        e = e->a;
    return e;
}

/* The reference time of a selector or subquery at step ts: @ pins it, offset shifts it. */
static int64_t ref_time(const struct qev *ev, const struct query_expr *e, int64_t ts)
{
    int64_t at_ms;
    switch (query_at(e, &at_ms)) {
    case QUERY_AT_TIME:
        ts = at_ms;
        break;
    case QUERY_AT_START:
        ts = ev->qstart;
        break;
    case QUERY_AT_END:
        ts = ev->qend;
        break;
    case QUERY_AT_NONE:
        break;
    }
    return sat_sub(ts, query_offset_ms(e));
}

struct selection {
    struct tsdb_querier *q;
    struct tsdb_series_set *ss;
    int64_t mint, maxt;
};

static int storage_err(struct qev *ev, int rc)
{
    if (rc == MP_ENOMEM || rc == MP_ETIMEOUT || rc == MP_ELIMIT)
        return rc;
    if (ev->err && ev->err->code == 0)
        mp_err_set(ev->err, MP_EIO, "storage");
    if (ev->err)
        ev->err->code = MP_EIO;
    return MP_EIO;
}

static int select_open(struct qev *ev, const struct query_expr *vs, int64_t mint, int64_t maxt,
                       struct selection *sel)
{
    *sel = (struct selection){.mint = mint, .maxt = maxt};
    if (!ev->db) /* no storage: every selector is empty */
        return 0;
    int64_t t0 = mp_mono_ns();
    int rc = tsdb_querier_open(ev->db, mint, maxt, &sel->q, ev->err);
    if (rc == 0)
        rc = tsdb_querier_select(sel->q, (const struct mp_matcher *const *)vs->m, vs->nm, &sel->ss,
                                 ev->err);
    ev->prepare_ns += mp_mono_ns() - t0;
    return rc ? storage_err(ev, rc) : 0;
}

static void select_close(struct selection *sel)
{
    tsdb_series_set_free(sel->ss);
    tsdb_querier_close(sel->q);
    *sel = (struct selection){0};
}

/* Next series: 1 with its samples in [mint, maxt] in b (stale markers dropped if asked),
 * 0 at the end, <0 on error. */
static int select_next(struct qev *ev, struct selection *sel, bool drop_stale, struct ptbuf *b)
{
    int rc = query_ev_check(ev);
    if (rc || !sel->ss)
        return rc;
    rc = tsdb_series_set_next(sel->ss, ev->err);
    if (rc == MP_EEOF)
        return 0;
    if (rc)
        return storage_err(ev, rc);
    struct tsdb_sample_iter it;
    tsdb_series_set_iter(sel->ss, &it);
    b->n = 0;
    int64_t t;
    double v;
    for (rc = tsdb_sample_iter_seek(&it, sel->mint, &t, &v); rc == 0 && t <= sel->maxt;
         rc = tsdb_sample_iter_next(&it, &t, &v)) {
        if (drop_stale && tsdb_is_stale(v))
            continue;
        if (b->n == b->cap) {
            size_t cap = b->cap ? b->cap * 2 : 256;
            struct query_point *p = mp_realloc(b->p, cap * sizeof *p);
            if (!p)
                return mp_err_set(ev->err, MP_ENOMEM, "sample buffer");
            b->p = p;
            b->cap = cap;
        }
        b->p[b->n++] = (struct query_point){t, v};
    }
    if (rc != 0 && rc != MP_EEOF)
        return storage_err(ev, mp_err_set(ev->err, rc, "reading samples"));
    return 1;
}

/* Instant vector selection (promql.md 2.2) at every step; with ts_values the value is the
 * selected sample's timestamp in seconds (timestamp()). */
static int eval_vector_selector(struct qev *ev, const struct query_expr *vs, bool ts_values,
                                struct qmat *out)
{
    *out = (struct qmat){0};
    if (query_ev_nsteps(ev) == 0)
        return 0;
    int64_t rmin = ref_time(ev, vs, ev->start), rmax = ref_time(ev, vs, ev->end);
    struct selection sel;
    int rc = select_open(ev, vs, sat_sub(rmin, ev->lookback_ms), rmax, &sel);
    struct ptbuf b = {0};
    while (rc == 0 && (rc = select_next(ev, &sel, false, &b)) == 1) {
        rc = 0;
        struct qser *s = NULL;
        size_t j = 0;
        uint32_t k = 0;
        for (int64_t ts = ev->start; rc == 0 && ts <= ev->end; ts += ev->interval) {
            if ((++k & 4095) == 0 && (rc = query_ev_check(ev)) != 0)
                break;
            int64_t ref = ref_time(ev, vs, ts);
            while (j + 1 < b.n && b.p[j + 1].t_ms <= ref)
                j++;
            if (b.n == 0 || b.p[j].t_ms > ref || b.p[j].t_ms < sat_sub(ref, ev->lookback_ms) ||
                tsdb_is_stale(b.p[j].v)) {
                if (ts > INT64_MAX - ev->interval)
                    break;
                continue;
            }
            if (!s)
                rc = query_mat_add(ev, out, mp_labels_acquire(tsdb_series_set_labels(sel.ss)),
                                   false, &s);
            if (rc == 0)
                rc = query_ser_push(ev, s, ts, ts_values ? (double)b.p[j].t_ms / 1000.0 : b.p[j].v);
            query_ev_count(ev, ts, 1);
            if (ts > INT64_MAX - ev->interval)
                break;
        }
    }
    mp_free(b.p);
    select_close(&sel);
    if (rc)
        query_mat_fini(ev, out);
    return rc;
}

/* A range vector as a value (instant query of sel[r]): the raw samples of the window at the
 * first step, with their own timestamps. */
static int eval_matrix_raw(struct qev *ev, const struct query_expr *ms, struct qmat *out)
{
    *out = (struct qmat){0};
    const struct query_expr *vs = ms->a;
    int64_t ref = ref_time(ev, vs, ev->start);
    struct selection sel;
    int rc = select_open(ev, vs, sat_sub(ref, ms->range_ms), ref, &sel);
    struct ptbuf b = {0};
    while (rc == 0 && (rc = select_next(ev, &sel, true, &b)) == 1) {
        rc = 0;
        if (b.n == 0)
            continue;
        struct qser *s = NULL;
        rc = query_mat_add(ev, out, mp_labels_acquire(tsdb_series_set_labels(sel.ss)), false, &s);
        for (size_t i = 0; rc == 0 && i < b.n; i++)
            rc = query_ser_push(ev, s, b.p[i].t_ms, b.p[i].v);
        query_ev_count(ev, ev->start, (int64_t)b.n);
    }
    mp_free(b.p);
    select_close(&sel);
    if (rc)
        query_mat_fini(ev, out);
    return rc;
}

/* ---- subqueries (promql.md 2.6) ------------------------------------------------------------- */

static int eval_subquery(struct qev *ev, const struct query_expr *sq, struct qmat *out)
{
    int64_t step = sq->step_ms > 0 ? sq->step_ms : DEFAULT_SUBQUERY_STEP_MS;
    int64_t s = ref_time(ev, sq, ev->start), e = ref_time(ev, sq, ev->end);
    int64_t lo = sat_sub(s, sq->range_ms);
    int64_t first = step * (lo / step);
    if (first < lo)
        first += step;
    int64_t os = ev->start, oe = ev->end, oi = ev->interval, *ps = ev->per_step;
    ev->start = first;
    ev->end = e;
    ev->interval = step;
    ev->per_step = NULL; /* inner steps are not the query's */
    int rc = query_ev_eval(ev, sq->a, out);
    ev->start = os;
    ev->end = oe;
    ev->interval = oi;
    ev->per_step = ps;
    return rc;
}

/* ---- function calls ------------------------------------------------------------------------- */

struct callctx {
    const struct query_expr *call;
    qfunc_fn *f;
    struct qarg *args;
    size_t nargs;
    struct mp_labels *labels; /* absent(): the output labels */
    bool desc;                /* sort_desc, sort_by_label_desc */
};

static struct mp_str string_arg(const struct query_expr *e)
{
    return unparen(e)->str;
}

static int step_call(struct qev *ev, void *vctx, int64_t ts, struct qstep_in *in,
                     struct qvector *out)
{
    struct callctx *c = vctx;
    for (size_t i = 0; i < c->nargs; i++) {
        struct qarg *a = &c->args[i];
        switch (query_expr_type(c->call->args[i])) {
        case QUERY_TYPE_SCALAR:
            *a = (struct qarg){.kind = QARG_SCALAR, .scalar = in[i].v.n ? in[i].v.s[0].v : NAN};
            break;
        case QUERY_TYPE_STRING:
            *a = (struct qarg){.kind = QARG_STRING, .str = string_arg(c->call->args[i])};
            break;
        default:
            *a = (struct qarg){.kind = QARG_VECTOR, .vec = &in[i].v};
            break;
        }
    }
    struct qcall call = {.expr = c->call,
                         .t_ms = ts,
                         .args = c->args,
                         .nargs = c->nargs,
                         .out = out,
                         .annots = &ev->annots,
                         .lb = ev->lb,
                         .delayed_name_removal = ev->delayed,
                         .start_ms = ev->qstart,
                         .end_ms = ev->qend};
    return c->f(&call, ev->err);
}

/* Functions the core supplies when query_func_lookup has none (structural ones). */
static int step_scalar(struct qev *ev, void *vctx, int64_t ts, struct qstep_in *in,
                       struct qvector *out)
{
    (void)vctx;
    (void)ts;
    double v = in[0].v.n == 1 ? in[0].v.s[0].v : NAN;
    return query_vec_push(out, mp_labels_empty(), v, ts, false)
               ? mp_err_set(ev->err, MP_ENOMEM, "scalar")
               : 0;
}

static int step_vector(struct qev *ev, void *vctx, int64_t ts, struct qstep_in *in,
                       struct qvector *out)
{
    (void)vctx;
    double v = in[0].v.n ? in[0].v.s[0].v : NAN;
    return query_vec_push(out, mp_labels_empty(), v, ts, false)
               ? mp_err_set(ev->err, MP_ENOMEM, "vector")
               : 0;
}

static int step_time(struct qev *ev, void *vctx, int64_t ts, struct qstep_in *in,
                     struct qvector *out)
{
    (void)vctx;
    (void)in;
    return query_vec_push(out, mp_labels_empty(), (double)ts / 1000.0, ts, false)
               ? mp_err_set(ev->err, MP_ENOMEM, "time")
               : 0;
}

/* timestamp(): the values are already the sample times (selector) or become the step time;
 * the name goes. */
static int step_timestamp(struct qev *ev, void *vctx, int64_t ts, struct qstep_in *in,
                          struct qvector *out)
{
    bool from_selector = *(bool *)vctx;
    for (size_t i = 0; i < in[0].v.n; i++) {
        const struct qsample *x = &in[0].v.s[i];
        bool dn = x->drop_name;
        struct mp_labels *ls = query_ev_drop_name(ev, mp_labels_acquire(x->labels), &dn);
        if (!ls)
            return MP_ENOMEM;
        if (query_vec_push(out, ls, from_selector ? x->v : (double)ts / 1000.0, ts, dn))
            return mp_err_set(ev->err, MP_ENOMEM, "timestamp");
    }
    return 0;
}

static int eval_timestamp(struct qev *ev, const struct query_expr *call, struct qmat *out)
{
    const struct query_expr *arg = unparen(call->args[0]);
    bool from_selector = arg->kind == QUERY_VECTOR_SELECTOR;
    if (!from_selector)
        return query_range_eval(ev, (const struct query_expr *const *)call->args, 1, NULL,
                                step_timestamp, &from_selector, out);
    struct qmat m;
    int rc = eval_vector_selector(ev, arg, true, &m);
    if (rc)
        return rc;
    return query_range_eval_mats(ev, &m, 1, NULL, step_timestamp, &from_selector, out);
}

/* absent() labels (promql.md 3.10): the equality matchers of a selector argument. */
static int absent_labels(struct qev *ev, const struct query_expr *arg, struct mp_labels **out)
{
    arg = unparen(arg);
    if (arg->kind == QUERY_MATRIX_SELECTOR)
        arg = arg->a;
    if (arg->kind != QUERY_VECTOR_SELECTOR) {
        *out = mp_labels_empty();
        return 0;
    }
    mp_labels_builder_reset(ev->lb, NULL);
    struct mp_str *seen = mp_malloc((arg->nm ? arg->nm : 1) * sizeof *seen);
    if (!seen)
        return mp_err_set(ev->err, MP_ENOMEM, "absent labels");
    size_t nseen = 0;
    int rc = 0;
    for (size_t i = 0; i < arg->nm && rc == 0; i++) {
        const struct mp_matcher *m = arg->m[i];
        struct mp_str name = mp_matcher_name(m);
        if (mp_str_eq(name, mp_str_c(MP_LABEL_METRIC_NAME)))
            continue;
        bool was = false;
        for (size_t k = 0; k < nseen; k++)
            was = was || mp_str_eq(seen[k], name);
        if (mp_matcher_type(m) == MP_MATCH_EQUAL && !was) {
            rc = mp_labels_builder_set(ev->lb, name, mp_matcher_value(m));
            seen[nseen++] = name;
        } else {
            mp_labels_builder_del(ev->lb, name);
        }
    }
    mp_free(seen);
    if (rc == 0)
        rc = mp_labels_builder_labels(ev->lb, out, ev->err);
    return rc ? mp_err_set(ev->err, rc, "absent labels") : 0;
}

static int step_absent(struct qev *ev, void *vctx, int64_t ts, struct qstep_in *in,
                       struct qvector *out)
{
    struct callctx *c = vctx;
    if (in[0].v.n > 0)
        return 0;
    return query_vec_push(out, mp_labels_acquire(c->labels), 1, ts, false)
               ? mp_err_set(ev->err, MP_ENOMEM, "absent")
               : 0;
}

/* ---- sort family (instant-query ordering) --------------------------------------------------- */

static int cmp_asc(const void *a, const void *b)
{
    double x = ((const struct qsample *)a)->v, y = ((const struct qsample *)b)->v;
    if (isnan(x))
        return isnan(y) ? 0 : 1;
    if (isnan(y))
        return -1;
    return x < y ? -1 : x > y;
}

static int cmp_desc(const void *a, const void *b)
{
    double x = ((const struct qsample *)a)->v, y = ((const struct qsample *)b)->v;
    if (isnan(x))
        return isnan(y) ? 0 : 1;
    if (isnan(y))
        return -1;
    return x > y ? -1 : x < y;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* facette.io/natsort Compare(a, b) (a < b): chunks of digits compare as integers (when both
 * are numbers), other chunks as strings. */
static bool nat_less(struct mp_str a, struct mp_str b)
{
    size_t i = 0, j = 0;
    while (i < a.len) {
        if (j >= b.len)
            return false;
        size_t ie = i, je = j;
        bool ad = is_digit(a.ptr[i]), bd = is_digit(b.ptr[j]);
        while (ie < a.len && is_digit(a.ptr[ie]) == ad)
            ie++;
        while (je < b.len && is_digit(b.ptr[je]) == bd)
            je++;
        struct mp_str ca = {a.ptr + i, ie - i}, cb = {b.ptr + j, je - j};
        bool alast = ie == a.len, blast = je == b.len;
        if (ad && bd && ca.len <= 18 && cb.len <= 18) {
            char ta[20], tb[20];
            memcpy(ta, ca.ptr, ca.len);
            ta[ca.len] = 0;
            memcpy(tb, cb.ptr, cb.len);
            tb[cb.len] = 0;
            long long x = strtoll(ta, NULL, 10), y = strtoll(tb, NULL, 10);
            if (x != y)
                return x < y;
        } else if (!mp_str_eq(ca, cb)) {
            return mp_str_cmp(ca, cb) < 0;
        }
        if (alast)
            return true;
        if (blast)
            return false;
        i = ie;
        j = je;
    }
    return false;
}

struct label_sort {
    struct qsample *s;
    const struct query_expr *call;
    bool desc;
};

static int cmp_by_label(const struct label_sort *ctx, const struct qsample *a,
                        const struct qsample *b)
{
    for (size_t i = 1; i < ctx->call->nargs; i++) {
        struct mp_str name = string_arg(ctx->call->args[i]);
        struct mp_str x = mp_labels_get(a->labels, name), y = mp_labels_get(b->labels, name);
        if (mp_str_eq(x, y))
            continue;
        int r = nat_less(x, y) ? -1 : 1;
        return ctx->desc ? -r : r;
    }
    int r = mp_labels_compare(a->labels, b->labels);
    return ctx->desc ? -r : r;
}

/* A merge sort, so the comparator can carry its context without a global. */
static void sort_by_label(struct label_sort *ctx, struct qsample *v, size_t n, struct qsample *tmp)
{
    if (n < 2)
        return;
    size_t h = n / 2;
    sort_by_label(ctx, v, h, tmp);
    sort_by_label(ctx, v + h, n - h, tmp);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = cmp_by_label(ctx, &v[j], &v[i]) < 0 ? v[j++] : v[i++];
    while (i < h)
        tmp[k++] = v[i++];
    while (j < n)
        tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof *v);
}

static int step_sort(struct qev *ev, void *vctx, int64_t ts, struct qstep_in *in,
                     struct qvector *out)
{
    struct callctx *c = vctx;
    for (size_t i = 0; i < in[0].v.n; i++) {
        const struct qsample *x = &in[0].v.s[i];
        if (query_vec_push(out, mp_labels_acquire(x->labels), x->v, ts, x->drop_name))
            return mp_err_set(ev->err, MP_ENOMEM, "sort");
    }
    if (!query_ev_instant(ev) || out->n < 2)
        return 0;
    const char *name = c->call->fn->name;
    if (strncmp(name, "sort_by_label", 13) == 0) {
        struct qsample *tmp = mp_malloc(out->n * sizeof *tmp);
        if (!tmp)
            return mp_err_set(ev->err, MP_ENOMEM, "sort");
        struct label_sort ls = {.call = c->call, .desc = c->desc};
        sort_by_label(&ls, out->s, out->n, tmp);
        mp_free(tmp);
    } else {
        qsort(out->s, out->n, sizeof *out->s, c->desc ? cmp_desc : cmp_asc);
    }
    return 0;
}

/* ---- range-vector function calls ------------------------------------------------------------ */

struct mcall {
    const struct query_expr *call;
    qfunc_fn *f;
    size_t mi;          /* index of the range-vector argument */
    struct qmat *other; /* evaluated other arguments (scalars) */
    struct qarg *args;
    struct qvector res;
    bool keep_name;   /* last_over_time */
    bool absent;      /* absent_over_time */
    uint8_t *present; /* absent_over_time: steps where some series had samples */
    int64_t range_ms;
    const struct query_expr *target; /* selector or subquery (for ref times) */
    bool rate_info;
    bool keep_labels; /* the consumer reads grouping labels only: results keep __name__
                       * (query_ev_eval_for_grouping) */
    const struct query_kernel *kernel; /* f as a per-window kernel, or NULL */
    int extremum; /* max_over_time +1, min_over_time -1: sliding window (ext_*), else 0 */
    size_t *dq;   /* ext_*: indices of the window's candidates, front first */
    size_t dqcap;
};

/* Sliding max/min over windows [lo, hi) that only move forward: a deque of indices of non-NaN
 * points whose values strictly fall (max) or rise (min) from the front, an equal later point
 * queued behind an earlier one. The front is then the earliest extremum of the window's non-NaN
 * values, which is what max_ot/min_ot's scan keeps (a later equal value does not replace it,
 * a NaN is replaced by the first number); a window of NaNs only gives its last point, as the
 * scan does. Amortised O(1) per step instead of O(window). */
struct ext {
    size_t head, tail, pushed;
};

static void ext_push(const struct mcall *mc, struct ext *x, const struct query_point *p, size_t hi)
{
    for (; x->pushed < hi; x->pushed++) {
        double v = p[x->pushed].v;
        if (isnan(v))
            continue;
        while (x->tail > x->head) {
            double b = p[mc->dq[x->tail - 1]].v;
            if (mc->extremum > 0 ? !(b < v) : !(b > v))
                break;
            x->tail--;
        }
        mc->dq[x->tail++] = x->pushed;
    }
}

static double ext_value(const struct mcall *mc, struct ext *x, const struct query_point *p,
                        size_t lo, size_t hi)
{
    while (x->head < x->tail && mc->dq[x->head] < lo)
        x->head++;
    return x->head < x->tail ? p[mc->dq[x->head]].v : p[hi - 1].v;
}

/* One input series: windows at every step, the function per window. */
static int mcall_series(struct qev *ev, struct mcall *mc, const struct mp_labels *ls,
                        bool drop_name, const struct query_point *p, size_t n, struct qmat *out)
{
    struct qser *s = NULL;
    size_t lo = 0, hi = 0, step = 0, work = 0; /* work: window samples since the last check */
    int rc = 0;
    bool any = false;
    /* functions see the empty set in the window: only their values are used, and the output
     * labels are built once per series, at its first point */
    bool dn = drop_name;
    struct ext xw = {0};
    if (mc->extremum && n > mc->dqcap) {
        size_t *d = mp_realloc(mc->dq, n * sizeof *d);
        if (!d)
            return mp_err_set(ev->err, MP_ENOMEM, "window");
        mc->dq = d;
        mc->dqcap = n;
    }
    for (int64_t ts = ev->start; rc == 0 && ts <= ev->end; ts += ev->interval, step++) {
        if ((((step + 1) & 4095) == 0 || work >= (1u << 20)) &&
            (work = 0, rc = query_ev_check(ev)) != 0)
            break;
        int64_t ref = ref_time(ev, mc->target, ts), mint = sat_sub(ref, mc->range_ms);
        while (hi < n && p[hi].t_ms <= ref)
            hi++;
        while (lo < hi && p[lo].t_ms < mint)
            lo++;
        work += hi - lo; /* long windows: deadline and cancellation every ~1M samples */
        if (hi > lo) {
            query_ev_count(ev, ts, (int64_t)(hi - lo));
            any = true;
            double v = 0;
            bool have = false;
            if (mc->absent) {
                mc->present[step] = 1;
            } else if (mc->extremum) {
                ext_push(mc, &xw, p, hi);
                v = ext_value(mc, &xw, p, lo, hi);
                have = true;
            } else if (mc->kernel) {
                have = query_kernel_value(mc->kernel, p + lo, hi - lo, ref, mc->range_ms, &v);
            } else {
                for (size_t j = 0; j < mc->call->nargs; j++) {
                    if (j == mc->mi)
                        continue;
                    switch (query_expr_type(mc->call->args[j])) {
                    case QUERY_TYPE_STRING:
                        mc->args[j] = (struct qarg){.kind = QARG_STRING,
                                                    .str = string_arg(mc->call->args[j])};
                        break;
                    default: {
                        const struct qmat *m = &mc->other[j];
                        double x = NAN;
                        if (m->n && step < m->s[0].n)
                            x = m->s[0].p[step].v;
                        mc->args[j] = (struct qarg){.kind = QARG_SCALAR, .scalar = x};
                        break;
                    }
                    }
                }
                struct qwindow w = {
                    .labels = mp_labels_empty(), .p = p + lo, .n = hi - lo, .drop_name = dn};
                mc->args[mc->mi] = (struct qarg){
                    .kind = QARG_MATRIX, .win = &w, .nwin = 1, .range_ms = mc->range_ms};
                struct qcall c = {.expr = mc->call,
                                  .t_ms = ts,
                                  .args = mc->args,
                                  .nargs = mc->call->nargs,
                                  .out = &mc->res,
                                  .annots = &ev->annots,
                                  .lb = ev->lb,
                                  .delayed_name_removal = ev->delayed,
                                  .start_ms = ev->qstart,
                                  .end_ms = ev->qend};
                rc = mc->f(&c, ev->err);
                if (rc == 0 && mc->res.n > 0) {
                    have = true;
                    v = mc->res.s[0].v;
                }
                query_vec_clear(&mc->res);
            }
            if (have) {
                if (!s) {
                    struct mp_labels *ol = mp_labels_acquire(ls);
                    if (!mc->keep_name && !mc->keep_labels &&
                        !(ol = query_ev_drop_name(ev, ol, &dn)))
                        rc = MP_ENOMEM;
                    else
                        rc = query_mat_add(ev, out, ol, dn, &s);
                }
                if (rc == 0)
                    rc = query_ser_push(ev, s, ts, v);
            }
        }
        if (ts > INT64_MAX - ev->interval)
            break;
    }
    if (rc == 0 && any && mc->rate_info) {
        struct mp_str name = mp_labels_metric_name(ls);
        static const char *const suffixes[] = {"_total", "_sum", "_count", "_bucket"};
        bool counter = name.len == 0;
        for (size_t i = 0; i < 4 && !counter; i++) {
            size_t l = strlen(suffixes[i]);
            counter = name.len >= l && memcmp(name.ptr + name.len - l, suffixes[i], l) == 0;
        }
        if (!counter) {
            struct mp_buf q;
            mp_buf_init(&q, 0);
            rc = query_go_quote(&q, name, 0);
            if (rc == 0)
                rc = query_annots_add(&ev->annots, false,
                                      "metric might not be a counter, name does not end in "
                                      "_total/_sum/_count/_bucket: %.*s",
                                      (int)q.len, q.data);
            mp_buf_fini(&q);
            if (rc)
                rc = mp_err_set(ev->err, MP_ENOMEM, "annotation");
        }
    }
    return rc;
}

static int eval_call_matrix(struct qev *ev, const struct query_expr *call, size_t mi, qfunc_fn *f,
                            bool keep_labels, struct qmat *out)
{
    *out = (struct qmat){0};
    const char *name = call->fn->name;
    const struct query_expr *ma = unparen(call->args[mi]);
    struct mcall mc = {.call = call,
                       .f = f,
                       .mi = mi,
                       .keep_name = strcmp(name, "last_over_time") == 0,
                       .absent = strcmp(name, "absent_over_time") == 0,
                       .rate_info = strcmp(name, "rate") == 0 || strcmp(name, "increase") == 0,
                       .range_ms = ma->range_ms,
                       .target = ma,
                       .keep_labels = keep_labels,
                       .kernel = f && call->nargs == 1 ? query_func_kernel(f) : NULL,
                       .extremum = f == query_func_max_over_time   ? 1
                                   : f == query_func_min_over_time ? -1
                                                                   : 0};
    size_t nsteps = query_ev_nsteps(ev);
    mc.other = mp_calloc(call->nargs, sizeof *mc.other);
    mc.args = mp_calloc(call->nargs, sizeof *mc.args);
    mc.present = mp_calloc(nsteps ? nsteps : 1, 1);
    int rc = 0;
    if (!mc.other || !mc.args || !mc.present)
        rc = mp_err_set(ev->err, MP_ENOMEM, "call");
    for (size_t j = 0; j < call->nargs && rc == 0; j++)
        if (j != mi && query_expr_type(call->args[j]) != QUERY_TYPE_STRING)
            rc = query_ev_eval(ev, call->args[j], &mc.other[j]);
    if (rc == 0 && ma->kind == QUERY_SUBQUERY) {
        struct qmat inner;
        int64_t n0 = ev->total_samples; /* only the windows count (Prometheus evalSubquery) */
        rc = eval_subquery(ev, ma, &inner);
        ev->total_samples = n0;
        for (size_t i = 0; rc == 0 && i < inner.n; i++) {
            rc = query_ev_check(ev);
            if (rc == 0)
                rc = mcall_series(ev, &mc, inner.s[i].labels, inner.s[i].drop_name, inner.s[i].p,
                                  inner.s[i].n, out);
        }
        query_mat_fini(ev, &inner);
    } else if (rc == 0) {
        const struct query_expr *vs = ma->a;
        int64_t rmin = ref_time(ev, vs, ev->start), rmax = ref_time(ev, vs, ev->end);
        struct selection sel;
        rc = select_open(ev, vs, sat_sub(rmin, ma->range_ms), rmax, &sel);
        struct ptbuf b = {0};
        while (rc == 0 && (rc = select_next(ev, &sel, true, &b)) == 1) {
            rc = query_ev_hold(ev, (int64_t)b.n);
            if (rc == 0)
                rc = mcall_series(ev, &mc, tsdb_series_set_labels(sel.ss), false, b.p, b.n, out);
            ev->cur_samples -= (int64_t)b.n;
        }
        mp_free(b.p);
        select_close(&sel);
    }
    if (rc == 0 && mc.absent) {
        struct qser *s = NULL;
        size_t step = 0;
        for (int64_t ts = ev->start; rc == 0 && ts <= ev->end; ts += ev->interval, step++) {
            if (!mc.present[step]) {
                if (!s) {
                    struct mp_labels *ls;
                    rc = absent_labels(ev, ma->kind == QUERY_SUBQUERY ? ma->a : ma, &ls);
                    if (ma->kind == QUERY_SUBQUERY && rc == 0) {
                        mp_labels_release(ls);
                        ls = mp_labels_empty();
                    }
                    if (rc == 0)
                        rc = query_mat_add(ev, out, ls, false, &s);
                }
                if (rc == 0)
                    rc = query_ser_push(ev, s, ts, 1);
            }
            if (ts > INT64_MAX - ev->interval)
                break;
        }
    }
    if (rc == 0 && !ev->delayed && !keep_labels && query_mat_has_dup_labels(out))
        rc = query_ev_err_dup(ev);
    for (size_t j = 0; mc.other && j < call->nargs; j++)
        query_mat_fini(ev, &mc.other[j]);
    query_vec_fini(&mc.res);
    mp_free(mc.other);
    mp_free(mc.args);
    mp_free(mc.present);
    mp_free(mc.dq);
    if (rc)
        query_mat_fini(ev, out);
    return rc;
}

/* label_replace and label_join work on series, not samples (Prometheus evalLabelReplace and
 * evalLabelJoin): the function relabels each series of the argument once, at its first
 * point; label_replace then rejects duplicate label sets across the matrix (even with delayed
 * name removal), label_join does not check (2.55). With no series the function still runs
 * once, on an empty vector, so bad arguments fail as in Prometheus. */
static int eval_label_fn(struct qev *ev, const struct query_expr *e, qfunc_fn *f, struct qmat *out)
{
    int rc = query_ev_eval(ev, e->args[0], out);
    if (rc)
        return rc;
    struct qarg *args = mp_calloc(e->nargs, sizeof *args);
    struct qvector in = {0}, res = {0};
    if (!args)
        rc = mp_err_set(ev->err, MP_ENOMEM, "call");
    for (size_t j = 1; rc == 0 && j < e->nargs; j++)
        args[j] = (struct qarg){.kind = QARG_STRING, .str = string_arg(e->args[j])};
    struct qsample one;
    in.s = &one;
    in.cap = 1;
    for (size_t i = 0; rc == 0 && i < (out->n ? out->n : 1); i++) {
        struct qser *s = out->n ? &out->s[i] : NULL;
        in.n = 0;
        if (s && s->n) {
            one = (struct qsample){.labels = s->labels,
                                   .v = s->p[0].v,
                                   .t_ms = s->p[0].t_ms,
                                   .drop_name = s->drop_name};
            in.n = 1;
        }
        args[0] = (struct qarg){.kind = QARG_VECTOR, .vec = &in};
        struct qcall c = {.expr = e,
                          .t_ms = s && s->n ? s->p[0].t_ms : ev->start,
                          .args = args,
                          .nargs = e->nargs,
                          .out = &res,
                          .annots = &ev->annots,
                          .lb = ev->lb,
                          .delayed_name_removal = ev->delayed,
                          .start_ms = ev->qstart,
                          .end_ms = ev->qend};
        rc = f(&c, ev->err);
        if (rc == 0 && s && res.n == 1) {
            mp_labels_release(s->labels);
            s->labels = res.s[0].labels;
            s->drop_name = res.s[0].drop_name;
            res.n = 0;
        }
        query_vec_clear(&res);
    }
    query_vec_fini(&res);
    mp_free(args);
    if (rc == 0 && strcmp(e->fn->name, "label_replace") == 0 && query_mat_has_dup_labels(out))
        rc = query_ev_err_dup(ev);
    if (rc)
        query_mat_fini(ev, out);
    return rc;
}

static int eval_call(struct qev *ev, const struct query_expr *e, struct qmat *out)
{
    const char *name = e->fn->name;
    if (strcmp(name, "timestamp") == 0)
        return eval_timestamp(ev, e, out);
    if (strcmp(name, "info") == 0)
        return query_eval_info(ev, e, out);
    struct callctx c = {.call = e, .nargs = e->nargs};
    if (strcmp(name, "absent") == 0) {
        int rc = absent_labels(ev, e->args[0], &c.labels);
        if (rc == 0)
            rc = query_range_eval(ev, (const struct query_expr *const *)e->args, 1, NULL,
                                  step_absent, &c, out);
        mp_labels_release(c.labels);
        return rc;
    }
    if (strncmp(name, "sort", 4) == 0) {
        c.desc = strstr(name, "_desc") != NULL;
        return query_range_eval(ev, (const struct query_expr *const *)e->args, 1, NULL, step_sort,
                                &c, out);
    }
    qfunc_fn *f = query_func_lookup(e->fn);
    if (f && (strcmp(name, "label_replace") == 0 || strcmp(name, "label_join") == 0))
        return eval_label_fn(ev, e, f, out);
    for (size_t i = 0; i < e->nargs; i++) {
        const struct query_expr *a = unparen(e->args[i]);
        if (a->kind == QUERY_MATRIX_SELECTOR || a->kind == QUERY_SUBQUERY) {
            if (!f && strcmp(name, "absent_over_time") != 0)
                return mp_err_set(ev->err, MP_EEXEC, "function %s is not implemented", name);
            return eval_call_matrix(ev, e, i, f, false, out);
        }
    }
    query_step_fn *step = step_call;
    if (!f) {
        if (strcmp(name, "scalar") == 0)
            step = step_scalar;
        else if (strcmp(name, "vector") == 0)
            step = step_vector;
        else if (strcmp(name, "time") == 0)
            step = step_time;
        else
            return mp_err_set(ev->err, MP_EEXEC, "function %s is not implemented", name);
    }
    c.f = f;
    c.args = mp_calloc(e->nargs ? e->nargs : 1, sizeof *c.args);
    if (!c.args)
        return mp_err_set(ev->err, MP_ENOMEM, "call");
    int rc = query_range_eval(ev, (const struct query_expr *const *)e->args, e->nargs, NULL, step,
                              &c, out);
    mp_free(c.args);
    return rc;
}

/* True if a selector matches one metric name only (an __name__ equality matcher): dropping the
 * name then cannot make two of its series' label sets equal. */
static bool selector_fixes_name(const struct query_expr *vs)
{
    for (size_t i = 0; i < vs->nm; i++)
        if (mp_matcher_type(vs->m[i]) == MP_MATCH_EQUAL &&
            mp_str_eq(mp_matcher_name(vs->m[i]), mp_str_c(MP_LABEL_METRIC_NAME)))
            return true;
    return false;
}

static bool inv_has(const struct qev *ev, const struct query_expr *e);

int query_ev_eval_for_grouping(struct qev *ev, const struct query_expr *e, struct qmat *out)
{
    const struct query_expr *c = unparen(e);
    if (c->kind != QUERY_CALL || !ev->inv_ready || (query_ev_nsteps(ev) > 1 && inv_has(ev, e)))
        return query_ev_eval(ev, e, out);
    /* the range-vector calls of eval_call that reach eval_call_matrix over a selector */
    const char *name = c->fn->name;
    qfunc_fn *f = query_func_lookup(c->fn);
    if (!f || strcmp(name, "label_replace") == 0 || strcmp(name, "label_join") == 0)
        return query_ev_eval(ev, e, out);
    for (size_t i = 0; i < c->nargs; i++) {
        const struct query_expr *a = unparen(c->args[i]);
        if (a->kind == QUERY_SUBQUERY)
            break;
        if (a->kind != QUERY_MATRIX_SELECTOR)
            continue;
        /* without the labelset check the result must be duplicate-free by construction */
        if (!ev->delayed && strcmp(name, "last_over_time") != 0 && !selector_fixes_name(a->a))
            break;
        *out = (struct qmat){0};
        int rc = query_ev_check(ev);
        return rc ? rc : eval_call_matrix(ev, c, i, f, true, out);
    }
    return query_ev_eval(ev, e, out);
}

/* ---- the other nodes ------------------------------------------------------------------------ */

static int eval_number(struct qev *ev, double v, struct qmat *out)
{
    *out = (struct qmat){0};
    struct qser *s = NULL;
    int rc = query_mat_add(ev, out, mp_labels_empty(), false, &s);
    for (int64_t ts = ev->start; rc == 0 && ts <= ev->end; ts += ev->interval) {
        rc = query_ser_push(ev, s, ts, v);
        if (ts > INT64_MAX - ev->interval)
            break;
    }
    if (rc)
        query_mat_fini(ev, out);
    return rc;
}

static int eval_unary(struct qev *ev, const struct query_expr *e, struct qmat *out)
{
    int rc = query_ev_eval(ev, e->a, out);
    if (rc || !e->neg)
        return rc;
    bool scalar = query_expr_type(e) == QUERY_TYPE_SCALAR;
    for (size_t i = 0; i < out->n && rc == 0; i++) {
        struct qser *s = &out->s[i];
        if (!scalar) {
            s->labels = query_ev_drop_name(ev, s->labels, &s->drop_name);
            if (!s->labels)
                rc = MP_ENOMEM;
            s->drop_name = true;
        }
        for (size_t j = 0; j < s->n; j++)
            s->p[j].v = -s->p[j].v;
    }
    if (rc == 0 && !scalar && !ev->delayed && query_mat_has_dup_labels(out))
        rc = query_ev_err_dup(ev);
    if (rc) {
        for (size_t i = 0; i < out->n; i++)
            if (!out->s[i].labels)
                out->s[i].labels = mp_labels_empty();
        query_mat_fini(ev, out);
    }
    return rc;
}

/* ---- step invariance (promql.md 2.5, Prometheus preprocessExpr) ---------------------------- */

/* Functions whose value depends on the evaluation time even when their arguments do not. */
static bool at_unsafe(const char *name)
{
    static const char *const names[] = {"days_in_month", "day_of_month", "day_of_week",
                                        "day_of_year", "hour", "minute", "month", "predict_linear",
                                        "time", "timestamp", "year",
                                        /* reads target_info at each step's own time */
                                        "info"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

/* Remembers e as evaluated once. Literals need nothing (they are cheap at every step) and
 * range-typed nodes keep their raw timestamps (Prometheus returns them as they are). */
static int inv_add(struct qev *ev, const struct query_expr *e)
{
    if (e->kind == QUERY_NUMBER || e->kind == QUERY_STRING ||
        query_expr_type(e) == QUERY_TYPE_MATRIX)
        return 0;
    if (ev->ninv == ev->invcap) {
        size_t cap = ev->invcap ? ev->invcap * 2 : 8;
        const struct query_expr **p = mp_realloc(ev->inv, cap * sizeof *p);
        if (!p)
            return mp_err_set(ev->err, MP_ENOMEM, "step invariance");
        ev->inv = p;
        ev->invcap = cap;
    }
    ev->inv[ev->ninv++] = e;
    return 0;
}

/* Prometheus preprocessExprHelper: *inv tells whether e is step invariant (every selector and
 * subquery under it has @, no @-unsafe function); the invariant children of a variant node
 * are remembered, and so is a subquery's invariant inner expression. Unlike Prometheus, an
 * aggregation's parameter counts too, so the result always equals per-step evaluation. */
static int inv_mark(struct qev *ev, const struct query_expr *e, unsigned depth, bool *inv)
{
    *inv = false;
    if (depth > 1024)
        return 0; /* deeper than the parser allows: leave it variant */
    bool a = true, b = true;
    int rc = 0;
    switch (e->kind) {
    case QUERY_NUMBER:
    case QUERY_STRING:
        *inv = true;
        return 0;
    case QUERY_VECTOR_SELECTOR:
    case QUERY_MATRIX_SELECTOR:
        *inv = query_at(e, NULL) != QUERY_AT_NONE;
        return 0;
    case QUERY_PAREN:
    case QUERY_UNARY:
        return inv_mark(ev, e->a, depth + 1, inv);
    case QUERY_SUBQUERY:
        rc = inv_mark(ev, e->a, depth + 1, &a);
        if (rc == 0 && a)
            rc = inv_add(ev, e->a);
        *inv = query_at(e, NULL) != QUERY_AT_NONE;
        return rc;
    case QUERY_AGGREGATE:
        rc = inv_mark(ev, e->a, depth + 1, &a);
        if (rc == 0 && e->b)
            rc = inv_mark(ev, e->b, depth + 1, &b);
        if (rc == 0 && e->b && a != b)
            rc = inv_add(ev, a ? e->a : e->b);
        *inv = a && b;
        return rc;
    case QUERY_BINARY:
        rc = inv_mark(ev, e->a, depth + 1, &a);
        if (rc == 0)
            rc = inv_mark(ev, e->b, depth + 1, &b);
        if (rc == 0 && a && !b)
            rc = inv_add(ev, e->a);
        if (rc == 0 && b && !a)
            rc = inv_add(ev, e->b);
        *inv = a && b;
        return rc;
    case QUERY_CALL: {
        bool all = !at_unsafe(e->fn->name);
        bool *ai = mp_calloc(e->nargs ? e->nargs : 1, sizeof *ai);
        if (!ai)
            return mp_err_set(ev->err, MP_ENOMEM, "step invariance");
        for (size_t i = 0; i < e->nargs && rc == 0; i++) {
            rc = inv_mark(ev, e->args[i], depth + 1, &ai[i]);
            all = all && ai[i];
        }
        for (size_t i = 0; i < e->nargs && rc == 0 && !all; i++)
            if (ai[i])
                rc = inv_add(ev, e->args[i]);
        mp_free(ai);
        *inv = rc == 0 && all;
        return rc;
    }
    }
    return 0;
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (const void *const *)a, y = (uintptr_t) * (const void *const *)b;
    return x < y ? -1 : x > y;
}

static bool inv_has(const struct qev *ev, const struct query_expr *e)
{
    return ev->ninv && bsearch(&e, ev->inv, ev->ninv, sizeof *ev->inv, cmp_ptr) != NULL;
}

/* The outermost evaluation: finds the invariant sub-expressions of the tree e, evaluates it,
 * forgets them. */
static int eval_root(struct qev *ev, const struct query_expr *e, struct qmat *out)
{
    bool inv;
    ev->ninv = 0;
    int rc = inv_mark(ev, e, 0, &inv);
    if (rc == 0 && inv)
        rc = inv_add(ev, e);
    if (rc == 0) {
        if (ev->ninv > 1)
            qsort(ev->inv, ev->ninv, sizeof *ev->inv, cmp_ptr);
        ev->inv_ready = true;
        rc = query_ev_eval(ev, e, out);
        ev->inv_ready = false;
    }
    mp_free(ev->inv);
    ev->inv = NULL;
    ev->ninv = ev->invcap = 0;
    return rc;
}

/* A step-invariant e over several steps: evaluated at the first step only, its points are
 * repeated at every step (Prometheus's StepInvariantExpr). The samples it read count at every
 * step, as in Prometheus. */
static int eval_invariant(struct qev *ev, const struct query_expr *e, struct qmat *out)
{
    int64_t end = ev->end, n0 = ev->total_samples;
    bool was = ev->invariant;
    size_t nsteps = query_ev_nsteps(ev);
    ev->end = ev->start;
    ev->invariant = true;
    int rc = query_ev_eval(ev, e, out);
    ev->end = end;
    ev->invariant = was;
    int64_t read = ev->total_samples - n0;
    for (size_t k = 1; rc == 0 && read && k < nsteps; k++)
        query_ev_count(ev, ev->start + (int64_t)k * ev->interval, read);
    for (size_t i = 0; rc == 0 && i < out->n; i++) {
        struct qser *s = &out->s[i];
        if (s->n != 1)
            continue;
        if (s->cap < nsteps) {
            struct query_point *p = mp_realloc(s->p, nsteps * sizeof *p);
            if (!p) {
                rc = mp_err_set(ev->err, MP_ENOMEM, "series points");
                break;
            }
            s->p = p;
            s->cap = nsteps;
        }
        rc = query_ev_hold(ev, (int64_t)nsteps - 1);
        if (rc)
            break;
        for (size_t k = 1; k < nsteps; k++)
            s->p[k] = (struct query_point){ev->start + (int64_t)k * ev->interval, s->p[0].v};
        s->n = nsteps;
    }
    if (rc)
        query_mat_fini(ev, out);
    return rc;
}

int query_ev_eval(struct qev *ev, const struct query_expr *e, struct qmat *out)
{
    *out = (struct qmat){0};
    int rc = query_ev_check(ev);
    if (rc)
        return rc;
    if (!ev->inv_ready)
        return eval_root(ev, e, out);
    if (query_ev_nsteps(ev) > 1 && inv_has(ev, e))
        return eval_invariant(ev, e, out);
    switch (e->kind) {
    case QUERY_NUMBER:
        return eval_number(ev, e->num, out);
    case QUERY_STRING:
        return 0;
    case QUERY_PAREN:
        return query_ev_eval(ev, e->a, out);
    case QUERY_UNARY:
        return eval_unary(ev, e, out);
    case QUERY_BINARY:
        return query_eval_binary(ev, e, out);
    case QUERY_CALL:
        return eval_call(ev, e, out);
    case QUERY_AGGREGATE:
        return query_eval_aggregate(ev, e, out);
    case QUERY_VECTOR_SELECTOR:
        return eval_vector_selector(ev, e, false, out);
    case QUERY_MATRIX_SELECTOR:
        return eval_matrix_raw(ev, e, out);
    case QUERY_SUBQUERY: { /* its samples count at the last step, as Prometheus's */
        int64_t n0 = ev->total_samples;
        rc = eval_subquery(ev, e, out);
        int64_t n = ev->total_samples - n0;
        ev->total_samples = n0;
        query_ev_count(ev, ev->end, n);
        return rc;
    }
    }
    return mp_err_set(ev->err, MP_EINVAL, "unknown expression node");
}
