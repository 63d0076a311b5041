/* SPDX-License-Identifier: Apache-2.0 */
/* meshsim/model.c: the Linkerd mesh model (linkerd-workload.md 5) behind both the series
 * generator of meshsim.h (meshsim_gen_*, formerly bench/meshgen) and the simulated proxies.
 *
 * State is kept per proxy as "keys", the label sets the proxy itself keeps counters for:
 *   hkey  an HTTP endpoint key: request_total, and per status code the 28 latency series
 *         plus one response_total per outcome (status, classification, grpc_status);
 *         series appear lazily, when the first response of that status arrives;
 *   tkey  a transport key: tcp_open_total/open_connections/read/write, tcp_close_total per
 *         errno (after the first close).
 * One simulation step per scrape interval advances every key from Poisson draws per
 * (client pod, server pod) pair; client and server proxies get the same counts, so inbound
 * and outbound totals agree as the spec's consistency invariants require. The first step
 * stands for the 6 h the pods ran before the window, so counters start at plausible sizes.
 * Latency histograms take expected bucket counts from the log-normal mixture's CDF with one
 * shared stochastic-rounding draw (cumulative counts stay monotone in le), or individual
 * samples when few requests arrived.
 *
 * Expose mode (the simulated proxies, model_cfg.expose) keeps the same state and random
 * stream shape but stores no label sets per series (render.c prints them from the keys,
 * in the proxy's order, with its empty labels) and also counts the prometheus-client
 * families (struct pstate). The generator's output does not depend on the additions. */
#include "meshsim/model.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

static const double bucket_le[NBUCKETS - 1] = {
    1,   2,   3,    4,    5,    10,   20,   30,    40,    50,    100,   200,  300,
    400, 500, 1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000};
const char *const meshsim_bucket_str[NBUCKETS] = {
    "1",    "2",    "3",     "4",     "5",     "10",    "20",    "30",   "40",
    "50",   "100",  "200",   "300",   "400",   "500",   "1000",  "2000", "3000",
    "4000", "5000", "10000", "20000", "30000", "40000", "50000", "+Inf"};

/* ---- random numbers (splitmix64; Box-Muller; Knuth / normal Poisson) ------------------ */

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static double unif(uint64_t *s) /* [0, 1) */
{
    return (double)(rnd(s) >> 11) * 0x1p-53;
}

static double gauss(uint64_t *s)
{
    double u = unif(s), v = unif(s);
    return sqrt(-2.0 * log(u + 0x1p-60)) * cos(2 * M_PI * v);
}

static double lognormal(uint64_t *s, double median, double sigma)
{
    return median * exp(sigma * gauss(s));
}

static uint64_t poisson(uint64_t *s, double mean)
{
    if (mean <= 0)
        return 0;
    if (mean < 30) {
        double l = exp(-mean), p = 1;
        uint64_t k = 0;
        do {
            k++;
            p *= unif(s);
        } while (p > l && k < 1000);
        return k - 1;
    }
    double x = mean + sqrt(mean) * gauss(s) + 0.5;
    return x < 0 ? 0 : (uint64_t)x;
}

static uint64_t binomial(uint64_t *s, uint64_t n, double p)
{
    if (n == 0 || p <= 0)
        return 0;
    if (p >= 1)
        return n;
    if (n < 40) {
        uint64_t k = 0;
        for (uint64_t i = 0; i < n; i++)
            k += unif(s) < p;
        return k;
    }
    double mean = (double)n * p;
    if (mean < 20) {
        uint64_t k = poisson(s, mean);
        return k > n ? n : k;
    }
    double x = mean + sqrt(mean * (1 - p)) * gauss(s) + 0.5;
    return x < 0 ? 0 : x > (double)n ? n : (uint64_t)x;
}

/* ---- latency distributions ------------------------------------------------------------ */

static double norm_cdf(double z)
{
    return 0.5 * erfc(-z / M_SQRT2);
}

static void latdist_init(struct latdist *d, double median, double sigma, double tail_p,
                         double tail_mult, double shift_ms)
{
    *d = (struct latdist){.median = median,
                          .sigma = sigma,
                          .tail_p = tail_p,
                          .tail_mult = tail_mult,
                          .shift_ms = shift_ms};
    for (int i = 0; i < NBUCKETS - 1; i++) {
        double x = bucket_le[i] - shift_ms;
        double f = 0;
        if (x > 0) {
            f = (1 - tail_p) * norm_cdf((log(x) - log(median)) / sigma) +
                tail_p * norm_cdf((log(x) - log(median * tail_mult)) / sigma);
        }
        d->cdf[i] = f;
    }
    d->mean =
        shift_ms + ((1 - tail_p) * median + tail_p * median * tail_mult) * exp(sigma * sigma / 2);
    static const double b7[7] = MESHSIM_B7_S;
    for (int i = 0; i < 7; i++) {
        double x = b7[i] * 1000 - shift_ms;
        d->cdf7[i] = x > 0 ? (1 - tail_p) * norm_cdf((log(x) - log(median)) / sigma) +
                                 tail_p * norm_cdf((log(x) - log(median * tail_mult)) / sigma)
                           : 0;
    }
}

static double latdist_sample(uint64_t *s, const struct latdist *d)
{
    double m = unif(s) < d->tail_p ? d->median * d->tail_mult : d->median;
    return d->shift_ms + lognormal(s, m, d->sigma);
}

/* Per-bucket (non-cumulative) increments for n responses, and the latency sum. */
static void latdist_fill(uint64_t *s, const struct latdist *d, uint64_t n, uint64_t inc[NBUCKETS],
                         double *sum)
{
    memset(inc, 0, NBUCKETS * sizeof *inc);
    *sum = 0;
    if (n <= 16) {
        for (uint64_t k = 0; k < n; k++) {
            double x = latdist_sample(s, d);
            int b = 0;
            while (b < NBUCKETS - 1 && x > bucket_le[b])
                b++;
            inc[b]++;
            *sum += x;
        }
        return;
    }
    double u = unif(s); /* one draw: floor(E_i + u) is monotone in E_i */
    uint64_t prev = 0;
    for (int i = 0; i < NBUCKETS - 1; i++) {
        uint64_t c = (uint64_t)floor((double)n * d->cdf[i] + u);
        if (c > n)
            c = n;
        if (c < prev)
            c = prev;
        inc[i] = c - prev;
        prev = c;
    }
    inc[NBUCKETS - 1] = n - prev;
    *sum = (double)n * d->mean * (1 + 0.05 * gauss(s) / sqrt((double)n));
}

/* ---- series and label sets ------------------------------------------------------------ */

static void lb_add(struct lbuild *lb, const char *k, const char *v)
{
    if (!v || !*v) /* Prometheus drops empty label values */
        return;
    if (lb->n >= MAX_LABELS)
        abort();
    lb->k[lb->n] = k;
    lb->v[lb->n] = v;
    lb->n++;
}

/* An empty value the proxy prints (srv_group="", dst_zone=""); series_new drops it again. */
static void lb_add_e(struct lbuild *lb, const char *k, const char *v)
{
    if (lb->n >= MAX_LABELS)
        abort();
    lb->k[lb->n] = k;
    lb->v[lb->n] = v ? v : "";
    lb->n++;
}

/* Copies the values into lb->own so the builder outlives its sources. */
static void lb_own(struct lbuild *lb)
{
    size_t total = 0;
    for (size_t i = 0; i < lb->n; i++)
        total += strlen(lb->v[i]) + 1;
    char *p = lb->own = mp_xmalloc(total ? total : 1);
    for (size_t i = 0; i < lb->n; i++) {
        size_t l = strlen(lb->v[i]) + 1;
        memcpy(p, lb->v[i], l);
        lb->v[i] = p;
        p += l;
    }
    size_t tl = 0;
    for (size_t i = 0; i < lb->n; i++)
        tl += strlen(lb->k[i]) + strlen(lb->v[i]) + 4;
    char *t = lb->text = mp_xmalloc(tl + 1);
    for (size_t i = 0; i < lb->n; i++)
        t += sprintf(t, "%s%s=\"%s\"", i ? "," : "", lb->k[i], lb->v[i]);
    lb->text_len = (size_t)(t - lb->text);
}

static void lb_fini(struct lbuild *lb)
{
    mp_free(lb->own);
    mp_free(lb->text);
    lb->own = NULL;
    lb->text = NULL;
}

