/* SPDX-License-Identifier: Apache-2.0 */
/* tests/tsdb/test_chunk_xor.c: the XOR chunk codec and the chunk cut policy.
 * Byte vectors come from tsdb.md 1.8 and protocols.md 6.6 (verified against Prometheus) and
 * from hand encoding of the spec (dod bucket edges, value windows; the bits are spelled out
 * beside each vector). Random round trips compare against a slow oracle that mimics Go's
 * bstream writer bit by bit (count of free bits in the last byte, writeByte appending a byte),
 * so the "empty trailing byte" quirk is checked independently of the codec's shortcut. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "tsdb/chunk_xor.h"
#include "tsdb/tsdb.h"

/* ---- helpers -------------------------------------------------------------------------------- */

static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;
    for (; *s; s++) {
        int d;
        if (*s >= '0' && *s <= '9')
            d = *s - '0';
        else if (*s >= 'a' && *s <= 'f')
            d = *s - 'a' + 10;
        else
            continue;
        if (hi < 0) {
            hi = d;
        } else {
            cr_assert(n < cap);
            out[n++] = (uint8_t)(hi << 4 | d);
            hi = -1;
        }
    }
    cr_assert(hi < 0, "odd number of hex digits");
    return n;
}

static void hexdump(const uint8_t *p, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 3 < cap; i++)
        k += (size_t)snprintf(out + k, cap - k, "%02x", p[i]);
    out[k] = 0;
}

struct sample {
    int64_t t;
    uint64_t v; /* bit pattern */
};

static struct tsdb_xor *encode(const struct sample *s, size_t n)
{
    struct tsdb_xor *c = NULL;
    cr_assert_eq(tsdb_xor_create(&c), 0);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(tsdb_xor_append(c, s[i].t, tsdb_f64_from_bits(s[i].v)), 0);
    return c;
}

static void expect_bytes(const struct sample *s, size_t n, const char *hex)
{
    uint8_t want[256];
    size_t wn = unhex(hex, want, sizeof want);
    struct tsdb_xor *c = encode(s, n);
    size_t len;
    const uint8_t *got = tsdb_xor_bytes(c, &len);
    char g[600], w[600];
    hexdump(got, len, g, sizeof g);
    hexdump(want, wn, w, sizeof w);
    cr_assert(len == wn && memcmp(got, want, wn) == 0, "encoded %s\n   expected %s", g, w);
    tsdb_xor_destroy(c);
}

/* Decodes data (copied to an exact-size heap block so ASan sees any overread) and compares
 * with s. */
static void expect_decodes(const uint8_t *data, size_t len, const struct sample *s, size_t n)
{
    uint8_t *copy = mp_xmalloc(len ? len : 1);
    memcpy(copy, data, len);
    struct tsdb_xor_iter it;
    tsdb_xor_iter_init(&it, copy, len);
    cr_assert_eq(tsdb_xor_iter_num_samples(&it), n);
    for (size_t i = 0; i < n; i++) {
        int64_t t;
        double v;
        int rc = tsdb_xor_iter_next(&it, &t, &v);
        struct mp_err e = {0};
        (void)tsdb_xor_iter_error(&it, &e);
        cr_assert_eq(rc, 0, "sample %zu: rc %d %s", i, rc, e.msg);
        cr_assert_eq(t, s[i].t, "sample %zu: t %" PRId64 " want %" PRId64, i, t, s[i].t);
        cr_assert_eq(tsdb_f64_bits(v), s[i].v, "sample %zu: bits %016" PRIx64 " want %016" PRIx64,
                     i, tsdb_f64_bits(v), s[i].v);
    }
    int64_t t;
    double v;
    cr_assert_eq(tsdb_xor_iter_next(&it, &t, &v), MP_EEOF);
    cr_assert_eq(tsdb_xor_iter_next(&it, &t, &v), MP_EEOF);
    mp_free(copy);
}

static uint64_t B(double v)
{
    return tsdb_f64_bits(v);
}

/* splitmix64: fixed seeds, printed on failure */
static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* ---- slow oracle: Go's bstream + xorAppender, one bit at a time ---------------------------- */

struct oracle {
    uint8_t b[65536 * 20];
    size_t len;
    unsigned count; /* free bits in b[len-1], as Go's bstream.count */
    int64_t t;
    uint64_t delta, v;
    unsigned lead, trail; /* lead 0xff = no window yet */
    unsigned n;
};

static void o_bit(struct oracle *o, int bit)
{
    if (o->count == 0) {
        o->b[o->len++] = 0;
        o->count = 8;
    }
    if (bit)
        o->b[o->len - 1] |= (uint8_t)(1u << (o->count - 1));
    o->count--;
}

static void o_byte(struct oracle *o, uint8_t byt)
{
    if (o->count == 0) {
        o->b[o->len++] = 0;
        o->count = 8;
    }
    o->b[o->len - 1] |= (uint8_t)(byt >> (8 - o->count));
    o->b[o->len++] = (uint8_t)((unsigned)byt << o->count);
}

static void o_bits(struct oracle *o, uint64_t u, unsigned nbits)
{
    if (nbits < 64)
        u <<= 64 - nbits;
    while (nbits >= 8) {
        o_byte(o, (uint8_t)(u >> 56));
        u <<= 8;
        nbits -= 8;
    }
    while (nbits > 0) {
        o_bit(o, (int)(u >> 63));
        u <<= 1;
        nbits--;
    }
}

static void o_init(struct oracle *o)
{
    o->b[0] = o->b[1] = 0;
    o->len = 2;
    o->count = 0;
    o->lead = 0xff;
    o->trail = 0;
    o->n = 0;
    o->t = 0;
    o->delta = 0;
    o->v = 0;
}

