/* SPDX-License-Identifier: Apache-2.0 */
/* tests/scraper/test_sd_table.c: the end-to-end discovery table of issue 5. The cluster of
 * testdata/sd_table/cluster.json (awkward cases: names needing sanitisation, empty values, pods
 * without ports, init containers and native sidecars, unnamed ports, Pending/Succeeded/Failed
 * pods, IPv6, headless/NodePort/LoadBalancer/ExternalName services, Endpoints with ready and
 * notReady addresses, EndpointSlices with ports as the API server defaults them, nodes with
 * every address type, Ingresses with TLS, wildcard hosts and rules without paths) is served by
 * meshsim's fake Kubernetes API on 127.0.0.1 and discovered by real list+watch for every role. Each
 * target's discovered label set must equal the table written by hand from
 * shared/spec/kubernetes-sd.md (discovered.json), and the same cluster through
 * configs/linkerd-prometheus.yml must give exactly the final labels of linkerd.json. A mismatch
 * prints a readable diff, group by group and label by label (see README.md). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/labels.h"
#include "common/str.h"
#include "configs/config.h"
#include "meshsim/meshsim.h"
#include "scraper/scraper.h"
#include "scraper/sd_internal.h"
#include "test_sd_support.h"

#define META "__meta_kubernetes_"

static json_object *read_json(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/sd_table/%s", MP_TESTDATA_DIR, name);
    json_object *j = json_object_from_file(path);
    cr_assert_not_null(j, "cannot parse %s: %s", path, json_util_get_last_err());
    return j;
}

static json_object *member(json_object *o, const char *key)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static char *fmt(const struct mp_labels *ls)
{
    struct mp_buf b;
    mp_buf_init(&b, 0);
    cr_assert_eq(mp_labels_format(ls, &b), 0);
    return mp_buf_take(&b, NULL);
}

/* ---- the fake API and the cluster ---------------------------------------------------------- */

static struct meshsim_k8s *fake;

enum load {
    LOAD_PUT,      /* every object, nodes, pods and services before what refers to them */
    LOAD_REVERSED, /* every object, EndpointSlices and Endpoints before their pods/services */
    LOAD_PENDING,  /* only the pods, without their status: scheduled nowhere, no IP */
    LOAD_DELETE,   /* delete every object */
};

/* Puts or deletes the objects of cluster.json as mode says. */
static void each_object(enum load mode)
{
    static const struct {
        const char *key;
        enum meshsim_k8s_kind kind;
    } kinds[] = {
        {"nodes", MESHSIM_K8S_NODES},
        {"pods", MESHSIM_K8S_PODS},
        {"services", MESHSIM_K8S_SERVICES},
        {"endpoints", MESHSIM_K8S_ENDPOINTS},
        {"endpointslices", MESHSIM_K8S_ENDPOINTSLICES},
        {"ingresses", MESHSIM_K8S_INGRESSES},
    };
    const size_t nk = sizeof kinds / sizeof kinds[0];
    json_object *cluster = read_json("cluster.json");
    for (size_t kk = 0; kk < nk; kk++) {
        size_t k = mode == LOAD_REVERSED ? nk - 1 - kk : kk;
        if (mode == LOAD_PENDING && kinds[k].kind != MESHSIM_K8S_PODS)
            continue;
        json_object *arr = member(cluster, kinds[k].key);
        cr_assert_not_null(arr, "cluster.json: no %s", kinds[k].key);
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
            json_object *o = json_object_array_get_idx(arr, i), *meta = member(o, "metadata");
            json_object *ns = member(meta, "namespace"), *name = member(meta, "name");
            cr_assert_not_null(name, "%s[%zu] without a name", kinds[k].key, i);
            const char *nss = ns ? json_object_get_string(ns) : "",
                       *nm = json_object_get_string(name);
            if (mode == LOAD_PENDING)
                json_object_object_del(o, "status");
            const char *js = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
            struct mp_err err;
            mp_err_clear(&err);
            int rc =
                mode == LOAD_DELETE
                    ? meshsim_k8s_delete(fake, kinds[k].kind, nss, nm, NULL, &err)
                    : meshsim_k8s_put(fake, kinds[k].kind, nss, nm, js, strlen(js), NULL, &err);
            cr_assert_eq(rc, 0, "%s %s: %s", mode == LOAD_DELETE ? "delete" : "put", nm, err.msg);
        }
    }
    json_object_put(cluster);
}

static void fake_start(void)
{
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(meshsim_k8s_create("127.0.0.1:0", NULL, &fake, &err), 0, "%s", err.msg);
}

