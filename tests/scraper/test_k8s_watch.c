/* SPDX-License-Identifier: Apache-2.0 */
/* tests/scraper/test_k8s_watch.c: kubernetes_sd_configs against the fake API server of
 * meshsim on 127.0.0.1: every role's groups equal what scrape_k8s_build makes of the objects
 * the fake holds; add/modify/delete; 410 after compaction -> re-list; dropped and stalled
 * watches -> reconnect; bookmarks advance the RV; namespaces and selectors in the request
 * paths; bearer token; in-cluster configuration. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/metrics.h"
#include "common/str.h"
#include "configs/config.h"
#include "meshsim/meshsim.h"
#include "scraper/scraper.h"
#include "support_httpc.h"
#include "support_kube.h"
#include "test_sd_support.h"

static struct meshsim_k8s *fake;

static void fake_start(void)
{
    fake = kt_fake_start(NULL, NULL);
}

static void fake_stop(void)
{
    meshsim_k8s_destroy(fake);
    fake = NULL;
}

TestSuite(k8s_watch, .init = fake_start, .fini = fake_stop);

static char *yaml_for(const char *role, const char *extra)
{
    char *y = NULL;
    cr_assert(asprintf(&y,
                       "scrape_configs:\n"
                       "- job_name: k\n"
                       "  kubernetes_sd_configs:\n"
                       "  - role: %s\n"
                       "    api_server: http://127.0.0.1:%u\n"
                       "%s",
                       role, (unsigned)meshsim_k8s_port(fake), extra ? extra : "") > 0);
    return y;
}

static void put(enum meshsim_k8s_kind kind, const char *ns, const char *name, const char *json)
{
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(meshsim_k8s_put(fake, kind, ns, name, json, strlen(json), NULL, &err), 0, "%s",
                 err.msg);
}

static void del(enum meshsim_k8s_kind kind, const char *ns, const char *name)
{
    cr_assert_eq(meshsim_k8s_delete(fake, kind, ns, name, NULL, NULL), 0);
}

static char *pod_json(const char *ip, const char *app)
{
    char *j = NULL;
    cr_assert(asprintf(&j,
                       "{\"metadata\":{\"labels\":{\"app\":\"%s\"}},\"spec\":{\"nodeName\":"
                       "\"n1\",\"containers\":[{\"name\":\"c\",\"ports\":[{\"containerPort\":"
                       "8080,\"name\":\"http\"}]}]},\"status\":{\"phase\":\"Running\","
                       "\"podIP\":\"%s\",\"conditions\":[{\"type\":\"Ready\",\"status\":"
                       "\"True\"}]}}",
                       app, ip) > 0);
    return j;
}

static void put_pod(const char *ns, const char *name, const char *ip, const char *app)
{
    char *j = pod_json(ip, app);
    put(MESHSIM_K8S_PODS, ns, name, j);
    free(j);
}

/* ---- expected groups from the fake's objects ------------------------------------------- */

struct ref {
    enum meshsim_k8s_kind kind;
    const char *ns, *name;
};

static struct scrape_k8s_object *fake_obj(struct ref r)
{
    static const enum scrape_k8s_role role_of[] = {
        [MESHSIM_K8S_PODS] = SCRAPE_K8S_POD,
        [MESHSIM_K8S_SERVICES] = SCRAPE_K8S_SERVICE,
        [MESHSIM_K8S_ENDPOINTS] = SCRAPE_K8S_ENDPOINTS,
        [MESHSIM_K8S_ENDPOINTSLICES] = SCRAPE_K8S_ENDPOINTSLICE,
        [MESHSIM_K8S_NODES] = SCRAPE_K8S_NODE,
        [MESHSIM_K8S_INGRESSES] = SCRAPE_K8S_INGRESS,
    };
    struct mp_buf b;
    mp_buf_init(&b, 0);
    cr_assert_eq(meshsim_k8s_get(fake, r.kind, r.ns, r.name, &b, NULL), 0, "get %s", r.name);
    struct scrape_k8s_object *o = NULL;
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(scrape_k8s_object_parse(role_of[r.kind], b.data, b.len, &o, &err), 0, "%s",
                 err.msg);
    mp_buf_fini(&b);
    return o;
}

struct deps {
    struct scrape_k8s_object *o[8];
    size_t n;
};

static const struct scrape_k8s_object *dep_find(struct deps *d, enum scrape_k8s_role role,
                                                const char *ns, const char *name)
{
    for (size_t i = 0; i < d->n; i++)
        if (scrape_k8s_object_role(d->o[i]) == role &&
            strcmp(scrape_k8s_object_namespace(d->o[i]), ns) == 0 &&
            strcmp(scrape_k8s_object_name(d->o[i]), name) == 0)
            return d->o[i];
    return NULL;
}

static const struct scrape_k8s_object *dep_pod(void *ctx, const char *ns, const char *name)
{
    return dep_find(ctx, SCRAPE_K8S_POD, ns, name);
}

static const struct scrape_k8s_object *dep_svc(void *ctx, const char *ns, const char *name)
{
    return dep_find(ctx, SCRAPE_K8S_SERVICE, ns, name);
}

static const struct scrape_k8s_object *dep_node(void *ctx, const char *name)
{
    return dep_find(ctx, SCRAPE_K8S_NODE, "", name);
}

/* The text the discovery callback should show for objs, with deps in the caches (a node in
 * deps: attach_metadata.node). */
