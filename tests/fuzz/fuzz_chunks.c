/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_chunks.c: arbitrary bytes as a block chunk segment (tsdb/chunks.c reader: walk,
 * get and check at many refs, verbatim and with a valid segment header) and as chunks_head
 * records (tsdb/head_chunks.c parser, with and without CRC checks, at every offset), plus round
 * trips: the input cut into chunks is encoded as a segment and as head chunk records, which must
 * decode to the same bytes (STYLE 2.14). Only crashes, leaks, over-reads and UB count here; every
 * error return on the arbitrary input is fine. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/chunks.h"
#include "tsdb/head_chunks.h"
#include "tsdb/wal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_OFFSETS 4096u

static volatile uint64_t sink; /* keeps results observable */

static int sink_chunk(void *ctx, uint64_t ref, uint8_t enc, const uint8_t *d, size_t len)
{
    (void)ctx;
    sink ^= ref ^ enc ^ (len ? d[len - 1] : 0);
    return 0;
}

static void read_segment(const uint8_t *p, size_t n)
{
    struct tsdb_chunks_reader *r = NULL;
    if (tsdb_chunks_reader_open_mem(p, n, &r, NULL) != 0)
        return;
    sink ^= (uint64_t)tsdb_chunks_reader_walk(r, sink_chunk, NULL, NULL);
    for (uint64_t off = 0; off <= n && off < MAX_OFFSETS; off++) {
        const uint8_t *d;
        size_t len;
        uint8_t enc;
        if (tsdb_chunks_reader_get(r, off, &enc, &d, &len, NULL) == 0) {
            if (d < p || len > n || d + len > p + n)
                abort();
            sink ^= len ? d[0] ^ d[len - 1] : enc;
            sink ^= (uint64_t)tsdb_chunks_reader_check(r, off, NULL);
        }
    }
    tsdb_chunks_reader_close(r);
}

static void read_head_records(const uint8_t *p, size_t n)
{
    struct tsdb_head_chunk_record rec;
    size_t off = n >= TSDB_HEAD_CHUNKS_HEADER_SIZE ? TSDB_HEAD_CHUNKS_HEADER_SIZE : 0;
    while (off < n && tsdb_head_chunks_record_parse(p + off, n - off, true, &rec, NULL) == 0)
        off += rec.size;
    for (size_t o = 0; o < n && o < MAX_OFFSETS; o++)
        if (tsdb_head_chunks_record_parse(p + o, n - o, false, &rec, NULL) == 0) {
            if (rec.size > n - o || rec.data < p + o || rec.data + rec.len > p + n)
                abort();
            sink ^= rec.series_ref ^ rec.len;
        }
}

/* Cuts the input into pieces: a length byte, then that many bytes, and so on. */
static size_t pieces(const uint8_t *p, size_t n, const uint8_t **starts, size_t *lens, size_t cap)
{
    size_t k = 0, off = 0;
    while (off < n && k < cap) {
        size_t len = p[off++];
        if (len > n - off)
            len = n - off;
        starts[k] = p + off;
        lens[k++] = len;
        off += len;
    }
    return k;
}

struct expect {
    const uint8_t **starts;
    const size_t *lens;
    size_t n, i;
};

static int compare_chunk(void *ctx, uint64_t ref, uint8_t enc, const uint8_t *d, size_t len)
{
    struct expect *e = ctx;
    (void)ref;
    if (e->i >= e->n || enc != (uint8_t)e->i || len != e->lens[e->i] ||
        (len && memcmp(d, e->starts[e->i], len) != 0))
        abort();
    e->i++;
    return 0;
}

static void round_trip(const uint8_t *p, size_t n)
{
    enum { CAP = 256 };
    const uint8_t *starts[CAP];
    size_t lens[CAP];
    size_t k = pieces(p, n, starts, lens, CAP);
    /* block segment, built by hand from the format */
    size_t total = TSDB_CHUNKS_HEADER_SIZE;
    for (size_t i = 0; i < k; i++)
        total += TSDB_UVARINT_MAX_LEN + 1 + lens[i] + 4;
    uint8_t *seg = malloc(total);
    tsdb_put_be32(seg, TSDB_CHUNKS_MAGIC);
    seg[4] = TSDB_CHUNKS_VERSION;
    seg[5] = seg[6] = seg[7] = 0;
    size_t off = TSDB_CHUNKS_HEADER_SIZE;
    for (size_t i = 0; i < k; i++) {
        off += tsdb_put_uvarint(seg + off, lens[i]);
        seg[off] = (uint8_t)i;
        memcpy(seg + off + 1, starts[i], lens[i]);
        tsdb_put_be32(seg + off + 1 + lens[i], tsdb_crc32c(0, seg + off, 1 + lens[i]));
        off += 1 + lens[i] + 4;
    }
    struct tsdb_chunks_reader *r = NULL;
    if (tsdb_chunks_reader_open_mem(seg, off, &r, NULL) != 0)
        abort();
    struct expect e = {starts, lens, k, 0};
    if (tsdb_chunks_reader_walk(r, compare_chunk, &e, NULL) != 0 || e.i != k)
        abort();
    tsdb_chunks_reader_close(r);
    free(seg);

    /* head chunk records through the real encoder */
    for (size_t i = 0; i < k; i++) {
        size_t sz = tsdb_head_chunks_record_size(lens[i]);
        uint8_t *b = malloc(sz);
        struct tsdb_head_chunk_record in = {
            .series_ref = i * 0x0101010101010101u, .mint_ms = -(int64_t)i, .maxt_ms = (int64_t)n,
            .encoding = (uint8_t)(i | 1), .data = starts[i], .len = lens[i],
        }, out;
        if (tsdb_head_chunks_record_encode(b, &in) != sz ||
            tsdb_head_chunks_record_parse(b, sz, true, &out, NULL) != 0 || out.size != sz ||
            out.series_ref != in.series_ref || out.mint_ms != in.mint_ms ||
            out.maxt_ms != in.maxt_ms || out.encoding != in.encoding || out.len != in.len ||
            (in.len && memcmp(out.data, in.data, in.len) != 0))
            abort();
        /* every strict prefix is incomplete or zero, never a record */
        for (size_t cut = 0; cut < sz && cut < 64; cut++)
            if (tsdb_head_chunks_record_parse(b, cut, true, &out, NULL) == 0)
                abort();
        free(b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    read_segment(data, size);
    if (size >= TSDB_CHUNKS_HEADER_SIZE) {
        uint8_t *fixed = malloc(size);
        memcpy(fixed, data, size);
        tsdb_put_be32(fixed, TSDB_CHUNKS_MAGIC);
        fixed[4] = TSDB_CHUNKS_VERSION;
        read_segment(fixed, size);
        free(fixed);
    }
    read_head_records(data, size);
    round_trip(data, size);
    return 0;
}
