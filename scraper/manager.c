/* SPDX-License-Identifier: Apache-2.0 */
/* scraper/manager.c: the scrape manager (Prometheus scrape/manager.go and the scrapePool of
 * scrape/scrape.go): one pool per scrape config, target groups from discovery relabeled into
 * targets (relabel.c, protocols.md 2.1) and diffed with the running ones by target hash, the
 * targets handed to the event loops (loop.c), and the snapshots /api/v1/targets and
 * /api/v1/metadata read.
 *
 * Locks (order): mu serialises apply_config and sync; pools_mu guards the pools array and is
 * held by the snapshot readers while they walk it; a pool's mu guards its target and dropped
 * lists; then a loop's mu (heap, scrape state), then a target's mu (status). A pool's config
 * pointer is swapped with every loop locked, so a loop never sees a config the caller has
 * already destroyed. */
#include "scraper/scrape_internal.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/time.h"
#include "configs/config.h"
#include "scraper/httpc.h"
#include "tsdb/tsdb.h"

struct stored_group {
    struct mp_labels *group_labels;
    struct mp_labels **targets;
    size_t n;
};

struct scrape_pool {
    char *name;
    const struct cfg_scrape_config *sc;
    char *fingerprint; /* the job's config as YAML plus its secrets */
    /* the HTTP client all targets share (Prometheus scrapePool.client): one oauth2 token
     * cache, one TLS and proxy setup; replaced only when http_fp changes. Under m->mu. */
    struct scrape_httpc *http; /* NULL when it could not be built: http_err says why */
    char *http_err;
    char *http_fp; /* scrape_httpc_fingerprint of the config it was built from */
    pthread_mutex_t mu;
    struct scrape_target **targets; /* sorted by labels */
    size_t ntargets;
    struct mp_labels **dropped; /* discovered labels of dropped targets */
    size_t ndropped;
    struct stored_group *groups; /* the last sync's groups, for a config change */
    size_t ngroups;
    int64_t interval_ms, timeout_ms; /* of the config, for dropped targets; under mu */
    struct mp_gauge *g_targets;
    struct mp_histogram *h_sync;
    struct mp_counter *c_sync;
};

struct scrape_manager {
    struct scrape_manager_opts o;
    pthread_mutex_t mu;
    pthread_mutex_t pools_mu;
    struct scrape_pool **pools;
    size_t npools;
    struct scrape_loop *loops;
    int nloops;
    uint64_t seed;
    struct scrape_loop_metrics lm;
    struct mp_metrics_vec *v_interval, *v_pool_targets, *v_sync_len, *v_sync_total;
    struct mp_counter *c_pools, *c_target_limit;
    /* target sets of jobs without a pool (synced before apply_config, or removed): kept as
     * Prometheus keeps targetSets, and used when a pool of that name appears */
    struct pending_set *pending;
    size_t npending;
};

struct pending_set {
    char *job;
    struct stored_group *groups;
    size_t ngroups;
};

void scrape_manager_opts_init(struct scrape_manager_opts *o)
{
    /* one loop thread per core up to four: a loop parses and appends what it fetched, so on
     * one thread the CPU work of a large fleet at a short interval (the first round above all,
     * which creates every series) delays every other target's ticks and transfers */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    *o = (struct scrape_manager_opts){.threads = ncpu < 1 ? 1 : ncpu > 4 ? 4 : (int)ncpu};
}

const struct cfg_scrape_config *scrape_pool_config(const struct scrape_pool *p)
{
    return p->sc;
}

int scrape_pool_httpc(const struct scrape_pool *p, struct scrape_httpc **out, struct mp_err *err)
{
    *out = p->http;
    return p->http ? 0 : mp_err_set(err, MP_EINVAL, "%s", p->http_err ? p->http_err : "no client");
}

/* A new shared client when the pool's HTTP client config changed (or there is none yet);
 * targets hold references, so the old one lives until the last of them is freed. */
static void pool_http_update(struct scrape_pool *p, const struct cfg_scrape_config *sc)
{
    char *fp = scrape_httpc_fingerprint(&sc->http);
    if (p->http_fp != NULL && strcmp(fp, p->http_fp) == 0) {
        mp_free(fp);
        return;
    }
    scrape_httpc_release(p->http);
    p->http = NULL;
    mp_free(p->http_err);
    p->http_err = NULL;
    mp_free(p->http_fp);
    p->http_fp = fp;
    struct mp_err err = {0};
    if (scrape_httpc_create(&sc->http, &p->http, &err) != 0) {
        MP_LOG_WARN("cannot set up the scrape pool's HTTP client",
                    MP_KV_STR("scrape_pool", p->name), MP_KV_STR("err", err.msg));
        p->http_err = mp_xstrdup(err.msg);
    }
}

struct tsdb *scrape_manager_db(const struct scrape_manager *m)
{
    return m->o.db;
}

