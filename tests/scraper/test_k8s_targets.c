/* SPDX-License-Identifier: Apache-2.0 */
/* tests/scraper/test_k8s_targets.c: Kubernetes objects -> target groups against spec
 * kubernetes-sd.md section 2 (per role) and the worked example of 3.2, 3.5 and 3.6. The
 * fixtures under testdata/k8s/ are described in their README. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "common/str.h"
#include "scraper/scraper.h"

#define M "__meta_kubernetes_"

static char *load(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/k8s/%s", MP_TESTDATA_DIR, name);
    FILE *f = fopen(path, "rb");
    cr_assert(f, "open %s", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    cr_assert(n >= 0);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    cr_assert(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

static char *fmt(const struct mp_labels *ls)
{
    struct mp_buf b;
    mp_buf_init(&b, 0);
    cr_assert_eq(mp_labels_format(ls, &b), 0);
    return mp_buf_take(&b, NULL);
}

/* kv: NULL-terminated "name", "value", ... list; ls must equal it exactly. */
static void expect_labels(const struct mp_labels *ls, const char *const *kv, const char *what)
{
    struct mp_label in[128];
    size_t n = 0;
    for (; kv[2 * n]; n++) {
        cr_assert(n < 128);
        in[n] = (struct mp_label){mp_str_c(kv[2 * n]), mp_str_c(kv[2 * n + 1])};
    }
    struct mp_labels *want;
    cr_assert_eq(mp_labels_create(in, n, &want, NULL), 0, "%s: expected set invalid", what);
    if (!mp_labels_equal(ls, want)) {
        char *got = fmt(ls), *exp = fmt(want);
        cr_assert_fail("%s:\n got  %s\n want %s", what, got, exp);
    }
    mp_labels_release(want);
}

/* A small informer-like store of parsed objects for the lookup callbacks. */
struct store {
    struct scrape_k8s_object *obj[8];
    size_t n;
};

static void store_add(struct store *s, enum scrape_k8s_role role, const char *file)
{
    size_t len;
    char *json = load(file, &len);
    struct mp_err err = {0};
    cr_assert_eq(scrape_k8s_object_parse(role, json, len, &s->obj[s->n], &err), 0, "%s: %s", file,
                 err.msg);
    s->n++;
    free(json);
}

static void store_fini(struct store *s)
{
    for (size_t i = 0; i < s->n; i++)
        scrape_k8s_object_destroy(s->obj[i]);
}

static const struct scrape_k8s_object *find(void *ctx, enum scrape_k8s_role role, const char *ns,
                                            const char *name)
{
    struct store *s = ctx;
    for (size_t i = 0; i < s->n; i++)
        if (scrape_k8s_object_role(s->obj[i]) == role &&
            strcmp(scrape_k8s_object_namespace(s->obj[i]), ns) == 0 &&
            strcmp(scrape_k8s_object_name(s->obj[i]), name) == 0)
            return s->obj[i];
    return NULL;
}

static const struct scrape_k8s_object *find_pod(void *ctx, const char *ns, const char *name)
{
    return find(ctx, SCRAPE_K8S_POD, ns, name);
}

static const struct scrape_k8s_object *find_svc(void *ctx, const char *ns, const char *name)
{
    return find(ctx, SCRAPE_K8S_SERVICE, ns, name);
}

typedef int (*simple_fn)(const char *, size_t, struct scrape_target_group *, struct mp_err *);

static void build_file(simple_fn fn, const char *file, struct scrape_target_group *g)
{
    size_t len;
    char *json = load(file, &len);
    struct mp_err err = {0};
    cr_assert_eq(fn(json, len, g, &err), 0, "%s: %s", file, err.msg);
    free(json);
}

/* ---- pod role: the worked example (3.2) ---------------------------------------------- */

/* pod group labels as the endpoints roles merge them into targets (no namespace) */
#define POD_WEB_TARGET_LABELS                                                                      \
    M "pod_name", "web-7d9c5b8f6b-x2k4q", M "pod_ip", "10.244.2.17", M "pod_ready", "true",        \
        M "pod_phase", "Running", M "pod_node_name", "worker-2", M "pod_host_ip", "172.18.0.3",    \
        M "pod_uid", "3f0c2a61-8b4e-4c1d-9a57-2d6e0b7f41c9", M "pod_controller_kind",              \
        "ReplicaSet", M "pod_controller_name", "web-7d9c5b8f6b", M "pod_label_app", "web-svc",     \
        M "pod_labelpresent_app", "true", M "pod_label_version", "v11",                            \
        M "pod_labelpresent_version", "true", M "pod_label_pod_template_hash", "7d9c5b8f6b",       \
        M "pod_labelpresent_pod_template_hash", "true", M "pod_label_linkerd_io_control_plane_ns", \
        "linkerd", M "pod_labelpresent_linkerd_io_control_plane_ns", "true",                       \
        M "pod_label_linkerd_io_proxy_deployment", "web",                                          \
        M "pod_labelpresent_linkerd_io_proxy_deployment", "true",                                  \
        M "pod_label_linkerd_io_workload_ns", "emojivoto",                                         \
        M "pod_labelpresent_linkerd_io_workload_ns", "true",                                       \
        M "pod_annotation_linkerd_io_created_by", "linkerd/proxy-injector edge-25.10.7",           \
        M "pod_annotationpresent_linkerd_io_created_by", "true",                                   \
        M "pod_annotation_linkerd_io_proxy_version", "edge-25.10.7",                               \
        M "pod_annotationpresent_linkerd_io_proxy_version", "true",                                \
        M "pod_annotation_linkerd_io_trust_root_sha256",                                           \
        "5c1e0f7a9d3b2e8c4a6f1d0b9e7c3a2f8d6b4e1c0a9f7d5b3e2c1a0f9e8d7c6b",                        \
        M "pod_annotationpresent_linkerd_io_trust_root_sha256", "true",                            \
        M "pod_annotation_viz_linkerd_io_tap_enabled", "true",                                     \
        M "pod_annotationpresent_viz_linkerd_io_tap_enabled", "true"

#define POD_WEB_GROUP M "namespace", "emojivoto", POD_WEB_TARGET_LABELS

#define PROXY_ID "containerd://1f7c3e9a5b2d8f4e6a0c1b3d5e7f9a2c4b6d8e0f1a3c5e7b9d2f4a6c8e0b1d3f"
#define WEB_ID "containerd://6d2a8e4c0b7f3d9a1e5c7b2f8d4a0e6c3b9f5d1a7e2c8b4f0d6a3e9c5b1f7d2a"
#define INIT_ID "containerd://9b0e4c7d2a51f8e3b6c9d0a7e4f1b2c8d5a3e6f9c0b7d4a1e8f5c2b9d6a3e0f7"
#define PROXY_IMG "cr.l5d.io/linkerd/proxy:edge-25.10.7"
#define WEB_IMG "docker.l5d.io/buoyantio/emojivoto-web:v11"
#define INIT_IMG "cr.l5d.io/linkerd/proxy-init:v2.4.3"

