/* SPDX-License-Identifier: Apache-2.0 */
/* web/api_query.c: /api/v1/query, query_range, format_query, query_exemplars, series,
 * labels and label/:name/values (protocols.md 4.3-4.5, promql.md 6.2/6.3).
 *
 * Validation order and messages are Prometheus's (checked against 2.42 where 2.55 agrees):
 * query_range: start, end, end < start, step, step <= 0, 11,000 points, timeout, then the
 * engine. Time parameters with a default (time, start/end of series and labels) carry Go's
 * double wrap `invalid parameter "time": Invalid time value for 'time': cannot parse ...`;
 * the required ones of query_range only `invalid parameter "start": cannot parse ...`.
 * series reports selector errors as `invalid parameter "match[]": ...`, labels and label
 * values as the bare parser message. limit (2.51+): non-negative integer, 0 = none; a cut
 * result gets the warning "results truncated due to limit". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "common/time.h"
#include "query/query.h"
#include "tsdb/tsdb.h"
#include "web/api_internal.h"

#define MAX_POINTS 11000

static const char TRUNCATED[] = "results truncated due to limit";

/* Required time parameter (query_range start/end): parseTime of the form value, "" included. */
static int required_time(const struct web_request *req, struct web_response *resp, const char *name,
                         int64_t *out)
{
    struct mp_str v = {"", 0};
    web_request_param(req, name, &v);
    struct mp_err e;
    mp_err_clear(&e);
    if (mp_time_parse(v, out, &e) != 0) {
        web_api_errorf(resp, WEB_API_BAD_DATA, "invalid parameter \"%s\": %s", name, e.msg);
        return MP_EPARSE;
    }
    return 0;
}

/* parseLimitParam: "" = 0; strconv.Atoi; negative refused. */
static int limit_param(const struct web_request *req, struct web_response *resp, size_t *out)
{
    struct mp_str v;
    *out = 0;
    if (!web_request_param(req, "limit", &v) || v.len == 0)
        return 0;
    char buf[32];
    bool ok = v.len < sizeof buf;
    long long n = 0;
    if (ok) {
        memcpy(buf, v.ptr, v.len);
        buf[v.len] = '\0';
        char *end;
        errno = 0;
        n = strtoll(buf, &end, 10);
        ok = *end == '\0' && errno == 0 && buf[0] != ' ' && buf[0] != '\t' && buf[0] != '\n';
    }
    if (!ok) {
        web_api_errorf(resp, WEB_API_BAD_DATA,
                       "invalid parameter \"limit\": strconv.Atoi: parsing \"%.*s\": invalid "
                       "syntax",
                       (int)(v.len > 64 ? 64 : v.len), v.ptr);
        return MP_EPARSE;
    }
    if (n < 0) {
        web_api_error(resp, WEB_API_BAD_DATA,
                      "invalid parameter \"limit\": limit must be non-negative");
        return MP_EPARSE;
    }
    *out = (size_t)n;
    return 0;
}

static bool no_engine(struct web_api *api, struct web_response *resp)
{
    if (api->d.engine)
        return false;
    web_api_error(resp, WEB_API_EXECUTION, "query engine not available");
    return true;
}

/* timeout and lookback_delta, shared by query and query_range. *expired: a timeout <= 0,
 * a deadline that has passed before the query starts (Go's context.WithDeadline). */
static int exec_opts(const struct web_request *req, struct web_response *resp,
                     struct query_exec_opts *o, bool *expired)
{
    memset(o, 0, sizeof *o);
    bool present;
    int64_t v;
    *expired = false;
    if (web_api_duration_param(req, resp, "timeout", &v, &present) != 0)
        return MP_EPARSE;
    if (present && v <= 0)
        *expired = true;
    else if (present)
        o->timeout_ms = v;
    if (web_api_duration_param(req, resp, "lookback_delta", &v, &present) != 0)
        return MP_EPARSE;
    if (present && v > 0)
        o->lookback_delta_ms = v;
    return 0;
}

static int parse_query_param(struct web_api *api, const struct web_request *req,
                             struct web_response *resp, bool prefix, struct query_expr **out);

/* An expired deadline: the query is still parsed (a parse error wins, as in Prometheus, where
 * it happens before execution), then times out. */
static void expired_query(struct web_api *api, const struct web_request *req,
                          struct web_response *resp, bool prefix)
{
    struct query_expr *e = NULL;
    if (parse_query_param(api, req, resp, prefix, &e) != 0)
        return;
    query_expr_free(e);
    web_api_error(resp, WEB_API_TIMEOUT, "query timed out in query execution");
}

