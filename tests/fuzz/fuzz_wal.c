/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_wal.c: arbitrary bytes as a WAL segment (pages, fragments, CRCs, snappy and
 * zstd records) and as WAL record bodies (series, samples, tombstones decoders), plus a
 * samples encode/decode round trip compared bit for bit (STYLE 2.14). Only crashes, leaks,
 * over-reads and UB count; every error return is fine. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/record.h"
#include "tsdb/wal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t sink; /* keeps decoded values observable */

static void decode_body(struct tsdb_record_decoder *d, const uint8_t *p, size_t n)
{
    size_t k;
    switch (tsdb_record_type_of(p, n)) {
    case TSDB_REC_SERIES: {
        struct tsdb_record_series *s;
        if (tsdb_record_series_decode(d, p, n, &s, &k, NULL) == 0)
            tsdb_record_series_release(s, k);
        break;
    }
    case TSDB_REC_SAMPLES: {
        struct tsdb_record_sample *s;
        if (tsdb_record_samples_decode(d, p, n, &s, &k, NULL) == 0 && k > 0)
            sink ^= s[k - 1].ref;
        break;
    }
    case TSDB_REC_TOMBSTONES: {
        struct tsdb_record_tombstone *t;
        if (tsdb_record_tombstones_decode(d, p, n, &t, &k, NULL) == 0 && k > 0)
            sink ^= t[k - 1].ref;
        break;
    }
    default:
        break;
    }
}

static void round_trip_samples(const uint8_t *data, size_t size)
{
    size_t n = size / 24;
    if (n == 0 || n > 4096)
        return;
    struct tsdb_record_sample *in = malloc(n * sizeof *in);
    for (size_t i = 0; i < n; i++) {
        memcpy(&in[i].ref, data + 24 * i, 8);
        memcpy(&in[i].t_ms, data + 24 * i + 8, 8);
        memcpy(&in[i].v, data + 24 * i + 16, 8);
    }
    struct mp_buf b;
    mp_buf_init(&b, 0);
    if (tsdb_record_samples_encode(in, n, &b) != 0)
        abort();
    struct tsdb_record_decoder d;
    tsdb_record_decoder_init(&d);
    struct tsdb_record_sample *out;
    size_t k;
    if (tsdb_record_samples_decode(&d, (const uint8_t *)b.data, b.len, &out, &k, NULL) != 0 ||
        k != n)
        abort();
    for (size_t i = 0; i < n; i++)
        if (out[i].ref != in[i].ref || out[i].t_ms != in[i].t_ms ||
            memcmp(&out[i].v, &in[i].v, 8) != 0)
            abort();
    tsdb_record_decoder_fini(&d);
    mp_buf_fini(&b);
    free(in);
}

static void read_segment(struct tsdb_record_decoder *d, const uint8_t *data, size_t size)
{
    struct tsdb_wal_reader *r = NULL;
    if (tsdb_wal_reader_open_mem(data, size, &r, NULL) != 0)
        return;
    tsdb_wal_reader_set_max_record(r, 16u << 20); /* keep decompression bombs cheap */
    const uint8_t *rec;
    size_t len;
    while (tsdb_wal_reader_next(r, &rec, &len, NULL) == 0)
        decode_body(d, rec, len);
    tsdb_wal_reader_close(r);
}

/* Rewrites every fragment's CRC to match its payload, so that mutations get past the checksum
 * into reassembly, decompression and the record decoders. */
static void fix_crcs(uint8_t *b, size_t n)
{
    size_t off = 0;
    while (off < n) {
        size_t in_page = off % TSDB_WAL_PAGE_SIZE;
        if (b[off] == 0 || TSDB_WAL_PAGE_SIZE - in_page < TSDB_WAL_HEADER_SIZE) {
            off += TSDB_WAL_PAGE_SIZE - in_page;
            continue;
        }
        if (n - off < TSDB_WAL_HEADER_SIZE)
            return;
        size_t len = (size_t)b[off + 1] << 8 | b[off + 2];
        if (in_page + TSDB_WAL_HEADER_SIZE + len > TSDB_WAL_PAGE_SIZE ||
            off + TSDB_WAL_HEADER_SIZE + len > n)
            return;
        uint32_t c = tsdb_crc32c(0, b + off + TSDB_WAL_HEADER_SIZE, len);
        b[off + 3] = (uint8_t)(c >> 24);
        b[off + 4] = (uint8_t)(c >> 16);
        b[off + 5] = (uint8_t)(c >> 8);
        b[off + 6] = (uint8_t)c;
        off += TSDB_WAL_HEADER_SIZE + len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tsdb_record_decoder d;
    tsdb_record_decoder_init(&d);

    /* as a segment, verbatim and with valid CRCs */
    read_segment(&d, data, size);
    if (size > 0) {
        uint8_t *fixed = malloc(size);
        memcpy(fixed, data, size);
        fix_crcs(fixed, size);
        read_segment(&d, fixed, size);
        free(fixed);
    }

    /* as record bodies, under each type byte */
    if (size > 0) {
        uint8_t *copy = malloc(size);
        memcpy(copy, data, size);
        for (uint8_t t = TSDB_REC_SERIES; t <= TSDB_REC_TOMBSTONES; t++) {
            copy[0] = t;
            decode_body(&d, copy, size);
        }
        free(copy);
    }
    tsdb_record_decoder_fini(&d);

    round_trip_samples(data, size);
    return 0;
}