const struct scrape_loop_metrics *scrape_manager_loop_metrics(const struct scrape_manager *m)
{
    return &m->lm;
}

/* ---- self-metrics ------------------------------------------------------------------------- */

static struct mp_counter *counter(struct mp_metrics_registry *r, const char *name,
                                  const char *help)
{
    struct mp_counter *c = NULL;
    if (r && mp_metrics_counter_register(r, name, help, &c, NULL) != 0)
        c = NULL;
    return c;
}

static struct mp_metrics_vec *vec(struct mp_metrics_registry *r, enum mp_metric_type type,
                                  const char *name, const char *help, const char *label,
                                  const double *bounds, size_t nb)
{
    struct mp_metrics_vec *v = NULL;
    if (r && mp_metrics_vec_register(r, type, name, help, &label, 1, bounds, nb, &v, NULL) != 0)
        v = NULL;
    return v;
}

static void register_metrics(struct scrape_manager *m)
{
    struct mp_metrics_registry *r = m->o.metrics;
    if (!r)
        return;
    static const double ib[] = {.01, .1, .5, 1, 5, 10, 15, 30, 60, 120, 300};
    static const double sb[] = MP_METRICS_DEFAULT_BUCKETS;
    const struct {
        struct mp_counter **dst;
        const char *name, *help;
    } cs[] = {
        {&m->lm.out_of_order, "prometheus_target_scrapes_sample_out_of_order_total",
         "Total number of samples rejected due to not being out of the expected order."},
        {&m->lm.duplicate, "prometheus_target_scrapes_sample_duplicate_timestamp_total",
         "Total number of samples rejected due to duplicate timestamps but different values."},
        {&m->lm.out_of_bounds, "prometheus_target_scrapes_sample_out_of_bounds_total",
         "Total number of samples rejected due to timestamp falling outside of the time "
         "bounds."},
        {&m->lm.sample_limit, "prometheus_target_scrapes_exceeded_sample_limit_total",
         "Total number of scrapes that hit the sample limit and were rejected."},
        {&m->lm.body_limit, "prometheus_target_scrapes_exceeded_body_size_limit_total",
         "Total number of scrapes that hit the body size limit"},
        {&m->lm.label_limit, "prometheus_target_scrape_pool_exceeded_label_limits_total",
         "Total number of times scrape pools hit the label limits, during sync or config "
         "reload."},
        {&m->lm.cache_flush_forced, "prometheus_target_scrapes_cache_flush_forced_total",
         "How many times a scrape cache was flushed due to getting big while scrapes are "
         "failing."},
        {&m->c_pools, "prometheus_target_scrape_pools_total",
         "Total number of scrape pool creation attempts."},
        {&m->c_target_limit, "prometheus_target_scrape_pool_exceeded_target_limit_total",
         "Total number of times scrape pools hit the target limit, during sync or config "
         "reload."},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
        *cs[i].dst = counter(r, cs[i].name, cs[i].help);
    m->v_interval = vec(r, MP_METRIC_HISTOGRAM, "prometheus_target_interval_length_seconds",
                        "Actual intervals between scrapes.", "interval", ib,
                        sizeof ib / sizeof ib[0]);
    m->v_pool_targets = vec(r, MP_METRIC_GAUGE, "prometheus_target_scrape_pool_targets",
                            "Current number of targets in this scrape pool.", "scrape_job", NULL,
                            0);
    m->v_sync_len = vec(r, MP_METRIC_HISTOGRAM, "prometheus_target_sync_length_seconds",
                        "Actual interval to sync the scrape pool.", "scrape_job", sb,
                        sizeof sb / sizeof sb[0]);
    m->v_sync_total = vec(r, MP_METRIC_COUNTER, "prometheus_target_scrape_pool_sync_total",
                          "Total number of syncs that were executed on a scrape pool.",
                          "scrape_job", NULL, 0);
}

/* ---- create / destroy ----------------------------------------------------------------------- */

static void curl_init_once(void)
{
    (void)curl_global_init(CURL_GLOBAL_DEFAULT);
}

int scrape_manager_create(const struct scrape_manager_opts *o, struct scrape_manager **out,
                          struct mp_err *err)
{
    *out = NULL;
    if (!o->db)
        return mp_err_set(err, MP_EINVAL, "scrape manager: no tsdb");
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, curl_init_once);
    struct scrape_manager *m = mp_xcalloc(1, sizeof *m);
    m->o = *o;
    if (m->o.threads < 1)
        m->o.threads = 1;
    if (m->o.threads > 64)
        m->o.threads = 64;
    pthread_mutex_init(&m->mu, NULL);
    pthread_mutex_init(&m->pools_mu, NULL);
    register_metrics(m);
    int rc = scrape_loops_start(m, &m->loops, m->o.threads, err);
    if (rc) {
        pthread_mutex_destroy(&m->mu);
        pthread_mutex_destroy(&m->pools_mu);
        mp_free(m);
        return rc;
    }
    m->nloops = m->o.threads;
    *out = m;
    return 0;
}

