/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/wal.c: write-ahead log writer, reader and repair in Prometheus's wlog layout
 * (spec tsdb.md 3.1-3.5, tsdb/WAL.md). One segment, as bytes:
 *
 *   page 0 (32768 bytes)                               page 1
 *   +-----------+---------+-----------+------+-------+ +-----------+---------+----
 *   |hdr FULL   | payload |hdr FIRST  | pay- | 00 00 | |hdr LAST   | payload | ...
 *   +-----------+---------+-----------+------+-------+ +-----------+---------+----
 *   hdr = type|flags (1) BE16 len (2) BE32 CRC32C(payload) (4); padding when < 7 bytes left
 *
 * Writer invariant: wbuf holds the segment bytes from wbase (a page boundary) to wbase + wlen;
 * [0, wflushed) of it is already in the file. wlen % PAGE is the fill of the current page and
 * is never in (PAGE - 7, PAGE): a page with fewer than 7 free bytes is padded at once. After
 * every successful log call wflushed == wlen, i.e. the kernel has every acknowledged byte.
 *
 * Reader: each segment is parsed on its own (a record never crosses segments), page by page;
 * corruption is reported with the segment and the offset of the offending fragment header. */
#include "tsdb/wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "common/alloc.h"
#include "tsdb/bytes.h"

#define PAGE ((size_t)TSDB_WAL_PAGE_SIZE)
#define HDR ((size_t)TSDB_WAL_HEADER_SIZE)
/* Write buffer: a batch up to this size goes to the kernel in one write(). */
#define WBUF_SIZE (32 * PAGE)

/* ---- CRC32-Castagnoli ---------------------------------------------------------------------- */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static bool crc_hw;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0 - (c & 1)));
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc_sw(uint32_t c, const uint8_t *p, size_t n)
{
    while (n && ((uintptr_t)p & 7)) {
        c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xff];
        n--;
    }
    while (n >= 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                           (uint32_t)p[3] << 24);
        c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
            crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^
            crc_table[2][p[5]] ^ crc_table[1][p[6]] ^ crc_table[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xff];
    return c;
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t c, const uint8_t *p,
                                                            size_t n)
{
    uint64_t c64 = c;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = __builtin_ia32_crc32di(c64, v);
        p += 8;
        n -= 8;
    }
    c = (uint32_t)c64;
    while (n--)
        c = __builtin_ia32_crc32qi(c, *p++);
    return c;
}
#endif

uint32_t tsdb_crc32c_portable(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&crc_once, crc_init);
    return ~crc_sw(~crc, p, n);
}

uint32_t tsdb_crc32c(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&crc_once, crc_init);
#if defined(__x86_64__) && defined(__GNUC__)
    if (crc_hw)
        return ~crc_sse42(~crc, p, n);
#endif
    return ~crc_sw(~crc, p, n);
}

/* ---- small helpers -------------------------------------------------------------------------- */

static int io_error(struct mp_err *err, int e, const char *what, const char *dir, const char *name)
{
    return mp_err_set(err, MP_EIO, "%s %s%s%s: %s", what, dir, name ? "/" : "", name ? name : "",
                      strerror(e));
}

static void seg_name(char buf[16], int seg)
{
    snprintf(buf, 16, "%08d", seg);
}

/* A name made only of digits (what Prometheus's strconv.Atoi accepts for a segment). */
static int parse_index(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 9)
        return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int fsync_dir(int dirfd)
{
    return fsync(dirfd) == 0 ? 0 : errno;
}

/* A readdir stream over the open directory, from its start; dirfd stays open. */
static int dir_stream(int dirfd, const char *dir, DIR **out, struct mp_err *err)
{
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return io_error(err, e, "list", dir, NULL);
    }
    rewinddir(d);
    *out = d;
    return 0;
}

/* Segment numbers found in the open directory, sorted (caller frees *out). */
static int list_segments(int dirfd, const char *dir, int **out, size_t *n, struct mp_err *err)
{
    DIR *d = NULL;
    int rc = dir_stream(dirfd, dir, &d, err);
    if (rc)
        return rc;
    size_t cnt = 0, cap = 0;
    int *v = NULL;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int idx = parse_index(de->d_name);
        if (idx < 0)
            continue;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            v = mp_xrealloc(v, cap * sizeof *v);
        }
        v[cnt++] = idx;
    }
    closedir(d);
    for (size_t i = 1; i < cnt; i++) /* insertion sort: directories hold few segments */
        for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
            int t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    *out = v;
    *n = cnt;
    return 0;
}

static int check_contiguous(const int *v, size_t n, const char *dir, struct mp_err *err)
{
    for (size_t i = 1; i < n; i++)
        if (v[i] != v[i - 1] + 1)
            return mp_err_set(err, MP_EPARSE, "%s: segments are not sequential (%08d then %08d)",
                              dir, v[i - 1], v[i]);
    return 0;
}

static int open_dir(const char *dir, int *out, struct mp_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return io_error(err, errno, "open", dir, NULL);
    *out = fd;
    return 0;
}

