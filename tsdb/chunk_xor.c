/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/chunk_xor.c: the XOR float chunk of Prometheus (tsdb/chunkenc/xor.go), after Gorilla
 * (Pelkonen et al., PVLDB 8(12) 2015, http://www.vldb.org/pvldb/vol8/p1816-teller.pdf) with
 * Prometheus's millisecond buckets. Spec: /work/shared/spec/tsdb.md 1.1-1.8.
 *
 *   chunk    = BE16 n | bit stream, MSB first, zero padded
 *   sample 0 = varint(t0) (zig-zag, byte aligned) | 64 raw value bits
 *   sample 1 = uvarint(t1 - t0) (byte aligned)     | xor(v1)
 *   sample k = dod(delta_k - delta_k-1)            | xor(vk)
 *   dod      = '0' (0) | '10' 14b [-8191, 8192] | '110' 17b | '1110' 20b | '1111' 64b
 *   xor      = '0' (same bits)
 *            | '10' (x >> prevT) in 64 - prevL - prevT bits          (window reused)
 *            | '11' L:5 (clz clamped to 31) M:6 (64 stored as 0) (x >> T) in M bits
 *
 * Worked example (tsdb.md 1.8, verified against Prometheus): (1700000000000, 1.0),
 * (1700000010000, 2.0), (1700000020005, 4.0) encode as
 *   0003 | 80a0abfef962 3ff0000000000000 | 904e c25fff | 80 05 80 08
 *   count  t0 varint    1.0                 10000 '11' 00001 001011 11111111111
 *                                                 '10'+dod 5 in 14 bits, '10' + 11 bits of 4.0^2.0
 *
 * Invariant of the writer: every byte of buf past the last written bit is zero, so a field is
 * ORed into place with one big-endian 64-bit load/store, and bytes() can be served at any time.
 * The reader never touches memory outside [data, data + len): peek64() zero-pads past the end
 * and each sample checks it did not consume more bits than exist. */
#include "tsdb/chunk_xor.h"

#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"

#define HEADER_BITS 16u
/* Bytes the writer may touch past the current byte: one worst-case sample, the Go tail byte,
 * and the 8-byte window of put_bits. */
#define WRITE_SLACK (TSDB_XOR_MAX_SAMPLE_BYTES + 1u + 8u)
#define INITIAL_CAP 128u /* Prometheus allocates 128 bytes for a new chunk too */


static inline uint64_t load_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return __builtin_bswap64(v);
}

static inline void store_be64(uint8_t *p, uint64_t v)
{
    v = __builtin_bswap64(v);
    memcpy(p, &v, sizeof v);
}

/* ---- writer --------------------------------------------------------------------------------- */

/* ORs the low n bits of val (1 <= n <= 57, val < 2^n) in at bit c->pos. Needs buf[pos/8 .. +8)
 * inside cap, which reserve() guarantees. */
static inline void put_bits(struct tsdb_xor *c, uint64_t val, unsigned n)
{
    size_t byte = (size_t)(c->pos >> 3);
    unsigned used = (unsigned)(c->pos & 7);
    uint64_t w = load_be64(c->buf + byte);
    w |= val << (64 - used - n);
    store_be64(c->buf + byte, w);
    c->pos += n;
}

/* Any n in 1..64. */
static inline void put_bits_wide(struct tsdb_xor *c, uint64_t val, unsigned n)
{
    if (n > 32) {
        put_bits(c, val >> 32, n - 32);
        put_bits(c, val & 0xffffffffu, 32);
    } else {
        put_bits(c, val, n);
    }
}

/* Whole bytes while the stream is byte aligned (samples 0 and 1). */
static inline void put_uvarint(struct tsdb_xor *c, uint64_t u)
{
    uint8_t *p = c->buf + (c->pos >> 3);
    size_t k = 0;
    while (u >= 0x80) {
        p[k++] = (uint8_t)(u | 0x80);
        u >>= 7;
    }
    p[k++] = (uint8_t)u;
    c->pos += 8 * k;
}

static int reserve(struct tsdb_xor *c)
{
    size_t need = (size_t)(c->pos >> 3) + WRITE_SLACK;
    if (need <= c->cap)
        return 0;
    size_t ncap = c->cap * 2;
    while (ncap < need)
        ncap *= 2;
    uint8_t *nb = mp_realloc(c->buf, ncap);
    if (!nb)
        return MP_ENOMEM;
    memset(nb + c->cap, 0, ncap - c->cap);
    c->buf = nb;
    c->cap = ncap;
    return 0;
}