static void groups_free(struct stored_group *g, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mp_labels_release(g[i].group_labels);
        for (size_t k = 0; k < g[i].n; k++)
            mp_labels_release(g[i].targets[k]);
        mp_free(g[i].targets);
    }
    mp_free(g);
}

static void dropped_free(struct mp_labels **d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        mp_labels_release(d[i]);
    mp_free(d);
}

static void pool_free(struct scrape_pool *p)
{
    mp_free(p->name);
    mp_free(p->fingerprint);
    scrape_httpc_release(p->http);
    mp_free(p->http_err);
    mp_free(p->http_fp);
    mp_free(p->targets);
    dropped_free(p->dropped, p->ndropped);
    groups_free(p->groups, p->ngroups);
    pthread_mutex_destroy(&p->mu);
    mp_free(p);
}

void scrape_manager_destroy(struct scrape_manager *m)
{
    if (!m)
        return;
    scrape_loops_stop(m->loops, m->nloops); /* frees every target */
    for (size_t i = 0; i < m->npools; i++)
        pool_free(m->pools[i]);
    mp_free(m->pools);
    for (size_t i = 0; i < m->npending; i++) {
        mp_free(m->pending[i].job);
        groups_free(m->pending[i].groups, m->pending[i].ngroups);
    }
    mp_free(m->pending);
    pthread_mutex_destroy(&m->mu);
    pthread_mutex_destroy(&m->pools_mu);
    mp_free(m);
}

/* ---- sync ----------------------------------------------------------------------------------- */

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= UINT64_C(1099511628211);
    }
    return h;
}

#define FNV_OFFSET UINT64_C(14695981039346656037)

/* Prometheus Target.hash(): FNV-1a over "%016d" of the full labels' hash, then the URL. */
static uint64_t target_hash(const struct mp_labels *full, const char *url)
{
    char num[32];
    int n = snprintf(num, sizeof num, "%016" PRIu64, mp_labels_hash(full));
    return fnv1a(fnv1a(FNV_OFFSET, num, (size_t)n), url, strlen(url));
}

struct cand {
    struct mp_labels *final, *disc;
    struct scrape_target_url u;
    uint64_t hash;
};

static int cand_cmp(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return mp_labels_compare(x->u.full, y->u.full);
}

static int target_cmp_hash(const void *a, const void *b)
{
    const struct scrape_target *x = *(struct scrape_target *const *)a,
                               *y = *(struct scrape_target *const *)b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return mp_labels_compare(x->full, y->full);
}

static int target_cmp_labels(const void *a, const void *b)
{
    const struct scrape_target *x = *(struct scrape_target *const *)a,
                               *y = *(struct scrape_target *const *)b;
    return mp_labels_compare(x->labels, y->labels);
}

/* Index in old (sorted by hash) of the running target equal to c, or -1. */
static ptrdiff_t find_old(struct scrape_target *const *old, size_t n, const struct cand *c)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (old[mid]->hash < c->hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < n && old[lo]->hash == c->hash; lo++) {
        if (mp_labels_equal(old[lo]->full, c->u.full) && strcmp(old[lo]->url, c->u.str) == 0)
            return (ptrdiff_t)lo;
    }
    return -1;
}

static const char *const report_names[SCRAPE_NREPORT] = {
    "up", "scrape_duration_seconds", "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling", "scrape_series_added"};

