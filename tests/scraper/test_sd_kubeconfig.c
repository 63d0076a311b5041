/* SPDX-License-Identifier: Apache-2.0 */
/* tests/scraper/test_sd_kubeconfig.c: kubernetes_sd_configs.kubeconfig_file. The reader
 * (scrape_kubeconfig_load) on good and bad files, with client-go's error texts; then
 * discovery against meshsim's fake API server through a kubeconfig: HTTPS with a CA file and
 * a token, and HTTPS with tls-server-name (the certificate names only api.meshprom.test),
 * inline CA data, a tokenFile re-read per request and a client certificate. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/err.h"
#include "configs/config.h"
#include "meshsim/meshsim.h"
#include "scraper/httpc.h"
#include "scraper/sd_internal.h"
#include "support_httpc.h"
#include "support_kube.h"
#include "test_sd_support.h"

static void tmp_init(void)
{
    ht_tmp_init("kubecfg");
}

TestSuite(kubeconfig, .init = tmp_init, .fini = ht_tmp_fini);

/* Loads the kubeconfig text written to ht_tmpdir()/config. */
static int load(const char *text, struct scrape_kubeconfig *k, struct mp_err *err)
{
    const char *p = ht_tmp_write("config", text);
    mp_err_clear(err);
    return scrape_kubeconfig_load(p, k, err);
}

/* the context's namespace does not matter to discovery */
#define KC_HEAD_NS KC_HEAD_CTX(", namespace: ignored")

Test(kubeconfig, token_user_and_ca_file_relative_to_the_file)
{
    ht_tmp_write("ca.crt", "not checked here\n");
    struct scrape_kubeconfig k;
    struct mp_err err;
    cr_assert_eq(load(KC_HEAD_NS "clusters:\n"
                              "- name: c\n"
                              "  cluster:\n"
                              "    server: https://127.0.0.1:6443/\n"
                              "    certificate-authority: ca.crt\n"
                              "    tls-server-name: api.example\n"
                              "users:\n"
                              "- name: u\n"
                              "  user: {token: abc}\n",
                      &k, &err),
                 0, "%s", err.msg);
    cr_assert_str_eq(k.server, "https://127.0.0.1:6443");
    cr_assert_str_eq(k.http.tls_config.ca_file, ht_tmp_path("ca.crt"));
    cr_assert_str_eq(k.http.tls_config.server_name, "api.example");
    cr_assert_not_null(k.http.authorization);
    cr_assert_str_eq(k.http.authorization->type, "Bearer");
    cr_assert_str_eq(k.http.authorization->credentials, "abc");
    cr_assert_null(k.http.basic_auth);
    cr_assert(k.http.follow_redirects && k.http.enable_http2);
    scrape_kubeconfig_fini(&k);
}

Test(kubeconfig, data_fields_token_file_and_basic_auth)
{
    ht_tmp_write("tok", "t0k\n");
    char *ca = ht_b64("CA PEM"), *cert = ht_b64("CERT PEM"), *key = ht_b64("KEY PEM");
    char text[2048];
    snprintf(text, sizeof text,
             KC_HEAD_NS "clusters:\n"
                     "- name: c\n"
                     "  cluster: {server: 'https://k:1', certificate-authority-data: %s}\n"
                     "users:\n"
                     "- name: u\n"
                     "  user:\n"
                     "    tokenFile: tok\n"
                     "    client-certificate-data: %s\n"
                     "    client-key-data: %s\n"
                     "- name: other\n"
                     "  user: {username: x, password: y}\n",
             ca, cert, key);
    free(ca), free(cert), free(key);
    struct scrape_kubeconfig k;
    struct mp_err err;
    cr_assert_eq(load(text, &k, &err), 0, "%s", err.msg);
    cr_assert_str_eq(k.http.tls_config.ca, "CA PEM");
    cr_assert_str_eq(k.http.tls_config.cert, "CERT PEM");
    cr_assert_str_eq(k.http.tls_config.key, "KEY PEM");
    cr_assert_null(k.http.tls_config.ca_file);
    cr_assert_str_eq(k.http.authorization->credentials_file, ht_tmp_path("tok"));
    cr_assert_null(k.http.authorization->credentials);
    scrape_kubeconfig_fini(&k);

    cr_assert_eq(load(KC_HEAD_NS "clusters: [{name: c, cluster: {server: 'http://k:1', "
                              "insecure-skip-tls-verify: true}}]\n"
                              "users: [{name: u, user: {username: x, password: y}}]\n",
                      &k, &err),
                 0, "%s", err.msg);
    cr_assert_str_eq(k.http.basic_auth->username, "x");
    cr_assert_str_eq(k.http.basic_auth->password, "y");
    cr_assert(k.http.tls_config.insecure_skip_verify);
    cr_assert_null(k.http.authorization);
    scrape_kubeconfig_fini(&k);
}

/* Each bad kubeconfig and the error client-go gives for it. */
static void expect_error(const char *text, int code, const char *want)
{
    struct scrape_kubeconfig k;
    struct mp_err err;
    cr_assert_eq(load(text, &k, &err), code, "%s", err.msg);
    cr_assert_str_eq(err.msg, want);
    cr_assert_null(k.server);
}

