/* SPDX-License-Identifier: Apache-2.0 */
/* meshsim/publish.c: the simulator's objects in the fake Kubernetes API (k8s_fake.c).
 *
 * Pods look like kubernetes-sd.md 3.1 (a 2.19-era injected pod: linkerd.io labels and
 * annotations, linkerd-init, the linkerd-proxy container with ports linkerd-proxy 4143 and
 * linkerd-admin <proxy port>, ownerReferences to the ReplicaSet, podIP = the pod's loopback
 * IP). Pods that exist at start are published Running and Ready. A pod created later walks
 * the lifecycle of 4.5 in model time, one MODIFIED event per step:
 *
 *   ADDED Pending --+1 s--> scheduled --+1 s--> IP assigned --+2 s--> Running, Ready=False
 *        --+4 s--> Ready=True
 *   replaced: MODIFIED deletionTimestamp (Ready=False) --grace 5 s--> DELETED
 *
 * Each deployment with a Service also has its Endpoints and one EndpointSlice, rewritten
 * whenever a pod of it gets or loses its IP or readiness. Nodes worker-0.. carry the pods
 * (10 per node). */
#include "meshsim/server.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/log.h"

enum pstate_k8s { K_PENDING, K_SCHEDULED, K_IP, K_RUNNING, K_READY, K_TERMINATING };
/* model ms after ADDED at which each later state is reached */
static const int64_t step_ms[K_READY + 1] = {0, 1000, 2000, 4000, 8000};
#define GRACE_MS 5000
#define PODS_PER_NODE 10

struct kpod {
    uint64_t uid;
    size_t dep, index; /* pod index in the simulator */
    char name[64], ip[16], node[40], host_ip[48], hash[16];
    int64_t created_ms; /* wall */
    int64_t t0;         /* model elapsed when ADDED (or terminating) */
    int state;
};

struct meshsim_publish {
    struct meshsim *m;
    struct meshsim_k8s *k;
    uint16_t port;
    char url[64];
    struct kpod *pods;
    size_t n, cap;
    uint64_t *uid_at; /* uid of the live pod per simulator index */
    size_t npods;
    bool *dirty; /* per deployment: Endpoints need a rewrite */
    size_t ndeps;
    struct mp_buf js;
    uint64_t errors;
};

/* ---- JSON bits --------------------------------------------------------------------------- */

