/* SPDX-License-Identifier: Apache-2.0 */
/* tests/scraper/test_scrape_cache.c: the per-target scrape cache on its own (cache.c): texts
 * by 128-bit hash, series records shared by tsdb ref, staleness tracking and undo, eviction
 * of unseen texts and orphaned records, growth through many insertions and deletions, and the
 * interned metadata. Deterministic; no threads, no I/O. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "scraper/scrape_internal.h"

static struct scrape_cache_key key(const char *text)
{
    return scrape_cache_key_hash(mp_str_c(text));
}

static struct scrape_cache_entry *add(struct scrape_cache *c, const char *text, uint64_t ref,
                                      uint64_t iter)
{
    struct scrape_cache_entry *e = NULL;
    cr_assert_eq(scrape_cache_add(c, key(text), ref, iter, &e), 0);
    cr_assert_not_null(e);
    return e;
}

Test(scrape_cache, texts_map_to_series_by_ref)
{
    struct scrape_cache *c = scrape_cache_create();
    cr_assert_null(scrape_cache_find(c, key("a")));
    add(c, "a{x=\"1\"}", 7, 1);
    add(c, "a{x=\"2\"}", 7, 1); /* relabels to the same series */
    add(c, "b", 9, 1);
    add(c, "dropped", 0, 1);
    cr_assert_eq(scrape_cache_entries(c), 4);
    cr_assert_eq(scrape_cache_series_count(c), 2);
    struct scrape_cache_entry *e1 = scrape_cache_find(c, key("a{x=\"1\"}"));
    struct scrape_cache_series *s1 = scrape_cache_entry_series(c, e1);
    struct scrape_cache_series *s2 =
        scrape_cache_entry_series(c, scrape_cache_find(c, key("a{x=\"2\"}")));
    cr_assert_eq(s1, s2, "one record per tsdb ref");
    cr_assert_eq(s1->ref, 7);
    cr_assert_eq(s1->nentries, 2);
    cr_assert_null(scrape_cache_entry_series(c, scrape_cache_find(c, key("dropped"))));
    cr_assert_null(scrape_cache_find(c, key("a{x=\"3\"}")));
    scrape_cache_destroy(c);
}

static void count_seen(void *ctx, struct scrape_cache_series *s)
{
    (*(uint64_t *)ctx) += s->ref;
}

Test(scrape_cache, tracking_undo_and_eviction)
{
    struct scrape_cache *c = scrape_cache_create();
    scrape_cache_track(scrape_cache_entry_series(c, add(c, "a", 1, 1)), 1);
    scrape_cache_track(scrape_cache_entry_series(c, add(c, "b", 2, 1)), 1);
    scrape_cache_iter_done(c, 1);
    /* attempt 2 sees only a, then fails: the tracking goes back */
    struct scrape_cache_entry *a = scrape_cache_find(c, key("a"));
    scrape_cache_entry_seen(a, 2);
    scrape_cache_track(scrape_cache_entry_series(c, a), 2);
    scrape_cache_undo(c, 2);
    uint64_t sum = 0;
    cr_assert_eq(scrape_cache_each_seen(c, 1, count_seen, &sum), 2);
    cr_assert_eq(sum, 3);
    /* attempt 3 sees only a and succeeds: b's text and record go, a stays */
    a = scrape_cache_find(c, key("a"));
    scrape_cache_entry_seen(a, 3);
    scrape_cache_track(scrape_cache_entry_series(c, a), 3);
    sum = 0;
    cr_assert_eq(scrape_cache_each_seen(c, 3, count_seen, &sum), 1);
    scrape_cache_iter_done(c, 3);
    cr_assert_null(scrape_cache_find(c, key("b")));
    cr_assert_not_null(scrape_cache_find(c, key("a")));
    cr_assert_eq(scrape_cache_entries(c), 1);
    cr_assert_eq(scrape_cache_series_count(c), 1);
    /* forget: the text misses again, its record goes once unseen */
    scrape_cache_forget(c, scrape_cache_find(c, key("a")));
    cr_assert_null(scrape_cache_find(c, key("a")));
    scrape_cache_iter_done(c, 4);
    cr_assert_eq(scrape_cache_series_count(c), 0);
    scrape_cache_destroy(c);
}

/* Many rounds of texts that come and go: deleted slots are reused or swept, records are
 * reused through the free list, and every live text still finds its own record. */
Test(scrape_cache, churn_keeps_every_text_findable)
{
    struct scrape_cache *c = scrape_cache_create();
    char text[64];
    for (uint64_t iter = 1; iter <= 40; iter++) {
        /* round r exposes texts [50 r, 50 r + 3000): 50 new, 50 gone each round */
        uint64_t lo = 50 * iter, hi = lo + 3000;
        for (uint64_t i = lo; i < hi; i++) {
            snprintf(text, sizeof text, "m{i=\"%llu\"}", (unsigned long long)i);
            struct scrape_cache_entry *e = scrape_cache_find(c, key(text));
            if (!e)
                e = add(c, text, i + 1, iter);
            scrape_cache_entry_seen(e, iter);
            struct scrape_cache_series *s = scrape_cache_entry_series(c, e);
            cr_assert_eq(s->ref, i + 1, "text %s", text);
            scrape_cache_track(s, iter);
        }
        scrape_cache_iter_done(c, iter);
        cr_assert_eq(scrape_cache_entries(c), 3000);
        cr_assert_eq(scrape_cache_series_count(c), 3000);
    }
    snprintf(text, sizeof text, "m{i=\"%d\"}", 50 * 40 - 1);
    cr_assert_null(scrape_cache_find(c, key(text)));
    cr_assert_gt(scrape_cache_bytes(c), 3000 * sizeof(struct scrape_cache_entry));
    cr_assert_lt(scrape_cache_bytes(c), 3000 * 200, "no per-text copies");
    scrape_cache_destroy(c);
}

