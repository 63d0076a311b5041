/* SPDX-License-Identifier: Apache-2.0 */
/* bench/bench_tsdb_disk.c: bytes per sample on disk for a Linkerd mesh (meshsim_gen_*),
 * Prometheus's (promtool backfill) against candidate encodings for our block format.
 *
 *   bench_tsdb_disk [--smoke] [--hours H] [--namespaces N] [--deployments M] [--replicas R]
 *                   [--peers K] [--seed S] [--churn F] [--churn-every-min T] [--no-promtool]
 *                   [--promtool-jitter] [--jitter-ms J] [--workdir DIR] [--meshprom-only]
 *
 * The same mesh is generated twice, with exact timestamps and with jitter (one scrape in
 * eight 2..J ms late; default J = 5), values identical. For the exact pass (both passes with
 * --promtool-jitter) an OpenMetrics file is
 * backfilled with `promtool tsdb create-blocks-from openmetrics` if promtool is on PATH
 * (sum of all block files / samples), and the same samples are cut into 2 h blocks (6 h for
 * the 6 h variants) and encoded as:
 *   prom120        Prometheus's head cut policy (chunk_xor.h cutter), block chunk-file framing
 *                  (uvarint len, encoding byte, CRC32C), plus the exact size of a v2 index
 *   xor-2h/xor-6h  one XOR chunk per series per block
 *   zstdN-series   zstd level N over each series' concatenated prom120 chunk data
 *   zstdN-frameX   zstd over the whole chunk stream (index order) in frames of X input bytes
 *   zdict          a zstd dictionary trained per block (ZDICT), each series compressed with it
 *                  (dictionary bytes counted)
 *   metric-grouped the chunk stream ordered by (metric name, le, rest) before 1 MiB frames
 *   columnar       per target one shared timestamp column (delta-of-delta varints), per
 *                  series a value column (integer deltas as zig-zag varints, else XOR of bits),
 *                  zstd -9 in 1 MiB frames; getting a chunk back re-encodes XOR
 * Every scheme adds the index, meta.json and tombstones. Output is Go benchmark lines:
 *   BenchmarkDisk/<timestamps>/<scheme>  1  <encode ns>  <B/sample>  <bytes>  <samples>
 *   BenchmarkDiskDecode/<scheme>  <iters>  <ns/op>  <ns/sample>
 * (decode = get one series' raw XOR chunk for a block back). */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zdict.h>
#include <zstd.h>

#include "bench/bench.h"
#include "bench/mesh_fill.h"
#include "meshsim/meshsim.h"
#include "common/alloc.h"
#include "common/str.h"
#include "tsdb/bytes.h"
#include "tsdb/chunk_xor.h"
#include "tsdb/db.h"
#include "tsdb/tsdb.h"

#define H2 INT64_C(7200000)
#define META_BYTES 330 /* a level-1 meta.json as promtool writes it (tests/tsdb/testdata/meta) */
#define TOMB_BYTES 9

struct ser {
    struct mp_str *lbl; /* 2 x nlbl, strings owned in strs */
    size_t nlbl;
    char *strs;
    int pod;
    int64_t *t;
    double *v;
    size_t n, cap;
};

struct data {
    struct ser *s;
    size_t ns, caps;
    uint64_t samples;
    int64_t mint, maxt;
    size_t *order; /* index order: sorted by labels */
    char pods[4096][64];
    int npods;
};

/* ---- collecting the generator's output ------------------------------------------------ */

static int pod_index(struct data *d, struct mp_str pod)
{
    for (int i = d->npods - 1; i >= 0; i--)
        if (strlen(d->pods[i]) == pod.len && memcmp(d->pods[i], pod.ptr, pod.len) == 0)
            return i;
    if (d->npods == 4096)
        abort();
    snprintf(d->pods[d->npods], sizeof d->pods[0], "%.*s", (int)pod.len, pod.ptr);
    return d->npods++;
}

static void add_sample(struct data *d, const struct meshsim_gen_sample *m, int pod, int64_t t)
{
    while (m->series_id >= d->caps) {
        size_t c = d->caps ? d->caps * 2 : 1024;
        d->s = mp_xrealloc(d->s, c * sizeof *d->s);
        memset(d->s + d->caps, 0, (c - d->caps) * sizeof *d->s);
        d->caps = c;
    }
    if (m->series_id >= d->ns)
        d->ns = m->series_id + 1;
    struct ser *s = &d->s[m->series_id];
    if (!s->lbl) {
        size_t bytes = 0;
        for (size_t i = 0; i < 2 * m->nlabels; i++)
            bytes += m->labels[i].len;
        s->lbl = mp_xmalloc(2 * m->nlabels * sizeof *s->lbl);
        s->strs = mp_xmalloc(bytes + 1);
        char *p = s->strs;
        for (size_t i = 0; i < 2 * m->nlabels; i++) {
            memcpy(p, m->labels[i].ptr, m->labels[i].len);
            s->lbl[i] = (struct mp_str){p, m->labels[i].len};
            p += m->labels[i].len;
        }
        s->nlbl = m->nlabels;
        s->pod = pod;
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->t = mp_xrealloc(s->t, s->cap * sizeof *s->t);
        s->v = mp_xrealloc(s->v, s->cap * sizeof *s->v);
    }
    s->t[s->n] = t;
    s->v[s->n] = m->value;
    s->n++;
    d->samples++;
}

static int cmp_labels(const struct ser *a, const struct ser *b)
{
    size_t n = a->nlbl < b->nlbl ? a->nlbl : b->nlbl;
    for (size_t i = 0; i < 2 * n; i++) {
        int c = mp_str_cmp(a->lbl[i], b->lbl[i]);
        if (c)
            return c;
    }
    return a->nlbl < b->nlbl ? -1 : a->nlbl > b->nlbl;
}

static struct data *sort_ctx;
static int cmp_order(const void *x, const void *y)
{
    return cmp_labels(&sort_ctx->s[*(const size_t *)x], &sort_ctx->s[*(const size_t *)y]);
}

/* Generates the mesh; writes the OpenMetrics file too when om_path is set. */
static void collect(const struct meshsim_gen_opts *o, struct data *d, const char *om_path)
{
    memset(d, 0, sizeof *d);
    struct meshsim_gen *g;
    struct mp_err err = {0};
    if (meshsim_gen_create(o, &g, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        exit(2);
    }
    FILE *f = NULL;
    if (om_path) {
        f = fopen(om_path, "w");
        if (!f) {
            perror(om_path);
            exit(2);
        }
    }
    struct meshsim_gen_scrape sc;
    d->mint = INT64_MAX;
    d->maxt = INT64_MIN;
    while (meshsim_gen_next(g, &sc) == 0) {
        int pod = pod_index(d, sc.pod);
        for (size_t i = 0; i < sc.n; i++) {
            add_sample(d, &sc.samples[i], pod, sc.t_ms);
            if (f)
                meshsim_gen_write_sample(f, &sc.samples[i], sc.t_ms);
        }
        if (sc.t_ms < d->mint)
            d->mint = sc.t_ms;
        if (sc.t_ms > d->maxt)
            d->maxt = sc.t_ms;
    }
    if (f) {
        fputs("# EOF\n", f);
        if (fclose(f) != 0) {
            perror(om_path);
            exit(2);
        }
    }
    meshsim_gen_destroy(g);
    d->order = mp_xmalloc(d->ns * sizeof *d->order);
    for (size_t i = 0; i < d->ns; i++)
        d->order[i] = i;
    sort_ctx = d;
    qsort(d->order, d->ns, sizeof *d->order, cmp_order);
}

static void data_fini(struct data *d)
{
    for (size_t i = 0; i < d->ns; i++) {
        mp_free(d->s[i].lbl);
        mp_free(d->s[i].strs);
        mp_free(d->s[i].t);
        mp_free(d->s[i].v);
    }
    mp_free(d->s);
    mp_free(d->order);
}

static double last_prometheus, last_meshprom; /* B/sample of the pass, for the ratio */
static int zlevel = -1;                        /* --level: block compression level */

/* ---- promtool ------------------------------------------------------------------------- */

static bool have_promtool(void)
{
    return system("command -v promtool >/dev/null 2>&1") == 0;
}

static uint64_t tree_bytes(const char *path, uint64_t *index_bytes, uint64_t *chunk_bytes)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return 0;
    if (!S_ISDIR(st.st_mode)) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        if (strcmp(base, "index") == 0)
            *index_bytes += (uint64_t)st.st_size;
        else if (strstr(path, "/chunks/"))
            *chunk_bytes += (uint64_t)st.st_size;
        return (uint64_t)st.st_size;
    }
    DIR *dir = opendir(path);
    if (!dir)
        return 0;
    uint64_t total = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
        total += tree_bytes(sub, index_bytes, chunk_bytes);
    }
    closedir(dir);
    return total;
}

static void rmrf(const char *path)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", path);
}

