/* SPDX-License-Identifier: Apache-2.0 */
/* tests/scraper/test_omparse.c: the OpenMetrics 1.0 mode of the parser against spec
 * protocols.md 1.4 (its verified example, the difference table, # EOF rules, UNIT suffix,
 * exemplars, second timestamps, _created as Prometheus 2.55 treats it) and the wording of
 * Prometheus's openmetricsparse.go; every truncated prefix before a guard page. */
#include <criterion/criterion.h>
#include <string.h>

#include "scraper/scraper.h"
#include "support_parse.h"

#define OM SCRAPE_FORMAT_OPENMETRICS
#define EXPECT(lit, want) cr_assert_str_eq(DUMP(OM, lit), want)

static const char spec_example[] =
    "# TYPE om_counter_seconds counter\n"
    "# HELP om_counter_seconds Counter help \\\" q\n"
    "# UNIT om_counter_seconds seconds\n"
    "om_counter_seconds_total{a=\"b\"} 17 # {trace_id=\"abc\"} 1.0 1795309100.211\n"
    "om_counter_seconds_created{a=\"b\"} 1600000000.0\n"
    "# EOF\n";

Test(omparse, spec_example)
{
    cr_assert_str_eq(dump(OM, spec_example, sizeof spec_example - 1, 0),
                     "T om_counter_seconds counter\n"
                     "H om_counter_seconds Counter help \\\" q\n"
                     "U om_counter_seconds seconds\n"
                     "S om_counter_seconds_total{a=\"b\"} a=b v=17 fam=om_counter_seconds/counter "
                     "ex={trace_id=\"abc\"} 1 1795309100211\n"
                     "S om_counter_seconds_created{a=\"b\"} a=b v=1600000000 "
                     "fam=om_counter_seconds/counter created\n"
                     "EOF");
}

Test(omparse, skip_created_and_created_timestamp)
{
    cr_assert_str_eq(dump(OM, spec_example, sizeof spec_example - 1, SCRAPE_PARSE_SKIP_CREATED),
                     "T om_counter_seconds counter\n"
                     "H om_counter_seconds Counter help \\\" q\n"
                     "U om_counter_seconds seconds\n"
                     "S om_counter_seconds_total{a=\"b\"} a=b v=17 fam=om_counter_seconds/counter "
                     "ex={trace_id=\"abc\"} 1 1795309100211\n"
                     "EOF");
    struct scrape_parser p;
    struct scrape_label lab[8];
    struct scrape_entry e = {.label = lab, .label_cap = 8};
    scrape_parser_init(&p, OM, spec_example, sizeof spec_example - 1, SCRAPE_PARSE_SKIP_CREATED);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(scrape_parser_next(&p, &e, NULL), 0);
    int64_t ct = 0;
    cr_assert(scrape_parser_created_ms(&p, &e, &ct));
    cr_assert_eq(ct, INT64_C(1600000000000));
    cr_assert_eq(scrape_parser_next(&p, &e, NULL), MP_EEOF);
}

Test(omparse, created_timestamp_of_histogram_ignores_le)
{
    static const char body[] = "# TYPE h histogram\n"
                               "h_bucket{a=\"1\",le=\"1.0\"} 1\n"
                               "h_bucket{a=\"1\",le=\"+Inf\"} 2\n"
                               "h_count{a=\"1\"} 2\n"
                               "h_sum{a=\"1\"} 3\n"
                               "h_created{a=\"1\"} 1700000000.5\n"
                               "h_bucket{a=\"2\",le=\"+Inf\"} 2\n"
                               "h_created{a=\"3\"} 1\n"
                               "# TYPE g gauge\n"
                               "g_created 5\n"
                               "# EOF";
    struct scrape_parser p;
    struct scrape_label lab[8];
    struct scrape_entry e = {.label = lab, .label_cap = 8};
    scrape_parser_init(&p, OM, body, sizeof body - 1, 0);
    cr_assert_eq(scrape_parser_next(&p, &e, NULL), 0);
    cr_assert_eq(scrape_parser_next(&p, &e, NULL), 0);
    int64_t ct = 0;
    cr_assert(scrape_parser_created_ms(&p, &e, &ct));
    cr_assert_eq(ct, INT64_C(1700000000500));
    for (int i = 0; i < 5; i++)
        cr_assert_eq(scrape_parser_next(&p, &e, NULL), 0);
    cr_assert(e.name.len == 8 && e.value == 2); /* h_bucket{a="2"} */
    cr_assert(!scrape_parser_created_ms(&p, &e, &ct), "next _created is another series");
    cr_assert_eq(scrape_parser_next(&p, &e, NULL), 0);
    cr_assert(e.is_created);
    cr_assert_eq(scrape_parser_next(&p, &e, NULL), 0);
    cr_assert_eq(scrape_parser_next(&p, &e, NULL), 0);
    cr_assert(!e.is_created, "gauges have no created series");
    cr_assert(!scrape_parser_created_ms(&p, &e, &ct));
}

