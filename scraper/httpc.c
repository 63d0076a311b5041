/* SPDX-License-Identifier: Apache-2.0 */
/* scraper/httpc.c: prometheus/common's HTTPClientConfig on libcurl easy handles (contract in
 * scraper/httpc.h). Used by the scrape loop and the Kubernetes API client.
 *
 * Per request:   base headers (caller) + Host (server_name) + auth + http_headers
 *                  auth = Basic | "<type> <credentials>" | oauth2 "<type> <token>"
 * oauth2 token:  cached (mutex) -> valid until expiry - 10 s -> else POST token_url, outside
 *                the lock; one fetch at a time per client, other threads wait for its token.
 *
 * libcurl copies string options (URL, proxy, file names) and blobs set with CURL_BLOB_COPY;
 * lists (CURLOPT_HTTPHEADER, CONNECT_TO, PROXYHEADER) are borrowed, so the req and the client
 * keep them alive while the handle may use them. */
#include "scraper/httpc.h"

#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/str.h"
#include "common/time.h"

#define SECRET_LIMIT ((size_t)1 << 20)
#define TOKEN_BODY_LIMIT ((size_t)1 << 20)
#define TOKEN_EXPIRY_DELTA_NS (10 * (int64_t)1000000000) /* golang.org/x/oauth2 expiryDelta */
#define MAX_REDIRECTS 10L                                /* net/http */
#define DEFAULT_TOKEN_TIMEOUT_MS 10000

struct tls {
    char *ca, *ca_file, *cert, *cert_file, *key, *key_file, *server_name;
    bool insecure;
    long sslversion;
};

struct proxy {
    char *url, *no_proxy;
    bool from_env;
    struct curl_slist *connect_headers; /* "Name: value" lines, owned */
};

enum auth_style { STYLE_UNKNOWN = 0, STYLE_HEADER, STYLE_PARAMS };

struct oauth {
    char *client_id, *secret, *secret_file, *token_url;
    char **scopes;
    size_t nscopes;
    char **params; /* name, value, name, value, ... sorted by name */
    size_t nparams;
    struct tls tls;
    struct proxy proxy;
    pthread_mutex_t mu;     /* guards everything below */
    pthread_cond_t fetched; /* signalled when a fetch ends */
    bool fetching;          /* one thread is fetching: the others wait for its token */
    char *token_header;     /* "Bearer abc"; NULL: none cached */
    int64_t expiry_ns;      /* monotonic; 0: never expires */
    char *token_secret;     /* the secret the cached token was fetched with */
    enum auth_style style;
    atomic_uint_fast64_t fetches;
};

/* A kubeconfig exec plugin's credentials (client-go exec.Authenticator): one cache per
 * client, the mutex held while the plugin runs so that concurrent requests wait for one run. */
struct execauth {
    struct scrape_kube_exec *x;
    pthread_mutex_t mu; /* guards everything below */
    struct scrape_kube_creds creds;
    bool have;
    uint64_t gen;           /* bumped per successful run; a req remembers what it used */
    int64_t hint_window_ms; /* client-go "sometimes": the install hint 10 times an hour */
    int hints;
    atomic_uint_fast64_t runs;
};

struct scrape_httpc {
    atomic_int refs;
    struct tls tls;
    struct proxy proxy;
    bool follow_redirects, http2;
    bool has_basic;
    char *basic_user, *basic_user_file, *basic_pass, *basic_pass_file;
    char *auth_type; /* NULL: no authorization */
    char *auth_cred, *auth_cred_file;
    struct oauth *oauth;
    struct execauth *exec;
    struct curl_slist *fixed_headers; /* http_headers values and secrets */
    char **hdr_files;                 /* name, path, name, path, ... */
    size_t nhdr_files;
    bool dynamic;
};

struct scrape_httpc_req {
    struct scrape_httpc *c;
    CURL *e;
    struct curl_slist *base;    /* the caller's lines (+ Host), owned copy */
    struct curl_slist *headers; /* what CURLOPT_HTTPHEADER points at */
    struct curl_slist *connect_to;
    char *token_used; /* oauth2 header value of the last request */
    uint64_t exec_gen; /* exec credentials of the last request; 0: none */
    int64_t timeout_ms;
    bool armed; /* begin ran: the next begin looks at the previous status */
};

/* ---- small helpers -------------------------------------------------------------------------- */

static char *dup_opt(const char *s)
{
    return s && *s ? mp_xstrdup(s) : NULL;
}

void scrape_httpc_path_error(char *buf, size_t cap, const char *op, const char *path, int e)
{
    char msg[128];
    snprintf(msg, sizeof msg, "%s", strerror(e));
    if (msg[0] >= 'A' && msg[0] <= 'Z') /* Go's syscall texts are lower case */
        msg[0] = (char)(msg[0] - 'A' + 'a');
    snprintf(buf, cap, "%s %s: %s", op, path, msg);
}

int scrape_httpc_read_file(const char *path, size_t limit, struct mp_buf *out, int *errnum)
{
    *errnum = 0;
    mp_buf_init(out, limit);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        *errnum = errno;
        return MP_EIO;
    }
    char tmp[8192];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(tmp, 1, sizeof tmp, f)) > 0)
        rc = mp_buf_append(out, tmp, n);
    if (rc == 0 && ferror(f)) {
        *errnum = errno ? errno : EIO;
        rc = MP_EIO;
    }
    fclose(f);
    if (rc == 0)
        rc = mp_buf_append(out, "", 0); /* data is non-NULL even for an empty file */
    if (rc != 0)
        mp_buf_fini(out);
    return rc;
}

/* A secret file, trimmed of surrounding white space (prometheus/common FileSecret). err gets
 * "unable to read file F: open F: ..." on failure. */
static int read_secret(const char *path, char **out, struct mp_err *err)
{
    *out = NULL;
    struct mp_buf b;
    int e;
    int rc = scrape_httpc_read_file(path, SECRET_LIMIT, &b, &e);
    if (rc != 0) {
        char why[512];
        if (e != 0)
            scrape_httpc_path_error(why, sizeof why, e == ENOENT || e == EACCES ? "open" : "read",
                                    path, e);
        else
            snprintf(why, sizeof why, "%s", mp_strerror(rc));
        return mp_err_set(err, rc, "unable to read file %s: %s", path, why);
    }
    size_t s = 0, e2 = b.len;
    while (s < e2 && strchr(" \t\r\n\v\f", b.data[s]))
        s++;
    while (e2 > s && strchr(" \t\r\n\v\f", b.data[e2 - 1]))
        e2--;
    *out = mp_xstrndup(b.data + s, e2 - s);
    mp_buf_fini(&b);
    return 0;
}

