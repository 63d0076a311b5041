/* SPDX-License-Identifier: Apache-2.0 */
/* query/eval_aggr.c: aggregation operators (promql.md 4), as Prometheus 2.55's rangeEvalAgg:
 * the input series are mapped to groups once (by/without hash, groups in order of first
 * appearance over the input matrix), then every step streams the series' points at that step
 * into their group's accumulator (Kahan-Neumaier sum, the 2.55 avg, Welford stddev/stdvar,
 * heaps for topk/bottomk). No allocation per step after the first (quantile buffers and heaps
 * are reused). count_values goes through query_range_eval (its groups depend on values). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "query/eval_core.h"
#include "query/func.h"

struct group {
    bool seen;
    double v, mean, c, count;
    bool incremental;
    double *qv; /* quantile: this step's values */
    size_t qn, qcap;
    uint32_t *heap; /* topk family: input series indices */
    size_t hn;
};

struct agg {
    struct qmat in;
    size_t *cur;     /* per input series: next point */
    uint32_t *group; /* per input series: its group */
    struct group *g;
    size_t ng;
    double *val; /* topk family: this step's value per input series */
    int64_t k;
    double ratio;
};

/* Prometheus generateGroupingLabels over names[0..n): by keeps those labels, without drops them
 * and __name__, by () gives the empty set; `by (__name__)` keeps a name even when it is due to
 * go (delayed name removal), as 2.55 does. */
static int grouping_labels(struct qev *ev, bool without, const struct mp_str *names, size_t n,
                           const struct mp_labels *ls, struct mp_labels **out)
{
    if (!without && n == 0) {
        *out = mp_labels_empty();
        return 0;
    }
    int rc = 0;
    if (without) {
        mp_labels_builder_reset(ev->lb, ls);
        for (size_t i = 0; i < n; i++)
            mp_labels_builder_del(ev->lb, names[i]);
        mp_labels_builder_del(ev->lb, mp_str_c(MP_LABEL_METRIC_NAME));
    } else {
        mp_labels_builder_reset(ev->lb, NULL);
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = mp_labels_builder_set(ev->lb, names[i], mp_labels_get(ls, names[i]));
    }
    if (rc == 0)
        rc = mp_labels_builder_labels(ev->lb, out, ev->err);
    return rc ? mp_err_set(ev->err, rc, "grouping labels") : 0;
}

static uint64_t group_key(const struct query_expr *e, const struct mp_labels *ls)
{
    if (e->without)
        return mp_labels_hash_without(ls, e->labels, e->nlabels);
    if (e->nlabels == 0)
        return 0;
    return mp_labels_hash_for(ls, e->labels, e->nlabels);
}

static bool k_family(enum query_aggr op)
{
    return op == QUERY_AGGR_TOPK || op == QUERY_AGGR_BOTTOMK || op == QUERY_AGGR_LIMITK ||
           op == QUERY_AGGR_LIMIT_RATIO;
}

