/* SPDX-License-Identifier: Apache-2.0 */
/* web/web.h: the HTTP server (libmicrohttpd hidden behind this header), its built-in
 * routes and the route-registration API other modules use for /api/v1/... .
 *
 * Built in (paths below the route prefix, protocols.md 4.8): /-/healthy, /-/ready,
 * /-/reload, /-/quit, /metrics (the options' registry in text format 0.0.4). Unknown paths
 * get 404 "404 page not found\n", a known path with another method 405. Every /api/ path
 * answers OPTIONS with 204 and carries the CORS headers when the request has an Origin
 * (4.1); every /api/v1/ path except /api/v1/status/walreplay answers 503 "Service Unavailable" until
 * web_server_set_ready(srv, true). Responses are gzip/deflate-compressed when the client asks
 * (when built with zlib). Every routed request is counted in the registry as
 * prometheus_http_requests_total{code,handler}, prometheus_http_request_duration_seconds
 * and prometheus_http_response_size_bytes{handler}, handler = the route pattern.
 *
 * Threading: connections are served by libmicrohttpd's internal threads, either one thread
 * per connection (thread_pool_size 0, the default: a slow query never holds up a scrape of
 * /metrics) or a pool of epoll threads. Handlers therefore run concurrently with each other
 * and must be thread-safe; a handler owns its request and response for the duration of the
 * call. Routes are registered before web_server_start and the table is immutable while the
 * server runs. web_server_set_ready may be called from any thread. The reload and quit
 * callbacks run on a connection thread; reload may run concurrently with itself when two
 * clients ask at once, so main serialises it (Prometheus does so through a channel).
 *
 * Lifecycle: create (validates options, nothing bound) -> route* -> start (binds every listen
 * address) -> stop (closes listeners, waits for in-flight handlers) -> destroy. */
#ifndef WEB_WEB_H
#define WEB_WEB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/metrics.h"
#include "common/str.h"

struct web_server;   /* opaque */
struct web_request;  /* opaque, borrowed by a handler for the duration of the call */
struct web_response; /* opaque, filled by a handler */

/* Lifecycle callbacks (main wires them). reload returns 0 or a negative status with err
 * set; its message becomes the 500 body "failed to reload config: <msg>". quit is called at
 * most once. Both may be NULL (reload then always succeeds, quit does nothing). */
typedef int web_reload_fn(void *ctx, struct mp_err *err);
typedef void web_quit_fn(void *ctx);

/* Request gate (--web.config.file, protocols.md 4.11), called for every request before
 * routing, on a connection thread (so concurrently with itself). authorization is the
 * request's Authorization header or NULL. The hook may add headers to resp with
 * web_response_header (they are sent whatever the outcome). Returns 0 to let the request
 * through, 401 (the server answers "Unauthorized\n" with WWW-Authenticate: Basic) or any
 * other non-zero value (answered 500 "Internal Server Error\n"). */
struct web_response;
typedef int web_auth_fn(void *ctx, const char *authorization, struct web_response *resp);

struct web_options {
    const char *const *listen; /* "host:port": "0.0.0.0:9090", "[::]:9090", ":9090" (all
                                  interfaces, dual stack), "localhost:0" (any port) */
    size_t nlisten;            /* default: one address, "0.0.0.0:9090" */
    const char *external_url;  /* informational; its path is the default route prefix */
    const char *route_prefix;  /* NULL/"": path of external_url; normalised "/" + trimmed */
    bool enable_lifecycle;     /* --web.enable-lifecycle */
    size_t max_connections;    /* per listen address, as Prometheus; default 512 */
    int64_t read_timeout_ms;   /* idle connection timeout, default 5m; rounded up to 1 s */
    size_t max_body_bytes;     /* request bodies above this get 413; default 32 MiB */
    size_t thread_pool_size;   /* 0 = thread per connection (default), else epoll pool */
    const char *cors_origin;   /* --web.cors.origin anchored regex; NULL = ".*" */
    struct mp_metrics_registry *registry; /* /metrics and request metrics; NULL = default */
    web_reload_fn *reload;
    web_quit_fn *quit;
    void *lifecycle_ctx;
    web_auth_fn *auth;         /* NULL: no gate */
    void *auth_ctx;
    /* TLS (tls_server_config, 4.11): PEM text of the certificate (chain) and private key,
     * both or neither; NULL = plain HTTP. Copied at create and handed to every daemon at
     * start: libmicrohttpd cannot swap certificates while running, so a changed file needs a
     * restart. tls_priorities: GnuTLS priority string, NULL = "NORMAL:-VERS-ALL:+VERS-TLS1.3:
     * +VERS-TLS1.2" (TLS 1.2 minimum). A bad cert/key makes web_server_start fail. */
    const char *tls_cert_pem;
    const char *tls_key_pem;
    const char *tls_priorities;
};

