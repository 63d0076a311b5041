/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/fileutil.c: tmp + fsync + rename + directory fsync for small files (fileutil.h). */
#include "tsdb/fileutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"

static int io_fail(struct mp_err *err, const char *what, const char *path, int e)
{
    return mp_err_set(err, MP_EIO, "%s %s: %s", what, path, strerror(e));
}

static int write_full(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int tsdb_file_write_atomic(const char *dir, const char *name, const void *data, size_t len,
                           struct mp_err *err)
{
    char tmp[4096], dst[4096];
    if ((size_t)snprintf(dst, sizeof dst, "%s/%s", dir, name) >= sizeof dst ||
        (size_t)snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name) >= sizeof tmp)
        return mp_err_set(err, MP_EINVAL, "path too long: %s/%s", dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return io_fail(err, "create", tmp, errno);
    int e = write_full(fd, data, len);
    if (e == 0 && fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && e == 0)
        e = errno;
    if (e != 0) {
        (void)unlink(tmp);
        return io_fail(err, "write", tmp, e);
    }
    if (rename(tmp, dst) != 0) {
        e = errno;
        (void)unlink(tmp);
        return io_fail(err, "rename", tmp, e);
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return io_fail(err, "open", dir, errno);
    e = fsync(dfd) == 0 ? 0 : errno;
    (void)close(dfd);
    return e == 0 ? 0 : io_fail(err, "fsync", dir, e);
}

int tsdb_file_read_all(const char *path, size_t max_len, char **out, size_t *len,
                       struct mp_err *err)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return e == ENOENT ? mp_err_set(err, MP_ENOTFOUND, "open %s: %s", path, strerror(e))
                           : io_fail(err, "open", path, e);
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        (void)close(fd);
        return io_fail(err, "stat", path, e);
    }
    if (!S_ISREG(st.st_mode) || st.st_size < 0) {
        (void)close(fd);
        return mp_err_set(err, MP_EIO, "read %s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_len) {
        (void)close(fd);
        return mp_err_set(err, MP_ELIMIT, "read %s: %lld bytes, more than the %zu allowed", path,
                          (long long)st.st_size, max_len);
    }
    size_t n = (size_t)st.st_size;
    char *buf = mp_malloc(n + 1);
    if (!buf) {
        (void)close(fd);
        return mp_err_set(err, MP_ENOMEM, "read %s: %zu bytes", path, n);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            mp_free(buf);
            (void)close(fd);
            return r == 0 ? mp_err_set(err, MP_EIO, "read %s: file shrank while reading", path)
                          : io_fail(err, "read", path, e);
        }
        got += (size_t)r;
    }
    (void)close(fd);
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

/* Takes fd, an open folder. */
static uint64_t dir_bytes_fd(int fd, bool recursive)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return 0;
    }
    uint64_t total = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISREG(st.st_mode)) {
            total += (uint64_t)st.st_size;
        } else if (recursive && S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                total += dir_bytes_fd(sub, true);
        }
    }
    closedir(d);
    return total;
}

uint64_t tsdb_dir_bytes(const char *dir, bool recursive)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return fd < 0 ? 0 : dir_bytes_fd(fd, recursive);
}