static void exec_error(struct web_response *resp, int rc, const struct mp_err *e, bool prefix)
{
    const char *msg = e->msg[0] ? e->msg : mp_strerror(rc);
    enum web_api_error t = web_api_error_of(rc);
    if (t == WEB_API_BAD_DATA && prefix)
        web_api_errorf(resp, t, "invalid parameter \"query\": %s", msg);
    else
        web_api_error(resp, t, msg);
}

static void write_point(struct web_json *w, const struct query_point *p)
{
    web_json_arr_begin(w);
    web_json_ts(w, p->t_ms);
    web_json_value(w, p->v);
    web_json_arr_end(w);
}

/* Prometheus 2.55's stats.BuiltinStats: timings in float seconds, then the samples (the
 * per-step list first, as [time in seconds, count] pairs, omitted when empty). */
static void write_stats(struct web_json *w, const struct query_stats *st)
{
    const struct {
        const char *key;
        int64_t ns;
    } t[] = {{"evalTotalTime", st->eval_total_ns},        {"resultSortTime", st->result_sort_ns},
             {"queryPreparationTime", st->prepare_ns},    {"innerEvalTime", st->inner_eval_ns},
             {"execQueueTime", st->exec_queue_ns},        {"execTotalTime", st->exec_total_ns}};
    web_json_key(w, "stats");
    web_json_obj_begin(w);
    web_json_key(w, "timings");
    web_json_obj_begin(w);
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        web_json_key(w, t[i].key);
        web_json_f64(w, (double)(t[i].ns > 0 ? t[i].ns : 0) / 1e9);
    }
    web_json_obj_end(w);
    web_json_key(w, "samples");
    web_json_obj_begin(w);
    if (st->samples_per_step && st->nsteps) {
        web_json_key(w, "totalQueryableSamplesPerStep");
        web_json_arr_begin(w);
        for (size_t i = 0; i < st->nsteps; i++) {
            web_json_arr_begin(w);
            web_json_f64(w, (double)(st->step_start_ms + (int64_t)i * st->step_ms) / 1000.0);
            web_json_i64(w, st->samples_per_step[i]);
            web_json_arr_end(w);
        }
        web_json_arr_end(w);
    }
    web_json_key(w, "totalQueryableSamples");
    web_json_i64(w, st->total_queryable_samples);
    web_json_key(w, "peakSamples");
    web_json_i64(w, st->peak_samples);
    web_json_obj_end(w);
    web_json_obj_end(w);
}

static void write_result(struct web_json *w, const struct query_result *r, bool stats)
{
    static const char *const type_names[] = {[QUERY_TYPE_SCALAR] = "scalar",
                                             [QUERY_TYPE_VECTOR] = "vector",
                                             [QUERY_TYPE_MATRIX] = "matrix",
                                             [QUERY_TYPE_STRING] = "string"};
    enum query_type t = r->type;
    if (t != QUERY_TYPE_SCALAR && t != QUERY_TYPE_MATRIX && t != QUERY_TYPE_STRING)
        t = QUERY_TYPE_VECTOR;
    web_json_obj_begin(w);
    web_json_key(w, "resultType");
    web_json_cstr(w, type_names[t]);
    web_json_key(w, "result");
    switch (t) {
    case QUERY_TYPE_SCALAR:
    case QUERY_TYPE_STRING:
        web_json_arr_begin(w);
        web_json_f64(w, (double)r->scalar.t_ms / 1000.0);
        if (t == QUERY_TYPE_SCALAR)
            web_json_value_f(w, r->scalar.v);
        else
            web_json_cstr(w, r->string);
        web_json_arr_end(w);
        break;
    default:
        web_json_arr_begin(w);
        for (size_t i = 0; i < r->nseries; i++) {
            const struct query_series *s = &r->series[i];
            web_json_obj_begin(w);
            web_json_key(w, "metric");
            web_json_labels(w, s->labels);
            if (t == QUERY_TYPE_VECTOR) {
                web_json_key(w, "value");
                if (s->npoints)
                    write_point(w, &s->points[0]);
                else
                    web_json_raw(w, "null", 4);
            } else {
                web_json_key(w, "values");
                web_json_arr_begin(w);
                for (size_t j = 0; j < s->npoints; j++)
                    write_point(w, &s->points[j]);
                web_json_arr_end(w);
            }
            web_json_obj_end(w);
        }
        web_json_arr_end(w);
    }
    if (stats)
        write_stats(w, &r->stats);
    web_json_obj_end(w);
}

