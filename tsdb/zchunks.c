/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/zchunks.c: compressed chunk segments (format in tsdb/zchunks.h). */
#include "tsdb/zchunks.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "common/alloc.h"
#include "tsdb/bytes.h"
#include "tsdb/chunks.h"
#include "tsdb/wal.h" /* tsdb_crc32c */

#define HEADER_SIZE 8u
#define FOOTER_SIZE 20u
#define TABLE_ENTRY 16u

struct frame_ent {
    uint64_t off;
    uint32_t clen, ulen;
};

/* ---- writer ---------------------------------------------------------------------------- */

struct tsdb_zchunks_writer {
    struct tsdb_zchunks_writer_options o;
    char *dir;
    int fd;
    uint32_t seg;          /* 0-based index of the open segment; fd < 0: none yet */
    uint64_t seg_size;     /* bytes written to it */
    uint64_t total;
    uint8_t *frame;        /* uncompressed records of the frame being filled */
    size_t flen;
    void *cbuf;
    size_t ccap;
    struct frame_ent *tab; /* frames of the open segment */
    size_t ntab, captab;
    ZSTD_CCtx *cctx;
    int err;               /* sticky */
};

void tsdb_zchunks_writer_options_init(struct tsdb_zchunks_writer_options *o)
{
    o->segment_size = TSDB_CHUNKS_DEFAULT_SEGMENT_SIZE;
    o->frame_size = TSDB_ZCHUNKS_FRAME_DEFAULT;
    o->level = TSDB_ZCHUNKS_LEVEL_DEFAULT;
    o->fsync = true;
}

static int werr(struct tsdb_zchunks_writer *w, struct mp_err *err, int e, const char *what)
{
    w->err = MP_EIO;
    return mp_err_set(err, MP_EIO, "%s %s segment %u: %s", what, w->dir, w->seg + 1, strerror(e));
}

static int write_all(struct tsdb_zchunks_writer *w, const void *p, size_t n, struct mp_err *err)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t k = write(w->fd, b, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return werr(w, err, errno, "write");
        }
        b += k;
        n -= (size_t)k;
        w->seg_size += (uint64_t)k;
        w->total += (uint64_t)k;
    }
    return 0;
}

int tsdb_zchunks_writer_open(const char *dir, const struct tsdb_zchunks_writer_options *opts,
                             struct tsdb_zchunks_writer **out, struct mp_err *err)
{
    struct tsdb_zchunks_writer_options o;
    tsdb_zchunks_writer_options_init(&o);
    if (opts)
        o = *opts;
    if (o.frame_size < 4096 || o.frame_size > TSDB_ZCHUNKS_MAX_FRAME / 2 || o.level < 1 ||
        o.level > 19 || o.segment_size < 4096)
        return mp_err_set(err, MP_EINVAL, "compressed chunk options: frame %zu, level %d",
                          o.frame_size, o.level);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return mp_err_set(err, MP_EIO, "mkdir %s: %s", dir, strerror(errno));
    struct tsdb_zchunks_writer *w = mp_calloc(1, sizeof *w);
    if (!w)
        return mp_err_set(err, MP_ENOMEM, "chunk writer");
    w->o = o;
    w->dir = mp_xstrdup(dir);
    w->fd = -1;
    w->frame = mp_xmalloc(TSDB_ZCHUNKS_MAX_FRAME);
    w->cctx = ZSTD_createCCtx();
    if (!w->cctx) {
        tsdb_zchunks_writer_close(w, NULL);
        return mp_err_set(err, MP_ENOMEM, "zstd context");
    }
    *out = w;
    return 0;
}

static int open_segment(struct tsdb_zchunks_writer *w, struct mp_err *err)
{
    char name[16], path[4200];
    tsdb_chunks_file_name(name, w->seg + 1);
    snprintf(path, sizeof path, "%s/%s", w->dir, name);
    w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (w->fd < 0)
        return werr(w, err, errno, "create");
    w->seg_size = 0;
    w->ntab = 0;
    uint8_t h[HEADER_SIZE] = {0};
    tsdb_put_be32(h, TSDB_ZCHUNKS_MAGIC);
    h[4] = TSDB_ZCHUNKS_VERSION;
    return write_all(w, h, sizeof h, err);
}

static int flush_frame(struct tsdb_zchunks_writer *w, struct mp_err *err)
{
    if (w->flen == 0)
        return 0;
    size_t bound = ZSTD_compressBound(w->flen);
    if (bound > w->ccap) {
        mp_free(w->cbuf);
        w->cbuf = mp_xmalloc(bound);
        w->ccap = bound;
    }
    size_t c = ZSTD_compressCCtx(w->cctx, w->cbuf, w->ccap, w->frame, w->flen, w->o.level);
    if (ZSTD_isError(c)) {
        w->err = MP_EIO;
        return mp_err_set(err, MP_EIO, "zstd: %s", ZSTD_getErrorName(c));
    }
    if (w->ntab == w->captab) {
        w->captab = w->captab ? w->captab * 2 : 64;
        w->tab = mp_xrealloc(w->tab, w->captab * sizeof *w->tab);
    }
    w->tab[w->ntab++] = (struct frame_ent){w->seg_size, (uint32_t)c, (uint32_t)w->flen};
    w->flen = 0;
    return write_all(w, w->cbuf, c, err);
}

