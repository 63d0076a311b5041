/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/wal.h (private to tsdb): the write-ahead log, laid out as Prometheus's tsdb/wlog
 * (spec tsdb.md 3.1-3.5; tsdb/WAL.md): a directory of segment files 00000000, 00000001, ...
 * made of 32 KiB pages; each record (optionally snappy- or zstd-compressed as a whole) is
 * split into FULL or FIRST/MIDDLE.../LAST fragments with a 7-byte header (type|flags byte,
 * BE16 length, BE32 CRC32C of the stored bytes). Records never cross segments. Checkpoints
 * are directories checkpoint.NNNNNNNN holding segments of the same format.
 *
 * Thread safety: struct tsdb_wal is fully thread-safe: log, sync and next_segment serialise on
 * one internal mutex (the head commits from several scrape threads); close must not race with
 * other calls. A background flusher thread (TSDB_WAL_FSYNC_INTERVAL) takes that mutex only to
 * snapshot the file descriptor, never across fsync. struct tsdb_wal_reader belongs to one
 * thread at a time. Repair and checkpoint must not run while a writer is open on the dir. */
#ifndef TSDB_WAL_H
#define TSDB_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/str.h"
#include "tsdb/tsdb.h"

#define TSDB_WAL_PAGE_SIZE 32768u
#define TSDB_WAL_HEADER_SIZE 7u
#define TSDB_WAL_DEFAULT_SEGMENT_SIZE (128u * 1024u * 1024u)
/* Largest record (after decompression) a reader accepts; bounds memory on corrupt input. */
#define TSDB_WAL_MAX_RECORD_SIZE (512u * 1024u * 1024u)

/* Fragment header byte: bits 0-2 type, bit 3 snappy, bit 4 zstd (Prometheus wlog.go). */
enum tsdb_wal_frag {
    TSDB_WAL_FRAG_PAGE_TERM = 0,
    TSDB_WAL_FRAG_FULL = 1,
    TSDB_WAL_FRAG_FIRST = 2,
    TSDB_WAL_FRAG_MIDDLE = 3,
    TSDB_WAL_FRAG_LAST = 4,
};
#define TSDB_WAL_FLAG_SNAPPY 0x08u
#define TSDB_WAL_FLAG_ZSTD 0x10u

struct tsdb_wal_options {
    size_t segment_size; /* multiple of TSDB_WAL_PAGE_SIZE, >= one page; default 128 MiB */
    enum tsdb_wal_compression compression;
    enum tsdb_wal_fsync fsync;
    int64_t fsync_interval_ms; /* TSDB_WAL_FSYNC_INTERVAL only; default 1000 */
};

void tsdb_wal_options_init(struct tsdb_wal_options *o);

struct tsdb_wal; /* opaque writer */

struct tsdb_wal_stats {
    uint64_t records;       /* records logged */
    uint64_t bytes_written; /* bytes handed to write(), padding included */
    uint64_t writes;        /* write() calls */
    uint64_t fsyncs;        /* successful fdatasync calls */
    uint64_t fsync_errors;
    uint64_t write_errors;
    uint64_t segments_created;
};

/* Opens dir (created if missing) for appending. As Prometheus, always starts a new segment,
 * numbered one past the highest segment or checkpoint present; older segments are never
 * appended to (run the reader and tsdb_wal_repair first). opts NULL = defaults.
 * 0; MP_EINVAL (bad options); MP_EIO (err names the path and errno text). */
MP_NODISCARD int tsdb_wal_open(const char *dir, const struct tsdb_wal_options *opts,
                               struct tsdb_wal **out, struct mp_err *err);

/* Appends records[0..n) in order and hands them to the kernel, normally with a single
 * write(). A record may be empty. Records are compressed when that makes them strictly
 * shorter. Allocates only when a record is larger than any before it (compression scratch).
 * 0; MP_ENOMEM; MP_EIO: none of this call's records is in the log unless part of the batch had
 * already been written when the error hit (a batch larger than the 1 MiB write buffer, or one
 * that cut a segment): such a commit may reappear on replay, as in Prometheus. */
MP_NODISCARD int tsdb_wal_log(struct tsdb_wal *w, const struct mp_str *records, size_t n,
                              struct mp_err *err);

/* Forces everything logged so far to stable storage (fdatasync of the current segment). */
MP_NODISCARD int tsdb_wal_sync(struct tsdb_wal *w, struct mp_err *err);

/* Closes the current segment (last page zero-padded, fsync per policy) and starts the next one;
 * *segment (may be NULL) gets the new segment's number. Used before a checkpoint so that the
 * segments below are complete. */
MP_NODISCARD int tsdb_wal_next_segment(struct tsdb_wal *w, int *segment, struct mp_err *err);

/* Number of the segment being written. */
int tsdb_wal_segment(struct tsdb_wal *w);

void tsdb_wal_stats_get(struct tsdb_wal *w, struct tsdb_wal_stats *out);

/* Pads the last page, writes it, fdatasyncs (unless TSDB_WAL_FSYNC_NONE), stops the flusher and
 * frees w. Returns the first error met while doing so; w is freed either way. NULL is a no-op. */
int tsdb_wal_close(struct tsdb_wal *w, struct mp_err *err);

