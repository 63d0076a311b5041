/* SPDX-License-Identifier: Apache-2.0 */
/* web/api_status.c: /api/v1/status/..., targets, targets/metadata, metadata, scrape_pools,
 * rules, alerts, alertmanagers (protocols.md 4.4, 4.5).
 *
 * Targets and metadata come from the scrape manager through the deps' function pointers;
 * without a manager the answers are the empty shapes Prometheus gives with no scrape configs.
 * There is no rule manager and no notifier: rules, alerts and alertmanagers are empty.
 * Objects that Prometheus marshals from Go maps (flags, metadata) are written with sorted
 * keys, as encoding/json does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "common/time.h"
#include "query/query.h"
#include "scraper/scraper.h"
#include "tsdb/tsdb.h"
#include "web/api_internal.h"

static void send_empty_object(struct web_response *resp, const char *const *keys, size_t n,
                              bool arrays)
{
    struct web_api_out o;
    web_api_begin(&o);
    web_json_obj_begin(&o.w);
    for (size_t i = 0; i < n; i++) {
        web_json_key(&o.w, keys[i]);
        if (arrays) {
            web_json_arr_begin(&o.w);
            web_json_arr_end(&o.w);
        }
    }
    web_json_obj_end(&o.w);
    web_api_end(&o, resp, NULL, 0, NULL, 0);
    web_api_out_fini(&o);
}

static void h_rules(void *ctx, const struct web_request *req, struct web_response *resp)
{
    static const char *const k[] = {"groups"};
    send_empty_object(resp, k, 1, true);
}

static void h_alerts(void *ctx, const struct web_request *req, struct web_response *resp)
{
    static const char *const k[] = {"alerts"};
    send_empty_object(resp, k, 1, true);
}

static void h_alertmanagers(void *ctx, const struct web_request *req, struct web_response *resp)
{
    static const char *const k[] = {"activeAlertmanagers", "droppedAlertmanagers"};
    send_empty_object(resp, k, 2, true);
}

/* ---- status ---- */

static void h_config(void *ctx, const struct web_request *req, struct web_response *resp)
{
    struct web_api *api = ctx;
    struct mp_buf y;
    mp_buf_init(&y, 0);
    struct mp_err e;
    mp_err_clear(&e);
    if (api->d.config_yaml && api->d.config_yaml(api->d.ctx, &y, &e) != 0) {
        mp_buf_fini(&y);
        web_api_error(resp, WEB_API_INTERNAL, e.msg);
        return;
    }
    struct web_api_out o;
    web_api_begin(&o);
    web_json_obj_begin(&o.w);
    web_json_key(&o.w, "yaml");
    web_json_str(&o.w, (struct mp_str){y.data ? y.data : "", y.len});
    web_json_obj_end(&o.w);
    mp_buf_fini(&y);
    web_api_end(&o, resp, NULL, 0, NULL, 0);
    web_api_out_fini(&o);
}

struct pair {
    char *name, *value;
};

struct pairs {
    struct pair *p;
    size_t n, cap;
};

static void pairs_add(void *ctx, const char *name, const char *value)
{
    struct pairs *ps = ctx;
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? ps->cap * 2 : 64;
        ps->p = mp_xrealloc(ps->p, ps->cap * sizeof *ps->p);
    }
    ps->p[ps->n].name = mp_xstrdup(name);
    ps->p[ps->n].value = mp_xstrdup(value ? value : "");
    ps->n++;
}

static int cmp_pair(const void *a, const void *b)
{
    return strcmp(((const struct pair *)a)->name, ((const struct pair *)b)->name);
}

