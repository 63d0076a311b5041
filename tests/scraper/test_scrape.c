/* SPDX-License-Identifier: Apache-2.0 */
/* tests/scraper/test_scrape.c: the scrape manager end to end (protocols.md 1.1-1.2, 2.3-2.7):
 * a local HTTP endpoint, a manager with 100-200 ms intervals over a tsdb in a temp dir, and
 * what lands in the tsdb: samples, report series, honor_labels, metric relabeling, stale
 * markers, limits, target info, metadata and the scrape cache's hit path. Waits are bounded
 * by a deadline; nothing asserts on speed. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/labels.h"
#include "scraper/scrape_internal.h"
#include "support_scrape.h"
#include "tsdb/tsdb.h"

#define JOB(extra)                                                                                 \
    "scrape_configs:\n"                                                                            \
    "  - job_name: j\n"                                                                            \
    "    scrape_interval: 500ms\n"                                                                 \
    "    scrape_timeout: 450ms\n" extra

static const char *const ADDR_ONLY[] = {NULL};

static void one_target(struct world *w)
{
    const char *addrs[] = {world_addr(w), NULL};
    world_sync(w, "j", addrs, ADDR_ONLY);
}

/* A world scraping one target at /metrics that serves body (text, no Content-Type) with
 * job j configured by JOB(extra). */
static void start(struct world *w, const char *body, const char *extra)
{
    world_init(w);
    mock_set(w->http, "/metrics", 200, NULL, body, false, 0);
    char yaml[2048];
    snprintf(yaml, sizeof yaml, JOB("%s"), extra);
    world_config(w, "%s", yaml);
    one_target(w);
}

Test(scrape, text_samples_and_report_series)
{
    struct world w;
    world_init(&w);
    mock_set(w.http, "/metrics", 200, "text/plain; version=0.0.4",
             "# HELP a_total A counter.\n# TYPE a_total counter\na_total 1\nb{x=\"y\"} 2.5\n",
             false, 0);
    world_config(&w, JOB(""));
    one_target(&w);
    cr_assert(wait_samples(w.db, "up", NULL, 3));

    char lbl[512];
    cr_assert(db_series_labels(w.db, "b", lbl, sizeof lbl));
    char want[256];
    snprintf(want, sizeof want, "{__name__=\"b\", instance=\"%s\", job=\"j\", x=\"y\"}",
             world_addr(&w));
    cr_assert_str_eq(lbl, want);
    struct sample s;
    cr_assert(db_last(w.db, "a_total", NULL, &s));
    cr_assert_eq(s.v, 1);
    cr_assert(db_last(w.db, "up", NULL, &s));
    cr_assert_eq(s.v, 1);
    cr_assert(db_last(w.db, "scrape_samples_scraped", NULL, &s));
    cr_assert_eq(s.v, 2);
    cr_assert(db_last(w.db, "scrape_samples_post_metric_relabeling", NULL, &s));
    cr_assert_eq(s.v, 2);
    cr_assert(db_last(w.db, "scrape_duration_seconds", NULL, &s));
    cr_assert(s.v > 0 && s.v < 10);
    /* series_added: 2 on the first scrape, 0 after */
    struct sample sa[64];
    size_t n = 0;
    db_samples(w.db, "scrape_series_added", NULL, sa, 64, &n);
    cr_assert_geq(n, 2);
    cr_assert_eq(sa[0].v, 2);
    cr_assert_eq(sa[n - 1].v, 0);
    /* every sample of one attempt carries the same timestamp */
    struct sample up, b;
    cr_assert(db_last(w.db, "up", NULL, &up));
    cr_assert(db_last(w.db, "b", NULL, &b));
    cr_assert(b.t <= up.t);

    /* request headers (protocols.md 1.1) */
    char h[512];
    mock_header(w.http, "/metrics", "Accept", h, sizeof h);
    cr_assert_str_eq(h, SCRAPE_ACCEPT_DEFAULT);
    mock_header(w.http, "/metrics", "User-Agent", h, sizeof h);
    cr_assert_str_eq(h, "Prometheus/2.55.1");
    mock_header(w.http, "/metrics", "X-Prometheus-Scrape-Timeout-Seconds", h, sizeof h);
    cr_assert_str_eq(h, "0.45");
    mock_header(w.http, "/metrics", "Accept-Encoding", h, sizeof h);
    cr_assert_str_eq(h, "gzip");
    world_fini(&w);
}

struct md_ctx {
    char help[128], unit[64];
    enum scrape_metric_type type;
    int found;
};

static void take_md(void *ctx, const struct scrape_metadata_info *md)
{
    struct md_ctx *c = ctx;
    if (!mp_str_eq(md->metric, MP_STR_LIT("om_seconds")))
        return;
    c->found++;
    c->type = md->type;
    snprintf(c->help, sizeof c->help, "%.*s", (int)md->help.len, md->help.ptr);
    snprintf(c->unit, sizeof c->unit, "%.*s", (int)md->unit.len, md->unit.ptr);
}

