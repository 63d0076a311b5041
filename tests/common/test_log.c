/* SPDX-License-Identifier: Apache-2.0 */
/* tests/common/test_log.c: logfmt and JSON lines (exact text under a fixed clock), go-logfmt
 * quoting, level filtering that does not evaluate arguments, one write per line under
 * threads, flood limits and the Go float formatter. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

#define CAP 8192

struct capture {
    char buf[CAP];
    size_t len;
    int calls;
};

static struct capture cap;

static void sink(void *ctx, const char *line, size_t len)
{
    struct capture *c = ctx;
    c->calls++;
    if (c->len + len < sizeof c->buf) {
        memcpy(c->buf + c->len, line, len);
        c->len += len;
        c->buf[c->len] = '\0';
    }
}

static int64_t fixed_clock(void)
{
    return INT64_C(1740823200123); /* 2025-03-01T10:00:00.123Z */
}

static void setup_capture(enum mp_log_format fmt, enum mp_log_level lvl)
{
    memset(&cap, 0, sizeof cap);
    mp_log_setup(lvl, fmt, 2);
    mp_log_set_sink(sink, &cap);
    mp_log_set_clock(fixed_clock);
}

static void teardown_capture(void)
{
    mp_log_set_sink(NULL, NULL);
    mp_log_set_clock(NULL);
    mp_log_setup(MP_LOG_LEVEL_INFO, MP_LOG_FORMAT_LOGFMT, 2);
}

Test(log, logfmt_line_exact, .fini = teardown_capture)
{
    setup_capture(MP_LOG_FORMAT_LOGFMT, MP_LOG_LEVEL_INFO);
    mp_log_emit(MP_LOG_LEVEL_INFO, "web", "/src/web/main.c", 214,
                "Start listening for connections",
                (struct mp_kv[]){MP_KV_STR("address", "0.0.0.0:9090")}, 1);
    cr_assert_str_eq(cap.buf, "ts=2025-03-01T10:00:00.123Z caller=main.c:214 level=info "
                              "component=web msg=\"Start listening for connections\" "
                              "address=0.0.0.0:9090\n");
    cr_assert_eq(cap.calls, 1);
}

Test(log, json_line_exact, .fini = teardown_capture)
{
    setup_capture(MP_LOG_FORMAT_JSON, MP_LOG_LEVEL_INFO);
    mp_log_emit(MP_LOG_LEVEL_WARN, "scrape", "scrape.c", 7, "scrape failed",
                (struct mp_kv[]){MP_KV_STR("target", "http://a:9100/metrics"),
                                 MP_KV_I64("duration_ms", -1532), MP_KV_U64("n", 18446744073709551615u),
                                 MP_KV_F64("ratio", 0.5), MP_KV_BOOL("ok", false),
                                 MP_KV_STR("err", "say \"hi\"\n")},
                6);
    cr_assert_str_eq(cap.buf,
                     "{\"ts\":\"2025-03-01T10:00:00.123Z\",\"caller\":\"scrape.c:7\","
                     "\"level\":\"warn\",\"component\":\"scrape\",\"msg\":\"scrape failed\","
                     "\"target\":\"http://a:9100/metrics\",\"duration_ms\":-1532,"
                     "\"n\":18446744073709551615,\"ratio\":0.5,\"ok\":false,"
                     "\"err\":\"say \\\"hi\\\"\\n\"}\n");
}

Test(log, json_floats_follow_encoding_json, .fini = teardown_capture)
{
    setup_capture(MP_LOG_FORMAT_JSON, MP_LOG_LEVEL_INFO);
    mp_log_emit(MP_LOG_LEVEL_INFO, NULL, "x.c", 1, "m",
                (struct mp_kv[]){MP_KV_F64("a", 123456789.0), MP_KV_F64("b", 1e-7),
                                 MP_KV_F64("c", 1e21), MP_KV_F64("d", NAN),
                                 MP_KV_F64("e", -INFINITY)},
                5);
    cr_assert_str_eq(cap.buf, "{\"ts\":\"2025-03-01T10:00:00.123Z\",\"caller\":\"x.c:1\","
                              "\"level\":\"info\",\"msg\":\"m\",\"a\":123456789,\"b\":1e-7,"
                              "\"c\":1e+21,\"d\":\"NaN\",\"e\":\"-Inf\"}\n");
}

