/* SPDX-License-Identifier: Apache-2.0 */
/* scraper/discovery.c: the discovery manager (scraper.h; Prometheus discovery/manager.go).
 *
 * Each scrape config (job) gets one provider per SD block: one static provider for all its
 * static_configs (groups "0", "1", ...), one per file_sd_configs entry, one per
 * kubernetes_sd_configs entry. A provider reports groups through its sink; the manager keeps
 * the latest group per source and marks the job dirty. The sender thread hands a dirty job's
 * complete set (groups with targets only) to the callback: the first time as soon as all of
 * its providers reported once (or after tuning.first_update_ms), later at most once per
 * update_interval_ms. The callback gets a snapshot (label sets acquired, sources copied), so
 * no lock is held while it runs.
 *
 * apply() diffs by (job, provider fingerprint): the fingerprint is a canonical text of the
 * provider's configuration, so an unchanged provider keeps running with its state and its
 * groups. Lock order: a provider's own lock, then d->mu (the sink). Providers are destroyed
 * without d->mu held (their threads may be in the sink). */
#define _GNU_SOURCE
#include "scraper/sd_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/time.h"
#include "configs/config.h"

enum prov_type { PROV_STATIC, PROV_FILE, PROV_K8S };

/* A provider's current groups, chained by source; only groups with targets are kept. */
struct gnode {
    struct gnode *next;
    uint64_t hash;
    struct scrape_target_group g;
};

struct scrape_sd_sink {
    struct scrape_discovery *d;
    struct job *job;
    struct gnode **b;
    size_t nb, ngroups;
    bool ready;
};

struct provider {
    enum prov_type type;
    char *fingerprint;
    struct scrape_sd_sink *sink;
    struct scrape_file_sd *file;
    struct scrape_k8s_sd *k8s;
    bool keep; /* apply bookkeeping */
};

struct job {
    char *name;
    struct provider **provs;
    size_t nprovs;
    bool dirty;
    bool sent_once;
    int64_t created_ms;
    bool removed; /* send the final empty update, then free */
    bool keep;
    struct mp_gauge *discovered; /* prometheus_sd_discovered_targets{config=job} */
};

struct scrape_discovery {
    struct scrape_discovery_opts opts;
    struct scrape_sd_tuning tuning;
    char *sa_dir;
    struct scrape_sd_metrics metrics;
    struct mp_counter *updates, *received;
    struct mp_metrics_vec *discovered_vec;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    struct job **jobs;
    size_t njobs;
    int64_t last_send_ms;
    pthread_t th;
    bool started;
    /* serialises the callback with apply's final updates */
    pthread_mutex_t cb_mu;
};

static int64_t now_ms(void)
{
    return mp_mono_ns() / 1000000;
}

void scrape_sd_deadline(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

void scrape_sd_tuning_init(struct scrape_sd_tuning *t)
{
    t->backoff_initial_ms = 800;
    t->backoff_max_ms = 30000;
    t->watch_idle_ms = 180000;
    t->first_update_ms = 5000;
}

void scrape_discovery_opts_init(struct scrape_discovery_opts *o)
{
    memset(o, 0, sizeof *o);
    o->update_interval_ms = 5000;
    o->service_account_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
}

void scrape_discovery_tune(struct scrape_discovery *d, const struct scrape_sd_tuning *t)
{
    d->tuning = *t;
}

/* ---- the sink ------------------------------------------------------------------------------- */

static uint64_t source_hash(const char *src)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = src; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h;
}

static void sink_grow(struct scrape_sd_sink *s)
{
    size_t nb = s->nb ? 2 * s->nb : 16;
    struct gnode **b = mp_xcalloc(nb, sizeof *b);
    for (size_t i = 0; i < s->nb; i++)
        for (struct gnode *n = s->b[i], *next; n != NULL; n = next) {
            next = n->next;
            n->next = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
        }
    mp_free(s->b);
    s->b = b;
    s->nb = nb;
}

