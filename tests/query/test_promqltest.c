/* SPDX-License-Identifier: Apache-2.0 */
/* tests/query/test_promqltest.c: the promqltest runner's own half (promql.md 7): series
 * notation expansion, almost.Equal, file parsing and its errors, and the comparison rules,
 * run through the query_test_exec hook with canned results so that they do not depend on the
 * engine. Cases written for this project. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "common/log.h"
#include "query/query.h"
#include "tsdb/tsdb.h"

static void quiet(void)
{
    mp_log_set_level(MP_LOG_LEVEL_WARN); /* the storage logs its opening at info */
}

TestSuite(promqltest, .init = quiet);

static size_t expand(const char *s, struct query_test_value **v)
{
    size_t n = 0;
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(query_test_expand_values(mp_str_c(s), v, &n, &err), 0, "%s: %s", s, err.msg);
    return n;
}

Test(promqltest, expands_series_notation)
{
    struct query_test_value *v;
    size_t n = expand("1+1x3 _ stale 7", &v);
    cr_assert_eq(n, 7);
    for (int i = 0; i < 4; i++)
        cr_expect(!v[i].omitted && v[i].v == i + 1);
    cr_expect(v[4].omitted);
    cr_expect(!v[5].omitted && tsdb_is_stale(v[5].v));
    cr_expect(v[6].v == 7);
    mp_free(v);

    n = expand("-1-1x3", &v);
    cr_assert_eq(n, 4);
    cr_expect(v[0].v == -1 && v[3].v == -4);
    mp_free(v);

    n = expand("_x3 2x2", &v); /* _xN: N blanks; axN: N+1 copies */
    cr_assert_eq(n, 6);
    cr_expect(v[0].omitted && v[1].omitted && v[2].omitted && !v[3].omitted);
    cr_expect(v[3].v == 2 && v[5].v == 2);
    mp_free(v);

    n = expand("Inf -Inf NaN +5 1e3 -2.5e-1 010", &v);
    cr_assert_eq(n, 7);
    cr_expect(isinf(v[0].v) && v[0].v > 0);
    cr_expect(isinf(v[1].v) && v[1].v < 0);
    cr_expect(isnan(v[2].v) && !tsdb_is_stale(v[2].v));
    cr_expect(v[3].v == 5 && v[4].v == 1000 && v[5].v == -0.25);
    cr_expect(v[6].v == 8); /* Go ParseInt base 0: leading zero is octal */
    mp_free(v);

    /* repeated float addition, not a + i*b */
    n = expand("0.1+0.1x2", &v);
    cr_assert_eq(n, 3);
    cr_expect(v[2].v == 0.1 + 0.1 + 0.1);
    mp_free(v);

    n = expand("1e2-1e1x1 5x0", &v);
    cr_assert_eq(n, 3);
    cr_expect(v[0].v == 100 && v[1].v == 90 && v[2].v == 5);
    mp_free(v);

    n = expand("", &v);
    cr_expect_eq(n, 0);
    mp_free(v);
}

Test(promqltest, rejects_bad_items)
{
    static const char *const bad[] = {"1+1",   "x3", "1x",      "abc",  "1+-1x2",      "1x3x4",
                                      "_+1x2", "1y", "stalex2", "1+x2", "{{schema:1}}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct query_test_value *v = (void *)1;
        size_t n = 9;
        struct mp_err err;
        mp_err_clear(&err);
        cr_expect_eq(query_test_expand_values(mp_str_c(bad[i]), &v, &n, &err), MP_EPARSE, "%s",
                     bad[i]);
        cr_expect(v == NULL && n == 0);
    }
}

Test(promqltest, almost_equal)
{
    cr_expect(query_test_almost_equal(1, 1));
    cr_expect(query_test_almost_equal(1, 1 + 1e-7));
    cr_expect(!query_test_almost_equal(1, 1 + 1e-5));
    cr_expect(query_test_almost_equal(1e300, 1.0000001e300));
    cr_expect(!query_test_almost_equal(0, 1e-300)); /* zero is compared exactly */
    cr_expect(query_test_almost_equal(0, -0.0));
    cr_expect(query_test_almost_equal(NAN, NAN));
    cr_expect(!query_test_almost_equal(NAN, 1));
    cr_expect(query_test_almost_equal(tsdb_stale_nan(), tsdb_stale_nan()));
    cr_expect(!query_test_almost_equal(tsdb_stale_nan(), NAN));
    cr_expect(query_test_almost_equal(INFINITY, INFINITY));
    cr_expect(!query_test_almost_equal(INFINITY, -INFINITY));
    cr_expect(!query_test_almost_equal(INFINITY, 1e308));
}

static int check(const char *src, size_t *n, struct mp_err *err)
{
    mp_err_clear(err);
    return query_test_check_buffer("t.test", src, strlen(src), n, err);
}