/* Groups of the input series; for the non-k operators out gets one series per group. */
static int make_groups(struct qev *ev, const struct query_expr *e, struct agg *a, struct qmat *out)
{
    size_t n = a->in.n;
    a->group = mp_malloc((n ? n : 1) * sizeof *a->group);
    a->cur = mp_calloc(n ? n : 1, sizeof *a->cur);
    uint64_t *keys = mp_malloc((n ? n : 1) * sizeof *keys);
    size_t cap = 16;
    while (cap < n * 2)
        cap *= 2;
    uint32_t *slot = mp_calloc(cap, sizeof *slot);
    int rc = 0;
    if (!a->group || !a->cur || !keys || !slot)
        rc = mp_err_set(ev->err, MP_ENOMEM, "aggregation groups");
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint64_t h = group_key(e, a->in.s[i].labels);
        size_t j = h & (cap - 1);
        while (slot[j] && keys[slot[j] - 1] != h)
            j = (j + 1) & (cap - 1);
        if (!slot[j]) {
            keys[a->ng] = h;
            slot[j] = (uint32_t)(a->ng + 1);
            a->ng++;
            if (!k_family(e->aggr)) {
                struct mp_labels *ls;
                struct qser *s;
                /* 2.55 (rangeEvalAgg): the group keeps a name that is due to go (its key hashed
                 * it too) and takes the mark of the input series with the group's index, not of
                 * a member of the group. */
                rc = grouping_labels(ev, e->without, e->labels, e->nlabels, a->in.s[i].labels, &ls);
                if (rc == 0)
                    rc = query_mat_add(ev, out, ls, a->in.s[a->ng - 1].drop_name, &s);
            }
        }
        a->group[i] = slot[j] - 1;
    }
    mp_free(keys);
    mp_free(slot);
    if (rc == 0) {
        a->g = mp_calloc(a->ng ? a->ng : 1, sizeof *a->g);
        if (!a->g)
            rc = mp_err_set(ev->err, MP_ENOMEM, "aggregation groups");
    }
    return rc;
}

static void agg_fini(struct qev *ev, struct agg *a)
{
    for (size_t i = 0; a->g && i < a->ng; i++) {
        mp_free(a->g[i].qv);
        mp_free(a->g[i].heap);
    }
    mp_free(a->g);
    mp_free(a->group);
    mp_free(a->cur);
    mp_free(a->val);
    query_mat_fini(ev, &a->in);
}

/* ---- one step of the plain aggregations ----------------------------------------------------- */

static int add_value(struct qev *ev, enum query_aggr op, struct group *g, double f)
{
    if (!g->seen) {
        *g = (struct group){.seen = true,
                            .v = f,
                            .mean = f,
                            .count = 1,
                            .qv = g->qv,
                            .qcap = g->qcap,
                            .heap = g->heap};
        switch (op) {
        case QUERY_AGGR_STDDEV:
        case QUERY_AGGR_STDVAR:
            g->v = isnan(f) || isinf(f) ? NAN : 0;
            break;
        case QUERY_AGGR_GROUP:
            g->v = 1;
            break;
        case QUERY_AGGR_QUANTILE:
            break;
        default:
            return 0;
        }
        if (op != QUERY_AGGR_QUANTILE)
            return 0;
    }
    switch (op) {
    case QUERY_AGGR_SUM:
        query_kahan_inc(f, &g->v, &g->c);
        break;
    case QUERY_AGGR_AVG:
        g->count++;
        if (!g->incremental) {
            double c = g->c, nv = g->v;
            query_kahan_inc(f, &nv, &c);
            if (!isinf(nv)) {
                g->v = nv;
                g->c = c;
                break;
            }
            g->incremental = true;
            g->mean = g->v / (g->count - 1);
            g->c = g->c / (g->count - 1);
        }
        if (isinf(g->mean)) {
            if (isinf(f) && (g->mean > 0) == (f > 0))
                break;
            if (!isinf(f) && !isnan(f))
                break;
        }
        {
            double cur = g->mean + g->c;
            query_kahan_inc(f / g->count - cur / g->count, &g->mean, &g->c);
        }
        break;
    case QUERY_AGGR_MAX:
        if (g->v < f || isnan(g->v))
            g->v = f;
        break;
    case QUERY_AGGR_MIN:
        if (g->v > f || isnan(g->v))
            g->v = f;
        break;
    case QUERY_AGGR_COUNT:
        g->count++;
        break;
    case QUERY_AGGR_STDDEV:
    case QUERY_AGGR_STDVAR: {
        g->count++;
        double d = f - g->mean;
        g->mean += d / g->count;
        g->v += d * (f - g->mean);
        break;
    }
    case QUERY_AGGR_QUANTILE:
        if (g->qn == g->qcap) {
            size_t cap = g->qcap ? g->qcap * 2 : 16;
            double *q = mp_realloc(g->qv, cap * sizeof *q);
            if (!q)
                return mp_err_set(ev->err, MP_ENOMEM, "quantile values");
            g->qv = q;
            g->qcap = cap;
        }
        g->qv[g->qn++] = f;
        break;
    default:
        break;
    }
    return 0;
}