/* Writes the XOR of the new value against the previous one (samples >= 1) and records whether
 * Go's writer would leave an empty trailing byte: it does when the significant-bits field,
 * written last, starts on a byte boundary and is a whole number of bytes long. */
static inline void put_value(struct tsdb_xor *c, uint64_t vbits)
{
    uint64_t x = vbits ^ c->vbits;
    if (x == 0) {
        put_bits(c, 0, 1);
        c->tail = false;
        return;
    }
    unsigned lead = (unsigned)__builtin_clzll(x);
    unsigned trail = (unsigned)__builtin_ctzll(x);
    /* 5-bit field: Prometheus clamps, so the window then includes some leading zeros */
    if (lead >= 32)
        lead = 31;
    unsigned sig;
    if (c->window && lead >= c->lead && trail >= c->trail) {
        put_bits(c, 0x2, 2);
        trail = c->trail;
        sig = 64 - c->lead - trail;
    } else {
        c->window = true;
        c->lead = (uint8_t)lead;
        c->trail = (uint8_t)trail;
        sig = 64 - lead - trail;
        /* '11', L in 5 bits, M in 6 bits with 64 written as 0 */
        put_bits(c, (UINT64_C(0x3) << 11) | ((uint64_t)lead << 6) | (sig & 63u), 13);
    }
    c->tail = (c->pos & 7) == 0 && (sig & 7) == 0;
    put_bits_wide(c, x >> trail, sig);
}

/* Prometheus bitRange: -(2^(k-1) - 1) <= dod <= 2^(k-1), asymmetric on purpose. */
static inline bool fits(int64_t dod, unsigned k)
{
    int64_t half = INT64_C(1) << (k - 1);
    return dod >= -(half - 1) && dod <= half;
}

int tsdb_xor_init(struct tsdb_xor *c)
{
    memset(c, 0, sizeof *c);
    c->buf = mp_calloc(1, INITIAL_CAP);
    if (!c->buf)
        return MP_ENOMEM;
    c->cap = INITIAL_CAP;
    c->pos = HEADER_BITS;
    return 0;
}

void tsdb_xor_fini(struct tsdb_xor *c)
{
    mp_free(c->buf);
    memset(c, 0, sizeof *c);
}

int tsdb_xor_create(struct tsdb_xor **out)
{
    struct tsdb_xor *c = mp_malloc(sizeof *c);
    if (!c)
        return MP_ENOMEM;
    if (tsdb_xor_init(c)) {
        mp_free(c);
        return MP_ENOMEM;
    }
    *out = c;
    return 0;
}

void tsdb_xor_destroy(struct tsdb_xor *c)
{
    if (!c)
        return;
    mp_free(c->buf);
    mp_free(c);
}

int tsdb_xor_append(struct tsdb_xor *c, int64_t t_ms, double v)
{
    if (c->n >= TSDB_XOR_MAX_SAMPLES)
        return MP_ELIMIT;
    /* the only fallible step comes first, so a failed append leaves the chunk as it was */
    int rc = reserve(c);
    if (rc)
        return rc;
    uint64_t vbits = tsdb_f64_bits(v);
    /* unsigned arithmetic: Go wraps on overflow, C must not hit signed-overflow UB */
    uint64_t delta = (uint64_t)t_ms - (uint64_t)c->t;
    if (c->n == 0) {
        uint64_t t = (uint64_t)t_ms;
        put_uvarint(c, (t << 1) ^ (uint64_t)(t_ms >> 63)); /* zig-zag, Go PutVarint */
        put_bits_wide(c, vbits, 64);
        c->tail = true; /* 64 aligned bits: Go leaves an empty byte */
        c->t0 = t_ms;
        delta = 0;
    } else if (c->n == 1) {
        put_uvarint(c, delta);
        put_value(c, vbits);
    } else {
        int64_t dod = (int64_t)(delta - c->delta);
        if (dod == 0)
            put_bits(c, 0, 1);
        else if (fits(dod, 14))
            put_bits(c, (UINT64_C(0x2) << 14) | ((uint64_t)dod & 0x3fffu), 16);
        else if (fits(dod, 17))
            put_bits(c, (UINT64_C(0x6) << 17) | ((uint64_t)dod & 0x1ffffu), 20);
        else if (fits(dod, 20))
            put_bits(c, (UINT64_C(0xe) << 20) | ((uint64_t)dod & 0xfffffu), 24);
        else {
            put_bits(c, 0xf, 4);
            put_bits_wide(c, (uint64_t)dod, 64);
        }
        put_value(c, vbits);
    }
    c->t = t_ms;
    c->delta = delta;
    c->vbits = vbits;
    c->n++;
    c->buf[0] = (uint8_t)(c->n >> 8);
    c->buf[1] = (uint8_t)c->n;
    return 0;
}

