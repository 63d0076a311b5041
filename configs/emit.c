/* SPDX-License-Identifier: Apache-2.0 */
/* configs/emit.c: a loaded config back to YAML, for /api/v1/status/config.
 *
 * Field order and style follow what Prometheus 2.55 prints (yaml.v2 marshalling of the Go
 * structs): block sequences at the key's indentation, source_labels in flow style, the SD
 * blocks after the relabel rules, bearer tokens shown as authorization, secrets as <secret>.
 * Where Prometheus would drop a value that differs from the default on reload (an empty
 * separator, capacity: 0, filter_external_labels: false) we print it, so that the output
 * always loads back into the same config. */
#include "configs/config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"
#include "common/time.h"
#include "configs/internal.h"

struct em {
    struct mp_buf *b;
    int rc;
};

static void put(struct em *e, const char *s)
{
    if (e->rc == 0)
        e->rc = mp_buf_append_str(e->b, s);
}

static void putn(struct em *e, const char *s, size_t n)
{
    if (e->rc == 0)
        e->rc = mp_buf_append(e->b, s, n);
}

static void pad(struct em *e, int ind)
{
    static const char sp[] = "                                                                ";
    while (ind > 0) {
        int n = ind > 64 ? 64 : ind;
        putn(e, sp, (size_t)n);
        ind -= n;
    }
}

/* Could the plain scalar s be read back as something other than this string? */
static bool needs_quote(const char *s, bool flow)
{
    static const char *const special[] = {"~", "null", "Null", "NULL", "y", "Y", "yes", "Yes",
                                          "YES", "n", "N", "no", "No", "NO", "on", "On", "ON",
                                          "off", "Off", "OFF", "true", "True", "TRUE", "false",
                                          "False", "FALSE", "<<", NULL};
    if (!*s)
        return true;
    for (const char *const *p = special; *p; p++)
        if (strcmp(s, *p) == 0)
            return true;
    if (strchr("-?:,[]{}#&*!|>'\"%@` \t", s[0]))
        return true;
    size_t len = strlen(s);
    if (s[len - 1] == ' ' || s[len - 1] == ':' || s[len - 1] == '\t')
        return true;
    if (strchr("+-.0123456789", s[0]) && strspn(s, "0123456789abcdefABCDEFxXoO_.+-") == len)
        return true;
    if (s[0] == '.' && (strcasecmp(s, ".inf") == 0 || strcasecmp(s, ".nan") == 0))
        return true;
    if (strstr(s, ": ") || strstr(s, " #") || strchr(s, '#'))
        return true;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return true;
    if (flow && strpbrk(s, ",[]{}"))
        return true;
    return false;
}

static void scalar(struct em *e, const char *s, bool flow)
{
    if (!s)
        s = "";
    if (!needs_quote(s, flow)) {
        put(e, s);
        return;
    }
    put(e, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        switch (*p) {
        case '"':
            put(e, "\\\"");
            break;
        case '\\':
            put(e, "\\\\");
            break;
        case '\n':
            put(e, "\\n");
            break;
        case '\t':
            put(e, "\\t");
            break;
        case '\r':
            put(e, "\\r");
            break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                snprintf(esc, sizeof esc, "\\x%02x", *p);
                put(e, esc);
            } else {
                putn(e, (const char *)p, 1);
            }
        }
    }
    put(e, "\"");
}

/* URLs print with any password replaced by xxxxx, as config.URL's MarshalYAML does. */
static void url_scalar(struct em *e, const char *u)
{
    const char *scheme_end = u ? strstr(u, "://") : NULL;
    if (!scheme_end) {
        scalar(e, u, false);
        return;
    }
    const char *host = scheme_end + 3;
    size_t auth_len = strcspn(host, "/?#");
    const char *at = memchr(host, '@', auth_len);
    const char *colon = at ? memchr(host, ':', (size_t)(at - host)) : NULL;
    if (!colon) {
        scalar(e, u, false);
        return;
    }
    size_t n = strlen(u) + 8;
    char *tmp = mp_malloc(n);
    if (!tmp) {
        if (e->rc == 0)
            e->rc = MP_ENOMEM;
        return;
    }
    snprintf(tmp, n, "%.*sxxxxx%s", (int)(colon + 1 - u), u, at);
    scalar(e, tmp, false);
    mp_free(tmp);
}

