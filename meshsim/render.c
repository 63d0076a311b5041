/* SPDX-License-Identifier: Apache-2.0 */
/* meshsim/render.c: one simulated proxy's GET /metrics body, from the model's keys
 * (model.h), as linkerd2-proxy prints it (linkerd-workload.md 1.1-1.11):
 *
 *   # HELP request_total Total count of HTTP requests.
 *   # TYPE request_total counter
 *   request_total{direction="inbound",target_addr="127.1.0.3:8080",...,authz_name="..."} 7321
 *   ...                                  legacy families: integer le, buckets, _count, _sum
 *   # HELP outbound_http_route_backend_requests The total number of requests dispatched.
 *   # TYPE outbound_http_route_backend_requests counter
 *   outbound_http_route_backend_requests_total{parent_group="core",...} 1234
 *   ...                                  prometheus-client families: UNIT lines, float le
 *   # EOF
 *
 * Labels come in the proxy's order with its empty values (srv_group="", dst_zone="",
 * grpc_status="", error=""). Nothing is cached: every call renders the current state. */
#include "meshsim/model.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

struct rctx {
    struct mp_buf *b;
    int rc; /* first failure, sticky */
    const struct meshsim_gen *g;
    const struct pod *p;
};

static void put(struct rctx *r, const char *s)
{
    if (r->rc == 0)
        r->rc = mp_buf_append(r->b, s, strlen(s));
}

static void putc_(struct rctx *r, char c)
{
    if (r->rc == 0)
        r->rc = mp_buf_append(r->b, &c, 1);
}

/* Legacy values: the shortest form that reads back to the same double ("42", "0.55947"). */
static void fmt_val(char *buf, size_t n, double v)
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

/* prometheus-client floats: as Rust prints an f64 ("1.0", "0.05", "10240.0"). */
static void fmt_f(char *buf, size_t n, double v)
{
    fmt_val(buf, n, v);
    if (!strpbrk(buf, ".eE") && strlen(buf) + 3 <= n)
        strcat(buf, ".0");
}

static void meta(struct rctx *r, const char *name, const char *type, const char *unit,
                 const char *help)
{
    put(r, "# HELP ");
    put(r, name);
    putc_(r, ' ');
    put(r, help);
    put(r, "\n# TYPE ");
    put(r, name);
    putc_(r, ' ');
    put(r, type);
    putc_(r, '\n');
    if (unit) {
        put(r, "# UNIT ");
        put(r, name);
        putc_(r, ' ');
        put(r, unit);
        putc_(r, '\n');
    }
}

/* One label set: base (minus a label named skip) then up to MAX_XL extra pairs. */
#define MAX_XL 24
struct xl {
    const char *k[MAX_XL], *v[MAX_XL];
    int n;
};

static void xl_add(struct xl *x, const char *k, const char *v)
{
    if (x->n >= MAX_XL) /* the families' label sets are fixed: a bug, not input */
        abort();
    x->k[x->n] = k;
    x->v[x->n] = v ? v : "";
    x->n++;
}

/* '{' before the first label, ',' before the others. */
static void sep(struct rctx *r, bool *open)
{
    putc_(r, *open ? ',' : '{');
    *open = true;
}

static void label(struct rctx *r, bool *open, const char *k, const char *v)
{
    sep(r, open);
    put(r, k);
    put(r, "=\"");
    put(r, v);
    putc_(r, '"');
}

static void line(struct rctx *r, const char *name, const char *suffix, const struct lbuild *base,
                 const char *skip, const struct xl *x, const char *value)
{
    put(r, name);
    if (suffix)
        put(r, suffix);
    bool open = false;
    if (base && base->n > 0 && !skip && base->text) { /* the key's labels, joined when made */
        sep(r, &open);
        if (r->rc == 0)
            r->rc = mp_buf_append(r->b, base->text, base->text_len);
    } else if (base) {
        for (size_t i = 0; i < base->n; i++)
            if (!skip || strcmp(base->k[i], skip) != 0)
                label(r, &open, base->k[i], base->v[i]);
    }
    for (int i = 0; x && i < x->n; i++)
        label(r, &open, x->k[i], x->v[i]);
    if (open)
        putc_(r, '}');
    putc_(r, ' ');
    put(r, value);
    putc_(r, '\n');
}