struct pod;
static struct series *series_new(struct meshsim_gen *g, struct pod *p, const char *name,
                                 const struct lbuild *base, const char *k1, const char *v1,
                                 const char *k2, const char *v2, const char *k3, const char *v3);

/* ---- keys ----------------------------------------------------------------------------- */

void meshsim_gen_opts_init(struct meshsim_gen_opts *o)
{
    *o = (struct meshsim_gen_opts){.namespaces = 1,
                                   .deployments = 5,
                                   .replicas = 2,
                                   .peers = 2,
                                   .start_ms = INT64_C(1700006400000),
                                   .duration_ms = 6 * 3600 * 1000,
                                   .interval_ms = 10000,
                                   .jitter_ms = 0,
                                   .seed = 1,
                                   .churn = 0,
                                   .churn_every_ms = 15 * 60 * 1000};
}

static int cmp_label(const void *a, const void *b)
{
    const struct mp_str *x = a, *y = b;
    return mp_str_cmp(x[0], y[0]);
}

static struct series *series_new(struct meshsim_gen *g, struct pod *p, const char *name,
                                 const struct lbuild *base, const char *k1, const char *v1,
                                 const char *k2, const char *v2, const char *k3, const char *v3)
{
    if (g->expose) { /* render.c prints labels from the keys */
        struct series *s = mp_xcalloc(1, sizeof *s);
        s->id = g->next_id++;
        if (p->nser == p->cap) {
            p->cap = p->cap ? p->cap * 2 : 64;
            p->ser = mp_xrealloc(p->ser, p->cap * sizeof *p->ser);
        }
        p->ser[p->nser++] = s;
        g->st.series++;
        (void)name, (void)base, (void)k1, (void)v1, (void)k2, (void)v2, (void)k3, (void)v3;
        return s;
    }
    struct lbuild lb = {.n = 0};
    lb_add(&lb, "__name__", name);
    for (size_t i = 0; i < p->target.n; i++)
        lb_add(&lb, p->target.k[i], p->target.v[i]);
    if (base)
        for (size_t i = 0; i < base->n; i++)
            lb_add(&lb, base->k[i], base->v[i]);
    lb_add(&lb, k1, v1);
    lb_add(&lb, k2, v2);
    lb_add(&lb, k3, v3);
    size_t bytes = 0;
    for (size_t i = 0; i < lb.n; i++)
        bytes += strlen(lb.k[i]) + strlen(lb.v[i]);
    struct series *s = mp_xmalloc(sizeof *s + 2 * lb.n * sizeof(struct mp_str) + bytes);
    s->lbl = (struct mp_str *)(s + 1);
    char *str = (char *)(s->lbl + 2 * lb.n);
    for (size_t i = 0; i < lb.n; i++) {
        size_t kl = strlen(lb.k[i]), vl = strlen(lb.v[i]);
        memcpy(str, lb.k[i], kl);
        s->lbl[2 * i] = (struct mp_str){str, kl};
        str += kl;
        memcpy(str, lb.v[i], vl);
        s->lbl[2 * i + 1] = (struct mp_str){str, vl};
        str += vl;
    }
    s->nlbl = lb.n;
    qsort(s->lbl, lb.n, 2 * sizeof(struct mp_str), cmp_label);
    s->id = g->next_id++;
    s->v = 0;
    s->dead = false;
    if (p->nser == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 64;
        p->ser = mp_xrealloc(p->ser, p->cap * sizeof *p->ser);
    }
    p->ser[p->nser++] = s;
    g->st.series++;
    return s;
}

static void kill(struct series *s)
{
    if (s)
        s->dead = true;
}

/* A zeroed key of `size` bytes whose first member is its base label set (owned copy). */
static void *key_new(size_t size, const struct lbuild *base)
{
    struct lbuild *k = mp_xcalloc(1, size);
    *k = *base;
    lb_own(k);
    return k;
}

static struct hkey *hkey_new(const struct lbuild *base)
{
    return key_new(sizeof(struct hkey), base);
}

/* Drops the key; its series vanish from the next scrape on. */
static void hkey_free(struct hkey *h)
{
    if (!h)
        return;
    kill(h->req);
    for (int i = 0; i < h->nhist; i++) {
        for (int b = 0; b < NBUCKETS; b++)
            kill(h->hist[i].b[b]);
        kill(h->hist[i].count);
        kill(h->hist[i].sum);
    }
    for (int i = 0; i < h->nresp; i++)
        kill(h->resp[i].s);
    mp_free(h->ps);
    lb_fini(&h->base);
    mp_free(h);
}

static void hkey_requests(struct meshsim_gen *g, struct pod *p, struct hkey *h, uint64_t n,
                          const char *metric)
{
    if (!h->req)
        h->req = series_new(g, p, metric, &h->base, NULL, NULL, NULL, NULL, NULL, NULL);
    h->req->v += (double)n;
}

/* n responses of outcome oc with latencies from d. */
static void hkey_responses(struct meshsim_gen *g, struct pod *p, struct hkey *h,
                           const struct outcome *oc, uint64_t n, const struct latdist *d,
                           const char *prefix)
{
    if (n == 0)
        return;
    char name[64];
    int r = 0;
    while (r < h->nresp && h->resp[r].oc != oc)
        r++;
    if (r == h->nresp) {
        if (r == MAX_RESP)
            abort();
        snprintf(name, sizeof name, "%sresponse_total", prefix);
        h->resp[r].oc = oc;
        h->resp[r].s = series_new(g, p, name, &h->base, "classification", oc->cls, "grpc_status",
                                  oc->grpc, "status_code", oc->code);
        h->nresp++;
    }
    h->resp[r].s->v += (double)n;
    int k = 0;
    while (k < h->nhist && strcmp(h->hist[k].code, oc->code) != 0)
        k++;
    if (k == h->nhist) {
        if (k == MAX_HIST)
            abort();
        h->hist[k].code = oc->code;
        snprintf(name, sizeof name, "%sresponse_latency_ms_bucket", prefix);
        for (int b = 0; b < NBUCKETS; b++)
            h->hist[k].b[b] = series_new(g, p, name, &h->base, "le", meshsim_bucket_str[b],
                                         "status_code", oc->code, NULL, NULL);
        snprintf(name, sizeof name, "%sresponse_latency_ms_count", prefix);
        h->hist[k].count =
            series_new(g, p, name, &h->base, "status_code", oc->code, NULL, NULL, NULL, NULL);
        snprintf(name, sizeof name, "%sresponse_latency_ms_sum", prefix);
        h->hist[k].sum =
            series_new(g, p, name, &h->base, "status_code", oc->code, NULL, NULL, NULL, NULL);
        h->nhist++;
    }
    uint64_t inc[NBUCKETS];
    double sum;
    latdist_fill(&g->rng, d, n, inc, &sum);
    uint64_t cum = 0;
    for (int b = 0; b < NBUCKETS; b++) {
        cum += inc[b];
        h->hist[k].cum[b] += cum;
        h->hist[k].b[b]->v = (double)h->hist[k].cum[b];
    }
    h->hist[k].count->v = (double)h->hist[k].cum[NBUCKETS - 1];
    h->hist[k].sum->v += sum;
}

static struct tkey *tkey_new(const struct lbuild *base)
{
    return key_new(sizeof(struct tkey), base);
}

static void tkey_free(struct tkey *t)
{
    if (!t)
        return;
    kill(t->open_total);
    kill(t->open_conns);
    kill(t->rd);
    kill(t->wr);
    kill(t->close_ok);
    kill(t->close_reset);
    lb_fini(&t->base);
    mp_free(t);
}

static void tkey_open(struct meshsim_gen *g, struct pod *p, struct tkey *t, int n)
{
    if (!t->open_total) {
        t->open_total = series_new(g, p, "tcp_open_total", &t->base, 0, 0, 0, 0, 0, 0);
        t->open_conns = series_new(g, p, "tcp_open_connections", &t->base, 0, 0, 0, 0, 0, 0);
        t->rd = series_new(g, p, "tcp_read_bytes_total", &t->base, 0, 0, 0, 0, 0, 0);
        t->wr = series_new(g, p, "tcp_write_bytes_total", &t->base, 0, 0, 0, 0, 0, 0);
    }
    t->conns += n;
    t->open_total->v += n;
    t->open_conns->v = t->conns;
}

