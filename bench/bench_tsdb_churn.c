/* SPDX-License-Identifier: Apache-2.0 */
/* bench/bench_tsdb_churn.c: resident memory under pod churn (issue 3's churn figure).
 *
 *   bench_tsdb_churn [--pods P] [--hours H] [--churn F] [--every-min M] [--smoke]
 *
 * Simulates P pods of 1,000 series each (labels shaped like linkerd2-proxy's, value mix as in
 * bench_tsdb_head), scraped every 10 s for H hours of simulated time, with the database loop's
 * work (tsdb_compact) once per simulated minute. Every M minutes a fraction F of the pods is
 * replaced by pods with new names: the old pods' series get stale markers (as the scrape loop
 * writes for a removed target) and stop; the new ones start. The run is done twice, in two child
 * processes so that one's heap does not flatter the other: without churn and with it. Each
 * reports its RSS peak over the run (sampled every simulated 10 minutes after the first 3 h, when
 * the head has reached its steady size) and the ratio is printed. Goal: ratio <= 1.3. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench.h"
#include "common/labels.h"
#include "tsdb/tsdb.h"

#define SERIES_PER_POD 1000
#define INTERVAL_MS 10000

/* RssAnon (heap) and RssFile (mapped files) of /proc/self/status, in bytes. */
static void rss_split(size_t *anon, size_t *file)
{
    *anon = *file = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        unsigned long kb;
        if (sscanf(line, "RssAnon: %lu kB", &kb) == 1)
            *anon = kb * 1024;
        else if (sscanf(line, "RssFile: %lu kB", &kb) == 1)
            *file = kb * 1024;
    }
    fclose(f);
}


static const char *metrics[] = {"request_total", "response_total", "response_latency_ms_bucket",
                                "tcp_open_total", "tcp_read_bytes_total", "process_cpu_seconds_total"};

/* Series j of the pod with generation g in slot p. */
static struct mp_labels *labels_for(size_t p, unsigned g, size_t j)
{
    char ns[32], dep[48], pod[96], inst[48], uniq[16], le[16];
    snprintf(ns, sizeof ns, "ns-%zu", p % 20);
    snprintf(dep, sizeof dep, "deploy-%zu", p / 4);
    snprintf(pod, sizeof pod, "deploy-%zu-7f9c4d-%u-%zu", p / 4, g, p);
    snprintf(inst, sizeof inst, "10.%u.%zu.%zu:4191", g & 255, p >> 8 & 255, p & 255);
    snprintf(uniq, sizeof uniq, "%zu", j);
    snprintf(le, sizeof le, "%zu", (j / 6) % 26);
    struct mp_label l[] = {
        {mp_str_c("__name__"), mp_str_c(metrics[j % 6])},
        {mp_str_c("control_plane_ns"), mp_str_c("linkerd")},
        {mp_str_c("deployment"), mp_str_c(dep)},
        {mp_str_c("direction"), mp_str_c(j % 2 ? "outbound" : "inbound")},
        {mp_str_c("instance"), mp_str_c(inst)},
        {mp_str_c("job"), mp_str_c("linkerd-proxy")},
        {mp_str_c("le"), mp_str_c(le)},
        {mp_str_c("namespace"), mp_str_c(ns)},
        {mp_str_c("pod"), mp_str_c(pod)},
        {mp_str_c("series"), mp_str_c(uniq)},
        {mp_str_c("tls"), mp_str_c("true")},
    };
    struct mp_labels *ls;
    if (mp_labels_create(l, sizeof l / sizeof l[0], &ls, NULL))
        abort();
    return ls;
}

struct result {
    size_t peak_rss, end_rss, peak_anon, peak_file;
    uint64_t max_head_series;
};