static void line_d(struct rctx *r, const char *name, const char *suffix, const struct lbuild *base,
                   const char *skip, const struct xl *x, double v)
{
    char val[40];
    fmt_val(val, sizeof val, v);
    line(r, name, suffix, base, skip, x, val);
}

static void line_u(struct rctx *r, const char *name, const char *suffix, const struct lbuild *base,
                   const struct xl *x, uint64_t v)
{
    char val[24];
    snprintf(val, sizeof val, "%" PRIu64, v);
    line(r, name, suffix, base, NULL, x, val);
}

static const char *lb_get(const struct lbuild *b, const char *k)
{
    for (size_t i = 0; i < b->n; i++)
        if (strcmp(b->k[i], k) == 0)
            return b->v[i];
    return "";
}

/* ---- the pod's keys, in a fixed order ---------------------------------------------------- */

struct keys {
    const struct hkey **h; /* inbound app keys, admin keys, outbound, retired outbound */
    size_t nh, nin;        /* the first nin are inbound (with pstate in expose mode) */
    const struct tkey **t;
    size_t nt;
};

static void keys_collect(const struct meshsim_gen *g, const struct pod *p, struct keys *k)
{
    const struct dep *dp = &g->deps[p->dep];
    size_t nout = (size_t)dp->nedges * (size_t)g->o.replicas;
    k->h = mp_xcalloc((size_t)dp->ncallers + 2 + nout + p->nretired_h + 1, sizeof *k->h);
    k->t = mp_xcalloc((size_t)dp->ncallers + 3 + (size_t)dp->nedges + nout + p->nretired_t + 1,
                      sizeof *k->t);
    k->nh = k->nt = 0;
    for (int i = 0; i < dp->ncallers; i++)
        if (p->in[i])
            k->h[k->nh++] = p->in[i];
    k->h[k->nh++] = p->admin_prom;
    k->h[k->nh++] = p->admin_probe;
    k->nin = k->nh;
    for (size_t i = 0; i < nout; i++)
        if (p->out[i])
            k->h[k->nh++] = p->out[i];
    for (size_t i = 0; i < p->nretired_h; i++)
        k->h[k->nh++] = p->retired_h[i];
    for (int i = 0; i < dp->ncallers; i++)
        if (p->in_src[i])
            k->t[k->nt++] = p->in_src[i];
    k->t[k->nt++] = p->admin_prom_tcp;
    k->t[k->nt++] = p->admin_probe_tcp;
    k->t[k->nt++] = p->in_dst;
    for (int i = 0; i < dp->nedges; i++)
        if (p->out_src[i])
            k->t[k->nt++] = p->out_src[i];
    for (size_t i = 0; i < nout; i++)
        if (p->out_dst[i])
            k->t[k->nt++] = p->out_dst[i];
    for (size_t i = 0; i < p->nretired_t; i++)
        k->t[k->nt++] = p->retired_t[i];
}

/* ---- legacy HTTP families ---------------------------------------------------------------- */

static void http_families(struct rctx *r, const char *prefix, const struct hkey *const *h, size_t n)
{
    char name[64];
    snprintf(name, sizeof name, "%srequest_total", prefix);
    meta(r, name, "counter", NULL, "Total count of HTTP requests.");
    for (size_t i = 0; i < n; i++)
        if (h[i]->req)
            line_d(r, name, NULL, &h[i]->base, NULL, NULL, h[i]->req->v);
    snprintf(name, sizeof name, "%sresponse_latency_ms", prefix);
    meta(r, name, "histogram", NULL,
         "Elapsed times between a request's headers being received and its response stream "
         "completing");
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < h[i]->nhist; k++) {
            struct xl x = {.n = 0};
            xl_add(&x, "status_code", h[i]->hist[k].code);
            xl_add(&x, "le", NULL);
            for (int b = 0; b < NBUCKETS; b++) {
                x.v[1] = meshsim_bucket_str[b];
                line_u(r, name, "_bucket", &h[i]->base, &x, h[i]->hist[k].cum[b]);
            }
            x.n = 1;
            line_u(r, name, "_count", &h[i]->base, &x, h[i]->hist[k].cum[NBUCKETS - 1]);
            line_d(r, name, "_sum", &h[i]->base, NULL, &x, h[i]->hist[k].sum->v);
        }
    }
    snprintf(name, sizeof name, "%sresponse_total", prefix);
    meta(r, name, "counter", NULL, "Total count of HTTP responses.");
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < h[i]->nresp; k++) {
            const struct outcome *oc = h[i]->resp[k].oc;
            struct xl x = {.n = 0};
            xl_add(&x, "status_code", oc->code);
            xl_add(&x, "classification", oc->cls);
            xl_add(&x, "grpc_status", oc->grpc);
            xl_add(&x, "error", "");
            line_d(r, name, NULL, &h[i]->base, NULL, &x, h[i]->resp[k].s->v);
        }
    }
}

