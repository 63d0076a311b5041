/* SPDX-License-Identifier: Apache-2.0 */
/* tests/configs/test_load.c: every good fixture loads, every bad one fails with the expected
 * message at the expected line:column, and the defaults are Prometheus 2.55's. */
#include <criterion/criterion.h>

#include "common/matcher.h"
#include "configs/config.h"
#include "testutil.h"

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
