/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/db.h (private to tsdb): the database internals shared by db.c (open, close, appenders,
 * the background loop, retention, admin), block.c (one persisted block), compact.c (writing
 * blocks) and querier.c (reading across head and blocks).
 *
 * Locks, in order:
 *   cmp_mu      one compaction, retention or admin change at a time
 *   rw          read: queriers for their whole life; write: head truncation and dropping
 *               blocks from the list (short)
 *   blocks_mu   the block list itself (copied by queriers under it)
 *   then the head's own locks (head.h).
 * A block is refcounted: the list holds one reference, every querier one per block it reads.
 * A block removed by retention or compaction is deleted from disk by its last release. */
#ifndef TSDB_DB_H
#define TSDB_DB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "tsdb/head.h"
#include "tsdb/head_chunks.h"
#include "tsdb/index.h"
#include "tsdb/chunks.h"
#include "tsdb/meta.h"
#include "tsdb/tombstones.h"
#include "tsdb/tsdb.h"
#include "tsdb/wal.h"
#include "tsdb/zchunks.h"

struct tsdb_block {
    _Atomic uint32_t refs;
    _Atomic bool deletable; /* delete the directory at the last release */
    char *dir;              /* <data>/<ULID> */
    struct tsdb_meta meta;
    struct tsdb_index_reader *index;
    struct tsdb_chunks_reader *chunks;   /* Prometheus chunk segments, or */
    struct tsdb_zchunks_reader *zchunks; /* meshprom's compressed ones (zchunks.h) */
    struct tsdb_tombstones *tomb;
    pthread_mutex_t tomb_mu; /* serialises tombstone rewrites (admin delete) */
    uint64_t size_bytes;     /* index + chunks + tombstones + meta.json */
    _Atomic bool bg_read;    /* read by background work (or open) since the last drop_pages */
};

/* Opens the block in dir (meta.json, index, chunks/, tombstones). One reference. */
MP_NODISCARD int tsdb_block_open(const char *dir, struct tsdb_block **out, struct mp_err *err);
struct tsdb_block *tsdb_block_acquire(struct tsdb_block *b);
void tsdb_block_release(struct tsdb_block *b); /* NULL is a no-op */
/* The chunk at ref of block b (either format); cache serves compressed blocks and must be the
 * caller's own (zchunks.h). */
MP_NODISCARD int tsdb_block_chunk(const struct tsdb_block *b, struct tsdb_zchunks_cache *cache,
                                  uint64_t ref, uint8_t *enc, const uint8_t **data, size_t *len,
                                  struct mp_err *err);
/* Background work (compaction, tombstone cleaning: queriers opened without the db lock) read b;
 * called by tsdb_querier_open_sources. */
void tsdb_block_note_background_read(struct tsdb_block *b);
/* Drops the process's mapping of the block's file pages (MADV_DONTNEED) if background work read
 * it since the last call: a whole-block read maps pages no query asked for. Pages that queries
 * mapped stay mapped otherwise (re-faulting them after every db loop round tripled the CPU of a
 * select of 5,200 series from a v2 block). */
void tsdb_block_drop_pages(struct tsdb_block *b);
/* Removes a block directory crash-safely: renamed to <dir>.tmp-for-deletion, then deleted. */
MP_NODISCARD int tsdb_block_remove_dir(const char *dir, struct mp_err *err);
/* snprintf for file paths: a path that does not fit is cut (and then simply not found);
 * returns the length that was needed. */
int tsdb_pathf(char *buf, size_t cap, const char *fmt, ...) MP_PRINTF(3, 4);
/* Removes dir and everything below it (no symlinks followed). 0 or MP_EIO. */
MP_NODISCARD int tsdb_remove_all(const char *dir, struct mp_err *err);

struct tsdb {
    struct tsdb_options o;
    char *dir;
    char *wal_dir;
    int lock_fd;
    struct tsdb_head *head;
    struct tsdb_head_chunks *hc;
    struct tsdb_wal *wal;
    struct tsdb_tombstones *head_tomb; /* keyed by head series ref */

    pthread_mutex_t cmp_mu;
    pthread_rwlock_t rw;
    pthread_mutex_t blocks_mu;
    struct tsdb_block **blocks; /* sorted by min time */
    size_t nblocks, capblocks;

