/* SPDX-License-Identifier: Apache-2.0 */
/* meshsim/model.h (private to meshsim/ and tests/meshsim): the state of the mesh model
 * (model.c) that the proxy renderer (render.c) and the simulator (sim.c) read. One struct
 * meshsim_gen is the whole mesh: deployments, edges and, per pod, the proxy's keys (label
 * sets it keeps counters for) with their series. Thread safety: one thread at a time. */
#ifndef MESHSIM_MODEL_H
#define MESHSIM_MODEL_H

#include "meshsim/meshsim.h"

#define NBUCKETS 26 /* 25 finite bounds + +Inf */
#define MAX_LABELS 40
#define MAX_HIST 4
#define MAX_RESP 6
#define MAX_OUTCOMES 6
#define RETAIN_IDLE_MS (10 * 60 * 1000)
#define PRE_RUN_MS (6 * 3600 * 1000)
#define TIERS 4

struct latdist {
    double median, sigma, tail_p, tail_mult, shift_ms;
    double cdf[NBUCKETS - 1]; /* P(latency <= le_i) */
    double mean;
    double cdf7[7]; /* P(latency <= MESHSIM_B7_S[i] s), for the prometheus-client families */
};

struct series {
    uint64_t id;
    struct mp_str *lbl; /* 2 x nlbl, strings in the same allocation */
    size_t nlbl;
    double v;
    bool dead; /* owner dropped it; freed when the pod's list is compacted */
};

/* Pending label set: names are literals, values borrowed until lb_own(). */
struct lbuild {
    const char *k[MAX_LABELS], *v[MAX_LABELS];
    size_t n;
    char *own;
    /* keys (lb_own): the set as exposition text, k1="v1",k2="v2" (render.c) */
    char *text;
    size_t text_len;
};

struct outcome {
    const char *code, *cls, *grpc;
    double p;
};

/* Counters of the prometheus-client families (policy routes, backends, balancers, inbound
 * routes) behind one outbound service of a pod or one inbound key; expose mode only. The
 * duration histograms keep cumulative counts per bound: d7 over MESHSIM_B7_S, d4 over
 * MESHSIM_B4_S, frame sizes over MESHSIM_F3. */
struct pstate {
    const struct outcome *oc; /* the outcomes st[] counts, noc of them */
    int noc;
    bool grpc;
    uint64_t req, st[MAX_OUTCOMES];
    uint64_t d7[7], d4[4], dn;
    double d7_sum, d4_sum;
    uint64_t f_req[3], f_resp[3];
    double f_req_sum, f_resp_sum;
    uint64_t adds, removes; /* balancer endpoint updates */
};

struct hkey {
    struct lbuild base; /* first: key_new */
    struct pstate *ps;  /* expose mode, inbound keys: the inbound route families */
    struct series *req;
    struct {
        const char *code;
        struct series *b[NBUCKETS], *count, *sum;
        uint64_t cum[NBUCKETS];
    } hist[MAX_HIST];
    int nhist;
    struct {
        const struct outcome *oc;
        struct series *s;
    } resp[MAX_RESP];
    int nresp;
    int64_t expire_ms; /* retired keys: dropped at this time; 0 = live */
};

struct tkey {
    struct lbuild base; /* first: key_new */
    struct series *open_total, *open_conns, *rd, *wr, *close_ok, *close_reset;
    int conns;
    int64_t expire_ms;
};

/* ---- topology ------------------------------------------------------------------------- */

struct dep;

struct edge {
    int from, to; /* deployment indices */
    double rps;   /* per client pod */
    bool grpc;
    struct outcome oc[MAX_OUTCOMES];
    int noc;
    struct latdist out; /* client side: server time + proxy hop */
    double req_b, resp_b;
};

struct dep {
    int ns, tier;
    char name[32], ns_name[16], svc[48], sa_id[128], authority[96], version[8];
    char app[40], sa[40];
    bool has_svc; /* emojivoto's vote-bot has no Service */
    int svc_port; /* the Service's port (authority); the pods listen on 8080 */
    char hash[16];
    int *edges, nedges;     /* outgoing edge indices */
    int *callers, ncallers; /* incoming edge indices */
    struct latdist server;
    int pool; /* app->proxy connections per pool */
};

