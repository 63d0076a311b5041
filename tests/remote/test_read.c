/* SPDX-License-Identifier: Apache-2.0 */
/* tests/remote/test_read.c: the remote-read endpoint (remote/read.c) against a real tsdb in a
 * temp dir. Requests are built with the generated protobuf-c code (the client's side) and
 * answers decoded with it, independently of read.c's hand-written encoder: SAMPLES bodies
 * (snappy + ReadResponse) and STREAMED_XOR_CHUNKS streams (frames parsed, CRC-32C checked with a
 * bitwise oracle, ChunkedReadResponse unpacked, chunk bytes re-decoded with the XOR iterator).
 * Also: every decode error and limit of protocols.md 5.7, external labels (merge, clash, the
 * equality-matcher rewrite), hints, the concurrency gate, truncated bodies and allocation
 * failures. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "remote/remote.h"
#include "support_remote.h"
#include "tsdb/tsdb.h"

#define T0 INT64_C(1700000000000)

static char dir[64];
static struct tsdb *db;
static struct remote_read_options opt;
static struct remote_read_server *srv;
static struct mp_labels *ext; /* site="a" */

static struct mp_labels *labels_of(const char *const *kv)
{
    struct mp_label l[16];
    size_t n = 0;
    for (; kv[2 * n]; n++)
        l[n] = (struct mp_label){mp_str_c(kv[2 * n]), mp_str_c(kv[2 * n + 1])};
    struct mp_labels *ls;
    struct mp_err err = {0};
    cr_assert_eq(mp_labels_create(l, n, &ls, &err), 0, "%s", err.msg);
    return ls;
}

/* n samples of series kv at T0 + i * step, value f(i) = i * 0.5 + k. */
static void fill(const char *const *kv, size_t n, int64_t step, double k)
{
    struct mp_labels *ls = labels_of(kv);
    struct tsdb_appender *app;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_appender_create(db, &app), 0);
    uint64_t ref = 0;
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(tsdb_appender_add(app, ref, ls, T0 + (int64_t)i * step, (double)i * 0.5 + k,
                                       &ref, &err),
                     0, "%s", err.msg);
    cr_assert_eq(tsdb_appender_commit(app, &err), 0, "%s", err.msg);
    mp_labels_release(ls);
}

static const char *const UP_A[] = {"__name__", "up", "job", "node", "instance", "a", NULL};
static const char *const UP_B[] = {"__name__", "up", "job", "node", "instance", "b", NULL};
static const char *const RQ[] = {"__name__", "rq", "site", "b", NULL}; /* own site label */

static void setup(void)
{
    db = rw_db_open(dir);
    remote_read_options_init(&opt);
    opt.gate_wait_ms = 20;
    static const char *const site[] = {"site", "a", NULL};
    ext = labels_of(site);
    fill(UP_A, 10, 1000, 0);
    fill(UP_B, 10, 1000, 100);
    fill(RQ, 5, 1000, 7);
}

static void make_server(void)
{
    cr_assert_eq(remote_read_server_create(&opt, &srv), 0);
}

static void teardown(void)
{
    remote_read_server_destroy(srv);
    srv = NULL;
    mp_labels_release(ext);
    rw_db_close(db, dir);
}

TestSuite(remote_read, .init = setup, .fini = teardown);

/* ---- building requests ---- */

#define RB_QUERIES 4
#define RB_MATCHERS 4

struct rrb {
    RemotePb__ReadRequest rr;
    RemotePb__Query q[RB_QUERIES], *qp[RB_QUERIES];
    RemotePb__LabelMatcher m[RB_QUERIES][RB_MATCHERS], *mp[RB_QUERIES][RB_MATCHERS];
    RemotePb__ReadHints h[RB_QUERIES];
    RemotePb__ReadRequest__ResponseType types[4];
};

static void rrb_init(struct rrb *b)
{
    memset(b, 0, sizeof *b);
    remote_pb__read_request__init(&b->rr);
    b->rr.queries = b->qp;
    b->rr.accepted_response_types = b->types;
}

static ProtobufCBinaryData bin(const char *s)
{
    return (ProtobufCBinaryData){strlen(s), (uint8_t *)(uintptr_t)s};
}

/* A query over [start, end] with matchers "type", "name", "value", ..., NULL (type one of
 * "=", "!=", "=~", "!~"). Returns its index. */
static size_t rrb_query(struct rrb *b, int64_t start, int64_t end, const char *const *m)
{
    size_t i = b->rr.n_queries++;
    cr_assert_lt(i, RB_QUERIES);
    RemotePb__Query *q = &b->q[i];
    remote_pb__query__init(q);
    q->start_timestamp_ms = start;
    q->end_timestamp_ms = end;
    q->matchers = b->mp[i];
    for (size_t j = 0; m[3 * j]; j++) {
        cr_assert_lt(j, RB_MATCHERS);
        RemotePb__LabelMatcher *lm = &b->m[i][j];
        remote_pb__label_matcher__init(lm);
        const char *t = m[3 * j];
        lm->type = !strcmp(t, "=")    ? REMOTE_PB__LABEL_MATCHER__TYPE__EQ
                   : !strcmp(t, "!=") ? REMOTE_PB__LABEL_MATCHER__TYPE__NEQ
                   : !strcmp(t, "=~") ? REMOTE_PB__LABEL_MATCHER__TYPE__RE
                   : !strcmp(t, "!~") ? REMOTE_PB__LABEL_MATCHER__TYPE__NRE
                                      : (RemotePb__LabelMatcher__Type)atoi(t);
        lm->name = bin(m[3 * j + 1]);
        lm->value = bin(m[3 * j + 2]);
        b->mp[i][j] = lm;
        q->n_matchers++;
    }
    b->qp[i] = q;
    return i;
}