static void h_flags(void *ctx, const struct web_request *req, struct web_response *resp)
{
    struct web_api *api = ctx;
    struct pairs ps = {0};
    if (api->d.flags)
        api->d.flags(api->d.ctx, pairs_add, &ps);
    if (ps.n)
        qsort(ps.p, ps.n, sizeof *ps.p, cmp_pair);
    struct web_api_out o;
    web_api_begin(&o);
    web_json_obj_begin(&o.w);
    for (size_t i = 0; i < ps.n; i++) {
        web_json_key_str(&o.w, mp_str_c(ps.p[i].name));
        web_json_cstr(&o.w, ps.p[i].value);
        mp_free(ps.p[i].name);
        mp_free(ps.p[i].value);
    }
    mp_free(ps.p);
    web_json_obj_end(&o.w);
    web_api_end(&o, resp, NULL, 0, NULL, 0);
    web_api_out_fini(&o);
}

/* Go time.Time JSON: RFC 3339 with nanoseconds, trailing zeros dropped; the zero time for 0. */
static void json_time(struct web_json *w, int64_t ms)
{
    char buf[MP_TIME_FMT_MAX];
    if (ms == 0)
        snprintf(buf, sizeof buf, "0001-01-01T00:00:00Z");
    else
        mp_time_format_rfc3339_nano(ms * 1000000, buf, sizeof buf);
    web_json_cstr(w, buf);
}

static int64_t thread_count(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 1;
    char line[256];
    long long n = 1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %lld", &n) == 1)
            break;
    fclose(f);
    return n;
}

static void h_runtimeinfo(void *ctx, const struct web_request *req, struct web_response *resp)
{
    struct web_api *api = ctx;
    struct web_api_runtime rt = {.reload_config_success = true};
    if (api->d.runtime)
        api->d.runtime(api->d.ctx, &rt);
    struct web_api_out o;
    web_api_begin(&o);
    struct web_json *w = &o.w;
    web_json_obj_begin(w);
    web_json_key(w, "startTime");
    json_time(w, api->d.start_time_ms);
    web_json_key(w, "CWD");
    web_json_cstr(w, api->cwd);
    web_json_key(w, "reloadConfigSuccess");
    web_json_bool(w, rt.reload_config_success);
    web_json_key(w, "lastConfigTime");
    json_time(w, rt.last_config_time_ms);
    web_json_key(w, "corruptionCount");
    web_json_i64(w, rt.corruption_count);
    web_json_key(w, "goroutineCount"); /* threads: the nearest thing we have */
    web_json_i64(w, thread_count());
    web_json_key(w, "GOMAXPROCS");
    web_json_i64(w, sysconf(_SC_NPROCESSORS_ONLN));
    web_json_key(w, "GOMEMLIMIT");
    web_json_i64(w, INT64_MAX);
    web_json_key(w, "GOGC");
    web_json_cstr(w, "");
    web_json_key(w, "GODEBUG");
    web_json_cstr(w, "");
    web_json_key(w, "storageRetention");
    web_json_cstr(w, api->d.storage_retention);
    web_json_obj_end(w);
    web_api_end(&o, resp, NULL, 0, NULL, 0);
    web_api_out_fini(&o);
}

static void h_buildinfo(void *ctx, const struct web_request *req, struct web_response *resp)
{
    struct web_api *api = ctx;
    const char *const kv[][2] = {
        {"version", api->d.version},      {"revision", api->d.revision},
        {"branch", api->d.branch},        {"buildUser", api->d.build_user},
        {"buildDate", api->d.build_date}, {"goVersion", api->d.go_version},
    };
    struct web_api_out o;
    web_api_begin(&o);
    web_json_obj_begin(&o.w);
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
        web_json_key(&o.w, kv[i][0]);
        web_json_cstr(&o.w, kv[i][1]);
    }
    web_json_obj_end(&o.w);
    web_api_end(&o, resp, NULL, 0, NULL, 0);
    web_api_out_fini(&o);
}

static void card_list(struct web_json *w, const char *key, const struct tsdb_card_entry *e,
                      size_t n)
{
    web_json_key(w, key);
    web_json_arr_begin(w);
    for (size_t i = 0; i < n; i++) {
        web_json_obj_begin(w);
        web_json_key(w, "name");
        web_json_cstr(w, e[i].name);
        web_json_key(w, "value");
        web_json_u64(w, e[i].count);
        web_json_obj_end(w);
    }
    web_json_arr_end(w);
}