Test(omparse, eof_rules)
{
    EXPECT("a 1\n# EOF", "S a v=1\nEOF");
    EXPECT("a 1\n# EOF\n", "S a v=1\nEOF");
    EXPECT("# EOF\n\n", "ERR PARSE: line 1: unexpected data after # EOF");
    EXPECT("# EOF\na 1\n", "ERR PARSE: line 1: unexpected data after # EOF");
    EXPECT("# EOFx", "ERR PARSE: line 1: unexpected data after # EOF");
    EXPECT("a 1\n", "S a v=1\nERR PARSE: line 2: data does not end with # EOF");
    EXPECT("", "ERR PARSE: line 1: data does not end with # EOF");
    EXPECT("a 1", "ERR PARSE: line 1: data does not end with # EOF");
}

Test(omparse, separators_are_single_spaces)
{
    EXPECT("om_x\t1\n# EOF\n", "ERR PARSE: line 1: expected value after metric, got \"\\t\" "
                               "(\"INVALID\") while parsing: \"om_x\\t\"");
    EXPECT("a  1\n# EOF\n", "ERR PARSE: line 1: expected value after metric, got \" \" "
                            "(\"INVALID\") while parsing: \"a \"");
    EXPECT(" a 1\n# EOF\n", "ERR PARSE: line 1: expected a valid start token, got \" \" "
                            "(\"INVALID\") while parsing: \" \"");
    EXPECT("a 1 \n# EOF\n", "ERR PARSE: line 1: expected timestamp or # symbol, got \" \" "
                            "(\"INVALID\") while parsing: \"a 1 \"");
    EXPECT("a{b=\"1\", c=\"2\"} 1\n# EOF\n",
           "ERR PARSE: line 1: expected label name, got \" \" (\"INVALID\") while parsing: "
           "\"a{b=\\\"1\\\", \"");
    EXPECT("a {b=\"1\"} 1\n# EOF\n", "ERR PARSE: line 1: strconv.ParseFloat: parsing "
                                     "\"{b=\\\"1\\\"}\": invalid syntax while parsing: "
                                     "\"a {b=\\\"1\\\"}\"");
    EXPECT("\n# EOF\n", "ERR PARSE: line 1: expected a valid start token, got \"\\n\" "
                        "(\"INVALID\") while parsing: \"\\n\"");
}

Test(omparse, label_sets)
{
    EXPECT("a{} 1\na{b=\"1\",} 2\na{b=\"1\",c=\"\"} 3\n# EOF\n",
           "S a{} v=1\nS a{b=\"1\",} b=1 v=2\nS a{b=\"1\",c=\"\"} b=1 c= v=3\nEOF");
    EXPECT("a{b=\"1\"c=\"2\"} 1\n# EOF\n",
           "ERR PARSE: line 1: expected comma or brace close, got \"c=\" (\"LNAME\") while "
           "parsing: \"a{b=\\\"1\\\"c=\"");
    EXPECT("a{b=\"x\ny\"} 1\n# EOF\n",
           "ERR PARSE: line 1: expected label value, got \"\\\"\" (\"INVALID\") while parsing: "
           "\"a{b=\\\"\"");
    EXPECT("a{b=\"\\\"q\\\\\\n\"} 1\n# EOF\n",
           "S a{b=\"\\\"q\\\\\\n\"} b=\\\"q\\\\\\n(esc) v=1\nEOF");
    EXPECT("{b=\"1\"} 1\n# EOF\n", "ERR PARSE: line 1: metric name not set while parsing: "
                                   "\"{b=\\\"1\\\"} 1\"");
    EXPECT("a{,} 1\n# EOF\n", "ERR PARSE: line 1: expected label name, got \",}\" (\"COMMA\") "
                              "while parsing: \"a{,}\"");
    EXPECT("a{b=\"1\",,} 1\n# EOF\n",
           "ERR PARSE: line 1: expected label name, got \",}\" (\"COMMA\") while parsing: "
           "\"a{b=\\\"1\\\",,}\"");
}