Test(scrape, openmetrics_gzip_and_metadata)
{
    struct world w;
    world_init(&w);
    mock_set(w.http, "/metrics", 200, "application/openmetrics-text; version=1.0.0; charset=utf-8",
             "# TYPE om_seconds counter\n# HELP om_seconds Help \\\" q\n# UNIT om_seconds seconds\n"
             "om_seconds_total{a=\"b\"} 17\n# EOF\n",
             true, 0);
    world_config(&w, JOB(""));
    one_target(&w);
    const char *const ab[] = {"a", "b", NULL};
    cr_assert(wait_samples(w.db, "om_seconds_total", ab, 2));
    struct sample s;
    cr_assert(db_last(w.db, "om_seconds_total", ab, &s));
    cr_assert_eq(s.v, 17);
    struct md_ctx c = {.found = 0};
    scrape_manager_metadata(w.sm, take_md, &c);
    cr_assert_eq(c.found, 1);
    cr_assert_eq(c.type, SCRAPE_TYPE_COUNTER);
    cr_assert_str_eq(c.help, "Help \" q");
    cr_assert_str_eq(c.unit, "seconds");
    world_fini(&w);
}

Test(scrape, honor_labels_false_moves_conflicts_to_exported)
{
    struct world w;
    start(&w, "m{job=\"inner2\",exported_job=\"pre\"} 1\n", "");
    cr_assert(wait_samples(w.db, "up", NULL, 2));
    char lbl[512], want[512];
    cr_assert(db_series_labels(w.db, "m", lbl, sizeof lbl));
    snprintf(want, sizeof want,
             "{__name__=\"m\", exported_exported_job=\"inner2\", exported_job=\"pre\", "
             "instance=\"%s\", job=\"j\"}",
             world_addr(&w));
    cr_assert_str_eq(lbl, want);
    world_fini(&w);
}

Test(scrape, honor_labels_true_keeps_scraped_values)
{
    struct world w;
    start(&w, "m{job=\"inner\",instance=\"\"} 1\n", "    honor_labels: true\n");
    cr_assert(wait_samples(w.db, "up", NULL, 2));
    char lbl[512];
    cr_assert(db_series_labels(w.db, "m", lbl, sizeof lbl));
    /* the empty instance blocks the target label and then disappears */
    cr_assert_str_eq(lbl, "{__name__=\"m\", job=\"inner\"}");
    /* report series ignore honor_labels */
    const char *const jj[] = {"job", "j", NULL};
    cr_assert_geq(db_count(w.db, "up", jj), 2);
    world_fini(&w);
}

Test(scrape, metric_relabel_drop_and_honor_timestamps)
{
    struct world w;
    start(&w, "keep_me 1\ndrop_me 2\nwith_ts 3 1000\n",
          "    honor_timestamps: false\n"
          "    metric_relabel_configs:\n"
          "      - source_labels: [__name__]\n"
          "        regex: drop_me\n"
          "        action: drop\n");
    cr_assert(wait_samples(w.db, "up", NULL, 2));
    cr_assert_geq(db_count(w.db, "keep_me", NULL), 1);
    cr_assert_eq(db_count(w.db, "drop_me", NULL), 0);
    struct sample s, up;
    cr_assert(db_last(w.db, "scrape_samples_scraped", NULL, &s));
    cr_assert_eq(s.v, 3);
    cr_assert(db_last(w.db, "scrape_samples_post_metric_relabeling", NULL, &s));
    cr_assert_eq(s.v, 2);
    /* honor_timestamps: false replaces the exposed 1000 with the scrape time */
    cr_assert(db_last(w.db, "with_ts", NULL, &s));
    cr_assert(db_last(w.db, "up", NULL, &up));
    cr_assert_gt(s.t, 1000);
    world_fini(&w);
}

Test(scrape, exposed_timestamps_are_kept)
{
    struct world w;
    world_init(&w);
    int64_t now = (int64_t)time(NULL) * 1000;
    char body[128];
    snprintf(body, sizeof body, "with_ts 3 %lld\n", (long long)(now - 5000));
    mock_set(w.http, "/metrics", 200, NULL, body, false, 0);
    world_config(&w, JOB(""));
    one_target(&w);
    cr_assert(wait_samples(w.db, "up", NULL, 2));
    struct sample s;
    cr_assert(db_last(w.db, "with_ts", NULL, &s));
    cr_assert_eq(s.t, now - 5000);
    world_fini(&w);
}

struct stale_ctx {
    struct tsdb *db;
    const char *name;
};

static bool last_is_stale(void *ctx)
{
    struct stale_ctx *c = ctx;
    struct sample s;
    return db_last(c->db, c->name, NULL, &s) && is_stale(s.v);
}

