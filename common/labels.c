/* SPDX-License-Identifier: Apache-2.0 */
/* common/labels.c: immutable label sets, their hashes and text form, name validation, and the
 * relabeling builder. Strings come from the interner (common/intern.c).
 *
 * Invariant of struct mp_labels: l[0..n) sorted by name (byte-wise), names unique, every
 * string holds one interner reference owned by the set, hash == Prometheus labels.Hash().
 * Since equal strings are one interned object while held, two live sets are equal iff their
 * pointers are equal pair by pair.
 *
 * Reference: prometheus/prometheus model/labels/labels.go and labels_common.go (slice build);
 * Go strconv.Quote for the text form. */
#include "common/labels.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Linked, not inlined: GCC's -Warray-bounds misfires on XXH64_update inlined with 1-byte
 * inputs. The static-linking-only state type matches the installed library's header. */
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "common/alloc.h"
#include "common/labels_internal.h"

#define SEP '\xff'
/* XXH64 of the empty input with seed 0: the hash of the empty label set. */
#define EMPTY_HASH UINT64_C(0xef46db3751d8e999)
/* Sets at most this large are hashed from a stack buffer, as Prometheus does below 1 KiB. */
#define HASH_STACK 1024
/* Bytes a builder may copy between resets (2.6.7: every buffer that grows from input is capped). */
#define BUILDER_MAX_BYTES ((size_t)64 << 20)
#define ARENA_BLOCK 4096

struct pair {
    const struct mp_istr *name;
    const struct mp_istr *value;
};

struct mp_labels {
    _Atomic uint32_t refs;
    uint32_t n;
    uint64_t hash;
    struct pair l[];
};

static struct mp_labels empty_set = {MP_ISTR_IMMORTAL, 0, EMPTY_HASH};

/* ---- Character classes ---------------------------------------------------------------- */

enum {
    C_LFIRST = 1, /* [a-zA-Z_] */
    C_LREST = 2,  /* [a-zA-Z0-9_] */
    C_MFIRST = 4, /* [a-zA-Z_:] */
    C_MREST = 8,  /* [a-zA-Z0-9_:] */
};

#define L_ (C_LFIRST | C_LREST | C_MFIRST | C_MREST)
#define D_ (C_LREST | C_MREST)
#define K_ (C_MFIRST | C_MREST)
static const uint8_t name_class[256] = {
    ['0'] = D_, ['1'] = D_, ['2'] = D_, ['3'] = D_, ['4'] = D_,
    ['5'] = D_, ['6'] = D_, ['7'] = D_, ['8'] = D_, ['9'] = D_,
    [':'] = K_, ['_'] = L_,
    ['A'] = L_, ['B'] = L_, ['C'] = L_, ['D'] = L_, ['E'] = L_, ['F'] = L_, ['G'] = L_,
    ['H'] = L_, ['I'] = L_, ['J'] = L_, ['K'] = L_, ['L'] = L_, ['M'] = L_, ['N'] = L_,
    ['O'] = L_, ['P'] = L_, ['Q'] = L_, ['R'] = L_, ['S'] = L_, ['T'] = L_, ['U'] = L_,
    ['V'] = L_, ['W'] = L_, ['X'] = L_, ['Y'] = L_, ['Z'] = L_,
    ['a'] = L_, ['b'] = L_, ['c'] = L_, ['d'] = L_, ['e'] = L_, ['f'] = L_, ['g'] = L_,
    ['h'] = L_, ['i'] = L_, ['j'] = L_, ['k'] = L_, ['l'] = L_, ['m'] = L_, ['n'] = L_,
    ['o'] = L_, ['p'] = L_, ['q'] = L_, ['r'] = L_, ['s'] = L_, ['t'] = L_, ['u'] = L_,
    ['v'] = L_, ['w'] = L_, ['x'] = L_, ['y'] = L_, ['z'] = L_,
};
#undef L_
#undef D_
#undef K_

static bool name_matches(struct mp_str s, uint8_t first, uint8_t rest)
{
    const unsigned char *p = (const unsigned char *)s.ptr;
    if (s.len == 0 || !(name_class[p[0]] & first))
        return false;
    for (size_t i = 1; i < s.len; i++)
        if (!(name_class[p[i]] & rest))
            return false;
    return true;
}

