/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/compact.c: writing blocks and deciding when (spec tsdb.md 2.6, 4.6, 4.8).
 *
 * Every block is written the same way, whatever its sources: a querier over them (head only for
 * head compaction; some blocks for a merge) yields label-sorted series with disjoint chunks and
 * deletions applied; chunks are cut to the block's range, written to chunks/, indexed, and the
 * directory <ULID>.tmp-for-creation is renamed to <ULID> once every file is fsynced. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/matcher.h"
#include "common/time.h"
#include "tsdb/chunk_xor.h"
#include "tsdb/db.h"
#include "tsdb/fileutil.h"
#include "tsdb/postings.h"

/* Re-encodes the samples of c inside [mint, maxt] into one new chunk held by *keep.
 * Returns 0 with *keep NULL if none is inside. */
static int trim_chunk(const struct tsdb_chunk *c, int64_t mint, int64_t maxt,
                      struct tsdb_xor **keep, struct mp_err *err)
{
    *keep = NULL;
    struct tsdb_xor_iter it;
    tsdb_xor_iter_init(&it, c->data, c->len);
    int64_t t;
    double v;
    int rc;
    while ((rc = tsdb_xor_iter_next(&it, &t, &v)) == 0) {
        if (t < mint || t > maxt)
            continue;
        if (!*keep && (rc = tsdb_xor_create(keep)))
            break;
        if ((rc = tsdb_xor_append(*keep, t, v)))
            break;
    }
    if (rc == MP_EEOF)
        return 0;
    tsdb_xor_destroy(*keep);
    *keep = NULL;
    if (rc == MP_EPARSE)
        return tsdb_xor_iter_error(&it, err);
    return mp_err_set(err, rc, "trimming a chunk");
}

struct writer {
    struct tsdb_chunks_writer *cw;   /* Prometheus segments, or */
    struct tsdb_zchunks_writer *zw;  /* compressed ones */
    struct tsdb_index_writer *iw;
    struct tsdb_chunk *chunks;
    struct tsdb_index_chunk_meta *metas;
    struct tsdb_xor **owned;
    uint64_t *refs;
    size_t cap;
};

static void writer_reserve(struct writer *w, size_t n)
{
    if (n <= w->cap)
        return;
    w->cap = n * 2;
    w->chunks = mp_xrealloc(w->chunks, w->cap * sizeof *w->chunks);
    w->metas = mp_xrealloc(w->metas, w->cap * sizeof *w->metas);
    w->owned = mp_xrealloc(w->owned, w->cap * sizeof *w->owned);
    w->refs = mp_xrealloc(w->refs, w->cap * sizeof *w->refs);
}

/* Compressed blocks keep a series' samples in few large chunks: every chunk costs a header,
 * a raw first sample, a CRC and an index entry (~25 bytes, 0.2 B/sample at 120 samples), and
 * a block is read whole series at a time anyway. Prometheus-format blocks keep its chunks. */
#define RECHUNK_MAX_SAMPLES 4096u

/* Re-encodes the samples of in[0..n) inside [mint, maxt] into chunks of up to
 * RECHUNK_MAX_SAMPLES, owned by w (w->owned), listed in w->chunks; *k gets the count. */