static void run_promtool(const char *om, const char *out, const char *tag, uint64_t samples,
                         const char *extra)
{
    char cmd[8192];
    rmrf(out);
    snprintf(cmd, sizeof cmd,
             "promtool tsdb create-blocks-from openmetrics %s '%s' '%s' >/dev/null 2>&1", extra, om,
             out);
    int64_t t0 = mp_mono_ns();
    int rc = system(cmd);
    int64_t ns = mp_mono_ns() - t0;
    if (rc != 0) {
        printf("# promtool failed (%d): %s\n", rc, cmd);
        return;
    }
    uint64_t ib = 0, cb = 0, total = tree_bytes(out, &ib, &cb);
    char name[128];
    snprintf(name, sizeof name, "BenchmarkDisk/%s/prometheus%s", tag, *extra ? "-6h" : "");
    bench_report(name, (struct bench_result){1, ns},
                 "\t%8.4f B/sample\t%10" PRIu64
                 " bytes\t%8.4f index-B/sample\t%8.4f chunk-B/sample",
                 (double)total / (double)samples, total, (double)ib / (double)samples,
                 (double)cb / (double)samples);
    rmrf(out);
    last_prometheus = (double)total / (double)samples;
}

/* ---- meshprom itself --------------------------------------------------------------------- */

/* Bits of one XOR chunk by field, before compression: chunk header and first sample, timestamp
 * fields (first delta, then dod classes), value fields (xor), and the trailing pad. */
struct bits {
    uint64_t header, ts, value, pad, samples, chunks;
};

static uint64_t dod_bits(int64_t dod)
{
    if (dod == 0)
        return 1;
    if (dod >= -8191 && dod <= 8192)
        return 2 + 14;
    if (dod >= -65535 && dod <= 65536)
        return 3 + 17;
    if (dod >= -524287 && dod <= 524288)
        return 4 + 20;
    return 4 + 64;
}

static void chunk_bits(const struct tsdb_chunk *c, struct bits *b)
{
    struct tsdb_xor_iter it;
    tsdb_xor_iter_init(&it, c->data, c->len);
    int64_t t, t1 = 0, t2 = 0;
    double v;
    uint64_t pos = 16, k = 0;
    b->header += 16;
    while (tsdb_xor_iter_next(&it, &t, &v) == 0) {
        uint64_t used = it.pos - pos, ts;
        if (k == 0)
            ts = 0, b->header += used;
        else if (k == 1)
            ts = 8 * tsdb_uvarint_len((uint64_t)(t - t1));
        else
            ts = dod_bits((t - t1) - (t1 - t2));
        if (k > 0) {
            b->ts += ts;
            b->value += used - ts;
        }
        t2 = t1;
        t1 = t;
        pos = it.pos;
        k++;
    }
    b->pad += 8 * c->len - pos;
    b->samples += k;
    b->chunks++;
}

/* Where the bytes of the level-1 blocks below limit go: index, chunk files (and inside the
 * chunks, the raw bit split), the rest (meta.json, tombstones). */
static void breakdown(struct tsdb *db, struct tsdb_block **bs, size_t nb, int64_t limit,
                      const char *tag)
{
    uint64_t total = 0, ib = 0, cb = 0, samples = 0;
    struct bits b = {0};
    for (size_t i = 0; i < nb; i++) {
        struct tsdb_block *bl = bs[i];
        if (bl->meta.max_time > limit || bl->meta.compaction.level > 1)
            continue;
        total += tree_bytes(bl->dir, &ib, &cb);
        samples += bl->meta.stats.num_samples;
        struct tsdb_querier *q;
        struct tsdb_series_set *set;
        if (tsdb_querier_open_sources(db, &bl, 1, false, false, bl->meta.min_time,
                                      bl->meta.max_time - 1, &q, NULL) ||
            tsdb_querier_select_all(q, &set, NULL))
            abort();
        while (tsdb_series_set_next(set, NULL) == 0) {
            const struct tsdb_chunk *c;
            size_t n;
            if (tsdb_series_set_chunks(set, &c, &n, NULL))
                abort();
            for (size_t k = 0; k < n; k++)
                chunk_bits(&c[k], &b);
        }
        tsdb_series_set_free(set);
        tsdb_querier_close(q);
    }
    if (!samples)
        return;
    double s = (double)samples;
    printf("BenchmarkDiskBreakdown/%s/meshprom-2h-blocks\t1\t%8.4f B/sample\t%8.4f index-B/sample"
           "\t%8.4f chunk-B/sample\t%8.4f other-B/sample\t%.1f samples/chunk"
           "\t%6.3f raw-header-bits/sample\t%6.3f raw-ts-bits/sample\t%6.3f raw-value-bits/sample"
           "\t%6.3f raw-pad-bits/sample\n",
           tag, (double)total / s, (double)ib / s, (double)cb / s,
           (double)(total - ib - cb) / s, (double)b.samples / (double)(b.chunks ? b.chunks : 1),
           (double)b.header / s, (double)b.ts / s, (double)b.value / s, (double)b.pad / s);
}

/* Feeds the mesh, one appender per scrape, into a database as the server runs it (default
 * retention, so 2 h blocks merge into 6 h ones; the db loop's work every simulated minute),
 * 4 h 10 min longer than asked so that the first `hours` end up in blocks and, the planner
 * leaving the newest block alone, merged into 6 h ones; then reports the
 * bytes per sample of the level-1 (2 h) blocks and of the merged blocks, each its files on disk
 * over the samples it holds. */
static void run_meshprom(const struct meshsim_gen_opts *mo, const char *workdir, const char *tag,
                         int64_t retention_ms)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/meshprom-XXXXXX", workdir);
    if (!mkdtemp(dir))
        return;
    struct meshsim_gen_opts o = *mo;
    o.duration_ms += 4 * 3600000 + 10 * 60000;
    struct tsdb_options to;
    tsdb_options_init(&to);
    to.dir = dir;
    to.background = false;
    to.wal_fsync = TSDB_WAL_FSYNC_NONE;
    to.retention_ms = retention_ms;
    if (zlevel >= 0)
        to.block_compression_level = zlevel;
    struct tsdb *db;
    struct meshsim_gen *g;
    struct mp_err err = {0};
    if (tsdb_open(&to, &db, &err) || meshsim_gen_create(&o, &g, &err)) {
        printf("# meshprom: %s\n", err.msg);
        return;
    }
    struct bench_mesh_fill mf = {0};
    int64_t next_compact = o.start_ms + 60000, t0 = mp_mono_ns();
    struct meshsim_gen_scrape sc;
    while (meshsim_gen_next(g, &sc) == 0) {
        if (bench_mesh_fill_scrape(&mf, db, &sc, &err)) {
            printf("# meshprom: append: %s\n", err.msg);
            abort();
        }
        if (sc.t_ms >= next_compact) {
            if (tsdb_compact(db, &err))
                printf("# meshprom: compact: %s\n", err.msg);
            next_compact += 60000;
        }
    }
    if (tsdb_compact(db, &err))
        printf("# meshprom: compact: %s\n", err.msg);
    int64_t ns = mp_mono_ns() - t0;
    size_t nb;
    struct tsdb_block **bs = tsdb_db_blocks(db, &nb);
    uint64_t b1 = 0, s1 = 0, bm = 0, sm = 0, i1 = 0, im = 0;
    int64_t limit = mo->start_ms + mo->duration_ms;
    for (size_t i = 0; i < nb; i++) {
        const struct tsdb_block *b = bs[i];
        if (b->meta.max_time > limit)
            continue; /* past the asked range: only there to let the planner merge */
        char ip[4200];
        snprintf(ip, sizeof ip, "%s/index", b->dir);
        struct stat st;
        uint64_t isz = stat(ip, &st) == 0 ? (uint64_t)st.st_size : 0;
        if (b->meta.compaction.level <= 1) {
            i1 += isz;
            b1 += b->size_bytes;
            s1 += b->meta.stats.num_samples;
        } else {
            im += isz;
            bm += b->size_bytes;
            sm += b->meta.stats.num_samples;
        }
    }
    char name[160];
    if (s1) {
        snprintf(name, sizeof name, "BenchmarkDisk/%s/meshprom-2h-blocks/retention=%gh", tag,
                 (double)retention_ms / 3600000.0);
        bench_report(name, (struct bench_result){1, ns},
                     "\t%8.4f B/sample\t%10" PRIu64 " bytes\t%8.4f index-B/sample",
                     (double)b1 / (double)s1, b1, (double)i1 / (double)s1);
    }
    if (sm) {
        snprintf(name, sizeof name, "BenchmarkDisk/%s/meshprom-merged-blocks/retention=%gh", tag,
                 (double)retention_ms / 3600000.0);
        bench_report(name, (struct bench_result){1, ns},
                     "\t%8.4f B/sample\t%10" PRIu64 " bytes\t%8.4f index-B/sample\t%" PRIu64
                     " samples",
                     (double)bm / (double)sm, bm, (double)im / (double)sm, sm);
    }
    last_meshprom = sm ? (double)bm / (double)sm : s1 ? (double)b1 / (double)s1 : 0;
    if (retention_ms <= 6 * 3600000)
        breakdown(db, bs, nb, limit, tag);
    for (size_t i = 0; i < nb; i++)
        tsdb_block_release(bs[i]);
    free(bs);
    bench_mesh_fill_fini(&mf);
    meshsim_gen_destroy(g);
    tsdb_close(db);
    rmrf(dir);
}



