/* SPDX-License-Identifier: Apache-2.0 */
/* scraper/k8s_client.c: the Kubernetes API client of kubernetes_sd_configs (kubernetes-sd.md
 * 1.2, 1.6, 1.8) over libcurl: where the server is and how to authenticate (api_server with
 * its HTTP client config, kubeconfig_file (kubeconfig.c), or in-cluster from
 * KUBERNETES_SERVICE_HOST/PORT and the service-account directory, token re-read per request);
 * TLS, auth and proxy options are applied by scraper/httpc.c. The two request shapes are a
 * plain GET for LIST and a streamed GET for WATCH whose body is decoded as concatenated JSON
 * values (json-c's incremental tokener, so an event may be split across chunks anywhere).
 *
 * A client is immutable after create and shared by a provider's reflector threads; each
 * request uses its own easy handle. */
#include "scraper/sd_internal.h"

#include <curl/curl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/time.h"
#include "configs/config.h"
#include "scraper/httpc.h"

#define LIST_BODY_LIMIT ((size_t)1 << 30)
#define EVENT_LIMIT ((size_t)64 << 20)

struct scrape_k8s_client {
    char *base;                /* scheme://host:port[/prefix], no trailing slash */
    struct scrape_httpc *http; /* TLS, auth, proxy: api_server's, kubeconfig's or in-cluster */
    bool identity;             /* kubeconfig disable-compression: lists not gzipped */
};

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = mp_xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

void scrape_k8s_client_destroy(struct scrape_k8s_client *c)
{
    if (c == NULL)
        return;
    mp_free(c->base);
    scrape_httpc_release(c->http);
    mp_free(c);
}

static char *trimmed_base(const char *url)
{
    char *b = mp_xstrdup(url);
    size_t n = strlen(b);
    while (n > 0 && b[n - 1] == '/')
        b[--n] = '\0';
    return b;
}

/* In-cluster (kubernetes-sd.md 1.8 (a)): https to KUBERNETES_SERVICE_HOST:PORT, the service
 * account's token (re-read per request) and CA. */
static int in_cluster(struct scrape_k8s_client *c, const char *sa_dir, struct mp_err *err)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    if (host == NULL || *host == '\0' || port == NULL || *port == '\0')
        return mp_err_set(err, MP_EINVAL,
                          "kubernetes_sd_configs: unable to load in-cluster configuration, "
                          "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined");
    size_t n = strlen(host) + strlen(port) + 16;
    c->base = mp_xmalloc(n);
    snprintf(c->base, n, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
    char *token = path_join(sa_dir, "token");
    char *ca = path_join(sa_dir, "ca.crt");
    FILE *f = fopen(token, "rb");
    int rc = 0;
    if (f == NULL) {
        rc = mp_err_set(err, MP_EINVAL,
                        "kubernetes_sd_configs: in-cluster token %s is not readable", token);
    } else {
        fclose(f);
        struct cfg_authorization auth = {.type = "Bearer", .credentials_file = token};
        struct cfg_http_client h = {.authorization = &auth,
                                    .follow_redirects = true,
                                    .enable_http2 = true};
        h.tls_config.ca_file = ca;
        rc = scrape_httpc_create(&h, &c->http, err);
    }
    mp_free(token);
    mp_free(ca);
    return rc;
}

