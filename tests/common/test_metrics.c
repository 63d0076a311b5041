/* SPDX-License-Identifier: Apache-2.0 */
/* tests/common/test_metrics.c: exact text format 0.0.4 of the self-metrics registry
 * (client_golang expfmt output is the reference), value formatting, registration rules,
 * concurrent updates and the process collector. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/metrics.h"

static struct mp_metrics_registry *reg;

static void setup(void)
{
    cr_assert_eq(mp_metrics_registry_create(&reg), 0);
}

static void teardown(void)
{
    mp_metrics_registry_destroy(reg);
    reg = NULL;
}

/* Renders reg into a static buffer (valid until the next call). */
static char *render(void)
{
    static char text[65536];
    struct mp_buf b;
    mp_buf_init(&b, 0);
    cr_assert_eq(mp_metrics_render(reg, &b), 0);
    snprintf(text, sizeof text, "%s", b.data ? b.data : "");
    mp_buf_fini(&b);
    return text;
}

TestSuite(metrics, .init = setup, .fini = teardown);

Test(metrics, counters_and_gauges_sorted_by_name)
{
    struct mp_counter *c;
    struct mp_gauge *g;
    cr_assert_eq(mp_metrics_counter_register(reg, "zz_total", "Last one.", &c, NULL), 0);
    cr_assert_eq(mp_metrics_gauge_register(reg, "aa_gauge", "Help with \\ and\nnewline \"q\".",
                                           &g, NULL), 0);
    mp_counter_inc(c);
    mp_counter_add(c, 2);
    mp_counter_add(c, 0.5);
    mp_counter_add(c, -7); /* ignored */
    mp_gauge_set(g, 10);
    mp_gauge_dec(g);
    mp_gauge_add(g, -0.25);
    cr_assert_str_eq(render(), "# HELP aa_gauge Help with \\\\ and\\nnewline \"q\".\n"
                               "# TYPE aa_gauge gauge\n"
                               "aa_gauge 8.75\n"
                               "# HELP zz_total Last one.\n"
                               "# TYPE zz_total counter\n"
                               "zz_total 3.5\n");
    cr_assert_eq(mp_counter_get(c), 3.5);
}

Test(metrics, labelled_children_sorted_label_names_sorted)
{
    static const char *const names[] = {"handler", "code"};
    struct mp_metrics_vec *v;
    cr_assert_eq(mp_metrics_vec_register(reg, MP_METRIC_COUNTER, "prometheus_http_requests_total",
                                         "Counter of HTTP requests.", names, 2, NULL, 0, &v,
                                         NULL), 0);
    /* an unused vector is not rendered */
    cr_assert_str_eq(render(), "");
    mp_counter_inc(mp_metrics_vec_counter(v, (const char *[]){"/metrics", "200"}));
    mp_counter_inc(mp_metrics_vec_counter(v, (const char *[]){"/metrics", "200"}));
    mp_counter_inc(mp_metrics_vec_counter(v, (const char *[]){"/-/ready", "503"}));
    mp_counter_add(mp_metrics_vec_counter(v, (const char *[]){"/a\"b\\c\nd", "200"}), 123456789);
    cr_assert_eq(mp_metrics_vec_counter(v, (const char *[]){"/metrics", "200"}),
                 mp_metrics_vec_counter(v, (const char *[]){"/metrics", "200"}));
    cr_assert_null(mp_metrics_vec_gauge(v, (const char *[]){"/metrics", "200"}));
    cr_assert_str_eq(render(),
                     "# HELP prometheus_http_requests_total Counter of HTTP requests.\n"
                     "# TYPE prometheus_http_requests_total counter\n"
                     "prometheus_http_requests_total{code=\"200\",handler=\"/a\\\"b\\\\c\\nd\"} "
                     "1.23456789e+08\n"
                     "prometheus_http_requests_total{code=\"200\",handler=\"/metrics\"} 2\n"
                     "prometheus_http_requests_total{code=\"503\",handler=\"/-/ready\"} 1\n");
}

Test(metrics, histogram_text)
{
    static const double b[] = {0.1, 0.5, 1};
    struct mp_histogram *h;
    cr_assert_eq(mp_metrics_histogram_register(reg, "req_seconds", "Latency.", b, 3, &h, NULL),
                 0);
    mp_histogram_observe(h, 0.05);
    mp_histogram_observe(h, 0.1); /* le is inclusive */
    mp_histogram_observe(h, 0.7);
    mp_histogram_observe(h, 3);
    cr_assert_str_eq(render(), "# HELP req_seconds Latency.\n"
                               "# TYPE req_seconds histogram\n"
                               "req_seconds_bucket{le=\"0.1\"} 2\n"
                               "req_seconds_bucket{le=\"0.5\"} 2\n"
                               "req_seconds_bucket{le=\"1\"} 3\n"
                               "req_seconds_bucket{le=\"+Inf\"} 4\n"
                               "req_seconds_sum 3.85\n"
                               "req_seconds_count 4\n");
    cr_assert_eq(mp_histogram_count(h), 4);
}

