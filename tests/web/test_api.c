/* SPDX-License-Identifier: Apache-2.0 */
/* tests/web/test_api.c: the HTTP API v1 over real sockets (127.0.0.1:0) and a tsdb in a
 * temporary directory: number and string layouts of the JSON writer, series / labels / label
 * values (GET and POST, match[], start/end, limit, every bad parameter), status endpoints,
 * targets and metadata with and without a scrape manager, rules/alerts/alertmanagers,
 * exemplars, format_query, the admin endpoints (disabled and enabled), remote write (good,
 * bad headers, bad snappy, snappy bomb) and /federate. Expected bodies are Prometheus's
 * (protocols.md 4; checked against Prometheus 2.42 where 2.55 behaves the same). */
#include <criterion/criterion.h>
#include <math.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/labels.h"
#include "common/metrics.h"
#include "common/time.h"
#include "remote.pb-c.h"
#include "scraper/scraper.h"
#include "tsdb/tsdb.h"
#include "web/api_internal.h"
#include "test_api_fixture.h"

TestSuite(api, .init = api_suite_init);

/* ---- the JSON writer's layouts ---- */

/* Digits of a formatted number: sign, dot, leading zeros, exponent and trailing zeros off. */
static void digits_of(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    bool lead = true;
    for (; *s && *s != 'e' && n + 1 < cap; s++) {
        if (*s < '0' || *s > '9' || (lead && *s == '0'))
            continue;
        lead = false;
        out[n++] = *s;
    }
    while (n > 1 && out[n - 1] == '0')
        n--;
    out[n] = '\0';
}

/* The shortest correctly rounded digits by brute force: the first precision that strtod maps
 * back (so, Go's shortest). */
static void reference_digits(double v, char *out, size_t cap)
{
    char tmp[48];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, fabs(v));
        if (strtod(tmp, NULL) == fabs(v))
            break;
    }
    digits_of(tmp, out, cap);
}

/* Random doubles of every magnitude and random short decimals (what samples look like): the
 * layouts parse back to the value and carry exactly the shortest digits. */
Test(api, float_layouts_are_shortest)
{
    uint64_t x = 0x9e3779b97f4a7c15u;
    int checked = 0;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double v;
        if (i % 2) {
            memcpy(&v, &x, sizeof v);
        } else { /* up to 15 digits over 10^-9 .. 10^14 */
            static const double p10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
            double m = (double)(x % 1000000000000000u) / p10[(x >> 50) % 10];
            v = (x >> 60) & 1 ? m / p10[(x >> 54) % 10] : m;
        }
        if (!isfinite(v) || v == 0)
            continue;
        for (int use_exp = 0; use_exp < 2; use_exp++) {
            char buf[WEB_NUM_MAX], got[32], want[32];
            web_float_format(v, use_exp, buf, sizeof buf);
            cr_assert_eq(strtod(buf, NULL), v, "%.17g printed as %s", v, buf);
            digits_of(buf, got, sizeof got);
            reference_digits(v, want, sizeof want);
            cr_assert_str_eq(got, want, "%.17g printed as %s", v, buf);
        }
        checked++;
    }
    cr_assert_gt(checked, 190000);
}

Test(api, value_layouts)
{
    static const struct {
        double v;
        const char *vec, *scalar;
    } cases[] = {
        {2, "2", "2"},
        {1.5, "1.5", "1.5"},
        {0.000001, "0.000001", "0.000001"},
        {1e-7, "1e-07", "0.0000001"},
        {1e21, "1e+21", "1000000000000000000000"},
        {1e30, "1e+30", "1000000000000000000000000000000"},
        {123456789012345678.0, "123456789012345680", "123456789012345680"},
        {1.0 / 3, "0.3333333333333333", "0.3333333333333333"},
        {0.1 + 0.2, "0.30000000000000004", "0.30000000000000004"},
        {12345678.5, "12345678.5", "12345678.5"},
        {-0.0, "-0", "-0"},
        {1.5e300, "1.5e+300", NULL},
        {5e-324, "5e-324", NULL},
        {-2.5e-10, "-2.5e-10", "-0.00000000025"},
        {-42, "-42", "-42"},
        {999999999999999.0, "999999999999999", "999999999999999"},
        {1e15, "1000000000000000", "1000000000000000"},
        {-9007199254740993.0, "-9007199254740992", "-9007199254740992"},
        {NAN, "NaN", "NaN"},
        {INFINITY, "+Inf", "+Inf"},
        {-INFINITY, "-Inf", "-Inf"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[WEB_NUM_MAX];
        web_float_format(cases[i].v, true, buf, sizeof buf);
        cr_expect_str_eq(buf, cases[i].vec, "case %zu", i);
        if (cases[i].scalar) {
            web_float_format(cases[i].v, false, buf, sizeof buf);
            cr_expect_str_eq(buf, cases[i].scalar, "case %zu", i);
        }
    }
    char buf[WEB_NUM_MAX];
    web_float_format_json(1e-7, buf, sizeof buf);
    cr_expect_str_eq(buf, "1e-7");
    web_float_format_json(1700000000.5, buf, sizeof buf);
    cr_expect_str_eq(buf, "1700000000.5");
    web_float_format_json(4.123, buf, sizeof buf);
    cr_expect_str_eq(buf, "4.123");
    static const struct {
        int64_t ms;
        const char *s;
    } ts[] = {{1500, "1.500"}, {1435781451781, "1435781451.781"},   {-1500, "-1.500"},
              {4000, "4"},     {1700000000050, "1700000000.050"},   {5, "0.005"},
              {-5, "-0.005"},  {INT64_MIN, "-9223372036854775.808"}};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        web_ts_format(ts[i].ms, buf, sizeof buf);
        cr_expect_str_eq(buf, ts[i].s);
    }
}

