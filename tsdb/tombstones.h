/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/tombstones.h (private to tsdb): deleted time ranges per series of a block, in memory
 * and as the block's `tombstones` file (tsdb.md 4.5):
 *
 *   BE32 magic 0x0130BA30 | version 0x01 | { uvarint ref ; varint mint ; varint maxt }* |
 *   BE32 CRC32C(entries only, not the version byte)
 *
 * An empty set is the 9 bytes 0130ba30 01 00000000. Intervals are closed [mint, maxt] in ms;
 * per series they are kept sorted and merged as Prometheus's Intervals.Add merges them:
 * overlapping intervals and neighbours 1 ms apart ([1,5] + [6,9] = [1,9]) become one.
 * The file lists series in ascending ref order, intervals in time order (Prometheus writes
 * map order; readers do not care).
 *
 * Thread safety: struct tsdb_tombstones is shared by readers and writers (a rwlock inside;
 * no lock is held once a call returns, never across caller code). struct tsdb_intervals and
 * the iterator belong to one thread. Ownership: every getter copies into caller storage. */
#ifndef TSDB_TOMBSTONES_H
#define TSDB_TOMBSTONES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/str.h"

#define TSDB_TOMBSTONES_FILENAME "tombstones"
#define TSDB_TOMBSTONES_MAGIC 0x0130BA30u
#define TSDB_TOMBSTONES_VERSION 1u
/* Larger files are refused by the reader (memory bound on corrupt input). */
#define TSDB_TOMBSTONES_MAX_BYTES (512u << 20)

struct tsdb_interval {
    int64_t mint, maxt; /* closed: mint <= t <= maxt */
};

/* A sorted list of disjoint, non-adjacent intervals. Zero-initialise; free with _fini. */
struct tsdb_intervals {
    struct tsdb_interval *v;
    size_t n, cap;
};

void tsdb_intervals_fini(struct tsdb_intervals *in);
/* Adds iv, merging (Prometheus Intervals.Add). MP_EINVAL if iv.mint > iv.maxt, MP_ENOMEM
 * (in unchanged). */
MP_NODISCARD int tsdb_intervals_add(struct tsdb_intervals *in, struct tsdb_interval iv);
/* Whether t lies in one of the intervals (binary search). */
bool tsdb_intervals_contains(const struct tsdb_intervals *in, int64_t t);
/* Drops the intervals with maxt < before (they can no longer hide anything). */
void tsdb_intervals_truncate_before(struct tsdb_intervals *in, int64_t before);

struct tsdb_tombstones; /* opaque */

/* New empty set (aborts on OOM: a small fixed allocation). */
struct tsdb_tombstones *tsdb_tombstones_create(void);
void tsdb_tombstones_destroy(struct tsdb_tombstones *t); /* NULL is a no-op */

MP_NODISCARD int tsdb_tombstones_add(struct tsdb_tombstones *t, uint64_t ref,
                                     struct tsdb_interval iv);
/* Copies ref's intervals into *out (its old contents replaced). MP_ENOTFOUND (out emptied),
 * MP_ENOMEM. */
MP_NODISCARD int tsdb_tombstones_get(const struct tsdb_tombstones *t, uint64_t ref,
                                     struct tsdb_intervals *out);
/* Whether sample (ref, ts) is deleted. */
bool tsdb_tombstones_is_deleted(const struct tsdb_tombstones *t, uint64_t ref, int64_t ts);
/* Number of intervals over all series (meta.json stats.numTombstones, as Prometheus's
 * Total()) and number of series with at least one. */
uint64_t tsdb_tombstones_total(const struct tsdb_tombstones *t);
/* True while no series has a tombstone (one check per select instead of a lookup per series). */
bool tsdb_tombstones_is_empty(const struct tsdb_tombstones *t);
size_t tsdb_tombstones_num_series(const struct tsdb_tombstones *t);
/* Drops intervals with maxt < before, and series left without any (Prometheus
 * TruncateBefore). */
void tsdb_tombstones_truncate_before(struct tsdb_tombstones *t, int64_t before);
/* Forgets the given series (Prometheus DeleteTombstones); unknown refs are ignored. */
void tsdb_tombstones_delete_series(struct tsdb_tombstones *t, const uint64_t *refs, size_t n);

/* Walks the series in ascending ref order, one locked lookup per step, so the caller may do
 * anything (even modify t) between steps: series added behind the cursor are not seen,
 * those ahead of it are. */
struct tsdb_tombstones_iter {
    const struct tsdb_tombstones *t;
    uint64_t last;
    bool started;
};
void tsdb_tombstones_iter_init(struct tsdb_tombstones_iter *it, const struct tsdb_tombstones *t);
/* 0: *ref and *out hold the next series; MP_EEOF at the end; MP_ENOMEM. */
MP_NODISCARD int tsdb_tombstones_iter_next(struct tsdb_tombstones_iter *it, uint64_t *ref,
                                           struct tsdb_intervals *out);

/* Appends the whole file image to out. */
MP_NODISCARD int tsdb_tombstones_encode(const struct tsdb_tombstones *t, struct mp_buf *out);
/* Parses a file image into a new set. Checks size, magic, CRC (before decoding, as
 * Prometheus does), version, every varint's bounds and mint <= maxt; MP_EPARSE naming
 * `what` and the byte offset. */
MP_NODISCARD int tsdb_tombstones_decode(const uint8_t *data, size_t len, const char *what,
                                        struct tsdb_tombstones **out, struct mp_err *err);
/* Writes dir/tombstones via tombstones.tmp + fsync + rename + dir fsync; *size (may be NULL)
 * gets the file size. */
MP_NODISCARD int tsdb_tombstones_write(const char *dir, const struct tsdb_tombstones *t,
                                       uint64_t *size, struct mp_err *err);
/* Reads dir/tombstones. A missing file is an empty set with *size 0, as in Prometheus. */
MP_NODISCARD int tsdb_tombstones_read(const char *dir, struct tsdb_tombstones **out, uint64_t *size,
                                      struct mp_err *err);

#endif
