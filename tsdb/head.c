/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/head.c: the head block (tsdb/head.h; spec tsdb.md section 2).
 *
 * Memory per series (the budget is 1 KiB at 1M series with 3 h in the head):
 *   struct hseries       ~112 B + its labels as uvarint symbol ids (~2-4 B per label)
 *   table links           2 bucket pointers (ref table, hash table)
 *   open chunk            struct tsdb_xor + its byte buffer (up to ~1 KiB, usually 100-250 B)
 *   m-mapped chunks       24 B descriptor each (9 for 3 h at 10 s)
 *   postings              ~4 B per label pair (postings.c)
 *
 * Chunk life: samples go to the open chunk; when the cut policy (chunk_xor.h) starts a new one,
 * the full chunk moves to the series' frozen list, and the committing appender writes it to
 * chunks_head/ after releasing the series lock, then replaces it by a descriptor. Without
 * chunks_head (no data directory) the frozen list simply keeps every chunk in memory. */
#define _GNU_SOURCE /* qsort_r */
#include "tsdb/head.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/log.h"
#include "tsdb/bytes.h"
#include "tsdb/chunk_xor.h"
#include "tsdb/head_chunks.h"
#include "tsdb/lcache.h"
#include "tsdb/postings.h"
#include "tsdb/record.h"
#include "tsdb/spin.h"
#include "tsdb/wal.h"

#define STRIPE_BITS 12
#define STRIPES (1u << STRIPE_BITS)
/* Runs of 2^RUN_BITS consecutive refs share a ref stripe (a scrape's series were created
 * together, so their refs are consecutive): a batch locks a stripe once per run, and their
 * slots are adjacent. */
#define RUN_BITS 5
#define RUN_MASK ((1u << RUN_BITS) - 1)
/* A batch holds one stripe lock for at most this many samples. */
#define RUN_HOLD 64
#define SYM_PAGE_BITS 12
#define SYM_PAGE (1u << SYM_PAGE_BITS)
#define SYM_PAGES (1u << 16) /* 2^28 distinct strings at most */
#define POOL_MAX 16
#define MAX_LABELS 4096

/* ---- symbols -------------------------------------------------------------------------------- */

struct sym {
    const struct mp_istr *s; /* NULL: free id */
    uint32_t refs;           /* series using it (each use counted) */
};

struct symtab {
    pthread_mutex_t mu;
    _Atomic(struct sym *) *pages; /* SYM_PAGES slots; pages never move once published */
    uint32_t next;                /* next never-used id */
    uint32_t *free_ids;
    size_t nfree, capfree;
    uint32_t *slots; /* open addressing, linear probing: id + 1, 0 = empty */
    size_t cap, n;
};

static size_t ptr_hash(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    return (size_t)x;
}

static struct sym *sym_at(const struct symtab *st, uint32_t id)
{
    /* acquire: pairs with the release store that published the page */
    struct sym *page = atomic_load_explicit(&st->pages[id >> SYM_PAGE_BITS], memory_order_acquire);
    return &page[id & (SYM_PAGE - 1)];
}

static void symtab_init(struct symtab *st)
{
    pthread_mutex_init(&st->mu, NULL);
    st->pages = mp_xcalloc(SYM_PAGES, sizeof *st->pages);
    st->cap = 1024;
    st->slots = mp_xcalloc(st->cap, sizeof *st->slots);
}

static void symtab_fini(struct symtab *st)
{
    for (uint32_t p = 0; p < SYM_PAGES; p++) {
        struct sym *page = atomic_load_explicit(&st->pages[p], memory_order_relaxed);
        if (!page)
            continue;
        for (uint32_t i = 0; i < SYM_PAGE; i++)
            mp_intern_release(page[i].s);
        mp_free(page);
    }
    mp_free(st->pages);
    mp_free(st->slots);
    mp_free(st->free_ids);
    pthread_mutex_destroy(&st->mu);
}

/* Slot index holding s, or the empty slot where it would go. Mutex held. */
static size_t sym_find_locked(const struct symtab *st, const struct mp_istr *s)
{
    size_t mask = st->cap - 1;
    size_t i = ptr_hash(s) & mask;
    while (st->slots[i] && sym_at(st, st->slots[i] - 1)->s != s)
        i = (i + 1) & mask;
    return i;
}

static void sym_grow_locked(struct symtab *st)
{
    size_t ncap = st->cap * 2;
    uint32_t *old = st->slots;
    size_t ocap = st->cap;
    st->slots = mp_xcalloc(ncap, sizeof *st->slots);
    st->cap = ncap;
    for (size_t i = 0; i < ocap; i++) {
        if (!old[i])
            continue;
        size_t j = ptr_hash(sym_at(st, old[i] - 1)->s) & (ncap - 1);
        while (st->slots[j])
            j = (j + 1) & (ncap - 1);
        st->slots[j] = old[i];
    }
    mp_free(old);
}

/* Backward-shift deletion keeps linear probing correct without tombstones. Mutex held. */
static void sym_unlink_locked(struct symtab *st, size_t i)
{
    size_t mask = st->cap - 1;
    size_t j = i;
    for (;;) {
        st->slots[i] = 0;
        for (;;) {
            j = (j + 1) & mask;
            if (!st->slots[j])
                return;
            size_t home = ptr_hash(sym_at(st, st->slots[j] - 1)->s) & mask;
            /* j may move to i if its home is not cyclically inside (i, j] */
            if (i <= j ? (home <= i || home > j) : (home <= i && home > j))
                break;
        }
        st->slots[i] = st->slots[j];
        i = j;
    }
}

/* Id of s with one more use. MP_ELIMIT when the id space is exhausted. Mutex held. */
static int sym_acquire_locked(struct symtab *st, const struct mp_istr *s, uint32_t *id)
{
    size_t i = sym_find_locked(st, s);
    if (st->slots[i]) {
        *id = st->slots[i] - 1;
        sym_at(st, *id)->refs++;
        return 0;
    }
    uint32_t nid;
    if (st->nfree) {
        nid = st->free_ids[--st->nfree];
    } else {
        if (st->next >= SYM_PAGES * SYM_PAGE - 1)
            return MP_ELIMIT;
        nid = st->next++;
        if ((nid & (SYM_PAGE - 1)) == 0 &&
            !atomic_load_explicit(&st->pages[nid >> SYM_PAGE_BITS], memory_order_relaxed)) {
            struct sym *page = mp_xcalloc(SYM_PAGE, sizeof *page);
            atomic_store_explicit(&st->pages[nid >> SYM_PAGE_BITS], page, memory_order_release);
        }
    }
    struct sym *e = sym_at(st, nid);
    e->s = mp_intern_dup(s);
    e->refs = 1;
    st->slots[i] = nid + 1;
    if (++st->n * 4 > st->cap * 3)
        sym_grow_locked(st);
    *id = nid;
    return 0;
}

static void sym_release_locked(struct symtab *st, uint32_t id)
{
    struct sym *e = sym_at(st, id);
    if (--e->refs)
        return;
    sym_unlink_locked(st, sym_find_locked(st, e->s));
    st->n--;
    mp_intern_release(e->s);
    e->s = NULL;
    if (st->nfree == st->capfree) {
        st->capfree = st->capfree ? st->capfree * 2 : 256;
        st->free_ids = mp_xrealloc(st->free_ids, st->capfree * sizeof *st->free_ids);
    }
    st->free_ids[st->nfree++] = id;
}

/* ---- series ----------------------------------------------------------------------------- */

struct gone { /* a series evicted as ended */
    uint64_t hash; /* of its labels */
    int64_t last_t;
    uint64_t last_v;
};

struct mmc { /* a chunk in chunks_head/ */
    uint64_t ref;
    int64_t mint, maxt;
};

struct mm_found {
    uint64_t series_ref;
    struct mmc c;
};

struct frozen { /* a full chunk not yet written to chunks_head/ (or kept: no chunks_head) */
    struct frozen *next; /* older */
    struct tsdb_xor c;
};

enum { LOG_NO = 0, LOG_PENDING = 1, LOG_DONE = 2 };

/* Field order matters with a million series: add reads ref, last_t, last_v, pending,
 * has_sample and open.buf/pos, all in the first 64 bytes (one cache miss instead of three);
 * commit's append then touches open and next_at, the second line. */
struct hseries {
    uint64_t ref;
    int64_t last_t;
    uint64_t last_v;
    uint32_t pending;        /* appenders holding a pointer to it (ref stripe lock) */
    _Atomic uint8_t logged;  /* series record in the WAL: LOG_* */
    bool has_sample;
    uint16_t lbl_len;
    struct tsdb_xor open;  /* buf NULL: none */
    int64_t next_at; /* cut policy state (struct tsdb_xor_cutter.next_at) */
    struct frozen *frozen; /* newest first */
    struct mmc *mm;
    uint32_t n_mm, cap_mm;
    struct hseries *hash_next;
    uint64_t hash;
    uint8_t lbl[]; /* uvarint count, then (name id, value id) pairs */
};

/* By label hash: chained through hseries.hash_next (used at creation and GC only). */
struct stripe {
    pthread_mutex_t mu;
    struct hseries **tab;
    uint32_t cap, n;
} __attribute__((aligned(64)));

/* By ref: open addressing with the ref in the slot, so a lookup touches the slot and then only
 * the series it finds. Refs in one stripe share bits RUN_BITS .. RUN_BITS + STRIPE_BITS - 1, so
 * the others form a dense counter (rhome) and linear probing hardly ever probes; consecutive
 * refs of one run land in consecutive slots. */
struct rslot {
    uint64_t ref; /* 0: empty */
    struct hseries *s;
};

/* A ref stripe is locked twice per appended sample (add, commit) for a few dozen instructions:
 * a spinlock (tsdb/spin.h). */
struct rstripe {
    struct spin mu;
    struct rslot *tab;
    uint32_t cap, n;
} __attribute__((aligned(64)));

struct tsdb_head {
    struct tsdb_head_options o;
    struct rstripe refs[STRIPES];
    struct stripe hashes[STRIPES];
    struct symtab syms;
    struct tsdb_mempostings *postings;
    _Atomic uint32_t lc_owner; /* label-set cache owner (lcache.h), 0 until the first query */
    _Atomic uint64_t last_ref;
    _Atomic int64_t min_time, max_time;
    _Atomic int64_t min_valid; /* end of the last persisted block */
    _Atomic uint64_t num_series, num_chunks;
    struct {
        _Atomic uint64_t samples_appended, out_of_order, out_of_bounds, duplicates;
        _Atomic uint64_t series_created, series_removed, chunks_created, chunks_removed;
        _Atomic uint64_t wal_unknown_refs, truncations, commits_failed;
    } c;
    _Atomic size_t series_bytes; /* hseries structs + chunk descriptors + open chunk buffers */
    struct mm_found *replay_mm;   /* chunks_head records seen at open, until replay */
    size_t nreplay_mm, capreplay_mm;
    pthread_mutex_t pool_mu;
    struct tsdb_head_appender *pool[POOL_MAX];
    size_t npool;
    /* Appenders alive per epoch (tsdb_head_wait_appenders flips it and waits for the old). */
    _Atomic uint32_t epoch;
    _Atomic uint64_t inflight[2];
    /* Series evicted as ended, by label hash, sorted: a series created again with the same
     * labels starts from their last sample, so that a sample at or before it is refused as
     * out of order or duplicate (as Prometheus, which would still hold the series). Kept while
     * appenders could still add at that time (pruned at eviction). */
    pthread_mutex_t gone_mu;
    struct gone *gone;
    size_t ngone;
};