static void fake_stop(void)
{
    meshsim_k8s_destroy(fake);
    fake = NULL;
}

TestSuite(sd_table, .init = fake_start, .fini = fake_stop, .timeout = 60);

/* ---- what discovery hands out ---------------------------------------------------------------- */

/* One group: its source and each target's full label set (group merged with the target). */
struct sgroup {
    char *source;
    struct mp_labels **t;
    size_t n;
};

#define MAX_JOBS 8

struct table {
    pthread_mutex_t mu;
    struct {
        char *job;
        struct sgroup *g;
        size_t n;
    } jobs[MAX_JOBS];
    size_t njobs;
};

/* group labels merged with target labels (a target label wins); empty values are kept, so
 * that a label discovery should have left out shows up in the diff. */
static struct mp_labels *merge(const struct mp_labels *group, const struct mp_labels *target)
{
    size_t ng = mp_labels_count(group), nt = mp_labels_count(target), n = 0;
    struct mp_label *v = calloc(ng + nt + 1, sizeof *v);
    cr_assert(v);
    for (size_t i = 0; i < nt; i++)
        v[n++] = mp_labels_at(target, i);
    for (size_t i = 0; i < ng; i++) {
        struct mp_label l = mp_labels_at(group, i);
        if (!mp_labels_has(target, l.name))
            v[n++] = l;
    }
    struct mp_labels *out = NULL;
    cr_assert_eq(mp_labels_create(v, n, &out, NULL), 0);
    free(v);
    return out;
}

static void sgroups_free(struct sgroup *g, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t t = 0; t < g[i].n; t++)
            mp_labels_release(g[i].t[t]);
        free(g[i].t);
        free(g[i].source);
    }
    free(g);
}

static void on_update(void *ctx, const char *job, const struct scrape_target_group *g, size_t n)
{
    struct table *tb = ctx;
    struct sgroup *copy = calloc(n + 1, sizeof *copy);
    cr_assert(copy);
    for (size_t i = 0; i < n; i++) {
        copy[i].source = strdup(g[i].source);
        copy[i].n = g[i].ntargets;
        copy[i].t = calloc(g[i].ntargets + 1, sizeof *copy[i].t);
        cr_assert(copy[i].source && copy[i].t);
        for (size_t t = 0; t < g[i].ntargets; t++)
            copy[i].t[t] = merge(g[i].group_labels, g[i].targets[t]);
    }
    pthread_mutex_lock(&tb->mu);
    size_t j = 0;
    while (j < tb->njobs && strcmp(tb->jobs[j].job, job) != 0)
        j++;
    if (j == tb->njobs && j < MAX_JOBS) {
        tb->jobs[j].job = strdup(job);
        tb->njobs++;
    }
    if (j < tb->njobs) {
        sgroups_free(tb->jobs[j].g, tb->jobs[j].n);
        tb->jobs[j].g = copy;
        tb->jobs[j].n = n;
        copy = NULL;
    }
    pthread_mutex_unlock(&tb->mu);
    sgroups_free(copy, copy ? n : 0);
}

/* Runs discovery for yaml into tb (the caller stops it with scrape_discovery_destroy). */
static struct scrape_discovery *discover(const char *yaml, struct table *tb,
                                         struct cfg_config **cfg_out)
{
    memset(tb, 0, sizeof *tb);
    pthread_mutex_init(&tb->mu, NULL);
    struct scrape_discovery_opts o;
    scrape_discovery_opts_init(&o);
    o.on_update = on_update;
    o.ctx = tb;
    o.update_interval_ms = 20;
    struct scrape_discovery *d = NULL;
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(scrape_discovery_create(&o, &d, &err), 0, "%s", err.msg);
    struct scrape_sd_tuning t;
    scrape_sd_tuning_init(&t);
    t.backoff_initial_ms = 50;
    t.backoff_max_ms = 200;
    t.first_update_ms = 2000;
    scrape_discovery_tune(d, &t);
    struct cfg_config *cfg = NULL;
    cr_assert_eq(cfg_config_load_buf("sd_table.yml", yaml, strlen(yaml), &cfg, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(scrape_discovery_apply(d, cfg, &err), 0, "%s", err.msg);
    *cfg_out = cfg;
    return d;
}

static void table_fini(struct table *tb)
{
    for (size_t j = 0; j < tb->njobs; j++) {
        sgroups_free(tb->jobs[j].g, tb->jobs[j].n);
        free(tb->jobs[j].job);
    }
    pthread_mutex_destroy(&tb->mu);
}

/* ---- expected sets from the hand-written tables --------------------------------------------- */

/* A key of discovered.json: "__x" and "instance" as they are, anything else after META. */
static void key_name(const char *key, char *buf, size_t cap)
{
    if (strncmp(key, "__", 2) == 0 || strcmp(key, "instance") == 0)
        snprintf(buf, cap, "%s", key);
    else
        snprintf(buf, cap, META "%s", key);
}

struct lset {
    char *name[256], *value[256];
    size_t n;
};

static void lset_set(struct lset *s, const char *name, const char *value)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->name[i], name) == 0) {
            free(s->value[i]);
            s->value[i] = strdup(value);
            return;
        }
    cr_assert(s->n < 256);
    s->name[s->n] = strdup(name);
    s->value[s->n++] = strdup(value);
}