static void o_value(struct oracle *o, uint64_t v)
{
    uint64_t x = v ^ o->v;
    if (x == 0) {
        o_bit(o, 0);
        return;
    }
    o_bit(o, 1);
    unsigned lead = 0, trail = 0;
    while (!(x & (UINT64_C(1) << (63 - lead))))
        lead++;
    while (!(x & (UINT64_C(1) << trail)))
        trail++;
    if (lead >= 32)
        lead = 31;
    if (o->lead != 0xff && lead >= o->lead && trail >= o->trail) {
        o_bit(o, 0);
        o_bits(o, x >> o->trail, 64 - o->lead - o->trail);
    } else {
        o->lead = lead;
        o->trail = trail;
        o_bit(o, 1);
        o_bits(o, lead, 5);
        unsigned sig = 64 - lead - trail;
        o_bits(o, sig, 6); /* 64 & 63 == 0: only the low 6 bits are written */
        o_bits(o, x >> trail, sig);
    }
}

static void o_append(struct oracle *o, int64_t t, uint64_t v)
{
    uint64_t delta = (uint64_t)t - (uint64_t)o->t;
    if (o->n == 0) {
        uint64_t u = ((uint64_t)t << 1) ^ (uint64_t)(t >> 63);
        do {
            o_byte(o, (uint8_t)(u >= 0x80 ? (u | 0x80) : u));
            u >>= 7;
        } while (u);
        o_bits(o, v, 64);
        delta = 0;
    } else if (o->n == 1) {
        uint64_t u = delta;
        do {
            o_byte(o, (uint8_t)(u >= 0x80 ? (u | 0x80) : u));
            u >>= 7;
        } while (u);
        o_value(o, v);
    } else {
        int64_t dod = (int64_t)(delta - o->delta);
        if (dod == 0) {
            o_bit(o, 0);
        } else if (dod >= -8191 && dod <= 8192) {
            o_bits(o, 2, 2);
            o_bits(o, (uint64_t)dod & 0x3fff, 14);
        } else if (dod >= -65535 && dod <= 65536) {
            o_bits(o, 6, 3);
            o_bits(o, (uint64_t)dod & 0x1ffff, 17);
        } else if (dod >= -524287 && dod <= 524288) {
            o_bits(o, 14, 4);
            o_bits(o, (uint64_t)dod & 0xfffff, 20);
        } else {
            o_bits(o, 15, 4);
            o_bits(o, (uint64_t)dod, 64);
        }
        o_value(o, v);
    }
    o->t = t;
    o->v = v;
    o->delta = delta;
    o->n++;
    o->b[0] = (uint8_t)(o->n >> 8);
    o->b[1] = (uint8_t)o->n;
}

static struct oracle g_oracle;

/* ---- worked examples -------------------------------------------------------------------------- */

Test(chunk_xor, spec_1_8_worked_example_byte_for_byte)
{
    struct sample s[] = {{1700000000000, B(1.0)}, {1700000010000, B(2.0)}, {1700000020005, B(4.0)}};
    expect_bytes(s, 3, "0003 80a0abfef962 3ff0000000000000 904e c25fff 80058008");
    uint8_t d[64];
    size_t n = unhex("0003 80a0abfef962 3ff0000000000000 904e c25fff 80058008", d, sizeof d);
    cr_assert_eq(n, 25);
    expect_decodes(d, n, s, 3);
}

Test(chunk_xor, spec_1_8_regular_series_opens_new_window)
{
    struct sample s[] = {{1700000000000, B(1.0)}, {1700000010000, B(2.0)}, {1700000020000, B(3.0)}};
    expect_bytes(s, 3, "0003 80a0abfef962 3ff0000000000000 904e c25fff 6c06");
}

Test(chunk_xor, protocols_6_6_vectors_with_go_trailing_byte)
{
    struct sample s[] = {{1000, B(1.0)}, {16000, B(1.0)}, {31000, B(2.0)}};
    expect_bytes(s, 1, "0001 d00f 3ff0000000000000 00"); /* Go's empty trailing byte */
    expect_bytes(s, 2, "0002 d00f 3ff0000000000000 9875 00");
    expect_bytes(s, 3, "0003 d00f 3ff0000000000000 9875 3097ffc0");
    struct sample s2[] = {{1000, B(1.0)}, {16000, B(2.0)}};
    expect_bytes(s2, 2, "0002 d00f 3ff0000000000000 9875 c25fff");
}

Test(chunk_xor, empty_chunk_is_two_zero_bytes)
{
    struct tsdb_xor *c = NULL;
    cr_assert_eq(tsdb_xor_create(&c), 0);
    size_t len;
    const uint8_t *b = tsdb_xor_bytes(c, &len);
    cr_assert(len == 2 && b[0] == 0 && b[1] == 0);
    cr_assert_eq(tsdb_xor_num_samples(c), 0);
    expect_decodes(b, len, NULL, 0);
    tsdb_xor_destroy(c);
    tsdb_xor_destroy(NULL);
}

/* ---- timestamps: delta-of-delta buckets --------------------------------------------------- */

/* (1000, 1.0), (2000, 1.0), (3000 + dod, 1.0). Common prefix: 0003 | d00f (zig-zag 2000) |
 * 3ff0... | e807 (uvarint 1000). The listed tail starts with sample 1's value bit '0', then
 * sample 2's dod field, then its value bit '0', then zero padding. */
struct dod_vec {
    int64_t dod;
    const char *tail;
};

