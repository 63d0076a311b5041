/* SPDX-License-Identifier: Apache-2.0 */
/* configs/schema.c: the prometheus.yml schema of Prometheus 2.55 as decode tables, with the
 * defaults and validation of upstream config/config.go, model/relabel/relabel.go,
 * discovery/{file,kubernetes} and prometheus/common config/http_config.go (v0.59).
 *
 * Order of work mirrors upstream: each object is checked as soon as its mapping is decoded
 * (the UnmarshalYAML step), then cfg_schema_load applies the global defaults to every scrape
 * config and checks what needs the whole file (the Config.UnmarshalYAML step). Messages keep
 * Prometheus's wording; decode.c prefixes them with file:line:col. */
#include "configs/internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/labels.h"
#include "common/matcher.h"

#define MS_SECOND INT64_C(1000)
#define MS_MINUTE (60 * MS_SECOND)

#define ROW(key, kind, T, m) {key, kind, offsetof(T, m), 0, NULL, NULL, NULL}
#define ROWN(key, kind, T, m, cnt) {key, kind, offsetof(T, m), offsetof(T, cnt), NULL, NULL, NULL}
#define ROWT(key, kind, T, m, type) {key, kind, offsetof(T, m), 0, &type, NULL, NULL}
#define ROWL(key, T, m, cnt, type, msg)                                                     \
    {key, CFG_F_LIST, offsetof(T, m), offsetof(T, cnt), &type, NULL, msg}
#define ROWC(key, T, m, fn) {key, CFG_F_CUSTOM, offsetof(T, m), 0, NULL, fn, NULL}
#define NROWS(a) (sizeof(a) / sizeof((a)[0]))
#define TRY(x)                                                                              \
    do {                                                                                    \
        int rc_ = (x);                                                                      \
        if (rc_ != 0)                                                                       \
            return rc_;                                                                     \
    } while (0)

static const char *const default_scrape_protocols[] = {"OpenMetricsText1.0.0",
                                                       "OpenMetricsText0.0.1",
                                                       "PrometheusText0.0.4"};

static bool set(const char *s)
{
    return s && *s;
}

static const char *q(const char *s, char *buf, size_t cap)
{
    cfg_quote(s ? s : "", buf, cap);
    return buf;
}

/* ---- shared checks ---- */

/* Absolute http(s) URL with a host, as the clients need; reason in *why. */
static bool url_ok(const char *u, const char *const *schemes, const char **why)
{
    const char *p = strstr(u, "://");
    if (!p || p == u) {
        *why = "missing scheme (e.g. http://)";
        return false;
    }
    bool scheme_ok = false;
    for (; *schemes; schemes++)
        if (strlen(*schemes) == (size_t)(p - u) && strncasecmp(u, *schemes, (size_t)(p - u)) == 0)
            scheme_ok = true;
    if (!scheme_ok) {
        *why = "unsupported scheme";
        return false;
    }
    const char *host = p + 3;
    size_t hl = strcspn(host, "/?#");
    const char *at = memchr(host, '@', hl);
    if (at) {
        hl -= (size_t)(at + 1 - host);
        host = at + 1;
    }
    if (hl == 0) {
        *why = "missing host";
        return false;
    }
    for (const char *c = u; *c; c++) {
        if ((unsigned char)*c <= ' ' || *c == 0x7f) {
            *why = "invalid character in URL";
            return false;
        }
    }
    if (host[0] == '[') {
        const char *rb = memchr(host, ']', hl);
        if (!rb) {
            *why = "missing ']' in host";
            return false;
        }
        const char *rest = rb + 1;
        if (rest < host + hl && *rest != ':') {
            *why = "invalid port";
            return false;
        }
        host = rest;
        hl = (size_t)(host + hl - rest);
    }
    const char *colon = memchr(host, ':', hl);
    if (colon) {
        for (const char *c = colon + 1; c < host + hl; c++) {
            if (*c < '0' || *c > '9') {
                *why = "invalid port";
                return false;
            }
        }
    }
    return true;
}

static int check_url(struct cfg_loader *L, const struct cfg_seen *s, const char *key,
                     const char *u, const char *const *schemes)
{
    const char *why;
    char b[300];
    if (u && !url_ok(u, schemes, &why))
        return cfg_fail(L, cfg_seen_value(s, key), "parse %s: %s", q(u, b, sizeof b), why);
    return 0;
}

static const char *const http_schemes[] = {"http", "https", NULL};
static const char *const proxy_schemes[] = {"http", "https", "socks5", NULL};

static bool tls_is_zero(const struct cfg_tls_config *t)
{
    return !t->ca && !t->cert && !t->key && !t->ca_file && !t->cert_file && !t->key_file &&
           !t->server_name && !t->insecure_skip_verify && !t->min_version && !t->max_version;
}

static bool proxy_is_zero(const struct cfg_proxy *p)
{
    return !p->proxy_url && !p->no_proxy && !p->proxy_from_environment &&
           !p->nproxy_connect_header;
}

static bool http_is_default(const struct cfg_http_client *h)
{
    return !h->basic_auth && !h->authorization && !h->oauth2 && tls_is_zero(&h->tls_config) &&
           h->follow_redirects && h->enable_http2 && proxy_is_zero(&h->proxy) &&
           !h->nhttp_headers;
}

/* TLSConfig.Validate (plus the version order that NewTLSConfig checks). */
static int check_tls(struct cfg_loader *L, void *obj, const struct cfg_seen *s)
{
    struct cfg_tls_config *t = obj;
    const yaml_node_t *at = s->self;
    if (set(t->ca) && set(t->ca_file))
        return cfg_fail(L, at, "at most one of ca and ca_file must be configured");
    if (set(t->cert) && set(t->cert_file))
        return cfg_fail(L, at, "at most one of cert and cert_file must be configured");
    if (set(t->key) && set(t->key_file))
        return cfg_fail(L, at, "at most one of key and key_file must be configured");
    bool cert = set(t->cert) || set(t->cert_file), key = set(t->key) || set(t->key_file);
    if (cert && !key)
        return cfg_fail(L, at, "exactly one of key or key_file must be configured when a "
                               "client certificate is configured");
    if (key && !cert)
        return cfg_fail(L, at, "exactly one of cert or cert_file must be configured when a "
                               "client key is configured");
    if (t->min_version && t->max_version && t->max_version < t->min_version)
        return cfg_fail(L, at, "tls_config.max_version must be greater than or equal to "
                               "tls_config.min_version if both are specified");
    return 0;
}

static int check_proxy(struct cfg_loader *L, const struct cfg_proxy *p,
                       const struct cfg_seen *s)
{
    if (p->proxy_from_environment && set(p->proxy_url))
        return cfg_fail(L, cfg_seen_at(s, "proxy_url"),
                        "if proxy_from_environment is configured, proxy_url must not be configured");
    if (p->proxy_from_environment && set(p->no_proxy))
        return cfg_fail(L, cfg_seen_at(s, "no_proxy"),
                        "if proxy_from_environment is configured, no_proxy must not be configured");
    if (!set(p->proxy_url) && set(p->no_proxy))
        return cfg_fail(L, cfg_seen_at(s, "no_proxy"),
                        "if no_proxy is configured, proxy_url must also be configured");
    if (p->nproxy_connect_header && !set(p->proxy_url) && !p->proxy_from_environment)
        return cfg_fail(L, cfg_seen_at(s, "proxy_connect_header"),
                        "if proxy_connect_header is configured, proxy_url or "
                        "proxy_from_environment must also be configured");
    if (set(p->proxy_url))
        TRY(check_url(L, s, "proxy_url", p->proxy_url, proxy_schemes));
    return 0;
}

/* HTTPClientConfig.Validate: the auth fields exclude each other; bearer_token(_file) become
 * an authorization block of type Bearer, as upstream does before anyone reads the config. */
static int check_http(struct cfg_loader *L, struct cfg_http_client *h, const struct cfg_seen *s)
{
    const yaml_node_t *at = s->self;
    bool bt = set(h->bearer_token_), btf = set(h->bearer_token_file_);
    if (bt && btf)
        return cfg_fail(L, cfg_seen_at(s, "bearer_token_file"),
                        "at most one of bearer_token & bearer_token_file must be configured");
    if ((h->basic_auth || h->oauth2) && (bt || btf))
        return cfg_fail(L, at, "at most one of basic_auth, oauth2, bearer_token & "
                               "bearer_token_file must be configured");
    if (h->basic_auth && set(h->basic_auth->username) && set(h->basic_auth->username_file))
        return cfg_fail(L, cfg_seen_at(s, "basic_auth"),
                        "at most one of basic_auth username & username_file must be configured");
    if (h->basic_auth && set(h->basic_auth->password) && set(h->basic_auth->password_file))
        return cfg_fail(L, cfg_seen_at(s, "basic_auth"),
                        "at most one of basic_auth password & password_file must be configured");
    if (h->authorization) {
        struct cfg_authorization *a = h->authorization;
        if (bt || btf)
            return cfg_fail(L, cfg_seen_at(s, "authorization"),
                            "authorization is not compatible with bearer_token & "
                            "bearer_token_file");
        if (set(a->credentials) && set(a->credentials_file))
            return cfg_fail(L, cfg_seen_at(s, "authorization"),
                            "at most one of authorization credentials & credentials_file must "
                            "be configured");
        /* Type is trimmed and defaults to Bearer */
        char *t = a->type ? a->type : "";
        while (*t == ' ' || *t == '\t' || *t == '\n' || *t == '\r')
            t++;
        size_t tl = strlen(t);
        while (tl && (t[tl - 1] == ' ' || t[tl - 1] == '\t' || t[tl - 1] == '\n'))
            tl--;
        a->type = tl ? cfg_arena_strndup(L->cfg, t, tl) : "Bearer";
        if (!a->type)
            return cfg_oom(L);
        if (strcasecmp(a->type, "basic") == 0)
            return cfg_fail(L, cfg_seen_at(s, "authorization"),
                            "authorization type cannot be set to \"basic\", use \"basic_auth\" "
                            "instead");
        if (h->basic_auth || h->oauth2)
            return cfg_fail(L, at, "at most one of basic_auth, oauth2 & authorization must be "
                                   "configured");
    } else if (bt || btf) {
        struct cfg_authorization *a = cfg_arena_alloc(L->cfg, sizeof *a);
        if (!a)
            return cfg_oom(L);
        a->type = "Bearer";
        if (bt)
            a->credentials = h->bearer_token_;
        else
            a->credentials_file = h->bearer_token_file_;
        h->authorization = a;
    }
    h->bearer_token_ = h->bearer_token_file_ = NULL;
    if (h->oauth2) {
        struct cfg_oauth2 *o = h->oauth2;
        const yaml_node_t *oat = cfg_seen_at(s, "oauth2");
        if (h->basic_auth)
            return cfg_fail(L, at, "at most one of basic_auth, oauth2 & authorization must be "
                                   "configured");
        if (!set(o->client_id))
            return cfg_fail(L, oat, "oauth2 client_id must be configured");
        if (!set(o->client_secret) && !set(o->client_secret_file))
            return cfg_fail(L, oat, "either oauth2 client_secret or client_secret_file must be "
                                    "configured");
        if (!set(o->token_url))
            return cfg_fail(L, oat, "oauth2 token_url must be configured");
        if (set(o->client_secret) && set(o->client_secret_file))
            return cfg_fail(L, oat, "at most one of oauth2 client_secret & client_secret_file "
                                    "must be configured");
    }
    return check_proxy(L, &h->proxy, s);
}

