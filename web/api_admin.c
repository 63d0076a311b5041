/* SPDX-License-Identifier: Apache-2.0 */
/* web/api_admin.c: /api/v1/admin/tsdb/{delete_series,clean_tombstones,snapshot} behind
 * --web.enable-admin-api (protocols.md 4.9) and POST /api/v1/write behind
 * --web.enable-remote-write-receiver (5.4).
 *
 * Admin disabled: 500 {"errorType":"unavailable","error":"admin APIs disabled"}, as 2.55.
 * Remote write answers are plain text as Go's http.Error writes them (message + "\n"):
 * 404 when disabled, 415 for headers remote_write_check_headers refuses, then what
 * remote_write_decode_and_append_cached decides (204, 400, 413, 500). Each request borrows a
 * decode cache from a small pool (a cache belongs to one thread at a time) and gives it
 * back; beyond the pool's size caches are freed.
 * POST /api/v1/read (5.7) is remote/read.c's remote_read_serve: its snappy body, or its frame
 * stream as a chunked response, or its error as plain text. */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "common/metrics.h"
#include "common/time.h"
#include "remote/remote.h"
#include "tsdb/tsdb.h"
#include "web/api_internal.h"

static bool admin_enabled(const struct web_api *api, struct web_response *resp)
{
    if (api->d.enable_admin)
        return true;
    web_api_error(resp, WEB_API_UNAVAILABLE, "admin APIs disabled");
    return false;
}

static void no_content(struct web_response *resp)
{
    web_response_status(resp, 204);
    web_response_content_type(resp, "");
}

static void h_delete_series(void *ctx, const struct web_request *req, struct web_response *resp)
{
    struct web_api *api = ctx;
    if (!admin_enabled(api, resp))
        return;
    int64_t start, end;
    struct web_api_selectors sel;
    if (web_api_match_range(api, req, resp, &start, &end, &sel) != 0)
        return;
    struct mp_err e;
    mp_err_clear(&e);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sel.n; i++)
        rc = tsdb_delete_series(api->d.db, sel.sets[i], sel.nset[i], start, end, &e);
    web_api_selectors_fini(&sel);
    if (rc != 0) {
        web_api_error(resp, WEB_API_INTERNAL, e.msg[0] ? e.msg : mp_strerror(rc));
        return;
    }
    no_content(resp);
}

static void h_clean_tombstones(void *ctx, const struct web_request *req, struct web_response *resp)
{
    struct web_api *api = ctx;
    if (!admin_enabled(api, resp))
        return;
    struct mp_err e;
    mp_err_clear(&e);
    int rc = tsdb_clean_tombstones(api->d.db, &e);
    if (rc != 0) {
        web_api_error(resp, WEB_API_INTERNAL, e.msg[0] ? e.msg : mp_strerror(rc));
        return;
    }
    no_content(resp);
}

/* strconv.ParseBool */
static int parse_bool(struct mp_str s, bool *out)
{
    static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < 6; i++) {
        if (mp_str_eq(s, mp_str_c(t[i]))) {
            *out = true;
            return 0;
        }
        if (mp_str_eq(s, mp_str_c(f[i]))) {
            *out = false;
            return 0;
        }
    }
    return MP_EPARSE;
}

static void h_snapshot(void *ctx, const struct web_request *req, struct web_response *resp)
{
    struct web_api *api = ctx;
    if (!admin_enabled(api, resp))
        return;
    bool skip_head = false;
    struct mp_str v;
    if (web_request_param(req, "skip_head", &v) && v.len && parse_bool(v, &skip_head) != 0) {
        web_api_errorf(resp, WEB_API_BAD_DATA,
                       "invalid parameter \"skip_head\": unable to parse boolean: "
                       "strconv.ParseBool: parsing \"%.*s\": invalid syntax",
                       (int)(v.len > 64 ? 64 : v.len), v.ptr);
        return;
    }
    char name[64];
    struct mp_err e;
    mp_err_clear(&e);
    int rc = tsdb_snapshot(api->d.db, skip_head, name, &e);
    if (rc != 0) {
        web_api_errorf(resp, WEB_API_INTERNAL, "create snapshot: %s",
                       e.msg[0] ? e.msg : mp_strerror(rc));
        return;
    }
    struct web_api_out o;
    web_api_begin(&o);
    web_json_obj_begin(&o.w);
    web_json_key(&o.w, "name");
    web_json_cstr(&o.w, name);
    web_json_obj_end(&o.w);
    web_api_end(&o, resp, NULL, 0, NULL, 0);
    web_api_out_fini(&o);
}

/* ---- remote write ---- */

static struct remote_write_cache *cache_get(struct web_api *api)
{
    struct remote_write_cache *c = NULL;
    pthread_mutex_lock(&api->rw_mu);
    if (api->rw_n)
        c = api->rw_pool[--api->rw_n];
    pthread_mutex_unlock(&api->rw_mu);
    if (!c && api->d.rw_cache_keep_bytes &&
        remote_write_cache_create(api->d.rw_cache_keep_bytes, &c) != 0)
        c = NULL; /* decode without a cache */
    return c;
}

static void cache_put(struct web_api *api, struct remote_write_cache *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&api->rw_mu);
    if (api->rw_n < api->d.rw_caches) {
        api->rw_pool[api->rw_n++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&api->rw_mu);
    remote_write_cache_destroy(c);
}

