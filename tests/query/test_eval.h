/* SPDX-License-Identifier: Apache-2.0 */
/* tests/query/test_eval.h: fixtures of the evaluator tests (test_eval*.c): a tsdb in a mkdtemp
 * directory (no background thread, no fsync), series loaded promqltest-style ("0+10x5",
 * "_" = no sample, "stale" = staleness marker), queries through the public engine API, and
 * result checks that compare label sets by their String() form and values bit for bit. */
#ifndef TESTS_QUERY_TEST_EVAL_H
#define TESTS_QUERY_TEST_EVAL_H

#define _XOPEN_SOURCE 700
#include <criterion/criterion.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/labels.h"
#include "query/query.h"
#include "tsdb/tsdb.h"

struct ev_fx {
    char dir[64];
    struct tsdb *db;
    struct query_engine *eng;
    struct query_result r;
    struct mp_err err;
};

static inline int ev_rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

/* Parses `name{a="b", c="d"}` (no escapes) into a label set. */
static inline struct mp_labels *ev_labels(const char *s)
{
    struct mp_label l[32];
    char buf[32][2][128];
    size_t n = 0;
    const char *p = s;
    size_t k = strcspn(p, "{");
    if (k > 0) {
        snprintf(buf[n][0], sizeof buf[n][0], "__name__");
        snprintf(buf[n][1], sizeof buf[n][1], "%.*s", (int)k, p);
        n++;
    }
    p += k;
    if (*p == '{')
        p++;
    while (*p && *p != '}') {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '}')
            break;
        size_t nl = strcspn(p, "=");
        snprintf(buf[n][0], sizeof buf[n][0], "%.*s", (int)nl, p);
        p += nl + 2; /* =" */
        size_t vl = strcspn(p, "\"");
        snprintf(buf[n][1], sizeof buf[n][1], "%.*s", (int)vl, p);
        p += vl + 1;
        n++;
    }
    for (size_t i = 0; i < n; i++)
        l[i] = (struct mp_label){mp_str_c(buf[i][0]), mp_str_c(buf[i][1])};
    struct mp_labels *ls = NULL;
    cr_assert_eq(mp_labels_create(l, n, &ls, NULL), 0, "labels %s", s);
    return ls;
}

static inline void ev_open_opts(struct ev_fx *f, const struct query_engine_opts *eo)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/mp_test_eval_XXXXXX");
    cr_assert_not_null(mkdtemp(f->dir));
    struct tsdb_options o;
    tsdb_options_init(&o);
    o.dir = f->dir;
    o.background = false;
    o.wal_fsync = TSDB_WAL_FSYNC_NONE;
    cr_assert_eq(tsdb_open(&o, &f->db, &f->err), 0, "%s", f->err.msg);
    cr_assert_eq(query_engine_create(eo, &f->eng, &f->err), 0, "%s", f->err.msg);
}

static inline void ev_open(struct ev_fx *f)
{
    struct query_engine_opts eo;
    query_engine_opts_init(&eo);
    ev_open_opts(f, &eo);
}

