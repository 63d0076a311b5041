/* SPDX-License-Identifier: Apache-2.0 */
/* query/eval_binop.c: binary operators (promql.md 5) as Prometheus 2.55's VectorBinop,
 * VectorscalarBinop, VectorAnd/Or/Unless over query_range_eval. Each input series' matching
 * signature (on: hash of the listed labels, ignoring/default: hash without them and
 * __name__) is computed once; each step hashes signatures into tables reused across steps
 * (generation stamps instead of clearing). Result label sets are cached per input series
 * (vector-scalar: the name-dropped set; vector-vector: the set for the last matched partner),
 * so steady series build their labels once, not once per step. */
#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "query/eval_core.h"

/* ---- signature table ------------------------------------------------------------------------ */

struct stab {
    uint64_t *key;
    uint32_t *val;
    uint32_t *gen;
    size_t mask;
    uint32_t cur;
};

static void stab_fini(struct stab *t)
{
    mp_free(t->key);
    mp_free(t->val);
    mp_free(t->gen);
    *t = (struct stab){0};
}

/* Starts a new (empty) generation able to hold n keys. */
static int stab_begin(struct stab *t, size_t n)
{
    size_t cap = 16;
    while (cap < n * 2 + 2)
        cap *= 2;
    if (cap > t->mask + 1 || !t->key) {
        stab_fini(t);
        t->key = mp_malloc(cap * sizeof *t->key);
        t->val = mp_malloc(cap * sizeof *t->val);
        t->gen = mp_calloc(cap, sizeof *t->gen);
        if (!t->key || !t->val || !t->gen)
            return MP_ENOMEM;
        t->mask = cap - 1;
        t->cur = 0;
    }
    if (++t->cur == 0) {
        memset(t->gen, 0, (t->mask + 1) * sizeof *t->gen);
        t->cur = 1;
    }
    return 0;
}

/* Slot of key: *found tells whether it is set in this generation. */
static size_t stab_slot(const struct stab *t, uint64_t key, bool *found)
{
    size_t j = (key ^ (key >> 29)) & t->mask;
    while (t->gen[j] == t->cur) {
        if (t->key[j] == key) {
            *found = true;
            return j;
        }
        j = (j + 1) & t->mask;
    }
    *found = false;
    return j;
}

static void stab_put(struct stab *t, size_t slot, uint64_t key, uint32_t val)
{
    t->gen[slot] = t->cur;
    t->key[slot] = key;
    t->val[slot] = val;
}

/* ---- element operations --------------------------------------------------------------------- */

static bool is_comparison(enum query_op op)
{
    return op >= QUERY_OP_EQLC && op <= QUERY_OP_GTR;
}

static bool is_set_op(enum query_op op)
{
    return op == QUERY_OP_AND || op == QUERY_OP_OR || op == QUERY_OP_UNLESS;
}

/* vectorElemBinop: the value and whether the element is kept (comparisons filter and keep the
 * left operand's value). */
static double elem_op(enum query_op op, double l, double r, bool *keep)
{
    *keep = true;
    switch (op) {
    case QUERY_OP_ADD:
        return l + r;
    case QUERY_OP_SUB:
        return l - r;
    case QUERY_OP_MUL:
        return l * r;
    case QUERY_OP_DIV:
        return l / r;
    case QUERY_OP_MOD:
        return fmod(l, r);
    case QUERY_OP_POW:
        return pow(l, r);
    case QUERY_OP_ATAN2:
        return atan2(l, r);
    case QUERY_OP_EQLC:
        *keep = l == r;
        return l;
    case QUERY_OP_NEQ:
        *keep = l != r;
        return l;
    case QUERY_OP_GTR:
        *keep = l > r;
        return l;
    case QUERY_OP_LSS:
        *keep = l < r;
        return l;
    case QUERY_OP_GTE:
        *keep = l >= r;
        return l;
    case QUERY_OP_LTE:
        *keep = l <= r;
        return l;
    default:
        *keep = false;
        return NAN;
    }
}

/* ---- context -------------------------------------------------------------------------------- */