Test(kubeconfig, empty_or_without_current_context)
{
    const char *empty = "invalid configuration: no configuration has been provided, try setting "
                        "KUBERNETES_MASTER environment variable";
    expect_error("", MP_EINVAL, empty);
    expect_error("apiVersion: v1\nkind: Config\n", MP_EINVAL, empty);
    expect_error("clusters: [{name: c, cluster: {server: 'https://k'}}]\n", MP_EINVAL, empty);
    /* the context names a cluster that is not there: an empty cluster, same text */
    expect_error(KC_HEAD_NS "users: [{name: u, user: {token: t}}]\n", MP_EINVAL, empty);
}

Test(kubeconfig, missing_context)
{
    expect_error("current-context: nope\n"
                 "clusters: [{name: c, cluster: {server: 'https://k'}}]\n",
                 MP_EINVAL,
                 "invalid configuration: [context was not found for specified context: nope, "
                 "cluster has no server defined]");
}

Test(kubeconfig, cluster_without_server)
{
    expect_error(KC_HEAD_NS "clusters: [{name: c, cluster: {insecure-skip-tls-verify: true}}]\n",
                 MP_EINVAL, "invalid configuration: no server found for cluster \"c\"");
}

Test(kubeconfig, two_auth_methods)
{
    expect_error(KC_HEAD_NS "clusters: [{name: c, cluster: {server: 'https://k'}}]\n"
                         "users: [{name: u, user: {token: t, username: a, password: b}}]\n",
                 MP_EINVAL,
                 "invalid configuration: more than one authentication method found for u; found "
                 "[token basicAuth], only one is allowed");
}

Test(kubeconfig, client_cert_without_key_and_unreadable_files)
{
    char want[1024];
    snprintf(want, sizeof want,
             "invalid configuration: [client-key-data or client-key must be specified for u to "
             "use the clientCert authentication method., unable to read client-cert %s/nope.crt "
             "for u due to open %s/nope.crt: no such file or directory, unable to read "
             "certificate-authority %s/ca.crt for c due to open %s/ca.crt: no such file or "
             "directory]",
             ht_tmpdir(), ht_tmpdir(), ht_tmpdir(), ht_tmpdir());
    expect_error(KC_HEAD_NS "clusters: [{name: c, cluster: {server: 'https://k', "
                         "certificate-authority: ca.crt}}]\n"
                         "users: [{name: u, user: {client-certificate: nope.crt}}]\n",
                 MP_EINVAL, want);
}

Test(kubeconfig, insecure_with_a_ca)
{
    expect_error(KC_HEAD_NS "clusters: [{name: c, cluster: {server: 'https://k', "
                         "certificate-authority-data: QQ==, insecure-skip-tls-verify: true}}]\n",
                 MP_EINVAL,
                 "specifying a root certificates file with the insecure flag is not allowed");
}

Test(kubeconfig, unreadable_bad_yaml_bad_base64_missing_token_file)
{
    struct scrape_kubeconfig k;
    struct mp_err err;
    mp_err_clear(&err);
    char want[512];
    snprintf(want, sizeof want, "stat %s/absent: no such file or directory", ht_tmpdir());
    cr_assert_eq(scrape_kubeconfig_load(ht_tmp_path("absent"), &k, &err), MP_EIO);
    cr_assert_str_eq(err.msg, want);

    cr_assert_eq(load("clusters: [\n", &k, &err), MP_EPARSE);
    snprintf(want, sizeof want, "error loading config file \"%s/config\": yaml: line ",
             ht_tmpdir());
    cr_assert(strncmp(err.msg, want, strlen(want)) == 0, "%s", err.msg);

    snprintf(want, sizeof want,
             "error loading config file \"%s/config\": illegal base64 data at input byte 2",
             ht_tmpdir());
    expect_error(KC_HEAD_NS "clusters: [{name: c, cluster: {server: 'https://k', "
                         "certificate-authority-data: 'QQ!='}}]\n",
                 MP_EPARSE, want);

    snprintf(want, sizeof want, "open %s/gone: no such file or directory", ht_tmpdir());
    expect_error(KC_HEAD_NS "clusters: [{name: c, cluster: {server: 'https://k'}}]\n"
                         "users: [{name: u, user: {tokenFile: gone}}]\n",
                 MP_EIO, want);
}

/* The client reports kubeconfig errors with the field and the file. */
Test(kubeconfig, sd_client_wraps_the_error)
{
    const char *p = ht_tmp_write("config", "");
    struct cfg_kubernetes_sd sd;
    memset(&sd, 0, sizeof sd);
    sd.role = CFG_K8S_ROLE_POD;
    sd.kubeconfig_file = (char *)p;
    struct scrape_k8s_client *c = NULL;
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(scrape_k8s_client_create(&sd, NULL, &c, &err), MP_EINVAL);
    cr_assert_null(c);
    char want[512];
    snprintf(want, sizeof want,
             "kubernetes_sd_configs: kubeconfig_file %s: invalid configuration: no "
             "configuration has been provided, try setting KUBERNETES_MASTER environment "
             "variable",
             p);
    cr_assert_str_eq(err.msg, want);
}