static double group_result(enum query_aggr op, struct group *g, double param)
{
    switch (op) {
    case QUERY_AGGR_AVG:
        return g->incremental ? g->mean + g->c : (g->v + g->c) / g->count;
    case QUERY_AGGR_COUNT:
        return g->count;
    case QUERY_AGGR_STDVAR:
        return g->v / g->count;
    case QUERY_AGGR_STDDEV:
        return sqrt(g->v / g->count);
    case QUERY_AGGR_QUANTILE:
        return query_quantile(param, g->qv, g->qn);
    case QUERY_AGGR_SUM:
        return g->v + g->c;
    default:
        return g->v;
    }
}

/* ---- topk / bottomk / limitk / limit_ratio -------------------------------------------------- */

/* Go container/heap over vectorByValueHeap (topk, limitk: NaN smallest) or
 * vectorByReverseValueHeap (bottomk: NaN "largest"). */
static bool heap_less(const struct agg *a, bool rev, uint32_t i, uint32_t j)
{
    double x = a->val[i], y = a->val[j];
    if (isnan(x))
        return true;
    return rev ? x > y : x < y;
}

static void heap_down(const struct agg *a, bool rev, uint32_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= n)
            return;
        size_t m = l;
        if (l + 1 < n && heap_less(a, rev, h[l + 1], h[l]))
            m = l + 1;
        if (!heap_less(a, rev, h[m], h[i]))
            return;
        uint32_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void heap_up(const struct agg *a, bool rev, uint32_t *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (p == i || !heap_less(a, rev, h[i], h[p]))
            return;
        uint32_t t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

static bool ratio_keep(double ratio, const struct mp_labels *ls)
{
    double off = (double)mp_labels_hash(ls) / (double)UINT64_MAX;
    return (ratio >= 0 && off < ratio) || (ratio < 0 && off >= 1.0 + ratio);
}

static int heap_push(struct qev *ev, struct agg *a, struct group *g, bool rev, uint32_t si,
                     bool fix)
{
    if (!g->heap) {
        size_t cap = (size_t)a->k < a->in.n ? (size_t)a->k : a->in.n;
        g->heap = mp_malloc((cap ? cap : 1) * sizeof *g->heap);
        if (!g->heap)
            return mp_err_set(ev->err, MP_ENOMEM, "topk heap");
    }
    g->heap[g->hn++] = si;
    if (fix)
        heap_up(a, rev, g->heap, g->hn - 1);
    return 0;
}

/* Sorts a group's heap best-first (sort.Reverse of the heap order): insertion sort, heaps
 * hold at most k elements. */
static void heap_sort_out(const struct agg *a, bool rev, uint32_t *h, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        uint32_t x = h[i];
        size_t j = i;
        while (j > 0 && heap_less(a, rev, h[j - 1], x)) {
            h[j] = h[j - 1];
            j--;
        }
        h[j] = x;
    }
}

