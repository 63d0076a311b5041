/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/querier.c: reading across blocks and the head (tsdb.h "reading"; spec tsdb.md 2.3, 4.7).
 *
 * A querier pins its sources: a reference on every block overlapping its range and the db read
 * lock (no head truncation meanwhile). select resolves the matchers in each source
 * (tsdb_postings_for_matchers), orders each source's series by labels (block refs already are;
 * head refs are sorted) and merges the sources k-way by label set. For each series the chunks of
 * every source are collected, deleted intervals (tombstones) are cut out, and chunks that overlap
 * (the same series in two sources, e.g. a block and the head after a crash) are decoded, merged
 * with duplicates dropped, and re-encoded, so callers always see disjoint chunks in time order. */
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "common/matcher.h"
#include "tsdb/db.h"
#include "tsdb/lcache.h"
#include "tsdb/postings.h"

/* Decompressed chunk frames a block cursor keeps before dropping them between series. */
#define ZCACHE_BUDGET (8u << 20)
/* Re-encoded chunks hold at most this many samples (Prometheus's default target). */
#define REENCODE_SAMPLES 120u
/* Head cursors prefetch the series this many places ahead of the one they read. */
#define HEAD_PREFETCH 8u

struct source {
    struct tsdb_block *b; /* NULL: the head */
    struct tsdb_ireader ir;
    const uint64_t *only; /* head only: just these series (sorted), whatever the matchers */
    size_t nonly;
};

struct tsdb_querier {
    struct tsdb *db;
    bool locked;
    int64_t mint, maxt;
    struct source *src;
    size_t nsrc;
};

struct cursor {
    struct source *src;
    struct tsdb_plist refs;
    const struct tsdb_head_series **hs; /* head cursors: the series of refs, same order */
    size_t pos;
    bool valid;
    bool on;           /* holds the series set's current label set */
    bool no_tomb;      /* the source had no tombstones when the select started */
    bool cache_labels; /* label sets through the label-set cache (lcache.h): queries, not
                        * select_all (compaction reads everything once) */
    uint64_t ref;
    struct mp_labels *ls;
    const struct tsdb_chunk *chunks;
    size_t n;
    struct tsdb_chunk *bchunks; /* block cursors: their chunk array */
    size_t bcap;
    struct tsdb_head_read hr;
    struct tsdb_index_series is;
    struct tsdb_zchunks_cache zc; /* decompressed frames of a compressed block */
    struct tsdb_intervals del;
};

struct tsdb_series_set {
    struct tsdb_querier *q;
    struct cursor *cur;
    size_t ncur;
    bool started;
    const struct mp_labels *ls; /* borrowed from the cursors that are on it */
    struct cursor *sole;        /* the one cursor on it, NULL if several */
    bool taken;                 /* sole's reference went to tsdb_series_set_labels_take */
    struct pending *p;          /* build_chunks' input, reused across series */
    size_t pcap;
    struct tsdb_chunk *chunks;
    size_t n, cap;
    struct mp_buf buf; /* bytes of re-encoded chunks */
    bool *from_buf;    /* chunks[i].data is an offset into buf until fixed up */
    size_t from_buf_cap;
};

/* ---- opening ------------------------------------------------------------------------------- */

int tsdb_querier_open_sources(struct tsdb *db, struct tsdb_block *const *blocks, size_t nblocks,
                              bool with_head, bool lock, int64_t mint_ms, int64_t maxt_ms,
                              struct tsdb_querier **out, struct mp_err *err)
{
    struct tsdb_querier *q = mp_calloc(1, sizeof *q);
    if (!q)
        return mp_err_set(err, MP_ENOMEM, "querier");
    q->src = mp_calloc(nblocks + 1, sizeof *q->src);
    if (!q->src) {
        mp_free(q);
        return mp_err_set(err, MP_ENOMEM, "querier");
    }
    q->db = db;
    q->mint = mint_ms;
    q->maxt = maxt_ms;
    if (lock) {
        pthread_rwlock_rdlock(&db->rw);
        q->locked = true;
    }
    for (size_t i = 0; i < nblocks; i++) {
        struct source *s = &q->src[q->nsrc++];
        s->b = tsdb_block_acquire(blocks[i]);
        if (!lock) /* compaction's and tombstone cleaning's own readers */
            tsdb_block_note_background_read(s->b);
        s->ir = tsdb_index_reader_ireader(s->b->index);
    }
    if (with_head) {
        struct source *s = &q->src[q->nsrc++];
        if (!lock && db->hc)
            tsdb_head_chunks_note_background_read(db->hc);
        tsdb_head_ireader(db->head, &s->ir);
    }
    *out = q;
    return 0;
}