static int rechunk(struct writer *w, const struct tsdb_chunk *in, size_t n, int64_t mint,
                   int64_t maxt, size_t *k, struct mp_err *err)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        struct tsdb_xor_iter it;
        tsdb_xor_iter_init(&it, in[i].data, in[i].len);
        total += tsdb_xor_iter_num_samples(&it);
    }
    writer_reserve(w, total / RECHUNK_MAX_SAMPLES + 2);
    struct tsdb_xor *cur = NULL;
    int rc = 0;
    *k = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (in[i].maxt_ms < mint || in[i].mint_ms > maxt)
            continue;
        struct tsdb_xor_iter it;
        tsdb_xor_iter_init(&it, in[i].data, in[i].len);
        int64_t t;
        double v;
        while (!rc && (rc = tsdb_xor_iter_next(&it, &t, &v)) == 0) {
            if (t < mint || t > maxt)
                continue;
            if (cur && tsdb_xor_num_samples(cur) >= RECHUNK_MAX_SAMPLES) {
                w->owned[(*k)++] = cur;
                cur = NULL;
            }
            if (!cur && (rc = tsdb_xor_create(&cur)))
                break;
            rc = tsdb_xor_append(cur, t, v);
        }
        if (rc == MP_EEOF)
            rc = 0;
        else if (rc == MP_EPARSE)
            rc = tsdb_xor_iter_error(&it, err);
    }
    if (cur)
        w->owned[(*k)++] = cur;
    for (size_t i = 0; i < *k; i++) {
        struct tsdb_chunk c = {tsdb_xor_min_time(w->owned[i]), tsdb_xor_max_time(w->owned[i]),
                               TSDB_ENC_XOR, NULL, 0};
        c.data = tsdb_xor_bytes(w->owned[i], &c.len);
        w->chunks[i] = c;
    }
    if (rc && rc != MP_EPARSE)
        mp_err_set(err, rc, "re-encoding chunks");
    return rc;
}

/* One series: its chunks inside [mint, maxt] go to the chunk files, then the index. */
static int write_series(struct writer *w, const struct mp_labels *ls, const struct tsdb_chunk *in,
                        size_t n, int64_t mint, int64_t maxt, struct tsdb_meta *meta,
                        struct mp_err *err)
{
    writer_reserve(w, n);
    size_t k = 0;
    int rc = 0;
    if (w->zw)
        rc = rechunk(w, in, n, mint, maxt, &k, err);
    for (size_t i = 0; !w->zw && i < n && !rc; i++) {
        const struct tsdb_chunk *c = &in[i];
        if (c->maxt_ms < mint || c->mint_ms > maxt)
            continue;
        w->owned[k] = NULL;
        if (c->mint_ms < mint || c->maxt_ms > maxt) {
            rc = trim_chunk(c, mint, maxt, &w->owned[k], err);
            if (rc || !w->owned[k])
                continue;
            struct tsdb_chunk t = {tsdb_xor_min_time(w->owned[k]),
                                   tsdb_xor_max_time(w->owned[k]), TSDB_ENC_XOR, NULL, 0};
            t.data = tsdb_xor_bytes(w->owned[k], &t.len);
            w->chunks[k] = t;
        } else {
            w->chunks[k] = *c;
        }
        k++;
    }
    if (!rc && k) {
        rc = w->zw ? tsdb_zchunks_writer_write(w->zw, w->chunks, k, w->refs, err)
                   : tsdb_chunks_writer_write(w->cw, w->chunks, k, w->refs, err);
        for (size_t i = 0; i < k && !rc; i++) {
            w->metas[i] = (struct tsdb_index_chunk_meta){w->chunks[i].mint_ms,
                                                         w->chunks[i].maxt_ms, w->refs[i]};
            struct tsdb_xor_iter it;
            tsdb_xor_iter_init(&it, w->chunks[i].data, w->chunks[i].len);
            meta->stats.num_samples += tsdb_xor_iter_num_samples(&it);
        }
        if (!rc)
            rc = tsdb_index_writer_add_series_ls(w->iw, ls, w->metas, k, NULL, err);
        if (!rc) {
            meta->stats.num_series++;
            meta->stats.num_chunks += k;
        }
    }
    for (size_t i = 0; i < k; i++)
        tsdb_xor_destroy(w->owned[i]);
    return rc;
}

static void writer_fini(struct writer *w)
{
    mp_free(w->chunks);
    mp_free(w->metas);
    mp_free(w->owned);
    mp_free(w->refs);
}

static int fsync_dir(const char *dir, struct mp_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return mp_err_set(err, MP_EIO, "opening %s: %s", dir, strerror(errno));
    int rc = fsync(fd) == 0 ? 0 : mp_err_set(err, MP_EIO, "fsync %s: %s", dir, strerror(errno));
    close(fd);
    return rc;
}