static void key(struct em *e, int ind, const char *k)
{
    pad(e, ind);
    put(e, k);
    put(e, ":");
}

static void kv_str(struct em *e, int ind, const char *k, const char *v)
{
    key(e, ind, k);
    put(e, " ");
    scalar(e, v, false);
    put(e, "\n");
}

/* omitempty string */
static void kv_opt(struct em *e, int ind, const char *k, const char *v)
{
    if (v && *v)
        kv_str(e, ind, k, v);
}

static void kv_secret(struct em *e, int ind, const char *k, const char *v)
{
    if (v && *v)
        kv_str(e, ind, k, "<secret>");
}

static void kv_bool(struct em *e, int ind, const char *k, bool v)
{
    key(e, ind, k);
    put(e, v ? " true\n" : " false\n");
}

static void kv_u64(struct em *e, int ind, const char *k, uint64_t v)
{
    char b[32];
    snprintf(b, sizeof b, " %llu\n", (unsigned long long)v);
    key(e, ind, k);
    put(e, b);
}

static void kv_i64(struct em *e, int ind, const char *k, int64_t v)
{
    char b[32];
    snprintf(b, sizeof b, " %lld\n", (long long)v);
    key(e, ind, k);
    put(e, b);
}

static void kv_float(struct em *e, int ind, const char *k, double v)
{
    char b[40];
    if (isnan(v)) {
        snprintf(b, sizeof b, ".nan");
    } else if (isinf(v)) {
        snprintf(b, sizeof b, v > 0 ? ".inf" : "-.inf");
    } else {
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(b, sizeof b, "%.*g", prec, v);
            if (strtod(b, NULL) == v)
                break;
        }
    }
    key(e, ind, k);
    put(e, " ");
    put(e, b);
    put(e, "\n");
}

static void kv_dur(struct em *e, int ind, const char *k, int64_t ms)
{
    char b[MP_TIME_FMT_MAX];
    mp_duration_format(ms, b, sizeof b);
    kv_str(e, ind, k, b);
}

void cfg_format_bytes(size_t v, char *buf, size_t cap)
{
    static const char *const units[] = {"EiB", "PiB", "TiB", "GiB", "MiB", "KiB"};
    size_t o = 0;
    buf[0] = '\0';
    if (v == 0) {
        snprintf(buf, cap, "0B");
        return;
    }
    for (int i = 0; i < 6; i++) {
        unsigned shift = (unsigned)(60 - 10 * i);
        uint64_t unit = (uint64_t)1 << shift;
        if ((uint64_t)v >= unit) {
            int n = snprintf(buf + o, cap - o, "%llu%s", (unsigned long long)((uint64_t)v / unit),
                             units[i]);
            if (n < 0 || (size_t)n >= cap - o)
                return;
            o += (size_t)n;
            v = (size_t)((uint64_t)v % unit);
        }
    }
    if (v)
        snprintf(buf + o, cap - o, "%lluB", (unsigned long long)v);
}

static void kv_bytes(struct em *e, int ind, const char *k, size_t v)
{
    char b[96];
    cfg_format_bytes(v, b, sizeof b);
    kv_str(e, ind, k, b);
}

static void strlist(struct em *e, int ind, const char *k, char **v, size_t n, bool secret)
{
    key(e, ind, k);
    put(e, "\n");
    for (size_t i = 0; i < n; i++) {
        pad(e, ind);
        put(e, "- ");
        scalar(e, secret ? "<secret>" : v[i], false);
        put(e, "\n");
    }
}