void web_options_init(struct web_options *opt);

/* Validates and copies the options (strings are copied; registry and callbacks are borrowed
 * and must outlive the server). Registers the request metrics in the registry. Errors:
 * MP_EINVAL (bad listen address, bad cors regex), with a message. */
MP_NODISCARD int web_server_create(const struct web_options *opt, struct web_server **out,
                                   struct mp_err *err);
/* Binds every listen address and starts serving. MP_EIO ("listen tcp 0.0.0.0:9090: bind:
 * Address already in use") when a socket cannot be bound; nothing stays bound then. */
MP_NODISCARD int web_server_start(struct web_server *srv, struct mp_err *err);
/* Stops accepting, waits for running handlers, closes sockets. Idempotent. */
void web_server_stop(struct web_server *srv);
void web_server_destroy(struct web_server *srv); /* stops first; NULL is a no-op */
/* Port actually bound by the i-th listen address after start (for ":0"); 0 if none. */
uint16_t web_server_port(const struct web_server *srv, size_t i);
/* Prometheus's route prefix rule: route_prefix, or else the path of external_url, as
 * "/" + the path trimmed of slashes ("/", "/prom"). Either may be NULL. Free with mp_free. */
char *web_route_prefix_normalise(const char *route_prefix, const char *external_url);
/* The normalised route prefix ("/" or "/prom"); borrowed until destroy. */
const char *web_server_route_prefix(const struct web_server *srv);
/* /-/ready and the /api/v1 readiness gate. Starts not ready. */
void web_server_set_ready(struct web_server *srv, bool ready);
bool web_server_is_ready(const struct web_server *srv);

/* Route registration. methods: '|'-separated list of GET, HEAD, POST, PUT, DELETE, OPTIONS,
 * PATCH ("GET|POST"). pattern: path below the route prefix, starting with '/'. A segment
 * ":name" matches one non-empty segment ("/api/v1/label/:name/values"); a last segment
 * "*name" matches the rest of the path, possibly empty (httprouter catch-all, e.g. a
 * "/debug/" prefix followed by "*path"). Static patterns win over patterned ones; otherwise
 * the first registered match wins. The pattern is also the `handler` metric label.
 * Only before web_server_start. Errors: MP_EINVAL (bad method/pattern, server running),
 * MP_EEXISTS (same method and pattern twice). */
typedef void web_handler_fn(void *ctx, const struct web_request *req, struct web_response *resp);
MP_NODISCARD int web_server_route(struct web_server *srv, const char *methods, const char *pattern,
                                  web_handler_fn *fn, void *ctx, struct mp_err *err);

/* ---- request accessors (all borrow from the request; valid during the handler) ---- */
const char *web_request_method(const struct web_request *req);    /* "GET" */
struct mp_str web_request_path(const struct web_request *req);    /* below the prefix */
const char *web_request_pattern(const struct web_request *req);   /* the matched route */
/* Value of ":name" or "*name" from the pattern; empty slice when absent. */
struct mp_str web_request_path_param(const struct web_request *req, const char *name);
/* Header value (case-insensitive name) or NULL. */
const char *web_request_header(const struct web_request *req, const char *name);
/* Parameters merged as Prometheus (Go r.Form): for POST/PUT/PATCH with an
 * application/x-www-form-urlencoded body, body values first, then the URL query. Single
 * value: the first one (so the body wins); false when absent. */
