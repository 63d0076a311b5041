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
#include <string.h>

#include "common/err.h"

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

#endif