bool scrape_httpc_readable(const char *path, char *why, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        scrape_httpc_path_error(why, cap, "open", path, errno);
        return false;
    }
    fclose(f);
    return true;
}

/* Whether path can be opened for reading; else err = "<prefix>: open F: ...". */
static int check_readable(const char *path, const char *prefix, struct mp_err *err)
{
    char why[512];
    if (scrape_httpc_readable(path, why, sizeof why))
        return 0;
    return mp_err_set(err, MP_EIO, "%s: %s", prefix, why);
}

static int slist_add(struct curl_slist **l, const char *line)
{
    struct curl_slist *n = curl_slist_append(*l, line);
    if (n == NULL)
        return MP_ENOMEM;
    *l = n;
    return 0;
}

static int slist_addf(struct curl_slist **l, const char *name, const char *value)
{
    struct mp_buf b;
    mp_buf_init(&b, 0);
    int rc = mp_buf_appendf(&b, "%s: %s", name, value);
    if (rc == 0)
        rc = slist_add(l, b.data);
    mp_buf_fini(&b);
    return rc;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void base64_encode(struct mp_buf *out, const unsigned char *p, size_t n, int *rc)
{
    for (size_t i = 0; *rc == 0 && i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        char q[4] = {B64[(v >> 18) & 63], B64[(v >> 12) & 63], i + 1 < n ? B64[(v >> 6) & 63] : '=',
                     i + 2 < n ? B64[v & 63] : '='};
        *rc = mp_buf_append(out, q, 4);
    }
}

int scrape_httpc_base64_encode(struct mp_buf *out, const void *p, size_t n)
{
    int rc = 0;
    base64_encode(out, p, n, &rc);
    return rc;
}

int scrape_httpc_base64_decode(const char *s, size_t n, char **out, size_t *outlen,
                               struct mp_err *err)
{
    *out = NULL;
    *outlen = 0;
    /* Go's decoder skips \r and \n anywhere; keep that, everything else must be alphabet */
    char *d = mp_malloc(n / 4 * 3 + 4);
    if (d == NULL)
        return mp_err_set(err, MP_ENOMEM, "base64: out of memory");
    size_t dl = 0, q = 0, pad = 0;
    unsigned acc = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\r' || ch == '\n')
            continue;
        const char *at = ch ? strchr(B64, ch) : NULL;
        if (ch == '=' && q >= 2) {
            pad++;
            acc <<= 6;
            q++;
        } else if (at == NULL || pad > 0) {
            mp_free(d);
            return mp_err_set(err, MP_EPARSE, "illegal base64 data at input byte %zu", i);
        } else {
            acc = acc << 6 | (unsigned)(at - B64);
            q++;
        }
        if (q == 4) {
            d[dl++] = (char)(acc >> 16);
            if (pad < 2)
                d[dl++] = (char)(acc >> 8);
            if (pad < 1)
                d[dl++] = (char)acc;
            q = 0;
            acc = 0;
        }
    }
    if (q != 0) {
        mp_free(d);
        return mp_err_set(err, MP_EPARSE, "illegal base64 data at input byte %zu", n);
    }
    d[dl] = '\0';
    *out = d;
    *outlen = dl;
    return 0;
}

/* Go's url.QueryEscape: unreserved bytes stay, space becomes '+', the rest %XX. */
static int query_escape(struct mp_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;
    for (const unsigned char *p = (const unsigned char *)s; rc == 0 && *p; p++) {
        unsigned char ch = *p;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            rc = mp_buf_append(b, p, 1);
        } else if (ch == ' ') {
            rc = mp_buf_append(b, "+", 1);
        } else {
            char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            rc = mp_buf_append(b, e, 3);
        }
    }
    return rc;
}

/* ---- TLS and proxy -------------------------------------------------------------------------- */

static long tls_min(enum cfg_tls_version v)
{
    switch (v) {
    case CFG_TLS10:
        return CURL_SSLVERSION_TLSv1_0;
    case CFG_TLS11:
        return CURL_SSLVERSION_TLSv1_1;
    case CFG_TLS13:
        return CURL_SSLVERSION_TLSv1_3;
    default: /* prometheus/common's default minimum */
        return CURL_SSLVERSION_TLSv1_2;
    }
}

static long tls_max(enum cfg_tls_version v)
{
    switch (v) {
    case CFG_TLS10:
        return CURL_SSLVERSION_MAX_TLSv1_0;
    case CFG_TLS11:
        return CURL_SSLVERSION_MAX_TLSv1_1;
    case CFG_TLS12:
        return CURL_SSLVERSION_MAX_TLSv1_2;
    case CFG_TLS13:
        return CURL_SSLVERSION_MAX_TLSv1_3;
    default:
        return CURL_SSLVERSION_MAX_DEFAULT;
    }
}

static void tls_copy(struct tls *d, const struct cfg_tls_config *s)
{
    d->ca = dup_opt(s->ca);
    d->ca_file = dup_opt(s->ca_file);
    d->cert = dup_opt(s->cert);
    d->cert_file = dup_opt(s->cert_file);
    d->key = dup_opt(s->key);
    d->key_file = dup_opt(s->key_file);
    d->server_name = dup_opt(s->server_name);
    d->insecure = s->insecure_skip_verify;
    d->sslversion = tls_min(s->min_version) | tls_max(s->max_version);
}

static void tls_free(struct tls *t)
{
    mp_free(t->ca);
    mp_free(t->ca_file);
    mp_free(t->cert);
    mp_free(t->cert_file);
    mp_free(t->key);
    mp_free(t->key_file);
    mp_free(t->server_name);
}

/* prometheus/common NewTLSConfig reads the CA and the client key pair when it builds the
 * client, so a missing file fails there and not per request. */
