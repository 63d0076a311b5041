/* SPDX-License-Identifier: Apache-2.0 */
/* configs/config.h: prometheus.yml as Prometheus 2.55 reads it, loaded into plain structs.
 *
 * cfg_config_load_file/_buf parse the YAML with libyaml, reject what Prometheus's strict
 * loader rejects (unknown keys, wrong types, bad durations, invalid regexes and label names,
 * conflicting auth fields, ...), and fill in every default the way Prometheus does, so that
 * consumers never look at "unset": a scrape config's interval, timeout and limits already hold
 * the inherited global values, relabel rules hold their compiled regex.
 * cfg_config_to_yaml prints the result the way /api/v1/status/config does (secrets masked).
 *
 * Thread safety: a loaded struct cfg_config is immutable; any number of threads may read it
 * until cfg_config_destroy. Reload = load a new one, swap the pointer, destroy the old one.
 * Strings are NUL-terminated and owned by the config; "unset" strings are NULL.
 * Durations are int64_t milliseconds, sizes and limits size_t (0 = no limit). */
#ifndef CONFIGS_CONFIG_H
#define CONFIGS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/str.h"

struct mp_regex;

/* Largest file cfg_config_load_file reads; Prometheus has no limit, 16 MiB is plenty. */
#define CFG_MAX_FILE_BYTES ((size_t)16 << 20)

struct cfg_label {
    char *name;
    char *value;
};

/* A name with several values: scrape params (url.Values), proxy_connect_header. */
struct cfg_multi {
    char *name;
    char **values;
    size_t nvalues;
};

/* http_headers entry (prometheus/common 0.59): values are plain, secrets are masked when
 * printed, files are read per request. */
struct cfg_http_header {
    char *name;
    char **values;
    size_t nvalues;
    char **secrets;
    size_t nsecrets;
    char **files;
    size_t nfiles;
};

enum cfg_tls_version {
    CFG_TLS_UNSET = 0,
    CFG_TLS10,
    CFG_TLS11,
    CFG_TLS12,
    CFG_TLS13,
};

struct cfg_tls_config {
    char *ca;        /* inline PEM */
    char *cert;      /* inline PEM */
    char *key;       /* inline PEM, secret */
    char *ca_file;
    char *cert_file;
    char *key_file;
    char *server_name;
    bool insecure_skip_verify;
    enum cfg_tls_version min_version;
    enum cfg_tls_version max_version;
};

struct cfg_basic_auth {
    char *username;
    char *username_file;
    char *password;      /* secret */
    char *password_file;
};

/* bearer_token and bearer_token_file are folded into this, as Prometheus does. */
struct cfg_authorization {
    char *type;          /* default "Bearer" */
    char *credentials;   /* secret */
    char *credentials_file;
};

struct cfg_proxy {
    char *proxy_url;
    char *no_proxy;
    bool proxy_from_environment;
    struct cfg_multi *proxy_connect_header; /* values are secrets */
    size_t nproxy_connect_header;
};

struct cfg_oauth2 {
    char *client_id;
    char *client_secret; /* secret */
    char *client_secret_file;
    char **scopes;
    size_t nscopes;
    char *token_url;
    struct cfg_label *endpoint_params;
    size_t nendpoint_params;
    struct cfg_tls_config tls_config;
    struct cfg_proxy proxy;
};

/* prometheus/common HTTPClientConfig; NULL pointers mean "not configured". */
struct cfg_http_client {
    struct cfg_basic_auth *basic_auth;
    struct cfg_authorization *authorization;
    struct cfg_oauth2 *oauth2;
    struct cfg_tls_config tls_config;
    bool follow_redirects; /* default true */
    bool enable_http2;     /* default true (false for remote_write) */
    struct cfg_proxy proxy;
    struct cfg_http_header *http_headers;
    size_t nhttp_headers;
    char *bearer_token_;      /* private: loader scratch, folded into authorization */
    char *bearer_token_file_; /* private: idem; both NULL after a load */
};

enum cfg_relabel_action {
    CFG_RELABEL_REPLACE = 0,
    CFG_RELABEL_KEEP,
    CFG_RELABEL_DROP,
    CFG_RELABEL_KEEPEQUAL,
    CFG_RELABEL_DROPEQUAL,
    CFG_RELABEL_HASHMOD,
    CFG_RELABEL_LABELMAP,
    CFG_RELABEL_LABELDROP,
    CFG_RELABEL_LABELKEEP,
    CFG_RELABEL_LOWERCASE,
    CFG_RELABEL_UPPERCASE,
};

