/* SPDX-License-Identifier: Apache-2.0 */
/* tests/tsdb/test_xor_decode.c: the XOR decoder against the straightforward one it replaced
 * (kept here as the oracle: one 64-bit peek per field, every field through its own reader).
 * Random chunks of every dod class and value window, then the same chunks truncated and with
 * flipped bits: both decoders must give the same samples, the same status at the same sample,
 * and Seek must stop where repeated Next stops. Fixed seeds. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <string.h>

#include "common/err.h"
#include "tsdb/tsdb.h"

#define HEADER_BITS 16u

static inline uint64_t load_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return __builtin_bswap64(v);
}

/* ---- the oracle: the decoder of 62ddc8f ---------------------------------------------------- */

/* The 64 bits starting at it->pos, zeros past the end of the data. Reads only inside
 * [data, data + len). */
static uint64_t ref_peek64(const struct tsdb_xor_iter *it)
{
    unsigned sh = (unsigned)(it->pos & 7);
    const uint8_t *p;
    uint8_t tmp[16];
    if (__builtin_expect(it->pos + 72 <= (uint64_t)it->len * 8, 1)) {
        p = it->data + (size_t)(it->pos >> 3);
    } else {
        /* last bytes of the data: copy what is left into a zeroed window */
        memset(tmp, 0, sizeof tmp);
        if (it->pos < (uint64_t)it->len * 8) {
            size_t byte = (size_t)(it->pos >> 3);
            memcpy(tmp, it->data + byte, it->len - byte);
        }
        p = tmp;
    }
    uint64_t w = load_be64(p);
    if (sh)
        w = (w << sh) | (p[8] >> (8 - sh));
    return w;
}

/* n in 1..64 bits. */
static inline uint64_t ref_get_bits(struct tsdb_xor_iter *it, unsigned n)
{
    uint64_t w = ref_peek64(it);
    it->pos += n;
    return n == 64 ? w : w >> (64 - n);
}

static int ref_fail(struct tsdb_xor_iter *it, const char *why)
{
    it->err = MP_EPARSE;
    it->why = why;
    return MP_EPARSE;
}

/* Go binary.ReadUvarint over the aligned stream: at most 10 bytes, the 10th at most 1. */
static int ref_get_uvarint(struct tsdb_xor_iter *it, uint64_t *out)
{
    size_t byte = (size_t)(it->pos >> 3);
    uint64_t x = 0;
    unsigned s = 0;
    for (unsigned i = 0; i < 10; i++) {
        if (byte + i >= it->len)
            return ref_fail(it, "truncated varint");
        uint8_t b = it->data[byte + i];
        if (b < 0x80) {
            if (i == 9 && b > 1)
                return ref_fail(it, "varint overflows 64 bits");
            it->pos += 8u * (i + 1);
            *out = x | (uint64_t)b << s;
            return 0;
        }
        x |= (uint64_t)(b & 0x7f) << s;
        s += 7;
    }
    return ref_fail(it, "varint overflows 64 bits");
}

/* Reads one XOR value field (samples >= 1). The stream has room for it or ref_peek64 pads with
 * zeros; the caller checks the position afterwards. */
static inline int ref_get_value(struct tsdb_xor_iter *it)
{
    uint64_t w = ref_peek64(it);
    if (!(w >> 63)) {
        it->pos += 1;
        return 0;
    }
    unsigned lead, trail, sig;
    if (!(w >> 62 & 1)) {
        it->pos += 2;
        lead = it->lead;
        trail = it->trail;
    } else {
        lead = (unsigned)(w >> 57) & 31u; /* '11' LLLLL MMMMMM */
        sig = (unsigned)(w >> 51) & 63u;
        if (sig == 0)
            sig = 64;
        if (lead + sig > 64)
            return ref_fail(it, "XOR window wider than 64 bits");
        trail = 64 - lead - sig;
        it->lead = (uint8_t)lead;
        it->trail = (uint8_t)trail;
        it->window = true;
        it->pos += 13;
    }
    sig = 64 - lead - trail;
    it->vbits ^= ref_get_bits(it, sig) << trail;
    return 0;
}

