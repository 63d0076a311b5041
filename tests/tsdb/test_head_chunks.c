/* SPDX-License-Identifier: Apache-2.0 */
/* tests/tsdb/test_head_chunks.c: chunks_head files (tsdb/head_chunks.c) against spec tsdb.md 2.4:
 * record bytes, a file written by Prometheus 2.42 replayed and rewritten byte for byte, random
 * XOR chunks across many small files read right after each write and after reopening, torn
 * tails at every offset of the last record, flipped bytes, header damage, concurrent readers
 * with one writer, and truncation. Random data comes from a fixed-seed xorshift. */
#define _GNU_SOURCE /* memmem */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "support_chunks.h"
#include "tsdb/chunks.h"
#include "tsdb/head_chunks.h"
#include "tsdb/tsdb.h"
#include "tsdb/wal.h"

#define PROM_FIXTURE MP_TESTDATA_DIR "/chunks/prom242-chunks_head-000001"

/* ---- helpers ------------------------------------------------------------------------------- */

struct rec {
    uint64_t series_ref, chunk_ref;
    int64_t mint, maxt;
    uint8_t enc;
    uint16_t ns;
};

struct replay {
    struct rec r[4096];
    size_t n;
    size_t fail_at; /* return MP_EINVAL at this record (0 = never) */
};

static int collect(void *ctx, uint64_t series_ref, uint64_t chunk_ref, int64_t mint, int64_t maxt,
                   uint8_t enc, uint16_t ns)
{
    struct replay *rp = ctx;
    if (rp->fail_at && rp->n + 1 == rp->fail_at)
        return MP_EINVAL;
    cr_assert_lt(rp->n, 4096);
    rp->r[rp->n++] = (struct rec){series_ref, chunk_ref, mint, maxt, enc, ns};
    return 0;
}

static struct tsdb_head_chunks *open_hc(const char *dir, size_t max_file, struct replay *rp)
{
    struct tsdb_head_chunks_options o;
    tsdb_head_chunks_options_init(&o);
    o.max_file_size = max_file;
    o.write_buffer_size = TSDB_HEAD_CHUNKS_MIN_BUFFER_SIZE;
    o.fsync = false;
    struct tsdb_head_chunks *hc = NULL;
    struct mp_err err = {0};
    if (rp)
        rp->n = 0;
    cr_assert_eq(tsdb_head_chunks_open(dir, &o, rp ? collect : NULL, rp, &hc, &err), 0, "%s",
                 err.msg);
    return hc;
}

static void path_of(char *buf, size_t cap, const char *dir, unsigned num)
{
    int n = snprintf(buf, cap, "%s/%06u", dir, num);
    cr_assert(n > 0 && (size_t)n < cap);
}

static off_t size_of(const char *dir, unsigned num)
{
    char p[4096];
    path_of(p, sizeof p, dir, num);
    struct stat st;
    return stat(p, &st) == 0 ? st.st_size : -1;
}

static size_t warn_lines;
static void count_warn(void *ctx, const char *line, size_t len)
{
    (void)ctx;
    if (memmem(line, len, "level=warn", 10))
        warn_lines++;
}

static void expect_chunk(struct tsdb_head_chunks *hc, uint64_t ref, const uint8_t *want,
                         size_t wlen, const char *what, size_t i)
{
    struct mp_err err = {0};
    const uint8_t *d = NULL;
    size_t len = 0;
    uint8_t enc = 0;
    cr_assert_eq(tsdb_head_chunks_get(hc, ref, &enc, &d, &len, &err), 0, "%s %zu: %s", what, i,
                 err.msg);
    cr_assert_eq(enc, TSDB_ENC_XOR, "%s %zu", what, i);
    cr_assert_eq(len, wlen, "%s %zu", what, i);
    cr_assert_eq(memcmp(d, want, len), 0, "%s %zu", what, i);
}

/* ---- format -------------------------------------------------------------------------------- */

