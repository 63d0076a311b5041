/* SPDX-License-Identifier: Apache-2.0 */
/* tests/scraper/test_kubeconfig_exec.c: kubeconfig users[].user.exec credential plugins
 * (client.authentication.k8s.io/v1 and v1beta1) with small shell-script plugins in a mkdtemp
 * directory: loading and client-go's validation texts, one run (token, env, args,
 * KUBERNETES_EXEC_INFO as client-go writes it, with provideClusterInfo), the failure texts
 * (exit code, not found, bad JSON, apiVersion mismatch, missing status, half a cert pair, a
 * plugin that does not finish), and the Kubernetes client against meshsim's fake API: one run
 * for many requests, re-run on expiry and after a 401. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/str.h"
#include "configs/config.h"
#include "meshsim/meshsim.h"
#include "scraper/httpc.h"
#include "scraper/sd_internal.h"
#include "support_httpc.h"
#include "support_kube.h"
#include "test_sd_support.h"

static void tmp_init(void)
{
    ht_tmp_init("kubeexec");
}

TestSuite(kubeexec, .init = tmp_init, .fini = ht_tmp_fini);

/* An executable shell script tmpdir/name with body after the #! line; returns its path. */
static const char *plugin(const char *name, const char *body)
{
    char *text = NULL;
    cr_assert(asprintf(&text, "#!/bin/sh\n%s", body) > 0);
    const char *p = ht_tmp_write(name, text);
    free(text);
    cr_assert_eq(chmod(p, 0755), 0);
    return p;
}

/* A kubeconfig for server with user u's exec block (YAML lines at 4-space indent). */
static const char *kubeconfig(const char *server, const char *exec)
{
    char *text = NULL;
    cr_assert(asprintf(&text,
                       KC_HEAD "clusters:\n"
                               "- name: c\n"
                               "  cluster: {server: '%s'}\n"
                               "users:\n"
                               "- name: u\n"
                               "  user:\n"
                               "    exec:\n"
                               "%s",
                       server, exec) > 0);
    const char *p = ht_tmp_write("config", text);
    free(text);
    return p;
}

static int load(const char *exec, struct scrape_kubeconfig *k, struct mp_err *err)
{
    mp_err_clear(err);
    return scrape_kubeconfig_load(kubeconfig("http://127.0.0.1:1", exec), k, err);
}

/* ---- loading ------------------------------------------------------------------------------- */

Test(kubeexec, load_reads_the_exec_block)
{
    struct scrape_kubeconfig k;
    struct mp_err err;
    cr_assert_eq(load("      apiVersion: client.authentication.k8s.io/v1\n"
                      "      command: ./bin/plugin\n"
                      "      args: [get-token, --x=1]\n"
                      "      env: [{name: A, value: '1'}, {name: B}]\n"
                      "      interactiveMode: Never\n"
                      "      installHint: install it\n",
                      &k, &err),
                 0, "%s", err.msg);
    cr_assert_not_null(k.exec);
    char want[512];
    snprintf(want, sizeof want, "%s/./bin/plugin", ht_tmpdir());
    cr_assert_str_eq(k.exec->command, want, "a command with a '/' is relative to the file");
    cr_assert_eq(k.exec->nargs, 2);
    cr_assert_str_eq(k.exec->args[1], "--x=1");
    cr_assert_eq(k.exec->nenv, 2);
    cr_assert_str_eq(k.exec->env[0], "A=1");
    cr_assert_str_eq(k.exec->env[1], "B=");
    cr_assert_eq(k.exec->mode, SCRAPE_KUBE_EXEC_NEVER);
    cr_assert_str_eq(k.exec->install_hint, "install it");
    cr_assert_null(k.exec->cluster_json);
    cr_assert_null(k.http.authorization);
    scrape_kubeconfig_fini(&k);

    /* v1beta1 defaults interactiveMode; a bare command stays a PATH name */
    cr_assert_eq(load("      apiVersion: client.authentication.k8s.io/v1beta1\n"
                      "      command: kubectl-plugin\n",
                      &k, &err),
                 0, "%s", err.msg);
    cr_assert_str_eq(k.exec->command, "kubectl-plugin");
    cr_assert_eq(k.exec->mode, SCRAPE_KUBE_EXEC_IF_AVAILABLE);
    scrape_kubeconfig_fini(&k);
}