struct bin {
    const struct query_expr *e;
    enum query_op op;
    bool ret_bool;
    enum query_card card;
    bool on;
    const struct mp_str *names;
    size_t nnames;
    const struct mp_str *incl;
    size_t nincl;
    uint64_t *sig[2]; /* per series of each side */
    size_t nser[2];
    struct mp_labels **cache; /* per series of the "many" (or vector) side */
    bool *cache_dn;
    uint32_t *cache_peer; /* the partner series the cached labels were built for */
    size_t ncache;
    bool swap_sides; /* group_right; vector-scalar: scalar on the left */
    struct stab right, matched;
};

static void bin_fini(struct bin *b)
{
    for (size_t i = 0; i < b->ncache; i++)
        mp_labels_release(b->cache[i]);
    mp_free(b->cache);
    mp_free(b->cache_dn);
    mp_free(b->cache_peer);
    mp_free(b->sig[0]);
    mp_free(b->sig[1]);
    stab_fini(&b->right);
    stab_fini(&b->matched);
}

static uint64_t signature(const struct bin *b, const struct mp_labels *ls)
{
    if (b->on)
        return mp_labels_hash_for(ls, b->names, b->nnames);
    return mp_labels_hash_without(ls, b->names, b->nnames);
}

static int prep_cache(struct qev *ev, struct bin *b, size_t n)
{
    b->cache = mp_calloc(n ? n : 1, sizeof *b->cache);
    b->cache_dn = mp_calloc(n ? n : 1, sizeof *b->cache_dn);
    b->cache_peer = mp_calloc(n ? n : 1, sizeof *b->cache_peer);
    if (!b->cache || !b->cache_dn || !b->cache_peer)
        return mp_err_set(ev->err, MP_ENOMEM, "binary operator");
    b->ncache = n;
    return 0;
}

static int prep_sig(struct qev *ev, void *vctx, size_t i, const struct qmat *m)
{
    struct bin *b = vctx;
    b->nser[i] = m->n;
    b->sig[i] = mp_malloc((m->n ? m->n : 1) * sizeof *b->sig[i]);
    if (!b->sig[i])
        return mp_err_set(ev->err, MP_ENOMEM, "signatures");
    for (size_t k = 0; k < m->n; k++)
        b->sig[i][k] = signature(b, m->s[k].labels);
    /* the many side (lhs, or rhs for group_right) gets the label cache */
    if (!is_set_op(b->op) && i == (b->card == QUERY_CARD_ONE_TO_MANY ? 1u : 0u))
        return prep_cache(ev, b, m->n);
    return 0;
}

static int push_copy(struct qev *ev, struct qvector *out, const struct qsample *x)
{
    if (query_vec_push(out, mp_labels_acquire(x->labels), x->v, x->t_ms, x->drop_name))
        return mp_err_set(ev->err, MP_ENOMEM, "binary operator");
    return 0;
}

/* ---- set operators -------------------------------------------------------------------------- */

static int step_set(struct qev *ev, void *vctx, int64_t ts, struct qstep_in *in,
                    struct qvector *out)
{
    (void)ts;
    struct bin *b = vctx;
    const struct qvector *l = &in[0].v, *r = &in[1].v;
    int rc = 0;
    if (b->op == QUERY_OP_AND && (l->n == 0 || r->n == 0))
        return 0;
    if (b->op == QUERY_OP_OR && (l->n == 0 || r->n == 0)) {
        for (size_t i = 0; i < l->n && rc == 0; i++)
            rc = push_copy(ev, out, &l->s[i]);
        for (size_t i = 0; i < r->n && rc == 0; i++)
            rc = push_copy(ev, out, &r->s[i]);
        return rc;
    }
    if (b->op == QUERY_OP_UNLESS && (l->n == 0 || r->n == 0)) {
        for (size_t i = 0; i < l->n && rc == 0; i++)
            rc = push_copy(ev, out, &l->s[i]);
        return rc;
    }
    bool found;
    /* the side whose signatures are looked up: rhs for and/unless, lhs for or */
    const struct qstep_in *set = b->op == QUERY_OP_OR ? &in[0] : &in[1];
    const uint64_t *ssig = b->sig[b->op == QUERY_OP_OR ? 0 : 1];
    if (stab_begin(&b->right, set->v.n))
        return mp_err_set(ev->err, MP_ENOMEM, "set operator");
    for (size_t i = 0; i < set->v.n; i++) {
        uint64_t s = ssig[set->idx[i]];
        size_t slot = stab_slot(&b->right, s, &found);
        if (!found)
            stab_put(&b->right, slot, s, 0);
    }
    if (b->op == QUERY_OP_OR) {
        for (size_t i = 0; i < l->n && rc == 0; i++)
            rc = push_copy(ev, out, &l->s[i]);
        for (size_t i = 0; i < r->n && rc == 0; i++) {
            stab_slot(&b->right, b->sig[1][in[1].idx[i]], &found);
            if (!found)
                rc = push_copy(ev, out, &r->s[i]);
        }
        return rc;
    }
    for (size_t i = 0; i < l->n && rc == 0; i++) {
        stab_slot(&b->right, b->sig[0][in[0].idx[i]], &found);
        if (found == (b->op == QUERY_OP_AND))
            rc = push_copy(ev, out, &l->s[i]);
    }
    return rc;
}