int tsdb_querier_open_head_refs(struct tsdb *db, const uint64_t *refs, size_t n, int64_t mint_ms,
                                int64_t maxt_ms, struct tsdb_querier **out, struct mp_err *err)
{
    int rc = tsdb_querier_open_sources(db, NULL, 0, true, false, mint_ms, maxt_ms, out, err);
    if (!rc) {
        (*out)->src[0].only = refs;
        (*out)->src[0].nonly = n;
    }
    return rc;
}

int tsdb_querier_open(struct tsdb *db, int64_t mint_ms, int64_t maxt_ms, struct tsdb_querier **out,
                      struct mp_err *err)
{
    size_t n;
    struct tsdb_block **all = tsdb_db_blocks(db, &n);
    struct tsdb_block **use = mp_xmalloc((n ? n : 1) * sizeof *use);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        /* block times are half-open [min, max) */
        if (all[i]->meta.min_time <= maxt_ms && all[i]->meta.max_time > mint_ms)
            use[k++] = all[i];
    }
    int rc = tsdb_querier_open_sources(db, use, k, true, true, mint_ms, maxt_ms, out, err);
    for (size_t i = 0; i < n; i++)
        tsdb_block_release(all[i]);
    mp_free(all);
    mp_free(use);
    return rc;
}

void tsdb_querier_close(struct tsdb_querier *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->nsrc; i++)
        tsdb_block_release(q->src[i].b);
    if (q->locked)
        pthread_rwlock_unlock(&q->db->rw);
    mp_free(q->src);
    mp_free(q);
}

/* ---- one source's cursor ----------------------------------------------------------------- */

static struct tsdb_tombstones *source_tomb(const struct tsdb_querier *q, const struct source *s)
{
    return s->b ? s->b->tomb : q->db->head_tomb;
}

static void cursor_fini(struct cursor *c)
{
    tsdb_plist_fini(&c->refs);
    mp_free(c->hs);
    mp_labels_release(c->ls);
    mp_free(c->bchunks);
    tsdb_head_read_fini(&c->hr);
    tsdb_index_series_fini(&c->is);
    tsdb_zchunks_cache_fini(&c->zc);
    tsdb_intervals_fini(&c->del);
}

/* Loads block series ref into c. 1: loaded; 0: nothing in range; negative: error. */
static int cursor_load_block(struct tsdb_querier *q, struct cursor *c, uint64_t ref,
                             struct mp_err *err)
{
    struct tsdb_block *b = c->src->b;
    int rc = tsdb_index_reader_series(b->index, ref, &c->is, err);
    if (rc)
        return rc;
    size_t k = 0;
    for (size_t i = 0; i < c->is.nchunks; i++) {
        const struct tsdb_index_chunk_meta *m = &c->is.chunks[i];
        if (m->maxt_ms < q->mint || m->mint_ms > q->maxt)
            continue;
        if (k == c->bcap) {
            c->bcap = c->bcap ? c->bcap * 2 : 16;
            c->bchunks = mp_xrealloc(c->bchunks, c->bcap * sizeof *c->bchunks);
        }
        struct tsdb_chunk *ch = &c->bchunks[k];
        rc = tsdb_block_chunk(b, &c->zc, m->ref, &ch->encoding, &ch->data, &ch->len, err);
        if (rc)
            return mp_err_wrap(err, "block %s series %llu", b->dir, (unsigned long long)ref);
        ch->mint_ms = m->mint_ms;
        ch->maxt_ms = m->maxt_ms;
        k++;
    }
    if (k == 0)
        return 0;
    mp_labels_release(c->ls);
    c->ls = NULL;
    rc = c->cache_labels ? tsdb_index_series_labels_cached(&c->is, &c->ls, err)
                         : tsdb_index_series_labels(&c->is, &c->ls, err);
    if (rc)
        return rc;
    c->chunks = c->bchunks;
    c->n = k;
    return 1;
}