/* One step; outidx[si] is 1 + the output series of input series si (0: none yet). */
static int step_k(struct qev *ev, const struct query_expr *e, struct agg *a, int64_t ts,
                  size_t *outidx, struct qmat *out)
{
    enum query_aggr op = e->aggr;
    bool rev = op == QUERY_AGGR_BOTTOMK;
    size_t k = (size_t)a->k;
    int rc = 0;
    for (size_t i = 0; i < a->ng; i++) {
        a->g[i].seen = false;
        a->g[i].hn = 0;
    }
    for (size_t si = 0; si < a->in.n && rc == 0; si++) {
        struct qser *s = &a->in.s[si];
        size_t c = a->cur[si];
        if (c >= s->n || s->p[c].t_ms != ts)
            continue;
        a->cur[si] = c + 1;
        double f = s->p[c].v;
        a->val[si] = f;
        struct group *g = &a->g[a->group[si]];
        if (!g->seen) {
            g->seen = true;
            if (op != QUERY_AGGR_LIMIT_RATIO || ratio_keep(a->ratio, s->labels))
                rc = heap_push(ev, a, g, rev, (uint32_t)si, false);
            continue;
        }
        switch (op) {
        case QUERY_AGGR_TOPK:
        case QUERY_AGGR_BOTTOMK:
            if (g->hn < k) {
                rc = heap_push(ev, a, g, rev, (uint32_t)si, true);
            } else {
                double root = a->val[g->heap[0]];
                bool better = rev ? root > f : root < f;
                if (better || (isnan(root) && !isnan(f))) {
                    g->heap[0] = (uint32_t)si;
                    if (k > 1)
                        heap_down(a, rev, g->heap, g->hn, 0);
                }
            }
            break;
        case QUERY_AGGR_LIMITK:
            if (g->hn < k)
                rc = heap_push(ev, a, g, rev, (uint32_t)si, true);
            break;
        default:
            if (ratio_keep(a->ratio, s->labels))
                rc = heap_push(ev, a, g, rev, (uint32_t)si, true);
            break;
        }
    }
    for (size_t i = 0; i < a->ng && rc == 0; i++) {
        struct group *g = &a->g[i];
        if (!g->seen)
            continue;
        if (op == QUERY_AGGR_TOPK || op == QUERY_AGGR_BOTTOMK)
            heap_sort_out(a, rev, g->heap, g->hn);
        for (size_t j = 0; j < g->hn && rc == 0; j++) {
            uint32_t si = g->heap[j];
            if (!outidx[si]) {
                struct qser *o;
                rc = query_mat_add(ev, out, mp_labels_acquire(a->in.s[si].labels),
                                   a->in.s[si].drop_name, &o);
                outidx[si] = out->n;
            }
            if (rc == 0)
                rc = query_ser_push(ev, &out->s[outidx[si] - 1], ts, a->val[si]);
        }
    }
    return rc;
}

/* ---- count_values --------------------------------------------------------------------------- */

struct cv {
    const struct query_expr *e;
    struct mp_str label;
    struct mp_str *grouping; /* by labels plus the value label */
    size_t ngrouping;
    uint64_t *keys;  /* open addressing: group key per slot */
    uint32_t *slots; /* 1 + output index; 0 = empty */
    size_t mask;
    struct mp_buf num;
};

static int step_count_values(struct qev *ev, void *vctx, int64_t ts, struct qstep_in *in,
                             struct qvector *out)
{
    struct cv *cv = vctx;
    const struct qvector *v = &in[0].v;
    size_t cap = 16;
    while (cap < v->n * 2)
        cap *= 2;
    if (cap > cv->mask + 1) {
        mp_free(cv->keys);
        mp_free(cv->slots);
        cv->keys = mp_malloc(cap * sizeof *cv->keys);
        cv->slots = mp_malloc(cap * sizeof *cv->slots);
        if (!cv->keys || !cv->slots)
            return mp_err_set(ev->err, MP_ENOMEM, "count_values");
        cv->mask = cap - 1;
    }
    memset(cv->slots, 0, (cv->mask + 1) * sizeof *cv->slots);
    int rc = 0;
    for (size_t i = 0; i < v->n && rc == 0; i++) {
        mp_buf_reset(&cv->num);
        rc = query_fmt_float(&cv->num, v->s[i].v);
        mp_labels_builder_reset(ev->lb, v->s[i].labels);
        if (rc == 0)
            rc = mp_labels_builder_set(ev->lb, cv->label,
                                       (struct mp_str){cv->num.data, cv->num.len});
        struct mp_labels *metric = NULL;
        if (rc == 0)
            rc = mp_labels_builder_labels(ev->lb, &metric, ev->err);
        if (rc)
            break;
        uint64_t h = cv->e->without  ? mp_labels_hash_without(metric, cv->grouping, cv->ngrouping)
                     : cv->ngrouping ? mp_labels_hash_for(metric, cv->grouping, cv->ngrouping)
                                     : 0;
        size_t j = h & cv->mask;
        while (cv->slots[j] && cv->keys[j] != h)
            j = (j + 1) & cv->mask;
        if (cv->slots[j]) {
            out->s[cv->slots[j] - 1].v++;
            mp_labels_release(metric);
            continue;
        }
        struct mp_labels *gl;
        rc = grouping_labels(ev, cv->e->without, cv->grouping, cv->ngrouping, metric, &gl);
        mp_labels_release(metric);
        if (rc == 0) {
            cv->keys[j] = h;
            cv->slots[j] = (uint32_t)(out->n + 1);
            rc = query_vec_push(out, gl, 1, ts, false);
        }
    }
    return rc ? mp_err_set(ev->err, rc, "count_values") : 0;
}

