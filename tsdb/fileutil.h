/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/fileutil.h (private to tsdb): whole small files, written crash-safely the way
 * Prometheus writes meta.json and tombstones (tsdb.md 4.1, 4.2, 4.5): the bytes go to
 * "<dir>/<name>.tmp", which is fsynced, renamed over "<dir>/<name>", then the directory is
 * fsynced so the rename itself is durable. A crash leaves the old file or the new one, at
 * worst plus a stale .tmp (block directories are cleaned of those on open).
 * Thread safety: stateless; concurrent writers of the same path must be serialised by the
 * caller. */
#ifndef TSDB_FILEUTIL_H
#define TSDB_FILEUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Atomically replaces dir/name with data[0..len). MP_EIO (err names the path and errno). */
MP_NODISCARD int tsdb_file_write_atomic(const char *dir, const char *name, const void *data,
                                        size_t len, struct mp_err *err);

/* Reads the whole regular file at path into a new buffer (NUL-terminated for convenience;
 * *len excludes the NUL; free with mp_free). Files larger than max_len fail with MP_ELIMIT,
 * so a corrupt or hostile file cannot make us allocate without bound. MP_ENOTFOUND if the
 * file does not exist, MP_EIO on other errors, MP_ENOMEM. */
MP_NODISCARD int tsdb_file_read_all(const char *path, size_t max_len, char **out, size_t *len,
                                    struct mp_err *err);

/* Bytes of the regular files in dir (symbolic links not followed), and in its folders too if
 * recursive; 0 for a folder that cannot be read. */
uint64_t tsdb_dir_bytes(const char *dir, bool recursive);

#endif
