/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/head_chunks.h (private to tsdb): the head's full chunks on disk, <data>/chunks_head/000001,
 * 000002, ... in Prometheus's format (spec tsdb.md 2.4, 6 items 7-8; tsdb/README.md):
 *
 *   file   = BE32 magic 0x0130BC91 | version 0x01 | 3 zero bytes | record*
 *   record = BE64 series ref | BE64 mint | BE64 maxt | encoding byte | uvarint len | data
 *            | BE32 CRC32C over every preceding byte of the record
 *   ref    = file number (1-based, as in the name) << 32 | offset of the record
 *
 * Full chunks leave the heap: they are written with write() through one write buffer and read
 * back through read-only MAP_SHARED mappings, so what the head keeps per chunk is its 8-byte ref
 * and the chunk bytes live in the page cache, not in anonymous memory.
 *
 * Threads and locks: one writer mutex serialises write, cut_new_file, truncate, flush, stats
 * and close's flush, so any thread may call those (normally the appender and the compactor).
 * get may be called from any number of threads at once, concurrently with all of them except
 * close. It holds a read lock on the file table only while it locates the record: every file is
 * mapped once, at its full size (TSDB_HEAD_CHUNKS_MAX_FILE_SIZE for files this process creates)
 * and the mapping never moves, so the slice get returns stays valid after the lock is dropped,
 * until truncate deletes that file or close. A chunk still in the write buffer is not in the
 * file yet: get then takes the writer mutex and flushes the buffer (rare: only chunks written
 * since the last flush), and reads the file. Lock order: writer mutex, then file table. */
#ifndef TSDB_HEAD_CHUNKS_H
#define TSDB_HEAD_CHUNKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define TSDB_HEAD_CHUNKS_MAGIC UINT32_C(0x0130BC91)
#define TSDB_HEAD_CHUNKS_VERSION 1u
#define TSDB_HEAD_CHUNKS_HEADER_SIZE 8u
/* Prometheus MaxHeadChunkFileSize. */
#define TSDB_HEAD_CHUNKS_MAX_FILE_SIZE (128u << 20)
/* Prometheus's default write buffer and the range of its flag. */
#define TSDB_HEAD_CHUNKS_DEFAULT_BUFFER_SIZE (4u << 20)
#define TSDB_HEAD_CHUNKS_MIN_BUFFER_SIZE (64u << 10)
#define TSDB_HEAD_CHUNKS_MAX_BUFFER_SIZE (8u << 20)
/* Series ref, mint, maxt, encoding: the part of a record before the uvarint length. */
#define TSDB_HEAD_CHUNKS_RECORD_FIXED 25u
#define TSDB_HEAD_CHUNKS_CRC_SIZE 4u

/* ---- one record --------------------------------------------------------------------------- */

struct tsdb_head_chunk_record {
    uint64_t series_ref;
    int64_t mint_ms, maxt_ms;
    uint8_t encoding;    /* enum tsdb_chunk_encoding, | TSDB_ENC_OOO_FLAG for out-of-order */
    const uint8_t *data; /* into the parsed bytes */
    size_t len;
    size_t size;         /* bytes of the whole record, CRC included */
};

/* Bytes a record with len bytes of data takes (0 if that overflows size_t). */
size_t tsdb_head_chunks_record_size(size_t len);

/* Encodes a record into out, which has room for tsdb_head_chunks_record_size(r->len) bytes;
 * r->size is ignored. Returns the bytes written. */
size_t tsdb_head_chunks_record_encode(uint8_t *out, const struct tsdb_head_chunk_record *r);

/* Parses the record at p[0..avail) without reading outside it. 0: *r filled. MP_EEOF: the
 * 25-byte fixed part is all zeros (where Prometheus's reader stops: the unwritten end of a file).
 * MP_EAGAIN: the record runs past avail. MP_EPARSE: overflowing length, or (verify_crc) a
 * checksum mismatch; *why (may be NULL) gets a static description for MP_EAGAIN/MP_EPARSE. */
int tsdb_head_chunks_record_parse(const uint8_t *p, size_t avail, bool verify_crc,
                                  struct tsdb_head_chunk_record *r, const char **why);

/* ---- the chunks_head directory ------------------------------------------------------------ */

struct tsdb_head_chunks_options {
    size_t max_file_size;     /* 64 .. TSDB_HEAD_CHUNKS_MAX_FILE_SIZE; default the maximum */
    size_t write_buffer_size; /* MIN..MAX_BUFFER_SIZE; default 4 MiB */
    bool fsync;               /* fdatasync a file when it is finished and at close, fsync the
                               * dir after creating or deleting files; default true */
};

void tsdb_head_chunks_options_init(struct tsdb_head_chunks_options *o);

struct tsdb_head_chunks; /* opaque */

/* Replay callback: one call per valid record, in file and offset order. num_samples is the
 * BE16 count at the start of the chunk data (0 if the data is shorter). A negative return stops
 * the open, which then fails with it. */
