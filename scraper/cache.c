/* SPDX-License-Identifier: Apache-2.0 */
/* scraper/cache.c: the per-target scrape cache (Prometheus scrape/scrape.go scrapeCache).
 *
 *   entries:  XXH3-128 of the series text --> { series index | dropped, last attempt seen }
 *   series:   tsdb ref ----------------------> { attempts seen, entries pointing here }
 *   metadata: family name -------------------> { type, help, unit, last attempt seen }
 *
 * Memory is what this file is about: with a thousand targets it holds millions of entries.
 * An entry is 32 bytes in an open-addressing table (linear probing, deleted slots marked and
 * swept at the next growth), keyed by the 128-bit hash of the text and its length instead of
 * a copy of it (a hit needs all of them equal; two different texts of one target of equal
 * length collide with probability about n^2 / 2^129: never in practice, and the only effect
 * would be that the later text's sample goes to the earlier one's series; a copy of the texts
 * would cost about their length, 100-600 bytes a series, so they are not kept). Each entry
 * also holds the slot of the text that followed it in the last attempt: bodies mostly repeat
 * their order, so the loop guesses a line's entry, confirms it by the hash of that many bytes
 * and skips parsing the labels (loop.c append_body). Series records are 40 bytes in one array per target (a free list reuses
 * removed slots), found by tsdb ref through a chained index; the final labels are not kept at
 * all: the head has them, and a text whose ref the head no longer knows is rebuilt from the
 * line (loop.c). Several texts that relabel to one label set get one head ref and so share the
 * series record, which is what staleness belongs to. Nothing is allocated per entry; a known
 * text is one hash and one probe.
 *
 * The entries and series belong to the target's loop thread; metadata has its own mutex
 * because scrape_manager_metadata reads it from other threads. Metadata strings are interned
 * (common/labels.h), so targets exposing the same HELP texts share them. */
#include "scraper/scrape_internal.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/alloc.h"
#include "common/labels.h"

/* entry.sidx values below SIDX_BASE are states; the rest are series index + SIDX_BASE */
enum { SIDX_EMPTY = 0, SIDX_DELETED = 1, SIDX_DROPPED = 2, SIDX_BASE = 3 };
#define NO_SERIES UINT32_MAX /* end of a chain / free list */
#define NO_SLOT UINT32_MAX   /* entry.next, first, prev: none */

struct meta {
    struct meta *next;
    uint64_t hash;
    const struct mp_istr *name, *help, *unit; /* help/unit NULL: not set */
    enum scrape_metric_type type;
    uint64_t last_iter;
};

struct scrape_cache {
    /* entries: cap is a power of two (0 while e is NULL); used counts live and deleted */
    struct scrape_cache_entry *e;
    size_t ecap, elive, eused;
    uint32_t first, prev; /* slots of the last attempt's first line, of the running one's last */
    /* series records; free ones have ref 0 and are chained through next */
    struct scrape_cache_series *s;
    uint32_t scap, slive, sfree;
    uint32_t *sb; /* by-ref chains: sb[hash(ref) & (scap - 1)] = first index or NO_SERIES */
    /* metadata: chained, power-of-two buckets that double at load 1 */
    struct meta **mb;
    size_t mmask, mn;
    pthread_mutex_t meta_mu;
    struct mp_buf help_buf; /* unescaping scratch */
};

struct scrape_cache *scrape_cache_create(void)
{
    struct scrape_cache *c = mp_xcalloc(1, sizeof *c);
    c->sfree = NO_SERIES;
    c->first = c->prev = NO_SLOT;
    pthread_mutex_init(&c->meta_mu, NULL);
    mp_buf_init(&c->help_buf, 0);
    return c;
}

static void meta_free(struct meta *md)
{
    mp_intern_release(md->name);
    mp_intern_release(md->help);
    mp_intern_release(md->unit);
    mp_free(md);
}

void scrape_cache_destroy(struct scrape_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; c->mb && i <= c->mmask; i++) {
        for (struct meta *md = c->mb[i], *next; md; md = next) {
            next = md->next;
            meta_free(md);
        }
    }
    mp_free(c->e);
    mp_free(c->s);
    mp_free(c->sb);
    mp_free(c->mb);
    mp_buf_fini(&c->help_buf);
    pthread_mutex_destroy(&c->meta_mu);
    mp_free(c);
}

/* ---- entries ------------------------------------------------------------------------------- */

uint64_t (*scrape_cache_test_hash)(const void *text, size_t len);

struct scrape_cache_key scrape_cache_key_hash(struct mp_str text)
{
    XXH128_hash_t h = XXH3_128bits(text.ptr, text.len);
    if (scrape_cache_test_hash)
        h.low64 = scrape_cache_test_hash(text.ptr, text.len);
    return (struct scrape_cache_key){h.low64, h.high64, (uint32_t)text.len};
}

