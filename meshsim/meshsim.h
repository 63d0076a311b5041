/* SPDX-License-Identifier: Apache-2.0 */
/* meshsim/meshsim.h: the simulated mesh (issue 5): linkerd2-proxy admin endpoints serving the
 * metric catalogue of shared/spec/linkerd-workload.md, and a fake Kubernetes API server for the
 * simulated pods (shared/spec/kubernetes-sd.md 4). Used by the meshsim binary, tests, the demo
 * and benchmarks. */
#ifndef MESHSIM_MESHSIM_H
#define MESHSIM_MESHSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/str.h"

/* ---- the fake Kubernetes API (k8s_fake.c) --------------------------------------------------- */
/* A fake Kubernetes API server (kubernetes-sd.md 4) on loopback, HTTP/1.1 (TLS when opts give a
 * cert) with JSON: GET /version, /api, /apis, and LIST and WATCH of pods, services, endpoints,
 * endpointslices (discovery.k8s.io/v1), nodes and ingresses (networking.k8s.io/v1) on the
 * cluster-wide and per-namespace paths
 * of 1.1. One global resourceVersion counter shared by all kinds; every put/delete bumps it. A
 * bounded event history with a compaction floor: a WATCH from an RV below the floor gets HTTP 200
 * and one ERROR event (Status code 410, reason Expired), a continue token that was expired gets
 * HTTP 410. Watches honour allowWatchBookmarks, timeoutSeconds (else timeout=<duration>),
 * labelSelector (equality and set-based) and fieldSelector (=, ==, != on dotted paths such
 * as metadata.name, spec.nodeName, status.phase); an update moving an object into a
 * watcher's selection is sent as ADDED, out of it as DELETED. RV "0" or empty on a watch:
 * synthetic ADDED for every matching object first. LIST with limit (and RV not "0") pages
 * with a continue token that pins the snapshot. The control functions below mutate state and
 * inject faults; a request log lets tests check paths and query parameters.
 *
 * Stored objects: the JSON given to put, with metadata.name/namespace set from the
 * arguments, metadata.resourceVersion set to the new revision, metadata.uid and
 * creationTimestamp filled when absent, and the defaults a real API server fills in when a
 * field is absent: port protocol "TCP" (container, Service, Endpoints and EndpointSlice
 * ports) and EndpointSlice port name "" (kubernetes-sd.md 6.2), Pod status.phase "Pending",
 * Service spec.type "ClusterIP". List items omit kind/apiVersion, watch objects carry them.
 *
 * Thread safety: every function may be called from any thread (one mutex); the server runs
 * libmicrohttpd's internal polling thread plus a ticker thread for timeouts and bookmarks.
 * Streaming watches suspend their connection while there is nothing to send. */

struct meshsim_k8s; /* opaque */

enum meshsim_k8s_kind {
    MESHSIM_K8S_PODS = 0,
    MESHSIM_K8S_SERVICES,
    MESHSIM_K8S_ENDPOINTS,
    MESHSIM_K8S_ENDPOINTSLICES,
    MESHSIM_K8S_NODES,     /* cluster-scoped: namespace arguments are ignored */
    MESHSIM_K8S_INGRESSES, /* networking.k8s.io/v1 */
};
#define MESHSIM_K8S_KIND_COUNT 6

struct meshsim_k8s_opts {
    size_t history;               /* events kept (all kinds); older ones raise the floor;
                                   * default 4096 */
    int64_t bookmark_interval_ms; /* periodic BOOKMARK to watchers that allow them; default
                                   * 60000; 0: only meshsim_k8s_bookmark and the one 2 s
                                   * before a watch's timeout */
    bool bookmarks;               /* false: never send BOOKMARK events; default true */
    bool ignore_timeout;          /* hold watches past timeoutSeconds; default false */
    const char *git_version;      /* /version gitVersion; default "v1.31.4" (copied) */
    size_t request_log;           /* requests remembered (ring); default 4096 */
    bool split_writes;            /* hand watch bytes out in pieces of 1..64 bytes (one HTTP
                                   * chunk each), so that events straddle chunks; default
                                   * false */
    const char *tls_cert_pem;     /* both set: serve HTTPS with this certificate chain and */
    const char *tls_key_pem;      /* key (PEM text, copied); default NULL: plain HTTP */
};
void meshsim_k8s_opts_init(struct meshsim_k8s_opts *o);

/* Starts the server on listen ("127.0.0.1:0" picks a free port; "host:port"). o may be
 * NULL (defaults). MP_EINVAL for a bad address, MP_EIO when it cannot listen. */
