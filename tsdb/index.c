/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/index.c: writer and reader of the block index file, Prometheus format v2 (spec tsdb.md
 * 4.4; upstream tsdb/index/index.go). Layout as Prometheus writes it, with the TOC pointing at
 * where each section writer started (before its alignment padding):
 *
 *   0000  baaad700 02                      magic, version
 *   0005  len | #syms | uvarint-string*    symbol table (ordinal = position), CRC
 *   ....  [pad16] uvarint len | body | CRC series entries; ref = offset / 16
 *   ....  [pad4] len | 1 | n | BE32 sym*    label index per name (legacy), CRC
 *   ....  [pad4] len | n | BE32 ref*        postings: ("","") = all series, then sorted pairs
 *   ....  len | n | {1, name, off}*         label offset table (legacy), CRC
 *   ....  len | n | {2, name, value, off}*  postings offset table, CRC
 *   end-52  6 x BE64 offsets | CRC          TOC: symbols, series, label indices,
 *                                           label offset table, postings, postings offset table
 *
 * Every len counts the bytes after it and before the CRC, and the CRC (CRC32C, BE32) covers
 * exactly those bytes; series entries are checksummed over the bytes their uvarint len counts.
 * A series body is: #labels, (name sym, value sym)*, #chunks, chunk 0 as (varint mint,
 * uvarint maxt - mint, uvarint ref), then (uvarint mint - prev maxt, uvarint maxt - mint,
 * varint ref - prev ref). Arithmetic on decoded times and refs wraps as in Go. */
#include "tsdb/index.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "tsdb/bytes.h"
#include "tsdb/gallop.h"
#include "tsdb/lcache.h"
#include "tsdb/wal.h"

#define WBUF_SIZE (256u * 1024u)
/* Compact format: series entries and postings lists in zstd frames of about these many raw
 * bytes (a frame holds whole entries / lists); readers refuse frames larger than the maxima. */
#define SFRAME_TARGET (16u * 1024u)
#define PFRAME_TARGET (64u * 1024u)
#define SFRAME_MAX (64u * 1024u * 1024u)
#define PFRAME_MAX (256u * 1024u * 1024u)
/* every POT_SAMPLE-th postings offset table entry of a name is kept in memory (Prometheus 32) */
#define POT_SAMPLE 32u
#define HDR_LEN 5u

enum { TOC_SYMBOLS, TOC_SERIES, TOC_LABEL_INDICES, TOC_LABEL_TABLE, TOC_POSTINGS, TOC_POT };
/* Compact TOC: offsets of the symbols, series frames, postings frames, series frame table,
 * postings frame table, pairs table; then the series count. */
enum { CT_SYMBOLS, CT_SFRAMES, CT_PFRAMES, CT_STAB, CT_PTAB, CT_PAIRS, CT_NSERIES, CT_N };

static uint64_t get_be64(const uint8_t *p)
{
    return (uint64_t)tsdb_get_be32(p) << 32 | tsdb_get_be32(p + 4);
}

/* Bounded cursor. Invariant: p <= end; a failed read sets bad and reads nothing more. */
struct cur {
    const uint8_t *p, *end;
    bool bad;
};

static size_t cur_left(const struct cur *c)
{
    return (size_t)(c->end - c->p);
}

static uint32_t cur_be32(struct cur *c)
{
    if (c->bad || cur_left(c) < 4) {
        c->bad = true;
        return 0;
    }
    uint32_t v = tsdb_get_be32(c->p);
    c->p += 4;
    return v;
}

/* Go binary.Uvarint: at most 10 bytes, the 10th at most 1. */
static uint64_t cur_uvarint(struct cur *c)
{
    uint64_t v = 0;
    for (unsigned i = 0; !c->bad && c->p < c->end && i < 10; i++) {
        uint8_t byte = *c->p++;
        if (i == 9 && byte > 1)
            break;
        v |= (uint64_t)(byte & 0x7f) << (7 * i);
        if (byte < 0x80)
            return v;
    }
    c->bad = true;
    return 0;
}

static int64_t cur_varint(struct cur *c)
{
    uint64_t u = cur_uvarint(c);
    return (int64_t)((u >> 1) ^ (0 - (u & 1)));
}

static struct mp_str cur_str(struct cur *c)
{
    uint64_t n = cur_uvarint(c);
    if (c->bad || n > cur_left(c)) {
        c->bad = true;
        return (struct mp_str){"", 0};
    }
    struct mp_str s = {(const char *)c->p, (size_t)n};
    c->p += n;
    return s;
}

/* Grows *arr to at least need elements of size sz. */
static int reserve(void **arr, size_t *cap, size_t need, size_t sz)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 8, bytes;
    while (ncap < need)
        ncap *= 2;
    if (__builtin_mul_overflow(ncap, sz, &bytes))
        return MP_ENOMEM;
    void *p = mp_realloc(*arr, bytes);
    if (!p)
        return MP_ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* ==== writer ================================================================================ */

/* A distinct (name, value) label pair of the series written so far. */
struct pair {
    uint32_t name, value; /* symbol ordinals */
    uint32_t count;       /* series with this pair */
    size_t fill;          /* at close: next free slot of its list in the refs array */
};

struct tsdb_index_writer {
    int fd;
    bool failed;
    bool in_series; /* the symbol table is written */
    uint64_t pos;   /* file offset of the next byte; the last blen bytes are in buf */
    uint8_t *buf;
    size_t blen;
    uint32_t crc;
    bool crc_on;
    uint64_t toc[CT_N];

    /* compact format only */
    bool compact;
    int zlevel;
    ZSTD_CCtx *cctx;
    struct mp_buf frame; /* raw entries (uvarint len | body) of the open series frame */
    size_t frame_n;      /* entries in it */
    struct mp_buf stab;  /* series frame table: {uvarint n, clen, rlen}* */
    size_t nsframes;
    uint8_t *zbuf;
    size_t zcap;

    struct mp_buf syms; /* the symbol table's strings, encoded as on disk */
    uint32_t *sym_off;  /* offset of each symbol in syms */
    size_t nsyms, sym_cap;

    uint32_t *prev, *cur; /* ordinals (name, value)* of the previous and current series */
    size_t nprev, prev_cap, cur_cap;
    struct mp_buf ent; /* series entry body */
    uint64_t last_chunk_ref;
    size_t nseries;
    struct mp_label *ls_tmp;
    size_t ls_cap;

    struct pair *pairs;
    size_t npairs, pairs_cap;
    uint32_t *slots; /* open addressing: pair index + 1, 0 = empty; power-of-two size */
    size_t nslots;
};

static int io_fail(struct tsdb_index_writer *w, const char *what, struct mp_err *err)
{
    w->failed = true;
    return mp_err_set(err, MP_EIO, "index writer: %s: %s", what, strerror(errno));
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int flush(struct tsdb_index_writer *w, struct mp_err *err)
{
    if (w->blen && write_all(w->fd, w->buf, w->blen))
        return io_fail(w, "write", err);
    w->blen = 0;
    return 0;
}

static int wr(struct tsdb_index_writer *w, const void *p, size_t n, struct mp_err *err)
{
    if (n == 0)
        return 0;
    if (w->crc_on)
        w->crc = tsdb_crc32c(w->crc, p, n);
    w->pos += n;
    if (WBUF_SIZE - w->blen < n) {
        int rc = flush(w, err);
        if (rc)
            return rc;
        if (n >= WBUF_SIZE) {
            if (write_all(w->fd, p, n))
                return io_fail(w, "write", err);
            return 0;
        }
    }
    memcpy(w->buf + w->blen, p, n);
    w->blen += n;
    return 0;
}

static int wr_be32(struct tsdb_index_writer *w, uint32_t v, struct mp_err *err)
{
    uint8_t b[4];
    tsdb_put_be32(b, v);
    return wr(w, b, 4, err);
}

static int wr_uvarint(struct tsdb_index_writer *w, uint64_t v, struct mp_err *err)
{
    uint8_t b[10];
    return wr(w, b, tsdb_put_uvarint(b, v), err);
}

static int wr_str(struct tsdb_index_writer *w, struct mp_str s, struct mp_err *err)
{
    int rc = wr_uvarint(w, s.len, err);
    return rc ? rc : wr(w, s.ptr, s.len, err);
}

/* Zero bytes up to the next multiple of align. */
static int pad(struct tsdb_index_writer *w, unsigned align, struct mp_err *err)
{
    static const uint8_t zeros[16];
    size_t n = (size_t)((align - w->pos % align) % align);
    return n ? wr(w, zeros, n, err) : 0;
}

/* Overwrites already written bytes at file offset at. */
static int patch(struct tsdb_index_writer *w, uint64_t at, const uint8_t *p, size_t n,
                 struct mp_err *err)
{
    uint64_t bstart = w->pos - w->blen;
    if (at >= bstart) {
        memcpy(w->buf + (at - bstart), p, n);
        return 0;
    }
    int rc = flush(w, err);
    if (rc)
        return rc;
    for (size_t done = 0; done < n;) {
        ssize_t k = pwrite(w->fd, p + done, n - done, (off_t)(at + done));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return io_fail(w, "pwrite", err);
        done += (size_t)k;
    }
    return 0;
}

/* A section framed as BE32 len | bytes | BE32 CRC32C(bytes): begin leaves room for len. */
static int sec_begin(struct tsdb_index_writer *w, uint64_t *start, struct mp_err *err)
{
    *start = w->pos;
    int rc = wr_be32(w, 0, err);
    w->crc = 0;
    w->crc_on = true;
    return rc;
}

static int sec_end(struct tsdb_index_writer *w, uint64_t start, const char *what,
                   struct mp_err *err)
{
    w->crc_on = false;
    uint64_t l = w->pos - start - 4;
    if (l > UINT32_MAX) {
        w->failed = true;
        return mp_err_set(err, MP_ELIMIT, "index writer: %s larger than 4 GiB", what);
    }
    uint8_t b[4];
    tsdb_put_be32(b, (uint32_t)l);
    int rc = patch(w, start, b, 4, err);
    return rc ? rc : wr_be32(w, w->crc, err);
}

static int writer_open(const char *path, int zlevel, struct tsdb_index_writer **out,
                       struct mp_err *err)
{
    struct tsdb_index_writer *w = mp_xcalloc(1, sizeof *w);
    w->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        int rc = mp_err_set(err, MP_EIO, "index writer: open %s: %s", path, strerror(errno));
        mp_free(w);
        return rc;
    }
    w->buf = mp_xmalloc(WBUF_SIZE);
    mp_buf_init(&w->syms, 0);
    mp_buf_init(&w->ent, 0);
    mp_buf_init(&w->frame, 0);
    mp_buf_init(&w->stab, 0);
    uint8_t hdr[HDR_LEN];
    tsdb_put_be32(hdr, zlevel ? TSDB_INDEX_COMPACT_MAGIC : TSDB_INDEX_MAGIC);
    hdr[4] = zlevel ? TSDB_INDEX_COMPACT_V1 : TSDB_INDEX_FORMAT_V2;
    if (zlevel) {
        w->compact = true;
        w->zlevel = zlevel;
        w->cctx = ZSTD_createCCtx();
        if (!w->cctx ||
            ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, zlevel)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1))) {
            tsdb_index_writer_abort(w);
            return mp_err_set(err, MP_ENOMEM, "index writer: zstd context");
        }
    }
    int rc = wr(w, hdr, sizeof hdr, err);
    if (rc) {
        tsdb_index_writer_abort(w);
        return rc;
    }
    *out = w;
    return 0;
}

int tsdb_index_writer_open(const char *path, struct tsdb_index_writer **out, struct mp_err *err)
{
    return writer_open(path, 0, out, err);
}

int tsdb_index_writer_open_compact(const char *path, int zstd_level, struct tsdb_index_writer **out,
                                   struct mp_err *err)
{
    if (zstd_level < 1 || zstd_level > ZSTD_maxCLevel())
        return mp_err_set(err, MP_EINVAL, "index writer: zstd level %d", zstd_level);
    return writer_open(path, zstd_level, out, err);
}