bool mp_label_name_is_valid(struct mp_str s)
{
    return name_matches(s, C_LFIRST, C_LREST);
}

bool mp_metric_name_is_valid(struct mp_str s)
{
    return name_matches(s, C_MFIRST, C_MREST);
}

/* ---- UTF-8 (Go unicode/utf8 semantics) ------------------------------------------------ */

bool mp_label_value_is_valid(struct mp_str s)
{
    return mp_utf8_valid(s);
}

/* ---- Go-style quoting ----------------------------------------------------------------- */

/* Code points >= U+0080 that Go's unicode.IsPrint rejects, other than unassigned ones:
 * C1 controls, non-ASCII spaces (Zs), line/paragraph separators, format characters (Cf),
 * surrogates, private use and noncharacters. Sorted, inclusive. */
static const uint32_t nonprint[][2] = {
    {0x0080, 0x00A0}, {0x00AD, 0x00AD}, {0x0600, 0x0605}, {0x061C, 0x061C},
    {0x06DD, 0x06DD}, {0x070F, 0x070F}, {0x0890, 0x0891}, {0x08E2, 0x08E2},
    {0x1680, 0x1680}, {0x180E, 0x180E}, {0x2000, 0x200F}, {0x2028, 0x202F},
    {0x205F, 0x2064}, {0x2066, 0x206F}, {0x3000, 0x3000}, {0xD800, 0xF8FF},
    {0xFDD0, 0xFDEF}, {0xFEFF, 0xFEFF}, {0xFFF9, 0xFFFB}, {0x110BD, 0x110BD},
    {0x110CD, 0x110CD}, {0x13430, 0x1343F}, {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A},
    {0xE0001, 0xE0001}, {0xE0020, 0xE007F}, {0xF0000, 0x10FFFF},
};

static bool rune_is_print(uint32_t r)
{
    if (r < 0x80)
        return r >= 0x20 && r < 0x7F;
    if ((r & 0xFFFE) == 0xFFFE) /* U+xxFFFE and U+xxFFFF are noncharacters on every plane */
        return false;
    size_t lo = 0, hi = sizeof nonprint / sizeof nonprint[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r < nonprint[mid][0])
            hi = mid;
        else if (r > nonprint[mid][1])
            lo = mid + 1;
        else
            return false;
    }
    return true;
}

int mp_label_quote(struct mp_buf *out, struct mp_str s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s.ptr;
    int rc = mp_buf_append(out, "\"", 1);
    size_t i = 0;
    while (rc == 0 && i < s.len) {
        /* fast path: a run of printable ASCII that needs no escape */
        size_t j = i;
        while (j < s.len && p[j] >= 0x20 && p[j] < 0x7F && p[j] != '"' && p[j] != '\\')
            j++;
        if (j > i) {
            rc = mp_buf_append(out, p + i, j - i);
            i = j;
            continue;
        }
        uint32_t r;
        size_t w = mp_utf8_decode(p + i, s.len - i, &r);
        char esc[10];
        size_t elen = 0;
        if (w == 1 && r == MP_UTF8_ERROR) {
            esc[0] = '\\', esc[1] = 'x', esc[2] = hex[p[i] >> 4], esc[3] = hex[p[i] & 15];
            elen = 4;
        } else if (r == '"' || r == '\\') {
            esc[0] = '\\', esc[1] = (char)r;
            elen = 2;
        } else if (rune_is_print(r)) {
            rc = mp_buf_append(out, p + i, w);
            i += w;
            continue;
        } else {
            char c = 0;
            switch (r) {
            case '\a': c = 'a'; break;
            case '\b': c = 'b'; break;
            case '\f': c = 'f'; break;
            case '\n': c = 'n'; break;
            case '\r': c = 'r'; break;
            case '\t': c = 't'; break;
            case '\v': c = 'v'; break;
            default: break;
            }
            esc[0] = '\\';
            if (c) {
                esc[1] = c;
                elen = 2;
            } else if (r < 0x80) {
                esc[1] = 'x', esc[2] = hex[r >> 4], esc[3] = hex[r & 15];
                elen = 4;
            } else {
                int digits = r < 0x10000 ? 4 : 8;
                esc[1] = r < 0x10000 ? 'u' : 'U';
                for (int k = 0; k < digits; k++)
                    esc[2 + k] = hex[(r >> (4 * (digits - 1 - k))) & 15];
                elen = 2 + (size_t)digits;
            }
        }
        rc = mp_buf_append(out, esc, elen);
        i += w;
    }
    return rc ? rc : mp_buf_append(out, "\"", 1);
}