static void h_write(void *ctx, const struct web_request *req, struct web_response *resp)
{
    struct web_api *api = ctx;
    if (!api->d.enable_remote_write) {
        web_api_text_error(resp, 404,
                           "remote write receiver needs to be enabled with "
                           "--web.enable-remote-write-receiver");
        return;
    }
    struct remote_write_result res;
    memset(&res, 0, sizeof res);
    if (remote_write_check_headers(web_request_header(req, "Content-Type"),
                                   web_request_header(req, "Content-Encoding"), &res) != 0) {
        web_api_text_error(resp, res.status ? res.status : 415, res.message);
        return;
    }
    struct remote_write_limits lim;
    remote_write_limits_init(&lim);
    lim.max_body_bytes = api->d.rw_max_body_bytes;
    lim.max_decoded_bytes = api->d.rw_max_decoded_bytes;
    lim.max_memory_bytes = api->d.rw_max_memory_bytes;
    lim.max_ahead_ms = api->d.rw_max_ahead_ms;
    struct mp_str body = web_request_body(req);
    struct remote_write_cache *cache = cache_get(api);
    struct mp_err e;
    mp_err_clear(&e);
    int rc = remote_write_decode_and_append_cached(api->d.db, cache, (const uint8_t *)body.ptr,
                                                   body.len, &lim, &res, &e);
    cache_put(api, cache);
    if (api->rw_invalid && res.series_invalid)
        mp_counter_add(api->rw_invalid, (double)res.series_invalid);
    if (rc == 0 && res.status == 204) {
        no_content(resp);
        return;
    }
    web_api_text_error(resp, res.status ? res.status : 500, res.message[0] ? res.message : e.msg);
}

/* ---- remote read ---- */

/* A stream on its way out, with the gauge to count it down when it is done. */
struct read_body {
    struct remote_read_stream *st;
    struct mp_gauge *queries; /* NULL: not counted */
};

static int read_stream(void *ctx, char *buf, size_t cap, size_t *n)
{
    struct read_body *rb = ctx;
    return remote_read_stream_read(rb->st, (uint8_t *)buf, cap, n, NULL);
}

static void read_stream_done(void *ctx)
{
    struct read_body *rb = ctx;
    remote_read_stream_destroy(rb->st);
    if (rb->queries)
        mp_gauge_dec(rb->queries);
    mp_free(rb);
}

/* A request waiting for a remote-read slot gives its place up once its client has left. */
static bool read_client_gone(void *req)
{
    return web_request_client_gone(req);
}

static void h_read(void *ctx, const struct web_request *req, struct web_response *resp)
{
    struct web_api *api = ctx;
    struct mp_labels *ext = api->d.external_labels ? api->d.external_labels(api->d.ctx) : NULL;
    struct mp_str body = web_request_body(req);
    struct remote_read_response rr;
    if (api->rr_queries) /* waiting or running, as Prometheus counts it */
        mp_gauge_inc(api->rr_queries);
    int rc = remote_read_serve_gone(api->rr, api->d.db, ext, (const uint8_t *)body.ptr, body.len,
                                    read_client_gone, (void *)req, &rr, NULL);
    if (ext)
        mp_labels_release(ext);
    bool streamed = false;
    if (rc != 0) {
        web_api_text_error(resp, rr.status, rr.message);
    } else {
        web_response_content_type(resp, rr.content_type);
        if (rr.stream) {
            struct read_body *rb = mp_xmalloc(sizeof *rb);
            *rb = (struct read_body){rr.stream, api->rr_queries};
            rr.stream = NULL;
            web_response_body_stream(resp, read_stream, read_stream_done, rb);
            streamed = true; /* read_stream_done counts it down */
        } else {
            web_response_header(resp, "Content-Encoding", rr.content_encoding);
            web_response_body_take(resp, &rr.body);
        }
    }
    remote_read_response_fini(&rr);
    if (api->rr_queries && !streamed)
        mp_gauge_dec(api->rr_queries);
}

int web_api_register_admin(struct web_api *api, struct web_server *srv, struct mp_err *err)
{
    static const struct web_api_route routes[] = {
        {"POST|PUT", "/api/v1/admin/tsdb/delete_series", h_delete_series},
        {"POST|PUT", "/api/v1/admin/tsdb/clean_tombstones", h_clean_tombstones},
        {"POST|PUT", "/api/v1/admin/tsdb/snapshot", h_snapshot},
        {"POST", "/api/v1/write", h_write},
        {"POST", "/api/v1/read", h_read},
    };
    struct remote_read_options ro;
    remote_read_options_init(&ro);
    ro.sample_limit = api->d.rr_sample_limit;
    ro.concurrent_limit = api->d.rr_concurrent_limit;
    ro.max_bytes_in_frame = api->d.rr_max_bytes_in_frame;
    if (!api->rr && remote_read_server_create(&ro, &api->rr) != 0)
        return mp_err_set(err, MP_ENOMEM, "remote read: out of memory");
    if (api->d.metrics && !api->rr_queries) {
        int rc = mp_metrics_gauge_register(
            api->d.metrics, "prometheus_api_remote_read_queries",
            "The current number of remote read queries being executed or waiting.",
            &api->rr_queries, err);
        if (rc != 0)
            return rc;
    }
    if (api->d.enable_remote_write && api->d.metrics) {
        int rc = mp_metrics_counter_register(
            api->d.metrics, "prometheus_api_remote_write_invalid_labels_samples_total",
            "The total number of remote write samples which contains invalid labels.",
            &api->rw_invalid, err);
        if (rc != 0)
            return rc;
    }
    return web_api_routes(api, srv, routes, sizeof routes / sizeof routes[0], err);
}