int tsdb_block_write(struct tsdb *db, const char *parent, struct tsdb_querier *q, int64_t mint_ms,
                     int64_t maxt_ms, struct tsdb_meta *meta, bool *written, struct mp_err *err)
{
    *written = false;
    int rc = tsdb_ulid_generate(mp_now_ms(), &meta->ulid, err);
    if (rc)
        return rc;
    char ulid[TSDB_ULID_LEN + 1];
    tsdb_ulid_format(&meta->ulid, ulid);
    if (meta->compaction.level <= 1 && meta->compaction.nsources == 0) {
        meta->compaction.level = 1;
        rc = tsdb_meta_add_source(meta, &meta->ulid);
        if (rc)
            return mp_err_set(err, rc, "block meta");
    }
    char tmp[4096], final[4096], path[4200];
    tsdb_pathf(final, sizeof final, "%s/%s", parent, ulid);
    tsdb_pathf(tmp, sizeof tmp, "%s.tmp-for-creation", final);
    if (mkdir(tmp, 0777) != 0)
        return mp_err_set(err, MP_EIO, "mkdir %s: %s", tmp, strerror(errno));

    struct writer w = {0};
    const struct mp_str *syms = NULL;
    size_t nsyms = 0;
    struct tsdb_series_set *set = NULL;
    tsdb_pathf(path, sizeof path, "%s/chunks", tmp);
    if (db->o.block_compression_level > 0) {
        struct tsdb_zchunks_writer_options zo;
        tsdb_zchunks_writer_options_init(&zo);
        zo.level = db->o.block_compression_level;
        rc = tsdb_zchunks_writer_open(path, &zo, &w.zw, err);
    } else {
        rc = tsdb_chunks_writer_open(path, NULL, &w.cw, err);
    }
    if (!rc) {
        tsdb_pathf(path, sizeof path, "%s/index", tmp);
        rc = db->o.block_compression_level > 0
                 ? tsdb_index_writer_open_compact(path, db->o.block_compression_level, &w.iw, err)
                 : tsdb_index_writer_open(path, &w.iw, err);
    }
    if (!rc)
        rc = tsdb_querier_symbols(q, &syms, &nsyms, err);
    if (!rc)
        rc = tsdb_index_writer_add_symbols(w.iw, syms, nsyms, err);
    if (!rc)
        rc = tsdb_querier_select_all(q, &set, err);
    meta->min_time = mint_ms;
    meta->max_time = maxt_ms;
    while (!rc && (rc = tsdb_series_set_next(set, err)) == 0) {
        const struct tsdb_chunk *c;
        size_t n;
        rc = tsdb_series_set_chunks(set, &c, &n, err);
        if (!rc)
            rc = write_series(&w, tsdb_series_set_labels(set), c, n, mint_ms, maxt_ms - 1, meta,
                              err);
    }
    if (rc == MP_EEOF)
        rc = 0;
    tsdb_series_set_free(set);
    mp_free((void *)syms);
    int rc2 = w.zw ? tsdb_zchunks_writer_close(w.zw, rc ? NULL : err)
                   : tsdb_chunks_writer_close(w.cw, rc ? NULL : err);
    if (!rc)
        rc = rc2;
    if (!rc) {
        rc = tsdb_index_writer_close(w.iw, err);
    } else {
        tsdb_index_writer_abort(w.iw);
    }
    writer_fini(&w);
    if (!rc && meta->stats.num_series == 0) {
        /* nothing in range: no block, as Prometheus (an empty head range) */
        (void)!tsdb_remove_all(tmp, NULL);
        return 0;
    }
    meta->stats.num_float_samples = meta->stats.num_samples;
    if (!rc) {
        struct tsdb_tombstones *none = tsdb_tombstones_create();
        rc = tsdb_tombstones_write(tmp, none, NULL, err);
        tsdb_tombstones_destroy(none);
    }
    if (!rc)
        rc = tsdb_meta_write(tmp, meta, err);
    if (!rc)
        rc = fsync_dir(tmp, err);
    if (!rc && rename(tmp, final) != 0)
        rc = mp_err_set(err, MP_EIO, "renaming %s: %s", tmp, strerror(errno));
    if (!rc)
        rc = fsync_dir(parent, err);
    if (rc) {
        (void)!tsdb_remove_all(tmp, NULL);
        return mp_err_wrap(err, "writing block %s", ulid);
    }
    *written = true;
    return 0;
}

