/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/postings.c: sorted ref lists, the head's inverted index (MemPostings of Prometheus
 * tsdb/index/postings.go) and PostingsForMatchers (tsdb/querier.go), spec tsdb.md 2.2-2.3.
 *
 * Layout of the index, chosen for memory (about 20 label pairs per series, millions of series):
 *
 *   names:  open-addressing table (linear probing, content hash) of struct nent
 *   nent:   name key | table of struct vent | sum len(value) x series | sorted value keys
 *   vent:   value key | list (24 bytes):
 *             cap low 30 bits == 0: the refs are inline (two uint32_t or one uint64_t)
 *             otherwise a heap array of cap elements, uint32_t, or uint64_t if bit 31 is set
 *             bit 30 marks a list already rewritten by the running delete
 *
 * Keys are interned, so a lookup with a key taken from a label set compares pointers only; a
 * lookup by slice (queries) compares bytes. Sorted key arrays (label names, values of a name)
 * are built on first use under the read lock (serialised by lazy_mu) and dropped by the writer
 * when the key set changes. */
#include "tsdb/postings.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "tsdb/gallop.h"

#define NONE SIZE_MAX
#define STACK_CURSORS 16

/* ---- sorted ref lists ------------------------------------------------------------------------ */

void tsdb_plist_init(struct tsdb_plist *l)
{
    l->refs = NULL;
    l->n = 0;
    l->cap = 0;
}

void tsdb_plist_fini(struct tsdb_plist *l)
{
    if (!l)
        return;
    mp_free(l->refs);
    tsdb_plist_init(l);
}

void tsdb_plist_reset(struct tsdb_plist *l)
{
    l->n = 0;
}

int tsdb_plist_reserve(struct tsdb_plist *l, size_t more)
{
    if (l->cap - l->n >= more)
        return 0;
    size_t need, ncap;
    if (__builtin_add_overflow(l->n, more, &need))
        return MP_ENOMEM;
    ncap = l->cap < 16 ? 16 : l->cap + l->cap / 2;
    if (ncap < need)
        ncap = need;
    size_t bytes;
    if (__builtin_mul_overflow(ncap, sizeof *l->refs, &bytes))
        return MP_ENOMEM;
    uint64_t *p = mp_realloc(l->refs, bytes);
    if (!p)
        return MP_ENOMEM;
    l->refs = p;
    l->cap = ncap;
    return 0;
}

int tsdb_plist_push(struct tsdb_plist *l, uint64_t ref)
{
    if (l->n == l->cap) {
        int rc = tsdb_plist_reserve(l, 1);
        if (rc)
            return rc;
    }
    l->refs[l->n++] = ref;
    return 0;
}

TSDB_GALLOP_DEFINE(gallop, uint64_t, TSDB_GALLOP_LOAD_ARRAY)
TSDB_GALLOP_DEFINE(gallop32, uint32_t, TSDB_GALLOP_LOAD_ARRAY)

int tsdb_plist_intersect(const struct tsdb_plist *const *in, size_t k, struct tsdb_plist *out)
{
    tsdb_plist_reset(out);
    if (k == 0)
        return 0;
    size_t s = 0;
    for (size_t j = 1; j < k; j++)
        if (in[j]->n < in[s]->n)
            s = j;
    const uint64_t *S = in[s]->refs;
    size_t ns = in[s]->n;
    if (ns == 0)
        return 0;
    int rc = tsdb_plist_reserve(out, ns);
    if (rc)
        return rc;
    size_t stack_pos[STACK_CURSORS], *pos = stack_pos;
    if (k > STACK_CURSORS) {
        pos = mp_calloc(k, sizeof *pos);
        if (!pos)
            return MP_ENOMEM;
    } else {
        memset(stack_pos, 0, sizeof stack_pos);
    }
    size_t i = 0;
    while (i < ns) {
        uint64_t x = S[i];
        bool all = true;
        for (size_t j = 0; j < k; j++) {
            if (j == s)
                continue;
            const struct tsdb_plist *l = in[j];
            pos[j] = gallop(l->refs, pos[j], l->n, x);
            if (pos[j] == l->n)
                goto done;
            if (l->refs[pos[j]] != x) { /* zig: jump the smallest list ahead to that ref */
                i = gallop(S, i + 1, ns, l->refs[pos[j]]);
                all = false;
                break;
            }
        }
        if (all) {
            out->refs[out->n++] = x;
            i++;
        }
    }
done:
    if (pos != stack_pos)
        mp_free(pos);
    return 0;
}

void tsdb_plist_subtract(struct tsdb_plist *a, const struct tsdb_plist *b)
{
    size_t w = 0, j = 0, i = 0;
    for (; i < a->n; i++) {
        uint64_t x = a->refs[i];
        j = gallop(b->refs, j, b->n, x);
        if (j == b->n)
            break;
        if (b->refs[j] != x)
            a->refs[w++] = x;
    }
    if (i < a->n && w != i)
        memmove(a->refs + w, a->refs + i, (a->n - i) * sizeof *a->refs);
    a->n = w + (a->n - i);
}

/* A read position in a list of either width, with its current element cached. */
struct cursor {
    uint64_t head;
    const uint32_t *p32; /* exactly one of p32, p64 is set */
    const uint64_t *p64;
    size_t i, n;
};

static inline uint64_t cursor_load(const struct cursor *c)
{
    return c->p64 ? c->p64[c->i] : c->p32[c->i];
}

static void heap_sift(struct cursor *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && h[l].head < h[m].head)
            m = l;
        if (l + 1 < n && h[l + 1].head < h[m].head)
            m = l + 1;
        if (m == i)
            return;
        struct cursor t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* Union through a bitmap over [smallest first ref, largest last ref] when that range is dense
 * (no more 64-bit words than refs), as for the values of one label, whose lists partition a
 * stretch of consecutive refs: O(total + range/64) instead of O(total log k). Returns false
 * (nothing written) when the range is sparse or the bitmap cannot be allocated. The cursors
 * are at their first element. */
static bool merge_bitmap(const struct cursor *c, size_t k, struct tsdb_plist *out)
{
    uint64_t lo = UINT64_MAX, hi = 0;
    size_t total = 0;
    for (size_t j = 0; j < k; j++) {
        uint64_t first = c[j].head, last = c[j].p64 ? c[j].p64[c[j].n - 1] : c[j].p32[c[j].n - 1];
        lo = first < lo ? first : lo;
        hi = last > hi ? last : hi;
        total += c[j].n;
    }
    uint64_t words = (hi - lo) / 64 + 1;
    if (words > total)
        return false;
    uint64_t *bits = mp_calloc((size_t)words, sizeof *bits);
    if (!bits)
        return false;
    for (size_t j = 0; j < k; j++) {
        if (c[j].p64) {
            for (size_t i = 0; i < c[j].n; i++) {
                uint64_t x = c[j].p64[i] - lo;
                bits[x / 64] |= UINT64_C(1) << (x % 64);
            }
        } else {
            for (size_t i = 0; i < c[j].n; i++) {
                uint64_t x = c[j].p32[i] - lo;
                bits[x / 64] |= UINT64_C(1) << (x % 64);
            }
        }
    }
    for (uint64_t w = 0; w < words; w++)
        for (uint64_t b = bits[w]; b; b &= b - 1)
            out->refs[out->n++] = lo + w * 64 + (uint64_t)__builtin_ctzll(b);
    mp_free(bits);
    return true;
}

/* Appends the union of the k cursors' lists to out (which has room for all of them), dropping
 * duplicates among the appended refs. The cursors are consumed. */