static void tkey_close(struct meshsim_gen *g, struct pod *p, struct tkey *t, int n, bool reset)
{
    struct series **s = reset ? &t->close_reset : &t->close_ok;
    if (!*s)
        *s = series_new(g, p, "tcp_close_total", &t->base, "errno", reset ? "ECONNRESET" : "", 0, 0,
                        0, 0);
    (*s)->v += n;
    t->conns -= n;
    t->open_conns->v = t->conns;
}

static void tkey_bytes(struct tkey *t, double rd, double wr)
{
    t->rd->v += floor(rd);
    t->wr->v += floor(wr);
}

/* ---- names ---------------------------------------------------------------------------- */

static const char *const dep_names[] = {
    "web",     "api",    "auth",      "cart",   "catalog",  "checkout",  "emoji",
    "voting",  "search", "users",     "orders", "payments", "inventory", "shipping",
    "reviews", "ads",    "recommend", "email",  "profile",  "pricing"};
#define NDEPNAMES (sizeof dep_names / sizeof dep_names[0])

/* Kubernetes' SafeEncodeString alphabet for generated names. */
static void k8s_suffix(uint64_t *s, char *out, int n)
{
    static const char alpha[] = "bcdfghjklmnpqrstvwxz2456789";
    for (int i = 0; i < n; i++)
        out[i] = alpha[rnd(s) % (sizeof alpha - 1)];
    out[n] = 0;
}

/* ---- prometheus-client families (expose mode) -------------------------------------------- */

static struct pstate *pstate_new(const struct outcome *oc, int noc, bool grpc)
{
    struct pstate *ps = mp_xcalloc(1, sizeof *ps);
    ps->oc = oc;
    ps->noc = noc;
    ps->grpc = grpc;
    return ps;
}

/* c responses of outcome j with latencies from d; the cumulative bucket counts are expected
 * values rounded to nearest, which stays monotone in the bound. */
static void pstate_add(struct pstate *ps, int j, uint64_t c, const struct latdist *d, double req_b,
                       double resp_b)
{
    static const double f3[3] = MESHSIM_F3;
    static const int b4_in_b7[4] = {1, 4, 5, 6}; /* 0.05, 0.5, 1, 10 s */
    if (c == 0)
        return;
    if (j >= 0 && j < ps->noc)
        ps->st[j] += c;
    double n = (double)c;
    for (int i = 0; i < 7; i++)
        ps->d7[i] += (uint64_t)floor(n * d->cdf7[i] + 0.5);
    for (int i = 0; i < 4; i++)
        ps->d4[i] += (uint64_t)floor(n * d->cdf7[b4_in_b7[i]] + 0.5);
    ps->dn += c;
    ps->d7_sum += n * d->mean / 1000;
    ps->d4_sum += n * d->mean / 1000;
    for (int i = 0; i < 3; i++) {
        ps->f_req[i] += req_b <= f3[i] ? c : 0;
        ps->f_resp[i] += resp_b <= f3[i] ? c : 0;
    }
    ps->f_req_sum += n * floor(req_b);
    ps->f_resp_sum += n * floor(resp_b);
}

/* ---- pods ----------------------------------------------------------------------------- */

static void pod_add_conns(struct pod *p, int n)
{
    p->fd_base += 2 * n;
}

static void open_conn(struct meshsim_gen *g, struct pod *p, struct tkey *t, int n)
{
    tkey_open(g, p, t, n);
    pod_add_conns(p, n);
}

static void close_conn(struct meshsim_gen *g, struct pod *p, struct tkey *t, int n, bool reset)
{
    tkey_close(g, p, t, n, reset);
    pod_add_conns(p, -n);
}

static struct hkey *make_admin_key(struct pod *p, bool probe)
{
    struct lbuild b = {.n = 0};
    lb_add(&b, "direction", "inbound");
    lb_add(&b, "target_addr", p->addr_admin);
    lb_add(&b, "target_ip", p->ip);
    lb_add(&b, "target_port", p->admin_port);
    if (probe) {
        lb_add(&b, "tls", "no_identity");
        lb_add(&b, "no_tls_reason", "no_tls_from_remote");
    } else {
        lb_add(&b, "tls", "true");
        lb_add(&b, "client_id",
               "prometheus.linkerd-viz.serviceaccount.identity.linkerd.cluster.local");
    }
    lb_add_e(&b, "srv_group", "");
    lb_add(&b, "srv_kind", "default");
    lb_add(&b, "srv_name", "all-unauthenticated");
    lb_add(&b, "srv_port", p->admin_port);
    lb_add_e(&b, "route_group", "");
    lb_add(&b, "route_kind", "default");
    lb_add(&b, "route_name", probe ? "probe" : "default");
    lb_add_e(&b, "authz_group", "");
    lb_add(&b, "authz_kind", "default");
    lb_add(&b, "authz_name", probe ? "probe" : "all-unauthenticated");
    return hkey_new(&b);
}

static struct tkey *make_admin_tcp(struct pod *p, bool probe)
{
    struct lbuild b = {.n = 0};
    lb_add(&b, "direction", "inbound");
    lb_add(&b, "peer", "src");
    lb_add(&b, "target_addr", p->addr_admin);
    lb_add(&b, "target_ip", p->ip);
    lb_add(&b, "target_port", p->admin_port);
    lb_add(&b, "tls", probe ? "no_identity" : "true");
    lb_add(&b, probe ? "no_tls_reason" : "client_id",
           probe ? "no_tls_from_remote"
                 : "prometheus.linkerd-viz.serviceaccount.identity.linkerd.cluster.local");
    lb_add_e(&b, "srv_group", "");
    lb_add(&b, "srv_kind", "default");
    lb_add(&b, "srv_name", "all-unauthenticated");
    lb_add(&b, "srv_port", p->admin_port);
    return tkey_new(&b);
}

static const char *const ctl_addr[3] = {
    "linkerd-dst-headless.linkerd.svc.cluster.local.:8086",
    "linkerd-policy.linkerd.svc.cluster.local.:8090",
    "linkerd-identity-headless.linkerd.svc.cluster.local.:8080"};
static const char *const ctl_id[3] = {
    "linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local",
    "linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local",
    "linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local"};