typedef int tsdb_head_chunks_replay_fn(void *ctx, uint64_t series_ref, uint64_t chunk_ref,
                                       int64_t mint_ms, int64_t maxt_ms, uint8_t encoding,
                                       uint16_t num_samples);

/* Opens dir (created if missing), maps every file in it and walks all records, calling fn (may
 * be NULL) for each. A torn or corrupt tail is repaired as Prometheus's reader sees it: the walk
 * of a file stops at the first record whose fixed part is all zeros, that is cut short by the end
 * of the file, or whose CRC does not match. If anything but zero bytes follows that point, the
 * file is truncated there (deleted if not even its header is intact) and every later file is
 * deleted, with one MP_LOG_WARN line. Records before the damage are kept and replayed.
 * New chunks always go to a new file (as Prometheus, the first write after open cuts one).
 * 0; MP_EINVAL (bad options); MP_EPARSE (file numbers with a gap, a file whose header has the
 * wrong magic or version: not ours, so not repaired); MP_EIO; fn's status. */
MP_NODISCARD int tsdb_head_chunks_open(const char *dir, const struct tsdb_head_chunks_options *opts,
                                       tsdb_head_chunks_replay_fn *fn, void *ctx,
                                       struct tsdb_head_chunks **out, struct mp_err *err);

/* Appends one chunk and returns its ref in *chunk_ref. The record goes to the write buffer
 * (flushed with write() when full); a new file is cut first when none is open, cut_new_file
 * asked for it, or the record would take the file past max_file_size.
 * 0; MP_EINVAL (the record does not fit in an empty file or in the write buffer); MP_EIO (a
 * flush or a new file failed; the chunk is not written and earlier buffered ones stay buffered
 * for the next attempt). */
MP_NODISCARD int tsdb_head_chunks_write(struct tsdb_head_chunks *hc, uint64_t series_ref,
                                        int64_t mint_ms, int64_t maxt_ms, uint8_t encoding,
                                        const uint8_t *data, size_t len, uint64_t *chunk_ref,
                                        struct mp_err *err);

/* The chunk at ref, readable at once after write returned it and from any thread: *encoding (may
 * be NULL), *data and *len are borrowed from the mapping until truncate deletes the file or
 * close. The CRC is not checked (open checked every record on disk; later ones are this
 * process's own). 0; MP_ENOTFOUND (no such file: never written or truncated away); MP_EPARSE (no
 * record at that offset; err names file and offset); MP_EIO (the flush it needed failed). */
MP_NODISCARD int tsdb_head_chunks_get(struct tsdb_head_chunks *hc, uint64_t ref, uint8_t *encoding,
                                      const uint8_t **data, size_t *len, struct mp_err *err);

/* The next write starts a new file (Prometheus's CutNewFile, after a head compaction), so that
 * files before it can be deleted once no series refers to them. Lazy: no empty file appears. */
void tsdb_head_chunks_cut_new_file(struct tsdb_head_chunks *hc);

/* Number of the file writes go to now, or, before the first write after open, of the last file
 * present (0 when there is none). */
uint32_t tsdb_head_chunks_file_number(struct tsdb_head_chunks *hc);

/* Deletes (unmaps, unlinks) every file numbered below before_file, except the file being written.
 * The caller guarantees that no ref into them is used any more, nor a slice from get.
 * 0 or MP_EIO (the first failure; the other files are still deleted). */
MP_NODISCARD int tsdb_head_chunks_truncate(struct tsdb_head_chunks *hc, uint32_t before_file,
                                           struct mp_err *err);

/* Drops this process's mapping of the files' pages (madvise MADV_DONTNEED on a read-only
 * shared mapping: the data stays in the page cache and on disk, the next read faults it back).
 * After background work that read many chunks (compaction), so its pages do not stay counted in
 * the process's RSS. Only when replay or background work read the files since the last drop
 * (tsdb_head_chunks_note_background_read): pages that queries touched stay mapped. Safe while
 * others read. */
void tsdb_head_chunks_drop_pages(struct tsdb_head_chunks *hc);
void tsdb_head_chunks_note_background_read(struct tsdb_head_chunks *hc);

/* Hands the write buffer to the kernel. 0 or MP_EIO. */
MP_NODISCARD int tsdb_head_chunks_flush(struct tsdb_head_chunks *hc, struct mp_err *err);

struct tsdb_head_chunks_stats {
    uint64_t files;          /* files present */
    uint64_t bytes;          /* their size, buffered bytes included */
    uint64_t chunks_written; /* by this process */
    uint64_t flushes;        /* write() calls */
    uint64_t write_errors;
    uint64_t repairs;        /* files truncated or deleted by open */
};
void tsdb_head_chunks_stats_get(struct tsdb_head_chunks *hc, struct tsdb_head_chunks_stats *out);

/* Flushes, fdatasyncs the current file (unless !fsync), unmaps and frees everything. No other
 * call may run concurrently or follow. Returns the first error; hc is freed either way.
 * NULL is a no-op returning 0. */
int tsdb_head_chunks_close(struct tsdb_head_chunks *hc, struct mp_err *err);

#endif
