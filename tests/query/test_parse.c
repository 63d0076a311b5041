/* SPDX-License-Identifier: Apache-2.0 */
/* tests/query/test_parse.c: the PromQL parser against promql.md section 1. Valid expressions
 * with the text Prometheus's Expr.String() prints for them (cases written from the spec and
 * Prometheus's documented formatting, not copied from upstream tests), invalid ones with the
 * exact message and line:column, every truncated prefix, allocation failures, accessors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "query/query.h"

struct ok_case {
    const char *in, *out;
};

static const struct ok_case ok_cases[] = {
    /* numbers (1.2) */
    {"1", "1"},
    {"010", "8"},
    {"08", "8"},
    {"0x1F", "31"},
    {"0X_1f", "31"},
    {"0xff", "255"},
    {"1_000.000_1", "1000.0001"},
    {"1e+3", "1000"},
    {"1E-3", "0.001"},
    {"1_000", "1000"},
    {"1e3", "1000"},
    {".5", "0.5"},
    {"5.", "5"},
    {"Inf", "+Inf"},
    {"-inf", "-Inf"},
    {"nAn", "NaN"},
    {"9223372036854775808", "9223372036854776000"},
    {"1e6", "1000000"},
    {"123456", "123456"},
    {"0.0001", "0.0001"},
    {"0.00001", "0.00001"},
    {"1.5e-7", "0.00000015"},
    {"-5", "-5"},
    {"+5", "5"},
    {"- - 5", "5"},
    {"1234567.5", "1234567.5"},
    {"1e21", "1000000000000000000000"},
    {"0.1", "0.1"},
    {"-0", "-0"},
    /* durations as numbers (1.3, 2.54+) */
    {"1h30m", "5400"},
    {"1ms", "0.001"},
    {"time() - 1h", "time() - 3600"},
    /* strings (1.4) */
    {"\"foo\"", "\"foo\""},
    {"'foo'", "\"foo\""},
    {"'a\"b'", "\"a\\\"b\""},
    {"`a\\nb`", "\"a\\\\nb\""},
    {"\"\\n\\t\\x41\\101\\u00e9\"", "\"\\n\\tAAé\""},
    {"`multi\nline`", "\"multi\\nline\""},
    {"\"\\xff\"", "\"\\xff\""},
    /* operators (1.5) */
    {"1 + 2 * 3", "1 + 2 * 3"},
    {"(1 + 2) * 3", "(1 + 2) * 3"},
    {"2 ^ 3 ^ 2", "2 ^ 3 ^ 2"},
    {"-2 ^ 2", "-2 ^ 2"},
    {"-a * b", "-a * b"},
    {"2 ^ -1", "2 ^ -1"},
    {"a + b > bool c", "a + b > bool c"},
    {"1 == bool 1", "1 == bool 1"},
    {"a and b or c unless d", "a and b or c unless d"},
    {"a OR b", "a or b"},
    {"a atan2 b", "a atan2 b"},
    {"a % b / c", "a % b / c"},
    {"foo * on(a, b) group_left(c) bar", "foo * on (a, b) group_left (c) bar"},
    {"foo * on() bar", "foo * on () bar"},
    {"foo * ignoring(a,) group_right bar", "foo * ignoring (a) group_right () bar"},
    {"foo * ignoring() bar", "foo * bar"},
    {"foo > bool on(a) bar", "foo > bool on (a) bar"},
    {"foo and on(a) bar", "foo and on (a) bar"},
    {"1 + foo", "1 + foo"},
    {"-foo", "-foo"},
    {"-(1)", "-(1)"},
    {"+foo", "+foo"},
    /* selectors (1.6) */
    {"foo", "foo"},
    {"foo{}", "foo"},
    {"foo{a=\"b\"}", "foo{a=\"b\"}"},
    {"foo{b=\"1\", a!=\"2\",}", "foo{a!=\"2\",b=\"1\"}"},
    {"{job=~\".+\"}", "{job=~\".+\"}"},
    {"{job=~\".*\",method=\"get\"}", "{job=~\".*\",method=\"get\"}"},
    {"{__name__=\"foo\"}", "{__name__=\"foo\"}"},
    {"{__name__=~\"foo|bar\"}", "{__name__=~\"foo|bar\"}"},
    {"job:rate5m:sum", "job:rate5m:sum"},
    {"{\"foo\"}", "{__name__=\"foo\"}"},
    {"{\"my.metric\", \"a.b\"=\"c\"}", "{\"a.b\"=\"c\",__name__=\"my.metric\"}"},
    {"{'a'!~'x', b='y'}", "{a!~\"x\",b=\"y\"}"},
    {":x", ":x"},
    {"sum", "sum"},
    {"by", "by"},
    {"offset", "offset"},
    {"start", "start"},
    {"and", "and"},
    {"foo{on=\"x\"}", "foo{on=\"x\"}"},
    {"foo # comment\n", "foo"},
    {"foo{# c\na=\"b\"}", "foo{a=\"b\"}"},
    {"foo{a=\"\\n\"}", "foo{a=\"\\n\"}"},
    /* range, offset, @ (1.7) */
    {"foo[5m]", "foo[5m]"},
    {"foo[1h30m]", "foo[1h30m]"},
    {"foo[90s]", "foo[1m30s]"},
    {"foo[300]", "foo[5m]"},
    {"foo[1m500ms]", "foo[1m500ms]"},
    {"foo[7d]", "foo[1w]"},
    {"foo[8d]", "foo[8d]"},
    {"foo[365d]", "foo[1y]"},
    {"foo offset 5m", "foo offset 5m"},
    {"foo offset -5m", "foo offset -5m"},
    {"foo OFFSET 1.5", "foo offset 1s500ms"},
    {"foo[5m] offset 1h", "foo[5m] offset 1h"},
    {"foo @ 1000", "foo @ 1000.000"},
    {"foo @ -1.5", "foo @ -1.500"},
    {"foo @ start()", "foo @ start()"},
    {"foo @ end()", "foo @ end()"},
    {"foo offset 5m @ 10", "foo @ 10.000 offset 5m"},
    {"foo @ 10 offset 5m", "foo @ 10.000 offset 5m"},
    {"foo[5m] @ 1e3", "foo[5m] @ 1000.000"},
    {"foo{a=\"b\"}[5m] offset 1w @ end()", "foo{a=\"b\"}[5m] @ end() offset 1w"},
    /* subqueries (1.8) */
    {"foo[5m:1m]", "foo[5m:1m]"},
    {"foo[5m:]", "foo[5m:]"},
    {"(a + b)[5m:1m]", "(a + b)[5m:1m]"},
    {"rate(foo[5m])[1h:] offset 1m", "rate(foo[5m])[1h:] offset 1m"},
    {"foo[5m:] @ start() offset 2m", "foo[5m:] @ start() offset 2m"},
    {"min_over_time(rate(foo[5m])[30m:1m])", "min_over_time(rate(foo[5m])[30m:1m])"},
    /* calls and aggregations (1.9) */
    {"rate(foo[5m])", "rate(foo[5m])"},
    {"time()", "time()"},
    {"pi()", "pi()"},
    {"hour()", "hour()"},
    {"hour(foo)", "hour(foo)"},
    {"round(foo)", "round(foo)"},
    {"round(foo, 0.5)", "round(foo, 0.5)"},
    {"label_join(foo, \"d\", \",\", \"a\", \"b\", \"c\")",
     "label_join(foo, \"d\", \",\", \"a\", \"b\", \"c\")"},
    {"label_replace(up, 'a', '$1', 'b', '(.*)')",
     "label_replace(up, \"a\", \"$1\", \"b\", \"(.*)\")"},
    {"histogram_quantile(0.9, sum by (le) (rate(x[5m])))",
     "histogram_quantile(0.9, sum by (le) (rate(x[5m])))"},
    {"holt_winters(foo[5m], 0.5, 0.5)", "holt_winters(foo[5m], 0.5, 0.5)"},
    {"vector(1)", "vector(1)"},
    {"scalar(foo) + 1", "scalar(foo) + 1"},
    {"sum(foo)", "sum(foo)"},
    {"SUM(foo)", "sum(foo)"},
    {"sum by (a, b) (foo)", "sum by (a, b) (foo)"},
    {"sum(foo) by (a)", "sum by (a) (foo)"},
    {"sum without (a) (foo)", "sum without (a) (foo)"},
    {"sum without () (foo)", "sum without () (foo)"},
    {"sum by () (foo)", "sum(foo)"},
    {"sum BY (a,) (foo)", "sum by (a) (foo)"},
    {"sum by (sum, on, by) (foo)", "sum by (sum, on, by) (foo)"},
    {"avg(foo) without (job)", "avg without (job) (foo)"},
    {"topk(5, foo)", "topk(5, foo)"},
    {"bottomk by (a) (3, foo)", "bottomk by (a) (3, foo)"},
    {"quantile(0.9, foo)", "quantile(0.9, foo)"},
    {"count_values(\"v\", foo)", "count_values(\"v\", foo)"},
    {"stddev(foo) + stdvar(bar)", "stddev(foo) + stdvar(bar)"},
    {"group(foo)", "group(foo)"},
    {"max(sum(foo) by (a))", "max(sum by (a) (foo))"},
    {"count(foo{a=\"b\"} offset 5m)", "count(foo{a=\"b\"} offset 5m)"},
    {"sum(rate(foo[5m])) / sum(rate(bar[5m]))", "sum(rate(foo[5m])) / sum(rate(bar[5m]))"},
    {"((foo))", "((foo))"},
    {"\n  foo\n +\n bar", "foo + bar"},
    {"abs(-foo)", "abs(-foo)"},
};