static struct mp_labels *lset_take(struct lset *s)
{
    struct mp_label v[256];
    for (size_t i = 0; i < s->n; i++)
        v[i] = (struct mp_label){mp_str_c(s->name[i]), mp_str_c(s->value[i])};
    struct mp_labels *out = NULL;
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(mp_labels_create(v, s->n, &out, &err), 0, "expected set: %s", err.msg);
    for (size_t i = 0; i < s->n; i++) {
        free(s->name[i]);
        free(s->value[i]);
    }
    s->n = 0;
    return out;
}

/* Adds the labels of obj to s, expanding "$pod" / "$service" from the table root. */
static void add_expected(struct lset *s, json_object *root, json_object *obj, bool shorthand)
{
    json_object_object_foreach(obj, key, val)
    {
        const char *v = json_object_get_string(val);
        if (shorthand && (strcmp(key, "$pod") == 0 || strcmp(key, "$service") == 0)) {
            bool pod = key[1] == 'p';
            char src[512];
            snprintf(src, sizeof src, "%s/%s", pod ? "pod" : "svc", v);
            json_object *g = member(member(member(root, pod ? "pod" : "service"), src), "group");
            cr_assert_not_null(g, "discovered.json: %s %s not in the table", key, v);
            json_object_object_foreach(g, gk, gv)
            {
                if (pod && strcmp(gk, "namespace") == 0)
                    continue;
                char name[512];
                key_name(gk, name, sizeof name);
                lset_set(s, name, json_object_get_string(gv));
            }
            continue;
        }
        char name[512];
        if (shorthand)
            key_name(key, name, sizeof name);
        else
            snprintf(name, sizeof name, "%s", key);
        lset_set(s, name, v);
    }
}

/* discovered.json section role as groups (sorted by source like the actual ones). */
static struct sgroup *expected_discovered(json_object *root, const char *role, size_t *n)
{
    json_object *sec = member(root, role);
    cr_assert_not_null(sec, "discovered.json: no section %s", role);
    size_t cap = (size_t)json_object_object_length(sec), i = 0;
    struct sgroup *g = calloc(cap + 1, sizeof *g);
    cr_assert(g);
    json_object_object_foreach(sec, source, grp)
    {
        json_object *targets = member(grp, "targets");
        g[i].source = strdup(source);
        g[i].n = json_object_array_length(targets);
        g[i].t = calloc(g[i].n + 1, sizeof *g[i].t);
        for (size_t t = 0; t < g[i].n; t++) {
            struct lset s = {0};
            add_expected(&s, root, member(grp, "group"), true);
            add_expected(&s, root, json_object_array_get_idx(targets, t), true);
            g[i].t[t] = lset_take(&s);
        }
        i++;
    }
    *n = i;
    return g;
}

/* ---- the diff ------------------------------------------------------------------------------- */

static int sgroup_cmp(const void *a, const void *b)
{
    return strcmp(((const struct sgroup *)a)->source, ((const struct sgroup *)b)->source);
}

#define SAY(out, ...) cr_assert_eq(mp_buf_appendf((out), __VA_ARGS__), 0)

