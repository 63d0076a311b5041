/* SPDX-License-Identifier: Apache-2.0 */
/* query/func_hist.c: histogram_quantile over classic buckets (promql.md 3.5), as Prometheus
 * 2.55's funcHistogramQuantile and bucketQuantile.
 *
 * Samples are grouped by all their labels except `le` (the metric name is part of the key and
 * removed from the output). `le` is parsed with Go strconv.ParseFloat rules (go_parse_float):
 * decimal or hex floats, `_` between digits, Inf/Infinity/NaN in any case; a missing or bad
 * value ignores the sample with a warning. Groups come out in first-seen order (Prometheus
 * iterates a map: unordered). Equal bounds are summed in input order (Prometheus sorts with an
 * unstable sort first; the sum can differ in the last bit when three or more buckets share a
 * bound). */
#include <errno.h>
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "query/func.h"
#include "query/query_internal.h"

/* ---- Go strconv.ParseFloat ------------------------------------------------------------- */

static char lower(char ch)
{
    return (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
}

static bool prefix_ci(const char *s, size_t n, const char *word)
{
    size_t w = strlen(word);
    if (n != w)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(s[i]) != word[i])
            return false;
    return true;
}

static bool is_hex_digit(char ch)
{
    ch = lower(ch);
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
}

/* strconv.underscoreOK: every '_' sits between digits (or after the base prefix). */
static bool underscore_ok(const char *s, size_t n)
{
    char saw = '^';
    size_t i = 0;
    if (n >= 1 && (s[0] == '-' || s[0] == '+')) {
        s++;
        n--;
    }
    bool hex = false;
    if (n >= 2 && s[0] == '0' && (lower(s[1]) == 'b' || lower(s[1]) == 'o' || lower(s[1]) == 'x')) {
        i = 2;
        saw = '0';
        hex = lower(s[1]) == 'x';
    }
    for (; i < n; i++) {
        if ((s[i] >= '0' && s[i] <= '9') || (hex && is_hex_digit(s[i]))) {
            saw = '0';
            continue;
        }
        if (s[i] == '_') {
            if (saw != '0')
                return false;
            saw = '_';
            continue;
        }
        if (saw == '_')
            return false;
        saw = '!';
    }
    return saw != '_';
}

/* The syntax check of strconv.readFloat: true when all of s is one float literal. */
static bool float_syntax(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    bool hex = false, underscores = false, sawdot = false, sawdigits = false;
    if (i + 2 < n && s[i] == '0' && lower(s[i + 1]) == 'x') {
        hex = true;
        i += 2;
    }
    for (; i < n; i++) {
        char ch = s[i];
        if (ch == '_') {
            underscores = true;
        } else if (ch == '.') {
            if (sawdot)
                break;
            sawdot = true;
        } else if ((ch >= '0' && ch <= '9') || (hex && is_hex_digit(ch))) {
            sawdigits = true;
        } else {
            break;
        }
    }
    if (!sawdigits)
        return false;
    if (i < n && lower(s[i]) == (hex ? 'p' : 'e')) {
        i++;
        if (i >= n)
            return false;
        if (s[i] == '+' || s[i] == '-')
            i++;
        if (i >= n || s[i] < '0' || s[i] > '9')
            return false;
        for (; i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '_'); i++)
            if (s[i] == '_')
                underscores = true;
    } else if (hex) {
        return false; /* a hex mantissa needs a 'p' exponent */
    }
    if (i != n)
        return false;
    return !underscores || underscore_ok(s, n);
}

/* Go strconv.ParseFloat(s, 64) succeeds: *out is the value. Overflow is an error there. */
static bool go_parse_float(struct mp_str s, double *out)
{
    const char *p = s.ptr;
    size_t n = s.len;
    if (n == 0)
        return false;
    /* strconv.special: [+-]inf, [+-]infinity, nan (no sign), any case */
    size_t k = (p[0] == '+' || p[0] == '-') ? 1 : 0;
    if (prefix_ci(p + k, n - k, "inf") || prefix_ci(p + k, n - k, "infinity")) {
        *out = p[0] == '-' ? -INFINITY : INFINITY;
        return true;
    }
    if (prefix_ci(p, n, "nan")) {
        *out = NAN;
        return true;
    }
    if (!float_syntax(p, n) || n > 4096)
        return false;
    char buf[4097];
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] != '_')
            buf[m++] = p[i];
    buf[m] = 0;
    errno = 0;
    double v = strtod(buf, NULL);
    if (errno == ERANGE && isinf(v))
        return false;
    *out = v;
    return true;
}

