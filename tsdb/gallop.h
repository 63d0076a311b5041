/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/gallop.h (private to tsdb): galloping search over a sorted ref array, generated for each
 * element layout the indexes keep (uint64_t and uint32_t arrays in memory, big-endian uint32 in a
 * block's index file), so that stepping through a long list in order costs O(log gap) per step
 * wherever the list lives. */
#ifndef TSDB_GALLOP_H
#define TSDB_GALLOP_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/bytes.h"

/* Defines `static size_t fn(const T *a, size_t lo, size_t n, uint64_t x)`: the first index i in
 * [lo, n) with LOAD(a, i) >= x, n if none. Exponential steps from lo, then binary search. */
#define TSDB_GALLOP_DEFINE(fn, T, LOAD)                                                            \
    static inline size_t fn(const T *a, size_t lo, size_t n, uint64_t x)                           \
    {                                                                                              \
        if (lo >= n || (uint64_t)LOAD(a, lo) >= x)                                                 \
            return lo;                                                                             \
        size_t below = lo, step = 1, hi = lo + 1; /* invariant: a[below] < x */                    \
        while (hi < n && (uint64_t)LOAD(a, hi) < x) {                                              \
            below = hi;                                                                            \
            step *= 2;                                                                             \
            hi = below + step;                                                                     \
        }                                                                                          \
        if (hi > n)                                                                                \
            hi = n;                                                                                \
        size_t l = below + 1; /* answer in [l, hi] */                                              \
        while (l < hi) {                                                                           \
            size_t mid = l + (hi - l) / 2;                                                         \
            if ((uint64_t)LOAD(a, mid) < x)                                                        \
                l = mid + 1;                                                                       \
            else                                                                                   \
                hi = mid;                                                                          \
        }                                                                                          \
        return l;                                                                                  \
    }

#define TSDB_GALLOP_LOAD_ARRAY(a, i) ((a)[i])
#define TSDB_GALLOP_LOAD_BE32(a, i) tsdb_get_be32((a) + 4 * (i))

#endif
