/* SPDX-License-Identifier: Apache-2.0 */
/* tests/query/test_func_label.c: label_replace and label_join (promql.md 3.9): Go template
 * expansion, non-matching regexes, deletion by empty results, __name__ as destination,
 * Prometheus's error texts and the duplicate-labelset check. */
#include "test_func.h"

static void replace_setup(struct fx *f, const char *dst, const char *repl, const char *src,
                          const char *re)
{
    fx_init(f, 1000);
    fx_vector(f, 0);
    fx_string(f, 1, dst);
    fx_string(f, 2, repl);
    fx_string(f, 3, src);
    fx_string(f, 4, re);
}

/* label_replace on {__name__="up", instance="h:9090", job="api"} -> printed labels */
static void replace_one(const char *dst, const char *repl, const char *src, const char *re,
                        const char *want)
{
    struct fx f;
    replace_setup(&f, dst, repl, src, re);
    fx_elem(&f, 0, fx_labels(&f, "__name__", "up", "instance", "h:9090", "job", "api", NULL), 7);
    fx_assert_same(fx_one(&f, "label_replace"), 7);
    fx_assert_labels(&f, 0, want);
    fx_fini(&f);
}

Test(func_label, replace_expands_go_templates)
{
    replace_one("host", "$1", "instance", "(.*):.*",
                "{__name__=\"up\", host=\"h\", instance=\"h:9090\", job=\"api\"}");
    replace_one("host", "${1}x", "instance", "(.*):.*",
                "{__name__=\"up\", host=\"hx\", instance=\"h:9090\", job=\"api\"}");
    /* $1x names the group "1x": empty, so nothing is set */
    replace_one("host", "$1x", "instance", "(.*):.*",
                "{__name__=\"up\", instance=\"h:9090\", job=\"api\"}");
    replace_one("host", "${h}-$p$$", "instance", "(?P<h>[a-z]+):(?P<p>\\d+)",
                "{__name__=\"up\", host=\"h-9090$\", instance=\"h:9090\", job=\"api\"}");
    /* the regex is anchored: a partial match is no match */
    replace_one("host", "$1", "instance", "h", "{__name__=\"up\", instance=\"h:9090\", job=\"api\"}");
    /* a missing source label is the empty string */
    replace_one("host", "none", "nope", "", "{__name__=\"up\", host=\"none\", instance=\"h:9090\", job=\"api\"}");
    /* an empty result deletes the destination */
    replace_one("job", "", "job", ".*", "{__name__=\"up\", instance=\"h:9090\"}");
    replace_one("job", "$1", "instance", "x(.*)", "{__name__=\"up\", instance=\"h:9090\", job=\"api\"}");
}

Test(func_label, replace_keeps_or_renames_the_metric)
{
    struct fx f;
    replace_setup(&f, "__name__", "new_$1", "job", "(.*)");
    struct mp_labels *in = fx_labels(&f, "__name__", "up", "job", "api", NULL);
    cr_assert_eq(query_vec_push(&f.vecs[0], in, 1, 1000, true), 0); /* marked for removal */
    fx_one(&f, "label_replace");
    fx_assert_labels(&f, 0, "{__name__=\"new_api\", job=\"api\"}");
    cr_assert(!f.out.s[0].drop_name);
    fx_fini(&f);

    replace_setup(&f, "x", "y", "job", "(.*)");
    in = fx_labels(&f, "__name__", "up", "job", "api", NULL);
    cr_assert_eq(query_vec_push(&f.vecs[0], in, 1, 1000, true), 0);
    fx_one(&f, "label_replace");
    cr_assert(f.out.s[0].drop_name);
    fx_fini(&f);
}

static void replace_error(const char *dst, const char *re, const char *msg)
{
    struct fx f;
    replace_setup(&f, dst, "$1", "job", re);
    cr_assert_eq(fx_run(&f, "label_replace"), MP_EEXEC); /* even with no input */
    cr_assert_str_eq(f.err.msg, msg);
    fx_fini(&f);
}

Test(func_label, replace_errors)
{
    replace_error("dst", "(", "invalid regular expression in label_replace(): (");
    replace_error("dst", "a(?=b)", "invalid regular expression in label_replace(): a(?=b)");
    replace_error("1abc", ".*", "invalid destination label name in label_replace(): 1abc");
    replace_error("a-b", ".*", "invalid destination label name in label_replace(): a-b");
    replace_error("", ".*", "invalid destination label name in label_replace(): ");

    struct fx f;
    replace_setup(&f, "job", "", "job", ".*");
    fx_elem(&f, 0, fx_labels(&f, "job", "a", "x", "1", NULL), 1);
    fx_elem(&f, 0, fx_labels(&f, "job", "b", "x", "1", NULL), 2);
    cr_assert_eq(fx_run(&f, "label_replace"), MP_EEXEC);
    cr_assert_str_eq(f.err.msg, "vector cannot contain metrics with the same labelset");
    fx_fini(&f);
}

static void join_setup(struct fx *f, const char *dst, const char *sep, const char **src, size_t n)
{
    fx_init(f, 1000);
    fx_vector(f, 0);
    fx_string(f, 1, dst);
    fx_string(f, 2, sep);
    for (size_t i = 0; i < n; i++)
        fx_string(f, 3 + i, src[i]);
}

static void join_one(const char *dst, const char *sep, const char **src, size_t n,
                     const char *want)
{
    struct fx f;
    join_setup(&f, dst, sep, src, n);
    fx_elem(&f, 0, fx_labels(&f, "__name__", "up", "a", "1", "b", "2", "c", "old", NULL), 3);
    fx_assert_same(fx_one(&f, "label_join"), 3);
    fx_assert_labels(&f, 0, want);
    fx_fini(&f);
}

Test(func_label, join)
{
    join_one("c", "-", (const char *[]){"a", "b"}, 2,
             "{__name__=\"up\", a=\"1\", b=\"2\", c=\"1-2\"}");
    join_one("d", "", (const char *[]){"b", "a", "b"}, 3,
             "{__name__=\"up\", a=\"1\", b=\"2\", c=\"old\", d=\"212\"}");
    join_one("c", ",", (const char *[]){"a", "zz"}, 2, "{__name__=\"up\", a=\"1\", b=\"2\", c=\"1,\"}");
    /* all sources missing, or none given: the destination goes */
    join_one("c", ",", (const char *[]){"zz"}, 1, "{__name__=\"up\", a=\"1\", b=\"2\"}");
    join_one("c", ",", NULL, 0, "{__name__=\"up\", a=\"1\", b=\"2\"}");
    join_one("__name__", "_", (const char *[]){"__name__", "a"}, 2,
             "{__name__=\"up_1\", a=\"1\", b=\"2\", c=\"old\"}");
}

Test(func_label, join_errors)
{
    struct fx f;
    join_setup(&f, "c", "-", (const char *[]){"a", "b-c", "1x"}, 3);
    cr_assert_eq(fx_run(&f, "label_join"), MP_EEXEC);
    cr_assert_str_eq(f.err.msg, "invalid source label name in label_join(): b-c");
    fx_fini(&f);
    join_setup(&f, "9", "-", (const char *[]){"a"}, 1);
    cr_assert_eq(fx_run(&f, "label_join"), MP_EEXEC);
    cr_assert_str_eq(f.err.msg, "invalid destination label name in label_join(): 9");
    fx_fini(&f);
}