/* Label by label: "- name=value" only expected, "+ name=value" only discovered. */
static void label_diff(struct mp_buf *out, const struct mp_labels *want,
                       const struct mp_labels *got)
{
    size_t i = 0, j = 0, nw = mp_labels_count(want), ng = mp_labels_count(got);
    while (i < nw || j < ng) {
        struct mp_label w = i < nw ? mp_labels_at(want, i) : (struct mp_label){0};
        struct mp_label g = j < ng ? mp_labels_at(got, j) : (struct mp_label){0};
        int c = i >= nw ? 1 : j >= ng ? -1 : strcmp(w.name.ptr, g.name.ptr);
        if (c == 0 && strcmp(w.value.ptr, g.value.ptr) == 0) {
            i++, j++;
            continue;
        }
        if (c <= 0) {
            SAY(out, "        - %s=\"%s\"\n", w.name.ptr, w.value.ptr);
            i++;
        }
        if (c >= 0) {
            SAY(out, "        + %s=\"%s\"\n", g.name.ptr, g.value.ptr);
            j++;
        }
    }
}

/* Number of labels two sets share with equal values. */
static size_t common_labels(const struct mp_labels *a, const struct mp_labels *b)
{
    size_t n = 0;
    for (size_t i = 0; i < mp_labels_count(a); i++) {
        struct mp_label l = mp_labels_at(a, i);
        if (mp_labels_has(b, l.name) && mp_str_eq(mp_labels_get(b, l.name), l.value))
            n++;
    }
    return n;
}

static void target_line(struct mp_buf *out, const char *what, size_t i, const struct mp_labels *ls)
{
    char *s = fmt(ls);
    SAY(out, "    %s target %zu %s\n", what, i, s);
    free(s);
}

/* Targets of one group: exact matches in order; otherwise the closest unmatched target (same
 * __address__ preferred, most shared labels) with a label diff; order errors named. */
static void targets_diff(struct mp_buf *out, const struct sgroup *w, const struct sgroup *g)
{
    bool *used = calloc(g->n + 1, sizeof *used);
    cr_assert(used);
    for (size_t i = 0; i < w->n; i++) {
        if (i < g->n && !used[i] && mp_labels_equal(w->t[i], g->t[i])) {
            used[i] = true;
            continue;
        }
        size_t best = SIZE_MAX, score = 0;
        for (size_t j = 0; j < g->n; j++) {
            if (used[j])
                continue;
            if (mp_labels_equal(w->t[i], g->t[j])) {
                best = j;
                score = SIZE_MAX;
                break;
            }
            struct mp_str wa = mp_labels_get(w->t[i], mp_str_c("__address__"));
            size_t s = common_labels(w->t[i], g->t[j]) +
                       (mp_str_eq(wa, mp_labels_get(g->t[j], mp_str_c("__address__"))) ? 1000 : 0);
            if (s > score) {
                score = s;
                best = j;
            }
        }
        if (best != SIZE_MAX && score == SIZE_MAX) {
            SAY(out, "    order: expected target %zu is discovered as target %zu\n", i, best);
        } else if (best != SIZE_MAX && score >= 1000) {
            SAY(out, "    target %zu (discovered %zu) differs:\n", i, best);
            label_diff(out, w->t[i], g->t[best]);
        } else {
            target_line(out, "missing", i, w->t[i]);
            best = SIZE_MAX;
        }
        if (best != SIZE_MAX)
            used[best] = true;
    }
    for (size_t j = 0; j < g->n; j++)
        if (!used[j])
            target_line(out, "unexpected", j, g->t[j]);
    free(used);
}

/* Appends the differences between the expected and the discovered groups of one job to out. */
static void groups_diff(struct mp_buf *out, const char *job, struct sgroup *w, size_t nw,
                        struct sgroup *g, size_t ng)
{
    if (nw > 1)
        qsort(w, nw, sizeof *w, sgroup_cmp);
    if (ng > 1)
        qsort(g, ng, sizeof *g, sgroup_cmp);
    size_t i = 0, j = 0;
    while (i < nw || j < ng) {
        int c = i >= nw ? 1 : j >= ng ? -1 : strcmp(w[i].source, g[j].source);
        if (c < 0) {
            SAY(out, "  %s: group %s missing\n", job, w[i].source);
            for (size_t t = 0; t < w[i].n; t++)
                target_line(out, "missing", t, w[i].t[t]);
            i++;
        } else if (c > 0) {
            SAY(out, "  %s: unexpected group %s\n", job, g[j].source);
            for (size_t t = 0; t < g[j].n; t++)
                target_line(out, "unexpected", t, g[j].t[t]);
            j++;
        } else {
            struct mp_buf tmp;
            mp_buf_init(&tmp, 0);
            targets_diff(&tmp, &w[i], &g[j]);
            if (tmp.len)
                SAY(out, "  %s: group %s:\n%s", job, w[i].source, tmp.data);
            mp_buf_fini(&tmp);
            i++, j++;
        }
    }
}