static size_t data_len(const struct tsdb_xor *c)
{
    return (size_t)((c->pos + 7) >> 3) + (c->tail ? 1u : 0u);
}

const uint8_t *tsdb_xor_bytes(const struct tsdb_xor *c, size_t *len)
{
    *len = data_len(c);
    return c->buf;
}

size_t tsdb_xor_num_samples(const struct tsdb_xor *c)
{
    return c->n;
}

int64_t tsdb_xor_min_time(const struct tsdb_xor *c)
{
    return c->t0;
}

int64_t tsdb_xor_max_time(const struct tsdb_xor *c)
{
    return c->t;
}

uint8_t *tsdb_xor_take(struct tsdb_xor *c, size_t *len)
{
    uint8_t *b = c->buf;
    *len = data_len(c);
    mp_free(c);
    return b;
}

int tsdb_xor_open(const uint8_t *data, size_t len, struct tsdb_xor **out, struct mp_err *err)
{
    struct tsdb_xor_iter it;
    tsdb_xor_iter_init(&it, data, len);
    int64_t t, t0 = 0;
    double v;
    int rc;
    while ((rc = tsdb_xor_iter_next(&it, &t, &v)) == 0)
        if (it.read == 1)
            t0 = t;
    if (rc != MP_EEOF)
        return tsdb_xor_iter_error(&it, err);

    struct tsdb_xor *c = mp_calloc(1, sizeof *c);
    if (!c)
        return mp_err_set(err, MP_ENOMEM, "xor chunk: re-open: out of memory");
    size_t used = (size_t)((it.pos + 7) >> 3);
    c->cap = INITIAL_CAP;
    while (c->cap < used + WRITE_SLACK)
        c->cap *= 2;
    c->buf = mp_calloc(1, c->cap);
    if (!c->buf) {
        mp_free(c);
        return mp_err_set(err, MP_ENOMEM, "xor chunk: re-open: out of memory");
    }
    memcpy(c->buf, data, used);
    /* padding bits must be zero: the writer ORs new fields into the last byte */
    if (it.pos & 7)
        c->buf[used - 1] &= (uint8_t)(0xff00u >> (it.pos & 7));
    c->pos = it.pos;
    /* keep Go's empty trailing byte if the data has it, so bytes() is unchanged by a re-open */
    c->tail = it.total > 0 && (it.pos & 7) == 0 && len > used;
    c->n = it.total;
    c->t = it.t;
    c->delta = it.delta;
    c->vbits = it.vbits;
    /* Prometheus re-opens with the iterator's (0, 0) window when no '11' was seen; tracking
     * whether one was seen keeps re-open + append identical to appending in one go */
    c->window = it.window;
    c->lead = it.lead;
    c->trail = it.trail;
    c->t0 = t0;
    *out = c;
    return 0;
}

/* ---- reader --------------------------------------------------------------------------------- */

/* peek64 near the end of the data: the bytes left, zero padded. Out of line, so that the hot
 * decoder keeps no stack buffer. Here pos + 72 > len * 8, so the window starts in the last 9
 * bytes. */
static __attribute__((noinline)) uint64_t peek64_tail(const struct tsdb_xor_iter *it)
{
    size_t byte = (size_t)(it->pos >> 3);
    unsigned sh = (unsigned)(it->pos & 7);
    if (byte >= it->len)
        return 0;
    if (byte + 9 <= it->len) { /* sh > 0 and all 9 bytes present */
        const uint8_t *p = it->data + byte;
        return load_be64(p) << sh | (uint64_t)(p[8] >> (8 - sh));
    }
    if (it->len >= 8) { /* the last 8 bytes, shifted: zeros come in from the right */
        unsigned o = (unsigned)(byte - (it->len - 8));
        return load_be64(it->data + it->len - 8) << (8 * o + sh);
    }
    uint64_t w = 0;
    for (size_t i = 0; i < 8; i++)
        w = w << 8 | (byte + i < it->len ? it->data[byte + i] : 0u);
    return w << sh;
}

