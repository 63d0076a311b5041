/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/meta.h (private to tsdb): block meta.json (tsdb.md 4.2) and ULIDs (4.1).
 *
 * Encoding reproduces Go's json.MarshalIndent(meta, "", "\t") of Prometheus's BlockMeta
 * byte for byte (tab indentation, `"key": value`, no trailing newline, omitempty fields left
 * out, Go's string escaping): field order
 *   ulid, minTime, maxTime,
 *   stats{numSamples, numFloatSamples, numHistogramSamples, numSeries, numChunks,
 *         numTombstones}            (each omitted when 0; an all-zero stats prints {})
 *   compaction{level, sources[], deletable, parents[{ulid,minTime,maxTime}], failed, hints[]}
 *                                   (sources/parents/hints omitted when empty, bools when false)
 *   version (always 1).
 * Parsing uses json-c. It needs ulid, minTime, maxTime, compaction.level and version == 1
 * (else MP_EPARSE naming the path and the field), validates ULIDs, and ignores unknown keys
 * (Thanos adds a "thanos" section). Writing goes through meta.json.tmp + fsync + rename +
 * directory fsync.
 *
 * Ownership: struct tsdb_meta owns its arrays (tsdb_meta_fini frees them); the add helpers
 * copy. Thread safety: a tsdb_meta is plain data (one writer or many readers); ULID
 * generation is thread-safe. */
#ifndef TSDB_META_H
#define TSDB_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/str.h"

#define TSDB_ULID_LEN 26
#define TSDB_META_FILENAME "meta.json"
#define TSDB_META_VERSION 1
/* A meta.json larger than this is refused: even a level-10 compaction of 2 h blocks over a
 * year lists only a few thousand sources. */
#define TSDB_META_MAX_BYTES (16u << 20)

struct tsdb_ulid {
    uint8_t b[16]; /* big-endian: 48-bit ms timestamp, then 80 random bits */
};

/* New ULID for time ms (Unix ms, 0 <= ms < 2^48): 80 random bits from getrandom(2). Within
 * a process, ULIDs with the same ms increase strictly (the random part of the previous one
 * plus one, as oklog/ulid's monotonic entropy), so blocks created in one millisecond still
 * sort by creation. MP_EINVAL for ms out of range, MP_EIO if getrandom fails, MP_ELIMIT if
 * the random part would overflow within one ms (2^80 ids; practically never). */
MP_NODISCARD int tsdb_ulid_generate(int64_t ms, struct tsdb_ulid *out, struct mp_err *err);
/* Writes 26 upper-case Crockford base32 characters and a NUL to buf[27]. */
void tsdb_ulid_format(const struct tsdb_ulid *u, char buf[TSDB_ULID_LEN + 1]);
/* Parses exactly 26 characters (either case; I L O U are not in the alphabet) into *out.
 * The first character must be 0-7 (128 bits). MP_EPARSE otherwise. */
MP_NODISCARD int tsdb_ulid_parse(struct mp_str s, struct tsdb_ulid *out, struct mp_err *err);
/* Embedded creation time in ms. */
int64_t tsdb_ulid_time(const struct tsdb_ulid *u);
/* memcmp order, which is the order of the text form. */
int tsdb_ulid_cmp(const struct tsdb_ulid *a, const struct tsdb_ulid *b);

struct tsdb_block_desc {
    struct tsdb_ulid ulid;
    int64_t min_time, max_time;
};

struct tsdb_meta {
    struct tsdb_ulid ulid;
    int64_t min_time; /* inclusive, ms */
    int64_t max_time; /* exclusive, ms */
    struct {
        uint64_t num_samples, num_float_samples, num_histogram_samples;
        uint64_t num_series, num_chunks, num_tombstones;
    } stats;
    struct {
        int level; /* 1 for head blocks */
        struct tsdb_ulid *sources;
        size_t nsources;
        bool deletable;
        struct tsdb_block_desc *parents;
        size_t nparents;
        bool failed;
        char **hints; /* NUL-terminated strings, e.g. "from-out-of-order" */
        size_t nhints;
    } compaction;
    int version; /* TSDB_META_VERSION */
};

/* Zeroes m and sets version 1, level 1. */
void tsdb_meta_init(struct tsdb_meta *m);
/* Frees the arrays and leaves m as after tsdb_meta_init. NULL is a no-op. */
void tsdb_meta_fini(struct tsdb_meta *m);
/* Append to compaction.sources / parents / hints (copies). MP_ENOMEM. */
MP_NODISCARD int tsdb_meta_add_source(struct tsdb_meta *m, const struct tsdb_ulid *u);
MP_NODISCARD int tsdb_meta_add_parent(struct tsdb_meta *m, const struct tsdb_block_desc *d);
MP_NODISCARD int tsdb_meta_add_hint(struct tsdb_meta *m, const char *hint);

/* Appends the MarshalIndent form of m to out (no trailing newline). MP_ENOMEM/MP_ELIMIT
 * from the buffer. */
MP_NODISCARD int tsdb_meta_encode(const struct tsdb_meta *m, struct mp_buf *out);
/* Parses data[0..len) into *m, which must be initialised (tsdb_meta_init) and is replaced
 * (its old arrays are freed). On failure *m is left initialised and empty. MP_EPARSE with
 * the byte position or the field; `what` names the input in messages (a path). */
MP_NODISCARD int tsdb_meta_decode(const char *data, size_t len, const char *what,
                                  struct tsdb_meta *m, struct mp_err *err);

/* Writes dir/meta.json crash-safely (fileutil.h). */
MP_NODISCARD int tsdb_meta_write(const char *dir, const struct tsdb_meta *m, struct mp_err *err);
/* Reads and validates dir/meta.json. MP_ENOTFOUND, MP_EIO, MP_EPARSE (message has the path). */
MP_NODISCARD int tsdb_meta_read(const char *dir, struct tsdb_meta *m, struct mp_err *err);

#endif
