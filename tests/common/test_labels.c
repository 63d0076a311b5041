/* SPDX-License-Identifier: Apache-2.0 */
/* tests/common/test_labels.c: interner, label sets, hashes against an independent XXH64 oracle,
 * Go-style text form, validation and the relabeling builder. Criterion forks every test, so
 * each one starts with an empty interner. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "common/labels_internal.h"
#include "common/str.h"

#define S(lit) MP_STR_LIT(lit)
#define L(n, v) ((struct mp_label){S(n), S(v)})

static size_t live_strings(void)
{
    size_t n;
    mp_intern_stats(&n, NULL);
    return n;
}

/* Heap bytes not held by the interner (its tables and slab chunks outlive their strings). */
static size_t outside_interner_bytes(void)
{
    size_t b;
    mp_intern_stats(NULL, &b);
    return mp_alloc_used_bytes() - b;
}

static struct mp_labels *mk(const struct mp_label *in, size_t n)
{
    struct mp_labels *ls = NULL;
    struct mp_err err;
    mp_err_clear(&err);
    int rc = mp_labels_create(in, n, &ls, &err);
    cr_assert_eq(rc, 0, "create: %s", err.msg);
    return ls;
}

/* Text form of ls in a static buffer (tests only). */
static const char *fmt(const struct mp_labels *ls)
{
    static char out[4096];
    struct mp_buf b;
    mp_buf_init(&b, 0);
    cr_assert_eq(mp_labels_format(ls, &b), 0);
    cr_assert_lt(b.len, sizeof out);
    memcpy(out, b.data, b.len + 1);
    mp_buf_fini(&b);
    return out;
}

static const char *quote(struct mp_str s)
{
    static char out[1024];
    struct mp_buf b;
    mp_buf_init(&b, 0);
    cr_assert_eq(mp_label_quote(&b, s), 0);
    memcpy(out, b.data, b.len + 1);
    mp_buf_fini(&b);
    return out;
}

/* Oracle: Prometheus's hash input built by hand, name 0xff value 0xff per label. */
static uint64_t oracle_hash(const char *const *kv, size_t npairs)
{
    static char buf[1 << 16];
    size_t len = 0;
    for (size_t i = 0; i < 2 * npairs; i++) {
        size_t l = strlen(kv[i]);
        memcpy(buf + len, kv[i], l);
        len += l;
        buf[len++] = '\xff';
    }
    return XXH64(buf, len, 0);
}

/* ---- interner ------------------------------------------------------------------------- */

Test(intern, same_content_same_pointer_and_refcount_frees_last)
{
    size_t base_n;
    mp_intern_stats(&base_n, NULL);
    cr_assert_eq(base_n, 0);

    const struct mp_istr *a = NULL, *b = NULL, *c = NULL;
    char tmp[] = "node_exporter";
    cr_assert_eq(mp_intern_acquire(mp_str_c(tmp), &a), 0);
    memset(tmp, 'x', 4); /* the interner must have copied */
    cr_assert_eq(mp_intern_acquire(S("node_exporter"), &b), 0);
    cr_assert_eq(a, b);
    cr_assert_str_eq(mp_istr_cstr(a), "node_exporter");
    cr_assert_eq(mp_istr_len(a), 13);
    cr_assert_eq(mp_intern_acquire(S("node"), &c), 0);
    cr_assert_neq(a, c);
    cr_assert_eq(live_strings(), 2);

    mp_intern_release(a);
    cr_assert_eq(live_strings(), 2, "one reference is still held");
    cr_assert_str_eq(mp_istr_cstr(b), "node_exporter");
    const struct mp_istr *d = mp_intern_dup(b);
    mp_intern_release(b);
    cr_assert_eq(live_strings(), 2);
    mp_intern_release(d);
    cr_assert_eq(live_strings(), 1, "last release frees the string");
    mp_intern_release(c);
    cr_assert_eq(live_strings(), 0);
    mp_intern_release(NULL);
}

Test(intern, bytes_follow_long_strings_and_embedded_nul)
{
    char big[4000];
    memset(big, 'v', sizeof big);
    size_t b0, b1, b2;
    mp_intern_stats(NULL, &b0);
    const struct mp_istr *s = NULL;
    cr_assert_eq(mp_intern_acquire((struct mp_str){big, sizeof big}, &s), 0);
    mp_intern_stats(NULL, &b1);
    cr_assert_geq(b1, b0 + sizeof big, "long string counted: %zu -> %zu", b0, b1);
    mp_intern_release(s);
    mp_intern_stats(NULL, &b2);
    cr_assert_leq(b2, b1 - sizeof big, "long string's memory given back");

    const struct mp_istr *x = NULL, *y = NULL;
    cr_assert_eq(mp_intern_acquire((struct mp_str){"a\0b", 3}, &x), 0);
    cr_assert_eq(mp_intern_acquire((struct mp_str){"a\0c", 3}, &y), 0);
    cr_assert_neq(x, y, "content after a NUL byte counts");
    cr_assert_eq(mp_istr_len(x), 3);
    mp_intern_release(x);
    mp_intern_release(y);

    const struct mp_istr *e = NULL;
    cr_assert_eq(mp_intern_acquire((struct mp_str){NULL, 0}, &e), 0);
    cr_assert_str_eq(mp_istr_cstr(e), "");
    mp_intern_release(e);
    cr_assert_eq(live_strings(), 0);
}