/* Series at c->pos - 1 of a head cursor. */
static int cursor_load_head(struct tsdb_querier *q, struct cursor *c, struct mp_err *err)
{
    /* sorted series come from memory all over the heap: start the next ones' misses now */
    if (c->pos + HEAD_PREFETCH <= c->refs.n)
        tsdb_head_series_prefetch(c->hs[c->pos + HEAD_PREFETCH - 1]);
    int rc =
        tsdb_head_series_read(q->db->head, c->hs[c->pos - 1], q->mint, q->maxt, true, &c->hr, err);
    if (rc)
        return rc;
    if (c->hr.n == 0)
        return 0;
    mp_labels_release(c->ls);
    c->ls = c->hr.labels; /* taken: the cursor holds the one reference */
    c->hr.labels = NULL;
    c->chunks = c->hr.chunks;
    c->n = c->hr.n;
    return 1;
}

/* Moves c to its next series with data in range. */
static int cursor_next(struct tsdb_querier *q, struct cursor *c, struct mp_err *err)
{
    c->valid = false;
    tsdb_zchunks_cache_trim(&c->zc); /* the previous series' slices are no longer used */
    while (c->pos < c->refs.n) {
        uint64_t ref = c->refs.refs[c->pos++];
        int rc = c->src->b ? cursor_load_block(q, c, ref, err) : cursor_load_head(q, c, err);
        if (rc < 0)
            return rc;
        if (rc == 0)
            continue;
        c->ref = ref;
        struct tsdb_tombstones *t = source_tomb(q, c->src);
        c->del.n = 0;
        if (t && !c->no_tomb) {
            rc = tsdb_tombstones_get(t, ref, &c->del);
            if (rc && rc != MP_ENOTFOUND)
                return mp_err_set(err, rc, "tombstones");
        }
        c->valid = true;
        return 0;
    }
    return 0;
}

static int cursor_start(struct tsdb_querier *q, struct cursor *c, const struct mp_matcher *const *m,
                        size_t n, struct mp_err *err)
{
    int rc;
    if (c->src->only) {
        tsdb_plist_reset(&c->refs);
        rc = tsdb_plist_reserve(&c->refs, c->src->nonly);
        for (size_t i = 0; !rc && i < c->src->nonly; i++)
            c->refs.refs[c->refs.n++] = c->src->only[i];
    } else if (m) {
        rc = tsdb_postings_for_matchers(&c->src->ir, m, n, &c->refs, err);
    } else {
        struct mp_str empty = {"", 0};
        tsdb_plist_reset(&c->refs);
        rc = c->src->ir.ops->postings(c->src->ir.ctx, empty, &empty, 1, &c->refs, err);
    }
    if (rc)
        return rc;
    c->cache_labels = m != NULL && c->refs.n <= TSDB_LCACHE_MAX_SELECT;
    c->hr.cached_labels = c->cache_labels;
    if (!c->src->b) {
        c->hs = mp_malloc((c->refs.n ? c->refs.n : 1) * sizeof *c->hs);
        if (!c->hs)
            return mp_err_set(err, MP_ENOMEM, "select: %zu series", c->refs.n);
        c->refs.n = tsdb_head_sort_series(q->db->head, c->refs.refs, c->refs.n, c->hs);
        for (size_t i = 0; i < HEAD_PREFETCH - 1 && i < c->refs.n; i++)
            tsdb_head_series_prefetch(c->hs[i]);
    }
    /* A delete racing with the select may or may not be seen by it; checked once here. */
    struct tsdb_tombstones *t = source_tomb(q, c->src);
    c->no_tomb = !t || tsdb_tombstones_is_empty(t);
    return cursor_next(q, c, err);
}

