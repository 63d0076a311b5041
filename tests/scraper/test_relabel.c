/* SPDX-License-Identifier: Apache-2.0 */
/* tests/scraper/test_relabel.c: relabeling (spec protocols.md 3), target labels and URL
 * (2.1), MD5 (RFC 1321 appendix A.5), and the Linkerd linkerd-proxy job of kubernetes-sd.md
 * 3.3 run on the discovered labels of 3.2. Rules are loaded through configs/ exactly as a
 * prometheus.yml would give them, so defaults and regex anchoring come from the loader. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "configs/config.h"
#include "scraper/md5.h"
#include "scraper/scraper.h"

/* A config with one job "t" whose relabel_configs are the given flow-style rule lines
 * (each "  - {...}\n") and whose other keys are `extra` (lines indented two spaces). */
static struct cfg_config *load(const char *extra, const char *rules)
{
    char lines[4096];
    if (rules) {
        snprintf(lines, sizeof lines, "\n%s", rules);
        rules = lines;
    }
    char yaml[8192];
    snprintf(yaml, sizeof yaml,
             "global: {scrape_interval: 30s, scrape_timeout: 10s}\n"
             "scrape_configs:\n- job_name: t\n  static_configs: [{targets: ['x:1']}]\n%s"
             "  relabel_configs:%s",
             extra ? extra : "", rules ? rules : " []\n");
    struct cfg_config *cfg = NULL;
    struct mp_err err = {0};
    int rc = cfg_config_load_buf("test.yml", yaml, strlen(yaml), &cfg, &err);
    cr_assert_eq(rc, 0, "load: %s\n%s", err.msg, yaml);
    return cfg;
}

/* Label set from name, value, ..., NULL. */
static struct mp_labels *mk(const char *first, ...)
{
    struct mp_label l[64];
    size_t n = 0;
    va_list ap;
    va_start(ap, first);
    for (const char *name = first; name; name = va_arg(ap, const char *)) {
        cr_assert_lt(n, 64);
        l[n].name = mp_str_c(name);
        l[n].value = mp_str_c(va_arg(ap, const char *));
        n++;
    }
    va_end(ap);
    struct mp_labels *ls = NULL;
    cr_assert_eq(mp_labels_create(l, n, &ls, NULL), 0);
    return ls;
}

static char *fmt(const struct mp_labels *ls)
{
    struct mp_buf b;
    mp_buf_init(&b, 0);
    cr_assert_eq(mp_labels_format(ls, &b), 0);
    return mp_buf_take(&b, NULL);
}

/* Runs the rules on in (released) and returns the formatted result, or "DROPPED". */
static char *run(const char *rules, struct mp_labels *in)
{
    struct cfg_config *cfg = load(NULL, rules);
    struct mp_labels *out = NULL;
    bool keep = false;
    cr_assert_eq(scrape_relabel_labels(&cfg->scrape_configs[0].relabel_configs, in, &out, &keep),
                 0);
    char *s;
    if (keep) {
        s = fmt(out);
    } else {
        cr_assert_null(out);
        s = mp_xmalloc(8);
        memcpy(s, "DROPPED", 8);
    }
    mp_labels_release(out);
    mp_labels_release(in);
    cfg_config_destroy(cfg);
    return s;
}

#define EXPECT(rules, in, want)                                                                    \
    do {                                                                                           \
        char *got_ = run(rules, in);                                                               \
        cr_expect_str_eq(got_, want, "rules:\n%s", rules);                                         \
        mp_free(got_);                                                                             \
    } while (0)

/* ---- MD5 ----------------------------------------------------------------------------------- */