Test(log, logfmt_quoting_and_escaping, .fini = teardown_capture)
{
    setup_capture(MP_LOG_FORMAT_LOGFMT, MP_LOG_LEVEL_DEBUG);
    mp_log_emit(MP_LOG_LEVEL_DEBUG, "c", "f.c", 3, "plain",
                (struct mp_kv[]){
                    MP_KV_STR("sp", "a b"),
                    MP_KV_STR("eq", "a=b"),
                    MP_KV_STR("q", "a\"b"),
                    MP_KV_STR("bs", "a\\b"),
                    MP_KV_STR("nl", "a\nb"),
                    MP_KV_STR("tab", "a\tb"),
                    MP_KV_STR("ctl", "a\x01"),
                    MP_KV_STR("empty", ""),
                    MP_KV_STR("nul", NULL),
                    MP_KV_STR("null", "null"),
                    MP_KV_STR("url", "http://x/y?a"),
                    MP_KV_F64("f", 123456789.0),
                    MP_KV_BOOL("t", true),
                },
                13);
    cr_assert_str_eq(cap.buf, "ts=2025-03-01T10:00:00.123Z caller=f.c:3 level=debug component=c "
                              "msg=plain sp=\"a b\" eq=\"a=b\" q=\"a\\\"b\" bs=a\\b "
                              "nl=\"a\\nb\" tab=\"a\\tb\" ctl=\"a\\u0001\" empty= nul= "
                              "null=\"null\" url=http://x/y?a f=1.23456789e+08 t=true\n");
}

static int evaluated;

static const char *side_effect(void)
{
    evaluated++;
    return "x";
}

Test(log, disabled_level_does_not_evaluate_arguments, .fini = teardown_capture)
{
    setup_capture(MP_LOG_FORMAT_LOGFMT, MP_LOG_LEVEL_WARN);
    evaluated = 0;
    MP_LOG_DEBUG("nope", MP_KV_STR("k", side_effect()));
    MP_LOG_INFO("nope", MP_KV_STR("k", side_effect()));
    cr_assert_eq(evaluated, 0);
    cr_assert_eq(cap.calls, 0);
    MP_LOG_WARN("yes", MP_KV_STR("k", side_effect()));
    MP_LOG_ERROR("no fields");
    cr_assert_eq(evaluated, 1);
    cr_assert_eq(cap.calls, 2);
    cr_assert(strstr(cap.buf, "caller=test_log.c:") != NULL);
    cr_assert(strstr(cap.buf, "level=error component=meshprom msg=\"no fields\"\n") != NULL);
}

Test(log, long_line_is_one_call, .fini = teardown_capture)
{
    setup_capture(MP_LOG_FORMAT_LOGFMT, MP_LOG_LEVEL_INFO);
    char *big = malloc(5000);
    memset(big, 'a', 4999);
    big[4999] = '\0';
    MP_LOG_INFO("big", MP_KV_STR("v", big));
    cr_assert_eq(cap.calls, 1);
    cr_assert(cap.len > 5000);
    cr_assert_eq(cap.buf[cap.len - 1], '\n');
    free(big);
}

static void *log_many(void *arg)
{
    long id = (long)arg;
    for (int i = 0; i < 300; i++)
        MP_LOG_INFO("concurrent line with some padding to make it longer",
                    MP_KV_I64("thread", id), MP_KV_I64("i", i), MP_KV_STR("end", "1"));
    return NULL;
}

