/* SPDX-License-Identifier: Apache-2.0 */
/* tests/scraper/support_scrape.c: see support_scrape.h. */
#define _GNU_SOURCE
#include "support_scrape.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <ftw.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "common/labels.h"
#include "common/log.h"
#include "common/matcher.h"
#include "common/str.h"
#include "configs/config.h"
#include "tsdb/tsdb.h"

#define MAX_ROUTES 16
#define MAX_HDRS 8

struct route {
    char path[64];
    int status;
    char ctype[128];
    char *body;
    size_t len;
    bool gzip;
    int delay_ms;
    unsigned hits;
    char hname[MAX_HDRS][64];
    char hval[MAX_HDRS][512];
    size_t nh;
};

struct mock {
    struct MHD_Daemon *d;
    unsigned port;
    pthread_mutex_t mu;
    struct route r[MAX_ROUTES];
    size_t n;
};

static struct route *route_of(struct mock *m, const char *path)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->r[i].path, path) == 0)
            return &m->r[i];
    }
    return NULL;
}

static enum MHD_Result keep_header(void *cls, enum MHD_ValueKind kind, const char *k,
                                   const char *v)
{
    (void)kind;
    struct route *r = cls;
    if (r->nh < MAX_HDRS) {
        snprintf(r->hname[r->nh], sizeof r->hname[0], "%s", k);
        snprintf(r->hval[r->nh], sizeof r->hval[0], "%s", v ? v : "");
        r->nh++;
    }
    return MHD_YES;
}