static void http_init(struct cfg_http_client *h)
{
    memset(h, 0, sizeof *h);
    h->follow_redirects = true;
    h->enable_http2 = true;
}

static int check_label_name(struct cfg_loader *L, const yaml_node_t *at, const char *name)
{
    char b[200];
    if (!mp_label_name_is_valid(mp_str_c(name)))
        return cfg_fail(L, at, "%s is not a valid label name", q(name, b, sizeof b));
    return 0;
}

/* ---- small custom decoders ---- */

static int dec_tls_version(struct cfg_loader *L, const yaml_node_t *n, void *member)
{
    char *s;
    TRY(cfg_node_string(L, n, &s));
    static const char *const names[] = {"", "TLS10", "TLS11", "TLS12", "TLS13"};
    for (int i = 1; i < 5; i++) {
        if (strcmp(s, names[i]) == 0) {
            *(enum cfg_tls_version *)member = (enum cfg_tls_version)i;
            return 0;
        }
    }
    if (cfg_node_is_null(n)) {
        *(enum cfg_tls_version *)member = CFG_TLS_UNSET;
        return 0;
    }
    return cfg_fail(L, n, "unknown TLS version: %s", s);
}

static const char *const role_names[] = {"", "pod", "service", "endpoints", "endpointslice",
                                         "node", "ingress"};

static int dec_role(struct cfg_loader *L, const yaml_node_t *n, void *member)
{
    char *s, b[200];
    TRY(cfg_node_string(L, n, &s));
    if (cfg_node_is_null(n)) {
        *(enum cfg_k8s_role *)member = CFG_K8S_ROLE_UNSET;
        return 0;
    }
    for (int i = 1; i < 7; i++) {
        if (strcmp(s, role_names[i]) == 0) {
            *(enum cfg_k8s_role *)member = (enum cfg_k8s_role)i;
            return 0;
        }
    }
    return cfg_fail(L, n, "unknown Kubernetes SD role %s", q(s, b, sizeof b));
}

static const char *const action_names[] = {"replace",   "keep",      "drop",      "keepequal",
                                           "dropequal", "hashmod",   "labelmap",  "labeldrop",
                                           "labelkeep", "lowercase", "uppercase"};

/* relabel action: case-insensitive; null leaves it empty, which the rule check rejects */
static int dec_action(struct cfg_loader *L, const yaml_node_t *n, void *member)
{
    int *a = member;
    char *s, b[200];
    if (cfg_node_is_null(n)) {
        *a = -1;
        return 0;
    }
    TRY(cfg_node_string(L, n, &s));
    for (int i = 0; i < (int)NROWS(action_names); i++) {
        if (strcasecmp(s, action_names[i]) == 0) {
            *a = i;
            return 0;
        }
    }
    return cfg_fail(L, n, "unknown relabel action %s", q(s, b, sizeof b));
}

static int dec_label_names(struct cfg_loader *L, const yaml_node_t *n, void *member)
{
    struct cfg_relabel *r = (struct cfg_relabel *)((char *)member -
                                                   offsetof(struct cfg_relabel, source_labels));
    r->source_labels = NULL;
    r->nsource_labels = 0;
    if (cfg_node_is_null(n))
        return 0;
    if (n->type != YAML_SEQUENCE_NODE)
        return cfg_fail(L, n, "cannot unmarshal %s into model.LabelNames",
                        n->type == YAML_MAPPING_NODE ? "!!map" : "!!str");
    size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    char **v = cfg_arena_array(L->cfg, cnt, sizeof *v);
    if (!v)
        return cfg_oom(L);
    for (size_t i = 0; i < cnt; i++) {
        const yaml_node_t *item = cfg_node(L, n->data.sequence.items.start[i]);
        TRY(cfg_node_string(L, item, &v[i]));
        TRY(check_label_name(L, item, v[i]));
    }
    r->source_labels = v;
    r->nsource_labels = cnt;
    return 0;
}

/* ---- TLS, auth, proxy, headers ---- */

static const struct cfg_field tls_rows[] = {
    ROW("ca", CFG_F_STR, struct cfg_tls_config, ca),
    ROW("cert", CFG_F_STR, struct cfg_tls_config, cert),
    ROW("key", CFG_F_STR, struct cfg_tls_config, key),
    ROW("ca_file", CFG_F_STR, struct cfg_tls_config, ca_file),
    ROW("cert_file", CFG_F_STR, struct cfg_tls_config, cert_file),
    ROW("key_file", CFG_F_STR, struct cfg_tls_config, key_file),
    ROW("server_name", CFG_F_STR, struct cfg_tls_config, server_name),
    ROW("insecure_skip_verify", CFG_F_BOOL, struct cfg_tls_config, insecure_skip_verify),
    ROWC("min_version", struct cfg_tls_config, min_version, dec_tls_version),
    ROWC("max_version", struct cfg_tls_config, max_version, dec_tls_version),
};
static const struct cfg_type tls_type = {
    .go_name = "config.TLSConfig",
    .size = sizeof(struct cfg_tls_config),
    .fields = tls_rows,
    .nfields = NROWS(tls_rows),
    .check = check_tls,
};

static const struct cfg_field basic_auth_rows[] = {
    ROW("username", CFG_F_STR, struct cfg_basic_auth, username),
    ROW("username_file", CFG_F_STR, struct cfg_basic_auth, username_file),
    ROW("password", CFG_F_STR, struct cfg_basic_auth, password),
    ROW("password_file", CFG_F_STR, struct cfg_basic_auth, password_file),
};
static const struct cfg_type basic_auth_type = {
    .go_name = "config.BasicAuth",
    .size = sizeof(struct cfg_basic_auth),
    .fields = basic_auth_rows,
    .nfields = NROWS(basic_auth_rows),
};

static const struct cfg_field authorization_rows[] = {
    ROW("type", CFG_F_STR, struct cfg_authorization, type),
    ROW("credentials", CFG_F_STR, struct cfg_authorization, credentials),
    ROW("credentials_file", CFG_F_STR, struct cfg_authorization, credentials_file),
};
static const struct cfg_type authorization_type = {
    .go_name = "config.Authorization",
    .size = sizeof(struct cfg_authorization),
    .fields = authorization_rows,
    .nfields = NROWS(authorization_rows),
};

static const struct cfg_field proxy_rows[] = {
    ROW("proxy_url", CFG_F_STR, struct cfg_proxy, proxy_url),
    ROW("no_proxy", CFG_F_STR, struct cfg_proxy, no_proxy),
    ROW("proxy_from_environment", CFG_F_BOOL, struct cfg_proxy, proxy_from_environment),
    ROWN("proxy_connect_header", CFG_F_MULTIMAP, struct cfg_proxy, proxy_connect_header,
         nproxy_connect_header),
};
static const struct cfg_type proxy_type = {
    .go_name = "config.ProxyConfig",
    .size = sizeof(struct cfg_proxy),
    .fields = proxy_rows,
    .nfields = NROWS(proxy_rows),
};

static int check_oauth2(struct cfg_loader *L, void *obj, const struct cfg_seen *s)
{
    return check_proxy(L, &((struct cfg_oauth2 *)obj)->proxy, s);
}

static const struct cfg_field oauth2_rows[] = {
    ROW("client_id", CFG_F_STR, struct cfg_oauth2, client_id),
    ROW("client_secret", CFG_F_STR, struct cfg_oauth2, client_secret),
    ROW("client_secret_file", CFG_F_STR, struct cfg_oauth2, client_secret_file),
    ROWN("scopes", CFG_F_STRLIST, struct cfg_oauth2, scopes, nscopes),
    ROW("token_url", CFG_F_STR, struct cfg_oauth2, token_url),
    ROWN("endpoint_params", CFG_F_STRMAP, struct cfg_oauth2, endpoint_params, nendpoint_params),
    ROWT("tls_config", CFG_F_STRUCT, struct cfg_oauth2, tls_config, tls_type),
};
static const struct cfg_inline oauth2_inlines[] = {{&proxy_type, offsetof(struct cfg_oauth2, proxy)}};
static const struct cfg_type oauth2_type = {
    .go_name = "config.OAuth2",
    .size = sizeof(struct cfg_oauth2),
    .fields = oauth2_rows,
    .nfields = NROWS(oauth2_rows),
    .inlines = oauth2_inlines,
    .ninlines = NROWS(oauth2_inlines),
    .check = check_oauth2,
};

static const struct cfg_field header_rows[] = {
    ROWN("values", CFG_F_STRLIST, struct cfg_http_header, values, nvalues),
    ROWN("secrets", CFG_F_STRLIST, struct cfg_http_header, secrets, nsecrets),
    ROWN("files", CFG_F_STRLIST, struct cfg_http_header, files, nfiles),
};
static const struct cfg_type header_type = {
    .go_name = "config.Header",
    .size = sizeof(struct cfg_http_header),
    .fields = header_rows,
    .nfields = NROWS(header_rows),
};

/* http_headers: a map of header name to {values, secrets, files}; Prometheus's own headers
 * cannot be overridden (prometheus/common Headers.Validate). */
