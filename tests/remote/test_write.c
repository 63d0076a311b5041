/* SPDX-License-Identifier: Apache-2.0 */
/* tests/remote/test_write.c: the remote-write receiver (remote/write.c) against a real tsdb in
 * a temp dir: what is stored and read back, which series are skipped, every status and message
 * of protocols.md 5.4, corrupt and truncated snappy and protobuf, a snappy bomb, limits, and
 * allocation failures while decoding. */
#include <criterion/criterion.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "remote/remote.h"
#include "support_remote.h"
#include "tsdb/tsdb.h"

#define NOW INT64_C(1700000000000)

static char dir[64];
static struct tsdb *db;
static struct remote_write_limits lim;

static void setup(void)
{
    db = rw_db_open(dir);
    remote_write_limits_init(&lim);
    lim.now_ms = NOW;
}

static void teardown(void)
{
    rw_db_close(db, dir);
}

TestSuite(remote_write, .init = setup, .fini = teardown);

static size_t rwb_one(struct rwb *b, const char *const *kv, int64_t t, double v)
{
    return rwb_series(b, kv, &t, &v, 1);
}

/* Sends b; returns the status and leaves the result in *res. */
static int send_req(const struct rwb *b, struct remote_write_result *res)
{
    size_t len;
    uint8_t *body = rwb_body(b, &len);
    struct mp_err err = {0};
    int rc = remote_write_decode_and_append(db, body, len, &lim, res, &err);
    mp_free(body);
    cr_assert_eq(rc == 0, res->status == 204, "rc %d status %d", rc, res->status);
    if (rc)
        cr_assert_str_eq(err.msg, res->message);
    return res->status;
}

static void expect_dump(const char *want)
{
    char *got = rw_dump(db);
    cr_assert_str_eq(got, want);
    mp_free(got);
}

Test(remote_write, stores_samples_and_reads_them_back)
{
    struct rwb b;
    rwb_init(&b);
    const char *up[] = {"__name__", "up", "job", "node", "instance", "a:9100", NULL};
    const char *rq[] = {"__name__", "http_requests_total", "code", "200", NULL};
    int64_t t[] = {NOW - 2000, NOW - 1000};
    double v[] = {1, 0};
    double v2[] = {5, 7.5};
    rwb_series(&b, up, t, v, 2); /* labels not sorted on the wire: the receiver sorts */
    rwb_series(&b, rq, t, v2, 2);
    struct remote_write_result res;
    cr_assert_eq(send_req(&b, &res), 204, "%s", res.message);
    cr_assert_str_eq(res.message, "");
    cr_assert_eq(res.series, 2);
    cr_assert_eq(res.samples, 4);
    cr_assert_eq(res.samples_appended, 4);
    cr_assert_eq(res.series_invalid, 0);
    expect_dump("{__name__=\"http_requests_total\", code=\"200\"} 1699999998000:5 "
                "1699999999000:7.5\n"
                "{__name__=\"up\", instance=\"a:9100\", job=\"node\"} 1699999998000:1 "
                "1699999999000:0\n");
}

Test(remote_write, same_series_twice_and_stale_marker)
{
    struct rwb b;
    rwb_init(&b);
    const char *up[] = {"__name__", "up", "job", "a", NULL};
    int64_t t1 = NOW - 3000, t2 = NOW - 2000;
    double v1 = 1, v2 = tsdb_stale_nan();
    rwb_series(&b, up, &t1, &v1, 1); /* as Prometheus sends: one sample per TimeSeries */
    rwb_series(&b, up, &t2, &v2, 1);
    struct remote_write_result res;
    cr_assert_eq(send_req(&b, &res), 204, "%s", res.message);
    expect_dump("{__name__=\"up\", job=\"a\"} 1699999997000:1 1699999998000:stale\n");
}

Test(remote_write, empty_label_values_are_dropped)
{
    struct rwb b;
    rwb_init(&b);
    const char *kv[] = {"__name__", "m", "a", "", "z", "1", NULL};
    rwb_one(&b, kv, NOW, 2);
    struct remote_write_result res;
    cr_assert_eq(send_req(&b, &res), 204, "%s", res.message);
    expect_dump("{__name__=\"m\", z=\"1\"} 1700000000000:2\n");
}

