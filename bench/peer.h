/* SPDX-License-Identifier: Apache-2.0 */
/* bench/peer.h: server processes for differential tests and side-by-side benchmarks: start
 * Prometheus (or meshprom, which takes the same flags) on a free 127.0.0.1 port with a data
 * dir of its own, wait until /-/ready answers, talk HTTP to it, stop it. Everything a peer
 * does is bounded in time; peer_stop always leaves no process behind.
 * Thread safety: one thread per struct peer. */
#ifndef BENCH_PEER_H
#define BENCH_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "common/str.h"

struct peer {
    const char *name; /* "prometheus", "meshprom": for messages */
    pid_t pid;
    uint16_t port;
    char dir[256];  /* its data dir (workdir/<name>) */
    char log[300];  /* its stderr and stdout */
    char url[64];   /* http://127.0.0.1:<port> */
    void *curl;     /* CURL *, reused for keep-alive */
};

/* Picks a free port on 127.0.0.1 (bind to :0, read it back, close). 0 on failure. */
uint16_t peer_free_port(void);

/* Starts binary with --config.file=config --storage.tsdb.path=<workdir>/<name>
 * --web.listen-address=127.0.0.1:<port> and the extra flags (NULL-terminated), then waits up to
 * timeout_ms for GET /-/ready to answer 200. On failure the process is stopped and err says
 * why (with the log's last line). */
MP_NODISCARD int peer_start(struct peer *p, const char *name, const char *binary,
                            const char *workdir, const char *config, const char *const *extra,
                            int64_t timeout_ms, struct mp_err *err);
/* SIGTERM, up to 20 s to exit, then SIGKILL. Idempotent. */
void peer_stop(struct peer *p);

/* One request: GET path (with query string) when body is NULL, else POST body with the given
 * content type and, if not NULL, extra headers ("Name: value", NULL-terminated). The response
 * body replaces out's contents; *status gets the HTTP status. MP_EIO when the request failed. */
MP_NODISCARD int peer_http(struct peer *p, const char *path, const char *content_type,
                           const void *body, size_t len, const char *const *headers,
                           struct mp_buf *out, long *status, struct mp_err *err);

/* URL-encodes s (application/x-www-form-urlencoded) and appends it to out. */
MP_NODISCARD int peer_urlencode(struct mp_buf *out, const char *s);

#endif
