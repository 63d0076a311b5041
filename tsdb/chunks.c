/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/chunks.c: block chunk segments (<block>/chunks/NNNNNN), byte-compatible with Prometheus's
 * tsdb/chunks (spec tsdb.md 4.3; tsdb/README.md "Block chunks"). One segment:
 *
 *   0        4   5       8                                                    segment size
 *   +--------+---+-------+------------+-----+------+-------+------------+---- ... ---+
 *   |85BD40DD|01 |00 00 00| uvarint len| enc | data | CRC32C| uvarint len| ...        |
 *   +--------+---+-------+------------+-----+------+-------+------------+---- ... ---+
 *                         ^ ref = index << 32 | 8          CRC32C over enc + data, BE32
 *
 * Writer invariant: the current segment's bytes [0, n) are the file's [0, flushed) followed by
 * buf[0, blen); n never exceeds UINT32_MAX, so every offset fits a ref. Reader: every access is
 * bounds-checked against the mapping's length before it is made. */
#include "tsdb/chunks.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "tsdb/wal.h"

/* ---- directory helpers -------------------------------------------------------------------- */

static int io_error(struct mp_err *err, int e, const char *what, const char *dir, const char *name)
{
    return mp_err_set(err, MP_EIO, "%s %s%s%s: %s", what, dir, name ? "/" : "", name ? name : "",
                      strerror(e));
}

void tsdb_chunks_file_name(char buf[16], uint32_t num)
{
    snprintf(buf, 16, "%06u", (unsigned)num);
}

static bool parse_number(const char *s, uint32_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 10)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int tsdb_chunks_list_numbered(const char *dir, uint32_t **out, size_t *n, struct mp_err *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return io_error(err, errno, "list", dir, NULL);
    size_t cnt = 0, cap = 0;
    uint32_t *v = NULL;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint32_t num;
        if (!parse_number(de->d_name, &num))
            continue;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            v = mp_xrealloc(v, cap * sizeof *v);
        }
        v[cnt++] = num;
    }
    closedir(d);
    if (cnt > 1)
        qsort(v, cnt, sizeof *v, cmp_u32);
    *out = v;
    *n = cnt;
    return 0;
}

int tsdb_chunks_open_dir(const char *dir, bool create, int *dirfd, struct mp_err *err)
{
    if (create && mkdir(dir, 0777) != 0 && errno != EEXIST)
        return io_error(err, errno, "create", dir, NULL);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return io_error(err, errno, "open", dir, NULL);
    *dirfd = fd;
    return 0;
}

/* ---- writer ------------------------------------------------------------------------------- */

struct tsdb_chunks_writer {
    struct tsdb_chunks_writer_options opt;
    char *dir;
    int dirfd;
    int fd;            /* current segment, -1 before the first */
    size_t nseg;       /* segments created; the current one has index nseg - 1 */
    uint64_t n;        /* bytes of the current segment, buffered ones included */
    uint64_t flushed;  /* bytes of the current segment in the file */
    uint64_t total;    /* bytes of all segments */
    uint8_t *buf;
    size_t blen;
    int broken;        /* sticky MP_EIO after a failed write */
    struct mp_err broken_err;
};

void tsdb_chunks_writer_options_init(struct tsdb_chunks_writer_options *o)
{
    o->segment_size = TSDB_CHUNKS_DEFAULT_SEGMENT_SIZE;
    o->buffer_size = 1u << 20;
    o->fsync = true;
}

int tsdb_chunks_writer_open(const char *dir, const struct tsdb_chunks_writer_options *opts,
                            struct tsdb_chunks_writer **out, struct mp_err *err)
{
    struct tsdb_chunks_writer_options o;
    tsdb_chunks_writer_options_init(&o);
    if (opts)
        o = *opts;
    if (!dir || !out || o.segment_size <= TSDB_CHUNKS_HEADER_SIZE ||
        o.segment_size > UINT32_MAX || o.buffer_size < 4096)
        return mp_err_set(err, MP_EINVAL, "chunks writer: invalid options");
    int dirfd = -1;
    int rc = tsdb_chunks_open_dir(dir, true, &dirfd, err);
    if (rc)
        return rc;
    uint8_t *buf = mp_malloc(o.buffer_size);
    if (!buf) {
        close(dirfd);
        return mp_err_set(err, MP_ENOMEM, "chunks writer: %zu byte buffer", o.buffer_size);
    }
    struct tsdb_chunks_writer *w = mp_xcalloc(1, sizeof *w);
    w->opt = o;
    w->dir = mp_xstrdup(dir);
    w->dirfd = dirfd;
    w->fd = -1;
    w->buf = buf;
    *out = w;
    return 0;
}