static void h_tsdb(void *ctx, const struct web_request *req, struct web_response *resp)
{
    struct web_api *api = ctx;
    size_t limit = 10;
    struct mp_str v;
    if (web_request_param(req, "limit", &v) && v.len) {
        char buf[24];
        char *end = NULL;
        long long n = 0;
        if (v.len < sizeof buf) {
            memcpy(buf, v.ptr, v.len);
            buf[v.len] = '\0';
            n = strtoll(buf, &end, 10);
        }
        if (!end || *end || n < 1) {
            web_api_error(resp, WEB_API_BAD_DATA, "limit must be a positive number");
            return;
        }
        limit = (size_t)n;
    }
    struct tsdb_card_stats cs;
    struct mp_err e;
    mp_err_clear(&e);
    if (tsdb_card_stats_get(api->d.db, limit, &cs, &e) != 0) {
        web_api_errorf(resp, WEB_API_INTERNAL, "error getting head stats: %s", e.msg);
        return;
    }
    struct web_api_out o;
    web_api_begin(&o);
    struct web_json *w = &o.w;
    web_json_obj_begin(w);
    web_json_key(w, "headStats");
    web_json_obj_begin(w);
    web_json_key(w, "numSeries");
    web_json_u64(w, cs.head.num_series);
    web_json_key(w, "numLabelPairs");
    web_json_u64(w, cs.head.num_label_pairs);
    web_json_key(w, "chunkCount");
    web_json_u64(w, cs.head.num_chunks);
    web_json_key(w, "minTime");
    web_json_i64(w, cs.head.min_time_ms);
    web_json_key(w, "maxTime");
    web_json_i64(w, cs.head.max_time_ms);
    web_json_obj_end(w);
    card_list(w, "seriesCountByMetricName", cs.series_by_metric, cs.n_series_by_metric);
    card_list(w, "labelValueCountByLabelName", cs.label_value_counts, cs.n_label_value_counts);
    card_list(w, "memoryInBytesByLabelName", cs.memory_by_label, cs.n_memory_by_label);
    card_list(w, "seriesCountByLabelValuePair", cs.series_by_label_pair, cs.n_series_by_label_pair);
    web_json_obj_end(w);
    tsdb_card_stats_fini(&cs);
    web_api_end(&o, resp, NULL, 0, NULL, 0);
    web_api_out_fini(&o);
}

/* The WAL has been replayed before the server turns ready; no progress is tracked. */
static void h_walreplay(void *ctx, const struct web_request *req, struct web_response *resp)
{
    static const char *const k[] = {"min", "max", "current"};
    struct web_api_out o;
    web_api_begin(&o);
    web_json_obj_begin(&o.w);
    for (size_t i = 0; i < 3; i++) {
        web_json_key(&o.w, k[i]);
        web_json_i64(&o.w, 0);
    }
    web_json_obj_end(&o.w);
    web_api_end(&o, resp, NULL, 0, NULL, 0);
    web_api_out_fini(&o);
}

/* ---- targets ---- */

#define MAX_POOL_FILTER 64

struct targets_walk {
    struct web_json *w;
    bool dropped_pass;
    struct mp_str pools[MAX_POOL_FILTER];
    size_t npools;
    /* dropped counts per pool, in the callback's pool order */
    char **cpool;
    size_t *count;
    size_t ncount;
};

static bool pool_wanted(const struct targets_walk *tw, const char *pool)
{
    if (tw->npools == 0)
        return true;
    for (size_t i = 0; i < tw->npools; i++)
        if (mp_str_eq(tw->pools[i], mp_str_c(pool)))
            return true;
    return false;
}