static int eval_count_values(struct qev *ev, const struct query_expr *e, struct qmat *out)
{
    const struct query_expr *p = e->b;
    while (p->kind == QUERY_PAREN)
        p = p->a;
    struct cv cv = {.e = e, .label = p->str};
    if (!mp_label_name_is_valid(cv.label)) {
        /* "%s" of the StringLiteral node: its String() is strconv.Quote of the value */
        struct mp_buf q;
        mp_buf_init(&q, 0);
        int rc = query_go_quote(&q, cv.label, 0);
        if (rc == 0)
            rc = mp_err_set(ev->err, MP_EEXEC, "invalid label name %.*s", (int)q.len, q.data);
        mp_buf_fini(&q);
        return rc;
    }
    cv.grouping = mp_malloc((e->nlabels + 1) * sizeof *cv.grouping);
    if (!cv.grouping)
        return mp_err_set(ev->err, MP_ENOMEM, "count_values");
    if (e->nlabels)
        memcpy(cv.grouping, e->labels, e->nlabels * sizeof *cv.grouping);
    cv.ngrouping = e->nlabels;
    if (!e->without)
        cv.grouping[cv.ngrouping++] = cv.label;
    mp_buf_init(&cv.num, 0);
    int rc = query_range_eval(ev, (const struct query_expr *const *)&e->a, 1, NULL,
                              step_count_values, &cv, out);
    mp_buf_fini(&cv.num);
    mp_free(cv.slots);
    mp_free(cv.keys);
    mp_free(cv.grouping);
    return rc;
}

/* ---- the node ------------------------------------------------------------------------------- */

/* Go %g of v into buf (truncated on OOM, which only shortens a message). */
static const char *fmt_g(char *buf, size_t cap, double v)
{
    struct mp_buf b;
    mp_buf_init(&b, 0);
    buf[0] = 0;
    if (query_fmt_go_g(&b, v) == 0)
        snprintf(buf, cap, "%.*s", (int)b.len, b.data);
    mp_buf_fini(&b);
    return buf;
}

static bool fits_int64(double v)
{
    return v <= 9223372036854774784.0 && v >= -9223372036854775808.0;
}

