/* SPDX-License-Identifier: Apache-2.0 */
/* tests/scraper/test_textparse.c: the Prometheus text 0.0.4 parser against the grammar and
 * the edge-case table of spec protocols.md 1.3 (verified there against Prometheus 2.42),
 * error wording of Prometheus's promparse.go, every truncated prefix before a guard page,
 * a linkerd2-proxy-shaped body (linkerd-workload.md 1.1), and the float fast path against
 * strtod as an oracle. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scraper/scraper.h"
#include "support_parse.h"

#define T SCRAPE_FORMAT_TEXT
#define EXPECT(lit, want) cr_assert_str_eq(DUMP(T, lit), want)

Test(textparse, spec_minimal_example)
{
    EXPECT("# HELP http_requests_total Requests served.\n"
           "# TYPE http_requests_total counter\n"
           "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n"
           "http_request_duration_seconds_bucket{le=\"0.1\"} 3\n"
           "http_request_duration_seconds_bucket{le=\"+Inf\"} 5\n"
           "http_request_duration_seconds_sum 1.7\n"
           "http_request_duration_seconds_count 5\n",
           "H http_requests_total Requests served.\n"
           "T http_requests_total counter\n"
           "S http_requests_total{method=\"post\",code=\"200\"} method=post code=200 v=1027 "
           "ts=1395066363000 fam=http_requests_total/counter\n"
           "S http_request_duration_seconds_bucket{le=\"0.1\"} le=0.1 v=3\n"
           "S http_request_duration_seconds_bucket{le=\"+Inf\"} le=+Inf v=5\n"
           "S http_request_duration_seconds_sum v=1.7\n"
           "S http_request_duration_seconds_count v=5\n"
           "EOF");
}

Test(textparse, blanks_tabs_and_trailing_comma_accepted)
{
    EXPECT("a\t\t1\n", "S a v=1\nEOF");
    EXPECT("  a   1   2  \n", "S a v=1 ts=2\nEOF");
    EXPECT("a { x = \"1\" , y=\"2\" } 3\n", "S a { x = \"1\" , y=\"2\" } x=1 y=2 v=3\nEOF");
    EXPECT("a{x=\"1\",} 3\n", "S a{x=\"1\",} x=1 v=3\nEOF");
    EXPECT("a{} 3\n", "S a{} v=3\nEOF");
    EXPECT("val 5\t", "S val v=5\nEOF");
    EXPECT("val 5", "S val v=5\nEOF");
    /* upstream lets label pairs go without commas and a value follow '}' directly */
    EXPECT("a{x=\"1\" y=\"2\"} 3\n", "S a{x=\"1\" y=\"2\"} x=1 y=2 v=3\nEOF");
    EXPECT("a{x=\"1\"}3\n", "S a{x=\"1\"} x=1 v=3\nEOF");
}

Test(textparse, blank_lines_and_empty_body)
{
    EXPECT("", "EOF");
    EXPECT("\n\n \t\n", "EOF");
    EXPECT("\na 1\n\nb 2\n", "S a v=1\nS b v=2\nEOF");
}

Test(textparse, value_spellings)
{
    EXPECT("a .5\nb +5\nc 1E3\nd -0.25e-2\n", "S a v=0.5\nS b v=5\nS c v=1000\nS d v=-0.0025\nEOF");
    EXPECT("a Inf\nb inf\nc +Inf\nd -Inf\ne Infinity\nf -iNfInItY\n",
           "S a v=inf\nS b v=inf\nS c v=inf\nS d v=-inf\nS e v=inf\nS f v=-inf\nEOF");
    EXPECT("a nan\nb NaN\n", "S a v=nan\nS b v=nan\nEOF");
    EXPECT("a 1e-400\n", "S a v=0\nEOF");
    EXPECT("a 00012\n", "S a v=12\nEOF");
}

Test(textparse, nan_is_canonical)
{
    const char body[] = "a NaN\n";
    struct scrape_parser p;
    struct scrape_entry e = {0};
    first_entry(&p, &e, T, body, sizeof body - 1);
    uint64_t bits;
    memcpy(&bits, &e.value, 8);
    cr_assert_eq(bits, UINT64_C(0x7ff8000000000001));
}

