/* SPDX-License-Identifier: Apache-2.0 */
/* tests/remote/support_remote.c: see support_remote.h. */
#define _GNU_SOURCE /* nftw */
#include "support_remote.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "common/matcher.h"
#include "common/str.h"
#include "tsdb/tsdb.h"

void rwb_init(struct rwb *b)
{
    memset(b, 0, sizeof *b);
    remote_pb__write_request__init(&b->wr);
    b->wr.timeseries = b->tsp;
    b->wr.metadata = b->mdp;
}

static ProtobufCBinaryData bin(const void *p, size_t n)
{
    return (ProtobufCBinaryData){n, (uint8_t *)(uintptr_t)p};
}

static RemotePb__Label *next_label(struct rwb *b, size_t s)
{
    RemotePb__TimeSeries *ts = &b->ts[s];
    cr_assert_lt(ts->n_labels, RWB_LABELS);
    RemotePb__Label *l = &b->lab[s][ts->n_labels];
    remote_pb__label__init(l);
    b->labp[s][ts->n_labels++] = l;
    return l;
}

size_t rwb_series(struct rwb *b, const char *const *kv, const int64_t *t, const double *v, size_t n)
{
    size_t s = b->wr.n_timeseries;
    cr_assert_lt(s, RWB_SERIES);
    cr_assert_leq(n, RWB_SAMPLES);
    RemotePb__TimeSeries *ts = &b->ts[s];
    remote_pb__time_series__init(ts);
    ts->labels = b->labp[s];
    ts->samples = b->smpp[s];
    b->tsp[s] = ts;
    b->wr.n_timeseries++;
    for (size_t i = 0; kv && kv[i]; i += 2) {
        RemotePb__Label *l = next_label(b, s);
        l->name = bin(kv[i], strlen(kv[i]));
        l->value = bin(kv[i + 1], strlen(kv[i + 1]));
    }
    for (size_t i = 0; i < n; i++) {
        RemotePb__Sample *x = &b->smp[s][i];
        remote_pb__sample__init(x);
        x->timestamp = t[i];
        x->value = v[i];
        b->smpp[s][i] = x;
    }
    ts->n_samples = n;
    return s;
}

void rwb_label_bytes(struct rwb *b, size_t series, const char *name, const void *value, size_t len)
{
    RemotePb__Label *l = next_label(b, series);
    l->name = bin(name, strlen(name));
    l->value = bin(value, len);
}

void rwb_histogram(struct rwb *b, size_t s, int64_t t)
{
    RemotePb__Histogram *h = &b->hist[s];
    remote_pb__histogram__init(h);
    h->count_case = REMOTE_PB__HISTOGRAM__COUNT_COUNT_INT;
    h->count_int = 3;
    h->sum = 1.5;
    h->timestamp = t;
    b->histp[s] = h;
    b->ts[s].histograms = &b->histp[s];
    b->ts[s].n_histograms = 1;
}

void rwb_exemplar(struct rwb *b, size_t s, double v, int64_t t)
{
    RemotePb__Exemplar *e = &b->ex[s];
    remote_pb__exemplar__init(e);
    e->value = v;
    e->timestamp = t;
    b->exp_[s] = e;
    b->ts[s].exemplars = &b->exp_[s];
    b->ts[s].n_exemplars = 1;
}

void rwb_metadata(struct rwb *b, const char *family, const char *help)
{
    size_t i = b->wr.n_metadata++;
    cr_assert_lt(i, 4);
    RemotePb__MetricMetadata *m = &b->md[i];
    remote_pb__metric_metadata__init(m);
    m->type = REMOTE_PB__METRIC_METADATA__METRIC_TYPE__COUNTER;
    m->metric_family_name = bin(family, strlen(family));
    m->help = bin(help, strlen(help));
    b->mdp[i] = m;
}

uint8_t *rwb_pack(const struct rwb *b, size_t *len)
{
    size_t n = remote_pb__write_request__get_packed_size(&b->wr);
    uint8_t *p = mp_xmalloc(n ? n : 1);
    cr_assert_eq(remote_pb__write_request__pack(&b->wr, p), n);
    *len = n;
    return p;
}

uint8_t *rw_snappy(const uint8_t *p, size_t n, size_t *len)
{
    size_t cap = snappy_max_compressed_length(n);
    uint8_t *out = mp_xmalloc(cap);
    *len = cap;
    cr_assert_eq(snappy_compress((const char *)p, n, (char *)out, len), SNAPPY_OK);
    return out;
}

uint8_t *rwb_body(const struct rwb *b, size_t *len)
{
    size_t n;
    uint8_t *p = rwb_pack(b, &n);
    uint8_t *body = rw_snappy(p, n, len);
    mp_free(p);
    return body;
}

char *rw_dump(struct tsdb *db)
{
    struct mp_buf out;
    mp_buf_init(&out, 0);
    struct tsdb_querier *q;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_querier_open(db, INT64_MIN, INT64_MAX, &q, &err), 0, "%s", err.msg);
    struct mp_matcher *m;
    cr_assert_eq(mp_matcher_create(MP_MATCH_REGEX, mp_str_c("__name__"), mp_str_c(".+"), &m, NULL),
                 0);
    const struct mp_matcher *ms[] = {m};
    struct tsdb_series_set *set;
    cr_assert_eq(tsdb_querier_select(q, ms, 1, &set, &err), 0, "%s", err.msg);
    while (tsdb_series_set_next(set, &err) == 0) {
        cr_assert_eq(mp_labels_format(tsdb_series_set_labels(set), &out), 0);
        struct tsdb_sample_iter it;
        tsdb_series_set_iter(set, &it);
        int64_t t;
        double v;
        while (tsdb_sample_iter_next(&it, &t, &v) == 0) {
            if (tsdb_is_stale(v))
                cr_assert_eq(mp_buf_appendf(&out, " %lld:stale", (long long)t), 0);
            else
                cr_assert_eq(mp_buf_appendf(&out, " %lld:%g", (long long)t, v), 0);
        }
        cr_assert_eq(mp_buf_append_str(&out, "\n"), 0);
    }
    tsdb_series_set_free(set);
    mp_matcher_destroy(m);
    tsdb_querier_close(q);
    if (!out.data)
        return mp_xstrdup("");
    size_t len;
    return mp_buf_take(&out, &len);
}

struct tsdb *rw_db_open(char dir[64])
{
    snprintf(dir, 64, "/tmp/mp_test_remote_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    struct tsdb_options o;
    tsdb_options_init(&o);
    o.dir = dir;
    o.background = false;
    o.wal_fsync = TSDB_WAL_FSYNC_NONE;
    struct tsdb *db = NULL;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_open(&o, &db, &err), 0, "%s", err.msg);
    return db;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void rw_db_close(struct tsdb *db, const char *dir)
{
    tsdb_close(db);
    cr_assert_eq(nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}