Test(scrape, vanished_series_get_stale_markers)
{
    struct world w;
    start(&w, "stays 1\ngoes 2\n", "");
    cr_assert(wait_samples(w.db, "goes", NULL, 2));
    mock_set(w.http, "/metrics", 200, NULL, "stays 1\n", false, 0);
    struct stale_ctx c = {w.db, "goes"};
    cr_assert(wait_for(last_is_stale, &c));
    struct sample s[256];
    size_t n = 0;
    db_samples(w.db, "goes", NULL, s, 256, &n);
    cr_assert_eq(tsdb_f64_bits(s[n - 1].v), TSDB_STALE_NAN_BITS);
    /* exactly one marker */
    size_t stale = 0;
    for (size_t i = 0; i < n; i++)
        stale += is_stale(s[i].v);
    usleep(1100000); /* two more attempts */
    db_samples(w.db, "goes", NULL, s, 256, &n);
    size_t stale2 = 0;
    for (size_t i = 0; i < n; i++)
        stale2 += is_stale(s[i].v);
    cr_assert_eq(stale, 1);
    cr_assert_eq(stale2, 1);
    struct sample st;
    cr_assert(db_last(w.db, "stays", NULL, &st));
    cr_assert_not(is_stale(st.v));
    world_fini(&w);
}

struct health_ctx {
    struct world *w;
    enum scrape_health want;
};

static bool has_health(void *ctx)
{
    struct health_ctx *c = ctx;
    struct tinfo ti;
    world_target(c->w, &ti);
    return ti.health == c->want;
}

static void wait_health(struct world *w, enum scrape_health h)
{
    struct health_ctx c = {w, h};
    cr_assert(wait_for(has_health, &c), "health %d not reached", (int)h);
}

Test(scrape, failed_scrape_marks_series_stale_and_reports_error)
{
    struct world w;
    start(&w, "m 1\n", "");
    cr_assert(wait_samples(w.db, "m", NULL, 2));
    wait_health(&w, SCRAPE_HEALTH_UP);
    mock_set(w.http, "/metrics", 404, NULL, "gone\n", false, 0);
    wait_health(&w, SCRAPE_HEALTH_DOWN);
    struct stale_ctx c = {w.db, "m"};
    cr_assert(wait_for(last_is_stale, &c));
    struct tinfo ti;
    world_target(&w, &ti);
    cr_assert_str_eq(ti.last_error, "server returned HTTP status 404 Not Found");
    struct sample s;
    cr_assert(db_last(w.db, "up", NULL, &s));
    cr_assert_eq(s.v, 0);
    cr_assert(db_last(w.db, "scrape_samples_scraped", NULL, &s));
    cr_assert_eq(s.v, 0);
    /* recovery */
    mock_set(w.http, "/metrics", 200, NULL, "m 2\n", false, 0);
    wait_health(&w, SCRAPE_HEALTH_UP);
    cr_assert(wait_samples(w.db, "m", NULL, 3));
    world_fini(&w);
}

Test(scrape, timeout_fails_the_scrape)
{
    struct world w;
    world_init(&w);
    mock_set(w.http, "/metrics", 200, NULL, "m 1\n", false, 250);
    world_config(&w, "scrape_configs:\n"
                     "  - job_name: j\n"
                     "    scrape_interval: 200ms\n"
                     "    scrape_timeout: 50ms\n");
    one_target(&w);
    wait_health(&w, SCRAPE_HEALTH_DOWN);
    struct tinfo ti;
    world_target(&w, &ti);
    char want[256];
    snprintf(want, sizeof want, "Get \"http://%s/metrics\": context deadline exceeded",
             world_addr(&w));
    cr_assert_str_eq(ti.last_error, want);
    cr_assert_eq(db_count(w.db, "m", NULL), 0);
    struct sample s;
    cr_assert(db_last(w.db, "up", NULL, &s));
    cr_assert_eq(s.v, 0);
    world_fini(&w);
}

struct err_ctx {
    struct world *w;
    const char *prefix;
};

static bool has_error(void *ctx)
{
    struct err_ctx *c = ctx;
    struct tinfo ti;
    world_target(c->w, &ti);
    return strncmp(ti.last_error, c->prefix, strlen(c->prefix)) == 0;
}

/* Every attempt fails (waits for err_prefix: a loaded machine may also time one out); no
 * sample is stored; some attempt reported want_scraped lines (unless negative). */
static void expect_failure(const char *yaml_extra, const char *body, const char *err_prefix,
                           double want_scraped)
{
    struct world w;
    start(&w, body, yaml_extra);
    struct err_ctx ec = {&w, err_prefix};
    struct tinfo ti;
    world_target(&w, &ti);
    cr_assert(wait_for(has_error, &ec), "error: %s", ti.last_error);
    cr_assert_eq(db_count(w.db, "m", NULL), 0);
    cr_assert_eq(db_count(w.db, "n", NULL), 0);
    struct sample s[256];
    size_t n = 0;
    db_samples(w.db, "up", NULL, s, 256, &n);
    cr_assert_gt(n, 0);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(s[i].v, 0);
    if (want_scraped >= 0) {
        db_samples(w.db, "scrape_samples_scraped", NULL, s, 256, &n);
        bool seen = false;
        for (size_t i = 0; i < n; i++)
            seen = seen || s[i].v == want_scraped;
        cr_assert(seen, "no attempt reported %g samples", want_scraped);
    }
    world_fini(&w);
}