bool web_request_param(const struct web_request *req, const char *name, struct mp_str *out);
/* All values in order; writes up to cap into out and returns the total count. */
size_t web_request_params(const struct web_request *req, const char *name, struct mp_str *out,
                          size_t cap);
/* URL query only (the /api/v1/targets and /api/v1/rules exception of 4.1). */
bool web_request_query_param(const struct web_request *req, const char *name,
                             struct mp_str *out);
/* Raw body (at most max_body_bytes; larger requests never reach a handler). */
struct mp_str web_request_body(const struct web_request *req);
/* True once the client has closed its side of the connection or it broke (a long handler
 * polls this to stop work nobody will read; cheap: one non-blocking poll(2)). A client that
 * only half-closes after sending its request also counts as gone, as in Go's net/http. */
bool web_request_client_gone(const struct web_request *req);

/* ---- response ---- */
/* Defaults: 200, "text/plain; charset=utf-8", empty body. */
void web_response_status(struct web_response *resp, int status);
void web_response_content_type(struct web_response *resp, const char *content_type); /* copied */
void web_response_header(struct web_response *resp, const char *name, const char *value);
/* Body; each replaces the previous one. take: ownership of b's data moves to the response and
 * b is left empty. static: s must outlive the response (string literals). copy: duplicates. */
void web_response_body_take(struct web_response *resp, struct mp_buf *b);
void web_response_body_static(struct web_response *resp, const char *s, size_t len);
void web_response_body_copy(struct web_response *resp, const void *p, size_t len);

/* Helper for bodies of constant strings. */
#define WEB_BODY_LIT(resp, lit) web_response_body_static((resp), (lit), sizeof(lit) - 1)

/* ---- the dashboard (ui.c) ---- */
/* Registers the dashboard (issue 6): GET / (mesh overview), /graph (expression browser),
 * /targets, /tsdb-status and /namespaces/... answer the single-page application's index.html
 * (its <base href> set to the route prefix); /static/<path> serves the embedded assets (app.js,
 * app.css, uPlot). The page talks only to the public HTTP API. Before web_server_start.
 * MP_EINVAL / MP_EEXISTS as web_server_route. */
MP_NODISCARD int web_ui_register(struct web_server *srv, struct mp_err *err);

/* ---- Prometheus HTTP API v1 (web/api*.c, web/federate.c) -------------------------------------
 *
 * web_api_register adds the /api/v1/... routes of Prometheus 2.55 (protocols.md 4.1-4.5, 4.9,
 * 5.4) and /federate (4.7) to a server that is not running yet. Responses are the JSON
 * envelope {"status","data","errorType","error","warnings","infos"} with errorType -> HTTP
 * status bad_data 400, execution 422, canceled 499, timeout 503, internal 500, not_found 404,
 * unavailable 500; values and timestamps are written as Prometheus writes them (4.4).
 *
 * Ownership: deps is copied (strings duplicated); the db, engine, scrape manager and the
 * callbacks' ctx are borrowed and must outlive the server's handlers (destroy the server,
 * then the api). Thread safety: handlers run concurrently; the api state is immutable after
 * registration except for a mutex-guarded pool of remote-write decode caches. */
struct tsdb;
struct query_engine;
struct scrape_manager;
struct scrape_target_info;
struct scrape_metadata_info;
struct mp_labels;

/* /api/v1/status/runtimeinfo values that change while the server runs. */
struct web_api_runtime {
    bool reload_config_success;
    int64_t last_config_time_ms; /* 0: never loaded */
    int64_t corruption_count;
};