Test(textparse, rejected_values)
{
    EXPECT("a 1_000\n", "ERR PARSE: line 1: unsupported character in float while parsing: "
                        "\"a 1_000\"");
    EXPECT("a 0x1p3\n", "ERR PARSE: line 1: unsupported character in float while parsing: "
                        "\"a 0x1p3\"");
    EXPECT("a 0x10\n", "ERR PARSE: line 1: strconv.ParseFloat: parsing \"0x10\": invalid syntax "
                       "while parsing: \"a 0x10\"");
    EXPECT("a 1e400\n", "ERR PARSE: line 1: strconv.ParseFloat: parsing \"1e400\": value out of "
                        "range while parsing: \"a 1e400\"");
    EXPECT("a -nan\n", "ERR PARSE: line 1: strconv.ParseFloat: parsing \"-nan\": invalid syntax "
                       "while parsing: \"a -nan\"");
    EXPECT("a infinit\n", "ERR PARSE: line 1: strconv.ParseFloat: parsing \"infinit\": invalid "
                          "syntax while parsing: \"a infinit\"");
    EXPECT("a 1.2.3\n", "ERR PARSE: line 1: strconv.ParseFloat: parsing \"1.2.3\": invalid "
                        "syntax while parsing: \"a 1.2.3\"");
    EXPECT("a 1e\n", "ERR PARSE: line 1: strconv.ParseFloat: parsing \"1e\": invalid syntax "
                     "while parsing: \"a 1e\"");
    EXPECT("a .\n", "ERR PARSE: line 1: strconv.ParseFloat: parsing \".\": invalid syntax "
                    "while parsing: \"a .\"");
    EXPECT("a 1\r\n", "ERR PARSE: line 1: strconv.ParseFloat: parsing \"1\\r\": invalid syntax "
                      "while parsing: \"a 1\\r\"");
}

Test(textparse, timestamps)
{
    /* an invalid token does not advance the upstream lexer: one byte is shown */
    EXPECT("a 1 -5\n", "ERR PARSE: line 1: expected timestamp or new record, got \"-\" "
                       "(\"INVALID\") while parsing: \"a 1 -\"");
    EXPECT("a 1 1700000000000.5\n",
           "ERR PARSE: line 1: expected next entry after timestamp, got \".\" (\"INVALID\") "
           "while parsing: \"a 1 1700000000000.\"");
    EXPECT("a 1 9223372036854775807\n", "S a v=1 ts=9223372036854775807\nEOF");
    EXPECT("a 1 9223372036854775808\n",
           "ERR PARSE: line 1: strconv.ParseInt: parsing \"9223372036854775808\": value out of "
           "range while parsing: \"a 1 9223372036854775808\"");
    EXPECT("a 1 2 3\n", "ERR PARSE: line 1: expected next entry after timestamp, got \"3\\n\" "
                        "(\"TIMESTAMP\") while parsing: \"a 1 2 3\\n\"");
    EXPECT("a 1{\n", "ERR PARSE: line 1: expected timestamp or new record, got \"{\" "
                     "(\"INVALID\") while parsing: \"a 1{\"");
}

Test(textparse, label_values)
{
    EXPECT("a{x=\"\"} 1\n", "S a{x=\"\"} x= v=1\nEOF");
    EXPECT("a{x=\"x\\qy\"} 1\n", "S a{x=\"x\\qy\"} x=x\\qy(esc) v=1\nEOF");
    EXPECT("a{x=\"t\tb\"} 1\n", "S a{x=\"t\tb\"} x=t\tb v=1\nEOF");
    EXPECT("a{x=\"\xc3\xa9\"} 1\n", "S a{x=\"\xc3\xa9\"} x=\xc3\xa9 v=1\nEOF");
    /* the lexer allows a raw line feed inside quotes; lines keep counting */
    EXPECT("a{x=\"1\n2\"} 1\nb\n", "S a{x=\"1\n2\"} x=1\n2 v=1\n"
                                   "ERR PARSE: line 3: expected value after metric, got \"\\n\" "
                                   "(\"INVALID\") while parsing: \"b\\n\"");
    EXPECT("a{x=\"\xff\"} 1\n", "ERR PARSE: line 1: invalid UTF-8 label value: \"\\\"\\xff\\\"\"");
    EXPECT("a{x=\"\xed\xa0\x80\"} 1\n", /* surrogate */
           "ERR PARSE: line 1: invalid UTF-8 label value: \"\\\"\\xed\\xa0\\x80\\\"\"");
}