#define PORT_TARGET(addr, cname, id, img, init, pname, pnum)                                       \
    (const char *const[])                                                                          \
    {                                                                                              \
        "__address__", addr, M "pod_container_name", cname, M "pod_container_id", id,              \
            M "pod_container_image", img, M "pod_container_init", init,                            \
            M "pod_container_port_name", pname, M "pod_container_port_number", pnum,               \
            M "pod_container_port_protocol", "TCP", NULL                                           \
    }
#define T_PROXY_4143(init)                                                                         \
    PORT_TARGET("10.244.2.17:4143", "linkerd-proxy", PROXY_ID, PROXY_IMG, init, "linkerd-proxy",   \
                "4143")
#define T_PROXY_4191(init)                                                                         \
    PORT_TARGET("10.244.2.17:4191", "linkerd-proxy", PROXY_ID, PROXY_IMG, init, "linkerd-admin",   \
                "4191")
#define T_WEB_8080                                                                                 \
    PORT_TARGET("10.244.2.17:8080", "web-svc", WEB_ID, WEB_IMG, "false", "http", "8080")

static const char *const t_init[] = {"__address__",
                                     "10.244.2.17",
                                     M "pod_container_name",
                                     "linkerd-init",
                                     M "pod_container_id",
                                     INIT_ID,
                                     M "pod_container_image",
                                     INIT_IMG,
                                     M "pod_container_init",
                                     "true",
                                     NULL};

Test(k8s_pod, worked_example_3_2)
{
    struct scrape_target_group g;
    build_file(scrape_k8s_pod_targets, "pod_web.json", &g);
    cr_assert_str_eq(g.source, "pod/emojivoto/web-7d9c5b8f6b-x2k4q");
    expect_labels(g.group_labels, (const char *const[]){POD_WEB_GROUP, NULL}, "group");
    cr_assert_eq(g.ntargets, 4);
    expect_labels(g.targets[0], T_PROXY_4143("false"), "target 1");
    expect_labels(g.targets[1], T_PROXY_4191("false"), "target 2");
    expect_labels(g.targets[2], T_WEB_8080, "target 3");
    expect_labels(g.targets[3], t_init, "target 4 (port-less init container)");
    scrape_target_group_fini(&g);
    scrape_target_group_fini(&g); /* twice is harmless */
}

Test(k8s_pod, native_sidecar_3_5)
{
    struct scrape_target_group g;
    build_file(scrape_k8s_pod_targets, "pod_web_native_sidecar.json", &g);
    cr_assert_str_eq(g.source, "pod/emojivoto/web-7d9c5b8f6b-n8tzw");
    cr_assert_eq(g.ntargets, 4);
    expect_labels(g.targets[0], T_WEB_8080, "web-svc first");
    expect_labels(g.targets[1], t_init, "linkerd-init second");
    expect_labels(g.targets[2], T_PROXY_4143("true"), "sidecar 4143, id from init statuses");
    expect_labels(g.targets[3], T_PROXY_4191("true"), "sidecar 4191");
    scrape_target_group_fini(&g);
}

Test(k8s_pod, no_ip_gives_empty_group)
{
    struct scrape_target_group g;
    build_file(scrape_k8s_pod_targets, "pod_pending_no_ip.json", &g);
    cr_assert_str_eq(g.source, "pod/emojivoto/web-7d9c5b8f6b-pq5rl");
    cr_assert_eq(g.ntargets, 0);
    cr_assert_eq(mp_labels_count(g.group_labels), 0);
    scrape_target_group_fini(&g);
}

/* Phase does not filter; no Ready condition -> unknown; non-controller owner -> no
 * controller labels; sanitisation; empty values absent, *present_ kept; IPv6 brackets;
 * unnamed port without protocol; container without a status -> no container_id. */
Test(k8s_pod, succeeded_ipv6_sanitised)
{
    struct scrape_target_group g;
    build_file(scrape_k8s_pod_targets, "pod_job_ipv6.json", &g);
    cr_assert_str_eq(g.source, "pod/ops/backup-29001-x7k2p");
    expect_labels(
        g.group_labels,
        (const char *const[]){M "namespace",
                              "ops",
                              M "pod_name",
                              "backup-29001-x7k2p",
                              M "pod_ip",
                              "fd00:10:244::17",
                              M "pod_ready",
                              "unknown",
                              M "pod_phase",
                              "Succeeded",
                              M "pod_node_name",
                              "worker-1",
                              M "pod_uid",
                              "0b9c1d2e-3f40-4a51-8b62-7c8d9e0f1a2b",
                              M "pod_label_9lives",
                              "yes",
                              M "pod_labelpresent_9lives",
                              "true",
                              M "pod_labelpresent_empty_value",
                              "true",
                              M "pod_label_job_name",
                              "backup-29001",
                              M "pod_labelpresent_job_name",
                              "true",
                              M "pod_annotation_example_com_some_Key_x",
                              "v",
                              M "pod_annotationpresent_example_com_some_Key_x",
                              "true",
                              M "pod_annotation_kubectl_kubernetes_io_default_container",
                              "backup",
                              M "pod_annotationpresent_kubectl_kubernetes_io_default_container",
                              "true",
                              NULL},
        "group");
    cr_assert_eq(g.ntargets, 1);
    expect_labels(g.targets[0],
                  (const char *const[]){"__address__", "[fd00:10:244::17]:9102",
                                        M "pod_container_name", "backup", M "pod_container_image",
                                        "registry.example/backup:1.2", M "pod_container_init",
                                        "false", M "pod_container_port_number", "9102", NULL},
                  "target");
    scrape_target_group_fini(&g);
}

