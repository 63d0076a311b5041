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
    double seconds;        /* writing it (0 when reused) */
    bool reused;           /* the stamp matched: nothing was written */
};

/* Makes dir hold the mesh of o (a fresh tsdb written by meshprom's appender, then closed),
 * unless its stamp already says so. Out-of-order and duplicate samples of the generator are
 * skipped, as a scraper would. 0, or the failing status (err says why). */
MP_NODISCARD int load1m_prepare(const struct meshsim_gen_opts *o, const char *dir,
                                struct load1m_stats *st, struct mp_err *err);

/* Creates peer_dir/wal/ with a hard link to every segment of src_dir/wal/ (peer_dir must not
 * exist or be empty). MP_EIO. */
MP_NODISCARD int load1m_link_wal(const char *src_dir, const char *peer_dir, struct mp_err *err);

#endif