static void strlist_opt(struct em *e, int ind, const char *k, char **v, size_t n)
{
    if (n)
        strlist(e, ind, k, v, n, false);
}

static void labels(struct em *e, int ind, const char *k, const struct cfg_label *l, size_t n)
{
    if (!n)
        return;
    key(e, ind, k);
    put(e, "\n");
    for (size_t i = 0; i < n; i++) {
        pad(e, ind + 2);
        scalar(e, l[i].name, false);
        put(e, ": ");
        scalar(e, l[i].value, false);
        put(e, "\n");
    }
}

static void multimap(struct em *e, int ind, const char *k, const struct cfg_multi *m, size_t n,
                     bool secret)
{
    if (!n)
        return;
    key(e, ind, k);
    put(e, "\n");
    for (size_t i = 0; i < n; i++) {
        pad(e, ind + 2);
        scalar(e, m[i].name, false);
        put(e, ":");
        if (!m[i].nvalues) {
            put(e, " []\n");
            continue;
        }
        put(e, "\n");
        for (size_t j = 0; j < m[i].nvalues; j++) {
            pad(e, ind + 2);
            put(e, "- ");
            scalar(e, secret ? "<secret>" : m[i].values[j], false);
            put(e, "\n");
        }
    }
}

/* A list item starts with "- " at ind; its keys then sit at ind + 2. The first key of the
 * item must not be indented again, so items are written through this flag. */
struct item {
    struct em *e;
    int ind;
    bool first;
};

static int item_ind(struct item *it)
{
    if (it->first) {
        pad(it->e, it->ind);
        put(it->e, "- ");
        it->first = false;
        return 0;
    }
    return it->ind + 2;
}

/* ---- HTTP client ---- */

static bool tls_zero(const struct cfg_tls_config *t)
{
    return !t->ca && !t->cert && !t->key && !t->ca_file && !t->cert_file && !t->key_file &&
           !t->server_name && !t->insecure_skip_verify && !t->min_version && !t->max_version;
}

/* Keys of a non-zero TLS block at ind (the "tls_config:" line is the caller's). */
static void emit_tls_body(struct em *e, int ind, const struct cfg_tls_config *t)
{
    kv_opt(e, ind, "ca", t->ca);
    kv_opt(e, ind, "cert", t->cert);
    kv_secret(e, ind, "key", t->key);
    kv_opt(e, ind, "ca_file", t->ca_file);
    kv_opt(e, ind, "cert_file", t->cert_file);
    kv_opt(e, ind, "key_file", t->key_file);
    kv_opt(e, ind, "server_name", t->server_name);
    kv_bool(e, ind, "insecure_skip_verify", t->insecure_skip_verify);
    if (t->min_version)
        kv_str(e, ind, "min_version", cfg_tls_version_name(t->min_version));
    if (t->max_version)
        kv_str(e, ind, "max_version", cfg_tls_version_name(t->max_version));
}

static void emit_tls(struct em *e, int ind, const struct cfg_tls_config *t)
{
    if (tls_zero(t))
        return;
    key(e, ind, "tls_config");
    put(e, "\n");
    emit_tls_body(e, ind + 2, t);
}

static void emit_proxy(struct em *e, int ind, const struct cfg_proxy *p)
{
    if (p->proxy_url && *p->proxy_url) {
        key(e, ind, "proxy_url");
        put(e, " ");
        url_scalar(e, p->proxy_url);
        put(e, "\n");
    }
    kv_opt(e, ind, "no_proxy", p->no_proxy);
    if (p->proxy_from_environment)
        kv_bool(e, ind, "proxy_from_environment", true);
    multimap(e, ind, "proxy_connect_header", p->proxy_connect_header, p->nproxy_connect_header,
             true);
}

