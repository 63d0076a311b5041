/* SPDX-License-Identifier: Apache-2.0 */
/* tests/tsdb/test_wal.c: the WAL writer, reader, repair and checkpoint against spec tsdb.md 3:
 * fragment bytes of the spec's worked example, page and fragment boundaries, CRC and padding
 * corruption, a torn tail at every offset of the last page, segment rotation, compression,
 * concurrent writers, a SIGKILL crash loop, checkpoints, and a WAL written by Prometheus 2.42
 * (tests/tsdb/testdata/). Random data comes from a fixed-seed xorshift, printed on failure. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "common/str.h"
#include "tsdb/record.h"
#include "tsdb/wal.h"
#include "support_chunks.h"

#define PAGE TSDB_WAL_PAGE_SIZE
#define HDR TSDB_WAL_HEADER_SIZE

/* ---- helpers ------------------------------------------------------------------------------- */

static uint64_t rng_state;
static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static char *mktmp(void)
{
    char *p = strdup("/tmp/mp-wal-test-XXXXXX");
    cr_assert_not_null(mkdtemp(p));
    return p;
}

/* On tmpfs when there is one: the torn-tail loop repairs (and so fsyncs) thousands of times. */
static char *mktmp_fast(void)
{
    char *p = strdup("/dev/shm/mp-wal-test-XXXXXX");
    if (mkdtemp(p))
        return p;
    free(p);
    return mktmp();
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void spit(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

static char *seg_path(const char *dir, int seg)
{
    static char p[4200];
    int k = snprintf(p, sizeof p, "%s/%08d", dir, seg);
    cr_assert(k > 0 && (size_t)k < sizeof p);
    return p;
}

static struct tsdb_wal *open_wal(const char *dir, size_t seg_size, enum tsdb_wal_compression c)
{
    struct tsdb_wal_options o;
    tsdb_wal_options_init(&o);
    o.segment_size = seg_size;
    o.compression = c;
    o.fsync = TSDB_WAL_FSYNC_NONE;
    struct tsdb_wal *w = NULL;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_wal_open(dir, &o, &w, &err), 0, "%s", err.msg);
    return w;
}

static void log1(struct tsdb_wal *w, const void *p, size_t n)
{
    struct mp_str s = {p, n};
    struct mp_err err = {0};
    cr_assert_eq(tsdb_wal_log(w, &s, 1, &err), 0, "%s", err.msg);
}

/* Deterministic record i: length lens[i], content derived from i. */
static void fill(uint8_t *b, size_t n, uint64_t i)
{
    for (size_t k = 0; k < n; k++)
        b[k] = (uint8_t)(i * 131 + k * 7 + (k >> 8));
}

/* Reads every record of dir (checkpoint included); returns count, fills recs if non-NULL. */
struct rec {
    uint8_t *p;
    size_t n;
};

static int read_all(const char *dir, struct rec **out, size_t *n, struct tsdb_wal_pos *bad,
                    struct mp_err *err)
{
    struct tsdb_wal_reader *r = NULL;
    int rc = tsdb_wal_reader_open(dir, &r, err);
    cr_assert_eq(rc, 0, "%s", err->msg);
    size_t cnt = 0, cap = 0;
    struct rec *v = NULL;
    for (;;) {
        const uint8_t *p;
        size_t len;
        rc = tsdb_wal_reader_next(r, &p, &len, err);
        if (rc)
            break;
        if (out) {
            if (cnt == cap) {
                cap = cap ? cap * 2 : 64;
                v = realloc(v, cap * sizeof *v);
            }
            v[cnt].p = malloc(len + 1);
            memcpy(v[cnt].p, p, len);
            v[cnt].n = len;
        }
        cnt++;
    }
    if (bad)
        tsdb_wal_reader_corruption(r, bad);
    tsdb_wal_reader_close(r);
    if (out)
        *out = v;
    *n = cnt;
    return rc == MP_EEOF ? 0 : rc;
}

static void free_recs(struct rec *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].p);
    free(v);
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Walks the fragments of a segment image, writing their type bytes (with flags) into types. */
static size_t frag_types(const uint8_t *b, size_t n, uint8_t *types, size_t cap)
{
    size_t off = 0, k = 0;
    while (off < n) {
        if (b[off] == 0) {
            off = (off / PAGE + 1) * PAGE;
            continue;
        }
        cr_assert(k < cap);
        types[k++] = b[off];
        off += HDR + be16(b + off + 1);
    }
    return k;
}

/* ---- CRC ----------------------------------------------------------------------------------- */

Test(wal, crc32c_check_value_and_paths_agree)
{
    cr_assert_eq(tsdb_crc32c(0, "123456789", 9), 0xE3069283u);
    cr_assert_eq(tsdb_crc32c_portable(0, "123456789", 9), 0xE3069283u);
    cr_assert_eq(tsdb_crc32c(0, "", 0), 0);
    rng_state = 42;
    uint8_t buf[4096];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)rnd();
    for (size_t off = 0; off < 16; off++)
        for (size_t n = 0; n < 300; n += 7) {
            uint32_t a = tsdb_crc32c(0, buf + off, n), b = tsdb_crc32c_portable(0, buf + off, n);
            cr_assert_eq(a, b, "offset %zu length %zu", off, n);
            /* incremental == one shot */
            cr_assert_eq(tsdb_crc32c(tsdb_crc32c(0, buf + off, n / 2), buf + off + n / 2,
                                     n - n / 2),
                         a);
        }
}

