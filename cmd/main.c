/* SPDX-License-Identifier: Apache-2.0 */
/* cmd/main.c: the meshprom server. Parses Prometheus's flags, loads prometheus.yml, starts
 * the HTTP server and waits for signals. The only file that knows every module: it wires them
 * together and owns the process's life cycle.
 *
 *   start -> flags -> logging -> config (fatal if invalid) -> query engine -> web + API
 *   routes (503 until ready) -> storage (WAL replay) -> API gets the storage -> scrape
 *   manager + discovery on the config -> ready -> signal loop
 *   SIGHUP or POST /-/reload: load a new config; on success apply it to the scrape manager
 *   and discovery and swap it in, else keep the old one
 *   SIGTERM, SIGINT or POST /-/quit: stop the web server, free everything, exit 0
 *
 * Signals are blocked in every thread and taken synchronously by the main thread with
 * sigwaitinfo, so no work happens in a signal handler. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/flags.h"
#include "common/alloc.h"
#include "common/err.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/str.h"
#include "common/time.h"
#include "common/labels.h"
#include "configs/config.h"
#include "query/query.h"
#include "scraper/scraper.h"
#include "tsdb/tsdb.h"
#include "web/web.h"

#ifndef MP_VERSION
#define MP_VERSION "0.0.0"
#endif
#ifndef MP_REVISION
#define MP_REVISION "unknown"
#endif
#ifndef MP_BRANCH
#define MP_BRANCH "unknown"
#endif

/* The configuration in force. Readers take the mutex only to acquire the pointer; reload
 * swaps it, after the scrape manager and discovery (which borrow it) have moved to the new one,
 * and frees the old config. */
struct server {
    const struct cmd_flags *flags;
    struct cmd_flags_state *fstate; /* for /api/v1/status/flags */
    struct tsdb *db;
    struct query_engine *engine;
    struct scrape_manager *scrape;  /* after the storage is open */
    struct scrape_discovery *disc;  /* feeds scrape */
    pthread_mutex_t cfg_mu;
    struct cfg_config *cfg;
    struct mp_gauge *reload_ok;
    struct mp_gauge *reload_ts;
    struct mp_counter *reloads_failed;
};

static void warn_feature(void *ctx, const char *msg, const char *option)
{
    (void)ctx;
    MP_LOG_WARN(msg, MP_KV_STR("option", option));
}

/* Hands a config to the scrape manager and discovery, once they run. */
static int apply_config(struct server *s, const struct cfg_config *cfg, struct mp_err *err)
{
    int rc = 0;
    if (s->scrape)
        rc = scrape_manager_apply_config(s->scrape, cfg, err);
    if (s->disc) {
        struct mp_err derr;
        mp_err_clear(&derr);
        int drc = scrape_discovery_apply(s->disc, cfg, &derr);
        if (drc != 0 && rc == 0) {
            rc = drc;
            if (err)
                *err = derr;
        }
    }
    return rc;
}

/* Loads and validates the config file, and swaps it in when valid. Both SIGHUP and
 * /-/reload come here; the mutex serialises them. */
static int reload_config(struct server *s, struct mp_err *err)
{
    const char *path = s->flags->config_file;
    MP_LOG_INFO("Loading configuration file", MP_KV_STR("filename", path));
    int64_t start_ns = mp_mono_ns();
    struct cfg_config *next = NULL;
    int rc = cfg_config_load_file(path, &next, err);
    pthread_mutex_lock(&s->cfg_mu);
    if (rc == 0) {
        /* The scrape manager and discovery borrow the config until their next apply; both
         * switch to the new one even when a discovery provider fails to start (it is logged
         * and the reload reported as failed, as Prometheus does). */
        rc = apply_config(s, next, err);
        struct cfg_config *old = s->cfg;
        s->cfg = next;
        cfg_config_destroy(old);
    }
    pthread_mutex_unlock(&s->cfg_mu);
    if (rc != 0) {
        mp_gauge_set(s->reload_ok, 0);
        mp_counter_inc(s->reloads_failed);
        return rc;
    }
    mp_gauge_set(s->reload_ok, 1);
    mp_gauge_set(s->reload_ts, (double)mp_now_ms() / 1000.0);
    MP_LOG_INFO("Completed loading of configuration file", MP_KV_STR("filename", path),
                MP_KV_F64("totalDuration_s", (double)(mp_mono_ns() - start_ns) / 1e9),
                MP_KV_U64("scrape_configs", next->nscrape_configs));
    return 0;
}

