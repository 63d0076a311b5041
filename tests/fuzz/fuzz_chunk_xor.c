/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_chunk_xor.c: the XOR chunk codec (tsdb/tsdb.h) under libFuzzer.
 * First byte even: the rest is chunk data from an untrusted peer or a corrupt file; the
 * iterator must end in EOF or MP_EPARSE without reading outside the buffer, and re-opening
 * valid data must give back the same bytes. First byte odd: samples are derived from the
 * rest, encoded, decoded and compared bit for bit (timestamps and value patterns), and
 * re-opening at a split point must continue to the same bytes as one go (STYLE 2.14). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "tsdb/tsdb.h"

#define MAX_SAMPLES 4096

struct fz_sample {
    int64_t t;
    uint64_t v;
};

static uint64_t take(const uint8_t **p, const uint8_t *end, unsigned n)
{
    uint64_t x = 0;
    for (unsigned i = 0; i < n && *p < end; i++)
        x = x << 8 | *(*p)++;
    return x;
}

static void check(int ok)
{
    if (!ok)
        abort();
}

static void decode_mode(const uint8_t *data, size_t size)
{
    struct tsdb_xor_iter it;
    tsdb_xor_iter_init(&it, data, size);
    int64_t t;
    double v;
    size_t n = 0;
    int rc;
    while ((rc = tsdb_xor_iter_next(&it, &t, &v)) == 0)
        n++;
    check(rc == MP_EEOF || rc == MP_EPARSE);
    check(n <= tsdb_xor_iter_num_samples(&it));
    tsdb_xor_iter_init(&it, data, size);
    (void)tsdb_xor_iter_seek(&it, size > 2 ? (int64_t)data[size - 1] << 40 : 0, &t, &v);

    struct tsdb_xor *c = NULL;
    if (tsdb_xor_open(data, size, &c, NULL) == 0) {
        check(rc == MP_EEOF);
        size_t len;
        const uint8_t *b = tsdb_xor_bytes(c, &len);
        check(len <= size && memcmp(b + 2, data + 2, len > 3 ? len - 3 : 0) == 0);
        if (tsdb_xor_append(c, INT64_MAX, 1.0) == 0) {
            b = tsdb_xor_bytes(c, &len);
            tsdb_xor_iter_init(&it, b, len);
            size_t m = 0;
            while (tsdb_xor_iter_next(&it, &t, &v) == 0)
                m++;
            check(m == n + 1 && t == INT64_MAX);
        }
        tsdb_xor_destroy(c);
    } else {
        check(rc == MP_EPARSE);
    }
}

static struct fz_sample g_s[MAX_SAMPLES];

static void round_trip_mode(const uint8_t *p, size_t size)
{
    const uint8_t *end = p + size;
    size_t n = 0;
    int64_t t = (int64_t)take(&p, end, 8);
    uint64_t delta = 10000, v = 0x3ff0000000000000u;
    while (p < end && n < MAX_SAMPLES) {
        uint8_t ctl = *p++;
        switch (ctl & 3) {
        case 0: break;                                              /* same delta */
        case 1: delta += (uint64_t)(int8_t)take(&p, end, 1); break; /* jitter */
        case 2: delta = take(&p, end, 3); break;                    /* mid-size delta */
        default: delta = take(&p, end, 8); break;                   /* anything */
        }
        t = (int64_t)((uint64_t)t + delta);
        switch (ctl >> 2 & 3) {
        case 0: break;                                     /* same value */
        case 1: v ^= take(&p, end, 1) << (ctl >> 4); break; /* small window */
        case 2: v ^= take(&p, end, 4) << (ctl >> 5); break; /* mid window */
        default: v = take(&p, end, 8); break;              /* any pattern, NaNs too */
        }
        g_s[n++] = (struct fz_sample){t, v};
    }
    if (n == 0)
        return;

    struct tsdb_xor *c = NULL;
    if (tsdb_xor_create(&c))
        return;
    for (size_t i = 0; i < n; i++)
        check(tsdb_xor_append(c, g_s[i].t, tsdb_f64_from_bits(g_s[i].v)) == 0);
    size_t len;
    const uint8_t *b = tsdb_xor_bytes(c, &len);

    /* exact-size copy so ASan catches any read past the end */
    uint8_t *copy = mp_xmalloc(len);
    memcpy(copy, b, len);
    struct tsdb_xor_iter it;
    tsdb_xor_iter_init(&it, copy, len);
    for (size_t i = 0; i < n; i++) {
        int64_t ts;
        double dv;
        check(tsdb_xor_iter_next(&it, &ts, &dv) == 0);
        check(ts == g_s[i].t && tsdb_f64_bits(dv) == g_s[i].v);
    }
    int64_t ts;
    double dv;
    check(tsdb_xor_iter_next(&it, &ts, &dv) == MP_EEOF);

    size_t k = (size_t)(g_s[0].v % (n + 1));
    struct tsdb_xor *part = NULL;
    if (tsdb_xor_create(&part) == 0) {
        for (size_t i = 0; i < k; i++)
            check(tsdb_xor_append(part, g_s[i].t, tsdb_f64_from_bits(g_s[i].v)) == 0);
        size_t plen;
        const uint8_t *pb = tsdb_xor_bytes(part, &plen);
        struct tsdb_xor *re = NULL;
        if (tsdb_xor_open(pb, plen, &re, NULL) == 0) {
            for (size_t i = k; i < n; i++)
                check(tsdb_xor_append(re, g_s[i].t, tsdb_f64_from_bits(g_s[i].v)) == 0);
            size_t rlen;
            const uint8_t *rb = tsdb_xor_bytes(re, &rlen);
            check(rlen == len && memcmp(rb, copy, len) == 0);
            tsdb_xor_destroy(re);
        }
        tsdb_xor_destroy(part);
    }
    mp_free(copy);
    tsdb_xor_destroy(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1)
        round_trip_mode(data + 1, size - 1);
    else
        decode_mode(data + 1, size - 1);
    return 0;
}
