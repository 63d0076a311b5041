/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/tsdb.h: the public contract of the storage engine. So far it holds what other modules
 * need of chunks: the chunk encoding bytes, the staleness marker and the XOR (Gorilla) float
 * chunk codec whose bytes are exactly Prometheus's (remote read and the Thanos StoreAPI serve
 * them raw, so a Go client decodes them). Format: /work/shared/spec/tsdb.md section 1 and
 * protocols.md 6.6; tsdb/README.md summarises it.
 *
 * Thread safety: a struct tsdb_xor belongs to one thread at a time; its bytes may be read by
 * other threads only once nobody appends any more (a full chunk is immutable). An iterator reads
 * caller-owned bytes and belongs to one thread. */
#ifndef TSDB_TSDB_H
#define TSDB_TSDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/str.h"

/* The one-byte chunk encoding stored in chunk files and WAL records (tsdb.md section 1).
 * Not the Thanos protobuf enum, where XOR is 0 (tsdb.md 1.9). */
enum tsdb_chunk_encoding {
    TSDB_ENC_NONE = 0,
    TSDB_ENC_XOR = 1,
    TSDB_ENC_HISTOGRAM = 2,
    TSDB_ENC_FLOAT_HISTOGRAM = 3,
};
/* Head chunk files only: bit 7 marks an out-of-order chunk (2.42 called 0x81 EncOOOXOR). */
#define TSDB_ENC_OOO_FLAG 0x80u

/* Prometheus value.StaleNaN. Compare by bits; a codec must never canonicalise NaNs. */
#define TSDB_STALE_NAN_BITS UINT64_C(0x7ff0000000000002)

