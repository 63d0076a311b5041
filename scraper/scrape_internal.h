/* SPDX-License-Identifier: Apache-2.0 */
/* scraper/scrape_internal.h: private to scraper/ (manager.c, loop.c, cache.c) and
 * tests/scraper. The scrape cache, the target and loop structures the manager and the event
 * loop share, and test counters.
 *
 * Lock order: manager mu -> manager pools_mu -> pool mu -> loop mu -> target mu -> cache
 * meta_mu. A loop's mu is held by its thread at all times except while it waits in
 * curl_multi_poll, so whoever holds it may touch the loop's heap, its removal list and the
 * scrape state of its targets (a target never changes loop). */
#ifndef SCRAPER_SCRAPE_INTERNAL_H
#define SCRAPER_SCRAPE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/str.h"
#include "scraper/scraper.h"

struct mp_labels;
struct mp_counter;
struct mp_gauge;
struct mp_histogram;

/* ---- the per-target scrape cache (cache.c) ------------------------------------------------
 * Maps the exposed series text (scrape_entry.series), by its 128-bit hash, to a series record
 * holding the tsdb ref, so a known series costs one hash of the text and one probe. The final
 * labels are not kept: the tsdb head has them. Texts that relabel to one label set get one
 * head ref and share its record, which is also the unit of staleness: a series appended
 * (without an exposed timestamp) in attempt N-1 and not in attempt N gets a stale marker at N.
 * One owner thread (the target's loop) except the metadata, which has its own lock for
 * scrape_manager_metadata. Pointers to entries and series are valid until the next
 * scrape_cache_add or iter_done on the cache. */

struct scrape_cache_series {
    uint64_t ref;       /* tsdb series ref; 0: a free record */
    uint64_t seen;      /* last attempt that appended it for staleness (0: none) */
    uint64_t prev_seen; /* seen before that attempt, restored when the attempt fails */
    uint32_t nentries;  /* cache entries pointing here */
    uint32_t next;      /* cache.c: by-ref chain or free list */
};

struct scrape_cache_key {
    uint64_t lo, hi; /* XXH3-128 of the text (lo: scrape_cache_test_hash when set) */
    uint32_t len;    /* of the text: a hit needs all three equal */
};

struct scrape_cache_entry {
    uint64_t lo, hi;    /* the key */
    uint32_t len;
    uint32_t last_iter; /* last attempt that exposed the text (low 32 bits) */
    uint32_t sidx;      /* cache.c: state or series index */
    uint32_t next;      /* cache.c: slot of the text that followed it in the last attempt */
};

struct scrape_cache;

struct scrape_cache *scrape_cache_create(void);
void scrape_cache_destroy(struct scrape_cache *c); /* NULL is a no-op */
struct scrape_cache_key scrape_cache_key_hash(struct mp_str text);
/* The entry of key k or NULL. */
struct scrape_cache_entry *scrape_cache_find(const struct scrape_cache *c,
                                             struct scrape_cache_key k);
static inline void scrape_cache_entry_seen(struct scrape_cache_entry *e, uint64_t iter)
{
    e->last_iter = (uint32_t)iter;
}
/* The series record of e; NULL when the text is dropped by metric relabeling. */
struct scrape_cache_series *scrape_cache_entry_series(struct scrape_cache *c,
                                                      const struct scrape_cache_entry *e);
/* Adds k (absent) -> the record of tsdb ref ref (0: the text is dropped), created if needed.
 * MP_ENOMEM, MP_ELIMIT (over 2^31 series). */
MP_NODISCARD int scrape_cache_add(struct scrape_cache *c, struct scrape_cache_key k, uint64_t ref,
                                  uint64_t iter, struct scrape_cache_entry **out);
/* Scrape order: the sample lines of a body usually come in the order of the last attempt,
 * so the cache remembers, per entry, the entry of the line after it. scrape_cache_order_begin
 * starts an attempt; scrape_cache_predict is the entry the next line probably has (NULL: no
 * guess), which the caller must confirm by key (scrape_cache_key_matches) before use;
 * scrape_cache_order_note records the entry the line had. */