/* ---- vector-vector -------------------------------------------------------------------------- */

static bool in_names(const struct mp_str *names, size_t n, struct mp_str name)
{
    for (size_t i = 0; i < n; i++)
        if (mp_str_eq(names[i], name))
            return true;
    return false;
}

static bool keep_on(void *ctx, struct mp_str name, struct mp_str value)
{
    (void)value;
    const struct bin *b = ctx;
    return in_names(b->names, b->nnames, name);
}

/* Labels.MatchLabels: on keeps the listed labels, otherwise all but them and __name__. */
static int format_match_group(struct qev *ev, const struct bin *b, const struct mp_labels *ls,
                              struct mp_buf *out)
{
    mp_labels_builder_reset(ev->lb, ls);
    if (b->on) {
        mp_labels_builder_filter(ev->lb, keep_on, (void *)b);
    } else {
        for (size_t i = 0; i < b->nnames; i++)
            mp_labels_builder_del(ev->lb, b->names[i]);
        mp_labels_builder_del(ev->lb, mp_str_c(MP_LABEL_METRIC_NAME));
    }
    struct mp_labels *m;
    int rc = mp_labels_builder_labels(ev->lb, &m, NULL);
    if (rc == 0) {
        rc = mp_labels_format(m, out);
        mp_labels_release(m);
    }
    return rc;
}

static int dup_error(struct qev *ev, const struct bin *b, const struct mp_labels *cur,
                     const struct mp_labels *first)
{
    struct mp_buf g, x, y;
    mp_buf_init(&g, 0);
    mp_buf_init(&x, 0);
    mp_buf_init(&y, 0);
    int rc = format_match_group(ev, b, cur, &g);
    if (rc == 0)
        rc = mp_labels_format(cur, &x);
    if (rc == 0)
        rc = mp_labels_format(first, &y);
    if (rc == 0)
        rc = mp_err_set(ev->err, MP_EEXEC,
                        "found duplicate series for the match group %.*s on the %s hand-side of "
                        "the operation: [%.*s, %.*s];many-to-many matching not allowed: matching "
                        "labels must be unique on one side",
                        (int)g.len, g.data, b->card == QUERY_CARD_ONE_TO_MANY ? "left" : "right",
                        (int)x.len, x.data, (int)y.len, y.data);
    else
        rc = mp_err_set(ev->err, rc, "formatting labels");
    mp_buf_fini(&g);
    mp_buf_fini(&x);
    mp_buf_fini(&y);
    return rc;
}

