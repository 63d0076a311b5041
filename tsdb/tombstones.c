/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/tombstones.c: per-series deleted intervals and the block tombstones file
 * (tombstones.h; tsdb.md 4.5). The set is an array of (ref, intervals) sorted by ref under a
 * rwlock: tombstones are few (admin deletions), lookups are binary searches, and the sorted
 * order is what the file and the iterator want. Worked example (test_tombstones.c):
 *
 *   ref 1 [0, 100] -> 0130ba30 01 | 01 00 c801 | CRC32C(01 00 c8 01) */
#include "tsdb/tombstones.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "tsdb/bytes.h"
#include "tsdb/fileutil.h"
#include "tsdb/wal.h"

/* ---- intervals ------------------------------------------------------------------------- */

void tsdb_intervals_fini(struct tsdb_intervals *in)
{
    mp_free(in->v);
    in->v = NULL;
    in->n = in->cap = 0;
}

/* Makes room for need elements of size sz in *arr (capacity *cap, doubling). */
static int grow(void **arr, size_t *cap, size_t need, size_t sz)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 4, bytes;
    if (c < need)
        c = need;
    if (__builtin_mul_overflow(c, sz, &bytes))
        return MP_ENOMEM;
    void *p = mp_realloc(*arr, bytes);
    if (!p)
        return MP_ENOMEM;
    *arr = p;
    *cap = c;
    return 0;
}

static int reserve(struct tsdb_intervals *in, size_t n)
{
    void *v = in->v;
    int rc = grow(&v, &in->cap, n, sizeof *in->v);
    in->v = v;
    return rc;
}

/* First index in [lo, n) whose interval satisfies pred, by binary search (pred monotone). */
#define LOWER_BOUND(in, lo, pred)                                                                  \
    ({                                                                                             \
        size_t l_ = (lo), h_ = (in)->n;                                                            \
        while (l_ < h_) {                                                                          \
            size_t m_ = l_ + (h_ - l_) / 2;                                                        \
            const struct tsdb_interval *x = &(in)->v[m_];                                          \
            if (pred)                                                                              \
                h_ = m_;                                                                           \
            else                                                                                   \
                l_ = m_ + 1;                                                                       \
        }                                                                                          \
        l_;                                                                                        \
    })

int tsdb_intervals_add(struct tsdb_intervals *in, struct tsdb_interval iv)
{
    if (iv.mint > iv.maxt)
        return MP_EINVAL;
    if (reserve(in, in->n + 1) != 0)
        return MP_ENOMEM;
    /* lo: first interval that reaches iv or touches it from the left (maxt >= mint - 1);
     * the guards avoid the overflow of mint - 1 / maxt + 1 at the int64 ends */
    size_t lo = iv.mint == INT64_MIN ? 0 : LOWER_BOUND(in, 0, x->maxt >= iv.mint - 1);
    /* hi: first interval after lo that starts beyond iv and does not touch it */
    size_t hi = iv.maxt == INT64_MAX ? in->n : LOWER_BOUND(in, lo, x->mint > iv.maxt + 1);
    if (lo == hi) { /* nothing to merge with: insert at lo */
        memmove(in->v + lo + 1, in->v + lo, (in->n - lo) * sizeof *in->v);
        in->v[lo] = iv;
        in->n++;
        return 0;
    }
    struct tsdb_interval merged = {in->v[lo].mint < iv.mint ? in->v[lo].mint : iv.mint,
                                   in->v[hi - 1].maxt > iv.maxt ? in->v[hi - 1].maxt : iv.maxt};
    in->v[lo] = merged;
    memmove(in->v + lo + 1, in->v + hi, (in->n - hi) * sizeof *in->v);
    in->n -= hi - lo - 1;
    return 0;
}

bool tsdb_intervals_contains(const struct tsdb_intervals *in, int64_t t)
{
    size_t i = LOWER_BOUND(in, 0, x->maxt >= t);
    return i < in->n && in->v[i].mint <= t;
}

void tsdb_intervals_truncate_before(struct tsdb_intervals *in, int64_t before)
{
    size_t i = LOWER_BOUND(in, 0, x->maxt >= before);
    memmove(in->v, in->v + i, (in->n - i) * sizeof *in->v);
    in->n -= i;
}

#undef LOWER_BOUND

static int intervals_copy(struct tsdb_intervals *dst, const struct tsdb_intervals *src)
{
    dst->n = 0;
    if (reserve(dst, src->n) != 0)
        return MP_ENOMEM;
    if (src->n)
        memcpy(dst->v, src->v, src->n * sizeof *src->v);
    dst->n = src->n;
    return 0;
}

/* ---- the set ------------------------------------------------------------------------- */