/* The 64 bits starting at it->pos, zeros past the end of the data. Reads only inside
 * [data, data + len). */
static inline uint64_t peek64(const struct tsdb_xor_iter *it)
{
    if (__builtin_expect(it->pos + 72 > (uint64_t)it->len * 8, 0))
        return peek64_tail(it);
    const uint8_t *p = it->data + (size_t)(it->pos >> 3);
    unsigned sh = (unsigned)(it->pos & 7);
    uint64_t w = load_be64(p);
    if (sh)
        w = (w << sh) | (p[8] >> (8 - sh));
    return w;
}

/* n in 1..64 bits. */
static inline uint64_t get_bits(struct tsdb_xor_iter *it, unsigned n)
{
    uint64_t w = peek64(it);
    it->pos += n;
    return n == 64 ? w : w >> (64 - n);
}

static int fail(struct tsdb_xor_iter *it, const char *why)
{
    it->err = MP_EPARSE;
    it->why = why;
    return MP_EPARSE;
}

/* Go binary.ReadUvarint over the aligned stream: at most 10 bytes, the 10th at most 1. */
static int get_uvarint(struct tsdb_xor_iter *it, uint64_t *out)
{
    size_t byte = (size_t)(it->pos >> 3);
    uint64_t x = 0;
    unsigned s = 0;
    for (unsigned i = 0; i < 10; i++) {
        if (byte + i >= it->len)
            return fail(it, "truncated varint");
        uint8_t b = it->data[byte + i];
        if (b < 0x80) {
            if (i == 9 && b > 1)
                return fail(it, "varint overflows 64 bits");
            it->pos += 8u * (i + 1);
            *out = x | (uint64_t)b << s;
            return 0;
        }
        x |= (uint64_t)(b & 0x7f) << s;
        s += 7;
    }
    return fail(it, "varint overflows 64 bits");
}

void tsdb_xor_iter_init(struct tsdb_xor_iter *it, const uint8_t *data, size_t len)
{
    memset(it, 0, sizeof *it);
    it->data = data;
    it->len = len;
    it->pos = HEADER_BITS;
    if (len < 2) {
        it->err = MP_EPARSE;
        it->why = "shorter than the 2-byte header";
        return;
    }
    it->total = (uint32_t)data[0] << 8 | data[1];
}

/* Reads one XOR value field (samples >= 1). The stream has room for it or peek64 pads with
 * zeros; the caller checks the position afterwards. */
static inline int get_value(struct tsdb_xor_iter *it)
{
    uint64_t w = peek64(it);
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
            return fail(it, "XOR window wider than 64 bits");
        trail = 64 - lead - sig;
        it->lead = (uint8_t)lead;
        it->trail = (uint8_t)trail;
        it->window = true;
        it->pos += 13;
    }
    sig = 64 - lead - trail;
    it->vbits ^= get_bits(it, sig) << trail;
    return 0;
}

/* Samples 0 and 1 (byte-aligned varints). 0, or the sticky error. */
static int decode_head_sample(struct tsdb_xor_iter *it)
{
    uint64_t end = (uint64_t)it->len * 8;
    if (it->read == 0) {
        uint64_t u;
        if (get_uvarint(it, &u))
            return it->err;
        it->t = (int64_t)(u >> 1) ^ -(int64_t)(u & 1); /* zig-zag */
        it->vbits = get_bits(it, 64);
        if (it->pos > end)
            return fail(it, "truncated first value");
    } else {
        if (get_uvarint(it, &it->delta))
            return it->err;
        if (get_value(it))
            return it->err;
        if (it->pos > end)
            return fail(it, "truncated sample");
        it->t = (int64_t)((uint64_t)it->t + it->delta);
    }
    it->read++;
    return 0;
}

/* Decodes the next sample into it->t / it->vbits. 0, MP_EEOF, or the sticky error.
 * Samples >= 2 are read from one 64-bit window when their dod and value fit in it (a dod of
 * up to 24 bits and a value of up to 40: nearly every sample of a scraped series); the rest go
 * through get_value, which reads the same fields, in the same order, with the same checks. */
