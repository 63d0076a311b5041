/* SPDX-License-Identifier: Apache-2.0 */
/* tests/web/test_api_query.c: /api/v1/query and /api/v1/query_range over a real engine and a
 * tsdb filled through the appender: result shapes and layouts (vector, matrix, scalar,
 * string), GET and POST forms, every bad parameter in Prometheus's validation order, the
 * 11,000-point guard at its edge, errorType -> HTTP status for parse, execution and timeout
 * errors, stats, lookback_delta and the annotations of the envelope. Expected bodies were
 * checked against Prometheus 2.42 where 2.55 answers the same. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/time.h"
#include "query/query.h"
#include "tsdb/tsdb.h"
#include "test_api_fixture.h"

TestSuite(api_query, .init = api_suite_init);

static void start_limited(struct api_fix *f, int64_t timeout_ms, int64_t max_samples)
{
    api_fix_open(f);
    api_fix_add(f, 1000, 1, "__name__", "up", "job", "a", "instance", "x:1", NULL);
    api_fix_add(f, 2000, 0, "__name__", "up", "job", "b", "instance", "y:2", NULL);
    for (int i = 0; i <= 10; i++)
        api_fix_add(f, i * 15000, i * 10.0, "__name__", "reqs_total", "job", "a", NULL);
    struct query_engine_opts o;
    query_engine_opts_init(&o);
    if (timeout_ms)
        o.timeout_ms = timeout_ms;
    if (max_samples)
        o.max_samples = max_samples;
    struct mp_err err = {0};
    cr_assert_eq(query_engine_create(&o, &f->engine, &err), 0, "%s", err.msg);
    api_fix_start(f, NULL);
}

static void start(struct api_fix *f, int64_t timeout_ms)
{
    start_limited(f, timeout_ms, 0);
}

Test(api_query, instant_shapes)
{
    struct api_fix f;
    start(&f, 0);
    EXPECT(&f, "/api/v1/query?query=up{job=\"a\"}&time=2", 200,
           OK("{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"__name__\":\"up\","
              "\"instance\":\"x:1\",\"job\":\"a\"},\"value\":[2,\"1\"]}]}"));
    EXPECT(
        &f, "/api/v1/query?query=sort_desc(up)&time=2.5", 200,
        OK("{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"__name__\":\"up\","
           "\"instance\":\"x:1\",\"job\":\"a\"},\"value\":[2.500,\"1\"]},{\"metric\":{"
           "\"__name__\":\"up\",\"instance\":\"y:2\",\"job\":\"b\"},\"value\":[2.500,\"0\"]}]}"));
    EXPECT(&f, "/api/v1/query?query=up&time=1970-01-01T00:00:00.5Z", 200,
           OK("{\"resultType\":\"vector\",\"result\":[]}"));
    EXPECT(&f, "/api/v1/query?query=1e21&time=1.5", 200,
           OK("{\"resultType\":\"scalar\",\"result\":[1.5,\"1000000000000000000000\"]}"));
    EXPECT(&f, "/api/v1/query?query=vector(1e-7)&time=1.5", 200,
           OK("{\"resultType\":\"vector\",\"result\":[{\"metric\":{},\"value\":[1.500,"
              "\"1e-07\"]}]}"));
    EXPECT(&f, "/api/v1/query?query=\"a<b\"&time=1.5", 200,
           OK("{\"resultType\":\"string\",\"result\":[1.5,\"a\\u003cb\"]}"));
    EXPECT(&f, "/api/v1/query?query=-1/0&time=4", 200,
           OK("{\"resultType\":\"scalar\",\"result\":[4,\"-Inf\"]}"));
    EXPECT(&f, "/api/v1/query?query=up[2s]&time=2", 200,
           OK("{\"resultType\":\"matrix\",\"result\":[{\"metric\":{\"__name__\":\"up\","
              "\"instance\":\"x:1\",\"job\":\"a\"},\"values\":[[1,\"1\"]]},{\"metric\":{"
              "\"__name__\":\"up\",\"instance\":\"y:2\",\"job\":\"b\"},\"values\":[[2,\"0\"]]}]}"));
    /* lookback_delta shorter than the age of the sample */
    EXPECT(&f, "/api/v1/query?query=up{job=\"a\"}&time=200&lookback_delta=1m", 200,
           OK("{\"resultType\":\"vector\",\"result\":[]}"));
    EXPECT(&f, "/api/v1/query?query=up{job=\"a\"}&time=200", 200,
           OK("{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"__name__\":\"up\","
              "\"instance\":\"x:1\",\"job\":\"a\"},\"value\":[200,\"1\"]}]}"));
    struct reply r;
    api_post_form(&f, "/api/v1/query", "query=vector(2)%2B1&time=3", &r);
    cr_expect_eq(r.code, 200);
    cr_expect_str_eq(r.body, OK("{\"resultType\":\"vector\",\"result\":[{\"metric\":{},"
                                "\"value\":[3,\"3\"]}]}"));
    reply_free(&r);
    api_get(&f, "/api/v1/query?query=time()&time=1.5&stats=1", &r);
    cr_expect_eq(r.code, 200);
    cr_expect(strstr(r.body, "\"result\":[1.5,\"1.5\"],\"stats\":{\"timings\":{\"evalTotalTime\":"),
              "%s", r.body);
    cr_expect(strstr(r.body, "\"samples\":{\"totalQueryableSamples\":"), "%s", r.body);
    reply_free(&r);
    api_fix_stop(&f);
}

