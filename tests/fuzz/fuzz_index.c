/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_index.c: arbitrary bytes as a block index file (tsdb/index.c reader): open,
 * then everything the reader offers: symbols, label names and values, each postings list and
 * their unions, every series ref of the all-postings list and every 16-byte slot of the file.
 * The input is read verbatim and once more with its CRCs recomputed (series entries, postings
 * lists, symbol table, postings offset table, TOC) so that mutations get past the checksums
 * into the decoders. Either format: Prometheus's v2 or meshprom's compact one (fuzz_cindex.c
 * reuses the walk with inputs that reach inside the compact format's zstd frames).
 * Only crashes, leaks, over-reads and UB count; every error is fine. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "tsdb/index.h"
#include "tsdb/wal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t sink; /* keeps results observable */

struct walk {
    const struct tsdb_index_reader *r;
    struct mp_str name;
    struct mp_str vals[64];
    size_t nvals;
    struct tsdb_plist p;
};

static void plist_free(struct tsdb_plist *p)
{
    mp_free(p->refs);
    memset(p, 0, sizeof *p);
}

static int on_value(void *ctx, struct mp_str v)
{
    struct walk *w = ctx;
    w->p.n = 0;
    if (tsdb_index_reader_postings(w->r, w->name, &v, 1, &w->p, NULL) == 0 && w->p.n)
        sink ^= w->p.refs[w->p.n - 1];
    if (w->nvals < 64)
        w->vals[w->nvals++] = v;
    return 0;
}

static int on_name(void *ctx, struct mp_str name)
{
    struct walk *w = ctx;
    w->name = name;
    w->nvals = 0;
    if (tsdb_index_reader_label_values(w->r, name, on_value, w, NULL) != 0)
        return 0;
    w->p.n = 0;
    if (tsdb_index_reader_postings(w->r, name, w->vals, w->nvals, &w->p, NULL) == 0)
        sink ^= w->p.n;
    return 0;
}

static void read_index(const uint8_t *data, size_t size)
{
    struct tsdb_index_reader *r = NULL;
    if (tsdb_index_reader_open_mem(data, size, &r, NULL) != 0)
        return;
    uint32_t ns = tsdb_index_reader_symbol_count(r);
    struct mp_str s;
    for (uint32_t i = 0; i < ns && i < 4096; i++)
        if (tsdb_index_reader_symbol(r, i, &s, NULL) == 0) {
            uint32_t ord;
            if (tsdb_index_reader_symbol_find(r, s, &ord) != 0 || ord != i)
                abort(); /* open checked the table is sorted and unique */
        }
    struct walk w = {.r = r};
    if (tsdb_index_reader_label_names(r, on_name, &w, NULL) != 0)
        abort();
    struct tsdb_index_series ser = {0};
    struct mp_str empty = {"", 0};
    w.p.n = 0;
    if (tsdb_index_reader_postings(r, empty, &empty, 1, &w.p, NULL) == 0)
        for (size_t i = 0; i < w.p.n && i < 4096; i++)
            if (tsdb_index_reader_series(r, w.p.refs[i], &ser, NULL) == 0 && ser.nchunks)
                sink ^= ser.chunks[ser.nchunks - 1].ref;
    for (uint64_t ref = 0; ref <= size / 16 + 1 && ref < 65536; ref++)
        if (tsdb_index_reader_series(r, ref, &ser, NULL) == 0)
            sink ^= ser.nlabels;
    tsdb_index_series_fini(&ser);
    plist_free(&w.p);
    tsdb_index_reader_close(r);
}

#ifndef FUZZ_INDEX_NO_MAIN /* fuzz_cindex.c takes read_index only */
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Fixes the CRC of a framed section (BE32 len | body | CRC) at off, if it fits in [0, lim). */
static void fix_frame(uint8_t *b, uint64_t off, size_t lim)
{
    if (off > lim || lim - off < 8)
        return;
    uint32_t l = be32(b + off);
    if (l > lim - off - 8)
        return;
    put32(b + off + 4 + l, tsdb_crc32c(0, b + off + 4, l));
}

/* The compact format: TOC, symbol table and the three tables (zstd frames carry their own
 * checksums; fuzz_cindex.c reaches their contents). */
static void fix_compact_crcs(uint8_t *b, size_t n)
{
    if (n < 5 + TSDB_INDEX_COMPACT_TOC_LEN)
        return;
    size_t lim = n - TSDB_INDEX_COMPACT_TOC_LEN;
    for (int i = 0; i < 6; i++) {
        uint64_t off = (uint64_t)be32(b + lim + 8 * i) << 32 | be32(b + lim + 8 * i + 4);
        if (i == 0 || i >= 3)
            fix_frame(b, off, lim);
    }
    put32(b + lim + 56, tsdb_crc32c(0, b + lim, 56));
}

static void fix_crcs(uint8_t *b, size_t n)
{
    if (n >= 4 && be32(b) == TSDB_INDEX_COMPACT_MAGIC) {
        fix_compact_crcs(b, n);
        return;
    }
    if (n < 5 + TSDB_INDEX_TOC_LEN)
        return;
    size_t lim = n - TSDB_INDEX_TOC_LEN;
    uint64_t toc[6];
    for (int i = 0; i < 6; i++) {
        toc[i] = (uint64_t)be32(b + lim + 8 * i) << 32 | be32(b + lim + 8 * i + 4);
        if (toc[i] > lim)
            toc[i] = 0; /* keeps the offset arithmetic below from wrapping */
    }
    /* series entries: a uvarint len at each 16-byte slot of the series section */
    uint64_t end = toc[2] && toc[2] <= lim ? toc[2] : lim;
    for (uint64_t off = (toc[1] + 15) & ~(uint64_t)15; toc[1] && off < end; off += 16) {
        uint64_t l = 0;
        size_t k = 0;
        while (off + k < end && k < 3) {
            l |= (uint64_t)(b[off + k] & 0x7f) << (7 * k);
            if (b[off + k++] < 0x80)
                break;
        }
        if (k && b[off + k - 1] < 0x80 && off + k + l + 4 <= end)
            put32(b + off + k + l, tsdb_crc32c(0, b + off + k, (size_t)l));
    }
    /* postings lists: every 4-byte slot of the postings section that frames exactly */
    uint64_t pend = toc[3] && toc[3] <= lim ? toc[3] : lim;
    for (uint64_t off = toc[4]; toc[4] && off + 12 <= pend; off += 4) {
        uint32_t l = be32(b + off);
        if (l >= 4 && l % 4 == 0 && be32(b + off + 4) == (l - 4) / 4 && off + 8 + l <= pend) {
            fix_frame(b, off, pend);
            off += 4 + l;
        }
    }
    if (toc[0])
        fix_frame(b, toc[0], lim);
    if (toc[5])
        fix_frame(b, toc[5], lim);
    put32(b + lim + 48, tsdb_crc32c(0, b + lim, 48));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    read_index(data, size);
    if (size > 0) {
        uint8_t *fixed = malloc(size);
        memcpy(fixed, data, size);
        fix_crcs(fixed, size);
        read_index(fixed, size);
        free(fixed);
    }
    return 0;
}
#endif
