/* SPDX-License-Identifier: Apache-2.0 */
/* tests/tsdb/test_db.c: the database end to end: appending, errors, WAL replay, head compaction
 * into blocks, reads across blocks and head, retention, churn, deletion, snapshots, crashes. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/labels.h"
#include "common/matcher.h"
#include "common/metrics.h"
#include "tsdb/db.h"
#include "tsdb/fileutil.h"
#include "tsdb/index.h"
#include "tsdb/tsdb.h"

#define H_MS INT64_C(3600000)

static char dir[256];

static void mkdir_tmp(void)
{
    snprintf(dir, sizeof dir, "/tmp/mp_test_db_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void rm_tmp(void)
{
    cr_assert_eq(tsdb_remove_all(dir, NULL), 0);
}

/* The options every test starts from: the test's dir, no db thread, no fsync. */
static void test_options(struct tsdb_options *o, int64_t retention_ms)
{
    tsdb_options_init(o);
    o->dir = dir;
    o->background = false;
    o->wal_fsync = TSDB_WAL_FSYNC_NONE;
    o->retention_ms = retention_ms;
}

static struct tsdb *open_db(int64_t retention_ms)
{
    struct tsdb_options o;
    test_options(&o, retention_ms);
    struct tsdb *db = NULL;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_open(&o, &db, &err), 0, "%s", err.msg);
    return db;
}

static struct mp_labels *mk(const char *name, const char *k, const char *v)
{
    struct mp_label l[2] = {{mp_str_c("__name__"), mp_str_c(name)}, {mp_str_c(k), mp_str_c(v)}};
    struct mp_labels *ls;
    cr_assert_eq(mp_labels_create(l, 2, &ls, NULL), 0);
    return ls;
}

static struct mp_matcher *eq(const char *n, const char *v)
{
    struct mp_matcher *m;
    cr_assert_eq(mp_matcher_create(MP_MATCH_EQUAL, mp_str_c(n), mp_str_c(v), &m, NULL), 0);
    return m;
}

static struct mp_matcher *re(const char *n, const char *v)
{
    struct mp_matcher *m;
    cr_assert_eq(mp_matcher_create(MP_MATCH_REGEX, mp_str_c(n), mp_str_c(v), &m, NULL), 0);
    return m;
}

/* Appends series i of n (metric "m", label s="i") at t = t0 + k*10s for k in [0, count),
 * value = val(i, t), one commit per timestamp (a scrape). */
static double val(int i, int64_t t)
{
    return (double)i * 1e6 + (double)(t / 10000 % 100000);
}

static void append_range(struct tsdb *db, int nseries, int64_t t0, int count)
{
    struct mp_labels **ls = calloc((size_t)nseries, sizeof *ls);
    uint64_t *refs = calloc((size_t)nseries, sizeof *refs);
    for (int i = 0; i < nseries; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        ls[i] = mk("m", "s", v);
    }
    for (int k = 0; k < count; k++) {
        struct tsdb_appender *a;
        cr_assert_eq(tsdb_appender_create(db, &a), 0);
        for (int i = 0; i < nseries; i++) {
            struct mp_err err = {0};
            int rc = tsdb_appender_add(a, refs[i], ls[i], t0 + k * 10000, val(i, t0 + k * 10000), &refs[i],
                                       &err);
            cr_assert_eq(rc, 0, "add: %s", err.msg);
        }
        struct mp_err err = {0};
        cr_assert_eq(tsdb_appender_commit(a, &err), 0, "%s", err.msg);
    }
    for (int i = 0; i < nseries; i++)
        mp_labels_release(ls[i]);
    free(ls);
    free(refs);
}

/* Counts series and samples of metric m in [mint, maxt]; checks the values follow val(). */
static void count(struct tsdb *db, int64_t mint, int64_t maxt, size_t *series,
                  size_t *samples)
{
    struct tsdb_querier *q;
    cr_assert_eq(tsdb_querier_open(db, mint, maxt, &q, NULL), 0);
    struct mp_matcher *m = eq("__name__", "m");
    const struct mp_matcher *ms[] = {m};
    struct tsdb_series_set *set;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_querier_select(q, ms, 1, &set, &err), 0, "%s", err.msg);
    *series = *samples = 0;
    const struct mp_labels *prev = NULL;
    struct mp_labels *prevc = NULL;
    int rc;
    while ((rc = tsdb_series_set_next(set, &err)) == 0) {
        const struct mp_labels *ls = tsdb_series_set_labels(set);
        if (prev)
            cr_assert_lt(mp_labels_compare(prevc, ls), 0, "series out of order or repeated");
        mp_labels_release(prevc);
        prevc = mp_labels_acquire(ls);
        prev = prevc;
        int i = atoi(mp_labels_get(ls, mp_str_c("s")).ptr);
        struct tsdb_sample_iter it;
        tsdb_series_set_iter(set, &it);
        int64_t t, last = INT64_MIN;
        double v;
        while ((rc = tsdb_sample_iter_next(&it, &t, &v)) == 0) {
            cr_assert_gt(t, last, "samples out of order");
            cr_assert_geq(t, mint);
            cr_assert_leq(t, maxt);
            last = t;
            cr_assert_eq(v, val(i, t), "series %d t %lld: %g", i, (long long)t, v);
            (*samples)++;
        }
        cr_assert_eq(rc, MP_EEOF);
        (*series)++;
    }
    cr_assert_eq(rc, MP_EEOF, "%s", err.msg);
    mp_labels_release(prevc);
    tsdb_series_set_free(set);
    mp_matcher_destroy(m);
    tsdb_querier_close(q);
}

TestSuite(db, .init = mkdir_tmp, .fini = rm_tmp);

Test(db, append_select_replay)
{
    struct tsdb *db = open_db(0);
    int64_t t0 = 1700000000000;
    append_range(db, 50, t0, 200);
    size_t s, n;
    count(db, t0, t0 + 200 * 10000, &s, &n);
    cr_assert_eq(s, 50);
    cr_assert_eq(n, 50 * 200);
    count(db, t0 + 100 * 10000, t0 + 109 * 10000, &s, &n);
    cr_assert_eq(n, 50 * 10);
    struct tsdb_head_stats hs;
    tsdb_head_stats_get(db, &hs);
    cr_assert_eq(hs.num_series, 50);
    cr_assert_eq(hs.min_time_ms, t0);
    cr_assert_eq(hs.max_time_ms, t0 + 199 * 10000);
    tsdb_close(db);

    db = open_db(0);
    count(db, t0, t0 + 200 * 10000, &s, &n);
    cr_assert_eq(s, 50);
    cr_assert_eq(n, 50 * 200, "after replay: %zu", n);
    /* appending continues after the replayed data */
    append_range(db, 50, t0 + 200 * 10000, 10);
    count(db, t0, t0 + 300 * 10000, &s, &n);
    cr_assert_eq(n, 50 * 210);
    tsdb_close(db);
}