static void respond_result(struct web_response *resp, const struct query_result *r, bool stats)
{
    struct web_api_out o;
    web_api_begin(&o);
    write_result(&o.w, r, stats);
    web_api_end(&o, resp, (const char *const *)r->warnings, r->nwarnings,
                (const char *const *)r->infos, r->ninfos);
    web_api_out_fini(&o);
}

/* stats: any non-empty value adds the stats object; "all" asks for per-step totals too
 * (given only with --enable-feature=promql-per-step-stats, which the engine holds). */
static bool stats_param(const struct web_request *req, struct query_exec_opts *o)
{
    struct mp_str v;
    if (!web_request_param(req, "stats", &v) || v.len == 0)
        return false;
    o->per_step_stats = mp_str_eq(v, MP_STR_LIT("all"));
    return true;
}

/* Cancellation: the query stops when its client hangs up (Go cancels the request context)
 * and answers errorType canceled, which nobody reads then; the engine's shutdown flag covers
 * a stopping server. The engine asks the hook on entry and then every QUERY_CANCEL_POLL_MS;
 * the socket is looked at from the second time on, so a query that answers within the first
 * interval (nearly all of them) costs no poll(2), and a hang-up is still seen within one
 * interval of happening. */
struct hangup {
    struct query_cancel tok;
    const struct web_request *req;
    int64_t first_poll_ns;
};

static bool client_gone(void *ctx)
{
    const struct hangup *h = ctx;
    return mp_mono_ns() >= h->first_poll_ns && web_request_client_gone(h->req);
}

static void cancel_on_hangup(const struct web_request *req, struct hangup *h,
                             struct query_exec_opts *o)
{
    h->req = req;
    h->first_poll_ns = mp_mono_ns() + (int64_t)QUERY_CANCEL_POLL_MS * 1000000;
    query_cancel_init(&h->tok, client_gone, h);
    o->cancel = &h->tok;
}

static void h_query(void *ctx, const struct web_request *req, struct web_response *resp)
{
    struct web_api *api = ctx;
    int64_t t;
    struct query_exec_opts o;
    bool expired;
    if (web_api_time_param(req, resp, "time", mp_now_ms(), &t) != 0 ||
        exec_opts(req, resp, &o, &expired) != 0 || no_engine(api, resp))
        return;
    if (expired) {
        expired_query(api, req, resp, true);
        return;
    }
    struct mp_str q = {"", 0};
    web_request_param(req, "query", &q);
    struct query_result r;
    memset(&r, 0, sizeof r);
    struct mp_err e;
    mp_err_clear(&e);
    bool stats = stats_param(req, &o);
    struct hangup h;
    cancel_on_hangup(req, &h, &o);
    int rc = query_exec_instant(api->d.engine, api->d.db, q.ptr, q.len, t, &o, &r, &e);
    if (rc != 0) {
        exec_error(resp, rc, &e, true);
        return;
    }
    respond_result(resp, &r, stats);
    query_result_fini(&r);
}

static void h_query_range(void *ctx, const struct web_request *req, struct web_response *resp)
{
    struct web_api *api = ctx;
    int64_t start, end, step;
    if (required_time(req, resp, "start", &start) != 0 ||
        required_time(req, resp, "end", &end) != 0)
        return;
    if (end < start) {
        web_api_error(resp, WEB_API_BAD_DATA,
                      "invalid parameter \"end\": end timestamp must not be before start time");
        return;
    }
    struct mp_str sv = {"", 0};
    web_request_param(req, "step", &sv);
    struct mp_err e;
    mp_err_clear(&e);
    if (mp_api_duration_parse(sv, &step, &e) != 0) {
        web_api_errorf(resp, WEB_API_BAD_DATA, "invalid parameter \"step\": %s", e.msg);
        return;
    }
    if (step <= 0) {
        web_api_error(resp, WEB_API_BAD_DATA,
                      "invalid parameter \"step\": zero or negative query resolution step "
                      "widths are not accepted. Try a positive integer");
        return;
    }
    /* (end - start) / step with both in ms, as Go divides the two durations; end - start
     * cannot overflow a uint64 */
    if (((uint64_t)end - (uint64_t)start) / (uint64_t)step > MAX_POINTS) {
        web_api_error(resp, WEB_API_BAD_DATA,
                      "exceeded maximum resolution of 11,000 points per timeseries. Try "
                      "decreasing the query resolution (?step=XX)");
        return;
    }
    struct query_exec_opts o;
    bool expired;
    if (exec_opts(req, resp, &o, &expired) != 0 || no_engine(api, resp))
        return;
    if (expired) {
        expired_query(api, req, resp, false);
        return;
    }
    struct mp_str q = {"", 0};
    web_request_param(req, "query", &q);
    struct query_result r;
    memset(&r, 0, sizeof r);
    bool stats = stats_param(req, &o);
    struct hangup h;
    cancel_on_hangup(req, &h, &o);
    int rc = query_exec_range(api->d.engine, api->d.db, q.ptr, q.len, start, end, step, &o, &r, &e);
    if (rc != 0) {
        exec_error(resp, rc, &e, false);
        return;
    }
    respond_result(resp, &r, stats);
    query_result_fini(&r);
}

