/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/backfill.c: one block from samples of one time window (tsdb.h "Tools"), as Prometheus's
 * tsdb.BlockWriter for promtool's backfill: samples enter an in-memory head (no WAL, full chunks
 * stay on the heap) in batches, then the ordinary block writer (compact.c) persists it through a
 * querier over that head. The querier and the block writer need a struct tsdb only for its head
 * and head tombstones, so the builder carries a minimal one (no blocks, no locks taken). */
#include "common/alloc.h"
#include "tsdb/db.h"

struct tsdb_block_builder {
    struct tsdb db; /* head and head_tomb only */
    char *out_dir;
    int64_t mint, maxt;
    struct tsdb_head_appender *app;
    size_t batched;
    bool finished;
};

int tsdb_block_builder_create(const char *out_dir, int64_t mint_ms, int64_t maxt_ms,
                              struct tsdb_block_builder **out, struct mp_err *err)
{
    if (maxt_ms <= mint_ms)
        return mp_err_set(err, MP_EINVAL, "block builder: empty window [%lld, %lld)",
                          (long long)mint_ms, (long long)maxt_ms);
    struct tsdb_block_builder *b = mp_calloc(1, sizeof *b);
    if (!b)
        return mp_err_set(err, MP_ENOMEM, "block builder");
    struct tsdb_head_options ho;
    tsdb_head_options_init(&ho);
    /* twice the window, so that the head's appendable range (max time - range / 2) never
     * rejects a sample of the window (Prometheus's NewBlockWriter(2 * blockDuration)) */
    int64_t range = maxt_ms - mint_ms;
    ho.chunk_range_ms = range > INT64_MAX / 2 ? INT64_MAX : 2 * range;
    int rc = tsdb_head_create(&ho, &b->db.head, err);
    if (rc) {
        mp_free(b);
        return rc;
    }
    b->db.head_tomb = tsdb_tombstones_create();
    b->out_dir = mp_xstrdup(out_dir);
    b->mint = mint_ms;
    b->maxt = maxt_ms;
    *out = b;
    return 0;
}

void tsdb_block_builder_destroy(struct tsdb_block_builder *b)
{
    if (!b)
        return;
    if (b->app)
        tsdb_head_appender_rollback(b->app);
    tsdb_head_destroy(b->db.head);
    tsdb_tombstones_destroy(b->db.head_tomb);
    mp_free(b->out_dir);
    mp_free(b);
}

static int commit(struct tsdb_block_builder *b, struct mp_err *err)
{
    if (!b->app)
        return 0;
    struct tsdb_head_appender *a = b->app;
    b->app = NULL;
    b->batched = 0;
    return tsdb_head_appender_commit(a, err);
}

int tsdb_block_builder_add(struct tsdb_block_builder *b, const struct mp_labels *ls, int64_t t_ms,
                           double v, struct mp_err *err)
{
    if (b->finished)
        return mp_err_set(err, MP_EINVAL, "block builder already finished");
    if (t_ms < b->mint || t_ms >= b->maxt)
        return mp_err_set(err, MP_EOUTOFBOUNDS, "out of bounds");
    if (!ls || mp_labels_count(ls) == 0)
        return mp_err_set(err, MP_EINVAL, "empty labels");
    int rc;
    if (!b->app && (rc = tsdb_head_appender_create(b->db.head, &b->app)))
        return mp_err_set(err, rc, "appender");
    rc = tsdb_head_appender_add(b->app, 0, ls, t_ms, v, NULL, err);
    if (rc)
        return rc;
    if (++b->batched >= TSDB_BUILDER_BATCH)
        return commit(b, err);
    return 0;
}

static void info_from_meta(const struct tsdb_meta *m, uint64_t size, struct tsdb_block_info *out)
{
    tsdb_ulid_format(&m->ulid, out->ulid);
    out->min_time_ms = m->min_time;
    out->max_time_ms = m->max_time;
    out->num_samples = m->stats.num_samples;
    out->num_chunks = m->stats.num_chunks;
    out->num_series = m->stats.num_series;
    out->size_bytes = size;
}

int tsdb_block_info_get(const char *dir, struct tsdb_block_info *out, struct mp_err *err)
{
    struct tsdb_block *blk;
    int rc = tsdb_block_open(dir, &blk, err);
    if (rc)
        return rc;
    info_from_meta(&blk->meta, blk->size_bytes, out);
    tsdb_block_release(blk);
    return 0;
}

int tsdb_block_builder_finish(struct tsdb_block_builder *b, bool *written,
                              struct tsdb_block_info *info, struct mp_err *err)
{
    *written = false;
    if (b->finished)
        return mp_err_set(err, MP_EINVAL, "block builder already finished");
    b->finished = true;
    int rc = commit(b, err);
    if (rc)
        return rc;
    int64_t mint = tsdb_head_min_time(b->db.head), maxt = tsdb_head_max_time(b->db.head);
    if (tsdb_head_num_series(b->db.head) == 0 || mint == INT64_MAX)
        return 0;
    maxt++; /* blocks are half-open: [first sample, last sample + 1) */
    struct tsdb_querier *q;
    rc = tsdb_querier_open_sources(&b->db, NULL, 0, true, false, mint, maxt - 1, &q, err);
    if (rc)
        return rc;
    struct tsdb_meta meta;
    tsdb_meta_init(&meta);
    rc = tsdb_block_write(&b->db, b->out_dir, q, mint, maxt, &meta, written, err);
    tsdb_querier_close(q);
    if (!rc && *written) {
        char dir[4200], ulid[TSDB_ULID_LEN + 1];
        tsdb_ulid_format(&meta.ulid, ulid);
        tsdb_pathf(dir, sizeof dir, "%s/%s", b->out_dir, ulid);
        rc = tsdb_block_info_get(dir, info, err);
    }
    tsdb_meta_fini(&meta);
    return rc;
}
