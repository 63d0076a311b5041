/* SPDX-License-Identifier: Apache-2.0 */
/* tests/cmd/test_selector.c: the PromQL series selector parser of meshpromtool --match, against
 * what Prometheus 2.42's ParseMetricSelector returns (messages checked with promtool). */
#include <criterion/criterion.h>
#include <string.h>

#include "cmd/selector.h"

static struct cmd_selector ok(const char *s)
{
    struct cmd_selector sel;
    struct mp_err err = {0};
    cr_assert_eq(cmd_selector_parse(s, strlen(s), &sel, &err), 0, "%s: %s", s, err.msg);
    return sel;
}

static void bad(const char *s, const char *msg)
{
    struct cmd_selector sel;
    struct mp_err err = {0};
    cr_assert_eq(cmd_selector_parse(s, strlen(s), &sel, &err), MP_EPARSE, "%s accepted", s);
    cr_assert_str_eq(err.msg, msg, "%s", s);
    cr_assert_eq(sel.n, 0);
}

static void matcher_is(const struct cmd_selector *sel, size_t i, enum mp_match_type t,
                       const char *name, const char *value, size_t vlen)
{
    cr_assert_lt(i, sel->n);
    cr_assert_eq(mp_matcher_type(sel->m[i]), t);
    struct mp_str n = mp_matcher_name(sel->m[i]), v = mp_matcher_value(sel->m[i]);
    cr_assert(mp_str_eq(n, mp_str_c(name)), "name %.*s", (int)n.len, n.ptr);
    cr_assert(v.len == vlen && memcmp(v.ptr, value, vlen) == 0, "value %.*s", (int)v.len, v.ptr);
}

Test(selector, four_ops_and_name)
{
    struct cmd_selector sel = ok("http_requests_total{a=\"b\", c!='d',e=~`f.*`, g!~\"h|i\",}");
    cr_assert_eq(sel.n, 5);
    matcher_is(&sel, 0, MP_MATCH_EQUAL, "a", "b", 1);
    matcher_is(&sel, 1, MP_MATCH_NOT_EQUAL, "c", "d", 1);
    matcher_is(&sel, 2, MP_MATCH_REGEX, "e", "f.*", 3);
    matcher_is(&sel, 3, MP_MATCH_NOT_REGEX, "g", "h|i", 3);
    matcher_is(&sel, 4, MP_MATCH_EQUAL, "__name__", "http_requests_total", 19);
    cr_assert(mp_matcher_matches(sel.m[2], mp_str_c("foo")));
    cr_assert_not(mp_matcher_matches(sel.m[2], mp_str_c("xfoo"))); /* anchored */
    cmd_selector_fini(&sel);
}

Test(selector, name_only_keywords_comments)
{
    struct cmd_selector sel = ok("  job:rate5m  # comment\n");
    cr_assert_eq(sel.n, 1);
    matcher_is(&sel, 0, MP_MATCH_EQUAL, "__name__", "job:rate5m", 10);
    cmd_selector_fini(&sel);
    sel = ok("sum{by=\"x\"}"); /* keywords the grammar takes as names; any name in braces */
    cr_assert_eq(sel.n, 2);
    cmd_selector_fini(&sel);
    sel = ok("{}");
    cr_assert_eq(sel.n, 0);
    cmd_selector_fini(&sel);
    sel = ok("{__name__=~'(?s:.*)'}"); /* promtool's default */
    cr_assert(mp_matcher_matches(sel.m[0], mp_str_c("a\nb")));
    cmd_selector_fini(&sel);
}

Test(selector, escapes)
{
    struct cmd_selector sel =
        ok("{a=\"\\\\ \\\" \\n \\t \\x41 \\101 \\u00e9 \\U0001F600\", b='\\'', c=`\\n`}");
    const char want[] = "\\ \" \n \t A A \xc3\xa9 \xf0\x9f\x98\x80";
    matcher_is(&sel, 0, MP_MATCH_EQUAL, "a", want, sizeof want - 1);
    matcher_is(&sel, 1, MP_MATCH_EQUAL, "b", "'", 1);
    matcher_is(&sel, 2, MP_MATCH_EQUAL, "c", "\\n", 2); /* raw string */
    cmd_selector_fini(&sel);
    sel = ok("{a=\"\\xff\"}"); /* \x gives the byte itself */
    matcher_is(&sel, 0, MP_MATCH_EQUAL, "a", "\xff", 1);
    cmd_selector_fini(&sel);
}