struct scrape_cache_entry *scrape_cache_find(const struct scrape_cache *c,
                                             struct scrape_cache_key k)
{
    if (!c->e)
        return NULL;
    size_t mask = c->ecap - 1;
    for (size_t i = (size_t)k.lo & mask;; i = (i + 1) & mask) {
        struct scrape_cache_entry *e = &c->e[i];
        if (e->sidx == SIDX_EMPTY)
            return NULL;
        if (e->sidx != SIDX_DELETED && scrape_cache_key_matches(e, k))
            return e;
    }
}

/* Rebuilds the table with room for one more live entry at load <= 3/4, dropping deleted
 * slots. Only called when the table is full of live and deleted slots. */
static int entries_grow(struct scrape_cache *c)
{
    size_t cap = c->ecap ? c->ecap : 16;
    while ((c->elive + 1) * 4 > cap * 3 || (c->elive + 1) * 2 > cap)
        cap *= 2; /* live at most half after a rebuild: deletions have room before the next */
    struct scrape_cache_entry *n = mp_calloc(cap, sizeof *n);
    if (!n)
        return MP_ENOMEM;
    for (size_t i = 0; i < c->ecap; i++) {
        const struct scrape_cache_entry *e = &c->e[i];
        if (e->sidx == SIDX_EMPTY || e->sidx == SIDX_DELETED)
            continue;
        size_t j = (size_t)e->lo & (cap - 1);
        while (n[j].sidx != SIDX_EMPTY)
            j = (j + 1) & (cap - 1);
        n[j] = *e;
        n[j].next = NO_SLOT; /* slots moved: the order is learnt again */
    }
    c->first = c->prev = NO_SLOT;
    mp_free(c->e);
    c->e = n;
    c->ecap = cap;
    c->eused = c->elive;
    return 0;
}

/* A free slot for k (absent from the table); NULL on allocation failure. */
static struct scrape_cache_entry *entry_slot(struct scrape_cache *c, struct scrape_cache_key k)
{
    if ((c->eused + 1) * 4 > c->ecap * 3 && entries_grow(c) != 0)
        return NULL;
    size_t mask = c->ecap - 1;
    size_t i = (size_t)k.lo & mask;
    while (c->e[i].sidx != SIDX_EMPTY && c->e[i].sidx != SIDX_DELETED)
        i = (i + 1) & mask;
    if (c->e[i].sidx == SIDX_EMPTY)
        c->eused++;
    c->elive++;
    return &c->e[i];
}

void scrape_cache_order_begin(struct scrape_cache *c)
{
    c->prev = NO_SLOT;
}

struct scrape_cache_entry *scrape_cache_predict(const struct scrape_cache *c)
{
    uint32_t i = c->prev == NO_SLOT ? c->first : c->e[c->prev].next;
    if (i >= c->ecap || c->e[i].sidx == SIDX_EMPTY || c->e[i].sidx == SIDX_DELETED)
        return NULL;
    struct scrape_cache_entry *e = &c->e[i];
    if (e->next < c->ecap)
        __builtin_prefetch(&c->e[e->next]); /* the guess after this one */
    return e;
}

void scrape_cache_order_note(struct scrape_cache *c, const struct scrape_cache_entry *e)
{
    uint32_t i = (uint32_t)(e - c->e);
    if (c->prev == NO_SLOT)
        c->first = i;
    else
        c->e[c->prev].next = i;
    c->prev = i;
}

/* ---- series -------------------------------------------------------------------------------- */

static size_t ref_bucket(uint64_t ref, uint32_t cap)
{
    return (size_t)((ref * UINT64_C(0x9e3779b97f4a7c15)) >> 32) & (cap - 1);
}

/* Doubles the records array and rebuilds the by-ref chains. */
static int series_grow(struct scrape_cache *c)
{
    if (c->scap >= (UINT32_MAX - SIDX_BASE) / 2)
        return MP_ELIMIT;
    uint32_t cap = c->scap ? c->scap * 2 : 16;
    struct scrape_cache_series *s = mp_realloc(c->s, (size_t)cap * sizeof *s);
    if (!s)
        return MP_ENOMEM;
    c->s = s;
    uint32_t *sb = mp_malloc((size_t)cap * sizeof *sb);
    if (!sb)
        return MP_ENOMEM; /* c->s is merely larger than needed; scap unchanged */
    memset(sb, 0xff, (size_t)cap * sizeof *sb);
    for (uint32_t i = cap; i-- > c->scap;) {
        s[i] = (struct scrape_cache_series){.next = c->sfree};
        c->sfree = i;
    }
    for (uint32_t i = 0; i < c->scap; i++) {
        if (!s[i].ref)
            continue;
        size_t b = ref_bucket(s[i].ref, cap);
        s[i].next = sb[b];
        sb[b] = i;
    }
    mp_free(c->sb);
    c->sb = sb;
    c->scap = cap;
    return 0;
}