Test(k8s_pod, ready_false_and_multibyte_key)
{
    static const char json[] =
        "{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\",\"labels\":{\"a\xc3\xa9-b\":\"x\","
        "\"a\xff\":\"y\",\"a.b\":\"1\",\"a_b\":\"2\"}},"
        "\"spec\":{\"containers\":[{\"name\":\"c\"}]},"
        "\"status\":{\"podIP\":\"10.0.0.1\",\"conditions\":[{\"type\":\"Ready\",\"status\":"
        "\"False\"}]}}";
    struct scrape_target_group g;
    struct mp_err err = {0};
    cr_assert_eq(scrape_k8s_pod_targets(json, sizeof json - 1, &g, &err), 0, "%s", err.msg);
    cr_assert_str_eq(mp_labels_get(g.group_labels, MP_STR_LIT(M "pod_ready")).ptr, "false");
    /* one rune -> one '_' (Go regexp), an invalid byte -> one '_' */
    cr_assert_str_eq(mp_labels_get(g.group_labels, MP_STR_LIT(M "pod_label_a__b")).ptr, "x");
    cr_assert_str_eq(mp_labels_get(g.group_labels, MP_STR_LIT(M "pod_label_a_")).ptr, "y");
    /* colliding keys: the later one wins */
    cr_assert_str_eq(mp_labels_get(g.group_labels, MP_STR_LIT(M "pod_label_a_b")).ptr, "2");
    cr_assert_eq(g.ntargets, 1);
    cr_assert_str_eq(mp_labels_get(g.targets[0], MP_STR_LIT("__address__")).ptr, "10.0.0.1");
    scrape_target_group_fini(&g);
}

/* ---- service role -------------------------------------------------------------------- */

#define SVC_GROUP                                                                                  \
    M "namespace", "emojivoto", M "service_name", "web-svc",                                       \
        M "service_label_app_kubernetes_io_name", "web",                                           \
        M "service_labelpresent_app_kubernetes_io_name", "true",                                   \
        M "service_annotation_linkerd_io_inject", "enabled",                                       \
        M "service_annotationpresent_linkerd_io_inject", "true"

Test(k8s_service, cluster_ip)
{
    struct scrape_target_group g;
    build_file(scrape_k8s_service_targets, "service_web.json", &g);
    cr_assert_str_eq(g.source, "svc/emojivoto/web-svc");
    expect_labels(g.group_labels, (const char *const[]){SVC_GROUP, NULL}, "group");
    cr_assert_eq(g.ntargets, 2);
    expect_labels(g.targets[0],
                  (const char *const[]){"__address__", "web-svc.emojivoto.svc:80",
                                        M "service_port_name", "http", M "service_port_number",
                                        "80", M "service_port_protocol", "TCP", M "service_type",
                                        "ClusterIP", M "service_cluster_ip", "10.96.120.7", NULL},
                  "port 80");
    cr_assert_str_eq(mp_labels_get(g.targets[1], MP_STR_LIT("__address__")).ptr,
                     "web-svc.emojivoto.svc:8443");
    scrape_target_group_fini(&g);
}

Test(k8s_service, external_name_and_load_balancer)
{
    struct scrape_target_group g;
    build_file(scrape_k8s_service_targets, "service_external.json", &g);
    cr_assert_str_eq(g.source, "svc/data/db");
    cr_assert_eq(g.ntargets, 1);
    expect_labels(g.targets[0],
                  (const char *const[]){"__address__", "db.data.svc:5432", M "service_port_number",
                                        "5432", M "service_port_protocol", "TCP", M "service_type",
                                        "ExternalName", M "service_external_name", "db.example.com",
                                        NULL},
                  "external name");
    scrape_target_group_fini(&g);

    static const char lb[] =
        "{\"metadata\":{\"name\":\"in\",\"namespace\":\"edge\"},\"spec\":{\"type\":"
        "\"LoadBalancer\",\"clusterIP\":\"10.96.0.9\",\"loadBalancerIP\":\"198.51.100.4\","
        "\"ports\":[{\"name\":\"https\",\"port\":443,\"protocol\":\"TCP\"}]}}";
    struct mp_err err = {0};
    cr_assert_eq(scrape_k8s_service_targets(lb, sizeof lb - 1, &g, &err), 0, "%s", err.msg);
    expect_labels(g.targets[0],
                  (const char *const[]){"__address__", "in.edge.svc:443", M "service_port_name",
                                        "https", M "service_port_number", "443",
                                        M "service_port_protocol", "TCP", M "service_type",
                                        "LoadBalancer", M "service_cluster_ip", "10.96.0.9",
                                        M "service_loadbalancer_ip", "198.51.100.4", NULL},
                  "load balancer");
    scrape_target_group_fini(&g);
}

/* ---- endpoints and endpointslice (3.6) ------------------------------------------------ */

#define UNCOVERED(addr, pname, pnum)                                                               \
    (const char *const[])                                                                          \
    {                                                                                              \
        "__address__", addr, M "pod_container_name", "linkerd-proxy", M "pod_container_image",     \
            PROXY_IMG, M "pod_container_port_name", pname, M "pod_container_port_number", pnum,    \
            M "pod_container_port_protocol", "TCP", POD_WEB_TARGET_LABELS, NULL                    \
    }

static void stores(struct store *s, struct scrape_k8s_lookup *lk)
{
    s->n = 0;
    store_add(s, SCRAPE_K8S_POD, "pod_web.json");
    store_add(s, SCRAPE_K8S_SERVICE, "service_web.json");
    *lk = (struct scrape_k8s_lookup){find_pod, find_svc, s, NULL};
}

typedef int (*dep_fn)(const char *, size_t, const struct scrape_k8s_lookup *,
                      struct scrape_target_group *, struct mp_err *);

/* Builds file with the web pod and service cached. */
static void build_with_caches(dep_fn fn, const char *file, struct scrape_target_group *g)
{
    struct store s;
    struct scrape_k8s_lookup lk;
    stores(&s, &lk);
    size_t len;
    char *json = load(file, &len);
    struct mp_err err = {0};
    cr_assert_eq(fn(json, len, &lk, g, &err), 0, "%s: %s", file, err.msg);
    free(json);
    store_fini(&s);
}

