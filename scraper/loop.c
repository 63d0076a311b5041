/* SPDX-License-Identifier: Apache-2.0 */
/* scraper/loop.c: the scrape event loops (Prometheus scrape/scrape.go scrapeLoop), spec
 * protocols.md 1.1-1.2 and 2.3-2.7.
 *
 * Each loop is one thread with one libcurl multi handle and a binary min-heap of its targets
 * keyed by the next tick (monotonic ns). Per iteration, under the loop's mutex: handle
 * removals, start the transfers whose tick has come, let curl work, and for each finished
 * transfer parse the body and append it to the tsdb in one appender (commit or rollback);
 * then the mutex is released while curl_multi_poll sleeps until the next tick, socket
 * activity or curl_multi_wakeup (from sync / apply_config, which take the mutex to touch the
 * heap). A target's easy handle, headers and cache are made once and reused, so a scrape
 * allocates nothing but a body buffer from the loop's pool and, for new series, labels.
 *
 *   IDLE --tick--> INFLIGHT --done: parse, append, report--> IDLE
 *     \                 \
 *      +--removed-------+--> STOPPING --2 ticks + 10%: stale markers--> freed
 *                        (without stale markers: freed at once) */
#define _GNU_SOURCE /* pthread_setname_np */
#include "scraper/scrape_internal.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/time.h"
#include "configs/config.h"
#include "scraper/httpc.h"
#include "tsdb/tsdb.h"

#define MAX_LINE_LABELS 512
#define MAX_FREE_BODIES 4 /* per loop: kept for reuse; more would be RSS held for bursts */
#define BATCH 512 /* samples per tsdb_appender_add_refs */
/* relaxed: counters for tests and the benchmark, no ordering with anything else */
#define STAT_ADD(l, f, n) atomic_fetch_add_explicit(&(l)->stats.f, (uint64_t)(n), memory_order_relaxed)
#define STAT_GET(l, f) atomic_load_explicit(&(l)->stats.f, memory_order_relaxed)
#define USER_AGENT "Prometheus/2.55.1"

struct scrape_body {
    struct scrape_body *next;
    char *data;
    size_t len, cap;
};

struct scrape_loop {
    struct scrape_manager *m;
    pthread_t thr;
    bool started;
    CURLM *multi;
    pthread_mutex_t mu;
    bool stop;
    struct scrape_target **heap;
    size_t nheap, capheap;
    struct scrape_target **removed;
    size_t nremoved, capremoved;
    struct scrape_body *free_bodies;
    size_t nfree;
    struct mp_labels_builder *b;
    struct scrape_label labels[MAX_LINE_LABELS];
    struct scrape_label relabels[MAX_LINE_LABELS]; /* re-parsing a line whose ref was lost */
    /* samples of known series waiting for one tsdb_appender_add_refs */
    size_t nbatch;
    uint64_t bref[BATCH];
    double bval[BATCH];
    int bstatus[BATCH];
    struct scrape_cache_series *bseries[BATCH];
    const char *bline[BATCH]; /* parser position before the line, to re-parse it */
    bool bhas_ts[BATCH];      /* the line had a timestamp (not honored) */
    struct mp_buf scratch; /* unescaped label values */
    struct mp_buf conf;    /* honor_labels conflicts: the scraped values */
    /* test counters: written by the loop thread only, read by others without the lock */
    struct {
        _Atomic uint64_t adds_by_ref, adds_by_labels, cache_misses, scrapes, failed, late, missed;
    } stats;
};

/* ---- timer heap --------------------------------------------------------------------------- */

static void heap_set(struct scrape_loop *l, size_t i, struct scrape_target *t)
{
    l->heap[i] = t;
    t->heap_idx = i;
}

static void heap_up(struct scrape_loop *l, size_t i)
{
    struct scrape_target *t = l->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (l->heap[p]->next_ns <= t->next_ns)
            break;
        heap_set(l, i, l->heap[p]);
        i = p;
    }
    heap_set(l, i, t);
}

static void heap_down(struct scrape_loop *l, size_t i)
{
    struct scrape_target *t = l->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= l->nheap)
            break;
        if (c + 1 < l->nheap && l->heap[c + 1]->next_ns < l->heap[c]->next_ns)
            c++;
        if (l->heap[c]->next_ns >= t->next_ns)
            break;
        heap_set(l, i, l->heap[c]);
        i = c;
    }
    heap_set(l, i, t);
}

static void heap_push(struct scrape_loop *l, struct scrape_target *t)
{
    if (l->nheap == l->capheap) {
        l->capheap = l->capheap ? l->capheap * 2 : 64;
        l->heap = mp_xrealloc(l->heap, l->capheap * sizeof *l->heap);
    }
    l->heap[l->nheap++] = t;
    t->heap_idx = l->nheap - 1;
    heap_up(l, l->nheap - 1);
}

static void heap_fix(struct scrape_loop *l, size_t i)
{
    heap_up(l, i);
    heap_down(l, l->heap[i]->heap_idx);
}

static void heap_remove(struct scrape_loop *l, struct scrape_target *t)
{
    size_t i = t->heap_idx;
    l->nheap--;
    if (i != l->nheap) {
        heap_set(l, i, l->heap[l->nheap]);
        heap_fix(l, i);
    }
    t->heap_idx = SIZE_MAX;
}

/* ---- bodies ------------------------------------------------------------------------------- */

/* A body buffer of at least hint bytes (the target's last body plus an eighth): bodies of
 * large pages are not grown by doubling reallocs, which copied them about twice over. */
static struct scrape_body *body_get(struct scrape_loop *l, size_t hint)
{
    struct scrape_body *b = l->free_bodies;
    if (b) {
        l->free_bodies = b->next;
        l->nfree--;
    } else {
        b = mp_xcalloc(1, sizeof *b);
    }
    b->len = 0;
    b->next = NULL;
    if (hint && b->cap < hint + hint / 8) {
        size_t cap = hint + hint / 8;
        char *d = mp_realloc(b->data, cap);
        if (d) {
            b->data = d;
            b->cap = cap;
        }
    }
    return b;
}

