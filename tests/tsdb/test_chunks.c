/* SPDX-License-Identifier: Apache-2.0 */
/* tests/tsdb/test_chunks.c: block chunk segments (tsdb/chunks.c) against spec tsdb.md 4.3: round
 * trips of random XOR chunks, Prometheus's segment cut points worked out by hand, a segment
 * written by promtool 2.42 read and rewritten byte for byte, refs and files that are corrupt
 * (every offset, every truncated prefix ending at a PROT_NONE guard page, every flipped byte). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support_chunks.h"
#include "tsdb/chunks.h"
#include "tsdb/tsdb.h"
#include "tsdb/wal.h"

#define FIXTURE MP_TESTDATA_DIR "/xor/promtool-2.42-chunks-000001"

static struct tsdb_chunks_writer_options test_opts(uint64_t segment_size)
{
    struct tsdb_chunks_writer_options o;
    tsdb_chunks_writer_options_init(&o);
    o.segment_size = segment_size;
    o.buffer_size = 4096; /* small, so that flushes happen mid-record */
    o.fsync = false;
    return o;
}

static void seg_path(char *buf, size_t cap, const char *dir, unsigned num)
{
    int n = snprintf(buf, cap, "%s/%06u", dir, num);
    cr_assert(n > 0 && (size_t)n < cap);
}

static off_t file_size(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "%s", path);
    return st.st_size;
}

Test(chunks, byte_helpers_match_go)
{
    uint8_t b[16];
    cr_assert_eq(tsdb_put_uvarint(b, 300), 2);
    cr_assert(b[0] == 0xac && b[1] == 0x02);
    uint64_t v = 0;
    cr_assert_eq(tsdb_get_uvarint(b, 2, &v), 2);
    cr_assert_eq(v, 300);
    cr_assert_eq(tsdb_get_uvarint(b, 1, &v), 0, "cut short");
    cr_assert_eq(tsdb_put_uvarint(b, UINT64_MAX), 10);
    cr_assert_eq(tsdb_get_uvarint(b, 10, &v), 10);
    cr_assert_eq(v, UINT64_MAX);
    b[9] = 0x02; /* 10th byte > 1 overflows, as in Go */
    cr_assert_eq(tsdb_get_uvarint(b, 10, &v), -1);
    memset(b, 0x80, 11);
    cr_assert_eq(tsdb_get_uvarint(b, 11, &v), -1);
    cr_assert_eq(tsdb_uvarint_len(127), 1);
    cr_assert_eq(tsdb_uvarint_len(128), 2);
    tsdb_put_be64(b, UINT64_C(0x0102030405060708));
    cr_assert(b[0] == 1 && b[7] == 8);
    cr_assert_eq(tsdb_get_be64(b), UINT64_C(0x0102030405060708));
}

struct walk_log {
    uint64_t refs[512];
    size_t n;
};

static int log_ref(void *ctx, uint64_t ref, uint8_t enc, const uint8_t *data, size_t len)
{
    struct walk_log *w = ctx;
    (void)enc;
    (void)data;
    (void)len;
    cr_assert_lt(w->n, 512);
    w->refs[w->n++] = ref;
    return 0;
}