static struct pod *pod_create(struct meshsim_gen *g, int d, int slot, int64_t born_ms)
{
    struct dep *dp = &g->deps[d];
    struct pod *p = mp_xcalloc(1, sizeof *p);
    p->dep = d;
    p->slot = slot;
    char sfx[8];
    k8s_suffix(&g->rng, sfx, 5);
    snprintf(p->hash, sizeof p->hash, "%s", dp->hash);
    snprintf(p->name, sizeof p->name, "%s-%s-%s", dp->name, dp->hash, sfx);
    uint64_t c = g->pod_counter++;
    p->uid = c;
    if (g->next_ip) {
        /* loopback addresses in order, skipping .0 and .255 (new pods get new IPs) */
        while ((g->next_ip & 0xff) == 0 || (g->next_ip & 0xff) == 0xff)
            g->next_ip++;
        p->ip_u32 = g->next_ip++;
        snprintf(p->ip, sizeof p->ip, "%u.%u.%u.%u", p->ip_u32 >> 24, (p->ip_u32 >> 16) & 0xff,
                 (p->ip_u32 >> 8) & 0xff, p->ip_u32 & 0xff);
    } else {
        snprintf(p->ip, sizeof p->ip, "10.244.%u.%u", (unsigned)(c / 250 % 250),
                 (unsigned)(c % 250 + 2));
    }
    snprintf(p->admin_port, sizeof p->admin_port, "%u", (unsigned)g->admin_port);
    snprintf(p->instance, sizeof p->instance, "%s:%s", p->ip, p->admin_port);
    snprintf(p->addr_app, sizeof p->addr_app, "%s:8080", p->ip);
    snprintf(p->addr_admin, sizeof p->addr_admin, "%s:%s", p->ip, p->admin_port);
    p->born_ms = born_ms;
    p->offset_ms = (int64_t)(rnd(&g->rng) % (uint64_t)g->o.interval_ms);
    p->rss = 4096.0 * floor(unif(&g->rng) * 12000 + 2500);
    p->vms = 4096.0 * floor(unif(&g->rng) * 10000 + 20000);
    p->cpu_ticks = 0;
    p->fd_base = 20;
    p->cert_issued_s = (double)born_ms / 1000 + 3;
    snprintf(p->start_s, sizeof p->start_s, "%.2f", floor((double)born_ms / 10) / 100);
    lb_add(&p->target, "job", "linkerd-proxy");
    lb_add(&p->target, "instance", p->instance);
    lb_add(&p->target, "namespace", dp->ns_name);
    lb_add(&p->target, "pod", p->name);
    lb_add(&p->target, "deployment", dp->name);
    lb_add(&p->target, "pod_template_hash", p->hash);
    lb_add(&p->target, "app", dp->app);
    lb_add(&p->target, "version", dp->version);
    lb_add(&p->target, "control_plane_ns", "linkerd");
    lb_add(&p->target, "workload_ns", dp->ns_name);
    /* p->target borrows p's and dp's strings, which live as long as p */
    int R = g->o.replicas;
    p->out = mp_xcalloc((size_t)(dp->nedges * R + 1), sizeof *p->out);
    p->out_dst = mp_xcalloc((size_t)(dp->nedges * R + 1), sizeof *p->out_dst);
    p->out_src = mp_xcalloc((size_t)dp->nedges + 1, sizeof *p->out_src);
    p->in = mp_xcalloc((size_t)dp->ncallers + 1, sizeof *p->in);
    p->in_src = mp_xcalloc((size_t)dp->ncallers + 1, sizeof *p->in_src);
    p->admin_prom = make_admin_key(p, false);
    p->admin_probe = make_admin_key(p, true);
    if (g->expose) {
        p->admin_prom->ps = pstate_new(&g->admin_oc, 1, false);
        p->admin_probe->ps = pstate_new(&g->admin_oc, 1, false);
        p->pol = mp_xcalloc((size_t)dp->nedges + 1, sizeof *p->pol);
        for (int i = 0; i < dp->nedges; i++) {
            const struct edge *e = &g->edges[dp->edges[i]];
            p->pol[i] = (struct pstate){.oc = e->oc, .noc = e->noc, .grpc = e->grpc};
            p->pol[i].adds = (uint64_t)g->o.replicas; /* the balancer's initial endpoints */
        }
    }
    p->admin_prom_tcp = make_admin_tcp(p, false);
    p->admin_probe_tcp = make_admin_tcp(p, true);
    for (int i = 0; i < 3; i++) {
        struct lbuild b = {.n = 0};
        lb_add(&b, "addr", ctl_addr[i]);
        lb_add(&b, "tls", "true");
        lb_add(&b, "server_id", ctl_id[i]);
        p->ctl[i] = hkey_new(&b);
    }
    {
        struct lbuild b = {.n = 0};
        lb_add(&b, "direction", "inbound");
        lb_add(&b, "peer", "dst");
        lb_add(&b, "tls", "no_identity");
        lb_add(&b, "no_tls_reason", "loopback");
        p->in_dst = tkey_new(&b);
    }
    p->p_start = series_new(g, p, "process_start_time_seconds", NULL, 0, 0, 0, 0, 0, 0);
    p->p_start->v = strtod(p->start_s, NULL);
    p->p_cpu = series_new(g, p, "process_cpu_seconds_total", NULL, 0, 0, 0, 0, 0, 0);
    p->p_rss = series_new(g, p, "process_resident_memory_bytes", NULL, 0, 0, 0, 0, 0, 0);
    p->p_vms = series_new(g, p, "process_virtual_memory_bytes", NULL, 0, 0, 0, 0, 0, 0);
    p->p_fds = series_new(g, p, "process_open_fds", NULL, 0, 0, 0, 0, 0, 0);
    p->p_maxfds = series_new(g, p, "process_max_fds", NULL, 0, 0, 0, 0, 0, 0);
    p->p_maxfds->v = 1048576;
    p->p_threads = series_new(g, p, "process_threads", NULL, 0, 0, 0, 0, 0, 0);
    p->p_threads->v = 2;
    p->p_uptime = series_new(g, p, "process_uptime_seconds_total", NULL, 0, 0, 0, 0, 0, 0);
    {
        struct lbuild b = {.n = 0};
        lb_add(&b, "date", "2026-05-28T18:02:11Z");
        lb_add(&b, "git_sha", "5f3c9a1");
        lb_add(&b, "profile", "release");
        lb_add(&b, "vendor", "linkerd");
        /* the target label `version` wins; Prometheus renames the exposed one */
        lb_add(&b, "exported_version", "v2.359.0");
        p->p_build = series_new(g, p, "proxy_build_info", &b, 0, 0, 0, 0, 0, 0);
        p->p_build->v = 1;
    }
    p->p_cert_exp = series_new(g, p, "control_identity_cert_expiration_timestamp_seconds", NULL, 0,
                               0, 0, 0, 0, 0);
    p->p_cert_ref =
        series_new(g, p, "control_identity_cert_refresh_timestamp_seconds", NULL, 0, 0, 0, 0, 0, 0);
    p->p_cert_cnt =
        series_new(g, p, "control_identity_cert_refreshes_total", NULL, "result", "ok", 0, 0, 0, 0);
    p->p_cert_cnt->v = 1;
    /* the Prometheus scrape connection is long-lived */
    open_conn(g, p, p->admin_prom_tcp, 1);
    g->st.pods++;
    return p;
}

static void pod_destroy(struct meshsim_gen *g, struct pod *p)
{
    if (!p)
        return;
    const struct dep *dp = &g->deps[p->dep];
    size_t nout = (size_t)(dp->nedges * g->o.replicas);
    /* keys first (they mark their series dead), then every series */
    for (size_t i = 0; i < nout; i++) {
        hkey_free(p->out[i]);
        tkey_free(p->out_dst[i]);
    }
    for (int i = 0; i < dp->nedges; i++)
        tkey_free(p->out_src[i]);
    for (int i = 0; i < dp->ncallers; i++) {
        hkey_free(p->in[i]);
        tkey_free(p->in_src[i]);
    }
    for (size_t i = 0; i < p->nretired_h; i++)
        hkey_free(p->retired_h[i]);
    for (size_t i = 0; i < p->nretired_t; i++)
        tkey_free(p->retired_t[i]);
    tkey_free(p->in_dst);
    hkey_free(p->admin_prom);
    hkey_free(p->admin_probe);
    tkey_free(p->admin_prom_tcp);
    tkey_free(p->admin_probe_tcp);
    for (int i = 0; i < 3; i++)
        hkey_free(p->ctl[i]);
    for (size_t i = 0; i < p->nser; i++)
        mp_free(p->ser[i]);
    mp_free(p->ser);
    mp_free(p->out);
    mp_free(p->out_dst);
    mp_free(p->out_src);
    mp_free(p->in);
    mp_free(p->in_src);
    mp_free(p->retired_h);
    mp_free(p->retired_t);
    mp_free(p->pol);
    mp_free(p);
}

/* ---- topology ------------------------------------------------------------------------- */

static double log_uniform(uint64_t *s, double lo, double hi)
{
    return lo * exp(unif(s) * log(hi / lo));
}

static void edge_init(struct meshsim_gen *g, struct edge *e, int from, int to)
{
    uint64_t *s = &g->rng;
    e->from = from;
    e->to = to;
    e->rps = lognormal(s, 5, 1.0);
    if (e->rps > 500)
        e->rps = 500;
    e->grpc = unif(s) < 0.4;
    double u = unif(s), sr;
    if (u < 0.94)
        sr = 0.999 + 0.001 * unif(s);
    else if (u < 0.99)
        sr = 0.97 + 0.029 * unif(s);
    else
        sr = 0.6 + 0.35 * unif(s);
    double fail = 1 - sr;
    int n = 0;
    if (e->grpc) {
        e->oc[n++] = (struct outcome){"200", "success", "0", sr};
        e->oc[n++] = (struct outcome){"200", "failure", "2", fail * 0.7};
        e->oc[n++] = (struct outcome){"200", "failure", "14", fail * 0.3};
    } else {
        double p404 = unif(s) < 0.3 ? 0.001 + 0.009 * unif(s) : 0;
        e->oc[n++] = (struct outcome){"200", "success", "", sr - p404};
        if (p404 > 0)
            e->oc[n++] = (struct outcome){"404", "success", "", p404};
        e->oc[n++] = (struct outcome){"500", "failure", "", fail * 0.7};
        e->oc[n++] = (struct outcome){"503", "failure", "", fail * 0.3};
    }
    e->noc = n;
    const struct latdist *srv = &g->deps[to].server;
    latdist_init(&e->out, srv->median, srv->sigma, srv->tail_p, srv->tail_mult, 0.3);
    e->req_b = log_uniform(s, 200, 2000);
    e->resp_b = log_uniform(s, 200, 20000);
}

