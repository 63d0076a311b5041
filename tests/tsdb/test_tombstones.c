/* SPDX-License-Identifier: Apache-2.0 */
/* tests/tsdb/test_tombstones.c: interval merging as Prometheus's Intervals.Add (checked
 * against a brute-force bitmap oracle on random input, fixed seed), the in-memory set
 * (lookup, ref-order iteration, truncation, concurrent readers and writers) and the
 * tombstones file of tsdb.md 4.5: byte-exact images computed by hand (CRC32C from a bitwise
 * reference implementation), promtool's empty file, and refusal of every corruption. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/str.h"
#include "tsdb/fileutil.h"
#include "tsdb/tombstones.h"
#include "tsdb/wal.h"

static struct tsdb_interval I(int64_t a, int64_t b) {
    return (struct tsdb_interval){a, b};
}

static void
expect_intervals(const struct tsdb_intervals *in, const int64_t *want, size_t n)
{
    cr_assert_eq(in->n, n, "have %zu intervals, want %zu", in->n, n);
    for (size_t i = 0; i < n; i++)
        cr_assert(in->v[i].mint == want[2 * i] && in->v[i].maxt == want[2 * i + 1],
                  "interval %zu: [%lld,%lld], want [%lld,%lld]", i, (long long)in->v[i].mint,
                  (long long)in->v[i].maxt, (long long)want[2 * i], (long long)want[2 * i + 1]);
}

#define EXPECT(in, ...)                                                                            \
    do {                                                                                           \
        const int64_t w_[] = {__VA_ARGS__};                                                        \
        expect_intervals((in), w_, sizeof w_ / sizeof w_[0] / 2);                                  \
    } while (0)

Test(intervals, add_merges_as_prometheus)
{
    struct tsdb_intervals in = {0};
    cr_assert_eq(tsdb_intervals_add(&in, I(10, 20)), 0);
    cr_assert_eq(tsdb_intervals_add(&in, I(30, 40)), 0);
    EXPECT(&in, 10, 20, 30, 40);
    cr_assert_eq(tsdb_intervals_add(&in, I(0, 5)), 0); /* before all */
    EXPECT(&in, 0, 5, 10, 20, 30, 40);
    cr_assert_eq(tsdb_intervals_add(&in, I(50, 60)), 0); /* after all */
    cr_assert_eq(tsdb_intervals_add(&in, I(22, 28)), 0); /* in a gap, touching nobody */
    EXPECT(&in, 0, 5, 10, 20, 22, 28, 30, 40, 50, 60);
    cr_assert_eq(tsdb_intervals_add(&in, I(21, 21)), 0); /* adjacent both sides: joins */
    EXPECT(&in, 0, 5, 10, 28, 30, 40, 50, 60);
    cr_assert_eq(tsdb_intervals_add(&in, I(29, 29)), 0);
    EXPECT(&in, 0, 5, 10, 40, 50, 60);
    cr_assert_eq(tsdb_intervals_add(&in, I(12, 15)), 0); /* inside */
    EXPECT(&in, 0, 5, 10, 40, 50, 60);
    cr_assert_eq(tsdb_intervals_add(&in, I(3, 55)), 0); /* spans several */
    EXPECT(&in, 0, 60);
    cr_assert_eq(tsdb_intervals_add(&in, I(5, 4)), MP_EINVAL);
    EXPECT(&in, 0, 60);
    cr_assert_eq(tsdb_intervals_add(&in, I(INT64_MIN, -10)), 0); /* no overflow at the ends */
    cr_assert_eq(tsdb_intervals_add(&in, I(100, INT64_MAX)), 0);
    EXPECT(&in, INT64_MIN, -10, 0, 60, 100, INT64_MAX);
    cr_assert_eq(tsdb_intervals_add(&in, I(-9, 99)), 0);
    EXPECT(&in, INT64_MIN, INT64_MAX);
    cr_assert(tsdb_intervals_contains(&in, 0) && tsdb_intervals_contains(&in, INT64_MIN));
    tsdb_intervals_fini(&in);
}