Test(remote_write, label_value_with_nul_byte_is_kept_whole)
{
    struct rwb b;
    rwb_init(&b);
    const char *kv[] = {"__name__", "m", NULL};
    int64_t t = NOW;
    double v = 2;
    size_t s = rwb_series(&b, kv, &t, &v, 1);
    rwb_label_bytes(&b, s, "x", "a\0b", 3);
    size_t len;
    uint8_t *body = rwb_body(&b, &len);
    struct remote_write_request *req;
    struct remote_write_result res;
    cr_assert_eq(remote_write_decode(body, len, &lim, NULL, &req, &res, NULL), 0);
    const struct mp_label *l;
    size_t n;
    cr_assert(remote_write_request_series(req, 0, &l, &n));
    cr_assert_eq(n, 2);
    cr_assert_eq(l[1].value.len, 3);
    cr_assert_eq(memcmp(l[1].value.ptr, "a\0b", 3), 0);
    remote_write_request_free(req);
    mp_free(body);
}

/* One invalid series next to a valid one: skipped and counted, the request still 204. */
static void invalid_case(const char *const *kv, const char *why)
{
    struct rwb b;
    rwb_init(&b);
    const char *ok[] = {"__name__", "ok", NULL};
    int64_t t[] = {NOW - 1000, NOW};
    double v[] = {1, 2};
    rwb_series(&b, kv, t, v, 2);
    rwb_series(&b, ok, t, v, 1);
    struct remote_write_result res;
    cr_assert_eq(send_req(&b, &res), 204, "%s: %s", why, res.message);
    cr_assert_eq(res.series_invalid, 1, "%s", why);
    cr_assert_eq(res.samples_invalid, 2, "%s", why);
    cr_assert_eq(res.samples_appended, 1, "%s", why);
    expect_dump("{__name__=\"ok\"} 1699999999000:1\n");
}

Test(remote_write, invalid_series_are_skipped)
{
    const char *no_name[] = {"job", "a", NULL};
    invalid_case(no_name, "no __name__");
    const char *empty_name[] = {"__name__", "", "job", "a", NULL};
    invalid_case(empty_name, "empty __name__");
    const char *bad_metric[] = {"__name__", "1up", NULL};
    invalid_case(bad_metric, "metric name starts with a digit");
    const char *bad_metric2[] = {"__name__", "a-b", NULL};
    invalid_case(bad_metric2, "dash in metric name");
    const char *bad_label[] = {"__name__", "m", "a:b", "x", NULL};
    invalid_case(bad_label, "colon in label name");
    const char *digit_label[] = {"__name__", "m", "0a", "x", NULL};
    invalid_case(digit_label, "label name starts with a digit");
    const char *empty_label[] = {"__name__", "m", "", "x", NULL};
    invalid_case(empty_label, "empty label name");
    const char *dup[] = {"__name__", "m", "a", "1", "a", "2", NULL};
    invalid_case(dup, "duplicate label name");
    const char *dup_empty[] = {"__name__", "m", "a", "", "a", "2", NULL};
    invalid_case(dup_empty, "duplicate label name, one value empty");
    const char *dup_name[] = {"__name__", "m", "__name__", "m", NULL};
    invalid_case(dup_name, "__name__ twice");
}

Test(remote_write, label_value_not_utf8_skips_the_series)
{
    struct rwb b;
    rwb_init(&b);
    const char *kv[] = {"__name__", "m", NULL};
    size_t s = rwb_one(&b, kv, NOW, 1);
    rwb_label_bytes(&b, s, "x", "\xc3\x28", 2);
    struct remote_write_result res;
    cr_assert_eq(send_req(&b, &res), 204);
    cr_assert_eq(res.series_invalid, 1);
    expect_dump("");
}