/* relaxed: statistics only */
#define CINC(h, f) atomic_fetch_add_explicit(&(h)->c.f, 1, memory_order_relaxed)
#define CADD(h, f, v) atomic_fetch_add_explicit(&(h)->c.f, (v), memory_order_relaxed)


/* Series labels are written by this file only, so decoding trusts them. */
static uint32_t get_uvarint(const uint8_t **pp)
{
    const uint8_t *p = *pp;
    uint32_t v = 0;
    unsigned shift = 0;
    while (*p & 0x80) {
        v |= (uint32_t)(*p++ & 0x7f) << shift;
        shift += 7;
    }
    v |= (uint32_t)*p++ << shift;
    *pp = p;
    return v;
}

/* Decodes s's labels into pairs[2 * i], pairs[2 * i + 1]; returns the count. pairs has room for
 * MAX_LABELS labels. */
static size_t series_pairs(const struct tsdb_head *h, const struct hseries *s,
                           const struct mp_istr **pairs)
{
    const uint8_t *p = s->lbl;
    size_t n = get_uvarint(&p);
    for (size_t i = 0; i < 2 * n; i++)
        pairs[i] = sym_at(&h->syms, get_uvarint(&p))->s;
    return n;
}

static bool series_has_labels(const struct tsdb_head *h, const struct hseries *s,
                              const struct mp_labels *ls)
{
    const uint8_t *p = s->lbl;
    size_t n = get_uvarint(&p);
    if (n != mp_labels_count(ls))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (sym_at(&h->syms, get_uvarint(&p))->s != mp_labels_name_at(ls, i))
            return false;
        if (sym_at(&h->syms, get_uvarint(&p))->s != mp_labels_value_at(ls, i))
            return false;
    }
    return true;
}

#define PAIRS_STACK 64

/* s's pairs (series_pairs) in stack[PAIRS_STACK] when they fit, else in an array the caller
 * frees (the return value != stack); *n gets the label count. */
static const struct mp_istr **series_pairs_in(const struct tsdb_head *h, const struct hseries *s,
                                              const struct mp_istr **stack, size_t *n)
{
    const uint8_t *p = s->lbl;
    *n = get_uvarint(&p);
    const struct mp_istr **pairs =
        2 * *n > PAIRS_STACK ? mp_xmalloc(2 * *n * sizeof *pairs) : stack;
    series_pairs(h, s, pairs);
    return pairs;
}

static int series_labels(const struct tsdb_head *h, const struct hseries *s, struct mp_labels **out,
                         struct mp_err *err)
{
    const struct mp_istr *stack[PAIRS_STACK];
    size_t n;
    const struct mp_istr **pairs = series_pairs_in(h, s, stack, &n);
    int rc = mp_labels_create_interned(pairs, n, out, err);
    if (pairs != stack)
        mp_free(pairs);
    return rc;
}

/* Heap bytes of a chunk's buffer. */
static size_t xor_bytes(const struct tsdb_xor *c)
{
    return c->cap;
}

static bool has_chunk(const struct tsdb_xor *c)
{
    return c->buf != NULL;
}

/* ---- striped tables ------------------------------------------------------------------------ */

static void stripe_insert_locked(struct stripe *st, struct hseries *s)
{
    if (st->n >= st->cap) {
        uint32_t ncap = st->cap ? st->cap * 2 : 16;
        struct hseries **nt = mp_xcalloc(ncap, sizeof *nt);
        for (uint32_t i = 0; i < st->cap; i++) {
            struct hseries *e = st->tab[i];
            while (e) {
                struct hseries *next = e->hash_next;
                size_t b = (size_t)(e->hash >> STRIPE_BITS) & (ncap - 1);
                e->hash_next = nt[b];
                nt[b] = e;
                e = next;
            }
        }
        mp_free(st->tab);
        st->tab = nt;
        st->cap = ncap;
    }
    size_t b = (size_t)(s->hash >> STRIPE_BITS) & (st->cap - 1);
    s->hash_next = st->tab[b];
    st->tab[b] = s;
    st->n++;
}

static size_t rhome(uint64_t ref, uint32_t cap)
{
    return (size_t)((ref >> (RUN_BITS + STRIPE_BITS)) << RUN_BITS | (ref & RUN_MASK)) & (cap - 1);
}

static struct rstripe *ref_stripe(struct tsdb_head *h, uint64_t ref)
{
    return &h->refs[(ref >> RUN_BITS) & (STRIPES - 1)];
}

static struct hseries *by_ref_locked(const struct rstripe *st, uint64_t ref)
{
    if (!st->cap)
        return NULL;
    size_t mask = st->cap - 1;
    for (size_t i = rhome(ref, st->cap);; i = (i + 1) & mask) {
        if (st->tab[i].ref == ref)
            return st->tab[i].s;
        if (st->tab[i].ref == 0)
            return NULL;
    }
}

static void rslot_put(struct rslot *tab, uint32_t cap, struct rslot e)
{
    size_t i = rhome(e.ref, cap);
    while (tab[i].ref)
        i = (i + 1) & (cap - 1);
    tab[i] = e;
}

static void ref_insert_locked(struct rstripe *st, struct hseries *s)
{
    if ((st->n + 1) * 4 > st->cap * 3) {
        uint32_t ncap = st->cap ? st->cap * 2 : 16;
        struct rslot *nt = mp_xcalloc(ncap, sizeof *nt);
        for (uint32_t i = 0; i < st->cap; i++)
            if (st->tab[i].ref)
                rslot_put(nt, ncap, st->tab[i]);
        mp_free(st->tab);
        st->tab = nt;
        st->cap = ncap;
    }
    rslot_put(st->tab, st->cap, (struct rslot){s->ref, s});
    st->n++;
}

/* Backward-shift deletion, as the symbol table's. */
static void ref_remove_locked(struct rstripe *st, uint64_t ref)
{
    size_t mask = st->cap - 1, i = rhome(ref, st->cap);
    while (st->tab[i].ref != ref) {
        if (st->tab[i].ref == 0)
            return;
        i = (i + 1) & mask;
    }
    st->n--;
    size_t j = i;
    for (;;) {
        st->tab[i] = (struct rslot){0, NULL};
        for (;;) {
            j = (j + 1) & mask;
            if (!st->tab[j].ref)
                return;
            size_t home = rhome(st->tab[j].ref, st->cap);
            if (i <= j ? (home <= i || home > j) : (home <= i && home > j))
                break;
        }
        st->tab[i] = st->tab[j];
        i = j;
    }
}

static struct hseries *by_labels_locked(struct tsdb_head *h, struct stripe *st, uint64_t hash,
                                        const struct mp_labels *ls)
{
    if (!st->cap)
        return NULL;
    struct hseries *e = st->tab[(size_t)(hash >> STRIPE_BITS) & (st->cap - 1)];
    while (e && !(e->hash == hash && series_has_labels(h, e, ls)))
        e = e->hash_next;
    return e;
}

/* ---- creation and removal ----------------------------------------------------------------- */

static void bytes_add(struct tsdb_head *h, ptrdiff_t d)
{
    /* relaxed: statistics only */
    atomic_fetch_add_explicit(&h->series_bytes, (size_t)d, memory_order_relaxed);
}

/* A series created again after it was evicted as ended takes over its last sample (it has no
 * chunk, so has_sample only feeds the order check). A 64-bit label hash collision would make a
 * new series refuse samples older than the other's last one; at 2^-64 per pair, accepted. */
static void gone_restore(struct tsdb_head *h, struct hseries *s)
{
    pthread_mutex_lock(&h->gone_mu);
    size_t lo = 0, hi = h->ngone;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->gone[mid].hash < s->hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < h->ngone && h->gone[lo].hash == s->hash) {
        s->last_t = h->gone[lo].last_t;
        s->last_v = h->gone[lo].last_v;
        s->has_sample = true;
    }
    pthread_mutex_unlock(&h->gone_mu);
}

static int gone_cmp(const void *pa, const void *pb)
{
    const struct gone *a = pa, *b = pb;
    if (a->hash != b->hash)
        return a->hash < b->hash ? -1 : 1;
    return (a->last_t > b->last_t) - (a->last_t < b->last_t);
}

/* Adds add[0..n) (any order; consumed) and drops entries whose last sample is before
 * prune_before (appenders refuse those times as out of bounds anyway). */
static void gone_update(struct tsdb_head *h, struct gone *add, size_t n, int64_t prune_before)
{
    pthread_mutex_lock(&h->gone_mu);
    size_t total = h->ngone + n;
    struct gone *all = mp_xmalloc((total ? total : 1) * sizeof *all);
    if (h->ngone)
        memcpy(all, h->gone, h->ngone * sizeof *all);
    if (n)
        memcpy(all + h->ngone, add, n * sizeof *all);
    qsort(all, total, sizeof *all, gone_cmp);
    size_t k = 0;
    for (size_t i = 0; i < total; i++) {
        if (all[i].last_t < prune_before)
            continue;
        if (k > 0 && all[k - 1].hash == all[i].hash)
            k--; /* the same labels evicted twice: the later one (sorted last) wins */
        all[k++] = all[i];
    }
    mp_free(h->gone);
    h->gone = all;
    h->ngone = k;
    pthread_mutex_unlock(&h->gone_mu);
}

/* Creates the series for ls with ref (0: allocate the next) unless one exists; *out is the
 * series, *created tells which. pending is incremented when want_pending. */