static const struct dod_vec dod_vecs[] = {
    {0, "00"},                        /* 0 0 0 */
    {1, "400080"},                    /* 0 10 00000000000001 0 */
    {-1, "5fff80"},                   /* 0 10 11111111111111 0 */
    {8192, "500000"},                 /* 0 10 10000000000000 0: +2^13 fits 14 bits */
    {-8191, "500080"},                /* 0 10 10000000000001 0 */
    {8193, "610008"},                 /* 0 110 00010000000000001 0 */
    {-8192, "6f0000"},                /* 0 110 11110000000000000 0: -2^13 does not fit 14 */
    {65536, "680000"},                /* 0 110 10000000000000000 0 */
    {-65535, "680008"},               /* 0 110 10000000000000001 0 */
    {65537, "70800080"},              /* 0 1110 00010000000000000001 0 */
    {-65536, "77800000"},             /* 0 1110 11110000000000000000 0 */
    {524288, "74000000"},             /* 0 1110 10000000000000000000 0 */
    {-524287, "74000080"},            /* 0 1110 10000000000000000001 0 */
    {524289, "780000000000400008"},   /* 0 1111 <64 bits of 0x80001> 0 */
    {-524288, "7fffffffffffc00000"},  /* 0 1111 <64 bits of -0x80000> 0 */
};

Test(chunk_xor, dod_bucket_edges_by_hand)
{
    for (size_t i = 0; i < sizeof dod_vecs / sizeof dod_vecs[0]; i++) {
        struct sample s[] = {{1000, B(1.0)}, {2000, B(1.0)}, {3000 + dod_vecs[i].dod, B(1.0)}};
        char hex[128];
        snprintf(hex, sizeof hex, "0003 d00f 3ff0000000000000 e807 %s", dod_vecs[i].tail);
        expect_bytes(s, 3, hex);
        uint8_t d[64];
        size_t n = unhex(hex, d, sizeof d);
        expect_decodes(d, n, s, 3);
    }
}

Test(chunk_xor, dod_extremes_and_wrapping_timestamps_round_trip)
{
    struct sample s[] = {
        {INT64_MIN, B(1.0)}, {INT64_MAX, B(2.0)}, {0, B(3.0)}, {-1, B(4.0)},
        {INT64_MAX, B(5.0)}, {INT64_MIN, B(6.0)}, {INT64_MIN + 1, B(7.0)},
    };
    struct tsdb_xor *c = encode(s, 7);
    size_t len;
    const uint8_t *b = tsdb_xor_bytes(c, &len);
    expect_decodes(b, len, s, 7);
    tsdb_xor_destroy(c);
}

Test(chunk_xor, negative_timestamps_and_large_gaps)
{
    struct sample s[] = {{-1700000000000, B(1.0)}, {-1699999990000, B(1.0)}, {-5, B(1.0)},
                         {0, B(1.0)},               {1, B(1.0)},               {INT64_C(1) << 50, B(1.0)},
                         {(INT64_C(1) << 50) + 1, B(1.0)}};
    struct tsdb_xor *c = encode(s, 7);
    size_t len;
    const uint8_t *b = tsdb_xor_bytes(c, &len);
    expect_decodes(b, len, s, 7);
    /* t0 = -1700000000000: zig-zag 2 * 1700000000000 - 1 = 3399999999999 -> LEB128
     * ff 9f ab fe f9 62 (the 1.8 example's 80 a0 ab fe f9 62 minus one) */
    uint8_t want[6] = {0xff, 0x9f, 0xab, 0xfe, 0xf9, 0x62};
    cr_assert(memcmp(b + 2, want, 6) == 0);
    tsdb_xor_destroy(c);
}

/* ---- values: XOR windows ------------------------------------------------------------------- */

Test(chunk_xor, value_leading_zero_clamp_at_31)
{
    /* x = 1: clz 63 clamped to 31, ctz 0, M = 33: 11 11111 100001 <33 bits of 1> */
    struct sample s[] = {{1000, 0}, {2000, 1}};
    expect_bytes(s, 2, "0002 d00f 0000000000000000 e807 ff 08 00 00 00 04");
    uint8_t d[64];
    size_t n = unhex("0002 d00f 0000000000000000 e807 ff 08 00 00 00 04", d, sizeof d);
    expect_decodes(d, n, s, 2);
}

Test(chunk_xor, value_leading_zeros_exactly_32_are_clamped)
{
    /* x = 0xffffffff: clz exactly 32 -> 31, so M = 33: 11 11111 100001 0<32 ones> */
    struct sample s[] = {{1000, 0}, {2000, UINT64_C(0xffffffff)}};
    expect_bytes(s, 2, "0002 d00f 0000000000000000 e807 ff 0b ff ff ff fc");
}

Test(chunk_xor, value_64_significant_bits_stored_as_zero)
{
    /* x = 0x8000000000000001: L 0, T 0, M 64 written as 000000: 11 00000 000000 <64 bits> */
    struct sample s[] = {{1000, 0}, {2000, UINT64_C(0x8000000000000001)}};
    expect_bytes(s, 2, "0002 d00f 0000000000000000 e807 c0 04 00 00 00 00 00 00 00 08");
}

Test(chunk_xor, value_window_reuse_uses_clamped_leading)
{
    /* 0 -> 1 opens window L=31 (clamped from 63) T=0: 11 11111 100001 <33 bits of 1>;
     * 1 -> 3 (x = 2: clz 62 clamped to 31 >= 31, ctz 1 >= 0) reuses it: dod '0', then
     * '10' <33 bits of 2>. */
    struct sample s[] = {{1000, 0}, {2000, 1}, {3000, 3}};
    const char *hex = "0003 d00f 0000000000000000 e807 ff 08 00 00 00 05 00 00 00 00 80";
    expect_bytes(s, 3, hex);
    uint8_t d[64];
    size_t n = unhex(hex, d, sizeof d);
    expect_decodes(d, n, s, 3);
}

Test(chunk_xor, same_value_costs_one_bit)
{
    struct sample s[4];
    for (int i = 0; i < 4; i++)
        s[i] = (struct sample){1000 + 1000 * i, B(42.0)};
    /* sample 1 '0'; samples 2,3 '0' '0' each: 5 bits -> one byte */
    expect_bytes(s, 4, "0004 d00f 4045000000000000 e807 00");
}