int tsdb_block_persist(struct tsdb *db, struct tsdb_querier *q, int64_t mint_ms, int64_t maxt_ms,
                       struct tsdb_meta *meta, bool *written, struct mp_err *err)
{
    int rc = tsdb_block_write(db, db->dir, q, mint_ms, maxt_ms, meta, written, err);
    if (rc || !*written)
        return rc;
    char dir[4200], ulid[TSDB_ULID_LEN + 1];
    tsdb_ulid_format(&meta->ulid, ulid);
    tsdb_pathf(dir, sizeof dir, "%s/%s", db->dir, ulid);
    return tsdb_db_add_block(db, dir, err);
}

static int u64_cmp(const void *pa, const void *pb)
{
    uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
    return a < b ? -1 : a > b;
}

/* ---- head compaction ----------------------------------------------------------------------- */

static bool head_compactable(struct tsdb *db)
{
    int64_t mint = tsdb_head_min_time(db->head), maxt = tsdb_head_max_time(db->head);
    if (mint == INT64_MAX || maxt == INT64_MIN)
        return false;
    return maxt - mint > db->o.min_block_ms / 2 * 3;
}

static bool keep_series(void *ctx, uint64_t ref)
{
    struct tsdb *db = ctx;
    return tsdb_head_series_exists(db->head, ref);
}

/* After the head lost everything before mint: checkpoint the WAL segments written so far, keeping
 * the records still needed (tsdb.md 3.4). */
static int truncate_wal(struct tsdb *db, int64_t mint, struct mp_err *err)
{
    if (!db->wal)
        return 0;
    int first, last, cur;
    int rc = tsdb_wal_next_segment(db->wal, &cur, err);
    if (!rc)
        rc = tsdb_wal_segments(db->wal_dir, &first, &last, err);
    if (rc)
        return rc;
    /* Prometheus checkpoints the first two thirds of the segments; with a new segment just
     * cut, every older segment is complete: take two thirds of them, at least one. */
    if (first < 0 || cur - 1 < first)
        return 0;
    int upto = first + (cur - first) * 2 / 3;
    if (upto < first)
        upto = first;
    if (upto > cur - 1)
        upto = cur - 1;
    struct tsdb_wal_checkpoint_stats st;
    rc = tsdb_wal_checkpoint(db->wal_dir, first, upto, keep_series, db, mint, &st, err);
    if (rc) {
        atomic_fetch_add(&db->checkpoints_failed, 1);
        return rc;
    }
    atomic_fetch_add(&db->checkpoints, 1);
    return 0;
}

static int compact_head_once(struct tsdb *db, struct mp_err *err)
{
    int64_t mint = tsdb_head_min_time(db->head);
    int64_t maxt = tsdb_range_for_timestamp(mint, db->o.min_block_ms);
    /* Nothing may enter [mint, maxt) any more; wait out appenders that could still. */
    tsdb_head_set_min_valid_time(db->head, maxt);
    tsdb_head_wait_appenders(db->head);
    struct tsdb_querier *q;
    int rc = tsdb_querier_open_sources(db, NULL, 0, true, false, mint, maxt - 1, &q, err);
    if (rc)
        return rc;
    struct tsdb_meta meta;
    tsdb_meta_init(&meta);
    bool written = false;
    rc = tsdb_block_persist(db, q, mint, maxt, &meta, &written, err);
    tsdb_querier_close(q);
    if (!rc && written) {
        char ulid[TSDB_ULID_LEN + 1];
        tsdb_ulid_format(&meta.ulid, ulid);
        MP_LOG_INFO("write block", MP_KV_STR("ulid", ulid), MP_KV_I64("mint", mint),
                    MP_KV_I64("maxt", maxt), MP_KV_U64("series", meta.stats.num_series),
                    MP_KV_U64("samples", meta.stats.num_samples));
    }
    tsdb_meta_fini(&meta);
    if (rc) {
        atomic_fetch_add(&db->compactions_failed, 1);
        return rc;
    }
    atomic_fetch_add(&db->compactions, 1);
    pthread_rwlock_wrlock(&db->rw);
    rc = tsdb_head_truncate(db->head, maxt, err);
    tsdb_tombstones_truncate_before(db->head_tomb, maxt);
    pthread_rwlock_unlock(&db->rw);
    if (rc) {
        atomic_fetch_add(&db->head_truncations_failed, 1);
        return rc;
    }
    return truncate_wal(db, maxt, err);
}