/* One relabel rule (model/relabel/relabel.go). regex is compiled fully anchored. */
struct cfg_relabel {
    char **source_labels;
    size_t nsource_labels;
    char *separator;     /* default ";" */
    char *regex_src;     /* as written, default "(.*)"; a null regex is "" */
    struct mp_regex *regex;
    uint64_t modulus;
    char *target_label;  /* NULL when unset */
    char *replacement;   /* default "$1" */
    enum cfg_relabel_action action;
};

struct cfg_relabels {
    struct cfg_relabel *v;
    size_t n;
};

struct cfg_static_config {
    char **targets;
    size_t ntargets;
    struct cfg_label *labels; /* sorted by name */
    size_t nlabels;
};

struct cfg_file_sd {
    char **files;
    size_t nfiles;
    int64_t refresh_interval_ms; /* default 5m */
};

enum cfg_k8s_role {
    CFG_K8S_ROLE_UNSET = 0,
    CFG_K8S_ROLE_POD,
    CFG_K8S_ROLE_SERVICE,
    CFG_K8S_ROLE_ENDPOINTS,
    CFG_K8S_ROLE_ENDPOINTSLICE,
    CFG_K8S_ROLE_NODE,
    CFG_K8S_ROLE_INGRESS,
};

struct cfg_k8s_selector {
    enum cfg_k8s_role role;
    char *label;
    char *field;
};

/* kubernetes_sd_configs entry (shared/spec/kubernetes-sd.md 1.8). api_server == NULL and
 * kubeconfig_file == NULL means in-cluster mode. */
struct cfg_kubernetes_sd {
    char *api_server;
    enum cfg_k8s_role role;
    char *kubeconfig_file;
    struct cfg_http_client http;
    bool own_namespace;
    char **namespaces;
    size_t nnamespaces;
    struct cfg_k8s_selector *selectors;
    size_t nselectors;
    bool attach_metadata_node;
};

/* The service discovery blocks meshprom implements; others are rejected at load. */
struct cfg_sd_configs {
    struct cfg_static_config *static_configs;
    size_t nstatic_configs;
    struct cfg_file_sd *file_sd_configs;
    size_t nfile_sd_configs;
    struct cfg_kubernetes_sd *kubernetes_sd_configs;
    size_t nkubernetes_sd_configs;
};

struct cfg_scrape_config {
    char *job_name;
    bool honor_labels;
    bool honor_timestamps;            /* default true */
    bool track_timestamps_staleness;
    struct cfg_multi *params;         /* sorted by name */
    size_t nparams;
    int64_t scrape_interval_ms;       /* global value when unset */
    int64_t scrape_timeout_ms;        /* min(global timeout, interval) when unset */
    char **scrape_protocols;          /* global value when unset */
    size_t nscrape_protocols;
    bool scrape_classic_histograms;
    char *scrape_failure_log_file;    /* global value when unset */
    char *metrics_path;               /* default /metrics */
    char *scheme;                     /* default http */
    bool enable_compression;          /* default true */
    size_t body_size_limit;           /* bytes; global value when 0 */
    size_t sample_limit;              /* global value when 0; same for the limits below */
    size_t target_limit;
    size_t label_limit;
    size_t label_name_length_limit;
    size_t label_value_length_limit;
    size_t native_histogram_bucket_limit;
    double native_histogram_min_bucket_factor;
    size_t keep_dropped_targets;
    char *metric_name_validation_scheme; /* "", "utf8" or "legacy" */
    struct cfg_http_client http;
    struct cfg_relabels relabel_configs;
    struct cfg_relabels metric_relabel_configs;
    struct cfg_sd_configs sd;
};

struct cfg_global {
    int64_t scrape_interval_ms;       /* default 1m */
    int64_t scrape_timeout_ms;        /* default 10s (capped by the interval) */
    char **scrape_protocols;          /* default OpenMetricsText1.0.0, OpenMetricsText0.0.1,
                                       * PrometheusText0.0.4 */
    size_t nscrape_protocols;
    int64_t evaluation_interval_ms;   /* default 1m */
    int64_t rule_query_offset_ms;
    char *query_log_file;
    char *scrape_failure_log_file;
    struct cfg_label *external_labels; /* sorted by name */
    size_t nexternal_labels;
    size_t body_size_limit;
    size_t sample_limit;
    size_t target_limit;
    size_t label_limit;
    size_t label_name_length_limit;
    size_t label_value_length_limit;
    size_t keep_dropped_targets;
    char *metric_name_validation_scheme;
};

struct cfg_sigv4 {
    char *region;
    char *access_key;
    char *secret_key;    /* secret */
    char *profile;
    char *role_arn;
};