static int dec_http_headers(struct cfg_loader *L, const yaml_node_t *n, void *member)
{
    static const char *const reserved[] = {
        "Authorization",        "Host",
        "Content-Encoding",     "Content-Length",
        "Content-Type",         "User-Agent",
        "Connection",           "Keep-Alive",
        "Proxy-Authenticate",   "Proxy-Authorization",
        "Www-Authenticate",     "Accept-Encoding",
        "X-Prometheus-Remote-Write-Version", "X-Prometheus-Remote-Read-Version",
        "X-Prometheus-Scrape-Timeout-Seconds", "X-Amz-Date",
        "X-Amz-Security-Token", "X-Amz-Content-Sha256",
        NULL};
    struct cfg_http_client *h = (struct cfg_http_client *)((char *)member -
                                                           offsetof(struct cfg_http_client,
                                                                    http_headers));
    h->http_headers = NULL;
    h->nhttp_headers = 0;
    if (cfg_node_is_null(n))
        return 0;
    if (n->type != YAML_MAPPING_NODE)
        return cfg_fail(L, n, "cannot unmarshal %s into config.Headers",
                        n->type == YAML_SEQUENCE_NODE ? "!!seq" : "!!str");
    size_t cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    struct cfg_http_header *v = cfg_arena_array(L->cfg, cnt, sizeof *v);
    if (!v)
        return cfg_oom(L);
    for (size_t i = 0; i < cnt; i++) {
        const yaml_node_t *k = cfg_node(L, n->data.mapping.pairs.start[i].key);
        const yaml_node_t *val = cfg_node(L, n->data.mapping.pairs.start[i].value);
        char b[200];
        TRY(cfg_node_string(L, k, &v[i].name));
        for (const char *const *r = reserved; *r; r++)
            if (strcasecmp(*r, v[i].name) == 0)
                return cfg_fail(L, k, "setting header %s is not allowed",
                                q(v[i].name, b, sizeof b));
        if (!cfg_node_is_null(val))
            TRY(cfg_decode_struct(L, val, &header_type, &v[i]));
    }
    size_t dup;
    if (cfg_first_duplicate((const char *const *)&v[0].name, sizeof v[0], cnt, true, &dup) != 0)
        return cfg_oom(L);
    if (dup != SIZE_MAX) {
        char b[200];
        return cfg_fail(L, cfg_node(L, n->data.mapping.pairs.start[dup].key),
                        "key %s already set in map", q(v[dup].name, b, sizeof b));
    }
    h->http_headers = v;
    h->nhttp_headers = cnt;
    return 0;
}

static const struct cfg_field http_rows[] = {
    ROWT("basic_auth", CFG_F_PTR, struct cfg_http_client, basic_auth, basic_auth_type),
    ROWT("authorization", CFG_F_PTR, struct cfg_http_client, authorization, authorization_type),
    ROWT("oauth2", CFG_F_PTR, struct cfg_http_client, oauth2, oauth2_type),
    ROW("bearer_token", CFG_F_STR, struct cfg_http_client, bearer_token_),
    ROW("bearer_token_file", CFG_F_STR, struct cfg_http_client, bearer_token_file_),
    ROWT("tls_config", CFG_F_STRUCT, struct cfg_http_client, tls_config, tls_type),
    ROW("follow_redirects", CFG_F_BOOL, struct cfg_http_client, follow_redirects),
    ROW("enable_http2", CFG_F_BOOL, struct cfg_http_client, enable_http2),
    ROWC("http_headers", struct cfg_http_client, http_headers, dec_http_headers),
};
static const struct cfg_inline http_inlines[] = {
    {&proxy_type, offsetof(struct cfg_http_client, proxy)}};
static const struct cfg_type http_type = {
    .go_name = "config.HTTPClientConfig",
    .size = sizeof(struct cfg_http_client),
    .fields = http_rows,
    .nfields = NROWS(http_rows),
    .inlines = http_inlines,
    .ninlines = NROWS(http_inlines),
};

static const struct cfg_field sigv4_rows[] = {
    ROW("region", CFG_F_STR, struct cfg_sigv4, region),
    ROW("access_key", CFG_F_STR, struct cfg_sigv4, access_key),
    ROW("secret_key", CFG_F_STR, struct cfg_sigv4, secret_key),
    ROW("profile", CFG_F_STR, struct cfg_sigv4, profile),
    ROW("role_arn", CFG_F_STR, struct cfg_sigv4, role_arn),
};
static const struct cfg_type sigv4_type = {
    .go_name = "sigv4.SigV4Config",
    .size = sizeof(struct cfg_sigv4),
    .fields = sigv4_rows,
    .nfields = NROWS(sigv4_rows),
};

/* ---- relabeling ---- */