Test(head_chunks, record_bytes_follow_the_spec)
{
    char *dir = sc_mktmp("hc");
    struct tsdb_head_chunks *hc = NULL;
    cr_assert_eq(tsdb_head_chunks_open(dir, NULL, NULL, NULL, &hc, NULL), 0, "defaults, fsync on");
    uint8_t data[166];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    uint64_t ref = 0;
    cr_assert_eq(tsdb_head_chunks_write(hc, 1, 1699999200000, 1700000390000, TSDB_ENC_XOR, data,
                                        sizeof data, &ref, NULL),
                 0);
    cr_assert_eq(ref, UINT64_C(1) << 32 | 8, "file number 1 (1-based), offset 8");
    cr_assert_eq(tsdb_head_chunks_close(hc, NULL), 0);

    uint8_t want[8 + 25 + 2 + sizeof data + 4] = {0x01, 0x30, 0xbc, 0x91, 0x01, 0, 0, 0};
    uint8_t *p = want + 8;
    tsdb_put_be64(p, 1);
    tsdb_put_be64(p + 8, (uint64_t)1699999200000);
    tsdb_put_be64(p + 16, (uint64_t)1700000390000);
    p[24] = 1;
    p[25] = 0xa6; /* uvarint 166 */
    p[26] = 0x01;
    memcpy(p + 27, data, sizeof data);
    tsdb_put_be32(p + 27 + sizeof data, tsdb_crc32c(0, p, 27 + sizeof data));
    char path[4096];
    path_of(path, sizeof path, dir, 1);
    sc_assert_file_eq(path, want, sizeof want, "one record");

    struct tsdb_head_chunk_record r;
    cr_assert_eq(tsdb_head_chunks_record_parse(want + 8, sizeof want - 8, true, &r, NULL), 0);
    cr_assert_eq(r.size, sizeof want - 8);
    cr_assert_eq(tsdb_head_chunks_record_size(sizeof data), sizeof want - 8);
    sc_rmrf(dir);
    free(dir);
}

/* testdata/chunks/prom242-chunks_head-000001 (see the README beside it). */
Test(head_chunks, reads_and_rewrites_prometheus_242_file)
{
    char *dir = sc_mktmp("hc");
    size_t flen = 0;
    uint8_t *orig = sc_slurp(PROM_FIXTURE, &flen);
    cr_assert_not_null(orig);
    char path[4096];
    path_of(path, sizeof path, dir, 1);
    sc_spit(path, orig, flen);

    static struct replay rp;
    warn_lines = 0;
    mp_log_set_sink(count_warn, NULL);
    struct tsdb_head_chunks *hc = open_hc(dir, TSDB_HEAD_CHUNKS_MAX_FILE_SIZE, &rp);
    mp_log_set_sink(NULL, NULL);
    cr_assert_eq(warn_lines, 0);
    cr_assert_eq(rp.n, 1008);
    cr_assert_eq(rp.r[0].series_ref, 1);
    cr_assert_eq(rp.r[0].chunk_ref, UINT64_C(1) << 32 | 8);
    cr_assert_eq(rp.r[0].mint, 1796172920069);
    cr_assert_eq(rp.r[0].maxt, 1796173037069);
    cr_assert_eq(rp.r[0].ns, 118);
    cr_assert_eq(tsdb_head_chunks_file_number(hc), 1);

    char out[4096];
    snprintf(out, sizeof out, "%s/rewrite", dir);
    struct tsdb_head_chunks *w = open_hc(out, TSDB_HEAD_CHUNKS_MAX_FILE_SIZE, NULL);
    struct mp_err err = {0};
    for (size_t i = 0; i < rp.n; i++) {
        const uint8_t *d;
        size_t len;
        uint8_t enc;
        cr_assert_eq(tsdb_head_chunks_get(hc, rp.r[i].chunk_ref, &enc, &d, &len, &err), 0,
                     "record %zu: %s", i, err.msg);
        struct tsdb_xor_iter it;
        tsdb_xor_iter_init(&it, d, len);
        int64_t t, first = 0, last = 0;
        double v;
        size_t n = 0;
        while (tsdb_xor_iter_next(&it, &t, &v) == 0) {
            if (n++ == 0)
                first = t;
            last = t;
        }
        cr_assert_eq(tsdb_xor_iter_error(&it, &err), 0, "record %zu: %s", i, err.msg);
        cr_assert_eq(n, rp.r[i].ns, "record %zu", i);
        cr_assert(first == rp.r[i].mint && last == rp.r[i].maxt, "record %zu", i);
        uint64_t ref;
        cr_assert_eq(tsdb_head_chunks_write(w, rp.r[i].series_ref, rp.r[i].mint, rp.r[i].maxt,
                                            enc, d, len, &ref, &err),
                     0, "%s", err.msg);
        cr_assert_eq(ref, rp.r[i].chunk_ref, "record %zu", i);
    }
    cr_assert_eq(tsdb_head_chunks_close(w, &err), 0, "%s", err.msg);
    cr_assert_eq(tsdb_head_chunks_close(hc, &err), 0, "%s", err.msg);
    path_of(path, sizeof path, out, 1);
    sc_assert_file_eq(path, orig, flen, "file rewritten from Prometheus's records");
    free(orig);
    sc_rmrf(dir);
    free(dir);
}

