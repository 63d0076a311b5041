/* SPDX-License-Identifier: Apache-2.0 */
/* query/pretty.c: Prometheus 2.55's parser.Prettify (promql/parser/prettier.go), the text
 * /api/v1/format_query returns. A node whose one-line String() (query_expr_format) fits in 100
 * bytes is printed on one line, indented by two spaces per level; a longer one is split:
 *
 *   binary      LHS at level+1 \n indent op[ bool][ on|ignoring (..)[ group_x (..)]] \n RHS at
 *               level+1 (no own indent: the operands indent themselves)
 *   aggregate   indent op[ by|without (..) ]( \n [param at level+1 ,\n] expr at level+1 \n
 *               indent )
 *   call        indent name( \n args at level+1 joined by ",\n" \n indent )
 *   paren       indent ( \n expr at level+1 \n indent )
 *   subquery    expr at the same level, then [range:step] @ offset; unsplit it prints its
 *               String() without indent (as upstream does)
 *   unary       indent op + the operand's Pretty at the same level, stripped of spaces
 *   selectors, numbers, strings: never split.
 * The operator, grouping and subquery-suffix texts are cut out of the node's String() so they
 * stay identical to query_expr_format. */
#include <string.h>

#include "query/query_internal.h"

#define PRETTY_MAX_LINE 100

/* tmp := String() of e. */
static int str_of(const struct query_expr *e, struct mp_buf *tmp)
{
    mp_buf_reset(tmp);
    return query_expr_format(e, tmp);
}

static int indent(struct mp_buf *out, int level)
{
    int rc = 0;
    for (int i = 0; i < level && rc == 0; i++)
        rc = mp_buf_append(out, "  ", 2);
    return rc;
}

/* Length of e's String(); negative status on failure. */
static int64_t str_len(const struct query_expr *e)
{
    struct mp_buf b;
    mp_buf_init(&b, 0);
    int rc = query_expr_format(e, &b);
    int64_t n = rc ? rc : (int64_t)b.len;
    mp_buf_fini(&b);
    return n;
}

static int pretty(const struct query_expr *e, int level, struct mp_buf *out);

/* Appends whole[from, whole.len - cut_tail). */
static int append_middle(struct mp_buf *out, const struct mp_buf *whole, size_t from,
                         size_t cut_tail)
{
    if (from + cut_tail > whole->len)
        return MP_EINVAL;
    return mp_buf_append(out, whole->data + from, whole->len - from - cut_tail);
}

static int pretty_binary(const struct query_expr *e, int level, const struct mp_buf *whole,
                         struct mp_buf *out)
{
    /* whole = LHS " " op[ bool][matching] " " RHS */
    int64_t l = str_len(e->a), r = str_len(e->b);
    if (l < 0 || r < 0)
        return (int)(l < 0 ? l : r);
    int rc = pretty(e->a, level + 1, out);
    rc = rc ? rc : mp_buf_append(out, "\n", 1);
    rc = rc ? rc : indent(out, level);
    rc = rc ? rc : append_middle(out, whole, (size_t)l + 1, (size_t)r + 1);
    rc = rc ? rc : mp_buf_append(out, "\n", 1);
    return rc ? rc : pretty(e->b, level + 1, out);
}

static int pretty_aggregate(const struct query_expr *e, int level, const struct mp_buf *whole,
                            struct mp_buf *out)
{
    /* whole = op[ by (..) ]"(" [param ", "] expr ")": the prefix is ShortString() */
    int64_t x = str_len(e->a), p = e->b ? str_len(e->b) : 0;
    if (x < 0 || p < 0)
        return (int)(x < 0 ? x : p);
    size_t tail = (size_t)x + 2 + (e->b ? (size_t)p + 2 : 0);
    int rc = indent(out, level);
    rc = rc ? rc : append_middle(out, whole, 0, tail);
    rc = rc ? rc : mp_buf_append(out, "(\n", 2);
    if (rc == 0 && e->b) {
        rc = pretty(e->b, level + 1, out);
        rc = rc ? rc : mp_buf_append(out, ",\n", 2);
    }
    rc = rc ? rc : pretty(e->a, level + 1, out);
    rc = rc ? rc : mp_buf_append(out, "\n", 1);
    rc = rc ? rc : indent(out, level);
    return rc ? rc : mp_buf_append(out, ")", 1);
}