/* ---- encodings ------------------------------------------------------------------------ */

struct chunkmeta {
    int64_t mint, maxt;
    uint32_t len; /* data bytes */
    uint32_t nsamples;
};

/* One series' part of one block: its chunks, their bytes concatenated. */
struct part {
    size_t ser;
    size_t i0, i1; /* sample range */
    struct chunkmeta *cm;
    size_t ncm;
    size_t data_off, data_len; /* in the block's chunk stream */
};

struct block {
    int64_t mint, maxt;
    struct part *p;
    size_t np;
    struct mp_buf stream; /* every part's chunk data, in index order */
    uint64_t samples;
};

static size_t uvlen(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t vlen(int64_t x)
{
    uint64_t u = (uint64_t)x;
    return uvlen((u << 1) ^ (0 - (u >> 63)));
}

/* Appends one XOR chunk of samples [i0, i1) to out. */
static uint32_t xor_encode(const struct ser *s, size_t i0, size_t i1, struct mp_buf *out)
{
    struct tsdb_xor *c;
    if (tsdb_xor_create(&c) != 0)
        abort();
    for (size_t i = i0; i < i1; i++)
        if (tsdb_xor_append(c, s->t[i], s->v[i]) != 0)
            abort();
    size_t len;
    const uint8_t *b = tsdb_xor_bytes(c, &len);
    if (mp_buf_append(out, b, len) != 0)
        abort();
    tsdb_xor_destroy(c);
    return (uint32_t)len;
}

static void add_cm(struct part *p, const struct ser *s, size_t i0, size_t i1, uint32_t len)
{
    p->cm = mp_xrealloc(p->cm, (p->ncm + 1) * sizeof *p->cm);
    p->cm[p->ncm++] = (struct chunkmeta){s->t[i0], s->t[i1 - 1], len, (uint32_t)(i1 - i0)};
}

/* Builds the blocks of range_ms; cut120 selects Prometheus's cut policy, else one chunk
 * per series per block. */
static struct block *make_blocks(const struct data *d, int64_t range_ms, bool cut120,
                                 size_t *nblocks)
{
    int64_t first = d->mint / range_ms * range_ms;
    size_t nb = (size_t)((d->maxt - first) / range_ms + 1);
    struct block *b = mp_xcalloc(nb, sizeof *b);
    size_t *pos = mp_xcalloc(d->ns, sizeof *pos);
    for (size_t k = 0; k < nb; k++) {
        struct block *bl = &b[k];
        bl->mint = first + (int64_t)k * range_ms;
        bl->maxt = bl->mint + range_ms;
        mp_buf_init(&bl->stream, 0);
        bl->p = mp_xcalloc(d->ns, sizeof *bl->p);
        for (size_t oi = 0; oi < d->ns; oi++) {
            size_t si = d->order[oi];
            const struct ser *s = &d->s[si];
            size_t i0 = pos[si], i1 = i0;
            while (i1 < s->n && s->t[i1] < bl->maxt)
                i1++;
            pos[si] = i1;
            if (i1 == i0)
                continue;
            struct part *p = &bl->p[bl->np++];
            *p = (struct part){si, i0, i1, NULL, 0, bl->stream.len, 0};
            if (!cut120) {
                add_cm(p, s, i0, i1, xor_encode(s, i0, i1, &bl->stream));
            } else {
                struct tsdb_xor_cutter cs;
                tsdb_xor_cutter_init(&cs, H2, TSDB_SAMPLES_PER_CHUNK_DEFAULT);
                struct tsdb_xor *cur = NULL;
                size_t start = i0;
                for (size_t i = i0; i < i1; i++) {
                    if (tsdb_xor_cutter_should_cut(&cs, cur, s->t[i])) {
                        if (cur) {
                            tsdb_xor_destroy(cur);
                            add_cm(p, s, start, i, xor_encode(s, start, i, &bl->stream));
                        }
                        if (tsdb_xor_create(&cur) != 0)
                            abort();
                        start = i;
                    }
                    if (tsdb_xor_append(cur, s->t[i], s->v[i]) != 0)
                        abort();
                }
                tsdb_xor_destroy(cur);
                add_cm(p, s, start, i1, xor_encode(s, start, i1, &bl->stream));
            }
            p->data_len = bl->stream.len - p->data_off;
            bl->samples += i1 - i0;
        }
    }
    mp_free(pos);
    *nblocks = nb;
    return b;
}

static void blocks_free(struct block *b, size_t nb)
{
    for (size_t k = 0; k < nb; k++) {
        for (size_t i = 0; i < b[k].np; i++)
            mp_free(b[k].p[i].cm);
        mp_free(b[k].p);
        mp_buf_fini(&b[k].stream);
    }
    mp_free(b);
}

/* Chunk-file bytes of a block: header + per chunk uvarint len, encoding byte, CRC. */
static uint64_t chunk_file_bytes(const struct block *bl)
{
    uint64_t n = 8;
    for (size_t i = 0; i < bl->np; i++)
        for (size_t c = 0; c < bl->p[i].ncm; c++)
            n += uvlen(bl->p[i].cm[c].len) + 1 + bl->p[i].cm[c].len + 4;
    return n;
}

static int cmp_mpstr(const void *a, const void *b)
{
    return mp_str_cmp(*(const struct mp_str *)a, *(const struct mp_str *)b);
}

static int cmp_pair(const void *a, const void *b)
{
    const struct mp_str *x = a, *y = b;
    int c = mp_str_cmp(x[0], y[0]);
    return c ? c : mp_str_cmp(x[1], y[1]);
}

static size_t find_sym(const struct mp_str *syms, size_t n, struct mp_str s)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t m = (lo + hi) / 2;
        if (mp_str_cmp(syms[m], s) < 0)
            lo = m + 1;
        else
            hi = m;
    }
    return lo;
}

/* Exact size of the v2 index Prometheus writes for the block (tsdb.md 4.4), given chunk
 * refs as laid out by chunk_file_bytes (or, with one_ref, one chunk ref per series). */
static uint64_t index_bytes(const struct data *d, const struct block *bl)
{
    size_t nstr = 0;
    for (size_t i = 0; i < bl->np; i++)
        nstr += 2 * d->s[bl->p[i].ser].nlbl;
    struct mp_str *all = mp_xmalloc((nstr + 1) * sizeof *all);
    struct mp_str *pairs = mp_xmalloc((nstr + 2) * sizeof *pairs);
    size_t k = 0;
    for (size_t i = 0; i < bl->np; i++) {
        const struct ser *s = &d->s[bl->p[i].ser];
        memcpy(all + k, s->lbl, 2 * s->nlbl * sizeof *all);
        memcpy(pairs + k, s->lbl, 2 * s->nlbl * sizeof *pairs);
        k += 2 * s->nlbl;
    }
    all[k++] = (struct mp_str){"", 0};
    qsort(all, k, sizeof *all, cmp_mpstr);
    size_t nsym = 0;
    for (size_t i = 0; i < k; i++)
        if (nsym == 0 || !mp_str_eq(all[nsym - 1], all[i]))
            all[nsym++] = all[i];
    uint64_t pos = 5; /* magic + version */
    uint64_t sym = 4 + 4 + 4;
    for (size_t i = 0; i < nsym; i++)
        sym += uvlen(all[i].len) + all[i].len;
    pos += sym;
    /* series: 16-byte aligned entries */
    uint64_t ref = 8;
    for (size_t i = 0; i < bl->np; i++) {
        const struct part *p = &bl->p[i];
        const struct ser *s = &d->s[p->ser];
        pos = (pos + 15) / 16 * 16;
        uint64_t e = uvlen(s->nlbl);
        for (size_t l = 0; l < 2 * s->nlbl; l++)
            e += uvlen(find_sym(all, nsym, s->lbl[l]));
        e += uvlen(p->ncm);
        uint64_t prevref = 0;
        int64_t prevmaxt = 0;
        for (size_t c = 0; c < p->ncm; c++) {
            const struct chunkmeta *m = &p->cm[c];
            if (c == 0)
                e += vlen(m->mint) + uvlen((uint64_t)(m->maxt - m->mint)) + uvlen(ref);
            else
                e += uvlen((uint64_t)(m->mint - prevmaxt)) + uvlen((uint64_t)(m->maxt - m->mint)) +
                     vlen((int64_t)(ref - prevref));
            prevref = ref;
            prevmaxt = m->maxt;
            ref += uvlen(m->len) + 1 + m->len + 4;
        }
        pos += uvlen(e) + e + 4;
    }
    /* label indices (one per name), postings (all + one per pair), offset tables */
    size_t npairs = k - 1;
    qsort(pairs, npairs / 2, 2 * sizeof *pairs, cmp_pair);
    uint64_t li = 0, post = 4 + 4 + 4 * (uint64_t)bl->np + 4, lot = 8 + 4, pot = 8 + 4;
    pot += 1 + 1 + 1 + uvlen(pos); /* ("","") */
    size_t names = 0;
    for (size_t i = 0; i < npairs / 2;) {
        size_t j = i;
        size_t values = 0;
        while (j < npairs / 2 && mp_str_eq(pairs[2 * j], pairs[2 * i])) {
            size_t m = j, cnt = 0;
            while (m < npairs / 2 && mp_str_eq(pairs[2 * m], pairs[2 * j]) &&
                   mp_str_eq(pairs[2 * m + 1], pairs[2 * j + 1]))
                m++, cnt++;
            post += 4 + 4 + 4 * cnt + 4;
            pot += 1 + uvlen(pairs[2 * j].len) + pairs[2 * j].len + uvlen(pairs[2 * j + 1].len) +
                   pairs[2 * j + 1].len + uvlen(pos + post);
            values++;
            j = m;
        }
        li += 4 + 4 + 4 + 4 * values + 4 + 3;
        lot += 1 + uvlen(pairs[2 * i].len) + pairs[2 * i].len + uvlen(pos + li);
        names++;
        i = j;
    }
    mp_free(all);
    mp_free(pairs);
    return pos + li + post + lot + pot + 52;
}

