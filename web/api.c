/* SPDX-License-Identifier: Apache-2.0 */
/* web/api.c: registration of the HTTP API v1 and what every handler shares: the response
 * envelope, error types and their HTTP statuses, time/duration parameters and match[]
 * selectors (protocols.md 4.1-4.3; Prometheus 2.55 web/api/v1/api.go).
 *
 * Handlers live in api_query.c (query, query_range, series, labels, ...), api_status.c
 * (status endpoints, targets, metadata, rules, alerts), api_admin.c (admin tsdb endpoints, write)
 * and federate.c. Each one writes its JSON straight into the response body through web_json. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/time.h"
#include "query/query.h"
#include "remote/remote.h"
#include "web/api_internal.h"

/* Response bodies are capped so that one query cannot exhaust memory while being written:
 * the engine's max_samples bounds the data long before this. */
#define API_BODY_CAP ((size_t)2 << 30)

void web_api_deps_init(struct web_api_deps *d)
{
    memset(d, 0, sizeof *d);
    d->lookback_delta_ms = 5 * 60 * 1000;
    d->rw_max_body_bytes = REMOTE_WRITE_MAX_BODY_DEFAULT;
    d->rw_max_decoded_bytes = REMOTE_WRITE_MAX_DECODED_DEFAULT;
    d->rw_max_memory_bytes = REMOTE_WRITE_MAX_MEMORY_DEFAULT;
    d->rw_max_ahead_ms = REMOTE_WRITE_MAX_AHEAD_MS;
    d->rw_cache_keep_bytes = (size_t)8 << 20;
    d->rw_caches = 4;
    struct remote_read_options ro;
    remote_read_options_init(&ro);
    d->rr_sample_limit = ro.sample_limit;
    d->rr_concurrent_limit = ro.concurrent_limit;
    d->rr_max_bytes_in_frame = ro.max_bytes_in_frame;
}

static char *dup_or_null(const char *s)
{
    return s ? mp_xstrdup(s) : NULL;
}

static void free_strings(struct web_api_deps *d)
{
    mp_free((char *)d->version);
    mp_free((char *)d->revision);
    mp_free((char *)d->branch);
    mp_free((char *)d->build_user);
    mp_free((char *)d->build_date);
    mp_free((char *)d->go_version);
    mp_free((char *)d->storage_retention);
}

int web_api_register(struct web_server *srv, const struct web_api_deps *deps, struct web_api **out,
                     struct mp_err *err)
{
    *out = NULL;
    if (!deps)
        return mp_err_set(err, MP_EINVAL, "web api: no dependencies");
    struct web_api *api = mp_xmalloc(sizeof *api);
    memset(api, 0, sizeof *api);
    api->srv = srv;
    api->d = *deps;
    api->d.version = dup_or_null(deps->version);
    api->d.revision = dup_or_null(deps->revision);
    api->d.branch = dup_or_null(deps->branch);
    api->d.build_user = dup_or_null(deps->build_user);
    api->d.build_date = dup_or_null(deps->build_date);
    api->d.go_version = dup_or_null(deps->go_version);
    api->d.storage_retention = dup_or_null(deps->storage_retention);
    if (api->d.start_time_ms == 0)
        api->d.start_time_ms = mp_now_ms();
    if (!getcwd(api->cwd, sizeof api->cwd))
        api->cwd[0] = '\0';
    pthread_mutex_init(&api->rw_mu, NULL);
    if (api->d.rw_caches)
        api->rw_pool = mp_xmalloc(api->d.rw_caches * sizeof *api->rw_pool);
    int rc = web_api_register_query(api, srv, err);
    if (rc == 0)
        rc = web_api_register_status(api, srv, err);
    if (rc == 0)
        rc = web_api_register_admin(api, srv, err);
    if (rc == 0)
        rc = web_api_register_federate(api, srv, err);
    if (rc != 0) {
        /* routes already added point at api; the server must not be started then */
        web_api_destroy(api);
        return rc;
    }
    *out = api;
    return 0;
}

void web_api_set_storage(struct web_api *api, struct tsdb *db, struct query_engine *engine)
{
    api->d.db = db;
    if (engine)
        api->d.engine = engine;
}

void web_api_set_scrape(struct web_api *api, struct scrape_manager *m)
{
    api->d.scrape = m;
}

void web_api_destroy(struct web_api *api)
{
    if (!api)
        return;
    for (size_t i = 0; i < api->rw_n; i++)
        remote_write_cache_destroy(api->rw_pool[i]);
    mp_free(api->rw_pool);
    pthread_mutex_destroy(&api->rw_mu);
    remote_read_server_destroy(api->rr);
    free_strings(&api->d);
    mp_free(api);
}

/* ---- envelope ---- */