static int series_get_or_create(struct tsdb_head *h, const struct mp_labels *ls, uint64_t ref,
                                bool want_pending, bool replay, struct hseries **out,
                                bool *created, struct mp_err *err)
{
    size_t n = mp_labels_count(ls);
    if (n == 0)
        return mp_err_set(err, MP_EINVAL, "empty labelset");
    if (n > MAX_LABELS)
        return mp_err_set(err, MP_EINVAL, "series has %zu labels, more than %u", n, MAX_LABELS);
    uint64_t hash = mp_labels_hash(ls);
    struct stripe *hs = &h->hashes[hash & (STRIPES - 1)];
    pthread_mutex_lock(&hs->mu);
    struct hseries *s = by_labels_locked(h, hs, hash, ls);
    if (s) {
        struct rstripe *rs = ref_stripe(h, s->ref);
        if (want_pending) {
            spin_lock(&rs->mu);
            s->pending++;
            spin_unlock(&rs->mu);
        }
        pthread_mutex_unlock(&hs->mu);
        *out = s;
        *created = false;
        return 0;
    }
    /* Encode the labels as symbol ids (10 bytes per id at most). */
    uint8_t stackbuf[512];
    size_t maxlen = 5 + n * 10;
    uint8_t *enc = maxlen <= sizeof stackbuf ? stackbuf : mp_xmalloc(maxlen);
    size_t len = tsdb_put_uvarint(enc, n);
    int rc = 0;
    pthread_mutex_lock(&h->syms.mu);
    size_t done = 0;
    for (; done < 2 * n; done++) {
        const struct mp_istr *str = done & 1 ? mp_labels_value_at(ls, done / 2)
                                              : mp_labels_name_at(ls, done / 2);
        uint32_t id;
        rc = sym_acquire_locked(&h->syms, str, &id);
        if (rc)
            break;
        len += tsdb_put_uvarint(enc + len, id);
    }
    if (rc) {
        const uint8_t *p = enc;
        (void)get_uvarint(&p);
        for (size_t i = 0; i < done; i++)
            sym_release_locked(&h->syms, get_uvarint(&p));
    }
    pthread_mutex_unlock(&h->syms.mu);
    if (rc) {
        pthread_mutex_unlock(&hs->mu);
        if (enc != stackbuf)
            mp_free(enc);
        return mp_err_set(err, rc, "head symbol table is full");
    }
    if (len > UINT16_MAX) {
        /* cannot happen below MAX_LABELS labels of 5-byte ids; keep the invariant explicit */
        mp_panic("series label encoding of %zu bytes", len);
    }
    s = mp_xcalloc(1, sizeof *s + len);
    memcpy(s->lbl, enc, len);
    s->lbl_len = (uint16_t)len;
    if (enc != stackbuf)
        mp_free(enc);
    s->hash = hash;
    s->last_t = INT64_MIN;
    if (!replay)
        gone_restore(h, s);
    s->pending = want_pending ? 1 : 0;
    if (replay)
        atomic_init(&s->logged, LOG_DONE);
    if (ref == 0) {
        /* relaxed: refs only need to be unique, the stripe locks order everything else */
        ref = atomic_fetch_add_explicit(&h->last_ref, 1, memory_order_relaxed) + 1;
    } else {
        uint64_t cur = atomic_load_explicit(&h->last_ref, memory_order_relaxed);
        while (cur < ref && !atomic_compare_exchange_weak_explicit(
                                &h->last_ref, &cur, ref, memory_order_relaxed,
                                memory_order_relaxed))
            ;
    }
    s->ref = ref;
    struct rstripe *rs = ref_stripe(h, ref);
    spin_lock(&rs->mu);
    ref_insert_locked(rs, s);
    spin_unlock(&rs->mu);
    stripe_insert_locked(hs, s);
    pthread_mutex_unlock(&hs->mu);
    rc = replay ? tsdb_mempostings_add_unsorted(h->postings, ref, ls)
                : tsdb_mempostings_add(h->postings, ref, ls);
    if (rc)
        mp_panic("head postings: adding series %llu failed (%d)", (unsigned long long)ref, rc);
    bytes_add(h, (ptrdiff_t)mp_alloc_size(s));
    atomic_fetch_add_explicit(&h->num_series, 1, memory_order_relaxed);
    CINC(h, series_created);
    *out = s;
    *created = true;
    return 0;
}

static void series_free_chunks(struct tsdb_head *h, struct hseries *s)
{
    if (has_chunk(&s->open)) {
        bytes_add(h, -(ptrdiff_t)xor_bytes(&s->open));
        tsdb_xor_fini(&s->open);
    }
    while (s->frozen) {
        struct frozen *f = s->frozen;
        s->frozen = f->next;
        bytes_add(h, -(ptrdiff_t)xor_bytes(&f->c));
        tsdb_xor_fini(&f->c);
        mp_free(f);
    }
    bytes_add(h, -(ptrdiff_t)mp_alloc_size(s->mm));
    mp_free(s->mm);
    s->mm = NULL;
    s->n_mm = s->cap_mm = 0;
}

/* Releases the symbols and the memory of a series already unlinked from both tables. */
static void series_destroy(struct tsdb_head *h, struct hseries *s)
{
    series_free_chunks(h, s);
    const uint8_t *p = s->lbl;
    size_t n = get_uvarint(&p);
    pthread_mutex_lock(&h->syms.mu);
    for (size_t i = 0; i < 2 * n; i++)
        sym_release_locked(&h->syms, get_uvarint(&p));
    pthread_mutex_unlock(&h->syms.mu);
    bytes_add(h, -(ptrdiff_t)mp_alloc_size(s));
    mp_free(s);
}

/* ---- options, create, destroy ----------------------------------------------------------- */

void tsdb_head_options_init(struct tsdb_head_options *o)
{
    memset(o, 0, sizeof *o);
    o->chunk_range_ms = TSDB_CHUNK_RANGE_DEFAULT_MS;
    o->samples_per_chunk = TSDB_SAMPLES_PER_CHUNK_DEFAULT;
}

int tsdb_head_create(const struct tsdb_head_options *o, struct tsdb_head **out,
                     struct mp_err *err)
{
    if (o->chunk_range_ms <= 0 || o->samples_per_chunk < 4)
        return mp_err_set(err, MP_EINVAL, "head: chunk range %lld ms, %u samples per chunk",
                          (long long)o->chunk_range_ms, o->samples_per_chunk);
    struct tsdb_head *h = mp_calloc(1, sizeof *h);
    if (!h)
        return mp_err_set(err, MP_ENOMEM, "head");
    h->o = *o;
    for (size_t i = 0; i < STRIPES; i++) {
        pthread_mutex_init(&h->hashes[i].mu, NULL);
    }
    symtab_init(&h->syms);
    int rc = tsdb_mempostings_create(&h->postings);
    if (rc) {
        tsdb_head_destroy(h);
        return mp_err_set(err, rc, "head postings");
    }
    atomic_init(&h->min_time, INT64_MAX);
    atomic_init(&h->max_time, INT64_MIN);
    atomic_init(&h->min_valid, INT64_MIN);
    pthread_mutex_init(&h->pool_mu, NULL);
    pthread_mutex_init(&h->gone_mu, NULL);
    *out = h;
    return 0;
}

static void appender_free(struct tsdb_head_appender *a);

void tsdb_head_destroy(struct tsdb_head *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < STRIPES; i++) {
        struct rstripe *st = &h->refs[i];
        for (uint32_t b = 0; b < st->cap; b++) {
            struct hseries *s = st->tab[b].s;
            if (s) {
                series_free_chunks(h, s);
                mp_free(s);
            }
        }
        mp_free(st->tab);
        mp_free(h->hashes[i].tab);
        pthread_mutex_destroy(&h->hashes[i].mu);
    }
    for (size_t i = 0; i < h->npool; i++)
        appender_free(h->pool[i]);
    pthread_mutex_destroy(&h->pool_mu);
    pthread_mutex_destroy(&h->gone_mu);
    mp_free(h->gone);
    tsdb_mempostings_destroy(h->postings);
    symtab_fini(&h->syms);
    mp_free(h->replay_mm);
    tsdb_lcache_forget(atomic_load_explicit(&h->lc_owner, memory_order_relaxed));
    mp_free(h);
}

void tsdb_head_set_min_valid_time(struct tsdb_head *h, int64_t t_ms)
{
    atomic_store_explicit(&h->min_valid, t_ms, memory_order_relaxed);
}

int64_t tsdb_head_min_time(const struct tsdb_head *h)
{
    return atomic_load_explicit(&h->min_time, memory_order_relaxed);
}

int64_t tsdb_head_max_time(const struct tsdb_head *h)
{
    return atomic_load_explicit(&h->max_time, memory_order_relaxed);
}

uint64_t tsdb_head_num_series(const struct tsdb_head *h)
{
    return atomic_load_explicit(&h->num_series, memory_order_relaxed);
}

uint64_t tsdb_head_num_chunks(const struct tsdb_head *h)
{
    return atomic_load_explicit(&h->num_chunks, memory_order_relaxed);
}

void tsdb_head_counters_get(const struct tsdb_head *h, struct tsdb_head_counters *o)
{
#define LD(f) o->f = atomic_load_explicit(&h->c.f, memory_order_relaxed)
    LD(samples_appended);
    LD(out_of_order);
    LD(out_of_bounds);
    LD(duplicates);
    LD(series_created);
    LD(series_removed);
    LD(chunks_created);
    LD(chunks_removed);
    LD(wal_unknown_refs);
    LD(truncations);
    LD(commits_failed);
#undef LD
}

size_t tsdb_head_bytes(const struct tsdb_head *h)
{
    size_t b = atomic_load_explicit(&h->series_bytes, memory_order_relaxed);
    b += tsdb_mempostings_bytes(h->postings);
    for (size_t i = 0; i < STRIPES; i++)
        b += h->refs[i].cap * sizeof(struct rslot) + h->hashes[i].cap * sizeof(struct hseries *);
    b += SYM_PAGES * sizeof(void *) + h->syms.cap * sizeof(uint32_t) +
         (size_t)h->syms.next * sizeof(struct sym);
    return b;
}

static void widen_time(struct tsdb_head *h, int64_t mint, int64_t maxt)
{
    int64_t cur = atomic_load_explicit(&h->min_time, memory_order_relaxed);
    while (mint < cur && !atomic_compare_exchange_weak_explicit(
                             &h->min_time, &cur, mint, memory_order_relaxed,
                             memory_order_relaxed))
        ;
    cur = atomic_load_explicit(&h->max_time, memory_order_relaxed);
    while (maxt > cur && !atomic_compare_exchange_weak_explicit(
                             &h->max_time, &cur, maxt, memory_order_relaxed,
                             memory_order_relaxed))
        ;
}

/* ---- appending to a series ---------------------------------------------------------------- */

/* Order check against the committed data of s. 0: append; 1: exact duplicate, drop silently;
 * negative: the error. Ref stripe lock held. */
static int appendable_locked(const struct hseries *s, int64_t t, uint64_t vbits)
{
    if (!s->has_sample || t > s->last_t)
        return 0;
    if (t < s->last_t)
        return MP_EOUTOFORDER;
    return vbits == s->last_v ? 1 : MP_EDUPLICATE;
}

/* Appends to the open chunk, cutting a new one when the policy says so. Returns true when a
 * full chunk was moved to the frozen list. Ref stripe lock held. */
static bool append_locked(struct tsdb_head *h, struct hseries *s, int64_t t, uint64_t vbits)
{
    struct tsdb_xor_cutter cut = {h->o.chunk_range_ms, h->o.samples_per_chunk, s->next_at};
    bool froze = false;
    bool open = has_chunk(&s->open);
    if (tsdb_xor_cutter_should_cut(&cut, open ? &s->open : NULL, t)) {
        if (open) {
            struct frozen *f = mp_xmalloc(sizeof *f);
            f->c = s->open;
            f->next = s->frozen;
            s->frozen = f;
            froze = true;
        }
        if (tsdb_xor_init(&s->open))
            mp_panic("head: out of memory creating a chunk for series %llu",
                     (unsigned long long)s->ref);
        bytes_add(h, (ptrdiff_t)xor_bytes(&s->open));
        atomic_fetch_add_explicit(&h->num_chunks, 1, memory_order_relaxed);
        CINC(h, chunks_created);
    }
    s->next_at = cut.next_at;
    size_t before = s->open.cap;
    if (tsdb_xor_append(&s->open, t, tsdb_f64_from_bits(vbits)))
        mp_panic("head: appending to the chunk of series %llu failed", (unsigned long long)s->ref);
    if (s->open.cap != before)
        bytes_add(h, (ptrdiff_t)(s->open.cap - before));
    s->last_t = t;
    s->last_v = vbits;
    s->has_sample = true;
    return froze;
}