/* ---- discovery through a kubeconfig against the fake API server ------------------------- */

static struct meshsim_k8s *fake;

/* HTTPS fake with the certificate in testdata/<dir>, requiring token, serving pod a. */
static void fake_start(const char *dir, const char *token)
{
    fake = kt_fake_start(dir, token);
    kt_put_pod_a(fake);
}

static void fake_stop(void)
{
    meshsim_k8s_destroy(fake);
    fake = NULL;
}

struct auth_seen {
    char value[256];
    size_t n;
};

static void auth_cb(void *ctx, const struct meshsim_k8s_request *r)
{
    struct auth_seen *a = ctx;
    snprintf(a->value, sizeof a->value, "%s", r->authorization);
    a->n++;
}

Test(kubeconfig, discovery_over_https_with_ca_file_and_token)
{
    fake_start("k8s_tls", "kc-token");
    char *ca = ht_slurp(ht_testdata("k8s_tls", "ca.crt"));
    ht_tmp_write("ca.crt", ca);
    free(ca);
    char text[1024];
    snprintf(text, sizeof text,
             KC_HEAD_NS "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:%u', "
                     "certificate-authority: ca.crt}}]\n"
                     "users: [{name: u, user: {token: kc-token}}]\n",
             (unsigned)meshsim_k8s_port(fake));
    struct sd_rec *r = kt_sd_start_kubeconfig(ht_tmp_write("config", text));
    cr_assert(sd_wait_for(kt_found_pod_a, r));
    struct auth_seen s = {"", 0};
    meshsim_k8s_requests(fake, auth_cb, &s);
    cr_assert_str_eq(s.value, "Bearer kc-token");
    sd_rec_stop(r);
    fake_stop();
}

static bool saw_token(void *ctx)
{
    struct auth_seen s = {"", 0};
    meshsim_k8s_requests(fake, auth_cb, &s);
    return strcmp(s.value, (const char *)ctx) == 0;
}

/* The certificate names only api.meshprom.test: tls-server-name makes it verify against
 * 127.0.0.1; the token file is re-read (rotation), the client certificate is presented. */
Test(kubeconfig, discovery_with_tls_server_name_token_file_and_client_cert)
{
    fake_start("httpc_tls", "first");
    char *ca_pem = ht_slurp(ht_testdata("httpc_tls", "ca.crt"));
    char *ca = ht_b64(ca_pem);
    free(ca_pem);
    ht_tmp_write("token", "first\n");
    char text[4096];
    snprintf(text, sizeof text,
             KC_HEAD_NS "clusters:\n"
                     "- name: c\n"
                     "  cluster:\n"
                     "    server: https://127.0.0.1:%u\n"
                     "    tls-server-name: api.meshprom.test\n"
                     "    certificate-authority-data: %s\n"
                     "users:\n"
                     "- name: u\n"
                     "  user:\n"
                     "    tokenFile: token\n"
                     "    client-certificate: %s\n"
                     "    client-key: %s\n",
             (unsigned)meshsim_k8s_port(fake), ca, ht_testdata("httpc_tls", "client.crt"),
             ht_testdata("httpc_tls", "client.key"));
    free(ca);
    struct sd_rec *r = kt_sd_start_kubeconfig(ht_tmp_write("config", text));
    cr_assert(sd_wait_for(kt_found_pod_a, r));
    /* rotate: the next request (a re-watch after the drop) reads the new token */
    ht_tmp_write("token", "second\n");
    meshsim_k8s_set_token(fake, "second");
    meshsim_k8s_drop_watches(fake, true);
    cr_assert(sd_wait_for(saw_token, "Bearer second"));
    sd_rec_stop(r);
    fake_stop();
}

Test(kubeconfig, discovery_with_a_wrong_tls_server_name_finds_nothing)
{
    fake_start("httpc_tls", "t");
    char *ca_pem = ht_slurp(ht_testdata("httpc_tls", "ca.crt"));
    char *ca = ht_b64(ca_pem);
    free(ca_pem);
    char text[4096];
    snprintf(text, sizeof text,
             KC_HEAD_NS "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:%u', "
                     "tls-server-name: wrong.meshprom.test, certificate-authority-data: %s}}]\n"
                     "users: [{name: u, user: {token: t}}]\n",
             (unsigned)meshsim_k8s_port(fake), ca);
    free(ca);
    struct sd_rec *r = kt_sd_start_kubeconfig(ht_tmp_write("config", text));
    sd_sleep_ms(300);
    struct auth_seen s = {"", 0};
    meshsim_k8s_requests(fake, auth_cb, &s);
    cr_assert_eq(s.n, 0, "the handshake fails before any request");
    char *t = sd_rec_text(r, "k");
    cr_assert(t == NULL || t[0] == '\0');
    free(t);
    sd_rec_stop(r);
    fake_stop();
}