Test(textparse, unescape)
{
    char buf[64];
    struct mp_str raw = MP_STR_LIT("a\\\\b\\\"c\\nd\\qe\\");
    size_t n = scrape_unescape(raw, false, buf, sizeof buf);
    cr_assert_eq(n, 11);
    cr_assert(memcmp(buf, "a\\b\"c\nd\\qe\\", n) == 0);
    n = scrape_unescape(raw, true, buf, sizeof buf); /* 0.0.4 HELP: \" stays */
    cr_assert_eq(n, 12);
    cr_assert(memcmp(buf, "a\\b\\\"c\nd\\qe\\", n) == 0);
    cr_assert_eq(scrape_unescape(raw, false, buf, 3), 3);
}

Test(textparse, duplicate_label_helper)
{
    const char body[] = "a{x=\"1\",y=\"2\",x=\"3\"} 1\nb{x=\"1\",y=\"2\"} 1\n";
    struct scrape_parser p;
    struct scrape_label lab[8];
    struct scrape_entry e = {.label = lab, .label_cap = 8};
    first_entry(&p, &e, T, body, sizeof body - 1);
    cr_assert_eq(scrape_entry_duplicate_label(&e), 2);
    cr_assert_eq(scrape_parser_next(&p, &e, NULL), 0);
    cr_assert_eq(scrape_entry_duplicate_label(&e), -1);
}

Test(textparse, label_limit_of_caller_array)
{
    const char body[] = "a{x=\"1\",y=\"2\",z=\"3\"} 1\n";
    struct scrape_parser p;
    struct scrape_label lab[3];
    struct scrape_entry e = {.label = lab, .label_cap = 2};
    struct mp_err err;
    mp_err_clear(&err);
    scrape_parser_init(&p, T, body, sizeof body - 1, 0);
    cr_assert_eq(scrape_parser_next(&p, &e, &err), MP_ELIMIT);
    cr_assert_eq(scrape_parser_next(&p, &e, &err), MP_ELIMIT, "sticky");
    e.label_cap = 3;
    scrape_parser_init(&p, T, body, sizeof body - 1, 0);
    cr_assert_eq(scrape_parser_next(&p, &e, &err), 0);
    cr_assert_eq(e.nlabel, 3);
}

Test(textparse, help_and_type)
{
    EXPECT("# HELP a\n# HELP b \n# HELP c  two  spaces\n# HELP\td\ttab\n",
           "H a \nH b \nH c  two  spaces\nH d tab\nEOF");
    EXPECT("# HELP a x \\\" \\\\ \\n\n", "H a x \\\" \\\\ \\n\nEOF");
    EXPECT("# TYPE a counter\n# TYPE b gauge\n# TYPE c histogram\n# TYPE d summary\n"
           "# TYPE e untyped\n",
           "T a counter\nT b gauge\nT c histogram\nT d summary\nT e unknown\nEOF");
    EXPECT("# TYPE a foo\n", "ERR PARSE: line 1: invalid metric type \"foo\"");
    EXPECT("# TYPE a gauge \n", "ERR PARSE: line 1: invalid metric type \"gauge \"");
    EXPECT("# TYPE a gaugehistogram\n",
           "ERR PARSE: line 1: invalid metric type \"gaugehistogram\"");
    EXPECT("# TYPE a\n", "ERR PARSE: line 1: invalid metric type \"\"");
    EXPECT("# HELP 1a x\n", "ERR PARSE: line 1: expected metric name after HELP, got \"1\" "
                            "(\"INVALID\") while parsing: \"# HELP 1\"");
    EXPECT("# HELP a \xff\n", "ERR PARSE: line 1: help text \"\\xff\" is not a valid utf8 "
                              "string");
    EXPECT("# TYPE {\n", "ERR PARSE: line 1: expected metric name after TYPE, got \"{\" "
                         "(\"INVALID\") while parsing: \"# TYPE {\"");
    EXPECT("  # HELP a b\n\t# TYPE a gauge\n", "H a b\nT a gauge\nEOF");
    EXPECT("# HELP a:b_c x\n", "H a:b_c x\nEOF");
    /* TYPE after its samples is fine */
    EXPECT("a 1\n# TYPE a gauge\n", "S a v=1\nT a gauge\nEOF");
}