struct cfg_queue_config {
    int capacity;                  /* 10000 */
    int max_shards;                /* 50 */
    int min_shards;                /* 1 */
    int max_samples_per_send;      /* 2000 */
    int64_t batch_send_deadline_ms;/* 5s */
    int64_t min_backoff_ms;        /* 30ms */
    int64_t max_backoff_ms;        /* 5s */
    bool retry_on_http_429;
    int64_t sample_age_limit_ms;   /* 0 = off */
};

struct cfg_metadata_config {
    bool send;                     /* true */
    int64_t send_interval_ms;      /* 1m */
    int max_samples_per_send;      /* 2000 */
};

struct cfg_remote_write {
    char *url;
    int64_t remote_timeout_ms;     /* 30s */
    struct cfg_label *headers;     /* sorted by name */
    size_t nheaders;
    struct cfg_relabels write_relabel_configs;
    char *name;
    bool send_exemplars;
    bool send_native_histograms;
    char *protobuf_message;        /* "prometheus.WriteRequest" */
    struct cfg_http_client http;   /* enable_http2 defaults to false here */
    struct cfg_queue_config queue_config;
    struct cfg_metadata_config metadata_config;
    struct cfg_sigv4 *sigv4;
};

struct cfg_remote_read {
    char *url;
    int64_t remote_timeout_ms;     /* 1m */
    struct cfg_label *headers;
    size_t nheaders;
    bool read_recent;
    char *name;
    struct cfg_http_client http;
    struct cfg_label *required_matchers; /* sorted by name */
    size_t nrequired_matchers;
    bool filter_external_labels;   /* true */
};

struct cfg_alertmanager {
    struct cfg_http_client http;
    struct cfg_sigv4 *sigv4;
    char *scheme;                  /* http */
    char *path_prefix;
    int64_t timeout_ms;            /* 10s */
    char *api_version;             /* v2 */
    struct cfg_relabels relabel_configs;
    struct cfg_relabels alert_relabel_configs;
    struct cfg_sd_configs sd;
};

struct cfg_alerting {
    struct cfg_relabels alert_relabel_configs;
    struct cfg_alertmanager *alertmanagers;
    size_t nalertmanagers;
};

struct cfg_storage {
    bool has_tsdb;
    int64_t out_of_order_time_window_ms;
    bool has_exemplars;
    int64_t max_exemplars;         /* 100000 when the exemplars block is absent */
};

struct cfg_tracing {
    char *client_type;             /* grpc */
    char *endpoint;                /* NULL = tracing off */
    double sampling_fraction;
    bool insecure;
    struct cfg_tls_config tls_config;
    struct cfg_label *headers;
    size_t nheaders;
    char *compression;
    int64_t timeout_ms;
};

struct cfg_config {
    char *source;                  /* file name (or the name given to _load_buf) */
    struct cfg_global global;
    struct cfg_alerting alerting;
    char **rule_files;
    size_t nrule_files;
    char **scrape_config_files;
    size_t nscrape_config_files;
    struct cfg_scrape_config *scrape_configs;
    size_t nscrape_configs;
    struct cfg_storage storage;
    struct cfg_tracing tracing;
    struct cfg_remote_write *remote_write;
    size_t nremote_write;
    struct cfg_remote_read *remote_read;
    size_t nremote_read;
    char **otlp_promote_resource_attributes;
    size_t notlp_promote_resource_attributes;
    struct cfg_arena_blk *arena_; /* private: owns every allocation above */
    struct cfg_regex_ref *regexes_;
};

/* Loads and validates a prometheus.yml. On failure *out is NULL and err holds
 * "PATH:LINE:COL: what is wrong" (Prometheus's wording where there is one).
 * MP_EIO: unreadable file; MP_ELIMIT: larger than CFG_MAX_FILE_BYTES; MP_EPARSE: invalid
 * YAML or config; MP_ENOMEM. Relative paths in the file are kept as written. */
MP_NODISCARD int cfg_config_load_file(const char *path, struct cfg_config **out,
                                      struct mp_err *err);
/* Same for a buffer (need not be NUL-terminated); name is used in messages. */
MP_NODISCARD int cfg_config_load_buf(const char *name, const char *buf, size_t len,
                                     struct cfg_config **out, struct mp_err *err);
/* NULL is a no-op. */
void cfg_config_destroy(struct cfg_config *cfg);

/* Appends the config as YAML, defaults filled in and secrets printed as <secret>, in the
 * field order Prometheus 2.55 uses for /api/v1/status/config. The output loads back into an
 * equal config (secrets aside). MP_ENOMEM/MP_ELIMIT from the buffer. */
