/* SPDX-License-Identifier: Apache-2.0 */
/* tests/query/test_func_math.c: the instant-vector functions (promql.md 3.11-3.15): math with
 * name dropping, Go min/max semantics in clamp, round's tie rule, scalar/vector/time/pi, the date
 * functions at month, year and leap boundaries, the native-histogram-only functions on floats
 * and the table wiring of query_func_lookup. */
#include <stdio.h>

#include "test_func.h"

/* fn(v) on {__name__="m", a="b"}: value, and the name must be gone */
static double math1(const char *fn, double v)
{
    struct fx f;
    fx_init(&f, 1000);
    fx_vector(&f, 0);
    fx_elem(&f, 0, fx_labels(&f, "__name__", "m", "a", "b", NULL), v);
    double r = fx_one(&f, fn);
    fx_assert_labels(&f, 0, "{a=\"b\"}");
    cr_assert_eq(f.out.s[0].t_ms, 1000);
    fx_fini(&f);
    return r;
}

Test(func_math, elementwise)
{
    fx_assert_same(math1("abs", -2), 2);
    fx_assert_same(math1("abs", -0.0), 0);
    fx_assert_same(math1("ceil", 1.2), 2);
    fx_assert_same(math1("floor", -1.2), -2);
    fx_assert_same(math1("exp", 1), 2.718281828459045);
    fx_assert_same(math1("ln", 10), 2.302585092994046);
    fx_assert_same(math1("ln", 0.6023203277884887), -0.5069658692305488); /* Go, not glibc */
    fx_assert_same(math1("ln", INFINITY), INFINITY);
    fx_assert_same(math1("ln", NAN), NAN);
    fx_assert_same(math1("log2", 10), 3.321928094887362);
    fx_assert_same(math1("log2", 0.25), -2);
    fx_assert_same(math1("log2", 0), -INFINITY);
    fx_assert_same(math1("log2", -8), NAN);
    fx_assert_same(math1("log10", 2), 0.3010299956639812);
    fx_assert_same(math1("ln", -1), NAN);
    fx_assert_same(math1("ln", 0), -INFINITY);
    fx_assert_same(math1("log2", 8), 3);
    fx_assert_same(math1("log10", 1000), 3);
    fx_assert_same(math1("sqrt", 2), 1.4142135623730951);
    fx_assert_same(math1("sqrt", -1), NAN);
    fx_assert_same(math1("sin", 1), 0.8414709848078965);
    fx_assert_same(math1("cos", 0), 1);
    fx_assert_same(math1("tan", 0), 0);
    fx_assert_same(math1("asin", 2), NAN);
    fx_assert_same(math1("acos", 1), 0);
    fx_assert_same(math1("atan", INFINITY), M_PI / 2);
    fx_assert_same(math1("sinh", 0), 0);
    fx_assert_same(math1("cosh", 0), 1);
    fx_assert_same(math1("tanh", INFINITY), 1);
    fx_assert_same(math1("asinh", 0), 0);
    fx_assert_same(math1("acosh", 1), 0);
    fx_assert_same(math1("atanh", 0.5), 0.5493061443340548);
    fx_assert_same(math1("atanh", 1), INFINITY);
    fx_assert_same(math1("rad", 180), 3.141592653589793);
    fx_assert_same(math1("rad", 1), 0.017453292519943295);
    fx_assert_same(math1("deg", M_PI), 180);
    fx_assert_same(math1("sgn", -3), -1);
    fx_assert_same(math1("sgn", 3), 1);
    fx_assert_same(math1("sgn", -0.0), -0.0);
    fx_assert_same(math1("sgn", NAN), NAN);
}

Test(func_math, delayed_name_removal_marks_instead)
{
    struct fx f;
    fx_init(&f, 1000);
    f.c.delayed_name_removal = true;
    fx_vector(&f, 0);
    fx_elem(&f, 0, fx_labels(&f, "__name__", "m", NULL), 4);
    fx_assert_same(fx_one(&f, "sqrt"), 2);
    fx_assert_labels(&f, 0, "{__name__=\"m\"}");
    cr_assert(f.out.s[0].drop_name);
    fx_fini(&f);
}

