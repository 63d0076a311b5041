/* SPDX-License-Identifier: Apache-2.0 */
/* tests/query/test_pretty.c: query_expr_pretty against Prometheus's format_query. The cases
 * were written for this project; their expected text is what a real Prometheus 2.42
 * (/api/v1/format_query, the same prettier.go code as 2.55) printed for them, except that 2.42
 * prints numbers as Go %v ("1e+06") where 2.55 prints strconv 'f' ("1000000"). Each node kind
 * appears split (String() longer than 100 bytes) and unsplit. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "query/query.h"

struct pretty_case {
    const char *in, *out;
};

static const struct pretty_case cases[] = {
    {"sum(rate(foo[5m]))", "sum(rate(foo[5m]))"},
    {"very_long_metric_name_number_one{job=\"prometheus\",instance=\"localhost:9090\"} + "
     "very_long_metric_name_number_two{job=\"x\"}",
     "  very_long_metric_name_number_one{instance=\"localhost:9090\",job=\"prometheus\"}\n"
     "+\n"
     "  very_long_metric_name_number_two{job=\"x\"}"},
    {"a_metric_with_a_long_name_aaaaaaaaaaaaaaaa / on(job, instance) group_left(version) "
     "another_metric_with_a_long_name_bbbbbbbbbbbbbb",
     "  a_metric_with_a_long_name_aaaaaaaaaaaaaaaa\n"
     "/ on (job, instance) group_left (version)\n"
     "  another_metric_with_a_long_name_bbbbbbbbbbbbbb"},
    {"a_metric_with_a_long_name_aaaaaaaaaaaaaaaa > bool ignoring(instance) "
     "another_metric_with_a_long_name_bbbbbbbbbbbbbbbbbbbbbb",
     "  a_metric_with_a_long_name_aaaaaaaaaaaaaaaa\n"
     "> bool ignoring (instance)\n"
     "  another_metric_with_a_long_name_bbbbbbbbbbbbbbbbbbbbbb"},
    {"a_metric_with_a_long_name_aaaaaaaaaaaaaaaa and "
     "another_metric_with_a_long_name_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
     "  a_metric_with_a_long_name_aaaaaaaaaaaaaaaa\n"
     "and\n"
     "  another_metric_with_a_long_name_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"},
    {"sum by (job, instance) "
     "(rate(http_requests_total_with_a_long_name{job=\"api-server\",handler=\"/api/v1/"
     "query\"}[5m]))",
     "sum by (job, instance) (\n"
     "  "
     "rate(http_requests_total_with_a_long_name{handler=\"/api/v1/"
     "query\",job=\"api-server\"}[5m])\n"
     ")"},
    {"sum without (instance) "
     "(rate(http_requests_total_with_a_long_name{job=\"api-server\",handler=\"/api/v1/"
     "query\"}[5m]))",
     "sum without (instance) (\n"
     "  "
     "rate(http_requests_total_with_a_long_name{handler=\"/api/v1/"
     "query\",job=\"api-server\"}[5m])\n"
     ")"},
    {"topk(5, sum by (job, instance) "
     "(rate(http_requests_total_with_a_long_name{job=\"api-server\",handler=\"/query\"}[5m])))",
     "topk(\n"
     "  5,\n"
     "  sum by (job, instance) (\n"
     "    rate(http_requests_total_with_a_long_name{handler=\"/query\",job=\"api-server\"}[5m])\n"
     "  )\n"
     ")"},
    {"count_values(\"value_label_name\", "
     "http_requests_total_with_a_long_name{job=\"api-server\",handler=\"/api/v1/query\"})",
     "count_values(\n"
     "  \"value_label_name\",\n"
     "  http_requests_total_with_a_long_name{handler=\"/api/v1/query\",job=\"api-server\"}\n"
     ")"},
    {"quantile(0.99, "
     "rate(http_request_duration_seconds_bucket_long_name{job=\"api-server\",handler=\"/api/v1/"
     "query\"}[5m]))",
     "quantile(\n"
     "  0.99,\n"
     "  "
     "rate(http_request_duration_seconds_bucket_long_name{handler=\"/api/v1/"
     "query\",job=\"api-server\"}[5m])\n"
     ")"},
    {"histogram_quantile(0.9, sum by (le) "
     "(rate(http_request_duration_seconds_bucket{job=\"api-server\",handler=\"/api/v1/"
     "query\"}[5m])))",
     "histogram_quantile(\n"
     "  0.9,\n"
     "  sum by (le) (\n"
     "    "
     "rate(http_request_duration_seconds_bucket{handler=\"/api/v1/"
     "query\",job=\"api-server\"}[5m])\n"
     "  )\n"
     ")"},
    {"label_replace(up_with_a_rather_long_metric_name{job=\"api-server\"}, \"destination_label\", "
     "\"$1\", \"source_label\", \"(.*)\")",
     "label_replace(\n"
     "  up_with_a_rather_long_metric_name{job=\"api-server\"},\n"
     "  \"destination_label\",\n"
     "  \"$1\",\n"
     "  \"source_label\",\n"
     "  \"(.*)\"\n"
     ")"},
    {"(http_requests_total_with_a_long_name{job=\"api-server\"} + "
     "http_requests_total_with_a_long_name{job=\"api-server-2\"})",
     "(\n"
     "    http_requests_total_with_a_long_name{job=\"api-server\"}\n"
     "  +\n"
     "    http_requests_total_with_a_long_name{job=\"api-server-2\"}\n"
     ")"},
    {"((http_requests_total_with_a_long_name{job=\"api-server\"} + "
     "http_requests_total_with_a_long_name{job=\"api-server-2\"}))",
     "(\n"
     "  (\n"
     "      http_requests_total_with_a_long_name{job=\"api-server\"}\n"
     "    +\n"
     "      http_requests_total_with_a_long_name{job=\"api-server-2\"}\n"
     "  )\n"
     ")"},
    {"-(http_requests_total_with_a_long_name{job=\"api-server\"} + "
     "http_requests_total_with_a_long_name{job=\"api-server-2\"})",
     "-(\n"
     "    http_requests_total_with_a_long_name{job=\"api-server\"}\n"
     "  +\n"
     "    http_requests_total_with_a_long_name{job=\"api-server-2\"}\n"
     ")"},
    {"-sum(http_requests_total_with_a_long_name{job=\"api-server\"} + "
     "http_requests_total_with_a_long_name{job=\"api-server-2\"})",
     "-sum(\n"
     "    http_requests_total_with_a_long_name{job=\"api-server\"}\n"
     "  +\n"
     "    http_requests_total_with_a_long_name{job=\"api-server-2\"}\n"
     ")"},
    {"max_over_time((http_requests_total_with_a_long_name{job=\"api-server\"} + "
     "http_requests_total_with_a_long_name{job=\"b\"})[1h:5m] offset 1m)",
     "max_over_time(\n"
     "  (\n"
     "      http_requests_total_with_a_long_name{job=\"api-server\"}\n"
     "    +\n"
     "      http_requests_total_with_a_long_name{job=\"b\"}\n"
     "  )[1h:5m] offset 1m\n"
     ")"},
    {"max_over_time(rate(http_requests_total_with_a_long_name{job=\"api-server\"}[5m])[1h:5m]) + "
     "max_over_time(rate(other_metric_name{job=\"api-server\"}[5m])[1h:])",
     "  max_over_time(rate(http_requests_total_with_a_long_name{job=\"api-server\"}[5m])[1h:5m])\n"
     "+\n"
     "  max_over_time(rate(other_metric_name{job=\"api-server\"}[5m])[1h:])"},
    {"sum(rate(http_requests_total_with_a_long_name{job=\"api-server\"}[5m])) / "
     "sum(rate(http_requests_total_with_a_long_name{job=\"api-server\", code=~\"5..\"}[5m]))",
     "  sum(rate(http_requests_total_with_a_long_name{job=\"api-server\"}[5m]))\n"
     "/\n"
     "  sum(rate(http_requests_total_with_a_long_name{code=~\"5..\",job=\"api-server\"}[5m]))"},
    {"http_requests_total_with_a_very_long_long_long_name{job=\"api-server\",handler=\"/api/v1/"
     "query\",code=\"200\",method=\"GET\"}",
     "http_requests_total_with_a_very_long_long_long_name{code=\"200\",handler=\"/api/v1/"
     "query\",job=\"api-server\",method=\"GET\"}"},
    {"http_requests_total_with_a_very_long_long_long_name{job=\"api-server\",handler=\"/api/v1/"
     "query\",code=\"200\",method=\"GET\"}[5m] offset 1h",
     "http_requests_total_with_a_very_long_long_long_name{code=\"200\",handler=\"/api/v1/"
     "query\",job=\"api-server\",method=\"GET\"}[5m] offset 1h"},
    {"rate(http_requests_total_with_a_very_long_long_long_name{job=\"api-server\",handler=\"/api/"
     "v1/query\",code=\"200\",method=\"GET\"}[5m])",
     "rate(\n"
     "  "
     "http_requests_total_with_a_very_long_long_long_name{code=\"200\",handler=\"/api/v1/"
     "query\",job=\"api-server\",method=\"GET\"}[5m]\n"
     ")"},
    {"1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9 + 10 + 11 + 12 + 13 + 14 + 15 + 16 + 17 + 18 + 19 + 20 + "
     "21 + 22 + 23 + 24 + 25 + 26 + 27",
     "          1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9 + 10 + 11 + 12 + 13 + 14 + 15 + 16 + 17 + 18 + "
     "19 + 20 + 21 + 22\n"
     "        +\n"
     "          23\n"
     "      +\n"
     "        24\n"
     "    +\n"
     "      25\n"
     "  +\n"
     "    26\n"
     "+\n"
     "  27"},
    {"sum(a_metric_with_a_long_name_aaaaaaaaaaaaaaaa) by (job) * on(job) group_right(foo) sum by "
     "(job) (another_metric_with_a_long_name_b)",
     "  sum by (job) (a_metric_with_a_long_name_aaaaaaaaaaaaaaaa)\n"
     "* on (job) group_right (foo)\n"
     "  sum by (job) (another_metric_with_a_long_name_b)"},
    {"clamp(http_requests_total_with_a_long_name{job=\"api-server\",handler=\"/api/v1/query\"}, 0, "
     "time() - 1000000)",
     "clamp(\n"
     "  http_requests_total_with_a_long_name{handler=\"/api/v1/query\",job=\"api-server\"},\n"
     "  0,\n"
     "  time() - 1000000\n"
     ")"},
    {"absent(nonexistent_metric_with_a_very_very_very_long_name{job=\"api-server\",handler=\"/api/"
     "v1/query\",x=\"y\"})",
     "absent(\n"
     "  "
     "nonexistent_metric_with_a_very_very_very_long_name{handler=\"/api/v1/"
     "query\",job=\"api-server\",x=\"y\"}\n"
     ")"},
    {"vector(1) or label_replace(http_requests_total_with_a_long_name{job=\"api-server\"}, \"a\", "
     "\"b\", \"c\", \"d\") or vector(2)",
     "    vector(1)\n"
     "  or\n"
     "    label_replace(http_requests_total_with_a_long_name{job=\"api-server\"}, \"a\", \"b\", "
     "\"c\", \"d\")\n"
     "or\n"
     "  vector(2)"},
    {"\"a very very long string literal that goes over one hundred characters "
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"",
     "\"a very very long string literal that goes over one hundred characters "
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\""},
    {"-http_requests_total_with_a_very_long_long_long_name{job=\"api-server\",handler=\"/api/v1/"
     "query\",code=\"200\",method=\"GET\"}",
     "-http_requests_total_with_a_very_long_long_long_name{code=\"200\",handler=\"/api/v1/"
     "query\",job=\"api-server\",method=\"GET\"}"},
    {"sum by (job) (rate(a[5m])) / sum by (job) (rate(b[5m])) > 0.5 and on(job) sum by (job) "
     "(rate(c_total_long_name[5m])) > 1",
     "  sum by (job) (rate(a[5m])) / sum by (job) (rate(b[5m])) > 0.5\n"
     "and on (job)\n"
     "  sum by (job) (rate(c_total_long_name[5m])) > 1"},
    {"foo @ 100 + bar offset -5m + "
     "very_long_metric_name_number_one{job=\"prometheus\",instance=\"localhost:9090\"} @ start()",
     "  foo @ 100.000 + bar offset -5m\n"
     "+\n"
     "  very_long_metric_name_number_one{instance=\"localhost:9090\",job=\"prometheus\"} @ "
     "start()"},
    {"rate((http_requests_total_with_a_long_name{job=\"api-server\"} + "
     "http_requests_total_with_a_long_name{job=\"b\"})[5m:])",
     "rate(\n"
     "  (\n"
     "      http_requests_total_with_a_long_name{job=\"api-server\"}\n"
     "    +\n"
     "      http_requests_total_with_a_long_name{job=\"b\"}\n"
     "  )[5m:]\n"
     ")"},
    {"max_over_time(http_requests_total_with_a_long_name{job=\"api-server\",handler=\"/api/v1/"
     "query\"}[1h:1m]) + 1",
     "  "
     "max_over_time(http_requests_total_with_a_long_name{handler=\"/api/v1/"
     "query\",job=\"api-server\"}[1h:1m])\n"
     "+\n"
     "  1"},
    {"holt_winters(http_requests_total_with_a_long_name{job=\"api-server\",handler=\"/api/v1/"
     "query\"}[1h:1m] @ 1000, 0.5, 0.5)",
     "holt_winters(\n"
     "http_requests_total_with_a_long_name{handler=\"/api/v1/query\",job=\"api-server\"}[1h:1m] @ "
     "1000.000,\n"
     "  0.5,\n"
     "  0.5\n"
     ")"},
    {"+http_requests_total_with_a_very_long_long_long_name{job=\"api-server\",handler=\"/api/v1/"
     "query\",code=\"200\",method=\"GET\"}",
     "+http_requests_total_with_a_very_long_long_long_name{code=\"200\",handler=\"/api/v1/"
     "query\",job=\"api-server\",method=\"GET\"}"},
    {"sum by (job) "
     "(http_requests_total_with_a_long_name{job=\"api-server\",handler=\"/api/v1/query\"}) > bool "
     "1",
     "  sum by (job) "
     "(http_requests_total_with_a_long_name{handler=\"/api/v1/query\",job=\"api-server\"})\n"
     "> bool\n"
     "  1"},
    /* unsplit nodes of every kind stay on one line, as String() prints them */
    {"1", "1"},
    {"\"s\"", "\"s\""},
    {"(foo)", "(foo)"},
    {"-foo", "-foo"},
    {"foo[5m:1m] offset 5m", "foo[5m:1m] offset 5m"},
    {"count_values(\"v\", foo)", "count_values(\"v\", foo)"},
    {"a + on(b) group_left c", "a + on (b) group_left () c"},
};