static void merge_cursors(struct cursor *c, size_t k, struct tsdb_plist *out)
{
    size_t base = out->n, live = 0;
    for (size_t j = 0; j < k; j++)
        if (c[j].n) {
            c[live] = c[j];
            c[live].i = 0;
            c[live].head = cursor_load(&c[live]);
            live++;
        }
    if (live == 1) {
        for (size_t i = 0; i < c[0].n; i++)
            out->refs[out->n++] = c[0].p64 ? c[0].p64[i] : c[0].p32[i];
        return;
    }
    if (live > 2 && merge_bitmap(c, live, out))
        return;
    for (size_t j = live / 2; j-- > 0;)
        heap_sift(c, live, j);
    while (live) {
        uint64_t x = c[0].head;
        if (out->n == base || out->refs[out->n - 1] != x)
            out->refs[out->n++] = x;
        if (++c[0].i < c[0].n) {
            c[0].head = cursor_load(&c[0]);
        } else {
            c[0] = c[--live];
        }
        heap_sift(c, live, 0);
    }
}

static struct cursor *cursors_get(struct cursor *stack, size_t k)
{
    return k <= STACK_CURSORS ? stack : mp_calloc(k, sizeof(struct cursor));
}

static void cursors_put(struct cursor *c, struct cursor *stack)
{
    if (c != stack)
        mp_free(c);
}

int tsdb_plist_union(const struct tsdb_plist *const *in, size_t k, struct tsdb_plist *out)
{
    tsdb_plist_reset(out);
    struct cursor stack[STACK_CURSORS], *c = cursors_get(stack, k);
    if (!c)
        return MP_ENOMEM;
    size_t total = 0;
    for (size_t j = 0; j < k; j++) {
        c[j] = (struct cursor){.p64 = in[j]->refs, .n = in[j]->n};
        total += in[j]->n;
    }
    int rc = tsdb_plist_reserve(out, total);
    if (rc == 0)
        merge_cursors(c, k, out);
    cursors_put(c, stack);
    return rc;
}

/* ---- keys and tables ------------------------------------------------------------------------- */

/* 64-bit hash of the bytes (multiply-xorshift over 8-byte words); only needs to spread keys over
 * a table, it is never persisted. */
static uint64_t hash_bytes(struct mp_str s)
{
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t n = s.len;
    uint64_t h = UINT64_C(0x9e3779b97f4a7c15) ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * UINT64_C(0xbf58476d1ce4e5b9);
        h ^= h >> 31;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    if (n)
        memcpy(&w, p, n);
    h = (h ^ w) * UINT64_C(0x94d049bb133111eb);
    h ^= h >> 29;
    h *= UINT64_C(0xbf58476d1ce4e5b9);
    return h ^ (h >> 32);
}

static bool key_is(const struct mp_istr *k, struct mp_str s)
{
    return mp_istr_len(k) == s.len && (s.len == 0 || memcmp(mp_istr_cstr(k), s.ptr, s.len) == 0);
}

/* Open-addressing table whose entries (esz bytes) start with their key pointer; NULL = empty.
 * Capacity is 0 or a power of two; load stays below 3/4. */
struct otab {
    unsigned char *slots;
    size_t cap, used;
};

static inline void *slot(const struct otab *t, size_t esz, size_t i)
{
    return t->slots + i * esz;
}

static inline const struct mp_istr *slot_key(const struct otab *t, size_t esz, size_t i)
{
    return *(const struct mp_istr *const *)(void *)slot(t, esz, i);
}

/* Index of the entry whose key is ikey (an interned key: strings with the same bytes are one
 * pointer, so a pointer compare suffices) or, with ikey NULL, has the bytes of s; NONE if
 * absent. h is the hash of the bytes. */
static size_t tab_lookup(const struct otab *t, size_t esz, const struct mp_istr *ikey,
                         struct mp_str s, uint64_t h)
{
    if (!t->cap)
        return NONE;
    size_t mask = t->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const struct mp_istr *k = slot_key(t, esz, i);
        if (!k)
            return NONE;
        if (ikey ? k == ikey : key_is(k, s))
            return i;
    }
}

static size_t tab_find(const struct otab *t, size_t esz, struct mp_str s, uint64_t h)
{
    return tab_lookup(t, esz, NULL, s, h);
}

static size_t tab_find_istr(const struct otab *t, size_t esz, const struct mp_istr *key,
                            uint64_t h)
{
    return tab_lookup(t, esz, key, (struct mp_str){NULL, 0}, h);
}

/* ---- the index ------------------------------------------------------------------------------- */

#define CAP_WIDE (UINT32_C(1) << 31)
#define CAP_MARK (UINT32_C(1) << 30)
#define CAP_MASK (CAP_MARK - 1)
#define VAL_MIN_CAP 4
#define NAME_MIN_CAP 8

/* One label value and its list (see the layout at the top). */
struct vent {
    const struct mp_istr *key;
    union {
        uint32_t in32[2];
        uint64_t in64;
        uint32_t *p32;
        uint64_t *p64;
    } u;
    uint32_t n;
    uint32_t cap;
};

/* The keys of a table in byte order, built on demand (see sorted_keys). */
struct keyarr {
    const struct mp_istr **a;
    size_t n;
    atomic_bool ok;
};

/* One label name. */
struct nent {
    const struct mp_istr *key;
    struct otab vals;               /* of struct vent */
    uint64_t value_bytes;           /* sum over values of len(value) x list length */
    struct keyarr sorted;           /* the value keys in byte order */
};

struct tsdb_mempostings {
    pthread_rwlock_t lock;
    pthread_mutex_t lazy_mu;        /* builds of sorted key arrays under the read lock */
    struct otab names;              /* of struct nent */
    struct vent all;                /* all-postings, key ("", ""); its key pointer is NULL */
    struct keyarr sorted_names;
    bool unsorted;                  /* add_unsorted ran since the last ensure_order */
    _Atomic size_t bytes;
};

static void acct(struct tsdb_mempostings *mp, size_t add, size_t sub)
{
    /* relaxed: a statistic */
    atomic_fetch_add_explicit(&mp->bytes, add, memory_order_relaxed);
    atomic_fetch_sub_explicit(&mp->bytes, sub, memory_order_relaxed);
}

static int tab_resize(struct tsdb_mempostings *mp, struct otab *t, size_t esz, size_t ncap)
{
    unsigned char *ns = mp_calloc(ncap, esz);
    if (!ns)
        return MP_ENOMEM;
    size_t mask = ncap - 1;
    for (size_t i = 0; i < t->cap; i++) {
        const struct mp_istr *k = slot_key(t, esz, i);
        if (!k)
            continue;
        size_t j = hash_bytes(mp_istr_str(k)) & mask;
        while (*(const struct mp_istr **)(void *)(ns + j * esz))
            j = (j + 1) & mask;
        memcpy(ns + j * esz, slot(t, esz, i), esz);
    }
    mp_free(t->slots);
    acct(mp, ncap * esz, t->cap * esz);
    t->slots = ns;
    t->cap = ncap;
    return 0;
}

/* Room for one more entry. */
static int tab_reserve(struct tsdb_mempostings *mp, struct otab *t, size_t esz, size_t min_cap)
{
    if ((t->used + 1) * 4 <= t->cap * 3)
        return 0;
    return tab_resize(mp, t, esz, t->cap ? t->cap * 2 : min_cap);
}

/* Claims the empty slot for a key with hash h (room was reserved) and returns its index; the
 * caller fills the entry, key first. */
static size_t tab_put(struct otab *t, size_t esz, uint64_t h)
{
    size_t mask = t->cap - 1, i = h & mask;
    while (slot_key(t, esz, i))
        i = (i + 1) & mask;
    memset(slot(t, esz, i), 0, esz);
    t->used++;
    return i;
}

