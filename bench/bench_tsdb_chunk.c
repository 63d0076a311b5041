/* SPDX-License-Identifier: Apache-2.0 */
/* bench/bench_tsdb_chunk.c: XOR chunk encode/decode speed and size on series shaped like a
 * service mesh's (10 s scrapes, Prometheus-aligned timestamps with occasional few-ms
 * jitter). One op = one 120-sample chunk, the size Prometheus aims at (tsdb.md 1.7).
 * Shapes: request counters, float gauges, histogram bucket counters (mostly idle high
 * buckets), and a constant (`up`). Inputs are generated from a fixed seed, so runs compare.
 *   build/h-xor-rel/bench/bench_tsdb_chunk [--smoke] [name-filter] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench/bench.h"
#include "common/alloc.h"
#include "tsdb/tsdb.h"

#define SAMPLES 120
#define SERIES 32 /* chunks per shape, cycled through so caches see several */

struct shape {
    const char *name;
    int64_t t[SERIES][SAMPLES];
    double v[SERIES][SAMPLES];
    uint8_t *chunk[SERIES];
    size_t chunk_len[SERIES];
    double bytes_per_sample;
};

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* 10 s ticks; one scrape in eight lands up to 5 ms late (beyond the 2 ms snap of
 * AlignScrapeTimestamps), as a busy scraper does. */
static void timestamps(uint64_t *seed, int64_t *t, bool jitter)
{
    int64_t base = INT64_C(1700006400000) + (int64_t)(rnd(seed) % 10000);
    for (int i = 0; i < SAMPLES; i++) {
        uint64_t r = rnd(seed);
        bool late = jitter && (r & 7) == 0;
        t[i] = base + (int64_t)i * 10000 + (late ? (int64_t)(r >> 8 & 3) + 3 : 0);
    }
}

static void gen(struct shape *sh, int kind)
{
    uint64_t seed = 0x5eed0000u + (uint64_t)kind;
    for (int s = 0; s < SERIES; s++) {
        timestamps(&seed, sh->t[s], kind < 4);
        double v = (double)(rnd(&seed) % 100000);
        for (int i = 0; i < SAMPLES; i++) {
            uint64_t r = rnd(&seed);
            switch (kind) {
            case 0: /* counter: 0..40 requests per scrape */
                v += (double)(r % 41);
                break;
            case 1: /* gauge: e.g. CPU seconds rate or latency, full-precision floats */
                v = 0.25 + 0.05 * sin(i / 9.0 + s) + (double)(r % 1000) / 1e6;
                break;
            case 2: /* bucket counters: low buckets busy, high buckets rarely move */
                if (r % (uint64_t)(1 + 3 * s) == 0)
                    v += (double)(1 + (r >> 32) % 3);
                break;
            case 3: /* up, build_info: constant */
            case 4: /* tsdb.md 1.8 reference: constant, no jitter, 48 B per chunk */
                v = 1.0;
                break;
            default: /* tsdb.md 1.8 reference: counter +1, no jitter, 166 B per chunk */
                v = i == 0 ? 0.0 : v + 1.0;
                break;
            }
            sh->v[s][i] = v;
        }
    }
}

#define NSHAPES 6
static struct shape g_shapes[NSHAPES];
static const char *const g_names[NSHAPES] = {"counter",  "gauge",          "histogram_bucket",
                                             "constant", "ref_constant", "ref_counter_inc1"};

struct arg {
    struct shape *sh;
    uint64_t sink;
};

static void bench_append(void *p, uint64_t iters)
{
    struct arg *a = p;
    for (uint64_t k = 0; k < iters; k++) {
        unsigned s = (unsigned)(k % SERIES);
        struct tsdb_xor *c = NULL;
        if (tsdb_xor_create(&c))
            abort();
        for (int i = 0; i < SAMPLES; i++)
            if (tsdb_xor_append(c, a->sh->t[s][i], a->sh->v[s][i]))
                abort();
        size_t len;
        const uint8_t *b = tsdb_xor_bytes(c, &len);
        a->sink += b[len - 1] + len;
        bench_keep(a->sink);
        tsdb_xor_destroy(c);
    }
}