/* ---- directory helpers -------------------------------------------------------------------- */

/* Lowest and highest segment number in dir (-1, -1 if none). MP_EPARSE if the numbers are not
 * contiguous (Prometheus refuses such a WAL too), MP_EIO. */
MP_NODISCARD int tsdb_wal_segments(const char *dir, int *first, int *last, struct mp_err *err);

/* Highest finished checkpoint.NNNNNNNN in dir (*index = -1 if none; .tmp dirs are ignored). */
MP_NODISCARD int tsdb_wal_checkpoint_last(const char *dir, int *index, struct mp_err *err);

/* ---- reader ------------------------------------------------------------------------------- */

struct tsdb_wal_reader; /* opaque */

/* Where a record or a corruption is: segment number and byte offset in that file; checkpoint
 * >= 0 means the segment lies in checkpoint.<checkpoint>/ (-1: the WAL dir itself). */
struct tsdb_wal_pos {
    int checkpoint;
    int segment;
    uint64_t offset;
};

/* Reads the latest checkpoint (if any), then every segment numbered above it, in order. */
MP_NODISCARD int tsdb_wal_reader_open(const char *dir, struct tsdb_wal_reader **out,
                                      struct mp_err *err);
/* Reads segments first..last of dir only (no checkpoint). */
MP_NODISCARD int tsdb_wal_reader_open_range(const char *dir, int first, int last,
                                            struct tsdb_wal_reader **out, struct mp_err *err);
/* Reads the bytes [data, data + len) as segment 0 (tests, fuzzing); data must outlive r. */
MP_NODISCARD int tsdb_wal_reader_open_mem(const uint8_t *data, size_t len,
                                          struct tsdb_wal_reader **out, struct mp_err *err);
void tsdb_wal_reader_close(struct tsdb_wal_reader *r); /* NULL is a no-op */
/* Lowers the record size cap (default TSDB_WAL_MAX_RECORD_SIZE); larger records are corrupt. */
void tsdb_wal_reader_set_max_record(struct tsdb_wal_reader *r, size_t max);

/* Next record, decompressed. *rec is borrowed until the next call.
 * 0; MP_EEOF at the end; MP_EPARSE: corruption (CRC mismatch, unknown fragment type, bad
 * fragment sequence, non-zero padding, fragment or record cut short by the end of a segment,
 * undecodable compressed data); err reads "DIR: segment 00000003 offset 65543: ..." and
 * tsdb_wal_reader_corruption gives the position. MP_EIO, MP_ENOMEM. Errors are sticky. */
MP_NODISCARD int tsdb_wal_reader_next(struct tsdb_wal_reader *r, const uint8_t **rec,
                                      size_t *len, struct mp_err *err);
/* Position of the start of the last record returned. */
struct tsdb_wal_pos tsdb_wal_reader_pos(const struct tsdb_wal_reader *r);
/* True (and *c filled) when next failed with MP_EPARSE. */
bool tsdb_wal_reader_corruption(const struct tsdb_wal_reader *r, struct tsdb_wal_pos *c);

/* Repairs the WAL in dir after the reader reported corruption c, as Prometheus does: every
 * segment after c->segment is deleted, and c->segment is cut right after the last complete
 * record that ends at or before c->offset, its last page zero-padded; everything is fsynced.
 * MP_EINVAL for a corruption inside a checkpoint (Prometheus treats it as fatal). */
MP_NODISCARD int tsdb_wal_repair(const char *dir, const struct tsdb_wal_pos *c,
                                 struct mp_err *err);

/* ---- checkpoint (tsdb/checkpoint.c) ------------------------------------------------------- */

struct tsdb_wal_checkpoint_stats {
    uint64_t series_kept, series_dropped;
    uint64_t samples_kept, samples_dropped;
    uint64_t tombstones_kept, tombstones_dropped;
    uint64_t other_dropped; /* records of types this engine does not write */
};

/* Builds checkpoint.<last> from the previous checkpoint plus segments first..last of dir:
 * Series whose keep(ctx, ref) is true, samples with t >= mint_ms, tombstone intervals with
 * maxt >= mint_ms. Written to checkpoint.<last>.tmp, fsynced, renamed, then older checkpoints
 * and segments <= last are deleted. The writer must have moved past last
 * (tsdb_wal_next_segment). Corruption in the input fails the checkpoint (no repair). */
MP_NODISCARD int tsdb_wal_checkpoint(const char *dir, int first, int last,
                                     bool (*keep)(void *ctx, uint64_t ref), void *ctx,
                                     int64_t mint_ms, struct tsdb_wal_checkpoint_stats *stats,
                                     struct mp_err *err);

/* ---- CRC32-Castagnoli ---------------------------------------------------------------------- */

/* Updates crc (start with 0) over p[0..n); tsdb_crc32c(0, "123456789", 9) == 0xE3069283.
 * Uses SSE4.2 when the CPU has it, a slicing-by-8 table otherwise. */
uint32_t tsdb_crc32c(uint32_t crc, const void *p, size_t n);
/* The portable path alone (tests compare both). */
uint32_t tsdb_crc32c_portable(uint32_t crc, const void *p, size_t n);

#endif