Test(chunks, round_trip_random_xor_chunks)
{
    uint64_t seed = 0x9e3779b97f4a7c15u, st = seed;
    char *dir = sc_mktmp("chunks");
    struct tsdb_chunks_writer_options o = test_opts(TSDB_CHUNKS_DEFAULT_SEGMENT_SIZE);
    struct tsdb_chunks_writer *w = NULL;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_chunks_writer_open(dir, &o, &w, &err), 0, "%s", err.msg);

    enum { SERIES = 60, MAXC = 5 };
    static uint8_t *data[SERIES * MAXC];
    static size_t lens[SERIES * MAXC];
    static uint64_t refs[SERIES * MAXC];
    size_t total = 0;
    for (size_t s = 0; s < SERIES; s++) {
        struct tsdb_chunk batch[MAXC];
        size_t nc = 1 + sc_rnd(&st) % MAXC;
        for (size_t i = 0; i < nc; i++) {
            batch[i] = (struct tsdb_chunk){.encoding = TSDB_ENC_XOR};
            data[total + i] = sc_random_xor(&st, 240, &lens[total + i], &batch[i].mint_ms,
                                            &batch[i].maxt_ms);
            batch[i].data = data[total + i];
            batch[i].len = lens[total + i];
        }
        cr_assert_eq(tsdb_chunks_writer_write(w, batch, nc, refs + total, &err), 0, "%s",
                     err.msg);
        total += nc;
    }
    cr_assert_eq(tsdb_chunks_writer_segments(w), 1);
    uint64_t written = tsdb_chunks_writer_size(w);
    cr_assert_eq(tsdb_chunks_writer_close(w, &err), 0, "%s", err.msg);

    char path[4096];
    seg_path(path, sizeof path, dir, 1);
    cr_assert_eq((uint64_t)file_size(path), written);

    struct tsdb_chunks_reader *r = NULL;
    cr_assert_eq(tsdb_chunks_reader_open(dir, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(tsdb_chunks_reader_segments(r), 1);
    cr_assert_eq(tsdb_chunks_reader_size(r), written);
    cr_assert_eq(refs[0], TSDB_CHUNKS_HEADER_SIZE, "first chunk at offset 8 of segment 0");
    for (size_t i = 0; i < total; i++) {
        uint8_t enc = 0;
        const uint8_t *d;
        size_t len;
        cr_assert_eq(tsdb_chunks_reader_get(r, refs[i], &enc, &d, &len, &err), 0,
                     "seed %#llx chunk %zu: %s", (unsigned long long)seed, i, err.msg);
        cr_assert_eq(enc, TSDB_ENC_XOR);
        cr_assert_eq(len, lens[i]);
        cr_assert_eq(memcmp(d, data[i], len), 0, "seed %#llx chunk %zu", (unsigned long long)seed,
                     i);
        cr_assert_eq(tsdb_chunks_reader_check(r, refs[i], &err), 0, "%s", err.msg);
        if (i > 0)
            cr_assert_gt(refs[i], refs[i - 1], "refs increase through the file");
    }
    struct walk_log wl = {.n = 0};
    cr_assert_eq(tsdb_chunks_reader_walk(r, log_ref, &wl, &err), 0, "%s", err.msg);
    cr_assert_eq(wl.n, total);
    cr_assert_eq(memcmp(wl.refs, refs, total * sizeof *refs), 0);
    tsdb_chunks_reader_close(r);
    for (size_t i = 0; i < total; i++)
        free(data[i]);
    sc_rmrf(dir);
    free(dir);
}

/* Chunks of 100 data bytes: a record takes 106 bytes, Prometheus's estimate 110 (5-byte length
 * field). Segment size 338 = 8 + 3 x 110 holds exactly one 3-chunk batch by estimate. */
Test(chunks, cuts_segments_where_prometheus_does)
{
    char *dir = sc_mktmp("chunks");
    struct tsdb_chunks_writer_options o = test_opts(338);
    struct tsdb_chunks_writer *w = NULL;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_chunks_writer_open(dir, &o, &w, &err), 0, "%s", err.msg);
    uint8_t payload[100];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)i;
    struct tsdb_chunk c[4];
    for (size_t i = 0; i < 4; i++)
        c[i] = (struct tsdb_chunk){.encoding = TSDB_ENC_XOR, .data = payload, .len = 100};
    uint64_t refs[4];

    cr_assert_eq(tsdb_chunks_writer_write(w, c, 3, refs, &err), 0, "%s", err.msg);
    cr_assert_eq(refs[0], 8);
    cr_assert_eq(refs[1], 114);
    cr_assert_eq(refs[2], 220);
    /* 326 bytes used: one more chunk (estimate 110) does not fit, so a new segment */
    cr_assert_eq(tsdb_chunks_writer_write(w, c, 1, refs, &err), 0, "%s", err.msg);
    cr_assert_eq(refs[0], UINT64_C(1) << 32 | 8);
    /* 114 used: two chunks still fit by estimate (114 + 220 = 334), the third is cut off and
     * the fourth joins it */
    cr_assert_eq(tsdb_chunks_writer_write(w, c, 4, refs, &err), 0, "%s", err.msg);
    cr_assert_eq(refs[0], UINT64_C(1) << 32 | 114);
    cr_assert_eq(refs[1], UINT64_C(1) << 32 | 220);
    cr_assert_eq(refs[2], UINT64_C(2) << 32 | 8);
    cr_assert_eq(refs[3], UINT64_C(2) << 32 | 114);
    /* a chunk larger than a segment is written alone into a fresh one */
    static uint8_t big[1000];
    struct tsdb_chunk b = {.encoding = TSDB_ENC_XOR, .data = big, .len = sizeof big};
    cr_assert_eq(tsdb_chunks_writer_write(w, &b, 1, refs, &err), 0, "%s", err.msg);
    cr_assert_eq(refs[0], UINT64_C(3) << 32 | 8);
    cr_assert_eq(tsdb_chunks_writer_write(w, c, 1, refs, &err), 0, "%s", err.msg);
    cr_assert_eq(refs[0], UINT64_C(4) << 32 | 8);
    cr_assert_eq(tsdb_chunks_writer_segments(w), 5);
    cr_assert_eq(tsdb_chunks_writer_close(w, &err), 0, "%s", err.msg);

    char path[4096];
    off_t want[5] = {326, 326, 220, 8 + 2 + 1 + 1000 + 4, 114};
    for (unsigned i = 0; i < 5; i++) {
        seg_path(path, sizeof path, dir, i + 1);
        cr_assert_eq(file_size(path), want[i], "segment %u", i + 1);
    }
    struct tsdb_chunks_reader *r = NULL;
    cr_assert_eq(tsdb_chunks_reader_open(dir, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(tsdb_chunks_reader_segments(r), 5);
    const uint8_t *d;
    size_t len;
    cr_assert_eq(tsdb_chunks_reader_get(r, UINT64_C(3) << 32 | 8, NULL, &d, &len, &err), 0);
    cr_assert_eq(len, 1000);
    cr_assert_eq(tsdb_chunks_reader_check(r, UINT64_C(2) << 32 | 114, &err), 0, "%s", err.msg);
    tsdb_chunks_reader_close(r);
    sc_rmrf(dir);
    free(dir);
}

Test(chunks, writer_without_chunks_leaves_dir_empty)
{
    char *base = sc_mktmp("chunks");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/chunks", base);
    struct tsdb_chunks_writer *w = NULL;
    struct tsdb_chunks_writer_options o = test_opts(1024);
    cr_assert_eq(tsdb_chunks_writer_open(dir, &o, &w, NULL), 0, "creates the chunks dir");
    cr_assert_eq(tsdb_chunks_writer_close(w, NULL), 0);
    struct tsdb_chunks_reader *r = NULL;
    cr_assert_eq(tsdb_chunks_reader_open(dir, &r, NULL), 0);
    cr_assert_eq(tsdb_chunks_reader_segments(r), 0);
    cr_assert_eq(tsdb_chunks_reader_size(r), 0);
    cr_assert_eq(tsdb_chunks_reader_get(r, 8, NULL, &(const uint8_t *){NULL}, &(size_t){0}, NULL),
                 MP_EPARSE);
    tsdb_chunks_reader_close(r);

    o.segment_size = 8;
    cr_assert_eq(tsdb_chunks_writer_open(dir, &o, &w, NULL), MP_EINVAL);
    o.segment_size = UINT64_C(1) << 32;
    cr_assert_eq(tsdb_chunks_writer_open(dir, &o, &w, NULL), MP_EINVAL);
    sc_rmrf(base);
    free(base);
}

Test(chunks, refuses_to_overwrite_a_segment)
{
    char *dir = sc_mktmp("chunks");
    char path[4096];
    seg_path(path, sizeof path, dir, 1);
    sc_spit(path, "x", 1);
    struct tsdb_chunks_writer *w = NULL;
    struct tsdb_chunks_writer_options o = test_opts(1024);
    struct mp_err err = {0};
    cr_assert_eq(tsdb_chunks_writer_open(dir, &o, &w, &err), 0);
    struct tsdb_chunk c = {.encoding = TSDB_ENC_XOR, .data = (const uint8_t *)"\0\0", .len = 2};
    uint64_t ref;
    cr_assert_eq(tsdb_chunks_writer_write(w, &c, 1, &ref, &err), MP_EEXISTS);
    cr_assert(strstr(err.msg, "000001"), "%s", err.msg);
    cr_assert_eq(tsdb_chunks_writer_close(w, NULL), 0);
    sc_rmrf(dir);
    free(dir);
}

struct fixture_walk {
    uint64_t ref;
    uint8_t enc;
    const uint8_t *data;
    size_t len;
    size_t n;
};

static int keep_chunk(void *ctx, uint64_t ref, uint8_t enc, const uint8_t *data, size_t len)
{
    struct fixture_walk *f = ctx;
    f->ref = ref;
    f->enc = enc;
    f->data = data;
    f->len = len;
    f->n++;
    return 0;
}

static size_t count_lines(const char *path)
{
    size_t len = 0, n = 0;
    uint8_t *b = sc_slurp(path, &len);
    cr_assert_not_null(b, "%s", path);
    for (size_t i = 0; i < len; i++)
        n += b[i] == '\n';
    free(b);
    return n;
}

/* testdata/xor/promtool-2.42-chunks-000001: chunks/000001 of the block that `promtool tsdb
 * create-blocks-from openmetrics promtool-2.42-input.om out` (Prometheus 2.42) wrote; one series,
 * one XOR chunk of the samples in promtool-2.42-samples.txt. */
Test(chunks, reads_and_rewrites_promtool_segment_byte_for_byte)
{
    struct mp_err err = {0};
    char *dir = sc_mktmp("chunks");
    char path[4096];
    size_t flen = 0;
    uint8_t *orig = sc_slurp(FIXTURE, &flen);
    cr_assert_not_null(orig);
    seg_path(path, sizeof path, dir, 1);
    sc_spit(path, orig, flen);

    struct tsdb_chunks_reader *r = NULL;
    cr_assert_eq(tsdb_chunks_reader_open(dir, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(tsdb_chunks_reader_size(r), flen);
    struct fixture_walk f = {.n = 0};
    cr_assert_eq(tsdb_chunks_reader_walk(r, keep_chunk, &f, &err), 0, "%s", err.msg);
    cr_assert_eq(f.n, 1);
    cr_assert_eq(f.ref, 8);
    cr_assert_eq(f.enc, TSDB_ENC_XOR);
    struct tsdb_xor_iter it;
    tsdb_xor_iter_init(&it, f.data, f.len);
    size_t samples = 0;
    int64_t t;
    double v;
    while (tsdb_xor_iter_next(&it, &t, &v) == 0)
        samples++;
    cr_assert_eq(tsdb_xor_iter_error(&it, &err), 0, "%s", err.msg);
    cr_assert_eq(samples, count_lines(MP_TESTDATA_DIR "/xor/promtool-2.42-samples.txt"));

    char out[4096];
    snprintf(out, sizeof out, "%s/rewritten", dir);
    struct tsdb_chunks_writer *w = NULL;
    cr_assert_eq(tsdb_chunks_writer_open(out, NULL, &w, &err), 0, "defaults, fsync on: %s",
                 err.msg);
    struct tsdb_chunk c = {.encoding = f.enc, .data = f.data, .len = f.len};
    uint64_t ref;
    cr_assert_eq(tsdb_chunks_writer_write(w, &c, 1, &ref, &err), 0, "%s", err.msg);
    cr_assert_eq(ref, f.ref);
    cr_assert_eq(tsdb_chunks_writer_close(w, &err), 0, "%s", err.msg);
    tsdb_chunks_reader_close(r);

    seg_path(path, sizeof path, out, 1);
    sc_assert_file_eq(path, orig, flen, "segment rewritten from promtool's chunks");
    free(orig);
    sc_rmrf(dir);
    free(dir);
}

/* Every ref into the fixture, and every prefix of it placed right before a PROT_NONE page:
 * get and check either succeed with a slice inside the bytes or fail with MP_EPARSE. */
Test(chunks, corrupt_refs_and_truncated_segments_never_over_read)
{
    size_t flen = 0;
    uint8_t *orig = sc_slurp(FIXTURE, &flen);
    cr_assert_not_null(orig);
    long page = sysconf(_SC_PAGESIZE);
    size_t span = ((flen + (size_t)page - 1) / (size_t)page) * (size_t)page;
    uint8_t *region = mmap(NULL, span + (size_t)page, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(region, MAP_FAILED);
    cr_assert_eq(mprotect(region + span, (size_t)page, PROT_NONE), 0);

    for (size_t cut = 0; cut <= flen; cut++) {
        uint8_t *p = region + span - cut; /* the prefix ends at the guard page */
        memcpy(p, orig, cut);
        struct tsdb_chunks_reader *r = NULL;
        struct mp_err err = {0};
        int rc = tsdb_chunks_reader_open_mem(p, cut, &r, &err);
        if (cut < TSDB_CHUNKS_HEADER_SIZE) {
            cr_assert_eq(rc, MP_EPARSE, "cut %zu", cut);
            continue;
        }
        cr_assert_eq(rc, 0, "cut %zu: %s", cut, err.msg);
        for (uint64_t off = 0; off <= cut + 2; off++) {
            for (uint64_t seg = 0; seg < 2; seg++) {
                uint64_t ref = seg << 32 | off;
                const uint8_t *d = NULL;
                size_t len = 0;
                rc = tsdb_chunks_reader_get(r, ref, NULL, &d, &len, NULL);
                if (rc == 0) {
                    cr_assert(seg == 0 && d > p && d + len + 4 <= p + cut, "cut %zu off %llu",
                              cut, (unsigned long long)off);
                    rc = tsdb_chunks_reader_check(r, ref, NULL);
                    cr_assert(rc == 0 || rc == MP_EPARSE);
                    cr_assert(rc != 0 || (off == 8 && cut == flen),
                              "only the real chunk passes its CRC (cut %zu off %llu)", cut,
                              (unsigned long long)off);
                } else {
                    cr_assert_eq(rc, MP_EPARSE);
                }
            }
        }
        struct fixture_walk f = {.n = 0};
        rc = tsdb_chunks_reader_walk(r, keep_chunk, &f, &err);
        if (cut == flen || cut == TSDB_CHUNKS_HEADER_SIZE)
            cr_assert_eq(rc, 0, "cut %zu: %s", cut, err.msg);
        else
            cr_assert_eq(rc, MP_EPARSE, "cut %zu", cut);
        tsdb_chunks_reader_close(r);
    }
    munmap(region, span + (size_t)page);
    free(orig);
}

Test(chunks, flipped_bytes_fail_the_checksum)
{
    size_t flen = 0;
    uint8_t *orig = sc_slurp(FIXTURE, &flen);
    cr_assert_not_null(orig);
    uint8_t *copy = malloc(flen);
    for (size_t i = 10; i < flen; i++) { /* encoding byte, data, CRC */
        memcpy(copy, orig, flen);
        copy[i] ^= 0x01;
        struct tsdb_chunks_reader *r = NULL;
        struct mp_err err = {0};
        cr_assert_eq(tsdb_chunks_reader_open_mem(copy, flen, &r, &err), 0);
        cr_assert_eq(tsdb_chunks_reader_check(r, 8, &err), MP_EPARSE, "byte %zu", i);
        cr_assert(strstr(err.msg, "offset 8: checksum mismatch"), "%s", err.msg);
        tsdb_chunks_reader_close(r);
    }
    /* the length field: the record no longer fits, or its CRC is read from the wrong place */
    for (size_t i = 8; i < 10; i++) {
        for (unsigned bit = 0; bit < 8; bit++) {
            memcpy(copy, orig, flen);
            copy[i] ^= (uint8_t)(1u << bit);
            struct tsdb_chunks_reader *r = NULL;
            cr_assert_eq(tsdb_chunks_reader_open_mem(copy, flen, &r, NULL), 0);
            cr_assert_eq(tsdb_chunks_reader_check(r, 8, NULL), MP_EPARSE, "byte %zu bit %u", i,
                         bit);
            tsdb_chunks_reader_close(r);
        }
    }
    free(copy);
    free(orig);
}

Test(chunks, rejects_bad_headers_and_gaps_naming_the_file)
{
    char *dir = sc_mktmp("chunks");
    char path[4096];
    size_t flen = 0;
    uint8_t *orig = sc_slurp(FIXTURE, &flen);
    struct mp_err err = {0};
    struct tsdb_chunks_reader *r = NULL;

    seg_path(path, sizeof path, dir, 1);
    sc_spit(path, orig, flen);
    seg_path(path, sizeof path, dir, 3);
    sc_spit(path, orig, flen);
    cr_assert_eq(tsdb_chunks_reader_open(dir, &r, &err), MP_EPARSE);
    cr_assert(strstr(err.msg, "000002 missing"), "%s", err.msg);
    unlink(path);

    orig[0] ^= 0xff;
    seg_path(path, sizeof path, dir, 1);
    sc_spit(path, orig, flen);
    mp_err_clear(&err);
    cr_assert_eq(tsdb_chunks_reader_open(dir, &r, &err), MP_EPARSE);
    cr_assert(strstr(err.msg, "000001: offset 0: invalid magic number"), "%s", err.msg);
    orig[0] ^= 0xff;
    orig[4] = 2;
    sc_spit(path, orig, flen);
    mp_err_clear(&err);
    cr_assert_eq(tsdb_chunks_reader_open(dir, &r, &err), MP_EPARSE);
    cr_assert(strstr(err.msg, "invalid chunk format version 2"), "%s", err.msg);
    sc_spit(path, orig, 3);
    cr_assert_eq(tsdb_chunks_reader_open(dir, &r, NULL), MP_EPARSE);
    sc_spit(path, orig, 0);
    cr_assert_eq(tsdb_chunks_reader_open(dir, &r, NULL), MP_EPARSE, "an empty segment");

    orig[4] = 1;
    sc_spit(path, orig, flen);
    cr_assert_eq(tsdb_chunks_reader_open(dir, &r, &err), 0);
    mp_err_clear(&err);
    const uint8_t *d;
    size_t len;
    cr_assert_eq(tsdb_chunks_reader_get(r, UINT64_C(1) << 32 | 8, NULL, &d, &len, &err),
                 MP_EPARSE);
    cr_assert(strstr(err.msg, "segment index 1 out of range"), "%s", err.msg);
    mp_err_clear(&err);
    cr_assert_eq(tsdb_chunks_reader_get(r, 9999, NULL, &d, &len, &err), MP_EPARSE);
    cr_assert(strstr(err.msg, "/000001: offset 9999"), "%s", err.msg);
    tsdb_chunks_reader_close(r);
    free(orig);
    sc_rmrf(dir);
    free(dir);
}

/* write() fails with EFBIG past 16 KiB (sc_limit_file_size): the writer reports MP_EIO, stays broken, and close says so too. */
Test(chunks, write_error_breaks_the_writer)
{
    char *dir = sc_mktmp("chunks");
    struct tsdb_chunks_writer_options o = test_opts(TSDB_CHUNKS_DEFAULT_SEGMENT_SIZE);
    struct tsdb_chunks_writer *w = NULL;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_chunks_writer_open(dir, &o, &w, &err), 0);
    sc_limit_file_size(16 << 10);
    static uint8_t data[1000];
    struct tsdb_chunk c = {.encoding = TSDB_ENC_XOR, .data = data, .len = sizeof data};
    uint64_t ref;
    int rc = 0;
    for (int i = 0; i < 100 && rc == 0; i++)
        rc = tsdb_chunks_writer_write(w, &c, 1, &ref, &err);
    cr_assert_eq(rc, MP_EIO, "%s", err.msg);
    cr_assert(strstr(err.msg, "write segment") && strstr(err.msg, "/000001"), "%s", err.msg);
    sc_limit_file_size(0);
    cr_assert_eq(tsdb_chunks_writer_write(w, &c, 1, &ref, NULL), MP_EIO, "sticky");
    mp_err_clear(&err);
    cr_assert_eq(tsdb_chunks_writer_close(w, &err), MP_EIO);
    cr_assert(strstr(err.msg, "write segment"), "%s", err.msg);
    sc_rmrf(dir);
    free(dir);
}