void scrape_cache_order_begin(struct scrape_cache *c);
struct scrape_cache_entry *scrape_cache_predict(const struct scrape_cache *c);
void scrape_cache_order_note(struct scrape_cache *c, const struct scrape_cache_entry *e);
static inline bool scrape_cache_key_matches(const struct scrape_cache_entry *e,
                                            struct scrape_cache_key k)
{
    return e->lo == k.lo && e->hi == k.hi && e->len == k.len;
}
/* Removes e (its text will miss again): for a ref the tsdb no longer knows. */
void scrape_cache_forget(struct scrape_cache *c, struct scrape_cache_entry *e);
static inline void scrape_cache_track(struct scrape_cache_series *s, uint64_t iter)
{
    if (s->seen != iter) {
        s->prev_seen = s->seen;
        s->seen = iter;
    }
}
/* A failed attempt: series tracked in iter go back to what they were before it. */
void scrape_cache_undo(struct scrape_cache *c, uint64_t iter);
/* fn for each series tracked in attempt iter (the stale candidates); returns how many. */
size_t scrape_cache_each_seen(struct scrape_cache *c, uint64_t iter,
                              void (*fn)(void *ctx, struct scrape_cache_series *s), void *ctx);
/* After a successful attempt iter: entries not exposed in it go (Prometheus flushes its
 * cache so on every successful scrape), then series no entry points to; metadata unseen for
 * more than 10 attempts go too. */
void scrape_cache_iter_done(struct scrape_cache *c, uint64_t iter);
size_t scrape_cache_entries(const struct scrape_cache *c);
size_t scrape_cache_series_count(const struct scrape_cache *c);
/* Heap bytes the cache holds (for the benchmark's accounting); takes the metadata lock. */
size_t scrape_cache_bytes(struct scrape_cache *c);

/* Metadata of the families a target exposes. help is the raw text (escaped says it has a
 * backslash; text_help: 0.0.4 rules); stored unescaped. Allocates only when a value
 * changes. Thread-safe against scrape_cache_meta_each. */
void scrape_cache_meta_type(struct scrape_cache *c, struct mp_str family,
                            enum scrape_metric_type t, uint64_t iter);
void scrape_cache_meta_help(struct scrape_cache *c, struct mp_str family, struct mp_str raw,
                            bool escaped, bool text_help, uint64_t iter);
void scrape_cache_meta_unit(struct scrape_cache *c, struct mp_str family, struct mp_str unit,
                            uint64_t iter);
/* fn under the metadata lock (fn must only copy). */
void scrape_cache_meta_each(struct scrape_cache *c,
                            void (*fn)(void *ctx, struct mp_str family,
                                       enum scrape_metric_type t, struct mp_str help,
                                       struct mp_str unit),
                            void *ctx);

/* ---- targets, pools and loops (manager.c, loop.c) ----------------------------------------- */

enum scrape_target_state {
    SCRAPE_TS_IDLE = 0, /* in the heap, waiting for its tick */
    SCRAPE_TS_INFLIGHT, /* transfer in the loop's multi handle (also in the heap) */
    SCRAPE_TS_STOPPING, /* removed; in the heap until its end-of-run stale markers */
};

struct scrape_pool;
struct scrape_loop;
struct scrape_body;
struct scrape_httpc_req;

#define SCRAPE_NREPORT 5

struct scrape_target {
    /* identity, immutable after creation */
    struct scrape_pool *pool;           /* not used once removed */
    struct mp_labels *discovered;       /* scrape_target_defaults */
    struct mp_labels *labels;           /* final target labels */
    struct mp_labels *full;             /* with the __ labels */
    char *url;
    uint64_t hash;                      /* Prometheus target hash (labels + URL) */
    int64_t interval_ms, timeout_ms;
    struct mp_labels *report_ls[SCRAPE_NREPORT];
    struct scrape_loop *loop;
    struct mp_histogram *interval_hist; /* prometheus_target_interval_length_seconds child */

    /* loop state: under loop mu */
    enum scrape_target_state state;
    size_t heap_idx;
    int64_t next_ns;           /* next tick (monotonic) */
    int64_t last_start_ns;     /* previous scrape start (monotonic), 0 none */
    int64_t aligned_wall;      /* Prometheus alignedScrapeTime (wall ns) once aligned_set */
    bool aligned_set;
    int64_t scrape_ts_ms;      /* timestamp of the running attempt */
    int64_t start_ns;          /* monotonic start of the running attempt */
    int64_t stale_ts_ms;       /* STOPPING: stamp of the end-of-run markers */
    bool removed, stale_on_stop, scraped;
    char *forced_err;          /* the target could not be set up: every attempt fails */
    char *limit_err;           /* target_limit exceeded: attempts fail without a request */
    uint64_t iter;             /* attempts so far; the current one while in flight */
    uint64_t report_ref[SCRAPE_NREPORT];
    struct scrape_cache *cache;
    size_t ok_entries;         /* cache entries after the last successful attempt */
    void *easy;                /* CURL * */
    struct curl_slist *headers;
    struct scrape_httpc_req *http; /* scraper/httpc.h: the HTTP client config on easy */
    struct scrape_body *body;  /* while in flight */
    size_t body_hint;          /* the last body's length: its buffer's first size */
    size_t body_limit;         /* body_size_limit; 0 none */
    bool body_limit_hit;
    char curl_err[256];        /* CURLOPT_ERRORBUFFER (CURL_ERROR_SIZE) */
    char status_line[64];      /* "404 Not Found" of the last response */