/* The inline HTTPClientConfig block; ind0 is where the first key goes (see struct item). */
static void emit_http(struct em *e, struct item *it, const struct cfg_http_client *h)
{
    int ind;
    if (h->basic_auth) {
        ind = item_ind(it);
        pad(e, ind);
        put(e, "basic_auth:\n");
        ind = it->ind + 4;
        kv_str(e, ind, "username", h->basic_auth->username);
        kv_opt(e, ind, "username_file", h->basic_auth->username_file);
        kv_secret(e, ind, "password", h->basic_auth->password);
        kv_opt(e, ind, "password_file", h->basic_auth->password_file);
    }
    if (h->authorization) {
        ind = item_ind(it);
        pad(e, ind);
        put(e, "authorization:\n");
        ind = it->ind + 4;
        kv_opt(e, ind, "type", h->authorization->type);
        kv_secret(e, ind, "credentials", h->authorization->credentials);
        kv_opt(e, ind, "credentials_file", h->authorization->credentials_file);
    }
    if (h->oauth2) {
        const struct cfg_oauth2 *o = h->oauth2;
        ind = item_ind(it);
        pad(e, ind);
        put(e, "oauth2:\n");
        ind = it->ind + 4;
        kv_str(e, ind, "client_id", o->client_id);
        if (o->client_secret && *o->client_secret)
            kv_str(e, ind, "client_secret", "<secret>");
        kv_opt(e, ind, "client_secret_file", o->client_secret_file);
        strlist_opt(e, ind, "scopes", o->scopes, o->nscopes);
        kv_str(e, ind, "token_url", o->token_url);
        labels(e, ind, "endpoint_params", o->endpoint_params, o->nendpoint_params);
        emit_tls(e, ind, &o->tls_config);
        emit_proxy(e, ind, &o->proxy);
    }
    if (!tls_zero(&h->tls_config)) {
        ind = item_ind(it);
        pad(e, ind);
        put(e, "tls_config:\n");
        emit_tls_body(e, it->ind + 4, &h->tls_config);
    }
    ind = item_ind(it);
    kv_bool(e, ind, "follow_redirects", h->follow_redirects);
    ind = it->ind + 2;
    kv_bool(e, ind, "enable_http2", h->enable_http2);
    emit_proxy(e, ind, &h->proxy);
    if (h->nhttp_headers) {
        key(e, ind, "http_headers");
        put(e, "\n");
        for (size_t i = 0; i < h->nhttp_headers; i++) {
            const struct cfg_http_header *hh = &h->http_headers[i];
            pad(e, ind + 2);
            scalar(e, hh->name, false);
            put(e, ":\n");
            if (hh->nvalues)
                strlist(e, ind + 4, "values", hh->values, hh->nvalues, false);
            if (hh->nsecrets)
                strlist(e, ind + 4, "secrets", hh->secrets, hh->nsecrets, true);
            if (hh->nfiles)
                strlist(e, ind + 4, "files", hh->files, hh->nfiles, false);
            if (!hh->nvalues && !hh->nsecrets && !hh->nfiles) {
                pad(e, ind + 4);
                put(e, "values: []\n");
            }
        }
    }
}

/* ---- relabeling ---- */

static void emit_relabels(struct em *e, int ind, const char *k, const struct cfg_relabels *rs)
{
    if (!rs->n)
        return;
    key(e, ind, k);
    put(e, "\n");
    for (size_t i = 0; i < rs->n; i++) {
        const struct cfg_relabel *r = &rs->v[i];
        bool equal = r->action == CFG_RELABEL_KEEPEQUAL || r->action == CFG_RELABEL_DROPEQUAL;
        pad(e, ind);
        put(e, "- ");
        bool first = true;
        if (r->nsource_labels) {
            put(e, "source_labels: [");
            for (size_t j = 0; j < r->nsource_labels; j++) {
                if (j)
                    put(e, ", ");
                scalar(e, r->source_labels[j], true);
            }
            put(e, "]\n");
            first = false;
        }
        /* separator is never omitted: an empty one must not turn back into ";" */
        if (first) {
            put(e, "separator: ");
            scalar(e, r->separator, false);
            put(e, "\n");
        } else {
            kv_str(e, ind + 2, "separator", r->separator);
        }
        if (!equal)
            kv_str(e, ind + 2, "regex", r->regex_src);
        if (r->modulus)
            kv_u64(e, ind + 2, "modulus", r->modulus);
        kv_opt(e, ind + 2, "target_label", r->target_label);
        kv_str(e, ind + 2, "replacement", r->replacement);
        kv_str(e, ind + 2, "action", cfg_relabel_action_name(r->action));
    }
}