Test(chunk_xor, stale_marker_and_nan_payloads_kept_bit_for_bit)
{
    struct sample s[] = {
        {1000, TSDB_STALE_NAN_BITS},
        {2000, UINT64_C(0x7ff8000000000001)}, /* Go math.NaN() */
        {3000, UINT64_C(0xfff8000000000000)}, /* negative quiet NaN */
        {4000, UINT64_C(0x7ff4deadbeef0001)}, /* signalling NaN with payload */
        {5000, TSDB_STALE_NAN_BITS},
        {6000, B(INFINITY)},
        {7000, B(-INFINITY)},
        {8000, B(0.0)},
        {9000, B(-0.0)},
        {10000, TSDB_STALE_NAN_BITS},
    };
    struct tsdb_xor *c = encode(s, 10);
    size_t len;
    const uint8_t *b = tsdb_xor_bytes(c, &len);
    expect_decodes(b, len, s, 10);
    tsdb_xor_destroy(c);

    cr_assert(tsdb_is_stale(tsdb_stale_nan()));
    cr_assert(!tsdb_is_stale(NAN));
    cr_assert(!tsdb_is_stale(1.0));
}

Test(chunk_xor, iterator_reports_stale_marker)
{
    struct tsdb_xor *c = NULL;
    cr_assert_eq(tsdb_xor_create(&c), 0);
    cr_assert_eq(tsdb_xor_append(c, 1000, tsdb_stale_nan()), 0);
    size_t len;
    const uint8_t *b = tsdb_xor_bytes(c, &len);
    struct tsdb_xor_iter it;
    tsdb_xor_iter_init(&it, b, len);
    int64_t ts;
    double v;
    cr_assert_eq(tsdb_xor_iter_next(&it, &ts, &v), 0);
    cr_assert(ts == 1000 && tsdb_is_stale(v));
    tsdb_xor_destroy(c);
}

/* ---- random round trips against the oracle ------------------------------------------------- */

static void gen_series(uint64_t *seed, struct sample *s, size_t n, int shape)
{
    int64_t t = (int64_t)(rnd(seed) % UINT64_C(4000000000000)) - INT64_C(1000000000000);
    double v = (double)(rnd(seed) % 1000);
    for (size_t i = 0; i < n; i++) {
        uint64_t r = rnd(seed);
        switch (shape) {
        case 0: /* counter, 10 s, jitter of a few ms */
            t += 10000 + (int64_t)(r % 11) - 5;
            v += (double)(r >> 40 & 7);
            s[i] = (struct sample){t, B(v)};
            break;
        case 1: /* gauge with random deltas across every dod bucket */
            t += (int64_t)(r % 3 == 0 ? r % 2000000 : r % 20000);
            s[i] = (struct sample){t, B((double)(int64_t)(r >> 20 & 0xffff) / 16.0)};
            break;
        case 2: /* raw 64-bit patterns, NaNs included, arbitrary timestamps */
            s[i] = (struct sample){(int64_t)rnd(seed), r};
            break;
        default: /* mostly constant with rare changes and stale markers */
            t += 15000;
            if (r % 17 == 0)
                v = (double)(r % 100);
            s[i] = (struct sample){t, r % 23 == 0 ? TSDB_STALE_NAN_BITS : B(v)};
            break;
        }
    }
}

static struct sample g_s[2000];

Test(chunk_xor, random_round_trips_match_go_writer_oracle)
{
    for (uint64_t seed0 = 1; seed0 <= 400; seed0++) {
        uint64_t seed = seed0;
        size_t n = 1 + rnd(&seed) % 300;
        int shape = (int)(seed0 % 4);
        gen_series(&seed, g_s, n, shape);
        struct tsdb_xor *c = encode(g_s, n);
        o_init(&g_oracle);
        for (size_t i = 0; i < n; i++)
            o_append(&g_oracle, g_s[i].t, g_s[i].v);
        size_t len;
        const uint8_t *b = tsdb_xor_bytes(c, &len);
        cr_assert_eq(len, g_oracle.len, "seed %" PRIu64 " shape %d n %zu: len %zu oracle %zu",
                     seed0, shape, n, len, g_oracle.len);
        cr_assert(memcmp(b, g_oracle.b, len) == 0, "seed %" PRIu64 ": bytes differ", seed0);
        cr_assert_eq(tsdb_xor_min_time(c), g_s[0].t);
        cr_assert_eq(tsdb_xor_max_time(c), g_s[n - 1].t);
        expect_decodes(b, len, g_s, n);
        tsdb_xor_destroy(c);
    }
}

Test(chunk_xor, max_samples_then_limit)
{
    struct tsdb_xor *c = NULL;
    cr_assert_eq(tsdb_xor_create(&c), 0);
    uint64_t seed = 7;
    for (uint32_t i = 0; i < TSDB_XOR_MAX_SAMPLES; i++)
        cr_assert_eq(tsdb_xor_append(c, (int64_t)i * 1000 + (int64_t)(rnd(&seed) % 3),
                                     tsdb_f64_from_bits(rnd(&seed))),
                     0);
    size_t len0, len1;
    (void)tsdb_xor_bytes(c, &len0);
    cr_assert_eq(tsdb_xor_append(c, INT64_MAX, 1.0), MP_ELIMIT);
    const uint8_t *b = tsdb_xor_bytes(c, &len1);
    cr_assert_eq(len0, len1);
    cr_assert(b[0] == 0xff && b[1] == 0xff);
    struct tsdb_xor_iter it;
    tsdb_xor_iter_init(&it, b, len1);
    int64_t t;
    double v;
    size_t k = 0;
    while (tsdb_xor_iter_next(&it, &t, &v) == 0)
        k++;
    cr_assert_eq(k, TSDB_XOR_MAX_SAMPLES);
    cr_assert_eq(tsdb_xor_iter_error(&it, NULL), 0);
    tsdb_xor_destroy(c);
}

