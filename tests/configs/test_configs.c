/* SPDX-License-Identifier: Apache-2.0 */
/* tests/configs/test_configs.c: the configs module against its fixtures.
 * - load: every good fixture loads; every bad one fails with the expected message at the
 *   expected file:line:column (first line of each bad fixture: "# expect: ..."); defaults are
 *   Prometheus 2.55's.
 * - linkerd: the config Linkerd's viz chart renders, our demo variant and the examples load,
 *   with the chart's jobs and rules; to_yaml prints the layout of /api/v1/status/config.
 * - roundtrip: load -> to_yaml -> load gives the same structs.
 * - alloc: allocation-failure torture, curl style. */
#include <criterion/criterion.h>

#include "common/alloc.h"
#include "common/matcher.h"
#include "common/str.h"
#include "configs/config.h"

#define TESTDATA MP_TESTDATA_DIR
#define SRCDIR MP_SOURCE_DIR

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>



/* Sorted list of *.yml files in dir (full paths), NULL-terminated; free with free_list. */
static char **list_yml(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    size_t n = 0, cap = 16;
    char **v = calloc(cap, sizeof *v);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 4, ".yml") != 0)
            continue;
        if (n + 2 > cap)
            v = realloc(v, (cap *= 2) * sizeof *v);
        size_t plen = strlen(dir) + len + 2;
        v[n] = malloc(plen);
        snprintf(v[n], plen, "%s/%s", dir, de->d_name);
        n++;
    }
    closedir(d);
    v[n] = NULL;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(v[j - 1], v[j]) > 0; j--) {
            char *t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return v;
}

static void free_list(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = '\0';
    if (len)
        *len = got;
    return buf;
}

/* to_yaml into a malloc'ed NUL-terminated string (NULL on failure). */
static char *to_yaml(const struct cfg_config *c)
{
    struct mp_buf b;
    mp_buf_init(&b, 0);
    if (cfg_config_to_yaml(c, &b) != 0) {
        mp_buf_fini(&b);
        return NULL;
    }
    char *s = strdup(b.data ? b.data : "");
    mp_buf_fini(&b);
    return s;
}

/* ---- load ---- */


static struct cfg_config *load_ok(const char *path)
{
    struct cfg_config *c = NULL;
    struct mp_err err;
    mp_err_clear(&err);
    int rc = cfg_config_load_file(path, &c, &err);
    cr_assert_eq(rc, 0, "%s: %s", path, err.msg);
    cr_assert_not_null(c);
    return c;
}