Test(kubeexec, load_errors_read_as_client_go)
{
    struct scrape_kubeconfig k;
    struct mp_err err;
    cr_assert_eq(load("      apiVersion: client.authentication.k8s.io/v1\n"
                      "      command: p\n",
                      &k, &err),
                 MP_EINVAL);
    cr_assert_str_eq(err.msg, "invalid configuration: interactiveMode must be specified for u "
                              "to use exec authentication plugin");
    cr_assert_eq(load("      env: [{value: x}]\n"
                      "      interactiveMode: Sometimes\n",
                      &k, &err),
                 MP_EINVAL);
    cr_assert_str_eq(err.msg,
                     "invalid configuration: [command must be specified for u to use exec "
                     "authentication plugin, apiVersion must be specified for u to use exec "
                     "authentication plugin, env variable name must be specified for u to use "
                     "exec authentication plugin, invalid interactiveMode for u: \"Sometimes\"]");
    cr_assert_eq(load("      apiVersion: client.authentication.k8s.io/v1alpha1\n"
                      "      command: p\n"
                      "      interactiveMode: Never\n",
                      &k, &err),
                 MP_EINVAL);
    cr_assert_str_eq(err.msg,
                     "exec plugin: invalid apiVersion \"client.authentication.k8s.io/v1alpha1\"");
    cr_assert_null(k.exec);
}

/* exec.Authenticator.UpdateTransportConfig: a token in the user wins over the plugin. */
Test(kubeexec, a_token_wins_over_the_plugin)
{
    const char *p = ht_tmp_write("config", KC_HEAD "clusters: [{name: c, cluster: {server: "
                                                   "'http://127.0.0.1:1'}}]\n"
                                                   "users:\n"
                                                   "- name: u\n"
                                                   "  user:\n"
                                                   "    token: abc\n"
                                                   "    exec:\n"
                                                   "      apiVersion: "
                                                   "client.authentication.k8s.io/v1\n"
                                                   "      command: p\n"
                                                   "      interactiveMode: Never\n");
    struct scrape_kubeconfig k;
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(scrape_kubeconfig_load(p, &k, &err), 0, "%s", err.msg);
    cr_assert_null(k.exec);
    cr_assert_str_eq(k.http.authorization->credentials, "abc");
    scrape_kubeconfig_fini(&k);
}

/* ---- one run ------------------------------------------------------------------------------- */

static struct scrape_kube_exec *exec_of(const char *script, const char *version, const char *extra)
{
    char *block = NULL;
    cr_assert(asprintf(&block,
                       "      apiVersion: client.authentication.k8s.io/%s\n"
                       "      command: %s\n"
                       "      interactiveMode: Never\n"
                       "%s",
                       version, script, extra) > 0);
    struct scrape_kubeconfig k;
    struct mp_err err;
    int rc = load(block, &k, &err);
    free(block);
    cr_assert_eq(rc, 0, "%s", err.msg);
    struct scrape_kube_exec *x = scrape_kube_exec_dup(k.exec);
    scrape_kubeconfig_fini(&k);
    return x;
}

static int run(struct scrape_kube_exec *x, struct scrape_kube_creds *c, struct mp_err *err)
{
    mp_err_clear(err);
    return scrape_kube_exec_run(x, true, c, err);
}

Test(kubeexec, token_plugin_gets_args_env_and_exec_info)
{
    const char *info = ht_tmp_path("info");
    char body[1024];
    snprintf(body, sizeof body,
             "printf '%%s' \"$KUBERNETES_EXEC_INFO\" > %s\n"
             "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":"
             "\"ExecCredential\",\"status\":{\"token\":\"'\"$1-$MY_ENV\"'\"}}'\n",
             info);
    struct scrape_kube_exec *x = exec_of(plugin("tok.sh", body), "v1",
                                         "      args: [arg1]\n"
                                         "      env: [{name: MY_ENV, value: from-config}]\n");
    setenv("MY_ENV", "from-process", 1);
    struct scrape_kube_creds c;
    struct mp_err err;
    cr_assert_eq(run(x, &c, &err), 0, "%s", err.msg);
    unsetenv("MY_ENV");
    cr_assert_str_eq(c.token, "arg1-from-config", "args, and env over the process's");
    cr_assert_null(c.cert);
    cr_assert_eq(c.expiry_ms, 0);
    char *got = ht_slurp(info);
    cr_assert_str_eq(got,
                     "{\"kind\":\"ExecCredential\",\"apiVersion\":"
                     "\"client.authentication.k8s.io/v1\",\"spec\":{\"interactive\":false}}\n");
    free(got);
    scrape_kube_creds_fini(&c);
    scrape_kube_exec_destroy(x);
}