static int ref_next(struct tsdb_xor_iter *it, int64_t *t_ms, double *v)
{
    if (it->err)
        return it->err;
    if (it->read >= it->total)
        return MP_EEOF;
    uint64_t end = (uint64_t)it->len * 8;

    if (__builtin_expect(it->read >= 2, 1)) {
        uint64_t w = ref_peek64(it);
        if (!(w >> 62)) {
            /* fast path: same delta ('0') and same value ('0'), 2 bits */
            it->pos += 2;
        } else {
            int64_t dod;
            if (!(w >> 63)) {
                dod = 0;
                it->pos += 1;
            } else if (!(w >> 62 & 1)) {
                uint64_t u = (w >> 48) & 0x3fffu;
                dod = u > 0x2000u ? (int64_t)u - 0x4000 : (int64_t)u;
                it->pos += 16;
            } else if (!(w >> 61 & 1)) {
                uint64_t u = (w >> 44) & 0x1ffffu;
                dod = u > 0x10000u ? (int64_t)u - 0x20000 : (int64_t)u;
                it->pos += 20;
            } else if (!(w >> 60 & 1)) {
                uint64_t u = (w >> 40) & 0xfffffu;
                dod = u > 0x80000u ? (int64_t)u - 0x100000 : (int64_t)u;
                it->pos += 24;
            } else {
                it->pos += 4;
                dod = (int64_t)ref_get_bits(it, 64);
            }
            it->delta += (uint64_t)dod;
            if (ref_get_value(it))
                return it->err;
        }
        if (it->pos > end)
            return ref_fail(it, "truncated sample");
        it->t = (int64_t)((uint64_t)it->t + it->delta);
    } else if (it->read == 0) {
        uint64_t u;
        if (ref_get_uvarint(it, &u))
            return it->err;
        it->t = (int64_t)(u >> 1) ^ -(int64_t)(u & 1); /* zig-zag */
        it->vbits = ref_get_bits(it, 64);
        if (it->pos > end)
            return ref_fail(it, "truncated first value");
    } else {
        if (ref_get_uvarint(it, &it->delta))
            return it->err;
        if (ref_get_value(it))
            return it->err;
        if (it->pos > end)
            return ref_fail(it, "truncated sample");
        it->t = (int64_t)((uint64_t)it->t + it->delta);
    }
    it->read++;
    *t_ms = it->t;
    *v = tsdb_f64_from_bits(it->vbits);
    return 0;
}

/* ---- generator ------------------------------------------------------------------------------ */

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* A dod from one of the five classes (0, 14, 17, 20 and 64 bits). */
static int64_t gen_dod(uint64_t *s, unsigned mode)
{
    uint64_t r = rnd(s);
    switch (mode == 4 ? r % 5 : (r % 8 ? 0 : 1 + r % 4)) {
    case 0:
        return 0;
    case 1:
        return (int64_t)(r >> 8 & 0x3fff) - 8191;
    case 2:
        return (int64_t)(r >> 8 & 0x1ffff) - 65535;
    case 3:
        return (int64_t)(r >> 8 & 0xfffff) - 524287;
    default:
        return (int64_t)(r >> 3) - (INT64_C(1) << 59);
    }
}

static uint64_t gen_value(uint64_t *s, unsigned mode, uint64_t prev, int i)
{
    uint64_t r = rnd(s);
    double v;
    memcpy(&v, &prev, sizeof v);
    (void)0;
    switch (mode) {
    case 0: /* counter */
        v += (double)(r % 4 ? r % 20 : 0);
        break;
    case 1: /* gauge */
        v = (double)(r % 100000) / 7.0;
        break;
    case 2: /* constant with rare changes and staleness markers */
        if (r % 16 == 0)
            return TSDB_STALE_NAN_BITS;
        if (r % 8 == 0)
            v = (double)(r % 5);
        break;
    case 3: /* random bit patterns: every window width */
        return r >> (r % 64) << (rnd(s) % 64);
    default:
        v = (double)i * 1.5;
        break;
    }
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static struct tsdb_xor *gen_chunk(uint64_t *s, size_t n, unsigned mode, int64_t *ts)
{
    struct tsdb_xor *c;
    cr_assert_eq(tsdb_xor_create(&c), 0);
    int64_t t = (int64_t)(rnd(s) % 4000000000000u) - 1000000000000;
    int64_t delta = 10000;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (i)
            delta = (int64_t)((uint64_t)delta +
                              (uint64_t)gen_dod(s, mode)); /* wraps as the format does */
        t = (int64_t)((uint64_t)t + (uint64_t)delta);
        v = gen_value(s, mode, v, (int)i);
        ts[i] = t;
        cr_assert_eq(tsdb_xor_append(c, t, tsdb_f64_from_bits(v)), 0);
    }
    return c;
}

/* ---- comparisons ---------------------------------------------------------------------------- */