static struct cfg_config *load_str(const char *yaml)
{
    struct cfg_config *c = NULL;
    struct mp_err err;
    mp_err_clear(&err);
    int rc = cfg_config_load_buf("inline.yml", yaml, strlen(yaml), &c, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    return c;
}

static void load_fails(const char *yaml, const char *want)
{
    struct cfg_config *c = NULL;
    struct mp_err err;
    mp_err_clear(&err);
    int rc = cfg_config_load_buf("inline.yml", yaml, strlen(yaml), &c, &err);
    cr_assert_neq(rc, 0, "loaded but wanted: %s", want);
    cr_assert_null(c);
    cr_assert(strstr(err.msg, want), "got %s, want %s", err.msg, want);
}

Test(load, every_good_fixture_loads)
{
    char **files = list_yml(TESTDATA "/good");
    cr_assert_not_null(files);
    size_t n = 0;
    for (size_t i = 0; files[i]; i++, n++)
        cfg_config_destroy(load_ok(files[i]));
    cr_assert_geq(n, 10);
    free_list(files);
}

Test(load, every_bad_fixture_fails_with_message_and_position)
{
    char **files = list_yml(TESTDATA "/bad");
    cr_assert_not_null(files);
    size_t n = 0;
    for (size_t i = 0; files[i]; i++, n++) {
        char *text = read_all(files[i], NULL);
        cr_assert(strncmp(text, "# expect: ", 10) == 0, "%s lacks an expect line", files[i]);
        char *want = text + 10;
        want[strcspn(want, "\n")] = '\0';
        struct cfg_config *c = NULL;
        struct mp_err err;
        mp_err_clear(&err);
        int rc = cfg_config_load_file(files[i], &c, &err);
        cr_expect_eq(rc, MP_EPARSE, "%s: rc %d (%s)", files[i], rc, err.msg);
        cr_expect_null(c);
        char prefix[1024];
        snprintf(prefix, sizeof prefix, "%s:", files[i]);
        cr_expect(strncmp(err.msg, prefix, strlen(prefix)) == 0, "%s: message %s lacks the file",
                  files[i], err.msg);
        cr_expect(strstr(err.msg, want) != NULL, "%s:\n  got  %s\n  want %s", files[i], err.msg,
                  want);
        cfg_config_destroy(c);
        free(text);
    }
    cr_assert_geq(n, 60);
    free_list(files);
}

Test(load, empty_file_gives_the_default_global_config)
{
    struct cfg_config *c = load_ok(TESTDATA "/good/empty.yml");
    cr_assert_eq(c->global.scrape_interval_ms, 60000);
    cr_assert_eq(c->global.scrape_timeout_ms, 10000);
    cr_assert_eq(c->global.evaluation_interval_ms, 60000);
    cr_assert_eq(c->global.nscrape_protocols, 3);
    cr_assert_str_eq(c->global.scrape_protocols[0], "OpenMetricsText1.0.0");
    cr_assert_str_eq(c->global.scrape_protocols[1], "OpenMetricsText0.0.1");
    cr_assert_str_eq(c->global.scrape_protocols[2], "PrometheusText0.0.4");
    cr_assert_eq(c->nscrape_configs, 0);
    cr_assert_eq(c->storage.max_exemplars, 100000);
    cfg_config_destroy(c);
}

Test(load, scrape_relabel_remote_and_alertmanager_defaults)
{
    struct cfg_config *c = load_ok(TESTDATA "/good/defaults.yml");
    const struct cfg_scrape_config *s = cfg_config_find_job(c, "d");
    cr_assert_not_null(s);
    cr_assert_eq(s->scrape_interval_ms, 60000);
    cr_assert_eq(s->scrape_timeout_ms, 10000);
    cr_assert_str_eq(s->metrics_path, "/metrics");
    cr_assert_str_eq(s->scheme, "http");
    cr_assert(s->honor_timestamps && !s->honor_labels && !s->track_timestamps_staleness);
    cr_assert(s->enable_compression);
    cr_assert(s->http.follow_redirects && s->http.enable_http2);
    cr_assert_eq(s->sample_limit, 0);
    cr_assert_eq(s->nscrape_protocols, 3);
    cr_assert_eq(s->relabel_configs.n, 1);
    const struct cfg_relabel *r = &s->relabel_configs.v[0];
    cr_assert_eq(r->action, CFG_RELABEL_REPLACE);
    cr_assert_str_eq(r->separator, ";");
    cr_assert_str_eq(r->regex_src, "(.*)");
    cr_assert_str_eq(r->replacement, "$1");
    cr_assert_str_eq(r->target_label, "x");
    cr_assert_eq(r->nsource_labels, 0);
    cr_assert_not_null(r->regex);
    cr_assert(mp_regex_match(r->regex, MP_STR_LIT("anything")));

    cr_assert_eq(c->nremote_write, 1);
    const struct cfg_remote_write *w = &c->remote_write[0];
    cr_assert_eq(w->remote_timeout_ms, 30000);
    cr_assert_str_eq(w->protobuf_message, "prometheus.WriteRequest");
    cr_assert_eq(w->queue_config.capacity, 10000);
    cr_assert_eq(w->queue_config.max_shards, 50);
    cr_assert_eq(w->queue_config.min_shards, 1);
    cr_assert_eq(w->queue_config.max_samples_per_send, 2000);
    cr_assert_eq(w->queue_config.batch_send_deadline_ms, 5000);
    cr_assert_eq(w->queue_config.min_backoff_ms, 30);
    cr_assert_eq(w->queue_config.max_backoff_ms, 5000);
    cr_assert(!w->queue_config.retry_on_http_429);
    cr_assert_eq(w->queue_config.sample_age_limit_ms, 0);
    cr_assert(w->metadata_config.send);
    cr_assert_eq(w->metadata_config.send_interval_ms, 60000);
    cr_assert_eq(w->metadata_config.max_samples_per_send, 2000);
    cr_assert(!w->send_exemplars && !w->send_native_histograms);
    cr_assert(w->http.follow_redirects && !w->http.enable_http2);

    cr_assert_eq(c->nremote_read, 1);
    cr_assert_eq(c->remote_read[0].remote_timeout_ms, 60000);
    cr_assert(c->remote_read[0].filter_external_labels);
    cr_assert(!c->remote_read[0].read_recent);

    cr_assert_eq(c->alerting.nalertmanagers, 1);
    const struct cfg_alertmanager *am = &c->alerting.alertmanagers[0];
    cr_assert_str_eq(am->scheme, "http");
    cr_assert_eq(am->timeout_ms, 10000);
    cr_assert_str_eq(am->api_version, "v2");
    cr_assert_eq(am->sd.nstatic_configs, 1);
    cfg_config_destroy(c);
}

Test(load, scrape_timeout_inherits_global_capped_by_interval)
{
    struct cfg_config *c = load_ok(TESTDATA "/good/timeout_inherit.yml");
    cr_assert_eq(cfg_config_find_job(c, "short")->scrape_timeout_ms, 5000);
    cr_assert_eq(cfg_config_find_job(c, "long")->scrape_timeout_ms, 20000);
    cr_assert_eq(cfg_config_find_job(c, "long")->scrape_interval_ms, 120000);
    cr_assert_eq(cfg_config_find_job(c, "explicit")->scrape_timeout_ms, 60000);
    cfg_config_destroy(c);
    c = load_ok(TESTDATA "/good/global_short_interval.yml");
    cr_assert_eq(c->global.scrape_timeout_ms, 5000);
    cfg_config_destroy(c);
    c = load_str("global: {scrape_interval: 20s}\nscrape_configs: [{job_name: a}]\n");
    cr_assert_eq(c->scrape_configs[0].scrape_interval_ms, 20000);
    cr_assert_eq(c->scrape_configs[0].scrape_timeout_ms, 10000);
    cfg_config_destroy(c);
    /* exactly equal is allowed, one millisecond more is not */
    cfg_config_destroy(load_str("scrape_configs: [{job_name: a, scrape_interval: 5s, "
                                "scrape_timeout: 5s}]\n"));
    load_fails("scrape_configs: [{job_name: a, scrape_interval: 5s, scrape_timeout: 5001ms}]\n",
               "scrape timeout greater than scrape interval");
}

Test(load, limits_inherit_from_global_and_parse_units)
{
    struct cfg_config *c = load_ok(TESTDATA "/good/limits.yml");
    const struct cfg_scrape_config *a = cfg_config_find_job(c, "inherits");
    cr_assert_eq(a->body_size_limit, (size_t)10 << 20);
    cr_assert_eq(a->sample_limit, 1000);
    cr_assert_eq(a->target_limit, 10);
    cr_assert_eq(a->label_limit, 30);
    cr_assert_eq(a->label_name_length_limit, 200);
    cr_assert_eq(a->label_value_length_limit, 2048);
    cr_assert_eq(a->keep_dropped_targets, 100);
    cr_assert_str_eq(a->scrape_failure_log_file, "/tmp/scrape-failures.log");
    const struct cfg_scrape_config *b = cfg_config_find_job(c, "overrides");
    cr_assert_eq(b->body_size_limit, 1024);
    cr_assert_eq(b->sample_limit, 5);
    cr_assert_eq(b->keep_dropped_targets, 11);
    cr_assert_eq(b->native_histogram_bucket_limit, 160);
    cr_assert_float_eq(b->native_histogram_min_bucket_factor, 1.1, 1e-12);
    cr_assert_eq(cfg_config_find_job(c, "plain-bytes")->body_size_limit, 1536);
    cr_assert_eq(c->global.rule_query_offset_ms, 30000);
    cr_assert_str_eq(c->global.query_log_file, "/tmp/query.log");
    cfg_config_destroy(c);
}

Test(load, yaml_1_1_scalars_and_nulls_as_yaml_v2_reads_them)
{
    struct cfg_config *c = load_ok(TESTDATA "/good/yaml11_scalars.yml");
    const struct cfg_scrape_config *s = cfg_config_find_job(c, "yes");
    cr_assert_not_null(s);
    cr_assert(s->honor_labels);
    cr_assert(!s->honor_timestamps);
    cr_assert(!s->enable_compression);
    cr_assert_eq(s->sample_limit, 16);
    cr_assert_eq(s->label_limit, 1000);
    cr_assert_eq(s->target_limit, 15);
    cr_assert_eq(s->nparams, 1);
    cr_assert_str_eq(s->params[0].name, "module");
    cr_assert_eq(s->params[0].nvalues, 2);
    cr_assert_str_eq(s->params[0].values[1], "on");
    cr_assert_eq(c->global.nexternal_labels, 3);
    cr_assert_str_eq(c->global.external_labels[0].name, "number");
    cr_assert_str_eq(c->global.external_labels[0].value, "10");
    cr_assert_str_eq(c->global.external_labels[1].name, "plain_bool");
    cr_assert_str_eq(c->global.external_labels[1].value, "yes");
    const struct cfg_scrape_config *n = cfg_config_find_job(c, "nulls");
    cr_assert(!n->honor_timestamps, "a null bool is false, as yaml.v2 sets the zero value");
    cr_assert_eq(n->scrape_interval_ms, 60000);
    cr_assert_str_eq(n->metrics_path, "");
    cr_assert_str_eq(n->relabel_configs.v[0].regex_src, "");
    cr_assert(mp_regex_match(n->relabel_configs.v[0].regex, MP_STR_LIT("")));
    cr_assert(!mp_regex_match(n->relabel_configs.v[0].regex, MP_STR_LIT("a")));
    cfg_config_destroy(c);
}

Test(load, anchors_aliases_and_merge_keys)
{
    struct cfg_config *c = load_ok(TESTDATA "/good/merge_keys.yml");
    cr_assert_eq(c->nscrape_configs, 3);
    const struct cfg_scrape_config *d = cfg_config_find_job(c, "derived");
    cr_assert_not_null(d);
    cr_assert_eq(d->scrape_interval_ms, 15000);
    cr_assert_str_eq(d->metrics_path, "/derived");
    cr_assert_eq(d->sd.nstatic_configs, 1);
    cr_assert_eq(d->sd.static_configs[0].ntargets, 2);
    const struct cfg_scrape_config *l = cfg_config_find_job(c, "list");
    cr_assert_not_null(l);
    cr_assert_eq(l->scrape_timeout_ms, 3000);
    cr_assert_str_eq(l->metrics_path, "/base");
    cfg_config_destroy(c);
}

Test(load, relabel_rules_are_parsed_and_compiled)
{
    struct cfg_config *c = load_ok(TESTDATA "/good/relabel_actions.yml");
    const struct cfg_relabels *rs = &c->scrape_configs[0].relabel_configs;
    cr_assert_eq(rs->n, 12);
    static const enum cfg_relabel_action want[] = {
        CFG_RELABEL_REPLACE,   CFG_RELABEL_HASHMOD,   CFG_RELABEL_KEEP,      CFG_RELABEL_DROP,
        CFG_RELABEL_KEEPEQUAL, CFG_RELABEL_DROPEQUAL, CFG_RELABEL_LABELMAP,  CFG_RELABEL_LABELDROP,
        CFG_RELABEL_LABELKEEP, CFG_RELABEL_LOWERCASE, CFG_RELABEL_UPPERCASE, CFG_RELABEL_REPLACE};
    for (size_t i = 0; i < rs->n; i++) {
        cr_assert_eq(rs->v[i].action, want[i], "rule %zu", i);
        cr_assert_not_null(rs->v[i].regex);
    }
    cr_assert_str_eq(rs->v[0].target_label, "host_$1");
    cr_assert(mp_regex_match(rs->v[0].regex, MP_STR_LIT("10.0.0.1:9090")));
    cr_assert(!mp_regex_match(rs->v[0].regex, MP_STR_LIT("x10.0.0.1")));
    cr_assert_eq(rs->v[1].modulus, 4);
    cr_assert_str_eq(rs->v[3].separator, "");
    cr_assert_str_eq(rs->v[6].replacement, "meta_${1}");
    cr_assert_str_eq(rs->v[11].replacement, "");
    cr_assert_str_eq(cfg_relabel_action_name(rs->v[10].action), "uppercase");
    cfg_config_destroy(c);
}

Test(load, bearer_tokens_become_authorization)
{
    struct cfg_config *c = load_ok(TESTDATA "/good/http_client.yml");
    const struct cfg_scrape_config *b = cfg_config_find_job(c, "bearer");
    cr_assert_not_null(b->http.authorization);
    cr_assert_str_eq(b->http.authorization->type, "Bearer");
    cr_assert_str_eq(b->http.authorization->credentials, "tok");
    const struct cfg_scrape_config *f = cfg_config_find_job(c, "bearer-file");
    cr_assert_str_eq(f->http.authorization->credentials_file, "/var/run/token");
    cr_assert_null(f->http.authorization->credentials);
    const struct cfg_scrape_config *a = cfg_config_find_job(c, "authz");
    cr_assert_str_eq(a->http.authorization->type, "Token");
    const struct cfg_scrape_config *s = cfg_config_find_job(c, "basic");
    cr_assert_str_eq(s->http.basic_auth->username, "u");
    cr_assert_eq(s->http.tls_config.min_version, CFG_TLS12);
    cr_assert_eq(s->http.tls_config.max_version, CFG_TLS13);
    cr_assert(!s->http.follow_redirects && !s->http.enable_http2);
    cr_assert_eq(s->http.nhttp_headers, 1);
    cr_assert_str_eq(s->http.http_headers[0].name, "X-Tenant");
    cr_assert_eq(s->http.proxy.nproxy_connect_header, 1);
    const struct cfg_scrape_config *o = cfg_config_find_job(c, "oauth");
    cr_assert_str_eq(o->http.oauth2->token_url, "https://auth.example/token");
    cr_assert_eq(o->http.oauth2->nscopes, 2);
    cr_assert(o->http.oauth2->proxy.proxy_from_environment);
    cfg_config_destroy(c);
}

Test(load, kubernetes_sd_fields)
{
    struct cfg_config *c = load_ok(TESTDATA "/good/kubernetes.yml");
    const struct cfg_sd_configs *sd = &c->scrape_configs[0].sd;
    cr_assert_eq(sd->nkubernetes_sd_configs, 6);
    const struct cfg_kubernetes_sd *k = &sd->kubernetes_sd_configs[0];
    cr_assert_eq(k->role, CFG_K8S_ROLE_ENDPOINTS);
    cr_assert_str_eq(k->api_server, "https://10.0.0.1:6443");
    cr_assert_eq(k->nnamespaces, 2);
    cr_assert_str_eq(k->namespaces[1], "b");
    cr_assert_eq(k->nselectors, 3);
    cr_assert_eq(k->selectors[0].role, CFG_K8S_ROLE_POD);
    cr_assert_str_eq(k->selectors[0].field, "spec.nodeName=node-1");
    cr_assert(k->attach_metadata_node);
    cr_assert_str_eq(k->http.authorization->credentials_file, "/var/run/token");
    cr_assert(!k->http.follow_redirects);
    cr_assert(sd->kubernetes_sd_configs[1].own_namespace);
    cr_assert_null(sd->kubernetes_sd_configs[1].api_server);
    cr_assert_str_eq(sd->kubernetes_sd_configs[2].kubeconfig_file, "/kubeconfig");
    cr_assert_eq(sd->kubernetes_sd_configs[3].role, CFG_K8S_ROLE_ENDPOINTSLICE);
    cr_assert_eq(sd->kubernetes_sd_configs[5].role, CFG_K8S_ROLE_INGRESS);
    cfg_config_destroy(c);
}

Test(load, remote_write_and_read_fields)
{
    struct cfg_config *c = load_ok(TESTDATA "/good/remote.yml");
    const struct cfg_remote_write *w = &c->remote_write[0];
    cr_assert_str_eq(w->name, "primary");
    cr_assert_eq(w->remote_timeout_ms, 10000);
    cr_assert_eq(w->queue_config.capacity, 0, "an explicit 0 stays 0");
    cr_assert_eq(w->queue_config.max_backoff_ms, 60000);
    cr_assert_eq(w->queue_config.sample_age_limit_ms, 300000);
    cr_assert(w->queue_config.retry_on_http_429);
    cr_assert(!w->metadata_config.send);
    cr_assert_str_eq(w->sigv4->region, "eu-west-1");
    cr_assert_str_eq(w->protobuf_message, "io.prometheus.write.v2.Request");
    cr_assert_eq(w->write_relabel_configs.n, 1);
    const struct cfg_remote_read *r = &c->remote_read[0];
    cr_assert(!r->filter_external_labels);
    cr_assert(r->read_recent);
    cr_assert_eq(r->nrequired_matchers, 1);
    cr_assert_eq(r->remote_timeout_ms, 120000);
    cfg_config_destroy(c);
}

Test(load, storage_tracing_otlp_rule_files)
{
    struct cfg_config *c = load_ok(TESTDATA "/good/storage_tracing.yml");
    cr_assert(c->storage.has_tsdb);
    cr_assert_eq(c->storage.out_of_order_time_window_ms, 30 * 60000);
    cr_assert_eq(c->storage.max_exemplars, 5000);
    cr_assert_str_eq(c->tracing.endpoint, "otel-collector:4317");
    cr_assert_str_eq(c->tracing.client_type, "http");
    cr_assert_eq(c->nrule_files, 2);
    cr_assert_eq(c->nscrape_config_files, 1);
    cr_assert_eq(c->notlp_promote_resource_attributes, 2);
    cr_assert_eq(c->global.nscrape_protocols, 3);
    cr_assert_str_eq(c->global.scrape_protocols[0], "PrometheusProto");
    const struct cfg_scrape_config *s = &c->scrape_configs[0];
    cr_assert_eq(s->nscrape_protocols, 1);
    cr_assert(s->scrape_classic_histograms && s->track_timestamps_staleness);
    cfg_config_destroy(c);
}

Test(load, missing_file_is_an_io_error)
{
    struct cfg_config *c = NULL;
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(cfg_config_load_file(TESTDATA "/nope.yml", &c, &err), MP_EIO);
    cr_assert_null(c);
    cr_assert(strstr(err.msg, "nope.yml"));
}

Test(load, only_the_first_document_counts)
{
    struct cfg_config *c = load_str("scrape_configs: [{job_name: a}]\n---\nbogus: 1\n");
    cr_assert_eq(c->nscrape_configs, 1);
    cfg_config_destroy(c);
}

Test(load, inline_error_wording)
{
    load_fails("scrape_configs:\n- job_name: a\n  relabel_configs:\n  - action: KEEPX\n",
               "inline.yml:4:13: unknown relabel action \"KEEPX\"");
    load_fails("scrape_configs:\n- job_name: a\n  static_configs:\n  - targets: [a]\n    foo: 1\n",
               "inline.yml:5:5: field foo not found in type targetgroup.Group");
    load_fails("remote_write: [{url: \"http://a b/\"}]\n", "invalid character in URL");
    load_fails("scrape_configs: [{job_name: a, sample_limit: 1e30}]\n", "into uint");
}

Test(load, destroy_accepts_null)
{
    cfg_config_destroy(NULL);
}

/* ---- linkerd ---- */


static struct cfg_config *load_path(const char *path)
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
    struct cfg_config *c = load_path(SRCDIR "/configs/linkerd-prometheus.yml");
    check_linkerd_jobs(c, false);
    cfg_config_destroy(c);
}