/* ---- selecting --------------------------------------------------------------------------- */

static int select_impl(struct tsdb_querier *q, const struct mp_matcher *const *m, size_t n,
                       struct tsdb_series_set **out, struct mp_err *err)
{
    struct tsdb_series_set *s = mp_calloc(1, sizeof *s);
    if (!s)
        return mp_err_set(err, MP_ENOMEM, "series set");
    s->q = q;
    mp_buf_init(&s->buf, 0);
    s->cur = mp_calloc(q->nsrc ? q->nsrc : 1, sizeof *s->cur);
    if (!s->cur) {
        mp_free(s);
        return mp_err_set(err, MP_ENOMEM, "series set");
    }
    s->ncur = q->nsrc;
    for (size_t i = 0; i < q->nsrc; i++) {
        s->cur[i].src = &q->src[i];
        tsdb_head_read_init(&s->cur[i].hr);
        tsdb_zchunks_cache_init(&s->cur[i].zc, ZCACHE_BUDGET);
    }
    for (size_t i = 0; i < q->nsrc; i++) {
        int rc = cursor_start(q, &s->cur[i], m, n, err);
        if (rc) {
            tsdb_series_set_free(s);
            return rc;
        }
    }
    *out = s;
    return 0;
}

int tsdb_querier_select(struct tsdb_querier *q, const struct mp_matcher *const *m, size_t n,
                        struct tsdb_series_set **out, struct mp_err *err)
{
    if (n == 0)
        return mp_err_set(err, MP_EINVAL, "select needs at least one matcher");
    return select_impl(q, m, n, out, err);
}

int tsdb_querier_select_all(struct tsdb_querier *q, struct tsdb_series_set **out,
                            struct mp_err *err)
{
    return select_impl(q, NULL, 0, out, err);
}

void tsdb_series_set_free(struct tsdb_series_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->ncur; i++)
        cursor_fini(&s->cur[i]);
    mp_free(s->cur);
    mp_free(s->p);
    mp_free(s->chunks);
    mp_free(s->from_buf);
    mp_buf_fini(&s->buf);
    mp_free(s);
}

const struct mp_labels *tsdb_series_set_labels(const struct tsdb_series_set *s)
{
    return s->ls;
}

struct mp_labels *tsdb_series_set_labels_take(struct tsdb_series_set *s)
{
    if (!s->sole || s->taken)
        return mp_labels_acquire(s->ls);
    /* the cursor's reference moves to the caller; the cursor only releases it on its next load */
    struct mp_labels *ls = s->sole->ls;
    s->sole->ls = NULL;
    s->taken = true;
    return ls;
}

static void set_push(struct tsdb_series_set *s, struct tsdb_chunk c, bool from_buf)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->chunks = mp_xrealloc(s->chunks, s->cap * sizeof *s->chunks);
    }
    if (s->from_buf_cap < s->cap) {
        s->from_buf = mp_xrealloc(s->from_buf, s->cap * sizeof *s->from_buf);
        s->from_buf_cap = s->cap;
    }
    s->from_buf[s->n] = from_buf;
    s->chunks[s->n++] = c;
}

/* Re-encoder: samples in, XOR chunks of at most REENCODE_SAMPLES out into s->buf. */
struct reenc {
    struct tsdb_series_set *s;
    struct tsdb_xor *c;
    int64_t last_t;
    bool any;
};