static struct scrape_target *target_new(struct scrape_manager *m, struct scrape_pool *p,
                                        struct cand *c)
{
    struct scrape_target *t = mp_xcalloc(1, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    t->heap_idx = SIZE_MAX;
    t->pool = p;
    t->discovered = c->disc;
    t->labels = c->final;
    t->full = c->u.full;
    t->url = c->u.str;
    t->hash = c->hash;
    t->interval_ms = c->u.interval_ms;
    t->timeout_ms = c->u.timeout_ms;
    c->disc = c->final = c->u.full = NULL;
    c->u.str = NULL;
    struct mp_labels_builder *b = mp_labels_builder_create();
    for (int i = 0; i < SCRAPE_NREPORT; i++) {
        mp_labels_builder_reset(b, t->labels);
        if (mp_labels_builder_set(b, MP_STR_LIT(MP_LABEL_METRIC_NAME),
                                  mp_str_c(report_names[i])) != 0 ||
            mp_labels_builder_labels(b, &t->report_ls[i], NULL) != 0)
            t->report_ls[i] = mp_labels_acquire(t->labels);
    }
    mp_labels_builder_destroy(b);
    if (m->v_interval) {
        char iv[MP_TIME_FMT_MAX];
        mp_duration_format(t->interval_ms, iv, sizeof iv);
        const char *vals[1] = {iv};
        t->interval_hist = mp_metrics_vec_histogram(m->v_interval, vals);
    }
    struct mp_err err = {0};
    if (scrape_target_prepare(t, p->sc, &err) != 0) {
        MP_LOG_WARN("cannot set up target", MP_KV_STR("scrape_pool", p->name),
                    MP_KV_STR("target", t->url), MP_KV_STR("err", err.msg));
        t->forced_err = mp_xstrdup(err.msg);
    }
    t->health = SCRAPE_HEALTH_UNKNOWN;
    return t;
}

static void cand_fini(struct cand *c)
{
    mp_labels_release(c->final);
    mp_labels_release(c->disc);
    scrape_target_url_fini(&c->u);
}

static struct scrape_loop *loop_of(struct scrape_manager *m, const struct scrape_target *t)
{
    return scrape_loop_at(m->loops, (int)(t->hash % (uint64_t)m->nloops));
}

/* Prometheus scrapePool.Sync on the pool's stored groups. Under m->mu. */
static void pool_sync(struct scrape_manager *m, struct scrape_pool *p)
{
    int64_t t0 = mp_mono_ns();
    const struct cfg_scrape_config *sc = p->sc;
    size_t total = 0;
    for (size_t g = 0; g < p->ngroups; g++)
        total += p->groups[g].n;
    struct cand *cs = mp_xcalloc(total ? total : 1, sizeof *cs);
    size_t nc = 0;
    struct mp_labels **dropped = mp_xcalloc(total ? total : 1, sizeof *dropped);
    size_t nd = 0;
    struct mp_labels_builder *b = mp_labels_builder_create();
    for (size_t g = 0; g < p->ngroups; g++) {
        const struct stored_group *sg = &p->groups[g];
        for (size_t i = 0; i < sg->n; i++) {
            mp_labels_builder_reset(b, sg->group_labels);
            int rc = 0;
            for (size_t k = 0, n = mp_labels_count(sg->targets[i]); k < n && rc == 0; k++) {
                struct mp_label lb = mp_labels_at(sg->targets[i], k);
                rc = mp_labels_builder_set(b, lb.name, lb.value);
            }
            struct mp_labels *merged = NULL;
            struct mp_err err = {0};
            if (rc == 0)
                rc = mp_labels_builder_labels(b, &merged, &err);
            struct cand *c = &cs[nc];
            if (rc == 0)
                rc = scrape_target_defaults(merged, sc, &c->disc, &err);
            if (rc == 0)
                rc = scrape_target_labels(merged, sc, &c->final, &c->u, &err);
            mp_labels_release(merged);
            if (rc == SCRAPE_TARGET_DROPPED) {
                if (!sc->keep_dropped_targets || nd < sc->keep_dropped_targets)
                    dropped[nd++] = c->disc;
                else
                    mp_labels_release(c->disc);
                c->disc = NULL;
                continue;
            }
            if (rc) {
                MP_LOG_WARN("creating target failed", MP_KV_STR("scrape_pool", p->name),
                            MP_KV_U64("instance", i), MP_KV_STR("err", err.msg));
                cand_fini(c);
                *c = (struct cand){0};
                continue;
            }
            c->hash = target_hash(c->u.full, c->u.str);
            nc++;
        }
    }
    mp_labels_builder_destroy(b);
    qsort(cs, nc, sizeof *cs, cand_cmp);

    /* the same target twice gets one loop (Prometheus uniqueLoops) */
    bool *dup = mp_xcalloc(nc ? nc : 1, sizeof *dup);
    for (size_t i = 1; i < nc; i++)
        dup[i] = cs[i].hash == cs[i - 1].hash && mp_labels_equal(cs[i].u.full, cs[i - 1].u.full) &&
                 strcmp(cs[i].u.str, cs[i - 1].u.str) == 0;

    /* diff against the running targets: same hash, labels and URL keep their loop */
    /* a copy: the snapshot readers walk p->targets under p->mu while this sorts */
    pthread_mutex_lock(&p->mu);
    size_t nold = p->ntargets;
    struct scrape_target **old = mp_xcalloc(nold ? nold : 1, sizeof *old);
    if (nold)
        memcpy(old, p->targets, nold * sizeof *old);
    pthread_mutex_unlock(&p->mu);
    if (nold > 1)
        qsort(old, nold, sizeof *old, target_cmp_hash);
    bool *kept = mp_xcalloc(nold ? nold : 1, sizeof *kept);
    struct scrape_target **next = mp_xcalloc(nc ? nc : 1, sizeof *next);
    size_t nn = 0;
    for (size_t i = 0; i < nc; i++) {
        if (dup[i])
            continue;
        ptrdiff_t k = find_old(old, nold, &cs[i]);
        if (k >= 0 && !kept[k]) {
            kept[k] = true;
            next[nn++] = old[k];
        } else {
            next[nn++] = target_new(m, p, &cs[i]);
        }
    }
    if (nn > 1)
        qsort(next, nn, sizeof *next, target_cmp_labels);
    char limit_msg[160] = "";
    if (sc->target_limit && nn > sc->target_limit) {
        snprintf(limit_msg, sizeof limit_msg,
                 "target_limit exceeded (number of targets: %zu, limit: %zu)", nn,
                 sc->target_limit);
        if (m->c_target_limit)
            mp_counter_inc(m->c_target_limit);
    }

    pthread_mutex_lock(&p->mu);
    struct scrape_target **otargets = p->targets;
    p->targets = next;
    p->ntargets = nn;
    struct mp_labels **odropped = p->dropped;
    size_t onodropped = p->ndropped;
    p->dropped = dropped;
    p->ndropped = nd;
    p->interval_ms = sc->scrape_interval_ms;
    p->timeout_ms = sc->scrape_timeout_ms;
    pthread_mutex_unlock(&p->mu);
    mp_free(otargets);
    dropped_free(odropped, onodropped);

    for (size_t i = 0; i < nn; i++) {
        struct scrape_target *t = next[i];
        struct scrape_loop *l = loop_of(m, t);
        scrape_loop_lock(l);
        if (!t->loop) {
            int64_t iv = t->interval_ms * 1000000;
            scrape_loop_add_locked(l, t, (int64_t)((t->hash ^ m->seed) % (uint64_t)iv));
        }
        mp_free(t->limit_err);
        t->limit_err = limit_msg[0] ? mp_xstrdup(limit_msg) : NULL;
        scrape_loop_unlock(l);
    }
    for (size_t k = 0; k < nold; k++) {
        if (kept[k])
            continue;
        struct scrape_loop *l = loop_of(m, old[k]);
        scrape_loop_lock(l);
        scrape_loop_remove_locked(l, old[k], true);
        scrape_loop_unlock(l);
    }
    for (int i = 0; i < m->nloops; i++)
        scrape_loop_wakeup(scrape_loop_at(m->loops, i));

    for (size_t i = 0; i < nc; i++)
        cand_fini(&cs[i]);
    mp_free(cs);
    mp_free(dup);
    mp_free(kept);
    mp_free(old);
    if (p->g_targets)
        mp_gauge_set(p->g_targets, (double)nn);
    if (p->c_sync)
        mp_counter_inc(p->c_sync);
    if (p->h_sync)
        mp_histogram_observe(p->h_sync, (double)(mp_mono_ns() - t0) / 1e9);
}

/* Finds a pool by job name; under m->mu (or pools_mu). */
static struct scrape_pool *pool_find(struct scrape_manager *m, const char *job, size_t *idx)
{
    for (size_t i = 0; i < m->npools; i++) {
        if (strcmp(m->pools[i]->name, job) == 0) {
            if (idx)
                *idx = i;
            return m->pools[i];
        }
    }
    return NULL;
}

/* Keeps (taking over gs) the target set of a job without a pool, replacing an older one. */
static void pending_put(struct scrape_manager *m, const char *job, struct stored_group *gs,
                        size_t n)
{
    for (size_t i = 0; i < m->npending; i++) {
        if (strcmp(m->pending[i].job, job) == 0) {
            groups_free(m->pending[i].groups, m->pending[i].ngroups);
            m->pending[i].groups = gs;
            m->pending[i].ngroups = n;
            return;
        }
    }
    m->pending = mp_xrealloc(m->pending, (m->npending + 1) * sizeof *m->pending);
    m->pending[m->npending++] = (struct pending_set){mp_xstrdup(job), gs, n};
}

/* Moves the kept target set of job into p, if there is one. */
static void pending_take(struct scrape_manager *m, struct scrape_pool *p)
{
    for (size_t i = 0; i < m->npending; i++) {
        if (strcmp(m->pending[i].job, p->name) == 0) {
            p->groups = m->pending[i].groups;
            p->ngroups = m->pending[i].ngroups;
            mp_free(m->pending[i].job);
            m->pending[i] = m->pending[--m->npending];
            return;
        }
    }
}

void scrape_manager_sync(void *ctx, const char *job, const struct scrape_target_group *groups,
                         size_t n)
{
    struct scrape_manager *m = ctx;
    pthread_mutex_lock(&m->mu);
    struct scrape_pool *p = pool_find(m, job, NULL);
    struct stored_group *gs = mp_xcalloc(n ? n : 1, sizeof *gs);
    for (size_t i = 0; i < n; i++) {
        gs[i].group_labels = groups[i].group_labels ? mp_labels_acquire(groups[i].group_labels)
                                                    : mp_labels_empty();
        gs[i].targets = mp_xcalloc(groups[i].ntargets ? groups[i].ntargets : 1,
                                   sizeof *gs[i].targets);
        for (size_t k = 0; k < groups[i].ntargets; k++)
            gs[i].targets[k] = mp_labels_acquire(groups[i].targets[k]);
        gs[i].n = groups[i].ntargets;
    }
    if (p) {
        groups_free(p->groups, p->ngroups);
        p->groups = gs;
        p->ngroups = n;
        pool_sync(m, p);
    } else {
        pending_put(m, job, gs, n);
    }
    pthread_mutex_unlock(&m->mu);
}

/* ---- apply_config --------------------------------------------------------------------------- */

/* The job as cfg_config_to_yaml prints it, plus its HTTP client config with the secrets the
 * YAML masks (oauth2 client_secret and proxy_connect_header included): equal texts mean an
 * unchanged pool. */
static char *fingerprint(const struct cfg_config *cfg, const struct cfg_scrape_config *sc)
{
    struct cfg_config one = {0};
    one.global = cfg->global;
    one.tracing = cfg->tracing;
    one.scrape_configs = (struct cfg_scrape_config *)sc;
    one.nscrape_configs = 1;
    struct mp_buf b;
    mp_buf_init(&b, 0);
    if (cfg_config_to_yaml(&one, &b) != 0)
        mp_buf_reset(&b);
    char *http = scrape_httpc_fingerprint(&sc->http);
    if (mp_buf_append(&b, "\n#", 2) != 0 || mp_buf_append_str(&b, http) != 0)
        mp_buf_reset(&b);
    mp_free(http);
    size_t len;
    char *s = mp_buf_take(&b, &len);
    return s ? s : mp_xstrdup("");
}

static struct scrape_pool *pool_new(struct scrape_manager *m, const struct cfg_scrape_config *sc,
                                    char *fp)
{
    struct scrape_pool *p = mp_xcalloc(1, sizeof *p);
    p->name = mp_xstrdup(sc->job_name);
    p->sc = sc;
    p->fingerprint = fp;
    pool_http_update(p, sc);
    pthread_mutex_init(&p->mu, NULL);
    const char *vals[1] = {p->name};
    if (m->v_pool_targets)
        p->g_targets = mp_metrics_vec_gauge(m->v_pool_targets, vals);
    if (m->v_sync_len)
        p->h_sync = mp_metrics_vec_histogram(m->v_sync_len, vals);
    if (m->v_sync_total)
        p->c_sync = mp_metrics_vec_counter(m->v_sync_total, vals);
    if (m->c_pools)
        mp_counter_inc(m->c_pools);
    return p;
}

/* Prometheus Manager's offsetSeed: FNV-1a of hostname + external labels. */
static uint64_t offset_seed(const struct cfg_config *cfg)
{
    char host[256] = "";
    (void)gethostname(host, sizeof host - 1);
    uint64_t h = fnv1a(FNV_OFFSET, host, strlen(host));
    h = fnv1a(h, "{", 1);
    for (size_t i = 0; i < cfg->global.nexternal_labels; i++) {
        const struct cfg_label *l = &cfg->global.external_labels[i];
        if (i)
            h = fnv1a(h, ", ", 2);
        h = fnv1a(h, l->name, strlen(l->name));
        h = fnv1a(h, "=\"", 2);
        h = fnv1a(h, l->value, strlen(l->value));
        h = fnv1a(h, "\"", 1);
    }
    return fnv1a(h, "}", 1);
}

enum pool_fate { POOL_KEEP, POOL_CHANGED, POOL_REMOVED };

int scrape_manager_apply_config(struct scrape_manager *m, const struct cfg_config *cfg,
                                struct mp_err *err)
{
    (void)err;
    pthread_mutex_lock(&m->mu);
    m->seed = offset_seed(cfg);
    size_t n = cfg->nscrape_configs;
    struct scrape_pool **np = mp_xcalloc(n ? n : 1, sizeof *np);
    const struct cfg_scrape_config **nsc = mp_xcalloc(n ? n : 1, sizeof *nsc);
    enum pool_fate *fate = mp_xcalloc(m->npools ? m->npools : 1, sizeof *fate);
    bool *fresh = mp_xcalloc(n ? n : 1, sizeof *fresh);
    for (size_t i = 0; i < m->npools; i++)
        fate[i] = POOL_REMOVED;
    size_t nn = 0;
    for (size_t i = 0; i < n; i++) {
        const struct cfg_scrape_config *sc = &cfg->scrape_configs[i];
        bool seen = false;
        for (size_t k = 0; k < nn && !seen; k++)
            seen = strcmp(np[k]->name, sc->job_name) == 0;
        if (seen) /* the loader rejects duplicate job names; be safe */
            continue;
        char *fp = fingerprint(cfg, sc);
        size_t idx;
        struct scrape_pool *p = pool_find(m, sc->job_name, &idx);
        if (p) {
            fate[idx] = strcmp(fp, p->fingerprint) == 0 ? POOL_KEEP : POOL_CHANGED;
            mp_free(p->fingerprint);
            p->fingerprint = fp;
            if (fate[idx] == POOL_CHANGED)
                pool_http_update(p, sc); /* before pool_sync makes the new targets */
        } else {
            p = pool_new(m, sc, fp);
            pending_take(m, p);
            fresh[nn] = true;
        }
        nsc[nn] = sc;
        np[nn++] = p;
    }

