/* SPDX-License-Identifier: Apache-2.0 */
/* tests/tsdb/test_lcache.c: the label-set cache (tsdb/lcache.h) and its use by selects, and the
 * page-drop rule of the db loop for blocks (db.h tsdb_block_drop_pages) and the head's chunk
 * files (head_chunks.h tsdb_head_chunks_drop_pages). A query
 * that reads the same series again gets the set it got before (same pointer) from the head and
 * from a block, with the right labels; compaction-style full reads and selects too large for the
 * cache leave it alone; a set handed out outlives its source (db closed, head gone). Criterion
 * runs each test in its own process, so the process-wide cache starts empty in each. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "common/matcher.h"
#include "tsdb/db.h"
#include "tsdb/lcache.h"
#include "tsdb/tsdb.h"

#define T0 INT64_C(1700000000000)

static char dir[256];

static void mkdir_tmp(void)
{
    snprintf(dir, sizeof dir, "/tmp/mp_test_lcache_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void rm_tmp(void)
{
    cr_assert_eq(tsdb_remove_all(dir, NULL), 0);
}

TestSuite(lcache, .init = mkdir_tmp, .fini = rm_tmp);

static struct mp_labels *mk(const char *name, const char *pod)
{
    struct mp_label l[] = {{mp_str_c("__name__"), mp_str_c(name)},
                           {mp_str_c("namespace"), mp_str_c("app-00")},
                           {mp_str_c("pod"), mp_str_c(pod)}};
    struct mp_labels *ls;
    cr_assert_eq(mp_labels_create(l, 3, &ls, NULL), 0);
    return ls;
}

Test(lcache, put_get_forget)
{
    uint32_t a = tsdb_lcache_owner_new(), b = tsdb_lcache_owner_new();
    cr_assert(a != 0 && b != 0 && a != b);
    _Atomic uint32_t slot = 0;
    uint32_t o = tsdb_lcache_owner_of(&slot);
    cr_assert(o != 0 && o != a && o != b);
    cr_assert_eq(tsdb_lcache_owner_of(&slot), o, "assigned once");

    cr_assert_null(tsdb_lcache_get(a, 7, 0), "empty cache");
    struct mp_labels *ls = mk("m", "p1");
    tsdb_lcache_put(a, 7, ls);
    struct mp_labels *got = tsdb_lcache_get(a, 7, 0);
    cr_assert_eq(got, ls);
    mp_labels_release(got);
    got = tsdb_lcache_get(a, 7, mp_labels_hash(ls));
    cr_assert_eq(got, ls, "matching hash");
    mp_labels_release(got);
    cr_assert_null(tsdb_lcache_get(a, 7, mp_labels_hash(ls) ^ 1), "other hash: a miss");
    cr_assert_null(tsdb_lcache_get(b, 7, 0), "other owner");
    cr_assert_null(tsdb_lcache_get(a, 8, 0), "other ref");

    /* the cache holds its own reference: the caller's can go */
    struct mp_labels *copy = mk("m", "p1");
    mp_labels_release(ls);
    got = tsdb_lcache_get(a, 7, 0);
    cr_assert(got && mp_labels_equal(got, copy));
    mp_labels_release(got);

    /* putting the same key again replaces the entry */
    struct mp_labels *ls2 = mk("m", "p2");
    tsdb_lcache_put(a, 7, ls2);
    got = tsdb_lcache_get(a, 7, 0);
    cr_assert_eq(got, ls2);
    mp_labels_release(got);
    tsdb_lcache_put(b, 7, ls2);
    cr_assert_eq(tsdb_lcache_entries(a), 1);
    cr_assert_eq(tsdb_lcache_entries(0), 2);

    tsdb_lcache_forget(a);
    cr_assert_null(tsdb_lcache_get(a, 7, 0));
    cr_assert_eq(tsdb_lcache_entries(0), 1, "b's entry stays");
    got = tsdb_lcache_get(b, 7, 0);
    cr_assert_eq(got, ls2);
    mp_labels_release(got);
    tsdb_lcache_forget(b);
    cr_assert_eq(tsdb_lcache_entries(0), 0);
    mp_labels_release(ls2);
    mp_labels_release(copy);
}

/* Many keys of one owner: every one that is cached is the set put for it, and at most two
 * entries share a bucket (2-way), so most of a working set of half the capacity stays. */