static void tcp_families(struct rctx *r, const struct keys *k)
{
    static const struct {
        const char *name, *type, *help;
    } fam[4] = {{"tcp_open_total", "counter", "Total count of opened connections"},
                {"tcp_open_connections", "gauge", "Number of currently-open connections"},
                {"tcp_read_bytes_total", "counter", "Total count of bytes read from peers"},
                {"tcp_write_bytes_total", "counter", "Total count of bytes written to peers"}};
    for (int f = 0; f < 4; f++) {
        meta(r, fam[f].name, fam[f].type, NULL, fam[f].help);
        for (size_t i = 0; i < k->nt; i++) {
            const struct tkey *t = k->t[i];
            if (!t->open_total)
                continue;
            const struct series *s[4] = {t->open_total, t->open_conns, t->rd, t->wr};
            line_d(r, fam[f].name, NULL, &t->base, NULL, NULL, s[f]->v);
        }
    }
    meta(r, "tcp_close_total", "counter", NULL, "Total count of closed connections");
    for (size_t i = 0; i < k->nt; i++) {
        const struct tkey *t = k->t[i];
        struct xl x = {.n = 0};
        xl_add(&x, "errno", "");
        if (t->close_ok)
            line_d(r, "tcp_close_total", NULL, &t->base, NULL, &x, t->close_ok->v);
        x.v[0] = "ECONNRESET";
        if (t->close_reset)
            line_d(r, "tcp_close_total", NULL, &t->base, NULL, &x, t->close_reset->v);
    }
}

static void authz_and_stack(struct rctx *r, const struct keys *k)
{
    meta(r, "inbound_http_authz_allow_total", "counter", NULL,
         "The total number of inbound HTTP requests that were authorized");
    for (size_t i = 0; i < k->nin; i++)
        if (k->h[i]->req)
            line_d(r, "inbound_http_authz_allow_total", NULL, &k->h[i]->base, "direction", NULL,
                   k->h[i]->req->v);
    double in = 0, out = 0;
    for (size_t i = 0; i < k->nh; i++)
        if (k->h[i]->req)
            *(i < k->nin ? &in : &out) += k->h[i]->req->v;
    static const char *const st[6][3] = {
        {"inbound", "http", "logical"},   {"inbound", "http", "endpoint"},
        {"outbound", "http", "logical"},  {"outbound", "http", "balance"},
        {"outbound", "http", "endpoint"}, {"outbound", "tcp", "endpoint"}};
    static const char *const fam[4] = {"stack_create_total", "stack_drop_total", "stack_poll_total",
                                       "stack_poll_total_ms"};
    static const char *const help[4] = {
        "Total number of services created", "Total number of services dropped",
        "Total number of times the service has been polled",
        "Total number of milliseconds this service has spent in poll_ready"};
    for (int f = 0; f < 4; f++) {
        meta(r, fam[f], "counter", NULL, help[f]);
        for (int i = 0; i < 6; i++) {
            double reqs = i < 2 ? in : out;
            double created = i < 2 ? (double)k->nin : (double)(k->nh - k->nin) + 1;
            double v = f == 0   ? created
                       : f == 1 ? floor(created / 2)
                       : f == 2 ? reqs * 2
                                : floor(reqs / 40);
            struct xl x = {.n = 0};
            xl_add(&x, "direction", st[i][0]);
            xl_add(&x, "protocol", st[i][1]);
            xl_add(&x, "name", st[i][2]);
            line_d(r, fam[f], NULL, NULL, NULL, &x, v);
        }
    }
}

/* ---- prometheus-client families ---------------------------------------------------------- */

/* A histogram as prometheus-client prints it: _sum, _count, then the buckets. */
static void hist_pc(struct rctx *r, const char *name, const struct xl *x, const double *bounds,
                    const uint64_t *cum, int nb, uint64_t count, double sum)
{
    char val[40], le[24];
    fmt_f(val, sizeof val, sum);
    line(r, name, "_sum", NULL, NULL, x, val);
    line_u(r, name, "_count", NULL, x, count);
    struct xl y = *x;
    xl_add(&y, "le", NULL);
    for (int i = 0; i <= nb; i++) {
        if (i < nb)
            fmt_f(le, sizeof le, bounds[i]);
        else
            snprintf(le, sizeof le, "+Inf");
        y.v[y.n - 1] = le;
        line_u(r, name, "_bucket", NULL, &y, i < nb ? cum[i] : count);
    }
}