/* ---- round trips --------------------------------------------------------------------------- */

Test(head_chunks, round_trip_across_small_files_and_reopen)
{
    enum { N = 400 };
    uint64_t seed = 0x2545f4914f6cdd1du, st = seed;
    char *dir = sc_mktmp("hc");
    struct tsdb_head_chunks *hc = open_hc(dir, 8192, NULL);
    static uint8_t *data[N];
    static size_t lens[N];
    static uint64_t refs[N];
    static struct rec want[N];
    struct mp_err err = {0};
    for (size_t i = 0; i < N; i++) {
        int64_t mint, maxt;
        data[i] = sc_random_xor(&st, 120, &lens[i], &mint, &maxt);
        uint64_t sref = 1 + sc_rnd(&st) % 1000;
        cr_assert_eq(tsdb_head_chunks_write(hc, sref, mint, maxt, TSDB_ENC_XOR, data[i], lens[i],
                                            &refs[i], &err),
                     0, "seed %#llx chunk %zu: %s", (unsigned long long)seed, i, err.msg);
        want[i] = (struct rec){sref, refs[i], mint, maxt, TSDB_ENC_XOR,
                               (uint16_t)(data[i][0] << 8 | data[i][1])};
        expect_chunk(hc, refs[i], data[i], lens[i], "right after write", i);
    }
    uint32_t files = tsdb_head_chunks_file_number(hc);
    cr_assert_gt(files, 3, "8 KiB files: the chunks span several");
    cr_assert_eq(refs[N - 1] >> 32, files);
    for (size_t i = 0; i < N; i++)
        expect_chunk(hc, refs[i], data[i], lens[i], "after all writes", i);
    struct tsdb_head_chunks_stats s;
    tsdb_head_chunks_stats_get(hc, &s);
    cr_assert_eq(s.chunks_written, N);
    cr_assert_eq(s.files, files);
    cr_assert_eq(tsdb_head_chunks_close(hc, &err), 0, "%s", err.msg);

    uint64_t bytes = 0;
    for (unsigned f = 1; f <= files; f++) {
        off_t sz = size_of(dir, f);
        cr_assert(sz > 8 && sz <= 8192, "file %u: %lld bytes", f, (long long)sz);
        bytes += (uint64_t)sz;
    }
    cr_assert_eq(s.bytes, bytes);

    static struct replay rp;
    hc = open_hc(dir, 8192, &rp);
    cr_assert_eq(rp.n, N);
    for (size_t i = 0; i < N; i++) {
        cr_assert_eq(memcmp(&rp.r[i], &want[i], sizeof want[i]), 0, "record %zu", i);
        expect_chunk(hc, refs[i], data[i], lens[i], "after reopen", i);
    }
    uint64_t ref;
    cr_assert_eq(tsdb_head_chunks_write(hc, 1, 0, 0, TSDB_ENC_XOR, data[0], lens[0], &ref, &err),
                 0);
    cr_assert_eq(ref, (uint64_t)(files + 1) << 32 | 8, "a reopened dir writes to a new file");
    cr_assert_eq(tsdb_head_chunks_close(hc, NULL), 0);
    for (size_t i = 0; i < N; i++)
        free(data[i]);
    sc_rmrf(dir);
    free(dir);
}

/* ---- damage -------------------------------------------------------------------------------- */

