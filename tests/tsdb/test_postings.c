/* SPDX-License-Identifier: Apache-2.0 */
/* tests/tsdb/test_postings.c: sorted-list operations against naive set arithmetic, the head's
 * inverted index (u32 -> u64 upgrade, out-of-order insert, bulk mode, delete, walkers, stats,
 * allocation failures) and matcher resolution (tsdb.md 2.3) against a brute-force oracle that
 * evaluates every matcher on every live series. Fixed seeds; loops are bounded. The threaded test
 * checks that readers racing one writer only ever see sorted lists of series that match. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "common/matcher.h"
#include "common/str.h"
#include "tsdb/postings.h"

#define S(lit) MP_STR_LIT(lit)

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static struct mp_labels *mk(const struct mp_label *l, size_t n)
{
    struct mp_labels *ls = NULL;
    cr_assert_eq(mp_labels_create(l, n, &ls, NULL), 0);
    return ls;
}

static struct tsdb_mempostings *mp_new(void)
{
    struct tsdb_mempostings *mp = NULL;
    cr_assert_eq(tsdb_mempostings_create(&mp), 0);
    return mp;
}

/* ---- list operations ------------------------------------------------------------------------ */

#define UNIVERSE 600

/* A random sorted list over [0, UNIVERSE) with density d/8, mapped to refs that cross 2^32
 * (sparse: unions take the heap merge) or to consecutive refs (dense: the bitmap union). */
static bool g_sparse;

static uint64_t to_ref(unsigned i)
{
    return i < UNIVERSE / 2 || !g_sparse ? i : (UINT64_C(1) << 32) + i;
}

static void rand_list(uint64_t *seed, struct tsdb_plist *l, bool *bits)
{
    unsigned d = (unsigned)(rnd(seed) % 9);
    tsdb_plist_reset(l);
    for (unsigned i = 0; i < UNIVERSE; i++) {
        bits[i] = rnd(seed) % 8 < d;
        if (bits[i])
            cr_assert_eq(tsdb_plist_push(l, to_ref(i)), 0);
    }
}

static void assert_list_is(const struct tsdb_plist *l, const bool *want, const char *what)
{
    size_t k = 0;
    for (unsigned i = 0; i < UNIVERSE; i++) {
        if (!want[i])
            continue;
        cr_assert(k < l->n, "%s: too short (%zu)", what, l->n);
        cr_assert_eq(l->refs[k], to_ref(i), "%s: element %zu", what, k);
        k++;
    }
    cr_assert_eq(k, l->n, "%s: %zu elements, want %zu", what, l->n, k);
}

Test(postings, list_ops_match_naive_sets)
{
    uint64_t seed = 42;
    enum { K = 20 };
    struct tsdb_plist in[K], out, a;
    static bool bits[K][UNIVERSE];
    bool want[UNIVERSE];
    for (int j = 0; j < K; j++)
        tsdb_plist_init(&in[j]);
    tsdb_plist_init(&out);
    tsdb_plist_init(&a);
    for (int it = 0; it < 800; it++) {
        g_sparse = it % 2;
        size_t k = (size_t)(rnd(&seed) % K) + (it % 7 == 0 ? 0 : 1);
        const struct tsdb_plist *p[K];
        for (size_t j = 0; j < k; j++) {
            rand_list(&seed, &in[j], bits[j]);
            p[j] = &in[j];
        }
        cr_assert_eq(tsdb_plist_intersect(p, k, &out), 0);
        for (unsigned i = 0; i < UNIVERSE; i++) {
            want[i] = k > 0;
            for (size_t j = 0; j < k; j++)
                want[i] = want[i] && bits[j][i];
        }
        assert_list_is(&out, want, "intersect");
        cr_assert_eq(tsdb_plist_union(p, k, &out), 0);
        for (unsigned i = 0; i < UNIVERSE; i++) {
            want[i] = false;
            for (size_t j = 0; j < k; j++)
                want[i] = want[i] || bits[j][i];
        }
        assert_list_is(&out, want, "union");
        if (k >= 2) {
            tsdb_plist_reset(&a);
            cr_assert_eq(tsdb_plist_reserve(&a, in[0].n), 0);
            memcpy(a.refs, in[0].refs, in[0].n * sizeof *a.refs);
            a.n = in[0].n;
            tsdb_plist_subtract(&a, &in[1]);
            for (unsigned i = 0; i < UNIVERSE; i++)
                want[i] = bits[0][i] && !bits[1][i];
            assert_list_is(&a, want, "subtract");
        }
    }
    for (int j = 0; j < K; j++)
        tsdb_plist_fini(&in[j]);
    tsdb_plist_fini(&out);
    tsdb_plist_fini(&a);
}

/* ---- index helpers -------------------------------------------------------------------------- */

static void postings_of(struct tsdb_mempostings *mp, struct mp_str name, struct mp_str value,
                        struct tsdb_plist *out)
{
    struct tsdb_ireader ir;
    tsdb_mempostings_ireader(mp, &ir);
    tsdb_plist_reset(out);
    cr_assert_eq(ir.ops->postings(ir.ctx, name, &value, 1, out, NULL), 0);
}

