/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/lcache.c: the process-wide label-set cache (lcache.h). */
#include "tsdb/lcache.h"

#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>

#include "common/alloc.h"
#include "tsdb/spin.h"

struct entry {
    uint64_t ref;
    uint32_t owner; /* 0: empty */
    struct mp_labels *ls;
};

struct bucket {
    struct spin lock;
    uint32_t last; /* the way hit or filled last */
    struct entry e[2];
};

static _Atomic(struct bucket *) table;
static _Atomic uint32_t owners;

uint32_t tsdb_lcache_owner_new(void)
{
    uint32_t o;
    /* relaxed: the number only has to be unique */
    while ((o = atomic_fetch_add_explicit(&owners, 1, memory_order_relaxed) + 1) == 0)
        ;
    return o;
}

uint32_t tsdb_lcache_owner_of(_Atomic uint32_t *slot)
{
    uint32_t o = atomic_load_explicit(slot, memory_order_relaxed), mine;
    if (o)
        return o;
    mine = tsdb_lcache_owner_new();
    /* relaxed: the number carries no data; whoever wins, every caller returns the same one */
    if (atomic_compare_exchange_strong_explicit(slot, &o, mine, memory_order_relaxed,
                                                memory_order_relaxed))
        return mine;
    return o;
}

static void lock(struct bucket *b)
{
    spin_lock(&b->lock);
}

static void unlock(struct bucket *b)
{
    spin_unlock(&b->lock);
}

static struct bucket *get_table(bool create)
{
    /* acquire: sees the zeroed table the creating thread published */
    struct bucket *t = atomic_load_explicit(&table, memory_order_acquire);
    if (t || !create)
        return t;
    struct bucket *nt = mp_calloc(TSDB_LCACHE_BUCKETS, sizeof *nt);
    if (!nt)
        return NULL;
    if (atomic_compare_exchange_strong_explicit(&table, &t, nt, memory_order_acq_rel,
                                                memory_order_acquire))
        return nt;
    mp_free(nt); /* another thread published one first */
    return t;
}

static struct bucket *bucket_of(struct bucket *t, uint32_t owner, uint64_t ref)
{
    /* sequential refs of one owner land in different buckets (Fibonacci hashing) */
    uint64_t h = (ref + (uint64_t)owner * 0xc2b2ae3d27d4eb4fULL) * 0x9e3779b97f4a7c15ULL;
    return &t[h >> (64 - 14)];
}

_Static_assert(TSDB_LCACHE_BUCKETS == 1u << 14, "bucket_of takes the top 14 bits");

struct mp_labels *tsdb_lcache_get(uint32_t owner, uint64_t ref, uint64_t hash)
{
    struct bucket *t = get_table(false);
    if (!t)
        return NULL;
    struct bucket *b = bucket_of(t, owner, ref);
    struct mp_labels *ls = NULL;
    lock(b);
    for (uint32_t w = 0; w < 2; w++) {
        struct entry *e = &b->e[w];
        if (e->owner == owner && e->ref == ref && (!hash || mp_labels_hash(e->ls) == hash)) {
            ls = mp_labels_acquire(e->ls);
            b->last = w;
            break;
        }
    }
    unlock(b);
    return ls;
}

void tsdb_lcache_put(uint32_t owner, uint64_t ref, const struct mp_labels *ls)
{
    struct bucket *t = get_table(true);
    if (!t)
        return;
    struct bucket *b = bucket_of(t, owner, ref);
    struct mp_labels *mine = mp_labels_acquire(ls), *old;
    lock(b);
    uint32_t w = 1 - b->last; /* the way not used last, unless ref is already there */
    for (uint32_t i = 0; i < 2; i++)
        if (b->e[i].owner == owner && b->e[i].ref == ref)
            w = i;
    old = b->e[w].ls;
    b->e[w] = (struct entry){ref, owner, mine};
    b->last = w;
    unlock(b);
    mp_labels_release(old); /* outside the lock: may free the set and its strings */
}

void tsdb_lcache_forget(uint32_t owner)
{
    struct bucket *t = get_table(false);
    if (!t || owner == 0)
        return;
    for (size_t i = 0; i < TSDB_LCACHE_BUCKETS; i++) {
        struct bucket *b = &t[i];
        struct mp_labels *drop[2] = {NULL, NULL};
        lock(b);
        for (uint32_t w = 0; w < 2; w++)
            if (b->e[w].owner == owner) {
                drop[w] = b->e[w].ls;
                b->e[w] = (struct entry){0};
            }
        unlock(b);
        mp_labels_release(drop[0]);
        mp_labels_release(drop[1]);
    }
}

uint64_t tsdb_lcache_entries(uint32_t owner)
{
    struct bucket *t = get_table(false);
    uint64_t n = 0;
    for (size_t i = 0; t && i < TSDB_LCACHE_BUCKETS; i++) {
        lock(&t[i]);
        for (uint32_t w = 0; w < 2; w++)
            n += t[i].e[w].owner != 0 && (owner == 0 || t[i].e[w].owner == owner);
        unlock(&t[i]);
    }
    return n;
}