static void rrb_hints(struct rrb *b, size_t i, int64_t start, int64_t end, const char *func)
{
    remote_pb__read_hints__init(&b->h[i]);
    b->h[i].start_ms = start;
    b->h[i].end_ms = end;
    b->h[i].func = bin(func);
    b->q[i].hints = &b->h[i];
}

static void rrb_type(struct rrb *b, int t)
{
    b->types[b->rr.n_accepted_response_types++] = (RemotePb__ReadRequest__ResponseType)t;
}

static uint8_t *rrb_raw(const struct rrb *b, size_t *len)
{
    *len = remote_pb__read_request__get_packed_size(&b->rr);
    uint8_t *p = mp_xmalloc(*len ? *len : 1);
    remote_pb__read_request__pack(&b->rr, p);
    return p;
}

static uint8_t *rrb_body(const struct rrb *b, size_t *len)
{
    size_t n;
    uint8_t *raw = rrb_raw(b, &n);
    uint8_t *body = rw_snappy(raw, n, len);
    mp_free(raw);
    return body;
}

/* Serves b; the response is left in *r (fini it). Returns the status. */
static int serve(const struct rrb *b, const struct mp_labels *e, struct remote_read_response *r)
{
    if (!srv)
        make_server();
    size_t len;
    uint8_t *body = rrb_body(b, &len);
    struct mp_err err = {0};
    int rc = remote_read_serve(srv, db, e, body, len, r, &err);
    mp_free(body);
    cr_assert_eq(rc == 0, r->status == 200, "rc %d status %d", rc, r->status);
    if (rc)
        cr_assert_str_eq(err.msg, r->message);
    return r->status;
}

static int serve_raw(const void *body, size_t len, struct remote_read_response *r)
{
    if (!srv)
        make_server();
    struct mp_err err = {0};
    int rc = remote_read_serve(srv, db, ext, body, len, r, &err);
    cr_assert_eq(rc == 0, r->status == 200);
    return r->status;
}

/* ---- reading answers ---- */

static RemotePb__ReadResponse *samples_of(const struct remote_read_response *r)
{
    cr_assert_str_eq(r->content_type, "application/x-protobuf");
    cr_assert_str_eq(r->content_encoding, "snappy");
    cr_assert_null(r->stream);
    size_t n;
    cr_assert_eq(snappy_uncompressed_length(r->body.data, r->body.len, &n), SNAPPY_OK);
    char *raw = mp_xmalloc(n ? n : 1);
    cr_assert_eq(snappy_uncompress(r->body.data, r->body.len, raw, &n), SNAPPY_OK);
    RemotePb__ReadResponse *rr = remote_pb__read_response__unpack(NULL, n, (uint8_t *)raw);
    mp_free(raw);
    cr_assert_not_null(rr);
    return rr;
}

/* "{a=b, c=d}" of protobuf labels. */
static void labels_text(RemotePb__Label *const *l, size_t n, char *out, size_t cap)
{
    size_t k = (size_t)snprintf(out, cap, "{");
    for (size_t i = 0; i < n; i++)
        k += (size_t)snprintf(out + k, cap - k, "%s%.*s=%.*s", i ? ", " : "", (int)l[i]->name.len,
                              (const char *)l[i]->name.data, (int)l[i]->value.len,
                              (const char *)l[i]->value.data);
    snprintf(out + k, cap - k, "}");
}

/* The bitwise CRC-32C, as the oracle of the table version. */
static uint32_t crc_slow(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
}

/* Reads a whole stream in pieces of `piece` bytes. */
static uint8_t *stream_all(struct remote_read_stream *st, size_t piece, size_t *len)
{
    struct mp_buf b;
    mp_buf_init(&b, 0);
    uint8_t *tmp = mp_xmalloc(piece);
    struct mp_err err = {0};
    for (int guard = 0; guard < 1000000; guard++) {
        size_t n = 99;
        int rc = remote_read_stream_read(st, tmp, piece, &n, &err);
        if (rc == MP_EEOF) {
            cr_assert_eq(n, 0);
            break;
        }
        cr_assert_eq(rc, 0, "%s", err.msg);
        cr_assert(n > 0 && n <= piece);
        cr_assert_eq(mp_buf_append(&b, tmp, n), 0);
    }
    mp_free(tmp);
    return (uint8_t *)mp_buf_take(&b, len);
}

struct frame {
    RemotePb__ChunkedReadResponse *resp;
    size_t payload_len;
};

/* Splits a stream into frames, checking lengths and CRCs; returns how many (<= cap). */
static size_t frames_of(const uint8_t *p, size_t len, struct frame *out, size_t cap)
{
    size_t n = 0, pos = 0;
    while (pos < len) {
        uint64_t plen = 0;
        int shift = 0;
        while (1) {
            cr_assert_lt(pos, len, "truncated frame length");
            uint8_t c = p[pos++];
            plen |= (uint64_t)(c & 0x7F) << shift;
            shift += 7;
            if (!(c & 0x80))
                break;
        }
        cr_assert_leq(pos + 4 + plen, len, "truncated frame");
        uint32_t crc = (uint32_t)p[pos] << 24 | (uint32_t)p[pos + 1] << 16 |
                       (uint32_t)p[pos + 2] << 8 | p[pos + 3];
        pos += 4;
        cr_assert_eq(crc, crc_slow(p + pos, plen), "frame %zu: crc", n);
        cr_assert_lt(n, cap);
        out[n].resp = remote_pb__chunked_read_response__unpack(NULL, plen, p + pos);
        cr_assert_not_null(out[n].resp, "frame %zu does not unpack", n);
        out[n].payload_len = plen;
        cr_assert_eq(out[n].resp->n_chunked_series, 1, "one series per frame");
        pos += plen;
        n++;
    }
    return n;
}

