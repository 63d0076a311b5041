/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/checkpoint.c: WAL checkpointing and truncation as Prometheus tsdb/wlog/checkpoint.go
 * (spec tsdb.md 3.4). The previous checkpoint and segments first..last are filtered into
 * checkpoint.<last>.tmp (same segment format, written by an ordinary WAL writer), which is
 * fsynced and atomically renamed to checkpoint.<last>; only then are the segments <= last and
 * the older checkpoints deleted. A crash at any point leaves either the old state or the new
 * one: a reader ignores *.tmp directories, and the segments survive until the rename. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/str.h"
#include "tsdb/record.h"
#include "tsdb/wal.h"

/* Records are re-batched and logged in groups of about this many bytes, as Prometheus. */
#define BATCH_BYTES (1u << 20)

struct batch {
    struct mp_buf buf;  /* concatenated record bodies */
    size_t *ends;       /* end offset of each record in buf */
    size_t n, cap;
    struct mp_str *strs;
    size_t strs_cap;
};

static int batch_flush(struct batch *b, struct tsdb_wal *w, struct mp_err *err)
{
    if (b->n == 0)
        return 0;
    if (b->strs_cap < b->n) {
        b->strs = mp_xrealloc(b->strs, b->n * sizeof *b->strs);
        b->strs_cap = b->n;
    }
    size_t prev = 0;
    for (size_t i = 0; i < b->n; i++) {
        b->strs[i] = (struct mp_str){b->buf.data + prev, b->ends[i] - prev};
        prev = b->ends[i];
    }
    int rc = tsdb_wal_log(w, b->strs, b->n, err);
    mp_buf_reset(&b->buf);
    b->n = 0;
    return rc;
}

static void batch_end_record(struct batch *b)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->ends = mp_xrealloc(b->ends, b->cap * sizeof *b->ends);
    }
    b->ends[b->n++] = b->buf.len;
}

/* Removes dir/name and the files directly inside it (checkpoints hold no subdirectories). */
static int remove_tree(int parent, const char *name)
{
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return errno;
    }
    struct dirent *de;
    int e = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) != 0 && !e)
            e = errno;
    }
    closedir(d);
    if (unlinkat(parent, name, AT_REMOVEDIR) != 0 && !e)
        e = errno;
    return e;
}

static int filter_record(const uint8_t *rec, size_t len, struct tsdb_record_decoder *dec,
                         bool (*keep)(void *ctx, uint64_t ref), void *ctx, int64_t mint,
                         struct batch *b, struct tsdb_wal_checkpoint_stats *st,
                         struct mp_err *err)
{
    int rc = 0;
    size_t n = 0, k = 0;
    switch (tsdb_record_type_of(rec, len)) {
    case TSDB_REC_SERIES: {
        struct tsdb_record_series *s;
        rc = tsdb_record_series_decode(dec, rec, len, &s, &n, err);
        if (rc)
            return rc;
        for (size_t i = 0; i < n; i++) {
            if (keep(ctx, s[i].ref))
                s[k++] = s[i];
            else
                mp_labels_release(s[i].labels);
        }
        st->series_kept += k;
        st->series_dropped += n - k;
        if (k)
            rc = tsdb_record_series_encode(s, k, &b->buf);
        tsdb_record_series_release(s, k);
        break;
    }
    case TSDB_REC_SAMPLES: {
        struct tsdb_record_sample *s;
        rc = tsdb_record_samples_decode(dec, rec, len, &s, &n, err);
        if (rc)
            return rc;
        for (size_t i = 0; i < n; i++)
            if (s[i].t_ms >= mint)
                s[k++] = s[i];
        st->samples_kept += k;
        st->samples_dropped += n - k;
        if (k)
            rc = tsdb_record_samples_encode(s, k, &b->buf);
        break;
    }
    case TSDB_REC_TOMBSTONES: {
        struct tsdb_record_tombstone *t;
        rc = tsdb_record_tombstones_decode(dec, rec, len, &t, &n, err);
        if (rc)
            return rc;
        for (size_t i = 0; i < n; i++)
            if (t[i].maxt_ms >= mint)
                t[k++] = t[i];
        st->tombstones_kept += k;
        st->tombstones_dropped += n - k;
        if (k)
            rc = tsdb_record_tombstones_encode(t, k, &b->buf);
        break;
    }
    default:
        st->other_dropped++;
        return 0;
    }
    if (rc)
        return mp_err_set(err, rc, "checkpoint: encoding a record: %s", mp_strerror(rc));
    if (k)
        batch_end_record(b);
    return 0;
}