/* ---- service discovery ---- */

static void emit_sd(struct em *e, int ind, const struct cfg_sd_configs *sd)
{
    if (sd->nfile_sd_configs) {
        key(e, ind, "file_sd_configs");
        put(e, "\n");
        for (size_t i = 0; i < sd->nfile_sd_configs; i++) {
            const struct cfg_file_sd *f = &sd->file_sd_configs[i];
            pad(e, ind);
            put(e, "- files:");
            put(e, f->nfiles ? "\n" : " []\n");
            for (size_t j = 0; j < f->nfiles; j++) {
                pad(e, ind + 2);
                put(e, "- ");
                scalar(e, f->files[j], false);
                put(e, "\n");
            }
            kv_dur(e, ind + 2, "refresh_interval", f->refresh_interval_ms);
        }
    }
    if (sd->nkubernetes_sd_configs) {
        key(e, ind, "kubernetes_sd_configs");
        put(e, "\n");
        for (size_t i = 0; i < sd->nkubernetes_sd_configs; i++) {
            const struct cfg_kubernetes_sd *k = &sd->kubernetes_sd_configs[i];
            int in = ind + 2;
            pad(e, ind);
            put(e, "- ");
            if (k->api_server) {
                put(e, "api_server: ");
                url_scalar(e, k->api_server);
                put(e, "\n");
                kv_str(e, in, "role", cfg_k8s_role_name(k->role));
            } else {
                put(e, "role: ");
                put(e, cfg_k8s_role_name(k->role));
                put(e, "\n");
            }
            kv_str(e, in, "kubeconfig_file", k->kubeconfig_file ? k->kubeconfig_file : "");
            struct item it = {e, ind, false};
            emit_http(e, &it, &k->http);
            if (k->own_namespace || k->nnamespaces) {
                key(e, in, "namespaces");
                put(e, "\n");
                kv_bool(e, in + 2, "own_namespace", k->own_namespace);
                if (k->nnamespaces)
                    strlist(e, in + 2, "names", k->namespaces, k->nnamespaces, false);
                else {
                    pad(e, in + 2);
                    put(e, "names: []\n");
                }
            }
            if (k->nselectors) {
                key(e, in, "selectors");
                put(e, "\n");
                for (size_t j = 0; j < k->nselectors; j++) {
                    pad(e, in);
                    put(e, "- role: ");
                    put(e, cfg_k8s_role_name(k->selectors[j].role));
                    put(e, "\n");
                    kv_opt(e, in + 2, "label", k->selectors[j].label);
                    kv_opt(e, in + 2, "field", k->selectors[j].field);
                }
            }
            if (k->attach_metadata_node) {
                key(e, in, "attach_metadata");
                put(e, "\n");
                kv_bool(e, in + 2, "node", true);
            }
        }
    }
    if (sd->nstatic_configs) {
        key(e, ind, "static_configs");
        put(e, "\n");
        for (size_t i = 0; i < sd->nstatic_configs; i++) {
            const struct cfg_static_config *s = &sd->static_configs[i];
            pad(e, ind);
            put(e, "- targets:");
            if (!s->ntargets)
                put(e, " []");
            put(e, "\n");
            for (size_t j = 0; j < s->ntargets; j++) {
                pad(e, ind + 2);
                put(e, "- ");
                scalar(e, s->targets[j], false);
                put(e, "\n");
            }
            labels(e, ind + 2, "labels", s->labels, s->nlabels);
        }
    }
}