void web_api_begin(struct web_api_out *o)
{
    mp_buf_init(&o->b, API_BODY_CAP);
    web_json_init(&o->w, &o->b);
    web_json_obj_begin(&o->w);
    web_json_key(&o->w, "status");
    web_json_cstr(&o->w, "success");
    web_json_key(&o->w, "data");
}

static void string_list(struct web_json *w, const char *key, const char *const *s, size_t n)
{
    if (n == 0)
        return;
    web_json_key(w, key);
    web_json_arr_begin(w);
    for (size_t i = 0; i < n; i++)
        web_json_cstr(w, s[i]);
    web_json_arr_end(w);
}

void web_api_end(struct web_api_out *o, struct web_response *resp, const char *const *warnings,
                 size_t nwarnings, const char *const *infos, size_t ninfos)
{
    string_list(&o->w, "warnings", warnings, nwarnings);
    string_list(&o->w, "infos", infos, ninfos);
    web_json_obj_end(&o->w);
    int rc = web_json_status(&o->w);
    if (rc != 0) {
        mp_buf_fini(&o->b);
        web_api_errorf(resp, WEB_API_INTERNAL, "error writing response: %s", mp_strerror(rc));
        return;
    }
    web_response_content_type(resp, "application/json");
    web_response_body_take(resp, &o->b);
}

void web_api_out_fini(struct web_api_out *o)
{
    mp_buf_fini(&o->b);
}

static const struct {
    const char *name;
    int status;
} error_types[] = {
    [WEB_API_BAD_DATA] = {"bad_data", 400},       [WEB_API_EXECUTION] = {"execution", 422},
    [WEB_API_CANCELED] = {"canceled", 499},       [WEB_API_TIMEOUT] = {"timeout", 503},
    [WEB_API_INTERNAL] = {"internal", 500},       [WEB_API_NOT_FOUND] = {"not_found", 404},
    [WEB_API_UNAVAILABLE] = {"unavailable", 500},
};

void web_api_error(struct web_response *resp, enum web_api_error t, const char *msg)
{
    struct mp_buf b;
    mp_buf_init(&b, 0);
    struct web_json w;
    web_json_init(&w, &b);
    web_json_obj_begin(&w);
    web_json_key(&w, "status");
    web_json_cstr(&w, "error");
    web_json_key(&w, "errorType");
    web_json_cstr(&w, error_types[t].name);
    web_json_key(&w, "error");
    web_json_cstr(&w, msg);
    web_json_obj_end(&w);
    web_response_status(resp, error_types[t].status);
    web_response_content_type(resp, "application/json");
    if (web_json_status(&w) == 0)
        web_response_body_take(resp, &b);
    mp_buf_fini(&b);
}

