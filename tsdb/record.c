/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/record.c: encode/decode of WAL record bodies as Prometheus's tsdb/record/record.go
 * (spec tsdb.md 3.3). Worked example, Samples record for (ref 1, t 1700000000000, 1.0),
 * (ref 2, same t, 0.5), (ref 1, t + 10000, 2.0):
 *
 *   02 | 0000000000000001 | 0000018bcfe56800      type, BE64 base_ref, BE64 base_t
 *   00 00 3ff0000000000000                        dref 0,  dt 0,      1.0
 *   02 00 3fe0000000000000                        dref +1, dt 0,      0.5
 *   00 a09c01 4000000000000000                    dref 0,  dt +10000, 2.0  (zig-zag 20000)
 *
 * Decoding follows Go's encoding.Decbuf: uvarints longer than 10 bytes or overflowing 64 bits
 * are errors, as are bytes left over after the last element. All arithmetic on refs and times
 * is done in uint64_t so that wrapping (legal in Go) is not undefined behaviour here. */
#include "tsdb/record.h"

#include <string.h>

#include "common/alloc.h"

/* ---- encoding ------------------------------------------------------------------------------ */

/* Stages bytes on the stack and appends them to the mp_buf in blocks, so an encoder makes a
 * handful of mp_buf_append calls per record instead of one per field. */
struct enc {
    struct mp_buf *out;
    size_t len;
    int rc;
    uint8_t buf[2048];
};

static void enc_flush(struct enc *e)
{
    if (e->len && e->rc == 0)
        e->rc = mp_buf_append(e->out, e->buf, e->len);
    e->len = 0;
}

/* Room for n more bytes (n <= sizeof buf). */
static uint8_t *enc_room(struct enc *e, size_t n)
{
    if (sizeof e->buf - e->len < n)
        enc_flush(e);
    return e->buf + e->len;
}

static void enc_byte(struct enc *e, uint8_t b)
{
    *enc_room(e, 1) = b;
    e->len++;
}

static void enc_be64(struct enc *e, uint64_t v)
{
    uint8_t *p = enc_room(e, 8);
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
    e->len += 8;
}