static int tls_check(const struct tls *t, struct mp_err *err)
{
    char prefix[1024];
    if (t->ca_file != NULL) {
        snprintf(prefix, sizeof prefix, "unable to load specified CA cert %s", t->ca_file);
        int rc = check_readable(t->ca_file, prefix, err);
        if (rc != 0)
            return rc;
    }
    const char *files[] = {t->cert_file, t->key_file};
    for (size_t i = 0; i < 2; i++) {
        if (files[i] == NULL)
            continue;
        snprintf(prefix, sizeof prefix, "unable to use specified client cert (%s) & key (%s)",
                 t->cert_file ? t->cert_file : "", t->key_file ? t->key_file : "");
        int rc = check_readable(files[i], prefix, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void set_blob(CURL *e, CURLoption opt, const char *pem)
{
    struct curl_blob blob = {(void *)pem, strlen(pem), CURL_BLOB_COPY};
    curl_easy_setopt(e, opt, &blob);
}

static void tls_apply(CURL *e, const struct tls *t)
{
    if (t->ca_file != NULL)
        curl_easy_setopt(e, CURLOPT_CAINFO, t->ca_file);
    if (t->ca != NULL)
        set_blob(e, CURLOPT_CAINFO_BLOB, t->ca);
    if (t->cert_file != NULL)
        curl_easy_setopt(e, CURLOPT_SSLCERT, t->cert_file);
    if (t->cert != NULL)
        set_blob(e, CURLOPT_SSLCERT_BLOB, t->cert);
    if (t->key_file != NULL)
        curl_easy_setopt(e, CURLOPT_SSLKEY, t->key_file);
    if (t->key != NULL)
        set_blob(e, CURLOPT_SSLKEY_BLOB, t->key);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, t->insecure ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, t->insecure ? 0L : 2L);
    curl_easy_setopt(e, CURLOPT_SSLVERSION, t->sslversion);
}

static int proxy_copy(struct proxy *d, const struct cfg_proxy *s)
{
    d->url = dup_opt(s->proxy_url);
    d->no_proxy = dup_opt(s->no_proxy);
    d->from_env = s->proxy_from_environment;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < s->nproxy_connect_header; i++) {
        const struct cfg_multi *m = &s->proxy_connect_header[i];
        for (size_t j = 0; rc == 0 && j < m->nvalues; j++)
            rc = slist_addf(&d->connect_headers, m->name, m->values[j]);
    }
    return rc;
}

static void proxy_free(struct proxy *p)
{
    mp_free(p->url);
    mp_free(p->no_proxy);
    curl_slist_free_all(p->connect_headers);
}

static const char *env2(const char *upper, const char *lower)
{
    const char *v = getenv(upper);
    if (v == NULL || *v == '\0')
        v = getenv(lower);
    return v && *v ? v : NULL;
}

/* Go's http.ProxyFromEnvironment reads HTTP_PROXY for http and HTTPS_PROXY for https URLs
 * (either case) and NO_PROXY; libcurl itself would ignore upper-case HTTP_PROXY. */
static void proxy_apply(CURL *e, const struct proxy *p, const char *url)
{
    const char *proxy = p->url, *no_proxy = p->no_proxy;
    if (proxy == NULL && p->from_env) {
        bool https = strncasecmp(url, "https:", 6) == 0;
        proxy = https ? env2("HTTPS_PROXY", "https_proxy") : env2("HTTP_PROXY", "http_proxy");
        no_proxy = env2("NO_PROXY", "no_proxy");
    }
    /* "" disables libcurl's own look at the environment */
    curl_easy_setopt(e, CURLOPT_PROXY, proxy ? proxy : "");
    curl_easy_setopt(e, CURLOPT_NOPROXY, no_proxy);
    if (p->connect_headers != NULL) {
        curl_easy_setopt(e, CURLOPT_HEADEROPT, (long)CURLHEADER_SEPARATE);
        curl_easy_setopt(e, CURLOPT_PROXYHEADER, p->connect_headers);
    }
}

/* ---- the client ----------------------------------------------------------------------------- */

static void oauth_free(struct oauth *o)
{
    if (o == NULL)
        return;
    mp_free(o->client_id);
    mp_free(o->secret);
    mp_free(o->secret_file);
    mp_free(o->token_url);
    for (size_t i = 0; i < o->nscopes; i++)
        mp_free(o->scopes[i]);
    mp_free(o->scopes);
    for (size_t i = 0; i < o->nparams; i++)
        mp_free(o->params[i]);
    mp_free(o->params);
    tls_free(&o->tls);
    proxy_free(&o->proxy);
    mp_free(o->token_header);
    mp_free(o->token_secret);
    pthread_mutex_destroy(&o->mu);
    pthread_cond_destroy(&o->fetched);
    mp_free(o);
}

static int oauth_copy(struct scrape_httpc *c, const struct cfg_oauth2 *s, struct mp_err *err)
{
    struct oauth *o = mp_xcalloc(1, sizeof *o);
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->fetched, NULL);
    atomic_init(&o->fetches, 0);
    c->oauth = o;
    o->client_id = mp_xstrdup(s->client_id ? s->client_id : "");
    o->secret = mp_xstrdup(s->client_secret ? s->client_secret : "");
    o->secret_file = dup_opt(s->client_secret_file);
    o->token_url = mp_xstrdup(s->token_url ? s->token_url : "");
    o->scopes = mp_xcalloc(s->nscopes ? s->nscopes : 1, sizeof *o->scopes);
    for (size_t i = 0; i < s->nscopes; i++)
        o->scopes[o->nscopes++] = mp_xstrdup(s->scopes[i]);
    o->params = mp_xcalloc(2 * s->nendpoint_params + 1, sizeof *o->params);
    for (size_t i = 0; i < s->nendpoint_params; i++) {
        const char *k = s->endpoint_params[i].name;
        if (strcmp(k, "scope") == 0 && s->nscopes > 0)
            return mp_err_set(err, MP_EINVAL, "oauth2: cannot overwrite parameter \"%s\"", k);
        o->params[o->nparams++] = mp_xstrdup(k);
        o->params[o->nparams++] = mp_xstrdup(s->endpoint_params[i].value);
    }
    tls_copy(&o->tls, &s->tls_config);
    int rc = proxy_copy(&o->proxy, &s->proxy);
    if (rc == 0)
        rc = tls_check(&o->tls, err);
    return rc == 0 ? 0 : mp_err_set(err, rc, "oauth2: %s", mp_strerror(rc));
}