Test(metrics, histogram_vec_puts_le_last)
{
    static const double b[] = {0.25};
    static const char *const names[] = {"handler"};
    struct mp_metrics_vec *v;
    cr_assert_eq(mp_metrics_vec_register(reg, MP_METRIC_HISTOGRAM, "d_seconds", "D.", names, 1, b,
                                         1, &v, NULL), 0);
    mp_histogram_observe(mp_metrics_vec_histogram(v, (const char *[]){"/x"}), 1);
    cr_assert_str_eq(render(), "# HELP d_seconds D.\n"
                               "# TYPE d_seconds histogram\n"
                               "d_seconds_bucket{handler=\"/x\",le=\"0.25\"} 0\n"
                               "d_seconds_bucket{handler=\"/x\",le=\"+Inf\"} 1\n"
                               "d_seconds_sum{handler=\"/x\"} 1\n"
                               "d_seconds_count{handler=\"/x\"} 1\n");
}

static double forty_two(void *ctx)
{
    return *(double *)ctx;
}

Test(metrics, func_values_at_scrape_time)
{
    static double val = 42;
    cr_assert_eq(mp_metrics_func_register(reg, MP_METRIC_GAUGE, "head_series", "Series.",
                                          forty_two, &val, NULL), 0);
    cr_assert_str_eq(render(), "# HELP head_series Series.\n# TYPE head_series gauge\n"
                               "head_series 42\n");
    val = -INFINITY;
    cr_assert_str_eq(render(), "# HELP head_series Series.\n# TYPE head_series gauge\n"
                               "head_series -Inf\n");
    val = NAN;
    cr_assert(strstr(render(), "head_series NaN\n"));
}

Test(metrics, registration_rules)
{
    struct mp_counter *c1, *c2;
    struct mp_gauge *g;
    struct mp_err err = {0};
    cr_assert_eq(mp_metrics_counter_register(reg, "x_total", "X.", &c1, NULL), 0);
    cr_assert_eq(mp_metrics_counter_register(reg, "x_total", "X.", &c2, NULL), 0);
    cr_assert_eq(c1, c2, "identical re-registration returns the same counter");
    cr_assert_eq(mp_metrics_gauge_register(reg, "x_total", "X.", &g, &err), MP_EEXISTS);
    cr_assert(strstr(err.msg, "x_total") != NULL);
    mp_err_clear(&err);
    cr_assert_eq(mp_metrics_counter_register(reg, "1bad", "", &c1, &err), MP_EINVAL);
    cr_assert_eq(mp_metrics_counter_register(reg, "bad-name", "", &c1, NULL), MP_EINVAL);
    cr_assert_eq(mp_metrics_counter_register(reg, "ok:name_1", "", &c1, NULL), 0);
    struct mp_metrics_vec *v;
    cr_assert_eq(mp_metrics_vec_register(reg, MP_METRIC_COUNTER, "v1", "", (const char *[]){"__x"},
                                         1, NULL, 0, &v, NULL), MP_EINVAL);
    cr_assert_eq(mp_metrics_vec_register(reg, MP_METRIC_COUNTER, "v2", "",
                                         (const char *[]){"a", "a"}, 2, NULL, 0, &v, NULL),
                 MP_EINVAL);
    static const double defb[] = MP_METRICS_DEFAULT_BUCKETS;
    cr_assert_eq(mp_metrics_vec_register(reg, MP_METRIC_HISTOGRAM, "v3", "", (const char *[]){"le"},
                                         1, defb, 11, &v, NULL),
                 MP_EINVAL);
    struct mp_histogram *h;
    cr_assert_eq(mp_metrics_histogram_register(reg, "h", "", (const double[]){1, 1}, 2, &h, NULL),
                 MP_EINVAL);
    cr_assert_eq(mp_metrics_histogram_register(reg, "h", "", (const double[]){1, INFINITY}, 2, &h,
                                               NULL),
                 MP_EINVAL);
}

struct fcase {
    double v;
    const char *want;
};