/* Removes entry i (backward-shift deletion, so probes never cross a hole), then shrinks the
 * table at 1/8 load. Entries may move: do not keep pointers into the table across this. */
static void tab_del(struct tsdb_mempostings *mp, struct otab *t, size_t esz, size_t i,
                    size_t min_cap)
{
    size_t mask = t->cap - 1;
    for (size_t j = (i + 1) & mask; slot_key(t, esz, j); j = (j + 1) & mask) {
        size_t home = hash_bytes(mp_istr_str(slot_key(t, esz, j))) & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            memcpy(slot(t, esz, i), slot(t, esz, j), esz);
            i = j;
        }
    }
    memset(slot(t, esz, i), 0, esz);
    t->used--;
    if (t->used == 0) {
        mp_free(t->slots);
        acct(mp, 0, t->cap * esz);
        t->slots = NULL;
        t->cap = 0;
    } else if (t->cap > min_cap && t->used * 8 < t->cap) {
        (void)tab_resize(mp, t, esz, t->cap / 2); /* keep the bigger table if that fails */
    }
}

/* ---- one list -------------------------------------------------------------------------------- */

static inline bool v_wide(const struct vent *v)
{
    return v->cap & CAP_WIDE;
}

static inline bool v_inline(const struct vent *v)
{
    return (v->cap & CAP_MASK) == 0;
}

static inline size_t v_cap(const struct vent *v)
{
    size_t c = v->cap & CAP_MASK;
    return c ? c : v_wide(v) ? 1 : 2;
}

static inline uint32_t *v_d32(struct vent *v)
{
    return v_inline(v) ? v->u.in32 : v->u.p32;
}

static inline uint64_t *v_d64(struct vent *v)
{
    return v_inline(v) ? &v->u.in64 : v->u.p64;
}

static inline uint64_t v_at(const struct vent *v, size_t i)
{
    struct vent *m = (struct vent *)v;
    return v_wide(v) ? v_d64(m)[i] : v_d32(m)[i];
}

static struct cursor v_cursor(const struct vent *v)
{
    struct vent *m = (struct vent *)v;
    struct cursor c = {.n = v->n};
    if (v_wide(v))
        c.p64 = v_d64(m);
    else
        c.p32 = v_d32(m);
    return c;
}

static void v_free(struct tsdb_mempostings *mp, struct vent *v)
{
    if (!v_inline(v)) {
        acct(mp, 0, v_cap(v) * (v_wide(v) ? 8 : 4));
        mp_free(v->u.p32);
    }
    v->u.in64 = 0;
    v->n = 0;
    v->cap &= CAP_MARK;
}

/* Room for one more ref, in the wide form if wide (upgrading a narrow list). */
static int v_grow(struct tsdb_mempostings *mp, struct vent *v, bool wide)
{
    size_t n = v->n, cap = v_cap(v);
    bool was_wide = v_wide(v);
    if (wide == was_wide && n < cap)
        return 0;
    size_t ncap = n < cap ? cap : cap + cap / 2;
    if (ncap < VAL_MIN_CAP)
        ncap = VAL_MIN_CAP;
    if (ncap > CAP_MASK) {
        if (n + 1 > CAP_MASK)
            return MP_ELIMIT;
        ncap = CAP_MASK;
    }
    size_t esz = wide ? 8 : 4, oesz = was_wide ? 8 : 4;
    uint32_t flags = (v->cap & CAP_MARK) | (wide ? CAP_WIDE : 0);
    if (!v_inline(v) && wide == was_wide) {
        void *p = mp_realloc(v->u.p32, ncap * esz);
        if (!p)
            return MP_ENOMEM;
        acct(mp, ncap * esz, cap * esz);
        v->u.p32 = p;
        v->cap = (uint32_t)ncap | flags;
        return 0;
    }
    void *p = mp_malloc(ncap * esz);
    if (!p)
        return MP_ENOMEM;
    if (wide)
        for (size_t i = 0; i < n; i++)
            ((uint64_t *)p)[i] = v_at(v, i);
    else
        memcpy(p, v_d32(v), n * 4);
    if (!v_inline(v)) {
        acct(mp, 0, cap * oesz);
        mp_free(v->u.p32);
    }
    acct(mp, ncap * esz, 0);
    v->u.p32 = p;
    v->cap = (uint32_t)ncap | flags;
    return 0;
}

