/* SPDX-License-Identifier: Apache-2.0 */
/* query/format.c: Expr.String() of Prometheus 2.55 (promql/parser/printer.go): binary operators
 * spaced, matchers sorted as strings and %q-quoted, @ before offset, durations as
 * model.Duration, numbers as Go fmt %v. Also the accessors of query.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/alloc.h"
#include "query/query_internal.h"

static const char *const op_names[] = {
    "+", "-", "*", "/", "%", "^", "atan2", "==", "!=", "<=", "<", ">=", ">", "and", "or", "unless",
};
static const char *const aggr_names[] = {
    "sum",    "avg",  "count",   "min",          "max",      "group",  "stddev",
    "stdvar", "topk", "bottomk", "count_values", "quantile", "limitk", "limit_ratio",
};

const char *query_op_str(enum query_op op)
{
    return op_names[op];
}
const char *query_aggr_str(enum query_aggr a)
{
    return aggr_names[a];
}

const char *query_type_name(enum query_type t)
{
    switch (t) {
    case QUERY_TYPE_SCALAR:
        return "scalar";
    case QUERY_TYPE_VECTOR:
        return "instant vector";
    case QUERY_TYPE_MATRIX:
        return "range vector";
    case QUERY_TYPE_STRING:
        return "string";
    default:
        return "none";
    }
}

/* Decodes one UTF-8 rune as Go does; returns its length, *r = 0xFFFD with length 1 for an
 * invalid byte. */
static size_t utf8_rune(const unsigned char *p, size_t n, uint32_t *r)
{
    unsigned c = p[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *r = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, v = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, v = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, v = c & 0x07, min = 0x10000;
    else
        goto bad;
    if (n < len)
        goto bad;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            goto bad;
        v = v << 6 | (p[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v < 0xE000))
        goto bad;
    *r = v;
    return len;
bad:
    *r = 0xFFFD;
    return 1;
}

size_t query_utf8_rune(const unsigned char *p, size_t n, uint32_t *r)
{
    return utf8_rune(p, n, r);
}

/* Approximation of Go unicode.IsPrint for runes >= 0x80: C1 controls, soft hyphen and the
 * non-characters are not printable. */
static bool rune_printable(uint32_t r)
{
    if (r < 0xA0 || r == 0xAD)
        return false;
    if ((r & 0xFFFE) == 0xFFFE || (r >= 0xFDD0 && r <= 0xFDEF))
        return false;
    if (r >= 0x2028 && r <= 0x202E)
        return false;
    return true;
}

const char *query_go_escape(uint32_t r, int quote)
{
    static const char *const esc[] = {
        ['\a'] = "\\a", ['\b'] = "\\b", ['\f'] = "\\f",  ['\n'] = "\\n", ['\r'] = "\\r",
        ['\t'] = "\\t", ['\v'] = "\\v", ['\\'] = "\\\\", ['"'] = "\\\"", ['\''] = "\\'",
    };
    if ((r == '"' || r == '\'') && (int)r != quote)
        return NULL;
    return r < sizeof esc / sizeof esc[0] ? esc[r] : NULL;
}

int query_go_quote(struct mp_buf *out, struct mp_str s, size_t max_runes)
{
    int rc = mp_buf_append(out, "\"", 1);
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t i = 0, runes = 0;
    while (rc == 0 && i < s.len && (max_runes == 0 || runes < max_runes)) {
        uint32_t r;
        size_t w = utf8_rune(p + i, s.len - i, &r);
        runes++;
        if (r == 0xFFFD && w == 1) {
            rc = mp_buf_appendf(out, "\\x%02x", p[i]);
        } else if (query_go_escape(r, '"')) {
            rc = mp_buf_append_str(out, query_go_escape(r, '"'));
        } else if (r >= 0x20 && r < 0x7F) {
            rc = mp_buf_append(out, p + i, 1);
        } else if (r < 0x80) {
            rc = mp_buf_appendf(out, "\\x%02x", (unsigned)r);
        } else if (rune_printable(r)) {
            rc = mp_buf_append(out, p + i, w);
        } else if (r < 0x10000) {
            rc = mp_buf_appendf(out, "\\u%04x", (unsigned)r);
        } else {
            rc = mp_buf_appendf(out, "\\U%08x", (unsigned)r);
        }
        i += w;
    }
    if (rc == 0)
        rc = mp_buf_append(out, "\"", 1);
    return rc;
}

int query_fmt_duration(struct mp_buf *out, int64_t ms)
{
    static const struct {
        const char *unit;
        int64_t mult;
        bool exact;
    } units[] = {
        {"y", 31536000000LL, true}, {"w", 604800000LL, true}, {"d", 86400000LL, false},
        {"h", 3600000LL, false},    {"m", 60000LL, false},    {"s", 1000LL, false},
        {"ms", 1, false},
    };
    if (ms == 0)
        return mp_buf_append_str(out, "0s");
    int rc = 0;
    for (size_t i = 0; i < sizeof units / sizeof units[0] && rc == 0; i++) {
        if (units[i].exact && ms % units[i].mult != 0)
            continue;
        int64_t v = ms / units[i].mult;
        if (v > 0) {
            rc = mp_buf_appendf(out, "%lld%s", (long long)v, units[i].unit);
            ms -= v * units[i].mult;
        }
    }
    return rc;
}

/* NumberLiteral.String(): Go strconv.FormatFloat(v, 'f', -1, 64), the shortest digits that
 * round-trip, never with an exponent (1e6 -> "1000000"); +Inf, -Inf, NaN. */
static int fmt_float(struct mp_buf *out, double v)
{
    if (isnan(v))
        return mp_buf_append_str(out, "NaN");
    if (isinf(v))
        return mp_buf_append_str(out, v > 0 ? "+Inf" : "-Inf");
    char e[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, v);
        if (strtod(e, NULL) == v)
            break;
    }
    /* e = [-]d[.ddd]e[+-]XX */
    char digits[24];
    size_t nd = 0;
    const char *p = e;
    bool neg = *p == '-';
    if (neg)
        p++;
    for (; *p && *p != 'e'; p++)
        if (*p != '.')
            digits[nd++] = *p;
    int exp = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    if (v == 0)
        exp = 0;
    int rc = neg ? mp_buf_append(out, "-", 1) : 0;
    if (exp < 0) {
        rc = rc ? rc : mp_buf_append_str(out, "0.");
        for (int i = 0; i < -exp - 1 && rc == 0; i++)
            rc = mp_buf_append(out, "0", 1);
        return rc ? rc : mp_buf_append(out, digits, nd);
    }
    for (int i = 0; i <= exp && rc == 0; i++)
        rc = mp_buf_append(out, i < (int)nd ? &digits[i] : "0", 1);
    if ((int)nd > exp + 1 && rc == 0)
        rc = mp_buf_appendf(out, ".%.*s", (int)nd - exp - 1, digits + exp + 1);
    return rc;
}

