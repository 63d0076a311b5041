/* SPDX-License-Identifier: Apache-2.0 */
/* tests/meshsim/test_server.c: the simulated proxies over HTTP (libcurl) and the objects in
 * the fake Kubernetes API: /metrics on every pod address (plain and gzip), /ready, /live,
 * counters between two fetches, churn closing old listeners and opening new ones, and the
 * Pod JSON of kubernetes-sd.md 3.1. The model clock is manual; every wait is bounded. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "common/str.h"
#include "meshsim/meshsim.h"
#include "support_meshsim.h"

struct fx {
    struct meshsim *m;
    struct meshsim_server *s;
    pthread_t th;
    int run_rc;
};

static void *run(void *arg)
{
    struct fx *f = arg;
    f->run_rc = meshsim_server_run(f->s, NULL);
    return NULL;
}

/* ip_base differs per test so parallel tests never share an address. */
static void fx_start(struct fx *f, enum meshsim_preset preset, uint32_t ip_base, int64_t churn_ms,
                     bool k8s)
{
    struct meshsim_opts o;
    meshsim_opts_init(&o, preset);
    o.ip_base = ip_base;
    if (preset == MESHSIM_PRESET_MESH) {
        o.namespaces = 1;
        o.deployments = 4;
        o.replicas = 2;
        o.peers = 2;
    }
    o.churn_every_ms = churn_ms;
    o.churn_fraction = 0.5;
    struct mp_err err = {0};
    cr_assert_eq(meshsim_create(&o, &f->m, &err), 0, "%s", err.msg);
    struct meshsim_server_opts so;
    meshsim_server_opts_init(&so);
    so.port = 0;
    so.manual_clock = true;
    so.k8s_listen = k8s ? "127.0.0.1:0" : NULL;
    cr_assert_eq(meshsim_server_create(f->m, &so, &f->s, &err), 0, "%s", err.msg);
    cr_assert_eq(meshsim_server_listeners(f->s), meshsim_pod_count(f->m));
    cr_assert_neq(meshsim_server_port(f->s), 0);
    cr_assert_eq(pthread_create(&f->th, NULL, run, f), 0);
}

static void fx_stop(struct fx *f)
{
    meshsim_server_stop(f->s);
    cr_assert_eq(pthread_join(f->th, NULL), 0);
    cr_assert_eq(f->run_rc, 0);
    meshsim_server_destroy(f->s);
    meshsim_destroy(f->m);
}

struct resp {
    long status;
    CURLcode cc;
    struct mp_buf body;
    bool gzip;
    char ctype[64];
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    struct resp *r = ud;
    return mp_buf_append(&r->body, p, size * n) == 0 ? size * n : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct resp *r = ud;
    if (strncasecmp(p, "Content-Encoding: gzip", 22) == 0)
        r->gzip = true;
    if (strncasecmp(p, "Content-Type: ", 14) == 0)
        snprintf(r->ctype, sizeof r->ctype, "%.*s", (int)strcspn(p + 14, "\r\n"), p + 14);
    return size * n;
}

static void fetch(const char *ip, uint16_t port, const char *path, bool gzip, struct resp *r)
{
    char url[128];
    snprintf(url, sizeof url, "http://%s:%u%s", ip, (unsigned)port, path);
    memset(r, 0, sizeof *r);
    mp_buf_init(&r->body, 0);
    CURL *c = curl_easy_init();
    cr_assert_not_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (gzip)
        curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "gzip"); /* curl decodes it */
    r->cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(c);
}

static void fetch_metrics(const struct fx *f, size_t i, bool gzip, struct tm_body *b)
{
    struct meshsim_pod_info pi;
    meshsim_pod_get(f->m, i, &pi); /* the loop thread only changes pods when the clock moves */
    struct resp r;
    fetch(pi.ip, meshsim_server_port(f->s), "/metrics", gzip, &r);
    cr_assert_eq(r.cc, CURLE_OK, "%s: %s", pi.ip, curl_easy_strerror(r.cc));
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.ctype, "text/plain");
    cr_assert_eq(r.gzip, gzip);
    tm_parse(r.body.data, r.body.len, b);
    cr_assert_eq(b->rc, MP_EEOF, "%s", b->err);
    mp_buf_fini(&r.body);
}

/* Sets the model clock and waits (bounded) until the loop has run past it. */
static void move_clock(struct fx *f, int64_t elapsed_ms, uint64_t want_gen_change_from)
{
    meshsim_server_set_elapsed(f->s, elapsed_ms);
    for (int i = 0; i < 400; i++) {
        if (want_gen_change_from == UINT64_MAX ||
            meshsim_server_generation(f->s) != want_gen_change_from)
            break;
        usleep(10000);
    }
    usleep(200000); /* a few loop turns: the loop polls every 50 ms */
}