struct bad_case {
    const char *in, *msg;
};

static const struct bad_case bad_cases[] = {
    {"", "1:1: parse error: no expression found in input"},
    {"   # only a comment", "1:1: parse error: no expression found in input"},
    {"(foo", "1:5: parse error: unclosed left parenthesis"},
    {"foo)", "1:5: parse error: unexpected right parenthesis ')'"},
    {"foo[5m", "1:7: parse error: unclosed left bracket"},
    {"foo]", "1:4: parse error: unexpected right bracket ']'"},
    {"foo{", "1:5: parse error: unexpected end of input inside braces"},
    {"foo{a=\"b\"", "1:10: parse error: unexpected end of input inside braces"},
    {"$", "1:1: parse error: unexpected character: '$'"},
    {"foo =~ bar", "1:5: parse error: unexpected character after '=': '~'"},
    {"foo ! bar", "1:5: parse error: unexpected character after '!': ' '"},
    {"foo{a=1}", "1:7: parse error: unexpected character inside braces: '1'"},
    {"foo{a!b}", "1:6: parse error: unexpected character after '!' inside braces: 'b'"},
    {"\"foo", "1:1: parse error: unterminated quoted string"},
    {"\"a\nb\"", "1:1: parse error: unterminated quoted string"},
    {"`foo", "1:1: parse error: unterminated raw string"},
    {"\"\\q\"", "1:1: parse error: unknown escape sequence U+0071 'q'"},
    {"\"a\\'b\"", "1:1: parse error: unknown escape sequence U+0027 '''"},
    {"'\\\"'", "1:1: parse error: unknown escape sequence U+0022 '\"'"},
    {"\"\\xZZ\"", "1:1: parse error: illegal character U+005A 'Z' in escape sequence"},
    {"\"\\ud800\"", "1:1: parse error: escape sequence is an invalid Unicode code point"},
    {"\"\\400\"", "1:1: parse error: escape sequence is an invalid Unicode code point"},
    {"1x", "1:1: parse error: bad number or duration syntax: \"1\""},
    {"5mx", "1:1: parse error: bad number or duration syntax: \"5mx\""},
    {"1.5.3", "1:1: parse error: bad number or duration syntax: \"1.5.\""},
    {"foo[1.5h]", "1:5: parse error: not a valid duration string: \"1.5h\""},
    {"foo[30m1h]", "1:5: parse error: not a valid duration string: \"30m1h\""},
    {"foo[5m5m]", "1:5: parse error: not a valid duration string: \"5m5m\""},
    {"foo[0s]", "1:5: parse error: duration must be greater than 0"},
    {"foo bar", "1:5: parse error: unexpected identifier \"bar\""},
    {"1 +", "1:4: parse error: unexpected end of input"},
    {"foo * * bar", "1:7: parse error: unexpected <op:*>"},
    {"foo by", "1:5: parse error: unexpected <by>"},
    {"sum(foo bar)", "1:9: parse error: unexpected identifier \"bar\" in aggregation"},
    {"sum by foo (bar)",
     "1:8: parse error: unexpected identifier \"foo\" in grouping opts, expected \"(\""},
    {"sum by (a b) (foo)",
     "1:11: parse error: unexpected identifier \"b\" in grouping opts, expected \",\" or \")\""},
    {"sum by (1) (foo)",
     "1:9: parse error: unexpected number \"1\" in grouping opts, expected label"},
    {"foo{a}",
     "1:6: parse error: unexpected \"}\" in label matching, expected label matching operator"},
    {"foo{a=}", "1:7: parse error: unexpected \"}\" in label matching, expected string"},
    {"foo{a=\"b\" c=\"d\"}",
     "1:11: parse error: unexpected identifier \"c\" in label matching, expected \",\" or \"}\""},
    {"foo{\"a\" \"b\"}", "1:9: parse error: unexpected string \"\\\"b\\\"\" in label matching, "
                         "expected \",\" or \"}\""},
    {"foo{,}",
     "1:5: parse error: unexpected \",\" in label matching, expected identifier or \"}\""},
    {"foo offset bar",
     "1:12: parse error: unexpected identifier \"bar\" in offset, expected number or duration"},
    {"foo @ bar", "1:7: parse error: unexpected identifier \"bar\" in @, expected timestamp"},
    {"foo[5m:1m 2m]",
     "1:11: parse error: unexpected duration \"2m\" in subquery selector, expected \"]\""},
    {"foo[5m offset 1h]", "1:9: parse error: unexpected colon 'f'"},
    {"foo[5m:x]", "1:8: parse error: unexpected colon 'x'"},
    {"foo[5m::]", "1:8: parse error: unexpected colon ':'"},
    {"{}", "1:1: parse error: vector selector must contain at least one non-empty matcher"},
    {"{job=~\".*\"}",
     "1:1: parse error: vector selector must contain at least one non-empty matcher"},
    {"{job=\"\"}", "1:1: parse error: vector selector must contain at least one non-empty matcher"},
    {"foo{__name__=\"bar\"}",
     "1:1: parse error: metric name must not be set twice: \"foo\" or \"bar\""},
    {"foo{a=~\"(\"}", "1:5: parse error: error parsing regexp: missing closing ): `^(?:()$`"},
    {"foo{a=~\"a**\"}",
     "1:5: parse error: error parsing regexp: invalid nested repetition operator: `**`"},
    {"1__0", "1:1: parse error: bad number or duration syntax: \"1__\""},
    {"1_", "1:1: parse error: bad number or duration syntax: \"1_\""},
    {"0x1.5", "1:1: parse error: bad number or duration syntax: \"0x1.\""},
    {"1e5.5", "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"1e5.5\": "
              "invalid syntax"},
    {"RATE(foo[5m])", "1:1: parse error: unknown function with name \"RATE\""},
    {"foo(bar)", "1:1: parse error: unknown function with name \"foo\""},
    {"sort_by_label(foo, \"a\")", "1:1: parse error: function \"sort_by_label\" is not enabled"},
    {"mad_over_time(foo[5m])", "1:1: parse error: function \"mad_over_time\" is not enabled"},
    {"limitk(1, foo)",
     "1:1: parse error: limitk() and limit_ratio() are experimental and must be enabled with "
     "--enable-feature=promql-experimental-functions"},
    {"abs(foo, bar)", "1:1: parse error: expected 1 argument(s) in call to \"abs\", got 2"},
    {"time(foo)", "1:1: parse error: expected 0 argument(s) in call to \"time\", got 1"},
    {"label_join(foo)",
     "1:1: parse error: expected at least 3 argument(s) in call to \"label_join\", got 1"},
    {"round(foo, 1, 2)",
     "1:1: parse error: expected at most 2 argument(s) in call to \"round\", got 3"},
    {"rate(foo)", "1:6: parse error: expected type range vector in call to function \"rate\", got "
                  "instant vector"},
    {"abs(\"x\")",
     "1:5: parse error: expected type instant vector in call to function \"abs\", got string"},
    {"label_join(foo, \"a\", \",\", 1)",
     "1:27: parse error: expected type string in call to function \"label_join\", got scalar"},
    {"rate(foo[5m],)", "1:13: parse error: trailing commas not allowed in function call args"},
    {"sum(foo,)", "1:8: parse error: trailing commas not allowed in function call args"},
    {"sum()", "1:1: parse error: no arguments for aggregate expression provided"},
    {"topk(foo)", "1:1: parse error: wrong number of arguments for aggregate expression provided, "
                  "expected 2, got 1"},
    {"sum(1, foo)", "1:1: parse error: wrong number of arguments for aggregate expression "
                    "provided, expected 1, got 2"},
    {"sum(foo[5m])",
     "1:5: parse error: expected type instant vector in aggregation expression, got range vector"},
    {"topk(\"a\", foo)",
     "1:6: parse error: expected type scalar in aggregation parameter, got string"},
    {"count_values(1, foo)",
     "1:14: parse error: expected type string in aggregation parameter, got scalar"},
    {"(foo)[5m]", "1:6: parse error: ranges only allowed for vector selectors"},
    {"foo offset 1h [5m]", "1:15: parse error: no offset modifiers allowed before range"},
    {"foo @ 1 [5m]", "1:9: parse error: no @ modifiers allowed before range"},
    {"(foo) offset 5m",
     "1:1: parse error: offset modifier must be preceded by an instant vector selector or range "
     "vector selector or a subquery"},
    {"1 @ 5",
     "1:1: parse error: @ modifier must be preceded by an instant vector selector or range vector "
     "selector or a subquery"},
    {"foo offset 5m offset 1m", "1:1: parse error: offset may not be set multiple times"},
    {"foo @ 1 @ 2", "1:1: parse error: @ <timestamp> may not be set multiple times"},
    {"foo @ start() @ 2", "1:1: parse error: @ <timestamp> may not be set multiple times"},
    {"foo @ Inf", "1:1: parse error: timestamp out of bounds for @ modifier: +Inf"},
    {"foo[5m][5m:]",
     "1:1: parse error: subquery is only allowed on instant vector, got matrix instead"},
    {"1[5m:]", "1:1: parse error: subquery is only allowed on instant vector, got scalar instead"},
    {"foo and bool bar",
     "1:5: parse error: bool modifier can only be used on comparison operators"},
    {"1 > 2", "1:3: parse error: comparisons between scalars must use BOOL modifier"},
    {"foo and on(a) group_left bar", "1:1: parse error: no grouping allowed for \"and\" operation"},
    {"1 and foo", "1:1: parse error: set operator \"and\" not allowed in binary scalar expression"},
    {"1 + on(a) foo", "1:1: parse error: vector matching only allowed between instant vectors"},
    {"foo + on(a) group_left(a) bar",
     "1:5: parse error: label \"a\" must not occur in ON and GROUP clause at once"},
    {"foo[5m] + 1",
     "1:1: parse error: binary expression must contain only scalar and instant vector types"},
    {"1 + \"a\"",
     "1:5: parse error: binary expression must contain only scalar and instant vector types"},
    {"-foo[5m]",
     "1:1: parse error: unary expression only allowed on expressions of type scalar or instant "
     "vector, got \"range vector\""},
    {"-\"a\"", "1:1: parse error: unary expression only allowed on expressions of type scalar or "
               "instant vector, got \"string\""},
    {"foo +\n  bar baz", "2:7: parse error: unexpected identifier \"baz\""},
    {"1e400", "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"1e400\": "
              "value out of range"},
    {"foo + group_left bar", "1:7: parse error: unexpected <group_left>"},
    {"a:b(x)", "1:4: parse error: unexpected \"(\""},
    {"foo{a=\"b\"}{c=\"d\"}", "1:11: parse error: unexpected \"{\""},
    {"sum(x) 1234567890123", "1:8: parse error: unexpected number \"1234567890\"..."},
};

