/* SPDX-License-Identifier: Apache-2.0 */
/* tests/meshsim/test_model.c: the simulated mesh without sockets: presets, rendered bodies
 * (parse, catalogue, series counts, histogram invariants), monotone counters, determinism
 * and churn (linkerd-workload.md 1-2, 5.1-5.5). */
#include <criterion/criterion.h>
#include <string.h>

#include "common/str.h"
#include "meshsim/meshsim.h"
#include "support_meshsim.h"

static struct meshsim *make(enum meshsim_preset preset, uint64_t seed, bool small)
{
    struct meshsim_opts o;
    meshsim_opts_init(&o, preset);
    o.seed = seed;
    if (small) {
        o.namespaces = 1;
        o.deployments = 5;
        o.replicas = 2;
        o.peers = 2;
    }
    struct meshsim *m = NULL;
    struct mp_err err = {0};
    cr_assert_eq(meshsim_create(&o, &m, &err), 0, "%s", err.msg);
    return m;
}

static void render(const struct meshsim *m, size_t i, struct tm_body *b, struct mp_buf *raw)
{
    struct mp_buf buf;
    mp_buf_init(&buf, 0);
    struct mp_err err = {0};
    cr_assert_eq(meshsim_render(m, i, &buf, &err), 0, "%s", err.msg);
    tm_parse(buf.data, buf.len, b);
    cr_assert_eq(b->rc, MP_EEOF, "pod %zu: %s", i, b->err);
    char dup[512] = "";
    cr_assert_eq(tm_duplicates(b, dup, sizeof dup), 0, "pod %zu repeats %s", i, dup);
    if (raw) {
        mp_buf_init(raw, 0);
        cr_assert_eq(mp_buf_append(raw, buf.data, buf.len), 0);
    }
    mp_buf_fini(&buf);
}

static size_t find_pod(const struct meshsim *m, const char *deploy)
{
    for (size_t i = 0; i < meshsim_pod_count(m); i++) {
        struct meshsim_pod_info pi;
        struct meshsim_deploy_info d;
        meshsim_pod_get(m, i, &pi);
        meshsim_deploy_get(m, pi.deploy, &d);
        if (strcmp(d.name, deploy) == 0)
            return i;
    }
    cr_assert_fail("no pod of %s", deploy);
    return 0;
}

Test(meshsim_model, emojivoto_has_exactly_the_four_deployments)
{
    struct meshsim *m = make(MESHSIM_PRESET_EMOJIVOTO, 1, false);
    static const char *const want[4] = {"vote-bot", "web", "emoji", "voting"};
    cr_assert_eq(meshsim_deploy_count(m), 4);
    cr_assert_eq(meshsim_pod_count(m), 4);
    for (size_t i = 0; i < 4; i++) {
        struct meshsim_deploy_info d;
        meshsim_deploy_get(m, i, &d);
        cr_assert_str_eq(d.name, want[i]);
        cr_assert_str_eq(d.ns, "emojivoto");
        cr_assert_eq(d.replicas, 1);
        cr_assert_eq(d.service == NULL, i == 0, "only vote-bot has no Service");
    }
    struct meshsim_deploy_info web;
    meshsim_deploy_get(m, 1, &web);
    cr_assert_str_eq(web.app, "web-svc");
    cr_assert_eq(web.service_port, 80);
    for (size_t i = 0; i < 4; i++) {
        struct meshsim_pod_info pi;
        meshsim_pod_get(m, i, &pi);
        cr_assert_eq(pi.ip_u32 >> 24, 127u, "pods live on loopback");
    }
    meshsim_destroy(m);
}

