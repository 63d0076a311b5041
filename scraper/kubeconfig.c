/* SPDX-License-Identifier: Apache-2.0 */
/* scraper/kubeconfig.c: kubernetes_sd_configs.kubeconfig_file (kubernetes-sd.md 1.8 (b)),
 * read as client-go's clientcmd does for Prometheus's BuildConfigFromFlags("", path):
 *
 *   current-context --contexts[name]--> {cluster, user}
 *     cluster --clusters[name]--> server, certificate-authority(-data),
 *                                 insecure-skip-tls-verify, tls-server-name, proxy-url
 *     user    --users[name]-->    token | tokenFile, username/password,
 *                                 client-certificate(-data), client-key(-data)
 *
 * then checked as DirectClientConfig.ConfirmUsable (validateAuthInfo, validateClusterInfo)
 * and turned into a struct cfg_http_client for scraper/httpc.c. Contract in scraper/httpc.h. */
#include "scraper/httpc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "common/alloc.h"
#include "common/str.h"

#define KUBECONFIG_LIMIT ((size_t)16 << 20)
#define MAX_ERRORS 8

struct kcluster {
    const char *server, *ca, *ca_data, *tls_server_name, *proxy_url;
    bool insecure, any;
};

struct kuser {
    const char *token, *token_file, *cert, *cert_data, *key, *key_data, *username, *password;
    bool any;
};

struct errs {
    char msg[MAX_ERRORS][512];
    size_t n;
};

static void errs_add(struct errs *e, const char *fmt, ...) MP_PRINTF(2, 3);
static void errs_add(struct errs *e, const char *fmt, ...)
{
    if (e->n == MAX_ERRORS)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg[e->n], sizeof e->msg[0], fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < e->n; i++) /* utilerrors.NewAggregate drops repeats */
        if (strcmp(e->msg[i], e->msg[e->n]) == 0)
            return;
    e->n++;
}

/* ---- YAML access (document API: nodes are looked up, never copied) ----------------------- */

static yaml_node_t *map_get(yaml_document_t *d, yaml_node_t *m, const char *key)
{
    if (m == NULL || m->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(d, p->key);
        if (k != NULL && k->type == YAML_SCALAR_NODE &&
            strcmp((const char *)k->data.scalar.value, key) == 0)
            return yaml_document_get_node(d, p->value);
    }
    return NULL;
}

/* A scalar's text; NULL when absent, empty, null or not a scalar. */
static const char *map_str(yaml_document_t *d, yaml_node_t *m, const char *key)
{
    yaml_node_t *v = map_get(d, m, key);
    if (v == NULL || v->type != YAML_SCALAR_NODE || v->data.scalar.length == 0)
        return NULL;
    const char *s = (const char *)v->data.scalar.value;
    if (v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
        (strcmp(s, "null") == 0 || strcmp(s, "~") == 0))
        return NULL;
    return s;
}

static bool map_bool(yaml_document_t *d, yaml_node_t *m, const char *key)
{
    const char *s = map_str(d, m, key);
    return s != NULL &&
           (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0);
}

/* The inner mapping (under inner) of the entry of list key whose name is name. */
static yaml_node_t *named(yaml_document_t *d, yaml_node_t *root, const char *list,
                          const char *inner, const char *name)
{
    yaml_node_t *seq = map_get(d, root, list);
    if (seq == NULL || seq->type != YAML_SEQUENCE_NODE || name == NULL)
        return NULL;
    for (yaml_node_item_t *i = seq->data.sequence.items.start; i < seq->data.sequence.items.top;
         i++) {
        yaml_node_t *e = yaml_document_get_node(d, *i);
        const char *n = map_str(d, e, "name");
        if (n != NULL && strcmp(n, name) == 0) {
            yaml_node_t *v = map_get(d, e, inner);
            return v ? v : e; /* an entry without the inner map is an empty one */
        }
    }
    return NULL;
}

/* ---- conversion ------------------------------------------------------------------------------ */

