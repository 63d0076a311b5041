/* SPDX-License-Identifier: Apache-2.0 */
/* bench/load_1m.h: loading a large simulated mesh (1M series x 1 h) into Prometheus and
 * meshprom without remote-write. The mesh is written once with meshprom's tsdb into a data
 * directory; its wal/ holds every sample as Prometheus's WAL records (Series + Samples,
 * snappy-compressed, 128 MiB segments: tsdb.md 3). Each server then gets a data dir of its own
 * whose wal/ holds hard links to those segments (nothing else: no chunks_head/, no blocks), so
 * both start by replaying the same WAL into their heads, as after a restart with the last hour
 * in memory. Neither server changes a replayed segment (both start a new segment after it; a
 * torn tail would be repaired in place, and a cleanly closed WAL has none).
 *
 * Alternatively (block true) each server gets a hard link of one block holding the same data
 * (meshprom's snapshot of the filled head, block_compression_level 0: Prometheus's format), and
 * both serve the hour from a block instead of their heads.
 *
 * A stamp file (load_1m.stamp: the generator options and what was written) makes a data dir
 * reusable: load1m_prepare rewrites it only when the options differ.
 * Thread safety: none needed (one caller). */
#ifndef BENCH_LOAD_1M_H
#define BENCH_LOAD_1M_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "meshsim/meshsim.h"

struct load1m_stats {
    uint64_t series, samples, pods, scrapes;
    int64_t t0_ms, t1_ms;  /* first and last sample time */
    uint64_t wal_bytes;    /* size of wal/ */
    uint64_t block_bytes;  /* size of the block */
    char block[256];       /* the head as one block, in Prometheus's format:
                            * "snapshots/<name>/<ULID>" under the data dir */
    double seconds;        /* writing it (0 when reused) */
    bool reused;           /* the stamp matched: nothing was written */
};

/* Makes dir hold the mesh of o (a fresh tsdb written by meshprom's appender, then closed),
 * unless its stamp already says so. Out-of-order and duplicate samples of the generator are
 * skipped, as a scraper would. 0, or the failing status (err says why). */
MP_NODISCARD int load1m_prepare(const struct meshsim_gen_opts *o, const char *dir,
                                struct load1m_stats *st, struct mp_err *err);

/* Gives peer_dir (created if missing) hard links to the files of what load1m_prepare wrote into
 * src_dir (st its stats): wal/ (block false) or the block as peer_dir/<ULID>/ (block true).
 * What it creates must not exist yet. MP_EIO. */
MP_NODISCARD int load1m_link(const char *src_dir, const struct load1m_stats *st, bool block,
                             const char *peer_dir, struct mp_err *err);

#endif