Test(api, string_escaping)
{
    struct mp_buf b;
    mp_buf_init(&b, 0);
    struct web_json w;
    web_json_init(&w, &b);
    web_json_arr_begin(&w);
    web_json_cstr(&w, "a\"b\\c\nd\re\tf\x01<>&");
    web_json_str(&w, (struct mp_str){"\xe2\x80\xa8x\xff\xc3\xa9", 7});
    web_json_obj_begin(&w);
    web_json_key(&w, "k");
    web_json_i64(&w, -3);
    web_json_key(&w, "l");
    web_json_bool(&w, true);
    web_json_obj_end(&w);
    web_json_arr_end(&w);
    cr_assert_eq(web_json_status(&w), 0);
    cr_expect_str_eq(b.data, "[\"a\\\"b\\\\c\\nd\\re\\tf\\u0001\\u003c\\u003e\\u0026\","
                             "\"\\u2028x\\ufffd\xc3\xa9\",{\"k\":-3,\"l\":true}]");
    mp_buf_fini(&b);
}

Test(api, writer_cap_is_sticky)
{
    struct mp_buf b;
    mp_buf_init(&b, 8);
    struct web_json w;
    web_json_init(&w, &b);
    web_json_arr_begin(&w);
    for (int i = 0; i < 100; i++)
        web_json_cstr(&w, "0123456789");
    web_json_arr_end(&w);
    cr_expect_eq(web_json_status(&w), MP_ELIMIT);
    mp_buf_fini(&b);
}

/* ---- data endpoints ---- */

static void fill(struct api_fix *f)
{
    api_fix_add(f, 1000, 1, "__name__", "up", "job", "a", "instance", "x:1", NULL);
    api_fix_add(f, 2000, 0, "__name__", "up", "job", "b", "instance", "y:2", NULL);
    api_fix_add(f, 1500, 3.5, "__name__", "http_requests_total", "job", "a", "code", "200", NULL);
}

Test(api, labels_and_values)
{
    struct api_fix f;
    api_fix_open(&f);
    fill(&f);
    api_fix_start(&f, NULL);
    EXPECT(&f, "/api/v1/labels", 200,
           "{\"status\":\"success\",\"data\":[\"__name__\",\"code\",\"instance\",\"job\"]}");
    EXPECT(&f, "/api/v1/labels?match[]=up", 200,
           "{\"status\":\"success\",\"data\":[\"__name__\",\"instance\",\"job\"]}");
    EXPECT(&f, "/api/v1/labels?limit=2", 200,
           "{\"status\":\"success\",\"data\":[\"__name__\",\"code\"],"
           "\"warnings\":[\"results truncated due to limit\"]}");
    EXPECT(&f, "/api/v1/label/job/values", 200, "{\"status\":\"success\",\"data\":[\"a\",\"b\"]}");
    EXPECT(&f, "/api/v1/label/__name__/values", 200,
           "{\"status\":\"success\",\"data\":[\"http_requests_total\",\"up\"]}");
    EXPECT(&f, "/api/v1/label/job/values?match[]=http_requests_total&match[]=up{job=\"b\"}", 200,
           "{\"status\":\"success\",\"data\":[\"a\",\"b\"]}");
    EXPECT(&f, "/api/v1/label/job/values?limit=1", 200,
           "{\"status\":\"success\",\"data\":[\"a\"],"
           "\"warnings\":[\"results truncated due to limit\"]}");
    EXPECT(&f, "/api/v1/label/nope/values", 200, "{\"status\":\"success\",\"data\":[]}");
    /* without matchers the head answers for its whole time range once it overlaps, as
     * Prometheus's head index reader */
    EXPECT(&f, "/api/v1/label/job/values?end=1.2", 200,
           "{\"status\":\"success\",\"data\":[\"a\",\"b\"]}");
    EXPECT(&f, "/api/v1/label/job/values?end=1.2&match[]=up", 200,
           "{\"status\":\"success\",\"data\":[\"a\"]}");
    /* ... and nothing when the range misses [head min, head max] = [1, 2] s */
    EXPECT(&f, "/api/v1/labels?start=2.001&end=10", 200, "{\"status\":\"success\",\"data\":[]}");
    EXPECT(&f, "/api/v1/labels?start=0&end=0.999", 200, "{\"status\":\"success\",\"data\":[]}");
    EXPECT(&f, "/api/v1/label/job/values?start=3&end=4", 200,
           "{\"status\":\"success\",\"data\":[]}");
    EXPECT(&f, "/api/v1/label/job/values?start=2&end=4", 200,
           "{\"status\":\"success\",\"data\":[\"a\",\"b\"]}");
    EXPECT(&f, "/api/v1/labels?start=0&end=1", 200,
           "{\"status\":\"success\",\"data\":[\"__name__\",\"code\",\"instance\",\"job\"]}");
    struct reply r;
    api_post_form(&f, "/api/v1/labels", "match[]=http_requests_total", &r);
    cr_expect_eq(r.code, 200);
    cr_expect_str_eq(r.body, "{\"status\":\"success\",\"data\":[\"__name__\",\"code\",\"job\"]}");
    reply_free(&r);
    api_post_form(&f, "/api/v1/label/job/values", "", &r);
    cr_expect_eq(r.code, 405);
    reply_free(&r);
    api_fix_stop(&f);
}