Test(db, append_errors_and_rollback)
{
    struct tsdb *db = open_db(0);
    struct mp_labels *ls = mk("m", "s", "0");
    struct tsdb_appender *a;
    uint64_t ref = 0;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_appender_create(db, &a), 0);
    cr_assert_eq(tsdb_appender_add(a, 0, ls, 100000, 1, &ref, &err), 0);
    cr_assert_eq(tsdb_appender_commit(a, &err), 0);

    cr_assert_eq(tsdb_appender_create(db, &a), 0);
    mp_err_clear(&err);
    cr_assert_eq(tsdb_appender_add(a, ref, NULL, 90000, 1, NULL, &err), MP_EOUTOFORDER);
    cr_assert_str_eq(err.msg, "out of order sample");
    mp_err_clear(&err);
    cr_assert_eq(tsdb_appender_add(a, ref, NULL, 100000, 2, NULL, &err), MP_EDUPLICATE);
    cr_assert_str_eq(err.msg, "duplicate sample for timestamp");
    /* the same value again is accepted and dropped */
    cr_assert_eq(tsdb_appender_add(a, ref, NULL, 100000, 1, NULL, &err), 0);
    /* far behind the head: out of bounds (head max - 1 h) */
    cr_assert_eq(tsdb_appender_add(a, ref, NULL, 110000, 5, NULL, &err), 0);
    cr_assert_eq(tsdb_appender_commit(a, &err), 0);

    cr_assert_eq(tsdb_appender_create(db, &a), 0);
    cr_assert_eq(tsdb_appender_add(a, ref, NULL, 110000 + 2 * H_MS, 6, NULL, &err), 0);
    cr_assert_eq(tsdb_appender_commit(a, &err), 0);
    cr_assert_eq(tsdb_appender_create(db, &a), 0);
    mp_err_clear(&err);
    struct mp_labels *other = mk("m", "s", "1");
    cr_assert_eq(tsdb_appender_add(a, 0, other, 120000, 1, NULL, &err), MP_EOUTOFBOUNDS);
    cr_assert_str_eq(err.msg, "out of bounds");
    /* rollback: nothing of the batch is visible */
    cr_assert_eq(tsdb_appender_add(a, 0, other, 110000 + 2 * H_MS, 1, NULL, &err), 0);
    tsdb_appender_rollback(a);
    /* a stale ref without labels */
    cr_assert_eq(tsdb_appender_create(db, &a), 0);
    cr_assert_eq(tsdb_appender_add(a, 987654, NULL, 110000 + 3 * H_MS, 1, NULL, &err),
                 MP_ENOTFOUND);
    tsdb_appender_rollback(a);

    struct tsdb_querier *q;
    cr_assert_eq(tsdb_querier_open(db, 0, INT64_MAX, &q, NULL), 0);
    struct mp_matcher *m = eq("s", "1");
    const struct mp_matcher *ms[] = {m};
    struct tsdb_series_set *set;
    cr_assert_eq(tsdb_querier_select(q, ms, 1, &set, NULL), 0);
    cr_assert_eq(tsdb_series_set_next(set, NULL), MP_EEOF, "rolled back sample visible");
    tsdb_series_set_free(set);
    mp_matcher_destroy(m);
    m = eq("s", "0");
    ms[0] = m;
    cr_assert_eq(tsdb_querier_select(q, ms, 1, &set, NULL), 0);
    cr_assert_eq(tsdb_series_set_next(set, NULL), 0);
    struct tsdb_sample_iter it;
    tsdb_series_set_iter(set, &it);
    int64_t t;
    double v;
    double want[] = {1, 5, 6};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(tsdb_sample_iter_next(&it, &t, &v), 0);
        cr_assert_eq(v, want[i]);
    }
    cr_assert_eq(tsdb_sample_iter_next(&it, &t, &v), MP_EEOF);
    tsdb_series_set_free(set);
    mp_matcher_destroy(m);
    tsdb_querier_close(q);
    mp_labels_release(ls);
    mp_labels_release(other);
    tsdb_close(db);
}

Test(db, compaction_blocks_and_reads_across)
{
    struct tsdb *db = open_db(0);
    int64_t t0 = 1700000000000 - 1700000000000 % (2 * H_MS); /* aligned to 2 h */
    /* 7 h at 10 s: the head becomes compactable twice (blocks [0,2h), [2h,4h)) */
    int count_k = 7 * 360;
    append_range(db, 20, t0, count_k);
    struct mp_err err = {0};
    cr_assert_eq(tsdb_compact(db, &err), 0, "%s", err.msg);
    size_t nb;
    struct tsdb_block **bs = tsdb_db_blocks(db, &nb);
    cr_assert_geq(nb, 2, "blocks: %zu", nb);
    cr_assert_eq(bs[0]->meta.min_time, t0);
    cr_assert_eq(bs[0]->meta.max_time, t0 + 2 * H_MS);
    cr_assert_eq(bs[0]->meta.stats.num_series, 20);
    cr_assert_eq(bs[0]->meta.stats.num_samples, 20 * 720);
    for (size_t i = 0; i < nb; i++)
        tsdb_block_release(bs[i]);
    free(bs);
    cr_assert_geq(tsdb_head_min_time(db->head), t0 + 4 * H_MS);
    size_t s, n;
    count(db, t0, t0 + 8 * H_MS, &s, &n);
    cr_assert_eq(s, 20);
    cr_assert_eq(n, (size_t)20 * count_k, "across head and blocks: %zu", n);
    /* a range that straddles the block boundary */
    count(db, t0 + 2 * H_MS - 50000, t0 + 2 * H_MS + 40000, &s, &n);
    cr_assert_eq(n, 20 * 10);
    tsdb_close(db);

    /* restart: blocks load, the WAL replays only what the head still holds */
    db = open_db(0);
    count(db, t0, t0 + 8 * H_MS, &s, &n);
    cr_assert_eq(n, (size_t)20 * count_k, "after restart: %zu", n);
    struct mp_matcher *m = re("s", "1.*");
    const struct mp_matcher *ms[] = {m};
    struct tsdb_querier *q;
    cr_assert_eq(tsdb_querier_open(db, t0, t0 + 8 * H_MS, &q, NULL), 0);
    struct tsdb_series_set *set;
    cr_assert_eq(tsdb_querier_select(q, ms, 1, &set, NULL), 0);
    size_t k = 0;
    while (tsdb_series_set_next(set, NULL) == 0)
        k++;
    cr_assert_eq(k, 11); /* 1, 10..19 */
    tsdb_series_set_free(set);
    mp_matcher_destroy(m);
    tsdb_querier_close(q);
    tsdb_close(db);
}

Test(db, churn_leaves_head_and_retention_drops_blocks)
{
    struct tsdb *db = open_db(4 * H_MS);
    int64_t t0 = 1700000000000 - 1700000000000 % (2 * H_MS);
    append_range(db, 30, t0, 360); /* series 0..29 for 1 h, then they stop */
    /* a different set of series for the next 12 h */
    struct mp_labels *ls = mk("other", "s", "x");
    uint64_t ref = 0;
    for (int k = 360; k < 13 * 360; k++) {
        struct tsdb_appender *a;
        cr_assert_eq(tsdb_appender_create(db, &a), 0);
        cr_assert_eq(tsdb_appender_add(a, ref, ls, t0 + k * 10000, k, &ref, NULL), 0);
        cr_assert_eq(tsdb_appender_commit(a, NULL), 0);
    }
    mp_labels_release(ls);
    cr_assert_eq(tsdb_head_num_series(db->head), 31);
    cr_assert_eq(tsdb_compact(db, NULL), 0);
    cr_assert_eq(tsdb_head_num_series(db->head), 1, "dead series still in the head");
    size_t nb;
    struct tsdb_block **bs = tsdb_db_blocks(db, &nb);
    /* blocks up to 10 h exist; retention 4 h keeps those within 4 h of the newest */
    for (size_t i = 0; i < nb; i++) {
        cr_assert_lt(bs[nb - 1]->meta.max_time - bs[i]->meta.max_time, 4 * H_MS);
        tsdb_block_release(bs[i]);
    }
    free(bs);
    cr_assert_geq(nb, 1);
    tsdb_close(db);
}

