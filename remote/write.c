/* SPDX-License-Identifier: Apache-2.0 */
/* remote/write.c: the remote-write 1.0 receiver (protocols.md 5.4), as Prometheus 2.55.1's
 * storage/remote/write_handler.go answers POST /api/v1/write:
 *
 *   body > max_body                          -> 413
 *   snappy header: uvarint decoded length    -> 400 "snappy: corrupt input" if unreadable or
 *                                               more than a snappy stream of len bytes can
 *                                               give (64 bytes per 3-byte copy: 22x);
 *                                               413 above max_decoded; only then allocated
 *   snappy_uncompress                        -> 400 "snappy: corrupt input"
 *   protobuf-c unpack into an arena          -> 400 "proto: ...", 413 above max_memory
 *   per TimeSeries: labels sorted by name; no __name__, invalid names (legacy charset), value
 *   not UTF-8, duplicate names               -> series skipped, counted, request still 204
 *   one appender, series in request order    -> first failing sample: rollback, 400 with the
 *                                               tsdb's text (out of order / duplicate / out of
 *                                               bounds / too far in the future), 500 else
 *   commit                                   -> 204, or 500
 *
 * Example: WriteRequest{timeseries: [{labels: [{__name__, up}, {job, a}], samples: [{1, 1000}]}]}
 * is 0a 1c 0a 0c 0a 08 "__name__" 12 02 "up" 0a 08 0a 03 "job" 12 01 "a" 12 0b 09 <1.0 LE> 10 e8 07
 * before snappy. The unpacked message lives in one arena (bump allocation, freed at once; each
 * allocation its own block under sanitizers), capped so that a small body cannot expand into a
 * large message (an empty Label costs 2 wire bytes and ~48 bytes of memory). */
#include "remote/remote.h"

#include <snappy-c.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "common/str.h"
#include "common/time.h"
#include "remote.pb-c.h"
#include "tsdb/tsdb.h"

/* ---- arena for protobuf-c ------------------------------------------------------------------ */

#define ARENA_ALIGN 16u
#define ARENA_FIRST ((size_t)4 << 10)
/* below glibc's mmap threshold, so freed blocks are reused rather than unmapped */
#define ARENA_MAX_BLOCK ((size_t)64 << 10)

struct ablock {
    struct ablock *next;
    size_t used, cap;
};
#define ABLOCK_HDR ((sizeof(struct ablock) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1))

/* Blocks kept between requests (remote/remote.h). */
struct remote_write_cache {
    struct ablock *free;
    size_t bytes, keep;
};

struct arena {
    struct ablock *head;
    struct remote_write_cache *cache; /* NULL: blocks go back to the allocator */
    size_t total;                     /* bytes of blocks in use, headers included */
    size_t limit;                     /* 0 = none */
    size_t next;                      /* size of the next regular block */
    bool over;                        /* an allocation was refused for the limit */
    bool nomem;
};

/* A kept block of at least cap bytes, unlinked from the cache; NULL if none. */
#ifndef MP_SANITIZER_BUILD
static struct ablock *cache_take(struct remote_write_cache *c, size_t cap)
{
    if (!c)
        return NULL;
    for (struct ablock **pp = &c->free; *pp; pp = &(*pp)->next) {
        struct ablock *b = *pp;
        if (b->cap >= cap) {
            *pp = b->next;
            c->bytes -= ABLOCK_HDR + b->cap;
            return b;
        }
    }
    return NULL;
}
#endif

static void *arena_alloc(void *data, size_t size)
{
    struct arena *a = data;
    if (size > SIZE_MAX / 2) {
        a->over = true;
        return NULL;
    }
    /* protobuf-c takes NULL as failure, also for 0 bytes */
    size = size ? (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1) : ARENA_ALIGN;
    struct ablock *b = a->head;
#ifndef MP_SANITIZER_BUILD
    if (b && b->cap - b->used >= size) {
        void *p = (char *)b + ABLOCK_HDR + b->used;
        b->used += size;
        return p;
    }
    size_t cap = size > a->next ? size : a->next;
    if (a->next < ARENA_MAX_BLOCK)
        a->next *= 2;
    b = cache_take(a->cache, cap);
#else
    size_t cap = size; /* every allocation its own block: ASan sees overflows */
    b = NULL;
#endif
    size_t need = ABLOCK_HDR + (b ? b->cap : cap);
    if (a->limit && (a->total > a->limit || need > a->limit - a->total)) {
        if (b) { /* back where it came from */
            b->next = a->cache->free;
            a->cache->free = b;
            a->cache->bytes += need;
        }
        a->over = true;
        return NULL;
    }
    if (!b) {
        b = mp_malloc(need);
        if (!b) {
            a->nomem = true;
            return NULL;
        }
        b->cap = cap;
    }
    a->total += need;
    b->used = size;
    /* a fresh block goes first, unless the old head still has more room */
    if (a->head && a->head->cap - a->head->used > b->cap - size) {
        b->next = a->head->next;
        a->head->next = b;
    } else {
        b->next = a->head;
        a->head = b;
    }
    return (char *)b + ABLOCK_HDR;
}