static void body_put(struct scrape_loop *l, struct scrape_body *b)
{
    if (!b)
        return;
    if (l->nfree >= MAX_FREE_BODIES) {
        mp_free(b->data);
        mp_free(b);
        return;
    }
    b->next = l->free_bodies;
    l->free_bodies = b;
    l->nfree++;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    struct scrape_target *t = ud;
    struct scrape_body *b = t->body;
    size_t n = size * nmemb;
    /* Prometheus reads at most body_size_limit bytes and fails when it got that many */
    if (t->body_limit && b->len + n >= t->body_limit) {
        t->body_limit_hit = true;
        return 0;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->len + n)
            cap *= 2;
        char *d = mp_realloc(b->data, cap);
        if (!d)
            return 0;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return n;
}

/* Keeps the reason of the last status line: Go's resp.Status ("404 Not Found"). */
static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    struct scrape_target *t = ud;
    size_t n = size * nmemb;
    if (n > 5 && memcmp(p, "HTTP/", 5) == 0) {
        const char *sp = memchr(p, ' ', n);
        if (sp) {
            size_t k = n - (size_t)(sp + 1 - p);
            const char *s = sp + 1;
            while (k && (s[k - 1] == '\r' || s[k - 1] == '\n'))
                k--;
            if (k >= sizeof t->status_line)
                k = sizeof t->status_line - 1;
            memcpy(t->status_line, s, k);
            t->status_line[k] = '\0';
        }
    }
    return n;
}

/* ---- target setup ------------------------------------------------------------------------- */

static enum scrape_protocol protocol_of(const char *name, bool *ok)
{
    static const char *const names[SCRAPE_PROTO_COUNT] = {
        [SCRAPE_PROTO_PROMETHEUS_PROTO] = "PrometheusProto",
        [SCRAPE_PROTO_OPENMETRICS_1_0_0] = "OpenMetricsText1.0.0",
        [SCRAPE_PROTO_OPENMETRICS_0_0_1] = "OpenMetricsText0.0.1",
        [SCRAPE_PROTO_PROMETHEUS_TEXT] = "PrometheusText0.0.4",
    };
    for (int i = 0; i < SCRAPE_PROTO_COUNT; i++) {
        if (strcmp(names[i], name) == 0) {
            *ok = true;
            return (enum scrape_protocol)i;
        }
    }
    *ok = false;
    return SCRAPE_PROTO_PROMETHEUS_TEXT;
}

/* Appends "name: value". */
static int add_header(struct curl_slist **h, const char *name, const char *value)
{
    char line[8192];
    int n = snprintf(line, sizeof line, "%s: %s", name, value);
    if (n < 0 || (size_t)n >= sizeof line)
        return MP_ELIMIT;
    struct curl_slist *nh = curl_slist_append(*h, line);
    if (!nh)
        return MP_ENOMEM;
    *h = nh;
    return 0;
}

/* X-Prometheus-Scrape-Timeout-Seconds: FormatFloat(seconds, 'f', -1, 64). */
static void timeout_text(int64_t ms, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%" PRId64 ".%03d", ms / 1000, (int)(ms % 1000));
    while (n > 0 && buf[n - 1] == '0')
        buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '.')
        buf[--n] = '\0';
}

int scrape_target_prepare(struct scrape_target *t, const struct cfg_scrape_config *sc,
                          struct mp_err *err)
{
    t->cache = scrape_cache_create(); /* first: a target that fails here still reports */
    CURL *e = curl_easy_init();
    if (!e)
        return mp_err_set(err, MP_ENOMEM, "curl_easy_init failed");
    t->easy = e;
    t->body_limit = sc->body_size_limit;
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->curl_err);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)t->timeout_ms);
    curl_easy_setopt(e, CURLOPT_USERAGENT, USER_AGENT);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, sc->enable_compression ? "gzip" : "identity");
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    /* reads of 128 KiB instead of curl's 16: a large page arrives in a few socket reads and
     * loop wakeups rather than dozens (curl holds the buffer only while a transfer runs) */
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 128L * 1024);

    enum scrape_protocol protos[SCRAPE_PROTO_COUNT];
    size_t np = 0;
    for (size_t i = 0; i < sc->nscrape_protocols && np < SCRAPE_PROTO_COUNT; i++) {
        bool ok;
        enum scrape_protocol p = protocol_of(sc->scrape_protocols[i], &ok);
        if (ok)
            protos[np++] = p;
    }
    char accept[512];
    if (np == 0 || scrape_accept_header(protos, np, false, accept, sizeof accept) < 0)
        snprintf(accept, sizeof accept, "%s", SCRAPE_ACCEPT_DEFAULT);
    char to[32];
    timeout_text(t->timeout_ms, to, sizeof to);
    int rc = add_header(&t->headers, "Accept", accept);
    if (rc == 0)
        rc = add_header(&t->headers, "X-Prometheus-Scrape-Timeout-Seconds", to);
    if (rc)
        return mp_err_set(err, rc, "%s", mp_strerror(rc));
    /* URL, TLS, auth, proxy and the header list (ours first) come from the pool's client */
    struct scrape_httpc *hc = NULL;
    rc = scrape_pool_httpc(t->pool, &hc, err);
    if (rc == 0)
        rc = scrape_httpc_req_create(hc, e, t->url, t->headers, t->timeout_ms, &t->http, err);
    return rc;
}

void scrape_target_free(struct scrape_target *t)
{
    if (!t)
        return;
    scrape_httpc_req_destroy(t->http); /* before the handle it unsets its lists on */
    if (t->easy)
        curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    scrape_cache_destroy(t->cache);
    mp_labels_release(t->discovered);
    mp_labels_release(t->labels);
    mp_labels_release(t->full);
    for (int i = 0; i < SCRAPE_NREPORT; i++)
        mp_labels_release(t->report_ls[i]);
    mp_free(t->url);
    mp_free(t->forced_err);
    mp_free(t->limit_err);
    if (t->body) {
        mp_free(t->body->data);
        mp_free(t->body);
    }
    pthread_mutex_destroy(&t->mu);
    mp_free(t);
}

/* ---- appending ---------------------------------------------------------------------------- */

struct counts {
    size_t total, added, series_added;
    size_t appended; /* for sample_limit */
    bool limit_hit;
};