Test(scrape, sample_limit)
{
    expect_failure("    sample_limit: 2\n", "m 1\nn 2\no 3\n", "sample limit exceeded", 3);
}

Test(scrape, body_size_limit)
{
    /* 8 bytes: a body of exactly the limit fails too (Prometheus reads limit bytes) */
    expect_failure("    body_size_limit: 8B\n", "m 1\nn 2\n", "body size limit exceeded", 0);
}

Test(scrape, label_limit)
{
    expect_failure("    label_limit: 3\n", "m{a=\"1\",b=\"2\"} 1\n",
                   "label_limit exceeded (metric: m{a=\"1\",b=\"2\"}, number of labels: 5, "
                   "limit: 3)",
                   1);
}

Test(scrape, label_value_length_limit)
{
    expect_failure("    label_value_length_limit: 3\n", "m{a=\"long\"} 1\n",
                   "label_value_length_limit exceeded (metric: m{a=\"long\"}, label name: a, "
                   "value: \"long\", length: 4, limit: 3)",
                   1);
}

Test(scrape, parse_error)
{
    expect_failure("", "m 1\nn{ 2\n", "line 2", 1);
}

Test(scrape, removed_target_gets_stale_markers)
{
    struct world w;
    start(&w, "m 1\n", "");
    cr_assert(wait_samples(w.db, "m", NULL, 2));
    const char *none[] = {NULL};
    world_sync(&w, "j", none, ADDR_ONLY);
    struct stale_ctx c = {w.db, "m"}, u = {w.db, "up"};
    cr_assert(wait_for(last_is_stale, &c));
    cr_assert(wait_for(last_is_stale, &u));
    struct stale_ctx d = {w.db, "scrape_series_added"};
    cr_assert(wait_for(last_is_stale, &d));
    struct tinfo ti;
    world_target(&w, &ti);
    cr_assert_eq(ti.nactive, 0);
    world_fini(&w);
}

Test(scrape, removed_job_gets_stale_markers)
{
    struct world w;
    start(&w, "m 1\n", "");
    cr_assert(wait_samples(w.db, "m", NULL, 2));
    world_config(&w, "scrape_configs:\n"
                     "  - job_name: other\n"
                     "    scrape_interval: 100ms\n");
    struct stale_ctx c = {w.db, "m"};
    cr_assert(wait_for(last_is_stale, &c));
    world_fini(&w);
}

Test(scrape, unchanged_config_keeps_the_target)
{
    struct world w;
    start(&w, "m 1\n", "");
    cr_assert(wait_samples(w.db, "m", NULL, 2));
    struct scrape_test_stats a, b;
    scrape_manager_test_stats(w.sm, &a);
    world_config(&w, JOB("")); /* same config, new object */
    one_target(&w);            /* same targets */
    size_t before = db_count(w.db, "m", NULL);
    cr_assert(wait_samples(w.db, "m", NULL, before + 3));
    scrape_manager_test_stats(w.sm, &b);
    cr_assert_eq(b.cache_misses, a.cache_misses, "the cache was kept");
    struct sample s[256];
    size_t n = 0;
    db_samples(w.db, "m", NULL, s, 256, &n);
    for (size_t i = 0; i < n; i++)
        cr_assert_not(is_stale(s[i].v));
    world_fini(&w);
}

Test(scrape, cache_hits_append_by_ref)
{
    struct world w;
    world_init(&w);
    char body[4096] = "";
    for (int i = 0; i < 50; i++)
        snprintf(body + strlen(body), sizeof body - strlen(body), "s{i=\"%d\"} %d\n", i, i);
    mock_set(w.http, "/metrics", 200, NULL, body, false, 0);
    world_config(&w, JOB(""));
    one_target(&w);
    cr_assert(wait_samples(w.db, "up", NULL, 2));
    struct scrape_test_stats a, b;
    scrape_manager_test_stats(w.sm, &a);
    cr_assert(wait_samples(w.db, "up", NULL, 5));
    scrape_manager_test_stats(w.sm, &b);
    cr_assert_eq(a.cache_misses, 50);
    cr_assert_eq(b.cache_misses, 50, "no label building for known series");
    cr_assert_eq(b.adds_by_labels, a.adds_by_labels, "steady state adds only by ref");
    cr_assert_geq(b.adds_by_ref - a.adds_by_ref, 55 * (b.scrapes - a.scrapes));
    world_fini(&w);
}