static void frames_free(struct frame *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        remote_pb__chunked_read_response__free_unpacked(f[i].resp, NULL);
}

/* Decodes every chunk of a series (over consecutive frames) into "t:v t:v" text, checking
 * chunk types and min/max times. */
static void chunks_text(struct frame *f, size_t from, size_t to, char *out, size_t cap)
{
    size_t k = 0;
    out[0] = 0;
    for (size_t i = from; i < to; i++) {
        const RemotePb__ChunkedSeries *cs = f[i].resp->chunked_series[0];
        for (size_t j = 0; j < cs->n_chunks; j++) {
            const RemotePb__Chunk *c = cs->chunks[j];
            cr_assert_eq(c->type, REMOTE_PB__CHUNK__ENCODING__XOR);
            struct tsdb_xor_iter it;
            tsdb_xor_iter_init(&it, c->data.data, c->data.len);
            int64_t t, first = 0, last = 0;
            double v;
            size_t m = 0;
            while (tsdb_xor_iter_next(&it, &t, &v) == 0) {
                if (!m++)
                    first = t;
                last = t;
                k += (size_t)snprintf(out + k, cap - k, "%s%lld:%g", k ? " " : "",
                                      (long long)(t - T0), v);
            }
            cr_assert_eq(tsdb_xor_iter_error(&it, NULL), 0);
            cr_assert(m > 0);
            cr_assert_eq(c->min_time_ms, first);
            cr_assert_eq(c->max_time_ms, last);
        }
    }
}

/* ---- tests ---- */

Test(remote_read, crc32c_known_vector)
{
    cr_assert_eq(remote_read_crc32c(0, "123456789", 9), 0xE3069283u);
    cr_assert_eq(remote_read_crc32c(0, "", 0), 0);
    /* incremental == one call */
    uint32_t c = remote_read_crc32c(0, "1234", 4);
    cr_assert_eq(remote_read_crc32c(c, "56789", 5), 0xE3069283u);
    uint8_t buf[300];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 131 + 7);
    cr_assert_eq(remote_read_crc32c(0, buf, sizeof buf), crc_slow(buf, sizeof buf));
}

Test(remote_read, samples_with_external_labels_merged)
{
    struct rrb b;
    rrb_init(&b);
    rrb_query(&b, T0 + 2000, T0 + 4000, (const char *[]){"=", "__name__", "up", NULL});
    struct remote_read_response r;
    cr_assert_eq(serve(&b, ext, &r), 200, "%s", r.message);
    RemotePb__ReadResponse *rr = samples_of(&r);
    cr_assert_eq(rr->n_results, 1);
    const RemotePb__QueryResult *qr = rr->results[0];
    cr_assert_eq(qr->n_timeseries, 2);
    char txt[256];
    labels_text(qr->timeseries[0]->labels, qr->timeseries[0]->n_labels, txt, sizeof txt);
    cr_assert_str_eq(txt, "{__name__=up, instance=a, job=node, site=a}");
    labels_text(qr->timeseries[1]->labels, qr->timeseries[1]->n_labels, txt, sizeof txt);
    cr_assert_str_eq(txt, "{__name__=up, instance=b, job=node, site=a}");
    /* samples inside [start, end] only, in time order; value 0 and t 0 fields left out */
    const RemotePb__TimeSeries *ts = qr->timeseries[1];
    cr_assert_eq(ts->n_samples, 3);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(ts->samples[i]->timestamp, T0 + 2000 + (int64_t)i * 1000);
        cr_assert_eq(ts->samples[i]->value, 100 + (double)(i + 2) * 0.5);
    }
    cr_assert_eq(r.series, 2);
    cr_assert_eq(r.samples, 6);
    remote_pb__read_response__free_unpacked(rr, NULL);
    remote_read_response_fini(&r);
}

Test(remote_read, series_labels_win_over_external_labels)
{
    struct rrb b;
    rrb_init(&b);
    rrb_query(&b, T0, T0 + 10000, (const char *[]){"=", "__name__", "rq", NULL});
    struct remote_read_response r;
    cr_assert_eq(serve(&b, ext, &r), 200, "%s", r.message);
    RemotePb__ReadResponse *rr = samples_of(&r);
    cr_assert_eq(rr->results[0]->n_timeseries, 1);
    char txt[256];
    const RemotePb__TimeSeries *ts = rr->results[0]->timeseries[0];
    labels_text(ts->labels, ts->n_labels, txt, sizeof txt);
    cr_assert_str_eq(txt, "{__name__=rq, site=b}");
    remote_pb__read_response__free_unpacked(rr, NULL);
    remote_read_response_fini(&r);
}

/* Prometheus clients add their external labels as equality matchers: site="a" with our
 * external site="a" becomes site="" (matches the stored series, which lack it); site="b" stays
 * and matches only the series that really has it. */
Test(remote_read, equality_matcher_on_external_label_is_rewritten)
{
    struct rrb b;
    rrb_init(&b);
    rrb_query(&b, T0, T0 + 10000, (const char *[]){"=", "__name__", "up", "=", "site", "a", NULL});
    rrb_query(&b, T0, T0 + 10000,
              (const char *[]){"=~", "__name__", "up|rq", "=", "site", "b", NULL});
    rrb_query(&b, T0, T0 + 10000,
              (const char *[]){"=", "__name__", "up", "=~", "site", "a", NULL}); /* not = */
    struct remote_read_response r;
    cr_assert_eq(serve(&b, ext, &r), 200, "%s", r.message);
    RemotePb__ReadResponse *rr = samples_of(&r);
    cr_assert_eq(rr->n_results, 3);
    cr_assert_eq(rr->results[0]->n_timeseries, 2);
    cr_assert_eq(rr->results[1]->n_timeseries, 1);
    cr_assert_eq(rr->results[2]->n_timeseries, 0);
    remote_pb__read_response__free_unpacked(rr, NULL);
    remote_read_response_fini(&r);

    /* without external labels nothing is rewritten (an = "" matcher stays what it is) */
    cr_assert_eq(serve(&b, NULL, &r), 200, "%s", r.message);
    rr = samples_of(&r);
    cr_assert_eq(rr->results[0]->n_timeseries, 0);
    char txt[256];
    labels_text(rr->results[1]->timeseries[0]->labels, rr->results[1]->timeseries[0]->n_labels, txt,
                sizeof txt);
    cr_assert_str_eq(txt, "{__name__=rq, site=b}");
    remote_pb__read_response__free_unpacked(rr, NULL);
    remote_read_response_fini(&r);
}

