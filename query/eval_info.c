/* SPDX-License-Identifier: Apache-2.0 */
/* query/eval_info.c: the experimental info(v [, data label selector]) function (Prometheus
 * 2.55 / 3.x promql/info.go, behaviour re-implemented here).
 *
 * Each series of v is enriched with the data labels of the info series that share its
 * identifying labels `instance` and `job` (the ones it has): by default the `target_info`
 * series, or those the selector's __name__ matchers pick. The selector's other matchers
 * restrict which info series are used (they are part of the storage select) and which of
 * their labels are copied; when one of them does not match the empty string, series of v
 * without a matching info series are dropped, otherwise they pass unchanged. Series of v that
 * are themselves info series (their name matches the name matchers) pass unchanged.
 *
 * Steps: evaluate v; collect its identifying values; select the info series with
 * __name__="target_info" (unless the selector names one), instance=~"a|b", job=~"..." and
 * the selector's matchers over the steps' lookback window (shifted by the offset and @ of the
 * first selector in v, as Prometheus's select hints are), evaluate them at every step with the
 * lookback delta, the value being the picked sample's timestamp; then per step match each
 * series of v with the newest info sample of each info metric name. Errors as Prometheus:
 * two info samples of one metric and identifying labels at the same timestamp ("found
 * duplicate series for info metric: ..."), two info metrics disagreeing on a data label
 * ("conflicting label: NAME"), duplicate output label sets.
 *
 * Two deliberate differences: the info series are evaluated at the first selector's reference
 * time (Prometheus moves only the select window there but evaluates at the plain step, so
 * with an @ or offset beyond the lookback delta nothing is ever enriched, and `@` test
 * variants of a query disagree); and the output keeps the delayed-name-removal mark of its
 * input series (Prometheus's info drops it, which would keep a __name__ that rate() & co.
 * removed). */
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/time.h"
#include "query/eval_core.h"
#include "tsdb/tsdb.h"

static const struct mp_str ID_LABELS[2] = {MP_STR_LIT("instance"), MP_STR_LIT("job")};
static const struct mp_str NAME = MP_STR_LIT(MP_LABEL_METRIC_NAME);

static const struct query_expr *unparen(const struct query_expr *e)
{
    while (e->kind == QUERY_PAREN)
        e = e->a;
    return e;
}

/* The first vector selector of e in parser.Inspect's order (depth first, children in order:
 * lhs before rhs, an aggregation's expression before its parameter), or NULL. */
static const struct query_expr *first_selector(const struct query_expr *e)
{
    if (!e)
        return NULL;
    switch (e->kind) {
    case QUERY_VECTOR_SELECTOR:
        return e;
    case QUERY_PAREN:
    case QUERY_UNARY:
    case QUERY_SUBQUERY:
    case QUERY_MATRIX_SELECTOR:
        return first_selector(e->a);
    case QUERY_BINARY:
    case QUERY_AGGREGATE: {
        const struct query_expr *r = first_selector(e->a);
        return r ? r : first_selector(e->b);
    }
    case QUERY_CALL:
        for (size_t i = 0; i < e->nargs; i++) {
            const struct query_expr *r = first_selector(e->args[i]);
            if (r)
                return r;
        }
        return NULL;
    default:
        return NULL;
    }
}

/* Go regexp.QuoteMeta(s) appended to b. */
static int quote_meta(struct mp_buf *b, struct mp_str s)
{
    int rc = 0;
    for (size_t i = 0; i < s.len && rc == 0; i++) {
        if (strchr("\\.+*?()|[]{}^$", s.ptr[i]) && s.ptr[i] != '\0')
            rc = mp_buf_append(b, "\\", 1);
        if (rc == 0)
            rc = mp_buf_append(b, s.ptr + i, 1);
    }
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return mp_str_cmp(*(const struct mp_str *)a, *(const struct mp_str *)b);
}

/* Sorts and de-duplicates v[0..*n). */
static void sort_unique(struct mp_str *v, size_t *n)
{
    if (*n < 2)
        return;
    qsort(v, *n, sizeof *v, cmp_str);
    size_t k = 1;
    for (size_t i = 1; i < *n; i++)
        if (!mp_str_eq(v[i], v[k - 1]))
            v[k++] = v[i];
    *n = k;
}