static void arena_free(void *data, void *p)
{
    (void)data;
    (void)p; /* everything goes at once in arena_fini */
}

/* Gives the blocks back: to the cache while it is under its keep size, else freed. */
static void arena_fini(struct arena *a)
{
    struct remote_write_cache *c = a->cache;
    for (struct ablock *b = a->head, *n; b; b = n) {
        n = b->next;
        size_t sz = ABLOCK_HDR + b->cap;
        if (c && c->bytes + sz <= c->keep) {
            b->next = c->free;
            c->free = b;
            c->bytes += sz;
        } else {
            mp_free(b);
        }
    }
    a->head = NULL;
    a->total = 0;
}

int remote_write_cache_create(size_t keep_bytes, struct remote_write_cache **out)
{
    struct remote_write_cache *c = mp_calloc(1, sizeof *c);
    if (!c)
        return MP_ENOMEM;
#ifndef MP_SANITIZER_BUILD
    c->keep = keep_bytes;
#else
    (void)keep_bytes; /* every allocation its own block, freed at once: ASan sees misuse */
#endif
    *out = c;
    return 0;
}

void remote_write_cache_destroy(struct remote_write_cache *c)
{
    if (!c)
        return;
    for (struct ablock *b = c->free, *n; b; b = n) {
        n = b->next;
        mp_free(b);
    }
    mp_free(c);
}

size_t remote_write_cache_bytes(const struct remote_write_cache *c)
{
    return c ? c->bytes : 0;
}

/* ---- results ------------------------------------------------------------------------------- */

static int fail(struct remote_write_result *res, int status, int code, struct mp_err *err,
                const char *fmt, ...) MP_PRINTF(5, 6);
static int fail(struct remote_write_result *res, int status, int code, struct mp_err *err,
                const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->message, sizeof res->message, fmt, ap);
    va_end(ap);
    res->status = status;
    return mp_err_set(err, code, "%s", res->message);
}

void remote_write_limits_init(struct remote_write_limits *l)
{
    l->max_body_bytes = REMOTE_WRITE_MAX_BODY_DEFAULT;
    l->max_decoded_bytes = REMOTE_WRITE_MAX_DECODED_DEFAULT;
    l->max_memory_bytes = REMOTE_WRITE_MAX_MEMORY_DEFAULT;
    l->now_ms = 0;
    l->max_ahead_ms = REMOTE_WRITE_MAX_AHEAD_MS;
}

/* ---- headers ------------------------------------------------------------------------------- */

#define PROTO_CT "application/x-protobuf"
#define MSG_V1 "prometheus.WriteRequest"
#define MSG_V2 "io.prometheus.write.v2.Request"

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Prometheus parseProtoMsg: TrimSpace, split on ';', the first part must be the media type
 * exactly; each parameter must be one '='; "proto" names the message (no trimming of parts). */