int tsdb_wal_segments(const char *dir, int *first, int *last, struct mp_err *err)
{
    int dirfd = -1, rc = open_dir(dir, &dirfd, err);
    if (rc)
        return rc;
    int *v = NULL;
    size_t n = 0;
    rc = list_segments(dirfd, dir, &v, &n, err);
    close(dirfd);
    if (rc == 0)
        rc = check_contiguous(v, n, dir, err);
    if (rc == 0) {
        *first = n ? v[0] : -1;
        *last = n ? v[n - 1] : -1;
    }
    mp_free(v);
    return rc;
}

static int last_checkpoint_fd(int dirfd, const char *dir, int *index, struct mp_err *err)
{
    DIR *d = NULL;
    int rc = dir_stream(dirfd, dir, &d, err);
    if (rc)
        return rc;
    int best = -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "checkpoint.", 11) != 0)
            continue;
        int idx = parse_index(de->d_name + 11); /* ".tmp" suffixes fail to parse */
        if (idx > best)
            best = idx;
    }
    closedir(d);
    *index = best;
    return 0;
}

int tsdb_wal_checkpoint_last(const char *dir, int *index, struct mp_err *err)
{
    int dirfd = -1, rc = open_dir(dir, &dirfd, err);
    if (rc)
        return rc;
    rc = last_checkpoint_fd(dirfd, dir, index, err);
    close(dirfd);
    return rc;
}

/* ---- writer -------------------------------------------------------------------------------- */

struct tsdb_wal {
    pthread_mutex_t mu; /* guards everything below except the immutable fields */
    char *dir;          /* immutable after open */
    int dirfd;          /* immutable after open */
    struct tsdb_wal_options opt;
    size_t pages_per_seg;

    int seg; /* segment being written */
    int fd;
    uint8_t *wbuf;   /* WBUF_SIZE bytes */
    uint64_t wbase;  /* segment offset of wbuf[0], a multiple of PAGE */
    size_t wlen;     /* bytes of wbuf filled */
    size_t wflushed; /* bytes of wbuf already written to fd */
    bool wrote_in_call;

    uint8_t *cbuf; /* compression scratch, grows to the largest record */
    size_t ccap;
    ZSTD_CCtx *zc;

    struct tsdb_wal_stats st;

    /* TSDB_WAL_FSYNC_INTERVAL flusher */
    pthread_t flusher;
    bool flusher_running;
    bool stop;
    pthread_cond_t cv;
    bool dirty;      /* bytes written to fd since the last fdatasync snapshot */
    bool dir_dirty;  /* a segment was created since the last directory fsync */
    int retired_fd;  /* closed segment the flusher still has to fdatasync, -1 if none */
};

void tsdb_wal_options_init(struct tsdb_wal_options *o)
{
    o->segment_size = TSDB_WAL_DEFAULT_SEGMENT_SIZE;
    o->compression = TSDB_WAL_COMPRESS_SNAPPY;
    o->fsync = TSDB_WAL_FSYNC_INTERVAL;
    o->fsync_interval_ms = 1000;
}

static int do_fdatasync(struct tsdb_wal *w, int fd)
{
    if (fdatasync(fd) != 0) {
        w->st.fsync_errors++;
        return errno;
    }
    w->st.fsyncs++;
    return 0;
}

static int create_segment(struct tsdb_wal *w, int seg, int *out, struct mp_err *err)
{
    char name[16];
    seg_name(name, seg);
    int fd = openat(w->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0)
        return io_error(err, errno, "create segment", w->dir, name);
    w->st.segments_created++;
    *out = fd;
    return 0;
}

/* Writes wbuf[wflushed, wlen) at its file offset, then drops the full pages from wbuf.
 * On failure the file is cut back to what was written before, so no partial bytes linger. */
static int flush_locked(struct tsdb_wal *w, struct mp_err *err)
{
    size_t off = w->wflushed;
    while (off < w->wlen) {
        ssize_t k = pwrite(w->fd, w->wbuf + off, w->wlen - off, (off_t)(w->wbase + off));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            int e = k < 0 ? errno : ENOSPC;
            w->st.write_errors++;
            if (ftruncate(w->fd, (off_t)(w->wbase + w->wflushed)) != 0) {
                /* the reader will see a torn tail and repair it */
            }
            char name[16];
            seg_name(name, w->seg);
            return io_error(err, e, "write segment", w->dir, name);
        }
        w->st.writes++;
        w->st.bytes_written += (uint64_t)k;
        off += (size_t)k;
    }
    if (w->wflushed != w->wlen) {
        w->dirty = true;
        w->wrote_in_call = true;
    }
    size_t full = w->wlen / PAGE * PAGE;
    if (full) {
        memmove(w->wbuf, w->wbuf + full, w->wlen - full);
        w->wbase += full;
        w->wlen -= full;
    }
    w->wflushed = w->wlen;
    return 0;
}

static void pad_page_locked(struct tsdb_wal *w)
{
    size_t fill = w->wlen % PAGE;
    if (fill) {
        memset(w->wbuf + w->wlen, 0, PAGE - fill);
        w->wlen += PAGE - fill;
    }
}