static int parse_query_param(struct web_api *api, const struct web_request *req,
                             struct web_response *resp, bool prefix, struct query_expr **out)
{
    struct mp_str q = {"", 0};
    web_request_param(req, "query", &q);
    struct query_parse_opts po;
    query_parse_opts_init(&po);
    po.experimental_functions = api->d.experimental_functions;
    struct query_parse_error pe;
    int rc = query_parse(q.ptr, q.len, &po, out, &pe);
    if (rc != 0) {
        const char *msg = rc == MP_EPARSE ? pe.msg : mp_strerror(rc);
        if (prefix)
            web_api_errorf(resp, WEB_API_BAD_DATA, "invalid parameter \"query\": %s", msg);
        else
            web_api_error(resp, WEB_API_BAD_DATA, msg);
    }
    return rc;
}

static void h_format_query(void *ctx, const struct web_request *req, struct web_response *resp)
{
    struct query_expr *e = NULL;
    if (parse_query_param(ctx, req, resp, true, &e) != 0)
        return;
    struct mp_buf text;
    mp_buf_init(&text, 0);
    int rc = query_expr_pretty(e, &text);
    query_expr_free(e);
    if (rc != 0) {
        mp_buf_fini(&text);
        web_api_error(resp, WEB_API_INTERNAL, mp_strerror(rc));
        return;
    }
    struct web_api_out o;
    web_api_begin(&o);
    web_json_str(&o.w, (struct mp_str){text.data ? text.data : "", text.len});
    mp_buf_fini(&text);
    web_api_end(&o, resp, NULL, 0, NULL, 0);
    web_api_out_fini(&o);
}

static bool has_selector(const struct query_expr *e)
{
    switch (query_expr_kind(e)) {
    case QUERY_VECTOR_SELECTOR:
        return true;
    case QUERY_MATRIX_SELECTOR:
    case QUERY_PAREN:
    case QUERY_UNARY:
    case QUERY_SUBQUERY:
        return has_selector(query_expr_inner(e));
    case QUERY_AGGREGATE: {
        const struct query_expr *p = query_aggregate_param(e);
        return (p && has_selector(p)) || has_selector(query_expr_inner(e));
    }
    case QUERY_BINARY:
        return has_selector(query_binary_lhs(e)) || has_selector(query_binary_rhs(e));
    case QUERY_CALL:
        for (size_t i = 0; i < query_call_nargs(e); i++)
            if (has_selector(query_call_arg(e, i)))
                return true;
        return false;
    default:
        return false;
    }
}

/* No exemplar storage (Prometheus without --enable-feature=exemplar-storage): every selector
 * has no exemplars, so the answer is [] (204 when the expression has no selector). */
static void h_query_exemplars(void *ctx, const struct web_request *req, struct web_response *resp)
{
    int64_t start, end;
    if (web_api_time_param(req, resp, "start", MP_TIME_MIN_MS, &start) != 0 ||
        web_api_time_param(req, resp, "end", MP_TIME_MAX_MS, &end) != 0)
        return;
    if (end < start) {
        web_api_error(resp, WEB_API_BAD_DATA, "end timestamp must not be before start timestamp");
        return;
    }
    struct query_expr *e = NULL;
    if (parse_query_param(ctx, req, resp, false, &e) != 0)
        return;
    bool any = has_selector(e);
    query_expr_free(e);
    if (!any) {
        web_response_status(resp, 204);
        web_response_content_type(resp, "");
        return;
    }
    struct web_api_out o;
    web_api_begin(&o);
    web_json_arr_begin(&o.w);
    web_json_arr_end(&o.w);
    web_api_end(&o, resp, NULL, 0, NULL, 0);
    web_api_out_fini(&o);
}