Test(intern, churn_many_strings_across_stripes)
{
    enum { N = 20000 };
    static const struct mp_istr *held[N];
    char buf[32];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            int len = snprintf(buf, sizeof buf, "pod-%d-%d", round, i);
            cr_assert_eq(mp_intern_acquire((struct mp_str){buf, (size_t)len}, &held[i]), 0);
        }
        cr_assert_eq(live_strings(), N);
        /* every string is still found after the table grew */
        for (int i = 0; i < N; i += 997) {
            int len = snprintf(buf, sizeof buf, "pod-%d-%d", round, i);
            const struct mp_istr *again = NULL;
            cr_assert_eq(mp_intern_acquire((struct mp_str){buf, (size_t)len}, &again), 0);
            cr_assert_eq(again, held[i]);
            mp_intern_release(again);
        }
        /* release odd ones first so deletion shifts clusters, then check the rest */
        for (int i = 1; i < N; i += 2)
            mp_intern_release(held[i]);
        for (int i = 0; i < N; i += 2) {
            int len = snprintf(buf, sizeof buf, "pod-%d-%d", round, i);
            cr_assert_str_eq(mp_istr_cstr(held[i]), buf);
            const struct mp_istr *again = NULL;
            cr_assert_eq(mp_intern_acquire((struct mp_str){buf, (size_t)len}, &again), 0);
            cr_assert_eq(again, held[i], "lost %s after deletions", buf);
            mp_intern_release(again);
        }
        for (int i = 0; i < N; i += 2)
            mp_intern_release(held[i]);
        cr_assert_eq(live_strings(), 0);
    }
}

Test(intern, injected_allocation_failure_leaves_nothing_behind)
{
    const struct mp_istr *s = NULL;
    mp_alloc_fail_at(1);
    cr_assert_eq(mp_intern_acquire(S("job"), &s), MP_ENOMEM);
    cr_assert_null(s);
    mp_alloc_fail_at(0);
    cr_assert_eq(mp_intern_acquire(S("job"), &s), 0);
    cr_assert_eq(live_strings(), 1);
    mp_intern_release(s);
}

#define THREADS 4
#define SHARED 2000
#define ROUNDS 20

struct worker {
    int id;
    const struct mp_istr *shared[SHARED];
    int failures;
};

static void *intern_worker(void *arg)
{
    struct worker *w = arg;
    char buf[32];
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < SHARED; i++) {
            int len = snprintf(buf, sizeof buf, "value-%d", i);
            const struct mp_istr *s = NULL;
            if (mp_intern_acquire((struct mp_str){buf, (size_t)len}, &s) != 0 ||
                strcmp(mp_istr_cstr(s), buf) != 0) {
                w->failures++;
                continue;
            }
            /* keep one reference from the first round, drop the others at once: the other
             * threads race these strings through 1 -> 0 -> 1 */
            if (r == 0)
                w->shared[i] = s;
            else
                mp_intern_release(s);
            len = snprintf(buf, sizeof buf, "t%d-%d-%d", w->id, r, i);
            if (mp_intern_acquire((struct mp_str){buf, (size_t)len}, &s) != 0) {
                w->failures++;
                continue;
            }
            mp_intern_release(s);
        }
    }
    return NULL;
}