    pthread_t loop;
    bool loop_running;
    pthread_mutex_t loop_mu;
    pthread_cond_t loop_cv;
    bool stopping;

    _Atomic uint64_t compactions, compactions_failed, head_truncations_failed;
    _Atomic uint64_t retention_time_deletions, retention_size_deletions;
    _Atomic uint64_t reloads, checkpoints, checkpoints_failed;
};

/* ---- querier internals (querier.c) ---- */

/* A querier over exactly the given blocks (references are taken) and, if with_head, the head;
 * no db read lock is taken when lock is false (the compactor holds cmp_mu, which keeps the head
 * from being truncated under it). */
MP_NODISCARD int tsdb_querier_open_sources(struct tsdb *db, struct tsdb_block *const *blocks,
                                           size_t nblocks, bool with_head, bool lock,
                                           int64_t mint_ms, int64_t maxt_ms,
                                           struct tsdb_querier **out, struct mp_err *err);
/* A querier over the head series refs[0..n) only (sorted; borrowed for q's life), without the
 * db read lock (compactor). */
MP_NODISCARD int tsdb_querier_open_head_refs(struct tsdb *db, const uint64_t *refs, size_t n,
                                             int64_t mint_ms, int64_t maxt_ms,
                                             struct tsdb_querier **out, struct mp_err *err);
/* meta.json hint of a block holding series that ended early (compact.c): it does not count as
 * the end of persisted data for the head, and is merged into its window's block later. */
#define TSDB_HINT_ENDED_SERIES "ended-series"
bool tsdb_block_is_ended_series(const struct tsdb_block *b);

/* The symbols of every source, sorted and unique, with "" (Prometheus's head adds it): for a
 * block's symbol table. Strings are borrowed from the sources (valid while q is open); free the
 * array with mp_free. */
MP_NODISCARD int tsdb_querier_symbols(struct tsdb_querier *q, const struct mp_str **out,
                                      size_t *n, struct mp_err *err);
/* Every series (no matchers). */
MP_NODISCARD int tsdb_querier_select_all(struct tsdb_querier *q, struct tsdb_series_set **out,
                                         struct mp_err *err);

/* ---- writing blocks (compact.c) ---- */

/* Writes every series of q (trimmed to [mint_ms, maxt_ms), chunks outside dropped and chunks
 * crossing the edges re-encoded) as a new block under db->dir, written in <ULID>.tmp-for-creation
 * and renamed. meta gives level, sources, parents and hints; ulid, times and stats are filled.
 * An empty result writes no block (*written false). */
MP_NODISCARD int tsdb_block_write(struct tsdb *db, const char *parent, struct tsdb_querier *q,
                                  int64_t mint_ms, int64_t maxt_ms, struct tsdb_meta *meta,
                                  bool *written, struct mp_err *err);

/* tsdb_block_write into the data directory, then the new block joins the db's list. */
MP_NODISCARD int tsdb_block_persist(struct tsdb *db, struct tsdb_querier *q, int64_t mint_ms,
                                    int64_t maxt_ms, struct tsdb_meta *meta, bool *written,
                                    struct mp_err *err);

/* Compaction levels (compact.c): persists the head while it is compactable, then merges
 * blocks per Prometheus's exponential ranges, then applies retention. cmp_mu held. */
MP_NODISCARD int tsdb_compact_locked(struct tsdb *db, struct mp_err *err);

/* After replay: the WAL brings back series that had ended and were persisted (and possibly had
 * data deleted there since); drops the head copies of stale-ended series whose ended-series block
 * holds them to their last sample. */
MP_NODISCARD int tsdb_drop_replayed_ended(struct tsdb *db, struct mp_err *err);

/* Adds a freshly written block directory to the list (db.c). */
MP_NODISCARD int tsdb_db_add_block(struct tsdb *db, const char *dir, struct mp_err *err);
/* Takes blocks out of the list and marks them deletable (db.c). */
void tsdb_db_drop_blocks(struct tsdb *db, struct tsdb_block *const *drop, size_t n);
/* A snapshot of the block list, each acquired; release each, then mp_free the array. */
struct tsdb_block **tsdb_db_blocks(struct tsdb *db, size_t *n);

#endif