/* First index with element >= x. */
static size_t v_lower_bound(const struct vent *v, uint64_t x)
{
    size_t lo = 0, hi = v->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v_at(v, mid) < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Inserts ref keeping the order (sorted) or at the end (!sorted; the last ref is still
 * checked for a repeat). 1 inserted, 0 already there, or a negative status. */
static int v_insert(struct tsdb_mempostings *mp, struct vent *v, uint64_t ref, bool sorted)
{
    size_t n = v->n, pos = n;
    if (n) {
        uint64_t last = v_at(v, n - 1);
        if (ref == last)
            return 0;
        if (ref < last && sorted) {
            pos = v_lower_bound(v, ref);
            if (v_at(v, pos) == ref)
                return 0;
        }
    }
    int rc = v_grow(mp, v, v_wide(v) || ref > UINT32_MAX);
    if (rc)
        return rc;
    if (v_wide(v)) {
        uint64_t *d = v_d64(v);
        memmove(d + pos + 1, d + pos, (n - pos) * 8);
        d[pos] = ref;
    } else {
        uint32_t *d = v_d32(v);
        memmove(d + pos + 1, d + pos, (n - pos) * 4);
        d[pos] = (uint32_t)ref;
    }
    v->n++;
    return 1;
}

/* After removals: back inline when it fits, else give back most of a mostly empty array.
 * Failure to shrink is harmless. */
static void v_shrink(struct tsdb_mempostings *mp, struct vent *v)
{
    if (v_inline(v))
        return;
    size_t n = v->n, cap = v_cap(v), esz = v_wide(v) ? 8 : 4;
    uint32_t flags = v->cap & (CAP_MARK | CAP_WIDE);
    if (n <= (v_wide(v) ? 1u : 2u)) {
        uint64_t tmp = 0;
        memcpy(&tmp, v->u.p32, n * esz);
        acct(mp, 0, cap * esz);
        mp_free(v->u.p32);
        v->u.in64 = tmp;
        v->cap = flags;
    } else if (n * 4 < cap) {
        size_t ncap = n + n / 2;
        if (ncap < VAL_MIN_CAP)
            ncap = VAL_MIN_CAP;
        void *p = mp_realloc(v->u.p32, ncap * esz);
        if (p) {
            acct(mp, ncap * esz, cap * esz);
            v->u.p32 = p;
            v->cap = (uint32_t)ncap | flags;
        }
    }
}

/* Removes every element that is in refs[0..nrefs) (ascending); returns how many. */
static size_t v_remove_sorted(struct tsdb_mempostings *mp, struct vent *v, const uint64_t *refs,
                              size_t nrefs)
{
    size_t n = v->n, w = 0, j = 0;
    bool wide = v_wide(v);
    uint32_t *d32 = wide ? NULL : v_d32(v);
    uint64_t *d64 = wide ? v_d64(v) : NULL;
    for (size_t i = 0; i < n; i++) {
        uint64_t x = wide ? d64[i] : d32[i];
        j = gallop(refs, j, nrefs, x);
        if (j < nrefs && refs[j] == x)
            continue;
        if (wide)
            d64[w++] = x;
        else
            d32[w++] = (uint32_t)x;
    }
    v->n = (uint32_t)w;
    v_shrink(mp, v);
    return n - w;
}

/* Removes ref wherever it is (rollback of a failed add); returns 1 if it was there. */
static size_t v_remove_one(struct tsdb_mempostings *mp, struct vent *v, uint64_t ref)
{
    for (size_t i = v->n; i-- > 0;) {
        if (v_at(v, i) != ref)
            continue;
        if (v_wide(v))
            memmove(v_d64(v) + i, v_d64(v) + i + 1, (v->n - i - 1) * 8);
        else
            memmove(v_d32(v) + i, v_d32(v) + i + 1, (v->n - i - 1) * 4);
        v->n--;
        v_shrink(mp, v);
        return 1;
    }
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Sorts and de-duplicates; returns how many repeats were dropped. */
static size_t v_sort(struct vent *v)
{
    size_t n = v->n, w = 0;
    bool sorted = true;
    for (size_t i = 1; i < n && sorted; i++)
        sorted = v_at(v, i - 1) < v_at(v, i);
    if (sorted)
        return 0;
    if (v_wide(v))
        qsort(v_d64(v), n, 8, cmp_u64);
    else
        qsort(v_d32(v), n, 4, cmp_u32);
    for (size_t i = 0; i < n; i++) {
        uint64_t x = v_at(v, i);
        if (w && v_at(v, w - 1) == x)
            continue;
        if (v_wide(v))
            v_d64(v)[w++] = x;
        else
            v_d32(v)[w++] = (uint32_t)x;
    }
    v->n = (uint32_t)w;
    return n - w;
}

/* ---- sorted key arrays ----------------------------------------------------------------------- */

static int cmp_istr(const void *a, const void *b)
{
    return mp_str_cmp(mp_istr_str(*(const struct mp_istr *const *)a),
                      mp_istr_str(*(const struct mp_istr *const *)b));
}

/* Under the read (or write) lock: makes k the sorted keys of t unless it is already. Builders
 * are serialised by lazy_mu; the writer, which alone invalidates, excludes them all. */
static int sorted_keys(struct tsdb_mempostings *mp, const struct otab *t, size_t esz,
                       struct keyarr *k)
{
    if (atomic_load_explicit(&k->ok, memory_order_acquire))
        return 0;
    int rc = 0;
    pthread_mutex_lock(&mp->lazy_mu);
    if (!atomic_load_explicit(&k->ok, memory_order_relaxed)) {
        const struct mp_istr **arr = mp_malloc((t->used ? t->used : 1) * sizeof *arr);
        if (!arr) {
            rc = MP_ENOMEM;
        } else {
            size_t n = 0;
            for (size_t i = 0; i < t->cap; i++)
                if (slot_key(t, esz, i))
                    arr[n++] = slot_key(t, esz, i);
            qsort(arr, n, sizeof *arr, cmp_istr);
            acct(mp, (n ? n : 1) * sizeof *arr, 0);
            k->a = arr; /* NULL before: only sorted_drop clears ok, and it frees */
            k->n = n;
            atomic_store_explicit(&k->ok, true, memory_order_release);
        }
    }
    pthread_mutex_unlock(&mp->lazy_mu);
    return rc;
}

/* Under the write lock: the key set changed (or the owner goes away). */
static void sorted_drop(struct tsdb_mempostings *mp, struct keyarr *k)
{
    if (k->a)
        acct(mp, 0, (k->n ? k->n : 1) * sizeof *k->a);
    mp_free(k->a);
    k->a = NULL;
    k->n = 0;
    atomic_store_explicit(&k->ok, false, memory_order_relaxed);
}

/* ---- create, destroy ------------------------------------------------------------------------- */

int tsdb_mempostings_create(struct tsdb_mempostings **out)
{
    struct tsdb_mempostings *mp = mp_calloc(1, sizeof *mp);
    if (!mp)
        return MP_ENOMEM;
    if (pthread_rwlock_init(&mp->lock, NULL)) {
        mp_free(mp);
        return MP_ENOMEM;
    }
    if (pthread_mutex_init(&mp->lazy_mu, NULL)) {
        pthread_rwlock_destroy(&mp->lock);
        mp_free(mp);
        return MP_ENOMEM;
    }
    atomic_init(&mp->sorted_names.ok, false);
    atomic_init(&mp->bytes, sizeof *mp);
    *out = mp;
    return 0;
}

static void nent_free(struct tsdb_mempostings *mp, struct nent *ne)
{
    for (size_t i = 0; i < ne->vals.cap; i++) {
        struct vent *v = slot(&ne->vals, sizeof *v, i);
        if (!v->key)
            continue;
        v_free(mp, v);
        mp_intern_release(v->key);
    }
    sorted_drop(mp, &ne->sorted);
    mp_free(ne->vals.slots);
    acct(mp, 0, ne->vals.cap * sizeof(struct vent));
    mp_intern_release(ne->key);
}

void tsdb_mempostings_destroy(struct tsdb_mempostings *mp)
{
    if (!mp)
        return;
    for (size_t i = 0; i < mp->names.cap; i++) {
        struct nent *ne = slot(&mp->names, sizeof *ne, i);
        if (ne->key)
            nent_free(mp, ne);
    }
    sorted_drop(mp, &mp->sorted_names);
    mp_free(mp->names.slots);
    v_free(mp, &mp->all);
    pthread_mutex_destroy(&mp->lazy_mu);
    pthread_rwlock_destroy(&mp->lock);
    mp_free(mp);
}

/* ---- writing --------------------------------------------------------------------------------- */

static struct nent *name_at(struct tsdb_mempostings *mp, size_t i)
{
    return slot(&mp->names, sizeof(struct nent), i);
}

static struct vent *value_at(struct nent *ne, size_t i)
{
    return slot(&ne->vals, sizeof(struct vent), i);
}

static void drop_name(struct tsdb_mempostings *mp, size_t ni)
{
    sorted_drop(mp, &mp->sorted_names);
    nent_free(mp, name_at(mp, ni));
    tab_del(mp, &mp->names, sizeof(struct nent), ni, NAME_MIN_CAP);
}

/* Drops value vi of name ni (its list is empty), then the name if it has no values left. */
static void drop_value(struct tsdb_mempostings *mp, size_t ni, size_t vi)
{
    struct nent *ne = name_at(mp, ni);
    struct vent *v = value_at(ne, vi);
    sorted_drop(mp, &ne->sorted);
    v_free(mp, v);
    mp_intern_release(v->key);
    tab_del(mp, &ne->vals, sizeof(struct vent), vi, VAL_MIN_CAP);
    if (ne->vals.used == 0)
        drop_name(mp, ni);
}

/* Adds ref to the list name=value. 1 added, 0 already there, or a negative status with nothing
 * changed. */
static int add_pair(struct tsdb_mempostings *mp, const struct mp_istr *nk, const struct mp_istr *vk,
                    uint64_t nh, uint64_t vh, uint64_t ref, bool sorted)
{
    size_t ni = tab_find_istr(&mp->names, sizeof(struct nent), nk, nh);
    bool new_name = ni == NONE;
    if (new_name) {
        int rc = tab_reserve(mp, &mp->names, sizeof(struct nent), NAME_MIN_CAP);
        if (rc)
            return rc;
        sorted_drop(mp, &mp->sorted_names);
        ni = tab_put(&mp->names, sizeof(struct nent), nh);
        struct nent *ne = name_at(mp, ni);
        ne->key = mp_intern_dup(nk);
        atomic_init(&ne->sorted.ok, false);
    }
    struct nent *ne = name_at(mp, ni);
    size_t vi = tab_find_istr(&ne->vals, sizeof(struct vent), vk, vh);
    if (vi != NONE) {
        int rc = v_insert(mp, value_at(ne, vi), ref, sorted);
        if (rc == 1)
            ne->value_bytes += mp_istr_len(vk);
        return rc;
    }
    int rc = tab_reserve(mp, &ne->vals, sizeof(struct vent), VAL_MIN_CAP);
    if (rc) {
        if (new_name)
            drop_name(mp, ni);
        return rc;
    }
    sorted_drop(mp, &ne->sorted);
    struct vent *v = value_at(ne, tab_put(&ne->vals, sizeof(struct vent), vh));
    v->key = mp_intern_dup(vk);
    if (ref > UINT32_MAX) {
        v->cap = CAP_WIDE;
        v->u.in64 = ref;
    } else {
        v->u.in32[0] = (uint32_t)ref;
    }
    v->n = 1;
    ne->value_bytes += mp_istr_len(vk);
    return 1;
}

/* Removes ref from name=value if there, dropping what becomes empty. */
static void remove_pair(struct tsdb_mempostings *mp, const struct mp_istr *nk,
                        const struct mp_istr *vk, uint64_t ref)
{
    size_t ni = tab_find_istr(&mp->names, sizeof(struct nent), nk, hash_bytes(mp_istr_str(nk)));
    if (ni == NONE)
        return;
    struct nent *ne = name_at(mp, ni);
    size_t vi = tab_find_istr(&ne->vals, sizeof(struct vent), vk, hash_bytes(mp_istr_str(vk)));
    if (vi == NONE)
        return;
    struct vent *v = value_at(ne, vi);
    ne->value_bytes -= v_remove_one(mp, v, ref) * mp_istr_len(vk);
    if (v->n == 0)
        drop_value(mp, ni, vi);
}

static bool indexed(const struct mp_labels *ls, size_t i)
{
    return mp_istr_len(mp_labels_name_at(ls, i)) && mp_istr_len(mp_labels_value_at(ls, i));
}

static int add(struct tsdb_mempostings *mp, uint64_t ref, const struct mp_labels *ls,
               bool sorted)
{
    /* The table hashes of every name and value before taking the lock: each series creation
     * holds the writer lock, which blocks every query and every other new series, so the
     * hold covers only the table work. */
    size_t n = mp_labels_count(ls), i;
    uint64_t stack[2 * 32];
    uint64_t *hs = 2 * n <= sizeof stack / sizeof stack[0] ? stack : mp_malloc(2 * n * sizeof *hs);
    if (!hs)
        return MP_ENOMEM;
    for (i = 0; i < n; i++) {
        hs[2 * i] = hash_bytes(mp_istr_str(mp_labels_name_at(ls, i)));
        hs[2 * i + 1] = hash_bytes(mp_istr_str(mp_labels_value_at(ls, i)));
    }
    pthread_rwlock_wrlock(&mp->lock);
    if (!sorted)
        mp->unsorted = true;
    int rc = 0;
    for (i = 0; i < n; i++) {
        if (!indexed(ls, i))
            continue;
        rc = add_pair(mp, mp_labels_name_at(ls, i), mp_labels_value_at(ls, i), hs[2 * i],
                      hs[2 * i + 1], ref, sorted);
        if (rc < 0)
            break; /* add_pair changed nothing for label i */
    }
    if (rc >= 0)
        rc = v_insert(mp, &mp->all, ref, sorted);
    if (rc < 0) /* undo labels [0, i) */
        for (size_t j = 0; j < i; j++)
            if (indexed(ls, j))
                remove_pair(mp, mp_labels_name_at(ls, j), mp_labels_value_at(ls, j), ref);
    pthread_rwlock_unlock(&mp->lock);
    if (hs != stack)
        mp_free(hs);
    return rc < 0 ? rc : 0;
}

int tsdb_mempostings_add(struct tsdb_mempostings *mp, uint64_t ref, const struct mp_labels *ls)
{
    return add(mp, ref, ls, true);
}

int tsdb_mempostings_add_unsorted(struct tsdb_mempostings *mp, uint64_t ref,
                                  const struct mp_labels *ls)
{
    return add(mp, ref, ls, false);
}

void tsdb_mempostings_ensure_order(struct tsdb_mempostings *mp)
{
    pthread_rwlock_wrlock(&mp->lock);
    if (mp->unsorted) {
        for (size_t i = 0; i < mp->names.cap; i++) {
            struct nent *ne = name_at(mp, i);
            if (!ne->key)
                continue;
            for (size_t j = 0; j < ne->vals.cap; j++) {
                struct vent *v = value_at(ne, j);
                if (v->key)
                    ne->value_bytes -= v_sort(v) * mp_istr_len(v->key);
            }
        }
        (void)v_sort(&mp->all);
        mp->unsorted = false;
    }
    pthread_rwlock_unlock(&mp->lock);
}

/* Delete pass over the label pairs of the dead series: rewrite == true filters each list once
 * (marking it), rewrite == false clears the marks again. */
static void delete_pass(struct tsdb_mempostings *mp, const uint64_t *refs,
                        const struct mp_labels *const *ls, size_t n, bool rewrite)
{
    for (size_t s = 0; s < n; s++) {
        for (size_t l = 0, nl = mp_labels_count(ls[s]); l < nl; l++) {
            if (!indexed(ls[s], l))
                continue;
            const struct mp_istr *nk = mp_labels_name_at(ls[s], l);
            const struct mp_istr *vk = mp_labels_value_at(ls[s], l);
            size_t ni =
                tab_find_istr(&mp->names, sizeof(struct nent), nk, hash_bytes(mp_istr_str(nk)));
            if (ni == NONE)
                continue;
            struct nent *ne = name_at(mp, ni);
            size_t vi =
                tab_find_istr(&ne->vals, sizeof(struct vent), vk, hash_bytes(mp_istr_str(vk)));
            if (vi == NONE)
                continue;
            struct vent *v = value_at(ne, vi);
            if (!rewrite) {
                v->cap &= ~CAP_MARK;
                continue;
            }
            if (v->cap & CAP_MARK)
                continue;
            ne->value_bytes -= v_remove_sorted(mp, v, refs, n) * mp_istr_len(vk);
            if (v->n == 0)
                drop_value(mp, ni, vi);
            else
                v->cap |= CAP_MARK;
        }
    }
}

void tsdb_mempostings_delete(struct tsdb_mempostings *mp, const uint64_t *refs,
                             const struct mp_labels *const *ls, size_t n)
{
    if (n == 0)
        return;
    pthread_rwlock_wrlock(&mp->lock);
    delete_pass(mp, refs, ls, n, true);
    delete_pass(mp, refs, ls, n, false);
    (void)v_remove_sorted(mp, &mp->all, refs, n);
    pthread_rwlock_unlock(&mp->lock);
}

/* ---- reading --------------------------------------------------------------------------------- */

static size_t find_name(const struct tsdb_mempostings *mp, struct mp_str name)
{
    return tab_find(&mp->names, sizeof(struct nent), name, hash_bytes(name));
}

static const struct vent *find_value(const struct nent *ne, struct mp_str value)
{
    size_t vi = tab_find(&ne->vals, sizeof(struct vent), value, hash_bytes(value));
    return vi == NONE ? NULL : slot(&ne->vals, sizeof(struct vent), vi);
}

/* Copies the sorted keys (with a reference each) so that fn runs without the lock. */
static int walk_keys(struct tsdb_mempostings *mp, struct mp_str name, bool values,
                     int (*fn)(void *fctx, struct mp_str s), void *fctx)
{
    pthread_rwlock_rdlock(&mp->lock);
    const struct otab *t = &mp->names;
    size_t esz = sizeof(struct nent);
    struct keyarr *k = &mp->sorted_names;
    if (values) {
        size_t ni = name.len ? find_name(mp, name) : NONE;
        if (ni == NONE) {
            pthread_rwlock_unlock(&mp->lock);
            return 0;
        }
        struct nent *ne = name_at(mp, ni);
        t = &ne->vals;
        esz = sizeof(struct vent);
        k = &ne->sorted;
    }
    size_t n = t->used;
    int rc = n ? sorted_keys(mp, t, esz, k) : 0;
    const struct mp_istr **snap = NULL;
    if (rc == 0 && n) {
        snap = mp_malloc(n * sizeof *snap);
        if (!snap)
            rc = MP_ENOMEM;
        else
            for (size_t i = 0; i < n; i++)
                snap[i] = mp_intern_dup(k->a[i]);
    }
    pthread_rwlock_unlock(&mp->lock);
    if (rc || !n)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = fn(fctx, mp_istr_str(snap[i]));
    for (size_t i = 0; i < n; i++)
        mp_intern_release(snap[i]);
    mp_free(snap);
    return rc;
}

int tsdb_mempostings_label_names(struct tsdb_mempostings *mp,
                                 int (*fn)(void *fctx, struct mp_str name), void *fctx)
{
    return walk_keys(mp, (struct mp_str){"", 0}, false, fn, fctx);
}

int tsdb_mempostings_label_values(struct tsdb_mempostings *mp, struct mp_str name,
                                  int (*fn)(void *fctx, struct mp_str value), void *fctx)
{
    return walk_keys(mp, name, true, fn, fctx);
}

size_t tsdb_mempostings_num_names(struct tsdb_mempostings *mp)
{
    pthread_rwlock_rdlock(&mp->lock);
    size_t n = mp->names.used;
    pthread_rwlock_unlock(&mp->lock);
    return n;
}

size_t tsdb_mempostings_num_values(struct tsdb_mempostings *mp, struct mp_str name)
{
    pthread_rwlock_rdlock(&mp->lock);
    size_t ni = name.len ? find_name(mp, name) : NONE;
    size_t n = ni == NONE ? 0 : name_at(mp, ni)->vals.used;
    pthread_rwlock_unlock(&mp->lock);
    return n;
}

size_t tsdb_mempostings_num_series(struct tsdb_mempostings *mp, struct mp_str name,
                                   struct mp_str value)
{
    size_t n = 0;
    pthread_rwlock_rdlock(&mp->lock);
    if (name.len == 0) {
        n = value.len == 0 ? mp->all.n : 0;
    } else {
        size_t ni = find_name(mp, name);
        const struct vent *v = ni == NONE ? NULL : find_value(name_at(mp, ni), value);
        n = v ? v->n : 0;
    }
    pthread_rwlock_unlock(&mp->lock);
    return n;
}

size_t tsdb_mempostings_bytes(struct tsdb_mempostings *mp)
{
    return atomic_load_explicit(&mp->bytes, memory_order_relaxed);
}

/* ---- statistics ------------------------------------------------------------------------------ */

/* "a ranks before b": count descending, then name, then value ascending. */
static bool stat_before(const struct tsdb_postings_stat *a, const struct tsdb_postings_stat *b)
{
    if (a->count != b->count)
        return a->count > b->count;
    int c = mp_str_cmp(mp_istr_str(a->name), mp_istr_str(b->name));
    if (c)
        return c < 0;
    if (!a->value || !b->value)
        return false;
    return mp_str_cmp(mp_istr_str(a->value), mp_istr_str(b->value)) < 0;
}

/* Keeps h[0..*n) the best *n entries seen, sorted best first (insertion; limit is small and
 * stats are rare, so O(limit) per offer is fine). References are taken at the end. */
static void topn_offer(struct tsdb_postings_stat *h, size_t *n, size_t limit,
                       struct tsdb_postings_stat e)
{
    size_t i = *n;
    if (i == limit) {
        if (limit == 0 || !stat_before(&e, &h[limit - 1]))
            return;
        i--; /* the last one drops out */
    } else {
        (*n)++;
    }
    for (; i > 0 && stat_before(&e, &h[i - 1]); i--)
        h[i] = h[i - 1];
    h[i] = e;
}

static void topn_hold(struct tsdb_postings_stat *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h[i].name = mp_intern_dup(h[i].name);
        if (h[i].value)
            h[i].value = mp_intern_dup(h[i].value);
    }
}

void tsdb_mempostings_stats(struct tsdb_mempostings *mp, struct mp_str label,
                            struct tsdb_postings_stats *s)
{
    size_t lim = s->limit;
    s->n_series_by_metric = s->n_values_by_name = s->n_bytes_by_name = s->n_series_by_pair = 0;
    s->num_label_pairs = 0;
    pthread_rwlock_rdlock(&mp->lock);
    s->num_series = mp->all.n;
    for (size_t i = 0; i < mp->names.cap; i++) {
        const struct nent *ne = name_at(mp, i);
        if (!ne->key)
            continue;
        bool is_label = key_is(ne->key, label);
        topn_offer(s->values_by_name, &s->n_values_by_name, lim,
                   (struct tsdb_postings_stat){ne->key, NULL, ne->vals.used});
        topn_offer(s->bytes_by_name, &s->n_bytes_by_name, lim,
                   (struct tsdb_postings_stat){ne->key, NULL, ne->value_bytes});
        s->num_label_pairs += ne->vals.used;
        for (size_t j = 0; j < ne->vals.cap; j++) {
            const struct vent *v = slot(&ne->vals, sizeof(struct vent), j);
            if (!v->key)
                continue;
            if (is_label)
                topn_offer(s->series_by_metric, &s->n_series_by_metric, lim,
                           (struct tsdb_postings_stat){v->key, NULL, v->n});
            topn_offer(s->series_by_pair, &s->n_series_by_pair, lim,
                       (struct tsdb_postings_stat){ne->key, v->key, v->n});
        }
    }
    topn_hold(s->series_by_metric, s->n_series_by_metric);
    topn_hold(s->values_by_name, s->n_values_by_name);
    topn_hold(s->bytes_by_name, s->n_bytes_by_name);
    topn_hold(s->series_by_pair, s->n_series_by_pair);
    pthread_rwlock_unlock(&mp->lock);
}

static void stats_release_one(struct tsdb_postings_stat *a, size_t *n)
{
    for (size_t i = 0; i < *n; i++) {
        mp_intern_release(a[i].name);
        mp_intern_release(a[i].value);
    }
    *n = 0;
}

void tsdb_postings_stats_release(struct tsdb_postings_stats *s)
{
    stats_release_one(s->series_by_metric, &s->n_series_by_metric);
    stats_release_one(s->values_by_name, &s->n_values_by_name);
    stats_release_one(s->bytes_by_name, &s->n_bytes_by_name);
    stats_release_one(s->series_by_pair, &s->n_series_by_pair);
}

/* ---- the index reader ------------------------------------------------------------------------ */

static int ir_postings(void *ctx, struct mp_str name, const struct mp_str *values, size_t n,
                       struct tsdb_plist *out, struct mp_err *err)
{
    struct tsdb_mempostings *mp = ctx;
    struct cursor stack[STACK_CURSORS], *c = cursors_get(stack, n);
    if (!c)
        return mp_err_set(err, MP_ENOMEM, "head postings: out of memory");
    size_t k = 0, total = 0;
    pthread_rwlock_rdlock(&mp->lock);
    if (name.len == 0) {
        for (size_t i = 0; i < n; i++)
            if (values[i].len == 0 && mp->all.n) {
                c[k++] = v_cursor(&mp->all);
                total += mp->all.n;
            }
    } else {
        size_t ni = find_name(mp, name);
        for (size_t i = 0; i < n && ni != NONE; i++) {
            const struct vent *v = find_value(name_at(mp, ni), values[i]);
            if (v) {
                c[k++] = v_cursor(v);
                total += v->n;
            }
        }
    }
    int rc = tsdb_plist_reserve(out, total);
    if (rc == 0)
        merge_cursors(c, k, out);
    pthread_rwlock_unlock(&mp->lock);
    cursors_put(c, stack);
    return rc ? mp_err_set(err, rc, "head postings: out of memory") : 0;
}

/* The list of name=value, NULL if none (read lock held). */
static const struct vent *find_pair(struct tsdb_mempostings *mp, struct mp_str name,
                                    struct mp_str value)
{
    size_t ni = find_name(mp, name);
    return ni == NONE ? NULL : find_value(name_at(mp, ni), value);
}

static int ir_postings_count(void *ctx, struct mp_str name, struct mp_str value, size_t *n,
                             struct mp_err *err)
{
    (void)err;
    struct tsdb_mempostings *mp = ctx;
    pthread_rwlock_rdlock(&mp->lock);
    const struct vent *v = find_pair(mp, name, value);
    *n = v ? v->n : 0;
    pthread_rwlock_unlock(&mp->lock);
    return 0;
}

static int ir_postings_filter(void *ctx, struct mp_str name, struct mp_str value,
                              struct tsdb_plist *io, struct mp_err *err)
{
    (void)err;
    struct tsdb_mempostings *mp = ctx;
    size_t w = 0;
    pthread_rwlock_rdlock(&mp->lock);
    const struct vent *v = find_pair(mp, name, value);
    if (v) {
        struct cursor c = v_cursor(v);
        for (size_t i = 0, j = 0; i < io->n; i++) {
            uint64_t x = io->refs[i];
            j = c.p64 ? gallop(c.p64, j, c.n, x) : gallop32(c.p32, j, c.n, x);
            if (j == c.n)
                break;
            if ((c.p64 ? c.p64[j] : c.p32[j]) == x)
                io->refs[w++] = x;
        }
    }
    pthread_rwlock_unlock(&mp->lock);
    io->n = w;
    return 0;
}

static int ir_label_values(void *ctx, struct mp_str name, int (*fn)(void *fctx, struct mp_str v),
                           void *fctx, struct mp_err *err)
{
    int rc = tsdb_mempostings_label_values(ctx, name, fn, fctx);
    if (rc == MP_ENOMEM)
        mp_err_set(err, rc, "head label values: out of memory");
    return rc;
}

static const struct tsdb_ireader_ops mem_ops = {
    .postings = ir_postings,
    .label_values = ir_label_values,
    .postings_count = ir_postings_count,
    .postings_filter = ir_postings_filter,
};

void tsdb_mempostings_ireader(struct tsdb_mempostings *mp, struct tsdb_ireader *out)
{
    out->ops = &mem_ops;
    out->ctx = mp;
}

/* ---- matcher resolution ---------------------------------------------------------------------- */

static bool is_negative(const struct mp_matcher *m)
{
    enum mp_match_type t = mp_matcher_type(m);
    return t == MP_MATCH_NOT_EQUAL || t == MP_MATCH_NOT_REGEX;
}

/* Values of a label that a matcher accepts (want) or rejects (!want), gathered from a walk. */
struct collect {
    const struct mp_matcher *m;
    bool want;
    bool every;           /* m answers `want` for every non-empty value: skip the test */
    struct mp_buf bytes;  /* the values, back to back */
    size_t *lens;
    size_t n, cap;
};

static int collect_fn(void *ctx, struct mp_str v)
{
    struct collect *c = ctx;
    if ((v.len == 0 || !c->every) && mp_matcher_matches(c->m, v) != c->want)
        return 0;
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 64;
        size_t *p = mp_realloc(c->lens, ncap * sizeof *p);
        if (!p)
            return MP_ENOMEM;
        c->lens = p;
        c->cap = ncap;
    }
    int rc = mp_buf_append(&c->bytes, v.len ? v.ptr : "", v.len);
    if (rc)
        return rc;
    c->lens[c->n++] = v.len;
    return 0;
}