Test(api, series)
{
    struct api_fix f;
    api_fix_open(&f);
    fill(&f);
    api_fix_start(&f, NULL);
    EXPECT(&f, "/api/v1/series?match[]=up", 200,
           "{\"status\":\"success\",\"data\":["
           "{\"__name__\":\"up\",\"instance\":\"x:1\",\"job\":\"a\"},"
           "{\"__name__\":\"up\",\"instance\":\"y:2\",\"job\":\"b\"}]}");
    /* two sets OR-ed, a series matched by both listed once, label order */
    EXPECT(&f, "/api/v1/series?match[]={job=\"a\"}&match[]=up", 200,
           "{\"status\":\"success\",\"data\":["
           "{\"__name__\":\"http_requests_total\",\"code\":\"200\",\"job\":\"a\"},"
           "{\"__name__\":\"up\",\"instance\":\"x:1\",\"job\":\"a\"},"
           "{\"__name__\":\"up\",\"instance\":\"y:2\",\"job\":\"b\"}]}");
    EXPECT(&f, "/api/v1/series?match[]=up&limit=1", 200,
           "{\"status\":\"success\",\"data\":["
           "{\"__name__\":\"up\",\"instance\":\"x:1\",\"job\":\"a\"}],"
           "\"warnings\":[\"results truncated due to limit\"]}");
    EXPECT(&f, "/api/v1/series?match[]=up&start=1.5&end=2", 200,
           "{\"status\":\"success\",\"data\":["
           "{\"__name__\":\"up\",\"instance\":\"y:2\",\"job\":\"b\"}]}");
    EXPECT(&f, "/api/v1/series?match[]=up&start=1970-01-01T00:00:01.5Z&end=2", 200,
           "{\"status\":\"success\",\"data\":["
           "{\"__name__\":\"up\",\"instance\":\"y:2\",\"job\":\"b\"}]}");
    EXPECT(&f, "/api/v1/series?match[]=nothing", 200, "{\"status\":\"success\",\"data\":[]}");
    struct reply r;
    api_post_form(&f, "/api/v1/series", "match[]=up%7Bjob%3D%22b%22%7D", &r);
    cr_expect_eq(r.code, 200);
    cr_expect_str_eq(r.body, "{\"status\":\"success\",\"data\":["
                             "{\"__name__\":\"up\",\"instance\":\"y:2\",\"job\":\"b\"}]}");
    reply_free(&r);
    request("DELETE", api_url(&f, "/api/v1/series"), &r);
    cr_expect_eq(r.code, 500);
    cr_expect_str_eq(
        r.body, "{\"status\":\"error\",\"errorType\":\"internal\",\"error\":\"not implemented\"}");
    reply_free(&r);
    api_fix_stop(&f);
}

Test(api, bad_parameters)
{
    struct api_fix f;
    api_fix_open(&f);
    fill(&f);
    api_fix_start(&f, NULL);
    EXPECT(&f, "/api/v1/series", 400, BAD("no match[] parameter provided"));
    EXPECT(&f, "/api/v1/series?match[]={}", 400,
           BAD("invalid parameter \\\"match[]\\\": match[] must contain at least one "
               "non-empty matcher"));
    EXPECT(&f, "/api/v1/series?match[]={a=\"\"}", 400,
           BAD("invalid parameter \\\"match[]\\\": match[] must contain at least one "
               "non-empty matcher"));
    EXPECT(&f, "/api/v1/series?match[]=up{", 400,
           BAD("invalid parameter \\\"match[]\\\": 1:4: parse error: unexpected end of "
               "input inside braces"));
    EXPECT(&f, "/api/v1/series?match[]=up&start=abc", 400,
           BAD("invalid parameter \\\"start\\\": Invalid time value for 'start': cannot "
               "parse \\\"abc\\\" to a valid timestamp"));
    EXPECT(&f, "/api/v1/series?match[]=up&end=1x", 400,
           BAD("invalid parameter \\\"end\\\": Invalid time value for 'end': cannot "
               "parse \\\"1x\\\" to a valid timestamp"));
    EXPECT(&f, "/api/v1/series?match[]=up&limit=x", 400,
           BAD("invalid parameter \\\"limit\\\": strconv.Atoi: parsing \\\"x\\\": invalid "
               "syntax"));
    EXPECT(&f, "/api/v1/labels?limit=-1", 400,
           BAD("invalid parameter \\\"limit\\\": limit must be non-negative"));
    EXPECT(&f, "/api/v1/labels?match[]={}", 400,
           BAD("match[] must contain at least one non-empty matcher"));
    EXPECT(&f, "/api/v1/label/__name__/values?match[]=up{", 400,
           BAD("1:4: parse error: unexpected end of input inside braces"));
    EXPECT(&f, "/api/v1/label/1a/values", 400, BAD("invalid label name: \\\"1a\\\""));
    EXPECT(&f, "/api/v1/label/a-b/values", 400, BAD("invalid label name: \\\"a-b\\\""));
    EXPECT(&f, "/api/v1/query_exemplars?query=up{", 400,
           BAD("1:4: parse error: unexpected end of input inside braces"));
    EXPECT(&f, "/api/v1/query_exemplars?query=up&start=2&end=1", 400,
           BAD("end timestamp must not be before start timestamp"));
    EXPECT(&f, "/api/v1/status/tsdb?limit=0", 400, BAD("limit must be a positive number"));
    EXPECT(&f, "/api/v1/metadata?limit=x", 400, BAD("limit must be a number"));
    EXPECT(&f, "/api/v1/targets/metadata?match_target=up{", 400,
           BAD("invalid parameter \\\"match_target\\\": 1:4: parse error: unexpected end "
               "of input inside braces"));
    api_fix_stop(&f);
}