Test(linkerd, demo_config_is_the_chart_config_pointed_at_the_fake_api)
{
    struct cfg_config *c = load_path(SRCDIR "/configs/demo.yml");
    check_linkerd_jobs(c, true);
    /* nothing but api_server differs: printing both without it gives the same text */
    struct cfg_config *l = load_path(SRCDIR "/configs/linkerd-prometheus.yml");
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
    struct cfg_config *c = load_path(SRCDIR "/configs/linkerd-prometheus.yml");
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
        cfg_config_destroy(load_path(files[i]));
    cr_assert_geq(n, 3);
    free_list(files);
}

Test(linkerd, secrets_are_masked)
{
    struct cfg_config *c = load_path(TESTDATA "/good/http_client.yml");
    char *y = to_yaml(c);
    cr_assert(strstr(y, "password: <secret>"));
    cr_assert(strstr(y, "key: <secret>"));
    cr_assert(strstr(y, "credentials: <secret>"));
    cr_assert(!strstr(y, "secret-password"));
    cr_assert(!strstr(y, "secret-key"));
    cr_assert(!strstr(y, "tok\n"));
    free(y);
    cfg_config_destroy(c);
    c = load_path(TESTDATA "/good/remote.yml");
    y = to_yaml(c);
    cr_assert(strstr(y, "url: https://user:xxxxx@rw.example/api/v1/write"), "%s", y);
    cr_assert(strstr(y, "secret_key: <secret>"));
    free(y);
    cfg_config_destroy(c);
}