/* Hands a finished segment's fd over to the fsync policy. */
static void retire_fd_locked(struct tsdb_wal *w, int fd)
{
    switch (w->opt.fsync) {
    case TSDB_WAL_FSYNC_NONE:
        break;
    case TSDB_WAL_FSYNC_INTERVAL:
        if (w->retired_fd < 0) {
            w->retired_fd = fd;
            w->dir_dirty = true;
            return;
        }
        /* the flusher is behind: sync here rather than queue without bound */
        (void)do_fdatasync(w, fd);
        (void)fsync_dir(w->dirfd);
        break;
    case TSDB_WAL_FSYNC_SEGMENT:
    case TSDB_WAL_FSYNC_ALWAYS:
        (void)do_fdatasync(w, fd);
        (void)fsync_dir(w->dirfd);
        break;
    }
    close(fd);
}

/* Pads and writes the current page, then switches to a fresh segment. The new file is created
 * before the old one is let go, so a failure leaves a usable writer on the old segment. */
static int cut_segment_locked(struct tsdb_wal *w, struct mp_err *err)
{
    pad_page_locked(w);
    int rc = flush_locked(w, err);
    if (rc)
        return rc;
    int nfd = -1;
    rc = create_segment(w, w->seg + 1, &nfd, err);
    if (rc)
        return rc;
    int old = w->fd;
    w->fd = nfd;
    w->seg++;
    w->wbase = 0;
    w->wlen = w->wflushed = 0;
    w->wrote_in_call = true;
    retire_fd_locked(w, old);
    return 0;
}

static int compress_locked(struct tsdb_wal *w, const struct mp_str *rec, const uint8_t **data,
                           size_t *len, uint8_t *flags, struct mp_err *err)
{
    *data = (const uint8_t *)rec->ptr;
    *len = rec->len;
    *flags = 0;
    if (w->opt.compression == TSDB_WAL_COMPRESS_NONE || rec->len == 0)
        return 0;
    size_t need = w->opt.compression == TSDB_WAL_COMPRESS_SNAPPY
                      ? snappy_max_compressed_length(rec->len)
                      : ZSTD_compressBound(rec->len);
    if (need > w->ccap) {
        uint8_t *p = mp_realloc(w->cbuf, need);
        if (!p)
            return mp_err_set(err, MP_ENOMEM, "WAL compression buffer of %zu bytes", need);
        w->cbuf = p;
        w->ccap = need;
    }
    size_t clen = w->ccap;
    if (w->opt.compression == TSDB_WAL_COMPRESS_SNAPPY) {
        if (snappy_compress(rec->ptr, rec->len, (char *)w->cbuf, &clen) != SNAPPY_OK)
            return 0; /* store uncompressed */
    } else {
        size_t r = ZSTD_compressCCtx(w->zc, w->cbuf, w->ccap, rec->ptr, rec->len, 1);
        if (ZSTD_isError(r))
            return 0;
        clen = r;
    }
    if (clen < rec->len) { /* only when strictly shorter, as Prometheus */
        *data = w->cbuf;
        *len = clen;
        *flags = w->opt.compression == TSDB_WAL_COMPRESS_SNAPPY ? TSDB_WAL_FLAG_SNAPPY
                                                                 : TSDB_WAL_FLAG_ZSTD;
    }
    return 0;
}

static int log_one_locked(struct tsdb_wal *w, const struct mp_str *rec, struct mp_err *err)
{
    const uint8_t *data;
    size_t len;
    uint8_t flags;
    int rc = compress_locked(w, rec, &data, &len, &flags, err);
    if (rc)
        return rc;

    /* a record never crosses segments: cut first if it does not fit in what is left here
     * (7 header bytes per page); an empty segment takes any record and grows past nominal */
    uint64_t pos = w->wbase + w->wlen;
    uint64_t done_pages = pos / PAGE;
    uint64_t left = PAGE - (pos % PAGE) - HDR;
    if (done_pages + 1 < w->pages_per_seg)
        left += (PAGE - HDR) * (w->pages_per_seg - done_pages - 1);
    if (len > left && pos > 0) {
        rc = cut_segment_locked(w, err);
        if (rc)
            return rc;
    }

    for (size_t i = 0; i == 0 || len > 0; i++) {
        if (w->wlen == WBUF_SIZE) {
            rc = flush_locked(w, err);
            if (rc)
                return rc;
        }
        size_t fill = w->wlen % PAGE;
        size_t room = PAGE - fill - HDR;
        size_t l = len < room ? len : room;
        uint8_t typ;
        if (i == 0)
            typ = l == len ? TSDB_WAL_FRAG_FULL : TSDB_WAL_FRAG_FIRST;
        else
            typ = l == len ? TSDB_WAL_FRAG_LAST : TSDB_WAL_FRAG_MIDDLE;
        uint8_t *h = w->wbuf + w->wlen;
        h[0] = typ | flags;
        tsdb_put_be16(h + 1, (uint16_t)l);
        tsdb_put_be32(h + 3, tsdb_crc32c(0, data, l));
        if (l)
            memcpy(h + HDR, data, l);
        w->wlen += HDR + l;
        if (w->wlen % PAGE != 0 && PAGE - w->wlen % PAGE < HDR)
            pad_page_locked(w);
        data += l;
        len -= l;
    }
    w->st.records++;
    return 0;
}