static bool is_word(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* ^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$ : a label name with $1 / ${name} references
 * allowed anywhere a letter is, never starting with a digit. */
static bool relabel_target_ok(const char *s)
{
    bool first = true;
    if (!*s)
        return false;
    while (*s) {
        if (*s == '$') {
            s++;
            if (*s == '{') {
                const char *b = ++s;
                while (is_word(*s))
                    s++;
                if (s == b || *s != '}')
                    return false;
                s++;
            } else {
                const char *b = s;
                while (is_word(*s))
                    s++;
                if (s == b)
                    return false;
            }
        } else if (first ? (isalpha((unsigned char)*s) || *s == '_') : is_word(*s)) {
            s++;
        } else {
            return false;
        }
        first = false;
    }
    return true;
}

/* The rule row stores action as an int so that "null" (-1) can be told from replace. */
struct relabel_raw {
    struct cfg_relabel r;
    int action;
};

static void relabel_init(void *obj)
{
    struct relabel_raw *x = obj;
    memset(x, 0, sizeof *x);
    x->r.separator = ";";
    x->r.regex_src = "(.*)";
    x->r.replacement = "$1";
    x->action = CFG_RELABEL_REPLACE;
}

static int dec_regex(struct cfg_loader *L, const yaml_node_t *n, void *member)
{
    /* a null regex is the empty regex (relabel.go: Regex.Regexp == nil -> "") */
    return cfg_node_string(L, n, (char **)member);
}

static int compile_regex(struct cfg_loader *L, const yaml_node_t *at, const char *src,
                         struct mp_regex **out)
{
    struct mp_err e;
    mp_err_clear(&e);
    struct mp_regex *re = NULL;
    if (mp_regex_compile(mp_str_c(src), 0, &re, &e) != 0) {
        if (e.code == MP_ENOMEM)
            return cfg_oom(L);
        return cfg_fail(L, at, "%s", e.msg);
    }
    struct cfg_regex_ref *ref = cfg_arena_alloc(L->cfg, sizeof *ref);
    if (!ref) {
        mp_regex_destroy(re);
        return cfg_oom(L);
    }
    ref->re = re;
    ref->next = L->cfg->regexes_;
    L->cfg->regexes_ = ref;
    *out = re;
    return 0;
}

/* relabel.Config.Validate, in upstream order. */
static int check_relabel(struct cfg_loader *L, void *obj, const struct cfg_seen *s)
{
    struct relabel_raw *x = obj;
    struct cfg_relabel *r = &x->r;
    const yaml_node_t *at = s->self, *tl_at = cfg_seen_at(s, "target_label");
    char b[200];
    if (x->action < 0)
        return cfg_fail(L, cfg_seen_at(s, "action"), "relabel action cannot be empty");
    r->action = (enum cfg_relabel_action)x->action;
    const char *an = action_names[r->action];
    enum cfg_relabel_action a = r->action;
    const char *tl = r->target_label ? r->target_label : "";
    bool named_target = a == CFG_RELABEL_LOWERCASE || a == CFG_RELABEL_UPPERCASE ||
                        a == CFG_RELABEL_KEEPEQUAL || a == CFG_RELABEL_DROPEQUAL;
    if (r->modulus == 0 && a == CFG_RELABEL_HASHMOD)
        return cfg_fail(L, at, "relabel configuration for hashmod requires non-zero modulus");
    if ((a == CFG_RELABEL_REPLACE || a == CFG_RELABEL_HASHMOD || named_target) && !*tl)
        return cfg_fail(L, at, "relabel configuration for %s action requires 'target_label' value",
                        an);
    if (a == CFG_RELABEL_REPLACE && !strchr(tl, '$') && !mp_label_name_is_valid(mp_str_c(tl)))
        return cfg_fail(L, tl_at, "%s is invalid 'target_label' for %s action", q(tl, b, sizeof b),
                        an);
    if (a == CFG_RELABEL_REPLACE && strchr(tl, '$') && !relabel_target_ok(tl))
        return cfg_fail(L, tl_at, "%s is invalid 'target_label' for %s action", q(tl, b, sizeof b),
                        an);
    if (named_target && !mp_label_name_is_valid(mp_str_c(tl)))
        return cfg_fail(L, tl_at, "%s is invalid 'target_label' for %s action", q(tl, b, sizeof b),
                        an);
    if (named_target && strcmp(r->replacement, "$1") != 0)
        return cfg_fail(L, cfg_seen_at(s, "replacement"),
                        "'replacement' can not be set for %s action", an);
    if (a == CFG_RELABEL_LABELMAP && !relabel_target_ok(r->replacement))
        return cfg_fail(L, cfg_seen_at(s, "replacement"),
                        "%s is invalid 'replacement' for %s action", q(r->replacement, b, sizeof b),
                        an);
    if (a == CFG_RELABEL_HASHMOD && !mp_label_name_is_valid(mp_str_c(tl)))
        return cfg_fail(L, tl_at, "%s is invalid 'target_label' for %s action", q(tl, b, sizeof b),
                        an);
    if (a == CFG_RELABEL_KEEPEQUAL || a == CFG_RELABEL_DROPEQUAL) {
        /* upstream compares the regex by identity: any explicit regex counts as set */
        if (cfg_seen_key(s, "regex") || r->modulus != 0 || strcmp(r->separator, ";") != 0 ||
            strcmp(r->replacement, "$1") != 0)
            return cfg_fail(L, at, "%s action requires only 'source_labels' and `target_label`, "
                                   "and no other fields", an);
    }
    if (a == CFG_RELABEL_LABELDROP || a == CFG_RELABEL_LABELKEEP) {
        const yaml_node_t *sl = cfg_seen_value(s, "source_labels");
        if ((sl && !cfg_node_is_null(sl)) || *tl || r->modulus != 0 ||
            strcmp(r->separator, ";") != 0 || strcmp(r->replacement, "$1") != 0)
            return cfg_fail(L, at, "%s action requires only 'regex', and no other fields", an);
    }
    if (!*tl)
        r->target_label = NULL;
    const yaml_node_t *re_at = cfg_seen_value(s, "regex");
    return compile_regex(L, re_at ? re_at : at, r->regex_src, &r->regex);
}

static const struct cfg_field relabel_rows[] = {
    ROWC("source_labels", struct relabel_raw, r.source_labels, dec_label_names),
    ROW("separator", CFG_F_STR, struct relabel_raw, r.separator),
    ROWC("regex", struct relabel_raw, r.regex_src, dec_regex),
    ROW("modulus", CFG_F_U64, struct relabel_raw, r.modulus),
    ROW("target_label", CFG_F_STR, struct relabel_raw, r.target_label),
    ROW("replacement", CFG_F_STR, struct relabel_raw, r.replacement),
    ROWC("action", struct relabel_raw, action, dec_action),
};
static const struct cfg_type relabel_type = {
    .go_name = "relabel.Config",
    .size = sizeof(struct relabel_raw),
    .fields = relabel_rows,
    .nfields = NROWS(relabel_rows),
    .init = relabel_init,
    .check = check_relabel,
};

/* A relabel list decodes into relabel_raw items, then the rules are copied out densely. */
static int dec_relabels_common(struct cfg_loader *L, const yaml_node_t *n, void *member,
                               const char *null_msg)
{
    struct cfg_relabels *out = member;
    out->v = NULL;
    out->n = 0;
    if (cfg_node_is_null(n))
        return 0;
    if (n->type != YAML_SEQUENCE_NODE)
        return cfg_fail(L, n, "cannot unmarshal %s into []*relabel.Config",
                        n->type == YAML_MAPPING_NODE ? "!!map" : "!!str");
    size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    struct cfg_relabel *v = cfg_arena_array(L->cfg, cnt, sizeof *v);
    if (!v)
        return cfg_oom(L);
    for (size_t i = 0; i < cnt; i++) {
        const yaml_node_t *item = cfg_node(L, n->data.sequence.items.start[i]);
        if (cfg_node_is_null(item))
            return cfg_fail(L, item, "%s", null_msg);
        struct relabel_raw raw;
        relabel_init(&raw);
        TRY(cfg_decode_struct(L, item, &relabel_type, &raw));
        v[i] = raw.r;
    }
    out->v = v;
    out->n = cnt;
    return 0;
}

#define RELABEL_DECODER(fn, msg)                                                          \
    static int fn(struct cfg_loader *L, const yaml_node_t *n, void *member)               \
    {                                                                                     \
        return dec_relabels_common(L, n, member, msg);                                    \
    }
RELABEL_DECODER(dec_target_relabels, "empty or null target relabeling rule in scrape config")
RELABEL_DECODER(dec_metric_relabels, "empty or null metric relabeling rule in scrape config")
RELABEL_DECODER(dec_write_relabels, "empty or null relabeling rule in remote write config")
RELABEL_DECODER(dec_alert_relabels, "empty or null alert relabeling rule")
RELABEL_DECODER(dec_am_relabels, "empty or null Alertmanager target relabeling rule")
RELABEL_DECODER(dec_am_alert_relabels, "empty or null Alertmanager alert relabeling rule")
#undef RELABEL_DECODER

/* ---- service discovery ---- */

static const struct cfg_field static_rows[] = {
    ROWN("targets", CFG_F_STRLIST, struct cfg_static_config, targets, ntargets),
    ROWN("labels", CFG_F_LABELS, struct cfg_static_config, labels, nlabels),
};
static const struct cfg_type static_type = {
    .go_name = "targetgroup.Group",
    .size = sizeof(struct cfg_static_config),
    .fields = static_rows,
    .nfields = NROWS(static_rows),
};

static void file_sd_init(void *obj)
{
    struct cfg_file_sd *f = obj;
    memset(f, 0, sizeof *f);
    f->refresh_interval_ms = 5 * MS_MINUTE;
}

/* ^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$ */
static bool file_sd_name_ok(const char *s)
{
    const char *dot = strrchr(s, '.');
    if (!dot)
        return false;
    static const char *const exts[] = {"json", "yml", "yaml", "JSON", "YML", "YAML"};
    bool ext = false;
    for (size_t i = 0; i < NROWS(exts); i++)
        if (strcmp(dot + 1, exts[i]) == 0)
            ext = true;
    if (!ext)
        return false;
    const char *star = strchr(s, '*');
    if (!star)
        return true;
    if (star > dot)
        return false;
    for (const char *p = star + 1; p < dot; p++)
        if (*p == '*' || *p == '/')
            return false;
    return true;
}

static int check_file_sd(struct cfg_loader *L, void *obj, const struct cfg_seen *s)
{
    struct cfg_file_sd *f = obj;
    char b[300];
    if (f->nfiles == 0)
        return cfg_fail(L, s->self, "file service discovery config must contain at least one "
                                    "path name");
    for (size_t i = 0; i < f->nfiles; i++)
        if (!file_sd_name_ok(f->files[i]))
            return cfg_fail(L, cfg_seen_at(s, "files"),
                            "path name %s is not valid for file discovery",
                            q(f->files[i], b, sizeof b));
    return 0;
}

static const struct cfg_field file_sd_rows[] = {
    ROWN("files", CFG_F_STRLIST, struct cfg_file_sd, files, nfiles),
    ROW("refresh_interval", CFG_F_DUR, struct cfg_file_sd, refresh_interval_ms),
};
static const struct cfg_type file_sd_type = {
    .go_name = "file.SDConfig",
    .size = sizeof(struct cfg_file_sd),
    .fields = file_sd_rows,
    .nfields = NROWS(file_sd_rows),
    .init = file_sd_init,
    .check = check_file_sd,
};

static const struct cfg_field selector_rows[] = {
    ROWC("role", struct cfg_k8s_selector, role, dec_role),
    ROW("label", CFG_F_STR, struct cfg_k8s_selector, label),
    ROW("field", CFG_F_STR, struct cfg_k8s_selector, field),
};
static const struct cfg_type selector_type = {
    .go_name = "kubernetes.SelectorConfig",
    .size = sizeof(struct cfg_k8s_selector),
    .fields = selector_rows,
    .nfields = NROWS(selector_rows),
};

struct ns_disc {
    bool own;
    char **names;
    size_t n;
};
static const struct cfg_field ns_rows[] = {
    ROW("own_namespace", CFG_F_BOOL, struct ns_disc, own),
    ROWN("names", CFG_F_STRLIST, struct ns_disc, names, n),
};
static const struct cfg_type ns_type = {
    .go_name = "kubernetes.NamespaceDiscovery",
    .size = sizeof(struct ns_disc),
    .fields = ns_rows,
    .nfields = NROWS(ns_rows),
};

static int dec_namespaces(struct cfg_loader *L, const yaml_node_t *n, void *member)
{
    struct cfg_kubernetes_sd *k =
        (struct cfg_kubernetes_sd *)((char *)member - offsetof(struct cfg_kubernetes_sd,
                                                               own_namespace));
    struct ns_disc d = {0};
    if (!cfg_node_is_null(n))
        TRY(cfg_decode_struct(L, n, &ns_type, &d));
    k->own_namespace = d.own;
    k->namespaces = d.names;
    k->nnamespaces = d.n;
    return 0;
}

struct attach_md {
    bool node;
};
static const struct cfg_field attach_rows[] = {ROW("node", CFG_F_BOOL, struct attach_md, node)};
static const struct cfg_type attach_type = {
    .go_name = "kubernetes.AttachMetadataConfig",
    .size = sizeof(struct attach_md),
    .fields = attach_rows,
    .nfields = NROWS(attach_rows),
};

static int dec_attach(struct cfg_loader *L, const yaml_node_t *n, void *member)
{
    struct attach_md a = {false};
    if (!cfg_node_is_null(n))
        TRY(cfg_decode_struct(L, n, &attach_type, &a));
    *(bool *)member = a.node;
    return 0;
}

/* Kubernetes label selector syntax (apimachinery labels.Parse), enough to reject typos:
 * comma-separated requirements "k", "!k", "k=v", "k==v", "k!=v", "k in (a,b)", "k notin (a)".
 * Field selectors allow only the first forms with "=", "==" and "!=". */
static bool selector_key_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.' || c == '/';
}

static bool selector_ok(const char *s, bool field, const char **why)
{
    const char *p = s;
    while (*p == ' ')
        p++;
    if (!*p)
        return true;
    for (;;) {
        while (*p == ' ')
            p++;
        bool neg = false;
        if (*p == '!' && !field) {
            neg = true;
            p++;
        }
        const char *k = p;
        while (selector_key_char(*p))
            p++;
        if (p == k) {
            *why = "missing key";
            return false;
        }
        while (*p == ' ')
            p++;
        if (neg) {
            /* nothing else allowed */
        } else if (p[0] == '=' || (p[0] == '!' && p[1] == '=')) {
            p += p[0] == '!' ? 2 : (p[1] == '=' ? 2 : 1);
            while (*p == ' ')
                p++;
            while (selector_key_char(*p) || (field && *p && *p != ',' && *p != ' '))
                p++;
        } else if (!field && (strncmp(p, "in", 2) == 0 || strncmp(p, "notin", 5) == 0)) {
            p += p[0] == 'i' ? 2 : 5;
            while (*p == ' ')
                p++;
            if (*p != '(') {
                *why = "expected '(' after set operator";
                return false;
            }
            p++;
            for (;;) {
                while (*p == ' ')
                    p++;
                while (selector_key_char(*p))
                    p++;
                while (*p == ' ')
                    p++;
                if (*p == ',') {
                    p++;
                    continue;
                }
                if (*p == ')') {
                    p++;
                    break;
                }
                *why = "expected ',' or ')' in value set";
                return false;
            }
        } else if (field) {
            *why = "invalid selector: expected '=', '==' or '!='";
            return false;
        } else if (*p != ',' && *p != '\0') {
            *why = "found unexpected token, expected '=', '!=', '==', 'in', 'notin'";
            return false;
        }
        while (*p == ' ')
            p++;
        if (*p == '\0')
            return true;
        if (*p != ',') {
            *why = "found unexpected token, expected ','";
            return false;
        }
        p++;
    }
}