/* ---- format -------------------------------------------------------------------------------- */

static const uint8_t series_vec[] = {0x01, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x02, 0x08, '_', '_',
                                     'n',  'a', 'm', 'e', '_', '_', 0x02, 'u', 'p',  0x03, 'j',
                                     'o',  'b', 0x01, 'x'};

Test(wal, spec_worked_example_fragment_bytes)
{
    char *dir = mktmp();
    struct tsdb_wal *w = open_wal(dir, TSDB_WAL_DEFAULT_SEGMENT_SIZE, TSDB_WAL_COMPRESS_NONE);
    log1(w, series_vec, sizeof series_vec);
    /* data is in the file (kernel) right after log, before close */
    size_t n;
    uint8_t *b = slurp(seg_path(dir, 0), &n);
    cr_assert_eq(n, HDR + sizeof series_vec);
    const uint8_t hdr[] = {0x01, 0x00, 0x1c, 0x8a, 0xff, 0x6b, 0xa0};
    cr_assert_eq(memcmp(b, hdr, HDR), 0);
    cr_assert_eq(memcmp(b + HDR, series_vec, sizeof series_vec), 0);
    free(b);
    cr_assert_eq(tsdb_wal_close(w, NULL), 0);
    b = slurp(seg_path(dir, 0), &n);
    cr_assert_eq(n, PAGE, "closed segment is padded to a page");
    for (size_t i = HDR + sizeof series_vec; i < n; i++)
        cr_assert_eq(b[i], 0);
    free(b);
    sc_rmrf(dir);
    free(dir);
}

Test(wal, snappy_compresses_and_flags_every_fragment)
{
    char *dir = mktmp();
    for (int c = TSDB_WAL_COMPRESS_NONE; c <= TSDB_WAL_COMPRESS_ZSTD; c++) {
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/c%d", dir, c);
        struct tsdb_wal *w = open_wal(sub, TSDB_WAL_DEFAULT_SEGMENT_SIZE, c);
        static uint8_t zeros[200000], noise[3000];
        rng_state = 7;
        for (size_t i = 0; i < sizeof noise; i++)
            noise[i] = (uint8_t)rnd();
        memset(zeros, 'a', sizeof zeros);
        log1(w, zeros, 1000);         /* compressible, one page */
        log1(w, noise, sizeof noise); /* incompressible: stored raw */
        log1(w, "", 0);               /* never compressed */
        for (size_t i = 0; i < sizeof zeros; i++)
            zeros[i] = (uint8_t)(i % 251 * (i / 3000)); /* compressible but multi-page */
        log1(w, zeros, sizeof zeros);
        cr_assert_eq(tsdb_wal_close(w, NULL), 0);

        size_t n;
        uint8_t *b = slurp(seg_path(sub, 0), &n);
        uint8_t types[64];
        size_t k = frag_types(b, n, types, 64);
        uint8_t flag = c == TSDB_WAL_COMPRESS_SNAPPY ? 0x08 : c == TSDB_WAL_COMPRESS_ZSTD ? 0x10 : 0;
        cr_assert_eq(types[0], 0x01 | flag, "compression %d: %02x", c, types[0]);
        cr_assert_eq(types[1], 0x01, "incompressible record stored raw");
        cr_assert_eq(types[2], 0x01, "empty record FULL, unflagged");
        if (c == TSDB_WAL_COMPRESS_NONE) {
            cr_assert_eq(k, 3 + 7, "200000 bytes raw take 7 pages");
        } else {
            cr_assert(k >= 4);
            for (size_t i = 3; i < k; i++)
                cr_assert_eq(types[i] & 0x18, flag, "fragment %zu of compression %d", i, c);
        }
        free(b);

        struct rec *v;
        struct mp_err err = {0};
        cr_assert_eq(read_all(sub, &v, &n, NULL, &err), 0, "%s", err.msg);
        cr_assert_eq(n, 4);
        cr_assert_eq(v[0].n, 1000);
        cr_assert_eq(v[1].n, sizeof noise);
        cr_assert_eq(memcmp(v[1].p, noise, sizeof noise), 0);
        cr_assert_eq(v[2].n, 0);
        cr_assert_eq(v[3].n, sizeof zeros);
        cr_assert_eq(memcmp(v[3].p, zeros, sizeof zeros), 0, "compression %d", c);
        free_recs(v, n);
    }
    sc_rmrf(dir);
    free(dir);
}