struct info_ctx {
    const struct mp_matcher **data; /* the selector's matchers other than __name__ */
    size_t ndata;
    bool data_need_match; /* some data matcher does not match "" */
    bool *ignore;         /* per series of v: an info series itself */
    struct mp_str *names; /* distinct info metric names (sorted) */
    size_t nnames;
    uint32_t *info_name; /* per info series: index into names */
    const struct qmat *info; /* in[1].m of the current step */
    /* per step: info samples by (name, instance, job) */
    uint32_t *slot; /* info series index + 1; 0 = empty */
    double *slot_t; /* its sample's timestamp */
    size_t mask;
    struct mp_label *pairs; /* data labels gathered for one series */
    size_t npairs, pcap;
    bool *seen; /* per name */
};

static uint64_t sig_hash(uint32_t name, const struct mp_labels *ls)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ name;
    for (size_t i = 0; i < 2; i++) {
        struct mp_str v = mp_labels_get(ls, ID_LABELS[i]);
        for (size_t j = 0; j < v.len; j++)
            h = (h ^ (unsigned char)v.ptr[j]) * 0x100000001b3ull;
        h = (h ^ 0xff) * 0x100000001b3ull; /* separator */
    }
    return h ^ (h >> 29);
}

static bool same_ids(const struct mp_labels *a, const struct mp_labels *b)
{
    for (size_t i = 0; i < 2; i++)
        if (!mp_str_eq(mp_labels_get(a, ID_LABELS[i]), mp_labels_get(b, ID_LABELS[i])))
            return false;
    return true;
}

/* The slot of (name, ids of ls): *found tells whether it holds a sample. */
static size_t sig_slot(const struct info_ctx *c, uint32_t name, const struct mp_labels *ls,
                       bool *found)
{
    size_t j = sig_hash(name, ls) & c->mask;
    while (c->slot[j]) {
        uint32_t k = c->slot[j] - 1;
        if (c->info_name[k] == name && same_ids(c->info->s[k].labels, ls)) {
            *found = true;
            return j;
        }
        j = (j + 1) & c->mask;
    }
    *found = false;
    return j;
}

static int dup_info_error(struct qev *ev, const struct mp_labels *a, int64_t ta,
                          const struct mp_labels *b, int64_t tb)
{
    struct mp_buf x, y;
    mp_buf_init(&x, 0);
    mp_buf_init(&y, 0);
    int rc = mp_labels_format(a, &x);
    if (rc == 0)
        rc = mp_labels_format(b, &y);
    if (rc == 0)
        rc = mp_err_set(ev->err, MP_EEXEC,
                        "found duplicate series for info metric: existing %.*s @ %lld, new %.*s "
                        "@ %lld",
                        (int)x.len, x.data, (long long)ta, (int)y.len, y.data, (long long)tb);
    else
        rc = mp_err_set(ev->err, rc, "formatting labels");
    mp_buf_fini(&x);
    mp_buf_fini(&y);
    return rc;
}

/* Gathers the data labels of info series k into c->pairs (combineWithInfoVector). */
static int gather_labels(struct qev *ev, struct info_ctx *c, const struct mp_labels *base,
                         const struct mp_labels *info)
{
    size_t n = mp_labels_count(info);
    for (size_t i = 0; i < n; i++) {
        struct mp_label l = mp_labels_at(info, i);
        if (mp_str_eq(l.name, NAME))
            continue;
        bool wanted = c->ndata == 0;
        for (size_t j = 0; j < c->ndata && !wanted; j++)
            wanted = mp_str_eq(mp_matcher_name(c->data[j]), l.name);
        if (!wanted)
            continue;
        bool have = false;
        for (size_t j = 0; j < c->npairs && !have; j++) {
            if (!mp_str_eq(c->pairs[j].name, l.name))
                continue;
            if (!mp_str_eq(c->pairs[j].value, l.value))
                return mp_err_set(ev->err, MP_EEXEC, "conflicting label: %.*s", (int)l.name.len,
                                  l.name.ptr);
            have = true;
        }
        if (have || mp_labels_has(base, l.name))
            continue;
        if (c->npairs == c->pcap) {
            size_t cap = c->pcap ? c->pcap * 2 : 16;
            struct mp_label *p = mp_realloc(c->pairs, cap * sizeof *p);
            if (!p)
                return mp_err_set(ev->err, MP_ENOMEM, "info labels");
            c->pairs = p;
            c->pcap = cap;
        }
        c->pairs[c->npairs++] = l;
    }
    return 0;
}