int scrape_httpc_create(const struct cfg_http_client *cfg, struct scrape_httpc **out,
                        struct mp_err *err)
{
    *out = NULL;
    struct scrape_httpc *c = mp_xcalloc(1, sizeof *c);
    atomic_init(&c->refs, 1);
    tls_copy(&c->tls, &cfg->tls_config);
    c->follow_redirects = cfg->follow_redirects;
    c->http2 = cfg->enable_http2;
    int rc = proxy_copy(&c->proxy, &cfg->proxy);
    if (rc == 0 && cfg->basic_auth != NULL) {
        const struct cfg_basic_auth *b = cfg->basic_auth;
        c->has_basic = true;
        c->basic_user = mp_xstrdup(b->username ? b->username : "");
        c->basic_user_file = dup_opt(b->username_file);
        c->basic_pass = mp_xstrdup(b->password ? b->password : "");
        c->basic_pass_file = dup_opt(b->password_file);
        c->dynamic |= c->basic_user_file || c->basic_pass_file;
    }
    if (rc == 0 && cfg->authorization != NULL) {
        const struct cfg_authorization *a = cfg->authorization;
        c->auth_type = mp_xstrdup(a->type && *a->type ? a->type : "Bearer");
        c->auth_cred = mp_xstrdup(a->credentials ? a->credentials : "");
        c->auth_cred_file = dup_opt(a->credentials_file);
        c->dynamic |= c->auth_cred_file != NULL;
    }
    for (size_t i = 0; rc == 0 && i < cfg->nhttp_headers; i++) {
        const struct cfg_http_header *h = &cfg->http_headers[i];
        for (size_t j = 0; rc == 0 && j < h->nvalues; j++)
            rc = slist_addf(&c->fixed_headers, h->name, h->values[j]);
        for (size_t j = 0; rc == 0 && j < h->nsecrets; j++)
            rc = slist_addf(&c->fixed_headers, h->name, h->secrets[j]);
        for (size_t j = 0; j < h->nfiles; j++) {
            c->hdr_files = mp_xrealloc(c->hdr_files, (c->nhdr_files + 2) * sizeof *c->hdr_files);
            c->hdr_files[c->nhdr_files++] = mp_xstrdup(h->name);
            c->hdr_files[c->nhdr_files++] = mp_xstrdup(h->files[j]);
            c->dynamic = true;
        }
    }
    if (rc == 0)
        rc = tls_check(&c->tls, err);
    if (rc == 0 && cfg->oauth2 != NULL) {
        c->dynamic = true;
        rc = oauth_copy(c, cfg->oauth2, err);
    }
    if (rc != 0) {
        scrape_httpc_release(c);
        return mp_err_set(err, rc, "%s", mp_strerror(rc));
    }
    *out = c;
    return 0;
}

