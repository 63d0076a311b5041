/* SPDX-License-Identifier: Apache-2.0 */
/* meshsim/sim.c: the simulated mesh of meshsim.h on the model of model.c: presets, the
 * fixed-tick clock (tick 0 stands for the 6 h before start_ms, tick k ends at
 * start_ms + k x tick_ms), and read access to deployments and pods. */
#include "meshsim/model.h"

#include <string.h>

#include "common/alloc.h"

struct meshsim {
    struct meshsim_opts o;
    struct meshsim_gen *g;
    int64_t next_tick;  /* index of the next tick to run */
    int64_t elapsed_ms; /* render time - start_ms */
};

void meshsim_opts_init(struct meshsim_opts *o, enum meshsim_preset preset)
{
    bool emo = preset == MESHSIM_PRESET_EMOJIVOTO;
    *o = (struct meshsim_opts){.preset = preset,
                               .namespaces = emo ? 1 : 10,
                               .deployments = emo ? 4 : 10,
                               .replicas = emo ? 1 : 3,
                               .peers = 3,
                               .seed = 1,
                               .start_ms = INT64_C(1700006400000),
                               .tick_ms = 1000,
                               .churn_every_ms = 0,
                               .churn_fraction = 0.1,
                               .ip_base = (127u << 24) | (1u << 16) | 1u,
                               .proxy_port = 4191};
}

int meshsim_preset_parse(const char *name, enum meshsim_preset *out, struct mp_err *err)
{
    if (strcmp(name, "emojivoto") == 0)
        *out = MESHSIM_PRESET_EMOJIVOTO;
    else if (strcmp(name, "mesh") == 0)
        *out = MESHSIM_PRESET_MESH;
    else
        return mp_err_set(err, MP_EINVAL, "unknown preset \"%s\" (emojivoto, mesh)", name);
    return 0;
}

int meshsim_create(const struct meshsim_opts *o, struct meshsim **out, struct mp_err *err)
{
    *out = NULL;
    if (o->ip_base >> 24 != 127)
        return mp_err_set(err, MP_EINVAL, "meshsim: ip_base must be in 127.0.0.0/8");
    if (o->tick_ms <= 0 || o->churn_every_ms < 0 ||
        (o->churn_every_ms > 0 && !(o->churn_fraction > 0 && o->churn_fraction <= 1)))
        return mp_err_set(err, MP_EINVAL,
                          "meshsim: tick, churn period or churn fraction out of range");
    bool emo = o->preset == MESHSIM_PRESET_EMOJIVOTO;
    uint64_t pods = emo ? 4u * (uint64_t)(o->replicas > 0 ? o->replicas : 1)
                        : (uint64_t)(o->namespaces > 0 ? o->namespaces : 0) *
                              (uint64_t)(o->deployments > 0 ? o->deployments : 0) *
                              (uint64_t)(o->replicas > 0 ? o->replicas : 0);
    if (pods > 100000 || (o->ip_base & 0x00ffffffu) + pods * 2 > 0x00fffffeu)
        return mp_err_set(err, MP_EINVAL, "meshsim: too many pods for the address range");
    struct meshsim_gen_opts go;
    meshsim_gen_opts_init(&go);
    go.namespaces = emo ? 1 : o->namespaces;
    go.deployments = emo ? 4 : o->deployments;
    go.replicas = o->replicas;
    go.peers = o->peers;
    go.seed = o->seed;
    go.start_ms = o->start_ms;
    go.interval_ms = 10000; /* Prometheus's scrape interval, for the admin traffic */
    go.churn = o->churn_every_ms > 0 ? o->churn_fraction : 0;
    go.churn_every_ms = o->churn_every_ms > 0 ? o->churn_every_ms : go.churn_every_ms;
    struct meshsim_model_cfg cfg = {
        .expose = true, .emojivoto = emo, .ip_base = o->ip_base, .admin_port = o->proxy_port};
    struct meshsim_gen *g;
    int rc = meshsim_model_create(&go, &cfg, &g, err);
    if (rc)
        return rc;
    struct meshsim *m = mp_xcalloc(1, sizeof *m);
    m->o = *o;
    m->g = g;
    meshsim_model_step(g, PRE_RUN_MS, o->start_ms);
    meshsim_model_compact(g);
    m->next_tick = 1;
    *out = m;
    return 0;
}

void meshsim_destroy(struct meshsim *m)
{
    if (!m)
        return;
    meshsim_gen_destroy(m->g);
    mp_free(m);
}

void meshsim_advance(struct meshsim *m, int64_t elapsed_ms)
{
    if (elapsed_ms <= m->elapsed_ms)
        return;
    int64_t last = elapsed_ms / m->o.tick_ms;
    bool ran = false;
    for (; m->next_tick <= last; m->next_tick++) {
        meshsim_model_step(m->g, m->o.tick_ms, m->o.start_ms + m->next_tick * m->o.tick_ms);
        ran = true;
    }
    if (ran)
        meshsim_model_compact(m->g);
    m->elapsed_ms = elapsed_ms;
}

int64_t meshsim_elapsed_ms(const struct meshsim *m)
{
    return m->elapsed_ms;
}

uint64_t meshsim_generation(const struct meshsim *m)
{
    return m->g->generation;
}

size_t meshsim_deploy_count(const struct meshsim *m)
{
    return (size_t)m->g->ndeps;
}

void meshsim_deploy_get(const struct meshsim *m, size_t i, struct meshsim_deploy_info *out)
{
    const struct meshsim_gen *g = m->g;
    const struct dep *d = &g->deps[i];
    int grpc = 0;
    for (int k = 0; k < d->ncallers; k++)
        grpc += g->edges[d->callers[k]].grpc ? 1 : -1;
    *out = (struct meshsim_deploy_info){.name = d->name,
                                        .ns = d->ns_name,
                                        .app = d->app,
                                        .version = d->version,
                                        .service_account = d->sa,
                                        .service = d->has_svc ? d->svc : NULL,
                                        .service_port = d->svc_port,
                                        .target_port = 8080,
                                        .port_name = grpc > 0 ? "grpc" : "http",
                                        .pod_template_hash = d->hash,
                                        .replicas = g->o.replicas};
}

size_t meshsim_pod_count(const struct meshsim *m)
{
    return (size_t)m->g->npods;
}

void meshsim_pod_get(const struct meshsim *m, size_t i, struct meshsim_pod_info *out)
{
    const struct pod *p = m->g->pods[i];
    *out = (struct meshsim_pod_info){.uid = p->uid,
                                     .deploy = (size_t)p->dep,
                                     .name = p->name,
                                     .ip = p->ip,
                                     .ip_u32 = p->ip_u32,
                                     .created_ms = p->born_ms};
}

int meshsim_render(const struct meshsim *m, size_t i, struct mp_buf *out, struct mp_err *err)
{
    if (i >= (size_t)m->g->npods)
        return mp_err_set(err, MP_EINVAL, "meshsim: no pod %zu", i);
    int rc = meshsim_model_render(m->g, m->g->pods[i], m->o.start_ms + m->elapsed_ms, out);
    if (rc)
        return mp_err_set(err, rc, "meshsim: rendering %s", m->g->pods[i]->name);
    return 0;
}

int64_t meshsim_now_ms(const struct meshsim *m)
{
    return m->o.start_ms + m->elapsed_ms;
}
