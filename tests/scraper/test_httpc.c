/* SPDX-License-Identifier: Apache-2.0 */
/* tests/scraper/test_httpc.c: scraper/httpc.c against a recording HTTP(S) server on
 * 127.0.0.1 (libmicrohttpd; TLS through its GnuTLS build, skipped when it has none): every
 * auth mode sends exactly its header, _file secrets are re-read per request, the oauth2 token
 * is fetched once, reused, refreshed when it expires or got a 401, and its form body is what
 * Go's clientcredentials sends; tls server_name passes for the certificate's name and fails
 * for another; min/max version, redirects, proxy_url; and one scrape through the loop with
 * oauth2. Configs come from real YAML through configs/, so defaults are the loader's. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/labels.h"
#include "configs/config.h"
#include "scraper/httpc.h"
#include "support_httpc.h"
#include "support_scrape.h"

/* ---- the recording server ------------------------------------------------------------------- */

#define MAX_SEEN 64

struct seen {
    char method[8], url[256], auth[512], host[256], ctype[128], body[1024];
    bool client_cert; /* mTLS: the client presented a certificate that verified */
};

struct srv {
    struct MHD_Daemon *d;
    unsigned port;
    pthread_mutex_t mu;
    struct seen req[MAX_SEEN];
    size_t n;
    unsigned token_hits;
    unsigned other_hits;     /* requests to any other path */
    int64_t token_at_ms[32]; /* CLOCK_MONOTONIC of the first token requests */
    int token_status;        /* answer of /token (200) */
    int token_expires_in;    /* expires_in of the tokens handed out */
    const char *token_ctype; /* Content-Type of the /token answer */
    bool token_wants_params; /* 400 unless client_id is in the body */
    int fail_next_401;       /* answer this many non-token requests with 401 */
    char *cert, *key, *trust;
};

struct upload {
    char body[1024];
    size_t len;
};

static void copy_hdr(struct MHD_Connection *c, const char *name, char *out, size_t cap)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    snprintf(out, cap, "%s", v ? v : "");
}

static enum MHD_Result answer(struct MHD_Connection *c, int status, const char *ctype,
                              const char *body, const char *location)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (ctype)
        MHD_add_response_header(r, "Content-Type", ctype);
    if (location)
        MHD_add_response_header(r, "Location", location);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

/* With a trust CA, libmicrohttpd asks for a client certificate but leaves the check to the
 * application through the GnuTLS session. libgnutls is loaded with libmicrohttpd, so its two
 * functions are looked up at run time instead of linking the suite against it. */
static bool client_cert_verified(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (ci == NULL || ci->tls_session == NULL)
        return false;
    const void *(*get_peers)(void *, unsigned *) = NULL;
    int (*verify)(void *, unsigned *) = NULL;
    *(void **)&get_peers = dlsym(RTLD_DEFAULT, "gnutls_certificate_get_peers");
    *(void **)&verify = dlsym(RTLD_DEFAULT, "gnutls_certificate_verify_peers2");
    cr_assert(get_peers && verify, "gnutls symbols");
    unsigned n = 0, status = 1;
    return get_peers(ci->tls_session, &n) != NULL && n > 0 &&
           verify(ci->tls_session, &status) == 0 && status == 0;
}

static enum MHD_Result on_req(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *data_size, void **con_cls)
{
    (void)version;
    struct srv *s = cls;
    struct upload *u = *con_cls;
    if (u == NULL) {
        *con_cls = calloc(1, sizeof *u);
        return MHD_YES;
    }
    if (*data_size > 0) {
        size_t room = sizeof u->body - 1 - u->len;
        size_t n = *data_size < room ? *data_size : room;
        memcpy(u->body + u->len, data, n);
        u->len += n;
        *data_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&s->mu);
    struct seen *r = &s->req[s->n < MAX_SEEN ? s->n++ : MAX_SEEN - 1];
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->url, sizeof r->url, "%s", url);
    copy_hdr(c, "Authorization", r->auth, sizeof r->auth);
    copy_hdr(c, "Host", r->host, sizeof r->host);
    copy_hdr(c, "Content-Type", r->ctype, sizeof r->ctype);
    snprintf(r->body, sizeof r->body, "%s", u->body);
    r->client_cert = s->trust != NULL && client_cert_verified(c);
    bool token = strcmp(url, "/token") == 0;
    unsigned hit = token ? ++s->token_hits : 0;
    s->other_hits += !token;
    if (token && hit <= 32) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        s->token_at_ms[hit - 1] = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    }
    bool unauthorized = !token && s->fail_next_401 > 0 && s->fail_next_401--;
    int tstatus = s->token_status;
    bool wants_params = s->token_wants_params;
    int expires = s->token_expires_in;
    const char *tctype = s->token_ctype;
    pthread_mutex_unlock(&s->mu);
    if (token) {
        if (tstatus != 200)
            return answer(c, tstatus, "application/json", "{\"error\":\"invalid_client\"}", NULL);
        if (wants_params && strstr(u->body, "client_id=") == NULL)
            return answer(c, 400, "application/json", "{\"error\":\"invalid_client\"}", NULL);
        char body[256];
        if (tctype && strcmp(tctype, "application/x-www-form-urlencoded") == 0)
            snprintf(body, sizeof body, "access_token=tok%u&token_type=bearer&expires_in=%d", hit,
                     expires);
        else
            snprintf(body, sizeof body,
                     "{\"access_token\":\"tok%u\",\"token_type\":\"bearer\",\"expires_in\":%d}",
                     hit, expires);
        return answer(c, 200, tctype ? tctype : "application/json", body, NULL);
    }
    if (unauthorized)
        return answer(c, 401, "text/plain", "no\n", NULL);
    if (strcmp(url, "/redirect") == 0)
        return answer(c, 302, "text/plain", "moved\n", "/final");
    return answer(c, 200, "text/plain", "m 1\n", NULL);
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    free(*con_cls);
    *con_cls = NULL;
}

