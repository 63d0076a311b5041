/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/postings.h (private to tsdb): sorted ref lists, the head's inverted index and
 * Prometheus's matcher resolution (spec tsdb.md 2.2, 2.3).
 *
 * 1. struct tsdb_plist operations (ireader.h): sorted ascending, no duplicates. Intersection,
 *    union and difference allocate at most once for the output, never per element. An output
 *    must not be one of the inputs. Thread safety: a plist belongs to one thread.
 *
 * 2. struct tsdb_mempostings: label name -> label value -> sorted list of series refs, plus the
 *    all-postings list (key ("", "")) that every series is in. Lists are stored as uint32_t
 *    while every ref of that list fits and upgraded (that list alone) to uint64_t on the first
 *    ref >= 2^32; a list of up to two refs lives inside its table slot without an allocation.
 *    Appending the largest ref so far (the normal case: refs come from a counter) is amortised
 *    O(1); a smaller ref is inserted in place. Labels with an empty name or an empty value are
 *    not indexed: for matching, an empty value is the same as a missing label (tsdb.md 2.3).
 *    Names and values are interned strings; the index holds one reference to each key.
 *
 *    Thread safety: one internal pthread rwlock. Any number of threads may read (walkers,
 *    counts, stats, the ireader) while at most one writes (add, add_unsorted, ensure_order,
 *    delete); a writer holds the lock exclusively for the whole call, so readers see every list
 *    either before or after an update, never half of it. Walker callbacks run without the lock
 *    on a snapshot (the strings they get are held until the callback returns), so they may call
 *    back into the index. Lock order: the rwlock, then the internal mutex that builds sorted key
 *    arrays on demand. Between add_unsorted and ensure_order the lists are not sorted: do not
 *    read the index in that window (WAL replay runs before queries are served).
 *
 * 3. tsdb_postings_for_matchers: PostingsForMatchers of Prometheus 2.55 over any
 *    struct tsdb_ireader (head or block). */
#ifndef TSDB_POSTINGS_H
#define TSDB_POSTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/labels.h"
#include "common/matcher.h"
#include "common/str.h"
#include "tsdb/ireader.h"

/* ---- sorted ref lists ------------------------------------------------------------------------ */

void tsdb_plist_init(struct tsdb_plist *l);
void tsdb_plist_fini(struct tsdb_plist *l); /* frees; the list is empty and reusable after */
void tsdb_plist_reset(struct tsdb_plist *l); /* n = 0, keeps the capacity */
/* Room for at least `more` further refs without allocating. 0 or MP_ENOMEM. */
MP_NODISCARD int tsdb_plist_reserve(struct tsdb_plist *l, size_t more);
/* Appends ref (the caller keeps the order). Geometric growth. 0 or MP_ENOMEM. */
MP_NODISCARD int tsdb_plist_push(struct tsdb_plist *l, uint64_t ref);
/* out = in[0] & ... & in[k-1] (k == 0: empty). Zig-zag from the smallest list, galloping in
 * the others. out is reset first; one reservation of the smallest size. 0 or MP_ENOMEM. */
MP_NODISCARD int tsdb_plist_intersect(const struct tsdb_plist *const *in, size_t k,
                                      struct tsdb_plist *out);
/* out = in[0] | ... | in[k-1], duplicates removed; a k-way heap merge. out is reset first.
 * 0 or MP_ENOMEM. */
MP_NODISCARD int tsdb_plist_union(const struct tsdb_plist *const *in, size_t k,
                                  struct tsdb_plist *out);
/* a = a minus b, in place; never allocates. */
void tsdb_plist_subtract(struct tsdb_plist *a, const struct tsdb_plist *b);

/* ---- the head's inverted index --------------------------------------------------------------- */

struct tsdb_mempostings; /* opaque */

MP_NODISCARD int tsdb_mempostings_create(struct tsdb_mempostings **out);
void tsdb_mempostings_destroy(struct tsdb_mempostings *mp); /* NULL is a no-op */

/* Adds series ref with labels ls (borrowed for the call) to the list of each of its label pairs
 * and to all-postings. ref must not be in the index already. 0, or MP_ENOMEM/MP_ELIMIT (a list
 * would pass 2^30 refs) with the index unchanged. */
MP_NODISCARD int tsdb_mempostings_add(struct tsdb_mempostings *mp, uint64_t ref,
                                      const struct mp_labels *ls);
/* Bulk mode for WAL replay: appends without keeping the lists sorted; call
 * tsdb_mempostings_ensure_order once afterwards, before anyone reads. Same errors as add. */
