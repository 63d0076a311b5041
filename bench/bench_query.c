/* SPDX-License-Identifier: Apache-2.0 */
/* bench/bench_query.c: the Linkerd dashboard queries (linkerd-workload.md 3.2: request
 * counts by deployment/classification/tls, latency quantiles from irate over buckets, success
 * rates, open connections) evaluated in-process by the query engine over a tsdb filled by
 * meshgen. Each query runs as an instant query at the end of the data and as a range query over
 * the last --range-ms with --step-ms; every run is timed on the monotonic clock. Output: one
 * JSON line per query and mode with the median and p99 (nearest rank) in ms, the result size
 * and the samples the engine read; a first line describes the data.
 *
 *   bench_query [--smoke] [--namespaces N] [--deployments N] [--replicas N] [--peers N]
 *               [--duration-ms D] [--interval-ms I] [--range-ms R] [--step-ms S] [--iters K]
 *               [--filter SUBSTRING] [--query PROMQL]
 * Defaults: about 90k series (4 namespaces of 10 deployments x 3 replicas) over 1 h at 10 s;
 * --namespaces 45 gives about 1M. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/mesh_fill.h"
#include "meshsim/meshsim.h"
#include "common/labels.h"
#include "common/time.h"
#include "query/query.h"
#include "tsdb/db.h"
#include "tsdb/tsdb.h"

static const char *const queries[] = {
    "sum(increase(response_total{direction=\"inbound\"}[1m])) by (deployment, classification, "
    "tls)",
    "histogram_quantile(0.5, sum(irate(response_latency_ms_bucket{direction=\"inbound\"}[1m])) "
    "by (le, deployment))",
    "histogram_quantile(0.95, sum(irate(response_latency_ms_bucket{direction=\"inbound\"}[1m])) "
    "by (le, deployment))",
    "histogram_quantile(0.99, sum(irate(response_latency_ms_bucket{direction=\"inbound\"}[1m])) "
    "by (le, deployment))",
    "sum(irate(response_total{classification=\"success\", direction=\"inbound\"}[1m])) by "
    "(deployment) / sum(irate(response_total{direction=\"inbound\"}[1m])) by (deployment)",
    "sum(tcp_open_connections{direction=\"inbound\"}) by (deployment)",
};

struct cfg {
    struct meshsim_gen_opts mesh;
    int64_t range_ms, step_ms;
    int iters;
    bool smoke;
    const char *filter;
    const char *query; /* --query: run this one instead of the built-in list */
};

static int64_t arg_i64(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "bench_query: %s needs a value\n", argv[*i]);
        exit(2);
    }
    return strtoll(argv[++*i], NULL, 10);
}

static void parse_args(int argc, char **argv, struct cfg *c)
{
    *c = (struct cfg){0};
    meshsim_gen_opts_init(&c->mesh);
    c->mesh.namespaces = 4;
    c->mesh.deployments = 10;
    c->mesh.replicas = 3;
    c->mesh.peers = 3;
    c->mesh.duration_ms = 3600000;
    c->mesh.interval_ms = 10000;
    c->range_ms = 3600000;
    c->step_ms = 60000;
    c->iters = 7;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--smoke") == 0)
            c->smoke = true;
        else if (strcmp(a, "--namespaces") == 0)
            c->mesh.namespaces = (int)arg_i64(argc, argv, &i);
        else if (strcmp(a, "--deployments") == 0)
            c->mesh.deployments = (int)arg_i64(argc, argv, &i);
        else if (strcmp(a, "--replicas") == 0)
            c->mesh.replicas = (int)arg_i64(argc, argv, &i);
        else if (strcmp(a, "--peers") == 0)
            c->mesh.peers = (int)arg_i64(argc, argv, &i);
        else if (strcmp(a, "--duration-ms") == 0)
            c->mesh.duration_ms = arg_i64(argc, argv, &i);
        else if (strcmp(a, "--interval-ms") == 0)
            c->mesh.interval_ms = arg_i64(argc, argv, &i);
        else if (strcmp(a, "--range-ms") == 0)
            c->range_ms = arg_i64(argc, argv, &i);
        else if (strcmp(a, "--step-ms") == 0)
            c->step_ms = arg_i64(argc, argv, &i);
        else if (strcmp(a, "--iters") == 0)
            c->iters = (int)arg_i64(argc, argv, &i);
        else if (strcmp(a, "--filter") == 0 && i + 1 < argc)
            c->filter = argv[++i];
        else if (strcmp(a, "--query") == 0 && i + 1 < argc)
            c->query = argv[++i];
        else {
            fprintf(stderr, "bench_query: unknown argument %s\n", a);
            exit(2);
        }
    }
    if (c->smoke) {
        c->mesh.deployments = 3;
        c->mesh.replicas = 1;
        c->mesh.peers = 1;
        c->mesh.duration_ms = 600000;
        c->range_ms = 600000;
        c->iters = 1;
    }
    if (c->iters < 1)
        c->iters = 1;
}

