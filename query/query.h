/* SPDX-License-Identifier: Apache-2.0 */
/* query/query.h: the PromQL parser (first piece of the query engine). query_parse lexes and
 * parses one expression as Prometheus 2.55's promql/parser does, type-checks it (result types
 * scalar / instant vector / range vector / string) and returns an immutable AST. Errors carry
 * Prometheus's wording and a 1-based line:column position ("1:5: parse error: ...").
 * Spec: /work/shared/spec/promql.md section 1.
 *
 * Ownership: every node of one parse lives in one arena owned by the root; query_expr_free on
 * the root frees all of it at once (nodes, strings, compiled matchers). Accessors borrow:
 * returned pointers and slices stay valid until query_expr_free(root).
 * Thread safety: a parsed tree is immutable and may be read by any number of threads. */
#ifndef QUERY_QUERY_H
#define QUERY_QUERY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/matcher.h"
#include "common/str.h"

enum query_kind {
    QUERY_NUMBER,          /* number literal (durations in number position are seconds) */
    QUERY_STRING,          /* string literal */
    QUERY_PAREN,           /* ( expr ) */
    QUERY_UNARY,           /* -expr / +expr (not folded into numbers) */
    QUERY_BINARY,          /* lhs op rhs */
    QUERY_CALL,            /* fn(args...) */
    QUERY_AGGREGATE,       /* sum by (..) (expr), topk(k, expr), ... */
    QUERY_VECTOR_SELECTOR, /* name{matchers} [@ t] [offset d] */
    QUERY_MATRIX_SELECTOR, /* vector_selector[range] */
    QUERY_SUBQUERY,        /* expr[range:step] [@ t] [offset d] */
};

enum query_type { /* Prometheus parser.ValueType */
                  QUERY_TYPE_NONE,
                  QUERY_TYPE_SCALAR,
                  QUERY_TYPE_VECTOR, /* "instant vector" */
                  QUERY_TYPE_MATRIX, /* "range vector" */
                  QUERY_TYPE_STRING,
};

enum query_op {
    QUERY_OP_ADD,
    QUERY_OP_SUB,
    QUERY_OP_MUL,
    QUERY_OP_DIV,
    QUERY_OP_MOD,
    QUERY_OP_POW,
    QUERY_OP_ATAN2,
    QUERY_OP_EQLC,
    QUERY_OP_NEQ,
    QUERY_OP_LTE,
    QUERY_OP_LSS,
    QUERY_OP_GTE,
    QUERY_OP_GTR,
    QUERY_OP_AND,
    QUERY_OP_OR,
    QUERY_OP_UNLESS,
};

enum query_aggr {
    QUERY_AGGR_SUM,
    QUERY_AGGR_AVG,
    QUERY_AGGR_COUNT,
    QUERY_AGGR_MIN,
    QUERY_AGGR_MAX,
    QUERY_AGGR_GROUP,
    QUERY_AGGR_STDDEV,
    QUERY_AGGR_STDVAR,
    QUERY_AGGR_TOPK,
    QUERY_AGGR_BOTTOMK,
    QUERY_AGGR_COUNT_VALUES,
    QUERY_AGGR_QUANTILE,
    QUERY_AGGR_LIMITK,
    QUERY_AGGR_LIMIT_RATIO,
};

enum query_card { /* vector matching cardinality */
                  QUERY_CARD_ONE_TO_ONE,
                  QUERY_CARD_MANY_TO_ONE,  /* group_left */
                  QUERY_CARD_ONE_TO_MANY,  /* group_right */
                  QUERY_CARD_MANY_TO_MANY, /* set operators */
};

enum query_at { QUERY_AT_NONE, QUERY_AT_TIME, QUERY_AT_START, QUERY_AT_END };

/* A function of the table (promql.md 3; Prometheus parser/functions.go as of 2.55). */
struct query_function {
    const char *name;
    enum query_type arg_types[5];
    int nargs;    /* entries of arg_types */
    int variadic; /* 0: exactly nargs; n > 0: nargs-1 .. nargs-1+n; -1: nargs-1 or more, the
                   * last type repeating */
    enum query_type ret;
    bool experimental; /* needs query_parse_opts.experimental_functions */
};