/* ---- roundtrip ---- */


static bool str_eq(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

#define EQ(x) cr_expect(a->x == b->x, "%s: %s differs", what, #x)
#define SEQ(x) cr_expect(str_eq(a->x, b->x), "%s: %s: '%s' vs '%s'", what, #x, a->x ? a->x : "", \
                         b->x ? b->x : "")

static void cmp_strs(const char *what, char **a, size_t na, char **b, size_t nb)
{
    cr_expect_eq(na, nb, "%s: count", what);
    for (size_t i = 0; i < na && i < nb; i++)
        cr_expect(str_eq(a[i], b[i]), "%s[%zu]: %s vs %s", what, i, a[i], b[i]);
}

static void cmp_labels(const char *what, const struct cfg_label *a, size_t na,
                       const struct cfg_label *b, size_t nb)
{
    cr_expect_eq(na, nb, "%s: count", what);
    for (size_t i = 0; i < na && i < nb; i++)
        cr_expect(str_eq(a[i].name, b[i].name) && str_eq(a[i].value, b[i].value), "%s[%zu]", what,
                  i);
}

static void cmp_relabels(const char *what, const struct cfg_relabels *ra,
                         const struct cfg_relabels *rb)
{
    cr_expect_eq(ra->n, rb->n, "%s: count", what);
    for (size_t i = 0; i < ra->n && i < rb->n; i++) {
        const struct cfg_relabel *a = &ra->v[i], *b = &rb->v[i];
        cmp_strs(what, a->source_labels, a->nsource_labels, b->source_labels, b->nsource_labels);
        SEQ(separator);
        SEQ(regex_src);
        EQ(modulus);
        SEQ(target_label);
        SEQ(replacement);
        EQ(action);
        cr_expect_str_eq(mp_regex_source(a->regex), mp_regex_source(b->regex));
    }
}