    /* detach the targets of changed and removed pools */
    struct scrape_target ***detached = mp_xcalloc(m->npools ? m->npools : 1, sizeof *detached);
    size_t *ndetached = mp_xcalloc(m->npools ? m->npools : 1, sizeof *ndetached);
    for (size_t i = 0; i < m->npools; i++) {
        if (fate[i] == POOL_KEEP)
            continue;
        struct scrape_pool *p = m->pools[i];
        pthread_mutex_lock(&p->mu);
        detached[i] = p->targets;
        ndetached[i] = p->ntargets;
        p->targets = NULL;
        p->ntargets = 0;
        pthread_mutex_unlock(&p->mu);
    }
    /* with every loop locked: new config pointers, detached targets stop (a changed pool's
     * without stale markers, as Prometheus's reload; a removed pool's with them) */
    for (int i = 0; i < m->nloops; i++)
        scrape_loop_lock(scrape_loop_at(m->loops, i));
    for (size_t k = 0; k < nn; k++)
        np[k]->sc = nsc[k];
    for (size_t i = 0; i < m->npools; i++) {
        for (size_t k = 0; k < ndetached[i]; k++) {
            struct scrape_target *t = detached[i][k];
            scrape_loop_remove_locked(loop_of(m, t), t, fate[i] == POOL_REMOVED);
        }
    }
    for (int i = 0; i < m->nloops; i++) {
        scrape_loop_unlock(scrape_loop_at(m->loops, i));
        scrape_loop_wakeup(scrape_loop_at(m->loops, i));
    }

