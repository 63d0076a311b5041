/* SPDX-License-Identifier: Apache-2.0 */
/* common/metrics.c: self-metrics registry and its text format 0.0.4 renderer.
 *
 * Layout: the registry keeps a name-sorted array of families (struct mp_metrics_vec). Each
 * family has sorted label names and a sorted array of children; a child owns its label values
 * and one metric cell. Unlabelled metrics are families with one child and no labels. Metric
 * cells are allocated 64-byte aligned so hot counters of different children never share a
 * cache line (netdata PAD64). Families and children are only added, never removed, so the
 * renderer can copy pointer arrays under the locks and read values afterwards without them.
 *
 * Counters keep an integer part and a float part, as client_golang does (valInt/valBits), so
 * mp_counter_inc is one fetch_add; fractional adds use a CAS loop on the double's bits.
 * Reference: client_golang prometheus/counter.go, expfmt/text_create.go (writeFloat). */
#include "common/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"

#define MAX_LABELS 16

struct mp_counter {
    _Atomic uint64_t ival;  /* integral increments */
    _Atomic uint64_t fbits; /* bits of the double holding fractional adds */
};

struct mp_gauge {
    _Atomic uint64_t bits;
};

struct mp_histogram {
    size_t nbounds;        /* buckets = nbounds + 1 (the last is +Inf) */
    const double *bounds;  /* owned by the family */
    _Atomic uint64_t sum_bits;
    _Atomic uint64_t counts[]; /* non-cumulative */
};

struct child {
    char **values; /* nlabels, in sorted label-name order */
    void *metric;  /* struct mp_counter / mp_gauge / mp_histogram, 64-byte aligned */
};

struct mp_metrics_vec {
    char *name;
    char *help;
    enum mp_metric_type type;
    bool is_func;
    mp_metrics_value_fn *fn;
    void *ctx;
    size_t nlabels;
    char **label_names; /* sorted */
    size_t *order;      /* order[i]: index in the caller's label order of sorted name i */
    double *bounds;
    size_t nbounds;
    pthread_rwlock_t lock; /* guards children, nchildren, cap */
    struct child **children;
    size_t nchildren, cap;
};

struct mp_metrics_registry {
    pthread_mutex_t lock; /* guards fams, nfams, cap */
    struct mp_metrics_vec **fams;
    size_t nfams, cap;
};

/* ---- helpers ------------------------------------------------------------------------ */

static void *xalloc_aligned(size_t n)
{
    unsigned char *raw = mp_xcalloc(1, n + 64 + sizeof(void *));
    uintptr_t p = ((uintptr_t)raw + sizeof(void *) + 63) & ~(uintptr_t)63;
    memcpy((void *)(p - sizeof(void *)), &raw, sizeof raw);
    return (void *)p;
}

static void free_aligned(void *p)
{
    if (!p)
        return;
    void *raw;
    memcpy(&raw, (char *)p - sizeof(void *), sizeof raw);
    mp_free(raw);
}