static void parent_labels(struct xl *x, const struct dep *E, char *port, size_t n)
{
    snprintf(port, n, "%d", E->svc_port);
    xl_add(x, "parent_group", "core");
    xl_add(x, "parent_kind", "Service");
    xl_add(x, "parent_namespace", E->ns_name);
    xl_add(x, "parent_name", E->svc);
    xl_add(x, "parent_port", port);
    xl_add(x, "parent_section_name", "");
}

static void route_labels(struct xl *x, bool grpc)
{
    xl_add(x, "route_group", "");
    xl_add(x, "route_kind", "default");
    xl_add(x, "route_namespace", "");
    xl_add(x, "route_name", grpc ? "grpc" : "http");
}

static void backend_labels(struct xl *x, const struct dep *E, const char *port)
{
    xl_add(x, "backend_group", "core");
    xl_add(x, "backend_kind", "Service");
    xl_add(x, "backend_namespace", E->ns_name);
    xl_add(x, "backend_name", E->svc);
    xl_add(x, "backend_port", port);
    xl_add(x, "backend_section_name", "");
}

enum { LB_PR, LB_PRH, LB_PRB, LB_PB }; /* which label blocks a policy family has */

static void pol_labels(struct xl *x, const struct dep *E, bool grpc, int which, char *port,
                       size_t n)
{
    x->n = 0;
    parent_labels(x, E, port, n);
    if (which != LB_PB)
        route_labels(x, grpc);
    if (which == LB_PRH)
        xl_add(x, "hostname", "");
    if (which == LB_PRB || which == LB_PB)
        backend_labels(x, E, port);
}

static void status_lines(struct rctx *r, const char *name, const struct xl *base,
                         const struct pstate *ps)
{
    for (int j = 0; j < ps->noc; j++) {
        if (ps->st[j] == 0)
            continue;
        struct xl x = *base;
        xl_add(&x, ps->grpc ? "grpc_status" : "http_status",
               ps->grpc ? ps->oc[j].grpc : ps->oc[j].code);
        xl_add(&x, "error", "");
        line_u(r, name, NULL, NULL, &x, ps->st[j]);
    }
}

static void outbound_policy(struct rctx *r)
{
    static const double b7[7] = MESHSIM_B7_S, b4[4] = MESHSIM_B4_S, f3[3] = MESHSIM_F3;
    const struct meshsim_gen *g = r->g;
    const struct pod *p = r->p;
    const struct dep *dp = &g->deps[p->dep];
    static const struct {
        const char *sfx, *type, *unit, *help;
        int labels;
    } fam[] = {
        {"route_request_duration_seconds", "histogram", "seconds",
         "The time between request initialization and response completion.", LB_PRH},
        {"route_request_statuses", "counter", NULL, "Completed request-response streams.", LB_PRH},
        {"route_retry_requests", "counter", NULL, "The total number of retry requests.", LB_PR},
        {"route_retry_successes", "counter", NULL, "The total number of successful retry requests.",
         LB_PR},
        {"route_retry_limit_exceeded", "counter", NULL,
         "Retryable requests not sent due to retry limits.", LB_PR},
        {"route_retry_overflow", "counter", NULL,
         "Retryable requests not sent due to circuit breakers.", LB_PR},
        {"route_request_frame_size_bytes", "histogram", "bytes", "Request data frame sizes.",
         LB_PR},
        {"route_backend_requests", "counter", NULL, "The total number of requests dispatched.",
         LB_PRB},
        {"route_backend_response_duration_seconds", "histogram", "seconds",
         "The time between request initialization and response completion.", LB_PRB},
        {"route_backend_response_statuses", "counter", NULL, "Completed responses.", LB_PRB},
        {"route_backend_response_frame_size_bytes", "histogram", "bytes",
         "Response data frame sizes.", LB_PRB},
    };
    char name[96], port[8];
    for (int proto = 0; proto < 2; proto++) {
        bool grpc = proto == 1, any = false;
        for (int i = 0; i < dp->nedges; i++)
            any |= p->pol[i].grpc == grpc;
        if (!any)
            continue;
        for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++) {
            snprintf(name, sizeof name, "outbound_%s_%s", grpc ? "grpc" : "http", fam[f].sfx);
            meta(r, name, fam[f].type, fam[f].unit, fam[f].help);
            if (strcmp(fam[f].type, "counter") == 0)
                strcat(name, "_total");
            for (int i = 0; i < dp->nedges; i++) {
                const struct pstate *ps = &p->pol[i];
                if (ps->grpc != grpc)
                    continue;
                const struct dep *E = &g->deps[g->edges[dp->edges[i]].to];
                struct xl x;
                pol_labels(&x, E, grpc, fam[f].labels, port, sizeof port);
                switch (f) {
                case 0:
                    hist_pc(r, name, &x, b4, ps->d4, 4, ps->dn, ps->d4_sum);
                    break;
                case 1:
                case 9:
                    status_lines(r, name, &x, ps);
                    break;
                case 6:
                    hist_pc(r, name, &x, f3, ps->f_req, 3, ps->dn, ps->f_req_sum);
                    break;
                case 7:
                    line_u(r, name, NULL, NULL, &x, ps->req);
                    break;
                case 8:
                    hist_pc(r, name, &x, b7, ps->d7, 7, ps->dn, ps->d7_sum);
                    break;
                case 10:
                    hist_pc(r, name, &x, f3, ps->f_resp, 3, ps->dn, ps->f_resp_sum);
                    break;
                default: /* retries: none configured */
                    line_u(r, name, NULL, NULL, &x, 0);
                }
            }
        }
    }
}