/* Does m give one answer for every non-empty value? Only for the empty-string operands, whose
 * meaning does not depend on regex flags: `=""`, `=~""` reject, `!=""`, `!~""` accept. */
static bool constant_on_nonempty(const struct mp_matcher *m, bool *answer)
{
    if (mp_matcher_value(m).len != 0)
        return false;
    *answer = is_negative(m);
    return true;
}

static int cmp_str(const void *a, const void *b)
{
    return mp_str_cmp(*(const struct mp_str *)a, *(const struct mp_str *)b);
}

/* One postings call for a literal set: sorted and de-duplicated, as Prometheus sorts them. */
static int set_postings(const struct tsdb_ireader *ir, struct mp_str name,
                        const struct mp_str *vals, size_t k, struct tsdb_plist *out,
                        struct mp_err *err)
{
    if (k == 0)
        return 0;
    struct mp_str *s = mp_malloc(k * sizeof *s);
    if (!s)
        return mp_err_set(err, MP_ENOMEM, "postings for matchers: out of memory");
    memcpy(s, vals, k * sizeof *s);
    qsort(s, k, sizeof *s, cmp_str);
    size_t w = 0;
    for (size_t i = 0; i < k; i++)
        if (w == 0 || !mp_str_eq(s[w - 1], s[i]))
            s[w++] = s[i];
    int rc = ir->ops->postings(ir->ctx, name, s, w, out, err);
    mp_free(s);
    return rc;
}