int scrape_k8s_client_create(const struct cfg_kubernetes_sd *cfg, const char *sa_dir,
                             struct scrape_k8s_client **out, struct mp_err *err)
{
    *out = NULL;
    struct scrape_k8s_client *c = mp_xcalloc(1, sizeof *c);
    int rc;
    if (cfg->kubeconfig_file != NULL) {
        struct scrape_kubeconfig kc;
        rc = scrape_kubeconfig_load(cfg->kubeconfig_file, &kc, err);
        if (rc == 0) {
            c->base = mp_xstrdup(kc.server);
            c->identity = kc.disable_compression;
            rc = scrape_httpc_create(&kc.http, &c->http, err);
            if (rc == 0 && kc.exec != NULL)
                scrape_httpc_set_exec(c->http, kc.exec); /* credentials per request */
            scrape_kubeconfig_fini(&kc);
        }
        if (rc != 0)
            mp_err_wrap(err, "kubernetes_sd_configs: kubeconfig_file %s", cfg->kubeconfig_file);
    } else if (cfg->api_server != NULL) {
        c->base = trimmed_base(cfg->api_server);
        rc = scrape_httpc_create(&cfg->http, &c->http, err);
        if (rc != 0)
            mp_err_wrap(err, "kubernetes_sd_configs");
    } else {
        rc = in_cluster(c, sa_dir, err);
    }
    if (rc != 0) {
        scrape_k8s_client_destroy(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* ---- request set-up ------------------------------------------------------------------------ */

struct req {
    struct scrape_k8s_client *c;
    CURL *h;
    struct curl_slist *headers;    /* ours: Accept */
    struct scrape_httpc_req *http; /* the client config's options and headers */
    const atomic_bool *stop;
    /* body handling */
    struct mp_buf *body;              /* GET */
    struct scrape_k8s_stream *stream; /* WATCH */
    scrape_k8s_event_fn *fn;
    void *ctx;
    int stream_rc;
    struct mp_err stream_err;
    int64_t idle_ms, max_ms;
    int64_t start_ns, last_byte_ns;
    int abort_reason; /* 0, MP_ECANCELED, MP_ETIMEOUT */
    long status;
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    struct req *r = arg;
    size_t n = size * nmemb;
    r->last_byte_ns = mp_mono_ns();
    if (r->stream == NULL)
        return mp_buf_append(r->body, p, n) == 0 ? n : 0;
    if (r->status == 0)
        curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->status != 200) /* an error body: keep it for the message */
        return mp_buf_append(r->body, p, n) == 0 ? n : 0;
    int rc = scrape_k8s_stream_feed(r->stream, p, n, r->fn, r->ctx, &r->stream_err);
    if (rc != 0) {
        r->stream_rc = rc;
        return 0;
    }
    return n;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    struct req *r = arg;
    if (r->stop != NULL && atomic_load(r->stop)) {
        r->abort_reason = MP_ECANCELED;
        return 1;
    }
    int64_t now = mp_mono_ns();
    if (r->idle_ms > 0 && now - r->last_byte_ns > r->idle_ms * 1000000) {
        r->abort_reason = MP_ETIMEOUT;
        return 1;
    }
    if (r->max_ms > 0 && now - r->start_ns > r->max_ms * 1000000) {
        r->abort_reason = MP_ETIMEOUT;
        return 1;
    }
    return 0;
}

static int req_setup(struct req *r, const char *path_query, struct mp_err *err)
{
    struct scrape_k8s_client *c = r->c;
    r->h = curl_easy_init();
    if (r->h == NULL)
        return mp_err_set(err, MP_ENOMEM, "curl_easy_init failed");
    curl_easy_setopt(r->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(r->h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(r->h, CURLOPT_USERAGENT, "meshprom");
    curl_easy_setopt(r->h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(r->h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(r->h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(r->h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(r->h, CURLOPT_XFERINFODATA, r);
    curl_easy_setopt(r->h, CURLOPT_PROTOCOLS_STR, "http,https");
    struct curl_slist *accept = curl_slist_append(NULL, "Accept: application/json, */*");
    if (accept == NULL)
        return mp_err_set(err, MP_ENOMEM, "out of memory");
    r->headers = accept;
    size_t n = strlen(c->base) + strlen(path_query) + 1;
    char *url = mp_xmalloc(n);
    snprintf(url, n, "%s%s", c->base, path_query);
    int rc = scrape_httpc_req_create(c->http, r->h, url, r->headers, 30000, &r->http, err);
    mp_free(url);
    if (rc == 0)
        rc = scrape_httpc_req_begin(r->http, err);
    if (rc != 0) {
        mp_err_wrap(err, "%s", path_query);
        return rc;
    }
    r->start_ns = r->last_byte_ns = mp_mono_ns();
    return 0;
}

static void req_fini(struct req *r)
{
    scrape_httpc_req_destroy(r->http); /* before the handle: it unsets its lists there */
    if (r->h != NULL)
        curl_easy_cleanup(r->h);
    curl_slist_free_all(r->headers);
}

/* Runs the request; maps curl's result. */
static int req_run(struct req *r, const char *what, struct mp_err *err)
{
    CURLcode cc = curl_easy_perform(r->h);
    long status = 0;
    curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &status);
    r->status = status;
    scrape_httpc_req_end(r->http, status);
    if (r->stream_rc != 0) {
        if (r->stream_rc == MP_ECANCELED)
            return 0; /* the consumer ended the watch */
        return mp_err_set(err, r->stream_rc, "%s: %s", what, r->stream_err.msg);
    }
    if (cc == CURLE_ABORTED_BY_CALLBACK && r->abort_reason != 0)
        return mp_err_set(err, r->abort_reason, "%s: %s", what,
                          r->abort_reason == MP_ETIMEOUT ? "no data (stalled)" : "canceled");
    if (cc != CURLE_OK)
        return mp_err_set(err, MP_EIO, "%s: %s", what, curl_easy_strerror(cc));
    return 0;
}

int scrape_k8s_client_get(struct scrape_k8s_client *c, const char *path_query, struct mp_buf *body,
                          long *status, const atomic_bool *stop, struct mp_err *err)
{
    struct req r = {.c = c, .body = body, .stop = stop};
    *status = 0;
    int rc = req_setup(&r, path_query, err);
    if (rc == 0) {
        curl_easy_setopt(r.h, CURLOPT_ACCEPT_ENCODING, c->identity ? NULL : "");
        rc = req_run(&r, path_query, err);
    }
    *status = r.status;
    req_fini(&r);
    return rc;
}

int scrape_k8s_client_watch(struct scrape_k8s_client *c, const char *path_query, int64_t idle_ms,
                            int64_t max_ms, scrape_k8s_event_fn *fn, void *ctx, long *status,
                            const atomic_bool *stop, struct mp_err *err)
{
    struct mp_buf errbody;
    mp_buf_init(&errbody, 1 << 16);
    struct req r = {.c = c,
                    .body = &errbody,
                    .stop = stop,
                    .fn = fn,
                    .ctx = ctx,
                    .idle_ms = idle_ms,
                    .max_ms = max_ms};
    mp_err_clear(&r.stream_err);
    *status = 0;
    r.stream = scrape_k8s_stream_create(EVENT_LIMIT);
    int rc = req_setup(&r, path_query, err);
    if (rc == 0)
        rc = req_run(&r, path_query, err);
    *status = r.status;
    if (rc == 0 && r.status != 200)
        rc = mp_err_set(err, MP_EIO, "%s: HTTP %ld: %.200s", path_query, r.status,
                        errbody.data ? errbody.data : "");
    req_fini(&r);
    scrape_k8s_stream_destroy(r.stream);
    mp_buf_fini(&errbody);
    return rc;
}

/* ---- stream decoding ------------------------------------------------------------------------ */

struct scrape_k8s_stream {
    struct json_tokener *tok;
    size_t max;
    size_t pending; /* bytes of the value in progress */
    bool broken;
};

struct scrape_k8s_stream *scrape_k8s_stream_create(size_t max_value_bytes)
{
    struct scrape_k8s_stream *s = mp_xcalloc(1, sizeof *s);
    s->tok = json_tokener_new_ex(64);
    if (s->tok == NULL)
        mp_panic("json_tokener_new_ex failed");
    s->max = max_value_bytes ? max_value_bytes : EVENT_LIMIT;
    return s;
}

void scrape_k8s_stream_destroy(struct scrape_k8s_stream *s)
{
    if (s == NULL)
        return;
    json_tokener_free(s->tok);
    mp_free(s);
}

static bool is_ws(char ch)
{
    return ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t';
}

int scrape_k8s_stream_feed(struct scrape_k8s_stream *s, const char *p, size_t n,
                           scrape_k8s_event_fn *fn, void *ctx, struct mp_err *err)
{
    if (s->broken)
        return mp_err_set(err, MP_EPARSE, "watch stream: broken by an earlier error");
    while (n > 0) {
        if (s->pending == 0) { /* skip blanks between values */
            while (n > 0 && is_ws(*p))
                p++, n--;
            if (n == 0)
                break;
        }
        size_t chunk = n > (size_t)1 << 30 ? (size_t)1 << 30 : n;
        json_object *v = json_tokener_parse_ex(s->tok, p, (int)chunk);
        enum json_tokener_error je = json_tokener_get_error(s->tok);
        if (v == NULL && je == json_tokener_continue) {
            s->pending += chunk;
            if (s->pending > s->max) {
                s->broken = true;
                return mp_err_set(err, MP_EPARSE, "watch stream: event over %zu bytes", s->max);
            }
            p += chunk, n -= chunk;
            continue;
        }
        if (v == NULL || je != json_tokener_success) {
            s->broken = true;
            json_object_put(v);
            return mp_err_set(err, MP_EPARSE, "watch stream: %s", json_tokener_error_desc(je));
        }
        size_t used = json_tokener_get_parse_end(s->tok);
        if (used == 0 || used > chunk)
            used = chunk;
        json_tokener_reset(s->tok);
        s->pending = 0;
        p += used, n -= used;
        bool go_on = fn(ctx, v);
        json_object_put(v);
        if (!go_on)
            return MP_ECANCELED;
    }
    return 0;
}

int scrape_k8s_event_decode(struct json_object *value, struct scrape_k8s_event *ev,
                            struct mp_err *err)
{
    memset(ev, 0, sizeof *ev);
    json_object *t = NULL, *o = NULL;
    if (!json_object_is_type(value, json_type_object) ||
        !json_object_object_get_ex(value, "type", &t) ||
        !json_object_is_type(t, json_type_string) ||
        !json_object_object_get_ex(value, "object", &o) ||
        !json_object_is_type(o, json_type_object))
        return mp_err_set(err, MP_EPARSE, "watch event: want {\"type\": string, \"object\": {}}");
    ev->type = json_object_get_string(t);
    ev->object = o;
    ev->reason = "";
    json_object *meta = NULL, *rv = NULL;
    if (json_object_object_get_ex(o, "metadata", &meta) &&
        json_object_is_type(meta, json_type_object) &&
        json_object_object_get_ex(meta, "resourceVersion", &rv) &&
        json_object_is_type(rv, json_type_string))
        ev->resource_version = json_object_get_string(rv);
    if (strcmp(ev->type, "ERROR") == 0) {
        json_object *code = NULL, *reason = NULL;
        if (json_object_object_get_ex(o, "code", &code) && json_object_is_type(code, json_type_int))
            ev->code = json_object_get_int(code);
        if (json_object_object_get_ex(o, "reason", &reason) &&
            json_object_is_type(reason, json_type_string))
            ev->reason = json_object_get_string(reason);
    }
    return 0;
}