/* Breaks the writer: the error is recorded for every later call. */
static int fail_at(struct tsdb_chunks_writer *w, struct mp_err *err, int e, const char *what,
                   uint32_t num)
{
    char name[16];
    tsdb_chunks_file_name(name, num);
    w->broken = io_error(&w->broken_err, e, what, w->dir, name);
    return mp_err_set(err, w->broken, "%s", w->broken_err.msg);
}

static int fail(struct tsdb_chunks_writer *w, struct mp_err *err, int e, const char *what)
{
    return fail_at(w, err, e, what, (uint32_t)w->nseg);
}

static int flush(struct tsdb_chunks_writer *w, struct mp_err *err)
{
    size_t off = 0;
    while (off < w->blen) {
        ssize_t k = pwrite(w->fd, w->buf + off, w->blen - off, (off_t)(w->flushed + off));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return fail(w, err, k < 0 ? errno : ENOSPC, "write segment");
        off += (size_t)k;
    }
    w->flushed += w->blen;
    w->blen = 0;
    return 0;
}

/* Copies p[0..n) into the segment through the buffer. */
static int put(struct tsdb_chunks_writer *w, const void *p, size_t n, struct mp_err *err)
{
    const uint8_t *s = p;
    while (n > 0) {
        if (w->blen == w->opt.buffer_size) {
            int rc = flush(w, err);
            if (rc)
                return rc;
        }
        size_t k = w->opt.buffer_size - w->blen;
        if (k > n)
            k = n;
        memcpy(w->buf + w->blen, s, k);
        w->blen += k;
        w->n += k;
        w->total += k;
        s += k;
        n -= k;
    }
    return 0;
}

/* Flushes and closes the current segment (fsynced unless !fsync). */
static int finish_segment(struct tsdb_chunks_writer *w, struct mp_err *err)
{
    if (w->fd < 0)
        return 0;
    int rc = flush(w, err);
    if (rc)
        return rc;
    if (w->opt.fsync && fsync(w->fd) != 0)
        return fail(w, err, errno, "fsync segment");
    close(w->fd);
    w->fd = -1;
    return 0;
}

static int cut(struct tsdb_chunks_writer *w, struct mp_err *err)
{
    int rc = finish_segment(w, err);
    if (rc)
        return rc;
    char name[16];
    tsdb_chunks_file_name(name, (uint32_t)(w->nseg + 1));
    int fd = openat(w->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
        int e = errno;
        if (e == EEXIST)
            return mp_err_set(err, MP_EEXISTS, "create segment %s/%s: already exists", w->dir,
                              name);
        return fail_at(w, err, e, "create segment", (uint32_t)(w->nseg + 1));
    }
    w->fd = fd;
    w->nseg++;
    w->n = w->flushed = 0;
    uint8_t hdr[TSDB_CHUNKS_HEADER_SIZE] = {0};
    tsdb_put_be32(hdr, TSDB_CHUNKS_MAGIC);
    hdr[4] = TSDB_CHUNKS_VERSION;
    return put(w, hdr, sizeof hdr, err);
}

static int write_one(struct tsdb_chunks_writer *w, const struct tsdb_chunk *c, uint64_t *ref,
                     struct mp_err *err)
{
    *ref = (uint64_t)(w->nseg - 1) << 32 | w->n;
    uint8_t head[TSDB_UVARINT_MAX_LEN + 1];
    size_t k = tsdb_put_uvarint(head, c->len);
    head[k] = c->encoding;
    uint8_t sum[4];
    tsdb_put_be32(sum, tsdb_crc32c(tsdb_crc32c(0, &c->encoding, 1), c->data, c->len));
    int rc = put(w, head, k + 1, err);
    if (!rc)
        rc = put(w, c->data, c->len, err);
    if (!rc)
        rc = put(w, sum, sizeof sum, err);
    return rc;
}

