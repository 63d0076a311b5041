/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/block.c: one persisted block (spec tsdb.md 4.1): meta.json, index, chunks/ and
 * tombstones, opened read-only and refcounted (db.h). */
#define _GNU_SOURCE /* O_NOFOLLOW with openat, renameat */
#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"
#include "tsdb/db.h"

static uint64_t file_size(const char *dir, const char *name)
{
    char path[4096];
    struct stat st;
    if (tsdb_pathf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return 0;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

int tsdb_block_open(const char *dir, struct tsdb_block **out, struct mp_err *err)
{
    struct tsdb_block *b = mp_calloc(1, sizeof *b);
    if (!b)
        return mp_err_set(err, MP_ENOMEM, "block %s", dir);
    atomic_init(&b->refs, 1);
    atomic_init(&b->bg_read, true); /* open reads the index tables: the first round drops them */
    pthread_mutex_init(&b->tomb_mu, NULL);
    b->dir = mp_xstrdup(dir);
    tsdb_meta_init(&b->meta);
    char path[4096];
    int rc = tsdb_meta_read(dir, &b->meta, err);
    if (!rc) {
        tsdb_pathf(path, sizeof path, "%s/index", dir);
        rc = tsdb_index_reader_open(path, &b->index, err);
    }
    if (!rc) {
        tsdb_pathf(path, sizeof path, "%s/chunks", dir);
        rc = tsdb_zchunks_reader_open(path, &b->zchunks, err);
        if (rc == MP_ENOTFOUND)
            rc = tsdb_chunks_reader_open(path, &b->chunks, err);
    }
    uint64_t tomb_size = 0;
    if (!rc)
        rc = tsdb_tombstones_read(dir, &b->tomb, &tomb_size, err);
    if (rc) {
        mp_err_wrap(err, "block %s", dir);
        atomic_store(&b->deletable, false);
        tsdb_block_release(b);
        return rc;
    }
    b->size_bytes =
        file_size(dir, "index") +
        (b->zchunks ? tsdb_zchunks_reader_size(b->zchunks) : tsdb_chunks_reader_size(b->chunks)) +
        tomb_size + file_size(dir, TSDB_META_FILENAME);
    *out = b;
    return 0;
}

struct tsdb_block *tsdb_block_acquire(struct tsdb_block *b)
{
    /* relaxed: taking a reference needs no ordering, the holder already sees b */
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

void tsdb_block_release(struct tsdb_block *b)
{
    if (!b)
        return;
    /* acq_rel: the last releaser must see every other holder's reads finished */
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
        return;
    tsdb_index_reader_close(b->index);
    tsdb_chunks_reader_close(b->chunks);
    tsdb_zchunks_reader_close(b->zchunks);
    tsdb_tombstones_destroy(b->tomb);
    if (atomic_load(&b->deletable)) {
        struct mp_err e = {0};
        if (tsdb_block_remove_dir(b->dir, &e))
            MP_LOG_WARN("deleting a block failed", MP_KV_STR("block", b->dir),
                        MP_KV_STR("err", e.msg));
    }
    tsdb_meta_fini(&b->meta);
    pthread_mutex_destroy(&b->tomb_mu);
    mp_free(b->dir);
    mp_free(b);
}

static int remove_at(int parent, const char *name)
{
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOTDIR || errno == ELOOP)
            return unlinkat(parent, name, 0) == 0 || errno == ENOENT ? 0 : errno;
        return errno == ENOENT ? 0 : errno;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return e;
    }
    int e = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        int r = remove_at(dirfd(d), de->d_name);
        if (r && !e)
            e = r;
    }
    closedir(d);
    if (unlinkat(parent, name, AT_REMOVEDIR) != 0 && errno != ENOENT && !e)
        e = errno;
    return e;
}

int tsdb_remove_all(const char *dir, struct mp_err *err)
{
    int e = remove_at(AT_FDCWD, dir);
    if (e)
        return mp_err_set(err, MP_EIO, "removing %s: %s", dir, strerror(e));
    return 0;
}

int tsdb_block_remove_dir(const char *dir, struct mp_err *err)
{
    char tmp[4096];
    if (tsdb_pathf(tmp, sizeof tmp, "%s.tmp-for-deletion", dir) >= (int)sizeof tmp)
        return mp_err_set(err, MP_EINVAL, "block path too long: %s", dir);
    if (rename(dir, tmp) != 0) {
        if (errno == ENOENT)
            return 0;
        return mp_err_set(err, MP_EIO, "renaming %s: %s", dir, strerror(errno));
    }
    return tsdb_remove_all(tmp, err);
}

int tsdb_pathf(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return n;
}

bool tsdb_block_is_ended_series(const struct tsdb_block *b)
{
    for (size_t i = 0; i < b->meta.compaction.nhints; i++)
        if (strcmp(b->meta.compaction.hints[i], TSDB_HINT_ENDED_SERIES) == 0)
            return true;
    return false;
}

int tsdb_block_chunk(const struct tsdb_block *b, struct tsdb_zchunks_cache *cache, uint64_t ref,
                     uint8_t *enc, const uint8_t **data, size_t *len, struct mp_err *err)
{
    if (b->zchunks)
        return tsdb_zchunks_reader_get(b->zchunks, cache, ref, enc, data, len, err);
    return tsdb_chunks_reader_get(b->chunks, ref, enc, data, len, err);
}

void tsdb_block_note_background_read(struct tsdb_block *b)
{
    /* relaxed: a hint for the db loop, which runs after the reader finished anyway */
    atomic_store_explicit(&b->bg_read, true, memory_order_relaxed);
}

void tsdb_block_drop_pages(struct tsdb_block *b)
{
    if (!atomic_exchange_explicit(&b->bg_read, false, memory_order_relaxed))
        return;
    tsdb_index_reader_drop_pages(b->index);
    if (b->zchunks)
        tsdb_zchunks_reader_drop_pages(b->zchunks);
    else
        tsdb_chunks_reader_drop_pages(b->chunks);
}