Test(db, delete_series_and_clean_tombstones)
{
    struct tsdb *db = open_db(0);
    int64_t t0 = 1700000000000 - 1700000000000 % (2 * H_MS);
    append_range(db, 4, t0, 5 * 360);
    cr_assert_eq(tsdb_compact(db, NULL), 0);
    struct mp_matcher *m = eq("s", "2");
    const struct mp_matcher *ms[] = {m};
    struct mp_err err = {0};
    /* delete series 2 in [t0 + 1h, t0 + 4h]: crosses the block and the head */
    cr_assert_eq(tsdb_delete_series(db, ms, 1, t0 + H_MS, t0 + 4 * H_MS, &err), 0, "%s", err.msg);
    size_t s, n;
    count(db, t0, t0 + 6 * H_MS, &s, &n);
    size_t deleted = 3 * 360 + 1;
    cr_assert_eq(n, 4 * 5 * 360 - deleted, "%zu", n);
    tsdb_close(db);
    db = open_db(0);
    count(db, t0, t0 + 6 * H_MS, &s, &n);
    cr_assert_eq(n, 4 * 5 * 360 - deleted, "after restart %zu", n);
    cr_assert_eq(tsdb_clean_tombstones(db, &err), 0, "%s", err.msg);
    count(db, t0, t0 + 6 * H_MS, &s, &n);
    cr_assert_eq(n, 4 * 5 * 360 - deleted, "after cleaning %zu", n);
    char name[64];
    cr_assert_eq(tsdb_snapshot(db, false, name, &err), 0, "%s", err.msg);
    char p[512];
    snprintf(p, sizeof p, "%s/snapshots/%s", dir, name);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    mp_matcher_destroy(m);
    tsdb_close(db);
    /* the snapshot is a data directory of its own holding every sample: blocks plus the head */
    struct tsdb_options o;
    test_options(&o, 0);
    o.dir = p;
    o.read_only = true;
    cr_assert_eq(tsdb_open(&o, &db, &err), 0, "%s", err.msg);
    count(db, t0, t0 + 6 * H_MS, &s, &n);
    cr_assert_eq(s, 4);
    cr_assert_eq(n, 4 * 5 * 360 - deleted, "in the snapshot %zu", n);
    tsdb_close(db);
}

/* A child appends and commits, reporting each committed timestamp through a pipe; it is killed
 * with SIGKILL at a varying moment. Every reopen must succeed and hold every reported sample. */
Test(db, crash_keeps_committed_samples, .timeout = 120)
{
    int64_t t0 = 1700000000000;
    int64_t reported_max = -1;
    for (int round = 0; round < 12; round++) {
        int fds[2];
        cr_assert_eq(pipe(fds), 0);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            /* the child must not talk to Criterion (its runner would get messages from a
             * process it does not know): no cr_assert here, exit codes instead */
            close(fds[0]);
            struct tsdb_options o;
            test_options(&o, 0);
            struct tsdb *db = NULL;
            if (tsdb_open(&o, &db, NULL))
                _exit(6);
            struct mp_labels *ls[8];
            uint64_t refs[8] = {0};
            for (int i = 0; i < 8; i++) {
                char v[8];
                snprintf(v, sizeof v, "%d", i);
                struct mp_label l[2] = {{mp_str_c("__name__"), mp_str_c("m")},
                                        {mp_str_c("s"), mp_str_c(v)}};
                if (mp_labels_create(l, 2, &ls[i], NULL))
                    _exit(7);
            }
            int64_t start = tsdb_head_max_time(db->head);
            int64_t k = start == INT64_MIN ? 0 : (start - t0) / 10000 + 1;
            for (int step = 0; step < 100000; step++, k++) {
                struct tsdb_appender *a;
                if (tsdb_appender_create(db, &a))
                    _exit(2);
                for (int i = 0; i < 8; i++)
                    if (tsdb_appender_add(a, refs[i], ls[i], t0 + k * 10000, val(i, t0 + k * 10000),
                                          &refs[i], NULL))
                        _exit(3);
                if (tsdb_appender_commit(a, NULL))
                    _exit(4);
                int64_t t = t0 + k * 10000;
                if (write(fds[1], &t, sizeof t) != sizeof t)
                    _exit(5);
            }
            _exit(0);
        }
        close(fds[1]);
        usleep((useconds_t)(20000 + round * 17000 % 90000));
        kill(pid, SIGKILL);
        int64_t t;
        while (read(fds[0], &t, sizeof t) == sizeof t)
            reported_max = t;
        close(fds[0]);
        int status;
        waitpid(pid, &status, 0);
        cr_assert(WIFSIGNALED(status), "child exited early: %d", WEXITSTATUS(status));
        struct tsdb *db = open_db(0);
        if (reported_max >= 0) {
            size_t s, n;
            count(db, t0, reported_max, &s, &n);
            cr_assert_eq(s, 8);
            cr_assert_eq(n, (size_t)8 * (size_t)((reported_max - t0) / 10000 + 1),
                         "round %d: lost committed samples", round);
        }
        tsdb_close(db);
    }
}

static size_t dir_entries(const char *path)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "find '%s' | wc -l", path);
    FILE *f = popen(cmd, "r");
    size_t n = 0;
    cr_assert_eq(fscanf(f, "%zu", &n), 1);
    pclose(f);
    return n;
}

Test(db, read_only_open_changes_nothing)
{
    struct tsdb *db = open_db(0);
    int64_t t0 = 1700000000000 - 1700000000000 % (2 * H_MS);
    append_range(db, 5, t0, 4 * 360);
    cr_assert_eq(tsdb_compact(db, NULL), 0);
    tsdb_close(db);
    size_t before = dir_entries(dir);
    struct tsdb_options o;
    tsdb_options_init(&o);
    o.dir = dir;
    o.read_only = true;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_open(&o, &db, &err), 0, "%s", err.msg);
    size_t s, n;
    count(db, t0, t0 + 5 * H_MS, &s, &n);
    cr_assert_eq(n, 5 * 4 * 360);
    struct tsdb_appender *a;
    cr_assert_eq(tsdb_appender_create(db, &a), MP_EINVAL);
    cr_assert_eq(tsdb_compact(db, NULL), MP_EINVAL);
    tsdb_close(db);
    cr_assert_eq(dir_entries(dir), before, "read-only open changed the directory");
}

/* Series that end with staleness markers leave the head at the next db loop round, their data
 * still queryable from an ended-series block, which is merged into its window's block once the
 * head has moved past it. */
