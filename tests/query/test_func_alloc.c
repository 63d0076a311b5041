/* SPDX-License-Identifier: Apache-2.0 */
/* tests/query/test_func_alloc.c: every function that allocates, with the n-th fallible
 * allocation failing for n = 1, 2, ... until the call succeeds: the status is 0 or MP_ENOMEM
 * and nothing leaks (the allocator's live bytes return to where they were). */
#include "common/alloc.h"
#include "test_func.h"

typedef void setup_fn(struct fx *f);

static const struct query_point pts[] = {{0, 1}, {10000, 5}, {20000, 2}, {30000, 8}};

static void s_rate(struct fx *f)
{
    fx_matrix(f, 0, 60000);
    fx_window(f, 0, fx_labels(f, "__name__", "foo", "a", "1", NULL), pts, 4);
    fx_window(f, 0, fx_labels(f, "__name__", "bar", "a", "2", NULL), pts, 4);
}

static void s_quantile(struct fx *f)
{
    fx_scalar(f, 0, 7);
    fx_matrix(f, 1, 60000);
    fx_window(f, 1, fx_labels(f, "__name__", "foo", "a", "1", NULL), pts, 4);
}

static void s_hist(struct fx *f)
{
    static const char *le[] = {"0.1", "1", "+Inf", "x"};
    static const double cnt[] = {5, 3, 10, 1};
    fx_scalar(f, 0, 0.5);
    fx_vector(f, 1);
    for (size_t i = 0; i < 4; i++) {
        fx_elem(f, 1, fx_labels(f, "__name__", "h_bucket", "j", "a", "le", le[i], NULL), cnt[i]);
        fx_elem(f, 1, fx_labels(f, "__name__", "h_bucket", "j", "b", "le", le[i], NULL), cnt[i]);
    }
}

static void s_replace(struct fx *f)
{
    fx_vector(f, 0);
    fx_string(f, 1, "dst");
    fx_string(f, 2, "${1}-new");
    fx_string(f, 3, "src");
    fx_string(f, 4, "(a+)b*");
    fx_elem(f, 0, fx_labels(f, "__name__", "m", "src", "aab", NULL), 1);
    fx_elem(f, 0, fx_labels(f, "__name__", "m", "src", "zzz", NULL), 2);
    fx_elem(f, 0, fx_labels(f, "__name__", "m", "src", "ab", NULL), 3);
}

static void s_join(struct fx *f)
{
    fx_vector(f, 0);
    fx_string(f, 1, "dst");
    fx_string(f, 2, "--");
    fx_string(f, 3, "a");
    fx_string(f, 4, "b");
    fx_elem(f, 0, fx_labels(f, "__name__", "m", "a", "x", "b", "y", NULL), 1);
    fx_elem(f, 0, fx_labels(f, "__name__", "m", "a", "p", NULL), 2);
}

static void s_math(struct fx *f)
{
    fx_vector(f, 0);
    fx_elem(f, 0, fx_labels(f, "__name__", "m", "a", "x", NULL), 1);
    fx_elem(f, 0, fx_labels(f, "__name__", "n", "a", "y", NULL), 2);
}

static void s_scalar(struct fx *f)
{
    fx_scalar(f, 0, 3);
}

/* One call of fn with the n-th allocation failing (0: none); its status. */
static int run_failing(const char *fn, setup_fn *setup, uint64_t n)
{
    struct fx f;
    fx_init(&f, 30000);
    setup(&f);
    mp_alloc_fail_at(n);
    int rc = fx_run(&f, fn);
    mp_alloc_fail_at(0);
    fx_fini(&f);
    return rc;
}

static void exhaust(const char *fn, setup_fn *setup)
{
    /* a first pass brings the per-thread scratch that stays allocated (interned strings, PCRE2
     * match data, which grows when a failed JIT compile leaves a pattern interpreted) to its
     * final size */
    for (uint64_t n = 1; n < 1000 && run_failing(fn, setup, n) != 0; n++)
        ;
    cr_assert_eq(run_failing(fn, setup, 0), 0, "%s", fn);
    size_t before = mp_alloc_used_bytes();
    bool ok = false;
    for (uint64_t n = 1; n < 1000 && !ok; n++) {
        int rc = run_failing(fn, setup, n);
        cr_assert(rc == 0 || rc == MP_ENOMEM, "%s n=%llu rc=%d", fn, (unsigned long long)n, rc);
        ok = rc == 0;
        cr_assert_eq(mp_alloc_used_bytes(), before, "%s: leak at n=%llu", fn, (unsigned long long)n);
    }
    cr_assert(ok, "%s never succeeded", fn);
}

Test(func_alloc, failures_are_enomem_without_leaks)
{
    exhaust("rate", s_rate);
    exhaust("increase", s_rate);
    exhaust("max_over_time", s_rate);
    exhaust("quantile_over_time", s_quantile);
    exhaust("mad_over_time", s_rate);
    exhaust("histogram_quantile", s_hist);
    exhaust("label_replace", s_replace);
    exhaust("label_join", s_join);
    exhaust("abs", s_math);
    exhaust("round", s_math);
    exhaust("day_of_week", s_math);
    exhaust("vector", s_scalar);
}