void tsdb_index_writer_abort(struct tsdb_index_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    mp_free(w->buf);
    mp_buf_fini(&w->syms);
    mp_buf_fini(&w->ent);
    mp_free(w->sym_off);
    mp_free(w->prev);
    mp_free(w->cur);
    mp_free(w->ls_tmp);
    mp_free(w->pairs);
    mp_free(w->slots);
    ZSTD_freeCCtx(w->cctx);
    mp_buf_fini(&w->frame);
    mp_buf_fini(&w->stab);
    mp_free(w->zbuf);
    mp_free(w);
}

static struct mp_str wsym(const struct tsdb_index_writer *w, size_t i)
{
    struct cur c = {(const uint8_t *)w->syms.data + w->sym_off[i],
                    (const uint8_t *)w->syms.data + w->syms.len, false};
    return cur_str(&c);
}

int tsdb_index_writer_add_symbol(struct tsdb_index_writer *w, struct mp_str sym, struct mp_err *err)
{
    if (w->failed || w->in_series)
        return mp_err_set(err, MP_EINVAL, "index writer: symbol after the first series");
    if (w->nsyms > 0 && mp_str_cmp(wsym(w, w->nsyms - 1), sym) >= 0)
        return mp_err_set(err, MP_EINVAL, "index writer: symbol %zu out of order", w->nsyms);
    /* the table's len (4 + strings) must fit in 32 bits */
    if (sym.len > UINT32_MAX || w->syms.len + sym.len + 14 > UINT32_MAX || w->nsyms >= UINT32_MAX)
        return mp_err_set(err, MP_ELIMIT, "index writer: symbol table larger than 4 GiB");
    if (reserve((void **)&w->sym_off, &w->sym_cap, w->nsyms + 1, sizeof *w->sym_off))
        return mp_err_set(err, MP_ENOMEM, "index writer: out of memory");
    uint8_t b[10];
    size_t off = w->syms.len;
    if (mp_buf_append(&w->syms, b, tsdb_put_uvarint(b, sym.len)) ||
        mp_buf_append(&w->syms, sym.ptr, sym.len)) {
        w->syms.len = off;
        return mp_err_set(err, MP_ENOMEM, "index writer: out of memory");
    }
    w->sym_off[w->nsyms++] = (uint32_t)off;
    return 0;
}

int tsdb_index_writer_add_symbols(struct tsdb_index_writer *w, const struct mp_str *syms, size_t n,
                                  struct mp_err *err)
{
    for (size_t i = 0; i < n; i++) {
        int rc = tsdb_index_writer_add_symbol(w, syms[i], err);
        if (rc)
            return rc;
    }
    return 0;
}

static int finish_symbols(struct tsdb_index_writer *w, struct mp_err *err)
{
    uint64_t start;
    w->toc[TOC_SYMBOLS] = w->pos;
    int rc = sec_begin(w, &start, err);
    if (!rc)
        rc = wr_be32(w, (uint32_t)w->nsyms, err);
    if (!rc)
        rc = wr(w, w->syms.data, w->syms.len, err);
    if (!rc)
        rc = sec_end(w, start, "symbol table", err);
    w->in_series = true;
    w->toc[TOC_SERIES] = w->pos;
    return rc;
}

