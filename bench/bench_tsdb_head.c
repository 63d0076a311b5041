/* SPDX-License-Identifier: Apache-2.0 */
/* bench/bench_tsdb_head.c: the head's figures from issue 3 in one scenario run.
 *
 *   bench_tsdb_head [--series N] [--hours H] [--smoke] [--dir D] [--no-fsync]
 *                   [--select-repeat R]   (best of R for the one-metric select)
 *                   [--block-level L]     (also: the head as a block, zstd level L, 0 = Prometheus
 *                                          format; its index size, open time and selects)
 *                   [--batch]             (scrapes after the first through tsdb_appender_add_refs)
 *                   [--append-only]       (stop after the append and memory figures)
 *
 * Builds N series shaped like linkerd2-proxy's (about 20 labels: namespace, deployment, pod,
 * pod_template_hash, direction, authority, dst_*, status_code, classification, le, ...), 1,000
 * per simulated pod, and appends H hours of samples at a 10 s interval the way the scraper does:
 * one appender per pod scrape, 1,000 samples, series refs cached after the first scrape, the WAL
 * on (snappy, default fsync policy), chunks_head on. Then:
 *   - append throughput: samples per second of CPU time of the appending thread (all scrapes,
 *     and "steady": from the second scrape on, when every series exists);
 *   - resident memory per series: RSS after ingest minus RSS of the open, empty database;
 *   - select latency: one metric of one namespace, and one metric over all series.
 * Output is Go benchmark format (one line per figure), so benchstat can compare runs. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "common/labels.h"
#include "common/matcher.h"
#include "tsdb/tsdb.h"

#define SERIES_PER_POD 1000
#define INTERVAL_MS 10000


static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char *metrics[] = {
    "request_total", "response_total", "response_latency_ms_bucket", "response_latency_ms_count",
    "response_latency_ms_sum", "tcp_open_total", "tcp_close_total", "tcp_read_bytes_total",
    "tcp_write_bytes_total", "tcp_open_connections", "route_request_total",
    "route_response_total", "route_response_latency_ms_bucket", "control_request_total",
    "control_response_total", "control_response_latency_ms_bucket", "inbound_http_authz_allow_total",
    "outbound_http_balancer_endpoints", "process_cpu_seconds_total", "process_resident_memory_bytes",
};
static const char *les[] = {"1", "2", "3", "4", "5", "10", "20", "30", "40", "50", "100", "200",
                            "300", "400", "500", "1000", "2000", "3000", "4000", "5000", "10000",
                            "20000", "30000", "40000", "50000", "+Inf"};

/* Series j of pod p: labels as a proxy's metric would carry after Linkerd's relabeling. */
static struct mp_labels *series_labels(size_t p, size_t j)
{
    char ns[32], dep[48], pod[128], hash[16], inst[64], auth[160], dstdep[48], dstns[32],
        sc[8], route[32];
    size_t nsi = p % 50, depi = p / 10;
    snprintf(ns, sizeof ns, "ns-%zu", nsi);
    snprintf(dep, sizeof dep, "deploy-%zu", depi);
    snprintf(hash, sizeof hash, "%08zx", depi * 2654435761u % 0xffffffffu);
    snprintf(pod, sizeof pod, "%s-%s-%05zx", dep, hash, p * 40503u % 0xfffff);
    snprintf(inst, sizeof inst, "10.%zu.%zu.%zu:4191", p >> 16 & 255, p >> 8 & 255, p & 255);
    size_t peer = j % 10;
    snprintf(dstdep, sizeof dstdep, "deploy-%zu", (depi + peer + 1) % 5000);
    snprintf(dstns, sizeof dstns, "ns-%zu", (nsi + peer) % 50);
    snprintf(auth, sizeof auth, "%s.%s.svc.cluster.local:8080", dstdep, dstns);
    snprintf(sc, sizeof sc, "%d", j % 7 == 0 ? 500 : 200);
    snprintf(route, sizeof route, "route-%zu", j / 260 % 4);
    const char *metric = metrics[j % (sizeof metrics / sizeof metrics[0])];
    struct mp_label l[24];
    size_t n = 0;
#define L(k, v) l[n++] = (struct mp_label){mp_str_c(k), mp_str_c(v)}
    L("__name__", metric);
    L("authority", auth);
    L("classification", j % 7 == 0 ? "failure" : "success");
    L("control_plane_ns", "linkerd");
    L("deployment", dep);
    L("direction", j % 2 ? "outbound" : "inbound");
    L("dst_deployment", dstdep);
    L("dst_namespace", dstns);
    L("dst_serviceaccount", "default");
    L("instance", inst);
    L("job", "linkerd-proxy");
    L("le", les[j / 20 % (sizeof les / sizeof les[0])]);
    L("namespace", ns);
    L("pod", pod);
    L("pod_template_hash", hash);
    L("route", route);
    L("serviceaccount", "default");
    L("status_code", sc);
    L("tls", "true");
    char uniq[16];
    snprintf(uniq, sizeof uniq, "%zu", j);
    L("series", uniq); /* keeps the 1,000 series of a pod distinct */
#undef L
    struct mp_labels *ls;
    if (mp_labels_create(l, n, &ls, NULL))
        abort();
    return ls;
}