/* ---- sections ---- */

static void emit_global(struct em *e, const struct cfg_global *g)
{
    put(e, "global:\n");
    kv_dur(e, 2, "scrape_interval", g->scrape_interval_ms);
    kv_dur(e, 2, "scrape_timeout", g->scrape_timeout_ms);
    strlist_opt(e, 2, "scrape_protocols", g->scrape_protocols, g->nscrape_protocols);
    kv_dur(e, 2, "evaluation_interval", g->evaluation_interval_ms);
    if (g->rule_query_offset_ms)
        kv_dur(e, 2, "rule_query_offset", g->rule_query_offset_ms);
    kv_opt(e, 2, "query_log_file", g->query_log_file);
    kv_opt(e, 2, "scrape_failure_log_file", g->scrape_failure_log_file);
    labels(e, 2, "external_labels", g->external_labels, g->nexternal_labels);
    if (g->body_size_limit)
        kv_bytes(e, 2, "body_size_limit", g->body_size_limit);
    if (g->sample_limit)
        kv_u64(e, 2, "sample_limit", g->sample_limit);
    if (g->target_limit)
        kv_u64(e, 2, "target_limit", g->target_limit);
    if (g->label_limit)
        kv_u64(e, 2, "label_limit", g->label_limit);
    if (g->label_name_length_limit)
        kv_u64(e, 2, "label_name_length_limit", g->label_name_length_limit);
    if (g->label_value_length_limit)
        kv_u64(e, 2, "label_value_length_limit", g->label_value_length_limit);
    if (g->keep_dropped_targets)
        kv_u64(e, 2, "keep_dropped_targets", g->keep_dropped_targets);
    kv_opt(e, 2, "metric_name_validation_scheme", g->metric_name_validation_scheme);
}

static void emit_scrape(struct em *e, const struct cfg_scrape_config *c)
{
    put(e, "- job_name: ");
    scalar(e, c->job_name, false);
    put(e, "\n");
    if (c->honor_labels)
        kv_bool(e, 2, "honor_labels", true);
    kv_bool(e, 2, "honor_timestamps", c->honor_timestamps);
    kv_bool(e, 2, "track_timestamps_staleness", c->track_timestamps_staleness);
    multimap(e, 2, "params", c->params, c->nparams, false);
    kv_dur(e, 2, "scrape_interval", c->scrape_interval_ms);
    kv_dur(e, 2, "scrape_timeout", c->scrape_timeout_ms);
    strlist_opt(e, 2, "scrape_protocols", c->scrape_protocols, c->nscrape_protocols);
    if (c->scrape_classic_histograms)
        kv_bool(e, 2, "scrape_classic_histograms", true);
    kv_opt(e, 2, "scrape_failure_log_file", c->scrape_failure_log_file);
    kv_str(e, 2, "metrics_path", c->metrics_path);
    kv_str(e, 2, "scheme", c->scheme);
    kv_bool(e, 2, "enable_compression", c->enable_compression);
    if (c->body_size_limit)
        kv_bytes(e, 2, "body_size_limit", c->body_size_limit);
    if (c->sample_limit)
        kv_u64(e, 2, "sample_limit", c->sample_limit);
    if (c->target_limit)
        kv_u64(e, 2, "target_limit", c->target_limit);
    if (c->label_limit)
        kv_u64(e, 2, "label_limit", c->label_limit);
    if (c->label_name_length_limit)
        kv_u64(e, 2, "label_name_length_limit", c->label_name_length_limit);
    if (c->label_value_length_limit)
        kv_u64(e, 2, "label_value_length_limit", c->label_value_length_limit);
    if (c->native_histogram_bucket_limit)
        kv_u64(e, 2, "native_histogram_bucket_limit", c->native_histogram_bucket_limit);
    if (c->native_histogram_min_bucket_factor != 0)
        kv_float(e, 2, "native_histogram_min_bucket_factor",
                 c->native_histogram_min_bucket_factor);
    if (c->keep_dropped_targets)
        kv_u64(e, 2, "keep_dropped_targets", c->keep_dropped_targets);
    kv_opt(e, 2, "metric_name_validation_scheme", c->metric_name_validation_scheme);
    struct item it = {e, 0, false};
    emit_http(e, &it, &c->http);
    emit_relabels(e, 2, "relabel_configs", &c->relabel_configs);
    emit_relabels(e, 2, "metric_relabel_configs", &c->metric_relabel_configs);
    emit_sd(e, 2, &c->sd);
}