int tsdb_wal_checkpoint(const char *dir, int first, int last,
                        bool (*keep)(void *ctx, uint64_t ref), void *ctx, int64_t mint_ms,
                        struct tsdb_wal_checkpoint_stats *stats, struct mp_err *err)
{
    struct tsdb_wal_checkpoint_stats st = {0};
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return mp_err_set(err, MP_EIO, "checkpoint: open %s: %s", dir, strerror(errno));
    int prev = -1;
    int rc = tsdb_wal_checkpoint_last(dir, &prev, err);
    if (rc) {
        close(dirfd);
        return rc;
    }
    char tmp[48], final[40], tmp_path[4096];
    snprintf(final, sizeof final, "checkpoint.%08d", last);
    snprintf(tmp, sizeof tmp, "%s.tmp", final);
    if ((size_t)snprintf(tmp_path, sizeof tmp_path, "%s/%s", dir, tmp) >= sizeof tmp_path) {
        close(dirfd);
        return mp_err_set(err, MP_EINVAL, "checkpoint: path too long");
    }
    (void)remove_tree(dirfd, tmp);

    struct tsdb_wal_options o;
    tsdb_wal_options_init(&o);
    o.fsync = TSDB_WAL_FSYNC_SEGMENT; /* no flusher thread; close fdatasyncs */
    struct tsdb_wal *w = NULL;
    rc = tsdb_wal_open(tmp_path, &o, &w, err);

    struct batch b = {0};
    mp_buf_init(&b.buf, 0);
    struct tsdb_record_decoder dec;
    tsdb_record_decoder_init(&dec);

    /* inputs: the previous checkpoint (when it is older than last), then the segments */
    for (int pass = 0; rc == 0 && pass < 2; pass++) {
        struct tsdb_wal_reader *r = NULL;
        if (pass == 0) {
            if (prev < 0 || prev >= last)
                continue;
            char pdir[4096];
            snprintf(pdir, sizeof pdir, "%s/checkpoint.%08d", dir, prev);
            rc = tsdb_wal_reader_open_range(pdir, 0, INT32_MAX, &r, err);
        } else {
            int from = first > prev ? first : prev + 1;
            rc = tsdb_wal_reader_open_range(dir, from, last, &r, err);
        }
        while (rc == 0) {
            const uint8_t *rec;
            size_t len;
            int k = tsdb_wal_reader_next(r, &rec, &len, err);
            if (k == MP_EEOF)
                break;
            if (k) {
                rc = mp_err_wrap(err, "checkpoint");
                break;
            }
            rc = filter_record(rec, len, &dec, keep, ctx, mint_ms, &b, &st, err);
            if (rc == 0 && b.buf.len >= BATCH_BYTES)
                rc = batch_flush(&b, w, err);
        }
        tsdb_wal_reader_close(r);
    }
    if (rc == 0)
        rc = batch_flush(&b, w, err);
    if (w) {
        int crc = tsdb_wal_close(w, err);
        if (rc == 0)
            rc = crc;
    }
    tsdb_record_decoder_fini(&dec);
    mp_buf_fini(&b.buf);
    mp_free(b.ends);
    mp_free(b.strs);

    if (rc == 0 && renameat(dirfd, tmp, dirfd, final) != 0)
        rc = mp_err_set(err, MP_EIO, "checkpoint: rename %s: %s", tmp, strerror(errno));
    if (rc == 0 && fsync(dirfd) != 0)
        rc = mp_err_set(err, MP_EIO, "checkpoint: fsync %s: %s", dir, strerror(errno));
    if (rc) {
        (void)remove_tree(dirfd, tmp);
        close(dirfd);
        return rc;
    }

    /* truncation: the new checkpoint is durable, older data can go */
    int sfirst, slast;
    rc = tsdb_wal_segments(dir, &sfirst, &slast, err);
    for (int s = sfirst; rc == 0 && s >= 0 && s <= last && s <= slast; s++) {
        char name[16];
        snprintf(name, sizeof name, "%08d", s);
        if (unlinkat(dirfd, name, 0) != 0 && errno != ENOENT)
            rc = mp_err_set(err, MP_EIO, "checkpoint: delete %s/%s: %s", dir, name,
                            strerror(errno));
    }
    DIR *d = NULL;
    int dfd = rc == 0 ? dup(dirfd) : -1;
    if (dfd >= 0)
        d = fdopendir(dfd);
    if (d) {
        struct dirent *de;
        int old[256];
        size_t nold = 0;
        while ((de = readdir(d)) != NULL && nold < 256) {
            int idx;
            char rest;
            if (sscanf(de->d_name, "checkpoint.%8d%c", &idx, &rest) == 1 && idx < last &&
                strlen(de->d_name) == 19)
                old[nold++] = idx;
        }
        closedir(d);
        for (size_t i = 0; i < nold; i++) {
            char name[40];
            snprintf(name, sizeof name, "checkpoint.%08d", old[i]);
            int e = remove_tree(dirfd, name);
            if (e && rc == 0)
                rc = mp_err_set(err, MP_EIO, "checkpoint: delete %s/%s: %s", dir, name,
                                strerror(e));
        }
    } else if (dfd >= 0) {
        close(dfd);
    }
    close(dirfd);
    if (stats)
        *stats = st;
    return rc;
}