MP_NODISCARD int cfg_config_to_yaml(const struct cfg_config *cfg, struct mp_buf *out);

/* Static names: "replace", "pod", "TLS12", ... */
const char *cfg_relabel_action_name(enum cfg_relabel_action a);
const char *cfg_k8s_role_name(enum cfg_k8s_role r);
const char *cfg_tls_version_name(enum cfg_tls_version v);

/* Looks up a scrape config by job name; NULL if absent. Borrowed until cfg_config_destroy. */
const struct cfg_scrape_config *cfg_config_find_job(const struct cfg_config *cfg,
                                                    const char *job_name);


/* ---- --web.config.file (exporter-toolkit web config, protocols.md 4.11) ----------------
 * Keys: basic_auth_users (user -> bcrypt hash, $2a$/$2b$/$2y$, checked for form at load),
 * http_server_config.headers (Content-Security-Policy, X-Frame-Options deny|sameorigin,
 * X-Content-Type-Options nosniff, X-XSS-Protection, Strict-Transport-Security only) and
 * http_server_config.http2. tls_server_config: cert_file + key_file (both or neither; relative
 * paths are resolved against the web config file's directory by cfg_web_config_load_file),
 * min_version/max_version (TLS10..TLS13). client_auth_type other than NoClientCert and a
 * non-empty client_ca_file are rejected ("not supported yet"); cipher_suites,
 * prefer_server_cipher_suites, curve_preferences and client_allowed_sans are accepted and
 * ignored. Unknown keys are errors ("PATH:LINE:COL: field x not found in type web.Config"). */
struct cfg_web_kv {
    char *name;
    char *value;
};

struct cfg_web_config {
    struct cfg_web_kv *headers; /* in file order */
    size_t nheaders;
    struct cfg_web_kv *users;   /* name = user, value = bcrypt hash; in file order */
    size_t nusers;
    bool http2;                 /* default true */
    char *tls_cert_file;        /* NULL: no TLS (then tls_key_file is NULL too) */
    char *tls_key_file;
    enum cfg_tls_version tls_min_version; /* CFG_TLS_UNSET: TLS12 */
    enum cfg_tls_version tls_max_version; /* CFG_TLS_UNSET: TLS13 */
};

/* MP_EIO (unreadable), MP_ELIMIT (> CFG_MAX_FILE_BYTES), MP_EPARSE, MP_ENOMEM. An empty
 * file is a valid config with no auth and no headers. */
MP_NODISCARD int cfg_web_config_load_file(const char *path, struct cfg_web_config **out,
                                          struct mp_err *err);
MP_NODISCARD int cfg_web_config_load_buf(const char *name, const char *buf, size_t len,
                                         struct cfg_web_config **out, struct mp_err *err);
void cfg_web_config_destroy(struct cfg_web_config *wc); /* NULL is a no-op */

/* Reads the TLS cert and key files (PEM, not validated here) into fresh strings (free with
 * mp_free) and builds the GnuTLS priority string for min/max version into prio
 * ("NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"). wc without TLS: *cert = *key = NULL, 0.
 * Errors: MP_EIO (unreadable), MP_ELIMIT, MP_EINVAL (min_version above max_version). */
MP_NODISCARD int cfg_web_config_tls(const struct cfg_web_config *wc, char **cert, char **key,
                                    char *prio, size_t prio_cap, struct mp_err *err);

/* Per-request gate over a web config file: the file is stat()ed on every call and re-parsed
 * when its mtime, size or inode changed; bcrypt results are cached per (user, hash,
 * password) in a small fixed-size table; unknown users are checked against a dummy hash.
 * Thread-safe. create loads the file once and fails like cfg_web_config_load_file. */
struct cfg_web_gate;
MP_NODISCARD int cfg_web_gate_create(const char *path, struct cfg_web_gate **out,
                                     struct mp_err *err);
void cfg_web_gate_destroy(struct cfg_web_gate *g); /* NULL is a no-op */
/* Calls add_header for every configured header, then checks authorization (the request's
 * Authorization header, may be NULL). Returns 0 (allowed), 401 (missing or wrong
 * credentials) or 500 (the file cannot be read or parsed; logged). */
typedef void cfg_web_header_fn(void *ctx, const char *name, const char *value);
int cfg_web_gate_check(struct cfg_web_gate *g, const char *authorization,
                       cfg_web_header_fn *add_header, void *ctx);
/* bcrypt check of one password against the config's users (dummy hash when unknown).
 * Not cached. */
bool cfg_web_config_verify(const struct cfg_web_config *wc, const char *user,
                           const char *password);

#endif