MP_NODISCARD int tsdb_mempostings_add_unsorted(struct tsdb_mempostings *mp, uint64_t ref,
                                               const struct mp_labels *ls);
/* Sorts (and de-duplicates) every list appended to by add_unsorted. Never allocates. */
void tsdb_mempostings_ensure_order(struct tsdb_mempostings *mp);
/* Head GC: removes refs[0..n) (ascending) whose label sets are ls[i] (the sets they were added
 * with). Rewrites only the lists of those label pairs and all-postings, drops value lists that
 * become empty and then names without values (Prometheus 2.55). Never fails. */
void tsdb_mempostings_delete(struct tsdb_mempostings *mp, const uint64_t *refs,
                             const struct mp_labels *const *ls, size_t n);

/* Label names (without the all-postings name "") in ascending byte order. fn is called on a
 * snapshot taken under the read lock; it returns 0 to go on or a negative status that stops the
 * walk and is returned. MP_ENOMEM if the snapshot cannot be made (fn never runs then). */
MP_NODISCARD int tsdb_mempostings_label_names(struct tsdb_mempostings *mp,
                                              int (*fn)(void *fctx, struct mp_str name),
                                              void *fctx);
/* Values of name in ascending byte order; same rules as label_names. An unknown name: no calls.
 * The sorted key array is kept between calls and rebuilt only after the value set changed. */
MP_NODISCARD int tsdb_mempostings_label_values(struct tsdb_mempostings *mp, struct mp_str name,
                                               int (*fn)(void *fctx, struct mp_str value),
                                               void *fctx);
size_t tsdb_mempostings_num_names(struct tsdb_mempostings *mp);
size_t tsdb_mempostings_num_values(struct tsdb_mempostings *mp, struct mp_str name);
/* Length of the list name=value; ("", "") is the number of series. */
size_t tsdb_mempostings_num_series(struct tsdb_mempostings *mp, struct mp_str name,
                                   struct mp_str value);
/* Heap bytes the index holds (tables, lists, sorted key arrays; not the interned strings nor
 * the allocator's own headers). */
size_t tsdb_mempostings_bytes(struct tsdb_mempostings *mp);

/* Cardinality statistics for /api/v1/status/tsdb (Prometheus MemPostings.Stats). */
struct tsdb_postings_stat {
    const struct mp_istr *name;  /* held reference (release with tsdb_postings_stats_release) */
    const struct mp_istr *value; /* series_by_pair only, else NULL */
    uint64_t count;
};

/* The caller sets limit and points the four arrays at room for limit entries each; stats fills
 * the n_* counts. Each array is sorted by count descending, ties by name then value ascending. */
struct tsdb_postings_stats {
    size_t limit;
    struct tsdb_postings_stat *series_by_metric; /* values of `label`: series count */
    struct tsdb_postings_stat *values_by_name;   /* names: number of distinct values */
    struct tsdb_postings_stat *bytes_by_name;    /* names: sum of len(value) x series */
    struct tsdb_postings_stat *series_by_pair;   /* name=value: series count */
    size_t n_series_by_metric, n_values_by_name, n_bytes_by_name, n_series_by_pair;
    size_t num_label_pairs; /* distinct (name, value) pairs */
    size_t num_series;      /* length of all-postings */
};

/* Fills s (see above) for label (normally "__name__"). Never allocates; takes the read lock. */
void tsdb_mempostings_stats(struct tsdb_mempostings *mp, struct mp_str label,
                            struct tsdb_postings_stats *s);
/* Releases the string references held by the filled entries (the arrays stay the caller's). */
void tsdb_postings_stats_release(struct tsdb_postings_stats *s);

/* An index reader over mp (tsdb_ireader_ops), valid while mp lives. Its postings call copies the
 * lists under the read lock; label_values walks a snapshot without holding it. */
void tsdb_mempostings_ireader(struct tsdb_mempostings *mp, struct tsdb_ireader *out);

/* ---- matcher resolution ---------------------------------------------------------------------- */

/* Series refs of ir selected by all of m[0..n), sorted: Prometheus 2.55 PostingsForMatchers
 * exactly as tsdb.md 2.3 gives it. A matcher accepts a series lacking its label iff it matches
 * "". A matcher with empty name and empty value stands for all postings. n == 0 selects nothing
 * (as Prometheus, whose intersection of no lists is empty). out is reset first. Statuses from
 * the reader (MP_ENOMEM, MP_EIO, MP_EPARSE with err set); on error out is empty. */
MP_NODISCARD int tsdb_postings_for_matchers(const struct tsdb_ireader *ir,
                                            const struct mp_matcher *const *m, size_t n,
                                            struct tsdb_plist *out, struct mp_err *err);

#endif