/* provideClusterInfo: spec.cluster as rest.ConfigToExecCluster fills it, in Go's field order
 * and escaping; the CA bytes base64-encoded. */
Test(kubeexec, provide_cluster_info_passes_the_cluster)
{
    const char *info = ht_tmp_path("info");
    char body[1024];
    snprintf(body, sizeof body,
             "printf '%%s' \"$KUBERNETES_EXEC_INFO\" > %s\n"
             "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":"
             "\"ExecCredential\",\"status\":{\"token\":\"t\"}}'\n",
             info);
    ht_tmp_write("ca.crt", "CA<&>");
    char text[2048];
    snprintf(text, sizeof text,
             KC_HEAD "clusters:\n"
                     "- name: c\n"
                     "  cluster:\n"
                     "    server: https://127.0.0.1:6443\n"
                     "    certificate-authority: ca.crt\n"
                     "    tls-server-name: api.example\n"
                     "    proxy-url: http://proxy:3128\n"
                     "users:\n"
                     "- name: u\n"
                     "  user:\n"
                     "    exec:\n"
                     "      apiVersion: client.authentication.k8s.io/v1beta1\n"
                     "      command: %s\n"
                     "      provideClusterInfo: true\n"
                     "      interactiveMode: Never\n",
             plugin("tok.sh", body));
    struct scrape_kubeconfig k;
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(scrape_kubeconfig_load(ht_tmp_write("config", text), &k, &err), 0, "%s", err.msg);
    struct scrape_kube_creds c;
    cr_assert_eq(run(k.exec, &c, &err), 0, "%s", err.msg);
    char *got = ht_slurp(info);
    cr_assert_str_eq(got, "{\"kind\":\"ExecCredential\",\"apiVersion\":"
                          "\"client.authentication.k8s.io/v1beta1\",\"spec\":{\"cluster\":{"
                          "\"server\":\"https://127.0.0.1:6443\",\"tls-server-name\":"
                          "\"api.example\",\"certificate-authority-data\":\"Q0E8Jj4=\","
                          "\"proxy-url\":\"http://proxy:3128\",\"config\":null},"
                          "\"interactive\":false}}\n");
    free(got);
    scrape_kube_creds_fini(&c);
    scrape_kubeconfig_fini(&k);
}

/* A kubeconfig whose cluster c carries the exec extension (YAML at 6-space indent) and maybe
 * disable-compression; user u runs /bin/true with provideClusterInfo. */
static int load_ext(const char *ext, bool no_gzip, struct scrape_kubeconfig *k, struct mp_err *err)
{
    char *text = NULL;
    cr_assert(asprintf(&text,
                       KC_HEAD "clusters:\n"
                               "- name: c\n"
                               "  cluster:\n"
                               "    server: https://127.0.0.1:6443\n"
                               "%s"
                               "    extensions:\n"
                               "    - name: other\n"
                               "      extension: {x: 1}\n"
                               "    - name: client.authentication.k8s.io/exec\n"
                               "      extension:\n"
                               "%s"
                               "users:\n"
                               "- name: u\n"
                               "  user:\n"
                               "    exec:\n"
                               "      apiVersion: client.authentication.k8s.io/v1\n"
                               "      command: /bin/true\n"
                               "      provideClusterInfo: true\n"
                               "      interactiveMode: Never\n",
                       no_gzip ? "    disable-compression: true\n" : "", ext) > 0);
    mp_err_clear(err);
    int rc = scrape_kubeconfig_load(ht_tmp_write("config", text), k, err);
    free(text);
    return rc;
}