Test(meshsim_server, serves_metrics_ready_and_live_on_every_pod_address)
{
    struct fx f;
    fx_start(&f, MESHSIM_PRESET_EMOJIVOTO, (127u << 24) | (11u << 16) | 1u, 0, false);
    for (size_t i = 0; i < meshsim_pod_count(f.m); i++) {
        struct tm_body b;
        fetch_metrics(&f, i, i % 2 == 1, &b);
        cr_expect_gt(b.n, 300, "pod %zu: %zu series", i, b.n);
        cr_expect(tm_has_name(&b, "request_total"));
        cr_expect(tm_has_name(&b, "process_start_time_seconds"));
        tm_body_fini(&b);
        struct meshsim_pod_info pi;
        meshsim_pod_get(f.m, i, &pi);
        static const char *const paths[2] = {"/ready", "/live"};
        for (int k = 0; k < 2; k++) {
            struct resp r;
            fetch(pi.ip, meshsim_server_port(f.s), paths[k], false, &r);
            cr_expect_eq(r.cc, CURLE_OK);
            cr_expect_eq(r.status, 200);
            mp_buf_fini(&r.body);
        }
        struct resp r;
        fetch(pi.ip, meshsim_server_port(f.s), "/nope", false, &r);
        cr_expect_eq(r.status, 404);
        mp_buf_fini(&r.body);
    }
    fx_stop(&f);
}

Test(meshsim_server, counters_never_decrease_between_two_fetches)
{
    struct fx f;
    fx_start(&f, MESHSIM_PRESET_EMOJIVOTO, (127u << 24) | (12u << 16) | 1u, 0, false);
    struct tm_body a[4], b[4];
    for (size_t i = 0; i < 4; i++)
        fetch_metrics(&f, i, false, &a[i]);
    move_clock(&f, 30000, UINT64_MAX);
    size_t compared = 0, grew = 0;
    for (size_t i = 0; i < 4; i++) {
        fetch_metrics(&f, i, true, &b[i]);
        for (size_t k = 0; k < a[i].n; k++) {
            const struct tm_sample *x = &a[i].s[k];
            if (x->type != SCRAPE_TYPE_COUNTER && x->type != SCRAPE_TYPE_HISTOGRAM)
                continue;
            const struct tm_sample *y = tm_find(&b[i], x->series);
            cr_assert_not_null(y, "%s vanished", x->series);
            cr_expect_geq(y->value, x->value, "%s", x->series);
            compared++;
            grew += y->value > x->value;
        }
        tm_body_fini(&a[i]);
        tm_body_fini(&b[i]);
    }
    cr_assert_gt(compared, 1000);
    cr_assert_gt(grew, 100, "30 s of traffic moved counters");
    fx_stop(&f);
}

Test(meshsim_server, churn_closes_old_listeners_and_opens_new_ones)
{
    struct fx f;
    fx_start(&f, MESHSIM_PRESET_MESH, (127u << 24) | (13u << 16) | 1u, 10000, true);
    size_t n = meshsim_pod_count(f.m);
    struct meshsim_pod_info before[8];
    char names[8][64], ips[8][16];
    for (size_t i = 0; i < n; i++) {
        meshsim_pod_get(f.m, i, &before[i]);
        snprintf(names[i], sizeof names[i], "%s", before[i].name);
        snprintf(ips[i], sizeof ips[i], "%s", before[i].ip);
    }
    uint64_t gen = meshsim_server_generation(f.s);
    move_clock(&f, 10500, gen);
    cr_assert_neq(meshsim_server_generation(f.s), gen, "a churn round ran");
    cr_assert_eq(meshsim_server_listeners(f.s), n);
    size_t replaced = 0;
    struct mp_buf js;
    mp_buf_init(&js, 0);
    struct meshsim_k8s *k = meshsim_server_k8s(f.s);
    cr_assert_not_null(k);
    for (size_t i = 0; i < n; i++) {
        struct meshsim_pod_info pi;
        meshsim_pod_get(f.m, i, &pi);
        if (pi.uid == before[i].uid)
            continue;
        replaced++;
        struct resp r;
        fetch(ips[i], meshsim_server_port(f.s), "/ready", false, &r);
        cr_expect_eq(r.cc, CURLE_COULDNT_CONNECT, "old %s still listens", ips[i]);
        mp_buf_fini(&r.body);
        struct tm_body b;
        fetch_metrics(&f, i, false, &b);
        tm_body_fini(&b);
        /* the new pod is in the API (Pending, then walking to Ready); the old one is
         * terminating until its grace period ends */
        mp_buf_reset(&js);
        cr_expect_eq(meshsim_k8s_get(k, MESHSIM_K8S_PODS, "app-00", pi.name, &js, NULL), 0);
        mp_buf_reset(&js);
        cr_expect_eq(meshsim_k8s_get(k, MESHSIM_K8S_PODS, "app-00", names[i], &js, NULL), 0);
        cr_expect(strstr(js.data, "deletionTimestamp") != NULL, "%s", names[i]);
    }
    cr_assert_geq(replaced, 2);
    /* after the grace period the old pods are gone and the new ones are Ready */
    move_clock(&f, 19000, UINT64_MAX);
    for (size_t i = 0; i < n; i++) {
        struct meshsim_pod_info pi;
        meshsim_pod_get(f.m, i, &pi);
        if (pi.uid == before[i].uid)
            continue;
        mp_buf_reset(&js);
        cr_expect_eq(meshsim_k8s_get(k, MESHSIM_K8S_PODS, "app-00", names[i], &js, NULL),
                     MP_ENOTFOUND, "%s", names[i]);
        mp_buf_reset(&js);
        cr_assert_eq(meshsim_k8s_get(k, MESHSIM_K8S_PODS, "app-00", pi.name, &js, NULL), 0);
        cr_expect(strstr(js.data, "{\"type\":\"Ready\",\"status\":\"True\"}") != NULL, "%s",
                  js.data);
    }
    mp_buf_fini(&js);
    fx_stop(&f);
}