/* Writes n random chunks into dir/000001 (cut_new_file, then m more into 000002); refs out. */
static void make_files(const char *dir, size_t n, size_t m, uint64_t *refs)
{
    uint64_t st = 0x853c49e6748fea9bu;
    struct tsdb_head_chunks *hc = open_hc(dir, TSDB_HEAD_CHUNKS_MAX_FILE_SIZE, NULL);
    for (size_t i = 0; i < n + m; i++) {
        if (i == n)
            tsdb_head_chunks_cut_new_file(hc);
        size_t len;
        int64_t mint, maxt;
        uint8_t *d = sc_random_xor(&st, 60, &len, &mint, &maxt);
        cr_assert_eq(tsdb_head_chunks_write(hc, i + 1, mint, maxt, TSDB_ENC_XOR, d, len, &refs[i],
                                            NULL),
                     0);
        free(d);
    }
    cr_assert_eq(tsdb_head_chunks_close(hc, NULL), 0);
}

Test(head_chunks, torn_tail_at_every_offset_of_the_last_record)
{
    enum { N = 5 };
    char *dir = sc_mktmp("hc");
    uint64_t refs[N];
    make_files(dir, N, 0, refs);
    char path[4096];
    path_of(path, sizeof path, dir, 1);
    size_t flen = 0;
    uint8_t *orig = sc_slurp(path, &flen);
    size_t start = (size_t)(refs[N - 1] & UINT32_MAX);
    cr_assert_lt(flen - start, 4096, "bounded loop");
    static struct replay rp;
    for (size_t cut = start; cut < flen; cut++) {
        sc_spit(path, orig, cut);
        warn_lines = 0;
        mp_log_set_sink(count_warn, NULL);
        struct tsdb_head_chunks *hc = open_hc(dir, TSDB_HEAD_CHUNKS_MAX_FILE_SIZE, &rp);
        mp_log_set_sink(NULL, NULL);
        /* a tail of zero bytes (the high bytes of the series ref) looks like unwritten space:
         * it ends the file without a repair */
        bool zeros = true;
        for (size_t i = start; i < cut; i++)
            zeros = zeros && orig[i] == 0;
        bool torn = cut > start && !zeros;
        cr_assert_eq(rp.n, N - 1, "cut %zu", cut);
        cr_assert_eq(warn_lines, torn, "cut %zu: warn only for a torn record", cut);
        cr_assert_eq(size_of(dir, 1), (off_t)(torn ? start : cut), "cut %zu", cut);
        struct tsdb_head_chunks_stats s;
        tsdb_head_chunks_stats_get(hc, &s);
        cr_assert_eq(s.repairs, torn);
        const uint8_t *d;
        size_t len;
        cr_assert_eq(tsdb_head_chunks_get(hc, refs[N - 1], NULL, &d, &len, NULL), MP_EPARSE);
        cr_assert_eq(tsdb_head_chunks_get(hc, refs[N - 2], NULL, &d, &len, NULL), 0);
        cr_assert_eq(tsdb_head_chunks_close(hc, NULL), 0);
    }
    /* zero bytes after the records (unwritten space) are not damage */
    uint8_t *padded = calloc(1, flen + 4096);
    memcpy(padded, orig, flen);
    sc_spit(path, padded, flen + 4096);
    warn_lines = 0;
    mp_log_set_sink(count_warn, NULL);
    struct tsdb_head_chunks *hc = open_hc(dir, TSDB_HEAD_CHUNKS_MAX_FILE_SIZE, &rp);
    mp_log_set_sink(NULL, NULL);
    cr_assert_eq(rp.n, N);
    cr_assert_eq(warn_lines, 0);
    cr_assert_eq(size_of(dir, 1), (off_t)(flen + 4096), "left as it is");
    cr_assert_eq(tsdb_head_chunks_close(hc, NULL), 0);
    /* ... but anything non-zero after an all-zero header is */
    padded[flen + 100] = 1;
    sc_spit(path, padded, flen + 4096);
    hc = open_hc(dir, TSDB_HEAD_CHUNKS_MAX_FILE_SIZE, &rp);
    cr_assert_eq(rp.n, N);
    cr_assert_eq(size_of(dir, 1), (off_t)flen);
    cr_assert_eq(tsdb_head_chunks_close(hc, NULL), 0);
    free(padded);
    free(orig);
    sc_rmrf(dir);
    free(dir);
}

