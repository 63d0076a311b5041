/* SPDX-License-Identifier: Apache-2.0 */
/* remote/remote.h: the remote-write 1.0 receiver core (Prometheus --web.enable-remote-write-
 * receiver, POST /api/v1/write), without HTTP: a request body (snappy block format around a
 * protobuf prometheus.WriteRequest) is decoded, validated and appended to the tsdb through one
 * appender, and the result says which HTTP status and body text Prometheus 2.55.1 would answer.
 * Spec: /work/shared/spec/protocols.md 5.1-5.4; remote/README.md lists where we differ.
 *
 *   body --limits--> snappy header (length checked before any allocation) --> snappy_uncompress
 *        --> protobuf-c unpack into a capped arena --> per series: sort labels, validate
 *        (invalid series skipped, counted) --> one appender: all samples or nothing --> commit
 *
 * Thread safety: all functions may be called from any number of threads at once (each call
 * uses its own appender). A struct remote_write_request and a struct remote_write_cache belong
 * to one thread at a time. */
#ifndef REMOTE_REMOTE_H
#define REMOTE_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct tsdb;

/* Defaults of struct remote_write_limits. Prometheus itself has no size limits (Go's snappy
 * allows 4 GiB); these bound what one request may cost. */
#define REMOTE_WRITE_MAX_BODY_DEFAULT ((size_t)32 << 20)     /* compressed bytes */
#define REMOTE_WRITE_MAX_DECODED_DEFAULT ((size_t)128 << 20) /* snappy-decoded bytes */
#define REMOTE_WRITE_MAX_MEMORY_DEFAULT ((size_t)512 << 20)  /* decoded message in memory */
#define REMOTE_WRITE_MAX_AHEAD_MS INT64_C(600000)            /* Prometheus maxAheadTime */

struct remote_write_limits {
    size_t max_body_bytes;    /* 413 above; 0 = no limit */
    size_t max_decoded_bytes; /* 413 when the snappy header announces more; 0 = no limit */
    size_t max_memory_bytes;  /* 413 when the unpacked message needs more; 0 = no limit */
    int64_t now_ms;           /* clock for the future limit; 0 = wall clock (mp_now_ms) */
    int64_t max_ahead_ms;     /* samples later than now + this: 400 "out of bounds: timestamp
                               * is too far in the future"; < 0 = no limit */
};
void remote_write_limits_init(struct remote_write_limits *l);

#define REMOTE_WRITE_MSG_MAX 256

/* What the HTTP layer answers, and counts for self-metrics. */
struct remote_write_result {
    int status;                         /* 204, 400, 413 or 500 (415: remote_write_check_headers) */
    char message[REMOTE_WRITE_MSG_MAX]; /* response body as Prometheus's http.Error writes it,
                                         * without its trailing newline; "" for 204 */
    size_t series;                      /* TimeSeries in the request */
    size_t series_invalid;    /* skipped: no/invalid __name__, invalid or duplicate label name,
                               * label value not UTF-8 (prometheus_api_remote_write_invalid_
                               * labels_samples_total grows by this, one per series) */
    size_t samples_invalid;   /* samples and histograms of the skipped series */
    size_t samples;           /* float samples of the valid series */
    size_t samples_appended;  /* samples committed (0 unless status 204) */
    size_t histograms;        /* native histograms of the valid series (refused, see below) */
    size_t exemplars_ignored; /* no exemplar storage: dropped, as Prometheus with it disabled */
    size_t metadata_ignored;  /* MetricMetadata entries (no metadata storage yet) */
};

/* A decoded and validated request; owns its memory. */
struct remote_write_request;

/* Memory kept between requests by one thread (an HTTP worker). A request decoded without one
 * takes fresh memory from malloc and gives it back, and glibc returns it to the kernel, so the
 * next request faults every page in again: with a cache, decoding a 2000-sample batch is 3-9x
 * faster (bench_remote_write, remote/README.md). Blocks return to the cache when a request is
 * freed, up to keep_bytes; the rest is freed. In sanitizer builds nothing is kept. Belongs to
 * one thread at a time, as do the requests decoded into it; destroy it after them. */
