/* SPDX-License-Identifier: Apache-2.0 */
/* common/labels.h: interned strings, immutable label sets and a builder for relabeling.
 *
 * A series is identified by its label set: name/value pairs sorted by name (byte-wise, as Go
 * compares strings), names unique. Millions of series share a few thousand distinct names and
 * values, so every string inside a set is interned once in a global, striped, reference-counted
 * table and a set is one allocation holding 2n pointers plus a precomputed hash equal to
 * Prometheus's labels.Hash() (model/labels/labels.go): XXH64, seed 0, over
 * name 0xff value 0xff for each label in order. Prometheus switches to a streaming digest when
 * the buffer passes 1 KiB; a streaming XXH64 gives the same result as the one-shot call, so
 * the hashes agree for every size.
 *
 * Thread safety: the interner is fully thread-safe. struct mp_labels is immutable and may be
 * read by any number of threads; its refcount is atomic, so acquire/release may race freely.
 * A struct mp_labels_builder belongs to one thread at a time. */
#ifndef COMMON_LABELS_H
#define COMMON_LABELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/str.h"

#define MP_LABEL_METRIC_NAME "__name__"
/* Longest string the interner accepts (the length is stored in 32 bits). */
#define MP_INTERN_MAX_LEN ((size_t)UINT32_MAX - 64)

/* ---- Interned strings ----------------------------------------------------------------- */

/* An interned string: immutable bytes followed by a NUL, plus a header with its length and
 * refcount. Two interned strings with equal content are the same pointer while both are held.
 * Opaque; read it with mp_istr_cstr/len/str. */
struct mp_istr;

/* Returns an interned copy of s with one reference for the caller, creating it if needed.
 * s may contain NUL bytes. MP_EINVAL if s.len > MP_INTERN_MAX_LEN, MP_ENOMEM on allocation
 * failure (*out untouched). */
MP_NODISCARD int mp_intern_acquire(struct mp_str s, const struct mp_istr **out);
/* Adds a reference to an already held string and returns it. Never allocates, takes no lock. */
const struct mp_istr *mp_intern_dup(const struct mp_istr *is);
/* Drops a reference; the last one frees the string. NULL is a no-op. */
void mp_intern_release(const struct mp_istr *is);
/* Number of distinct live strings, and the heap bytes the interner holds: string storage
 * (slab space kept for reuse included) plus the tables. For self-metrics; either pointer may
 * be NULL. Takes each stripe lock in turn. */
void mp_intern_stats(size_t *strings, size_t *bytes);

/* Borrowed views, valid while the caller holds a reference. */
const char *mp_istr_cstr(const struct mp_istr *is);
size_t mp_istr_len(const struct mp_istr *is);
struct mp_str mp_istr_str(const struct mp_istr *is);

/* ---- Label sets ----------------------------------------------------------------------- */

struct mp_label {
    struct mp_str name;
    struct mp_str value;
};

/* Immutable, sorted, refcounted. Opaque. */
struct mp_labels;

/* Creates a set from n (name, value) pairs in any order; the strings are interned (copied),
 * so the input may be freed afterwards. Like Prometheus labels.New, empty values are kept
 * (the builder is what treats "" as deletion) and names are not validated: callers that take
 * input from the outside check mp_label_name_is_valid first. Errors: MP_EINVAL for a repeated
 * name (err names it) or an oversized string, MP_ENOMEM. The caller owns one reference. */
MP_NODISCARD int mp_labels_create(const struct mp_label *in, size_t n, struct mp_labels **out,
                                  struct mp_err *err);
/* Creates a set from n pairs of strings already interned (pairs[2i] name, pairs[2i+1] value),
 * sorted by name and unique, as a store that keeps label sets in its own compact form holds
 * them; each string gets one more reference. No validation, no interning lookups.
 * MP_EINVAL (too many labels) or MP_ENOMEM. */
MP_NODISCARD int mp_labels_create_interned(const struct mp_istr *const *pairs, size_t n,
                                           struct mp_labels **out, struct mp_err *err);
/* The shared empty set; never allocates. Release it like any other set (a no-op). */
struct mp_labels *mp_labels_empty(void);
/* Adds a reference (labels are shared by the head, queries and remote write). */
struct mp_labels *mp_labels_acquire(const struct mp_labels *ls);
/* Drops a reference; the last one releases the interned strings and frees the set.
 * NULL is a no-op. */
void mp_labels_release(struct mp_labels *ls);

size_t mp_labels_count(const struct mp_labels *ls);
/* Label i (0 <= i < count) in sorted order; the slices are NUL-terminated and borrowed from ls. */
struct mp_label mp_labels_at(const struct mp_labels *ls, size_t i);
/* The interned strings of label i, borrowed from ls (mp_intern_dup them to keep them longer). */
const struct mp_istr *mp_labels_name_at(const struct mp_labels *ls, size_t i);
const struct mp_istr *mp_labels_value_at(const struct mp_labels *ls, size_t i);
/* Value of the named label, borrowed from ls; empty (ptr "") if absent. Binary search. */
struct mp_str mp_labels_get(const struct mp_labels *ls, struct mp_str name);
bool mp_labels_has(const struct mp_labels *ls, struct mp_str name);
/* Value of __name__ (empty if absent). */
struct mp_str mp_labels_metric_name(const struct mp_labels *ls);

/* Prometheus labels.Hash(), precomputed. */
uint64_t mp_labels_hash(const struct mp_labels *ls);
/* Hash of the labels whose names are in names[0..n) (PromQL `on`, `by`), as Prometheus
 * HashForLabels. Names absent from ls are skipped. Prometheus requires sorted names; here any
 * order works and the result equals Prometheus's for the sorted list. */