/* NULL if there is no function of that (case-sensitive) name. */
const struct query_function *query_function_get(struct mp_str name);

struct query_parse_opts {
    bool experimental_functions; /* --enable-feature=promql-experimental-functions */
};
void query_parse_opts_init(struct query_parse_opts *o);

struct query_parse_error {
    size_t pos;               /* byte offset of the error's start in the input */
    int line, col;            /* 1-based; col counts bytes from the last newline */
    char msg[MP_ERR_MSG_MAX]; /* "LINE:COL: parse error: MESSAGE" */
    const char *detail;       /* points into msg at MESSAGE */
};

struct query_expr; /* opaque AST node */

/* Parses src[0..len) (need not be NUL-terminated). On success *out is the root (free with
 * query_expr_free). Returns MP_EPARSE with err filled for invalid input, MP_ENOMEM when an
 * allocation sized by the input fails. err and o may be NULL (defaults). */
MP_NODISCARD int query_parse(const char *src, size_t len, const struct query_parse_opts *o,
                             struct query_expr **out, struct query_parse_error *err);
/* Frees a tree returned by query_parse. Only the root may be passed; NULL is a no-op. */
void query_expr_free(struct query_expr *root);
/* Appends Prometheus's Expr.String() of e to out. Returns 0 or the buffer's status. */
MP_NODISCARD int query_expr_format(const struct query_expr *e, struct mp_buf *out);

/* Accessors. Calling one on a node of another kind is a programming error (mp_assert). */
enum query_kind query_expr_kind(const struct query_expr *e);
enum query_type query_expr_type(const struct query_expr *e);
size_t query_expr_pos(const struct query_expr *e); /* byte offset where the node starts */
const char *query_type_name(enum query_type t);    /* "scalar", "instant vector", ... */
const char *query_op_str(enum query_op op);        /* "+", "and", ... */
const char *query_aggr_str(enum query_aggr a);     /* "sum", ... */

double query_number_value(const struct query_expr *e);
struct mp_str query_string_value(const struct query_expr *e); /* unescaped bytes */
/* The operand of PAREN and UNARY nodes, the expression of SUBQUERY and AGGREGATE nodes, the
 * vector selector of a MATRIX_SELECTOR. */
const struct query_expr *query_expr_inner(const struct query_expr *e);
bool query_unary_is_neg(const struct query_expr *e);

enum query_op query_binary_op(const struct query_expr *e);
const struct query_expr *query_binary_lhs(const struct query_expr *e);
const struct query_expr *query_binary_rhs(const struct query_expr *e);
bool query_binary_return_bool(const struct query_expr *e);
/* Vector matching; false when either side is a scalar (Prometheus: VectorMatching == nil). */
bool query_binary_matching(const struct query_expr *e, enum query_card *card, bool *on,
                           const struct mp_str **labels, size_t *nlabels,
                           const struct mp_str **include, size_t *ninclude);

const struct query_function *query_call_func(const struct query_expr *e);
size_t query_call_nargs(const struct query_expr *e);
const struct query_expr *query_call_arg(const struct query_expr *e, size_t i);

enum query_aggr query_aggregate_op(const struct query_expr *e);
const struct query_expr *query_aggregate_param(const struct query_expr *e); /* NULL if none */
/* Grouping labels as written; *without tells by (false) from without (true). */
void query_aggregate_grouping(const struct query_expr *e, const struct mp_str **labels, size_t *n,
                              bool *without);

/* Vector selector: name as written before braces ("" when only braces were used), and the
 * matchers in order; a name outside braces is the last matcher (__name__="name"). */
struct mp_str query_selector_name(const struct query_expr *e);
size_t query_selector_nmatchers(const struct query_expr *e);
const struct mp_matcher *query_selector_matcher(const struct query_expr *e, size_t i);

/* Range of a MATRIX_SELECTOR or SUBQUERY in ms; step of a SUBQUERY (0 = default interval). */
int64_t query_range_ms(const struct query_expr *e);
int64_t query_subquery_step_ms(const struct query_expr *e);
/* offset (ms, may be negative) and @ of a VECTOR_SELECTOR, MATRIX_SELECTOR (its selector's) or
 * SUBQUERY; *at_ms is set for QUERY_AT_TIME. */