MP_NODISCARD int meshsim_k8s_create(const char *listen, const struct meshsim_k8s_opts *o,
                                    struct meshsim_k8s **out, struct mp_err *err);
/* Stops the server: open watches are cut, the threads joined. NULL is a no-op. */
void meshsim_k8s_destroy(struct meshsim_k8s *k);
/* The bound TCP port. */
uint16_t meshsim_k8s_port(const struct meshsim_k8s *k);
/* The current global resourceVersion (0 before the first change). */
uint64_t meshsim_k8s_revision(const struct meshsim_k8s *k);

/* Adds (ADDED) or replaces (MODIFIED) the object ns/name of kind; json is the object
 * (at least "{}"), [json, json + len). Bumps the revision; *rv (may be NULL) gets it.
 * MP_EPARSE when json is not a JSON object; MP_EINVAL for an empty name. */
MP_NODISCARD int meshsim_k8s_put(struct meshsim_k8s *k, enum meshsim_k8s_kind kind, const char *ns,
                                 const char *name, const char *json, size_t len, uint64_t *rv,
                                 struct mp_err *err);
/* Deletes it (DELETED with the deletion revision). MP_ENOTFOUND when absent. */
MP_NODISCARD int meshsim_k8s_delete(struct meshsim_k8s *k, enum meshsim_k8s_kind kind,
                                    const char *ns, const char *name, uint64_t *rv,
                                    struct mp_err *err);
/* Appends the stored JSON of ns/name (as a LIST item shows it) to out. MP_ENOTFOUND. */
MP_NODISCARD int meshsim_k8s_get(struct meshsim_k8s *k, enum meshsim_k8s_kind kind, const char *ns,
                                 const char *name, struct mp_buf *out, struct mp_err *err);

/* Drops the whole history: the floor becomes the current revision, so a watch from any
 * older RV gets the 410 ERROR event. Running watches are not affected. */
void meshsim_k8s_compact(struct meshsim_k8s *k);
/* Makes every outstanding continue token answer 410 Expired. */
void meshsim_k8s_expire_continues(struct meshsim_k8s *k);
/* Ends every open watch: clean (zero-length final chunk) or abrupt (connection closed
 * without the final chunk). */
void meshsim_k8s_drop_watches(struct meshsim_k8s *k, bool clean);
/* While stalled, watches (open and new) get their headers but no bytes; events are queued
 * and flow again after unstalling. */
void meshsim_k8s_stall_watches(struct meshsim_k8s *k, bool stalled);
/* Sends a BOOKMARK with the current revision to every watcher that allows bookmarks. */
void meshsim_k8s_bookmark(struct meshsim_k8s *k);
/* The next count LIST or WATCH requests (not /version) answer status (401, 403, 429 with
 * Retry-After: 1, 500, ...) with a Status body. count 0 cancels. */
void meshsim_k8s_fail_requests(struct meshsim_k8s *k, int status, int count);
/* Requires "Authorization: Bearer <token>" on every request (401 Status otherwise); NULL
 * accepts anything. Copied. */
void meshsim_k8s_set_token(struct meshsim_k8s *k, const char *token);
/* Number of watch connections currently open. */
size_t meshsim_k8s_watch_count(struct meshsim_k8s *k);

/* One logged request; strings borrowed for the callback. query holds the decoded parameters
 * sorted by name as "a=1&b=x y" ("" when none). */
struct meshsim_k8s_request {
    uint64_t seq; /* 1, 2, ... in arrival order */
    const char *method;
    const char *path;
    const char *query;
    const char *authorization; /* "" when absent */
    bool watch;                /* a WATCH (watch=true/1) */
    int status;                /* the HTTP status answered */
};
typedef void meshsim_k8s_request_fn(void *ctx, const struct meshsim_k8s_request *r);
/* Calls fn for each remembered request, oldest first (under the server's lock: fn must not
 * call back into k). */
void meshsim_k8s_requests(struct meshsim_k8s *k, meshsim_k8s_request_fn *fn, void *ctx);
void meshsim_k8s_requests_clear(struct meshsim_k8s *k);

/* ---- the simulated mesh and its proxies ----------------------------------------------------- */