static void run(size_t pods, double hours, double churn, int every_min, struct result *res)
{
    char dir[] = "/tmp/bench_tsdb_churn_XXXXXX";
    if (!mkdtemp(dir))
        abort();
    struct tsdb_options o;
    tsdb_options_init(&o);
    o.dir = dir;
    o.background = false;
    o.retention_ms = 6 * 3600000;
    struct tsdb *db;
    struct mp_err err = {0};
    if (tsdb_open(&o, &db, &err)) {
        fprintf(stderr, "open: %s\n", err.msg);
        exit(1);
    }
    uint64_t *refs = calloc(pods * SERIES_PER_POD, sizeof *refs);
    unsigned *gen = calloc(pods, sizeof *gen);
    int64_t t0 = 1700000000000 - 1700000000000 % 7200000;
    int64_t scrapes = (int64_t)(hours * 360);
    int64_t every = every_min * 6;
    size_t nchurn = (size_t)((double)pods * churn + 0.5);
    size_t next_victim = 0;
    uint64_t rng = 7;
    memset(res, 0, sizeof *res);
    for (int64_t k = 0; k < scrapes; k++) {
        int64_t t = t0 + k * INTERVAL_MS;
        if (nchurn && k > 0 && k % every == 0) {
            /* replace nchurn pods: stale markers for the old series, new names from now on */
            struct tsdb_appender *a;
            if (tsdb_appender_create(db, &a))
                abort();
            for (size_t c = 0; c < nchurn; c++) {
                size_t p = (next_victim + c) % pods;
                for (size_t j = 0; j < SERIES_PER_POD; j++) {
                    uint64_t *r = &refs[p * SERIES_PER_POD + j];
                    if (*r)
                        (void)!tsdb_appender_add(a, *r, NULL, t - 1, tsdb_stale_nan(), NULL,
                                                 NULL);
                    *r = 0;
                }
                gen[p]++;
            }
            next_victim = (next_victim + nchurn) % pods;
            if (tsdb_appender_commit(a, &err))
                abort();
        }
        for (size_t p = 0; p < pods; p++) {
            struct tsdb_appender *a;
            if (tsdb_appender_create(db, &a))
                abort();
            for (size_t j = 0; j < SERIES_PER_POD; j++) {
                size_t s = p * SERIES_PER_POD + j;
                struct mp_labels *ls = refs[s] ? NULL : labels_for(p, gen[p], j);
                double v;
                if (s % 20 < 11) {
                    v = (double)(s % 97);
                } else {
                    rng = rng * 6364136223846793005u + 1442695040888963407u;
                    v = (double)k * (double)(s % 13 + 1) + (double)(rng >> 60);
                }
                if (tsdb_appender_add(a, refs[s], ls, t + (int64_t)p, v, &refs[s], &err)) {
                    fprintf(stderr, "add: %s\n", err.msg);
                    exit(1);
                }
                mp_labels_release(ls);
            }
            if (tsdb_appender_commit(a, &err))
                abort();
        }
        if (k % 6 == 5 && tsdb_compact(db, &err)) {
            fprintf(stderr, "compact: %s\n", err.msg);
            exit(1);
        }
        struct tsdb_head_stats hs;
        tsdb_head_stats_get(db, &hs);
        if (hs.num_series > res->max_head_series)
            res->max_head_series = hs.num_series;
        if (k >= 3 * 360 && k % 60 == 0) {
            malloc_trim(0);
            size_t r = bench_rss_bytes(), an, fi;
            rss_split(&an, &fi);
            if (r > res->peak_rss)
                res->peak_rss = r;
            if (an > res->peak_anon)
                res->peak_anon = an;
            if (fi > res->peak_file)
                res->peak_file = fi;
        }
    }
    malloc_trim(0);
    res->end_rss = bench_rss_bytes();
    if (res->end_rss > res->peak_rss)
        res->peak_rss = res->end_rss;
    tsdb_close(db);
    free(refs);
    free(gen);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        exit(1);
}

static struct result run_child(size_t pods, double hours, double churn, int every)
{
    int fds[2];
    struct result r = {0};
    if (pipe(fds))
        abort();
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        run(pods, hours, churn, every, &r);
        if (write(fds[1], &r, sizeof r) != sizeof r)
            _exit(1);
        _exit(0);
    }
    close(fds[1]);
    if (read(fds[0], &r, sizeof r) != sizeof r)
        fprintf(stderr, "child failed\n");
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    return r;
}

int main(int argc, char **argv)
{
    size_t pods = 50;
    double hours = 6, churn = 0.1;
    int every = 10;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--pods") == 0 && i + 1 < argc)
            pods = (size_t)strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--hours") == 0 && i + 1 < argc)
            hours = strtod(argv[++i], NULL);
        else if (strcmp(argv[i], "--churn") == 0 && i + 1 < argc)
            churn = strtod(argv[++i], NULL);
        else if (strcmp(argv[i], "--every-min") == 0 && i + 1 < argc)
            every = atoi(argv[++i]);
        else if (strcmp(argv[i], "--smoke") == 0) {
            pods = 4;
            hours = 3.2;
        }
    }
    bench_header();
    struct result base = run_child(pods, hours, 0, every);
    struct result ch = run_child(pods, hours, churn, every);
    printf("BenchmarkChurnRSS/pods=%zu/hours=%g/churn=%g-every-%dm\t1\t%.3f rss-ratio\t%.1f MiB-rss-nochurn"
           "\t%.1f MiB-rss-churn\t%" PRIu64 " max-head-series-nochurn\t%" PRIu64
           " max-head-series-churn\t%.1f MiB-anon-nochurn\t%.1f MiB-anon-churn\t%.1f MiB-file-nochurn"
           "\t%.1f MiB-file-churn\n",
           pods, hours, churn, every, (double)ch.peak_rss / (double)(base.peak_rss ? base.peak_rss : 1),
           (double)base.peak_rss / 1048576.0, (double)ch.peak_rss / 1048576.0,
           base.max_head_series, ch.max_head_series, (double)base.peak_anon / 1048576.0,
           (double)ch.peak_anon / 1048576.0, (double)base.peak_file / 1048576.0,
           (double)ch.peak_file / 1048576.0);
    return 0;
}