/* The balancer families of one prefix; per target: extra labels, endpoints, requests,
 * endpoint adds/removes, and the time the queue opened. */
struct bal {
    struct xl x;
    char port[8];
    uint64_t ready, req, adds, removes;
    double open_s;
};

static void balancers(struct rctx *r, const char *prefix, const struct bal *b, int n)
{
    static const double ql[6] = {0.0005, 0.005, 0.05, 0.5, 1, 3};
    char name[96];
    if (n == 0)
        return;
#define FAM(sfx, type, unit, help)                                                                 \
    snprintf(name, sizeof name, "%s_%s", prefix, sfx);                                             \
    meta(r, name, type, unit, help);                                                               \
    if (strcmp(type, "counter") == 0)                                                              \
        strcat(name, "_total");
    FAM("endpoints", "gauge", NULL, "The number of endpoints currently in a HTTP request balancer");
    for (int i = 0; i < n; i++) {
        struct xl x = b[i].x;
        xl_add(&x, "endpoint_state", "ready");
        line_u(r, name, NULL, NULL, &x, b[i].ready);
        x.v[x.n - 1] = "pending";
        line_u(r, name, NULL, NULL, &x, 0);
    }
    FAM("p2c_endpoints", "gauge", NULL, "The number of endpoints currently in a P2C balancer");
    for (int i = 0; i < n; i++)
        line_u(r, name, NULL, NULL, &b[i].x, b[i].ready);
    FAM("p2c_updates", "counter", NULL, "The total number of service discovery updates");
    for (int i = 0; i < n; i++) {
        static const char *const op[3] = {"Reset", "Add", "Remove"};
        uint64_t v[3] = {1, b[i].adds, b[i].removes};
        for (int j = 0; j < 3; j++) {
            struct xl x = b[i].x;
            xl_add(&x, "op", op[j]);
            line_u(r, name, NULL, NULL, &x, v[j]);
        }
    }
    FAM("queue_length", "gauge", NULL, "The number of requests currently waiting in a queue");
    for (int i = 0; i < n; i++)
        line_u(r, name, NULL, NULL, &b[i].x, 0);
    FAM("queue_requests", "counter", NULL,
        "The total number of requests that have entered the queue");
    for (int i = 0; i < n; i++)
        line_u(r, name, NULL, NULL, &b[i].x, b[i].req);
    FAM("queue_latency_seconds", "histogram", "seconds",
        "The time requests spend waiting in the queue");
    for (int i = 0; i < n; i++) {
        uint64_t cum[6] = {b[i].req, b[i].req, b[i].req, b[i].req, b[i].req, b[i].req};
        hist_pc(r, name, &b[i].x, ql, cum, 6, b[i].req, (double)b[i].req * 0.00002);
    }
    FAM("queue_gate_open", "counter", NULL, "The total number of times the gate was opened");
    for (int i = 0; i < n; i++)
        line_u(r, name, NULL, NULL, &b[i].x, 1);
    FAM("queue_gate_shut", "counter", NULL, "The total number of times the gate was shut");
    for (int i = 0; i < n; i++)
        line_u(r, name, NULL, NULL, &b[i].x, 0);
    FAM("queue_gate_open_time_seconds", "gauge", "seconds",
        "The time at which the gate was last opened");
    for (int i = 0; i < n; i++) {
        char v[40];
        fmt_f(v, sizeof v, b[i].open_s);
        line(r, name, NULL, NULL, NULL, &b[i].x, v);
    }
    FAM("queue_gate_shut_time_seconds", "gauge", "seconds",
        "The time at which the gate was last shut");
    for (int i = 0; i < n; i++)
        line(r, name, NULL, NULL, NULL, &b[i].x, "0.0");
    FAM("queue_gate_timeout_seconds", "gauge", "seconds", "The queue's fail-fast timeout");
    for (int i = 0; i < n; i++)
        line(r, name, NULL, NULL, NULL, &b[i].x, "3.0");
#undef FAM
}

