/* SPDX-License-Identifier: Apache-2.0 */
/* common/intern.c: the global string interner behind struct mp_labels.
 *
 * MP_INTERN_STRIPES independent stripes, each a mutex, an open-addressing table (linear
 * probing, backward-shift deletion, so churn leaves no tombstones) and a small slab for short
 * strings. A string's XXH3 hash picks the stripe (top 6 of its low 32 bits) and the home slot.
 *
 * Refcount protocol: the 1 -> 0 transition happens only under the stripe lock, and a lookup
 * increments only under that lock, so a lookup can never revive a string being freed. Any
 * other change (dup, or release from >= 2) is a lock-free CAS. MP_ISTR_IMMORTAL is sticky.
 *
 * Memory: header 12 bytes + len + NUL, rounded up to 16, carved from 8 KiB slab chunks for
 * sizes up to SLAB_MAX (freed slots go on per-class free lists of their stripe and are reused;
 * chunks are never returned). Longer strings, and every string in sanitizer builds (so ASan
 * sees each one), get their own allocation.
 *
 * Locking: a thread holds at most one stripe lock, and calls nothing but the allocator under it. */
#include "common/labels_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "common/alloc.h"

#define MIN_CAP 16
#define SLAB_QUANTUM 16
#define SLAB_MAX 128
#define SLAB_CLASSES (SLAB_MAX / SLAB_QUANTUM)
#define SLAB_CHUNK 8192

struct free_slot {
    struct free_slot *next;
};

struct stripe {
    pthread_mutex_t mu;
    struct mp_istr **slots; /* cap entries, NULL = empty */
    size_t cap;             /* 0 or a power of two */
    size_t used;
    size_t bytes;           /* strings (slab chunks or own allocations) plus the table */
    struct free_slot *free[SLAB_CLASSES];
    char *bump, *bump_end;  /* unused tail of the newest chunk */
} __attribute__((aligned(64)));

static struct stripe stripes[MP_INTERN_STRIPES];
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_stripes(void)
{
    for (size_t i = 0; i < MP_INTERN_STRIPES; i++)
        pthread_mutex_init(&stripes[i].mu, NULL);
}

static struct stripe *stripe_of(uint32_t hash)
{
    return &stripes[hash >> 26];
}

static size_t entry_size(size_t len)
{
    return sizeof(struct mp_istr) + len + 1;
}

#if defined(MP_SANITIZER_BUILD)
#define USE_SLAB 0
#else
#define USE_SLAB 1
#endif

static size_t slab_round(size_t n)
{
    return (n + SLAB_QUANTUM - 1) / SLAB_QUANTUM * SLAB_QUANTUM;
}

/* Stripe lock held. NULL on allocation failure. */
static void *entry_alloc_locked(struct stripe *st, size_t n)
{
    if (!USE_SLAB || n > SLAB_MAX) {
        void *p = mp_malloc(n);
        st->bytes += mp_alloc_size(p);
        return p;
    }
    size_t sz = slab_round(n);
    size_t cls = sz / SLAB_QUANTUM - 1;
    if (st->free[cls]) {
        struct free_slot *f = st->free[cls];
        st->free[cls] = f->next;
        return f;
    }
    if ((size_t)(st->bump_end - st->bump) < sz) {
        /* The tail is a multiple of the quantum and below SLAB_MAX: it fits one class. */
        size_t rest = (size_t)(st->bump_end - st->bump);
        if (rest) {
            struct free_slot *f = (struct free_slot *)(void *)st->bump;
            f->next = st->free[rest / SLAB_QUANTUM - 1];
            st->free[rest / SLAB_QUANTUM - 1] = f;
        }
        char *chunk = mp_malloc(SLAB_CHUNK);
        if (!chunk) {
            st->bump = st->bump_end = NULL;
            return NULL;
        }
        st->bytes += mp_alloc_size(chunk);
        st->bump = chunk;
        st->bump_end = chunk + SLAB_CHUNK;
    }
    void *p = st->bump;
    st->bump += sz;
    return p;
}

/* Stripe lock held. */
static void entry_free_locked(struct stripe *st, struct mp_istr *e)
{
    size_t n = entry_size(e->len);
    if (!USE_SLAB || n > SLAB_MAX) {
        st->bytes -= mp_alloc_size(e);
        mp_free(e);
        return;
    }
    size_t cls = slab_round(n) / SLAB_QUANTUM - 1;
    struct free_slot *f = (struct free_slot *)(void *)e;
    f->next = st->free[cls];
    st->free[cls] = f;
}

/* Rehashes the stripe into a table of ncap slots. Stripe lock held. */
static int resize_locked(struct stripe *st, size_t ncap)
{
    struct mp_istr **ns = mp_calloc(ncap, sizeof *ns);
    if (!ns)
        return MP_ENOMEM;
    size_t mask = ncap - 1;
    for (size_t i = 0; i < st->cap; i++) {
        struct mp_istr *e = st->slots[i];
        if (!e)
            continue;
        size_t j = e->hash & mask;
        while (ns[j])
            j = (j + 1) & mask;
        ns[j] = e;
    }
    st->bytes -= mp_alloc_size(st->slots);
    st->bytes += mp_alloc_size(ns);
    mp_free(st->slots);
    st->slots = ns;
    st->cap = ncap;
    return 0;
}