static char *fmt(const struct query_expr *e)
{
    struct mp_buf b;
    mp_buf_init(&b, 0);
    cr_assert_eq(query_expr_format(e, &b), 0);
    size_t n;
    char *s = mp_buf_take(&b, &n);
    mp_buf_fini(&b);
    return s;
}

Test(parse, valid_expressions_format_as_prometheus)
{
    for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
        const struct ok_case *c = &ok_cases[i];
        struct query_expr *e = NULL;
        struct query_parse_error err = {0};
        int rc = query_parse(c->in, strlen(c->in), NULL, &e, &err);
        cr_expect_eq(rc, 0, "%s: %s", c->in, err.msg);
        if (rc)
            continue;
        char *s = fmt(e);
        cr_expect_str_eq(s, c->out, "input %s", c->in);
        /* the printed form parses back to itself */
        struct query_expr *e2 = NULL;
        cr_expect_eq(query_parse(s, strlen(s), NULL, &e2, &err), 0, "%s: %s", s, err.msg);
        if (e2) {
            char *s2 = fmt(e2);
            cr_expect_str_eq(s2, s);
            mp_free(s2);
            query_expr_free(e2);
        }
        mp_free(s);
        query_expr_free(e);
    }
}

Test(parse, invalid_expressions_report_prometheus_message_and_position)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        struct query_expr *e = NULL;
        struct query_parse_error err = {0};
        int rc = query_parse(c->in, strlen(c->in), NULL, &e, &err);
        cr_expect_eq(rc, MP_EPARSE, "%s: parsed", c->in);
        cr_expect_null(e);
        if (rc == MP_EPARSE)
            cr_expect_str_eq(err.msg, c->msg, "input %s: got %s", c->in, err.msg);
        query_expr_free(e);
    }
}