static int add_sample(struct scrape_loop *l, struct tsdb_appender *app, uint64_t *ref,
                      const struct mp_labels *ls, int64_t ts, double v)
{
    if (*ref)
        STAT_ADD(l, adds_by_ref, 1);
    else
        STAT_ADD(l, adds_by_labels, 1);
    uint64_t nref = 0;
    int rc = tsdb_appender_add(app, *ref, ls, ts, v, &nref, NULL);
    if (nref)
        *ref = nref;
    return rc;
}

static bool raw_has_label(const struct scrape_entry *e, struct mp_str name)
{
    for (size_t i = 0; i < e->nlabel; i++) {
        if (mp_str_eq(e->label[i].name, name))
            return true;
    }
    return false;
}

struct conflict {
    struct mp_str name;
    size_t off, len; /* the scraped value in l->conf */
};

/* honor_labels: false (protocols.md 2.4): target labels win, the scraped values move to
 * exported_<name> in order of increasing name length. */
static int merge_target_labels(struct scrape_loop *l, const struct mp_labels *tl)
{
    size_t n = mp_labels_count(tl);
    struct conflict cs[64];
    size_t nc = 0;
    mp_buf_reset(&l->conf);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct mp_label lb = mp_labels_at(tl, i);
        struct mp_str ex = mp_labels_builder_get(l->b, lb.name);
        if (ex.len) {
            if (nc == sizeof cs / sizeof cs[0])
                return MP_ELIMIT;
            cs[nc++] = (struct conflict){lb.name, l->conf.len, ex.len};
            if ((rc = mp_buf_append(&l->conf, ex.ptr, ex.len)) != 0)
                return rc;
        }
        rc = mp_labels_builder_set_interned(l->b, tl, i);
    }
    /* stable insertion sort by name length, as Go's sort.SliceStable */
    for (size_t i = 1; i < nc; i++) {
        struct conflict c = cs[i];
        size_t j = i;
        while (j > 0 && cs[j - 1].name.len > c.name.len) {
            cs[j] = cs[j - 1];
            j--;
        }
        cs[j] = c;
    }
    char name[1024];
    for (size_t i = 0; i < nc && rc == 0; i++) {
        size_t len = cs[i].name.len;
        if (len >= sizeof name)
            return MP_ELIMIT;
        memcpy(name, cs[i].name.ptr, len);
        for (;;) {
            if (len + 9 >= sizeof name)
                return MP_ELIMIT;
            memmove(name + 9, name, len);
            memcpy(name, "exported_", 9);
            len += 9;
            struct mp_str nn = {name, len};
            if (mp_labels_builder_get(l->b, nn).len == 0) {
                rc = mp_labels_builder_set(l->b, nn,
                                           (struct mp_str){l->conf.data + cs[i].off, cs[i].len});
                break;
            }
        }
    }
    return rc;
}

static int check_limits(const struct cfg_scrape_config *sc, const struct mp_labels *ls,
                        struct mp_str met, struct mp_err *err)
{
    size_t n = mp_labels_count(ls);
    int ml = met.len > 50 ? 50 : (int)met.len;
    if (sc->label_limit && n > sc->label_limit)
        return mp_err_set(err, MP_ELIMIT,
                          "label_limit exceeded (metric: %.*s, number of labels: %zu, limit: %zu)",
                          ml, met.ptr, n, sc->label_limit);
    for (size_t i = 0; i < n; i++) {
        struct mp_label lb = mp_labels_at(ls, i);
        int nl = lb.name.len > 50 ? 50 : (int)lb.name.len;
        if (sc->label_name_length_limit && lb.name.len > sc->label_name_length_limit)
            return mp_err_set(err, MP_ELIMIT,
                              "label_name_length_limit exceeded (metric: %.*s, label name: %.*s, "
                              "length: %zu, limit: %zu)",
                              ml, met.ptr, nl, lb.name.ptr, lb.name.len,
                              sc->label_name_length_limit);
        if (sc->label_value_length_limit && lb.value.len > sc->label_value_length_limit) {
            int vl = lb.value.len > 50 ? 50 : (int)lb.value.len;
            return mp_err_set(err, MP_ELIMIT,
                              "label_value_length_limit exceeded (metric: %.*s, label name: %.*s, "
                              "value: \"%.*s\", length: %zu, limit: %zu)",
                              ml, met.ptr, nl, lb.name.ptr, vl, lb.value.ptr, lb.value.len,
                              sc->label_value_length_limit);
        }
    }
    return 0;
}

/* A cache miss (protocols.md 2.4 steps 2-6): the final labels of e, or *out NULL when metric
 * relabeling drops it. Errors fail the scrape. */