/* Index of the record of ref, created if needed; MP_ENOMEM. */
static int series_get(struct scrape_cache *c, uint64_t ref, uint32_t *out)
{
    if (c->scap) {
        for (uint32_t i = c->sb[ref_bucket(ref, c->scap)]; i != NO_SERIES; i = c->s[i].next) {
            if (c->s[i].ref == ref) {
                *out = i;
                return 0;
            }
        }
    }
    if (c->sfree == NO_SERIES) {
        int rc = series_grow(c);
        if (rc)
            return rc;
    }
    uint32_t i = c->sfree;
    struct scrape_cache_series *s = &c->s[i];
    c->sfree = s->next;
    size_t b = ref_bucket(ref, c->scap);
    *s = (struct scrape_cache_series){.ref = ref, .next = c->sb[b]};
    c->sb[b] = i;
    c->slive++;
    *out = i;
    return 0;
}

static void series_remove(struct scrape_cache *c, uint32_t i)
{
    uint32_t *pp = &c->sb[ref_bucket(c->s[i].ref, c->scap)];
    while (*pp != i)
        pp = &c->s[*pp].next;
    *pp = c->s[i].next;
    c->s[i] = (struct scrape_cache_series){.next = c->sfree};
    c->sfree = i;
    c->slive--;
}

struct scrape_cache_series *scrape_cache_entry_series(struct scrape_cache *c,
                                                      const struct scrape_cache_entry *e)
{
    return e->sidx >= SIDX_BASE ? &c->s[e->sidx - SIDX_BASE] : NULL;
}

int scrape_cache_add(struct scrape_cache *c, struct scrape_cache_key k, uint64_t ref,
                     uint64_t iter, struct scrape_cache_entry **out)
{
    uint32_t si = 0;
    if (ref) {
        int rc = series_get(c, ref, &si);
        if (rc)
            return rc; /* a new record stays unused and goes at the next iter_done */
    }
    struct scrape_cache_entry *e = entry_slot(c, k);
    if (!e)
        return MP_ENOMEM;
    e->lo = k.lo;
    e->hi = k.hi;
    e->len = k.len;
    e->next = NO_SLOT;
    e->last_iter = (uint32_t)iter;
    e->sidx = ref ? si + SIDX_BASE : SIDX_DROPPED;
    if (ref)
        c->s[si].nentries++;
    *out = e;
    return 0;
}

void scrape_cache_forget(struct scrape_cache *c, struct scrape_cache_entry *e)
{
    struct scrape_cache_series *s = scrape_cache_entry_series(c, e);
    if (s)
        s->nentries--;
    e->sidx = SIDX_DELETED;
    c->elive--;
}

void scrape_cache_undo(struct scrape_cache *c, uint64_t iter)
{
    for (uint32_t i = 0; i < c->scap; i++) {
        struct scrape_cache_series *s = &c->s[i];
        if (s->ref && s->seen == iter)
            s->seen = s->prev_seen;
    }
}

size_t scrape_cache_each_seen(struct scrape_cache *c, uint64_t iter,
                              void (*fn)(void *ctx, struct scrape_cache_series *s), void *ctx)
{
    size_t n = 0;
    if (iter == 0)
        return 0;
    for (uint32_t i = 0; i < c->scap; i++) {
        struct scrape_cache_series *s = &c->s[i];
        if (s->ref && s->seen == iter) {
            fn(ctx, s);
            n++;
        }
    }
    return n;
}

void scrape_cache_iter_done(struct scrape_cache *c, uint64_t iter)
{
    for (size_t i = 0; i < c->ecap; i++) {
        struct scrape_cache_entry *e = &c->e[i];
        if (e->sidx != SIDX_EMPTY && e->sidx != SIDX_DELETED && e->last_iter != (uint32_t)iter)
            scrape_cache_forget(c, e);
    }
    /* A series no text maps to any more was not appended in iter, so its stale marker (if it
     * needed one) was written by this attempt already. */
    for (uint32_t i = 0; i < c->scap; i++) {
        struct scrape_cache_series *s = &c->s[i];
        if (s->ref && !s->nentries && s->seen != iter)
            series_remove(c, i);
    }
    pthread_mutex_lock(&c->meta_mu);
    for (size_t i = 0; c->mb && i <= c->mmask; i++) {
        struct meta **pp = &c->mb[i];
        while (*pp) {
            struct meta *md = *pp;
            if (iter - md->last_iter <= 10) {
                pp = &md->next;
                continue;
            }
            *pp = md->next;
            meta_free(md);
            c->mn--;
        }
    }
    pthread_mutex_unlock(&c->meta_mu);
}

