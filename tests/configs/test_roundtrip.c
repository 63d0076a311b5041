/* SPDX-License-Identifier: Apache-2.0 */
/* tests/configs/test_roundtrip.c: load -> to_yaml -> load gives the same structs, for every
 * good fixture, the Linkerd configs and the examples. */
#include <criterion/criterion.h>

#include "common/matcher.h"
#include "configs/config.h"
#include "testutil.h"

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