/* Ordinal of s, or -1. */
static int64_t wsym_find(const struct tsdb_index_writer *w, struct mp_str s)
{
    size_t lo = 0, hi = w->nsyms;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = mp_str_cmp(wsym(w, mid), s);
        if (c == 0)
            return (int64_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static size_t slot_of(uint32_t name, uint32_t value, size_t nslots)
{
    uint64_t k = ((uint64_t)name << 32 | value) * 0x9E3779B97F4A7C15ull;
    return (size_t)(k >> 32) & (nslots - 1);
}

/* Index of the slot holding (name, value) or of the empty slot where it belongs. */
static size_t slot_find(const struct tsdb_index_writer *w, uint32_t name, uint32_t value)
{
    size_t i = slot_of(name, value, w->nslots);
    while (w->slots[i]) {
        const struct pair *p = &w->pairs[w->slots[i] - 1];
        if (p->name == name && p->value == value)
            break;
        i = (i + 1) & (w->nslots - 1);
    }
    return i;
}

static int rehash(struct tsdb_index_writer *w, size_t nslots)
{
    uint32_t *s = mp_calloc(nslots, sizeof *s);
    if (!s)
        return MP_ENOMEM;
    mp_free(w->slots);
    w->slots = s;
    w->nslots = nslots;
    for (size_t i = 0; i < w->npairs; i++)
        w->slots[slot_find(w, w->pairs[i].name, w->pairs[i].value)] = (uint32_t)i + 1;
    return 0;
}

/* Counts one more series with (name, value). */
static int count_pair(struct tsdb_index_writer *w, uint32_t name, uint32_t value)
{
    if ((w->npairs + 1) * 2 > w->nslots && rehash(w, w->nslots ? w->nslots * 2 : 1024))
        return MP_ENOMEM;
    size_t i = slot_find(w, name, value);
    if (!w->slots[i]) {
        if (w->npairs >= UINT32_MAX - 1 ||
            reserve((void **)&w->pairs, &w->pairs_cap, w->npairs + 1, sizeof *w->pairs))
            return MP_ENOMEM;
        w->pairs[w->npairs] = (struct pair){name, value, 0, 0};
        w->slots[i] = (uint32_t)++w->npairs;
    }
    w->pairs[w->slots[i] - 1].count++;
    return 0;
}

static int check_chunks(const struct tsdb_index_chunk_meta *c, size_t n, uint64_t last_ref,
                        struct mp_err *err)
{
    for (size_t i = 0; i < n; i++) {
        if (c[i].maxt_ms < c[i].mint_ms)
            return mp_err_set(err, MP_EINVAL, "index writer: chunk %zu: maxt < mint", i);
        if (i > 0 && c[i].mint_ms <= c[i - 1].maxt_ms)
            return mp_err_set(err, MP_EINVAL, "index writer: chunk %zu overlaps the one before", i);
        if (c[i].ref < (i ? c[i - 1].ref : last_ref))
            return mp_err_set(err, MP_EINVAL, "index writer: chunk %zu: ref goes backwards", i);
    }
    return 0;
}

/* Ordinal of s, or -1. Series come in label order, so the previous series' string at the same
 * position is usually the same one: one comparison instead of a binary search. */
static int64_t sym_ord(const struct tsdb_index_writer *w, struct mp_str s, size_t at)
{
    if (w->nseries > 0 && at < w->nprev && mp_str_eq(wsym(w, w->prev[at]), s))
        return w->prev[at];
    return wsym_find(w, s);
}

/* Maps the labels to ordinals in w->cur and checks them against the previous series. */
static int series_ords(struct tsdb_index_writer *w, const struct mp_label *l, size_t n,
                       struct mp_err *err)
{
    if (n == 0)
        return mp_err_set(err, MP_EINVAL, "index writer: series without labels");
    if (n > SIZE_MAX / 4 || reserve((void **)&w->cur, &w->cur_cap, 2 * n, sizeof *w->cur))
        return mp_err_set(err, MP_ENOMEM, "index writer: out of memory");
    for (size_t i = 0; i < n; i++) {
        int64_t a = sym_ord(w, l[i].name, 2 * i), b = sym_ord(w, l[i].value, 2 * i + 1);
        if (a < 0 || b < 0)
            return mp_err_set(err, MP_EINVAL, "index writer: label %zu: %s is not a symbol", i,
                              a < 0 ? "name" : "value");
        w->cur[2 * i] = (uint32_t)a;
        w->cur[2 * i + 1] = (uint32_t)b;
        if (i > 0 && w->cur[2 * i] <= w->cur[2 * i - 2])
            return mp_err_set(err, MP_EINVAL, "index writer: label names not sorted and unique");
    }
    /* ordinals sort as their strings do, so this is labels.Compare */
    if (w->nseries > 0) {
        size_t m = 2 * n < w->nprev ? 2 * n : w->nprev, i = 0;
        while (i < m && w->cur[i] == w->prev[i])
            i++;
        bool greater = i < m ? w->cur[i] > w->prev[i] : 2 * n > w->nprev;
        if (!greater)
            return mp_err_set(err, MP_EINVAL, "index writer: series %zu out of order", w->nseries);
    }
    return 0;
}

static int encode_entry(struct tsdb_index_writer *w, size_t n,
                        const struct tsdb_index_chunk_meta *c, size_t nc)
{
    uint8_t b[32];
    struct mp_buf *e = &w->ent;
    mp_buf_reset(e);
    int rc = mp_buf_append(e, b, tsdb_put_uvarint(b, n));
    for (size_t i = 0; i < 2 * n && !rc; i++)
        rc = mp_buf_append(e, b, tsdb_put_uvarint(b, w->cur[i]));
    if (!rc)
        rc = mp_buf_append(e, b, tsdb_put_uvarint(b, nc));
    for (size_t i = 0; i < nc && !rc; i++) {
        size_t k;
        uint64_t span = (uint64_t)c[i].maxt_ms - (uint64_t)c[i].mint_ms;
        if (i == 0) {
            k = tsdb_put_varint(b, c[0].mint_ms);
            k += tsdb_put_uvarint(b + k, span);
            k += tsdb_put_uvarint(b + k, c[0].ref);
        } else {
            k = tsdb_put_uvarint(b, (uint64_t)c[i].mint_ms - (uint64_t)c[i - 1].maxt_ms);
            k += tsdb_put_uvarint(b + k, span);
            k += tsdb_put_varint(b + k, (int64_t)(c[i].ref - c[i - 1].ref));
        }
        rc = mp_buf_append(e, b, k);
    }
    return rc;
}

/* Compresses raw[0..n) into w->zbuf; *clen gets the frame's size. */
static int zcompress(struct tsdb_index_writer *w, const void *raw, size_t n, size_t *clen,
                     struct mp_err *err)
{
    size_t bound = ZSTD_compressBound(n);
    if (bound > w->zcap) {
        uint8_t *b = mp_realloc(w->zbuf, bound);
        if (!b) {
            w->failed = true;
            return mp_err_set(err, MP_ENOMEM, "index writer: out of memory");
        }
        w->zbuf = b;
        w->zcap = bound;
    }
    size_t c = ZSTD_compress2(w->cctx, w->zbuf, w->zcap, raw, n);
    if (ZSTD_isError(c)) {
        w->failed = true;
        return mp_err_set(err, MP_EIO, "index writer: zstd: %s", ZSTD_getErrorName(c));
    }
    *clen = c;
    return 0;
}

/* Appends "uvarint a | uvarint b | uvarint c" to t. */
static int put3(struct mp_buf *t, uint64_t a, uint64_t b, uint64_t c)
{
    uint8_t x[30];
    size_t k = tsdb_put_uvarint(x, a);
    k += tsdb_put_uvarint(x + k, b);
    k += tsdb_put_uvarint(x + k, c);
    return mp_buf_append(t, x, k);
}

/* Writes the open series frame and its table entry. */
static int flush_sframe(struct tsdb_index_writer *w, struct mp_err *err)
{
    if (w->frame_n == 0)
        return 0;
    size_t clen;
    int rc = zcompress(w, w->frame.data, w->frame.len, &clen, err);
    if (!rc)
        rc = wr(w, w->zbuf, clen, err);
    if (rc)
        return rc;
    if (put3(&w->stab, w->frame_n, clen, w->frame.len)) {
        w->failed = true;
        return mp_err_set(err, MP_ENOMEM, "index writer: out of memory");
    }
    w->nsframes++;
    w->frame_n = 0;
    mp_buf_reset(&w->frame);
    return 0;
}

static int add_compact_entry(struct tsdb_index_writer *w, size_t n,
                             const struct tsdb_index_chunk_meta *c, size_t nc, struct mp_err *err)
{
    if (w->nseries >= UINT32_MAX - 1)
        return mp_err_set(err, MP_ELIMIT, "index writer: more than 2^32 - 2 series");
    uint8_t b[10];
    if (encode_entry(w, n, c, nc) || mp_buf_append(&w->frame, b, tsdb_put_uvarint(b, w->ent.len)) ||
        mp_buf_append(&w->frame, w->ent.data, w->ent.len)) {
        w->failed = true;
        return mp_err_set(err, MP_ENOMEM, "index writer: out of memory");
    }
    if (w->frame.len > SFRAME_MAX) {
        w->failed = true;
        return mp_err_set(err, MP_ELIMIT, "index writer: series entry of %zu bytes", w->ent.len);
    }
    w->frame_n++;
    return w->frame.len >= SFRAME_TARGET ? flush_sframe(w, err) : 0;
}

int tsdb_index_writer_add_series(struct tsdb_index_writer *w, const struct mp_label *labels,
                                 size_t nlabels, const struct tsdb_index_chunk_meta *chunks,
                                 size_t nchunks, uint64_t *ref, struct mp_err *err)
{
    if (w->failed)
        return mp_err_set(err, MP_EINVAL, "index writer: an earlier write failed");
    int rc = 0;
    if (!w->in_series && (rc = finish_symbols(w, err)) != 0)
        return rc;
    if ((rc = series_ords(w, labels, nlabels, err)) != 0 ||
        (rc = check_chunks(chunks, nchunks, w->last_chunk_ref, err)) != 0)
        return rc;
    uint64_t sref;
    if (w->compact) {
        if ((rc = add_compact_entry(w, nlabels, chunks, nchunks, err)) != 0)
            return rc;
        sref = w->nseries + 1;
    } else {
        if ((rc = pad(w, 16, err)) != 0)
            return rc;
        if (w->pos / 16 > UINT32_MAX) {
            w->failed = true;
            return mp_err_set(err, MP_ELIMIT, "index writer: series section passes 64 GiB");
        }
        sref = w->pos / 16;
        if (encode_entry(w, nlabels, chunks, nchunks)) {
            w->failed = true;
            return mp_err_set(err, MP_ENOMEM, "index writer: out of memory");
        }
        if ((rc = wr_uvarint(w, w->ent.len, err)) != 0 ||
            (rc = wr(w, w->ent.data, w->ent.len, err)) != 0 ||
            (rc = wr_be32(w, tsdb_crc32c(0, w->ent.data, w->ent.len), err)) != 0)
            return rc;
    }
    for (size_t i = 0; i < nlabels; i++)
        if (count_pair(w, w->cur[2 * i], w->cur[2 * i + 1])) {
            w->failed = true;
            return mp_err_set(err, MP_ENOMEM, "index writer: out of memory");
        }
    uint32_t *t = w->prev;
    size_t tcap = w->prev_cap;
    w->prev = w->cur;
    w->prev_cap = w->cur_cap;
    w->cur = t;
    w->cur_cap = tcap;
    w->nprev = 2 * nlabels;
    if (nchunks)
        w->last_chunk_ref = chunks[nchunks - 1].ref;
    w->nseries++;
    if (ref)
        *ref = sref;
    return 0;
}

int tsdb_index_writer_add_series_ls(struct tsdb_index_writer *w, const struct mp_labels *ls,
                                    const struct tsdb_index_chunk_meta *chunks, size_t nchunks,
                                    uint64_t *ref, struct mp_err *err)
{
    size_t n = mp_labels_count(ls);
    if (reserve((void **)&w->ls_tmp, &w->ls_cap, n, sizeof *w->ls_tmp))
        return mp_err_set(err, MP_ENOMEM, "index writer: out of memory");
    for (size_t i = 0; i < n; i++)
        w->ls_tmp[i] = mp_labels_at(ls, i);
    return tsdb_index_writer_add_series(w, w->ls_tmp, n, chunks, nchunks, ref, err);
}

static int pair_cmp(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    if (x->name != y->name)
        return x->name < y->name ? -1 : 1;
    return x->value < y->value ? -1 : x->value > y->value;
}

/* At close: sorts the pairs and gives each its slice of one refs array, after the first base
 * slots, by setting its fill cursor; *refs gets the array. */
static int lay_out_postings(struct tsdb_index_writer *w, size_t base, uint32_t **refs,
                            struct mp_err *err)
{
    if (w->npairs)
        qsort(w->pairs, w->npairs, sizeof *w->pairs, pair_cmp);
    if (w->npairs && rehash(w, w->nslots))
        return mp_err_set(err, MP_ENOMEM, "index writer: out of memory");
    size_t total = base;
    for (size_t i = 0; i < w->npairs; i++) {
        w->pairs[i].fill = total;
        total += w->pairs[i].count;
    }
    *refs = total > SIZE_MAX / 4 ? NULL : mp_malloc(total ? total * sizeof **refs : 1);
    if (!*refs)
        return mp_err_set(err, MP_ENOMEM, "index writer: out of memory for %zu postings", total);
    return 0;
}

/* Appends ref to the list of every label pair of the series entry at c (uvarint count, then
 * name and value symbol ordinals); false if the entry is damaged or names an uncounted pair. */
static bool fill_entry(struct tsdb_index_writer *w, struct cur *c, uint32_t *refs, uint32_t ref)
{
    uint64_t nl = cur_uvarint(c);
    for (uint64_t i = 0; i < nl && !c->bad; i++) {
        uint32_t name = (uint32_t)cur_uvarint(c), value = (uint32_t)cur_uvarint(c);
        uint32_t slot = w->slots[slot_find(w, name, value)];
        if (slot == 0)
            c->bad = true;
        else
            refs[w->pairs[slot - 1].fill++] = ref;
    }
    return !c->bad;
}

/* Reads the series section back from the file and fills refs: the all-postings list (the first
 * nseries slots) and every pair's list at its fill cursor, ascending since entries are. */
static int fill_postings(struct tsdb_index_writer *w, uint32_t *refs, struct mp_err *err)
{
    uint64_t lo = w->toc[TOC_SERIES], hi = w->toc[TOC_LABEL_INDICES];
    if (w->nseries == 0)
        return 0;
    uint8_t *map = mmap(NULL, (size_t)hi, PROT_READ, MAP_SHARED, w->fd, 0);
    if (map == MAP_FAILED)
        return io_fail(w, "mmap", err);
    size_t k = 0;
    uint64_t off = lo;
    bool damaged = false;
    while (k < w->nseries && !damaged) {
        off = (off + 15) & ~(uint64_t)15;
        struct cur c = {map + off, map + hi, false};
        uint64_t len = cur_uvarint(&c);
        damaged = c.bad || len > cur_left(&c) || cur_left(&c) - len < 4;
        if (damaged)
            break;
        const uint8_t *next = c.p + len + 4;
        refs[k++] = (uint32_t)(off / 16);
        damaged = !fill_entry(w, &c, refs, (uint32_t)(off / 16)); /* the last entry too */
        off = (uint64_t)(next - map);
    }
    munmap(map, (size_t)hi);
    if (damaged) {
        w->failed = true;
        return mp_err_set(err, MP_EIO, "index writer: series section reads back damaged");
    }
    return 0;
}

static int wr_refs(struct tsdb_index_writer *w, const uint32_t *refs, size_t n, struct mp_err *err)
{
    uint8_t b[4096];
    for (size_t i = 0; i < n;) {
        size_t k = 0;
        for (; i < n && k < sizeof b; i++, k += 4)
            tsdb_put_be32(b + k, refs[i]);
        int rc = wr(w, b, k, err);
        if (rc)
            return rc;
    }
    return 0;
}

static int write_list(struct tsdb_index_writer *w, const uint32_t *refs, size_t n,
                      struct mp_err *err)
{
    uint64_t start;
    int rc = pad(w, 4, err);
    if (!rc)
        rc = sec_begin(w, &start, err);
    if (!rc)
        rc = wr_be32(w, (uint32_t)n, err);
    if (!rc)
        rc = wr_refs(w, refs, n, err);
    return rc ? rc : sec_end(w, start, "postings list", err);
}

/* Label indices (one per name: the sorted value ordinals), recording where each starts. */
static int write_label_indices(struct tsdb_index_writer *w, uint64_t *name_off, struct mp_err *err)
{
    size_t k = 0;
    for (size_t i = 0; i < w->npairs;) {
        size_t j = i;
        while (j < w->npairs && w->pairs[j].name == w->pairs[i].name)
            j++;
        uint64_t start;
        int rc = pad(w, 4, err);
        name_off[k++] = w->pos;
        if (!rc)
            rc = sec_begin(w, &start, err);
        if (!rc)
            rc = wr_be32(w, 1, err);
        if (!rc)
            rc = wr_be32(w, (uint32_t)(j - i), err);
        for (size_t v = i; v < j && !rc; v++)
            rc = wr_be32(w, w->pairs[v].value, err);
        if (!rc)
            rc = sec_end(w, start, "label index", err);
        if (rc)
            return rc;
        i = j;
    }
    return 0;
}

static int write_label_table(struct tsdb_index_writer *w, const uint64_t *name_off, size_t nnames,
                             struct mp_err *err)
{
    uint64_t start;
    int rc = sec_begin(w, &start, err);
    if (!rc)
        rc = wr_be32(w, (uint32_t)nnames, err);
    for (size_t i = 0, k = 0; i < w->npairs && !rc; i++) {
        if (i > 0 && w->pairs[i].name == w->pairs[i - 1].name)
            continue;
        uint8_t one = 1;
        rc = wr(w, &one, 1, err);
        if (!rc)
            rc = wr_str(w, wsym(w, w->pairs[i].name), err);
        if (!rc)
            rc = wr_uvarint(w, name_off[k++], err);
    }
    return rc ? rc : sec_end(w, start, "label offset table", err);
}

static int pot_entry(struct tsdb_index_writer *w, struct mp_str name, struct mp_str value,
                     uint64_t off, struct mp_err *err)
{
    uint8_t two = 2;
    int rc = wr(w, &two, 1, err);
    if (!rc)
        rc = wr_str(w, name, err);
    if (!rc)
        rc = wr_str(w, value, err);
    return rc ? rc : wr_uvarint(w, off, err);
}

/* Postings offset table; list offsets follow from the list sizes (12 + 4 n bytes each). */
static int write_pot(struct tsdb_index_writer *w, uint64_t postings_start, struct mp_err *err)
{
    uint64_t start;
    int rc = sec_begin(w, &start, err);
    if (!rc)
        rc = wr_be32(w, (uint32_t)(w->npairs + 1), err);
    if (!rc)
        rc = pot_entry(w, MP_STR_LIT(""), MP_STR_LIT(""), postings_start, err);
    uint64_t off = postings_start + 12 + 4 * (uint64_t)w->nseries;
    for (size_t i = 0; i < w->npairs && !rc; i++) {
        rc = pot_entry(w, wsym(w, w->pairs[i].name), wsym(w, w->pairs[i].value), off, err);
        off += 12 + 4 * (uint64_t)w->pairs[i].count;
    }
    return rc ? rc : sec_end(w, start, "postings offset table", err);
}

static int write_toc(struct tsdb_index_writer *w, struct mp_err *err)
{
    uint8_t b[TSDB_INDEX_TOC_LEN];
    for (int i = 0; i < 6; i++) {
        tsdb_put_be32(b + 8 * i, (uint32_t)(w->toc[i] >> 32));
        tsdb_put_be32(b + 8 * i + 4, (uint32_t)w->toc[i]);
    }
    tsdb_put_be32(b + 48, tsdb_crc32c(0, b, 48));
    return wr(w, b, sizeof b, err);
}

static int finish(struct tsdb_index_writer *w, struct mp_err *err)
{
    int rc = 0;
    if (!w->in_series && (rc = finish_symbols(w, err)) != 0)
        return rc;
    w->toc[TOC_LABEL_INDICES] = w->pos;
    if ((rc = flush(w, err)) != 0)
        return rc;
    uint32_t *refs;
    if ((rc = lay_out_postings(w, w->nseries, &refs, err)) != 0)
        return rc;
    size_t nnames = 0;
    for (size_t i = 0; i < w->npairs; i++)
        nnames += i == 0 || w->pairs[i].name != w->pairs[i - 1].name;
    uint64_t *name_off = mp_malloc((nnames ? nnames : 1) * sizeof *name_off);
    if (!name_off) {
        rc = mp_err_set(err, MP_ENOMEM, "index writer: out of memory");
        goto out;
    }
    if ((rc = fill_postings(w, refs, err)) != 0 ||
        (rc = write_label_indices(w, name_off, err)) != 0)
        goto out;
    w->toc[TOC_POSTINGS] = w->pos;
    if ((rc = pad(w, 4, err)) != 0)
        goto out;
    uint64_t postings_start = w->pos;
    if ((rc = write_list(w, refs, w->nseries, err)) != 0)
        goto out;
    for (size_t i = 0, at = w->nseries; i < w->npairs; at += w->pairs[i++].count)
        if ((rc = write_list(w, refs + at, w->pairs[i].count, err)) != 0)
            goto out;
    w->toc[TOC_LABEL_TABLE] = w->pos;
    if ((rc = write_label_table(w, name_off, nnames, err)) != 0)
        goto out;
    w->toc[TOC_POT] = w->pos;
    if ((rc = write_pot(w, postings_start, err)) != 0 || (rc = write_toc(w, err)) != 0 ||
        (rc = flush(w, err)) != 0)
        goto out;
    if (fsync(w->fd) != 0)
        rc = io_fail(w, "fsync", err);
out:
    mp_free(refs);
    mp_free(name_off);
    return rc;
}

/* ---- compact format: close ------------------------------------------------------------- */

/* Decompresses the zstd frame src[0..clen), which must hold exactly rlen bytes, into *buf
 * (grown as needed; *d created on first use). 0, MP_ENOMEM, or 1 for a damaged frame. */
static int unzstd(ZSTD_DCtx **d, const uint8_t *src, size_t clen, size_t rlen, uint8_t **buf,
                  size_t *cap)
{
    if (!*d && !(*d = ZSTD_createDCtx()))
        return MP_ENOMEM;
    if (rlen > *cap || !*buf) {
        uint8_t *b = mp_realloc(*buf, rlen ? rlen : 1);
        if (!b)
            return MP_ENOMEM;
        *buf = b;
        *cap = rlen ? rlen : 1;
    }
    size_t got = ZSTD_decompressDCtx(*d, *buf, rlen, src, clen);
    return ZSTD_isError(got) || got != rlen ? 1 : 0;
}

/* Reads the series frames back from the file and fills every pair's list in refs at its fill
 * cursor (the all-postings list is implicit in this format). */
static int fill_postings_compact(struct tsdb_index_writer *w, uint32_t *refs, struct mp_err *err)
{
    uint64_t lo = w->toc[CT_SFRAMES], hi = w->toc[CT_PFRAMES];
    if (w->nseries == 0)
        return 0;
    uint8_t *map = mmap(NULL, (size_t)hi, PROT_READ, MAP_SHARED, w->fd, 0);
    if (map == MAP_FAILED)
        return io_fail(w, "mmap", err);
    ZSTD_DCtx *d = NULL;
    uint8_t *buf = NULL;
    size_t cap = 0, k = 0;
    uint64_t off = lo;
    struct cur t = {(const uint8_t *)w->stab.data, (const uint8_t *)w->stab.data + w->stab.len,
                    false};
    int rc = 0;
    for (size_t f = 0; f < w->nsframes && !rc; f++) {
        uint64_t n = cur_uvarint(&t), clen = cur_uvarint(&t), rlen = cur_uvarint(&t);
        if (t.bad || clen > hi - off || (rc = unzstd(&d, map + off, clen, rlen, &buf, &cap)))
            break;
        off += clen;
        struct cur c = {buf, buf + rlen, false};
        for (uint64_t i = 0; i < n && !c.bad; i++, k++) {
            uint64_t len = cur_uvarint(&c);
            if (c.bad || len > cur_left(&c)) {
                c.bad = true;
                break;
            }
            struct cur e = {c.p, c.p + len, false};
            c.p += len;
            c.bad = !fill_entry(w, &e, refs, (uint32_t)k + 1);
        }
        if (c.bad)
            rc = 1;
    }
    munmap(map, (size_t)hi);
    ZSTD_freeDCtx(d);
    mp_free(buf);
    if (rc == MP_ENOMEM)
        return mp_err_set(err, MP_ENOMEM, "index writer: out of memory");
    if (rc || k != w->nseries) {
        w->failed = true;
        return mp_err_set(err, MP_EIO, "index writer: series frames read back damaged");
    }
    return 0;
}

/* One postings list, refs ascending: uvarint n | {uvarint gap, uvarint run - 1}* where a run
 * of consecutive refs starts at previous run's last + 1 + gap (the first at 1 + gap). */
static int encode_runs(struct mp_buf *b, const uint32_t *refs, size_t n)
{
    uint8_t x[20];
    int rc = mp_buf_append(b, x, tsdb_put_uvarint(x, n));
    uint64_t prev = 0;
    for (size_t i = 0; i < n && !rc;) {
        size_t j = i;
        while (j + 1 < n && refs[j + 1] == refs[j] + 1)
            j++;
        size_t k = tsdb_put_uvarint(x, refs[i] - prev - 1);
        k += tsdb_put_uvarint(x + k, j - i);
        rc = mp_buf_append(b, x, k);
        prev = refs[j];
        i = j + 1;
    }
    return rc;
}

static int flush_pframe(struct tsdb_index_writer *w, struct mp_buf *raw, struct mp_buf *ptab,
                        size_t *npf, struct mp_err *err)
{
    if (raw->len == 0)
        return 0;
    if (raw->len > PFRAME_MAX) {
        w->failed = true;
        return mp_err_set(err, MP_ELIMIT, "index writer: postings frame of %zu bytes", raw->len);
    }
    size_t clen;
    int rc = zcompress(w, raw->data, raw->len, &clen, err);
    if (!rc)
        rc = wr(w, w->zbuf, clen, err);
    if (rc)
        return rc;
    uint8_t x[20];
    size_t k = tsdb_put_uvarint(x, clen);
    k += tsdb_put_uvarint(x + k, raw->len);
    if (mp_buf_append(ptab, x, k)) {
        w->failed = true;
        return mp_err_set(err, MP_ENOMEM, "index writer: out of memory");
    }
    (*npf)++;
    mp_buf_reset(raw);
    return 0;
}

/* Postings frames, and the pairs table body: {uvarint name, uvarint #values,
 * {uvarint value - previous value (first: value), uvarint raw list length}*}*. */
static int write_postings_compact(struct tsdb_index_writer *w, const uint32_t *refs,
                                  struct mp_buf *pairs, struct mp_buf *ptab, size_t *npf,
                                  size_t *nnames, struct mp_err *err)
{
    struct mp_buf raw;
    mp_buf_init(&raw, 0);
    int rc = 0;
    size_t at = 0;
    for (size_t i = 0; i < w->npairs && !rc;) {
        size_t j = i;
        while (j < w->npairs && w->pairs[j].name == w->pairs[i].name)
            j++;
        uint8_t x[20];
        size_t k = tsdb_put_uvarint(x, w->pairs[i].name);
        k += tsdb_put_uvarint(x + k, j - i);
        rc = mp_buf_append(pairs, x, k) ? MP_ENOMEM : 0;
        (*nnames)++;
        uint32_t prevv = 0;
        for (; i < j && !rc; i++) {
            size_t before = raw.len;
            if (encode_runs(&raw, refs + at, w->pairs[i].count)) {
                rc = MP_ENOMEM;
                break;
            }
            at += w->pairs[i].count;
            k = tsdb_put_uvarint(x, w->pairs[i].value - prevv);
            k += tsdb_put_uvarint(x + k, raw.len - before);
            prevv = w->pairs[i].value;
            if (mp_buf_append(pairs, x, k))
                rc = MP_ENOMEM;
            else if (raw.len >= PFRAME_TARGET)
                rc = flush_pframe(w, &raw, ptab, npf, err);
        }
    }
    if (!rc)
        rc = flush_pframe(w, &raw, ptab, npf, err);
    mp_buf_fini(&raw);
    if (rc == MP_ENOMEM) {
        w->failed = true;
        return mp_err_set(err, MP_ENOMEM, "index writer: out of memory");
    }
    return rc;
}

/* A CRC-framed section of "uvarint n | body". */
static int write_table(struct tsdb_index_writer *w, size_t n, const struct mp_buf *body,
                       const char *what, struct mp_err *err)
{
    uint64_t start;
    int rc = sec_begin(w, &start, err);
    if (!rc)
        rc = wr_uvarint(w, n, err);
    if (!rc)
        rc = wr(w, body->data, body->len, err);
    return rc ? rc : sec_end(w, start, what, err);
}

static int finish_compact(struct tsdb_index_writer *w, struct mp_err *err)
{
    int rc = 0;
    if (!w->in_series && (rc = finish_symbols(w, err)) != 0)
        return rc;
    if ((rc = flush_sframe(w, err)) != 0)
        return rc;
    w->toc[CT_PFRAMES] = w->pos;
    if ((rc = flush(w, err)) != 0)
        return rc;
    uint32_t *refs;
    if ((rc = lay_out_postings(w, 0, &refs, err)) != 0)
        return rc;
    size_t npf = 0, nnames = 0;
    struct mp_buf pairs, ptab;
    mp_buf_init(&pairs, 0);
    mp_buf_init(&ptab, 0);
    if ((rc = fill_postings_compact(w, refs, err)) != 0 ||
        (rc = write_postings_compact(w, refs, &pairs, &ptab, &npf, &nnames, err)) != 0)
        goto out;
    w->toc[CT_STAB] = w->pos;
    if ((rc = write_table(w, w->nsframes, &w->stab, "series frame table", err)) != 0)
        goto out;
    w->toc[CT_PTAB] = w->pos;
    if ((rc = write_table(w, npf, &ptab, "postings frame table", err)) != 0)
        goto out;
    w->toc[CT_PAIRS] = w->pos;
    if ((rc = write_table(w, nnames, &pairs, "pairs table", err)) != 0)
        goto out;
    w->toc[CT_NSERIES] = w->nseries;
    uint8_t b[TSDB_INDEX_COMPACT_TOC_LEN];
    for (int i = 0; i < CT_N; i++)
        tsdb_put_be64(b + 8 * i, w->toc[i]);
    tsdb_put_be32(b + 8 * CT_N, tsdb_crc32c(0, b, 8 * CT_N));
    if ((rc = wr(w, b, sizeof b, err)) != 0 || (rc = flush(w, err)) != 0)
        goto out;
    if (fsync(w->fd) != 0)
        rc = io_fail(w, "fsync", err);
out:
    mp_free(refs);
    mp_buf_fini(&pairs);
    mp_buf_fini(&ptab);
    return rc;
}

int tsdb_index_writer_close(struct tsdb_index_writer *w, struct mp_err *err)
{
    int rc = w->failed    ? mp_err_set(err, MP_EINVAL, "index writer: an earlier write failed")
             : w->compact ? finish_compact(w, err)
                          : finish(w, err);
    int fd = w->fd;
    w->fd = -1;
    if (close(fd) != 0 && rc == 0)
        rc = mp_err_set(err, MP_EIO, "index writer: close: %s", strerror(errno));
    tsdb_index_writer_abort(w);
    return rc;
}

/* ==== reader ================================================================================ */

struct pname {
    struct mp_str name;
    size_t first, nsamp; /* its samples */
    uint64_t end;        /* file offset just after its last postings offset table entry */
};

struct psamp {
    struct mp_str value;
    uint64_t pos;        /* file offset of the entry */
    uint64_t raw;        /* compact: raw postings offset of its list */
    uint32_t vord, prev; /* compact: its value's ordinal, and the previous entry's (0 first) */
};

/* compact: a zstd frame of series entries or of postings lists */
struct zframe {
    uint64_t off;
    uint64_t first; /* series: ordinal of its first series; postings: raw offset of its start */
    uint32_t n;     /* series: entries in it */
    uint32_t clen, rlen;
};

struct tsdb_index_reader {
    const uint8_t *b;
    size_t len;
    bool mapped;
    bool compact;
    uint64_t toc[CT_N];
    struct zframe *sf;
    size_t nsf;
    struct zframe *pf;
    size_t npf;
    uint64_t praw;    /* raw postings bytes */
    uint32_t nseries; /* compact */
    uint64_t limit;   /* start of the TOC: every section lies below */
    const uint8_t *sym;
    size_t sym_len;
    uint32_t *sym_off;
    uint32_t nsyms;
    /* symbol i interned (one reference held until close), filled on first use; the array
     * itself is allocated by the first tsdb_index_series_labels */
    _Atomic(const struct mp_istr *) *_Atomic isym;
    _Atomic uint32_t lc_owner; /* label-set cache owner (lcache.h), 0 until first used */
    struct pname *names;
    size_t nnames, names_cap;
    struct psamp *samps;
    size_t nsamps, samps_cap;
    /* offsets + 1 of the long postings lists whose CRC matched once (an open-addressing set of
     * VERIFIED_SLOTS, allocated by the first such read): the file is immutable, so a
     * dashboard's direction="inbound" (megabytes) is not checksummed again at every query */
    _Atomic(_Atomic uint64_t *) verified;
};

static int perr(const struct tsdb_index_reader *r, const char *what, const uint8_t *at,
                const char *why, struct mp_err *err)
{
    return mp_err_set(err, MP_EPARSE, "index: %s at offset %zu: %s", what, (size_t)(at - r->b),
                      why);
}

/* A CRC-framed section at off: BE32 len | body | BE32 CRC32C(body). check_crc false: the
 * caller knows the CRC matched before. */
static int frame_crc(const struct tsdb_index_reader *r, uint64_t off, const char *what,
                     bool check_crc, struct cur *body, struct mp_err *err)
{
    if (off < HDR_LEN || off > r->limit || r->limit - off < 8)
        return mp_err_set(err, MP_EPARSE, "index: %s at offset %llu: outside the file", what,
                          (unsigned long long)off);
    const uint8_t *p = r->b + off;
    uint32_t l = tsdb_get_be32(p);
    if (l > r->limit - off - 8)
        return perr(r, what, p, "length runs past the end", err);
    if (check_crc && tsdb_crc32c(0, p + 4, l) != tsdb_get_be32(p + 4 + l))
        return perr(r, what, p, "CRC mismatch", err);
    *body = (struct cur){p + 4, p + 4 + l, false};
    return 0;
}

static int frame(const struct tsdb_index_reader *r, uint64_t off, const char *what,
                 struct cur *body, struct mp_err *err)
{
    return frame_crc(r, off, what, true, body, err);
}

#define VERIFIED_SLOTS 1024 /* a power of two; a full set only means checking again */
#define VERIFIED_PROBES 16
#define VERIFY_ONCE_BYTES 4096 /* shorter lists are checked at every read: it costs less */

static size_t verified_slot(uint64_t off, size_t probe)
{
    return ((size_t)((off * UINT64_C(0x9E3779B97F4A7C15)) >> 40) + probe) & (VERIFIED_SLOTS - 1);
}

static bool verified_has(const struct tsdb_index_reader *r, uint64_t off)
{
    _Atomic uint64_t *set = atomic_load_explicit(&r->verified, memory_order_acquire);
    for (size_t i = 0; set && i < VERIFIED_PROBES; i++) {
        uint64_t v = atomic_load_explicit(&set[verified_slot(off, i)], memory_order_relaxed);
        if (v == off + 1)
            return true;
        if (v == 0)
            return false;
    }
    return false;
}

/* Best effort: out of memory or a crowded probe sequence leaves off unrecorded. */
static void verified_add(const struct tsdb_index_reader *cr, uint64_t off)
{
    struct tsdb_index_reader *r = (struct tsdb_index_reader *)cr; /* the set is not content */
    _Atomic uint64_t *set = atomic_load_explicit(&r->verified, memory_order_acquire);
    if (!set) {
        _Atomic uint64_t *fresh = mp_calloc(VERIFIED_SLOTS, sizeof *fresh);
        if (!fresh)
            return;
        if (atomic_compare_exchange_strong_explicit(&r->verified, &set, fresh, memory_order_acq_rel,
                                                    memory_order_acquire))
            set = fresh;
        else
            mp_free((void *)fresh);
    }
    for (size_t i = 0; i < VERIFIED_PROBES; i++) {
        uint64_t v = 0;
        if (atomic_compare_exchange_strong_explicit(&set[verified_slot(off, i)], &v, off + 1,
                                                    memory_order_relaxed, memory_order_relaxed) ||
            v == off + 1)
            return;
    }
}

static struct mp_str rsym(const struct tsdb_index_reader *r, uint32_t i)
{
    struct cur c = {r->sym + r->sym_off[i], r->sym + r->sym_len, false};
    return cur_str(&c);
}

static int load_symbols(struct tsdb_index_reader *r, struct mp_err *err)
{
    struct cur c;
    int rc = frame(r, r->toc[TOC_SYMBOLS], "symbol table", &c, err);
    if (rc)
        return rc;
    const uint8_t *start = c.p;
    uint32_t n = cur_be32(&c);
    if (c.bad || n > cur_left(&c))
        return perr(r, "symbol table", start, "symbol count larger than the table", err);
    r->sym = c.p;
    r->sym_len = cur_left(&c);
    r->sym_off = mp_malloc((n ? n : 1) * sizeof *r->sym_off);
    if (!r->sym_off)
        return mp_err_set(err, MP_ENOMEM, "index: out of memory for %u symbols", n);
    struct mp_str prev = {"", 0};
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *at = c.p;
        r->sym_off[i] = (uint32_t)(at - r->sym);
        struct mp_str s = cur_str(&c);
        if (c.bad)
            return perr(r, "symbol table", at, "truncated symbol", err);
        if (i > 0 && mp_str_cmp(prev, s) >= 0)
            return perr(r, "symbol table", at, "symbols not sorted and unique", err);
        prev = s;
    }
    if (cur_left(&c) != 0)
        return perr(r, "symbol table", c.p, "bytes after the last symbol", err);
    r->nsyms = n;
    return 0;
}

static int cmp_pair(struct mp_str n1, struct mp_str v1, struct mp_str n2, struct mp_str v2)
{
    int c = mp_str_cmp(n1, n2);
    return c ? c : mp_str_cmp(v1, v2);
}

/* One postings offset table entry: 2 | name | value | uvarint offset. */
static bool pot_next(struct cur *c, struct mp_str *name, struct mp_str *value, uint64_t *off)
{
    if (cur_uvarint(c) != 2)
        c->bad = true;
    *name = cur_str(c);
    *value = cur_str(c);
    *off = cur_uvarint(c);
    return !c->bad;
}

static int load_pot(struct tsdb_index_reader *r, struct mp_err *err)
{
    struct cur c;
    int rc = frame(r, r->toc[TOC_POT], "postings offset table", &c, err);
    if (rc)
        return rc;
    uint32_t n = cur_be32(&c);
    struct mp_str pn = {"", 0}, pv = {"", 0};
    size_t in_name = 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *at = c.p;
        struct mp_str name, value;
        uint64_t off;
        if (!pot_next(&c, &name, &value, &off))
            return perr(r, "postings offset table", at, "damaged entry", err);
        if (off >= r->limit)
            return perr(r, "postings offset table", at, "offset outside the file", err);
        if (i > 0 && cmp_pair(pn, pv, name, value) >= 0)
            return perr(r, "postings offset table", at, "entries not sorted and unique", err);
        if (i == 0 || !mp_str_eq(name, pn)) {
            if (reserve((void **)&r->names, &r->names_cap, r->nnames + 1, sizeof *r->names))
                return mp_err_set(err, MP_ENOMEM, "index: out of memory");
            r->names[r->nnames++] = (struct pname){name, r->nsamps, 0, 0};
            in_name = 0;
        }
        struct pname *pnm = &r->names[r->nnames - 1];
        if (in_name++ % POT_SAMPLE == 0) {
            if (reserve((void **)&r->samps, &r->samps_cap, r->nsamps + 1, sizeof *r->samps))
                return mp_err_set(err, MP_ENOMEM, "index: out of memory");
            r->samps[r->nsamps++] = (struct psamp){value, (uint64_t)(at - r->b), 0, 0, 0};
            pnm->nsamp++;
        }
        pnm->end = (uint64_t)(c.p - r->b);
        pn = name;
        pv = value;
    }
    if (c.bad || cur_left(&c) != 0)
        return perr(r, "postings offset table", c.p, "entry count does not match", err);
    return 0;
}