size_t scrape_cache_entries(const struct scrape_cache *c)
{
    return c->elive;
}

size_t scrape_cache_series_count(const struct scrape_cache *c)
{
    return c->slive;
}

size_t scrape_cache_bytes(struct scrape_cache *c)
{
    size_t n = mp_alloc_size(c) + mp_alloc_size(c->e) + mp_alloc_size(c->s) +
               mp_alloc_size(c->sb) + c->help_buf.cap;
    pthread_mutex_lock(&c->meta_mu);
    n += mp_alloc_size(c->mb);
    for (size_t i = 0; c->mb && i <= c->mmask; i++) {
        for (struct meta *md = c->mb[i]; md; md = md->next)
            n += mp_alloc_size(md); /* the interned strings are shared between targets */
    }
    pthread_mutex_unlock(&c->meta_mu);
    return n;
}

/* ---- metadata ------------------------------------------------------------------------------ */

static uint64_t meta_hash(struct mp_str family)
{
    return XXH3_64bits(family.ptr, family.len);
}

/* Doubles the bucket array at load 1. */
static int meta_reserve(struct scrape_cache *c)
{
    if (c->mb && c->mn < c->mmask + 1)
        return 0;
    size_t nb = c->mb ? (c->mmask + 1) * 2 : 16;
    struct meta **b = mp_calloc(nb, sizeof *b);
    if (!b)
        return MP_ENOMEM;
    for (size_t i = 0; c->mb && i <= c->mmask; i++) {
        for (struct meta *md = c->mb[i], *next; md; md = next) {
            next = md->next;
            struct meta **slot = &b[md->hash & (nb - 1)];
            md->next = *slot;
            *slot = md;
        }
    }
    mp_free(c->mb);
    c->mb = b;
    c->mmask = nb - 1;
    return 0;
}

/* The record of family, created if needed; NULL on allocation failure (metadata is then
 * left out, the scrape goes on). Under meta_mu. */
static struct meta *meta_get_locked(struct scrape_cache *c, struct mp_str family, uint64_t iter)
{
    uint64_t h = meta_hash(family);
    if (c->mb) {
        for (struct meta *md = c->mb[h & c->mmask]; md; md = md->next) {
            if (md->hash == h && mp_str_eq(mp_istr_str(md->name), family)) {
                md->last_iter = iter;
                return md;
            }
        }
    }
    struct meta *md = NULL;
    if (meta_reserve(c) != 0 || !(md = mp_calloc(1, sizeof *md)))
        return NULL;
    if (mp_intern_acquire(family, &md->name) != 0) {
        mp_free(md);
        return NULL;
    }
    md->hash = h;
    md->last_iter = iter;
    struct meta **slot = &c->mb[h & c->mmask];
    md->next = *slot;
    *slot = md;
    c->mn++;
    return md;
}

/* Replaces *dst with the interned s unless equal. */
static void set_text(const struct mp_istr **dst, struct mp_str s)
{
    if (*dst && mp_str_eq(mp_istr_str(*dst), s))
        return;
    const struct mp_istr *n = NULL;
    if (mp_intern_acquire(s, &n) != 0)
        return;
    mp_intern_release(*dst);
    *dst = n;
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
        set_text(&md->help, help);
    pthread_mutex_unlock(&c->meta_mu);
}

void scrape_cache_meta_unit(struct scrape_cache *c, struct mp_str family, struct mp_str unit,
                            uint64_t iter)
{
    pthread_mutex_lock(&c->meta_mu);
    struct meta *md = meta_get_locked(c, family, iter);
    if (md)
        set_text(&md->unit, unit);
    pthread_mutex_unlock(&c->meta_mu);
}

static struct mp_str text_of(const struct mp_istr *s)
{
    return s ? mp_istr_str(s) : MP_STR_LIT("");
}

void scrape_cache_meta_each(struct scrape_cache *c,
                            void (*fn)(void *ctx, struct mp_str family,
                                       enum scrape_metric_type t, struct mp_str help,
                                       struct mp_str unit),
                            void *ctx)
{
    pthread_mutex_lock(&c->meta_mu);
    for (size_t i = 0; c->mb && i <= c->mmask; i++) {
        for (struct meta *md = c->mb[i]; md; md = md->next)
            fn(ctx, mp_istr_str(md->name), md->type, text_of(md->help), text_of(md->unit));
    }
    pthread_mutex_unlock(&c->meta_mu);
}