Test(head_chunks, flipped_byte_cuts_the_file_there_and_drops_later_files)
{
    enum { N = 6, M = 3, BAD = 2 };
    char *dir = sc_mktmp("hc");
    uint64_t refs[N + M];
    make_files(dir, N, M, refs);
    cr_assert_eq(refs[N] >> 32, 2);
    char p1[4096], p2[4096];
    path_of(p1, sizeof p1, dir, 1);
    path_of(p2, sizeof p2, dir, 2);
    size_t l1 = 0, l2 = 0;
    uint8_t *f1 = sc_slurp(p1, &l1), *f2 = sc_slurp(p2, &l2);
    size_t start = (size_t)(refs[BAD] & UINT32_MAX), end = (size_t)(refs[BAD + 1] & UINT32_MAX);
    static struct replay rp;
    for (size_t i = start; i < end; i++) {
        f1[i] ^= 0x10;
        sc_spit(p1, f1, l1);
        sc_spit(p2, f2, l2);
        f1[i] ^= 0x10;
        warn_lines = 0;
        mp_log_set_sink(count_warn, NULL);
        struct tsdb_head_chunks *hc = open_hc(dir, TSDB_HEAD_CHUNKS_MAX_FILE_SIZE, &rp);
        mp_log_set_sink(NULL, NULL);
        cr_assert_eq(rp.n, BAD, "byte %zu", i);
        cr_assert_eq(warn_lines, 1);
        cr_assert_eq(size_of(dir, 1), (off_t)start);
        cr_assert_eq(size_of(dir, 2), -1, "later file deleted");
        const uint8_t *d;
        size_t len;
        cr_assert_eq(tsdb_head_chunks_get(hc, refs[N], NULL, &d, &len, NULL), MP_ENOTFOUND);
        uint64_t ref;
        cr_assert_eq(tsdb_head_chunks_write(hc, 1, 0, 0, 1, f1 + 40, 10, &ref, NULL), 0);
        cr_assert_eq(ref >> 32, 2, "numbering continues without a gap");
        cr_assert_eq(tsdb_head_chunks_close(hc, NULL), 0);
        unlink(p2);
    }
    free(f1);
    free(f2);
    sc_rmrf(dir);
    free(dir);
}

Test(head_chunks, header_damage_and_foreign_files)
{
    char *dir = sc_mktmp("hc");
    uint64_t refs[2];
    make_files(dir, 1, 1, refs);
    char p1[4096], p2[4096], p3[4096];
    path_of(p1, sizeof p1, dir, 1);
    path_of(p2, sizeof p2, dir, 2);
    path_of(p3, sizeof p3, dir, 3);
    size_t l1 = 0;
    uint8_t *f1 = sc_slurp(p1, &l1);

    /* a file created but empty (crash before its header was written) is removed */
    sc_spit(p2, "", 0);
    static struct replay rp;
    struct tsdb_head_chunks *hc = open_hc(dir, TSDB_HEAD_CHUNKS_MAX_FILE_SIZE, &rp);
    cr_assert_eq(rp.n, 1);
    cr_assert_eq(size_of(dir, 2), -1);
    struct tsdb_head_chunks_stats s;
    tsdb_head_chunks_stats_get(hc, &s);
    cr_assert_eq(s.files, 1);
    cr_assert_eq(s.repairs, 1);
    cr_assert_eq(tsdb_head_chunks_close(hc, NULL), 0);

    struct tsdb_head_chunks_options o;
    tsdb_head_chunks_options_init(&o);
    o.fsync = false;
    struct mp_err err = {0};
    sc_spit(p3, f1, l1);
    cr_assert_eq(tsdb_head_chunks_open(dir, &o, NULL, NULL, &hc, &err), MP_EPARSE);
    cr_assert(strstr(err.msg, "not sequential (000001 then 000003)"), "%s", err.msg);
    unlink(p3);

    f1[1] ^= 0xff;
    sc_spit(p1, f1, l1);
    mp_err_clear(&err);
    cr_assert_eq(tsdb_head_chunks_open(dir, &o, NULL, NULL, &hc, &err), MP_EPARSE);
    cr_assert(strstr(err.msg, "000001: offset 0: invalid magic number"), "%s", err.msg);
    cr_assert_eq(size_of(dir, 1), (off_t)l1, "a foreign file is not repaired");
    f1[1] ^= 0xff;
    f1[4] = 2;
    sc_spit(p1, f1, l1);
    cr_assert_eq(tsdb_head_chunks_open(dir, &o, NULL, NULL, &hc, NULL), MP_EPARSE);
    f1[4] = 1;
    sc_spit(p1, f1, l1);

    /* the replay callback's error ends the open */
    rp.n = 0;
    rp.fail_at = 1;
    cr_assert_eq(tsdb_head_chunks_open(dir, &o, collect, &rp, &hc, NULL), MP_EINVAL);
    rp.fail_at = 0;

    o.max_file_size = 32;
    cr_assert_eq(tsdb_head_chunks_open(dir, &o, NULL, NULL, &hc, NULL), MP_EINVAL);
    o.max_file_size = TSDB_HEAD_CHUNKS_MAX_FILE_SIZE + 1;
    cr_assert_eq(tsdb_head_chunks_open(dir, &o, NULL, NULL, &hc, NULL), MP_EINVAL);
    tsdb_head_chunks_options_init(&o);
    o.write_buffer_size = 1024;
    cr_assert_eq(tsdb_head_chunks_open(dir, &o, NULL, NULL, &hc, NULL), MP_EINVAL);
    free(f1);
    sc_rmrf(dir);
    free(dir);
}