Test(wal, fragment_boundaries)
{
    char *dir = mktmp();
    struct tsdb_wal *w = open_wal(dir, TSDB_WAL_DEFAULT_SEGMENT_SIZE, TSDB_WAL_COMPRESS_NONE);
    static uint8_t b[5 * PAGE];
    size_t lens[] = {
        PAGE - HDR,         /* fills page 0 exactly: FULL */
        PAGE - HDR + 1,     /* page 1 FIRST, page 2 LAST of 1 byte */
        PAGE - 2 * HDR - 8, /* page 2 rest minus 0: FULL, leaves 7-? bytes */
        0,                  /* empty record */
        3 * PAGE,           /* spans 4 pages: FIRST MIDDLE MIDDLE LAST */
        1,
    };
    size_t nrec = sizeof lens / sizeof lens[0];
    for (size_t i = 0; i < nrec; i++) {
        fill(b, lens[i], i);
        log1(w, b, lens[i]);
    }
    cr_assert_eq(tsdb_wal_close(w, NULL), 0);
    size_t n;
    uint8_t *img = slurp(seg_path(dir, 0), &n);
    cr_assert_eq(n % PAGE, 0);
    /* page 0: one FULL of PAGE-7 */
    cr_assert_eq(img[0], 1);
    cr_assert_eq(be16(img + 1), PAGE - HDR);
    /* page 1: FIRST of PAGE-7, page 2 starts with LAST of 1 byte */
    cr_assert_eq(img[PAGE], 2);
    cr_assert_eq(be16(img + PAGE + 1), PAGE - HDR);
    cr_assert_eq(img[2 * PAGE], 4);
    cr_assert_eq(be16(img + 2 * PAGE + 1), 1);
    /* page 2 then FULL of PAGE-22 at offset 8: ends at PAGE-7, exactly 7 bytes left, so the
     * empty record still fits in page 2 */
    size_t o = 2 * PAGE + HDR + 1;
    cr_assert_eq(img[o], 1);
    cr_assert_eq(be16(img + o + 1), PAGE - 2 * HDR - 8);
    o += HDR + PAGE - 2 * HDR - 8;
    cr_assert_eq(o, 3 * PAGE - HDR);
    cr_assert_eq(img[o], 1);
    cr_assert_eq(be16(img + o + 1), 0);
    cr_assert_eq(be32(img + o + 3), 0, "CRC32C of nothing is 0");
    /* 3 pages spanning: FIRST, MIDDLE, MIDDLE, LAST */
    uint8_t types[32];
    size_t k = frag_types(img, n, types, 32);
    const uint8_t want[] = {1, 2, 4, 1, 1, 2, 3, 3, 4, 1};
    cr_assert_eq(k, sizeof want);
    cr_assert_eq(memcmp(types, want, k), 0);
    free(img);

    struct rec *v;
    struct mp_err err = {0};
    cr_assert_eq(read_all(dir, &v, &n, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(n, nrec);
    for (size_t i = 0; i < nrec; i++) {
        cr_assert_eq(v[i].n, lens[i], "record %zu", i);
        fill(b, lens[i], i);
        cr_assert_eq(memcmp(v[i].p, b, lens[i]), 0, "record %zu", i);
    }
    free_recs(v, n);
    sc_rmrf(dir);
    free(dir);
}

Test(wal, page_with_less_than_header_left_is_padded)
{
    char *dir = mktmp();
    struct tsdb_wal *w = open_wal(dir, TSDB_WAL_DEFAULT_SEGMENT_SIZE, TSDB_WAL_COMPRESS_NONE);
    static uint8_t b[PAGE];
    fill(b, PAGE, 1);
    log1(w, b, PAGE - 2 * HDR - 3 + 3 + 1); /* leaves 6 bytes: padded */
    log1(w, b, 10);
    cr_assert_eq(tsdb_wal_close(w, NULL), 0);
    size_t n;
    uint8_t *img = slurp(seg_path(dir, 0), &n);
    cr_assert_eq(n, 2 * PAGE);
    for (size_t i = PAGE - 6; i < PAGE; i++)
        cr_assert_eq(img[i], 0);
    cr_assert_eq(img[PAGE], 1);
    cr_assert_eq(be16(img + PAGE + 1), 10);
    free(img);
    sc_rmrf(dir);
    free(dir);
}

/* ---- corruption ---------------------------------------------------------------------------- */

/* Writes nrec records of 3000 bytes (two pages for 11..21, record 10 crossing the boundary)
 * and returns the image of segment 0 after close. */
static uint8_t *two_page_image_n(const char *dir, int nrec, size_t *n)
{
    struct tsdb_wal *w = open_wal(dir, TSDB_WAL_DEFAULT_SEGMENT_SIZE, TSDB_WAL_COMPRESS_NONE);
    static uint8_t b[3000];
    for (int i = 0; i < nrec; i++) {
        fill(b, sizeof b, (uint64_t)i);
        log1(w, b, sizeof b);
    }
    cr_assert_eq(tsdb_wal_close(w, NULL), 0);
    return slurp(seg_path(dir, 0), n);
}

static uint8_t *two_page_image(const char *dir, size_t *n)
{
    return two_page_image_n(dir, 20, n);
}

Test(wal, crc_mismatch_reports_segment_and_offset)
{
    char *dir = mktmp();
    size_t n;
    uint8_t *img = two_page_image(dir, &n);
    /* record 3 starts at 3 * 3007; flip one payload byte */
    size_t off = 3 * (3000 + HDR);
    img[off + HDR + 100] ^= 0x40;
    spit(seg_path(dir, 0), img, n);
    struct mp_err err = {0};
    struct tsdb_wal_pos bad;
    size_t cnt;
    cr_assert_eq(read_all(dir, NULL, &cnt, &bad, &err), MP_EPARSE);
    cr_assert_eq(cnt, 3);
    cr_assert_eq(bad.segment, 0);
    cr_assert_eq(bad.checkpoint, -1);
    cr_assert_eq(bad.offset, off);
    char want[64];
    snprintf(want, sizeof want, "segment 00000000 offset %zu: CRC mismatch", off);
    cr_assert(strstr(err.msg, want) != NULL, "%s", err.msg);
    free(img);
    sc_rmrf(dir);
    free(dir);
}

Test(wal, non_zero_padding_and_bad_types_are_corruption)
{
    char *dir = mktmp();
    size_t n;
    uint8_t *img = two_page_image(dir, &n);
    size_t end = 20 * (3000 + HDR) + HDR; /* one FIRST/LAST pair adds a header */
    cr_assert_eq(img[end], 0, "padding starts at %zu", end);
    img[n - 1] = 1;
    spit(seg_path(dir, 0), img, n);
    struct mp_err err = {0};
    struct tsdb_wal_pos bad;
    size_t cnt;
    cr_assert_eq(read_all(dir, NULL, &cnt, &bad, &err), MP_EPARSE);
    cr_assert_eq(cnt, 20);
    cr_assert_eq(bad.offset, n - 1, "%s", err.msg);
    cr_assert(strstr(err.msg, "non-zero byte in padded page") != NULL, "%s", err.msg);

    img[n - 1] = 0;
    img[end] = 5; /* unknown fragment type */
    spit(seg_path(dir, 0), img, n);
    mp_err_clear(&err);
    cr_assert_eq(read_all(dir, NULL, &cnt, &bad, &err), MP_EPARSE);
    cr_assert_eq(bad.offset, end);
    cr_assert(strstr(err.msg, "fragment type 5") != NULL, "%s", err.msg);

    img[end] = 4; /* LAST without FIRST */
    spit(seg_path(dir, 0), img, n);
    mp_err_clear(&err);
    cr_assert_eq(read_all(dir, NULL, &cnt, &bad, &err), MP_EPARSE);
    cr_assert(strstr(err.msg, "unexpected last fragment") != NULL, "%s", err.msg);
    free(img);
    sc_rmrf(dir);
    free(dir);
}

/* Truncates segment 0 to every length within its last page (every byte up to the end of the
 * data, then every 61st into the padding), reads, repairs and checks that exactly the records
 * ending before the cut survive and that a new writer appends after them. */
Test(wal, torn_tail_at_every_offset_of_last_page, .timeout = 300)
{
    char *dir = mktmp_fast();
    size_t n;
    enum { NREC = 12 };
    uint8_t *img = two_page_image_n(dir, NREC, &n);
    cr_assert_eq(n, 2 * PAGE);
    /* record ends */
    size_t ends[NREC], o = 0;
    for (int i = 0; i < NREC; i++) {
        size_t l = 3000;
        while (l) {
            size_t room = PAGE - o % PAGE - HDR;
            size_t part = l < room ? l : room;
            o += HDR + part;
            l -= part;
            if (PAGE - o % PAGE < HDR && o % PAGE)
                o = (o / PAGE + 1) * PAGE;
        }
        ends[i] = o;
    }
    size_t data_end = ends[NREC - 1];
    for (size_t cut = PAGE; cut <= n; cut += (cut < data_end + 8 ? 1 : 61)) {
        spit(seg_path(dir, 0), img, cut);
        unlink(seg_path(dir, 1));
        size_t want = 0;
        while (want < NREC && ends[want] <= cut)
            want++;
        struct mp_err err = {0};
        struct tsdb_wal_pos bad;
        size_t cnt;
        int rc = read_all(dir, NULL, &cnt, &bad, &err);
        cr_assert_eq(cnt, want, "cut %zu: %zu records, want %zu", cut, cnt, want);
        bool clean = want == NREC || cut == ends[want - 1];
        if (clean) {
            cr_assert_eq(rc, 0, "cut %zu: %s", cut, err.msg);
            continue;
        }
        cr_assert_eq(rc, MP_EPARSE, "cut %zu", cut);
        cr_assert_eq(bad.segment, 0);
        mp_err_clear(&err);
        cr_assert_eq(tsdb_wal_repair(dir, &bad, &err), 0, "cut %zu: %s", cut, err.msg);
        struct stat st;
        cr_assert_eq(stat(seg_path(dir, 0), &st), 0);
        cr_assert_eq((size_t)st.st_size % PAGE, 0, "cut %zu: repaired segment padded", cut);
        struct rec *v;
        cr_assert_eq(read_all(dir, &v, &cnt, NULL, &err), 0, "cut %zu: %s", cut, err.msg);
        cr_assert_eq(cnt, want, "cut %zu after repair", cut);
        free_recs(v, cnt);
        if (cut % 97 == 0) { /* a writer continues in segment 1 */
            struct tsdb_wal *w = open_wal(dir, TSDB_WAL_DEFAULT_SEGMENT_SIZE,
                                          TSDB_WAL_COMPRESS_SNAPPY);
            cr_assert_eq(tsdb_wal_segment(w), 1);
            log1(w, "after", 5);
            cr_assert_eq(tsdb_wal_close(w, NULL), 0);
            cr_assert_eq(read_all(dir, &v, &cnt, NULL, &err), 0, "%s", err.msg);
            cr_assert_eq(cnt, want + 1);
            cr_assert(v[want].n == 5 && memcmp(v[want].p, "after", 5) == 0);
            free_recs(v, cnt);
        }
    }
    free(img);
    sc_rmrf(dir);
    free(dir);
}

Test(wal, repair_deletes_later_segments)
{
    char *dir = mktmp();
    struct tsdb_wal *w = open_wal(dir, 2 * PAGE, TSDB_WAL_COMPRESS_NONE);
    static uint8_t b[20000];
    for (int i = 0; i < 12; i++) {
        fill(b, sizeof b, (uint64_t)i);
        log1(w, b, sizeof b);
    }
    int last = tsdb_wal_segment(w);
    cr_assert_eq(tsdb_wal_close(w, NULL), 0);
    cr_assert(last >= 3, "rotated into %d segments", last + 1);
    /* corrupt segment 1 in its second record */
    size_t n;
    uint8_t *img = slurp(seg_path(dir, 1), &n);
    img[20000 + 2 * HDR + 50] ^= 1;
    spit(seg_path(dir, 1), img, n);
    free(img);
    struct mp_err err = {0};
    struct tsdb_wal_pos bad;
    size_t cnt;
    cr_assert_eq(read_all(dir, NULL, &cnt, &bad, &err), MP_EPARSE);
    cr_assert_eq(bad.segment, 1);
    cr_assert_eq(tsdb_wal_repair(dir, &bad, &err), 0, "%s", err.msg);
    int first;
    cr_assert_eq(tsdb_wal_segments(dir, &first, &last, &err), 0);
    cr_assert_eq(first, 0);
    cr_assert_eq(last, 1);
    cr_assert_eq(read_all(dir, NULL, &cnt, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(cnt, 4, "3 records in segment 0 (64 KiB), 1 good one in segment 1");
    sc_rmrf(dir);
    free(dir);
}

Test(wal, checkpoint_corruption_is_not_repaired)
{
    struct tsdb_wal_pos c = {3, 0, 10};
    struct mp_err err = {0};
    cr_assert_eq(tsdb_wal_repair("/nonexistent", &c, &err), MP_EINVAL);
}

/* ---- segments ------------------------------------------------------------------------------ */

Test(wal, rotation_keeps_records_within_segments)
{
    char *dir = mktmp();
    struct tsdb_wal *w = open_wal(dir, 3 * PAGE, TSDB_WAL_COMPRESS_NONE);
    static uint8_t b[200000];
    rng_state = 99;
    size_t lens[300];
    for (int i = 0; i < 300; i++) {
        lens[i] = i == 150 ? sizeof b : rnd() % 9000; /* one record bigger than a segment */
        fill(b, lens[i], (uint64_t)i);
        log1(w, b, lens[i]);
    }
    int s_before = tsdb_wal_segment(w);
    int s_new = -1;
    cr_assert_eq(tsdb_wal_next_segment(w, &s_new, NULL), 0);
    cr_assert_eq(s_new, s_before + 1);
    log1(w, "x", 1);
    struct tsdb_wal_stats st;
    tsdb_wal_stats_get(w, &st);
    cr_assert_eq(st.records, 301);
    cr_assert_eq(st.segments_created, (uint64_t)s_new + 1);
    cr_assert_eq(tsdb_wal_close(w, NULL), 0);

    int first, last;
    cr_assert_eq(tsdb_wal_segments(dir, &first, &last, NULL), 0);
    cr_assert_eq(first, 0);
    cr_assert_eq(last, s_new);
    size_t total = 0, big = 0;
    for (int s = 0; s <= last; s++) {
        /* each segment parses on its own: no record crosses a segment */
        size_t n;
        uint8_t *img = slurp(seg_path(dir, s), &n);
        if (n > 3 * PAGE)
            big++;
        struct tsdb_wal_reader *r;
        cr_assert_eq(tsdb_wal_reader_open_mem(img, n, &r, NULL), 0);
        const uint8_t *p;
        size_t len;
        struct mp_err err = {0};
        int rc;
        while ((rc = tsdb_wal_reader_next(r, &p, &len, &err)) == 0)
            total++;
        cr_assert_eq(rc, MP_EEOF, "segment %d: %s", s, err.msg);
        tsdb_wal_reader_close(r);
        free(img);
    }
    cr_assert_eq(total, 301);
    cr_assert_eq(big, 1, "only the oversized record's segment exceeds the nominal size");

    struct rec *v;
    size_t n;
    struct mp_err err = {0};
    cr_assert_eq(read_all(dir, &v, &n, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 301);
    for (int i = 0; i < 300; i++) {
        cr_assert_eq(v[i].n, lens[i], "record %d", i);
        fill(b, lens[i], (uint64_t)i);
        cr_assert_eq(memcmp(v[i].p, b, lens[i]), 0, "record %d", i);
    }
    free_recs(v, n);

    /* reopening always starts a new segment */
    w = open_wal(dir, 3 * PAGE, TSDB_WAL_COMPRESS_NONE);
    cr_assert_eq(tsdb_wal_segment(w), last + 1);
    cr_assert_eq(tsdb_wal_close(w, NULL), 0);
    sc_rmrf(dir);
    free(dir);
}

Test(wal, options_are_validated)
{
    struct tsdb_wal_options o;
    tsdb_wal_options_init(&o);
    cr_assert_eq(o.segment_size, 128u << 20);
    cr_assert_eq(o.compression, TSDB_WAL_COMPRESS_SNAPPY);
    cr_assert_eq(o.fsync, TSDB_WAL_FSYNC_INTERVAL);
    o.segment_size = PAGE + 1;
    struct tsdb_wal *w = NULL;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_wal_open("/tmp", &o, &w, &err), MP_EINVAL);
    cr_assert_null(w);
    o.segment_size = PAGE;
    o.fsync_interval_ms = 0;
    cr_assert_eq(tsdb_wal_open("/tmp", &o, &w, NULL), MP_EINVAL);
    tsdb_wal_options_init(&o);
    cr_assert_eq(tsdb_wal_open("/nonexistent/dir/wal", &o, &w, &err), MP_EIO);
}

Test(wal, fsync_modes_sync_and_count)
{
    char *dir = mktmp();
    for (int m = TSDB_WAL_FSYNC_NONE; m <= TSDB_WAL_FSYNC_ALWAYS; m++) {
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/m%d", dir, m);
        struct tsdb_wal_options o;
        tsdb_wal_options_init(&o);
        o.fsync = m;
        o.fsync_interval_ms = 20;
        o.segment_size = PAGE;
        struct tsdb_wal *w = NULL;
        cr_assert_eq(tsdb_wal_open(sub, &o, &w, NULL), 0);
        log1(w, "abc", 3);
        struct tsdb_wal_stats st;
        tsdb_wal_stats_get(w, &st);
        cr_assert_eq(st.fsyncs, m == TSDB_WAL_FSYNC_ALWAYS ? 1u : 0u, "mode %d", m);
        if (m == TSDB_WAL_FSYNC_INTERVAL) {
            for (int i = 0; i < 200 && st.fsyncs == 0; i++) {
                usleep(5000);
                tsdb_wal_stats_get(w, &st);
            }
            cr_assert(st.fsyncs >= 1, "background flusher synced");
        }
        cr_assert_eq(tsdb_wal_sync(w, NULL), 0);
        tsdb_wal_stats_get(w, &st);
        cr_assert(st.fsyncs >= 1);
        cr_assert_eq(tsdb_wal_close(w, NULL), 0);
    }
    sc_rmrf(dir);
    free(dir);
}

/* ---- concurrency --------------------------------------------------------------------------- */

struct thr {
    struct tsdb_wal *w;
    int id;
};

static void *writer_thread(void *arg)
{
    struct thr *t = arg;
    for (uint32_t i = 0; i < 2000; i++) {
        uint8_t b[2][600];
        struct mp_str s[2];
        for (int k = 0; k < 2; k++) {
            memset(b[k], 0, sizeof b[k]);
            b[k][0] = (uint8_t)t->id;
            uint32_t seq = i * 2 + (uint32_t)k;
            memcpy(b[k] + 1, &seq, 4);
            s[k] = (struct mp_str){(const char *)b[k], 5 + (seq % 7) * 80};
        }
        if (tsdb_wal_log(t->w, s, 2, NULL) != 0)
            return (void *)1;
    }
    return NULL;
}

Test(wal, concurrent_writers_keep_each_batch_in_order)
{
    char *dir = mktmp();
    struct tsdb_wal_options o;
    tsdb_wal_options_init(&o);
    o.segment_size = 4 * PAGE;
    o.fsync_interval_ms = 5;
    struct tsdb_wal *w = NULL;
    cr_assert_eq(tsdb_wal_open(dir, &o, &w, NULL), 0);
    pthread_t th[4];
    struct thr a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (struct thr){w, i};
        pthread_create(&th[i], NULL, writer_thread, &a[i]);
    }
    for (int i = 0; i < 4; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        cr_assert_null(ret);
    }
    cr_assert_eq(tsdb_wal_close(w, NULL), 0);
    struct rec *v;
    size_t n;
    struct mp_err err = {0};
    cr_assert_eq(read_all(dir, &v, &n, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 4 * 4000);
    uint32_t next[4] = {0};
    for (size_t i = 0; i < n; i++) {
        int id = v[i].p[0];
        uint32_t seq;
        memcpy(&seq, v[i].p + 1, 4);
        cr_assert_eq(seq, next[id], "thread %d record %zu", id, i);
        cr_assert_eq(v[i].n, 5 + (seq % 7) * 80);
        next[id]++;
    }
    free_recs(v, n);
    sc_rmrf(dir);
    free(dir);
}

/* ---- crash --------------------------------------------------------------------------------- */

/* Child: logs batches of 1-3 records (random sizes up to 40000 bytes, so records span pages
 * and segments rotate) tagged (round, seq) and writes the count acknowledged by tsdb_wal_log
 * to the pipe after each call. Never returns. */
static void crash_child(const char *dir, int round, int fd)
{
    struct tsdb_wal_options o;
    tsdb_wal_options_init(&o);
    o.segment_size = 4 * PAGE;
    o.fsync = TSDB_WAL_FSYNC_NONE; /* a process crash must lose nothing even without fsync */
    struct tsdb_wal *w = NULL;
    if (tsdb_wal_open(dir, &o, &w, NULL) != 0)
        _exit(2);
    static uint8_t buf[3][40000];
    uint64_t seed = 1000 + (uint64_t)round;
    for (uint32_t seq = 0;;) {
        struct mp_str s[3];
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        int k = 1 + (int)(seed >> 60) % 3;
        for (int j = 0; j < k; j++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            size_t len = 8 + (size_t)(seed >> 33) % (sizeof buf[0] - 8);
            uint32_t tag[2] = {(uint32_t)round, seq + (uint32_t)j};
            memcpy(buf[j], tag, 8);
            fill(buf[j] + 8, len - 8, seq + (uint32_t)j);
            s[j] = (struct mp_str){(const char *)buf[j], len};
        }
        if (tsdb_wal_log(w, s, (size_t)k, NULL) != 0)
            _exit(3);
        seq += (uint32_t)k;
        if (write(fd, &seq, sizeof seq) != sizeof seq)
            _exit(4);
    }
}

Test(wal, sigkill_loses_no_acknowledged_record, .timeout = 300)
{
    char *dir = mktmp();
    rng_state = 20240601;
    enum { ROUNDS = 20 };
    uint32_t acked[ROUNDS] = {0};
    int repairs = 0;
    for (int round = 0; round < ROUNDS; round++) {
        int p[2];
        cr_assert_eq(pipe(p), 0);
        pid_t pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            crash_child(dir, round, p[1]);
        }
        close(p[1]);
        usleep((useconds_t)(2000 + rnd() % 30000));
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        cr_assert(WIFSIGNALED(status), "seed 20240601 round %d: child exited %d", round,
                  WEXITSTATUS(status));
        uint32_t c;
        while (read(p[0], &c, sizeof c) == sizeof c)
            acked[round] = c;
        close(p[0]);

        struct mp_err err = {0};
        struct tsdb_wal_pos bad;
        struct rec *v;
        size_t n;
        int rc = read_all(dir, &v, &n, &bad, &err);
        if (rc == MP_EPARSE) {
            repairs++;
            free_recs(v, n);
            mp_err_clear(&err);
            cr_assert_eq(tsdb_wal_repair(dir, &bad, &err), 0, "round %d: %s", round, err.msg);
            rc = read_all(dir, &v, &n, NULL, &err);
        }
        cr_assert_eq(rc, 0, "seed 20240601 round %d: %s", round, err.msg);
        /* per round the sequence numbers are 0, 1, 2, ... and reach at least acked[r] */
        uint32_t seen[ROUNDS] = {0};
        for (size_t i = 0; i < n; i++) {
            uint32_t tag[2];
            cr_assert(v[i].n >= 8);
            memcpy(tag, v[i].p, 8);
            cr_assert(tag[0] <= (uint32_t)round);
            cr_assert_eq(tag[1], seen[tag[0]], "round %u record %u out of order", tag[0],
                         tag[1]);
            seen[tag[0]]++;
        }
        for (int r = 0; r <= round; r++)
            cr_assert(seen[r] >= acked[r], "seed 20240601 after round %d: round %d has %u of %u "
                      "acknowledged records", round, r, seen[r], acked[r]);
        free_recs(v, n);
    }
    cr_log_info("crash loop: %d repairs in %d rounds", repairs, ROUNDS);
    sc_rmrf(dir);
    free(dir);
}

/* ---- checkpoint ---------------------------------------------------------------------------- */

static bool keep_even(void *ctx, uint64_t ref)
{
    (void)ctx;
    return ref % 2 == 0;
}

Test(wal, checkpoint_keeps_live_series_and_recent_samples)
{
    char *dir = mktmp();
    struct tsdb_wal *w = open_wal(dir, 2 * PAGE, TSDB_WAL_COMPRESS_SNAPPY);
    struct mp_buf b;
    mp_buf_init(&b, 0);
    for (uint64_t ref = 1; ref <= 10; ref++) {
        char v[16];
        snprintf(v, sizeof v, "%llu", (unsigned long long)ref);
        struct mp_label l[] = {{MP_STR_LIT("__name__"), MP_STR_LIT("m")}, {MP_STR_LIT("i"), mp_str_c(v)}};
        struct tsdb_record_series s = {ref, NULL};
        cr_assert_eq(mp_labels_create(l, 2, &s.labels, NULL), 0);
        mp_buf_reset(&b);
        cr_assert_eq(tsdb_record_series_encode(&s, 1, &b), 0);
        log1(w, b.data, b.len);
        mp_labels_release(s.labels);
    }
    for (int64_t t = 0; t < 100; t++) {
        struct tsdb_record_sample smp[10];
        for (int i = 0; i < 10; i++)
            smp[i] = (struct tsdb_record_sample){(uint64_t)i + 1, t, (double)t};
        mp_buf_reset(&b);
        cr_assert_eq(tsdb_record_samples_encode(smp, 10, &b), 0);
        log1(w, b.data, b.len);
    }
    struct tsdb_record_tombstone ts[] = {{2, 0, 10}, {4, 40, 60}};
    mp_buf_reset(&b);
    cr_assert_eq(tsdb_record_tombstones_encode(ts, 2, &b), 0);
    log1(w, b.data, b.len);
    int cur;
    cr_assert_eq(tsdb_wal_next_segment(w, &cur, NULL), 0);
    log1(w, "\x02", 1); /* a record in the live segment */
    int first, last;
    cr_assert_eq(tsdb_wal_segments(dir, &first, &last, NULL), 0);
    cr_assert(cur >= 1);

    struct tsdb_wal_checkpoint_stats st;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_wal_checkpoint(dir, first, cur - 1, keep_even, NULL, 50, &st, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(st.series_kept, 5);
    cr_assert_eq(st.series_dropped, 5);
    cr_assert_eq(st.samples_kept, 500);
    cr_assert_eq(st.tombstones_kept, 1);
    int ck;
    cr_assert_eq(tsdb_wal_checkpoint_last(dir, &ck, NULL), 0);
    cr_assert_eq(ck, cur - 1);
    cr_assert_eq(tsdb_wal_segments(dir, &first, &last, NULL), 0);
    cr_assert_eq(first, cur, "segments below the checkpoint are gone");

    /* the reader goes through the checkpoint, then the live segment */
    log1(w, "\x02", 1);
    cr_assert_eq(tsdb_wal_close(w, NULL), 0);
    struct tsdb_wal_reader *r;
    cr_assert_eq(tsdb_wal_reader_open(dir, &r, &err), 0, "%s", err.msg);
    struct tsdb_record_decoder d;
    tsdb_record_decoder_init(&d);
    size_t nseries = 0, nsamples = 0, ntomb = 0, nlive = 0;
    const uint8_t *p;
    size_t len;
    int rc;
    while ((rc = tsdb_wal_reader_next(r, &p, &len, &err)) == 0) {
        struct tsdb_wal_pos pos = tsdb_wal_reader_pos(r);
        size_t k;
        if (pos.checkpoint < 0) {
            nlive++;
            continue;
        }
        cr_assert_eq(pos.checkpoint, cur - 1);
        if (p[0] == 1) {
            struct tsdb_record_series *s;
            cr_assert_eq(tsdb_record_series_decode(&d, p, len, &s, &k, NULL), 0);
            for (size_t i = 0; i < k; i++)
                cr_assert_eq(s[i].ref % 2, 0);
            nseries += k;
            tsdb_record_series_release(s, k);
        } else if (p[0] == 2) {
            struct tsdb_record_sample *s;
            cr_assert_eq(tsdb_record_samples_decode(&d, p, len, &s, &k, NULL), 0);
            for (size_t i = 0; i < k; i++)
                cr_assert(s[i].t_ms >= 50);
            nsamples += k;
        } else {
            struct tsdb_record_tombstone *t;
            cr_assert_eq(tsdb_record_tombstones_decode(&d, p, len, &t, &k, NULL), 0);
            cr_assert_eq(t[0].ref, 4);
            ntomb += k;
        }
    }
    cr_assert_eq(rc, MP_EEOF, "%s", err.msg);
    cr_assert_eq(nseries, 5);
    cr_assert_eq(nsamples, 500);
    cr_assert_eq(ntomb, 1);
    cr_assert_eq(nlive, 2);
    tsdb_wal_reader_close(r);
    tsdb_record_decoder_fini(&d);
    mp_buf_fini(&b);
    sc_rmrf(dir);
    free(dir);
}

/* ---- Prometheus 2.42 WAL ------------------------------------------------------------------- */

/* Segments written by Prometheus 2.42 scraping itself for 30 s (tests/tsdb/testdata/prom242_wal.md).
 * Every record must decode, and re-encoding a decoded Series or Samples record must give back
 * Prometheus's exact bytes. */
static void check_prometheus_wal(const char *sub, bool snappy)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", MP_TESTDATA_DIR, sub);
    size_t n;
    uint8_t *img = slurp(seg_path(dir, 0), &n);
    cr_assert_eq(n % PAGE, 0);
    cr_assert_eq(img[0] & 0x08, snappy ? 0x08 : 0, "first fragment's snappy flag");
    free(img);

    struct tsdb_wal_reader *r;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_wal_reader_open(dir, &r, &err), 0, "%s", err.msg);
    struct tsdb_record_decoder d;
    tsdb_record_decoder_init(&d);
    struct mp_buf b;
    mp_buf_init(&b, 0);
    size_t nseries = 0, nsamples = 0, nrec = 0, maxref = 0;
    const uint8_t *p;
    size_t len;
    int rc;
    while ((rc = tsdb_wal_reader_next(r, &p, &len, &err)) == 0) {
        nrec++;
        size_t k;
        mp_buf_reset(&b);
        switch (tsdb_record_type_of(p, len)) {
        case TSDB_REC_SERIES: {
            struct tsdb_record_series *s;
            cr_assert_eq(tsdb_record_series_decode(&d, p, len, &s, &k, &err), 0, "%s", err.msg);
            for (size_t i = 0; i < k; i++) {
                cr_assert(mp_labels_count(s[i].labels) >= 1);
                if (s[i].ref > maxref)
                    maxref = s[i].ref;
            }
            cr_assert_eq(tsdb_record_series_encode(s, k, &b), 0);
            tsdb_record_series_release(s, k);
            nseries += k;
            break;
        }
        case TSDB_REC_SAMPLES: {
            struct tsdb_record_sample *s;
            cr_assert_eq(tsdb_record_samples_decode(&d, p, len, &s, &k, &err), 0, "%s",
                         err.msg);
            for (size_t i = 0; i < k; i++)
                cr_assert(s[i].ref >= 1 && s[i].ref <= maxref, "sample of unknown ref %llu",
                          (unsigned long long)s[i].ref);
            cr_assert_eq(tsdb_record_samples_encode(s, k, &b), 0);
            nsamples += k;
            break;
        }
        default:
            continue; /* metadata, exemplars: not ours to re-encode */
        }
        cr_assert_eq(b.len, len, "record %zu re-encoded to %zu bytes, Prometheus wrote %zu",
                     nrec, b.len, len);
        cr_assert_eq(memcmp(b.data, p, len), 0, "record %zu bytes differ", nrec);
    }
    cr_assert_eq(rc, MP_EEOF, "%s", err.msg);
    cr_assert(nseries > 100, "%zu series", nseries);
    cr_assert(nsamples > 10 * nseries, "%zu samples", nsamples);
    cr_log_info("%s: %zu records, %zu series, %zu samples", sub, nrec, nseries, nsamples);
    mp_buf_fini(&b);
    tsdb_record_decoder_fini(&d);
    tsdb_wal_reader_close(r);
}

Test(wal, reads_prometheus_242_wal_snappy)
{
    check_prometheus_wal("prom242_snappy", true);
}

Test(wal, reads_prometheus_242_wal_uncompressed)
{
    check_prometheus_wal("prom242_raw", false);
}