Test(db, ended_series_leave_the_head_early)
{
    struct tsdb *db = open_db(0);
    int64_t t0 = 1700000000000 - 1700000000000 % (2 * H_MS);
    append_range(db, 40, t0, 60); /* 10 min of series 0..39 */
    struct tsdb_querier *q0;
    /* stale markers for series 0..29 (their target went away) */
    struct tsdb_appender *a;
    cr_assert_eq(tsdb_appender_create(db, &a), 0);
    for (int i = 0; i < 30; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        struct mp_labels *ls = mk("m", "s", v);
        cr_assert_eq(tsdb_appender_add(a, 0, ls, t0 + 600000, tsdb_stale_nan(), NULL, NULL), 0);
        mp_labels_release(ls);
    }
    cr_assert_eq(tsdb_appender_commit(a, NULL), 0);
    /* series 30..39 go on for 20 more minutes (values follow val()) */
    struct mp_labels *ls[10];
    uint64_t refs[10] = {0};
    for (int i = 0; i < 10; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", 30 + i);
        ls[i] = mk("m", "s", v);
    }
    for (int k = 61; k < 180; k++) {
        cr_assert_eq(tsdb_appender_create(db, &a), 0);
        for (int i = 0; i < 10; i++)
            cr_assert_eq(tsdb_appender_add(a, refs[i], ls[i], t0 + k * 10000,
                                           val(30 + i, t0 + k * 10000), &refs[i], NULL), 0);
        cr_assert_eq(tsdb_appender_commit(a, NULL), 0);
    }
    cr_assert_eq(tsdb_head_num_series(db->head), 40);
    cr_assert_eq(tsdb_compact(db, NULL), 0);
    cr_assert_eq(tsdb_head_num_series(db->head), 10, "ended series still in the head");
    size_t nb;
    struct tsdb_block **bs = tsdb_db_blocks(db, &nb);
    cr_assert_eq(nb, 1);
    cr_assert(tsdb_block_is_ended_series(bs[0]));
    cr_assert_eq(bs[0]->meta.stats.num_series, 30);
    tsdb_block_release(bs[0]);
    free(bs);
    /* every sample still there: 30 series x 60 samples (the stale markers are not counted by
     * count(): they are NaN, skip them) */
    cr_assert_eq(tsdb_querier_open(db, t0, t0 + H_MS, &q0, NULL), 0);
    struct mp_matcher *m = eq("__name__", "m");
    const struct mp_matcher *ms[] = {m};
    struct tsdb_series_set *set;
    cr_assert_eq(tsdb_querier_select(q0, ms, 1, &set, NULL), 0);
    size_t series = 0, samples = 0, stale = 0;
    while (tsdb_series_set_next(set, NULL) == 0) {
        series++;
        struct tsdb_sample_iter it;
        tsdb_series_set_iter(set, &it);
        int64_t t;
        double v;
        while (tsdb_sample_iter_next(&it, &t, &v) == 0) {
            if (tsdb_is_stale(v))
                stale++;
            else
                samples++;
        }
    }
    cr_assert_eq(series, 40);
    cr_assert_eq(stale, 30);
    cr_assert_eq(samples, 40 * 60 + 10 * 119);
    tsdb_series_set_free(set);
    mp_matcher_destroy(m);
    tsdb_querier_close(q0);
    /* a restart keeps it right: the ended series come back from the WAL until a checkpoint, the
     * duplicates merge */
    tsdb_close(db);
    db = open_db(0);
    size_t s, n;
    count(db, t0 + 610000, t0 + H_MS, &s, &n);
    cr_assert_eq(s, 10);
    cr_assert_eq(n, 10 * 119);
    /* move the head 4 h on: the window's head block is cut and the ended block merged into it */
    for (int i = 0; i < 10; i++)
        refs[i] = 0;
    for (int k = 180; k < 4 * 360; k += 6) {
        cr_assert_eq(tsdb_appender_create(db, &a), 0);
        for (int i = 0; i < 10; i++)
            cr_assert_eq(tsdb_appender_add(a, refs[i], ls[i], t0 + k * 10000,
                                           val(30 + i, t0 + k * 10000), &refs[i], NULL), 0);
        cr_assert_eq(tsdb_appender_commit(a, NULL), 0);
    }
    cr_assert_eq(tsdb_compact(db, NULL), 0);
    bs = tsdb_db_blocks(db, &nb);
    for (size_t i = 0; i < nb; i++) {
        cr_assert(!tsdb_block_is_ended_series(bs[i]), "ended-series block not merged");
        tsdb_block_release(bs[i]);
    }
    free(bs);
    cr_assert_eq(nb, 1);
    for (int i = 0; i < 10; i++)
        mp_labels_release(ls[i]);
    tsdb_close(db);
}

static uint32_t index_magic(const struct tsdb_block *b)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/index", b->dir);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    uint8_t m[4] = {0};
    cr_assert_eq(fread(m, 1, 4, f), 4);
    fclose(f);
    return (uint32_t)m[0] << 24 | (uint32_t)m[1] << 16 | (uint32_t)m[2] << 8 | m[3];
}

/* Blocks in Prometheus's uncompressed chunk format (compression 0) and meshprom's compressed one
 * are read alike, and a merge of the two writes the configured one. */
Test(db, prometheus_and_compressed_blocks_mix)
{
    struct tsdb_options o;
    test_options(&o, 0);
    o.block_compression_level = 0;
    struct tsdb *db;
    cr_assert_eq(tsdb_open(&o, &db, NULL), 0);
    int64_t t0 = 1700000000000 - 1700000000000 % (2 * H_MS);
    append_range(db, 6, t0, 4 * 360);
    cr_assert_eq(tsdb_compact(db, NULL), 0);
    size_t nb;
    struct tsdb_block **bs = tsdb_db_blocks(db, &nb);
    cr_assert_eq(nb, 1);
    cr_assert_not_null(bs[0]->chunks, "level 0 writes Prometheus segments");
    tsdb_block_release(bs[0]);
    free(bs);
    tsdb_close(db);
    db = open_db(0); /* compressed from now on */
    size_t s, n;
    count(db, t0, t0 + 8 * H_MS, &s, &n);
    cr_assert_eq(n, (size_t)6 * 4 * 360, "Prometheus-format block and head: %zu", n);
    append_range(db, 6, t0 + 4 * H_MS, 3 * 360);
    cr_assert_eq(tsdb_compact(db, NULL), 0);
    count(db, t0, t0 + 8 * H_MS, &s, &n);
    cr_assert_eq(s, 6);
    cr_assert_eq(n, (size_t)6 * 7 * 360);
    /* the old block stays in Prometheus's format, the new one is compressed */
    bs = tsdb_db_blocks(db, &nb);
    cr_assert_eq(nb, 2);
    cr_assert_not_null(bs[0]->chunks);
    cr_assert_not_null(bs[1]->zchunks);
    cr_assert_eq(index_magic(bs[0]), TSDB_INDEX_MAGIC, "level 0: Prometheus's v2 index");
    cr_assert_eq(index_magic(bs[1]), TSDB_INDEX_COMPACT_MAGIC, "compressed: compact index");
    for (size_t i = 0; i < nb; i++)
        tsdb_block_release(bs[i]);
    free(bs);
    /* rewriting the v2 block (tombstones cleaned) gives the configured format, and back */
    struct mp_matcher *m = eq("s", "0");
    const struct mp_matcher *ms[] = {m};
    for (int round = 0; round < 2; round++) {
        struct mp_err err = {0};
        cr_assert_eq(tsdb_delete_series(db, ms, 1, t0 + round * 10000, t0 + round * 10000, &err),
                     0, "%s", err.msg);
        cr_assert_eq(tsdb_clean_tombstones(db, &err), 0, "%s", err.msg);
        count(db, t0, t0 + 8 * H_MS, &s, &n);
        cr_assert_eq(n, (size_t)6 * 7 * 360 - 1 - (size_t)round, "round %d: %zu", round, n);
        bs = tsdb_db_blocks(db, &nb);
        cr_assert_eq(nb, 2);
        for (size_t i = 0; i < nb; i++) {
            /* round 1 rewrites only the first block (the one with the deleted sample) */
            cr_assert_eq(index_magic(bs[i]),
                         round && i == 0 ? TSDB_INDEX_MAGIC : TSDB_INDEX_COMPACT_MAGIC,
                         "round %d block %zu", round, i);
            tsdb_block_release(bs[i]);
        }
        free(bs);
        tsdb_close(db);
        cr_assert_eq(tsdb_open(&o, &db, NULL), 0); /* level 0 again */
    }
    mp_matcher_destroy(m);
    tsdb_close(db);
}

