/* SPDX-License-Identifier: Apache-2.0 */
/* tests/scraper/test_sd_support.h: a discovery callback that records each job's latest set
 * of groups as canonical text, and bounded waits on it (shared by test_sd*.c and
 * test_k8s_watch*.c). */
#ifndef TESTS_SCRAPER_TEST_SD_SUPPORT_H
#define TESTS_SCRAPER_TEST_SD_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "scraper/scraper.h"

struct cfg_config;
struct sd_rec;

/* Creates a discovery manager with fast tuning (update interval 20 ms, backoff 50 ms,
 * watch idle 1 s) feeding a recorder, and applies the YAML config. */
struct sd_rec *sd_rec_start(const char *yaml, const char *sa_dir);
void sd_rec_apply(struct sd_rec *r, const char *yaml);
void sd_rec_stop(struct sd_rec *r);
struct scrape_discovery *sd_rec_discovery(struct sd_rec *r);
struct mp_metrics_registry *sd_rec_metrics(struct sd_rec *r);

/* Canonical text of groups (sorted by source): "source {group labels} [target] ...\n". */
char *sd_groups_text(const struct scrape_target_group *g, size_t n);
/* Latest text for job (malloc'd; "" before the first update, NULL after a final n == 0). */
char *sd_rec_text(struct sd_rec *r, const char *job);
/* Number of callbacks for job so far. */
size_t sd_rec_updates(struct sd_rec *r, const char *job);
/* Waits (bounded: 10 s in 10 ms steps) until the job's text equals want; returns whether. */
bool sd_rec_wait(struct sd_rec *r, const char *job, const char *want);
/* Polls pred every 10 ms, at most 1000 times; returns whether it became true. */
bool sd_wait_for(bool (*pred)(void *ctx), void *ctx);
/* Sleeps ms milliseconds. */
void sd_sleep_ms(long ms);

#endif