/* ---- bucketQuantile -------------------------------------------------------------------- */

struct bucket {
    double upper, count;
    size_t seq; /* input order, so equal bounds sum in a fixed order */
};

static int cmp_bucket(const void *pa, const void *pb)
{
    const struct bucket *a = pa, *b = pb;
    /* NaN bounds (le="NaN") last: any consistent order will do, Prometheus has none */
    bool an = isnan(a->upper), bn = isnan(b->upper);
    if (an != bn)
        return an ? 1 : -1;
    if (!an && a->upper < b->upper)
        return -1;
    if (!an && a->upper > b->upper)
        return 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* util/almost.Equal */
static bool almost_equal(double a, double b, double eps)
{
    const double min_normal = 2.2250738585072014e-308;
    if (isnan(a) && isnan(b))
        return true;
    if (a == b)
        return true;
    double abs_sum = fabs(a) + fabs(b);
    double diff = fabs(a - b);
    if (a == 0 || b == 0 || abs_sum < min_normal)
        return diff < eps * min_normal;
    return diff / (abs_sum < DBL_MAX ? abs_sum : DBL_MAX) < eps;
}

/* The quantile of one group's buckets (sorted and coalesced in place). *forced is set when the
 * counts had to be made monotonic and the result went through the interpolation path. */
static double bucket_quantile(double q, struct bucket *b, size_t n, bool *forced)
{
    *forced = false;
    double r;
    if (query_quantile_outside(q, &r))
        return r;
    qsort(b, n, sizeof *b, cmp_bucket);
    if (!(isinf(b[n - 1].upper) && b[n - 1].upper > 0))
        return NAN;
    /* coalesce equal bounds */
    size_t m = 0;
    struct bucket last = b[0];
    for (size_t i = 1; i < n; i++) {
        if (b[i].upper == last.upper) {
            last.count += b[i].count;
        } else {
            b[m++] = last;
            last = b[i];
        }
    }
    b[m++] = last;
    n = m;
    /* monotonicity, ignoring relative differences below 1e-12 */
    bool fixed = false;
    double prev = b[0].count;
    for (size_t i = 1; i < n; i++) {
        double cur = b[i].count;
        if (cur == prev)
            continue;
        if (almost_equal(prev, cur, 1e-12)) {
            b[i].count = prev;
            continue;
        }
        if (cur < prev) {
            b[i].count = prev;
            fixed = true;
            continue;
        }
        prev = cur;
    }
    if (n < 2)
        return NAN;
    double total = b[n - 1].count;
    if (total == 0)
        return NAN;
    *forced = fixed;
    double rank = q * total;
    /* sort.Search over 0..n-2 */
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t h = lo + (hi - lo) / 2;
        if (!(b[h].count >= rank))
            lo = h + 1;
        else
            hi = h;
    }
    size_t i = lo;
    if (i == n - 1)
        return b[n - 2].upper;
    if (i == 0 && b[0].upper <= 0)
        return b[0].upper;
    double start = 0, end = b[i].upper, cnt = b[i].count;
    if (i > 0) {
        start = b[i - 1].upper;
        cnt -= b[i - 1].count;
        rank -= b[i - 1].count;
    }
    return start + (end - start) * (rank / cnt);
}

/* ---- grouping ---------------------------------------------------------------------------- */

struct group {
    const struct mp_labels *first; /* the first sample's labels (borrowed from the argument) */
    uint64_t hash;
    struct bucket *b;
    size_t n, cap;
};

struct groups {
    struct group *g;
    size_t n;
    size_t *slot; /* open addressing: group index + 1, 0 = empty */
    size_t nslot; /* power of two, > 2 * inputs */
};

static void groups_fini(struct groups *gs)
{
    for (size_t i = 0; i < gs->n; i++)
        mp_free(gs->g[i].b);
    mp_free(gs->g);
    mp_free(gs->slot);
}

static bool is_le(const struct mp_labels *ls, size_t i)
{
    return mp_str_eq(mp_labels_at(ls, i).name, MP_STR_LIT("le"));
}

/* Equal but for le (interned strings: equal content is the same pointer). */
static bool same_but_le(const struct mp_labels *a, const struct mp_labels *b)
{
    size_t na = mp_labels_count(a), nb = mp_labels_count(b), i = 0, j = 0;
    for (;;) {
        while (i < na && is_le(a, i))
            i++;
        while (j < nb && is_le(b, j))
            j++;
        if (i == na || j == nb)
            return i == na && j == nb;
        if (mp_labels_name_at(a, i) != mp_labels_name_at(b, j) ||
            mp_labels_value_at(a, i) != mp_labels_value_at(b, j))
            return false;
        i++;
        j++;
    }
}