void web_api_errorf(struct web_response *resp, enum web_api_error t, const char *fmt, ...)
{
    char msg[MP_ERR_MSG_MAX + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    web_api_error(resp, t, msg);
}

void web_api_text_error(struct web_response *resp, int status, const char *msg)
{
    char body[MP_ERR_MSG_MAX + 2];
    int len = snprintf(body, sizeof body, "%s\n", msg);
    web_response_status(resp, status);
    web_response_header(resp, "X-Content-Type-Options", "nosniff");
    web_response_body_copy(resp, body, len < (int)sizeof body ? (size_t)len : sizeof body - 1);
}

enum web_api_error web_api_error_of(int rc)
{
    switch (rc) {
    case MP_EPARSE:
    case MP_EINVAL:
        return WEB_API_BAD_DATA;
    case MP_EEXEC:
    case MP_ELIMIT:
        return WEB_API_EXECUTION;
    case MP_ETIMEOUT:
        return WEB_API_TIMEOUT;
    case MP_ECANCELED:
        return WEB_API_CANCELED;
    default:
        return WEB_API_INTERNAL;
    }
}

/* ---- parameters ---- */

int web_api_time_param(const struct web_request *req, struct web_response *resp, const char *name,
                       int64_t def, int64_t *out)
{
    struct mp_str v;
    if (!web_request_param(req, name, &v) || v.len == 0) {
        *out = def;
        return 0;
    }
    struct mp_err e;
    mp_err_clear(&e);
    if (mp_time_parse(v, out, &e) != 0) {
        web_api_errorf(resp, WEB_API_BAD_DATA,
                       "invalid parameter \"%s\": Invalid time value for '%s': %s", name, name,
                       e.msg);
        return MP_EPARSE;
    }
    return 0;
}

int web_api_duration_param(const struct web_request *req, struct web_response *resp,
                           const char *name, int64_t *out, bool *present)
{
    struct mp_str v;
    *present = false;
    if (!web_request_param(req, name, &v) || v.len == 0)
        return 0;
    struct mp_err e;
    mp_err_clear(&e);
    if (mp_api_duration_parse(v, out, &e) != 0) {
        web_api_errorf(resp, WEB_API_BAD_DATA, "invalid parameter \"%s\": %s", name, e.msg);
        return MP_EPARSE;
    }
    *present = true;
    return 0;
}

#define MAX_MATCH_SETS 1024

/* The error, with the series endpoint's `invalid parameter "match[]": ` in front. */
static int selector_error(struct mp_err *err, bool prefix, const char *msg)
{
    return mp_err_set(err, MP_EPARSE, "%s%s", prefix ? "invalid parameter \"match[]\": " : "", msg);
}

int web_api_selectors_parse(struct web_api *api, const struct web_request *req, bool prefix,
                            struct web_api_selectors *out, struct mp_err *err)
{
    memset(out, 0, sizeof *out);
    struct mp_str vals[MAX_MATCH_SETS];
    size_t n = web_request_params(req, "match[]", vals, MAX_MATCH_SETS);
    if (n > MAX_MATCH_SETS)
        return mp_err_set(err, MP_ELIMIT, "too many match[] parameters (at most %d)",
                          MAX_MATCH_SETS);
    if (n == 0)
        return 0;
    out->exprs = mp_xmalloc(n * sizeof *out->exprs);
    out->sets = mp_xcalloc(n, sizeof *out->sets);
    out->nset = mp_xcalloc(n, sizeof *out->nset);
    struct query_parse_opts po;
    query_parse_opts_init(&po);
    po.experimental_functions = api->d.experimental_functions;
    for (size_t i = 0; i < n; i++) {
        struct query_parse_error pe;
        struct query_expr *e = NULL;
        int rc = query_parse(vals[i].ptr, vals[i].len, &po, &e, &pe);
        if (rc == MP_EPARSE && strstr(pe.msg, "at least one non-empty matcher"))
            /* ParseMetricSelector leaves that check to the API, which words it so */
            return selector_error(err, prefix,
                                  "match[] must contain at least one non-empty matcher");
        if (rc != 0)
            return selector_error(err, prefix, rc == MP_EPARSE ? pe.msg : mp_strerror(rc));
        out->exprs[out->n++] = e;
        int64_t at;
        if (query_expr_kind(e) != QUERY_VECTOR_SELECTOR || query_offset_ms(e) != 0 ||
            query_at(e, &at) != QUERY_AT_NONE)
            return selector_error(err, prefix, "1:1: parse error: expected a series selector");
        size_t nm = query_selector_nmatchers(e);
        const struct mp_matcher **ms = mp_xmalloc((nm ? nm : 1) * sizeof *ms);
        bool nonempty = false;
        for (size_t j = 0; j < nm; j++) {
            ms[j] = query_selector_matcher(e, j);
            if (!mp_matcher_matches_empty(ms[j]))
                nonempty = true;
        }
        out->sets[i] = ms;
        out->nset[i] = nm;
        if (!nonempty)
            return selector_error(err, prefix,
                                  "match[] must contain at least one non-empty matcher");
    }
    return 0;
}

int web_api_selectors_get(struct web_api *api, const struct web_request *req,
                          struct web_response *resp, bool prefix, struct web_api_selectors *out)
{
    struct mp_err e;
    mp_err_clear(&e);
    int rc = web_api_selectors_parse(api, req, prefix, out, &e);
    if (rc != 0) {
        web_api_selectors_fini(out);
        web_api_error(resp, WEB_API_BAD_DATA, e.msg);
    }
    return rc;
}

int web_api_match_range(struct web_api *api, const struct web_request *req,
                        struct web_response *resp, int64_t *start, int64_t *end,
                        struct web_api_selectors *sel)
{
    struct mp_str one;
    if (web_request_params(req, "match[]", &one, 1) == 0) {
        web_api_error(resp, WEB_API_BAD_DATA, "no match[] parameter provided");
        return MP_EINVAL;
    }
    if (web_api_time_param(req, resp, "start", MP_TIME_MIN_MS, start) != 0 ||
        web_api_time_param(req, resp, "end", MP_TIME_MAX_MS, end) != 0)
        return MP_EPARSE;
    return web_api_selectors_get(api, req, resp, true, sel);
}

int web_api_routes(struct web_api *api, struct web_server *srv, const struct web_api_route *r,
                   size_t n, struct mp_err *err)
{
    for (size_t i = 0; i < n; i++) {
        int rc = web_server_route(srv, r[i].methods, r[i].pattern, r[i].fn, api, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

void web_api_selectors_fini(struct web_api_selectors *s)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->sets && s->sets[i])
            mp_free((void *)s->sets[i]);
        query_expr_free(s->exprs[i]);
    }
    mp_free(s->exprs);
    mp_free(s->sets);
    mp_free(s->nset);
    memset(s, 0, sizeof *s);
}