/* Prometheus's size estimate of one chunk record when planning segment cuts. */
static uint64_t estimate(const struct tsdb_chunk *c)
{
    return TSDB_CHUNKS_LEN_FIELD_MAX + 1 + (uint64_t)c->len + 4;
}

int tsdb_chunks_writer_write(struct tsdb_chunks_writer *w, const struct tsdb_chunk *chunks,
                             size_t n, uint64_t *refs, struct mp_err *err)
{
    if (!w || !chunks || !refs || n == 0)
        return mp_err_set(err, MP_EINVAL, "chunks writer: empty batch");
    if (w->broken)
        return mp_err_set(err, w->broken, "%s", w->broken_err.msg);
    /* Plan as Prometheus's WriteChunks: the batch is split where the running estimate would
     * overflow a segment; the first part also counts what the current segment holds. */
    int rc = w->fd < 0 ? cut(w, err) : 0;
    const uint64_t start = w->n; /* planning looks at the segment as it was before the batch */
    uint64_t batch = 0;
    bool first = true;
    for (size_t i = 0; i < n && !rc; i++) {
        uint64_t sz = estimate(&chunks[i]);
        batch += sz;
        bool cut_here = i != 0 && batch + TSDB_CHUNKS_HEADER_SIZE > w->opt.segment_size;
        if (first && start > TSDB_CHUNKS_HEADER_SIZE) {
            cut_here = batch + start > w->opt.segment_size;
            if (cut_here)
                first = false;
        }
        if (cut_here) {
            batch = sz;
            rc = cut(w, err);
        }
        if (!rc)
            rc = write_one(w, &chunks[i], &refs[i], err);
    }
    return rc;
}

size_t tsdb_chunks_writer_segments(const struct tsdb_chunks_writer *w)
{
    return w->nseg;
}

uint64_t tsdb_chunks_writer_size(const struct tsdb_chunks_writer *w)
{
    return w->total;
}

int tsdb_chunks_writer_close(struct tsdb_chunks_writer *w, struct mp_err *err)
{
    if (!w)
        return 0;
    int rc = w->broken ? mp_err_set(err, w->broken, "%s", w->broken_err.msg) : 0;
    if (!rc)
        rc = finish_segment(w, err);
    if (!rc && w->opt.fsync && fsync(w->dirfd) != 0)
        rc = io_error(err, errno, "fsync", w->dir, NULL);
    if (w->fd >= 0)
        close(w->fd);
    close(w->dirfd);
    mp_free(w->buf);
    mp_free(w->dir);
    mp_free(w);
    return rc;
}

/* ---- reader ------------------------------------------------------------------------------- */

struct segment {
    const uint8_t *p;
    size_t len;
    bool mapped;
};

struct tsdb_chunks_reader {
    char *dir; /* "<memory>" for open_mem */
    struct segment *segs;
    size_t n;
    uint64_t size;
};

void tsdb_chunks_reader_close(struct tsdb_chunks_reader *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        if (r->segs[i].mapped)
            munmap((void *)r->segs[i].p, r->segs[i].len);
    mp_free(r->segs);
    mp_free(r->dir);
    mp_free(r);
}

static int check_header(const struct tsdb_chunks_reader *r, size_t i, struct mp_err *err)
{
    const struct segment *s = &r->segs[i];
    char name[16];
    tsdb_chunks_file_name(name, (uint32_t)(i + 1));
    if (s->len < TSDB_CHUNKS_HEADER_SIZE)
        return mp_err_set(err, MP_EPARSE, "%s/%s: %zu bytes, shorter than the segment header",
                          r->dir, name, s->len);
    uint32_t m = tsdb_get_be32(s->p);
    if (m != TSDB_CHUNKS_MAGIC)
        return mp_err_set(err, MP_EPARSE, "%s/%s: offset 0: invalid magic number %08x", r->dir,
                          name, (unsigned)m);
    if (s->p[4] != TSDB_CHUNKS_VERSION)
        return mp_err_set(err, MP_EPARSE, "%s/%s: offset 4: invalid chunk format version %u",
                          r->dir, name, s->p[4]);
    return 0;
}