int64_t query_offset_ms(const struct query_expr *e);
enum query_at query_at(const struct query_expr *e, int64_t *at_ms);

/* ---- Pretty() (format_query) ---------------------------------------------------------------- */

/* Appends Prometheus 2.55's parser.Prettify(e) (what /api/v1/format_query returns): the
 * expression split over indented lines when it is longer than 100 columns, as
 * promql/parser/prettier.go does. Returns 0 or the buffer's status. */
MP_NODISCARD int query_expr_pretty(const struct query_expr *e, struct mp_buf *out);

/* ---- the engine (evaluation, promql.md 2 and 3) --------------------------------------------- *
 *
 * Thread safety: one engine serves any number of threads at once; each query call evaluates on
 * the calling thread. At most max_concurrency queries evaluate at a time; more callers wait in
 * a queue (Prometheus's ActiveQueryTracker gate), the wait counting against their timeout.
 * Ownership: a struct query_result is filled by the engine and owned by the caller, who
 * releases it with query_result_fini; it borrows nothing from the engine or the db. */

struct tsdb;
struct mp_labels;
struct mp_metrics_registry;
struct query_engine; /* opaque */

struct query_engine_opts {
    int64_t lookback_delta_ms; /* --query.lookback-delta; default 5 min */
    int64_t timeout_ms;        /* --query.timeout; default 2 min */
    int64_t max_samples;       /* --query.max-samples; default 50,000,000 */
    int max_concurrency;       /* --query.max-concurrency; default 20 */
    struct query_parse_opts parse; /* promql-experimental-functions */
    bool delayed_name_removal; /* --enable-feature=promql-delayed-name-removal */
    bool per_step_stats;       /* --enable-feature=promql-per-step-stats */
    struct mp_metrics_registry *metrics; /* prometheus_engine_* self-metrics; NULL: none */
};
void query_engine_opts_init(struct query_engine_opts *o);

/* MP_EINVAL for bad options (err says which). */
MP_NODISCARD int query_engine_create(const struct query_engine_opts *o, struct query_engine **out,
                                     struct mp_err *err);
void query_engine_destroy(struct query_engine *e); /* NULL is a no-op; no query may be running */

struct query_point {
    int64_t t_ms;
    double v;
};

struct query_series {
    struct mp_labels *labels;   /* owned reference */
    struct query_point *points; /* VECTOR: one point at the evaluation time; MATRIX: time order */
    size_t npoints;
};

/* Query statistics (Prometheus util/stats; the HTTP API's `stats` parameter). Samples follow
 * Prometheus's counting: an instant selector counts the sample it picks at each step, a range
 * selector the samples of its window at each step (a sample in several windows counts once per
 * window), a subquery as a function argument only through those windows. Timings are the
 * phases of one exec call, in ns of the monotonic clock:
 *   exec_total  = the whole call (parse, queue, evaluation, sorting);
 *   exec_queue  = waiting for a max_concurrency slot;
 *   eval_total  = preparation + inner evaluation + result sorting;
 *   prepare     = opening queriers and selecting series from the index (inside evaluation);
 *   inner_eval  = evaluation without the preparation;
 *   result_sort = sorting a range result by labels.
 * Per-step totals (samples_per_step) need both query_engine_opts.per_step_stats and
 * query_exec_opts.per_step_stats: one entry per step of the query, step i at
 * start + i * step; NULL otherwise. Owned by the result (query_result_fini frees it). */
struct query_stats {
    int64_t total_queryable_samples; /* samples read */
    int64_t peak_samples;            /* most samples held at once */
    int64_t exec_total_ns, exec_queue_ns, eval_total_ns, prepare_ns, inner_eval_ns,
        result_sort_ns;
    int64_t *samples_per_step; /* nsteps entries, or NULL */
    size_t nsteps;
    int64_t step_start_ms, step_ms; /* step i is at step_start_ms + i * step_ms */
};