static const char *td(const char *name)
{
    return ht_testdata("httpc_tls", name);
}

static bool have_tls(void)
{
    return MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES;
}

/* tls: serve HTTPS with the api.meshprom.test certificate; prio: GnuTLS priorities or NULL;
 * mtls: ask for a client certificate from the test CA. */
static struct srv *srv_start_ex(bool tls, const char *prio, bool mtls)
{
    struct srv *s = calloc(1, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->token_status = 200;
    s->token_expires_in = 3600;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
    struct MHD_OptionItem ops[8];
    size_t no = 0;
    ops[no++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &sa};
    ops[no++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_done, NULL};
    ops[no++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, 10, NULL};
    if (tls) {
        s->cert = ht_slurp(td("server.crt"));
        s->key = ht_slurp(td("server.key"));
        flags |= MHD_USE_TLS;
        ops[no++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, s->cert};
        ops[no++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, s->key};
        if (prio)
            ops[no++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)prio};
        if (mtls) {
            s->trust = ht_slurp(td("ca.crt"));
            ops[no++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, s->trust};
        }
    }
    ops[no++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_req, s, MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
    cr_assert_not_null(s->d, "MHD_start_daemon");
    s->port = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT)->port;
    return s;
}

static struct srv *srv_start(bool tls, const char *prio)
{
    return srv_start_ex(tls, prio, false);
}

static void srv_stop(struct srv *s)
{
    MHD_stop_daemon(s->d);
    pthread_mutex_destroy(&s->mu);
    free(s->cert);
    free(s->key);
    free(s->trust);
    free(s);
}

