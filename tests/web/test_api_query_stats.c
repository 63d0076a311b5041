/* SPDX-License-Identifier: Apache-2.0 */
/* tests/web/test_api_query_stats.c: the `stats` parameter of /api/v1/query and query_range
 * (Prometheus 2.55's stats object: key order, exact sample totals, per-step totals only with
 * stats=all and promql-per-step-stats) and cancellation over HTTP: a client that hangs up
 * while its query waits gets it cancelled (counted as a 499), and after the engine's shutdown
 * call queries answer errorType canceled. */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/metrics.h"
#include "query/query.h"
#include "tsdb/tsdb.h"
#include "test_api_fixture.h"
#include "test_cancel_holder.h" /* tests/query */

TestSuite(api_query_stats, .init = api_suite_init);

static void start_with(struct api_fix *f, const struct query_engine_opts *o)
{
    api_fix_open(f);
    api_fix_add(f, 1000, 1, "__name__", "up", "job", "a", "instance", "x:1", NULL);
    api_fix_add(f, 2000, 0, "__name__", "up", "job", "b", "instance", "y:2", NULL);
    for (int i = 0; i <= 10; i++)
        api_fix_add(f, i * 15000, i * 10.0, "__name__", "reqs_total", "job", "a", NULL);
    struct mp_err err = {0};
    cr_assert_eq(query_engine_create(o, &f->engine, &err), 0, "%s", err.msg);
    api_fix_start(f, NULL);
}

/* The stats object of a success body, from "stats" to the end of data. */
static const char *stats_of(const struct reply *r)
{
    const char *s = strstr(r->body, ",\"stats\":{\"timings\":{");
    cr_assert_not_null(s, "no stats in %s", r->body);
    return s;
}

/* Checks the timings object: six keys in Prometheus's order, non-negative numbers. */
static void check_timings(const char *s)
{
    static const char *const keys[] = {"evalTotalTime", "resultSortTime", "queryPreparationTime",
                                       "innerEvalTime", "execQueueTime", "execTotalTime"};
    const char *p = strstr(s, "\"timings\":{");
    cr_assert_not_null(p);
    p += strlen("\"timings\":{");
    for (size_t i = 0; i < 6; i++) {
        char want[64];
        snprintf(want, sizeof want, "\"%s\":", keys[i]);
        cr_assert_eq(strncmp(p, want, strlen(want)), 0, "at %s: %s", keys[i], p);
        p += strlen(want);
        char *end;
        double v = strtod(p, &end);
        cr_assert_neq(end, p, "%s: no number", keys[i]);
        cr_expect_geq(v, 0, "%s = %g", keys[i], v);
        p = end;
        cr_assert_eq(*p, i < 5 ? ',' : '}', "after %s: %s", keys[i], p);
        p++;
    }
}

static void expect_samples(struct api_fix *f, const char *path, const char *samples)
{
    struct reply r;
    api_get(f, path, &r);
    cr_assert_eq(r.code, 200, "%s: %ld %s", path, r.code, r.body);
    const char *s = stats_of(&r);
    check_timings(s);
    const char *p = strstr(s, "},\"samples\":{");
    cr_assert_not_null(p, "%s", s);
    p += 2;
    /* peakSamples: any count; the rest exactly */
    const char *peak = strstr(p, ",\"peakSamples\":");
    cr_assert_not_null(peak, "%s", p);
    cr_expect_eq(strncmp(p, samples, strlen(samples)), 0, "%s:\n got %.*s\nwant %s", path,
                 (int)(peak - p), p, samples);
    cr_expect_eq((size_t)(peak - p), strlen(samples), "%s: %.*s", path, (int)(peak - p), p);
    char *end;
    long long n = strtoll(peak + strlen(",\"peakSamples\":"), &end, 10);
    cr_expect_geq(n, 1);
    cr_expect_str_eq(end, "}}}}", "%s", end);
    reply_free(&r);
}