    pthread_mutex_lock(&m->pools_mu);
    struct scrape_pool **oldp = m->pools;
    size_t nold = m->npools;
    m->pools = np;
    m->npools = nn;
    pthread_mutex_unlock(&m->pools_mu);
    for (size_t i = 0; i < nold; i++) {
        mp_free(detached[i]);
        if (fate[i] == POOL_REMOVED) {
            if (oldp[i]->g_targets)
                mp_gauge_set(oldp[i]->g_targets, 0);
            pending_put(m, oldp[i]->name, oldp[i]->groups, oldp[i]->ngroups);
            oldp[i]->groups = NULL;
            oldp[i]->ngroups = 0;
            pool_free(oldp[i]);
        } else if (fate[i] == POOL_CHANGED) {
            pool_sync(m, oldp[i]); /* new targets from the stored groups */
        }
    }
    for (size_t k = 0; k < nn; k++) {
        if (fresh[k] && np[k]->ngroups)
            pool_sync(m, np[k]); /* target sets that came before the config */
    }
    mp_free(fresh);
    mp_free(oldp);
    mp_free(detached);
    mp_free(ndetached);
    mp_free(fate);
    mp_free(nsc);
    pthread_mutex_unlock(&m->mu);
    return 0;
}

/* ---- snapshots ------------------------------------------------------------------------------ */

struct tsnap {
    const char *pool; /* owned copy */
    struct mp_labels *disc, *labels;
    char *url;
    enum scrape_health health;
    char *last_error;
    int64_t last_scrape_ms;
    double last_duration_s;
    int64_t interval_ms, timeout_ms;
};

struct tsnaps {
    struct tsnap *v;
    size_t n, cap;
};

static struct tsnap *tsnap_push(struct tsnaps *s)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->v = mp_xrealloc(s->v, s->cap * sizeof *s->v);
    }
    struct tsnap *t = &s->v[s->n++];
    *t = (struct tsnap){0};
    return t;
}