static int check_k8s(struct cfg_loader *L, void *obj, const struct cfg_seen *s)
{
    struct cfg_kubernetes_sd *k = obj;
    char b[300];
    if (k->role == CFG_K8S_ROLE_UNSET)
        return cfg_fail(L, cfg_seen_at(s, "role"),
                        "role missing (one of: pod, service, endpoints, endpointslice, node, "
                        "ingress)");
    TRY(check_http(L, &k->http, s));
    if (k->api_server && !*k->api_server)
        k->api_server = NULL;
    if (k->kubeconfig_file && !*k->kubeconfig_file)
        k->kubeconfig_file = NULL;
    if (k->api_server)
        TRY(check_url(L, s, "api_server", k->api_server, http_schemes));
    if (!k->api_server && !k->kubeconfig_file && !http_is_default(&k->http))
        return cfg_fail(L, s->self, "to use custom HTTP client configuration please provide the "
                                    "'api_server' URL explicitly");
    if (k->api_server && k->kubeconfig_file)
        return cfg_fail(L, cfg_seen_at(s, "kubeconfig_file"),
                        "cannot use 'kubeconfig_file' and 'api_server' simultaneously");
    if (k->kubeconfig_file && !http_is_default(&k->http))
        return cfg_fail(L, cfg_seen_at(s, "kubeconfig_file"),
                        "cannot use custom HTTP client configuration together with "
                        "'kubeconfig_file'");
    if (k->kubeconfig_file && k->own_namespace)
        return cfg_fail(L, cfg_seen_at(s, "namespaces"),
                        "cannot use 'kubeconfig_file' and 'namespaces.own_namespace' "
                        "simultaneously");
    static const unsigned allowed[] = {
        [CFG_K8S_ROLE_POD] = 1u << CFG_K8S_ROLE_POD,
        [CFG_K8S_ROLE_SERVICE] = 1u << CFG_K8S_ROLE_SERVICE,
        [CFG_K8S_ROLE_ENDPOINTS] = 1u << CFG_K8S_ROLE_POD | 1u << CFG_K8S_ROLE_SERVICE |
                                   1u << CFG_K8S_ROLE_ENDPOINTS,
        [CFG_K8S_ROLE_ENDPOINTSLICE] = 1u << CFG_K8S_ROLE_POD | 1u << CFG_K8S_ROLE_SERVICE |
                                       1u << CFG_K8S_ROLE_ENDPOINTSLICE,
        [CFG_K8S_ROLE_NODE] = 1u << CFG_K8S_ROLE_NODE,
        [CFG_K8S_ROLE_INGRESS] = 1u << CFG_K8S_ROLE_INGRESS,
    };
    static const char *const allowed_text[] = {
        [CFG_K8S_ROLE_POD] = "pod",
        [CFG_K8S_ROLE_SERVICE] = "service",
        [CFG_K8S_ROLE_ENDPOINTS] = "pod, service, endpoints",
        [CFG_K8S_ROLE_ENDPOINTSLICE] = "pod, service, endpointslice",
        [CFG_K8S_ROLE_NODE] = "node",
        [CFG_K8S_ROLE_INGRESS] = "ingress",
    };
    unsigned found = 0;
    const yaml_node_t *sel_at = cfg_seen_at(s, "selectors");
    for (size_t i = 0; i < k->nselectors; i++) {
        const struct cfg_k8s_selector *sel = &k->selectors[i];
        unsigned bit = 1u << sel->role;
        if (found & bit)
            return cfg_fail(L, sel_at, "duplicated selector role: %s", role_names[sel->role]);
        found |= bit;
        if (!(allowed[k->role] & bit))
            return cfg_fail(L, sel_at, "%s role supports only %s selectors",
                            role_names[k->role], allowed_text[k->role]);
        const char *why;
        if (sel->field && !selector_ok(sel->field, true, &why))
            return cfg_fail(L, sel_at, "invalid field selector %s: %s",
                            q(sel->field, b, sizeof b), why);
        if (sel->label && !selector_ok(sel->label, false, &why))
            return cfg_fail(L, sel_at, "unable to parse requirement in label selector %s: %s",
                            q(sel->label, b, sizeof b), why);
    }
    return 0;
}

static void k8s_init(void *obj)
{
    struct cfg_kubernetes_sd *k = obj;
    memset(k, 0, sizeof *k);
    http_init(&k->http);
}

static const struct cfg_field k8s_rows[] = {
    ROW("api_server", CFG_F_STR, struct cfg_kubernetes_sd, api_server),
    ROWC("role", struct cfg_kubernetes_sd, role, dec_role),
    ROW("kubeconfig_file", CFG_F_STR, struct cfg_kubernetes_sd, kubeconfig_file),
    ROWC("namespaces", struct cfg_kubernetes_sd, own_namespace, dec_namespaces),
    ROWL("selectors", struct cfg_kubernetes_sd, selectors, nselectors, selector_type,
         "empty or null kubernetes selector"),
    ROWC("attach_metadata", struct cfg_kubernetes_sd, attach_metadata_node, dec_attach),
};
static const struct cfg_inline k8s_inlines[] = {
    {&http_type, offsetof(struct cfg_kubernetes_sd, http)}};
static const struct cfg_type k8s_type = {
    .go_name = "kubernetes.SDConfig",
    .size = sizeof(struct cfg_kubernetes_sd),
    .fields = k8s_rows,
    .nfields = NROWS(k8s_rows),
    .inlines = k8s_inlines,
    .ninlines = NROWS(k8s_inlines),
    .init = k8s_init,
    .check = check_k8s,
};

static const struct cfg_field sd_rows[] = {
    ROWL("static_configs", struct cfg_sd_configs, static_configs, nstatic_configs, static_type,
         "empty or null static config"),
    ROWL("file_sd_configs", struct cfg_sd_configs, file_sd_configs, nfile_sd_configs,
         file_sd_type, "empty or null file_sd config"),
    ROWL("kubernetes_sd_configs", struct cfg_sd_configs, kubernetes_sd_configs,
         nkubernetes_sd_configs, k8s_type, "empty or null kubernetes_sd config"),
};
static const struct cfg_type sd_type = {
    .go_name = "discovery.Configs",
    .size = sizeof(struct cfg_sd_configs),
    .fields = sd_rows,
    .nfields = NROWS(sd_rows),
};

/* checkStaticTargets: with no relabel rules, a URL in a target can only be a mistake. */
static int check_static_targets(struct cfg_loader *L, const struct cfg_sd_configs *sd,
                                const struct cfg_seen *s)
{
    char b[300];
    for (size_t i = 0; i < sd->nstatic_configs; i++)
        for (size_t j = 0; j < sd->static_configs[i].ntargets; j++)
            if (strchr(sd->static_configs[i].targets[j], '/'))
                return cfg_fail(L, cfg_seen_at(s, "static_configs"), "%s is not a valid hostname",
                                q(sd->static_configs[i].targets[j], b, sizeof b));
    return 0;
}

/* ---- scrape configs ---- */

static void scrape_init(void *obj)
{
    struct cfg_scrape_config *c = obj;
    memset(c, 0, sizeof *c);
    c->metrics_path = "/metrics";
    c->scheme = "http";
    c->honor_timestamps = true;
    c->enable_compression = true;
    http_init(&c->http);
}

static int check_scrape(struct cfg_loader *L, void *obj, const struct cfg_seen *s)
{
    struct cfg_scrape_config *c = obj;
    char b[300];
    if (!set(c->job_name))
        return cfg_fail(L, cfg_seen_at(s, "job_name"), "job_name is empty");
    TRY(check_http(L, &c->http, s));
    if (c->relabel_configs.n == 0)
        TRY(check_static_targets(L, &c->sd, s));
    if (!c->scheme || (strcmp(c->scheme, "http") != 0 && strcmp(c->scheme, "https") != 0))
        return cfg_fail(L, cfg_seen_at(s, "scheme"),
                        "invalid scheme %s for scrape config with job name %s: must be http or "
                        "https", q(c->scheme, b, sizeof b), q(c->job_name, b + 150, 150));
    const yaml_node_t *sp = cfg_seen_value(s, "scrape_protocols");
    if (sp && !cfg_node_is_null(sp) && c->nscrape_protocols == 0)
        return cfg_fail(L, sp, "scrape_protocols cannot be empty for scrape config with job "
                               "name %s", q(c->job_name, b, sizeof b));
    return 0;
}

static const struct cfg_field scrape_rows[] = {
    ROW("job_name", CFG_F_STR, struct cfg_scrape_config, job_name),
    ROW("honor_labels", CFG_F_BOOL, struct cfg_scrape_config, honor_labels),
    ROW("honor_timestamps", CFG_F_BOOL, struct cfg_scrape_config, honor_timestamps),
    ROW("track_timestamps_staleness", CFG_F_BOOL, struct cfg_scrape_config,
        track_timestamps_staleness),
    ROWN("params", CFG_F_MULTIMAP, struct cfg_scrape_config, params, nparams),
    ROW("scrape_interval", CFG_F_DUR, struct cfg_scrape_config, scrape_interval_ms),
    ROW("scrape_timeout", CFG_F_DUR, struct cfg_scrape_config, scrape_timeout_ms),
    ROWN("scrape_protocols", CFG_F_STRLIST, struct cfg_scrape_config, scrape_protocols,
         nscrape_protocols),
    ROW("scrape_classic_histograms", CFG_F_BOOL, struct cfg_scrape_config,
        scrape_classic_histograms),
    ROW("scrape_failure_log_file", CFG_F_STR, struct cfg_scrape_config, scrape_failure_log_file),
    ROW("metrics_path", CFG_F_STR, struct cfg_scrape_config, metrics_path),
    ROW("scheme", CFG_F_STR, struct cfg_scrape_config, scheme),
    ROW("enable_compression", CFG_F_BOOL, struct cfg_scrape_config, enable_compression),
    ROW("body_size_limit", CFG_F_BYTES, struct cfg_scrape_config, body_size_limit),
    ROW("sample_limit", CFG_F_SIZE, struct cfg_scrape_config, sample_limit),
    ROW("target_limit", CFG_F_SIZE, struct cfg_scrape_config, target_limit),
    ROW("label_limit", CFG_F_SIZE, struct cfg_scrape_config, label_limit),
    ROW("label_name_length_limit", CFG_F_SIZE, struct cfg_scrape_config, label_name_length_limit),
    ROW("label_value_length_limit", CFG_F_SIZE, struct cfg_scrape_config,
        label_value_length_limit),
    ROW("native_histogram_bucket_limit", CFG_F_SIZE, struct cfg_scrape_config,
        native_histogram_bucket_limit),
    ROW("native_histogram_min_bucket_factor", CFG_F_FLOAT, struct cfg_scrape_config,
        native_histogram_min_bucket_factor),
    ROW("keep_dropped_targets", CFG_F_SIZE, struct cfg_scrape_config, keep_dropped_targets),
    ROW("metric_name_validation_scheme", CFG_F_STR, struct cfg_scrape_config,
        metric_name_validation_scheme),
    ROWC("relabel_configs", struct cfg_scrape_config, relabel_configs, dec_target_relabels),
    ROWC("metric_relabel_configs", struct cfg_scrape_config, metric_relabel_configs,
         dec_metric_relabels),
};
static const struct cfg_inline scrape_inlines[] = {
    {&http_type, offsetof(struct cfg_scrape_config, http)},
    {&sd_type, offsetof(struct cfg_scrape_config, sd)},
};
static const struct cfg_type scrape_type = {
    .go_name = "config.ScrapeConfig",
    .size = sizeof(struct cfg_scrape_config),
    .fields = scrape_rows,
    .nfields = NROWS(scrape_rows),
    .inlines = scrape_inlines,
    .ninlines = NROWS(scrape_inlines),
    .init = scrape_init,
    .check = check_scrape,
};