struct scrape_httpc *scrape_httpc_acquire(struct scrape_httpc *c)
{
    /* relaxed: taking a reference needs no ordering, only the final release does */
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

void scrape_httpc_release(struct scrape_httpc *c)
{
    if (c == NULL || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    tls_free(&c->tls);
    proxy_free(&c->proxy);
    mp_free(c->basic_user);
    mp_free(c->basic_user_file);
    mp_free(c->basic_pass);
    mp_free(c->basic_pass_file);
    mp_free(c->auth_type);
    mp_free(c->auth_cred);
    mp_free(c->auth_cred_file);
    oauth_free(c->oauth);
    if (c->exec != NULL) {
        scrape_kube_exec_destroy(c->exec->x);
        scrape_kube_creds_fini(&c->exec->creds);
        pthread_mutex_destroy(&c->exec->mu);
        mp_free(c->exec);
    }
    curl_slist_free_all(c->fixed_headers);
    for (size_t i = 0; i < c->nhdr_files; i++)
        mp_free(c->hdr_files[i]);
    mp_free(c->hdr_files);
    mp_free(c);
}

void scrape_httpc_set_exec(struct scrape_httpc *c, const struct scrape_kube_exec *x)
{
    struct execauth *a = mp_xcalloc(1, sizeof *a);
    a->x = scrape_kube_exec_dup(x);
    pthread_mutex_init(&a->mu, NULL);
    atomic_init(&a->runs, 0);
    c->exec = a;
    c->dynamic = true;
}

uint64_t scrape_httpc_exec_runs(const struct scrape_httpc *c)
{
    return c->exec ? atomic_load(&c->exec->runs) : 0;
}

/* The plugin's credentials, cached until their expiry (copies in out). */
static int exec_creds(struct execauth *a, struct scrape_kube_creds *out, uint64_t *gen,
                      struct mp_err *err)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&a->mu);
    int rc = 0;
    int64_t now = mp_now_ms();
    if (!a->have || (a->creds.expiry_ms != 0 && now > a->creds.expiry_ms)) {
        if (now - a->hint_window_ms >= 3600 * 1000) {
            a->hint_window_ms = now;
            a->hints = 0;
        }
        bool hint = a->hints < 10;
        struct scrape_kube_creds fresh;
        atomic_fetch_add(&a->runs, 1);
        rc = scrape_kube_exec_run(a->x, hint, &fresh, err);
        if (rc == 0) {
            scrape_kube_creds_fini(&a->creds);
            a->creds = fresh;
            a->have = true;
            a->gen++;
        } else if (hint && strstr(err->msg, "not found\n") != NULL) {
            a->hints++;
        }
    }
    if (rc == 0) {
        out->token = dup_opt(a->creds.token);
        out->cert = dup_opt(a->creds.cert);
        out->key = dup_opt(a->creds.key);
        *gen = a->gen;
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

/* After a 401 with the credentials of run gen: run the plugin again next time, unless that
 * already happened (client-go maybeRefreshCreds). */
static void exec_drop(struct execauth *a, uint64_t gen)
{
    pthread_mutex_lock(&a->mu);
    if (a->gen == gen)
        a->have = false;
    pthread_mutex_unlock(&a->mu);
}

uint64_t scrape_httpc_token_fetches(const struct scrape_httpc *c)
{
    return c->oauth ? atomic_load(&c->oauth->fetches) : 0;
}

/* ---- fingerprint ----------------------------------------------------------------------------- */

/* Each string length-prefixed ("5:value", "-" for NULL), so no two configs print alike. */
static void fp_str(struct mp_buf *b, const char *s, int *rc)
{
    if (*rc == 0)
        *rc = s ? mp_buf_appendf(b, "%zu:%s;", strlen(s), s) : mp_buf_append(b, "-;", 2);
}

static void fp_strs(struct mp_buf *b, char *const *v, size_t n, int *rc)
{
    if (*rc == 0)
        *rc = mp_buf_appendf(b, "[%zu]", n);
    for (size_t i = 0; i < n; i++)
        fp_str(b, v[i], rc);
}

static void fp_int(struct mp_buf *b, long v, int *rc)
{
    if (*rc == 0)
        *rc = mp_buf_appendf(b, "%ld;", v);
}

static void fp_tls(struct mp_buf *b, const struct cfg_tls_config *t, int *rc)
{
    const char *s[] = {t->ca,        t->cert,     t->key,        t->ca_file,
                       t->cert_file, t->key_file, t->server_name};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        fp_str(b, s[i], rc);
    fp_int(b, t->insecure_skip_verify, rc);
    fp_int(b, (long)t->min_version, rc);
    fp_int(b, (long)t->max_version, rc);
}

static void fp_proxy(struct mp_buf *b, const struct cfg_proxy *p, int *rc)
{
    fp_str(b, p->proxy_url, rc);
    fp_str(b, p->no_proxy, rc);
    fp_int(b, p->proxy_from_environment, rc);
    fp_int(b, (long)p->nproxy_connect_header, rc);
    for (size_t i = 0; i < p->nproxy_connect_header; i++) {
        fp_str(b, p->proxy_connect_header[i].name, rc);
        fp_strs(b, p->proxy_connect_header[i].values, p->proxy_connect_header[i].nvalues, rc);
    }
}

char *scrape_httpc_fingerprint(const struct cfg_http_client *cfg)
{
    struct mp_buf b;
    mp_buf_init(&b, 0);
    int rc = 0;
    const struct cfg_basic_auth *ba = cfg->basic_auth;
    fp_int(&b, ba != NULL, &rc);
    if (ba != NULL) {
        fp_str(&b, ba->username, &rc);
        fp_str(&b, ba->username_file, &rc);
        fp_str(&b, ba->password, &rc);
        fp_str(&b, ba->password_file, &rc);
    }
    const struct cfg_authorization *a = cfg->authorization;
    fp_int(&b, a != NULL, &rc);
    if (a != NULL) {
        fp_str(&b, a->type, &rc);
        fp_str(&b, a->credentials, &rc);
        fp_str(&b, a->credentials_file, &rc);
    }
    const struct cfg_oauth2 *o = cfg->oauth2;
    fp_int(&b, o != NULL, &rc);
    if (o != NULL) {
        fp_str(&b, o->client_id, &rc);
        fp_str(&b, o->client_secret, &rc);
        fp_str(&b, o->client_secret_file, &rc);
        fp_strs(&b, o->scopes, o->nscopes, &rc);
        fp_str(&b, o->token_url, &rc);
        fp_int(&b, (long)o->nendpoint_params, &rc);
        for (size_t i = 0; i < o->nendpoint_params; i++) {
            fp_str(&b, o->endpoint_params[i].name, &rc);
            fp_str(&b, o->endpoint_params[i].value, &rc);
        }
        fp_tls(&b, &o->tls_config, &rc);
        fp_proxy(&b, &o->proxy, &rc);
    }
    fp_tls(&b, &cfg->tls_config, &rc);
    fp_int(&b, cfg->follow_redirects, &rc);
    fp_int(&b, cfg->enable_http2, &rc);
    fp_proxy(&b, &cfg->proxy, &rc);
    fp_int(&b, (long)cfg->nhttp_headers, &rc);
    for (size_t i = 0; i < cfg->nhttp_headers; i++) {
        const struct cfg_http_header *h = &cfg->http_headers[i];
        fp_str(&b, h->name, &rc);
        fp_strs(&b, h->values, h->nvalues, &rc);
        fp_strs(&b, h->secrets, h->nsecrets, &rc);
        fp_strs(&b, h->files, h->nfiles, &rc);
    }
    if (rc != 0)
        mp_panic("httpc fingerprint: %s", mp_strerror(rc));
    char *s = mp_buf_take(&b, NULL);
    return s ? s : mp_xstrdup("");
}

/* ---- oauth2 client credentials ----------------------------------------------------------------
 */

struct token_resp {
    struct mp_buf body;
    char status_line[96]; /* "400 Bad Request" */
};

static size_t token_body(char *p, size_t size, size_t nmemb, void *ud)
{
    struct token_resp *t = ud;
    return mp_buf_append(&t->body, p, size * nmemb) == 0 ? size * nmemb : 0;
}

static size_t token_header(char *p, size_t size, size_t nmemb, void *ud)
{
    struct token_resp *t = ud;
    size_t n = size * nmemb;
    if (n > 5 && memcmp(p, "HTTP/", 5) == 0) {
        const char *sp = memchr(p, ' ', n);
        if (sp != NULL) {
            const char *st = sp + 1;
            size_t k = n - (size_t)(st - p);
            while (k > 0 && (st[k - 1] == '\r' || st[k - 1] == '\n' || st[k - 1] == ' '))
                k--;
            snprintf(t->status_line, sizeof t->status_line, "%.*s", (int)k, st);
        }
    }
    return n;
}

/* Go's Token.Type(): the well-known types capitalised, "" is Bearer. */
static const char *token_type(const char *t)
{
    if (t == NULL || *t == '\0' || strcasecmp(t, "bearer") == 0)
        return "Bearer";
    if (strcasecmp(t, "mac") == 0)
        return "MAC";
    if (strcasecmp(t, "basic") == 0)
        return "Basic";
    return t;
}

static int form_value(const char *body, const char *key, char **out)
{
    size_t kl = strlen(key);
    for (const char *p = body; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t n = amp ? (size_t)(amp - p) : strlen(p);
        if (n > kl && memcmp(p, key, kl) == 0 && p[kl] == '=') {
            int len = 0;
            char *raw = mp_xstrndup(p + kl + 1, n - kl - 1);
            for (char *q = raw; *q; q++)
                if (*q == '+')
                    *q = ' ';
            char *v = curl_easy_unescape(NULL, raw, 0, &len);
            mp_free(raw);
            if (v == NULL)
                return MP_ENOMEM;
            *out = mp_xstrndup(v, (size_t)len);
            curl_free(v);
            return 0;
        }
        p = amp ? amp + 1 : NULL;
    }
    return 0;
}

/* The token response (golang.org/x/oauth2/internal doTokenRoundTrip): form-encoded for
 * text/plain and application/x-www-form-urlencoded, JSON otherwise. */
static int parse_token(const char *ctype, const char *body, char **header, int64_t *expires_s,
                       struct mp_err *err)
{
    char *access = NULL, *type = NULL, *exp = NULL;
    int64_t expires = 0;
    int rc = 0;
    if (ctype && (strncasecmp(ctype, "application/x-www-form-urlencoded", 33) == 0 ||
                  strncasecmp(ctype, "text/plain", 10) == 0)) {
        rc = form_value(body, "access_token", &access);
        if (rc == 0)
            rc = form_value(body, "token_type", &type);
        if (rc == 0)
            rc = form_value(body, "expires_in", &exp);
        if (rc == 0 && exp != NULL)
            expires = strtoll(exp, NULL, 10);
    } else {
        json_object *j = json_tokener_parse(body);
        if (j == NULL || !json_object_is_type(j, json_type_object)) {
            json_object_put(j);
            return mp_err_set(err, MP_EPARSE, "oauth2: cannot parse json: invalid character");
        }
        json_object *v = NULL;
        if (json_object_object_get_ex(j, "access_token", &v) &&
            json_object_is_type(v, json_type_string))
            access = mp_xstrdup(json_object_get_string(v));
        if (json_object_object_get_ex(j, "token_type", &v) &&
            json_object_is_type(v, json_type_string))
            type = mp_xstrdup(json_object_get_string(v));
        if (json_object_object_get_ex(j, "expires_in", &v))
            expires = json_object_get_int64(v);
        json_object_put(j);
    }
    if (rc == 0 && (access == NULL || *access == '\0'))
        rc = mp_err_set(err, MP_EPARSE, "oauth2: server response missing access_token");
    if (rc == 0) {
        struct mp_buf b;
        mp_buf_init(&b, 0);
        rc = mp_buf_appendf(&b, "%s %s", token_type(type), access);
        *header = rc == 0 ? mp_buf_take(&b, NULL) : NULL;
        mp_buf_fini(&b);
        *expires_s = expires;
    }
    mp_free(access);
    mp_free(type);
    mp_free(exp);
    return rc;
}

struct kv {
    const char *k, *v;
};

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const struct kv *)a)->k, ((const struct kv *)b)->k);
}

