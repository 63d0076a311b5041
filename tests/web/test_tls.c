/* SPDX-License-Identifier: Apache-2.0 */
/* tests/web/test_tls.c: TLS on the web server (web_options.tls_*, protocols.md 4.11
 * tls_server_config). A self-signed certificate for IP 127.0.0.1 is generated at test time
 * with the openssl CLI (skipped when it is missing). Checks: https /-/healthy answers 200
 * with the certificate as CA, plain http to the same port gets no HTTP answer, a TLS 1.3
 * only priority string still serves a TLS 1.2+ client, a garbage key or a half pair makes
 * the server fail. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/metrics.h"
#include "web/web.h"

struct tfix {
    char dir[64];
    char cert_path[128];
    char *cert, *key;
};

static char *t_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "open %s", path);
    static char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

static void t_setup(struct tfix *f)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    mp_log_set_level(MP_LOG_LEVEL_ERROR);
    if (system("command -v openssl >/dev/null 2>&1") != 0)
        cr_skip_test("openssl CLI not found: cannot generate a test certificate");
    snprintf(f->dir, sizeof f->dir, "/tmp/mp-tls-XXXXXX");
    cr_assert_not_null(mkdtemp(f->dir));
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s/k.pem -out %s/c.pem -days 1 "
             "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
             f->dir, f->dir);
    cr_assert_eq(system(cmd), 0, "openssl req failed");
    snprintf(f->cert_path, sizeof f->cert_path, "%s/c.pem", f->dir);
    f->cert = t_slurp(f->cert_path);
    char kp[128];
    snprintf(kp, sizeof kp, "%s/k.pem", f->dir);
    f->key = t_slurp(kp);
}

static void t_teardown(struct tfix *f)
{
    char p[160];
    snprintf(p, sizeof p, "%s/c.pem", f->dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/k.pem", f->dir);
    unlink(p);
    rmdir(f->dir);
    free(f->cert);
    free(f->key);
}

static size_t t_sink(char *p, size_t sz, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return sz * n;
}

/* HTTP status or 0 on a transport error. */
static long t_get(const char *url, const char *cainfo)
{
    CURL *c = curl_easy_init();
    cr_assert_not_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, t_sink);
    if (cainfo)
        curl_easy_setopt(c, CURLOPT_CAINFO, cainfo);
    long code = 0;
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    return code;
}

static int t_start(struct mp_metrics_registry *reg, const char *cert, const char *key,
                   const char *prio, struct web_server **out, struct mp_err *err)
{
    static const char *const lo[] = {"127.0.0.1:0"};
    struct web_options opt;
    web_options_init(&opt);
    opt.listen = lo;
    opt.nlisten = 1;
    opt.registry = reg;
    opt.tls_cert_pem = cert;
    opt.tls_key_pem = key;
    opt.tls_priorities = prio;
    *out = NULL;
    int rc = web_server_create(&opt, out, err);
    if (rc == 0)
        rc = web_server_start(*out, err);
    return rc;
}

Test(web_tls, https_serves_and_plain_http_fails)
{
    struct tfix f;
    t_setup(&f);
    struct mp_metrics_registry *reg;
    cr_assert_eq(mp_metrics_registry_create(&reg), 0);
    struct web_server *srv;
    struct mp_err err = {0};
    cr_assert_eq(t_start(reg, f.cert, f.key, NULL, &srv, &err), 0, "%s", err.msg);
    unsigned port = web_server_port(srv, 0);
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%u/-/healthy", port);
    cr_assert_eq(t_get(url, f.cert_path), 200);
    /* Without trusting the self-signed certificate the handshake must fail. */
    cr_assert_eq(t_get(url, NULL), 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/-/healthy", port);
    cr_assert_eq(t_get(url, NULL), 0, "plain HTTP must not be answered on a TLS port");
    web_server_destroy(srv);

    /* TLS 1.3 only (min_version: TLS13). */
    cr_assert_eq(t_start(reg, f.cert, f.key, "NORMAL:-VERS-ALL:+VERS-TLS1.3", &srv, &err), 0,
                 "%s", err.msg);
    snprintf(url, sizeof url, "https://127.0.0.1:%u/-/healthy", web_server_port(srv, 0));
    cr_assert_eq(t_get(url, f.cert_path), 200);
    web_server_destroy(srv);
    mp_metrics_registry_destroy(reg);
    t_teardown(&f);
}

Test(web_tls, bad_key_fails_start)
{
    struct tfix f;
    t_setup(&f);
    struct mp_metrics_registry *reg;
    cr_assert_eq(mp_metrics_registry_create(&reg), 0);
    struct web_server *srv;
    struct mp_err err = {0};
    const char *bad = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n";
    cr_assert_neq(t_start(reg, f.cert, bad, NULL, &srv, &err), 0);
    cr_assert(strstr(err.msg, "cannot start HTTPS server"), "%s", err.msg);
    web_server_destroy(srv);
    /* key and cert swapped */
    cr_assert_neq(t_start(reg, f.key, f.cert, NULL, &srv, &err), 0);
    web_server_destroy(srv);
    /* half a pair */
    cr_assert_eq(t_start(reg, f.cert, NULL, NULL, &srv, &err), MP_EINVAL);
    cr_assert_null(srv);
    mp_metrics_registry_destroy(reg);
    t_teardown(&f);
}