/* Union of the lists of the values v of m's label with matches(v) == want; never includes
 * series lacking the label. want: Prometheus postingsForMatcher(m); !want:
 * inversePostingsForMatcher(m) (equivalently postingsForMatcher(inverse(m))). out is reset. */
static int label_postings(const struct tsdb_ireader *ir, const struct mp_matcher *m, bool want,
                          struct tsdb_plist *out, struct mp_err *err)
{
    tsdb_plist_reset(out);
    struct mp_str name = mp_matcher_name(m), value = mp_matcher_value(m);
    enum mp_match_type t = mp_matcher_type(m);
    /* one list: l="x" accepts only x, l!="x" rejects only x */
    if ((t == MP_MATCH_EQUAL && want) || (t == MP_MATCH_NOT_EQUAL && !want))
        return ir->ops->postings(ir->ctx, name, &value, 1, out, err);
    /* set matches: l=~"a|b" accepts only a, b; l!~"a|b" rejects only a, b */
    const struct mp_str *vals;
    size_t k;
    if (((t == MP_MATCH_REGEX && want) || (t == MP_MATCH_NOT_REGEX && !want)) &&
        mp_matcher_set_values(m, &vals, &k))
        return set_postings(ir, name, vals, k, out, err);
    bool answer = false;
    bool every = constant_on_nonempty(m, &answer);
    if (every && answer != want) { /* only "" can qualify (l=~"" accepting, l!="" rejecting) */
        if (mp_matcher_matches_empty(m) != want)
            return 0;
        struct mp_str empty = {"", 0};
        return ir->ops->postings(ir->ctx, name, &empty, 1, out, err);
    }
    struct collect c = {.m = m, .want = want, .every = every};
    mp_buf_init(&c.bytes, 0);
    int rc = ir->ops->label_values(ir->ctx, name, collect_fn, &c, err);
    if (rc == MP_ENOMEM)
        mp_err_set(err, rc, "postings for matchers: out of memory");
    struct mp_str *s = NULL;
    if (rc == 0 && c.n) {
        s = mp_malloc(c.n * sizeof *s);
        if (!s) {
            rc = mp_err_set(err, MP_ENOMEM, "postings for matchers: out of memory");
        } else {
            size_t off = 0;
            for (size_t i = 0; i < c.n; i++) {
                s[i] = (struct mp_str){c.bytes.data + off, c.lens[i]};
                off += c.lens[i];
            }
            rc = ir->ops->postings(ir->ctx, name, s, c.n, out, err);
        }
    }
    mp_free(s);
    mp_free(c.lens);
    mp_buf_fini(&c.bytes);
    return rc;
}