Test(scrape, target_info_and_dropped_targets)
{
    struct world w;
    world_init(&w);
    mock_set(w.http, "/metrics", 200, NULL, "m 1\n", false, 0);
    world_config(&w, JOB("    params:\n"
                         "      foo: [bar]\n"
                         "    relabel_configs:\n"
                         "      - source_labels: [__address__]\n"
                         "        regex: '127.*'\n"
                         "        action: keep\n"));
    const char *addrs[] = {world_addr(&w), "10.0.0.1:80", NULL};
    const char *gl[] = {"team", "a", NULL};
    world_sync(&w, "j", addrs, gl);
    wait_health(&w, SCRAPE_HEALTH_UP);
    struct tinfo ti;
    world_target(&w, &ti);
    cr_assert_eq(ti.nactive, 1);
    cr_assert_eq(ti.ndropped, 1);
    cr_assert_str_eq(ti.pool, "j");
    char want[1024];
    snprintf(want, sizeof want, "http://%s/metrics?foo=bar", world_addr(&w));
    cr_assert_str_eq(ti.url, want);
    snprintf(want, sizeof want, "{instance=\"%s\", job=\"j\", team=\"a\"}", world_addr(&w));
    cr_assert_str_eq(ti.labels, want);
    cr_assert(strstr(ti.discovered, "__address__=") != NULL);
    cr_assert(strstr(ti.discovered, "__param_foo=\"bar\"") != NULL);
    cr_assert_str_eq(ti.last_error, "");
    cr_assert_gt(ti.last_scrape_ms, 0);
    world_fini(&w);
}

Test(scrape, target_limit)
{
    struct world w;
    world_init(&w);
    mock_set(w.http, "/metrics", 200, NULL, "m 1\n", false, 0);
    mock_set(w.http, "/other", 200, NULL, "m 1\n", false, 0);
    world_config(&w, JOB("    target_limit: 1\n"));
    char a2[64];
    snprintf(a2, sizeof a2, "localhost:%u", mock_port(w.http));
    const char *addrs[] = {world_addr(&w), a2, NULL};
    world_sync(&w, "j", addrs, ADDR_ONLY);
    wait_health(&w, SCRAPE_HEALTH_DOWN);
    struct tinfo ti;
    world_target(&w, &ti);
    cr_assert_str_eq(ti.last_error, "target_limit exceeded (number of targets: 2, limit: 1)");
    cr_assert_eq(mock_hits(w.http, "/metrics"), 0);
    world_fini(&w);
}

struct up_ctx {
    struct tsdb *db;
    size_t want;
};

/* every one of want targets was scraped successfully twice (a slow sanitizer run may time
 * out now and then: that is up=0, not a failure of the test) */
static bool all_up(void *ctx)
{
    struct up_ctx *c = ctx;
    char idx[24];
    for (size_t i = 0; i < c->want; i++) {
        snprintf(idx, sizeof idx, "%zu", i);
        const char *const pairs[] = {"idx", idx, NULL};
        if (db_count(c->db, "m", pairs) < 2)
            return false;
    }
    return true;
}

/* A world whose manager runs `threads` loops and whose job j turns each "addr#i" target
 * into address addr, query ?i=i and label idx="i" (many targets on one mock endpoint). */
static void start_indexed(struct world *w, int threads, int interval_ms)
{
    world_init(w);
    scrape_manager_destroy(w->sm);
    struct scrape_manager_opts mo;
    scrape_manager_opts_init(&mo);
    mo.db = w->db;
    mo.threads = threads;
    cr_assert_eq(scrape_manager_create(&mo, &w->sm, NULL), 0);
    mock_set(w->http, "/metrics", 200, NULL, "m 1\n", false, 0);
    world_config(w,
                 "scrape_configs:\n"
                 "  - job_name: j\n"
                 "    scrape_interval: %dms\n"
                 "    scrape_timeout: %dms\n"
                 "    relabel_configs:\n"
                 "      - source_labels: [__address__]\n"
                 "        regex: '.*#(.*)'\n"
                 "        target_label: idx\n"
                 "      - source_labels: [__address__]\n"
                 "        regex: '.*#(.*)'\n"
                 "        target_label: __param_i\n"
                 "      - source_labels: [__address__]\n"
                 "        regex: '(.*)#.*'\n"
                 "        target_label: __address__\n",
                 interval_ms, interval_ms * 5 / 6);
}

Test(scrape, many_targets_on_two_threads)
{
    struct world w;
    start_indexed(&w, 2, 300); /* 40 targets, one endpoint */
    const char *addrs[41];
    char buf[40][64];
    for (int i = 0; i < 40; i++) {
        snprintf(buf[i], sizeof buf[i], "%s#%d", world_addr(&w), i);
        addrs[i] = buf[i];
    }
    addrs[40] = NULL;
    world_sync(&w, "j", addrs, ADDR_ONLY);
    struct up_ctx c = {w.db, 40};
    cr_assert(wait_for(all_up, &c));
    struct tinfo ti;
    world_target(&w, &ti);
    cr_assert_eq(ti.nactive, 40);
    struct sample s[8];
    size_t n;
    cr_assert_eq(db_samples(w.db, "m", NULL, s, 8, &n), 40);
    /* the same 40 again: nothing restarts, no stale markers */
    world_sync(&w, "j", addrs, ADDR_ONLY);
    usleep(500000);
    const char *const i0[] = {"idx", "0", NULL};
    struct sample last;
    cr_assert(db_last(w.db, "m", i0, &last));
    cr_assert_not(is_stale(last.v));
    world_fini(&w);
}