Test(metrics, value_format_table)
{
    static const struct fcase cases[] = {
        {0, "0"},           {-0.0, "0"},         {1, "1"},
        {-1, "-1"},         {2, "2"},            {0.5, "0.5"},
        {123456, "123456"}, {1234567, "1.234567e+06"}, {1e6, "1e+06"},
        {123456789, "1.23456789e+08"}, {1.5e-5, "1.5e-05"}, {0.0001, "0.0001"},
        {0.005, "0.005"},   {2.5, "2.5"},        {1e21, "1e+21"},
        {18446744073709551615.0, "1.8446744073709552e+19"},
        {1700000000.123, "1.700000000123e+09"},
        {0.1 + 0.2, "0.30000000000000004"},
        {NAN, "NaN"},       {INFINITY, "+Inf"},  {-INFINITY, "-Inf"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[40];
        mp_metrics_format_value(cases[i].v, buf, sizeof buf);
        cr_expect_str_eq(buf, cases[i].want, "case %zu", i);
    }
}

struct worker {
    struct mp_counter *c;
    struct mp_gauge *g;
    struct mp_histogram *h;
    struct mp_metrics_vec *v;
};

static void *hammer(void *arg)
{
    struct worker *w = arg;
    char code[8];
    for (int i = 0; i < 100000; i++) {
        mp_counter_inc(w->c);
        mp_gauge_add(w->g, 1);
        mp_histogram_observe(w->h, (i % 4) * 0.25);
        snprintf(code, sizeof code, "%d", 200 + i % 3);
        mp_counter_inc(mp_metrics_vec_counter(w->v, (const char *[]){code}));
    }
    return NULL;
}

Test(metrics, concurrent_updates_from_four_threads)
{
    struct worker w;
    cr_assert_eq(mp_metrics_counter_register(reg, "c_total", "", &w.c, NULL), 0);
    cr_assert_eq(mp_metrics_gauge_register(reg, "g", "", &w.g, NULL), 0);
    static const double defb[] = MP_METRICS_DEFAULT_BUCKETS;
    cr_assert_eq(mp_metrics_histogram_register(reg, "h", "", defb, 11, &w.h,
                                               NULL), 0);
    cr_assert_eq(mp_metrics_vec_register(reg, MP_METRIC_COUNTER, "v_total", "",
                                         (const char *[]){"code"}, 1, NULL, 0, &w.v, NULL), 0);
    pthread_t th[4];
    for (int t = 0; t < 4; t++)
        pthread_create(&th[t], NULL, hammer, &w);
    for (int i = 0; i < 20; i++)
        (void)render(); /* rendering while updating must be safe */
    for (int t = 0; t < 4; t++)
        pthread_join(th[t], NULL);
    cr_assert_eq(mp_counter_get(w.c), 400000);
    cr_assert_eq(mp_gauge_get(w.g), 400000);
    cr_assert_eq(mp_histogram_count(w.h), 400000);
    cr_assert_eq(mp_histogram_sum(w.h), 150000);
    double total = 0;
    for (int k = 0; k < 3; k++) {
        char code[8];
        snprintf(code, sizeof code, "%d", 200 + k);
        total += mp_counter_get(mp_metrics_vec_counter(w.v, (const char *[]){code}));
    }
    cr_assert_eq(total, 400000);
}

Test(metrics, render_respects_buffer_cap)
{
    struct mp_counter *c;
    cr_assert_eq(mp_metrics_counter_register(reg, "some_counter_total", "Help.", &c, NULL), 0);
    struct mp_buf b;
    mp_buf_init(&b, 16);
    cr_assert_eq(mp_metrics_render(reg, &b), MP_ELIMIT);
    mp_buf_fini(&b);
}

Test(metrics, process_collector)
{
    cr_assert_eq(mp_metrics_process_register(reg, NULL), 0);
    cr_assert_eq(mp_metrics_process_register(reg, NULL), 0, "idempotent");
    const char *t = render();
    static const char *const names[] = {
        "process_cpu_seconds_total", "process_max_fds", "process_open_fds",
        "process_resident_memory_bytes", "process_start_time_seconds",
        "process_virtual_memory_bytes", "process_virtual_memory_max_bytes",
        "meshprom_allocator_bytes"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char want[128];
        snprintf(want, sizeof want, "\n%s ", names[i]);
        const char *p = strstr(t, want);
        cr_assert(p, "missing %s in\n%s", names[i], t);
        double v = strtod(p + strlen(want), NULL);
        cr_assert(v >= 0 && !isnan(v), "%s = %g", names[i], v);
    }
    cr_assert(strstr(t, "# TYPE process_cpu_seconds_total counter\n"));
    const char *st = strstr(t, "\nprocess_start_time_seconds ");
    double start = strtod(st + strlen("\nprocess_start_time_seconds "), NULL);
    cr_assert(start > 1.5e9 && start < 4e9, "start %f", start);
    const char *rs = strstr(t, "\nprocess_resident_memory_bytes ");
    cr_assert(strtod(rs + strlen("\nprocess_resident_memory_bytes "), NULL) > 1e5);
}

Test(metrics, default_registry_is_shared)
{
    cr_assert_not_null(mp_metrics_default());
    cr_assert_eq(mp_metrics_default(), mp_metrics_default());
}
