/* SPDX-License-Identifier: Apache-2.0 */
/* bench/bench_tsdb_select.c: the storage side of a Linkerd dashboard query, per series.
 *
 *   bench_tsdb_select [--smoke] [--namespaces N] [--deployments N] [--replicas N] [--iters K]
 *                     [--block] [--block-level L] [--namespace NS] [--metric NAME]
 *                     [--mode instant|range]
 *
 * Fills a tsdb with the simulated mesh of bench_query (meshsim_gen through bench/mesh_fill.h,
 * 1 h at 10 s), then reads response_latency_ms_bucket{direction="inbound"} as the engine does
 * for `...[1m]` evaluated
 *   instant: over [end - 1m, end], each series sought to the window start and read to its end;
 *   range:   over [end - 1h - 1m, end], every sample of the hour;
 * taking each series' labels (one reference kept until the select is done, as the engine keeps
 * them in its matrix); --namespace NS adds namespace="NS" as the Linkerd dashboard's queries
 * do. With --block the head is also written as a block (a snapshot, opened read-only) and the
 * same reads run against it; --block-level is its block_compression_level (default 0:
 * Prometheus's format, 120-sample chunks and index v2, as promql_diff --load block serves);
 * --drop-pages drops the blocks' mapped pages before each select, as the db loop does after a
 * round that compacted them (tsdb_block_drop_pages), so the select faults them back in. Output:
 * Go benchmark lines, the median of K runs in ns per selected series and ms per select, of the
 * thread's CPU time (on a shared machine steadier than the wall clock, which is also given). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/mesh_fill.h"
#include "common/alloc.h"
#include "common/labels.h"
#include "common/matcher.h"
#include "common/time.h"
#include "meshsim/meshsim.h"
#include "tsdb/db.h" /* tsdb_remove_all */
#include "tsdb/head_chunks.h"
#include "tsdb/tsdb.h"

struct cfg {
    struct meshsim_gen_opts mesh;
    int iters;
    bool smoke, block, drop;
    int block_level;
    const char *metric;
    const char *namespace; /* NULL: every namespace */
    const char *mode;      /* only the runs whose mode starts with this; NULL = all */
};

static void parse_args(int argc, char **argv, struct cfg *c)
{
    *c = (struct cfg){0};
    meshsim_gen_opts_init(&c->mesh);
    c->mesh.namespaces = 2;
    c->mesh.deployments = 6;
    c->mesh.replicas = 2;
    c->mesh.peers = 3;
    c->mesh.duration_ms = 3600000;
    c->mesh.interval_ms = 10000;
    c->iters = 21;
    c->metric = "response_latency_ms_bucket";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (strcmp(a, "--smoke") == 0)
            c->smoke = true;
        else if (strcmp(a, "--block") == 0)
            c->block = true;
        else if (strcmp(a, "--namespaces") == 0 && more)
            c->mesh.namespaces = atoi(argv[++i]);
        else if (strcmp(a, "--deployments") == 0 && more)
            c->mesh.deployments = atoi(argv[++i]);
        else if (strcmp(a, "--replicas") == 0 && more)
            c->mesh.replicas = atoi(argv[++i]);
        else if (strcmp(a, "--iters") == 0 && more)
            c->iters = atoi(argv[++i]);
        else if (strcmp(a, "--drop-pages") == 0)
            c->drop = true;
        else if (strcmp(a, "--block-level") == 0 && more)
            c->block_level = atoi(argv[++i]);
        else if (strcmp(a, "--namespace") == 0 && more)
            c->namespace = argv[++i];
        else if (strcmp(a, "--metric") == 0 && more)
            c->metric = argv[++i];
        else if (strcmp(a, "--mode") == 0 && more)
            c->mode = argv[++i];
        else {
            fprintf(stderr, "bench_tsdb_select: unknown argument %s\n", a);
            exit(2);
        }
    }
    if (c->smoke) {
        c->mesh.namespaces = 1;
        c->mesh.deployments = 2;
        c->mesh.replicas = 1;
        c->mesh.peers = 1;
        c->mesh.duration_ms = 600000;
        c->iters = 1;
        c->block = true;
    }
    if (c->iters < 1)
        c->iters = 1;
}

struct result {
    size_t series, samples, chunks;
    double checksum;
};

static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One select over [mint, maxt] read as the engine reads it; returns the CPU ns, *wall the
 * elapsed ns. */
