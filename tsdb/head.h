/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/head.h (private to tsdb): the head block, the in-memory part of the database (spec tsdb.md
 * section 2). It holds every series that received a sample in the last one to three hours:
 *
 *   series      struct hseries in two striped hash tables (by ref, by label hash). The labels are
 *               kept as uvarint symbol ids into the head's symbol table (a series of 20 labels
 *               costs ~60 bytes instead of 320 for a pointer pair per label).
 *   chunks      one open XOR chunk per series on the heap; full chunks are written to
 *               chunks_head/ right after the commit that filled them and read back through mmap,
 *               so the heap holds only a 24-byte descriptor for each.
 *   postings    name -> value -> sorted refs (postings.h), for matcher resolution.
 *
 * Appending: tsdb_head_appender_* (the public tsdb_appender_* of tsdb.h call them through db.c).
 * Commit logs Series and Samples records to the WAL first, then appends to the chunks.
 *
 * Locks (in this order; never two stripes of the same table at once):
 *   db read lock (db.c, held by queriers; truncation takes it for writing)
 *   hash stripe -> ref stripe -> symbol table mutex / postings lock / head_chunks lock
 * A ref stripe's lock (a spinlock: held for a few dozen instructions) guards the chunk state of the series in it (open chunk, frozen list,
 * descriptors, last sample, pending count). The symbol table is read without a lock (its pages
 * never move); only adding and releasing symbols takes its mutex.
 *
 * Thread safety: fully thread-safe except tsdb_head_truncate, which needs exclusive access with
 * respect to readers (the db write lock), though appenders may run concurrently. */
#ifndef TSDB_HEAD_H
#define TSDB_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/labels.h"
#include "common/str.h"
#include "tsdb/ireader.h"
#include "tsdb/tsdb.h"

struct tsdb_head;
struct tsdb_wal;
struct tsdb_head_chunks;
struct tsdb_head_appender;

struct tsdb_head_options {
    int64_t chunk_range_ms;        /* the head block range; 2 h */
    uint32_t samples_per_chunk;    /* 120 */
    struct tsdb_wal *wal;          /* NULL: no WAL (tests, backfill) */
    struct tsdb_head_chunks *hc;   /* NULL: full chunks stay on the heap */
};

/* Counters kept by the head; read with tsdb_head_counters_get. */
struct tsdb_head_counters {
    uint64_t samples_appended;
    uint64_t out_of_order;
    uint64_t out_of_bounds;
    uint64_t duplicates;
    uint64_t series_created;
    uint64_t series_removed;
    uint64_t chunks_created;
    uint64_t chunks_removed;
    uint64_t wal_unknown_refs;   /* replayed samples of series the WAL never declared */
    uint64_t truncations;
    uint64_t commits_failed;
};

void tsdb_head_options_init(struct tsdb_head_options *o);
MP_NODISCARD int tsdb_head_create(const struct tsdb_head_options *o, struct tsdb_head **out,
                                  struct mp_err *err);
void tsdb_head_destroy(struct tsdb_head *h); /* NULL is a no-op */

/* The lowest timestamp appends may use from now on (the end of the last persisted block). */
void tsdb_head_set_min_valid_time(struct tsdb_head *h, int64_t t_ms);

/* ---- appending ---- */

MP_NODISCARD int tsdb_head_appender_create(struct tsdb_head *h, struct tsdb_head_appender **out);
/* As tsdb_appender_add (tsdb.h). */
MP_NODISCARD int tsdb_head_appender_add(struct tsdb_head_appender *a, uint64_t ref,
                                        const struct mp_labels *ls, int64_t t_ms, double v,
                                        uint64_t *ref_out, struct mp_err *err);
/* As tsdb_appender_add_refs (tsdb.h). */
MP_NODISCARD int tsdb_head_appender_add_refs(struct tsdb_head_appender *a, const uint64_t *refs,
                                             const double *v, size_t n, int64_t t_ms,
                                             int *status, struct mp_err *err);