Test(kubeexec, cluster_info_carries_the_exec_extension_as_json)
{
    struct scrape_kubeconfig k;
    struct mp_err err;
    /* keys sorted as encoding/json writes a map; YAML 1.1 scalars as go-yaml v2 reads them */
    cr_assert_eq(load_ext("        audience: 06e3fbd18de8\n"
                          "        zeta: [1, 0x1f, 017, -3, 1_000, +7]\n"
                          "        alpha: {b: yes, a: off, c: ~, d: '', e: 'yes'}\n"
                          "        floats: [0.5, 1.0, 1e21, 2.5e-7, -0.0, .5, 1e-6, 123456.75]\n"
                          "        text: \"a<b\\n\"\n"
                          "        12: twelve\n"
                          "        dup: first\n"
                          "        dup: last\n",
                          true, &k, &err),
                 0, "%s", err.msg);
    cr_assert_not_null(k.exec);
    cr_assert(k.disable_compression);
    cr_assert_str_eq(k.exec->cluster_json,
                     "{\"server\":\"https://127.0.0.1:6443\",\"disable-compression\":true,"
                     "\"config\":{\"12\":\"twelve\",\"alpha\":{\"a\":false,\"b\":true,\"c\":null,"
                     "\"d\":\"\",\"e\":\"yes\"},\"audience\":\"06e3fbd18de8\",\"dup\":\"last\","
                     "\"floats\":[0.5,1,1e+21,2.5e-7,-0,0.5,0.000001,123456.75],"
                     "\"text\":\"a\\u003cb\\n\",\"zeta\":[1,31,15,-3,1000,7]}}");
    scrape_kubeconfig_fini(&k);

    /* an empty extension is null, as an empty RawExtension encodes */
    cr_assert_eq(load_ext("", false, &k, &err), 0, "%s", err.msg);
    cr_assert_not(k.disable_compression);
    cr_assert_str_eq(k.exec->cluster_json,
                     "{\"server\":\"https://127.0.0.1:6443\",\"config\":null}");
    scrape_kubeconfig_fini(&k);

    /* what JSON cannot hold fails the load */
    cr_assert_neq(load_ext("        v: .inf\n", false, &k, &err), 0);
    cr_assert_str_eq(err.msg, "kubeconfig: cluster extension client.authentication.k8s.io/exec: "
                              "json: unsupported value: +Inf");
}

/* users[].user.auth-provider: Prometheus links only client-go's gcp stub. */
static int load_provider(const char *name, bool with_exec, struct scrape_kubeconfig *k,
                         struct mp_err *err)
{
    char *text = NULL;
    cr_assert(asprintf(&text,
                       KC_HEAD "clusters:\n"
                               "- name: c\n"
                               "  cluster: {server: 'https://127.0.0.1:6443'}\n"
                               "users:\n"
                               "- name: u\n"
                               "  user:\n"
                               "    auth-provider:\n"
                               "      name: %s\n"
                               "      config: {cmd-path: gcloud}\n"
                               "%s",
                       name,
                       with_exec ? "    exec:\n"
                                   "      apiVersion: client.authentication.k8s.io/v1\n"
                                   "      command: /bin/true\n"
                                   "      interactiveMode: Never\n"
                                 : "") > 0);
    mp_err_clear(err);
    int rc = scrape_kubeconfig_load(ht_tmp_write("config", text), k, err);
    free(text);
    return rc;
}

Test(kubeexec, auth_providers_fail_as_client_go)
{
    struct scrape_kubeconfig k;
    struct mp_err err;
    cr_assert_eq(load_provider("oidc", false, &k, &err), MP_EINVAL);
    cr_assert_str_eq(err.msg, "no Auth Provider found for name \"oidc\"");
    cr_assert_eq(load_provider("gcp", false, &k, &err), MP_EINVAL);
    cr_assert(strncmp(err.msg,
                      "The gcp auth plugin has been removed.\nPlease use the "
                      "\"gke-gcloud-auth-plugin\"",
                      70) == 0,
              "%s", err.msg);
    cr_assert_eq(load_provider("oidc", true, &k, &err), MP_EINVAL);
    cr_assert(strstr(err.msg, "authProvider cannot be provided in combination with an exec "
                              "plugin for u") != NULL,
              "%s", err.msg);
}