static void md5_hex(const char *s, char out[33])
{
    uint8_t d[16];
    scrape_md5(s, strlen(s), d);
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

Test(relabel, md5_rfc1321_test_suite)
{
    static const char *const v[][2] = {
        {"", "d41d8cd98f00b204e9800998ecf8427e"},
        {"a", "0cc175b9c0f1b6a831c399e269772661"},
        {"abc", "900150983cd24fb0d6963f7d28e17f72"},
        {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
        {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
        {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
         "d174ab98d277d9f5a5611c2c9f419d9f"},
        {"1234567890123456789012345678901234567890123456789012345678901234567890123456789"
         "0",
         "57edf4a22be3c955ac49da2e2107b67a"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char hex[33];
        md5_hex(v[i][0], hex);
        cr_expect_str_eq(hex, v[i][1], "MD5(\"%s\")", v[i][0]);
    }
}

Test(relabel, md5_padding_boundaries)
{
    /* 55, 56 and 64 bytes: the length still fits the last block, needs one more, or the
     * message is exactly one block (values from Python's hashlib). */
    char s[65];
    memset(s, 'a', 64);
    s[64] = '\0';
    char hex[33];
    s[55] = '\0';
    md5_hex(s, hex);
    cr_expect_str_eq(hex, "ef1772b6dff9a122358552954ad0df65");
    s[55] = 'a';
    s[56] = '\0';
    md5_hex(s, hex);
    cr_expect_str_eq(hex, "3b0c8ac703f828b04c6c197006d17218");
    s[56] = 'a';
    md5_hex(s, hex);
    cr_expect_str_eq(hex, "014842d480b571495a4a0363793f7367");
}

/* ---- replace ------------------------------------------------------------------------------- */

Test(relabel, replace_defaults_copy_the_joined_value)
{
    EXPECT("  - {source_labels: [a], target_label: b}\n", mk("a", "x", NULL), "{a=\"x\", b=\"x\"}");
    /* missing source labels join as "", default separator ";" */
    EXPECT("  - {source_labels: [a, missing, c], target_label: t}\n", mk("a", "1", "c", "3", NULL),
           "{a=\"1\", c=\"3\", t=\"1;;3\"}");
    EXPECT("  - {source_labels: [a, missing, c], separator: '-', target_label: t}\n",
           mk("a", "1", "c", "3", NULL), "{a=\"1\", c=\"3\", t=\"1--3\"}");
    EXPECT("  - {source_labels: [a, c], separator: '', target_label: t}\n",
           mk("a", "1", "c", "3", NULL), "{a=\"1\", c=\"3\", t=\"13\"}");
}

Test(relabel, replace_empty_result_deletes_the_target)
{
    /* Linkerd rule 4: an absent source, the default regex matches "", $1 is "" */
    EXPECT("  - {source_labels: [nope], target_label: t}\n", mk("t", "old", "z", "1", NULL),
           "{z=\"1\"}");
    /* no source labels at all: the value is "" too */
    EXPECT("  - {target_label: t, replacement: fixed}\n", mk("z", "1", NULL),
           "{t=\"fixed\", z=\"1\"}");
    EXPECT("  - {source_labels: [z], regex: '(.*)', replacement: '', target_label: z}\n",
           mk("z", "1", NULL), "{}");
}

Test(relabel, replace_regex_is_fully_anchored)
{
    EXPECT("  - {source_labels: [a], regex: 'b', target_label: t, replacement: hit}\n",
           mk("a", "abc", NULL), "{a=\"abc\"}");
    EXPECT("  - {source_labels: [a], regex: 'a|abc', target_label: t, replacement: hit}\n",
           mk("a", "abc", NULL), "{a=\"abc\", t=\"hit\"}");
    EXPECT("  - {source_labels: [a], regex: '^abc$', target_label: t, replacement: hit}\n",
           mk("a", "abc", NULL), "{a=\"abc\", t=\"hit\"}");
    /* a null regex is the empty regex: it matches only "" */
    EXPECT("  - {source_labels: [a], regex: null, target_label: t, replacement: hit}\n",
           mk("a", "abc", NULL), "{a=\"abc\"}");
    EXPECT("  - {source_labels: [b], regex: null, target_label: t, replacement: hit}\n",
           mk("a", "abc", NULL), "{a=\"abc\", t=\"hit\"}");
}

Test(relabel, replace_expansion_follows_go_expand)
{
    struct {
        const char *repl, *want;
    } c[] = {
        {"$1", "host"},
        {"${1}", "host"},
        {"${1}x", "hostx"},
        {"$1x", ""}, /* group "1x" does not exist: "" deletes t */
        {"$2:$1", "9100:host"},
        {"$h-$p", "host-9100"},
        {"${h}_${p}", "host_9100"},
        {"$h_$p", "9100"}, /* $h_ is the (unknown) group "h_" */
        {"$$1", "$1"},
        {"a$$", "a$"},
        {"$9", ""},           /* no such group */
        {"${3}none", "none"}, /* the unset optional group is "" */
        {"$3none", ""},       /* group "3none" */
        {"${1", "${1"},       /* an invalid reference is copied as text */
        {"$", "$"},
        {"x$-y", "x$-y"},
        {"$0", "host:9100"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char rules[256];
        snprintf(rules, sizeof rules,
                 "  - {source_labels: [a], regex: '(?P<h>[^:]+):(?P<p>\\d+)(x)?', "
                 "target_label: t, replacement: '%s'}\n",
                 c[i].repl);
        char want[128];
        if (c[i].want[0])
            snprintf(want, sizeof want, "{a=\"host:9100\", t=\"%s\"}", c[i].want);
        else
            snprintf(want, sizeof want, "{a=\"host:9100\"}");
        EXPECT(rules, mk("a", "host:9100", "t", "old", NULL), want);
    }
}

Test(relabel, rules_rewriting_their_own_source_label)
{
    /* one source label is read in place from the builder; the set comes last */
    EXPECT("  - {source_labels: [a], target_label: a, replacement: 'x${1}x'}\n"
           "  - {source_labels: [a], target_label: a, action: uppercase}\n"
           "  - {source_labels: [a], modulus: 5, target_label: a, action: hashmod}\n",
           mk("a", "1", NULL), "{a=\"2\"}"); /* md5("X1X") ends 92e3d0391e9efd0d: mod 5 = 2 */
}

Test(relabel, replace_target_label_with_references)
{
    EXPECT("  - {source_labels: [a], regex: '(\\w+)=(.*)', target_label: 'x_${1}', "
           "replacement: '$2'}\n",
           mk("a", "env=prod", NULL), "{a=\"env=prod\", x_env=\"prod\"}");
    /* the expanded target is not a valid label name: no change (2.55; 2.42 deleted "$1") */
    EXPECT("  - {source_labels: [a], regex: '(.*)', target_label: '$1', replacement: v}\n",
           mk("a", "9lives", NULL), "{a=\"9lives\"}");
    EXPECT("  - {source_labels: [a], regex: '(.*)', target_label: '$1', replacement: v}\n",
           mk("a", "ok", NULL), "{a=\"ok\", ok=\"v\"}");
    /* an unknown group makes the target empty, which is not a name either */
    EXPECT("  - {source_labels: [a], regex: '(.*)', target_label: '$2', replacement: v}\n",
           mk("a", "ok", NULL), "{a=\"ok\"}");
}

/* ---- keep / drop / keepequal / dropequal --------------------------------------------------- */

Test(relabel, keep_and_drop)
{
    EXPECT("  - {source_labels: [a], regex: 'x.*', action: keep}\n", mk("a", "xyz", NULL),
           "{a=\"xyz\"}");
    EXPECT("  - {source_labels: [a], regex: 'y', action: keep}\n", mk("a", "xyz", NULL), "DROPPED");
    EXPECT("  - {source_labels: [a], regex: 'y', action: drop}\n", mk("a", "xyz", NULL),
           "{a=\"xyz\"}");
    EXPECT("  - {source_labels: [a], regex: 'x.*', action: drop}\n", mk("a", "xyz", NULL),
           "DROPPED");
    /* a missing source is "": keep with the default regex keeps, drop with it drops */
    EXPECT("  - {source_labels: [m], action: keep}\n", mk("a", "1", NULL), "{a=\"1\"}");
    EXPECT("  - {source_labels: [m], regex: '.+', action: keep}\n", mk("a", "1", NULL), "DROPPED");
    EXPECT("  - {source_labels: [a, b], regex: '1;2', action: keep}\n",
           mk("a", "1", "b", "2", NULL), "{a=\"1\", b=\"2\"}");
    /* rules stop at the first rejection */
    EXPECT("  - {source_labels: [a], regex: '1', action: drop}\n"
           "  - {target_label: never, replacement: set}\n",
           mk("a", "1", NULL), "DROPPED");
}

Test(relabel, keepequal_and_dropequal)
{
    EXPECT("  - {source_labels: [a], target_label: b, action: keepequal}\n",
           mk("a", "1", "b", "1", NULL), "{a=\"1\", b=\"1\"}");
    EXPECT("  - {source_labels: [a], target_label: b, action: keepequal}\n",
           mk("a", "1", "b", "2", NULL), "DROPPED");
    EXPECT("  - {source_labels: [a], target_label: b, action: dropequal}\n",
           mk("a", "1", "b", "1", NULL), "DROPPED");
    EXPECT("  - {source_labels: [a], target_label: b, action: dropequal}\n",
           mk("a", "1", "b", "2", NULL), "{a=\"1\", b=\"2\"}");
    /* both missing: "" == "" */
    EXPECT("  - {source_labels: [m], target_label: n, action: keepequal}\n", mk("a", "1", NULL),
           "{a=\"1\"}");
    EXPECT("  - {source_labels: [m], target_label: a, action: keepequal}\n", mk("a", "1", NULL),
           "DROPPED");
    EXPECT("  - {source_labels: [a, a], target_label: b, action: keepequal}\n",
           mk("a", "1", "b", "1;1", NULL), "{a=\"1\", b=\"1;1\"}");
}

/* ---- hashmod ------------------------------------------------------------------------------- */

Test(relabel, hashmod_uses_the_last_8_md5_bytes)
{
    /* md5("127.0.0.1:18123") = 342e5a4d6d53945c d570417576ab48ae;
     * 0xd570417576ab48ae = 15379864700228159662, mod 7 = 6 (the spec's verified vector) */
    EXPECT("  - {source_labels: [__address__], modulus: 7, target_label: h, action: hashmod}\n",
           mk("__address__", "127.0.0.1:18123", NULL),
           "{__address__=\"127.0.0.1:18123\", h=\"6\"}");
    /* md5("") = d41d8cd98f00b204 e9800998ecf8427e = 16825458760271544958, mod 10 = 8 */
    EXPECT("  - {source_labels: [m], modulus: 10, target_label: h, action: hashmod}\n",
           mk("a", "1", NULL), "{a=\"1\", h=\"8\"}");
    /* md5("a;b") = 45d17989299efc43 21960bf46f2ebd0a = 2420134994223480074, mod 1000 = 74 */
    EXPECT("  - {source_labels: [a, b], modulus: 1000, target_label: h, action: hashmod}\n",
           mk("a", "a", "b", "b", NULL), "{a=\"a\", b=\"b\", h=\"74\"}");
    /* md5("10.0.0.1:9100") ends 4cfeac4083628b3d = 5548061184049187645, mod 4 = 1; then the
     * sharding example of 3.5 keeps shard 1 only */
    EXPECT("  - {source_labels: [__address__], modulus: 4, target_label: __tmp_hash, "
           "action: hashmod}\n"
           "  - {source_labels: [__tmp_hash], regex: '1', action: keep}\n",
           mk("__address__", "10.0.0.1:9100", NULL),
           "{__address__=\"10.0.0.1:9100\", __tmp_hash=\"1\"}");
    EXPECT("  - {source_labels: [__address__], modulus: 4, target_label: __tmp_hash, "
           "action: hashmod}\n"
           "  - {source_labels: [__tmp_hash], regex: '2', action: keep}\n",
           mk("__address__", "10.0.0.1:9100", NULL), "DROPPED");
    /* the largest modulus: the hash itself */
    EXPECT("  - {source_labels: [a], modulus: 18446744073709551615, target_label: h, "
           "action: hashmod}\n",
           mk("a", "127.0.0.1:18123", NULL), "{a=\"127.0.0.1:18123\", h=\"15379864700228159662\"}");
}

/* ---- labelmap / labeldrop / labelkeep ------------------------------------------------------ */

Test(relabel, labelmap_copies_with_groups)
{
    EXPECT("  - {action: labelmap, regex: '__meta_(.+)'}\n",
           mk("__meta_a", "1", "__meta_b_c", "2", "x", "3", NULL),
           "{__meta_a=\"1\", __meta_b_c=\"2\", a=\"1\", b_c=\"2\", x=\"3\"}");
    EXPECT("  - {action: labelmap, regex: 'k_([a-z]+)_([a-z]+)', replacement: '${2}_$1'}\n",
           mk("k_ab_cd", "v", "k_x", "w", NULL), "{cd_ab=\"v\", k_ab_cd=\"v\", k_x=\"w\"}");
    /* labelmap overwrites an existing label of the new name (the Linkerd rule-12 edge) */
    EXPECT("  - {action: labelmap, regex: 'l_(.+)'}\n", mk("job", "orig", "l_job", "pod", NULL),
           "{job=\"pod\", l_job=\"pod\"}");
    /* anchored on the whole name: "xl_a" does not match l_(.+) */
    EXPECT("  - {action: labelmap, regex: 'l_(.+)'}\n", mk("xl_a", "1", NULL), "{xl_a=\"1\"}");
    /* a fixed replacement: every match writes the same name; the last (in name order) wins */
    EXPECT("  - {action: labelmap, regex: 'l_.*', replacement: same}\n",
           mk("l_a", "1", "l_b", "2", NULL), "{l_a=\"1\", l_b=\"2\", same=\"2\"}");
}

Test(relabel, labeldrop_and_labelkeep)
{
    EXPECT("  - {action: labeldrop, regex: '__meta_.*|tmp'}\n",
           mk("__meta_a", "1", "tmp", "2", "tmpx", "3", NULL), "{tmpx=\"3\"}");
    EXPECT("  - {action: labelkeep, regex: 'a|b'}\n", mk("a", "1", "b", "2", "ab", "3", NULL),
           "{a=\"1\", b=\"2\"}");
    EXPECT("  - {action: labelkeep, regex: 'zzz'}\n", mk("a", "1", NULL), "{}");
}

/* ---- lowercase / uppercase ----------------------------------------------------------------- */

Test(relabel, lowercase_and_uppercase)
{
    EXPECT("  - {source_labels: [a, b], target_label: l, action: lowercase}\n",
           mk("a", "MiXeD", "b", "X-1", NULL), "{a=\"MiXeD\", b=\"X-1\", l=\"mixed;x-1\"}");
    EXPECT("  - {source_labels: [a], target_label: u, action: uppercase}\n",
           mk("a", "MiXeD_9", NULL), "{a=\"MiXeD_9\", u=\"MIXED_9\"}");
    /* empty value deletes the target */
    EXPECT("  - {source_labels: [m], target_label: a, action: lowercase}\n", mk("a", "1", NULL),
           "{}");
    /* Unicode simple case mapping, as Go's strings.ToLower/ToUpper */
    EXPECT("  - {source_labels: [a], target_label: l, action: lowercase}\n",
           mk("a", "\xc3\x84\xc3\x96Z\xce\xa3", NULL), /* ÄÖZΣ */
           "{a=\"ÄÖZΣ\", l=\"äözσ\"}");
    EXPECT("  - {source_labels: [a], target_label: u, action: uppercase}\n",
           mk("a",
              "stra\xc3\x9f"
              "e \xc3\xa9",
              NULL), /* straße é: ß has no simple upper */
           "{a=\"straße é\", u=\"STRAßE É\"}");
}

Test(relabel, case_mapping_replaces_invalid_utf8_like_go)
{
    struct cfg_config *cfg = load(NULL, "  - {source_labels: [a], target_label: l, "
                                        "action: lowercase}\n");
    struct mp_labels *in = mk("a", "A\xff\xc3\x84", NULL);
    struct mp_labels *out = NULL;
    bool keep = false;
    cr_assert_eq(scrape_relabel_labels(&cfg->scrape_configs[0].relabel_configs, in, &out, &keep),
                 0);
    cr_assert(keep);
    struct mp_str l = mp_labels_get(out, MP_STR_LIT("l"));
    cr_expect(mp_str_eq(l, MP_STR_LIT("a\xef\xbf\xbd\xc3\xa4")), "got %.*s", (int)l.len, l.ptr);
    mp_labels_release(out);
    mp_labels_release(in);
    cfg_config_destroy(cfg);
}

Test(relabel, process_on_a_builder_and_no_rules)
{
    struct mp_labels *in = mk("a", "1", NULL);
    struct mp_labels_builder *b = mp_labels_builder_create();
    mp_labels_builder_reset(b, in);
    bool keep = false;
    cr_assert_eq(scrape_relabel_process(NULL, b, &keep), 0);
    cr_assert(keep);
    struct cfg_relabels none = {NULL, 0};
    cr_assert_eq(scrape_relabel_process(&none, b, &keep), 0);
    cr_assert(keep);
    struct mp_labels *out = NULL;
    cr_assert_eq(mp_labels_builder_labels(b, &out, NULL), 0);
    cr_expect(mp_labels_equal(out, in));
    mp_labels_release(out);
    mp_labels_builder_destroy(b);
    mp_labels_release(in);
}

/* ---- target labels and URL (protocols.md 2.1) ---------------------------------------------- */

struct tres {
    int rc;
    char labels[1024];
    char url[512];
    char full[2048];
    int64_t interval_ms, timeout_ms;
    struct mp_err err;
};

static struct tres target(const char *extra, const char *rules, struct mp_labels *disc)
{
    struct cfg_config *cfg = load(extra, rules);
    struct tres r = {0};
    struct mp_labels *final = NULL;
    struct scrape_target_url u;
    r.rc = scrape_target_labels(disc, &cfg->scrape_configs[0], &final, &u, &r.err);
    if (r.rc == 0) {
        char *s = fmt(final);
        snprintf(r.labels, sizeof r.labels, "%s", s);
        mp_free(s);
        s = fmt(u.full);
        snprintf(r.full, sizeof r.full, "%s", s);
        mp_free(s);
        cr_assert_eq(strlen(u.str), u.len);
        snprintf(r.url, sizeof r.url, "%s", u.str);
        r.interval_ms = u.interval_ms;
        r.timeout_ms = u.timeout_ms;
    } else {
        cr_assert_null(final);
        cr_assert_null(u.str);
        cr_assert_null(u.full);
    }
    mp_labels_release(final);
    scrape_target_url_fini(&u);
    mp_labels_release(disc);
    cfg_config_destroy(cfg);
    return r;
}

Test(relabel, target_defaults_instance_and_url)
{
    struct tres r = target(
        NULL, NULL,
        mk("__address__", "10.0.0.1:9100", "__meta_x", "1", "__tmp_y", "2", "env", "prod", NULL));
    cr_assert_eq(r.rc, 0, "%s", r.err.msg);
    cr_expect_str_eq(r.labels, "{env=\"prod\", instance=\"10.0.0.1:9100\", job=\"t\"}");
    cr_expect_str_eq(r.url, "http://10.0.0.1:9100/metrics");
    cr_expect_str_eq(r.full, "{__address__=\"10.0.0.1:9100\", __metrics_path__=\"/metrics\", "
                             "__scheme__=\"http\", __scrape_interval__=\"30s\", "
                             "__scrape_timeout__=\"10s\", __tmp_y=\"2\", env=\"prod\", "
                             "instance=\"10.0.0.1:9100\", job=\"t\"}");
    cr_expect_eq(r.interval_ms, 30000);
    cr_expect_eq(r.timeout_ms, 10000);
}

Test(relabel, target_defaults_only_fill_absent_labels)
{
    struct tres r = target("  scheme: https\n  metrics_path: /m\n", NULL,
                           mk("__address__", "h:1", "job", "mine", "instance", "me", "__scheme__",
                              "http", "__scrape_interval__", "1m", NULL));
    cr_assert_eq(r.rc, 0, "%s", r.err.msg);
    cr_expect_str_eq(r.labels, "{instance=\"me\", job=\"mine\"}");
    cr_expect_str_eq(r.url, "http://h:1/m");
    cr_expect_eq(r.interval_ms, 60000);

    struct mp_labels *disc = mk("__address__", "h:1", NULL);
    struct cfg_config *cfg = load("  scrape_interval: 1m30s\n", NULL);
    struct mp_labels *pre = NULL;
    cr_assert_eq(scrape_target_defaults(disc, &cfg->scrape_configs[0], &pre, NULL), 0);
    char *s = fmt(pre);
    cr_expect_str_eq(s, "{__address__=\"h:1\", __metrics_path__=\"/metrics\", __scheme__=\"http\", "
                        "__scrape_interval__=\"1m30s\", __scrape_timeout__=\"10s\", job=\"t\"}");
    mp_free(s);
    mp_labels_release(pre);
    mp_labels_release(disc);
    cfg_config_destroy(cfg);
}

Test(relabel, target_port_defaulting)
{
    struct tres r = target(NULL, NULL, mk("__address__", "example.com", NULL));
    cr_assert_eq(r.rc, 0, "%s", r.err.msg);
    cr_expect_str_eq(r.url, "http://example.com:80/metrics");
    cr_expect_str_eq(r.labels, "{instance=\"example.com:80\", job=\"t\"}");
    r = target("  scheme: https\n", NULL, mk("__address__", "example.com", NULL));
    cr_expect_str_eq(r.url, "https://example.com:443/metrics");
    r = target(NULL, NULL, mk("__address__", "[::1]", NULL));
    cr_expect_str_eq(r.url, "http://[::1]:80/metrics");
    /* too many colons: adding a port does not help, so none is added */
    r = target(NULL, NULL, mk("__address__", "::1", NULL));
    cr_assert_eq(r.rc, 0, "%s", r.err.msg);
    cr_expect_str_eq(r.url, "http://::1/metrics");
    cr_expect_str_eq(r.labels, "{instance=\"::1\", job=\"t\"}");
    /* a relabeled scheme other than http(s) cannot get a default port; the message names
     * the configured scheme, as Prometheus's does */
    r = target(NULL, "  - {target_label: __scheme__, replacement: ftp}\n",
               mk("__address__", "example.com", NULL));
    cr_expect_eq(r.rc, MP_EINVAL);
    cr_expect_str_eq(r.err.msg, "invalid scheme: \"http\"");
    r = target(NULL, "  - {target_label: __scheme__, replacement: ftp}\n",
               mk("__address__", "example.com:21", NULL));
    cr_expect_eq(r.rc, 0);
    cr_expect_str_eq(r.url, "ftp://example.com:21/metrics");
}

/* The messages of no address, invalid scheme, hostname, interval parsing, zero interval and
 * timeout > interval were checked against prometheus 2.42's "Creating target failed" log. */
Test(relabel, target_rejections)
{
    struct tres r = target(NULL, NULL, mk("x", "1", NULL));
    cr_expect_eq(r.rc, MP_EINVAL);
    cr_expect_str_eq(r.err.msg, "no address");
    r = target(NULL, "  - {target_label: __address__, replacement: ''}\n",
               mk("__address__", "a:1", NULL));
    cr_expect_str_eq(r.err.msg, "no address");
    r = target(NULL, NULL, mk("__address__", "http://a:1/x", NULL));
    cr_expect_eq(r.rc, MP_EINVAL);
    cr_expect_str_eq(r.err.msg, "\"http://a:1/x\" is not a valid hostname");
    /* the default port comes first, so it shows in the message (as prometheus 2.42 logs it) */
    r = target(NULL, "  - {target_label: __address__, replacement: 'x/y'}\n",
               mk("__address__", "a:1", NULL));
    cr_expect_str_eq(r.err.msg, "\"x/y:80\" is not a valid hostname");
    r = target(NULL, "  - {target_label: __scrape_interval__, replacement: 'abc'}\n",
               mk("__address__", "a:1", NULL));
    cr_expect_str_eq(r.err.msg, "error parsing scrape interval: not a valid duration string: "
                                "\"abc\"");
    r = target(NULL, "  - {target_label: __scrape_timeout__, replacement: '0s'}\n",
               mk("__address__", "a:1", NULL));
    cr_expect_str_eq(r.err.msg, "scrape timeout cannot be 0");
    r = target(NULL, "  - {target_label: __scrape_interval__, replacement: '0'}\n",
               mk("__address__", "a:1", NULL));
    cr_expect_str_eq(r.err.msg, "scrape interval cannot be 0");
    r = target(NULL, "  - {target_label: __scrape_timeout__, replacement: '1m'}\n",
               mk("__address__", "a:1", NULL));
    cr_expect_str_eq(r.err.msg,
                     "scrape timeout cannot be greater than scrape interval (\"1m\" > \"30s\")");
    r = target(NULL, NULL, mk("__address__", "a:1", "bad", "\xff", NULL));
    cr_expect_eq(r.rc, MP_EINVAL);
    cr_expect_str_eq(r.err.msg, "invalid label value for \"bad\": \"\\xff\"");
    /* a relabeled interval and timeout change this target only */
    r = target(NULL,
               "  - {target_label: __scrape_interval__, replacement: 2m}\n"
               "  - {target_label: __scrape_timeout__, replacement: 1m}\n",
               mk("__address__", "a:1", NULL));
    cr_assert_eq(r.rc, 0);
    cr_expect_eq(r.interval_ms, 120000);
    cr_expect_eq(r.timeout_ms, 60000);
}

Test(relabel, target_dropped_by_relabeling)
{
    struct tres r = target(NULL,
                           "  - {source_labels: [__address__], regex: 'a:.*', "
                           "action: drop}\n",
                           mk("__address__", "a:1", NULL));
    cr_expect_eq(r.rc, SCRAPE_TARGET_DROPPED);
    cr_expect_eq(r.err.code, 0);
}

Test(relabel, target_url_params)
{
    /* the spec's verified example: params {foo: [bar]} plus __param_extra=1 */
    struct tres r = target("  metrics_path: /good\n  params: {foo: [bar]}\n",
                           "  - {target_label: __param_extra, replacement: '1'}\n",
                           mk("__address__", "a:1", NULL));
    cr_assert_eq(r.rc, 0, "%s", r.err.msg);
    cr_expect_str_eq(r.url, "http://a:1/good?extra=1&foo=bar");
    cr_expect_str_eq(r.labels, "{instance=\"a:1\", job=\"t\"}");
    /* a __param_ label replaces the first configured value only; keys are sorted, values
     * query-escaped (space as +) */
    r = target("  params: {z: [one, two], a b: ['x&y']}\n",
               "  - {target_label: __param_z, replacement: 'un o'}\n",
               mk("__address__", "a:1", NULL));
    cr_expect_str_eq(r.url, "http://a:1/metrics?a+b=x%26y&z=un+o&z=two");
    /* the path is escaped as Go's url.URL.EscapedPath, a missing leading / is added */
    r = target(NULL, "  - {target_label: __metrics_path__, replacement: 'p q?/r'}\n",
               mk("__address__", "a:1", NULL));
    cr_expect_str_eq(r.url, "http://a:1/p%20q%3F/r");
}

/* ---- Linkerd: kubernetes-sd.md 3.2 discovered labels through the 3.3 job ------------------ */

#define POD_GROUP_LABELS                                                                           \
    "__meta_kubernetes_namespace", "emojivoto", "__meta_kubernetes_pod_name",                      \
        "web-7d9c5b8f6b-x2k4q", "__meta_kubernetes_pod_ip", "10.244.2.17",                         \
        "__meta_kubernetes_pod_ready", "true", "__meta_kubernetes_pod_phase", "Running",           \
        "__meta_kubernetes_pod_node_name", "worker-2", "__meta_kubernetes_pod_host_ip",            \
        "172.18.0.3", "__meta_kubernetes_pod_uid", "3f0c2a61-8b4e-4c1d-9a57-2d6e0b7f41c9",         \
        "__meta_kubernetes_pod_controller_kind", "ReplicaSet",                                     \
        "__meta_kubernetes_pod_controller_name", "web-7d9c5b8f6b",                                 \
        "__meta_kubernetes_pod_label_app", "web-svc", "__meta_kubernetes_pod_labelpresent_app",    \
        "true", "__meta_kubernetes_pod_label_version", "v11",                                      \
        "__meta_kubernetes_pod_labelpresent_version", "true",                                      \
        "__meta_kubernetes_pod_label_pod_template_hash", "7d9c5b8f6b",                             \
        "__meta_kubernetes_pod_labelpresent_pod_template_hash", "true",                            \
        "__meta_kubernetes_pod_label_linkerd_io_control_plane_ns", "linkerd",                      \
        "__meta_kubernetes_pod_labelpresent_linkerd_io_control_plane_ns", "true",                  \
        "__meta_kubernetes_pod_label_linkerd_io_proxy_deployment", "web",                          \
        "__meta_kubernetes_pod_labelpresent_linkerd_io_proxy_deployment", "true",                  \
        "__meta_kubernetes_pod_label_linkerd_io_workload_ns", "emojivoto",                         \
        "__meta_kubernetes_pod_labelpresent_linkerd_io_workload_ns", "true",                       \
        "__meta_kubernetes_pod_annotation_linkerd_io_created_by",                                  \
        "linkerd/proxy-injector edge-25.10.7",                                                     \
        "__meta_kubernetes_pod_annotationpresent_linkerd_io_created_by", "true",                   \
        "__meta_kubernetes_pod_annotation_linkerd_io_proxy_version", "edge-25.10.7",               \
        "__meta_kubernetes_pod_annotationpresent_linkerd_io_proxy_version", "true",                \
        "__meta_kubernetes_pod_annotation_linkerd_io_trust_root_sha256",                           \
        "5c1e0f7a9d3b2e8c4a6f1d0b9e7c3a2f8d6b4e1c0a9f7d5b3e2c1a0f9e8d7c6b",                        \
        "__meta_kubernetes_pod_annotationpresent_linkerd_io_trust_root_sha256", "true",            \
        "__meta_kubernetes_pod_annotation_viz_linkerd_io_tap_enabled", "true",                     \
        "__meta_kubernetes_pod_annotationpresent_viz_linkerd_io_tap_enabled", "true"

#define PROXY_CONTAINER                                                                            \
    "__meta_kubernetes_pod_container_name", "linkerd-proxy",                                       \
        "__meta_kubernetes_pod_container_init", "false", "__meta_kubernetes_pod_container_id",     \
        "containerd://1f7c3e9a5b2d8f4e6a0c1b3d5e7f9a2c4b6d8e0f1a3c5e7b9d2f4a6c8e0b1d3f",           \
        "__meta_kubernetes_pod_container_image", "cr.l5d.io/linkerd/proxy:edge-25.10.7"

/* The four targets of 3.2 (extra: one more label name/value pair, or NULL NULL). */
static struct mp_labels *linkerd_target(int n, const char *xn, const char *xv)
{
    switch (n) {
    case 1:
        return mk("__address__", "10.244.2.17:4143", PROXY_CONTAINER,
                  "__meta_kubernetes_pod_container_port_name", "linkerd-proxy",
                  "__meta_kubernetes_pod_container_port_number", "4143",
                  "__meta_kubernetes_pod_container_port_protocol", "TCP", POD_GROUP_LABELS, xn, xv,
                  NULL);
    case 2:
        return mk("__address__", "10.244.2.17:4191", PROXY_CONTAINER,
                  "__meta_kubernetes_pod_container_port_name", "linkerd-admin",
                  "__meta_kubernetes_pod_container_port_number", "4191",
                  "__meta_kubernetes_pod_container_port_protocol", "TCP", POD_GROUP_LABELS, xn, xv,
                  NULL);
    case 3:
        return mk(
            "__address__", "10.244.2.17:8080", "__meta_kubernetes_pod_container_name", "web-svc",
            "__meta_kubernetes_pod_container_init", "false", "__meta_kubernetes_pod_container_id",
            "containerd://6d2a8e4c0b7f3d9a1e5c7b2f8d4a0e6c3b9f5d1a7e2c8b4f0d6a3e9c5b1f7d2a",
            "__meta_kubernetes_pod_container_image", "docker.l5d.io/buoyantio/emojivoto-web:v11",
            "__meta_kubernetes_pod_container_port_name", "http",
            "__meta_kubernetes_pod_container_port_number", "8080",
            "__meta_kubernetes_pod_container_port_protocol", "TCP", POD_GROUP_LABELS, xn, xv, NULL);
    default:
        return mk("__address__", "10.244.2.17", "__meta_kubernetes_pod_container_name",
                  "linkerd-init", "__meta_kubernetes_pod_container_init", "true",
                  "__meta_kubernetes_pod_container_id",
                  "containerd://9b0e4c7d2a51f8e3b6c9d0a7e4f1b2c8d5a3e6f9c0b7d4a1e8f5c2b9d6a3e0f7",
                  "__meta_kubernetes_pod_container_image", "cr.l5d.io/linkerd/proxy-init:v2.4.3",
                  POD_GROUP_LABELS, xn, xv, NULL);
    }
}

static struct cfg_config *linkerd_config(const struct cfg_scrape_config **job)
{
    struct cfg_config *cfg = NULL;
    struct mp_err err = {0};
    int rc = cfg_config_load_file(MP_SOURCE_DIR "/configs/linkerd-prometheus.yml", &cfg, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    *job = cfg_config_find_job(cfg, "linkerd-proxy");
    cr_assert_not_null(*job);
    cr_assert_eq((*job)->relabel_configs.n, 13);
    return cfg;
}

#define LINKERD_FINAL                                                                              \
    "{app=\"web-svc\", control_plane_ns=\"linkerd\", deployment=\"web\", "                         \
    "instance=\"10.244.2.17:4191\", job=\"linkerd-proxy\", namespace=\"emojivoto\", "              \
    "pod=\"web-7d9c5b8f6b-x2k4q\", pod_template_hash=\"7d9c5b8f6b\", version=\"v11\", "            \
    "workload_ns=\"emojivoto\"}"

Test(relabel, linkerd_proxy_job_final_labels)
{
    const struct cfg_scrape_config *job;
    struct cfg_config *cfg = linkerd_config(&job);
    for (int t = 1; t <= 4; t++) {
        struct mp_labels *disc = linkerd_target(t, NULL, NULL);
        struct mp_labels *final = NULL;
        struct scrape_target_url u;
        struct mp_err err = {0};
        int rc = scrape_target_labels(disc, job, &final, &u, &err);
        if (t != 2) {
            cr_expect_eq(rc, SCRAPE_TARGET_DROPPED, "target %d: %d %s", t, rc, err.msg);
        } else {
            cr_assert_eq(rc, 0, "%s", err.msg);
            char *s = fmt(final);
            cr_expect_str_eq(s, LINKERD_FINAL);
            mp_free(s);
            cr_expect_str_eq(u.str, "http://10.244.2.17:4191/metrics");
            cr_expect_eq(u.interval_ms, 10000);
            cr_expect_eq(u.timeout_ms, 10000);
        }
        mp_labels_release(final);
        scrape_target_url_fini(&u);
        mp_labels_release(disc);
    }
    cfg_config_destroy(cfg);
}

/* Runs rules [0, upto] of the job on target 2 with the pre-relabel defaults applied. */
static struct mp_labels *linkerd_upto(const struct cfg_scrape_config *job, size_t upto)
{
    struct mp_labels *disc = linkerd_target(2, NULL, NULL), *pre = NULL, *out = NULL;
    cr_assert_eq(scrape_target_defaults(disc, job, &pre, NULL), 0);
    struct cfg_relabels part = {job->relabel_configs.v, upto + 1};
    bool keep = false;
    cr_assert_eq(scrape_relabel_labels(&part, pre, &out, &keep), 0);
    cr_assert(keep, "rule %zu dropped target 2", upto);
    mp_labels_release(pre);
    mp_labels_release(disc);
    return out;
}

static struct mp_str get(const struct mp_labels *ls, const char *name)
{
    return mp_labels_get(ls, mp_str_c(name));
}

#define EXPECT_LABEL(ls, name, want)                                                               \
    cr_expect(mp_str_eq(get(ls, name), MP_STR_LIT(want)), "%s = \"%s\", want \"%s\"", name,        \
              get(ls, name).ptr, want)

Test(relabel, linkerd_proxy_job_rule_by_rule)
{
    const struct cfg_scrape_config *job;
    struct cfg_config *cfg = linkerd_config(&job);
    struct mp_labels *ls;

    ls = linkerd_upto(job, 0); /* keep Running */
    /* 30 group labels, __address__, 4 container and 3 port labels, 5 defaults */
    cr_expect_eq(mp_labels_count(ls), 43, "%zu", mp_labels_count(ls));
    mp_labels_release(ls);
    ls = linkerd_upto(job, 3); /* rules 2, 3 */
    EXPECT_LABEL(ls, "namespace", "emojivoto");
    EXPECT_LABEL(ls, "pod", "web-7d9c5b8f6b-x2k4q");
    mp_labels_release(ls);
    ls = linkerd_upto(job, 4); /* no proxy_job label: k8s_job deleted, not set to "" */
    cr_expect(!mp_labels_has(ls, MP_STR_LIT("k8s_job")));
    mp_labels_release(ls);
    ls = linkerd_upto(job, 7); /* rules 6, 7 */
    EXPECT_LABEL(ls, "deployment", "web");
    cr_expect(!mp_labels_has(ls, MP_STR_LIT("__meta_kubernetes_pod_label_linkerd_io_proxy_"
                                            "deployment")));
    cr_expect(mp_labels_has(ls, MP_STR_LIT("__meta_kubernetes_pod_labelpresent_linkerd_io_"
                                           "proxy_deployment")));
    mp_labels_release(ls);
    ls = linkerd_upto(job, 8);
    EXPECT_LABEL(ls, "control_plane_ns", "linkerd");
    EXPECT_LABEL(ls, "workload_ns", "emojivoto");
    mp_labels_release(ls);
    ls = linkerd_upto(job, 9);
    EXPECT_LABEL(ls, "__tmp_pod_label_app", "web-svc");
    EXPECT_LABEL(ls, "__tmp_pod_label_version", "v11");
    EXPECT_LABEL(ls, "__tmp_pod_label_pod_template_hash", "7d9c5b8f6b");
    EXPECT_LABEL(ls, "__tmp_pod_label_linkerd_io_control_plane_ns", "linkerd");
    EXPECT_LABEL(ls, "__tmp_pod_label_linkerd_io_workload_ns", "emojivoto");
    cr_expect(!mp_labels_has(ls, MP_STR_LIT("__tmp_pod_label_linkerd_io_proxy_deployment")));
    mp_labels_release(ls);
    ls = linkerd_upto(job, 10);
    EXPECT_LABEL(ls, "__tmp_pod_label_control_plane_ns", "linkerd");
    EXPECT_LABEL(ls, "__tmp_pod_label_workload_ns", "emojivoto");
    mp_labels_release(ls);
    ls = linkerd_upto(job, 11);
    cr_expect(!mp_labels_has(ls, MP_STR_LIT("__tmp_pod_label_linkerd_io_control_plane_ns")));
    cr_expect(!mp_labels_has(ls, MP_STR_LIT("__tmp_pod_label_linkerd_io_workload_ns")));
    mp_labels_release(ls);
    ls = linkerd_upto(job, 12);
    EXPECT_LABEL(ls, "app", "web-svc");
    EXPECT_LABEL(ls, "version", "v11");
    EXPECT_LABEL(ls, "job", "linkerd-proxy");
    mp_labels_release(ls);
    cfg_config_destroy(cfg);
}

Test(relabel, linkerd_pod_label_named_job_overwrites_job)
{
    /* kubernetes-sd.md 3.3 rule 12: a pod label literally named "job" wins over the job name */
    const struct cfg_scrape_config *job;
    struct cfg_config *cfg = linkerd_config(&job);
    struct mp_labels *disc = linkerd_target(2, "__meta_kubernetes_pod_label_job", "batch");
    struct mp_labels *final = NULL;
    struct scrape_target_url u;
    cr_assert_eq(scrape_target_labels(disc, job, &final, &u, NULL), 0);
    EXPECT_LABEL(final, "job", "batch");
    EXPECT_LABEL(final, "instance", "10.244.2.17:4191");
    mp_labels_release(final);
    scrape_target_url_fini(&u);
    mp_labels_release(disc);
    cfg_config_destroy(cfg);
}

/* ---- against Prometheus ------------------------------------------------------------------ */

/* testdata/relabel_targets.yml was loaded by prometheus 2.42 (`prometheus --config.file=...`,
 * targets never reachable); scrapeUrl and labels below are its /api/v1/targets answer. It
 * covers port defaulting for names and IPv6, host and path escaping, params with a
 * __param_ override, hashmod before port defaulting, Unicode case mapping (İ, ǅ, ß) and the
 * Expand corner cases. */
Test(relabel, matches_prometheus_targets)
{
    static const char *const want[][2] = {
        {"http://example.com:80/good?a+b=x%26y&z=un+o&z=two",
         "hm=\"3\", instance=\"example.com:80\""},
        {"http://[::1]:80/good?a+b=x%26y&z=un+o&z=two", "hm=\"3\", instance=\"[::1]:80\""},
        {"http://::1/good?a+b=x%26y&z=un+o&z=two", "hm=\"5\", instance=\"::1\""},
        {"http://h:1/good?a+b=x%26y&z=un+o&z=two",
         "e=\"1|h_1|$1|${1||h:1|\", hm=\"6\", instance=\"h:1\""},
        {"http://[fe80::1%25eth0]:80/good?a+b=x%26y&z=un+o&z=two",
         "hm=\"4\", instance=\"[fe80::1%eth0]:80\""},
    };
    static const char common[] = "job=\"t\", l=\"äözσ straße ix ǆ\", u=\"ÄÖZΣ straße İx ǅ\", "
                                 "uu=\"ÄÖZΣ STRAßE İX Ǆ\", v=\"AbC\", vl=\"abc\"}";
    struct cfg_config *cfg = NULL;
    struct mp_err err = {0};
    cr_assert_eq(cfg_config_load_file(MP_TESTDATA_DIR "/relabel_targets.yml", &cfg, &err), 0, "%s",
                 err.msg);
    const struct cfg_scrape_config *sc = cfg_config_find_job(cfg, "t");
    cr_assert_not_null(sc);
    const struct cfg_static_config *st = &sc->sd.static_configs[0];
    cr_assert_eq(st->ntargets, 5);
    for (size_t i = 0; i < st->ntargets; i++) {
        struct mp_label l[8] = {{MP_STR_LIT("__address__"), mp_str_c(st->targets[i])}};
        size_t n = 1;
        for (size_t j = 0; j < st->nlabels; j++, n++)
            l[n] = (struct mp_label){mp_str_c(st->labels[j].name), mp_str_c(st->labels[j].value)};
        struct mp_labels *disc = NULL, *final = NULL;
        cr_assert_eq(mp_labels_create(l, n, &disc, NULL), 0);
        struct scrape_target_url u;
        cr_assert_eq(scrape_target_labels(disc, sc, &final, &u, &err), 0, "%s", err.msg);
        cr_expect_str_eq(u.str, want[i][0]);
        char exp[512];
        snprintf(exp, sizeof exp, "{%s, %s", want[i][1], common);
        char *s = fmt(final);
        cr_expect_str_eq(s, exp);
        mp_free(s);
        mp_labels_release(final);
        scrape_target_url_fini(&u);
        mp_labels_release(disc);
    }
    sc = cfg_config_find_job(cfg, "p");
    struct mp_labels *disc = mk("__address__", "a:1", NULL), *final = NULL;
    struct scrape_target_url u;
    cr_assert_eq(scrape_target_labels(disc, sc, &final, &u, &err), 0, "%s", err.msg);
    cr_expect_str_eq(u.str, "http://a:1/p%20q%3F/r%25~%C3%A9");
    mp_labels_release(final);
    scrape_target_url_fini(&u);
    mp_labels_release(disc);
    cfg_config_destroy(cfg);
}