struct query_result {
    enum query_type type;          /* SCALAR, VECTOR, MATRIX or STRING */
    struct query_series *series;   /* VECTOR and MATRIX. Range queries: sorted by labels.
                                    * Instant vectors: in the engine's order (sort() and
                                    * friends order it; otherwise unordered as Prometheus) */
    size_t nseries;
    struct query_point scalar;     /* SCALAR: value at the evaluation time */
    char *string;                  /* STRING: NUL-terminated; its time is scalar.t_ms */
    /* Annotations (2.55's "warnings" and "infos" of the API envelope): "PromQL warning: ..."
     * and "PromQL info: ...", each NUL-terminated, without repeats. */
    char **warnings;
    size_t nwarnings;
    char **infos;
    size_t ninfos;
    struct query_stats stats;
};
void query_result_fini(struct query_result *r); /* empties r; safe on a zeroed struct, twice */

/* ---- cancellation --------------------------------------------------------------------------
 *
 * A struct query_cancel is a caller-owned token passed in query_exec_opts.cancel. Any thread
 * may call query_cancel_set on it; the query notices it where it checks its deadline (between
 * steps and series, and while waiting in the concurrency queue) and fails with MP_ECANCELED
 * "query was canceled in expression evaluation" (or "... in query queue"). poll, if set, is
 * called from the query's thread at most every QUERY_CANCEL_POLL_MS while it runs (the HTTP API
 * uses it to see whether the client hung up); returning true cancels the query. The token must
 * outlive the exec call; one token may serve several calls in sequence. */
#define QUERY_CANCEL_POLL_MS 10

struct query_cancel {
    _Atomic bool canceled;     /* set by query_cancel_set */
    bool (*poll)(void *ctx);   /* NULL: none */
    void *poll_ctx;
    int64_t next_poll_ns;      /* private to the running query */
};
/* Clears the flag, sets the poll hook (may be NULL). */
void query_cancel_init(struct query_cancel *c, bool (*poll)(void *ctx), void *poll_ctx);
/* Cancels (idempotent; async-signal-safe). */
void query_cancel_set(struct query_cancel *c);
bool query_cancel_is_set(const struct query_cancel *c);

/* Shutdown: cancels every query running or queued on e and every later one (MP_ECANCELED),
 * so that a server can stop promptly. Thread-safe; NULL is a no-op. Queries that already
 * finished are not affected; query_engine_destroy still needs them all to have returned. */
void query_engine_cancel_all(struct query_engine *e);

/* Per-call overrides (the HTTP API's lookback_delta, timeout and stats parameters). Zero
 * fields and a NULL pointer take the engine's values. */
struct query_exec_opts {
    int64_t lookback_delta_ms;
    int64_t timeout_ms;
    bool per_step_stats;         /* stats=all: per-step totals if the engine allows them */
    struct query_cancel *cancel; /* NULL: not cancellable by the caller */
};

/* Evaluates src[0..len) at t_ms (instant query) or at start, start+step, ... <= end (range
 * query: the result is a MATRIX for vector and scalar expressions). Statuses and the
 * HTTP API error types they map to (protocols.md 4.3):
 *   MP_EPARSE    parse error (err has "LINE:COL: parse error: ..."): bad_data
 *   MP_EINVAL    a valid expression the call cannot run (a range query of a range vector or
 *                string: "invalid expression type \"range vector\" for range query, must be
 *                Scalar or instant Vector"; step <= 0; end before start): bad_data
 *   MP_EEXEC     an evaluation error with Prometheus's message ("found duplicate series for
 *                the match group ...", "many-to-many matching not allowed: ...", "vector
 *                cannot contain metrics with the same labelset"): execution
 *   MP_ELIMIT    "query processing would load too many samples into memory in query
 *                execution" (max_samples): execution
 *   MP_ETIMEOUT  "query timed out in <phase>": timeout
 *   MP_ECANCELED "query was canceled in <phase>": canceled
 *   MP_EIO       storage failure (err from tsdb): internal
 *   MP_ENOMEM
 * db may be NULL: selectors then select nothing. On failure *out is zeroed. */
MP_NODISCARD int query_exec_instant(struct query_engine *e, struct tsdb *db, const char *src,
                                    size_t len, int64_t t_ms, const struct query_exec_opts *o,
                                    struct query_result *out, struct mp_err *err);
MP_NODISCARD int query_exec_range(struct query_engine *e, struct tsdb *db, const char *src,
                                  size_t len, int64_t start_ms, int64_t end_ms, int64_t step_ms,
                                  const struct query_exec_opts *o, struct query_result *out,
                                  struct mp_err *err);