static size_t clamp3(const char *fn, double v, double a, double b, double *out)
{
    struct fx f;
    fx_init(&f, 1000);
    fx_vector(&f, 0);
    fx_elem(&f, 0, fx_labels(&f, "__name__", "m", NULL), v);
    fx_scalar(&f, 1, a);
    if (strcmp(fn, "clamp") == 0)
        fx_scalar(&f, 2, b);
    cr_assert_eq(fx_run(&f, fn), 0);
    size_t n = f.out.n;
    if (n)
        *out = f.out.s[0].v;
    fx_fini(&f);
    return n;
}

Test(func_math, clamp_uses_go_min_max)
{
    double r = 0;
    cr_assert_eq(clamp3("clamp", 5, 0, 3, &r), 1);
    fx_assert_same(r, 3);
    cr_assert_eq(clamp3("clamp", -5, 0, 3, &r), 1);
    fx_assert_same(r, 0);
    cr_assert_eq(clamp3("clamp", 5, 3, 0, &r), 0); /* hi < lo: empty */
    cr_assert_eq(clamp3("clamp", 5, NAN, 3, &r), 1); /* NaN propagates, unlike fmax */
    fx_assert_same(r, NAN);
    cr_assert_eq(clamp3("clamp", NAN, 0, 3, &r), 1);
    fx_assert_same(r, NAN);
    cr_assert_eq(clamp3("clamp", -0.0, 0.0, 0.0, &r), 1); /* min(+0,-0) = -0, max(+0,-0) = +0 */
    fx_assert_same(r, 0.0);
    cr_assert_eq(clamp3("clamp", -0.0, -0.0, -0.0, &r), 1);
    fx_assert_same(r, -0.0);
    cr_assert_eq(clamp3("clamp_min", NAN, INFINITY, 0, &r), 1); /* Go: +Inf beats NaN */
    fx_assert_same(r, INFINITY);
    cr_assert_eq(clamp3("clamp_max", NAN, -INFINITY, 0, &r), 1);
    fx_assert_same(r, -INFINITY);
    cr_assert_eq(clamp3("clamp_max", 5, INFINITY, 0, &r), 1);
    fx_assert_same(r, 5);
    cr_assert_eq(clamp3("clamp_min", 5, 7, 0, &r), 1);
    fx_assert_same(r, 7);
}

static double round2(double v, double to, bool has_to)
{
    struct fx f;
    fx_init(&f, 1000);
    fx_vector(&f, 0);
    fx_elem(&f, 0, fx_labels(&f, "__name__", "m", NULL), v);
    if (has_to)
        fx_scalar(&f, 1, to);
    double r = fx_one(&f, "round");
    fx_assert_labels(&f, 0, "{}"); /* 2.55.1 drops the name */
    fx_fini(&f);
    return r;
}

Test(func_math, round_ties_up_and_keeps_float_artefacts)
{
    fx_assert_same(round2(-2.5, 0, false), -2);
    fx_assert_same(round2(2.5, 0, false), 3);
    fx_assert_same(round2(1.005, 0.01, true), 1);
    fx_assert_same(round2(0.15, 0.1, true), 0.2);
    fx_assert_same(round2(12345.6789, 0.001, true), 12345.679);
    fx_assert_same(round2(17, 5, true), 15);
    fx_assert_same(round2(NAN, 1, true), NAN);
}

Test(func_math, scalar_vector_time_pi)
{
    struct fx f;
    fx_init(&f, 1500);
    fx_vector(&f, 0);
    fx_elem(&f, 0, fx_labels(&f, "a", "1", NULL), 42);
    fx_assert_same(fx_one(&f, "scalar"), 42);
    fx_fini(&f);
    fx_init(&f, 1500);
    fx_vector(&f, 0);
    fx_elem(&f, 0, fx_labels(&f, "a", "1", NULL), 42);
    fx_elem(&f, 0, fx_labels(&f, "a", "2", NULL), 43);
    fx_assert_same(fx_one(&f, "scalar"), NAN);
    fx_fini(&f);
    fx_init(&f, 1500);
    fx_vector(&f, 0);
    fx_assert_same(fx_one(&f, "scalar"), NAN);
    fx_fini(&f);

    fx_init(&f, 1500);
    fx_scalar(&f, 0, 3);
    fx_assert_same(fx_one(&f, "vector"), 3);
    fx_assert_labels(&f, 0, "{}");
    fx_fini(&f);
    fx_init(&f, -1500);
    fx_assert_same(fx_one(&f, "time"), -1.5);
    fx_fini(&f);
    fx_init(&f, 0);
    fx_assert_same(fx_one(&f, "pi"), 3.141592653589793);
    fx_fini(&f);
}

