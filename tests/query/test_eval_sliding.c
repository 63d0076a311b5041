/* SPDX-License-Identifier: Apache-2.0 */
/* tests/query/test_eval_sliding.c: max_over_time and min_over_time slide one window per series
 * across the steps of a range query (eval.c ext_*); every step of the range query must equal,
 * bit for bit, the instant query at that step (one fresh window) and a scan of the samples
 * (Prometheus's rule: the first number replaces a NaN, a later equal value does not replace,
 * so -0 and 0 keep the earlier). Values: few distinct ones (ties), NaN, -0, infinities; with
 * offset, @, subqueries and a nested subquery. */
#include "test_eval.h"

#include "common/alloc.h"

static uint64_t rng = 0x2545f4914f6cdd1du;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

#define NPTS 300

static double vals[NPTS];

static double pick(void)
{
    uint64_t r = next_rand() % 20; /* mostly zeros of both signs: ties that differ in bits */
    if (r < 2)
        return NAN;
    if (r < 16)
        return r < 9 ? -0.0 : 0.0;
    static const double rare[] = {-1, 1, INFINITY, -INFINITY};
    return rare[r - 16];
}

static bool bits_equal(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b));
}

/* The scan over the samples of x in [t - range, t]: Prometheus's max/min_over_time. */
static bool scan(int64_t t, int64_t range, int dir, double *out)
{
    bool any = false;
    double m = 0;
    for (int i = 0; i < NPTS; i++) {
        int64_t ts = (int64_t)i * 1000;
        if (ts < t - range || ts > t) /* closed window, as 2.55 */
            continue;
        double v = vals[i];
        if (!any || (dir > 0 ? v > m : v < m) || isnan(m))
            m = v;
        any = true;
    }
    *out = m;
    return any;
}

Test(eval_sliding, max_min_over_time_slide_bit_for_bit)
{
    struct ev_fx f;
    ev_open(&f);
    for (int i = 0; i < NPTS; i++) {
        vals[i] = pick();
        ev_add(&f, "x{}", (int64_t)i * 1000, vals[i]);
    }
    static const struct {
        const char *q;
        int64_t range, offset; /* range 0: no scan reference (@ or subquery) */
    } qs[] = {
        {"max_over_time(x[3s])", 3000, 0},
        {"min_over_time(x[4s])", 4000, 0},
        {"max_over_time(x[17s])", 17000, 0},
        {"min_over_time(x[17s])", 17000, 0},
        {"max_over_time(x[1m])", 60000, 0},
        {"min_over_time(x[30s] offset 5s)", 30000, 5000},
        {"max_over_time(x[20s] @ 200)", 0, 0},
        {"max_over_time(x[1m:2s])", 0, 0},
        {"min_over_time(x[50s:3s] offset 7s)", 0, 0},
        {"max_over_time(min_over_time(x[10s])[40s:1s])", 0, 0},
        {"min_over_time(max_over_time(x[9s:2s])[33s:1s] @ 250)", 0, 0},
    };
    const int64_t start = 0, end = 320000, step = 1000;
    size_t checked = 0;
    for (size_t q = 0; q < sizeof qs / sizeof qs[0]; q++) {
        cr_assert_eq(ev_range(&f, qs[q].q, start, end, step), 0, "%s: %s", qs[q].q, f.err.msg);
        cr_assert_leq(f.r.nseries, 1, "%s", qs[q].q);
        size_t n = f.r.nseries ? f.r.series[0].npoints : 0;
        struct query_point *rp = n ? mp_xmalloc(n * sizeof *rp) : NULL;
        if (n)
            memcpy(rp, f.r.series[0].points, n * sizeof *rp);
        size_t k = 0;
        for (int64_t t = start; t <= end; t += step) {
            cr_assert_eq(ev_instant(&f, qs[q].q, t), 0, "%s @ %lld: %s", qs[q].q, (long long)t,
                         f.err.msg);
            bool have = f.r.nseries == 1;
            bool in_range = k < n && rp[k].t_ms == t;
            cr_assert_eq(have, in_range, "%s at %lld: instant %d range %d", qs[q].q, (long long)t,
                         have, in_range);
            if (!have)
                continue;
            double iv = f.r.series[0].points[0].v;
            cr_assert(bits_equal(iv, rp[k].v), "%s at %lld: instant %g range %g", qs[q].q,
                      (long long)t, iv, rp[k].v);
            k++;
            checked++;
            double sv;
            int dir = strncmp(qs[q].q, "max", 3) == 0 ? 1 : -1;
            if (qs[q].range && scan(t - qs[q].offset, qs[q].range, dir, &sv))
                cr_assert(bits_equal(sv, iv), "%s at %lld: scan %g engine %g", qs[q].q,
                          (long long)t, sv, iv);
        }
        cr_assert_eq(k, n, "%s: range points at no instant step", qs[q].q);
        mp_free(rp);
    }
    cr_assert_gt(checked, 2000);
    ev_close(&f);
}