static double value(size_t s, int64_t k, uint64_t *state)
{
    /* 55% constant (idle buckets, gauges that do not move), the rest counters with jitter */
    if (s % 20 < 11)
        return (double)(s % 97);
    *state = *state * 6364136223846793005u + 1442695040888963407u;
    return (double)k * (double)(s % 13 + 1) + (double)(*state >> 60);
}

static int64_t select_ms(struct tsdb *db, const char *metric, const char *ns, int64_t maxt,
                         size_t *series, size_t *samples)
{
    struct mp_matcher *m[2];
    size_t n = 0;
    if (mp_matcher_create(MP_MATCH_EQUAL, mp_str_c("__name__"), mp_str_c(metric), &m[n++], NULL))
        abort();
    if (ns && mp_matcher_create(MP_MATCH_EQUAL, mp_str_c("namespace"), mp_str_c(ns), &m[n++],
                                NULL))
        abort();
    int64_t t0 = mp_mono_ns();
    struct tsdb_querier *q;
    struct tsdb_series_set *set;
    if (tsdb_querier_open(db, maxt - 5 * 60000, maxt, &q, NULL) ||
        tsdb_querier_select(q, (const struct mp_matcher *const *)m, n, &set, NULL))
        abort();
    *series = *samples = 0;
    while (tsdb_series_set_next(set, NULL) == 0) {
        struct tsdb_sample_iter it;
        tsdb_series_set_iter(set, &it);
        int64_t t;
        double v;
        while (tsdb_sample_iter_next(&it, &t, &v) == 0)
            (*samples)++;
        (*series)++;
    }
    tsdb_series_set_free(set);
    tsdb_querier_close(q);
    int64_t took = mp_mono_ns() - t0;
    for (size_t i = 0; i < n; i++)
        mp_matcher_destroy(m[i]);
    return took;
}

/* The head written as one block (a snapshot), opened read-only: index bytes, open time, the
 * selects above from the block alone and the process's RSS growth for them. */
static int block_bench(struct tsdb *db, const char *dir, int level, size_t nseries, int64_t maxt,
                       int repeat)
{
    char name[64], sdir[512], cmd[700];
    struct mp_err err = {0};
    int64_t w0 = mp_mono_ns();
    if (tsdb_snapshot(db, false, name, &err)) {
        fprintf(stderr, "snapshot: %s\n", err.msg);
        return 1;
    }
    int64_t wns = mp_mono_ns() - w0;
    snprintf(sdir, sizeof sdir, "%s/snapshots/%s", dir, name);
    snprintf(cmd, sizeof cmd, "du -b %s/*/index | awk '{s+=$1} END {print s+0}'", sdir);
    FILE *f = popen(cmd, "r");
    unsigned long long ibytes = 0;
    if (!f || fscanf(f, "%llu", &ibytes) != 1)
        ibytes = 0;
    if (f)
        pclose(f);
    malloc_trim(0);
    size_t rss0 = bench_rss_bytes();
    struct tsdb_options o;
    tsdb_options_init(&o);
    o.dir = sdir;
    o.read_only = true;
    o.background = false;
    struct tsdb *bdb;
    int64_t o0 = mp_mono_ns();
    if (tsdb_open(&o, &bdb, &err)) {
        fprintf(stderr, "open snapshot: %s\n", err.msg);
        return 1;
    }
    int64_t ons = mp_mono_ns() - o0;
    size_t rss1 = bench_rss_bytes();
    printf("BenchmarkBlock/level=%d/series=%zu\t1\t%.3f s-write\t%llu index-bytes\t%.1f "
           "index-B/series\t%.3f ms-open\t%zu KiB-rss-open\n",
           level, nseries, (double)wns / 1e9, ibytes, (double)ibytes / (double)nseries,
           (double)ons / 1e6, (rss1 - rss0) >> 10);
    size_t ss, sm;
    int64_t ns1 = select_ms(bdb, "response_total", "ns-7", maxt, &ss, &sm);
    printf("BenchmarkBlockSelect/level=%d/one-metric-one-namespace/series=%zu\t1\t%.3f ms/op\t%zu "
           "series\t%zu samples\n",
           level, nseries, (double)ns1 / 1e6, ss, sm);
    int64_t ns2 = INT64_MAX;
    for (int r = 0; r < repeat; r++) {
        int64_t x = select_ms(bdb, "response_total", NULL, maxt, &ss, &sm);
        if (x < ns2)
            ns2 = x;
    }
    malloc_trim(0);
    size_t rss2 = bench_rss_bytes();
    printf("BenchmarkBlockSelect/level=%d/one-metric/series=%zu\t1\t%.3f ms/op\t%zu series\t%zu "
           "samples\t%zu KiB-rss-after\n",
           level, nseries, (double)ns2 / 1e6, ss, sm, (rss2 - rss0) >> 10);
    tsdb_close(bdb);
    return 0;
}