static uint64_t dir_bytes_of(const char *sub)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, sub);
    return tsdb_dir_bytes(p, true);
}

Test(db, size_retention_deletes_oldest_whole_blocks)
{
    struct tsdb_options o;
    test_options(&o, 0);
    o.max_block_ms = 2 * H_MS; /* keep 2 h blocks, as with a short time retention */
    struct tsdb *db;
    cr_assert_eq(tsdb_open(&o, &db, NULL), 0);
    int64_t t0 = 1700000000000 - 1700000000000 % (2 * H_MS);
    append_range(db, 50, t0, 12 * 360);
    cr_assert_eq(tsdb_compact(db, NULL), 0);
    size_t nb;
    struct tsdb_block **bs = tsdb_db_blocks(db, &nb);
    cr_assert_geq(nb, 4);
    uint64_t newest_two = bs[nb - 1]->size_bytes + bs[nb - 2]->size_bytes;
    size_t before = nb;
    int64_t mins[64];
    for (size_t i = 0; i < nb && i < 64; i++)
        mins[i] = bs[i]->meta.min_time;
    for (size_t i = 0; i < nb; i++)
        tsdb_block_release(bs[i]);
    free(bs);
    tsdb_close(db);
    /* a limit that fits the WAL, chunks_head and the two newest blocks (plus a little) */
    o.retention_bytes = dir_bytes_of("wal") + dir_bytes_of("chunks_head") + newest_two + 100;
    cr_assert_eq(tsdb_open(&o, &db, NULL), 0);
    cr_assert_eq(tsdb_compact(db, NULL), 0);
    bs = tsdb_db_blocks(db, &nb);
    cr_assert_eq(nb, 2, "size retention kept %zu of %zu blocks", nb, before);
    cr_assert_eq(bs[0]->meta.min_time, mins[before - nb], "not the oldest blocks went");
    for (size_t i = 0; i < nb; i++)
        tsdb_block_release(bs[i]);
    free(bs);
    tsdb_close(db);
}

/* Appenders, queriers and the db loop's work at once: nothing crashes or deadlocks (ASan build),
 * and every committed sample is there at the end. */
struct conc {
    struct tsdb *db;
    int id;
    int64_t t0;
    int steps;
    _Atomic int *stop;
    size_t accepted; /* a thread that falls an hour behind the other gets out-of-bounds */
};

static void *conc_append(void *arg)
{
    struct conc *c = arg;
    struct mp_labels *ls[20];
    uint64_t refs[20] = {0};
    for (int i = 0; i < 20; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", c->id * 100 + i);
        ls[i] = mk("m", "s", v);
    }
    for (int k = 0; k < c->steps; k++) {
        struct tsdb_appender *a;
        if (tsdb_appender_create(c->db, &a))
            abort();
        for (int i = 0; i < 20; i++) {
            int64_t t = c->t0 + (int64_t)k * 10000;
            int rc = tsdb_appender_add(a, refs[i], ls[i], t, val(c->id * 100 + i, t), &refs[i],
                                       NULL);
            if (rc == 0)
                c->accepted++;
            else if (rc != MP_EOUTOFBOUNDS)
                abort();
        }
        if (tsdb_appender_commit(a, NULL))
            abort();
    }
    for (int i = 0; i < 20; i++)
        mp_labels_release(ls[i]);
    return NULL;
}

static void *conc_query(void *arg)
{
    struct conc *c = arg;
    struct mp_matcher *m = re("s", "1.*");
    const struct mp_matcher *ms[] = {m};
    for (int round = 0; round < 2000 && !atomic_load(c->stop); round++) {
        struct tsdb_querier *q;
        if (tsdb_querier_open(c->db, c->t0, c->t0 + 24 * H_MS, &q, NULL))
            abort();
        struct tsdb_series_set *set;
        if (tsdb_querier_select(q, ms, 1, &set, NULL))
            abort();
        while (tsdb_series_set_next(set, NULL) == 0) {
            struct tsdb_sample_iter it;
            tsdb_series_set_iter(set, &it);
            int64_t t, last = INT64_MIN;
            double v;
            while (tsdb_sample_iter_next(&it, &t, &v) == 0) {
                if (t <= last)
                    abort();
                last = t;
            }
        }
        tsdb_series_set_free(set);
        tsdb_querier_close(q);
    }
    mp_matcher_destroy(m);
    return NULL;
}

Test(db, concurrent_appenders_queriers_and_compaction, .timeout = 120)
{
    struct tsdb *db = open_db(0);
    int64_t t0 = 1700000000000 - 1700000000000 % (2 * H_MS);
    _Atomic int stop = 0;
    struct conc c[3] = {{db, 1, t0, 8 * 360, &stop, 0}, {db, 2, t0, 8 * 360, &stop, 0},
                        {db, 0, t0, 0, &stop, 0}};
    pthread_t th[3];
    cr_assert_eq(pthread_create(&th[0], NULL, conc_append, &c[0]), 0);
    cr_assert_eq(pthread_create(&th[1], NULL, conc_append, &c[1]), 0);
    cr_assert_eq(pthread_create(&th[2], NULL, conc_query, &c[2]), 0);
    for (int i = 0; i < 200; i++) {
        cr_assert_eq(tsdb_compact(db, NULL), 0);
        usleep(2000);
    }
    pthread_join(th[0], NULL);
    pthread_join(th[1], NULL);
    atomic_store(&stop, 1);
    pthread_join(th[2], NULL);
    cr_assert_eq(tsdb_compact(db, NULL), 0);
    size_t s, n;
    count(db, t0, t0 + 9 * H_MS, &s, &n);
    cr_assert_eq(s, 40);
    cr_assert_eq(n, c[0].accepted + c[1].accepted, "%zu samples, %zu accepted", n,
                 c[0].accepted + c[1].accepted);
    cr_assert_gt(c[0].accepted + c[1].accepted, (size_t)20 * 8 * 360); /* one thread at least */
    tsdb_close(db);
}