static void enc_uvarint(struct enc *e, uint64_t v)
{
    uint8_t *p = enc_room(e, 10);
    size_t i = 0;
    while (v >= 0x80) {
        p[i++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[i++] = (uint8_t)v;
    e->len += i;
}

/* Go binary.PutVarint: zig-zag, computed without shifting a negative value. */
static void enc_varint(struct enc *e, int64_t x)
{
    uint64_t u = (uint64_t)x;
    enc_uvarint(e, (u << 1) ^ (0 - (u >> 63)));
}

static void enc_bytes(struct enc *e, const void *p, size_t n)
{
    if (n > sizeof e->buf / 2) {
        enc_flush(e);
        if (e->rc == 0)
            e->rc = mp_buf_append(e->out, p, n);
        return;
    }
    memcpy(enc_room(e, n), p, n);
    e->len += n;
}

static void enc_str(struct enc *e, struct mp_str s)
{
    enc_uvarint(e, s.len);
    enc_bytes(e, s.ptr, s.len);
}

static int enc_done(struct enc *e)
{
    enc_flush(e);
    return e->rc;
}

int tsdb_record_series_encode(const struct tsdb_record_series *s, size_t n, struct mp_buf *out)
{
    struct enc e = {.out = out};
    enc_byte(&e, TSDB_REC_SERIES);
    for (size_t i = 0; i < n; i++) {
        enc_be64(&e, s[i].ref);
        size_t nl = mp_labels_count(s[i].labels);
        enc_uvarint(&e, nl);
        for (size_t j = 0; j < nl; j++) {
            struct mp_label l = mp_labels_at(s[i].labels, j);
            enc_str(&e, l.name);
            enc_str(&e, l.value);
        }
    }
    return enc_done(&e);
}

int tsdb_record_series_begin(struct mp_buf *out)
{
    uint8_t type = TSDB_REC_SERIES;
    return mp_buf_append(out, &type, 1);
}

int tsdb_record_series_encode_pairs(uint64_t ref, const struct mp_istr *const *pairs, size_t n,
                                    struct mp_buf *out)
{
    /* not zero-initialised: this runs once per new series, and the staging block is 2 KiB */
    struct enc e;
    e.out = out;
    e.len = 0;
    e.rc = 0;
    enc_be64(&e, ref);
    enc_uvarint(&e, n);
    for (size_t i = 0; i < 2 * n; i++)
        enc_str(&e, mp_istr_str(pairs[i]));
    return enc_done(&e);
}

int tsdb_record_samples_encode(const struct tsdb_record_sample *s, size_t n, struct mp_buf *out)
{
    struct enc e = {.out = out};
    enc_byte(&e, TSDB_REC_SAMPLES);
    if (n > 0) {
        uint64_t base_ref = s[0].ref, base_t = (uint64_t)s[0].t_ms;
        enc_be64(&e, base_ref);
        enc_be64(&e, base_t);
        for (size_t i = 0; i < n; i++) {
            uint64_t bits;
            memcpy(&bits, &s[i].v, sizeof bits);
            enc_varint(&e, (int64_t)(s[i].ref - base_ref));
            enc_varint(&e, (int64_t)((uint64_t)s[i].t_ms - base_t));
            enc_be64(&e, bits);
        }
    }
    return enc_done(&e);
}

int tsdb_record_tombstones_encode(const struct tsdb_record_tombstone *t, size_t n,
                                  struct mp_buf *out)
{
    struct enc e = {.out = out};
    enc_byte(&e, TSDB_REC_TOMBSTONES);
    for (size_t i = 0; i < n; i++) {
        enc_be64(&e, t[i].ref);
        enc_varint(&e, t[i].mint_ms);
        enc_varint(&e, t[i].maxt_ms);
    }
    return enc_done(&e);
}

/* ---- decoding ------------------------------------------------------------------------------ */

/* Invariant: base <= cur <= end; every helper reads only [cur, end) and, on failure, sets bad
 * (sticky) without moving cur past end. */
struct dec {
    const uint8_t *base, *cur, *end;
    const char *bad; /* first problem, NULL if none */
    size_t bad_off;
};

static void dec_fail(struct dec *d, const char *what)
{
    if (!d->bad) {
        d->bad = what;
        d->bad_off = (size_t)(d->cur - d->base);
    }
    d->cur = d->end;
}

static size_t dec_left(const struct dec *d)
{
    return (size_t)(d->end - d->cur);
}

static uint64_t dec_be64(struct dec *d)
{
    if (dec_left(d) < 8) {
        dec_fail(d, "truncated 64-bit field");
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | d->cur[i];
    d->cur += 8;
    return v;
}

/* Go binary.Uvarint: at most 10 bytes, the 10th at most 1. */
static uint64_t dec_uvarint(struct dec *d)
{
    uint64_t v = 0;
    const uint8_t *p = d->cur;
    for (unsigned shift = 0, i = 0; p < d->end; i++, shift += 7) {
        uint8_t b = *p++;
        if (i == 9 && b > 1) {
            dec_fail(d, "varint overflows 64 bits");
            return 0;
        }
        v |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80) {
            d->cur = p;
            return v;
        }
        if (i == 9) {
            dec_fail(d, "varint overflows 64 bits");
            return 0;
        }
    }
    dec_fail(d, "truncated varint");
    return 0;
}

static int64_t dec_varint(struct dec *d)
{
    uint64_t u = dec_uvarint(d);
    return (int64_t)((u >> 1) ^ (0 - (u & 1)));
}

static struct mp_str dec_str(struct dec *d)
{
    uint64_t n = dec_uvarint(d);
    if (d->bad)
        return (struct mp_str){"", 0};
    if (n > dec_left(d)) {
        dec_fail(d, "string longer than the record");
        return (struct mp_str){"", 0};
    }
    struct mp_str s = {(const char *)d->cur, (size_t)n};
    d->cur += n;
    return s;
}

static int dec_error(const struct dec *d, const char *kind, struct mp_err *err)
{
    return mp_err_set(err, MP_EPARSE, "%s record: %s at byte %zu", kind, d->bad, d->bad_off);
}

/* Grows *arr to hold at least need elements of size sz. */
static int reserve(void **arr, size_t *cap, size_t need, size_t sz)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need)
        ncap *= 2;
    size_t bytes;
    if (__builtin_mul_overflow(ncap, sz, &bytes))
        return MP_ENOMEM;
    void *p = mp_realloc(*arr, bytes);
    if (!p)
        return MP_ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

enum tsdb_record_type tsdb_record_type_of(const uint8_t *rec, size_t len)
{
    if (len == 0 || rec[0] < TSDB_REC_SERIES || rec[0] > TSDB_REC_FLOAT_HISTOGRAM_SAMPLES)
        return TSDB_REC_UNKNOWN;
    return (enum tsdb_record_type)rec[0];
}

void tsdb_record_decoder_init(struct tsdb_record_decoder *d)
{
    memset(d, 0, sizeof *d);
}

void tsdb_record_decoder_fini(struct tsdb_record_decoder *d)
{
    if (!d)
        return;
    mp_free(d->series);
    mp_free(d->samples);
    mp_free(d->tombstones);
    mp_free(d->labels);
    memset(d, 0, sizeof *d);
}

void tsdb_record_series_release(struct tsdb_record_series *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mp_labels_release(s[i].labels);
        s[i].labels = NULL;
    }
}

static int check_type(const uint8_t *rec, size_t len, enum tsdb_record_type want,
                      const char *kind, struct mp_err *err)
{
    if (len == 0 || rec[0] != want)
        return mp_err_set(err, MP_EPARSE, "%s record: invalid record type %d", kind,
                          len ? rec[0] : -1);
    return 0;
}

