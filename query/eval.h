/* SPDX-License-Identifier: Apache-2.0 */
/* query/eval.h: values of the evaluator and the contract between the evaluator core (eval*.c:
 * selectors, operators, aggregations, steps) and the function implementations (func*.c).
 * Internal to query/ and tests/query.
 *
 * A function is called once per evaluation step with its arguments already evaluated at that
 * step, the way Prometheus's FunctionCall gets []parser.Value: a scalar, an instant vector, the
 * windows of a range vector (every series' points in (t - range, t]) or a string. It appends its
 * result elements to c->out and returns 0, or MP_EEXEC / MP_ENOMEM with err set.
 *
 * Ownership: argument values are borrowed for the call. A function moves label references into
 * c->out (query_vec_push takes the reference it is given); to reuse an argument's labels it
 * takes a new reference with mp_labels_acquire. Threads: one evaluation belongs to one thread. */
#ifndef QUERY_EVAL_H
#define QUERY_EVAL_H

#include <stdarg.h>

#include "common/labels.h"
#include "query/query.h"

/* One element of an instant vector. */
struct qsample {
    struct mp_labels *labels; /* owned reference */
    double v;
    int64_t t_ms;   /* timestamp of the stored sample it came from (timestamp()); other values
                     * carry the evaluation time */
    bool drop_name; /* promql-delayed-name-removal: __name__ goes at the end of evaluation */
};

struct qvector {
    struct qsample *s;
    size_t n, cap;
};

/* Appends an element; takes the reference ls. MP_ENOMEM (ls released) on failure. */
MP_NODISCARD int query_vec_push(struct qvector *v, struct mp_labels *ls, double val, int64_t t_ms,
                              bool drop_name);
void query_vec_clear(struct qvector *v); /* releases the labels, keeps the storage */
void query_vec_fini(struct qvector *v);

/* One series of a range-vector argument at one step: its points in the window, time order. */
struct qwindow {
    const struct mp_labels *labels;
    const struct query_point *p;
    size_t n;
    bool drop_name;
};

enum qarg_kind { QARG_SCALAR, QARG_VECTOR, QARG_MATRIX, QARG_STRING };

struct qarg {
    enum qarg_kind kind;
    double scalar;            /* SCALAR */
    const struct qvector *vec;  /* VECTOR */
    const struct qwindow *win;  /* MATRIX: the series in label order */
    size_t nwin;
    int64_t range_ms;         /* MATRIX: the window's length (selector or subquery range) */
    struct mp_str str;        /* STRING */
};

/* Annotations of one query: de-duplicated messages, kept in first-seen order. */
struct qannots {
    char **warnings;
    size_t nwarnings;
    char **infos;
    size_t ninfos;
};
/* Adds "PromQL warning: <msg>" (warning) or "PromQL info: <msg>"; position-less, as the API
 * shows them. MP_ENOMEM. */
MP_NODISCARD int query_annots_add(struct qannots *a, bool warning, const char *fmt, ...)
    MP_PRINTF(3, 4);
/* Moves the messages into r's warnings/infos and empties a. */
void query_annots_move(struct qannots *a, struct query_result *r);
void query_annots_fini(struct qannots *a);

struct qcall {
    const struct query_expr *expr; /* the QUERY_CALL node (its args for label names etc.) */
    int64_t t_ms;                  /* evaluation time of this step */
    int64_t start_ms, end_ms;      /* the query's first and last step: what @ start() and
                                    * @ end() of a range argument resolve to (rate and
                                    * friends need the window's end, promql.md 3.1) */
    const struct qarg *args;
    size_t nargs;
    struct qvector *out;             /* the result at this step */
    struct qannots *annots;          /* warnings and infos */
    struct mp_labels_builder *lb;    /* scratch builder owned by the evaluation */
    bool delayed_name_removal;       /* set drop_name instead of deleting __name__ */
};

typedef int qfunc_fn(struct qcall *c, struct mp_err *err);

/* The implementation of a function of the parser's table, or NULL for those the core
 * evaluates itself because they need more than per-step values: timestamp (sample times of
 * a selector), absent and absent_over_time (the argument's matchers), and the sort family
 * (instant-query ordering). */
qfunc_fn *query_func_lookup(const struct query_function *f);

/* Drops __name__ (or marks it, with delayed name removal) for functions that change a value's
 * meaning: the reference ls is moved into the result. NULL on OOM (ls released). */
struct mp_labels *query_drop_name(struct mp_labels_builder *lb, struct mp_labels *ls);

#endif