Test(chunk_xor, failed_growth_leaves_chunk_unchanged)
{
    struct tsdb_xor *c = NULL;
    cr_assert_eq(tsdb_xor_create(&c), 0);
    uint64_t seed = 3;
    int failures = 0;
    for (int i = 0; i < 200; i++) {
        double v = tsdb_f64_from_bits(rnd(&seed));
        size_t before;
        const uint8_t *b = tsdb_xor_bytes(c, &before);
        static uint8_t snap[8192];
        memcpy(snap, b, before);
        mp_alloc_fail_at(1);
        int rc = tsdb_xor_append(c, i * 1000, v);
        mp_alloc_fail_at(0);
        if (rc == MP_ENOMEM) {
            failures++;
            size_t after;
            b = tsdb_xor_bytes(c, &after);
            cr_assert(after == before && memcmp(b, snap, before) == 0);
            cr_assert_eq(tsdb_xor_num_samples(c), (size_t)i);
            cr_assert_eq(tsdb_xor_append(c, i * 1000, v), 0); /* the retry succeeds */
        } else {
            cr_assert_eq(rc, 0);
        }
    }
    cr_assert(failures > 0, "no growth happened in 200 random samples");
    o_init(&g_oracle);
    seed = 3;
    for (int i = 0; i < 200; i++)
        o_append(&g_oracle, i * 1000, rnd(&seed));
    size_t len;
    const uint8_t *b = tsdb_xor_bytes(c, &len);
    cr_assert(len == g_oracle.len && memcmp(b, g_oracle.b, len) == 0);
    tsdb_xor_destroy(c);
}

/* ---- re-open ---------------------------------------------------------------------------------- */

Test(chunk_xor, reopen_and_append_equals_one_go)
{
    for (uint64_t seed0 = 1; seed0 <= 60; seed0++) {
        uint64_t seed = seed0 * 1000;
        size_t n = 2 + rnd(&seed) % 150;
        gen_series(&seed, g_s, n, (int)(seed0 % 4));
        struct tsdb_xor *whole = encode(g_s, n);
        size_t wlen;
        const uint8_t *w = tsdb_xor_bytes(whole, &wlen);
        for (size_t k = 0; k <= n; k++) {
            struct tsdb_xor *part = encode(g_s, k);
            size_t plen;
            const uint8_t *p = tsdb_xor_bytes(part, &plen);
            struct tsdb_xor *re = NULL;
            struct mp_err e = {0};
            cr_assert_eq(tsdb_xor_open(p, plen, &re, &e), 0, "%s", e.msg);
            size_t rlen;
            const uint8_t *r = tsdb_xor_bytes(re, &rlen);
            cr_assert(rlen == plen && memcmp(r, p, plen) == 0, "seed %" PRIu64 " k %zu", seed0, k);
            for (size_t i = k; i < n; i++)
                cr_assert_eq(tsdb_xor_append(re, g_s[i].t, tsdb_f64_from_bits(g_s[i].v)), 0);
            r = tsdb_xor_bytes(re, &rlen);
            cr_assert(rlen == wlen && memcmp(r, w, wlen) == 0,
                      "seed %" PRIu64 " n %zu: re-open after %zu samples differs", seed0, n, k);
            if (k > 0)
                cr_assert_eq(tsdb_xor_min_time(re), g_s[0].t);
            tsdb_xor_destroy(re);
            tsdb_xor_destroy(part);
        }
        tsdb_xor_destroy(whole);
    }
}

Test(chunk_xor, reopen_without_go_tail_byte_and_with_dirty_padding)
{
    /* data from an encoder without Go's tail byte, and padding bits set by a sloppy writer:
     * re-opening must still continue the stream correctly */
    struct sample s[] = {{1000, B(1.0)}, {16000, B(1.0)}, {31000, B(2.0)}, {46000, B(2.5)}};
    uint8_t d[32];
    size_t n = unhex("0001 d00f 3ff0000000000000", d, sizeof d); /* no trailing 00 */
    struct tsdb_xor *c = NULL;
    cr_assert_eq(tsdb_xor_open(d, n, &c, NULL), 0);
    for (int i = 1; i < 4; i++)
        cr_assert_eq(tsdb_xor_append(c, s[i].t, tsdb_f64_from_bits(s[i].v)), 0);
    struct tsdb_xor *one = encode(s, 4);
    size_t l1, l2;
    const uint8_t *b1 = tsdb_xor_bytes(c, &l1);
    const uint8_t *b2 = tsdb_xor_bytes(one, &l2);
    cr_assert(l1 == l2 && memcmp(b1, b2, l1) == 0);
    tsdb_xor_destroy(c);

    n = unhex("0003 d00f 3ff0000000000000 9875 3097ffff", d, sizeof d); /* 6 padding bits set */
    cr_assert_eq(tsdb_xor_open(d, n, &c, NULL), 0);
    cr_assert_eq(tsdb_xor_append(c, s[3].t, tsdb_f64_from_bits(s[3].v)), 0);
    b1 = tsdb_xor_bytes(c, &l1);
    cr_assert(l1 == l2 && memcmp(b1, b2, l1) == 0);
    tsdb_xor_destroy(c);
    tsdb_xor_destroy(one);
}

Test(chunk_xor, reopen_rejects_corrupt_data_with_position)
{
    uint8_t d[32];
    size_t n = unhex("0003 d00f 3ff0000000000000 9875", d, sizeof d); /* 3 announced, 2 present */
    struct tsdb_xor *c = NULL;
    struct mp_err e = {0};
    cr_assert_eq(tsdb_xor_open(d, n, &c, &e), MP_EPARSE);
    cr_assert_eq(c, NULL);
    cr_assert(strstr(e.msg, "sample 2 of 3") != NULL, "%s", e.msg);
}