Test(k8s_endpoints, worked_example_3_6)
{
    struct scrape_target_group g;
    build_with_caches(scrape_k8s_endpoints_targets, "endpoints_web.json", &g);
    cr_assert_str_eq(g.source, "endpoints/emojivoto/web-svc");
    expect_labels(
        g.group_labels,
        (const char *const[]){
            SVC_GROUP, M "endpoints_name", "web-svc", M "endpoints_label_app_kubernetes_io_name",
            "web", M "endpoints_labelpresent_app_kubernetes_io_name", "true",
            M "endpoints_annotation_endpoints_kubernetes_io_last_change_trigger_time",
            "2026-08-20T09:14:12Z",
            M "endpoints_annotationpresent_endpoints_kubernetes_io_last_change_trigger_time",
            "true", NULL},
        "group");
    cr_assert_eq(g.ntargets, 4);
    expect_labels(g.targets[0],
                  (const char *const[]){"__address__",
                                        "10.244.2.17:8080",
                                        M "endpoint_port_name",
                                        "http",
                                        M "endpoint_port_protocol",
                                        "TCP",
                                        M "endpoint_ready",
                                        "true",
                                        M "endpoint_address_target_kind",
                                        "Pod",
                                        M "endpoint_address_target_name",
                                        "web-7d9c5b8f6b-x2k4q",
                                        M "endpoint_node_name",
                                        "worker-2",
                                        M "pod_container_name",
                                        "web-svc",
                                        M "pod_container_image",
                                        WEB_IMG,
                                        M "pod_container_port_name",
                                        "http",
                                        M "pod_container_port_number",
                                        "8080",
                                        M "pod_container_port_protocol",
                                        "TCP",
                                        POD_WEB_TARGET_LABELS,
                                        NULL},
                  "endpoint target");
    /* not-ready address of a pod the cache does not have: endpoint labels only */
    expect_labels(g.targets[1],
                  (const char *const[]){
                      "__address__", "10.244.1.9:8080", M "endpoint_port_name", "http",
                      M "endpoint_port_protocol", "TCP", M "endpoint_ready", "false",
                      M "endpoint_address_target_kind", "Pod", M "endpoint_address_target_name",
                      "not-cached", M "endpoint_hostname", "web-0", NULL},
                  "not-ready target");
    expect_labels(g.targets[2], UNCOVERED("10.244.2.17:4143", "linkerd-proxy", "4143"),
                  "uncovered 4143");
    expect_labels(g.targets[3], UNCOVERED("10.244.2.17:4191", "linkerd-admin", "4191"),
                  "uncovered 4191");
    scrape_target_group_fini(&g);

    /* without caches: no service or pod labels, no extra targets */
    size_t len;
    char *json = load("endpoints_web.json", &len);
    struct mp_err err = {0};
    cr_assert_eq(scrape_k8s_endpoints_targets(json, len, NULL, &g, &err), 0, "%s", err.msg);
    cr_assert_eq(g.ntargets, 2);
    cr_assert_not(mp_labels_has(g.group_labels, MP_STR_LIT(M "service_name")));
    cr_assert_not(mp_labels_has(g.targets[0], MP_STR_LIT(M "pod_name")));
    scrape_target_group_fini(&g);
    free(json);
}

static void collect_ref(void *ctx, const char *ns, const char *name)
{
    struct mp_buf *b = ctx;
    cr_assert_eq(mp_buf_appendf(b, "%s/%s;", ns, name), 0);
}

Test(k8s_endpoints, pod_refs_for_the_watcher)
{
    struct store s = {0};
    store_add(&s, SCRAPE_K8S_ENDPOINTS, "endpoints_web.json");
    store_add(&s, SCRAPE_K8S_ENDPOINTSLICE, "endpointslice_web.json");
    struct mp_buf b;
    mp_buf_init(&b, 0);
    scrape_k8s_object_pod_refs(s.obj[0], collect_ref, &b);
    cr_assert_str_eq(b.data, "emojivoto/web-7d9c5b8f6b-x2k4q;emojivoto/not-cached;");
    mp_buf_reset(&b);
    scrape_k8s_object_pod_refs(s.obj[1], collect_ref, &b);
    cr_assert_str_eq(b.data, "emojivoto/web-7d9c5b8f6b-x2k4q;");
    cr_assert_null(scrape_k8s_endpointslice_service_name(s.obj[0]));
    cr_assert_str_eq(scrape_k8s_endpointslice_service_name(s.obj[1]), "web-svc");

    static const char nullref[] =
        "{\"metadata\":{\"name\":\"e\"},\"subsets\":[{\"addresses\":[{\"ip\":\"10.0.0.1\","
        "\"targetRef\":{\"kind\":null,\"name\":null}},null]}]}";
    struct scrape_k8s_object *o;
    cr_assert_eq(
        scrape_k8s_object_parse(SCRAPE_K8S_ENDPOINTS, nullref, sizeof nullref - 1, &o, NULL), 0);
    mp_buf_reset(&b);
    scrape_k8s_object_pod_refs(o, collect_ref, &b);
    cr_assert_eq(b.len, 0);
    scrape_k8s_object_destroy(o);
    mp_buf_fini(&b);

    struct scrape_target_group g;
    cr_assert_eq(scrape_k8s_deleted_group(s.obj[1], &g, NULL), 0);
    cr_assert_str_eq(g.source, "endpointslice/emojivoto/web-svc-7xq2d");
    cr_assert_eq(g.ntargets, 0);
    scrape_target_group_fini(&g);
    store_fini(&s);
}

Test(k8s_endpointslice, worked_example_3_6)
{
    struct scrape_target_group g;
    build_with_caches(scrape_k8s_endpointslice_targets, "endpointslice_web.json", &g);
    cr_assert_str_eq(g.source, "endpointslice/emojivoto/web-svc-7xq2d");
    expect_labels(g.group_labels,
                  (const char *const[]){
                      SVC_GROUP, M "endpointslice_address_type", "IPv4", M "endpointslice_name",
                      "web-svc-7xq2d", M "endpointslice_label_kubernetes_io_service_name",
                      "web-svc", M "endpointslice_labelpresent_kubernetes_io_service_name", "true",
                      M "endpointslice_label_endpointslice_kubernetes_io_managed_by",
                      "endpointslice-controller.k8s.io",
                      M "endpointslice_labelpresent_endpointslice_kubernetes_io_managed_by", "true",
                      NULL},
                  "group");
    cr_assert_eq(g.ntargets, 3);
    expect_labels(g.targets[0],
                  (const char *const[]){"__address__",
                                        "10.244.2.17:8080",
                                        M "endpointslice_port_name",
                                        "http",
                                        M "endpointslice_port_protocol",
                                        "TCP",
                                        M "endpointslice_port",
                                        "8080",
                                        M "endpointslice_endpoint_conditions_ready",
                                        "true",
                                        M "endpointslice_endpoint_conditions_serving",
                                        "true",
                                        M "endpointslice_endpoint_conditions_terminating",
                                        "false",
                                        M "endpointslice_address_target_kind",
                                        "Pod",
                                        M "endpointslice_address_target_name",
                                        "web-7d9c5b8f6b-x2k4q",
                                        M "endpointslice_endpoint_node_name",
                                        "worker-2",
                                        M "endpointslice_endpoint_zone",
                                        "zone-a",
                                        M "pod_container_name",
                                        "web-svc",
                                        M "pod_container_image",
                                        WEB_IMG,
                                        M "pod_container_port_name",
                                        "http",
                                        M "pod_container_port_number",
                                        "8080",
                                        M "pod_container_port_protocol",
                                        "TCP",
                                        POD_WEB_TARGET_LABELS,
                                        NULL},
                  "slice target");
    expect_labels(g.targets[1], UNCOVERED("10.244.2.17:4143", "linkerd-proxy", "4143"),
                  "uncovered 4143");
    expect_labels(g.targets[2], UNCOVERED("10.244.2.17:4191", "linkerd-admin", "4191"),
                  "uncovered 4191");
    scrape_target_group_fini(&g);
}