Test(parse, experimental_functions_behind_the_flag)
{
    struct query_parse_opts o;
    query_parse_opts_init(&o);
    o.experimental_functions = true;
    const char *in[] = {"sort_by_label(foo, \"a\", \"b\")",
                        "mad_over_time(foo[5m])",
                        "limitk(2, foo)",
                        "limit_ratio(0.5, foo) by (a)",
                        "info(foo)",
                        "info(foo, {bar=\"x\"})"};
    const char *out[] = {"sort_by_label(foo, \"a\", \"b\")",
                         "mad_over_time(foo[5m])",
                         "limitk(2, foo)",
                         "limit_ratio by (a) (0.5, foo)",
                         "info(foo)",
                         "info(foo, {bar=\"x\"})"};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        struct query_expr *e = NULL;
        struct query_parse_error err = {0};
        cr_assert_eq(query_parse(in[i], strlen(in[i]), &o, &e, &err), 0, "%s: %s", in[i], err.msg);
        char *s = fmt(e);
        cr_expect_str_eq(s, out[i]);
        mp_free(s);
        query_expr_free(e);
    }
}

/* Every prefix of a valid expression either parses (it is itself valid) or fails with a
 * positioned parse error; never a crash, and the error lies inside the prefix. Inputs are
 * copied to exactly-sized heap blocks so ASan catches a read past the end. */