static int64_t select_once(struct tsdb *db, struct mp_matcher *const *m, size_t nm, int64_t mint,
                           int64_t maxt, struct result *res, int64_t *wall)
{
    struct mp_labels **keep = NULL;
    size_t nkeep = 0, capkeep = 0;
    *res = (struct result){0};
    int64_t t0 = mp_mono_ns(), c0 = cpu_ns();
    struct tsdb_querier *q;
    struct tsdb_series_set *set;
    if (tsdb_querier_open(db, mint, maxt, &q, NULL) ||
        tsdb_querier_select(q, (const struct mp_matcher *const *)m, nm, &set, NULL))
        abort();
    int rc;
    while ((rc = tsdb_series_set_next(set, NULL)) == 0) {
        const struct tsdb_chunk *ch;
        size_t nch;
        if (tsdb_series_set_chunks(set, &ch, &nch, NULL))
            abort();
        res->chunks += nch;
        struct tsdb_sample_iter it;
        tsdb_series_set_iter(set, &it);
        int64_t t;
        double v;
        size_t got = 0;
        for (rc = tsdb_sample_iter_seek(&it, mint, &t, &v); rc == 0 && t <= maxt;
             rc = tsdb_sample_iter_next(&it, &t, &v)) {
            res->checksum += v;
            got++;
        }
        if (rc != 0 && rc != MP_EEOF)
            abort();
        res->samples += got;
        res->series++;
        if (!got)
            continue;
        if (nkeep == capkeep) {
            capkeep = capkeep ? capkeep * 2 : 1024;
            keep = realloc(keep, capkeep * sizeof *keep);
            if (!keep)
                abort();
        }
        keep[nkeep++] = mp_labels_acquire(tsdb_series_set_labels(set));
    }
    if (rc != MP_EEOF)
        abort();
    tsdb_series_set_free(set);
    tsdb_querier_close(q);
    for (size_t i = 0; i < nkeep; i++)
        mp_labels_release(keep[i]);
    free(keep);
    *wall = mp_mono_ns() - t0;
    return cpu_ns() - c0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void bench(const char *src, const char *mode, struct tsdb *db, const struct cfg *c,
                  struct mp_matcher *const *m, size_t nm, int64_t mint, int64_t maxt)
{
    if (c->mode && strncmp(mode, c->mode, strlen(c->mode)) != 0)
        return;
    int64_t *ns = malloc((size_t)c->iters * sizeof *ns);
    int64_t *wall = malloc((size_t)c->iters * sizeof *wall);
    if (!ns || !wall)
        abort();
    struct result r = {0};
    for (int i = 0; i < c->iters; i++) {
        if (c->drop) {
            size_t nb;
            struct tsdb_block **bs = tsdb_db_blocks(db, &nb);
            for (size_t k = 0; k < nb; k++) {
                tsdb_block_note_background_read(bs[k]);
                tsdb_block_drop_pages(bs[k]);
                tsdb_block_release(bs[k]);
            }
            mp_free(bs);
            if (db->hc) /* the head's m-mapped chunks: dropped after every round */
                tsdb_head_chunks_drop_pages(db->hc);
        }
        ns[i] = select_once(db, m, nm, mint, maxt, &r, &wall[i]);
    }
    qsort(ns, (size_t)c->iters, sizeof *ns, cmp_i64);
    qsort(wall, (size_t)c->iters, sizeof *wall, cmp_i64);
    double med = (double)ns[c->iters / 2];
    printf("BenchmarkSelect/%s/%s/series=%zu\t%d\t%.0f ns/series\t%.3f ms/op\t%.3f ms-wall/op\t"
           "%zu samples\t%zu chunks\t%.6g checksum\n",
           src, mode, r.series, c->iters, r.series ? med / (double)r.series : 0.0, med / 1e6,
           (double)wall[c->iters / 2] / 1e6, r.samples, r.chunks, r.checksum);
    fflush(stdout);
    free(ns);
    free(wall);
}

static void bench_all(const char *src, struct tsdb *db, const struct cfg *c, int64_t end)
{
    struct mp_matcher *m[3];
    size_t nm = c->namespace ? 3 : 2;
    if (mp_matcher_create(MP_MATCH_EQUAL, mp_str_c("__name__"), mp_str_c(c->metric), &m[0], NULL) ||
        mp_matcher_create(MP_MATCH_EQUAL, mp_str_c("direction"), mp_str_c("inbound"), &m[1],
                          NULL) ||
        (c->namespace && mp_matcher_create(MP_MATCH_EQUAL, mp_str_c("namespace"),
                                           mp_str_c(c->namespace), &m[2], NULL)))
        abort();
    bench(src, "instant-1m", db, c, m, nm, end - 60000, end);
    bench(src, "range-1h", db, c, m, nm, end - c->mesh.duration_ms - 60000, end);
    for (size_t i = 0; i < nm; i++)
        mp_matcher_destroy(m[i]);
}

static struct tsdb *open_db(const char *dir, bool read_only, int block_level)
{
    struct tsdb_options to;
    tsdb_options_init(&to);
    to.dir = dir;
    to.background = false;
    to.read_only = read_only;
    to.wal_fsync = TSDB_WAL_FSYNC_NONE;
    to.block_compression_level = block_level;
    struct tsdb *db;
    struct mp_err err = {0};
    if (tsdb_open(&to, &db, &err)) {
        fprintf(stderr, "bench_tsdb_select: %s: %s\n", dir, err.msg);
        exit(1);
    }
    return db;
}

int main(int argc, char **argv)
{
    struct cfg c;
    parse_args(argc, argv, &c);
    char dir[] = "/tmp/bench_tsdb_select_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    struct tsdb *db = open_db(dir, false, c.block_level);
    int64_t end = bench_mesh_fill_all(db, &c.mesh, "bench_tsdb_select", NULL);
    struct tsdb_head_stats hs;
    tsdb_head_stats_get(db, &hs);
    printf("# %" PRIu64 " head series, %" PRIu64 " chunks\n", hs.num_series, hs.num_chunks);
    fflush(stdout);
    bench_all("head", db, &c, end);
    struct mp_err err = {0};
    if (c.block) {
        char name[64], sdir[sizeof dir + 100];
        if (tsdb_snapshot(db, false, name, &err)) {
            fprintf(stderr, "bench_tsdb_select: snapshot: %s\n", err.msg);
            return 1;
        }
        snprintf(sdir, sizeof sdir, "%s/snapshots/%s", dir, name);
        struct tsdb *bdb = open_db(sdir, true, c.block_level);
        printf("# block opened (level %d)\n", c.block_level);
        fflush(stdout);
        bench_all("block", bdb, &c, end);
        tsdb_close(bdb);
    }
    tsdb_close(db);
    if (tsdb_remove_all(dir, &err))
        fprintf(stderr, "bench_tsdb_select: %s\n", err.msg);
    return 0;
}