static const char *jstr(struct json_object *o, const char *path)
{
    /* dotted path of object keys */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    struct json_object *cur = o;
    for (char *save = NULL, *t = strtok_r(buf, ".", &save); t; t = strtok_r(NULL, ".", &save))
        if (!json_object_object_get_ex(cur, t, &cur))
            return NULL;
    return json_object_get_string(cur);
}

Test(meshsim_server, pods_are_published_as_meshed_pod_objects)
{
    struct fx f;
    fx_start(&f, MESHSIM_PRESET_EMOJIVOTO, (127u << 24) | (14u << 16) | 1u, 0, true);
    cr_assert_not_null(meshsim_server_k8s_url(f.s));
    struct meshsim_k8s *k = meshsim_server_k8s(f.s);
    struct meshsim_pod_info pi;
    meshsim_pod_get(f.m, 1, &pi); /* web */
    struct mp_buf js;
    mp_buf_init(&js, 0);
    cr_assert_eq(meshsim_k8s_get(k, MESHSIM_K8S_PODS, "emojivoto", pi.name, &js, NULL), 0);
    struct json_object *o = json_tokener_parse(js.data);
    cr_assert_not_null(o, "%s", js.data);
    cr_expect_str_eq(jstr(o, "metadata.labels.app"), "web-svc");
    cr_expect_str_eq(jstr(o, "metadata.labels.version"), "v11");
    struct json_object *labels, *ann, *v;
    cr_assert(json_object_object_get_ex(o, "metadata", &v));
    cr_assert(json_object_object_get_ex(v, "labels", &labels));
    cr_assert(json_object_object_get_ex(v, "annotations", &ann));
    cr_assert(json_object_object_get_ex(labels, "linkerd.io/control-plane-ns", &v));
    cr_expect_str_eq(json_object_get_string(v), "linkerd");
    cr_assert(json_object_object_get_ex(labels, "linkerd.io/proxy-deployment", &v));
    cr_expect_str_eq(json_object_get_string(v), "web");
    cr_assert(json_object_object_get_ex(labels, "pod-template-hash", &v));
    cr_expect(strstr(pi.name, json_object_get_string(v)) != NULL);
    cr_assert(json_object_object_get_ex(ann, "linkerd.io/proxy-version", &v));
    cr_expect_str_eq(jstr(o, "status.phase"), "Running");
    cr_expect_str_eq(jstr(o, "status.podIP"), pi.ip);
    cr_expect_str_eq(jstr(o, "spec.serviceAccountName"), "web");
    struct json_object *spec, *containers, *owners;
    cr_assert(json_object_object_get_ex(o, "spec", &spec));
    cr_assert(json_object_object_get_ex(spec, "containers", &containers));
    cr_assert(json_object_object_get_ex(spec, "initContainers", &v));
    struct json_object *proxy = json_object_array_get_idx(containers, 0);
    cr_expect_str_eq(jstr(proxy, "name"), "linkerd-proxy");
    struct json_object *ports;
    cr_assert(json_object_object_get_ex(proxy, "ports", &ports));
    struct json_object *admin = json_object_array_get_idx(ports, 1);
    cr_expect_str_eq(jstr(admin, "name"), "linkerd-admin");
    cr_assert(json_object_object_get_ex(admin, "containerPort", &v));
    cr_expect_eq(json_object_get_int(v), meshsim_server_port(f.s));
    cr_assert(json_object_object_get_ex(json_object_object_get(o, "metadata"), "ownerReferences",
                                        &owners));
    cr_expect_str_eq(jstr(json_object_array_get_idx(owners, 0), "kind"), "ReplicaSet");
    json_object_put(o);
    /* the Service, its Endpoints with the pod's IP, and an EndpointSlice exist too */
    mp_buf_reset(&js);
    cr_assert_eq(meshsim_k8s_get(k, MESHSIM_K8S_SERVICES, "emojivoto", "web-svc", &js, NULL), 0);
    mp_buf_reset(&js);
    cr_assert_eq(meshsim_k8s_get(k, MESHSIM_K8S_ENDPOINTS, "emojivoto", "web-svc", &js, NULL), 0);
    cr_expect(strstr(js.data, pi.ip) != NULL);
    cr_expect_eq(meshsim_k8s_get(k, MESHSIM_K8S_SERVICES, "emojivoto", "vote-bot", &js, NULL),
                 MP_ENOTFOUND);
    mp_buf_fini(&js);
    fx_stop(&f);
}