static int build_series(struct scrape_loop *l, const struct scrape_target *t,
                        const struct cfg_scrape_config *sc, const struct scrape_entry *e,
                        struct mp_labels **out, struct mp_err *err)
{
    *out = NULL;
    int dup = scrape_entry_duplicate_label(e);
    if (dup >= 0)
        return mp_err_set(err, MP_EPARSE, "label name \"%.*s\" is not unique",
                          (int)e->label[dup].name.len, e->label[dup].name.ptr);
    /* The entry's slices (into the body or the parser's message) and the target's labels
     * outlive this function, which is as long as the builder keeps them: set_borrowed and
     * set_interned skip copying them, and labels() dups the target's strings instead of
     * looking them up. Only unescaped values, which live in l->scratch until the next one,
     * are copied. */
    struct mp_labels_builder *b = l->b;
    mp_labels_builder_reset(b, NULL);
    int rc = mp_labels_builder_set_borrowed(b, MP_STR_LIT(MP_LABEL_METRIC_NAME), e->name);
    for (size_t i = 0; i < e->nlabel && rc == 0; i++) {
        struct mp_str v = e->label[i].value;
        if (e->label[i].escaped) {
            mp_buf_reset(&l->scratch);
            if ((rc = mp_buf_append(&l->scratch, v.ptr, v.len)) != 0)
                break;
            v.len = scrape_unescape(v, false, l->scratch.data, l->scratch.len);
            v.ptr = l->scratch.data;
        }
        if (!mp_label_value_is_valid(v))
            return mp_err_set(err, MP_EPARSE, "invalid UTF-8 label value: \"%.*s\"",
                              (int)(v.len > 50 ? 50 : v.len), v.ptr);
        rc = e->label[i].escaped ? mp_labels_builder_set(b, e->label[i].name, v)
                                 : mp_labels_builder_set_borrowed(b, e->label[i].name, v);
    }
    if (rc == 0 && sc->honor_labels) {
        size_t n = mp_labels_count(t->labels);
        for (size_t i = 0; i < n && rc == 0; i++) {
            struct mp_label lb = mp_labels_at(t->labels, i);
            if (!raw_has_label(e, lb.name))
                rc = mp_labels_builder_set_interned(b, t->labels, i);
        }
    } else if (rc == 0) {
        rc = merge_target_labels(l, t->labels);
    }
    bool keep = true;
    if (rc == 0 && sc->metric_relabel_configs.n)
        rc = scrape_relabel_process(&sc->metric_relabel_configs, b, &keep);
    if (rc)
        return mp_err_set(err, rc, "building labels: %s", mp_strerror(rc));
    if (!keep || mp_labels_builder_count(b) == 0)
        return 0;
    struct mp_labels *ls = NULL;
    if ((rc = mp_labels_builder_labels(b, &ls, err)) != 0)
        return rc;
    struct mp_str name = mp_labels_metric_name(ls);
    if (name.len == 0) {
        mp_labels_release(ls);
        return mp_err_set(err, MP_EPARSE, "missing metric name (__name__ label)");
    }
    bool valid = mp_metric_name_is_valid(name);
    for (size_t i = 0, n = mp_labels_count(ls); i < n && valid; i++) {
        struct mp_label lb = mp_labels_at(ls, i);
        valid = mp_str_eq(lb.name, MP_STR_LIT(MP_LABEL_METRIC_NAME)) ||
                mp_label_name_is_valid(lb.name);
    }
    if (!valid) {
        struct mp_buf s;
        mp_buf_init(&s, 4096);
        if (mp_labels_format(ls, &s) != 0)
            mp_buf_reset(&s);
        mp_err_set(err, MP_EPARSE, "invalid metric name or label names: %s",
                   s.data ? s.data : "");
        mp_buf_fini(&s);
        mp_labels_release(ls);
        return MP_EPARSE;
    }
    if ((rc = check_limits(sc, ls, e->series, err)) != 0) {
        mp_labels_release(ls);
        return rc;
    }
    *out = ls;
    return 0;
}

static void count_append_error(struct scrape_loop *l, int rc)
{
    const struct scrape_loop_metrics *mm = scrape_manager_loop_metrics(l->m);
    struct mp_counter *c = rc == MP_EOUTOFORDER    ? mm->out_of_order
                           : rc == MP_EDUPLICATE   ? mm->duplicate
                           : rc == MP_EOUTOFBOUNDS ? mm->out_of_bounds
                                                   : NULL;
    if (c)
        mp_counter_inc(c);
}

/* What one scrape's appending shares between the line loop, the batch and the miss path. */
struct append_ctx {
    struct scrape_loop *l;
    struct scrape_target *t;
    const struct cfg_scrape_config *sc;
    struct tsdb_appender *app;
    const struct scrape_parser *p; /* for re-parsing a line */
    int64_t ts;                    /* the attempt's timestamp */
    uint64_t iter;
    struct counts *c;
    struct mp_err *err;
};

/* The outcome of appending one sample of series s (NULL: not cached). */
static int sample_done(struct append_ctx *a, struct scrape_cache_series *s, int arc, bool has_ts,
                       bool fresh)
{
    if (arc == MP_EOUTOFORDER || arc == MP_EDUPLICATE || arc == MP_EOUTOFBOUNDS) {
        count_append_error(a->l, arc);
        return 0;
    }
    if (arc == MP_EINVAL)
        return 0;
    if (arc)
        return mp_err_set(a->err, arc, "append: %s", mp_strerror(arc));
    if (fresh && !a->c->limit_hit)
        a->c->series_added++;
    if (s && (!has_ts || a->sc->track_timestamps_staleness))
        scrape_cache_track(s, a->iter);
    return 0;
}

/* sample_limit: the scrape goes on to count every line, but fails at the end. */
static bool over_limit(struct append_ctx *a)
{
    a->c->added++; /* Prometheus counts duplicates and rejected samples here too */
    if (a->sc->sample_limit && ++a->c->appended > a->sc->sample_limit) {
        a->c->limit_hit = true;
        return true;
    }
    return false;
}

/* A text the cache does not know, or whose ref the head no longer knows (counted: false, it
 * passed the sample limit already): labels built (protocols.md 2.4), the sample appended by
 * them, the text cached with the ref the head gave. */
static int add_uncached(struct append_ctx *a, const struct scrape_entry *e,
                        struct scrape_cache_key k, bool counted, struct scrape_cache_entry **out)
{
    struct scrape_loop *l = a->l;
    struct mp_labels *ls = NULL;
    struct scrape_cache_entry *ce = NULL;
    if (out)
        *out = NULL;
    int rc = build_series(l, a->t, a->sc, e, &ls, a->err);
    if (rc)
        return rc;
    if (!ls) { /* dropped by metric_relabel_configs */
        if ((rc = scrape_cache_add(a->t->cache, k, 0, a->iter, &ce)) != 0)
            return mp_err_set(a->err, rc, "scrape cache: %s", mp_strerror(rc));
        if (out)
            *out = ce;
        return 0;
    }
    if (!counted && over_limit(a)) {
        mp_labels_release(ls); /* not cached: no ref (the scrape fails anyway) */
        return 0;
    }
    int64_t sts = e->has_ts && a->sc->honor_timestamps ? e->ts_ms : a->ts;
    uint64_t ref = 0;
    int arc = add_sample(l, a->app, &ref, ls, sts, e->value);
    mp_labels_release(ls);
    struct scrape_cache_series *s = NULL;
    if (ref) { /* also for a rejected sample: the head has the series */
        if ((rc = scrape_cache_add(a->t->cache, k, ref, a->iter, &ce)) != 0)
            return mp_err_set(a->err, rc, "scrape cache: %s", mp_strerror(rc));
        s = scrape_cache_entry_series(a->t->cache, ce);
        if (out)
            *out = ce;
    }
    return sample_done(a, s, arc, e->has_ts, true);
}