static size_t zcompress_fwd(const void *src, size_t n, int level, uint8_t **out);
static void put_uv(struct mp_buf *b, uint64_t v);

struct tally {
    uint64_t bytes, samples;
};

static void report(const char *tag, const char *scheme, struct tally t, int64_t ns)
{
    char name[160];
    snprintf(name, sizeof name, "BenchmarkDisk/%s/%s", tag, scheme);
    bench_report(name, (struct bench_result){1, ns}, "\t%8.4f B/sample\t%10" PRIu64 " bytes",
                 (double)t.bytes / (double)t.samples, t.bytes);
}

static uint64_t block_overhead(const struct data *d, const struct block *bl)
{
    return index_bytes(d, bl) + META_BYTES + TOMB_BYTES;
}

struct triple {
    struct mp_str name, value;
    size_t ord;
};

static int cmp_triple(const void *a, const void *b)
{
    const struct triple *x = a, *y = b;
    int c = mp_str_cmp(x->name, y->name);
    if (!c)
        c = mp_str_cmp(x->value, y->value);
    return c ? c : (x->ord > y->ord) - (x->ord < y->ord);
}

/* A compact index of our own, built for real: symbols (uvarint strings), series entries
 * (uvarint symbol ordinals, one chunk ref and time range per chunk as uvarint deltas, no
 * alignment, one CRC per section), postings as uvarint deltas of series ordinals (the
 * all-series list is implicit), and a (name, value) -> offset table by symbol ordinals.
 * Returns the raw size; *zstd gets its size after zstd -9 (the index compressed whole). */
static uint64_t compact_index_bytes(const struct data *d, const struct block *bl, uint64_t *zstd)
{
    size_t nstr = 0;
    for (size_t i = 0; i < bl->np; i++)
        nstr += 2 * d->s[bl->p[i].ser].nlbl;
    struct mp_str *syms = mp_xmalloc((nstr + 1) * sizeof *syms);
    struct triple *tr = mp_xmalloc((nstr / 2 + 1) * sizeof *tr);
    size_t k = 0, nt = 0;
    for (size_t i = 0; i < bl->np; i++) {
        const struct ser *s = &d->s[bl->p[i].ser];
        memcpy(syms + k, s->lbl, 2 * s->nlbl * sizeof *syms);
        k += 2 * s->nlbl;
        for (size_t l = 0; l < s->nlbl; l++)
            tr[nt++] = (struct triple){s->lbl[2 * l], s->lbl[2 * l + 1], i};
    }
    qsort(syms, k, sizeof *syms, cmp_mpstr);
    size_t nsym = 0;
    for (size_t i = 0; i < k; i++)
        if (nsym == 0 || !mp_str_eq(syms[nsym - 1], syms[i]))
            syms[nsym++] = syms[i];
    struct mp_buf b;
    mp_buf_init(&b, 0);
    put_uv(&b, nsym);
    for (size_t i = 0; i < nsym; i++) {
        put_uv(&b, syms[i].len);
        if (mp_buf_append(&b, syms[i].ptr, syms[i].len) != 0)
            abort();
    }
    put_uv(&b, bl->np);
    uint64_t ref = 0;
    for (size_t i = 0; i < bl->np; i++) {
        const struct part *p = &bl->p[i];
        const struct ser *s = &d->s[p->ser];
        put_uv(&b, s->nlbl);
        for (size_t l = 0; l < 2 * s->nlbl; l++)
            put_uv(&b, find_sym(syms, nsym, s->lbl[l]));
        put_uv(&b, p->ncm);
        int64_t prev = bl->mint;
        for (size_t c = 0; c < p->ncm; c++) {
            put_uv(&b, (uint64_t)(p->cm[c].mint - prev));
            put_uv(&b, (uint64_t)(p->cm[c].maxt - p->cm[c].mint));
            put_uv(&b, p->cm[c].len);
            prev = p->cm[c].maxt;
            ref += p->cm[c].len;
        }
    }
    qsort(tr, nt, sizeof *tr, cmp_triple);
    struct mp_buf table;
    mp_buf_init(&table, 0);
    for (size_t i = 0; i < nt;) {
        size_t j = i;
        while (j < nt && mp_str_eq(tr[j].name, tr[i].name) && mp_str_eq(tr[j].value, tr[i].value))
            j++;
        put_uv(&table, find_sym(syms, nsym, tr[i].name));
        put_uv(&table, find_sym(syms, nsym, tr[i].value));
        put_uv(&table, b.len);
        put_uv(&b, j - i);
        size_t prev = 0;
        for (size_t m = i; m < j; m++) {
            put_uv(&b, tr[m].ord - prev);
            prev = tr[m].ord;
        }
        i = j;
    }
    if (mp_buf_append(&b, table.data, table.len) != 0)
        abort();
    uint64_t raw = b.len + 4 * 4 + 52; /* section CRCs + TOC */
    uint8_t *z;
    *zstd = zcompress_fwd(b.data, b.len, 9, &z) + 52;
    mp_free(z);
    mp_buf_fini(&table);
    mp_buf_fini(&b);
    mp_free(syms);
    mp_free(tr);
    return raw;
}

/* ---- zstd helpers --------------------------------------------------------------------- */

struct frames {
    size_t in_size, n;
    uint8_t **c;
    size_t *clen;
};

static size_t zcompress(const void *src, size_t n, int level, uint8_t **out)
{
    size_t cap = ZSTD_compressBound(n);
    *out = mp_xmalloc(cap);
    size_t r = ZSTD_compress(*out, cap, src, n, level);
    if (ZSTD_isError(r))
        abort();
    return r;
}

static size_t zcompress_fwd(const void *src, size_t n, int level, uint8_t **out)
{
    return zcompress(src, n, level, out);
}

/* Frames of in_size input bytes over buf; returns compressed bytes (+12 B per frame for
 * its offset and length in a frame table). */
static uint64_t make_frames(const uint8_t *buf, size_t len, size_t in_size, int level,
                            struct frames *f)
{
    f->in_size = in_size;
    f->n = (len + in_size - 1) / in_size;
    f->c = mp_xcalloc(f->n + 1, sizeof *f->c);
    f->clen = mp_xcalloc(f->n + 1, sizeof *f->clen);
    uint64_t total = 0;
    for (size_t i = 0; i < f->n; i++) {
        size_t n = len - i * in_size < in_size ? len - i * in_size : in_size;
        f->clen[i] = zcompress(buf + i * in_size, n, level, &f->c[i]);
        total += f->clen[i] + 12;
    }
    return total;
}

static void frames_free(struct frames *f)
{
    for (size_t i = 0; i < f->n; i++)
        mp_free(f->c[i]);
    mp_free(f->c);
    mp_free(f->clen);
}

/* ---- columnar ------------------------------------------------------------------------- */

struct colpart {
    int pod;
    size_t ts_start, count;  /* run in the pod's timestamp column */
    size_t val_off, val_len; /* in the value stream (after the timestamp columns) */
};

struct columnar {
    struct mp_buf raw;  /* timestamp columns then value columns */
    size_t *pod_ts_off; /* per pod: offset of its timestamp column in raw */
    size_t *pod_ts_len;
    int64_t **pod_ts; /* decoded, for checking runs */
    size_t *pod_nts;
    struct colpart *cp; /* per part of the block */
    size_t values_start;
};