/* ---- series that ended ------------------------------------------------------------------- */

/* A series whose last sample is a staleness marker older than this has ended (its target or the
 * series went away); one without any sample for ENDED_IDLE_MS has ended too. */
#define ENDED_STALE_MS (5 * 60000)
#define ENDED_IDLE_MS (60 * 60000)
/* Worth a block: at least this many ended series, or 1% of the head. */
#define ENDED_MIN_SERIES 1000

/* Persists the series that ended and removes them from the head, instead of keeping them there
 * for one to three more hours until the head block is cut (tsdb.md 2.7): under pod churn they
 * would outnumber the live series. Their data goes to blocks (one per 2 h window, hinted
 * TSDB_HINT_ENDED_SERIES) that the planner merges into the window's block once the head has
 * moved past it. Queries merge them with the head meanwhile. */
static int evict_ended(struct tsdb *db, struct mp_err *err)
{
    int64_t hmin = tsdb_head_min_time(db->head), hmax = tsdb_head_max_time(db->head);
    if (hmin == INT64_MAX || hmax == INT64_MIN)
        return 0;
    struct tsdb_head_ended *v;
    size_t n;
    int rc = tsdb_head_ended_series(db->head, hmax - ENDED_STALE_MS, hmax - ENDED_IDLE_MS, &v, &n);
    if (rc)
        return mp_err_set(err, rc, "listing ended series");
    uint64_t total = tsdb_head_num_series(db->head);
    if (n == 0 || (n < ENDED_MIN_SERIES && n * 100 < total)) {
        mp_free(v);
        return 0;
    }
    uint64_t *refs = mp_xmalloc(n * sizeof *refs);
    int64_t last = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        refs[i] = v[i].ref;
        if (v[i].last_t > last)
            last = v[i].last_t;
    }
    qsort(refs, n, sizeof *refs, u64_cmp);
    int64_t range = db->o.min_block_ms;
    for (int64_t w = tsdb_range_for_timestamp(hmin, range) - range; !rc && w <= last; w += range) {
        int64_t lo = w > hmin ? w : hmin, hi = w + range;
        if (hi > last + 1)
            hi = last + 1;
        struct tsdb_querier *q;
        rc = tsdb_querier_open_head_refs(db, refs, n, lo, hi - 1, &q, err);
        if (rc)
            break;
        struct tsdb_meta meta;
        tsdb_meta_init(&meta);
        bool written = false;
        rc = tsdb_meta_add_hint(&meta, TSDB_HINT_ENDED_SERIES);
        if (!rc)
            rc = tsdb_block_persist(db, q, lo, hi, &meta, &written, err);
        tsdb_querier_close(q);
        tsdb_meta_fini(&meta);
    }
    size_t removed = 0;
    if (!rc) {
        pthread_rwlock_wrlock(&db->rw);
        rc = tsdb_head_evict(db->head, v, n, &removed, err);
        pthread_rwlock_unlock(&db->rw);
        MP_LOG_INFO("persisted ended series", MP_KV_U64("series", removed),
                    MP_KV_U64("candidates", n));
    }
    mp_free(refs);
    mp_free(v);
    return rc;
}