/* ---- robustness: truncation and corruption ----------------------------------------------- */

static int drain(const uint8_t *data, size_t len, size_t *count)
{
    uint8_t *copy = mp_xmalloc(len ? len : 1);
    memcpy(copy, data, len);
    struct tsdb_xor_iter it;
    tsdb_xor_iter_init(&it, copy, len);
    int64_t t;
    double v;
    int rc;
    *count = 0;
    while ((rc = tsdb_xor_iter_next(&it, &t, &v)) == 0)
        ++*count;
    cr_assert(*count <= tsdb_xor_iter_num_samples(&it));
    cr_assert(rc == MP_EEOF || rc == MP_EPARSE, "rc %d", rc);
    cr_assert_eq(rc == MP_EPARSE, tsdb_xor_iter_error(&it, NULL) == MP_EPARSE);
    mp_free(copy);
    return rc;
}

Test(chunk_xor, every_truncated_prefix_is_an_error)
{
    for (uint64_t seed0 = 1; seed0 <= 40; seed0++) {
        uint64_t seed = seed0 * 77;
        size_t n = 1 + rnd(&seed) % 130;
        gen_series(&seed, g_s, n, (int)(seed0 % 4));
        struct tsdb_xor *c = encode(g_s, n);
        size_t len;
        const uint8_t *b = tsdb_xor_bytes(c, &len);
        /* the Go tail byte is padding: without it the chunk still decodes */
        size_t need = len;
        size_t cnt;
        if (len > 2 && b[len - 1] == 0 && drain(b, len - 1, &cnt) == MP_EEOF)
            need = len - 1;
        for (size_t l = 0; l < need; l++) {
            int rc = drain(b, l, &cnt);
            cr_assert_eq(rc, MP_EPARSE, "seed %" PRIu64 ": prefix %zu of %zu decoded (%zu)",
                         seed0, l, len, cnt);
        }
        cr_assert_eq(drain(b, need, &cnt), MP_EEOF);
        cr_assert_eq(cnt, n);
        tsdb_xor_destroy(c);
    }
}

Test(chunk_xor, corrupted_bytes_never_crash)
{
    uint64_t seed = 0xc0ffee;
    for (int round = 0; round < 3000; round++) {
        size_t n = 1 + rnd(&seed) % 60;
        gen_series(&seed, g_s, n, round % 4);
        struct tsdb_xor *c = encode(g_s, n);
        size_t len;
        const uint8_t *b0 = tsdb_xor_bytes(c, &len);
        uint8_t buf[2048];
        memcpy(buf, b0, len);
        int flips = 1 + (int)(rnd(&seed) % 4);
        for (int f = 0; f < flips; f++) {
            uint64_t r = rnd(&seed);
            buf[r % len] ^= (uint8_t)(1u << (r >> 32 & 7));
        }
        size_t cnt;
        (void)drain(buf, len, &cnt);
        tsdb_xor_destroy(c);
    }
    /* hostile headers: huge count, window wider than 64 bits, varint overflow */
    uint8_t d[64];
    size_t cnt, n;
    n = unhex("ffff d00f 3ff0000000000000 9875 00", d, sizeof d);
    cr_assert_eq(drain(d, n, &cnt), MP_EPARSE);
    cr_assert_eq(cnt, 5); /* the 7 spare bits hold three more '0' '0' samples, then it ends */
    n = unhex("0002 d00f 3ff0000000000000 9875 ffff ffff ffff ffff ffff", d, sizeof d);
    cr_assert_eq(drain(d, n, &cnt), MP_EPARSE); /* '11' L=31 M=63 */
    n = unhex("0001 ffffffffffffffffff7f 3ff0000000000000", d, sizeof d);
    cr_assert_eq(drain(d, n, &cnt), MP_EPARSE);
    n = unhex("0001", d, sizeof d);
    cr_assert_eq(drain(d, n, &cnt), MP_EPARSE);
    cr_assert_eq(drain(d, 1, &cnt), MP_EPARSE);
    cr_assert_eq(drain(d, 0, &cnt), MP_EPARSE);
}

Test(chunk_xor, reuse_before_any_window_decodes_like_go)
{
    /* Go's decoder starts with window (0, 0): '10' then reads 64 bits. Sample 1 = '10' +
     * 64 bits of x = 0x7ff0000000000000 (1.0 ^ 2.0) */
    struct sample s[] = {{1000, B(1.0)}, {16000, B(2.0)}};
    uint8_t d[64];
    size_t n = unhex("0002 d00f 3ff0000000000000 9875 9ffc000000000000 00", d, sizeof d);
    expect_decodes(d, n, s, 2);
}

/* ---- seek ------------------------------------------------------------------------------------- */

