/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/head_chunks.c: the chunks_head/ files of the head, in Prometheus's format (spec tsdb.md
 * 2.4; tsdb/head_chunks.h has the contract and the locking). One record:
 *
 *   0          8          16         24  25          25+k      25+k+len     +4
 *   +----------+----------+----------+---+-----------+---------+------------+
 *   |series ref|  mint    |  maxt    |enc|uvarint len|  data   |CRC32C(0..) |
 *   +----------+----------+----------+---+-----------+---------+------------+
 *
 * State of the file being written (all under the writer mutex):
 *
 *   file offset 0            cur_flushed           cur_size
 *   |----- in the file -------|---- buf[0, blen) ----|
 *                             = cur->readable (atomic, what get may touch through the map)
 *
 * Every file this process creates is mapped at max_file_size up front (address space only; the
 * pages are the page cache's), so the mapping never has to grow or move and readers need no lock
 * to keep using a slice; get only reads below `readable`, so it never touches a page past the
 * end of the file (which would raise SIGBUS). Files found at open are mapped at their size. */
#include "tsdb/head_chunks.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"
#include "tsdb/chunks.h"
#include "tsdb/tsdb.h"
#include "tsdb/wal.h"

/* ---- records ------------------------------------------------------------------------------ */

size_t tsdb_head_chunks_record_size(size_t len)
{
    size_t fixed = TSDB_HEAD_CHUNKS_RECORD_FIXED + tsdb_uvarint_len(len) + TSDB_HEAD_CHUNKS_CRC_SIZE;
    return len > SIZE_MAX - fixed ? 0 : fixed + len;
}

size_t tsdb_head_chunks_record_encode(uint8_t *out, const struct tsdb_head_chunk_record *r)
{
    tsdb_put_be64(out, r->series_ref);
    tsdb_put_be64(out + 8, (uint64_t)r->mint_ms);
    tsdb_put_be64(out + 16, (uint64_t)r->maxt_ms);
    out[24] = r->encoding;
    size_t n = TSDB_HEAD_CHUNKS_RECORD_FIXED + tsdb_put_uvarint(out + 25, r->len);
    if (r->len)
        memcpy(out + n, r->data, r->len);
    n += r->len;
    tsdb_put_be32(out + n, tsdb_crc32c(0, out, n));
    return n + TSDB_HEAD_CHUNKS_CRC_SIZE;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

int tsdb_head_chunks_record_parse(const uint8_t *p, size_t avail, bool verify_crc,
                                  struct tsdb_head_chunk_record *r, const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    if (avail < TSDB_HEAD_CHUNKS_RECORD_FIXED) {
        if (all_zero(p, avail))
            return MP_EEOF;
        *why = "record header cut short by the end of the file";
        return MP_EAGAIN;
    }
    if (all_zero(p, TSDB_HEAD_CHUNKS_RECORD_FIXED))
        return MP_EEOF;
    uint64_t len = 0;
    size_t rest = avail - TSDB_HEAD_CHUNKS_RECORD_FIXED;
    int k = tsdb_get_uvarint(p + TSDB_HEAD_CHUNKS_RECORD_FIXED, rest, &len);
    if (k < 0) {
        *why = "overflowing chunk length";
        return MP_EPARSE;
    }
    if (k == 0) {
        *why = "chunk length cut short by the end of the file";
        return MP_EAGAIN;
    }
    rest -= (size_t)k;
    if (rest < TSDB_HEAD_CHUNKS_CRC_SIZE || len > rest - TSDB_HEAD_CHUNKS_CRC_SIZE) {
        *why = "chunk cut short by the end of the file";
        return MP_EAGAIN;
    }
    size_t body = TSDB_HEAD_CHUNKS_RECORD_FIXED + (size_t)k + (size_t)len;
    if (verify_crc && tsdb_crc32c(0, p, body) != tsdb_get_be32(p + body)) {
        *why = "checksum mismatch";
        return MP_EPARSE;
    }
    r->series_ref = tsdb_get_be64(p);
    r->mint_ms = (int64_t)tsdb_get_be64(p + 8);
    r->maxt_ms = (int64_t)tsdb_get_be64(p + 16);
    r->encoding = p[24];
    r->data = p + TSDB_HEAD_CHUNKS_RECORD_FIXED + k;
    r->len = (size_t)len;
    r->size = body + TSDB_HEAD_CHUNKS_CRC_SIZE;
    return 0;
}

/* ---- the directory ------------------------------------------------------------------------ */

struct hfile {
    uint32_t num;
    int fd;                    /* the file being written only; -1 otherwise */
    const uint8_t *map;        /* NULL for an empty file */
    size_t map_len;
    _Atomic uint64_t readable; /* bytes of the file that get may read through map */
};

struct tsdb_head_chunks {
    struct tsdb_head_chunks_options opt;
    char *dir;
    int dirfd;
    pthread_mutex_t wmu;      /* the writer state below, the stats */
    pthread_rwlock_t flock;   /* files[], nfiles; taken after wmu */
    struct hfile **files;     /* ascending, contiguous numbers */
    size_t nfiles, cap;
    struct hfile *cur;        /* the file being written; NULL until the first write */
    bool cut_pending;
    uint32_t last_num;        /* highest file number ever present */
    uint64_t cur_size;
    uint64_t cur_flushed;
    uint8_t *buf;
    size_t blen;
    struct tsdb_head_chunks_stats st; /* files and bytes are computed on demand */
    _Atomic bool bg_read; /* read by replay or background work since the last drop_pages */
};

static int io_error(const struct tsdb_head_chunks *hc, struct mp_err *err, int e, const char *what,
                    uint32_t num)
{
    char name[16];
    tsdb_chunks_file_name(name, num);
    return mp_err_set(err, MP_EIO, "%s %s/%s: %s", what, hc->dir, name, strerror(e));
}

void tsdb_head_chunks_options_init(struct tsdb_head_chunks_options *o)
{
    o->max_file_size = TSDB_HEAD_CHUNKS_MAX_FILE_SIZE;
    o->write_buffer_size = TSDB_HEAD_CHUNKS_DEFAULT_BUFFER_SIZE;
    o->fsync = true;
}

/* The file numbered num, or NULL. Caller holds flock (either mode) or wmu with no other writer. */
static struct hfile *lookup(const struct tsdb_head_chunks *hc, uint64_t num)
{
    if (hc->nfiles == 0 || num < hc->files[0]->num || num - hc->files[0]->num >= hc->nfiles)
        return NULL;
    return hc->files[num - hc->files[0]->num];
}

static void file_free(struct hfile *f)
{
    if (!f)
        return;
    if (f->map)
        munmap((void *)f->map, f->map_len);
    if (f->fd >= 0)
        close(f->fd);
    mp_free(f);
}

static void table_append(struct tsdb_head_chunks *hc, struct hfile *f)
{
    pthread_rwlock_wrlock(&hc->flock);
    if (hc->nfiles == hc->cap) {
        hc->cap = hc->cap ? hc->cap * 2 : 8;
        hc->files = mp_xrealloc(hc->files, hc->cap * sizeof *hc->files);
    }
    hc->files[hc->nfiles++] = f;
    if (f->num > hc->last_num)
        hc->last_num = f->num;
    pthread_rwlock_unlock(&hc->flock);
}

/* Removes files[from, from + n) from the table, unmaps and unlinks them. First error wins. */
static int table_delete(struct tsdb_head_chunks *hc, size_t from, size_t n, struct mp_err *err)
{
    if (n == 0)
        return 0;
    struct hfile **gone = mp_xmalloc(n * sizeof *gone);
    pthread_rwlock_wrlock(&hc->flock);
    memcpy(gone, hc->files + from, n * sizeof *gone);
    memmove(hc->files + from, hc->files + from + n, (hc->nfiles - from - n) * sizeof *gone);
    hc->nfiles -= n;
    pthread_rwlock_unlock(&hc->flock);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char name[16];
        tsdb_chunks_file_name(name, gone[i]->num);
        if (unlinkat(hc->dirfd, name, 0) != 0 && !rc)
            rc = io_error(hc, err, errno, "delete", gone[i]->num);
        file_free(gone[i]);
    }
    mp_free(gone);
    if (hc->opt.fsync && fsync(hc->dirfd) != 0 && !rc)
        rc = mp_err_set(err, MP_EIO, "fsync %s: %s", hc->dir, strerror(errno));
    return rc;
}

/* Hands buf to the kernel. On failure the file is cut back to what it held, the buffer is kept
 * for the next attempt. Caller holds wmu. */
static int flush_locked(struct tsdb_head_chunks *hc, struct mp_err *err)
{
    if (hc->blen == 0)
        return 0;
    size_t off = 0;
    while (off < hc->blen) {
        ssize_t k = pwrite(hc->cur->fd, hc->buf + off, hc->blen - off,
                           (off_t)(hc->cur_flushed + off));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            int e = k < 0 ? errno : ENOSPC;
            hc->st.write_errors++;
            if (ftruncate(hc->cur->fd, (off_t)hc->cur_flushed) != 0) {
                /* the bytes past cur_flushed are unreachable either way; open repairs them */
            }
            return io_error(hc, err, e, "write", hc->cur->num);
        }
        hc->st.flushes++;
        off += (size_t)k;
    }
    hc->cur_flushed += hc->blen;
    hc->blen = 0;
    atomic_store_explicit(&hc->cur->readable, hc->cur_flushed, memory_order_release);
    return 0;
}

