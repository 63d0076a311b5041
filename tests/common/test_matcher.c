/* SPDX-License-Identifier: Apache-2.0 */
/* tests/common/test_matcher.c: Go/RE2 regex semantics on PCRE2, fast paths, Expand rules,
 * label matchers. Expected texts are Go regexp/syntax error strings. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/alloc.h"
#include "common/matcher.h"
#include "common/str.h"

static struct mp_regex *compile_ok(const char *pat, int flags)
{
    struct mp_regex *re = NULL;
    struct mp_err e;
    mp_err_clear(&e);
    int rc = mp_regex_compile(mp_str_c(pat), flags, &re, &e);
    cr_assert_eq(rc, 0, "compile %s: %s", pat, e.msg);
    return re;
}

static bool rx(const char *pat, int flags, const char *s)
{
    struct mp_regex *re = compile_ok(pat, flags);
    bool m = mp_regex_match(re, mp_str_c(s));
    mp_regex_destroy(re);
    return m;
}

/* Same pattern forced through PCRE2: a trailing empty group defeats every fast path. */
static struct mp_regex *compile_slow(const char *pat, int flags)
{
    char buf[512];
    snprintf(buf, sizeof buf, "(?:%s)(?:)", pat);
    struct mp_regex *re = compile_ok(buf, flags);
    cr_assert_str_eq(mp_regex_fast_kind(re), "pcre2", "%s", buf);
    return re;
}

Test(regex, anchored_both_ends)
{
    cr_assert(rx("a", 0, "a"));
    cr_assert_not(rx("a", 0, "ba"));
    cr_assert_not(rx("a", 0, "ab"));
    cr_assert_not(rx("a(?:)", 0, "ba")); /* engine path too */
    cr_assert_not(rx("a|b(?:)", 0, "ab"));
    cr_assert(rx("a|b(?:)", 0, "b"));
    cr_assert(rx("foo|bar", 0, "bar"));
    cr_assert_not(rx("foo|bar", 0, "foobar"));
    cr_assert_not(rx("a$(?:)", 0, "a\n")); /* $ is end of text, not before a final \n */
    cr_assert(rx("(?m)a$\\n^(?:)", 0, "a\n"));
}

Test(regex, empty_matching)
{
    cr_assert(rx("a*", 0, ""));
    cr_assert(rx(".*", 0, ""));
    cr_assert(rx("", 0, ""));
    cr_assert_not(rx("", 0, "x"));
    cr_assert_not(rx(".+", 0, ""));
    cr_assert(rx("a|", 0, ""));
    cr_assert(rx("(a|b)?", 0, ""));
    cr_assert_not(rx("a+", 0, ""));
}

Test(regex, dotall_vs_not)
{
    cr_assert_not(rx(".*", 0, "a\nb"));
    cr_assert(rx(".*", MP_REGEX_DOTALL, "a\nb"));
    cr_assert_not(rx("a.b(?:)", 0, "a\nb"));
    cr_assert(rx("a.b(?:)", MP_REGEX_DOTALL, "a\nb"));
    cr_assert(rx("(?s)a.b", 0, "a\nb"));
    cr_assert_not(rx("(?-s:a.b)", MP_REGEX_DOTALL, "a\nb"));
    cr_assert(rx("[^a]", 0, "\n")); /* Go classes match \n (ClassNL) */
    cr_assert(rx("foo.+", MP_REGEX_DOTALL, "foo\n"));
    cr_assert_not(rx("foo.+", 0, "foo\n"));
}