Test(intervals, contains_and_truncate)
{
    struct tsdb_intervals in = {0};
    cr_assert_eq(tsdb_intervals_add(&in, I(10, 20)), 0);
    cr_assert_eq(tsdb_intervals_add(&in, I(30, 40)), 0);
    cr_assert(!tsdb_intervals_contains(&in, 9));
    cr_assert(tsdb_intervals_contains(&in, 10) && tsdb_intervals_contains(&in, 20));
    cr_assert(!tsdb_intervals_contains(&in, 25) && !tsdb_intervals_contains(&in, 41));
    tsdb_intervals_truncate_before(&in, 20); /* maxt 20 is not < 20: kept */
    EXPECT(&in, 10, 20, 30, 40);
    tsdb_intervals_truncate_before(&in, 21);
    EXPECT(&in, 30, 40);
    tsdb_intervals_truncate_before(&in, 1000);
    cr_assert_eq(in.n, 0);
    tsdb_intervals_fini(&in);
}

/* Oracle: a bitmap over [0, 256). */
Test(intervals, random_adds_match_a_bitmap_oracle)
{
    uint64_t seed = 0x9e3779b97f4a7c15u;
    for (int round = 0; round < 300; round++) {
        bool bits[256] = {false};
        struct tsdb_intervals in = {0};
        for (int k = 0; k < 12; k++) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            int64_t a = (int64_t)(seed % 256), len = (int64_t)((seed >> 20) % 24);
            int64_t b = a + len > 255 ? 255 : a + len;
            cr_assert_eq(tsdb_intervals_add(&in, I(a, b)), 0);
            for (int64_t t = a; t <= b; t++)
                bits[t] = true;
        }
        /* rebuild the canonical list from the bitmap and compare */
        size_t j = 0;
        for (int64_t t = 0; t < 256;) {
            if (!bits[t]) {
                t++;
                continue;
            }
            int64_t s = t;
            while (t < 256 && bits[t])
                t++;
            cr_assert_lt(j, in.n, "round %d seed %llx: missing interval", round,
                         (unsigned long long)seed);
            cr_assert(in.v[j].mint == s && in.v[j].maxt == t - 1,
                      "round %d: [%lld,%lld] vs "
                      "[%lld,%lld]",
                      round, (long long)in.v[j].mint, (long long)in.v[j].maxt, (long long)s,
                      (long long)(t - 1));
            j++;
        }
        cr_assert_eq(j, in.n, "round %d: extra intervals", round);
        tsdb_intervals_fini(&in);
    }
}

Test(tombstones, set_lookup_iteration_and_truncation)
{
    struct tsdb_tombstones *t = tsdb_tombstones_create();
    cr_assert_eq(tsdb_tombstones_add(t, 7, I(100, 200)), 0);
    cr_assert_eq(tsdb_tombstones_add(t, 2, I(0, 10)), 0);
    cr_assert_eq(tsdb_tombstones_add(t, 5, I(50, 60)), 0);
    cr_assert_eq(tsdb_tombstones_add(t, 2, I(11, 20)), 0); /* merges with [0,10] */
    cr_assert_eq(tsdb_tombstones_add(t, 2, I(30, 40)), 0);
    cr_assert_eq(tsdb_tombstones_add(t, 9, I(3, 1)), MP_EINVAL);
    cr_assert_eq(tsdb_tombstones_total(t), 4);
    cr_assert_eq(tsdb_tombstones_num_series(t), 3);
    cr_assert(tsdb_tombstones_is_deleted(t, 2, 15));
    cr_assert(!tsdb_tombstones_is_deleted(t, 2, 25));
    cr_assert(!tsdb_tombstones_is_deleted(t, 3, 15));
    struct tsdb_intervals iv = {0};
    cr_assert_eq(tsdb_tombstones_get(t, 2, &iv), 0);
    EXPECT(&iv, 0, 20, 30, 40);
    cr_assert_eq(tsdb_tombstones_get(t, 4, &iv), MP_ENOTFOUND);
    cr_assert_eq(iv.n, 0);

    const uint64_t order[] = {2, 5, 7};
    struct tsdb_tombstones_iter it;
    tsdb_tombstones_iter_init(&it, t);
    uint64_t ref;
    size_t k = 0;
    int rc;
    while ((rc = tsdb_tombstones_iter_next(&it, &ref, &iv)) == 0) {
        cr_assert_lt(k, 3);
        cr_assert_eq(ref, order[k], "step %zu: ref %llu", k, (unsigned long long)ref);
        if (k == 0) /* modifying between steps is allowed: ahead is seen, behind is not */
            cr_assert_eq(tsdb_tombstones_add(t, 1, I(0, 0)), 0);
        k++;
    }
    cr_assert_eq(rc, MP_EEOF);
    cr_assert_eq(k, 3);

    tsdb_tombstones_truncate_before(t, 35);
    cr_assert_eq(tsdb_tombstones_num_series(t), 3); /* ref 1 [0,0] is gone */
    cr_assert_eq(tsdb_tombstones_get(t, 2, &iv), 0);
    EXPECT(&iv, 30, 40);
    const uint64_t del[] = {5, 6};
    tsdb_tombstones_delete_series(t, del, 2);
    cr_assert_eq(tsdb_tombstones_num_series(t), 2);
    cr_assert_eq(tsdb_tombstones_get(t, 5, &iv), MP_ENOTFOUND);
    tsdb_intervals_fini(&iv);
    tsdb_tombstones_destroy(t);
}

