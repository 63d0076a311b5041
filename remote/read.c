/* SPDX-License-Identifier: Apache-2.0 */
/* remote/read.c: the remote-read endpoint (protocols.md 5.7), as Prometheus 2.55.1's
 * storage/remote/read_handler.go answers POST /api/v1/read:
 *
 *   gate: at most concurrent_limit requests at once    -> waits until the client leaves (500
 *                                                         "context canceled"), as Prometheus;
 *                                                         503 after gate_wait_ms if >= 0
 *   body > max_body, snappy length > 22x body or > max_decoded, corrupt snappy, protobuf
 *   error, unpacked request > max_memory                -> 400
 *   accepted_response_types: first supported one (empty = SAMPLES), none -> 400
 *   matchers: bad regex, unknown type                   -> 500 (Prometheus: not an HTTPError)
 *   per query, a tsdb querier over the effective range:
 *     SAMPLES             snappy(ReadResponse); > sample_limit samples in one query -> 400
 *     STREAMED_XOR_CHUNKS frames (below), produced lazily as the client reads
 *   storage error                                       -> 500 (a stream is cut short)
 *
 * A frame is uvarint(len) | BE32 CRC-32C(payload) | payload, payload a ChunkedReadResponse
 * with one ChunkedSeries. Example: series {__name__="up"} with one chunk [1000, 1000] of 12
 * bytes in query 0 is the payload
 *   0a 24 | 0a 0e 0a 08 "__name__" 12 02 "up" | 12 12 08 e8 07 10 e8 07 18 01 22 0c <12 bytes>
 * (field 2, query_index, is left out when 0, as Go's encoder leaves out zero values).
 * Responses are encoded by hand straight into one buffer (a length-delimited field gets a
 * 10-byte hole for its length, closed up once the body is known), so a large answer costs its
 * wire bytes and not a protobuf-c struct per sample; remote.proto describes the same messages
 * for decoding, which the tests use to check this encoder. */
#include "remote/remote.h"

#include <pthread.h>
#include <snappy-c.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "common/matcher.h"
#include "common/str.h"
#include "remote.pb-c.h"
#include "tsdb/tsdb.h"

void remote_read_options_init(struct remote_read_options *o)
{
    o->sample_limit = 50000000;
    o->concurrent_limit = 10;
    o->max_bytes_in_frame = (size_t)1 << 20;
    o->max_body_bytes = REMOTE_READ_MAX_BODY_DEFAULT;
    o->max_decoded_bytes = REMOTE_READ_MAX_DECODED_DEFAULT;
    o->max_memory_bytes = REMOTE_READ_MAX_MEMORY_DEFAULT;
    o->gate_wait_ms = -1;
}

/* ---- CRC-32C ------------------------------------------------------------------------------- */

/* Reflected Castagnoli polynomial; one table, filled once. */
static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_table_fill(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
        crc_table[i] = c;
    }
}

uint32_t remote_read_crc32c(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&crc_once, crc_table_fill);
    const uint8_t *b = p;
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = crc_table[(crc ^ b[i]) & 0xFFu] ^ (crc >> 8);
    return ~crc;
}

/* ---- protobuf-c allocator with a cap ------------------------------------------------------- */

/* Each allocation carries its size in front so that the total can be kept exactly. */
#define PB_HDR 16u

struct pb_mem {
    size_t used, limit; /* limit 0: none */
    bool over, nomem;
};

static void *pb_alloc(void *data, size_t size)
{
    struct pb_mem *m = data;
    size_t need;
    if (__builtin_add_overflow(size, (size_t)PB_HDR, &need) ||
        (m->limit && need > m->limit - m->used)) {
        m->over = true;
        return NULL;
    }
    char *b = mp_malloc(need);
    if (!b) {
        m->nomem = true;
        return NULL;
    }
    memcpy(b, &need, sizeof need);
    m->used += need;
    return b + PB_HDR;
}

static void pb_free(void *data, void *p)
{
    struct pb_mem *m = data;
    if (!p)
        return;
    char *b = (char *)p - PB_HDR;
    size_t need;
    memcpy(&need, b, sizeof need);
    m->used -= need;
    mp_free(b);
}

/* ---- decoding ------------------------------------------------------------------------------ */

struct rquery {
    struct mp_matcher **m;
    size_t n;
    int64_t mint, maxt;
    bool series_only; /* hints func "series": labels, no samples (Prometheus: no chunks read) */
};

struct remote_read_request {
    int type; /* 0 SAMPLES, 1 STREAMED_XOR_CHUNKS */
    struct rquery *q;
    size_t nq;
};

static int failf(int *status, int st, int code, struct mp_err *err, const char *fmt, ...)
    MP_PRINTF(5, 6);
