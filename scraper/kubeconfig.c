/* SPDX-License-Identifier: Apache-2.0 */
/* scraper/kubeconfig.c: kubernetes_sd_configs.kubeconfig_file (kubernetes-sd.md 1.8 (b)),
 * read as client-go's clientcmd does for Prometheus's BuildConfigFromFlags("", path):
 *
 *   current-context --contexts[name]--> {cluster, user}
 *     cluster --clusters[name]--> server, certificate-authority(-data),
 *                                 insecure-skip-tls-verify, tls-server-name, proxy-url,
 *                                 disable-compression, extensions (exec plugin config)
 *     user    --users[name]-->    token | tokenFile, username/password,
 *                                 client-certificate(-data), client-key(-data)
 *
 * then checked as DirectClientConfig.ConfirmUsable (validateAuthInfo, validateClusterInfo)
 * and turned into a struct cfg_http_client for scraper/httpc.c. Contract in scraper/httpc.h. */
#define _GNU_SOURCE /* pipe2 */
#include "scraper/httpc.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml.h>

#include "common/alloc.h"
#include "common/str.h"
#include "common/time.h"

#define KUBECONFIG_LIMIT ((size_t)16 << 20)
#define MAX_ERRORS 8

struct kcluster {
    const char *server, *ca, *ca_data, *tls_server_name, *proxy_url;
    yaml_node_t *exec_config; /* extensions[client.authentication.k8s.io/exec].extension */
    bool insecure, disable_compression, any;
};

struct kuser {
    const char *token, *token_file, *cert, *cert_data, *key, *key_data, *username, *password;
    yaml_node_t *exec;         /* the exec mapping, NULL: none */
    const char *auth_provider; /* auth-provider.name ("" unnamed), NULL: none */
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

/* clusters[].cluster.extensions[name == client.authentication.k8s.io/exec].extension: what
 * clientcmd hands an exec plugin as spec.cluster.config. NULL: none. */
static yaml_node_t *exec_extension(yaml_document_t *d, yaml_node_t *cluster)
{
    yaml_node_t *seq = map_get(d, cluster, "extensions");
    if (seq == NULL || seq->type != YAML_SEQUENCE_NODE)
        return NULL;
    for (yaml_node_item_t *i = seq->data.sequence.items.start; i < seq->data.sequence.items.top;
         i++) {
        yaml_node_t *e = yaml_document_get_node(d, *i);
        const char *n = map_str(d, e, "name");
        if (n != NULL && strcmp(n, "client.authentication.k8s.io/exec") == 0)
            return map_get(d, e, "extension");
    }
    return NULL;
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
    c->disable_compression = map_bool(d, m, "disable-compression");
    c->exec_config = exec_extension(d, m);
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
    u->exec = map_get(d, m, "exec");
    if (u->exec != NULL && u->exec->type != YAML_MAPPING_NODE)
        u->exec = NULL;
    yaml_node_t *ap = map_get(d, m, "auth-provider");
    if (ap != NULL && ap->type == YAML_MAPPING_NODE) {
        const char *n = map_str(d, ap, "name");
        u->auth_provider = n ? n : "";
    }
}

/* clientcmd validateAuthInfo. */
static void check_exec(yaml_document_t *d, const char *name, yaml_node_t *x, struct errs *e);

static void check_user(yaml_document_t *d, const char *name, struct kuser *u, const char *dir,
                       struct errs *e)
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
    if (u->exec != NULL && u->auth_provider != NULL)
        errs_add(e, "authProvider cannot be provided in combination with an exec plugin for %s",
                 name);
    if (u->exec != NULL)
        check_exec(d, name, u->exec, e);
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
    scrape_kube_exec_destroy(k->exec);
    memset(k, 0, sizeof *k);
}

static char *dup_opt(const char *s)
{
    return s ? mp_xstrdup(s) : NULL;
}

static int exec_load(const char *dir, yaml_document_t *d, yaml_node_t *xn, const struct kcluster *c,
                     struct scrape_kubeconfig *k, struct mp_err *err);