/* path relative to the kubeconfig's directory (clientcmd ResolveLocalPaths), absolute. */
static char *resolve(const char *dir, const char *p)
{
    if (p == NULL)
        return NULL;
    if (p[0] == '/')
        return mp_xstrdup(p);
    struct mp_buf b;
    mp_buf_init(&b, 0);
    if (mp_buf_appendf(&b, "%s/%s", dir, p) != 0)
        mp_panic("kubeconfig: path too long");
    return mp_buf_take(&b, NULL);
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char cwd[4096];
    struct mp_buf b;
    mp_buf_init(&b, 0);
    int rc = 0;
    if (path[0] != '/') {
        if (getcwd(cwd, sizeof cwd) == NULL)
            snprintf(cwd, sizeof cwd, ".");
        rc = mp_buf_appendf(&b, "%s", cwd);
        if (rc == 0 && slash != NULL)
            rc = mp_buf_appendf(&b, "/%.*s", (int)(slash - path), path);
    } else {
        rc = mp_buf_appendf(&b, "%.*s", (int)(slash == path ? 1 : slash - path), path);
    }
    if (rc != 0)
        mp_panic("kubeconfig: path too long");
    return mp_buf_take(&b, NULL);
}

static int decode_data(const char *path, const char *b64, char **out, struct mp_err *err)
{
    size_t n;
    int rc = scrape_httpc_base64_decode(b64, strlen(b64), out, &n, err);
    if (rc != 0)
        mp_err_wrap(err, "error loading config file \"%s\"", path);
    return rc;
}

static void read_cluster(yaml_document_t *d, yaml_node_t *m, struct kcluster *c)
{
    memset(c, 0, sizeof *c);
    if (m == NULL)
        return;
    c->server = map_str(d, m, "server");
    c->ca = map_str(d, m, "certificate-authority");
    c->ca_data = map_str(d, m, "certificate-authority-data");
    c->tls_server_name = map_str(d, m, "tls-server-name");
    c->proxy_url = map_str(d, m, "proxy-url");
    c->insecure = map_bool(d, m, "insecure-skip-tls-verify");
    c->any = c->server || c->ca || c->ca_data || c->tls_server_name || c->proxy_url || c->insecure;
}

static void read_user(yaml_document_t *d, yaml_node_t *m, struct kuser *u)
{
    memset(u, 0, sizeof *u);
    if (m == NULL)
        return;
    u->token = map_str(d, m, "token");
    u->token_file = map_str(d, m, "tokenFile");
    u->cert = map_str(d, m, "client-certificate");
    u->cert_data = map_str(d, m, "client-certificate-data");
    u->key = map_str(d, m, "client-key");
    u->key_data = map_str(d, m, "client-key-data");
    u->username = map_str(d, m, "username");
    u->password = map_str(d, m, "password");
}

/* clientcmd validateAuthInfo. */
static void check_user(const char *name, struct kuser *u, const char *dir, struct errs *e)
{
    const char *methods[3];
    size_t nm = 0;
    char why[600];
    if (u->token != NULL)
        methods[nm++] = "token";
    if (u->username != NULL || u->password != NULL)
        methods[nm++] = "basicAuth";
    if (u->cert != NULL || u->cert_data != NULL) {
        if (u->cert != NULL && u->cert_data != NULL)
            errs_add(e,
                     "client-cert-data and client-cert are both specified for %s. "
                     "client-cert-data will override.",
                     name);
        if (u->key != NULL && u->key_data != NULL)
            errs_add(e,
                     "client-key-data and client-key are both specified for %s; "
                     "client-key-data will override",
                     name);
        if (u->key == NULL && u->key_data == NULL)
            errs_add(e,
                     "client-key-data or client-key must be specified for %s to use the "
                     "clientCert authentication method.",
                     name);
        char *p = resolve(dir, u->cert);
        if (p != NULL && !scrape_httpc_readable(p, why, sizeof why))
            errs_add(e, "unable to read client-cert %s for %s due to %s", p, name, why);
        mp_free(p);
        p = resolve(dir, u->key);
        if (p != NULL && !scrape_httpc_readable(p, why, sizeof why))
            errs_add(e, "unable to read client-key %s for %s due to %s", p, name, why);
        mp_free(p);
    }
    if (nm > 1)
        errs_add(e,
                 "more than one authentication method found for %s; found [%s %s], only one "
                 "is allowed",
                 name, methods[0], methods[1]);
}