static int failf(int *status, int st, int code, struct mp_err *err, const char *fmt, ...)
{
    char msg[MP_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    *status = st;
    return mp_err_set(err, code, "%s", msg);
}

void remote_read_request_free(struct remote_read_request *req)
{
    if (!req)
        return;
    for (size_t i = 0; i < req->nq; i++) {
        for (size_t j = 0; j < req->q[i].n; j++)
            mp_matcher_destroy(req->q[i].m[j]);
        mp_free(req->q[i].m);
    }
    mp_free(req->q);
    mp_free(req);
}

int remote_read_request_response_type(const struct remote_read_request *req)
{
    return req->type;
}

size_t remote_read_request_num_queries(const struct remote_read_request *req)
{
    return req->nq;
}

void remote_read_request_query(const struct remote_read_request *req, size_t i,
                               const struct mp_matcher *const **m, size_t *n, int64_t *mint_ms,
                               int64_t *maxt_ms)
{
    const struct rquery *q = &req->q[i];
    *m = (const struct mp_matcher *const *)q->m;
    *n = q->n;
    *mint_ms = q->mint;
    *maxt_ms = q->maxt;
}

static struct mp_str bytes_str(ProtobufCBinaryData d)
{
    return (struct mp_str){d.len ? (const char *)d.data : "", d.len};
}

/* Go's %v of the accepted types: known names, unknown values as numbers. */
static void types_text(const RemotePb__ReadRequest *rr, char *out, size_t cap)
{
    size_t k = (size_t)snprintf(out, cap, "[");
    for (size_t i = 0; i < rr->n_accepted_response_types && k < cap; i++) {
        int t = (int)rr->accepted_response_types[i];
        const char *sep = i ? " " : "";
        if (t == REMOTE_PB__READ_REQUEST__RESPONSE_TYPE__SAMPLES)
            k += (size_t)snprintf(out + k, cap - k, "%sSAMPLES", sep);
        else if (t == REMOTE_PB__READ_REQUEST__RESPONSE_TYPE__STREAMED_XOR_CHUNKS)
            k += (size_t)snprintf(out + k, cap - k, "%sSTREAMED_XOR_CHUNKS", sep);
        else
            k += (size_t)snprintf(out + k, cap - k, "%s%d", sep, t);
    }
    if (k < cap)
        snprintf(out + k, cap - k, "]");
}

/* Prometheus filterExtLabelsFromMatchers: name="v" with v the external label's value (""
 * when there is none) becomes name="", since stored series do not carry external labels. */
static int convert_query(const RemotePb__Query *pq, const struct mp_labels *ext, struct rquery *q,
                         int *status, struct mp_err *err)
{
    q->mint = pq->start_timestamp_ms;
    q->maxt = pq->end_timestamp_ms;
    if (pq->hints) {
        /* Prometheus's block querier trims to the hints' range instead of its own */
        if (pq->hints->start_ms > q->mint)
            q->mint = pq->hints->start_ms;
        if (pq->hints->end_ms < q->maxt)
            q->maxt = pq->hints->end_ms;
        struct mp_str fn = bytes_str(pq->hints->func);
        q->series_only = mp_str_eq(fn, MP_STR_LIT("series"));
    }
    q->m = mp_calloc(pq->n_matchers ? pq->n_matchers : 1, sizeof *q->m);
    if (!q->m)
        return failf(status, 500, MP_ENOMEM, err, "out of memory for %zu matchers", pq->n_matchers);
    for (size_t i = 0; i < pq->n_matchers; i++) {
        const RemotePb__LabelMatcher *lm = pq->matchers[i];
        enum mp_match_type t;
        switch ((int)lm->type) {
        case REMOTE_PB__LABEL_MATCHER__TYPE__EQ:
            t = MP_MATCH_EQUAL;
            break;
        case REMOTE_PB__LABEL_MATCHER__TYPE__NEQ:
            t = MP_MATCH_NOT_EQUAL;
            break;
        case REMOTE_PB__LABEL_MATCHER__TYPE__RE:
            t = MP_MATCH_REGEX;
            break;
        case REMOTE_PB__LABEL_MATCHER__TYPE__NRE:
            t = MP_MATCH_NOT_REGEX;
            break;
        default:
            return failf(status, 500, MP_EINVAL, err, "invalid matcher type");
        }
        struct mp_str name = bytes_str(lm->name), value = bytes_str(lm->value);
        if (t == MP_MATCH_EQUAL) {
            struct mp_str ev = ext ? mp_labels_get(ext, name) : MP_STR_LIT("");
            if (mp_str_eq(ev, value))
                value = MP_STR_LIT("");
        }
        struct mp_err e;
        mp_err_clear(&e);
        int rc = mp_matcher_create(t, name, value, &q->m[i], &e);
        if (rc)
            return failf(status, 500, rc, err, "%s", e.msg);
        q->n++;
    }
    return 0;
}

int remote_read_decode(const uint8_t *body, size_t len, const struct remote_read_options *o,
                       const struct mp_labels *ext, struct remote_read_request **out, int *status,
                       struct mp_err *err)
{
    struct remote_read_options defaults;
    if (!o) {
        remote_read_options_init(&defaults);
        o = &defaults;
    }
    *out = NULL;
    *status = 200;
    /* Prometheus reads at most 32 MiB and fails on the cut-off snappy stream: 400 as well */
    if (o->max_body_bytes && len > o->max_body_bytes)
        return failf(status, 400, MP_ELIMIT, err,
                     "request body of %zu bytes exceeds the limit of %zu bytes", len,
                     o->max_body_bytes);
    size_t dlen;
    if (snappy_uncompressed_length((const char *)body, len, &dlen) != SNAPPY_OK)
        return failf(status, 400, MP_EPARSE, err, "snappy: corrupt input");
    /* no element expands more than 64 output bytes per 3 input bytes */
    if (len < SIZE_MAX / 22 && dlen > len * 22)
        return failf(status, 400, MP_EPARSE, err, "snappy: corrupt input");
    if (o->max_decoded_bytes && dlen > o->max_decoded_bytes)
        return failf(status, 400, MP_ELIMIT, err,
                     "snappy: decoded length %zu exceeds the limit of %zu bytes", dlen,
                     o->max_decoded_bytes);
    char *raw = mp_malloc(dlen ? dlen : 1);
    if (!raw)
        return failf(status, 500, MP_ENOMEM, err, "out of memory for %zu decoded bytes", dlen);
    size_t got = dlen;
    if (snappy_uncompress((const char *)body, len, raw, &got) != SNAPPY_OK || got != dlen) {
        mp_free(raw);
        return failf(status, 400, MP_EPARSE, err, "snappy: corrupt input");
    }
    struct pb_mem mem = {.limit = o->max_memory_bytes};
    ProtobufCAllocator pa = {.alloc = pb_alloc, .free = pb_free, .allocator_data = &mem};
    RemotePb__ReadRequest *rr = remote_pb__read_request__unpack(&pa, dlen, (const uint8_t *)raw);
    mp_free(raw);
    if (!rr) {
        if (mem.nomem)
            return failf(status, 500, MP_ENOMEM, err, "out of memory decoding the request");
        if (mem.over)
            return failf(status, 400, MP_ELIMIT, err,
                         "decoded request needs more than the limit of %zu bytes of memory",
                         o->max_memory_bytes);
        return failf(status, 400, MP_EPARSE, err, "proto: cannot parse prometheus.ReadRequest");
    }

    int rc = 0;
    struct remote_read_request *req = mp_calloc(1, sizeof *req);
    if (!req) {
        rc = failf(status, 500, MP_ENOMEM, err, "out of memory decoding the request");
        goto out;
    }
    req->type = -1;
    if (rr->n_accepted_response_types == 0)
        req->type = 0;
    for (size_t i = 0; i < rr->n_accepted_response_types && req->type < 0; i++) {
        int t = (int)rr->accepted_response_types[i];
        if (t == REMOTE_PB__READ_REQUEST__RESPONSE_TYPE__SAMPLES ||
            t == REMOTE_PB__READ_REQUEST__RESPONSE_TYPE__STREAMED_XOR_CHUNKS)
            req->type = t;
    }
    if (req->type < 0) {
        char types[256];
        types_text(rr, types, sizeof types);
        rc = failf(status, 400, MP_EINVAL, err,
                   "server does not support any of the requested response types: %s; "
                   "supported: map[SAMPLES:{} STREAMED_XOR_CHUNKS:{}]",
                   types);
        goto out;
    }
    req->q = mp_calloc(rr->n_queries ? rr->n_queries : 1, sizeof *req->q);
    if (!req->q) {
        rc = failf(status, 500, MP_ENOMEM, err, "out of memory for %zu queries", rr->n_queries);
        goto out;
    }
    for (size_t i = 0; i < rr->n_queries; i++) {
        req->nq++;
        rc = convert_query(rr->queries[i], ext, &req->q[i], status, err);
        if (rc)
            goto out;
    }
out:
    remote_pb__read_request__free_unpacked(rr, &pa);
    if (rc) {
        remote_read_request_free(req);
        return rc;
    }
    *out = req;
    return 0;
}

/* ---- protobuf writing ---------------------------------------------------------------------- */

/* A length-delimited field gets this much room for its length until the body is known. */
#define LEN_HOLE 10u

static size_t uvarint_put(uint8_t *p, uint64_t v)
{
    size_t k = 0;
    while (v >= 0x80) {
        p[k++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[k++] = (uint8_t)v;
    return k;
}

static size_t uvarint_len(uint64_t v)
{
    size_t k = 1;
    while (v >= 0x80) {
        v >>= 7;
        k++;
    }
    return k;
}

/* Writer over one mp_buf whose first error is sticky: encoders check once at the end. */
struct pbw {
    struct mp_buf *b;
    int rc;
};

static void w_bytes(struct pbw *w, const void *p, size_t n)
{
    if (!w->rc && n)
        w->rc = mp_buf_append(w->b, p, n);
}

static void w_uvarint(struct pbw *w, uint64_t v)
{
    uint8_t tmp[10];
    w_bytes(w, tmp, uvarint_put(tmp, v));
}

/* Field `num` of wire type `wt`. */
static void w_tag(struct pbw *w, unsigned num, unsigned wt)
{
    w_uvarint(w, (uint64_t)num << 3 | wt);
}

/* An int64 field (varint, negative values in 10 bytes), left out when 0 as proto3 does. */
static void w_int64(struct pbw *w, unsigned num, int64_t v)
{
    if (v == 0)
        return;
    w_tag(w, num, 0);
    w_uvarint(w, (uint64_t)v);
}

/* A bytes field, left out when empty. */
static void w_str(struct pbw *w, unsigned num, struct mp_str s)
{
    if (!s.len)
        return;
    w_tag(w, num, 2);
    w_uvarint(w, s.len);
    w_bytes(w, s.ptr, s.len);
}

/* Opens a length-delimited field: tag and a hole for the length; returns where the hole is. */
static size_t w_open(struct pbw *w, unsigned num)
{
    static const uint8_t hole[LEN_HOLE] = {0};
    w_tag(w, num, 2);
    size_t at = w->b->len;
    w_bytes(w, hole, sizeof hole);
    return at;
}

/* Closes the field opened at `at`: writes the body's length and moves the body up. */
static void w_close(struct pbw *w, size_t at)
{
    if (w->rc)
        return;
    char *hole = w->b->data + at;
    size_t body = w->b->len - at - LEN_HOLE;
    size_t k = uvarint_put((uint8_t *)hole, body);
    memmove(hole + k, hole + LEN_HOLE, body);
    w->b->len -= LEN_HOLE - k;
}

/* Body size of a Label message (Go's Label.Size()). */
static size_t label_size(struct mp_label l)
{
    size_t n = 0;
    if (l.name.len)
        n += 1 + uvarint_len(l.name.len) + l.name.len;
    if (l.value.len)
        n += 1 + uvarint_len(l.value.len) + l.value.len;
    return n;
}

/* Writes the series labels merged with the external labels (both sorted by name; the series'
 * own label wins a clash) as repeated Label field `num`; *sizes gets the sum of their body
 * sizes (for the frame budget). */
static void w_labels(struct pbw *w, unsigned num, const struct mp_labels *ls,
                     const struct mp_labels *ext, size_t *sizes)
{
    size_t n = mp_labels_count(ls), ne = ext ? mp_labels_count(ext) : 0, i = 0, j = 0;
    size_t total = 0;
    while (i < n || j < ne) {
        struct mp_label l;
        if (j >= ne) {
            l = mp_labels_at(ls, i++);
        } else if (i >= n) {
            l = mp_labels_at(ext, j++);
        } else {
            struct mp_label a = mp_labels_at(ls, i), b = mp_labels_at(ext, j);
            int c = mp_str_cmp(a.name, b.name);
            if (c <= 0) {
                l = a;
                i++;
                j += c == 0;
            } else {
                l = b;
                j++;
            }
        }
        size_t sz = label_size(l);
        total += sz;
        w_tag(w, num, 2);
        w_uvarint(w, sz);
        w_str(w, 1, l.name);
        w_str(w, 2, l.value);
    }
    *sizes = total;
}

/* ---- the gate ------------------------------------------------------------------------------ */

struct remote_read_server {
    struct remote_read_options o;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic size_t active; /* changed under mu; read without it for the gauge */
};

int remote_read_server_create(const struct remote_read_options *o, struct remote_read_server **out)
{
    struct remote_read_server *s = mp_calloc(1, sizeof *s);
    if (!s)
        return MP_ENOMEM;
    if (o)
        s->o = *o;
    else
        remote_read_options_init(&s->o);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s->mu, NULL);
    *out = s;
    return 0;
}

void remote_read_server_destroy(struct remote_read_server *s)
{
    if (!s)
        return;
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    mp_free(s);
}

size_t remote_read_server_active(const struct remote_read_server *s)
{
    /* relaxed: a gauge sample, ordered with nothing */
    return atomic_load_explicit(&s->active, memory_order_relaxed);
}

/* Slice of a wait between two looks at the client. */
#define GATE_POLL_MS 100

static struct timespec mono_after(int64_t ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += (time_t)(ms / 1000);
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

static bool mono_passed(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/* 0 with a slot taken; MP_ECANCELED once gone(gone_arg) says the client left (asked every
 * GATE_POLL_MS while waiting, so its place in the queue is freed); MP_ETIMEOUT after
 * gate_wait_ms when that is >= 0. */
static int gate_enter(struct remote_read_server *s, bool (*gone)(void *), void *gone_arg)
{
    size_t limit = s->o.concurrent_limit;
    int64_t wait = s->o.gate_wait_ms;
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    struct timespec until = mono_after(wait < 0 ? 0 : wait);
    while (limit && s->active >= limit) {
        if (wait >= 0 && mono_passed(&until)) {
            rc = MP_ETIMEOUT;
            break;
        }
        if (!gone) {
            if (wait < 0)
                pthread_cond_wait(&s->cv, &s->mu);
            else
                pthread_cond_timedwait(&s->cv, &s->mu, &until);
            continue;
        }
        struct timespec slice = mono_after(GATE_POLL_MS);
        if (wait >= 0 && until.tv_sec * 1000000000LL + until.tv_nsec <
                             slice.tv_sec * 1000000000LL + slice.tv_nsec)
            slice = until;
        pthread_cond_timedwait(&s->cv, &s->mu, &slice);
        if (s->active < limit)
            break;
        pthread_mutex_unlock(&s->mu);
        bool left = gone(gone_arg);
        pthread_mutex_lock(&s->mu);
        if (left) {
            rc = MP_ECANCELED;
            break;
        }
    }
    if (rc == 0)
        atomic_store_explicit(&s->active, s->active + 1, memory_order_relaxed);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static void gate_leave(struct remote_read_server *s)
{
    pthread_mutex_lock(&s->mu);
    atomic_store_explicit(&s->active, s->active - 1, memory_order_relaxed);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* ---- SAMPLES ------------------------------------------------------------------------------- */

/* Opens a querier on q's range and selects; *ss NULL when nothing can match (no matchers, as
 * Prometheus's index gives no postings for none, or an empty range). */
static int query_open(struct tsdb *db, const struct rquery *q, struct tsdb_querier **qr,
                      struct tsdb_series_set **ss, struct mp_err *err)
{
    *qr = NULL;
    *ss = NULL;
    if (q->n == 0 || q->mint > q->maxt)
        return 0;
    int rc = tsdb_querier_open(db, q->mint, q->maxt, qr, err);
    if (rc)
        return rc;
    rc = tsdb_querier_select(*qr, (const struct mp_matcher *const *)q->m, q->n, ss, err);
    if (rc) {
        tsdb_querier_close(*qr);
        *qr = NULL;
    }
    return rc;
}

/* One QueryResult (field 1 of ReadResponse) for query q. */
static int samples_query(struct tsdb *db, const struct rquery *q, const struct mp_labels *ext,
                         int64_t limit, struct pbw *w, struct remote_read_response *out,
                         struct mp_err *err)
{
    struct tsdb_querier *qr;
    struct tsdb_series_set *ss;
    int rc = query_open(db, q, &qr, &ss, err);
    if (rc)
        return rc;
    size_t qat = w_open(w, 1);
    int64_t nsamples = 0;
    while (ss && !w->rc && (rc = tsdb_series_set_next(ss, err)) == 0) {
        size_t sat = w_open(w, 1), lsz;
        w_labels(w, 1, tsdb_series_set_labels(ss), ext, &lsz);
        out->series++;
        if (q->series_only) {
            w_close(w, sat);
            continue;
        }
        struct tsdb_sample_iter it;
        tsdb_series_set_iter(ss, &it);
        int64_t t;
        double v;
        while ((rc = tsdb_sample_iter_next(&it, &t, &v)) == 0) {
            if (limit > 0 && ++nsamples > limit) {
                rc = mp_err_set(err, MP_ELIMIT, "exceeded sample limit (%lld)", (long long)limit);
                goto done;
            }
            uint64_t bits = tsdb_f64_bits(v);
            /* Sample: 1 value (fixed64), 2 timestamp; zeros left out (-0.0 is kept: its
             * bits are not 0) */
            size_t body = (bits ? 9 : 0) + (t ? 1 + uvarint_len((uint64_t)t) : 0);
            uint8_t tmp[2 + 9 + 11];
            size_t k = 0;
            tmp[k++] = 0x12;
            tmp[k++] = (uint8_t)body;
            if (bits) {
                tmp[k++] = 0x09;
                for (int b = 0; b < 8; b++)
                    tmp[k++] = (uint8_t)(bits >> (8 * b));
            }
            if (t) {
                tmp[k++] = 0x10;
                k += uvarint_put(tmp + k, (uint64_t)t);
            }
            w_bytes(w, tmp, k);
            out->samples++;
        }
        if (rc != MP_EEOF) {
            rc = mp_err_set(err, rc, "remote read: damaged chunk in a series");
            goto done;
        }
        rc = 0;
        w_close(w, sat);
    }
    if (rc == MP_EEOF)
        rc = 0;
    w_close(w, qat);
done:
    tsdb_series_set_free(ss);
    tsdb_querier_close(qr);
    return rc;
}

static int respond_samples(struct remote_read_server *s, struct tsdb *db,
                           const struct mp_labels *ext, const struct remote_read_request *req,
                           struct remote_read_response *out, struct mp_err *err)
{
    struct mp_buf raw;
    mp_buf_init(&raw, 0);
    struct pbw w = {&raw, 0};
    int rc = 0;
    for (size_t i = 0; i < req->nq && !rc; i++) {
        struct mp_err e;
        mp_err_clear(&e);
        rc = samples_query(db, &req->q[i], ext, s->o.sample_limit, &w, out, &e);
        if (rc) {
            out->status = rc == MP_ELIMIT ? 400 : 500;
            snprintf(out->message, sizeof out->message, "%s", e.msg);
            mp_err_set(err, rc, "%s", e.msg);
        }
    }
    if (!rc && w.rc) {
        rc = mp_err_set(err, w.rc, "remote read: no memory for a response of %zu samples",
                        out->samples);
        out->status = 500;
        snprintf(out->message, sizeof out->message, "%s", err ? err->msg : mp_strerror(rc));
    }
    if (!rc) {
        size_t clen = snappy_max_compressed_length(raw.len);
        rc = mp_buf_reserve(&out->body, clen);
        if (!rc &&
            snappy_compress(raw.data ? raw.data : "", raw.len, out->body.data, &clen) != SNAPPY_OK)
            rc = MP_EINVAL;
        if (rc) {
            out->status = 500;
            snprintf(out->message, sizeof out->message, "snappy: cannot compress %zu bytes",
                     raw.len);
            mp_err_set(err, rc, "%s", out->message);
        } else {
            out->body.len = clen;
            out->content_type = REMOTE_READ_CT_SAMPLES;
            out->content_encoding = "snappy";
        }
    }
    mp_buf_fini(&raw);
    return rc;
}

/* ---- STREAMED_XOR_CHUNKS ------------------------------------------------------------------- */

/* Room in front of a frame's payload for uvarint(len) and the CRC, written once it is known. */
#define FRAME_HEAD (10u + 4u)

struct remote_read_stream {
    struct remote_read_server *gate; /* slot to give back; NULL when none */
    struct tsdb *db;
    struct mp_labels *ext;           /* own reference; NULL = none */
    struct remote_read_request *req; /* owned */
    size_t max_frame;
    size_t qi; /* query being read */
    struct tsdb_querier *qr;
    struct tsdb_series_set *ss;
    const struct tsdb_chunk *chunks; /* current series', borrowed from ss */
    size_t nchunks, ci;
    struct mp_buf lab;     /* current series' labels, encoded as ChunkedSeries field 1 */
    int64_t lab_size;      /* their body sizes (Go's Label.Size() summed) */
    struct tsdb_xor *trim; /* the last chunk cut to the query's range */
    struct mp_buf frame;
    size_t off; /* first unsent byte of frame */
    size_t frames;
    bool eof;
    int err; /* sticky */
    struct mp_err errmsg;
};

void remote_read_stream_destroy(struct remote_read_stream *st)
{
    if (!st)
        return;
    tsdb_series_set_free(st->ss);
    tsdb_querier_close(st->qr);
    if (st->ext)
        mp_labels_release(st->ext);
    remote_read_request_free(st->req);
    mp_buf_fini(&st->lab);
    mp_buf_fini(&st->frame);
    tsdb_xor_destroy(st->trim);
    if (st->gate)
        gate_leave(st->gate);
    mp_free(st);
}

/* Body size of a Chunk message (Go's Chunk.Size()). */
static size_t chunk_size(const struct tsdb_chunk *c)
{
    size_t n = 0;
    if (c->mint_ms)
        n += 1 + uvarint_len((uint64_t)c->mint_ms);
    if (c->maxt_ms)
        n += 1 + uvarint_len((uint64_t)c->maxt_ms);
    if (c->encoding & ~TSDB_ENC_OOO_FLAG)
        n += 2;
    if (c->len)
        n += 1 + uvarint_len(c->len) + c->len;
    return n;
}

/* c as Prometheus's chunk querier hands it out: a chunk that sticks out of the query's range is
 * re-encoded with only the samples inside (*out then points into st->trim, valid until the next
 * call); others are passed as they are. 0; MP_EEOF when no sample is inside (the chunk is left
 * out); MP_EPARSE (damaged chunk), MP_ENOMEM. */
static int chunk_trim(struct remote_read_stream *st, const struct tsdb_chunk *c,
                      struct tsdb_chunk *out)
{
    const struct rquery *q = &st->req->q[st->qi];
    if ((c->mint_ms >= q->mint && c->maxt_ms <= q->maxt) ||
        (c->encoding & ~TSDB_ENC_OOO_FLAG) != TSDB_ENC_XOR) {
        *out = *c;
        return 0;
    }
    tsdb_xor_destroy(st->trim);
    st->trim = NULL;
    int rc = tsdb_xor_create(&st->trim);
    if (rc)
        return mp_err_set(&st->errmsg, rc, "remote read: no memory to cut a chunk");
    struct tsdb_xor_iter it;
    tsdb_xor_iter_init(&it, c->data, c->len);
    int64_t t;
    double v;
    size_t n = 0;
    while ((rc = tsdb_xor_iter_next(&it, &t, &v)) == 0 && t <= q->maxt) {
        if (t < q->mint)
            continue;
        rc = tsdb_xor_append(st->trim, t, v);
        if (rc)
            return mp_err_set(&st->errmsg, rc, "remote read: no memory to cut a chunk");
        n++;
    }
    if (rc == MP_EPARSE) {
        rc = tsdb_xor_iter_error(&it, &st->errmsg);
        return rc ? rc : MP_EPARSE;
    }
    if (n == 0)
        return MP_EEOF;
    size_t len;
    const uint8_t *data = tsdb_xor_bytes(st->trim, &len);
    *out = (struct tsdb_chunk){tsdb_xor_min_time(st->trim), tsdb_xor_max_time(st->trim),
                               TSDB_ENC_XOR, data, len};
    return 0;
}

/* Builds the next frame from the current series' chunks ci.. as StreamChunkedReadResponses
 * does: chunks are added until the budget (max frame bytes minus the labels) is used up or the
 * series ends, so a frame may pass the budget by one chunk. MP_EAGAIN when nothing of the
 * series is left (its last chunks had no sample in the range): no frame. */
static int frame_build(struct remote_read_stream *st)
{
    struct mp_buf *f = &st->frame;
    mp_buf_reset(f);
    st->off = 0;
    static const uint8_t head[FRAME_HEAD] = {0};
    struct pbw w = {f, 0};
    w_bytes(&w, head, sizeof head);
    size_t at = w_open(&w, 1);
    w_bytes(&w, st->lab.data, st->lab.len);
    int64_t left = (int64_t)st->max_frame - st->lab_size;
    size_t nchunks = 0;
    while (st->ci < st->nchunks) {
        struct tsdb_chunk cc = {0};
        int rc = chunk_trim(st, &st->chunks[st->ci++], &cc);
        if (rc == MP_EEOF)
            continue;
        if (rc)
            return rc;
        const struct tsdb_chunk *c = &cc;
        size_t csz = chunk_size(c);
        w_tag(&w, 2, 2);
        w_uvarint(&w, csz);
        w_int64(&w, 1, c->mint_ms);
        w_int64(&w, 2, c->maxt_ms);
        w_int64(&w, 3, c->encoding & ~TSDB_ENC_OOO_FLAG);
        w_str(&w, 4, (struct mp_str){(const char *)c->data, c->len});
        nchunks++;
        left -= (int64_t)csz;
        if (left <= 0)
            break;
    }
    if (nchunks == 0) {
        mp_buf_reset(f);
        return MP_EAGAIN;
    }
    w_close(&w, at);
    w_int64(&w, 2, (int64_t)st->qi);
    if (w.rc)
        return mp_err_set(&st->errmsg, w.rc, "remote read: no memory for a frame");
    size_t plen = f->len - FRAME_HEAD;
    uint8_t hd[FRAME_HEAD];
    size_t k = uvarint_put(hd, plen);
    uint32_t crc = remote_read_crc32c(0, f->data + FRAME_HEAD, plen);
    hd[k++] = (uint8_t)(crc >> 24);
    hd[k++] = (uint8_t)(crc >> 16);
    hd[k++] = (uint8_t)(crc >> 8);
    hd[k++] = (uint8_t)crc;
    st->off = FRAME_HEAD - k;
    memcpy(f->data + st->off, hd, k);
    st->frames++;
    return 0;
}

/* Makes the next frame (0), or MP_EEOF after the last query, or an error. */
static int stream_fill(struct remote_read_stream *st)
{
    for (;;) {
        if (st->ss && st->ci < st->nchunks) {
            int rc = frame_build(st);
            if (rc != MP_EAGAIN)
                return rc;
            continue;
        }
        if (st->ss) {
            int rc = tsdb_series_set_next(st->ss, &st->errmsg);
            if (rc == 0) {
                mp_buf_reset(&st->lab);
                struct pbw w = {&st->lab, 0};
                size_t lsz;
                w_labels(&w, 1, tsdb_series_set_labels(st->ss), st->ext, &lsz);
                if (w.rc)
                    return mp_err_set(&st->errmsg, w.rc, "remote read: no memory for labels");
                st->lab_size = (int64_t)lsz;
                rc = tsdb_series_set_chunks(st->ss, &st->chunks, &st->nchunks, &st->errmsg);
                if (rc)
                    return rc;
                st->ci = 0;
                continue;
            }
            if (rc != MP_EEOF)
                return rc;
            tsdb_series_set_free(st->ss);
            tsdb_querier_close(st->qr);
            st->ss = NULL;
            st->qr = NULL;
            st->nchunks = st->ci = 0;
            st->qi++;
        }
        if (st->qi >= st->req->nq)
            return MP_EEOF;
        int rc = query_open(st->db, &st->req->q[st->qi], &st->qr, &st->ss, &st->errmsg);
        if (rc)
            return rc;
        if (!st->ss)
            st->qi++;
    }
}

int remote_read_stream_read(struct remote_read_stream *st, uint8_t *buf, size_t cap, size_t *n,
                            struct mp_err *err)
{
    *n = 0;
    while (*n < cap) {
        if (st->err)
            break;
        if (st->off < st->frame.len) {
            size_t k = st->frame.len - st->off;
            if (k > cap - *n)
                k = cap - *n;
            memcpy(buf + *n, st->frame.data + st->off, k);
            st->off += k;
            *n += k;
            continue;
        }
        if (st->eof)
            break;
        int rc = stream_fill(st);
        if (rc == MP_EEOF)
            st->eof = true;
        else if (rc)
            st->err = rc;
    }
    if (*n)
        return 0;
    if (st->err)
        return mp_err_set(err, st->err, "%s", st->errmsg.msg);
    return MP_EEOF;
}

/* ---- the endpoint -------------------------------------------------------------------------- */

void remote_read_response_fini(struct remote_read_response *r)
{
    mp_buf_fini(&r->body);
    remote_read_stream_destroy(r->stream);
    r->stream = NULL;
}

static int respond_stream(struct remote_read_server *s, struct tsdb *db,
                          const struct mp_labels *ext, struct remote_read_request **req,
                          struct remote_read_response *out, struct mp_err *err)
{
    struct remote_read_stream *st = mp_calloc(1, sizeof *st);
    if (!st) {
        out->status = 500;
        snprintf(out->message, sizeof out->message, "out of memory");
        return mp_err_set(err, MP_ENOMEM, "remote read: out of memory");
    }
    st->db = db;
    st->ext = ext ? mp_labels_acquire(ext) : NULL;
    st->req = *req;
    *req = NULL;
    st->max_frame = s->o.max_bytes_in_frame;
    mp_buf_init(&st->lab, 0);
    mp_buf_init(&st->frame, 0);
    mp_err_clear(&st->errmsg);
    /* the first frame now, so that a failing first query is a 500 rather than a cut body */
    int rc = stream_fill(st);
    if (rc && rc != MP_EEOF) {
        out->status = 500;
        snprintf(out->message, sizeof out->message, "%s", st->errmsg.msg);
        mp_err_set(err, rc, "%s", st->errmsg.msg);
        remote_read_stream_destroy(st);
        return rc;
    }
    st->eof = rc == MP_EEOF;
    st->gate = s; /* the slot goes with the stream */
    out->stream = st;
    out->content_type = REMOTE_READ_CT_STREAMED;
    return 0;
}

int remote_read_serve(struct remote_read_server *s, struct tsdb *db, const struct mp_labels *ext,
                      const uint8_t *body, size_t len, struct remote_read_response *out,
                      struct mp_err *err)
{
    return remote_read_serve_gone(s, db, ext, body, len, NULL, NULL, out, err);
}

int remote_read_serve_gone(struct remote_read_server *s, struct tsdb *db,
                           const struct mp_labels *ext, const uint8_t *body, size_t len,
                           bool (*gone)(void *), void *gone_arg, struct remote_read_response *out,
                           struct mp_err *err)
{
    memset(out, 0, sizeof *out);
    mp_buf_init(&out->body, 0);
    out->status = 200;
    int grc = gate_enter(s, gone, gone_arg);
    if (grc == MP_ECANCELED) {
        /* Prometheus: http.Error(ctx.Err(), 500) for a client that is no longer there */
        out->status = 500;
        snprintf(out->message, sizeof out->message, "context canceled");
        return mp_err_set(err, grc, "%s", out->message);
    }
    if (grc != 0) {
        out->status = 503;
        snprintf(out->message, sizeof out->message,
                 "too many concurrent remote read requests (limit %zu)", s->o.concurrent_limit);
        return mp_err_set(err, MP_ETIMEOUT, "%s", out->message);
    }
    struct mp_err e;
    mp_err_clear(&e);
    struct remote_read_request *req;
    int rc = remote_read_decode(body, len, &s->o, ext, &req, &out->status, &e);
    if (rc) {
        snprintf(out->message, sizeof out->message, "%s", e.msg);
        mp_err_set(err, rc, "%s", e.msg);
        gate_leave(s);
        return rc;
    }
    if (req->type == REMOTE_PB__READ_REQUEST__RESPONSE_TYPE__STREAMED_XOR_CHUNKS) {
        rc = respond_stream(s, db, ext, &req, out, err);
        remote_read_request_free(req);
        if (rc)
            gate_leave(s);
        return rc;
    }
    rc = respond_samples(s, db, ext, req, out, err);
    remote_read_request_free(req);
    gate_leave(s);
    return rc;
}
