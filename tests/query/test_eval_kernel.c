/* SPDX-License-Identifier: Apache-2.0 */
/* tests/query/test_eval_kernel.c: the per-window kernels the evaluator uses for range-vector
 * functions (query_func_kernel) give bit for bit what the functions themselves give, over
 * pseudo-random windows (fixed seed): counters with resets, gauges, NaN and infinities,
 * irregular timestamps, one-point and empty windows. */
#include "test_func.h"

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double rand_value(int kind, double prev)
{
    uint64_t r = next_rand() % 100;
    switch (kind) {
    case 0: /* counter with occasional resets */
        return r < 5 ? (double)(r) : prev + (double)(next_rand() % 1000) / 7.0;
    case 1: /* gauge */
        return (double)(int64_t)(next_rand() % 2000 - 1000) / 3.0;
    default: /* specials */
        return r < 10 ? NAN : r < 15 ? INFINITY : r < 20 ? -INFINITY : (double)r * 1e300;
    }
}

Test(eval_kernel, kernels_equal_the_functions)
{
    static const char *const names[] = {
        "rate",           "increase",          "delta",           "irate",
        "idelta",         "resets",            "changes",         "deriv",
        "sum_over_time",  "avg_over_time",     "count_over_time", "min_over_time",
        "max_over_time",  "last_over_time",    "present_over_time",
        "stddev_over_time", "stdvar_over_time",
    };
    struct query_point p[64];
    size_t compared = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const struct query_function *fn = query_function_get(mp_str_c(names[i]));
        cr_assert_not_null(fn);
        qfunc_fn *impl = query_func_lookup(fn);
        const struct query_kernel *k = query_func_kernel(impl);
        cr_assert_not_null(k, "%s has no kernel", names[i]);
        for (int round = 0; round < 300; round++) {
            int kind = round % 3;
            size_t n = (size_t)(next_rand() % 12);
            if (round % 17 == 0)
                n = (size_t)(next_rand() % 64);
            int64_t t = 100000 + (int64_t)(next_rand() % 5000);
            int64_t range = 10000 + (int64_t)(next_rand() % 120000);
            int64_t ts = t - range;
            double v = 0;
            for (size_t j = 0; j < n; j++) {
                ts += 1 + (int64_t)(next_rand() % (uint64_t)(2 * range / (int64_t)(n + 1) + 1));
                if (ts > t)
                    ts = t;
                v = rand_value(kind, v);
                p[j] = (struct query_point){ts, v};
            }
            struct fx f;
            fx_init(&f, t);
            fx_matrix(&f, 0, range);
            fx_window(&f, 0, fx_labels(&f, "__name__", "x_total", NULL), p, n);
            cr_assert_eq(fx_run(&f, names[i]), 0, "%s: %s", names[i], f.err.msg);
            double kv = 0;
            bool have = query_kernel_value(k, p, n, t, range, &kv);
            cr_assert_eq(have, f.out.n == 1, "%s round %d: kernel %d, function %zu outputs",
                         names[i], round, have, f.out.n);
            if (have) {
                fx_assert_same(kv, f.out.s[0].v);
                compared++;
            }
            fx_fini(&f);
        }
    }
    cr_assert_gt(compared, 3000);
    /* functions with parameters have none */
    const char *const others[] = {"quantile_over_time", "predict_linear", "holt_winters",
                                  "mad_over_time"};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        const struct query_function *fn = query_function_get(mp_str_c(others[i]));
        if (fn && query_func_lookup(fn))
            cr_assert_null(query_func_kernel(query_func_lookup(fn)), "%s", others[i]);
    }
}