/* ---- global ---- */

static int check_global(struct cfg_loader *L, void *obj, const struct cfg_seen *s)
{
    struct cfg_global *g = obj;
    int64_t interval = g->scrape_interval_ms ? g->scrape_interval_ms : MS_MINUTE;
    if (g->scrape_timeout_ms > interval)
        return cfg_fail(L, cfg_seen_at(s, "scrape_timeout"),
                        "global scrape timeout greater than scrape interval");
    const yaml_node_t *sp = cfg_seen_value(s, "scrape_protocols");
    if (sp && !cfg_node_is_null(sp) && g->nscrape_protocols == 0)
        return cfg_fail(L, sp, "scrape_protocols cannot be empty for global config");
    return 0;
}

static const struct cfg_field global_rows[] = {
    ROW("scrape_interval", CFG_F_DUR, struct cfg_global, scrape_interval_ms),
    ROW("scrape_timeout", CFG_F_DUR, struct cfg_global, scrape_timeout_ms),
    ROWN("scrape_protocols", CFG_F_STRLIST, struct cfg_global, scrape_protocols,
         nscrape_protocols),
    ROW("evaluation_interval", CFG_F_DUR, struct cfg_global, evaluation_interval_ms),
    ROW("rule_query_offset", CFG_F_DUR, struct cfg_global, rule_query_offset_ms),
    ROW("query_log_file", CFG_F_STR, struct cfg_global, query_log_file),
    ROW("scrape_failure_log_file", CFG_F_STR, struct cfg_global, scrape_failure_log_file),
    ROWN("external_labels", CFG_F_LABELS, struct cfg_global, external_labels, nexternal_labels),
    ROW("body_size_limit", CFG_F_BYTES, struct cfg_global, body_size_limit),
    ROW("sample_limit", CFG_F_SIZE, struct cfg_global, sample_limit),
    ROW("target_limit", CFG_F_SIZE, struct cfg_global, target_limit),
    ROW("label_limit", CFG_F_SIZE, struct cfg_global, label_limit),
    ROW("label_name_length_limit", CFG_F_SIZE, struct cfg_global, label_name_length_limit),
    ROW("label_value_length_limit", CFG_F_SIZE, struct cfg_global, label_value_length_limit),
    ROW("keep_dropped_targets", CFG_F_SIZE, struct cfg_global, keep_dropped_targets),
    ROW("metric_name_validation_scheme", CFG_F_STR, struct cfg_global,
        metric_name_validation_scheme),
};
static const struct cfg_type global_type = {
    .go_name = "config.GlobalConfig",
    .size = sizeof(struct cfg_global),
    .fields = global_rows,
    .nfields = NROWS(global_rows),
    .check = check_global,
};

/* GlobalConfig.UnmarshalYAML defaults: zero means "use the default". */
static void global_defaults(struct cfg_global *g)
{
    if (g->scrape_interval_ms == 0)
        g->scrape_interval_ms = MS_MINUTE;
    if (g->scrape_timeout_ms == 0)
        g->scrape_timeout_ms =
            g->scrape_interval_ms < 10 * MS_SECOND ? g->scrape_interval_ms : 10 * MS_SECOND;
    if (g->evaluation_interval_ms == 0)
        g->evaluation_interval_ms = MS_MINUTE;
    if (!g->scrape_protocols) {
        g->scrape_protocols = (char **)default_scrape_protocols;
        g->nscrape_protocols = NROWS(default_scrape_protocols);
    }
}

/* ---- remote write / read ---- */

static void queue_defaults(struct cfg_queue_config *qc)
{
    memset(qc, 0, sizeof *qc);
    qc->capacity = 10000;
    qc->max_shards = 50;
    qc->min_shards = 1;
    qc->max_samples_per_send = 2000;
    qc->batch_send_deadline_ms = 5 * MS_SECOND;
    qc->min_backoff_ms = 30;
    qc->max_backoff_ms = 5 * MS_SECOND;
}

static const struct cfg_field queue_rows[] = {
    ROW("capacity", CFG_F_INT, struct cfg_queue_config, capacity),
    ROW("max_shards", CFG_F_INT, struct cfg_queue_config, max_shards),
    ROW("min_shards", CFG_F_INT, struct cfg_queue_config, min_shards),
    ROW("max_samples_per_send", CFG_F_INT, struct cfg_queue_config, max_samples_per_send),
    ROW("batch_send_deadline", CFG_F_DUR, struct cfg_queue_config, batch_send_deadline_ms),
    ROW("min_backoff", CFG_F_DUR, struct cfg_queue_config, min_backoff_ms),
    ROW("max_backoff", CFG_F_DUR, struct cfg_queue_config, max_backoff_ms),
    ROW("retry_on_http_429", CFG_F_BOOL, struct cfg_queue_config, retry_on_http_429),
    ROW("sample_age_limit", CFG_F_DUR, struct cfg_queue_config, sample_age_limit_ms),
};
static const struct cfg_type queue_type = {
    .go_name = "config.QueueConfig",
    .size = sizeof(struct cfg_queue_config),
    .fields = queue_rows,
    .nfields = NROWS(queue_rows),
};

static const struct cfg_field metadata_rows[] = {
    ROW("send", CFG_F_BOOL, struct cfg_metadata_config, send),
    ROW("send_interval", CFG_F_DUR, struct cfg_metadata_config, send_interval_ms),
    ROW("max_samples_per_send", CFG_F_INT, struct cfg_metadata_config, max_samples_per_send),
};
static const struct cfg_type metadata_type = {
    .go_name = "config.MetadataConfig",
    .size = sizeof(struct cfg_metadata_config),
    .fields = metadata_rows,
    .nfields = NROWS(metadata_rows),
};

static int check_headers(struct cfg_loader *L, const struct cfg_label *h, size_t n,
                         const struct cfg_seen *s, bool tracing)
{
    static const char *const reserved[] = {
        "host", "content-encoding", "content-length", "content-type", "user-agent",
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
        "www-authenticate", "accept-encoding", "x-prometheus-remote-write-version",
        "x-prometheus-remote-read-version", "x-amz-date", "x-amz-security-token",
        "x-amz-content-sha256", NULL};
    const yaml_node_t *at = cfg_seen_at(s, "headers");
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(h[i].name, "authorization") == 0)
            return cfg_fail(L, at, tracing ? "custom authorization header configuration is not "
                                             "yet supported"
                                           : "authorization header must be changed via the "
                                             "basic_auth, authorization, oauth2, sigv4, or "
                                             "azuread parameter");
        for (const char *const *r = reserved; *r; r++)
            if (strcasecmp(*r, h[i].name) == 0)
                return cfg_fail(L, at, "%s is a reserved header. It must not be changed",
                                h[i].name);
    }
    return 0;
}

static void rw_init(void *obj)
{
    struct cfg_remote_write *w = obj;
    memset(w, 0, sizeof *w);
    w->remote_timeout_ms = 30 * MS_SECOND;
    w->protobuf_message = "prometheus.WriteRequest";
    queue_defaults(&w->queue_config);
    w->metadata_config.send = true;
    w->metadata_config.send_interval_ms = MS_MINUTE;
    w->metadata_config.max_samples_per_send = 2000;
    http_init(&w->http);
    w->http.enable_http2 = false; /* DefaultRemoteWriteHTTPClientConfig */
}

static int check_rw(struct cfg_loader *L, void *obj, const struct cfg_seen *s)
{
    struct cfg_remote_write *w = obj;
    char b[300];
    if (!set(w->url))
        return cfg_fail(L, cfg_seen_at(s, "url"), "url for remote_write is empty");
    TRY(check_url(L, s, "url", w->url, http_schemes));
    TRY(check_headers(L, w->headers, w->nheaders, s, false));
    if (!w->protobuf_message || (strcmp(w->protobuf_message, "prometheus.WriteRequest") != 0 &&
                                 strcmp(w->protobuf_message, "io.prometheus.write.v2.Request") != 0))
        return cfg_fail(L, cfg_seen_at(s, "protobuf_message"),
                        "invalid protobuf_message value: unknown remote write protobuf message "
                        "%s, supported: prometheus.WriteRequest, io.prometheus.write.v2.Request",
                        w->protobuf_message ? w->protobuf_message : "");
    TRY(check_http(L, &w->http, s));
    int nauth = !!w->http.basic_auth + !!w->http.authorization + !!w->http.oauth2 + !!w->sigv4;
    if (nauth > 1)
        return cfg_fail(L, s->self, "at most one of basic_auth, authorization, oauth2, sigv4 & "
                                    "azuread must be configured");
    (void)b;
    return 0;
}

static const struct cfg_field rw_rows[] = {
    ROW("url", CFG_F_STR, struct cfg_remote_write, url),
    ROW("remote_timeout", CFG_F_DUR, struct cfg_remote_write, remote_timeout_ms),
    ROWN("headers", CFG_F_STRMAP, struct cfg_remote_write, headers, nheaders),
    ROWC("write_relabel_configs", struct cfg_remote_write, write_relabel_configs,
         dec_write_relabels),
    ROW("name", CFG_F_STR, struct cfg_remote_write, name),
    ROW("send_exemplars", CFG_F_BOOL, struct cfg_remote_write, send_exemplars),
    ROW("send_native_histograms", CFG_F_BOOL, struct cfg_remote_write, send_native_histograms),
    ROW("protobuf_message", CFG_F_STR, struct cfg_remote_write, protobuf_message),
    ROWT("queue_config", CFG_F_STRUCT, struct cfg_remote_write, queue_config, queue_type),
    ROWT("metadata_config", CFG_F_STRUCT, struct cfg_remote_write, metadata_config,
         metadata_type),
    ROWT("sigv4", CFG_F_PTR, struct cfg_remote_write, sigv4, sigv4_type),
};
static const struct cfg_inline rw_inlines[] = {{&http_type, offsetof(struct cfg_remote_write, http)}};
static const struct cfg_type rw_type = {
    .go_name = "config.RemoteWriteConfig",
    .size = sizeof(struct cfg_remote_write),
    .fields = rw_rows,
    .nfields = NROWS(rw_rows),
    .inlines = rw_inlines,
    .ninlines = NROWS(rw_inlines),
    .init = rw_init,
    .check = check_rw,
};

