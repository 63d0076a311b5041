/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/index.h (private to tsdb): the block index file, Prometheus index format version 2
 * (spec tsdb.md 4.4, Prometheus tsdb/index/index.go), byte-compatible with what Prometheus
 * 2.42-2.55 write:
 *
 *   BE32 magic 0xBAAAD700 | version 2 | symbols | series (16-aligned) | label indices (legacy)
 *   | postings ("","") first, then (name, value) sorted | label offset table (legacy)
 *   | postings offset table | TOC (6 x BE64 offsets, BE32 CRC32C)
 *
 * Writer: streams into one file through a buffer, in the order Prometheus's index.Writer
 * does: every symbol first (sorted, unique), then every series in label-set order, then
 * close writes label indices, postings, both offset tables and the TOC, and fsyncs. Memory:
 * the symbols (their on-disk bytes plus 4 bytes each), a 4-byte counter and hash slot per
 * distinct label pair, and at close the postings (4 bytes per label of every series), which
 * are filled by reading the series section back from the file (as Prometheus 2.55 does).
 *
 * Reader: over a read-only mmap of the file (or caller memory). Open checks magic, version,
 * the TOC and its CRC, and the CRCs of the symbol table and the postings offset table, which
 * it parses (sortedness included) into memory: every symbol's offset (4 bytes per symbol) and
 * every 32nd postings-offset entry of each label name, plus per-name bounds. Series entries and
 * postings lists have their CRC checked when they are read (a long list only at its first read
 * through a reader), so that work is proportional to what is read: one postings list O(its length),
 * one series O(labels + chunks). The legacy label indices and label offset table are written but
 * never read. Every read is bounds-checked; damaged input gives MP_EPARSE with the section and file
 * offset in err, never an over-read.
 *
 * meshprom's compact format (tsdb_index_writer_open_compact; tsdb/INDEX.md) keeps the symbol
 * table and puts series entries and run-coded postings lists into zstd frames; the reader
 * tells the formats apart by the magic and answers every call below for both (compact series
 * refs are 1..N in label order).
 *
 * Thread safety: a writer belongs to one thread. A reader is immutable after open and may be
 * used by any number of threads at once (each with its own output structures); close must not
 * race with other calls. Slices returned by the reader (symbols, label names and values, series
 * labels) point into the mapped file and stay valid until tsdb_index_reader_close.
 * Format notes, memory and measured costs: tsdb/INDEX.md. */
#ifndef TSDB_INDEX_H
#define TSDB_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/labels.h"
#include "common/str.h"
#include "tsdb/ireader.h"

#define TSDB_INDEX_MAGIC 0xBAAAD700u
#define TSDB_INDEX_FORMAT_V2 2
#define TSDB_INDEX_TOC_LEN 52u
/* meshprom's compact format (tsdb/INDEX.md), written for blocks whose chunks are compressed
 * (block_compression_level > 0); Prometheus cannot read it. */
#define TSDB_INDEX_COMPACT_MAGIC 0x4D504958u /* "MPIX" */
#define TSDB_INDEX_COMPACT_V1 1
#define TSDB_INDEX_COMPACT_TOC_LEN 60u

/* One chunk of a series as the index records it. ref = segment_index << 32 | offset
 * (spec 4.3, 0-based segment index). Within a series chunks are in time order with
 * mint_ms > previous maxt_ms and maxt_ms >= mint_ms; refs never decrease. */
struct tsdb_index_chunk_meta {
    int64_t mint_ms;
    int64_t maxt_ms;
    uint64_t ref;
};

/* ---- writer -------------------------------------------------------------------------------- */

struct tsdb_index_writer;

/* Creates (truncates) path. MP_EIO with errno text. */
MP_NODISCARD int tsdb_index_writer_open(const char *path, struct tsdb_index_writer **out,
                                        struct mp_err *err);