/* A copy of job's current groups (NULL, 0 before its first update). */
static struct sgroup *snapshot(struct table *tb, const char *job, size_t *n)
{
    struct sgroup *out = NULL;
    *n = 0;
    pthread_mutex_lock(&tb->mu);
    for (size_t j = 0; j < tb->njobs; j++) {
        if (strcmp(tb->jobs[j].job, job) != 0)
            continue;
        out = calloc(tb->jobs[j].n + 1, sizeof *out);
        cr_assert(out);
        for (size_t i = 0; i < tb->jobs[j].n; i++) {
            const struct sgroup *s = &tb->jobs[j].g[i];
            out[i].source = strdup(s->source);
            out[i].n = s->n;
            out[i].t = calloc(s->n + 1, sizeof *out[i].t);
            for (size_t t = 0; t < s->n; t++)
                out[i].t[t] = mp_labels_acquire(s->t[t]);
        }
        *n = tb->jobs[j].n;
    }
    pthread_mutex_unlock(&tb->mu);
    return out;
}

/* What each job's check compares: expected groups, and a transformation of the discovered
 * ones (identity for the discovered table, relabeling for the Linkerd one). */
typedef struct sgroup *transform_fn(void *ctx, const char *job, struct sgroup *g, size_t *n);

struct check {
    const char *job;
    struct sgroup *want;
    size_t nwant;
};

/* Polls (bounded: 10 s in 20 ms steps) until every job matches; returns the last diff ("" when
 * all matched). The endpoints roles may first be built before their pod/service caches are
 * filled (spec 6.6), so the table is awaited rather than taken from the first update. */
static char *await_table(struct table *tb, struct check *c, size_t nc, transform_fn *xf, void *ctx)
{
    char *diff = NULL;
    for (int round = 0; round < 500; round++) {
        struct mp_buf out;
        mp_buf_init(&out, 0);
        for (size_t k = 0; k < nc; k++) {
            size_t ng;
            struct sgroup *g = snapshot(tb, c[k].job, &ng);
            if (xf)
                g = xf(ctx, c[k].job, g, &ng);
            groups_diff(&out, c[k].job, c[k].want, c[k].nwant, g, ng);
            sgroups_free(g, ng);
        }
        free(diff);
        diff = mp_buf_take(&out, NULL);
        if (diff == NULL || diff[0] == '\0')
            break;
        sd_sleep_ms(20);
    }
    return diff;
}

/* ---- the discovered table ------------------------------------------------------------------ */

static const char *const roles[] = {"pod",     "endpoints", "endpointslice",
                                    "service", "node",      "ingress"};
#define NROLES 6

/* One job per role, named after it, against the fake. */
static char *roles_yaml(void)
{
    struct mp_buf y;
    mp_buf_init(&y, 0);
    cr_assert_eq(mp_buf_append_str(&y, "scrape_configs:\n"), 0);
    for (size_t r = 0; r < NROLES; r++)
        SAY(&y,
            "- job_name: %s\n"
            "  kubernetes_sd_configs:\n"
            "  - role: %s\n"
            "    api_server: http://127.0.0.1:%u\n",
            roles[r], roles[r], (unsigned)meshsim_k8s_port(fake));
    return mp_buf_take(&y, NULL);
}

/* The expected groups of every role; empty: none (everything deleted). */
static void expected_roles(struct check *c, bool empty)
{
    json_object *root = read_json("discovered.json");
    for (size_t r = 0; r < NROLES; r++) {
        c[r] = (struct check){roles[r], NULL, 0};
        if (!empty)
            c[r].want = expected_discovered(root, roles[r], &c[r].nwant);
    }
    json_object_put(root);
}

static void checks_fini(struct check *c, size_t n)
{
    for (size_t k = 0; k < n; k++)
        sgroups_free(c[k].want, c[k].nwant);
}

static void expect_no_diff(char *diff, const char *what)
{
    cr_expect(diff[0] == '\0', "%s (- expected, + discovered):\n%s", what, diff);
    free(diff);
}

/* The cluster exists before discovery starts: every object arrives through the initial LIST. */
Test(sd_table, discovered_labels_per_role)
{
    each_object(LOAD_PUT);
    struct check c[NROLES];
    expected_roles(c, false);
    char *yaml = roles_yaml();
    struct table tb;
    struct cfg_config *cfg;
    struct scrape_discovery *d = discover(yaml, &tb, &cfg);
    char *diff = await_table(&tb, c, NROLES, NULL, NULL);
    scrape_discovery_destroy(d);
    cfg_config_destroy(cfg);
    table_fini(&tb);
    checks_fini(c, NROLES);
    free(yaml);
    expect_no_diff(diff, "listed cluster differs from testdata/sd_table/discovered.json");
}

