/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/record.h (private to tsdb): the bodies of WAL records, byte-compatible with Prometheus's
 * tsdb/record package (spec tsdb.md 3.3), so a Prometheus WAL can be replayed and ours read by
 * Prometheus. The first byte is the record type; the rest depends on it:
 *
 *   Series (1):     { BE64 ref ; uvarint n ; n x (uvarint-string name, uvarint-string value) }*
 *   Samples (2):    [ BE64 base_ref ; BE64 base_t ; { varint dref ; varint dt ; BE64 bits }* ]
 *   Tombstones (3): { BE64 ref ; varint mint ; varint maxt }*
 *
 * varint is Go's zig-zag binary.PutVarint, uvarint binary.PutUvarint; deltas are taken against
 * the first sample of the record (which is itself encoded with deltas 0, 0) with wrapping
 * 64-bit arithmetic, as Go does. Value bits are stored verbatim (StaleNaN survives).
 *
 * Encoders append to a caller-owned mp_buf (reuse it with mp_buf_reset: no allocation once it
 * has grown). Decoders read only [rec, rec + len), accept arbitrary bytes (MP_EPARSE with the
 * byte offset in err, never an over-read) and fill arrays owned by a reusable
 * struct tsdb_record_decoder. Thread safety: a decoder belongs to one thread at a time; the
 * encoders are pure. */
#ifndef TSDB_RECORD_H
#define TSDB_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/labels.h"
#include "common/str.h"

enum tsdb_record_type {
    TSDB_REC_SERIES = 1,
    TSDB_REC_SAMPLES = 2,
    TSDB_REC_TOMBSTONES = 3,
    TSDB_REC_EXEMPLARS = 4,
    TSDB_REC_MMAP_MARKERS = 5,
    TSDB_REC_METADATA = 6,
    TSDB_REC_HISTOGRAM_SAMPLES = 7,
    TSDB_REC_FLOAT_HISTOGRAM_SAMPLES = 8,
    TSDB_REC_UNKNOWN = 255, /* empty record or a type byte outside 1..8 */
};

struct tsdb_record_series {
    uint64_t ref;
    struct mp_labels *labels; /* decoded: one reference owned by the caller */
};

struct tsdb_record_sample {
    uint64_t ref;
    int64_t t_ms;
    double v; /* bit pattern preserved */
};

/* One deleted interval [mint, maxt] of one series; a series with several intervals appears
 * several times, exactly as Prometheus lays them out on disk. */
struct tsdb_record_tombstone {
    uint64_t ref;
    int64_t mint_ms;
    int64_t maxt_ms;
};

/* Type of a record body (its first byte); TSDB_REC_UNKNOWN for len 0 or bytes outside 1..8. */
enum tsdb_record_type tsdb_record_type_of(const uint8_t *rec, size_t len);

/* Append one record to out. The labels of each series are written in their sorted order.
 * 0, or MP_ENOMEM / MP_ELIMIT from out (out then holds a partial record: reset it). */
MP_NODISCARD int tsdb_record_series_encode(const struct tsdb_record_series *s, size_t n,
                                           struct mp_buf *out);
/* The same Series record written one series at a time, from interned strings a store already
 * holds (the head's symbol table), so that logging a new series builds no label set: begin
 * appends the type byte, then each encode_pairs call appends one series, ref and pairs[0..2n)
 * (name, value, name, value ... sorted by name, names unique, as in a label set). The bytes
 * equal tsdb_record_series_encode's for the same series. 0, or MP_ENOMEM / MP_ELIMIT from out
 * (out then holds a partial record: reset it). */
MP_NODISCARD int tsdb_record_series_begin(struct mp_buf *out);
MP_NODISCARD int tsdb_record_series_encode_pairs(uint64_t ref, const struct mp_istr *const *pairs,
                                                 size_t n, struct mp_buf *out);
/* n == 0 gives the one-byte record 0x02, as Prometheus. */
MP_NODISCARD int tsdb_record_samples_encode(const struct tsdb_record_sample *s, size_t n,
                                            struct mp_buf *out);
MP_NODISCARD int tsdb_record_tombstones_encode(const struct tsdb_record_tombstone *t, size_t n,
                                               struct mp_buf *out);

/* Reusable decode arrays. Their capacity grows with the input and is bounded by it (every
 * element takes at least 2 encoded bytes), so no separate cap is needed. */
struct tsdb_record_decoder {
    struct tsdb_record_series *series;
    size_t series_cap;
    struct tsdb_record_sample *samples;
    size_t samples_cap;
    struct tsdb_record_tombstone *tombstones;
    size_t tombstones_cap;
    struct mp_label *labels; /* scratch for one series' pairs */
    size_t labels_cap;
};

void tsdb_record_decoder_init(struct tsdb_record_decoder *d);
void tsdb_record_decoder_fini(struct tsdb_record_decoder *d); /* NULL is a no-op */

/* Decoders: *out points into d (valid until the next decode with d), *n is the count.
 * 0; MP_EPARSE (wrong type byte, truncated field, varint overflow, trailing bytes, repeated
 * label name; err gives the byte offset); MP_ENOMEM. On error nothing is handed out (the
 * series decoder releases the label sets it had created). */
MP_NODISCARD int tsdb_record_series_decode(struct tsdb_record_decoder *d, const uint8_t *rec,
                                           size_t len, struct tsdb_record_series **out,
                                           size_t *n, struct mp_err *err);
MP_NODISCARD int tsdb_record_samples_decode(struct tsdb_record_decoder *d, const uint8_t *rec,
                                            size_t len, struct tsdb_record_sample **out,
                                            size_t *n, struct mp_err *err);
MP_NODISCARD int tsdb_record_tombstones_decode(struct tsdb_record_decoder *d, const uint8_t *rec,
                                               size_t len, struct tsdb_record_tombstone **out,
                                               size_t *n, struct mp_err *err);

/* Releases the label sets of decoded series (the array itself stays in the decoder). */
void tsdb_record_series_release(struct tsdb_record_series *s, size_t n);

#endif