/* The checked config into k. */
static int convert(const char *path, const char *dir, yaml_document_t *d, const struct kcluster *c,
                   const struct kuser *u, struct scrape_kubeconfig *k, struct mp_err *err)
{
    /* rest.GetAuthProvider: Prometheus links client-go's gcp stub and no other provider */
    if (u->auth_provider != NULL && strcmp(u->auth_provider, "gcp") == 0)
        return mp_err_set(err, MP_EINVAL,
                          "The gcp auth plugin has been removed.\nPlease use the "
                          "\"gke-gcloud-auth-plugin\" kubectl/client-go credential plugin "
                          "instead.\nSee https://cloud.google.com/blog/products/"
                          "containers-kubernetes/kubectl-auth-changes-in-gke for further details");
    if (u->auth_provider != NULL)
        return mp_err_set(err, MP_EINVAL, "no Auth Provider found for name \"%s\"",
                          u->auth_provider);
    struct cfg_http_client *h = &k->http;
    struct cfg_tls_config *t = &h->tls_config;
    k->disable_compression = c->disable_compression;
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
    /* exec.Authenticator.UpdateTransportConfig: a token, basic auth or a client certificate
     * with its key in the user wins over the plugin */
    bool other = u->token || u->token_file || u->username || u->password ||
                 ((u->cert || u->cert_data) && (u->key || u->key_data));
    if (rc == 0 && u->exec != NULL && !other)
        rc = exec_load(dir, d, u->exec, c, k, err);
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
    check_user(&doc, user_name ? user_name : "", &u, dir, &e);
    bool nonempty = check_cluster(cluster_name, &c, dir, &e);
    if (!nonempty && e.n == 1)
        rc = mp_err_set(err, MP_EINVAL,
                        "invalid configuration: no configuration has been provided, try "
                        "setting KUBERNETES_MASTER environment variable");
    else if (e.n > 0)
        rc = invalid(err, &e);
    else
        rc = convert(path, dir, &doc, &c, &u, out, err);
    if (rc != 0)
        scrape_kubeconfig_fini(out);
    mp_free(dir);
    yaml_document_delete(&doc);
    return rc;
}

/* ---- exec credential plugins ---------------------------------------------------------------- */

#define EXEC_V1 "client.authentication.k8s.io/v1"
#define EXEC_V1BETA1 "client.authentication.k8s.io/v1beta1"
#define EXEC_TIMEOUT_MS 60000
#define EXEC_STDOUT_LIMIT ((size_t)4 << 20)

/* interactiveMode after clientcmd's defaulting (v1beta1: IfAvailable); NULL when unset. */
static const char *exec_mode_text(yaml_document_t *d, yaml_node_t *x)
{
    const char *m = map_str(d, x, "interactiveMode");
    const char *v = map_str(d, x, "apiVersion");
    if (m == NULL && v != NULL && strcmp(v, EXEC_V1BETA1) == 0)
        return "IfAvailable";
    return m;
}

/* clientcmd validateAuthInfo, the exec part. */
static void check_exec(yaml_document_t *d, const char *name, yaml_node_t *x, struct errs *e)
{
    if (map_get(d, x, "command") == NULL || map_str(d, x, "command") == NULL)
        errs_add(e, "command must be specified for %s to use exec authentication plugin", name);
    if (map_str(d, x, "apiVersion") == NULL)
        errs_add(e, "apiVersion must be specified for %s to use exec authentication plugin", name);
    yaml_node_t *env = map_get(d, x, "env");
    if (env != NULL && env->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *i = env->data.sequence.items.start; i < env->data.sequence.items.top;
             i++) {
            if (map_str(d, yaml_document_get_node(d, *i), "name") == NULL)
                errs_add(e,
                         "env variable name must be specified for %s to use exec "
                         "authentication plugin",
                         name);
        }
    }
    const char *m = exec_mode_text(d, x);
    if (m == NULL)
        errs_add(e, "interactiveMode must be specified for %s to use exec authentication plugin",
                 name);
    else if (strcmp(m, "Never") != 0 && strcmp(m, "IfAvailable") != 0 && strcmp(m, "Always") != 0)
        errs_add(e, "invalid interactiveMode for %s: \"%s\"", name, m);
}

/* Go's encoding/json string: HTML-safe escapes, \n \r \t, other controls as \u00XX. */
static int json_str(struct mp_buf *b, const char *s)
{
    int rc = mp_buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; rc == 0 && *p; p++) {
        if (*p == '"' || *p == '\\')
            rc = mp_buf_appendf(b, "\\%c", *p);
        else if (*p == '\n')
            rc = mp_buf_append(b, "\\n", 2);
        else if (*p == '\r')
            rc = mp_buf_append(b, "\\r", 2);
        else if (*p == '\t')
            rc = mp_buf_append(b, "\\t", 2);
        else if (*p < 0x20 || *p == '<' || *p == '>' || *p == '&')
            rc = mp_buf_appendf(b, "\\u%04x", *p);
        else if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
            rc = mp_buf_appendf(b, "\\u%04x", p[2] == 0xa8 ? 0x2028 : 0x2029);
            p += 2;
        } else
            rc = mp_buf_append(b, p, 1);
    }
    return rc ? rc : mp_buf_append(b, "\"", 1);
}

/* spec.cluster (rest.ConfigToExecCluster) as Go's encoder writes clientauthentication
 * Cluster: server, then the omitempty fields that are set. */
/* ---- a cluster's exec extension as JSON ------------------------------------------------------
 * clientcmd reads the kubeconfig through sigs.k8s.io/yaml (YAML 1.1 scalars as go-yaml v2
 * resolves them, then encoding/json), so the extension reaches the plugin as compact JSON with
 * sorted keys. */

#define YJ_MAX_DEPTH 64

enum yj_kind { YJ_STR, YJ_NULL, YJ_TRUE, YJ_FALSE, YJ_INT, YJ_FLOAT };

static bool one_of(const char *s, const char *const *set)
{
    for (; *set != NULL; set++)
        if (strcmp(s, *set) == 0)
            return true;
    return false;
}