static int fmt_labels(struct mp_buf *out, const struct mp_str *l, size_t n)
{
    int rc = mp_buf_append(out, "(", 1);
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i)
            rc = mp_buf_append(out, ", ", 2);
        if (rc == 0)
            rc = mp_buf_append(out, l[i].ptr, l[i].len);
    }
    return rc ? rc : mp_buf_append(out, ")", 1);
}

static int fmt_at_offset(struct mp_buf *out, const struct query_expr *e)
{
    int rc = 0;
    if (e->at == QUERY_AT_TIME)
        rc = mp_buf_appendf(out, " @ %.3f", (double)e->at_ms / 1000.0);
    else if (e->at == QUERY_AT_START)
        rc = mp_buf_append_str(out, " @ start()");
    else if (e->at == QUERY_AT_END)
        rc = mp_buf_append_str(out, " @ end()");
    if (rc == 0 && e->offset_ms > 0) {
        rc = mp_buf_append_str(out, " offset ");
        rc = rc ? rc : query_fmt_duration(out, e->offset_ms);
    } else if (rc == 0 && e->offset_ms < 0) {
        rc = mp_buf_append_str(out, " offset -");
        rc = rc ? rc : query_fmt_duration(out, -e->offset_ms);
    }
    return rc;
}

struct mstr {
    char *s;
    size_t len;
};

static int mstr_cmp(const void *a, const void *b)
{
    const struct mstr *x = a, *y = b;
    return mp_str_cmp((struct mp_str){x->s, x->len}, (struct mp_str){y->s, y->len});
}