Test(meshsim_model, body_has_the_catalogue_names_and_labels)
{
    struct meshsim *m = make(MESHSIM_PRESET_EMOJIVOTO, 1, false);
    meshsim_advance(m, 30000);
    struct tm_body b;
    render(m, find_pod(m, "web"), &b, NULL);
    static const char *const names[] = {
        "request_total",
        "response_latency_ms_bucket",
        "response_latency_ms_count",
        "response_latency_ms_sum",
        "response_total",
        "tcp_open_total",
        "tcp_open_connections",
        "tcp_read_bytes_total",
        "tcp_write_bytes_total",
        "tcp_close_total",
        "control_request_total",
        "control_response_total",
        "inbound_http_authz_allow_total",
        "outbound_grpc_route_request_statuses_total",
        "outbound_grpc_route_backend_response_duration_seconds_bucket",
        "outbound_http_balancer_endpoints",
        "inbound_http_requests_total",
        "control_identity_cert_expiration_timestamp_seconds",
        "control_identity_cert_refreshes_total",
        "process_start_time_seconds",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "proxy_build_info",
        "rustls_info"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        cr_expect(tm_has_name(&b, names[i]), "missing %s", names[i]);
    static const char *const labels[] = {"direction",
                                         "authority",
                                         "target_addr",
                                         "target_ip",
                                         "target_port",
                                         "tls",
                                         "client_id",
                                         "server_id",
                                         "no_tls_reason",
                                         "srv_kind",
                                         "srv_name",
                                         "route_name",
                                         "authz_name",
                                         "dst_deployment",
                                         "dst_namespace",
                                         "dst_pod",
                                         "dst_pod_template_hash",
                                         "dst_service",
                                         "dst_serviceaccount",
                                         "status_code",
                                         "classification",
                                         "grpc_status",
                                         "error",
                                         "peer",
                                         "errno",
                                         "le",
                                         "addr",
                                         "parent_name",
                                         "backend_name",
                                         "endpoint_state"};
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++)
        cr_expect(tm_has_label(&b, labels[i]), "missing label %s", labels[i]);
    /* web answers the bot 500 when VoteDoughnut fails, and voting fails with grpc-status 2 */
    bool saw500 = false, sawgrpc2 = false;
    for (size_t i = 0; i < b.n; i++) {
        if (strcmp(b.s[i].name, "response_total") != 0)
            continue;
        saw500 |= strstr(b.s[i].series, "direction=\"inbound\"") &&
                  strstr(b.s[i].series, "status_code=\"500\",classification=\"failure\"");
        sawgrpc2 |= strstr(b.s[i].series, "dst_deployment=\"voting\"") &&
                    strstr(b.s[i].series, "classification=\"failure\",grpc_status=\"2\"");
    }
    cr_expect(saw500);
    cr_expect(sawgrpc2);
    tm_body_fini(&b);
    meshsim_destroy(m);
}

/* Every counter and histogram sample of the first body is at most its value in the second. */
static void expect_monotone(const struct tm_body *a, const struct tm_body *b, size_t *compared)
{
    for (size_t i = 0; i < a->n; i++) {
        const struct tm_sample *x = &a->s[i];
        if (x->type != SCRAPE_TYPE_COUNTER && x->type != SCRAPE_TYPE_HISTOGRAM)
            continue;
        const struct tm_sample *y = tm_find(b, x->series);
        if (!y)
            continue; /* evicted (retain-idle) */
        cr_expect(y->value >= x->value, "%s went from %g to %g", x->series, x->value, y->value);
        (*compared)++;
    }
}

Test(meshsim_model, counters_never_decrease)
{
    struct meshsim *m = make(MESHSIM_PRESET_MESH, 3, true);
    size_t compared = 0;
    for (size_t i = 0; i < meshsim_pod_count(m); i += 3) {
        struct tm_body a, b;
        meshsim_advance(m, 10000 * (int64_t)(i + 1));
        render(m, i, &a, NULL);
        meshsim_advance(m, 10000 * (int64_t)(i + 1) + 25000);
        render(m, i, &b, NULL);
        expect_monotone(&a, &b, &compared);
        tm_body_fini(&a);
        tm_body_fini(&b);
    }
    cr_assert_gt(compared, 1000);
    meshsim_destroy(m);
}

Test(meshsim_model, histograms_are_cumulative_and_inf_equals_count)
{
    struct meshsim *m = make(MESHSIM_PRESET_EMOJIVOTO, 1, false);
    meshsim_advance(m, 60000);
    struct tm_body b;
    render(m, find_pod(m, "web"), &b, NULL);
    size_t infs = 0;
    for (size_t i = 0; i < b.n; i++) {
        if (strcmp(b.s[i].name, "response_latency_ms_bucket") != 0)
            continue;
        /* buckets of one series group are consecutive, le ascending */
        const char *le = strstr(b.s[i].series, ",le=\"");
        cr_assert(le);
        if (strncmp(le, ",le=\"1\"", 7) == 0)
            continue;
        cr_expect_geq(b.s[i].value, b.s[i - 1].value, "%s", b.s[i].series);
        if (strstr(le, "+Inf")) {
            infs++;
            cr_assert_str_eq(b.s[i + 1].name, "response_latency_ms_count");
            cr_expect_eq(b.s[i + 1].value, b.s[i].value, "%s", b.s[i].series);
        }
    }
    cr_assert_geq(infs, 4);
    tm_body_fini(&b);
    meshsim_destroy(m);
}

Test(meshsim_model, parametric_preset_series_per_proxy_in_the_spec_range)
{
    /* the default mesh (5.2: 10 x 10 x 3, K = 3); spec 2.1/2.4: ~450 (leaf) to ~6,000 (hub)
     * per proxy, around 1,000-1,500 on average */
    struct meshsim *m = make(MESHSIM_PRESET_MESH, 1, false);
    cr_assert_eq(meshsim_pod_count(m), 300);
    meshsim_advance(m, 20000);
    size_t total = 0, lo = SIZE_MAX, hi = 0;
    for (size_t i = 0; i < meshsim_pod_count(m); i++) {
        struct tm_body b;
        render(m, i, &b, NULL);
        total += b.n;
        lo = b.n < lo ? b.n : lo;
        hi = b.n > hi ? b.n : hi;
        tm_body_fini(&b);
    }
    double mean = (double)total / 300;
    cr_expect(lo >= 300 && hi <= 6000, "per proxy %zu..%zu", lo, hi);
    cr_expect(mean >= 1000 && mean <= 2000, "mean %.0f", mean);
    meshsim_destroy(m);
}