void scrape_sd_sink_update(struct scrape_sd_sink *s, struct scrape_target_group *g)
{
    struct scrape_discovery *d = s->d;
    uint64_t h = source_hash(g->source);
    pthread_mutex_lock(&d->mu);
    struct gnode **pp = s->nb ? &s->b[h & (s->nb - 1)] : NULL;
    while (pp != NULL && *pp != NULL &&
           ((*pp)->hash != h || strcmp((*pp)->g.source, g->source) != 0))
        pp = &(*pp)->next;
    struct gnode *cur = pp ? *pp : NULL;
    bool changed = true;
    if (g->ntargets == 0) {
        if (cur != NULL) {
            *pp = cur->next;
            scrape_target_group_fini(&cur->g);
            mp_free(cur);
            s->ngroups--;
        } else {
            changed = false;
        }
        scrape_target_group_fini(g);
    } else if (cur != NULL) {
        scrape_target_group_fini(&cur->g);
        cur->g = *g;
        memset(g, 0, sizeof *g);
    } else {
        if (s->ngroups >= s->nb)
            sink_grow(s);
        struct gnode *n = mp_xmalloc(sizeof *n);
        n->hash = h;
        n->g = *g;
        memset(g, 0, sizeof *g);
        n->next = s->b[h & (s->nb - 1)];
        s->b[h & (s->nb - 1)] = n;
        s->ngroups++;
    }
    if (d->received != NULL)
        mp_counter_inc(d->received);
    if (changed && s->job != NULL) {
        s->job->dirty = true;
        pthread_cond_broadcast(&d->cv);
    }
    pthread_mutex_unlock(&d->mu);
}