static int on_http_reload(void *ctx, struct mp_err *err)
{
    struct server *s = ctx;
    int rc = reload_config(s, err);
    if (rc != 0)
        MP_LOG_ERROR("Error reloading config", MP_KV_STR("err", err->msg));
    return rc;
}

static void on_http_quit(void *ctx)
{
    (void)ctx;
    /* The main thread waits in sigwaitinfo; a signal is the one wake-up it listens to. */
    kill(getpid(), SIGTERM);
}

/* --web.config.file: the gate's headers go onto the response, its status decides. */
static void web_auth_add_header(void *ctx, const char *name, const char *value)
{
    web_response_header(ctx, name, value);
}

static int web_auth_hook(void *ctx, const char *authorization, struct web_response *resp)
{
    return cfg_web_gate_check(ctx, authorization, web_auth_add_header, resp);
}

static void print_version(void)
{
    char host[HOST_NAME_MAX + 1] = "unknown";
    gethostname(host, sizeof host);
    printf("meshprom, version %s (branch: %s, revision: %s)\n"
           "  build date:       %s %s\n"
           "  compiler:         %s\n"
           "  platform:         linux\n",
           MP_VERSION, MP_BRANCH, MP_REVISION, __DATE__, __TIME__,
#if defined(__clang__)
           "clang " __clang_version__
#elif defined(__GNUC__)
           "gcc " __VERSION__
#else
           "unknown"
#endif
    );
}

static int register_metrics(struct server *s, struct mp_err *err)
{
    struct mp_metrics_registry *r = mp_metrics_default();
    int rc = mp_metrics_process_register(r, err);
    if (rc == 0)
        rc = mp_metrics_gauge_register(r, "prometheus_config_last_reload_successful",
                                       "Whether the last configuration reload attempt was "
                                       "successful.",
                                       &s->reload_ok, err);
    if (rc == 0)
        rc = mp_metrics_gauge_register(r, "prometheus_config_last_reload_success_timestamp_seconds",
                                       "Timestamp of the last successful configuration reload.",
                                       &s->reload_ts, err);
    if (rc == 0)
        rc = mp_metrics_counter_register(r, "meshprom_config_reloads_failed_total",
                                         "Configuration reloads that were rejected.",
                                         &s->reloads_failed, err);
    struct mp_metrics_vec *build = NULL;
    static const char *const names[] = {"branch", "goversion", "revision", "tags", "version"};
    if (rc == 0)
        rc = mp_metrics_vec_register(r, MP_METRIC_GAUGE, "prometheus_build_info",
                                     "A metric with a constant '1' value labeled by version, "
                                     "revision, branch, goversion from which prometheus was "
                                     "built, and the goos and goarch for the build.",
                                     names, 5, NULL, 0, &build, err);
    if (rc == 0) {
        const char *values[] = {MP_BRANCH, "none (C)", MP_REVISION, "meshprom", MP_VERSION};
        struct mp_gauge *g = mp_metrics_vec_gauge(build, values);
        if (g)
            mp_gauge_set(g, 1);
    }
    return rc;
}

