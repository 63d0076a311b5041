/* SPDX-License-Identifier: Apache-2.0 */
/* web/federate.c: GET /federate (protocols.md 4.7; Prometheus 2.55 web/federate.go).
 *
 * For every series matched by one of the match[] selectors, the latest sample in
 * [now - lookback_delta, now], skipped when it is a stale marker, in text format 0.0.4:
 * families sorted by metric name, each with "# TYPE <name> untyped", every line with its
 * millisecond timestamp. The external labels the series does not have are appended after its
 * own labels (sorted by name), and instance="" when neither has an instance label. Without
 * match[] the answer is an empty 200. A bad selector is 400 with the parser's message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "common/metrics.h"
#include "common/time.h"
#include "tsdb/tsdb.h"
#include "web/api_internal.h"

#define TEXT_FORMAT_004 "text/plain; version=0.0.4; charset=utf-8"

struct fed_sample {
    struct mp_labels *ls;
    struct mp_str name;
    int64_t t_ms;
    double v;
};

static int cmp_sample(const void *a, const void *b)
{
    const struct fed_sample *x = a, *y = b;
    int c = mp_str_cmp(x->name, y->name);
    if (c)
        return c;
    return mp_labels_compare(x->ls, y->ls);
}

static int escape_value(struct mp_buf *b, struct mp_str v)
{
    int rc = 0;
    size_t run = 0;
    for (size_t i = 0; i < v.len && rc == 0; i++) {
        const char *esc = v.ptr[i] == '\\'   ? "\\\\"
                          : v.ptr[i] == '"'  ? "\\\""
                          : v.ptr[i] == '\n' ? "\\n"
                                             : NULL;
        if (!esc)
            continue;
        rc = mp_buf_append(b, v.ptr + run, i - run);
        if (rc == 0)
            rc = mp_buf_append(b, esc, 2);
        run = i + 1;
    }
    return rc ? rc : mp_buf_append(b, v.ptr + run, v.len - run);
}

static int write_label(struct mp_buf *b, bool *first, struct mp_str name, struct mp_str value)
{
    int rc = mp_buf_append(b, *first ? "{" : ",", 1);
    *first = false;
    if (rc == 0)
        rc = mp_buf_append(b, name.ptr, name.len);
    if (rc == 0)
        rc = mp_buf_append(b, "=\"", 2);
    if (rc == 0)
        rc = escape_value(b, value);
    return rc ? rc : mp_buf_append(b, "\"", 1);
}

static int write_sample(struct mp_buf *b, const struct fed_sample *s, const struct mp_labels *ext)
{
    int rc = mp_buf_append(b, s->name.ptr, s->name.len);
    bool first = true;
    size_t n = mp_labels_count(s->ls);
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct mp_label l = mp_labels_at(s->ls, i);
        if (l.value.len == 0 || mp_str_eq(l.name, MP_STR_LIT(MP_LABEL_METRIC_NAME)))
            continue;
        rc = write_label(b, &first, l.name, l.value);
    }
    /* external labels (sorted), then instance="" unless some instance label exists */
    size_t ne = ext ? mp_labels_count(ext) : 0;
    bool instance = mp_labels_has(s->ls, MP_STR_LIT("instance"));
    bool inst_done = instance;
    for (size_t i = 0; i <= ne && rc == 0; i++) {
        struct mp_label l = i < ne ? mp_labels_at(ext, i) : (struct mp_label){{0}, {0}};
        if (!inst_done && (i == ne || mp_str_cmp(l.name, MP_STR_LIT("instance")) >= 0)) {
            inst_done = true;
            if (i == ne || !mp_str_eq(l.name, MP_STR_LIT("instance"))) {
                rc = write_label(b, &first, MP_STR_LIT("instance"), MP_STR_LIT(""));
                if (rc)
                    break;
            }
        }
        if (i == ne || mp_labels_has(s->ls, l.name))
            continue;
        rc = write_label(b, &first, l.name, l.value);
    }
    if (rc == 0 && !first)
        rc = mp_buf_append(b, "}", 1);
    char num[48];
    int len = mp_metrics_format_value(s->v, num, sizeof num);
    if (rc == 0)
        rc = mp_buf_appendf(b, " %.*s %lld\n", len, num, (long long)s->t_ms);
    return rc;
}