static int pool_cmp(const void *a, const void *b)
{
    return strcmp((*(struct scrape_pool *const *)a)->name, (*(struct scrape_pool *const *)b)->name);
}

/* The pools sorted by name; under pools_mu. */
static struct scrape_pool **sorted_pools_locked(struct scrape_manager *m)
{
    struct scrape_pool **ps = mp_xcalloc(m->npools ? m->npools : 1, sizeof *ps);
    memcpy(ps, m->pools, m->npools * sizeof *ps);
    qsort(ps, m->npools, sizeof *ps, pool_cmp);
    return ps;
}

void scrape_manager_targets(struct scrape_manager *m, bool active, bool dropped,
                            scrape_target_fn *fn, void *ctx)
{
    struct tsnaps act = {0}, drp = {0};
    pthread_mutex_lock(&m->pools_mu);
    struct scrape_pool **ps = sorted_pools_locked(m);
    for (size_t i = 0; i < m->npools; i++) {
        struct scrape_pool *p = ps[i];
        pthread_mutex_lock(&p->mu);
        for (size_t k = 0; active && k < p->ntargets; k++) {
            struct scrape_target *t = p->targets[k];
            struct tsnap *s = tsnap_push(&act);
            s->pool = mp_xstrdup(p->name);
            s->disc = mp_labels_acquire(t->discovered);
            s->labels = mp_labels_acquire(t->labels);
            s->url = mp_xstrdup(t->url);
            s->interval_ms = t->interval_ms;
            s->timeout_ms = t->timeout_ms;
            pthread_mutex_lock(&t->mu);
            s->health = t->health;
            s->last_error = mp_xstrdup(t->last_error);
            s->last_scrape_ms = t->last_scrape_ms;
            s->last_duration_s = t->last_duration_s;
            pthread_mutex_unlock(&t->mu);
        }
        for (size_t k = 0; dropped && k < p->ndropped; k++) {
            struct tsnap *s = tsnap_push(&drp);
            s->pool = mp_xstrdup(p->name);
            s->disc = mp_labels_acquire(p->dropped[k]);
            s->interval_ms = p->interval_ms;
            s->timeout_ms = p->timeout_ms;
        }
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_unlock(&m->pools_mu);
    mp_free(ps);
    struct tsnaps *lists[2] = {&act, &drp};
    for (int li = 0; li < 2; li++) {
        for (size_t i = 0; i < lists[li]->n; i++) {
            struct tsnap *s = &lists[li]->v[i];
            struct scrape_target_info info = {
                .pool = s->pool,
                .discovered = s->disc,
                .labels = s->labels,
                .url = s->url,
                .health = s->health,
                .last_error = s->last_error ? s->last_error : "",
                .last_scrape_ms = s->last_scrape_ms,
                .last_duration_s = s->last_duration_s,
                .interval_ms = s->interval_ms,
                .timeout_ms = s->timeout_ms,
            };
            fn(ctx, &info);
            mp_free((char *)s->pool);
            mp_labels_release(s->disc);
            mp_labels_release(s->labels);
            mp_free(s->url);
            mp_free(s->last_error);
        }
        mp_free(lists[li]->v);
    }
}

struct msnap {
    const char *pool;
    struct mp_labels *target;
    char *metric, *help, *unit;
    size_t metric_len, help_len, unit_len;
    enum scrape_metric_type type;
};

struct msnaps {
    struct msnap *v;
    size_t n, cap;
    const char *pool;
    struct mp_labels *target;
};

static char *dup_str(struct mp_str s)
{
    return mp_xstrndup(s.len ? s.ptr : "", s.len);
}

static void meta_copy(void *ctx, struct mp_str family, enum scrape_metric_type t,
                      struct mp_str help, struct mp_str unit)
{
    struct msnaps *s = ctx;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->v = mp_xrealloc(s->v, s->cap * sizeof *s->v);
    }
    s->v[s->n++] = (struct msnap){s->pool,      mp_labels_acquire(s->target),
                                  dup_str(family), dup_str(help),
                                  dup_str(unit), family.len,
                                  help.len,     unit.len,
                                  t};
}