static int pretty_call(const struct query_expr *e, int level, struct mp_buf *out)
{
    int rc = indent(out, level);
    rc = rc ? rc : mp_buf_appendf(out, "%s(\n", e->fn->name);
    for (size_t i = 0; i < e->nargs && rc == 0; i++) {
        rc = pretty(e->args[i], level + 1, out);
        if (rc == 0 && i + 1 < e->nargs)
            rc = mp_buf_append(out, ",\n", 2);
    }
    rc = rc ? rc : mp_buf_append(out, "\n", 1);
    rc = rc ? rc : indent(out, level);
    return rc ? rc : mp_buf_append(out, ")", 1);
}

static int pretty_unary(const struct query_expr *e, int level, struct mp_buf *out)
{
    struct mp_buf child;
    mp_buf_init(&child, 0);
    int rc = pretty(e->a, level, &child);
    /* strings.TrimSpace of the operand: its own indent goes, the operator carries it */
    size_t from = 0, to = child.len;
    while (rc == 0 && from < to && strchr(" \t\n\r\v\f", child.data[from]))
        from++;
    while (rc == 0 && to > from && strchr(" \t\n\r\v\f", child.data[to - 1]))
        to--;
    rc = rc ? rc : indent(out, level);
    rc = rc ? rc : mp_buf_append(out, e->neg ? "-" : "+", 1);
    rc = rc ? rc : mp_buf_append(out, child.data + from, to - from);
    mp_buf_fini(&child);
    return rc;
}

static int pretty(const struct query_expr *e, int level, struct mp_buf *out)
{
    if (e->kind == QUERY_UNARY)
        return pretty_unary(e, level, out);
    struct mp_buf whole;
    mp_buf_init(&whole, 0);
    int rc = str_of(e, &whole);
    bool split = whole.len > PRETTY_MAX_LINE;
    if (rc == 0 && !split) {
        /* an unsplit subquery is not indented in 2.55 (SubqueryExpr.Pretty returns String()) */
        if (e->kind != QUERY_SUBQUERY)
            rc = indent(out, level);
        rc = rc ? rc : mp_buf_append(out, whole.data, whole.len);
        mp_buf_fini(&whole);
        return rc;
    }
    if (rc == 0) {
        switch (e->kind) {
        case QUERY_BINARY:
            rc = pretty_binary(e, level, &whole, out);
            break;
        case QUERY_AGGREGATE:
            rc = pretty_aggregate(e, level, &whole, out);
            break;
        case QUERY_CALL:
            rc = pretty_call(e, level, out);
            break;
        case QUERY_PAREN:
            rc = indent(out, level);
            rc = rc ? rc : mp_buf_append(out, "(\n", 2);
            rc = rc ? rc : pretty(e->a, level + 1, out);
            rc = rc ? rc : mp_buf_append(out, "\n", 1);
            rc = rc ? rc : indent(out, level);
            rc = rc ? rc : mp_buf_append(out, ")", 1);
            break;
        case QUERY_SUBQUERY: {
            int64_t x = str_len(e->a);
            rc = x < 0 ? (int)x : pretty(e->a, level, out);
            rc = rc ? rc : append_middle(out, &whole, (size_t)x, 0);
            break;
        }
        default: /* selectors and literals are never split */
            rc = indent(out, level);
            rc = rc ? rc : mp_buf_append(out, whole.data, whole.len);
            break;
        }
    }
    mp_buf_fini(&whole);
    return rc;
}

int query_expr_pretty(const struct query_expr *e, struct mp_buf *out)
{
    return pretty(e, 0, out);
}