/* ---- series ---- */

/* One series set per match[]; the sets are OR-ed: merged in label order, duplicates once. */
struct merged {
    struct tsdb_series_set **sets;
    bool *live;
    size_t n;
};

static int merged_open(struct tsdb_querier *q, const struct web_api_selectors *sel,
                       struct merged *m, struct mp_err *err)
{
    m->n = sel->n;
    m->sets = mp_xcalloc(sel->n, sizeof *m->sets);
    m->live = mp_xcalloc(sel->n, sizeof *m->live);
    for (size_t i = 0; i < sel->n; i++) {
        int rc = tsdb_querier_select(q, sel->sets[i], sel->nset[i], &m->sets[i], err);
        if (rc == 0)
            rc = tsdb_series_set_next(m->sets[i], err);
        if (rc == 0)
            m->live[i] = true;
        else if (rc != MP_EEOF)
            return rc;
    }
    return 0;
}

/* The smallest current label set (NULL at the end); advances every set positioned on it
 * after the caller used it (merged_advance). */
static const struct mp_labels *merged_peek(const struct merged *m)
{
    const struct mp_labels *best = NULL;
    for (size_t i = 0; i < m->n; i++) {
        if (!m->live[i])
            continue;
        const struct mp_labels *ls = tsdb_series_set_labels(m->sets[i]);
        if (!best || mp_labels_compare(ls, best) < 0)
            best = ls;
    }
    return best;
}

static int merged_advance(struct merged *m, struct mp_labels *cur, struct mp_err *err)
{
    for (size_t i = 0; i < m->n; i++) {
        if (!m->live[i] || !mp_labels_equal(tsdb_series_set_labels(m->sets[i]), cur))
            continue;
        int rc = tsdb_series_set_next(m->sets[i], err);
        if (rc == MP_EEOF)
            m->live[i] = false;
        else if (rc != 0)
            return rc;
    }
    return 0;
}

static void merged_close(struct merged *m)
{
    for (size_t i = 0; i < m->n; i++)
        tsdb_series_set_free(m->sets[i]);
    mp_free(m->sets);
    mp_free(m->live);
}

static void h_series_delete(void *ctx, const struct web_request *req, struct web_response *resp)
{
    web_api_error(resp, WEB_API_INTERNAL, "not implemented");
}

static void h_series(void *ctx, const struct web_request *req, struct web_response *resp)
{
    struct web_api *api = ctx;
    size_t limit;
    if (limit_param(req, resp, &limit) != 0)
        return;
    int64_t start, end;
    struct web_api_selectors sel;
    if (web_api_match_range(api, req, resp, &start, &end, &sel) != 0)
        return;
    struct mp_err e;
    mp_err_clear(&e);
    struct tsdb_querier *q = NULL;
    struct merged m = {0};
    int rc = tsdb_querier_open(api->d.db, start, end, &q, &e);
    if (rc == 0)
        rc = merged_open(q, &sel, &m, &e);
    struct web_api_out o;
    web_api_begin(&o);
    web_json_arr_begin(&o.w);
    size_t count = 0;
    bool truncated = false;
    while (rc == 0) {
        const struct mp_labels *ls = merged_peek(&m);
        if (!ls)
            break;
        if (limit && count == limit) {
            truncated = true;
            break;
        }
        struct mp_labels *cur = mp_labels_acquire(ls);
        web_json_labels(&o.w, cur);
        count++;
        rc = merged_advance(&m, cur, &e);
        mp_labels_release(cur);
    }
    web_json_arr_end(&o.w);
    merged_close(&m);
    tsdb_querier_close(q);
    web_api_selectors_fini(&sel);
    if (rc != 0) {
        web_api_out_fini(&o);
        web_api_error(resp, WEB_API_EXECUTION, e.msg[0] ? e.msg : mp_strerror(rc));
        return;
    }
    const char *w[] = {TRUNCATED};
    web_api_end(&o, resp, w, truncated ? 1 : 0, NULL, 0);
    web_api_out_fini(&o);
}

/* ---- label names and values ---- */

/* Collects strings from the tsdb callbacks: sorted and unique per call; several match[] sets
 * are merged afterwards. */
struct strlist {
    char **s;
    size_t n, cap;
};

