/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/db.c: the database (tsdb.h; spec tsdb.md 4.9 for the start-up sequence): data directory,
 * lock file, block list, head with chunks_head/ and the WAL, the background loop that compacts
 * and applies retention, appender entry points, admin operations and self-metrics. */
#define _GNU_SOURCE /* linkat flags */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/time.h"
#include "tsdb/chunk_xor.h"
#include "tsdb/db.h"
#include "tsdb/postings.h"
#include "tsdb/record.h"

#define LOOP_INTERVAL_MS 60000
#define DAY_MS INT64_C(86400000)

void tsdb_options_init(struct tsdb_options *o)
{
    memset(o, 0, sizeof *o);
    o->retention_ms = 15 * DAY_MS;
    o->min_block_ms = TSDB_CHUNK_RANGE_DEFAULT_MS;
    o->wal_compression = TSDB_WAL_COMPRESS_SNAPPY;
    o->wal_fsync = TSDB_WAL_FSYNC_INTERVAL;
    o->wal_fsync_interval_ms = 1000;
    o->wal_segment_size = TSDB_WAL_DEFAULT_SEGMENT_SIZE;
    o->background = true;
    o->block_compression_level = TSDB_BLOCK_COMPRESSION_DEFAULT;
}

/* ---- the block list ---------------------------------------------------------------------- */

static int block_cmp(const void *pa, const void *pb)
{
    const struct tsdb_block *a = *(struct tsdb_block *const *)pa;
    const struct tsdb_block *b = *(struct tsdb_block *const *)pb;
    if (a->meta.min_time != b->meta.min_time)
        return a->meta.min_time < b->meta.min_time ? -1 : 1;
    return tsdb_ulid_cmp(&a->meta.ulid, &b->meta.ulid);
}

static void blocks_insert_locked(struct tsdb *db, struct tsdb_block *b)
{
    if (db->nblocks == db->capblocks) {
        db->capblocks = db->capblocks ? db->capblocks * 2 : 16;
        db->blocks = mp_xrealloc(db->blocks, db->capblocks * sizeof *db->blocks);
    }
    db->blocks[db->nblocks++] = b;
    qsort(db->blocks, db->nblocks, sizeof *db->blocks, block_cmp);
}

/* End of the persisted data: blocks of ended series do not count (they hold early copies of
 * series inside the head's range, compact.c). */
static int64_t blocks_max_time_locked(const struct tsdb *db)
{
    int64_t t = INT64_MIN;
    for (size_t i = 0; i < db->nblocks; i++)
        if (db->blocks[i]->meta.max_time > t && !tsdb_block_is_ended_series(db->blocks[i]))
            t = db->blocks[i]->meta.max_time;
    return t;
}

int tsdb_db_add_block(struct tsdb *db, const char *dir, struct mp_err *err)
{
    struct tsdb_block *b;
    int rc = tsdb_block_open(dir, &b, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&db->blocks_mu);
    blocks_insert_locked(db, b);
    pthread_mutex_unlock(&db->blocks_mu);
    atomic_fetch_add(&db->reloads, 1);
    return 0;
}

void tsdb_db_drop_blocks(struct tsdb *db, struct tsdb_block *const *drop, size_t n)
{
    pthread_mutex_lock(&db->blocks_mu);
    size_t k = 0;
    for (size_t i = 0; i < db->nblocks; i++) {
        bool gone = false;
        for (size_t j = 0; j < n && !gone; j++)
            gone = db->blocks[i] == drop[j];
        if (!gone) {
            db->blocks[k++] = db->blocks[i];
            continue;
        }
        atomic_store(&db->blocks[i]->deletable, !db->o.read_only);
        tsdb_block_release(db->blocks[i]); /* the list's reference; queriers keep theirs */
    }
    db->nblocks = k;
    pthread_mutex_unlock(&db->blocks_mu);
}

struct tsdb_block **tsdb_db_blocks(struct tsdb *db, size_t *n)
{
    pthread_mutex_lock(&db->blocks_mu);
    struct tsdb_block **v = mp_xmalloc((db->nblocks ? db->nblocks : 1) * sizeof *v);
    for (size_t i = 0; i < db->nblocks; i++)
        v[i] = tsdb_block_acquire(db->blocks[i]);
    *n = db->nblocks;
    pthread_mutex_unlock(&db->blocks_mu);
    return v;
}

/* ---- opening -------------------------------------------------------------------------- */

static int mkdir_p(const char *dir, struct mp_err *err)
{
    char tmp[4096];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof tmp)
        return mp_err_set(err, MP_EINVAL, "bad data directory \"%s\"", dir);
    memcpy(tmp, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (tmp[i] != '/' && tmp[i] != '\0')
            continue;
        char c = tmp[i];
        tmp[i] = '\0';
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
            return mp_err_set(err, MP_EIO, "mkdir %s: %s", tmp, strerror(errno));
        tmp[i] = c;
    }
    return 0;
}