Test(remote_write, out_of_order_rolls_back_the_whole_request)
{
    struct rwb b;
    rwb_init(&b);
    const char *a[] = {"__name__", "a", NULL};
    const char *c[] = {"__name__", "c", NULL};
    int64_t t = NOW - 5000;
    double v = 1;
    rwb_series(&b, a, &t, &v, 1);
    rwb_series(&b, c, &t, &v, 1);
    struct remote_write_result res;
    cr_assert_eq(send_req(&b, &res), 204);

    rwb_init(&b);
    int64_t later = NOW - 4000, older = NOW - 6000;
    rwb_series(&b, a, &later, &v, 1); /* fine on its own */
    const char *n[] = {"__name__", "new", NULL};
    rwb_series(&b, n, &later, &v, 1); /* a new series: created, must not be stored */
    rwb_series(&b, c, &older, &v, 1); /* older than c's committed sample */
    cr_assert_eq(send_req(&b, &res), 400);
    cr_assert_str_eq(res.message, "out of order sample");
    cr_assert_eq(res.samples_appended, 0);
    expect_dump("{__name__=\"a\"} 1699999995000:1\n{__name__=\"c\"} 1699999995000:1\n");
}

Test(remote_write, duplicate_timestamp)
{
    struct rwb b;
    rwb_init(&b);
    const char *a[] = {"__name__", "a", NULL};
    int64_t t = NOW - 5000;
    double v = 1, w = 2;
    rwb_series(&b, a, &t, &v, 1);
    struct remote_write_result res;
    cr_assert_eq(send_req(&b, &res), 204);
    cr_assert_eq(send_req(&b, &res), 204, "the same value again is accepted (a sender retry)");
    rwb_init(&b);
    rwb_series(&b, a, &t, &w, 1);
    cr_assert_eq(send_req(&b, &res), 400);
    cr_assert_str_eq(res.message, "duplicate sample for timestamp");
    expect_dump("{__name__=\"a\"} 1699999995000:1\n");
}

Test(remote_write, disorder_inside_one_request_is_dropped_at_commit)
{
    struct rwb b;
    rwb_init(&b);
    const char *a[] = {"__name__", "a", NULL};
    int64_t t[] = {NOW - 1000, NOW - 3000, NOW};
    double v[] = {1, 2, 3};
    rwb_series(&b, a, t, v, 3);
    struct remote_write_result res;
    cr_assert_eq(send_req(&b, &res), 204, "%s", res.message);
    expect_dump("{__name__=\"a\"} 1699999999000:1 1700000000000:3\n");
}

Test(remote_write, too_far_in_the_future)
{
    struct rwb b;
    rwb_init(&b);
    const char *a[] = {"__name__", "a", NULL};
    int64_t t = NOW + REMOTE_WRITE_MAX_AHEAD_MS;
    double v = 1;
    rwb_series(&b, a, &t, &v, 1);
    struct remote_write_result res;
    cr_assert_eq(send_req(&b, &res), 204, "exactly 10 min ahead is accepted");
    rwb_init(&b);
    const char *c[] = {"__name__", "c", NULL};
    int64_t ok = NOW, late = NOW + REMOTE_WRITE_MAX_AHEAD_MS + 1;
    rwb_series(&b, c, &ok, &v, 1);
    rwb_series(&b, a, &late, &v, 1);
    cr_assert_eq(send_req(&b, &res), 400);
    cr_assert_str_eq(res.message, "out of bounds: timestamp is too far in the future");
    expect_dump("{__name__=\"a\"} 1700000600000:1\n");
    lim.max_ahead_ms = -1;
    cr_assert_eq(send_req(&b, &res), 204, "no limit: %s", res.message);
}

Test(remote_write, histograms_are_refused_and_nothing_is_stored)
{
    struct rwb b;
    rwb_init(&b);
    const char *a[] = {"__name__", "a", NULL};
    const char *h[] = {"__name__", "h", NULL};
    int64_t t = NOW;
    double v = 1;
    rwb_series(&b, a, &t, &v, 1);
    size_t s = rwb_series(&b, h, NULL, NULL, 0);
    rwb_histogram(&b, s, NOW);
    struct remote_write_result res;
    cr_assert_eq(send_req(&b, &res), 400);
    cr_assert_str_eq(res.message, "native histograms are disabled");
    cr_assert_eq(res.histograms, 1);
    expect_dump("");

    /* a histogram in an invalid series is skipped with it */
    rwb_init(&b);
    const char *bad[] = {"job", "x", NULL};
    rwb_series(&b, a, &t, &v, 1);
    s = rwb_series(&b, bad, NULL, NULL, 0);
    rwb_histogram(&b, s, NOW);
    cr_assert_eq(send_req(&b, &res), 204, "%s", res.message);
    cr_assert_eq(res.samples_invalid, 1);
    expect_dump("{__name__=\"a\"} 1700000000000:1\n");
}