Test(textparse, comments)
{
    EXPECT("#HELP a x\n# UNIT a seconds\n# EOF\n#\n# just words\n  # indented\n",
           "C #HELP a x\nC # UNIT a seconds\nC # EOF\nC #\nC # just words\nC # indented\nEOF");
    EXPECT("# HELPER a\n# TYPEa\n", "C # HELPER a\nC # TYPEa\nEOF");
}

Test(textparse, syntax_errors)
{
    EXPECT("a\n", "ERR PARSE: line 1: expected value after metric, got \"\\n\" (\"INVALID\") "
                  "while parsing: \"a\\n\"");
    EXPECT("a", "ERR PARSE: line 1: expected value after metric, got \"\\n\" (\"INVALID\") "
                "while parsing: \"a\\n\"");
    EXPECT("a{x=1} 1\n", "ERR PARSE: line 1: expected label value, got \"1\" (\"INVALID\") "
                         "while parsing: \"a{x=1\"");
    EXPECT("a{x} 1\n", "ERR PARSE: line 1: expected equal, got \"} \" (\"BCLOSE\") while "
                       "parsing: \"a{x} \"");
    EXPECT("a{,} 1\n", "ERR PARSE: line 1: expected label name, got \",}\" (\"COMMA\") while "
                       "parsing: \"a{,}\"");
    EXPECT("a{x=\"1\",,} 1\n", "ERR PARSE: line 1: expected label name, got \",}\" "
                               "(\"COMMA\") while parsing: \"a{x=\\\"1\\\",,}\"");
    EXPECT("a{1=\"1\"} 1\n", "ERR PARSE: line 1: expected label name, got \"1\" (\"INVALID\") "
                             "while parsing: \"a{1\"");
    EXPECT("a{x=\"1\" 1\n", "ERR PARSE: line 1: expected label name, got \"1\" (\"INVALID\") "
                            "while parsing: \"a{x=\\\"1\\\" 1\"");
    EXPECT("a{x=\"1} 1\n", "ERR PARSE: line 1: expected label value, got \"\\\"\" (\"INVALID\") "
                           "while parsing: \"a{x=\\\"\"");
    EXPECT("{x=\"1\"} 1\n", "ERR PARSE: line 1: metric name not set while parsing: "
                            "\"{x=\\\"1\\\"} 1\"");
    EXPECT("1a 1\n", "ERR PARSE: line 1: expected a valid start token, got \"1\" (\"INVALID\") "
                     "while parsing: \"1\"");
    EXPECT("ok 1\n\nb{\n", "S ok v=1\nERR PARSE: line 3: expected label name, got \"\\n\" "
                           "(\"INVALID\") while parsing: \"b{\\n\"");
}

Test(textparse, nul_at_line_start_ends_body)
{
    cr_assert_str_eq(dump(T, "a 1\n\0b 2\n", 9, 0), "S a v=1\nEOF");
    struct scrape_parser p;
    struct scrape_label lab[2];
    struct scrape_entry e = {.label = lab, .label_cap = 2};
    scrape_parser_init(&p, T, "a{x=\"\0\"} 1\n", 11, 0);
    cr_assert_eq(scrape_parser_next(&p, &e, NULL), 0);
    cr_assert(e.nlabel == 1 && lab[0].value.len == 1 && lab[0].value.ptr[0] == 0);
}