Test(api, format_query_and_exemplars)
{
    struct api_fix f;
    api_fix_open(&f);
    api_fix_start(&f, NULL);
    EXPECT(&f, "/api/v1/format_query?query=sum(rate(x[5m]))by(job)", 200,
           "{\"status\":\"success\",\"data\":\"sum by (job) (rate(x[5m]))\"}");
    EXPECT(&f, "/api/v1/format_query?query=up{", 400,
           BAD("invalid parameter \\\"query\\\": 1:4: parse error: unexpected end of input "
               "inside braces"));
    EXPECT(&f, "/api/v1/query_exemplars?query=rate(up[5m])", 200,
           "{\"status\":\"success\",\"data\":[]}");
    struct reply r;
    api_post_form(&f, "/api/v1/query_exemplars", "query=1%2B1", &r);
    cr_expect_eq(r.code, 204);
    cr_expect_str_eq(r.body, "");
    reply_free(&r);
    api_post_form(&f, "/api/v1/format_query", "query=a%2Bb", &r);
    cr_expect_eq(r.code, 200);
    cr_expect_str_eq(r.body, "{\"status\":\"success\",\"data\":\"a + b\"}");
    reply_free(&r);
    api_fix_stop(&f);
}

/* ---- status and the empty managers ---- */

static int fake_yaml(void *ctx, struct mp_buf *out, struct mp_err *err)
{
    return mp_buf_append_str(out, "global:\n  scrape_interval: 15s\n");
}

static void fake_flags(void *ctx, void (*fn)(void *, const char *, const char *), void *fctx)
{
    fn(fctx, "web.listen-address", "0.0.0.0:9090");
    fn(fctx, "config.file", "prometheus.yml");
    fn(fctx, "query.timeout", "2m");
}

static void fake_runtime(void *ctx, struct web_api_runtime *out)
{
    out->reload_config_success = false;
    out->last_config_time_ms = 1700000000123;
}

Test(api, status)
{
    struct api_fix f;
    api_fix_open(&f);
    fill(&f);
    struct web_api_deps d;
    web_api_deps_init(&d);
    d.config_yaml = fake_yaml;
    d.flags = fake_flags;
    d.runtime = fake_runtime;
    d.version = "1.2.3";
    d.revision = "abc";
    d.branch = "main";
    d.build_user = "u";
    d.build_date = "20260101";
    d.go_version = "none (C)";
    d.storage_retention = "15d";
    d.start_time_ms = 1700000000000;
    api_fix_start(&f, &d);
    EXPECT(&f, "/api/v1/status/buildinfo", 200,
           "{\"status\":\"success\",\"data\":{\"version\":\"1.2.3\",\"revision\":\"abc\","
           "\"branch\":\"main\",\"buildUser\":\"u\",\"buildDate\":\"20260101\","
           "\"goVersion\":\"none (C)\"}}");
    EXPECT(&f, "/api/v1/status/config", 200,
           "{\"status\":\"success\",\"data\":{\"yaml\":\"global:\\n  scrape_interval: "
           "15s\\n\"}}");
    EXPECT(&f, "/api/v1/status/flags", 200,
           "{\"status\":\"success\",\"data\":{\"config.file\":\"prometheus.yml\","
           "\"query.timeout\":\"2m\",\"web.listen-address\":\"0.0.0.0:9090\"}}");
    EXPECT(&f, "/api/v1/status/walreplay", 200,
           "{\"status\":\"success\",\"data\":{\"min\":0,\"max\":0,\"current\":0}}");
    struct reply r;
    api_get(&f, "/api/v1/status/runtimeinfo", &r);
    cr_expect_eq(r.code, 200);
    cr_expect(strstr(r.body, "{\"status\":\"success\",\"data\":{\"startTime\":"
                             "\"2023-11-14T22:13:20Z\",\"CWD\":\"") == r.body,
              "%s", r.body);
    cr_expect(strstr(r.body, "\"reloadConfigSuccess\":false,\"lastConfigTime\":"
                             "\"2023-11-14T22:13:20.123Z\",\"corruptionCount\":0,"
                             "\"goroutineCount\":"),
              "%s", r.body);
    cr_expect(strstr(r.body, "\"GOGC\":\"\",\"GODEBUG\":\"\",\"storageRetention\":\"15d\"}}"), "%s",
              r.body);
    reply_free(&r);
    api_get(&f, "/api/v1/status/tsdb?limit=1", &r);
    cr_expect_eq(r.code, 200);
    cr_expect(strstr(r.body, "\"headStats\":{\"numSeries\":3,\"numLabelPairs\":"), "%s", r.body);
    cr_expect(strstr(r.body, "\"minTime\":1000,\"maxTime\":2000},"
                             "\"seriesCountByMetricName\":[{\"name\":\"up\",\"value\":2}],"
                             "\"labelValueCountByLabelName\":[{\"name\":"),
              "%s", r.body);
    cr_expect(strstr(r.body, "\"seriesCountByLabelValuePair\":[{\"name\":"), "%s", r.body);
    reply_free(&r);
    api_fix_stop(&f);
}

Test(api, empty_managers)
{
    struct api_fix f;
    api_fix_open(&f);
    api_fix_start(&f, NULL);
    EXPECT(&f, "/api/v1/rules", 200, "{\"status\":\"success\",\"data\":{\"groups\":[]}}");
    EXPECT(&f, "/api/v1/alerts", 200, "{\"status\":\"success\",\"data\":{\"alerts\":[]}}");
    EXPECT(&f, "/api/v1/alertmanagers", 200,
           "{\"status\":\"success\",\"data\":{\"activeAlertmanagers\":[],"
           "\"droppedAlertmanagers\":[]}}");
    EXPECT(&f, "/api/v1/targets", 200,
           "{\"status\":\"success\",\"data\":{\"activeTargets\":[],\"droppedTargets\":[],"
           "\"droppedTargetCounts\":{}}}");
    EXPECT(&f, "/api/v1/targets?state=active", 200,
           "{\"status\":\"success\",\"data\":{\"activeTargets\":[],\"droppedTargets\":[],"
           "\"droppedTargetCounts\":null}}");
    EXPECT(&f, "/api/v1/targets/metadata", 200, "{\"status\":\"success\",\"data\":[]}");
    EXPECT(&f, "/api/v1/metadata", 200, "{\"status\":\"success\",\"data\":{}}");
    EXPECT(&f, "/api/v1/scrape_pools", 200,
           "{\"status\":\"success\",\"data\":{\"scrapePools\":[]}}");
    api_fix_stop(&f);
}