struct meta_seen {
    int n;
    char help[64];
    enum scrape_metric_type type;
};

static void meta_fn(void *ctx, struct mp_str family, enum scrape_metric_type t, struct mp_str help,
                    struct mp_str unit)
{
    struct meta_seen *m = ctx;
    (void)unit;
    if (mp_str_eq(family, MP_STR_LIT("fam"))) {
        snprintf(m->help, sizeof m->help, "%.*s", (int)help.len, help.ptr);
        m->type = t;
    }
    m->n++;
}

Test(scrape_cache, metadata_is_kept_and_expires)
{
    struct scrape_cache *c = scrape_cache_create();
    scrape_cache_meta_type(c, MP_STR_LIT("fam"), SCRAPE_TYPE_COUNTER, 1);
    scrape_cache_meta_help(c, MP_STR_LIT("fam"), MP_STR_LIT("a \\\\ b"), true, true, 1);
    scrape_cache_meta_unit(c, MP_STR_LIT("other"), MP_STR_LIT("seconds"), 1);
    struct meta_seen m = {0};
    scrape_cache_meta_each(c, meta_fn, &m);
    cr_assert_eq(m.n, 2);
    cr_assert_str_eq(m.help, "a \\ b");
    cr_assert_eq(m.type, SCRAPE_TYPE_COUNTER);
    scrape_cache_iter_done(c, 11); /* 10 attempts later: kept */
    m = (struct meta_seen){0};
    scrape_cache_meta_each(c, meta_fn, &m);
    cr_assert_eq(m.n, 2);
    scrape_cache_iter_done(c, 12);
    m = (struct meta_seen){0};
    scrape_cache_meta_each(c, meta_fn, &m);
    cr_assert_eq(m.n, 0);
    scrape_cache_destroy(c);
}

static uint64_t same_hash(const void *text, size_t len)
{
    (void)text, (void)len;
    return 42;
}

Test(scrape_cache, texts_whose_hashes_collide_stay_apart)
{
    scrape_cache_test_hash = same_hash; /* every text: the same low half, one probe chain */
    struct scrape_cache *c = scrape_cache_create();
    add(c, "a{x=\"1\"}", 7, 1);
    add(c, "a{x=\"2\"}", 8, 1); /* same length too */
    add(c, "b", 9, 1);
    cr_assert_eq(key("a{x=\"1\"}").lo, key("b").lo);
    cr_assert_eq(scrape_cache_entry_series(c, scrape_cache_find(c, key("a{x=\"1\"}")))->ref, 7);
    cr_assert_eq(scrape_cache_entry_series(c, scrape_cache_find(c, key("a{x=\"2\"}")))->ref, 8);
    cr_assert_eq(scrape_cache_entry_series(c, scrape_cache_find(c, key("b")))->ref, 9);
    cr_assert_null(scrape_cache_find(c, key("a{x=\"3\"}")));
    cr_assert_null(scrape_cache_find(c, key("c")));
    scrape_cache_destroy(c);
    scrape_cache_test_hash = NULL;
}

/* A new attempt whose lines come as predicted: want[0..n). */
static void expect_order(struct scrape_cache *c, const char *const *want, int n)
{
    scrape_cache_order_begin(c);
    for (int i = 0; i < n; i++) {
        struct scrape_cache_entry *e = scrape_cache_predict(c);
        cr_assert_not_null(e, "guess %d", i);
        cr_assert(scrape_cache_key_matches(e, key(want[i])), "guess %d", i);
        scrape_cache_order_note(c, e);
    }
}

Test(scrape_cache, predicts_the_order_of_the_last_attempt)
{
    struct scrape_cache *c = scrape_cache_create();
    scrape_cache_order_begin(c);
    cr_assert_null(scrape_cache_predict(c));
    struct scrape_cache_entry *e = add(c, "a", 1, 1);
    scrape_cache_order_note(c, e);
    scrape_cache_order_note(c, add(c, "b", 2, 1));
    scrape_cache_order_note(c, add(c, "c", 3, 1));
    const char *want[] = {"a", "b", "c"};
    expect_order(c, want, 3);
    /* b goes and d comes after a: after a the guess (b) is gone, after d none yet */
    scrape_cache_order_begin(c);
    scrape_cache_order_note(c, scrape_cache_find(c, key("a")));
    scrape_cache_iter_done(c, 1); /* nothing seen in attempt 1 is kept... */
    cr_assert_eq(scrape_cache_entries(c), 3, "...all were added in attempt 1");
    scrape_cache_forget(c, scrape_cache_find(c, key("b")));
    cr_assert_null(scrape_cache_predict(c), "a deleted entry is no guess");
    scrape_cache_order_note(c, add(c, "d", 4, 2));
    cr_assert_null(scrape_cache_predict(c));
    scrape_cache_order_note(c, scrape_cache_find(c, key("c")));
    const char *want2[] = {"a", "d", "c"};
    expect_order(c, want2, 3);
    /* growth moves the slots: the order is learnt again, never a wrong entry */
    for (int i = 0; i < 100; i++) {
        char t[16];
        snprintf(t, sizeof t, "g%d", i);
        add(c, t, 10 + (uint64_t)i, 2);
    }
    scrape_cache_order_begin(c);
    e = scrape_cache_predict(c);
    cr_assert(!e || scrape_cache_key_matches(e, key("a")));
    scrape_cache_destroy(c);
}
