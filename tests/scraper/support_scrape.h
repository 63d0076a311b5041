/* SPDX-License-Identifier: Apache-2.0 */
/* tests/scraper/support_scrape.h: helpers of the scrape manager tests: a small HTTP endpoint
 * on 127.0.0.1 (libmicrohttpd, one thread per connection) serving bodies the test sets per
 * path, a tsdb in a mkdtemp directory, a manager over it, target groups built by hand, reads
 * of what landed in the tsdb, and bounded waits (a deadline, never a speed assertion). */
#ifndef TESTS_SCRAPER_SUPPORT_SCRAPE_H
#define TESTS_SCRAPER_SUPPORT_SCRAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scraper/scraper.h"

struct mock;
struct tsdb;
struct cfg_config;

struct mock *mock_start(void);
void mock_stop(struct mock *m);
unsigned mock_port(const struct mock *m);
/* Serves body at path with status and content type; gzip compresses it (Content-Encoding:
 * gzip); delay_ms sleeps before answering. Replaces an earlier setting of path. */
void mock_set(struct mock *m, const char *path, int status, const char *ctype, const char *body,
              bool gzip, int delay_ms);
unsigned mock_hits(struct mock *m, const char *path);
/* The named header of the last request to path ("" if absent), copied into buf. */
void mock_header(struct mock *m, const char *path, const char *name, char *buf, size_t cap);

/* A test world: tsdb in a temp dir, manager, config. */
struct world {
    char *dir;
    struct tsdb *db;
    struct scrape_manager *sm;
    struct cfg_config *cfg;
    struct mock *http;
};
void world_init(struct world *w);
void world_fini(struct world *w);
/* Loads yaml (printf format) and applies it. */
void world_config(struct world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One group of targets with these __address__es (NULL-terminated), extra label pairs for the
 * group (name, value, ..., NULL), handed to scrape_manager_sync. */
void world_sync(struct world *w, const char *job, const char *const *addrs,
                const char *const *group_labels);
/* "127.0.0.1:<port>" of the mock server, static buffer. */
const char *world_addr(struct world *w);

struct sample {
    int64_t t;
    double v;
};
/* Samples of the series selected by name and label pairs (NULL-terminated list of name,
 * value, ...; each must match exactly, other labels are free): how many series matched, the
 * first one's samples in out (up to cap, count in *n). */
size_t db_samples(struct tsdb *db, const char *name, const char *const *pairs,
                  struct sample *out, size_t cap, size_t *n);
/* The label set of the first series of name, rendered as {a="b", ...}, in buf. */
bool db_series_labels(struct tsdb *db, const char *name, char *buf, size_t cap);
/* Number of non-stale samples of name's first series (0 if none). */
size_t db_count(struct tsdb *db, const char *name, const char *const *pairs);
/* Last sample of the first series of name; false when there is none. */
bool db_last(struct tsdb *db, const char *name, const char *const *pairs, struct sample *out);
bool is_stale(double v);

/* Sleeps 10 ms steps until cond(ctx) or 10 s have passed; returns cond's last value. */
bool wait_for(bool (*cond)(void *ctx), void *ctx);
/* Waits until name has at least n samples (up counts attempts). */
bool wait_samples(struct tsdb *db, const char *name, const char *const *pairs, size_t n);

/* The first active target's info copied out (labels rendered as text). */
struct tinfo {
    char pool[64], labels[512], discovered[1024], url[256], last_error[512];
    enum scrape_health health;
    int64_t last_scrape_ms;
    size_t nactive, ndropped;
};
void world_target(struct world *w, struct tinfo *out);

#endif