/* clientcmd validateClusterInfo; false: the cluster is entirely empty (ErrEmptyCluster). */
static bool check_cluster(const char *name, const struct kcluster *c, const char *dir,
                          struct errs *e)
{
    if (!c->any) {
        errs_add(e, "cluster has no server defined");
        return false;
    }
    if (c->server == NULL) {
        if (name == NULL || *name == '\0')
            errs_add(e, "default cluster has no server defined");
        else
            errs_add(e, "no server found for cluster \"%s\"", name);
    }
    if (c->ca != NULL && c->ca_data != NULL)
        errs_add(e,
                 "certificate-authority-data and certificate-authority are both specified "
                 "for %s. certificate-authority-data will override.",
                 name ? name : "");
    char why[600];
    char *p = resolve(dir, c->ca);
    if (p != NULL && !scrape_httpc_readable(p, why, sizeof why))
        errs_add(e, "unable to read certificate-authority %s for %s due to %s", p, name ? name : "",
                 why);
    mp_free(p);
    return true;
}

static int invalid(struct mp_err *err, const struct errs *e)
{
    if (e->n == 1)
        return mp_err_set(err, MP_EINVAL, "invalid configuration: %s", e->msg[0]);
    char buf[MP_ERR_MSG_MAX];
    size_t off = 0;
    for (size_t i = 0; i < e->n && off < sizeof buf; i++) {
        int w = snprintf(buf + off, sizeof buf - off, "%s%s", i ? ", " : "", e->msg[i]);
        off += w > 0 ? (size_t)w : 0;
    }
    return mp_err_set(err, MP_EINVAL, "invalid configuration: [%s]", buf);
}

void scrape_kubeconfig_fini(struct scrape_kubeconfig *k)
{
    if (k == NULL)
        return;
    struct cfg_http_client *h = &k->http;
    struct cfg_tls_config *t = &h->tls_config;
    char *all[] = {k->server, t->ca,       t->ca_file,     t->cert,           t->cert_file,
                   t->key,    t->key_file, t->server_name, h->proxy.proxy_url};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        mp_free(all[i]);
    if (h->authorization != NULL) {
        mp_free(h->authorization->type);
        mp_free(h->authorization->credentials);
        mp_free(h->authorization->credentials_file);
        mp_free(h->authorization);
    }
    if (h->basic_auth != NULL) {
        mp_free(h->basic_auth->username);
        mp_free(h->basic_auth->password);
        mp_free(h->basic_auth);
    }
    memset(k, 0, sizeof *k);
}

static char *dup_opt(const char *s)
{
    return s ? mp_xstrdup(s) : NULL;
}

/* The checked config into k. */
static int convert(const char *path, const char *dir, const struct kcluster *c,
                   const struct kuser *u, struct scrape_kubeconfig *k, struct mp_err *err)
{
    struct cfg_http_client *h = &k->http;
    struct cfg_tls_config *t = &h->tls_config;
    h->follow_redirects = true;
    h->enable_http2 = true;
    if (c->insecure && (c->ca != NULL || c->ca_data != NULL))
        return mp_err_set(err, MP_EINVAL,
                          "specifying a root certificates file with the insecure flag is not "
                          "allowed");
    int rc = 0;
    if (c->ca_data != NULL)
        rc = decode_data(path, c->ca_data, &t->ca, err);
    else
        t->ca_file = resolve(dir, c->ca);
    t->insecure_skip_verify = c->insecure;
    t->server_name = dup_opt(c->tls_server_name);
    h->proxy.proxy_url = dup_opt(c->proxy_url);
    if (rc == 0 && u->cert_data != NULL)
        rc = decode_data(path, u->cert_data, &t->cert, err);
    else if (rc == 0)
        t->cert_file = resolve(dir, u->cert);
    if (rc == 0 && u->key_data != NULL)
        rc = decode_data(path, u->key_data, &t->key, err);
    else if (rc == 0)
        t->key_file = resolve(dir, u->key);
    if (rc == 0 && (u->token != NULL || u->token_file != NULL)) {
        h->authorization = mp_xcalloc(1, sizeof *h->authorization);
        h->authorization->type = mp_xstrdup("Bearer");
        if (u->token != NULL) {
            h->authorization->credentials = mp_xstrdup(u->token);
        } else {
            /* clientcmd reads tokenFile once when it builds the config, then the transport
             * re-reads it; a missing file fails here */
            h->authorization->credentials_file = resolve(dir, u->token_file);
            char why[600];
            if (!scrape_httpc_readable(h->authorization->credentials_file, why, sizeof why))
                rc = mp_err_set(err, MP_EIO, "%s", why);
        }
    }
    if (rc == 0 && (u->username != NULL || u->password != NULL)) {
        h->basic_auth = mp_xcalloc(1, sizeof *h->basic_auth);
        h->basic_auth->username = mp_xstrdup(u->username ? u->username : "");
        h->basic_auth->password = mp_xstrdup(u->password ? u->password : "");
    }
    if (rc != 0)
        return rc;
    /* a server without a scheme: https when TLS is configured (client-go DefaultServerURL) */
    const char *srv = c->server;
    bool tls = c->ca || c->ca_data || c->insecure || u->cert || u->cert_data;
    struct mp_buf b;
    mp_buf_init(&b, 0);
    rc = strstr(srv, "://") ? mp_buf_appendf(&b, "%s", srv)
                            : mp_buf_appendf(&b, "%s://%s", tls ? "https" : "http", srv);
    if (rc != 0) {
        mp_buf_fini(&b);
        return mp_err_set(err, rc, "kubeconfig: %s", mp_strerror(rc));
    }
    while (b.len > 0 && b.data[b.len - 1] == '/')
        b.data[--b.len] = '\0';
    k->server = mp_buf_take(&b, NULL);
    return 0;
}