static int map_segment(struct tsdb_chunks_reader *r, int dirfd, size_t i, struct mp_err *err)
{
    char name[16];
    tsdb_chunks_file_name(name, (uint32_t)(i + 1));
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return io_error(err, errno, "open", r->dir, name);
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = io_error(err, errno, "stat", r->dir, name);
    } else if ((uint64_t)st.st_size < TSDB_CHUNKS_HEADER_SIZE) {
        rc = mp_err_set(err, MP_EPARSE, "%s/%s: %lld bytes, shorter than the segment header",
                        r->dir, name, (long long)st.st_size);
    } else if ((uint64_t)st.st_size > SIZE_MAX) {
        rc = mp_err_set(err, MP_EPARSE, "%s/%s: too large to map", r->dir, name);
    } else {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            rc = io_error(err, errno, "mmap", r->dir, name);
        } else {
            r->segs[i] = (struct segment){p, (size_t)st.st_size, true};
            r->n = i + 1;
        }
    }
    close(fd);
    return rc;
}

static int reader_finish(struct tsdb_chunks_reader *r, struct tsdb_chunks_reader **out,
                         struct mp_err *err)
{
    for (size_t i = 0; i < r->n; i++) {
        int rc = check_header(r, i, err);
        if (rc) {
            tsdb_chunks_reader_close(r);
            return rc;
        }
        r->size += r->segs[i].len;
    }
    *out = r;
    return 0;
}

int tsdb_chunks_reader_open(const char *dir, struct tsdb_chunks_reader **out, struct mp_err *err)
{
    int dirfd = -1;
    int rc = tsdb_chunks_open_dir(dir, false, &dirfd, err);
    if (rc)
        return rc;
    uint32_t *nums = NULL;
    size_t n = 0;
    rc = tsdb_chunks_list_numbered(dir, &nums, &n, err);
    for (size_t i = 0; !rc && i < n; i++)
        if (nums[i] != i + 1) {
            char name[16];
            tsdb_chunks_file_name(name, (uint32_t)(i + 1));
            rc = mp_err_set(err, MP_EPARSE, "%s: segment %s missing (segments must be numbered "
                            "from 000001 without gaps)", dir, name);
        }
    mp_free(nums);
    struct tsdb_chunks_reader *r = mp_xcalloc(1, sizeof *r);
    r->dir = mp_xstrdup(dir);
    r->segs = n ? mp_xcalloc(n, sizeof *r->segs) : NULL;
    for (size_t i = 0; !rc && i < n; i++)
        rc = map_segment(r, dirfd, i, err);
    close(dirfd);
    if (rc) {
        tsdb_chunks_reader_close(r);
        return rc;
    }
    return reader_finish(r, out, err);
}

int tsdb_chunks_reader_open_mem(const uint8_t *data, size_t len, struct tsdb_chunks_reader **out,
                                struct mp_err *err)
{
    struct tsdb_chunks_reader *r = mp_xcalloc(1, sizeof *r);
    r->dir = mp_xstrdup("<memory>");
    r->segs = mp_xcalloc(1, sizeof *r->segs);
    r->segs[0] = (struct segment){data, len, false};
    r->n = 1;
    return reader_finish(r, out, err);
}

/* Where a record lies: pos is the offset of the encoding byte, end the offset just past the
 * CRC; both inside seg. */
struct loc {
    const struct segment *seg;
    size_t pos, len, end;
};