static int check_content_type(const char *ct, struct remote_write_result *res)
{
    size_t len = strlen(ct);
    while (len && is_space(ct[len - 1]))
        len--;
    while (len && is_space(*ct)) {
        ct++;
        len--;
    }
    if (len == 0) /* what TrimSpace leaves of a blank header: Go compares "" and fails */
        return fail(res, 415, MP_EINVAL, NULL,
                    "expected " PROTO_CT " as the first (media) part, got  content-type");
    const char *end = ct + len, *semi = memchr(ct, ';', len);
    const char *p0end = semi ? semi : end;
    if ((size_t)(p0end - ct) != strlen(PROTO_CT) || memcmp(ct, PROTO_CT, strlen(PROTO_CT)) != 0)
        return fail(res, 415, MP_EINVAL, NULL,
                    "expected " PROTO_CT " as the first (media) part, got %.*s content-type",
                    (int)len, ct);
    const char *msg = MSG_V1;
    size_t msglen = strlen(MSG_V1);
    for (const char *p = semi; p && p < end;) {
        p++; /* past ';' */
        const char *q = memchr(p, ';', (size_t)(end - p));
        const char *pend = q ? q : end;
        const char *eq = memchr(p, '=', (size_t)(pend - p));
        if (!eq || memchr(eq + 1, '=', (size_t)(pend - eq - 1)))
            return fail(res, 415, MP_EINVAL, NULL,
                        "as per https://www.rfc-editor.org/rfc/rfc9110#parameter expected "
                        "parameters to be key-values, got %.*s in %.*s content-type",
                        (int)(pend - p), p, (int)len, ct);
        if (eq - p == 5 && memcmp(p, "proto", 5) == 0) {
            msg = eq + 1;
            msglen = (size_t)(pend - msg);
            break;
        }
        p = q;
    }
    bool v1 = msglen == strlen(MSG_V1) && memcmp(msg, MSG_V1, msglen) == 0;
    bool v2 = msglen == strlen(MSG_V2) && memcmp(msg, MSG_V2, msglen) == 0;
    if (!v1 && !v2)
        return fail(res, 415, MP_EINVAL, NULL,
                    "got %.*s content type; unknown remote write protobuf message %.*s, "
                    "supported: " MSG_V1 ", " MSG_V2,
                    (int)len, ct, (int)msglen, msg);
    if (v2) /* remote write 2.0 is not implemented (spec 5.6) */
        return fail(res, 415, MP_EINVAL, NULL,
                    MSG_V2 " protobuf message is not accepted by this server; accepted [" MSG_V1
                           "]");
    return 0;
}

int remote_write_check_headers(const char *content_type, const char *content_encoding,
                               struct remote_write_result *res)
{
    res->status = 204;
    res->message[0] = 0;
    if (content_type && content_type[0]) {
        int rc = check_content_type(content_type, res);
        if (rc)
            return rc;
    }
    if (content_encoding && content_encoding[0] && strcasecmp(content_encoding, "snappy") != 0)
        return fail(res, 415, MP_EINVAL, NULL,
                    "%s encoding (compression) is not accepted by this server; only snappy is "
                    "acceptable",
                    content_encoding);
    return 0;
}

/* ---- decoding and validation --------------------------------------------------------------- */

struct rseries {
    struct mp_label *labels; /* sorted, empty values dropped; NULL: skipped as invalid */
    size_t n;
};

struct remote_write_request {
    struct arena arena;
    RemotePb__WriteRequest *wr;
    struct rseries *series;
    size_t nseries;
};

void remote_write_request_free(struct remote_write_request *req)
{
    if (!req)
        return;
    arena_fini(&req->arena);
    mp_free(req);
}

static struct mp_str bin_str(ProtobufCBinaryData d)
{
    return (struct mp_str){d.len ? (const char *)d.data : "", d.len};
}

static int label_cmp(const void *a, const void *b)
{
    return mp_str_cmp(((const struct mp_label *)a)->name, ((const struct mp_label *)b)->name);
}

/* Prometheus: ScratchBuilder.Sort, then !Has(__name__) || !IsValid(legacy) -> skip, then
 * HasDuplicateLabelNames -> skip. Valid: empty values dropped (the head's WithoutEmpty). */
static bool series_validate(struct mp_label *l, size_t *np)
{
    size_t n = *np;
    bool sorted = true;
    for (size_t i = 1; i < n && sorted; i++)
        sorted = mp_str_cmp(l[i - 1].name, l[i].name) <= 0;
    if (!sorted)
        qsort(l, n, sizeof *l, label_cmp);
    static const struct mp_str metric = MP_STR_LIT(MP_LABEL_METRIC_NAME);
    bool has_name = false;
    for (size_t i = 0; i < n; i++) {
        if (mp_str_eq(l[i].name, metric)) {
            has_name = true;
            if (!mp_metric_name_is_valid(l[i].value))
                return false;
        }
        if (!mp_label_name_is_valid(l[i].name) || !mp_label_value_is_valid(l[i].value))
            return false;
        if (i && mp_str_eq(l[i - 1].name, l[i].name))
            return false;
    }
    if (!has_name)
        return false;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (l[i].value.len)
            l[k++] = l[i];
    *np = k;
    return true;
}

static void *arena_array(struct arena *a, size_t n, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes))
        return NULL;
    return arena_alloc(a, bytes);
}