struct date_case {
    double t;
    double minute, hour, dow, dom, doy, dim, month, year;
};

Test(func_date, calendar_boundaries)
{
    static const struct date_case cases[] = {
        {1709164800, 0, 0, 4, 29, 60, 29, 2, 2024},        /* 2024-02-29, leap day */
        {1704067199, 59, 23, 0, 31, 365, 31, 12, 2023},    /* 2023-12-31 23:59:59, Sunday */
        {1704067199.999, 59, 23, 0, 31, 365, 31, 12, 2023}, /* fractions truncated */
        {4105123200, 0, 0, 1, 1, 32, 28, 2, 2100},         /* 2100 is not a leap year */
        {951782400, 0, 0, 2, 29, 60, 29, 2, 2000},         /* 2000 is */
        {950617800, 30, 12, 2, 15, 46, 29, 2, 2000},
        {-1, 59, 23, 3, 31, 365, 31, 12, 1969},            /* before the epoch */
        {-1.5, 59, 23, 3, 31, 365, 31, 12, 1969},          /* toward zero: -1 */
        {-2208988800, 0, 0, 1, 1, 1, 31, 1, 1900},
        {253402300799, 59, 23, 5, 31, 365, 31, 12, 9999},
        {0, 0, 0, 4, 1, 1, 31, 1, 1970},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct date_case *c = &cases[i];
        fx_assert_same(math1("minute", c->t), c->minute);
        fx_assert_same(math1("hour", c->t), c->hour);
        fx_assert_same(math1("day_of_week", c->t), c->dow);
        fx_assert_same(math1("day_of_month", c->t), c->dom);
        fx_assert_same(math1("day_of_year", c->t), c->doy);
        fx_assert_same(math1("days_in_month", c->t), c->dim);
        fx_assert_same(math1("month", c->t), c->month);
        fx_assert_same(math1("year", c->t), c->year);
    }
}

Test(func_date, default_is_the_step_time)
{
    struct fx f;
    fx_init(&f, 1709164800123); /* 2024-02-29T00:00:00.123Z */
    fx_assert_same(fx_one(&f, "day_of_month"), 29);
    fx_assert_labels(&f, 0, "{}");
    fx_fini(&f);
    fx_init(&f, -1500); /* Go's ts/1000 truncates: -1 s */
    fx_assert_same(fx_one(&f, "year"), 1969);
    fx_fini(&f);
    fx_init(&f, -1500);
    fx_assert_same(fx_one(&f, "minute"), 59);
    fx_fini(&f);
    /* NaN and infinities must not be undefined behaviour (Go gives its min-int64 date) */
    (void)math1("year", NAN);
    (void)math1("year", INFINITY);
    (void)math1("day_of_week", -INFINITY);
}

Test(func_table, every_function_is_wired)
{
    static const char *core[] = {"absent", "absent_over_time", "info", "sort", "sort_by_label",
                                 "sort_by_label_desc", "sort_desc", "timestamp"};
    static const char *all[] = {
        "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
        "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
        "count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg",
        "delta", "deriv", "exp", "floor", "histogram_avg", "histogram_count", "histogram_fraction",
        "histogram_quantile", "histogram_stddev", "histogram_stdvar", "histogram_sum",
        "holt_winters", "hour", "idelta", "increase", "info", "irate", "label_join",
        "label_replace", "last_over_time", "ln", "log10", "log2", "mad_over_time",
        "max_over_time", "min_over_time", "minute", "month", "pi", "predict_linear",
        "present_over_time", "quantile_over_time", "rad", "rate", "resets", "round", "scalar",
        "sgn", "sin", "sinh", "sort", "sort_by_label", "sort_by_label_desc", "sort_desc", "sqrt",
        "stddev_over_time", "stdvar_over_time", "sum_over_time", "tan", "tanh", "time",
        "timestamp", "vector", "year"};
    cr_assert_eq(sizeof all / sizeof all[0], 77);
    for (size_t i = 0; i < 77; i++) {
        const struct query_function *fn = query_function_get(mp_str_c(all[i]));
        cr_assert_not_null(fn, "%s", all[i]);
        bool is_core = false;
        for (size_t k = 0; k < sizeof core / sizeof core[0]; k++)
            is_core = is_core || strcmp(core[k], all[i]) == 0;
        if (is_core)
            cr_assert_null(query_func_lookup(fn), "%s", all[i]);
        else
            cr_assert_not_null(query_func_lookup(fn), "%s", all[i]);
    }
    cr_assert_null(query_func_lookup(NULL));
}