static void cmp_tls(const char *what, const struct cfg_tls_config *a,
                    const struct cfg_tls_config *b)
{
    SEQ(ca);
    SEQ(cert);
    SEQ(ca_file);
    SEQ(cert_file);
    SEQ(key_file);
    SEQ(server_name);
    EQ(insecure_skip_verify);
    EQ(min_version);
    EQ(max_version);
    cr_expect_eq(!!a->key, !!b->key, "%s: key presence", what);
}

static void cmp_http(const char *what, const struct cfg_http_client *a,
                     const struct cfg_http_client *b)
{
    cr_expect_eq(!!a->basic_auth, !!b->basic_auth, "%s: basic_auth", what);
    if (a->basic_auth && b->basic_auth)
        cr_expect(str_eq(a->basic_auth->username, b->basic_auth->username) &&
                  str_eq(a->basic_auth->password_file, b->basic_auth->password_file));
    cr_expect_eq(!!a->authorization, !!b->authorization, "%s: authorization", what);
    if (a->authorization && b->authorization)
        cr_expect(str_eq(a->authorization->type, b->authorization->type) &&
                  str_eq(a->authorization->credentials_file, b->authorization->credentials_file));
    cr_expect_eq(!!a->oauth2, !!b->oauth2, "%s: oauth2", what);
    if (a->oauth2 && b->oauth2)
        cr_expect(str_eq(a->oauth2->token_url, b->oauth2->token_url) &&
                  a->oauth2->nscopes == b->oauth2->nscopes);
    cmp_tls(what, &a->tls_config, &b->tls_config);
    EQ(follow_redirects);
    EQ(enable_http2);
    EQ(proxy.proxy_from_environment);
    SEQ(proxy.no_proxy);
    EQ(proxy.nproxy_connect_header);
    EQ(nhttp_headers);
}