/* Targets "addr#i" for i in [lo, hi) of a start_indexed world. */
static void sync_range(struct world *w, int lo, int hi)
{
    static char buf[64][64];
    const char *addrs[65];
    int n = 0;
    for (int i = lo; i < hi && n < 64; i++, n++) {
        snprintf(buf[n], sizeof buf[n], "%s#%d", world_addr(w), i);
        addrs[n] = buf[n];
    }
    addrs[n] = NULL;
    world_sync(w, "j", addrs, ADDR_ONLY);
}

struct idx_ctx {
    struct tsdb *db;
    int lo, hi;
    bool stale; /* want the last sample of m{idx} stale, else at least 2 fresh ones */
};

static bool idx_state(void *ctx)
{
    struct idx_ctx *c = ctx;
    char idx[24];
    for (int i = c->lo; i < c->hi; i++) {
        snprintf(idx, sizeof idx, "%d", i);
        const char *const pairs[] = {"idx", idx, NULL};
        struct sample s;
        if (!db_last(c->db, "m", pairs, &s) || is_stale(s.v) != c->stale)
            return false;
        if (!c->stale && db_count(c->db, "m", pairs) < 2)
            return false;
    }
    return true;
}

/* Targets spread over three loop threads: removing some writes stale markers for exactly
 * those (from whichever thread owns them), the rest keep scraping, new ones start, and a
 * removed target that comes back scrapes again. */
Test(scrape, targets_added_and_removed_across_three_threads)
{
    struct world w;
    start_indexed(&w, 3, 200);
    sync_range(&w, 0, 24);
    struct idx_ctx up0 = {w.db, 0, 24, false};
    cr_assert(wait_for(idx_state, &up0));
    sync_range(&w, 0, 12); /* 12..23 go */
    struct idx_ctx gone = {w.db, 12, 24, true};
    cr_assert(wait_for(idx_state, &gone), "every removed target's series is stale");
    sync_range(&w, 0, 18); /* 12..17 come back */
    struct idx_ctx back = {w.db, 0, 18, false};
    cr_assert(wait_for(idx_state, &back));
    struct idx_ctx still = {w.db, 18, 24, true};
    cr_assert(idx_state(&still));
    /* the kept ones never got a marker */
    struct sample s[256];
    size_t n = 0;
    const char *const i0[] = {"idx", "3", NULL};
    db_samples(w.db, "m", i0, s, 256, &n);
    for (size_t i = 0; i < n; i++)
        cr_assert_not(is_stale(s[i].v));
    struct tinfo ti;
    world_target(&w, &ti);
    cr_assert_eq(ti.nactive, 18);
    world_fini(&w);
}

/* Two texts that metric relabeling turns into one label set share one series record: while
 * either is exposed the series is not stale; when both vanish it gets one marker. */
Test(scrape, texts_relabeled_to_one_series_share_staleness)
{
    struct world w;
    start(&w, "a{x=\"1\"} 1\na{x=\"2\"} 1\n",
          "    metric_relabel_configs:\n"
          "      - action: labeldrop\n"
          "        regex: x\n");
    cr_assert(wait_samples(w.db, "a", NULL, 2));
    mock_set(w.http, "/metrics", 200, NULL, "a{x=\"2\"} 1\n", false, 0);
    size_t before = db_count(w.db, "up", NULL);
    cr_assert(wait_samples(w.db, "up", NULL, before + 3));
    struct sample s[256];
    size_t n = 0;
    cr_assert_eq(db_samples(w.db, "a", NULL, s, 256, &n), 1);
    for (size_t i = 0; i < n; i++)
        cr_assert_not(is_stale(s[i].v), "sample %zu", i);
    mock_set(w.http, "/metrics", 200, NULL, "other 1\n", false, 0);
    struct stale_ctx c = {w.db, "a"};
    cr_assert(wait_for(last_is_stale, &c));
    before = db_count(w.db, "up", NULL);
    cr_assert(wait_samples(w.db, "up", NULL, before + 2));
    db_samples(w.db, "a", NULL, s, 256, &n);
    size_t stale = 0;
    for (size_t i = 0; i < n; i++)
        stale += is_stale(s[i].v);
    cr_assert_eq(stale, 1);
    world_fini(&w);
}

/* Series whose only sample is 4 h old leave the head at the next compaction while the
 * target still exposes them; when their samples are recent again, the cached refs are
 * unknown to the head, so the loop parses those lines again (from the batch, and from the
 * single add of an exposed timestamp) and adds them by labels as new series. */