/* ---- promqltest: the `.test` file runner (promql.md 7) ------------------------------------- *
 *
 * A file is read and checked whole first (every command, series description and query; a
 * syntax error makes the file invalid: MP_EPARSE, err "FILE:LINE: ..."), then run in order:
 * `load` appends to a tsdb in a fresh mkdtemp directory (WAL fsync none, no background
 * thread, 24 h blocks as promqltest's storage), `clear` replaces it with an empty one, and
 * each `eval` is checked against its expected lines. A failing eval does not stop the file:
 * it is counted and described ("FILE:LINE: ..." with expected and actual values) in the
 * report. Single-threaded; the report owns its text. */

struct query_test_value { /* one item of an expanded series description (7.3) */
    double v;             /* the stale marker is its NaN bit pattern (tsdb_is_stale) */
    bool omitted;         /* `_`: no sample in this slot */
};

/* Expands a value sequence ("1+1x3 _ stale -Inf 2x2") into *out (mp_free it), *n items.
 * MP_EPARSE with the offending item in err; MP_ENOMEM. */
MP_NODISCARD int query_test_expand_values(struct mp_str s, struct query_test_value **out,
                                          size_t *n, struct mp_err *err);

/* util/almost.Equal(a, b, 1e-6) as promqltest compares floats (both stale, both NaN, equal,
 * or within the relative tolerance). */
bool query_test_almost_equal(double a, double b);

/* Test hook: how evals run. Both NULL in struct query_test_opts: through query_exec_instant /
 * query_exec_range on an engine made from opts.engine. */
struct query_test_exec {
    void *ctx;
    int (*instant)(void *ctx, struct tsdb *db, const char *src, size_t len, int64_t t_ms,
                   struct query_result *out, struct mp_err *err);
    int (*range)(void *ctx, struct tsdb *db, const char *src, size_t len, int64_t start_ms,
                 int64_t end_ms, int64_t step_ms, struct query_result *out, struct mp_err *err);
};

struct query_test_opts {
    struct query_engine_opts engine; /* default: promqltest's (lookback 5 m, timeout 100 s,
                                      * max samples 10000, delayed name removal and
                                      * experimental functions on) */
    const char *tmp_parent;          /* data dirs go below; NULL: $TMPDIR or /tmp */
    bool range_check;                /* also run instant evals as a range query over
                                      * [t-1m, t+1m] step 1m and check the middle step, as
                                      * promqltest does (default true; skipped for
                                      * eval_ordered and queries with @ start()/end()) */
    bool at_check;                   /* also run instant evals with "@ <t>" added to every
                                      * selector and subquery at -10t, 0, t/5, t and 10t
                                      * (-1s, 0, 1s for t = 0), as promqltest does, unless
                                      * the query uses an @-unsafe function such as time()
                                      * (default true) */
    const struct query_test_exec *exec; /* NULL: the engine */
};
void query_test_opts_init(struct query_test_opts *o);

struct query_test_report {
    size_t evals;      /* eval commands run */
    size_t failed;     /* of which failed */
    struct mp_buf log; /* one block per failure, "FILE:LINE: what\n" + details */
};
void query_test_report_init(struct query_test_report *r);
void query_test_report_fini(struct query_test_report *r); /* NULL is a no-op */

/* Runs one file (path) or buffer (name is used in messages). 0 when the file was valid and
 * ran (look at rep->failed); MP_EPARSE for an invalid file; MP_EIO (file, temp dir or
 * storage), MP_EINVAL (engine options), MP_ENOMEM. Results accumulate in rep. */
MP_NODISCARD int query_test_run_file(const char *path, const struct query_test_opts *o,
                                     struct query_test_report *rep, struct mp_err *err);
MP_NODISCARD int query_test_run_buffer(const char *name, const char *src, size_t len,
                                       const struct query_test_opts *o,
                                       struct query_test_report *rep, struct mp_err *err);
/* Parses and checks a buffer without running it; *ncmds (may be NULL) = commands found. */
MP_NODISCARD int query_test_check_buffer(const char *name, const char *src, size_t len,
                                         size_t *ncmds, struct mp_err *err);

#endif