/* Random operations against a model: appends (in order per series, some series stopping with a
 * staleness marker), db loop rounds, deletions, tombstone cleaning and restarts, with selects
 * over random ranges compared sample by sample with what the model says must be there. */
#define M_SERIES 12
#define M_MAX 6000

struct model_series {
    int64_t t[M_MAX];
    double v[M_MAX];
    bool gone[M_MAX]; /* deleted */
    int n;
};

static void model_check(struct tsdb *db, const struct model_series *ms, int64_t mint, int64_t maxt)
{
    struct tsdb_querier *q;
    cr_assert_eq(tsdb_querier_open(db, mint, maxt, &q, NULL), 0);
    struct mp_matcher *m = eq("__name__", "m");
    const struct mp_matcher *mv[] = {m};
    struct tsdb_series_set *set;
    cr_assert_eq(tsdb_querier_select(q, mv, 1, &set, NULL), 0);
    bool seen[M_SERIES] = {0};
    while (tsdb_series_set_next(set, NULL) == 0) {
        int i = atoi(mp_labels_get(tsdb_series_set_labels(set), mp_str_c("s")).ptr);
        cr_assert(i >= 0 && i < M_SERIES && !seen[i]);
        seen[i] = true;
        const struct model_series *x = &ms[i];
        int k = 0;
        struct tsdb_sample_iter it;
        tsdb_series_set_iter(set, &it);
        int64_t t;
        double v;
        while (tsdb_sample_iter_next(&it, &t, &v) == 0) {
            while (k < x->n && (x->t[k] < mint || x->gone[k]))
                k++;
            cr_assert_lt(k, x->n, "series %d: extra sample at %lld", i, (long long)t);
            cr_assert_eq(t, x->t[k], "series %d: sample at %lld, model %lld", i, (long long)t,
                         (long long)x->t[k]);
            cr_assert_eq(tsdb_f64_bits(v), tsdb_f64_bits(x->v[k]), "series %d t %lld", i,
                         (long long)t);
            k++;
        }
        while (k < x->n && (x->t[k] < mint || x->gone[k]))
            k++;
        cr_assert(k >= x->n || x->t[k] > maxt, "series %d: missing sample at %lld", i,
                  (long long)x->t[k]);
    }
    for (int i = 0; i < M_SERIES; i++) {
        if (seen[i])
            continue;
        for (int k = 0; k < ms[i].n; k++)
            cr_assert(ms[i].gone[k] || ms[i].t[k] < mint || ms[i].t[k] > maxt,
                      "series %d missing entirely (sample at %lld)", i, (long long)ms[i].t[k]);
    }
    tsdb_series_set_free(set);
    mp_matcher_destroy(m);
    tsdb_querier_close(q);
}

static void random_ops(uint64_t seed);

Test(db, random_operations_against_a_model, .timeout = 240)
{
    for (uint64_t seed = 1; seed <= 10; seed++) { /* 40 seeds pass too (16 s) */
        random_ops(seed * 20261202);
        rm_tmp();
        mkdir_tmp();
    }
}

static void random_ops(uint64_t seed)
{
    static struct model_series ms[M_SERIES];
    memset(ms, 0, sizeof ms);
    uint64_t rng = seed;
#define RND() (rng = rng * 6364136223846793005u + 1442695040888963407u, rng >> 33)
    struct tsdb *db = open_db(0);
    int64_t t0 = 1700000000000 - 1700000000000 % (2 * H_MS);
    int64_t now = t0;
    struct mp_labels *ls[M_SERIES];
    for (int i = 0; i < M_SERIES; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        ls[i] = mk("m", "s", v);
    }
    for (int step = 0; step < 400; step++) {
        unsigned op = (unsigned)(RND() % 100);
        if (op < 80) {
            /* a scrape round of 5 min for every live series */
            for (int k = 0; k < 30; k++, now += 10000) {
                struct tsdb_appender *a;
                cr_assert_eq(tsdb_appender_create(db, &a), 0);
                for (int i = 0; i < M_SERIES; i++) {
                    struct model_series *x = &ms[i];
                    if (x->n >= M_MAX - 1 || (i % 4 == 3 && now > t0 + 5 * H_MS))
                        continue; /* every 4th series ends after 5 h */
                    double v = (RND() % 3 == 0) ? (double)(RND() % 1000) : (double)x->n;
                    cr_assert_eq(tsdb_appender_add(a, 0, ls[i], now, v, NULL, NULL), 0);
                    x->t[x->n] = now;
                    x->v[x->n] = v;
                    x->n++;
                }
                cr_assert_eq(tsdb_appender_commit(a, NULL), 0);
            }
            if (now > t0 + 5 * H_MS && now <= t0 + 5 * H_MS + 300000) {
                /* the ended series get their staleness marker */
                struct tsdb_appender *a;
                cr_assert_eq(tsdb_appender_create(db, &a), 0);
                for (int i = 3; i < M_SERIES; i += 4) {
                    struct model_series *x = &ms[i];
                    cr_assert_eq(tsdb_appender_add(a, 0, ls[i], now, tsdb_stale_nan(), NULL,
                                                   NULL), 0);
                    x->t[x->n] = now;
                    x->v[x->n] = tsdb_stale_nan();
                    x->n++;
                }
                cr_assert_eq(tsdb_appender_commit(a, NULL), 0);
                now += 10000;
            }
        } else if (op < 88) {
            cr_assert_eq(tsdb_compact(db, NULL), 0);
        } else if (op < 93) {
            int i = (int)(RND() % M_SERIES);
            int64_t a = t0 + (int64_t)(RND() % (uint64_t)(now - t0 + 1));
            int64_t b = a + (int64_t)(RND() % 3600000);
            /* Tombstones also hide samples appended later inside their range (Prometheus applies
             * them at read time); the model keeps deletions in the past. */
            if (b >= now)
                b = now - 1;
            char v[16];
            snprintf(v, sizeof v, "%d", i);
            struct mp_matcher *m = eq("s", v);
            const struct mp_matcher *mv[] = {m};
            cr_assert_eq(tsdb_delete_series(db, mv, 1, a, b, NULL), 0);
            mp_matcher_destroy(m);
            for (int k = 0; k < ms[i].n; k++)
                if (ms[i].t[k] >= a && ms[i].t[k] <= b)
                    ms[i].gone[k] = true;
        } else if (op < 96) {
            cr_assert_eq(tsdb_clean_tombstones(db, NULL), 0);
        } else {
            tsdb_close(db);
            db = open_db(0);
        }
        if (step % 10 == 9) {
            int64_t a = t0 + (int64_t)(RND() % (uint64_t)(now - t0 + 1));
            int64_t b = a + (int64_t)(RND() % (4 * 3600000));
            model_check(db, ms, a, b);
            model_check(db, ms, t0, now);
        }
    }
    model_check(db, ms, t0, now);
    for (int i = 0; i < M_SERIES; i++)
        mp_labels_release(ls[i]);
    tsdb_close(db);
#undef RND
}