static void cmp_sd(const char *what, const struct cfg_sd_configs *a,
                   const struct cfg_sd_configs *b)
{
    EQ(nstatic_configs);
    for (size_t i = 0; i < a->nstatic_configs && i < b->nstatic_configs; i++) {
        cmp_strs(what, a->static_configs[i].targets, a->static_configs[i].ntargets,
                 b->static_configs[i].targets, b->static_configs[i].ntargets);
        cmp_labels(what, a->static_configs[i].labels, a->static_configs[i].nlabels,
                   b->static_configs[i].labels, b->static_configs[i].nlabels);
    }
    EQ(nfile_sd_configs);
    for (size_t i = 0; i < a->nfile_sd_configs && i < b->nfile_sd_configs; i++) {
        cmp_strs(what, a->file_sd_configs[i].files, a->file_sd_configs[i].nfiles,
                 b->file_sd_configs[i].files, b->file_sd_configs[i].nfiles);
        cr_expect_eq(a->file_sd_configs[i].refresh_interval_ms,
                     b->file_sd_configs[i].refresh_interval_ms);
    }
    EQ(nkubernetes_sd_configs);
    for (size_t i = 0; i < a->nkubernetes_sd_configs && i < b->nkubernetes_sd_configs; i++) {
        const struct cfg_kubernetes_sd *ka = &a->kubernetes_sd_configs[i],
                                       *kb = &b->kubernetes_sd_configs[i];
        cr_expect(ka->role == kb->role && ka->own_namespace == kb->own_namespace &&
                      ka->attach_metadata_node == kb->attach_metadata_node &&
                      ka->nselectors == kb->nselectors,
                  "%s: k8s %zu", what, i);
        cr_expect(str_eq(ka->kubeconfig_file, kb->kubeconfig_file));
        cmp_strs(what, ka->namespaces, ka->nnamespaces, kb->namespaces, kb->nnamespaces);
        for (size_t j = 0; j < ka->nselectors && j < kb->nselectors; j++)
            cr_expect(ka->selectors[j].role == kb->selectors[j].role &&
                      str_eq(ka->selectors[j].label, kb->selectors[j].label) &&
                      str_eq(ka->selectors[j].field, kb->selectors[j].field));
        cmp_http(what, &ka->http, &kb->http);
    }
}