Test(promqltest, parses_commands)
{
    const char *src = "# comment\n"
                      "load 10s\n"
                      "  m{a=\"1\", b='x\\ty'} 1+1x3\n"
                      "  {__name__=\"n\"} 1 _ 3\n"
                      "\n"
                      "eval instant at 10s m\n"
                      "  m{a=\"1\",b=\"x\\ty\"} 2\n"
                      "\n"
                      "EVAL range from 0 to 30s step 10s sum(m) # trailing PromQL comment\n"
                      "  {} 1 2 _ 4\n"
                      "\n"
                      "eval_fail instant at 1m m\n"
                      "  expected_fail_message some error\n"
                      "\n"
                      "eval_fail range from 0 to 1m step 30s m\n"
                      "  expected_fail_regexp some.*\n"
                      "\n"
                      "eval_ordered instant at 0 sort(m)\n\n"
                      "eval_warn instant at 0 m\n\n"
                      "eval_info range from 1h to 1h5m step 1m m\n"
                      "\n"
                      "eval instant at 1h time()\n"
                      "  3600\n"
                      "\n"
                      "clear\n";
    size_t n = 0;
    struct mp_err err;
    cr_assert_eq(check(src, &n, &err), 0, "%s", err.msg);
    cr_expect_eq(n, 10);
}