Test(db, sample_iterator_seek)
{
    struct tsdb *db = open_db(0);
    int64_t t0 = 1700000000000 - 1700000000000 % (2 * H_MS);
    append_range(db, 1, t0, 5 * 360); /* blocks and head both hold some */
    cr_assert_eq(tsdb_compact(db, NULL), 0);
    struct tsdb_querier *q;
    cr_assert_eq(tsdb_querier_open(db, t0 + 100000, t0 + 4 * H_MS, &q, NULL), 0);
    struct mp_matcher *m = eq("s", "0");
    const struct mp_matcher *ms[] = {m};
    struct tsdb_series_set *set;
    cr_assert_eq(tsdb_querier_select(q, ms, 1, &set, NULL), 0);
    cr_assert_eq(tsdb_series_set_next(set, NULL), 0);
    struct tsdb_sample_iter it;
    tsdb_series_set_iter(set, &it);
    int64_t t;
    double v;
    /* before the range: the first sample in range */
    cr_assert_eq(tsdb_sample_iter_seek(&it, t0, &t, &v), 0);
    cr_assert_eq(t, t0 + 100000);
    /* between samples: the next one; then the current one again when seeking back */
    cr_assert_eq(tsdb_sample_iter_seek(&it, t0 + 2 * H_MS + 5, &t, &v), 0);
    cr_assert_eq(t, t0 + 2 * H_MS + 10000);
    cr_assert_eq(v, val(0, t));
    cr_assert_eq(tsdb_sample_iter_seek(&it, t0, &t, &v), 0);
    cr_assert_eq(t, t0 + 2 * H_MS + 10000);
    cr_assert_eq(tsdb_sample_iter_next(&it, &t, &v), 0);
    cr_assert_eq(t, t0 + 2 * H_MS + 20000);
    /* past the querier's range */
    cr_assert_eq(tsdb_sample_iter_seek(&it, t0 + 4 * H_MS + 1, &t, &v), MP_EEOF);
    cr_assert_eq(tsdb_sample_iter_next(&it, &t, &v), MP_EEOF);
    tsdb_series_set_free(set);
    mp_matcher_destroy(m);
    tsdb_querier_close(q);
    tsdb_close(db);
}

/* The self-metrics show the db's state under Prometheus's names. */
static double metric(struct mp_metrics_registry *r, const char *name)
{
    struct mp_buf b;
    mp_buf_init(&b, 0);
    cr_assert_eq(mp_metrics_render(r, &b), 0);
    char key[200];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(b.data, key);
    cr_assert_not_null(p, "%s not rendered", name);
    double v = strtod(p + strlen(key), NULL);
    mp_buf_fini(&b);
    return v;
}

Test(db, self_metrics)
{
    struct mp_metrics_registry *r;
    cr_assert_eq(mp_metrics_registry_create(&r), 0);
    struct tsdb_options o;
    test_options(&o, 0);
    o.metrics = r;
    struct tsdb *db;
    cr_assert_eq(tsdb_open(&o, &db, NULL), 0);
    int64_t t0 = 1700000000000 - 1700000000000 % (2 * H_MS);
    append_range(db, 7, t0, 4 * 360);
    struct mp_labels *ls = mk("m", "s", "0");
    struct tsdb_appender *a;
    cr_assert_eq(tsdb_appender_create(db, &a), 0);
    cr_assert_eq(tsdb_appender_add(a, 0, ls, t0, 1, NULL, NULL), MP_EOUTOFBOUNDS);
    cr_assert_eq(tsdb_appender_add(a, 0, ls, t0 + 4 * H_MS - 20000, 1, NULL, NULL),
                 MP_EOUTOFORDER);
    tsdb_appender_rollback(a);
    mp_labels_release(ls);
    cr_assert_eq(metric(r, "prometheus_tsdb_head_series"), 7);
    cr_assert_eq(metric(r, "prometheus_tsdb_head_samples_appended_total"), 7 * 4 * 360);
    cr_assert_eq(metric(r, "prometheus_tsdb_out_of_order_samples_total"), 1);
    cr_assert_eq(metric(r, "prometheus_tsdb_out_of_bound_samples_total"), 1);
    cr_assert_eq(metric(r, "prometheus_tsdb_head_series_created_total"), 7);
    cr_assert_eq(metric(r, "prometheus_tsdb_head_min_time"), (double)t0);
    cr_assert_eq(metric(r, "prometheus_tsdb_compactions_total"), 0);
    cr_assert_gt(metric(r, "meshprom_tsdb_wal_records_total"), 0);
    cr_assert_eq(tsdb_compact(db, NULL), 0);
    cr_assert_eq(metric(r, "prometheus_tsdb_compactions_total"), 1);
    cr_assert_eq(metric(r, "prometheus_tsdb_blocks_loaded"), 1);
    cr_assert_gt(metric(r, "prometheus_tsdb_storage_blocks_bytes"), 0);
    cr_assert_eq(metric(r, "prometheus_tsdb_head_truncations_total"), 1);
    cr_assert_eq(metric(r, "prometheus_tsdb_head_min_time"), (double)(t0 + 2 * H_MS));
    cr_assert_eq(metric(r, "prometheus_tsdb_lowest_timestamp"), (double)t0);
    cr_assert_eq(metric(r, "prometheus_tsdb_checkpoint_creations_total"), 1);
    tsdb_close(db);
    /* after close the callbacks read nothing (the registry outlives the db) */
    cr_assert_eq(metric(r, "prometheus_tsdb_head_series"), 0);
    mp_metrics_registry_destroy(r);
}

/* tsdb_appender_add_refs: the same samples as one add each, with per-sample statuses for
 * unknown refs (0, stale), out-of-order and duplicate samples; runs of refs across stripes
 * (200 series: several runs of 32) and one batch longer than a lock hold. */