static void cmp_config(const char *what, const struct cfg_config *ca, const struct cfg_config *cb)
{
    const struct cfg_global *a = &ca->global, *b = &cb->global;
    EQ(scrape_interval_ms);
    EQ(scrape_timeout_ms);
    EQ(evaluation_interval_ms);
    EQ(rule_query_offset_ms);
    EQ(body_size_limit);
    EQ(sample_limit);
    EQ(keep_dropped_targets);
    SEQ(query_log_file);
    cmp_strs(what, a->scrape_protocols, a->nscrape_protocols, b->scrape_protocols,
             b->nscrape_protocols);
    cmp_labels(what, a->external_labels, a->nexternal_labels, b->external_labels,
               b->nexternal_labels);
    cmp_strs(what, ca->rule_files, ca->nrule_files, cb->rule_files, cb->nrule_files);
    cr_expect_eq(ca->nscrape_configs, cb->nscrape_configs);
    for (size_t i = 0; i < ca->nscrape_configs && i < cb->nscrape_configs; i++) {
        const struct cfg_scrape_config *sa = &ca->scrape_configs[i], *sb = &cb->scrape_configs[i];
        {
            const struct cfg_scrape_config *a2 = sa, *b2 = sb;
#define a a2
#define b b2
            SEQ(job_name);
            EQ(honor_labels);
            EQ(honor_timestamps);
            EQ(track_timestamps_staleness);
            EQ(nparams);
            EQ(scrape_interval_ms);
            EQ(scrape_timeout_ms);
            EQ(scrape_classic_histograms);
            SEQ(metrics_path);
            SEQ(scheme);
            EQ(enable_compression);
            EQ(body_size_limit);
            EQ(sample_limit);
            EQ(target_limit);
            EQ(label_limit);
            EQ(label_name_length_limit);
            EQ(label_value_length_limit);
            EQ(native_histogram_bucket_limit);
            EQ(native_histogram_min_bucket_factor);
            EQ(keep_dropped_targets);
            SEQ(metric_name_validation_scheme);
#undef a
#undef b
        }
        cmp_strs(what, sa->scrape_protocols, sa->nscrape_protocols, sb->scrape_protocols,
                 sb->nscrape_protocols);
        cmp_http(what, &sa->http, &sb->http);
        cmp_relabels(what, &sa->relabel_configs, &sb->relabel_configs);
        cmp_relabels(what, &sa->metric_relabel_configs, &sb->metric_relabel_configs);
        cmp_sd(what, &sa->sd, &sb->sd);
    }
    cr_expect_eq(ca->nremote_write, cb->nremote_write);
    for (size_t i = 0; i < ca->nremote_write && i < cb->nremote_write; i++) {
        const struct cfg_remote_write *wa = &ca->remote_write[i], *wb = &cb->remote_write[i];
        cr_expect(memcmp(&wa->queue_config, &wb->queue_config, sizeof wa->queue_config) == 0,
                  "%s: queue_config", what);
        cr_expect(wa->metadata_config.send == wb->metadata_config.send &&
                  wa->metadata_config.send_interval_ms == wb->metadata_config.send_interval_ms &&
                  wa->metadata_config.max_samples_per_send ==
                      wb->metadata_config.max_samples_per_send);
        cr_expect(wa->remote_timeout_ms == wb->remote_timeout_ms && str_eq(wa->name, wb->name) &&
                  str_eq(wa->protobuf_message, wb->protobuf_message) &&
                  wa->send_exemplars == wb->send_exemplars && !!wa->sigv4 == !!wb->sigv4);
        cmp_labels(what, wa->headers, wa->nheaders, wb->headers, wb->nheaders);
        cmp_relabels(what, &wa->write_relabel_configs, &wb->write_relabel_configs);
        cmp_http(what, &wa->http, &wb->http);
    }
    cr_expect_eq(ca->nremote_read, cb->nremote_read);
    for (size_t i = 0; i < ca->nremote_read && i < cb->nremote_read; i++) {
        const struct cfg_remote_read *ra = &ca->remote_read[i], *rb = &cb->remote_read[i];
        cr_expect(ra->remote_timeout_ms == rb->remote_timeout_ms &&
                  ra->read_recent == rb->read_recent &&
                  ra->filter_external_labels == rb->filter_external_labels);
        cmp_labels(what, ra->required_matchers, ra->nrequired_matchers, rb->required_matchers,
                   rb->nrequired_matchers);
    }
    cr_expect_eq(ca->alerting.nalertmanagers, cb->alerting.nalertmanagers);
    cmp_relabels(what, &ca->alerting.alert_relabel_configs, &cb->alerting.alert_relabel_configs);
    for (size_t i = 0; i < ca->alerting.nalertmanagers && i < cb->alerting.nalertmanagers; i++) {
        const struct cfg_alertmanager *aa = &ca->alerting.alertmanagers[i],
                                      *ab = &cb->alerting.alertmanagers[i];
        cr_expect(str_eq(aa->scheme, ab->scheme) && str_eq(aa->path_prefix, ab->path_prefix) &&
                  aa->timeout_ms == ab->timeout_ms && !!aa->sigv4 == !!ab->sigv4);
        cmp_http(what, &aa->http, &ab->http);
        cmp_relabels(what, &aa->relabel_configs, &ab->relabel_configs);
        cmp_relabels(what, &aa->alert_relabel_configs, &ab->alert_relabel_configs);
        cmp_sd(what, &aa->sd, &ab->sd);
    }
    cr_expect(ca->storage.has_tsdb == cb->storage.has_tsdb &&
              ca->storage.out_of_order_time_window_ms == cb->storage.out_of_order_time_window_ms &&
              ca->storage.max_exemplars == cb->storage.max_exemplars);
    cr_expect(str_eq(ca->tracing.endpoint, cb->tracing.endpoint) &&
              str_eq(ca->tracing.client_type, cb->tracing.client_type) &&
              ca->tracing.sampling_fraction == cb->tracing.sampling_fraction);
    cmp_strs(what, ca->otlp_promote_resource_attributes, ca->notlp_promote_resource_attributes,
             cb->otlp_promote_resource_attributes, cb->notlp_promote_resource_attributes);
}