static int fmt_selector(struct mp_buf *out, const struct query_expr *e)
{
    int rc = mp_buf_append(out, e->str.ptr, e->str.len);
    struct mstr *ms = e->nm ? mp_malloc(e->nm * sizeof *ms) : NULL;
    if (e->nm && !ms)
        return MP_ENOMEM;
    size_t k = 0;
    struct mp_buf b;
    for (size_t i = 0; i < e->nm && rc == 0; i++) {
        const struct mp_matcher *m = e->m[i];
        struct mp_str name = mp_matcher_name(m), val = mp_matcher_value(m);
        if (mp_str_eq(name, MP_STR_LIT("__name__")) && mp_matcher_type(m) == MP_MATCH_EQUAL &&
            mp_str_eq(val, e->str) && val.len)
            continue;
        mp_buf_init(&b, 0);
        /* Matcher.String() quotes names that are not legacy label names */
        bool legacy = name.len > 0;
        for (size_t j = 0; j < name.len; j++) {
            char c = name.ptr[j];
            legacy &= c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (j > 0 && c >= '0' && c <= '9');
        }
        rc = legacy ? mp_buf_append(&b, name.ptr, name.len) : query_go_quote(&b, name, 0);
        rc = rc ? rc : mp_buf_append_str(&b, mp_match_type_str(mp_matcher_type(m)));
        rc = rc ? rc : query_go_quote(&b, val, 0);
        ms[k].s = mp_buf_take(&b, &ms[k].len);
        k++;
        mp_buf_fini(&b);
    }
    if (rc == 0 && k) {
        qsort(ms, k, sizeof *ms, mstr_cmp);
        rc = mp_buf_append(out, "{", 1);
        for (size_t i = 0; i < k && rc == 0; i++) {
            if (i)
                rc = mp_buf_append(out, ",", 1);
            rc = rc ? rc : mp_buf_append(out, ms[i].s, ms[i].len);
        }
        rc = rc ? rc : mp_buf_append(out, "}", 1);
    }
    for (size_t i = 0; i < k; i++)
        mp_free(ms[i].s);
    mp_free(ms);
    return rc;
}

int query_expr_format(const struct query_expr *e, struct mp_buf *out)
{
    int rc = 0;
    switch (e->kind) {
    case QUERY_NUMBER:
        return fmt_float(out, e->num);
    case QUERY_STRING:
        return query_go_quote(out, e->str, 0);
    case QUERY_PAREN:
        rc = mp_buf_append(out, "(", 1);
        rc = rc ? rc : query_expr_format(e->a, out);
        return rc ? rc : mp_buf_append(out, ")", 1);
    case QUERY_UNARY:
        rc = mp_buf_append(out, e->neg ? "-" : "+", 1);
        return rc ? rc : query_expr_format(e->a, out);
    case QUERY_BINARY:
        rc = query_expr_format(e->a, out);
        rc = rc ? rc : mp_buf_appendf(out, " %s", op_names[e->op]);
        if (rc == 0 && e->ret_bool)
            rc = mp_buf_append_str(out, " bool");
        if (rc == 0 && e->has_matching && (e->nlabels > 0 || e->on)) {
            rc = mp_buf_append_str(out, e->on ? " on " : " ignoring ");
            rc = rc ? rc : fmt_labels(out, e->labels, e->nlabels);
            if (rc == 0 &&
                (e->card == QUERY_CARD_MANY_TO_ONE || e->card == QUERY_CARD_ONE_TO_MANY)) {
                rc = mp_buf_append_str(out, e->card == QUERY_CARD_MANY_TO_ONE ? " group_left "
                                                                              : " group_right ");
                rc = rc ? rc : fmt_labels(out, e->incl, e->nincl);
            }
        }
        rc = rc ? rc : mp_buf_append(out, " ", 1);
        return rc ? rc : query_expr_format(e->b, out);
    case QUERY_CALL:
        rc = mp_buf_appendf(out, "%s(", e->fn->name);
        for (size_t i = 0; i < e->nargs && rc == 0; i++) {
            if (i)
                rc = mp_buf_append(out, ", ", 2);
            rc = rc ? rc : query_expr_format(e->args[i], out);
        }
        return rc ? rc : mp_buf_append(out, ")", 1);
    case QUERY_AGGREGATE:
        rc = mp_buf_append_str(out, aggr_names[e->aggr]);
        if (rc == 0 && (e->without || e->nlabels)) {
            rc = mp_buf_append_str(out, e->without ? " without " : " by ");
            rc = rc ? rc : fmt_labels(out, e->labels, e->nlabels);
            rc = rc ? rc : mp_buf_append(out, " ", 1);
        }
        rc = rc ? rc : mp_buf_append(out, "(", 1);
        if (rc == 0 && e->b) {
            rc = query_expr_format(e->b, out);
            rc = rc ? rc : mp_buf_append(out, ", ", 2);
        }
        rc = rc ? rc : query_expr_format(e->a, out);
        return rc ? rc : mp_buf_append(out, ")", 1);
    case QUERY_VECTOR_SELECTOR:
        rc = fmt_selector(out, e);
        return rc ? rc : fmt_at_offset(out, e);
    case QUERY_MATRIX_SELECTOR:
        rc = fmt_selector(out, e->a);
        rc = rc ? rc : mp_buf_append(out, "[", 1);
        rc = rc ? rc : query_fmt_duration(out, e->range_ms);
        rc = rc ? rc : mp_buf_append(out, "]", 1);
        return rc ? rc : fmt_at_offset(out, e->a);
    case QUERY_SUBQUERY:
        rc = query_expr_format(e->a, out);
        rc = rc ? rc : mp_buf_append(out, "[", 1);
        rc = rc ? rc : query_fmt_duration(out, e->range_ms);
        rc = rc ? rc : mp_buf_append(out, ":", 1);
        if (rc == 0 && e->step_ms)
            rc = query_fmt_duration(out, e->step_ms);
        rc = rc ? rc : mp_buf_append(out, "]", 1);
        return rc ? rc : fmt_at_offset(out, e);
    }
    return rc;
}

