/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/chunks.h (private to tsdb): the chunk segment files of a block, <block>/chunks/000001,
 * 000002, ... as Prometheus's tsdb/chunks writes them (spec tsdb.md 4.3, 6 items 7-8):
 *
 *   segment = BE32 magic 0x85BD40DD | version 0x01 | 3 zero bytes | chunk*
 *   chunk   = uvarint len(data) | encoding byte | data | BE32 CRC32C(encoding byte + data)
 *   ref     = segment index (0-based: 000001 is 0) << 32 | offset of the uvarint
 *
 * Also the byte helpers (big-endian, Go uvarint) shared with tsdb/head_chunks.c.
 *
 * Thread safety: a writer belongs to one thread at a time. A reader is immutable once open:
 * any number of threads may call get/check/walk at once. Slices a reader hands out point into
 * its read-only mappings and stay valid until tsdb_chunks_reader_close. */
#ifndef TSDB_CHUNKS_H
#define TSDB_CHUNKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "tsdb/bytes.h"
#include "tsdb/tsdb.h"

#define TSDB_CHUNKS_MAGIC UINT32_C(0x85BD40DD)
#define TSDB_CHUNKS_VERSION 1u
#define TSDB_CHUNKS_HEADER_SIZE 8u
/* Prometheus DefaultChunkSegmentSize (--storage.tsdb.max-block-chunk-segment-size). */
#define TSDB_CHUNKS_DEFAULT_SEGMENT_SIZE (UINT64_C(512) << 20)
/* The segment-size estimate counts the length field at its 32-bit maximum (binary.MaxVarintLen32),
 * as Prometheus does, so cut points match its. */
#define TSDB_CHUNKS_LEN_FIELD_MAX 5u

/* ---- writer ------------------------------------------------------------------------------- */

struct tsdb_chunks_writer_options {
    uint64_t segment_size; /* TSDB_CHUNKS_HEADER_SIZE + 1 .. UINT32_MAX; default 512 MiB */
    size_t buffer_size;    /* write buffer, >= 4096; default 1 MiB */
    bool fsync;            /* fsync each finished segment and the dir at close; default true */
};

void tsdb_chunks_writer_options_init(struct tsdb_chunks_writer_options *o);

struct tsdb_chunks_writer; /* opaque */

/* Starts writing segments into dir (created if missing; one level). The first segment is
 * created with the first chunk, so a writer that writes nothing leaves dir empty, as
 * Prometheus's. opts NULL = defaults. 0; MP_EINVAL (bad options); MP_EIO. */
MP_NODISCARD int tsdb_chunks_writer_open(const char *dir,
                                         const struct tsdb_chunks_writer_options *opts,
                                         struct tsdb_chunks_writer **out, struct mp_err *err);

/* Appends chunks[0..n) (the chunks of one series, as Prometheus's WriteChunks; only encoding,
 * data and len are used) and stores each chunk's ref in refs[i]. Cuts a new segment before the
 * part of the batch that would overflow the current one, with Prometheus's estimate (length
 * field counted as 5 bytes); the first chunk of a segment is always accepted, so one chunk larger
 * than the segment size still gets written. Buffered: bytes reach the files by close at the
 * latest. 0; MP_EEXISTS (the next segment file already exists); MP_EIO (then the writer is
 * broken: every later call fails the same way); MP_EINVAL (n == 0 or a NULL argument). */
MP_NODISCARD int tsdb_chunks_writer_write(struct tsdb_chunks_writer *w,
                                          const struct tsdb_chunk *chunks, size_t n,
                                          uint64_t *refs, struct mp_err *err);

/* Segments created so far and bytes written to them (headers included, buffer included). */
size_t tsdb_chunks_writer_segments(const struct tsdb_chunks_writer *w);
uint64_t tsdb_chunks_writer_size(const struct tsdb_chunks_writer *w);