/* The series generator (model.c, moved from bench/meshgen): a deterministic generator of the series a Prometheus scraping Linkerd
 * proxies would ingest (spec linkerd-workload.md 1-2 and 5.2-5.5), for benchmarks and for
 * `promtool tsdb create-blocks-from openmetrics` comparisons.
 *
 * The mesh: N namespaces x M deployments x R replicas. Deployment 0 of each namespace is a
 * load generator; the others sit in tiers 1..3 and each calls `peers` services of the next
 * tier (10% of edges cross namespaces). Per edge: a request rate per client pod (log-normal,
 * median 5 rps, sigma 1, cap 500), a success rate (94% of edges >= 99.9%, 5% 97-99.9%, 1%
 * degraded 60-95%), HTTP or gRPC failure codes, a few successful 404s, and a log-normal
 * latency with a heavy tail. Every interval the simulation draws Poisson request counts per
 * client pod -> server pod pair and advances, on both proxies:
 *   request_total, response_total{status_code,classification[,grpc_status]},
 *   response_latency_ms_{bucket,count,sum} (Linkerd's 26 ms buckets 1..50000,+Inf; buckets
 *   the latency never reaches stay constant, as in real scrapes),
 *   tcp_open_total, tcp_open_connections, tcp_read_bytes_total, tcp_write_bytes_total,
 *   tcp_close_total{errno} (connections recycled about hourly),
 *   process_* gauges/counters, proxy_build_info, control_identity_* ;
 * plus the admin-port traffic every proxy serves (a Prometheus scrape per interval over
 * mTLS, two kubelet probes per 10 s in plaintext). Label sets are the proxies' (direction,
 * authority, target_addr/ip/port, tls, client_id|server_id|no_tls_reason, srv_*, route_*,
 * authz_*, dst_*) plus the target labels Linkerd's relabelling adds (job, instance,
 * namespace, pod, deployment, pod_template_hash, app, version, control_plane_ns,
 * workload_ns). Empty label values are left out, as Prometheus drops them.
 *
 * Churn: every churn_every_ms, whole deployments are rolled out (new pod_template_hash, pod
 * names, IPs) until `churn` x all pods were replaced. A replaced pod's series end; its
 * clients keep the old endpoint's outbound series, frozen, for 10 minutes (Linkerd's
 * retain-idle), then drop them. No staleness markers are emitted (a scraper would add them).
 *
 * Timestamps: each pod has a fixed scrape offset inside the interval (Prometheus spreads
 * targets). With jitter_ms = 0 every scrape is exactly offset + k x interval. With
 * jitter_ms > 0, one scrape in eight lands 2..jitter_ms ms late; smaller delays do not
 * appear because Prometheus snaps them to the expected time (scrape timestamp tolerance
 * 2 ms), so the others stay exact.
 *
 * Everything derives from `seed`: the same options give the same samples, bit for bit.
 * Thread safety: a struct meshsim_gen belongs to one thread. Borrowed data (struct
 * meshsim_gen_scrape and everything it points to) lives until the next meshsim_gen_next call. */
#include <stdio.h>

struct meshsim_gen_opts {
    int namespaces;         /* default 1 */
    int deployments;        /* per namespace, including the load generator; default 5 */
    int replicas;           /* per deployment; default 2 */
    int peers;              /* services each deployment calls; default 2 */
    int64_t start_ms;       /* first interval; default 1700006400000 (a 2 h boundary) */
    int64_t duration_ms;    /* default 6 h */
    int64_t interval_ms;    /* scrape interval; default 10 s */
    int64_t jitter_ms;      /* 0 = exact timestamps (default); see the header comment */
    uint64_t seed;          /* default 1 */
    double churn;           /* fraction of pods replaced at each churn tick; default 0 */
    int64_t churn_every_ms; /* default 15 min */
};

void meshsim_gen_opts_init(struct meshsim_gen_opts *o);

struct meshsim_gen; /* opaque */

/* MP_EINVAL for out-of-range options (err says which). */
MP_NODISCARD int meshsim_gen_create(const struct meshsim_gen_opts *o, struct meshsim_gen **out,
                                struct mp_err *err);
void meshsim_gen_destroy(struct meshsim_gen *g); /* NULL is a no-op */

struct meshsim_gen_sample {
    uint64_t series_id;          /* unique per label set for the generator's lifetime,
                                  * assigned in order of first appearance */
    const struct mp_str *labels; /* 2 x nlabels: name, value, ...; sorted by name, so
                                  * "__name__" is first */
    size_t nlabels;
    double value;
};

struct meshsim_gen_scrape {
    int64_t t_ms;
    struct mp_str pod; /* the scraped target */
    const struct meshsim_gen_sample *samples;
    size_t n;
};

/* Next scrape in time order (ties: pod order). 0, or MP_EEOF after the last. */
MP_NODISCARD int meshsim_gen_next(struct meshsim_gen *g, struct meshsim_gen_scrape *out);