    /* status for /api/v1/targets: under mu */
    pthread_mutex_t mu;
    enum scrape_health health;
    char last_error[MP_ERR_MSG_MAX];
    int64_t last_scrape_ms;
    double last_duration_s;
};

/* One event-loop thread: its curl multi handle, the timer heap of its targets, scratch. */
struct scrape_loop;

struct scrape_manager;

/* loop.c, for manager.c */
MP_NODISCARD int scrape_loops_start(struct scrape_manager *m, struct scrape_loop **out, int n,
                                    struct mp_err *err);
void scrape_loops_stop(struct scrape_loop *loops, int n); /* frees every target left */
struct scrape_loop *scrape_loop_at(struct scrape_loop *loops, int i);
void scrape_loop_lock(struct scrape_loop *l);
void scrape_loop_unlock(struct scrape_loop *l);
void scrape_loop_wakeup(struct scrape_loop *l);
/* Under the loop lock: schedules a new target at its offset in the interval. */
void scrape_loop_add_locked(struct scrape_loop *l, struct scrape_target *t, int64_t offset_ns);
/* Under the loop lock: the target stops (stale: end-of-run markers as Prometheus) and is
 * freed by the loop thread. */
void scrape_loop_remove_locked(struct scrape_loop *l, struct scrape_target *t, bool stale);
/* Creates a target's curl handle and cache (any thread, before it is added). */
MP_NODISCARD int scrape_target_prepare(struct scrape_target *t,
                                       const struct cfg_scrape_config *sc, struct mp_err *err);
void scrape_target_free(struct scrape_target *t);

/* manager.c, for loop.c: the pool's current scrape config (read under the loop lock). */
const struct cfg_scrape_config *scrape_pool_config(const struct scrape_pool *p);
/* The HTTP client the pool's targets share (borrowed; scrape_target_prepare takes its own
 * reference through its req), or why it could not be built. Under the manager's lock. */
struct scrape_httpc;
MP_NODISCARD int scrape_pool_httpc(const struct scrape_pool *p, struct scrape_httpc **out,
                                   struct mp_err *err);
struct tsdb *scrape_manager_db(const struct scrape_manager *m);

/* Self-metrics the loops update (all may be NULL when no registry was given). */
struct scrape_loop_metrics {
    struct mp_counter *out_of_order, *duplicate, *out_of_bounds, *sample_limit, *body_limit,
        *label_limit, *cache_flush_forced;
};
const struct scrape_loop_metrics *scrape_manager_loop_metrics(const struct scrape_manager *m);

/* ---- test hooks ---------------------------------------------------------------------------- */

struct scrape_test_stats {
    uint64_t adds_by_ref;    /* samples appended with a cached tsdb ref */
    uint64_t adds_by_labels; /* samples appended by label set (first time of a series) */
    uint64_t cache_misses;   /* series texts that needed label building */
    uint64_t scrapes;        /* finished attempts */
    uint64_t failed;         /* of them failed (timeouts, HTTP errors, limits, ...) */
    uint64_t late;           /* attempts started over a tenth of the interval after their tick */
    uint64_t missed;         /* ticks dropped: the loop was behind, or the last one in flight */
};
/* Sums the loops' counters (takes no lock: a busy loop does not delay it). */
void scrape_manager_test_stats(struct scrape_manager *m, struct scrape_test_stats *out);
void scrape_loop_stats_add(struct scrape_loop *l, struct scrape_test_stats *out);
/* When set, replaces the low half of scrape_cache_key_hash (tests force collisions with it;
 * set it only while no scrape runs). */
extern uint64_t (*scrape_cache_test_hash)(const void *text, size_t len);
/* scrape_cache_bytes of every target (takes each loop's lock). */
size_t scrape_manager_test_cache_bytes(struct scrape_manager *m);
size_t scrape_loop_cache_bytes(struct scrape_loop *l);

#endif