/* The line at pos (a parser position before it) again, for a ref the head lost: its entry is
 * forgotten and the sample added by labels. */
static int readd(struct append_ctx *a, const char *pos)
{
    struct scrape_parser q = *a->p;
    q.cur = pos;
    q.status = 0;
    struct scrape_entry e;
    int rc;
    do {
        e.label = a->l->relabels;
        e.label_cap = MAX_LINE_LABELS;
        rc = scrape_parser_next(&q, &e, a->err);
    } while (rc == 0 && e.kind != SCRAPE_ENTRY_SERIES);
    if (rc)
        return rc == MP_EEOF ? mp_err_set(a->err, MP_EPARSE, "line vanished") : rc;
    struct scrape_cache_key k = scrape_cache_key_hash(e.series);
    struct scrape_cache_entry *ce = scrape_cache_find(a->t->cache, k);
    if (ce)
        scrape_cache_forget(a->t->cache, ce);
    return add_uncached(a, &e, k, true, NULL);
}

/* Appends the batch of known series with one tsdb_appender_add_refs. */
static int flush(struct append_ctx *a)
{
    struct scrape_loop *l = a->l;
    size_t n = l->nbatch;
    if (n == 0)
        return 0;
    l->nbatch = 0;
    STAT_ADD(l, adds_by_ref, n);
    /* per-sample statuses below; the summary adds nothing */
    int brc = tsdb_appender_add_refs(a->app, l->bref, l->bval, n, a->ts, l->bstatus, NULL);
    (void)brc;
    int rc = 0;
    size_t lost = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (l->bstatus[i] == MP_ENOTFOUND)
            l->bline[lost++] = l->bline[i]; /* after this loop: re-adding moves records */
        else
            rc = sample_done(a, l->bseries[i], l->bstatus[i], l->bhas_ts[i], false);
    }
    for (size_t i = 0; i < lost && rc == 0; i++)
        rc = readd(a, l->bline[i]);
    return rc;
}

/* Prometheus scrapeLoop.append over one body. */
static int append_body(struct scrape_loop *l, struct scrape_target *t,
                       const struct cfg_scrape_config *sc, struct tsdb_appender *app,
                       const char *body, size_t len, enum scrape_format fmt, int64_t ts,
                       struct counts *c, struct mp_err *err)
{
    struct scrape_parser p;
    if (fmt == SCRAPE_FORMAT_PROTOBUF)
        fmt = SCRAPE_FORMAT_TEXT;
    scrape_parser_init(&p, fmt, body, len, 0);
    const uint64_t iter = t->iter;
    const bool text = fmt == SCRAPE_FORMAT_TEXT;
    struct append_ctx a = {l, t, sc, app, &p, ts, iter, c, err};
    l->nbatch = 0;
    scrape_cache_order_begin(t->cache);
    int rc;
    for (;;) {
        struct scrape_entry e;
        e.label = l->labels;
        e.label_cap = MAX_LINE_LABELS;
        const char *pos = p.cur;
        /* the line the last attempt had here, confirmed by the hash of as many bytes as its
         * text had: the labels are not parsed again */
        struct scrape_cache_entry *ce = text ? scrape_cache_predict(t->cache) : NULL;
        struct mp_str known;
        if (ce && scrape_parser_peek_series(&p, ce->len, &known) &&
            scrape_cache_key_matches(ce, scrape_cache_key_hash(known)))
            rc = scrape_parser_next_known(&p, known, &e, err);
        else
            ce = NULL, rc = scrape_parser_next(&p, &e, err);
        if (rc == MP_EEOF) {
            rc = 0;
            break;
        }
        if (rc)
            break;
        switch (e.kind) {
        case SCRAPE_ENTRY_SERIES:
            break;
        case SCRAPE_ENTRY_TYPE:
            scrape_cache_meta_type(t->cache, e.name, e.type, iter);
            continue;
        case SCRAPE_ENTRY_HELP:
            scrape_cache_meta_help(t->cache, e.name, e.text, e.text_escaped, text, iter);
            continue;
        case SCRAPE_ENTRY_UNIT:
            scrape_cache_meta_unit(t->cache, e.name, e.text, iter);
            continue;
        default:
            continue;
        }
        c->total++;
        if (!ce) {
            struct scrape_cache_key k = scrape_cache_key_hash(e.series);
            ce = scrape_cache_find(t->cache, k);
            if (!ce) {
                STAT_ADD(l, cache_misses, 1);
                /* in order: a text may repeat, and the batch's records must not move */
                if ((rc = flush(&a)) != 0 || (rc = add_uncached(&a, &e, k, false, &ce)) != 0)
                    break;
                if (ce)
                    scrape_cache_order_note(t->cache, ce);
                continue;
            }
        }
        scrape_cache_order_note(t->cache, ce);
        scrape_cache_entry_seen(ce, iter);
        struct scrape_cache_series *s = scrape_cache_entry_series(t->cache, ce);
        if (!s || over_limit(&a))
            continue; /* dropped by metric_relabel_configs, or over sample_limit */
        if (e.has_ts && sc->honor_timestamps) {
            /* its own timestamp: one add */
            if ((rc = flush(&a)) != 0)
                break;
            uint64_t ref = s->ref;
            int arc = add_sample(l, app, &ref, NULL, e.ts_ms, e.value);
            rc = arc == MP_ENOTFOUND ? readd(&a, pos) : sample_done(&a, s, arc, true, false);
            if (rc)
                break;
            continue;
        }
        size_t i = l->nbatch++;
        l->bref[i] = s->ref;
        l->bval[i] = e.value;
        l->bseries[i] = s;
        l->bline[i] = pos;
        l->bhas_ts[i] = e.has_ts;
        if (l->nbatch == BATCH && (rc = flush(&a)) != 0)
            break;
    }
    if (rc == 0)
        rc = flush(&a);
    l->nbatch = 0;
    if (rc == 0 && c->limit_hit) {
        const struct scrape_loop_metrics *mm = scrape_manager_loop_metrics(l->m);
        if (mm->sample_limit)
            mp_counter_inc(mm->sample_limit);
        rc = mp_err_set(err, MP_ELIMIT, "sample limit exceeded");
    }
    return rc;
}

