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
 * endpointslices (discovery.k8s.io/v1) and nodes on the cluster-wide and per-namespace paths
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
 * creationTimestamp filled when absent, and port protocol defaulted to "TCP" (what a real
 * API server does; kubernetes-sd.md 6.2). List items omit kind/apiVersion, watch objects
 * carry them.
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
    MESHSIM_K8S_NODES, /* cluster-scoped: namespace arguments are ignored */
};
#define MESHSIM_K8S_KIND_COUNT 5

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

#endif