Test(lcache, many_keys)
{
    uint32_t o = tsdb_lcache_owner_new();
    enum { N = TSDB_LCACHE_MAX_SELECT };
    static struct mp_labels *v[N];
    char pod[32];
    for (size_t i = 0; i < N; i++) {
        snprintf(pod, sizeof pod, "p%zu", i);
        v[i] = mk("m", pod);
        tsdb_lcache_put(o, i + 1, v[i]);
    }
    size_t hits = 0;
    for (size_t i = 0; i < N; i++) {
        struct mp_labels *got = tsdb_lcache_get(o, i + 1, 0);
        if (got) {
            cr_assert_eq(got, v[i], "key %zu", i);
            hits++;
        }
        mp_labels_release(got);
    }
    cr_assert_geq(hits, N * 8 / 10, "%zu of %d cached", hits, N);
    cr_assert_eq(tsdb_lcache_entries(o), hits);
    tsdb_lcache_forget(o);
    for (size_t i = 0; i < N; i++)
        mp_labels_release(v[i]);
}

static struct tsdb *open_db(const char *d, bool read_only, int level)
{
    struct tsdb_options o;
    tsdb_options_init(&o);
    o.dir = d;
    o.background = false;
    o.read_only = read_only;
    o.wal_fsync = TSDB_WAL_FSYNC_NONE;
    o.block_compression_level = level;
    struct tsdb *db;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_open(&o, &db, &err), 0, "%s", err.msg);
    return db;
}

/* n series m{namespace="app-00", pod="p<i>"} with 10 samples each. */
static void fill(struct tsdb *db, const char *name, size_t n)
{
    struct tsdb_appender *a;
    cr_assert_eq(tsdb_appender_create(db, &a), 0);
    char pod[32];
    for (size_t i = 0; i < n; i++) {
        snprintf(pod, sizeof pod, "p%05zu", i);
        struct mp_labels *ls = mk(name, pod);
        for (int k = 0; k < 10; k++)
            cr_assert_eq(tsdb_appender_add(a, 0, ls, T0 + k * 10000, (double)i, NULL, NULL), 0);
        mp_labels_release(ls);
    }
    cr_assert_eq(tsdb_appender_commit(a, NULL), 0);
}

/* Selects name{namespace="app-00"} (or everything with all), keeps a reference to each label
 * set in out[] (n of them), checking the labels against the samples' values. */
static size_t select_keep(struct tsdb *db, const char *name, bool all, struct mp_labels **out,
                          size_t cap)
{
    struct tsdb_querier *q;
    cr_assert_eq(tsdb_querier_open(db, T0, T0 + 100000, &q, NULL), 0);
    struct mp_matcher *m[2];
    cr_assert_eq(
        mp_matcher_create(MP_MATCH_EQUAL, mp_str_c("__name__"), mp_str_c(name), &m[0], NULL), 0);
    cr_assert_eq(
        mp_matcher_create(MP_MATCH_EQUAL, mp_str_c("namespace"), mp_str_c("app-00"), &m[1], NULL),
        0);
    struct tsdb_series_set *set;
    if (all)
        cr_assert_eq(tsdb_querier_select_all(q, &set, NULL), 0);
    else
        cr_assert_eq(tsdb_querier_select(q, (const struct mp_matcher *const *)m, 2, &set, NULL), 0);
    size_t n = 0;
    int rc;
    char pod[32];
    while ((rc = tsdb_series_set_next(set, NULL)) == 0) {
        cr_assert_lt(n, cap);
        struct mp_labels *ls = tsdb_series_set_labels_take(set);
        struct tsdb_sample_iter it;
        tsdb_series_set_iter(set, &it);
        int64_t t;
        double v;
        cr_assert_eq(tsdb_sample_iter_next(&it, &t, &v), 0);
        snprintf(pod, sizeof pod, "p%05zu", (size_t)v);
        struct mp_labels *want = mk(name, pod);
        cr_assert(mp_labels_equal(ls, want), "series %zu", n);
        mp_labels_release(want);
        out[n++] = ls;
    }
    cr_assert_eq(rc, MP_EEOF);
    tsdb_series_set_free(set);
    tsdb_querier_close(q);
    mp_matcher_destroy(m[0]);
    mp_matcher_destroy(m[1]);
    return n;
}

static void release_all(struct mp_labels **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        mp_labels_release(v[i]);
}

/* Two selects of the same series get the same sets; the second builds none. */
static void check_reuse(struct tsdb *db, size_t n)
{
    struct mp_labels *a[64], *b[64];
    cr_assert_eq(select_keep(db, "m", false, a, 64), n);
    uint64_t entries = tsdb_lcache_entries(0);
    cr_assert_geq(entries, n * 8 / 10, "%llu cached", (unsigned long long)entries);
    cr_assert_eq(select_keep(db, "m", false, b, 64), n);
    size_t same = 0;
    for (size_t i = 0; i < n; i++)
        same += a[i] == b[i];
    cr_assert_geq(same, n * 8 / 10, "%zu of %zu sets reused", same, n);
    cr_assert_eq(tsdb_lcache_entries(0), entries, "nothing new cached");
    release_all(a, n);
    release_all(b, n);
}