static int reenc_flush(struct reenc *r)
{
    if (!r->c)
        return 0;
    size_t len;
    const uint8_t *data = tsdb_xor_bytes(r->c, &len);
    size_t off = r->s->buf.len;
    int rc = mp_buf_append(&r->s->buf, data, len);
    if (!rc)
        set_push(r->s,
                 (struct tsdb_chunk){tsdb_xor_min_time(r->c), tsdb_xor_max_time(r->c), TSDB_ENC_XOR,
                                     (const uint8_t *)(uintptr_t)off, len},
                 true);
    tsdb_xor_destroy(r->c);
    r->c = NULL;
    return rc;
}

static int reenc_add(struct reenc *r, int64_t t, double v)
{
    if (r->any && t <= r->last_t)
        return 0; /* duplicate timestamp across sources: the first one wins */
    int rc;
    if (r->c && tsdb_xor_num_samples(r->c) >= REENCODE_SAMPLES && (rc = reenc_flush(r)))
        return rc;
    if (!r->c && (rc = tsdb_xor_create(&r->c)))
        return rc;
    rc = tsdb_xor_append(r->c, t, v);
    if (rc)
        return rc;
    r->last_t = t;
    r->any = true;
    return 0;
}

/* k-way merge of the samples of chunks in[0..n) (each sorted), minus deleted intervals
 * (per chunk: del[i], may be NULL). */
static int merge_chunks(struct tsdb_series_set *s, const struct tsdb_chunk *in,
                        const struct tsdb_intervals *const *del, size_t n, struct mp_err *err)
{
    struct tsdb_xor_iter *it = mp_xcalloc(n, sizeof *it);
    int64_t *ts = mp_xmalloc(n * sizeof *ts);
    double *vs = mp_xmalloc(n * sizeof *vs);
    bool *live = mp_xcalloc(n, sizeof *live);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        tsdb_xor_iter_init(&it[i], in[i].data, in[i].len);
        int r = tsdb_xor_iter_next(&it[i], &ts[i], &vs[i]);
        live[i] = r == 0;
        if (r && r != MP_EEOF)
            rc = tsdb_xor_iter_error(&it[i], err);
    }
    struct reenc re = {.s = s};
    while (!rc) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < n; i++)
            if (live[i] && (best == SIZE_MAX || ts[i] < ts[best]))
                best = i;
        if (best == SIZE_MAX)
            break;
        if (!(del[best] && tsdb_intervals_contains(del[best], ts[best])))
            rc = reenc_add(&re, ts[best], vs[best]);
        int r = tsdb_xor_iter_next(&it[best], &ts[best], &vs[best]);
        live[best] = r == 0;
        if (r && r != MP_EEOF && !rc)
            rc = tsdb_xor_iter_error(&it[best], err);
    }
    if (!rc)
        rc = reenc_flush(&re);
    else
        tsdb_xor_destroy(re.c);
    mp_free(it);
    mp_free(ts);
    mp_free(vs);
    mp_free(live);
    if (rc && err && !err->code)
        mp_err_set(err, rc, "re-encoding merged chunks");
    return rc;
}

struct pending {
    struct tsdb_chunk c;
    const struct tsdb_intervals *del; /* NULL: nothing deleted in it */
};

static int pending_cmp(const void *pa, const void *pb)
{
    const struct pending *a = pa, *b = pb;
    if (a->c.mint_ms != b->c.mint_ms)
        return a->c.mint_ms < b->c.mint_ms ? -1 : 1;
    return a->c.maxt_ms < b->c.maxt_ms ? -1 : a->c.maxt_ms > b->c.maxt_ms;
}

static bool overlaps_deleted(const struct tsdb_intervals *d, int64_t mint, int64_t maxt)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->v[i].mint <= maxt && d->v[i].maxt >= mint)
            return true;
    return false;
}

static bool covered_by_deleted(const struct tsdb_intervals *d, int64_t mint, int64_t maxt)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->v[i].mint <= mint && d->v[i].maxt >= maxt)
            return true;
    return false;
}

