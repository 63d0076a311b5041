/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/zchunks.h (private to tsdb): compressed chunk segments, meshprom's block chunk format.
 *
 * Prometheus stores a block's chunks one after another, uncompressed (chunks.h). XOR chunks of
 * neighbouring series (the index orders series by labels: one metric's series are adjacent)
 * repeat each other's bit patterns, so the same records compressed in frames of about 1 MiB take
 * about half the space (bench/bench_tsdb_disk). The chunk data inside stays Prometheus's XOR
 * bytes, so what remote read and the StoreAPI serve is unchanged.
 *
 *   segment = header | frame* | frame table | footer              (<block>/chunks/000001, ...)
 *   header  = BE32 magic 0x85BD40DF | version 0x01 | 3 zero bytes
 *   frame   = one zstd frame; decompressed: chunk records exactly as chunks.h's
 *             (uvarint len | encoding | data | BE32 CRC32C(encoding + data))
 *   table   = nframes x (BE64 file offset | BE32 compressed size | BE32 decompressed size)
 *   footer  = BE64 table offset | BE32 nframes | BE32 CRC32C(table) | BE32 magic  (20 bytes)
 *   ref     = segment index (0-based) << 48 | frame index << 24 | offset in the frame
 *
 * A frame decompresses to at most TSDB_ZCHUNKS_MAX_FRAME bytes (checked against the table before
 * any allocation). Reading goes through a struct tsdb_zchunks_cache that the caller owns (one
 * per querier source): decompressed frames stay in it, so the slices handed out are valid until
 * the caller resets the cache; tsdb_zchunks_cache_trim drops everything once the cache holds
 * more than its budget, to be called when no slice is in use any more.
 *
 * Thread safety: a writer and a cache belong to one thread at a time; a reader is immutable
 * once open and may be shared (each thread with its own cache). */
#ifndef TSDB_ZCHUNKS_H
#define TSDB_ZCHUNKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "tsdb/tsdb.h"

#define TSDB_ZCHUNKS_MAGIC UINT32_C(0x85BD40DF)
#define TSDB_ZCHUNKS_VERSION 1u
#define TSDB_ZCHUNKS_FRAME_DEFAULT (1u << 20)
#define TSDB_ZCHUNKS_MAX_FRAME (16u << 20) /* offsets in a frame are 24-bit */
#define TSDB_ZCHUNKS_LEVEL_DEFAULT 3

struct tsdb_zchunks_writer_options {
    uint64_t segment_size; /* compressed bytes before a new segment; default 512 MiB */
    size_t frame_size;     /* uncompressed bytes per frame, 4 KiB .. MAX_FRAME - a chunk */
    int level;             /* zstd level, 1..19 */
    bool fsync;
};
void tsdb_zchunks_writer_options_init(struct tsdb_zchunks_writer_options *o);

struct tsdb_zchunks_writer;

/* Writes segments into dir (created if missing). 0, MP_EINVAL, MP_EIO. */
MP_NODISCARD int tsdb_zchunks_writer_open(const char *dir,
                                          const struct tsdb_zchunks_writer_options *opts,
                                          struct tsdb_zchunks_writer **out, struct mp_err *err);
/* Adds the chunks of one series, refs[i] for each. A chunk larger than a frame may hold gets
 * MP_EINVAL. MP_EIO, MP_ENOMEM. */
MP_NODISCARD int tsdb_zchunks_writer_write(struct tsdb_zchunks_writer *w,
                                           const struct tsdb_chunk *chunks, size_t n,
                                           uint64_t *refs, struct mp_err *err);
/* Compressed bytes written so far (headers, tables included). */
uint64_t tsdb_zchunks_writer_size(const struct tsdb_zchunks_writer *w);
/* Flushes the last frame, writes table and footer, fsyncs; frees w either way. NULL: 0. */
int tsdb_zchunks_writer_close(struct tsdb_zchunks_writer *w, struct mp_err *err);

struct tsdb_zchunks_reader;

/* Opens every segment of dir. MP_ENOTFOUND if the first segment is not in this format (a
 * Prometheus chunks dir: use chunks.h), MP_EPARSE for damage, MP_EIO. */
MP_NODISCARD int tsdb_zchunks_reader_open(const char *dir, struct tsdb_zchunks_reader **out,
                                          struct mp_err *err);
/* Reads data[0..len) as the single segment 000001 (tests, fuzzing); data must outlive r. */
MP_NODISCARD int tsdb_zchunks_reader_open_mem(const uint8_t *data, size_t len,
                                              struct tsdb_zchunks_reader **out,
                                              struct mp_err *err);
void tsdb_zchunks_reader_close(struct tsdb_zchunks_reader *r); /* NULL is a no-op */
uint64_t tsdb_zchunks_reader_size(const struct tsdb_zchunks_reader *r);
void tsdb_zchunks_reader_drop_pages(const struct tsdb_zchunks_reader *r);

struct tsdb_zchunks_cache {
    struct zframe *frames; /* decompressed frames held */
    size_t n, cap;
    size_t bytes, budget;
};
void tsdb_zchunks_cache_init(struct tsdb_zchunks_cache *c, size_t budget_bytes);
void tsdb_zchunks_cache_fini(struct tsdb_zchunks_cache *c);
/* Drops every frame when over budget (no slice from the cache may be in use). */
void tsdb_zchunks_cache_trim(struct tsdb_zchunks_cache *c);

/* The chunk at ref, decompressing its frame into c if needed. The record's CRC is not checked
 * (as chunks.h's get; zstd checks the frame). Slices valid until c is trimmed or fini'd.
 * 0, MP_EPARSE (bad ref, damaged frame), MP_ENOMEM. */
MP_NODISCARD int tsdb_zchunks_reader_get(const struct tsdb_zchunks_reader *r,
                                         struct tsdb_zchunks_cache *c, uint64_t ref,
                                         uint8_t *enc, const uint8_t **data, size_t *len,
                                         struct mp_err *err);

#endif
