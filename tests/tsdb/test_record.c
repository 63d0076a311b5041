/* SPDX-License-Identifier: Apache-2.0 */
/* tests/tsdb/test_record.c: WAL record bodies against the byte vectors of spec tsdb.md 3.3
 * (verified against Prometheus 2.42) and hand-computed ones, round trips at the edges of the
 * 64-bit arithmetic, every truncated prefix (also ending at a PROT_NONE guard page), and
 * allocation failures. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "common/str.h"
#include "tsdb/record.h"

#define S(lit) MP_STR_LIT(lit)

/* spec 3.3: Series record, ref 1, {__name__="up", job="x"} */
static const uint8_t series_vec[] = {0x01, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x02, 0x08, '_', '_',
                                     'n',  'a', 'm', 'e', '_', '_', 0x02, 'u', 'p',  0x03, 'j',
                                     'o',  'b', 0x01, 'x'};
/* spec 3.3: (ref1, 1700000000000, 1.0), (ref2, same, 0.5), (ref1, +10000, 2.0) */
static const uint8_t samples_vec[] = {
    0x02, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00,
    0x00, 0x00, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0,
    0x02, 0x00, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0,
    0x00, 0xa0, 0x9c, 0x01, 0x40, 0x00, 0, 0, 0, 0, 0, 0};
/* by hand: ref 5 [-1, 1000] -> zig-zag 1 and 2000 (0xd0 0x0f); ref 7 [0, 0] */
static const uint8_t tomb_vec[] = {0x03, 0, 0, 0, 0, 0, 0, 0, 0x05, 0x01, 0xd0, 0x0f,
                                   0,    0, 0, 0, 0, 0, 0, 0x07, 0x00, 0x00};

static struct mp_labels *mk(const struct mp_label *l, size_t n)
{
    struct mp_labels *ls = NULL;
    cr_assert_eq(mp_labels_create(l, n, &ls, NULL), 0);
    return ls;
}