Test(tombstones, iteration_reaches_the_largest_ref)
{
    struct tsdb_tombstones *t = tsdb_tombstones_create();
    cr_assert_eq(tsdb_tombstones_add(t, UINT64_MAX, I(1, 2)), 0);
    cr_assert_eq(tsdb_tombstones_add(t, 0, I(1, 2)), 0);
    struct tsdb_tombstones_iter it;
    tsdb_tombstones_iter_init(&it, t);
    struct tsdb_intervals iv = {0};
    uint64_t ref;
    cr_assert_eq(tsdb_tombstones_iter_next(&it, &ref, &iv), 0);
    cr_assert_eq(ref, 0);
    cr_assert_eq(tsdb_tombstones_iter_next(&it, &ref, &iv), 0);
    cr_assert_eq(ref, UINT64_MAX);
    cr_assert_eq(tsdb_tombstones_iter_next(&it, &ref, &iv), MP_EEOF);
    tsdb_intervals_fini(&iv);
    tsdb_tombstones_destroy(t);
}

static void *writer(void *arg)
{
    struct tsdb_tombstones *t = arg;
    for (int64_t i = 0; i < 2000; i++)
        if (tsdb_tombstones_add(t, (uint64_t)(i % 97), I(i * 10, i * 10 + 3)) != 0)
            return (void *)1;
    return NULL;
}

static void *reader(void *arg)
{
    struct tsdb_tombstones *t = arg;
    struct tsdb_intervals iv = {0};
    for (int r = 0; r < 200; r++) {
        struct tsdb_tombstones_iter it;
        tsdb_tombstones_iter_init(&it, t);
        uint64_t ref, prev = 0;
        bool first = true;
        while (tsdb_tombstones_iter_next(&it, &ref, &iv) == 0) {
            if ((!first && ref <= prev) || iv.n == 0)
                return (void *)1;
            for (size_t k = 1; k < iv.n; k++)
                if (iv.v[k].mint <= iv.v[k - 1].maxt + 1)
                    return (void *)1;
            prev = ref, first = false;
        }
    }
    tsdb_intervals_fini(&iv);
    return NULL;
}

Test(tombstones, concurrent_readers_and_writers)
{
    struct tsdb_tombstones *t = tsdb_tombstones_create();
    pthread_t th[4];
    cr_assert_eq(pthread_create(&th[0], NULL, writer, t), 0);
    cr_assert_eq(pthread_create(&th[1], NULL, writer, t), 0);
    cr_assert_eq(pthread_create(&th[2], NULL, reader, t), 0);
    cr_assert_eq(pthread_create(&th[3], NULL, reader, t), 0);
    for (int i = 0; i < 4; i++) {
        void *res;
        pthread_join(th[i], &res);
        cr_assert_null(res, "thread %d failed", i);
    }
    cr_assert_eq(tsdb_tombstones_total(t), 2000); /* both writers added the same intervals */
    tsdb_tombstones_destroy(t);
}

/* ---- file -------------------------------------------------------------------------- */

static const uint8_t empty_file[] = {0x01, 0x30, 0xba, 0x30, 0x01, 0x00, 0x00, 0x00, 0x00};

/* ref 1: [0,100], [200,300]; ref 3: [-1,5]. Entries by hand from tsdb.md 4.5:
 *   01 00 c801   uvarint 1, varint 0, varint 100 (zig-zag 200 = c8 01)
 *   01 9003 d804 uvarint 1, varint 200 (400), varint 300 (600)
 *   03 01 0a     uvarint 3, varint -1 (zig-zag 1), varint 5 (10)
 * CRC32C over the 12 entry bytes = 0x01aa544d (bitwise reference implementation). */