static void dur_str(struct web_json *w, int64_t ms)
{
    char buf[64];
    mp_duration_format(ms, buf, sizeof buf);
    web_json_cstr(w, buf);
}

static void on_target(void *ctx, const struct scrape_target_info *t)
{
    struct targets_walk *tw = ctx;
    bool dropped = t->labels == NULL;
    if (dropped != tw->dropped_pass || !t->pool)
        return;
    if (!pool_wanted(tw, t->pool))
        return;
    if (dropped) {
        size_t i = 0;
        while (i < tw->ncount && strcmp(tw->cpool[i], t->pool) != 0)
            i++;
        if (i == tw->ncount) {
            tw->cpool = mp_xrealloc(tw->cpool, (i + 1) * sizeof *tw->cpool);
            tw->count = mp_xrealloc(tw->count, (i + 1) * sizeof *tw->count);
            tw->cpool[i] = mp_xstrdup(t->pool);
            tw->count[i] = 0;
            tw->ncount++;
        }
        tw->count[i]++;
    }
    struct web_json *w = tw->w;
    web_json_obj_begin(w);
    web_json_key(w, "discoveredLabels");
    web_json_labels(w, t->discovered);
    if (!dropped) {
        static const char *const health[] = {"unknown", "up", "down"};
        web_json_key(w, "labels");
        web_json_labels(w, t->labels);
        web_json_key(w, "scrapePool");
        web_json_cstr(w, t->pool);
        web_json_key(w, "scrapeUrl");
        web_json_cstr(w, t->url);
        web_json_key(w, "globalUrl");
        web_json_cstr(w, t->url);
        web_json_key(w, "lastError");
        web_json_cstr(w, t->last_error);
        web_json_key(w, "lastScrape");
        json_time(w, t->last_scrape_ms);
        web_json_key(w, "lastScrapeDuration");
        web_json_f64(w, t->last_duration_s);
        web_json_key(w, "health");
        web_json_cstr(w, health[t->health <= SCRAPE_HEALTH_DOWN ? t->health : 0]);
        web_json_key(w, "scrapeInterval");
        dur_str(w, t->interval_ms);
        web_json_key(w, "scrapeTimeout");
        dur_str(w, t->timeout_ms);
    }
    web_json_obj_end(w);
}

static void h_targets(void *ctx, const struct web_request *req, struct web_response *resp)
{
    struct web_api *api = ctx;
    struct mp_str st = {"", 0};
    web_request_query_param(req, "state", &st);
    bool any = st.len == 0 || (st.len == 3 && strncasecmp(st.ptr, "any", 3) == 0);
    bool active = any || (st.len == 6 && strncasecmp(st.ptr, "active", 6) == 0);
    bool dropped = any || (st.len == 7 && strncasecmp(st.ptr, "dropped", 7) == 0);
    struct targets_walk tw = {0};
    struct mp_str pool;
    if (web_request_query_param(req, "scrapePool", &pool) && pool.len) {
        tw.pools[0] = pool;
        tw.npools = 1;
    }
    bool have = api->d.scrape && api->d.targets;
    struct web_api_out o;
    web_api_begin(&o);
    tw.w = &o.w;
    web_json_obj_begin(&o.w);
    web_json_key(&o.w, "activeTargets");
    web_json_arr_begin(&o.w);
    if (have && active)
        api->d.targets(api->d.scrape, true, false, on_target, &tw);
    web_json_arr_end(&o.w);
    web_json_key(&o.w, "droppedTargets");
    web_json_arr_begin(&o.w);
    tw.dropped_pass = true;
    if (have && dropped)
        api->d.targets(api->d.scrape, false, true, on_target, &tw);
    web_json_arr_end(&o.w);
    web_json_key(&o.w, "droppedTargetCounts");
    if (dropped) {
        web_json_obj_begin(&o.w);
        for (size_t i = 0; i < tw.ncount; i++) {
            web_json_key_str(&o.w, mp_str_c(tw.cpool[i]));
            web_json_u64(&o.w, tw.count[i]);
        }
        web_json_obj_end(&o.w);
    } else {
        web_json_raw(&o.w, "null", 4);
    }
    for (size_t i = 0; i < tw.ncount; i++)
        mp_free(tw.cpool[i]);
    mp_free(tw.cpool);
    mp_free(tw.count);
    web_json_obj_end(&o.w);
    web_api_end(&o, resp, NULL, 0, NULL, 0);
    web_api_out_fini(&o);
}