Test(remote_read, sample_limit_per_query)
{
    opt.sample_limit = 20; /* up has 2 x 10 samples */
    struct rrb b;
    rrb_init(&b);
    rrb_query(&b, T0, T0 + 10000, (const char *[]){"=", "__name__", "up", NULL});
    rrb_query(&b, T0, T0 + 10000, (const char *[]){"=", "__name__", "up", NULL});
    struct remote_read_response r;
    cr_assert_eq(serve(&b, ext, &r), 200, "%s", r.message); /* exactly at the limit, twice */
    remote_read_response_fini(&r);
    remote_read_server_destroy(srv);
    srv = NULL;
    opt.sample_limit = 19;
    cr_assert_eq(serve(&b, ext, &r), 400);
    cr_assert_str_eq(r.message, "exceeded sample limit (19)");
    cr_assert_eq(r.body.len, 0);
    remote_read_response_fini(&r);
}

Test(remote_read, hints_trim_the_range_and_series_func_reads_no_samples)
{
    struct rrb b;
    rrb_init(&b);
    size_t q = rrb_query(&b, T0, T0 + 10000, (const char *[]){"=", "instance", "a", NULL});
    rrb_hints(&b, q, T0 + 5000, T0 + 20000, "rate");
    q = rrb_query(&b, T0, T0 + 10000, (const char *[]){"=", "instance", "a", NULL});
    rrb_hints(&b, q, T0, T0 + 10000, "series");
    q = rrb_query(&b, T0, T0 + 10000, (const char *[]){"=", "instance", "a", NULL});
    rrb_hints(&b, q, T0 + 20000, T0 + 30000, "");
    struct remote_read_response r;
    cr_assert_eq(serve(&b, ext, &r), 200, "%s", r.message);
    RemotePb__ReadResponse *rr = samples_of(&r);
    cr_assert_eq(rr->results[0]->timeseries[0]->n_samples, 5); /* T0+5s .. T0+9s */
    cr_assert_eq(rr->results[0]->timeseries[0]->samples[0]->timestamp, T0 + 5000);
    cr_assert_eq(rr->results[1]->n_timeseries, 1);
    cr_assert_eq(rr->results[1]->timeseries[0]->n_samples, 0);
    cr_assert_eq(rr->results[2]->n_timeseries, 0);
    remote_pb__read_response__free_unpacked(rr, NULL);
    remote_read_response_fini(&r);
}

Test(remote_read, no_queries_no_matchers_and_empty_range)
{
    struct rrb b;
    rrb_init(&b);
    struct remote_read_response r;
    cr_assert_eq(serve(&b, ext, &r), 200, "%s", r.message);
    RemotePb__ReadResponse *rr = samples_of(&r);
    cr_assert_eq(rr->n_results, 0);
    remote_pb__read_response__free_unpacked(rr, NULL);
    remote_read_response_fini(&r);

    rrb_query(&b, T0, T0 + 10000, (const char *[]){NULL});
    rrb_query(&b, T0 + 10000, T0, (const char *[]){"=", "__name__", "up", NULL});
    cr_assert_eq(serve(&b, ext, &r), 200, "%s", r.message);
    rr = samples_of(&r);
    cr_assert_eq(rr->n_results, 2);
    cr_assert_eq(rr->results[0]->n_timeseries, 0);
    cr_assert_eq(rr->results[1]->n_timeseries, 0);
    remote_pb__read_response__free_unpacked(rr, NULL);
    remote_read_response_fini(&r);
}

Test(remote_read, response_type_negotiation)
{
    struct rrb b;
    rrb_init(&b);
    rrb_query(&b, T0, T0 + 10000, (const char *[]){"=", "__name__", "rq", NULL});
    rrb_type(&b, 7);
    rrb_type(&b, 2);
    struct remote_read_response r;
    cr_assert_eq(serve(&b, ext, &r), 400);
    cr_assert_str_eq(r.message, "server does not support any of the requested response types: "
                                "[7 2]; supported: map[SAMPLES:{} STREAMED_XOR_CHUNKS:{}]");
    remote_read_response_fini(&r);
    rrb_type(&b, 1); /* the first supported one wins */
    rrb_type(&b, 0);
    cr_assert_eq(serve(&b, ext, &r), 200, "%s", r.message);
    cr_assert_not_null(r.stream);
    cr_assert_str_eq(r.content_type,
                     "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse");
    cr_assert_null(r.content_encoding);
    remote_read_response_fini(&r);
    b.types[2] = 0;
    cr_assert_eq(serve(&b, ext, &r), 200, "%s", r.message);
    cr_assert_null(r.stream);
    remote_read_response_fini(&r);
}