Test(kubeexec, cert_plugin_and_expiry)
{
    struct scrape_kube_exec *x =
        exec_of(plugin("cert.sh",
                       "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":"
                       "\"ExecCredential\",\"status\":{\"clientCertificateData\":\"-----BEGIN "
                       "CERTIFICATE-----\\nx\\n\",\"clientKeyData\":\"-----BEGIN PRIVATE "
                       "KEY-----\\ny\\n\",\"expirationTimestamp\":\"2030-01-02T03:04:05Z\"}}'\n"),
                "v1", "");
    struct scrape_kube_creds c;
    struct mp_err err;
    cr_assert_eq(run(x, &c, &err), 0, "%s", err.msg);
    cr_assert_null(c.token);
    cr_assert_str_eq(c.cert, "-----BEGIN CERTIFICATE-----\nx\n");
    cr_assert_str_eq(c.key, "-----BEGIN PRIVATE KEY-----\ny\n");
    cr_assert_eq(c.expiry_ms, INT64_C(1893553445000));
    scrape_kube_creds_fini(&c);
    scrape_kube_exec_destroy(x);
}

/* A plugin (its stdout) -> the error client-go reports ("$P" stands for the plugin path). */
static void expect_error(const char *body, const char *version, const char *want_text)
{
    const char *p = plugin("bad.sh", body);
    struct scrape_kube_exec *x = exec_of(p, version, "");
    struct scrape_kube_creds c;
    struct mp_err err;
    cr_assert_neq(run(x, &c, &err), 0);
    char want[1024];
    const char *at = strstr(want_text, "$P");
    if (at != NULL)
        snprintf(want, sizeof want, "%.*s%s%s", (int)(at - want_text), want_text, p, at + 2);
    else
        snprintf(want, sizeof want, "%s", want_text);
    cr_assert_str_eq(err.msg, want);
    cr_assert_null(c.token);
    scrape_kube_exec_destroy(x);
}

#define OUT(status)                                                                                \
    "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\"" status \
    "}'\n"

Test(kubeexec, failures_read_as_client_go)
{
    expect_error("echo oops >&2\nexit 3\n", "v1", "exec: executable $P failed with exit code 3");
    expect_error("echo 'not json'\n", "v1",
                 "decoding stdout: couldn't get version/kind; json parse error: null "
                 "expected"); /* json-c's words after the 'n' */
    expect_error(OUT(",\"status\":{\"token\":\"t\"}"), "v1beta1",
                 "exec plugin is configured to use API version "
                 "client.authentication.k8s.io/v1beta1, plugin returned version "
                 "client.authentication.k8s.io/v1");
    expect_error("echo '{\"apiVersion\":\"client.authentication.k8s.io/v9\",\"kind\":"
                 "\"ExecCredential\"}'\n",
                 "v1",
                 "decoding stdout: no kind \"ExecCredential\" is registered for version "
                 "\"client.authentication.k8s.io/v9\" in scheme \"pkg/runtime/scheme.go:100\"");
    expect_error("echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\"}'\n", "v1",
                 "decoding stdout: Object 'Kind' is missing in "
                 "'{\"apiVersion\":\"client.authentication.k8s.io/v1\"}\n'");
    expect_error(OUT(""), "v1", "exec plugin didn't return a status field");
    expect_error(OUT(",\"status\":{}"), "v1", "exec plugin didn't return a token or cert/key pair");
    expect_error(OUT(",\"status\":{\"clientKeyData\":\"k\"}"), "v1",
                 "exec plugin returned only certificate or key, not both");
    expect_error(OUT(",\"status\":{\"token\":7}"), "v1",
                 "decoding stdout: json: cannot unmarshal int into Go struct field "
                 "ExecCredentialStatus.status.token of type string");
}