/* ---- Label sets ----------------------------------------------------------------------- */

static int istr_cmp(const struct mp_istr *a, const struct mp_istr *b)
{
    if (a == b)
        return 0;
    return mp_str_cmp(mp_istr_str(a), mp_istr_str(b));
}

static int pair_cmp(const void *x, const void *y)
{
    const struct pair *a = x, *b = y;
    return istr_cmp(a->name, b->name);
}

/* One-shot for small sets, streaming beyond HASH_STACK: XXH64's streaming and one-shot
 * forms agree, so this equals Prometheus's Hash() for any size. */
static uint64_t hash_pairs(const struct pair *l, size_t n)
{
    char buf[HASH_STACK];
    size_t len = 0;
    size_t i = 0;
    for (; i < n; i++) {
        size_t nl = l[i].name->len, vl = l[i].value->len;
        if (nl + vl + 2 > sizeof buf - len)
            break;
        memcpy(buf + len, l[i].name->s, nl);
        buf[len + nl] = SEP;
        memcpy(buf + len + nl + 1, l[i].value->s, vl);
        buf[len + nl + 1 + vl] = SEP;
        len += nl + vl + 2;
    }
    if (i == n)
        return XXH64(buf, len, 0);
    XXH64_state_t st;
    XXH64_reset(&st, 0);
    XXH64_update(&st, buf, len);
    static const char sep = SEP;
    for (; i < n; i++) {
        XXH64_update(&st, l[i].name->s, l[i].name->len);
        XXH64_update(&st, &sep, 1);
        XXH64_update(&st, l[i].value->s, l[i].value->len);
        XXH64_update(&st, &sep, 1);
    }
    return XXH64_digest(&st);
}

static void release_pairs(struct pair *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mp_intern_release(l[i].name);
        mp_intern_release(l[i].value);
    }
}

static int alloc_set(size_t n, struct mp_labels **out, struct mp_err *err)
{
    size_t sz;
    if (n > UINT32_MAX || __builtin_mul_overflow(n, sizeof(struct pair), &sz) ||
        __builtin_add_overflow(sz, sizeof(struct mp_labels), &sz))
        return mp_err_set(err, MP_EINVAL, "label set of %zu labels is too large", n);
    struct mp_labels *ls = mp_malloc(sz);
    if (!ls)
        return mp_err_set(err, MP_ENOMEM, "label set of %zu labels", n);
    atomic_init(&ls->refs, 1);
    ls->n = (uint32_t)n;
    *out = ls;
    return 0;
}

static int intern_or_fail(struct mp_str s, const struct mp_istr **out, struct mp_err *err)
{
    int rc = mp_intern_acquire(s, out);
    if (rc == MP_EINVAL)
        return mp_err_set(err, rc, "label string of %zu bytes is too long", s.len);
    if (rc)
        return mp_err_set(err, rc, "interning a label string of %zu bytes", s.len);
    return 0;
}

int mp_labels_create(const struct mp_label *in, size_t n, struct mp_labels **out,
                     struct mp_err *err)
{
    if (n == 0) {
        *out = &empty_set;
        return 0;
    }
    struct mp_labels *ls = NULL;
    int rc = alloc_set(n, &ls, err);
    if (rc)
        return rc;
    size_t done = 0;
    for (; done < n; done++) {
        rc = intern_or_fail(in[done].name, &ls->l[done].name, err);
        if (rc)
            goto fail;
        rc = intern_or_fail(in[done].value, &ls->l[done].value, err);
        if (rc) {
            mp_intern_release(ls->l[done].name);
            goto fail;
        }
    }
    /* Scrapes mostly deliver sorted labels: check before paying for qsort. */
    bool sorted = true;
    for (size_t i = 1; i < n && sorted; i++)
        sorted = istr_cmp(ls->l[i - 1].name, ls->l[i].name) < 0;
    if (!sorted)
        qsort(ls->l, n, sizeof ls->l[0], pair_cmp);
    for (size_t i = 1; i < n; i++) {
        if (ls->l[i - 1].name == ls->l[i].name) {
            rc = mp_err_set(err, MP_EINVAL, "duplicate label name \"%s\"",
                            ls->l[i].name->s);
            goto fail;
        }
    }
    ls->hash = hash_pairs(ls->l, n);
    *out = ls;
    return 0;
fail:
    release_pairs(ls->l, done);
    mp_free(ls);
    return rc;
}

