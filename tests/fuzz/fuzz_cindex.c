/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_cindex.c: the compact block index format (tsdb/index.c, tsdb/INDEX.md) with
 * the fuzz input inside its zstd frames, where checksums would stop a byte-level fuzzer.
 * Input: BE16 a | a bytes of raw series entries | BE16 b | b bytes of raw postings lists |
 * the rest as the pairs table body. The harness builds a well-formed file around them: 16
 * symbols "", "a" .. "o", one series frame (zstd of the entries; its series count is what a
 * lenient walk of the uvarint lengths finds) and one postings frame, both tables and the TOC
 * with correct CRCs; then walks it as fuzz_index.c does. Only crashes, leaks, over-reads and
 * UB count. */
#define FUZZ_INDEX_NO_MAIN
#include "fuzz_index.c" /* read_index */

#include <zstd.h>

#include "common/str.h"
#include "tsdb/bytes.h"

struct out {
    uint8_t *b;
    size_t n, cap;
};

static void put(struct out *o, const void *p, size_t n)
{
    if (o->n + n > o->cap) {
        o->cap = (o->n + n) * 2;
        o->b = realloc(o->b, o->cap);
        if (!o->b)
            abort();
    }
    memcpy(o->b + o->n, p, n);
    o->n += n;
}

static void put_uv(struct out *o, uint64_t v)
{
    uint8_t x[10];
    put(o, x, tsdb_put_uvarint(x, v));
}

/* A CRC-framed section of body[0..n), started at *off. */
static void section(struct out *o, const uint8_t *body, size_t n, uint64_t *off)
{
    uint8_t x[4];
    *off = o->n;
    tsdb_put_be32(x, (uint32_t)n);
    put(o, x, 4);
    put(o, body, n);
    tsdb_put_be32(x, tsdb_crc32c(0, body, n));
    put(o, x, 4);
}

/* zstd of raw[0..n) appended; the table entry (prefix, clen, rlen) goes to tab. */
static void zframe(struct out *o, const uint8_t *raw, size_t n, struct out *tab, bool count)
{
    size_t cap = ZSTD_compressBound(n);
    uint8_t *z = malloc(cap);
    size_t c = ZSTD_compress(z, cap, raw, n, 1);
    if (ZSTD_isError(c))
        abort();
    put(o, z, c);
    free(z);
    if (count) { /* series: entries found by a lenient walk of the lengths */
        size_t k = 0, at = 0;
        uint64_t len;
        int m;
        while (at < n && (m = tsdb_get_uvarint(raw + at, n - at, &len)) > 0 &&
               len <= n - at - (size_t)m) {
            at += (size_t)m + (size_t)len;
            k++;
        }
        put_uv(tab, k ? k : 1);
    }
    put_uv(tab, c);
    put_uv(tab, n);
}

static uint64_t nseries_of(const struct out *stab)
{
    uint64_t v = 0;
    if (stab->n > 1)
        (void)tsdb_get_uvarint(stab->b + 1, stab->n - 1, &v);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t at = 0, a = 0, b = 0;
    if (size >= 2)
        a = (size_t)data[0] << 8 | data[1];
    at = 2;
    if (a > size - (size < at ? size : at))
        a = size > at ? size - at : 0;
    const uint8_t *sraw = data + (size < at ? size : at);
    at += a;
    if (at + 2 <= size)
        b = (size_t)data[at] << 8 | data[at + 1];
    at += 2;
    if (at > size)
        at = size;
    if (b > size - at)
        b = size - at;
    const uint8_t *praw = data + at;
    at += b;
    struct out o = {0}, syms = {0}, stab = {0}, ptab = {0};
    uint8_t x[8];
    tsdb_put_be32(x, TSDB_INDEX_COMPACT_MAGIC);
    x[4] = TSDB_INDEX_COMPACT_V1;
    put(&o, x, 5);
    tsdb_put_be32(x, 16);
    put(&syms, x, 4);
    put_uv(&syms, 0);
    for (char c = 'a'; c <= 'o'; c++) {
        put_uv(&syms, 1);
        put(&syms, &c, 1);
    }
    uint64_t toc[7];
    section(&o, syms.b, syms.n, &toc[0]);
    toc[1] = o.n;
    put_uv(&stab, a ? 1 : 0);
    if (a)
        zframe(&o, sraw, a, &stab, true);
    toc[2] = o.n;
    put_uv(&ptab, b ? 1 : 0);
    if (b)
        zframe(&o, praw, b, &ptab, false);
    section(&o, stab.b, stab.n, &toc[3]);
    section(&o, ptab.b, ptab.n, &toc[4]);
    section(&o, data + at, size - at, &toc[5]);
    toc[6] = a ? nseries_of(&stab) : 0;
    uint8_t t[TSDB_INDEX_COMPACT_TOC_LEN];
    for (int i = 0; i < 7; i++)
        tsdb_put_be64(t + 8 * i, toc[i]);
    tsdb_put_be32(t + 56, tsdb_crc32c(0, t, 56));
    put(&o, t, sizeof t);
    /* an exact-size copy, so that ASan sees any over-read */
    uint8_t *exact = malloc(o.n);
    memcpy(exact, o.b, o.n);
    read_index(exact, o.n);
    free(exact);
    free(o.b);
    free(syms.b);
    free(stab.b);
    free(ptab.b);
    return 0;
}