static void outbound_balancers(struct rctx *r)
{
    const struct meshsim_gen *g = r->g;
    const struct pod *p = r->p;
    const struct dep *dp = &g->deps[p->dep];
    if (dp->nedges == 0)
        return;
    struct bal *b = mp_xcalloc((size_t)dp->nedges, sizeof *b);
    for (int i = 0; i < dp->nedges; i++) {
        const struct dep *E = &g->deps[g->edges[dp->edges[i]].to];
        const struct pstate *ps = &p->pol[i];
        pol_labels(&b[i].x, E, ps->grpc, LB_PB, b[i].port, sizeof b[i].port);
        b[i].ready = (uint64_t)g->o.replicas;
        b[i].req = ps->req;
        b[i].adds = ps->adds;
        b[i].removes = ps->removes;
        b[i].open_s = floor((double)p->born_ms / 1000) + 2;
    }
    balancers(r, "outbound_http_balancer", b, dp->nedges);
    mp_free(b);
}

static void control_balancers(struct rctx *r)
{
    static const char *const prefix[3] = {"control_destination_balancer", "control_policy_balancer",
                                          "control_identity_balancer"};
    for (int i = 0; i < 3; i++) {
        const struct hkey *h = r->p->ctl[i];
        struct bal b = {.x = {.n = 0},
                        .ready = 1,
                        .req = h->req ? (uint64_t)h->req->v : 0,
                        .adds = 1,
                        .open_s = floor((double)r->p->born_ms / 1000) + 1};
        balancers(r, prefix[i], &b, 1);
    }
}

/* The inbound route families are keyed by (server, route) only: keys of different client
 * identities that share them are summed. */
struct inroute {
    const char *name, *port, *route;
    bool grpc;
    struct pstate sum;
    struct {
        const char *code;
        uint64_t n;
    } st[2 * MAX_OUTCOMES];
    int nst;
};

static void inroute_add(struct inroute *ir, const struct pstate *ps)
{
    struct pstate *a = &ir->sum;
    a->req += ps->req;
    a->dn += ps->dn;
    a->d7_sum += ps->d7_sum;
    a->d4_sum += ps->d4_sum;
    a->f_req_sum += ps->f_req_sum;
    a->f_resp_sum += ps->f_resp_sum;
    for (int i = 0; i < 7; i++)
        a->d7[i] += ps->d7[i];
    for (int i = 0; i < 4; i++)
        a->d4[i] += ps->d4[i];
    for (int i = 0; i < 3; i++) {
        a->f_req[i] += ps->f_req[i];
        a->f_resp[i] += ps->f_resp[i];
    }
    for (int j = 0; j < ps->noc; j++) {
        const char *code = ps->grpc ? ps->oc[j].grpc : ps->oc[j].code;
        int k = 0;
        while (k < ir->nst && strcmp(ir->st[k].code, code) != 0)
            k++;
        if (k == ir->nst) {
            if (k == 2 * MAX_OUTCOMES)
                continue;
            ir->st[ir->nst++].code = code;
        }
        ir->st[k].n += ps->st[j];
    }
}