static void rr_init(void *obj)
{
    struct cfg_remote_read *r = obj;
    memset(r, 0, sizeof *r);
    r->remote_timeout_ms = MS_MINUTE;
    r->filter_external_labels = true;
    http_init(&r->http);
}

static int check_rr(struct cfg_loader *L, void *obj, const struct cfg_seen *s)
{
    struct cfg_remote_read *r = obj;
    if (!set(r->url))
        return cfg_fail(L, cfg_seen_at(s, "url"), "url for remote_read is empty");
    TRY(check_url(L, s, "url", r->url, http_schemes));
    TRY(check_headers(L, r->headers, r->nheaders, s, false));
    return check_http(L, &r->http, s);
}

static const struct cfg_field rr_rows[] = {
    ROW("url", CFG_F_STR, struct cfg_remote_read, url),
    ROW("remote_timeout", CFG_F_DUR, struct cfg_remote_read, remote_timeout_ms),
    ROWN("headers", CFG_F_STRMAP, struct cfg_remote_read, headers, nheaders),
    ROW("read_recent", CFG_F_BOOL, struct cfg_remote_read, read_recent),
    ROW("name", CFG_F_STR, struct cfg_remote_read, name),
    ROWN("required_matchers", CFG_F_LABELS, struct cfg_remote_read, required_matchers,
         nrequired_matchers),
    ROW("filter_external_labels", CFG_F_BOOL, struct cfg_remote_read, filter_external_labels),
};
static const struct cfg_inline rr_inlines[] = {{&http_type, offsetof(struct cfg_remote_read, http)}};
static const struct cfg_type rr_type = {
    .go_name = "config.RemoteReadConfig",
    .size = sizeof(struct cfg_remote_read),
    .fields = rr_rows,
    .nfields = NROWS(rr_rows),
    .inlines = rr_inlines,
    .ninlines = NROWS(rr_inlines),
    .init = rr_init,
    .check = check_rr,
};

/* ---- alerting ---- */

static void am_init(void *obj)
{
    struct cfg_alertmanager *a = obj;
    memset(a, 0, sizeof *a);
    a->scheme = "http";
    a->timeout_ms = 10 * MS_SECOND;
    a->api_version = "v2";
    http_init(&a->http);
}

static int check_am(struct cfg_loader *L, void *obj, const struct cfg_seen *s)
{
    struct cfg_alertmanager *a = obj;
    char b[200];
    TRY(check_http(L, &a->http, s));
    if ((a->http.basic_auth || a->http.authorization || a->http.oauth2) && a->sigv4)
        return cfg_fail(L, s->self, "at most one of basic_auth, authorization, oauth2, & sigv4 "
                                    "must be configured");
    if (a->relabel_configs.n == 0)
        TRY(check_static_targets(L, &a->sd, s));
    if (!a->api_version || strcmp(a->api_version, "v2") != 0)
        return cfg_fail(L, cfg_seen_at(s, "api_version"),
                        "expected Alertmanager api version to be one of [v2] but got %s",
                        a->api_version ? a->api_version : "");
    if (!a->scheme || (strcmp(a->scheme, "http") != 0 && strcmp(a->scheme, "https") != 0))
        return cfg_fail(L, cfg_seen_at(s, "scheme"),
                        "invalid scheme %s for alertmanager config: must be http or https",
                        q(a->scheme, b, sizeof b));
    return 0;
}

static const struct cfg_field am_rows[] = {
    ROWT("sigv4", CFG_F_PTR, struct cfg_alertmanager, sigv4, sigv4_type),
    ROW("scheme", CFG_F_STR, struct cfg_alertmanager, scheme),
    ROW("path_prefix", CFG_F_STR, struct cfg_alertmanager, path_prefix),
    ROW("timeout", CFG_F_DUR, struct cfg_alertmanager, timeout_ms),
    ROW("api_version", CFG_F_STR, struct cfg_alertmanager, api_version),
    ROWC("relabel_configs", struct cfg_alertmanager, relabel_configs, dec_am_relabels),
    ROWC("alert_relabel_configs", struct cfg_alertmanager, alert_relabel_configs,
         dec_am_alert_relabels),
};
static const struct cfg_inline am_inlines[] = {
    {&http_type, offsetof(struct cfg_alertmanager, http)},
    {&sd_type, offsetof(struct cfg_alertmanager, sd)},
};
static const struct cfg_type am_type = {
    .go_name = "config.AlertmanagerConfig",
    .size = sizeof(struct cfg_alertmanager),
    .fields = am_rows,
    .nfields = NROWS(am_rows),
    .inlines = am_inlines,
    .ninlines = NROWS(am_inlines),
    .init = am_init,
    .check = check_am,
};

static const struct cfg_field alerting_rows[] = {
    ROWC("alert_relabel_configs", struct cfg_alerting, alert_relabel_configs, dec_alert_relabels),
    ROWL("alertmanagers", struct cfg_alerting, alertmanagers, nalertmanagers, am_type,
         "empty or null alertmanager config"),
};
static const struct cfg_type alerting_type = {
    .go_name = "config.AlertingConfig",
    .size = sizeof(struct cfg_alerting),
    .fields = alerting_rows,
    .nfields = NROWS(alerting_rows),
};

/* ---- storage, tracing, otlp ---- */

struct tsdb_raw {
    int64_t ooo;
};
static const struct cfg_field tsdb_rows[] = {
    ROW("out_of_order_time_window", CFG_F_DUR, struct tsdb_raw, ooo)};
static const struct cfg_type tsdb_type = {
    .go_name = "config.TSDBConfig",
    .size = sizeof(struct tsdb_raw),
    .fields = tsdb_rows,
    .nfields = NROWS(tsdb_rows),
};

static int dec_tsdb(struct cfg_loader *L, const yaml_node_t *n, void *member)
{
    struct cfg_storage *st = (struct cfg_storage *)((char *)member -
                                                    offsetof(struct cfg_storage, has_tsdb));
    struct tsdb_raw t = {0};
    st->has_tsdb = false;
    if (cfg_node_is_null(n))
        return 0;
    TRY(cfg_decode_struct(L, n, &tsdb_type, &t));
    st->has_tsdb = true;
    st->out_of_order_time_window_ms = t.ooo;
    return 0;
}

struct exemplars_raw {
    int64_t max;
};
static const struct cfg_field exemplars_rows[] = {
    ROW("max_exemplars", CFG_F_I64, struct exemplars_raw, max)};
static const struct cfg_type exemplars_type = {
    .go_name = "config.ExemplarsConfig",
    .size = sizeof(struct exemplars_raw),
    .fields = exemplars_rows,
    .nfields = NROWS(exemplars_rows),
};

static int dec_exemplars(struct cfg_loader *L, const yaml_node_t *n, void *member)
{
    struct cfg_storage *st = (struct cfg_storage *)((char *)member -
                                                    offsetof(struct cfg_storage, has_exemplars));
    struct exemplars_raw e = {100000};
    st->has_exemplars = false;
    st->max_exemplars = 100000;
    if (cfg_node_is_null(n))
        return 0;
    TRY(cfg_decode_struct(L, n, &exemplars_type, &e));
    st->has_exemplars = true;
    st->max_exemplars = e.max;
    return 0;
}

static const struct cfg_field storage_rows[] = {
    ROWC("tsdb", struct cfg_storage, has_tsdb, dec_tsdb),
    ROWC("exemplars", struct cfg_storage, has_exemplars, dec_exemplars),
};
static const struct cfg_type storage_type = {
    .go_name = "config.StorageConfig",
    .size = sizeof(struct cfg_storage),
    .fields = storage_rows,
    .nfields = NROWS(storage_rows),
};

static int check_tracing(struct cfg_loader *L, void *obj, const struct cfg_seen *s)
{
    struct cfg_tracing *t = obj;
    TRY(check_headers(L, t->headers, t->nheaders, s, true));
    if (!set(t->endpoint))
        return cfg_fail(L, s->self, "tracing endpoint must be set");
    if (set(t->compression) && strcmp(t->compression, "gzip") != 0)
        return cfg_fail(L, cfg_seen_at(s, "compression"),
                        "invalid compression type %s provided, valid options: gzip",
                        t->compression);
    if (!t->client_type || (strcmp(t->client_type, "grpc") != 0 &&
                            strcmp(t->client_type, "http") != 0))
        return cfg_fail(L, cfg_seen_at(s, "client_type"),
                        "expected tracing client type to be to be http or grpc, but got %s",
                        t->client_type ? t->client_type : "");
    return 0;
}

static const struct cfg_field tracing_rows[] = {
    ROW("client_type", CFG_F_STR, struct cfg_tracing, client_type),
    ROW("endpoint", CFG_F_STR, struct cfg_tracing, endpoint),
    ROW("sampling_fraction", CFG_F_FLOAT, struct cfg_tracing, sampling_fraction),
    ROW("insecure", CFG_F_BOOL, struct cfg_tracing, insecure),
    ROWT("tls_config", CFG_F_STRUCT, struct cfg_tracing, tls_config, tls_type),
    ROWN("headers", CFG_F_STRMAP, struct cfg_tracing, headers, nheaders),
    ROW("compression", CFG_F_STR, struct cfg_tracing, compression),
    ROW("timeout", CFG_F_DUR, struct cfg_tracing, timeout_ms),
};
static const struct cfg_type tracing_type = {
    .go_name = "config.TracingConfig",
    .size = sizeof(struct cfg_tracing),
    .fields = tracing_rows,
    .nfields = NROWS(tracing_rows),
    .check = check_tracing,
};

static int dec_tracing(struct cfg_loader *L, const yaml_node_t *n, void *member)
{
    struct cfg_tracing *t = member;
    memset(t, 0, sizeof *t);
    if (cfg_node_is_null(n))
        return 0;
    t->client_type = "grpc";
    return cfg_decode_struct(L, n, &tracing_type, t);
}

struct otlp_raw {
    char **attrs;
    size_t n;
};
static const struct cfg_field otlp_rows[] = {
    ROWN("promote_resource_attributes", CFG_F_STRLIST, struct otlp_raw, attrs, n)};