/* ---- block compaction ---------------------------------------------------------------------- */

static int merge_blocks(struct tsdb *db, struct tsdb_block *const *g, size_t n, struct mp_err *err)
{
    int64_t mint = INT64_MAX, maxt = INT64_MIN;
    struct tsdb_meta meta;
    tsdb_meta_init(&meta);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const struct tsdb_meta *m = &g[i]->meta;
        if (m->min_time < mint)
            mint = m->min_time;
        if (m->max_time > maxt)
            maxt = m->max_time;
        if (m->compaction.level + 1 > meta.compaction.level)
            meta.compaction.level = m->compaction.level + 1;
        for (size_t k = 0; k < m->compaction.nsources && !rc; k++) {
            bool dup = false;
            for (size_t j = 0; j < meta.compaction.nsources; j++)
                dup |= tsdb_ulid_cmp(&meta.compaction.sources[j], &m->compaction.sources[k]) == 0;
            if (!dup)
                rc = tsdb_meta_add_source(&meta, &m->compaction.sources[k]);
        }
        struct tsdb_block_desc d = {m->ulid, m->min_time, m->max_time};
        if (!rc)
            rc = tsdb_meta_add_parent(&meta, &d);
    }
    struct tsdb_querier *q = NULL;
    if (!rc)
        rc = tsdb_querier_open_sources(db, g, n, false, false, mint, maxt - 1, &q, err);
    bool written = false;
    if (!rc)
        rc = tsdb_block_persist(db, q, mint, maxt, &meta, &written, err);
    tsdb_querier_close(q);
    char ulid[TSDB_ULID_LEN + 1];
    tsdb_ulid_format(&meta.ulid, ulid);
    if (!rc) {
        tsdb_db_drop_blocks(db, g, n);
        atomic_fetch_add(&db->compactions, 1);
        MP_LOG_INFO("compact blocks", MP_KV_U64("count", n), MP_KV_STR("ulid", written ? ulid : ""),
                    MP_KV_I64("mint", mint), MP_KV_I64("maxt", maxt));
    } else {
        atomic_fetch_add(&db->compactions_failed, 1);
    }
    tsdb_meta_fini(&meta);
    return rc;
}

/* The ranges of tsdb.md 4.6 above the smallest, up to max_block_ms. */
static size_t block_ranges(const struct tsdb *db, int64_t *r, size_t cap)
{
    size_t n = 0;
    int64_t x = db->o.min_block_ms;
    for (int i = 0; i < 10 && n < cap; i++) {
        if (x > db->o.max_block_ms)
            break;
        r[n++] = x;
        x *= 3;
    }
    return n;
}

/* Picks the next group to merge (tsdb.md 4.6 planner). Returns the count; g holds them. */
static size_t plan_in(struct tsdb *db, struct tsdb_block **bs, size_t n, struct tsdb_block **g);

static size_t plan(struct tsdb *db, struct tsdb_block *const *all, size_t nall,
                   struct tsdb_block **g)
{
    struct tsdb_block **bs = mp_xmalloc((nall ? nall : 1) * sizeof *bs);
    memcpy(bs, all, nall * sizeof *bs);
    size_t ng = plan_in(db, bs, nall, g);
    mp_free(bs);
    return ng;
}