/* ---- compact format: open --------------------------------------------------------------- */

/* A frame table (series: {n, clen, rlen}*, postings: {clen, rlen}*) whose frames tile
 * [start, end) of the file; f[i].first is the first series ordinal (series) or raw postings
 * offset (postings) of frame i, *total the sum of their series counts or raw sizes. */
static int load_ftab(struct tsdb_index_reader *r, int which, bool series, uint64_t start,
                     uint64_t end, struct zframe **out, size_t *nout, uint64_t *total,
                     struct mp_err *err)
{
    const char *what = series ? "series frame table" : "postings frame table";
    struct cur c;
    int rc = frame(r, r->toc[which], what, &c, err);
    if (rc)
        return rc;
    const uint8_t *at = c.p;
    uint64_t n = cur_uvarint(&c);
    if (c.bad || n > cur_left(&c) / (series ? 3 : 2))
        return perr(r, what, at, "frame count larger than the table", err);
    struct zframe *f = mp_malloc((n ? n : 1) * sizeof *f);
    if (!f)
        return mp_err_set(err, MP_ENOMEM, "index: out of memory");
    *out = f;
    uint64_t off = start, sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        at = c.p;
        uint64_t k = series ? cur_uvarint(&c) : 0, clen = cur_uvarint(&c), rlen = cur_uvarint(&c);
        bool bad = series ? k == 0 || k > r->nseries - sum || rlen > SFRAME_MAX || rlen / 2 < k
                          : rlen == 0 || rlen > PFRAME_MAX;
        if (c.bad || bad || clen > end - off)
            return perr(r, what, at, "bad frame entry", err);
        f[i] = (struct zframe){off, sum, (uint32_t)k, (uint32_t)clen, (uint32_t)rlen};
        off += clen;
        sum += series ? k : rlen;
    }
    *nout = (size_t)n;
    *total = sum;
    if (cur_left(&c) != 0 || off != end || (series && sum != r->nseries))
        return perr(r, what, c.p, "frames do not cover their section", err);
    return 0;
}