/* Flushes and syncs the current file and lets its descriptor go; the mapping stays. */
static int finish_locked(struct tsdb_head_chunks *hc, struct mp_err *err)
{
    if (!hc->cur)
        return 0;
    int rc = flush_locked(hc, err);
    if (rc)
        return rc;
    if (hc->opt.fsync && fdatasync(hc->cur->fd) != 0)
        return io_error(hc, err, errno, "fdatasync", hc->cur->num);
    close(hc->cur->fd);
    hc->cur->fd = -1;
    hc->cur = NULL;
    return 0;
}

static int cut_locked(struct tsdb_head_chunks *hc, struct mp_err *err)
{
    uint32_t num = hc->nfiles ? hc->files[hc->nfiles - 1]->num : hc->last_num;
    if (num == UINT32_MAX)
        return mp_err_set(err, MP_ELIMIT, "%s: file numbers exhausted", hc->dir);
    num++;
    int rc = finish_locked(hc, err);
    if (rc)
        return rc;
    char name[16];
    tsdb_chunks_file_name(name, num);
    int fd = openat(hc->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0)
        return io_error(hc, err, errno, "create", num);
    void *map = mmap(NULL, hc->opt.max_file_size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        rc = io_error(hc, err, errno, "mmap", num);
        close(fd);
        (void)unlinkat(hc->dirfd, name, 0);
        return rc;
    }
    if (hc->opt.fsync && fsync(hc->dirfd) != 0) {
        rc = mp_err_set(err, MP_EIO, "fsync %s: %s", hc->dir, strerror(errno));
        munmap(map, hc->opt.max_file_size);
        close(fd);
        (void)unlinkat(hc->dirfd, name, 0);
        return rc;
    }
    struct hfile *f = mp_xcalloc(1, sizeof *f);
    f->num = num;
    f->fd = fd;
    f->map = map;
    f->map_len = hc->opt.max_file_size;
    atomic_init(&f->readable, 0);
    table_append(hc, f);
    hc->cur = f;
    hc->cut_pending = false;
    hc->cur_flushed = 0;
    memset(hc->buf, 0, TSDB_HEAD_CHUNKS_HEADER_SIZE);
    tsdb_put_be32(hc->buf, TSDB_HEAD_CHUNKS_MAGIC);
    hc->buf[4] = TSDB_HEAD_CHUNKS_VERSION;
    hc->blen = TSDB_HEAD_CHUNKS_HEADER_SIZE;
    hc->cur_size = TSDB_HEAD_CHUNKS_HEADER_SIZE;
    return 0;
}

