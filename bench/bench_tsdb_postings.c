/* SPDX-License-Identifier: Apache-2.0 */
/* bench/bench_tsdb_postings.c: the head's inverted index at 1M series x 20 labels (10k with
 * --smoke) and matcher resolution over it. Label shapes, generated from a fixed seed:
 *   mesh:   a service-mesh head: __name__ (60), job (8), namespace (40), pod and instance
 *           (one per 10 series), workloads (1000), le (15), response_code (12), ... 20 labels
 *   lowcard: every label has at most 100 values (long lists only)
 *   unique: mesh with one label unique per series (a request id leaking into a label)
 * Output: Go benchmark lines; the build line also gives B/pair (tsdb_mempostings_bytes divided
 * by series x 20) and B/series, the figure tsdb.md 2.8 budgets at 4-8 B per label pair.
 *   build/release/bench/bench_tsdb_postings [--smoke] [name-filter] */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "common/alloc.h"
#include "common/labels.h"
#include "common/matcher.h"
#include "tsdb/postings.h"

#define NLABELS 20

struct shape {
    const char *name;
    size_t nseries;
    struct mp_labels **ls;
    uint64_t *refs;
    struct tsdb_mempostings *mp;
    size_t bytes;      /* tsdb_mempostings_bytes after the first build */
    size_t ring_start; /* churn: oldest series */
    uint64_t next_ref;
    size_t heap_bytes; /* glibc heap growth of the first build: allocator overhead included */
};

/* label k of series i: name and value count; value = i-derived so sets repeat realistically */
static const struct {
    const char *name;
    unsigned values; /* 0: one per 10 series; UINT32_MAX: one per series */
} g_mesh[NLABELS] = {
    {"__name__", 60},      {"job", 8},           {"namespace", 40},
    {"pod", 0},            {"instance", 0},      {"source_workload", 1000},
    {"destination_workload", 1000},              {"source_app", 300},
    {"destination_app", 300},                    {"le", 15},
    {"response_code", 12}, {"request_protocol", 3}, {"reporter", 2},
    {"connection_security_policy", 3},           {"destination_service", 500},
    {"source_version", 20}, {"destination_version", 20}, {"cluster", 4},
    {"response_flags", 10}, {"grpc_response_status", 17},
};

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static void gen(struct shape *sh, int kind, size_t n)
{
    sh->nseries = n;
    sh->ls = mp_xcalloc(n, sizeof *sh->ls);
    sh->refs = mp_xcalloc(n, sizeof *sh->refs);
    uint64_t seed = 0x5eed;
    char vbuf[NLABELS][48];
    for (size_t i = 0; i < n; i++) {
        struct mp_label l[NLABELS];
        for (int k = 0; k < NLABELS; k++) {
            unsigned nv = g_mesh[k].values;
            if (kind == 1 && (nv == 0 || nv > 100))
                nv = 100;
            if (kind == 2 && k == NLABELS - 1)
                nv = UINT32_MAX;
            uint64_t v = nv == 0 ? i / 10 : nv == UINT32_MAX ? i : rnd(&seed) % nv;
            if (k == 3 || k == 4) /* pod names: deployment hash and replica suffix */
                snprintf(vbuf[k], sizeof vbuf[k], "pod-%08llx-%llu",
                         (unsigned long long)(v * 2654435761u % 4294967291u),
                         (unsigned long long)v);
            else
                snprintf(vbuf[k], sizeof vbuf[k], "v%llu", (unsigned long long)v);
            l[k] = (struct mp_label){mp_str_c(g_mesh[k].name), mp_str_c(vbuf[k])};
        }
        if (mp_labels_create(l, NLABELS, &sh->ls[i], NULL))
            abort();
        sh->refs[i] = i + 1;
    }
    sh->next_ref = n;
}

/* glibc: bytes in use in the heap proper plus in mmapped chunks (big lists and tables) */
static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static void build(struct shape *sh)
{
    if (tsdb_mempostings_create(&sh->mp))
        abort();
    for (size_t i = 0; i < sh->nseries; i++)
        if (tsdb_mempostings_add(sh->mp, sh->refs[i], sh->ls[i]))
            abort();
    sh->bytes = tsdb_mempostings_bytes(sh->mp);
}

static void bench_build(void *p, uint64_t iters)
{
    struct shape *sh = p;
    for (uint64_t k = 0; k < iters; k++) {
        tsdb_mempostings_destroy(sh->mp);
        build(sh);
    }
}

/* head GC under churn: delete the oldest 1% of the series and create as many new ones, with
 * new (larger) refs as the head's counter hands out; the label sets are reused. sh->ls and
 * sh->refs form a ring whose window [start, start + batch) holds the oldest series, in ref
 * order. */
static void bench_churn(void *p, uint64_t iters)
{
    struct shape *sh = p;
    size_t batch = sh->nseries / 100;
    for (uint64_t k = 0; k < iters; k++) {
        size_t start = sh->ring_start;
        tsdb_mempostings_delete(sh->mp, sh->refs + start,
                                (const struct mp_labels *const *)sh->ls + start, batch);
        for (size_t i = start; i < start + batch; i++) {
            sh->refs[i] = ++sh->next_ref;
            if (tsdb_mempostings_add(sh->mp, sh->refs[i], sh->ls[i]))
                abort();
        }
        sh->ring_start = (start + batch) % (batch * 100);
    }
}

struct query {
    const char *name;
    struct mp_matcher *m[3];
    size_t n;
    struct shape *sh;
    size_t result;
};