Test(remote_write, exemplars_and_metadata_are_ignored)
{
    struct rwb b;
    rwb_init(&b);
    const char *a[] = {"__name__", "a", NULL};
    size_t s = rwb_one(&b, a, NOW, 1);
    rwb_exemplar(&b, s, 0.5, NOW);
    rwb_metadata(&b, "a", "help text");
    struct remote_write_result res;
    cr_assert_eq(send_req(&b, &res), 204, "%s", res.message);
    cr_assert_eq(res.exemplars_ignored, 1);
    cr_assert_eq(res.metadata_ignored, 1);
    expect_dump("{__name__=\"a\"} 1700000000000:1\n");
}

Test(remote_write, empty_and_metadata_only_requests)
{
    struct rwb b;
    rwb_init(&b);
    struct remote_write_result res;
    cr_assert_eq(send_req(&b, &res), 204, "an empty WriteRequest (0 bytes) is fine");
    rwb_metadata(&b, "up", "1 if up");
    cr_assert_eq(send_req(&b, &res), 204);
    cr_assert_eq(res.metadata_ignored, 1);
    expect_dump("");
}

/* Unknown fields are skipped, fields may come in any order, and the reserved field 2 of
 * WriteRequest is ignored: hand-written wire bytes. */
Test(remote_write, unknown_fields_and_field_order)
{
    static const uint8_t pb[] = {
        0x12, 0x02, 0x08, 0x01,                             /* WriteRequest.2 (Cortex), skipped */
        0x0a, 0x1f,                                         /* timeseries, 31 bytes */
        0x12, 0x0c, 0x10, 0xe8, 0x07,                       /* samples first: timestamp 1000 ... */
        0x09, 0,    0,    0,    0,    0,   0,   0xf0, 0x3f, /* ... then value 1.0 */
        0x78, 0x05,                                         /* TimeSeries.15 varint, unknown */
        0x0a, 0x0d, 0x0a, 0x08, '_',  '_', 'n', 'a',  'm',  'e', '_', '_', 0x12, 0x01, 'm',
    };
    const uint8_t *buf = pb;
    size_t n = sizeof pb;
    size_t len;
    uint8_t *body = rw_snappy(buf, n, &len);
    struct remote_write_result res;
    lim.now_ms = 2000;
    int rc = remote_write_decode_and_append(db, body, len, &lim, &res, NULL);
    mp_free(body);
    cr_assert_eq(rc, 0, "%d %s", res.status, res.message);
    expect_dump("{__name__=\"m\"} 1000:1\n");
}

static struct remote_write_cache *cache; /* NULL unless a test sets it */

static int decode_status(const uint8_t *body, size_t len, struct remote_write_result *res)
{
    struct remote_write_request *req = NULL;
    struct mp_err err = {0};
    int rc = remote_write_decode(body, len, &lim, cache, &req, res, &err);
    cr_assert_eq(rc == 0, req != NULL);
    cr_assert_eq(rc == 0, res->status == 204);
    if (rc)
        cr_assert_str_eq(err.msg, res->message);
    remote_write_request_free(req);
    return res->status;
}

static uint8_t *sample_body(size_t *len, size_t series)
{
    struct rwb b;
    rwb_init(&b);
    char names[RWB_SERIES][32];
    for (size_t i = 0; i < series; i++) {
        snprintf(names[i], sizeof names[i], "m%zu", i);
        const char *kv[] = {"__name__", names[i], "job", "node", "instance", "10.0.0.1:9100", NULL};
        int64_t t = NOW + (int64_t)i;
        double v = (double)i;
        rwb_series(&b, kv, &t, &v, 1);
    }
    return rwb_body(&b, len);
}