static int finish_segment(struct tsdb_zchunks_writer *w, struct mp_err *err)
{
    if (w->fd < 0)
        return 0;
    int rc = flush_frame(w, err);
    uint64_t table_off = w->seg_size;
    size_t tlen = w->ntab * TABLE_ENTRY;
    uint8_t *t = mp_xmalloc(tlen + FOOTER_SIZE);
    for (size_t i = 0; i < w->ntab; i++) {
        tsdb_put_be64(t + i * TABLE_ENTRY, w->tab[i].off);
        tsdb_put_be32(t + i * TABLE_ENTRY + 8, w->tab[i].clen);
        tsdb_put_be32(t + i * TABLE_ENTRY + 12, w->tab[i].ulen);
    }
    uint8_t *f = t + tlen;
    tsdb_put_be64(f, table_off);
    tsdb_put_be32(f + 8, (uint32_t)w->ntab);
    tsdb_put_be32(f + 12, tsdb_crc32c(0, t, tlen));
    tsdb_put_be32(f + 16, TSDB_ZCHUNKS_MAGIC);
    if (!rc)
        rc = write_all(w, t, tlen + FOOTER_SIZE, err);
    mp_free(t);
    if (!rc && w->o.fsync && fsync(w->fd) != 0)
        rc = werr(w, err, errno, "fsync");
    close(w->fd);
    w->fd = -1;
    return rc;
}

static int add_record(struct tsdb_zchunks_writer *w, const struct tsdb_chunk *c, uint64_t *ref,
                      struct mp_err *err)
{
    size_t need = TSDB_UVARINT_MAX_LEN + 1 + c->len + 4;
    if (need > (size_t)TSDB_ZCHUNKS_MAX_FRAME / 2)
        return mp_err_set(err, MP_EINVAL, "chunk of %zu bytes", c->len);
    int rc;
    if (w->flen && w->flen + need > w->o.frame_size && (rc = flush_frame(w, err)))
        return rc;
    if (w->fd >= 0 && w->flen == 0 && w->seg_size >= w->o.segment_size) {
        if ((rc = finish_segment(w, err)))
            return rc;
        w->seg++;
    }
    if (w->fd < 0 && (rc = open_segment(w, err)))
        return rc;
    uint8_t *p = w->frame + w->flen;
    *ref = (uint64_t)w->seg << 48 | (uint64_t)w->ntab << 24 | (uint64_t)w->flen;
    size_t k = tsdb_put_uvarint(p, c->len);
    p[k++] = c->encoding;
    memcpy(p + k, c->data, c->len);
    uint32_t crc = tsdb_crc32c(0, p + k - 1, c->len + 1);
    k += c->len;
    tsdb_put_be32(p + k, crc);
    w->flen += k + 4;
    return 0;
}

int tsdb_zchunks_writer_write(struct tsdb_zchunks_writer *w, const struct tsdb_chunk *chunks,
                              size_t n, uint64_t *refs, struct mp_err *err)
{
    if (w->err)
        return mp_err_set(err, w->err, "chunk writer %s failed before", w->dir);
    for (size_t i = 0; i < n; i++) {
        int rc = add_record(w, &chunks[i], &refs[i], err);
        if (rc)
            return rc;
    }
    return 0;
}

uint64_t tsdb_zchunks_writer_size(const struct tsdb_zchunks_writer *w)
{
    return w->total;
}

int tsdb_zchunks_writer_close(struct tsdb_zchunks_writer *w, struct mp_err *err)
{
    if (!w)
        return 0;
    int rc = w->err ? mp_err_set(err, w->err, "chunk writer %s failed", w->dir) : 0;
    int rc2 = w->err ? 0 : finish_segment(w, err);
    if (!rc)
        rc = rc2;
    if (w->fd >= 0)
        close(w->fd);
    if (!rc && w->o.fsync) {
        int dfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            if (fsync(dfd) != 0)
                rc = mp_err_set(err, MP_EIO, "fsync %s: %s", w->dir, strerror(errno));
            close(dfd);
        }
    }
    ZSTD_freeCCtx(w->cctx);
    mp_free(w->frame);
    mp_free(w->cbuf);
    mp_free(w->tab);
    mp_free(w->dir);
    mp_free(w);
    return rc;
}

/* ---- reader ------------------------------------------------------------------------------ */