Test(omparse, values_and_timestamps)
{
    EXPECT("a +Inf\nb -Inf\nc NaN\nd 1.5e3\ne 1 1520879607.789\nf 1 -1.5\ng 1 0\n# EOF\n",
           "S a v=inf\nS b v=-inf\nS c v=nan\nS d v=1500\nS e v=1 ts=1520879607789\n"
           "S f v=1 ts=-1500\nS g v=1 ts=0\nEOF");
    /* int64(ts * 1000) truncates toward zero */
    EXPECT("a 1 0.0019\nb 1 -0.0019\n# EOF\n", "S a v=1 ts=1\nS b v=1 ts=-1\nEOF");
    EXPECT("a 1 NaN\n# EOF\n", "ERR PARSE: line 1: invalid timestamp NaN");
    EXPECT("a 1 +Inf\n# EOF\n", "ERR PARSE: line 1: invalid timestamp +Inf");
    EXPECT("a 1 1e300\n# EOF\n", "S a v=1 ts=-9223372036854775808\nEOF");
    EXPECT("a 1_0\n# EOF\n", "ERR PARSE: line 1: unsupported character in float while parsing: "
                             "\"a 1_0\"");
    EXPECT("a 1 2 3\n# EOF\n", "ERR PARSE: line 1: expected next entry after timestamp, got "
                               "\" 3\\n\" (\"TIMESTAMP\") while parsing: \"a 1 2 3\\n\"");
    EXPECT("a 1 x\n# EOF\n", "ERR PARSE: line 1: strconv.ParseFloat: parsing \"x\": invalid "
                             "syntax while parsing: \"a 1 x\"");
    EXPECT("a\n# EOF\n", "ERR PARSE: line 1: expected value after metric, got \"\\n\" "
                         "(\"INVALID\") while parsing: \"a\\n\"");
    EXPECT("a 1 2", "ERR PARSE: line 1: expected next entry after timestamp, got \"\" (\"EOF\") "
                    "while parsing: \"a 1 2\"");
}

Test(omparse, exemplars)
{
    EXPECT("a_total 1 # {} 2\n# EOF\n", "S a_total v=1 ex={} 2\nEOF");
    EXPECT("a_total 1 5 # {t=\"x\",u=\"\"} 2 3.5\n# EOF\n",
           "S a_total v=1 ts=5000 ex={t=\"x\",u=\"\"} 2 3500\nEOF");
    EXPECT("a 1 # {t=\"x\"}\n# EOF\n",
           "ERR PARSE: line 1: expected value after exemplar labels, got \"\\n\" (\"INVALID\") "
           "while parsing: \"a 1 # {t=\\\"x\\\"}\\n\"");
    EXPECT("a 1 # {t=\"x\"} 1 NaN\n# EOF\n", "ERR PARSE: line 1: invalid exemplar timestamp NaN");
    EXPECT("a 1 # {t=\"x\"} 1 2 3\n# EOF\n",
           "ERR PARSE: line 1: expected next entry after exemplar timestamp, got \" 3\\n\" "
           "(\"TIMESTAMP\") while parsing: \"a 1 # {t=\\\"x\\\"} 1 2 3\\n\"");
    EXPECT("a 1 # {t=\"x\"} 1", "ERR PARSE: line 1: data does not end with # EOF");
    /* " #" not followed by " {" lexes as a timestamp */
    EXPECT("a 1 # x\n# EOF\n", "ERR PARSE: line 1: strconv.ParseFloat: parsing \"#\": invalid "
                               "syntax while parsing: \"a 1 #\"");
    const char body[] = "a_total 1 # {t=\"x\",u=\"a\\\"b\"} 2\n# EOF\n";
    struct scrape_parser p;
    struct scrape_entry e = {0};
    first_entry(&p, &e, OM, body, sizeof body - 1);
    struct scrape_label l[4];
    cr_assert_eq(scrape_exemplar_labels(e.exemplar, l, 4), 2);
    cr_assert(mp_str_eq(l[0].name, MP_STR_LIT("t")) && mp_str_eq(l[0].value, MP_STR_LIT("x")));
    cr_assert(mp_str_eq(l[1].name, MP_STR_LIT("u")) &&
              mp_str_eq(l[1].value, MP_STR_LIT("a\\\"b")) && l[1].escaped);
    cr_assert_eq(scrape_exemplar_labels(e.exemplar, l, 1), 2);
}