static void assert_bytes(const struct mp_buf *b, const uint8_t *want, size_t n)
{
    cr_assert_eq(b->len, n, "length %zu, want %zu", b->len, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq((uint8_t)b->data[i], want[i], "byte %zu: %02x, want %02x", i,
                     (uint8_t)b->data[i], want[i]);
}

static uint64_t bits(double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    return u;
}

static double from_bits(uint64_t u)
{
    double v;
    memcpy(&v, &u, 8);
    return v;
}

Test(record, series_encodes_spec_vector)
{
    /* given in unsorted order: the encoder writes the sorted set */
    struct mp_label l[] = {{S("job"), S("x")}, {S("__name__"), S("up")}};
    struct tsdb_record_series s = {1, mk(l, 2)};
    struct mp_buf b;
    mp_buf_init(&b, 0);
    cr_assert_eq(tsdb_record_series_encode(&s, 1, &b), 0);
    assert_bytes(&b, series_vec, sizeof series_vec);
    mp_buf_fini(&b);
    mp_labels_release(s.labels);
}

Test(record, series_decodes_spec_vector_and_interns)
{
    struct tsdb_record_decoder d;
    tsdb_record_decoder_init(&d);
    struct tsdb_record_series *s;
    size_t n;
    cr_assert_eq(tsdb_record_series_decode(&d, series_vec, sizeof series_vec, &s, &n, NULL), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(s[0].ref, 1);
    cr_assert_eq(mp_labels_count(s[0].labels), 2);
    cr_assert(mp_str_eq(mp_labels_get(s[0].labels, S("job")), S("x")));
    cr_assert(mp_str_eq(mp_labels_metric_name(s[0].labels), S("up")));
    /* interned: an equal set created independently shares the strings */
    struct mp_label l[] = {{S("__name__"), S("up")}, {S("job"), S("x")}};
    struct mp_labels *o = mk(l, 2);
    cr_assert_eq(mp_labels_name_at(o, 1), mp_labels_name_at(s[0].labels, 1));
    cr_assert(mp_labels_equal(o, s[0].labels));
    mp_labels_release(o);
    tsdb_record_series_release(s, n);
    tsdb_record_decoder_fini(&d);
}

Test(record, samples_encode_spec_vector)
{
    struct tsdb_record_sample s[] = {{1, 1700000000000, 1.0},
                                     {2, 1700000000000, 0.5},
                                     {1, 1700000010000, 2.0}};
    struct mp_buf b;
    mp_buf_init(&b, 0);
    cr_assert_eq(tsdb_record_samples_encode(s, 3, &b), 0);
    assert_bytes(&b, samples_vec, sizeof samples_vec);
    mp_buf_reset(&b);
    cr_assert_eq(tsdb_record_samples_encode(s, 0, &b), 0);
    assert_bytes(&b, (const uint8_t[]){0x02}, 1);
    mp_buf_fini(&b);
}

Test(record, samples_decode_spec_vector)
{
    struct tsdb_record_decoder d;
    tsdb_record_decoder_init(&d);
    struct tsdb_record_sample *s;
    size_t n;
    cr_assert_eq(tsdb_record_samples_decode(&d, samples_vec, sizeof samples_vec, &s, &n, NULL),
                 0);
    cr_assert_eq(n, 3);
    cr_assert(s[1].ref == 2 && s[1].t_ms == 1700000000000 && s[1].v == 0.5);
    cr_assert(s[2].ref == 1 && s[2].t_ms == 1700000010000 && s[2].v == 2.0);
    cr_assert_eq(tsdb_record_samples_decode(&d, (const uint8_t[]){2}, 1, &s, &n, NULL), 0);
    cr_assert_eq(n, 0);
    tsdb_record_decoder_fini(&d);
}

Test(record, tombstones_vector_round_trip)
{
    struct tsdb_record_tombstone t[] = {{5, -1, 1000}, {7, 0, 0}};
    struct mp_buf b;
    mp_buf_init(&b, 0);
    cr_assert_eq(tsdb_record_tombstones_encode(t, 2, &b), 0);
    assert_bytes(&b, tomb_vec, sizeof tomb_vec);
    struct tsdb_record_decoder d;
    tsdb_record_decoder_init(&d);
    struct tsdb_record_tombstone *o;
    size_t n;
    cr_assert_eq(tsdb_record_tombstones_decode(&d, tomb_vec, sizeof tomb_vec, &o, &n, NULL), 0);
    cr_assert_eq(n, 2);
    cr_assert(o[0].ref == 5 && o[0].mint_ms == -1 && o[0].maxt_ms == 1000);
    cr_assert(o[1].ref == 7 && o[1].mint_ms == 0 && o[1].maxt_ms == 0);
    tsdb_record_decoder_fini(&d);
    mp_buf_fini(&b);
}

Test(record, samples_wrap_and_keep_nan_bits)
{
    /* deltas that overflow int64 in both directions wrap, as Go's arithmetic does */
    struct tsdb_record_sample s[] = {
        {0, INT64_MAX, from_bits(UINT64_C(0x7ff0000000000002))}, /* StaleNaN */
        {UINT64_MAX, INT64_MIN, from_bits(UINT64_C(0x7ff8000000000001))},
        {UINT64_C(1) << 63, 0, -0.0},
        {12345, -1, from_bits(UINT64_C(0xfff0000000000001))},
    };
    struct mp_buf b;
    mp_buf_init(&b, 0);
    cr_assert_eq(tsdb_record_samples_encode(s, 4, &b), 0);
    struct tsdb_record_decoder d;
    tsdb_record_decoder_init(&d);
    struct tsdb_record_sample *o;
    size_t n;
    cr_assert_eq(
        tsdb_record_samples_decode(&d, (const uint8_t *)b.data, b.len, &o, &n, NULL), 0);
    cr_assert_eq(n, 4);
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(o[i].ref, s[i].ref, "sample %zu", i);
        cr_assert_eq(o[i].t_ms, s[i].t_ms, "sample %zu", i);
        cr_assert_eq(bits(o[i].v), bits(s[i].v), "sample %zu", i);
    }
    tsdb_record_decoder_fini(&d);
    mp_buf_fini(&b);
}

Test(record, type_of)
{
    cr_assert_eq(tsdb_record_type_of(NULL, 0), TSDB_REC_UNKNOWN);
    cr_assert_eq(tsdb_record_type_of((const uint8_t[]){0}, 1), TSDB_REC_UNKNOWN);
    cr_assert_eq(tsdb_record_type_of((const uint8_t[]){9}, 1), TSDB_REC_UNKNOWN);
    cr_assert_eq(tsdb_record_type_of(series_vec, 1), TSDB_REC_SERIES);
    cr_assert_eq(tsdb_record_type_of((const uint8_t[]){8}, 1), TSDB_REC_FLOAT_HISTOGRAM_SAMPLES);
}

/* Runs the decoder for the record's type over rec[0..len). */
static int decode_any(struct tsdb_record_decoder *d, const uint8_t *rec, size_t len,
                      size_t *n, struct mp_err *err)
{
    switch (rec[0]) {
    case 1: {
        struct tsdb_record_series *s;
        int rc = tsdb_record_series_decode(d, rec, len, &s, n, err);
        if (rc == 0)
            tsdb_record_series_release(s, *n);
        return rc;
    }
    case 2: {
        struct tsdb_record_sample *s;
        return tsdb_record_samples_decode(d, rec, len, &s, n, err);
    }
    default: {
        struct tsdb_record_tombstone *t;
        return tsdb_record_tombstones_decode(d, rec, len, &t, n, err);
    }
    }
}

/* Every prefix that ends inside an element is an error; prefixes ending on an element boundary
 * decode the elements before it. The prefix sits right before a PROT_NONE page so that any
 * over-read faults. */
static void check_prefixes(const uint8_t *vec, size_t len, const size_t *valid, size_t nvalid)
{
    long pg = sysconf(_SC_PAGESIZE);
    uint8_t *map = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(map, MAP_FAILED);
    cr_assert_eq(mprotect(map + pg, (size_t)pg, PROT_NONE), 0);
    struct tsdb_record_decoder d;
    tsdb_record_decoder_init(&d);
    for (size_t k = 1; k <= len; k++) {
        uint8_t *p = map + pg - k;
        memcpy(p, vec, k);
        bool ok = false;
        for (size_t i = 0; i < nvalid; i++)
            ok |= valid[i] == k;
        size_t n = 0;
        struct mp_err err = {0};
        int rc = decode_any(&d, p, k, &n, &err);
        if (ok) {
            cr_assert_eq(rc, 0, "prefix %zu: %s", k, err.msg);
        } else {
            cr_assert_eq(rc, MP_EPARSE, "prefix %zu of %zu decoded", k, len);
            cr_assert(strstr(err.msg, "at byte") != NULL, "%s", err.msg);
        }
    }
    tsdb_record_decoder_fini(&d);
    munmap(map, (size_t)pg * 2);
}

Test(record, truncated_prefixes_fail_without_over_read)
{
    check_prefixes(series_vec, sizeof series_vec, (const size_t[]){1, 28}, 2);
    check_prefixes(samples_vec, sizeof samples_vec, (const size_t[]){1, 17, 27, 37, 49}, 5);
    check_prefixes(tomb_vec, sizeof tomb_vec, (const size_t[]){1, 12, 22}, 3);
}

Test(record, rejects_malformed)
{
    struct tsdb_record_decoder d;
    tsdb_record_decoder_init(&d);
    size_t n;
    struct mp_err err = {0};
    /* wrong type byte */
    cr_assert_eq(decode_any(&d, (const uint8_t[]){2, 0}, 1, &n, NULL), 0);
    struct tsdb_record_sample *s;
    cr_assert_eq(tsdb_record_samples_decode(&d, series_vec, sizeof series_vec, &s, &n, &err),
                 MP_EPARSE);
    cr_assert(strstr(err.msg, "invalid record type") != NULL, "%s", err.msg);
    /* uvarint of 11 bytes and a 10th byte above 1 */
    uint8_t ov[] = {1, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                    0xff, 0xff, 0x02};
    mp_err_clear(&err);
    cr_assert_eq(decode_any(&d, ov, sizeof ov, &n, &err), MP_EPARSE);
    cr_assert(strstr(err.msg, "overflow") != NULL, "%s", err.msg);
    /* label count larger than the record */
    uint8_t big[] = {1, 0, 0, 0, 0, 0, 0, 0, 1, 0x80, 0x80, 0x04, 1, 'a', 1, 'b'};
    cr_assert_eq(decode_any(&d, big, sizeof big, &n, NULL), MP_EPARSE);
    /* string longer than the record */
    uint8_t str[] = {1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 5, 'a', 1, 'b'};
    cr_assert_eq(decode_any(&d, str, sizeof str, &n, NULL), MP_EPARSE);
    /* repeated label name: mp_labels_create refuses, reported as malformed input */
    uint8_t dup[] = {1, 0, 0, 0, 0, 0, 0, 0, 1, 2, 1, 'a', 1, 'b', 1, 'a', 1, 'c'};
    mp_err_clear(&err);
    cr_assert_eq(decode_any(&d, dup, sizeof dup, &n, &err), MP_EPARSE);
    cr_assert(strstr(err.msg, "ref 1") != NULL, "%s", err.msg);
    tsdb_record_decoder_fini(&d);
}

Test(record, series_many_round_trip_and_no_leak_on_error)
{
    size_t before;
    mp_intern_stats(&before, NULL);
    struct tsdb_record_series s[50];
    for (size_t i = 0; i < 50; i++) {
        char v[32];
        snprintf(v, sizeof v, "pod-%zu", i);
        struct mp_label l[] = {{S("__name__"), S("http_requests_total")},
                               {S("pod"), mp_str_c(v)},
                               {S("empty"), S("")}};
        s[i] = (struct tsdb_record_series){i * 1000003, mk(l, 3)};
    }
    struct mp_buf b;
    mp_buf_init(&b, 0);
    cr_assert_eq(tsdb_record_series_encode(s, 50, &b), 0);
    struct tsdb_record_decoder d;
    tsdb_record_decoder_init(&d);
    struct tsdb_record_series *o;
    size_t n;
    cr_assert_eq(tsdb_record_series_decode(&d, (const uint8_t *)b.data, b.len, &o, &n, NULL), 0);
    cr_assert_eq(n, 50);
    for (size_t i = 0; i < 50; i++) {
        cr_assert_eq(o[i].ref, s[i].ref);
        cr_assert(mp_labels_equal(o[i].labels, s[i].labels), "series %zu", i);
    }
    tsdb_record_series_release(o, n);
    /* cut the last string short: the 49 sets created before the error are released */
    cr_assert_eq(
        tsdb_record_series_decode(&d, (const uint8_t *)b.data, b.len - 1, &o, &n, NULL),
        MP_EPARSE);
    tsdb_record_decoder_fini(&d);
    mp_buf_fini(&b);
    for (size_t i = 0; i < 50; i++)
        mp_labels_release(s[i].labels);
    size_t after;
    mp_intern_stats(&after, NULL);
    cr_assert_eq(after, before, "%zu interned strings leaked", after - before);
}

Test(record, allocation_failures_return_enomem)
{
    for (uint64_t k = 1;; k++) {
        struct tsdb_record_decoder d;
        tsdb_record_decoder_init(&d);
        size_t n = 0;
        mp_alloc_fail_at(k);
        int rc = decode_any(&d, samples_vec, sizeof samples_vec, &n, NULL);
        mp_alloc_fail_at(0);
        tsdb_record_decoder_fini(&d);
        if (rc == 0) {
            cr_assert_eq(n, 3);
            break;
        }
        cr_assert_eq(rc, MP_ENOMEM, "fail at %llu", (unsigned long long)k);
        cr_assert(k < 10);
    }
}

Test(record, long_label_values_round_trip)
{
    /* longer than the encoder's staging block: appended directly */
    static char big[5000];
    memset(big, 'v', sizeof big);
    struct mp_label l[] = {{S("__name__"), S("m")}, {S("big"), {big, sizeof big}}};
    struct tsdb_record_series s[2] = {{7, mk(l, 2)}, {8, mk(l, 1)}};
    struct mp_buf b;
    mp_buf_init(&b, 0);
    cr_assert_eq(tsdb_record_series_encode(s, 2, &b), 0);
    /* type; ref, count, "__name__" "m", "big" + 2-byte uvarint 5000 + value; ref, count, ... */
    cr_assert_eq(b.len, 1 + (8 + 1 + (1 + 8 + 1 + 1) + (1 + 3 + 2 + 5000)) + (8 + 1 + 11));
    struct tsdb_record_decoder d;
    tsdb_record_decoder_init(&d);
    struct tsdb_record_series *o;
    size_t n;
    cr_assert_eq(tsdb_record_series_decode(&d, (const uint8_t *)b.data, b.len, &o, &n, NULL), 0);
    cr_assert_eq(n, 2);
    cr_assert(mp_labels_equal(o[0].labels, s[0].labels));
    cr_assert(mp_labels_equal(o[1].labels, s[1].labels));
    tsdb_record_series_release(o, n);
    tsdb_record_series_release(s, 2);
    tsdb_record_decoder_fini(&d);
    mp_buf_fini(&b);
}

/* The per-series encoder from interned pairs (what the head logs new series with) writes the
 * same bytes as the label-set encoder: sets of 1 to 40 labels, an empty value, values around and
 * beyond the 2 KiB staging block, refs needing all 8 bytes. */
Test(record, series_from_pairs_matches_label_set_encoder)
{
    static char big[4100];
    memset(big, 'b', sizeof big);
    struct tsdb_record_series s[60];
    for (size_t i = 0; i < 60; i++) {
        struct mp_label l[40];
        char names[40][16], vals[40][24];
        size_t n = 1 + (i * 7) % 40;
        for (size_t j = 0; j < n; j++) {
            snprintf(names[j], sizeof names[j], j ? "l%02zu" : "__name__", j);
            snprintf(vals[j], sizeof vals[j], "v%zu-%zu", i, j * 31);
            l[j] = (struct mp_label){mp_str_c(names[j]), mp_str_c(vals[j])};
        }
        if (n > 3)
            l[2].value = S("");
        if (i % 9 == 4)
            l[n - 1].value = (struct mp_str){big, 1000 + 100 * (i % 40)};
        s[i] = (struct tsdb_record_series){UINT64_C(0x8000000000000000) + i * 1000003, mk(l, n)};
    }
    struct mp_buf want, got;
    mp_buf_init(&want, 0);
    mp_buf_init(&got, 0);
    cr_assert_eq(tsdb_record_series_encode(s, 60, &want), 0);
    cr_assert_eq(tsdb_record_series_begin(&got), 0);
    for (size_t i = 0; i < 60; i++) {
        const struct mp_istr *pairs[80];
        size_t n = mp_labels_count(s[i].labels);
        for (size_t j = 0; j < n; j++) {
            pairs[2 * j] = mp_labels_name_at(s[i].labels, j);
            pairs[2 * j + 1] = mp_labels_value_at(s[i].labels, j);
        }
        cr_assert_eq(tsdb_record_series_encode_pairs(s[i].ref, pairs, n, &got), 0);
    }
    assert_bytes(&got, (const uint8_t *)want.data, want.len);
    /* and the spec vector itself */
    mp_buf_reset(&got);
    struct mp_label l[] = {{S("__name__"), S("up")}, {S("job"), S("x")}};
    struct mp_labels *ls = mk(l, 2);
    const struct mp_istr *pairs[4] = {mp_labels_name_at(ls, 0), mp_labels_value_at(ls, 0),
                                      mp_labels_name_at(ls, 1), mp_labels_value_at(ls, 1)};
    cr_assert_eq(tsdb_record_series_begin(&got), 0);
    cr_assert_eq(tsdb_record_series_encode_pairs(1, pairs, 2, &got), 0);
    assert_bytes(&got, series_vec, sizeof series_vec);
    mp_labels_release(ls);
    tsdb_record_series_release(s, 60);
    mp_buf_fini(&want);
    mp_buf_fini(&got);
}