static struct seen last_of(struct srv *s, const char *url)
{
    struct seen out;
    memset(&out, 0, sizeof out);
    pthread_mutex_lock(&s->mu);
    for (size_t i = s->n; i-- > 0;) {
        if (strcmp(s->req[i].url, url) == 0) {
            out = s->req[i];
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return out;
}

static unsigned token_hits(struct srv *s)
{
    pthread_mutex_lock(&s->mu);
    unsigned n = s->token_hits;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ---- the client side ------------------------------------------------------------------------ */

struct client {
    struct cfg_config *cfg;
    struct scrape_httpc *hc;
    CURL *e;
    struct scrape_httpc_req *req;
    char url[512];
};

static size_t sink(char *p, size_t size, size_t nmemb, void *ud)
{
    (void)p, (void)ud;
    return size * nmemb;
}

/* A scrape config whose job has the HTTP client settings in http (YAML, 4-space indent). */
static int client_open(struct client *c, const char *url, const char *http, struct mp_err *err)
{
    memset(c, 0, sizeof *c);
    char *yaml = NULL;
    cr_assert(asprintf(&yaml, "scrape_configs:\n  - job_name: j\n%s", http) > 0);
    struct mp_err lerr;
    mp_err_clear(&lerr);
    int rc = cfg_config_load_buf("t.yml", yaml, strlen(yaml), &c->cfg, &lerr);
    free(yaml);
    cr_assert_eq(rc, 0, "config: %s", lerr.msg);
    rc = scrape_httpc_create(&c->cfg->scrape_configs[0].http, &c->hc, err);
    if (rc != 0)
        return rc;
    c->e = curl_easy_init();
    curl_easy_setopt(c->e, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c->e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->e, CURLOPT_TIMEOUT_MS, 5000L);
    snprintf(c->url, sizeof c->url, "%s", url);
    struct curl_slist *base = curl_slist_append(NULL, "Accept: text/plain");
    rc = scrape_httpc_req_create(c->hc, c->e, url, base, 5000, &c->req, err);
    curl_slist_free_all(base);
    return rc;
}

/* One transfer on the (reused) handle: 0 and *status, or the begin / curl failure. */
static int client_get(struct client *c, long *status, struct mp_err *err)
{
    *status = 0;
    int rc = scrape_httpc_req_begin(c->req, err);
    if (rc != 0)
        return rc;
    CURLcode cc = curl_easy_perform(c->e);
    curl_easy_getinfo(c->e, CURLINFO_RESPONSE_CODE, status);
    if (cc != CURLE_OK)
        return mp_err_set(err, MP_EIO, "%s", curl_easy_strerror(cc));
    return 0;
}

/* client_open that must succeed. */
static void client_open_ok(struct client *c, const char *url, const char *http)
{
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(client_open(c, url, http, &err), 0, "%s", err.msg);
}

/* client_get that must succeed; the status. */
static long client_get_ok(struct client *c)
{
    struct mp_err err;
    mp_err_clear(&err);
    long st;
    cr_assert_eq(client_get(c, &st, &err), 0, "%s", err.msg);
    return st;
}

static void client_close(struct client *c)
{
    scrape_httpc_req_destroy(c->req);
    if (c->e)
        curl_easy_cleanup(c->e);
    scrape_httpc_release(c->hc);
    cfg_config_destroy(c->cfg);
}

static void tmp_init(void)
{
    ht_tmp_init("httpc");
}

TestSuite(httpc, .init = tmp_init, .fini = ht_tmp_fini);

/* One GET of /m with http settings; the Authorization the server saw. */
static void expect_auth(const char *http, const char *want)
{
    struct srv *s = srv_start(false, NULL);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/m", s->port);
    struct client c;
    client_open_ok(&c, url, http);
    cr_assert_eq(client_get_ok(&c), 200);
    cr_assert_str_eq(last_of(s, "/m").auth, want);
    client_close(&c);
    srv_stop(s);
}

Test(httpc, basic_auth_header)
{
    expect_auth("    basic_auth: {username: user, password: 'p@ss word'}\n",
                "Basic dXNlcjpwQHNzIHdvcmQ=");
}

Test(httpc, authorization_with_custom_type)
{
    expect_auth("    authorization: {type: Token, credentials: abc}\n", "Token abc");
}

Test(httpc, bearer_token_is_authorization_bearer)
{
    expect_auth("    bearer_token: xyz\n", "Bearer xyz");
}

Test(httpc, no_auth_sends_no_authorization)
{
    expect_auth("", "");
}

/* The files are read on every request, trimmed, as prometheus/common's FileSecret. */
Test(httpc, file_secrets_are_reread_per_request)
{
    struct srv *s = srv_start(false, NULL);
    char url[128], http[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/m", s->port);
    const char *cred = ht_tmp_write("cred", "one\n");
    const char *pass = ht_tmp_write("pass", "  pw1 \n");
    const char *hdr = ht_tmp_write("hdr", "v1\n");
    snprintf(http, sizeof http,
             "    authorization: {credentials_file: %s}\n"
             "    http_headers: {X-File: {files: [%s]}, X-Plain: {values: [a, b]}}\n",
             cred, hdr);
    struct client c;
    client_open_ok(&c, url, http);
    client_get_ok(&c);
    cr_assert_str_eq(last_of(s, "/m").auth, "Bearer one");
    ht_tmp_write("cred", "two");
    client_get_ok(&c);
    cr_assert_str_eq(last_of(s, "/m").auth, "Bearer two");
    client_close(&c);

    snprintf(http, sizeof http, "    basic_auth: {username: u, password_file: %s}\n", pass);
    client_open_ok(&c, url, http);
    client_get_ok(&c);
    cr_assert_str_eq(last_of(s, "/m").auth, "Basic dTpwdzE="); /* u:pw1 */
    ht_tmp_write("pass", "pw2");
    client_get_ok(&c);
    cr_assert_str_eq(last_of(s, "/m").auth, "Basic dTpwdzI="); /* u:pw2 */
    client_close(&c);
    srv_stop(s);
}

Test(httpc, missing_credentials_file_fails_the_request_as_go_says)
{
    char http[256], want[512];
    snprintf(http, sizeof http, "    authorization: {credentials_file: %s/nope}\n", ht_tmpdir());
    struct client c;
    struct mp_err err;
    mp_err_clear(&err);
    client_open_ok(&c, "http://127.0.0.1:1/m", http);
    long st;
    cr_assert_eq(client_get(&c, &st, &err), MP_EIO);
    snprintf(want, sizeof want,
             "unable to read authorization credentials: unable to read file %s/nope: open "
             "%s/nope: no such file or directory",
             ht_tmpdir(), ht_tmpdir());
    cr_assert_str_eq(err.msg, want);
    client_close(&c);
}

Test(httpc, missing_ca_file_fails_at_create)
{
    struct client c;
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(client_open(&c, "https://127.0.0.1:1/m",
                             "    tls_config: {ca_file: /nonexistent/ca.pem}\n", &err),
                 MP_EIO);
    cr_assert_str_eq(err.msg, "unable to load specified CA cert /nonexistent/ca.pem: open "
                              "/nonexistent/ca.pem: no such file or directory");
    client_close(&c);
}

/* ---- oauth2 ---------------------------------------------------------------------------------- */

/* An oauth2 case: the recording server as token endpoint and target, a client for /m. */
struct oc {
    struct srv *s;
    struct client c;
    struct mp_err err;
    long status;
};

static void oc_prepare(struct oc *o)
{
    memset(o, 0, sizeof *o);
    o->s = srv_start(false, NULL);
}

/* oauth2 block: extra lines, or (secret_file) a client_secret_file instead of the secret. */
static void oc_open(struct oc *o, const char *extra, const char *secret_file)
{
    char url[128], http[1024], secret[300];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/m", o->s->port);
    if (secret_file)
        snprintf(secret, sizeof secret, "client_secret_file: %s", secret_file);
    else
        snprintf(secret, sizeof secret, "client_secret: s3cr=t");
    snprintf(http, sizeof http,
             "    oauth2:\n"
             "      client_id: my client\n"
             "      %s\n"
             "      token_url: http://127.0.0.1:%u/token\n"
             "%s",
             secret, o->s->port, extra);
    mp_err_clear(&o->err);
    cr_assert_eq(client_open(&o->c, url, http, &o->err), 0, "%s", o->err.msg);
}

/* One request that must work; the Authorization the target saw is want. */
static void oc_get(struct oc *o, long want_status, const char *want_auth)
{
    mp_err_clear(&o->err);
    cr_assert_eq(client_get(&o->c, &o->status, &o->err), 0, "%s", o->err.msg);
    cr_assert_eq(o->status, want_status);
    if (want_auth)
        cr_assert_str_eq(last_of(o->s, "/m").auth, want_auth);
}

static void oc_close(struct oc *o)
{
    client_close(&o->c);
    srv_stop(o->s);
}

Test(httpc, oauth2_token_fetched_once_then_reused)
{
    struct oc o;
    oc_prepare(&o);
    oc_open(&o,
            "      scopes: [read, 'write all']\n"
            "      endpoint_params: {audience: 'x y', a: '1'}\n",
            NULL);
    for (int i = 0; i < 3; i++)
        oc_get(&o, 200, "Bearer tok1");
    cr_assert_eq(token_hits(o.s), 1);
    cr_assert_eq(scrape_httpc_token_fetches(o.c.hc), 1);
    struct seen t = last_of(o.s, "/token");
    cr_assert_str_eq(t.method, "POST");
    cr_assert_str_eq(t.ctype, "application/x-www-form-urlencoded");
    /* Go: url.Values.Encode (sorted, QueryEscape) and SetBasicAuth(QueryEscape(id), ...) */
    cr_assert_str_eq(t.body, "a=1&audience=x+y&grant_type=client_credentials&scope=read+write+all");
    cr_assert_str_eq(t.auth, "Basic bXkrY2xpZW50OnMzY3IlM0R0"); /* my+client:s3cr%3Dt */
    oc_close(&o);
}

/* expires_in under x/oauth2's 10 s expiry delta: the token is stale at once, so every request
 * fetches a new one. */
Test(httpc, oauth2_expired_token_is_refreshed)
{
    struct oc o;
    oc_prepare(&o);
    o.s->token_expires_in = 5;
    oc_open(&o, "", NULL);
    oc_get(&o, 200, "Bearer tok1");
    oc_get(&o, 200, "Bearer tok2");
    cr_assert_eq(token_hits(o.s), 2);
    oc_close(&o);
}

Test(httpc, oauth2_401_drops_the_token)
{
    struct oc o;
    oc_prepare(&o);
    oc_open(&o, "", NULL);
    o.s->fail_next_401 = 1;
    oc_get(&o, 401, "Bearer tok1");
    oc_get(&o, 200, "Bearer tok2");
    oc_get(&o, 200, "Bearer tok2");
    cr_assert_eq(token_hits(o.s), 2);
    oc_close(&o);
}

/* AuthStyleAutoDetect: header refused -> credentials in the body, and that style sticks. */
Test(httpc, oauth2_falls_back_to_credentials_in_the_body)
{
    struct oc o;
    oc_prepare(&o);
    o.s->token_wants_params = true;
    o.s->token_ctype = "application/x-www-form-urlencoded";
    oc_open(&o, "", NULL);
    oc_get(&o, 200, "Bearer tok2");
    cr_assert_eq(token_hits(o.s), 2);
    struct seen t = last_of(o.s, "/token");
    cr_assert_str_eq(t.body, "client_id=my+client&client_secret=s3cr%3Dt&"
                             "grant_type=client_credentials");
    cr_assert_str_eq(t.auth, "");
    o.s->fail_next_401 = 1;
    oc_get(&o, 401, NULL);
    oc_get(&o, 200, "Bearer tok3");
    cr_assert_eq(token_hits(o.s), 3, "the remembered style needs one request");
    oc_close(&o);
}

Test(httpc, oauth2_token_error_reads_as_go)
{
    struct oc o;
    oc_prepare(&o);
    o.s->token_status = 401;
    oc_open(&o, "", NULL);
    cr_assert_eq(client_get(&o.c, &o.status, &o.err), MP_EIO);
    cr_assert_str_eq(o.err.msg, "oauth2: cannot fetch token: 401 Unauthorized\n"
                                "Response: {\"error\":\"invalid_client\"}");
    cr_assert_eq(token_hits(o.s), 2, "header, then body");
    cr_assert_eq(last_of(o.s, "/m").method[0], '\0', "no request without a token");
    oc_close(&o);
}

Test(httpc, oauth2_new_client_secret_file_content_gets_a_new_token)
{
    struct oc o;
    oc_prepare(&o);
    oc_open(&o, "", ht_tmp_write("secret", "first\n"));
    oc_get(&o, 200, "Bearer tok1");
    oc_get(&o, 200, "Bearer tok1");
    cr_assert_eq(token_hits(o.s), 1);
    cr_assert_str_eq(last_of(o.s, "/token").auth, "Basic bXkrY2xpZW50OmZpcnN0"); /* :first */
    ht_tmp_write("secret", "second");
    oc_get(&o, 200, "Bearer tok2");
    cr_assert_eq(token_hits(o.s), 2);
    cr_assert_str_eq(last_of(o.s, "/token").auth, "Basic bXkrY2xpZW50OnNlY29uZA=="); /* :second */
    oc_close(&o);
}

/* Through the scrape loop: the target's request carries the token; one fetch for several
 * scrapes. */
Test(httpc, scrape_loop_uses_oauth2)
{
    struct world w;
    world_init(&w);
    mock_set(w.http, "/metrics", 200, NULL, "m 1\n", false, 0);
    struct srv *s = srv_start(false, NULL); /* the mock does not take POST bodies */
    world_config(&w,
                 "scrape_configs:\n"
                 "  - job_name: j\n"
                 "    scrape_interval: 100ms\n"
                 "    scrape_timeout: 90ms\n"
                 "    oauth2:\n"
                 "      client_id: c\n"
                 "      client_secret: s\n"
                 "      token_url: http://127.0.0.1:%u/token\n",
                 s->port);
    const char *addrs[] = {world_addr(&w), NULL};
    const char *none[] = {NULL};
    world_sync(&w, "j", addrs, none);
    bool got = wait_samples(w.db, "m", NULL, 3);
    struct tinfo ti;
    world_target(&w, &ti);
    cr_assert(got, "last error: %s", ti.last_error);
    char h[256];
    mock_header(w.http, "/metrics", "Authorization", h, sizeof h);
    cr_assert_str_eq(h, "Bearer tok1");
    cr_assert_eq(token_hits(s), 1);
    world_fini(&w);
    srv_stop(s);
}

/* ---- one client per scrape pool ------------------------------------------------------------ */

static unsigned other_hits(struct srv *s)
{
    pthread_mutex_lock(&s->mu);
    unsigned n = s->other_hits;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* n targets of job j scraping s's /metrics, told apart by a URL parameter ?t=<first + i>. */
static void sync_targets(struct world *w, struct srv *s, int first, int n)
{
    char addr[64], val[16];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", s->port);
    struct mp_labels *ts[16];
    cr_assert(n <= 16);
    for (int i = 0; i < n; i++) {
        snprintf(val, sizeof val, "%d", first + i);
        struct mp_label l[2] = {{MP_STR_LIT("__address__"), mp_str_c(addr)},
                                {MP_STR_LIT("__param_t"), mp_str_c(val)}};
        cr_assert_eq(mp_labels_create(l, 2, &ts[i], NULL), 0);
    }
    struct scrape_target_group g = {.source = "0", .targets = ts, .ntargets = (size_t)n};
    g.group_labels = mp_labels_empty();
    scrape_manager_sync(w->sm, "j", &g, 1);
    for (int i = 0; i < n; i++)
        mp_labels_release(ts[i]);
    mp_labels_release(g.group_labels);
}

struct hits_ctx {
    struct srv *s;
    unsigned want;
};

static bool enough_hits(void *arg)
{
    struct hits_ctx *c = arg;
    return other_hits(c->s) >= c->want;
}

/* Waits for n more scrapes of s than it has seen so far. */
static void wait_scrapes(struct srv *s, unsigned n)
{
    struct hits_ctx c = {s, other_hits(s) + n};
    cr_assert(wait_for(enough_hits, &c), "%u scrapes, wanted %u", other_hits(s), c.want);
}

static void pool_config(struct world *w, struct srv *s, const char *secret, const char *extra)
{
    world_config(w,
                 "scrape_configs:\n"
                 "  - job_name: j\n"
                 "    scrape_interval: 50ms\n"
                 "    scrape_timeout: 45ms\n"
                 "    oauth2:\n"
                 "      client_id: c\n"
                 "      client_secret: %s\n"
                 "      token_url: http://127.0.0.1:%u/token\n"
                 "%s",
                 secret, s->port, extra);
}

/* The fingerprint sees every field, the secrets the YAML masks included. */
Test(httpc, fingerprint_covers_secrets)
{
    static const char *const https[] = {
        "    oauth2: {client_id: c, client_secret: a, token_url: 'http://x/t'}\n",
        "    oauth2: {client_id: c, client_secret: b, token_url: 'http://x/t'}\n",
        "    oauth2: {client_id: c, client_secret: a, token_url: 'http://x/t', scopes: [s]}\n",
        "    proxy_url: http://p:1\n    proxy_connect_header: {X: [a]}\n",
        "    proxy_url: http://p:1\n    proxy_connect_header: {X: [b]}\n",
        "    basic_auth: {username: u, password: a}\n",
        "    basic_auth: {username: u, password: b}\n",
        "    http_headers: {X: {secrets: [a]}}\n",
        "    http_headers: {X: {secrets: [b]}}\n",
        "    tls_config: {insecure_skip_verify: true}\n",
        "    follow_redirects: false\n",
        "",
    };
    size_t n = sizeof https / sizeof https[0];
    char *fp[sizeof https / sizeof https[0]];
    for (size_t i = 0; i < n; i++) {
        char *yaml = NULL;
        cr_assert(asprintf(&yaml, "scrape_configs:\n  - job_name: j\n%s", https[i]) > 0);
        struct cfg_config *cfg = NULL;
        struct mp_err err;
        mp_err_clear(&err);
        cr_assert_eq(cfg_config_load_buf("t.yml", yaml, strlen(yaml), &cfg, &err), 0, "%s: %s",
                     https[i], err.msg);
        free(yaml);
        fp[i] = scrape_httpc_fingerprint(&cfg->scrape_configs[0].http);
        char *again = scrape_httpc_fingerprint(&cfg->scrape_configs[0].http);
        cr_assert_str_eq(fp[i], again);
        mp_free(again);
        cfg_config_destroy(cfg);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t k = i + 1; k < n; k++)
            cr_assert_str_neq(fp[i], fp[k], "%s vs %s", https[i], https[k]);
    for (size_t i = 0; i < n; i++)
        mp_free(fp[i]);
}

/* A world whose job j has n targets on a new token server, each scraped twice. */
static struct srv *pool_start(struct world *w, int n, int expires_in)
{
    world_init(w);
    struct srv *s = srv_start(false, NULL);
    s->token_expires_in = expires_in;
    pool_config(w, s, "s1", "");
    sync_targets(w, s, 0, n);
    wait_scrapes(s, (unsigned)n * 2);
    return s;
}

/* Prometheus builds one client per pool: its targets (on every loop thread) share one oauth2
 * token, so 8 targets make one token request, not 8. */
Test(httpc, scrape_pool_targets_share_one_oauth2_token)
{
    struct world w;
    struct srv *s = pool_start(&w, 8, 3600);
    wait_scrapes(s, 8);
    cr_assert_eq(token_hits(s), 1);
    cr_assert_str_eq(last_of(s, "/metrics").auth, "Bearer tok1");
    world_fini(&w);
    srv_stop(s);
}

/* Target churn (new and removed targets) and a reload that leaves the HTTP client config
 * alone (here: only the relabeling changed, which restarts the pool's targets) keep the
 * token; a changed client_secret gets a new client and so a new token, fetched with it. */
Test(httpc, scrape_pool_keeps_its_client_until_its_http_config_changes)
{
    struct world w;
    struct srv *s = pool_start(&w, 4, 3600);
    sync_targets(&w, s, 2, 6); /* 0, 1 go, 6 .. 7 come */
    wait_scrapes(s, 6 * 2);
    pool_config(&w, s, "s1", "");
    pool_config(&w, s, "s1",
                "    relabel_configs:\n"
                "      - target_label: x\n"
                "        replacement: y\n");
    wait_scrapes(s, 6 * 2);
    cr_assert_eq(token_hits(s), 1, "churn and reloads of other settings keep the token");
    cr_assert_str_eq(last_of(s, "/metrics").auth, "Bearer tok1");
    pool_config(&w, s, "s2", "");
    wait_scrapes(s, 6 * 2);
    cr_assert_eq(token_hits(s), 2, "a changed client_secret fetches one new token");
    cr_assert_str_eq(last_of(s, "/token").auth, "Basic YzpzMg=="); /* c:s2 */
    cr_assert_str_eq(last_of(s, "/metrics").auth, "Bearer tok2");
    world_fini(&w);
    srv_stop(s);
}

/* Expiry: the shared token is fetched again once it is within x/oauth2's 10 s delta of its
 * expiry (expires_in 11 s: usable for 1 s), once per lifetime for the whole pool: no two
 * fetches come closer than that lifetime (per-target tokens would come in bursts of 6). */
Test(httpc, scrape_pool_refreshes_the_shared_token_once_per_lifetime)
{
    struct world w;
    struct srv *s = pool_start(&w, 6, 11);
    cr_assert_eq(token_hits(s), 1);
    for (int i = 0; i < 1000 && token_hits(s) < 3; i++)
        usleep(10000); /* bounded: 10 s */
    world_fini(&w);
    unsigned n = token_hits(s);
    cr_assert(n >= 3, "the token was refreshed (%u fetches)", n);
    for (unsigned i = 1; i < n && i < 32; i++)
        cr_assert(s->token_at_ms[i] - s->token_at_ms[i - 1] >= 900,
                  "fetch %u came %lld ms after the previous one", i + 1,
                  (long long)(s->token_at_ms[i] - s->token_at_ms[i - 1]));
    srv_stop(s);
}

/* ---- TLS --------------------------------------------------------------------------------------
 */

/* GET https://127.0.0.1:port/m with tls settings; 0 when the handshake and request worked. */
static int tls_get(struct srv *s, const char *tls, struct seen *seen, struct mp_err *err)
{
    char url[128], http[8192];
    snprintf(url, sizeof url, "https://127.0.0.1:%u/m", s->port);
    snprintf(http, sizeof http, "    tls_config:\n%s", tls);
    struct client c;
    int rc = client_open(&c, url, http, err);
    long st = 0;
    if (rc == 0)
        rc = client_get(&c, &st, err);
    if (rc == 0 && st != 200)
        rc = mp_err_set(err, MP_EIO, "status %ld", st);
    if (seen)
        *seen = last_of(s, "/m");
    client_close(&c);
    return rc;
}

static char tls_cfg[8192];

static const char *with_ca(const char *more)
{
    snprintf(tls_cfg, sizeof tls_cfg, "      ca_file: %s\n%s", td("ca.crt"), more);
    return tls_cfg;
}

Test(httpc, tls_server_name_is_verified_and_host_kept)
{
    if (!have_tls())
        cr_skip_test("libmicrohttpd without TLS");
    struct srv *s = srv_start(true, NULL);
    struct seen seen;
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(tls_get(s, with_ca("      server_name: api.meshprom.test\n"), &seen, &err), 0,
                 "%s", err.msg);
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%u", s->port);
    cr_assert_str_eq(seen.host, want, "Host is the URL's, as Go sends it");
    srv_stop(s);
}

Test(httpc, tls_without_or_with_a_wrong_server_name_fails)
{
    if (!have_tls())
        cr_skip_test("libmicrohttpd without TLS");
    struct srv *s = srv_start(true, NULL);
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_neq(tls_get(s, with_ca(""), NULL, &err), 0, "the cert does not name 127.0.0.1");
    mp_err_clear(&err);
    cr_assert_neq(tls_get(s, with_ca("      server_name: other.meshprom.test\n"), NULL, &err), 0);
    cr_assert_eq(s->n, 0, "no request got through");
    srv_stop(s);
}

Test(httpc, tls_inline_ca_and_insecure_skip_verify)
{
    if (!have_tls())
        cr_skip_test("libmicrohttpd without TLS");
    struct srv *s = srv_start(true, NULL);
    char *ca = ht_slurp(td("ca.crt"));
    char cfg[4096];
    int off = snprintf(cfg, sizeof cfg, "      server_name: api.meshprom.test\n      ca: |\n");
    for (char *line = strtok(ca, "\n"); line; line = strtok(NULL, "\n"))
        off += snprintf(cfg + off, sizeof cfg - (size_t)off, "        %s\n", line);
    free(ca);
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(tls_get(s, cfg, NULL, &err), 0, "%s", err.msg);
    mp_err_clear(&err);
    cr_assert_eq(tls_get(s, "      insecure_skip_verify: true\n", NULL, &err), 0, "%s", err.msg);
    srv_stop(s);
}

Test(httpc, tls_max_version_is_applied)
{
    if (!have_tls())
        cr_skip_test("libmicrohttpd without TLS");
    struct srv *s = srv_start(true, "NORMAL:-VERS-ALL:+VERS-TLS1.3");
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(tls_get(s, with_ca("      server_name: api.meshprom.test\n"), NULL, &err), 0, "%s",
                 err.msg);
    mp_err_clear(&err);
    cr_assert_neq(tls_get(s,
                          with_ca("      server_name: api.meshprom.test\n"
                                  "      max_version: TLS12\n"),
                          NULL, &err),
                  0, "a TLS 1.3-only server refuses a TLS 1.2 client");
    srv_stop(s);
}

/* The client certificate goes out, as files and as inline PEM. */
Test(httpc, tls_client_certificate_is_presented)
{
    if (!have_tls())
        cr_skip_test("libmicrohttpd without TLS");
    struct srv *s = srv_start_ex(true, NULL, true);
    struct seen seen;
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(tls_get(s, with_ca("      server_name: api.meshprom.test\n"), &seen, &err), 0,
                 "%s", err.msg);
    cr_assert(!seen.client_cert, "none configured, none sent");
    char more[4096];
    snprintf(more, sizeof more,
             "      server_name: api.meshprom.test\n      cert_file: %s\n      key_file: %s\n",
             td("client.crt"), td("client.key"));
    mp_err_clear(&err);
    cr_assert_eq(tls_get(s, with_ca(more), &seen, &err), 0, "%s", err.msg);
    cr_assert(seen.client_cert, "cert_file/key_file");
    char *cert = ht_slurp(td("client.crt")), *key = ht_slurp(td("client.key"));
    int off = snprintf(more, sizeof more, "      server_name: api.meshprom.test\n      cert: |\n");
    for (char *line = strtok(cert, "\n"); line; line = strtok(NULL, "\n"))
        off += snprintf(more + off, sizeof more - (size_t)off, "        %s\n", line);
    off += snprintf(more + off, sizeof more - (size_t)off, "      key: |\n");
    for (char *line = strtok(key, "\n"); line; line = strtok(NULL, "\n"))
        off += snprintf(more + off, sizeof more - (size_t)off, "        %s\n", line);
    free(cert);
    free(key);
    mp_err_clear(&err);
    cr_assert_eq(tls_get(s, with_ca(more), &seen, &err), 0, "%s", err.msg);
    cr_assert(seen.client_cert, "inline cert/key");
    srv_stop(s);
}

/* s with \n for newlines, into a JSON string body (malloc'd). */
static char *json_lines(const char *s)
{
    char *o = calloc(2 * strlen(s) + 1, 1);
    for (char *q = o; *s; s++) {
        if (*s == '\n') {
            *q++ = '\\';
            *q++ = 'n';
        } else {
            *q++ = *s;
        }
    }
    return o;
}

/* A kubeconfig exec plugin that returns a client certificate: it is presented in the
 * handshake, and the plugin runs once for several requests. */
Test(httpc, exec_plugin_client_certificate_is_presented)
{
    if (!have_tls())
        cr_skip_test("libmicrohttpd without TLS");
    struct srv *s = srv_start_ex(true, NULL, true);
    char *cert = ht_slurp(td("client.crt")), *key = ht_slurp(td("client.key"));
    char *jc = json_lines(cert), *jk = json_lines(key);
    char *out = NULL;
    cr_assert(asprintf(&out,
                       "{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":"
                       "\"ExecCredential\",\"status\":{\"clientCertificateData\":\"%s\","
                       "\"clientKeyData\":\"%s\"}}\n",
                       jc, jk) > 0);
    free(cert), free(key), free(jc), free(jk);
    char script[512];
    snprintf(script, sizeof script, "#!/bin/sh\nexec cat %s\n", ht_tmp_write("out.json", out));
    free(out);
    const char *plugin = ht_tmp_write("plugin.sh", script);
    cr_assert_eq(chmod(plugin, 0755), 0);
    struct scrape_kube_exec x = {.command = (char *)plugin,
                                 .api_version = "client.authentication.k8s.io/v1",
                                 .mode = SCRAPE_KUBE_EXEC_NEVER,
                                 .timeout_ms = 10000};
    char url[128], http[8300];
    snprintf(url, sizeof url, "https://127.0.0.1:%u/m", s->port);
    snprintf(http, sizeof http, "    tls_config:\n%s",
             with_ca("      server_name: api.meshprom.test\n"));
    struct client c;
    client_open_ok(&c, url, http);
    scrape_httpc_set_exec(c.hc, &x);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(client_get_ok(&c), 200);
        cr_assert(last_of(s, "/m").client_cert, "the plugin's certificate was presented");
        cr_assert_str_eq(last_of(s, "/m").auth, "", "no token, no Authorization");
    }
    cr_assert_eq(scrape_httpc_exec_runs(c.hc), 1);
    client_close(&c);
    srv_stop(s);
}

/* Through the scrape loop, whose easy handle serves every scrape of the target: server_name
 * holds across reuses; a wrong one makes the target fail. */
static void scrape_tls(const char *server_name, bool want_up)
{
    if (!have_tls())
        cr_skip_test("libmicrohttpd without TLS");
    struct srv *s = srv_start(true, NULL);
    struct world w;
    world_init(&w);
    world_config(&w,
                 "scrape_configs:\n"
                 "  - job_name: j\n"
                 "    scheme: https\n"
                 "    scrape_interval: 100ms\n"
                 "    scrape_timeout: 90ms\n"
                 "    tls_config: {ca_file: %s, server_name: %s}\n",
                 td("ca.crt"), server_name);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", s->port);
    const char *addrs[] = {addr, NULL};
    const char *none[] = {NULL};
    world_sync(&w, "j", addrs, none);
    if (want_up) {
        bool got = wait_samples(w.db, "m", NULL, 3);
        struct tinfo ti;
        world_target(&w, &ti);
        cr_assert(got, "last error: %s", ti.last_error);
        cr_assert_str_eq(last_of(s, "/metrics").host, addr);
    } else {
        cr_assert(wait_samples(w.db, "up", NULL, 2));
        struct tinfo ti;
        world_target(&w, &ti);
        cr_assert_eq(ti.health, SCRAPE_HEALTH_DOWN);
        cr_assert_eq(s->n, 0);
    }
    world_fini(&w);
    srv_stop(s);
}

Test(httpc, scrape_loop_over_tls_with_server_name)
{
    scrape_tls("api.meshprom.test", true);
}

Test(httpc, scrape_loop_with_a_wrong_server_name_is_down)
{
    scrape_tls("other.meshprom.test", false);
}

Test(httpc, client_cert_files_must_exist)
{
    struct client c;
    struct mp_err err;
    mp_err_clear(&err);
    char http[1024];
    snprintf(http, sizeof http, "    tls_config: {cert_file: %s, key_file: /nonexistent/k}\n",
             td("client.crt"));
    cr_assert_eq(client_open(&c, "https://127.0.0.1:1/", http, &err), MP_EIO);
    cr_assert(strstr(err.msg, "unable to use specified client cert (") == err.msg, "%s", err.msg);
    cr_assert(strstr(err.msg, "open /nonexistent/k: no such file or directory"), "%s", err.msg);
    client_close(&c);
}

/* ---- redirects, proxy --------------------------------------------------------------------------
 */

Test(httpc, follow_redirects)
{
    struct srv *s = srv_start(false, NULL);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/redirect", s->port);
    struct client c;
    client_open_ok(&c, url, "");
    cr_assert_eq(client_get_ok(&c), 200, "followed by default");
    cr_assert_str_eq(last_of(s, "/final").method, "GET");
    client_close(&c);
    client_open_ok(&c, url, "    follow_redirects: false\n");
    cr_assert_eq(client_get_ok(&c), 302);
    client_close(&c);
    srv_stop(s);
}

Test(httpc, proxy_url_gets_the_request)
{
    struct srv *s = srv_start(false, NULL);
    char http[256];
    snprintf(http, sizeof http, "    proxy_url: http://127.0.0.1:%u\n", s->port);
    struct client c;
    client_open_ok(&c, "http://target.invalid:9100/metrics", http);
    cr_assert_eq(client_get_ok(&c), 200);
    pthread_mutex_lock(&s->mu);
    cr_assert_eq(s->n, 1);
    cr_assert(strstr(s->req[0].url, "/metrics") != NULL, "%s", s->req[0].url);
    cr_assert_str_eq(s->req[0].host, "target.invalid:9100");
    pthread_mutex_unlock(&s->mu);
    client_close(&c);
    srv_stop(s);
}

Test(httpc, base64_decode_as_go)
{
    char *out = NULL;
    size_t n = 0;
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(scrape_httpc_base64_decode("aGVsbG8=", 8, &out, &n, &err), 0);
    cr_assert_eq(n, 5);
    cr_assert_str_eq(out, "hello");
    mp_free(out);
    cr_assert_eq(scrape_httpc_base64_decode("aGV\nsbG8h", 9, &out, &n, &err), 0);
    cr_assert_str_eq(out, "hello!");
    mp_free(out);
    cr_assert_eq(scrape_httpc_base64_decode("aGV*bG8=", 8, &out, &n, &err), MP_EPARSE);
    cr_assert_str_eq(err.msg, "illegal base64 data at input byte 3");
    cr_assert_null(out);
}