struct reqs {
    size_t lists, watches;
};

static void count_request(void *ctx, const struct meshsim_k8s_request *r)
{
    struct reqs *n = ctx;
    if (r->watch)
        n->watches++;
    else if (strcmp(r->path, "/version") != 0)
        n->lists++;
}

static struct reqs requests(void)
{
    struct reqs n = {0, 0};
    meshsim_k8s_requests(fake, count_request, &n);
    return n;
}

static bool all_watching(void *ctx)
{
    (void)ctx; /* pod 1, endpoints 3, endpointslice 3, service 1, node 1, ingress 1 */
    return meshsim_k8s_watch_count(fake) >= 10;
}

/* The cluster is created, then deleted, while discovery watches, with no re-list in between:
 * the pods first arrive (ADDED) as the API shows them before scheduling (no IP: no targets),
 * then every object arrives EndpointSlices and Endpoints first, so the pods reach their final
 * state (MODIFIED) after the objects that refer to them, and at last everything is DELETED.
 * The endpoints roles must then re-resolve their pods and services (spec 6.6: preferable to
 * Prometheus's lag), so the end state is the same table as from a LIST. */
Test(sd_table, discovered_labels_through_watch_events)
{
    char *yaml = roles_yaml();
    struct table tb;
    struct cfg_config *cfg;
    struct scrape_discovery *d = discover(yaml, &tb, &cfg);
    cr_assert(sd_wait_for(all_watching, NULL), "only %zu watches open",
              meshsim_k8s_watch_count(fake));
    struct reqs before = requests();
    each_object(LOAD_PENDING);
    each_object(LOAD_REVERSED);
    struct check c[NROLES];
    expected_roles(c, false);
    expect_no_diff(await_table(&tb, c, NROLES, NULL, NULL),
                   "watched cluster differs from testdata/sd_table/discovered.json");
    checks_fini(c, NROLES);

    each_object(LOAD_DELETE);
    expected_roles(c, true);
    expect_no_diff(await_table(&tb, c, NROLES, NULL, NULL),
                   "groups left after deleting everything");
    struct reqs after = requests();
    cr_expect_eq(after.lists, before.lists, "re-listed: %zu lists before, %zu after", before.lists,
                 after.lists);
    scrape_discovery_destroy(d);
    cfg_config_destroy(cfg);
    table_fini(&tb);
    free(yaml);
}

/* ---- attach_metadata.node ------------------------------------------------------------------- */

/* The value of name in ls, or NULL. */
static const char *label_of(const struct mp_labels *ls, const char *name)
{
    if (!mp_labels_has(ls, mp_str_c(name)))
        return NULL;
    return mp_labels_get(ls, mp_str_c(name)).ptr;
}

/* The node whose metadata attach_metadata.node puts on a target of role (spec 2.2, and
 * Prometheus's endpoints/endpointslice add()): the pod's node; an endpoint's nodeName, else a
 * Node targetRef; a slice endpoint's Node targetRef, else its nodeName. Extra targets of
 * uncovered pod ports carry no endpoint_* labels and so get no node. */
static const char *attached_node(const char *role, const struct mp_labels *t)
{
    if (strcmp(role, "pod") == 0)
        return label_of(t, META "pod_node_name");
    const char *p = strcmp(role, "endpoints") == 0 ? META "endpoint" : META "endpointslice";
    char kind[128], name[128], node[128];
    snprintf(kind, sizeof kind, "%s_address_target_kind", p);
    snprintf(name, sizeof name, "%s_address_target_name", p);
    snprintf(node, sizeof node, "%s%s_node_name", p,
             strcmp(role, "endpoints") == 0 ? "" : "_endpoint");
    const char *k = label_of(t, kind), *n = label_of(t, node);
    bool node_ref = k && strcmp(k, "Node") == 0;
    if (strcmp(role, "endpoints") == 0)
        return n ? n : node_ref ? label_of(t, name) : NULL;
    return node_ref ? label_of(t, name) : n;
}

/* The role's table with, on each target, the node labels attach_metadata adds: the node's
 * group labels of the node section minus node_provider_id (no addresses either). */