static void inbound_routes(struct rctx *r, const struct keys *k)
{
    static const double b7[7] = MESHSIM_B7_S, b4[4] = MESHSIM_B4_S, f3[3] = MESHSIM_F3;
    static const struct {
        const char *sfx, *type, *unit, *help;
    } fam[] = {
        {"requests", "counter", NULL, "The total number of requests."},
        {"request_frame_size_bytes", "histogram", "bytes", "Request data frame sizes."},
        {"response_frame_size_bytes", "histogram", "bytes", "Response data frame sizes."},
        {"request_duration_seconds", "histogram", "seconds",
         "The time between request initialization and response completion."},
        {"response_duration_seconds", "histogram", "seconds",
         "The time between response headers and response completion."},
        {"statuses", "counter", NULL, "Completed request-response streams."},
    };
    struct inroute *ir = mp_xcalloc(k->nin + 1, sizeof *ir);
    size_t nir = 0;
    for (size_t i = 0; i < k->nin; i++) {
        const struct hkey *h = k->h[i];
        if (!h->ps)
            continue;
        const char *name = lb_get(&h->base, "srv_name"), *port = lb_get(&h->base, "srv_port"),
                   *route = lb_get(&h->base, "route_name");
        size_t j = 0;
        while (j < nir && !(ir[j].grpc == h->ps->grpc && strcmp(ir[j].name, name) == 0 &&
                            strcmp(ir[j].port, port) == 0 && strcmp(ir[j].route, route) == 0))
            j++;
        if (j == nir)
            ir[nir++] =
                (struct inroute){.name = name, .port = port, .route = route, .grpc = h->ps->grpc};
        inroute_add(&ir[j], h->ps);
    }
    char name[96];
    for (int proto = 0; proto < 2; proto++) {
        bool grpc = proto == 1, any = false;
        for (size_t i = 0; i < nir; i++)
            any |= ir[i].grpc == grpc;
        if (!any)
            continue;
        for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++) {
            snprintf(name, sizeof name, "inbound_%s_%s", grpc ? "grpc" : "http", fam[f].sfx);
            meta(r, name, fam[f].type, fam[f].unit, fam[f].help);
            if (strcmp(fam[f].type, "counter") == 0)
                strcat(name, "_total");
            for (size_t i = 0; i < nir; i++) {
                const struct pstate *ps = &ir[i].sum;
                if (ir[i].grpc != grpc)
                    continue;
                struct xl x = {.n = 0};
                xl_add(&x, "parent_group", "");
                xl_add(&x, "parent_kind", "default");
                xl_add(&x, "parent_name", ir[i].name);
                xl_add(&x, "parent_port", ir[i].port);
                xl_add(&x, "route_group", "");
                xl_add(&x, "route_kind", "default");
                xl_add(&x, "route_name", ir[i].route);
                switch (f) {
                case 0:
                    line_u(r, name, NULL, NULL, &x, ps->req);
                    break;
                case 1:
                    hist_pc(r, name, &x, f3, ps->f_req, 3, ps->dn, ps->f_req_sum);
                    break;
                case 2:
                    hist_pc(r, name, &x, f3, ps->f_resp, 3, ps->dn, ps->f_resp_sum);
                    break;
                case 3:
                    hist_pc(r, name, &x, b7, ps->d7, 7, ps->dn, ps->d7_sum);
                    break;
                case 4:
                    hist_pc(r, name, &x, b4, ps->d4, 4, ps->dn, ps->d4_sum);
                    break;
                default:
                    for (int j = 0; j < ir[i].nst; j++) {
                        if (ir[i].st[j].n == 0)
                            continue;
                        struct xl y = x;
                        xl_add(&y, grpc ? "grpc_status" : "http_status", ir[i].st[j].code);
                        xl_add(&y, "error", "");
                        line_u(r, name, NULL, NULL, &y, ir[i].st[j].n);
                    }
                }
            }
        }
    }
    mp_free(ir);
}

static void gauge_f(struct rctx *r, const char *name, const char *type, const char *unit,
                    const char *help, const struct xl *x, double v)
{
    char val[40];
    meta(r, name, type, unit, help);
    fmt_f(val, sizeof val, v);
    char full[96];
    snprintf(full, sizeof full, "%s%s", name, strcmp(type, "counter") == 0 ? "_total" : "");
    line(r, full, NULL, NULL, NULL, x, val);
}