/* Writes the oldest frozen chunks of s to chunks_head/ and replaces them by descriptors. Called
 * without locks by the thread that froze them (it holds a pending count, so s stays). */
static int mmap_frozen(struct tsdb_head *h, struct hseries *s, struct mp_err *err)
{
    struct rstripe *rs = ref_stripe(h, s->ref);
    for (;;) {
        spin_lock(&rs->mu);
        struct frozen *f = s->frozen, *prev = NULL;
        if (f)
            while (f->next) {
                prev = f;
                f = f->next;
            }
        spin_unlock(&rs->mu);
        if (!f)
            return 0;
        /* A full chunk is immutable: reading its bytes without the lock is safe. */
        size_t len;
        const uint8_t *data = tsdb_xor_bytes(&f->c, &len);
        int64_t mint = tsdb_xor_min_time(&f->c), maxt = tsdb_xor_max_time(&f->c);
        uint64_t cref;
        int rc = tsdb_head_chunks_write(h->o.hc, s->ref, mint, maxt, TSDB_ENC_XOR, data, len,
                                        &cref, err);
        if (rc)
            return rc; /* the chunk stays in memory; the next commit that cuts retries */
        spin_lock(&rs->mu);
        /* prev is still f's predecessor: only this thread removes the oldest frozen chunk, and
         * others only push at the front. Re-walk anyway in case prev was the front. */
        prev = NULL;
        for (struct frozen *x = s->frozen; x && x != f; x = x->next)
            prev = x;
        if (prev)
            prev->next = NULL;
        else
            s->frozen = NULL;
        if (s->n_mm == s->cap_mm) {
            size_t old = mp_alloc_size(s->mm);
            s->cap_mm += 2; /* a descriptor every ~20 min: grow slowly, 24 B each */
            s->mm = mp_xrealloc(s->mm, s->cap_mm * sizeof *s->mm);
            bytes_add(h, (ptrdiff_t)mp_alloc_size(s->mm) - (ptrdiff_t)old);
        }
        uint32_t i = s->n_mm++;
        while (i > 0 && s->mm[i - 1].mint > mint) {
            s->mm[i] = s->mm[i - 1];
            i--;
        }
        s->mm[i] = (struct mmc){cref, mint, maxt};
        spin_unlock(&rs->mu);
        bytes_add(h, -(ptrdiff_t)xor_bytes(&f->c));
        tsdb_xor_fini(&f->c);
        mp_free(f);
    }
}

/* ---- the appender --------------------------------------------------------------------------- */

struct asample {
    struct hseries *s;
    int64_t t;
    uint64_t vbits;
};

struct tsdb_head_appender {
    struct tsdb_head *h;
    uint32_t epoch;
    struct asample *smp;
    size_t n, cap;
    int64_t min_valid;
    struct hseries **cut; /* series that froze a chunk during commit */
    size_t ncut, capcut;
    struct hseries **logging; /* series whose record this commit writes */
    size_t nlog, caplog;
    struct tsdb_record_sample *rs;
    size_t rs_cap;
    struct mp_buf rec_series, rec_samples;
};

static void appender_free(struct tsdb_head_appender *a)
{
    mp_free(a->smp);
    mp_free(a->cut);
    mp_free(a->logging);
    mp_free(a->rs);
    mp_buf_fini(&a->rec_series);
    mp_buf_fini(&a->rec_samples);
    mp_free(a);
}

int tsdb_head_appender_create(struct tsdb_head *h, struct tsdb_head_appender **out)
{
    struct tsdb_head_appender *a = NULL;
    pthread_mutex_lock(&h->pool_mu);
    if (h->npool)
        a = h->pool[--h->npool];
    pthread_mutex_unlock(&h->pool_mu);
    if (!a) {
        a = mp_calloc(1, sizeof *a);
        if (!a)
            return MP_ENOMEM;
        a->h = h;
        mp_buf_init(&a->rec_series, 0);
        mp_buf_init(&a->rec_samples, 0);
    }
    int64_t maxt = atomic_load_explicit(&h->max_time, memory_order_relaxed);
    int64_t lo = atomic_load_explicit(&h->min_valid, memory_order_relaxed);
    if (maxt != INT64_MIN && maxt - h->o.chunk_range_ms / 2 > lo)
        lo = maxt - h->o.chunk_range_ms / 2;
    a->min_valid = lo;
    /* seq_cst: the epoch read and the count increment must not be reordered with the
     * compactor's flip-then-read (Dekker-style handshake) */
    for (;;) {
        a->epoch = atomic_load(&h->epoch) & 1;
        atomic_fetch_add(&h->inflight[a->epoch], 1);
        if ((atomic_load(&h->epoch) & 1) == a->epoch)
            break;
        atomic_fetch_sub(&h->inflight[a->epoch], 1);
    }
    *out = a;
    return 0;
}

void tsdb_head_wait_appenders(struct tsdb_head *h)
{
    uint32_t old = atomic_fetch_add(&h->epoch, 1) & 1;
    struct timespec ts = {0, 1000000};
    /* bounded: an appender lives for one scrape; give up after 60 s rather than hang */
    for (int i = 0; i < 60000 && atomic_load(&h->inflight[old]) != 0; i++)
        nanosleep(&ts, NULL);
}

static void appender_done(struct tsdb_head_appender *a)
{
    struct tsdb_head *h = a->h;
    atomic_fetch_sub(&h->inflight[a->epoch], 1);
    a->n = a->ncut = a->nlog = 0;
    /* Do not pool appenders that grew large (a huge backfill batch). */
    if (a->cap > 65536) {
        appender_free(a);
        return;
    }
    pthread_mutex_lock(&h->pool_mu);
    if (h->npool < POOL_MAX) {
        h->pool[h->npool++] = a;
        a = NULL;
    }
    pthread_mutex_unlock(&h->pool_mu);
    if (a)
        appender_free(a);
}

static void release_pending(struct tsdb_head *h, struct hseries *s)
{
    struct rstripe *rs = ref_stripe(h, s->ref);
    spin_lock(&rs->mu);
    s->pending--;
    spin_unlock(&rs->mu);
}

static const char *append_error_text(int rc)
{
    switch (rc) {
    case MP_EOUTOFORDER:
        return "out of order sample";
    case MP_EDUPLICATE:
        return "duplicate sample for timestamp";
    default:
        return "out of bounds";
    }
}

int tsdb_head_appender_add(struct tsdb_head_appender *a, uint64_t ref,
                           const struct mp_labels *ls, int64_t t_ms, double v,
                           uint64_t *ref_out, struct mp_err *err)
{
    struct tsdb_head *h = a->h;
    if (t_ms < a->min_valid) {
        CINC(h, out_of_bounds);
        return mp_err_set(err, MP_EOUTOFBOUNDS, "out of bounds");
    }
    uint64_t vbits = tsdb_f64_bits(v);
    struct hseries *s = NULL;
    struct rstripe *rs;
    int rc;
    if (ref) {
        rs = ref_stripe(h, ref);
        spin_lock(&rs->mu);
        s = by_ref_locked(rs, ref);
        /* a scrape adds its series in the order they were created, so the next refs of this
         * run are likely next: their slots are adjacent, fetch their series now */
        for (uint64_t k = 1; k <= 2 && ((ref + k) & RUN_MASK) != 0; k++) {
            struct hseries *nx = by_ref_locked(rs, ref + k);
            if (nx)
                __builtin_prefetch(nx, 1);
        }
        if (s) {
            rc = appendable_locked(s, t_ms, vbits);
            if (rc == 0) {
                s->pending++;
                /* commit will write where the open chunk ends: fetch that line now, so that a
                 * scrape's batch is in cache by then instead of one memory miss per sample */
                if (s->open.buf)
                    __builtin_prefetch(s->open.buf + (s->open.pos >> 3), 1);
            }
            spin_unlock(&rs->mu);
            goto checked;
        }
        spin_unlock(&rs->mu);
        if (!ls)
            return mp_err_set(err, MP_ENOTFOUND, "unknown series ref %llu",
                              (unsigned long long)ref);
    }
    if (!ls)
        return mp_err_set(err, MP_EINVAL, "no labels and no series ref");
    bool created;
    rc = series_get_or_create(h, ls, 0, true, false, &s, &created, err);
    if (rc)
        return rc;
    rs = ref_stripe(h, s->ref);
    spin_lock(&rs->mu);
    rc = appendable_locked(s, t_ms, vbits);
    if (rc != 0)
        s->pending--;
    spin_unlock(&rs->mu);
checked:
    if (ref_out)
        *ref_out = s->ref;
    if (rc == 1)
        return 0; /* same timestamp, same value: accepted and dropped, as Prometheus */
    if (rc < 0) {
        if (rc == MP_EOUTOFORDER)
            CINC(h, out_of_order);
        else
            CINC(h, duplicates);
        return mp_err_set(err, rc, "%s", append_error_text(rc));
    }
    if (a->n == a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 256;
        struct asample *ns = mp_realloc(a->smp, ncap * sizeof *ns);
        if (!ns) {
            release_pending(h, s);
            return mp_err_set(err, MP_ENOMEM, "appender of %zu samples", a->n);
        }
        a->smp = ns;
        a->cap = ncap;
    }
    a->smp[a->n++] = (struct asample){s, t_ms, vbits};
    return 0;
}

/* Prefetches the series of ref if it lives in the locked stripe rs. */
static void prefetch_in(struct tsdb_head *h, struct rstripe *rs, uint64_t ref)
{
    if (ref && ref_stripe(h, ref) == rs) {
        struct hseries *s = by_ref_locked(rs, ref);
        if (s)
            __builtin_prefetch(s, 1);
    }
}

#define BATCH_AHEAD 8