Test(regex, perl_classes_are_ascii_like_go)
{
    cr_assert(rx("\\d+", 0, "0123456789"));
    cr_assert_not(rx("\\d", 0, "\xd9\xa3")); /* ARABIC-INDIC DIGIT THREE */
    cr_assert_not(rx("\\w", 0, "\xc3\xa9"));
    cr_assert(rx("\\w+", 0, "aZ_9"));
    cr_assert(rx("\\s+", 0, " \t\n\r\f"));
    cr_assert_not(rx("\\s", 0, "\v")); /* Go's \s has no \v */
    cr_assert(rx("[\\s]", 0, "\f"));
    cr_assert_not(rx("[\\s]", 0, "\v"));
    cr_assert(rx("\\S", 0, "\v"));
    cr_assert(rx("[\\S]", 0, "\xc3\xa9"));
    cr_assert(rx("[[:space:]]", 0, "\v")); /* POSIX space has it */
    cr_assert(rx("\\pL+", 0, "\xc3\xa9t\xc3\xa9"));
    cr_assert(rx("\\p{Greek}", 0, "\xce\xb1"));
    cr_assert_not(rx("\\P{Greek}", 0, "\xce\xb1"));
    cr_assert(rx("\\p{^Greek}", 0, "a"));
    cr_assert(rx("\\p{Any}", 0, "\n"));
    cr_assert(rx(".", 0, "\xc3\xa9")); /* one rune, not one byte */
    cr_assert_not(rx("..", 0, "\xc3\xa9"));
    cr_assert(rx("\\bfoo\\b", 0, "foo"));
}

Test(regex, escapes_and_literals)
{
    cr_assert(rx("\\.", 0, "."));
    cr_assert_not(rx("\\.", 0, "x"));
    cr_assert(rx("a\\+b", 0, "a+b"));
    cr_assert(rx("\\x41\\x{42}\\103", 0, "ABC"));
    cr_assert(rx("\\0", 0, "")== false);
    cr_assert(rx("\\Qa.b*\\E+", 0, "a.b**"));
    cr_assert(rx("\\Qa.b", 0, "a.b"));
    cr_assert(rx("a{,2}", 0, "a{,2}")); /* not a repeat in Go: literal */
    cr_assert(rx("a{2", 0, "a{2"));
    cr_assert(rx("x{2,3}", 0, "xxx"));
    cr_assert_not(rx("x{2,3}", 0, "xxxx"));
    cr_assert(rx("x{1000}", 0, "") == false);
    cr_assert(rx("\\z", 0, ""));
    cr_assert(rx("\\Aab\\z", 0, "ab"));
    cr_assert(rx("(?i)abc", 0, "AbC"));
    cr_assert(rx("(?i)\xc3\xa9", 0, "\xc3\x89"));
    cr_assert(rx("(?U)(a+)(a*)", 0, "aaa"));
    cr_assert(rx("(?P<x>a)(?<y>b)", 0, "ab"));
    cr_assert(rx("^*a", 0, "a")); /* Go may repeat assertions */
    cr_assert(rx("a(?i)*", 0, "aaa")); /* the * applies to a */
    cr_assert(rx("[]a]+", 0, "]a"));
    cr_assert(rx("[a-]+", 0, "-a"));
    cr_assert(rx("[\\d-z]+", 0, "1-z"));
    cr_assert(rx("[[.a.]]", 0, ".]")); /* Go: '[' literal, not a collating element */
    cr_assert(rx("(?:)", 0, ""));
    cr_assert(rx("()", 0, ""));
}

struct bad {
    const char *pat;
    const char *msg;
};

