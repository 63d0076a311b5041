/* SPDX-License-Identifier: Apache-2.0 */
/* tests/tsdb/test_backfill.c: the block builder (promtool backfill) and tsdb_analyze. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/labels.h"
#include "common/matcher.h"
#include "tsdb/db.h"
#include "tsdb/tsdb.h"

#define H_MS INT64_C(3600000)

static char dir[256];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/mp_test_backfill_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    cr_assert_eq(tsdb_remove_all(dir, NULL), 0);
}

TestSuite(backfill, .init = setup, .fini = teardown);

static struct mp_labels *series(int i)
{
    char v[16];
    snprintf(v, sizeof v, "%d", i);
    struct mp_label l[2] = {{mp_str_c("__name__"), mp_str_c(i % 2 ? "odd" : "even")},
                            {mp_str_c("i"), mp_str_c(v)}};
    struct mp_labels *ls;
    cr_assert_eq(mp_labels_create(l, 2, &ls, NULL), 0);
    return ls;
}

static void read_back(int64_t *n, double *last_v)
{
    struct tsdb_options o;
    tsdb_options_init(&o);
    o.dir = dir;
    o.read_only = true;
    o.background = false;
    struct tsdb *db;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_open(&o, &db, &err), 0, "%s", err.msg);
    struct tsdb_querier *q;
    cr_assert_eq(tsdb_querier_open(db, INT64_MIN, INT64_MAX, &q, &err), 0);
    struct mp_matcher *m;
    cr_assert_eq(mp_matcher_create(MP_MATCH_REGEX, mp_str_c("__name__"), mp_str_c(".+"), &m, NULL), 0);
    struct tsdb_series_set *set;
    cr_assert_eq(tsdb_querier_select(q, (const struct mp_matcher *const *)&m, 1, &set, &err), 0);
    *n = 0;
    while (tsdb_series_set_next(set, &err) == 0) {
        struct tsdb_sample_iter it;
        tsdb_series_set_iter(set, &it);
        int64_t t;
        double v;
        while (tsdb_sample_iter_next(&it, &t, &v) == 0) {
            (*n)++;
            *last_v = v;
        }
    }
    tsdb_series_set_free(set);
    mp_matcher_destroy(m);
    tsdb_querier_close(q);
    tsdb_close(db);
}

Test(backfill, one_window_block_and_meta)
{
    struct tsdb_block_builder *b;
    struct mp_err err = {0};
    int64_t mint = 100 * 2 * H_MS;
    cr_assert_eq(tsdb_block_builder_create(dir, mint, mint + 2 * H_MS, &b, &err), 0, "%s", err.msg);
    /* 12000 samples: three batches */
    for (int i = 0; i < 10; i++) {
        struct mp_labels *ls = series(i);
        for (int k = 0; k < 1200; k++)
            cr_assert_eq(tsdb_block_builder_add(b, ls, mint + 5000 + k * 1000, k + i, &err), 0,
                         "%s", err.msg);
        mp_labels_release(ls);
    }
    struct mp_labels *ls = series(0);
    cr_assert_eq(tsdb_block_builder_add(b, ls, mint - 1, 1, &err), MP_EOUTOFBOUNDS);
    cr_assert_eq(tsdb_block_builder_add(b, ls, mint + 2 * H_MS, 1, NULL), MP_EOUTOFBOUNDS);
    /* older than the committed batches */
    cr_assert_eq(tsdb_block_builder_add(b, ls, mint + 5000, NAN, NULL), MP_EOUTOFORDER);
    mp_labels_release(ls);
    bool written;
    struct tsdb_block_info info;
    cr_assert_eq(tsdb_block_builder_finish(b, &written, &info, &err), 0, "%s", err.msg);
    cr_assert(written);
    tsdb_block_builder_destroy(b);
    cr_assert_eq(info.min_time_ms, mint + 5000);
    cr_assert_eq(info.max_time_ms, mint + 5000 + 1199 * 1000 + 1);
    cr_assert_eq(info.num_series, 10);
    cr_assert_eq(info.num_samples, 12000);
    cr_assert_eq(info.num_chunks, 110); /* as promtool 2.42 cuts them (11 per series) */
    cr_assert_gt(info.size_bytes, 0);
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, info.ulid);
    struct tsdb_block *blk;
    cr_assert_eq(tsdb_block_open(p, &blk, &err), 0, "%s", err.msg);
    cr_assert_eq(blk->meta.compaction.level, 1);
    cr_assert_eq(blk->meta.compaction.nsources, 1);
    cr_assert_eq(tsdb_ulid_cmp(&blk->meta.compaction.sources[0], &blk->meta.ulid), 0);
    cr_assert_eq(blk->size_bytes, info.size_bytes);
    tsdb_block_release(blk);
    int64_t n;
    double last = 0;
    read_back(&n, &last);
    cr_assert_eq(n, 12000);
}