Test(head_chunks, get_rejects_bad_refs)
{
    char *dir = sc_mktmp("hc");
    struct tsdb_head_chunks *hc = open_hc(dir, 4096, NULL);
    struct mp_err err = {0};
    uint8_t data[32] = {0, 1};
    uint64_t ref;
    cr_assert_eq(tsdb_head_chunks_write(hc, 7, 1, 2, TSDB_ENC_XOR, data, sizeof data, &ref, &err),
                 0);
    const uint8_t *d;
    size_t len;
    cr_assert_eq(tsdb_head_chunks_get(hc, UINT64_C(1) << 32 | 3, NULL, &d, &len, &err),
                 MP_EPARSE);
    mp_err_clear(&err);
    cr_assert_eq(tsdb_head_chunks_get(hc, ref + 1000, NULL, &d, &len, &err), MP_EPARSE);
    cr_assert(strstr(err.msg, "/000001: offset 1008"), "%s", err.msg);
    cr_assert_eq(tsdb_head_chunks_get(hc, UINT64_C(9) << 32 | 8, NULL, &d, &len, NULL),
                 MP_ENOTFOUND);
    cr_assert_eq(tsdb_head_chunks_get(hc, 8, NULL, &d, &len, NULL), MP_ENOTFOUND, "file 0");
    /* a record must fit an empty file and the write buffer */
    static uint8_t big[5000];
    cr_assert_eq(tsdb_head_chunks_write(hc, 7, 1, 2, 1, big, sizeof big, &ref, NULL), MP_EINVAL);
    cr_assert_eq(tsdb_head_chunks_close(hc, NULL), 0);
    hc = open_hc(dir, TSDB_HEAD_CHUNKS_MAX_FILE_SIZE, NULL);
    static uint8_t huge[TSDB_HEAD_CHUNKS_MIN_BUFFER_SIZE];
    cr_assert_eq(tsdb_head_chunks_write(hc, 7, 1, 2, 1, huge, sizeof huge, &ref, NULL), MP_EINVAL);
    cr_assert_eq(tsdb_head_chunks_close(hc, NULL), 0);
    sc_rmrf(dir);
    free(dir);
}

/* ---- truncate ------------------------------------------------------------------------------ */