Test(kubeexec, missing_plugin_reads_as_client_go)
{
    struct scrape_kube_exec *x =
        exec_of("meshprom-no-such-plugin", "v1", "      installHint: apt-get install it\n");
    struct scrape_kube_creds c;
    struct mp_err err;
    cr_assert_eq(run(x, &c, &err), MP_EIO);
    cr_assert_str_eq(err.msg,
                     "exec: executable meshprom-no-such-plugin not found\n\nIt looks like you "
                     "are trying to use a client-go credential plugin that is not installed.\n\n"
                     "To learn more about this feature, consult the documentation available "
                     "at:\n      https://kubernetes.io/docs/reference/access-authn-authz/"
                     "authentication/#client-go-credential-plugins\n\napt-get install it");
    mp_err_clear(&err);
    cr_assert_eq(scrape_kube_exec_run(x, false, &c, &err), MP_EIO);
    cr_assert_str_eq(err.msg, "exec: executable meshprom-no-such-plugin not found");
    scrape_kube_exec_destroy(x);
    /* a path that does not exist is not looked up: Go's fork/exec error */
    x = exec_of("./nope.sh", "v1", "");
    cr_assert_eq(run(x, &c, &err), MP_EIO);
    char want[600];
    snprintf(want, sizeof want, "exec: fork/exec %s/./nope.sh: no such file or directory",
             ht_tmpdir());
    cr_assert_str_eq(err.msg, want);
    scrape_kube_exec_destroy(x);
}

/* The run time is bounded: a plugin that never answers is killed. */
Test(kubeexec, a_hanging_plugin_is_killed)
{
    struct scrape_kube_exec *x = exec_of(plugin("hang.sh", "exec sleep 30\n"), "v1", "");
    x->timeout_ms = 200;
    struct scrape_kube_creds c;
    struct mp_err err;
    cr_assert_eq(run(x, &c, &err), MP_EIO);
    char want[600];
    snprintf(want, sizeof want,
             "exec: executable %s failed with exit code -1 (killed: no result within 200 ms)",
             x->command);
    cr_assert_str_eq(err.msg, want);
    scrape_kube_exec_destroy(x);
}

/* ---- the Kubernetes client against the fake API server ------------------------------------ */

/* A client through a kubeconfig whose plugin prints the token in tmpdir/token (and counts its
 * runs in tmpdir/runs); status: the token's expirationTimestamp line or "". */
static struct scrape_k8s_client *exec_client(struct meshsim_k8s *k, const char *expiry)
{
    char body[1024];
    snprintf(body, sizeof body,
             "echo run >> %s\n"
             "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":"
             "\"ExecCredential\",\"status\":{%s\"token\":\"'$(cat %s)'\"}}'\n",
             ht_tmp_path("runs"), expiry, ht_tmp_path("token"));
    char server[64], block[512];
    snprintf(server, sizeof server, "http://127.0.0.1:%u", (unsigned)meshsim_k8s_port(k));
    snprintf(block, sizeof block,
             "      apiVersion: client.authentication.k8s.io/v1\n"
             "      command: %s\n"
             "      interactiveMode: IfAvailable\n",
             plugin("tok.sh", body));
    struct cfg_kubernetes_sd sd;
    memset(&sd, 0, sizeof sd);
    sd.role = CFG_K8S_ROLE_POD;
    sd.kubeconfig_file = (char *)kubeconfig(server, block);
    struct scrape_k8s_client *c = NULL;
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(scrape_k8s_client_create(&sd, NULL, &c, &err), 0, "%s", err.msg);
    return c;
}

static long get(struct scrape_k8s_client *c, struct mp_err *err)
{
    struct mp_buf b;
    mp_buf_init(&b, 0);
    long status = 0;
    mp_err_clear(err);
    int rc = scrape_k8s_client_get(c, "/api/v1/pods", &b, &status, NULL, err);
    mp_buf_fini(&b);
    return rc == 0 ? status : -rc;
}

static size_t runs(void)
{
    char *s = ht_slurp(ht_tmp_path("runs"));
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, "run")) != NULL; p++)
        n++;
    free(s);
    return n;
}