static int add_edge(struct meshsim_gen *g, int from, int to)
{
    if (g->nedges == g->cap_edges) {
        g->cap_edges = g->cap_edges ? g->cap_edges * 2 : 16;
        g->edges = mp_xrealloc(g->edges, (size_t)g->cap_edges * sizeof *g->edges);
    }
    edge_init(g, &g->edges[g->nedges], from, to);
    return g->nedges++;
}

static void push_int(int **arr, int *n, int v)
{
    *arr = mp_xrealloc(*arr, (size_t)(*n + 1) * sizeof **arr);
    (*arr)[(*n)++] = v;
}

static void new_hash(struct meshsim_gen *g, struct dep *d)
{
    k8s_suffix(&g->rng, d->hash, 10);
}

static void build_topology(struct meshsim_gen *g)
{
    const struct meshsim_gen_opts *o = &g->o;
    g->ndeps = o->namespaces * o->deployments;
    g->deps = mp_xcalloc((size_t)g->ndeps, sizeof *g->deps);
    for (int n = 0; n < o->namespaces; n++) {
        for (int j = 0; j < o->deployments; j++) {
            struct dep *d = &g->deps[n * o->deployments + j];
            d->ns = n;
            d->tier =
                j == 0 ? 0
                       : 1 + (j - 1) * (TIERS - 1) / (o->deployments > 1 ? o->deployments - 1 : 1);
            snprintf(d->ns_name, sizeof d->ns_name, "app-%02d", n);
            if (j == 0)
                snprintf(d->name, sizeof d->name, "load-gen");
            else if ((size_t)(j - 1) < NDEPNAMES)
                snprintf(d->name, sizeof d->name, "%s", dep_names[j - 1]);
            else
                snprintf(d->name, sizeof d->name, "%s-%d", dep_names[(j - 1) % NDEPNAMES],
                         (int)((size_t)(j - 1) / NDEPNAMES));
            snprintf(d->svc, sizeof d->svc, "%s-svc", d->name);
            snprintf(d->app, sizeof d->app, "%s", d->name);
            snprintf(d->sa, sizeof d->sa, "%s", d->name);
            d->has_svc = true;
            d->svc_port = 8080;
            snprintf(d->sa_id, sizeof d->sa_id,
                     "%s.%s.serviceaccount.identity.linkerd.cluster.local", d->name, d->ns_name);
            snprintf(d->authority, sizeof d->authority, "%s.%s.svc.cluster.local:8080", d->svc,
                     d->ns_name);
            snprintf(d->version, sizeof d->version, "v%d", 1 + (int)(rnd(&g->rng) % 12));
            new_hash(g, d);
            /* server time: deeper tiers are faster (5.2) */
            double med = d->tier <= 1   ? log_uniform(&g->rng, 8, 20)
                         : d->tier == 2 ? log_uniform(&g->rng, 4, 10)
                                        : log_uniform(&g->rng, 2, 5);
            latdist_init(&d->server, med, 0.5 + 0.7 * unif(&g->rng), 0.001 + 0.009 * unif(&g->rng),
                         10 + 40 * unif(&g->rng), 0);
            d->pool = 2 + (int)(rnd(&g->rng) % 7);
        }
    }
    /* edges: tier t -> K services of tier t+1; the load generator calls all of tier 1 */
    for (int a = 0; a < g->ndeps; a++) {
        struct dep *d = &g->deps[a];
        int cand[4096], nc = 0;
        for (int b = 0; b < g->ndeps && nc < 4096; b++) {
            const struct dep *t = &g->deps[b];
            if (t->tier != d->tier + 1)
                continue;
            bool same = t->ns == d->ns;
            /* other namespaces' services are candidates for 10% of picks */
            if (same || o->namespaces > 1)
                cand[nc++] = b;
        }
        if (d->tier == 0) {
            for (int b = 0; b < g->ndeps; b++) {
                if (g->deps[b].tier != 1 || g->deps[b].ns != d->ns)
                    continue;
                int e = add_edge(g, a, b);
                push_int(&d->edges, &d->nedges, e);
                push_int(&g->deps[b].callers, &g->deps[b].ncallers, e);
            }
            continue;
        }
        int want = o->peers;
        for (int k = 0; k < want && nc > 0; k++) {
            /* prefer the own namespace; cross with probability 0.1 */
            bool cross = o->namespaces > 1 && unif(&g->rng) < 0.1;
            int pick = -1;
            for (int tries = 0; tries < 64 && pick < 0; tries++) {
                int i = (int)(rnd(&g->rng) % (uint64_t)nc);
                if (cand[i] >= 0 && ((g->deps[cand[i]].ns == d->ns) != cross || tries > 32))
                    pick = i;
            }
            if (pick < 0)
                break;
            int e = add_edge(g, a, cand[pick]);
            push_int(&d->edges, &d->nedges, e);
            push_int(&g->deps[cand[pick]].callers, &g->deps[cand[pick]].ncallers, e);
            cand[pick] = -1;
        }
    }
}

/* Emojivoto (linkerd-workload.md 5.1): vote-bot -> web (HTTP/1.1, 2 rps: /api/list and
 * /api/vote), web -> emoji (gRPC, 2 rps, all OK), web -> voting (gRPC, 1 rps, VoteDoughnut
 * fails with grpc-status 2 at P = 0.1585, so web answers the bot 500 at half that). */
static void build_emojivoto(struct meshsim_gen *g)
{
    static const struct {
        const char *name, *app, *sa, *svc;
        int tier, svc_port;
        double median, sigma;
    } w[4] = {{"vote-bot", "vote-bot", "default", NULL, 0, 0, 1, 0.5},
              {"web", "web-svc", "web", "web-svc", 1, 80, 2, 0.8},
              {"emoji", "emoji-svc", "emoji", "emoji-svc", 2, 8080, 0.6, 0.6},
              {"voting", "voting-svc", "voting", "voting-svc", 2, 8080, 0.6, 0.6}};
    const double p_doughnut = 0.1585;
    g->ndeps = 4;
    g->deps = mp_xcalloc(4, sizeof *g->deps);
    for (int j = 0; j < 4; j++) {
        struct dep *d = &g->deps[j];
        d->tier = w[j].tier;
        snprintf(d->name, sizeof d->name, "%s", w[j].name);
        snprintf(d->ns_name, sizeof d->ns_name, "emojivoto");
        snprintf(d->app, sizeof d->app, "%s", w[j].app);
        snprintf(d->sa, sizeof d->sa, "%s", w[j].sa);
        d->has_svc = w[j].svc != NULL;
        d->svc_port = w[j].svc_port;
        snprintf(d->svc, sizeof d->svc, "%s", w[j].svc ? w[j].svc : "");
        snprintf(d->sa_id, sizeof d->sa_id,
                 "%s.emojivoto.serviceaccount.identity.linkerd.cluster.local", d->sa);
        snprintf(d->authority, sizeof d->authority, "%s.emojivoto.svc.cluster.local:%d", d->svc,
                 d->svc_port);
        snprintf(d->version, sizeof d->version, "v11");
        new_hash(g, d);
        latdist_init(&d->server, w[j].median, w[j].sigma, 0.001, 10, 0);
        d->pool = 2 + (int)(rnd(&g->rng) % 7);
    }
    static const struct {
        int from, to;
        double rps, req_b, resp_b;
        bool grpc;
    } ed[3] = {{0, 1, 2, 180, 4200, false}, {1, 2, 2, 60, 3100, true}, {1, 3, 1, 60, 40, true}};
    for (int k = 0; k < 3; k++) {
        if (g->nedges == g->cap_edges) {
            g->cap_edges = g->cap_edges ? g->cap_edges * 2 : 16;
            g->edges = mp_xrealloc(g->edges, (size_t)g->cap_edges * sizeof *g->edges);
        }
        struct edge *e = &g->edges[g->nedges];
        *e = (struct edge){.from = ed[k].from,
                           .to = ed[k].to,
                           .rps = ed[k].rps,
                           .grpc = ed[k].grpc,
                           .req_b = ed[k].req_b,
                           .resp_b = ed[k].resp_b};
        if (k == 0) {
            e->oc[0] = (struct outcome){"200", "success", "", 1 - p_doughnut / 2};
            e->oc[1] = (struct outcome){"500", "failure", "", p_doughnut / 2};
            e->noc = 2;
        } else if (k == 1) {
            e->oc[0] = (struct outcome){"200", "success", "0", 1};
            e->noc = 1;
        } else {
            e->oc[0] = (struct outcome){"200", "success", "0", 1 - p_doughnut};
            e->oc[1] = (struct outcome){"200", "failure", "2", p_doughnut};
            e->noc = 2;
        }
        const struct latdist *srv = &g->deps[e->to].server;
        latdist_init(&e->out, srv->median, srv->sigma, srv->tail_p, srv->tail_mult, 0.3);
        push_int(&g->deps[e->from].edges, &g->deps[e->from].nedges, g->nedges);
        push_int(&g->deps[e->to].callers, &g->deps[e->to].ncallers, g->nedges);
        g->nedges++;
    }
}