Test(parse, truncated_prefixes_fail_cleanly)
{
    size_t nok = sizeof ok_cases / sizeof ok_cases[0];
    for (size_t i = 0; i < nok + sizeof bad_cases / sizeof bad_cases[0]; i++) {
        /* prefixes of the invalid inputs too: no crash, and errors stay in bounds */
        const char *in = i < nok ? ok_cases[i].in : bad_cases[i - nok].in;
        size_t n = strlen(in);
        for (size_t k = 0; k < n; k++) {
            char *buf = mp_xmalloc(k ? k : 1);
            memcpy(buf, in, k);
            struct query_expr *e = NULL;
            struct query_parse_error err = {0};
            int rc = query_parse(buf, k, NULL, &e, &err);
            cr_expect(rc == 0 || rc == MP_EPARSE, "%.*s: rc %d", (int)k, in, rc);
            if (rc == 0) {
                char *s = fmt(e);
                mp_free(s);
            } else {
                cr_expect_null(e);
                cr_expect(err.pos <= k, "%.*s: pos %zu", (int)k, in, err.pos);
                cr_expect(strstr(err.msg, ": parse error: ") != NULL);
            }
            query_expr_free(e);
            mp_free(buf);
        }
    }
    /* prefixes ending in an operator or inside brackets, braces and strings are errors */
    const char *cut[] = {"foo +",      "sum(",  "foo{a=",       "foo[5m",     "\"ab",
                         "foo offset", "foo @", "rate(foo[5m]", "foo * on(a", "foo[5m:"};
    for (size_t i = 0; i < sizeof cut / sizeof cut[0]; i++) {
        struct query_expr *e = NULL;
        cr_expect_eq(query_parse(cut[i], strlen(cut[i]), NULL, &e, NULL), MP_EPARSE, "%s", cut[i]);
    }
}