struct meshsim_gen_stats {
    uint64_t scrapes, samples;
    uint64_t series;     /* distinct label sets emitted so far */
    uint64_t pods;       /* distinct pods so far */
    uint64_t pod_churns; /* pods replaced so far */
};
void meshsim_gen_get_stats(const struct meshsim_gen *g, struct meshsim_gen_stats *st);

/* Writes one sample as an OpenMetrics line (no HELP/TYPE: promtool backfill needs none):
 *   name{l="v",...} value seconds.mmm\n
 * Values are printed in the shortest form that reads back to the same double. */
void meshsim_gen_write_sample(FILE *f, const struct meshsim_gen_sample *s, int64_t t_ms);

/* Runs a generator with options o to the end and writes every sample to path as an
 * OpenMetrics file ending in "# EOF". *st (may be NULL) gets the final stats. MP_EIO. */
MP_NODISCARD int meshsim_gen_write_openmetrics(const struct meshsim_gen_opts *o, const char *path,
                                           struct meshsim_gen_stats *st, struct mp_err *err);


/* ---- the simulated mesh: model, rendering, serving --------------------------------------- *
 *
 * A struct meshsim is the mesh of linkerd-workload.md 5 (the emojivoto preset of 5.1 or the
 * parametric mesh of 5.2) run on the generator's model in expose mode: each pod has a
 * loopback IP (from ip_base on: 127.1.0.1, 127.1.0.2, ...; .0 and .255 skipped; a replaced
 * pod gets a new IP) and its proxy's /metrics is rendered from the model's state as a
 * linkerd2-proxy renders it (text 0.0.4: the legacy families with HELP/TYPE, integer le
 * bounds, buckets, _count, _sum; then the prometheus-client families with UNIT lines, float
 * le bounds, _total samples of counter families; "# EOF" last).
 *
 * Time: the model advances in fixed ticks (tick_ms, default 1 s). Tick 0 stands for the
 * 6 h the pods ran before start_ms; tick k ends at start_ms + k x tick_ms. The state after
 * meshsim_advance(m, t) depends only on the options and t (same seed, same elapsed time,
 * same body, byte for byte). Churn rounds (churn_every_ms > 0) roll out whole deployments
 * in a seeded order until churn_fraction of all pods were replaced: new pod-template-hash,
 * names and IPs; clients keep the old endpoints' outbound series for 10 minutes.
 *
 * Thread safety: a struct meshsim belongs to one thread (the server's loop thread once a
 * server runs it). Borrowed strings in the info structs live until the next
 * meshsim_advance. */

enum meshsim_preset {
    MESHSIM_PRESET_EMOJIVOTO = 0, /* vote-bot, web, emoji, voting in namespace emojivoto */
    MESHSIM_PRESET_MESH,          /* N namespaces x M deployments x R replicas, K peers */
};

struct meshsim_opts {
    enum meshsim_preset preset;
    int namespaces;         /* mesh: default 10 */
    int deployments;        /* mesh: per namespace, incl. the load generator; default 10 */
    int replicas;           /* default 3 (mesh) / 1 (emojivoto: set by meshsim_opts_init) */
    int peers;              /* mesh: services each deployment calls; default 3 */
    uint64_t seed;          /* default 1 */
    int64_t start_ms;       /* wall-clock time of elapsed 0; default 1700006400000 */
    int64_t tick_ms;        /* default 1000 */
    int64_t churn_every_ms; /* 0 = no churn (default) */
    double churn_fraction;  /* of all pods per round, (0, 1]; default 0.1 */
    uint32_t ip_base;       /* first pod IP, host byte order, in 127.0.0.0/8; default 127.1.0.1 */
    uint16_t proxy_port;    /* the admin port in labels (target_addr of admin traffic); 4191 */
};

/* Defaults for preset (replicas 1 for emojivoto, 3 for the mesh). */
void meshsim_opts_init(struct meshsim_opts *o, enum meshsim_preset preset);
/* Preset by name: "emojivoto" or "mesh"; MP_EINVAL otherwise. */
MP_NODISCARD int meshsim_preset_parse(const char *name, enum meshsim_preset *out,
                                      struct mp_err *err);

struct meshsim; /* opaque */

/* MP_EINVAL for out-of-range options or IPs that would leave 127.0.0.0/8. Runs tick 0. */
MP_NODISCARD int meshsim_create(const struct meshsim_opts *o, struct meshsim **out,
                                struct mp_err *err);
void meshsim_destroy(struct meshsim *m); /* NULL is a no-op */