/* The storage engine with the --storage.tsdb.* flags. */
static int open_storage(struct server *s, struct mp_err *err)
{
    const struct cmd_flags *f = s->flags;
    struct tsdb_options o;
    tsdb_options_init(&o);
    o.dir = f->tsdb_path;
    o.retention_ms = f->tsdb_retention_time_ms;
    o.retention_bytes = (uint64_t)f->tsdb_retention_size_bytes;
    o.min_block_ms = f->tsdb_min_block_duration_ms;
    o.max_block_ms = f->tsdb_max_block_duration_ms;
    o.no_lockfile = f->tsdb_no_lockfile;
    o.metrics = mp_metrics_default();
    if (!f->tsdb_wal_compression)
        o.wal_compression = TSDB_WAL_COMPRESS_NONE;
    else if (f->tsdb_wal_compression_type && strcmp(f->tsdb_wal_compression_type, "zstd") == 0)
        o.wal_compression = TSDB_WAL_COMPRESS_ZSTD;
    else if (f->tsdb_wal_compression_type &&
             strcmp(f->tsdb_wal_compression_type, "snappy") != 0)
        return mp_err_set(err, MP_EINVAL, "unknown WAL compression type \"%s\"",
                          f->tsdb_wal_compression_type);
    return tsdb_open(&o, &s->db, err);
}

/* Prometheus creates the data directory at start-up; so do we, with parents. */
static int make_dirs(const char *path, struct mp_err *err)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf)
        return mp_err_set(err, MP_EINVAL, "invalid storage path %s", path);
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return mp_err_set(err, MP_EIO, "create %s: %s", buf, strerror(errno));
        buf[i] = c;
    }
    return 0;
}

/* ---- what the HTTP API asks of main (web_api_deps callbacks) ---- */

static int api_config_yaml(void *ctx, struct mp_buf *out, struct mp_err *err)
{
    struct server *s = ctx;
    pthread_mutex_lock(&s->cfg_mu);
    int rc = s->cfg ? cfg_config_to_yaml(s->cfg, out) : 0;
    pthread_mutex_unlock(&s->cfg_mu);
    return rc ? mp_err_set(err, rc, "couldn't marshal configuration: %s", mp_strerror(rc)) : 0;
}

static void api_flags(void *ctx, void (*fn)(void *fctx, const char *name, const char *value),
                      void *fctx)
{
    struct server *s = ctx;
    cmd_flags_each(s->fstate, fn, fctx);
}

static void api_runtime(void *ctx, struct web_api_runtime *out)
{
    struct server *s = ctx;
    out->reload_config_success = mp_gauge_get(s->reload_ok) == 1;
    /* Prometheus: time.Unix(seconds, 0) of the reload gauge */
    out->last_config_time_ms = (int64_t)mp_gauge_get(s->reload_ts) * 1000;
    out->corruption_count = 0;
}

static struct mp_labels *api_external_labels(void *ctx)
{
    struct server *s = ctx;
    struct mp_labels *ls = NULL;
    pthread_mutex_lock(&s->cfg_mu);
    size_t n = s->cfg ? s->cfg->global.nexternal_labels : 0;
    struct mp_label *l = n ? mp_xmalloc(n * sizeof *l) : NULL;
    for (size_t i = 0; i < n; i++)
        l[i] = (struct mp_label){mp_str_c(s->cfg->global.external_labels[i].name),
                                 mp_str_c(s->cfg->global.external_labels[i].value)};
    if (n && mp_labels_create(l, n, &ls, NULL) != 0)
        ls = NULL;
    pthread_mutex_unlock(&s->cfg_mu);
    mp_free(l);
    return ls;
}

/* Prometheus's storageRetention text: "15d", "512MiB", "15d or 512MiB". */
static void retention_text(const struct cmd_flags *f, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    if (f->tsdb_retention_time_ms > 0)
        n = (size_t)mp_duration_format(f->tsdb_retention_time_ms, buf, cap);
    if (f->tsdb_retention_size_bytes > 0 && n < cap) {
        static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
        int64_t v = f->tsdb_retention_size_bytes;
        size_t u = 0;
        while (u + 1 < sizeof units / sizeof units[0] && v % 1024 == 0) {
            v /= 1024;
            u++;
        }
        snprintf(buf + n, cap - n, "%s%lld%s", n ? " or " : "", (long long)v, units[u]);
    }
}