Test(remote_read, decode_errors)
{
    struct remote_read_response r;
    cr_assert_eq(serve_raw("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11, &r), 400);
    cr_assert_str_eq(r.message, "snappy: corrupt input");
    remote_read_response_fini(&r);
    /* valid snappy, not a ReadRequest: field 1 with wire type 7 */
    size_t len;
    uint8_t *body = rw_snappy((const uint8_t *)"\x0f\x01\x02", 3, &len);
    cr_assert_eq(serve_raw(body, len, &r), 400);
    cr_assert_str_eq(r.message, "proto: cannot parse prometheus.ReadRequest");
    remote_read_response_fini(&r);
    mp_free(body);
    /* a snappy header announcing 1 GiB in 8 bytes: refused before allocating */
    cr_assert_eq(serve_raw("\x80\x80\x80\x80\x04\x00\x00\x00", 8, &r), 400);
    cr_assert_str_eq(r.message, "snappy: corrupt input");
    remote_read_response_fini(&r);
    /* bad regex, unknown matcher type: 500 as Prometheus (not an HTTPError there) */
    struct rrb b;
    rrb_init(&b);
    rrb_query(&b, T0, T0 + 10000, (const char *[]){"=~", "job", "(", NULL});
    cr_assert_eq(serve(&b, ext, &r), 500);
    remote_read_response_fini(&r);
    rrb_init(&b);
    rrb_query(&b, T0, T0 + 10000, (const char *[]){"9", "job", "x", NULL});
    cr_assert_eq(serve(&b, ext, &r), 500);
    cr_assert_str_eq(r.message, "invalid matcher type");
    remote_read_response_fini(&r);
}

Test(remote_read, size_limits)
{
    struct rrb b;
    rrb_init(&b);
    rrb_query(&b, T0, T0 + 10000, (const char *[]){"=", "__name__", "up", NULL});
    size_t raw_len, len;
    uint8_t *raw = rrb_raw(&b, &raw_len);
    uint8_t *body = rw_snappy(raw, raw_len, &len);
    int st;
    struct remote_read_request *req;
    struct mp_err err = {0};
    remote_read_options_init(&opt);
    opt.max_body_bytes = len; /* at the limit: fine; one below: refused */
    opt.max_decoded_bytes = raw_len;
    cr_assert_eq(remote_read_decode(body, len, &opt, ext, &req, &st, &err), 0, "%s", err.msg);
    cr_assert_eq(remote_read_request_num_queries(req), 1);
    cr_assert_eq(remote_read_request_response_type(req), 0);
    const struct mp_matcher *const *m;
    size_t n;
    int64_t mint, maxt;
    remote_read_request_query(req, 0, &m, &n, &mint, &maxt);
    cr_assert_eq(n, 1);
    cr_assert(mint == T0 && maxt == T0 + 10000);
    remote_read_request_free(req);
    opt.max_body_bytes = len - 1;
    cr_assert_eq(remote_read_decode(body, len, &opt, ext, &req, &st, &err), MP_ELIMIT);
    cr_assert_eq(st, 400);
    cr_assert_null(req);
    opt.max_body_bytes = len;
    opt.max_decoded_bytes = raw_len - 1;
    cr_assert_eq(remote_read_decode(body, len, &opt, ext, &req, &st, &err), MP_ELIMIT);
    cr_assert_eq(st, 400);
    opt.max_decoded_bytes = 0;
    opt.max_memory_bytes = 64; /* the unpacked request needs more */
    cr_assert_eq(remote_read_decode(body, len, &opt, ext, &req, &st, &err), MP_ELIMIT);
    cr_assert_eq(st, 400);
    mp_free(raw);
    mp_free(body);
}

/* The regex library sets up global contexts and per-thread match data once: a first decode
 * with a regex matcher, so that the byte counts compared below see only the decoder's own. */
static void warm_up(const uint8_t *body, size_t len)
{
    struct remote_read_request *req;
    int st;
    cr_assert_eq(remote_read_decode(body, len, NULL, ext, &req, &st, NULL), 0);
    remote_read_request_free(req);
}

Test(remote_read, every_truncated_body_fails_cleanly)
{
    struct rrb b;
    rrb_init(&b);
    size_t q = rrb_query(&b, T0, T0 + 10000,
                         (const char *[]){"=", "__name__", "up", "!~", "job", "x.*", NULL});
    rrb_hints(&b, q, T0, T0 + 10000, "rate");
    rrb_type(&b, 1);
    size_t raw_len;
    uint8_t *raw = rrb_raw(&b, &raw_len);
    size_t full_len;
    uint8_t *full = rw_snappy(raw, raw_len, &full_len);
    warm_up(full, full_len);
    mp_free(full);
    size_t before = mp_alloc_used_bytes();
    for (size_t cut = 0; cut < raw_len; cut++) {
        size_t len;
        uint8_t *body = rw_snappy(raw, cut, &len);
        struct remote_read_request *req;
        int st;
        int rc = remote_read_decode(body, len, NULL, ext, &req, &st, NULL);
        /* a prefix may still be a valid message (ending between fields) */
        cr_assert(rc == 0 ? st == 200 && req : st == 400 && !req, "cut %zu: rc %d", cut, rc);
        remote_read_request_free(req);
        mp_free(body);
    }
    cr_assert_eq(mp_alloc_used_bytes(), before);
    mp_free(raw);
}

Test(remote_read, allocation_failures_while_decoding)
{
    struct rrb b;
    rrb_init(&b);
    rrb_query(&b, T0, T0 + 10000,
              (const char *[]){"=", "__name__", "up", "=~", "job", "no.*", NULL});
    rrb_query(&b, T0, T0 + 10000, (const char *[]){"!=", "job", "x", NULL});
    size_t len;
    uint8_t *body = rrb_body(&b, &len);
    warm_up(body, len);
    size_t before = mp_alloc_used_bytes();
    int rc = MP_ENOMEM;
    for (uint64_t n = 1; n < 500 && rc; n++) {
        struct remote_read_request *req;
        int st;
        mp_alloc_fail_at(n);
        rc = remote_read_decode(body, len, NULL, ext, &req, &st, NULL);
        mp_alloc_fail_at(0);
        cr_assert(rc == 0 || rc == MP_ENOMEM, "n %llu: rc %d", (unsigned long long)n, rc);
        cr_assert(rc == 0 || st == 500);
        remote_read_request_free(req);
        cr_assert_eq(mp_alloc_used_bytes(), before, "leak at n %llu", (unsigned long long)n);
    }
    cr_assert_eq(rc, 0);
    mp_free(body);
}

Test(remote_read, streamed_chunks_one_series_per_frame)
{
    struct rrb b;
    rrb_init(&b);
    rrb_type(&b, 1);
    rrb_query(&b, T0, T0 + 10000, (const char *[]){"=", "__name__", "up", NULL});
    rrb_query(&b, T0 + 1000, T0 + 2000, (const char *[]){"=", "site", "b", NULL});
    struct remote_read_response r;
    cr_assert_eq(serve(&b, ext, &r), 200, "%s", r.message);
    struct remote_read_stream *st = r.stream;
    r.stream = NULL;
    remote_read_response_fini(&r);
    size_t len;
    uint8_t *bytes = stream_all(st, 7, &len); /* small pieces: frames cross reads */
    remote_read_stream_destroy(st);
    struct frame f[8];
    size_t n = frames_of(bytes, len, f, 8);
    cr_assert_eq(n, 3);
    const char *want_labels[] = {"{__name__=up, instance=a, job=node, site=a}",
                                 "{__name__=up, instance=b, job=node, site=a}",
                                 "{__name__=rq, site=b}"};
    const int64_t want_qi[] = {0, 0, 1};
    for (size_t i = 0; i < n; i++) {
        const RemotePb__ChunkedSeries *cs = f[i].resp->chunked_series[0];
        char txt[256];
        labels_text(cs->labels, cs->n_labels, txt, sizeof txt);
        cr_assert_str_eq(txt, want_labels[i]);
        cr_assert_eq(f[i].resp->query_index, want_qi[i]);
    }
    char txt[1024];
    chunks_text(f, 0, 1, txt, sizeof txt);
    cr_assert_str_eq(txt, "0:0 1000:0.5 2000:1 3000:1.5 4000:2 5000:2.5 6000:3 7000:3.5 "
                          "8000:4 9000:4.5");
    /* a chunk sticking out of the range is cut to it (re-encoded), as Prometheus 2.42's chunk
     * querier does (tests/remote/read_diff.py compares with it) */
    chunks_text(f, 2, 3, txt, sizeof txt);
    cr_assert_str_eq(txt, "1000:7.5 2000:8");
    frames_free(f, n);
    mp_free(bytes);
}

/* A long series in many chunks, with frames limited to 200 bytes: the series is split over
 * consecutive frames, each closed by the chunk that used the budget up, and the chunks put
 * back together give every sample. */
Test(remote_read, streamed_series_split_at_max_bytes_in_frame)
{
    static const char *const LONG[] = {"__name__", "long", NULL};
    enum { N = 3000 };
    fill(LONG, N, 15000, 0);
    opt.max_bytes_in_frame = 200;
    struct rrb b;
    rrb_init(&b);
    rrb_type(&b, 1);
    rrb_query(&b, T0, T0 + (int64_t)N * 15000, (const char *[]){"=", "__name__", "long", NULL});
    struct remote_read_response r;
    cr_assert_eq(serve(&b, NULL, &r), 200, "%s", r.message);
    size_t len;
    uint8_t *bytes = stream_all(r.stream, 4096, &len);
    remote_read_response_fini(&r);
    static struct frame f[256];
    size_t n = frames_of(bytes, len, f, 256);
    cr_assert_gt(n, 2, "%zu frames", n);
    size_t chunks = 0;
    for (size_t i = 0; i < n; i++) {
        const RemotePb__ChunkedSeries *cs = f[i].resp->chunked_series[0];
        cr_assert_eq(cs->n_labels, 1);
        chunks += cs->n_chunks;
        /* the budget (200 - label bytes) is passed by the last chunk only */
        size_t before_last = 0;
        for (size_t j = 0; j + 1 < cs->n_chunks; j++)
            before_last += remote_pb__chunk__get_packed_size(cs->chunks[j]);
        cr_assert_lt(before_last, 200, "frame %zu", i);
    }
    cr_assert_geq(chunks, n);
    static char txt[N * 24];
    chunks_text(f, 0, n, txt, sizeof txt);
    char *p = txt;
    for (size_t i = 0; i < N; i++) {
        char want[48];
        int k = snprintf(want, sizeof want, "%lld:%g", (long long)i * 15000, (double)i * 0.5);
        cr_assert(strncmp(p, want, (size_t)k) == 0, "sample %zu: %.40s", i, p);
        p += k;
        p += *p == ' ';
    }
    cr_assert_eq(*p, 0);
    frames_free(f, n);
    mp_free(bytes);
}

Test(remote_read, streamed_empty_result_is_an_empty_body)
{
    struct rrb b;
    rrb_init(&b);
    rrb_type(&b, 1);
    rrb_query(&b, T0, T0 + 10000, (const char *[]){"=", "__name__", "nothing", NULL});
    struct remote_read_response r;
    cr_assert_eq(serve(&b, ext, &r), 200, "%s", r.message);
    uint8_t buf[16];
    size_t n = 5;
    cr_assert_eq(remote_read_stream_read(r.stream, buf, sizeof buf, &n, NULL), MP_EEOF);
    cr_assert_eq(n, 0);
    remote_read_response_fini(&r);
}

/* The gate: with a limit of 1, a stream holds the slot until destroyed; another request waits
 * gate_wait_ms and gets 503. */
Test(remote_read, concurrency_limit_holds_a_slot_per_stream)
{
    opt.concurrent_limit = 1;
    struct rrb b;
    rrb_init(&b);
    rrb_type(&b, 1);
    rrb_query(&b, T0, T0 + 10000, (const char *[]){"=", "__name__", "up", NULL});
    struct remote_read_response r, r2;
    cr_assert_eq(serve(&b, ext, &r), 200, "%s", r.message);
    cr_assert_eq(remote_read_server_active(srv), 1);
    cr_assert_eq(serve(&b, ext, &r2), 503);
    cr_assert_str_eq(r2.message, "too many concurrent remote read requests (limit 1)");
    remote_read_response_fini(&r2);
    remote_read_response_fini(&r); /* destroys the stream: the slot is free again */
    cr_assert_eq(remote_read_server_active(srv), 0);
    b.rr.n_accepted_response_types = 0;
    cr_assert_eq(serve(&b, ext, &r2), 200, "%s", r2.message);
    remote_read_response_fini(&r2);
    cr_assert_eq(remote_read_server_active(srv), 0);
}

/* Waiting for a slot: by default until the client leaves (Prometheus's gate.Start(ctx)); the
 * gone hook is asked while waiting, and a client that left frees its place with 500 "context
 * canceled". */
struct gone_probe {
    int calls, gone_at; /* gone from the gone_at-th call on; 0: never */
};

static bool probe_gone(void *arg)
{
    struct gone_probe *p = arg;
    p->calls++;
    return p->gone_at && p->calls >= p->gone_at;
}

/* limit 1, unbounded wait, and a streamed request for up */
static void one_slot_stream(struct rrb *b)
{
    opt.concurrent_limit = 1;
    opt.gate_wait_ms = -1;
    rrb_init(b);
    rrb_type(b, 1);
    rrb_query(b, T0, T0 + 10000, (const char *[]){"=", "__name__", "up", NULL});
}

Test(remote_read, gate_waits_until_the_client_leaves)
{
    struct remote_read_options d;
    remote_read_options_init(&d);
    cr_assert_lt(d.gate_wait_ms, 0, "the default wait is unbounded, as Prometheus");
    struct rrb b;
    one_slot_stream(&b);
    struct remote_read_response r, r2;
    cr_assert_eq(serve(&b, ext, &r), 200, "%s", r.message);
    size_t len;
    uint8_t *body = rrb_body(&b, &len);
    struct gone_probe p = {0, 3};
    struct mp_err err = {0};
    int rc = remote_read_serve_gone(srv, db, ext, body, len, probe_gone, &p, &r2, &err);
    cr_assert_neq(rc, 0);
    cr_assert_eq(r2.status, 500);
    cr_assert_str_eq(r2.message, "context canceled");
    cr_assert_eq(p.calls, 3);
    cr_assert_eq(remote_read_server_active(srv), 1, "the waiter took no slot");
    remote_read_response_fini(&r2);
    remote_read_response_fini(&r);
    cr_assert_eq(remote_read_server_active(srv), 0);
    mp_free(body);
}

struct waiter {
    uint8_t *body;
    size_t len;
    struct gone_probe p;
    struct remote_read_response r;
    int rc;
};

static void *waiter_run(void *arg)
{
    struct waiter *w = arg;
    struct mp_err err = {0};
    w->rc = remote_read_serve_gone(srv, db, ext, w->body, w->len, probe_gone, &w->p, &w->r, &err);
    return NULL;
}

Test(remote_read, gate_waiter_gets_the_freed_slot)
{
    struct rrb b;
    one_slot_stream(&b);
    struct remote_read_response r;
    cr_assert_eq(serve(&b, ext, &r), 200, "%s", r.message);
    struct waiter w = {.p = {0, 300}}; /* a bound: gives up after ~30 s of polls */
    w.body = rrb_body(&b, &w.len);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, waiter_run, &w), 0);
    struct timespec ms250 = {0, 250000000L};
    nanosleep(&ms250, NULL);       /* past the old bounded wait of this test file (20 ms) */
    remote_read_response_fini(&r); /* frees the slot: the waiter takes it */
    pthread_join(t, NULL);
    cr_assert_eq(w.rc, 0, "%s", w.r.message);
    cr_assert_eq(w.r.status, 200);
    cr_assert_lt(w.p.calls, 300);
    remote_read_response_fini(&w.r);
    cr_assert_eq(remote_read_server_active(srv), 0);
    mp_free(w.body);
}