static void assert_refs(const struct tsdb_plist *l, const uint64_t *want, size_t n)
{
    cr_assert_eq(l->n, n, "%zu refs, want %zu", l->n, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(l->refs[i], want[i], "ref %zu: %llu, want %llu", i,
                     (unsigned long long)l->refs[i], (unsigned long long)want[i]);
}

struct strs {
    char v[64][32];
    size_t n;
};

static int collect(void *ctx, struct mp_str s)
{
    struct strs *c = ctx;
    cr_assert(c->n < 64 && s.len < 32);
    memcpy(c->v[c->n], s.ptr, s.len);
    c->v[c->n][s.len] = 0;
    c->n++;
    return 0;
}

static struct strs names_of(struct tsdb_mempostings *mp)
{
    struct strs c = {.n = 0};
    cr_assert_eq(tsdb_mempostings_label_names(mp, collect, &c), 0);
    return c;
}

static struct strs values_of(struct tsdb_mempostings *mp, const char *name)
{
    struct strs c = {.n = 0};
    cr_assert_eq(tsdb_mempostings_label_values(mp, mp_str_c(name), collect, &c), 0);
    return c;
}

Test(postings, upgrade_to_u64_only_for_the_list_that_needs_it)
{
    struct tsdb_mempostings *mp = mp_new();
    struct mp_labels *x = mk((struct mp_label[]){{S("job"), S("x")}}, 1);
    struct mp_labels *y = mk((struct mp_label[]){{S("job"), S("y")}}, 1);
    const uint64_t big = UINT64_C(1) << 32;
    uint64_t want_x[] = {1, 2, UINT32_MAX, big, big + 7};
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq(tsdb_mempostings_add(mp, want_x[i], x), 0);
    /* a list whose first (inline) ref is already wide, then one that stays narrow */
    cr_assert_eq(tsdb_mempostings_add(mp, big + 9, y), 0);
    struct mp_labels *z = mk((struct mp_label[]){{S("job"), S("z")}}, 1);
    for (uint64_t r = 10; r < 20; r++)
        cr_assert_eq(tsdb_mempostings_add(mp, r, z), 0);
    struct tsdb_plist l;
    tsdb_plist_init(&l);
    postings_of(mp, S("job"), S("x"), &l);
    assert_refs(&l, want_x, 5);
    postings_of(mp, S("job"), S("y"), &l);
    assert_refs(&l, (uint64_t[]){big + 9}, 1);
    postings_of(mp, S("job"), S("z"), &l);
    cr_assert_eq(l.n, 10);
    cr_assert_eq(l.refs[9], 19);
    postings_of(mp, S(""), S(""), &l);
    cr_assert_eq(l.n, 16);
    cr_assert_eq(l.refs[0], 1);
    cr_assert_eq(l.refs[15], big + 9);
    /* out of order into a wide list, and a small ref after the upgrade */
    cr_assert_eq(tsdb_mempostings_add(mp, 3, x), 0);
    postings_of(mp, S("job"), S("x"), &l);
    assert_refs(&l, (uint64_t[]){1, 2, 3, UINT32_MAX, big, big + 7}, 6);
    tsdb_plist_fini(&l);
    mp_labels_release(x);
    mp_labels_release(y);
    mp_labels_release(z);
    tsdb_mempostings_destroy(mp);
}

Test(postings, out_of_order_insert_keeps_lists_sorted)
{
    struct tsdb_mempostings *mp = mp_new();
    struct mp_labels *a = mk((struct mp_label[]){{S("a"), S("1")}}, 1);
    uint64_t seed = 7;
    static bool present[3000];
    for (int i = 0; i < 2000; i++) {
        uint64_t r = rnd(&seed) % 3000;
        if (present[r])
            continue;
        present[r] = true;
        cr_assert_eq(tsdb_mempostings_add(mp, r, a), 0);
    }
    struct tsdb_plist l;
    tsdb_plist_init(&l);
    postings_of(mp, S("a"), S("1"), &l);
    size_t k = 0;
    for (uint64_t r = 0; r < 3000; r++)
        if (present[r]) {
            cr_assert(k < l.n);
            cr_assert_eq(l.refs[k++], r);
        }
    cr_assert_eq(k, l.n);
    cr_assert_eq(tsdb_mempostings_num_series(mp, S("a"), S("1")), k);
    cr_assert_eq(tsdb_mempostings_num_series(mp, S(""), S("")), k);
    tsdb_plist_fini(&l);
    mp_labels_release(a);
    tsdb_mempostings_destroy(mp);
}

Test(postings, bulk_add_then_ensure_order)
{
    struct tsdb_mempostings *mp = mp_new();
    struct mp_labels *ls[2] = {mk((struct mp_label[]){{S("a"), S("1")}, {S("b"), S("x")}}, 2),
                               mk((struct mp_label[]){{S("a"), S("2")}, {S("b"), S("x")}}, 2)};
    uint64_t seed = 9;
    uint64_t refs[500];
    for (uint64_t i = 0; i < 500; i++)
        refs[i] = i * 3 + (i % 5 == 0 ? (UINT64_C(1) << 33) : 0);
    for (int i = 499; i > 0; i--) { /* shuffle */
        size_t j = (size_t)(rnd(&seed) % (uint64_t)(i + 1));
        uint64_t t = refs[i];
        refs[i] = refs[j];
        refs[j] = t;
    }
    for (int i = 0; i < 500; i++)
        cr_assert_eq(tsdb_mempostings_add_unsorted(mp, refs[i], ls[refs[i] % 2]), 0);
    tsdb_mempostings_ensure_order(mp);
    struct tsdb_plist l;
    tsdb_plist_init(&l);
    postings_of(mp, S("b"), S("x"), &l);
    cr_assert_eq(l.n, 500);
    for (size_t i = 1; i < l.n; i++)
        cr_assert_lt(l.refs[i - 1], l.refs[i]);
    postings_of(mp, S("a"), S("1"), &l);
    for (size_t i = 0; i < l.n; i++) {
        cr_assert_eq(l.refs[i] % 2, 0);
        cr_assert(i == 0 || l.refs[i - 1] < l.refs[i]);
    }
    cr_assert_eq(l.n + tsdb_mempostings_num_series(mp, S("a"), S("2")), 500);
    /* normal adds work on after replay */
    cr_assert_eq(tsdb_mempostings_add(mp, UINT64_C(1) << 40, ls[0]), 0);
    postings_of(mp, S("b"), S("x"), &l);
    cr_assert_eq(l.n, 501);
    postings_of(mp, S("a"), S("1"), &l);
    cr_assert_eq(l.refs[l.n - 1], UINT64_C(1) << 40);
    tsdb_plist_fini(&l);
    mp_labels_release(ls[0]);
    mp_labels_release(ls[1]);
    tsdb_mempostings_destroy(mp);
}

Test(postings, delete_drops_empty_lists_and_names)
{
    struct tsdb_mempostings *mp = mp_new();
    size_t base = tsdb_mempostings_bytes(mp);
    struct mp_labels *ls[4] = {
        mk((struct mp_label[]){{S("__name__"), S("up")}, {S("job"), S("a")}, {S("pod"), S("p1")}},
           3),
        mk((struct mp_label[]){{S("__name__"), S("up")}, {S("job"), S("b")}}, 2),
        mk((struct mp_label[]){{S("__name__"), S("up")}, {S("job"), S("a")}, {S("pod"), S("p2")}},
           3),
        mk((struct mp_label[]){{S("__name__"), S("x")}, {S("empty"), S("")}}, 2),
    };
    uint64_t refs[4] = {1, 2, 3, UINT64_C(1) << 35};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(tsdb_mempostings_add(mp, refs[i], ls[i]), 0);
    struct strs n = names_of(mp);
    cr_assert_eq(n.n, 3); /* "empty" has only an empty value: not indexed */
    cr_assert_str_eq(n.v[0], "__name__");
    cr_assert_str_eq(n.v[1], "job");
    cr_assert_str_eq(n.v[2], "pod");
    cr_assert_eq(tsdb_mempostings_num_values(mp, S("pod")), 2);

    /* delete 1 and 3: pod vanishes, job=a vanishes */
    const struct mp_labels *dl[2] = {ls[0], ls[2]};
    tsdb_mempostings_delete(mp, (uint64_t[]){1, 3}, dl, 2);
    n = names_of(mp);
    cr_assert_eq(n.n, 2);
    cr_assert_str_eq(n.v[1], "job");
    struct strs v = values_of(mp, "job");
    cr_assert_eq(v.n, 1);
    cr_assert_str_eq(v.v[0], "b");
    cr_assert_eq(tsdb_mempostings_num_values(mp, S("pod")), 0);
    cr_assert_eq(tsdb_mempostings_num_series(mp, S("__name__"), S("up")), 1);
    struct tsdb_plist l;
    tsdb_plist_init(&l);
    postings_of(mp, S(""), S(""), &l);
    assert_refs(&l, (uint64_t[]){2, UINT64_C(1) << 35}, 2);
    /* everything: the index is empty again and gives its memory back */
    const struct mp_labels *rest[2] = {ls[1], ls[3]};
    tsdb_mempostings_delete(mp, (uint64_t[]){2, UINT64_C(1) << 35}, rest, 2);
    cr_assert_eq(names_of(mp).n, 0);
    cr_assert_eq(tsdb_mempostings_num_names(mp), 0);
    postings_of(mp, S(""), S(""), &l);
    cr_assert_eq(l.n, 0);
    cr_assert_eq(tsdb_mempostings_bytes(mp), base);
    tsdb_plist_fini(&l);
    for (int i = 0; i < 4; i++)
        mp_labels_release(ls[i]);
    tsdb_mempostings_destroy(mp);
}

Test(postings, delete_rewrites_shared_lists_once_and_shrinks)
{
    struct tsdb_mempostings *mp = mp_new();
    enum { N = 3000 };
    static struct mp_labels *ls[N];
    static uint64_t refs[N];
    char buf[16];
    for (int i = 0; i < N; i++) {
        snprintf(buf, sizeof buf, "p%d", i);
        ls[i] = mk((struct mp_label[]){{S("job"), S("j")}, {S("pod"), mp_str_c(buf)}}, 2);
        refs[i] = (uint64_t)i + 1;
        cr_assert_eq(tsdb_mempostings_add(mp, refs[i], ls[i]), 0);
    }
    size_t full = tsdb_mempostings_bytes(mp);
    /* delete every series but the last 10, in one call */
    tsdb_mempostings_delete(mp, refs, (const struct mp_labels *const *)ls, N - 10);
    cr_assert_eq(tsdb_mempostings_num_series(mp, S("job"), S("j")), 10);
    cr_assert_eq(tsdb_mempostings_num_values(mp, S("pod")), 10);
    cr_assert_lt(tsdb_mempostings_bytes(mp), full / 10);
    struct tsdb_plist l;
    tsdb_plist_init(&l);
    postings_of(mp, S("job"), S("j"), &l);
    cr_assert_eq(l.n, 10);
    cr_assert_eq(l.refs[0], N - 9);
    /* the marks were cleared: a second delete of the rest works */
    tsdb_mempostings_delete(mp, refs + N - 10, (const struct mp_labels *const *)ls + N - 10, 10);
    cr_assert_eq(tsdb_mempostings_num_names(mp), 0);
    tsdb_plist_fini(&l);
    for (int i = 0; i < N; i++)
        mp_labels_release(ls[i]);
    tsdb_mempostings_destroy(mp);
}

Test(postings, label_values_sorted_and_refreshed_after_change)
{
    struct tsdb_mempostings *mp = mp_new();
    const char *vals[] = {"b", "a", "ab", "B", "\xff", "a\n"};
    struct mp_labels *ls[6];
    for (int i = 0; i < 6; i++) {
        ls[i] = mk((struct mp_label[]){{S("l"), mp_str_c(vals[i])}}, 1);
        cr_assert_eq(tsdb_mempostings_add(mp, (uint64_t)i + 1, ls[i]), 0);
    }
    const char *want[] = {"B", "a", "a\n", "ab", "b", "\xff"};
    for (int round = 0; round < 2; round++) { /* the second walk uses the kept array */
        struct strs v = values_of(mp, "l");
        cr_assert_eq(v.n, 6);
        for (int i = 0; i < 6; i++)
            cr_assert_str_eq(v.v[i], want[i]);
    }
    struct mp_labels *c = mk((struct mp_label[]){{S("l"), S("aa")}}, 1);
    cr_assert_eq(tsdb_mempostings_add(mp, 10, c), 0);
    struct strs v = values_of(mp, "l");
    cr_assert_eq(v.n, 7);
    cr_assert_str_eq(v.v[3], "aa");
    tsdb_mempostings_delete(mp, (uint64_t[]){10}, (const struct mp_labels *[]){c}, 1);
    cr_assert_eq(values_of(mp, "l").n, 6);
    cr_assert_eq(values_of(mp, "nope").n, 0);
    mp_labels_release(c);
    for (int i = 0; i < 6; i++)
        mp_labels_release(ls[i]);
    tsdb_mempostings_destroy(mp);
}

Test(postings, stats_top_n)
{
    struct tsdb_mempostings *mp = mp_new();
    /* up x3 (job a, a, b), node_cpu x2 (job a), go_info x1 (no job) */
    struct {
        const char *name, *job;
    } in[] = {{"up", "a"}, {"up", "a"}, {"up", "b"}, {"node_cpu", "a"}, {"node_cpu", "a"},
              {"go_info", NULL}};
    for (int i = 0; i < 6; i++) {
        struct mp_label l[3] = {{S("__name__"), mp_str_c(in[i].name)}, {S("i"), S("0")}};
        char idx[4];
        snprintf(idx, sizeof idx, "%d", i);
        l[1].value = mp_str_c(idx);
        size_t n = 2;
        if (in[i].job)
            l[n++] = (struct mp_label){S("job"), mp_str_c(in[i].job)};
        struct mp_labels *ls = mk(l, n);
        cr_assert_eq(tsdb_mempostings_add(mp, (uint64_t)i + 1, ls), 0);
        mp_labels_release(ls);
    }
    struct tsdb_postings_stat a[2], b[2], c[2], d[2];
    struct tsdb_postings_stats s = {.limit = 2,
                                    .series_by_metric = a,
                                    .values_by_name = b,
                                    .bytes_by_name = c,
                                    .series_by_pair = d};
    tsdb_mempostings_stats(mp, S("__name__"), &s);
    cr_assert_eq(s.num_series, 6);
    cr_assert_eq(s.num_label_pairs, 3 + 6 + 2);
    cr_assert_eq(s.n_series_by_metric, 2);
    cr_assert_str_eq(mp_istr_cstr(a[0].name), "up");
    cr_assert_eq(a[0].count, 3);
    cr_assert_str_eq(mp_istr_cstr(a[1].name), "node_cpu");
    cr_assert_eq(s.n_values_by_name, 2);
    cr_assert_str_eq(mp_istr_cstr(b[0].name), "i");
    cr_assert_eq(b[0].count, 6);
    cr_assert_str_eq(mp_istr_cstr(b[1].name), "__name__");
    /* __name__: 2x3 + 8x2 + 7 = 29 bytes; job: 5 x 1; i: 6 x 1 */
    cr_assert_str_eq(mp_istr_cstr(c[0].name), "__name__");
    cr_assert_eq(c[0].count, 29);
    cr_assert_str_eq(mp_istr_cstr(c[1].name), "i");
    cr_assert_eq(c[1].count, 6);
    cr_assert_str_eq(mp_istr_cstr(d[0].name), "job"); /* job=a: 4 */
    cr_assert_str_eq(mp_istr_cstr(d[0].value), "a");
    cr_assert_eq(d[0].count, 4);
    cr_assert_str_eq(mp_istr_cstr(d[1].name), "__name__");
    cr_assert_str_eq(mp_istr_cstr(d[1].value), "up");
    tsdb_postings_stats_release(&s);
    cr_assert_eq(s.n_series_by_pair, 0);
    tsdb_mempostings_destroy(mp);
}

Test(postings, failed_adds_leave_the_index_unchanged)
{
    struct mp_labels *ls[40];
    char v[16];
    for (int i = 0; i < 40; i++) {
        snprintf(v, sizeof v, "v%d", i % 7);
        char w[16];
        snprintf(w, sizeof w, "w%d", i);
        ls[i] = mk((struct mp_label[]){{S("a"), mp_str_c(v)}, {S("b"), mp_str_c(w)},
                                       {mp_str_c(i % 3 ? "c" : "d"), S("x")}},
                   3);
    }
    for (uint64_t k = 1; k < 60; k++) {
        struct tsdb_mempostings *mp = mp_new();
        bool added[40] = {false};
        mp_alloc_fail_at(k);
        for (int i = 0; i < 40; i++) {
            uint64_t ref = (uint64_t)((i * 17) % 40) + (i % 4 == 0 ? (UINT64_C(1) << 32) : 0);
            int rc = tsdb_mempostings_add(mp, ref, ls[(i * 17) % 40]);
            cr_assert(rc == 0 || rc == MP_ENOMEM, "rc %d", rc);
            added[i] = rc == 0;
        }
        mp_alloc_fail_at(0);
        size_t total = 0, in_a = 0;
        for (int i = 0; i < 40; i++)
            total += added[i];
        for (int j = 0; j < 7; j++) {
            snprintf(v, sizeof v, "v%d", j);
            in_a += tsdb_mempostings_num_series(mp, S("a"), mp_str_c(v));
        }
        cr_assert_eq(tsdb_mempostings_num_series(mp, S(""), S("")), total, "k=%llu",
                     (unsigned long long)k);
        cr_assert_eq(in_a, total);
        cr_assert_eq(tsdb_mempostings_num_values(mp, S("b")), total);
        tsdb_mempostings_destroy(mp);
    }
    for (int i = 0; i < 40; i++)
        mp_labels_release(ls[i]);
}

/* Series with more labels than add() hashes on the stack (it allocates the hash array then):
 * every pair is indexed, and a failed allocation of that array leaves the index unchanged. */
Test(postings, many_label_series_indexed_every_pair)
{
    struct mp_label l[50];
    char names[50][8], vals[2][50][8];
    struct mp_labels *ls[2];
    for (int k = 0; k < 2; k++) {
        for (int j = 0; j < 50; j++) {
            snprintf(names[j], sizeof names[j], "n%02d", j);
            snprintf(vals[k][j], sizeof vals[k][j], "v%d", j % 5 == 0 ? j : j + 100 * k);
            l[j] = (struct mp_label){mp_str_c(names[j]), mp_str_c(vals[k][j])};
        }
        ls[k] = mk(l, 50);
    }
    struct tsdb_mempostings *mp = mp_new();
    mp_alloc_fail_at(1);
    cr_assert_eq(tsdb_mempostings_add(mp, 7, ls[0]), MP_ENOMEM);
    mp_alloc_fail_at(0);
    cr_assert_eq(tsdb_mempostings_num_series(mp, S(""), S("")), 0);
    cr_assert_eq(tsdb_mempostings_num_names(mp), 0);
    cr_assert_eq(tsdb_mempostings_add(mp, 7, ls[0]), 0);
    cr_assert_eq(tsdb_mempostings_add(mp, 9, ls[1]), 0);
    struct tsdb_plist out;
    tsdb_plist_init(&out);
    for (int j = 0; j < 50; j++) {
        if (j % 5 == 0) {
            postings_of(mp, mp_str_c(names[j]), mp_str_c(vals[0][j]), &out);
            assert_refs(&out, (uint64_t[]){7, 9}, 2);
        } else {
            postings_of(mp, mp_str_c(names[j]), mp_str_c(vals[0][j]), &out);
            assert_refs(&out, (uint64_t[]){7}, 1);
            postings_of(mp, mp_str_c(names[j]), mp_str_c(vals[1][j]), &out);
            assert_refs(&out, (uint64_t[]){9}, 1);
        }
    }
    cr_assert_eq(tsdb_mempostings_num_names(mp), 50);
    tsdb_plist_fini(&out);
    tsdb_mempostings_destroy(mp);
    mp_labels_release(ls[0]);
    mp_labels_release(ls[1]);
}

/* ---- matcher resolution vs. an oracle ------------------------------------------------------- */

static const char *const g_names[] = {"__name__", "a", "b", "c"};
static const char *const g_values[] = {"a", "b", "ab", "ba", "c", "a\nb", ""};
static const char *const g_patterns[] = {
    "",   "a",    "b",   "a|b",   ".*",  ".+",    "a.*",   "(a|)",  "b|",  "ab|ba", "c",
    "x",  "[ab]", ".",   "a|b|x", "b.+", "(?s).*", "a\nb", ".*b", "|",   "ab", "(?i)A.*", "a+"};

#define NSERIES 3000

struct model {
    struct tsdb_mempostings *mp;
    struct mp_labels *ls[NSERIES];
    bool live[NSERIES];
};

/* wide: a third of the refs above 2^32, so both list widths take part (and unions of values
 * span a sparse range); otherwise refs 1..NSERIES (dense unions) */
static bool g_wide_refs;

static uint64_t model_ref(size_t i)
{
    return g_wide_refs && i % 3 == 0 ? (UINT64_C(1) << 32) + i : i + 1;
}

static void model_build(struct model *md, uint64_t *seed)
{
    md->mp = mp_new();
    for (size_t i = 0; i < NSERIES; i++) {
        struct mp_label l[4];
        size_t n = 0;
        for (size_t k = 0; k < 4; k++) {
            uint64_t r = rnd(seed) % 10;
            if (r >= 7)
                continue; /* label absent */
            l[n++] = (struct mp_label){mp_str_c(g_names[k]), mp_str_c(g_values[r])};
        }
        md->ls[i] = mk(l, n);
        md->live[i] = true;
    }
    /* a tenth is added late, so those refs go into the middle of their lists */
    for (size_t i = 0; i < NSERIES; i++)
        if (i % 10 != 5)
            cr_assert_eq(tsdb_mempostings_add(md->mp, model_ref(i), md->ls[i]), 0);
    for (size_t i = 0; i < NSERIES; i++)
        if (i % 10 == 5)
            cr_assert_eq(tsdb_mempostings_add(md->mp, model_ref(i), md->ls[i]), 0);
}

static void model_free(struct model *md)
{
    for (size_t i = 0; i < NSERIES; i++)
        mp_labels_release(md->ls[i]);
    tsdb_mempostings_destroy(md->mp);
}

static bool oracle_matches(const struct mp_labels *ls, const struct mp_matcher *const *m, size_t n)
{
    if (n == 0)
        return false;
    for (size_t j = 0; j < n; j++) {
        if (mp_matcher_name(m[j]).len == 0 && mp_matcher_value(m[j]).len == 0)
            continue;
        if (!mp_matcher_matches(m[j], mp_labels_get(ls, mp_matcher_name(m[j]))))
            return false;
    }
    return true;
}

static int cmp_ref(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void check_query(struct model *md, const struct mp_matcher *const *m, size_t n,
                        struct tsdb_plist *got, const char *desc)
{
    static uint64_t want[NSERIES];
    size_t nw = 0;
    for (size_t i = 0; i < NSERIES; i++)
        if (md->live[i] && oracle_matches(md->ls[i], m, n))
            want[nw++] = model_ref(i);
    qsort(want, nw, sizeof *want, cmp_ref);
    struct tsdb_ireader ir;
    tsdb_mempostings_ireader(md->mp, &ir);
    struct mp_err err = {0};
    cr_assert_eq(tsdb_postings_for_matchers(&ir, m, n, got, &err), 0, "%s: %s", desc, err.msg);
    cr_assert_eq(got->n, nw, "%s: %zu series, want %zu", desc, got->n, nw);
    for (size_t i = 0; i < nw; i++)
        cr_assert_eq(got->refs[i], want[i], "%s: element %zu", desc, i);
}

static void random_matcher(uint64_t *seed, struct mp_matcher **out, char *desc, size_t dlen)
{
    enum mp_match_type t = (enum mp_match_type)(rnd(seed) % 4);
    const char *name = rnd(seed) % 12 == 0 ? "z" : g_names[rnd(seed) % 4];
    const char *val;
    if (rnd(seed) % 40 == 0) { /* the all-postings matcher */
        name = "";
        val = "";
    } else if (t == MP_MATCH_EQUAL || t == MP_MATCH_NOT_EQUAL) {
        val = g_values[rnd(seed) % 7];
    } else {
        val = g_patterns[rnd(seed) % (sizeof g_patterns / sizeof *g_patterns)];
    }
    cr_assert_eq(mp_matcher_create(t, mp_str_c(name), mp_str_c(val), out, NULL), 0);
    size_t used = strlen(desc);
    snprintf(desc + used, dlen - used, "%s%s\"%s\",", name, mp_match_type_str(t), val);
}

static void oracle_run(uint64_t seed, bool wide)
{
    static struct model md;
    g_wide_refs = wide;
    model_build(&md, &seed);
    struct tsdb_plist got;
    tsdb_plist_init(&got);
    for (int q = 0; q < 3000; q++) {
        struct mp_matcher *m[4];
        size_t n = (size_t)(rnd(&seed) % 5);
        char desc[512] = "{";
        for (size_t j = 0; j < n; j++)
            random_matcher(&seed, &m[j], desc, sizeof desc);
        check_query(&md, (const struct mp_matcher *const *)m, n, &got, desc);
        for (size_t j = 0; j < n; j++)
            mp_matcher_destroy(m[j]);
        /* churn now and then: drop a random batch of live series */
        if (q % 500 == 499) {
            static uint64_t refs[NSERIES];
            static const struct mp_labels *dl[NSERIES];
            size_t nd = 0;
            for (size_t i = 0; i < NSERIES; i++)
                if (md.live[i] && rnd(&seed) % 4 == 0) {
                    md.live[i] = false;
                    refs[nd] = model_ref(i);
                    dl[nd++] = md.ls[i];
                }
            /* sorted by ref, labels alongside */
            for (size_t x = 1; x < nd; x++)
                for (size_t y = x; y > 0 && refs[y - 1] > refs[y]; y--) {
                    uint64_t tr = refs[y];
                    refs[y] = refs[y - 1];
                    refs[y - 1] = tr;
                    const struct mp_labels *tl = dl[y];
                    dl[y] = dl[y - 1];
                    dl[y - 1] = tl;
                }
            tsdb_mempostings_delete(md.mp, refs, dl, nd);
        }
    }
    tsdb_plist_fini(&got);
    model_free(&md);
}

Test(postings, matchers_agree_with_oracle, .timeout = 120)
{
    oracle_run(2024, true);
}

Test(postings, matchers_agree_with_oracle_dense_refs, .timeout = 120)
{
    oracle_run(77, false);
}

Test(postings, matchers_fixed_cases)
{
    static struct model md;
    uint64_t seed = 5;
    g_wide_refs = true;
    model_build(&md, &seed);
    struct tsdb_plist got;
    tsdb_plist_init(&got);
    static const struct {
        enum mp_match_type t;
        const char *name, *value;
    } cases[][3] = {
        {{MP_MATCH_NOT_EQUAL, "a", ""}},                                  /* l!="" */
        {{MP_MATCH_NOT_REGEX, "a", ""}},                                  /* l!~"" */
        {{MP_MATCH_EQUAL, "a", ""}},                                      /* lacking a */
        {{MP_MATCH_REGEX, "a", ".+"}, {MP_MATCH_NOT_EQUAL, "a", "b"}},    /* must be set */
        {{MP_MATCH_REGEX, "a", "a|b"}, {MP_MATCH_NOT_REGEX, "b", "a|"}},  /* set + inverse */
        {{MP_MATCH_NOT_REGEX, "a", "a|b"}},                               /* pure negative */
        {{MP_MATCH_REGEX, "z", ".*"}},                                    /* unknown name */
        {{MP_MATCH_EQUAL, "z", "a"}},
        {{MP_MATCH_NOT_EQUAL, "z", ""}},
        {{MP_MATCH_EQUAL, "", ""}},                                       /* all postings */
        {{MP_MATCH_EQUAL, "", ""}, {MP_MATCH_EQUAL, "a", "a"}},
        {{MP_MATCH_NOT_EQUAL, "a", "a\nb"}, {MP_MATCH_REGEX, "a", ".*"}}, /* . vs \n */
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        struct mp_matcher *m[3];
        size_t n = 0;
        char desc[256] = "{";
        for (; n < 3 && cases[c][n].name; n++) {
            cr_assert_eq(mp_matcher_create(cases[c][n].t, mp_str_c(cases[c][n].name),
                                           mp_str_c(cases[c][n].value), &m[n], NULL),
                         0);
            size_t u = strlen(desc);
            snprintf(desc + u, sizeof desc - u, "%s%s\"%s\",", cases[c][n].name,
                     mp_match_type_str(cases[c][n].t), cases[c][n].value);
        }
        check_query(&md, (const struct mp_matcher *const *)m, n, &got, desc);
        for (size_t j = 0; j < n; j++)
            mp_matcher_destroy(m[j]);
    }
    tsdb_plist_fini(&got);
    model_free(&md);
}

/* ---- one writer, many readers --------------------------------------------------------------- */

/* Series ref r has a = r % 3, b = r % 5 (and __name__ m), so any ref a reader gets can be
 * checked against the matchers. As in Prometheus, a series deleted while a query runs can
 * escape a subtracting matcher (it was in the intersected lists fetched first, and gone from
 * the subtracted list fetched later); readers skip such series when they load them. So a ref
 * that fails b!~"2|3" must belong to a series whose deletion had started (del_hi). */
#define THREAD_ROUNDS 300
#define BATCH 64

static struct mp_labels *thread_labels(uint64_t r)
{
    char a[4], b[4];
    snprintf(a, sizeof a, "%u", (unsigned)(r % 3));
    snprintf(b, sizeof b, "%u", (unsigned)(r % 5));
    return mk((struct mp_label[]){{S("__name__"), S("m")}, {S("a"), mp_str_c(a)},
                                  {S("b"), mp_str_c(b)}},
              3);
}

/* every seventh series gets a ref above 2^32: wide lists, and inserts before those refs */
static uint64_t thread_ref(uint64_t i)
{
    return i % 7 == 0 ? i + (UINT64_C(1) << 32) : i;
}

static uint64_t thread_index(uint64_t ref)
{
    return ref > UINT32_MAX ? ref - (UINT64_C(1) << 32) : ref;
}

struct reader_arg {
    struct tsdb_mempostings *mp;
    _Atomic bool *stop;
    _Atomic uint64_t *del_hi; /* series indices below this may be deleted */
    int failures;
    size_t queries;
};

static void *reader(void *p)
{
    struct reader_arg *ra = p;
    struct mp_matcher *m[3];
    if (mp_matcher_create(MP_MATCH_EQUAL, S("a"), S("1"), &m[0], NULL) ||
        mp_matcher_create(MP_MATCH_NOT_REGEX, S("b"), S("2|3"), &m[1], NULL) ||
        mp_matcher_create(MP_MATCH_REGEX, S("__name__"), S("m.*"), &m[2], NULL)) {
        ra->failures++;
        return NULL;
    }
    struct tsdb_ireader ir;
    tsdb_mempostings_ireader(ra->mp, &ir);
    struct tsdb_plist got;
    tsdb_plist_init(&got);
    while (!atomic_load(ra->stop) && ra->queries < 100000) {
        size_t n = 1 + ra->queries % 3;
        if (tsdb_postings_for_matchers(&ir, (const struct mp_matcher *const *)m, n, &got, NULL)) {
            ra->failures++;
            break;
        }
        uint64_t del_hi = atomic_load(ra->del_hi);
        for (size_t i = 0; i < got.n; i++) {
            uint64_t r = got.refs[i];
            bool ok = r % 3 == 1 && (i == 0 || got.refs[i - 1] < r) &&
                      (n < 2 || (r % 5 != 2 && r % 5 != 3) || thread_index(r) < del_hi);
            if (!ok && ra->failures++ < 5)
                fprintf(stderr, "n=%zu i=%zu ref %llu prev %llu\n", n, i, (unsigned long long)r,
                        (unsigned long long)(i ? got.refs[i - 1] : 0));
        }
        /* the walkers and stats race the writer too (sorted arrays built under the read lock) */
        struct strs v = {.n = 0};
        if (ra->queries % 8 == 0 && (tsdb_mempostings_label_values(ra->mp, S("a"), collect, &v) ||
                                     tsdb_mempostings_label_names(ra->mp, collect, &v)))
            ra->failures++;
        if (ra->queries % 16 == 0) {
            struct tsdb_postings_stat st[4][3];
            struct tsdb_postings_stats s = {3, st[0], st[1], st[2], st[3], 0, 0, 0, 0, 0, 0};
            tsdb_mempostings_stats(ra->mp, S("__name__"), &s);
            if (s.n_series_by_metric > 1)
                ra->failures++;
            tsdb_postings_stats_release(&s);
        }
        ra->queries++;
    }
    tsdb_plist_fini(&got);
    for (int i = 0; i < 3; i++)
        mp_matcher_destroy(m[i]);
    return NULL;
}

Test(postings, readers_race_one_writer, .timeout = 300)
{
    struct tsdb_mempostings *mp = mp_new();
    _Atomic bool stop = false;
    _Atomic uint64_t del_hi = 0;
    enum { READERS = 3 };
    struct reader_arg ra[READERS];
    pthread_t th[READERS];
    for (int i = 0; i < READERS; i++) {
        ra[i] = (struct reader_arg){mp, &stop, &del_hi, 0, 0};
        cr_assert_eq(pthread_create(&th[i], NULL, reader, &ra[i]), 0);
    }
    /* writer: add a batch, every other round delete the oldest live batch */
    uint64_t next = 1, oldest = 1;
    for (int round = 0; round < THREAD_ROUNDS; round++) {
        for (int k = 0; k < BATCH; k++, next++) {
            struct mp_labels *ls = thread_labels(thread_ref(next));
            cr_assert_eq(tsdb_mempostings_add(mp, thread_ref(next), ls), 0);
            mp_labels_release(ls);
        }
        if (round % 2 == 1) {
            uint64_t refs[BATCH];
            struct mp_labels *ls[BATCH];
            for (int k = 0; k < BATCH; k++)
                refs[k] = thread_ref(oldest + (uint64_t)k);
            qsort(refs, BATCH, sizeof *refs, cmp_ref);
            for (int k = 0; k < BATCH; k++)
                ls[k] = thread_labels(refs[k]);
            atomic_store(&del_hi, oldest + BATCH);
            tsdb_mempostings_delete(mp, refs, (const struct mp_labels *const *)ls, BATCH);
            for (int k = 0; k < BATCH; k++)
                mp_labels_release(ls[k]);
            oldest += BATCH;
        }
    }
    atomic_store(&stop, true);
    for (int i = 0; i < READERS; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(ra[i].failures, 0, "reader %d: %d bad refs", i, ra[i].failures);
    }
    cr_assert_eq(tsdb_mempostings_num_series(mp, S(""), S("")), next - oldest);
    tsdb_mempostings_destroy(mp);
}