struct pod {
    int dep, slot;
    uint64_t uid;    /* unique per pod for the generator's lifetime */
    uint32_t ip_u32; /* host order; 0 unless the generator allocates loopback IPs */
    double scrape_carry;
    bool has_dead;      /* some series were dropped since the last compaction */
    struct pstate *pol; /* expose mode: one per outgoing edge (nedges) */
    char name[64], hash[16], ip[16], instance[24], addr_app[24], addr_admin[24], admin_port[8];
    char start_s[24];
    int64_t born_ms, offset_ms;
    double rss, vms, cpu_ticks, fd_base;
    double cert_issued_s;
    double admin_carry;
    struct series **ser;
    size_t nser, cap;
    /* keys: out[e_local * R + slot], out_src[e_local], in[caller_local] */
    struct hkey **out;
    struct tkey **out_dst, **out_src;
    struct hkey **in;
    struct tkey **in_src;
    struct tkey *in_dst;
    struct hkey *admin_prom, *admin_probe, *ctl[3];
    struct tkey *admin_prom_tcp, *admin_probe_tcp;
    void **retired_h; /* struct hkey *, retired (frozen until expire_ms) */
    void **retired_t; /* struct tkey * */
    size_t nretired_h, nretired_t, cap_retired_h, cap_retired_t;
    struct series *p_cpu, *p_rss, *p_vms, *p_fds, *p_maxfds, *p_threads, *p_start, *p_build,
        *p_cert_exp, *p_cert_ref, *p_cert_cnt, *p_uptime;
    struct lbuild target; /* target labels of every series */
};

struct meshsim_gen {
    struct meshsim_gen_opts o;
    uint64_t rng;
    struct dep *deps;
    int ndeps;
    struct edge *edges;
    int nedges, cap_edges;
    struct pod **pods;  /* ndeps x replicas, current generation */
    struct pod **order; /* scrape order within an interval */
    int npods;
    int64_t k, nintervals; /* interval index being emitted */
    int pod_i;             /* next pod in order */
    int64_t next_churn_ms;
    uint64_t next_id, pod_counter;
    struct outcome admin_oc, ctl_oc;
    struct latdist admin_lat, probe_lat, ctl_lat;
    struct meshsim_gen_sample *samples;
    size_t cap_samples;
    struct meshsim_gen_stats st;
    /* meshsim (model_cfg) */
    bool expose, emojivoto;
    uint32_t next_ip; /* next loopback IP to hand out, 0 = 10.244.x.y names as before */
    uint16_t admin_port;
    uint64_t generation; /* bumps when the pod set changes */
};

/* Bounds of the prometheus-client histograms (linkerd-workload.md 1.7, 1.8). */
#define MESHSIM_B7_S                                                                               \
    {                                                                                              \
        0.025, 0.05, 0.1, 0.25, 0.5, 1, 10                                                         \
    }
#define MESHSIM_B4_S                                                                               \
    {                                                                                              \
        0.05, 0.5, 1, 10                                                                           \
    }
#define MESHSIM_F3                                                                                 \
    {                                                                                              \
        128, 1024, 10240                                                                           \
    }

extern const char *const meshsim_bucket_str[NBUCKETS]; /* "1" ... "50000", "+Inf" */

struct meshsim_model_cfg {
    bool expose;         /* proxies are rendered: keep empty labels' order, lean series, pstate */
    bool emojivoto;      /* the emojivoto topology (5.1) instead of the parametric one */
    uint32_t ip_base;    /* 0: 10.244.x.y names; else loopback IPs from here (host order) */
    uint16_t admin_port; /* in admin-traffic labels; 0 = 4191 */
};

MP_NODISCARD int meshsim_model_create(const struct meshsim_gen_opts *o,
                                      const struct meshsim_model_cfg *cfg, struct meshsim_gen **out,
                                      struct mp_err *err);
/* One simulation step of dt_ms ending at now_ms; a churn round first when one is due. */
void meshsim_model_step(struct meshsim_gen *g, int64_t dt_ms, int64_t now_ms);
/* Frees series their keys dropped (the generator does it per scrape). */
void meshsim_model_compact(struct meshsim_gen *g);
/* Appends pod p's /metrics body as linkerd2-proxy renders it at now_ms (render.c).
 * MP_ELIMIT when out's limit is reached. */
MP_NODISCARD int meshsim_model_render(const struct meshsim_gen *g, const struct pod *p,
                                      int64_t now_ms, struct mp_buf *out);

#endif