int tsdb_head_appender_add_refs(struct tsdb_head_appender *a, const uint64_t *refs,
                                const double *v, size_t n, int64_t t_ms, int *status,
                                struct mp_err *err)
{
    struct tsdb_head *h = a->h;
    int first = 0;
    size_t at = 0;
    if (n > 0 && t_ms < a->min_valid)
        first = MP_EOUTOFBOUNDS;
    else if (n > SIZE_MAX / 2 / sizeof *a->smp - a->n)
        first = MP_ENOMEM;
    else if (a->n + n > a->cap) {
        size_t ncap = a->cap ? a->cap : 256;
        while (ncap < a->n + n)
            ncap *= 2;
        struct asample *ns = mp_realloc(a->smp, ncap * sizeof *ns);
        if (!ns)
            first = MP_ENOMEM;
        else {
            a->smp = ns;
            a->cap = ncap;
        }
    }
    if (first) {
        if (first == MP_EOUTOFBOUNDS)
            CADD(h, out_of_bounds, n);
        for (size_t i = 0; status && i < n; i++)
            status[i] = first;
        return mp_err_set(err, first, "%s", first == MP_ENOMEM ? "appender: out of memory"
                                                               : "out of bounds");
    }
    struct rstripe *held = NULL;
    unsigned hold = 0;
    uint64_t ooo = 0, dups = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t ref = refs[i];
        struct rstripe *rs = ref ? ref_stripe(h, ref) : NULL;
        if (rs != held || ++hold >= RUN_HOLD) {
            if (held)
                spin_unlock(&held->mu);
            held = rs;
            hold = 0;
            if (rs) {
                spin_lock(&rs->mu);
                for (size_t k = i + 1; k < i + BATCH_AHEAD && k < n; k++)
                    prefetch_in(h, rs, refs[k]);
            }
        }
        if (rs && i + BATCH_AHEAD < n)
            prefetch_in(h, rs, refs[i + BATCH_AHEAD]);
        struct hseries *s = rs ? by_ref_locked(rs, ref) : NULL;
        int rc = MP_ENOTFOUND;
        if (s) {
            uint64_t vbits = tsdb_f64_bits(v[i]);
            rc = appendable_locked(s, t_ms, vbits);
            if (rc == 0) {
                s->pending++;
                if (s->open.buf)
                    __builtin_prefetch(s->open.buf + (s->open.pos >> 3), 1);
                a->smp[a->n++] = (struct asample){s, t_ms, vbits};
            } else if (rc == 1) {
                rc = 0;
            } else if (rc == MP_EOUTOFORDER) {
                ooo++;
            } else {
                dups++;
            }
        }
        if (status)
            status[i] = rc;
        if (rc && !first) {
            first = rc;
            at = i;
        }
    }
    if (held)
        spin_unlock(&held->mu);
    if (ooo)
        CADD(h, out_of_order, ooo);
    if (dups)
        CADD(h, duplicates, dups);
    if (first)
        return mp_err_set(err, first, "sample %zu: %s", at,
                          first == MP_ENOTFOUND ? "unknown series ref" : append_error_text(first));
    return 0;
}

static void push_series(struct hseries ***arr, size_t *n, size_t *cap, struct hseries *s)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *arr = mp_xrealloc(*arr, *cap * sizeof **arr);
    }
    (*arr)[(*n)++] = s;
}

/* Encodes the Series record (series not yet in the WAL) and the Samples record. */
static int encode_records(struct tsdb_head_appender *a, struct mp_err *err)
{
    struct tsdb_head *h = a->h;
    mp_buf_reset(&a->rec_series);
    mp_buf_reset(&a->rec_samples);
    if (a->rs_cap < a->n) {
        mp_free(a->rs);
        a->rs = mp_xmalloc(a->n * sizeof *a->rs);
        a->rs_cap = a->n;
    }
    for (size_t i = 0; i < a->n; i++) {
        struct hseries *s = a->smp[i].s;
        a->rs[i] = (struct tsdb_record_sample){s->ref, a->smp[i].t,
                                               tsdb_f64_from_bits(a->smp[i].vbits)};
        uint8_t expect = LOG_NO;
        /* acq_rel: the winner logs the record; the flag itself orders nothing else */
        if (atomic_load_explicit(&s->logged, memory_order_relaxed) == LOG_NO &&
            atomic_compare_exchange_strong_explicit(&s->logged, &expect, LOG_PENDING,
                                                    memory_order_acq_rel,
                                                    memory_order_relaxed))
            push_series(&a->logging, &a->nlog, &a->caplog, s);
    }
    int rc = 0;
    if (a->nlog) {
        /* straight from the symbol table: building a label set per new series only to encode
         * it took two interner reference changes per string and an allocation */
        const struct mp_istr *stack[PAIRS_STACK];
        rc = tsdb_record_series_begin(&a->rec_series);
        for (size_t i = 0; i < a->nlog && rc == 0; i++) {
            size_t n;
            const struct mp_istr **pairs = series_pairs_in(h, a->logging[i], stack, &n);
            rc = tsdb_record_series_encode_pairs(a->logging[i]->ref, pairs, n, &a->rec_series);
            if (pairs != stack)
                mp_free(pairs);
        }
        if (rc)
            return mp_err_set(err, rc, "encoding the series record");
    }
    rc = tsdb_record_samples_encode(a->rs, a->n, &a->rec_samples);
    if (rc)
        return mp_err_set(err, rc, "encoding the samples record");
    return 0;
}

static void unmark_logging(struct tsdb_head_appender *a, uint8_t to)
{
    for (size_t i = 0; i < a->nlog; i++)
        atomic_store_explicit(&a->logging[i]->logged, to, memory_order_release);
}

static struct mp_log_limit mmap_warn = MP_LOG_LIMIT_INIT(1, 60000);

int tsdb_head_appender_commit(struct tsdb_head_appender *a, struct mp_err *err)
{
    struct tsdb_head *h = a->h;
    if (a->n == 0) {
        appender_done(a);
        return 0;
    }
    int rc = 0;
    if (h->o.wal) {
        rc = encode_records(a, err);
        if (!rc) {
            struct mp_str recs[2];
            size_t nrec = 0;
            if (a->rec_series.len)
                recs[nrec++] = (struct mp_str){a->rec_series.data, a->rec_series.len};
            recs[nrec++] = (struct mp_str){a->rec_samples.data, a->rec_samples.len};
            rc = tsdb_wal_log(h->o.wal, recs, nrec, err);
        }
        if (rc) {
            unmark_logging(a, LOG_NO);
            CINC(h, commits_failed);
            tsdb_head_appender_rollback(a);
            return rc;
        }
        unmark_logging(a, LOG_DONE);
    }
    int64_t mint = INT64_MAX, maxt = INT64_MIN;
    uint64_t appended = 0, ooo = 0, dup = 0;
    struct rstripe *held = NULL; /* consecutive samples of one stripe keep its lock */
    unsigned hold = 0;
    for (size_t i = 0; i < a->n; i++) {
        struct asample *x = &a->smp[i];
        struct hseries *s = x->s;
        /* memory-bound with many series: fetch a few samples ahead */
        if (i + 8 < a->n)
            __builtin_prefetch(a->smp[i + 8].s, 1);
        struct rstripe *rs = ref_stripe(h, s->ref);
        if (rs != held || ++hold >= RUN_HOLD) {
            if (held)
                spin_unlock(&held->mu);
            spin_lock(&rs->mu);
            held = rs;
            hold = 0;
        }
        /* Another batch may have appended to s since add: check again. */
        int ok = appendable_locked(s, x->t, x->vbits);
        bool froze = false;
        if (ok == 0) {
            froze = append_locked(h, s, x->t, x->vbits);
            appended++;
            if (x->t < mint)
                mint = x->t;
            if (x->t > maxt)
                maxt = x->t;
        } else if (ok == MP_EOUTOFORDER) {
            ooo++;
        } else if (ok == MP_EDUPLICATE) {
            dup++;
        }
        if (!(froze && h->o.hc))
            s->pending--;
        if (froze && h->o.hc)
            push_series(&a->cut, &a->ncut, &a->capcut, s);
    }
    if (held)
        spin_unlock(&held->mu);
    if (appended)
        widen_time(h, mint, maxt);
    CADD(h, samples_appended, appended);
    CADD(h, out_of_order, ooo);
    CADD(h, duplicates, dup);
    for (size_t i = 0; i < a->ncut; i++) {
        struct mp_err e2 = {0};
        if (mmap_frozen(h, a->cut[i], &e2))
            MP_LOG_LIMITED(&mmap_warn, MP_LOG_LEVEL_WARN,
                           "writing a full chunk failed; it stays in memory",
                           MP_KV_STR("err", e2.msg));
        release_pending(h, a->cut[i]);
    }
    appender_done(a);
    return 0;
}

void tsdb_head_appender_rollback(struct tsdb_head_appender *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++)
        release_pending(a->h, a->smp[i].s);
    appender_done(a);
}

/* ---- replay --------------------------------------------------------------------------------- */

struct replay {
    struct tsdb_head *h;
    struct mm_found *mm; /* chunks_head records, sorted by series then mint */
    size_t nmm, capmm;
    struct { uint64_t from, to; } *dups; /* WAL refs declared twice for one label set */
    size_t ndups, capdups;
    int64_t min_valid;
    uint64_t samples, series, skipped;
};

int tsdb_head_collect_mm(void *ctx, uint64_t series_ref, uint64_t chunk_ref, int64_t mint_ms,
                         int64_t maxt_ms, uint8_t encoding, uint16_t num_samples)
{
    struct tsdb_head *h = ctx;
    (void)num_samples;
    if (encoding != TSDB_ENC_XOR)
        return 0; /* float in-order chunks only; nothing else comes from this engine */
    if (h->nreplay_mm == h->capreplay_mm) {
        h->capreplay_mm = h->capreplay_mm ? h->capreplay_mm * 2 : 1024;
        h->replay_mm = mp_xrealloc(h->replay_mm, h->capreplay_mm * sizeof *h->replay_mm);
    }
    h->replay_mm[h->nreplay_mm++] = (struct mm_found){series_ref, {chunk_ref, mint_ms, maxt_ms}};
    return 0;
}

static int mm_found_cmp(const void *pa, const void *pb)
{
    const struct mm_found *a = pa, *b = pb;
    if (a->series_ref != b->series_ref)
        return a->series_ref < b->series_ref ? -1 : 1;
    return a->c.mint < b->c.mint ? -1 : a->c.mint > b->c.mint;
}

/* Attaches the m-mapped chunks recorded for s->ref (single-threaded replay). */
static void replay_attach(struct replay *r, struct hseries *s)
{
    size_t lo = 0, hi = r->nmm;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->mm[mid].series_ref < s->ref)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < r->nmm && r->mm[end].series_ref == s->ref)
        end++;
    /* chunks that ended before the last persisted block are in that block already (a file of
     * chunks_head/ outlives the head truncation that dropped them while later chunks use it) */
    while (lo < end && r->mm[lo].c.maxt < r->min_valid)
        lo++;
    if (end == lo)
        return;
    struct tsdb_head *h = r->h;
    size_t k = end - lo;
    s->mm = mp_xmalloc(k * sizeof *s->mm);
    s->cap_mm = s->n_mm = (uint32_t)k;
    for (size_t i = 0; i < k; i++)
        s->mm[i] = r->mm[lo + i].c;
    bytes_add(h, (ptrdiff_t)mp_alloc_size(s->mm));
    s->last_t = s->mm[k - 1].maxt;
    s->has_sample = true;
    atomic_fetch_add_explicit(&h->num_chunks, k, memory_order_relaxed);
    widen_time(h, s->mm[0].mint, s->mm[k - 1].maxt);
}

