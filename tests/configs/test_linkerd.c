/* SPDX-License-Identifier: Apache-2.0 */
/* tests/configs/test_linkerd.c: the prometheus.yml Linkerd's viz chart renders, our demo
 * variant of it and the examples load, with the jobs and rules of linkerd-workload.md 4. */
#include <criterion/criterion.h>

#include "common/matcher.h"
#include "configs/config.h"
#include "testutil.h"

static struct cfg_config *load(const char *path)
{
    struct cfg_config *c = NULL;
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(cfg_config_load_file(path, &c, &err), 0, "%s", err.msg);
    return c;
}

static void check_linkerd_jobs(const struct cfg_config *c, bool demo)
{
    static const char *const jobs[] = {"prometheus", "kubernetes-nodes-cadvisor",
                                       "linkerd-controller", "linkerd-multicluster-controller",
                                       "linkerd-proxy"};
    cr_assert_eq(c->nscrape_configs, 5);
    for (size_t i = 0; i < 5; i++)
        cr_assert_str_eq(c->scrape_configs[i].job_name, jobs[i]);
    cr_assert_eq(c->global.scrape_interval_ms, 10000);
    cr_assert_eq(c->global.scrape_timeout_ms, 10000);
    cr_assert_eq(c->global.evaluation_interval_ms, 10000);
    cr_assert_eq(c->nrule_files, 2);
    cr_assert_str_eq(c->rule_files[0], "/etc/prometheus/*_rules.yml");
    cr_assert_str_eq(c->rule_files[1], "/etc/prometheus/*_rules.yaml");
    cr_assert_eq(c->nremote_write, 0);
    cr_assert_eq(c->alerting.nalertmanagers, 0);

    const struct cfg_scrape_config *p = cfg_config_find_job(c, "prometheus");
    cr_assert_eq(p->sd.nstatic_configs, 1);
    cr_assert_str_eq(p->sd.static_configs[0].targets[0], "localhost:9090");
    cr_assert_eq(p->scrape_interval_ms, 10000);
    cr_assert_eq(p->scrape_timeout_ms, 10000);

    const struct cfg_scrape_config *cad = cfg_config_find_job(c, "kubernetes-nodes-cadvisor");
    cr_assert_str_eq(cad->scheme, "https");
    cr_assert(cad->http.tls_config.insecure_skip_verify);
    cr_assert_str_eq(cad->http.tls_config.ca_file,
                     "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt");
    cr_assert_str_eq(cad->http.authorization->type, "Bearer");
    cr_assert_str_eq(cad->http.authorization->credentials_file,
                     "/var/run/secrets/kubernetes.io/serviceaccount/token");
    cr_assert_eq(cad->sd.nkubernetes_sd_configs, 1);
    cr_assert_eq(cad->sd.kubernetes_sd_configs[0].role, CFG_K8S_ROLE_NODE);
    cr_assert_eq(cad->relabel_configs.n, 3);
    cr_assert_eq(cad->relabel_configs.v[0].action, CFG_RELABEL_LABELMAP);
    cr_assert_str_eq(cad->relabel_configs.v[1].target_label, "__address__");
    cr_assert_str_eq(cad->relabel_configs.v[1].replacement, "kubernetes.default.svc:443");
    cr_assert_str_eq(cad->relabel_configs.v[2].replacement,
                     "/api/v1/nodes/$1/proxy/metrics/cadvisor");
    cr_assert_eq(cad->metric_relabel_configs.n, 2);
    cr_assert_eq(cad->metric_relabel_configs.v[0].action, CFG_RELABEL_KEEP);
    cr_assert(mp_regex_match(cad->metric_relabel_configs.v[0].regex,
                             MP_STR_LIT("container_cpu_usage_seconds_total")));
    cr_assert(!mp_regex_match(cad->metric_relabel_configs.v[0].regex,
                              MP_STR_LIT("go_goroutines")));
    cr_assert_eq(cad->metric_relabel_configs.v[1].action, CFG_RELABEL_DROP);

    const struct cfg_scrape_config *ctl = cfg_config_find_job(c, "linkerd-controller");
    const struct cfg_kubernetes_sd *k = &ctl->sd.kubernetes_sd_configs[0];
    cr_assert_eq(k->role, CFG_K8S_ROLE_POD);
    cr_assert_eq(k->nnamespaces, 2);
    cr_assert_str_eq(k->namespaces[0], "linkerd");
    cr_assert_str_eq(k->namespaces[1], "linkerd-viz");
    cr_assert_eq(ctl->relabel_configs.n, 3);
    cr_assert(mp_regex_match(ctl->relabel_configs.v[0].regex, MP_STR_LIT("dest-admin")));
    cr_assert_str_eq(ctl->relabel_configs.v[2].target_label, "component");

    const struct cfg_scrape_config *mc = cfg_config_find_job(c, "linkerd-multicluster-controller");
    cr_assert_eq(mc->relabel_configs.v[0].nsource_labels, 2);
    cr_assert(mp_regex_match(mc->relabel_configs.v[0].regex,
                             MP_STR_LIT("linkerd-service-mirror;mirror-admin")));

    const struct cfg_scrape_config *px = cfg_config_find_job(c, "linkerd-proxy");
    cr_assert_eq(px->relabel_configs.n, 13);
    cr_assert_eq(px->metric_relabel_configs.n, 0);
    const struct cfg_relabel *r = px->relabel_configs.v;
    cr_assert_eq(r[0].action, CFG_RELABEL_KEEP);
    cr_assert(mp_regex_match(r[0].regex, MP_STR_LIT("Running")));
    cr_assert(!mp_regex_match(r[0].regex, MP_STR_LIT("Succeeded")));
    cr_assert_eq(r[1].nsource_labels, 3);
    cr_assert(mp_regex_match(r[1].regex, MP_STR_LIT("linkerd-proxy;linkerd-admin;linkerd")));
    cr_assert_str_eq(r[4].target_label, "k8s_job");
    cr_assert_eq(r[5].action, CFG_RELABEL_LABELDROP);
    cr_assert_eq(r[6].action, CFG_RELABEL_LABELMAP);
    cr_assert_str_eq(r[9].replacement, "__tmp_pod_label_$1");
    /* the chart has two spaces after "replacement:"; YAML drops them */
    cr_assert_str_eq(r[10].replacement, "__tmp_pod_label_$1");
    cr_assert_eq(r[12].action, CFG_RELABEL_LABELMAP);
    cr_assert_str_eq(r[12].replacement, "$1");

    for (size_t i = 0; i < c->nscrape_configs; i++)
        for (size_t j = 0; j < c->scrape_configs[i].sd.nkubernetes_sd_configs; j++) {
            const char *api = c->scrape_configs[i].sd.kubernetes_sd_configs[j].api_server;
            if (demo)
                cr_assert_str_eq(api, "http://127.0.0.1:16443");
            else
                cr_assert_null(api, "in-cluster mode");
        }
}