static const struct cfg_type otlp_type = {
    .go_name = "config.OTLPConfig",
    .size = sizeof(struct otlp_raw),
    .fields = otlp_rows,
    .nfields = NROWS(otlp_rows),
};

static int dec_otlp(struct cfg_loader *L, const yaml_node_t *n, void *member)
{
    struct cfg_config *c = (struct cfg_config *)((char *)member -
                                                 offsetof(struct cfg_config,
                                                          otlp_promote_resource_attributes));
    struct otlp_raw o = {0};
    if (!cfg_node_is_null(n))
        TRY(cfg_decode_struct(L, n, &otlp_type, &o));
    c->otlp_promote_resource_attributes = o.attrs;
    c->notlp_promote_resource_attributes = o.n;
    return 0;
}

/* ---- root ---- */

static const struct cfg_field root_rows[] = {
    ROWT("global", CFG_F_STRUCT, struct cfg_config, global, global_type),
    ROWT("alerting", CFG_F_STRUCT, struct cfg_config, alerting, alerting_type),
    ROWN("rule_files", CFG_F_STRLIST, struct cfg_config, rule_files, nrule_files),
    ROWN("scrape_config_files", CFG_F_STRLIST, struct cfg_config, scrape_config_files,
         nscrape_config_files),
    ROWL("scrape_configs", struct cfg_config, scrape_configs, nscrape_configs, scrape_type,
         "empty or null scrape config section"),
    ROWT("storage", CFG_F_STRUCT, struct cfg_config, storage, storage_type),
    ROWC("tracing", struct cfg_config, tracing, dec_tracing),
    ROWL("remote_write", struct cfg_config, remote_write, nremote_write, rw_type,
         "empty or null remote write config section"),
    ROWL("remote_read", struct cfg_config, remote_read, nremote_read, rr_type,
         "empty or null remote read config section"),
    ROWC("otlp", struct cfg_config, otlp_promote_resource_attributes, dec_otlp),
};
static const struct cfg_type root_type = {
    .go_name = "config.Config",
    .size = sizeof(struct cfg_config),
    .fields = root_rows,
    .nfields = NROWS(root_rows),
};

/* ^[^*]*(\*[^/]*)?$ */
static bool rule_path_ok(const char *s)
{
    const char *star = strchr(s, '*');
    return !star || !strpbrk(star + 1, "*/");
}

static int check_protocols(struct cfg_loader *L, const yaml_node_t *at, char **v, size_t n,
                           const char *what)
{
    static const char *const known[] = {"OpenMetricsText0.0.1", "OpenMetricsText1.0.0",
                                        "PrometheusProto", "PrometheusText0.0.4"};
    for (size_t i = 0; i < n; i++) {
        bool ok = false;
        for (size_t k = 0; k < NROWS(known); k++)
            if (strcmp(v[i], known[k]) == 0)
                ok = true;
        if (!ok)
            return cfg_fail(L, at, "scrape_protocols: unknown scrape protocol %s, supported: "
                                   "[OpenMetricsText0.0.1 OpenMetricsText1.0.0 PrometheusProto "
                                   "PrometheusText0.0.4] for %s", v[i], what);
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(v[i], v[j]) == 0)
                return cfg_fail(L, at, "duplicated protocol in scrape_protocols, got %s for %s",
                                v[i], what);
    }
    return 0;
}

static bool scheme_name_ok(const char *s)
{
    return !s || !*s || strcmp(s, "utf8") == 0 || strcmp(s, "legacy") == 0;
}

/* Finds the mapping node of the i-th element of a top-level sequence key, for positions. */
static const yaml_node_t *root_item(struct cfg_loader *L, const yaml_node_t *root,
                                    const char *key, size_t i)
{
    if (!root || root->type != YAML_MAPPING_NODE)
        return root;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        const yaml_node_t *k = cfg_node(L, p->key);
        if (k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, key) == 0) {
            const yaml_node_t *v = cfg_node(L, p->value);
            if (v->type == YAML_SEQUENCE_NODE &&
                i < (size_t)(v->data.sequence.items.top - v->data.sequence.items.start))
                return cfg_node(L, v->data.sequence.items.start[i]);
            return k;
        }
    }
    return root;
}

/* ScrapeConfig.Validate(global): inherit and cap. */
static int scrape_apply_global(struct cfg_loader *L, const yaml_node_t *at,
                               struct cfg_scrape_config *c, const struct cfg_global *g)
{
    char b[200];
    if (c->scrape_interval_ms == 0)
        c->scrape_interval_ms = g->scrape_interval_ms;
    if (c->scrape_timeout_ms > c->scrape_interval_ms)
        return cfg_fail(L, at, "scrape timeout greater than scrape interval for scrape config "
                               "with job name %s", q(c->job_name, b, sizeof b));
    if (c->scrape_timeout_ms == 0)
        c->scrape_timeout_ms = g->scrape_timeout_ms > c->scrape_interval_ms
                                   ? c->scrape_interval_ms
                                   : g->scrape_timeout_ms;
    if (c->body_size_limit == 0)
        c->body_size_limit = g->body_size_limit;
    if (c->sample_limit == 0)
        c->sample_limit = g->sample_limit;
    if (c->target_limit == 0)
        c->target_limit = g->target_limit;
    if (c->label_limit == 0)
        c->label_limit = g->label_limit;
    if (c->label_name_length_limit == 0)
        c->label_name_length_limit = g->label_name_length_limit;
    if (c->label_value_length_limit == 0)
        c->label_value_length_limit = g->label_value_length_limit;
    if (c->keep_dropped_targets == 0)
        c->keep_dropped_targets = g->keep_dropped_targets;
    if (!set(c->scrape_failure_log_file))
        c->scrape_failure_log_file = g->scrape_failure_log_file;
    if (!c->scrape_protocols) {
        c->scrape_protocols = g->scrape_protocols;
        c->nscrape_protocols = g->nscrape_protocols;
    }
    char what[260];
    snprintf(what, sizeof what, "scrape config with job name %s", q(c->job_name, b, sizeof b));
    TRY(check_protocols(L, at, c->scrape_protocols, c->nscrape_protocols, what));
    if (!set(c->metric_name_validation_scheme))
        c->metric_name_validation_scheme = g->metric_name_validation_scheme;
    if (!scheme_name_ok(c->metric_name_validation_scheme))
        return cfg_fail(L, at, "unknown name validation method specified, must be either "
                               "'legacy' or 'utf8', got %s", c->metric_name_validation_scheme);
    return 0;
}

int cfg_schema_load(struct cfg_loader *L, const yaml_node_t *root)
{
    struct cfg_config *cfg = L->cfg;
    char b[300];
    if (root && !cfg_node_is_null(root))
        TRY(cfg_decode_struct(L, root, &root_type, cfg));
    global_defaults(&cfg->global);
    struct cfg_global *g = &cfg->global;
    const yaml_node_t *gat = root_item(L, root, "global", 0);
    TRY(check_protocols(L, gat, g->scrape_protocols, g->nscrape_protocols, "global config"));
    if (!scheme_name_ok(g->metric_name_validation_scheme))
        return cfg_fail(L, gat, "unknown name validation method specified, must be either "
                                "'legacy' or 'utf8', got %s", g->metric_name_validation_scheme);
    for (size_t i = 0; i < cfg->nrule_files; i++)
        if (!rule_path_ok(cfg->rule_files[i]))
            return cfg_fail(L, root_item(L, root, "rule_files", i), "invalid rule file path %s",
                            q(cfg->rule_files[i], b, sizeof b));
    for (size_t i = 0; i < cfg->nscrape_config_files; i++)
        if (!rule_path_ok(cfg->scrape_config_files[i]))
            return cfg_fail(L, root_item(L, root, "scrape_config_files", i),
                            "invalid scrape config file path %s",
                            q(cfg->scrape_config_files[i], b, sizeof b));
    for (size_t i = 0; i < cfg->nscrape_configs; i++) {
        struct cfg_scrape_config *c = &cfg->scrape_configs[i];
        const yaml_node_t *at = root_item(L, root, "scrape_configs", i);
        TRY(scrape_apply_global(L, at, c, g));
    }
    size_t dup = SIZE_MAX;
    if (cfg->nscrape_configs &&
        cfg_first_duplicate((const char *const *)&cfg->scrape_configs[0].job_name,
                            sizeof cfg->scrape_configs[0], cfg->nscrape_configs, false, &dup) != 0)
        return cfg_oom(L);
    if (dup != SIZE_MAX)
        return cfg_fail(L, root_item(L, root, "scrape_configs", dup),
                        "found multiple scrape configs with job name %s",
                        q(cfg->scrape_configs[dup].job_name, b, sizeof b));
    for (size_t i = 0; i < cfg->nremote_write; i++)
        for (size_t j = 0; j < i; j++)
            if (set(cfg->remote_write[i].name) &&
                strcmp(cfg->remote_write[i].name, cfg->remote_write[j].name ? cfg->remote_write[j].name : "") == 0)
                return cfg_fail(L, root_item(L, root, "remote_write", i),
                                "found multiple remote write configs with job name %s",
                                q(cfg->remote_write[i].name, b, sizeof b));
    for (size_t i = 0; i < cfg->nremote_read; i++)
        for (size_t j = 0; j < i; j++)
            if (set(cfg->remote_read[i].name) &&
                strcmp(cfg->remote_read[i].name, cfg->remote_read[j].name ? cfg->remote_read[j].name : "") == 0)
                return cfg_fail(L, root_item(L, root, "remote_read", i),
                                "found multiple remote read configs with job name %s",
                                q(cfg->remote_read[i].name, b, sizeof b));
    if (!cfg->storage.has_exemplars)
        cfg->storage.max_exemplars = 100000;
    return 0;
}

const char *cfg_relabel_action_name(enum cfg_relabel_action a)
{
    return (unsigned)a < NROWS(action_names) ? action_names[a] : "unknown";
}

const char *cfg_k8s_role_name(enum cfg_k8s_role r)
{
    return (unsigned)r < NROWS(role_names) ? role_names[r] : "unknown";
}

const char *cfg_tls_version_name(enum cfg_tls_version v)
{
    static const char *const names[] = {"", "TLS10", "TLS11", "TLS12", "TLS13"};
    return (unsigned)v < NROWS(names) ? names[v] : "unknown";
}

#undef ROW
#undef ROWN
#undef ROWT
#undef ROWL
#undef ROWC
#undef NROWS
#undef TRY