static void rfc3339(char *buf, size_t n, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static uint64_t mix(uint64_t z)
{
    z += UINT64_C(0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static void uuid(char *buf, size_t n, uint64_t key)
{
    uint64_t a = mix(key), b = mix(a);
    snprintf(buf, n, "%08x-%04x-4%03x-8%03x-%012" PRIx64, (unsigned)(a >> 32),
             (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xfff, (unsigned)(b >> 52) & 0xfff,
             b & UINT64_C(0xffffffffffff));
}

static void hex64(char *buf, uint64_t key) /* 64 hex digits */
{
    for (int i = 0; i < 4; i++)
        snprintf(buf + 16 * i, 17, "%016" PRIx64, mix(key + (uint64_t)i));
}

#define J(...)                                                                                     \
    do {                                                                                           \
        if (rc == 0)                                                                               \
            rc = mp_buf_appendf(b, __VA_ARGS__);                                                   \
    } while (0)

static const char *cond(bool v)
{
    return v ? "True" : "False";
}

static int pod_json(struct meshsim_publish *pb, const struct kpod *kp, int64_t now_ms)
{
    struct mp_buf *b = &pb->js;
    int rc = 0;
    struct meshsim_deploy_info d;
    meshsim_deploy_get(pb->m, kp->dep, &d);
    char uid[40], rs_uid[40], created[32], now[32], start[32], trust[72];
    uuid(uid, sizeof uid, kp->uid * 2 + 1);
    uuid(rs_uid, sizeof rs_uid, mix(kp->hash[0] * 131u + kp->hash[1]) + kp->dep);
    hex64(trust, 7);
    rfc3339(created, sizeof created, kp->created_ms);
    rfc3339(start, sizeof start, kp->created_ms + 1000);
    rfc3339(now, sizeof now, now_ms);
    bool sched = kp->state >= K_SCHEDULED, ip = kp->state >= K_IP, running = kp->state >= K_RUNNING,
         term = kp->state == K_TERMINATING, ready = kp->state == K_READY;
    mp_buf_reset(b);
    J("{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"%s\",", kp->name);
    J("\"generateName\":\"%s-%s-\",\"namespace\":\"%s\",\"uid\":\"%s\",", d.name, kp->hash, d.ns,
      uid);
    J("\"creationTimestamp\":\"%s\",", created);
    if (term)
        J("\"deletionTimestamp\":\"%s\",\"deletionGracePeriodSeconds\":%d,", now, GRACE_MS / 1000);
    J("\"labels\":{\"app\":\"%s\",\"version\":\"%s\",\"pod-template-hash\":\"%s\","
      "\"linkerd.io/control-plane-ns\":\"linkerd\",\"linkerd.io/proxy-deployment\":\"%s\","
      "\"linkerd.io/workload-ns\":\"%s\"},",
      d.app, d.version, kp->hash, d.name, d.ns);
    J("\"annotations\":{\"linkerd.io/created-by\":\"linkerd/proxy-injector edge-25.10.7\","
      "\"linkerd.io/proxy-version\":\"edge-25.10.7\",\"linkerd.io/trust-root-sha256\":\"%s\","
      "\"viz.linkerd.io/tap-enabled\":\"true\"},",
      trust);
    J("\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"%s-%s\","
      "\"uid\":\"%s\",\"controller\":true,\"blockOwnerDeletion\":true}]},",
      d.name, kp->hash, rs_uid);
    J("\"spec\":{\"serviceAccountName\":\"%s\",", d.service_account);
    if (sched)
        J("\"nodeName\":\"%s\",", kp->node);
    J("\"initContainers\":[{\"name\":\"linkerd-init\",\"image\":\"cr.l5d.io/linkerd/"
      "proxy-init:v2.4.3\"}],");
    J("\"containers\":[{\"name\":\"linkerd-proxy\",\"image\":\"cr.l5d.io/linkerd/"
      "proxy:edge-25.10.7\","
      "\"ports\":[{\"name\":\"linkerd-proxy\",\"containerPort\":4143,\"protocol\":\"TCP\"},"
      "{\"name\":\"linkerd-admin\",\"containerPort\":%u,\"protocol\":\"TCP\"}]},",
      (unsigned)pb->port);
    J("{\"name\":\"%s\",\"image\":\"docker.io/meshsim/%s:%s\",\"ports\":[{\"name\":\"%s\","
      "\"containerPort\":%d,\"protocol\":\"TCP\"}]}]},",
      d.app, d.name, d.version, d.port_name, d.target_port);
    J("\"status\":{\"phase\":\"%s\",\"conditions\":[", running ? "Running" : "Pending");
    if (sched) {
        J("{\"type\":\"PodReadyToStartContainers\",\"status\":\"%s\"},", cond(ip));
        J("{\"type\":\"Initialized\",\"status\":\"%s\"},", cond(running));
        J("{\"type\":\"Ready\",\"status\":\"%s\"},", cond(ready));
        J("{\"type\":\"ContainersReady\",\"status\":\"%s\"},", cond(ready));
    }
    J("{\"type\":\"PodScheduled\",\"status\":\"%s\"}],", cond(sched));
    if (ip) {
        J("\"hostIP\":\"%s\",\"hostIPs\":[{\"ip\":\"%s\"}],", kp->host_ip, kp->host_ip);
        J("\"podIP\":\"%s\",\"podIPs\":[{\"ip\":\"%s\"}],\"startTime\":\"%s\",", kp->ip, kp->ip,
          start);
        J("\"initContainerStatuses\":[{\"name\":\"linkerd-init\",\"ready\":%s,\"restartCount\":0,"
          "\"image\":\"cr.l5d.io/linkerd/proxy-init:v2.4.3\",\"containerID\":\"containerd://"
          "%.64s\","
          "\"state\":%s}],",
          running ? "true" : "false", trust,
          running ? "{\"terminated\":{\"exitCode\":0,\"reason\":\"Completed\"}}"
                  : "{\"running\":{}}");
    }
    if (running) {
        const char *names[2] = {"linkerd-proxy", d.app};
        J("\"containerStatuses\":[");
        for (int c = 0; c < 2; c++) {
            char cid[72];
            hex64(cid, kp->uid * 4 + (uint64_t)c);
            J("%s{\"name\":\"%s\",\"ready\":%s,\"started\":true,\"restartCount\":0,"
              "\"containerID\":\"containerd://%s\",\"state\":{\"running\":{\"startedAt\":\"%s\"}}}",
              c ? "," : "", names[c], ready || (c == 0 && !term) ? "true" : "false", cid, start);
        }
        J("],");
    }
    J("\"qosClass\":\"Burstable\"}}");
    return rc;
}

static int put(struct meshsim_publish *pb, enum meshsim_k8s_kind kind, const char *ns,
               const char *name)
{
    struct mp_err err = {0};
    int rc = meshsim_k8s_put(pb->k, kind, ns, name, pb->js.data, pb->js.len, NULL, &err);
    if (rc && pb->errors++ < 5)
        MP_LOG_WARN("fake API put failed", MP_KV_STR("name", name), MP_KV_STR("err", err.msg));
    return rc;
}

static void pod_put(struct meshsim_publish *pb, const struct kpod *kp, int64_t now_ms)
{
    struct meshsim_deploy_info d;
    meshsim_deploy_get(pb->m, kp->dep, &d);
    if (pod_json(pb, kp, now_ms) == 0)
        (void)put(pb, MESHSIM_K8S_PODS, d.ns, kp->name);
}

/* Endpoints and the EndpointSlice of deployment di from the pods that have an IP. */
static void endpoints_put(struct meshsim_publish *pb, size_t di)
{
    struct meshsim_deploy_info d;
    meshsim_deploy_get(pb->m, di, &d);
    if (!d.service)
        return;
    struct mp_buf *b = &pb->js;
    int rc = 0;
    char svc_uid[40], slice[80];
    uuid(svc_uid, sizeof svc_uid, UINT64_C(0x5e5) + di);
    uint64_t h = mix(di + 99);
    snprintf(slice, sizeof slice, "%s-%c%c%c%c%c", d.service, "bcdfghjklmnpqrstvwxz2456789"[h % 27],
             "bcdfghjklmnpqrstvwxz2456789"[h / 27 % 27],
             "bcdfghjklmnpqrstvwxz2456789"[h / 729 % 27],
             "bcdfghjklmnpqrstvwxz2456789"[h / 19683 % 27],
             "bcdfghjklmnpqrstvwxz2456789"[h / 531441 % 27]);
    for (int pass = 0; pass < 2; pass++) { /* ready addresses, then not-ready ones */
        if (pass == 0) {
            mp_buf_reset(b);
            J("{\"kind\":\"Endpoints\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"%s\","
              "\"namespace\":\"%s\",\"labels\":{\"app\":\"%s\"}},\"subsets\":[{\"addresses\":[",
              d.service, d.ns, d.app);
        } else {
            J("],\"notReadyAddresses\":[");
        }
        bool first = true;
        for (size_t i = 0; i < pb->n; i++) {
            const struct kpod *kp = &pb->pods[i];
            if (kp->dep != di || kp->state < K_IP || (kp->state == K_READY) != (pass == 0))
                continue;
            char uid[40];
            uuid(uid, sizeof uid, kp->uid * 2 + 1);
            J("%s{\"ip\":\"%s\",\"nodeName\":\"%s\",\"targetRef\":{\"kind\":\"Pod\","
              "\"namespace\":\"%s\",\"name\":\"%s\",\"uid\":\"%s\"}}",
              first ? "" : ",", kp->ip, kp->node, d.ns, kp->name, uid);
            first = false;
        }
    }
    J("],\"ports\":[{\"name\":\"%s\",\"port\":%d,\"protocol\":\"TCP\"}]}]}", d.port_name,
      d.target_port);
    if (rc == 0)
        (void)put(pb, MESHSIM_K8S_ENDPOINTS, d.ns, d.service);
    rc = 0;
    mp_buf_reset(b);
    J("{\"kind\":\"EndpointSlice\",\"apiVersion\":\"discovery.k8s.io/v1\",\"metadata\":{"
      "\"name\":\"%s\",\"namespace\":\"%s\",\"labels\":{\"kubernetes.io/service-name\":\"%s\","
      "\"endpointslice.kubernetes.io/managed-by\":\"endpointslice-controller.k8s.io\"},"
      "\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"name\":\"%s\","
      "\"uid\":\"%s\",\"controller\":true,\"blockOwnerDeletion\":true}]},"
      "\"addressType\":\"IPv4\",\"endpoints\":[",
      slice, d.ns, d.service, d.service, svc_uid);
    bool first = true;
    for (size_t i = 0; i < pb->n; i++) {
        const struct kpod *kp = &pb->pods[i];
        if (kp->dep != di || kp->state < K_IP)
            continue;
        bool ready = kp->state == K_READY, term = kp->state == K_TERMINATING;
        char uid[40];
        uuid(uid, sizeof uid, kp->uid * 2 + 1);
        J("%s{\"addresses\":[\"%s\"],\"conditions\":{\"ready\":%s,\"serving\":%s,"
          "\"terminating\":%s},\"nodeName\":\"%s\",\"targetRef\":{\"kind\":\"Pod\","
          "\"namespace\":\"%s\",\"name\":\"%s\",\"uid\":\"%s\"}}",
          first ? "" : ",", kp->ip, ready ? "true" : "false", ready || term ? "true" : "false",
          term ? "true" : "false", kp->node, d.ns, kp->name, uid);
        first = false;
    }
    J("],\"ports\":[{\"name\":\"%s\",\"port\":%d,\"protocol\":\"TCP\"}]}", d.port_name,
      d.target_port);
    if (rc == 0)
        (void)put(pb, MESHSIM_K8S_ENDPOINTSLICES, d.ns, slice);
}

static void service_put(struct meshsim_publish *pb, size_t di)
{
    struct meshsim_deploy_info d;
    meshsim_deploy_get(pb->m, di, &d);
    if (!d.service)
        return;
    struct mp_buf *b = &pb->js;
    int rc = 0;
    char uid[40];
    uuid(uid, sizeof uid, UINT64_C(0x5e5) + di);
    mp_buf_reset(b);
    J("{\"kind\":\"Service\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"%s\",\"namespace\":"
      "\"%s\",\"uid\":\"%s\",\"labels\":{\"app\":\"%s\"}},\"spec\":{\"type\":\"ClusterIP\","
      "\"clusterIP\":\"10.96.%zu.%zu\",\"clusterIPs\":[\"10.96.%zu.%zu\"],\"selector\":"
      "{\"app\":\"%s\"},\"ports\":[{\"name\":\"%s\",\"port\":%d,\"targetPort\":%d,"
      "\"protocol\":\"TCP\"}]},\"status\":{\"loadBalancer\":{}}}",
      d.service, d.ns, uid, d.app, di / 250 % 250, di % 250 + 1, di / 250 % 250, di % 250 + 1,
      d.app, d.port_name, d.service_port, d.target_port);
    if (rc == 0)
        (void)put(pb, MESHSIM_K8S_SERVICES, d.ns, d.service);
}

static void node_put(struct meshsim_publish *pb, size_t node)
{
    struct mp_buf *b = &pb->js;
    int rc = 0;
    char name[40], uid[40];
    snprintf(name, sizeof name, "worker-%zu", node);
    uuid(uid, sizeof uid, UINT64_C(0x40de) + node);
    mp_buf_reset(b);
    J("{\"kind\":\"Node\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"%s\",\"uid\":\"%s\","
      "\"labels\":{\"kubernetes.io/hostname\":\"%s\",\"kubernetes.io/os\":\"linux\"}},"
      "\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"172.18.%zu.%zu\"},"
      "{\"type\":\"Hostname\",\"address\":\"%s\"}],\"conditions\":[{\"type\":\"Ready\","
      "\"status\":\"True\"}]}}",
      name, uid, name, node / 250, node % 250 + 2, name);
    if (rc == 0)
        (void)put(pb, MESHSIM_K8S_NODES, "", name);
}

#undef J

/* ---- following the simulator ------------------------------------------------------------- */

static struct kpod *kpod_add(struct meshsim_publish *pb, size_t index, int state, int64_t t0)
{
    if (pb->n == pb->cap) {
        pb->cap = pb->cap ? pb->cap * 2 : 64;
        pb->pods = mp_xrealloc(pb->pods, pb->cap * sizeof *pb->pods);
    }
    struct kpod *kp = &pb->pods[pb->n++];
    struct meshsim_pod_info pi;
    meshsim_pod_get(pb->m, index, &pi);
    struct meshsim_deploy_info d;
    meshsim_deploy_get(pb->m, pi.deploy, &d);
    memset(kp, 0, sizeof *kp);
    kp->uid = pi.uid;
    kp->dep = pi.deploy;
    kp->index = index;
    snprintf(kp->name, sizeof kp->name, "%s", pi.name);
    snprintf(kp->ip, sizeof kp->ip, "%s", pi.ip);
    snprintf(kp->hash, sizeof kp->hash, "%s", d.pod_template_hash);
    size_t node =
        (size_t)(mix(pi.uid) % (uint64_t)((pb->npods + PODS_PER_NODE - 1) / PODS_PER_NODE));
    snprintf(kp->node, sizeof kp->node, "worker-%zu", node);
    snprintf(kp->host_ip, sizeof kp->host_ip, "172.18.%zu.%zu", node / 250 % 250, node % 250 + 2);
    kp->created_ms = pi.created_ms;
    kp->t0 = t0;
    kp->state = state;
    pb->uid_at[index] = pi.uid;
    return kp;
}

int meshsim_publish_create(struct meshsim *m, const char *listen, uint16_t proxy_port,
                           struct meshsim_publish **out, struct mp_err *err)
{
    *out = NULL;
    struct meshsim_k8s *k;
    int rc = meshsim_k8s_create(listen, NULL, &k, err);
    if (rc)
        return rc;
    struct meshsim_publish *pb = mp_xcalloc(1, sizeof *pb);
    pb->m = m;
    pb->k = k;
    pb->port = proxy_port;
    snprintf(pb->url, sizeof pb->url, "http://127.0.0.1:%u", (unsigned)meshsim_k8s_port(k));
    pb->npods = meshsim_pod_count(m);
    pb->ndeps = meshsim_deploy_count(m);
    pb->uid_at = mp_xcalloc(pb->npods + 1, sizeof *pb->uid_at);
    pb->dirty = mp_xcalloc(pb->ndeps + 1, sizeof *pb->dirty);
    mp_buf_init(&pb->js, 0);
    int64_t now = meshsim_now_ms(m), el = meshsim_elapsed_ms(m);
    for (size_t n = 0; n < (pb->npods + PODS_PER_NODE - 1) / PODS_PER_NODE; n++)
        node_put(pb, n);
    for (size_t d = 0; d < pb->ndeps; d++)
        service_put(pb, d);
    for (size_t i = 0; i < pb->npods; i++)
        pod_put(pb, kpod_add(pb, i, K_READY, el - step_ms[K_READY]), now);
    for (size_t d = 0; d < pb->ndeps; d++)
        endpoints_put(pb, d);
    *out = pb;
    return 0;
}

void meshsim_publish_sync(struct meshsim_publish *pb, int64_t elapsed_ms)
{
    int64_t now = meshsim_now_ms(pb->m);
    /* replaced pods: the old one terminates, the new one is ADDED Pending */
    for (size_t i = 0; i < pb->npods; i++) {
        struct meshsim_pod_info pi;
        meshsim_pod_get(pb->m, i, &pi);
        if (pi.uid == pb->uid_at[i])
            continue;
        for (size_t j = 0; j < pb->n; j++) {
            struct kpod *old = &pb->pods[j];
            if (old->uid == pb->uid_at[i] && old->state != K_TERMINATING) {
                old->state = K_TERMINATING;
                old->t0 = elapsed_ms;
                pod_put(pb, old, now);
                pb->dirty[old->dep] = true;
            }
        }
        struct kpod *kp = kpod_add(pb, i, K_PENDING, elapsed_ms);
        kp->created_ms = now;
        pod_put(pb, kp, now);
    }
    /* lifecycle steps and deletions */
    size_t w = 0;
    for (size_t j = 0; j < pb->n; j++) {
        struct kpod *kp = &pb->pods[j];
        if (kp->state == K_TERMINATING && elapsed_ms - kp->t0 >= GRACE_MS) {
            struct meshsim_deploy_info d;
            meshsim_deploy_get(pb->m, kp->dep, &d);
            struct mp_err err = {0};
            if (meshsim_k8s_delete(pb->k, MESHSIM_K8S_PODS, d.ns, kp->name, NULL, &err) != 0 &&
                pb->errors++ < 5)
                MP_LOG_WARN("fake API delete failed", MP_KV_STR("err", err.msg));
            pb->dirty[kp->dep] = true;
            continue;
        }
        while (kp->state < K_READY && elapsed_ms - kp->t0 >= step_ms[kp->state + 1]) {
            kp->state++;
            pod_put(pb, kp, now);
            if (kp->state == K_IP || kp->state == K_READY)
                pb->dirty[kp->dep] = true;
        }
        pb->pods[w++] = *kp;
    }
    pb->n = w;
    for (size_t d = 0; d < pb->ndeps; d++) {
        if (pb->dirty[d])
            endpoints_put(pb, d);
        pb->dirty[d] = false;
    }
}

void meshsim_publish_destroy(struct meshsim_publish *pb)
{
    if (!pb)
        return;
    meshsim_k8s_destroy(pb->k);
    mp_free(pb->pods);
    mp_free(pb->uid_at);
    mp_free(pb->dirty);
    mp_buf_fini(&pb->js);
    mp_free(pb);
}

const char *meshsim_publish_url(const struct meshsim_publish *pb)
{
    return pb->url;
}

struct meshsim_k8s *meshsim_publish_k8s(const struct meshsim_publish *pb)
{
    return pb->k;
}