Test(promqltest, reports_file_errors_with_line)
{
    static const struct {
        const char *src, *msg;
    } bad[] = {
        {"load 10s\n  m 1\n\nfoo bar\n", "t.test:4: invalid command \"foo\""},
        {"load 1.5s\n  m 1\n", "t.test:1: "},
        {"load 10s\n  m{a=1} 1\n", "t.test:1: line 2: "},
        {"load 10s\n  m 1 2 abc\n", "t.test:1: line 2: bad value item \"abc\""},
        {"eval instant at 0 sum(\n", "t.test:1: invalid query sum(: 1:5: parse error: "},
        {"eval instant at 0 m\n  m 1 2\n", "t.test:1: line 2: expecting multiple values in "
                                           "instant evaluation not allowed"},
        {"eval range from 0 to 10s step 10s m\n  m 1 2 3\n",
         "t.test:1: line 2: 3 values given but the range has only 2 steps"},
        {"eval instant 0 m\n", "t.test:1: invalid instant evaluation"},
        {"eval range from 10s to 0 step 1s m\n", "t.test:1: invalid range evaluation: end"},
        {"eval_ordered range from 0 to 1m step 1m m\n", "t.test:1: eval_ordered is only"},
        {"eval instant at 0 m\n  m 1\n  m 2\n", "t.test:1: line 3: series expected twice"},
        {"eval_fail instant at 0 m\n  expected_fail_regexp (\n", "t.test:1: line 2: invalid"},
        {"eval instant at -1s m\n", "t.test:1: "},
        {"load 1m\n  m{a=\"1\",a=\"2\"} 1\n", "t.test:1: line 2: label a given twice"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct mp_err err;
        cr_expect_eq(check(bad[i].src, NULL, &err), MP_EPARSE, "case %zu", i);
        cr_expect(strncmp(err.msg, bad[i].msg, strlen(bad[i].msg)) == 0,
                  "case %zu: got \"%s\", want prefix \"%s\"", i, err.msg, bad[i].msg);
    }
}

/* ---- comparison through canned results ---------------------------------------------------- */

static struct mp_labels *labels_of(const char *name, const char *a)
{
    struct mp_label l[2] = {{MP_STR_LIT("__name__"), mp_str_c(name)},
                            {MP_STR_LIT("a"), mp_str_c(a)}};
    struct mp_labels *ls = NULL;
    cr_assert_eq(mp_labels_create(name ? l : l + 1, name ? 2 : 1, &ls, NULL), 0);
    return ls;
}

static void add_series(struct query_result *r, struct mp_labels *ls, const int64_t *t,
                       const double *v, size_t n)
{
    r->series = mp_xrealloc(r->series, (r->nseries + 1) * sizeof *r->series);
    struct query_series *s = &r->series[r->nseries++];
    s->labels = ls;
    s->points = mp_xmalloc((n ? n : 1) * sizeof *s->points);
    for (size_t i = 0; i < n; i++)
        s->points[i] = (struct query_point){t[i], v[i]};
    s->npoints = n;
}

/* Queries the fake engine knows: vec (m{a="1"} = t, m{a="2"} = 2t, in that order; t in
 * seconds), scal (scalar t), err (an execution error), warn (vec with a warning), rev (vec in
 * reverse order), off (vec + 1, but only in instant queries), unsorted (a range result out of
 * label order). */
static int fake_instant(void *ctx, struct tsdb *db, const char *q, size_t len, int64_t t,
                        struct query_result *r, struct mp_err *err)
{
    (void)ctx, (void)db, (void)len;
    memset(r, 0, sizeof *r);
    double s = (double)t / 1000;
    if (strcmp(q, "err") == 0)
        return mp_err_set(err, MP_EEXEC, "vector cannot contain metrics with the same labelset");
    if (strcmp(q, "scal") == 0) {
        r->type = QUERY_TYPE_SCALAR;
        r->scalar = (struct query_point){t, s};
        return 0;
    }
    r->type = QUERY_TYPE_VECTOR;
    double v1 = s, v2 = 2 * s;
    if (strcmp(q, "off") == 0)
        v1 += 1, v2 += 1;
    bool rev = strcmp(q, "rev") == 0;
    add_series(r, labels_of("m", rev ? "2" : "1"), &t, rev ? &v2 : &v1, 1);
    add_series(r, labels_of("m", rev ? "1" : "2"), &t, rev ? &v1 : &v2, 1);
    if (strcmp(q, "warn") == 0) {
        r->warnings = mp_xmalloc(sizeof *r->warnings);
        r->warnings[0] = mp_xstrdup("PromQL warning: something");
        r->nwarnings = 1;
    }
    return 0;
}

static int fake_range(void *ctx, struct tsdb *db, const char *q, size_t len, int64_t start,
                      int64_t end, int64_t step, struct query_result *r, struct mp_err *err)
{
    (void)ctx, (void)db, (void)len;
    memset(r, 0, sizeof *r);
    if (strcmp(q, "err") == 0)
        return mp_err_set(err, MP_EEXEC, "boom");
    r->type = QUERY_TYPE_MATRIX;
    int64_t ts[64];
    double v1[64], v2[64];
    size_t n = 0;
    for (int64_t t = start; t <= end && n < 64; t += step, n++) {
        ts[n] = t;
        v1[n] = (double)t / 1000;
        v2[n] = 2 * v1[n];
    }
    bool scal = strcmp(q, "scal") == 0, unsorted = strcmp(q, "unsorted") == 0;
    if (scal) {
        add_series(r, mp_labels_empty(), ts, v1, n);
        return 0;
    }
    add_series(r, labels_of(scal ? NULL : "m", unsorted ? "2" : "1"), ts, unsorted ? v2 : v1, n);
    add_series(r, labels_of(scal ? NULL : "m", unsorted ? "1" : "2"), ts, unsorted ? v1 : v2, n);
    return 0;
}

static const struct query_test_exec fake = {NULL, fake_instant, fake_range};

/* Runs src (named name) on the fake engine into a fresh *rep. */
static int run_rc(const char *name, const char *src, struct query_test_report *rep,
                  struct mp_err *err)
{
    struct query_test_opts o;
    query_test_opts_init(&o);
    o.exec = &fake;
    query_test_report_init(rep);
    mp_err_clear(err);
    return query_test_run_buffer(name, src, strlen(src), &o, rep, err);
}

/* Runs src on the fake engine; returns the number of failed evals, log in *log (mp_free). */
static size_t run(const char *src, size_t *evals, char **log)
{
    struct query_test_report rep;
    struct mp_err err;
    cr_assert_eq(run_rc("f.test", src, &rep, &err), 0, "%s", err.msg);
    size_t n;
    *log = mp_buf_take(&rep.log, &n);
    if (evals)
        *evals = rep.evals;
    size_t failed = rep.failed;
    query_test_report_fini(&rep);
    return failed;
}

static void expect_pass(const char *src)
{
    char *log = NULL;
    size_t evals = 0;
    size_t failed = run(src, &evals, &log);
    cr_expect_eq(failed, 0, "%s\n%s", src, log ? log : "");
    cr_expect_gt(evals, 0);
    mp_free(log);
}

static void expect_fail(const char *src, const char *needle)
{
    char *log = NULL;
    size_t failed = run(src, NULL, &log);
    cr_expect_eq(failed, 1, "%s\n%s", src, log ? log : "");
    cr_expect(log && strstr(log, needle), "log lacks \"%s\":\n%s", needle, log ? log : "");
    cr_expect(log && strstr(log, "f.test:"), "no file:line in\n%s", log ? log : "");
    mp_free(log);
}

Test(promqltest, passing_evals)
{
    expect_pass("eval instant at 10s vec\n  m{a=\"2\"} 20\n  m{a=\"1\"} 10\n"); /* unordered */
    expect_pass("eval_ordered instant at 10s vec\n  m{a=\"1\"} 10\n  m{a=\"2\"} 20\n");
    expect_pass("eval instant at 10s vec\n  m{a=\"1\"} 10.000001\n  m{a=\"2\"} 20\n");
    expect_pass("eval instant at 1m scal\n  60\n");
    expect_pass("eval range from 0 to 20s step 10s vec\n  m{a=\"1\"} 0+10x2\n"
                "  m{a=\"2\"} 0 20 40\n");
    expect_pass("eval_fail instant at 0 err\n");
    expect_pass("eval_fail instant at 0 err\n"
                "  expected_fail_message vector cannot contain metrics with the same labelset\n");
    expect_pass("eval_fail instant at 0 err\n  expected_fail_regexp same label.et$\n");
    expect_pass("eval_warn instant at 10s warn\n  m{a=\"1\"} 10\n  m{a=\"2\"} 20\n");
    expect_pass("load 1m\n  x{a=\"1\"} 1+1x10\n\nclear\n\neval instant at 10s vec\n"
                "  m{a=\"1\"} 10\n  m{a=\"2\"} 20\n");
}

Test(promqltest, failing_evals)
{
    expect_fail("eval instant at 10s vec\n  m{a=\"1\"} 10\n", "unexpected series m{a=\"2\"}");
    expect_fail("eval instant at 10s vec\n  m{a=\"1\"} 10\n  m{a=\"2\"} 20\n  m{a=\"3\"} 1\n",
                "missing series m{a=\"3\"} 1");
    expect_fail("eval instant at 10s vec\n  m{a=\"1\"} 11\n  m{a=\"2\"} 20\n",
                "m{a=\"1\"}: expected 11 but got 10");
    expect_fail("eval instant at 10s vec\n  {a=\"1\"} 10\n  m{a=\"2\"} 20\n",
                "missing series {a=\"1\"}"); /* label sets are exact: the name counts */
    expect_fail("eval_ordered instant at 10s rev\n  m{a=\"1\"} 10\n  m{a=\"2\"} 20\n",
                "expected at position 1 but was at 2");
    expect_fail("eval instant at 1m scal\n  61\n", "expected scalar 61 but got 60");
    expect_fail("eval instant at 1m scal\n", "expected an empty result but got scalar 60");
    expect_fail("eval instant at 1m vec\n  5\n", "expected scalar 5 but got a vector");
    expect_fail("eval range from 0 to 20s step 10s vec\n  m{a=\"1\"} 0 10 21\n  m{a=\"2\"} 0 "
                "20 40\n",
                "expected m{a=\"1\"} 0 10 21");
    expect_fail("eval range from 0 to 20s step 10s vec\n  m{a=\"1\"} 0 _ 20\n  m{a=\"2\"} 0 "
                "20 40\n",
                "got m{a=\"1\"} 0@0 10@10 20@20");
    expect_fail("eval range from 0 to 10s step 10s unsorted\n  m{a=\"1\"} 0 10\n"
                "  m{a=\"2\"} 0 20\n",
                "not sorted by labels");
    expect_fail("eval_fail instant at 10s vec\n", "expected an error but the query succeeded");
    expect_fail("eval_fail instant at 0 err\n  expected_fail_message other\n",
                "expected error \"other\" but got \"vector cannot contain");
    expect_fail("eval_fail instant at 0 err\n  expected_fail_regexp ^other\n",
                "expected an error matching /^other/");
    expect_fail("eval instant at 0 err\n", "error: vector cannot contain metrics");
    expect_fail("eval instant at 10s warn\n  m{a=\"1\"} 10\n  m{a=\"2\"} 20\n",
                "unexpected warning: PromQL warning: something");
    expect_fail("eval_warn instant at 10s vec\n  m{a=\"1\"} 10\n  m{a=\"2\"} 20\n",
                "expected warnings but got none");
    expect_fail("eval_info instant at 10s vec\n  m{a=\"1\"} 10\n  m{a=\"2\"} 20\n",
                "expected info annotations");
}

/* The instant result must agree with the middle step of [t-1m, t+1m]. */
Test(promqltest, range_mode_check)
{
    char *log = NULL;
    size_t failed = run("eval instant at 10s off\n  m{a=\"1\"} 11\n  m{a=\"2\"} 21\n", NULL, &log);
    cr_expect_eq(failed, 1, "%s", log ? log : "");
    cr_expect(log && strstr(log, "(range mode)"), "%s", log ? log : "");
    mp_free(log);
}

Test(promqltest, loads_into_storage)
{
    /* a later load older than what the storage holds: the storage's error stops the file */
    struct query_test_report rep;
    struct mp_err err;
    const char *src = "load 1h\n  m 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 "
                      "24 25 26 27 28 29 30\n\nload 1m\n  m 1\n";
    cr_expect_neq(run_rc("s.test", src, &rep, &err), 0);
    cr_expect(strncmp(err.msg, "s.test:4: load", 14) == 0, "%s", err.msg);
    query_test_report_fini(&rep);
}