Test(scrape, a_ref_the_head_dropped_is_rebuilt_from_the_line)
{
    struct world w;
    int64_t now = (int64_t)time(NULL) * 1000, old = now - 4 * 3600 * 1000;
    char body[160];
    snprintf(body, sizeof body, "old 3 %lld\nold_ts 3 %lld\nnew 1\n", (long long)old,
             (long long)old);
    start(&w, body, "");
    cr_assert(wait_samples(w.db, "new", NULL, 2));
    struct sample s;
    cr_assert(db_last(w.db, "old", NULL, &s));
    struct tsdb_head_stats h0, h1;
    tsdb_head_stats_get(w.db, &h0);
    struct mp_err err = {0};
    cr_assert_eq(tsdb_compact(w.db, &err), 0, "%s", err.msg);
    tsdb_head_stats_get(w.db, &h1);
    cr_assert_eq(h1.num_series, h0.num_series - 2, "the old series left the head");
    struct scrape_test_stats a, b;
    scrape_manager_test_stats(w.sm, &a);
    snprintf(body, sizeof body, "old 4\nold_ts 5 %lld\nnew 1\n", (long long)now);
    mock_set(w.http, "/metrics", 200, NULL, body, false, 0);
    size_t before = db_count(w.db, "up", NULL);
    cr_assert(wait_samples(w.db, "up", NULL, before + 3));
    scrape_manager_test_stats(w.sm, &b);
    cr_assert_eq(b.cache_misses, a.cache_misses, "the texts were known");
    cr_assert_geq(b.adds_by_labels - a.adds_by_labels, 2, "the lost refs' lines by labels");
    cr_assert(db_last(w.db, "old", NULL, &s));
    cr_assert_eq(s.v, 4);
    cr_assert_gt(s.t, old);
    cr_assert(db_last(w.db, "old_ts", NULL, &s));
    cr_assert_eq(s.v, 5);
    cr_assert_eq(s.t, now);
    cr_assert(db_last(w.db, "up", NULL, &s));
    cr_assert_eq(s.v, 1);
    world_fini(&w);
}

Test(scrape, exposed_timestamps_are_not_marked_stale)
{
    struct world w;
    int64_t now = (int64_t)time(NULL) * 1000;
    char body[128];
    snprintf(body, sizeof body, "with_ts 3 %lld\nplain 1\n", (long long)(now - 5000));
    start(&w, body, "");
    cr_assert(wait_samples(w.db, "plain", NULL, 2));
    mock_set(w.http, "/metrics", 200, NULL, "other 1\n", false, 0);
    struct stale_ctx c = {w.db, "plain"};
    cr_assert(wait_for(last_is_stale, &c));
    struct sample s;
    cr_assert(db_last(w.db, "with_ts", NULL, &s));
    cr_assert_not(is_stale(s.v));
    world_fini(&w);
}

Test(scrape, targets_synced_before_the_config_start_with_it)
{
    struct world w;
    world_init(&w);
    mock_set(w.http, "/metrics", 200, NULL, "m 1\n", false, 0);
    one_target(&w); /* no pool "j" yet: the set is kept */
    world_config(&w, JOB(""));
    cr_assert(wait_samples(w.db, "m", NULL, 2));
    /* the job goes away and comes back: its last target set comes back with it */
    world_config(&w, "scrape_configs:\n  - job_name: other\n");
    struct stale_ctx c = {w.db, "m"};
    cr_assert(wait_for(last_is_stale, &c));
    world_config(&w, JOB(""));
    wait_health(&w, SCRAPE_HEALTH_UP);
    world_fini(&w);
}

Test(scrape, target_that_cannot_be_set_up_reports_why)
{
    struct world w;
    start(&w, "m 1\n",
          "    tls_config:\n"
          "      ca_file: /nonexistent/ca.crt\n");
    wait_health(&w, SCRAPE_HEALTH_DOWN);
    struct tinfo ti;
    world_target(&w, &ti);
    cr_assert_str_eq(ti.last_error, "unable to load specified CA cert /nonexistent/ca.crt: open "
                                    "/nonexistent/ca.crt: no such file or directory");
    cr_assert_eq(mock_hits(w.http, "/metrics"), 0);
    world_fini(&w);
}

/* One target configured with JOB(extra): header name of its request is want. */
static void expect_header(const char *extra, const char *name, const char *want)
{
    struct world w;
    start(&w, "m 1\n", extra);
    cr_assert(wait_samples(w.db, "m", NULL, 1));
    char h[512];
    mock_header(w.http, "/metrics", name, h, sizeof h);
    cr_assert_str_eq(h, want, "%s", name);
    world_fini(&w);
}

Test(scrape, compression_off_asks_for_identity)
{
    expect_header("    enable_compression: false\n", "Accept-Encoding", "identity");
}

Test(scrape, scrape_protocols_shape_the_accept_header)
{
    expect_header("    scrape_protocols: [PrometheusText0.0.4]\n", "Accept",
                  "text/plain;version=0.0.4;q=0.5,*/*;q=0.4");
}