struct entry {
    uint64_t ref;
    struct tsdb_intervals iv;
};

struct tsdb_tombstones {
    pthread_rwlock_t mu;
    struct entry *e; /* sorted by ref, every iv non-empty */
    size_t n, cap;
};

struct tsdb_tombstones *tsdb_tombstones_create(void)
{
    struct tsdb_tombstones *t = mp_xcalloc(1, sizeof *t);
    pthread_rwlock_init(&t->mu, NULL);
    return t;
}

void tsdb_tombstones_destroy(struct tsdb_tombstones *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        tsdb_intervals_fini(&t->e[i].iv);
    mp_free(t->e);
    pthread_rwlock_destroy(&t->mu);
    mp_free(t);
}

/* First entry with ref >= r. */
static size_t find_locked(const struct tsdb_tombstones *t, uint64_t r)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t m = lo + (hi - lo) / 2;
        if (t->e[m].ref >= r)
            hi = m;
        else
            lo = m + 1;
    }
    return lo;
}

static const struct entry *lookup_locked(const struct tsdb_tombstones *t, uint64_t ref)
{
    size_t i = find_locked(t, ref);
    return i < t->n && t->e[i].ref == ref ? &t->e[i] : NULL;
}

static int add_locked(struct tsdb_tombstones *t, uint64_t ref, struct tsdb_interval iv)
{
    /* appending in ref order (file decoding, compaction) skips the search */
    size_t i = t->n > 0 && t->e[t->n - 1].ref < ref ? t->n : find_locked(t, ref);
    if (i < t->n && t->e[i].ref == ref)
        return tsdb_intervals_add(&t->e[i].iv, iv);
    void *e = t->e;
    int grc = grow(&e, &t->cap, t->n + 1, sizeof *t->e);
    t->e = e;
    if (grc)
        return grc;
    struct entry ne = {ref, {NULL, 0, 0}};
    int rc = tsdb_intervals_add(&ne.iv, iv);
    if (rc)
        return rc;
    memmove(t->e + i + 1, t->e + i, (t->n - i) * sizeof *t->e);
    t->e[i] = ne;
    t->n++;
    return 0;
}

int tsdb_tombstones_add(struct tsdb_tombstones *t, uint64_t ref, struct tsdb_interval iv)
{
    pthread_rwlock_wrlock(&t->mu);
    int rc = add_locked(t, ref, iv);
    pthread_rwlock_unlock(&t->mu);
    return rc;
}

int tsdb_tombstones_get(const struct tsdb_tombstones *t, uint64_t ref, struct tsdb_intervals *out)
{
    struct tsdb_tombstones *mt = (struct tsdb_tombstones *)t; /* the lock is not content */
    pthread_rwlock_rdlock(&mt->mu);
    const struct entry *e = lookup_locked(t, ref);
    int rc = e ? intervals_copy(out, &e->iv) : MP_ENOTFOUND;
    pthread_rwlock_unlock(&mt->mu);
    if (rc == MP_ENOTFOUND)
        out->n = 0;
    return rc;
}

bool tsdb_tombstones_is_deleted(const struct tsdb_tombstones *t, uint64_t ref, int64_t ts)
{
    struct tsdb_tombstones *mt = (struct tsdb_tombstones *)t;
    pthread_rwlock_rdlock(&mt->mu);
    const struct entry *e = lookup_locked(t, ref);
    bool del = e && tsdb_intervals_contains(&e->iv, ts);
    pthread_rwlock_unlock(&mt->mu);
    return del;
}

bool tsdb_tombstones_is_empty(const struct tsdb_tombstones *t)
{
    struct tsdb_tombstones *mt = (struct tsdb_tombstones *)t;
    pthread_rwlock_rdlock(&mt->mu);
    bool empty = t->n == 0;
    pthread_rwlock_unlock(&mt->mu);
    return empty;
}

uint64_t tsdb_tombstones_total(const struct tsdb_tombstones *t)
{
    struct tsdb_tombstones *mt = (struct tsdb_tombstones *)t;
    pthread_rwlock_rdlock(&mt->mu);
    uint64_t total = 0;
    for (size_t i = 0; i < t->n; i++)
        total += t->e[i].iv.n;
    pthread_rwlock_unlock(&mt->mu);
    return total;
}

size_t tsdb_tombstones_num_series(const struct tsdb_tombstones *t)
{
    struct tsdb_tombstones *mt = (struct tsdb_tombstones *)t;
    pthread_rwlock_rdlock(&mt->mu);
    size_t n = t->n;
    pthread_rwlock_unlock(&mt->mu);
    return n;
}