static int push_name(struct tsdb_index_reader *r, struct mp_str name, struct mp_err *err)
{
    if (reserve((void **)&r->names, &r->names_cap, r->nnames + 1, sizeof *r->names))
        return mp_err_set(err, MP_ENOMEM, "index: out of memory");
    r->names[r->nnames++] = (struct pname){name, r->nsamps, 0, 0};
    return 0;
}

static int push_samp(struct tsdb_index_reader *r, struct psamp s, struct mp_err *err)
{
    if (reserve((void **)&r->samps, &r->samps_cap, r->nsamps + 1, sizeof *r->samps))
        return mp_err_set(err, MP_ENOMEM, "index: out of memory");
    r->samps[r->nsamps++] = s;
    r->names[r->nnames - 1].nsamp++;
    return 0;
}

static int load_pairs(struct tsdb_index_reader *r, struct mp_err *err)
{
    struct cur c;
    int rc = frame(r, r->toc[CT_PAIRS], "pairs table", &c, err);
    if (rc)
        return rc;
    uint64_t nn = cur_uvarint(&c), raw = 0, prevname = 0;
    if (c.bad)
        return perr(r, "pairs table", c.p, "truncated", err);
    for (uint64_t i = 0; i < nn; i++) {
        const uint8_t *at = c.p;
        uint64_t nord = cur_uvarint(&c), cnt = cur_uvarint(&c);
        if (c.bad || nord >= r->nsyms || (i > 0 && nord <= prevname) || cnt == 0 ||
            cnt > cur_left(&c) / 2)
            return perr(r, "pairs table", at, "bad name entry", err);
        if ((rc = push_name(r, rsym(r, (uint32_t)nord), err)) != 0)
            return rc;
        uint64_t prevv = 0;
        for (uint64_t j = 0; j < cnt; j++) {
            at = c.p;
            uint64_t d = cur_uvarint(&c), len = cur_uvarint(&c);
            if (c.bad || d >= r->nsyms || prevv + d >= r->nsyms || (j > 0 && d == 0) ||
                len > r->praw - raw)
                return perr(r, "pairs table", at, "bad value entry", err);
            uint64_t v = prevv + d;
            if (j % POT_SAMPLE == 0 &&
                (rc = push_samp(r,
                                (struct psamp){rsym(r, (uint32_t)v), (uint64_t)(at - r->b), raw,
                                               (uint32_t)v, (uint32_t)prevv},
                                err)) != 0)
                return rc;
            raw += len;
            prevv = v;
        }
        r->names[r->nnames - 1].end = (uint64_t)(c.p - r->b);
        prevname = nord;
    }
    if (cur_left(&c) != 0)
        return perr(r, "pairs table", c.p, "bytes after the last entry", err);
    return 0;
}