Test(omparse, metadata_lines)
{
    EXPECT("# TYPE a gaugehistogram\n# TYPE b info\n# TYPE c stateset\n# TYPE d unknown\n"
           "# TYPE e summary\n# EOF\n",
           "T a gaugehistogram\nT b info\nT c stateset\nT d unknown\nT e summary\nEOF");
    EXPECT("# TYPE a untyped\n# EOF\n", "ERR PARSE: line 1: invalid metric type \"untyped\"");
    EXPECT("# HELP a \\\"x\\\" \\\\\n# HELP b \n# HELP c  x\n# EOF\n",
           "H a \\\"x\\\" \\\\\nH b \nH c  x\nEOF");
    EXPECT("# HELP a\n# EOF\n", "ERR PARSE: line 1: expected text in HELP");
    EXPECT("# HELP a x", "ERR PARSE: line 1: expected text in HELP");
    EXPECT("# UNIT a_seconds seconds\n# UNIT b \n# EOF\n", "U a_seconds seconds\nU b \nEOF");
    EXPECT("# UNIT x seconds\n# EOF\n",
           "ERR PARSE: line 1: unit \"seconds\" not a suffix of metric \"x\"");
    EXPECT("# UNIT xseconds seconds\n# EOF\n",
           "ERR PARSE: line 1: unit \"seconds\" not a suffix of metric \"xseconds\"");
    EXPECT("# just a comment\n# EOF\n", "ERR PARSE: line 1: expected a valid start token, got "
                                        "\"#\" (\"INVALID\") while parsing: \"#\"");
    EXPECT("#HELP a x\n# EOF\n", "ERR PARSE: line 1: expected a valid start token, got \"#\" "
                                 "(\"INVALID\") while parsing: \"#\"");
    EXPECT("# HELP 1 x\n# EOF\n", "ERR PARSE: line 1: expected metric name after HELP, got \"1\" "
                                  "(\"INVALID\") while parsing: \"# HELP 1\"");
    EXPECT("# UNIT 1 x\n# EOF\n", "ERR PARSE: line 1: expected metric name after UNIT, got \"1\" "
                                  "(\"INVALID\") while parsing: \"# UNIT 1\"");
    EXPECT("# TYPE a\n# EOF\n", "ERR PARSE: line 1: expected text in TYPE");
    EXPECT("# UNIT a\n# EOF\n", "ERR PARSE: line 1: expected text in UNIT");
    EXPECT("# HELP a \xc3\n# EOF\n", "ERR PARSE: line 1: help text \"\\xc3\" is not a valid utf8 "
                                     "string");
    EXPECT("# HELP a x\n# TYPE a counter\na_total 1\n# EOF\n",
           "H a x\nT a counter\nS a_total v=1 fam=a/counter\nEOF");
    EXPECT("# TYPE a  counter\n# EOF\n", "ERR PARSE: line 1: invalid metric type \" counter\"");
}

Test(omparse, metadata_families)
{
    EXPECT("# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 1\ns_count 1\ns_created 1\n"
           "# TYPE g gaugehistogram\ng_bucket{le=\"+Inf\"} 1\ng_gcount 1\ng_gsum 1\ng_created 1\n"
           "# TYPE i info\ni_info{v=\"1\"} 1\n# EOF\n",
           "T s summary\nS s{quantile=\"0.5\"} quantile=0.5 v=1 fam=s/summary\n"
           "S s_sum v=1 fam=s/summary\nS s_count v=1 fam=s/summary\n"
           "S s_created v=1 fam=s/summary created\n"
           "T g gaugehistogram\nS g_bucket{le=\"+Inf\"} le=+Inf v=1 fam=g/gaugehistogram\n"
           "S g_gcount v=1 fam=g/gaugehistogram\nS g_gsum v=1 fam=g/gaugehistogram\n"
           "S g_created v=1\n"
           "T i info\nS i_info{v=\"1\"} v=1 v=1 fam=i/info\nEOF");
}

Test(omparse, every_truncated_prefix)
{
    size_t eofs = check_prefixes(OM, spec_example, sizeof spec_example - 1);
    cr_assert_eq(eofs, 2, "only the whole body and the one without the last LF end cleanly");
    static const char more[] = "# TYPE h histogram\n# UNIT h_s s\nh_s_bucket{le=\"1.0\"} 1 1.5 "
                               "# {id=\"a\\\"\"} 0.5 2\nh_s_count 1\n# EOF\n";
    cr_assert_eq(check_prefixes(OM, more, sizeof more - 1), 2);
}