/* Removes the entries whose interval list became empty, keeping the order. */
static void compact_locked(struct tsdb_tombstones *t)
{
    size_t w = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (t->e[i].iv.n == 0)
            tsdb_intervals_fini(&t->e[i].iv);
        else
            t->e[w++] = t->e[i];
    }
    t->n = w;
}

void tsdb_tombstones_truncate_before(struct tsdb_tombstones *t, int64_t before)
{
    pthread_rwlock_wrlock(&t->mu);
    for (size_t i = 0; i < t->n; i++)
        tsdb_intervals_truncate_before(&t->e[i].iv, before);
    compact_locked(t);
    pthread_rwlock_unlock(&t->mu);
}

void tsdb_tombstones_delete_series(struct tsdb_tombstones *t, const uint64_t *refs, size_t n)
{
    pthread_rwlock_wrlock(&t->mu);
    for (size_t k = 0; k < n; k++) {
        size_t i = find_locked(t, refs[k]);
        if (i < t->n && t->e[i].ref == refs[k])
            t->e[i].iv.n = 0;
    }
    compact_locked(t);
    pthread_rwlock_unlock(&t->mu);
}

void tsdb_tombstones_iter_init(struct tsdb_tombstones_iter *it, const struct tsdb_tombstones *t)
{
    it->t = t;
    it->last = 0;
    it->started = false;
}

int tsdb_tombstones_iter_next(struct tsdb_tombstones_iter *it, uint64_t *ref,
                              struct tsdb_intervals *out)
{
    if (it->started && it->last == UINT64_MAX)
        return MP_EEOF;
    struct tsdb_tombstones *mt = (struct tsdb_tombstones *)it->t;
    pthread_rwlock_rdlock(&mt->mu);
    size_t i = find_locked(mt, it->started ? it->last + 1 : 0);
    int rc = MP_EEOF;
    if (i < mt->n) {
        rc = intervals_copy(out, &mt->e[i].iv);
        if (rc == 0) {
            *ref = mt->e[i].ref;
            it->last = *ref;
            it->started = true;
        }
    }
    pthread_rwlock_unlock(&mt->mu);
    return rc;
}

/* ---- file ---------------------------------------------------------------------------- */

#define HEADER_SIZE 5u /* magic + version */
#define CRC_SIZE 4u

int tsdb_tombstones_encode(const struct tsdb_tombstones *t, struct mp_buf *out)
{
    struct tsdb_tombstones *mt = (struct tsdb_tombstones *)t;
    size_t start = out->len;
    uint8_t hdr[HEADER_SIZE];
    tsdb_put_be32(hdr, TSDB_TOMBSTONES_MAGIC);
    hdr[4] = TSDB_TOMBSTONES_VERSION;
    int rc = mp_buf_append(out, hdr, sizeof hdr);
    uint32_t crc = 0;
    pthread_rwlock_rdlock(&mt->mu);
    for (size_t i = 0; i < t->n && rc == 0; i++) {
        for (size_t k = 0; k < t->e[i].iv.n && rc == 0; k++) {
            uint8_t rec[30];
            size_t n = tsdb_put_uvarint(rec, t->e[i].ref);
            n += tsdb_put_varint(rec + n, t->e[i].iv.v[k].mint);
            n += tsdb_put_varint(rec + n, t->e[i].iv.v[k].maxt);
            crc = tsdb_crc32c(crc, rec, n);
            rc = mp_buf_append(out, rec, n);
        }
    }
    pthread_rwlock_unlock(&mt->mu);
    uint8_t c[CRC_SIZE];
    tsdb_put_be32(c, crc);
    if (rc == 0)
        rc = mp_buf_append(out, c, sizeof c);
    if (rc)
        out->len = start;
    return rc;
}

/* Cursor over [cur, end) for the entries; every read stays inside. */
struct dec {
    const uint8_t *base, *cur, *end;
    const char *why; /* first failure, NULL while fine */
    size_t at;
};

/* Go binary.Uvarint: at most 10 bytes, the 10th at most 1. */
static uint64_t dec_uvarint(struct dec *d)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 10; i++) {
        if (d->cur >= d->end) {
            d->why = "truncated varint";
            return 0;
        }
        uint8_t b = *d->cur++;
        if (i == 9 && b > 1) {
            d->why = "varint overflows 64 bits";
            return 0;
        }
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (b < 0x80)
            return v;
    }
    d->why = "varint overflows 64 bits";
    return 0;
}

struct stone {
    uint64_t ref;
    struct tsdb_interval iv;
};

static int stone_cmp(const void *a, const void *b)
{
    const struct stone *x = a, *y = b;
    if (x->ref != y->ref)
        return x->ref < y->ref ? -1 : 1;
    return x->iv.mint < y->iv.mint ? -1 : x->iv.mint > y->iv.mint;
}

