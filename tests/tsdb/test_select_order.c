/* SPDX-License-Identifier: Apache-2.0 */
/* tests/tsdb/test_select_order.c: series come out of a select in label-set order, each once,
 * with their own samples, from the head, from a block and from both at once (the head sorts
 * by decoded symbol keys; blocks are in index order; the merge interleaves them). Label sets
 * are random over small pools so that many share prefixes, values are prefixes of each other
 * ("a" < "ab"), and some sets are prefixes of others (fewer labels sort first). Fixed seed. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "common/matcher.h"
#include "tsdb/db.h"
#include "tsdb/tsdb.h"

#define NSERIES 600
#define T0 INT64_C(1700000000000)

static char dir[256];

static void mkdir_tmp(void)
{
    snprintf(dir, sizeof dir, "/tmp/mp_test_select_order_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void rm_tmp(void)
{
    cr_assert_eq(tsdb_remove_all(dir, NULL), 0);
}

TestSuite(select_order, .init = mkdir_tmp, .fini = rm_tmp);

static uint64_t rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005u + 1442695040888963407u;
    return *s >> 33;
}

/* Random label sets (with __name__ "m"), as mp_labels; duplicates possible. */
static struct mp_labels *gen(uint64_t *seed)
{
    static const char *const names[] = {"a", "ab", "b", "le", "pod", "z"};
    static const char *const vals[] = {"a", "ab", "abc", "b", "0.5", "1", "10", "x\x7f"};
    struct mp_label l[7];
    size_t n = 0;
    l[n++] = (struct mp_label){mp_str_c("__name__"), mp_str_c("m")};
    for (size_t i = 0; i < 6; i++) {
        if (rnd(seed) % 3 == 0)
            continue;
        l[n++] = (struct mp_label){mp_str_c(names[i]), mp_str_c(vals[rnd(seed) % 8])};
    }
    struct mp_labels *ls;
    cr_assert_eq(mp_labels_create(l, n, &ls, NULL), 0);
    return ls;
}

static void append(struct tsdb *db, struct mp_labels **ls, size_t n, int64_t t)
{
    struct tsdb_appender *a;
    cr_assert_eq(tsdb_appender_create(db, &a), 0);
    for (size_t i = 0; i < n; i++) {
        struct mp_err err = {0};
        int rc = tsdb_appender_add(a, 0, ls[i], t, (double)mp_labels_hash(ls[i]), NULL, &err);
        cr_assert(rc == 0 || rc == MP_EDUPLICATE, "%s", err.msg);
    }
    cr_assert_eq(tsdb_appender_commit(a, NULL), 0);
}

static int cmp_ls(const void *a, const void *b)
{
    return mp_labels_compare(*(struct mp_labels *const *)a, *(struct mp_labels *const *)b);
}

/* Selects every series over [mint, maxt]: in order, each distinct set once, want[] exactly. */
static void check(struct tsdb *db, struct mp_labels **want, size_t nwant, int64_t mint,
                  int64_t maxt, size_t samples_each)
{
    struct tsdb_querier *q;
    cr_assert_eq(tsdb_querier_open(db, mint, maxt, &q, NULL), 0);
    struct mp_matcher *m;
    cr_assert_eq(mp_matcher_create(MP_MATCH_EQUAL, mp_str_c("__name__"), mp_str_c("m"), &m, NULL),
                 0);
    const struct mp_matcher *ms[] = {m};
    struct tsdb_series_set *set;
    cr_assert_eq(tsdb_querier_select(q, ms, 1, &set, NULL), 0);
    size_t k = 0, nkept = 0;
    struct mp_labels *kept[NSERIES];
    int rc;
    while ((rc = tsdb_series_set_next(set, NULL)) == 0) {
        /* every other series through take: labels stays valid, the reference is ours */
        struct mp_labels *taken = k % 2 ? tsdb_series_set_labels_take(set) : NULL;
        const struct mp_labels *ls = tsdb_series_set_labels(set);
        cr_assert(!taken || taken == ls);
        cr_assert_lt(k, nwant, "more series than appended");
        cr_assert(mp_labels_equal(ls, want[k]), "series %zu out of order", k);
        struct tsdb_sample_iter it;
        tsdb_series_set_iter(set, &it);
        int64_t t;
        double v;
        size_t got = 0;
        while (tsdb_sample_iter_next(&it, &t, &v) == 0) {
            cr_assert_eq(v, (double)mp_labels_hash(ls));
            got++;
        }
        cr_assert_eq(got, samples_each, "series %zu: %zu samples", k, got);
        if (taken)
            kept[nkept++] = taken;
        k++;
    }
    cr_assert_eq(rc, MP_EEOF);
    cr_assert_eq(k, nwant);
    tsdb_series_set_free(set);
    mp_matcher_destroy(m);
    tsdb_querier_close(q);
    /* taken references outlive the set */
    for (size_t i = 0; i < nkept; i++) {
        cr_assert(mp_labels_equal(kept[i], want[2 * i + 1]));
        mp_labels_release(kept[i]);
    }
}

Test(select_order, head_block_and_both_in_label_order)
{
    struct tsdb_options o;
    tsdb_options_init(&o);
    o.dir = dir;
    o.background = false;
    o.wal_fsync = TSDB_WAL_FSYNC_NONE;
    struct tsdb *db;
    cr_assert_eq(tsdb_open(&o, &db, NULL), 0);
    uint64_t seed = 7;
    struct mp_labels *ls[NSERIES];
    for (size_t i = 0; i < NSERIES; i++)
        ls[i] = gen(&seed);
    /* the wanted order: sorted, duplicates dropped */
    struct mp_labels *want[NSERIES];
    memcpy(want, ls, sizeof want);
    qsort(want, NSERIES, sizeof *want, cmp_ls);
    size_t nwant = 0;
    for (size_t i = 0; i < NSERIES; i++)
        if (nwant == 0 || !mp_labels_equal(want[nwant - 1], want[i]))
            want[nwant++] = want[i];
    cr_assert_gt(nwant, 100);
    cr_assert_lt(nwant, NSERIES);

    /* 3 samples in the first 2 h block, 3 in the head after compaction */
    for (int k = 0; k < 3; k++)
        append(db, ls, NSERIES, T0 + k * 60000);
    check(db, want, nwant, T0, T0 + 3 * 60000, 3); /* head only */
    int64_t later = T0 + 4 * INT64_C(3600000);
    for (int k = 0; k < 3; k++)
        append(db, ls, NSERIES, later + k * 60000);
    cr_assert_eq(tsdb_compact(db, NULL), 0);
    size_t nb;
    struct tsdb_block **bl = tsdb_db_blocks(db, &nb);
    for (size_t i = 0; i < nb; i++)
        tsdb_block_release(bl[i]);
    mp_free(bl);
    cr_assert_geq(nb, 1, "compaction wrote no block");
    check(db, want, nwant, T0, T0 + 3 * 60000, 3);          /* block only */
    check(db, want, nwant, later, later + 3 * 60000, 3);    /* head only */
    check(db, want, nwant, T0, later + 3 * 60000, 6);       /* both, merged */
    for (size_t i = 0; i < NSERIES; i++)
        mp_labels_release(ls[i]);
    tsdb_close(db);
}
