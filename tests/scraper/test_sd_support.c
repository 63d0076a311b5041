/* SPDX-License-Identifier: Apache-2.0 */
/* tests/scraper/test_sd_support.c: see test_sd_support.h. */
#define _GNU_SOURCE
#include "test_sd_support.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/labels.h"
#include "common/metrics.h"
#include "common/str.h"
#include "configs/config.h"
#include "scraper/sd_internal.h"

#define MAX_JOBS 8

struct sd_rec {
    pthread_mutex_t mu;
    struct scrape_discovery *d;
    struct mp_metrics_registry *reg;
    struct cfg_config *cfg;
    struct {
        char *job;
        char *text;
        size_t updates;
    } jobs[MAX_JOBS];
    size_t njobs;
};

void sd_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

bool sd_wait_for(bool (*pred)(void *ctx), void *ctx)
{
    for (int i = 0; i < 1000; i++) {
        if (pred(ctx))
            return true;
        sd_sleep_ms(10);
    }
    return false;
}

static int group_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *sd_groups_text(const struct scrape_target_group *g, size_t n)
{
    char **lines = calloc(n ? n : 1, sizeof *lines);
    cr_assert(lines);
    for (size_t i = 0; i < n; i++) {
        struct mp_buf b;
        mp_buf_init(&b, 0);
        cr_assert_eq(mp_buf_appendf(&b, "%s ", g[i].source), 0);
        cr_assert_eq(mp_labels_format(g[i].group_labels, &b), 0);
        for (size_t t = 0; t < g[i].ntargets; t++) {
            cr_assert_eq(mp_buf_append(&b, " ", 1), 0);
            cr_assert_eq(mp_labels_format(g[i].targets[t], &b), 0);
        }
        cr_assert_eq(mp_buf_append(&b, "\n", 1), 0);
        lines[i] = strdup(b.data);
        mp_buf_fini(&b);
    }
    qsort(lines, n, sizeof *lines, group_cmp);
    size_t total = 1;
    for (size_t i = 0; i < n; i++)
        total += strlen(lines[i]);
    char *out = malloc(total);
    cr_assert(out);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(lines[i]);
        memcpy(out + off, lines[i], l);
        off += l;
        free(lines[i]);
    }
    out[off] = '\0';
    free(lines);
    return out;
}

static void on_update(void *ctx, const char *job, const struct scrape_target_group *g, size_t n)
{
    struct sd_rec *r = ctx;
    char *text = n ? sd_groups_text(g, n) : NULL;
    pthread_mutex_lock(&r->mu);
    size_t i = 0;
    while (i < r->njobs && strcmp(r->jobs[i].job, job) != 0)
        i++;
    if (i == r->njobs && r->njobs < MAX_JOBS) {
        r->jobs[i].job = strdup(job);
        r->jobs[i].text = NULL;
        r->jobs[i].updates = 0;
        r->njobs++;
    }
    if (i < r->njobs) {
        free(r->jobs[i].text);
        r->jobs[i].text = text;
        r->jobs[i].updates++;
        text = NULL;
    }
    pthread_mutex_unlock(&r->mu);
    free(text);
}

static struct cfg_config *load(const char *yaml)
{
    struct cfg_config *cfg = NULL;
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(cfg_config_load_buf("test.yml", yaml, strlen(yaml), &cfg, &err), 0, "%s", err.msg);
    return cfg;
}

struct sd_rec *sd_rec_start(const char *yaml, const char *sa_dir)
{
    struct sd_rec *r = calloc(1, sizeof *r);
    cr_assert(r);
    pthread_mutex_init(&r->mu, NULL);
    cr_assert_eq(mp_metrics_registry_create(&r->reg), 0);
    struct scrape_discovery_opts o;
    scrape_discovery_opts_init(&o);
    o.on_update = on_update;
    o.ctx = r;
    o.update_interval_ms = 20;
    o.metrics = r->reg;
    if (sa_dir)
        o.service_account_dir = sa_dir;
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(scrape_discovery_create(&o, &r->d, &err), 0, "%s", err.msg);
    struct scrape_sd_tuning t;
    scrape_sd_tuning_init(&t);
    t.backoff_initial_ms = 50;
    t.backoff_max_ms = 200;
    t.watch_idle_ms = 1000;
    t.first_update_ms = 2000;
    scrape_discovery_tune(r->d, &t);
    if (yaml)
        sd_rec_apply(r, yaml);
    return r;
}

void sd_rec_apply(struct sd_rec *r, const char *yaml)
{
    struct cfg_config *cfg = load(yaml);
    struct mp_err err;
    mp_err_clear(&err);
    int rc = scrape_discovery_apply(r->d, cfg, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    cfg_config_destroy(r->cfg); /* borrowed until the next apply */
    r->cfg = cfg;
}

void sd_rec_stop(struct sd_rec *r)
{
    scrape_discovery_destroy(r->d);
    cfg_config_destroy(r->cfg);
    for (size_t i = 0; i < r->njobs; i++) {
        free(r->jobs[i].job);
        free(r->jobs[i].text);
    }
    mp_metrics_registry_destroy(r->reg);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

struct scrape_discovery *sd_rec_discovery(struct sd_rec *r)
{
    return r->d;
}

struct mp_metrics_registry *sd_rec_metrics(struct sd_rec *r)
{
    return r->reg;
}

char *sd_rec_text(struct sd_rec *r, const char *job)
{
    char *out = NULL;
    bool found = false;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->njobs; i++)
        if (strcmp(r->jobs[i].job, job) == 0) {
            found = true;
            out = r->jobs[i].text ? strdup(r->jobs[i].text) : NULL;
        }
    pthread_mutex_unlock(&r->mu);
    return found ? out : strdup("");
}

size_t sd_rec_updates(struct sd_rec *r, const char *job)
{
    size_t n = 0;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->njobs; i++)
        if (strcmp(r->jobs[i].job, job) == 0)
            n = r->jobs[i].updates;
    pthread_mutex_unlock(&r->mu);
    return n;
}

bool sd_rec_wait(struct sd_rec *r, const char *job, const char *want)
{
    for (int i = 0; i < 1000; i++) {
        char *t = sd_rec_text(r, job);
        bool eq = (t == NULL && want == NULL) || (t && want && strcmp(t, want) == 0);
        if (eq || i == 999) {
            if (!eq)
                cr_log_error("job %s: have\n%s\nwant\n%s", job, t ? t : "(removed)",
                             want ? want : "(removed)");
            free(t);
            return eq;
        }
        free(t);
        sd_sleep_ms(10);
    }
    return false;
}