static int load_doc(const char *path, yaml_document_t *doc, bool *empty, struct mp_err *err)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        char why[600];
        scrape_httpc_path_error(why, sizeof why, "stat", path, errno);
        return mp_err_set(err, MP_EIO, "%s", why);
    }
    struct mp_buf b;
    int e;
    int rc = scrape_httpc_read_file(path, KUBECONFIG_LIMIT, &b, &e);
    if (rc != 0) {
        char why[600];
        if (e != 0)
            scrape_httpc_path_error(why, sizeof why, "open", path, e);
        else
            snprintf(why, sizeof why, "%s", mp_strerror(rc));
        return mp_err_set(err, rc, "error loading config file \"%s\": %s", path, why);
    }
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        mp_buf_fini(&b);
        return mp_err_set(err, MP_ENOMEM, "yaml_parser_initialize failed");
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)b.data, b.len);
    if (!yaml_parser_load(&p, doc)) {
        rc = mp_err_set(err, MP_EPARSE, "error loading config file \"%s\": yaml: line %zu: %s",
                        path, p.problem_mark.line + 1, p.problem ? p.problem : "invalid YAML");
    } else {
        yaml_node_t *root = yaml_document_get_root_node(doc);
        *empty = root == NULL;
        if (root != NULL && root->type != YAML_MAPPING_NODE) {
            yaml_document_delete(doc);
            rc = mp_err_set(err, MP_EPARSE,
                            "error loading config file \"%s\": couldn't get version/kind; json "
                            "parse error: the document is not a mapping",
                            path);
        }
    }
    yaml_parser_delete(&p);
    mp_buf_fini(&b);
    return rc;
}

int scrape_kubeconfig_load(const char *path, struct scrape_kubeconfig *out, struct mp_err *err)
{
    memset(out, 0, sizeof *out);
    yaml_document_t doc;
    bool empty = false;
    int rc = load_doc(path, &doc, &empty, err);
    if (rc != 0)
        return rc;
    yaml_node_t *root = empty ? NULL : yaml_document_get_root_node(&doc);
    char *dir = dir_of(path);
    struct errs e = {.n = 0};
    const char *ctx_name = map_str(&doc, root, "current-context");
    yaml_node_t *ctx = named(&doc, root, "contexts", "context", ctx_name);
    if (ctx_name != NULL && ctx == NULL)
        errs_add(&e, "context was not found for specified context: %s", ctx_name);
    const char *user_name = map_str(&doc, ctx, "user");
    const char *cluster_name = map_str(&doc, ctx, "cluster");
    struct kuser u;
    struct kcluster c;
    read_user(&doc, named(&doc, root, "users", "user", user_name), &u);
    read_cluster(&doc, named(&doc, root, "clusters", "cluster", cluster_name), &c);
    check_user(user_name ? user_name : "", &u, dir, &e);
    bool nonempty = check_cluster(cluster_name, &c, dir, &e);
    if (!nonempty && e.n == 1)
        rc = mp_err_set(err, MP_EINVAL,
                        "invalid configuration: no configuration has been provided, try "
                        "setting KUBERNETES_MASTER environment variable");
    else if (e.n > 0)
        rc = invalid(err, &e);
    else
        rc = convert(path, dir, &c, &u, out, err);
    if (rc != 0)
        scrape_kubeconfig_fini(out);
    mp_free(dir);
    yaml_document_delete(&doc);
    return rc;
}