/* The form body as url.Values.Encode writes it: sorted by key. x/oauth2 starts from
 * grant_type and scope, lets endpoint_params add keys (or replace grant_type), then with the
 * credentials in the body sets client_id and client_secret over whatever was there. */
static int token_form(const struct oauth *o, const char *secret, bool in_params, struct mp_buf *b)
{
    struct kv *kv = mp_xcalloc(o->nparams / 2 + 4, sizeof *kv);
    size_t n = 0;
    struct mp_buf scope;
    mp_buf_init(&scope, 0);
    int rc = mp_buf_append(&scope, "", 0);
    for (size_t i = 0; rc == 0 && i < o->nscopes; i++)
        rc = mp_buf_appendf(&scope, "%s%s", i ? " " : "", o->scopes[i]);
    bool grant_overridden = false;
    for (size_t i = 0; i + 1 < o->nparams; i += 2) {
        const char *k = o->params[i];
        grant_overridden |= strcmp(k, "grant_type") == 0;
        if (in_params && (strcmp(k, "client_id") == 0 || strcmp(k, "client_secret") == 0))
            continue;
        kv[n++] = (struct kv){k, o->params[i + 1]};
    }
    if (!grant_overridden)
        kv[n++] = (struct kv){"grant_type", "client_credentials"};
    if (o->nscopes > 0)
        kv[n++] = (struct kv){"scope", scope.data};
    if (in_params) {
        kv[n++] = (struct kv){"client_id", o->client_id};
        if (*secret)
            kv[n++] = (struct kv){"client_secret", secret};
    }
    qsort(kv, n, sizeof *kv, cmp_kv);
    rc = rc == 0 ? mp_buf_append(b, "", 0) : rc;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (i > 0)
            rc = mp_buf_append(b, "&", 1);
        if (rc == 0)
            rc = query_escape(b, kv[i].k);
        if (rc == 0)
            rc = mp_buf_append(b, "=", 1);
        if (rc == 0)
            rc = query_escape(b, kv[i].v);
    }
    mp_buf_fini(&scope);
    mp_free(kv);
    return rc;
}

static const char *status_text(long code)
{
    switch (code) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    default:
        return "";
    }
}

/* One POST to token_url. *http_failed: the server answered, but not 2xx. */
static int token_post(struct oauth *o, const char *secret, bool in_params, int64_t timeout_ms,
                      char **header, int64_t *expires_s, bool *http_failed, struct mp_err *err)
{
    *http_failed = false;
    atomic_fetch_add(&o->fetches, 1);
    CURL *e = curl_easy_init();
    if (e == NULL)
        return mp_err_set(err, MP_ENOMEM, "oauth2: curl_easy_init failed");
    struct token_resp t = {.status_line = ""};
    mp_buf_init(&t.body, TOKEN_BODY_LIMIT);
    struct mp_buf form, basic;
    mp_buf_init(&form, 0);
    mp_buf_init(&basic, 0);
    struct curl_slist *hdrs = NULL;
    int rc = token_form(o, secret, in_params, &form);
    if (rc == 0)
        rc = slist_add(&hdrs, "Content-Type: application/x-www-form-urlencoded");
    if (rc == 0 && !in_params) {
        /* SetBasicAuth(QueryEscape(id), QueryEscape(secret)) */
        struct mp_buf up;
        mp_buf_init(&up, 0);
        rc = query_escape(&up, o->client_id);
        if (rc == 0)
            rc = mp_buf_append(&up, ":", 1);
        if (rc == 0)
            rc = query_escape(&up, secret);
        if (rc == 0)
            rc = mp_buf_append_str(&basic, "Authorization: Basic ");
        if (rc == 0)
            base64_encode(&basic, (const unsigned char *)up.data, up.len, &rc);
        if (rc == 0)
            rc = slist_add(&hdrs, basic.data);
        mp_buf_fini(&up);
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    CURLcode cc = CURLE_OK;
    if (rc == 0) {
        curl_easy_setopt(e, CURLOPT_URL, o->token_url);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, form.data);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)form.len);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, token_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, token_header);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, &t);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(e, CURLOPT_MAXREDIRS, MAX_REDIRECTS);
        curl_easy_setopt(e, CURLOPT_POSTREDIR, (long)CURL_REDIR_POST_ALL);
        tls_apply(e, &o->tls);
        proxy_apply(e, &o->proxy, o->token_url);
        cc = curl_easy_perform(e);
    }
    long code = 0;
    char *ctype = NULL;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &ctype);
    if (rc != 0) {
        rc = mp_err_set(err, rc, "oauth2: %s", mp_strerror(rc));
    } else if (cc != CURLE_OK) {
        rc = mp_err_set(err, cc == CURLE_OPERATION_TIMEDOUT ? MP_ETIMEOUT : MP_EIO,
                        "oauth2: cannot fetch token: Post \"%s\": %s", o->token_url,
                        errbuf[0] ? errbuf : curl_easy_strerror(cc));
    } else if (code < 200 || code > 299) {
        *http_failed = true;
        char st[128];
        if (t.status_line[0])
            snprintf(st, sizeof st, "%s", t.status_line);
        else
            snprintf(st, sizeof st, "%ld %s", code, status_text(code));
        rc = mp_err_set(err, MP_EIO, "oauth2: cannot fetch token: %s\nResponse: %.200s", st,
                        t.body.data ? t.body.data : "");
    } else {
        rc = parse_token(ctype, t.body.data ? t.body.data : "", header, expires_s, err);
    }
    curl_slist_free_all(hdrs);
    mp_buf_fini(&form);
    mp_buf_fini(&basic);
    mp_buf_fini(&t.body);
    curl_easy_cleanup(e);
    return rc;
}