void scrape_sd_sink_ready(struct scrape_sd_sink *s)
{
    struct scrape_discovery *d = s->d;
    pthread_mutex_lock(&d->mu);
    s->ready = true;
    if (s->job != NULL)
        s->job->dirty = true;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

static void sink_free(struct scrape_sd_sink *s)
{
    for (size_t i = 0; i < s->nb; i++)
        for (struct gnode *n = s->b[i], *next; n != NULL; n = next) {
            next = n->next;
            scrape_target_group_fini(&n->g);
            mp_free(n);
        }
    mp_free(s->b);
    mp_free(s);
}

/* ---- snapshots and the sender -------------------------------------------------------------- */

struct snap {
    char *job;
    struct scrape_target_group *g;
    size_t n;
};

static void snap_fini(struct snap *s)
{
    for (size_t i = 0; i < s->n; i++)
        scrape_target_group_fini(&s->g[i]);
    mp_free(s->g);
    mp_free(s->job);
}

/* Copies job's groups (under d->mu). */
static void snap_job(struct job *j, struct snap *out)
{
    size_t n = 0;
    for (size_t p = 0; p < j->nprovs; p++)
        n += j->provs[p]->sink->ngroups;
    out->job = mp_xstrdup(j->name);
    out->g = mp_xcalloc(n ? n : 1, sizeof *out->g);
    out->n = 0;
    size_t ntargets = 0;
    for (size_t p = 0; p < j->nprovs; p++) {
        const struct scrape_sd_sink *s = j->provs[p]->sink;
        for (size_t bi = 0; bi < s->nb; bi++)
            for (const struct gnode *gn = s->b[bi]; gn != NULL; gn = gn->next) {
                const struct scrape_target_group *src = &gn->g;
                struct scrape_target_group *dst = &out->g[out->n++];
                dst->source = mp_xstrdup(src->source);
                dst->group_labels = mp_labels_acquire(src->group_labels);
                dst->targets = mp_xcalloc(src->ntargets ? src->ntargets : 1, sizeof *dst->targets);
                for (size_t t = 0; t < src->ntargets; t++)
                    dst->targets[t] = mp_labels_acquire(src->targets[t]);
                dst->ntargets = src->ntargets;
                ntargets += src->ntargets;
            }
    }
    if (j->discovered != NULL)
        mp_gauge_set(j->discovered, (double)ntargets);
}

static bool job_ready(const struct job *j, int64_t now, int64_t first_ms)
{
    if (now - j->created_ms >= first_ms)
        return true;
    for (size_t p = 0; p < j->nprovs; p++)
        if (!j->provs[p]->sink->ready)
            return false;
    return true;
}

static void deliver(struct scrape_discovery *d, struct snap *s, size_t n)
{
    pthread_mutex_lock(&d->cb_mu);
    for (size_t i = 0; i < n; i++) {
        if (d->opts.on_update != NULL)
            d->opts.on_update(d->opts.ctx, s[i].job, s[i].g, s[i].n);
        if (d->updates != NULL)
            mp_counter_inc(d->updates);
    }
    pthread_mutex_unlock(&d->cb_mu);
}

static void *sender_main(void *arg)
{
    struct scrape_discovery *d = arg;
    pthread_mutex_lock(&d->mu);
    while (!d->stop) {
        int64_t now = now_ms();
        int64_t wait = 1000;
        struct snap *snaps = NULL;
        size_t nsnaps = 0;
        bool interval_ok = now - d->last_send_ms >= d->opts.update_interval_ms;
        for (size_t i = 0; i < d->njobs; i++) {
            struct job *j = d->jobs[i];
            if (!j->dirty)
                continue;
            bool ready = job_ready(j, now, d->tuning.first_update_ms);
            if (!ready) {
                int64_t left = j->created_ms + d->tuning.first_update_ms - now;
                if (left < wait)
                    wait = left;
                continue;
            }
            if (j->sent_once && !interval_ok) {
                int64_t left = d->last_send_ms + d->opts.update_interval_ms - now;
                if (left < wait)
                    wait = left;
                continue;
            }
            snaps = mp_xrealloc(snaps, (nsnaps + 1) * sizeof *snaps);
            snap_job(j, &snaps[nsnaps++]);
            j->dirty = false;
            d->last_send_ms = now;
            j->sent_once = true;
        }
        if (nsnaps > 0) {
            pthread_mutex_unlock(&d->mu);
            deliver(d, snaps, nsnaps);
            for (size_t i = 0; i < nsnaps; i++)
                snap_fini(&snaps[i]);
            mp_free(snaps);
            pthread_mutex_lock(&d->mu);
            continue;
        }
        if (wait < 1)
            wait = 1;
        struct timespec ts;
        scrape_sd_deadline(&ts, wait);
        pthread_cond_timedwait(&d->cv, &d->mu, &ts);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

/* ---- create / destroy ---------------------------------------------------------------------- */

int scrape_discovery_create(const struct scrape_discovery_opts *o, struct scrape_discovery **out,
                            struct mp_err *err)
{
    *out = NULL;
    struct scrape_discovery *d = mp_xcalloc(1, sizeof *d);
    d->opts = *o;
    if (d->opts.update_interval_ms <= 0)
        d->opts.update_interval_ms = 5000;
    d->sa_dir =
        mp_xstrdup(o->service_account_dir ? o->service_account_dir
                                          : "/var/run/secrets/kubernetes.io/serviceaccount");
    d->opts.service_account_dir = d->sa_dir;
    scrape_sd_tuning_init(&d->tuning);
    pthread_mutex_init(&d->mu, NULL);
    pthread_mutex_init(&d->cb_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cv, &ca);
    pthread_condattr_destroy(&ca);
    struct mp_metrics_registry *r = o->metrics;
    if (r != NULL) {
        static const char *const name_label[] = {"name"};
        static const char *const scrape_val[] = {"scrape"};
        static const char *const k8s_labels[] = {"role", "event"};
        static const char *const disc_labels[] = {"config", "name"};
        struct mp_metrics_vec *v = NULL;
        int rc = mp_metrics_vec_register(r, MP_METRIC_COUNTER, "prometheus_sd_updates_total",
                                         "Total number of update events sent to the SD consumers.",
                                         name_label, 1, NULL, 0, &v, err);
        if (rc == 0)
            d->updates = mp_metrics_vec_counter(v, scrape_val);
        if (rc == 0)
            rc = mp_metrics_vec_register(r, MP_METRIC_COUNTER,
                                         "prometheus_sd_received_updates_total",
                                         "Total number of update events received from the SD "
                                         "providers.",
                                         name_label, 1, NULL, 0, &v, err);
        if (rc == 0)
            d->received = mp_metrics_vec_counter(v, scrape_val);
        if (rc == 0)
            rc = mp_metrics_vec_register(r, MP_METRIC_GAUGE, "prometheus_sd_discovered_targets",
                                         "Current number of discovered targets.", disc_labels, 2,
                                         NULL, 0, &d->discovered_vec, err);
        if (rc == 0)
            rc = mp_metrics_counter_register(r, "prometheus_sd_file_read_errors_total",
                                             "The number of File-SD read errors.",
                                             &d->metrics.file_read_errors, err);
        if (rc == 0)
            rc = mp_metrics_counter_register(r, "prometheus_sd_file_scan_total",
                                             "The number of File-SD scans.", &d->metrics.file_scans,
                                             err);
        if (rc == 0)
            rc = mp_metrics_vec_register(r, MP_METRIC_COUNTER,
                                         "prometheus_sd_kubernetes_events_total",
                                         "The number of Kubernetes events handled.", k8s_labels, 2,
                                         NULL, 0, &d->metrics.k8s_events, err);
        if (rc == 0)
            rc = mp_metrics_counter_register(r, "prometheus_sd_kubernetes_failures_total",
                                             "The number of failed WATCH/LIST requests.",
                                             &d->metrics.k8s_failures, err);
        if (rc != 0) {
            scrape_discovery_destroy(d);
            return rc;
        }
    }
    if (pthread_create(&d->th, NULL, sender_main, d) != 0) {
        scrape_discovery_destroy(d);
        return mp_err_set(err, MP_EIO, "discovery: cannot start the sender thread");
    }
    d->started = true;
    *out = d;
    return 0;
}

static void provider_destroy(struct provider *p)
{
    if (p == NULL)
        return;
    scrape_file_sd_destroy(p->file);
    scrape_k8s_sd_destroy(p->k8s);
    if (p->sink != NULL)
        sink_free(p->sink);
    mp_free(p->fingerprint);
    mp_free(p);
}

static void job_free(struct job *j)
{
    for (size_t i = 0; i < j->nprovs; i++)
        provider_destroy(j->provs[i]);
    mp_free(j->provs);
    mp_free(j->name);
    mp_free(j);
}

void scrape_discovery_destroy(struct scrape_discovery *d)
{
    if (d == NULL)
        return;
    pthread_mutex_lock(&d->mu);
    d->stop = true;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    if (d->started)
        pthread_join(d->th, NULL);
    for (size_t i = 0; i < d->njobs; i++)
        for (size_t p = 0; p < d->jobs[i]->nprovs; p++)
            scrape_k8s_sd_stop(d->jobs[i]->provs[p]->k8s);
    for (size_t i = 0; i < d->njobs; i++)
        job_free(d->jobs[i]);
    mp_free(d->jobs);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    pthread_mutex_destroy(&d->cb_mu);
    mp_free(d->sa_dir);
    mp_free(d);
}

/* ---- fingerprints --------------------------------------------------------------------------- */

static void fp_str(struct mp_buf *b, const char *k, const char *v)
{
    if (mp_buf_appendf(b, "%s=%zu:%s;", k, v ? strlen(v) : (size_t)-1, v ? v : "") != 0)
        mp_panic("discovery: out of memory");
}

static void fp_int(struct mp_buf *b, const char *k, long long v)
{
    if (mp_buf_appendf(b, "%s=%lld;", k, v) != 0)
        mp_panic("discovery: out of memory");
}

static void fp_static(struct mp_buf *b, const struct cfg_sd_configs *sd)
{
    fp_str(b, "type", "static");
    for (size_t i = 0; i < sd->nstatic_configs; i++) {
        const struct cfg_static_config *s = &sd->static_configs[i];
        fp_int(b, "group", (long long)i);
        for (size_t t = 0; t < s->ntargets; t++)
            fp_str(b, "t", s->targets[t]);
        for (size_t l = 0; l < s->nlabels; l++) {
            fp_str(b, "ln", s->labels[l].name);
            fp_str(b, "lv", s->labels[l].value);
        }
    }
}

static void fp_file(struct mp_buf *b, const struct cfg_file_sd *f)
{
    fp_str(b, "type", "file");
    fp_int(b, "refresh", f->refresh_interval_ms);
    for (size_t i = 0; i < f->nfiles; i++)
        fp_str(b, "f", f->files[i]);
}

static void fp_tls(struct mp_buf *b, const struct cfg_tls_config *t)
{
    fp_str(b, "ca", t->ca);
    fp_str(b, "cert", t->cert);
    fp_str(b, "key", t->key);
    fp_str(b, "ca_file", t->ca_file);
    fp_str(b, "cert_file", t->cert_file);
    fp_str(b, "key_file", t->key_file);
    fp_str(b, "server_name", t->server_name);
    fp_int(b, "insecure", t->insecure_skip_verify);
    fp_int(b, "min", t->min_version);
    fp_int(b, "max", t->max_version);
}

static void fp_k8s(struct mp_buf *b, const struct cfg_kubernetes_sd *k)
{
    fp_str(b, "type", "kubernetes");
    fp_str(b, "api_server", k->api_server);
    fp_int(b, "role", k->role);
    fp_str(b, "kubeconfig", k->kubeconfig_file);
    fp_int(b, "own_ns", k->own_namespace);
    fp_int(b, "attach_node", k->attach_metadata_node);
    for (size_t i = 0; i < k->nnamespaces; i++)
        fp_str(b, "ns", k->namespaces[i]);
    for (size_t i = 0; i < k->nselectors; i++) {
        fp_int(b, "sel_role", k->selectors[i].role);
        fp_str(b, "sel_label", k->selectors[i].label);
        fp_str(b, "sel_field", k->selectors[i].field);
    }
    const struct cfg_http_client *h = &k->http;
    if (h->authorization != NULL) {
        fp_str(b, "auth_type", h->authorization->type);
        fp_str(b, "auth_cred", h->authorization->credentials);
        fp_str(b, "auth_file", h->authorization->credentials_file);
    }
    if (h->basic_auth != NULL) {
        fp_str(b, "user", h->basic_auth->username);
        fp_str(b, "user_file", h->basic_auth->username_file);
        fp_str(b, "pass", h->basic_auth->password);
        fp_str(b, "pass_file", h->basic_auth->password_file);
    }
    fp_tls(b, &h->tls_config);
    fp_str(b, "proxy", h->proxy.proxy_url);
    fp_str(b, "no_proxy", h->proxy.no_proxy);
}

/* ---- static groups ------------------------------------------------------------------------- */

static int static_groups(struct scrape_sd_sink *s, const struct cfg_sd_configs *sd,
                         struct mp_err *err)
{
    for (size_t i = 0; i < sd->nstatic_configs; i++) {
        const struct cfg_static_config *c = &sd->static_configs[i];
        struct scrape_target_group g = {0};
        char src[32];
        snprintf(src, sizeof src, "%zu", i);
        g.source = mp_xstrdup(src);
        struct mp_label *ls = mp_xcalloc(c->nlabels ? c->nlabels : 1, sizeof *ls);
        for (size_t l = 0; l < c->nlabels; l++)
            ls[l] = (struct mp_label){mp_str_c(c->labels[l].name), mp_str_c(c->labels[l].value)};
        int rc = mp_labels_create(ls, c->nlabels, &g.group_labels, err);
        mp_free(ls);
        if (rc == 0 && c->ntargets > 0) {
            g.targets = mp_xcalloc(c->ntargets, sizeof *g.targets);
            for (size_t t = 0; t < c->ntargets && rc == 0; t++) {
                struct mp_label a = {MP_STR_LIT("__address__"), mp_str_c(c->targets[t])};
                rc = mp_labels_create(&a, 1, &g.targets[t], err);
                if (rc == 0)
                    g.ntargets++;
            }
        }
        if (rc != 0) {
            scrape_target_group_fini(&g);
            return mp_err_set(err, rc, "static_configs: %s", mp_strerror(rc));
        }
        scrape_sd_sink_update(s, &g);
    }
    scrape_sd_sink_ready(s);
    return 0;
}

/* ---- apply ---------------------------------------------------------------------------------- */

struct want {
    enum prov_type type;
    char *fp;
    const void *cfg; /* cfg_sd_configs (static), cfg_file_sd, cfg_kubernetes_sd */
};

static struct job *find_job(struct scrape_discovery *d, const char *name)
{
    for (size_t i = 0; i < d->njobs; i++)
        if (!d->jobs[i]->removed && strcmp(d->jobs[i]->name, name) == 0)
            return d->jobs[i];
    return NULL;
}

static struct provider *provider_start(struct scrape_discovery *d, const struct want *w,
                                       struct mp_err *err)
{
    struct provider *p = mp_xcalloc(1, sizeof *p);
    p->type = w->type;
    p->fingerprint = mp_xstrdup(w->fp);
    p->sink = mp_xcalloc(1, sizeof *p->sink);
    p->sink->d = d;
    struct scrape_sd_provider_env env = {.sink = p->sink,
                                         .metrics = &d->metrics,
                                         .tuning = &d->tuning,
                                         .service_account_dir = d->sa_dir};
    int rc = 0;
    switch (w->type) {
    case PROV_STATIC:
        rc = static_groups(p->sink, w->cfg, err);
        break;
    case PROV_FILE:
        rc = scrape_file_sd_create(w->cfg, &env, &p->file, err);
        break;
    case PROV_K8S:
        rc = scrape_k8s_sd_create(w->cfg, &env, &p->k8s, err);
        break;
    }
    if (rc != 0) {
        /* a provider that cannot start reports nothing, but counts as ready */
        p->sink->ready = true;
    }
    return p;
}

int scrape_discovery_apply(struct scrape_discovery *d, const struct cfg_config *cfg,
                           struct mp_err *err)
{
    int status = 0;
    struct provider **old_unused = NULL;
    size_t nold_unused = 0;
    pthread_mutex_lock(&d->mu);
    for (size_t i = 0; i < d->njobs; i++)
        d->jobs[i]->keep = false;
    pthread_mutex_unlock(&d->mu);

    for (size_t s = 0; cfg != NULL && s < cfg->nscrape_configs; s++) {
        const struct cfg_scrape_config *sc = &cfg->scrape_configs[s];
        const struct cfg_sd_configs *sd = &sc->sd;
        /* wanted providers */
        size_t nw = 0;
        struct want *ws =
            mp_xcalloc(2 + sd->nfile_sd_configs + sd->nkubernetes_sd_configs, sizeof *ws);
        struct mp_buf b;
        if (sd->nstatic_configs > 0) {
            mp_buf_init(&b, 0);
            fp_static(&b, sd);
            ws[nw++] = (struct want){PROV_STATIC, mp_buf_take(&b, NULL), sd};
        }
        for (size_t i = 0; i < sd->nfile_sd_configs; i++) {
            mp_buf_init(&b, 0);
            fp_file(&b, &sd->file_sd_configs[i]);
            fp_int(&b, "idx", (long long)i);
            ws[nw++] = (struct want){PROV_FILE, mp_buf_take(&b, NULL), &sd->file_sd_configs[i]};
        }
        for (size_t i = 0; i < sd->nkubernetes_sd_configs; i++) {
            mp_buf_init(&b, 0);
            fp_k8s(&b, &sd->kubernetes_sd_configs[i]);
            fp_int(&b, "idx", (long long)i);
            ws[nw++] =
                (struct want){PROV_K8S, mp_buf_take(&b, NULL), &sd->kubernetes_sd_configs[i]};
        }

        pthread_mutex_lock(&d->mu);
        struct job *j = find_job(d, sc->job_name);
        bool is_new = j == NULL;
        if (is_new) {
            j = mp_xcalloc(1, sizeof *j);
            j->name = mp_xstrdup(sc->job_name);
            j->created_ms = now_ms();
            if (d->discovered_vec != NULL) {
                const char *vals[2] = {j->name, "scrape"};
                j->discovered = mp_metrics_vec_gauge(d->discovered_vec, vals);
            }
        }
        j->keep = true;
        struct provider **old = j->provs;
        size_t nold = j->nprovs;
        for (size_t i = 0; i < nold; i++)
            old[i]->keep = false;
        pthread_mutex_unlock(&d->mu);

        struct provider **next = mp_xcalloc(nw ? nw : 1, sizeof *next);
        for (size_t w = 0; w < nw; w++) {
            struct provider *p = NULL;
            for (size_t i = 0; i < nold && p == NULL; i++)
                if (!old[i]->keep && strcmp(old[i]->fingerprint, ws[w].fp) == 0) {
                    p = old[i];
                    p->keep = true;
                }
            if (p == NULL) {
                struct mp_err perr;
                mp_err_clear(&perr);
                p = provider_start(d, &ws[w], &perr);
                if (perr.code != 0) {
                    MP_LOG_ERROR("discovery: cannot start a provider",
                                 MP_KV_STR("job", sc->job_name), MP_KV_STR("err", perr.msg));
                    if (status == 0) {
                        status = mp_err_set(err, MP_EINVAL, "job %s: %s", sc->job_name, perr.msg);
                    }
                }
            }
            next[w] = p;
        }
        pthread_mutex_lock(&d->mu);
        for (size_t i = 0; i < nold; i++)
            if (!old[i]->keep) {
                old[i]->sink->job = NULL;
                old_unused = mp_xrealloc(old_unused, (nold_unused + 1) * sizeof *old_unused);
                old_unused[nold_unused++] = old[i];
            }
        for (size_t w = 0; w < nw; w++)
            next[w]->sink->job = j;
        j->provs = next;
        j->nprovs = nw;
        j->dirty = true;
        if (is_new) {
            d->jobs = mp_xrealloc(d->jobs, (d->njobs + 1) * sizeof *d->jobs);
            d->jobs[d->njobs++] = j;
        }
        pthread_cond_broadcast(&d->cv);
        pthread_mutex_unlock(&d->mu);
        mp_free(old);
        for (size_t w = 0; w < nw; w++)
            mp_free(ws[w].fp);
        mp_free(ws);
    }

    /* jobs that went away: detach, then one last empty update */
    struct job **gone = NULL;
    size_t ngone = 0;
    pthread_mutex_lock(&d->mu);
    for (size_t i = 0; i < d->njobs;) {
        if (d->jobs[i]->keep) {
            i++;
            continue;
        }
        gone = mp_xrealloc(gone, (ngone + 1) * sizeof *gone);
        gone[ngone++] = d->jobs[i];
        for (size_t p = 0; p < d->jobs[i]->nprovs; p++)
            d->jobs[i]->provs[p]->sink->job = NULL;
        d->jobs[i] = d->jobs[--d->njobs];
    }
    pthread_mutex_unlock(&d->mu);
    for (size_t i = 0; i < nold_unused; i++)
        scrape_k8s_sd_stop(old_unused[i]->k8s);
    for (size_t i = 0; i < ngone; i++)
        for (size_t p = 0; p < gone[i]->nprovs; p++)
            scrape_k8s_sd_stop(gone[i]->provs[p]->k8s);
    for (size_t i = 0; i < nold_unused; i++)
        provider_destroy(old_unused[i]);
    mp_free(old_unused);
    for (size_t i = 0; i < ngone; i++) {
        struct snap s = {.job = mp_xstrdup(gone[i]->name)};
        if (gone[i]->discovered != NULL)
            mp_gauge_set(gone[i]->discovered, 0);
        deliver(d, &s, 1);
        snap_fini(&s);
        job_free(gone[i]);
    }
    mp_free(gone);
    return status;
}