static int step_info(struct qev *ev, void *vctx, int64_t ts, struct qstep_in *in,
                     struct qvector *out)
{
    (void)ts;
    struct info_ctx *c = vctx;
    const struct qvector *bv = &in[0].v, *iv = &in[1].v;
    c->info = &in[1].m;
    if (bv->n == 0)
        return 0;
    /* the newest info sample per (name, identifying labels) */
    if (c->slot)
        memset(c->slot, 0, (c->mask + 1) * sizeof *c->slot);
    for (size_t i = 0; i < iv->n; i++) {
        uint32_t k = in[1].idx[i];
        const struct mp_labels *ls = c->info->s[k].labels;
        bool found;
        size_t j = sig_slot(c, c->info_name[k], ls, &found);
        double t = iv->s[i].v;
        if (!found || c->slot_t[j] < t) {
            c->slot[j] = k + 1;
            c->slot_t[j] = t;
        } else if (c->slot_t[j] == t) {
            return dup_info_error(ev, c->info->s[c->slot[j] - 1].labels, (int64_t)c->slot_t[j],
                                  ls, (int64_t)t);
        }
    }
    for (size_t i = 0; i < bv->n; i++) {
        const struct qsample *x = &bv->s[i];
        struct mp_labels *ls = NULL;
        if (c->ignore[in[0].idx[i]]) {
            ls = mp_labels_acquire(x->labels);
        } else {
            c->npairs = 0;
            bool any = false;
            for (uint32_t n = 0; n < c->nnames; n++) {
                bool found;
                size_t j = c->slot ? sig_slot(c, n, x->labels, &found) : 0;
                if (!c->slot || !found)
                    continue;
                int rc = gather_labels(ev, c, x->labels, c->info->s[c->slot[j] - 1].labels);
                if (rc)
                    return rc;
                any = true;
            }
            if (!any && c->data_need_match)
                continue;
            mp_labels_builder_reset(ev->lb, x->labels);
            int rc = 0;
            for (size_t j = 0; j < c->npairs && rc == 0; j++)
                rc = mp_labels_builder_set(ev->lb, c->pairs[j].name, c->pairs[j].value);
            if (rc == 0)
                rc = mp_labels_builder_labels(ev->lb, &ls, ev->err);
            if (rc)
                return mp_err_set(ev->err, rc, "info labels");
        }
        if (query_vec_push(out, ls, x->v, x->t_ms, x->drop_name))
            return mp_err_set(ev->err, MP_ENOMEM, "info");
    }
    return 0;
}

/* Where the info series are read (infoSelectHints): at the reference time of v's first
 * selector, i.e. the step moved to its @ time (pinned) and back by its offset. */
struct info_time {
    bool pinned;
    int64_t at, off;
};

static struct info_time info_time(const struct qev *ev, const struct query_expr *v)
{
    struct info_time r = {0};
    const struct query_expr *vs = first_selector(v);
    if (!vs)
        return r;
    switch (query_at(vs, &r.at)) {
    case QUERY_AT_TIME:
        r.pinned = true;
        break;
    case QUERY_AT_START:
        r.pinned = true;
        r.at = ev->qstart;
        break;
    case QUERY_AT_END:
        r.pinned = true;
        r.at = ev->qend;
        break;
    case QUERY_AT_NONE:
        break;
    }
    r.off = query_offset_ms(vs);
    return r;
}

static int64_t info_ref(const struct info_time *it, int64_t ts)
{
    return (it->pinned ? it->at : ts) - it->off;
}

/* The info series at every step: the latest sample within the lookback delta, its timestamp
 * as the value (evalSeries with recordOrigT). */