int tsdb_head_chunks_write(struct tsdb_head_chunks *hc, uint64_t series_ref, int64_t mint_ms,
                           int64_t maxt_ms, uint8_t encoding, const uint8_t *data, size_t len,
                           uint64_t *chunk_ref, struct mp_err *err)
{
    if (!hc || !chunk_ref || (!data && len))
        return mp_err_set(err, MP_EINVAL, "head chunks write: NULL argument");
    size_t size = tsdb_head_chunks_record_size(len);
    if (size == 0 || size > hc->opt.write_buffer_size ||
        size > hc->opt.max_file_size - TSDB_HEAD_CHUNKS_HEADER_SIZE)
        return mp_err_set(err, MP_EINVAL, "head chunks write: chunk of %zu bytes does not fit a "
                          "file of %zu bytes and a write buffer of %zu", len,
                          hc->opt.max_file_size, hc->opt.write_buffer_size);
    pthread_mutex_lock(&hc->wmu);
    int rc = 0;
    if (!hc->cur || hc->cut_pending || hc->cur_size + size > hc->opt.max_file_size)
        rc = cut_locked(hc, err);
    if (!rc && hc->blen + size > hc->opt.write_buffer_size)
        rc = flush_locked(hc, err);
    if (!rc) {
        struct tsdb_head_chunk_record r = {
            .series_ref = series_ref, .mint_ms = mint_ms, .maxt_ms = maxt_ms,
            .encoding = encoding, .data = data, .len = len,
        };
        *chunk_ref = (uint64_t)hc->cur->num << 32 | hc->cur_size;
        tsdb_head_chunks_record_encode(hc->buf + hc->blen, &r);
        hc->blen += size;
        hc->cur_size += size;
        hc->st.chunks_written++;
    }
    pthread_mutex_unlock(&hc->wmu);
    return rc;
}