Test(chunk_xor, seek)
{
    struct sample s[50];
    for (int i = 0; i < 50; i++)
        s[i] = (struct sample){1000 + 10000 * i, B(i * 1.5)};
    struct tsdb_xor *c = encode(s, 50);
    size_t len;
    const uint8_t *b = tsdb_xor_bytes(c, &len);
    struct tsdb_xor_iter it;
    int64_t t;
    double v;

    tsdb_xor_iter_init(&it, b, len);
    cr_assert_eq(tsdb_xor_iter_seek(&it, INT64_MIN, &t, &v), 0);
    cr_assert(t == 1000 && v == 0.0);
    cr_assert_eq(tsdb_xor_iter_seek(&it, 1000, &t, &v), 0); /* current qualifies: stays */
    cr_assert_eq(t, 1000);
    cr_assert_eq(tsdb_xor_iter_seek(&it, 1001, &t, &v), 0);
    cr_assert(t == 11000 && v == 1.5);
    cr_assert_eq(tsdb_xor_iter_seek(&it, 251000, &t, &v), 0); /* exact */
    cr_assert(t == 251000 && v == 37.5);
    cr_assert_eq(tsdb_xor_iter_seek(&it, 5, &t, &v), 0); /* never goes back */
    cr_assert_eq(t, 251000);
    cr_assert_eq(tsdb_xor_iter_next(&it, &t, &v), 0);
    cr_assert_eq(t, 261000);
    cr_assert_eq(tsdb_xor_iter_seek(&it, 491000, &t, &v), 0); /* last */
    cr_assert_eq(t, 491000);
    cr_assert_eq(tsdb_xor_iter_seek(&it, 491001, &t, &v), MP_EEOF);

    tsdb_xor_iter_init(&it, b, len);
    cr_assert_eq(tsdb_xor_iter_seek(&it, INT64_MAX, &t, &v), MP_EEOF);
    tsdb_xor_iter_init(&it, b, len - 3);
    cr_assert_eq(tsdb_xor_iter_seek(&it, INT64_MAX, &t, &v), MP_EPARSE);
    cr_assert_eq(tsdb_xor_iter_seek(&it, 0, &t, &v), MP_EPARSE); /* sticky */
    tsdb_xor_destroy(c);
}

Test(chunk_xor, take_hands_out_the_bytes)
{
    struct sample s[] = {{1000, B(1.0)}, {16000, B(1.0)}, {31000, B(2.0)}};
    struct tsdb_xor *c = encode(s, 3);
    size_t len;
    uint8_t *b = tsdb_xor_take(c, &len);
    uint8_t want[32];
    size_t wn = unhex("0003 d00f 3ff0000000000000 9875 3097ffc0", want, sizeof want);
    cr_assert(len == wn && memcmp(b, want, wn) == 0);
    mp_free(b);
}

/* ---- cut policy (tsdb.md 1.7) ---------------------------------------------------------------- */

/* Feeds samples from t0 every step_ms until the end of the block holding t0; returns chunk
 * sizes in counts[]. */
static size_t simulate_cuts(int64_t t0, int64_t step_ms, size_t count, size_t *counts,
                            size_t max_chunks, int random_values, uint32_t samples_per_chunk)
{
    struct tsdb_xor_cutter cs;
    tsdb_xor_cutter_init(&cs, TSDB_CHUNK_RANGE_DEFAULT_MS, samples_per_chunk);
    struct tsdb_xor *cur = NULL;
    size_t nch = 0;
    uint64_t seed = 99;
    for (size_t i = 0; i < count; i++) {
        int64_t t = t0 + (int64_t)i * step_ms;
        if (tsdb_xor_cutter_should_cut(&cs, cur, t)) {
            if (cur) {
                cr_assert(nch < max_chunks);
                counts[nch++] = tsdb_xor_num_samples(cur);
                size_t len;
                (void)tsdb_xor_bytes(cur, &len);
                cr_assert(len <= TSDB_XOR_MAX_BYTES, "chunk of %zu bytes", len);
                /* a chunk cut below its sample target was cut by the byte rule, just past it */
                if (counts[nch - 1] < samples_per_chunk && t % 7200000 != 0)
                    cr_assert(len > TSDB_XOR_MAX_BYTES - TSDB_XOR_MAX_SAMPLE_BYTES &&
                                  len <= TSDB_XOR_MAX_BYTES - TSDB_XOR_MAX_SAMPLE_BYTES + 9,
                              "chunk of %zu samples cut at %zu bytes", counts[nch - 1], len);
                tsdb_xor_destroy(cur);
            }
            cr_assert_eq(tsdb_xor_create(&cur), 0);
        }
        double v = random_values ? tsdb_f64_from_bits(rnd(&seed) >> 2) : (double)i;
        cr_assert_eq(tsdb_xor_append(cur, t, v), 0);
    }
    if (cur) {
        counts[nch++] = tsdb_xor_num_samples(cur);
        tsdb_xor_destroy(cur);
    }
    return nch;
}

Test(chunk_cut, spec_example_37_min_after_boundary)
{
    /* 1700001420000 is 37 min after a 2 h boundary; next boundary 1700006400000 */
    size_t counts[16];
    size_t n = simulate_cuts(1700001420000, 10000, (1700006400000 - 1700001420000) / 10000,
                             counts, 16, 0, 120);
    cr_assert_eq(n, 4);
    cr_assert(counts[0] == 125 && counts[1] == 125 && counts[2] == 124 && counts[3] == 124,
              "%zu %zu %zu %zu", counts[0], counts[1], counts[2], counts[3]);
}

Test(chunk_cut, aligned_series_get_equal_chunks)
{
    static const struct {
        int64_t step;
        size_t chunks, each;
    } cases[] = {{10000, 6, 120}, {15000, 4, 120}, {30000, 2, 120}, {60000, 1, 120}};
    for (size_t k = 0; k < 4; k++) {
        size_t counts[16];
        int64_t t0 = 1700006400000; /* a multiple of 2 h */
        size_t n = simulate_cuts(t0, cases[k].step, (size_t)(7200000 / cases[k].step), counts,
                                 16, 0, 120);
        cr_assert_eq(n, cases[k].chunks, "step %" PRId64 ": %zu chunks", cases[k].step, n);
        for (size_t i = 0; i < n; i++)
            cr_assert_eq(counts[i], cases[k].each);
    }
}

Test(chunk_cut, block_boundary_always_cuts)
{
    size_t counts[16];
    /* 1 sample per 10 min across a boundary: one chunk per block */
    size_t n = simulate_cuts(1700006400000 - 3600000, 600000, 12, counts, 16, 0, 120);
    cr_assert_eq(n, 2);
    cr_assert(counts[0] == 6 && counts[1] == 6);
}