/* A scrape manager stand-in: two active targets in pool "a", one dropped in "b". */
static struct mp_labels *mk(const char *n1, const char *v1, const char *n2, const char *v2)
{
    struct mp_label l[2] = {{mp_str_c(n1), mp_str_c(v1)}, {mp_str_c(n2), mp_str_c(v2)}};
    struct mp_labels *ls = NULL;
    cr_assert_eq(mp_labels_create(l, n2 ? 2 : 1, &ls, NULL), 0);
    return ls;
}

static void fake_targets(struct scrape_manager *m, bool active, bool dropped,
                         void (*fn)(void *, const struct scrape_target_info *), void *ctx)
{
    (void)m;
    struct mp_labels *d1 = mk("__address__", "x:1", "job", "a");
    struct mp_labels *l1 = mk("instance", "x:1", "job", "a");
    struct mp_labels *d2 = mk("__address__", "z:3", "job", "b");
    if (active) {
        struct scrape_target_info t = {.pool = "a",
                                       .discovered = d1,
                                       .labels = l1,
                                       .url = "http://x:1/metrics",
                                       .health = SCRAPE_HEALTH_UP,
                                       .last_error = "",
                                       .last_scrape_ms = 1700000000500,
                                       .last_duration_s = 0.25,
                                       .interval_ms = 15000,
                                       .timeout_ms = 10000};
        fn(ctx, &t);
    }
    if (dropped) {
        struct scrape_target_info t = {.pool = "b", .discovered = d2};
        fn(ctx, &t);
    }
    mp_labels_release(d1);
    mp_labels_release(l1);
    mp_labels_release(d2);
}

static void fake_metadata(struct scrape_manager *m,
                          void (*fn)(void *, const struct scrape_metadata_info *), void *ctx)
{
    (void)m;
    struct mp_labels *l1 = mk("instance", "x:1", "job", "a");
    struct mp_labels *l2 = mk("instance", "y:2", "job", "b");
    struct scrape_metadata_info a = {.pool = "a",
                                     .target = l1,
                                     .metric = MP_STR_LIT("up"),
                                     .type = SCRAPE_TYPE_GAUGE,
                                     .help = MP_STR_LIT("Up <1>.")};
    struct scrape_metadata_info b = {.pool = "a",
                                     .target = l2,
                                     .metric = MP_STR_LIT("up"),
                                     .type = SCRAPE_TYPE_GAUGE,
                                     .help = MP_STR_LIT("Up <1>.")};
    struct scrape_metadata_info c = {.pool = "a",
                                     .target = l1,
                                     .metric = MP_STR_LIT("http_requests_total"),
                                     .type = SCRAPE_TYPE_COUNTER,
                                     .help = MP_STR_LIT("Requests."),
                                     .unit = MP_STR_LIT("")};
    fn(ctx, &a);
    fn(ctx, &b);
    fn(ctx, &c);
    mp_labels_release(l1);
    mp_labels_release(l2);
}

Test(api, targets_and_metadata_from_the_manager)
{
    struct api_fix f;
    api_fix_open(&f);
    struct web_api_deps d;
    web_api_deps_init(&d);
    d.scrape = (struct scrape_manager *)&f; /* any non-NULL handle: the fakes ignore it */
    d.targets = fake_targets;
    d.metadata = fake_metadata;
    api_fix_start(&f, &d);
    EXPECT(&f, "/api/v1/targets", 200,
           "{\"status\":\"success\",\"data\":{\"activeTargets\":[{\"discoveredLabels\":"
           "{\"__address__\":\"x:1\",\"job\":\"a\"},\"labels\":{\"instance\":\"x:1\","
           "\"job\":\"a\"},\"scrapePool\":\"a\",\"scrapeUrl\":\"http://x:1/metrics\","
           "\"globalUrl\":\"http://x:1/metrics\",\"lastError\":\"\",\"lastScrape\":"
           "\"2023-11-14T22:13:20.5Z\",\"lastScrapeDuration\":0.25,\"health\":\"up\","
           "\"scrapeInterval\":\"15s\",\"scrapeTimeout\":\"10s\"}],\"droppedTargets\":"
           "[{\"discoveredLabels\":{\"__address__\":\"z:3\",\"job\":\"b\"}}],"
           "\"droppedTargetCounts\":{\"b\":1}}}");
    EXPECT(&f, "/api/v1/targets?state=dropped&scrapePool=a", 200,
           "{\"status\":\"success\",\"data\":{\"activeTargets\":[],\"droppedTargets\":[],"
           "\"droppedTargetCounts\":{}}}");
    EXPECT(&f, "/api/v1/targets?state=any&scrapePool=b", 200,
           "{\"status\":\"success\",\"data\":{\"activeTargets\":[],\"droppedTargets\":"
           "[{\"discoveredLabels\":{\"__address__\":\"z:3\",\"job\":\"b\"}}],"
           "\"droppedTargetCounts\":{\"b\":1}}}");
    EXPECT(&f, "/api/v1/scrape_pools", 200,
           "{\"status\":\"success\",\"data\":{\"scrapePools\":[\"a\",\"b\"]}}");
    EXPECT(&f, "/api/v1/metadata", 200,
           "{\"status\":\"success\",\"data\":{\"http_requests_total\":[{\"type\":"
           "\"counter\",\"help\":\"Requests.\",\"unit\":\"\"}],\"up\":[{\"type\":"
           "\"gauge\",\"help\":\"Up \\u003c1\\u003e.\",\"unit\":\"\"}]}}");
    EXPECT(&f, "/api/v1/metadata?limit=1&metric=up", 200,
           "{\"status\":\"success\",\"data\":{\"up\":[{\"type\":"
           "\"gauge\",\"help\":\"Up \\u003c1\\u003e.\",\"unit\":\"\"}]}}");
    EXPECT(&f, "/api/v1/targets/metadata?match_target={job=\"b\"}", 200,
           "{\"status\":\"success\",\"data\":[{\"target\":{\"instance\":\"y:2\",\"job\":"
           "\"b\"},\"metric\":\"up\",\"type\":\"gauge\",\"help\":\"Up \\u003c1\\u003e.\","
           "\"unit\":\"\"}]}");
    EXPECT(&f, "/api/v1/targets/metadata?metric=http_requests_total", 200,
           "{\"status\":\"success\",\"data\":[{\"target\":{\"instance\":\"x:1\",\"job\":"
           "\"a\"},\"type\":\"counter\",\"help\":\"Requests.\",\"unit\":\"\"}]}");
    EXPECT(&f, "/api/v1/targets/metadata?limit=1", 200,
           "{\"status\":\"success\",\"data\":[{\"target\":{\"instance\":\"x:1\",\"job\":"
           "\"a\"},\"metric\":\"up\",\"type\":\"gauge\",\"help\":\"Up \\u003c1\\u003e.\","
           "\"unit\":\"\"}]}");
    api_fix_stop(&f);
}