Test(head_chunks, truncate_deletes_older_files_but_never_the_current_one)
{
    char *dir = sc_mktmp("hc");
    struct tsdb_head_chunks *hc = open_hc(dir, 4096, NULL);
    uint8_t data[200];
    memset(data, 0xab, sizeof data);
    data[0] = 0;
    data[1] = 9;
    static uint64_t refs[256];
    size_t n = 0;
    while (n < 256 && tsdb_head_chunks_file_number(hc) < 4) {
        cr_assert_eq(tsdb_head_chunks_write(hc, n + 1, 0, 0, 1, data, sizeof data, &refs[n],
                                            NULL),
                     0);
        n++;
    }
    tsdb_head_chunks_cut_new_file(hc);
    cr_assert_eq(tsdb_head_chunks_file_number(hc), 4, "the cut is lazy");
    cr_assert_eq(tsdb_head_chunks_write(hc, 999, 0, 0, 1, data, sizeof data, &refs[n], NULL), 0);
    cr_assert_eq(refs[n] >> 32, 5);
    n++;

    struct mp_err err = {0};
    cr_assert_eq(tsdb_head_chunks_truncate(hc, 4, &err), 0, "%s", err.msg);
    for (unsigned f = 1; f <= 5; f++)
        cr_assert_eq(size_of(dir, f) >= 0, f >= 4, "file %u", f);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *d;
        size_t len;
        int rc = tsdb_head_chunks_get(hc, refs[i], NULL, &d, &len, NULL);
        cr_assert_eq(rc, (refs[i] >> 32) < 4 ? MP_ENOTFOUND : 0, "ref %zu", i);
    }
    struct tsdb_head_chunks_stats s;
    tsdb_head_chunks_stats_get(hc, &s);
    cr_assert_eq(s.files, 2);

    cr_assert_eq(tsdb_head_chunks_truncate(hc, 100, &err), 0);
    cr_assert_eq(size_of(dir, 4), -1);
    cr_assert(size_of(dir, 5) > 0, "the file being written stays");
    cr_assert_eq(tsdb_head_chunks_close(hc, NULL), 0);

    static struct replay rp;
    hc = open_hc(dir, 4096, &rp);
    cr_assert_eq(rp.n, 1);
    cr_assert_eq(rp.r[0].series_ref, 999);
    cr_assert_eq(rp.r[0].ns, 9);
    cr_assert_eq(tsdb_head_chunks_truncate(hc, 100, &err), 0);
    tsdb_head_chunks_stats_get(hc, &s);
    cr_assert_eq(s.files, 0, "after open no file is being written");
    uint64_t ref;
    cr_assert_eq(tsdb_head_chunks_write(hc, 1, 0, 0, 1, data, sizeof data, &ref, NULL), 0);
    cr_assert_eq(ref >> 32, 6, "numbers keep increasing");
    cr_assert_eq(tsdb_head_chunks_close(hc, NULL), 0);
    sc_rmrf(dir);
    free(dir);
}

/* ---- threads ------------------------------------------------------------------------------- */

enum { CW_CHUNKS = 3000, CW_READS = 20000 };

struct cw {
    struct tsdb_head_chunks *hc;
    uint64_t refs[CW_CHUNKS];
    _Atomic size_t published;
    _Atomic int failures;
};

/* Chunk i's bytes are a function of i, so readers can check them without sharing buffers. */
static size_t cw_fill(size_t i, uint8_t *out)
{
    size_t len = 20 + i % 200;
    for (size_t j = 0; j < len; j++)
        out[j] = (uint8_t)(i * 31 + j);
    return len;
}

static void *cw_writer(void *arg)
{
    struct cw *c = arg;
    uint8_t buf[256];
    for (size_t i = 0; i < CW_CHUNKS; i++) {
        size_t len = cw_fill(i, buf);
        if (tsdb_head_chunks_write(c->hc, i, (int64_t)i, (int64_t)i, TSDB_ENC_XOR, buf, len,
                                   &c->refs[i], NULL) != 0) {
            atomic_fetch_add(&c->failures, 1);
            break;
        }
        atomic_store_explicit(&c->published, i + 1, memory_order_release);
    }
    return NULL;
}