Test(lcache, head_select_reuses_sets)
{
    struct tsdb *db = open_db(dir, false, 0);
    fill(db, "m", 50);
    check_reuse(db, 50);
    /* full reads (compaction) do not go through the cache */
    tsdb_lcache_forget(UINT32_MAX); /* no-op: an owner nobody has */
    uint64_t before = tsdb_lcache_entries(0);
    struct mp_labels *v[64];
    size_t n = select_keep(db, "m", true, v, 64);
    cr_assert_eq(n, 50);
    cr_assert_eq(tsdb_lcache_entries(0), before);
    release_all(v, n);
    /* sets held by a caller outlive the head */
    struct mp_labels *keep[64];
    n = select_keep(db, "m", false, keep, 64);
    tsdb_close(db);
    cr_assert_eq(tsdb_lcache_entries(0), 0, "the head's entries went with it");
    for (size_t i = 0; i < n; i++) {
        char pod[32];
        snprintf(pod, sizeof pod, "p%05zu", i);
        struct mp_labels *want = mk("m", pod);
        cr_assert(mp_labels_equal(keep[i], want));
        mp_labels_release(want);
    }
    release_all(keep, n);
}

static void block_reuse(int level)
{
    struct tsdb *db = open_db(dir, false, level);
    fill(db, "m", 40);
    char name[64], sdir[512];
    struct mp_err err = {0};
    cr_assert_eq(tsdb_snapshot(db, false, name, &err), 0, "%s", err.msg);
    tsdb_close(db);
    snprintf(sdir, sizeof sdir, "%s/snapshots/%s", dir, name);
    struct tsdb *bdb = open_db(sdir, true, level);
    check_reuse(bdb, 40);
    struct mp_labels *keep[64];
    size_t n = select_keep(bdb, "m", false, keep, 64);
    tsdb_close(bdb);
    cr_assert_eq(tsdb_lcache_entries(0), 0, "the block's entries went with its reader");
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(mp_labels_count(keep[i]), 3);
    release_all(keep, n);
}

Test(lcache, block_v2_select_reuses_sets)
{
    block_reuse(0);
}

Test(lcache, block_compact_select_reuses_sets)
{
    block_reuse(3);
}

/* A select of more series than the cache should hold leaves it alone. */
Test(lcache, large_select_bypasses)
{
    struct tsdb *db = open_db(dir, false, 0);
    fill(db, "big", TSDB_LCACHE_MAX_SELECT + 1);
    fill(db, "m", 5);
    struct tsdb_querier *q;
    cr_assert_eq(tsdb_querier_open(db, T0, T0 + 100000, &q, NULL), 0);
    struct mp_matcher *m;
    cr_assert_eq(mp_matcher_create(MP_MATCH_EQUAL, mp_str_c("__name__"), mp_str_c("big"), &m, NULL),
                 0);
    const struct mp_matcher *ms[] = {m};
    struct tsdb_series_set *set;
    cr_assert_eq(tsdb_querier_select(q, ms, 1, &set, NULL), 0);
    size_t n = 0;
    while (tsdb_series_set_next(set, NULL) == 0)
        n++;
    cr_assert_eq(n, TSDB_LCACHE_MAX_SELECT + 1);
    tsdb_series_set_free(set);
    tsdb_querier_close(q);
    mp_matcher_destroy(m);
    cr_assert_eq(tsdb_lcache_entries(0), 0);
    struct mp_labels *v[8];
    cr_assert_eq(select_keep(db, "m", false, v, 8), 5);
    cr_assert_eq(tsdb_lcache_entries(0), 5, "a small select still caches");
    release_all(v, 5);
    tsdb_close(db);
}

/* ---- mapped block pages: the db loop drops only what background work read ---- */

static long rss_file_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    cr_assert_not_null(f);
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "RssFile: %ld kB", &kib) == 1)
            break;
    fclose(f);
    cr_assert_geq(kib, 0);
    return kib;
}