/* Stale markers for the series of an attempt, in batches by ref. A ref the head no longer
 * knows has no sample to end; out of order when a replacement target wrote newer samples:
 * dropped, as upstream. */
struct stale_ctx {
    struct scrape_loop *l;
    struct tsdb_appender *app;
    int64_t ts;
};

static void stale_flush(struct stale_ctx *sc)
{
    struct scrape_loop *l = sc->l;
    if (l->nbatch) {
        int brc = tsdb_appender_add_refs(sc->app, l->bref, l->bval, l->nbatch, sc->ts, NULL, NULL);
        (void)brc;
    }
    STAT_ADD(l, adds_by_ref, l->nbatch);
    l->nbatch = 0;
}

static void write_stale(void *ctx, struct scrape_cache_series *s)
{
    struct stale_ctx *sc = ctx;
    struct scrape_loop *l = sc->l;
    l->bref[l->nbatch] = s->ref;
    l->bval[l->nbatch++] = tsdb_stale_nan();
    if (l->nbatch == BATCH)
        stale_flush(sc);
}

static void write_stale_markers(struct scrape_loop *l, struct scrape_target *t,
                                struct tsdb_appender *app, uint64_t iter, int64_t ts)
{
    struct stale_ctx st = {l, app, ts};
    l->nbatch = 0;
    scrape_cache_each_seen(t->cache, iter, write_stale, &st);
    stale_flush(&st);
}

static void append_report(struct scrape_loop *l, struct scrape_target *t,
                          struct tsdb_appender *app, int64_t ts, const double v[SCRAPE_NREPORT])
{
    for (int i = 0; i < SCRAPE_NREPORT; i++)
        (void)add_sample(l, app, &t->report_ref[i], t->report_ls[i], ts, v[i]);
}

static void set_status(struct scrape_target *t, const char *error, int64_t ts, double dur)
{
    pthread_mutex_lock(&t->mu);
    t->health = error ? SCRAPE_HEALTH_DOWN : SCRAPE_HEALTH_UP;
    snprintf(t->last_error, sizeof t->last_error, "%s", error ? error : "");
    t->last_scrape_ms = ts;
    t->last_duration_s = dur;
    pthread_mutex_unlock(&t->mu);
}

/* One finished attempt (protocols.md 2.5, 2.6): body (NULL when the request failed with
 * fail_msg) parsed and appended, stale markers, report series, commit. */
static void process(struct scrape_loop *l, struct scrape_target *t, const char *body, size_t len,
                    enum scrape_format fmt, const char *fail_msg)
{
    struct tsdb *db = scrape_manager_db(l->m);
    const struct cfg_scrape_config *sc = scrape_pool_config(t->pool);
    const uint64_t iter = t->iter;
    struct counts c = {0};
    struct mp_err err = {0};
    struct tsdb_appender *app = NULL;
    int rc;
    if (fail_msg) {
        rc = mp_err_set(&err, MP_EIO, "%s", fail_msg);
    } else if ((rc = tsdb_appender_create(db, &app)) != 0) {
        mp_err_set(&err, rc, "tsdb appender: %s", mp_strerror(rc));
    } else {
        rc = append_body(l, t, sc, app, body, len, fmt, t->scrape_ts_ms, &c, &err);
    }
    if (rc) {
        /* nothing of the attempt is stored; it counts as an empty scrape for staleness */
        tsdb_appender_rollback(app);
        app = NULL;
        scrape_cache_undo(t->cache, iter);
        if (tsdb_appender_create(db, &app) != 0)
            app = NULL;
    }
    if (app) {
        write_stale_markers(l, t, app, iter - 1, t->scrape_ts_ms);
        double dur = (double)(mp_mono_ns() - t->start_ns) / 1e9;
        const double v[SCRAPE_NREPORT] = {rc ? 0 : 1, dur, (double)c.total, (double)c.added,
                                          (double)c.series_added};
        append_report(l, t, app, t->scrape_ts_ms, v);
        struct mp_err cerr = {0};
        if (tsdb_appender_commit(app, &cerr) != 0 && rc == 0) {
            rc = MP_EIO;
            mp_err_set(&err, MP_EIO, "%s", cerr.msg);
        }
    }
    const struct scrape_loop_metrics *mm = scrape_manager_loop_metrics(l->m);
    size_t entries = scrape_cache_entries(t->cache);
    if (rc == 0) {
        scrape_cache_iter_done(t->cache, iter);
        t->ok_entries = scrape_cache_entries(t->cache);
    } else if (entries > t->ok_entries * 2 + 1000) {
        /* Prometheus iterDone: failing scrapes with varying series would grow the cache
         * for ever; flush when it doubled since the last success (plus 1000) */
        scrape_cache_iter_done(t->cache, iter);
        if (mm->cache_flush_forced)
            mp_counter_inc(mm->cache_flush_forced);
    }
    if (rc == MP_ELIMIT && strncmp(err.msg, "label_", 6) == 0 && mm->label_limit)
        mp_counter_inc(mm->label_limit);
    t->scraped = true;
    STAT_ADD(l, scrapes, 1);
    STAT_ADD(l, failed, rc != 0);
    set_status(t, rc ? err.msg : NULL, t->scrape_ts_ms,
               (double)(mp_mono_ns() - t->start_ns) / 1e9);
    if (rc)
        MP_LOG_DEBUG("scrape failed", MP_KV_STR("target", t->url), MP_KV_STR("err", err.msg));
}

/* Prometheus endOfRunStaleness: markers for the last scrape's series and the report series,
 * stamped with the tick after the target went away. */
static void write_end_of_run(struct scrape_loop *l, struct scrape_target *t)
{
    struct tsdb_appender *app = NULL;
    if (tsdb_appender_create(scrape_manager_db(l->m), &app) != 0)
        return;
    write_stale_markers(l, t, app, t->iter, t->stale_ts_ms);
    double v[SCRAPE_NREPORT];
    for (int i = 0; i < SCRAPE_NREPORT; i++)
        v[i] = tsdb_stale_nan();
    append_report(l, t, app, t->stale_ts_ms, v);
    if (tsdb_appender_commit(app, NULL) != 0)
        MP_LOG_WARN("stale markers not written", MP_KV_STR("target", t->url));
}

