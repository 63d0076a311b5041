/* SPDX-License-Identifier: Apache-2.0 */
/* bench/bench_remote_write.c: remote-write receiver decode + validate speed (remote/write.c:
 * snappy, protobuf-c unpack into the arena, label sort and checks), no tsdb. Input: what a
 * Prometheus sender posts (protocols.md 5.3): batches of 2000 TimeSeries (max_samples_per_send)
 * with one sample each, linkerd-proxy style label sets of 12 labels sorted by name, generated
 * from a fixed seed; the "unsorted" batch has every label set reversed, so the receiver sorts;
 * "nocache" decodes without a struct remote_write_cache (fresh memory every request).
 * One op = one request body decoded and validated.
 *   build/release/bench/bench_remote_write [--smoke] [name-filter] */
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "common/alloc.h"
#include "remote.pb-c.h"
#include "remote/remote.h"

#define BATCH 2000
#define NLABELS 12

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

struct body {
    uint8_t *data;
    size_t len, raw_len;
};

static ProtobufCBinaryData bin(const char *s)
{
    return (ProtobufCBinaryData){strlen(s), (uint8_t *)(uintptr_t)s};
}

static const char *const names[NLABELS] = {"__name__",  "authority",   "code",        "deployment",
                                           "direction", "instance",    "job",         "namespace",
                                           "pod",       "status_code", "target_addr", "tls"};

static struct body make_body(bool reversed)
{
    static RemotePb__TimeSeries ts[BATCH], *tsp[BATCH];
    static RemotePb__Label lab[BATCH][NLABELS], *labp[BATCH][NLABELS];
    static RemotePb__Sample smp[BATCH], *smpp[BATCH];
    static char vals[BATCH][NLABELS][48];
    uint64_t seed = 42;
    RemotePb__WriteRequest wr = REMOTE_PB__WRITE_REQUEST__INIT;
    for (size_t i = 0; i < BATCH; i++) {
        remote_pb__time_series__init(&ts[i]);
        for (size_t j = 0; j < NLABELS; j++) {
            char *v = vals[i][j];
            uint64_t r = rnd(&seed);
            if (j == 0)
                snprintf(v, 48, "%s", (r & 1) ? "response_total" : "request_total");
            else
                snprintf(v, 48, "%s-%llu", names[j], (unsigned long long)(r % 5000));
            size_t k = reversed ? NLABELS - 1 - j : j;
            remote_pb__label__init(&lab[i][k]);
            lab[i][k].name = bin(names[j]);
            lab[i][k].value = bin(v);
            labp[i][k] = &lab[i][k];
        }
        ts[i].labels = labp[i];
        ts[i].n_labels = NLABELS;
        remote_pb__sample__init(&smp[i]);
        smp[i].value = (double)(rnd(&seed) % 100000);
        smp[i].timestamp = INT64_C(1700000000000) + (int64_t)i;
        smpp[i] = &smp[i];
        ts[i].samples = &smpp[i];
        ts[i].n_samples = 1;
        tsp[i] = &ts[i];
    }
    wr.timeseries = tsp;
    wr.n_timeseries = BATCH;
    struct body b;
    b.raw_len = remote_pb__write_request__get_packed_size(&wr);
    uint8_t *raw = mp_xmalloc(b.raw_len);
    remote_pb__write_request__pack(&wr, raw);
    b.len = snappy_max_compressed_length(b.raw_len);
    b.data = mp_xmalloc(b.len);
    if (snappy_compress((const char *)raw, b.raw_len, (char *)b.data, &b.len) != SNAPPY_OK)
        abort();
    mp_free(raw);
    return b;
}

struct arg {
    struct body b;
    struct remote_write_cache *cache;
};

static void run_decode(void *p, uint64_t iters)
{
    const struct arg *a = p;
    const struct body *b = &a->b;
    struct remote_write_limits lim;
    remote_write_limits_init(&lim);
    for (uint64_t i = 0; i < iters; i++) {
        struct remote_write_request *req;
        struct remote_write_result res;
        if (remote_write_decode(b->data, b->len, &lim, a->cache, &req, &res, NULL) != 0 ||
            res.samples != BATCH)
            abort();
        bench_keep(req);
        remote_write_request_free(req);
    }
}

int main(int argc, char **argv)
{
    struct bench_opts o;
    bench_parse_args(argc, argv, &o);
    bench_header();
    static const struct {
        const char *name;
        bool reversed, cache;
    } cases[] = {
        {"BenchmarkRemoteWriteDecode/batch2000", false, true},
        {"BenchmarkRemoteWriteDecode/batch2000_unsorted", true, true},
        {"BenchmarkRemoteWriteDecode/batch2000_nocache", false, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (!bench_selected(&o, cases[i].name))
            continue;
        struct arg a = {make_body(cases[i].reversed), NULL};
        if (cases[i].cache && remote_write_cache_create((size_t)16 << 20, &a.cache) != 0)
            abort();
        const struct body b = a.b;
        struct bench_result r = bench_run(&o, run_decode, &a);
        double sec = (double)r.ns / 1e9;
        double ops = (double)r.iters;
        bench_report(cases[i].name, r, "\t%.1f MB/s\t%.0f samples/s\t%.1f B/sample",
                     ops * (double)b.len / sec / 1e6, ops * BATCH / sec, (double)b.len / BATCH);
        mp_free(b.data);
        remote_write_cache_destroy(a.cache);
    }
    return 0;
}
