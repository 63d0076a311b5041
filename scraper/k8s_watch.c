/* SPDX-License-Identifier: Apache-2.0 */
/* scraper/k8s_watch.c: one kubernetes_sd_configs provider (kubernetes-sd.md 1.1-1.8, 2).
 *
 * Per watched resource and namespace a reflector thread runs client-go's cycle (1.3): LIST
 * (limit=500, resourceVersion=0 first, paged with continue), WATCH from the last synced RV
 * (allowWatchBookmarks, timeoutSeconds 300..599), every event and bookmark advancing the RV.
 *  - clean end of a watch: watch again at once (an empty watch under 1 s is an error);
 *  - ERROR 410/Expired in the stream, or an HTTP error other than 429: back off, re-list
 *    (RV = last synced; if that list answers 410, at once again with no RV);
 *  - transport error, 429, or a stalled watch (no byte for tuning.watch_idle_ms): back off,
 *    watch again from the last RV.
 * Backoff: tuning.backoff_initial_ms doubling with full jitter up to backoff_max_ms, reset
 * after two minutes without trouble.
 *
 * Informer stores (one per kind: the role's own kind plus pods and services for the
 * endpoints roles, plus nodes with attach_metadata.node for pod and the endpoints roles) keep
 * parsed objects (scrape_k8s_object) keyed by namespace/name. A re-list replaces the reflector's
 * part of a store and turns the difference into add/update/delete. Every change rebuilds the
 * affected groups with scrape_k8s_build and hands them to the sink: endpoints/endpointslice groups
 * are rebuilt when their own object, their service, or a pod they reference changes (better than
 * Prometheus, which keeps stale pod labels until the endpoints object itself changes: spec 6.6);
 * with attach_metadata.node, pod and endpoints groups are rebuilt when a node they name changes (a
 * reverse index of node refs, as Prometheus's node indexers re-enqueue them).
 *
 * Locks: sd->mu guards the stores and group emission; it is taken before the manager's lock
 * (the sink). Reflector threads do HTTP without holding it. */
#define _GNU_SOURCE
#include "scraper/sd_internal.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/time.h"
#include "configs/config.h"

#define NKINDS 6

static const char *const kind_role_name[NKINDS] = {
    [SCRAPE_K8S_POD] = "pod",
    [SCRAPE_K8S_ENDPOINTS] = "endpoints",
    [SCRAPE_K8S_ENDPOINTSLICE] = "endpointslice",
    [SCRAPE_K8S_SERVICE] = "service",
    [SCRAPE_K8S_NODE] = "node",
    [SCRAPE_K8S_INGRESS] = "ingress",
};
static const char *const kind_resource[NKINDS] = {
    [SCRAPE_K8S_POD] = "pods",
    [SCRAPE_K8S_ENDPOINTS] = "endpoints",
    [SCRAPE_K8S_ENDPOINTSLICE] = "endpointslices",
    [SCRAPE_K8S_SERVICE] = "services",
    [SCRAPE_K8S_NODE] = "nodes",
    [SCRAPE_K8S_INGRESS] = "ingresses",
};

/* ---- store ---------------------------------------------------------------------------------- */

struct kobj {
    struct kobj *next;
    char *ns, *name;
    char *rv;
    uint64_t gen;
    struct scrape_k8s_object *o;
};

struct kstore {
    struct kobj **b;
    size_t nb, n;
};

static uint64_t key_hash(const char *ns, const char *name)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = ns; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ '/') * 1099511628211ull;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h;
}

static struct kobj **kstore_slot(struct kstore *s, const char *ns, const char *name)
{
    if (s->nb == 0)
        return NULL;
    struct kobj **pp = &s->b[key_hash(ns, name) % s->nb];
    while (*pp != NULL && (strcmp((*pp)->ns, ns) != 0 || strcmp((*pp)->name, name) != 0))
        pp = &(*pp)->next;
    return pp;
}

static struct kobj *kstore_get(struct kstore *s, const char *ns, const char *name)
{
    struct kobj **pp = kstore_slot(s, ns, name);
    return pp ? *pp : NULL;
}

static void kstore_grow(struct kstore *s)
{
    size_t nb = s->nb ? s->nb * 2 : 64;
    struct kobj **b = mp_xcalloc(nb, sizeof *b);
    for (size_t i = 0; i < s->nb; i++) {
        for (struct kobj *e = s->b[i], *next; e != NULL; e = next) {
            next = e->next;
            struct kobj **pp = &b[key_hash(e->ns, e->name) % nb];
            e->next = *pp;
            *pp = e;
        }
    }
    mp_free(s->b);
    s->b = b;
    s->nb = nb;
}