Test(api_query_stats, totals)
{
    struct query_engine_opts o;
    query_engine_opts_init(&o);
    struct api_fix f;
    start_with(&f, &o);
    expect_samples(&f, "/api/v1/query?query=up&time=2&stats=1",
                   "\"samples\":{\"totalQueryableSamples\":2");
    expect_samples(&f, "/api/v1/query?query=count_over_time(reqs_total[1m])&time=150&stats=true",
                   "\"samples\":{\"totalQueryableSamples\":5");
    expect_samples(&f, "/api/v1/query_range?query=reqs_total&start=0&end=150&step=15&stats=1",
                   "\"samples\":{\"totalQueryableSamples\":11");
    /* all without promql-per-step-stats: the same shape */
    expect_samples(&f,
                   "/api/v1/query_range?query=rate(reqs_total[30s])&start=30&end=60&step=15"
                   "&stats=all",
                   "\"samples\":{\"totalQueryableSamples\":9");
    /* no stats, empty stats */
    EXPECT(&f, "/api/v1/query?query=up{job=\"b\"}&time=2&stats=", 200,
           OK("{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"__name__\":\"up\","
              "\"instance\":\"y:2\",\"job\":\"b\"},\"value\":[2,\"0\"]}]}"));
    api_fix_stop(&f);
}

Test(api_query_stats, per_step)
{
    struct query_engine_opts o;
    query_engine_opts_init(&o);
    o.per_step_stats = true;
    struct api_fix f;
    start_with(&f, &o);
    expect_samples(&f,
                   "/api/v1/query_range?query=rate(reqs_total[30s])&start=30&end=60&step=15"
                   "&stats=all",
                   "\"samples\":{\"totalQueryableSamplesPerStep\":[[30,3],[45,3],[60,3]],"
                   "\"totalQueryableSamples\":9");
    expect_samples(&f, "/api/v1/query?query=up&time=2.5&stats=all",
                   "\"samples\":{\"totalQueryableSamplesPerStep\":[[2.5,2]],"
                   "\"totalQueryableSamples\":2");
    /* only "all" asks for them */
    expect_samples(&f, "/api/v1/query?query=up&time=2.5&stats=1",
                   "\"samples\":{\"totalQueryableSamples\":2");
    api_fix_stop(&f);
}

/* ---- cancellation ---- */

/* True once the registry's text has line (bounded wait: the other side is a server thread). */
static bool wait_for_line(struct mp_metrics_registry *reg, const char *line)
{
    for (int i = 0; i < 20000; i++) {
        struct mp_buf b;
        mp_buf_init(&b, 0);
        cr_assert_eq(mp_metrics_render(reg, &b), 0);
        bool found = b.data && strstr(b.data, line) != NULL;
        mp_buf_fini(&b);
        if (found)
            return true;
        usleep(1000);
    }
    return false;
}

Test(api_query_stats, client_hangs_up_and_shutdown)
{
    struct mp_metrics_registry *ereg;
    cr_assert_eq(mp_metrics_registry_create(&ereg), 0);
    struct query_engine_opts o;
    query_engine_opts_init(&o);
    o.max_concurrency = 1;
    o.metrics = ereg;
    struct api_fix f;
    start_with(&f, &o);

    struct cancel_holder h;
    cancel_holder_start(&h, f.engine, f.db, "up", 2000);

    /* a real client: sends its query, which queues behind the holder, then hangs up */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(web_server_port(f.srv, 0)),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    static const char req[] = "GET /api/v1/query?query=up&time=2 HTTP/1.1\r\n"
                              "Host: 127.0.0.1\r\n\r\n";
    cr_assert_eq(send(fd, req, sizeof req - 1, 0), (ssize_t)(sizeof req - 1));
    cr_assert(wait_for_line(ereg, "prometheus_engine_queries 2\n"), "the query never queued");
    close(fd);
    cr_assert(wait_for_line(f.reg,
                            "prometheus_http_requests_total{code=\"499\",handler=\"/api/v1/"
                            "query\"} 1\n"),
              "the hang-up was not noticed");

    cancel_holder_finish(&h);
    cr_expect_eq(h.rc, 0, "the holder itself was not cancelled: %s", h.err.msg);

    /* a client that stays gets its answer */
    EXPECT(&f, "/api/v1/query?query=up{job=\"a\"}&time=2", 200,
           OK("{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"__name__\":\"up\","
              "\"instance\":\"x:1\",\"job\":\"a\"},\"value\":[2,\"1\"]}]}"));
    /* shutdown */
    query_engine_cancel_all(f.engine);
    EXPECT(&f, "/api/v1/query?query=up&time=2", 499,
           "{\"status\":\"error\",\"errorType\":\"canceled\",\"error\":\"query was canceled in "
           "query queue\"}");
    EXPECT(&f, "/api/v1/query_range?query=up&start=0&end=2&step=1", 499,
           "{\"status\":\"error\",\"errorType\":\"canceled\",\"error\":\"query was canceled in "
           "query queue\"}");
    api_fix_stop(&f);
    mp_metrics_registry_destroy(ereg);
}