/* scrape_pools: the pools that have active targets, sorted, each once. */
struct pool_names {
    char **s;
    size_t n;
};

static void on_pool(void *ctx, const struct scrape_target_info *t)
{
    struct pool_names *p = ctx;
    if (!t->pool || (p->n && strcmp(p->s[p->n - 1], t->pool) == 0))
        return;
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->s[i], t->pool) == 0)
            return;
    p->s = mp_xrealloc(p->s, (p->n + 1) * sizeof *p->s);
    p->s[p->n++] = mp_xstrdup(t->pool);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void h_scrape_pools(void *ctx, const struct web_request *req, struct web_response *resp)
{
    struct web_api *api = ctx;
    struct pool_names p = {0};
    if (api->d.scrape && api->d.targets)
        api->d.targets(api->d.scrape, true, true, on_pool, &p);
    if (p.n)
        qsort(p.s, p.n, sizeof *p.s, cmp_str);
    struct web_api_out o;
    web_api_begin(&o);
    web_json_obj_begin(&o.w);
    web_json_key(&o.w, "scrapePools");
    web_json_arr_begin(&o.w);
    for (size_t i = 0; i < p.n; i++) {
        web_json_cstr(&o.w, p.s[i]);
        mp_free(p.s[i]);
    }
    mp_free(p.s);
    web_json_arr_end(&o.w);
    web_json_obj_end(&o.w);
    web_api_end(&o, resp, NULL, 0, NULL, 0);
    web_api_out_fini(&o);
}

/* ---- metadata ---- */

/* "limit must be a number" style integer parameter; -1 when absent. */
static int int_param(const struct web_request *req, struct web_response *resp, const char *name,
                     long long *out)
{
    struct mp_str v;
    *out = -1;
    if (!web_request_param(req, name, &v) || v.len == 0)
        return 0;
    char buf[24];
    char *end = NULL;
    if (v.len < sizeof buf) {
        memcpy(buf, v.ptr, v.len);
        buf[v.len] = '\0';
        *out = strtoll(buf, &end, 10);
    }
    if (!end || *end) {
        web_api_errorf(resp, WEB_API_BAD_DATA, "%s must be a number", name);
        return MP_EPARSE;
    }
    return 0;
}

struct md_entry {
    char *metric;
    enum scrape_metric_type type;
    char *help, *unit;
    const struct mp_labels *target; /* only during the walk */
    struct mp_labels *target_ref;
};

struct md_walk {
    struct md_entry *e;
    size_t n, cap;
    struct mp_str metric; /* filter; empty: all */
    /* targets/metadata */
    bool per_target;
    const struct mp_matcher *const *tm;
    size_t ntm;
};

static void on_metadata(void *ctx, const struct scrape_metadata_info *md)
{
    struct md_walk *mw = ctx;
    if (mw->metric.len && !mp_str_eq(mw->metric, md->metric))
        return;
    if (mw->per_target) {
        for (size_t i = 0; i < mw->ntm; i++)
            if (!mp_matcher_matches(mw->tm[i],
                                    mp_labels_get(md->target, mp_matcher_name(mw->tm[i]))))
                return;
    }
    if (mw->n == mw->cap) {
        mw->cap = mw->cap ? mw->cap * 2 : 64;
        mw->e = mp_xrealloc(mw->e, mw->cap * sizeof *mw->e);
    }
    struct md_entry *e = &mw->e[mw->n++];
    e->metric = mp_xstrndup(md->metric.ptr ? md->metric.ptr : "", md->metric.len);
    e->type = md->type;
    e->help = mp_xstrndup(md->help.ptr ? md->help.ptr : "", md->help.len);
    e->unit = mp_xstrndup(md->unit.ptr ? md->unit.ptr : "", md->unit.len);
    e->target_ref = mw->per_target && md->target ? mp_labels_acquire(md->target) : NULL;
}