Test(parse, allocation_failures_return_enomem_without_leaks)
{
    /* no regex matchers: common/regex aborts when its PCRE2 context allocation fails */
    const char *in = "sum by (a) (rate(foo{a=\"b\", c!=\"d\"}[5m] offset 1m)) / on(a) "
                     "group_left(b) max_over_time(bar[1h:1m] @ 5)";
    size_t before = mp_alloc_used_bytes();
    bool succeeded = false;
    for (uint64_t n = 1; n < 10000 && !succeeded; n++) {
        mp_alloc_fail_at(n);
        struct query_expr *e = NULL;
        struct query_parse_error err;
        int rc = query_parse(in, strlen(in), NULL, &e, &err);
        mp_alloc_fail_at(0);
        cr_assert(rc == 0 || rc == MP_ENOMEM, "n=%llu rc=%d %s", (unsigned long long)n, rc,
                  err.msg);
        if (rc == 0) {
            succeeded = true;
            query_expr_free(e);
        }
        cr_assert_eq(mp_alloc_used_bytes(), before, "leak at n=%llu", (unsigned long long)n);
    }
    cr_assert(succeeded);
}

Test(parse, accessors_expose_the_tree)
{
    const char *in = "sum without (a) (rate(foo{b=\"c\"}[5m] offset -1m @ 10)) > bool on(x) "
                     "group_left(y) max_over_time(bar[10m:30s])";
    struct query_expr *e = NULL;
    struct query_parse_error err;
    cr_assert_eq(query_parse(in, strlen(in), NULL, &e, &err), 0, "%s", err.msg);
    cr_assert_eq(query_expr_kind(e), QUERY_BINARY);
    cr_assert_eq(query_binary_op(e), QUERY_OP_GTR);
    cr_assert(query_binary_return_bool(e));
    enum query_card card;
    bool on;
    const struct mp_str *l, *inc;
    size_t nl, ni;
    (void)card;
    const struct query_expr *lhs = query_binary_lhs(e), *rhs = query_binary_rhs(e);
    cr_assert_eq(query_expr_kind(lhs), QUERY_AGGREGATE);
    cr_assert_eq(query_aggregate_op(lhs), QUERY_AGGR_SUM);
    bool without;
    query_aggregate_grouping(lhs, &l, &nl, &without);
    cr_assert(without && nl == 1 && mp_str_eq(l[0], MP_STR_LIT("a")));
    const struct query_expr *call = query_expr_inner(lhs);
    cr_assert_eq(query_expr_kind(call), QUERY_CALL);
    cr_assert_str_eq(query_call_func(call)->name, "rate");
    cr_assert_eq(query_call_nargs(call), 1);
    const struct query_expr *ms = query_call_arg(call, 0);
    cr_assert_eq(query_expr_kind(ms), QUERY_MATRIX_SELECTOR);
    cr_assert_eq(query_expr_type(ms), QUERY_TYPE_MATRIX);
    cr_assert_eq(query_range_ms(ms), 300000);
    cr_assert_eq(query_offset_ms(ms), -60000);
    int64_t at;
    cr_assert_eq(query_at(ms, &at), QUERY_AT_TIME);
    cr_assert_eq(at, 10000);
    const struct query_expr *vs = query_expr_inner(ms);
    cr_assert(mp_str_eq(query_selector_name(vs), MP_STR_LIT("foo")));
    cr_assert_eq(query_selector_nmatchers(vs), 2);
    const struct mp_matcher *m = query_selector_matcher(vs, 1);
    cr_assert(mp_str_eq(mp_matcher_name(m), MP_STR_LIT("__name__")));
    cr_assert(mp_matcher_matches(query_selector_matcher(vs, 0), MP_STR_LIT("c")));
    cr_assert_eq(query_expr_kind(rhs), QUERY_CALL);
    rhs = query_call_arg(rhs, 0);
    cr_assert_eq(query_expr_kind(rhs), QUERY_SUBQUERY);
    cr_assert_eq(query_subquery_step_ms(rhs), 30000);
    cr_assert_eq(query_range_ms(rhs), 600000);
    cr_assert(query_binary_matching(e, &card, &on, &l, &nl, &inc, &ni));
    cr_assert(on && nl == 1 && ni == 1 && card == QUERY_CARD_MANY_TO_ONE);
    query_expr_free(e);

    /* scalar operands drop vector matching; set operators are many-to-many */
    cr_assert_eq(query_parse("1 + foo", 7, NULL, &e, NULL), 0);
    cr_assert_not(query_binary_matching(e, &card, &on, &l, &nl, &inc, &ni));
    query_expr_free(e);
    cr_assert_eq(query_parse("a or b", 6, NULL, &e, NULL), 0);
    cr_assert(query_binary_matching(e, &card, &on, &l, &nl, &inc, &ni));
    cr_assert_eq(card, QUERY_CARD_MANY_TO_MANY);
    query_expr_free(e);
    cr_assert_eq(query_parse("-1e3", 4, NULL, &e, NULL), 0);
    cr_assert_eq(query_expr_kind(e), QUERY_NUMBER);
    cr_assert(query_number_value(e) == -1000.0);
    query_expr_free(e);
    cr_assert_eq(query_parse("\"a\\x00b\"", 8, NULL, &e, NULL), 0);
    cr_assert_eq(query_expr_type(e), QUERY_TYPE_STRING);
    cr_assert(mp_str_eq(query_string_value(e), ((struct mp_str){"a\0b", 3})));
    query_expr_free(e);
}