Test(meshsim_model, same_seed_and_elapsed_time_give_the_same_body)
{
    struct meshsim *a = make(MESHSIM_PRESET_MESH, 42, true),
                   *b = make(MESHSIM_PRESET_MESH, 42, true),
                   *c = make(MESHSIM_PRESET_MESH, 43, true);
    meshsim_advance(a, 95500);
    meshsim_advance(b, 40000); /* a different path to the same time */
    meshsim_advance(b, 95500);
    meshsim_advance(c, 95500);
    struct tm_body x, y, z;
    struct mp_buf rx, ry, rz;
    render(a, 4, &x, &rx);
    render(b, 4, &y, &ry);
    render(c, 4, &z, &rz);
    cr_assert_eq(rx.len, ry.len);
    cr_assert(memcmp(rx.data, ry.data, rx.len) == 0, "bodies differ");
    cr_assert(rx.len != rz.len || memcmp(rx.data, rz.data, rx.len) != 0, "seed is ignored");
    mp_buf_fini(&rx);
    mp_buf_fini(&ry);
    mp_buf_fini(&rz);
    tm_body_fini(&x);
    tm_body_fini(&y);
    tm_body_fini(&z);
    meshsim_destroy(a);
    meshsim_destroy(b);
    meshsim_destroy(c);
}

Test(meshsim_model, churn_replaces_pods_with_new_names_and_ips)
{
    struct meshsim_opts o;
    meshsim_opts_init(&o, MESHSIM_PRESET_MESH);
    o.namespaces = 1;
    o.deployments = 5;
    o.replicas = 2;
    o.peers = 2;
    o.churn_every_ms = 60000;
    o.churn_fraction = 0.4;
    struct meshsim *m;
    cr_assert_eq(meshsim_create(&o, &m, NULL), 0);
    size_t n = meshsim_pod_count(m);
    char names[16][64];
    uint32_t ips[16], max_ip = 0;
    uint64_t uids[16];
    for (size_t i = 0; i < n; i++) {
        struct meshsim_pod_info pi;
        meshsim_pod_get(m, i, &pi);
        snprintf(names[i], sizeof names[i], "%s", pi.name);
        ips[i] = pi.ip_u32;
        uids[i] = pi.uid;
        max_ip = pi.ip_u32 > max_ip ? pi.ip_u32 : max_ip;
    }
    uint64_t gen = meshsim_generation(m);
    meshsim_advance(m, 59000);
    cr_assert_eq(meshsim_generation(m), gen, "no churn before the period");
    meshsim_advance(m, 61000);
    cr_assert_neq(meshsim_generation(m), gen);
    size_t replaced = 0;
    for (size_t i = 0; i < n; i++) {
        struct meshsim_pod_info pi;
        meshsim_pod_get(m, i, &pi);
        if (pi.uid == uids[i]) {
            cr_expect_str_eq(pi.name, names[i]);
            continue;
        }
        replaced++;
        cr_expect_str_neq(pi.name, names[i]);
        cr_expect_neq(pi.ip_u32, ips[i]);
        cr_expect_gt(pi.ip_u32, max_ip, "new pods get fresh IPs");
        /* the replacement renders a body of its own (at least the fixed families) */
        struct tm_body b;
        render(m, i, &b, NULL);
        cr_expect(tm_has_name(&b, "process_start_time_seconds"));
        tm_body_fini(&b);
    }
    cr_assert_geq(replaced, 4, "churn_fraction 0.4 of 10 pods");
    cr_assert_lt(replaced, n);
    meshsim_destroy(m);
}

Test(meshsim_model, rejects_addresses_outside_loopback)
{
    struct meshsim_opts o;
    meshsim_opts_init(&o, MESHSIM_PRESET_EMOJIVOTO);
    o.ip_base = (10u << 24) | 1u;
    struct meshsim *m = NULL;
    struct mp_err err = {0};
    cr_assert_eq(meshsim_create(&o, &m, &err), MP_EINVAL);
    cr_assert_null(m);
    enum meshsim_preset pr;
    cr_assert_eq(meshsim_preset_parse("mesh", &pr, NULL), 0);
    cr_assert_eq(pr, MESHSIM_PRESET_MESH);
    cr_assert_eq(meshsim_preset_parse("nope", &pr, NULL), MP_EINVAL);
}