/* Increments unless immortal. The caller holds a reference or the stripe lock. */
static void ref_inc(struct mp_istr *e)
{
    /* relaxed: a new reference is derived from one the caller already has (or from the
     * table under its lock), so there is nothing to publish */
    uint32_t r = atomic_load_explicit(&e->refs, memory_order_relaxed);
    while (r != MP_ISTR_IMMORTAL &&
           !atomic_compare_exchange_weak_explicit(&e->refs, &r, r + 1, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

int mp_intern_acquire(struct mp_str s, const struct mp_istr **out)
{
    if (s.len > MP_INTERN_MAX_LEN)
        return MP_EINVAL;
    pthread_once(&init_once, init_stripes);
    const char *p = s.len ? s.ptr : "";
    uint32_t h = (uint32_t)XXH3_64bits(p, s.len);
    struct stripe *st = stripe_of(h);

    pthread_mutex_lock(&st->mu);
    if (st->cap) {
        size_t mask = st->cap - 1;
        for (size_t i = h & mask; st->slots[i]; i = (i + 1) & mask) {
            struct mp_istr *e = st->slots[i];
            if (e->hash == h && e->len == s.len && memcmp(e->s, p, s.len) == 0) {
                ref_inc(e);
                pthread_mutex_unlock(&st->mu);
                *out = e;
                return 0;
            }
        }
    }
    /* grow at 3/4 load, before inserting, so the probe loop always finds a hole */
    if ((st->used + 1) * 4 > st->cap * 3) {
        int rc = resize_locked(st, st->cap ? st->cap * 2 : MIN_CAP);
        if (rc) {
            pthread_mutex_unlock(&st->mu);
            return rc;
        }
    }
    struct mp_istr *e = entry_alloc_locked(st, entry_size(s.len));
    if (!e) {
        pthread_mutex_unlock(&st->mu);
        return MP_ENOMEM;
    }
    atomic_init(&e->refs, 1);
    e->len = (uint32_t)s.len;
    e->hash = h;
    memcpy(e->s, p, s.len);
    e->s[s.len] = '\0';
    size_t mask = st->cap - 1;
    size_t i = h & mask;
    while (st->slots[i])
        i = (i + 1) & mask;
    st->slots[i] = e;
    st->used++;
    pthread_mutex_unlock(&st->mu);
    *out = e;
    return 0;
}

const struct mp_istr *mp_intern_dup(const struct mp_istr *is)
{
    ref_inc((struct mp_istr *)is);
    return is;
}

/* Removes e from its stripe's table (backward-shift deletion). Stripe lock held. */
static void unlink_locked(struct stripe *st, struct mp_istr *e)
{
    size_t mask = st->cap - 1;
    size_t i = e->hash & mask;
    while (st->slots[i] != e) {
        if (!st->slots[i]) {
            fprintf(stderr, "level=error msg=\"interned string missing from its stripe\" "
                            "len=%u hash=%08x\n", e->len, e->hash);
            abort();
        }
        i = (i + 1) & mask;
    }
    /* Pull later members of the cluster back so lookups never cross a hole before them. */
    for (size_t j = (i + 1) & mask; st->slots[j]; j = (j + 1) & mask) {
        size_t home = st->slots[j]->hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            st->slots[i] = st->slots[j];
            i = j;
        }
    }
    st->slots[i] = NULL;
    st->used--;
}

void mp_intern_release(const struct mp_istr *is)
{
    if (!is)
        return;
    struct mp_istr *e = (struct mp_istr *)is;
    uint32_t r = atomic_load_explicit(&e->refs, memory_order_relaxed);
    for (;;) {
        if (r == MP_ISTR_IMMORTAL)
            return;
        if (r == 1)
            break;
        /* release: our reads of the string happen before anyone frees it */
        if (atomic_compare_exchange_weak_explicit(&e->refs, &r, r - 1, memory_order_release,
                                                  memory_order_relaxed))
            return;
    }
    struct stripe *st = stripe_of(e->hash);
    pthread_mutex_lock(&st->mu);
    /* A lookup may have taken a reference since we looked; only 1 -> 0 frees. */
    if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1) {
        unlink_locked(st, e);
        entry_free_locked(st, e);
        /* shrink at 1/8 load so a churned-out stripe gives its table back */
        if (st->cap > MIN_CAP && st->used * 8 < st->cap)
            (void)resize_locked(st, st->cap / 2);
    }
    pthread_mutex_unlock(&st->mu);
}

void mp_intern_stats(size_t *strings, size_t *bytes)
{
    pthread_once(&init_once, init_stripes);
    size_t n = 0, b = 0;
    for (size_t i = 0; i < MP_INTERN_STRIPES; i++) {
        pthread_mutex_lock(&stripes[i].mu);
        n += stripes[i].used;
        b += stripes[i].bytes;
        pthread_mutex_unlock(&stripes[i].mu);
    }
    if (strings)
        *strings = n;
    if (bytes)
        *bytes = b;
}

const char *mp_istr_cstr(const struct mp_istr *is)
{
    return is->s;
}

size_t mp_istr_len(const struct mp_istr *is)
{
    return is->len;
}

struct mp_str mp_istr_str(const struct mp_istr *is)
{
    return (struct mp_str){is->s, is->len};
}