Test(parse, deep_nesting_is_bounded)
{
    size_t n = 100000;
    char *s = mp_xmalloc(2 * n + 1);
    memset(s, '(', n);
    s[n] = '1';
    memset(s + n + 1, ')', n);
    struct query_expr *e = NULL;
    struct query_parse_error err;
    cr_assert_eq(query_parse(s, 2 * n + 1, NULL, &e, &err), MP_EPARSE);
    cr_assert(strstr(err.msg, "nesting too deep") != NULL, "%s", err.msg);
    memset(s, '-', n);
    cr_assert_eq(query_parse(s, n + 1, NULL, &e, &err), MP_EPARSE);
    mp_free(s);
}

Test(parse, function_table_lookup)
{
    const char *names[] = {"abs",        "year",         "histogram_quantile",
                           "label_join", "holt_winters", "sort_by_label_desc",
                           "info",       "time"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const struct query_function *f = query_function_get(mp_str_c(names[i]));
        cr_assert_not_null(f, "%s", names[i]);
        cr_assert_str_eq(f->name, names[i]);
    }
    cr_assert_null(query_function_get(MP_STR_LIT("Rate")));
    cr_assert_null(query_function_get(MP_STR_LIT("double_exponential_smoothing")));
    cr_assert_null(query_function_get(MP_STR_LIT("")));
    const struct query_function *f = query_function_get(MP_STR_LIT("label_join"));
    cr_assert_eq(f->variadic, -1);
    cr_assert_eq(f->arg_types[3], QUERY_TYPE_STRING);
    f = query_function_get(MP_STR_LIT("round"));
    cr_assert(f->variadic == 1 && f->nargs == 2 && f->ret == QUERY_TYPE_VECTOR);
    cr_assert(query_function_get(MP_STR_LIT("mad_over_time"))->experimental);
    cr_assert_not(query_function_get(MP_STR_LIT("rate"))->experimental);
}

Test(parse, error_positions_count_lines_and_bytes)
{
    struct {
        const char *in;
        int line, col;
        size_t pos;
    } c[] = {
        {"foo +\n\nbar baz", 3, 5, 11},
        {"sum(\n  rate(x[5m])\n  ,)", 3, 3, 21},
        {"# c\n(foo", 2, 5, 8},
        {"\"é\" + $", 1, 8, 7}, /* columns count bytes */
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        struct query_expr *e = NULL;
        struct query_parse_error err;
        cr_assert_eq(query_parse(c[i].in, strlen(c[i].in), NULL, &e, &err), MP_EPARSE);
        cr_expect(err.line == c[i].line && err.col == c[i].col && err.pos == c[i].pos,
                  "%s: %s (pos %zu)", c[i].in, err.msg, err.pos);
        char prefix[64];
        snprintf(prefix, sizeof prefix, "%d:%d: parse error: ", c[i].line, c[i].col);
        cr_expect_eq(err.detail, err.msg + strlen(prefix));
    }
}