Test(func_table, native_histogram_functions_ignore_floats)
{
    static const char *fns[] = {"histogram_avg", "histogram_count", "histogram_stddev",
                                "histogram_stdvar", "histogram_sum"};
    for (size_t i = 0; i < 5; i++) {
        struct fx f;
        fx_init(&f, 1000);
        fx_vector(&f, 0);
        fx_elem(&f, 0, fx_labels(&f, "__name__", "h", NULL), 1);
        cr_assert_eq(fx_run(&f, fns[i]), 0);
        cr_assert_eq(f.out.n, 0, "%s", fns[i]);
        fx_fini(&f);
    }
    struct fx f;
    fx_init(&f, 1000);
    fx_scalar(&f, 0, 0);
    fx_scalar(&f, 1, 1);
    fx_vector(&f, 2);
    fx_elem(&f, 2, fx_labels(&f, "__name__", "h", NULL), 1);
    cr_assert_eq(fx_run(&f, "histogram_fraction"), 0);
    cr_assert_eq(f.out.n, 0);
    fx_fini(&f);
}

Test(func_format, go_g_and_f)
{
    static const struct {
        double v;
        const char *g;
    } cases[] = {{2, "2"},          {-0.5, "-0.5"},      {1e6, "1e+06"},     {123456, "123456"},
                 {1234567, "1.234567e+06"}, {1e-5, "1e-05"}, {0.0001, "0.0001"}, {0.1, "0.1"},
                 {NAN, "NaN"},      {INFINITY, "+Inf"},  {-INFINITY, "-Inf"}, {-0.0, "-0"},
                 {1e21, "1e+21"},   {5e-324, "5e-324"},  {1.7976931348623157e308, "1.7976931348623157e+308"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mp_buf b;
        mp_buf_init(&b, 0);
        cr_assert_eq(query_fmt_go_g(&b, cases[i].v), 0);
        cr_assert_str_eq(b.data, cases[i].g);
        mp_buf_fini(&b);
    }
    struct mp_buf b;
    mp_buf_init(&b, 0);
    cr_assert_eq(query_fmt_go_f(&b, 0.5), 0);
    cr_assert_eq(query_fmt_go_f(&b, NAN), 0);
    cr_assert_str_eq(b.data, "0.500000NaN");
    mp_buf_fini(&b);
}

Test(func_format, quantile_helper)
{
    double v[] = {50, 10, 40, 30};
    fx_assert_same(query_quantile(0.25, v, 4), 25);
    fx_assert_same(query_quantile(0.5, v, 0), NAN);
    fx_assert_same(query_quantile(NAN, v, 4), NAN);
    fx_assert_same(query_quantile(-0.1, v, 4), -INFINITY);
    fx_assert_same(query_quantile(1.1, v, 4), INFINITY);
    double w[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10.5};
    fx_assert_same(query_quantile(0.9, w, 10), 9.149999999999999);
}

/* Bit-exact against Go: testdata/func_go_math.txt holds Prometheus's results (see its header). */
Test(func_math, matches_go_for_the_logarithms_and_exact_functions)
{
    FILE *fp = fopen(MP_TESTDATA_DIR "/func_go_math.txt", "r");
    cr_assert_not_null(fp);
    char line[256], fn[32];
    size_t n = 0;
    while (fgets(line, sizeof line, fp)) {
        if (line[0] == '#')
            continue;
        double in, want;
        cr_assert_eq(sscanf(line, "%31s %lf %lf", fn, &in, &want), 3, "%s", line);
        fx_assert_same(math1(fn, in), want);
        n++;
    }
    fclose(fp);
    cr_assert_geq(n, 300);
}
