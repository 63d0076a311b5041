/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "support_kube.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "meshsim/meshsim.h"
#include "support_httpc.h"
#include "test_sd_support.h"

struct meshsim_k8s *kt_fake_start(const char *tls_dir, const char *token)
{
    struct meshsim_k8s_opts o;
    meshsim_k8s_opts_init(&o);
    o.bookmark_interval_ms = 200;
    char *cert = NULL, *key = NULL;
    if (tls_dir) {
        cert = ht_slurp(ht_testdata(tls_dir, "server.crt"));
        key = ht_slurp(ht_testdata(tls_dir, "server.key"));
        o.tls_cert_pem = cert;
        o.tls_key_pem = key;
    }
    struct meshsim_k8s *k = NULL;
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(meshsim_k8s_create("127.0.0.1:0", &o, &k, &err), 0, "%s", err.msg);
    free(cert);
    free(key);
    if (token)
        meshsim_k8s_set_token(k, token);
    return k;
}

void kt_put_pod_a(struct meshsim_k8s *k)
{
    const char *pod = "{\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":{\"nodeName\":\"n1\","
                      "\"containers\":[{\"name\":\"c\",\"ports\":[{\"containerPort\":8080}]}]},"
                      "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.0.0.1\"}}";
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(meshsim_k8s_put(k, MESHSIM_K8S_PODS, "default", "a", pod, strlen(pod), NULL, &err),
                 0, "%s", err.msg);
}

bool kt_found_pod_a(void *rec)
{
    char *t = sd_rec_text(rec, "k");
    bool ok = t != NULL && strstr(t, "__meta_kubernetes_pod_name=\"a\"") != NULL &&
              strstr(t, "__address__=\"10.0.0.1:8080\"") != NULL;
    free(t);
    return ok;
}

struct sd_rec *kt_sd_start_kubeconfig(const char *kubeconfig)
{
    char *y = NULL;
    cr_assert(asprintf(&y,
                       "scrape_configs:\n"
                       "- job_name: k\n"
                       "  kubernetes_sd_configs:\n"
                       "  - role: pod\n"
                       "    kubeconfig_file: %s\n",
                       kubeconfig) > 0);
    struct sd_rec *r = sd_rec_start(y, NULL);
    free(y);
    return r;
}