static int all_postings(const struct tsdb_ireader *ir, struct tsdb_plist *out,
                        struct mp_err *err)
{
    struct mp_str empty = {"", 0};
    tsdb_plist_reset(out);
    return ir->ops->postings(ir->ctx, empty, &empty, 1, out, err);
}

/* Scratch of one resolution: per matcher "label must be set", "subtracting" and "resolved
 * already", and lists. */
struct resolve {
    bool *must;
    bool *sub;
    bool *done;
    struct tsdb_plist *lists; /* n + 1 */
    struct tsdb_plist **its, **nots;
    size_t nlists, nits, nnots;
};

/* l="v" intersecting (v is never "" then: l="" does not intersect), with a name */
static bool filterable(const struct mp_matcher *m, bool sub)
{
    return !sub && mp_matcher_type(m) == MP_MATCH_EQUAL && mp_matcher_name(m).len != 0;
}

struct eq_list {
    size_t count;
    size_t i; /* the matcher */
};

/* The intersecting matchers l="v" (v is never "" here: l="" does not intersect), when the index
 * can count and filter and there are two or more: instead of copying every list to intersect
 * the copies, copy the shortest and filter it through the others in order of length, reading
 * them where they lie. A dashboard selector's namespace and deployment lists are long, the
 * answer short. Adds the result to r->its, marks the matchers done; *empty when it is. */