Test(linkerd, chart_config_loads_with_all_jobs_and_rules)
{
    struct cfg_config *c = load(SRCDIR "/configs/linkerd-prometheus.yml");
    check_linkerd_jobs(c, false);
    cfg_config_destroy(c);
}

Test(linkerd, demo_config_is_the_chart_config_pointed_at_the_fake_api)
{
    struct cfg_config *c = load(SRCDIR "/configs/demo.yml");
    check_linkerd_jobs(c, true);
    /* nothing but api_server differs: printing both without it gives the same text */
    struct cfg_config *l = load(SRCDIR "/configs/linkerd-prometheus.yml");
    char *a = to_yaml(c), *b = to_yaml(l);
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    char *p;
    static const char cut[] = "api_server: http://127.0.0.1:16443\n    ";
    size_t cl = sizeof cut - 1;
    while ((p = strstr(a, "- api_server: http://127.0.0.1:16443\n    role:")) != NULL)
        memmove(p + 2, p + 2 + cl, strlen(p + 2 + cl) + 1);
    cr_assert_str_eq(a, b);
    free(a);
    free(b);
    cfg_config_destroy(l);
    cfg_config_destroy(c);
}

Test(linkerd, status_config_output_matches_prometheus_layout)
{
    struct cfg_config *c = load(SRCDIR "/configs/linkerd-prometheus.yml");
    char *y = to_yaml(c);
    cr_assert_not_null(y);
    static const char *const want[] = {
        "global:\n  scrape_interval: 10s\n  scrape_timeout: 10s\n  scrape_protocols:\n"
        "  - OpenMetricsText1.0.0\n  - OpenMetricsText0.0.1\n  - PrometheusText0.0.4\n"
        "  evaluation_interval: 10s\n",
        "rule_files:\n- /etc/prometheus/*_rules.yml\n- /etc/prometheus/*_rules.yaml\n",
        "- job_name: prometheus\n  honor_timestamps: true\n  track_timestamps_staleness: false\n"
        "  scrape_interval: 10s\n  scrape_timeout: 10s\n  scrape_protocols:\n"
        "  - OpenMetricsText1.0.0\n  - OpenMetricsText0.0.1\n  - PrometheusText0.0.4\n"
        "  metrics_path: /metrics\n  scheme: http\n  enable_compression: true\n"
        "  follow_redirects: true\n  enable_http2: true\n  static_configs:\n  - targets:\n"
        "    - localhost:9090\n",
        "  authorization:\n    type: Bearer\n"
        "    credentials_file: /var/run/secrets/kubernetes.io/serviceaccount/token\n"
        "  tls_config:\n    ca_file: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt\n"
        "    insecure_skip_verify: true\n  follow_redirects: true\n",
        "  - source_labels: [__meta_kubernetes_pod_phase]\n    separator: ;\n"
        "    regex: (Pending|Running)\n    replacement: $1\n    action: keep\n",
        "  kubernetes_sd_configs:\n  - role: pod\n    kubeconfig_file: \"\"\n"
        "    follow_redirects: true\n    enable_http2: true\n    namespaces:\n"
        "      own_namespace: false\n      names:\n      - linkerd\n      - linkerd-viz\n",
        "  - separator: ;\n    regex: (.*)\n    target_label: __address__\n"
        "    replacement: kubernetes.default.svc:443\n    action: replace\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect(strstr(y, want[i]), "missing:\n%s\n--- in ---\n%s", want[i], y);
    free(y);
    cfg_config_destroy(c);
}

Test(linkerd, examples_load)
{
    char **files = list_yml(SRCDIR "/configs/examples");
    size_t n = 0;
    for (size_t i = 0; files && files[i]; i++, n++)
        cfg_config_destroy(load(files[i]));
    cr_assert_geq(n, 3);
    free_list(files);
}

Test(linkerd, secrets_are_masked)
{
    struct cfg_config *c = load(TESTDATA "/good/http_client.yml");
    char *y = to_yaml(c);
    cr_assert(strstr(y, "password: <secret>"));
    cr_assert(strstr(y, "key: <secret>"));
    cr_assert(strstr(y, "credentials: <secret>"));
    cr_assert(!strstr(y, "secret-password"));
    cr_assert(!strstr(y, "secret-key"));
    cr_assert(!strstr(y, "tok\n"));
    free(y);
    cfg_config_destroy(c);
    c = load(TESTDATA "/good/remote.yml");
    y = to_yaml(c);
    cr_assert(strstr(y, "url: https://user:xxxxx@rw.example/api/v1/write"), "%s", y);
    cr_assert(strstr(y, "secret_key: <secret>"));
    free(y);
    cfg_config_destroy(c);
}