static void put_uv(struct mp_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    if (mp_buf_append(b, tmp, tsdb_put_uvarint(tmp, v)) != 0)
        abort();
}

static void put_v(struct mp_buf *b, int64_t v)
{
    uint8_t tmp[10];
    if (mp_buf_append(b, tmp, tsdb_put_varint(tmp, v)) != 0)
        abort();
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static bool integral(double v)
{
    return v == floor(v) && fabs(v) < 0x1p53;
}

static void columnar_build(const struct data *d, const struct block *bl, struct columnar *c)
{
    memset(c, 0, sizeof *c);
    mp_buf_init(&c->raw, 0);
    int np = d->npods;
    c->pod_ts_off = mp_xcalloc((size_t)np, sizeof *c->pod_ts_off);
    c->pod_ts_len = mp_xcalloc((size_t)np, sizeof *c->pod_ts_len);
    c->pod_ts = mp_xcalloc((size_t)np, sizeof *c->pod_ts);
    c->pod_nts = mp_xcalloc((size_t)np, sizeof *c->pod_nts);
    /* union of the timestamps per pod */
    size_t *cap = mp_xcalloc((size_t)np, sizeof *cap);
    for (size_t i = 0; i < bl->np; i++) {
        const struct part *p = &bl->p[i];
        const struct ser *s = &d->s[p->ser];
        int pod = s->pod;
        for (size_t k = p->i0; k < p->i1; k++) {
            if (c->pod_nts[pod] == cap[pod]) {
                cap[pod] = cap[pod] ? cap[pod] * 2 : 1024;
                c->pod_ts[pod] = mp_xrealloc(c->pod_ts[pod], cap[pod] * sizeof(int64_t));
            }
            c->pod_ts[pod][c->pod_nts[pod]++] = s->t[k];
        }
    }
    for (int pod = 0; pod < np; pod++) {
        size_t n = c->pod_nts[pod], w = 0;
        qsort(c->pod_ts[pod], n, sizeof(int64_t), cmp_i64);
        for (size_t i = 0; i < n; i++)
            if (w == 0 || c->pod_ts[pod][w - 1] != c->pod_ts[pod][i])
                c->pod_ts[pod][w++] = c->pod_ts[pod][i];
        c->pod_nts[pod] = w;
        c->pod_ts_off[pod] = c->raw.len;
        put_uv(&c->raw, w);
        int64_t prev = 0, pd = 0;
        for (size_t i = 0; i < w; i++) {
            int64_t t = c->pod_ts[pod][i];
            if (i == 0)
                put_v(&c->raw, t);
            else
                put_v(&c->raw, (t - prev) - pd);
            if (i > 0)
                pd = t - prev;
            prev = t;
        }
        c->pod_ts_len[pod] = c->raw.len - c->pod_ts_off[pod];
    }
    mp_free(cap);
    c->values_start = c->raw.len;
    c->cp = mp_xcalloc(bl->np + 1, sizeof *c->cp);
    for (size_t i = 0; i < bl->np; i++) {
        const struct part *p = &bl->p[i];
        const struct ser *s = &d->s[p->ser];
        struct colpart *q = &c->cp[i];
        q->pod = s->pod;
        const int64_t *col = c->pod_ts[s->pod];
        size_t lo = 0, hi = c->pod_nts[s->pod];
        while (lo < hi) {
            size_t m = (lo + hi) / 2;
            if (col[m] < s->t[p->i0])
                lo = m + 1;
            else
                hi = m;
        }
        q->ts_start = lo;
        q->count = p->i1 - p->i0;
        /* the series' samples are a run of its pod's scrapes (series live contiguously) */
        if (lo + q->count > c->pod_nts[s->pod] ||
            memcmp(col + lo, s->t + p->i0, q->count * sizeof(int64_t)) != 0) {
            fprintf(stderr, "columnar: series is not a run of its target's scrapes\n");
            exit(3);
        }
        q->val_off = c->raw.len;
        put_uv(&c->raw, lo);
        put_uv(&c->raw, q->count);
        bool ints = true;
        for (size_t k = p->i0; k < p->i1 && ints; k++)
            ints = integral(s->v[k]);
        uint8_t mode = ints ? 0 : 1;
        if (mp_buf_append(&c->raw, &mode, 1) != 0)
            abort();
        int64_t prev = 0;
        uint64_t pbits = 0;
        for (size_t k = p->i0; k < p->i1; k++) {
            if (ints) {
                int64_t v = (int64_t)s->v[k];
                put_v(&c->raw, v - prev);
                prev = v;
            } else {
                uint64_t bits;
                memcpy(&bits, &s->v[k], 8);
                uint8_t b8[8];
                uint64_t x = bits ^ pbits;
                for (int j = 0; j < 8; j++)
                    b8[j] = (uint8_t)(x >> (56 - 8 * j));
                if (mp_buf_append(&c->raw, b8, 8) != 0)
                    abort();
                pbits = bits;
            }
        }
        q->val_len = c->raw.len - q->val_off;
    }
}

static void columnar_free(struct columnar *c, int np)
{
    for (int i = 0; i < np; i++)
        mp_free(c->pod_ts[i]);
    mp_free(c->pod_ts);
    mp_free(c->pod_nts);
    mp_free(c->pod_ts_off);
    mp_free(c->pod_ts_len);
    mp_free(c->cp);
    mp_buf_fini(&c->raw);
}

/* ---- decode benchmarks ---------------------------------------------------------------- */

enum dec_kind { DEC_RAW, DEC_ITER, DEC_SERIES, DEC_DICT, DEC_FRAMES, DEC_COLUMNAR };

struct dec_ctx {
    enum dec_kind kind;
    const struct block *bl;
    uint8_t **comp; /* per part (series / dict) */
    size_t *clen;
    ZSTD_DDict *ddict;
    const struct frames *fr;
    const struct columnar *col;
    ZSTD_DCtx *dctx;
    uint8_t *scratch, *scratch2;
    size_t scratch_cap;
    size_t next;
    uint64_t samples;
};

/* Decompresses the frames covering [off, off+len) of the framed stream into dst. */
static void frames_get(struct dec_ctx *c, size_t off, size_t len, uint8_t *dst)
{
    const struct frames *f = c->fr;
    size_t first = off / f->in_size, last = (off + len - 1) / f->in_size;
    for (size_t i = first; i <= last; i++) {
        size_t r = ZSTD_decompressDCtx(c->dctx, dst + (i - first) * f->in_size, f->in_size, f->c[i],
                                       f->clen[i]);
        if (ZSTD_isError(r))
            abort();
    }
}

static void xor_from_columns(struct dec_ctx *c, const struct colpart *q, const uint8_t *ts,
                             const uint8_t *val)
{
    /* timestamps: uvarint n, varint t0, varint dods; values: uvarint start, count, mode */
    const uint8_t *p = ts;
    uint64_t n = 0;
    for (int sh = 0;; sh += 7) {
        n |= (uint64_t)(*p & 0x7f) << sh;
        if (!(*p++ & 0x80))
            break;
    }
    int64_t *tv = (int64_t *)c->scratch2;
    int64_t t = 0, delta = 0;
    for (uint64_t i = 0; i < q->ts_start + q->count && i < n; i++) {
        uint64_t u = 0;
        for (int sh = 0;; sh += 7) {
            u |= (uint64_t)(*p & 0x7f) << sh;
            if (!(*p++ & 0x80))
                break;
        }
        int64_t x = (int64_t)((u >> 1) ^ (0 - (u & 1)));
        if (i == 0)
            t = x;
        else {
            delta = i == 1 ? x : delta + x;
            t += delta;
        }
        if (i >= q->ts_start)
            tv[i - q->ts_start] = t;
    }
    const uint8_t *v = val;
    for (int k = 0; k < 2; k++)
        while (*v++ & 0x80)
            ;
    uint8_t mode = *v++;
    struct tsdb_xor *x;
    if (tsdb_xor_create(&x) != 0)
        abort();
    int64_t iv = 0;
    uint64_t bits = 0;
    for (size_t i = 0; i < q->count; i++) {
        double d;
        if (mode == 0) {
            uint64_t u = 0;
            for (int sh = 0;; sh += 7) {
                u |= (uint64_t)(*v & 0x7f) << sh;
                if (!(*v++ & 0x80))
                    break;
            }
            iv += (int64_t)((u >> 1) ^ (0 - (u & 1)));
            d = (double)iv;
        } else {
            uint64_t xb = 0;
            for (int j = 0; j < 8; j++)
                xb = xb << 8 | *v++;
            bits ^= xb;
            memcpy(&d, &bits, 8);
        }
        if (tsdb_xor_append(x, tv[i], d) != 0)
            abort();
    }
    size_t len;
    bench_keep(tsdb_xor_bytes(x, &len));
    tsdb_xor_destroy(x);
}

static void decode_one(void *arg, uint64_t iters)
{
    struct dec_ctx *c = arg;
    for (uint64_t it = 0; it < iters; it++) {
        size_t i = c->next;
        c->next = (c->next + 7) % c->bl->np;
        const struct part *p = &c->bl->p[i];
        c->samples += p->i1 - p->i0;
        switch (c->kind) {
        case DEC_RAW:
            memcpy(c->scratch, c->bl->stream.data + p->data_off, p->data_len);
            break;
        case DEC_ITER:
            for (size_t k = 0; k < p->ncm; k++) {
                struct tsdb_xor_iter xi;
                size_t off = p->data_off;
                for (size_t j = 0; j < k; j++)
                    off += p->cm[j].len;
                tsdb_xor_iter_init(&xi, (const uint8_t *)c->bl->stream.data + off, p->cm[k].len);
                int64_t t;
                double v;
                while (tsdb_xor_iter_next(&xi, &t, &v) == 0)
                    bench_keep(v);
            }
            break;
        case DEC_SERIES:
            if (ZSTD_isError(ZSTD_decompressDCtx(c->dctx, c->scratch, c->scratch_cap, c->comp[i],
                                                 c->clen[i])))
                abort();
            break;
        case DEC_DICT:
            if (ZSTD_isError(ZSTD_decompress_usingDDict(c->dctx, c->scratch, c->scratch_cap,
                                                        c->comp[i], c->clen[i], c->ddict)))
                abort();
            break;
        case DEC_FRAMES:
            frames_get(c, p->data_off, p->data_len, c->scratch);
            break;
        case DEC_COLUMNAR: {
            const struct colpart *q = &c->col->cp[i];
            size_t toff = c->col->pod_ts_off[q->pod];
            frames_get(c, toff, c->col->pod_ts_len[q->pod], c->scratch);
            const uint8_t *ts = c->scratch + toff % c->fr->in_size;
            uint8_t *vbuf = c->scratch + c->scratch_cap / 2;
            frames_get(c, q->val_off, q->val_len, vbuf);
            xor_from_columns(c, q, ts, vbuf + q->val_off % c->fr->in_size);
            break;
        }
        }
        bench_keep(c->scratch);
    }
}

static void bench_decode(const struct bench_opts *bo, const char *name, struct dec_ctx *c)
{
    c->dctx = ZSTD_createDCtx();
    c->scratch_cap = 8u << 20;
    c->scratch = mp_xmalloc(c->scratch_cap);
    c->scratch2 = mp_xmalloc(8u << 20);
    c->next = 0;
    c->samples = 0;
    struct bench_result r = bench_run(bo, decode_one, c);
    /* bench_run ran warm-up + timed runs; samples counts all of them, so use the average
     * samples per op over the whole block instead */
    double per_op = (double)c->bl->samples / (double)c->bl->np;
    char full[160];
    snprintf(full, sizeof full, "BenchmarkDiskDecode/%s", name);
    bench_report(full, r, "\t%8.2f ns/sample", (double)r.ns / (double)r.iters / per_op);
    ZSTD_freeDCtx(c->dctx);
    mp_free(c->scratch);
    mp_free(c->scratch2);
}

/* ---- the schemes ---------------------------------------------------------------------- */

/* Sort key for metric grouping: __name__, then le, then the labels in order. */
static const struct data *group_ctx;
static const struct block *group_bl;
static struct mp_str label_value(const struct ser *s, const char *name)
{
    for (size_t i = 0; i < s->nlbl; i++)
        if (s->lbl[2 * i].len == strlen(name) &&
            !memcmp(s->lbl[2 * i].ptr, name, s->lbl[2 * i].len))
            return s->lbl[2 * i + 1];
    return (struct mp_str){"", 0};
}

static int cmp_group(const void *x, const void *y)
{
    const struct ser *a = &group_ctx->s[group_bl->p[*(const size_t *)x].ser];
    const struct ser *b = &group_ctx->s[group_bl->p[*(const size_t *)y].ser];
    int c = mp_str_cmp(a->lbl[1], b->lbl[1]);
    if (c)
        return c;
    c = mp_str_cmp(label_value(a, "le"), label_value(b, "le"));
    return c ? c : cmp_labels(a, b);
}

static void run_schemes(const struct bench_opts *bo, const struct data *d, const char *tag,
                        bool decode)
{
    size_t nb2, nb6, nb120;
    int64_t t0 = mp_mono_ns();
    struct block *b120 = make_blocks(d, H2, true, &nb120);
    int64_t enc120 = mp_mono_ns() - t0;
    t0 = mp_mono_ns();
    struct block *b2 = make_blocks(d, H2, false, &nb2);
    int64_t enc2 = mp_mono_ns() - t0;
    t0 = mp_mono_ns();
    struct block *b6 = make_blocks(d, 3 * H2, false, &nb6);
    int64_t enc6 = mp_mono_ns() - t0;

    struct tally a = {0, 0}, ai = {0, 0}, x2 = {0, 0}, x6 = {0, 0};
    uint64_t chunks120 = 0;
    for (size_t k = 0; k < nb120; k++) {
        uint64_t idx = block_overhead(d, &b120[k]);
        a.bytes += chunk_file_bytes(&b120[k]) + idx;
        a.samples += b120[k].samples;
        ai.bytes += idx;
        ai.samples += b120[k].samples;
        for (size_t i = 0; i < b120[k].np; i++)
            chunks120 += b120[k].p[i].ncm;
    }
    for (size_t k = 0; k < nb2; k++) {
        x2.bytes += chunk_file_bytes(&b2[k]) + block_overhead(d, &b2[k]);
        x2.samples += b2[k].samples;
    }
    for (size_t k = 0; k < nb6; k++) {
        x6.bytes += chunk_file_bytes(&b6[k]) + block_overhead(d, &b6[k]);
        x6.samples += b6[k].samples;
    }
    report(tag, "prom120", a, enc120);
    report(tag, "prom120-index-only", ai, 0);
    for (int w = 0; w < 2; w++) {
        struct block *bb = w ? b6 : b2;
        size_t nbb = w ? nb6 : nb2;
        struct tally v2 = {0, 0}, raw = {0, 0}, zz = {0, 0};
        for (size_t k = 0; k < nbb; k++) {
            uint64_t zi;
            raw.bytes += compact_index_bytes(d, &bb[k], &zi);
            zz.bytes += zi;
            v2.bytes += index_bytes(d, &bb[k]);
            v2.samples = raw.samples = zz.samples = v2.samples + bb[k].samples;
        }
        report(tag, w ? "v2index-only-6h" : "v2index-only-2h", v2, 0);
        report(tag, w ? "cidx-only-6h" : "cidx-only-2h", raw, 0);
        report(tag, w ? "zidx-only-6h" : "zidx-only-2h", zz, 0);
    }
    printf("# %s: %zu series, %" PRIu64 " samples, %" PRIu64
           " chunks (%.1f samples/chunk), %zu 2h blocks\n",
           tag, d->ns, d->samples, chunks120, (double)a.samples / (double)chunks120, nb120);
    report(tag, "xor-2h", x2, enc2);
    report(tag, "xor-6h", x6, enc6);

    /* (c) zstd per series over the prom120 chunk data, and over the 6 h chunk */
    static const int levels[] = {3, 9, 19};
    for (int li = 0; li < 3; li++) {
        struct tally z = {0, 0};
        t0 = mp_mono_ns();
        for (size_t k = 0; k < nb120; k++) {
            const struct block *bl = &b120[k];
            for (size_t i = 0; i < bl->np; i++) {
                uint8_t *out;
                size_t n = zcompress(bl->stream.data + bl->p[i].data_off, bl->p[i].data_len,
                                     levels[li], &out);
                z.bytes += n + uvlen(n) + 1 + 4;
                mp_free(out);
            }
            z.bytes += block_overhead(d, bl) + 8;
            z.samples += bl->samples;
        }
        char name[64];
        snprintf(name, sizeof name, "zstd%d-series", levels[li]);
        report(tag, name, z, mp_mono_ns() - t0);
    }
    {
        struct tally z = {0, 0};
        t0 = mp_mono_ns();
        for (size_t k = 0; k < nb6; k++) {
            const struct block *bl = &b6[k];
            for (size_t i = 0; i < bl->np; i++) {
                uint8_t *out;
                size_t n =
                    zcompress(bl->stream.data + bl->p[i].data_off, bl->p[i].data_len, 9, &out);
                z.bytes += n + uvlen(n) + 1 + 4;
                mp_free(out);
            }
            z.bytes += block_overhead(d, bl) + 8;
            z.samples += bl->samples;
        }
        report(tag, "zstd9-series-6h", z, mp_mono_ns() - t0);
    }

    /* (d) zstd over the chunk stream in frames */
    static const struct {
        size_t size;
        int level;
        const char *name;
    } fr[] = {{64u << 10, 3, "zstd3-frame64k"},
              {64u << 10, 9, "zstd9-frame64k"},
              {1u << 20, 3, "zstd3-frame1m"},
              {1u << 20, 9, "zstd9-frame1m"},
              {1u << 20, 19, "zstd19-frame1m"}};
    for (size_t fi = 0; fi < sizeof fr / sizeof fr[0]; fi++) {
        struct tally z = {0, 0}, zc = {0, 0};
        t0 = mp_mono_ns();
        for (size_t k = 0; k < nb120; k++) {
            struct frames f;
            const struct block *bl = &b120[k];
            uint64_t cb = make_frames((const uint8_t *)bl->stream.data, bl->stream.len,
                                      fr[fi].size, fr[fi].level, &f);
            uint64_t zi;
            (void)compact_index_bytes(d, bl, &zi);
            z.bytes += cb + block_overhead(d, bl) + 8;
            z.samples += bl->samples;
            zc.bytes += cb + zi + META_BYTES + TOMB_BYTES + 8;
            zc.samples += bl->samples;
            if (decode && k == nb120 / 2 && bl->np > 0 && (fi == 1 || fi == 3)) {
                struct dec_ctx c = {.kind = DEC_FRAMES, .bl = bl, .fr = &f};
                bench_decode(bo, fr[fi].name, &c);
            }
            frames_free(&f);
        }
        report(tag, fr[fi].name, z, mp_mono_ns() - t0);
        char name[96];
        snprintf(name, sizeof name, "%s+zidx", fr[fi].name);
        report(tag, name, zc, 0);
    }
    {
        /* 6 h single chunks in 1 MiB frames */
        struct tally z = {0, 0};
        t0 = mp_mono_ns();
        for (size_t k = 0; k < nb6; k++) {
            struct frames f;
            const struct block *bl = &b6[k];
            z.bytes +=
                make_frames((const uint8_t *)bl->stream.data, bl->stream.len, 1u << 20, 9, &f) +
                block_overhead(d, bl) + 8;
            z.samples += bl->samples;
            frames_free(&f);
        }
        report(tag, "zstd9-frame1m-6h", z, mp_mono_ns() - t0);
    }

    /* (e1) a dictionary per block */
    {
        struct tally z = {0, 0};
        t0 = mp_mono_ns();
        for (size_t k = 0; k < nb120; k++) {
            const struct block *bl = &b120[k];
            if (bl->np == 0)
                continue;
            size_t *sizes = mp_xmalloc(bl->np * sizeof *sizes);
            for (size_t i = 0; i < bl->np; i++)
                sizes[i] = bl->p[i].data_len;
            size_t dcap = 32u << 10;
            uint8_t *dict = mp_xmalloc(dcap);
            size_t dlen =
                ZDICT_trainFromBuffer(dict, dcap, bl->stream.data, sizes, (unsigned)bl->np);
            if (ZDICT_isError(dlen))
                dlen = 0;
            ZSTD_CDict *cd = ZSTD_createCDict(dict, dlen, 9);
            ZSTD_CCtx *cc = ZSTD_createCCtx();
            uint8_t **comp = mp_xcalloc(bl->np, sizeof *comp);
            size_t *clen = mp_xcalloc(bl->np, sizeof *clen);
            for (size_t i = 0; i < bl->np; i++) {
                size_t cap = ZSTD_compressBound(bl->p[i].data_len);
                comp[i] = mp_xmalloc(cap);
                clen[i] = ZSTD_compress_usingCDict(
                    cc, comp[i], cap, bl->stream.data + bl->p[i].data_off, bl->p[i].data_len, cd);
                if (ZSTD_isError(clen[i]))
                    abort();
                z.bytes += clen[i] + uvlen(clen[i]) + 1 + 4;
            }
            z.bytes += dlen + block_overhead(d, bl) + 8;
            z.samples += bl->samples;
            if (decode && k == nb120 / 2) {
                struct dec_ctx c = {.kind = DEC_DICT, .bl = bl, .comp = comp, .clen = clen};
                c.ddict = ZSTD_createDDict(dict, dlen);
                bench_decode(bo, "zdict9-series", &c);
                ZSTD_freeDDict(c.ddict);
                struct dec_ctx c2 = {.kind = DEC_SERIES, .bl = bl};
                /* plain per-series zstd for comparison */
                c2.comp = mp_xcalloc(bl->np, sizeof *c2.comp);
                c2.clen = mp_xcalloc(bl->np, sizeof *c2.clen);
                for (size_t i = 0; i < bl->np; i++)
                    c2.clen[i] = zcompress(bl->stream.data + bl->p[i].data_off, bl->p[i].data_len,
                                           9, &c2.comp[i]);
                bench_decode(bo, "zstd9-series", &c2);
                for (size_t i = 0; i < bl->np; i++)
                    mp_free(c2.comp[i]);
                mp_free(c2.comp);
                mp_free(c2.clen);
                struct dec_ctx c3 = {.kind = DEC_RAW, .bl = bl};
                bench_decode(bo, "prom120-raw", &c3);
                struct dec_ctx c4 = {.kind = DEC_ITER, .bl = bl};
                bench_decode(bo, "prom120-iterate", &c4);
            }
            for (size_t i = 0; i < bl->np; i++)
                mp_free(comp[i]);
            mp_free(comp);
            mp_free(clen);
            ZSTD_freeCCtx(cc);
            ZSTD_freeCDict(cd);
            mp_free(dict);
            mp_free(sizes);
        }
        report(tag, "zdict9-series", z, mp_mono_ns() - t0);
    }

    /* (e2) the same metric's series together (by name, le, rest) in 1 MiB frames */
    {
        struct tally z = {0, 0};
        t0 = mp_mono_ns();
        for (size_t k = 0; k < nb120; k++) {
            const struct block *bl = &b120[k];
            size_t *ord = mp_xmalloc((bl->np + 1) * sizeof *ord);
            for (size_t i = 0; i < bl->np; i++)
                ord[i] = i;
            group_ctx = d;
            group_bl = bl;
            qsort(ord, bl->np, sizeof *ord, cmp_group);
            struct mp_buf s;
            mp_buf_init(&s, 0);
            for (size_t i = 0; i < bl->np; i++)
                if (mp_buf_append(&s, bl->stream.data + bl->p[ord[i]].data_off,
                                  bl->p[ord[i]].data_len) != 0)
                    abort();
            struct frames f;
            z.bytes += make_frames((const uint8_t *)s.data, s.len, 1u << 20, 9, &f) +
                       block_overhead(d, bl) + 8;
            z.samples += bl->samples;
            frames_free(&f);
            mp_buf_fini(&s);
            mp_free(ord);
        }
        report(tag, "metric-grouped-zstd9-frame1m", z, mp_mono_ns() - t0);
    }

    /* (e3) columnar: shared timestamps per target, value columns, zstd frames */
    static const struct {
        int64_t range;
        int level;
        size_t frame;
        const char *name;
    } cols[] = {{H2, 9, 1u << 20, "columnar-zstd9-frame1m"},
                {H2, 9, 64u << 10, "columnar-zstd9-frame64k"},
                {H2, 19, 1u << 20, "columnar-zstd19-frame1m"},
                {3 * H2, 9, 1u << 20, "columnar-zstd9-frame1m-6h"}};
    for (size_t ci = 0; ci < sizeof cols / sizeof cols[0]; ci++) {
        struct block *bb = cols[ci].range == H2 ? b2 : b6;
        size_t nbb = cols[ci].range == H2 ? nb2 : nb6;
        struct tally z = {0, 0}, zc = {0, 0};
        t0 = mp_mono_ns();
        for (size_t k = 0; k < nbb; k++) {
            struct columnar c;
            columnar_build(d, &bb[k], &c);
            struct frames f;
            uint64_t cb = make_frames((const uint8_t *)c.raw.data, c.raw.len, cols[ci].frame,
                                      cols[ci].level, &f);
            uint64_t zi;
            (void)compact_index_bytes(d, &bb[k], &zi);
            z.bytes += cb + block_overhead(d, &bb[k]) + 8;
            z.samples += bb[k].samples;
            zc.bytes += cb + zi + META_BYTES + TOMB_BYTES + 8;
            zc.samples += bb[k].samples;
            if (decode && ci <= 1 && k == nbb / 2 && bb[k].np > 0) {
                struct dec_ctx dc = {.kind = DEC_COLUMNAR, .bl = &bb[k], .fr = &f, .col = &c};
                bench_decode(bo, cols[ci].name, &dc);
            }
            frames_free(&f);
            columnar_free(&c, d->npods);
        }
        report(tag, cols[ci].name, z, mp_mono_ns() - t0);
        char name[96];
        snprintf(name, sizeof name, "%s+zidx", cols[ci].name);
        report(tag, name, zc, 0);
    }
    blocks_free(b120, nb120);
    blocks_free(b2, nb2);
    blocks_free(b6, nb6);
}

/* ---- generator self-check (runs with --smoke, so ctest guards meshgen) ---------------- */

static bool name_ends(const struct meshsim_gen_sample *m, const char *suffix)
{
    size_t n = strlen(suffix);
    return m->labels[1].len >= n && !memcmp(m->labels[1].ptr + m->labels[1].len - n, suffix, n);
}

/* Same seed -> same samples; jitter changes timestamps (and uptime) only (0 or 2..J ms late);
 * counters never decrease; each histogram's buckets are non-decreasing and +Inf equals _count. */
static void self_check(struct meshsim_gen_opts o, int64_t jitter)
{
    struct meshsim_gen *a, *b;
    o.jitter_ms = 0;
    struct meshsim_gen_opts ob = o;
    ob.jitter_ms = jitter;
    if (meshsim_gen_create(&o, &a, NULL) != 0 || meshsim_gen_create(&ob, &b, NULL) != 0)
        abort();
    double *last = NULL;
    size_t cap = 0;
    struct meshsim_gen_scrape x, y;
    uint64_t late = 0, scrapes = 0;
    int ra, rb;
    while ((ra = meshsim_gen_next(a, &x)) == 0) {
        rb = meshsim_gen_next(b, &y);
        if (rb != 0 || x.n != y.n || !mp_str_eq(x.pod, y.pod)) {
            fprintf(stderr, "self-check: scrape %" PRIu64 " differs between jitter modes\n",
                    scrapes);
            exit(1);
        }
        int64_t dt = y.t_ms - x.t_ms;
        if (dt != 0 && (dt < 2 || dt > jitter)) {
            fprintf(stderr, "self-check: jitter %" PRId64 " ms outside 0 or [2, %" PRId64 "]\n", dt,
                    jitter);
            exit(1);
        }
        late += dt != 0;
        scrapes++;
        for (size_t i = 0; i < x.n; i++) {
            const struct meshsim_gen_sample *m = &x.samples[i];
            /* uptime is rendered from the scrape's own clock, so it may differ */
            bool clock = name_ends(m, "uptime_seconds_total");
            if (m->series_id != y.samples[i].series_id ||
                (!clock && memcmp(&m->value, &y.samples[i].value, sizeof m->value) != 0)) {
                fprintf(stderr, "self-check: values depend on jitter\n");
                exit(1);
            }
            while (m->series_id >= cap) {
                size_t nc = cap ? cap * 2 : 4096;
                last = mp_xrealloc(last, nc * sizeof *last);
                for (size_t k = cap; k < nc; k++)
                    last[k] = -1;
                cap = nc;
            }
            bool counter = name_ends(m, "_total") || name_ends(m, "_bucket") ||
                           name_ends(m, "_count") || name_ends(m, "_sum");
            if (counter && m->value < last[m->series_id]) {
                fprintf(stderr, "self-check: counter %.*s decreased\n", (int)m->labels[1].len,
                        m->labels[1].ptr);
                exit(1);
            }
            last[m->series_id] = m->value;
            if (name_ends(m, "_bucket") && i + 26 < x.n &&
                name_ends(&x.samples[i + 26], "_count") &&
                (i == 0 || !name_ends(&x.samples[i - 1], "_bucket"))) {
                for (size_t k = 1; k < 26; k++)
                    if (x.samples[i + k].value < x.samples[i + k - 1].value) {
                        fprintf(stderr, "self-check: buckets decrease\n");
                        exit(1);
                    }
                if (x.samples[i + 25].value != x.samples[i + 26].value) {
                    fprintf(stderr, "self-check: +Inf bucket != _count\n");
                    exit(1);
                }
            }
        }
    }
    if (ra != MP_EEOF || meshsim_gen_next(b, &y) != MP_EEOF) {
        fprintf(stderr, "self-check: streams end differently\n");
        exit(1);
    }
    if (jitter >= 2 && (late == 0 || late > scrapes / 4)) {
        fprintf(stderr, "self-check: %" PRIu64 " of %" PRIu64 " scrapes late, want about 1/8\n",
                late, scrapes);
        exit(1);
    }
    printf("# self-check: %" PRIu64 " scrapes, %" PRIu64 " late with jitter: ok\n", scrapes, late);
    mp_free(last);
    meshsim_gen_destroy(a);
    meshsim_gen_destroy(b);
}

/* ---- main ----------------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: bench_tsdb_disk [--smoke] [--hours H] [--namespaces N] "
                    "[--deployments M] [--replicas R] [--peers K] [--seed S] [--churn F] "
                    "[--churn-every-min T] [--jitter-ms J] [--no-promtool] [--promtool-jitter] "
                    "[--workdir DIR] [--meshprom-only]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct bench_opts bo = {false, NULL};
    struct meshsim_gen_opts o;
    meshsim_gen_opts_init(&o);
    o.deployments = 3;
    o.peers = 1;
    double hours = 6;
    int64_t jitter = 5;
    bool promtool = true, promtool_jitter = false, only_meshprom = false;
    const char *workdir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--smoke"))
            bo.smoke = true;
        else if (!strcmp(a, "--no-promtool"))
            promtool = false;
        else if (!strcmp(a, "--promtool-jitter"))
            promtool_jitter = true;
        else if (!strcmp(a, "--meshprom-only"))
            only_meshprom = true;
        else if (!v)
            usage();
        else if (!strcmp(a, "--hours"))
            hours = atof(v), i++;
        else if (!strcmp(a, "--namespaces"))
            o.namespaces = atoi(v), i++;
        else if (!strcmp(a, "--deployments"))
            o.deployments = atoi(v), i++;
        else if (!strcmp(a, "--replicas"))
            o.replicas = atoi(v), i++;
        else if (!strcmp(a, "--peers"))
            o.peers = atoi(v), i++;
        else if (!strcmp(a, "--seed"))
            o.seed = strtoull(v, NULL, 0), i++;
        else if (!strcmp(a, "--churn"))
            o.churn = atof(v), i++;
        else if (!strcmp(a, "--churn-every-min"))
            o.churn_every_ms = (int64_t)(atof(v) * 60000), i++;
        else if (!strcmp(a, "--jitter-ms"))
            jitter = atoll(v), i++;
        else if (!strcmp(a, "--workdir"))
            workdir = v, i++;
        else if (!strcmp(a, "--level"))
            zlevel = atoi(v), i++;
        else
            usage();
    }
    if (bo.smoke) {
        hours = 0.5;
        o.deployments = 2;
        o.replicas = 1;
    }
    o.duration_ms = (int64_t)(hours * 3600000);
    bench_header();
    if (bo.smoke) {
        struct meshsim_gen_opts c = o;
        c.churn = 0.5;
        c.churn_every_ms = 5 * 60000;
        c.replicas = 2;
        c.deployments = 4;
        self_check(c, jitter);
    }
    printf("# mesh: namespaces=%d deployments=%d replicas=%d peers=%d hours=%.2f seed=%" PRIu64
           " churn=%.2f/%" PRId64 "min\n",
           o.namespaces, o.deployments, o.replicas, o.peers, hours, o.seed, o.churn,
           o.churn_every_ms / 60000);
    bool pt = promtool && have_promtool();
    if (!pt)
        printf("# promtool: %s, Prometheus comparison skipped\n",
               promtool ? "not on PATH" : "disabled");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/bench-tsdb-disk-XXXXXX", workdir);
    if (!mkdtemp(dir)) {
        perror(dir);
        return 2;
    }
    for (int pass = 0; pass < 2; pass++) {
        o.jitter_ms = pass == 0 ? 0 : jitter;
        char tag[32], om[600], out[600];
        snprintf(tag, sizeof tag, pass == 0 ? "exact" : "jitter%" PRId64 "ms", jitter);
        snprintf(om, sizeof om, "%s/mesh.om", dir);
        snprintf(out, sizeof out, "%s/prom", dir);
        struct data d;
        int64_t t0 = mp_mono_ns();
        bool run_pt = pt && (pass == 0 || promtool_jitter);
        collect(&o, &d, run_pt ? om : NULL);
        printf("# %s: generated %" PRIu64 " samples of %zu series from %d pods in %.1f s\n", tag,
               d.samples, d.ns, d.npods, (double)(mp_mono_ns() - t0) / 1e9);
        last_prometheus = last_meshprom = 0;
        if (run_pt) {
            run_promtool(om, out, tag, d.samples, "");
            unlink(om);
        }
        /* Linkerd's viz Prometheus keeps 6 h: its blocks stay 2 h (tsdb.md 4.6); with the default
         * 15 d they merge into 6 h blocks. The ratio is taken on the second. */
        run_meshprom(&o, dir, tag, 6 * 3600000);
        run_meshprom(&o, dir, tag, 15 * 24 * 3600000LL);
        if (run_pt) {
            if (last_prometheus > 0 && last_meshprom > 0)
                printf("BenchmarkDisk/%s/meshprom-vs-prometheus\t1\t%8.4f ratio\n", tag,
                       last_meshprom / last_prometheus);
        }
        if (!only_meshprom)
            run_schemes(&bo, &d, tag, pass == 0);
        data_fini(&d);
    }
    rmrf(dir);
    return 0;
}