static int strlist_add(void *ctx, struct mp_str s)
{
    struct strlist *l = ctx;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->s = mp_xrealloc(l->s, l->cap * sizeof *l->s);
    }
    l->s[l->n++] = mp_xstrndup(s.ptr ? s.ptr : "", s.len);
    return 0;
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void strlist_sort_unique(struct strlist *l)
{
    if (l->n < 2)
        return;
    qsort(l->s, l->n, sizeof *l->s, cmp_cstr);
    size_t k = 1;
    for (size_t i = 1; i < l->n; i++) {
        if (strcmp(l->s[i], l->s[k - 1]) == 0)
            mp_free(l->s[i]);
        else
            l->s[k++] = l->s[i];
    }
    l->n = k;
}

static void strlist_fini(struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        mp_free(l->s[i]);
    mp_free(l->s);
}

/* Shared by /labels and /label/:name/values: name NULL lists names. */
static void label_list(struct web_api *api, const struct web_request *req,
                       struct web_response *resp, const struct mp_str *name)
{
    size_t limit;
    int64_t start, end;
    if (limit_param(req, resp, &limit) != 0 ||
        web_api_time_param(req, resp, "start", MP_TIME_MIN_MS, &start) != 0 ||
        web_api_time_param(req, resp, "end", MP_TIME_MAX_MS, &end) != 0)
        return;
    struct web_api_selectors sel;
    if (web_api_selectors_get(api, req, resp, false, &sel) != 0)
        return;
    struct mp_err e;
    mp_err_clear(&e);
    struct tsdb_querier *q = NULL;
    struct strlist l = {0};
    int rc = tsdb_querier_open(api->d.db, start, end, &q, &e);
    for (size_t i = 0; rc == 0 && i < (sel.n ? sel.n : 1); i++) {
        const struct mp_matcher *const *ms = sel.n ? sel.sets[i] : NULL;
        size_t nm = sel.n ? sel.nset[i] : 0;
        if (name)
            rc = tsdb_querier_label_values(q, *name, ms, nm, strlist_add, &l, &e);
        else
            rc = tsdb_querier_label_names(q, ms, nm, strlist_add, &l, &e);
    }
    tsdb_querier_close(q);
    web_api_selectors_fini(&sel);
    if (rc != 0) {
        strlist_fini(&l);
        web_api_error(resp, WEB_API_EXECUTION, e.msg[0] ? e.msg : mp_strerror(rc));
        return;
    }
    strlist_sort_unique(&l); /* each call is sorted; several match[] sets need a merge */
    bool truncated = limit && l.n > limit;
    size_t n = truncated ? limit : l.n;
    struct web_api_out o;
    web_api_begin(&o);
    web_json_arr_begin(&o.w);
    for (size_t i = 0; i < n; i++)
        web_json_cstr(&o.w, l.s[i]);
    web_json_arr_end(&o.w);
    strlist_fini(&l);
    const char *w[] = {TRUNCATED};
    web_api_end(&o, resp, w, truncated ? 1 : 0, NULL, 0);
    web_api_out_fini(&o);
}

static void h_labels(void *ctx, const struct web_request *req, struct web_response *resp)
{
    label_list(ctx, req, resp, NULL);
}

static void h_label_values(void *ctx, const struct web_request *req, struct web_response *resp)
{
    struct mp_str name = web_request_path_param(req, "name");
    if (!mp_label_name_is_valid(name)) {
        struct mp_buf b;
        mp_buf_init(&b, 4096);
        if (mp_label_quote(&b, name) != 0)
            mp_buf_reset(&b);
        web_api_errorf(resp, WEB_API_BAD_DATA, "invalid label name: %s", b.data ? b.data : "");
        mp_buf_fini(&b);
        return;
    }
    label_list(ctx, req, resp, &name);
}

int web_api_register_query(struct web_api *api, struct web_server *srv, struct mp_err *err)
{
    static const struct web_api_route routes[] = {
        {"GET|POST", "/api/v1/query", h_query},
        {"GET|POST", "/api/v1/query_range", h_query_range},
        {"GET|POST", "/api/v1/query_exemplars", h_query_exemplars},
        {"GET|POST", "/api/v1/format_query", h_format_query},
        {"GET|POST", "/api/v1/series", h_series},
        {"DELETE", "/api/v1/series", h_series_delete},
        {"GET|POST", "/api/v1/labels", h_labels},
        {"GET", "/api/v1/label/:name/values", h_label_values},
    };
    return web_api_routes(api, srv, routes, sizeof routes / sizeof routes[0], err);
}