static int take_lock(struct tsdb *db, struct mp_err *err)
{
    char path[4200];
    tsdb_pathf(path, sizeof path, "%s/lock", db->dir);
    db->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (db->lock_fd < 0)
        return mp_err_set(err, MP_EIO, "open %s: %s", path, strerror(errno));
    if (flock(db->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(db->lock_fd);
        db->lock_fd = -1;
        if (e == EWOULDBLOCK)
            return mp_err_set(err, MP_EEXISTS, "lock DB directory: resource temporarily "
                              "unavailable (%s is held by another process)", path);
        return mp_err_set(err, MP_EIO, "flock %s: %s", path, strerror(e));
    }
    return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Loads every <ULID> block directory; removes unfinished ones (tsdb.md 4.9 step 1). */
static int load_blocks(struct tsdb *db, struct mp_err *err)
{
    DIR *d = opendir(db->dir);
    if (!d)
        return mp_err_set(err, MP_EIO, "opendir %s: %s", db->dir, strerror(errno));
    int rc = 0;
    struct dirent *de;
    char path[4200];
    while (!rc && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        tsdb_pathf(path, sizeof path, "%s/%s", db->dir, de->d_name);
        if (ends_with(de->d_name, ".tmp-for-creation") || ends_with(de->d_name, ".tmp-for-deletion") ||
            ends_with(de->d_name, ".tmp")) {
            struct tsdb_ulid u;
            if (!db->o.read_only && strlen(de->d_name) > TSDB_ULID_LEN &&
                tsdb_ulid_parse((struct mp_str){de->d_name, TSDB_ULID_LEN}, &u, NULL) == 0) {
                MP_LOG_INFO("removing unfinished block directory", MP_KV_STR("dir", path));
                (void)!tsdb_remove_all(path, NULL);
            }
            continue;
        }
        struct tsdb_ulid u;
        if (strlen(de->d_name) != TSDB_ULID_LEN ||
            tsdb_ulid_parse(mp_str_c(de->d_name), &u, NULL) != 0)
            continue;
        struct tsdb_block *b;
        rc = tsdb_block_open(path, &b, err);
        if (!rc)
            blocks_insert_locked(db, b);
    }
    closedir(d);
    if (rc)
        return rc;
    /* Parents of a loaded block were merged into it: a crash came between the rename and their
     * deletion (tsdb.md 4.8). */
    struct tsdb_block **drop = mp_xmalloc((db->nblocks ? db->nblocks : 1) * sizeof *drop);
    size_t nd = 0;
    for (size_t i = 0; i < db->nblocks; i++)
        for (size_t j = 0; j < db->nblocks; j++) {
            const struct tsdb_meta *m = &db->blocks[j]->meta;
            bool parent = false;
            for (size_t k = 0; k < m->compaction.nparents && !parent; k++)
                parent = tsdb_ulid_cmp(&m->compaction.parents[k].ulid,
                                       &db->blocks[i]->meta.ulid) == 0;
            if (parent) {
                drop[nd++] = db->blocks[i];
                break;
            }
        }
    if (nd)
        tsdb_db_drop_blocks(db, drop, nd);
    mp_free(drop);
    return 0;
}

static int replay_tombstones(struct tsdb *db, struct mp_err *err);
static void metrics_register(struct tsdb *db);
static void *loop_main(void *arg);

int tsdb_open(const struct tsdb_options *o, struct tsdb **out, struct mp_err *err)
{
    if (!o->dir || !*o->dir)
        return mp_err_set(err, MP_EINVAL, "no data directory");
    if (o->min_block_ms <= 0 || o->retention_ms < 0)
        return mp_err_set(err, MP_EINVAL, "bad block range or retention");
    int64_t t_open = mp_mono_ns();
    struct tsdb *db = mp_calloc(1, sizeof *db);
    if (!db)
        return mp_err_set(err, MP_ENOMEM, "tsdb");
    db->o = *o;
    if (db->o.max_block_ms <= 0) {
        int64_t m = 31 * DAY_MS;
        if (db->o.retention_ms > 0 && db->o.retention_ms / 10 < m)
            m = db->o.retention_ms / 10;
        db->o.max_block_ms = m;
    }
    if (db->o.max_block_ms < db->o.min_block_ms)
        db->o.max_block_ms = db->o.min_block_ms;
    db->lock_fd = -1;
    db->dir = mp_xstrdup(o->dir);
    size_t wl = strlen(o->dir) + 5;
    db->wal_dir = mp_xmalloc(wl);
    snprintf(db->wal_dir, wl, "%s/wal", o->dir);
    pthread_mutex_init(&db->cmp_mu, NULL);
    pthread_rwlock_init(&db->rw, NULL);
    pthread_mutex_init(&db->blocks_mu, NULL);
    pthread_mutex_init(&db->loop_mu, NULL);
    pthread_cond_init(&db->loop_cv, NULL);
    db->head_tomb = tsdb_tombstones_create();

    struct stat st;
    int rc = 0;
    if (o->read_only) {
        if (stat(db->dir, &st) != 0)
            rc = mp_err_set(err, MP_ENOTFOUND, "%s: %s", db->dir, strerror(errno));
    } else {
        rc = mkdir_p(db->wal_dir, err);
        if (!rc && !o->no_lockfile)
            rc = take_lock(db, err);
    }
    if (!rc)
        rc = load_blocks(db, err);
    struct tsdb_head_options ho;
    tsdb_head_options_init(&ho);
    ho.chunk_range_ms = db->o.min_block_ms;
    if (!rc)
        rc = tsdb_head_create(&ho, &db->head, err);
    if (!rc)
        tsdb_head_set_min_valid_time(db->head, blocks_max_time_locked(db));
    /* Prometheus's open: reload() truncates the still empty head to the blocks' end before the
     * WAL is read, so an empty head reports minTime = maxTime = that end */
    if (!rc && blocks_max_time_locked(db) != INT64_MIN)
        rc = tsdb_head_truncate(db->head, blocks_max_time_locked(db), err);
    if (!rc && !o->read_only) {
        char hcdir[4200];
        tsdb_pathf(hcdir, sizeof hcdir, "%s/chunks_head", db->dir);
        rc = tsdb_head_chunks_open(hcdir, NULL, tsdb_head_collect_mm, db->head, &db->hc, err);
        if (!rc)
            tsdb_head_set_chunks(db->head, db->hc);
    }
    bool have_wal = stat(db->wal_dir, &st) == 0;
    if (!rc && have_wal)
        rc = tsdb_head_replay(db->head, db->wal_dir, !o->read_only, err);
    if (!rc && have_wal)
        rc = replay_tombstones(db, err);
    if (!rc && !o->read_only)
        rc = tsdb_drop_replayed_ended(db, err);
    if (!rc && !o->read_only) {
        struct tsdb_wal_options wo;
        tsdb_wal_options_init(&wo);
        wo.compression = db->o.wal_compression;
        wo.fsync = db->o.wal_fsync;
        wo.fsync_interval_ms = db->o.wal_fsync_interval_ms;
        if (db->o.wal_segment_size)
            wo.segment_size = db->o.wal_segment_size;
        rc = tsdb_wal_open(db->wal_dir, &wo, &db->wal, err);
        if (!rc)
            tsdb_head_set_wal(db->head, db->wal);
    }
    if (rc) {
        mp_err_wrap(err, "opening storage %s", db->dir);
        tsdb_close(db);
        return rc;
    }
    if (db->o.metrics)
        metrics_register(db);
    if (db->o.background && !o->read_only) {
        if (pthread_create(&db->loop, NULL, loop_main, db) == 0)
            db->loop_running = true;
        else
            MP_LOG_WARN("starting the compaction thread failed; compaction runs on demand only");
    }
    MP_LOG_INFO("TSDB started", MP_KV_STR("dir", db->dir), MP_KV_U64("blocks", db->nblocks),
                MP_KV_U64("head_series", tsdb_head_num_series(db->head)),
                MP_KV_F64("duration_seconds", (double)(mp_mono_ns() - t_open) / 1e9));
    *out = db;
    return 0;
}

static void metrics_unregister(struct tsdb *db);

void tsdb_close(struct tsdb *db)
{
    if (!db)
        return;
    if (db->loop_running) {
        pthread_mutex_lock(&db->loop_mu);
        db->stopping = true;
        pthread_cond_signal(&db->loop_cv);
        pthread_mutex_unlock(&db->loop_mu);
        pthread_join(db->loop, NULL);
    }
    metrics_unregister(db);
    if (db->wal) {
        struct mp_err e = {0};
        if (tsdb_wal_close(db->wal, &e))
            MP_LOG_WARN("closing the WAL failed", MP_KV_STR("err", e.msg));
    }
    if (db->hc)
        tsdb_head_chunks_close(db->hc, NULL);
    tsdb_head_destroy(db->head);
    for (size_t i = 0; i < db->nblocks; i++)
        tsdb_block_release(db->blocks[i]);
    mp_free(db->blocks);
    tsdb_tombstones_destroy(db->head_tomb);
    if (db->lock_fd >= 0)
        close(db->lock_fd);
    pthread_mutex_destroy(&db->cmp_mu);
    pthread_rwlock_destroy(&db->rw);
    pthread_mutex_destroy(&db->blocks_mu);
    pthread_mutex_destroy(&db->loop_mu);
    pthread_cond_destroy(&db->loop_cv);
    mp_free(db->dir);
    mp_free(db->wal_dir);
    mp_free(db);
}

/* Tombstone records of the WAL belong to the head's series (tsdb.md 3.3); the head replay
 * ignores them, this pass collects them. */
static int replay_tombstones(struct tsdb *db, struct mp_err *err)
{
    struct tsdb_wal_reader *rd;
    int rc = tsdb_wal_reader_open(db->wal_dir, &rd, err);
    if (rc)
        return rc;
    struct tsdb_record_decoder dec;
    tsdb_record_decoder_init(&dec);
    const uint8_t *rec;
    size_t len;
    struct mp_err e2 = {0};
    /* The head replay already repaired any corruption; stop quietly at whatever remains. */
    while (tsdb_wal_reader_next(rd, &rec, &len, &e2) == 0) {
        if (tsdb_record_type_of(rec, len) != TSDB_REC_TOMBSTONES)
            continue;
        struct tsdb_record_tombstone *t;
        size_t n;
        if (tsdb_record_tombstones_decode(&dec, rec, len, &t, &n, NULL))
            continue;
        for (size_t i = 0; i < n && !rc; i++)
            rc = tsdb_tombstones_add(db->head_tomb, t[i].ref,
                                     (struct tsdb_interval){t[i].mint_ms, t[i].maxt_ms});
    }
    tsdb_record_decoder_fini(&dec);
    tsdb_wal_reader_close(rd);
    return rc ? mp_err_set(err, rc, "replaying tombstones") : 0;
}

/* ---- background loop ------------------------------------------------------------------ */

static void *loop_main(void *arg)
{
    struct tsdb *db = arg;
    pthread_mutex_lock(&db->loop_mu);
    while (!db->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += LOOP_INTERVAL_MS / 1000;
        pthread_cond_timedwait(&db->loop_cv, &db->loop_mu, &ts);
        if (db->stopping)
            break;
        pthread_mutex_unlock(&db->loop_mu);
        struct mp_err e = {0};
        if (tsdb_compact(db, &e))
            MP_LOG_ERROR("compaction failed", MP_KV_STR("err", e.msg));
        pthread_mutex_lock(&db->loop_mu);
    }
    pthread_mutex_unlock(&db->loop_mu);
    return NULL;
}

int tsdb_compact(struct tsdb *db, struct mp_err *err)
{
    if (db->o.read_only)
        return mp_err_set(err, MP_EINVAL, "read-only database");
    pthread_mutex_lock(&db->cmp_mu);
    int rc = tsdb_compact_locked(db, err);
    /* Compaction read chunks and indexes through their mmaps; those pages are page cache, not
     * ours to keep resident (queries fault back what they need). */
    if (db->hc)
        tsdb_head_chunks_drop_pages(db->hc);
    size_t nb;
    struct tsdb_block **bs = tsdb_db_blocks(db, &nb);
    for (size_t i = 0; i < nb; i++) {
        tsdb_block_drop_pages(bs[i]);
        tsdb_block_release(bs[i]);
    }
    mp_free(bs);
    pthread_mutex_unlock(&db->cmp_mu);
    return rc;
}

/* ---- appenders -------------------------------------------------------------------------- */

/* struct tsdb_appender is the head's appender: the public type is never defined. */
int tsdb_appender_create(struct tsdb *db, struct tsdb_appender **out)
{
    if (db->o.read_only)
        return MP_EINVAL;
    struct tsdb_head_appender *a;
    int rc = tsdb_head_appender_create(db->head, &a);
    if (!rc)
        *out = (struct tsdb_appender *)a;
    return rc;
}

int tsdb_appender_add(struct tsdb_appender *a, uint64_t ref, const struct mp_labels *ls,
                      int64_t t_ms, double v, uint64_t *ref_out, struct mp_err *err)
{
    return tsdb_head_appender_add((struct tsdb_head_appender *)a, ref, ls, t_ms, v, ref_out, err);
}

int tsdb_appender_add_refs(struct tsdb_appender *a, const uint64_t *refs, const double *v,
                           size_t n, int64_t t_ms, int *status, struct mp_err *err)
{
    return tsdb_head_appender_add_refs((struct tsdb_head_appender *)a, refs, v, n, t_ms, status,
                                       err);
}

int tsdb_appender_commit(struct tsdb_appender *a, struct mp_err *err)
{
    return tsdb_head_appender_commit((struct tsdb_head_appender *)a, err);
}

void tsdb_appender_rollback(struct tsdb_appender *a)
{
    tsdb_head_appender_rollback((struct tsdb_head_appender *)a);
}

/* ---- status ----------------------------------------------------------------------------- */

void tsdb_head_stats_get(struct tsdb *db, struct tsdb_head_stats *out)
{
    memset(out, 0, sizeof *out);
    out->num_series = tsdb_head_num_series(db->head);
    out->num_chunks = tsdb_head_num_chunks(db->head);
    out->min_time_ms = tsdb_head_min_time(db->head);
    out->max_time_ms = tsdb_head_max_time(db->head);
}

int tsdb_card_stats_get(struct tsdb *db, size_t limit, struct tsdb_card_stats *out,
                        struct mp_err *err)
{
    return tsdb_head_card_stats(db->head, limit, out, err);
}

static void card_free(struct tsdb_card_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        mp_free(e[i].name);
    mp_free(e);
}

void tsdb_card_stats_fini(struct tsdb_card_stats *s)
{
    if (!s)
        return;
    card_free(s->series_by_metric, s->n_series_by_metric);
    card_free(s->label_value_counts, s->n_label_value_counts);
    card_free(s->memory_by_label, s->n_memory_by_label);
    card_free(s->series_by_label_pair, s->n_series_by_label_pair);
    memset(s, 0, sizeof *s);
}

/* ---- admin --------------------------------------------------------------------------- */

static int delete_in_block(struct tsdb_block *b, const struct mp_matcher *const *m, size_t n,
                           int64_t mint, int64_t maxt, struct mp_err *err)
{
    if (b->meta.max_time <= mint || b->meta.min_time > maxt)
        return 0;
    struct tsdb_ireader ir = tsdb_index_reader_ireader(b->index);
    struct tsdb_plist refs = {0};
    int rc = tsdb_postings_for_matchers(&ir, m, n, &refs, err);
    pthread_mutex_lock(&b->tomb_mu);
    size_t added = 0;
    for (size_t i = 0; i < refs.n && !rc; i++, added++)
        rc = tsdb_tombstones_add(b->tomb, refs.refs[i], (struct tsdb_interval){mint, maxt});
    if (!rc && added)
        rc = tsdb_tombstones_write(b->dir, b->tomb, NULL, err);
    pthread_mutex_unlock(&b->tomb_mu);
    tsdb_plist_fini(&refs);
    return rc;
}

int tsdb_delete_series(struct tsdb *db, const struct mp_matcher *const *m, size_t n,
                       int64_t mint_ms, int64_t maxt_ms, struct mp_err *err)
{
    if (n == 0)
        return mp_err_set(err, MP_EINVAL, "no matchers");
    if (db->o.read_only)
        return mp_err_set(err, MP_EINVAL, "read-only database");
    pthread_mutex_lock(&db->cmp_mu);
    size_t nb;
    struct tsdb_block **bs = tsdb_db_blocks(db, &nb);
    int rc = 0;
    for (size_t i = 0; i < nb && !rc; i++)
        rc = delete_in_block(bs[i], m, n, mint_ms, maxt_ms, err);
    for (size_t i = 0; i < nb; i++)
        tsdb_block_release(bs[i]);
    mp_free(bs);
    if (!rc) {
        struct tsdb_ireader ir;
        tsdb_head_ireader(db->head, &ir);
        struct tsdb_plist refs = {0};
        rc = tsdb_postings_for_matchers(&ir, m, n, &refs, err);
        struct tsdb_record_tombstone *t = mp_xmalloc((refs.n ? refs.n : 1) * sizeof *t);
        for (size_t i = 0; i < refs.n; i++)
            t[i] = (struct tsdb_record_tombstone){refs.refs[i], mint_ms, maxt_ms};
        if (!rc && refs.n) {
            struct mp_buf rec;
            mp_buf_init(&rec, 0);
            rc = tsdb_record_tombstones_encode(t, refs.n, &rec);
            if (!rc) {
                struct mp_str r = {rec.data, rec.len};
                rc = tsdb_wal_log(db->wal, &r, 1, err);
            }
            mp_buf_fini(&rec);
            for (size_t i = 0; i < refs.n && !rc; i++)
                rc = tsdb_tombstones_add(db->head_tomb, refs.refs[i],
                                         (struct tsdb_interval){mint_ms, maxt_ms});
        }
        mp_free(t);
        tsdb_plist_fini(&refs);
    }
    pthread_mutex_unlock(&db->cmp_mu);
    return rc ? mp_err_wrap(err, "delete series") : 0;
}

/* Rewrites one block without its deleted data; same level and sources, the old one as parent. */
static int rewrite_block(struct tsdb *db, struct tsdb_block *b, struct mp_err *err)
{
    struct tsdb_meta meta;
    tsdb_meta_init(&meta);
    meta.compaction.level = b->meta.compaction.level;
    int rc = 0;
    for (size_t k = 0; k < b->meta.compaction.nsources && !rc; k++)
        rc = tsdb_meta_add_source(&meta, &b->meta.compaction.sources[k]);
    struct tsdb_block_desc d = {b->meta.ulid, b->meta.min_time, b->meta.max_time};
    if (!rc)
        rc = tsdb_meta_add_parent(&meta, &d);
    struct tsdb_querier *q = NULL;
    if (!rc)
        rc = tsdb_querier_open_sources(db, &b, 1, false, false, b->meta.min_time,
                                       b->meta.max_time - 1, &q, err);
    bool written = false;
    if (!rc)
        rc = tsdb_block_persist(db, q, b->meta.min_time, b->meta.max_time, &meta, &written, err);
    tsdb_querier_close(q);
    if (!rc)
        tsdb_db_drop_blocks(db, &b, 1);
    tsdb_meta_fini(&meta);
    return rc;
}

int tsdb_clean_tombstones(struct tsdb *db, struct mp_err *err)
{
    if (db->o.read_only)
        return mp_err_set(err, MP_EINVAL, "read-only database");
    pthread_mutex_lock(&db->cmp_mu);
    size_t nb;
    struct tsdb_block **bs = tsdb_db_blocks(db, &nb);
    int rc = 0;
    for (size_t i = 0; i < nb && !rc; i++)
        if (tsdb_tombstones_total(bs[i]->tomb) > 0)
            rc = rewrite_block(db, bs[i], err);
    for (size_t i = 0; i < nb; i++)
        tsdb_block_release(bs[i]);
    mp_free(bs);
    pthread_mutex_unlock(&db->cmp_mu);
    return rc ? mp_err_wrap(err, "clean tombstones") : 0;
}

/* Hard-links the files of block dir src into dst (created). */
static int link_block(const char *src, const char *dst, struct mp_err *err)
{
    const char *files[] = {"meta.json", "index", "tombstones"};
    char a[4200], b[4200];
    if (mkdir(dst, 0777) != 0)
        return mp_err_set(err, MP_EIO, "mkdir %s: %s", dst, strerror(errno));
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        tsdb_pathf(a, sizeof a, "%s/%s", src, files[i]);
        tsdb_pathf(b, sizeof b, "%s/%s", dst, files[i]);
        if (link(a, b) != 0 && errno != ENOENT)
            return mp_err_set(err, MP_EIO, "link %s: %s", a, strerror(errno));
    }
    tsdb_pathf(a, sizeof a, "%s/chunks", src);
    tsdb_pathf(b, sizeof b, "%s/chunks", dst);
    if (mkdir(b, 0777) != 0)
        return mp_err_set(err, MP_EIO, "mkdir %s: %s", b, strerror(errno));
    DIR *d = opendir(a);
    if (!d)
        return mp_err_set(err, MP_EIO, "opendir %s: %s", a, strerror(errno));
    int rc = 0;
    struct dirent *de;
    while (!rc && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (linkat(dirfd(d), de->d_name, AT_FDCWD, b, 0) != 0) {
            char from[4400], to[4400];
            tsdb_pathf(from, sizeof from, "%s/%s", a, de->d_name);
            tsdb_pathf(to, sizeof to, "%s/%s", b, de->d_name);
            if (link(from, to) != 0)
                rc = mp_err_set(err, MP_EIO, "link %s: %s", from, strerror(errno));
        }
    }
    closedir(d);
    return rc;
}

int tsdb_snapshot(struct tsdb *db, bool skip_head, char name_out[64], struct mp_err *err)
{
    /* Prometheus: <UTC time 20060102T150405Z>-<16 hex digits> */
    char name[64], dir[4200], snapdir[4200];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    uint64_t rnd = (uint64_t)mp_mono_ns() ^ ((uint64_t)getpid() << 32);
    int len = (int)strftime(name, sizeof name, "%Y%m%dT%H%M%SZ", &tm);
    tsdb_pathf(name + len, sizeof name - (size_t)len, "-%016llx", (unsigned long long)rnd);
    tsdb_pathf(snapdir, sizeof snapdir, "%s/snapshots", db->dir);
    tsdb_pathf(dir, sizeof dir, "%s/%s", snapdir, name);
    int rc = mkdir_p(dir, err);
    pthread_mutex_lock(&db->cmp_mu);
    size_t nb;
    struct tsdb_block **bs = tsdb_db_blocks(db, &nb);
    for (size_t i = 0; i < nb && !rc; i++) {
        char ulid[TSDB_ULID_LEN + 1], dst[4400];
        tsdb_ulid_format(&bs[i]->meta.ulid, ulid);
        tsdb_pathf(dst, sizeof dst, "%s/%s", dir, ulid);
        rc = link_block(bs[i]->dir, dst, err);
    }
    for (size_t i = 0; i < nb; i++)
        tsdb_block_release(bs[i]);
    mp_free(bs);
    int64_t mint = tsdb_head_min_time(db->head), maxt = tsdb_head_max_time(db->head);
    if (!rc && !skip_head && mint != INT64_MAX && maxt != INT64_MIN) {
        struct tsdb_querier *q;
        rc = tsdb_querier_open_sources(db, NULL, 0, true, true, mint, maxt, &q, err);
        if (!rc) {
            struct tsdb_meta meta;
            tsdb_meta_init(&meta);
            bool written;
            rc = tsdb_block_write(db, dir, q, mint, maxt + 1, &meta, &written, err);
            tsdb_meta_fini(&meta);
            tsdb_querier_close(q);
        }
    }
    pthread_mutex_unlock(&db->cmp_mu);
    if (rc)
        return mp_err_wrap(err, "snapshot");
    tsdb_pathf(name_out, 64, "%s", name);
    return 0;
}

/* ---- self-metrics ----------------------------------------------------------------------- */

/* Metric callbacks read the one db registered (a registry outlives a db: the callbacks hold
 * this static context, cleared at close). */
static struct {
    pthread_mutex_t mu;
    struct tsdb *db;
} g_metrics = {PTHREAD_MUTEX_INITIALIZER, NULL};

enum mkind {
    M_HEAD_SERIES,
    M_HEAD_CHUNKS,
    M_HEAD_MIN,
    M_HEAD_MAX,
    M_HEAD_MIN_S,
    M_HEAD_MAX_S,
    M_APPENDED,
    M_OOO,
    M_OOB,
    M_SERIES_CREATED,
    M_SERIES_REMOVED,
    M_CHUNKS_CREATED,
    M_CHUNKS_REMOVED,
    M_TRUNCATIONS,
    M_TRUNC_FAILED,
    M_COMPACTIONS,
    M_COMPACTIONS_FAILED,
    M_BLOCKS,
    M_BLOCK_BYTES,
    M_LOWEST,
    M_LOWEST_S,
    M_TIME_RET,
    M_SIZE_RET,
    M_RET_BYTES,
    M_RET_SECONDS,
    M_RELOADS,
    M_CHECKPOINTS,
    M_CHECKPOINTS_FAILED,
    M_WAL_SEGMENT,
    M_WAL_WRITES_FAILED,
    M_WAL_FSYNCS,
    M_WAL_RECORDS,
    M_HEAD_BYTES,
    M_COUNT_
};

/* Where a metric's value comes from: a head counter, a db counter or a WAL statistic (read by
 * offset), or a computation in metric_value. */
enum msrc { SRC_CALC, SRC_HEAD, SRC_DB, SRC_WAL };
#define HC(f) SRC_HEAD, offsetof(struct tsdb_head_counters, f)
#define DBC(f) SRC_DB, offsetof(struct tsdb, f)
#define WSC(f) SRC_WAL, offsetof(struct tsdb_wal_stats, f)
#define CALC SRC_CALC, 0

static const struct {
    const char *name, *help;
    enum mp_metric_type type;
    enum msrc src;
    size_t off;
} mdefs[M_COUNT_] = {
    [M_HEAD_SERIES] = {"prometheus_tsdb_head_series", "Total number of series in the head block.", MP_METRIC_GAUGE, CALC},
    [M_HEAD_CHUNKS] = {"prometheus_tsdb_head_chunks", "Total number of chunks in the head block.", MP_METRIC_GAUGE, CALC},
    [M_HEAD_MIN] = {"prometheus_tsdb_head_min_time", "Minimum time bound of the head block.", MP_METRIC_GAUGE, CALC},
    [M_HEAD_MAX] = {"prometheus_tsdb_head_max_time", "Maximum timestamp of the head block.", MP_METRIC_GAUGE, CALC},
    [M_HEAD_MIN_S] = {"prometheus_tsdb_head_min_time_seconds", "Minimum time bound of the head block.", MP_METRIC_GAUGE, CALC},
    [M_HEAD_MAX_S] = {"prometheus_tsdb_head_max_time_seconds", "Maximum timestamp of the head block.", MP_METRIC_GAUGE, CALC},
    [M_APPENDED] = {"prometheus_tsdb_head_samples_appended_total", "Total number of appended samples.", MP_METRIC_COUNTER, HC(samples_appended)},
    [M_OOO] = {"prometheus_tsdb_out_of_order_samples_total", "Total number of out of order samples ingestion failed attempts due to out of order being disabled.", MP_METRIC_COUNTER, HC(out_of_order)},
    [M_OOB] = {"prometheus_tsdb_out_of_bound_samples_total", "Total number of out of bound samples ingestion failed attempts with out of order support disabled.", MP_METRIC_COUNTER, HC(out_of_bounds)},
    [M_SERIES_CREATED] = {"prometheus_tsdb_head_series_created_total", "Total number of series created in the head", MP_METRIC_COUNTER, HC(series_created)},
    [M_SERIES_REMOVED] = {"prometheus_tsdb_head_series_removed_total", "Total number of series removed in the head", MP_METRIC_COUNTER, HC(series_removed)},
    [M_CHUNKS_CREATED] = {"prometheus_tsdb_head_chunks_created_total", "Total number of chunks created in the head", MP_METRIC_COUNTER, HC(chunks_created)},
    [M_CHUNKS_REMOVED] = {"prometheus_tsdb_head_chunks_removed_total", "Total number of chunks removed in the head", MP_METRIC_COUNTER, HC(chunks_removed)},
    [M_TRUNCATIONS] = {"prometheus_tsdb_head_truncations_total", "Total number of head truncations attempted.", MP_METRIC_COUNTER, HC(truncations)},
    [M_TRUNC_FAILED] = {"prometheus_tsdb_head_truncations_failed_total", "Total number of head truncations that failed.", MP_METRIC_COUNTER, DBC(head_truncations_failed)},
    [M_COMPACTIONS] = {"prometheus_tsdb_compactions_total", "Total number of compactions that were executed for the partition.", MP_METRIC_COUNTER, DBC(compactions)},
    [M_COMPACTIONS_FAILED] = {"prometheus_tsdb_compactions_failed_total", "Total number of compactions that failed for the partition.", MP_METRIC_COUNTER, DBC(compactions_failed)},
    [M_BLOCKS] = {"prometheus_tsdb_blocks_loaded", "Number of currently loaded data blocks", MP_METRIC_GAUGE, CALC},
    [M_BLOCK_BYTES] = {"prometheus_tsdb_storage_blocks_bytes", "The number of bytes that are currently used for local storage by all blocks.", MP_METRIC_GAUGE, CALC},
    [M_LOWEST] = {"prometheus_tsdb_lowest_timestamp", "Lowest timestamp value stored in the database. The unit is decided by the library consumer.", MP_METRIC_GAUGE, CALC},
    [M_LOWEST_S] = {"prometheus_tsdb_lowest_timestamp_seconds", "Lowest timestamp value stored in the database.", MP_METRIC_GAUGE, CALC},
    [M_TIME_RET] = {"prometheus_tsdb_time_retentions_total", "The number of times that blocks were deleted because the maximum time limit was exceeded.", MP_METRIC_COUNTER, DBC(retention_time_deletions)},
    [M_SIZE_RET] = {"prometheus_tsdb_size_retentions_total", "The number of times that blocks were deleted because the maximum number of bytes was exceeded.", MP_METRIC_COUNTER, DBC(retention_size_deletions)},
    [M_RET_BYTES] = {"prometheus_tsdb_retention_limit_bytes", "Max number of bytes to be retained in the tsdb blocks, configured 0 means disabled", MP_METRIC_GAUGE, CALC},
    [M_RET_SECONDS] = {"prometheus_tsdb_retention_limit_seconds", "How long to retain samples in storage.", MP_METRIC_GAUGE, CALC},
    [M_RELOADS] = {"prometheus_tsdb_reloads_total", "Number of times the database reloaded block data from disk.", MP_METRIC_COUNTER, DBC(reloads)},
    [M_CHECKPOINTS] = {"prometheus_tsdb_checkpoint_creations_total", "Total number of checkpoint creations attempted.", MP_METRIC_COUNTER, DBC(checkpoints)},
    [M_CHECKPOINTS_FAILED] = {"prometheus_tsdb_checkpoint_creations_failed_total", "Total number of checkpoint creations that failed.", MP_METRIC_COUNTER, DBC(checkpoints_failed)},
    [M_WAL_SEGMENT] = {"prometheus_tsdb_wal_segment_current", "Write log segment index that TSDB is currently writing to.", MP_METRIC_GAUGE, CALC},
    [M_WAL_WRITES_FAILED] = {"prometheus_tsdb_wal_writes_failed_total", "Total number of write log writes that failed.", MP_METRIC_COUNTER, WSC(write_errors)},
    [M_WAL_FSYNCS] = {"meshprom_tsdb_wal_fsyncs_total", "Total number of fdatasync calls on the write log.", MP_METRIC_COUNTER, WSC(fsyncs)},
    [M_WAL_RECORDS] = {"meshprom_tsdb_wal_records_total", "Total number of records written to the write log.", MP_METRIC_COUNTER, WSC(records)},
    [M_HEAD_BYTES] = {"meshprom_tsdb_head_bytes", "Heap bytes held by the head block (series, labels, chunks, postings, symbols).", MP_METRIC_GAUGE, CALC},
};

static int64_t lowest_time(struct tsdb *db)
{
    int64_t t = tsdb_head_min_time(db->head);
    pthread_mutex_lock(&db->blocks_mu);
    if (db->nblocks && db->blocks[0]->meta.min_time < t)
        t = db->blocks[0]->meta.min_time;
    pthread_mutex_unlock(&db->blocks_mu);
    return t;
}

static double metric_value(struct tsdb *db, enum mkind k)
{
    switch (mdefs[k].src) {
    case SRC_HEAD: {
        struct tsdb_head_counters c;
        tsdb_head_counters_get(db->head, &c);
        uint64_t v;
        memcpy(&v, (const char *)&c + mdefs[k].off, sizeof v);
        return (double)v;
    }
    case SRC_DB:
        return (double)atomic_load((_Atomic uint64_t *)((char *)db + mdefs[k].off));
    case SRC_WAL: {
        struct tsdb_wal_stats ws = {0};
        if (db->wal)
            tsdb_wal_stats_get(db->wal, &ws);
        uint64_t v;
        memcpy(&v, (const char *)&ws + mdefs[k].off, sizeof v);
        return (double)v;
    }
    case SRC_CALC:
        break;
    }
    switch (k) {
    case M_HEAD_SERIES:
        return (double)tsdb_head_num_series(db->head);
    case M_HEAD_CHUNKS:
        return (double)tsdb_head_num_chunks(db->head);
    case M_HEAD_MIN:
        return (double)tsdb_head_min_time(db->head);
    case M_HEAD_MAX:
        return (double)tsdb_head_max_time(db->head);
    case M_HEAD_MIN_S:
        return (double)tsdb_head_min_time(db->head) / 1000.0;
    case M_HEAD_MAX_S:
        return (double)tsdb_head_max_time(db->head) / 1000.0;
    case M_BLOCKS:
    case M_BLOCK_BYTES: {
        pthread_mutex_lock(&db->blocks_mu);
        double v = (double)db->nblocks;
        if (k == M_BLOCK_BYTES) {
            v = 0;
            for (size_t i = 0; i < db->nblocks; i++)
                v += (double)db->blocks[i]->size_bytes;
        }
        pthread_mutex_unlock(&db->blocks_mu);
        return v;
    }
    case M_LOWEST:
        return (double)lowest_time(db);
    case M_LOWEST_S:
        return (double)lowest_time(db) / 1000.0;
    case M_RET_BYTES:
        return (double)db->o.retention_bytes;
    case M_RET_SECONDS:
        return (double)db->o.retention_ms / 1000.0;
    case M_WAL_SEGMENT:
        return db->wal ? (double)tsdb_wal_segment(db->wal) : 0;
    case M_HEAD_BYTES:
        return (double)tsdb_head_bytes(db->head);
    default:
        return 0; /* every other kind has a source above */
    }
}

static double metric_fn(void *ctx)
{
    enum mkind k = (enum mkind)(uintptr_t)ctx;
    pthread_mutex_lock(&g_metrics.mu);
    double v = g_metrics.db ? metric_value(g_metrics.db, k) : 0;
    pthread_mutex_unlock(&g_metrics.mu);
    return v;
}

static void metrics_register(struct tsdb *db)
{
    pthread_mutex_lock(&g_metrics.mu);
    g_metrics.db = db;
    pthread_mutex_unlock(&g_metrics.mu);
    for (int k = 0; k < M_COUNT_; k++) {
        struct mp_err e = {0};
        if (mp_metrics_func_register(db->o.metrics, mdefs[k].type, mdefs[k].name, mdefs[k].help,
                                     metric_fn, (void *)(uintptr_t)k, &e))
            MP_LOG_WARN("registering a tsdb metric failed", MP_KV_STR("err", e.msg));
    }
}

static void metrics_unregister(struct tsdb *db)
{
    pthread_mutex_lock(&g_metrics.mu);
    if (g_metrics.db == db)
        g_metrics.db = NULL;
    pthread_mutex_unlock(&g_metrics.mu);
}