static inline int decode_next(struct tsdb_xor_iter *it)
{
    if (it->err)
        return it->err;
    if (it->read >= it->total)
        return MP_EEOF;
    if (__builtin_expect(it->read < 2, 0))
        return decode_head_sample(it);
    uint64_t w = peek64(it);
    unsigned used;
    int64_t dod;
    if (!(w >> 62)) {
        /* same delta ('0') and same value ('0'), 2 bits */
        it->pos += 2;
        goto check;
    }
    if (!(w >> 63)) {
        dod = 0;
        used = 1;
    } else if (!(w >> 62 & 1)) {
        uint64_t u = (w >> 48) & 0x3fffu;
        dod = u > 0x2000u ? (int64_t)u - 0x4000 : (int64_t)u;
        used = 16;
    } else if (!(w >> 61 & 1)) {
        uint64_t u = (w >> 44) & 0x1ffffu;
        dod = u > 0x10000u ? (int64_t)u - 0x20000 : (int64_t)u;
        used = 20;
    } else if (!(w >> 60 & 1)) {
        uint64_t u = (w >> 40) & 0xfffffu;
        dod = u > 0x80000u ? (int64_t)u - 0x100000 : (int64_t)u;
        used = 24;
    } else {
        it->pos += 4;
        dod = (int64_t)get_bits(it, 64);
        it->delta += (uint64_t)dod;
        if (get_value(it))
            return it->err;
        goto check;
    }
    it->delta += (uint64_t)dod;
    /* the value field, from the bits of w after the dod */
    uint64_t r = w << used;
    if (!(r >> 63)) {
        used += 1;
    } else if (!(r >> 62 & 1)) {
        unsigned sig = 64u - it->lead - it->trail;
        if (used + 2 + sig > 64) {
            it->pos += used;
            if (get_value(it))
                return it->err;
            goto check;
        }
        it->vbits ^= ((r << 2) >> (64 - sig)) << it->trail;
        used += 2 + sig;
    } else {
        unsigned lead = (unsigned)(r >> 57) & 31u; /* '11' LLLLL MMMMMM */
        unsigned sig = (unsigned)(r >> 51) & 63u;
        if (sig == 0)
            sig = 64;
        if (lead + sig > 64)
            return fail(it, "XOR window wider than 64 bits");
        if (used + 13 + sig > 64) {
            it->pos += used;
            if (get_value(it))
                return it->err;
            goto check;
        }
        unsigned trail = 64 - lead - sig;
        it->lead = (uint8_t)lead;
        it->trail = (uint8_t)trail;
        it->window = true;
        it->vbits ^= ((r << 13) >> (64 - sig)) << trail;
        used += 13 + sig;
    }
    it->pos += used;
check:
    if (it->pos > (uint64_t)it->len * 8)
        return fail(it, "truncated sample");
    it->t = (int64_t)((uint64_t)it->t + it->delta);
    it->read++;
    return 0;
}

int tsdb_xor_iter_next(struct tsdb_xor_iter *it, int64_t *t_ms, double *v)
{
    int rc = decode_next(it);
    if (rc)
        return rc;
    *t_ms = it->t;
    *v = tsdb_f64_from_bits(it->vbits);
    return 0;
}

int tsdb_xor_iter_seek(struct tsdb_xor_iter *it, int64_t t_ms, int64_t *ts_ms, double *v)
{
    if (it->err)
        return it->err;
    while (it->read == 0 || it->t < t_ms) {
        int rc = decode_next(it);
        if (rc)
            return rc;
    }
    *ts_ms = it->t;
    *v = tsdb_f64_from_bits(it->vbits);
    return 0;
}

/* ---- tsdb_sample_iter (tsdb.h "reading"): the samples of a series' chunks in a range ---- */

/* The current chunk ended (rc MP_EEOF) or failed: 0 to go on with the next one, or the sticky
 * error. */
static int iter_step(struct tsdb_sample_iter *it, int rc)
{
    if (rc != MP_EEOF)
        return it->err = rc;
    if (++it->i < it->n)
        tsdb_xor_iter_init(&it->xi, it->chunks[it->i].data, it->chunks[it->i].len);
    return 0;
}

/* A sample at t was found: 0, or MP_EEOF (and the iterator done) past the range. */
static int iter_found(struct tsdb_sample_iter *it, int64_t t)
{
    if (t <= it->maxt_ms)
        return 0;
    it->i = it->n;
    return MP_EEOF;
}