static enum MHD_Result on_req(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **state)
{
    (void)method, (void)version, (void)upload, (void)upload_len;
    struct mock *m = cls;
    if (!*state) { /* first call: headers only */
        *state = m;
        return MHD_YES;
    }
    pthread_mutex_lock(&m->mu);
    struct route *r = route_of(m, url);
    int status = 404, delay = 0;
    char *body = NULL;
    size_t len = 0;
    char ctype[128] = "";
    bool gz = false;
    if (r) {
        r->hits++;
        r->nh = 0;
        MHD_get_connection_values(c, MHD_HEADER_KIND, keep_header, r);
        status = r->status;
        delay = r->delay_ms;
        snprintf(ctype, sizeof ctype, "%s", r->ctype);
        gz = r->gzip;
        len = r->len;
        body = malloc(len + 1);
        memcpy(body, r->body ? r->body : "", len);
    }
    pthread_mutex_unlock(&m->mu);
    if (delay)
        usleep((useconds_t)delay * 1000);
    if (!body) {
        body = strdup("not found\n");
        len = strlen(body);
    }
    if (gz) {
        uLong cap = compressBound((uLong)len) + 64;
        unsigned char *out = malloc(cap);
        z_stream zs = {0};
        cr_assert_eq(deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
        zs.next_in = (unsigned char *)body;
        zs.avail_in = (uInt)len;
        zs.next_out = out;
        zs.avail_out = (uInt)cap;
        cr_assert_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
        len = zs.total_out;
        deflateEnd(&zs);
        free(body);
        body = (char *)out;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (ctype[0])
        MHD_add_response_header(resp, "Content-Type", ctype);
    if (gz)
        MHD_add_response_header(resp, "Content-Encoding", "gzip");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

struct mock *mock_start(void)
{
    struct mock *m = calloc(1, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = 0;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    m->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                                MHD_USE_POLL,
                            0, NULL, NULL, on_req, m, MHD_OPTION_SOCK_ADDR, &sa,
                            MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    cr_assert_not_null(m->d, "MHD_start_daemon");
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT);
    m->port = di->port;
    return m;
}

void mock_stop(struct mock *m)
{
    if (!m)
        return;
    MHD_stop_daemon(m->d);
    for (size_t i = 0; i < m->n; i++)
        free(m->r[i].body);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

unsigned mock_port(const struct mock *m)
{
    return m->port;
}

void mock_set(struct mock *m, const char *path, int status, const char *ctype, const char *body,
              bool gzip, int delay_ms)
{
    pthread_mutex_lock(&m->mu);
    struct route *r = route_of(m, path);
    if (!r) {
        cr_assert_lt(m->n, MAX_ROUTES);
        r = &m->r[m->n++];
        snprintf(r->path, sizeof r->path, "%s", path);
    }
    r->status = status;
    snprintf(r->ctype, sizeof r->ctype, "%s", ctype ? ctype : "");
    free(r->body);
    r->body = strdup(body);
    r->len = strlen(body);
    r->gzip = gzip;
    r->delay_ms = delay_ms;
    pthread_mutex_unlock(&m->mu);
}

unsigned mock_hits(struct mock *m, const char *path)
{
    pthread_mutex_lock(&m->mu);
    struct route *r = route_of(m, path);
    unsigned n = r ? r->hits : 0;
    pthread_mutex_unlock(&m->mu);
    return n;
}

void mock_header(struct mock *m, const char *path, const char *name, char *buf, size_t cap)
{
    buf[0] = '\0';
    pthread_mutex_lock(&m->mu);
    struct route *r = route_of(m, path);
    for (size_t i = 0; r && i < r->nh; i++) {
        if (strcasecmp(r->hname[i], name) == 0)
            snprintf(buf, cap, "%s", r->hval[i]);
    }
    pthread_mutex_unlock(&m->mu);
}

/* ---- world ---------------------------------------------------------------------------------- */

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

void world_init(struct world *w)
{
    *w = (struct world){0};
    mp_log_set_level(MP_LOG_LEVEL_WARN);
    char tmpl[] = "/tmp/mp-scrape-XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    w->dir = strdup(tmpl);
    struct tsdb_options o;
    tsdb_options_init(&o);
    o.dir = w->dir;
    o.wal_fsync = TSDB_WAL_FSYNC_NONE;
    o.background = false;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_open(&o, &w->db, &err), 0, "%s", err.msg);
    struct scrape_manager_opts mo;
    scrape_manager_opts_init(&mo);
    mo.db = w->db;
    cr_assert_eq(scrape_manager_create(&mo, &w->sm, &err), 0, "%s", err.msg);
    w->http = mock_start();
}

void world_fini(struct world *w)
{
    scrape_manager_destroy(w->sm);
    cfg_config_destroy(w->cfg);
    tsdb_close(w->db);
    mock_stop(w->http);
    nftw(w->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(w->dir);
}

void world_config(struct world *w, const char *fmt, ...)
{
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    cr_assert(n > 0 && (size_t)n < sizeof buf);
    struct cfg_config *cfg = NULL;
    struct mp_err err = {0};
    cr_assert_eq(cfg_config_load_buf("test.yml", buf, (size_t)n, &cfg, &err), 0, "%s", err.msg);
    cr_assert_eq(scrape_manager_apply_config(w->sm, cfg, &err), 0, "%s", err.msg);
    cfg_config_destroy(w->cfg);
    w->cfg = cfg;
}

const char *world_addr(struct world *w)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "127.0.0.1:%u", mock_port(w->http));
    return buf;
}

void world_sync(struct world *w, const char *job, const char *const *addrs,
                const char *const *group_labels)
{
    size_t n = 0;
    while (addrs && addrs[n])
        n++;
    struct mp_labels **ts = calloc(n ? n : 1, sizeof *ts);
    for (size_t i = 0; i < n; i++) {
        struct mp_label l = {MP_STR_LIT("__address__"), mp_str_c(addrs[i])};
        cr_assert_eq(mp_labels_create(&l, 1, &ts[i], NULL), 0);
    }
    struct mp_label gl[8];
    size_t ng = 0;
    for (size_t i = 0; group_labels && group_labels[i]; i += 2)
        gl[ng++] = (struct mp_label){mp_str_c(group_labels[i]), mp_str_c(group_labels[i + 1])};
    struct scrape_target_group g = {.source = "0", .targets = ts, .ntargets = n};
    cr_assert_eq(mp_labels_create(gl, ng, &g.group_labels, NULL), 0);
    scrape_manager_sync(w->sm, job, &g, 1);
    for (size_t i = 0; i < n; i++)
        mp_labels_release(ts[i]);
    mp_labels_release(g.group_labels);
    free(ts);
}

/* ---- reading the tsdb ----------------------------------------------------------------------- */

bool is_stale(double v)
{
    return tsdb_is_stale(v);
}

static struct tsdb_series_set *select_series(struct tsdb *db, struct tsdb_querier **q,
                                             const char *name, const char *const *pairs)
{
    struct mp_matcher *ms[9];
    size_t n = 0;
    cr_assert_eq(mp_matcher_create(MP_MATCH_EQUAL, MP_STR_LIT("__name__"), mp_str_c(name),
                                   &ms[n++], NULL),
                 0);
    for (size_t i = 0; pairs && pairs[i]; i += 2) {
        cr_assert_lt(n, 9);
        cr_assert_eq(mp_matcher_create(MP_MATCH_EQUAL, mp_str_c(pairs[i]), mp_str_c(pairs[i + 1]),
                                       &ms[n++], NULL),
                     0);
    }
    cr_assert_eq(tsdb_querier_open(db, INT64_MIN / 2, INT64_MAX / 2, q, NULL), 0);
    struct tsdb_series_set *s = NULL;
    cr_assert_eq(tsdb_querier_select(*q, (const struct mp_matcher *const *)ms, n, &s, NULL), 0);
    for (size_t i = 0; i < n; i++)
        mp_matcher_destroy(ms[i]);
    return s;
}

size_t db_samples(struct tsdb *db, const char *name, const char *const *pairs,
                  struct sample *out, size_t cap, size_t *n)
{
    struct tsdb_querier *q = NULL;
    struct tsdb_series_set *s = select_series(db, &q, name, pairs);
    size_t series = 0;
    *n = 0;
    while (tsdb_series_set_next(s, NULL) == 0) {
        if (series++ == 0) {
            struct tsdb_sample_iter it;
            tsdb_series_set_iter(s, &it);
            int64_t t;
            double v;
            while (tsdb_sample_iter_next(&it, &t, &v) == 0) {
                if (*n < cap)
                    out[*n] = (struct sample){t, v};
                (*n)++;
            }
            if (*n > cap)
                *n = cap;
        }
    }
    tsdb_series_set_free(s);
    tsdb_querier_close(q);
    return series;
}

bool db_series_labels(struct tsdb *db, const char *name, char *buf, size_t cap)
{
    struct tsdb_querier *q = NULL;
    struct tsdb_series_set *s = select_series(db, &q, name, NULL);
    bool found = false;
    buf[0] = '\0';
    if (tsdb_series_set_next(s, NULL) == 0) {
        struct mp_buf b;
        mp_buf_init(&b, 0);
        cr_assert_eq(mp_labels_format(tsdb_series_set_labels(s), &b), 0);
        snprintf(buf, cap, "%s", b.data);
        mp_buf_fini(&b);
        found = true;
    }
    tsdb_series_set_free(s);
    tsdb_querier_close(q);
    return found;
}

#define MAXS 4096
static struct sample tmp_samples[MAXS];

size_t db_count(struct tsdb *db, const char *name, const char *const *pairs)
{
    size_t n = 0, c = 0;
    db_samples(db, name, pairs, tmp_samples, MAXS, &n);
    for (size_t i = 0; i < n; i++)
        c += !is_stale(tmp_samples[i].v);
    return c;
}

bool db_last(struct tsdb *db, const char *name, const char *const *pairs, struct sample *out)
{
    size_t n = 0;
    db_samples(db, name, pairs, tmp_samples, MAXS, &n);
    if (n == 0)
        return false;
    *out = tmp_samples[n - 1];
    return true;
}

bool wait_for(bool (*cond)(void *ctx), void *ctx)
{
    for (int i = 0; i < 1000; i++) {
        if (cond(ctx))
            return true;
        usleep(10000);
    }
    return cond(ctx);
}

struct wait_ctx {
    struct tsdb *db;
    const char *name;
    const char *const *pairs;
    size_t n;
};

static bool enough(void *ctx)
{
    struct wait_ctx *c = ctx;
    return db_count(c->db, c->name, c->pairs) >= c->n;
}

bool wait_samples(struct tsdb *db, const char *name, const char *const *pairs, size_t n)
{
    struct wait_ctx c = {db, name, pairs, n};
    return wait_for(enough, &c);
}

static void render(const struct mp_labels *ls, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (!ls)
        return;
    struct mp_buf b;
    mp_buf_init(&b, 0);
    cr_assert_eq(mp_labels_format(ls, &b), 0);
    snprintf(buf, cap, "%s", b.data ? b.data : "{}");
    mp_buf_fini(&b);
}

static void take_target(void *ctx, const struct scrape_target_info *t)
{
    struct tinfo *o = ctx;
    if (!t->labels) {
        if (o->ndropped++ == 0 && o->nactive == 0)
            render(t->discovered, o->discovered, sizeof o->discovered);
        return;
    }
    if (o->nactive++)
        return;
    snprintf(o->pool, sizeof o->pool, "%s", t->pool);
    render(t->labels, o->labels, sizeof o->labels);
    render(t->discovered, o->discovered, sizeof o->discovered);
    snprintf(o->url, sizeof o->url, "%s", t->url);
    snprintf(o->last_error, sizeof o->last_error, "%s", t->last_error);
    o->health = t->health;
    o->last_scrape_ms = t->last_scrape_ms;
}

void world_target(struct world *w, struct tinfo *out)
{
    *out = (struct tinfo){0};
    scrape_manager_targets(w->sm, true, true, take_target, out);
}