Test(api_query, range_shapes)
{
    struct api_fix f;
    start(&f, 0);
    EXPECT(&f, "/api/v1/query_range?query=up{job=\"a\"}&start=0&end=3&step=1", 200,
           OK("{\"resultType\":\"matrix\",\"result\":[{\"metric\":{\"__name__\":\"up\","
              "\"instance\":\"x:1\",\"job\":\"a\"},\"values\":[[1,\"1\"],[2,\"1\"],[3,\"1\"]]}]}"));
    EXPECT(&f, "/api/v1/query_range?query=1&start=0&end=2&step=1", 200,
           OK("{\"resultType\":\"matrix\",\"result\":[{\"metric\":{},\"values\":[[0,\"1\"],"
              "[1,\"1\"],[2,\"1\"]]}]}"));
    EXPECT(&f, "/api/v1/query_range?query=nothing&start=0&end=2&step=1", 200,
           OK("{\"resultType\":\"matrix\",\"result\":[]}"));
    EXPECT(&f, "/api/v1/query_range?query=rate(reqs_total[1m])&start=60&end=120&step=30s", 200,
           OK("{\"resultType\":\"matrix\",\"result\":[{\"metric\":{\"job\":\"a\"},\"values\":"
              "[[60,\"0.6666666666666666\"],[90,\"0.6666666666666666\"],"
              "[120,\"0.6666666666666666\"]]}]}"));
    EXPECT(&f, "/api/v1/query_range?query=up{job=\"a\"}&start=1.5&end=2.5&step=0.5", 200,
           OK("{\"resultType\":\"matrix\",\"result\":[{\"metric\":{\"__name__\":\"up\","
              "\"instance\":\"x:1\",\"job\":\"a\"},\"values\":[[1.500,\"1\"],[2,\"1\"],"
              "[2.500,\"1\"]]}]}"));
    struct reply r;
    api_post_form(&f, "/api/v1/query_range", "query=2&start=0&end=1&step=1", &r);
    cr_expect_eq(r.code, 200);
    cr_expect_str_eq(r.body, OK("{\"resultType\":\"matrix\",\"result\":[{\"metric\":{},"
                                "\"values\":[[0,\"2\"],[1,\"2\"]]}]}"));
    reply_free(&r);
    /* the point guard: 11,001 points pass, 11,002 do not */
    api_get(&f, "/api/v1/query_range?query=1&start=0&end=11000&step=1", &r);
    cr_expect_eq(r.code, 200);
    reply_free(&r);
    EXPECT(&f, "/api/v1/query_range?query=1&start=0&end=11001&step=1", 400,
           BAD("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing "
               "the query resolution (?step=XX)"));
    api_fix_stop(&f);
}