/* resultMetric: labels of the result for many-side element ls matched with one-side rs. */
static int result_labels(struct qev *ev, struct bin *b, const struct qsample *ls,
                         const struct qsample *rs, struct mp_labels **out, bool *dn)
{
    /* 2.55's VectorBinop: arithmetic deletes the name at once, even with delayed removal; the
     * element's mark is the bool modifier alone, so a comparison without bool keeps the name of
     * a many-side element that was due to lose it (rate(x[1m]) > rate(y[1m]) keeps x). */
    *dn = b->ret_bool && ev->delayed;
    mp_labels_builder_reset(ev->lb, ls->labels);
    if (!is_comparison(b->op) || (b->ret_bool && !ev->delayed))
        mp_labels_builder_del(ev->lb, mp_str_c(MP_LABEL_METRIC_NAME));
    if (b->card == QUERY_CARD_ONE_TO_ONE) {
        if (b->on)
            mp_labels_builder_filter(ev->lb, keep_on, b);
        else
            for (size_t i = 0; i < b->nnames; i++)
                mp_labels_builder_del(ev->lb, b->names[i]);
    }
    int rc = 0;
    for (size_t i = 0; i < b->nincl && rc == 0; i++) {
        struct mp_str v = mp_labels_get(rs->labels, b->incl[i]);
        if (v.len)
            rc = mp_labels_builder_set(ev->lb, b->incl[i], v);
        else
            mp_labels_builder_del(ev->lb, b->incl[i]);
    }
    if (rc == 0)
        rc = mp_labels_builder_labels(ev->lb, out, ev->err);
    return rc ? mp_err_set(ev->err, rc, "result labels") : 0;
}

static int step_vv(struct qev *ev, void *vctx, int64_t ts, struct qstep_in *in, struct qvector *out)
{
    (void)ts;
    struct bin *b = vctx;
    if (in[0].v.n == 0 || in[1].v.n == 0)
        return 0;
    bool swap = b->card == QUERY_CARD_ONE_TO_MANY;
    const struct qstep_in *L = swap ? &in[1] : &in[0], *R = swap ? &in[0] : &in[1];
    const uint64_t *lsig = b->sig[swap ? 1 : 0], *rsig = b->sig[swap ? 0 : 1];
    if (stab_begin(&b->right, R->v.n) || stab_begin(&b->matched, L->v.n))
        return mp_err_set(ev->err, MP_ENOMEM, "binary operator");
    bool found;
    for (size_t i = 0; i < R->v.n; i++) {
        uint64_t s = rsig[R->idx[i]];
        size_t slot = stab_slot(&b->right, s, &found);
        if (found)
            return dup_error(ev, b, R->v.s[i].labels, R->v.s[b->right.val[slot]].labels);
        stab_put(&b->right, slot, s, (uint32_t)i);
    }
    int rc = 0;
    for (size_t i = 0; i < L->v.n && rc == 0; i++) {
        const struct qsample *ls = &L->v.s[i];
        uint64_t s = lsig[L->idx[i]];
        size_t slot = stab_slot(&b->right, s, &found);
        if (!found)
            continue;
        uint32_t ri = b->right.val[slot];
        const struct qsample *rs = &R->v.s[ri];
        double fl = ls->v, fr = rs->v;
        if (swap) {
            fl = rs->v;
            fr = ls->v;
        }
        bool keep;
        double v = elem_op(b->op, fl, fr, &keep);
        if (b->ret_bool) {
            v = keep ? 1.0 : 0.0;
        } else if (!keep) {
            continue;
        }
        uint32_t li = L->idx[i], rser = R->idx[ri];
        if (!b->cache[li] || b->cache_peer[li] != rser) {
            struct mp_labels *m;
            bool dn;
            rc = result_labels(ev, b, ls, rs, &m, &dn);
            if (rc)
                break;
            mp_labels_release(b->cache[li]);
            b->cache[li] = m;
            b->cache_dn[li] = dn;
            b->cache_peer[li] = rser;
        }
        struct mp_labels *m = b->cache[li];
        if (b->card == QUERY_CARD_ONE_TO_ONE) {
            size_t ms = stab_slot(&b->matched, s, &found);
            if (found)
                return mp_err_set(ev->err, MP_EEXEC,
                                  "multiple matches for labels: many-to-one matching must be "
                                  "explicit (group_left/group_right)");
            stab_put(&b->matched, ms, s, 0);
        } else {
            uint64_t k = s * UINT64_C(0x9E3779B97F4A7C15) ^ mp_labels_hash(m);
            size_t ms = stab_slot(&b->matched, k, &found);
            if (found)
                return mp_err_set(ev->err, MP_EEXEC,
                                  "multiple matches for labels: grouping labels must ensure "
                                  "unique matches");
            stab_put(&b->matched, ms, k, 0);
        }
        if (query_vec_push(out, mp_labels_acquire(m), v, ts, b->cache_dn[li]))
            rc = mp_err_set(ev->err, MP_ENOMEM, "binary operator");
    }
    return rc;
}