/* Builds s->chunks from the cursors positioned on the label set s->ls. */
static int build_chunks(struct tsdb_series_set *s, struct pending *p, size_t np, struct mp_err *err)
{
    s->n = 0;
    mp_buf_reset(&s->buf);
    qsort(p, np, sizeof *p, pending_cmp);
    size_t i = 0;
    while (i < np) {
        /* A group: chunks that overlap each other transitively, or carry deletions. */
        size_t j = i + 1;
        int64_t end = p[i].c.maxt_ms;
        bool dirty = p[i].del != NULL;
        while (j < np && p[j].c.mint_ms <= end) {
            if (p[j].c.maxt_ms > end)
                end = p[j].c.maxt_ms;
            dirty |= p[j].del != NULL;
            j++;
        }
        if (j == i + 1 && !dirty) {
            set_push(s, p[i].c, false);
        } else {
            struct tsdb_chunk *in = mp_xmalloc((j - i) * sizeof *in);
            const struct tsdb_intervals **del = mp_xmalloc((j - i) * sizeof *del);
            for (size_t k = i; k < j; k++) {
                in[k - i] = p[k].c;
                del[k - i] = p[k].del;
            }
            int rc = merge_chunks(s, in, del, j - i, err);
            mp_free(in);
            mp_free(del);
            if (rc)
                return rc;
        }
        i = j;
    }
    for (size_t k = 0; k < s->n; k++)
        if (s->from_buf[k])
            s->chunks[k].data = (const uint8_t *)s->buf.data + (uintptr_t)s->chunks[k].data;
    return 0;
}

/* True if chunks c[0..n) are in time order and disjoint: what build_chunks makes of them
 * unchanged. */
static bool chunks_disjoint(const struct tsdb_chunk *c, size_t n)
{
    for (size_t k = 1; k < n; k++)
        if (c[k].mint_ms <= c[k - 1].maxt_ms)
            return false;
    return true;
}

int tsdb_series_set_next(struct tsdb_series_set *s, struct mp_err *err)
{
    struct tsdb_querier *q = s->q;
    for (;;) {
        if (s->started) {
            for (size_t i = 0; i < s->ncur; i++) {
                struct cursor *c = &s->cur[i];
                if (!c->on)
                    continue;
                c->on = false;
                int rc = cursor_next(q, c, err);
                if (rc)
                    return rc;
            }
        }
        s->started = true;
        s->ls = NULL;
        s->taken = false;
        struct cursor *min = NULL;
        for (size_t i = 0; i < s->ncur; i++) {
            struct cursor *c = &s->cur[i];
            if (c->valid && (!min || mp_labels_compare(c->ls, min->ls) < 0))
                min = c;
        }
        if (!min)
            return MP_EEOF;
        s->ls = min->ls;
        size_t np = 0, non = 0;
        for (size_t i = 0; i < s->ncur; i++) {
            struct cursor *c = &s->cur[i];
            if (c->valid && (c == min || mp_labels_equal(c->ls, s->ls))) {
                c->on = true;
                np += c->n;
                non++;
            }
        }
        s->sole = non == 1 ? min : NULL;
        if (non == 1 && min->del.n == 0 && chunks_disjoint(min->chunks, min->n)) {
            /* one source, nothing deleted: its chunks as they are */
            s->n = 0;
            for (size_t k = 0; k < min->n; k++)
                set_push(s, min->chunks[k], false);
            if (s->n)
                return 0;
            continue;
        }
        if (np > s->pcap) {
            s->pcap = np * 2;
            s->p = mp_xrealloc(s->p, s->pcap * sizeof *s->p);
        }
        struct pending *p = s->p;
        np = 0;
        for (size_t i = 0; i < s->ncur; i++) {
            struct cursor *c = &s->cur[i];
            if (!c->on)
                continue;
            for (size_t k = 0; k < c->n; k++) {
                const struct tsdb_chunk *ch = &c->chunks[k];
                const struct tsdb_intervals *d = NULL;
                if (c->del.n) {
                    if (covered_by_deleted(&c->del, ch->mint_ms, ch->maxt_ms))
                        continue;
                    if (overlaps_deleted(&c->del, ch->mint_ms, ch->maxt_ms))
                        d = &c->del;
                }
                p[np++] = (struct pending){*ch, d};
            }
        }
        int rc = build_chunks(s, p, np, err);
        if (rc)
            return rc;
        if (s->n)
            return 0;
        /* everything deleted: on to the next label set */
    }
}