void scrape_manager_metadata(struct scrape_manager *m, scrape_metadata_fn *fn, void *ctx)
{
    struct msnaps s = {0};
    char **names = NULL;
    size_t nnames = 0;
    pthread_mutex_lock(&m->pools_mu);
    struct scrape_pool **ps = sorted_pools_locked(m);
    names = mp_xcalloc(m->npools ? m->npools : 1, sizeof *names);
    for (size_t i = 0; i < m->npools; i++) {
        struct scrape_pool *p = ps[i];
        names[nnames] = mp_xstrdup(p->name);
        s.pool = names[nnames++];
        pthread_mutex_lock(&p->mu);
        for (size_t k = 0; k < p->ntargets; k++) {
            s.target = p->targets[k]->labels;
            scrape_cache_meta_each(p->targets[k]->cache, meta_copy, &s);
        }
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_unlock(&m->pools_mu);
    mp_free(ps);
    for (size_t i = 0; i < s.n; i++) {
        struct msnap *x = &s.v[i];
        struct scrape_metadata_info md = {
            .pool = x->pool,
            .target = x->target,
            .metric = {x->metric, x->metric_len},
            .type = x->type,
            .help = {x->help, x->help_len},
            .unit = {x->unit, x->unit_len},
        };
        fn(ctx, &md);
        mp_labels_release(x->target);
        mp_free(x->metric);
        mp_free(x->help);
        mp_free(x->unit);
    }
    mp_free(s.v);
    for (size_t i = 0; i < nnames; i++)
        mp_free(names[i]);
    mp_free(names);
}

void scrape_manager_test_stats(struct scrape_manager *m, struct scrape_test_stats *out)
{
    *out = (struct scrape_test_stats){0};
    for (int i = 0; i < m->nloops; i++)
        scrape_loop_stats_add(scrape_loop_at(m->loops, i), out);
}

size_t scrape_manager_test_cache_bytes(struct scrape_manager *m)
{
    size_t n = 0;
    for (int i = 0; i < m->nloops; i++)
        n += scrape_loop_cache_bytes(scrape_loop_at(m->loops, i));
    return n;
}