/* ---- the loop ----------------------------------------------------------------------------- */

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Skips ticks in the past, as Go's ticker drops them; returns how many. */
static int64_t next_tick(struct scrape_target *t, int64_t now)
{
    int64_t iv = t->interval_ms * 1000000;
    t->next_ns += iv;
    if (t->next_ns > now)
        return 0;
    int64_t skip = (now - t->next_ns) / iv + 1;
    t->next_ns += skip * iv;
    return skip;
}

static void start_scrape(struct scrape_loop *l, struct scrape_target *t, int64_t now)
{
    int64_t iv = t->interval_ms * 1000000;
    int64_t w = wall_ns();
    /* timestamp alignment (protocols.md 2.3), Prometheus 2.55 scrapeLoop.run */
    if (!t->aligned_set) {
        t->aligned_set = true;
        t->aligned_wall = w;
    } else if (iv > 100 * 2000000) {
        int64_t tol = iv / 100 < 2000000 ? iv / 100 : 2000000;
        while (w - t->aligned_wall >= iv)
            t->aligned_wall += iv;
        if (w - t->aligned_wall <= tol)
            w = t->aligned_wall;
    }
    t->scrape_ts_ms = w >= 0 ? w / 1000000 : -((-w + 999999) / 1000000);
    if (t->last_start_ns && t->interval_hist)
        mp_histogram_observe(t->interval_hist, (double)(now - t->last_start_ns) / 1e9);
    t->last_start_ns = now;
    t->start_ns = now;
    t->iter++;
    if (t->forced_err || t->limit_err) {
        process(l, t, NULL, 0, SCRAPE_FORMAT_TEXT, t->forced_err ? t->forced_err : t->limit_err);
        return;
    }
    struct mp_err herr; /* per-request credentials: _file secrets, oauth2 token */
    mp_err_clear(&herr);
    if (t->http != NULL && scrape_httpc_req_begin(t->http, &herr) != 0) {
        char msg[MP_ERR_MSG_MAX + 300];
        snprintf(msg, sizeof msg, "Get \"%s\": %s", t->url, herr.msg);
        process(l, t, NULL, 0, SCRAPE_FORMAT_TEXT, msg);
        return;
    }
    t->body = body_get(l, t->body_hint);
    t->body_limit_hit = false;
    t->status_line[0] = '\0';
    t->curl_err[0] = '\0';
    if (curl_multi_add_handle(l->multi, t->easy) != CURLM_OK) {
        body_put(l, t->body);
        t->body = NULL;
        process(l, t, NULL, 0, SCRAPE_FORMAT_TEXT, "cannot start the request");
        return;
    }
    t->state = SCRAPE_TS_INFLIGHT;
}

static void finish_scrape(struct scrape_loop *l, struct scrape_target *t, CURLcode cc)
{
    curl_multi_remove_handle(l->multi, t->easy);
    t->state = SCRAPE_TS_IDLE;
    char msg[MP_ERR_MSG_MAX];
    const char *fail = NULL;
    long code = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
    if (t->body_limit_hit) {
        const struct scrape_loop_metrics *mm = scrape_manager_loop_metrics(l->m);
        if (mm->body_limit)
            mp_counter_inc(mm->body_limit);
        fail = "body size limit exceeded";
    } else if (cc == CURLE_OPERATION_TIMEDOUT) {
        snprintf(msg, sizeof msg, "Get \"%s\": context deadline exceeded", t->url);
        fail = msg;
    } else if (cc != CURLE_OK) {
        snprintf(msg, sizeof msg, "Get \"%s\": %s", t->url,
                 t->curl_err[0] ? t->curl_err : curl_easy_strerror(cc));
        fail = msg;
    } else if (code != 200) {
        if (t->status_line[0])
            snprintf(msg, sizeof msg, "server returned HTTP status %s", t->status_line);
        else
            snprintf(msg, sizeof msg, "server returned HTTP status %ld", code);
        fail = msg;
    }
    enum scrape_format fmt = SCRAPE_FORMAT_TEXT;
    if (!fail) {
        char *ct = NULL;
        curl_easy_getinfo(t->easy, CURLINFO_CONTENT_TYPE, &ct);
        fmt = scrape_format_from_content_type(ct, ct ? strlen(ct) : 0);
    }
    struct scrape_body *b = t->body;
    t->body = NULL;
    if (!fail)
        t->body_hint = b->len;
    process(l, t, b->data ? b->data : "", b->len, fmt, fail);
    body_put(l, b);
}

static void handle_removed(struct scrape_loop *l, int64_t now)
{
    for (size_t i = 0; i < l->nremoved; i++) {
        struct scrape_target *t = l->removed[i];
        if (t->state == SCRAPE_TS_INFLIGHT) {
            curl_multi_remove_handle(l->multi, t->easy);
            body_put(l, t->body);
            t->body = NULL;
            t->state = SCRAPE_TS_IDLE;
            t->iter--; /* the aborted attempt never happened: end-of-run markers are for the
                        * series of the last finished one */
        }
        if (t->stale_on_stop && t->scraped && t->state != SCRAPE_TS_STOPPING) {
            /* stamp: the next tick; write: one more tick and 10% later */
            int64_t iv = t->interval_ms * 1000000;
            if (t->next_ns <= now)
                (void)next_tick(t, now);
            t->stale_ts_ms = (wall_ns() + (t->next_ns - now)) / 1000000;
            t->next_ns += iv + iv / 10;
            t->state = SCRAPE_TS_STOPPING;
            heap_fix(l, t->heap_idx);
        } else if (t->state != SCRAPE_TS_STOPPING) {
            heap_remove(l, t);
            scrape_target_free(t);
        }
    }
    l->nremoved = 0;
}

static void fire(struct scrape_loop *l, struct scrape_target *t, int64_t now)
{
    if (t->state == SCRAPE_TS_STOPPING) {
        heap_remove(l, t);
        write_end_of_run(l, t);
        scrape_target_free(t);
        return;
    }
    bool idle = t->state == SCRAPE_TS_IDLE;
    if (now - t->next_ns > t->interval_ms * 100000)
        STAT_ADD(l, late, 1);
    STAT_ADD(l, missed, (uint64_t)next_tick(t, now) + !idle);
    heap_fix(l, t->heap_idx);
    if (idle)
        start_scrape(l, t, now);
}

