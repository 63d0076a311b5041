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
 * to one thread at a time.
 *
 * The remote-read server (POST /api/v1/read) has its own section at the end. */
#ifndef REMOTE_REMOTE_H
#define REMOTE_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/str.h"

struct tsdb;
struct mp_labels;
struct mp_matcher;

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

/* ---- remote read: POST /api/v1/read (protocols.md 5.7) ---------------------------------------
 *
 * The remote-read server core without HTTP, as Prometheus 2.55.1's storage/remote/
 * read_handler.go answers:
 *
 *   concurrency gate (waits for a slot) --> body: snappy block of a prometheus.ReadRequest
 *   (size limits checked before allocating; 400 on any decode error) --> response type: the
 *   first of accepted_response_types this server supports (empty = SAMPLES; 400 if none) -->
 *   per query: matchers converted (an `=` matcher whose value equals the external label of that
 *   name, or "" when there is none, becomes name="", so series stored without the external
 *   labels match), tsdb querier over [start, end] (intersected with the hints' [start, end]
 *   when hints are present, as Prometheus's querier trims to them) -->
 *     SAMPLES: snappy(ReadResponse), series labels merged with the external labels (series
 *       win), at most sample_limit samples per query (400 "exceeded sample limit (N)")
 *     STREAMED_XOR_CHUNKS: a struct remote_read_stream of frames
 *       uvarint(len) | BE32 CRC-32C(payload) | payload = ChunkedReadResponse, one series per
 *       frame, split into several frames once the chunks pass max_bytes_in_frame, raw chunk
 *       bytes as the tsdb stores them, except that a chunk sticking out of the range is
 *       re-encoded with only the samples inside (as Prometheus's chunk querier does)
 *
 * Thread safety: a struct remote_read_server may be used by any number of threads at once (the
 * gate is its only mutable state, under its mutex). A request, a response and a stream belong
 * to one thread at a time. */

/* Prometheus's decodeReadLimit: request bodies are cut at 32 MiB. */
#define REMOTE_READ_MAX_BODY_DEFAULT ((size_t)32 << 20)
#define REMOTE_READ_MAX_DECODED_DEFAULT ((size_t)64 << 20)
#define REMOTE_READ_MAX_MEMORY_DEFAULT ((size_t)256 << 20)

struct remote_read_options {
    int64_t sample_limit;      /* --storage.remote.read-sample-limit (5e7); <= 0: none */
    size_t concurrent_limit;   /* --storage.remote.read-concurrent-limit (10); 0: none */
    size_t max_bytes_in_frame; /* --storage.remote.read-max-bytes-in-frame (1 MiB); 0: one chunk
                                * per frame, as Prometheus */
    size_t max_body_bytes;     /* compressed body; 0: none */
    size_t max_decoded_bytes;  /* snappy-decoded body; 0: none */
    size_t max_memory_bytes;   /* the unpacked request in memory; 0: none */
    int64_t gate_wait_ms;      /* longest wait for a slot, then 503; < 0 (default): until
                                * the client leaves, as Prometheus */
};
void remote_read_options_init(struct remote_read_options *o);

#define REMOTE_READ_MSG_MAX 512

/* A decoded request; owns its memory. */
struct remote_read_request;

/* Decodes body[0..len) (no tsdb needed: the fuzz target uses it): size limits, snappy,
 * protobuf, response-type negotiation, and every query's matchers converted against ext (the
 * external labels, NULL = none). o may be NULL (defaults). 0 with *out set; else *out NULL,
 * *status 400 ("snappy: corrupt input", "proto: ...", "server does not support any of the
 * requested response types: ...") or 500 (a matcher Prometheus cannot build: bad regex, unknown
 * type; out of memory), and err holds the message. */
MP_NODISCARD int remote_read_decode(const uint8_t *body, size_t len,
                                    const struct remote_read_options *o,
                                    const struct mp_labels *ext, struct remote_read_request **out,
                                    int *status, struct mp_err *err);