/* Locates the record at ref (*out untouched on failure). */
static int locate(const struct tsdb_chunks_reader *r, uint64_t ref, struct loc *out,
                  struct mp_err *err)
{
    uint64_t idx = ref >> 32;
    uint64_t off = ref & UINT32_MAX;
    if (idx >= r->n)
        return mp_err_set(err, MP_EPARSE, "%s: chunk ref %#llx: segment index %llu out of range "
                          "(%zu segments)", r->dir, (unsigned long long)ref,
                          (unsigned long long)idx, r->n);
    const struct segment *s = &r->segs[idx];
    char name[16];
    tsdb_chunks_file_name(name, (uint32_t)(idx + 1));
    if (off < TSDB_CHUNKS_HEADER_SIZE || off >= s->len)
        return mp_err_set(err, MP_EPARSE, "%s/%s: offset %llu: chunk ref outside the segment "
                          "(%zu bytes)", r->dir, name, (unsigned long long)off, s->len);
    uint64_t len = 0;
    int k = tsdb_get_uvarint(s->p + off, s->len - off, &len);
    if (k <= 0)
        return mp_err_set(err, MP_EPARSE, "%s/%s: offset %llu: %s chunk length", r->dir, name,
                          (unsigned long long)off, k == 0 ? "truncated" : "overflowing");
    size_t p = (size_t)off + (size_t)k;
    size_t room = s->len - p;
    if (room < 5 || len > room - 5)
        return mp_err_set(err, MP_EPARSE, "%s/%s: offset %llu: chunk of %llu bytes runs past the "
                          "segment end (%zu bytes)", r->dir, name, (unsigned long long)off,
                          (unsigned long long)len, s->len);
    *out = (struct loc){s, p, (size_t)len, p + 1 + (size_t)len + 4};
    return 0;
}

int tsdb_chunks_reader_get(const struct tsdb_chunks_reader *r, uint64_t ref, uint8_t *enc,
                           const uint8_t **data, size_t *len, struct mp_err *err)
{
    struct loc l = {0};
    int rc = locate(r, ref, &l, err);
    if (rc)
        return rc;
    if (enc)
        *enc = l.seg->p[l.pos];
    *data = l.seg->p + l.pos + 1;
    *len = l.len;
    return 0;
}

static int verify(const struct tsdb_chunks_reader *r, uint64_t ref, const struct loc *l,
                  struct mp_err *err)
{
    uint32_t want = tsdb_get_be32(l->seg->p + l->end - 4);
    uint32_t got = tsdb_crc32c(0, l->seg->p + l->pos, l->end - 4 - l->pos);
    if (want == got)
        return 0;
    char name[16];
    tsdb_chunks_file_name(name, (uint32_t)((ref >> 32) + 1));
    return mp_err_set(err, MP_EPARSE, "%s/%s: offset %llu: checksum mismatch expected:%08x, "
                      "actual:%08x", r->dir, name, (unsigned long long)(ref & UINT32_MAX),
                      (unsigned)want, (unsigned)got);
}

int tsdb_chunks_reader_check(const struct tsdb_chunks_reader *r, uint64_t ref, struct mp_err *err)
{
    struct loc l = {0};
    int rc = locate(r, ref, &l, err);
    return rc ? rc : verify(r, ref, &l, err);
}

int tsdb_chunks_reader_walk(const struct tsdb_chunks_reader *r, tsdb_chunks_walk_fn *fn,
                            void *ctx, struct mp_err *err)
{
    for (size_t i = 0; i < r->n; i++) {
        size_t off = TSDB_CHUNKS_HEADER_SIZE;
        while (off < r->segs[i].len) {
            uint64_t ref = (uint64_t)i << 32 | off;
            struct loc l = {0};
            int rc = off <= UINT32_MAX ? locate(r, ref, &l, err)
                                       : mp_err_set(err, MP_EPARSE, "%s: segment %zu larger "
                                                    "than a ref can address", r->dir, i + 1);
            if (!rc)
                rc = verify(r, ref, &l, err);
            if (!rc)
                rc = fn(ctx, ref, l.seg->p[l.pos], l.seg->p + l.pos + 1, l.len);
            if (rc)
                return rc;
            off = l.end;
        }
    }
    return 0;
}

size_t tsdb_chunks_reader_segments(const struct tsdb_chunks_reader *r)
{
    return r->n;
}

uint64_t tsdb_chunks_reader_size(const struct tsdb_chunks_reader *r)
{
    return r->size;
}

void tsdb_chunks_reader_drop_pages(const struct tsdb_chunks_reader *r)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->segs[i].mapped)
            (void)madvise((void *)r->segs[i].p, r->segs[i].len, MADV_DONTNEED);
}