Test(textparse, families_and_types)
{
    EXPECT("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 2\nh_count 1\nh 5\nh_other 1\n"
           "# TYPE c counter\nc_total 1\nc 2\nc_created 3\n"
           "# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 1\ns_bucket 1\n"
           "# HELP g gauge help\n# TYPE g gauge\ng 1\ng_sum 1\n",
           "T h histogram\n"
           "S h_bucket{le=\"1\"} le=1 v=1 fam=h/histogram\n"
           "S h_sum v=2 fam=h/histogram\nS h_count v=1 fam=h/histogram\nS h v=5 fam=h/histogram\n"
           "S h_other v=1\n"
           "T c counter\nS c_total v=1 fam=c/counter\nS c v=2 fam=c/counter\nS c_created v=3\n"
           "T s summary\nS s{quantile=\"0.5\"} quantile=0.5 v=1 fam=s/summary\n"
           "S s_sum v=1 fam=s/summary\nS s_bucket v=1\n"
           "H g gauge help\nT g gauge\nS g v=1 fam=g/gauge\nS g_sum v=1\nEOF");
    /* HELP for another family forgets the type of the previous one */
    EXPECT("# TYPE a counter\n# HELP b x\nb 1\na_total 1\n",
           "T a counter\nH b x\nS b v=1 fam=b/unknown\nS a_total v=1\nEOF");
}

Test(textparse, family_helper)
{
    struct mp_str f = MP_STR_LIT("x");
    cr_assert(scrape_series_in_family(MP_STR_LIT("x_bucket"), f, SCRAPE_TYPE_HISTOGRAM, false));
    cr_assert(scrape_series_in_family(MP_STR_LIT("x_gsum"), f, SCRAPE_TYPE_GAUGEHISTOGRAM, false));
    cr_assert(!scrape_series_in_family(MP_STR_LIT("x_sum"), f, SCRAPE_TYPE_GAUGEHISTOGRAM, false));
    cr_assert(scrape_series_in_family(MP_STR_LIT("x_info"), f, SCRAPE_TYPE_INFO, false));
    cr_assert(scrape_series_in_family(MP_STR_LIT("x_total"), MP_STR_LIT("x_total"),
                                      SCRAPE_TYPE_COUNTER, false));
    cr_assert(!scrape_series_in_family(MP_STR_LIT("x_created"), f, SCRAPE_TYPE_COUNTER, false));
    cr_assert(scrape_series_in_family(MP_STR_LIT("x_created"), f, SCRAPE_TYPE_SUMMARY, true));
    cr_assert(!scrape_series_in_family(MP_STR_LIT("x_created"), f, SCRAPE_TYPE_GAUGE, true));
    cr_assert(!scrape_series_in_family(MP_STR_LIT("y_sum"), f, SCRAPE_TYPE_SUMMARY, false));
    cr_assert_str_eq(scrape_metric_type_name(SCRAPE_TYPE_STATESET), "stateset");
    cr_assert_str_eq(scrape_metric_type_name(SCRAPE_TYPE_UNKNOWN), "unknown");
}

/* linkerd-workload.md 1.1: legacy families first, then prometheus-client ones with UNIT
 * lines, "_total" samples under "# TYPE x counter", float bucket bounds and "# EOF"; the
 * proxy sends text/plain, so the text parser must take the UNIT/EOF lines as comments. */