static inline void ev_close(struct ev_fx *f)
{
    query_result_fini(&f->r);
    query_engine_destroy(f->eng);
    tsdb_close(f->db);
    cr_assert_eq(nftw(f->dir, ev_rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

/* Appends one sample. */
static inline void ev_add(struct ev_fx *f, const char *series, int64_t t_ms, double v)
{
    struct mp_labels *ls = ev_labels(series);
    struct tsdb_appender *a;
    cr_assert_eq(tsdb_appender_create(f->db, &a), 0);
    cr_assert_eq(tsdb_appender_add(a, 0, ls, t_ms, v, NULL, &f->err), 0, "%s", f->err.msg);
    cr_assert_eq(tsdb_appender_commit(a, &f->err), 0, "%s", f->err.msg);
    mp_labels_release(ls);
}

/* promqltest series values from t = 0 every step_ms: "1 2 _ stale 5", "0+10x5" (6 values),
 * "1x3" (4 values), "_x2" (skips 3). */
static inline void ev_load(struct ev_fx *f, const char *series, int64_t step_ms, const char *vals)
{
    struct mp_labels *ls = ev_labels(series);
    struct tsdb_appender *a;
    cr_assert_eq(tsdb_appender_create(f->db, &a), 0);
    int64_t t = 0;
    const char *p = vals;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        char tok[64];
        size_t n = strcspn(p, " ");
        snprintf(tok, sizeof tok, "%.*s", (int)n, p);
        p += n;
        double start, inc = 0;
        long times = 0;
        bool skip = false, stale = false;
        char *x = strchr(tok, 'x');
        if (x)
            times = strtol(x + 1, NULL, 10), *x = 0;
        if (strcmp(tok, "_") == 0) {
            skip = true;
            start = 0;
        } else if (strcmp(tok, "stale") == 0) {
            stale = true;
            start = 0;
        } else {
            char *end;
            start = strtod(tok, &end);
            if (*end == '+' || (*end == '-' && end != tok))
                inc = strtod(end, NULL);
        }
        for (long i = 0; i <= times; i++) {
            if (!skip) {
                double v = stale ? tsdb_stale_nan() : start + inc * (double)i;
                cr_assert_eq(tsdb_appender_add(a, 0, ls, t, v, NULL, &f->err), 0, "%s",
                             f->err.msg);
            }
            t += step_ms;
        }
    }
    cr_assert_eq(tsdb_appender_commit(a, &f->err), 0, "%s", f->err.msg);
    mp_labels_release(ls);
}

static inline int ev_instant(struct ev_fx *f, const char *q, int64_t t_ms)
{
    query_result_fini(&f->r);
    memset(&f->err, 0, sizeof f->err);
    return query_exec_instant(f->eng, f->db, q, strlen(q), t_ms, NULL, &f->r, &f->err);
}

static inline int ev_range(struct ev_fx *f, const char *q, int64_t start, int64_t end, int64_t step)
{
    query_result_fini(&f->r);
    memset(&f->err, 0, sizeof f->err);
    return query_exec_range(f->eng, f->db, q, strlen(q), start, end, step, NULL, &f->r, &f->err);
}

static inline const char *ev_fmt(const struct mp_labels *ls, char *buf, size_t cap)
{
    struct mp_buf b;
    mp_buf_init(&b, 0);
    cr_assert_eq(mp_labels_format(ls, &b), 0);
    snprintf(buf, cap, "%.*s", (int)b.len, b.data);
    mp_buf_fini(&b);
    return buf;
}

static inline bool ev_same(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return a == b && signbit(a) == signbit(b);
}

struct ev_want {
    const char *labels; /* String() form: {__name__="x", a="b"} */
    double v;
};

/* The instant query's vector equals want (as a set; with ordered, in that order). */
static inline void ev_expect_vec(struct ev_fx *f, const char *q, int64_t t, const struct ev_want *w,
                          size_t n, bool ordered)
{
    int rc = ev_instant(f, q, t);
    cr_assert_eq(rc, 0, "%s: %s", q, f->err.msg);
    cr_assert_eq(f->r.type, QUERY_TYPE_VECTOR, "%s: type %d", q, f->r.type);
    char got[512];
    if (f->r.nseries != n) {
        for (size_t i = 0; i < f->r.nseries; i++)
            fprintf(stderr, "  got %s %.17g\n", ev_fmt(f->r.series[i].labels, got, sizeof got),
                    f->r.series[i].points[0].v);
        cr_assert_fail("%s: %zu series, want %zu", q, f->r.nseries, n);
    }
    for (size_t i = 0; i < n; i++) {
        size_t j;
        for (j = 0; j < n; j++) {
            if (ordered && j != i)
                continue;
            if (strcmp(ev_fmt(f->r.series[j].labels, got, sizeof got), w[i].labels) == 0)
                break;
        }
        cr_assert_lt(j, n, "%s: no series %s (at %zu: %s)", q, w[i].labels, i,
                     ev_fmt(f->r.series[i].labels, got, sizeof got));
        cr_assert_eq(f->r.series[j].npoints, 1);
        cr_assert_eq(f->r.series[j].points[0].t_ms, t);
        cr_assert(ev_same(f->r.series[j].points[0].v, w[i].v), "%s: %s = %.17g, want %.17g", q,
                  w[i].labels, f->r.series[j].points[0].v, w[i].v);
    }
}

#define EV_VEC(f, q, t, ...)                                                                    \
    do {                                                                                        \
        const struct ev_want w_[] = {__VA_ARGS__};                                       \
        ev_expect_vec(f, q, t, w_, sizeof w_ / sizeof w_[0], false);                            \
    } while (0)
#define EV_VEC_ORDERED(f, q, t, ...)                                                            \
    do {                                                                                        \
        const struct ev_want w_[] = {__VA_ARGS__};                                       \
        ev_expect_vec(f, q, t, w_, sizeof w_ / sizeof w_[0], true);                             \
    } while (0)

static inline void ev_expect_empty(struct ev_fx *f, const char *q, int64_t t)
{
    int rc = ev_instant(f, q, t);
    cr_assert_eq(rc, 0, "%s: %s", q, f->err.msg);
    cr_assert_eq(f->r.nseries, 0, "%s: %zu series", q, f->r.nseries);
}

static inline void ev_expect_scalar(struct ev_fx *f, const char *q, int64_t t, double v)
{
    int rc = ev_instant(f, q, t);
    cr_assert_eq(rc, 0, "%s: %s", q, f->err.msg);
    cr_assert_eq(f->r.type, QUERY_TYPE_SCALAR);
    cr_assert(ev_same(f->r.scalar.v, v), "%s = %.17g, want %.17g", q, f->r.scalar.v, v);
}

/* The instant query fails with code and exactly msg. */
static inline void ev_expect_err(struct ev_fx *f, const char *q, int64_t t, int code, const char *msg)
{
    int rc = ev_instant(f, q, t);
    cr_assert_eq(rc, code, "%s: rc %d (%s)", q, rc, f->err.msg);
    cr_assert_str_eq(f->err.msg, msg, "%s", q);
    cr_assert_eq(f->r.nseries, 0);
}

/* Series i of a range result: labels and "t:v t:v ..." (t in seconds). */
static inline void ev_expect_points(struct ev_fx *f, size_t i, const char *labels, const char *pts)
{
    char got[512];
    cr_assert_lt(i, f->r.nseries);
    cr_assert_str_eq(ev_fmt(f->r.series[i].labels, got, sizeof got), labels);
    const struct query_series *s = &f->r.series[i];
    size_t k = 0;
    const char *p = pts;
    while (*p) {
        char *end;
        double t = strtod(p, &end);
        cr_assert_eq(*end, ':', "bad pts %s", pts);
        double v = strtod(end + 1, &end);
        cr_assert_lt(k, s->npoints, "%s: only %zu points", labels, s->npoints);
        cr_assert_eq(s->points[k].t_ms, (int64_t)(t * 1000), "%s point %zu t %lld", labels, k,
                     (long long)s->points[k].t_ms);
        cr_assert(ev_same(s->points[k].v, v), "%s point %zu = %.17g, want %.17g", labels, k,
                  s->points[k].v, v);
        k++;
        p = end;
        while (*p == ' ')
            p++;
    }
    cr_assert_eq(k, s->npoints, "%s: %zu points, want %zu", labels, s->npoints, k);
}

#endif
