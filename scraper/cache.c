/* SPDX-License-Identifier: Apache-2.0 */
/* scraper/cache.c: the per-target scrape cache (Prometheus scrape/scrape.go scrapeCache).
 *
 *   entries:  series text --XXH3--> { final series | dropped, last attempt seen }
 *   series:   labels hash  --------> { final labels, tsdb ref, attempts seen }
 *   metadata: family name  --------> { type, help, unit, last attempt seen }
 *
 * Two chained hash tables with power-of-two bucket arrays that double at load 1. A known
 * text is one hash and one memcmp; nothing is allocated on the steady-state path. Several
 * texts may relabel to one label set; they share the series record, which is what staleness
 * and the tsdb ref belong to. The entries and series belong to the target's loop thread;
 * metadata has its own mutex because scrape_manager_metadata reads it from other threads. */
#include "scraper/scrape_internal.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/alloc.h"
#include "common/labels.h"

struct meta {
    struct meta *next;
    uint64_t hash;
    enum scrape_metric_type type;
    char *help, *unit;
    size_t help_len, unit_len;
    uint64_t last_iter;
    size_t name_len;
    char name[];
};

struct table {
    void **b;
    size_t mask; /* buckets - 1; 0 buckets while b is NULL */
    size_t n;
};

struct scrape_cache {
    struct table entries, series, meta;
    pthread_mutex_t meta_mu;
    struct mp_buf help_buf; /* unescaping scratch */
};

/* Every record starts with its chain pointer. */
struct chained {
    struct chained *next;
};

static void **bucket(const struct table *t, uint64_t h)
{
    return &t->b[h & t->mask];
}

/* Grows t so that one more record keeps the load at most 1. hash_of gives a record's hash. */
static int table_reserve(struct table *t, uint64_t (*hash_of)(const void *))
{
    if (t->b && t->n < t->mask + 1)
        return 0;
    size_t nb = t->b ? (t->mask + 1) * 2 : 16;
    void **b = mp_calloc(nb, sizeof *b);
    if (!b)
        return MP_ENOMEM;
    if (t->b) {
        for (size_t i = 0; i <= t->mask; i++) {
            struct chained *r = t->b[i];
            while (r) {
                struct chained *next = r->next;
                void **slot = &b[hash_of(r) & (nb - 1)];
                r->next = *slot;
                *slot = r;
                r = next;
            }
        }
    }
    mp_free(t->b);
    t->b = b;
    t->mask = nb - 1;
    return 0;
}

static uint64_t entry_hash(const void *r)
{
    return ((const struct scrape_cache_entry *)r)->khash;
}

static uint64_t series_hash(const void *r)
{
    return ((const struct scrape_cache_series *)r)->hash;
}

static uint64_t meta_hash(const void *r)
{
    return ((const struct meta *)r)->hash;
}

struct scrape_cache *scrape_cache_create(void)
{
    struct scrape_cache *c = mp_xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->meta_mu, NULL);
    mp_buf_init(&c->help_buf, 0);
    return c;
}

static void series_free(struct scrape_cache_series *s)
{
    mp_labels_release(s->ls);
    mp_free(s);
}

static void meta_free(struct meta *md)
{
    mp_free(md->help);
    mp_free(md->unit);
    mp_free(md);
}

void scrape_cache_destroy(struct scrape_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; c->entries.b && i <= c->entries.mask; i++) {
        for (struct scrape_cache_entry *e = c->entries.b[i], *next; e; e = next) {
            next = e->next;
            mp_free(e);
        }
    }
    for (size_t i = 0; c->series.b && i <= c->series.mask; i++) {
        for (struct scrape_cache_series *s = c->series.b[i], *next; s; s = next) {
            next = s->next;
            series_free(s);
        }
    }
    for (size_t i = 0; c->meta.b && i <= c->meta.mask; i++) {
        for (struct meta *md = c->meta.b[i], *next; md; md = next) {
            next = md->next;
            meta_free(md);
        }
    }
    mp_free(c->entries.b);
    mp_free(c->series.b);
    mp_free(c->meta.b);
    mp_buf_fini(&c->help_buf);
    pthread_mutex_destroy(&c->meta_mu);
    mp_free(c);
}

uint64_t scrape_cache_key_hash(struct mp_str key)
{
    return XXH3_64bits(key.ptr, key.len);
}