/* The Authorization value for the next request: cached, else fetched (AuthStyleAutoDetect:
 * header first, then params, remembering what worked). */
static int oauth_header(struct oauth *o, int64_t timeout_ms, char **out, struct mp_err *err)
{
    *out = NULL;
    char *secret = NULL;
    if (o->secret_file != NULL) {
        int rc = read_secret(o->secret_file, &secret, err);
        if (rc != 0) {
            mp_err_wrap(err, "unable to read oauth2 client secret");
            return rc;
        }
    } else {
        secret = mp_xstrdup(o->secret);
    }
    /* single flight, as x/oauth2's ReuseTokenSource holds its mutex across the fetch: while
     * one thread fetches, the others (the pool's targets on other loops) wait for its token
     * instead of fetching their own; after a failed fetch the next waiter tries itself */
    pthread_mutex_lock(&o->mu);
    for (;;) {
        if (o->token_header != NULL && strcmp(o->token_secret, secret) == 0 &&
            (o->expiry_ns == 0 || mp_mono_ns() < o->expiry_ns - TOKEN_EXPIRY_DELTA_NS)) {
            *out = mp_xstrdup(o->token_header);
            break;
        }
        if (!o->fetching)
            break;
        pthread_cond_wait(&o->fetched, &o->mu);
    }
    enum auth_style style = o->style;
    if (*out == NULL)
        o->fetching = true;
    pthread_mutex_unlock(&o->mu);
    if (*out != NULL) {
        mp_free(secret);
        return 0;
    }
    char *hdr = NULL;
    int64_t expires = 0;
    bool http_failed = false;
    struct mp_err first;
    mp_err_clear(&first);
    int rc = token_post(o, secret, style == STYLE_PARAMS, timeout_ms, &hdr, &expires, &http_failed,
                        &first);
    enum auth_style used = style == STYLE_PARAMS ? STYLE_PARAMS : STYLE_HEADER;
    if (rc != 0 && style == STYLE_UNKNOWN && http_failed) {
        /* x/oauth2 returns the second attempt's error */
        rc = token_post(o, secret, true, timeout_ms, &hdr, &expires, &http_failed, err);
        used = STYLE_PARAMS;
    } else if (rc != 0) {
        mp_err_set(err, rc, "%s", first.msg);
    }
    pthread_mutex_lock(&o->mu);
    o->fetching = false;
    pthread_cond_broadcast(&o->fetched);
    if (rc == 0) {
        mp_free(o->token_header);
        mp_free(o->token_secret);
        o->token_header = mp_xstrdup(hdr);
        o->token_secret = secret;
        secret = NULL;
        o->expiry_ns = expires > 0 ? mp_mono_ns() + expires * (int64_t)1000000000 : 0;
        if (o->style == STYLE_UNKNOWN)
            o->style = used;
    }
    pthread_mutex_unlock(&o->mu);
    mp_free(secret);
    if (rc != 0) {
        mp_free(hdr);
        hdr = NULL;
    }
    *out = hdr;
    return rc;
}

static void oauth_drop(struct oauth *o, const char *used)
{
    pthread_mutex_lock(&o->mu);
    if (o->token_header != NULL && strcmp(o->token_header, used) == 0) {
        mp_free(o->token_header);
        o->token_header = NULL;
    }
    pthread_mutex_unlock(&o->mu);
}

/* ---- per-handle requests ------------------------------------------------------------------ */

/* server_name on an https URL: the URL names server_name, CONNECT_TO goes to the real host,
 * and Host keeps the URL's host[:port] as written. */
static int set_url(struct scrape_httpc_req *r, const char *url, struct mp_err *err)
{
    const char *sn = r->c->tls.server_name;
    if (sn == NULL || strncasecmp(url, "https:", 6) != 0) {
        curl_easy_setopt(r->e, CURLOPT_URL, url);
        return 0;
    }
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL, *given_port = NULL, *out = NULL;
    int rc = 0;
    if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        rc = mp_err_set(err, MP_EINVAL, "parse \"%s\": invalid URL", url);
    } else {
        if (curl_url_get(u, CURLUPART_PORT, &given_port, 0) != CURLUE_OK)
            given_port = NULL;
        if (curl_url_set(u, CURLUPART_HOST, sn, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_URL, &out, 0) != CURLUE_OK)
            rc = mp_err_set(err, MP_EINVAL, "tls_config.server_name \"%s\" cannot be a URL host",
                            sn);
    }
    if (rc == 0) {
        struct mp_buf b;
        mp_buf_init(&b, 0);
        rc = mp_buf_appendf(&b, "%s:%s:%s:%s", sn, port, host, port);
        if (rc == 0)
            rc = slist_add(&r->connect_to, b.data);
        mp_buf_reset(&b);
        if (rc == 0)
            rc = mp_buf_appendf(&b, "Host: %s%s%s", host, given_port ? ":" : "",
                                given_port ? given_port : "");
        if (rc == 0)
            rc = slist_add(&r->base, b.data);
        mp_buf_fini(&b);
        if (rc == 0) {
            curl_easy_setopt(r->e, CURLOPT_CONNECT_TO, r->connect_to);
            curl_easy_setopt(r->e, CURLOPT_URL, out);
        } else {
            rc = mp_err_set(err, rc, "%s", mp_strerror(rc));
        }
    }
    curl_free(host);
    curl_free(port);
    curl_free(given_port);
    curl_free(out);
    curl_url_cleanup(u);
    return rc;
}

