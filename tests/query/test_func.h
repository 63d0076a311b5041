/* SPDX-License-Identifier: Apache-2.0 */
/* tests/query/test_func.h: a harness for the function implementations of query/func*.c: builds
 * one step's arguments by hand, looks the function up through the parser's table and
 * query_func_lookup, and keeps the output vector and annotations for the assertions.
 * Included by the tests/query/test_func*.c files only (static helpers). */
#ifndef TESTS_QUERY_TEST_FUNC_H
#define TESTS_QUERY_TEST_FUNC_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "query/eval.h"
#include "query/func.h"

#define FX_MAXARGS 8
#define FX_MAXWIN 8

struct fx {
    struct qvector out;
    struct qannots an;
    struct mp_labels_builder *lb;
    struct qcall c;
    struct qarg args[FX_MAXARGS];
    struct qvector vecs[FX_MAXARGS];
    struct qwindow wins[FX_MAXWIN];
    struct mp_labels *owned[64];
    size_t nowned;
    struct query_expr *expr;
    struct mp_err err;
};

/* Labels from name, value, ..., NULL; the fixture releases them. */
static inline struct mp_labels *fx_labels(struct fx *f, ...)
{
    struct mp_label l[16];
    size_t n = 0;
    va_list ap;
    va_start(ap, f);
    for (const char *name; (name = va_arg(ap, const char *)) != NULL && n < 16; n++) {
        l[n].name = mp_str_c(name);
        l[n].value = mp_str_c(va_arg(ap, const char *));
    }
    va_end(ap);
    struct mp_labels *ls = NULL;
    cr_assert_eq(mp_labels_create(l, n, &ls, NULL), 0);
    cr_assert_lt(f->nowned, 64);
    f->owned[f->nowned++] = ls;
    return ls;
}

static inline void fx_init(struct fx *f, int64_t t_ms)
{
    memset(f, 0, sizeof *f);
    f->lb = mp_labels_builder_create();
    f->c = (struct qcall){.t_ms = t_ms,
                          .start_ms = t_ms,
                          .end_ms = t_ms,
                          .args = f->args,
                          .out = &f->out,
                          .annots = &f->an,
                          .lb = f->lb};
}

static inline void fx_fini(struct fx *f)
{
    query_vec_fini(&f->out);
    for (size_t i = 0; i < FX_MAXARGS; i++) {
        f->vecs[i].n = 0; /* borrowed labels: owned[] holds them */
        query_vec_fini(&f->vecs[i]);
    }
    for (size_t i = 0; i < f->nowned; i++)
        mp_labels_release(f->owned[i]);
    query_annots_fini(&f->an);
    mp_labels_builder_destroy(f->lb);
    query_expr_free(f->expr);
}

/* Parses src (experimental functions on) and makes it the call node of c. */
static inline void fx_expr(struct fx *f, const char *src)
{
    struct query_parse_opts o;
    query_parse_opts_init(&o);
    o.experimental_functions = true;
    struct query_parse_error pe;
    cr_assert_eq(query_parse(src, strlen(src), &o, &f->expr, &pe), 0, "%s: %s", src, pe.msg);
    cr_assert_eq(query_expr_kind(f->expr), QUERY_CALL);
    f->c.expr = f->expr;
}

static inline void fx_scalar(struct fx *f, size_t i, double v)
{
    f->args[i] = (struct qarg){.kind = QARG_SCALAR, .scalar = v};
    if (i + 1 > f->c.nargs)
        f->c.nargs = i + 1;
}

static inline void fx_string(struct fx *f, size_t i, const char *s)
{
    f->args[i] = (struct qarg){.kind = QARG_STRING, .str = mp_str_c(s)};
    if (i + 1 > f->c.nargs)
        f->c.nargs = i + 1;
}

/* Argument i becomes an instant vector; add elements with fx_elem. */
static inline void fx_vector(struct fx *f, size_t i)
{
    f->args[i] = (struct qarg){.kind = QARG_VECTOR, .vec = &f->vecs[i]};
    if (i + 1 > f->c.nargs)
        f->c.nargs = i + 1;
}

static inline void fx_elem(struct fx *f, size_t i, struct mp_labels *ls, double v)
{
    /* the vector borrows: fx_fini empties it before freeing */
    cr_assert_eq(query_vec_push(&f->vecs[i], ls, v, f->c.t_ms, false), 0);
}

/* Argument i becomes a range vector of range_ms; add series with fx_window. */
static inline void fx_matrix(struct fx *f, size_t i, int64_t range_ms)
{
    f->args[i] = (struct qarg){.kind = QARG_MATRIX, .win = f->wins, .range_ms = range_ms};
    if (i + 1 > f->c.nargs)
        f->c.nargs = i + 1;
}

static inline void fx_window(struct fx *f, size_t i, struct mp_labels *ls, const struct query_point *p,
                      size_t n)
{
    struct qarg *a = &f->args[i];
    cr_assert_lt(a->nwin, FX_MAXWIN);
    f->wins[a->nwin++] = (struct qwindow){.labels = ls, .p = p, .n = n};
}

/* Runs the named function; returns its status (err in f->err). */
static inline int fx_run(struct fx *f, const char *name)
{
    const struct query_function *fn = query_function_get(mp_str_c(name));
    cr_assert_not_null(fn, "%s is not in the table", name);
    qfunc_fn *impl = query_func_lookup(fn);
    cr_assert_not_null(impl, "%s has no implementation", name);
    return impl(&f->c, &f->err);
}

/* Runs and expects success with exactly one output element; returns its value. */
static inline double fx_one(struct fx *f, const char *name)
{
    int rc = fx_run(f, name);
    cr_assert_eq(rc, 0, "%s: %s", name, f->err.msg);
    cr_assert_eq(f->out.n, 1, "%s: %zu outputs", name, f->out.n);
    return f->out.s[0].v;
}

static inline bool fx_has_info(const struct fx *f, const char *msg)
{
    for (size_t i = 0; i < f->an.ninfos; i++)
        if (strcmp(f->an.infos[i], msg) == 0)
            return true;
    return false;
}

static inline bool fx_has_warning(const struct fx *f, const char *msg)
{
    for (size_t i = 0; i < f->an.nwarnings; i++)
        if (strcmp(f->an.warnings[i], msg) == 0)
            return true;
    return false;
}

/* Exact equality, NaN equal to NaN, -0 distinct from +0. */
#define fx_assert_same(got, want)                                                                 \
    do {                                                                                          \
        double g_ = (got), w_ = (want);                                                           \
        cr_assert(isnan(w_) ? isnan(g_) : (g_ == w_ && signbit(g_) == signbit(w_)),               \
                  "got %.17g, want %.17g", g_, w_);                                               \
    } while (0)

/* Output element i's label set printed as Prometheus does. */
static inline void fx_assert_labels(const struct fx *f, size_t i, const char *want)
{
    struct mp_buf b;
    mp_buf_init(&b, 0);
    cr_assert_lt(i, f->out.n);
    cr_assert_eq(mp_labels_format(f->out.s[i].labels, &b), 0);
    cr_assert_str_eq(b.data ? b.data : "", want);
    mp_buf_fini(&b);
}

#endif