void remote_read_request_free(struct remote_read_request *req); /* NULL is a no-op */
/* The negotiated type: 0 SAMPLES, 1 STREAMED_XOR_CHUNKS. */
int remote_read_request_response_type(const struct remote_read_request *req);
size_t remote_read_request_num_queries(const struct remote_read_request *req);
/* Query i's matchers after the external-label rewrite (borrowed from req) and its effective
 * time range (both inclusive; *mint > *maxt: nothing to read). */
void remote_read_request_query(const struct remote_read_request *req, size_t i,
                               const struct mp_matcher *const **m, size_t *n, int64_t *mint_ms,
                               int64_t *maxt_ms);

/* A STREAMED_XOR_CHUNKS body being produced: reads the tsdb lazily, one series at a time. */
struct remote_read_stream;
/* Writes up to cap (> 0) bytes of the body to buf: 0 with *n > 0; MP_EEOF at the end; another
 * negative status on a storage error (err says which; the body is then truncated, which a
 * client detects by the frame length or CRC). */
MP_NODISCARD int remote_read_stream_read(struct remote_read_stream *st, uint8_t *buf, size_t cap,
                                         size_t *n, struct mp_err *err);
/* Closes the querier, gives the gate slot back. NULL is a no-op. */
void remote_read_stream_destroy(struct remote_read_stream *st);

/* The server: options and the concurrency gate. */
struct remote_read_server;
MP_NODISCARD int remote_read_server_create(const struct remote_read_options *o,
                                           struct remote_read_server **out);
void remote_read_server_destroy(struct remote_read_server *s); /* NULL is a no-op; no request
                                                                * may be running */
/* Requests holding a slot now (prometheus_api_remote_read_queries). */
size_t remote_read_server_active(const struct remote_read_server *s);

#define REMOTE_READ_CT_SAMPLES "application/x-protobuf"
#define REMOTE_READ_CT_STREAMED \
    "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"

/* What the HTTP layer sends. Exactly one of: an error (status != 200, message), a SAMPLES body
 * (body, content_encoding "snappy"), or a stream (stream != NULL: the caller takes it, sets it
 * NULL, and destroys it when the body is sent or abandoned). */
struct remote_read_response {
    int status;                   /* 200, 400, 500 or 503 */
    const char *content_type;     /* static; NULL for errors (plain text) */
    const char *content_encoding; /* "snappy" for SAMPLES, else NULL */
    char message[REMOTE_READ_MSG_MAX]; /* error body without the trailing newline */
    struct mp_buf body;
    struct remote_read_stream *stream;
    size_t series, samples, frames; /* SAMPLES: series and samples; streams count frames */
};
/* Frees body and an untaken stream. */
void remote_read_response_fini(struct remote_read_response *r);

/* The whole endpoint minus HTTP: waits for a gate slot (held until the response is finished,
 * or for a stream until it is destroyed), decodes, queries db and fills *out (always
 * initialised; fini it). ext: external labels (NULL = none), borrowed for the call (a stream
 * takes its own reference). Returns 0 when out->status is 200, else the negative status that
 * err describes. */
MP_NODISCARD int remote_read_serve(struct remote_read_server *s, struct tsdb *db,
                                   const struct mp_labels *ext, const uint8_t *body, size_t len,
                                   struct remote_read_response *out, struct mp_err *err);

/* remote_read_serve, and while waiting for a gate slot gone(gone_arg) is asked every 100 ms
 * (off the gate's lock) whether the client left; if so the wait ends with status 500 "context
 * canceled" (Prometheus's ctx.Err()) and -MP_ECANCELED, freeing the place. gone NULL: no
 * check. */
MP_NODISCARD int remote_read_serve_gone(struct remote_read_server *s, struct tsdb *db,
                                        const struct mp_labels *ext, const uint8_t *body,
                                        size_t len, bool (*gone)(void *), void *gone_arg,
                                        struct remote_read_response *out, struct mp_err *err);

/* CRC-32C (Castagnoli) as the frame checksum: remote_read_crc32c(0, "123456789", 9) ==
 * 0xE3069283. For tests and clients. */
uint32_t remote_read_crc32c(uint32_t crc, const void *p, size_t n);

#endif