static struct sgroup *expected_attached(json_object *root, const char *role, size_t *n)
{
    struct sgroup *g = expected_discovered(root, role, n);
    for (size_t i = 0; i < *n; i++)
        for (size_t t = 0; t < g[i].n; t++) {
            const char *node = attached_node(role, g[i].t[t]);
            char src[256];
            snprintf(src, sizeof src, "node/%s", node ? node : "");
            json_object *ng = node ? member(member(member(root, "node"), src), "group") : NULL;
            if (ng == NULL)
                continue;
            struct lset s = {0};
            for (size_t k = 0; k < mp_labels_count(g[i].t[t]); k++) {
                struct mp_label l = mp_labels_at(g[i].t[t], k);
                lset_set(&s, l.name.ptr, l.value.ptr);
            }
            json_object_object_foreach(ng, key, val)
            {
                if (strcmp(key, "node_provider_id") == 0)
                    continue;
                char name[512];
                key_name(key, name, sizeof name);
                lset_set(&s, name, json_object_get_string(val));
            }
            mp_labels_release(g[i].t[t]);
            g[i].t[t] = lset_take(&s);
        }
    return g;
}

/* pod, endpoints and endpointslice with attach_metadata.node: the tables of those roles plus
 * the node labels (jobs named <role>_attach). A node watch per job: 1 + 4 + 4. Then a node
 * label change reaches every dependent group through the node watch alone. */
Test(sd_table, attach_metadata_node)
{
    static const char *const aroles[] = {"pod", "endpoints", "endpointslice"};
    each_object(LOAD_PUT);
    struct mp_buf y;
    mp_buf_init(&y, 0);
    SAY(&y, "scrape_configs:\n");
    for (size_t r = 0; r < 3; r++)
        SAY(&y,
            "- job_name: %s_attach\n"
            "  kubernetes_sd_configs:\n"
            "  - role: %s\n"
            "    api_server: http://127.0.0.1:%u\n"
            "    attach_metadata: {node: true}\n",
            aroles[r], aroles[r], (unsigned)meshsim_k8s_port(fake));
    char *yaml = mp_buf_take(&y, NULL);
    char jobs[3][32];
    struct check c[3];
    json_object *root = read_json("discovered.json");
    for (size_t r = 0; r < 3; r++) {
        snprintf(jobs[r], sizeof jobs[r], "%s_attach", aroles[r]);
        c[r] = (struct check){jobs[r], NULL, 0};
        c[r].want = expected_attached(root, aroles[r], &c[r].nwant);
    }
    struct table tb;
    struct cfg_config *cfg;
    struct scrape_discovery *d = discover(yaml, &tb, &cfg);
    expect_no_diff(await_table(&tb, c, 3, NULL, NULL),
                   "attach_metadata differs from discovered.json plus the node labels");
    checks_fini(c, 3);

    /* worker-2 gets a new label: every group naming it follows */
    json_object *cluster = read_json("cluster.json"), *nodes = member(cluster, "nodes");
    json_object *w2 = NULL;
    for (size_t i = 0; i < json_object_array_length(nodes); i++) {
        json_object *o = json_object_array_get_idx(nodes, i);
        if (strcmp(json_object_get_string(member(member(o, "metadata"), "name")), "worker-2") == 0)
            w2 = o;
    }
    cr_assert_not_null(w2);
    json_object *labels = member(member(w2, "metadata"), "labels");
    cr_assert_not_null(labels);
    json_object_object_add(labels, "rack", json_object_new_string("r7"));
    const char *js = json_object_to_json_string_ext(w2, JSON_C_TO_STRING_PLAIN);
    cr_assert_eq(
        meshsim_k8s_put(fake, MESHSIM_K8S_NODES, "", "worker-2", js, strlen(js), NULL, NULL), 0);
    json_object *ng = member(member(member(root, "node"), "node/worker-2"), "group");
    json_object_object_add(ng, "node_label_rack", json_object_new_string("r7"));
    json_object_object_add(ng, "node_labelpresent_rack", json_object_new_string("true"));
    for (size_t r = 0; r < 3; r++) {
        c[r] = (struct check){jobs[r], NULL, 0};
        c[r].want = expected_attached(root, aroles[r], &c[r].nwant);
    }
    struct reqs before = requests();
    expect_no_diff(await_table(&tb, c, 3, NULL, NULL), "after the worker-2 label change");
    cr_expect_eq(requests().lists, before.lists, "re-listed after a node change");
    checks_fini(c, 3);
    json_object_put(cluster);
    json_object_put(root);
    scrape_discovery_destroy(d);
    cfg_config_destroy(cfg);
    table_fini(&tb);
    free(yaml);
}