struct scrape_cache_entry *scrape_cache_find(const struct scrape_cache *c, struct mp_str key,
                                             uint64_t khash)
{
    if (!c->entries.b)
        return NULL;
    for (struct scrape_cache_entry *e = *bucket(&c->entries, khash); e; e = e->next) {
        if (e->khash == khash && e->klen == key.len && memcmp(e->key, key.ptr, key.len) == 0)
            return e;
    }
    return NULL;
}

/* The shared record of ls (taking over the reference), created if needed. */
static int series_get(struct scrape_cache *c, struct mp_labels *ls,
                      struct scrape_cache_series **out)
{
    uint64_t h = mp_labels_hash(ls);
    if (c->series.b) {
        for (struct scrape_cache_series *s = *bucket(&c->series, h); s; s = s->next) {
            if (s->hash == h && mp_labels_equal(s->ls, ls)) {
                mp_labels_release(ls);
                *out = s;
                return 0;
            }
        }
    }
    struct scrape_cache_series *s = NULL;
    if (table_reserve(&c->series, series_hash) != 0 || !(s = mp_calloc(1, sizeof *s))) {
        mp_labels_release(ls);
        return MP_ENOMEM;
    }
    s->ls = ls;
    s->hash = h;
    void **slot = bucket(&c->series, h);
    s->next = *slot;
    *slot = s;
    c->series.n++;
    *out = s;
    return 0;
}

int scrape_cache_add(struct scrape_cache *c, struct mp_str key, uint64_t khash,
                     struct mp_labels *ls, uint64_t iter, struct scrape_cache_entry **out)
{
    if (key.len > UINT32_MAX) {
        mp_labels_release(ls);
        return MP_ELIMIT;
    }
    struct scrape_cache_series *s = NULL;
    if (ls) {
        int rc = series_get(c, ls, &s);
        if (rc)
            return rc;
    }
    struct scrape_cache_entry *e = NULL;
    if (table_reserve(&c->entries, entry_hash) != 0 ||
        !(e = mp_malloc(sizeof *e + key.len))) {
        return MP_ENOMEM; /* the series record, if new, goes at the next iter_done */
    }
    e->khash = khash;
    e->s = s;
    e->last_iter = iter;
    e->klen = (uint32_t)key.len;
    memcpy(e->key, key.ptr, key.len);
    void **slot = bucket(&c->entries, khash);
    e->next = *slot;
    *slot = e;
    c->entries.n++;
    if (s)
        s->nentries++;
    *out = e;
    return 0;
}

void scrape_cache_undo(struct scrape_cache *c, uint64_t iter)
{
    for (size_t i = 0; c->series.b && i <= c->series.mask; i++) {
        for (struct scrape_cache_series *s = c->series.b[i]; s; s = s->next) {
            if (s->seen == iter)
                s->seen = s->prev_seen;
        }
    }
}

size_t scrape_cache_each_seen(struct scrape_cache *c, uint64_t iter,
                              void (*fn)(void *ctx, struct scrape_cache_series *s), void *ctx)
{
    size_t n = 0;
    if (iter == 0)
        return 0;
    for (size_t i = 0; c->series.b && i <= c->series.mask; i++) {
        for (struct scrape_cache_series *s = c->series.b[i]; s; s = s->next) {
            if (s->seen == iter) {
                fn(ctx, s);
                n++;
            }
        }
    }
    return n;
}

void scrape_cache_iter_done(struct scrape_cache *c, uint64_t iter)
{
    for (size_t i = 0; c->entries.b && i <= c->entries.mask; i++) {
        struct scrape_cache_entry **pp = (struct scrape_cache_entry **)&c->entries.b[i];
        while (*pp) {
            struct scrape_cache_entry *e = *pp;
            if (e->last_iter == iter) {
                pp = &e->next;
                continue;
            }
            *pp = e->next;
            if (e->s)
                e->s->nentries--;
            mp_free(e);
            c->entries.n--;
        }
    }
    /* A series no text maps to any more was not appended in iter, so its stale marker (if it
     * needed one) was written by this attempt already. */
    for (size_t i = 0; c->series.b && i <= c->series.mask; i++) {
        struct scrape_cache_series **pp = (struct scrape_cache_series **)&c->series.b[i];
        while (*pp) {
            struct scrape_cache_series *s = *pp;
            if (s->nentries || s->seen == iter) {
                pp = &s->next;
                continue;
            }
            *pp = s->next;
            series_free(s);
            c->series.n--;
        }
    }
    pthread_mutex_lock(&c->meta_mu);
    for (size_t i = 0; c->meta.b && i <= c->meta.mask; i++) {
        struct meta **pp = (struct meta **)&c->meta.b[i];
        while (*pp) {
            struct meta *md = *pp;
            if (iter - md->last_iter <= 10) {
                pp = &md->next;
                continue;
            }
            *pp = md->next;
            meta_free(md);
            c->meta.n--;
        }
    }
    pthread_mutex_unlock(&c->meta_mu);
}