static inline uint64_t tsdb_f64_bits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static inline double tsdb_f64_from_bits(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static inline bool tsdb_is_stale(double v)
{
    return tsdb_f64_bits(v) == TSDB_STALE_NAN_BITS;
}

static inline double tsdb_stale_nan(void)
{
    return tsdb_f64_from_bits(TSDB_STALE_NAN_BITS);
}

/* ---- XOR chunk: appending ------------------------------------------------------------------ */

/* The BE16 header limits a chunk to this many samples. */
#define TSDB_XOR_MAX_SAMPLES 65535u
/* Worst case of one encoded sample, rounded up to bytes (145 bits, tsdb.md 1.5). */
#define TSDB_XOR_MAX_SAMPLE_BYTES 19u

struct tsdb_xor; /* opaque: one chunk being appended to */

/* A new empty chunk (bytes "00 00"). 0 or MP_ENOMEM. */
MP_NODISCARD int tsdb_xor_create(struct tsdb_xor **out);

/* Re-opens existing chunk data (BE16 count + bit stream, as tsdb_xor_bytes gives it) for
 * appending: decodes every sample to restore the encoder state, so appending to the result
 * gives the same bytes as appending all samples to one chunk. The data is copied.
 * 0, MP_EPARSE (err says which sample is malformed) or MP_ENOMEM. */
MP_NODISCARD int tsdb_xor_open(const uint8_t *data, size_t len, struct tsdb_xor **out,
                               struct mp_err *err);

void tsdb_xor_destroy(struct tsdb_xor *c); /* NULL is a no-op */

/* Appends one sample. Does not check order (the head rejects out-of-order samples before);
 * timestamps are encoded with wrapping 64-bit arithmetic exactly as Prometheus does, so any
 * int64 sequence round-trips. The value is stored by its 64-bit pattern.
 * 0; MP_ELIMIT when the chunk already holds TSDB_XOR_MAX_SAMPLES; MP_ENOMEM. On failure the
 * chunk is unchanged. Allocates only when the byte buffer must grow (geometrically). */
MP_NODISCARD int tsdb_xor_append(struct tsdb_xor *c, int64_t t_ms, double v);

/* The chunk data to store or serve (Thanos AggrChunk.raw.data, remote-read Chunk.data):
 * exactly the bytes Prometheus's Go encoder produces for the same samples, including the empty
 * trailing byte its bit writer leaves after a byte-aligned whole-byte field (protocols.md 6.6).
 * Borrowed until the next append or destroy. */
const uint8_t *tsdb_xor_bytes(const struct tsdb_xor *c, size_t *len);
size_t tsdb_xor_num_samples(const struct tsdb_xor *c);
/* First and last sample timestamps; meaningless while the chunk is empty. */
int64_t tsdb_xor_min_time(const struct tsdb_xor *c);
int64_t tsdb_xor_max_time(const struct tsdb_xor *c);

/* Hands the data out (caller frees it with mp_free) and destroys c; for freezing a full
 * chunk without a copy. */
uint8_t *tsdb_xor_take(struct tsdb_xor *c, size_t *len);

/* ---- XOR chunk: iterating ------------------------------------------------------------------ */

/* Iterator over caller-owned chunk data; the caller embeds it (no allocation). The bytes must
 * stay valid and unchanged while it is used. Fields are private: use the functions below.
 * Arbitrary bytes are safe: reads stay inside [data, data + len), malformed input gives
 * MP_EPARSE. */
struct tsdb_xor_iter {
    const uint8_t *data;
    size_t len;
    uint64_t pos;    /* next bit to read, counted from data[0] */
    uint64_t vbits;  /* current value's bit pattern */
    uint64_t delta;  /* current timestamp delta (wrapping) */
    int64_t t;       /* current timestamp */
    uint32_t total;  /* samples announced by the header */
    uint32_t read;   /* samples decoded so far */
    uint8_t lead;    /* value window (leading, trailing zeros); (0, 0) before the first '11' */
    uint8_t trail;
    bool window;     /* a '11' window was read; used to restore an appender */
    int err;         /* 0 or MP_EPARSE, sticky */
    const char *why; /* static text for err */
};

void tsdb_xor_iter_init(struct tsdb_xor_iter *it, const uint8_t *data, size_t len);

/* Advances to the next sample. 0: *t_ms and *v set. MP_EEOF: all samples read.
 * MP_EPARSE: malformed or truncated data (sticky; tsdb_xor_iter_error describes it). */
int tsdb_xor_iter_next(struct tsdb_xor_iter *it, int64_t *t_ms, double *v);

/* Advances to the first sample with timestamp >= t_ms (the current one if it already
 * qualifies, as Prometheus's Seek) and returns it. 0, MP_EEOF or MP_EPARSE. Samples must be in
 * increasing time order, as in every chunk Prometheus writes. */
int tsdb_xor_iter_seek(struct tsdb_xor_iter *it, int64_t t_ms, int64_t *ts_ms, double *v);

/* Sample count from the header (0 if the data is shorter than the header). */
size_t tsdb_xor_iter_num_samples(const struct tsdb_xor_iter *it);

/* 0 if no error so far; otherwise records "xor chunk: sample I of N: why" in err (may be NULL)
 * and returns MP_EPARSE. */
int tsdb_xor_iter_error(const struct tsdb_xor_iter *it, struct mp_err *err);

/* ==== The database ===========================================================================
 *
 * struct tsdb is a data directory laid out as Prometheus's (tsdb.md 4.1): wal/, chunks_head/,
 * one folder per block. Samples enter through appenders into the head (recent data in memory,
 * full chunks written to chunks_head/ and read back through mmap), are logged to the WAL before a
 * commit returns, and leave the head as immutable 2 h blocks. Queriers read a consistent view
 * over head and blocks.
 *
 * Thread safety: struct tsdb is fully thread-safe (any number of appenders and queriers at
 * once; compaction runs on the db's own thread). A struct tsdb_appender, a querier and what it
 * hands out belong to one thread at a time. */

struct tsdb;
struct tsdb_appender;
struct tsdb_querier;
struct tsdb_series_set;
struct mp_labels;
struct mp_matcher;
struct mp_metrics_registry;

/* WAL settings (the WAL itself is private: tsdb/wal.h, tsdb/WAL.md). */
enum tsdb_wal_compression {
    TSDB_WAL_COMPRESS_NONE,
    TSDB_WAL_COMPRESS_SNAPPY, /* default, as Prometheus --storage.tsdb.wal-compression=true */
    TSDB_WAL_COMPRESS_ZSTD,   /* Prometheus >= 2.46 reads it; 2.42 does not */
};

/* When written data is forced to stable storage. Every mode hands each log call's bytes to the
 * kernel (write) before returning, so a crash of the process alone never loses an
 * acknowledged record. The modes differ on a machine crash (power loss, kernel panic): */
enum tsdb_wal_fsync {
    TSDB_WAL_FSYNC_NONE,     /* never (tests, benchmarks): everything not flushed by the OS */
    TSDB_WAL_FSYNC_SEGMENT,  /* Prometheus: fdatasync when a segment is cut and on close;
                              * loses up to one segment of acknowledged records */
    TSDB_WAL_FSYNC_INTERVAL, /* default: SEGMENT plus a background fdatasync every
                              * fsync_interval_ms when something was written; loses records
                              * acknowledged in the last fsync_interval_ms + one fsync */
    TSDB_WAL_FSYNC_ALWAYS,   /* fdatasync before every log call returns; loses nothing */
};

struct tsdb_options {
    const char *dir;            /* data directory, created if missing */
    int64_t retention_ms;       /* --storage.tsdb.retention.time; 0 = no time limit */
    uint64_t retention_bytes;   /* --storage.tsdb.retention.size; 0 = no size limit */
    int64_t min_block_ms;       /* head block range; default 2 h */
    int64_t max_block_ms;       /* largest compacted block; default min(10% retention, 31 d) */
    enum tsdb_wal_compression wal_compression; /* default snappy */
    enum tsdb_wal_fsync wal_fsync;             /* default interval (1 s) */
    int64_t wal_fsync_interval_ms;
    size_t wal_segment_size;    /* default 128 MiB */
    bool no_lockfile;           /* --storage.tsdb.no-lockfile */
    int block_compression_level; /* chunks of new blocks in zstd frames at this level (1..19);
                                  * 0 writes Prometheus's uncompressed segments. Either format
                                  * is read. Default TSDB_BLOCK_COMPRESSION_DEFAULT */
    bool read_only;             /* open without changing anything (promtool tsdb dump/analyze):
                                 * no lock, no WAL writer, no repair (replay stops at damage),
                                 * chunks_head ignored (the WAL holds the head's samples), no
                                 * compaction; appenders and admin calls fail with MP_EINVAL */
    bool background;            /* run compaction and retention on the db's own thread (default);
                                 * false: only when tsdb_compact is called (tests, tools) */
    struct mp_metrics_registry *metrics; /* self-metrics go here; NULL: not registered */
};

#define TSDB_BLOCK_COMPRESSION_DEFAULT 6

void tsdb_options_init(struct tsdb_options *o);

/* Opens (or creates) the data directory: takes the lock file, loads blocks, replays
 * chunks_head/ and the WAL (repairing a torn tail). 0; MP_EINVAL (bad options); MP_EEXISTS (lock
 * held by a running process); MP_EIO / MP_EPARSE (err names the file). */
MP_NODISCARD int tsdb_open(const struct tsdb_options *o, struct tsdb **out, struct mp_err *err);
/* Stops the background thread, writes the open head chunks' WAL state out, closes files.
 * Queriers and appenders must be closed first. NULL is a no-op. */
void tsdb_close(struct tsdb *db);

/* Runs one round of head compaction, block compaction and retention now. */
MP_NODISCARD int tsdb_compact(struct tsdb *db, struct mp_err *err);

/* ---- appending ------------------------------------------------------------------------------ */

/* A batch (one scrape). Samples are checked as they are added and become visible to queries
 * and durable (WAL) only at commit. */
MP_NODISCARD int tsdb_appender_create(struct tsdb *db, struct tsdb_appender **out);

/* Adds one float sample. ref is what an earlier add returned for the same labels (0 if
 * unknown: the series is then looked up or created from ls, which may be NULL when ref != 0);
 * *ref_out (may be NULL) gets the series ref to pass next time. Refs stay valid until the series
 * leaves the head; a stale ref gives MP_ENOTFOUND (retry with ref 0 and the labels).
 * Errors, as Prometheus's, counted in the self-metrics; the sample is skipped and the batch
 * stays usable: MP_EOUTOFBOUNDS "out of bounds", MP_EOUTOFORDER "out of order sample",
 * MP_EDUPLICATE "duplicate sample for timestamp"; MP_EINVAL for empty or invalid labels. */
MP_NODISCARD int tsdb_appender_add(struct tsdb_appender *a, uint64_t ref,
                                   const struct mp_labels *ls, int64_t t_ms, double v,
                                   uint64_t *ref_out, struct mp_err *err);

/* Adds n float samples at t_ms of series known by their refs (refs[i] from an earlier add,
 * values v[i]): what n calls of tsdb_appender_add(a, refs[i], NULL, t_ms, v[i], NULL, err) do,
 * faster for a scrape of many series: a ref stripe is locked once per run of consecutive refs
 * and series are fetched ahead. status[i] (status may be NULL) gets each sample's result: 0, or
 * as tsdb_appender_add (MP_ENOTFOUND for ref 0 or a stale ref: add that one with its labels;
 * MP_EOUTOFBOUNDS, MP_EOUTOFORDER, MP_EDUPLICATE; MP_ENOMEM for all). Returns 0 when every
 * sample was accepted, else the first failure's status with err describing it; the accepted
 * samples stay in the batch either way. */
MP_NODISCARD int tsdb_appender_add_refs(struct tsdb_appender *a, const uint64_t *refs,
                                        const double *v, size_t n, int64_t t_ms, int *status,
                                        struct mp_err *err);

/* Logs the batch to the WAL, then appends it to the head; frees a. A failed commit (MP_EIO
 * from the WAL) stores nothing of the batch. */
MP_NODISCARD int tsdb_appender_commit(struct tsdb_appender *a, struct mp_err *err);
/* Drops the batch; frees a. NULL is a no-op. */
void tsdb_appender_rollback(struct tsdb_appender *a);

/* ---- reading -------------------------------------------------------------------------------- */

/* A view of all data with timestamps in [mint_ms, maxt_ms] (both inclusive), consistent for its
 * lifetime: blocks it reads are not deleted and head chunks not truncated until it is closed. */
MP_NODISCARD int tsdb_querier_open(struct tsdb *db, int64_t mint_ms, int64_t maxt_ms,
                                   struct tsdb_querier **out, struct mp_err *err);
void tsdb_querier_close(struct tsdb_querier *q); /* NULL is a no-op */

/* Series matching every matcher (Prometheus semantics: a matcher that accepts "" also accepts
 * series without the label), with at least one sample in the range, in label-set order, each
 * series once even when head and blocks both hold it. n >= 1. The set lives until freed (before
 * its querier is closed). */
MP_NODISCARD int tsdb_querier_select(struct tsdb_querier *q, const struct mp_matcher *const *m,
                                     size_t n, struct tsdb_series_set **out, struct mp_err *err);

/* Advances to the next series. 0, MP_EEOF, or an error (MP_EIO, MP_EPARSE: a damaged block). */
MP_NODISCARD int tsdb_series_set_next(struct tsdb_series_set *s, struct mp_err *err);
/* Labels of the current series; borrowed until the next call to next. */
const struct mp_labels *tsdb_series_set_labels(const struct tsdb_series_set *s);
/* (Added in session 10, for the engine.) The labels of the current series with one reference
 * for the caller, who releases it: the same as mp_labels_acquire(tsdb_series_set_labels(s)),
 * but the series set hands over its own reference when it can, saving the atomic
 * acquire/release pair per series. tsdb_series_set_labels(s) keeps returning the same pointer
 * until the next call to next; after a take it is valid as long as the caller's reference. */
struct mp_labels *tsdb_series_set_labels_take(struct tsdb_series_set *s);
void tsdb_series_set_free(struct tsdb_series_set *s); /* NULL is a no-op */

/* One chunk of the current series, in time order. data is borrowed until the next call to
 * tsdb_series_set_next. Chunks never overlap (overlapping ones are merged and re-encoded) and
 * deleted intervals are already removed; samples outside the querier's range may be present. */
struct tsdb_chunk {
    int64_t mint_ms, maxt_ms;
    uint8_t encoding; /* enum tsdb_chunk_encoding */
    const uint8_t *data;
    size_t len;
};
/* The chunks of the current series: *out borrowed until the next call to next. */
MP_NODISCARD int tsdb_series_set_chunks(struct tsdb_series_set *s, const struct tsdb_chunk **out,
                                        size_t *n, struct mp_err *err);

/* Samples of the current series in time order, inside the querier's range. The caller embeds
 * the iterator; it is valid until the next call to tsdb_series_set_next. */
struct tsdb_sample_iter {
    const struct tsdb_chunk *chunks;
    size_t n, i;
    int64_t mint_ms, maxt_ms;
    struct tsdb_xor_iter xi;
    int err;
};
void tsdb_series_set_iter(struct tsdb_series_set *s, struct tsdb_sample_iter *it);
/* 0 with the next sample, MP_EEOF, MP_EPARSE (sticky). */
int tsdb_sample_iter_next(struct tsdb_sample_iter *it, int64_t *t_ms, double *v);
/* First sample with t >= t_ms (the current one if it qualifies). */
int tsdb_sample_iter_seek(struct tsdb_sample_iter *it, int64_t t_ms, int64_t *ts_ms, double *v);

/* Label names of series matching m[0..n) (all series when n == 0) with data in the range,
 * sorted, each once: fn(ctx, name) for each; fn may stop the walk with a negative status. */
MP_NODISCARD int tsdb_querier_label_names(struct tsdb_querier *q,
                                          const struct mp_matcher *const *m, size_t n,
                                          int (*fn)(void *ctx, struct mp_str name), void *ctx,
                                          struct mp_err *err);
/* Values of label name among series matching m[0..n), sorted, each once. */
MP_NODISCARD int tsdb_querier_label_values(struct tsdb_querier *q, struct mp_str name,
                                           const struct mp_matcher *const *m, size_t n,
                                           int (*fn)(void *ctx, struct mp_str value), void *ctx,
                                           struct mp_err *err);

/* ---- admin (Prometheus /api/v1/admin/tsdb/...) ---------------------------------------------- */

/* Deletes the samples in [mint_ms, maxt_ms] of the series matching m[0..n) (n >= 1): tombstones
 * in every block and in the head (logged to the WAL); queries stop seeing them at once, the
 * bytes go at the next compaction or tsdb_clean_tombstones. */
MP_NODISCARD int tsdb_delete_series(struct tsdb *db, const struct mp_matcher *const *m, size_t n,
                                    int64_t mint_ms, int64_t maxt_ms, struct mp_err *err);
/* Rewrites every block that has tombstones without the deleted data. */
MP_NODISCARD int tsdb_clean_tombstones(struct tsdb *db, struct mp_err *err);
/* Writes a snapshot into <data dir>/snapshots/<name>: the blocks (hard links) and, unless
 * skip_head, the head as one more block. *name_out gets the folder name (Prometheus's "20060102T150405Z-<16 hex>"). */
MP_NODISCARD int tsdb_snapshot(struct tsdb *db, bool skip_head, char name_out[64],
                               struct mp_err *err);

/* ---- status --------------------------------------------------------------------------------- */

struct tsdb_head_stats {
    uint64_t num_series;
    uint64_t num_chunks;
    int64_t min_time_ms, max_time_ms; /* INT64_MAX, INT64_MIN while empty */
    uint64_t num_label_pairs;
};
void tsdb_head_stats_get(struct tsdb *db, struct tsdb_head_stats *out);

/* Cardinality of the head, as /api/v1/status/tsdb: the top `limit` entries of each list, sorted
 * by count descending then name. Strings are copies owned by the result. */
struct tsdb_card_entry {
    char *name;
    uint64_t count;
};
struct tsdb_card_stats {
    struct tsdb_head_stats head;
    struct tsdb_card_entry *series_by_metric;      /* __name__ value -> series */
    size_t n_series_by_metric;
    struct tsdb_card_entry *label_value_counts;    /* label name -> distinct values */
    size_t n_label_value_counts;
    struct tsdb_card_entry *memory_by_label;       /* label name -> bytes of its values */
    size_t n_memory_by_label;
    struct tsdb_card_entry *series_by_label_pair;  /* "name=value" -> series */
    size_t n_series_by_label_pair;
};
MP_NODISCARD int tsdb_card_stats_get(struct tsdb *db, size_t limit, struct tsdb_card_stats *out,
                                     struct mp_err *err);
void tsdb_card_stats_fini(struct tsdb_card_stats *s);

/* ==== Tools: backfill and block analysis (promtool tsdb create-blocks-from / analyze) =========
 *
 * struct tsdb_block_builder turns samples of one time window into one block, as Prometheus's
 * tsdb.BlockWriter does for promtool's backfill: an in-memory head (no WAL, no chunks_head) whose
 * chunk range is twice the window, so every sample of the window is appendable, persisted with
 * the same block writer as head compaction. Samples go in batches of TSDB_BUILDER_BATCH; as in
 * Prometheus, order is checked against committed data only, so an out-of-order or duplicate
 * sample inside one batch is dropped silently and one in a later batch is an error.
 * Memory: the whole window's samples (compressed) are held until finish.
 *
 * Thread safety: a builder belongs to one thread. tsdb_analyze opens the directory read-only and
 * may run while a server uses it. */

#define TSDB_BUILDER_BATCH 5000 /* promtool's maxSamplesInAppender */

struct tsdb_block_builder;

/* What a written block holds, for promtool's block table. */
struct tsdb_block_info {
    char ulid[27]; /* 26 characters and NUL */
    int64_t min_time_ms, max_time_ms; /* first sample, last sample + 1 */
    uint64_t num_samples, num_chunks, num_series;
    uint64_t size_bytes; /* index + chunks + tombstones + meta.json, as Prometheus's Block.Size */
};

/* A builder for samples in [mint_ms, maxt_ms) whose block goes to out_dir/<ULID> (out_dir must
 * exist). MP_EINVAL (empty window), MP_ENOMEM. */
MP_NODISCARD int tsdb_block_builder_create(const char *out_dir, int64_t mint_ms, int64_t maxt_ms,
                                           struct tsdb_block_builder **out, struct mp_err *err);
/* Adds one sample. MP_EOUTOFBOUNDS outside the window; the head's errors (tsdb_appender_add:
 * "out of order sample", "duplicate sample for timestamp") for samples older than the last
 * committed batch; MP_EINVAL for empty labels. The builder stays usable after an error. */
MP_NODISCARD int tsdb_block_builder_add(struct tsdb_block_builder *b, const struct mp_labels *ls,
                                        int64_t t_ms, double v, struct mp_err *err);
/* Commits the last batch and writes the block: minTime = first sample, maxTime = last + 1,
 * compaction level 1 with itself as source (Prometheus's BlockWriter.Flush). *written false and
 * *info untouched when no sample was added (Prometheus's ErrNoSeriesAppended). Call once. */
MP_NODISCARD int tsdb_block_builder_finish(struct tsdb_block_builder *b, bool *written,
                                           struct tsdb_block_info *info, struct mp_err *err);
void tsdb_block_builder_destroy(struct tsdb_block_builder *b); /* NULL is a no-op */

/* Size and stats of the block in dir (meta.json, index, chunks), for printing after finish.
 * MP_EIO / MP_EPARSE. */
MP_NODISCARD int tsdb_block_info_get(const char *dir, struct tsdb_block_info *out,
                                     struct mp_err *err);

/* Writes b as a row of promtool's block table (ULID, min time, max time, duration, samples,
 * chunks, series, size), aligned as Go's tabwriter aligns one printBlocks call; with header the
 * column titles first. human: times as "2006-01-02 15:04:05 +0000 UTC", sizes as "1KiB512B". */
void tsdb_block_info_print(FILE *out, const struct tsdb_block_info *b, bool header, bool human);

/* promtool tsdb analyze: writes to out the report of promtool 2.42 for block block_id (NULL:
 * the block with the latest min time) of the data directory dir: block ID, duration, series,
 * label names, postings, the top `limit` entries of the churn, label pair, value length and
 * cardinality lists (ties ordered by name, where Prometheus leaves them in map order); with
 * extended, promtool's compaction fullness histogram; then a "Chunk statistics" section of our
 * own (chunks, samples, bytes, bytes per sample, samples per chunk). MP_ENOTFOUND "block X not
 * found" (also when dir has no block), MP_EIO / MP_EPARSE from the block. */
MP_NODISCARD int tsdb_analyze(const char *dir, const char *block_id, size_t limit, bool extended,
                              FILE *out, struct mp_err *err);

#endif