/* ---- the same cluster through Linkerd's relabeling --------------------------------------- */

/* configs/linkerd-prometheus.yml with api_server (the fake) added to every kubernetes SD. */
static char *linkerd_yaml(void)
{
    FILE *f = fopen(MP_SOURCE_DIR "/configs/linkerd-prometheus.yml", "r");
    cr_assert_not_null(f);
    struct mp_buf y;
    mp_buf_init(&y, 0);
    char line[1024];
    size_t sds = 0;
    while (fgets(line, sizeof line, f)) {
        cr_assert_eq(mp_buf_append_str(&y, line), 0);
        if (strncmp(line, "  - role: ", 10) == 0) {
            SAY(&y, "    api_server: http://127.0.0.1:%u\n", (unsigned)meshsim_k8s_port(fake));
            sds++;
        }
    }
    fclose(f);
    cr_assert_eq(sds, 4, "the config's kubernetes_sd_configs changed: %zu", sds);
    return mp_buf_take(&y, NULL);
}

/* Relabels each discovered target with the job's config: kept ones become their final labels
 * plus __url__; a rejected target becomes {__error__=...}; groups with nothing kept go. */
static struct sgroup *relabel_groups(void *ctx, const char *job, struct sgroup *g, size_t *n)
{
    const struct cfg_scrape_config *sc = cfg_config_find_job(ctx, job);
    cr_assert_not_null(sc, "job %s", job);
    size_t out_n = 0;
    for (size_t i = 0; i < *n; i++) {
        size_t kept = 0;
        for (size_t t = 0; t < g[i].n; t++) {
            struct mp_labels *final = NULL;
            struct scrape_target_url u;
            struct mp_err err;
            mp_err_clear(&err);
            int rc = scrape_target_labels(g[i].t[t], sc, &final, &u, &err);
            mp_labels_release(g[i].t[t]);
            g[i].t[t] = NULL;
            if (rc == SCRAPE_TARGET_DROPPED)
                continue;
            struct lset s = {0};
            if (rc == 0) {
                for (size_t k = 0; k < mp_labels_count(final); k++) {
                    struct mp_label l = mp_labels_at(final, k);
                    lset_set(&s, l.name.ptr, l.value.ptr);
                }
                lset_set(&s, "__url__", u.str);
            } else {
                lset_set(&s, "__error__", err.msg);
            }
            mp_labels_release(final);
            scrape_target_url_fini(&u);
            g[i].t[kept++] = lset_take(&s);
        }
        g[i].n = kept;
        if (kept) {
            g[out_n++] = g[i];
        } else {
            free(g[i].t);
            free(g[i].source);
        }
    }
    *n = out_n;
    return g;
}

Test(sd_table, linkerd_final_labels)
{
    each_object(LOAD_PUT);
    json_object *root = read_json("linkerd.json"), *jobs = member(root, "jobs");
    cr_assert_not_null(jobs);
    struct check c[MAX_JOBS];
    size_t nc = 0;
    json_object_object_foreach(jobs, job, groups)
    {
        cr_assert(nc < MAX_JOBS);
        size_t ng = 0, cap = (size_t)json_object_object_length(groups);
        struct sgroup *g = calloc(cap + 1, sizeof *g);
        cr_assert(g);
        json_object_object_foreach(groups, source, targets)
        {
            g[ng].source = strdup(source);
            g[ng].n = json_object_array_length(targets);
            g[ng].t = calloc(g[ng].n + 1, sizeof *g[ng].t);
            for (size_t t = 0; t < g[ng].n; t++) {
                struct lset s = {0};
                add_expected(&s, root, json_object_array_get_idx(targets, t), false);
                g[ng].t[t] = lset_take(&s);
            }
            ng++;
        }
        c[nc++] = (struct check){job, g, ng};
    }
    char *yaml = linkerd_yaml();
    struct table tb;
    struct cfg_config *cfg;
    struct scrape_discovery *d = discover(yaml, &tb, &cfg);
    cr_assert_eq(cfg->nscrape_configs, nc, "linkerd.json must list every job of the config");
    char *diff = await_table(&tb, c, nc, relabel_groups, cfg);
    scrape_discovery_destroy(d);
    cfg_config_destroy(cfg);
    table_fini(&tb);
    for (size_t k = 0; k < nc; k++)
        sgroups_free(c[k].want, c[k].nwant);
    json_object_put(root);
    free(yaml);
    expect_no_diff(diff, "final labels differ from testdata/sd_table/linkerd.json");
}