static struct hseries *replay_lookup(struct replay *r, uint64_t ref)
{
    struct rstripe *rs = ref_stripe(r->h, ref);
    struct hseries *s = by_ref_locked(rs, ref);
    if (s || !r->ndups)
        return s;
    for (size_t i = 0; i < r->ndups; i++)
        if (r->dups[i].from == ref)
            return by_ref_locked(ref_stripe(r->h, r->dups[i].to), r->dups[i].to);
    return NULL;
}

static int replay_series(struct replay *r, struct tsdb_record_series *recs, size_t n,
                         struct mp_err *err)
{
    for (size_t i = 0; i < n; i++) {
        struct hseries *s;
        if (by_ref_locked(ref_stripe(r->h, recs[i].ref), recs[i].ref))
            continue; /* declared again (checkpoint and segment) */
        bool created;
        int rc = series_get_or_create(r->h, recs[i].labels, recs[i].ref, false, true, &s,
                                      &created, err);
        if (rc)
            return rc;
        if (!created) {
            if (r->ndups == r->capdups) {
                r->capdups = r->capdups ? r->capdups * 2 : 16;
                r->dups = mp_xrealloc(r->dups, r->capdups * sizeof *r->dups);
            }
            r->dups[r->ndups].from = recs[i].ref;
            r->dups[r->ndups++].to = s->ref;
            continue;
        }
        r->series++;
        replay_attach(r, s);
    }
    return 0;
}

static int replay_samples(struct replay *r, const struct tsdb_record_sample *smp, size_t n,
                          struct mp_err *err)
{
    struct tsdb_head *h = r->h;
    int64_t mint = INT64_MAX, maxt = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        struct hseries *s = replay_lookup(r, smp[i].ref);
        if (!s) {
            CINC(h, wal_unknown_refs);
            continue;
        }
        uint64_t vbits = tsdb_f64_bits(smp[i].v);
        if (smp[i].t_ms < r->min_valid || appendable_locked(s, smp[i].t_ms, vbits) != 0) {
            r->skipped++;
            continue;
        }
        bool froze = append_locked(h, s, smp[i].t_ms, vbits);
        if (froze && h->o.hc) {
            int rc = mmap_frozen(h, s, err);
            if (rc)
                return rc;
        }
        if (smp[i].t_ms < mint)
            mint = smp[i].t_ms;
        if (smp[i].t_ms > maxt)
            maxt = smp[i].t_ms;
        r->samples++;
    }
    if (maxt != INT64_MIN)
        widen_time(h, mint, maxt);
    return 0;
}

static int replay_wal(struct replay *r, const char *wal_dir, bool repair, struct mp_err *err)
{
    struct tsdb_wal_reader *rd;
    int rc = tsdb_wal_reader_open(wal_dir, &rd, err);
    if (rc)
        return rc;
    struct tsdb_record_decoder dec;
    tsdb_record_decoder_init(&dec);
    for (;;) {
        const uint8_t *rec;
        size_t len;
        rc = tsdb_wal_reader_next(rd, &rec, &len, err);
        if (rc == MP_EEOF) {
            rc = 0;
            break;
        }
        if (rc == MP_EPARSE) {
            struct tsdb_wal_pos c;
            if (!tsdb_wal_reader_corruption(rd, &c))
                break;
            MP_LOG_WARN(repair ? "WAL corruption; repairing" : "WAL corruption; replay stops",
                        MP_KV_STR("err", err ? err->msg : ""), MP_KV_I64("segment", c.segment),
                        MP_KV_U64("offset", c.offset));
            if (!repair) {
                if (err)
                    mp_err_clear(err);
                rc = 0;
                break;
            }
            struct mp_err e2 = {0};
            rc = tsdb_wal_repair(wal_dir, &c, &e2);
            if (rc) {
                if (err)
                    mp_err_clear(err);
                rc = mp_err_set(err, rc, "%s", e2.msg);
            } else if (err) {
                mp_err_clear(err);
            }
            break;
        }
        if (rc)
            break;
        switch (tsdb_record_type_of(rec, len)) {
        case TSDB_REC_SERIES: {
            struct tsdb_record_series *s;
            size_t n;
            rc = tsdb_record_series_decode(&dec, rec, len, &s, &n, err);
            if (!rc) {
                rc = replay_series(r, s, n, err);
                tsdb_record_series_release(s, n);
            }
            break;
        }
        case TSDB_REC_SAMPLES: {
            struct tsdb_record_sample *s;
            size_t n;
            rc = tsdb_record_samples_decode(&dec, rec, len, &s, &n, err);
            if (!rc)
                rc = replay_samples(r, s, n, err);
            break;
        }
        default:
            break; /* tombstones are replayed by db.c from its own pass; others unused */
        }
        if (rc)
            break;
    }
    tsdb_record_decoder_fini(&dec);
    tsdb_wal_reader_close(rd);
    return rc;
}

int tsdb_head_replay(struct tsdb_head *h, const char *wal_dir, bool repair, struct mp_err *err)
{
    struct replay r = {.h = h, .min_valid = atomic_load(&h->min_valid)};
    r.mm = h->replay_mm;
    r.nmm = h->nreplay_mm;
    h->replay_mm = NULL;
    h->nreplay_mm = h->capreplay_mm = 0;
    if (r.nmm)
        qsort(r.mm, r.nmm, sizeof *r.mm, mm_found_cmp);
    int rc = 0;
    if (wal_dir)
        rc = replay_wal(&r, wal_dir, repair, err);
    tsdb_mempostings_ensure_order(h->postings);
    MP_LOG_INFO("WAL replay completed", MP_KV_U64("series", r.series),
                MP_KV_U64("samples", r.samples), MP_KV_U64("mmapped_chunks", r.nmm),
                MP_KV_U64("skipped_samples", r.skipped));
    mp_free(r.mm);
    mp_free(r.dups);
    return rc;
}

/* ---- reading -------------------------------------------------------------------------------- */

void tsdb_head_ireader(struct tsdb_head *h, struct tsdb_ireader *out)
{
    tsdb_mempostings_ireader(h->postings, out);
}

void tsdb_head_read_init(struct tsdb_head_read *r)
{
    memset(r, 0, sizeof *r);
    mp_buf_init(&r->buf, 0);
}

void tsdb_head_read_fini(struct tsdb_head_read *r)
{
    mp_labels_release(r->labels);
    mp_free(r->chunks);
    mp_buf_fini(&r->buf);
    memset(r, 0, sizeof *r);
}

static void read_push(struct tsdb_head_read *r, struct tsdb_chunk c)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->chunks = mp_xrealloc(r->chunks, r->cap * sizeof *r->chunks);
    }
    r->chunks[r->n++] = c;
}

/* In-memory chunk c copied into r->buf; data is fixed up once buf stops moving (its offset is
 * kept in the data pointer meanwhile). */
static int read_copy(struct tsdb_head_read *r, const struct tsdb_xor *c, int64_t mint,
                     int64_t maxt)
{
    if (tsdb_xor_num_samples(c) == 0)
        return 0;
    int64_t cmin = tsdb_xor_min_time(c), cmax = tsdb_xor_max_time(c);
    if (cmax < mint || cmin > maxt)
        return 0;
    size_t len;
    const uint8_t *data = tsdb_xor_bytes(c, &len);
    size_t off = r->buf.len;
    int rc = mp_buf_append(&r->buf, data, len);
    if (rc)
        return rc;
    read_push(r, (struct tsdb_chunk){cmin, cmax, TSDB_ENC_XOR, (const uint8_t *)(uintptr_t)off,
                                     len});
    return 0;
}

static void frozen_copy(struct tsdb_head_read *r, const struct frozen *f, int64_t mint,
                        int64_t maxt, int *rc)
{
    if (!f || *rc)
        return;
    frozen_copy(r, f->next, mint, maxt, rc); /* oldest first; the list is short */
    if (!*rc)
        *rc = read_copy(r, &f->c, mint, maxt);
}

/* Fills r from s; s's ref stripe lock held. */
static int read_locked(struct tsdb_head *h, const struct hseries *s, int64_t mint_ms,
                       int64_t maxt_ms, bool want_labels, struct tsdb_head_read *r,
                       struct mp_err *err)
{
    int rc = 0;
    for (uint32_t i = 0; i < s->n_mm && !rc; i++) {
        const struct mmc *m = &s->mm[i];
        if (m->maxt < mint_ms || m->mint > maxt_ms)
            continue;
        const uint8_t *data;
        size_t len;
        rc = tsdb_head_chunks_get(h->o.hc, m->ref, NULL, &data, &len, err);
        if (!rc)
            read_push(r, (struct tsdb_chunk){m->mint, m->maxt, TSDB_ENC_XOR, data, len});
    }
    size_t first_copy = r->n;
    frozen_copy(r, s->frozen, mint_ms, maxt_ms, &rc);
    if (!rc && has_chunk(&s->open))
        rc = read_copy(r, &s->open, mint_ms, maxt_ms);
    if (!rc && want_labels)
        rc = series_labels(h, s, &r->labels, err);
    r->first_copy = first_copy;
    return rc;
}

static void read_reset(struct tsdb_head_read *r)
{
    mp_labels_release(r->labels);
    r->labels = NULL;
    r->n = 0;
    mp_buf_reset(&r->buf);
}

/* After read_locked, outside the lock: points the copied chunks into r->buf. */
static int read_finish(struct tsdb_head_read *r, uint64_t ref, int rc, struct mp_err *err)
{
    if (rc)
        return mp_err_set(err, rc, "reading series %llu", (unsigned long long)ref);
    for (size_t i = r->first_copy; i < r->n; i++)
        r->chunks[i].data = (const uint8_t *)r->buf.data + (uintptr_t)r->chunks[i].data;
    return 0;
}

int tsdb_head_series_get(struct tsdb_head *h, uint64_t ref, int64_t mint_ms, int64_t maxt_ms,
                         bool want_labels, struct tsdb_head_read *r, struct mp_err *err)
{
    read_reset(r);
    struct rstripe *rs = ref_stripe(h, ref);
    spin_lock(&rs->mu);
    struct hseries *s = by_ref_locked(rs, ref);
    if (!s) {
        spin_unlock(&rs->mu);
        return mp_err_set(err, MP_ENOTFOUND, "series %llu not in the head",
                          (unsigned long long)ref);
    }
    int rc = read_locked(h, s, mint_ms, maxt_ms, want_labels, r, err);
    spin_unlock(&rs->mu);
    return read_finish(r, ref, rc, err);
}

/* The labels of s from the label-set cache, built and cached on a miss. Outside the series
 * lock: s->ref, s->hash and s->lbl never change, the symbol table is read without a lock, and s
 * stays allocated while the caller holds the db read lock (tsdb_head_series_read's rule). A set
 * from the cache holds its own references to the interned strings, so it outlives the series'
 * removal by GC or eviction safely; refs are never reused, and the hash is checked anyway. */
static int cached_labels(struct tsdb_head *h, const struct hseries *s, struct mp_labels **out,
                         struct mp_err *err)
{
    uint32_t owner = tsdb_lcache_owner_of(&h->lc_owner);
    if ((*out = tsdb_lcache_get(owner, s->ref, s->hash)) != NULL)
        return 0;
    int rc = series_labels(h, s, out, err);
    if (!rc)
        tsdb_lcache_put(owner, s->ref, *out);
    return rc;
}