static char *expected(const struct ref *objs, size_t n, const struct ref *dep, size_t ndep)
{
    struct deps d = {.n = 0};
    for (size_t i = 0; i < ndep; i++)
        d.o[d.n++] = fake_obj(dep[i]);
    struct scrape_k8s_lookup lk = {dep_pod, dep_svc, &d, dep_node};
    struct scrape_target_group g[16];
    size_t ng = 0;
    for (size_t i = 0; i < n; i++) {
        struct scrape_k8s_object *o = fake_obj(objs[i]);
        memset(&g[ng], 0, sizeof g[ng]);
        cr_assert_eq(scrape_k8s_build(o, &lk, &g[ng], NULL), 0);
        if (g[ng].ntargets > 0)
            ng++;
        else
            scrape_target_group_fini(&g[ng]);
        scrape_k8s_object_destroy(o);
    }
    char *t = ng ? sd_groups_text(g, ng) : NULL;
    for (size_t i = 0; i < ng; i++)
        scrape_target_group_fini(&g[i]);
    for (size_t i = 0; i < d.n; i++)
        scrape_k8s_object_destroy(d.o[i]);
    return t;
}

static bool wait_expected(struct sd_rec *r, const struct ref *objs, size_t n, const struct ref *dep,
                          size_t ndep)
{
    char *want = expected(objs, n, dep, ndep);
    bool ok = sd_rec_wait(r, "k", want);
    free(want);
    return ok;
}

/* ---- request log helpers ------------------------------------------------------------------ */

struct req_count {
    const char *path;
    int watch; /* -1 any */
    const char *query_has;
    size_t n;
    char last_query[1024];
};

static void count_cb(void *ctx, const struct meshsim_k8s_request *r)
{
    struct req_count *c = ctx;
    if (c->path && strcmp(c->path, r->path) != 0)
        return;
    if (c->watch >= 0 && (int)r->watch != c->watch)
        return;
    if (c->query_has && !strstr(r->query, c->query_has))
        return;
    c->n++;
    snprintf(c->last_query, sizeof c->last_query, "%s", r->query);
}

static size_t count_requests(const char *path, int watch, const char *query_has)
{
    struct req_count c = {.path = path, .watch = watch, .query_has = query_has};
    meshsim_k8s_requests(fake, count_cb, &c);
    return c.n;
}

struct req_wait {
    const char *path;
    int watch;
    const char *query_has;
    size_t atleast;
};

static bool req_pred(void *ctx)
{
    struct req_wait *w = ctx;
    return count_requests(w->path, w->watch, w->query_has) >= w->atleast;
}

static bool wait_requests(const char *path, int watch, const char *query_has, size_t atleast)
{
    struct req_wait w = {path, watch, query_has, atleast};
    return sd_wait_for(req_pred, &w);
}

static size_t want_watches;

static bool watches_pred(void *ctx)
{
    (void)ctx;
    return meshsim_k8s_watch_count(fake) == want_watches;
}

static bool wait_watches(size_t n)
{
    want_watches = n;
    return sd_wait_for(watches_pred, NULL);
}

/* ---- roles ---------------------------------------------------------------------------------- */

Test(k8s_watch, pod_add_modify_delete)
{
    put_pod("default", "a", "10.0.0.1", "web");
    char *y = yaml_for("pod", NULL);
    struct sd_rec *r = sd_rec_start(y, NULL);
    struct ref a = {MESHSIM_K8S_PODS, "default", "a"}, b = {MESHSIM_K8S_PODS, "ns2", "b"};
    cr_assert(wait_expected(r, &a, 1, NULL, 0));
    cr_assert(wait_watches(1));

    put_pod("ns2", "b", "10.0.0.2", "db");
    struct ref ab[] = {a, b};
    cr_assert(wait_expected(r, ab, 2, NULL, 0));
    put_pod("default", "a", "10.0.0.3", "web2");
    cr_assert(wait_expected(r, ab, 2, NULL, 0));
    del(MESHSIM_K8S_PODS, "default", "a");
    cr_assert(wait_expected(r, &b, 1, NULL, 0));
    /* the list was paged with limit=500 and started at RV 0 */
    cr_assert_eq(count_requests("/api/v1/pods", 0, "limit=500&resourceVersion=0"), 1);

    struct mp_buf page;
    mp_buf_init(&page, 0);
    cr_assert_eq(mp_metrics_render(sd_rec_metrics(r), &page), 0);
    cr_assert(
        strstr(page.data, "prometheus_sd_kubernetes_events_total{event=\"add\",role=\"pod\"} 2"),
        "%s", page.data);
    cr_assert(strstr(page.data,
                     "prometheus_sd_kubernetes_events_total{event=\"delete\",role=\"pod\"} 1"));
    cr_assert(
        strstr(page.data, "prometheus_sd_discovered_targets{config=\"k\",name=\"scrape\"} 1"));
    mp_buf_fini(&page);
    free(y);
    sd_rec_stop(r);
}