Test(chunk_cut, byte_cap_cuts_before_1024_bytes)
{
    size_t counts[64];
    /* random 62-bit values cost ~8.1 bytes each; aiming at 200 samples per chunk, the
     * 1005-byte rule cuts first (at 124 samples: 2 + 12 + 123 * 65 bits > 1005 bytes) */
    size_t n = simulate_cuts(1700006400000, 10000, 720, counts, 64, 1, 200);
    cr_assert(n > 4, "%zu chunks", n);
    cr_assert(counts[0] > 100 && counts[0] < 130, "%zu", counts[0]);
}

Test(chunk_cut, rate_increase_hits_240_cap)
{
    struct tsdb_xor_cutter cs;
    tsdb_xor_cutter_init(&cs, TSDB_CHUNK_RANGE_DEFAULT_MS, TSDB_SAMPLES_PER_CHUNK_DEFAULT);
    struct tsdb_xor *cur = NULL;
    int64_t t = 1700006400000;
    size_t first = 0;
    for (int i = 0; i < 400; i++) {
        t += i < 30 ? 60000 : 1; /* slow start predicts one chunk, then a burst */
        if (tsdb_xor_cutter_should_cut(&cs, cur, t)) {
            if (cur) {
                first = tsdb_xor_num_samples(cur);
                tsdb_xor_destroy(cur);
                break;
            }
            cr_assert_eq(tsdb_xor_create(&cur), 0);
        }
        cr_assert_eq(tsdb_xor_append(cur, t, 1.0), 0);
    }
    cr_assert_eq(first, 240);
}

Test(chunk_cut, helpers_match_prometheus)
{
    cr_assert_eq(tsdb_range_for_timestamp(0, 7200000), 7200000);
    cr_assert_eq(tsdb_range_for_timestamp(7199999, 7200000), 7200000);
    cr_assert_eq(tsdb_range_for_timestamp(7200000, 7200000), 14400000);
    cr_assert_eq(tsdb_range_for_timestamp(-1, 7200000), 7200000); /* Go truncates toward 0 */
    /* tsdb.md 1.7: chunk 1 of the worked example */
    int64_t start = 1700001420000, max = 1700006400000;
    cr_assert_eq(tsdb_compute_chunk_end_time(start, start + 290000, max, 4), start + 1245000);
    cr_assert_eq(tsdb_compute_chunk_end_time(start, start + 3000000, max, 4), max);
}

/* ---- real Prometheus output -------------------------------------------------------------- */

/* CRC-32C (Castagnoli), bitwise: slow and obvious, for the fixture's chunk record. */
static uint32_t crc32c(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
    }
    return ~c;
}

/* testdata/xor/promtool-2.42-chunks-000001 is the chunks/000001 segment that
 * `promtool tsdb create-blocks-from openmetrics promtool-2.42-input.om out` (Prometheus 2.42,
 * Debian package) wrote for one series of 100 samples: dod in several buckets, NaN, +-Inf.
 * promtool-2.42-samples.txt lists the input samples (ms, Go float text). */
Test(chunk_xor, decodes_and_reproduces_promtool_chunk)
{
    cr_assert_eq(crc32c((const uint8_t *)"123456789", 9), 0xe3069283u);
    FILE *f = fopen(MP_TESTDATA_DIR "/xor/promtool-2.42-chunks-000001", "rb");
    cr_assert(f != NULL);
    static uint8_t seg[4096];
    size_t n = fread(seg, 1, sizeof seg, f);
    fclose(f);
    cr_assert(n > 8 && n < sizeof seg);
    cr_assert(seg[0] == 0x85 && seg[1] == 0xbd && seg[2] == 0x40 && seg[3] == 0xdd && seg[4] == 1);
    /* chunk record at offset 8: uvarint len | encoding | data | BE32 CRC32C(enc + data) */
    size_t off = 8, len = 0;
    for (unsigned s = 0;; s += 7) {
        cr_assert(off < n && s < 63);
        len |= (size_t)(seg[off] & 0x7f) << s;
        if (!(seg[off++] & 0x80))
            break;
    }
    cr_assert(off + 1 + len + 4 <= n);
    cr_assert_eq(seg[off], TSDB_ENC_XOR);
    const uint8_t *data = seg + off + 1;
    uint32_t crc = (uint32_t)data[len] << 24 | (uint32_t)data[len + 1] << 16 |
                   (uint32_t)data[len + 2] << 8 | data[len + 3];
    cr_assert_eq(crc, crc32c(seg + off, len + 1));

    f = fopen(MP_TESTDATA_DIR "/xor/promtool-2.42-samples.txt", "r");
    cr_assert(f != NULL);
    static struct sample want[200];
    size_t ns = 0;
    char vs[64];
    int64_t t;
    while (ns < 200 && fscanf(f, "%" SCNd64 " %63s", &t, vs) == 2) {
        double v = strcmp(vs, "NaN") == 0    ? tsdb_f64_from_bits(UINT64_C(0x7ff8000000000001))
                   : strcmp(vs, "+Inf") == 0 ? INFINITY
                   : strcmp(vs, "-Inf") == 0 ? -INFINITY
                                             : strtod(vs, NULL);
        want[ns++] = (struct sample){t, B(v)};
    }
    fclose(f);
    cr_assert_eq(ns, 100);
    expect_decodes(data, len, want, ns);

    /* our encoder produces Prometheus's bytes exactly */
    struct tsdb_xor *c = encode(want, ns);
    size_t elen;
    const uint8_t *e = tsdb_xor_bytes(c, &elen);
    cr_assert_eq(elen, len);
    cr_assert(memcmp(e, data, len) == 0);
    tsdb_xor_destroy(c);
}
