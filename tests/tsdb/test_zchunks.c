/* SPDX-License-Identifier: Apache-2.0 */
/* tests/tsdb/test_zchunks.c: compressed chunk segments: round trips over many frames and
 * segments, and refusal of damaged files. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tsdb/db.h"
#include "tsdb/zchunks.h"

static char dir[256];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/mp_test_zchunks_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    cr_assert_eq(tsdb_remove_all(dir, NULL), 0);
}

TestSuite(zchunks, .init = setup, .fini = teardown);

struct made {
    struct tsdb_xor *c;
    uint64_t ref;
};

/* n random XOR chunks written with small frames and segments. */
static void write_random(struct made *m, size_t n, uint64_t seed)
{
    char cdir[300];
    snprintf(cdir, sizeof cdir, "%s/chunks", dir);
    struct tsdb_zchunks_writer_options o;
    tsdb_zchunks_writer_options_init(&o);
    o.frame_size = 4096;
    o.segment_size = 20000;
    o.fsync = false;
    struct tsdb_zchunks_writer *w;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_zchunks_writer_open(cdir, &o, &w, &err), 0, "%s", err.msg);
    uint64_t x = seed;
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(tsdb_xor_create(&m[i].c), 0);
        size_t ns = 1 + (size_t)(x >> 40) % 200;
        int64_t t = 1700000000000 + (int64_t)i * 1000;
        double v = 0;
        for (size_t k = 0; k < ns; k++) {
            x = x * 6364136223846793005u + 1442695040888963407u;
            t += 10000 + (int64_t)(x >> 62);
            v += (double)(x >> 59);
            cr_assert_eq(tsdb_xor_append(m[i].c, t, v), 0);
        }
        struct tsdb_chunk c = {tsdb_xor_min_time(m[i].c), tsdb_xor_max_time(m[i].c), TSDB_ENC_XOR,
                               NULL, 0};
        c.data = tsdb_xor_bytes(m[i].c, &c.len);
        cr_assert_eq(tsdb_zchunks_writer_write(w, &c, 1, &m[i].ref, &err), 0, "%s", err.msg);
    }
    cr_assert_eq(tsdb_zchunks_writer_close(w, &err), 0, "%s", err.msg);
}

Test(zchunks, round_trip_over_frames_and_segments)
{
    enum { N = 3000 };
    struct made *m = calloc(N, sizeof *m);
    write_random(m, N, 12345);
    char cdir[300];
    snprintf(cdir, sizeof cdir, "%s/chunks", dir);
    struct tsdb_zchunks_reader *r;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_zchunks_reader_open(cdir, &r, &err), 0, "%s", err.msg);
    cr_assert_gt(m[N - 1].ref >> 48, 2, "expected several segments");
    struct tsdb_zchunks_cache cache;
    tsdb_zchunks_cache_init(&cache, 64 << 10);
    /* forward and in a scattered order */
    for (size_t pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < N; k++) {
            size_t i = pass ? (k * 7919) % N : k;
            uint8_t enc;
            const uint8_t *data;
            size_t len, want;
            cr_assert_eq(tsdb_zchunks_reader_get(r, &cache, m[i].ref, &enc, &data, &len, &err), 0,
                         "%s", err.msg);
            const uint8_t *exp = tsdb_xor_bytes(m[i].c, &want);
            cr_assert_eq(enc, TSDB_ENC_XOR);
            cr_assert_eq(len, want);
            cr_assert_eq(memcmp(data, exp, len), 0, "chunk %zu differs", i);
            tsdb_zchunks_cache_trim(&cache);
        }
    }
    uint8_t enc;
    const uint8_t *data;
    size_t len;
    cr_assert_eq(tsdb_zchunks_reader_get(r, &cache, (uint64_t)99 << 48, &enc, &data, &len, NULL),
                 MP_EPARSE);
    tsdb_zchunks_cache_fini(&cache);
    tsdb_zchunks_reader_close(r);
    for (size_t i = 0; i < N; i++)
        tsdb_xor_destroy(m[i].c);
    free(m);
}

Test(zchunks, damaged_segments_are_refused)
{
    enum { N = 40 };
    struct made m[N];
    write_random(m, N, 99);
    char path[400];
    snprintf(path, sizeof path, "%s/chunks/000001", dir);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    static uint8_t orig[1 << 20];
    size_t len = fread(orig, 1, sizeof orig, f);
    fclose(f);
    cr_assert_gt(len, 100);
    char cdir[300];
    snprintf(cdir, sizeof cdir, "%s/chunks", dir);
    /* every truncation and a flipped byte every few positions: refused at open, or every get
     * either fails cleanly or returns bytes that decode as far as they go */
    for (size_t cut = 0; cut <= len; cut += (cut < 64 || len - cut < 64) ? 1 : 37) {
        for (int flip = 0; flip < 2; flip++) {
            f = fopen(path, "wb");
            uint8_t *copy = malloc(len);
            memcpy(copy, orig, len);
            size_t n = flip ? len : cut;
            if (flip && cut < len)
                copy[cut] ^= 0x5a;
            cr_assert_eq(fwrite(copy, 1, n, f), n);
            fclose(f);
            free(copy);
            struct tsdb_zchunks_reader *r = NULL;
            int rc = tsdb_zchunks_reader_open(cdir, &r, NULL);
            if (rc) {
                cr_assert(rc == MP_EPARSE || rc == MP_ENOTFOUND, "rc %d at %zu", rc, cut);
                continue;
            }
            struct tsdb_zchunks_cache cache;
            tsdb_zchunks_cache_init(&cache, 1 << 20);
            for (size_t i = 0; i < N; i++) {
                uint8_t enc;
                const uint8_t *data;
                size_t dlen;
                if (tsdb_zchunks_reader_get(r, &cache, m[i].ref, &enc, &data, &dlen, NULL) == 0) {
                    struct tsdb_xor_iter it;
                    tsdb_xor_iter_init(&it, data, dlen);
                    int64_t t;
                    double v;
                    for (int k = 0; k < 70000 && tsdb_xor_iter_next(&it, &t, &v) == 0; k++)
                        ;
                }
            }
            tsdb_zchunks_cache_fini(&cache);
            tsdb_zchunks_reader_close(r);
        }
    }
    for (size_t i = 0; i < N; i++)
        tsdb_xor_destroy(m[i].c);
}