static void kobj_free(struct kobj *e)
{
    scrape_k8s_object_destroy(e->o);
    mp_free(e->ns);
    mp_free(e->name);
    mp_free(e->rv);
    mp_free(e);
}

static void kstore_fini(struct kstore *s)
{
    for (size_t i = 0; i < s->nb; i++)
        for (struct kobj *e = s->b[i], *next; e != NULL; e = next) {
            next = e->next;
            kobj_free(e);
        }
    mp_free(s->b);
    memset(s, 0, sizeof *s);
}

/* Reverse index for the endpoints roles: pod namespace/name -> the role's objects (store
 * entries, whose addresses are stable until removal) that reference it. */
struct podref {
    struct podref *next;
    char *ns, *name;
    struct kobj **deps;
    size_t n, cap;
};

struct refidx {
    struct podref **b;
    size_t nb, n;
};

static struct podref *refidx_find(struct refidx *x, const char *ns, const char *name, bool create)
{
    if (x->nb == 0 || (create && x->n >= x->nb)) {
        if (!create)
            return NULL;
        size_t nb = x->nb ? 2 * x->nb : 64;
        struct podref **b = mp_xcalloc(nb, sizeof *b);
        for (size_t i = 0; i < x->nb; i++)
            for (struct podref *r = x->b[i], *next; r != NULL; r = next) {
                next = r->next;
                struct podref **pp = &b[key_hash(r->ns, r->name) % nb];
                r->next = *pp;
                *pp = r;
            }
        mp_free(x->b);
        x->b = b;
        x->nb = nb;
    }
    struct podref **pp = &x->b[key_hash(ns, name) % x->nb];
    for (struct podref *r = *pp; r != NULL; r = r->next)
        if (strcmp(r->ns, ns) == 0 && strcmp(r->name, name) == 0)
            return r;
    if (!create)
        return NULL;
    struct podref *r = mp_xcalloc(1, sizeof *r);
    r->ns = mp_xstrdup(ns);
    r->name = mp_xstrdup(name);
    r->next = *pp;
    *pp = r;
    x->n++;
    return r;
}

static void refidx_fini(struct refidx *x)
{
    for (size_t i = 0; i < x->nb; i++)
        for (struct podref *r = x->b[i], *next; r != NULL; r = next) {
            next = r->next;
            mp_free(r->ns);
            mp_free(r->name);
            mp_free(r->deps);
            mp_free(r);
        }
    mp_free(x->b);
    memset(x, 0, sizeof *x);
}

struct refidx_op {
    struct refidx *x;
    struct kobj *e;
    bool add;
};

static void refidx_cb(void *ctx, const char *ns, const char *name)
{
    struct refidx_op *op = ctx;
    struct podref *r = refidx_find(op->x, ns, name, op->add);
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        if (r->deps[i] == op->e) {
            if (!op->add)
                r->deps[i] = r->deps[--r->n];
            return;
        }
    if (!op->add)
        return;
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 2;
        r->deps = mp_xrealloc(r->deps, r->cap * sizeof *r->deps);
    }
    r->deps[r->n++] = op->e;
}

/* ---- provider ------------------------------------------------------------------------------- */

struct reflector {
    struct scrape_k8s_sd *sd;
    enum scrape_k8s_role kind;
    char *ns; /* NULL: cluster-wide */
    const char *label_sel, *field_sel;
    pthread_t th;
    bool started;
    char *lsrv;
    bool synced;
    uint64_t rng;
    struct mp_log_limit log_limit; /* list failures: a few lines a minute per reflector */
};

struct scrape_k8s_sd {
    struct scrape_sd_sink *sink;
    struct scrape_sd_metrics *metrics;
    struct scrape_sd_tuning tuning;
    struct scrape_k8s_client *client;
    enum scrape_k8s_role role;
    char *label_sel[NKINDS], *field_sel[NKINDS];

    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_bool stop;
    struct kstore stores[NKINDS];
    struct refidx pods_used;  /* endpoints roles only */
    struct refidx nodes_used; /* attach_node only: node ("", name) -> role objects */
    bool attach_node;         /* attach_metadata.node for pod/endpoints/endpointslice */
    uint64_t gen;
    struct reflector *refl;
    size_t nrefl, nsynced;
    bool ready_sent;
};