Test(api_query, bad_parameters)
{
    struct api_fix f;
    start(&f, 0);
    EXPECT(&f, "/api/v1/query?query=up{", 400,
           BAD("invalid parameter \\\"query\\\": 1:4: parse error: unexpected end of input "
               "inside braces"));
    EXPECT(&f, "/api/v1/query", 400,
           BAD("invalid parameter \\\"query\\\": 1:1: parse error: no expression found in "
               "input"));
    EXPECT(&f, "/api/v1/query?query=up&time=abc", 400,
           BAD("invalid parameter \\\"time\\\": Invalid time value for 'time': cannot parse "
               "\\\"abc\\\" to a valid timestamp"));
    EXPECT(&f, "/api/v1/query?query=up&timeout=abc", 400,
           BAD("invalid parameter \\\"timeout\\\": cannot parse \\\"abc\\\" to a valid "
               "duration"));
    EXPECT(&f, "/api/v1/query?query=up&lookback_delta=1ns", 400,
           BAD("invalid parameter \\\"lookback_delta\\\": cannot parse \\\"1ns\\\" to a valid "
               "duration"));
    EXPECT(&f, "/api/v1/query_range?query=up", 400,
           BAD("invalid parameter \\\"start\\\": cannot parse \\\"\\\" to a valid timestamp"));
    EXPECT(&f, "/api/v1/query_range?query=up&start=1", 400,
           BAD("invalid parameter \\\"end\\\": cannot parse \\\"\\\" to a valid timestamp"));
    EXPECT(&f, "/api/v1/query_range?query=up&start=10&end=5&step=1", 400,
           BAD("invalid parameter \\\"end\\\": end timestamp must not be before start time"));
    EXPECT(&f, "/api/v1/query_range?query=up&start=1&end=5", 400,
           BAD("invalid parameter \\\"step\\\": cannot parse \\\"\\\" to a valid duration"));
    EXPECT(&f, "/api/v1/query_range?query=up&start=1&end=5&step=x", 400,
           BAD("invalid parameter \\\"step\\\": cannot parse \\\"x\\\" to a valid duration"));
    EXPECT(&f, "/api/v1/query_range?query=up&start=1&end=5&step=0", 400,
           BAD("invalid parameter \\\"step\\\": zero or negative query resolution step widths "
               "are not accepted. Try a positive integer"));
    EXPECT(&f, "/api/v1/query_range?query=up&start=1&end=5&step=-1", 400,
           BAD("invalid parameter \\\"step\\\": zero or negative query resolution step widths "
               "are not accepted. Try a positive integer"));
    EXPECT(&f, "/api/v1/query_range?query=up{&start=0&end=11&step=1", 400,
           BAD("1:4: parse error: unexpected end of input inside braces"));
    EXPECT(&f, "/api/v1/query_range?query=up[5m]&start=0&end=11&step=1", 400,
           BAD("invalid expression type \\\"range vector\\\" for range query, must be Scalar "
               "or instant Vector"));
    EXPECT(&f, "/api/v1/query_range?query=up&start=0&end=11&step=1&timeout=1ns", 400,
           BAD("invalid parameter \\\"timeout\\\": cannot parse \\\"1ns\\\" to a valid "
               "duration"));
    api_fix_stop(&f);
}

Test(api_query, execution_errors)
{
    struct api_fix f;
    start(&f, 0);
    struct reply r;
    api_get(&f,
            "/api/v1/query?query=label_replace(label_replace(up,\"job\",\"x\",\"\",\"\"),"
            "\"instance\",\"x\",\"\",\"\")&time=3",
            &r);
    cr_expect_eq(r.code, 422, "%s", r.body);
    cr_expect(strstr(r.body, "{\"status\":\"error\",\"errorType\":\"execution\",\"error\":") ==
                  r.body,
              "%s", r.body);
    reply_free(&r);
    api_get(&f, "/api/v1/query?query=up%2Bon()up&time=3", &r);
    cr_expect_eq(r.code, 422, "%s", r.body);
    cr_expect(strstr(r.body, "\"errorType\":\"execution\""), "%s", r.body);
    reply_free(&r);
    api_fix_stop(&f);
}

Test(api_query, expired_timeout)
{
    struct api_fix f;
    start(&f, 0);
    static const char timeout[] = "{\"status\":\"error\",\"errorType\":\"timeout\",\"error\":"
                                  "\"query timed out in query execution\"}";
    EXPECT(&f, "/api/v1/query?query=1&timeout=0", 503, timeout);
    EXPECT(&f, "/api/v1/query_range?query=1&start=0&end=1&step=1&timeout=-1", 503, timeout);
    EXPECT(&f, "/api/v1/query?query=up{&timeout=0", 400,
           BAD("invalid parameter \\\"query\\\": 1:4: parse error: unexpected end of input "
               "inside braces"));
    api_fix_stop(&f);
}

Test(api_query, too_many_samples)
{
    struct api_fix f;
    start_limited(&f, 0, 5);
    EXPECT(&f, "/api/v1/query?query=count_over_time(reqs_total[10m])&time=150", 422,
           "{\"status\":\"error\",\"errorType\":\"execution\",\"error\":\"query processing "
           "would load too many samples into memory in query execution\"}");
    EXPECT(&f, "/api/v1/query?query=reqs_total&time=150", 200,
           OK("{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"__name__\":\"reqs_total\","
              "\"job\":\"a\"},\"value\":[150,\"100\"]}]}"));
    api_fix_stop(&f);
}

Test(api_query, annotations)
{
    struct api_fix f;
    start(&f, 0);
    struct reply r;
    /* rate over a series whose name does not look like a counter: an info in 2.55 */
    api_get(&f, "/api/v1/query?query=rate(up[5m])&time=3", &r);
    cr_expect_eq(r.code, 200, "%s", r.body);
    cr_expect(strstr(r.body, "\"infos\":[\"PromQL info: metric might not be a counter"), "%s",
              r.body);
    cr_expect(!strstr(r.body, "\"warnings\""), "%s", r.body);
    reply_free(&r);
    api_fix_stop(&f);
}