int tsdb_tombstones_decode(const uint8_t *data, size_t len, const char *what,
                           struct tsdb_tombstones **out, struct mp_err *err)
{
    *out = NULL;
    if (len < HEADER_SIZE + CRC_SIZE)
        return mp_err_set(err, MP_EPARSE, "%s: %zu bytes, shorter than header and CRC", what, len);
    if (tsdb_get_be32(data) != TSDB_TOMBSTONES_MAGIC)
        return mp_err_set(err, MP_EPARSE, "%s: byte 0: invalid magic number %08" PRIx32, what,
                          tsdb_get_be32(data));
    const uint8_t *body = data + HEADER_SIZE, *end = data + len - CRC_SIZE;
    uint32_t want = tsdb_get_be32(end), got = tsdb_crc32c(0, body, (size_t)(end - body));
    if (want != got)
        return mp_err_set(err, MP_EPARSE,
                          "%s: checksum mismatch (stored %08" PRIx32 ", computed %08" PRIx32 ")",
                          what, want, got);
    if (data[4] != TSDB_TOMBSTONES_VERSION)
        return mp_err_set(err, MP_EPARSE, "%s: byte 4: unsupported version %u", what, data[4]);
    /* Entries: at least 3 bytes each. Collect, then add in (ref, mint) order so a file in
     * any order costs n log n, not a quadratic series of inserts. */
    size_t cap = (size_t)(end - body) / 3, n = 0;
    struct stone *s = cap ? mp_malloc(cap * sizeof *s) : NULL;
    if (cap && !s)
        return mp_err_set(err, MP_ENOMEM, "%s: %zu entries", what, cap);
    struct dec d = {data, body, end, NULL, 0};
    bool sorted = true;
    while (d.cur < d.end && !d.why) {
        d.at = (size_t)(d.cur - data);
        struct stone st;
        st.ref = dec_uvarint(&d);
        uint64_t a = dec_uvarint(&d), b = dec_uvarint(&d);
        st.iv.mint = (int64_t)((a >> 1) ^ (0 - (a & 1)));
        st.iv.maxt = (int64_t)((b >> 1) ^ (0 - (b & 1)));
        if (!d.why && st.iv.mint > st.iv.maxt)
            d.why = "interval with mint > maxt";
        if (d.why)
            break;
        if (n > 0 && stone_cmp(&s[n - 1], &st) > 0)
            sorted = false;
        s[n++] = st;
    }
    if (d.why) {
        mp_free(s);
        return mp_err_set(err, MP_EPARSE, "%s: entry at byte %zu: %s", what, d.at, d.why);
    }
    if (!sorted)
        qsort(s, n, sizeof *s, stone_cmp);
    struct tsdb_tombstones *t = tsdb_tombstones_create();
    for (size_t i = 0; i < n; i++) {
        if (add_locked(t, s[i].ref, s[i].iv) != 0) {
            mp_free(s);
            tsdb_tombstones_destroy(t);
            return mp_err_set(err, MP_ENOMEM, "%s: %zu entries", what, n);
        }
    }
    mp_free(s);
    *out = t;
    return 0;
}

int tsdb_tombstones_write(const char *dir, const struct tsdb_tombstones *t, uint64_t *size,
                          struct mp_err *err)
{
    struct mp_buf b;
    mp_buf_init(&b, 0);
    int rc = tsdb_tombstones_encode(t, &b);
    if (rc)
        rc = mp_err_set(err, rc, "%s/%s: encode: %s", dir, TSDB_TOMBSTONES_FILENAME,
                        mp_strerror(rc));
    else
        rc = tsdb_file_write_atomic(dir, TSDB_TOMBSTONES_FILENAME, b.data, b.len, err);
    if (rc == 0 && size)
        *size = b.len;
    mp_buf_fini(&b);
    return rc;
}

int tsdb_tombstones_read(const char *dir, struct tsdb_tombstones **out, uint64_t *size,
                         struct mp_err *err)
{
    *out = NULL;
    if (size)
        *size = 0;
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, TSDB_TOMBSTONES_FILENAME) >= sizeof path)
        return mp_err_set(err, MP_EINVAL, "path too long: %s", dir);
    char *data;
    size_t len;
    struct mp_err local = {0};
    int rc = tsdb_file_read_all(path, TSDB_TOMBSTONES_MAX_BYTES, &data, &len, &local);
    if (rc == MP_ENOTFOUND) {
        *out = tsdb_tombstones_create();
        return 0;
    }
    if (rc)
        return mp_err_set(err, rc, "%s", local.msg);
    rc = tsdb_tombstones_decode((const uint8_t *)data, len, path, out, err);
    mp_free(data);
    if (rc == 0 && size)
        *size = len;
    return rc;
}