/* bs is a scratch copy of the block list (sorted by min time). */
static size_t plan_in(struct tsdb *db, struct tsdb_block **bs, size_t n, struct tsdb_block **g)
{
    /* Blocks of ended series inside the head's range are merged only once the head has moved
     * past them (evict_ended): until then they would be rewritten every minute. */
    int64_t head_min = tsdb_head_min_time(db->head);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (!(bs[i]->meta.max_time > head_min && tsdb_block_is_ended_series(bs[i])))
            bs[kept++] = bs[i];
    n = kept;
    /* 1. overlapping blocks (bs sorted by min time) */
    for (size_t i = 0; i + 1 < n; i++) {
        int64_t end = bs[i]->meta.max_time;
        size_t j = i + 1;
        while (j < n && bs[j]->meta.min_time < end) {
            if (bs[j]->meta.max_time > end)
                end = bs[j]->meta.max_time;
            j++;
        }
        if (j > i + 1) {
            for (size_t k = i; k < j; k++)
                g[k - i] = bs[k];
            return j - i;
        }
    }
    /* 2. aligned groups, ignoring the newest block */
    if (n < 2)
        return 0;
    int64_t ranges[16];
    size_t nr = block_ranges(db, ranges, 16);
    size_t m = n - 1;
    int64_t newest_min = bs[n - 1]->meta.min_time;
    for (size_t ri = 1; ri < nr; ri++) {
        int64_t r = ranges[ri];
        size_t i = 0;
        while (i < m) {
            int64_t start = tsdb_range_for_timestamp(bs[i]->meta.min_time, r) - r;
            size_t j = i;
            while (j < m && bs[j]->meta.max_time <= start + r && bs[j]->meta.min_time >= start)
                j++;
            if (j == i) { /* a block wider than r or straddling: skip it */
                i++;
                continue;
            }
            int64_t span = bs[j - 1]->meta.max_time - bs[i]->meta.min_time;
            if (j - i > 1 && (span == r || start + r <= newest_min)) {
                for (size_t k = i; k < j; k++)
                    g[k - i] = bs[k];
                return j - i;
            }
            i = j;
        }
    }
    return 0;
}

/* ---- retention ---------------------------------------------------------------------------- */

/* WAL (segments and the latest checkpoint) plus chunks_head: the "head size" of tsdb.md 4.8. */
static uint64_t head_disk_bytes(struct tsdb *db)
{
    char p[4200];
    uint64_t total = tsdb_dir_bytes(db->wal_dir, false);
    int cp = -1;
    if (tsdb_wal_checkpoint_last(db->wal_dir, &cp, NULL) == 0 && cp >= 0) {
        tsdb_pathf(p, sizeof p, "%s/checkpoint.%08d", db->wal_dir, cp);
        total += tsdb_dir_bytes(p, false);
    }
    tsdb_pathf(p, sizeof p, "%s/chunks_head", db->dir);
    return total + tsdb_dir_bytes(p, false);
}

static void apply_retention(struct tsdb *db)
{
    size_t n;
    struct tsdb_block **bs = tsdb_db_blocks(db, &n);
    if (n == 0) {
        mp_free(bs);
        return;
    }
    /* newest first by max time */
    struct tsdb_block **drop = mp_xmalloc(n * sizeof *drop);
    size_t nd = 0;
    int64_t newest = INT64_MIN;
    for (size_t i = 0; i < n; i++)
        if (bs[i]->meta.max_time > newest)
            newest = bs[i]->meta.max_time;
    bool *gone = mp_xcalloc(n, sizeof *gone);
    if (db->o.retention_ms > 0) {
        for (size_t i = 0; i < n; i++) {
            if (bs[i]->meta.max_time != newest &&
                newest - bs[i]->meta.max_time >= db->o.retention_ms) {
                gone[i] = true;
                drop[nd++] = bs[i];
                atomic_fetch_add(&db->retention_time_deletions, 1);
            }
        }
    }
    if (db->o.retention_bytes > 0) {
        uint64_t total = head_disk_bytes(db);
        /* blocks are sorted by min time ascending: walk newest first */
        bool over = false;
        for (size_t k = n; k-- > 0;) {
            if (gone[k])
                continue;
            total += bs[k]->size_bytes;
            if (!over && total > db->o.retention_bytes)
                over = true;
            if (over) {
                gone[k] = true;
                drop[nd++] = bs[k];
                atomic_fetch_add(&db->retention_size_deletions, 1);
            }
        }
    }
    if (nd) {
        for (size_t i = 0; i < nd; i++)
            MP_LOG_INFO("deleting block beyond retention", MP_KV_STR("block", drop[i]->dir));
        tsdb_db_drop_blocks(db, drop, nd);
    }
    for (size_t i = 0; i < n; i++)
        tsdb_block_release(bs[i]);
    mp_free(gone);
    mp_free(drop);
    mp_free(bs);
}