Test(k8s_endpointslice, portless_and_topology)
{
    static const char json[] =
        "{\"metadata\":{\"name\":\"s\",\"namespace\":\"n\"},\"addressType\":\"IPv6\","
        "\"endpoints\":[{\"addresses\":[\"fd00::1\"],\"hostname\":\"h\","
        "\"deprecatedTopology\":{\"topology.kubernetes.io/zone\":\"z1\"}}],"
        "\"ports\":[{\"appProtocol\":\"http\"},{\"port\":9090,\"name\":\"\"}]}";
    struct scrape_target_group g;
    struct mp_err err = {0};
    cr_assert_eq(scrape_k8s_endpointslice_targets(json, sizeof json - 1, NULL, &g, &err), 0, "%s",
                 err.msg);
    expect_labels(g.group_labels,
                  (const char *const[]){M "namespace", "n", M "endpointslice_address_type", "IPv6",
                                        M "endpointslice_name", "s", NULL},
                  "group");
    cr_assert_eq(g.ntargets, 2);
    expect_labels(g.targets[0],
                  (const char *const[]){
                      "__address__", "fd00::1", M "endpointslice_port_app_protocol", "http",
                      M "endpointslice_endpoint_hostname", "h",
                      M "endpointslice_endpoint_topology_topology_kubernetes_io_zone", "z1",
                      M "endpointslice_endpoint_topology_present_topology_kubernetes_io_zone",
                      "true", NULL},
                  "port-less");
    cr_assert_str_eq(mp_labels_get(g.targets[1], MP_STR_LIT("__address__")).ptr, "[fd00::1]:9090");
    cr_assert_str_eq(mp_labels_get(g.targets[1], MP_STR_LIT(M "endpointslice_port")).ptr, "9090");
    scrape_target_group_fini(&g);
}

/* ---- node role ----------------------------------------------------------------------- */

Test(k8s_node, address_precedence)
{
    struct scrape_target_group g;
    build_file(scrape_k8s_node_targets, "node_worker2.json", &g);
    cr_assert_str_eq(g.source, "node/worker-2");
    expect_labels(g.group_labels,
                  (const char *const[]){
                      M "node_name", "worker-2", M "node_provider_id",
                      "kind://docker/kind/worker-2", M "node_label_kubernetes_io_hostname",
                      "worker-2", M "node_labelpresent_kubernetes_io_hostname", "true",
                      M "node_labelpresent_node_role_kubernetes_io_worker", "true",
                      M "node_annotation_node_alpha_kubernetes_io_ttl", "0",
                      M "node_annotationpresent_node_alpha_kubernetes_io_ttl", "true", NULL},
                  "group");
    cr_assert_eq(g.ntargets, 1);
    expect_labels(g.targets[0],
                  (const char *const[]){"__address__", "172.18.0.3:10250", "instance", "worker-2",
                                        M "node_address_InternalIP", "172.18.0.3",
                                        M "node_address_ExternalIP", "203.0.113.9",
                                        M "node_address_Hostname", "worker-2", NULL},
                  "target");
    scrape_target_group_fini(&g);

    static const char dns[] =
        "{\"metadata\":{\"name\":\"n1\"},\"status\":{\"addresses\":[{\"type\":\"Hostname\","
        "\"address\":\"n1\"},{\"type\":\"ExternalDNS\",\"address\":\"n1.example\"}],"
        "\"daemonEndpoints\":{\"kubeletEndpoint\":{\"Port\":10250}}}}";
    cr_assert_eq(scrape_k8s_node_targets(dns, sizeof dns - 1, &g, NULL), 0);
    cr_assert_str_eq(mp_labels_get(g.targets[0], MP_STR_LIT("__address__")).ptr,
                     "n1.example:10250");
    scrape_target_group_fini(&g);

    static const char none[] = "{\"metadata\":{\"name\":\"n2\"},\"status\":{\"addresses\":["
                               "{\"type\":\"Other\",\"address\":\"x\"}]}}";
    struct mp_err err = {0};
    cr_assert_eq(scrape_k8s_node_targets(none, sizeof none - 1, &g, &err), MP_ENOTFOUND);
    cr_assert(strstr(err.msg, "host address unknown"), "%s", err.msg);
    cr_assert_eq(g.ntargets, 0);
    cr_assert_null(g.source);
    scrape_target_group_fini(&g);
}

/* ---- attach_metadata.node --------------------------------------------------------------- */

/* node_worker2.json as attach_metadata adds it: no addresses, no provider id; the empty-valued
 * label is left out, its labelpresent_ twin stays */
#define NODE_W2_LABELS                                                                             \
    M "node_name", "worker-2", M "node_label_kubernetes_io_hostname", "worker-2",                  \
        M "node_labelpresent_kubernetes_io_hostname", "true",                                      \
        M "node_labelpresent_node_role_kubernetes_io_worker", "true",                              \
        M "node_annotation_node_alpha_kubernetes_io_ttl", "0",                                     \
        M "node_annotationpresent_node_alpha_kubernetes_io_ttl", "true"

static const struct scrape_k8s_object *find_node(void *ctx, const char *name)
{
    return find(ctx, SCRAPE_K8S_NODE, "", name);
}

Test(k8s_attach, pod_group_gets_node_labels)
{
    struct store s = {0};
    store_add(&s, SCRAPE_K8S_NODE, "node_worker2.json");
    struct scrape_k8s_lookup lk = {NULL, NULL, &s, find_node};
    size_t len;
    char *json = load("pod_web.json", &len);
    struct scrape_target_group g, plain;
    struct mp_err err = {0};
    cr_assert_eq(scrape_k8s_pod_targets_lookup(json, len, &lk, &g, &err), 0, "%s", err.msg);
    cr_assert_eq(scrape_k8s_pod_targets(json, len, &plain, &err), 0, "%s", err.msg);
    expect_labels(g.group_labels, (const char *const[]){POD_WEB_GROUP, NODE_W2_LABELS, NULL},
                  "pod group with node metadata");
    cr_assert_eq(g.ntargets, plain.ntargets);
    for (size_t i = 0; i < g.ntargets; i++) /* the node labels are group labels only */
        cr_assert(mp_labels_equal(g.targets[i], plain.targets[i]), "target %zu", i);
    scrape_target_group_fini(&g);

    /* node not cached (or attach off): nothing, not even node_name */
    store_fini(&s);
    s.n = 0;
    cr_assert_eq(scrape_k8s_pod_targets_lookup(json, len, &lk, &g, &err), 0, "%s", err.msg);
    expect_labels(g.group_labels, (const char *const[]){POD_WEB_GROUP, NULL}, "node not cached");
    scrape_target_group_fini(&g);
    scrape_target_group_fini(&plain);
    free(json);
}