Test(remote_write, corrupt_and_truncated_snappy)
{
    struct remote_write_result res;
    cr_assert_eq(decode_status((const uint8_t *)"", 0, &res), 400);
    cr_assert_str_eq(res.message, "snappy: corrupt input");
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02};
    cr_assert_eq(decode_status(junk, sizeof junk, &res), 400);
    cr_assert_str_eq(res.message, "snappy: corrupt input");
    size_t len;
    uint8_t *body = sample_body(&len, 8);
    for (size_t cut = 0; cut < len; cut++) {
        cr_assert_eq(decode_status(body, cut, &res), 400, "prefix of %zu bytes", cut);
        cr_assert_str_eq(res.message, "snappy: corrupt input");
    }
    /* a copy reaching before the start of the output */
    uint8_t bad[] = {0x08, 0x00, 'a', 0x0d, 0x05};
    cr_assert_eq(decode_status(bad, sizeof bad, &res), 400);
    /* trailing bytes after a complete stream */
    uint8_t *longer = mp_xmalloc(len + 1);
    memcpy(longer, body, len);
    longer[len] = 0;
    cr_assert_eq(decode_status(longer, len + 1, &res), 400);
    mp_free(longer);
    cr_assert_eq(decode_status(body, len, &res), 204);
    mp_free(body);
}

Test(remote_write, corrupt_and_truncated_protobuf)
{
    struct rwb b;
    rwb_init(&b);
    const char *kv[] = {"__name__", "up", "job", "node", NULL};
    int64_t t = NOW;
    double v = 1;
    rwb_series(&b, kv, &t, &v, 1);
    rwb_series(&b, kv, &t, &v, 1);
    size_t n;
    uint8_t *pb = rwb_pack(&b, &n);
    size_t half = n / 2; /* the first TimeSeries ends here: a prefix that parses */
    struct remote_write_result res;
    for (size_t cut = 1; cut < n; cut++) {
        size_t len;
        uint8_t *body = rw_snappy(pb, cut, &len);
        int st = decode_status(body, len, &res);
        if (cut == half) {
            cr_assert_eq(st, 204, "prefix %zu: one whole series", cut);
            cr_assert_eq(res.series, 1);
        } else {
            cr_assert_eq(st, 400, "prefix %zu of %zu", cut, n);
            cr_assert_str_eq(res.message, "proto: cannot parse prometheus.WriteRequest");
        }
        mp_free(body);
    }
    mp_free(pb);
    static const uint8_t bad_wire[][4] = {
        {0x0b, 0, 0, 0},       /* field 1 with wire type 3 (start group) */
        {0x0a, 0x05, 0x0a, 0}, /* length past the end */
        {0x0f, 0, 0, 0},       /* wire type 7 */
        {0x00, 0, 0, 0},       /* field number 0 */
    };
    for (size_t i = 0; i < sizeof bad_wire / sizeof bad_wire[0]; i++) {
        size_t len;
        uint8_t *body = rw_snappy(bad_wire[i], 4, &len);
        cr_assert_eq(decode_status(body, len, &res), 400, "case %zu", i);
        mp_free(body);
    }
}

/* The snappy header announces the decoded length; a "bomb" announcing a huge one must be
 * refused before anything is allocated: with every fallible allocation failing, the answer is
 * still the refusal (not 500 out of memory), and no bytes stay allocated. */
Test(remote_write, snappy_bomb_is_refused_without_allocating)
{
    static const uint8_t bomb[] = {0xf0, 0xff, 0xff, 0xff, 0x0f, 0x00, 'x'}; /* ~4 GiB */
    size_t before = mp_alloc_used_bytes();
    struct remote_write_result res;
    mp_alloc_fail_at(1);
    cr_assert_eq(decode_status(bomb, sizeof bomb, &res), 400);
    cr_assert_str_eq(res.message, "snappy: corrupt input");
    mp_alloc_fail_at(0);
    cr_assert_eq(mp_alloc_used_bytes(), before);

    /* a real bomb: 8 MiB of zeros compress to ~400 KB, inside the 22x bound */
    size_t n = (size_t)8 << 20, len;
    uint8_t *zeros = mp_xcalloc(n, 1);
    uint8_t *body = rw_snappy(zeros, n, &len);
    mp_free(zeros);
    lim.max_decoded_bytes = (size_t)1 << 20;
    before = mp_alloc_used_bytes();
    mp_alloc_fail_at(1);
    cr_assert_eq(decode_status(body, len, &res), 413);
    mp_alloc_fail_at(0);
    cr_assert_str_eq(res.message,
                     "snappy: decoded length 8388608 exceeds the limit of 1048576 bytes");
    cr_assert_eq(mp_alloc_used_bytes(), before);
    mp_free(body);
}

