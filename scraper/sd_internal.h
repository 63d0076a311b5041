/* SPDX-License-Identifier: Apache-2.0 */
/* scraper/sd_internal.h (private to scraper/ and tests/scraper/): the pieces behind
 * scrape_discovery_* (scraper.h): the sink through which providers report groups to the
 * manager (discovery.c), the file SD and Kubernetes providers (file_sd.c, k8s_watch.c), the
 * Kubernetes API client (k8s_client.c) and its watch-stream decoder.
 *
 * Threads: each provider runs its own thread(s) and calls the sink from them; the sink
 * serialises on the manager's lock. Providers are created and destroyed by the manager's
 * controlling thread (apply/destroy). */
#ifndef SCRAPER_SD_INTERNAL_H
#define SCRAPER_SD_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/str.h"
#include "scraper/scraper.h"

struct cfg_file_sd;
struct cfg_kubernetes_sd;
struct mp_counter;
struct mp_metrics_vec;

/* ---- timing knobs (tests shorten them) ---------------------------------------------------- */

struct scrape_sd_tuning {
    int64_t backoff_initial_ms; /* 800 (client-go) */
    int64_t backoff_max_ms;     /* 30000 */
    int64_t watch_idle_ms;      /* a watch without a byte for this long is stalled: 180000 */
    int64_t first_update_ms;    /* a job's first set goes out after this at most: 5000 */
};
void scrape_sd_tuning_init(struct scrape_sd_tuning *t);
/* Call before the first apply. */
void scrape_discovery_tune(struct scrape_discovery *d, const struct scrape_sd_tuning *t);

/* A CLOCK_MONOTONIC deadline ms milliseconds from now, for pthread_cond_timedwait on a
 * condition variable created with that clock. */
struct timespec;
void scrape_sd_deadline(struct timespec *ts, int64_t ms);

/* ---- the sink: provider -> manager ---------------------------------------------------------- */

struct scrape_sd_sink; /* owned by the manager; one per provider */

/* Replaces the provider's group of the same source with *g (ownership moves; *g is zeroed).
 * A group without targets removes the source. Thread-safe. */
void scrape_sd_sink_update(struct scrape_sd_sink *s, struct scrape_target_group *g);
/* The provider has reported its initial state. */
void scrape_sd_sink_ready(struct scrape_sd_sink *s);

/* Self-metrics shared by the providers (NULL members when no registry). */
struct scrape_sd_metrics {
    struct mp_counter *file_read_errors; /* prometheus_sd_file_read_errors_total */
    struct mp_counter *file_scans;       /* prometheus_sd_file_scan_total (meshprom) */
    struct mp_metrics_vec *k8s_events;   /* prometheus_sd_kubernetes_events_total{role,event} */
    struct mp_counter *k8s_failures;     /* prometheus_sd_kubernetes_failures_total */
    /* Counted always, also without a registry (tests read them). */
    atomic_uint_fast64_t k8s_relists; /* LIST cycles after the first */
    atomic_uint_fast64_t k8s_watches; /* WATCH requests */
};

/* ---- providers ------------------------------------------------------------------------------ */

struct scrape_sd_provider_env {
    struct scrape_sd_sink *sink;
    struct scrape_sd_metrics *metrics;
    const struct scrape_sd_tuning *tuning;
    const char *service_account_dir;
};

struct scrape_file_sd; /* opaque */
/* Copies what it needs from c; runs its own thread. */
MP_NODISCARD int scrape_file_sd_create(const struct cfg_file_sd *c,
                                       const struct scrape_sd_provider_env *env,
                                       struct scrape_file_sd **out, struct mp_err *err);
void scrape_file_sd_destroy(struct scrape_file_sd *f); /* joins; NULL is a no-op */
/* Parses one file SD document (JSON when json, else YAML) into groups with sources
 * "<path>:<i>" and __meta_filepath = path. Appends to *groups and *n (caller frees each with
 * scrape_target_group_fini and the array with mp_free). MP_EPARSE with the reason. */