static void h_federate(void *ctx, const struct web_request *req, struct web_response *resp)
{
    struct web_api *api = ctx;
    if (!web_server_is_ready(api->srv) || !api->d.db) { /* Prometheus wraps it in readyf */
        web_response_status(resp, 503);
        WEB_BODY_LIT(resp, "Service Unavailable");
        return;
    }
    struct mp_str one;
    if (web_request_params(req, "match[]", &one, 1) == 0) {
        web_response_content_type(resp, TEXT_FORMAT_004);
        return;
    }
    struct web_api_selectors sel;
    struct mp_err e;
    mp_err_clear(&e);
    if (web_api_selectors_parse(api, req, false, &sel, &e) != 0) {
        web_api_selectors_fini(&sel);
        web_api_text_error(resp, 400, e.msg);
        return;
    }
    int64_t now = mp_now_ms();
    int64_t mint = now - api->d.lookback_delta_ms;
    struct tsdb_querier *q = NULL;
    struct fed_sample *v = NULL;
    size_t n = 0, cap = 0;
    int rc = tsdb_querier_open(api->d.db, mint, now, &q, &e);
    for (size_t i = 0; rc == 0 && i < sel.n; i++) {
        struct tsdb_series_set *ss = NULL;
        rc = tsdb_querier_select(q, sel.sets[i], sel.nset[i], &ss, &e);
        while (rc == 0 && (rc = tsdb_series_set_next(ss, &e)) == 0) {
            struct tsdb_sample_iter it;
            tsdb_series_set_iter(ss, &it);
            int64_t t, last_t = 0;
            double x, last_v = 0;
            bool have = false;
            while (tsdb_sample_iter_next(&it, &t, &x) == 0) {
                last_t = t;
                last_v = x;
                have = true;
            }
            if (!have || tsdb_is_stale(last_v))
                continue;
            const struct mp_labels *ls = tsdb_series_set_labels(ss);
            struct mp_str name = mp_labels_metric_name(ls);
            if (name.len == 0)
                continue; /* Prometheus: "Ignoring nameless metric during federation" */
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                v = mp_xrealloc(v, cap * sizeof *v);
            }
            v[n].ls = mp_labels_acquire(ls);
            v[n].name = mp_labels_metric_name(v[n].ls);
            v[n].t_ms = last_t;
            v[n].v = last_v;
            n++;
        }
        if (rc == MP_EEOF)
            rc = 0;
        tsdb_series_set_free(ss);
    }
    tsdb_querier_close(q);
    web_api_selectors_fini(&sel);
    struct mp_buf b;
    mp_buf_init(&b, 0);
    if (rc == 0 && n) {
        qsort(v, n, sizeof *v, cmp_sample);
        struct mp_labels *ext = api->d.external_labels ? api->d.external_labels(api->d.ctx) : NULL;
        for (size_t i = 0; i < n && rc == 0; i++) {
            /* the same series matched by two match[] sets is written once */
            if (i > 0 && mp_labels_equal(v[i].ls, v[i - 1].ls))
                continue;
            if (i == 0 || !mp_str_eq(v[i].name, v[i - 1].name))
                rc = mp_buf_appendf(&b, "# TYPE %.*s untyped\n", (int)v[i].name.len, v[i].name.ptr);
            if (rc == 0)
                rc = write_sample(&b, &v[i], ext);
        }
        mp_labels_release(ext);
    }
    for (size_t i = 0; i < n; i++)
        mp_labels_release(v[i].ls);
    mp_free(v);
    if (rc != 0) {
        mp_buf_fini(&b);
        web_api_text_error(resp, 500, e.msg[0] ? e.msg : mp_strerror(rc));
        return;
    }
    web_response_content_type(resp, TEXT_FORMAT_004);
    web_response_body_take(resp, &b);
    mp_buf_fini(&b);
}

int web_api_register_federate(struct web_api *api, struct web_server *srv, struct mp_err *err)
{
    return web_server_route(srv, "GET", "/federate", h_federate, api, err);
}