static void same_next(const uint8_t *d, size_t len, const char *what, uint64_t seed)
{
    struct tsdb_xor_iter a, b;
    tsdb_xor_iter_init(&a, d, len);
    tsdb_xor_iter_init(&b, d, len);
    for (int k = 0; k < 70000; k++) {
        int64_t ta = 0, tb = 0;
        double va = 0, vb = 0;
        int ra = ref_next(&a, &ta, &va), rb = tsdb_xor_iter_next(&b, &tb, &vb);
        cr_assert_eq(ra, rb, "%s seed %" PRIu64 " sample %d: status %d, oracle %d", what, seed, k,
                     rb, ra);
        cr_assert_eq(a.read, b.read, "%s seed %" PRIu64 " sample %d", what, seed, k);
        if (ra) {
            if (ra == MP_EPARSE)
                cr_assert_str_eq(a.why, b.why, "%s seed %" PRIu64, what, seed);
            return;
        }
        cr_assert_eq(ta, tb, "%s seed %" PRIu64 " sample %d", what, seed, k);
        cr_assert_eq(tsdb_f64_bits(va), tsdb_f64_bits(vb), "%s seed %" PRIu64 " sample %d", what,
                     seed, k);
        cr_assert_eq(a.pos, b.pos);
        cr_assert_eq(a.lead, b.lead);
        cr_assert_eq(a.trail, b.trail);
        cr_assert_eq(a.window, b.window);
    }
}

Test(xor_decode, same_samples_as_the_oracle)
{
    uint64_t seed = 0x5eed;
    for (int round = 0; round < 4000; round++) {
        size_t n = 1 + rnd(&seed) % 240;
        unsigned mode = (unsigned)(round % 5);
        int64_t ts[240];
        struct tsdb_xor *c = gen_chunk(&seed, n, mode, ts);
        size_t len;
        const uint8_t *d = tsdb_xor_bytes(c, &len);
        same_next(d, len, "intact", (uint64_t)round);
        tsdb_xor_destroy(c);
    }
}

Test(xor_decode, same_errors_on_truncated_and_flipped_chunks)
{
    uint64_t seed = 0xf11b;
    static uint8_t buf[8192];
    for (int round = 0; round < 3000; round++) {
        size_t n = 1 + rnd(&seed) % 120;
        int64_t ts[240];
        struct tsdb_xor *c = gen_chunk(&seed, n, (unsigned)(round % 5), ts);
        size_t len;
        const uint8_t *d = tsdb_xor_bytes(c, &len);
        cr_assert(len <= sizeof buf);
        for (size_t l = 0; l <= len; l += 1 + rnd(&seed) % 5)
            same_next(d, l, "truncated", (uint64_t)round);
        memcpy(buf, d, len);
        int flips = 1 + (int)(rnd(&seed) % 6);
        for (int f = 0; f < flips; f++) {
            uint64_t r = rnd(&seed);
            buf[r % len] ^= (uint8_t)(1u << (r >> 32 & 7));
        }
        same_next(buf, len, "flipped", (uint64_t)round);
        tsdb_xor_destroy(c);
    }
}

Test(xor_decode, seek_stops_where_next_does)
{
    uint64_t seed = 0x5eec;
    for (int round = 0; round < 2000; round++) {
        size_t n = 1 + rnd(&seed) % 240;
        int64_t ts[240];
        /* modes 0-3 keep deltas positive enough to be in time order (mode 4 may wrap) */
        struct tsdb_xor *c = gen_chunk(&seed, n, (unsigned)(round % 4), ts);
        size_t len;
        const uint8_t *d = tsdb_xor_bytes(c, &len);
        bool ordered = true;
        for (size_t i = 1; i < n; i++)
            ordered &= ts[i] > ts[i - 1];
        if (!ordered) {
            tsdb_xor_destroy(c);
            continue;
        }
        for (int q = 0; q < 4; q++) {
            size_t k = rnd(&seed) % (n + 1);
            int64_t target = k < n ? ts[k] - (int64_t)(rnd(&seed) % 3) : ts[n - 1] + 1;
            struct tsdb_xor_iter it;
            tsdb_xor_iter_init(&it, d, len);
            int64_t t;
            double v;
            int rc = tsdb_xor_iter_seek(&it, target, &t, &v);
            size_t want = 0;
            while (want < n && ts[want] < target)
                want++;
            if (want == n) {
                cr_assert_eq(rc, MP_EEOF, "round %d", round);
                continue;
            }
            cr_assert_eq(rc, 0, "round %d", round);
            cr_assert_eq(t, ts[want], "round %d", round);
            cr_assert_eq(it.read, want + 1, "round %d", round);
        }
        tsdb_xor_destroy(c);
    }
}