/* go-yaml v2's resolve of a plain scalar; *i or *f hold a number. */
static enum yj_kind yj_resolve(const char *s, long long *i, double *f)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"y",  "Y",  "yes",  "Yes",  "YES",  "on",
                                        "On", "ON", "true", "True", "TRUE", NULL};
    static const char *const falses[] = {"n",   "N",   "no",    "No",    "NO",    "off",
                                         "Off", "OFF", "false", "False", "FALSE", NULL};
    static const char *const infs[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL};
    static const char *const ninfs[] = {"-.inf", "-.Inf", "-.INF", NULL};
    static const char *const nans[] = {".nan", ".NaN", ".NAN", NULL};
    if (one_of(s, nulls))
        return YJ_NULL;
    if (one_of(s, trues))
        return YJ_TRUE;
    if (one_of(s, falses))
        return YJ_FALSE;
    if (one_of(s, infs) || one_of(s, ninfs) || one_of(s, nans)) {
        *f = one_of(s, nans) ? NAN : one_of(s, ninfs) ? -INFINITY : INFINITY;
        return YJ_FLOAT;
    }
    if (strchr("+-0123456789.", s[0]) == NULL)
        return YJ_STR;
    char plain[128];
    size_t n = 0;
    for (const char *p = s; *p != '\0'; p++) /* underscores are digit separators */
        if (*p != '_' && n + 1 < sizeof plain)
            plain[n++] = *p;
    plain[n] = '\0';
    const char *digits = plain + (plain[0] == '+' || plain[0] == '-');
    int base = 10;
    if (digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X'))
        base = 16;
    else if (digits[0] == '0' && (digits[1] == 'b' || digits[1] == 'B'))
        base = 2;
    else if (digits[0] == '0' && digits[1] != '\0')
        base = 8;
    const char *body = base == 16 || base == 2 ? digits + 2 : digits;
    if (*body != '\0' && strspn(body, "0123456789abcdefABCDEF") == strlen(body)) {
        char *end;
        errno = 0;
        unsigned long long u = strtoull(body, &end, base);
        bool neg = plain[0] == '-';
        if (*end == '\0' && errno == 0 && u <= (unsigned long long)LLONG_MAX + neg) {
            *i = neg ? (long long)(0 - u) : (long long)u;
            return YJ_INT;
        }
    }
    /* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
    const char *p = digits;
    size_t whole = strspn(p, "0123456789");
    p += whole;
    size_t frac = 0;
    if (*p == '.') {
        frac = strspn(p + 1, "0123456789");
        p += 1 + frac;
    }
    if (whole == 0 && frac == 0)
        return YJ_STR;
    if (*p == 'e' || *p == 'E') {
        p += 1 + (p[1] == '+' || p[1] == '-');
        size_t e = strspn(p, "0123456789");
        if (e == 0)
            return YJ_STR;
        p += e;
    }
    if (*p != '\0')
        return YJ_STR;
    *f = strtod(plain, NULL);
    return YJ_FLOAT;
}

/* encoding/json's float64: 'f' for 1e-6 <= |v| < 1e21 (and 0), else 'e' with e-7, not e-07. */
static int yj_float(struct mp_buf *b, double v)
{
    if (v == 0)
        return mp_buf_append_str(b, signbit(v) ? "-0" : "0");
    char d[24];
    int e;
    int n = mp_fmt_shortest_digits(v, d, &e);
    int rc = v < 0 ? mp_buf_append(b, "-", 1) : 0;
    double a = fabs(v);
    if (a < 1e-6 || a >= 1e21) {
        if (rc == 0)
            rc = mp_buf_append(b, d, 1);
        if (rc == 0 && n > 1)
            rc = mp_buf_appendf(b, ".%s", d + 1);
        return rc ? rc : e < 0 ? mp_buf_appendf(b, "e-%d", -e) : mp_buf_appendf(b, "e+%02d", e);
    }
    if (e < 0) {
        if (rc == 0)
            rc = mp_buf_append(b, "0.", 2);
        for (int k = -1; rc == 0 && k > e; k--)
            rc = mp_buf_append(b, "0", 1);
        return rc ? rc : mp_buf_append_str(b, d);
    }
    for (int k = 0; rc == 0 && k <= e; k++)
        rc = mp_buf_append(b, k < n ? &d[k] : "0", 1);
    if (rc == 0 && n > e + 1)
        rc = mp_buf_appendf(b, ".%s", d + e + 1);
    return rc;
}

static int yj_node(yaml_document_t *d, yaml_node_t *nd, int depth, struct mp_buf *b,
                   const char **why);

struct yj_pair {
    const char *text; /* the key when !own */
    bool own;         /* the key is buf */
    char buf[32];
    yaml_node_t *value;
    size_t at; /* position in the mapping: ties sort in document order */
};

static const char *pair_key(const struct yj_pair *p)
{
    return p->own ? p->buf : p->text;
}

/* A mapping key as sigs.k8s.io/yaml turns it into a JSON object key. */
static void yj_key(yaml_node_t *k, struct yj_pair *p)
{
    p->text = (const char *)k->data.scalar.value;
    if (k->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return;
    long long i;
    double f;
    switch (yj_resolve(p->text, &i, &f)) {
    case YJ_INT:
        snprintf(p->buf, sizeof p->buf, "%lld", i);
        p->own = true;
        break;
    case YJ_TRUE:
        p->text = "true";
        break;
    case YJ_FALSE:
        p->text = "false";
        break;
    case YJ_NULL:
        p->text = "null";
        break;
    default:
        break;
    }
}

static int cmp_pair(const void *a, const void *b)
{
    const struct yj_pair *x = a, *y = b;
    int c = strcmp(pair_key(x), pair_key(y));
    return c ? c : x->at < y->at ? -1 : 1;
}

static int yj_map(yaml_document_t *d, yaml_node_t *nd, int depth, struct mp_buf *b,
                  const char **why)
{
    size_t n = (size_t)(nd->data.mapping.pairs.top - nd->data.mapping.pairs.start);
    struct yj_pair *v = mp_xcalloc(n ? n : 1, sizeof *v);
    size_t w = 0;
    for (yaml_node_pair_t *p = nd->data.mapping.pairs.start; p < nd->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(d, p->key);
        if (k == NULL || k->type != YAML_SCALAR_NODE) {
            mp_free(v);
            *why = "a mapping key is not a scalar";
            return MP_EPARSE;
        }
        yj_key(k, &v[w]);
        v[w].at = w;
        v[w++].value = yaml_document_get_node(d, p->value);
    }
    qsort(v, w, sizeof *v, cmp_pair);
    int rc = mp_buf_append(b, "{", 1);
    bool first = true;
    for (size_t i = 0; i < w && rc == 0; i++) {
        /* a repeated key: the last one wins, as in a Go map */
        if (i + 1 < w && strcmp(pair_key(&v[i]), pair_key(&v[i + 1])) == 0)
            continue;
        if (!first)
            rc = mp_buf_append(b, ",", 1);
        first = false;
        if (rc == 0)
            rc = json_str(b, pair_key(&v[i]));
        if (rc == 0)
            rc = mp_buf_append(b, ":", 1);
        if (rc == 0)
            rc = yj_node(d, v[i].value, depth + 1, b, why);
    }
    mp_free(v);
    return rc ? rc : mp_buf_append(b, "}", 1);
}

static int yj_node(yaml_document_t *d, yaml_node_t *nd, int depth, struct mp_buf *b,
                   const char **why)
{
    if (nd == NULL)
        return mp_buf_append_str(b, "null");
    if (depth > YJ_MAX_DEPTH) {
        *why = "nested too deeply";
        return MP_EPARSE;
    }
    if (nd->type == YAML_MAPPING_NODE)
        return yj_map(d, nd, depth, b, why);
    if (nd->type == YAML_SEQUENCE_NODE) {
        int rc = mp_buf_append(b, "[", 1);
        for (yaml_node_item_t *i = nd->data.sequence.items.start;
             rc == 0 && i < nd->data.sequence.items.top; i++) {
            if (i > nd->data.sequence.items.start)
                rc = mp_buf_append(b, ",", 1);
            if (rc == 0)
                rc = yj_node(d, yaml_document_get_node(d, *i), depth + 1, b, why);
        }
        return rc ? rc : mp_buf_append(b, "]", 1);
    }
    const char *s = (const char *)nd->data.scalar.value;
    if (nd->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return json_str(b, s);
    long long i;
    double f;
    switch (yj_resolve(s, &i, &f)) {
    case YJ_NULL:
        return mp_buf_append_str(b, "null");
    case YJ_TRUE:
        return mp_buf_append_str(b, "true");
    case YJ_FALSE:
        return mp_buf_append_str(b, "false");
    case YJ_INT:
        return mp_buf_appendf(b, "%lld", i);
    case YJ_FLOAT:
        if (!isfinite(f)) {
            *why = isnan(f) ? "json: unsupported value: NaN"
                   : f > 0  ? "json: unsupported value: +Inf"
                            : "json: unsupported value: -Inf";
            return MP_EPARSE;
        }
        return yj_float(b, f);
    default:
        return json_str(b, s);
    }
}

/* spec.cluster as client-go's ConfigToExecCluster fills it (config: null without the
 * extension, as RawExtension encodes an empty one). */
static int cluster_json(yaml_document_t *d, const struct kcluster *c, const char *ca, size_t ca_len,
                        struct mp_buf *b, const char **why)
{
    int rc = mp_buf_append_str(b, "{\"server\":");
    if (rc == 0)
        rc = json_str(b, c->server ? c->server : "");
    if (rc == 0 && c->tls_server_name != NULL &&
        (rc = mp_buf_append_str(b, ",\"tls-server-name\":")) == 0)
        rc = json_str(b, c->tls_server_name);
    if (rc == 0 && c->insecure)
        rc = mp_buf_append_str(b, ",\"insecure-skip-tls-verify\":true");
    if (rc == 0 && ca_len > 0 &&
        (rc = mp_buf_append_str(b, ",\"certificate-authority-data\":\"")) == 0 &&
        (rc = scrape_httpc_base64_encode(b, ca, ca_len)) == 0)
        rc = mp_buf_append(b, "\"", 1);
    if (rc == 0 && c->proxy_url != NULL && (rc = mp_buf_append_str(b, ",\"proxy-url\":")) == 0)
        rc = json_str(b, c->proxy_url);
    if (rc == 0 && c->disable_compression)
        rc = mp_buf_append_str(b, ",\"disable-compression\":true");
    if (rc == 0)
        rc = mp_buf_append_str(b, ",\"config\":");
    if (rc == 0)
        rc = c->exec_config ? yj_node(d, c->exec_config, 0, b, why) : mp_buf_append_str(b, "null");
    return rc ? rc : mp_buf_append(b, "}", 1);
}

static char **seq_strs(yaml_document_t *d, yaml_node_t *seq, size_t *n)
{
    *n = 0;
    if (seq == NULL || seq->type != YAML_SEQUENCE_NODE)
        return NULL;
    size_t cap = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    char **v = mp_xcalloc(cap ? cap : 1, sizeof *v);
    for (yaml_node_item_t *i = seq->data.sequence.items.start; i < seq->data.sequence.items.top;
         i++) {
        yaml_node_t *e = yaml_document_get_node(d, *i);
        if (e != NULL && e->type == YAML_SCALAR_NODE)
            v[(*n)++] = mp_xstrdup((const char *)e->data.scalar.value);
    }
    return v;
}

void scrape_kube_exec_destroy(struct scrape_kube_exec *x)
{
    if (x == NULL)
        return;
    mp_free(x->command);
    for (size_t i = 0; i < x->nargs; i++)
        mp_free(x->args[i]);
    mp_free(x->args);
    for (size_t i = 0; i < x->nenv; i++)
        mp_free(x->env[i]);
    mp_free(x->env);
    mp_free(x->api_version);
    mp_free(x->install_hint);
    mp_free(x->cluster_json);
    mp_free(x);
}

static char **dup_strs(char *const *v, size_t n)
{
    char **o = mp_xcalloc(n ? n : 1, sizeof *o);
    for (size_t i = 0; i < n; i++)
        o[i] = mp_xstrdup(v[i]);
    return o;
}

struct scrape_kube_exec *scrape_kube_exec_dup(const struct scrape_kube_exec *x)
{
    struct scrape_kube_exec *o = mp_xcalloc(1, sizeof *o);
    *o = *x;
    o->command = mp_xstrdup(x->command);
    o->args = dup_strs(x->args, x->nargs);
    o->env = dup_strs(x->env, x->nenv);
    o->api_version = mp_xstrdup(x->api_version);
    o->install_hint = dup_opt(x->install_hint);
    o->cluster_json = dup_opt(x->cluster_json);
    return o;
}

/* The checked exec mapping into k->exec (after the TLS settings: spec.cluster reads the CA). */
static int exec_load(const char *dir, yaml_document_t *d, yaml_node_t *xn, const struct kcluster *c,
                     struct scrape_kubeconfig *k, struct mp_err *err)
{
    const char *v = map_str(d, xn, "apiVersion");
    if (strcmp(v, EXEC_V1) != 0 && strcmp(v, EXEC_V1BETA1) != 0)
        return mp_err_set(err, MP_EINVAL, "exec plugin: invalid apiVersion \"%s\"", v);
    struct scrape_kube_exec *x = mp_xcalloc(1, sizeof *x);
    k->exec = x;
    const char *cmd = map_str(d, xn, "command");
    x->command = strchr(cmd, '/') ? resolve(dir, cmd) : mp_xstrdup(cmd);
    x->args = seq_strs(d, map_get(d, xn, "args"), &x->nargs);
    yaml_node_t *env = map_get(d, xn, "env");
    if (env != NULL && env->type == YAML_SEQUENCE_NODE) {
        size_t cap = (size_t)(env->data.sequence.items.top - env->data.sequence.items.start);
        x->env = mp_xcalloc(cap ? cap : 1, sizeof *x->env);
        for (yaml_node_item_t *i = env->data.sequence.items.start; i < env->data.sequence.items.top;
             i++) {
            yaml_node_t *e = yaml_document_get_node(d, *i);
            const char *val = map_str(d, e, "value");
            struct mp_buf b;
            mp_buf_init(&b, 0);
            if (mp_buf_appendf(&b, "%s=%s", map_str(d, e, "name"), val ? val : "") != 0)
                mp_panic("kubeconfig: env too long");
            x->env[x->nenv++] = mp_buf_take(&b, NULL);
        }
    }
    x->api_version = mp_xstrdup(v);
    x->install_hint = dup_opt(map_str(d, xn, "installHint"));
    const char *m = exec_mode_text(d, xn);
    x->mode = strcmp(m, "Never") == 0    ? SCRAPE_KUBE_EXEC_NEVER
              : strcmp(m, "Always") == 0 ? SCRAPE_KUBE_EXEC_ALWAYS
                                         : SCRAPE_KUBE_EXEC_IF_AVAILABLE;
    x->timeout_ms = EXEC_TIMEOUT_MS;
    if (!map_bool(d, xn, "provideClusterInfo"))
        return 0;
    struct mp_buf ca;
    mp_buf_init(&ca, 0);
    int rc = 0;
    if (k->http.tls_config.ca != NULL) {
        rc = mp_buf_append_str(&ca, k->http.tls_config.ca);
    } else if (k->http.tls_config.ca_file != NULL) {
        int e = 0;
        rc = scrape_httpc_read_file(k->http.tls_config.ca_file, KUBECONFIG_LIMIT, &ca, &e);
        if (rc != 0) {
            char why[600];
            scrape_httpc_path_error(why, sizeof why, "open", k->http.tls_config.ca_file, e);
            return mp_err_set(err, MP_EIO, "failed to load CA bundle for execProvider: %s", why);
        }
    }
    struct mp_buf j;
    mp_buf_init(&j, 0);
    const char *why = NULL;
    if (rc == 0)
        rc = cluster_json(d, c, ca.data, ca.len, &j, &why);
    mp_buf_fini(&ca);
    if (rc != 0) {
        mp_buf_fini(&j);
        return mp_err_set(err, rc, "kubeconfig: cluster extension %s: %s",
                          "client.authentication.k8s.io/exec", why ? why : mp_strerror(rc));
    }
    x->cluster_json = mp_buf_take(&j, NULL);
    return 0;
}

/* ---- running a plugin ------------------------------------------------------------------------ */

extern char **environ;

static const char INSTALL_HINT_HELP[] =
    "\n\nIt looks like you are trying to use a client-go credential plugin that is not "
    "installed.\n\nTo learn more about this feature, consult the documentation available at:\n"
    "      https://kubernetes.io/docs/reference/access-authn-authz/authentication/"
    "#client-go-credential-plugins";

void scrape_kube_creds_fini(struct scrape_kube_creds *c)
{
    if (c == NULL)
        return;
    mp_free(c->token);
    mp_free(c->cert);
    mp_free(c->key);
    memset(c, 0, sizeof *c);
}

/* Go exec.LookPath for a name without '/': the first executable regular file in PATH. */
static char *look_path(const char *name)
{
    if (strchr(name, '/') != NULL)
        return mp_xstrdup(name);
    const char *path = getenv("PATH");
    if (path == NULL)
        return NULL;
    for (const char *p = path;; p++) {
        const char *end = strchr(p, ':');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        struct mp_buf b;
        mp_buf_init(&b, 0);
        if (mp_buf_appendf(&b, "%.*s/%s", (int)n, n ? p : ".", name) == 0) {
            struct stat st;
            if (stat(b.data, &st) == 0 && S_ISREG(st.st_mode) && access(b.data, X_OK) == 0)
                return mp_buf_take(&b, NULL);
        }
        mp_buf_fini(&b);
        if (end == NULL)
            return NULL;
        p = end;
    }
}

/* environ, then the plugin's env, then KUBERNETES_EXEC_INFO; a later NAME= replaces an
 * earlier one (Go's exec dedupEnv). NULL-terminated; the strings are borrowed but info. */
static char **build_env(const struct scrape_kube_exec *x, char *info, size_t *n)
{
    size_t ne = 0;
    while (environ[ne] != NULL)
        ne++;
    char **v = mp_xcalloc(ne + x->nenv + 2, sizeof *v);
    *n = 0;
    for (size_t i = 0; i < ne + x->nenv + 1; i++) {
        char *e = i < ne ? environ[i] : i < ne + x->nenv ? x->env[i - ne] : info;
        const char *eq = strchr(e, '=');
        size_t kl = eq ? (size_t)(eq - e) : strlen(e);
        size_t k = 0;
        while (k < *n && !(strncmp(v[k], e, kl) == 0 && (v[k][kl] == '=' || v[k][kl] == '\0')))
            k++;
        v[k] = e;
        if (k == *n)
            (*n)++;
    }
    v[*n] = NULL;
    return v;
}

/* KUBERNETES_EXEC_INFO=<ExecCredential>: what client-go's LegacyCodec encodes (kind,
 * apiVersion, spec{cluster, interactive}) plus json.Encoder's newline. */
static char *exec_info(const struct scrape_kube_exec *x, bool interactive)
{
    struct mp_buf b;
    mp_buf_init(&b, 0);
    int rc = mp_buf_appendf(&b,
                            "KUBERNETES_EXEC_INFO={\"kind\":\"ExecCredential\",\"apiVersion\":"
                            "\"%s\",\"spec\":{",
                            x->api_version);
    if (rc == 0 && x->cluster_json != NULL)
        rc = mp_buf_appendf(&b, "\"cluster\":%s,", x->cluster_json);
    if (rc == 0)
        rc = mp_buf_appendf(&b, "\"interactive\":%s}}\n", interactive ? "true" : "false");
    if (rc != 0)
        mp_panic("kubeconfig: exec info: %s", mp_strerror(rc));
    return mp_buf_take(&b, NULL);
}

/* Spawns the plugin and collects its stdout within the time bound; *status is waitpid's. */
static int spawn_collect(const struct scrape_kube_exec *x, const char *path, bool interactive,
                         struct mp_buf *out, int *status, struct mp_err *err)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return mp_err_set(err, MP_EIO, "exec: pipe: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (!interactive)
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    char **argv = mp_xcalloc(x->nargs + 2, sizeof *argv);
    argv[0] = x->command;
    for (size_t i = 0; i < x->nargs; i++)
        argv[i + 1] = x->args[i];
    char *info = exec_info(x, interactive);
    size_t nenv;
    char **envp = build_env(x, info, &nenv);
    pid_t pid;
    int se = posix_spawn(&pid, path, &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    mp_free(argv);
    mp_free(envp);
    mp_free(info);
    close(fds[1]);
    if (se != 0) {
        close(fds[0]);
        char why[600];
        scrape_httpc_path_error(why, sizeof why, "fork/exec", path, se);
        return mp_err_set(err, MP_EIO, "exec: %s", why);
    }
    int64_t deadline = mp_mono_ns() + x->timeout_ms * 1000000;
    int rc = 0;
    char buf[16384];
    for (;;) {
        int64_t left_ms = (deadline - mp_mono_ns()) / 1000000;
        if (left_ms <= 0) {
            rc = mp_err_set(err, MP_EIO,
                            "exec: executable %s failed with exit code -1 (killed: no result "
                            "within %lld ms)",
                            x->command, (long long)x->timeout_ms);
            break;
        }
        struct pollfd pf = {.fd = fds[0], .events = POLLIN};
        int pr = poll(&pf, 1, left_ms > 1000 ? 1000 : (int)left_ms);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0)
            continue;
        ssize_t n = read(fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (mp_buf_append(out, buf, (size_t)n) != 0) {
            rc = mp_err_set(err, MP_EIO, "exec: executable %s wrote more than %zu bytes",
                            x->command, EXEC_STDOUT_LIMIT);
            break;
        }
    }
    close(fds[0]);
    if (rc != 0)
        kill(pid, SIGKILL);
    /* stdout closed: the plugin gets what is left of the bound to exit */
    for (;;) {
        pid_t w = waitpid(pid, status, rc != 0 ? 0 : WNOHANG);
        if (w == pid || (w < 0 && errno != EINTR))
            break;
        if (w == 0 && mp_mono_ns() >= deadline) {
            kill(pid, SIGKILL);
            rc = mp_err_set(err, MP_EIO,
                            "exec: executable %s failed with exit code -1 (killed: no result "
                            "within %lld ms)",
                            x->command, (long long)x->timeout_ms);
        } else if (w == 0) {
            usleep(5000);
        }
    }
    return rc;
}

/* A string field of o: 0 and *out (borrowed, NULL when absent or ""), or a decode error. */
static int str_field(json_object *o, const char *key, const char *go_field, const char **out,
                     struct mp_err *err)
{
    *out = NULL;
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || v == NULL)
        return 0;
    if (!json_object_is_type(v, json_type_string))
        return mp_err_set(err, MP_EPARSE,
                          "decoding stdout: json: cannot unmarshal %s into Go struct field %s of "
                          "type string",
                          json_type_to_name(json_object_get_type(v)), go_field);
    const char *s = json_object_get_string(v);
    *out = s && *s ? s : NULL;
    return 0;
}

/* The plugin's stdout as client-go decodes it (UniversalDecoder for the configured group
 * version, then refreshCredsLocked's checks). */
static int parse_output(const struct scrape_kube_exec *x, const char *data, size_t len,
                        struct scrape_kube_creds *out, struct mp_err *err)
{
    enum json_tokener_error je = json_tokener_success;
    json_object *root = json_tokener_parse_verbose(data, &je);
    int rc = 0;
    const char *kind = NULL, *ver = NULL;
    if (root == NULL || !json_object_is_type(root, json_type_object)) {
        rc = mp_err_set(err, MP_EPARSE,
                        "decoding stdout: couldn't get version/kind; json parse error: %s",
                        root == NULL ? json_tokener_error_desc(je) : "not a JSON object");
    } else if (str_field(root, "kind", "TypeMeta.kind", &kind, err) != 0 ||
               str_field(root, "apiVersion", "TypeMeta.apiVersion", &ver, err) != 0) {
        rc = MP_EPARSE;
    } else if (kind == NULL) {
        rc = mp_err_set(err, MP_EPARSE, "decoding stdout: Object 'Kind' is missing in '%.*s'",
                        (int)(len > 2000 ? 2000 : len), data);
    } else if (ver == NULL) {
        rc = mp_err_set(err, MP_EPARSE, "decoding stdout: Object 'apiVersion' is missing in '%.*s'",
                        (int)(len > 2000 ? 2000 : len), data);
    } else if (strcmp(kind, "ExecCredential") != 0 ||
               (strcmp(ver, EXEC_V1) != 0 && strcmp(ver, EXEC_V1BETA1) != 0)) {
        rc = mp_err_set(err, MP_EPARSE,
                        "decoding stdout: no kind \"%s\" is registered for version \"%s\" in "
                        "scheme \"pkg/runtime/scheme.go:100\"",
                        kind, ver);
    } else if (strcmp(ver, x->api_version) != 0) {
        rc = mp_err_set(err, MP_EPARSE,
                        "exec plugin is configured to use API version %s, plugin returned "
                        "version %s",
                        x->api_version, ver);
    }
    json_object *st = NULL;
    if (rc == 0 && (!json_object_object_get_ex(root, "status", &st) || st == NULL))
        rc = mp_err_set(err, MP_EPARSE, "exec plugin didn't return a status field");
    if (rc == 0 && !json_object_is_type(st, json_type_object))
        rc = mp_err_set(err, MP_EPARSE,
                        "decoding stdout: json: cannot unmarshal %s into Go struct field "
                        "ExecCredential.status of type ExecCredentialStatus",
                        json_type_to_name(json_object_get_type(st)));
    const char *tok = NULL, *cert = NULL, *key = NULL, *exp = NULL;
    if (rc == 0 &&
        (str_field(st, "token", "ExecCredentialStatus.status.token", &tok, err) != 0 ||
         str_field(st, "clientCertificateData", "ExecCredentialStatus.status.clientCertificateData",
                   &cert, err) != 0 ||
         str_field(st, "clientKeyData", "ExecCredentialStatus.status.clientKeyData", &key, err) !=
             0 ||
         str_field(st, "expirationTimestamp", "ExecCredentialStatus.status.expirationTimestamp",
                   &exp, err) != 0))
        rc = MP_EPARSE;
    int64_t exp_ms = 0;
    if (rc == 0 && exp != NULL) {
        struct mp_err terr;
        mp_err_clear(&terr);
        if (strchr(exp, 'T') == NULL || mp_time_parse(mp_str_c(exp), &exp_ms, &terr) != 0)
            rc = mp_err_set(err, MP_EPARSE,
                            "decoding stdout: parsing time \"%s\" as "
                            "\"2006-01-02T15:04:05Z07:00\": not RFC 3339",
                            exp);
        else if (exp_ms == 0)
            exp_ms = 1; /* the epoch itself: expired, not "no expiry" */
    }
    if (rc == 0 && tok == NULL && cert == NULL && key == NULL)
        rc = mp_err_set(err, MP_EPARSE, "exec plugin didn't return a token or cert/key pair");
    if (rc == 0 && (cert == NULL) != (key == NULL))
        rc = mp_err_set(err, MP_EPARSE, "exec plugin returned only certificate or key, not both");
    if (rc == 0 && cert != NULL && strstr(cert, "-----BEGIN") == NULL)
        rc = mp_err_set(err, MP_EPARSE,
                        "failed parsing client key/certificate: tls: failed to find any PEM "
                        "data in certificate input");
    if (rc == 0 && key != NULL && strstr(key, "-----BEGIN") == NULL)
        rc = mp_err_set(err, MP_EPARSE,
                        "failed parsing client key/certificate: tls: failed to find any PEM "
                        "data in key input");
    if (rc == 0) {
        out->token = dup_opt(tok);
        out->cert = dup_opt(cert);
        out->key = dup_opt(key);
        out->expiry_ms = exp_ms;
    }
    json_object_put(root);
    return rc;
}

int scrape_kube_exec_run(const struct scrape_kube_exec *x, bool hint, struct scrape_kube_creds *out,
                         struct mp_err *err)
{
    memset(out, 0, sizeof *out);
    bool interactive = false;
    if (x->mode == SCRAPE_KUBE_EXEC_IF_AVAILABLE)
        interactive = isatty(STDIN_FILENO) == 1;
    else if (x->mode == SCRAPE_KUBE_EXEC_ALWAYS && isatty(STDIN_FILENO) != 1)
        return mp_err_set(err, MP_EIO,
                          "exec plugin cannot support interactive mode: standard input is not "
                          "a terminal");
    else if (x->mode == SCRAPE_KUBE_EXEC_ALWAYS)
        interactive = true;
    char *path = look_path(x->command);
    if (path == NULL) {
        return mp_err_set(err, MP_EIO, "exec: executable %s not found%s%s%s", x->command,
                          hint ? INSTALL_HINT_HELP : "", hint && x->install_hint ? "\n\n" : "",
                          hint && x->install_hint ? x->install_hint : "");
    }
    struct mp_buf b;
    mp_buf_init(&b, EXEC_STDOUT_LIMIT);
    int status = 0;
    int rc = spawn_collect(x, path, interactive, &b, &status, err);
    mp_free(path);
    if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        rc = mp_err_set(err, MP_EIO, "exec: executable %s failed with exit code %d", x->command,
                        WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    if (rc == 0)
        rc = parse_output(x, b.data ? b.data : "", b.len, out, err);
    mp_buf_fini(&b);
    return rc;
}