static void bench_iterate(void *p, uint64_t iters)
{
    struct arg *a = p;
    for (uint64_t k = 0; k < iters; k++) {
        unsigned s = (unsigned)(k % SERIES);
        struct tsdb_xor_iter it;
        tsdb_xor_iter_init(&it, a->sh->chunk[s], a->sh->chunk_len[s]);
        int64_t t;
        double v;
        uint64_t acc = 0;
        while (tsdb_xor_iter_next(&it, &t, &v) == 0)
            acc += (uint64_t)t ^ tsdb_f64_bits(v);
        a->sink += acc;
        bench_keep(a->sink);
    }
}

static void bench_seek(void *p, uint64_t iters)
{
    struct arg *a = p;
    for (uint64_t k = 0; k < iters; k++) {
        unsigned s = (unsigned)(k % SERIES);
        struct tsdb_xor_iter it;
        tsdb_xor_iter_init(&it, a->sh->chunk[s], a->sh->chunk_len[s]);
        int64_t t;
        double v;
        if (tsdb_xor_iter_seek(&it, a->sh->t[s][SAMPLES * 3 / 4], &t, &v) == 0)
            a->sink += (uint64_t)t;
        bench_keep(a->sink);
    }
}

/* Encodes every series once, checks it decodes to the input (so --smoke catches a broken
 * codec) and measures the size. */
static int prepare(struct shape *sh)
{
    size_t total = 0;
    for (int s = 0; s < SERIES; s++) {
        struct tsdb_xor *c = NULL;
        if (tsdb_xor_create(&c))
            return 1;
        for (int i = 0; i < SAMPLES; i++)
            if (tsdb_xor_append(c, sh->t[s][i], sh->v[s][i]))
                return 1;
        sh->chunk[s] = tsdb_xor_take(c, &sh->chunk_len[s]);
        total += sh->chunk_len[s];
        struct tsdb_xor_iter it;
        tsdb_xor_iter_init(&it, sh->chunk[s], sh->chunk_len[s]);
        for (int i = 0; i < SAMPLES; i++) {
            int64_t t;
            double v;
            if (tsdb_xor_iter_next(&it, &t, &v) || t != sh->t[s][i] ||
                tsdb_f64_bits(v) != tsdb_f64_bits(sh->v[s][i])) {
                fprintf(stderr, "%s: series %d sample %d does not round-trip\n", sh->name, s, i);
                return 1;
            }
        }
    }
    sh->bytes_per_sample = (double)total / (SERIES * SAMPLES);
    return 0;
}

int main(int argc, char **argv)
{
    struct bench_opts o;
    bench_parse_args(argc, argv, &o);
    bench_header();
    uint64_t sink = 0;
    for (int k = 0; k < NSHAPES; k++) {
        struct shape *sh = &g_shapes[k];
        sh->name = g_names[k];
        gen(sh, k);
        if (prepare(sh))
            return 1;
    }
    static const struct {
        const char *prefix;
        bench_fn fn;
    } kinds[] = {
        {"BenchmarkXorAppend", bench_append},
        {"BenchmarkXorIterate", bench_iterate},
        {"BenchmarkXorSeek", bench_seek},
    };
    for (size_t b = 0; b < sizeof kinds / sizeof kinds[0]; b++) {
        for (int k = 0; k < NSHAPES; k++) {
            char name[128];
            snprintf(name, sizeof name, "%s/%s", kinds[b].prefix, g_names[k]);
            if (!bench_selected(&o, name))
                continue;
            struct arg a = {&g_shapes[k], 0};
            struct bench_result r = bench_run(&o, kinds[b].fn, &a);
            double ns_op = (double)r.ns / (double)r.iters;
            if (kinds[b].fn == bench_seek)
                bench_report(name, r, "\t%10.3f B/sample", g_shapes[k].bytes_per_sample);
            else
                bench_report(name, r, "\t%10.3f B/sample\t%12.0f samples/s\t%8.2f ns/sample",
                             g_shapes[k].bytes_per_sample, SAMPLES * 1e9 / ns_op,
                             ns_op / SAMPLES);
            sink += a.sink;
        }
    }
    bench_keep(sink);
    for (int k = 0; k < NSHAPES; k++)
        for (int s = 0; s < SERIES; s++)
            mp_free(g_shapes[k].chunk[s]);
    return 0;
}