static const char linkerd_body[] =
    "# HELP request_total Total count of HTTP requests.\n"
    "# TYPE request_total counter\n"
    "request_total{direction=\"inbound\",target_addr=\"10.244.2.17:8080\",target_ip="
    "\"10.244.2.17\",target_port=\"8080\",tls=\"true\",client_id=\"default.emojivoto."
    "serviceaccount.identity.linkerd.cluster.local\",srv_group=\"\",srv_kind=\"default\","
    "srv_name=\"all-unauthenticated\",srv_port=\"8080\",route_group=\"\",route_kind=\"default\","
    "route_name=\"default\",authz_group=\"\",authz_kind=\"default\",authz_name="
    "\"all-unauthenticated\"} 7321\n"
    "# HELP response_latency_ms Elapsed times between a request's headers being received and "
    "its response stream completing\n"
    "# TYPE response_latency_ms histogram\n"
    "response_latency_ms_bucket{direction=\"outbound\",authority=\"voting-svc.emojivoto.svc."
    "cluster.local:8080\",status_code=\"200\",le=\"1\"} 3571\n"
    "response_latency_ms_bucket{direction=\"outbound\",authority=\"voting-svc.emojivoto.svc."
    "cluster.local:8080\",status_code=\"200\",le=\"+Inf\"} 3580\n"
    "response_latency_ms_count{direction=\"outbound\",authority=\"voting-svc.emojivoto.svc."
    "cluster.local:8080\",status_code=\"200\"} 3580\n"
    "response_latency_ms_sum{direction=\"outbound\",authority=\"voting-svc.emojivoto.svc."
    "cluster.local:8080\",status_code=\"200\"} 0.5594713199999999\n"
    "# HELP outbound_http_route_request_duration_seconds The time between request "
    "initialization and response completion.\n"
    "# TYPE outbound_http_route_request_duration_seconds histogram\n"
    "# UNIT outbound_http_route_request_duration_seconds seconds\n"
    "outbound_http_route_request_duration_seconds_bucket{parent_group=\"core\",parent_kind="
    "\"Service\",parent_namespace=\"emojivoto\",parent_name=\"voting-svc\",parent_port="
    "\"8080\",parent_section_name=\"\",route_group=\"\",route_kind=\"default\","
    "route_namespace=\"\",route_name=\"http\",hostname=\"\",le=\"0.05\"} 12\n"
    "# HELP outbound_http_route_backend_requests The total number of requests dispatched.\n"
    "# TYPE outbound_http_route_backend_requests counter\n"
    "outbound_http_route_backend_requests_total{parent_group=\"core\",backend_name="
    "\"voting-svc\"} 42\n"
    "# HELP process_start_time_seconds Time that the process started (in seconds since the "
    "UNIX epoch)\n"
    "# TYPE process_start_time_seconds gauge\n"
    "# UNIT process_start_time_seconds seconds\n"
    "process_start_time_seconds 1764633600\n"
    "# TYPE proxy_build_info gauge\n"
    "proxy_build_info{date=\"2025-10-01T00:00:00Z\",git_sha=\"abc\",profile=\"release\","
    "vendor=\"linkerd\",version=\"v2.326.0\"} 1\n"
    "# EOF\n";

Test(textparse, linkerd_proxy_body)
{
    const char *d = dump(T, linkerd_body, sizeof linkerd_body - 1, 0);
    cr_assert(strstr(d, "\nC # UNIT outbound_http_route_request_duration_seconds seconds\n"), "%s",
              d);
    cr_assert(strstr(d, "\nC # EOF\nEOF"), "%s", d);
    cr_assert(strstr(d, "srv_group= srv_kind=default"), "%s", d);
    cr_assert(strstr(d, "v=7321 fam=request_total/counter\n"), "%s", d);
    cr_assert(strstr(d, "le=+Inf v=3580 fam=response_latency_ms/histogram\n"), "%s", d);
    cr_assert(strstr(d, "v=0.5594713199999999 fam=response_latency_ms/histogram\n"), "%s", d);
    cr_assert(strstr(d, "le=0.05 v=12 fam=outbound_http_route_request_duration_seconds/"
                        "histogram\n"),
              "%s", d);
    cr_assert(strstr(d, "v=42 fam=outbound_http_route_backend_requests/counter\n"), "%s", d);
    cr_assert(strstr(d, "S process_start_time_seconds v=1764633600 fam=process_start_time_"
                        "seconds/gauge\n"),
              "%s", d);
    cr_assert(strstr(d, "version=v2.326.0 v=1 fam=proxy_build_info/gauge\n"), "%s", d);
}

Test(textparse, series_slice_is_the_cache_key)
{
    const char body[] = "  m { a=\"1\" }   7\n";
    struct scrape_parser p;
    struct scrape_label lab[4];
    struct scrape_entry e = {.label = lab, .label_cap = 4};
    first_entry(&p, &e, T, body, sizeof body - 1);
    cr_assert_eq(e.series.ptr, body + 2);
    cr_assert_eq(e.series.len, strlen("m { a=\"1\" }"));
    cr_assert_eq(e.name.len, 1);
    cr_assert_eq(e.line, 1);
}