static void *cw_reader(void *arg)
{
    struct cw *c = arg;
    uint64_t st = 0x1234567u + (uint64_t)(uintptr_t)&st % 7;
    uint8_t want[256];
    for (size_t k = 0; k < CW_READS; k++) {
        size_t n = atomic_load_explicit(&c->published, memory_order_acquire);
        if (n == 0)
            continue;
        /* mostly the newest chunks (still in the write buffer), sometimes any */
        size_t i = sc_rnd(&st) % 4 ? n - 1 - sc_rnd(&st) % (n < 8 ? n : 8) : sc_rnd(&st) % n;
        const uint8_t *d;
        size_t len;
        uint8_t enc;
        if (tsdb_head_chunks_get(c->hc, c->refs[i], &enc, &d, &len, NULL) != 0 ||
            len != cw_fill(i, want) || memcmp(d, want, len) != 0 || enc != TSDB_ENC_XOR) {
            atomic_fetch_add(&c->failures, 1);
            return NULL;
        }
    }
    return NULL;
}

Test(head_chunks, concurrent_readers_with_one_writer)
{
    char *dir = sc_mktmp("hc");
    static struct cw c;
    c.hc = open_hc(dir, 64 << 10, NULL);
    atomic_init(&c.published, 0);
    atomic_init(&c.failures, 0);
    pthread_t w, r[2];
    cr_assert_eq(pthread_create(&w, NULL, cw_writer, &c), 0);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&r[i], NULL, cw_reader, &c), 0);
    pthread_join(w, NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(r[i], NULL);
    cr_assert_eq(atomic_load(&c.failures), 0);
    cr_assert_gt(tsdb_head_chunks_file_number(c.hc), 2, "files were cut meanwhile");
    uint8_t want[256];
    for (size_t i = 0; i < CW_CHUNKS; i++) {
        const uint8_t *d;
        size_t len;
        cr_assert_eq(tsdb_head_chunks_get(c.hc, c.refs[i], NULL, &d, &len, NULL), 0);
        cr_assert_eq(len, cw_fill(i, want));
        cr_assert_eq(memcmp(d, want, len), 0);
    }
    cr_assert_eq(tsdb_head_chunks_close(c.hc, NULL), 0);
    sc_rmrf(dir);
    free(dir);
}

/* ---- I/O errors ---------------------------------------------------------------------------- */

/* write() fails with EFBIG past 16 KiB (sc_limit_file_size). */
Test(head_chunks, failed_flush_keeps_the_buffer_and_the_file_clean)
{
    char *dir = sc_mktmp("hc");
    struct tsdb_head_chunks *hc = open_hc(dir, TSDB_HEAD_CHUNKS_MAX_FILE_SIZE, NULL);
    uint8_t data[1000];
    memset(data, 0x5a, sizeof data);
    static uint64_t refs[200];
    size_t n = 0;
    struct mp_err err = {0};
    sc_limit_file_size(16 << 10);
    int rc = 0;
    while (n < 200 && (rc = tsdb_head_chunks_write(hc, n + 1, 0, 0, 1, data, sizeof data,
                                                   &refs[n], &err)) == 0)
        n++;
    cr_assert_eq(rc, MP_EIO, "the first flush fails: %s", err.msg);
    cr_assert(strstr(err.msg, "/000001"), "%s", err.msg);
    cr_assert_gt(n, 16);
    cr_assert_eq(size_of(dir, 1), 0, "the partly written buffer was cut back");
    struct tsdb_head_chunks_stats s;
    tsdb_head_chunks_stats_get(hc, &s);
    cr_assert_eq(s.write_errors, 1);
    const uint8_t *d;
    size_t len;
    cr_assert_eq(tsdb_head_chunks_get(hc, refs[0], NULL, &d, &len, NULL), MP_EIO,
                 "get needs the failing flush");

    sc_limit_file_size(0);
    cr_assert_eq(tsdb_head_chunks_write(hc, 999, 0, 0, 1, data, sizeof data, &refs[n], &err), 0,
                 "%s", err.msg);
    n++;
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(tsdb_head_chunks_get(hc, refs[i], NULL, &d, &len, NULL), 0, "ref %zu", i);
        cr_assert(len == sizeof data && memcmp(d, data, len) == 0);
    }
    cr_assert_eq(tsdb_head_chunks_close(hc, NULL), 0);
    static struct replay rp;
    hc = open_hc(dir, TSDB_HEAD_CHUNKS_MAX_FILE_SIZE, &rp);
    cr_assert_eq(rp.n, n, "nothing lost, nothing doubled");
    cr_assert_eq(tsdb_head_chunks_close(hc, NULL), 0);
    sc_rmrf(dir);
    free(dir);
}