/* The group of a sample's labels (all but le), created if new; no label set is built per
 * sample. The hash leaves out __name__ too, the comparison does not. */
static struct group *group_get(struct groups *gs, const struct mp_labels *ls)
{
    static const struct mp_str le = MP_STR_LIT("le");
    uint64_t hash = mp_labels_hash_without(ls, &le, 1);
    size_t mask = gs->nslot - 1;
    for (size_t h = (size_t)hash & mask;; h = (h + 1) & mask) {
        size_t s = gs->slot[h];
        if (s == 0) {
            gs->slot[h] = gs->n + 1;
            gs->g[gs->n] = (struct group){.first = ls, .hash = hash};
            return &gs->g[gs->n++];
        }
        struct group *g = &gs->g[s - 1];
        if (g->hash == hash && same_but_le(g->first, ls))
            return g;
    }
}

static int bucket_add(struct group *g, double upper, double count, size_t seq)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 8;
        struct bucket *nb = mp_realloc(g->b, cap * sizeof *nb);
        if (!nb)
            return MP_ENOMEM;
        g->b = nb;
        g->cap = cap;
    }
    g->b[g->n++] = (struct bucket){upper, count, seq};
    return 0;
}

static int bad_bucket(struct qcall *c, struct mp_str le, struct mp_str name)
{
    struct mp_buf qa, qb;
    mp_buf_init(&qa, 0);
    mp_buf_init(&qb, 0);
    int rc = query_go_quote(&qa, le, 0);
    if (rc == 0)
        rc = query_go_quote(&qb, name, 0);
    if (rc == 0)
        rc = query_annots_add(c->annots, true,
                              "bucket label \"le\" is missing or has a malformed value of %s for "
                              "metric name %s",
                              qa.data, qb.data);
    mp_buf_fini(&qa);
    mp_buf_fini(&qb);
    return rc;
}

/* The group's labels have lost __name__ before Prometheus names the metric: always "". */
#define MONOTONIC_INFO                                                                            \
    "input to histogram_quantile needed to be fixed for monotonicity (see "                       \
    "https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for "    \
    "metric name \"\""

static int hq_run(struct qcall *c, struct groups *gs)
{
    double q = c->args[0].scalar;
    const struct qvector *v = c->args[1].vec;
    struct mp_str le = MP_STR_LIT("le");
    int rc = 0;
    if ((rc = query_func_warn_quantile(c, q, NULL)))
        return rc;
    if (v->n == 0)
        return 0;
    gs->nslot = 16;
    while (gs->nslot < 2 * v->n + 1)
        gs->nslot *= 2;
    gs->slot = mp_calloc(gs->nslot, sizeof *gs->slot);
    gs->g = mp_calloc(v->n, sizeof *gs->g);
    if (!gs->slot || !gs->g)
        return MP_ENOMEM;
    for (size_t i = 0; i < v->n; i++) {
        const struct qsample *s = &v->s[i];
        double upper;
        if (!go_parse_float(mp_labels_get(s->labels, le), &upper)) {
            rc = bad_bucket(c, mp_labels_get(s->labels, le), mp_labels_metric_name(s->labels));
            if (rc)
                return rc;
            continue;
        }
        struct group *g = group_get(gs, s->labels);
        if (bucket_add(g, upper, s->v, i))
            return MP_ENOMEM;
    }
    for (size_t i = 0; i < gs->n; i++) {
        struct group *g = &gs->g[i];
        bool forced;
        double r = bucket_quantile(q, g->b, g->n, &forced);
        mp_labels_builder_reset(c->lb, g->first);
        mp_labels_builder_del(c->lb, le);
        mp_labels_builder_del(c->lb, MP_STR_LIT(MP_LABEL_METRIC_NAME));
        struct mp_labels *out = NULL;
        if (mp_labels_builder_labels(c->lb, &out, NULL) ||
            query_vec_push(c->out, out, r, c->t_ms, false))
            return MP_ENOMEM;
        if (forced && (rc = query_annots_add(c->annots, false, MONOTONIC_INFO)))
            return rc;
    }
    return 0;
}

int query_func_histogram_quantile(struct qcall *c, struct mp_err *err)
{
    struct groups gs = {0};
    int rc = hq_run(c, &gs);
    groups_fini(&gs);
    return rc ? query_func_oom(err) : 0;
}