Test(textparse, every_truncated_prefix)
{
    size_t eofs = check_prefixes(T, linkerd_body, sizeof linkerd_body - 1);
    cr_assert_gt(eofs, 10);
    static const char small[] = "# HELP a h\\n\n# TYPE a counter\na{b=\"c\\\"\",d=\"\"} 1 2\n"
                                "#c\n  x\t-Inf\n";
    check_prefixes(T, small, sizeof small - 1);
}

/* Fast path and strtod must agree bit for bit; fixed seed. */
Test(textparse, float_parsing_matches_strtod)
{
    uint64_t s = 0x12345678u;
    char tok[64], body[96];
    for (int i = 0; i < 20000; i++) {
        s = s * 6364136223846793005u + 1442695040888963407u;
        int digits = 1 + (int)(s >> 60), dotpos = (int)((s >> 50) % (uint64_t)(digits + 1));
        int exp = (int)((s >> 40) % 61) - 30;
        size_t n = 0;
        if (s & 1)
            tok[n++] = '-';
        uint64_t r = s;
        for (int d = 0; d < digits; d++) {
            if (d == dotpos && d > 0)
                tok[n++] = '.';
            r = r * 6364136223846793005u + 1442695040888963407u;
            tok[n++] = (char)('0' + (r >> 59) % 10);
        }
        if (s & 2)
            n += (size_t)snprintf(tok + n, sizeof tok - n, "e%d", exp);
        tok[n] = 0;
        int len = snprintf(body, sizeof body, "m %s\n", tok);
        struct scrape_parser p;
        struct scrape_entry e = {0};
        struct mp_err err;
        mp_err_clear(&err);
        scrape_parser_init(&p, T, body, (size_t)len, 0);
        cr_assert_eq(scrape_parser_next(&p, &e, &err), 0, "seed step %d: %s: %s", i, tok, err.msg);
        double want = strtod(tok, NULL);
        cr_assert(memcmp(&want, &e.value, 8) == 0, "%s: got %.17g want %.17g", tok, e.value, want);
    }
}

Test(textparse, long_value_tokens)
{
    static char body[2048];
    size_t n = (size_t)snprintf(body, sizeof body, "m 0.");
    for (int i = 0; i < 900; i++)
        body[n++] = '0';
    body[n++] = '1';
    body[n++] = '5';
    body[n] = 0;
    double want = strtod(body + 2, NULL);
    memcpy(body + n, " 7\n", 3);
    struct scrape_parser p;
    struct scrape_entry e = {0};
    struct mp_err err;
    mp_err_clear(&err);
    scrape_parser_init(&p, T, body, n + 3, 0);
    cr_assert_eq(scrape_parser_next(&p, &e, &err), 0, "%s", err.msg);
    cr_assert(e.value == want && e.has_ts && e.ts_ms == 7);
    /* the same number as the unterminated end of the body is refused, not over-read */
    scrape_parser_init(&p, T, body, n, 0);
    cr_assert_eq(scrape_parser_next(&p, &e, &err), MP_EPARSE);
}

/* The scrape cache's fast path: peeking a line with the length of the series text an earlier
 * parse gave and parsing it as known yields the same entry (or error) as the full parser;
 * the peek succeeds for want of the sample lines (not after a blank line, where the full
 * parser takes over). */