static const uint8_t two_series_file[] = {0x01, 0x30, 0xba, 0x30, 0x01, 0x01, 0x00,
                                          0xc8, 0x01, 0x01, 0x90, 0x03, 0xd8, 0x04,
                                          0x03, 0x01, 0x0a, 0x01, 0xaa, 0x54, 0x4d};

static void expect_image(const struct tsdb_tombstones *t, const uint8_t *want, size_t n)
{
    struct mp_buf b;
    mp_buf_init(&b, 0);
    cr_assert_eq(tsdb_tombstones_encode(t, &b), 0);
    cr_assert_eq(b.len, n, "%zu bytes, want %zu", b.len, n);
    cr_assert_eq(memcmp(b.data, want, n), 0);
    mp_buf_fini(&b);
}

Test(tombstones_file, byte_exact_images)
{
    struct tsdb_tombstones *t = tsdb_tombstones_create();
    expect_image(t, empty_file, sizeof empty_file);
    cr_assert_eq(tsdb_tombstones_add(t, 3, I(-1, 5)), 0);
    cr_assert_eq(tsdb_tombstones_add(t, 1, I(200, 300)), 0);
    cr_assert_eq(tsdb_tombstones_add(t, 1, I(0, 100)), 0);
    expect_image(t, two_series_file, sizeof two_series_file);
    tsdb_tombstones_destroy(t);

    struct mp_err err = {0};
    cr_assert_eq(tsdb_tombstones_decode(two_series_file, sizeof two_series_file, "x", &t, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(tsdb_tombstones_total(t), 3);
    cr_assert(tsdb_tombstones_is_deleted(t, 3, -1) && tsdb_tombstones_is_deleted(t, 1, 250));
    expect_image(t, two_series_file, sizeof two_series_file);
    tsdb_tombstones_destroy(t);
}

Test(tombstones_file, reads_promtool_empty_file)
{
    char *data;
    size_t len;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_file_read_all(MP_TESTDATA_DIR "/meta/promtool-2.42-tombstones", 4096, &data,
                                    &len, &err),
                 0, "%s", err.msg);
    cr_assert_eq(len, sizeof empty_file);
    cr_assert_eq(memcmp(data, empty_file, len), 0);
    struct tsdb_tombstones *t;
    cr_assert_eq(tsdb_tombstones_decode((const uint8_t *)data, len, "promtool", &t, &err), 0);
    cr_assert_eq(tsdb_tombstones_total(t), 0);
    tsdb_tombstones_destroy(t);
    mp_free(data);
}

/* Recomputes f's CRC, so the decoder's later checks are reached. */
static void fix_crc(uint8_t *f, size_t n)
{
    uint32_t c = tsdb_crc32c(0, f + 5, n - 9);
    f[n - 4] = (uint8_t)(c >> 24), f[n - 3] = (uint8_t)(c >> 16);
    f[n - 2] = (uint8_t)(c >> 8), f[n - 1] = (uint8_t)c;
}

Test(tombstones_file, unsorted_and_repeated_entries_are_merged)
{
    /* ref 3 [-1,5] before ref 1 [0,100], then ref 1 [101,101] which joins it */
    uint8_t f[] = {0x01, 0x30, 0xba, 0x30, 0x01, 0x03, 0x01, 0x0a, 0x01, 0x00, 0xc8,
                   0x01, 0x01, 0xca, 0x01, 0xca, 0x01, 0,    0,    0,    0};
    fix_crc(f, sizeof f);
    struct tsdb_tombstones *t;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_tombstones_decode(f, sizeof f, "x", &t, &err), 0, "%s", err.msg);
    struct tsdb_intervals iv = {0};
    cr_assert_eq(tsdb_tombstones_get(t, 1, &iv), 0);
    EXPECT(&iv, 0, 101);
    tsdb_intervals_fini(&iv);
    tsdb_tombstones_destroy(t);
}

static void expect_refused(const uint8_t *f, size_t n, const char *needle)
{
    struct tsdb_tombstones *t = (void *)1;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_tombstones_decode(f, n, "blk/tombstones", &t, &err), MP_EPARSE,
                 "accepted (%zu bytes)", n);
    cr_assert_null(t);
    cr_assert_not_null(strstr(err.msg, "blk/tombstones"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, needle), "%s lacks %s", err.msg, needle);
}