static uint64_t dbits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static double bitsd(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* relaxed everywhere below: metric cells are independent statistics; no other data is
 * published through them, and a scrape only needs each value to be some recent value */
static void atomic_add_double(_Atomic uint64_t *cell, double v)
{
    uint64_t old = atomic_load_explicit(cell, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(cell, &old, dbits(bitsd(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

static bool valid_metric_name(const char *s)
{
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(p != s && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

static bool valid_label_name(const char *s)
{
    if (!s || !*s || (s[0] == '_' && s[1] == '_'))
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!alpha && !(p != s && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

/* ---- metric cells ------------------------------------------------------------------- */

static void *cell_create(const struct mp_metrics_vec *f)
{
    switch (f->type) {
    case MP_METRIC_HISTOGRAM: {
        struct mp_histogram *h =
            xalloc_aligned(sizeof *h + (f->nbounds + 1) * sizeof(_Atomic uint64_t));
        h->nbounds = f->nbounds;
        h->bounds = f->bounds;
        atomic_init(&h->sum_bits, dbits(0));
        for (size_t i = 0; i <= f->nbounds; i++)
            atomic_init(&h->counts[i], 0);
        return h;
    }
    case MP_METRIC_GAUGE: {
        struct mp_gauge *g = xalloc_aligned(sizeof *g);
        atomic_init(&g->bits, dbits(0));
        return g;
    }
    default: {
        struct mp_counter *c = xalloc_aligned(sizeof *c);
        atomic_init(&c->ival, 0);
        atomic_init(&c->fbits, dbits(0));
        return c;
    }
    }
}

void mp_counter_inc(struct mp_counter *c)
{
    atomic_fetch_add_explicit(&c->ival, 1, memory_order_relaxed);
}

void mp_counter_add(struct mp_counter *c, double v)
{
    if (!(v >= 0))
        return; /* client_golang panics on a decrease; a self-metric just ignores it */
    if (v < 9007199254740992.0 && v == floor(v)) {
        atomic_fetch_add_explicit(&c->ival, (uint64_t)v, memory_order_relaxed);
        return;
    }
    atomic_add_double(&c->fbits, v);
}

double mp_counter_get(const struct mp_counter *c)
{
    uint64_t i = atomic_load_explicit((_Atomic uint64_t *)&c->ival, memory_order_relaxed);
    uint64_t f = atomic_load_explicit((_Atomic uint64_t *)&c->fbits, memory_order_relaxed);
    return bitsd(f) + (double)i;
}

void mp_gauge_set(struct mp_gauge *g, double v)
{
    atomic_store_explicit(&g->bits, dbits(v), memory_order_relaxed);
}

void mp_gauge_add(struct mp_gauge *g, double v)
{
    atomic_add_double(&g->bits, v);
}

void mp_gauge_inc(struct mp_gauge *g)
{
    atomic_add_double(&g->bits, 1);
}

void mp_gauge_dec(struct mp_gauge *g)
{
    atomic_add_double(&g->bits, -1);
}

double mp_gauge_get(const struct mp_gauge *g)
{
    return bitsd(atomic_load_explicit((_Atomic uint64_t *)&g->bits, memory_order_relaxed));
}

void mp_histogram_observe(struct mp_histogram *h, double v)
{
    /* first bound >= v, as sort.SearchFloat64s in client_golang; NaN compares false and
     * falls through to +Inf */
    size_t lo = 0, hi = h->nbounds;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->bounds[mid] >= v)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (isnan(v))
        lo = h->nbounds;
    atomic_fetch_add_explicit(&h->counts[lo], 1, memory_order_relaxed);
    atomic_add_double(&h->sum_bits, v);
}

uint64_t mp_histogram_count(const struct mp_histogram *h)
{
    uint64_t n = 0;
    for (size_t i = 0; i <= h->nbounds; i++)
        n += atomic_load_explicit((_Atomic uint64_t *)&h->counts[i], memory_order_relaxed);
    return n;
}

double mp_histogram_sum(const struct mp_histogram *h)
{
    return bitsd(atomic_load_explicit((_Atomic uint64_t *)&h->sum_bits, memory_order_relaxed));
}

/* ---- registry ----------------------------------------------------------------------- */

int mp_metrics_registry_create(struct mp_metrics_registry **out)
{
    struct mp_metrics_registry *r = mp_xcalloc(1, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    *out = r;
    return 0;
}

static void family_free(struct mp_metrics_vec *f)
{
    for (size_t i = 0; i < f->nchildren; i++) {
        struct child *c = f->children[i];
        for (size_t j = 0; j < f->nlabels; j++)
            mp_free(c->values[j]);
        mp_free(c->values);
        free_aligned(c->metric);
        mp_free(c);
    }
    mp_free(f->children);
    for (size_t j = 0; j < f->nlabels; j++)
        mp_free(f->label_names[j]);
    mp_free(f->label_names);
    mp_free(f->order);
    mp_free(f->bounds);
    mp_free(f->name);
    mp_free(f->help);
    pthread_rwlock_destroy(&f->lock);
    mp_free(f);
}

void mp_metrics_registry_destroy(struct mp_metrics_registry *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nfams; i++)
        family_free(r->fams[i]);
    mp_free(r->fams);
    pthread_mutex_destroy(&r->lock);
    mp_free(r);
}

static struct mp_metrics_registry *default_registry;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void default_init(void)
{
    (void)!mp_metrics_registry_create(&default_registry); /* cannot fail: mp_xcalloc */
}

struct mp_metrics_registry *mp_metrics_default(void)
{
    pthread_once(&default_once, default_init);
    return default_registry;
}

static const char *type_name(enum mp_metric_type t)
{
    switch (t) {
    case MP_METRIC_COUNTER: return "counter";
    case MP_METRIC_GAUGE: return "gauge";
    case MP_METRIC_HISTOGRAM: return "histogram";
    default: return "untyped";
    }
}

/* Same description as an existing family: type, labels, buckets, callback. */
static bool same_family(const struct mp_metrics_vec *a, const struct mp_metrics_vec *b)
{
    if (a->type != b->type || a->is_func != b->is_func || a->nlabels != b->nlabels ||
        a->nbounds != b->nbounds || a->fn != b->fn || a->ctx != b->ctx)
        return false;
    for (size_t i = 0; i < a->nlabels; i++)
        if (strcmp(a->label_names[i], b->label_names[i]) != 0 || a->order[i] != b->order[i])
            return false;
    for (size_t i = 0; i < a->nbounds; i++)
        if (a->bounds[i] != b->bounds[i])
            return false;
    return true;
}

static struct child *child_new(const struct mp_metrics_vec *f, char **values)
{
    struct child *c = mp_xmalloc(sizeof *c);
    c->values = values;
    c->metric = cell_create(f);
    return c;
}

/* Builds the family, then inserts it under the registry lock (or finds an identical one).
 * On success *out is the registered family. Consumes f either way. */
static int family_insert(struct mp_metrics_registry *r, struct mp_metrics_vec *f,
                         struct mp_metrics_vec **out, struct mp_err *err)
{
    pthread_mutex_lock(&r->lock);
    size_t lo = 0, hi = r->nfams;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(r->fams[mid]->name, f->name);
        if (c == 0) {
            struct mp_metrics_vec *old = r->fams[mid];
            pthread_mutex_unlock(&r->lock);
            bool same = same_family(old, f);
            int rc = same ? 0
                          : mp_err_set(err, MP_EEXISTS,
                                       "metric %s already registered with another description",
                                       f->name);
            family_free(f);
            *out = same ? old : NULL;
            return rc;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (r->nfams == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 32;
        r->fams = mp_xrealloc(r->fams, r->cap * sizeof *r->fams);
    }
    memmove(r->fams + lo + 1, r->fams + lo, (r->nfams - lo) * sizeof *r->fams);
    r->fams[lo] = f;
    r->nfams++;
    pthread_mutex_unlock(&r->lock);
    *out = f;
    return 0;
}

static int family_build(enum mp_metric_type type, const char *name, const char *help,
                        const char *const *label_names, size_t nlabels, const double *bounds,
                        size_t nbounds, struct mp_metrics_vec **out, struct mp_err *err)
{
    if (!valid_metric_name(name))
        return mp_err_set(err, MP_EINVAL, "invalid metric name \"%s\"", name ? name : "");
    if (nlabels > MAX_LABELS)
        return mp_err_set(err, MP_EINVAL, "metric %s: more than %d labels", name, MAX_LABELS);
    for (size_t i = 0; i < nlabels; i++) {
        if (!valid_label_name(label_names[i]) ||
            (type == MP_METRIC_HISTOGRAM && strcmp(label_names[i], "le") == 0))
            return mp_err_set(err, MP_EINVAL, "metric %s: invalid label name \"%s\"", name,
                              label_names[i] ? label_names[i] : "");
        for (size_t j = 0; j < i; j++)
            if (strcmp(label_names[i], label_names[j]) == 0)
                return mp_err_set(err, MP_EINVAL, "metric %s: duplicate label name \"%s\"",
                                  name, label_names[i]);
    }
    if (type == MP_METRIC_HISTOGRAM) {
        for (size_t i = 0; i < nbounds; i++)
            if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
                return mp_err_set(err, MP_EINVAL,
                                  "histogram %s: buckets must be finite and strictly increasing",
                                  name);
    } else {
        nbounds = 0;
    }

    struct mp_metrics_vec *f = mp_xcalloc(1, sizeof *f);
    f->name = mp_xstrdup(name);
    f->help = mp_xstrdup(help ? help : "");
    f->type = type;
    f->nlabels = nlabels;
    pthread_rwlock_init(&f->lock, NULL);
    if (nlabels) {
        f->label_names = mp_xcalloc(nlabels, sizeof *f->label_names);
        f->order = mp_xcalloc(nlabels, sizeof *f->order);
        for (size_t i = 0; i < nlabels; i++)
            f->order[i] = i;
        /* insertion sort of the indices by name: a handful of labels */
        for (size_t i = 1; i < nlabels; i++)
            for (size_t j = i; j > 0 && strcmp(label_names[f->order[j - 1]],
                                               label_names[f->order[j]]) > 0;
                 j--) {
                size_t t = f->order[j];
                f->order[j] = f->order[j - 1];
                f->order[j - 1] = t;
            }
        for (size_t i = 0; i < nlabels; i++)
            f->label_names[i] = mp_xstrdup(label_names[f->order[i]]);
    }
    if (nbounds) {
        f->bounds = mp_xcalloc(nbounds, sizeof *f->bounds);
        memcpy(f->bounds, bounds, nbounds * sizeof *bounds);
        f->nbounds = nbounds;
    }
    *out = f;
    return 0;
}

static int register_plain(struct mp_metrics_registry *r, enum mp_metric_type type,
                          const char *name, const char *help, const double *bounds,
                          size_t nbounds, void **out, struct mp_err *err)
{
    struct mp_metrics_vec *f = NULL;
    int rc = family_build(type, name, help, NULL, 0, bounds, nbounds, &f, err);
    if (rc)
        return rc;
    f->children = mp_xmalloc(sizeof *f->children);
    f->children[0] = child_new(f, NULL);
    f->nchildren = f->cap = 1;
    struct mp_metrics_vec *got;
    rc = family_insert(r, f, &got, err);
    if (rc)
        return rc;
    *out = got->children[0]->metric;
    return 0;
}

int mp_metrics_counter_register(struct mp_metrics_registry *r, const char *name,
                                const char *help, struct mp_counter **out, struct mp_err *err)
{
    void *m = NULL;
    int rc = register_plain(r, MP_METRIC_COUNTER, name, help, NULL, 0, &m, err);
    *out = m;
    return rc;
}

int mp_metrics_gauge_register(struct mp_metrics_registry *r, const char *name, const char *help,
                              struct mp_gauge **out, struct mp_err *err)
{
    void *m = NULL;
    int rc = register_plain(r, MP_METRIC_GAUGE, name, help, NULL, 0, &m, err);
    *out = m;
    return rc;
}

int mp_metrics_histogram_register(struct mp_metrics_registry *r, const char *name,
                                  const char *help, const double *bounds, size_t nbounds,
                                  struct mp_histogram **out, struct mp_err *err)
{
    void *m = NULL;
    int rc = register_plain(r, MP_METRIC_HISTOGRAM, name, help, bounds, nbounds, &m, err);
    *out = m;
    return rc;
}

int mp_metrics_func_register(struct mp_metrics_registry *r, enum mp_metric_type type,
                             const char *name, const char *help, mp_metrics_value_fn *fn,
                             void *ctx, struct mp_err *err)
{
    if (type == MP_METRIC_HISTOGRAM || !fn)
        return mp_err_set(err, MP_EINVAL, "metric %s: callbacks give counters or gauges",
                          name ? name : "");
    struct mp_metrics_vec *f = NULL;
    int rc = family_build(type, name, help, NULL, 0, NULL, 0, &f, err);
    if (rc)
        return rc;
    f->is_func = true;
    f->fn = fn;
    f->ctx = ctx;
    struct mp_metrics_vec *got;
    return family_insert(r, f, &got, err);
}

int mp_metrics_vec_register(struct mp_metrics_registry *r, enum mp_metric_type type,
                            const char *name, const char *help, const char *const *label_names,
                            size_t nlabels, const double *bounds, size_t nbounds,
                            struct mp_metrics_vec **out, struct mp_err *err)
{
    *out = NULL;
    if (type == MP_METRIC_UNTYPED)
        return mp_err_set(err, MP_EINVAL, "metric %s: vectors hold counters, gauges or "
                                          "histograms", name ? name : "");
    struct mp_metrics_vec *f = NULL;
    int rc = family_build(type, name, help, label_names, nlabels, bounds, nbounds, &f, err);
    if (rc)
        return rc;
    return family_insert(r, f, out, err);
}

/* Compares a child's values with a key (both in sorted label order). */
static int values_cmp(char *const *a, const char *const *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int c = strcmp(a[i], b[i]);
        if (c)
            return c;
    }
    return 0;
}

/* Binary search; returns true and *pos when found, else the insertion point. Caller holds
 * f->lock (read or write). */
static bool child_find_locked(const struct mp_metrics_vec *f, const char *const *key,
                              size_t *pos)
{
    size_t lo = 0, hi = f->nchildren;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = values_cmp(f->children[mid]->values, key, f->nlabels);
        if (c == 0) {
            *pos = mid;
            return true;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return false;
}

static void *vec_child(struct mp_metrics_vec *f, enum mp_metric_type type,
                       const char *const *values)
{
    if (!f || f->type != type || f->is_func)
        return NULL;
    const char *key[MAX_LABELS + 1];
    for (size_t i = 0; i < f->nlabels; i++)
        key[i] = values[f->order[i]] ? values[f->order[i]] : "";
    size_t pos;
    pthread_rwlock_rdlock(&f->lock);
    if (child_find_locked(f, key, &pos)) {
        void *m = f->children[pos]->metric;
        pthread_rwlock_unlock(&f->lock);
        return m;
    }
    pthread_rwlock_unlock(&f->lock);

    /* build outside the lock, then re-check: another thread may have won the race */
    char **vals = f->nlabels ? mp_xcalloc(f->nlabels, sizeof *vals) : NULL;
    for (size_t i = 0; i < f->nlabels; i++)
        vals[i] = mp_xstrdup(key[i]);
    struct child *c = child_new(f, vals);
    pthread_rwlock_wrlock(&f->lock);
    if (child_find_locked(f, key, &pos)) {
        void *m = f->children[pos]->metric;
        pthread_rwlock_unlock(&f->lock);
        for (size_t i = 0; i < f->nlabels; i++)
            mp_free(vals[i]);
        mp_free(vals);
        free_aligned(c->metric);
        mp_free(c);
        return m;
    }
    if (f->nchildren == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 8;
        f->children = mp_xrealloc(f->children, f->cap * sizeof *f->children);
    }
    memmove(f->children + pos + 1, f->children + pos, (f->nchildren - pos) * sizeof(void *));
    f->children[pos] = c;
    f->nchildren++;
    pthread_rwlock_unlock(&f->lock);
    return c->metric;
}

struct mp_counter *mp_metrics_vec_counter(struct mp_metrics_vec *v, const char *const *values)
{
    return vec_child(v, MP_METRIC_COUNTER, values);
}

struct mp_gauge *mp_metrics_vec_gauge(struct mp_metrics_vec *v, const char *const *values)
{
    return vec_child(v, MP_METRIC_GAUGE, values);
}

struct mp_histogram *mp_metrics_vec_histogram(struct mp_metrics_vec *v,
                                              const char *const *values)
{
    return vec_child(v, MP_METRIC_HISTOGRAM, values);
}

/* ---- rendering ---------------------------------------------------------------------- */

int mp_metrics_format_value(double v, char *buf, size_t cap)
{
    if (v == 0)
        return snprintf(buf, cap, "0"); /* writeFloat: f == 0 also catches -0 */
    return mp_float_format_go(v, buf, cap);
}

/* Appends s with the escapes of label values (\\ \" \n) or of HELP text (\\ \n). */
static int put_escaped(struct mp_buf *out, const char *s, bool quote_too)
{
    const char *run = s;
    int rc = 0;
    for (; *s && !rc; s++) {
        const char *esc = NULL;
        if (*s == '\\')
            esc = "\\\\";
        else if (*s == '\n')
            esc = "\\n";
        else if (*s == '"' && quote_too)
            esc = "\\\"";
        if (!esc)
            continue;
        rc = mp_buf_append(out, run, (size_t)(s - run));
        if (!rc)
            rc = mp_buf_append(out, esc, 2);
        run = s + 1;
    }
    if (!rc)
        rc = mp_buf_append(out, run, (size_t)(s - run));
    return rc;
}

static int put_value(struct mp_buf *out, double v)
{
    char num[40];
    int n = mp_metrics_format_value(v, num, sizeof num);
    return mp_buf_append(out, num, (size_t)n);
}

/* name[suffix]{labels[,le="x"]} value\n */
static int put_sample(struct mp_buf *out, const struct mp_metrics_vec *f, const char *suffix,
                      char *const *values, const char *le, double v)
{
    int rc = mp_buf_append_str(out, f->name);
    if (!rc && suffix)
        rc = mp_buf_append_str(out, suffix);
    if (!rc && (f->nlabels || le)) {
        rc = mp_buf_append(out, "{", 1);
        for (size_t i = 0; i < f->nlabels && !rc; i++) {
            if (i)
                rc = mp_buf_append(out, ",", 1);
            if (!rc)
                rc = mp_buf_append_str(out, f->label_names[i]);
            if (!rc)
                rc = mp_buf_append(out, "=\"", 2);
            if (!rc)
                rc = put_escaped(out, values[i], true);
            if (!rc)
                rc = mp_buf_append(out, "\"", 1);
        }
        if (!rc && le)
            rc = mp_buf_appendf(out, "%sle=\"%s\"", f->nlabels ? "," : "", le);
        if (!rc)
            rc = mp_buf_append(out, "}", 1);
    }
    if (!rc)
        rc = mp_buf_append(out, " ", 1);
    if (!rc)
        rc = put_value(out, v);
    if (!rc)
        rc = mp_buf_append(out, "\n", 1);
    return rc;
}

static int put_header(struct mp_buf *out, const struct mp_metrics_vec *f)
{
    int rc = mp_buf_appendf(out, "# HELP %s ", f->name);
    if (!rc)
        rc = put_escaped(out, f->help, false);
    if (!rc)
        rc = mp_buf_appendf(out, "\n# TYPE %s %s\n", f->name, type_name(f->type));
    return rc;
}

static int put_child(struct mp_buf *out, const struct mp_metrics_vec *f, const struct child *c)
{
    switch (f->type) {
    case MP_METRIC_GAUGE:
        return put_sample(out, f, NULL, c->values, NULL, mp_gauge_get(c->metric));
    case MP_METRIC_HISTOGRAM: {
        const struct mp_histogram *h = c->metric;
        uint64_t cum = 0;
        int rc = 0;
        for (size_t i = 0; i <= h->nbounds && !rc; i++) {
            cum += atomic_load_explicit((_Atomic uint64_t *)&h->counts[i], memory_order_relaxed);
            char le[40];
            if (i < h->nbounds)
                mp_metrics_format_value(h->bounds[i], le, sizeof le);
            else
                snprintf(le, sizeof le, "+Inf");
            rc = put_sample(out, f, "_bucket", c->values, le, (double)cum);
        }
        /* _count is the +Inf bucket, so the page is self-consistent under updates */
        if (!rc)
            rc = put_sample(out, f, "_sum", c->values, NULL, mp_histogram_sum(h));
        if (!rc)
            rc = put_sample(out, f, "_count", c->values, NULL, (double)cum);
        return rc;
    }
    default:
        return put_sample(out, f, NULL, c->values, NULL, mp_counter_get(c->metric));
    }
}

static int render_family(struct mp_buf *out, struct mp_metrics_vec *f)
{
    if (f->is_func) {
        double v = f->fn(f->ctx);
        int rc = put_header(out, f);
        return rc ? rc : put_sample(out, f, NULL, NULL, NULL, v);
    }
    pthread_rwlock_rdlock(&f->lock);
    size_t n = f->nchildren;
    struct child **snap = n ? mp_malloc(n * sizeof *snap) : NULL;
    if (n && !snap) {
        pthread_rwlock_unlock(&f->lock);
        return MP_ENOMEM;
    }
    if (n)
        memcpy(snap, f->children, n * sizeof *snap);
    pthread_rwlock_unlock(&f->lock);
    int rc = n ? put_header(out, f) : 0;
    for (size_t i = 0; i < n && !rc; i++)
        rc = put_child(out, f, snap[i]);
    mp_free(snap);
    return rc;
}

int mp_metrics_render(struct mp_metrics_registry *r, struct mp_buf *out)
{
    pthread_mutex_lock(&r->lock);
    size_t n = r->nfams;
    struct mp_metrics_vec **snap = n ? mp_malloc(n * sizeof *snap) : NULL;
    if (n && !snap) {
        pthread_mutex_unlock(&r->lock);
        return MP_ENOMEM;
    }
    if (n)
        memcpy(snap, r->fams, n * sizeof *snap);
    pthread_mutex_unlock(&r->lock);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        rc = render_family(out, snap[i]);
    mp_free(snap);
    return rc;
}
