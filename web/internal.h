/* SPDX-License-Identifier: Apache-2.0 */
/* web/internal.h: private to web/ (and tests/web). Server state shared by server.c (MHD
 * glue, dispatch, request/response) and builtin.c (lifecycle, health, /metrics). */
#ifndef WEB_INTERNAL_H
#define WEB_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/matcher.h"
#include "common/metrics.h"
#include "common/str.h"
#include "web/web.h"

#define WEB_MAX_PATH_PARAMS 8

enum {
    WEB_M_GET = 1 << 0,
    WEB_M_HEAD = 1 << 1,
    WEB_M_POST = 1 << 2,
    WEB_M_PUT = 1 << 3,
    WEB_M_DELETE = 1 << 4,
    WEB_M_OPTIONS = 1 << 5,
    WEB_M_PATCH = 1 << 6,
};

struct web_route {
    unsigned methods;
    char *pattern;
    bool is_static;
    web_handler_fn *fn;
    void *ctx;
    struct mp_histogram *duration; /* children of the per-handler vectors, cached */
    struct mp_histogram *size;
};

struct web_listener {
    struct web_server *srv;
    char *addr;
    int fd;
    int family;
    uint16_t port;
    struct MHD_Daemon *daemon;
};

struct web_server {
    char *prefix; /* "/" or "/prom" */
    size_t prefix_len; /* 0 when prefix is "/" */
    char *external_url;
    bool lifecycle;
    size_t max_conn, max_body, pool;
    unsigned timeout_s;
    struct mp_regex *cors; /* NULL: allow any origin ("*") */
    struct mp_metrics_registry *reg;
    struct mp_metrics_vec *m_requests, *m_duration, *m_size, *m_scrapes;
    struct mp_gauge *m_scrapes_in_flight;
    web_reload_fn *reload;
    web_quit_fn *quit;
    void *lctx;
    web_auth_fn *auth;
    void *auth_ctx;
    /* TLS (NULL: plain HTTP): copies of the PEMs and the GnuTLS priority string, alive until
     * destroy because MHD keeps pointers to them for the daemons' lifetime. */
    char *tls_cert, *tls_key, *tls_prio;
    _Atomic bool ready;
    _Atomic bool quitting;
    struct web_route *routes;
    size_t nroutes, rcap;
    struct web_listener *ls;
    size_t nls;
    bool running;
};

/* Registers the built-in routes; called by web_server_create. */
int web_builtin_register(struct web_server *srv, struct mp_err *err);
/* Registers the request metrics families; called by web_server_create. */
int web_metrics_register(struct web_server *srv, struct mp_err *err);

#endif