int tsdb_compact_locked(struct tsdb *db, struct mp_err *err)
{
    int rc = 0;
    /* catch up after downtime: one 2 h block at a time, bounded */
    for (int i = 0; i < 10000 && !rc && head_compactable(db); i++)
        rc = compact_head_once(db, err);
    if (!rc)
        rc = evict_ended(db, err);
    for (int i = 0; i < 1000 && !rc; i++) {
        size_t n;
        struct tsdb_block **bs = tsdb_db_blocks(db, &n);
        struct tsdb_block **g = mp_xmalloc((n ? n : 1) * sizeof *g);
        size_t ng = plan(db, bs, n, g);
        if (ng)
            rc = merge_blocks(db, g, ng, err);
        for (size_t k = 0; k < n; k++)
            tsdb_block_release(bs[k]);
        mp_free(bs);
        mp_free(g);
        if (!ng || head_compactable(db))
            break;
    }
    apply_retention(db);
    return rc;
}

/* ---- after a restart ----------------------------------------------------------------------- */

/* Does block b hold the series ls with data up to at least last_t? */
static bool block_covers(struct tsdb_block *b, const struct mp_labels *ls, int64_t last_t)
{
    size_t n = mp_labels_count(ls);
    struct mp_matcher **m = mp_xcalloc(n, sizeof *m);
    bool found = false;
    size_t k = 0;
    for (; k < n; k++) {
        struct mp_label l = mp_labels_at(ls, k);
        if (mp_matcher_create(MP_MATCH_EQUAL, l.name, l.value, &m[k], NULL))
            break;
    }
    struct tsdb_plist refs = {0};
    struct tsdb_ireader ir = tsdb_index_reader_ireader(b->index);
    if (k == n &&
        tsdb_postings_for_matchers(&ir, (const struct mp_matcher *const *)m, n, &refs, NULL) == 0) {
        struct tsdb_index_series is = {0};
        for (size_t i = 0; i < refs.n && !found; i++)
            found = tsdb_index_reader_series(b->index, refs.refs[i], &is, NULL) == 0 &&
                    is.nlabels == n && is.nchunks > 0 &&
                    is.chunks[is.nchunks - 1].maxt_ms >= last_t;
        tsdb_index_series_fini(&is);
    }
    tsdb_plist_fini(&refs);
    for (size_t i = 0; i < k; i++)
        mp_matcher_destroy(m[i]);
    mp_free(m);
    return found;
}

int tsdb_drop_replayed_ended(struct tsdb *db, struct mp_err *err)
{
    size_t nb;
    struct tsdb_block **bs = tsdb_db_blocks(db, &nb);
    size_t ne = 0;
    for (size_t i = 0; i < nb; i++)
        ne += tsdb_block_is_ended_series(bs[i]);
    int rc = 0;
    struct tsdb_head_ended *v = NULL;
    size_t n = 0;
    if (ne)
        rc = tsdb_head_ended_series(db->head, INT64_MAX, INT64_MIN, &v, &n);
    size_t k = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        struct mp_labels *ls;
        if (tsdb_head_series_labels(db->head, v[i].ref, &ls, NULL))
            continue;
        bool covered = false;
        for (size_t j = 0; j < nb && !covered; j++)
            covered = tsdb_block_is_ended_series(bs[j]) && bs[j]->meta.max_time > v[i].last_t &&
                      block_covers(bs[j], ls, v[i].last_t);
        mp_labels_release(ls);
        if (covered)
            v[k++] = v[i];
    }
    size_t removed = 0;
    if (!rc && k)
        rc = tsdb_head_evict(db->head, v, k, &removed, err);
    if (removed)
        MP_LOG_INFO("dropped replayed copies of persisted ended series",
                    MP_KV_U64("series", removed));
    mp_free(v);
    for (size_t i = 0; i < nb; i++)
        tsdb_block_release(bs[i]);
    mp_free(bs);
    return rc;
}