int tsdb_series_set_chunks(struct tsdb_series_set *s, const struct tsdb_chunk **out, size_t *n,
                           struct mp_err *err)
{
    (void)err;
    *out = s->chunks;
    *n = s->n;
    return 0;
}

/* ---- samples ----------------------------------------------------------------------------- */

void tsdb_series_set_iter(struct tsdb_series_set *s, struct tsdb_sample_iter *it)
{
    memset(it, 0, sizeof *it);
    it->chunks = s->chunks;
    it->n = s->n;
    it->i = 0;
    it->mint_ms = s->q->mint;
    it->maxt_ms = s->q->maxt;
    if (it->n)
        tsdb_xor_iter_init(&it->xi, it->chunks[0].data, it->chunks[0].len);
}

/* ---- label names and values ----------------------------------------------------------------- */

struct strset {
    char **v;
    size_t *len;
    size_t n, cap;
};

static int strset_add(void *ctx, struct mp_str s)
{
    struct strset *ss = ctx;
    if (ss->n == ss->cap) {
        ss->cap = ss->cap ? ss->cap * 2 : 64;
        ss->v = mp_xrealloc(ss->v, ss->cap * sizeof *ss->v);
        ss->len = mp_xrealloc(ss->len, ss->cap * sizeof *ss->len);
    }
    ss->v[ss->n] = mp_xstrndup(s.ptr, s.len);
    ss->len[ss->n++] = s.len;
    return 0;
}

static int strset_cmp(const void *pa, const void *pb)
{
    /* NUL-free strings compare as strcmp; label strings may hold NUL, so compare by length */
    const struct mp_str *a = pa, *b = pb;
    return mp_str_cmp(*a, *b);
}

/* Emits the set sorted and unique to fn (NULL: none), then frees it. */
static int strset_emit(struct strset *ss, int (*fn)(void *ctx, struct mp_str s), void *ctx)
{
    struct mp_str *v = mp_xmalloc((ss->n ? ss->n : 1) * sizeof *v);
    for (size_t i = 0; i < ss->n; i++)
        v[i] = (struct mp_str){ss->v[i], ss->len[i]};
    qsort(v, ss->n, sizeof *v, strset_cmp);
    int rc = 0;
    for (size_t i = 0; fn && i < ss->n && !rc; i++) {
        if (i && mp_str_cmp(v[i], v[i - 1]) == 0)
            continue;
        rc = fn(ctx, v[i]);
    }
    for (size_t i = 0; i < ss->n; i++)
        mp_free(ss->v[i]);
    mp_free(ss->v);
    mp_free(ss->len);
    mp_free(v);
    memset(ss, 0, sizeof *ss);
    return rc;
}

/* Label names or values (name != NULL) from the series matching m. */
static int labels_from_series(struct tsdb_querier *q, const struct mp_str *name,
                              const struct mp_matcher *const *m, size_t n, struct strset *ss,
                              struct mp_err *err)
{
    struct tsdb_series_set *set;
    int rc = tsdb_querier_select(q, m, n, &set, err);
    if (rc)
        return rc;
    while ((rc = tsdb_series_set_next(set, err)) == 0) {
        const struct mp_labels *ls = tsdb_series_set_labels(set);
        if (name) {
            if (mp_labels_has(ls, *name))
                strset_add(ss, mp_labels_get(ls, *name));
            continue;
        }
        for (size_t i = 0; i < mp_labels_count(ls); i++)
            strset_add(ss, mp_labels_at(ls, i).name);
    }
    tsdb_series_set_free(set);
    return rc == MP_EEOF ? 0 : rc;
}