int tsdb_head_chunks_get(struct tsdb_head_chunks *hc, uint64_t ref, uint8_t *encoding,
                         const uint8_t **data, size_t *len, struct mp_err *err)
{
    uint64_t num = ref >> 32, off = ref & UINT32_MAX;
    const char *why = "no record at this offset";
    for (int attempt = 0; attempt < 2; attempt++) {
        pthread_rwlock_rdlock(&hc->flock);
        const struct hfile *f = lookup(hc, num);
        if (!f) {
            pthread_rwlock_unlock(&hc->flock);
            return mp_err_set(err, MP_ENOTFOUND, "%s: chunk ref %#llx: file %06llu not present",
                              hc->dir, (unsigned long long)ref, (unsigned long long)num);
        }
        uint64_t avail = atomic_load_explicit(&f->readable, memory_order_acquire);
        struct tsdb_head_chunk_record r;
        int rc = MP_EAGAIN;
        if (off < TSDB_HEAD_CHUNKS_HEADER_SIZE)
            rc = MP_EPARSE;
        else if (off < avail)
            rc = tsdb_head_chunks_record_parse(f->map + off, (size_t)(avail - off), false, &r,
                                               &why);
        pthread_rwlock_unlock(&hc->flock);
        if (rc == 0) {
            if (encoding)
                *encoding = r.encoding;
            *data = r.data;
            *len = r.len;
            return 0;
        }
        if (rc != MP_EAGAIN || attempt > 0)
            break;
        /* Not in the file yet: the record may still sit in the write buffer. Look again after
         * the flush even when there was nothing left to flush: the writer may have flushed (or
         * finished the file) between our look and taking the mutex. */
        pthread_mutex_lock(&hc->wmu);
        bool pending = hc->cur && hc->cur->num == num && off < hc->cur_size;
        rc = pending ? flush_locked(hc, err) : 0;
        pthread_mutex_unlock(&hc->wmu);
        if (rc)
            return rc;
    }
    char name[16];
    tsdb_chunks_file_name(name, (uint32_t)num);
    return mp_err_set(err, MP_EPARSE, "%s/%s: offset %llu: %s", hc->dir, name,
                      (unsigned long long)off, why);
}