Test(remote_write, body_size_limit)
{
    size_t len;
    uint8_t *body = sample_body(&len, 4);
    struct remote_write_result res;
    lim.max_body_bytes = len;
    cr_assert_eq(decode_status(body, len, &res), 204, "exactly at the limit");
    lim.max_body_bytes = len - 1;
    cr_assert_eq(decode_status(body, len, &res), 413);
    char want[128];
    snprintf(want, sizeof want, "request body of %zu bytes exceeds the limit of %zu bytes", len,
             len - 1);
    cr_assert_str_eq(res.message, want);
    lim.max_decoded_bytes = 8;
    lim.max_body_bytes = 0;
    cr_assert_eq(decode_status(body, len, &res), 413);
    mp_free(body);
}

/* Empty Label messages cost 2 wire bytes each and far more once unpacked. */
Test(remote_write, memory_limit_of_the_unpacked_message)
{
    size_t n = 20000, len;
    uint8_t *pb = mp_xmalloc(n * 2 + 8);
    size_t inner = n * 2;
    size_t k = 0;
    pb[k++] = 0x0a; /* timeseries, length as uvarint */
    for (size_t x = inner;; x >>= 7) {
        pb[k++] = (uint8_t)((x & 0x7f) | (x > 0x7f ? 0x80 : 0));
        if (x <= 0x7f)
            break;
    }
    for (size_t i = 0; i < n; i++) {
        pb[k++] = 0x0a;
        pb[k++] = 0x00;
    }
    uint8_t *body = rw_snappy(pb, k, &len);
    mp_free(pb);
    struct remote_write_result res;
    lim.max_memory_bytes = (size_t)256 << 10;
    size_t before = mp_alloc_used_bytes();
    cr_assert_eq(decode_status(body, len, &res), 413);
    cr_assert_str_eq(res.message,
                     "decoded request needs more than the limit of 262144 bytes of memory");
    cr_assert_eq(mp_alloc_used_bytes(), before);
    lim.max_memory_bytes = 0;
    cr_assert_eq(decode_status(body, len, &res), 204);
    cr_assert_eq(res.series_invalid, 1, "labels without names");
    mp_free(body);
}

/* Allocation failure n = 1, 2, ... while decoding: 500 out of memory or success, no leak. */
Test(remote_write, allocation_failures_while_decoding)
{
    size_t len;
    uint8_t *body = sample_body(&len, 40);
    size_t before = mp_alloc_used_bytes();
    bool done = false;
    for (uint64_t n = 1; n < 1000 && !done; n++) {
        struct remote_write_result res;
        mp_alloc_fail_at(n);
        int st = decode_status(body, len, &res);
        mp_alloc_fail_at(0);
        cr_assert(st == 204 || st == 500, "n %llu status %d", (unsigned long long)n, st);
        if (st == 500)
            cr_assert_str_neq(res.message, "");
        done = st == 204;
        cr_assert_eq(mp_alloc_used_bytes(), before, "leak at n %llu", (unsigned long long)n);
    }
    cr_assert(done);
    mp_free(body);
}

/* A cache keeps blocks between requests; results are the same with and without it; the memory
 * limit still holds with reused blocks; destroying it gives everything back. */
Test(remote_write, cache_reuses_memory)
{
    size_t before = mp_alloc_used_bytes();
    cr_assert_eq(remote_write_cache_create((size_t)1 << 20, &cache), 0);
    size_t len;
    uint8_t *body = sample_body(&len, 40);
    struct remote_write_result res;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(decode_status(body, len, &res), 204);
        cr_assert_eq(res.samples, 40);
    }
#ifndef MP_SANITIZER_BUILD
    cr_assert_gt(remote_write_cache_bytes(cache), 0);