static void md_walk_fini(struct md_walk *mw)
{
    for (size_t i = 0; i < mw->n; i++) {
        mp_free(mw->e[i].metric);
        mp_free(mw->e[i].help);
        mp_free(mw->e[i].unit);
        mp_labels_release(mw->e[i].target_ref);
    }
    mp_free(mw->e);
}

static int cmp_md(const void *a, const void *b)
{
    /* stable enough: by metric, then first-seen order is kept by the index tiebreak below */
    const struct md_entry *x = a, *y = b;
    int c = strcmp(x->metric, y->metric);
    if (c)
        return c;
    return x < y ? -1 : x > y;
}

static void md_fields(struct web_json *w, const struct md_entry *e)
{
    /* scraper.h's type names, without linking the scraper */
    static const char *const names[] = {[SCRAPE_TYPE_UNKNOWN] = "unknown",
                                        [SCRAPE_TYPE_COUNTER] = "counter",
                                        [SCRAPE_TYPE_GAUGE] = "gauge",
                                        [SCRAPE_TYPE_HISTOGRAM] = "histogram",
                                        [SCRAPE_TYPE_GAUGEHISTOGRAM] = "gaugehistogram",
                                        [SCRAPE_TYPE_SUMMARY] = "summary",
                                        [SCRAPE_TYPE_INFO] = "info",
                                        [SCRAPE_TYPE_STATESET] = "stateset"};
    web_json_key(w, "type");
    web_json_cstr(w,
                  (unsigned)e->type < sizeof names / sizeof names[0] ? names[e->type] : "unknown");
    web_json_key(w, "help");
    web_json_cstr(w, e->help);
    web_json_key(w, "unit");
    web_json_cstr(w, e->unit);
}

static void h_metadata(void *ctx, const struct web_request *req, struct web_response *resp)
{
    struct web_api *api = ctx;
    long long limit, per_metric;
    if (int_param(req, resp, "limit", &limit) != 0 ||
        int_param(req, resp, "limit_per_metric", &per_metric) != 0)
        return;
    struct md_walk mw = {0};
    web_request_param(req, "metric", &mw.metric);
    if (api->d.scrape && api->d.metadata)
        api->d.metadata(api->d.scrape, on_metadata, &mw);
    /* group by metric (sorted keys, as Go's map marshalling); entries once per metric */
    if (mw.n)
        qsort(mw.e, mw.n, sizeof *mw.e, cmp_md);
    struct web_api_out o;
    web_api_begin(&o);
    web_json_obj_begin(&o.w);
    long long metrics = 0;
    for (size_t i = 0; i < mw.n;) {
        size_t j = i;
        while (j < mw.n && strcmp(mw.e[j].metric, mw.e[i].metric) == 0)
            j++;
        if (limit >= 0 && metrics >= limit)
            break;
        metrics++;
        web_json_key_str(&o.w, mp_str_c(mw.e[i].metric));
        web_json_arr_begin(&o.w);
        long long written = 0;
        for (size_t k = i; k < j; k++) {
            bool seen = false;
            for (size_t p = i; p < k && !seen; p++)
                seen = mw.e[p].type == mw.e[k].type && strcmp(mw.e[p].help, mw.e[k].help) == 0 &&
                       strcmp(mw.e[p].unit, mw.e[k].unit) == 0;
            if (seen)
                continue;
            if (per_metric > 0 && written >= per_metric)
                break;
            written++;
            web_json_obj_begin(&o.w);
            md_fields(&o.w, &mw.e[k]);
            web_json_obj_end(&o.w);
        }
        web_json_arr_end(&o.w);
        i = j;
    }
    web_json_obj_end(&o.w);
    md_walk_fini(&mw);
    web_api_end(&o, resp, NULL, 0, NULL, 0);
    web_api_out_fini(&o);
}