int tsdb_sample_iter_next(struct tsdb_sample_iter *it, int64_t *t_ms, double *v)
{
    if (it->err)
        return it->err;
    while (it->i < it->n) {
        int rc = decode_next(&it->xi);
        if (rc == 0 && it->xi.t < it->mint_ms)
            continue;
        if (rc == 0) {
            *t_ms = it->xi.t;
            *v = tsdb_f64_from_bits(it->xi.vbits);
            return iter_found(it, *t_ms);
        }
        if ((rc = iter_step(it, rc)))
            return rc;
    }
    return MP_EEOF;
}

int tsdb_sample_iter_seek(struct tsdb_sample_iter *it, int64_t t_ms, int64_t *ts_ms, double *v)
{
    if (it->err)
        return it->err;
    if (t_ms < it->mint_ms)
        t_ms = it->mint_ms;
    /* Skip whole chunks that end before t. */
    size_t j = it->i;
    while (j < it->n && it->chunks[j].maxt_ms < t_ms)
        j++;
    if (j != it->i) {
        it->i = j;
        if (j < it->n)
            tsdb_xor_iter_init(&it->xi, it->chunks[j].data, it->chunks[j].len);
    }
    while (it->i < it->n) {
        int rc = tsdb_xor_iter_seek(&it->xi, t_ms, ts_ms, v);
        if (rc == 0)
            return iter_found(it, *ts_ms);
        if ((rc = iter_step(it, rc)))
            return rc;
    }
    return MP_EEOF;
}

size_t tsdb_xor_iter_num_samples(const struct tsdb_xor_iter *it)
{
    return it->total;
}

int tsdb_xor_iter_error(const struct tsdb_xor_iter *it, struct mp_err *err)
{
    if (!it->err)
        return 0;
    return mp_err_set(err, it->err, "xor chunk: sample %u of %u: %s", (unsigned)it->read + 1,
                      (unsigned)it->total, it->why);
}

/* ---- cut policy (tsdb.md 1.7) ---------------------------------------------------------------- */

int64_t tsdb_range_for_timestamp(int64_t t_ms, int64_t range_ms)
{
    return (t_ms / range_ms) * range_ms + range_ms;
}

int64_t tsdb_compute_chunk_end_time(int64_t start_ms, int64_t cur_ms, int64_t max_ms,
                                    double ratio)
{
    double n = (double)(max_ms - start_ms) / ((double)(cur_ms - start_ms + 1) * ratio);
    if (n <= 1)
        return max_ms;
    return (int64_t)((double)start_ms + (double)(max_ms - start_ms) / floor(n));
}

void tsdb_xor_cutter_init(struct tsdb_xor_cutter *cs, int64_t chunk_range_ms,
                          uint32_t samples_per_chunk)
{
    cs->chunk_range_ms = chunk_range_ms > 0 ? chunk_range_ms : TSDB_CHUNK_RANGE_DEFAULT_MS;
    cs->samples_per_chunk = samples_per_chunk >= 4 ? samples_per_chunk
                                                   : TSDB_SAMPLES_PER_CHUNK_DEFAULT;
    cs->next_at = INT64_MIN;
}

bool tsdb_xor_cutter_should_cut(struct tsdb_xor_cutter *cs, const struct tsdb_xor *cur,
                                int64_t t_ms)
{
    if (!cur)
        goto cut;
    size_t n = cur->n;
    if (cs->next_at == INT64_MIN && n > 0) /* cutter created for a re-opened chunk */
        cs->next_at = tsdb_range_for_timestamp(cur->t0, cs->chunk_range_ms);
    /* 19 = a worst-case sample: the check must hold before knowing the next sample's size */
    if (n > 0 && data_len(cur) > TSDB_XOR_MAX_BYTES - TSDB_XOR_MAX_SAMPLE_BYTES)
        goto cut;
    if (n == 0)
        cs->next_at = tsdb_range_for_timestamp(t_ms, cs->chunk_range_ms);
    if (n == cs->samples_per_chunk / 4)
        cs->next_at = tsdb_compute_chunk_end_time(cur->t0, cur->t, cs->next_at, 4);
    if (t_ms >= cs->next_at || n >= (size_t)cs->samples_per_chunk * 2 ||
        n >= TSDB_XOR_MAX_SAMPLES)
        goto cut;
    return false;
cut:
    cs->next_at = tsdb_range_for_timestamp(t_ms, cs->chunk_range_ms);
    return true;
}