int main(int argc, char **argv)
{
    size_t nseries = 100000;
    double hours = 3;
    bool smoke = false, no_fsync = false, batch = false, append_only = false;
    int repeat = 1, block_level = -1;
    const char *dir_arg = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--series") == 0 && i + 1 < argc)
            nseries = (size_t)strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--hours") == 0 && i + 1 < argc)
            hours = strtod(argv[++i], NULL);
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir_arg = argv[++i];
        else if (strcmp(argv[i], "--smoke") == 0)
            smoke = true;
        else if (strcmp(argv[i], "--select-repeat") == 0 && i + 1 < argc)
            repeat = atoi(argv[++i]);
        else if (strcmp(argv[i], "--no-fsync") == 0)
            no_fsync = true;
        else if (strcmp(argv[i], "--batch") == 0)
            batch = true;
        else if (strcmp(argv[i], "--append-only") == 0)
            append_only = true;
        else if (strcmp(argv[i], "--block-level") == 0 && i + 1 < argc)
            block_level = atoi(argv[++i]);
    }
    if (smoke) {
        nseries = 2000;
        hours = 0.1;
    }
    size_t npods = (nseries + SERIES_PER_POD - 1) / SERIES_PER_POD;
    nseries = npods * SERIES_PER_POD;
    int64_t scrapes = (int64_t)(hours * 3600000.0 / INTERVAL_MS);
    char dir[256];
    if (dir_arg) {
        snprintf(dir, sizeof dir, "%s", dir_arg);
    } else {
        snprintf(dir, sizeof dir, "/tmp/bench_tsdb_head_XXXXXX");
        if (!mkdtemp(dir))
            return 1;
    }
    bench_header();
    struct tsdb_options o;
    tsdb_options_init(&o);
    o.dir = dir;
    o.background = false;
    if (no_fsync)
        o.wal_fsync = TSDB_WAL_FSYNC_NONE;
    if (block_level >= 0)
        o.block_compression_level = block_level;
    struct tsdb *db;
    struct mp_err err = {0};
    if (tsdb_open(&o, &db, &err)) {
        fprintf(stderr, "open: %s\n", err.msg);
        return 1;
    }
    malloc_trim(0);
    size_t rss0 = bench_rss_bytes();
    uint64_t *refs = calloc(nseries, sizeof *refs);
    int64_t t0 = 1700000000000 - 1700000000000 % 7200000;
    uint64_t rng = 42;
    int64_t cpu0 = cpu_ns(), wall0 = mp_mono_ns(), cpu_steady = 0;
    uint64_t appended = 0;
    double vals[SERIES_PER_POD];
    for (int64_t k = 0; k < scrapes; k++) {
        if (k == 1)
            cpu_steady = cpu_ns(); /* every series exists from here on */
        for (size_t p = 0; p < npods; p++) {
            struct tsdb_appender *a;
            if (tsdb_appender_create(db, &a))
                abort();
            /* pods are scraped spread over the interval, as the scrape loop does */
            int64_t t = t0 + k * INTERVAL_MS + (int64_t)(p * INTERVAL_MS / npods);
            if (batch && k > 0) {
                for (size_t j = 0; j < SERIES_PER_POD; j++)
                    vals[j] = value(p * SERIES_PER_POD + j, k, &rng);
                if (tsdb_appender_add_refs(a, refs + p * SERIES_PER_POD, vals, SERIES_PER_POD, t,
                                           NULL, &err)) {
                    fprintf(stderr, "add_refs: %s\n", err.msg);
                    return 1;
                }
                if (tsdb_appender_commit(a, &err)) {
                    fprintf(stderr, "commit: %s\n", err.msg);
                    return 1;
                }
                appended += SERIES_PER_POD;
                continue;
            }
            for (size_t j = 0; j < SERIES_PER_POD; j++) {
                size_t s = p * SERIES_PER_POD + j;
                struct mp_labels *ls = refs[s] ? NULL : series_labels(p, j);
                if (tsdb_appender_add(a, refs[s], ls, t, value(s, k, &rng), &refs[s], &err)) {
                    fprintf(stderr, "add: %s\n", err.msg);
                    return 1;
                }
                mp_labels_release(ls);
            }
            if (tsdb_appender_commit(a, &err)) {
                fprintf(stderr, "commit: %s\n", err.msg);
                return 1;
            }
            appended += SERIES_PER_POD;
        }
    }
    int64_t cpu_end = cpu_ns(), cpu = cpu_end - cpu0, wall = mp_mono_ns() - wall0;
    malloc_trim(0);
    size_t rss1 = bench_rss_bytes();
    struct tsdb_head_stats hs;
    tsdb_head_stats_get(db, &hs);
    printf("BenchmarkHeadAppend/series=%zu/hours=%g\t%" PRIu64 "\t%.1f ns/sample\t%.0f samples/s/core"
           "\t%.0f samples/s-wall\n",
           nseries, hours, appended, (double)cpu / (double)appended,
           (double)appended * 1e9 / (double)cpu, (double)appended * 1e9 / (double)wall);
    if (scrapes > 1) {
        uint64_t steady = (uint64_t)(scrapes - 1) * nseries;
        printf("BenchmarkHeadAppendSteady/series=%zu/hours=%g%s\t%" PRIu64
               "\t%.1f ns/sample\t%.0f samples/s/core\n",
               nseries, hours, batch ? "/batch" : "", steady,
               (double)(cpu_end - cpu_steady) / (double)steady,
               (double)steady * 1e9 / (double)(cpu_end - cpu_steady));
    }
    printf("BenchmarkHeadMemory/series=%zu/hours=%g\t1\t%.0f B/series-rss\t%zu MiB-rss\t%" PRIu64
           " head-series\t%" PRIu64 " head-chunks\n",
           nseries, hours, (double)(rss1 - rss0) / (double)nseries, (rss1 - rss0) >> 20,
           hs.num_series, hs.num_chunks);
    if (append_only) {
        free(refs);
        tsdb_close(db);
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        return dir_arg || system(cmd) == 0 ? 0 : 1;
    }
    int64_t maxt = t0 + (scrapes - 1) * INTERVAL_MS + INTERVAL_MS;
    size_t ss, sm;
    int64_t ns1 = select_ms(db, "response_total", "ns-7", maxt, &ss, &sm);
    printf("BenchmarkHeadSelect/one-metric-one-namespace/series=%zu\t1\t%.3f ms/op\t%zu series\t%zu samples\n",
           nseries, (double)ns1 / 1e6, ss, sm);
    int64_t ns2 = INT64_MAX;
    for (int r = 0; r < repeat; r++) {
        int64_t x = select_ms(db, "response_total", NULL, maxt, &ss, &sm);
        if (x < ns2)
            ns2 = x;
    }
    printf("BenchmarkHeadSelect/one-metric/series=%zu\t1\t%.3f ms/op\t%zu series\t%zu samples\n",
           nseries, (double)ns2 / 1e6, ss, sm);
    free(refs);
    if (block_level >= 0 && block_bench(db, dir, block_level, nseries, maxt, repeat) != 0)
        return 1;
    tsdb_close(db);
    /* Replay: reopen the directory; the WAL holds every sample appended above (no compaction
     * ran), chunks_head the full chunks. */
    malloc_trim(0);
    int64_t r0 = mp_mono_ns();
    if (tsdb_open(&o, &db, &err)) {
        fprintf(stderr, "reopen: %s\n", err.msg);
        return 1;
    }
    int64_t rns = mp_mono_ns() - r0;
    struct tsdb_head_stats hs2;
    tsdb_head_stats_get(db, &hs2);
    printf("BenchmarkHeadReplay/series=%zu/hours=%g\t1\t%.3f s/op\t%.0f samples/s\t%" PRIu64
           " head-series\n",
           nseries, hours, (double)rns / 1e9, (double)appended * 1e9 / (double)rns,
           hs2.num_series);
    tsdb_close(db);
    if (!dir_arg) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            return 1;
    }
    return 0;
}