/* The same in the compact format: series entries and postings lists (runs of consecutive refs)
 * in zstd frames at zstd_level (1..ZSTD_maxCLevel(), else MP_EINVAL), series refs 1..N in
 * label-set order. Same calls and rules as the v2 writer. */
MP_NODISCARD int tsdb_index_writer_open_compact(const char *path, int zstd_level,
                                                struct tsdb_index_writer **out,
                                                struct mp_err *err);
/* Adds the next symbol; symbols must be strictly ascending byte-wise (MP_EINVAL otherwise) and
 * all be added before the first series. Every label name and value of every series must be
 * one. Prometheus's head adds "" too (the all-postings key): pass it to match its bytes. */
MP_NODISCARD int tsdb_index_writer_add_symbol(struct tsdb_index_writer *w, struct mp_str sym,
                                              struct mp_err *err);
/* The same for a whole sorted array at once. */
MP_NODISCARD int tsdb_index_writer_add_symbols(struct tsdb_index_writer *w,
                                               const struct mp_str *syms, size_t n,
                                               struct mp_err *err);
/* Adds the next series: labels[0..nlabels) sorted by name, names unique, nlabels >= 1, label
 * sets strictly ascending across calls (labels.Compare), chunk metas as described above and
 * chunk refs non-decreasing across series. MP_EINVAL for a broken rule or a string that is not
 * a symbol, MP_ELIMIT when the series section passes 64 GiB (refs are 32-bit), MP_EIO.
 * *ref (may be NULL) receives the series reference (file offset / 16). */
MP_NODISCARD int tsdb_index_writer_add_series(struct tsdb_index_writer *w,
                                              const struct mp_label *labels, size_t nlabels,
                                              const struct tsdb_index_chunk_meta *chunks,
                                              size_t nchunks, uint64_t *ref, struct mp_err *err);
/* The same for a struct mp_labels. */
MP_NODISCARD int tsdb_index_writer_add_series_ls(struct tsdb_index_writer *w,
                                                 const struct mp_labels *ls,
                                                 const struct tsdb_index_chunk_meta *chunks,
                                                 size_t nchunks, uint64_t *ref, struct mp_err *err);
/* Writes the remaining sections and the TOC, fsyncs and closes the file, and frees w, on
 * failure too (the partial file is left for the caller to remove). After an earlier failed
 * add the writer refuses to finish (MP_EINVAL). */
MP_NODISCARD int tsdb_index_writer_close(struct tsdb_index_writer *w, struct mp_err *err);
/* Abandons the file (left as written so far) and frees w. NULL is a no-op. */
void tsdb_index_writer_abort(struct tsdb_index_writer *w);

/* ---- reader -------------------------------------------------------------------------------- */

struct tsdb_index_reader;

/* mmaps path read-only and validates it as above; either format (by its magic). For the
 * compact format open also loads the series and postings frame tables (32 bytes a frame) and
 * every 32nd pairs-table entry of each name; the frames themselves are decompressed on demand:
 * a series frame into the caller's struct tsdb_index_series (its cache of one frame), postings
 * frames into a buffer of the postings call. MP_EIO (open/mmap), MP_EPARSE, MP_ENOMEM. */
MP_NODISCARD int tsdb_index_reader_open(const char *path, struct tsdb_index_reader **out,
                                        struct mp_err *err);
/* The same over data[0..len), borrowed until close (fuzzing, tests). */
MP_NODISCARD int tsdb_index_reader_open_mem(const uint8_t *data, size_t len,
                                            struct tsdb_index_reader **out, struct mp_err *err);
void tsdb_index_reader_close(struct tsdb_index_reader *r); /* NULL is a no-op */
/* Drops this process's mapping of the file's pages (MADV_DONTNEED on the read-only shared map;
 * the next read faults them back from the page cache). */
void tsdb_index_reader_drop_pages(const struct tsdb_index_reader *r);

/* Matcher resolution over this index (postings union, sorted label values). Valid until close. */
struct tsdb_ireader tsdb_index_reader_ireader(struct tsdb_index_reader *r);