/* ---- random round trip ---- */

#define RT_SERIES 24
#define RT_MAX 400

struct rt_series {
    char id[8], junk[320];
    size_t n;
    int64_t t[RT_MAX];
    uint64_t bits[RT_MAX];
};

static uint64_t rt_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Series "rt" with an id, a label value of 0..300 bytes (label and series lengths cross the
 * 1-, 2- and 3-byte varint sizes) and up to 400 samples from negative timestamps on, values
 * from random bit patterns, NaN, the stale marker, -0.0 and infinities. Fixed seed. */
static void rt_fill(struct rt_series *s, size_t n, uint64_t seed)
{
    static const uint64_t special[] = {TSDB_STALE_NAN_BITS,          UINT64_C(0x7ff8000000000001),
                                       UINT64_C(0x8000000000000000), UINT64_C(0x7ff0000000000000),
                                       UINT64_C(0xfff0000000000000), 0};
    for (size_t i = 0; i < n; i++) {
        snprintf(s[i].id, sizeof s[i].id, "%02u", (unsigned)(i % 100));
        size_t jl = rt_next(&seed) % 300 + 1;
        for (size_t k = 0; k < jl; k++)
            s[i].junk[k] = (char)('a' + rt_next(&seed) % 26);
        s[i].junk[jl] = 0;
        s[i].n = rt_next(&seed) % RT_MAX + 1;
        int64_t t = -1800000 + (int64_t)(rt_next(&seed) % 1000);
        for (size_t k = 0; k < s[i].n; k++) {
            t += (int64_t)(rt_next(&seed) % 5000) + 1;
            s[i].t[k] = t;
            uint64_t r = rt_next(&seed);
            s[i].bits[k] = r % 7 == 0   ? special[r / 7 % 6]
                           : r % 3 == 0 ? s[i].bits[k ? k - 1 : 0]
                                        : r;
        }
        const char *kv[] = {"__name__", "rt", "id", s[i].id, "junk", s[i].junk, NULL};
        struct mp_labels *ls = labels_of(kv);
        struct tsdb_appender *app;
        struct mp_err err = {0};
        cr_assert_eq(tsdb_appender_create(db, &app), 0);
        uint64_t ref = 0;
        for (size_t k = 0; k < s[i].n; k++)
            cr_assert_eq(tsdb_appender_add(app, ref, ls, s[i].t[k],
                                           tsdb_f64_from_bits(s[i].bits[k]), &ref, &err),
                         0, "%s", err.msg);
        cr_assert_eq(tsdb_appender_commit(app, &err), 0, "%s", err.msg);
        mp_labels_release(ls);
    }
}