struct remote_write_cache;
MP_NODISCARD int remote_write_cache_create(size_t keep_bytes, struct remote_write_cache **out);
void remote_write_cache_destroy(struct remote_write_cache *c);       /* NULL is a no-op */
size_t remote_write_cache_bytes(const struct remote_write_cache *c); /* bytes kept now */

/* Checks the Content-Type and Content-Encoding header values as Prometheus 2.55.1 (spec 5.4):
 * NULL or "" count as application/x-protobuf and snappy; only prometheus.WriteRequest is
 * accepted. 0, or MP_EINVAL with res->status 415 and Prometheus's message. Only status and
 * message of res are written. */
MP_NODISCARD int remote_write_check_headers(const char *content_type, const char *content_encoding,
                                            struct remote_write_result *res);

/* Decodes and validates body[0..len) (no tsdb needed; the fuzz target and the benchmark use it):
 * size limits, snappy, protobuf, then per series the labels sorted by name, and series with
 * invalid labels marked skipped (counted in res). Empty label values are dropped from the valid
 * series, as Prometheus's head does. body is not kept; cache may be NULL. 0 with *out set
 * (res->status 204 so far); else *out NULL, res->status/message set and err holds the message:
 * MP_ELIMIT (413), MP_EPARSE (400: "snappy: corrupt input", "proto: ..."), MP_ENOMEM (500). */
MP_NODISCARD int remote_write_decode(const uint8_t *body, size_t len,
                                     const struct remote_write_limits *lim,
                                     struct remote_write_cache *cache,
                                     struct remote_write_request **out,
                                     struct remote_write_result *res, struct mp_err *err);
void remote_write_request_free(struct remote_write_request *req); /* NULL is a no-op */

/* Series i (< res->series) of req: true with its labels sorted by name, empty values dropped
 * (*labels borrowed from req, *n of them); false if it was skipped as invalid. For tests and
 * fuzzing. */
struct mp_label;
bool remote_write_request_series(const struct remote_write_request *req, size_t i,
                                 const struct mp_label **labels, size_t *n);

/* Appends the valid series' samples of req to db through one appender, in request order, and
 * commits. All or nothing, as Prometheus's v1 handler: the first failing sample rolls back the
 * whole request. 0 and status 204; else res->status/message and err: 400 with the tsdb's text
 * ("out of order sample", "duplicate sample for timestamp", "out of bounds", "out of bounds:
 * timestamp is too far in the future") or "native histograms are disabled" for a valid series
 * carrying histograms (Prometheus answers 500 there; 400 here so that senders do not retry
 * forever); 500 for storage failures (commit I/O, memory). Samples of one series that are out
 * of order within the request are dropped at commit, as Prometheus does. */
MP_NODISCARD int remote_write_append(struct tsdb *db, const struct remote_write_request *req,
                                     const struct remote_write_limits *lim,
                                     struct remote_write_result *res, struct mp_err *err);

/* remote_write_decode, then remote_write_append: the whole receiver minus HTTP. lim may be NULL
 * (defaults). Returns 0 when the request was stored (204), else the negative status. */
MP_NODISCARD int remote_write_decode_and_append(struct tsdb *db, const uint8_t *body, size_t len,
                                                const struct remote_write_limits *lim,
                                                struct remote_write_result *res,
                                                struct mp_err *err);
/* The same, decoding into cache (may be NULL): what an HTTP worker thread calls. */
MP_NODISCARD int remote_write_decode_and_append_cached(
    struct tsdb *db, struct remote_write_cache *cache, const uint8_t *body, size_t len,
    const struct remote_write_limits *lim, struct remote_write_result *res, struct mp_err *err);

/* ---- encoding: the sender's half ------------------------------------------------------------ */

struct mp_buf;
/* One series of a request to encode: labels in the order to send (a receiver wants them sorted
 * by name) and its samples. Everything is borrowed for the call. */
struct remote_write_series {
    const struct mp_label *labels;
    size_t nlabels;
    const int64_t *t_ms;
    const double *v;
    size_t nsamples;
};

/* Replaces out's contents with a remote-write 1.0 body (snappy block of a packed
 * prometheus.WriteRequest) holding s[0..n). MP_ENOMEM / MP_ELIMIT (out's limit). */
MP_NODISCARD int remote_write_encode(const struct remote_write_series *s, size_t n,
                                     struct mp_buf *out, struct mp_err *err);

#endif