static void emit_sigv4(struct em *e, int ind, const struct cfg_sigv4 *s)
{
    if (!s)
        return;
    key(e, ind, "sigv4");
    put(e, "\n");
    kv_opt(e, ind + 2, "region", s->region);
    kv_opt(e, ind + 2, "access_key", s->access_key);
    kv_secret(e, ind + 2, "secret_key", s->secret_key);
    kv_opt(e, ind + 2, "profile", s->profile);
    kv_opt(e, ind + 2, "role_arn", s->role_arn);
    if (!s->region && !s->access_key && !s->secret_key && !s->profile && !s->role_arn) {
        pad(e, ind + 2);
        put(e, "region: \"\"\n");
    }
}

static void emit_alerting(struct em *e, const struct cfg_alerting *a)
{
    if (!a->alert_relabel_configs.n && !a->nalertmanagers)
        return;
    put(e, "alerting:\n");
    emit_relabels(e, 2, "alert_relabel_configs", &a->alert_relabel_configs);
    if (!a->nalertmanagers)
        return;
    put(e, "  alertmanagers:\n");
    for (size_t i = 0; i < a->nalertmanagers; i++) {
        const struct cfg_alertmanager *am = &a->alertmanagers[i];
        struct item it = {e, 2, true};
        emit_http(e, &it, &am->http);
        emit_sigv4(e, 4, am->sigv4);
        kv_str(e, 4, "scheme", am->scheme);
        kv_opt(e, 4, "path_prefix", am->path_prefix);
        kv_dur(e, 4, "timeout", am->timeout_ms);
        kv_str(e, 4, "api_version", am->api_version);
        emit_relabels(e, 4, "relabel_configs", &am->relabel_configs);
        emit_relabels(e, 4, "alert_relabel_configs", &am->alert_relabel_configs);
        emit_sd(e, 4, &am->sd);
    }
}

static void emit_remote_write(struct em *e, const struct cfg_remote_write *w)
{
    put(e, "- url: ");
    url_scalar(e, w->url);
    put(e, "\n");
    kv_dur(e, 2, "remote_timeout", w->remote_timeout_ms);
    labels(e, 2, "headers", w->headers, w->nheaders);
    emit_relabels(e, 2, "write_relabel_configs", &w->write_relabel_configs);
    kv_opt(e, 2, "name", w->name);
    if (w->send_exemplars)
        kv_bool(e, 2, "send_exemplars", true);
    if (w->send_native_histograms)
        kv_bool(e, 2, "send_native_histograms", true);
    kv_str(e, 2, "protobuf_message", w->protobuf_message);
    struct item it = {e, 0, false};
    emit_http(e, &it, &w->http);
    const struct cfg_queue_config *qc = &w->queue_config;
    put(e, "  queue_config:\n");
    kv_i64(e, 4, "capacity", qc->capacity);
    kv_i64(e, 4, "max_shards", qc->max_shards);
    kv_i64(e, 4, "min_shards", qc->min_shards);
    kv_i64(e, 4, "max_samples_per_send", qc->max_samples_per_send);
    kv_dur(e, 4, "batch_send_deadline", qc->batch_send_deadline_ms);
    kv_dur(e, 4, "min_backoff", qc->min_backoff_ms);
    kv_dur(e, 4, "max_backoff", qc->max_backoff_ms);
    if (qc->retry_on_http_429)
        kv_bool(e, 4, "retry_on_http_429", true);
    if (qc->sample_age_limit_ms)
        kv_dur(e, 4, "sample_age_limit", qc->sample_age_limit_ms);
    put(e, "  metadata_config:\n");
    kv_bool(e, 4, "send", w->metadata_config.send);
    kv_dur(e, 4, "send_interval", w->metadata_config.send_interval_ms);
    kv_i64(e, 4, "max_samples_per_send", w->metadata_config.max_samples_per_send);
    emit_sigv4(e, 2, w->sigv4);
}