struct web_api_deps {
    struct tsdb *db;             /* NULL until web_api_set_storage (main opens the storage
                                  * after the server has started, so that the API can answer
                                  * 503 during WAL replay) */
    struct query_engine *engine; /* NULL: query endpoints answer 422 execution "no engine" */
    bool experimental_functions; /* parse options of format_query / selectors */
    /* Scrape manager hook: NULL manager (or functions) = no targets and no metadata, the
     * empty shapes. main sets targets = scrape_manager_targets, metadata =
     * scrape_manager_metadata (function pointers so that web/ needs no link to scraper/). */
    struct scrape_manager *scrape;
    void (*targets)(struct scrape_manager *m, bool active, bool dropped,
                    void (*fn)(void *ctx, const struct scrape_target_info *t), void *ctx);
    void (*metadata)(struct scrape_manager *m,
                     void (*fn)(void *ctx, const struct scrape_metadata_info *md), void *ctx);
    /* Callbacks into main (ctx below); each may be NULL. config_yaml appends the YAML of the
     * configuration in force (/status/config). flags calls fn for each flag (name without
     * dashes, value). runtime fills the changing runtimeinfo fields. external_labels returns a
     * new reference to the current external labels (NULL: none) for /federate. */
    void *ctx;
    int (*config_yaml)(void *ctx, struct mp_buf *out, struct mp_err *err);
    void (*flags)(void *ctx, void (*fn)(void *fctx, const char *name, const char *value),
                  void *fctx);
    void (*runtime)(void *ctx, struct web_api_runtime *out);
    struct mp_labels *(*external_labels)(void *ctx);
    /* /status/buildinfo (NULL fields print as ""); /status/runtimeinfo constants */
    const char *version, *revision, *branch, *build_user, *build_date, *go_version;
    const char *storage_retention; /* "15d", "1GiB", "15d or 1GiB" */
    int64_t start_time_ms;         /* 0: the time of registration */
    int64_t lookback_delta_ms;     /* /federate; default 5 min */
    bool enable_admin;             /* --web.enable-admin-api */
    bool enable_remote_write;      /* --web.enable-remote-write-receiver */
    size_t rw_max_body_bytes;      /* remote write limits (remote.h); 0 = remote's default */
    size_t rw_max_decoded_bytes;
    size_t rw_max_memory_bytes;
    int64_t rw_max_ahead_ms;       /* default REMOTE_WRITE_MAX_AHEAD_MS; < 0 = no limit */
    size_t rw_cache_keep_bytes;    /* per cached decoder; default 8 MiB; 0 after init = none */
    size_t rw_caches;              /* decoders kept for reuse; default 4 */
    /* With enable_remote_write: prometheus_api_remote_write_invalid_labels_samples_total is
     * registered here (NULL: not counted). */
    struct mp_metrics_registry *metrics;
};
void web_api_deps_init(struct web_api_deps *d);

struct web_api; /* opaque: what the handlers share */

/* Registers the routes on srv (before web_server_start). MP_EINVAL (server running, bad
 * deps), MP_EEXISTS (a route taken). *out is freed with web_api_destroy after the server has
 * been destroyed or stopped. */
MP_NODISCARD int web_api_register(struct web_server *srv, const struct web_api_deps *deps,
                                  struct web_api **out, struct mp_err *err);
/* Hands the opened storage (and the engine, unless NULL) to the handlers. Call before
 * web_server_set_ready(srv, true): every handler that reads them runs behind the readiness
 * gate (/api/v1/... in the server, /federate in its handler), whose atomic flag publishes
 * them. */
void web_api_set_storage(struct web_api *api, struct tsdb *db, struct query_engine *engine);
/* The scrape manager (created once the storage is open) for the targets and metadata
 * endpoints; the same publication rule as web_api_set_storage. */
void web_api_set_scrape(struct web_api *api, struct scrape_manager *m);
void web_api_destroy(struct web_api *api); /* NULL is a no-op */

#endif