/* The engine with the --query.* flags and the PromQL feature flags. */
static int create_engine(struct server *s, struct mp_err *err)
{
    const struct cmd_flags *f = s->flags;
    struct query_engine_opts o;
    query_engine_opts_init(&o);
    o.lookback_delta_ms = f->query_lookback_delta_ms;
    o.timeout_ms = f->query_timeout_ms;
    o.max_samples = f->query_max_samples;
    o.max_concurrency = f->query_max_concurrency > INT32_MAX ? INT32_MAX
                                                              : (int)f->query_max_concurrency;
    o.parse.experimental_functions = (f->features & CMD_FEATURE_PROMQL_EXPERIMENTAL_FUNCTIONS) != 0;
    o.delayed_name_removal = (f->features & CMD_FEATURE_PROMQL_DELAYED_NAME_REMOVAL) != 0;
    o.per_step_stats = (f->features & CMD_FEATURE_PROMQL_PER_STEP_STATS) != 0;
    o.metrics = mp_metrics_default();
    return query_engine_create(&o, &s->engine, err);
}

/* The scrape manager over the open storage and the discovery that feeds it, both on the
 * config in force (Prometheus starts them once the TSDB is up). */
static int start_scraping(struct server *s, struct mp_err *err)
{
    struct scrape_manager_opts mo;
    scrape_manager_opts_init(&mo);
    mo.db = s->db;
    mo.metrics = mp_metrics_default();
    mo.external_url = s->flags->web_external_url;
    int rc = scrape_manager_create(&mo, &s->scrape, err);
    if (rc != 0)
        return rc;
    struct scrape_discovery_opts dopt;
    scrape_discovery_opts_init(&dopt);
    dopt.on_update = scrape_manager_sync;
    dopt.ctx = s->scrape;
    dopt.metrics = mp_metrics_default();
    rc = scrape_discovery_create(&dopt, &s->disc, err);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&s->cfg_mu);
    rc = apply_config(s, s->cfg, err);
    pthread_mutex_unlock(&s->cfg_mu);
    if (rc != 0) /* a provider that cannot start is not fatal: the others run */
        MP_LOG_ERROR("Error applying the configuration to scraping", MP_KV_STR("err", err->msg));
    return 0;
}

/* Registers the HTTP API; the storage is handed over once it is open. */
static int register_api(struct server *s, struct web_server *web, const char *retention,
                        struct web_api **out, struct mp_err *err)
{
    const struct cmd_flags *f = s->flags;
    struct web_api_deps d;
    web_api_deps_init(&d);
    d.engine = s->engine;
    d.experimental_functions = (f->features & CMD_FEATURE_PROMQL_EXPERIMENTAL_FUNCTIONS) != 0;
    /* the manager itself comes with web_api_set_scrape once the storage is open */
    d.scrape = NULL;
    d.targets = scrape_manager_targets;
    d.metadata = scrape_manager_metadata;
    d.ctx = s;
    d.config_yaml = api_config_yaml;
    d.flags = api_flags;
    d.runtime = api_runtime;
    d.external_labels = api_external_labels;
    d.version = MP_VERSION;
    d.revision = MP_REVISION;
    d.branch = MP_BRANCH;
    d.build_user = "meshprom";
    d.build_date = __DATE__ " " __TIME__;
    d.go_version = "none (C)";
    d.storage_retention = retention;
    d.lookback_delta_ms = f->query_lookback_delta_ms;
    d.enable_admin = f->web_enable_admin_api;
    d.enable_remote_write = f->web_enable_remote_write_receiver ||
                            (f->features & CMD_FEATURE_REMOTE_WRITE_RECEIVER) != 0;
    d.rr_sample_limit = f->remote_read_sample_limit;
    d.rr_concurrent_limit =
        f->remote_read_concurrent_limit > 0 ? (size_t)f->remote_read_concurrent_limit : 0;
    /* 0 is legal: Prometheus then sends one chunk per frame */
    d.rr_max_bytes_in_frame =
        f->remote_read_max_bytes_in_frame > 0 ? (size_t)f->remote_read_max_bytes_in_frame : 0;
    d.metrics = mp_metrics_default();
    return web_api_register(web, &d, out, err);
}

