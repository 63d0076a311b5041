/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/ireader.h (private to tsdb): what matcher resolution needs of an index, whether the head's
 * in-memory postings (postings.c) or a block's index file (index.c). Both answer through one small
 * table of functions so that tsdb_postings_for_matchers (postings.h) implements Prometheus's
 * PostingsForMatchers (spec tsdb.md 2.3) once.
 *
 * Series are named by a uint64_t ref whose meaning belongs to the index: a head series ref
 * (head.c) or a block series ref (byte offset / 16 of the series entry, index.c). Within one index
 * every postings list is sorted ascending, without duplicates.
 *
 * A postings list is materialised into a growable array owned by the caller (struct tsdb_plist):
 * the head's lists are under a lock that must not be held across the caller's work, and a block's
 * lists are varint/BE32-encoded on disk, so one decoding copy is needed either way. */
#ifndef TSDB_IREADER_H
#define TSDB_IREADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/str.h"

/* A sorted list of refs. Zero-initialise, or tsdb_plist_init; free with tsdb_plist_fini. */
struct tsdb_plist {
    uint64_t *refs;
    size_t n;
    size_t cap;
};

/* The index as matcher resolution sees it. Every function returns 0 or a negative MP_E* status
 * (MP_ENOMEM; MP_EIO/MP_EPARSE for a damaged block index, with err set). */
struct tsdb_ireader_ops {
    /* Appends to *out (which the caller has reset) the union of the postings lists of
     * name=values[i] for i < n, sorted and without duplicates. A value with no list adds nothing.
     * name "" with value "" is the all-postings list (every series of the index). */
    int (*postings)(void *ctx, struct mp_str name, const struct mp_str *values, size_t n,
                    struct tsdb_plist *out, struct mp_err *err);
    /* Calls fn for every value of label name that some series has, in ascending byte order;
     * the slice lasts for that call. fn returns 0 to go on, or a negative status that stops the
     * walk and is returned. A name no series has: no calls, returns 0. */
    int (*label_values)(void *ctx, struct mp_str name,
                        int (*fn)(void *fctx, struct mp_str value), void *fctx,
                        struct mp_err *err);
    /* Optional, both or neither (NULL: matcher resolution materialises every list it needs).
     * postings_count sets *n to the length of the list of name=value (0: no such list) without
     * copying it; postings_filter keeps in io, in place and in order, only the refs that are
     * also in that list, reading it where it lies (galloping, so a short io costs
     * O(io log(list / io)) however long the list is). name is never "". */
    int (*postings_count)(void *ctx, struct mp_str name, struct mp_str value, size_t *n,
                          struct mp_err *err);
    int (*postings_filter)(void *ctx, struct mp_str name, struct mp_str value,
                           struct tsdb_plist *io, struct mp_err *err);
};

struct tsdb_ireader {
    const struct tsdb_ireader_ops *ops;
    void *ctx;
};

#endif