/* with = without + the node labels, for the targets whose address names the node. */
static void expect_node_added(const struct mp_labels *with, const struct mp_labels *without,
                              bool node, const char *what)
{
    static const char *const node_kv[] = {NODE_W2_LABELS, NULL};
    struct mp_label in[128];
    size_t n = 0;
    for (size_t i = 0; i < mp_labels_count(without); i++)
        in[n++] = mp_labels_at(without, i);
    for (size_t i = 0; node && node_kv[i]; i += 2)
        in[n++] = (struct mp_label){mp_str_c(node_kv[i]), mp_str_c(node_kv[i + 1])};
    struct mp_labels *want;
    cr_assert_eq(mp_labels_create(in, n, &want, NULL), 0);
    if (!mp_labels_equal(with, want)) {
        char *got = fmt(with), *exp = fmt(want);
        cr_assert_fail("%s:\n got  %s\n want %s", what, got, exp);
    }
    mp_labels_release(want);
}

static void attach_case(dep_fn fn, const char *file, const bool *node_targets, size_t nt)
{
    struct store s;
    struct scrape_k8s_lookup lk;
    stores(&s, &lk);
    store_add(&s, SCRAPE_K8S_NODE, "node_worker2.json");
    size_t len;
    char *json = load(file, &len);
    struct scrape_target_group g, plain;
    struct mp_err err = {0};
    cr_assert_eq(fn(json, len, &lk, &plain, &err), 0, "%s", err.msg);
    lk.node = find_node;
    cr_assert_eq(fn(json, len, &lk, &g, &err), 0, "%s", err.msg);
    cr_assert(mp_labels_equal(g.group_labels, plain.group_labels), "%s: group labels", file);
    cr_assert_eq(g.ntargets, nt, "%s: %zu targets", file, g.ntargets);
    cr_assert_eq(plain.ntargets, nt);
    for (size_t i = 0; i < nt; i++) {
        char what[128];
        snprintf(what, sizeof what, "%s target %zu", file, i);
        expect_node_added(g.targets[i], plain.targets[i], node_targets[i], what);
    }
    scrape_target_group_fini(&g);
    scrape_target_group_fini(&plain);
    free(json);
    store_fini(&s);
}

/* Endpoints: the address with nodeName worker-2 gets the node labels; the address without
 * nodeName and the extra targets of uncovered pod ports get none (Prometheus's add()). */
Test(k8s_attach, endpoints_targets_get_node_labels)
{
    static const bool node[] = {true, false, false, false};
    attach_case(scrape_k8s_endpoints_targets, "endpoints_web.json", node, 4);
}

Test(k8s_attach, endpointslice_targets_get_node_labels)
{
    struct scrape_target_group g;
    build_with_caches(scrape_k8s_endpointslice_targets, "endpointslice_web.json", &g);
    bool node[16] = {false};
    cr_assert(g.ntargets <= 16);
    for (size_t i = 0; i < g.ntargets; i++) /* the endpoint targets (not uncovered ports) */
        node[i] = mp_labels_has(g.targets[i], mp_str_c(M "endpointslice_endpoint_node_name"));
    cr_assert(node[0], "first slice target names worker-2");
    size_t nt = g.ntargets;
    scrape_target_group_fini(&g);
    attach_case(scrape_k8s_endpointslice_targets, "endpointslice_web.json", node, nt);
}

/* A Node targetRef names the node for both roles; for Endpoints a nodeName wins, for slices
 * the Node targetRef wins. */