void tsdb_head_chunks_cut_new_file(struct tsdb_head_chunks *hc)
{
    pthread_mutex_lock(&hc->wmu);
    hc->cut_pending = true;
    pthread_mutex_unlock(&hc->wmu);
}

uint32_t tsdb_head_chunks_file_number(struct tsdb_head_chunks *hc)
{
    pthread_mutex_lock(&hc->wmu);
    uint32_t n = hc->cur ? hc->cur->num : hc->nfiles ? hc->files[hc->nfiles - 1]->num : 0;
    pthread_mutex_unlock(&hc->wmu);
    return n;
}

int tsdb_head_chunks_truncate(struct tsdb_head_chunks *hc, uint32_t before_file,
                              struct mp_err *err)
{
    pthread_mutex_lock(&hc->wmu);
    size_t k = 0; /* only wmu holders change the table, so reading it here needs no flock */
    while (k < hc->nfiles && hc->files[k]->num < before_file && hc->files[k] != hc->cur)
        k++;
    int rc = table_delete(hc, 0, k, err);
    pthread_mutex_unlock(&hc->wmu);
    return rc;
}

int tsdb_head_chunks_flush(struct tsdb_head_chunks *hc, struct mp_err *err)
{
    pthread_mutex_lock(&hc->wmu);
    int rc = hc->cur ? flush_locked(hc, err) : 0;
    pthread_mutex_unlock(&hc->wmu);
    return rc;
}

void tsdb_head_chunks_stats_get(struct tsdb_head_chunks *hc, struct tsdb_head_chunks_stats *out)
{
    pthread_mutex_lock(&hc->wmu);
    *out = hc->st;
    out->files = hc->nfiles;
    out->bytes = 0;
    for (size_t i = 0; i < hc->nfiles; i++)
        out->bytes += hc->files[i] == hc->cur
                          ? hc->cur_size
                          : atomic_load_explicit(&hc->files[i]->readable, memory_order_relaxed);
    pthread_mutex_unlock(&hc->wmu);
}

/* ---- open: map, replay, repair ------------------------------------------------------------ */

static void hc_free(struct tsdb_head_chunks *hc)
{
    for (size_t i = 0; i < hc->nfiles; i++)
        file_free(hc->files[i]);
    mp_free(hc->files);
    mp_free(hc->buf);
    mp_free(hc->dir);
    if (hc->dirfd >= 0)
        close(hc->dirfd);
    pthread_rwlock_destroy(&hc->flock);
    pthread_mutex_destroy(&hc->wmu);
    mp_free(hc);
}

/* Maps an existing file at its size; the descriptor stays open (repair may truncate). */
static int map_existing(struct tsdb_head_chunks *hc, uint32_t num, struct hfile **out,
                        struct mp_err *err)
{
    char name[16];
    tsdb_chunks_file_name(name, num);
    int fd = openat(hc->dirfd, name, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return io_error(hc, err, errno, "open", num);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = io_error(hc, err, errno, "stat", num);
        close(fd);
        return rc;
    }
    if ((uint64_t)st.st_size > UINT32_MAX) {
        close(fd);
        return mp_err_set(err, MP_EPARSE, "%s/%s: %lld bytes, more than a ref can address",
                          hc->dir, name, (long long)st.st_size);
    }
    struct hfile *f = mp_xcalloc(1, sizeof *f);
    f->num = num;
    f->fd = fd;
    if (st.st_size > 0) {
        void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) {
            int rc = io_error(hc, err, errno, "mmap", num);
            file_free(f);
            return rc;
        }
        f->map = map;
        f->map_len = (size_t)st.st_size;
    }
    atomic_init(&f->readable, (uint64_t)st.st_size);
    *out = f;
    return 0;
}