static int edge_local_out(const struct dep *d, int e)
{
    for (int i = 0; i < d->nedges; i++)
        if (d->edges[i] == e)
            return i;
    abort();
}

static int edge_local_in(const struct dep *d, int e)
{
    for (int i = 0; i < d->ncallers; i++)
        if (d->callers[i] == e)
            return i;
    abort();
}

/* ---- keys for traffic ----------------------------------------------------------------- */

/* The outbound endpoint labels (1.3, 1.5); tcp keys add peer="dst". */
static void out_labels(struct lbuild *b, const struct dep *E, const struct pod *s, bool tcp)
{
    lb_add(b, "direction", "outbound");
    if (tcp)
        lb_add(b, "peer", "dst");
    lb_add(b, "authority", E->authority);
    lb_add(b, "target_addr", s->addr_app);
    lb_add(b, "target_ip", s->ip);
    lb_add(b, "target_port", "8080");
    lb_add(b, "tls", "true");
    lb_add(b, "server_id", E->sa_id);
    lb_add(b, "dst_control_plane_ns", "linkerd");
    lb_add(b, "dst_deployment", E->name);
    lb_add(b, "dst_namespace", E->ns_name);
    lb_add(b, "dst_pod", s->name);
    lb_add(b, "dst_pod_template_hash", s->hash);
    lb_add(b, "dst_service", E->svc);
    lb_add(b, "dst_serviceaccount", E->sa);
    lb_add_e(b, "dst_zone", "");
}

static struct tkey *out_src_key(int to)
{
    char addr[32], ip[24];
    snprintf(ip, sizeof ip, "10.96.%d.%d", to / 250 % 250, to % 250 + 1);
    snprintf(addr, sizeof addr, "%s:80", ip);
    struct lbuild b = {.n = 0};
    lb_add(&b, "direction", "outbound");
    lb_add(&b, "peer", "src");
    lb_add(&b, "target_addr", addr);
    lb_add(&b, "target_ip", ip);
    lb_add(&b, "target_port", "80");
    lb_add(&b, "tls", "no_identity");
    lb_add(&b, "no_tls_reason", "loopback");
    return tkey_new(&b);
}

static void in_labels(struct lbuild *b, const struct pod *s, const struct dep *D, bool tcp)
{
    lb_add(b, "direction", "inbound");
    if (tcp)
        lb_add(b, "peer", "src");
    lb_add(b, "target_addr", s->addr_app);
    lb_add(b, "target_ip", s->ip);
    lb_add(b, "target_port", "8080");
    lb_add(b, "tls", "true");
    lb_add(b, "client_id", D->sa_id);
    lb_add_e(b, "srv_group", "");
    lb_add(b, "srv_kind", "default");
    lb_add(b, "srv_name", "all-unauthenticated");
    lb_add(b, "srv_port", "8080");
    if (tcp)
        return;
    lb_add_e(b, "route_group", "");
    lb_add(b, "route_kind", "default");
    lb_add(b, "route_name", "default");
    lb_add_e(b, "authz_group", "");
    lb_add(b, "authz_kind", "default");
    lb_add(b, "authz_name", "all-unauthenticated");
}

/* ---- simulation step ------------------------------------------------------------------ */

/* n requests on key h split into outcomes; in expose mode also counted on h's and extra's
 * prometheus-client families (request and response sizes req_b, resp_b). */
static void record(struct meshsim_gen *g, struct pod *p, struct hkey *h, const struct outcome *oc,
                   int noc, uint64_t n, const struct latdist *d, const char *prefix,
                   struct pstate *extra, double req_b, double resp_b)
{
    char name[64];
    snprintf(name, sizeof name, "%srequest_total", prefix);
    hkey_requests(g, p, h, n, name);
    if (h->ps)
        h->ps->req += n;
    if (extra)
        extra->req += n;
    uint64_t left = n;
    double pleft = 1;
    for (int j = 0; j < noc && left > 0; j++) {
        uint64_t c = j == noc - 1 ? left : binomial(&g->rng, left, oc[j].p / pleft);
        pleft -= oc[j].p;
        left -= c;
        hkey_responses(g, p, h, &oc[j], c, d, prefix);
        if (h->ps)
            pstate_add(h->ps, j, c, d, req_b, resp_b);
        if (extra)
            pstate_add(extra, j, c, d, req_b, resp_b);
    }
}

static void traffic(struct meshsim_gen *g, int ei, int64_t dt_ms)
{
    struct edge *e = &g->edges[ei];
    struct dep *D = &g->deps[e->from], *E = &g->deps[e->to];
    int R = g->o.replicas, lo = edge_local_out(D, ei), li = edge_local_in(E, ei);
    double dt_s = (double)dt_ms / 1000;
    for (int cs = 0; cs < R; cs++) {
        struct pod *c = g->pods[e->from * R + cs];
        for (int ss = 0; ss < R; ss++) {
            struct pod *s = g->pods[e->to * R + ss];
            uint64_t n = poisson(&g->rng, e->rps / R * dt_s);
            if (n == 0)
                continue;
            int idx = lo * R + ss;
            if (!c->out[idx]) {
                struct lbuild b = {.n = 0};
                out_labels(&b, E, s, false);
                c->out[idx] = hkey_new(&b);
                b.n = 0;
                out_labels(&b, E, s, true);
                c->out_dst[idx] = tkey_new(&b);
            }
            if (!c->out_src[lo])
                c->out_src[lo] = out_src_key(e->to);
            if (!s->in[li]) {
                struct lbuild b = {.n = 0};
                in_labels(&b, s, D, false);
                s->in[li] = hkey_new(&b);
                if (g->expose)
                    s->in[li]->ps = pstate_new(e->oc, e->noc, e->grpc);
                b.n = 0;
                in_labels(&b, s, D, true);
                s->in_src[li] = tkey_new(&b);
            }
            struct tkey *tc = c->out_dst[idx], *ts = s->in_src[li];
            /* one meshed connection per client pod -> server pod, recycled about hourly */
            if (tc->conns == 0) {
                open_conn(g, c, tc, 1);
                open_conn(g, s, ts, 1);
            } else if (unif(&g->rng) < dt_s / 3600) {
                bool reset = unif(&g->rng) < 0.05;
                close_conn(g, c, tc, 1, reset);
                close_conn(g, s, ts, 1, reset);
                open_conn(g, c, tc, 1);
                open_conn(g, s, ts, 1);
            }
            /* app <-> proxy pools on loopback, recycled every few minutes */
            struct tkey *loops[2] = {c->out_src[lo], s->in_dst};
            struct pod *lp[2] = {c, s};
            for (int k = 0; k < 2; k++) {
                if (loops[k]->conns == 0)
                    open_conn(g, lp[k], loops[k], D->pool);
                else if (unif(&g->rng) < dt_s / 300) {
                    close_conn(g, lp[k], loops[k], 1, false);
                    open_conn(g, lp[k], loops[k], 1);
                }
            }
            record(g, c, c->out[idx], e->oc, e->noc, n, &e->out, "", c->pol ? &c->pol[lo] : NULL,
                   e->req_b, e->resp_b);
            record(g, s, s->in[li], e->oc, e->noc, n, &E->server, "", NULL, e->req_b, e->resp_b);
            double rq = (double)n * e->req_b * (1 + 0.1 * gauss(&g->rng));
            double rs = (double)n * e->resp_b * (1 + 0.2 * gauss(&g->rng));
            rq = rq < 0 ? 0 : rq;
            rs = rs < 0 ? 0 : rs;
            tkey_bytes(tc, rs * 1.03, rq * 1.03);
            tkey_bytes(ts, rq * 1.03, rs * 1.03);
            tkey_bytes(c->out_src[lo], rq, rs);
            tkey_bytes(s->in_dst, rs, rq);
            c->cpu_ticks += (double)n * 0.004; /* ~40 us of proxy CPU per request */
            s->cpu_ticks += (double)n * 0.004;
        }
    }
}