/* Index of the series whose id label is in l[0..n); checks the other labels. */
static size_t rt_which(RemotePb__Label *const *l, size_t n, const struct rt_series *s)
{
    cr_assert_eq(n, 4); /* __name__, id, junk, site */
    cr_assert(l[1]->name.len == 2 && !memcmp(l[1]->name.data, "id", 2));
    cr_assert_eq(l[1]->value.len, 2); /* bytes, not NUL-terminated */
    size_t i = (size_t)(l[1]->value.data[0] - '0') * 10 + (size_t)(l[1]->value.data[1] - '0');
    cr_assert_lt(i, RT_SERIES);
    cr_assert_eq(l[2]->value.len, strlen(s[i].junk));
    cr_assert(!memcmp(l[2]->value.data, s[i].junk, l[2]->value.len));
    return i;
}

Test(remote_read, random_series_round_trip_bit_for_bit_in_both_response_types)
{
    static struct rt_series s[RT_SERIES];
    rw_db_close(db, dir); /* a fresh head: negative timestamps are out of bounds after T0 */
    db = rw_db_open(dir);
    rt_fill(s, RT_SERIES, UINT64_C(0x9E3779B97F4A7C15));
    opt.max_bytes_in_frame = 512;
    struct rrb b;
    rrb_init(&b);
    rrb_query(&b, INT64_MIN / 2, INT64_MAX / 2, (const char *[]){"=", "__name__", "rt", NULL});
    struct remote_read_response r;
    cr_assert_eq(serve(&b, ext, &r), 200, "%s", r.message);
    RemotePb__ReadResponse *rr = samples_of(&r);
    const RemotePb__QueryResult *qr = rr->results[0];
    cr_assert_eq(qr->n_timeseries, RT_SERIES);
    for (size_t j = 0; j < qr->n_timeseries; j++) {
        const RemotePb__TimeSeries *ts = qr->timeseries[j];
        size_t i = rt_which(ts->labels, ts->n_labels, s);
        cr_assert_eq(ts->n_samples, s[i].n, "series %zu", i);
        for (size_t k = 0; k < s[i].n; k++) {
            cr_assert_eq(ts->samples[k]->timestamp, s[i].t[k], "series %zu sample %zu", i, k);
            cr_assert_eq(tsdb_f64_bits(ts->samples[k]->value), s[i].bits[k],
                         "series %zu sample %zu", i, k);
        }
    }
    remote_pb__read_response__free_unpacked(rr, NULL);
    remote_read_response_fini(&r);

    rrb_type(&b, 1);
    cr_assert_eq(serve(&b, ext, &r), 200, "%s", r.message);
    size_t len;
    uint8_t *bytes = stream_all(r.stream, 333, &len);
    remote_read_response_fini(&r);
    static struct frame f[2048];
    size_t nf = frames_of(bytes, len, f, 2048);
    cr_assert_gt(nf, RT_SERIES, "long series are split over frames");
    bool seen[RT_SERIES] = {0};
    for (size_t a = 0; a < nf;) {
        const RemotePb__ChunkedSeries *cs = f[a].resp->chunked_series[0];
        size_t i = rt_which(cs->labels, cs->n_labels, s);
        cr_assert(!seen[i], "series %zu in two runs of frames", i);
        seen[i] = true;
        size_t k = 0;
        for (; a < nf; a++) {
            const RemotePb__ChunkedSeries *c2 = f[a].resp->chunked_series[0];
            if (rt_which(c2->labels, c2->n_labels, s) != i)
                break;
            for (size_t c = 0; c < c2->n_chunks; c++) {
                struct tsdb_xor_iter it;
                tsdb_xor_iter_init(&it, c2->chunks[c]->data.data, c2->chunks[c]->data.len);
                int64_t t;
                double v;
                while (tsdb_xor_iter_next(&it, &t, &v) == 0) {
                    cr_assert_lt(k, s[i].n);
                    cr_assert_eq(t, s[i].t[k], "series %zu sample %zu", i, k);
                    cr_assert_eq(tsdb_f64_bits(v), s[i].bits[k], "series %zu sample %zu", i, k);
                    k++;
                }
                cr_assert_eq(tsdb_xor_iter_error(&it, NULL), 0);
            }
        }
        cr_assert_eq(k, s[i].n, "series %zu", i);
    }
    for (size_t i = 0; i < RT_SERIES; i++)
        cr_assert(seen[i], "series %zu missing", i);
    frames_free(f, nf);
    mp_free(bytes);
}