Test(k8s_attach, node_target_refs)
{
    struct store s = {0};
    store_add(&s, SCRAPE_K8S_NODE, "node_worker2.json");
    struct scrape_k8s_lookup lk = {NULL, NULL, &s, find_node};
    static const char eps[] =
        "{\"metadata\":{\"name\":\"kubelet\",\"namespace\":\"kube-system\"},\"subsets\":[{"
        "\"addresses\":[{\"ip\":\"172.18.0.3\",\"targetRef\":{\"kind\":\"Node\",\"name\":"
        "\"worker-2\"}},{\"ip\":\"172.18.0.4\",\"nodeName\":\"worker-9\",\"targetRef\":{"
        "\"kind\":\"Node\",\"name\":\"worker-2\"}}],\"ports\":[{\"name\":\"https\",\"port\":"
        "10250,\"protocol\":\"TCP\"}]}]}";
    struct scrape_target_group g;
    struct mp_err err = {0};
    cr_assert_eq(scrape_k8s_endpoints_targets(eps, sizeof eps - 1, &lk, &g, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(g.ntargets, 2);
    expect_labels(
        g.targets[0],
        (const char *const[]){"__address__", "172.18.0.3:10250", M "endpoint_port_name", "https",
                              M "endpoint_port_protocol", "TCP", M "endpoint_ready", "true",
                              M "endpoint_address_target_kind", "Node",
                              M "endpoint_address_target_name", "worker-2", NODE_W2_LABELS, NULL},
        "Node targetRef");
    cr_assert(!mp_labels_has(g.targets[1], mp_str_c(M "node_name")),
              "nodeName worker-9 (not cached) wins over the targetRef");
    scrape_target_group_fini(&g);

    static const char slice[] =
        "{\"metadata\":{\"name\":\"kubelet-1\",\"namespace\":\"kube-system\"},\"addressType\":"
        "\"IPv4\",\"endpoints\":[{\"addresses\":[\"172.18.0.3\"],\"nodeName\":\"worker-9\","
        "\"targetRef\":{\"kind\":\"Node\",\"name\":\"worker-2\"}}],\"ports\":[{\"port\":10250}]}";
    cr_assert_eq(scrape_k8s_endpointslice_targets(slice, sizeof slice - 1, &lk, &g, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(g.ntargets, 1);
    expect_labels(g.targets[0],
                  (const char *const[]){"__address__", "172.18.0.3:10250", M "endpointslice_port",
                                        "10250", M "endpointslice_address_target_kind", "Node",
                                        M "endpointslice_address_target_name", "worker-2",
                                        M "endpointslice_endpoint_node_name", "worker-9",
                                        NODE_W2_LABELS, NULL},
                  "slice: the Node targetRef wins");
    scrape_target_group_fini(&g);
    store_fini(&s);
}

static void collect_node(void *ctx, const char *ns, const char *name)
{
    struct mp_buf *b = ctx;
    cr_assert_str_eq(ns, "");
    cr_assert_eq(mp_buf_appendf(b, "%s;", name), 0);
}

static void expect_node_refs(enum scrape_k8s_role role, const char *file, const char *want)
{
    struct store s = {0};
    store_add(&s, role, file);
    struct mp_buf b;
    mp_buf_init(&b, 0);
    cr_assert_eq(mp_buf_append_str(&b, ""), 0);
    scrape_k8s_object_node_refs(s.obj[0], collect_node, &b);
    cr_assert_str_eq(b.data ? b.data : "", want, "%s", file);
    mp_buf_fini(&b);
    store_fini(&s);
}

Test(k8s_attach, node_refs_for_the_watcher)
{
    expect_node_refs(SCRAPE_K8S_POD, "pod_web.json", "worker-2;");
    expect_node_refs(SCRAPE_K8S_POD, "pod_pending_no_ip.json", "worker-2;"); /* scheduled */
    expect_node_refs(SCRAPE_K8S_ENDPOINTS, "endpoints_web.json", "worker-2;");
    expect_node_refs(SCRAPE_K8S_ENDPOINTSLICE, "endpointslice_web.json", "worker-2;");
    expect_node_refs(SCRAPE_K8S_SERVICE, "service_web.json", "");
}

/* ---- ingress ---------------------------------------------------------------------------- */

#define INGRESS_TARGET(host, scheme, path)                                                         \
    (const char *const[])                                                                          \
    {                                                                                              \
        "__address__", host, M "ingress_scheme", scheme, M "ingress_host", host, M "ingress_path", \
            path, NULL                                                                             \
    }

Test(k8s_ingress, rules_paths_and_tls)
{
    struct scrape_target_group g;
    build_file(scrape_k8s_ingress_targets, "ingress_web.json", &g);
    cr_assert_str_eq(g.source, "ingress/emojivoto/web");
    expect_labels(g.group_labels,
                  (const char *const[]){
                      M "namespace", "emojivoto", M "ingress_name", "web", M "ingress_class_name",
                      "nginx", M "ingress_label_app_kubernetes_io_name", "web",
                      M "ingress_labelpresent_app_kubernetes_io_name", "true",
                      M "ingress_annotation_nginx_ingress_kubernetes_io_rewrite_target", "/",
                      M "ingress_annotationpresent_nginx_ingress_kubernetes_io_rewrite_target",
                      "true", NULL},
                  "group");
    cr_assert_eq(g.ntargets, 6);
    expect_labels(g.targets[0], INGRESS_TARGET("secure.example.com", "https", "/api"), "0");
    expect_labels(g.targets[1], INGRESS_TARGET("secure.example.com", "https", "/"), "1");
    expect_labels(g.targets[2], INGRESS_TARGET("plain.example.com", "http", "/"), "no path");
    expect_labels(g.targets[3], INGRESS_TARGET("a.wild.example.com", "https", "/"), "no http");
    expect_labels(g.targets[4], INGRESS_TARGET("*.wild.example.com", "https", "/w"), "wildcard");
    expect_labels(g.targets[5], INGRESS_TARGET("b.c.wild.example.com", "http", "/"),
                  "two labels under the wildcard");
    scrape_target_group_fini(&g);
}

Test(k8s_ingress, no_rules_no_class_no_host)
{
    struct scrape_target_group g;
    struct mp_err err = {0};
    static const char bare[] = "{\"metadata\":{\"name\":\"b\",\"namespace\":\"n\"},\"spec\":{"
                               "\"defaultBackend\":{\"service\":{\"name\":\"s\"}}}}";
    cr_assert_eq(scrape_k8s_ingress_targets(bare, sizeof bare - 1, &g, &err), 0, "%s", err.msg);
    expect_labels(g.group_labels,
                  (const char *const[]){M "namespace", "n", M "ingress_name", "b", NULL}, "bare");
    cr_assert_eq(g.ntargets, 0);
    scrape_target_group_fini(&g);

    /* a rule without host: empty __address__ and host (left out); "*" matches one label */
    static const char nohost[] =
        "{\"metadata\":{\"name\":\"h\",\"namespace\":\"n\"},\"spec\":{\"tls\":[{\"hosts\":["
        "\"*\"]}],\"rules\":[{\"http\":{\"paths\":[{\"path\":\"/x\"}]}},{\"host\":\"local\"}]}}";
    cr_assert_eq(scrape_k8s_ingress_targets(nohost, sizeof nohost - 1, &g, &err), 0, "%s", err.msg);
    cr_assert_eq(g.ntargets, 2);
    expect_labels(g.targets[0],
                  (const char *const[]){M "ingress_scheme", "https", M "ingress_path", "/x", NULL},
                  "no host");
    expect_labels(g.targets[1], INGRESS_TARGET("local", "https", "/"), "local");
    scrape_target_group_fini(&g);
}

Test(k8s_ingress, malformed)
{
    struct scrape_k8s_object *o = (void *)1;
    struct mp_err err = {0};
    static const char *const bad[][2] = {
        {"{\"metadata\":{\"name\":\"i\"},\"spec\":{\"rules\":{}}}",
         "spec.rules: expected an array"},
        {"{\"metadata\":{\"name\":\"i\"},\"spec\":{\"rules\":[{\"host\":1}]}}",
         "host: expected a string"},
        {"{\"metadata\":{\"name\":\"i\"},\"spec\":{\"rules\":[7]}}", "expected an object"},
        {"{\"metadata\":{\"name\":\"i\"},\"spec\":{\"rules\":[{\"http\":[]}]}}",
         "http: expected an object"},
        {"{\"metadata\":{\"name\":\"i\"},\"spec\":{\"rules\":[{\"http\":{\"paths\":[{\"path\":"
         "false}]}}]}}",
         "path: expected a string"},
        {"{\"metadata\":{\"name\":\"i\"},\"spec\":{\"tls\":[{\"hosts\":[\"a\",2]}]}}",
         "spec.tls[].hosts.[]: expected a string"},
        {"{\"metadata\":{\"name\":\"i\"},\"spec\":{\"tls\":[{\"hosts\":\"a\"}]}}",
         "hosts: expected an array"},
        {"{\"metadata\":{\"name\":\"i\"},\"spec\":{\"ingressClassName\":3}}",
         "ingressClassName: expected a string"},
        {"{\"metadata\":{\"name\":\"i\",\"annotations\":{\"a\":[]}}}", "expected a string"},
        {"{\"metadata\":{\"name\":\"i\"},\"spec\":\"x\"}", "spec: expected an object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mp_err_clear(&err);
        cr_assert_eq(
            scrape_k8s_object_parse(SCRAPE_K8S_INGRESS, bad[i][0], strlen(bad[i][0]), &o, &err),
            MP_EPARSE, "%s", bad[i][0]);
        cr_assert_null(o);
        cr_assert(strstr(err.msg, bad[i][1]), "%s: message %s lacks %s", bad[i][0], err.msg,
                  bad[i][1]);
    }
}

/* ---- malformed input ----------------------------------------------------------------- */

static void expect_parse_error(enum scrape_k8s_role role, const char *json, const char *needle)
{
    struct scrape_k8s_object *o = (void *)1;
    struct mp_err err = {0};
    cr_assert_eq(scrape_k8s_object_parse(role, json, strlen(json), &o, &err), MP_EPARSE, "%s",
                 json);
    cr_assert_null(o);
    cr_assert(strstr(err.msg, needle), "%s: message %s lacks %s", json, err.msg, needle);
}

Test(k8s_errors, malformed_json_and_fields)
{
    expect_parse_error(SCRAPE_K8S_POD, "", "truncated");
    expect_parse_error(SCRAPE_K8S_POD, "{\"metadata\":{\"name\":\"p\"", "truncated");
    expect_parse_error(SCRAPE_K8S_POD, "{\"metadata\":}", "byte");
    expect_parse_error(SCRAPE_K8S_POD, "{\"metadata\":{\"name\":\"p\"}} x", "after the JSON");
    expect_parse_error(SCRAPE_K8S_POD, "[1]", "not a JSON object");
    expect_parse_error(SCRAPE_K8S_POD, "{}", "metadata.name missing");
    expect_parse_error(SCRAPE_K8S_NODE, "{\"metadata\":{\"name\":\"\"}}", "metadata.name");
    expect_parse_error(SCRAPE_K8S_POD, "{\"metadata\":{\"name\":7}}",
                       "metadata.name: expected a string");
    expect_parse_error(SCRAPE_K8S_POD, "{\"metadata\":{\"name\":\"p\",\"labels\":{\"a\":1}}}",
                       "metadata.labels.a: expected a string");
    expect_parse_error(SCRAPE_K8S_POD,
                       "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":{}}}",
                       "spec.containers: expected an array");
    expect_parse_error(SCRAPE_K8S_POD,
                       "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"name\":\"c\","
                       "\"ports\":[{\"containerPort\":\"80\"}]}]}}",
                       "containerPort: expected an integer");
    expect_parse_error(SCRAPE_K8S_POD,
                       "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"name\":\"c\","
                       "\"ports\":[{\"containerPort\":4294967296}]}]}}",
                       "an int32");
    expect_parse_error(SCRAPE_K8S_ENDPOINTS,
                       "{\"metadata\":{\"name\":\"e\"},\"subsets\":[{\"addresses\":[{\"ip\":1}],"
                       "\"ports\":[{\"port\":80}]}]}",
                       "ip: expected a string");
    expect_parse_error(SCRAPE_K8S_ENDPOINTSLICE,
                       "{\"metadata\":{\"name\":\"s\"},\"endpoints\":[{\"addresses\":[\"a\"],"
                       "\"conditions\":{\"ready\":\"yes\"}}],\"ports\":[{\"port\":1}]}",
                       "ready: expected a boolean");
    expect_parse_error(SCRAPE_K8S_SERVICE,
                       "{\"metadata\":{\"name\":\"s\"},\"spec\":{\"ports\":[7]}}",
                       "expected an object");
    expect_parse_error(SCRAPE_K8S_NODE,
                       "{\"metadata\":{\"name\":\"n\"},\"status\":{\"addresses\":[{\"type\":1}]}}",
                       "type: expected a string");

    /* the one-shot forms fail the same way and leave an empty group */
    struct scrape_target_group g;
    struct mp_err err = {0};
    cr_assert_eq(scrape_k8s_pod_targets("{", 1, &g, &err), MP_EPARSE);
    cr_assert_eq(g.ntargets, 0);
    cr_assert_null(g.source);
    scrape_target_group_fini(&g);

    /* null fields read as absent, as Go's zero values */
    static const char nulls[] = "{\"metadata\":{\"name\":\"p\",\"namespace\":null,\"labels\":null},"
                                "\"spec\":null,\"status\":{\"podIP\":\"10.0.0.2\"}}";
    cr_assert_eq(scrape_k8s_pod_targets(nulls, sizeof nulls - 1, &g, &err), 0, "%s", err.msg);
    cr_assert_str_eq(g.source, "pod//p");
    cr_assert_eq(g.ntargets, 0);
    scrape_target_group_fini(&g);
}

/* Every failing allocation ends in MP_ENOMEM with nothing leaked (ASan checks the leaks). */
Test(k8s_errors, allocation_failures)
{
    struct store s;
    struct scrape_k8s_lookup lk;
    stores(&s, &lk);
    size_t len;
    char *json = load("endpoints_web.json", &len);
    int ok = 0, failed = 0;
    for (uint64_t n = 1; n < 400 && !ok; n++) {
        struct scrape_target_group g;
        mp_alloc_fail_at(n);
        int rc = scrape_k8s_endpoints_targets(json, len, &lk, &g, NULL);
        mp_alloc_fail_at(0);
        cr_assert(rc == 0 || rc == MP_ENOMEM, "n=%llu rc=%d", (unsigned long long)n, rc);
        if (rc == 0) {
            ok = 1;
            cr_assert_eq(g.ntargets, 4, "n=%llu", (unsigned long long)n);
        } else {
            failed++;
            cr_assert_eq(g.ntargets, 0);
            cr_assert_null(g.source);
        }
        scrape_target_group_fini(&g);
    }
    cr_assert(ok, "never succeeded");
    cr_assert(failed > 10, "only %d allocations could fail", failed);
    free(json);
    store_fini(&s);
}

/* Every truncated prefix of each fixture fails cleanly (ASan sees reads past the copy). */
Test(k8s_errors, truncated_prefixes)
{
    static const struct {
        enum scrape_k8s_role role;
        const char *file;
    } files[] = {{SCRAPE_K8S_POD, "pod_web.json"},
                 {SCRAPE_K8S_ENDPOINTS, "endpoints_web.json"},
                 {SCRAPE_K8S_ENDPOINTSLICE, "endpointslice_web.json"},
                 {SCRAPE_K8S_SERVICE, "service_web.json"},
                 {SCRAPE_K8S_NODE, "node_worker2.json"},
                 {SCRAPE_K8S_INGRESS, "ingress_web.json"}};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t len;
        char *json = load(files[f].file, &len);
        size_t end = len;
        while (end > 0 && strchr(" \t\r\n", json[end - 1]))
            end--;
        for (size_t n = 0; n < end; n++) {
            char *copy = malloc(n ? n : 1);
            cr_assert(copy);
            memcpy(copy, json, n);
            struct scrape_k8s_object *o;
            struct mp_err err = {0};
            cr_assert_eq(scrape_k8s_object_parse(files[f].role, copy, n, &o, &err), MP_EPARSE,
                         "%s: prefix %zu", files[f].file, n);
            cr_assert_null(o);
            free(copy);
        }
        free(json);
    }
}