Test(regex, rejects_what_go_rejects_with_go_text)
{
    static const struct bad cases[] = {
        {"(a", "error parsing regexp: missing closing ): `(a`"},
        {"a)", "error parsing regexp: unexpected ): `a)`"},
        {"a**", "error parsing regexp: invalid nested repetition operator: `**`"},
        {"a*+", "error parsing regexp: invalid nested repetition operator: `*+`"},
        {"a++", "error parsing regexp: invalid nested repetition operator: `++`"},
        {"a?+", "error parsing regexp: invalid nested repetition operator: `?+`"},
        {"a{2}{3}", "error parsing regexp: invalid nested repetition operator: `{2}{3}`"},
        {"a*??", "error parsing regexp: invalid nested repetition operator: `*??`"},
        {"*", "error parsing regexp: missing argument to repetition operator: `*`"},
        {"(+a)", "error parsing regexp: missing argument to repetition operator: `+`"},
        {"a|*", "error parsing regexp: missing argument to repetition operator: `*`"},
        {"{2}", "error parsing regexp: missing argument to repetition operator: `{2}`"},
        {"(?i)*", "error parsing regexp: missing argument to repetition operator: `*`"},
        {"a{1001}", "error parsing regexp: invalid repeat count: `{1001}`"},
        {"a{2,1}", "error parsing regexp: invalid repeat count: `{2,1}`"},
        {"(a{2}){501}", "error parsing regexp: invalid repeat count: `{501}`"},
        {"\\1", "error parsing regexp: invalid escape sequence: `\\1`"},
        {"(a)\\1", "error parsing regexp: invalid escape sequence: `\\1`"},
        {"a\\Z", "error parsing regexp: invalid escape sequence: `\\Z`"},
        {"\\C", "error parsing regexp: invalid escape sequence: `\\C`"},
        {"\\e", "error parsing regexp: invalid escape sequence: `\\e`"},
        {"\\x{110000}", "error parsing regexp: invalid escape sequence: `\\x{110000`"},
        {"\\8", "error parsing regexp: invalid escape sequence: `\\8`"},
        {"[\\b]", "error parsing regexp: invalid escape sequence: `\\b`"},
        {"a\\", "error parsing regexp: trailing backslash at end of expression: ``"},
        {"(?=a)", "error parsing regexp: invalid or unsupported Perl syntax: `(?=`"},
        {"(?!a)", "error parsing regexp: invalid or unsupported Perl syntax: `(?!`"},
        {"(?>a)", "error parsing regexp: invalid or unsupported Perl syntax: `(?>`"},
        {"(?#c)", "error parsing regexp: invalid or unsupported Perl syntax: `(?#`"},
        {"(?x)a", "error parsing regexp: invalid or unsupported Perl syntax: `(?x`"},
        {"(?i-)a", "error parsing regexp: invalid or unsupported Perl syntax: `(?i-)`"},
        {"(?P=n)", "error parsing regexp: invalid or unsupported Perl syntax: `(?P`"},
        {"(?'n'a)", "error parsing regexp: invalid or unsupported Perl syntax: `(?'`"},
        {"(?R)", "error parsing regexp: invalid or unsupported Perl syntax: `(?R`"},
        {"(?<=a)b", "error parsing regexp: invalid named capture: `(?<=a)b`"},
        {"(?<!a)b", "error parsing regexp: invalid named capture: `(?<!a)b`"},
        {"(?P<n-x>a)", "error parsing regexp: invalid named capture: `(?P<n-x>`"},
        {"(?P<>a)", "error parsing regexp: invalid named capture: `(?P<>`"},
        {"[a", "error parsing regexp: missing closing ]: `[a`"},
        {"[z-a]", "error parsing regexp: invalid character class range: `z-a`"},
        {"[[:foo:]]", "error parsing regexp: invalid character class range: `[:foo:]`"},
        {"\\p{Foo}", "error parsing regexp: invalid character class range: `\\p{Foo}`"},
        {"\\p{greek}", "error parsing regexp: invalid character class range: `\\p{greek}`"},
        {"a\xff", "error parsing regexp: invalid UTF-8: `\xff`"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mp_regex *re = (struct mp_regex *)1;
        struct mp_err e;
        mp_err_clear(&e);
        int rc = mp_regex_compile(mp_str_c(cases[i].pat), 0, &re, &e);
        cr_assert_eq(rc, MP_EPARSE, "%s accepted", cases[i].pat);
        cr_assert_null(re);
        cr_assert_str_eq(e.msg, cases[i].msg, "%s", cases[i].pat);
    }
    /* The wrapper must not let a pattern escape its group (Prometheus compiles ^(?:re)$). */
    struct mp_regex *re = NULL;
    cr_assert_eq(mp_regex_compile(mp_str_c("a)|(b"), 0, &re, NULL), MP_EPARSE);
}

Test(regex, accepts_go_extensions)
{
    const char *ok[] = {"(?i)a",  "(?s).",     "(?U)a+",   "(?P<name>a)", "(?<name>a)",
                        "(?i:a)", "(?i-s:a)",  "(?)",      "\\z",         "(?P<1a>x)",
                        "(?P<x>a)(?P<x>b)",    "x{1000}",  "[[:^alpha:]]", "\\pN",
                        "\\p{Han}", "[\\p{Lu}\\d]", "\\x{10FFFF}", "\\Q(\\E", "a{0}{"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        struct mp_regex *re = NULL;
        struct mp_err e;
        mp_err_clear(&e);
        cr_assert_eq(mp_regex_compile(mp_str_c(ok[i]), 0, &re, &e), 0, "%s: %s", ok[i], e.msg);
        cr_assert_str_eq(mp_regex_source(re), ok[i]);
        mp_regex_destroy(re);
    }
}

Test(regex, invalid_utf8_subject_is_one_rune_per_byte)
{
    struct mp_str bad = {"a\xff\xfe" "b", 4};
    struct mp_regex *re = compile_ok("a..b", 0);
    cr_assert(mp_regex_match(re, bad)); /* each bad byte is one U+FFFD, as in Go */
    mp_regex_destroy(re);
    re = compile_ok("a\xef\xbf\xbd+b", 0);
    cr_assert(mp_regex_match(re, bad));
    mp_regex_destroy(re);
    re = compile_ok("a.b", 0);
    cr_assert_not(mp_regex_match(re, bad));
    mp_regex_destroy(re);
    re = compile_ok(".*", 0);
    cr_assert(mp_regex_match(re, bad));
    mp_regex_destroy(re);
    re = compile_slow(".*", 0);
    cr_assert(mp_regex_match(re, bad));
    cr_assert(mp_regex_match(re, (struct mp_str){"\xed\xa0\x80", 3})); /* surrogate bytes */
    cr_assert(mp_regex_match(re, (struct mp_str){"\xc0\xaf", 2}));     /* overlong */
    mp_regex_destroy(re);
    re = compile_ok("(a)(.)(b)", 0);
    struct mp_buf out;
    mp_buf_init(&out, 0);
    cr_assert_eq(mp_regex_expand(re, (struct mp_str){"a\xff" "b", 3}, mp_str_c("[$2]"), &out), 1);
    cr_assert_eq(out.len, 3);
    cr_assert_eq(memcmp(out.data, "[\xff]", 3), 0); /* the caller's byte, not U+FFFD */
    mp_buf_fini(&out);
    mp_regex_destroy(re);
}

Test(regex, fast_paths_detected)
{
    struct {
        const char *pat;
        const char *kind;
    } cases[] = {
        {"foo", "literal"},      {"", "literal"},       {"a\\.b", "literal"},
        {"a|b|c", "set"},        {"(a|b)", "set"},      {"(?:a|bc|)", "set"},
        {"foo.*", "prefix"},     {"foo.+", "prefix"},   {".*", "prefix"},
        {".+", "prefix"},        {".*foo", "suffix"},   {".*foo.*", "contains"},
        {"fo*", "pcre2"},        {"a|b*", "pcre2"},     {"foo.*?", "pcre2"},
        {"(?i)foo", "pcre2"},    {"a.b", "pcre2"},      {"[ab]", "pcre2"},
        {"a\\d", "pcre2"},       {"\\.*", "pcre2"},     {"(a)|(b)", "pcre2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mp_regex *re = compile_ok(cases[i].pat, 0);
        cr_assert_str_eq(mp_regex_fast_kind(re), cases[i].kind, "%s", cases[i].pat);
        mp_regex_destroy(re);
    }
}

/* Generated subjects over a small alphabet that includes \n, a multi-byte rune and an invalid
 * byte, so that the fast paths' byte logic meets every case the engine distinguishes. */
static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

Test(regex, fast_paths_equal_engine_on_generated_inputs)
{
    static const char *pats[] = {
        "foo",     "",        "a|b|c",   "ab|a|",   "(fo|foo)", "(?:a\\.b|\\|)",
        "foo.*",   "foo.+",   ".*",      ".+",      ".*foo",    ".*foo.*",
        "\xc3\xa9.*", ".*\xc3\xa9", "a\nb.*", ".*\n", "a|\xc3\xa9|\n", ".*a.*",
    };
    static const char *alpha[] = {"f", "o", "a", "b", "c", ".", "|", "\n", "\xc3\xa9", "\xff",
                                  "\xc3", "foo", "ab"};
    const uint64_t seed = 0x5eed1234abcdULL;
    uint64_t x = seed;
    for (int flags = 0; flags <= MP_REGEX_DOTALL; flags++) {
        for (size_t p = 0; p < sizeof pats / sizeof pats[0]; p++) {
            struct mp_regex *fast = compile_ok(pats[p], flags);
            struct mp_regex *slow = compile_slow(pats[p], flags);
            cr_assert_str_neq(mp_regex_fast_kind(fast), "pcre2", "%s", pats[p]);
            for (int n = 0; n < 3000; n++) {
                char s[64];
                size_t len = 0;
                int parts = (int)(rng_next(&x) % 6);
                for (int k = 0; k < parts; k++) {
                    const char *a = alpha[rng_next(&x) % (sizeof alpha / sizeof alpha[0])];
                    size_t al = strlen(a);
                    memcpy(s + len, a, al);
                    len += al;
                }
                struct mp_str subj = {s, len};
                bool f = mp_regex_match(fast, subj), e = mp_regex_match(slow, subj);
                cr_assert_eq(f, e, "seed %llx pattern %s flags %d subject [%.*s]: fast %d engine %d",
                             (unsigned long long)seed, pats[p], flags, (int)len, s, f, e);
            }
            mp_regex_destroy(fast);
            mp_regex_destroy(slow);
        }
    }
}

Test(regex, set_values_and_prefix)
{
    struct mp_regex *re = compile_ok("b|a|c", 0);
    const struct mp_str *v;
    size_t n;
    cr_assert(mp_regex_set_values(re, &v, &n));
    cr_assert_eq(n, 3);
    cr_assert(mp_str_eq(v[0], MP_STR_LIT("b")) && mp_str_eq(v[2], MP_STR_LIT("c")));
    struct mp_str pre;
    cr_assert_not(mp_regex_prefix(re, &pre));
    mp_regex_destroy(re);
    re = compile_ok("api_.*", 0);
    cr_assert_not(mp_regex_set_values(re, &v, &n));
    cr_assert(mp_regex_prefix(re, &pre));
    cr_assert(mp_str_eq(pre, MP_STR_LIT("api_")));
    mp_regex_destroy(re);
    /* Many alternatives use binary search; same answers. */
    char big[4096];
    size_t off = 0;
    for (int i = 0; i < 100; i++)
        off += (size_t)snprintf(big + off, sizeof big - off, "%sv%d", i ? "|" : "", i * 7);
    re = compile_ok(big, 0);
    cr_assert_str_eq(mp_regex_fast_kind(re), "set");
    for (int i = 0; i < 800; i++) {
        char s[16];
        snprintf(s, sizeof s, "v%d", i);
        cr_assert_eq(mp_regex_match(re, mp_str_c(s)), i % 7 == 0 && i < 700, "%s", s);
    }
    mp_regex_destroy(re);
}

static void expect_expand(const char *pat, const char *s, const char *tmpl, int rc_want,
                          const char *want)
{
    struct mp_regex *re = compile_ok(pat, 0);
    struct mp_buf out;
    mp_buf_init(&out, 0);
    int rc = mp_regex_expand(re, mp_str_c(s), mp_str_c(tmpl), &out);
    cr_assert_eq(rc, rc_want, "%s on %s with %s: rc %d", pat, s, tmpl, rc);
    cr_assert_str_eq(out.len ? out.data : "", want, "%s on %s with %s", pat, s, tmpl);
    mp_buf_fini(&out);
    mp_regex_destroy(re);
}

Test(regex, expand_follows_go_rules)
{
    expect_expand("(.*)", "abc", "$1", 1, "abc");
    expect_expand("(a)(b)", "ab", "$2$1", 1, "ba");
    expect_expand("(a)", "a", "$1x", 1, "");           /* group "1x" does not exist */
    expect_expand("(a)", "a", "${1}x", 1, "ax");
    expect_expand("(a)", "a", "$$1", 1, "$1");
    expect_expand("(a)", "a", "$", 1, "$");            /* malformed: $ kept */
    expect_expand("(a)", "a", "${1", 1, "${1");        /* missing brace: $ kept */
    expect_expand("(a)", "a", "$-", 1, "$-");
    expect_expand("(a)", "a", "${}", 1, "${}");
    expect_expand("(a)", "a", "$0:$00:$01", 1, "a::"); /* leading zeros are names */
    expect_expand("(a)", "a", "$9", 1, "");           /* missing group */
    expect_expand("(?P<host>[^:]+):(?P<port>\\d+)", "h:80", "$port/${host}x", 1, "80/hx");
    expect_expand("(?P<host>[^:]+):(\\d+)", "h:80", "$hostx|$2", 1, "|80");
    expect_expand("(a)|(b)", "b", "[$1][$2]", 1, "[][b]"); /* non-participating: empty */
    expect_expand("(?P<x>a)|(?P<x>b)", "b", "$x", 1, "b"); /* first participating name */
    expect_expand("(a)", "a", "$1\xc3\xa9", 1, "");    /* name runs over Unicode letters */
    expect_expand("(a)", "a", "$1\xe2\x82\xac", 1, "a\xe2\x82\xac"); /* euro sign is not one */
    expect_expand("a", "b", "$0", 0, "");
    expect_expand("(a)", "ab", "$1", 0, "");           /* anchored: no partial match */
}

Test(regex, replace_all_labelmap)
{
    struct mp_regex *re = compile_ok("__meta_kubernetes_pod_label_(.+)", 0);
    struct mp_buf out;
    mp_buf_init(&out, 0);
    cr_assert_eq(mp_regex_replace_all(re, mp_str_c("__meta_kubernetes_pod_label_app"),
                                      mp_str_c("$1"), &out), 1);
    cr_assert_str_eq(out.data, "app");
    mp_buf_reset(&out);
    cr_assert_eq(mp_regex_replace_all(re, mp_str_c("job"), mp_str_c("$1"), &out), 0);
    cr_assert_str_eq(out.data, "job");
    mp_buf_reset(&out);
    mp_regex_destroy(re);
    re = compile_ok("(.*)", 0);
    cr_assert_eq(mp_regex_replace_all(re, mp_str_c(""), mp_str_c("x${1}y"), &out), 1);
    cr_assert_str_eq(out.data, "xy");
    mp_buf_fini(&out);
    /* A full buffer is an error, not a silent truncation. */
    mp_buf_init(&out, 2);
    cr_assert_eq(mp_regex_replace_all(re, mp_str_c("abc"), mp_str_c("$1"), &out), MP_ELIMIT);
    mp_buf_fini(&out);
    mp_regex_destroy(re);
}

Test(regex, shared_between_threads_via_per_thread_scratch)
{
    /* Many groups exceed the default scratch size; must still work. */
    char pat[1024] = "";
    for (int i = 0; i < 60; i++)
        strcat(pat, "(a)");
    struct mp_regex *re = compile_ok(pat, 0);
    cr_assert_eq(mp_regex_groups(re), 60);
    char s[61];
    memset(s, 'a', 60);
    s[60] = '\0';
    struct mp_buf out;
    mp_buf_init(&out, 0);
    cr_assert_eq(mp_regex_expand(re, mp_str_c(s), mp_str_c("${60}${59}"), &out), 1);
    cr_assert_str_eq(out.data, "aa");
    mp_buf_fini(&out);
    mp_regex_destroy(re);
}

Test(matcher, each_type)
{
    struct {
        enum mp_match_type t;
        const char *v, *s;
        bool want;
    } cases[] = {
        {MP_MATCH_EQUAL, "a", "a", true},        {MP_MATCH_EQUAL, "a", "ab", false},
        {MP_MATCH_EQUAL, "", "", true},          {MP_MATCH_NOT_EQUAL, "a", "a", false},
        {MP_MATCH_NOT_EQUAL, "a", "b", true},    {MP_MATCH_REGEX, "a.*", "abc", true},
        {MP_MATCH_REGEX, "a.*", "bab", false},   {MP_MATCH_NOT_REGEX, "a.*", "abc", false},
        {MP_MATCH_NOT_REGEX, "a.*", "ba", true}, {MP_MATCH_REGEX, "a|b", "b", true},
        {MP_MATCH_REGEX, ".*", "x\ny", false}, /* 2.55: dot does not match newline */
        {MP_MATCH_EQUAL, "a.*", "abc", false},   /* = is not a regex */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mp_matcher *m = NULL;
        cr_assert_eq(mp_matcher_create(cases[i].t, MP_STR_LIT("job"), mp_str_c(cases[i].v), &m,
                                       NULL), 0);
        cr_assert_eq(mp_matcher_matches(m, mp_str_c(cases[i].s)), cases[i].want, "%zu", i);
        cr_assert_eq(mp_matcher_type(m), cases[i].t);
        cr_assert(mp_str_eq(mp_matcher_name(m), MP_STR_LIT("job")));
        cr_assert(mp_str_eq(mp_matcher_value(m), mp_str_c(cases[i].v)));
        mp_matcher_destroy(m);
    }
    cr_assert_str_eq(mp_match_type_str(MP_MATCH_NOT_REGEX), "!~");
    cr_assert_str_eq(mp_match_type_str(MP_MATCH_EQUAL), "=");
}

Test(matcher, matches_empty)
{
    struct {
        enum mp_match_type t;
        const char *v;
        bool empty;
    } cases[] = {
        {MP_MATCH_EQUAL, "", true},       {MP_MATCH_EQUAL, "a", false},
        {MP_MATCH_NOT_EQUAL, "", false},  {MP_MATCH_NOT_EQUAL, "a", true},
        {MP_MATCH_REGEX, ".*", true},     {MP_MATCH_REGEX, ".+", false},
        {MP_MATCH_REGEX, "a*", true},     {MP_MATCH_REGEX, "", true},
        {MP_MATCH_REGEX, "a|", true},     {MP_MATCH_NOT_REGEX, ".*", false},
        {MP_MATCH_NOT_REGEX, "a", true},  {MP_MATCH_NOT_REGEX, "", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mp_matcher *m = NULL;
        cr_assert_eq(mp_matcher_create(cases[i].t, MP_STR_LIT("l"), mp_str_c(cases[i].v), &m,
                                       NULL), 0);
        cr_assert_eq(mp_matcher_matches_empty(m), cases[i].empty, "%s%s", mp_match_type_str(cases[i].t),
                     cases[i].v);
        mp_matcher_destroy(m);
    }
}

Test(matcher, invalid_regex_is_reported)
{
    struct mp_matcher *m = (struct mp_matcher *)1;
    struct mp_err e;
    mp_err_clear(&e);
    cr_assert_eq(mp_matcher_create(MP_MATCH_REGEX, MP_STR_LIT("a"), MP_STR_LIT("(x"), &m, &e),
                 MP_EPARSE);
    cr_assert_null(m);
    cr_assert_str_eq(e.msg, "error parsing regexp: missing closing ): `(x`");
    /* = and != never compile their value */
    cr_assert_eq(mp_matcher_create(MP_MATCH_EQUAL, MP_STR_LIT("a"), MP_STR_LIT("(x"), &m, NULL), 0);
    cr_assert_null(mp_matcher_regex(m));
    mp_matcher_destroy(m);
    mp_matcher_destroy(NULL);
}

Test(matcher, set_values_and_prefix_for_the_index)
{
    struct mp_matcher *m = NULL;
    const struct mp_str *v;
    size_t n;
    struct mp_str pre;
    cr_assert_eq(mp_matcher_create(MP_MATCH_EQUAL, MP_STR_LIT("job"), MP_STR_LIT("api"), &m, NULL), 0);
    cr_assert(mp_matcher_set_values(m, &v, &n));
    cr_assert(n == 1 && mp_str_eq(v[0], MP_STR_LIT("api")));
    mp_matcher_destroy(m);
    cr_assert_eq(mp_matcher_create(MP_MATCH_REGEX, MP_STR_LIT("job"), MP_STR_LIT("api|db"), &m,
                                   NULL), 0);
    cr_assert(mp_matcher_set_values(m, &v, &n));
    cr_assert(n == 2 && mp_str_eq(v[1], MP_STR_LIT("db")));
    cr_assert_not(mp_matcher_prefix(m, &pre));
    mp_matcher_destroy(m);
    cr_assert_eq(mp_matcher_create(MP_MATCH_REGEX, MP_STR_LIT("job"), MP_STR_LIT("api.*"), &m,
                                   NULL), 0);
    cr_assert_not(mp_matcher_set_values(m, &v, &n));
    cr_assert(mp_matcher_prefix(m, &pre) && mp_str_eq(pre, MP_STR_LIT("api")));
    mp_matcher_destroy(m);
    cr_assert_eq(mp_matcher_create(MP_MATCH_NOT_EQUAL, MP_STR_LIT("job"), MP_STR_LIT("x"), &m,
                                   NULL), 0);
    cr_assert_not(mp_matcher_set_values(m, &v, &n));
    mp_matcher_destroy(m);
}

Test(matcher, relabel_flags_keep_dot_off_newline)
{
    struct mp_matcher *m = NULL;
    cr_assert_eq(mp_matcher_create_flags(MP_MATCH_REGEX, MP_STR_LIT("a"), MP_STR_LIT(".*"), 0, &m,
                                         NULL), 0);
    cr_assert_not(mp_matcher_matches(m, MP_STR_LIT("x\ny")));
    cr_assert(mp_matcher_matches(m, MP_STR_LIT("xy")));
    mp_matcher_destroy(m);
}

Test(matcher, default_regex_dot_excludes_newline_as_prometheus_2_55)
{
    struct mp_matcher *m;
    cr_assert_eq(mp_matcher_create(MP_MATCH_REGEX, MP_STR_LIT("a"), MP_STR_LIT("a.b"), &m, NULL), 0);
    cr_assert(mp_matcher_matches(m, MP_STR_LIT("axb")));
    cr_assert_not(mp_matcher_matches(m, MP_STR_LIT("a\nb")));
    mp_matcher_destroy(m);
    cr_assert_eq(mp_matcher_create(MP_MATCH_NOT_REGEX, MP_STR_LIT("a"), MP_STR_LIT(".*"), &m, NULL), 0);
    cr_assert(mp_matcher_matches(m, MP_STR_LIT("x\ny")), "!~ .* must keep values with a newline");
    mp_matcher_destroy(m);
}

/* The first regex of the process is compiled under the allocation-failure hook: the hook's
 * failure gives MP_ENOMEM (or, once the process contexts exist, a clean retry), never an
 * abort from initialising PCRE2. Runs in its own process (Criterion forks per test). */
Test(matcher, first_regex_under_failure_injection)
{
    struct mp_matcher *m = NULL;
    int rc = 0;
    for (uint64_t k = 1; k < 50; k++) {
        mp_alloc_fail_at(k);
        rc = mp_matcher_create(MP_MATCH_REGEX, mp_str_c("a"), mp_str_c("b.*c"), &m, NULL);
        mp_alloc_fail_at(0);
        if (rc == 0)
            break;
        cr_assert_eq(rc, MP_ENOMEM, "k=%llu rc=%d", (unsigned long long)k, rc);
    }
    cr_assert_eq(rc, 0);
    cr_assert(mp_matcher_matches(m, mp_str_c("bxc")));
    mp_matcher_destroy(m);
}