static void h_targets_metadata(void *ctx, const struct web_request *req, struct web_response *resp)
{
    struct web_api *api = ctx;
    long long limit;
    if (int_param(req, resp, "limit", &limit) != 0)
        return;
    struct md_walk mw = {.per_target = true};
    struct query_expr *sel = NULL;
    struct mp_str mt;
    if (web_request_param(req, "match_target", &mt) && mt.len) {
        struct query_parse_error pe;
        int rc = query_parse(mt.ptr, mt.len, NULL, &sel, &pe);
        if (rc == 0 && query_expr_kind(sel) != QUERY_VECTOR_SELECTOR) {
            rc = MP_EPARSE;
            snprintf(pe.msg, sizeof pe.msg, "1:1: parse error: expected a series selector");
        }
        if (rc != 0) {
            query_expr_free(sel);
            web_api_errorf(resp, WEB_API_BAD_DATA, "invalid parameter \"match_target\": %s",
                           rc == MP_EPARSE ? pe.msg : mp_strerror(rc));
            return;
        }
        mw.ntm = query_selector_nmatchers(sel);
        const struct mp_matcher **tm = mp_xmalloc((mw.ntm ? mw.ntm : 1) * sizeof *tm);
        for (size_t i = 0; i < mw.ntm; i++)
            tm[i] = query_selector_matcher(sel, i);
        mw.tm = tm;
    }
    web_request_param(req, "metric", &mw.metric);
    bool with_metric = mw.metric.len > 0;
    if (api->d.scrape && api->d.metadata)
        api->d.metadata(api->d.scrape, on_metadata, &mw);
    struct web_api_out o;
    web_api_begin(&o);
    web_json_arr_begin(&o.w);
    for (size_t i = 0; i < mw.n; i++) {
        if (limit >= 0 && (long long)i >= limit)
            break;
        web_json_obj_begin(&o.w);
        web_json_key(&o.w, "target");
        web_json_labels(&o.w, mw.e[i].target_ref);
        if (!with_metric) {
            web_json_key(&o.w, "metric");
            web_json_cstr(&o.w, mw.e[i].metric);
        }
        md_fields(&o.w, &mw.e[i]);
        web_json_obj_end(&o.w);
    }
    web_json_arr_end(&o.w);
    md_walk_fini(&mw);
    mp_free((void *)mw.tm);
    query_expr_free(sel);
    web_api_end(&o, resp, NULL, 0, NULL, 0);
    web_api_out_fini(&o);
}

int web_api_register_status(struct web_api *api, struct web_server *srv, struct mp_err *err)
{
    static const struct web_api_route routes[] = {
        {"GET", "/api/v1/status/config", h_config},
        {"GET", "/api/v1/status/flags", h_flags},
        {"GET", "/api/v1/status/runtimeinfo", h_runtimeinfo},
        {"GET", "/api/v1/status/buildinfo", h_buildinfo},
        {"GET", "/api/v1/status/tsdb", h_tsdb},
        {"GET", "/api/v1/status/walreplay", h_walreplay},
        {"GET", "/api/v1/targets", h_targets},
        {"GET", "/api/v1/targets/metadata", h_targets_metadata},
        {"GET", "/api/v1/scrape_pools", h_scrape_pools},
        {"GET", "/api/v1/metadata", h_metadata},
        {"GET", "/api/v1/rules", h_rules},
        {"GET", "/api/v1/alerts", h_alerts},
        {"GET", "/api/v1/alertmanagers", h_alertmanagers},
    };
    return web_api_routes(api, srv, routes, sizeof routes / sizeof routes[0], err);
}