int tsdb_wal_log(struct tsdb_wal *w, const struct mp_str *records, size_t n, struct mp_err *err)
{
    pthread_mutex_lock(&w->mu);
    size_t start_len = w->wlen;
    uint64_t start_records = w->st.records;
    w->wrote_in_call = false;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = log_one_locked(w, &records[i], err);
    if (rc == 0)
        rc = flush_locked(w, err);
    if (rc == 0 && w->opt.fsync == TSDB_WAL_FSYNC_ALWAYS) {
        int e = do_fdatasync(w, w->fd);
        if (e) {
            char name[16];
            seg_name(name, w->seg);
            rc = io_error(err, e, "fdatasync segment", w->dir, name);
        }
    }
    if (rc && !w->wrote_in_call) {
        /* nothing of this call reached the file: forget it, so a failed commit never
         * resurfaces on replay */
        w->wlen = start_len;
        w->st.records = start_records;
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int tsdb_wal_sync(struct tsdb_wal *w, struct mp_err *err)
{
    pthread_mutex_lock(&w->mu);
    int rc = flush_locked(w, err);
    int fd = rc == 0 ? dup(w->fd) : -1;
    int dup_errno = errno;
    int old = w->retired_fd;
    w->retired_fd = -1;
    if (fd >= 0)
        w->dirty = false;
    w->dir_dirty = false;
    pthread_mutex_unlock(&w->mu);
    /* fdatasync outside the lock: commits keep flowing meanwhile */
    int e = 0;
    if (old >= 0) {
        if (fdatasync(old) != 0)
            e = errno;
        close(old);
    }
    if (rc == 0 && fd < 0)
        e = dup_errno;
    if (fd >= 0) {
        if (fdatasync(fd) != 0 && !e)
            e = errno;
        close(fd);
    }
    if (!e)
        e = fsync_dir(w->dirfd);
    pthread_mutex_lock(&w->mu);
    if (e)
        w->st.fsync_errors++;
    else
        w->st.fsyncs++;
    pthread_mutex_unlock(&w->mu);
    if (rc == 0 && e)
        rc = io_error(err, e, "fdatasync", w->dir, NULL);
    return rc;
}

int tsdb_wal_next_segment(struct tsdb_wal *w, int *segment, struct mp_err *err)
{
    pthread_mutex_lock(&w->mu);
    int rc = cut_segment_locked(w, err);
    if (rc == 0 && segment)
        *segment = w->seg;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int tsdb_wal_segment(struct tsdb_wal *w)
{
    pthread_mutex_lock(&w->mu);
    int s = w->seg;
    pthread_mutex_unlock(&w->mu);
    return s;
}

void tsdb_wal_stats_get(struct tsdb_wal *w, struct tsdb_wal_stats *out)
{
    pthread_mutex_lock(&w->mu);
    *out = w->st;
    pthread_mutex_unlock(&w->mu);
}

/* Background fdatasync for TSDB_WAL_FSYNC_INTERVAL. Takes the mutex only to snapshot which
 * descriptors need syncing (dup keeps the current segment valid even if a cut closes it). */
static void *flusher_main(void *arg)
{
    struct tsdb_wal *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = ts.tv_nsec + (w->opt.fsync_interval_ms % 1000) * 1000000;
        ts.tv_sec += (time_t)(w->opt.fsync_interval_ms / 1000 + ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        while (!w->stop && pthread_cond_timedwait(&w->cv, &w->mu, &ts) != ETIMEDOUT)
            ;
        if (w->stop)
            break;
        int fd = -1, old = w->retired_fd;
        w->retired_fd = -1;
        if (w->dirty) {
            fd = dup(w->fd);
            if (fd >= 0)
                w->dirty = false;
        }
        bool dsync = w->dir_dirty;
        w->dir_dirty = false;
        pthread_mutex_unlock(&w->mu);
        int ok = 0, bad = 0;
        if (old >= 0) {
            fdatasync(old) == 0 ? ok++ : bad++;
            close(old);
        }
        if (fd >= 0) {
            fdatasync(fd) == 0 ? ok++ : bad++;
            close(fd);
        }
        if (dsync)
            (void)fsync_dir(w->dirfd);
        pthread_mutex_lock(&w->mu);
        w->st.fsyncs += (uint64_t)ok;
        w->st.fsync_errors += (uint64_t)bad;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void wal_free(struct tsdb_wal *w)
{
    if (w->fd >= 0)
        close(w->fd);
    if (w->retired_fd >= 0)
        close(w->retired_fd);
    if (w->dirfd >= 0)
        close(w->dirfd);
    ZSTD_freeCCtx(w->zc);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    mp_free(w->cbuf);
    mp_free(w->wbuf);
    mp_free(w->dir);
    mp_free(w);
}

int tsdb_wal_open(const char *dir, const struct tsdb_wal_options *opts, struct tsdb_wal **out,
                  struct mp_err *err)
{
    struct tsdb_wal_options o;
    if (opts)
        o = *opts;
    else
        tsdb_wal_options_init(&o);
    if (o.segment_size < PAGE || o.segment_size % PAGE)
        return mp_err_set(err, MP_EINVAL, "WAL segment size %zu is not a multiple of %zu",
                          o.segment_size, PAGE);
    if (o.compression > TSDB_WAL_COMPRESS_ZSTD || o.fsync > TSDB_WAL_FSYNC_ALWAYS)
        return mp_err_set(err, MP_EINVAL, "WAL options: unknown compression or fsync mode");
    if (o.fsync == TSDB_WAL_FSYNC_INTERVAL && o.fsync_interval_ms <= 0)
        return mp_err_set(err, MP_EINVAL, "WAL fsync interval must be positive");
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return io_error(err, errno, "create", dir, NULL);

    struct tsdb_wal *w = mp_xcalloc(1, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    w->dir = mp_xstrdup(dir);
    w->opt = o;
    w->pages_per_seg = o.segment_size / PAGE;
    w->fd = w->retired_fd = w->dirfd = -1;
    w->wbuf = mp_xmalloc(WBUF_SIZE);
    if (o.compression == TSDB_WAL_COMPRESS_ZSTD)
        w->zc = ZSTD_createCCtx();

    int rc = open_dir(dir, &w->dirfd, err);
    int *v = NULL;
    size_t n = 0;
    int ckpt = -1;
    if (rc == 0)
        rc = list_segments(w->dirfd, dir, &v, &n, err);
    if (rc == 0)
        rc = last_checkpoint_fd(w->dirfd, dir, &ckpt, err);
    if (rc == 0) {
        int next = n ? v[n - 1] + 1 : 0;
        if (ckpt + 1 > next)
            next = ckpt + 1;
        w->seg = next;
        rc = create_segment(w, next, &w->fd, err);
    }
    mp_free(v);
    if (rc == 0 && o.fsync != TSDB_WAL_FSYNC_NONE)
        (void)fsync_dir(w->dirfd);
    if (rc == 0 && o.fsync == TSDB_WAL_FSYNC_INTERVAL) {
        if (pthread_create(&w->flusher, NULL, flusher_main, w) != 0)
            rc = mp_err_set(err, MP_EIO, "WAL: cannot start the flusher thread");
        else
            w->flusher_running = true;
    }
    if (rc) {
        wal_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

int tsdb_wal_close(struct tsdb_wal *w, struct mp_err *err)
{
    if (!w)
        return 0;
    if (w->flusher_running) {
        pthread_mutex_lock(&w->mu);
        w->stop = true;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->flusher, NULL);
    }
    pthread_mutex_lock(&w->mu);
    pad_page_locked(w);
    int rc = flush_locked(w, err);
    if (w->opt.fsync != TSDB_WAL_FSYNC_NONE) {
        if (w->retired_fd >= 0)
            (void)do_fdatasync(w, w->retired_fd);
        int e = do_fdatasync(w, w->fd);
        if (e == 0)
            e = fsync_dir(w->dirfd);
        if (e && rc == 0)
            rc = io_error(err, e, "fdatasync", w->dir, NULL);
    }
    pthread_mutex_unlock(&w->mu);
    wal_free(w);
    return rc;
}

/* ---- reader -------------------------------------------------------------------------------- */

struct segref {
    int checkpoint; /* -1: segment of the WAL dir itself */
    int seg;
};

struct tsdb_wal_reader {
    int dirfd; /* -1 for memory input */
    char *dir;
    struct segref *segs;
    size_t nsegs, cur;
    size_t max_record;

    bool seg_open;
    int fd;
    const uint8_t *mem;
    size_t mem_len, mem_pos;

    uint8_t *page;     /* PAGE bytes */
    size_t page_len;   /* valid bytes; < PAGE only for the last page of a segment */
    size_t page_pos;
    uint64_t page_off; /* segment offset of page[0] */
    bool page_loaded;

    uint8_t *rec; /* reassembled fragments */
    size_t rec_len, rec_cap;
    uint8_t *dec; /* decompressed record */
    size_t dec_cap;
    ZSTD_DCtx *zd;

    struct tsdb_wal_pos pos;  /* start of the last record returned */
    uint64_t rec_end;         /* segment offset just past it */
    struct tsdb_wal_pos bad;
    bool corrupt;
    int sticky;               /* 0 or the error every later next() repeats */
    struct mp_err sticky_err;
};

static struct tsdb_wal_reader *reader_new(void)
{
    struct tsdb_wal_reader *r = mp_xcalloc(1, sizeof *r);
    r->dirfd = r->fd = -1;
    r->page = mp_xmalloc(PAGE);
    r->max_record = TSDB_WAL_MAX_RECORD_SIZE;
    return r;
}

void tsdb_wal_reader_close(struct tsdb_wal_reader *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    if (r->dirfd >= 0)
        close(r->dirfd);
    ZSTD_freeDCtx(r->zd);
    mp_free(r->segs);
    mp_free(r->page);
    mp_free(r->rec);
    mp_free(r->dec);
    mp_free(r->dir);
    mp_free(r);
}

static void add_seg(struct tsdb_wal_reader *r, int checkpoint, int seg, size_t *cap)
{
    if (r->nsegs == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        r->segs = mp_xrealloc(r->segs, *cap * sizeof *r->segs);
    }
    r->segs[r->nsegs++] = (struct segref){checkpoint, seg};
}

static int reader_open_dir(const char *dir, int first, int last, bool with_checkpoint,
                           struct tsdb_wal_reader **out, struct mp_err *err)
{
    struct tsdb_wal_reader *r = reader_new();
    r->dir = mp_xstrdup(dir);
    size_t cap = 0;
    int *v = NULL;
    size_t n = 0;
    int rc = open_dir(dir, &r->dirfd, err);
    if (rc == 0)
        rc = list_segments(r->dirfd, dir, &v, &n, err);
    if (rc == 0 && with_checkpoint) {
        int ck = -1;
        rc = last_checkpoint_fd(r->dirfd, dir, &ck, err);
        if (rc == 0 && ck >= 0) {
            char name[32];
            snprintf(name, sizeof name, "checkpoint.%08d", ck);
            int cfd = openat(r->dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (cfd < 0) {
                rc = io_error(err, errno, "open", dir, name);
            } else {
                int *cv = NULL;
                size_t cn = 0;
                rc = list_segments(cfd, name, &cv, &cn, err);
                close(cfd);
                if (rc == 0)
                    rc = check_contiguous(cv, cn, name, err);
                for (size_t i = 0; rc == 0 && i < cn; i++)
                    add_seg(r, ck, cv[i], &cap);
                mp_free(cv);
            }
            first = ck + 1;
        }
    }
    if (rc == 0)
        rc = check_contiguous(v, n, dir, err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (v[i] >= first && v[i] <= last)
            add_seg(r, -1, v[i], &cap);
    mp_free(v);
    if (rc) {
        tsdb_wal_reader_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

int tsdb_wal_reader_open(const char *dir, struct tsdb_wal_reader **out, struct mp_err *err)
{
    return reader_open_dir(dir, 0, INT32_MAX, true, out, err);
}

int tsdb_wal_reader_open_range(const char *dir, int first, int last, struct tsdb_wal_reader **out,
                               struct mp_err *err)
{
    return reader_open_dir(dir, first, last, false, out, err);
}

int tsdb_wal_reader_open_mem(const uint8_t *data, size_t len, struct tsdb_wal_reader **out,
                             struct mp_err *err)
{
    (void)err;
    struct tsdb_wal_reader *r = reader_new();
    r->mem = data;
    r->mem_len = len;
    size_t cap = 0;
    add_seg(r, -1, 0, &cap);
    *out = r;
    return 0;
}

void tsdb_wal_reader_set_max_record(struct tsdb_wal_reader *r, size_t max)
{
    r->max_record = max;
}

struct tsdb_wal_pos tsdb_wal_reader_pos(const struct tsdb_wal_reader *r)
{
    return r->pos;
}

bool tsdb_wal_reader_corruption(const struct tsdb_wal_reader *r, struct tsdb_wal_pos *c)
{
    if (r->corrupt && c)
        *c = r->bad;
    return r->corrupt;
}

static int reader_fail(struct tsdb_wal_reader *r, int code, uint64_t off, struct mp_err *err,
                       const char *fmt, ...) MP_PRINTF(5, 6);

static int reader_fail(struct tsdb_wal_reader *r, int code, uint64_t off, struct mp_err *err,
                       const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const struct segref *s = &r->segs[r->cur];
    char where[48] = "";
    if (s->checkpoint >= 0)
        snprintf(where, sizeof where, "checkpoint.%08d ", s->checkpoint);
    mp_err_clear(&r->sticky_err);
    mp_err_set(&r->sticky_err, code, "%s%s%ssegment %08d offset %llu: %s", r->dir ? r->dir : "",
               r->dir ? ": " : "", where, s->seg, (unsigned long long)off, what);
    r->sticky = code;
    if (code == MP_EPARSE) {
        r->corrupt = true;
        r->bad = (struct tsdb_wal_pos){s->checkpoint, s->seg, off};
    }
    return mp_err_set(err, code, "%s", r->sticky_err.msg);
}

static int open_segment(struct tsdb_wal_reader *r, struct mp_err *err)
{
    const struct segref *s = &r->segs[r->cur];
    if (r->dirfd >= 0) {
        char name[48];
        if (s->checkpoint >= 0)
            snprintf(name, sizeof name, "checkpoint.%08d/%08d", s->checkpoint, s->seg);
        else
            snprintf(name, sizeof name, "%08d", s->seg);
        r->fd = openat(r->dirfd, name, O_RDONLY | O_CLOEXEC);
        if (r->fd < 0)
            return reader_fail(r, MP_EIO, 0, err, "open: %s", strerror(errno));
    }
    r->mem_pos = 0;
    r->seg_open = true;
    r->page_len = r->page_pos = 0;
    r->page_off = 0;
    r->page_loaded = false;
    return 0;
}

static void close_segment(struct tsdb_wal_reader *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    r->seg_open = false;
    r->cur++;
}

/* Loads the next page (short only at the end of the segment); 0 bytes means end of segment. */
static int load_page(struct tsdb_wal_reader *r, struct mp_err *err)
{
    r->page_off += r->page_len;
    r->page_pos = 0;
    r->page_len = 0;
    r->page_loaded = true;
    if (r->fd < 0) {
        size_t k = r->mem_len - r->mem_pos;
        if (k > PAGE)
            k = PAGE;
        memcpy(r->page, r->mem + r->mem_pos, k);
        r->mem_pos += k;
        r->page_len = k;
        return 0;
    }
    while (r->page_len < PAGE) {
        ssize_t k = read(r->fd, r->page + r->page_len, PAGE - r->page_len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return reader_fail(r, MP_EIO, r->page_off + r->page_len, err, "read: %s",
                               strerror(errno));
        if (k == 0)
            break;
        r->page_len += (size_t)k;
    }
    return 0;
}

static int decompress(struct tsdb_wal_reader *r, uint8_t flags, uint64_t off, const uint8_t **out,
                      size_t *out_len, struct mp_err *err)
{
    if (flags == 0) {
        *out = r->rec;
        *out_len = r->rec_len;
        return 0;
    }
    if (flags == (TSDB_WAL_FLAG_SNAPPY | TSDB_WAL_FLAG_ZSTD))
        return reader_fail(r, MP_EPARSE, off, err, "record flagged both snappy and zstd");
    size_t ulen = 0;
    if (flags == TSDB_WAL_FLAG_SNAPPY) {
        if (snappy_uncompressed_length((const char *)r->rec, r->rec_len, &ulen) != SNAPPY_OK)
            return reader_fail(r, MP_EPARSE, off, err, "invalid snappy header");
        /* a snappy op expands at most 3 bytes into 64: anything claiming more is corrupt */
        if (ulen > r->max_record || ulen / 22 > r->rec_len)
            return reader_fail(r, MP_EPARSE, off, err, "snappy length %zu implausible", ulen);
    } else {
        unsigned long long fcs = ZSTD_getFrameContentSize(r->rec, r->rec_len);
        if (fcs == ZSTD_CONTENTSIZE_ERROR)
            return reader_fail(r, MP_EPARSE, off, err, "invalid zstd frame");
        ulen = fcs == ZSTD_CONTENTSIZE_UNKNOWN ? 4 * r->rec_len + 4096 : (size_t)fcs;
        if (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs > r->max_record)
            return reader_fail(r, MP_EPARSE, off, err, "zstd length %llu too large", fcs);
        if (!r->zd)
            r->zd = ZSTD_createDCtx();
    }
    for (;;) {
        if (ulen > r->dec_cap) {
            uint8_t *p = mp_realloc(r->dec, ulen ? ulen : 1);
            if (!p)
                return reader_fail(r, MP_ENOMEM, off, err, "record of %zu bytes", ulen);
            r->dec = p;
            r->dec_cap = ulen;
        }
        if (flags == TSDB_WAL_FLAG_SNAPPY) {
            size_t got = ulen;
            if (snappy_uncompress((const char *)r->rec, r->rec_len, (char *)r->dec, &got) !=
                    SNAPPY_OK ||
                got != ulen)
                return reader_fail(r, MP_EPARSE, off, err, "invalid snappy data");
            break;
        }
        size_t got = ZSTD_decompressDCtx(r->zd, r->dec, ulen, r->rec, r->rec_len);
        if (!ZSTD_isError(got)) {
            ulen = got;
            break;
        }
        if (ZSTD_getErrorCode(got) != ZSTD_error_dstSize_tooSmall || ulen >= r->max_record)
            return reader_fail(r, MP_EPARSE, off, err, "invalid zstd data: %s",
                               ZSTD_getErrorName(got));
        ulen = ulen * 2 > r->max_record ? r->max_record : ulen * 2;
    }
    *out = r->dec;
    *out_len = ulen;
    return 0;
}

int tsdb_wal_reader_next(struct tsdb_wal_reader *r, const uint8_t **rec, size_t *len,
                         struct mp_err *err)
{
    if (r->sticky)
        return mp_err_set(err, r->sticky, "%s", r->sticky_err.msg);
    bool in_rec = false;
    uint8_t flags = 0;
    uint64_t start = 0;
    r->rec_len = 0;
    for (;;) {
        if (!r->seg_open) {
            if (r->cur >= r->nsegs)
                return MP_EEOF;
            int rc = open_segment(r, err);
            if (rc)
                return rc;
        }
        if (r->page_pos >= r->page_len) {
            bool seg_end = r->page_loaded && r->page_len < PAGE;
            if (!seg_end) {
                int rc = load_page(r, err);
                if (rc)
                    return rc;
                seg_end = r->page_len == 0;
            }
            if (seg_end) {
                if (in_rec)
                    return reader_fail(r, MP_EPARSE, r->page_off + r->page_len, err,
                                       "last record is torn (segment ends inside it)");
                close_segment(r);
                continue;
            }
        }
        const uint8_t *p = r->page + r->page_pos;
        uint64_t off = r->page_off + r->page_pos;
        unsigned typ = p[0] & 7u;
        if (typ == TSDB_WAL_FRAG_PAGE_TERM) {
            /* padding runs to the end of the page; a short zero tail (a file cut by a crash)
             * is accepted as the end of the segment */
            for (size_t k = r->page_pos; k < r->page_len; k++)
                if (r->page[k] != 0)
                    return reader_fail(r, MP_EPARSE, r->page_off + k, err,
                                       "unexpected non-zero byte in padded page");
            r->page_pos = r->page_len;
            continue;
        }
        if (typ > TSDB_WAL_FRAG_LAST)
            return reader_fail(r, MP_EPARSE, off, err, "unexpected fragment type %u", typ);
        if (r->page_len - r->page_pos < HDR) {
            if (r->page_len < PAGE)
                return reader_fail(r, MP_EPARSE, off, err,
                                   "fragment header cut short by end of segment");
            return reader_fail(r, MP_EPARSE, off, err, "fragment header crosses a page boundary");
        }
        size_t flen = (size_t)p[1] << 8 | p[2];
        if (r->page_pos + HDR + flen > PAGE)
            return reader_fail(r, MP_EPARSE, off, err, "invalid fragment size %zu", flen);
        if (r->page_pos + HDR + flen > r->page_len)
            return reader_fail(r, MP_EPARSE, off, err,
                               "fragment of %zu bytes cut short by end of segment", flen);
        uint32_t want = tsdb_get_be32(p + 3), got = tsdb_crc32c(0, p + HDR, flen);
        if (want != got)
            return reader_fail(r, MP_EPARSE, off, err,
                               "CRC mismatch: stored %08x, computed %08x", want, got);
        bool begins = typ == TSDB_WAL_FRAG_FULL || typ == TSDB_WAL_FRAG_FIRST;
        if (begins && in_rec)
            return reader_fail(r, MP_EPARSE, off, err,
                               "unexpected %s fragment inside a record",
                               typ == TSDB_WAL_FRAG_FULL ? "full" : "first");
        if (!begins && !in_rec)
            return reader_fail(r, MP_EPARSE, off, err, "unexpected %s fragment",
                               typ == TSDB_WAL_FRAG_LAST ? "last" : "middle");
        if (begins) {
            start = off;
            flags = p[0] & (TSDB_WAL_FLAG_SNAPPY | TSDB_WAL_FLAG_ZSTD);
        }
        if (flen) {
            size_t need = r->rec_len + flen;
            if (need > r->max_record)
                return reader_fail(r, MP_EPARSE, start, err, "record larger than %zu bytes",
                                   r->max_record);
            if (need > r->rec_cap) {
                size_t ncap = r->rec_cap ? r->rec_cap : PAGE;
                while (ncap < need)
                    ncap *= 2;
                uint8_t *np = mp_realloc(r->rec, ncap);
                if (!np)
                    return reader_fail(r, MP_ENOMEM, start, err, "record of %zu bytes", need);
                r->rec = np;
                r->rec_cap = ncap;
            }
            memcpy(r->rec + r->rec_len, p + HDR, flen);
            r->rec_len = need;
        }
        r->page_pos += HDR + flen;
        if (typ == TSDB_WAL_FRAG_FIRST || typ == TSDB_WAL_FRAG_MIDDLE) {
            in_rec = true;
            continue;
        }
        const struct segref *s = &r->segs[r->cur];
        r->pos = (struct tsdb_wal_pos){s->checkpoint, s->seg, start};
        r->rec_end = r->page_off + r->page_pos;
        static const uint8_t empty[1];
        if (r->rec_len == 0 && flags == 0) {
            *rec = empty;
            *len = 0;
            return 0;
        }
        return decompress(r, flags, start, rec, len, err);
    }
}

/* ---- repair -------------------------------------------------------------------------------- */

int tsdb_wal_repair(const char *dir, const struct tsdb_wal_pos *c, struct mp_err *err)
{
    if (c->checkpoint >= 0)
        return mp_err_set(err, MP_EINVAL,
                          "%s: corruption in checkpoint.%08d cannot be repaired", dir,
                          c->checkpoint);
    int dirfd = -1, rc = open_dir(dir, &dirfd, err);
    if (rc)
        return rc;
    int *v = NULL;
    size_t n = 0;
    rc = list_segments(dirfd, dir, &v, &n, err);
    /* later segments go first, highest number first, so a crash mid-repair leaves a
     * contiguous prefix */
    for (size_t i = n; rc == 0 && i-- > 0;) {
        if (v[i] <= c->segment)
            break;
        char name[16];
        seg_name(name, v[i]);
        if (unlinkat(dirfd, name, 0) != 0)
            rc = io_error(err, errno, "delete segment", dir, name);
    }
    mp_free(v);

    /* the last complete record that ends at or before the corruption */
    uint64_t good_end = 0;
    struct tsdb_wal_reader *r = NULL;
    if (rc == 0)
        rc = tsdb_wal_reader_open_range(dir, c->segment, c->segment, &r, err);
    while (rc == 0) {
        const uint8_t *rec;
        size_t len;
        struct mp_err rerr = {0};
        int k = tsdb_wal_reader_next(r, &rec, &len, &rerr);
        if (k == 0 && r->rec_end <= c->offset) {
            good_end = r->rec_end;
            continue;
        }
        if (k != 0 && k != MP_EEOF && k != MP_EPARSE)
            rc = mp_err_set(err, k, "repair: %s", rerr.msg);
        break;
    }
    tsdb_wal_reader_close(r);

    if (rc == 0) {
        char name[16];
        seg_name(name, c->segment);
        int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);
        uint64_t padded = (good_end + PAGE - 1) / PAGE * PAGE;
        /* cut, then extend: the rest of the last page reads back as zero padding */
        if (fd < 0 || ftruncate(fd, (off_t)good_end) != 0 ||
            ftruncate(fd, (off_t)padded) != 0 || fdatasync(fd) != 0)
            rc = io_error(err, errno, "repair segment", dir, name);
        if (fd >= 0)
            close(fd);
    }
    if (rc == 0) {
        int e = fsync_dir(dirfd);
        if (e)
            rc = io_error(err, e, "fsync", dir, NULL);
    }
    close(dirfd);
    return rc;
}