static void admin_and_process(struct meshsim_gen *g, struct pod *p, int64_t dt_ms, int64_t now_ms)
{
    double dt_s = (double)dt_ms / 1000;
    /* one Prometheus scrape per interval, two kubelet probes per 10 s */
    /* carried, so 1 s simulator ticks see one scrape per interval too (generator steps are
     * whole intervals: the carry stays 0 there) */
    p->scrape_carry += (double)dt_ms / (double)g->o.interval_ms;
    uint64_t scrapes = (uint64_t)p->scrape_carry;
    p->scrape_carry -= (double)scrapes;
    p->admin_carry += 2 * dt_s / 10;
    uint64_t probes = (uint64_t)p->admin_carry;
    p->admin_carry -= (double)probes;
    record(g, p, p->admin_prom, &g->admin_oc, 1, scrapes, &g->admin_lat, "", NULL, 280,
           25.0 * (double)p->nser);
    record(g, p, p->admin_probe, &g->admin_oc, 1, probes, &g->probe_lat, "", NULL, 118, 121);
    tkey_bytes(p->admin_prom_tcp, (double)scrapes * 280, (double)scrapes * 25.0 * (double)p->nser);
    if (probes > 0) { /* each probe is a new plaintext HTTP/1 connection */
        open_conn(g, p, p->admin_probe_tcp, (int)probes);
        tkey_bytes(p->admin_probe_tcp, (double)probes * 118, (double)probes * 121);
        close_conn(g, p, p->admin_probe_tcp, (int)probes, false);
    }
    /* control-plane streams: occasional responses */
    for (int i = 0; i < 3; i++) {
        uint64_t n = poisson(&g->rng, (i == 2 ? 0.0001 : 0.02) * dt_s);
        if (n > 0)
            record(g, p, p->ctl[i], &g->ctl_oc, 1, n, &g->ctl_lat, "control_", NULL, 0, 0);
    }
    /* process: CPU in clock ticks (10 ms), RSS in pages, fds follow connections */
    p->cpu_ticks += dt_s * 0.2 * lognormal(&g->rng, 1, 0.2);
    p->p_cpu->v = floor(p->cpu_ticks) / 100;
    if (unif(&g->rng) < 0.3)
        p->rss += 4096 * round(3 * gauss(&g->rng));
    if (p->rss < 8e6)
        p->rss = 8e6;
    p->p_rss->v = p->rss;
    if (unif(&g->rng) < 0.01)
        p->vms += 4096.0 * 256 * (double)((int)(rnd(&g->rng) % 9) - 4);
    p->p_vms->v = p->vms;
    p->p_fds->v = p->fd_base;
    double now_s = (double)now_ms / 1000;
    if (now_s > p->cert_issued_s + 0.7 * 86400) {
        p->cert_issued_s = now_s;
        p->p_cert_cnt->v += 1;
    }
    p->p_cert_exp->v = floor(p->cert_issued_s) + 86400;
    p->p_cert_ref->v = floor(p->cert_issued_s * 1000) / 1000;
}

static void **retire_push(void **arr, size_t *n, size_t *cap, void *x)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        arr = mp_xrealloc(arr, *cap * sizeof *arr);
    }
    arr[(*n)++] = x;
    return arr;
}

/* Drops retired keys whose retain-idle time is over. */
static void expire_retired(struct pod *p, int64_t now_ms)
{
    size_t w = 0;
    for (size_t i = 0; i < p->nretired_h; i++) {
        struct hkey *h = p->retired_h[i];
        if (h->expire_ms <= now_ms) {
            hkey_free(h);
            p->has_dead = true;
        } else
            p->retired_h[w++] = h;
    }
    p->nretired_h = w;
    w = 0;
    for (size_t i = 0; i < p->nretired_t; i++) {
        struct tkey *t = p->retired_t[i];
        if (t->expire_ms <= now_ms) {
            tkey_free(t);
            p->has_dead = true;
        } else
            p->retired_t[w++] = t;
    }
    p->nretired_t = w;
}

/* Replaces pod (d, slot) by a new one born at now_ms. */
static void replace_pod(struct meshsim_gen *g, int d, int slot, int64_t now_ms)
{
    int R = g->o.replicas;
    struct pod *old = g->pods[d * R + slot];
    struct dep *dp = &g->deps[d];
    /* clients keep the old endpoint's keys, frozen, for retain-idle; connections close */
    for (int k = 0; k < dp->ncallers; k++) {
        int ei = dp->callers[k];
        struct dep *C = &g->deps[g->edges[ei].from];
        int lo = edge_local_out(C, ei), idx = lo * R + slot;
        for (int cs = 0; cs < R; cs++) {
            struct pod *c = g->pods[g->edges[ei].from * R + cs];
            if (!c->out[idx])
                continue;
            if (c->out_dst[idx]->conns > 0)
                close_conn(g, c, c->out_dst[idx], c->out_dst[idx]->conns, false);
            c->out[idx]->expire_ms = now_ms + RETAIN_IDLE_MS;
            c->out_dst[idx]->expire_ms = now_ms + RETAIN_IDLE_MS;
            c->retired_h =
                retire_push(c->retired_h, &c->nretired_h, &c->cap_retired_h, c->out[idx]);
            c->retired_t =
                retire_push(c->retired_t, &c->nretired_t, &c->cap_retired_t, c->out_dst[idx]);
            c->out[idx] = NULL;
            c->out_dst[idx] = NULL;
        }
        for (int cs = 0; cs < R && g->expose; cs++) { /* the balancers see Remove + Add */
            struct pod *c = g->pods[g->edges[ei].from * R + cs];
            c->pol[lo].adds++;
            c->pol[lo].removes++;
        }
    }
    /* servers it called lose its connections */
    for (int k = 0; k < dp->nedges; k++) {
        int ei = dp->edges[k];
        struct dep *E = &g->deps[g->edges[ei].to];
        int li = edge_local_in(E, ei);
        for (int ss = 0; ss < R; ss++) {
            struct tkey *tc = old->out_dst[k * R + ss];
            struct pod *s = g->pods[g->edges[ei].to * R + ss];
            if (tc && tc->conns > 0 && s->in_src[li] && s->in_src[li]->conns > 0)
                close_conn(g, s, s->in_src[li], 1, false);
        }
    }
    pod_destroy(g, old);
    g->pods[d * R + slot] = pod_create(g, d, slot, now_ms);
    g->st.pod_churns++;
    g->generation++;
}

static void churn(struct meshsim_gen *g, int64_t now_ms)
{
    int R = g->o.replicas;
    double want = g->o.churn * g->npods, done = 0;
    /* roll out deployments in a seeded random order until enough pods were replaced */
    int *order = mp_xmalloc((size_t)g->ndeps * sizeof *order);
    for (int i = 0; i < g->ndeps; i++)
        order[i] = i;
    for (int i = g->ndeps - 1; i > 0; i--) {
        int j = (int)(rnd(&g->rng) % (uint64_t)(i + 1)), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int i = 0; i < g->ndeps && done + R / 2.0 <= want + 1e-9; i++) {
        new_hash(g, &g->deps[order[i]]);
        for (int s = 0; s < R; s++)
            replace_pod(g, order[i], s, now_ms);
        done += R;
    }
    mp_free(order);
}

