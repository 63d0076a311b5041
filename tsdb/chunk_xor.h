/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/chunk_xor.h (private to tsdb/ and tests/tsdb/): when the head cuts a new XOR chunk.
 * The codec itself is public (tsdb/tsdb.h); this is the policy of Prometheus 2.55's
 * appendPreprocessor (tsdb.md 1.7): chunks end at the next multiple of the chunk range, are
 * evenly filled after 30 samples (computeChunkEndTime), and are cut at 240 samples or when the
 * data exceeds 1024 - 19 bytes. */
#ifndef TSDB_CHUNK_XOR_H
#define TSDB_CHUNK_XOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tsdb/tsdb.h"

#define TSDB_CHUNK_RANGE_DEFAULT_MS INT64_C(7200000) /* 2 h, the smallest block range */
#define TSDB_SAMPLES_PER_CHUNK_DEFAULT 120u
/* chunkenc.MaxBytesPerXORChunk: a chunk is cut when its data is longer than this minus one
 * worst-case sample (Prometheus 2.47+). */
#define TSDB_XOR_MAX_BYTES 1024u

/* The appender's state, here so that the head can embed it in a series (tsdb.h keeps the type
 * opaque for everyone else). Owned bytes: buf[0..cap). */
struct tsdb_xor {
    uint8_t *buf;
    size_t cap;
    uint64_t pos;    /* bits used, header included */
    bool tail;       /* Go quirk: one empty byte follows (see tsdb_xor_bytes in tsdb.h) */
    bool window;     /* (lead, trail) hold a window; false until the first '11' */
    uint8_t lead;
    uint8_t trail;
    uint32_t n;
    int64_t t0;
    int64_t t;
    uint64_t delta;
    uint64_t vbits;
};

/* An embedded empty chunk (as tsdb_xor_create); fini frees its bytes and zeroes it. A zeroed
 * struct (buf NULL) stands for "no chunk". 0 or MP_ENOMEM. */
MP_NODISCARD int tsdb_xor_init(struct tsdb_xor *c);
void tsdb_xor_fini(struct tsdb_xor *c);

/* Per-series cut state; plain data embedded in the series. One writer at a time. */
struct tsdb_xor_cutter {
    int64_t chunk_range_ms;     /* > 0 */
    uint32_t samples_per_chunk; /* >= 4 */
    int64_t next_at;            /* predicted end of the current chunk (exclusive) */
};

void tsdb_xor_cutter_init(struct tsdb_xor_cutter *cs, int64_t chunk_range_ms,
                          uint32_t samples_per_chunk);

/* Decides, before sample t_ms is appended to cur (NULL: the series has no head chunk), whether
 * the sample must start a new chunk; updates the prediction either way. The caller has already
 * rejected t_ms <= tsdb_xor_max_time(cur). Also cuts when cur holds TSDB_XOR_MAX_SAMPLES. */
bool tsdb_xor_cutter_should_cut(struct tsdb_xor_cutter *cs, const struct tsdb_xor *cur,
                                int64_t t_ms);

/* Prometheus rangeForTimestamp: (t / range) * range + range with Go's (and C's) truncating
 * division; for t >= 0 the first multiple of range_ms after t. */
int64_t tsdb_range_for_timestamp(int64_t t_ms, int64_t range_ms);

/* Prometheus computeChunkEndTime (2.55, float arithmetic): with the chunk 1/ratio full at cur,
 * split [start, max) into equal parts. */
int64_t tsdb_compute_chunk_end_time(int64_t start_ms, int64_t cur_ms, int64_t max_ms,
                                    double ratio);

#endif