/* Waits for signals until one asks for shutdown. */
static void signal_loop(struct server *s, const sigset_t *set)
{
    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(set, &info);
        if (sig < 0) {
            if (errno == EINTR)
                continue;
            MP_LOG_ERROR("sigwaitinfo failed", MP_KV_STR("err", strerror(errno)));
            return;
        }
        if (sig == SIGHUP) {
            struct mp_err err;
            mp_err_clear(&err);
            if (reload_config(s, &err) != 0)
                MP_LOG_ERROR("Error reloading config", MP_KV_STR("err", err.msg));
            continue;
        }
        MP_LOG_WARN("Received termination request, exiting gracefully...",
                    MP_KV_STR("signal", strsignal(sig)));
        return;
    }
}

int main(int argc, char **argv)
{
    struct cmd_flags flags;
    struct cmd_flags_state *fstate = NULL;
    struct mp_err err;
    mp_err_clear(&err);

    /* Before any thread exists, so that every thread inherits the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    mp_alloc_tune_server();

    struct mp_err ferr;
    mp_err_clear(&ferr);
    if (cmd_flags_parse(argc, argv, &flags, &fstate, NULL, NULL, &ferr) != 0) {
        fprintf(stderr, "Error parsing command line arguments: %s\n", ferr.msg);
        cmd_flags_usage("meshprom", 2);
        return 2;
    }
    if (flags.help) {
        cmd_flags_usage("meshprom", 1);
        cmd_flags_destroy(fstate);
        return 0;
    }
    if (flags.version) {
        print_version();
        cmd_flags_destroy(fstate);
        return 0;
    }
    /* Parse again with the logger set up so that feature warnings are logged; flag values
     * were valid the first time. */
    enum mp_log_level level = MP_LOG_LEVEL_INFO;
    enum mp_log_format format = MP_LOG_FORMAT_LOGFMT;
    /* the flag parser already accepted only these names */
    if (mp_log_level_parse(flags.log_level, &level) != 0 ||
        mp_log_format_parse(flags.log_format, &format) != 0)
        return 2;
    mp_log_setup(level, format, 2);
    cmd_flags_destroy(fstate);
    if (cmd_flags_parse(argc, argv, &flags, &fstate, warn_feature, NULL, &ferr) != 0)
        return 2;

    char revision[192];
    snprintf(revision, sizeof revision, "(version=%s, branch=%s, revision=%s)", MP_VERSION,
             MP_BRANCH, MP_REVISION);
    MP_LOG_INFO("Starting meshprom", MP_KV_STR("mode", "server"),
                MP_KV_STR("version", revision));
    if (flags.features & CMD_FEATURE_AGENT)
        MP_LOG_WARN("Agent mode is not supported by meshprom, running as a server");

    struct server s = {.flags = &flags, .fstate = fstate};
    pthread_mutex_init(&s.cfg_mu, NULL);
    int status = 1;
    struct web_server *web = NULL;
    struct web_api *api = NULL;
    char retention[96];
    retention_text(&flags, retention, sizeof retention);
    struct cfg_web_gate *web_gate = NULL;
    char *tls_cert = NULL, *tls_key = NULL, tls_prio[128] = "";

    if (register_metrics(&s, &err) != 0) {
        MP_LOG_ERROR("Failed to register self-metrics", MP_KV_STR("err", err.msg));
        goto out;
    }
    if (reload_config(&s, &err) != 0) {
        MP_LOG_ERROR("Error loading config", MP_KV_STR("file", flags.config_file),
                     MP_KV_STR("err", err.msg));
        goto out;
    }
    if (make_dirs(flags.tsdb_path, &err) != 0) {
        MP_LOG_ERROR("Opening storage failed", MP_KV_STR("err", err.msg));
        goto out;
    }

    struct web_options wopt;
    web_options_init(&wopt);
    wopt.listen = flags.listen_addresses;
    wopt.nlisten = flags.n_listen_addresses;
    wopt.external_url = flags.web_external_url;
    wopt.route_prefix = flags.web_route_prefix;
    wopt.enable_lifecycle = flags.web_enable_lifecycle;
    wopt.max_connections = (size_t)flags.web_max_connections;
    wopt.read_timeout_ms = flags.web_read_timeout_ms;
    wopt.cors_origin = flags.web_cors_origin;
    wopt.reload = on_http_reload;
    wopt.quit = on_http_quit;
    wopt.lifecycle_ctx = &s;
    if (flags.web_config_file && *flags.web_config_file) {
        /* Loaded once here (fatal like Prometheus), then re-checked on every request. */
        if (cfg_web_gate_create(flags.web_config_file, &web_gate, &err) != 0) {
            MP_LOG_ERROR("Unable to start web server", MP_KV_STR("err", err.msg));
            goto out;
        }
        wopt.auth = web_auth_hook;
        wopt.auth_ctx = web_gate;
        /* TLS is read once, here: libmicrohttpd cannot swap certificates while serving, so
         * cert/key changes need a restart (auth and headers still follow the file). */
        struct cfg_web_config *wc = NULL;
        int trc = cfg_web_config_load_file(flags.web_config_file, &wc, &err);
        if (trc == 0)
            trc = cfg_web_config_tls(wc, &tls_cert, &tls_key, tls_prio, sizeof tls_prio, &err);
        cfg_web_config_destroy(wc);
        if (trc != 0) {
            MP_LOG_ERROR("Unable to start web server", MP_KV_STR("err", err.msg));
            goto out;
        }
        if (tls_cert) {
            wopt.tls_cert_pem = tls_cert;
            wopt.tls_key_pem = tls_key;
            wopt.tls_priorities = tls_prio;
        }
    }
    if (create_engine(&s, &err) != 0) {
        MP_LOG_ERROR("Invalid query engine options", MP_KV_STR("err", err.msg));
        goto out;
    }
    if (web_server_create(&wopt, &web, &err) != 0 || web_ui_register(web, &err) != 0 ||
        register_api(&s, web, retention, &api, &err) != 0 || web_server_start(web, &err) != 0) {
        MP_LOG_ERROR("Unable to start web server", MP_KV_STR("err", err.msg));
        goto out;
    }

    /* The API answers 503 until the storage has replayed its WAL, as Prometheus's. */
    if (open_storage(&s, &err) != 0) {
        MP_LOG_ERROR("Opening storage failed", MP_KV_STR("err", err.msg));
        goto out;
    }
    web_api_set_storage(api, s.db, NULL);
    if (start_scraping(&s, &err) != 0) {
        MP_LOG_ERROR("Starting the scrape manager failed", MP_KV_STR("err", err.msg));
        goto out;
    }
    web_api_set_scrape(api, s.scrape);
    web_server_set_ready(web, true);
    MP_LOG_INFO("Server is ready to receive web requests.");

    signal_loop(&s, &set);
    status = 0;

out:
    /* discovery feeds the scrape manager, web handlers read it: stop in that order */
    scrape_discovery_destroy(s.disc);
    query_engine_cancel_all(s.engine); /* in-flight queries end now, so the server stops */
    web_server_destroy(web);
    web_api_destroy(api);
    scrape_manager_destroy(s.scrape);
    query_engine_destroy(s.engine);
    tsdb_close(s.db);
    cfg_web_gate_destroy(web_gate);
    if (tls_key)
        memset(tls_key, 0, strlen(tls_key));
    mp_free(tls_key);
    mp_free(tls_cert);
    pthread_mutex_lock(&s.cfg_mu);
    cfg_config_destroy(s.cfg);
    s.cfg = NULL;
    pthread_mutex_unlock(&s.cfg_mu);
    pthread_mutex_destroy(&s.cfg_mu);
    if (status == 0)
        MP_LOG_INFO("See you next time!");
    cmd_flags_destroy(fstate);
    return status;
}