static int resolve_equal(const struct tsdb_ireader *ir, const struct mp_matcher *const *m, size_t n,
                         struct resolve *r, bool *empty, struct mp_err *err)
{
    if (!ir->ops->postings_count || !ir->ops->postings_filter)
        return 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += filterable(m[i], r->sub[i]);
    if (k < 2)
        return 0;
    struct eq_list *e = mp_malloc(k * sizeof *e);
    if (!e)
        return mp_err_set(err, MP_ENOMEM, "postings for matchers: out of memory");
    int rc = 0;
    k = 0;
    for (size_t i = 0; i < n && rc == 0 && !*empty; i++) {
        if (!filterable(m[i], r->sub[i]))
            continue;
        size_t c = 0;
        rc = ir->ops->postings_count(ir->ctx, mp_matcher_name(m[i]), mp_matcher_value(m[i]), &c,
                                     err);
        *empty = rc == 0 && c == 0;
        size_t j = k++;
        for (; j > 0 && e[j - 1].count > c; j--) /* insertion sort by length, stable */
            e[j] = e[j - 1];
        e[j] = (struct eq_list){c, i};
        r->done[i] = true;
    }
    if (rc == 0 && !*empty) {
        struct tsdb_plist *p = &r->lists[r->nlists++];
        const struct mp_matcher *s = m[e[0].i];
        struct mp_str v = mp_matcher_value(s);
        rc = ir->ops->postings(ir->ctx, mp_matcher_name(s), &v, 1, p, err);
        for (size_t j = 1; j < k && rc == 0 && p->n; j++)
            rc = ir->ops->postings_filter(ir->ctx, mp_matcher_name(m[e[j].i]),
                                          mp_matcher_value(m[e[j].i]), p, err);
        *empty = rc == 0 && p->n == 0;
        r->its[r->nits++] = p;
    }
    mp_free(e);
    return rc;
}

int tsdb_postings_for_matchers(const struct tsdb_ireader *ir, const struct mp_matcher *const *m,
                               size_t n, struct tsdb_plist *out, struct mp_err *err)
{
    tsdb_plist_reset(out);
    if (n == 0)
        return 0;
    struct resolve r = {0};
    size_t per = 3 * sizeof(bool) + sizeof(struct tsdb_plist) + 2 * sizeof(struct tsdb_plist *);
    size_t bytes;
    if (__builtin_mul_overflow(n + 1, per, &bytes))
        return mp_err_set(err, MP_ENOMEM, "postings for matchers: too many matchers");
    unsigned char *mem = mp_calloc(1, bytes);
    if (!mem)
        return mp_err_set(err, MP_ENOMEM, "postings for matchers: out of memory");
    /* pointers first, then plists, then the bools, so everything stays aligned */
    r.its = (struct tsdb_plist **)(void *)mem;
    r.nots = r.its + (n + 1);
    r.lists = (struct tsdb_plist *)(void *)(r.nots + (n + 1));
    r.must = (bool *)(r.lists + (n + 1));
    r.sub = r.must + (n + 1);
    r.done = r.sub + (n + 1);

    /* must_be_set[name]: some matcher of that name rejects "" */
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n && !r.must[i]; j++)
            r.must[i] = !mp_matcher_matches_empty(m[j]) &&
                        mp_str_eq(mp_matcher_name(m[i]), mp_matcher_name(m[j]));
    bool all_sub = true;
    for (size_t i = 0; i < n; i++) {
        r.sub[i] = !r.must[i] || (is_negative(m[i]) && mp_matcher_matches_empty(m[i]));
        all_sub = all_sub && r.sub[i];
    }

    int rc = 0;
    bool empty = false;
    /* nothing to subtract from: start from all series, fetched before anything else so that
     * the base never holds series newer than the lists subtracted from it */
    if (all_sub) {
        struct tsdb_plist *p = &r.lists[r.nlists++];
        rc = all_postings(ir, p, err);
        r.its[r.nits++] = p;
    }
    if (rc == 0)
        rc = resolve_equal(ir, m, n, &r, &empty, err);
    /* stable order: intersecting matchers first, then subtracting ones */
    for (int pass = 0; pass < 2 && rc == 0 && !empty; pass++) {
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (r.sub[i] != (pass == 1) || r.done[i])
                continue;
            struct tsdb_plist *p = &r.lists[r.nlists++];
            if (mp_matcher_name(m[i]).len == 0 && mp_matcher_value(m[i]).len == 0) {
                rc = all_postings(ir, p, err);
                r.its[r.nits++] = p;
            } else if (!r.sub[i]) {
                /* l="a", l=~"a|b", l=~".+"; l!="" and l!~"" through inverse(inverse(m)) */
                rc = label_postings(ir, m[i], true, p, err);
                if (rc == 0 && p->n == 0) {
                    empty = true;
                    break;
                }
                r.its[r.nits++] = p;
            } else {
                /* l!="foo" with l required elsewhere, or any matcher accepting "" (l="",
                 * l=~"a|", l!="x" alone): series having a value that m rejects */
                rc = label_postings(ir, m[i], false, p, err);
                r.nots[r.nnots++] = p;
            }
        }
    }
    if (rc == 0 && !empty) {
        if (r.nits == 1) {
            struct tsdb_plist t = *out;
            *out = *r.its[0];
            *r.its[0] = t;
        } else {
            rc = tsdb_plist_intersect((const struct tsdb_plist *const *)r.its, r.nits, out);
            if (rc)
                mp_err_set(err, rc, "postings for matchers: out of memory");
        }
        for (size_t i = 0; i < r.nnots && rc == 0 && out->n; i++)
            tsdb_plist_subtract(out, r.nots[i]);
    }
    for (size_t i = 0; i < r.nlists; i++)
        tsdb_plist_fini(&r.lists[i]);
    mp_free(mem);
    if (rc || empty)
        tsdb_plist_reset(out);
    return rc;
}