Test(selector, errors_as_prometheus)
{
    bad("", "1:1: parse error: unexpected end of input");
    bad("a{", "1:3: parse error: unexpected end of input inside braces");
    bad("a b", "1:3: parse error: unexpected identifier \"b\"");
    bad("{b}", "1:3: parse error: unexpected \"}\" in label matching, expected label matching "
               "operator");
    bad("{b='x\\\"'}", "1:4: parse error: unknown escape sequence U+0022 '\"'");
    bad("{b=\"\\q\"}", "1:4: parse error: unknown escape sequence U+0071 'q'");
    bad("{b=\"\\x4\"}", "1:4: parse error: illegal character U+0022 '\"' in escape sequence");
    bad("{b=\"\\777\"}", "1:4: parse error: escape sequence is an invalid Unicode code point");
    bad("a{b=\"\\uD800\"}", "1:5: parse error: escape sequence is an invalid Unicode code point");
    bad("nan", "1:1: parse error: unexpected number \"nan\"");
    bad("on{by=\"x\"}", "1:1: parse error: unexpected <on>");
    bad("{a:b=\"x\"}", "1:3: parse error: unexpected character inside braces: ':'");
    bad("{b=~\"(\"}", "1:2: parse error: error parsing regexp: missing closing ): `^(?:()$`");
    bad("a[5m]", "1:2: parse error: unexpected \"[\"");
    bad("a offset 5m", "1:3: parse error: unexpected <offset>");
    bad("{,}", "1:2: parse error: unexpected \",\" in label matching, expected identifier or \"}\"");
    bad("{b==\"c\"}", "1:4: parse error: unexpected \"=\" in label matching, expected string");
    bad("\"a\"", "1:1: parse error: unexpected string \"\\\"a\\\"\"");
    bad("a \"abcdefghijklmn\"", "1:3: parse error: unexpected string \"\\\"abcdefghi\"...");
    bad("{b=\"c\" d}", "1:8: parse error: unexpected identifier \"d\" in label matching, expected "
                      "\",\" or \"}\"");
    bad("a +", "1:3: parse error: unexpected <op:+>");
    bad("a sum", "1:3: parse error: unexpected <aggr:sum>");
    bad("a =~", "1:3: parse error: unexpected character after '=': '~'");
    bad("a 5m", "1:3: parse error: unexpected duration \"5m\"");
    bad("{b=\"c\"}}", "1:8: parse error: unexpected character: '}'");
    bad("{b!x}", "1:3: parse error: unexpected character after '!' inside braces: 'x'");
    bad("{b=\"\n\"}", "1:4: parse error: unterminated quoted string");
    bad("{b=`x}", "1:4: parse error: unterminated raw string");
    bad("{#}", "1:4: parse error: unexpected end of input inside braces");
    bad("{\nb=\"c\",\n x}", "3:3: parse error: unexpected \"}\" in label matching, expected "
                          "label matching operator");
}

Test(selector, nonempty_rule)
{
    struct mp_err err = {0};
    struct cmd_selector sel = ok("{a=~\".*\", b=\"\"}");
    cr_assert_eq(cmd_selector_check_nonempty(&sel, &err), MP_EPARSE);
    cr_assert_str_eq(err.msg, "vector selector must contain at least one non-empty matcher");
    cmd_selector_fini(&sel);
    sel = ok("{}");
    cr_assert_eq(cmd_selector_check_nonempty(&sel, NULL), MP_EPARSE);
    cmd_selector_fini(&sel);
    sel = ok("{a=~\".+\"}");
    cr_assert_eq(cmd_selector_check_nonempty(&sel, NULL), 0);
    cmd_selector_fini(&sel);
}