/* ---- admin ---- */

Test(api, admin_disabled)
{
    struct api_fix f;
    api_fix_open(&f);
    api_fix_start(&f, NULL);
    static const char *const paths[] = {"/api/v1/admin/tsdb/delete_series?match[]=up",
                                        "/api/v1/admin/tsdb/clean_tombstones",
                                        "/api/v1/admin/tsdb/snapshot"};
    for (size_t i = 0; i < 3; i++) {
        for (int m = 0; m < 2; m++) {
            struct reply r;
            request_h(m ? "PUT" : "POST", api_url(&f, paths[i]), "", NULL, &r);
            cr_expect_eq(r.code, 500);
            cr_expect_str_eq(r.body, "{\"status\":\"error\",\"errorType\":\"unavailable\","
                                     "\"error\":\"admin APIs disabled\"}");
            reply_free(&r);
        }
        struct reply r;
        api_get(&f, paths[i], &r);
        cr_expect_eq(r.code, 405);
        reply_free(&r);
    }
    api_fix_stop(&f);
}

Test(api, admin_enabled)
{
    struct api_fix f;
    api_fix_open(&f);
    fill(&f);
    struct web_api_deps d;
    web_api_deps_init(&d);
    d.enable_admin = true;
    api_fix_start(&f, &d);
    struct reply r;
    api_post_form(&f, "/api/v1/admin/tsdb/delete_series", "", &r);
    cr_expect_eq(r.code, 400);
    cr_expect_str_eq(r.body, BAD("no match[] parameter provided"));
    reply_free(&r);
    api_post_form(&f, "/api/v1/admin/tsdb/delete_series", "match[]=up&start=x", &r);
    cr_expect_eq(r.code, 400);
    reply_free(&r);
    api_post_form(&f, "/api/v1/admin/tsdb/delete_series", "match[]=up%7Bjob%3D%22a%22%7D", &r);
    cr_expect_eq(r.code, 204, "%s", r.body);
    cr_expect_str_eq(r.body, "");
    reply_free(&r);
    EXPECT(&f, "/api/v1/series?match[]=up", 200,
           "{\"status\":\"success\",\"data\":["
           "{\"__name__\":\"up\",\"instance\":\"y:2\",\"job\":\"b\"}]}");
    request_h("PUT", api_url(&f, "/api/v1/admin/tsdb/clean_tombstones"), "", NULL, &r);
    cr_expect_eq(r.code, 204, "%s", r.body);
    reply_free(&r);
    api_post_form(&f, "/api/v1/admin/tsdb/snapshot", "skip_head=maybe", &r);
    cr_expect_eq(r.code, 400);
    cr_expect_str_eq(r.body, BAD("invalid parameter \\\"skip_head\\\": unable to parse boolean: "
                                 "strconv.ParseBool: parsing \\\"maybe\\\": invalid syntax"));
    reply_free(&r);
    api_post_form(&f, "/api/v1/admin/tsdb/snapshot", "skip_head=false", &r);
    cr_expect_eq(r.code, 200, "%s", r.body);
    const char *p = strstr(r.body, "{\"status\":\"success\",\"data\":{\"name\":\"");
    cr_assert_eq(p, r.body, "%s", r.body);
    char name[64] = "";
    sscanf(r.body + strlen("{\"status\":\"success\",\"data\":{\"name\":\""), "%63[^\"]", name);
    cr_expect_eq(strlen(name), 33, "%s", name); /* 20060102T150405Z-<16 hex> */
    cr_expect_eq(name[8], 'T');
    cr_expect_eq(name[15], 'Z');
    cr_expect_eq(name[16], '-');
    char path[256];
    snprintf(path, sizeof path, "%s/snapshots/%s", f.dir, name);
    struct stat st;
    cr_expect_eq(stat(path, &st), 0, "%s", path);
    reply_free(&r);
    api_fix_stop(&f);
}

/* ---- remote write ---- */