int mp_labels_create_interned(const struct mp_istr *const *pairs, size_t n,
                              struct mp_labels **out, struct mp_err *err)
{
    if (n == 0) {
        *out = &empty_set;
        return 0;
    }
    struct mp_labels *ls = NULL;
    int rc = alloc_set(n, &ls, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        ls->l[i].name = mp_intern_dup(pairs[2 * i]);
        ls->l[i].value = mp_intern_dup(pairs[2 * i + 1]);
    }
    ls->hash = hash_pairs(ls->l, n);
    *out = ls;
    return 0;
}

struct mp_labels *mp_labels_empty(void)
{
    return &empty_set;
}

struct mp_labels *mp_labels_acquire(const struct mp_labels *cls)
{
    struct mp_labels *ls = (struct mp_labels *)cls;
    /* relaxed: the caller already holds a reference, so the set is published to it */
    uint32_t r = atomic_load_explicit(&ls->refs, memory_order_relaxed);
    while (r != MP_ISTR_IMMORTAL &&
           !atomic_compare_exchange_weak_explicit(&ls->refs, &r, r + 1, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
    return ls;
}

void mp_labels_release(struct mp_labels *ls)
{
    if (!ls)
        return;
    uint32_t r = atomic_load_explicit(&ls->refs, memory_order_relaxed);
    for (;;) {
        if (r == MP_ISTR_IMMORTAL)
            return;
        /* acq_rel: our reads happen before the free; the last holder sees all of them */
        if (atomic_compare_exchange_weak_explicit(&ls->refs, &r, r - 1, memory_order_acq_rel,
                                                  memory_order_relaxed))
            break;
    }
    if (r != 1)
        return;
    release_pairs(ls->l, ls->n);
    mp_free(ls);
}

size_t mp_labels_count(const struct mp_labels *ls)
{
    return ls->n;
}

struct mp_label mp_labels_at(const struct mp_labels *ls, size_t i)
{
    return (struct mp_label){mp_istr_str(ls->l[i].name), mp_istr_str(ls->l[i].value)};
}

const struct mp_istr *mp_labels_name_at(const struct mp_labels *ls, size_t i)
{
    return ls->l[i].name;
}

const struct mp_istr *mp_labels_value_at(const struct mp_labels *ls, size_t i)
{
    return ls->l[i].value;
}

/* Index of name in ls, or -1. */
static ptrdiff_t find(const struct mp_labels *ls, struct mp_str name)
{
    size_t lo = 0, hi = ls->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = mp_str_cmp(mp_istr_str(ls->l[mid].name), name);
        if (c == 0)
            return (ptrdiff_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

struct mp_str mp_labels_get(const struct mp_labels *ls, struct mp_str name)
{
    ptrdiff_t i = find(ls, name);
    return i < 0 ? MP_STR_LIT("") : mp_istr_str(ls->l[i].value);
}

bool mp_labels_has(const struct mp_labels *ls, struct mp_str name)
{
    return find(ls, name) >= 0;
}

struct mp_str mp_labels_metric_name(const struct mp_labels *ls)
{
    /* "__name__" sorts before every name that starts with a letter, so look at the front */
    if (ls->n && mp_str_eq(mp_istr_str(ls->l[0].name), MP_STR_LIT(MP_LABEL_METRIC_NAME)))
        return mp_istr_str(ls->l[0].value);
    return mp_labels_get(ls, MP_STR_LIT(MP_LABEL_METRIC_NAME));
}

uint64_t mp_labels_hash(const struct mp_labels *ls)
{
    return ls->hash;
}

static bool name_in(const struct mp_istr *name, const struct mp_str *names, size_t n)
{
    struct mp_str s = mp_istr_str(name);
    for (size_t i = 0; i < n; i++)
        if (mp_str_eq(s, names[i]))
            return true;
    return false;
}

/* Hashes the labels for which name_in(...) == want, skipping __name__ if skip_name. */
static uint64_t hash_subset(const struct mp_labels *ls, const struct mp_str *names, size_t n,
                            bool want, bool skip_name)
{
    XXH64_state_t st;
    XXH64_reset(&st, 0);
    static const char sep = SEP;
    for (size_t i = 0; i < ls->n; i++) {
        const struct pair *p = &ls->l[i];
        if (name_in(p->name, names, n) != want)
            continue;
        if (skip_name &&
            mp_str_eq(mp_istr_str(p->name), MP_STR_LIT(MP_LABEL_METRIC_NAME)))
            continue;
        XXH64_update(&st, p->name->s, p->name->len);
        XXH64_update(&st, &sep, 1);
        XXH64_update(&st, p->value->s, p->value->len);
        XXH64_update(&st, &sep, 1);
    }
    return XXH64_digest(&st);
}

uint64_t mp_labels_hash_for(const struct mp_labels *ls, const struct mp_str *names, size_t n)
{
    return hash_subset(ls, names, n, true, false);
}

uint64_t mp_labels_hash_without(const struct mp_labels *ls, const struct mp_str *names,
                                size_t n)
{
    return hash_subset(ls, names, n, false, true);
}

int mp_labels_compare(const struct mp_labels *a, const struct mp_labels *b)
{
    size_t n = a->n < b->n ? a->n : b->n;
    for (size_t i = 0; i < n; i++) {
        int c = istr_cmp(a->l[i].name, b->l[i].name);
        if (c)
            return c < 0 ? -1 : 1;
        c = istr_cmp(a->l[i].value, b->l[i].value);
        if (c)
            return c < 0 ? -1 : 1;
    }
    return a->n < b->n ? -1 : a->n > b->n;
}

bool mp_labels_equal(const struct mp_labels *a, const struct mp_labels *b)
{
    if (a == b)
        return true;
    if (a->n != b->n || a->hash != b->hash)
        return false;
    /* both sets hold their strings, so equal content means the same interned pointer */
    for (size_t i = 0; i < a->n; i++)
        if (a->l[i].name != b->l[i].name || a->l[i].value != b->l[i].value)
            return false;
    return true;
}

int mp_labels_format(const struct mp_labels *ls, struct mp_buf *out)
{
    int rc = mp_buf_append(out, "{", 1);
    for (size_t i = 0; rc == 0 && i < ls->n; i++) {
        struct mp_str name = mp_istr_str(ls->l[i].name);
        if (i > 0)
            rc = mp_buf_append(out, ", ", 2);
        if (rc == 0)
            rc = mp_label_name_is_valid(name) ? mp_buf_append(out, name.ptr, name.len)
                                              : mp_label_quote(out, name);
        if (rc == 0)
            rc = mp_buf_append(out, "=", 1);
        if (rc == 0)
            rc = mp_label_quote(out, mp_istr_str(ls->l[i].value));
    }
    return rc ? rc : mp_buf_append(out, "}", 1);
}

/* ---- Builder -------------------------------------------------------------------------- */

/* Copies of set() arguments live in blocks that never move, so every slice handed out stays
 * valid until reset; reset rewinds the blocks instead of freeing them. */
struct block {
    struct block *next;
    size_t cap, used;
    char data[];
};

/* A label in the builder. iname/ivalue are set when the string is borrowed from the base (so
 * labels() can dup it without hashing); otherwise the slice points into the block arena. */
struct bent {
    struct mp_str name, value;
    const struct mp_istr *iname, *ivalue;
};

struct mp_labels_builder {
    struct mp_labels *base;     /* held reference, NULL if none */
    struct bent *ents;          /* sorted by name, unique, values non-empty */
    size_t n, cap;
    struct bent *snap;          /* range() snapshot, reused */
    size_t snap_cap;
    struct block *blocks, *cur; /* arena; blocks before cur are full */
    size_t arena_bytes;         /* copied since reset, capped by BUILDER_MAX_BYTES */
    bool dirty;                 /* differs from base */
};

struct mp_labels_builder *mp_labels_builder_create(void)
{
    struct mp_labels_builder *b = mp_xcalloc(1, sizeof *b);
    return b;
}

void mp_labels_builder_destroy(struct mp_labels_builder *b)
{
    if (!b)
        return;
    mp_labels_release(b->base);
    for (struct block *k = b->blocks, *next; k; k = next) {
        next = k->next;
        mp_free(k);
    }
    mp_free(b->ents);
    mp_free(b->snap);
    mp_free(b);
}

static int grow_ents(struct bent **arr, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need)
        ncap *= 2;
    struct bent *p = mp_realloc(*arr, ncap * sizeof *p);
    if (!p)
        return MP_ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

void mp_labels_builder_reset(struct mp_labels_builder *b, const struct mp_labels *base)
{
    struct mp_labels *old = b->base;
    b->base = base ? mp_labels_acquire(base) : NULL;
    mp_labels_release(old);
    for (struct block *k = b->blocks; k; k = k->next)
        k->used = 0;
    b->cur = b->blocks;
    b->arena_bytes = 0;
    b->n = 0;
    b->dirty = false;
    if (!base)
        return;
    /* reset has no error path (a partially copied base would silently lose labels), so grow
     * with mp_xrealloc: the size is bounded by a set that already exists. */
    if (base->n > b->cap) {
        struct bent *p = mp_xrealloc(b->ents, base->n * sizeof *p);
        b->ents = p;
        b->cap = base->n;
    }
    for (size_t i = 0; i < base->n; i++) {
        const struct pair *p = &base->l[i];
        if (p->value->len == 0) {
            b->dirty = true; /* Prometheus Builder.Reset deletes empty base labels */
            continue;
        }
        b->ents[b->n++] = (struct bent){mp_istr_str(p->name), mp_istr_str(p->value), p->name,
                                        p->value};
    }
}

/* Copies s into the arena. */
static int arena_copy(struct mp_labels_builder *b, struct mp_str s, struct mp_str *out)
{
    if (s.len == 0) {
        *out = MP_STR_LIT("");
        return 0;
    }
    if (s.len > BUILDER_MAX_BYTES - b->arena_bytes)
        return MP_ELIMIT;
    struct block *k = b->cur;
    while (k && k->cap - k->used < s.len + 1)
        k = k->next; /* after a reset every later block is empty; skip the ones too small */
    if (!k) {
        size_t cap = s.len + 1 > ARENA_BLOCK ? s.len + 1 : ARENA_BLOCK;
        k = mp_malloc(sizeof *k + cap);
        if (!k)
            return MP_ENOMEM;
        k->cap = cap;
        k->used = 0;
        /* insert after cur so that blocks before cur stay the "full" ones */
        if (b->cur) {
            k->next = b->cur->next;
            b->cur->next = k;
        } else {
            k->next = b->blocks;
            b->blocks = k;
        }
    }
    b->cur = k;
    char *dst = k->data + k->used;
    memcpy(dst, s.ptr, s.len);
    dst[s.len] = '\0';
    k->used += s.len + 1;
    b->arena_bytes += s.len;
    *out = (struct mp_str){dst, s.len};
    return 0;
}

/* Position of name in b->ents, or where it would go; *found says which. */
static size_t bfind(const struct mp_labels_builder *b, struct mp_str name, bool *found)
{
    size_t lo = 0, hi = b->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = mp_str_cmp(b->ents[mid].name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

/* set, set_borrowed and set_interned: copy says whether the slices go to the arena; iname and
 * ivalue, when not NULL, are the interned strings of name and value. */
static int set_entry(struct mp_labels_builder *b, struct mp_str name, struct mp_str value,
                     const struct mp_istr *iname, const struct mp_istr *ivalue, bool copy)
{
    if (value.len == 0) {
        mp_labels_builder_del(b, name); /* empty labels are the same as missing labels */
        return 0;
    }
    if (name.len > MP_INTERN_MAX_LEN || value.len > MP_INTERN_MAX_LEN)
        return MP_EINVAL;
    bool found;
    size_t i = bfind(b, name, &found);
    if (found && mp_str_eq(b->ents[i].value, value))
        return 0;
    int rc = found ? 0 : grow_ents(&b->ents, &b->cap, b->n + 1);
    struct mp_str nv = value, nn = found ? b->ents[i].name : name;
    if (rc == 0 && !found && copy)
        rc = arena_copy(b, name, &nn);
    if (rc == 0 && copy)
        rc = arena_copy(b, value, &nv);
    if (rc)
        return rc;
    if (found) {
        b->ents[i].value = nv;
        b->ents[i].ivalue = ivalue;
    } else {
        memmove(&b->ents[i + 1], &b->ents[i], (b->n - i) * sizeof b->ents[0]);
        b->ents[i] = (struct bent){nn, nv, iname, ivalue};
        b->n++;
    }
    b->dirty = true;
    return 0;
}

int mp_labels_builder_set(struct mp_labels_builder *b, struct mp_str name, struct mp_str value)
{
    return set_entry(b, name, value, NULL, NULL, true);
}

int mp_labels_builder_set_borrowed(struct mp_labels_builder *b, struct mp_str name,
                                   struct mp_str value)
{
    return set_entry(b, name, value, NULL, NULL, false);
}

int mp_labels_builder_set_interned(struct mp_labels_builder *b, const struct mp_labels *ls,
                                   size_t i)
{
    const struct pair *p = &ls->l[i];
    return set_entry(b, mp_istr_str(p->name), mp_istr_str(p->value), p->name, p->value, false);
}

void mp_labels_builder_del(struct mp_labels_builder *b, struct mp_str name)
{
    bool found;
    size_t i = bfind(b, name, &found);
    if (!found)
        return;
    memmove(&b->ents[i], &b->ents[i + 1], (b->n - i - 1) * sizeof b->ents[0]);
    b->n--;
    b->dirty = true;
}

struct mp_str mp_labels_builder_get(const struct mp_labels_builder *b, struct mp_str name)
{
    bool found;
    size_t i = bfind(b, name, &found);
    return found ? b->ents[i].value : MP_STR_LIT("");
}

size_t mp_labels_builder_count(const struct mp_labels_builder *b)
{
    return b->n;
}

void mp_labels_builder_range(struct mp_labels_builder *b,
                             bool (*fn)(void *ctx, struct mp_str name, struct mp_str value),
                             void *ctx)
{
    /* Snapshot so fn may set/del: the slices stay valid because the arena never moves. The
     * snapshot is no bigger than ents, which we already managed to allocate. */
    if (b->n > b->snap_cap) {
        b->snap = mp_xrealloc(b->snap, b->n * sizeof *b->snap);
        b->snap_cap = b->n;
    }
    size_t n = b->n;
    if (n)
        memcpy(b->snap, b->ents, n * sizeof *b->snap);
    struct bent *snap = b->snap;
    b->snap = NULL; /* a nested range gets its own buffer */
    size_t snap_cap = b->snap_cap;
    b->snap_cap = 0;
    for (size_t i = 0; i < n; i++)
        if (!fn(ctx, snap[i].name, snap[i].value))
            break;
    if (b->snap_cap < snap_cap) {
        mp_free(b->snap);
        b->snap = snap;
        b->snap_cap = snap_cap;
    } else {
        mp_free(snap);
    }
}

void mp_labels_builder_filter(struct mp_labels_builder *b,
                              bool (*keep)(void *ctx, struct mp_str name, struct mp_str value),
                              void *ctx)
{
    size_t w = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (keep(ctx, b->ents[i].name, b->ents[i].value))
            b->ents[w++] = b->ents[i];
    }
    if (w != b->n)
        b->dirty = true;
    b->n = w;
}

int mp_labels_builder_labels(struct mp_labels_builder *b, struct mp_labels **out,
                             struct mp_err *err)
{
    if (!b->dirty) {
        *out = b->base ? mp_labels_acquire(b->base) : &empty_set;
        return 0;
    }
    if (b->n == 0) {
        *out = &empty_set;
        return 0;
    }
    struct mp_labels *ls = NULL;
    int rc = alloc_set(b->n, &ls, err);
    if (rc)
        return rc;
    size_t done = 0;
    for (; done < b->n; done++) {
        const struct bent *e = &b->ents[done];
        if (e->iname)
            ls->l[done].name = mp_intern_dup(e->iname);
        else if ((rc = intern_or_fail(e->name, &ls->l[done].name, err)) != 0)
            goto fail;
        if (e->ivalue) {
            ls->l[done].value = mp_intern_dup(e->ivalue);
        } else if ((rc = intern_or_fail(e->value, &ls->l[done].value, err)) != 0) {
            mp_intern_release(ls->l[done].name);
            goto fail;
        }
    }
    ls->hash = hash_pairs(ls->l, b->n);
    *out = ls;
    return 0;
fail:
    release_pairs(ls->l, done);
    mp_free(ls);
    return rc;
}