/* Walks the records of files[i]. *damage gets the offset where the file stops being valid, or
 * UINT64_MAX when it is intact (trailing zero bytes are intact: unwritten space). */
static int scan_file(struct tsdb_head_chunks *hc, size_t i, tsdb_head_chunks_replay_fn *fn,
                     void *ctx, uint64_t *damage, const char **why, struct mp_err *err)
{
    const struct hfile *f = hc->files[i];
    size_t size = f->map_len;
    const uint8_t *p = f->map;
    *damage = UINT64_MAX;
    char name[16];
    tsdb_chunks_file_name(name, f->num);
    if (size < TSDB_HEAD_CHUNKS_HEADER_SIZE || all_zero(p, TSDB_HEAD_CHUNKS_HEADER_SIZE)) {
        *damage = 0; /* created, but its header never reached the disk */
        *why = "no file header";
        return 0;
    }
    uint32_t magic = tsdb_get_be32(p);
    if (magic != TSDB_HEAD_CHUNKS_MAGIC)
        return mp_err_set(err, MP_EPARSE, "%s/%s: offset 0: invalid magic number %08x", hc->dir,
                          name, (unsigned)magic);
    if (p[4] != TSDB_HEAD_CHUNKS_VERSION)
        return mp_err_set(err, MP_EPARSE, "%s/%s: offset 4: invalid head chunk format version %u",
                          hc->dir, name, p[4]);
    size_t off = TSDB_HEAD_CHUNKS_HEADER_SIZE;
    while (off < size) {
        struct tsdb_head_chunk_record r;
        int rc = tsdb_head_chunks_record_parse(p + off, size - off, true, &r, why);
        if (rc == MP_EEOF) {
            if (!all_zero(p + off, size - off)) {
                *damage = off;
                *why = "data after an all-zero record header";
            }
            return 0;
        }
        if (rc) {
            *damage = off;
            return 0;
        }
        if (fn) {
            uint16_t ns = r.len >= 2 ? (uint16_t)(r.data[0] << 8 | r.data[1]) : 0;
            rc = fn(ctx, r.series_ref, (uint64_t)f->num << 32 | off, r.mint_ms, r.maxt_ms,
                    r.encoding, ns);
            if (rc)
                return rc;
        }
        off += r.size;
    }
    return 0;
}

/* Cuts files[i] at off (deletes it when off is inside the header) and deletes every later file. */
static int repair(struct tsdb_head_chunks *hc, size_t i, uint64_t off, const char *why,
                  struct mp_err *err)
{
    struct hfile *f = hc->files[i];
    uint32_t num = f->num;
    size_t later = hc->nfiles - i - 1;
    int rc = 0;
    if (off < TSDB_HEAD_CHUNKS_HEADER_SIZE) {
        later++;
    } else {
        if (ftruncate(f->fd, (off_t)off) != 0)
            return io_error(hc, err, errno, "truncate", num);
        if (hc->opt.fsync && fdatasync(f->fd) != 0)
            return io_error(hc, err, errno, "fdatasync", num);
        atomic_store_explicit(&f->readable, off, memory_order_relaxed);
        i++;
    }
    rc = table_delete(hc, i, hc->nfiles - i, err);
    hc->st.repairs += later + (off >= TSDB_HEAD_CHUNKS_HEADER_SIZE);
    char name[16];
    tsdb_chunks_file_name(name, num);
    MP_LOG_WARN("head chunk file corrupt; cut at the last valid record", MP_KV_STR("dir", hc->dir),
                MP_KV_STR("file", name), MP_KV_U64("offset", off), MP_KV_STR("err", why),
                MP_KV_U64("deleted_files", later));
    return rc;
}