Test(intern, concurrent_acquire_release_from_four_threads)
{
    static struct worker w[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i].id = i;
        cr_assert_eq(pthread_create(&th[i], NULL, intern_worker, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(w[i].failures, 0);
    cr_assert_eq(live_strings(), SHARED, "only the held strings remain: %zu", live_strings());
    for (int i = 0; i < SHARED; i++)
        for (int t = 1; t < THREADS; t++)
            cr_assert_eq(w[t].shared[i], w[0].shared[i], "one object per content");
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < SHARED; i++)
            mp_intern_release(w[t].shared[i]);
    cr_assert_eq(live_strings(), 0);
}

/* ---- label sets ----------------------------------------------------------------------- */

Test(labels, create_sorts_and_gets)
{
    struct mp_label in[] = {L("job", "node"), L("__name__", "up"), L("instance", "a:9100"),
                            L("Zeta", "1")};
    struct mp_labels *ls = mk(in, 4);
    cr_assert_eq(mp_labels_count(ls), 4);
    const char *want[] = {"Zeta", "__name__", "instance", "job"}; /* byte order: 'Z' < '_' */
    for (size_t i = 0; i < 4; i++)
        cr_assert_str_eq(mp_labels_at(ls, i).name.ptr, want[i]);
    cr_assert(mp_str_eq(mp_labels_get(ls, S("instance")), S("a:9100")));
    cr_assert(mp_str_eq(mp_labels_get(ls, S("Zeta")), S("1")));
    cr_assert_eq(mp_labels_get(ls, S("absent")).len, 0);
    cr_assert_not_null(mp_labels_get(ls, S("absent")).ptr);
    cr_assert(mp_labels_has(ls, S("job")));
    cr_assert_not(mp_labels_has(ls, S("jo")));
    cr_assert(mp_str_eq(mp_labels_metric_name(ls), S("up")));
    cr_assert_str_eq(fmt(ls), "{Zeta=\"1\", __name__=\"up\", instance=\"a:9100\", job=\"node\"}");
    mp_labels_release(ls);
    cr_assert_eq(live_strings(), 0);
}

Test(labels, create_rejects_duplicate_names_without_leaking)
{
    struct mp_label in[] = {L("b", "1"), L("a", "2"), L("b", "3")};
    struct mp_labels *ls = NULL;
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(mp_labels_create(in, 3, &ls, &err), MP_EINVAL);
    cr_assert_null(ls);
    cr_assert(strstr(err.msg, "\"b\"") != NULL, "message names the label: %s", err.msg);
    cr_assert_eq(live_strings(), 0);
    cr_assert_eq(mp_labels_create(in, 2, &ls, NULL), 0);
    mp_labels_release(ls);
}

Test(labels, keeps_empty_values_and_empty_set)
{
    struct mp_label in[] = {L("a", ""), L("b", "x")};
    struct mp_labels *ls = mk(in, 2);
    cr_assert_eq(mp_labels_count(ls), 2, "labels.New keeps empty values");
    cr_assert(mp_labels_has(ls, S("a")));
    cr_assert_str_eq(fmt(ls), "{a=\"\", b=\"x\"}");
    mp_labels_release(ls);

    struct mp_labels *e = mk(NULL, 0);
    cr_assert_eq(e, mp_labels_empty());
    cr_assert_eq(mp_labels_count(e), 0);
    cr_assert_str_eq(fmt(e), "{}");
    cr_assert_eq(mp_labels_hash(e), XXH64("", 0, 0));
    cr_assert_eq(mp_labels_metric_name(e).len, 0);
    mp_labels_release(mp_labels_acquire(e));
    mp_labels_release(e);
    mp_labels_release(NULL);
}

Test(labels, injected_failures_report_nomem_and_leak_nothing)
{
    struct mp_label in[] = {L("job", "node"), L("__name__", "up"), L("zone", "eu")};
    size_t before = outside_interner_bytes();
    int failures = 0;
    for (uint64_t k = 1; k < 100; k++) {
        struct mp_labels *ls = NULL;
        mp_alloc_fail_at(k);
        int rc = mp_labels_create(in, 3, &ls, NULL);
        mp_alloc_fail_at(0);
        if (rc == 0) {
            cr_assert_str_eq(fmt(ls), "{__name__=\"up\", job=\"node\", zone=\"eu\"}");
            mp_labels_release(ls);
            break;
        }
        failures++;
        cr_assert_eq(rc, MP_ENOMEM);
        cr_assert_eq(live_strings(), 0, "failure at allocation %llu leaked strings",
                     (unsigned long long)k);
    }
    cr_assert_geq(failures, 1);
    cr_assert_eq(live_strings(), 0);
    cr_assert_eq(outside_interner_bytes(), before, "every allocation returned");
}

Test(labels, shared_refcount)
{
    struct mp_label in[] = {L("a", "1")};
    struct mp_labels *ls = mk(in, 1);
    struct mp_labels *again = mp_labels_acquire(ls);
    cr_assert_eq(again, ls);
    mp_labels_release(ls);
    cr_assert_eq(live_strings(), 2, "still referenced");
    cr_assert_str_eq(fmt(again), "{a=\"1\"}");
    mp_labels_release(again);
    cr_assert_eq(live_strings(), 0);
}

Test(labels, compare_and_equal)
{
    struct mp_label a_in[] = {L("a", "1"), L("b", "2")};
    struct mp_label a2_in[] = {L("b", "2"), L("a", "1")};
    struct mp_label b_in[] = {L("a", "1"), L("b", "3")};
    struct mp_label c_in[] = {L("a", "1")};
    struct mp_label d_in[] = {L("a", "1"), L("c", "0")};
    struct mp_label e_in[] = {L("a", "10")};
    struct mp_labels *a = mk(a_in, 2), *a2 = mk(a2_in, 2), *b = mk(b_in, 2), *c = mk(c_in, 1),
                     *d = mk(d_in, 2), *e = mk(e_in, 1);
    cr_assert_neq(a, a2);
    cr_assert(mp_labels_equal(a, a2));
    cr_assert_eq(mp_labels_compare(a, a2), 0);
    cr_assert_eq(mp_labels_hash(a), mp_labels_hash(a2));
    cr_assert_not(mp_labels_equal(a, b));
    cr_assert_lt(mp_labels_compare(a, b), 0, "value decides");
    cr_assert_gt(mp_labels_compare(b, a), 0);
    cr_assert_lt(mp_labels_compare(c, a), 0, "prefix sorts first");
    cr_assert_gt(mp_labels_compare(a, c), 0);
    cr_assert_lt(mp_labels_compare(a, d), 0, "name b < c decides");
    cr_assert_lt(mp_labels_compare(c, e), 0, "value 1 < 10");
    cr_assert_gt(mp_labels_compare(e, a), 0, "value 10 > 1 before the length");
    cr_assert_not(mp_labels_equal(c, e));
    cr_assert_lt(mp_labels_compare(mp_labels_empty(), c), 0);
    cr_assert_eq(mp_labels_name_at(a, 1), mp_labels_name_at(b, 1), "names are shared");
    struct mp_labels *all[] = {a, a2, b, c, d, e};
    for (size_t i = 0; i < 6; i++)
        mp_labels_release(all[i]);
    cr_assert_eq(live_strings(), 0);
}

Test(labels, hash_matches_prometheus)
{
    struct mp_label in[] = {L("job", "node"), L("__name__", "up"), L("instance", "a:9100")};
    struct mp_labels *ls = mk(in, 3);
    const char *kv[] = {"__name__", "up", "instance", "a:9100", "job", "node"};
    cr_assert_eq(mp_labels_hash(ls), oracle_hash(kv, 3));
    /* the same buffer spelled out byte by byte, to catch an oracle that shares our bug */
    static const char raw[] = "__name__\xffup\xff" "instance\xff" "a:9100\xffjob\xffnode\xff";
    cr_assert_eq(mp_labels_hash(ls), XXH64(raw, sizeof raw - 1, 0));
    mp_labels_release(ls);

    /* past 1 KiB Prometheus switches to a streaming digest; the value must not change */
    static char big[3000];
    memset(big, 'q', sizeof big - 1);
    struct mp_label large_in[] = {L("a", "x"), {S("b"), mp_str_c(big)}, L("c", "y")};
    struct mp_labels *large = mk(large_in, 3);
    const char *kv2[] = {"a", "x", "b", big, "c", "y"};
    cr_assert_eq(mp_labels_hash(large), oracle_hash(kv2, 3));
    mp_labels_release(large);

    /* many small labels crossing the 1 KiB boundary part way */
    struct mp_label many[100];
    char names[100][8], values[100][16];
    const char *kv3[200];
    for (int i = 0; i < 100; i++) {
        snprintf(names[i], sizeof names[i], "l%02d", i);
        snprintf(values[i], sizeof values[i], "value-%d", i * 7);
        many[i] = (struct mp_label){mp_str_c(names[i]), mp_str_c(values[i])};
        kv3[2 * i] = names[i];
        kv3[2 * i + 1] = values[i];
    }
    struct mp_labels *m = mk(many, 100);
    cr_assert_eq(mp_labels_hash(m), oracle_hash(kv3, 100));
    mp_labels_release(m);
}

Test(labels, subset_hashes)
{
    struct mp_label in[] = {L("__name__", "http_requests_total"), L("code", "200"),
                            L("instance", "a"), L("job", "api")};
    struct mp_labels *ls = mk(in, 4);

    struct mp_str on[] = {S("job"), S("code"), S("missing")};
    const char *for_kv[] = {"code", "200", "job", "api"};
    cr_assert_eq(mp_labels_hash_for(ls, on, 3), oracle_hash(for_kv, 2), "any name order");
    struct mp_str on_name[] = {S("__name__")};
    const char *name_kv[] = {"__name__", "http_requests_total"};
    cr_assert_eq(mp_labels_hash_for(ls, on_name, 1), oracle_hash(name_kv, 1),
                 "on(__name__) keeps the name");
    cr_assert_eq(mp_labels_hash_for(ls, NULL, 0), XXH64("", 0, 0));

    struct mp_str ign[] = {S("instance")};
    const char *without_kv[] = {"code", "200", "job", "api"};
    cr_assert_eq(mp_labels_hash_without(ls, ign, 1), oracle_hash(without_kv, 2),
                 "without always drops __name__");
    const char *without_none[] = {"code", "200", "instance", "a", "job", "api"};
    cr_assert_eq(mp_labels_hash_without(ls, NULL, 0), oracle_hash(without_none, 3));
    struct mp_str all[] = {S("code"), S("instance"), S("job")};
    cr_assert_eq(mp_labels_hash_without(ls, all, 3), XXH64("", 0, 0));
    cr_assert_neq(mp_labels_hash_without(ls, NULL, 0), mp_labels_hash(ls));
    mp_labels_release(ls);
}

/* ---- text form ------------------------------------------------------------------------ */

Test(format, go_quoting_of_values)
{
    cr_assert_str_eq(quote(S("plain")), "\"plain\"");
    cr_assert_str_eq(quote(S("")), "\"\"");
    cr_assert_str_eq(quote(S("say \"hi\"")), "\"say \\\"hi\\\"\"");
    cr_assert_str_eq(quote(S("C:\\dir")), "\"C:\\\\dir\"");
    cr_assert_str_eq(quote(S("a\nb\tc\rd")), "\"a\\nb\\tc\\rd\"");
    cr_assert_str_eq(quote(S("\a\b\f\v")), "\"\\a\\b\\f\\v\"");
    cr_assert_str_eq(quote(((struct mp_str){"\x00\x01\x1f\x7f", 4})), "\"\\x00\\x01\\x1f\\x7f\"");
    cr_assert_str_eq(quote(S("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80")),
                     "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"", "printable UTF-8 raw");
    cr_assert_str_eq(quote(S("\xff")), "\"\\xff\"", "invalid byte");
    cr_assert_str_eq(quote(S("a\xc3")), "\"a\\xc3\"", "truncated sequence");
    cr_assert_str_eq(quote(S("\xc0\xaf")), "\"\\xc0\\xaf\"", "overlong");
    cr_assert_str_eq(quote(S("\xed\xa0\x80")), "\"\\xed\\xa0\\x80\"", "surrogate");
    cr_assert_str_eq(quote(S("\xc2\x85")), "\"\\u0085\"", "C1 control");
    cr_assert_str_eq(quote(S("\xc2\xa0")), "\"\\u00a0\"", "no-break space is not printable");
    cr_assert_str_eq(quote(S("\xe2\x80\x8b")), "\"\\u200b\"", "zero width space");
    cr_assert_str_eq(quote(S("\xef\xbb\xbf")), "\"\\ufeff\"", "BOM");
    cr_assert_str_eq(quote(S("\xee\x80\x80")), "\"\\ue000\"", "private use");
    cr_assert_str_eq(quote(S("\xf3\xb0\x80\x80")), "\"\\U000f0000\"", "plane 15 private use");
    cr_assert_str_eq(quote(S("\xef\xbf\xbd")), "\"\xef\xbf\xbd\"", "real U+FFFD is printable");
}

Test(format, labels_string_form)
{
    struct mp_label in[] = {L("path", "/a\"b\\c\n"), L("le", "+Inf"), L("bad-name", "v")};
    struct mp_labels *ls = mk(in, 3);
    cr_assert_str_eq(fmt(ls),
                     "{\"bad-name\"=\"v\", le=\"+Inf\", path=\"/a\\\"b\\\\c\\n\"}");
    struct mp_buf small;
    mp_buf_init(&small, 8);
    cr_assert_eq(mp_labels_format(ls, &small), MP_ELIMIT, "the buffer cap is honoured");
    mp_buf_fini(&small);
    mp_labels_release(ls);
}

/* ---- validation ----------------------------------------------------------------------- */

Test(validate, label_and_metric_names)
{
    cr_assert(mp_label_name_is_valid(S("a")));
    cr_assert(mp_label_name_is_valid(S("_")));
    cr_assert(mp_label_name_is_valid(S("__name__")));
    cr_assert(mp_label_name_is_valid(S("Abc_09")));
    cr_assert_not(mp_label_name_is_valid(S("")));
    cr_assert_not(mp_label_name_is_valid(S("0a")));
    cr_assert_not(mp_label_name_is_valid(S("a:b")), "colon only in metric names");
    cr_assert_not(mp_label_name_is_valid(S("a-b")));
    cr_assert_not(mp_label_name_is_valid(S("a.b")));
    cr_assert_not(mp_label_name_is_valid(S("caf\xc3\xa9")));
    cr_assert_not(mp_label_name_is_valid(((struct mp_str){"a\0b", 3})));

    cr_assert(mp_metric_name_is_valid(S("up")));
    cr_assert(mp_metric_name_is_valid(S(":a")));
    cr_assert(mp_metric_name_is_valid(S("job:rate5m:sum")));
    cr_assert(mp_metric_name_is_valid(S("_9")));
    cr_assert_not(mp_metric_name_is_valid(S("")));
    cr_assert_not(mp_metric_name_is_valid(S("9a")));
    cr_assert_not(mp_metric_name_is_valid(S("a b")));
    cr_assert_not(mp_metric_name_is_valid(S("a{")));
    /* every byte: only the documented sets pass */
    for (int c = 0; c < 256; c++) {
        char ch = (char)c;
        struct mp_str one = {&ch, 1};
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        bool digit = c >= '0' && c <= '9';
        cr_assert_eq(mp_label_name_is_valid(one), alpha, "byte %d", c);
        cr_assert_eq(mp_metric_name_is_valid(one), alpha || c == ':', "byte %d", c);
        char two[2] = {'a', ch};
        cr_assert_eq(mp_label_name_is_valid(((struct mp_str){two, 2})), alpha || digit);
        cr_assert_eq(mp_metric_name_is_valid(((struct mp_str){two, 2})),
                     alpha || digit || c == ':');
    }
}

Test(validate, label_values_are_utf8)
{
    cr_assert(mp_label_value_is_valid(S("")));
    cr_assert(mp_label_value_is_valid(S("any ascii \t\n")));
    cr_assert(mp_label_value_is_valid(S("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80")));
    cr_assert(mp_label_value_is_valid(S("\xf4\x8f\xbf\xbf")), "U+10FFFF");
    cr_assert(mp_label_value_is_valid(((struct mp_str){"\0", 1})));
    cr_assert_not(mp_label_value_is_valid(S("\xff")));
    cr_assert_not(mp_label_value_is_valid(S("\x80")), "lone continuation");
    cr_assert_not(mp_label_value_is_valid(S("\xc0\x80")), "overlong NUL");
    cr_assert_not(mp_label_value_is_valid(S("\xe0\x80\xaf")), "overlong 3-byte");
    cr_assert_not(mp_label_value_is_valid(S("\xed\xa0\x80")), "surrogate");
    cr_assert_not(mp_label_value_is_valid(S("\xf4\x90\x80\x80")), "above U+10FFFF");
    cr_assert_not(mp_label_value_is_valid(S("ok\xe2\x82")), "truncated at the end");
    cr_assert_not(mp_label_value_is_valid(S("\xe2\x28\xa1")), "bad continuation");
}

/* ---- builder -------------------------------------------------------------------------- */

static struct mp_labels *built(struct mp_labels_builder *b)
{
    struct mp_labels *ls = NULL;
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(mp_labels_builder_labels(b, &ls, &err), 0, "%s", err.msg);
    return ls;
}

Test(builder, set_del_overwrite_and_empty_deletes)
{
    struct mp_label in[] = {L("job", "node"), L("instance", "a:9100"), L("env", "")};
    struct mp_labels *base = mk(in, 3);
    struct mp_labels_builder *b = mp_labels_builder_create();
    mp_labels_builder_reset(b, base);
    cr_assert_eq(mp_labels_builder_count(b), 2, "empty base labels are dropped");
    cr_assert_eq(mp_labels_builder_get(b, S("env")).len, 0);

    cr_assert_eq(mp_labels_builder_set(b, S("zone"), S("eu-1")), 0);
    cr_assert_eq(mp_labels_builder_set(b, S("job"), S("api")), 0);
    cr_assert_eq(mp_labels_builder_set(b, S("job"), S("api2")), 0);
    cr_assert_eq(mp_labels_builder_set(b, S("instance"), S("")), 0);
    mp_labels_builder_del(b, S("absent"));
    cr_assert(mp_str_eq(mp_labels_builder_get(b, S("job")), S("api2")));
    cr_assert_eq(mp_labels_builder_get(b, S("instance")).len, 0);
    cr_assert_eq(mp_labels_builder_count(b), 2);
    cr_assert_eq(mp_labels_builder_set(b, S("a"), S("first")), 0);

    struct mp_labels *out = built(b);
    cr_assert_str_eq(fmt(out), "{a=\"first\", job=\"api2\", zone=\"eu-1\"}");
    const char *kv[] = {"a", "first", "job", "api2", "zone", "eu-1"};
    cr_assert_eq(mp_labels_hash(out), oracle_hash(kv, 3));
    cr_assert_str_eq(fmt(base), "{env=\"\", instance=\"a:9100\", job=\"node\"}",
                     "the base is untouched");

    mp_labels_builder_del(b, S("a"));
    mp_labels_builder_del(b, S("job"));
    mp_labels_builder_del(b, S("zone"));
    struct mp_labels *none = built(b);
    cr_assert_eq(mp_labels_count(none), 0);

    mp_labels_builder_reset(b, NULL);
    cr_assert_eq(mp_labels_builder_count(b), 0);
    cr_assert_eq(mp_labels_builder_set(b, S("x"), S("1")), 0);
    struct mp_labels *x = built(b);
    cr_assert_str_eq(fmt(x), "{x=\"1\"}");

    mp_labels_release(out);
    mp_labels_release(none);
    mp_labels_release(x);
    mp_labels_release(base);
    mp_labels_builder_destroy(b);
    mp_labels_builder_destroy(NULL);
    cr_assert_eq(live_strings(), 0);
}

Test(builder, unchanged_returns_base_and_equal_rebuild_is_equal)
{
    struct mp_label in[] = {L("job", "node"), L("instance", "a")};
    struct mp_labels *base = mk(in, 2);
    struct mp_labels_builder *b = mp_labels_builder_create();
    mp_labels_builder_reset(b, base);
    struct mp_labels *same = built(b);
    cr_assert_eq(same, base);
    cr_assert_eq(mp_labels_builder_set(b, S("job"), S("node")), 0, "same value: no change");
    struct mp_labels *same2 = built(b);
    cr_assert_eq(same2, base);
    cr_assert_eq(mp_labels_builder_set(b, S("job"), S("other")), 0);
    cr_assert_eq(mp_labels_builder_set(b, S("job"), S("node")), 0);
    struct mp_labels *rebuilt = built(b);
    cr_assert(mp_labels_equal(rebuilt, base));
    cr_assert_eq(mp_labels_hash(rebuilt), mp_labels_hash(base));
    mp_labels_release(base); /* the builder keeps its own reference */
    mp_labels_release(same);
    mp_labels_release(same2);
    cr_assert_str_eq(fmt(rebuilt), "{instance=\"a\", job=\"node\"}");
    mp_labels_release(rebuilt);
    mp_labels_builder_destroy(b);
    cr_assert_eq(live_strings(), 0);
}

struct prefix_ctx {
    struct mp_labels_builder *b;
    int visits;
    int errors;
};

/* labelmap-like: copy every label to "new_<name>", reusing the borrowed value slice */
static bool copy_with_prefix(void *arg, struct mp_str name, struct mp_str value)
{
    struct prefix_ctx *c = arg;
    char buf[64];
    int n = snprintf(buf, sizeof buf, "new_%.*s", (int)name.len, name.ptr);
    c->visits++;
    if (mp_labels_builder_set(c->b, (struct mp_str){buf, (size_t)n}, value) != 0)
        c->errors++;
    mp_labels_builder_del(c->b, name);
    /* the slices stay valid across set/del on the builder */
    if (value.ptr[value.len] != '\0')
        c->errors++;
    return true;
}

static bool keep_non_tmp(void *arg, struct mp_str name, struct mp_str value)
{
    (void)arg;
    (void)value;
    return !(name.len >= 6 && memcmp(name.ptr, "__tmp_", 6) == 0);
}

static bool stop_after_one(void *arg, struct mp_str name, struct mp_str value)
{
    (void)name;
    (void)value;
    ++*(int *)arg;
    return false;
}

Test(builder, range_may_modify_and_filter_drops)
{
    struct mp_labels_builder *b = mp_labels_builder_create();
    mp_labels_builder_reset(b, NULL);
    cr_assert_eq(mp_labels_builder_set(b, S("b"), S("2")), 0);
    cr_assert_eq(mp_labels_builder_set(b, S("a"), S("1")), 0);
    struct prefix_ctx c = {b, 0, 0};
    mp_labels_builder_range(b, copy_with_prefix, &c);
    cr_assert_eq(c.visits, 2, "labels added during the visit are not visited");
    cr_assert_eq(c.errors, 0);
    struct mp_labels *out = built(b);
    cr_assert_str_eq(fmt(out), "{new_a=\"1\", new_b=\"2\"}");
    mp_labels_release(out);

    int n = 0;
    mp_labels_builder_range(b, stop_after_one, &n);
    cr_assert_eq(n, 1);

    cr_assert_eq(mp_labels_builder_set(b, S("__tmp_x"), S("y")), 0);
    cr_assert_eq(mp_labels_builder_set(b, S("__tmp_"), S("z")), 0);
    mp_labels_builder_filter(b, keep_non_tmp, NULL);
    out = built(b);
    cr_assert_str_eq(fmt(out), "{new_a=\"1\", new_b=\"2\"}");
    mp_labels_release(out);

    /* a value borrowed from the builder itself is a valid argument */
    cr_assert_eq(mp_labels_builder_set(b, S("copy"), mp_labels_builder_get(b, S("new_b"))), 0);
    cr_assert(mp_str_eq(mp_labels_builder_get(b, S("copy")), S("2")));
    mp_labels_builder_destroy(b);
    cr_assert_eq(live_strings(), 0);
}

Test(builder, steady_state_reuse_does_not_allocate)
{
    struct mp_label in[] = {L("__address__", "10.0.0.1:9100"), L("__meta_pod", "web-1"),
                            L("job", "k8s")};
    struct mp_labels *base = mk(in, 3);
    struct mp_labels_builder *b = mp_labels_builder_create();
    char val[64];
    for (int round = 0; round < 2; round++) {
        if (round == 1)
            mp_alloc_fail_at(1); /* warm now: any fallible allocation would fail */
        for (int t = 0; t < 50; t++) {
            mp_labels_builder_reset(b, base);
            int n = snprintf(val, sizeof val, "10.0.0.%d:9100", t);
            cr_assert_eq(mp_labels_builder_set(b, S("instance"), (struct mp_str){val, (size_t)n}),
                         0, "round %d target %d", round, t);
            cr_assert_eq(mp_labels_builder_set(b, S("pod"), mp_labels_builder_get(b, S("__meta_pod"))),
                         0);
            mp_labels_builder_del(b, S("__meta_pod"));
            mp_labels_builder_del(b, S("__address__"));
            cr_assert_eq(mp_labels_builder_count(b), 3);
        }
    }
    void *probe = mp_malloc(1);
    cr_assert_null(probe, "the armed failure was not consumed by the builder");
    mp_alloc_fail_at(0);
    struct mp_labels *out = built(b);
    cr_assert_str_eq(fmt(out), "{instance=\"10.0.0.49:9100\", job=\"k8s\", pod=\"web-1\"}");
    cr_assert_eq(mp_labels_value_at(out, 2), mp_labels_value_at(base, 1),
                 "equal content is the same interned object");
    mp_labels_release(out);
    mp_labels_release(base);
    mp_labels_builder_destroy(b);
    cr_assert_eq(live_strings(), 0);
}

/* set_borrowed keeps the caller's bytes (no arena copy: the slice handed back is the caller's),
 * set_interned keeps another set's strings (labels() shares them, and no copy is made either);
 * both delete on an empty value and overwrite like set, and the result equals a built-by-copy
 * one. */
Test(builder, borrowed_and_interned_sets_build_the_same_labels)
{
    struct mp_label tin[] = {L("job", "mesh"), L("pod", "web-1"), L("zone", "")};
    struct mp_labels *tl = mk(tin, 3);
    char body[] = "http_requests_total method get";
    struct mp_str name = {body, 19}, mname = {body + 20, 6}, mval = {body + 27, 3};
    struct mp_labels_builder *b = mp_labels_builder_create();
    mp_labels_builder_reset(b, NULL);
    cr_assert_eq(mp_labels_builder_set_borrowed(b, S("__name__"), name), 0);
    cr_assert_eq(mp_labels_builder_set_borrowed(b, mname, mval), 0);
    cr_assert_eq(mp_labels_builder_get(b, S("method")).ptr, body + 27, "not copied");
    for (size_t i = 0; i < mp_labels_count(tl); i++)
        cr_assert_eq(mp_labels_builder_set_interned(b, tl, i), 0);
    cr_assert_eq(mp_labels_builder_get(b, S("pod")).ptr, mp_labels_at(tl, 1).value.ptr);
    cr_assert_eq(mp_labels_builder_count(b), 4, "the empty zone deletes");
    cr_assert_eq(mp_labels_builder_set_borrowed(b, S("job"), S("")), 0);
    cr_assert_eq(mp_labels_builder_set_interned(b, tl, 0), 0);
    cr_assert_eq(mp_labels_builder_set_borrowed(b, S("pod"), S("web-2")), 0);
    struct mp_labels *out = built(b);
    memset(body, 'x', sizeof body - 1); /* the set owns its strings once built */
    cr_assert_str_eq(
        fmt(out),
        "{__name__=\"http_requests_total\", job=\"mesh\", method=\"get\", pod=\"web-2\"}");
    cr_assert_eq(mp_labels_value_at(out, 1), mp_labels_value_at(tl, 0), "shared, not re-interned");
    struct mp_label cin[] = {L("__name__", "http_requests_total"), L("job", "mesh"),
                             L("method", "get"), L("pod", "web-2")};
    struct mp_labels *copy = mk(cin, 4);
    cr_assert(mp_labels_equal(out, copy));
    cr_assert_eq(mp_labels_hash(out), mp_labels_hash(copy));
    mp_labels_release(copy);
    mp_labels_release(out);
    mp_labels_release(tl);
    mp_labels_builder_destroy(b);
    cr_assert_eq(live_strings(), 0);
}

Test(builder, labels_failure_injection)
{
    struct mp_labels_builder *b = mp_labels_builder_create();
    mp_labels_builder_reset(b, NULL);
    cr_assert_eq(mp_labels_builder_set(b, S("k"), S("v")), 0);
    cr_assert_eq(mp_labels_builder_set(b, S("k2"), S("v2")), 0);
    int failures = 0;
    for (uint64_t k = 1; k < 50; k++) {
        struct mp_labels *ls = NULL;
        mp_alloc_fail_at(k);
        int rc = mp_labels_builder_labels(b, &ls, NULL);
        mp_alloc_fail_at(0);
        if (rc == 0) {
            cr_assert_str_eq(fmt(ls), "{k=\"v\", k2=\"v2\"}");
            mp_labels_release(ls);
            break;
        }
        failures++;
        cr_assert_eq(rc, MP_ENOMEM);
        cr_assert_eq(live_strings(), 0);
    }
    cr_assert_geq(failures, 1);
    mp_labels_builder_destroy(b);
}

Test(builder, copies_are_capped_and_a_failed_set_changes_nothing)
{
    size_t big_len = (size_t)33 << 20; /* two of these exceed the 64 MiB builder cap */
    char *big = mp_xmalloc(big_len);
    memset(big, 'x', big_len);
    struct mp_labels_builder *b = mp_labels_builder_create();
    mp_labels_builder_reset(b, NULL);
    cr_assert_eq(mp_labels_builder_set(b, S("a"), (struct mp_str){big, big_len}), 0);
    cr_assert_eq(mp_labels_builder_set(b, S("b"), (struct mp_str){big, big_len}), MP_ELIMIT);
    cr_assert_eq(mp_labels_builder_count(b), 1);
    cr_assert_eq(mp_labels_builder_get(b, S("b")).len, 0);
    mp_labels_builder_reset(b, NULL); /* reset gives the budget back */
    cr_assert_eq(mp_labels_builder_set(b, S("b"), (struct mp_str){big, big_len}), 0);
    cr_assert_eq(mp_labels_builder_get(b, S("b")).len, big_len);
    mp_labels_builder_destroy(b);
    mp_free(big);
}

/* The shared UTF-8 decoder (common/str.h) on Go's utf8.DecodeRune vectors. */
Test(utf8, decode_encode_valid)
{
    static const struct {
        const char *s;
        size_t n, width;
        uint32_t r;
    } v[] = {
        {"a", 1, 1, 'a'},
        {"\xc3\xa9", 2, 2, 0xE9},
        {"\xe2\x82\xac", 3, 3, 0x20AC},
        {"\xf0\x9f\x98\x80", 4, 4, 0x1F600},
        {"\xef\xbf\xbd", 3, 3, 0xFFFD},       /* a real U+FFFD */
        {"\xc0\x80", 2, 1, MP_UTF8_ERROR},     /* overlong */
        {"\xe0\x80\x80", 3, 1, MP_UTF8_ERROR}, /* overlong */
        {"\xed\xa0\x80", 3, 1, MP_UTF8_ERROR}, /* surrogate */
        {"\xf4\x90\x80\x80", 4, 1, MP_UTF8_ERROR}, /* > U+10FFFF */
        {"\xe2\x82", 2, 1, MP_UTF8_ERROR},     /* truncated */
        {"\x80", 1, 1, MP_UTF8_ERROR},
        {"", 0, 0, MP_UTF8_ERROR},
    };
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        uint32_t r = 0;
        size_t w = mp_utf8_decode((const unsigned char *)v[i].s, v[i].n, &r);
        cr_assert_eq(w, v[i].width, "vector %zu", i);
        cr_assert_eq(r, v[i].r, "vector %zu", i);
        if (v[i].width > 1 || (v[i].n == 1 && r < 0x80)) {
            char e[4];
            cr_assert_eq(mp_utf8_encode(r, e), v[i].n, "vector %zu", i);
            cr_assert(memcmp(e, v[i].s, v[i].n) == 0, "vector %zu", i);
        }
        bool valid = v[i].n == 0 || (v[i].width == v[i].n && !(v[i].width == 1 && r >= 0x80));
        cr_assert_eq(mp_utf8_valid((struct mp_str){v[i].s, v[i].n}), valid, "vector %zu", i);
    }
}
