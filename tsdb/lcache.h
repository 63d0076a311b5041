/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/lcache.h (private to tsdb): one process-wide cache of series label sets, so that a query
 * hands out a label set it built before instead of building one per series per query (a set of
 * 20 labels costs an allocation, 40 atomic increments on the interned strings, the hash, and
 * the same again to free it; that was a third of a select's CPU time).
 *
 * Keys are (owner, ref): owner a number from tsdb_lcache_owner_new, one per label source for its
 * life (the head, each block index reader), ref the source's series ref. An owner promises that
 * a ref names one label set for the owner's whole life: block refs are fixed by the file, head
 * refs are never reused (a series that comes back gets a new ref); the head checks the label
 * hash on every hit anyway.
 *
 * Lifetime rule: the cache holds one reference on every set it keeps and hands out references
 * of their own, so a set never depends on its source staying alive: head GC, truncation,
 * eviction and block close may run while a query holds sets from the cache. Sources call
 * tsdb_lcache_forget when they go away, only to give the memory back early.
 *
 * Shape: 2-way set-associative, TSDB_LCACHE_BUCKETS buckets, each with its own spinlock (held for
 * a compare and an acquire); a miss evicts the bucket's entry that was not hit last. Memory: the
 * table (24 B an entry, allocated on first use) plus at most 2 x TSDB_LCACHE_BUCKETS sets. */
#ifndef TSDB_LCACHE_H
#define TSDB_LCACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/labels.h"

#define TSDB_LCACHE_BUCKETS (1u << 14)
/* A select uses the cache for a source only if it reads at most this many of its series: a
 * larger one would evict everything and hit nothing (e.g. a whole-mesh histogram of 300k
 * series), paying an insertion per series; the dashboard's per-namespace queries fit. */
#define TSDB_LCACHE_MAX_SELECT (TSDB_LCACHE_BUCKETS / 2)

/* A new owner number (never 0, never repeated within the process). */
uint32_t tsdb_lcache_owner_new(void);
/* The owner number kept in *slot (0 until first needed: assigned here, once, race-free). */
uint32_t tsdb_lcache_owner_of(_Atomic uint32_t *slot);
/* The cached set of (owner, ref), one reference for the caller, or NULL. With hash != 0 an entry
 * whose set has another mp_labels_hash is treated as absent. */
struct mp_labels *tsdb_lcache_get(uint32_t owner, uint64_t ref, uint64_t hash);
/* Remembers ls for (owner, ref) (the cache takes its own reference; ls stays the caller's).
 * Silently does nothing if the table cannot be allocated. */
void tsdb_lcache_put(uint32_t owner, uint64_t ref, const struct mp_labels *ls);
/* Drops every entry of owner. */
void tsdb_lcache_forget(uint32_t owner);
/* Entries held (of owner; 0: of all); scans the table (tests, benchmarks). */
uint64_t tsdb_lcache_entries(uint32_t owner);

#endif