static int eval_info_series(struct qev *ev, const struct mp_matcher *const *ms, size_t nm,
                            const struct info_time *when, struct qmat *out)
{
    int64_t mint = info_ref(when, ev->start) - ev->lookback_ms, maxt = info_ref(when, ev->end);
    struct tsdb_querier *q = NULL;
    struct tsdb_series_set *ss = NULL;
    int64_t t0 = mp_mono_ns();
    int rc = tsdb_querier_open(ev->db, mint, maxt, &q, ev->err);
    if (rc == 0)
        rc = tsdb_querier_select(q, ms, nm, &ss, ev->err);
    ev->prepare_ns += mp_mono_ns() - t0;
    struct query_point *b = NULL;
    size_t cap = 0;
    while (rc == 0 && (rc = query_ev_check(ev)) == 0 &&
           (rc = tsdb_series_set_next(ss, ev->err)) == 0) {
        struct tsdb_sample_iter it;
        tsdb_series_set_iter(ss, &it);
        size_t n = 0;
        int64_t t;
        double v;
        int irc;
        for (irc = tsdb_sample_iter_seek(&it, mint, &t, &v); irc == 0 && t <= maxt;
             irc = tsdb_sample_iter_next(&it, &t, &v)) {
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 64;
                struct query_point *p = mp_realloc(b, nc * sizeof *p);
                if (!p) {
                    irc = mp_err_set(ev->err, MP_ENOMEM, "info samples");
                    break;
                }
                b = p;
                cap = nc;
            }
            b[n++] = (struct query_point){t, v};
        }
        if (irc != 0 && irc != MP_EEOF) {
            rc = irc == MP_ENOMEM ? irc : mp_err_set(ev->err, MP_EIO, "reading info samples");
            break;
        }
        struct qser *s = NULL;
        size_t j = 0;
        for (int64_t ts = ev->start; rc == 0 && ts <= ev->end; ts += ev->interval) {
            int64_t ref = info_ref(when, ts);
            while (j + 1 < n && b[j + 1].t_ms <= ref)
                j++;
            if (n && b[j].t_ms <= ref && b[j].t_ms >= ref - ev->lookback_ms &&
                !tsdb_is_stale(b[j].v)) {
                if (!s)
                    rc = query_mat_add(ev, out, mp_labels_acquire(tsdb_series_set_labels(ss)),
                                       false, &s);
                if (rc == 0)
                    rc = query_ser_push(ev, s, ts, (double)b[j].t_ms);
                query_ev_count(ev, ts, 1);
            }
            if (ts > INT64_MAX - ev->interval)
                break;
        }
    }
    if (rc == MP_EEOF)
        rc = 0;
    if (rc && rc != MP_ENOMEM && rc != MP_ETIMEOUT && rc != MP_ECANCELED && rc != MP_ELIMIT &&
        rc != MP_EEXEC)
        rc = ev->err ? (ev->err->code = MP_EIO) : MP_EIO;
    mp_free(b);
    tsdb_series_set_free(ss);
    tsdb_querier_close(q);
    if (rc)
        query_mat_fini(ev, out);
    return rc;
}

/* Builds the matchers of the info select into ms (created ones go to own[]). */
static int info_matchers(struct qev *ev, const struct query_expr *sel, const struct qmat *base,
                         const bool *ignore, const struct mp_matcher **ms, size_t *nm,
                         struct mp_matcher **own, size_t *nown, bool *any_ids)
{
    int rc = 0;
    bool has_name = false;
    for (size_t i = 0; sel && i < sel->nm; i++)
        has_name |= mp_str_eq(mp_matcher_name(sel->m[i]), NAME);
    *nm = *nown = 0;
    *any_ids = false;
    if (!has_name) {
        rc = mp_matcher_create(MP_MATCH_EQUAL, NAME, MP_STR_LIT("target_info"), &own[*nown],
                               ev->err);
        if (rc)
            return rc;
        ms[(*nm)++] = own[(*nown)++];
    }
    struct mp_str *vals = mp_malloc((base->n ? base->n : 1) * sizeof *vals);
    if (!vals)
        return mp_err_set(ev->err, MP_ENOMEM, "info values");
    for (size_t l = 0; l < 2 && rc == 0; l++) {
        size_t n = 0;
        for (size_t i = 0; i < base->n; i++) {
            struct mp_str v = mp_labels_get(base->s[i].labels, ID_LABELS[l]);
            if (!ignore[i] && v.len)
                vals[n++] = v;
        }
        if (n == 0)
            continue;
        sort_unique(vals, &n);
        struct mp_buf re;
        mp_buf_init(&re, 0);
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (i)
                rc = mp_buf_append(&re, "|", 1);
            if (rc == 0)
                rc = quote_meta(&re, vals[i]);
        }
        if (rc == 0)
            rc = mp_matcher_create(MP_MATCH_REGEX, ID_LABELS[l],
                                   (struct mp_str){re.data ? re.data : "", re.len}, &own[*nown],
                                   ev->err);
        else
            rc = mp_err_set(ev->err, MP_ENOMEM, "info matcher");
        mp_buf_fini(&re);
        if (rc == 0) {
            ms[(*nm)++] = own[(*nown)++];
            *any_ids = true;
        }
    }
    mp_free(vals);
    for (size_t i = 0; sel && i < sel->nm; i++)
        ms[(*nm)++] = sel->m[i];
    return rc;
}