static int decode_fail_arena(struct remote_write_request *req, struct remote_write_result *res,
                             const struct remote_write_limits *lim, struct mp_err *err)
{
    int rc;
    if (req->arena.over)
        rc = fail(res, 413, MP_ELIMIT, err,
                  "decoded request needs more than the limit of %zu bytes of memory",
                  lim->max_memory_bytes);
    else
        rc = fail(res, 500, MP_ENOMEM, err, "out of memory decoding the request");
    remote_write_request_free(req);
    return rc;
}

int remote_write_decode(const uint8_t *body, size_t len, const struct remote_write_limits *lim,
                        struct remote_write_cache *cache, struct remote_write_request **out,
                        struct remote_write_result *res, struct mp_err *err)
{
    struct remote_write_limits defaults;
    if (!lim) {
        remote_write_limits_init(&defaults);
        lim = &defaults;
    }
    memset(res, 0, sizeof *res);
    res->status = 204;
    *out = NULL;
    if (lim->max_body_bytes && len > lim->max_body_bytes)
        return fail(res, 413, MP_ELIMIT, err,
                    "request body of %zu bytes exceeds the limit of %zu bytes", len,
                    lim->max_body_bytes);
    size_t dlen, most;
    if (snappy_uncompressed_length((const char *)body, len, &dlen) != SNAPPY_OK)
        return fail(res, 400, MP_EPARSE, err, "snappy: corrupt input");
    /* a copy element of 3 bytes yields at most 64: no stream of len bytes decodes to more */
    if (__builtin_mul_overflow(len, (size_t)22, &most))
        most = SIZE_MAX;
    if (dlen > most)
        return fail(res, 400, MP_EPARSE, err, "snappy: corrupt input");
    if (lim->max_decoded_bytes && dlen > lim->max_decoded_bytes)
        return fail(res, 413, MP_ELIMIT, err,
                    "snappy: decoded length %zu exceeds the limit of %zu bytes", dlen,
                    lim->max_decoded_bytes);
    char *buf = mp_malloc(dlen ? dlen : 1);
    if (!buf)
        return fail(res, 500, MP_ENOMEM, err, "out of memory for %zu decoded bytes", dlen);
    size_t got = dlen;
    if (snappy_uncompress((const char *)body, len, buf, &got) != SNAPPY_OK || got != dlen) {
        mp_free(buf);
        return fail(res, 400, MP_EPARSE, err, "snappy: corrupt input");
    }

    struct remote_write_request *req = mp_calloc(1, sizeof *req);
    if (!req) {
        mp_free(buf);
        return fail(res, 500, MP_ENOMEM, err, "out of memory decoding the request");
    }
    req->arena.cache = cache;
    req->arena.limit = lim->max_memory_bytes;
    req->arena.next = ARENA_FIRST;
    ProtobufCAllocator pa = {
        .alloc = arena_alloc, .free = arena_free, .allocator_data = &req->arena};
    req->wr = remote_pb__write_request__unpack(&pa, dlen, (const uint8_t *)buf);
    mp_free(buf);
    if (!req->wr) {
        if (req->arena.over || req->arena.nomem)
            return decode_fail_arena(req, res, lim, err);
        remote_write_request_free(req);
        /* protobuf-c gives no detail; Go's text would name the field */
        return fail(res, 400, MP_EPARSE, err, "proto: cannot parse " MSG_V1);
    }

    RemotePb__WriteRequest *wr = req->wr;
    res->series = wr->n_timeseries;
    res->metadata_ignored = wr->n_metadata;
    req->nseries = wr->n_timeseries;
    req->series = arena_array(&req->arena, req->nseries ? req->nseries : 1, sizeof *req->series);
    if (!req->series)
        return decode_fail_arena(req, res, lim, err);
    for (size_t i = 0; i < wr->n_timeseries; i++) {
        const RemotePb__TimeSeries *ts = wr->timeseries[i];
        struct rseries *rs = &req->series[i];
        size_t n = ts->n_labels;
        struct mp_label *l = arena_array(&req->arena, n ? n : 1, sizeof *l);
        if (!l)
            return decode_fail_arena(req, res, lim, err);
        for (size_t j = 0; j < n; j++)
            l[j] = (struct mp_label){bin_str(ts->labels[j]->name), bin_str(ts->labels[j]->value)};
        if (!series_validate(l, &n)) {
            rs->labels = NULL;
            res->series_invalid++;
            res->samples_invalid += ts->n_samples + ts->n_histograms;
            continue;
        }
        rs->labels = l;
        rs->n = n;
        res->samples += ts->n_samples;
        res->histograms += ts->n_histograms;
        res->exemplars_ignored += ts->n_exemplars;
    }
    *out = req;
    return 0;
}