/* Runs the ticks up to elapsed_ms (ms of model time since start_ms) and sets the render
 * time to start_ms + elapsed_ms. Smaller values than the last are ignored. */
void meshsim_advance(struct meshsim *m, int64_t elapsed_ms);
int64_t meshsim_elapsed_ms(const struct meshsim *m);
int64_t meshsim_now_ms(const struct meshsim *m); /* start_ms + elapsed: the render time */
/* Bumps whenever the pod set changes (a churn round). */
uint64_t meshsim_generation(const struct meshsim *m);

struct meshsim_deploy_info {
    const char *name, *ns, *app, *version, *service_account;
    const char *service; /* NULL: no Service (emojivoto's vote-bot) */
    int service_port;    /* the Service's port; pods serve it on target_port */
    int target_port;     /* 8080 */
    const char *port_name; /* "http" or "grpc" */
    const char *pod_template_hash; /* of the current ReplicaSet */
    int replicas;
};
size_t meshsim_deploy_count(const struct meshsim *m);
void meshsim_deploy_get(const struct meshsim *m, size_t i, struct meshsim_deploy_info *out);

struct meshsim_pod_info {
    uint64_t uid;       /* unique for the simulator's lifetime (never reused) */
    size_t deploy;      /* index for meshsim_deploy_get */
    const char *name;   /* <deployment>-<pod-template-hash>-<5 chars> */
    const char *ip;     /* dotted quad */
    uint32_t ip_u32;    /* host byte order */
    int64_t created_ms; /* container start (process_start_time_seconds) */
};
size_t meshsim_pod_count(const struct meshsim *m);
void meshsim_pod_get(const struct meshsim *m, size_t i, struct meshsim_pod_info *out);

/* Appends pod i's /metrics body at the current render time to out. MP_ELIMIT when out's
 * limit is reached, MP_EINVAL for a bad index. */
MP_NODISCARD int meshsim_render(const struct meshsim *m, size_t i, struct mp_buf *out,
                                struct mp_err *err);

/* The serving side (server.c). One thread (meshsim_server_run's caller) owns the struct
 * meshsim and every listener: pod i's proxy admin server listens on <pod ip>:port and
 * answers GET /metrics (gzip when Accept-Encoding allows it), /ready and /live. Each pod
 * has one libmicrohttpd daemon without a thread of its own (MHD_USE_EPOLL); their epoll fds
 * sit in one master epoll, and the loop runs MHD_run on the daemons that are ready. After
 * each tick the listener set follows the pod set (replaced pods: old listeners close, new
 * ones open) and, with a fake API server, the Kubernetes objects follow too.
 * meshsim_server_stop and meshsim_server_set_elapsed may be called from any thread (and
 * stop from a signal handler); everything else from the owning thread. */

struct meshsim_server_opts {
    uint16_t port;        /* proxy admin port on every pod IP; 0 = pick a free one */
    double speed;         /* model ms per wall-clock ms; default 1 */
    bool manual_clock;    /* tests: model time moves only by meshsim_server_set_elapsed */
    const char *k8s_listen; /* "127.0.0.1:6443" for a fake API server, NULL for none */
};
void meshsim_server_opts_init(struct meshsim_server_opts *o);

struct meshsim_server; /* opaque */

/* Opens the listeners of every current pod (the simulator is borrowed until destroy).
 * MP_EIO when an address cannot be bound (err names it). */
MP_NODISCARD int meshsim_server_create(struct meshsim *m, const struct meshsim_server_opts *o,
                                       struct meshsim_server **out, struct mp_err *err);
/* Serves until meshsim_server_stop. 0, or MP_EIO when epoll fails. */
MP_NODISCARD int meshsim_server_run(struct meshsim_server *s, struct mp_err *err);
void meshsim_server_stop(struct meshsim_server *s);
void meshsim_server_set_elapsed(struct meshsim_server *s, int64_t elapsed_ms);
void meshsim_server_destroy(struct meshsim_server *s); /* closes everything; NULL no-op */

uint16_t meshsim_server_port(const struct meshsim_server *s);
/* Thread-safe snapshots for tests and logs: pods served, ticks done, pod-set generation. */
size_t meshsim_server_listeners(const struct meshsim_server *s);
uint64_t meshsim_server_generation(const struct meshsim_server *s);
/* "http://127.0.0.1:6443" of the fake API server, or NULL (valid until destroy). */
const char *meshsim_server_k8s_url(const struct meshsim_server *s);
/* The fake API server the simulator publishes into, or NULL (valid until destroy). */
struct meshsim_k8s *meshsim_server_k8s(const struct meshsim_server *s);

#endif