/* Accessors (query.h). */
enum query_kind query_expr_kind(const struct query_expr *e)
{
    return e->kind;
}
enum query_type query_expr_type(const struct query_expr *e)
{
    return e->type;
}
size_t query_expr_pos(const struct query_expr *e)
{
    return e->start;
}
double query_number_value(const struct query_expr *e)
{
    return e->num;
}
struct mp_str query_string_value(const struct query_expr *e)
{
    return e->str;
}
const struct query_expr *query_expr_inner(const struct query_expr *e)
{
    return e->a;
}
bool query_unary_is_neg(const struct query_expr *e)
{
    return e->neg;
}
enum query_op query_binary_op(const struct query_expr *e)
{
    return e->op;
}
const struct query_expr *query_binary_lhs(const struct query_expr *e)
{
    return e->a;
}
const struct query_expr *query_binary_rhs(const struct query_expr *e)
{
    return e->b;
}
bool query_binary_return_bool(const struct query_expr *e)
{
    return e->ret_bool;
}

bool query_binary_matching(const struct query_expr *e, enum query_card *card, bool *on,
                           const struct mp_str **labels, size_t *nlabels,
                           const struct mp_str **include, size_t *ninclude)
{
    *card = e->card;
    *on = e->on;
    *labels = e->labels;
    *nlabels = e->nlabels;
    *include = e->incl;
    *ninclude = e->nincl;
    return e->has_matching;
}

const struct query_function *query_call_func(const struct query_expr *e)
{
    return e->fn;
}
size_t query_call_nargs(const struct query_expr *e)
{
    return e->nargs;
}
const struct query_expr *query_call_arg(const struct query_expr *e, size_t i)
{
    return i < e->nargs ? e->args[i] : NULL;
}
enum query_aggr query_aggregate_op(const struct query_expr *e)
{
    return e->aggr;
}
const struct query_expr *query_aggregate_param(const struct query_expr *e)
{
    return e->b;
}
void query_aggregate_grouping(const struct query_expr *e, const struct mp_str **labels, size_t *n,
                              bool *without)
{
    *labels = e->labels;
    *n = e->nlabels;
    *without = e->without;
}
struct mp_str query_selector_name(const struct query_expr *e)
{
    return e->str;
}
size_t query_selector_nmatchers(const struct query_expr *e)
{
    return e->nm;
}
const struct mp_matcher *query_selector_matcher(const struct query_expr *e, size_t i)
{
    return i < e->nm ? e->m[i] : NULL;
}
int64_t query_range_ms(const struct query_expr *e)
{
    return e->range_ms;
}
int64_t query_subquery_step_ms(const struct query_expr *e)
{
    return e->step_ms;
}

static const struct query_expr *mods(const struct query_expr *e)
{
    return e->kind == QUERY_MATRIX_SELECTOR ? e->a : e;
}

int64_t query_offset_ms(const struct query_expr *e)
{
    return mods(e)->offset_ms;
}
enum query_at query_at(const struct query_expr *e, int64_t *at_ms)
{
    e = mods(e);
    if (at_ms)
        *at_ms = e->at_ms;
    return e->at;
}

/* For the evaluator (count_values labels, eval_core.h). */
int query_fmt_float(struct mp_buf *out, double v)
{
    return fmt_float(out, v);
}