static int parse_compact(struct tsdb_index_reader *r, struct mp_err *err)
{
    if (r->len < HDR_LEN + TSDB_INDEX_COMPACT_TOC_LEN)
        return mp_err_set(err, MP_EPARSE, "index: file of %zu bytes is too short", r->len);
    if (r->b[4] != TSDB_INDEX_COMPACT_V1)
        return mp_err_set(err, MP_EPARSE, "index: unsupported compact version %u at offset 4",
                          r->b[4]);
    r->compact = true;
    r->limit = r->len - TSDB_INDEX_COMPACT_TOC_LEN;
    const uint8_t *toc = r->b + r->limit;
    if (tsdb_crc32c(0, toc, 8 * CT_N) != tsdb_get_be32(toc + 8 * CT_N))
        return perr(r, "TOC", toc, "CRC mismatch", err);
    for (int i = 0; i < CT_N; i++)
        r->toc[i] = tsdb_get_be64(toc + 8 * i);
    for (int i = 0; i < CT_NSERIES; i++)
        if (r->toc[i] < HDR_LEN || r->toc[i] > r->limit)
            return perr(r, "TOC", toc + 8 * i, "section offset outside the file", err);
    if (r->toc[CT_NSERIES] > UINT32_MAX - 2 || r->toc[CT_SFRAMES] > r->toc[CT_PFRAMES] ||
        r->toc[CT_PFRAMES] > r->toc[CT_STAB])
        return perr(r, "TOC", toc, "sections out of order", err);
    r->nseries = (uint32_t)r->toc[CT_NSERIES];
    uint64_t nser;
    int rc = load_symbols(r, err);
    if (!rc)
        rc = load_ftab(r, CT_STAB, true, r->toc[CT_SFRAMES], r->toc[CT_PFRAMES], &r->sf, &r->nsf,
                       &nser, err);
    if (!rc)
        rc = load_ftab(r, CT_PTAB, false, r->toc[CT_PFRAMES], r->toc[CT_STAB], &r->pf, &r->npf,
                       &r->praw, err);
    return rc ? rc : load_pairs(r, err);
}

static int parse(struct tsdb_index_reader *r, struct mp_err *err)
{
    if (r->len >= HDR_LEN && tsdb_get_be32(r->b) == TSDB_INDEX_COMPACT_MAGIC)
        return parse_compact(r, err);
    if (r->len < HDR_LEN + TSDB_INDEX_TOC_LEN)
        return mp_err_set(err, MP_EPARSE, "index: file of %zu bytes is too short", r->len);
    if (tsdb_get_be32(r->b) != TSDB_INDEX_MAGIC)
        return mp_err_set(err, MP_EPARSE, "index: bad magic %08x at offset 0", tsdb_get_be32(r->b));
    if (r->b[4] != TSDB_INDEX_FORMAT_V2)
        return mp_err_set(err, MP_EPARSE, "index: unsupported format version %u at offset 4",
                          r->b[4]);
    r->limit = r->len - TSDB_INDEX_TOC_LEN;
    const uint8_t *toc = r->b + r->limit;
    if (tsdb_crc32c(0, toc, 48) != tsdb_get_be32(toc + 48))
        return perr(r, "TOC", toc, "CRC mismatch", err);
    for (int i = 0; i < 6; i++) {
        r->toc[i] = get_be64(toc + 8 * i);
        if (r->toc[i] != 0 && (r->toc[i] < HDR_LEN || r->toc[i] > r->limit))
            return perr(r, "TOC", toc + 8 * i, "section offset outside the file", err);
    }
    int rc = 0;
    if (r->toc[TOC_SYMBOLS] && (rc = load_symbols(r, err)) != 0)
        return rc;
    if (r->toc[TOC_POT] && (rc = load_pot(r, err)) != 0)
        return rc;
    return 0;
}