/* ---- vector-scalar, scalar-scalar ----------------------------------------------------------- */

static int step_vs(struct qev *ev, void *vctx, int64_t ts, struct qstep_in *in, struct qvector *out)
{
    struct bin *b = vctx;
    const struct qstep_in *V = b->swap_sides ? &in[1] : &in[0];
    const struct qstep_in *S = b->swap_sides ? &in[0] : &in[1];
    double sv = S->v.n ? S->v.s[0].v : NAN;
    bool drop = !is_comparison(b->op) || b->ret_bool;
    int rc = 0;
    for (size_t i = 0; i < V->v.n && rc == 0; i++) {
        const struct qsample *x = &V->v.s[i];
        double l = x->v, r = sv;
        if (b->swap_sides) {
            l = sv;
            r = x->v;
        }
        bool keep;
        double v = elem_op(b->op, l, r, &keep);
        if (is_comparison(b->op) && b->swap_sides)
            v = r;
        if (b->ret_bool) {
            v = keep ? 1.0 : 0.0;
            keep = true;
        }
        if (!keep)
            continue;
        struct mp_labels *ls = x->labels;
        bool dn = x->drop_name;
        if (drop) {
            if (ev->delayed) {
                dn = true;
            } else {
                uint32_t si = V->idx[i];
                if (!b->cache[si]) {
                    b->cache[si] = query_ev_drop_name(ev, mp_labels_acquire(ls), &dn);
                    if (!b->cache[si])
                        return MP_ENOMEM;
                }
                ls = b->cache[si];
            }
        }
        if (query_vec_push(out, mp_labels_acquire(ls), v, ts, dn))
            rc = mp_err_set(ev->err, MP_ENOMEM, "binary operator");
    }
    return rc;
}

static int prep_vs(struct qev *ev, void *vctx, size_t i, const struct qmat *m)
{
    struct bin *b = vctx;
    if (i != (b->swap_sides ? 1u : 0u))
        return 0;
    return prep_cache(ev, b, m->n);
}

static int step_ss(struct qev *ev, void *vctx, int64_t ts, struct qstep_in *in, struct qvector *out)
{
    struct bin *b = vctx;
    double l = in[0].v.n ? in[0].v.s[0].v : NAN, r = in[1].v.n ? in[1].v.s[0].v : NAN;
    bool keep;
    double v = elem_op(b->op, l, r, &keep);
    if (is_comparison(b->op))
        v = keep ? 1.0 : 0.0;
    return query_vec_push(out, mp_labels_empty(), v, ts, false)
               ? mp_err_set(ev->err, MP_ENOMEM, "binary operator")
               : 0;
}

int query_eval_binary(struct qev *ev, const struct query_expr *e, struct qmat *out)
{
    *out = (struct qmat){0};
    struct bin b = {.e = e, .op = e->op, .ret_bool = e->ret_bool};
    enum query_type lt = query_expr_type(e->a), rt = query_expr_type(e->b);
    const struct query_expr *args[2] = {e->a, e->b};
    int rc;
    if (lt == QUERY_TYPE_SCALAR && rt == QUERY_TYPE_SCALAR) {
        rc = query_range_eval(ev, args, 2, NULL, step_ss, &b, out);
    } else if (lt == QUERY_TYPE_VECTOR && rt == QUERY_TYPE_VECTOR) {
        b.card = e->card;
        b.on = e->on;
        b.names = e->labels;
        b.nnames = e->nlabels;
        b.incl = e->incl;
        b.nincl = e->nincl;
        rc =
            query_range_eval(ev, args, 2, prep_sig, is_set_op(e->op) ? step_set : step_vv, &b, out);
    } else {
        b.swap_sides = lt == QUERY_TYPE_SCALAR;
        rc = query_range_eval(ev, args, 2, prep_vs, step_vs, &b, out);
    }
    bin_fini(&b);
    return rc;
}