/* Prometheus's headIndexReader LabelNames/LabelValues: nothing from the head when the range
 * misses [head min, head max] (an empty head misses every range); blocks were picked by range
 * at open. */
static bool source_in_range(const struct tsdb_querier *q, const struct source *s)
{
    return s->b || (q->maxt >= tsdb_head_min_time(q->db->head) &&
                    q->mint <= tsdb_head_max_time(q->db->head));
}

int tsdb_querier_label_names(struct tsdb_querier *q, const struct mp_matcher *const *m, size_t n,
                             int (*fn)(void *ctx, struct mp_str name), void *ctx,
                             struct mp_err *err)
{
    struct strset ss = {0};
    int rc = 0;
    if (n) {
        rc = labels_from_series(q, NULL, m, n, &ss, err);
    } else {
        for (size_t i = 0; i < q->nsrc && !rc; i++) {
            if (!source_in_range(q, &q->src[i]))
                continue;
            if (q->src[i].b)
                rc = tsdb_index_reader_label_names(q->src[i].b->index, strset_add, &ss, err);
            else
                rc = tsdb_head_label_names(q->db->head, strset_add, &ss);
        }
    }
    if (rc) {
        strset_emit(&ss, NULL, NULL);
        return rc;
    }
    return strset_emit(&ss, fn, ctx);
}

int tsdb_querier_label_values(struct tsdb_querier *q, struct mp_str name,
                              const struct mp_matcher *const *m, size_t n,
                              int (*fn)(void *ctx, struct mp_str value), void *ctx,
                              struct mp_err *err)
{
    struct strset ss = {0};
    int rc = 0;
    if (n) {
        rc = labels_from_series(q, &name, m, n, &ss, err);
    } else {
        for (size_t i = 0; i < q->nsrc && !rc; i++)
            if (source_in_range(q, &q->src[i]))
                rc = q->src[i].ir.ops->label_values(q->src[i].ir.ctx, name, strset_add, &ss, err);
    }
    if (rc) {
        strset_emit(&ss, NULL, NULL);
        return rc;
    }
    return strset_emit(&ss, fn, ctx);
}

/* ---- symbols ---------------------------------------------------------------------------- */

static int str_cmp_v(const void *pa, const void *pb)
{
    return mp_str_cmp(*(const struct mp_str *)pa, *(const struct mp_str *)pb);
}

int tsdb_querier_symbols(struct tsdb_querier *q, const struct mp_str **out, size_t *n,
                         struct mp_err *err)
{
    struct mp_str *v = NULL;
    size_t k = 0, cap = 1;
    v = mp_xmalloc(sizeof *v);
    v[k++] = (struct mp_str){"", 0};
    int rc = 0;
    for (size_t i = 0; i < q->nsrc && !rc; i++) {
        if (q->src[i].b) {
            struct tsdb_index_reader *ir = q->src[i].b->index;
            uint32_t ns = tsdb_index_reader_symbol_count(ir);
            if (k + ns > cap) {
                cap = (k + ns) * 2;
                v = mp_xrealloc(v, cap * sizeof *v);
            }
            for (uint32_t j = 0; j < ns && !rc; j++)
                rc = tsdb_index_reader_symbol(ir, j, &v[k++], err);
        } else {
            const struct mp_istr **hs;
            size_t nh;
            rc = tsdb_head_symbols(q->db->head, &hs, &nh, err);
            if (rc)
                break;
            if (k + nh > cap) {
                cap = (k + nh) * 2;
                v = mp_xrealloc(v, cap * sizeof *v);
            }
            for (size_t j = 0; j < nh; j++)
                v[k++] = mp_istr_str(hs[j]);
            mp_free(hs);
        }
    }
    if (rc) {
        mp_free(v);
        return rc;
    }
    qsort(v, k, sizeof *v, str_cmp_v);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || mp_str_cmp(v[i], v[u - 1]) != 0)
            v[u++] = v[i];
    *out = v;
    *n = u;
    return 0;
}