static bool sleep_ms(struct scrape_k8s_sd *sd, int64_t ms)
{
    struct timespec ts;
    scrape_sd_deadline(&ts, ms);
    pthread_mutex_lock(&sd->mu);
    while (!atomic_load(&sd->stop)) {
        if (pthread_cond_timedwait(&sd->cv, &sd->mu, &ts) != 0)
            break;
    }
    bool go_on = !atomic_load(&sd->stop);
    pthread_mutex_unlock(&sd->mu);
    return go_on;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

static void count_event(struct scrape_k8s_sd *sd, enum scrape_k8s_role kind, const char *event)
{
    if (sd->metrics == NULL || sd->metrics->k8s_events == NULL)
        return;
    const char *vals[2] = {kind_role_name[kind], event};
    struct mp_counter *c = mp_metrics_vec_counter(sd->metrics->k8s_events, vals);
    if (c != NULL)
        mp_counter_inc(c);
}

static void count_failure(struct scrape_k8s_sd *sd)
{
    if (sd->metrics != NULL && sd->metrics->k8s_failures != NULL)
        mp_counter_inc(sd->metrics->k8s_failures);
}

/* ---- group building (under sd->mu) ------------------------------------------------------- */

static const struct scrape_k8s_object *lookup_pod(void *ctx, const char *ns, const char *name)
{
    struct scrape_k8s_sd *sd = ctx;
    struct kobj *e = kstore_get(&sd->stores[SCRAPE_K8S_POD], ns, name);
    return e ? e->o : NULL;
}

static const struct scrape_k8s_object *lookup_service(void *ctx, const char *ns, const char *name)
{
    struct scrape_k8s_sd *sd = ctx;
    struct kobj *e = kstore_get(&sd->stores[SCRAPE_K8S_SERVICE], ns, name);
    return e ? e->o : NULL;
}

static const struct scrape_k8s_object *lookup_node(void *ctx, const char *name)
{
    struct scrape_k8s_sd *sd = ctx;
    struct kobj *e = kstore_get(&sd->stores[SCRAPE_K8S_NODE], "", name);
    return e ? e->o : NULL;
}

static void emit_built(struct scrape_k8s_sd *sd, const struct scrape_k8s_object *o)
{
    struct scrape_k8s_lookup lk = {lookup_pod, lookup_service, sd,
                                   sd->attach_node ? lookup_node : NULL};
    struct scrape_target_group g = {0};
    struct mp_err err;
    mp_err_clear(&err);
    int rc = scrape_k8s_build(o, &lk, &g, &err);
    if (rc == MP_ENOTFOUND)
        return; /* a node without an address: Prometheus sends nothing */
    if (rc != 0) {
        MP_LOG_WARN("kubernetes SD: cannot build a target group", MP_KV_STR("err", err.msg));
        return;
    }
    scrape_sd_sink_update(sd->sink, &g);
}

static void emit_deleted(struct scrape_k8s_sd *sd, const struct scrape_k8s_object *o)
{
    struct scrape_target_group g = {0};
    if (scrape_k8s_deleted_group(o, &g, NULL) == 0)
        scrape_sd_sink_update(sd->sink, &g);
}

/* Rebuilds the role's groups that depend on the pod, service or node ns/name. */
static void rebuild_dependents(struct scrape_k8s_sd *sd, enum scrape_k8s_role kind, const char *ns,
                               const char *name)
{
    struct kstore *s = &sd->stores[sd->role];
    if (kind == SCRAPE_K8S_NODE) { /* attach_metadata.node */
        struct podref *r = refidx_find(&sd->nodes_used, "", name, false);
        for (size_t i = 0; r != NULL && i < r->n; i++)
            emit_built(sd, r->deps[i]->o);
        return;
    }
    if (kind == SCRAPE_K8S_POD) {
        struct podref *r = refidx_find(&sd->pods_used, ns, name, false);
        for (size_t i = 0; r != NULL && i < r->n; i++)
            emit_built(sd, r->deps[i]->o);
        return;
    }
    if (sd->role == SCRAPE_K8S_ENDPOINTS) { /* the Service of the same name */
        struct kobj *e = kstore_get(s, ns, name);
        if (e != NULL)
            emit_built(sd, e->o);
        return;
    }
    for (size_t i = 0; i < s->nb; i++) /* slices naming the Service */
        for (struct kobj *e = s->b[i]; e != NULL; e = e->next) {
            const char *svc = scrape_k8s_endpointslice_service_name(e->o);
            if (strcmp(e->ns, ns) == 0 && svc != NULL && strcmp(svc, name) == 0)
                emit_built(sd, e->o);
        }
}

/* An object of kind changed: o is the new state, or NULL when old was deleted. */
static void on_change(struct scrape_k8s_sd *sd, enum scrape_k8s_role kind,
                      const struct scrape_k8s_object *o, const struct scrape_k8s_object *old)
{
    if (kind == sd->role) {
        if (o != NULL)
            emit_built(sd, o);
        else if (old != NULL)
            emit_deleted(sd, old);
        return;
    }
    const struct scrape_k8s_object *any = o ? o : old;
    rebuild_dependents(sd, kind, scrape_k8s_object_namespace(any), scrape_k8s_object_name(any));
}

/* Adds or drops the pod (and node) references of e (an object of the role's own kind). */
static void index_refs(struct scrape_k8s_sd *sd, enum scrape_k8s_role kind, struct kobj *e,
                       bool add)
{
    if (kind != sd->role)
        return;
    if (sd->attach_node) {
        struct refidx_op op = {&sd->nodes_used, e, add};
        scrape_k8s_object_node_refs(e->o, refidx_cb, &op);
    }
    if (kind != SCRAPE_K8S_ENDPOINTS && kind != SCRAPE_K8S_ENDPOINTSLICE)
        return;
    struct refidx_op op = {&sd->pods_used, e, add};
    scrape_k8s_object_pod_refs(e->o, refidx_cb, &op);
}

/* Upserts (under sd->mu). Takes ownership of o. */
static void store_upsert(struct scrape_k8s_sd *sd, enum scrape_k8s_role kind,
                         struct scrape_k8s_object *o, const char *rv, uint64_t gen)
{
    struct kstore *s = &sd->stores[kind];
    const char *ns = scrape_k8s_object_namespace(o), *name = scrape_k8s_object_name(o);
    struct kobj *e = kstore_get(s, ns, name);
    if (e != NULL) {
        e->gen = gen;
        if (rv != NULL && e->rv != NULL && strcmp(rv, e->rv) == 0) {
            scrape_k8s_object_destroy(o); /* unchanged (a re-list of the same state) */
            return;
        }
        struct scrape_k8s_object *old = e->o;
        index_refs(sd, kind, e, false);
        e->o = o;
        index_refs(sd, kind, e, true);
        mp_free(e->rv);
        e->rv = rv ? mp_xstrdup(rv) : NULL;
        count_event(sd, kind, "update");
        on_change(sd, kind, o, old);
        scrape_k8s_object_destroy(old);
        return;
    }
    if (s->n >= s->nb)
        kstore_grow(s);
    e = mp_xcalloc(1, sizeof *e);
    e->ns = mp_xstrdup(ns);
    e->name = mp_xstrdup(name);
    e->rv = rv ? mp_xstrdup(rv) : NULL;
    e->gen = gen;
    e->o = o;
    struct kobj **pp = kstore_slot(s, ns, name);
    e->next = *pp;
    *pp = e;
    s->n++;
    index_refs(sd, kind, e, true);
    count_event(sd, kind, "add");
    on_change(sd, kind, o, NULL);
}

static void store_remove(struct scrape_k8s_sd *sd, enum scrape_k8s_role kind, const char *ns,
                         const char *name)
{
    struct kstore *s = &sd->stores[kind];
    struct kobj **pp = kstore_slot(s, ns, name);
    if (pp == NULL || *pp == NULL)
        return;
    struct kobj *e = *pp;
    *pp = e->next;
    s->n--;
    index_refs(sd, kind, e, false);
    count_event(sd, kind, "delete");
    on_change(sd, kind, NULL, e->o);
    kobj_free(e);
}

/* Deletes the entries of the reflector's partition not seen in generation gen. */
static void store_sweep(struct scrape_k8s_sd *sd, const struct reflector *r, uint64_t gen)
{
    struct kstore *s = &sd->stores[r->kind];
    char **keys = NULL; /* ns, name pairs */
    size_t n = 0;
    for (size_t i = 0; i < s->nb; i++)
        for (struct kobj *e = s->b[i]; e != NULL; e = e->next)
            if (e->gen != gen && (r->ns == NULL || strcmp(r->ns, e->ns) == 0)) {
                keys = mp_xrealloc(keys, (n + 2) * sizeof *keys);
                keys[n++] = mp_xstrdup(e->ns);
                keys[n++] = mp_xstrdup(e->name);
            }
    for (size_t i = 0; i < n; i += 2) {
        store_remove(sd, r->kind, keys[i], keys[i + 1]);
        mp_free(keys[i]);
        mp_free(keys[i + 1]);
    }
    mp_free(keys);
}

/* ---- one object from JSON -------------------------------------------------------------- */

static const char *meta_str(json_object *o, const char *key)
{
    json_object *m = NULL, *v = NULL;
    if (json_object_object_get_ex(o, "metadata", &m) && json_object_is_type(m, json_type_object) &&
        json_object_object_get_ex(m, key, &v) && json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return NULL;
}

static struct scrape_k8s_object *parse_obj(enum scrape_k8s_role kind, json_object *j)
{
    size_t len = 0;
    const char *s = json_object_to_json_string_length(j, JSON_C_TO_STRING_PLAIN, &len);
    struct scrape_k8s_object *o = NULL;
    struct mp_err err;
    mp_err_clear(&err);
    if (scrape_k8s_object_parse(kind, s, len, &o, &err) != 0) {
        MP_LOG_WARN("kubernetes SD: skipping an object", MP_KV_STR("role", kind_role_name[kind]),
                    MP_KV_STR("err", err.msg));
        return NULL;
    }
    return o;
}

/* ---- reflector ------------------------------------------------------------------------------ */

static void q_add(struct mp_buf *b, const char *key, const char *val)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = mp_buf_appendf(b, "%c%s=", b->len == 0 || !strchr(b->data, '?') ? '?' : '&', key);
    for (const unsigned char *p = (const unsigned char *)val; rc == 0 && *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            rc = mp_buf_append(b, p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            rc = mp_buf_append(b, e, 3);
        }
    }
    if (rc != 0)
        mp_panic("k8s SD: out of memory building a query");
}

static void base_path(const struct reflector *r, struct mp_buf *b)
{
    const char *prefix = r->kind == SCRAPE_K8S_ENDPOINTSLICE ? "/apis/discovery.k8s.io/v1"
                         : r->kind == SCRAPE_K8S_INGRESS     ? "/apis/networking.k8s.io/v1"
                                                             : "/api/v1";
    int rc = r->ns ? mp_buf_appendf(b, "%s/namespaces/%s/%s", prefix, r->ns, kind_resource[r->kind])
                   : mp_buf_appendf(b, "%s/%s", prefix, kind_resource[r->kind]);
    if (rc != 0)
        mp_panic("k8s SD: out of memory building a path");
}

static int64_t backoff_delay(struct reflector *r, int64_t *backoff)
{
    int64_t b = *backoff;
    int64_t d = b + (int64_t)(rng_next(&r->rng) % (uint64_t)(b > 0 ? b : 1));
    int64_t next = b * 2;
    *backoff = next > r->sd->tuning.backoff_max_ms ? r->sd->tuning.backoff_max_ms : next;
    return d;
}

/* Runs LIST (all pages). rv: "0", the LSRV, or NULL (consistent read). On success the store
 * partition is replaced and r->lsrv set. *status: the HTTP status of the failing page. */
static int do_list(struct reflector *r, const char *rv, long *status, struct mp_err *err)
{
    struct scrape_k8s_sd *sd = r->sd;
    char *cont = NULL;
    char *list_rv = NULL;
    uint64_t gen;
    pthread_mutex_lock(&sd->mu);
    gen = ++sd->gen;
    pthread_mutex_unlock(&sd->mu);
    int rc = 0;
    for (;;) {
        struct mp_buf q, body;
        mp_buf_init(&q, 0);
        mp_buf_init(&body, 0);
        base_path(r, &q);
        if (cont != NULL)
            q_add(&q, "continue", cont);
        if (r->field_sel != NULL)
            q_add(&q, "fieldSelector", r->field_sel);
        if (r->label_sel != NULL)
            q_add(&q, "labelSelector", r->label_sel);
        q_add(&q, "limit", "500");
        if (cont == NULL && rv != NULL)
            q_add(&q, "resourceVersion", rv);
        rc = scrape_k8s_client_get(sd->client, q.data, &body, status, &sd->stop, err);
        if (rc == 0 && *status != 200)
            rc = mp_err_set(err, MP_EIO, "LIST %s: HTTP %ld: %.200s", q.data, *status,
                            body.data ? body.data : "");
        mp_buf_fini(&q);
        json_object *root = NULL;
        if (rc == 0) {
            struct json_tokener *tok = json_tokener_new_ex(64);
            root = json_tokener_parse_ex(tok, body.data ? body.data : "", (int)body.len);
            if (root == NULL || !json_object_is_type(root, json_type_object))
                rc = mp_err_set(err, MP_EPARSE, "LIST: body is not a JSON object");
            json_tokener_free(tok);
        }
        mp_buf_fini(&body);
        if (rc != 0) {
            json_object_put(root);
            break;
        }
        json_object *items = NULL, *meta = NULL, *v = NULL;
        mp_free(cont);
        cont = NULL;
        if (json_object_object_get_ex(root, "metadata", &meta)) {
            if (json_object_object_get_ex(meta, "continue", &v) &&
                json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 0)
                cont = mp_xstrdup(json_object_get_string(v));
            if (json_object_object_get_ex(meta, "resourceVersion", &v) &&
                json_object_is_type(v, json_type_string)) {
                mp_free(list_rv);
                list_rv = mp_xstrdup(json_object_get_string(v));
            }
        }
        /* parse outside the lock, apply under it */
        size_t n = 0;
        struct scrape_k8s_object **objs = NULL;
        const char **rvs = NULL;
        if (json_object_object_get_ex(root, "items", &items) &&
            json_object_is_type(items, json_type_array)) {
            n = json_object_array_length(items);
            objs = mp_xcalloc(n ? n : 1, sizeof *objs);
            rvs = mp_xcalloc(n ? n : 1, sizeof *rvs);
            for (size_t i = 0; i < n; i++) {
                json_object *it = json_object_array_get_idx(items, i);
                objs[i] = parse_obj(r->kind, it);
                rvs[i] = meta_str(it, "resourceVersion");
            }
        }
        pthread_mutex_lock(&sd->mu);
        for (size_t i = 0; i < n; i++)
            if (objs[i] != NULL)
                store_upsert(sd, r->kind, objs[i], rvs[i], gen);
        if (cont == NULL)
            store_sweep(sd, r, gen);
        pthread_mutex_unlock(&sd->mu);
        mp_free(objs);
        mp_free(rvs);
        json_object_put(root);
        if (cont == NULL)
            break;
    }
    mp_free(cont);
    if (rc == 0) {
        mp_free(r->lsrv);
        r->lsrv = list_rv ? list_rv : mp_xstrdup("");
    } else {
        mp_free(list_rv);
    }
    return rc;
}

struct watch_ctx {
    struct reflector *r;
    size_t events;
    bool gone;
    bool bad;
};

static bool on_event(void *arg, json_object *value)
{
    struct watch_ctx *w = arg;
    struct reflector *r = w->r;
    struct scrape_k8s_sd *sd = r->sd;
    struct scrape_k8s_event ev;
    struct mp_err err;
    mp_err_clear(&err);
    if (scrape_k8s_event_decode(value, &ev, &err) != 0) {
        w->bad = true;
        return false;
    }
    w->events++;
    if (strcmp(ev.type, "ERROR") == 0) {
        if (ev.code == 410 || strcmp(ev.reason, "Expired") == 0 || strcmp(ev.reason, "Gone") == 0)
            w->gone = true;
        else
            w->bad = true;
        return false;
    }
    if (strcmp(ev.type, "BOOKMARK") != 0) {
        if (strcmp(ev.type, "DELETED") == 0) {
            const char *ns = meta_str(ev.object, "namespace");
            const char *name = meta_str(ev.object, "name");
            if (name != NULL) {
                pthread_mutex_lock(&sd->mu);
                store_remove(sd, r->kind, ns ? ns : "", name);
                pthread_mutex_unlock(&sd->mu);
            }
        } else if (strcmp(ev.type, "ADDED") == 0 || strcmp(ev.type, "MODIFIED") == 0) {
            struct scrape_k8s_object *o = parse_obj(r->kind, ev.object);
            if (o != NULL) {
                pthread_mutex_lock(&sd->mu);
                store_upsert(sd, r->kind, o, ev.resource_version, sd->gen);
                pthread_mutex_unlock(&sd->mu);
            }
        } else {
            w->bad = true;
            return false;
        }
    }
    if (ev.resource_version != NULL) {
        mp_free(r->lsrv);
        r->lsrv = mp_xstrdup(ev.resource_version);
    }
    return true;
}

static void mark_synced(struct reflector *r)
{
    struct scrape_k8s_sd *sd = r->sd;
    if (r->synced)
        return;
    r->synced = true;
    pthread_mutex_lock(&sd->mu);
    bool all = ++sd->nsynced == sd->nrefl && !sd->ready_sent;
    if (all)
        sd->ready_sent = true;
    pthread_mutex_unlock(&sd->mu);
    if (all)
        scrape_sd_sink_ready(sd->sink);
}

static void *reflector_main(void *arg)
{
    struct reflector *r = arg;
    struct scrape_k8s_sd *sd = r->sd;
    const struct scrape_sd_tuning *t = &sd->tuning;
    int64_t backoff = t->backoff_initial_ms;
    int64_t last_trouble_ms = mp_mono_ns() / 1000000;
    bool relist = true, first = true;
    const char *list_rv = "0";
    while (!atomic_load(&sd->stop)) {
        int64_t now_ms = mp_mono_ns() / 1000000;
        if (now_ms - last_trouble_ms > 120000)
            backoff = t->backoff_initial_ms;
        struct mp_err err;
        mp_err_clear(&err);
        if (relist) {
            long status = 0;
            char *rv_copy = list_rv ? mp_xstrdup(list_rv) : NULL;
            int rc = do_list(r, rv_copy, &status, &err);
            mp_free(rv_copy);
            if (rc == MP_ECANCELED)
                break;
            if (rc != 0) {
                count_failure(sd);
                if (status == 410 && list_rv != NULL && strcmp(list_rv, "0") != 0) {
                    list_rv = NULL; /* the RV is gone too: consistent read at once */
                    continue;
                }
                MP_LOG_LIMITED(&r->log_limit, MP_LOG_LEVEL_WARN, "kubernetes SD: list failed",
                               MP_KV_STR("role", kind_role_name[r->kind]),
                               MP_KV_STR("err", err.msg));
                last_trouble_ms = now_ms;
                if (!sleep_ms(sd, backoff_delay(r, &backoff)))
                    break;
                continue;
            }
            if (!first)
                atomic_fetch_add(&sd->metrics->k8s_relists, 1);
            first = false;
            relist = false;
            mark_synced(r);
        }
        /* WATCH from the last synced RV */
        struct mp_buf q;
        mp_buf_init(&q, 0);
        base_path(r, &q);
        q_add(&q, "allowWatchBookmarks", "true");
        if (r->field_sel != NULL)
            q_add(&q, "fieldSelector", r->field_sel);
        if (r->label_sel != NULL)
            q_add(&q, "labelSelector", r->label_sel);
        q_add(&q, "resourceVersion", r->lsrv);
        int64_t tsec = 300 + (int64_t)(rng_next(&r->rng) % 300);
        char tbuf[24];
        snprintf(tbuf, sizeof tbuf, "%" PRId64, tsec);
        q_add(&q, "timeoutSeconds", tbuf);
        q_add(&q, "watch", "true");
        atomic_fetch_add(&sd->metrics->k8s_watches, 1);
        struct watch_ctx wc = {.r = r};
        long status = 0;
        int64_t start = mp_mono_ns();
        int rc = scrape_k8s_client_watch(sd->client, q.data, t->watch_idle_ms, (tsec + 60) * 1000,
                                         on_event, &wc, &status, &sd->stop, &err);
        mp_buf_fini(&q);
        if (rc == MP_ECANCELED || atomic_load(&sd->stop))
            break;
        bool short_empty = status == 200 && mp_mono_ns() - start < 1000000000 && wc.events == 0;
        if (wc.gone) {
            MP_LOG_INFO("kubernetes SD: watch expired, re-listing",
                        MP_KV_STR("role", kind_role_name[r->kind]));
            relist = true;
            list_rv = r->lsrv;
        } else if (rc == 0 && status == 200 && !wc.bad && !short_empty) {
            continue; /* normal end: watch again at once */
        } else {
            count_failure(sd);
            last_trouble_ms = mp_mono_ns() / 1000000;
            if (wc.bad || short_empty || (status != 0 && status != 429 && status != 200)) {
                relist = true;
                list_rv = r->lsrv;
            }
            MP_LOG_DEBUG("kubernetes SD: watch ended", MP_KV_STR("err", err.msg),
                         MP_KV_I64("status", status));
        }
        if (!sleep_ms(sd, backoff_delay(r, &backoff)))
            break;
    }
    return NULL;
}

/* ---- create / destroy ---------------------------------------------------------------------- */

static enum scrape_k8s_role role_of(enum cfg_k8s_role r)
{
    switch (r) {
    case CFG_K8S_ROLE_SERVICE:
        return SCRAPE_K8S_SERVICE;
    case CFG_K8S_ROLE_ENDPOINTS:
        return SCRAPE_K8S_ENDPOINTS;
    case CFG_K8S_ROLE_ENDPOINTSLICE:
        return SCRAPE_K8S_ENDPOINTSLICE;
    case CFG_K8S_ROLE_NODE:
        return SCRAPE_K8S_NODE;
    case CFG_K8S_ROLE_INGRESS:
        return SCRAPE_K8S_INGRESS;
    default:
        return SCRAPE_K8S_POD;
    }
}

static void add_reflector(struct scrape_k8s_sd *sd, enum scrape_k8s_role kind, const char *ns)
{
    sd->refl = mp_xrealloc(sd->refl, (sd->nrefl + 1) * sizeof *sd->refl);
    struct reflector *r = &sd->refl[sd->nrefl++];
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->ns = ns && kind != SCRAPE_K8S_NODE ? mp_xstrdup(ns) : NULL;
    r->label_sel = sd->label_sel[kind];
    r->field_sel = sd->field_sel[kind];
    r->lsrv = mp_xstrdup("");
    mp_log_limit_init(&r->log_limit, 3, 60000);
    r->rng = 0x9E3779B97F4A7C15ull ^ ((uint64_t)sd->nrefl * 0xBF58476D1CE4E5B9ull) ^
             (uint64_t)(uintptr_t)sd;
    if (r->rng == 0)
        r->rng = 1;
}

int scrape_k8s_sd_create(const struct cfg_kubernetes_sd *c,
                         const struct scrape_sd_provider_env *env, struct scrape_k8s_sd **out,
                         struct mp_err *err)
{
    *out = NULL;
    if (c->role == CFG_K8S_ROLE_UNSET)
        return mp_err_set(err, MP_EINVAL, "kubernetes_sd_configs: role %s is not supported",
                          cfg_k8s_role_name(c->role));
    struct scrape_k8s_sd *sd = mp_xcalloc(1, sizeof *sd);
    sd->sink = env->sink;
    sd->metrics = env->metrics;
    sd->tuning = *env->tuning;
    sd->role = role_of(c->role);
    /* Prometheus honours attach_metadata only for these roles and ignores it elsewhere */
    sd->attach_node = c->attach_metadata_node &&
                      (sd->role == SCRAPE_K8S_POD || sd->role == SCRAPE_K8S_ENDPOINTS ||
                       sd->role == SCRAPE_K8S_ENDPOINTSLICE);
    pthread_mutex_init(&sd->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sd->cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = scrape_k8s_client_create(c, env->service_account_dir, &sd->client, err);
    if (rc != 0) {
        scrape_k8s_sd_destroy(sd);
        return rc;
    }
    for (size_t i = 0; i < c->nselectors; i++) {
        enum scrape_k8s_role k = role_of(c->selectors[i].role);
        if (c->selectors[i].label && *c->selectors[i].label)
            sd->label_sel[k] = mp_xstrdup(c->selectors[i].label);
        if (c->selectors[i].field && *c->selectors[i].field)
            sd->field_sel[k] = mp_xstrdup(c->selectors[i].field);
    }
    /* namespaces */
    size_t nns = c->nnamespaces;
    char **nss = mp_xcalloc(nns + 1, sizeof *nss);
    for (size_t i = 0; i < c->nnamespaces; i++)
        nss[i] = c->namespaces[i];
    char *own = NULL;
    if (c->own_namespace) {
        char path[4096];
        snprintf(path, sizeof path, "%s/namespace", env->service_account_dir);
        FILE *f = fopen(path, "rb");
        char buf[256] = "";
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
            n--;
        buf[n] = '\0';
        if (n == 0) {
            mp_free(nss);
            scrape_k8s_sd_destroy(sd);
            return mp_err_set(err, MP_EINVAL,
                              "kubernetes_sd_configs: own_namespace: cannot read %s", path);
        }
        own = mp_xstrdup(buf);
        nss[nns++] = own;
    }
    enum scrape_k8s_role kinds_w[4];
    size_t nk = 0;
    kinds_w[nk++] = sd->role;
    if (sd->role == SCRAPE_K8S_ENDPOINTS || sd->role == SCRAPE_K8S_ENDPOINTSLICE) {
        kinds_w[nk++] = SCRAPE_K8S_SERVICE;
        kinds_w[nk++] = SCRAPE_K8S_POD;
    }
    if (sd->attach_node)
        kinds_w[nk++] = SCRAPE_K8S_NODE; /* cluster-scoped: one reflector */
    for (size_t k = 0; k < nk; k++) {
        if (nns == 0 || kinds_w[k] == SCRAPE_K8S_NODE)
            add_reflector(sd, kinds_w[k], NULL);
        else
            for (size_t i = 0; i < nns; i++)
                add_reflector(sd, kinds_w[k], nss[i]);
    }
    mp_free(own);
    mp_free(nss);
    for (size_t i = 0; i < sd->nrefl; i++) {
        sd->refl[i].sd = sd;
        if (pthread_create(&sd->refl[i].th, NULL, reflector_main, &sd->refl[i]) != 0) {
            scrape_k8s_sd_destroy(sd);
            return mp_err_set(err, MP_EIO, "kubernetes SD: cannot start a thread");
        }
        sd->refl[i].started = true;
    }
    *out = sd;
    return 0;
}

void scrape_k8s_sd_stop(struct scrape_k8s_sd *sd)
{
    if (sd == NULL)
        return;
    pthread_mutex_lock(&sd->mu);
    atomic_store(&sd->stop, true);
    pthread_cond_broadcast(&sd->cv);
    pthread_mutex_unlock(&sd->mu);
}

void scrape_k8s_sd_destroy(struct scrape_k8s_sd *sd)
{
    if (sd == NULL)
        return;
    scrape_k8s_sd_stop(sd);
    for (size_t i = 0; i < sd->nrefl; i++) {
        if (sd->refl[i].started)
            pthread_join(sd->refl[i].th, NULL);
        mp_free(sd->refl[i].ns);
        mp_free(sd->refl[i].lsrv);
    }
    mp_free(sd->refl);
    refidx_fini(&sd->pods_used);
    refidx_fini(&sd->nodes_used);
    for (int k = 0; k < NKINDS; k++) {
        kstore_fini(&sd->stores[k]);
        mp_free(sd->label_sel[k]);
        mp_free(sd->field_sel[k]);
    }
    scrape_k8s_client_destroy(sd->client);
    pthread_cond_destroy(&sd->cv);
    pthread_mutex_destroy(&sd->mu);
    mp_free(sd);
}