Test(db, add_refs_matches_single_adds)
{
    struct tsdb *db = open_db(0);
    int64_t t0 = 1700000000000 - 1700000000000 % (2 * H_MS);
    enum { N = 200 };
    struct mp_labels *ls[N];
    uint64_t refs[N + 2];
    for (int i = 0; i < N; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        ls[i] = mk("m", "s", v);
    }
    struct tsdb_appender *a;
    cr_assert_eq(tsdb_appender_create(db, &a), 0);
    for (int i = 0; i < N; i++)
        cr_assert_eq(tsdb_appender_add(a, 0, ls[i], t0, val(i, t0), &refs[i], NULL), 0);
    cr_assert_eq(tsdb_appender_commit(a, NULL), 0);
    /* series 5 gets t0 + 20 s, series 6 t0 + 10 s with another value, before the batch */
    cr_assert_eq(tsdb_appender_create(db, &a), 0);
    cr_assert_eq(tsdb_appender_add(a, refs[5], NULL, t0 + 20000, val(5, t0 + 20000), NULL, NULL),
                 0);
    cr_assert_eq(tsdb_appender_add(a, refs[6], NULL, t0 + 10000, -1, NULL, NULL), 0);
    cr_assert_eq(tsdb_appender_commit(a, NULL), 0);
    refs[N] = 0;
    refs[N + 1] = refs[N - 1] + 1000; /* never created */
    double v[N + 2];
    for (int k = 1; k <= 3; k++) {
        int64_t t = t0 + k * 10000;
        for (int i = 0; i < N + 2; i++)
            v[i] = i < N ? val(i, t) : 0;
        int st[N + 2];
        struct mp_err err = {0};
        cr_assert_eq(tsdb_appender_create(db, &a), 0);
        int rc = tsdb_appender_add_refs(a, refs, v, N + 2, t, st, &err);
        cr_assert_eq(rc, k == 1 ? MP_EOUTOFORDER : MP_ENOTFOUND, "round %d: %d %s", k, rc,
                     err.msg);
        for (int i = 0; i < N + 2; i++) {
            int want = i >= N                  ? MP_ENOTFOUND
                       : i == 5 && k == 1     ? MP_EOUTOFORDER
                       : i == 6 && k == 1     ? MP_EDUPLICATE
                                              : 0;
            cr_assert_eq(st[i], want, "round %d sample %d: %d", k, i, st[i]);
        }
        cr_assert_eq(tsdb_appender_commit(a, NULL), 0);
    }
    /* series 5 has t0, t0 + 20 s (the same value again is accepted), t0 + 30 s; series 6 has
     * t0 + 10 s = -1 (not val), so leave it out of the count */
    size_t s, n;
    struct mp_matcher *m = eq("s", "6");
    const struct mp_matcher *ms[] = {m};
    cr_assert_eq(tsdb_delete_series(db, ms, 1, t0, t0 + H_MS, NULL), 0);
    mp_matcher_destroy(m);
    count(db, t0, t0 + H_MS, &s, &n);
    cr_assert_eq(s, N - 1);
    cr_assert_eq(n, (size_t)(N - 2) * 4 + 3, "%zu samples", n);
    cr_assert_eq(tsdb_appender_create(db, &a), 0);
    int st0;
    cr_assert_eq(tsdb_appender_add_refs(a, refs, v, 0, t0, &st0, NULL), 0);
    cr_assert_eq(tsdb_appender_add_refs(a, refs, v, 1, t0 - 3 * H_MS, &st0, NULL),
                 MP_EOUTOFBOUNDS);
    cr_assert_eq(st0, MP_EOUTOFBOUNDS);
    tsdb_appender_rollback(a);
    for (int i = 0; i < N; i++)
        mp_labels_release(ls[i]);
    tsdb_close(db);
}

/* A series that ended (staleness marker) and left the head keeps its order check when it comes
 * back: a sample before its last persisted one is out of order, one at the same time with
 * another value a duplicate, as in Prometheus, whose head would still hold the series; a later
 * one is appended and every sample reads back once. */
Test(db, ended_series_coming_back_keep_their_order)
{
    struct tsdb *db = open_db(0);
    int64_t t0 = 1700000000000 - 1700000000000 % (2 * H_MS);
    append_range(db, 20, t0, 60); /* 10 min of series 0..19 */
    struct tsdb_appender *a;
    struct mp_labels *ls[20];
    uint64_t refs[20] = {0};
    for (int i = 0; i < 20; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        ls[i] = mk("m", "s", v);
    }
    int64_t stale_t = t0 + 600000;
    cr_assert_eq(tsdb_appender_create(db, &a), 0);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(tsdb_appender_add(a, 0, ls[i], stale_t, tsdb_stale_nan(), NULL, NULL), 0);
    cr_assert_eq(tsdb_appender_commit(a, NULL), 0);
    for (int k = 61; k < 120; k++) { /* series 10..19 go on 10 more minutes */
        cr_assert_eq(tsdb_appender_create(db, &a), 0);
        for (int i = 10; i < 20; i++)
            cr_assert_eq(tsdb_appender_add(a, refs[i], ls[i], t0 + k * 10000,
                                           val(i, t0 + k * 10000), &refs[i], NULL),
                         0);
        cr_assert_eq(tsdb_appender_commit(a, NULL), 0);
    }
    cr_assert_eq(tsdb_compact(db, NULL), 0);
    cr_assert_eq(tsdb_head_num_series(db->head), 10, "ended series still in the head");
    struct mp_err err = {0};
    cr_assert_eq(tsdb_appender_create(db, &a), 0);
    cr_assert_eq(tsdb_appender_add(a, 0, ls[0], stale_t - 5000, val(0, stale_t - 5000), NULL,
                                   &err),
                 MP_EOUTOFORDER, "%s", err.msg);
    cr_assert_eq(tsdb_appender_add(a, 0, ls[1], stale_t, 1.0, NULL, NULL), MP_EDUPLICATE);
    cr_assert_eq(tsdb_appender_add(a, 0, ls[2], stale_t, tsdb_stale_nan(), NULL, NULL), 0);
    int64_t back = t0 + 1190000;
    cr_assert_eq(tsdb_appender_add(a, 0, ls[3], back, val(3, back), NULL, NULL), 0);
    cr_assert_eq(tsdb_appender_commit(a, NULL), 0);
    /* series 0..9: 60 samples + the marker; series 3 one more; 10..19: 119 samples */
    size_t s, n;
    count(db, t0, t0 + 599999, &s, &n);
    cr_assert_eq(n, 20 * 60);
    count(db, t0 + 600001, t0 + H_MS, &s, &n);
    cr_assert_eq(s, 11);
    cr_assert_eq(n, 10 * 59 + 1);
    for (int i = 0; i < 20; i++)
        mp_labels_release(ls[i]);
    tsdb_close(db);
}

/* An empty head after blocks were loaded reports minTime = maxTime = the blocks' end, as
 * Prometheus's open (reload truncates the head before the WAL is read); a sample appended later
 * keeps that min. */
Test(db, empty_head_after_blocks_starts_at_their_end)
{
    struct tsdb_block_builder *b;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_block_builder_create(dir, 0, 2 * H_MS, &b, &err), 0, "%s", err.msg);
    struct mp_labels *ls = mk("up", "job", "a");
    cr_assert_eq(tsdb_block_builder_add(b, ls, 1000, 1, &err), 0, "%s", err.msg);
    cr_assert_eq(tsdb_block_builder_add(b, ls, 60000, 1, &err), 0, "%s", err.msg);
    bool written = false;
    struct tsdb_block_info info;
    cr_assert_eq(tsdb_block_builder_finish(b, &written, &info, &err), 0, "%s", err.msg);
    tsdb_block_builder_destroy(b);
    cr_assert(written);
    cr_assert_eq(info.max_time_ms, 60001);
    struct tsdb *db = open_db(0);
    struct tsdb_head_stats hs;
    tsdb_head_stats_get(db, &hs);
    cr_expect_eq(hs.num_series, 0);
    cr_expect_eq(hs.num_chunks, 0);
    cr_expect_eq(hs.min_time_ms, 60001);
    cr_expect_eq(hs.max_time_ms, 60001);
    struct tsdb_appender *a;
    cr_assert_eq(tsdb_appender_create(db, &a), 0);
    cr_assert_eq(tsdb_appender_add(a, 0, ls, 120000, 2, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(tsdb_appender_commit(a, &err), 0, "%s", err.msg);
    tsdb_head_stats_get(db, &hs);
    cr_expect_eq(hs.min_time_ms, 60001);
    cr_expect_eq(hs.max_time_ms, 120000);
    mp_labels_release(ls);
    tsdb_close(db);
}