static int cmp_pod(const void *a, const void *b)
{
    const struct pod *x = *(struct pod *const *)a, *y = *(struct pod *const *)b;
    if (x->offset_ms != y->offset_ms)
        return x->offset_ms < y->offset_ms ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void step(struct meshsim_gen *g, int64_t dt_ms, int64_t now_ms)
{
    for (int i = 0; i < g->npods; i++)
        expire_retired(g->pods[i], now_ms);
    for (int e = 0; e < g->nedges; e++)
        traffic(g, e, dt_ms);
    for (int i = 0; i < g->npods; i++)
        admin_and_process(g, g->pods[i], dt_ms, now_ms);
    memcpy(g->order, g->pods, (size_t)g->npods * sizeof *g->order);
    qsort(g->order, (size_t)g->npods, sizeof *g->order, cmp_pod);
}

/* ---- API ------------------------------------------------------------------------------ */

void meshsim_model_step(struct meshsim_gen *g, int64_t dt_ms, int64_t now_ms)
{
    if (g->o.churn > 0 && now_ms >= g->next_churn_ms) {
        churn(g, now_ms);
        g->next_churn_ms += g->o.churn_every_ms;
    }
    step(g, dt_ms, now_ms);
}

static void compact(struct pod *p)
{
    if (!p->has_dead)
        return;
    p->has_dead = false;
    size_t w = 0;
    for (size_t i = 0; i < p->nser; i++) {
        if (p->ser[i]->dead)
            mp_free(p->ser[i]);
        else
            p->ser[w++] = p->ser[i];
    }
    p->nser = w;
}

void meshsim_model_compact(struct meshsim_gen *g)
{
    for (int i = 0; i < g->npods; i++)
        compact(g->pods[i]);
}

int meshsim_gen_create(const struct meshsim_gen_opts *o, struct meshsim_gen **out,
                       struct mp_err *err)
{
    static const struct meshsim_model_cfg plain = {0};
    return meshsim_model_create(o, &plain, out, err);
}

int meshsim_model_create(const struct meshsim_gen_opts *o, const struct meshsim_model_cfg *cfg,
                         struct meshsim_gen **out, struct mp_err *err)
{
    *out = NULL;
    if (o->namespaces < 1 || o->namespaces > 1000 || o->deployments < 1 || o->deployments > 1000 ||
        o->replicas < 1 || o->replicas > 100 || o->peers < 0 || o->peers > 100)
        return mp_err_set(err, MP_EINVAL,
                          "meshgen: namespaces/deployments/replicas/peers out of range");
    if (o->interval_ms <= 0 || o->duration_ms < 0 || o->jitter_ms < 0 ||
        o->jitter_ms >= o->interval_ms / 2)
        return mp_err_set(err, MP_EINVAL, "meshgen: interval, duration or jitter out of range");
    if (!(o->churn >= 0 && o->churn <= 1) || (o->churn > 0 && o->churn_every_ms <= 0))
        return mp_err_set(err, MP_EINVAL, "meshgen: churn must be in [0, 1] with a period > 0");
    struct meshsim_gen *g = mp_xcalloc(1, sizeof *g);
    g->o = *o;
    g->expose = cfg->expose;
    g->emojivoto = cfg->emojivoto;
    g->next_ip = cfg->ip_base;
    g->admin_port = cfg->admin_port ? cfg->admin_port : 4191;
    g->rng = o->seed ^ UINT64_C(0x6d657368);
    g->nintervals = o->duration_ms / o->interval_ms;
    g->admin_oc = (struct outcome){"200", "success", "", 1};
    g->ctl_oc = (struct outcome){"200", "success", "0", 1};
    latdist_init(&g->admin_lat, 1.5, 0.4, 0.001, 10, 0);
    latdist_init(&g->probe_lat, 0.3, 0.3, 0, 1, 0);
    latdist_init(&g->ctl_lat, 3, 0.8, 0.01, 20, 0);
    if (g->emojivoto)
        build_emojivoto(g);
    else
        build_topology(g);
    g->npods = g->ndeps * o->replicas;
    g->pods = mp_xcalloc((size_t)g->npods, sizeof *g->pods);
    g->order = mp_xcalloc((size_t)g->npods, sizeof *g->order);
    for (int d = 0; d < g->ndeps; d++)
        for (int s = 0; s < o->replicas; s++) {
            /* pods were started 6-24 h before the window; the first step covers 6 h */
            int64_t born = o->start_ms - PRE_RUN_MS - (int64_t)(unif(&g->rng) * 18 * 3600 * 1000);
            g->pods[d * o->replicas + s] = pod_create(g, d, s, born);
        }
    g->next_churn_ms = o->start_ms + o->churn_every_ms;
    g->pod_i = -1;
    *out = g;
    return 0;
}

void meshsim_gen_destroy(struct meshsim_gen *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->npods; i++)
        pod_destroy(g, g->pods[i]);
    for (int d = 0; d < g->ndeps; d++) {
        mp_free(g->deps[d].edges);
        mp_free(g->deps[d].callers);
    }
    mp_free(g->deps);
    mp_free(g->edges);
    mp_free(g->pods);
    mp_free(g->order);
    mp_free(g->samples);
    mp_free(g);
}

/* Frees the pod's dead series and returns the live ones as samples. */
static void emit(struct meshsim_gen *g, struct pod *p, int64_t t_ms, struct meshsim_gen_scrape *out)
{
    compact(p);
    size_t w = p->nser;
    if (g->cap_samples < w) {
        g->cap_samples = w * 2;
        g->samples = mp_xrealloc(g->samples, g->cap_samples * sizeof *g->samples);
    }
    /* rendered at scrape time: uptime follows the scrape's clock */
    p->p_uptime->v = (double)(t_ms - p->born_ms) / 1000 + 0.000731;
    for (size_t i = 0; i < w; i++) {
        const struct series *s = p->ser[i];
        g->samples[i] = (struct meshsim_gen_sample){s->id, s->lbl, s->nlbl, s->v};
    }
    out->t_ms = t_ms;
    out->pod = mp_str_c(p->name);
    out->samples = g->samples;
    out->n = w;
    g->st.scrapes++;
    g->st.samples += w;
}

int meshsim_gen_next(struct meshsim_gen *g, struct meshsim_gen_scrape *out)
{
    for (;;) {
        if (g->k >= g->nintervals)
            return MP_EEOF;
        int64_t base = g->o.start_ms + g->k * g->o.interval_ms;
        if (g->pod_i < 0) {
            meshsim_model_step(g, g->k == 0 ? PRE_RUN_MS : g->o.interval_ms, base);
            g->pod_i = 0;
        }
        if (g->pod_i < g->npods) {
            struct pod *p = g->order[g->pod_i++];
            int64_t t = base + p->offset_ms;
            /* the jitter stream is separate, so values do not depend on jitter_ms */
            uint64_t js = g->o.seed ^ (uint64_t)t ^ (uint64_t)p->born_ms * 31;
            uint64_t r = rnd(&js);
            if (g->o.jitter_ms >= 2 && (r & 7) == 0)
                t += 2 + (int64_t)((r >> 8) % (uint64_t)(g->o.jitter_ms - 1));
            emit(g, p, t, out);
            return 0;
        }
        g->k++;
        g->pod_i = -1;
    }
}

void meshsim_gen_get_stats(const struct meshsim_gen *g, struct meshsim_gen_stats *st)
{
    *st = g->st;
}

/* Shortest %g form that reads back as the same double. */
static void format_value(char *buf, size_t n, double v)
{
    if (v == floor(v) && fabs(v) < 0x1p53) {
        snprintf(buf, n, "%.0f", v);
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

void meshsim_gen_write_sample(FILE *f, const struct meshsim_gen_sample *s, int64_t t_ms)
{
    char val[40];
    format_value(val, sizeof val, s->value);
    /* labels[0] is __name__ (sorted first) */
    fwrite(s->labels[1].ptr, 1, s->labels[1].len, f);
    fputc('{', f);
    for (size_t i = 1; i < s->nlabels; i++) {
        if (i > 1)
            fputc(',', f);
        fwrite(s->labels[2 * i].ptr, 1, s->labels[2 * i].len, f);
        fputs("=\"", f);
        fwrite(s->labels[2 * i + 1].ptr, 1, s->labels[2 * i + 1].len, f);
        fputc('"', f);
    }
    fprintf(f, "} %s %" PRId64 ".%03d\n", val, t_ms / 1000, (int)(t_ms % 1000));
}

int meshsim_gen_write_openmetrics(const struct meshsim_gen_opts *o, const char *path,
                                  struct meshsim_gen_stats *st, struct mp_err *err)
{
    struct meshsim_gen *g;
    int rc = meshsim_gen_create(o, &g, err);
    if (rc)
        return rc;
    FILE *f = fopen(path, "w");
    if (!f) {
        meshsim_gen_destroy(g);
        return mp_err_set(err, MP_EIO, "create %s", path);
    }
    static char fbuf[1 << 20];
    setvbuf(f, fbuf, _IOFBF, sizeof fbuf);
    struct meshsim_gen_scrape sc;
    while (meshsim_gen_next(g, &sc) == 0)
        for (size_t i = 0; i < sc.n; i++)
            meshsim_gen_write_sample(f, &sc.samples[i], sc.t_ms);
    fputs("# EOF\n", f);
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0)
        bad = true;
    if (st)
        meshsim_gen_get_stats(g, st);
    meshsim_gen_destroy(g);
    return bad ? mp_err_set(err, MP_EIO, "write %s", path) : 0;
}
