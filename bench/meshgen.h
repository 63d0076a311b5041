/* SPDX-License-Identifier: Apache-2.0 */
/* bench/meshgen.h: a deterministic generator of the series a Prometheus scraping Linkerd
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
 * Thread safety: a struct meshgen belongs to one thread. Borrowed data (struct
 * meshgen_scrape and everything it points to) lives until the next meshgen_next call. */
#ifndef BENCH_MESHGEN_H
#define BENCH_MESHGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "common/str.h"

struct meshgen_opts {
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

void meshgen_opts_init(struct meshgen_opts *o);

struct meshgen; /* opaque */

/* MP_EINVAL for out-of-range options (err says which). */
MP_NODISCARD int meshgen_create(const struct meshgen_opts *o, struct meshgen **out,
                                struct mp_err *err);
void meshgen_destroy(struct meshgen *g); /* NULL is a no-op */

struct meshgen_sample {
    uint64_t series_id;          /* unique per label set for the generator's lifetime,
                                  * assigned in order of first appearance */
    const struct mp_str *labels; /* 2 x nlabels: name, value, ...; sorted by name, so
                                  * "__name__" is first */
    size_t nlabels;
    double value;
};

struct meshgen_scrape {
    int64_t t_ms;
    struct mp_str pod; /* the scraped target */
    const struct meshgen_sample *samples;
    size_t n;
};

/* Next scrape in time order (ties: pod order). 0, or MP_EEOF after the last. */
MP_NODISCARD int meshgen_next(struct meshgen *g, struct meshgen_scrape *out);

struct meshgen_stats {
    uint64_t scrapes, samples;
    uint64_t series;     /* distinct label sets emitted so far */
    uint64_t pods;       /* distinct pods so far */
    uint64_t pod_churns; /* pods replaced so far */
};
void meshgen_get_stats(const struct meshgen *g, struct meshgen_stats *st);

/* Writes one sample as an OpenMetrics line (no HELP/TYPE: promtool backfill needs none):
 *   name{l="v",...} value seconds.mmm\n
 * Values are printed in the shortest form that reads back to the same double. */
void meshgen_write_sample(FILE *f, const struct meshgen_sample *s, int64_t t_ms);

/* Runs a generator with options o to the end and writes every sample to path as an
 * OpenMetrics file ending in "# EOF". *st (may be NULL) gets the final stats. MP_EIO. */
MP_NODISCARD int meshgen_write_openmetrics(const struct meshgen_opts *o, const char *path,
                                           struct meshgen_stats *st, struct mp_err *err);

#endif
