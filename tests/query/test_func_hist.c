/* SPDX-License-Identifier: Apache-2.0 */
/* tests/query/test_func_hist.c: histogram_quantile over classic buckets (promql.md 3.5):
 * interpolation, the +Inf bucket, monotonicity and small-delta fixes with their annotations,
 * duplicate and unparsable `le`, quantile bounds, grouping and output labels. */
#include <stdio.h>

#include "test_func.h"

struct bk {
    const char *le;
    double count;
};

/* histogram_quantile(q, x_bucket{job="a", le=...}) at one step */
static void hq_setup(struct fx *f, double q, const struct bk *b, size_t n)
{
    fx_init(f, 1000);
    fx_scalar(f, 0, q);
    fx_vector(f, 1);
    for (size_t i = 0; i < n; i++)
        fx_elem(f, 1, fx_labels(f, "__name__", "x_bucket", "job", "a", "le", b[i].le, NULL),
                b[i].count);
}

static double hq(double q, const struct bk *b, size_t n)
{
    struct fx f;
    hq_setup(&f, q, b, n);
    double v = fx_one(&f, "histogram_quantile");
    fx_assert_labels(&f, 0, "{job=\"a\"}");
    cr_assert_eq(f.an.ninfos, 0);
    cr_assert_eq(f.an.nwarnings, (isnan(q) || q < 0 || q > 1) ? 1 : 0);
    fx_fini(&f);
    return v;
}

static const struct bk spec[] = {{"0.1", 10}, {"0.5", 30}, {"1", 40}, {"+Inf", 50}};

Test(func_hist, spec_example)
{
    fx_assert_same(hq(0.5, spec, 4), 0.4);
    fx_assert_same(hq(0.95, spec, 4), 1);
    fx_assert_same(hq(0.05, spec, 4), 0.025);
    /* input order does not matter */
    static const struct bk shuffled[] = {{"+Inf", 50}, {"1", 40}, {"0.1", 10}, {"0.5", 30}};
    fx_assert_same(hq(0.5, shuffled, 4), 0.4);
}

Test(func_hist, edges)
{
    fx_assert_same(hq(1, spec, 4), 1);  /* rank 50 falls into +Inf: upper bound below it */
    fx_assert_same(hq(0, spec, 4), 0);  /* rank 0 in the first bucket: 0 + 0.1 * 0 */
    static const struct bk empty_first[] = {{"0.1", 0}, {"+Inf", 10}};
    fx_assert_same(hq(0, empty_first, 2), NAN); /* 0 / 0 */
    static const struct bk no_inf[] = {{"0.1", 10}, {"0.5", 30}};
    fx_assert_same(hq(0.5, no_inf, 2), NAN);
    static const struct bk only_inf[] = {{"+Inf", 10}};
    fx_assert_same(hq(0.5, only_inf, 1), NAN);
    static const struct bk zero[] = {{"1", 0}, {"+Inf", 0}};
    fx_assert_same(hq(0.5, zero, 2), NAN);
    static const struct bk negative[] = {{"-1", 5}, {"0", 8}, {"+Inf", 10}};
    fx_assert_same(hq(0.2, negative, 3), -1); /* first bucket with bound <= 0 */
    fx_assert_same(hq(0.6, negative, 3), -1 + 1 * (1.0 / 3));
}

Test(func_hist, quantile_out_of_range)
{
    fx_assert_same(hq(1.5, spec, 4), INFINITY);
    fx_assert_same(hq(-1, spec, 4), -INFINITY);
    fx_assert_same(hq(NAN, spec, 4), NAN);
    struct fx f;
    hq_setup(&f, 1.5, NULL, 0); /* warned even without input */
    cr_assert_eq(fx_run(&f, "histogram_quantile"), 0);
    cr_assert_eq(f.out.n, 0);
    cr_assert(fx_has_warning(&f, "PromQL warning: quantile value should be between 0 and 1, got 1.5"));
    fx_fini(&f);
}

Test(func_hist, monotonicity_fix_and_info)
{
    static const struct bk b[] = {{"0.1", 10}, {"0.5", 5}, {"+Inf", 20}};
    struct fx f;
    hq_setup(&f, 0.5, b, 3);
    fx_assert_same(fx_one(&f, "histogram_quantile"), 0.1); /* 0.5 bucket raised to 10 */
    cr_assert_eq(f.an.ninfos, 1);
    cr_assert(fx_has_info(&f, "PromQL info: input to histogram_quantile needed to be fixed for "
                              "monotonicity (see https://prometheus.io/docs/prometheus/latest/"
                              "querying/functions/#histogram_quantile) for metric name \"\""),
              "%s", f.an.infos[0]);
    fx_fini(&f);

    /* a relative difference below 1e-12 is fixed silently, in either direction */
    static const struct bk tiny[] = {{"1", 10}, {"2", 9.999999999999999}, {"+Inf", 20}};
    hq_setup(&f, 0.5, tiny, 3);
    fx_assert_same(fx_one(&f, "histogram_quantile"), 1);
    cr_assert_eq(f.an.ninfos, 0);
    fx_fini(&f);

    /* the info only comes with a result that used the buckets */
    static const struct bk zero[] = {{"1", 5}, {"2", 0}, {"+Inf", 0}};
    hq_setup(&f, 0.5, zero, 3);
    fx_assert_same(fx_one(&f, "histogram_quantile"), 0.5); /* counts 5,5,5: rank 2.5 */
    cr_assert_eq(f.an.ninfos, 1);
    fx_fini(&f);
}