MP_NODISCARD int scrape_file_sd_parse(const char *path, const char *data, size_t len, bool json,
                                      struct scrape_target_group **groups, size_t *n,
                                      struct mp_err *err);

struct scrape_k8s_sd; /* opaque */
/* Copies what it needs from c; starts one reflector thread per watched resource and
 * namespace. MP_EINVAL for a config it cannot use (in-cluster without the environment or
 * token, unreadable own namespace). */
MP_NODISCARD int scrape_k8s_sd_create(const struct cfg_kubernetes_sd *c,
                                      const struct scrape_sd_provider_env *env,
                                      struct scrape_k8s_sd **out, struct mp_err *err);
/* Asks the threads to stop without waiting (so that several providers stop in parallel:
 * a reflector inside a request notices within about a second). NULL is a no-op. */
void scrape_k8s_sd_stop(struct scrape_k8s_sd *k);
void scrape_k8s_sd_destroy(struct scrape_k8s_sd *k); /* stops, joins; NULL is a no-op */

/* ---- the API client (k8s_client.c) ---------------------------------------------------------- */

struct scrape_k8s_client; /* immutable after create; shared by a provider's threads */

MP_NODISCARD int scrape_k8s_client_create(const struct cfg_kubernetes_sd *c,
                                          const char *service_account_dir,
                                          struct scrape_k8s_client **out, struct mp_err *err);
void scrape_k8s_client_destroy(struct scrape_k8s_client *c);

/* GET base + path_query into body. *status gets the HTTP status (0 on a transport error,
 * which returns MP_EIO). *stop is polled: when set the request is aborted (MP_ECANCELED). */
MP_NODISCARD int scrape_k8s_client_get(struct scrape_k8s_client *c, const char *path_query,
                                       struct mp_buf *body, long *status, const atomic_bool *stop,
                                       struct mp_err *err);

/* Streams a WATCH: each complete JSON value of the body goes to fn (return false to end the
 * watch). Ends 0 on a clean end of body (or when fn returned false), MP_ETIMEOUT when no byte
 * came for idle_ms or the whole watch took max_ms, MP_EIO on a transport error or a broken
 * stream, MP_ECANCELED on *stop, MP_EPARSE on bytes that are not JSON. *status as above. */
struct json_object;
typedef bool scrape_k8s_event_fn(void *ctx, struct json_object *value);
MP_NODISCARD int scrape_k8s_client_watch(struct scrape_k8s_client *c, const char *path_query,
                                         int64_t idle_ms, int64_t max_ms, scrape_k8s_event_fn *fn,
                                         void *ctx, long *status, const atomic_bool *stop,
                                         struct mp_err *err);

/* The watch-stream decoder: concatenated JSON values, split anywhere. */
struct scrape_k8s_stream;
struct scrape_k8s_stream *scrape_k8s_stream_create(size_t max_value_bytes);
void scrape_k8s_stream_destroy(struct scrape_k8s_stream *s);
/* Feeds bytes; calls fn for every value completed. 0, MP_EPARSE (not JSON, or a value over
 * the cap), or MP_ECANCELED when fn returned false. */
MP_NODISCARD int scrape_k8s_stream_feed(struct scrape_k8s_stream *s, const char *p, size_t n,
                                        scrape_k8s_event_fn *fn, void *ctx, struct mp_err *err);

/* A watch event taken apart. type: "ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR".
 * Everything borrowed from the value. */
struct scrape_k8s_event {
    const char *type;
    struct json_object *object;
    const char *resource_version; /* object's metadata.resourceVersion; NULL if absent */
    int code;                     /* ERROR: the Status code (0 if absent) */
    const char *reason;           /* ERROR: the Status reason ("" if absent) */
};
/* MP_EPARSE when value is not {"type": string, "object": object}. */
MP_NODISCARD int scrape_k8s_event_decode(struct json_object *value, struct scrape_k8s_event *ev,
                                         struct mp_err *err);

#endif