/* Flushes, fsyncs the last segment and the directory (unless !fsync), closes and frees w.
 * Returns the first error the writer met (an earlier write's included); w is freed either way.
 * NULL is a no-op returning 0. */
int tsdb_chunks_writer_close(struct tsdb_chunks_writer *w, struct mp_err *err);

/* ---- reader ------------------------------------------------------------------------------- */

struct tsdb_chunks_reader; /* opaque */

/* Maps every segment of dir (PROT_READ, MAP_SHARED) and checks its header. The files must be
 * numbered 000001, 000002, ... without gaps (a ref's segment index is the file's position).
 * 0; MP_EPARSE (gap, short file, bad magic or version: err names the file); MP_EIO. */
MP_NODISCARD int tsdb_chunks_reader_open(const char *dir, struct tsdb_chunks_reader **out,
                                         struct mp_err *err);

/* Reads data[0..len) as the single segment 000001 (tests, fuzzing); data must outlive r. */
MP_NODISCARD int tsdb_chunks_reader_open_mem(const uint8_t *data, size_t len,
                                             struct tsdb_chunks_reader **out, struct mp_err *err);

void tsdb_chunks_reader_close(struct tsdb_chunks_reader *r); /* NULL is a no-op */

/* The chunk at ref: *enc gets its encoding byte (may be NULL), *data and *len its data, borrowed
 * until close. The CRC is not checked (see tsdb_chunks_reader_check). Never reads outside the
 * segment. 0, or MP_EPARSE for a ref outside every segment or a record that does not fit in it
 * (err: "DIR/000001: offset 123: ..."). */
MP_NODISCARD int tsdb_chunks_reader_get(const struct tsdb_chunks_reader *r, uint64_t ref,
                                        uint8_t *enc, const uint8_t **data, size_t *len,
                                        struct mp_err *err);

/* As get, then verifies the record's CRC32C: 0 or MP_EPARSE ("checksum mismatch"). */
MP_NODISCARD int tsdb_chunks_reader_check(const struct tsdb_chunks_reader *r, uint64_t ref,
                                          struct mp_err *err);

/* Calls fn for every chunk of every segment in file order, each CRC-checked first. fn's slice
 * is borrowed until close; a negative return from fn stops the walk and is returned.
 * 0, MP_EPARSE (first bad record, err has its position), or fn's status. */
typedef int tsdb_chunks_walk_fn(void *ctx, uint64_t ref, uint8_t enc, const uint8_t *data,
                                size_t len);
MP_NODISCARD int tsdb_chunks_reader_walk(const struct tsdb_chunks_reader *r,
                                         tsdb_chunks_walk_fn *fn, void *ctx, struct mp_err *err);

/* Drops this process's mapping of the segments' pages (MADV_DONTNEED; see
 * tsdb_head_chunks_drop_pages). */
void tsdb_chunks_reader_drop_pages(const struct tsdb_chunks_reader *r);

/* Number of segments and their total size in bytes (for self-metrics and block size). */
size_t tsdb_chunks_reader_segments(const struct tsdb_chunks_reader *r);
uint64_t tsdb_chunks_reader_size(const struct tsdb_chunks_reader *r);

/* ---- directory helpers (shared with tsdb/head_chunks.c) ----------------------------------- */

/* Numbers of the files in dir whose names are all digits (value <= UINT32_MAX, at most 10
 * digits), sorted ascending; *out is mp_free'd by the caller (NULL when *n == 0). 0 or MP_EIO. */
MP_NODISCARD int tsdb_chunks_list_numbered(const char *dir, uint32_t **out, size_t *n,
                                           struct mp_err *err);

/* The file name of number num: 6 digits at least, as Go's "%0.6d". */
void tsdb_chunks_file_name(char buf[16], uint32_t num);

/* mkdir(dir) unless it exists, then opens it (O_DIRECTORY). 0 or MP_EIO. */
MP_NODISCARD int tsdb_chunks_open_dir(const char *dir, bool create, int *dirfd,
                                      struct mp_err *err);

#endif
