/* SPDX-License-Identifier: Apache-2.0 */
/* web/builtin.c: the routes every server has (protocols.md 4.8) and the request metrics.
 *
 * Bodies and codes are those of Prometheus 2.55 web/web.go: GET on /-/reload and /-/quit is
 * 405 "Only POST or PUT requests allowed" whatever the lifecycle flag; POST/PUT are 403
 * "Lifecycle API is not enabled." without the flag. A failed reload is Go's http.Error, so
 * its body ends in a newline. /metrics is what promhttp.Handler() serves, including its own
 * promhttp_metric_handler_* metrics. */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "web/internal.h"

#define TEXT_FORMAT_004 "text/plain; version=0.0.4; charset=utf-8"

static void h_healthy(void *ctx, const struct web_request *req, struct web_response *resp)
{
    WEB_BODY_LIT(resp, "Prometheus Server is Healthy.\n");
}

static void h_ready(void *ctx, const struct web_request *req, struct web_response *resp)
{
    struct web_server *srv = ctx;
    if (web_server_is_ready(srv)) {
        WEB_BODY_LIT(resp, "Prometheus Server is Ready.\n");
        return;
    }
    web_response_status(resp, 503);
    WEB_BODY_LIT(resp, "Service Unavailable");
}

static void h_lifecycle_get(void *ctx, const struct web_request *req, struct web_response *resp)
{
    web_response_status(resp, 405);
    WEB_BODY_LIT(resp, "Only POST or PUT requests allowed");
}

static bool lifecycle_allowed(const struct web_server *srv, struct web_response *resp)
{
    if (srv->lifecycle)
        return true;
    web_response_status(resp, 403);
    WEB_BODY_LIT(resp, "Lifecycle API is not enabled.");
    return false;
}

static void h_reload(void *ctx, const struct web_request *req, struct web_response *resp)
{
    struct web_server *srv = ctx;
    if (!lifecycle_allowed(srv, resp))
        return;
    struct mp_err err = {0};
    int rc = srv->reload ? srv->reload(srv->lctx, &err) : 0;
    if (rc == 0) {
        web_response_content_type(resp, ""); /* Go writes no Content-Type for no body */
        return;
    }
    char body[MP_ERR_MSG_MAX + 64];
    int n = snprintf(body, sizeof body, "failed to reload config: %s\n",
                     err.msg[0] ? err.msg : mp_strerror(rc));
    web_response_status(resp, 500);
    web_response_body_copy(resp, body, n < (int)sizeof body ? (size_t)n : sizeof body - 1);
}

static void h_quit(void *ctx, const struct web_request *req, struct web_response *resp)
{
    struct web_server *srv = ctx;
    if (!lifecycle_allowed(srv, resp))
        return;
    /* acq_rel: the one caller that flips the flag runs the callback, once */
    if (atomic_exchange_explicit(&srv->quitting, true, memory_order_acq_rel)) {
        WEB_BODY_LIT(resp, "Termination already in progress.");
        return;
    }
    WEB_BODY_LIT(resp, "Requesting termination... Goodbye!");
    if (srv->quit)
        srv->quit(srv->lctx);
}

static void h_metrics(void *ctx, const struct web_request *req, struct web_response *resp)
{
    struct web_server *srv = ctx;
    mp_gauge_inc(srv->m_scrapes_in_flight);
    struct mp_buf b;
    mp_buf_init(&b, 256u << 20);
    int rc = mp_metrics_render(srv->reg, &b);
    mp_gauge_dec(srv->m_scrapes_in_flight);
    const char *code = rc ? "500" : "200";
    mp_counter_inc(mp_metrics_vec_counter(srv->m_scrapes, (const char *[]){code}));
    if (rc) {
        mp_buf_fini(&b);
        web_response_status(resp, 500);
        WEB_BODY_LIT(resp, "An error has occurred while serving metrics.\n");
        MP_LOG_ERROR("error gathering metrics", MP_KV_STR("err", mp_strerror(rc)));
        return;
    }
    web_response_content_type(resp, TEXT_FORMAT_004);
    web_response_body_take(resp, &b);
}

int web_builtin_register(struct web_server *srv, struct mp_err *err)
{
    static const struct {
        const char *methods, *pattern;
        web_handler_fn *fn;
    } routes[] = {
        {"GET|HEAD", "/-/healthy", h_healthy},
        {"GET|HEAD", "/-/ready", h_ready},
        {"POST|PUT", "/-/reload", h_reload},
        {"GET", "/-/reload", h_lifecycle_get},
        {"POST|PUT", "/-/quit", h_quit},
        {"GET", "/-/quit", h_lifecycle_get},
        {"GET", "/metrics", h_metrics},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        int rc = web_server_route(srv, routes[i].methods, routes[i].pattern, routes[i].fn, srv,
                                  err);
        if (rc)
            return rc;
    }
    return 0;
}

int web_metrics_register(struct web_server *srv, struct mp_err *err)
{
    /* web/web.go newMetrics (2.55) */
    static const double dur[] = {.1, .2, .4, 1, 3, 8, 20, 60, 120};
    static const double size[] = {100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
    static const char *const code_handler[] = {"code", "handler"};
    static const char *const handler[] = {"handler"};
    static const char *const code[] = {"code"};
    int rc = mp_metrics_vec_register(srv->reg, MP_METRIC_COUNTER, "prometheus_http_requests_total",
                                     "Counter of HTTP requests.", code_handler, 2, NULL, 0,
                                     &srv->m_requests, err);
    if (!rc)
        rc = mp_metrics_vec_register(srv->reg, MP_METRIC_HISTOGRAM,
                                     "prometheus_http_request_duration_seconds",
                                     "Histogram of latencies for HTTP requests.", handler, 1, dur,
                                     sizeof dur / sizeof dur[0], &srv->m_duration, err);
    if (!rc)
        rc = mp_metrics_vec_register(srv->reg, MP_METRIC_HISTOGRAM,
                                     "prometheus_http_response_size_bytes",
                                     "Histogram of response size for HTTP requests.", handler, 1,
                                     size, sizeof size / sizeof size[0], &srv->m_size, err);
    if (!rc)
        rc = mp_metrics_vec_register(srv->reg, MP_METRIC_COUNTER,
                                     "promhttp_metric_handler_requests_total",
                                     "Total number of scrapes by HTTP status code.", code, 1,
                                     NULL, 0, &srv->m_scrapes, err);
    /* promhttp pre-creates these codes so the series exist from the first scrape */
    static const char *const codes[] = {"200", "500", "503"};
    for (size_t i = 0; !rc && i < 3; i++)
        (void)mp_metrics_vec_counter(srv->m_scrapes, &codes[i]);
    if (!rc)
        rc = mp_metrics_gauge_register(srv->reg, "promhttp_metric_handler_requests_in_flight",
                                       "Current number of scrapes being served.",
                                       &srv->m_scrapes_in_flight, err);
    return rc;
}