Test(kubeexec, client_runs_the_plugin_once_then_again_after_a_401)
{
    struct meshsim_k8s *k = kt_fake_start(NULL, "tok-1");
    ht_tmp_write("token", "tok-1");
    struct scrape_k8s_client *c = exec_client(k, "");
    struct mp_err err;
    for (int i = 0; i < 3; i++)
        cr_assert_eq(get(c, &err), 200, "%s", err.msg);
    cr_assert_eq(runs(), 1, "cached: no expiry");
    /* the server rotates: the cached token gets a 401, the plugin runs again on the next
     * request and its new token works */
    meshsim_k8s_set_token(k, "tok-2");
    ht_tmp_write("token", "tok-2");
    cr_assert_eq(get(c, &err), 401);
    cr_assert_eq(runs(), 1);
    cr_assert_eq(get(c, &err), 200, "%s", err.msg);
    cr_assert_eq(get(c, &err), 200, "%s", err.msg);
    cr_assert_eq(runs(), 2);
    scrape_k8s_client_destroy(c);
    meshsim_k8s_destroy(k);
}

Test(kubeexec, client_runs_the_plugin_again_after_expiry)
{
    struct meshsim_k8s *k = kt_fake_start(NULL, "t");
    ht_tmp_write("token", "t");
    struct scrape_k8s_client *c =
        exec_client(k, "\"expirationTimestamp\":\"2001-01-01T00:00:00Z\",");
    struct mp_err err;
    for (int i = 0; i < 3; i++)
        cr_assert_eq(get(c, &err), 200, "%s", err.msg);
    cr_assert_eq(runs(), 3, "expired at once: a run per request");
    scrape_k8s_client_destroy(c);
    ht_tmp_write("runs", "");
    c = exec_client(k, "\"expirationTimestamp\":\"2100-01-01T00:00:00Z\",");
    for (int i = 0; i < 3; i++)
        cr_assert_eq(get(c, &err), 200, "%s", err.msg);
    cr_assert_eq(runs(), 1, "valid until 2100");
    scrape_k8s_client_destroy(c);
    meshsim_k8s_destroy(k);
}

Test(kubeexec, client_request_fails_with_the_plugin_error)
{
    struct meshsim_k8s *k = kt_fake_start(NULL, "t");
    ht_tmp_write("token", "t");
    struct scrape_k8s_client *c = exec_client(k, "");
    plugin("tok.sh", "exit 2\n");
    struct mp_err err;
    cr_assert_eq(get(c, &err), -MP_EIO);
    char want[600];
    snprintf(want, sizeof want,
             "/api/v1/pods: getting credentials: exec: executable %s failed with exit code 2",
             ht_tmp_path("tok.sh"));
    cr_assert_str_eq(err.msg, want);
    scrape_k8s_client_destroy(c);
    meshsim_k8s_destroy(k);
}

/* ---- discovery through a kubeconfig with a plugin ----------------------------------------- */

static struct meshsim_k8s *sd_fake;

static void count_authed(void *ctx, const struct meshsim_k8s_request *r)
{
    size_t *n = ctx;
    *n += strcmp(r->authorization, "Bearer sd-token") == 0;
}

static bool two_authed_requests(void *ctx)
{
    (void)ctx;
    size_t n = 0;
    meshsim_k8s_requests(sd_fake, count_authed, &n);
    return n >= 2;
}

/* kubernetes_sd_configs with kubeconfig_file: the fake requires the plugin's token; the
 * plugin runs once for the LIST and the WATCHes that follow. */
Test(kubeexec, discovery_authenticates_with_the_plugin)
{
    struct meshsim_k8s *k = kt_fake_start(NULL, "sd-token");
    kt_put_pod_a(k);
    ht_tmp_write("token", "sd-token");
    struct scrape_k8s_client *c = exec_client(k, ""); /* writes the kubeconfig and plugin */
    scrape_k8s_client_destroy(c);
    ht_tmp_write("runs", "");
    struct sd_rec *r = kt_sd_start_kubeconfig(ht_tmp_path("config"));
    cr_assert(sd_wait_for(kt_found_pod_a, r));
    sd_fake = k;
    cr_assert(sd_wait_for(two_authed_requests, NULL), "the LIST and a WATCH");
    cr_assert_eq(runs(), 1);
    sd_rec_stop(r);
    meshsim_k8s_destroy(k);
}