struct zseg {
    const uint8_t *p;
    size_t len;
    bool mapped;
    struct frame_ent *tab;
    uint32_t nframes;
};

struct tsdb_zchunks_reader {
    char *dir;
    struct zseg *segs;
    size_t n;
    uint64_t size;
};

struct zframe {
    uint32_t seg, frame;
    uint8_t *buf;
    uint32_t len;
};

void tsdb_zchunks_reader_close(struct tsdb_zchunks_reader *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        if (r->segs[i].p && r->segs[i].mapped)
            munmap((void *)r->segs[i].p, r->segs[i].len);
        mp_free(r->segs[i].tab);
    }
    mp_free(r->segs);
    mp_free(r->dir);
    mp_free(r);
}

static int bad(const struct tsdb_zchunks_reader *r, size_t seg, struct mp_err *err,
               const char *why)
{
    return mp_err_set(err, MP_EPARSE, "%s/%06zu: %s", r->dir, seg + 1, why);
}

/* Reads the header, footer and frame table of segment i over p[0..len) (kept by r). */
static int parse_seg(struct tsdb_zchunks_reader *r, size_t i, const uint8_t *p, size_t len,
                     bool mapped, struct mp_err *err)
{
    struct zseg *s = &r->segs[i];
    s->p = p;
    s->len = len;
    s->mapped = mapped;
    if (len < HEADER_SIZE)
        return i == 0 ? MP_ENOTFOUND : bad(r, i, err, "short file");
    if (tsdb_get_be32(s->p) != TSDB_ZCHUNKS_MAGIC)
        return i == 0 ? MP_ENOTFOUND : bad(r, i, err, "not a compressed chunk segment");
    if (s->p[4] != TSDB_ZCHUNKS_VERSION)
        return bad(r, i, err, "unknown version");
    if (len < HEADER_SIZE + FOOTER_SIZE)
        return bad(r, i, err, "no footer");
    const uint8_t *f = s->p + len - FOOTER_SIZE;
    uint64_t toff = tsdb_get_be64(f);
    uint32_t nf = tsdb_get_be32(f + 8);
    if (tsdb_get_be32(f + 16) != TSDB_ZCHUNKS_MAGIC || toff < HEADER_SIZE ||
        toff > len - FOOTER_SIZE || (len - FOOTER_SIZE - toff) != (uint64_t)nf * TABLE_ENTRY)
        return bad(r, i, err, "bad footer");
    const uint8_t *t = s->p + toff;
    if (tsdb_crc32c(0, t, (size_t)nf * TABLE_ENTRY) != tsdb_get_be32(f + 12))
        return bad(r, i, err, "frame table checksum mismatch");
    if (nf >= (1u << 24))
        return bad(r, i, err, "too many frames");
    s->tab = mp_xmalloc((nf ? nf : 1) * sizeof *s->tab);
    s->nframes = nf;
    for (uint32_t k = 0; k < nf; k++) {
        struct frame_ent *e = &s->tab[k];
        e->off = tsdb_get_be64(t + k * TABLE_ENTRY);
        e->clen = tsdb_get_be32(t + k * TABLE_ENTRY + 8);
        e->ulen = tsdb_get_be32(t + k * TABLE_ENTRY + 12);
        if (e->off < HEADER_SIZE || e->off > toff || e->clen > toff - e->off ||
            e->ulen > TSDB_ZCHUNKS_MAX_FRAME)
            return bad(r, i, err, "bad frame table entry");
    }
    r->size += len;
    return 0;
}
/* Maps segment i and reads its frame table. MP_ENOTFOUND if not this format. */
static int open_seg(struct tsdb_zchunks_reader *r, size_t i, uint32_t num, struct mp_err *err)
{
    char name[16], path[4200];
    tsdb_chunks_file_name(name, num);
    snprintf(path, sizeof path, "%s/%s", r->dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mp_err_set(err, MP_EIO, "open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return mp_err_set(err, MP_EIO, "stat %s: %s", path, strerror(errno));
    }
    size_t len = (size_t)st.st_size;
    if (len < HEADER_SIZE) {
        close(fd);
        return i == 0 ? MP_ENOTFOUND : bad(r, i, err, "short file");
    }
    void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return mp_err_set(err, MP_EIO, "mmap %s: %s", path, strerror(errno));
    return parse_seg(r, i, m, len, true, err);
}

int tsdb_zchunks_reader_open(const char *dir, struct tsdb_zchunks_reader **out,
                             struct mp_err *err)
{
    uint32_t *nums = NULL;
    size_t n = 0;
    int rc = tsdb_chunks_list_numbered(dir, &nums, &n, err);
    if (rc)
        return rc;
    if (n == 0) {
        mp_free(nums);
        return MP_ENOTFOUND; /* an empty chunks dir reads the same either way */
    }
    struct tsdb_zchunks_reader *r = mp_xcalloc(1, sizeof *r);
    r->dir = mp_xstrdup(dir);
    r->segs = mp_xcalloc(n, sizeof *r->segs);
    r->n = n;
    for (size_t i = 0; i < n && !rc; i++) {
        if (nums[i] != i + 1)
            rc = bad(r, i, err, "segment numbers have a gap");
        else
            rc = open_seg(r, i, nums[i], err);
    }
    mp_free(nums);
    if (rc) {
        tsdb_zchunks_reader_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

int tsdb_zchunks_reader_open_mem(const uint8_t *data, size_t len,
                                 struct tsdb_zchunks_reader **out, struct mp_err *err)
{
    struct tsdb_zchunks_reader *r = mp_xcalloc(1, sizeof *r);
    r->dir = mp_xstrdup("<memory>");
    r->segs = mp_xcalloc(1, sizeof *r->segs);
    r->n = 1;
    int rc = parse_seg(r, 0, data, len, false, err);
    if (rc) {
        tsdb_zchunks_reader_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

uint64_t tsdb_zchunks_reader_size(const struct tsdb_zchunks_reader *r)
{
    return r->size;
}

void tsdb_zchunks_reader_drop_pages(const struct tsdb_zchunks_reader *r)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->segs[i].mapped)
            (void)madvise((void *)r->segs[i].p, r->segs[i].len, MADV_DONTNEED);
}

void tsdb_zchunks_cache_init(struct tsdb_zchunks_cache *c, size_t budget_bytes)
{
    memset(c, 0, sizeof *c);
    c->budget = budget_bytes;
}

static void cache_clear(struct tsdb_zchunks_cache *c)
{
    for (size_t i = 0; i < c->n; i++)
        mp_free(c->frames[i].buf);
    c->n = 0;
    c->bytes = 0;
}

void tsdb_zchunks_cache_fini(struct tsdb_zchunks_cache *c)
{
    cache_clear(c);
    mp_free(c->frames);
    memset(c, 0, sizeof *c);
}

void tsdb_zchunks_cache_trim(struct tsdb_zchunks_cache *c)
{
    if (c->bytes > c->budget)
        cache_clear(c);
}

static int frame_get(const struct tsdb_zchunks_reader *r, struct tsdb_zchunks_cache *c,
                     uint32_t seg, uint32_t frame, const struct zframe **out,
                     struct mp_err *err)
{
    /* most recent first: a series' chunks sit in one or two frames */
    for (size_t i = c->n; i-- > 0;) {
        if (c->frames[i].seg == seg && c->frames[i].frame == frame) {
            *out = &c->frames[i];
            return 0;
        }
    }
    const struct zseg *s = &r->segs[seg];
    const struct frame_ent *e = &s->tab[frame];
    uint8_t *buf = mp_malloc(e->ulen ? e->ulen : 1);
    if (!buf)
        return mp_err_set(err, MP_ENOMEM, "chunk frame of %u bytes", e->ulen);
    size_t d = ZSTD_decompress(buf, e->ulen, s->p + e->off, e->clen);
    if (ZSTD_isError(d) || d != e->ulen) {
        mp_free(buf);
        return bad(r, seg, err, "damaged frame");
    }
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 8;
        c->frames = mp_xrealloc(c->frames, c->cap * sizeof *c->frames);
    }
    c->frames[c->n] = (struct zframe){seg, frame, buf, e->ulen};
    c->bytes += e->ulen;
    *out = &c->frames[c->n++];
    return 0;
}

int tsdb_zchunks_reader_get(const struct tsdb_zchunks_reader *r, struct tsdb_zchunks_cache *c,
                            uint64_t ref, uint8_t *enc, const uint8_t **data, size_t *len,
                            struct mp_err *err)
{
    uint32_t seg = (uint32_t)(ref >> 48), frame = (uint32_t)(ref >> 24) & 0xffffff;
    uint32_t off = (uint32_t)ref & 0xffffff;
    if (seg >= r->n || frame >= r->segs[seg].nframes)
        return mp_err_set(err, MP_EPARSE, "%s: chunk ref %llx outside the segments", r->dir,
                          (unsigned long long)ref);
    const struct zframe *f = NULL;
    int rc = frame_get(r, c, seg, frame, &f, err);
    if (rc)
        return rc;
    uint64_t l;
    int k = off < f->len ? tsdb_get_uvarint(f->buf + off, f->len - off, &l) : 0;
    if (k <= 0 || l > f->len || (uint64_t)off + (uint64_t)k + 1 + l + 4 > f->len)
        return bad(r, seg, err, "chunk record runs past its frame");
    if (enc)
        *enc = f->buf[off + (uint32_t)k];
    *data = f->buf + off + (uint32_t)k + 1;
    *len = (size_t)l;
    return 0;
}