#endif
    lim.max_memory_bytes = 1024;
    cr_assert_eq(decode_status(body, len, &res), 413);
    lim.max_memory_bytes = 0;
    cr_assert_eq(decode_status(body, len, &res), 204);
    mp_free(body);
    remote_write_cache_destroy(cache);
    cr_assert_eq(mp_alloc_used_bytes(), before);

    cr_assert_eq(remote_write_cache_create((size_t)1 << 20, &cache), 0);
    struct rwb b;
    rwb_init(&b);
    const char *a[] = {"__name__", "a", NULL};
    rwb_one(&b, a, NOW, 1);
    body = rwb_body(&b, &len);
    cr_assert_eq(remote_write_decode_and_append_cached(db, cache, body, len, &lim, &res, NULL), 0);
    mp_free(body);
    expect_dump("{__name__=\"a\"} 1700000000000:1\n");
    remote_write_cache_destroy(cache);
    cache = NULL;
}

/* A batch as Prometheus sends it (max_samples_per_send 2000, one sample per TimeSeries, some
 * series several times), encoded from protobuf-c structs, stored and read back. */
Test(remote_write, full_batch_of_2000)
{
    size_t nseries = 500, per = 4;
    RemotePb__TimeSeries *ts = mp_xcalloc(nseries * per, sizeof *ts);
    RemotePb__TimeSeries **tsp = mp_xcalloc(nseries * per, sizeof *tsp);
    RemotePb__Label *lab = mp_xcalloc(nseries * per * 2, sizeof *lab);
    RemotePb__Label **labp = mp_xcalloc(nseries * per * 2, sizeof *labp);
    RemotePb__Sample *smp = mp_xcalloc(nseries * per, sizeof *smp);
    RemotePb__Sample **smpp = mp_xcalloc(nseries * per, sizeof *smpp);
    char(*ids)[16] = mp_xcalloc(nseries, sizeof *ids);
    for (size_t s = 0; s < nseries; s++)
        snprintf(ids[s], sizeof ids[s], "%zu", s);
    for (size_t k = 0; k < nseries * per; k++) {
        size_t s = k % nseries, round = k / nseries;
        remote_pb__time_series__init(&ts[k]);
        for (size_t j = 0; j < 2; j++) {
            RemotePb__Label *l = &lab[2 * k + j];
            remote_pb__label__init(l);
            const char *name = j ? "id" : "__name__", *value = j ? ids[s] : "batch";
            l->name = (ProtobufCBinaryData){strlen(name), (uint8_t *)(uintptr_t)name};
            l->value = (ProtobufCBinaryData){strlen(value), (uint8_t *)(uintptr_t)value};
            labp[2 * k + j] = l;
        }
        ts[k].labels = &labp[2 * k];
        ts[k].n_labels = 2;
        remote_pb__sample__init(&smp[k]);
        smp[k].timestamp = NOW - 60000 + (int64_t)round * 15000;
        smp[k].value = (double)(s + round);
        smpp[k] = &smp[k];
        ts[k].samples = &smpp[k];
        ts[k].n_samples = 1;
        tsp[k] = &ts[k];
    }
    RemotePb__WriteRequest wr = REMOTE_PB__WRITE_REQUEST__INIT;
    wr.timeseries = tsp;
    wr.n_timeseries = nseries * per;
    size_t n = remote_pb__write_request__get_packed_size(&wr), len;
    uint8_t *pb = mp_xmalloc(n);
    cr_assert_eq(remote_pb__write_request__pack(&wr, pb), n);
    uint8_t *body = rw_snappy(pb, n, &len);
    struct remote_write_result res;
    cr_assert_eq(remote_write_decode_and_append(db, body, len, &lim, &res, NULL), 0, "%s",
                 res.message);
    cr_assert_eq(res.series, 2000);
    cr_assert_eq(res.samples_appended, 2000);
    char *dump = rw_dump(db);
    size_t lines = 0;
    for (const char *p = dump; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    cr_assert_eq(lines, nseries);
    cr_assert(strstr(dump, "{__name__=\"batch\", id=\"7\"} 1699999940000:7 1699999955000:8 "
                           "1699999970000:9 1699999985000:10\n"),
              "%.300s", dump);
    mp_free(dump);
    mp_free(body);
    mp_free(pb);
    mp_free(ids);
    mp_free(smpp);
    mp_free(smp);
    mp_free(labp);
    mp_free(lab);
    mp_free(tsp);
    mp_free(ts);
}