/* A snappy-compressed WriteRequest with one series of n samples at t0, t0+1000, ... */
static char *write_body(const char *name, int64_t t0, size_t n, size_t *len)
{
    RemotePb__Label l[2];
    RemotePb__Label *lp[2] = {&l[0], &l[1]};
    remote_pb__label__init(&l[0]);
    remote_pb__label__init(&l[1]);
    l[0].name = (ProtobufCBinaryData){8, (uint8_t *)"__name__"};
    l[0].value = (ProtobufCBinaryData){strlen(name), (uint8_t *)name};
    l[1].name = (ProtobufCBinaryData){3, (uint8_t *)"job"};
    l[1].value = (ProtobufCBinaryData){2, (uint8_t *)"rw"};
    RemotePb__Sample s[8];
    RemotePb__Sample *sp[8];
    for (size_t i = 0; i < n && i < 8; i++) {
        remote_pb__sample__init(&s[i]);
        s[i].value = (double)i + 0.5;
        s[i].timestamp = t0 + (int64_t)i * 1000;
        sp[i] = &s[i];
    }
    RemotePb__TimeSeries ts;
    RemotePb__TimeSeries *tsp = &ts;
    remote_pb__time_series__init(&ts);
    ts.n_labels = 2;
    ts.labels = lp;
    ts.n_samples = n < 8 ? n : 8;
    ts.samples = sp;
    RemotePb__WriteRequest wr;
    remote_pb__write_request__init(&wr);
    wr.n_timeseries = 1;
    wr.timeseries = &tsp;
    size_t pn = remote_pb__write_request__get_packed_size(&wr);
    uint8_t *pb = malloc(pn);
    cr_assert_eq(remote_pb__write_request__pack(&wr, pb), pn);
    *len = snappy_max_compressed_length(pn);
    char *out = malloc(*len);
    cr_assert_eq(snappy_compress((const char *)pb, pn, out, len), SNAPPY_OK);
    free(pb);
    return out;
}

static void post_write(const struct api_fix *f, const char *body, size_t len, const char *ctype,
                       const char *enc, struct reply *r)
{
    struct curl_slist *h = NULL;
    char buf[256];
    snprintf(buf, sizeof buf, "Content-Type: %s", ctype ? ctype : "");
    h = curl_slist_append(h, ctype ? buf : "Content-Type:");
    snprintf(buf, sizeof buf, "Content-Encoding: %s", enc ? enc : "");
    h = curl_slist_append(h, enc ? buf : "Content-Encoding:");
    memset(r, 0, sizeof *r);
    CURL *c = easy_for("POST", api_url(f, "/api/v1/write"), body, len, h, r);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->code);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    if (!r->body)
        r->body = calloc(1, 1);
}

Test(api, remote_write_disabled)
{
    struct api_fix f;
    api_fix_open(&f);
    api_fix_start(&f, NULL);
    size_t len;
    char *body = write_body("rw_metric", mp_now_ms(), 2, &len);
    struct reply r;
    post_write(&f, body, len, "application/x-protobuf", "snappy", &r);
    cr_expect_eq(r.code, 404);
    cr_expect_str_eq(r.body, "remote write receiver needs to be enabled with "
                             "--web.enable-remote-write-receiver\n");
    reply_free(&r);
    free(body);
    api_fix_stop(&f);
}

Test(api, remote_write)
{
    struct api_fix f;
    api_fix_open(&f);
    struct web_api_deps d;
    web_api_deps_init(&d);
    d.enable_remote_write = true;
    d.rw_max_decoded_bytes = 1 << 20;
    d.rw_caches = 1;
    struct mp_metrics_registry *reg = NULL;
    cr_assert_eq(mp_metrics_registry_create(&reg), 0);
    d.metrics = reg;
    api_fix_start(&f, &d);
    int64_t now = mp_now_ms();
    size_t len;
    char *body = NULL;
    struct reply r;
    /* twice: the second reuses the pooled decode cache */
    for (int i = 0; i < 2; i++) {
        free(body);
        body = write_body("rw_metric", now - 60000 + i * 10000, 3, &len);
        post_write(&f, body, len, "application/x-protobuf;proto=prometheus.WriteRequest", "snappy",
                   &r);
        cr_expect_eq(r.code, 204, "%s", r.body);
        cr_expect_str_eq(r.body, "");
        reply_free(&r);
    }
    /* no headers: counts as protobuf + snappy */
    char *b2 = write_body("rw_other", now - 10000, 1, &len);
    post_write(&f, b2, len, NULL, NULL, &r);
    cr_expect_eq(r.code, 204, "%s", r.body);
    reply_free(&r);
    free(b2);
    /* a series with an invalid metric name: skipped, counted, still 204 */
    char *b3 = write_body("bad-name", now - 10000, 1, &len);
    post_write(&f, b3, len, NULL, NULL, &r);
    cr_expect_eq(r.code, 204, "%s", r.body);
    reply_free(&r);
    free(b3);
    struct mp_buf page;
    mp_buf_init(&page, 0);
    cr_assert_eq(mp_metrics_render(reg, &page), 0);
    cr_expect(strstr(page.data, "prometheus_api_remote_write_invalid_labels_samples_total 1\n"),
              "%s", page.data);
    mp_buf_fini(&page);
    EXPECT(&f, "/api/v1/label/__name__/values", 200,
           "{\"status\":\"success\",\"data\":[\"rw_metric\",\"rw_other\"]}");
    /* an older sample: out of order, the whole request refused */
    char *old = write_body("rw_metric", now - 55000, 1, &len);
    post_write(&f, old, len, "application/x-protobuf", "snappy", &r);
    cr_expect_eq(r.code, 400, "%s", r.body);
    cr_expect(strstr(r.body, "out of order sample"), "%s", r.body);
    reply_free(&r);
    free(old);
    /* headers */
    post_write(&f, body, len, "application/json", "snappy", &r);
    cr_expect_eq(r.code, 415, "%s", r.body);
    reply_free(&r);
    post_write(&f, body, len, "application/x-protobuf", "gzip", &r);
    cr_expect_eq(r.code, 415, "%s", r.body);
    reply_free(&r);
    /* not snappy */
    post_write(&f, "\x05garbage", 8, "application/x-protobuf", "snappy", &r);
    cr_expect_eq(r.code, 400, "%s", r.body);
    cr_expect(r.len > 0 && r.body[r.len - 1] == '\n');
    reply_free(&r);
    /* snappy bomb: 100 KiB that expand to 2 MiB, above the 1 MiB decoded limit */
    size_t zn = (size_t)2 << 20, bn = snappy_max_compressed_length(zn);
    char *zeros = calloc(1, zn), *bomb = malloc(bn);
    cr_assert_eq(snappy_compress(zeros, zn, bomb, &bn), SNAPPY_OK);
    cr_assert_lt(bn, (size_t)200 << 10);
    post_write(&f, bomb, bn, "application/x-protobuf", "snappy", &r);
    cr_expect_eq(r.code, 413, "%ld %s", r.code, r.body);
    reply_free(&r);
    free(zeros);
    free(bomb);
    free(body);
    request("GET", api_url(&f, "/api/v1/write"), &r);
    cr_expect_eq(r.code, 405);
    reply_free(&r);
    api_fix_stop(&f);
    mp_metrics_registry_destroy(reg);
}