Test(tombstones_file, refuses_corruption)
{
    uint8_t f[sizeof two_series_file];
    /* every truncation, with and without a matching CRC, is refused or decodes in bounds */
    for (size_t n = 0; n < sizeof f; n++) {
        memcpy(f, two_series_file, n);
        struct tsdb_tombstones *t = NULL;
        cr_assert_neq(tsdb_tombstones_decode(f, n, "blk/tombstones", &t, NULL), 0, "len %zu", n);
        if (n >= 9) {
            fix_crc(f, n);
            /* entry bytes 5..n-4 now end mid-entry, except at entry boundaries */
            int rc = tsdb_tombstones_decode(f, n, "blk/tombstones", &t, NULL);
            cr_assert(rc == 0 || rc == MP_EPARSE);
            tsdb_tombstones_destroy(t);
        }
    }
    expect_refused(two_series_file, 8, "shorter than header");
    memcpy(f, two_series_file, sizeof f);
    f[0] ^= 1;
    expect_refused(f, sizeof f, "magic");
    memcpy(f, two_series_file, sizeof f);
    f[7] ^= 0x40; /* flip an entry bit: CRC */
    expect_refused(f, sizeof f, "checksum");
    memcpy(f, two_series_file, sizeof f);
    f[sizeof f - 1] ^= 1;
    expect_refused(f, sizeof f, "checksum");
    memcpy(f, two_series_file, sizeof f);
    f[4] = 2; /* the version byte is outside the CRC, as in Prometheus */
    expect_refused(f, sizeof f, "version 2");
    /* entries cut mid-varint, with a valid CRC */
    uint8_t cut[] = {0x01, 0x30, 0xba, 0x30, 0x01, 0x01, 0x00, 0xc8, 0, 0, 0, 0};
    fix_crc(cut, sizeof cut);
    expect_refused(cut, sizeof cut, "byte 5: truncated varint");
    /* an 11-byte varint */
    uint8_t ovf[] = {0x01, 0x30, 0xba, 0x30, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                     0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0,    0,    0,    0};
    fix_crc(ovf, sizeof ovf);
    expect_refused(ovf, sizeof ovf, "overflows");
    /* mint > maxt */
    uint8_t inv[] = {0x01, 0x30, 0xba, 0x30, 0x01, 0x01, 0x0a, 0x00, 0, 0, 0, 0};
    fix_crc(inv, sizeof inv);
    expect_refused(inv, sizeof inv, "mint > maxt");
}

Test(tombstones_file, write_and_read_a_directory)
{
    char dir[] = "/tmp/mp-tomb-test-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    struct mp_err err = {0};
    struct tsdb_tombstones *t;
    uint64_t size = 99;
    cr_assert_eq(tsdb_tombstones_read(dir, &t, &size, &err), 0, "%s", err.msg); /* missing */
    cr_assert_eq(size, 0);
    cr_assert_eq(tsdb_tombstones_total(t), 0);
    cr_assert_eq(tsdb_tombstones_add(t, 1, I(0, 100)), 0);
    cr_assert_eq(tsdb_tombstones_add(t, 1, I(200, 300)), 0);
    cr_assert_eq(tsdb_tombstones_add(t, 3, I(-1, 5)), 0);
    cr_assert_eq(tsdb_tombstones_write(dir, t, &size, &err), 0, "%s", err.msg);
    cr_assert_eq(size, sizeof two_series_file);
    tsdb_tombstones_destroy(t);
    char path[256];
    snprintf(path, sizeof path, "%s/tombstones", dir);
    char *data;
    size_t len;
    cr_assert_eq(tsdb_file_read_all(path, 4096, &data, &len, &err), 0);
    cr_assert_eq(len, sizeof two_series_file);
    cr_assert_eq(memcmp(data, two_series_file, len), 0);
    mp_free(data);
    cr_assert_eq(tsdb_tombstones_read(dir, &t, &size, &err), 0, "%s", err.msg);
    cr_assert_eq(tsdb_tombstones_total(t), 3);
    tsdb_tombstones_destroy(t);
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    fseek(f, 6, SEEK_SET);
    fputc(0x55, f);
    fclose(f);
    err = (struct mp_err){0};
    cr_assert_eq(tsdb_tombstones_read(dir, &t, &size, &err), MP_EPARSE);
    cr_assert_not_null(strstr(err.msg, path), "%s", err.msg);
    unlink(path);
    cr_assert_eq(rmdir(dir), 0);
}