int tsdb_head_series_read(struct tsdb_head *h, const struct tsdb_head_series *hs,
                          int64_t mint_ms, int64_t maxt_ms, bool want_labels,
                          struct tsdb_head_read *r, struct mp_err *err)
{
    const struct hseries *s = (const struct hseries *)hs;
    read_reset(r);
    bool cached = want_labels && r->cached_labels;
    struct rstripe *rs = ref_stripe(h, s->ref);
    spin_lock(&rs->mu);
    int rc = read_locked(h, s, mint_ms, maxt_ms, want_labels && !cached, r, err);
    spin_unlock(&rs->mu);
    if (!rc && cached && r->n)
        rc = cached_labels(h, s, &r->labels, err);
    return read_finish(r, s->ref, rc, err);
}

uint64_t tsdb_head_series_ref(const struct tsdb_head_series *hs)
{
    return ((const struct hseries *)hs)->ref;
}

void tsdb_head_series_prefetch(const struct tsdb_head_series *hs)
{
    /* the fields read_locked reads span the first three lines of the series */
    __builtin_prefetch(hs);
    __builtin_prefetch((const char *)hs + 64);
    __builtin_prefetch((const char *)hs + 128);
}

int tsdb_head_series_labels(struct tsdb_head *h, uint64_t ref, struct mp_labels **out,
                            struct mp_err *err)
{
    struct rstripe *rs = ref_stripe(h, ref);
    spin_lock(&rs->mu);
    struct hseries *s = by_ref_locked(rs, ref);
    int rc = s ? series_labels(h, s, out, err)
               : mp_err_set(err, MP_ENOTFOUND, "series %llu not in the head",
                            (unsigned long long)ref);
    spin_unlock(&rs->mu);
    return rc;
}

bool tsdb_head_series_exists(struct tsdb_head *h, uint64_t ref)
{
    struct rstripe *rs = ref_stripe(h, ref);
    spin_lock(&rs->mu);
    bool ok = by_ref_locked(rs, ref) != NULL;
    spin_unlock(&rs->mu);
    return ok;
}

/* ---- ordering by labels --------------------------------------------------------------------- */

static int istr_cmp(const struct mp_istr *a, const struct mp_istr *b)
{
    if (a == b)
        return 0;
    struct mp_str x = mp_istr_str(a), y = mp_istr_str(b);
    size_t n = x.len < y.len ? x.len : y.len;
    int c = memcmp(x.ptr, y.ptr, n);
    if (c)
        return c;
    return x.len < y.len ? -1 : x.len > y.len;
}

/* Label-set order of Prometheus's labels.Compare: pair by pair, name then value; a prefix
 * sorts first. */
static int series_cmp(const void *pa, const void *pb, void *ctx)
{
    const struct tsdb_head *h = ctx;
    const struct hseries *a = *(struct hseries *const *)pa, *b = *(struct hseries *const *)pb;
    const uint8_t *p = a->lbl, *q = b->lbl;
    uint32_t na = get_uvarint(&p), nb = get_uvarint(&q);
    uint32_t n = na < nb ? na : nb;
    for (uint32_t i = 0; i < 2 * n; i++) {
        uint32_t x = get_uvarint(&p), y = get_uvarint(&q);
        if (x == y)
            continue;
        int c = istr_cmp(sym_at(&h->syms, x)->s, sym_at(&h->syms, y)->s);
        if (c)
            return c;
    }
    return na < nb ? -1 : na > nb;
}

/* Sorting by decoded keys: each series' symbol ids decoded once into a row of u32 (count, then
 * the ids), so a comparison walks two arrays and looks at strings only where they differ
 * (series_cmp decodes both series' uvarints on each of the n log n comparisons). Rows take
 * 4 B per label name or value; above this many bytes the select sorts with series_cmp. */
#define SORT_KEYS_BUDGET ((size_t)64 << 20)

struct sort_row {
    const uint32_t *key; /* key[0] = number of ids, then the ids */
    struct hseries *s;
};

static int row_cmp(const void *pa, const void *pb, void *ctx)
{
    const struct tsdb_head *h = ctx;
    const uint32_t *a = ((const struct sort_row *)pa)->key, *b = ((const struct sort_row *)pb)->key;
    uint32_t n = a[0] < b[0] ? a[0] : b[0];
    for (uint32_t i = 1; i <= n; i++) {
        if (a[i] == b[i])
            continue;
        int c = istr_cmp(sym_at(&h->syms, a[i])->s, sym_at(&h->syms, b[i])->s);
        if (c)
            return c;
    }
    return a[0] < b[0] ? -1 : a[0] > b[0];
}

/* Sorts v[0..k) by labels with decoded keys; false (nothing done) if they would not fit. */
static bool sort_by_keys(struct tsdb_head *h, struct hseries **v, size_t k)
{
    size_t words = 0;
    for (size_t i = 0; i < k; i++) {
        const uint8_t *p = v[i]->lbl;
        words += 1 + 2 * (size_t)get_uvarint(&p);
    }
    if (words > SORT_KEYS_BUDGET / sizeof(uint32_t))
        return false;
    uint32_t *keys = mp_malloc(words * sizeof *keys);
    struct sort_row *rows = mp_malloc(k * sizeof *rows);
    if (!keys || !rows) {
        mp_free(keys);
        mp_free(rows);
        return false;
    }
    uint32_t *w = keys;
    for (size_t i = 0; i < k; i++) {
        const uint8_t *p = v[i]->lbl;
        uint32_t n = 2 * get_uvarint(&p);
        rows[i] = (struct sort_row){w, v[i]};
        *w++ = n;
        for (uint32_t j = 0; j < n; j++)
            *w++ = get_uvarint(&p);
    }
    qsort_r(rows, k, sizeof *rows, row_cmp, h);
    for (size_t i = 0; i < k; i++)
        v[i] = rows[i].s;
    mp_free(rows);
    mp_free(keys);
    return true;
}

size_t tsdb_head_sort_series(struct tsdb_head *h, uint64_t *refs, size_t n,
                             const struct tsdb_head_series **out)
{
    struct hseries **v = (struct hseries **)out;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        struct rstripe *rs = ref_stripe(h, refs[i]);
        spin_lock(&rs->mu);
        struct hseries *s = by_ref_locked(rs, refs[i]);
        spin_unlock(&rs->mu);
        if (s)
            v[k++] = s;
    }
    if (k > 1 && !sort_by_keys(h, v, k))
        qsort_r(v, k, sizeof *v, series_cmp, h);
    for (size_t i = 0; i < k; i++)
        refs[i] = v[i]->ref;
    return k;
}

void tsdb_head_sort_refs(struct tsdb_head *h, uint64_t *refs, size_t n)
{
    const struct tsdb_head_series **v = mp_xmalloc((n ? n : 1) * sizeof *v);
    size_t k = tsdb_head_sort_series(h, refs, n, v);
    /* refs of series that vanished meanwhile (not possible under the db read lock) drop out */
    for (size_t i = k; i < n; i++)
        refs[i] = 0;
    mp_free(v);
}

static int sym_sort_cmp(const void *pa, const void *pb)
{
    return istr_cmp(*(const struct mp_istr *const *)pa, *(const struct mp_istr *const *)pb);
}

int tsdb_head_symbols(struct tsdb_head *h, const struct mp_istr ***out, size_t *n,
                      struct mp_err *err)
{
    pthread_mutex_lock(&h->syms.mu);
    size_t cap = h->syms.n ? h->syms.n : 1;
    const struct mp_istr **v = mp_malloc(cap * sizeof *v);
    if (!v) {
        pthread_mutex_unlock(&h->syms.mu);
        return mp_err_set(err, MP_ENOMEM, "head symbols");
    }
    size_t k = 0;
    for (uint32_t id = 0; id < h->syms.next; id++) {
        const struct sym *e = sym_at(&h->syms, id);
        if (e->s)
            v[k++] = e->s;
    }
    pthread_mutex_unlock(&h->syms.mu);
    qsort(v, k, sizeof *v, sym_sort_cmp);
    *out = v;
    *n = k;
    return 0;
}

/* ---- truncation ----------------------------------------------------------------------------- */

/* Drops the chunks of s that end before mint. true if s has no data left. Ref lock held. */
static bool gc_series_locked(struct tsdb_head *h, struct hseries *s, int64_t mint,
                             uint64_t *min_file)
{
    uint32_t keep = 0;
    while (keep < s->n_mm && s->mm[keep].maxt < mint)
        keep++;
    if (keep) {
        memmove(s->mm, s->mm + keep, (s->n_mm - keep) * sizeof *s->mm);
        s->n_mm -= keep;
        atomic_fetch_sub_explicit(&h->num_chunks, keep, memory_order_relaxed);
        CADD(h, chunks_removed, keep);
    }
    for (struct frozen **pp = &s->frozen; *pp;) {
        struct frozen *f = *pp;
        if (tsdb_xor_max_time(&f->c) < mint) {
            *pp = f->next;
            bytes_add(h, -(ptrdiff_t)xor_bytes(&f->c));
            tsdb_xor_fini(&f->c);
            mp_free(f);
            atomic_fetch_sub_explicit(&h->num_chunks, 1, memory_order_relaxed);
            CINC(h, chunks_removed);
        } else {
            pp = &f->next;
        }
    }
    if (has_chunk(&s->open) && tsdb_xor_max_time(&s->open) < mint && s->pending == 0 &&
        !s->frozen && s->n_mm == 0) {
        bytes_add(h, -(ptrdiff_t)xor_bytes(&s->open));
        tsdb_xor_fini(&s->open);
        atomic_fetch_sub_explicit(&h->num_chunks, 1, memory_order_relaxed);
        CINC(h, chunks_removed);
    }
    if (s->n_mm && (s->mm[0].ref >> 32) < *min_file)
        *min_file = s->mm[0].ref >> 32;
    return !has_chunk(&s->open) && !s->frozen && s->n_mm == 0 && s->pending == 0;
}

static int ref_cmp(const void *pa, const void *pb)
{
    uint64_t a = (*(struct hseries *const *)pa)->ref, b = (*(struct hseries *const *)pb)->ref;
    return a < b ? -1 : a > b;
}

static uint64_t series_nchunks(const struct hseries *s)
{
    uint64_t n = s->n_mm + (has_chunk(&s->open) ? 1 : 0);
    for (const struct frozen *f = s->frozen; f; f = f->next)
        n++;
    return n;
}

/* Walks the hash table so that a series leaves both tables while its hash stripe is locked: a
 * concurrent lookup by labels then either finds it before (and holds it through pending) or not
 * at all; a lookup by ref takes the ref stripe lock, which the sweep holds while deciding.
 * gone(h, s, ctx) runs under the ref stripe lock and says whether s goes; the removed series leave
 * the postings and are freed. Returns the number removed. */