/* ---- federate ---- */

static struct mp_labels *fake_external(void *ctx)
{
    (void)ctx;
    return mk("replica", "r1", "zone", "z");
}

Test(api, federate)
{
    struct api_fix f;
    api_fix_open(&f);
    int64_t now = mp_now_ms();
    api_fix_add(&f, now - 2000, 1, "__name__", "up", "job", "a", "instance", "x:1", NULL);
    api_fix_add(&f, now - 1000, 2, "__name__", "up", "job", "a", "instance", "x:1", NULL);
    api_fix_add(&f, now - 1000, 1e-7, "__name__", "a_metric", "b", "q\"uote\\\n", "zone", "own",
                NULL);
    api_fix_add(&f, now - 1000, tsdb_stale_nan(), "__name__", "stale", "job", "a", NULL);
    api_fix_add(&f, now - 3600 * 1000, 5, "__name__", "old", "job", "a", NULL);
    struct web_api_deps d;
    web_api_deps_init(&d);
    d.external_labels = fake_external;
    api_fix_start(&f, &d);
    struct reply r;
    api_get(&f, "/federate", &r);
    cr_expect_eq(r.code, 200);
    cr_expect_str_eq(r.body, "");
    reply_free(&r);
    api_get(&f, "/federate?match[]={job=\"a\"}&match[]=a_metric&match[]=up", &r);
    cr_expect_eq(r.code, 200);
    char ct[128];
    cr_expect(reply_header(&r, "Content-Type", ct, sizeof ct));
    cr_expect_str_eq(ct, "text/plain; version=0.0.4; charset=utf-8");
    char want[1024];
    snprintf(
        want, sizeof want,
        "# TYPE a_metric untyped\n"
        "a_metric{b=\"q\\\"uote\\\\\\n\",zone=\"own\",instance=\"\",replica=\"r1\"} 1e-07 %lld\n"
        "# TYPE up untyped\n"
        "up{instance=\"x:1\",job=\"a\",replica=\"r1\",zone=\"z\"} 2 %lld\n",
        (long long)(now - 1000), (long long)(now - 1000));
    cr_expect_str_eq(r.body, want);
    reply_free(&r);
    api_get(&f, "/federate?match[]=up{", &r);
    cr_expect_eq(r.code, 400);
    cr_expect_str_eq(r.body, "1:4: parse error: unexpected end of input inside braces\n");
    reply_free(&r);
    api_fix_stop(&f);
}

Test(api, not_ready_and_unknown)
{
    struct api_fix f;
    api_fix_open(&f);
    api_fix_start(&f, NULL);
    web_server_set_ready(f.srv, false);
    struct reply r;
    api_get(&f, "/federate?match[]=up", &r);
    cr_expect_eq(r.code, 503);
    reply_free(&r);
    api_get(&f, "/api/v1/labels", &r);
    cr_expect_eq(r.code, 503);
    reply_free(&r);
    api_get(&f, "/api/v1/status/walreplay", &r);
    cr_expect_eq(r.code, 200);
    reply_free(&r);
    web_server_set_ready(f.srv, true);
    api_get(&f, "/api/v1/nope", &r);
    cr_expect_eq(r.code, 404);
    reply_free(&r);
    api_fix_stop(&f);
}

Test(api, error_types)
{
    cr_expect_eq(web_api_error_of(MP_EPARSE), WEB_API_BAD_DATA);
    cr_expect_eq(web_api_error_of(MP_EINVAL), WEB_API_BAD_DATA);
    cr_expect_eq(web_api_error_of(MP_EEXEC), WEB_API_EXECUTION);
    cr_expect_eq(web_api_error_of(MP_ELIMIT), WEB_API_EXECUTION);
    cr_expect_eq(web_api_error_of(MP_ETIMEOUT), WEB_API_TIMEOUT);
    cr_expect_eq(web_api_error_of(MP_ECANCELED), WEB_API_CANCELED);
    cr_expect_eq(web_api_error_of(MP_EIO), WEB_API_INTERNAL);
    cr_expect_eq(web_api_error_of(MP_ENOMEM), WEB_API_INTERNAL);
}