/* Reads every sample of every series of db (a query: through the locked querier). */
static void read_all(struct tsdb *db)
{
    struct tsdb_querier *q;
    cr_assert_eq(tsdb_querier_open(db, INT64_MIN / 2, INT64_MAX / 2, &q, NULL), 0);
    struct mp_matcher *m;
    cr_assert_eq(mp_matcher_create(MP_MATCH_EQUAL, mp_str_c("__name__"), mp_str_c("m"), &m, NULL),
                 0);
    const struct mp_matcher *ms[] = {m};
    struct tsdb_series_set *set;
    cr_assert_eq(tsdb_querier_select(q, ms, 1, &set, NULL), 0);
    size_t n = 0;
    while (tsdb_series_set_next(set, NULL) == 0) {
        struct tsdb_sample_iter it;
        tsdb_series_set_iter(set, &it);
        int64_t t;
        double v;
        while (tsdb_sample_iter_next(&it, &t, &v) == 0)
            n++;
    }
    cr_assert_eq(n, (size_t)2000 * 720);
    tsdb_series_set_free(set);
    tsdb_querier_close(q);
    mp_matcher_destroy(m);
}

/* 2000 series of 720 random samples each: six full chunks per series go to chunks_head */
static void fill_2000(struct tsdb *db)
{
    struct tsdb_appender *a;
    cr_assert_eq(tsdb_appender_create(db, &a), 0);
    char pod[32];
    uint64_t seed = 1;
    for (size_t i = 0; i < 2000; i++) {
        snprintf(pod, sizeof pod, "p%05zu", i);
        struct mp_labels *ls = mk("m", pod);
        uint64_t ref = 0;
        for (int k = 0; k < 720; k++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            cr_assert_eq(
                tsdb_appender_add(a, ref, ls, T0 + k * 10000, (double)(seed >> 11), &ref, NULL), 0);
        }
        mp_labels_release(ls);
    }
    cr_assert_eq(tsdb_appender_commit(a, NULL), 0);
}

Test(lcache, drop_pages_only_after_background_reads)
{
    struct tsdb *db = open_db(dir, false, 0);
    fill_2000(db);
    char name[64], sdir[512];
    struct mp_err err = {0};
    cr_assert_eq(tsdb_snapshot(db, false, name, &err), 0, "%s", err.msg);
    tsdb_close(db);
    snprintf(sdir, sizeof sdir, "%s/snapshots/%s", dir, name);
    struct tsdb *bdb = open_db(sdir, true, 0);
    size_t nb;
    struct tsdb_block **bs = tsdb_db_blocks(bdb, &nb);
    cr_assert_eq(nb, 1);
    tsdb_block_drop_pages(bs[0]); /* what open mapped */
    long base = rss_file_kib();
    read_all(bdb);
    long mapped = rss_file_kib();
    cr_assert_gt(mapped - base, 4096, "a query maps the block: %ld -> %ld KiB", base, mapped);
    tsdb_block_drop_pages(bs[0]);
    long kept = rss_file_kib();
    cr_assert_geq(kept, mapped - 256, "a query's pages stay: %ld -> %ld KiB", mapped, kept);
    tsdb_block_note_background_read(bs[0]);
    tsdb_block_drop_pages(bs[0]);
    long dropped = rss_file_kib();
    cr_assert_lt(dropped, base + 1024, "after background work they go: %ld -> %ld KiB (base %ld)",
                 kept, dropped, base);
    tsdb_block_release(bs[0]);
    mp_free(bs);
    tsdb_close(bdb);
}

/* The head's m-mapped chunk files follow the same rule (head_chunks.h drop_pages): replay or
 * background work (compaction's head querier) marks them, a query alone does not. */
Test(lcache, head_chunks_drop_pages_only_after_background_reads)
{
    struct tsdb *db = open_db(dir, false, 0);
    fill_2000(db);
    tsdb_close(db);
    db = open_db(dir, false, 0); /* replay: the full chunks are read through the mapping */
    cr_assert_not_null(db->hc);
    tsdb_head_chunks_drop_pages(db->hc); /* what replay mapped */
    long base = rss_file_kib();
    read_all(db);
    long mapped = rss_file_kib();
    cr_assert_gt(mapped - base, 4096, "a query maps chunks_head: %ld -> %ld KiB", base, mapped);
    tsdb_head_chunks_drop_pages(db->hc);
    long kept = rss_file_kib();
    cr_assert_geq(kept, mapped - 256, "a query's pages stay: %ld -> %ld KiB", mapped, kept);
    struct tsdb_querier *q; /* the unlocked head querier compaction uses */
    cr_assert_eq(tsdb_querier_open_sources(db, NULL, 0, true, false, T0, T0 + 1, &q, NULL), 0);
    tsdb_querier_close(q);
    tsdb_head_chunks_drop_pages(db->hc);
    long dropped = rss_file_kib();
    cr_assert_lt(dropped, base + 1024, "after background work they go: %ld -> %ld KiB (base %ld)",
                 kept, dropped, base);
    tsdb_close(db);
}