Test(func_hist, duplicate_and_spelled_differently_le)
{
    /* 0.5 and 5e-1 are one bucket: counts add up to 30 */
    static const struct bk b[] = {{"0.1", 10}, {"0.5", 12}, {"5e-1", 18}, {"Inf", 50}};
    struct fx f;
    hq_setup(&f, 0.5, b, 4);
    /* buckets 0.1:10 0.5:30 +Inf:50 -> rank 25 in (0.1, 0.5]: 0.1 + 0.4 * 15/20 */
    fx_assert_same(fx_one(&f, "histogram_quantile"), 0.4);
    fx_fini(&f);
    /* hex floats, underscores between digits, any-case infinity */
    static const struct bk go[] = {{"0x1p-3", 10}, {"0_0.5", 30}, {"1", 40}, {"infinity", 50}};
    fx_assert_same(hq(0.5, go, 4), 0.125 + (0.5 - 0.125) * (15.0 / 20));
}

Test(func_hist, bad_le_is_ignored_with_a_warning)
{
    static const char *bad[] = {"abc", "", " 1", "1 ", "1e400", "_1", "1__0", "0x1", "+nan", "1e"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct fx f;
        fx_init(&f, 1000);
        fx_scalar(&f, 0, 0.5);
        fx_vector(&f, 1);
        for (size_t k = 0; k < 4; k++)
            fx_elem(&f, 1, fx_labels(&f, "__name__", "x_bucket", "le", spec[k].le, NULL),
                    spec[k].count);
        if (*bad[i])
            fx_elem(&f, 1, fx_labels(&f, "__name__", "x_bucket", "le", bad[i], NULL), 1000);
        else
            fx_elem(&f, 1, fx_labels(&f, "__name__", "x_bucket", NULL), 1000);
        fx_assert_same(fx_one(&f, "histogram_quantile"), 0.4);
        char want[256];
        snprintf(want, sizeof want,
                 "PromQL warning: bucket label \"le\" is missing or has a malformed value of "
                 "\"%s\" for metric name \"x_bucket\"",
                 bad[i]);
        cr_assert_eq(f.an.nwarnings, 1, "%s", bad[i]);
        cr_assert(fx_has_warning(&f, want), "%s: %s", bad[i], f.an.warnings[0]);
        fx_fini(&f);
    }
}

/* histogram_quantile(0.5, ...) over the spec buckets of two series, interleaved: series
 * (name, label k = v), the second with counts times mul */
static void two_groups(struct fx *f, const char *n1, const char *k1, const char *v1, const char *n2,
                       const char *k2, const char *v2, double mul)
{
    fx_init(f, 1000);
    fx_scalar(f, 0, 0.5);
    fx_vector(f, 1);
    for (size_t k = 0; k < 4; k++) {
        fx_elem(f, 1, fx_labels(f, "__name__", n1, k1, v1, "le", spec[k].le, NULL), spec[k].count);
        fx_elem(f, 1, fx_labels(f, "__name__", n2, k2, v2, "le", spec[k].le, NULL),
                spec[k].count * mul);
    }
    cr_assert_eq(fx_run(f, "histogram_quantile"), 0);
    cr_assert_eq(f->out.n, 2);
}

Test(func_hist, groups_by_all_labels_but_le)
{
    struct fx f;
    two_groups(&f, "x_bucket", "job", "b", "x_bucket", "job", "a", 2);
    fx_assert_labels(&f, 0, "{job=\"b\"}"); /* first seen first */
    fx_assert_labels(&f, 1, "{job=\"a\"}");
    fx_assert_same(f.out.s[0].v, 0.4);
    fx_assert_same(f.out.s[1].v, 0.4);
    cr_assert(!f.out.s[0].drop_name);
    fx_fini(&f);
}

Test(func_hist, the_metric_name_is_part_of_the_group)
{
    struct fx f;
    /* same labels once the names go: the evaluator reports that */
    two_groups(&f, "x_bucket", "z", "1", "y_bucket", "z", "1", 1);
    fx_assert_labels(&f, 0, "{z=\"1\"}");
    fx_assert_labels(&f, 1, "{z=\"1\"}");
    fx_fini(&f);
}