/* Symbols, for compaction merges: count, and symbol i in ascending order (O(1)). */
uint32_t tsdb_index_reader_symbol_count(const struct tsdb_index_reader *r);
MP_NODISCARD int tsdb_index_reader_symbol(const struct tsdb_index_reader *r, uint32_t i,
                                          struct mp_str *out, struct mp_err *err);
/* Ordinal of s by binary search; MP_ENOTFOUND if s is not a symbol. */
MP_NODISCARD int tsdb_index_reader_symbol_find(const struct tsdb_index_reader *r, struct mp_str s,
                                               uint32_t *out);

/* Label names of the series, ascending (the all-postings key "" excluded); fn as in
 * tsdb_ireader_ops.label_values. */
MP_NODISCARD int tsdb_index_reader_label_names(const struct tsdb_index_reader *r,
                                               int (*fn)(void *fctx, struct mp_str name),
                                               void *fctx, struct mp_err *err);
/* tsdb_ireader_ops.label_values and .postings (see ireader.h). */
MP_NODISCARD int tsdb_index_reader_label_values(const struct tsdb_index_reader *r,
                                                struct mp_str name,
                                                int (*fn)(void *fctx, struct mp_str value),
                                                void *fctx, struct mp_err *err);
MP_NODISCARD int tsdb_index_reader_postings(const struct tsdb_index_reader *r, struct mp_str name,
                                            const struct mp_str *values, size_t n,
                                            struct tsdb_plist *out, struct mp_err *err);

/* One decoded series entry, reused across calls by one caller: zero-initialise, free with
 * tsdb_index_series_fini. labels are slices into the mapped file (valid until the reader's
 * close); the arrays grow as needed and are overwritten by the next read. */
struct tsdb_index_series {
    struct mp_label *labels;
    size_t nlabels, labels_cap;
    struct tsdb_index_chunk_meta *chunks;
    size_t nchunks, chunks_cap;
    /* private: the symbol ids of labels (name, value, ...) and their reader, for
     * tsdb_index_series_labels */
    const struct tsdb_index_reader *ir;
    uint64_t ref; /* of the last read */
    uint32_t *ids;
    size_t ids_cap;
    /* private: compact format, the last series frame decompressed (for that reader) */
    const struct tsdb_index_reader *zr;
    size_t zframe;       /* frame index + 1; 0: none */
    uint8_t *zbuf;
    size_t zcap;
    uint32_t *zoff;      /* entry i of the frame is zbuf[zoff[2i] .. zoff[2i + 1]) */
    size_t zoff_cap;
    void *dctx;          /* ZSTD_DCtx */
};
void tsdb_index_series_fini(struct tsdb_index_series *s);
/* Decodes series ref (a value from a postings list) into *s. MP_EPARSE (bad ref, CRC, damaged
 * entry), MP_ENOMEM. */
MP_NODISCARD int tsdb_index_reader_series(const struct tsdb_index_reader *r, uint64_t ref,
                                          struct tsdb_index_series *s, struct mp_err *err);
/* An interned struct mp_labels copy of s's labels (caller owns one reference). The reader
 * interns each symbol once, on first use, and holds that reference until it is closed, so a
 * series costs no interner lookups (thread-safe: the cache is filled with atomics). */
MP_NODISCARD int tsdb_index_series_labels(const struct tsdb_index_series *s, struct mp_labels **out,
                                          struct mp_err *err);
/* The same through the process's label-set cache (lcache.h), keyed by the reader and the series
 * ref: a set built once is handed out again (one more reference) while it stays cached, so
 * queries that read the same series again build nothing. For queries; full reads (compaction)
 * use tsdb_index_series_labels, which leaves the cache alone. */
MP_NODISCARD int tsdb_index_series_labels_cached(const struct tsdb_index_series *s,
                                                 struct mp_labels **out, struct mp_err *err);

#endif