static void emit_remote_read(struct em *e, const struct cfg_remote_read *r)
{
    put(e, "- url: ");
    url_scalar(e, r->url);
    put(e, "\n");
    kv_dur(e, 2, "remote_timeout", r->remote_timeout_ms);
    labels(e, 2, "headers", r->headers, r->nheaders);
    if (r->read_recent)
        kv_bool(e, 2, "read_recent", true);
    kv_opt(e, 2, "name", r->name);
    struct item it = {e, 0, false};
    emit_http(e, &it, &r->http);
    labels(e, 2, "required_matchers", r->required_matchers, r->nrequired_matchers);
    kv_bool(e, 2, "filter_external_labels", r->filter_external_labels);
}

int cfg_config_to_yaml(const struct cfg_config *cfg, struct mp_buf *out)
{
    struct em em = {out, 0}, *e = &em;
    emit_global(e, &cfg->global);
    emit_alerting(e, &cfg->alerting);
    strlist_opt(e, 0, "rule_files", cfg->rule_files, cfg->nrule_files);
    strlist_opt(e, 0, "scrape_config_files", cfg->scrape_config_files, cfg->nscrape_config_files);
    if (cfg->nscrape_configs) {
        put(e, "scrape_configs:\n");
        for (size_t i = 0; i < cfg->nscrape_configs; i++)
            emit_scrape(e, &cfg->scrape_configs[i]);
    }
    if (cfg->storage.has_tsdb || cfg->storage.has_exemplars) {
        put(e, "storage:\n");
        if (cfg->storage.has_tsdb) {
            put(e, "  tsdb:\n");
            kv_dur(e, 4, "out_of_order_time_window", cfg->storage.out_of_order_time_window_ms);
        }
        if (cfg->storage.has_exemplars) {
            put(e, "  exemplars:\n");
            kv_i64(e, 4, "max_exemplars", cfg->storage.max_exemplars);
        }
    }
    const struct cfg_tracing *t = &cfg->tracing;
    if (t->endpoint) {
        put(e, "tracing:\n");
        kv_str(e, 2, "client_type", t->client_type);
        kv_str(e, 2, "endpoint", t->endpoint);
        if (t->sampling_fraction != 0)
            kv_float(e, 2, "sampling_fraction", t->sampling_fraction);
        if (t->insecure)
            kv_bool(e, 2, "insecure", true);
        emit_tls(e, 2, &t->tls_config);
        labels(e, 2, "headers", t->headers, t->nheaders);
        kv_opt(e, 2, "compression", t->compression);
        if (t->timeout_ms)
            kv_dur(e, 2, "timeout", t->timeout_ms);
    }
    if (cfg->nremote_write) {
        put(e, "remote_write:\n");
        for (size_t i = 0; i < cfg->nremote_write; i++)
            emit_remote_write(e, &cfg->remote_write[i]);
    }
    if (cfg->nremote_read) {
        put(e, "remote_read:\n");
        for (size_t i = 0; i < cfg->nremote_read; i++)
            emit_remote_read(e, &cfg->remote_read[i]);
    }
    if (cfg->notlp_promote_resource_attributes) {
        put(e, "otlp:\n");
        strlist(e, 2, "promote_resource_attributes", cfg->otlp_promote_resource_attributes,
                cfg->notlp_promote_resource_attributes, false);
    }
    return e->rc;
}