uint64_t mp_labels_hash_for(const struct mp_labels *ls, const struct mp_str *names, size_t n);
/* Hash of the labels whose names are not in names[0..n) and not __name__ (PromQL `ignoring`,
 * `without`), as Prometheus HashWithoutLabels, which always leaves out the metric name. */
uint64_t mp_labels_hash_without(const struct mp_labels *ls, const struct mp_str *names,
                                size_t n);

/* Prometheus labels.Compare: label by label, name then value (byte-wise); a prefix sorts first.
 * Returns <0, 0 or >0. */
int mp_labels_compare(const struct mp_labels *a, const struct mp_labels *b);
bool mp_labels_equal(const struct mp_labels *a, const struct mp_labels *b);

/* Appends Prometheus's Labels.String() form to out: {a="b", c="d"}; values are quoted with
 * mp_label_quote, names are written bare unless they are not valid legacy label names, in
 * which case they are quoted too (as Prometheus 3 does). MP_ELIMIT/MP_ENOMEM from out. */
MP_NODISCARD int mp_labels_format(const struct mp_labels *ls, struct mp_buf *out);
/* Appends s as Go's strconv.Quote renders it: "..." with \a \b \f \n \r \t \v \\ \" escaped,
 * other control bytes and invalid UTF-8 bytes as \xNN, non-printable code points as \uNNNN
 * or \UNNNNNNNN, printable non-ASCII raw. The printable test follows Go's unicode.IsPrint for
 * controls, separators, format characters, private use and noncharacters; unassigned code
 * points are written raw where Go would escape them. */
MP_NODISCARD int mp_label_quote(struct mp_buf *out, struct mp_str s);

/* ---- Validation ----------------------------------------------------------------------- */

/* [a-zA-Z_][a-zA-Z0-9_]* (Prometheus legacy label names); the empty string is invalid. */
bool mp_label_name_is_valid(struct mp_str s);
/* [a-zA-Z_:][a-zA-Z0-9_:]*; the empty string is invalid. */
bool mp_metric_name_is_valid(struct mp_str s);
/* Valid UTF-8 as Go's utf8.ValidString: no overlongs, surrogates or code points > U+10FFFF. */
bool mp_label_value_is_valid(struct mp_str s);

/* ---- Builder -------------------------------------------------------------------------- */

/* Mutable working copy for relabeling and for assembling scraped series, reused across
 * targets: after warm-up, reset/set/del/labels allocate only for the new set they return and
 * for strings not interned yet. One owner thread at a time. */
struct mp_labels_builder;

struct mp_labels_builder *mp_labels_builder_create(void);
void mp_labels_builder_destroy(struct mp_labels_builder *b);  /* NULL is a no-op */
/* Starts over from base (NULL = empty). The builder holds a reference to base until the next
 * reset or destroy. Labels of base with empty values are dropped, as Prometheus's Builder.Reset
 * does. */
void mp_labels_builder_reset(struct mp_labels_builder *b, const struct mp_labels *base);
/* Sets name to value (both copied); an empty value deletes the label. The slices may point
 * into the builder itself (a value returned by get or passed to a range callback).
 * MP_EINVAL for an oversized string, MP_ENOMEM; on failure the builder is unchanged. */
MP_NODISCARD int mp_labels_builder_set(struct mp_labels_builder *b, struct mp_str name,
                                       struct mp_str value);
/* As set, without copying: name and value must stay valid and unchanged until the next reset
 * or destroy (the scrape loop passes slices of the body it is parsing). */
MP_NODISCARD int mp_labels_builder_set_borrowed(struct mp_labels_builder *b, struct mp_str name,
                                                struct mp_str value);
/* Sets label i (0 <= i < count) of ls, keeping pointers to its interned strings: no copy, and
 * labels() takes them with a reference count instead of an interner lookup. ls must stay alive
 * until the next reset or destroy. */
MP_NODISCARD int mp_labels_builder_set_interned(struct mp_labels_builder *b,
                                                const struct mp_labels *ls, size_t i);
/* Deletes name; absent names are a no-op. */
void mp_labels_builder_del(struct mp_labels_builder *b, struct mp_str name);
/* Current value of name, empty if absent. Borrowed until the next set, reset or destroy. */
struct mp_str mp_labels_builder_get(const struct mp_labels_builder *b, struct mp_str name);
size_t mp_labels_builder_count(const struct mp_labels_builder *b);

/* Visits the current labels in name order. fn returns false to stop. The visit works on a
 * snapshot, so fn may call set and del on b (Prometheus labelmap does); the slices it gets are
 * valid only during that call. */
void mp_labels_builder_range(struct mp_labels_builder *b,
                             bool (*fn)(void *ctx, struct mp_str name, struct mp_str value),
                             void *ctx);
/* Keeps the labels for which keep() returns true and deletes the others (labelkeep/labeldrop).
 * keep must not modify b. */
void mp_labels_builder_filter(struct mp_labels_builder *b,
                              bool (*keep)(void *ctx, struct mp_str name, struct mp_str value),
                              void *ctx);

/* Produces an immutable set from the current labels (the builder stays usable). Returns a new
 * reference to the base itself if nothing changed since reset. MP_EINVAL/MP_ENOMEM. */
MP_NODISCARD int mp_labels_builder_labels(struct mp_labels_builder *b, struct mp_labels **out,
                                          struct mp_err *err);

#endif