static size_t sweep(struct tsdb_head *h, bool (*gone)(struct tsdb_head *, struct hseries *, void *),
                    void *ctx)
{
    struct hseries **dead = NULL;
    size_t ndead = 0, capdead = 0;
    for (size_t i = 0; i < STRIPES; i++) {
        struct stripe *hs = &h->hashes[i];
        pthread_mutex_lock(&hs->mu);
        for (uint32_t b = 0; b < hs->cap; b++) {
            struct hseries **pp = &hs->tab[b];
            while (*pp) {
                struct hseries *s = *pp;
                struct rstripe *rs = ref_stripe(h, s->ref);
                spin_lock(&rs->mu);
                bool g = gone(h, s, ctx);
                if (g)
                    ref_remove_locked(rs, s->ref);
                spin_unlock(&rs->mu);
                if (g) {
                    *pp = s->hash_next;
                    hs->n--;
                    push_series(&dead, &ndead, &capdead, s);
                } else {
                    pp = &s->hash_next;
                }
            }
        }
        pthread_mutex_unlock(&hs->mu);
    }
    if (ndead) {
        qsort(dead, ndead, sizeof *dead, ref_cmp);
        uint64_t *refs = mp_xmalloc(ndead * sizeof *refs);
        struct mp_labels **ls = mp_xmalloc(ndead * sizeof *ls);
        for (size_t i = 0; i < ndead; i++) {
            refs[i] = dead[i]->ref;
            if (series_labels(h, dead[i], &ls[i], NULL))
                mp_panic("head: out of memory for the labels of series %llu",
                         (unsigned long long)refs[i]);
        }
        tsdb_mempostings_delete(h->postings, refs, (const struct mp_labels *const *)ls, ndead);
        for (size_t i = 0; i < ndead; i++) {
            mp_labels_release(ls[i]);
            uint64_t nc = series_nchunks(dead[i]);
            atomic_fetch_sub_explicit(&h->num_chunks, nc, memory_order_relaxed);
            CADD(h, chunks_removed, nc);
            series_destroy(h, dead[i]);
        }
        atomic_fetch_sub_explicit(&h->num_series, ndead, memory_order_relaxed);
        CADD(h, series_removed, ndead);
        mp_free(refs);
        mp_free(ls);
    }
    mp_free(dead);
    return ndead;
}

struct gc_ctx {
    int64_t mint;
    uint64_t min_file;
};

static bool gc_gone(struct tsdb_head *h, struct hseries *s, void *ctx)
{
    struct gc_ctx *g = ctx;
    return gc_series_locked(h, s, g->mint, &g->min_file);
}

/* Deletes the chunks_head files below the oldest one still referenced (tsdb.md 2.7 step 4);
 * later chunks go to a new file. */
static int truncate_chunk_files(struct tsdb_head *h, uint64_t min_file, struct mp_err *err)
{
    if (!h->o.hc)
        return 0;
    tsdb_head_chunks_cut_new_file(h->o.hc);
    if (min_file == UINT64_MAX)
        min_file = tsdb_head_chunks_file_number(h->o.hc);
    return tsdb_head_chunks_truncate(h->o.hc, (uint32_t)min_file, err);
}

int tsdb_head_truncate(struct tsdb_head *h, int64_t mint_ms, struct mp_err *err)
{
    int64_t cur = atomic_load_explicit(&h->min_time, memory_order_relaxed);
    /* Prometheus truncateMemory: an empty head (min INT64_MAX) starts at mint too, and the max
     * is raised to at least the min; an empty head has nothing to sweep (at open the WAL and the
     * head chunks are still to be read) */
    bool initialize = cur == INT64_MAX;
    if (mint_ms > cur || initialize)
        atomic_store_explicit(&h->min_time, mint_ms, memory_order_relaxed);
    if (atomic_load_explicit(&h->min_valid, memory_order_relaxed) < mint_ms)
        atomic_store_explicit(&h->min_valid, mint_ms, memory_order_relaxed);
    int64_t mx = atomic_load_explicit(&h->max_time, memory_order_relaxed);
    while (mx < mint_ms && !atomic_compare_exchange_weak_explicit(&h->max_time, &mx, mint_ms,
                                                                  memory_order_relaxed,
                                                                  memory_order_relaxed))
        ;
    if (initialize)
        return 0;
    CINC(h, truncations); /* counted past the initial truncation, as Prometheus */
    struct gc_ctx g = {mint_ms, UINT64_MAX};
    sweep(h, gc_gone, &g);
    return truncate_chunk_files(h, g.min_file, err);
}

/* ---- ended series ------------------------------------------------------------------------- */

static bool ended_locked(const struct hseries *s, int64_t stale_before, int64_t idle_before)
{
    if (!s->has_sample || s->pending)
        return false;
    if (s->last_t < idle_before)
        return true;
    return s->last_v == TSDB_STALE_NAN_BITS && s->last_t < stale_before;
}

int tsdb_head_ended_series(struct tsdb_head *h, int64_t stale_before_ms, int64_t idle_before_ms,
                           struct tsdb_head_ended **out, size_t *n)
{
    struct tsdb_head_ended *v = NULL;
    size_t k = 0, cap = 0;
    for (size_t i = 0; i < STRIPES; i++) {
        struct rstripe *rs = &h->refs[i];
        spin_lock(&rs->mu);
        for (uint32_t b = 0; b < rs->cap; b++) {
            struct hseries *s = rs->tab[b].s;
            if (!s || !ended_locked(s, stale_before_ms, idle_before_ms))
                continue;
            if (k == cap) {
                cap = cap ? cap * 2 : 256;
                struct tsdb_head_ended *nv = mp_realloc(v, cap * sizeof *nv);
                if (!nv) {
                    spin_unlock(&rs->mu);
                    mp_free(v);
                    return MP_ENOMEM;
                }
                v = nv;
            }
            v[k++] = (struct tsdb_head_ended){s->ref, s->last_t};
        }
        spin_unlock(&rs->mu);
    }
    *out = v;
    *n = k;
    return 0;
}

struct evict_ctx {
    const struct tsdb_head_ended *v;
    size_t n;
    struct gone *gone; /* the series removed */
    size_t ngone, capgone;
};

static bool evict_gone(struct tsdb_head *h, struct hseries *s, void *ctx)
{
    (void)h;
    struct evict_ctx *e = ctx;
    size_t lo = 0, hi = e->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (e->v[mid].ref < s->ref)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* still exactly as persisted: same last sample, nobody holding it */
    bool gone = lo < e->n && e->v[lo].ref == s->ref && s->has_sample && !s->pending &&
                s->last_t == e->v[lo].last_t;
    if (gone) {
        if (e->ngone == e->capgone) {
            e->capgone = e->capgone ? e->capgone * 2 : 64;
            e->gone = mp_xrealloc(e->gone, e->capgone * sizeof *e->gone);
        }
        e->gone[e->ngone++] = (struct gone){s->hash, s->last_t, s->last_v};
    }
    return gone;
}

static int ended_cmp(const void *pa, const void *pb)
{
    uint64_t a = ((const struct tsdb_head_ended *)pa)->ref;
    uint64_t b = ((const struct tsdb_head_ended *)pb)->ref;
    return a < b ? -1 : a > b;
}

int tsdb_head_evict(struct tsdb_head *h, struct tsdb_head_ended *v, size_t n, size_t *removed,
                    struct mp_err *err)
{
    qsort(v, n, sizeof *v, ended_cmp);
    struct evict_ctx e = {v, n, NULL, 0, 0};
    *removed = sweep(h, evict_gone, &e);
    int64_t maxt = atomic_load_explicit(&h->max_time, memory_order_relaxed);
    gone_update(h, e.gone, e.ngone,
                maxt == INT64_MIN ? INT64_MIN : maxt - h->o.chunk_range_ms / 2);
    mp_free(e.gone);
    (void)err;
    return 0;
}

/* ---- cardinality ---------------------------------------------------------------------------- */

static int card_copy(struct tsdb_card_entry **out, size_t *nout,
                     const struct tsdb_postings_stat *in, size_t n, bool pair)
{
    *out = mp_xcalloc(n ? n : 1, sizeof **out);
    *nout = n;
    for (size_t i = 0; i < n; i++) {
        struct mp_str a = mp_istr_str(in[i].name);
        if (pair) {
            struct mp_str b = mp_istr_str(in[i].value);
            char *s = mp_xmalloc(a.len + b.len + 2);
            memcpy(s, a.ptr, a.len);
            s[a.len] = '=';
            memcpy(s + a.len + 1, b.ptr, b.len);
            s[a.len + 1 + b.len] = '\0';
            (*out)[i].name = s;
        } else {
            (*out)[i].name = mp_xstrndup(a.ptr, a.len);
        }
        (*out)[i].count = in[i].count;
    }
    return 0;
}

int tsdb_head_card_stats(struct tsdb_head *h, size_t limit, struct tsdb_card_stats *out,
                         struct mp_err *err)
{
    (void)err;
    memset(out, 0, sizeof *out);
    struct tsdb_postings_stats ps = {.limit = limit};
    size_t n = limit ? limit : 1;
    ps.series_by_metric = mp_xcalloc(n, sizeof *ps.series_by_metric);
    ps.values_by_name = mp_xcalloc(n, sizeof *ps.values_by_name);
    ps.bytes_by_name = mp_xcalloc(n, sizeof *ps.bytes_by_name);
    ps.series_by_pair = mp_xcalloc(n, sizeof *ps.series_by_pair);
    tsdb_mempostings_stats(h->postings, mp_str_c(MP_LABEL_METRIC_NAME), &ps);
    card_copy(&out->series_by_metric, &out->n_series_by_metric, ps.series_by_metric,
              ps.n_series_by_metric, false);
    card_copy(&out->label_value_counts, &out->n_label_value_counts, ps.values_by_name,
              ps.n_values_by_name, false);
    card_copy(&out->memory_by_label, &out->n_memory_by_label, ps.bytes_by_name,
              ps.n_bytes_by_name, false);
    card_copy(&out->series_by_label_pair, &out->n_series_by_label_pair, ps.series_by_pair,
              ps.n_series_by_pair, true);
    out->head.num_label_pairs = ps.num_label_pairs;
    tsdb_postings_stats_release(&ps);
    mp_free(ps.series_by_metric);
    mp_free(ps.values_by_name);
    mp_free(ps.bytes_by_name);
    mp_free(ps.series_by_pair);
    out->head.num_series = tsdb_head_num_series(h);
    out->head.num_chunks = tsdb_head_num_chunks(h);
    out->head.min_time_ms = tsdb_head_min_time(h);
    out->head.max_time_ms = tsdb_head_max_time(h);
    return 0;
}

void tsdb_head_set_chunks(struct tsdb_head *h, struct tsdb_head_chunks *hc)
{
    h->o.hc = hc;
}

void tsdb_head_set_wal(struct tsdb_head *h, struct tsdb_wal *wal)
{
    h->o.wal = wal;
}

int tsdb_head_label_names(struct tsdb_head *h, int (*fn)(void *ctx, struct mp_str), void *ctx)
{
    return tsdb_mempostings_label_names(h->postings, fn, ctx);
}