int query_eval_aggregate(struct qev *ev, const struct query_expr *e, struct qmat *out)
{
    *out = (struct qmat){0};
    enum query_aggr op = e->aggr;
    if (op == QUERY_AGGR_COUNT_VALUES)
        return eval_count_values(ev, e, out);
    double param = NAN;
    int rc = 0;
    if (e->b) {
        struct qmat pm;
        rc = query_ev_eval(ev, e->b, &pm);
        if (rc)
            return rc;
        if (pm.n && pm.s[0].n)
            param = pm.s[0].p[0].v;
        query_mat_fini(ev, &pm);
    }
    struct agg a = {0};
    bool by_name = false;
    for (size_t i = 0; !e->without && i < e->nlabels; i++)
        by_name = by_name || mp_str_eq(e->labels[i], mp_str_c(MP_LABEL_METRIC_NAME));
    /* only the grouping labels are read (the topk family outputs the input series) */
    rc = k_family(op) || by_name ? query_ev_eval(ev, e->a, &a.in)
                                 : query_ev_eval_for_grouping(ev, e->a, &a.in);
    if (rc == 0)
        rc = make_groups(ev, e, &a, out);
    char g1[40], g2[40];
    bool empty = false;
    if (rc == 0) {
        switch (op) {
        case QUERY_AGGR_TOPK:
        case QUERY_AGGR_BOTTOMK:
        case QUERY_AGGR_LIMITK:
            if (!fits_int64(param)) {
                fmt_g(g1, sizeof g1, param);
                rc = mp_err_set(ev->err, MP_EEXEC, "Scalar value %s overflows int64", g1);
                break;
            }
            a.k = (int64_t)param;
            if (a.k > (int64_t)a.in.n)
                a.k = (int64_t)a.in.n;
            empty = a.k < 1;
            break;
        case QUERY_AGGR_LIMIT_RATIO:
            if (isnan(param)) {
                rc = mp_err_set(ev->err, MP_EEXEC, "Ratio value NaN is NaN");
                break;
            }
            a.ratio = param;
            if (param < -1.0 || param > 1.0) {
                a.ratio = param < -1.0 ? -1.0 : 1.0;
                fmt_g(g1, sizeof g1, param);
                fmt_g(g2, sizeof g2, a.ratio);
                rc = query_annots_add(&ev->annots, true,
                                      "ratio value should be between -1 and 1, got %s, capping "
                                      "to %s",
                                      g1, g2);
            }
            a.k = (int64_t)a.in.n;
            empty = param == 0;
            break;
        case QUERY_AGGR_QUANTILE:
            if (isnan(param) || param < 0 || param > 1) {
                fmt_g(g1, sizeof g1, param);
                rc = query_annots_add(&ev->annots, true,
                                      "quantile value should be between 0 and 1, got %s", g1);
            }
            break;
        default:
            break;
        }
    }
    size_t *outidx = NULL;
    if (rc == 0 && !empty && k_family(op)) {
        outidx = mp_calloc(a.in.n ? a.in.n : 1, sizeof *outidx);
        a.val = mp_malloc((a.in.n ? a.in.n : 1) * sizeof *a.val);
        if (!outidx || !a.val)
            rc = mp_err_set(ev->err, MP_ENOMEM, "aggregation");
    }
    for (int64_t ts = ev->start; rc == 0 && !empty && ts <= ev->end; ts += ev->interval) {
        rc = query_ev_check(ev);
        if (rc)
            break;
        if (k_family(op)) {
            rc = step_k(ev, e, &a, ts, outidx, out);
        } else {
            for (size_t i = 0; i < a.ng; i++) {
                a.g[i].seen = false;
                a.g[i].qn = 0;
            }
            for (size_t si = 0; si < a.in.n && rc == 0; si++) {
                struct qser *s = &a.in.s[si];
                size_t c = a.cur[si];
                if (c >= s->n || s->p[c].t_ms != ts)
                    continue;
                a.cur[si] = c + 1;
                rc = add_value(ev, op, &a.g[a.group[si]], s->p[c].v);
            }
            for (size_t i = 0; i < a.ng && rc == 0; i++)
                if (a.g[i].seen)
                    rc = query_ser_push(ev, &out->s[i], ts, group_result(op, &a.g[i], param));
        }
        if (ts > INT64_MAX - ev->interval)
            break;
    }
    mp_free(outidx);
    agg_fini(ev, &a);
    if (rc)
        query_mat_fini(ev, out);
    else
        query_mat_compact(out);
    return rc;
}