static void process_and_identity(struct rctx *r, int64_t now_ms)
{
    const struct pod *p = r->p;
    struct xl ok = {.n = 0};
    xl_add(&ok, "result", "ok");
    gauge_f(r, "control_identity_cert_expiration_timestamp_seconds", "gauge", "seconds",
            "Time when this proxy's current mTLS identity certificate will expire.", NULL,
            p->p_cert_exp->v);
    gauge_f(r, "control_identity_cert_refresh_timestamp_seconds", "gauge", "seconds",
            "Time when this proxy's mTLS identity certificate was last refreshed.", NULL,
            p->p_cert_ref->v);
    meta(r, "control_identity_cert_refreshes", "counter", NULL,
         "The total number of times this proxy's mTLS identity certificate has been refreshed.");
    line_d(r, "control_identity_cert_refreshes_total", NULL, NULL, NULL, &ok, p->p_cert_cnt->v);
    double now_s = (double)now_ms / 1000;
    gauge_f(r, "process_start_time_seconds", "gauge", "seconds",
            "Time that the process started (in seconds since the UNIX epoch)", NULL, p->p_start->v);
    gauge_f(r, "process_cpu_seconds", "counter", "seconds",
            "Total user and system CPU time spent in seconds.", NULL, p->p_cpu->v);
    gauge_f(r, "process_virtual_memory_bytes", "gauge", "bytes", "Virtual memory size in bytes.",
            NULL, p->p_vms->v);
    gauge_f(r, "process_resident_memory_bytes", "gauge", "bytes", "Resident memory size in bytes.",
            NULL, p->p_rss->v);
    meta(r, "process_open_fds", "gauge", NULL, "Number of open file descriptors.");
    line_d(r, "process_open_fds", NULL, NULL, NULL, NULL, p->p_fds->v);
    meta(r, "process_max_fds", "gauge", NULL, "Maximum number of open file descriptors.");
    line_d(r, "process_max_fds", NULL, NULL, NULL, NULL, p->p_maxfds->v);
    meta(r, "process_threads", "gauge", NULL, "Number of OS threads in the process.");
    line_d(r, "process_threads", NULL, NULL, NULL, NULL, p->p_threads->v);
    gauge_f(r, "process_uptime_seconds", "counter", "seconds", "Total time since process start.",
            NULL, (double)(now_ms - p->born_ms) / 1000 + 0.000731);
    gauge_f(r, "process_clock_time_seconds", "gauge", "seconds",
            "Current system time for this proxy.", NULL, now_s);
    struct xl b = {.n = 0};
    xl_add(&b, "date", "2026-05-28T18:02:11Z");
    xl_add(&b, "git_sha", "5f3c9a1");
    xl_add(&b, "profile", "release");
    xl_add(&b, "vendor", "linkerd");
    xl_add(&b, "version", "v2.359.0");
    meta(r, "proxy_build_info", "gauge", NULL, "Proxy build info");
    line(r, "proxy_build_info", NULL, NULL, NULL, &b, "1");
    struct xl t = {.n = 0};
    xl_add(&t, "tls_suites",
           "TLS13_AES_128_GCM_SHA256,TLS13_AES_256_GCM_SHA384,TLS13_CHACHA20_POLY1305_SHA256");
    xl_add(&t, "tls_kx_groups", "X25519,secp256r1,secp384r1,X25519MLKEM768");
    xl_add(&t, "tls_rand", "AwsLcRs");
    xl_add(&t, "tls_key_provider", "AwsLcRs");
    xl_add(&t, "tls_fips", "false");
    meta(r, "rustls_info", "gauge", NULL, "Proxy TLS info.");
    line(r, "rustls_info", NULL, NULL, NULL, &t, "1");
}

int meshsim_model_render(const struct meshsim_gen *g, const struct pod *p, int64_t now_ms,
                         struct mp_buf *out)
{
    struct rctx r = {.b = out, .rc = 0, .g = g, .p = p};
    struct keys k;
    keys_collect(g, p, &k);
    http_families(&r, "", k.h, k.nh);
    const struct hkey *ctl[3] = {p->ctl[0], p->ctl[1], p->ctl[2]};
    tcp_families(&r, &k);
    http_families(&r, "control_", ctl, 3);
    authz_and_stack(&r, &k);
    if (p->pol) {
        outbound_policy(&r);
        outbound_balancers(&r);
    }
    inbound_routes(&r, &k);
    control_balancers(&r);
    process_and_identity(&r, now_ms);
    put(&r, "# EOF\n");
    mp_free(k.h);
    mp_free(k.t);
    return r.rc;
}