MP_NODISCARD int tsdb_head_appender_commit(struct tsdb_head_appender *a, struct mp_err *err);
void tsdb_head_appender_rollback(struct tsdb_head_appender *a);
/* Waits until every appender created before the call has committed or rolled back (head
 * compaction, after raising the min valid time, so no sample lands in the range being
 * persisted after it was read). Bounded at 60 s. */
void tsdb_head_wait_appenders(struct tsdb_head *h);

/* ---- replay (single-threaded, before any appender) ---- */

/* Callback for tsdb_head_chunks_open (ctx = the head): remembers each chunks_head record so that
 * tsdb_head_replay attaches it to its series. The head is created first with o.hc NULL; set it
 * with tsdb_head_set_chunks once the chunks_head directory is open. */
int tsdb_head_collect_mm(void *ctx, uint64_t series_ref, uint64_t chunk_ref, int64_t mint_ms,
                         int64_t maxt_ms, uint8_t encoding, uint16_t num_samples);
void tsdb_head_set_chunks(struct tsdb_head *h, struct tsdb_head_chunks *hc);
/* The WAL commits log to; set after replay (the writer may only open once the WAL is repaired). */
void tsdb_head_set_wal(struct tsdb_head *h, struct tsdb_wal *wal);

/* Replays the WAL directory wal_dir (checkpoint, then segments; NULL: none), repairing a torn or
 * corrupt tail as Prometheus does (repair false: stops there, changing nothing). Series get the chunks_head records collected for their ref,
 * so samples those already hold are skipped. Samples older than the min valid time are
 * dropped. */
MP_NODISCARD int tsdb_head_replay(struct tsdb_head *h, const char *wal_dir, bool repair,
                                  struct mp_err *err);

/* ---- reading ---- */

void tsdb_head_ireader(struct tsdb_head *h, struct tsdb_ireader *out);
/* Label names of the head's series, ascending; fn as in tsdb_ireader_ops.label_values. */
MP_NODISCARD int tsdb_head_label_names(struct tsdb_head *h, int (*fn)(void *ctx, struct mp_str),
                                       void *ctx);

/* One series' data as a reader sees it: chunks in time order; data of m-mapped chunks points
 * into chunks_head mmaps (valid until truncation), data of in-memory chunks into buf (a copy
 * taken under the series lock). Reuse one struct across calls: init, get..., fini. */
struct tsdb_head_read {
    struct mp_labels *labels; /* one reference, released by the next get or fini (a caller
                               * may take it: set the field to NULL) */
    struct tsdb_chunk *chunks;
    size_t n, cap;
    struct mp_buf buf;
    size_t first_copy; /* chunks[first_copy..n) point into buf */
    /* tsdb_head_series_read takes labels from the label-set cache (lcache.h), filling it on a
     * miss: queries set it, compaction's full reads do not (they would evict every entry) */
    bool cached_labels;
};
void tsdb_head_read_init(struct tsdb_head_read *r);
void tsdb_head_read_fini(struct tsdb_head_read *r);
/* Fills r with the chunks of series ref overlapping [mint_ms, maxt_ms]. MP_ENOTFOUND if the
 * series is gone. With want_labels false, r->labels is NULL (saves the allocation). */
MP_NODISCARD int tsdb_head_series_get(struct tsdb_head *h, uint64_t ref, int64_t mint_ms,
                                      int64_t maxt_ms, bool want_labels,
                                      struct tsdb_head_read *r, struct mp_err *err);

/* A series of the head as tsdb_head_sort_series hands it out: read it without a lookup by ref.
 * The pointer stays valid while no truncation or eviction can run, i.e. while the db read lock
 * is held (queriers), or on the compaction thread for its own unlocked queriers. */
struct tsdb_head_series;

/* Resolves refs[0..n) to their series and sorts both into label-set order: out[0..k) (the
 * caller's array of n entries) and refs[0..k), k returned; refs of series not in the head drop
 * out (refs[k..n) are left unspecified). */