static char *pretty_of(const char *in)
{
    struct query_expr *e = NULL;
    struct query_parse_error pe;
    cr_assert_eq(query_parse(in, strlen(in), NULL, &e, &pe), 0, "%s: %s", in, pe.msg);
    struct mp_buf b;
    mp_buf_init(&b, 0);
    cr_assert_eq(query_expr_pretty(e, &b), 0, "%s", in);
    size_t n;
    char *s = mp_buf_take(&b, &n);
    mp_buf_fini(&b);
    query_expr_free(e);
    return s;
}

Test(pretty, cases)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = pretty_of(cases[i].in);
        cr_expect_str_eq(got ? got : "", cases[i].out, "case %zu: %s\ngot:\n%s\nwant:\n%s", i,
                         cases[i].in, got ? got : "", cases[i].out);
        mp_free(got);
    }
}

/* A metric name of n bytes. */
static void long_name(char *buf, size_t n)
{
    memset(buf, 'x', n);
    buf[n] = 0;
}

Test(pretty, limit_is_100_bytes)
{
    char lhs[128], q[300], want[300];
    /* "X + y": 100 bytes stays on one line, 101 splits */
    long_name(lhs, 96);
    snprintf(q, sizeof q, "%s + y", lhs);
    cr_assert_eq(strlen(q), 100);
    char *got = pretty_of(q);
    cr_expect_str_eq(got, q);
    mp_free(got);
    long_name(lhs, 97);
    snprintf(q, sizeof q, "%s + y", lhs);
    snprintf(want, sizeof want, "  %s\n+\n  y", lhs);
    got = pretty_of(q);
    cr_expect_str_eq(got, want);
    mp_free(got);
}

Test(pretty, buffer_status_is_returned)
{
    const char *q = cases[1].in;
    struct query_expr *e = NULL;
    cr_assert_eq(query_parse(q, strlen(q), NULL, &e, NULL), 0);
    struct mp_buf b;
    mp_buf_init(&b, 20);
    cr_expect_eq(query_expr_pretty(e, &b), MP_ELIMIT);
    mp_buf_fini(&b);
    query_expr_free(e);
}