size_t scrape_cache_entries(const struct scrape_cache *c)
{
    return c->entries.n;
}

size_t scrape_cache_series_count(const struct scrape_cache *c)
{
    return c->series.n;
}

/* ---- metadata ------------------------------------------------------------------------------ */

/* The record of family, created if needed; NULL on allocation failure (metadata is then
 * left out, the scrape goes on). Under meta_mu. */
static struct meta *meta_get_locked(struct scrape_cache *c, struct mp_str family, uint64_t iter)
{
    uint64_t h = XXH3_64bits(family.ptr, family.len);
    if (c->meta.b) {
        for (struct meta *md = *bucket(&c->meta, h); md; md = md->next) {
            if (md->hash == h && md->name_len == family.len &&
                memcmp(md->name, family.ptr, family.len) == 0) {
                md->last_iter = iter;
                return md;
            }
        }
    }
    struct meta *md = NULL;
    if (table_reserve(&c->meta, meta_hash) != 0 || !(md = mp_calloc(1, sizeof *md + family.len)))
        return NULL;
    md->hash = h;
    md->last_iter = iter;
    md->name_len = family.len;
    memcpy(md->name, family.ptr, family.len);
    void **slot = bucket(&c->meta, h);
    md->next = *slot;
    *slot = md;
    c->meta.n++;
    return md;
}

/* Replaces *dst (of *dst_len bytes) with s unless equal. */
static void set_text(char **dst, size_t *dst_len, struct mp_str s)
{
    if (*dst && *dst_len == s.len && memcmp(*dst, s.ptr, s.len) == 0)
        return;
    char *n = mp_malloc(s.len + 1);
    if (!n)
        return;
    memcpy(n, s.ptr, s.len);
    n[s.len] = '\0';
    mp_free(*dst);
    *dst = n;
    *dst_len = s.len;
}

void scrape_cache_meta_type(struct scrape_cache *c, struct mp_str family,
                            enum scrape_metric_type t, uint64_t iter)
{
    pthread_mutex_lock(&c->meta_mu);
    struct meta *md = meta_get_locked(c, family, iter);
    if (md)
        md->type = t;
    pthread_mutex_unlock(&c->meta_mu);
}

void scrape_cache_meta_help(struct scrape_cache *c, struct mp_str family, struct mp_str raw,
                            bool escaped, bool text_help, uint64_t iter)
{
    struct mp_str help = raw;
    if (escaped) {
        mp_buf_reset(&c->help_buf);
        if (mp_buf_append(&c->help_buf, raw.ptr, raw.len) != 0)
            return;
        size_t n = scrape_unescape(raw, text_help, c->help_buf.data, c->help_buf.len);
        help = (struct mp_str){c->help_buf.data, n};
    }
    pthread_mutex_lock(&c->meta_mu);
    struct meta *md = meta_get_locked(c, family, iter);
    if (md)
        set_text(&md->help, &md->help_len, help);
    pthread_mutex_unlock(&c->meta_mu);
}

void scrape_cache_meta_unit(struct scrape_cache *c, struct mp_str family, struct mp_str unit,
                            uint64_t iter)
{
    pthread_mutex_lock(&c->meta_mu);
    struct meta *md = meta_get_locked(c, family, iter);
    if (md)
        set_text(&md->unit, &md->unit_len, unit);
    pthread_mutex_unlock(&c->meta_mu);
}

void scrape_cache_meta_each(struct scrape_cache *c,
                            void (*fn)(void *ctx, struct mp_str family,
                                       enum scrape_metric_type t, struct mp_str help,
                                       struct mp_str unit),
                            void *ctx)
{
    pthread_mutex_lock(&c->meta_mu);
    for (size_t i = 0; c->meta.b && i <= c->meta.mask; i++) {
        for (struct meta *md = c->meta.b[i]; md; md = md->next) {
            fn(ctx, (struct mp_str){md->name, md->name_len}, md->type,
               (struct mp_str){md->help ? md->help : "", md->help_len},
               (struct mp_str){md->unit ? md->unit : "", md->unit_len});
        }
    }
    pthread_mutex_unlock(&c->meta_mu);
}