size_t tsdb_head_sort_series(struct tsdb_head *h, uint64_t *refs, size_t n,
                             const struct tsdb_head_series **out);
/* As tsdb_head_series_get, for a series from tsdb_head_sort_series (one lock, no lookup). */
MP_NODISCARD int tsdb_head_series_read(struct tsdb_head *h, const struct tsdb_head_series *s,
                                       int64_t mint_ms, int64_t maxt_ms, bool want_labels,
                                       struct tsdb_head_read *r, struct mp_err *err);
uint64_t tsdb_head_series_ref(const struct tsdb_head_series *s);
/* A hint: s will be read soon (starts the cache misses of a select's next series early). */
void tsdb_head_series_prefetch(const struct tsdb_head_series *s);

/* Labels of series ref, one reference for the caller; MP_ENOTFOUND. */
MP_NODISCARD int tsdb_head_series_labels(struct tsdb_head *h, uint64_t ref,
                                         struct mp_labels **out, struct mp_err *err);

/* Sorts refs[0..n) into label-set order (in place). The series must exist (db read lock held). */
void tsdb_head_sort_refs(struct tsdb_head *h, uint64_t *refs, size_t n);

/* Every symbol used by a live series, sorted, each once (for writing a block's symbol table).
 * *out is an array of borrowed interned strings valid while the series live (db read lock);
 * free the array with mp_free. */
MP_NODISCARD int tsdb_head_symbols(struct tsdb_head *h, const struct mp_istr ***out, size_t *n,
                                   struct mp_err *err);

int64_t tsdb_head_min_time(const struct tsdb_head *h); /* INT64_MAX while empty */
int64_t tsdb_head_max_time(const struct tsdb_head *h); /* INT64_MIN while empty */
uint64_t tsdb_head_num_series(const struct tsdb_head *h);
uint64_t tsdb_head_num_chunks(const struct tsdb_head *h);
void tsdb_head_counters_get(const struct tsdb_head *h, struct tsdb_head_counters *out);
/* Bytes of heap the head holds (series, labels, chunks, postings, symbols). */
size_t tsdb_head_bytes(const struct tsdb_head *h);

/* ---- truncation ---- */

/* Drops chunks entirely before mint_ms, removes series left without data, deletes chunks_head
 * files no longer referenced; raises the head's min time to mint_ms. Caller holds the db write
 * lock (no reader may hold pointers into the head). */
MP_NODISCARD int tsdb_head_truncate(struct tsdb_head *h, int64_t mint_ms, struct mp_err *err);

/* Series that ended: their last sample is a staleness marker older than stale_before_ms (the
 * target or the series went away), or they had no sample since idle_before_ms. Nobody may be
 * appending to them. *out (mp_free) lists ref and last sample time. */
struct tsdb_head_ended {
    uint64_t ref;
    int64_t last_t;
};
MP_NODISCARD int tsdb_head_ended_series(struct tsdb_head *h, int64_t stale_before_ms,
                                        int64_t idle_before_ms, struct tsdb_head_ended **out,
                                        size_t *n);
/* Removes from the head the series of v[0..n) (sorted here) whose last sample is still the one
 * listed (their data having been persisted); *removed counts them. Caller holds the db write
 * lock, as for truncation. */
MP_NODISCARD int tsdb_head_evict(struct tsdb_head *h, struct tsdb_head_ended *v, size_t n,
                                 size_t *removed, struct mp_err *err);

/* True while series ref is in the head (WAL checkpoint filter). */
bool tsdb_head_series_exists(struct tsdb_head *h, uint64_t ref);

/* Cardinality statistics (tsdb.h) of the head. */
MP_NODISCARD int tsdb_head_card_stats(struct tsdb_head *h, size_t limit,
                                      struct tsdb_card_stats *out, struct mp_err *err);

#endif