static void same_as_full_parse(const char *body, int want)
{
    int hits = 0;
    size_t len = strlen(body);
    struct scrape_parser full, fast;
    scrape_parser_init(&full, T, body, len, 0);
    scrape_parser_init(&fast, T, body, len, 0);
    struct scrape_label la[16], lb[16];
    for (int guard = 0; guard < 100; guard++) {
        struct scrape_entry a = {.label = la, .label_cap = 16}, b = {.label = lb, .label_cap = 16};
        struct mp_err ea = {0}, eb = {0};
        int ra = scrape_parser_next(&full, &a, &ea);
        struct mp_str known;
        int rb;
        if (ra == 0 && a.kind == SCRAPE_ENTRY_SERIES &&
            scrape_parser_peek_series(&fast, a.series.len, &known)) {
            cr_assert(mp_str_eq(known, a.series));
            rb = scrape_parser_next_known(&fast, known, &b, &eb);
            cr_assert_eq(b.nlabel, 0);
            hits++;
        } else {
            rb = scrape_parser_next(&fast, &b, &eb);
        }
        cr_assert_eq(ra, rb, "%s", body);
        cr_assert_str_eq(ea.msg, eb.msg);
        if (ra) {
            cr_assert_eq(hits, want, "%s", body);
            return;
        }
        cr_assert_eq(a.kind, b.kind);
        cr_assert_eq(a.line, b.line);
        cr_assert(mp_str_eq(a.name, b.name));
        cr_assert(mp_str_eq(a.series, b.series));
        cr_assert(mp_str_eq(a.family, b.family));
        cr_assert_eq(a.type, b.type);
        cr_assert_eq(a.has_ts, b.has_ts);
        if (a.kind == SCRAPE_ENTRY_SERIES) {
            cr_assert_eq(memcmp(&a.value, &b.value, sizeof a.value), 0);
            cr_assert_eq(a.ts_ms, b.ts_ms);
        }
        cr_assert_eq(full.cur, fast.cur);
    }
    cr_assert_fail("no end");
}

Test(textparse, known_series_parse_as_the_full_parser)
{
    same_as_full_parse("# TYPE a counter\na 1\n  a{x=\"1\"} 2 123\nb{x=\"} {\",y=\"\\\"\"}\t-Inf\n"
                       "c {x=\"1\"} 3\nd{x=\"line\nfeed\"} 4\n\ne 5e3\nf 6",
                       6);
    same_as_full_parse("a{x=\"1\"} 1\na{x=\"1\"} 1 2 3\n", 1); /* error after the series */
    same_as_full_parse("a{x=\"1\"}{y=\"2\"} 1\n", 0);          /* value token empty */
    same_as_full_parse("a{x=\"1\"} 1\nb{x=\"1\"} 1 99999999999999999999\n", 1); /* ts range */
    same_as_full_parse("a 1\nd{x=\"l\nf\"} 4\nbad\n", 2); /* line numbers after a LF */
}

Test(textparse, peek_refuses_a_length_that_is_not_the_whole_series)
{
    const char *body = "abc 1\nabc {x=\"1\"} 2\nabc{x=\"1\"} 3\n";
    struct scrape_parser p;
    struct mp_str s;
    scrape_parser_init(&p, T, body, strlen(body), 0);
    cr_assert_not(scrape_parser_peek_series(&p, 2, &s), "name continues");
    cr_assert(scrape_parser_peek_series(&p, 3, &s));
    cr_assert_not(scrape_parser_peek_series(&p, 6, &s), "past the series");
    cr_assert_not(scrape_parser_peek_series(&p, 100, &s), "past the body");
    struct scrape_entry e = {0};
    struct mp_err err = {0};
    cr_assert_eq(scrape_parser_next(&p, &e, &err), 0);
    cr_assert_not(scrape_parser_peek_series(&p, 3, &s), "a label set follows after a blank");
    cr_assert_eq(scrape_parser_next(&p, &e, &err), 0);
    cr_assert_not(scrape_parser_peek_series(&p, 3, &s), "a label set follows");
    cr_assert(scrape_parser_peek_series(&p, 10, &s));
    /* a known series whose value went bad: the full parser's error */
    const char *bad = "abc{x=\"1\"} 1 2 3\n";
    struct mp_err e1 = {0}, e2 = {0};
    scrape_parser_init(&p, T, bad, strlen(bad), 0);
    cr_assert(scrape_parser_peek_series(&p, 10, &s));
    cr_assert_eq(scrape_parser_next_known(&p, s, &e, &e1), MP_EPARSE);
    scrape_parser_init(&p, T, bad, strlen(bad), 0);
    cr_assert_eq(scrape_parser_next(&p, &e, &e2), MP_EPARSE);
    cr_assert_str_eq(e1.msg, e2.msg);
    struct scrape_parser om;
    scrape_parser_init(&om, SCRAPE_FORMAT_OPENMETRICS, "abc 1\n# EOF\n", 12, 0);
    cr_assert_not(scrape_parser_peek_series(&om, 3, &s), "text format only");
}