int tsdb_record_series_decode(struct tsdb_record_decoder *d, const uint8_t *rec, size_t len,
                              struct tsdb_record_series **out, size_t *n, struct mp_err *err)
{
    int rc = check_type(rec, len, TSDB_REC_SERIES, "series", err);
    if (rc)
        return rc;
    struct dec dc = {rec, rec + 1, rec + len, NULL, 0};
    size_t count = 0;
    while (dc.cur < dc.end) {
        uint64_t ref = dec_be64(&dc);
        uint64_t nl = dec_uvarint(&dc);
        if (dc.bad)
            break;
        /* each pair takes at least two length bytes: bounds the scratch array by the input */
        if (nl > dec_left(&dc) / 2) {
            dec_fail(&dc, "label count larger than the record");
            break;
        }
        if (reserve((void **)&d->labels, &d->labels_cap, (size_t)nl, sizeof *d->labels) ||
            reserve((void **)&d->series, &d->series_cap, count + 1, sizeof *d->series)) {
            rc = mp_err_set(err, MP_ENOMEM, "series record: out of memory");
            goto fail;
        }
        for (size_t i = 0; i < nl; i++) {
            d->labels[i].name = dec_str(&dc);
            d->labels[i].value = dec_str(&dc);
        }
        if (dc.bad)
            break;
        struct mp_err lerr = {0};
        struct mp_labels *ls = NULL;
        rc = mp_labels_create(d->labels, (size_t)nl, &ls, &lerr);
        if (rc) {
            rc = mp_err_set(err, rc == MP_ENOMEM ? MP_ENOMEM : MP_EPARSE,
                            "series record: series %zu (ref %llu): %s", count,
                            (unsigned long long)ref, lerr.msg);
            goto fail;
        }
        d->series[count].ref = ref;
        d->series[count].labels = ls;
        count++;
    }
    if (dc.bad) {
        rc = dec_error(&dc, "series", err);
        goto fail;
    }
    *out = d->series;
    *n = count;
    return 0;
fail:
    tsdb_record_series_release(d->series, count);
    return rc;
}

int tsdb_record_samples_decode(struct tsdb_record_decoder *d, const uint8_t *rec, size_t len,
                               struct tsdb_record_sample **out, size_t *n, struct mp_err *err)
{
    int rc = check_type(rec, len, TSDB_REC_SAMPLES, "samples", err);
    if (rc)
        return rc;
    struct dec dc = {rec, rec + 1, rec + len, NULL, 0};
    size_t count = 0;
    if (dc.cur < dc.end) {
        uint64_t base_ref = dec_be64(&dc);
        uint64_t base_t = dec_be64(&dc);
        /* a sample is at least 10 bytes: the array is bounded by the record */
        if (reserve((void **)&d->samples, &d->samples_cap, dec_left(&dc) / 10 + 1,
                    sizeof *d->samples))
            return mp_err_set(err, MP_ENOMEM, "samples record: out of memory");
        while (dc.cur < dc.end) {
            int64_t dref = dec_varint(&dc);
            int64_t dt = dec_varint(&dc);
            uint64_t bits = dec_be64(&dc);
            if (dc.bad)
                break;
            struct tsdb_record_sample *s = &d->samples[count++];
            s->ref = base_ref + (uint64_t)dref;
            s->t_ms = (int64_t)(base_t + (uint64_t)dt);
            memcpy(&s->v, &bits, sizeof bits);
        }
    }
    if (dc.bad)
        return dec_error(&dc, "samples", err);
    *out = d->samples;
    *n = count;
    return 0;
}

int tsdb_record_tombstones_decode(struct tsdb_record_decoder *d, const uint8_t *rec, size_t len,
                                  struct tsdb_record_tombstone **out, size_t *n,
                                  struct mp_err *err)
{
    int rc = check_type(rec, len, TSDB_REC_TOMBSTONES, "tombstones", err);
    if (rc)
        return rc;
    struct dec dc = {rec, rec + 1, rec + len, NULL, 0};
    /* a tombstone is at least 10 bytes */
    if (reserve((void **)&d->tombstones, &d->tombstones_cap, dec_left(&dc) / 10 + 1,
                sizeof *d->tombstones))
        return mp_err_set(err, MP_ENOMEM, "tombstones record: out of memory");
    size_t count = 0;
    while (dc.cur < dc.end) {
        uint64_t ref = dec_be64(&dc);
        int64_t mint = dec_varint(&dc);
        int64_t maxt = dec_varint(&dc);
        if (dc.bad)
            break;
        d->tombstones[count++] = (struct tsdb_record_tombstone){ref, mint, maxt};
    }
    if (dc.bad)
        return dec_error(&dc, "tombstones", err);
    *out = d->tombstones;
    *n = count;
    return 0;
}