int query_eval_info(struct qev *ev, const struct query_expr *call, struct qmat *out)
{
    *out = (struct qmat){0};
    const struct query_expr *sel = call->nargs > 1 ? unparen(call->args[1]) : NULL;
    struct qmat mats[2] = {{0}};
    int rc = query_ev_eval(ev, call->args[0], &mats[0]);
    if (rc)
        return rc;
    const struct qmat *base = &mats[0];
    struct info_ctx c = {0};
    size_t nsel = sel ? sel->nm : 0;
    const struct mp_matcher **ms = mp_calloc(nsel + 3, sizeof *ms);
    struct mp_matcher *own[3] = {0};
    size_t nm = 0, nown = 0;
    c.data = mp_calloc(nsel + 1, sizeof *c.data);
    c.ignore = mp_calloc(base->n ? base->n : 1, sizeof *c.ignore);
    if (!ms || !c.data || !c.ignore)
        rc = mp_err_set(ev->err, MP_ENOMEM, "info");
    /* name matchers pick the info metrics; the rest are data label matchers */
    size_t nname = 0;
    for (size_t i = 0; rc == 0 && i < nsel; i++) {
        if (mp_str_eq(mp_matcher_name(sel->m[i]), NAME))
            nname++;
        else {
            c.data[c.ndata++] = sel->m[i];
            c.data_need_match |= !mp_matcher_matches_empty(sel->m[i]);
        }
    }
    for (size_t i = 0; rc == 0 && i < base->n; i++) {
        struct mp_str name = mp_labels_metric_name(base->s[i].labels);
        bool match = true;
        if (!sel) {
            match = mp_str_eq(name, MP_STR_LIT("target_info"));
        } else {
            for (size_t j = 0; j < nsel && match; j++)
                if (mp_str_eq(mp_matcher_name(sel->m[j]), NAME))
                    match = mp_matcher_matches(sel->m[j], name);
            match = match && nname > 0;
        }
        c.ignore[i] = match;
    }
    bool any_ids = false;
    if (rc == 0)
        rc = info_matchers(ev, sel, base, c.ignore, ms, &nm, own, &nown, &any_ids);
    if (rc == 0 && any_ids && ev->db && query_ev_nsteps(ev) > 0) {
        struct info_time when = info_time(ev, call->args[0]);
        rc = eval_info_series(ev, ms, nm, &when, &mats[1]);
    }
    /* distinct info names and the per-step table */
    const struct qmat *info = &mats[1];
    if (rc == 0 && info->n) {
        c.names = mp_malloc(info->n * sizeof *c.names);
        c.info_name = mp_malloc(info->n * sizeof *c.info_name);
        size_t cap = 16;
        while (cap < info->n * 2)
            cap *= 2;
        c.slot = mp_calloc(cap, sizeof *c.slot);
        c.slot_t = mp_calloc(cap, sizeof *c.slot_t);
        c.mask = cap - 1;
        if (!c.names || !c.info_name || !c.slot || !c.slot_t)
            rc = mp_err_set(ev->err, MP_ENOMEM, "info");
        for (size_t i = 0; rc == 0 && i < info->n; i++)
            c.names[i] = mp_labels_metric_name(info->s[i].labels);
        if (rc == 0) {
            c.nnames = info->n;
            sort_unique(c.names, &c.nnames);
            for (size_t i = 0; i < info->n; i++) {
                struct mp_str n = mp_labels_metric_name(info->s[i].labels);
                struct mp_str *f = bsearch(&n, c.names, c.nnames, sizeof *c.names, cmp_str);
                c.info_name[i] = (uint32_t)(f - c.names);
            }
        }
    }
    if (rc == 0) {
        /* the matrices move into query_range_eval_mats; their series keep their order, so
         * c's per-series arrays stay valid (step_info finds the info matrix in in[1].m) */
        rc = query_range_eval_mats(ev, mats, 2, NULL, step_info, &c, out);
    } else {
        query_mat_fini(ev, &mats[0]);
        query_mat_fini(ev, &mats[1]);
    }
    for (size_t i = 0; i < nown; i++)
        mp_matcher_destroy(own[i]);
    mp_free(ms);
    mp_free(c.data);
    mp_free(c.ignore);
    mp_free(c.names);
    mp_free(c.info_name);
    mp_free(c.slot);
    mp_free(c.slot_t);
    mp_free(c.pairs);
    return rc;
}
