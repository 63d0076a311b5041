/* SPDX-License-Identifier: Apache-2.0 */
/* bench/bench_tsdb_wal.c: WAL replay and commit throughput. The workload looks like a head
 * fed by scrapes: 10k series (Series records of 100 each, 6 labels), then commits of one
 * Samples record of 1000 samples (10 s apart, counters and gauges) until about 32 MiB of raw
 * records. Replay = read every record of the directory and decode it (series labels interned
 * via mp_labels_create), as head start-up does. The WAL lives on /dev/shm when present, so the
 * numbers measure the CPU cost, not the disk.
 *   BenchmarkWALReplay/snappy   ...  ns/op  MB/s (segment bytes)  ns/sample
 *   BenchmarkWALLog/snappy      ...  ns/op (one 1000-sample commit, no fsync) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/bench.h"
#include "common/labels.h"
#include "common/str.h"
#include "tsdb/db.h"
#include "tsdb/record.h"
#include "tsdb/wal.h"

#define NSERIES 10000
#define PER_COMMIT 1000
#define RAW_TARGET (32u << 20)

struct ctx {
    char dir[256];
    enum tsdb_wal_compression comp;
    size_t seg_bytes;
    uint64_t samples;
    struct mp_buf rec;
    struct tsdb_record_sample smp[PER_COMMIT];
    struct tsdb_wal *w; /* log benchmark */
    int64_t t;
};

static void make_commit(struct ctx *c, uint64_t k)
{
    for (size_t i = 0; i < PER_COMMIT; i++) {
        uint64_t ref = (k * PER_COMMIT + i) % NSERIES + 1;
        double v = ref % 3 ? (double)(k * 17 + ref) : (double)(ref % 100) * 0.25;
        c->smp[i] = (struct tsdb_record_sample){ref, c->t + (int64_t)(i % 7), v};
    }
    c->t += 10000;
    mp_buf_reset(&c->rec);
    if (tsdb_record_samples_encode(c->smp, PER_COMMIT, &c->rec) != 0)
        abort();
}

