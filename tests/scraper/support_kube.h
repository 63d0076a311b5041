/* SPDX-License-Identifier: Apache-2.0 */
/* tests/scraper/support_kube.h: fixtures of the discovery tests against meshsim's fake
 * Kubernetes API server (test_k8s_watch.c, test_sd_kubeconfig.c, test_kubeconfig_exec.c): the
 * fake itself, its pod "a", the head of a kubeconfig and a pod-role job reading one. */
#ifndef TESTS_SCRAPER_SUPPORT_KUBE_H
#define TESTS_SCRAPER_SUPPORT_KUBE_H

#include <stdbool.h>

struct meshsim_k8s;
struct sd_rec;

/* A kubeconfig's first lines: context ctx of cluster c and user u (and the YAML flow-map
 * entries in more), current. */
#define KC_HEAD_CTX(more)                                                                          \
    "apiVersion: v1\n"                                                                             \
    "kind: Config\n"                                                                               \
    "current-context: ctx\n"                                                                       \
    "contexts:\n"                                                                                  \
    "- name: ctx\n"                                                                                \
    "  context: {cluster: c, user: u" more "}\n"
#define KC_HEAD KC_HEAD_CTX("")

/* The fake on 127.0.0.1 (a free port), bookmarking every 200 ms to keep healthy watches
 * above sd_rec's 1 s idle limit; over HTTPS with MP_TESTDATA_DIR/tls_dir/server.{crt,key}
 * unless tls_dir is NULL; requiring "Bearer <token>" unless token is NULL. */
struct meshsim_k8s *kt_fake_start(const char *tls_dir, const char *token);
/* Puts pod default/a: label app=web, node n1, container c with port 8080, Running at
 * 10.0.0.1. */
void kt_put_pod_a(struct meshsim_k8s *k);
/* sd_wait_for predicate on a struct sd_rec *: job "k" has found that pod. */
bool kt_found_pod_a(void *rec);
/* sd_rec_start with one job "k" of role pod reading the kubeconfig file. */
struct sd_rec *kt_sd_start_kubeconfig(const char *kubeconfig);

#endif