bool remote_write_request_series(const struct remote_write_request *req, size_t i,
                                 const struct mp_label **labels, size_t *n)
{
    if (i >= req->nseries || !req->series[i].labels)
        return false;
    *labels = req->series[i].labels;
    *n = req->series[i].n;
    return true;
}

/* ---- appending ----------------------------------------------------------------------------- */

/* Status of a failed add: what Prometheus's v1 handler answers 400 (ErrOutOfOrderSample,
 * ErrOutOfBounds, ErrDuplicateSampleForTimestamp) plus invalid label sets the head refuses
 * (Prometheus: 500; never transient, so 400 here); the rest is a storage failure. */
static int add_status(int rc)
{
    switch (rc) {
    case MP_EOUTOFORDER:
    case MP_EOUTOFBOUNDS:
    case MP_EDUPLICATE:
    case MP_EINVAL:
        return 400;
    default:
        return 500;
    }
}

int remote_write_append(struct tsdb *db, const struct remote_write_request *req,
                        const struct remote_write_limits *lim, struct remote_write_result *res,
                        struct mp_err *err)
{
    struct remote_write_limits defaults;
    if (!lim) {
        remote_write_limits_init(&defaults);
        lim = &defaults;
    }
    res->samples_appended = 0;
    int64_t now = lim->now_ms ? lim->now_ms : mp_now_ms();
    int64_t max_t = INT64_MAX;
    if (lim->max_ahead_ms >= 0 && __builtin_add_overflow(now, lim->max_ahead_ms, &max_t))
        max_t = INT64_MAX;
    if (lim->max_ahead_ms < 0)
        max_t = INT64_MAX;
    struct tsdb_appender *app;
    int rc = tsdb_appender_create(db, &app);
    if (rc)
        return fail(res, 500, rc, err, "remote write: %s", mp_strerror(rc));
    size_t appended = 0;
    struct mp_err e = {0};
    for (size_t i = 0; i < req->nseries; i++) {
        const struct rseries *rs = &req->series[i];
        if (!rs->labels)
            continue;
        const RemotePb__TimeSeries *ts = req->wr->timeseries[i];
        if (ts->n_samples) {
            struct mp_labels *ls;
            rc = mp_labels_create(rs->labels, rs->n, &ls, &e);
            if (rc) {
                tsdb_appender_rollback(app);
                return fail(res, add_status(rc), rc, err, "%s", e.msg);
            }
            uint64_t ref = 0;
            for (size_t j = 0; j < ts->n_samples; j++) {
                const RemotePb__Sample *s = ts->samples[j];
                if (s->timestamp > max_t) {
                    rc = MP_EOUTOFBOUNDS;
                    mp_err_set(&e, rc, "out of bounds: timestamp is too far in the future");
                } else {
                    rc = tsdb_appender_add(app, ref, ls, s->timestamp, s->value, &ref, &e);
                }
                if (rc) {
                    mp_labels_release(ls);
                    tsdb_appender_rollback(app);
                    return fail(res, add_status(rc), rc, err, "%s", e.msg);
                }
                appended++;
            }
            mp_labels_release(ls);
        }
        if (ts->n_histograms) {
            /* Prometheus with native histograms off (the default): ErrNativeHistogramsDisabled,
             * after the series' samples, rolling the request back */
            tsdb_appender_rollback(app);
            return fail(res, 400, MP_EINVAL, err, "native histograms are disabled");
        }
    }
    rc = tsdb_appender_commit(app, &e);
    if (rc)
        return fail(res, 500, rc, err, "%s", e.msg);
    res->samples_appended = appended;
    res->status = 204;
    res->message[0] = 0;
    return 0;
}

int remote_write_decode_and_append_cached(struct tsdb *db, struct remote_write_cache *cache,
                                          const uint8_t *body, size_t len,
                                          const struct remote_write_limits *lim,
                                          struct remote_write_result *res, struct mp_err *err)
{
    struct remote_write_request *req;
    int rc = remote_write_decode(body, len, lim, cache, &req, res, err);
    if (rc)
        return rc;
    rc = remote_write_append(db, req, lim, res, err);
    remote_write_request_free(req);
    return rc;
}

int remote_write_decode_and_append(struct tsdb *db, const uint8_t *body, size_t len,
                                   const struct remote_write_limits *lim,
                                   struct remote_write_result *res, struct mp_err *err)
{
    return remote_write_decode_and_append_cached(db, NULL, body, len, lim, res, err);
}