static void build(struct ctx *c)
{
    struct tsdb_wal_options o;
    tsdb_wal_options_init(&o);
    o.compression = c->comp;
    o.fsync = TSDB_WAL_FSYNC_NONE;
    struct tsdb_wal *w;
    struct mp_err err = {0};
    if (tsdb_wal_open(c->dir, &o, &w, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    struct tsdb_record_series s[100];
    size_t raw = 0;
    for (size_t base = 0; base < NSERIES; base += 100) {
        for (size_t i = 0; i < 100; i++) {
            char pod[32], inst[32];
            snprintf(pod, sizeof pod, "web-%zu-7f9c4d", (base + i) / 10);
            snprintf(inst, sizeof inst, "10.1.%zu.%zu:8080", (base + i) / 250, (base + i) % 250);
            struct mp_label l[] = {
                {MP_STR_LIT("__name__"), MP_STR_LIT("request_total")},
                {MP_STR_LIT("namespace"), MP_STR_LIT("shop")},
                {MP_STR_LIT("pod"), mp_str_c(pod)},
                {MP_STR_LIT("instance"), mp_str_c(inst)},
                {MP_STR_LIT("direction"), (base + i) % 2 ? MP_STR_LIT("inbound") : MP_STR_LIT("outbound")},
                {MP_STR_LIT("status_code"), (base + i) % 5 ? MP_STR_LIT("200") : MP_STR_LIT("503")},
            };
            s[i].ref = base + i + 1;
            if (mp_labels_create(l, 6, &s[i].labels, NULL) != 0)
                abort();
        }
        mp_buf_reset(&c->rec);
        if (tsdb_record_series_encode(s, 100, &c->rec) != 0)
            abort();
        struct mp_str r = {c->rec.data, c->rec.len};
        if (tsdb_wal_log(w, &r, 1, NULL) != 0)
            abort();
        raw += c->rec.len;
        tsdb_record_series_release(s, 100);
    }
    c->t = 1700000000000;
    for (uint64_t k = 0; raw < RAW_TARGET; k++) {
        make_commit(c, k);
        struct mp_str r = {c->rec.data, c->rec.len};
        if (tsdb_wal_log(w, &r, 1, NULL) != 0)
            abort();
        raw += c->rec.len;
        c->samples += PER_COMMIT;
    }
    (void)tsdb_wal_close(w, NULL);
    c->seg_bytes = 0;
    for (int i = 0;; i++) {
        char p[300];
        struct stat st;
        snprintf(p, sizeof p, "%s/%08d", c->dir, i);
        if (stat(p, &st) != 0)
            break;
        c->seg_bytes += (size_t)st.st_size;
    }
}

static void replay(void *arg, uint64_t iters)
{
    struct ctx *c = arg;
    struct tsdb_record_decoder d;
    tsdb_record_decoder_init(&d);
    for (uint64_t it = 0; it < iters; it++) {
        struct tsdb_wal_reader *r;
        if (tsdb_wal_reader_open(c->dir, &r, NULL) != 0)
            abort();
        const uint8_t *p;
        size_t len, n;
        uint64_t got = 0;
        while (tsdb_wal_reader_next(r, &p, &len, NULL) == 0) {
            if (p[0] == TSDB_REC_SERIES) {
                struct tsdb_record_series *s;
                if (tsdb_record_series_decode(&d, p, len, &s, &n, NULL) != 0)
                    abort();
                tsdb_record_series_release(s, n);
            } else {
                struct tsdb_record_sample *s;
                if (tsdb_record_samples_decode(&d, p, len, &s, &n, NULL) != 0)
                    abort();
                got += n;
                bench_keep(s[n - 1].v);
            }
        }
        tsdb_wal_reader_close(r);
        if (got != c->samples)
            abort();
    }
    tsdb_record_decoder_fini(&d);
}

static void log_commit(void *arg, uint64_t iters)
{
    struct ctx *c = arg;
    for (uint64_t it = 0; it < iters; it++) {
        make_commit(c, it);
        struct mp_str r = {c->rec.data, c->rec.len};
        if (tsdb_wal_log(c->w, &r, 1, NULL) != 0)
            abort();
    }
}

int main(int argc, char **argv)
{
    struct bench_opts o;
    bench_parse_args(argc, argv, &o);
    bench_header();
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    static const char *names[] = {"none", "snappy", "zstd"};
    for (int comp = 0; comp < 3; comp++) {
        struct ctx c = {.comp = comp};
        mp_buf_init(&c.rec, 0);
        char name[64];
        snprintf(name, sizeof name, "BenchmarkWALReplay/%s", names[comp]);
        if (bench_selected(&o, name)) {
            snprintf(c.dir, sizeof c.dir, "%s/mp-bench-wal-%d-%d", base, (int)getpid(), comp);
            build(&c);
            struct bench_result r = bench_run(&o, replay, &c);
            double sec = (double)r.ns / 1e9 / (double)r.iters;
            bench_report(name, r, "\t%.1f MB/s\t%.2f ns/sample\t%.3f B/sample",
                         (double)c.seg_bytes / 1e6 / sec,
                         sec * 1e9 / (double)c.samples,
                         (double)c.seg_bytes / (double)c.samples);
            (void)!tsdb_remove_all(c.dir, NULL);
        }
        snprintf(name, sizeof name, "BenchmarkWALLog/%s", names[comp]);
        if (bench_selected(&o, name)) {
            snprintf(c.dir, sizeof c.dir, "%s/mp-bench-wal-log-%d-%d", base, (int)getpid(), comp);
            struct tsdb_wal_options wo;
            tsdb_wal_options_init(&wo);
            wo.compression = comp;
            wo.fsync = TSDB_WAL_FSYNC_NONE;
            if (tsdb_wal_open(c.dir, &wo, &c.w, NULL) != 0)
                abort();
            c.t = 1700000000000;
            struct bench_result r = bench_run(&o, log_commit, &c);
            struct tsdb_wal_stats st;
            tsdb_wal_stats_get(c.w, &st);
            bench_report(name, r, "\t%.2f ns/sample\t%.3f B/sample",
                         (double)r.ns / (double)r.iters / PER_COMMIT,
                         (double)st.bytes_written / (double)st.records / PER_COMMIT);
            (void)tsdb_wal_close(c.w, NULL);
            (void)!tsdb_remove_all(c.dir, NULL);
        }
        mp_buf_fini(&c.rec);
    }
    return 0;
}