int tsdb_index_reader_open_mem(const uint8_t *data, size_t len, struct tsdb_index_reader **out,
                               struct mp_err *err)
{
    struct tsdb_index_reader *r = mp_xcalloc(1, sizeof *r);
    r->b = data;
    r->len = len;
    int rc = parse(r, err);
    if (rc) {
        tsdb_index_reader_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

int tsdb_index_reader_open(const char *path, struct tsdb_index_reader **out, struct mp_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mp_err_set(err, MP_EIO, "index: open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = mp_err_set(err, MP_EIO, "index: stat %s: %s", path, strerror(errno));
        close(fd);
        return rc;
    }
    if ((uint64_t)st.st_size < HDR_LEN + TSDB_INDEX_TOC_LEN) {
        close(fd);
        return mp_err_set(err, MP_EPARSE, "index: %s: file of %lld bytes is too short", path,
                          (long long)st.st_size);
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    int saved = errno;
    close(fd);
    if (m == MAP_FAILED)
        return mp_err_set(err, MP_EIO, "index: mmap %s: %s", path, strerror(saved));
    struct tsdb_index_reader *r = mp_xcalloc(1, sizeof *r);
    r->b = m;
    r->len = (size_t)st.st_size;
    r->mapped = true;
    int rc = parse(r, err);
    if (rc) {
        mp_err_wrap(err, "%s", path);
        tsdb_index_reader_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

void tsdb_index_reader_close(struct tsdb_index_reader *r)
{
    if (!r)
        return;
    if (r->mapped)
        munmap((void *)r->b, r->len);
    tsdb_lcache_forget(atomic_load_explicit(&r->lc_owner, memory_order_relaxed));
    mp_free(r->sym_off);
    _Atomic(const struct mp_istr *) *isym = atomic_load_explicit(&r->isym, memory_order_acquire);
    for (uint32_t i = 0; isym && i < r->nsyms; i++)
        mp_intern_release(atomic_load_explicit(&isym[i], memory_order_relaxed));
    mp_free((void *)isym);
    mp_free((void *)atomic_load_explicit(&r->verified, memory_order_acquire));
    mp_free(r->names);
    mp_free(r->samps);
    mp_free(r->sf);
    mp_free(r->pf);
    mp_free(r);
}

uint32_t tsdb_index_reader_symbol_count(const struct tsdb_index_reader *r)
{
    return r->nsyms;
}

int tsdb_index_reader_symbol(const struct tsdb_index_reader *r, uint32_t i, struct mp_str *out,
                             struct mp_err *err)
{
    if (i >= r->nsyms)
        return mp_err_set(err, MP_EPARSE, "index: symbol %u of %u", i, r->nsyms);
    *out = rsym(r, i);
    return 0;
}

int tsdb_index_reader_symbol_find(const struct tsdb_index_reader *r, struct mp_str s, uint32_t *out)
{
    uint32_t lo = 0, hi = r->nsyms;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = mp_str_cmp(rsym(r, mid), s);
        if (c == 0) {
            *out = mid;
            return 0;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return MP_ENOTFOUND;
}

static const struct pname *find_name(const struct tsdb_index_reader *r, struct mp_str name)
{
    size_t lo = 0, hi = r->nnames;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = mp_str_cmp(r->names[mid].name, name);
        if (c == 0)
            return &r->names[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int tsdb_index_reader_label_names(const struct tsdb_index_reader *r,
                                  int (*fn)(void *fctx, struct mp_str name), void *fctx,
                                  struct mp_err *err)
{
    (void)err;
    for (size_t i = 0; i < r->nnames; i++) {
        if (r->names[i].name.len == 0)
            continue;
        int rc = fn(fctx, r->names[i].name);
        if (rc)
            return rc;
    }
    return 0;
}

/* compact: one pairs-table value entry after the one whose value ordinal is *v. */
static bool pairs_next(struct cur *c, uint64_t *v, uint64_t *len)
{
    uint64_t d = cur_uvarint(c);
    *len = cur_uvarint(c);
    *v += d;
    return !c->bad;
}

static int label_values_compact(const struct tsdb_index_reader *r, const struct pname *pn,
                                int (*fn)(void *fctx, struct mp_str value), void *fctx,
                                struct mp_err *err)
{
    const struct psamp *s = &r->samps[pn->first];
    struct cur c = {r->b + s->pos, r->b + pn->end, false};
    uint64_t v = s->prev, len;
    while (cur_left(&c) > 0) {
        const uint8_t *at = c.p;
        if (!pairs_next(&c, &v, &len) || v >= r->nsyms)
            return perr(r, "pairs table", at, "damaged entry", err);
        int rc = fn(fctx, rsym(r, (uint32_t)v));
        if (rc)
            return rc;
    }
    return 0;
}

/* compact: raw postings offset and length of the list of (name, value); false if none. */
static bool find_list_compact(const struct tsdb_index_reader *r, struct mp_str name,
                              struct mp_str value, uint64_t *raw, uint64_t *len)
{
    const struct pname *pn = find_name(r, name);
    uint32_t want;
    if (!pn || tsdb_index_reader_symbol_find(r, value, &want) != 0)
        return false;
    const struct psamp *s = r->samps + pn->first;
    size_t lo = 0, hi = pn->nsamp; /* the last sample <= want */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s[mid].vord <= want)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return false;
    uint64_t end = lo < pn->nsamp ? s[lo].pos : pn->end;
    struct cur c = {r->b + s[lo - 1].pos, r->b + end, false};
    uint64_t v = s[lo - 1].prev, at = s[lo - 1].raw;
    while (cur_left(&c) > 0) {
        if (!pairs_next(&c, &v, len))
            return false;
        if (v == want) {
            *raw = at;
            return true;
        }
        if (v > want)
            return false;
        at += *len;
    }
    return false;
}

/* Entries of the name from its first sample (validated at open, decoding cannot fail). */
int tsdb_index_reader_label_values(const struct tsdb_index_reader *r, struct mp_str name,
                                   int (*fn)(void *fctx, struct mp_str value), void *fctx,
                                   struct mp_err *err)
{
    const struct pname *pn = name.len ? find_name(r, name) : NULL;
    if (!pn)
        return 0;
    if (r->compact)
        return label_values_compact(r, pn, fn, fctx, err);
    struct cur c = {r->b + r->samps[pn->first].pos, r->b + pn->end, false};
    while (cur_left(&c) > 0) {
        const uint8_t *at = c.p;
        struct mp_str n, v;
        uint64_t off;
        if (!pot_next(&c, &n, &v, &off))
            return perr(r, "postings offset table", at, "damaged entry", err);
        int rc = fn(fctx, v);
        if (rc)
            return rc;
    }
    return 0;
}

/* File offset of the postings list of (name, value), 0 if there is none. */
static uint64_t find_list(const struct tsdb_index_reader *r, struct mp_str name,
                          struct mp_str value)
{
    const struct pname *pn = find_name(r, name);
    if (!pn)
        return 0;
    const struct psamp *s = r->samps + pn->first;
    size_t lo = 0, hi = pn->nsamp; /* find the last sample <= value */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (mp_str_cmp(s[mid].value, value) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return 0;
    uint64_t end = lo < pn->nsamp ? s[lo].pos : pn->end;
    struct cur c = {r->b + s[lo - 1].pos, r->b + end, false};
    while (cur_left(&c) > 0) {
        struct mp_str n, v;
        uint64_t off;
        if (!pot_next(&c, &n, &v, &off))
            return 0;
        int cmp = mp_str_cmp(v, value);
        if (cmp == 0)
            return off;
        if (cmp > 0)
            return 0;
    }
    return 0;
}

/* A postings list: *refs points at its n BE32 series refs. */
static int read_list(const struct tsdb_index_reader *r, uint64_t off, const uint8_t **refs,
                     uint32_t *n, struct mp_err *err)
{
    struct cur c;
    bool known = verified_has(r, off);
    int rc = frame_crc(r, off, "postings list", !known, &c, err);
    if (rc)
        return rc;
    if (!known && cur_left(&c) >= VERIFY_ONCE_BYTES)
        verified_add(r, off);
    *n = cur_be32(&c);
    if (c.bad || cur_left(&c) / 4 != *n || cur_left(&c) % 4 != 0)
        return perr(r, "postings list", r->b + off, "entry count does not match the length", err);
    *refs = c.p;
    return 0;
}

struct lcur {
    const uint8_t *p; /* next BE32 ref */
    uint32_t left;    /* refs after the current one */
    uint32_t v;       /* current ref */
};

static void sift_down(struct lcur *h, size_t n, size_t i)
{
    for (;;) {
        size_t m = i, a = 2 * i + 1, b = a + 1;
        if (a < n && h[a].v < h[m].v)
            m = a;
        if (b < n && h[b].v < h[m].v)
            m = b;
        if (m == i)
            return;
        struct lcur t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* k-way merge of sorted lists into out (room reserved), dropping duplicates. */
static int merge(const struct tsdb_index_reader *r, struct lcur *h, size_t n,
                 struct tsdb_plist *out, struct mp_err *err)
{
    for (size_t i = n; i-- > 0;)
        sift_down(h, n, i);
    bool any = false;
    uint64_t last = 0;
    while (n > 0) {
        uint32_t v = h[0].v;
        if (!any || v != last)
            out->refs[out->n++] = v;
        any = true;
        last = v;
        if (h[0].left == 0) {
            h[0] = h[--n];
        } else {
            uint32_t next = tsdb_get_be32(h[0].p);
            if (next <= v)
                return perr(r, "postings list", h[0].p, "refs not ascending", err);
            h[0].v = next;
            h[0].p += 4;
            h[0].left--;
        }
        sift_down(h, n, 0);
    }
    return 0;
}

/* compact: decodes the runs of the list raw[0..len) (refs 1..nseries) onto out. */
static int decode_runs(const struct tsdb_index_reader *r, const uint8_t *raw, size_t len,
                       uint64_t at, struct tsdb_plist *out, struct mp_err *err)
{
    struct cur c = {raw, raw + len, false};
    uint64_t n = cur_uvarint(&c), prev = 0, got = 0;
    if (c.bad || n > r->nseries)
        return mp_err_set(err, MP_EPARSE,
                          "index: postings list at raw offset %llu: count %llu of %u series",
                          (unsigned long long)at, (unsigned long long)n, r->nseries);
    if (reserve((void **)&out->refs, &out->cap, out->n + (size_t)n, sizeof *out->refs))
        return mp_err_set(err, MP_ENOMEM, "index: out of memory for %llu postings",
                          (unsigned long long)n);
    while (got < n) {
        uint64_t gap = cur_uvarint(&c), extra = cur_uvarint(&c);
        if (c.bad || gap >= r->nseries || extra >= n - got || prev + 1 + gap > r->nseries ||
            prev + 1 + gap + extra > r->nseries)
            return mp_err_set(err, MP_EPARSE, "index: postings list at raw offset %llu: damaged",
                              (unsigned long long)at);
        uint64_t start = prev + 1 + gap;
        for (uint64_t k = 0; k <= extra; k++)
            out->refs[out->n++] = start + k;
        got += extra + 1;
        prev = start + extra;
    }
    if (cur_left(&c) != 0)
        return mp_err_set(err, MP_EPARSE,
                          "index: postings list at raw offset %llu: bytes after the last run",
                          (unsigned long long)at);
    return 0;
}

/* The frame holding raw postings [raw, raw + len), decompressed into *buf (kept while the same
 * frame is asked for again); *p gets the list. */
struct pcache {
    ZSTD_DCtx *d;
    uint8_t *buf;
    size_t cap;
    size_t frame; /* index + 1 */
};

static int pframe_get(const struct tsdb_index_reader *r, struct pcache *pc, uint64_t raw,
                      uint64_t len, const uint8_t **p, struct mp_err *err)
{
    size_t lo = 0, hi = r->npf; /* the last frame starting <= raw */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->pf[mid].first <= raw)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || raw - r->pf[lo - 1].first > r->pf[lo - 1].rlen ||
        len > r->pf[lo - 1].rlen - (raw - r->pf[lo - 1].first))
        return mp_err_set(err, MP_EPARSE, "index: postings list at raw offset %llu crosses a frame",
                          (unsigned long long)raw);
    const struct zframe *f = &r->pf[lo - 1];
    if (pc->frame != lo) {
        pc->frame = 0;
        int rc = unzstd(&pc->d, r->b + f->off, f->clen, f->rlen, &pc->buf, &pc->cap);
        if (rc == MP_ENOMEM)
            return mp_err_set(err, MP_ENOMEM, "index: out of memory");
        if (rc)
            return perr(r, "postings frame", r->b + f->off, "damaged zstd frame", err);
        pc->frame = lo;
    }
    *p = pc->buf + (raw - f->first);
    return 0;
}

/* k-way merge of the sorted runs src[bounds[i] .. bounds[i + 1]) onto out, without
 * duplicates (room reserved by the caller). */
struct span {
    const uint64_t *p, *end;
};

static void span_sift(struct span *h, size_t n, size_t i)
{
    for (;;) {
        size_t m = i, a = 2 * i + 1, b = a + 1;
        if (a < n && *h[a].p < *h[m].p)
            m = a;
        if (b < n && *h[b].p < *h[m].p)
            m = b;
        if (m == i)
            return;
        struct span t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void merge_spans(struct span *h, size_t n, struct tsdb_plist *out)
{
    for (size_t i = n; i-- > 0;)
        span_sift(h, n, i);
    bool any = false;
    uint64_t last = 0;
    while (n > 0) {
        uint64_t v = *h[0].p++;
        if (!any || v != last)
            out->refs[out->n++] = v;
        any = true;
        last = v;
        if (h[0].p == h[0].end)
            h[0] = h[--n];
        span_sift(h, n, 0);
    }
}

static int postings_compact(const struct tsdb_index_reader *r, struct mp_str name,
                            const struct mp_str *values, size_t n, struct tsdb_plist *out,
                            struct mp_err *err)
{
    if (name.len == 0) { /* ("", "") is every series; no other pair has an empty name */
        for (size_t i = 0; i < n; i++)
            if (values[i].len == 0) {
                if (reserve((void **)&out->refs, &out->cap, out->n + r->nseries, sizeof *out->refs))
                    return mp_err_set(err, MP_ENOMEM, "index: out of memory");
                for (uint32_t k = 1; k <= r->nseries; k++)
                    out->refs[out->n++] = k;
                return 0;
            }
        return 0;
    }
    struct pcache pc = {0};
    struct tsdb_plist tmp = {0};
    size_t *bounds = NULL, nb = 0;
    int rc = 0;
    if (n > 1 && !(bounds = mp_malloc((n + 1) * sizeof *bounds)))
        return mp_err_set(err, MP_ENOMEM, "index: out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        uint64_t raw, len;
        const uint8_t *p = NULL;
        if (!find_list_compact(r, name, values[i], &raw, &len))
            continue;
        if ((rc = pframe_get(r, &pc, raw, len, &p, err)) != 0)
            break;
        if (n == 1) /* one list: straight onto out */
            rc = decode_runs(r, p, (size_t)len, raw, out, err);
        else if ((rc = decode_runs(r, p, (size_t)len, raw, &tmp, err)) == 0 &&
                 tmp.n > (nb ? bounds[nb - 1] : 0))
            bounds[nb++] = tmp.n;
    }
    if (!rc && nb > 0) {
        struct span *h = mp_malloc(nb * sizeof *h);
        if (!h || reserve((void **)&out->refs, &out->cap, out->n + tmp.n, sizeof *out->refs)) {
            rc = mp_err_set(err, MP_ENOMEM, "index: out of memory");
        } else {
            for (size_t i = 0; i < nb; i++)
                h[i] = (struct span){tmp.refs + (i ? bounds[i - 1] : 0), tmp.refs + bounds[i]};
            merge_spans(h, nb, out);
        }
        mp_free(h);
    }
    mp_free(bounds);
    mp_free(tmp.refs);
    ZSTD_freeDCtx(pc.d);
    mp_free(pc.buf);
    return rc;
}

/* v2: the list of name=value where it lies in the file; *n = 0 when there is none. */
static int pair_list(const struct tsdb_index_reader *r, struct mp_str name, struct mp_str value,
                     const uint8_t **refs, uint32_t *n, struct mp_err *err)
{
    uint64_t off = find_list(r, name, value);
    *n = 0;
    return off ? read_list(r, off, refs, n, err) : 0;
}

int tsdb_index_reader_postings(const struct tsdb_index_reader *r, struct mp_str name,
                               const struct mp_str *values, size_t n, struct tsdb_plist *out,
                               struct mp_err *err)
{
    if (r->compact)
        return postings_compact(r, name, values, n, out, err);
    struct lcur one, *h = &one;
    if (n > 1 && !(h = mp_malloc(n * sizeof *h)))
        return mp_err_set(err, MP_ENOMEM, "index: out of memory");
    size_t k = 0, total = 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = NULL;
        uint32_t cnt = 0;
        if ((rc = pair_list(r, name, values[i], &p, &cnt, err)) != 0)
            goto out;
        if (cnt == 0)
            continue;
        h[k++] = (struct lcur){p + 4, cnt - 1, tsdb_get_be32(p)};
        total += cnt;
    }
    if (reserve((void **)&out->refs, &out->cap, out->n + total, sizeof *out->refs)) {
        rc = mp_err_set(err, MP_ENOMEM, "index: out of memory for %zu postings", total);
        goto out;
    }
    rc = merge(r, h, k, out, err);
out:
    if (h != &one)
        mp_free(h);
    return rc;
}

static int ir_postings(void *ctx, struct mp_str name, const struct mp_str *values, size_t n,
                       struct tsdb_plist *out, struct mp_err *err)
{
    return tsdb_index_reader_postings(ctx, name, values, n, out, err);
}

static int ir_label_values(void *ctx, struct mp_str name,
                           int (*fn)(void *fctx, struct mp_str value), void *fctx,
                           struct mp_err *err)
{
    return tsdb_index_reader_label_values(ctx, name, fn, fctx, err);
}

TSDB_GALLOP_DEFINE(gallop_be32, uint8_t, TSDB_GALLOP_LOAD_BE32)

static int ir_postings_count(void *ctx, struct mp_str name, struct mp_str value, size_t *n,
                             struct mp_err *err)
{
    const uint8_t *refs = NULL;
    uint32_t cnt;
    int rc = pair_list(ctx, name, value, &refs, &cnt, err);
    *n = cnt;
    return rc;
}

/* The list is validated for length only (as read_list does for every caller); refs not
 * ascending there would make the search miss refs, never read out of bounds. */
static int ir_postings_filter(void *ctx, struct mp_str name, struct mp_str value,
                              struct tsdb_plist *io, struct mp_err *err)
{
    const uint8_t *refs = NULL;
    uint32_t cnt;
    int rc = pair_list(ctx, name, value, &refs, &cnt, err);
    size_t w = 0;
    for (size_t i = 0, j = 0; rc == 0 && i < io->n; i++) {
        uint64_t x = io->refs[i];
        j = gallop_be32(refs, j, cnt, x);
        if (j == cnt)
            break;
        if (tsdb_get_be32(refs + 4 * j) == x)
            io->refs[w++] = x;
    }
    io->n = w;
    return rc;
}

/* The compact format's lists sit in zstd frames: counting one means decompressing its frame,
 * so resolution there materialises every list (no count/filter). */
static const struct tsdb_ireader_ops compact_ops = {ir_postings, ir_label_values, NULL, NULL};
static const struct tsdb_ireader_ops v2_ops = {ir_postings, ir_label_values, ir_postings_count,
                                               ir_postings_filter};

struct tsdb_ireader tsdb_index_reader_ireader(struct tsdb_index_reader *r)
{
    return (struct tsdb_ireader){r->compact ? &compact_ops : &v2_ops, r};
}

void tsdb_index_series_fini(struct tsdb_index_series *s)
{
    if (!s)
        return;
    mp_free(s->labels);
    mp_free(s->ids);
    mp_free(s->chunks);
    mp_free(s->zbuf);
    mp_free(s->zoff);
    ZSTD_freeDCtx(s->dctx);
    memset(s, 0, sizeof *s);
}

static int decode_chunks(struct cur *c, struct tsdb_index_series *s, struct mp_err *err)
{
    uint64_t nc = cur_uvarint(c);
    if (c->bad || nc > cur_left(c) / 3) /* a chunk takes at least 3 bytes */
        return 1;
    if (reserve((void **)&s->chunks, &s->chunks_cap, (size_t)nc, sizeof *s->chunks))
        return mp_err_set(err, MP_ENOMEM, "index: out of memory");
    uint64_t maxt = 0, ref = 0;
    for (size_t i = 0; i < nc; i++) {
        struct tsdb_index_chunk_meta *m = &s->chunks[i];
        if (i == 0) {
            m->mint_ms = cur_varint(c);
            maxt = (uint64_t)m->mint_ms + cur_uvarint(c);
            ref = cur_uvarint(c);
        } else {
            m->mint_ms = (int64_t)(maxt + cur_uvarint(c));
            maxt = (uint64_t)m->mint_ms + cur_uvarint(c);
            ref += (uint64_t)cur_varint(c);
        }
        m->maxt_ms = (int64_t)maxt;
        m->ref = ref;
    }
    s->nchunks = (size_t)nc;
    return c->bad ? 1 : 0;
}

/* The body of a series entry (c spans it exactly): labels, then chunk metas. */
static int decode_entry(const struct tsdb_index_reader *r, struct cur *c, const uint8_t *at,
                        struct tsdb_index_series *s, struct mp_err *err)
{
    uint64_t nl = cur_uvarint(c);
    if (c->bad || nl > cur_left(c) / 2)
        return perr(r, "series", at, "label count larger than the entry", err);
    if (reserve((void **)&s->labels, &s->labels_cap, (size_t)nl, sizeof *s->labels) ||
        reserve((void **)&s->ids, &s->ids_cap, 2 * (size_t)nl, sizeof *s->ids))
        return mp_err_set(err, MP_ENOMEM, "index: out of memory");
    s->ir = r;
    for (size_t i = 0; i < nl; i++) {
        uint64_t a = cur_uvarint(c), b = cur_uvarint(c);
        if (c->bad || a >= r->nsyms || b >= r->nsyms)
            return perr(r, "series", at, "bad symbol reference", err);
        s->labels[i] = (struct mp_label){rsym(r, (uint32_t)a), rsym(r, (uint32_t)b)};
        s->ids[2 * i] = (uint32_t)a;
        s->ids[2 * i + 1] = (uint32_t)b;
    }
    s->nlabels = (size_t)nl;
    int rc = decode_chunks(c, s, err);
    if (rc < 0)
        return rc;
    if (rc > 0 || cur_left(c) != 0) {
        s->nlabels = s->nchunks = 0;
        return perr(r, "series", at, "damaged chunk metas", err);
    }
    return 0;
}

/* compact: decompresses series frame f into s's cache and indexes its entries. */
static int sframe_load(const struct tsdb_index_reader *r, size_t f, struct tsdb_index_series *s,
                       struct mp_err *err)
{
    const struct zframe *fr = &r->sf[f];
    const uint8_t *at = r->b + fr->off;
    s->zframe = 0;
    int rc = unzstd((ZSTD_DCtx **)&s->dctx, at, fr->clen, fr->rlen, &s->zbuf, &s->zcap);
    if (rc == MP_ENOMEM ||
        reserve((void **)&s->zoff, &s->zoff_cap, 2 * (size_t)fr->n, sizeof *s->zoff))
        return mp_err_set(err, MP_ENOMEM, "index: out of memory");
    if (rc)
        return perr(r, "series frame", at, "damaged zstd frame", err);
    struct cur c = {s->zbuf, s->zbuf + fr->rlen, false};
    for (uint32_t i = 0; i < fr->n; i++) {
        uint64_t len = cur_uvarint(&c);
        if (c.bad || len > cur_left(&c))
            return perr(r, "series frame", at, "entry runs past the frame", err);
        s->zoff[2 * i] = (uint32_t)(c.p - s->zbuf);
        c.p += len;
        s->zoff[2 * i + 1] = (uint32_t)(c.p - s->zbuf);
    }
    if (cur_left(&c) != 0)
        return perr(r, "series frame", at, "bytes after the last entry", err);
    s->zr = r;
    s->zframe = f + 1;
    return 0;
}

static int series_compact(const struct tsdb_index_reader *r, uint64_t ref,
                          struct tsdb_index_series *s, struct mp_err *err)
{
    if (ref == 0 || ref > r->nseries)
        return mp_err_set(err, MP_EPARSE, "index: series ref %llu of %u series (offset 0)",
                          (unsigned long long)ref, r->nseries);
    uint32_t ord = (uint32_t)(ref - 1);
    size_t lo = 0, hi = r->nsf; /* the last frame whose first series <= ord */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->sf[mid].first <= ord)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t f = lo - 1; /* frames cover 0 .. nseries - 1 (checked at open) */
    int rc;
    if ((s->zr != r || s->zframe != f + 1) && (rc = sframe_load(r, f, s, err)) != 0)
        return rc;
    uint32_t j = ord - (uint32_t)r->sf[f].first;
    struct cur c = {s->zbuf + s->zoff[2 * j], s->zbuf + s->zoff[2 * j + 1], false};
    return decode_entry(r, &c, r->b + r->sf[f].off, s, err);
}

int tsdb_index_reader_series(const struct tsdb_index_reader *r, uint64_t ref,
                             struct tsdb_index_series *s, struct mp_err *err)
{
    s->nlabels = s->nchunks = 0;
    s->ref = ref;
    if (r->compact)
        return series_compact(r, ref, s, err);
    uint64_t lo = r->toc[TOC_SERIES];
    if (lo == 0 || ref > r->limit / 16 || ref * 16 < lo || ref * 16 >= r->limit)
        return mp_err_set(err, MP_EPARSE,
                          "index: series ref %llu (offset %llu) outside the series section",
                          (unsigned long long)ref, (unsigned long long)ref * 16);
    const uint8_t *at = r->b + ref * 16;
    struct cur c = {at, r->b + r->limit, false};
    uint64_t l = cur_uvarint(&c);
    if (c.bad || l > cur_left(&c) || cur_left(&c) - l < 4)
        return perr(r, "series", at, "length runs past the end", err);
    if (tsdb_crc32c(0, c.p, (size_t)l) != tsdb_get_be32(c.p + l))
        return perr(r, "series", at, "CRC mismatch", err);
    c.end = c.p + l;
    return decode_entry(r, &c, at, s, err);
}

/* Symbol i interned, from the reader's cache (filled here on a miss); NULL: out of memory. */
static const struct mp_istr *isym_get(const struct tsdb_index_reader *cr, uint32_t i)
{
    struct tsdb_index_reader *r = (struct tsdb_index_reader *)cr; /* the cache is not content */
    _Atomic(const struct mp_istr *) *v = atomic_load_explicit(&r->isym, memory_order_acquire);
    if (!v) {
        _Atomic(const struct mp_istr *) *nv = mp_calloc(r->nsyms ? r->nsyms : 1, sizeof *nv);
        if (!nv)
            return NULL;
        /* acq_rel: publishes the zeroed array, or sees the one another thread published */
        if (atomic_compare_exchange_strong_explicit(&r->isym, &v, nv, memory_order_acq_rel,
                                                    memory_order_acquire))
            v = nv;
        else
            mp_free((void *)nv);
    }
    const struct mp_istr *is = atomic_load_explicit(&v[i], memory_order_acquire);
    if (is)
        return is;
    const struct mp_istr *mine;
    if (mp_intern_acquire(rsym(r, i), &mine))
        return NULL;
    /* release: the string is complete before another thread can read the slot */
    if (atomic_compare_exchange_strong_explicit(&v[i], &is, mine, memory_order_acq_rel,
                                                memory_order_acquire))
        return mine;
    mp_intern_release(mine); /* another thread cached it first */
    return is;
}

int tsdb_index_series_labels(const struct tsdb_index_series *s, struct mp_labels **out,
                             struct mp_err *err)
{
    /* The symbol table is sorted and unique (checked at open), so ascending name ids are
     * names sorted and unique: the set can take the cached strings as they are. */
    const struct mp_istr *stack[64];
    size_t n = s->nlabels;
    bool ok = s->ir && n > 0 && 2 * n <= sizeof stack / sizeof stack[0];
    for (size_t i = 1; ok && i < n; i++)
        ok = s->ids[2 * i] > s->ids[2 * i - 2];
    for (size_t i = 0; ok && i < 2 * n; i++)
        ok = (stack[i] = isym_get(s->ir, s->ids[i])) != NULL;
    if (ok)
        return mp_labels_create_interned(stack, n, out, err);
    return mp_labels_create(s->labels, s->nlabels, out, err);
}

int tsdb_index_series_labels_cached(const struct tsdb_index_series *s, struct mp_labels **out,
                                    struct mp_err *err)
{
    if (!s->ir || s->nlabels == 0)
        return tsdb_index_series_labels(s, out, err);
    /* the owner slot is not content: the reader stays immutable for every other purpose */
    uint32_t owner = tsdb_lcache_owner_of(&((struct tsdb_index_reader *)s->ir)->lc_owner);
    if ((*out = tsdb_lcache_get(owner, s->ref, 0)) != NULL)
        return 0;
    int rc = tsdb_index_series_labels(s, out, err);
    if (!rc)
        tsdb_lcache_put(owner, s->ref, *out);
    return rc;
}

void tsdb_index_reader_drop_pages(const struct tsdb_index_reader *r)
{
    if (r->mapped)
        (void)madvise((void *)r->b, r->len, MADV_DONTNEED);
}