Test(k8s_watch, service_and_node_roles)
{
    put(MESHSIM_K8S_SERVICES, "default", "web",
        "{\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":{\"type\":\"ClusterIP\","
        "\"clusterIP\":\"10.96.0.10\",\"ports\":[{\"name\":\"http\",\"port\":80}]}}");
    put(MESHSIM_K8S_NODES, NULL, "n1",
        "{\"metadata\":{\"labels\":{\"zone\":\"a\"}},\"status\":{\"addresses\":[{\"type\":"
        "\"InternalIP\",\"address\":\"192.168.1.1\"}],\"daemonEndpoints\":{"
        "\"kubeletEndpoint\":{\"Port\":10250}}}}");
    char *y = NULL;
    cr_assert(asprintf(&y,
                       "scrape_configs:\n"
                       "- job_name: k\n"
                       "  kubernetes_sd_configs:\n"
                       "  - {role: service, api_server: 'http://127.0.0.1:%u'}\n"
                       "  - {role: node, api_server: 'http://127.0.0.1:%u'}\n",
                       (unsigned)meshsim_k8s_port(fake), (unsigned)meshsim_k8s_port(fake)) > 0);
    struct sd_rec *r = sd_rec_start(y, NULL);
    struct ref objs[] = {{MESHSIM_K8S_SERVICES, "default", "web"}, {MESHSIM_K8S_NODES, NULL, "n1"}};
    cr_assert(wait_expected(r, objs, 2, NULL, 0));
    put(MESHSIM_K8S_SERVICES, "default", "web",
        "{\"spec\":{\"type\":\"ClusterIP\",\"clusterIP\":\"10.96.0.10\",\"ports\":[{\"name\":"
        "\"http\",\"port\":8080}]}}");
    cr_assert(wait_expected(r, objs, 2, NULL, 0));
    free(y);
    sd_rec_stop(r);
}

static const char *svc_json = "{\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":{\"type\":"
                              "\"ClusterIP\",\"clusterIP\":\"10.96.0.10\",\"ports\":[{\"name\":"
                              "\"http\",\"port\":80}]}}";

static const struct ref dep_refs[] = {{MESHSIM_K8S_PODS, "default", "a"},
                                      {MESHSIM_K8S_SERVICES, "default", "web"}};

/* Puts a service, a pod and obj (of role), starts discovery, and checks that obj's group
 * follows changes of the pod and of the service. Returns the running recorder. */
static struct sd_rec *dependents_case(const char *role, struct ref obj, const char *json,
                                      const char *list_path)
{
    put(MESHSIM_K8S_SERVICES, "default", "web", svc_json);
    put_pod("default", "a", "10.0.0.1", "web");
    put(obj.kind, obj.ns, obj.name, json);
    char *y = yaml_for(role, NULL);
    struct sd_rec *r = sd_rec_start(y, NULL);
    free(y);
    cr_assert(wait_expected(r, &obj, 1, dep_refs, 2));
    cr_assert(wait_watches(3), "the role's objects, services and pods are watched");
    cr_assert_eq(count_requests(list_path, 0, NULL), 1);
    put_pod("default", "a", "10.0.0.1", "web-v2"); /* pod labels change */
    cr_assert(wait_expected(r, &obj, 1, dep_refs, 2));
    put(MESHSIM_K8S_SERVICES, "default", "web",
        "{\"metadata\":{\"labels\":{\"app\":\"other\"}},\"spec\":{\"type\":\"ClusterIP\"}}");
    cr_assert(wait_expected(r, &obj, 1, dep_refs, 2));
    return r;
}

Test(k8s_watch, endpoints_rebuilt_when_pod_or_service_changes)
{
    struct ref ep = {MESHSIM_K8S_ENDPOINTS, "default", "web"};
    struct sd_rec *r = dependents_case(
        "endpoints", ep,
        "{\"subsets\":[{\"addresses\":[{\"ip\":\"10.0.0.1\",\"nodeName\":\"n1\",\"targetRef\":"
        "{\"kind\":\"Pod\",\"name\":\"a\",\"namespace\":\"default\"}}],\"ports\":[{\"name\":"
        "\"http\",\"port\":8080}]}]}",
        "/api/v1/endpoints");
    del(MESHSIM_K8S_SERVICES, "default", "web");
    cr_assert(wait_expected(r, &ep, 1, dep_refs, 1));
    /* the endpoints now point at pod b: changes of b (not a) rebuild the group */
    put_pod("default", "b", "10.0.0.2", "b-v1");
    put(MESHSIM_K8S_ENDPOINTS, "default", "web",
        "{\"subsets\":[{\"addresses\":[{\"ip\":\"10.0.0.2\",\"targetRef\":{\"kind\":"
        "\"Pod\",\"name\":\"b\",\"namespace\":\"default\"}}],\"ports\":[{\"port\":80}]}]}");
    struct ref deps_b[] = {{MESHSIM_K8S_PODS, "default", "b"}};
    cr_assert(wait_expected(r, &ep, 1, deps_b, 1));
    put_pod("default", "b", "10.0.0.2", "b-v2");
    cr_assert(wait_expected(r, &ep, 1, deps_b, 1));
    del(MESHSIM_K8S_PODS, "default", "b");
    cr_assert(wait_expected(r, &ep, 1, NULL, 0));
    sd_rec_stop(r);
}

Test(k8s_watch, endpointslice_role)
{
    struct ref es = {MESHSIM_K8S_ENDPOINTSLICES, "default", "web-abc"};
    struct sd_rec *r = dependents_case(
        "endpointslice", es,
        "{\"metadata\":{\"labels\":{\"kubernetes.io/service-name\":\"web\"}},\"addressType\":"
        "\"IPv4\",\"endpoints\":[{\"addresses\":[\"10.0.0.1\"],\"conditions\":{\"ready\":true},"
        "\"targetRef\":{\"kind\":\"Pod\",\"name\":\"a\",\"namespace\":\"default\"}}],"
        "\"ports\":[{\"name\":\"http\",\"port\":8080}]}",
        "/apis/discovery.k8s.io/v1/endpointslices");
    del(MESHSIM_K8S_ENDPOINTSLICES, "default", "web-abc");
    cr_assert(sd_rec_wait(r, "k", NULL));
    sd_rec_stop(r);
}

/* ---- attach_metadata.node ------------------------------------------------------------------- */

static void put_node(const char *name, const char *zone)
{
    char *j = NULL;
    cr_assert(asprintf(&j,
                       "{\"metadata\":{\"labels\":{\"zone\":\"%s\"},\"annotations\":{\"a/b\":"
                       "\"c\"}},\"spec\":{\"providerID\":\"p://%s\"},\"status\":{\"addresses\":"
                       "[{\"type\":\"InternalIP\",\"address\":\"192.168.1.1\"}]}}",
                       zone, name) > 0);
    put(MESHSIM_K8S_NODES, NULL, name, j);
    free(j);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* obj (of role, with pod default/a and node n1 cached) follows node n1: a label change and
 * the node's deletion rebuild the group through the node watch, without any re-list. The
 * time from the node change to the group is printed (no threshold in a unit test). */
static void attach_case(const char *role, struct ref obj, const char *json, size_t watches)
{
    put_node("n1", "a");
    put_pod("default", "a", "10.0.0.1", "web");
    if (obj.kind != MESHSIM_K8S_PODS)
        put(obj.kind, obj.ns, obj.name, json);
    char *y = yaml_for(role, "    attach_metadata: {node: true}\n");
    struct sd_rec *r = sd_rec_start(y, NULL);
    free(y);
    struct ref deps[] = {{MESHSIM_K8S_NODES, NULL, "n1"}, {MESHSIM_K8S_PODS, "default", "a"}};
    cr_assert(wait_expected(r, &obj, 1, deps, 2), "%s: node labels attached", role);
    cr_assert(wait_watches(watches), "%s: the node watch is open too", role);
    cr_assert_eq(count_requests("/api/v1/nodes", 0, NULL), 1, "one cluster-wide node list");
    size_t lists = count_requests(NULL, 0, NULL);

    int64_t t0 = now_ms();
    put_node("n1", "b");
    cr_assert(wait_expected(r, &obj, 1, deps, 2), "%s: node label change re-emitted", role);
    fprintf(stderr, "%s: group with the new node label after %lld ms\n", role,
            (long long)(now_ms() - t0));
    del(MESHSIM_K8S_NODES, NULL, "n1");
    cr_assert(wait_expected(r, &obj, 1, &deps[1], 1), "%s: node deletion drops its labels", role);
    put_node("n1", "c");
    cr_assert(wait_expected(r, &obj, 1, deps, 2), "%s: node added again", role);
    cr_assert_eq(count_requests(NULL, 0, NULL), lists, "%s: no re-list", role);
    sd_rec_stop(r);
}

Test(k8s_watch, attach_metadata_node_pod)
{
    attach_case("pod", (struct ref){MESHSIM_K8S_PODS, "default", "a"}, NULL, 2);
}

Test(k8s_watch, attach_metadata_node_endpoints)
{
    attach_case("endpoints", (struct ref){MESHSIM_K8S_ENDPOINTS, "default", "web"},
                "{\"subsets\":[{\"addresses\":[{\"ip\":\"10.0.0.1\",\"nodeName\":\"n1\","
                "\"targetRef\":{\"kind\":\"Pod\",\"name\":\"a\",\"namespace\":\"default\"}}],"
                "\"ports\":[{\"name\":\"http\",\"port\":8080}]}]}",
                4);
}

Test(k8s_watch, attach_metadata_node_endpointslice)
{
    attach_case("endpointslice", (struct ref){MESHSIM_K8S_ENDPOINTSLICES, "default", "web-abc"},
                "{\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"10.0.0.1\"],"
                "\"nodeName\":\"n1\",\"targetRef\":{\"kind\":\"Pod\",\"name\":\"a\","
                "\"namespace\":\"default\"}}],\"ports\":[{\"name\":\"http\",\"port\":8080}]}",
                4);
}

/* Other roles ignore attach_metadata, as Prometheus does: no node watch. */
Test(k8s_watch, attach_metadata_ignored_for_service)
{
    put(MESHSIM_K8S_SERVICES, "default", "web", svc_json);
    char *y = yaml_for("service", "    attach_metadata: {node: true}\n");
    struct sd_rec *r = sd_rec_start(y, NULL);
    free(y);
    struct ref svc = {MESHSIM_K8S_SERVICES, "default", "web"};
    cr_assert(wait_expected(r, &svc, 1, NULL, 0));
    cr_assert(wait_watches(1));
    cr_assert_eq(count_requests("/api/v1/nodes", -1, NULL), 0);
    sd_rec_stop(r);
}

/* ---- ingress ------------------------------------------------------------------------------- */

Test(k8s_watch, ingress_role)
{
    put(MESHSIM_K8S_INGRESSES, "web", "site",
        "{\"spec\":{\"tls\":[{\"hosts\":[\"*.example.com\"]}],\"rules\":[{\"host\":"
        "\"www.example.com\",\"http\":{\"paths\":[{\"path\":\"/\"},{\"path\":\"/api\"}]}}]}}");
    put(MESHSIM_K8S_INGRESSES, "other", "skip", "{\"spec\":{\"rules\":[{\"host\":\"x\"}]}}");
    char *y = yaml_for("ingress", "    namespaces: {names: [web]}\n"
                                  "    selectors: [{role: ingress, label: 'app!=none'}]\n");
    struct sd_rec *r = sd_rec_start(y, NULL);
    free(y);
    struct ref site = {MESHSIM_K8S_INGRESSES, "web", "site"};
    cr_assert(wait_expected(r, &site, 1, NULL, 0));
    cr_assert(wait_watches(1));
    cr_assert_eq(count_requests("/apis/networking.k8s.io/v1/namespaces/web/ingresses", 0,
                                "labelSelector=app!=none"),
                 1);
    put(MESHSIM_K8S_INGRESSES, "web", "site",
        "{\"metadata\":{\"labels\":{\"app\":\"site\"}},\"spec\":{\"ingressClassName\":\"nginx\","
        "\"rules\":[{\"host\":\"www.example.com\"},{\"host\":\"b.example.com\"}]}}");
    cr_assert(wait_expected(r, &site, 1, NULL, 0));
    char *text = sd_rec_text(r, "k");
    cr_assert(text && strstr(text, "__meta_kubernetes_ingress_class_name=\"nginx\""), "%s",
              text ? text : "(none)");
    free(text);
    del(MESHSIM_K8S_INGRESSES, "web", "site");
    cr_assert(sd_rec_wait(r, "k", NULL));
    sd_rec_stop(r);
}

/* Pod default/a in the fake, discovery synced on it with its watch open. */
static struct sd_rec *start_pod_a(void)
{
    put_pod("default", "a", "10.0.0.1", "web");
    char *y = yaml_for("pod", NULL);
    struct sd_rec *r = sd_rec_start(y, NULL);
    free(y);
    struct ref a = {MESHSIM_K8S_PODS, "default", "a"};
    cr_assert(wait_expected(r, &a, 1, NULL, 0));
    cr_assert(wait_watches(1));
    return r;
}

/* ---- recovery ------------------------------------------------------------------------------- */

Test(k8s_watch, gone_after_compaction_relists)
{
    struct ref b = {MESHSIM_K8S_PODS, "default", "b"};
    struct sd_rec *r = start_pod_a();
    /* changes the client does not see, then history is dropped */
    uint64_t seen = meshsim_k8s_revision(fake);
    meshsim_k8s_stall_watches(fake, true);
    put_pod("default", "b", "10.0.0.2", "db");
    del(MESHSIM_K8S_PODS, "default", "a");
    meshsim_k8s_compact(fake);
    meshsim_k8s_drop_watches(fake, false);
    meshsim_k8s_stall_watches(fake, false);
    cr_assert(wait_expected(r, &b, 1, NULL, 0));
    char q[64];
    snprintf(q, sizeof q, "limit=500&resourceVersion=%" PRIu64, seen);
    cr_assert_eq(count_requests("/api/v1/pods", 0, q), 1, "one re-list from the last RV");
    cr_assert_eq(count_requests("/api/v1/pods", 0, NULL), 2);
    sd_rec_stop(r);
}

Test(k8s_watch, dropped_watch_reconnects)
{
    struct ref a = {MESHSIM_K8S_PODS, "default", "a"}, b = {MESHSIM_K8S_PODS, "default", "b"};
    struct sd_rec *r = start_pod_a();
    size_t watches = count_requests("/api/v1/pods", 1, NULL);
    meshsim_k8s_drop_watches(fake, false);
    cr_assert(wait_requests("/api/v1/pods", 1, NULL, watches + 1));
    cr_assert(wait_watches(1));
    put_pod("default", "b", "10.0.0.2", "db");
    struct ref ab[] = {a, b};
    cr_assert(wait_expected(r, ab, 2, NULL, 0));
    /* a clean end resumes from the last RV without a re-list */
    size_t lists = count_requests("/api/v1/pods", 0, NULL);
    watches = count_requests("/api/v1/pods", 1, NULL);
    meshsim_k8s_drop_watches(fake, true);
    cr_assert(wait_requests("/api/v1/pods", 1, NULL, watches + 1));
    char rv[64];
    snprintf(rv, sizeof rv, "resourceVersion=%" PRIu64, meshsim_k8s_revision(fake));
    cr_assert(wait_requests("/api/v1/pods", 1, rv, 1));
    cr_assert_eq(count_requests("/api/v1/pods", 0, NULL), lists);
    sd_rec_stop(r);
}

Test(k8s_watch, stalled_watch_reconnects)
{
    struct ref a = {MESHSIM_K8S_PODS, "default", "a"}, b = {MESHSIM_K8S_PODS, "default", "b"};
    struct sd_rec *r = start_pod_a();
    size_t watches = count_requests("/api/v1/pods", 1, NULL);
    meshsim_k8s_stall_watches(fake, true);
    put_pod("default", "b", "10.0.0.2", "db");
    /* no byte for 1 s: the client gives up on the watch and opens another */
    cr_assert(wait_requests("/api/v1/pods", 1, NULL, watches + 1));
    meshsim_k8s_stall_watches(fake, false);
    struct ref ab[] = {a, b};
    cr_assert(wait_expected(r, ab, 2, NULL, 0));
    sd_rec_stop(r);
}

Test(k8s_watch, bookmark_advances_resource_version)
{
    struct sd_rec *r = start_pod_a();
    /* other kinds move the global revision; only a bookmark tells the pod watcher */
    put(MESHSIM_K8S_SERVICES, "default", "s1", svc_json);
    put(MESHSIM_K8S_SERVICES, "default", "s2", svc_json);
    uint64_t rev = meshsim_k8s_revision(fake);
    char rv[64];
    snprintf(rv, sizeof rv, "resourceVersion=%" PRIu64 "&", rev);
    /* a clean end drops what the fake still had queued, so retry until one got through */
    bool resumed = false;
    for (int i = 0; i < 50 && !resumed; i++) {
        meshsim_k8s_bookmark(fake);
        sd_sleep_ms(20);
        size_t watches = count_requests("/api/v1/pods", 1, NULL);
        meshsim_k8s_drop_watches(fake, true);
        cr_assert(wait_requests("/api/v1/pods", 1, NULL, watches + 1));
        resumed = count_requests("/api/v1/pods", 1, rv) > 0;
    }
    cr_assert(resumed, "the re-watch starts at the bookmark's RV");
    cr_assert(wait_requests("/api/v1/pods", 1, "allowWatchBookmarks=true", 1));
    sd_rec_stop(r);
}

Test(k8s_watch, events_split_across_chunks)
{
    fake_stop();
    struct meshsim_k8s_opts o;
    meshsim_k8s_opts_init(&o);
    o.bookmark_interval_ms = 200;
    o.split_writes = true;
    cr_assert_eq(meshsim_k8s_create("127.0.0.1:0", &o, &fake, NULL), 0);
    struct sd_rec *r = start_pod_a();
    struct ref refs[8];
    char names[8][8];
    for (int i = 0; i < 8; i++) {
        snprintf(names[i], sizeof names[i], "s%d", i);
        char ip[16];
        snprintf(ip, sizeof ip, "10.0.1.%d", i + 1);
        put_pod("default", names[i], ip, "web");
        refs[i] = (struct ref){MESHSIM_K8S_PODS, "default", names[i]};
    }
    struct ref all[9] = {{MESHSIM_K8S_PODS, "default", "a"}};
    memcpy(all + 1, refs, sizeof refs);
    cr_assert(wait_expected(r, all, 9, NULL, 0));
    cr_assert_eq(count_requests("/api/v1/pods", 0, NULL), 1, "no re-list: the stream decoded");
    sd_rec_stop(r);
}

Test(k8s_watch, http_errors_back_off_and_recover)
{
    put_pod("default", "a", "10.0.0.1", "web");
    meshsim_k8s_fail_requests(fake, 500, 2);
    char *y = yaml_for("pod", NULL);
    struct sd_rec *r = sd_rec_start(y, NULL);
    struct ref a = {MESHSIM_K8S_PODS, "default", "a"};
    cr_assert(wait_expected(r, &a, 1, NULL, 0));
    cr_assert_geq(count_requests("/api/v1/pods", 0, NULL), 3);
    free(y);
    sd_rec_stop(r);
}

/* ---- request shape -------------------------------------------------------------------------- */

Test(k8s_watch, namespaces_and_selectors)
{
    put_pod("a", "p1", "10.0.0.1", "web");
    put_pod("a", "p2", "10.0.0.2", "db");
    put_pod("b", "p3", "10.0.0.3", "web");
    put_pod("c", "p4", "10.0.0.4", "web");
    char *y = yaml_for("pod", "    namespaces: {names: [a, b]}\n"
                              "    selectors:\n"
                              "    - role: pod\n"
                              "      label: app=web\n"
                              "      field: spec.nodeName=n1\n");
    struct sd_rec *r = sd_rec_start(y, NULL);
    struct ref want[] = {{MESHSIM_K8S_PODS, "a", "p1"}, {MESHSIM_K8S_PODS, "b", "p3"}};
    cr_assert(wait_expected(r, want, 2, NULL, 0));
    cr_assert(wait_watches(2));
    const char *q = "fieldSelector=spec.nodeName=n1&labelSelector=app=web&limit=500&"
                    "resourceVersion=0";
    cr_assert_eq(count_requests("/api/v1/namespaces/a/pods", 0, q), 1);
    cr_assert_eq(count_requests("/api/v1/namespaces/b/pods", 0, q), 1);
    cr_assert_eq(count_requests("/api/v1/pods", -1, NULL), 0);
    cr_assert(wait_requests("/api/v1/namespaces/a/pods", 1,
                            "fieldSelector=spec.nodeName=n1&labelSelector=app=web", 1));
    /* a pod moving into the selection appears, out of it disappears */
    put_pod("a", "p2", "10.0.0.2", "web");
    struct ref want3[] = {want[0], {MESHSIM_K8S_PODS, "a", "p2"}, want[1]};
    cr_assert(wait_expected(r, want3, 3, NULL, 0));
    put_pod("b", "p3", "10.0.0.3", "none");
    struct ref want2[] = {want[0], {MESHSIM_K8S_PODS, "a", "p2"}};
    cr_assert(wait_expected(r, want2, 2, NULL, 0));
    free(y);
    sd_rec_stop(r);
}

static char tmpdir[64];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

static void write_tmp(const char *name, const char *content)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(content, f);
    fclose(f);
}

Test(k8s_watch, bearer_token_from_file)
{
    strcpy(tmpdir, "/tmp/k8stokXXXXXX");
    cr_assert(mkdtemp(tmpdir));
    write_tmp("token", "s3cret\n");
    meshsim_k8s_set_token(fake, "s3cret");
    put_pod("default", "a", "10.0.0.1", "web");
    char extra[512];
    snprintf(extra, sizeof extra, "    authorization:\n      credentials_file: %s/token\n", tmpdir);
    char *y = yaml_for("pod", extra);
    struct sd_rec *r = sd_rec_start(y, NULL);
    struct ref a = {MESHSIM_K8S_PODS, "default", "a"};
    cr_assert(wait_expected(r, &a, 1, NULL, 0));
    cr_assert(wait_requests("/api/v1/pods", 0, NULL, 1));
    cr_assert_eq(count_requests(NULL, -1, NULL), count_requests("/api/v1/pods", -1, NULL));
    free(y);
    sd_rec_stop(r);

    /* without the token nothing is discovered and the server answers 401 */
    meshsim_k8s_requests_clear(fake);
    y = yaml_for("pod", NULL);
    r = sd_rec_start(y, NULL);
    cr_assert(wait_requests("/api/v1/pods", 0, NULL, 2), "LIST retried after 401");
    char *t = sd_rec_text(r, "k");
    cr_assert(t == NULL || t[0] == '\0', "%s", t);
    free(t);
    free(y);
    sd_rec_stop(r);
    nftw(tmpdir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

Test(k8s_watch, in_cluster_needs_environment_and_token)
{
    strcpy(tmpdir, "/tmp/k8ssaXXXXXX");
    cr_assert(mkdtemp(tmpdir));
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    struct sd_rec *r = sd_rec_start(NULL, tmpdir);
    const char *y = "scrape_configs:\n- job_name: k\n  kubernetes_sd_configs: [{role: pod}]\n";
    struct mp_err err;
    mp_err_clear(&err);
    /* apply reports the provider that cannot start */
    struct cfg_config *cfg = NULL;
    cr_assert_eq(cfg_config_load_buf("t.yml", y, strlen(y), &cfg, &err), 0, "%s", err.msg);
    cr_assert_eq(scrape_discovery_apply(sd_rec_discovery(r), cfg, &err), MP_EINVAL);
    cr_assert(strstr(err.msg, "KUBERNETES_SERVICE_HOST"), "%s", err.msg);
    sd_rec_stop(r);
    cfg_config_destroy(cfg);
    nftw(tmpdir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static size_t lines_of(struct sd_rec *r)
{
    char *t = sd_rec_text(r, "k");
    size_t n = 0;
    for (const char *p = t; p && *p; p++)
        n += *p == '\n';
    free(t);
    return n;
}

struct lines_wait {
    struct sd_rec *r;
    size_t want;
};

static bool lines_pred(void *ctx)
{
    struct lines_wait *w = ctx;
    return lines_of(w->r) == w->want;
}

static bool wait_lines(struct sd_rec *r, size_t want)
{
    struct lines_wait w = {r, want};
    return sd_wait_for(lines_pred, &w);
}

Test(k8s_watch, relist_pages_with_continue)
{
    char name[32], ip[32];
    for (int i = 0; i < 600; i++) {
        snprintf(name, sizeof name, "p%03d", i);
        snprintf(ip, sizeof ip, "10.1.%d.%d", i / 250, i % 250 + 1);
        put_pod("default", name, ip, "web");
    }
    char *y = yaml_for("pod", NULL);
    struct sd_rec *r = sd_rec_start(y, NULL);
    cr_assert(wait_lines(r, 600));
    cr_assert(wait_watches(1));
    cr_assert_eq(count_requests("/api/v1/pods", 0, "continue="), 0,
                 "resourceVersion=0 is served unpaginated");
    meshsim_k8s_stall_watches(fake, true);
    del(MESHSIM_K8S_PODS, "default", "p000");
    meshsim_k8s_compact(fake);
    meshsim_k8s_drop_watches(fake, false);
    meshsim_k8s_stall_watches(fake, false);
    cr_assert(wait_lines(r, 599));
    cr_assert(wait_requests("/api/v1/pods", 0, "continue=", 1), "the re-list is paged");
    free(y);
    sd_rec_stop(r);
}

Test(k8s_watch, rotated_token_file_is_reread)
{
    strcpy(tmpdir, "/tmp/k8srotXXXXXX");
    cr_assert(mkdtemp(tmpdir));
    write_tmp("token", "one");
    meshsim_k8s_set_token(fake, "one");
    put_pod("default", "a", "10.0.0.1", "web");
    char extra[512];
    snprintf(extra, sizeof extra, "    bearer_token_file: %s/token\n", tmpdir);
    char *y = yaml_for("pod", extra);
    struct sd_rec *r = sd_rec_start(y, NULL);
    struct ref a = {MESHSIM_K8S_PODS, "default", "a"}, b = {MESHSIM_K8S_PODS, "default", "b"};
    cr_assert(wait_expected(r, &a, 1, NULL, 0));
    cr_assert(wait_watches(1));
    write_tmp("token", "two");
    meshsim_k8s_set_token(fake, "two");
    meshsim_k8s_drop_watches(fake, false);
    cr_assert(wait_requests("/api/v1/pods", 1, NULL, 2));
    cr_assert(wait_watches(1));
    put_pod("default", "b", "10.0.0.2", "db");
    struct ref ab[] = {a, b};
    cr_assert(wait_expected(r, ab, 2, NULL, 0));
    free(y);
    sd_rec_stop(r);
    nftw(tmpdir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

struct auth_seen {
    char value[256];
};

static void auth_cb(void *ctx, const struct meshsim_k8s_request *r)
{
    struct auth_seen *a = ctx;
    snprintf(a->value, sizeof a->value, "%s", r->authorization);
}

Test(k8s_watch, basic_auth_header)
{
    put_pod("default", "a", "10.0.0.1", "web");
    char *y = yaml_for("pod", "    basic_auth: {username: user, password: pass}\n");
    struct sd_rec *r = sd_rec_start(y, NULL);
    struct ref a = {MESHSIM_K8S_PODS, "default", "a"};
    cr_assert(wait_expected(r, &a, 1, NULL, 0));
    struct auth_seen s = {""};
    meshsim_k8s_requests(fake, auth_cb, &s);
    cr_assert_str_eq(s.value, "Basic dXNlcjpwYXNz");
    free(y);
    sd_rec_stop(r);
}

Test(k8s_watch, own_namespace_from_service_account_dir)
{
    strcpy(tmpdir, "/tmp/k8snsXXXXXX");
    cr_assert(mkdtemp(tmpdir));
    write_tmp("namespace", "mine\n");
    put_pod("mine", "a", "10.0.0.1", "web");
    put_pod("other", "b", "10.0.0.2", "web");
    char *y = yaml_for("pod", "    namespaces: {own_namespace: true, names: [extra]}\n");
    struct sd_rec *r = sd_rec_start(y, tmpdir);
    struct ref a = {MESHSIM_K8S_PODS, "mine", "a"};
    cr_assert(wait_expected(r, &a, 1, NULL, 0));
    cr_assert(wait_requests("/api/v1/namespaces/mine/pods", 0, NULL, 1));
    cr_assert(wait_requests("/api/v1/namespaces/extra/pods", 0, NULL, 1));
    free(y);
    sd_rec_stop(r);
    nftw(tmpdir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* Replaces the plain fake with one serving HTTPS with the test certificate. */
static void fake_restart_tls(void)
{
    fake_stop();
    fake = kt_fake_start("k8s_tls", NULL);
}

Test(k8s_watch, in_cluster_over_tls)
{
    fake_restart_tls();
    meshsim_k8s_set_token(fake, "sa-token");
    put_pod("default", "a", "10.0.0.1", "web");

    strcpy(tmpdir, "/tmp/k8sicXXXXXX");
    cr_assert(mkdtemp(tmpdir));
    write_tmp("token", "sa-token\n");
    char *ca = ht_slurp(ht_testdata("k8s_tls", "ca.crt"));
    write_tmp("ca.crt", ca);
    free(ca);
    char port[16];
    snprintf(port, sizeof port, "%u", (unsigned)meshsim_k8s_port(fake));
    setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", port, 1);
    struct sd_rec *r = sd_rec_start("scrape_configs:\n"
                                    "- job_name: k\n"
                                    "  kubernetes_sd_configs: [{role: pod}]\n",
                                    tmpdir);
    struct ref a = {MESHSIM_K8S_PODS, "default", "a"};
    cr_assert(wait_expected(r, &a, 1, NULL, 0));
    cr_assert(wait_watches(1));
    struct auth_seen s = {""};
    meshsim_k8s_requests(fake, auth_cb, &s);
    cr_assert_str_eq(s.value, "Bearer sa-token");
    sd_rec_stop(r);
    nftw(tmpdir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static bool tls_case(const char *server_name)
{
    fake_restart_tls();
    put_pod("default", "a", "10.0.0.1", "web");
    char extra[1024];
    snprintf(extra, sizeof extra,
             "    tls_config: {ca_file: '%s/k8s_tls/ca.crt', server_name: %s}\n", MP_TESTDATA_DIR,
             server_name);
    char *y = NULL;
    cr_assert(asprintf(&y,
                       "scrape_configs:\n"
                       "- job_name: k\n"
                       "  kubernetes_sd_configs:\n"
                       "  - role: pod\n"
                       "    api_server: https://127.0.0.1:%u\n"
                       "%s",
                       (unsigned)meshsim_k8s_port(fake), extra) > 0);
    struct sd_rec *r = sd_rec_start(y, NULL);
    free(y);
    bool ok = false;
    if (strcmp(server_name, "localhost") == 0) {
        struct ref a = {MESHSIM_K8S_PODS, "default", "a"};
        ok = wait_expected(r, &a, 1, NULL, 0);
    } else {
        /* the certificate does not name it: the handshake fails, nothing is discovered */
        sd_sleep_ms(300);
        char *t = sd_rec_text(r, "k");
        ok = (t == NULL || t[0] == '\0') && count_requests(NULL, -1, NULL) == 0;
        free(t);
    }
    sd_rec_stop(r);
    return ok;
}

Test(k8s_watch, tls_server_name_is_verified)
{
    cr_assert(tls_case("localhost"));
}

Test(k8s_watch, tls_wrong_server_name_fails)
{
    cr_assert(tls_case("wrong.example"));
}

Test(k8s_watch, set_based_label_selector)
{
    put_pod("default", "web", "10.0.0.1", "web");
    put_pod("default", "db", "10.0.0.2", "db");
    put_pod("default", "other", "10.0.0.3", "other");
    put(MESHSIM_K8S_PODS, "default", "canary",
        "{\"metadata\":{\"labels\":{\"app\":\"web\",\"canary\":\"1\"}},\"status\":{\"podIP\":"
        "\"10.0.0.4\"}}");
    char *y = yaml_for("pod", "    selectors:\n"
                              "    - role: pod\n"
                              "      label: 'app in (web, db),!canary'\n"
                              "      field: 'status.phase!=Failed'\n");
    struct sd_rec *r = sd_rec_start(y, NULL);
    struct ref want[] = {{MESHSIM_K8S_PODS, "default", "db"}, {MESHSIM_K8S_PODS, "default", "web"}};
    cr_assert(wait_expected(r, want, 2, NULL, 0));
    cr_assert_eq(count_requests("/api/v1/pods", 0, "labelSelector=app in (web, db),!canary"), 1);
    free(y);
    sd_rec_stop(r);
}

Test(k8s_watch, throttled_watch_retries_without_relist)
{
    struct ref a = {MESHSIM_K8S_PODS, "default", "a"}, b = {MESHSIM_K8S_PODS, "default", "b"},
               c = {MESHSIM_K8S_PODS, "default", "c"};
    struct sd_rec *r = start_pod_a();
    put_pod("default", "b", "10.0.0.2", "db"); /* the watch has seen an event */
    struct ref ab[] = {a, b};
    cr_assert(wait_expected(r, ab, 2, NULL, 0));
    meshsim_k8s_fail_requests(fake, 429, 2);
    meshsim_k8s_drop_watches(fake, false);
    cr_assert(wait_requests("/api/v1/pods", 1, NULL, 4), "two throttled watches, then one more");
    cr_assert(wait_watches(1));
    put_pod("default", "c", "10.0.0.3", "db");
    struct ref abc[] = {a, b, c};
    cr_assert(wait_expected(r, abc, 3, NULL, 0));
    cr_assert_eq(count_requests("/api/v1/pods", 0, NULL), 1, "429 re-watches from the last RV");
    sd_rec_stop(r);
}