#define BASIC_AUTH_AND_HEADER                                                                      \
    "    basic_auth:\n"                                                                            \
    "      username: u\n"                                                                          \
    "      password: p\n"                                                                          \
    "    http_headers:\n"                                                                          \
    "      X-Mesh:\n"                                                                              \
    "        values: [a]\n"

Test(scrape, basic_auth_and_custom_headers)
{
    expect_header(BASIC_AUTH_AND_HEADER, "Authorization", "Basic dTpw");
    expect_header(BASIC_AUTH_AND_HEADER, "X-Mesh", "a");
}

Test(scrape, bearer_token)
{
    expect_header("    authorization:\n      credentials: secret\n", "Authorization",
                  "Bearer secret");
}

static char *big_body(int n, int v)
{
    size_t cap = (size_t)n * 48 + 1, len = 0;
    char *b = malloc(cap);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(b + len, cap - len, "big_series_with_a_long_name{i=\"%d\"} %d\n", i,
                                v);
    return b;
}

struct scraped_ctx {
    struct world *w;
    double want;
};

static bool scraped_is(void *ctx)
{
    struct scraped_ctx *c = ctx;
    struct sample s;
    return db_last(c->w->db, "scrape_samples_scraped", NULL, &s) && s.v == c->want;
}

/* Body buffers are sized from the target's last body: a body that grows past that size, one
 * that shrinks and one that grows again must each arrive whole. */
Test(scrape, bodies_larger_and_smaller_than_the_last_arrive_whole)
{
    struct world w;
    world_init(&w);
    const int sizes[] = {2000, 6000, 50, 4000};
    world_config(&w, JOB(""));
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        char *body = big_body(sizes[k], (int)k + 1);
        mock_set(w.http, "/metrics", 200, NULL, body, false, 0);
        free(body);
        if (k == 0)
            one_target(&w);
        struct scraped_ctx c = {&w, sizes[k]};
        cr_assert(wait_for(scraped_is, &c), "body %zu: %d lines", k, sizes[k]);
        char idx[16];
        snprintf(idx, sizeof idx, "%d", sizes[k] - 1);
        const char *pairs[] = {"i", idx, NULL};
        struct sample s;
        cr_assert(db_last(w.db, "big_series_with_a_long_name", pairs, &s));
        cr_assert_eq(s.v, (double)k + 1, "the last line of body %zu", k);
    }
    world_fini(&w);
}

static uint64_t same_hash(const void *text, size_t len)
{
    (void)text, (void)len;
    return 1;
}

struct value_ctx {
    struct tsdb *db;
    const char *name;
    const char *const *pairs;
    double v;
};

static bool last_value_is(void *ctx)
{
    struct value_ctx *c = ctx;
    struct sample s;
    return db_last(c->db, c->name, c->pairs, &s) && s.v == c->v;
}

static void wait_value(struct world *w, const char *name, const char *const *pairs, double v)
{
    struct value_ctx c = {w->db, name, pairs, v};
    cr_assert(wait_for(last_value_is, &c), "%s: %g not reached", name, v);
}

/* Every text hashes alike (low half) and the body changes order, values and lines between
 * scrapes: each line's sample still lands in its own series (the cache's order guesses and
 * its lookups both check the whole key and the text's length). */
Test(scrape, colliding_hashes_and_changing_bodies_keep_series_apart)
{
    scrape_cache_test_hash = same_hash;
    struct world w;
    start(&w, "a{x=\"1\"} 1\na{x=\"2\"} 2\nb 3\nc{x=\"} 1\"} 4\n", "");
    static const char *const x1[] = {"x", "1", NULL}, *const x2[] = {"x", "2", NULL},
                             *const xc[] = {"x", "} 1", NULL};
    cr_assert(wait_samples(w.db, "up", NULL, 2));
    wait_value(&w, "a", x1, 1);
    wait_value(&w, "a", x2, 2);
    wait_value(&w, "b", NULL, 3);
    wait_value(&w, "c", xc, 4);
    mock_set(w.http, "/metrics", 200, NULL,
             "c{x=\"} 1\"} 40\nb {x=\"9\"} 39\na{x=\"2\"} 20\nnew 5\nb 30\n", false, 0);
    static const char *const x9[] = {"x", "9", NULL};
    wait_value(&w, "b", x9, 39);
    wait_value(&w, "c", xc, 40);
    wait_value(&w, "a", x2, 20);
    wait_value(&w, "b", NULL, 30);
    wait_value(&w, "new", NULL, 5);
    struct sample s;
    cr_assert(db_last(w.db, "a", x1, &s));
    cr_assert(s.v == 1 || is_stale(s.v), "a{x=1} got no other text's sample");
    cr_assert_eq(db_samples(w.db, "b", NULL, &s, 1, &(size_t){0}), 2, "b and b{x=9}");
    world_fini(&w);
    scrape_cache_test_hash = NULL;
}