Test(log, threads_do_not_interleave, .fini = teardown_capture)
{
    char path[] = "/tmp/mp_test_log_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    unlink(path);
    fcntl(fd, F_SETFL, O_APPEND);
    mp_log_setup(MP_LOG_LEVEL_INFO, MP_LOG_FORMAT_LOGFMT, fd);
    pthread_t th[4];
    for (long t = 0; t < 4; t++)
        pthread_create(&th[t], NULL, log_many, (void *)t);
    for (int t = 0; t < 4; t++)
        pthread_join(th[t], NULL);
    off_t size = lseek(fd, 0, SEEK_END);
    char *all = malloc((size_t)size + 1);
    cr_assert_eq(pread(fd, all, (size_t)size, 0), size);
    all[size] = '\0';
    int lines = 0;
    for (char *save = NULL, *ln = strtok_r(all, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
        cr_assert(strncmp(ln, "ts=", 3) == 0, "bad line start: %s", ln);
        size_t n = strlen(ln);
        cr_assert(n > 5 && strcmp(ln + n - 5, "end=1") == 0, "bad line end: %s", ln);
        lines++;
    }
    cr_assert_eq(lines, 1200);
    cr_assert_eq(mp_log_lines_total(MP_LOG_LEVEL_INFO) >= 1200, true);
    free(all);
    close(fd);
}

Test(log, parse_level_and_format)
{
    enum mp_log_level l = MP_LOG_LEVEL_ERROR;
    cr_assert_eq(mp_log_level_parse("debug", &l), 0);
    cr_assert_eq(l, MP_LOG_LEVEL_DEBUG);
    cr_assert_eq(mp_log_level_parse("warn", &l), 0);
    cr_assert_eq(l, MP_LOG_LEVEL_WARN);
    cr_assert_eq(mp_log_level_parse("WARN", &l), MP_EINVAL);
    cr_assert_eq(mp_log_level_parse("warning", &l), MP_EINVAL);
    cr_assert_eq(mp_log_level_parse(NULL, &l), MP_EINVAL);
    cr_assert_eq(l, MP_LOG_LEVEL_WARN);
    enum mp_log_format f = MP_LOG_FORMAT_LOGFMT;
    cr_assert_eq(mp_log_format_parse("json", &f), 0);
    cr_assert_eq(f, MP_LOG_FORMAT_JSON);
    cr_assert_eq(mp_log_format_parse("logfmt", &f), 0);
    cr_assert_eq(f, MP_LOG_FORMAT_LOGFMT);
    cr_assert_eq(mp_log_format_parse("text", &f), MP_EINVAL);
    cr_assert_str_eq(mp_log_level_name(MP_LOG_LEVEL_ERROR), "error");
}

Test(log, limiter_passes_n_per_window_and_counts_the_rest, .fini = teardown_capture)
{
    struct mp_log_limit lim = MP_LOG_LIMIT_INIT(3, 3600 * 1000);
    uint64_t before = mp_log_suppressed_total();
    uint64_t sup = 99;
    for (int i = 0; i < 3; i++) {
        cr_assert(mp_log_limit_allow(&lim, &sup));
        cr_assert_eq(sup, 0);
    }
    for (int i = 0; i < 5; i++)
        cr_assert(!mp_log_limit_allow(&lim, &sup));
    cr_assert_eq(mp_log_suppressed_total() - before, 5);

    /* a short window: the first event after it passes and reports the suppressed count */
    struct mp_log_limit fast;
    mp_log_limit_init(&fast, 1, 20);
    cr_assert(mp_log_limit_allow(&fast, &sup));
    cr_assert(!mp_log_limit_allow(&fast, &sup));
    cr_assert(!mp_log_limit_allow(&fast, &sup));
    usleep(40 * 1000);
    cr_assert(mp_log_limit_allow(&fast, &sup));
    cr_assert_eq(sup, 2);

    setup_capture(MP_LOG_FORMAT_LOGFMT, MP_LOG_LEVEL_INFO);
    struct mp_log_limit m = MP_LOG_LIMIT_INIT(1, 20);
    MP_LOG_LIMITED(&m, MP_LOG_LEVEL_WARN, "flood", MP_KV_STR("target", "a"));
    MP_LOG_LIMITED(&m, MP_LOG_LEVEL_WARN, "flood", MP_KV_STR("target", "a"));
    usleep(40 * 1000);
    MP_LOG_LIMITED(&m, MP_LOG_LEVEL_WARN, "flood");
    cr_assert_eq(cap.calls, 2);
    cr_assert(strstr(cap.buf, "msg=flood target=a\n") != NULL);
    cr_assert(strstr(cap.buf, "msg=flood suppressed=1\n") != NULL);
}

struct fcase {
    double v;
    const char *want;
};

Test(log, float_format_matches_go_g_shortest)
{
    static const struct fcase cases[] = {
        {0, "0"},
        {1, "1"},
        {-1, "-1"},
        {0.1, "0.1"},
        {1.5, "1.5"},
        {100000, "100000"},
        {999999, "999999"},
        {1e6, "1e+06"},
        {1234567, "1.234567e+06"},
        {123456789, "1.23456789e+08"},
        {0.0001, "0.0001"},
        {0.00001, "1e-05"},
        {0.000123, "0.000123"},
        {1.0 / 3, "0.3333333333333333"},
        {2.5e-10, "2.5e-10"},
        {1e100, "1e+100"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {5e-324, "5e-324"},
        {-0.005, "-0.005"},
        {0.025, "0.025"},
        {12345.678, "12345.678"},
        {NAN, "NaN"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[64];
        int n = mp_float_format_go(cases[i].v, buf, sizeof buf);
        cr_expect_str_eq(buf, cases[i].want, "case %zu", i);
        cr_expect_eq((size_t)n, strlen(cases[i].want));
    }
}