static int load_files(struct tsdb_head_chunks *hc, tsdb_head_chunks_replay_fn *fn, void *ctx,
                      struct mp_err *err)
{
    uint32_t *nums = NULL;
    size_t n = 0;
    int rc = tsdb_chunks_list_numbered(hc->dir, &nums, &n, err);
    for (size_t i = 1; !rc && i < n; i++)
        if (nums[i] != nums[i - 1] + 1)
            rc = mp_err_set(err, MP_EPARSE, "%s: head chunk files are not sequential (%06u then "
                            "%06u)", hc->dir, (unsigned)nums[i - 1], (unsigned)nums[i]);
    for (size_t i = 0; !rc && i < n; i++) {
        struct hfile *f = NULL;
        rc = map_existing(hc, nums[i], &f, err);
        if (!rc)
            table_append(hc, f);
    }
    mp_free(nums);
    for (size_t i = 0; !rc && i < hc->nfiles; i++) {
        uint64_t damage;
        const char *why = "";
        rc = scan_file(hc, i, fn, ctx, &damage, &why, err);
        if (!rc && damage != UINT64_MAX) {
            rc = repair(hc, i, damage, why, err);
            break;
        }
    }
    for (size_t i = 0; i < hc->nfiles; i++) { /* old files are never written again */
        close(hc->files[i]->fd);
        hc->files[i]->fd = -1;
    }
    return rc;
}

int tsdb_head_chunks_open(const char *dir, const struct tsdb_head_chunks_options *opts,
                          tsdb_head_chunks_replay_fn *fn, void *ctx, struct tsdb_head_chunks **out,
                          struct mp_err *err)
{
    struct tsdb_head_chunks_options o;
    tsdb_head_chunks_options_init(&o);
    if (opts)
        o = *opts;
    if (!dir || !out || o.max_file_size < 64 || o.max_file_size > TSDB_HEAD_CHUNKS_MAX_FILE_SIZE ||
        o.write_buffer_size < TSDB_HEAD_CHUNKS_MIN_BUFFER_SIZE ||
        o.write_buffer_size > TSDB_HEAD_CHUNKS_MAX_BUFFER_SIZE)
        return mp_err_set(err, MP_EINVAL, "head chunks: invalid options");
    uint8_t *buf = mp_malloc(o.write_buffer_size);
    if (!buf)
        return mp_err_set(err, MP_ENOMEM, "head chunks: %zu byte write buffer",
                          o.write_buffer_size);
    struct tsdb_head_chunks *hc = mp_xcalloc(1, sizeof *hc);
    hc->opt = o;
    hc->buf = buf;
    hc->dir = mp_xstrdup(dir);
    hc->dirfd = -1;
    atomic_init(&hc->bg_read, true); /* replay reads the files: the first round drops them */
    pthread_mutex_init(&hc->wmu, NULL);
    pthread_rwlock_init(&hc->flock, NULL);
    int rc = tsdb_chunks_open_dir(dir, true, &hc->dirfd, err);
    if (!rc)
        rc = load_files(hc, fn, ctx, err);
    if (rc) {
        hc_free(hc);
        return rc;
    }
    *out = hc;
    return 0;
}

int tsdb_head_chunks_close(struct tsdb_head_chunks *hc, struct mp_err *err)
{
    if (!hc)
        return 0;
    pthread_mutex_lock(&hc->wmu);
    int rc = finish_locked(hc, err);
    pthread_mutex_unlock(&hc->wmu);
    hc_free(hc);
    return rc;
}

void tsdb_head_chunks_note_background_read(struct tsdb_head_chunks *hc)
{
    atomic_store_explicit(&hc->bg_read, true, memory_order_relaxed);
}

void tsdb_head_chunks_drop_pages(struct tsdb_head_chunks *hc)
{
    /* pages only queries touched stay: dropping them makes the next query fault them back */
    if (!atomic_exchange_explicit(&hc->bg_read, false, memory_order_relaxed))
        return;
    pthread_rwlock_rdlock(&hc->flock);
    for (size_t i = 0; i < hc->nfiles; i++)
        if (hc->files[i]->map)
            (void)madvise((void *)hc->files[i]->map, hc->files[i]->map_len, MADV_DONTNEED);
    pthread_rwlock_unlock(&hc->flock);
}