static void *loop_main(void *arg)
{
    struct scrape_loop *l = arg;
    pthread_setname_np(pthread_self(), "scrape-loop"); /* for top -H and perf */
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        int64_t now = mp_mono_ns();
        handle_removed(l, now);
        while (l->nheap && l->heap[0]->next_ns <= now)
            fire(l, l->heap[0], now);
        int running = 0;
        curl_multi_perform(l->multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(l->multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct scrape_target *t = NULL;
            CURLcode cc = msg->data.result;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
            finish_scrape(l, t, cc);
            /* parsing took a while: let curl read what arrived meanwhile, so a transfer
             * that is complete in the socket buffer is not timed out behind this one */
            curl_multi_perform(l->multi, &running);
        }
        int timeout = 1000;
        if (l->nheap) {
            int64_t d = (l->heap[0]->next_ns - mp_mono_ns() + 999999) / 1000000;
            timeout = d < 0 ? 0 : d < timeout ? (int)d : timeout;
        }
        pthread_mutex_unlock(&l->mu);
        curl_multi_poll(l->multi, NULL, 0, timeout, NULL);
        pthread_mutex_lock(&l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

int scrape_loops_start(struct scrape_manager *m, struct scrape_loop **out, int n,
                       struct mp_err *err)
{
    struct scrape_loop *loops = mp_xcalloc((size_t)n, sizeof *loops);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        struct scrape_loop *l = &loops[i];
        l->m = m;
        pthread_mutex_init(&l->mu, NULL);
        l->b = mp_labels_builder_create();
        mp_buf_init(&l->scratch, 0);
        mp_buf_init(&l->conf, 0);
        l->multi = curl_multi_init();
        if (!l->multi) {
            rc = mp_err_set(err, MP_ENOMEM, "curl_multi_init failed");
            break;
        }
        curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, 10000L);
        if (pthread_create(&l->thr, NULL, loop_main, l) != 0) {
            rc = mp_err_set(err, MP_ENOMEM, "cannot start a scrape loop thread");
            break;
        }
        l->started = true;
    }
    if (rc) {
        scrape_loops_stop(loops, n);
        return rc;
    }
    *out = loops;
    return 0;
}

void scrape_loops_stop(struct scrape_loop *loops, int n)
{
    if (!loops)
        return;
    for (int i = 0; i < n; i++) {
        struct scrape_loop *l = &loops[i];
        if (!l->started)
            continue;
        pthread_mutex_lock(&l->mu);
        l->stop = true;
        pthread_mutex_unlock(&l->mu);
        curl_multi_wakeup(l->multi);
        pthread_join(l->thr, NULL);
    }
    for (int i = 0; i < n; i++) {
        struct scrape_loop *l = &loops[i];
        /* shutdown: no stale markers, as Prometheus; removed targets are still in the heap */
        for (size_t k = 0; k < l->nheap; k++) {
            struct scrape_target *t = l->heap[k];
            if (t->state == SCRAPE_TS_INFLIGHT)
                curl_multi_remove_handle(l->multi, t->easy);
            scrape_target_free(t);
        }
        mp_free(l->heap);
        mp_free(l->removed);
        while (l->free_bodies) {
            struct scrape_body *b = l->free_bodies;
            l->free_bodies = b->next;
            mp_free(b->data);
            mp_free(b);
        }
        if (l->multi)
            curl_multi_cleanup(l->multi);
        mp_labels_builder_destroy(l->b);
        mp_buf_fini(&l->scratch);
        mp_buf_fini(&l->conf);
        pthread_mutex_destroy(&l->mu);
    }
    mp_free(loops);
}

struct scrape_loop *scrape_loop_at(struct scrape_loop *loops, int i)
{
    return &loops[i];
}

void scrape_loop_lock(struct scrape_loop *l)
{
    pthread_mutex_lock(&l->mu);
}

void scrape_loop_unlock(struct scrape_loop *l)
{
    pthread_mutex_unlock(&l->mu);
}

void scrape_loop_wakeup(struct scrape_loop *l)
{
    curl_multi_wakeup(l->multi);
}

void scrape_loop_add_locked(struct scrape_loop *l, struct scrape_target *t, int64_t offset_ns)
{
    /* first wait = (interval - now mod interval) + offset, minus one interval if over it
     * (Prometheus Target.offset): every target keeps its phase against Unix time */
    int64_t iv = t->interval_ms * 1000000;
    int64_t w = wall_ns();
    int64_t wait = (iv - w % iv) + offset_ns;
    if (wait > iv)
        wait -= iv;
    t->loop = l;
    t->state = SCRAPE_TS_IDLE;
    t->next_ns = mp_mono_ns() + wait;
    heap_push(l, t);
}

void scrape_loop_remove_locked(struct scrape_loop *l, struct scrape_target *t, bool stale)
{
    t->removed = true;
    t->stale_on_stop = stale;
    if (l->nremoved == l->capremoved) {
        l->capremoved = l->capremoved ? l->capremoved * 2 : 16;
        l->removed = mp_xrealloc(l->removed, l->capremoved * sizeof *l->removed);
    }
    l->removed[l->nremoved++] = t;
}

void scrape_loop_stats_add(struct scrape_loop *l, struct scrape_test_stats *out)
{
    out->adds_by_ref += STAT_GET(l, adds_by_ref);
    out->adds_by_labels += STAT_GET(l, adds_by_labels);
    out->cache_misses += STAT_GET(l, cache_misses);
    out->scrapes += STAT_GET(l, scrapes);
    out->failed += STAT_GET(l, failed);
    out->late += STAT_GET(l, late);
    out->missed += STAT_GET(l, missed);
}

size_t scrape_loop_cache_bytes(struct scrape_loop *l)
{
    size_t n = 0;
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < l->nheap; i++)
        n += scrape_cache_bytes(l->heap[i]->cache);
    pthread_mutex_unlock(&l->mu);
    return n;
}