static void roundtrip(const char *path)
{
    struct cfg_config *a = NULL, *b = NULL;
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(cfg_config_load_file(path, &a, &err), 0, "%s: %s", path, err.msg);
    char *y1 = to_yaml(a);
    cr_assert_not_null(y1);
    mp_err_clear(&err);
    int rc = cfg_config_load_buf("reprinted.yml", y1, strlen(y1), &b, &err);
    cr_assert_eq(rc, 0, "%s: reprinted config does not load: %s\n%s", path, err.msg, y1);
    cmp_config(path, a, b);
    char *y2 = to_yaml(b);
    cr_expect_str_eq(y1, y2, "%s: printing is not stable", path);
    free(y1);
    free(y2);
    cfg_config_destroy(a);
    cfg_config_destroy(b);
}

Test(roundtrip, good_fixtures)
{
    char **files = list_yml(TESTDATA "/good");
    for (size_t i = 0; files && files[i]; i++)
        roundtrip(files[i]);
    free_list(files);
}

Test(roundtrip, linkerd_demo_and_examples)
{
    roundtrip(SRCDIR "/configs/linkerd-prometheus.yml");
    roundtrip(SRCDIR "/configs/demo.yml");
    char **files = list_yml(SRCDIR "/configs/examples");
    for (size_t i = 0; files && files[i]; i++)
        roundtrip(files[i]);
    free_list(files);
}

Test(roundtrip, awkward_strings_are_quoted)
{
    static const char yaml[] =
        "global:\n  external_labels:\n    a: \"true\"\n    b: \"10\"\n    c: \": x\"\n"
        "    d: \"\"\n    e: \"with # hash\"\n    f: \"- dash\"\n    g: \" lead\"\n"
        "    h: \"multi\\nline\"\n    i: \"~\"\n    j: \"0x1F\"\n    k: \"[x]\"\n    l: \"'q'\"\n";
    struct cfg_config *a = NULL, *b = NULL;
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(cfg_config_load_buf("q.yml", yaml, strlen(yaml), &a, &err), 0, "%s", err.msg);
    char *y = to_yaml(a);
    cr_assert_eq(cfg_config_load_buf("q2.yml", y, strlen(y), &b, &err), 0, "%s\n%s", err.msg, y);
    cmp_labels("quoted", a->global.external_labels, a->global.nexternal_labels,
               b->global.external_labels, b->global.nexternal_labels);
    free(y);
    cfg_config_destroy(a);
    cfg_config_destroy(b);
}

/* ---- alloc ---- */


static void torture(const char *path)
{
    size_t len;
    char *text = read_all(path, &len);
    cr_assert_not_null(text);
    /* the regex engine sets up its process-wide PCRE2 contexts on first use and aborts if
     * that fails; do it before failures are injected */
    struct mp_regex *re = NULL;
    cr_assert_eq(mp_regex_compile(MP_STR_LIT("a"), 0, &re, NULL), 0);
    mp_regex_destroy(re);
    size_t base = mp_alloc_used_bytes();
    for (uint64_t n = 1; n < 100000; n++) {
        struct cfg_config *c = NULL;
        struct mp_err err;
        mp_err_clear(&err);
        mp_alloc_fail_at(n);
        int rc = cfg_config_load_buf(path, text, len, &c, &err);
        mp_alloc_fail_at(0);
        if (rc == 0) {
            cr_assert_not_null(c);
            struct mp_buf b;
            mp_buf_init(&b, 0);
            cr_assert_eq(cfg_config_to_yaml(c, &b), 0);
            mp_buf_fini(&b);
            cfg_config_destroy(c);
            cr_assert_eq(mp_alloc_used_bytes(), base, "leak after success");
            cr_assert_gt(n, 1, "no allocation was ever made");
            free(text);
            return;
        }
        cr_assert_eq(rc, MP_ENOMEM, "n=%llu: %s", (unsigned long long)n, err.msg);
        cr_assert_null(c);
        cr_assert_eq(mp_alloc_used_bytes(), base, "n=%llu leaked %zu bytes", (unsigned long long)n,
                     mp_alloc_used_bytes() - base);
    }
    cr_assert_fail("never succeeded");
}

Test(alloc, linkerd_config_survives_every_failed_allocation)
{
    torture(SRCDIR "/configs/linkerd-prometheus.yml");
}

Test(alloc, http_and_remote_fixtures_survive_every_failed_allocation)
{
    torture(TESTDATA "/good/http_client.yml");
    torture(TESTDATA "/good/remote.yml");
}

Test(alloc, to_yaml_reports_a_buffer_limit)
{
    struct cfg_config *c = NULL;
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(cfg_config_load_file(SRCDIR "/configs/linkerd-prometheus.yml", &c, &err), 0);
    struct mp_buf b;
    mp_buf_init(&b, 100);
    cr_assert_eq(cfg_config_to_yaml(c, &b), MP_ELIMIT);
    mp_buf_fini(&b);
    cfg_config_destroy(c);
}