Test(backfill, in_batch_out_of_order_dropped_and_empty_builder)
{
    struct tsdb_block_builder *b;
    cr_assert_eq(tsdb_block_builder_create(dir, 0, 2 * H_MS, &b, NULL), 0);
    struct mp_labels *ls = series(1);
    cr_assert_eq(tsdb_block_builder_add(b, ls, 2000, 1, NULL), 0);
    cr_assert_eq(tsdb_block_builder_add(b, ls, 1000, 2, NULL), 0); /* same batch: dropped */
    cr_assert_eq(tsdb_block_builder_add(b, ls, 2000, 3, NULL), 0); /* duplicate: dropped */
    mp_labels_release(ls);
    bool written;
    struct tsdb_block_info info;
    cr_assert_eq(tsdb_block_builder_finish(b, &written, &info, NULL), 0);
    cr_assert(written);
    cr_assert_eq(info.num_samples, 1);
    cr_assert_eq(tsdb_block_builder_finish(b, &written, &info, NULL), MP_EINVAL);
    tsdb_block_builder_destroy(b);
    int64_t n;
    double last = 0;
    read_back(&n, &last);
    cr_assert_eq(n, 1);
    cr_assert_eq(last, 1);

    cr_assert_eq(tsdb_block_builder_create(dir, 0, 1, &b, NULL), 0);
    cr_assert_eq(tsdb_block_builder_finish(b, &written, &info, NULL), 0);
    cr_assert_not(written);
    tsdb_block_builder_destroy(b);
    cr_assert_eq(tsdb_block_builder_create(dir, 5, 5, &b, NULL), MP_EINVAL);
}

static char *analyze(const char *id, size_t limit, bool extended, int *rc, struct mp_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    *rc = tsdb_analyze(dir, id, limit, extended, f, err);
    fclose(f);
    return buf;
}

Test(backfill, analyze_report)
{
    struct mp_err err = {0};
    int rc;
    free(analyze(NULL, 20, false, &rc, &err));
    cr_assert_eq(rc, MP_ENOTFOUND);
    cr_assert_str_eq(err.msg, "block  not found");

    struct tsdb_block_builder *b;
    cr_assert_eq(tsdb_block_builder_create(dir, 0, 2 * H_MS, &b, NULL), 0);
    for (int i = 0; i < 4; i++) {
        struct mp_labels *ls = series(i);
        /* series 0 covers the whole block [0, 100 s], the others one sample each */
        for (int k = i; k <= (i ? i : 10); k++)
            cr_assert_eq(tsdb_block_builder_add(b, ls, k * 10000, k, NULL), 0);
        mp_labels_release(ls);
    }
    bool written;
    struct tsdb_block_info info;
    cr_assert_eq(tsdb_block_builder_finish(b, &written, &info, NULL), 0);
    tsdb_block_builder_destroy(b);
    char *out = analyze(info.ulid, 2, true, &rc, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    char want_head[256];
    snprintf(want_head, sizeof want_head,
             "Block ID: %s\nDuration: 1m40.001s\nSeries: 4\nLabel names: 2\n"
             "Postings (unique label pairs): 6\nPostings entries (total label pairs): 8\n",
             info.ulid);
    cr_assert(strncmp(out, want_head, strlen(want_head)) == 0, "%s", out);
    /* churn: sum of uncovered ms / block range (100001 ms), truncated */
    cr_assert_not_null(strstr(out, "\nLabel pairs most involved in churning:\n2 __name__=odd\n"
                                   "1 __name__=even\n\n"), "%s", out);
    cr_assert_not_null(strstr(out, "\nLabel names most involved in churning:\n3 __name__\n3 i\n"), "%s", out);
    cr_assert_not_null(strstr(out, "\nMost common label pairs:\n2 __name__=even\n2 __name__=odd\n"), "%s", out);
    cr_assert_not_null(strstr(out, "\nHighest cardinality labels:\n4 i\n2 __name__\n"), "%s", out);
    cr_assert_not_null(strstr(out, "\nLabel names with highest cumulative label value length:\n7 __name__\n4 i\n"), "%s", out);
    cr_assert_not_null(strstr(out, "\nHighest cardinality metric names:\n2 even\n2 odd\n"), "%s", out);
    cr_assert_not_null(strstr(out, "\nCompaction analysis:\n"), "%s", out);
    cr_assert_not_null(strstr(out, "\n     10%: ##########################################"
                                   "##########################################################\n"
                                   "     20%: \n"), "%s", out);
    cr_assert_not_null(strstr(out, "\nChunk statistics:\nChunks: 4\nSamples: 14\n"), "%s", out);
    free(out);
}

Test(backfill, block_table_as_promtool)
{
    struct tsdb_block_info info = {"01M8T6B940JJ8W0FWX3M58MDSW", 1700000000000, 1700000001501,
                                   3, 2, 2, 1536};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    tsdb_block_info_print(f, &info, true, false);
    tsdb_block_info_print(f, &info, false, true);
    fclose(f);
    cr_assert_str_eq(buf,
        "BLOCK ULID                  MIN TIME       MAX TIME       DURATION     NUM SAMPLES  "
        "NUM CHUNKS   NUM SERIES   SIZE\n"
        "01M8T6B940JJ8W0FWX3M58MDSW  1700000000000  1700000001501  1.501s       3            "
        "2            2            1536\n"
        "01M8T6B940JJ8W0FWX3M58MDSW  2023-11-14 22:13:20 +0000 UTC  2023-11-14 22:13:21 +0000 UTC  "
        "1.501s       3            2            2            1KiB512B\n");
    free(buf);
}