int scrape_httpc_req_create(struct scrape_httpc *c, void *easy, const char *url,
                            const struct curl_slist *base, int64_t timeout_ms,
                            struct scrape_httpc_req **out, struct mp_err *err)
{
    *out = NULL;
    struct scrape_httpc_req *r = mp_xcalloc(1, sizeof *r);
    r->c = scrape_httpc_acquire(c);
    r->e = easy;
    r->timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TOKEN_TIMEOUT_MS;
    int rc = 0;
    for (const struct curl_slist *l = base; rc == 0 && l; l = l->next)
        rc = slist_add(&r->base, l->data);
    if (rc != 0)
        rc = mp_err_set(err, rc, "%s", mp_strerror(rc));
    if (rc == 0)
        rc = set_url(r, url, err);
    if (rc != 0) {
        scrape_httpc_req_destroy(r);
        return rc;
    }
    tls_apply(easy, &c->tls);
    proxy_apply(easy, &c->proxy, url);
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, c->follow_redirects ? 1L : 0L);
    curl_easy_setopt(easy, CURLOPT_MAXREDIRS, MAX_REDIRECTS);
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION,
                     c->http2 ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_1_1);
    /* static headers go in now, so a caller that never calls begin still sends them */
    if (!c->dynamic && (rc = scrape_httpc_req_begin(r, err)) != 0) {
        scrape_httpc_req_destroy(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* Appends "Authorization: Basic base64(user:pass)". */
static int add_basic(struct curl_slist **l, const char *user, const char *pass)
{
    struct mp_buf up, line;
    mp_buf_init(&up, 0);
    mp_buf_init(&line, 0);
    int rc = mp_buf_appendf(&up, "%s:%s", user, pass);
    if (rc == 0)
        rc = mp_buf_append_str(&line, "Authorization: Basic ");
    if (rc == 0)
        base64_encode(&line, (const unsigned char *)up.data, up.len, &rc);
    if (rc == 0)
        rc = slist_add(l, line.data);
    mp_buf_fini(&up);
    mp_buf_fini(&line);
    return rc;
}

/* The secret from file (re-read) or the fixed value. */
static int secret_of(const char *file, const char *fixed, char **out, struct mp_err *err)
{
    if (file != NULL)
        return read_secret(file, out, err);
    *out = mp_xstrdup(fixed ? fixed : "");
    return 0;
}

static int build_headers(struct scrape_httpc_req *r, struct curl_slist **l, char **token,
                         struct mp_err *err)
{
    struct scrape_httpc *c = r->c;
    int rc = 0;
    for (const struct curl_slist *b = r->base; rc == 0 && b; b = b->next)
        rc = slist_add(l, b->data);
    if (rc == 0 && c->has_basic) {
        char *user = NULL, *pass = NULL;
        rc = secret_of(c->basic_user_file, c->basic_user, &user, err);
        if (rc != 0)
            mp_err_wrap(err, "unable to read basic auth username");
        if (rc == 0 && (rc = secret_of(c->basic_pass_file, c->basic_pass, &pass, err)) != 0)
            mp_err_wrap(err, "unable to read basic auth password");
        if (rc == 0)
            rc = add_basic(l, user, pass);
        mp_free(user);
        mp_free(pass);
    }
    if (rc == 0 && c->auth_type != NULL) {
        char *cred = NULL;
        rc = secret_of(c->auth_cred_file, c->auth_cred, &cred, err);
        if (rc != 0) {
            mp_err_wrap(err, "unable to read authorization credentials");
        } else {
            struct mp_buf v;
            mp_buf_init(&v, 0);
            rc = mp_buf_appendf(&v, "%s %s", c->auth_type, cred);
            if (rc == 0)
                rc = slist_addf(l, "Authorization", v.data);
            mp_buf_fini(&v);
        }
        mp_free(cred);
    }
    if (rc == 0 && c->oauth != NULL) {
        rc = oauth_header(c->oauth, r->timeout_ms, token, err);
        if (rc == 0)
            rc = slist_addf(l, "Authorization", *token);
    }
    if (rc == 0 && c->exec != NULL) {
        struct scrape_kube_creds cr;
        rc = exec_creds(c->exec, &cr, &r->exec_gen, err);
        if (rc != 0)
            mp_err_wrap(err, "getting credentials");
        if (rc == 0 && cr.token != NULL) {
            struct mp_buf v;
            mp_buf_init(&v, 0);
            rc = mp_buf_appendf(&v, "Bearer %s", cr.token);
            if (rc == 0)
                rc = slist_addf(l, "Authorization", v.data);
            mp_buf_fini(&v);
        }
        if (rc == 0 && cr.cert != NULL) {
            set_blob(r->e, CURLOPT_SSLCERT_BLOB, cr.cert);
            set_blob(r->e, CURLOPT_SSLKEY_BLOB, cr.key);
        }
        scrape_kube_creds_fini(&cr);
    }
    for (const struct curl_slist *h = c->fixed_headers; rc == 0 && h; h = h->next)
        rc = slist_add(l, h->data);
    for (size_t i = 0; rc == 0 && i + 1 < c->nhdr_files; i += 2) {
        char *v = NULL;
        rc = read_secret(c->hdr_files[i + 1], &v, err);
        if (rc != 0)
            mp_err_wrap(err, "unable to read header %s", c->hdr_files[i]);
        else
            rc = slist_addf(l, c->hdr_files[i], v);
        mp_free(v);
    }
    return rc;
}

int scrape_httpc_req_begin(struct scrape_httpc_req *r, struct mp_err *err)
{
    if (r->armed) {
        long status = 0;
        curl_easy_getinfo(r->e, CURLINFO_RESPONSE_CODE, &status);
        scrape_httpc_req_end(r, status);
        if (!r->c->dynamic)
            return 0;
    }
    r->armed = true;
    struct curl_slist *l = NULL;
    char *token = NULL;
    int rc = build_headers(r, &l, &token, err);
    if (rc != 0) {
        curl_slist_free_all(l);
        mp_free(token);
        return mp_err_set(err, rc, "%s", mp_strerror(rc));
    }
    curl_easy_setopt(r->e, CURLOPT_HTTPHEADER, l);
    curl_slist_free_all(r->headers);
    r->headers = l;
    mp_free(r->token_used);
    r->token_used = token;
    return 0;
}

void scrape_httpc_req_end(struct scrape_httpc_req *r, long status)
{
    if (status == 401 && r->c->exec != NULL && r->exec_gen != 0) {
        exec_drop(r->c->exec, r->exec_gen);
        r->exec_gen = 0;
    }
    if (status == 401 && r->c->oauth != NULL && r->token_used != NULL) {
        oauth_drop(r->c->oauth, r->token_used);
        mp_free(r->token_used);
        r->token_used = NULL;
    }
}

void scrape_httpc_req_destroy(struct scrape_httpc_req *r)
{
    if (r == NULL)
        return;
    if (r->e != NULL && r->headers != NULL)
        curl_easy_setopt(r->e, CURLOPT_HTTPHEADER, NULL);
    if (r->e != NULL && r->connect_to != NULL)
        curl_easy_setopt(r->e, CURLOPT_CONNECT_TO, NULL);
    curl_slist_free_all(r->headers);
    curl_slist_free_all(r->base);
    curl_slist_free_all(r->connect_to);
    mp_free(r->token_used);
    scrape_httpc_release(r->c);
    mp_free(r);
}