/* CPU time of this thread: less disturbed than wall time on a shared machine */
static int64_t thread_cpu_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            putchar('\\');
        putchar(*s);
    }
    putchar('"');
}

static void run(struct query_engine *e, struct tsdb *db, const struct cfg *c, const char *q,
                bool range, int64_t end)
{
    int64_t *ns = malloc((size_t)c->iters * sizeof *ns);
    int64_t *cpu = malloc((size_t)c->iters * sizeof *cpu);
    if (!ns || !cpu)
        abort();
    size_t nseries = 0;
    int64_t samples = 0, peak = 0;
    for (int i = 0; i < c->iters; i++) {
        struct query_result r = {0};
        struct mp_err err = {0};
        int64_t c0 = thread_cpu_ns(), t0 = mp_mono_ns();
        int rc = range ? query_exec_range(e, db, q, strlen(q), end - c->range_ms, end,
                                          c->step_ms, NULL, &r, &err)
                       : query_exec_instant(e, db, q, strlen(q), end, NULL, &r, &err);
        ns[i] = mp_mono_ns() - t0;
        cpu[i] = thread_cpu_ns() - c0;
        if (rc) {
            fprintf(stderr, "bench_query: %s: %s\n", q, err.msg);
            exit(1);
        }
        nseries = r.nseries;
        samples = r.stats.total_queryable_samples;
        peak = r.stats.peak_samples;
        query_result_fini(&r);
    }
    qsort(ns, (size_t)c->iters, sizeof *ns, cmp_i64);
    qsort(cpu, (size_t)c->iters, sizeof *cpu, cmp_i64);
    size_t p99 = ((size_t)c->iters * 99 + 99) / 100;
    if (p99 < 1)
        p99 = 1;
    printf("{\"query\":");
    json_str(q);
    printf(",\"mode\":\"%s\",\"iters\":%d,\"median_ms\":%.3f,\"p99_ms\":%.3f,"
           "\"min_ms\":%.3f,\"cpu_median_ms\":%.3f,"
           "\"result_series\":%zu,\"samples_read\":%" PRId64 ",\"peak_samples\":%" PRId64 "}\n",
           range ? "range" : "instant", c->iters, (double)ns[c->iters / 2] / 1e6,
           (double)ns[p99 - 1] / 1e6, (double)ns[0] / 1e6, (double)cpu[c->iters / 2] / 1e6,
           nseries, samples, peak);
    fflush(stdout);
    free(ns);
    free(cpu);
}

int main(int argc, char **argv)
{
    struct cfg c;
    parse_args(argc, argv, &c);
    char dir[] = "/tmp/bench_query_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    struct tsdb_options to;
    tsdb_options_init(&to);
    to.dir = dir;
    to.background = false;
    to.wal_fsync = TSDB_WAL_FSYNC_NONE;
    struct tsdb *db;
    struct mp_err err = {0};
    if (tsdb_open(&to, &db, &err)) {
        fprintf(stderr, "bench_query: %s\n", err.msg);
        return 1;
    }
    int64_t t0 = mp_mono_ns();
    struct meshsim_gen_stats gst;
    int64_t end = bench_mesh_fill_all(db, &c.mesh, "bench_query", &gst);
    printf("{\"data\":{\"series\":%" PRIu64 ",\"samples\":%" PRIu64 ",\"duration_ms\":%" PRId64
           ",\"interval_ms\":%" PRId64 ",\"fill_s\":%.1f}}\n",
           gst.series, gst.samples, c.mesh.duration_ms, c.mesh.interval_ms,
           (double)(mp_mono_ns() - t0) / 1e9);
    struct query_engine_opts eo;
    query_engine_opts_init(&eo);
    eo.max_samples = INT64_MAX / 4;
    struct query_engine *e;
    if (query_engine_create(&eo, &e, &err)) {
        fprintf(stderr, "bench_query: %s\n", err.msg);
        return 1;
    }
    if (c.query) {
        run(e, db, &c, c.query, false, end);
        run(e, db, &c, c.query, true, end);
    }
    for (size_t i = 0; !c.query && i < sizeof queries / sizeof queries[0]; i++) {
        if (c.filter && !strstr(queries[i], c.filter))
            continue;
        run(e, db, &c, queries[i], false, end);
        run(e, db, &c, queries[i], true, end);
    }
    query_engine_destroy(e);
    tsdb_close(db);
    if (tsdb_remove_all(dir, &err))
        fprintf(stderr, "bench_query: %s\n", err.msg);
    return 0;
}