static void bench_query(void *p, uint64_t iters)
{
    struct query *q = p;
    struct tsdb_ireader ir;
    tsdb_mempostings_ireader(q->sh->mp, &ir);
    struct tsdb_plist out;
    tsdb_plist_init(&out);
    for (uint64_t k = 0; k < iters; k++) {
        if (tsdb_postings_for_matchers(&ir, (const struct mp_matcher *const *)q->m, q->n, &out,
                                       NULL))
            abort();
        bench_keep(out.refs);
    }
    q->result = out.n;
    tsdb_plist_fini(&out);
}

static int count_fn(void *ctx, struct mp_str v)
{
    (*(size_t *)ctx) += v.len;
    return 0;
}

static void bench_label_values(void *p, uint64_t iters)
{
    struct shape *sh = p;
    size_t sum = 0;
    for (uint64_t k = 0; k < iters; k++)
        if (tsdb_mempostings_label_values(sh->mp, MP_STR_LIT("pod"), count_fn, &sum))
            abort();
    bench_keep(sum);
}

static void matcher(struct query *q, enum mp_match_type t, const char *name, const char *value)
{
    if (mp_matcher_create(t, mp_str_c(name), mp_str_c(value), &q->m[q->n++], NULL))
        abort();
}

int main(int argc, char **argv)
{
    struct bench_opts o;
    bench_parse_args(argc, argv, &o);
    bench_header();
    size_t n = o.smoke ? 10000 : 1000000;
    static const char *const shapes[] = {"mesh", "lowcard", "unique"};
    for (int s = 0; s < 3; s++) {
        struct shape sh = {.name = shapes[s]};
        char name[128];
        snprintf(name, sizeof name, "BenchmarkMemPostingsBuild/%s", sh.name);
        bool want_build = bench_selected(&o, name);
        /* the other benchmarks run on the mesh index: build it if the filter could pick one */
        bool want_rest = s == 0 && (!o.filter || strstr("BenchmarkMemPostingsChurn1pct/mesh "
                                                        "BenchmarkMemPostingsLabelValues/pod "
                                                        "BenchmarkPostingsForMatchers/",
                                                        o.filter) ||
                                    strstr(o.filter, "PostingsForMatchers") ||
                                    strstr(o.filter, "_") /* a query name */);
        if (!want_build && !want_rest)
            continue;
        gen(&sh, s, n);
        size_t before = heap_in_use();
        build(&sh);
        sh.heap_bytes = heap_in_use() - before;
        struct bench_result r;
        if (want_build) {
            struct bench_opts once = o;
            once.smoke = true; /* one build is a long op already: time exactly one */
            r = bench_run(&once, bench_build, &sh);
            bench_report(name, r,
                         "\t%8.2f B/pair\t%8.1f B/series\t%8.2f heapB/pair\t%8.1f ns/series",
                         (double)sh.bytes / (double)(n * NLABELS), (double)sh.bytes / (double)n,
                         (double)sh.heap_bytes / (double)(n * NLABELS), (double)r.ns / (double)n);
        }
        if (s == 0) {
            snprintf(name, sizeof name, "BenchmarkMemPostingsChurn1pct/%s", sh.name);
            if (bench_selected(&o, name)) {
                r = bench_run(&o, bench_churn, &sh);
                bench_report(name, r, "\t%8.1f ns/series", (double)r.ns / (double)r.iters /
                                                              (double)(n / 100 ? n / 100 : 1));
            }
            snprintf(name, sizeof name, "BenchmarkMemPostingsLabelValues/pod");
            if (bench_selected(&o, name)) {
                r = bench_run(&o, bench_label_values, &sh);
                bench_report(name, r, "\t%8zu values",
                             tsdb_mempostings_num_values(sh.mp, MP_STR_LIT("pod")));
            }
            struct query qs[6] = {{.name = "name_job"},     {.name = "name_code_neq"},
                                  {.name = "pod_prefix"},   {.name = "set_workloads"},
                                  {.name = "le_not_empty"}, {.name = "no_name_negative"}};
            static const struct {
                int q;
                enum mp_match_type t;
                const char *name, *value;
            } ms[] = {
                {0, MP_MATCH_EQUAL, "__name__", "v7"},  {0, MP_MATCH_EQUAL, "job", "v3"},
                {1, MP_MATCH_EQUAL, "__name__", "v7"},  {1, MP_MATCH_NOT_EQUAL, "response_code", "v1"},
                {2, MP_MATCH_EQUAL, "__name__", "v7"},  {2, MP_MATCH_REGEX, "pod", "pod-0.*"},
                {3, MP_MATCH_EQUAL, "__name__", "v7"},
                {3, MP_MATCH_REGEX, "source_workload", "v1|v2|v3|v10|v100"},
                {4, MP_MATCH_EQUAL, "__name__", "v7"},  {4, MP_MATCH_NOT_EQUAL, "le", ""},
                {5, MP_MATCH_NOT_EQUAL, "job", "v1"},   {5, MP_MATCH_NOT_REGEX, "cluster", "v0|v1"},
            };
            for (size_t k = 0; k < sizeof ms / sizeof *ms; k++)
                matcher(&qs[ms[k].q], ms[k].t, ms[k].name, ms[k].value);
            for (int k = 0; k < 6; k++) {
                qs[k].sh = &sh;
                snprintf(name, sizeof name, "BenchmarkPostingsForMatchers/%s", qs[k].name);
                if (bench_selected(&o, name)) {
                    r = bench_run(&o, bench_query, &qs[k]);
                    bench_report(name, r, "\t%8zu series", qs[k].result);
                }
                for (size_t j = 0; j < qs[k].n; j++)
                    mp_matcher_destroy(qs[k].m[j]);
            }
        }
        tsdb_mempostings_destroy(sh.mp);
        for (size_t i = 0; i < n; i++)
            mp_labels_release(sh.ls[i]);
        mp_free(sh.ls);
        mp_free(sh.refs);
    }
    return 0;
}
