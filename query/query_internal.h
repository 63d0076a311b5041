/* SPDX-License-Identifier: Apache-2.0 */
/* query/query_internal.h: AST node layout and the per-query arena, shared by query/ sources and
 * tests/query only. One arena per parsed tree: blocks are freed together by query_expr_free;
 * under MP_SANITIZER_BUILD every allocation gets its own block so ASan sees overflows. */
#ifndef QUERY_QUERY_INTERNAL_H
#define QUERY_QUERY_INTERNAL_H

#include "query/query.h"

struct query_arena;

struct query_expr {
    enum query_kind kind;
    enum query_type type;
    size_t start, end;         /* byte range in the source */
    struct query_arena *arena; /* set on the root only */
    double num;
    bool num_is_duration;
    struct mp_str str;        /* string value; selector name */
    struct query_expr *a, *b; /* inner / lhs, rhs / aggregation param */
    enum query_op op;
    enum query_aggr aggr;
    bool neg, ret_bool, has_matching, on, without;
    enum query_card card;
    struct mp_str *labels; /* on/ignoring or by/without labels */
    size_t nlabels;
    struct mp_str *incl; /* group_left/right labels */
    size_t nincl;
    bool has_group; /* group_left/right written */
    const struct query_function *fn;
    struct query_expr **args;
    size_t nargs;
    struct mp_matcher **m;
    size_t nm;
    int64_t range_ms, step_ms, offset_ms, at_ms;
    enum query_at at;
};

struct query_arena *query_arena_create(void);
void query_arena_destroy(struct query_arena *a);
/* Zeroed memory or NULL (MP_ENOMEM for the caller). */
void *query_arena_alloc(struct query_arena *a, size_t n);
/* Takes ownership of m (destroyed with the arena). Returns false on OOM (m destroyed). */
bool query_arena_own_matcher(struct query_arena *a, struct mp_matcher *m);

/* Go strconv.Quote(s) appended to out; with max_runes > 0, only the first max_runes runes
 * (fmt %.Nq). */
int query_go_quote(struct mp_buf *out, struct mp_str s, size_t max_runes);
/* Go strconv.FormatFloat(v, 'f', -1, 64): shortest digits, no exponent; NaN, +Inf, -Inf. */
int query_fmt_float(struct mp_buf *out, double v);
/* model.Duration(ms).String(): "1h30m", "0s". */
int query_fmt_duration(struct mp_buf *out, int64_t ms);

/* Go's backslash escape of r inside a literal quoted with quote (' or "), or NULL. */
const char *query_go_escape(uint32_t r, int quote);
/* One UTF-8 rune as Go decodes it (invalid byte: U+FFFD, length 1). */
size_t query_utf8_rune(const unsigned char *p, size_t n, uint32_t *r);

#endif
