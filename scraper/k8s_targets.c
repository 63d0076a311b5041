/* SPDX-License-Identifier: Apache-2.0 */
/* scraper/k8s_targets.c: Kubernetes API objects -> Prometheus 2.55 target groups
 * (spec kubernetes-sd.md section 2; worked example in section 3).
 *
 * An object is kept as its json-c tree. Every field is read through the checked getters
 * below, which give Go's zero value for an absent or null field and fail on a field of the
 * wrong JSON type (Go's json.Unmarshal would fail too). Parsing a pod, endpoints object,
 * slice or service runs its builder once, so a parsed object is known to be readable and a
 * later build can fail only on memory.
 *
 * Example (spec 3.2): the pod web-7d9c5b8f6b-x2k4q with containers linkerd-proxy (ports 4143,
 * 4191), web-svc (8080) and init container linkerd-init (no ports) gives the group
 * pod/emojivoto/web-7d9c5b8f6b-x2k4q with the pod labels and four targets
 * 10.244.2.17:4143, 10.244.2.17:4191, 10.244.2.17:8080 and 10.244.2.17 (init="true"). */
#include "scraper/scraper.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "common/str.h"

#define META "__meta_kubernetes_"
#define NAME_MAX_BYTES ((size_t)1 << 20) /* cap of one composed label name */

struct scrape_k8s_object {
    enum scrape_k8s_role role;
    json_object *root;
    const char *ns;   /* borrowed from root; "" if absent */
    const char *name; /* borrowed from root */
};

/* ---- checked field access --------------------------------------------------------------- */

/* Read context: the object (for messages) and the error sink. */
struct rd {
    const struct scrape_k8s_object *o;
    struct mp_err *err;
};

static int bad_type(const struct rd *r, const char *where, const char *key, const char *want)
{
    return mp_err_set(r->err, MP_EPARSE, "%s/%s: %s%s%s: expected %s", r->o ? r->o->ns : "",
                      r->o ? r->o->name : "", where, *where ? "." : "", key, want);
}

/* *out = o[key]; NULL when absent or null. Fails when present with another type. */
static int get_typed(const struct rd *r, json_object *o, const char *where, const char *key,
                     enum json_type type, const char *want, json_object **out)
{
    *out = NULL;
    json_object *v = NULL;
    if (o == NULL || !json_object_object_get_ex(o, key, &v) || v == NULL)
        return 0;
    if (!json_object_is_type(v, type))
        return bad_type(r, where, key, want);
    *out = v;
    return 0;
}

static int get_obj(const struct rd *r, json_object *o, const char *where, const char *key,
                   json_object **out)
{
    return get_typed(r, o, where, key, json_type_object, "an object", out);
}

static int get_arr(const struct rd *r, json_object *o, const char *where, const char *key,
                   json_object **out)
{
    return get_typed(r, o, where, key, json_type_array, "an array", out);
}

/* *out = the string, "" when absent; *present (may be NULL) says whether it was there. */
static int get_str(const struct rd *r, json_object *o, const char *where, const char *key,
                   const char **out, bool *present)
{
    json_object *v;
    int rc = get_typed(r, o, where, key, json_type_string, "a string", &v);
    *out = v ? json_object_get_string(v) : "";
    if (present)
        *present = v != NULL;
    return rc;
}

/* int32 field (ports); 0 when absent. */
static int get_i32(const struct rd *r, json_object *o, const char *where, const char *key,
                   int32_t *out, bool *present)
{
    json_object *v;
    int rc = get_typed(r, o, where, key, json_type_int, "an integer", &v);
    *out = 0;
    if (present)
        *present = v != NULL;
    if (rc || !v)
        return rc;
    int64_t x = json_object_get_int64(v);
    if (x < INT32_MIN || x > INT32_MAX)
        return bad_type(r, where, key, "an int32");
    *out = (int32_t)x;
    return 0;
}

/* -1 absent, 0 false, 1 true. */
static int get_bool(const struct rd *r, json_object *o, const char *where, const char *key,
                    int *out)
{
    json_object *v;
    int rc = get_typed(r, o, where, key, json_type_boolean, "a boolean", &v);
    *out = v ? (json_object_get_boolean(v) ? 1 : 0) : -1;
    return rc;
}

/* The object at i of an array; elements must be objects (null reads as an empty object). */
static int arr_obj(const struct rd *r, json_object *arr, size_t i, const char *where,
                   json_object **out)
{
    json_object *v = json_object_array_get_idx(arr, i);
    *out = NULL;
    if (v == NULL)
        return 0;
    if (!json_object_is_type(v, json_type_object)) {
        char at[32];
        snprintf(at, sizeof at, "[%zu]", i);
        return bad_type(r, where, at, "an object");
    }
    *out = v;
    return 0;
}

static size_t arr_len(json_object *arr)
{
    return arr ? json_object_array_length(arr) : 0;
}

/* ---- label assembly --------------------------------------------------------------------- */

/* A builder plus a scratch buffer for composed names. */
struct lb {
    struct mp_labels_builder *b;
    struct mp_buf name;
    struct mp_err *err;
};

/* Sets name = value; an empty value deletes (spec 6.1). */
static int lb_set(struct lb *l, const char *name, const char *value)
{
    int rc = mp_labels_builder_set(l->b, mp_str_c(name), mp_str_c(value));
    if (rc)
        return mp_err_set(l->err, rc, "label %s: %s", name, mp_strerror(rc));
    return 0;
}

/* Length of the UTF-8 sequence at s[0..n) if it is one valid code point, else 1 (Go's
 * regexp sees an invalid byte as one U+FFFD of width 1). */
static size_t rune_len(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 1;
    if (len == 1 || len > n || s[0] > 0xf4)
        return 1;
    if (!mp_label_value_is_valid((struct mp_str){(const char *)s, len}))
        return 1;
    return len;
}

/* Appends key with every rune outside [a-zA-Z0-9_] replaced by one '_'
 * (util/strutil.SanitizeLabelName). */
static int append_sanitized(struct mp_buf *b, const char *key, size_t n)
{
    const unsigned char *s = (const unsigned char *)key;
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        bool ok =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        int rc = ok ? mp_buf_append(b, &s[i], 1) : mp_buf_append(b, "_", 1);
        if (rc)
            return rc;
        i += ok ? 1 : rune_len(s + i, n - i);
    }
    return 0;
}

/* For each key k of map (string values): <prefix>_<san k> = value, <prefix>present_<san k> =
 * "true" (e.g. prefix "__meta_kubernetes_pod_label"). */
static int add_map(const struct rd *r, struct lb *l, json_object *map, const char *where,
                   const char *prefix, const char *present_sep)
{
    if (map == NULL)
        return 0;
    json_object_object_foreach(map, key, val)
    {
        if (val != NULL && !json_object_is_type(val, json_type_string))
            return bad_type(r, where, key, "a string");
        const char *v = val ? json_object_get_string(val) : "";
        for (int pass = 0; pass < 2; pass++) {
            mp_buf_reset(&l->name);
            int rc = mp_buf_appendf(&l->name, "%s%s", prefix, pass ? present_sep : "_");
            if (rc == 0)
                rc = append_sanitized(&l->name, key, strlen(key));
            if (rc == 0)
                rc = mp_labels_builder_set(l->b, (struct mp_str){l->name.data, l->name.len},
                                           mp_str_c(pass ? "true" : v));
            if (rc)
                return mp_err_set(l->err, rc, "%s: %s", where, mp_strerror(rc));
        }
    }
    return 0;
}

/* addObjectMetaLabels: <role>_name and the label/annotation families. */
static int add_object_meta(const struct rd *r, struct lb *l, json_object *meta, const char *role)
{
    char prefix[64];
    const char *name;
    json_object *labels, *annotations;
    int rc = get_str(r, meta, "metadata", "name", &name, NULL);
    if (rc == 0)
        rc = get_obj(r, meta, "metadata", "labels", &labels);
    if (rc == 0)
        rc = get_obj(r, meta, "metadata", "annotations", &annotations);
    if (rc)
        return rc;
    snprintf(prefix, sizeof prefix, META "%s_name", role);
    if ((rc = lb_set(l, prefix, name)))
        return rc;
    snprintf(prefix, sizeof prefix, META "%s_label", role);
    if ((rc = add_map(r, l, labels, "metadata.labels", prefix, "present_")))
        return rc;
    snprintf(prefix, sizeof prefix, META "%s_annotation", role);
    return add_map(r, l, annotations, "metadata.annotations", prefix, "present_");
}

/* attach_metadata.node: the cached node's node_name and label/annotation families (no
 * addresses, no provider id: addNodeLabels). Nothing when attach is off, name is empty or
 * the node is not cached. */
static int add_node_labels(const struct rd *r, struct lb *l, const struct scrape_k8s_lookup *lk,
                           const char *name)
{
    if (!lk || !lk->node || name == NULL || name[0] == '\0')
        return 0;
    const struct scrape_k8s_object *n = lk->node(lk->ctx, name);
    if (!n || n->role != SCRAPE_K8S_NODE)
        return 0;
    struct rd nr = {n, r->err};
    json_object *meta;
    int rc = get_obj(&nr, n->root, "", "metadata", &meta);
    return rc ? rc : add_object_meta(&nr, l, meta, "node");
}

/* ---- groups ----------------------------------------------------------------------------- */

struct build {
    struct rd r;
    struct lb lb;
    struct scrape_target_group *g;
    size_t cap;
};

static int build_begin(struct build *b, const struct scrape_k8s_object *o,
                       struct scrape_target_group *out, struct mp_err *err)
{
    memset(out, 0, sizeof *out);
    b->r = (struct rd){o, err};
    b->lb.b = mp_labels_builder_create();
    mp_buf_init(&b->lb.name, NAME_MAX_BYTES);
    b->lb.err = err;
    b->g = out;
    b->cap = 0;
    static const char *const kinds[] = {"pod", "endpoints", "endpointslice",
                                        "svc", "node",      "ingress"};
    struct mp_buf src;
    mp_buf_init(&src, 0);
    int rc = o->role == SCRAPE_K8S_NODE
                 ? mp_buf_appendf(&src, "node/%s", o->name)
                 : mp_buf_appendf(&src, "%s/%s/%s", kinds[o->role], o->ns, o->name);
    if (rc) {
        mp_buf_fini(&src);
        return mp_err_set(err, rc, "target group source: %s", mp_strerror(rc));
    }
    out->source = mp_buf_take(&src, NULL);
    return 0;
}

/* Turns the builder's labels into the group labels. */
static int take_group_labels(struct build *b)
{
    return mp_labels_builder_labels(b->lb.b, &b->g->group_labels, b->r.err);
}

/* Appends the builder's labels as a target. */
static int push_target(struct build *b)
{
    struct scrape_target_group *g = b->g;
    if (g->ntargets == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 8;
        struct mp_labels **t = mp_realloc(g->targets, cap * sizeof *t);
        if (!t)
            return mp_err_set(b->r.err, MP_ENOMEM, "%zu targets", cap);
        g->targets = t;
        b->cap = cap;
    }
    struct mp_labels *ls;
    int rc = mp_labels_builder_labels(b->lb.b, &ls, b->r.err);
    if (rc)
        return rc;
    g->targets[g->ntargets++] = ls;
    return 0;
}

static int build_end(struct build *b, int rc)
{
    if (rc == 0 && b->g->group_labels == NULL)
        b->g->group_labels = mp_labels_empty();
    mp_labels_builder_destroy(b->lb.b);
    mp_buf_fini(&b->lb.name);
    if (rc)
        scrape_target_group_fini(b->g);
    return rc;
}

void scrape_target_group_fini(struct scrape_target_group *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->ntargets; i++)
        mp_labels_release(g->targets[i]);
    mp_free(g->targets);
    mp_labels_release(g->group_labels);
    mp_free(g->source);
    memset(g, 0, sizeof *g);
}

/* net.JoinHostPort: brackets when host has a colon. */
static int host_port(struct mp_buf *out, const char *host, const char *port)
{
    mp_buf_reset(out);
    return strchr(host, ':') ? mp_buf_appendf(out, "[%s]:%s", host, port)
                             : mp_buf_appendf(out, "%s:%s", host, port);
}

/* __address__ = host:port (JoinHostPort), or host alone when port is NULL. */
static int set_address(struct lb *l, const char *host, const char *port)
{
    struct mp_buf addr;
    mp_buf_init(&addr, NAME_MAX_BYTES);
    int rc = port ? host_port(&addr, host, port) : mp_buf_append_str(&addr, host);
    if (rc == 0)
        rc = lb_set(l, "__address__", addr.data);
    else
        rc = mp_err_set(l->err, rc, "__address__: %s", mp_strerror(rc));
    mp_buf_fini(&addr);
    return rc;
}

/* <prefix>_address_target_kind/_name from a targetRef object (prefix "endpoint" or
 * "endpointslice"). */
static int add_target_ref(const struct rd *r, struct lb *l, json_object *ref, const char *where,
                          const char *prefix)
{
    const char *kind, *name;
    char ln[64];
    int rc;
    if (!ref)
        return 0;
    if ((rc = get_str(r, ref, where, "kind", &kind, NULL)) ||
        (rc = get_str(r, ref, where, "name", &name, NULL)))
        return rc;
    snprintf(ln, sizeof ln, META "%s_address_target_kind", prefix);
    if ((rc = lb_set(l, ln, kind)))
        return rc;
    snprintf(ln, sizeof ln, META "%s_address_target_name", prefix);
    return lb_set(l, ln, name);
}

/* strconv.FormatUint(uint64(int32)) as Prometheus prints ports. */
static void fmt_port_u(char buf[24], int32_t p)
{
    snprintf(buf, 24, "%" PRIu64, (uint64_t)(int64_t)p);
}

/* ---- pods ------------------------------------------------------------------------------- */

struct pod {
    json_object *meta, *spec, *status;
    const char *ip;
    json_object *containers, *inits;       /* spec.containers, spec.initContainers */
    json_object *statuses, *init_statuses; /* status.(init)ContainerStatuses */
};

static int pod_read(const struct rd *r, json_object *root, struct pod *p)
{
    int rc = get_obj(r, root, "", "metadata", &p->meta);
    if (rc == 0)
        rc = get_obj(r, root, "", "spec", &p->spec);
    if (rc == 0)
        rc = get_obj(r, root, "", "status", &p->status);
    if (rc == 0)
        rc = get_str(r, p->status, "status", "podIP", &p->ip, NULL);
    if (rc == 0)
        rc = get_arr(r, p->spec, "spec", "containers", &p->containers);
    if (rc == 0)
        rc = get_arr(r, p->spec, "spec", "initContainers", &p->inits);
    if (rc == 0)
        rc = get_arr(r, p->status, "status", "containerStatuses", &p->statuses);
    if (rc == 0)
        rc = get_arr(r, p->status, "status", "initContainerStatuses", &p->init_statuses);
    return rc;
}

/* name = value lower-cased (ASCII; condition statuses are True/False/Unknown). */
static int set_lower(struct lb *l, const char *name, const char *value)
{
    struct mp_buf v;
    mp_buf_init(&v, NAME_MAX_BYTES);
    int rc = mp_buf_append_str(&v, value);
    for (size_t i = 0; rc == 0 && i < v.len; i++)
        if (v.data[i] >= 'A' && v.data[i] <= 'Z')
            v.data[i] = (char)(v.data[i] - 'A' + 'a');
    if (rc == 0)
        rc = lb_set(l, name, v.len ? v.data : "");
    else
        rc = mp_err_set(l->err, rc, "%s: %s", name, mp_strerror(rc));
    mp_buf_fini(&v);
    return rc;
}

/* podLabels(): the pod's group labels, without the namespace. */
static int pod_labels(const struct rd *r, struct lb *l, const struct pod *p)
{
    const char *phase, *node, *host_ip, *uid;
    json_object *conds, *owners;
    int rc = get_str(r, p->status, "status", "phase", &phase, NULL);
    if (rc == 0)
        rc = get_str(r, p->spec, "spec", "nodeName", &node, NULL);
    if (rc == 0)
        rc = get_str(r, p->status, "status", "hostIP", &host_ip, NULL);
    if (rc == 0)
        rc = get_str(r, p->meta, "metadata", "uid", &uid, NULL);
    if (rc == 0)
        rc = get_arr(r, p->status, "status", "conditions", &conds);
    if (rc == 0)
        rc = get_arr(r, p->meta, "metadata", "ownerReferences", &owners);
    if (rc)
        return rc;

    /* Ready condition, lower-cased; "unknown" without one */
    const char *ready = NULL;
    for (size_t i = 0; i < arr_len(conds); i++) {
        json_object *c;
        const char *type, *status;
        if ((rc = arr_obj(r, conds, i, "status.conditions", &c)) ||
            (rc = get_str(r, c, "status.conditions[]", "type", &type, NULL)) ||
            (rc = get_str(r, c, "status.conditions[]", "status", &status, NULL)))
            return rc;
        if (!ready && strcmp(type, "Ready") == 0)
            ready = status;
    }
    /* first ownerReference with controller: true */
    const char *ckind = "", *cname = "";
    bool have_ctrl = false;
    for (size_t i = 0; i < arr_len(owners); i++) {
        json_object *ref;
        int ctrl;
        const char *kind, *name;
        if ((rc = arr_obj(r, owners, i, "metadata.ownerReferences", &ref)) ||
            (rc = get_bool(r, ref, "metadata.ownerReferences[]", "controller", &ctrl)) ||
            (rc = get_str(r, ref, "metadata.ownerReferences[]", "kind", &kind, NULL)) ||
            (rc = get_str(r, ref, "metadata.ownerReferences[]", "name", &name, NULL)))
            return rc;
        if (!have_ctrl && ctrl == 1) {
            have_ctrl = true;
            ckind = kind;
            cname = name;
        }
    }
    if ((rc = set_lower(l, META "pod_ready", ready ? ready : "Unknown")) ||
        (rc = lb_set(l, META "pod_ip", p->ip)) || (rc = lb_set(l, META "pod_phase", phase)) ||
        (rc = lb_set(l, META "pod_node_name", node)) ||
        (rc = lb_set(l, META "pod_host_ip", host_ip)) || (rc = lb_set(l, META "pod_uid", uid)) ||
        (rc = lb_set(l, META "pod_controller_kind", ckind)) ||
        (rc = lb_set(l, META "pod_controller_name", cname)))
        return rc;
    return add_object_meta(r, l, p->meta, "pod");
}

/* One container port: name, number, protocol. */
struct cport {
    const char *name, *protocol;
    int32_t number;
};

static int read_cport(const struct rd *r, json_object *ports, size_t i, struct cport *cp)
{
    json_object *po;
    int rc = arr_obj(r, ports, i, "spec.containers[].ports", &po);
    if (rc == 0)
        rc = get_str(r, po, "spec.containers[].ports[]", "name", &cp->name, NULL);
    if (rc == 0)
        rc = get_str(r, po, "spec.containers[].ports[]", "protocol", &cp->protocol, NULL);
    if (rc == 0)
        rc = get_i32(r, po, "spec.containers[].ports[]", "containerPort", &cp->number, NULL);
    return rc;
}

/* pod_container_port_name/_number/_protocol. */
static int set_port_labels(struct lb *l, const struct cport *cp, const char *num,
                           const char *protocol)
{
    int rc = lb_set(l, META "pod_container_port_name", cp->name);
    if (rc == 0)
        rc = lb_set(l, META "pod_container_port_number", num);
    if (rc == 0)
        rc = lb_set(l, META "pod_container_port_protocol", protocol);
    return rc;
}

/* Container i of the regular+init sequence (i < nregular: regular). */
static int pod_container(const struct rd *r, const struct pod *p, size_t i, json_object **c,
                         const char **name, const char **image, json_object **ports)
{
    size_t nreg = arr_len(p->containers);
    bool init = i >= nreg;
    const char *where = init ? "spec.initContainers" : "spec.containers";
    int rc = arr_obj(r, init ? p->inits : p->containers, init ? i - nreg : i, where, c);
    if (rc == 0)
        rc = get_str(r, *c, where, "name", name, NULL);
    if (rc == 0)
        rc = get_str(r, *c, where, "image", image, NULL);
    if (rc == 0)
        rc = get_arr(r, *c, where, "ports", ports);
    return rc;
}

/* findContainerIDFromStatus: containerID of the first status with the container's name. */
static int container_id(const struct rd *r, json_object *statuses, const char *name,
                        const char **id)
{
    *id = "";
    for (size_t i = 0; i < arr_len(statuses); i++) {
        json_object *s;
        const char *sname, *sid;
        int rc;
        if ((rc = arr_obj(r, statuses, i, "status.containerStatuses", &s)) ||
            (rc = get_str(r, s, "status.containerStatuses[]", "name", &sname, NULL)) ||
            (rc = get_str(r, s, "status.containerStatuses[]", "containerID", &sid, NULL)))
            return rc;
        if (strcmp(sname, name) == 0) {
            *id = sid;
            return 0;
        }
    }
    return 0;
}

/* The pod role (spec 2.2). force: build targets even without a pod IP (validation). lk:
 * only its node cache (attach_metadata.node) is read. */
static int build_pod(struct build *b, const struct scrape_k8s_lookup *lk, bool force)
{
    const struct rd *r = &b->r;
    struct lb *l = &b->lb;
    struct pod p;
    const char *node;
    int rc = pod_read(r, b->r.o->root, &p);
    if (rc == 0)
        rc = get_str(r, p.spec, "spec", "nodeName", &node, NULL);
    if (rc || (p.ip[0] == '\0' && !force))
        return rc;
    mp_labels_builder_reset(l->b, NULL);
    if ((rc = pod_labels(r, l, &p)) || (rc = lb_set(l, META "namespace", r->o->ns)) ||
        (rc = add_node_labels(r, l, lk, node)) || (rc = take_group_labels(b)))
        return rc;

    size_t nreg = arr_len(p.containers), n = nreg + arr_len(p.inits);
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_object *c, *ports;
        const char *name, *image, *id;
        bool init = i >= nreg;
        if ((rc = pod_container(r, &p, i, &c, &name, &image, &ports)) ||
            (rc = container_id(r, init ? p.init_statuses : p.statuses, name, &id)))
            break;
        size_t np = arr_len(ports);
        for (size_t k = 0; k < (np ? np : 1) && rc == 0; k++) {
            mp_labels_builder_reset(l->b, NULL);
            if ((rc = lb_set(l, META "pod_container_name", name)) ||
                (rc = lb_set(l, META "pod_container_id", id)) ||
                (rc = lb_set(l, META "pod_container_image", image)) ||
                (rc = lb_set(l, META "pod_container_init", init ? "true" : "false")))
                break;
            if (np == 0) {
                rc = set_address(l, p.ip, NULL);
            } else {
                struct cport cp;
                char num[24];
                if ((rc = read_cport(r, ports, k, &cp)))
                    break;
                fmt_port_u(num, cp.number);
                if ((rc = set_address(l, p.ip, num)) ||
                    (rc = set_port_labels(l, &cp, num, cp.protocol)))
                    break;
            }
            if (rc == 0)
                rc = push_target(b);
        }
    }
    return rc;
}

/* ---- endpoints and endpointslice ------------------------------------------------------- */

/* A pod seen through a targetRef, and the endpoint port numbers used for it. */
struct seen_pod {
    const struct scrape_k8s_object *obj;
    struct pod p;
    int32_t *ports;
    size_t nports, cap;
};

struct seen {
    struct seen_pod *v;
    size_t n, cap;
};

static void seen_fini(struct seen *s)
{
    for (size_t i = 0; i < s->n; i++)
        mp_free(s->v[i].ports);
    mp_free(s->v);
}

/* The entry for obj, added at the end when new; NULL on OOM. */
static struct seen_pod *seen_get(struct seen *s, const struct scrape_k8s_object *obj,
                                 const struct rd *r)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].obj == obj)
            return &s->v[i];
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 4;
        struct seen_pod *v = mp_realloc(s->v, cap * sizeof *v);
        if (!v)
            return NULL;
        s->v = v;
        s->cap = cap;
    }
    struct seen_pod *sp = &s->v[s->n];
    memset(sp, 0, sizeof *sp);
    sp->obj = obj;
    struct rd pr = {obj, r->err};
    if (pod_read(&pr, obj->root, &sp->p))
        return NULL; /* cannot happen: the pod was checked when parsed */
    s->n++;
    return sp;
}

static int seen_add_port(struct seen_pod *sp, int32_t port)
{
    if (sp->nports == sp->cap) {
        size_t cap = sp->cap ? 2 * sp->cap : 4;
        int32_t *v = mp_realloc(sp->ports, cap * sizeof *v);
        if (!v)
            return MP_ENOMEM;
        sp->ports = v;
        sp->cap = cap;
    }
    sp->ports[sp->nports++] = port;
    return 0;
}

static const struct scrape_k8s_object *lookup_pod(const struct scrape_k8s_lookup *lk,
                                                  const char *ns, const char *name)
{
    if (!lk || !lk->pod)
        return NULL;
    const struct scrape_k8s_object *o = lk->pod(lk->ctx, ns, name);
    return o && o->role == SCRAPE_K8S_POD ? o : NULL;
}

/* serviceLabels() minus the namespace, merged into the group when the Service is cached. */
static int add_service_labels(struct build *b, const struct scrape_k8s_lookup *lk, const char *ns,
                              const char *name)
{
    if (!lk || !lk->service)
        return 0;
    const struct scrape_k8s_object *svc = lk->service(lk->ctx, ns, name);
    if (!svc || svc->role != SCRAPE_K8S_SERVICE)
        return 0;
    struct rd sr = {svc, b->r.err};
    json_object *meta;
    int rc = get_obj(&sr, svc->root, "", "metadata", &meta);
    if (rc == 0)
        rc = lb_set(&b->lb, META "namespace", svc->ns);
    if (rc == 0)
        rc = add_object_meta(&sr, &b->lb, meta, "service");
    return rc;
}

/* Labels of the container port of sp matching port (last matching container wins, as the
 * inner-loop break in Prometheus leaves it). Regular containers only in 2.55. protocol NULL:
 * the container port's own protocol. */
static int add_matching_container(struct build *b, const struct seen_pod *sp, int32_t port,
                                  const char *protocol)
{
    struct rd pr = {sp->obj, b->r.err};
    struct lb *l = &b->lb;
    for (size_t i = 0; i < arr_len(sp->p.containers); i++) {
        json_object *c, *ports;
        const char *name, *image;
        int rc = pod_container(&pr, &sp->p, i, &c, &name, &image, &ports);
        for (size_t k = 0; rc == 0 && k < arr_len(ports); k++) {
            struct cport cp;
            if ((rc = read_cport(&pr, ports, k, &cp)))
                break;
            if (cp.number != port)
                continue;
            char num[24];
            fmt_port_u(num, port);
            if ((rc = lb_set(l, META "pod_container_name", name)) ||
                (rc = lb_set(l, META "pod_container_image", image)) ||
                (rc = set_port_labels(l, &cp, num, protocol ? protocol : cp.protocol)))
                return rc;
            break;
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* Merges the pod labels of a resolved targetRef into the current target and records the
 * port. *sp_out NULL when the ref is not a cached pod. */
static int enrich_with_pod(struct build *b, struct seen *seen, const struct scrape_k8s_lookup *lk,
                           json_object *ref, const char *where, struct seen_pod **sp_out)
{
    *sp_out = NULL;
    if (ref == NULL)
        return 0;
    const char *kind, *ns, *name;
    int rc;
    if ((rc = get_str(&b->r, ref, where, "kind", &kind, NULL)) ||
        (rc = get_str(&b->r, ref, where, "namespace", &ns, NULL)) ||
        (rc = get_str(&b->r, ref, where, "name", &name, NULL)))
        return rc;
    if (strcmp(kind, "Pod") != 0)
        return 0;
    const struct scrape_k8s_object *po = lookup_pod(lk, ns, name);
    if (!po)
        return 0;
    struct seen_pod *sp = seen_get(seen, po, &b->r);
    if (!sp)
        return mp_err_set(b->r.err, MP_ENOMEM, "endpoints: seen pods");
    struct rd pr = {po, b->r.err};
    if ((rc = pod_labels(&pr, &b->lb, &sp->p)))
        return rc;
    *sp_out = sp;
    return 0;
}

/* Extra targets for container ports of seen pods that no endpoint port covered. */
static int uncovered_port_targets(struct build *b, struct seen *seen)
{
    struct lb *l = &b->lb;
    int rc = 0;
    for (size_t s = 0; s < seen->n && rc == 0; s++) {
        struct seen_pod *sp = &seen->v[s];
        struct rd pr = {sp->obj, b->r.err};
        if (sp->p.ip[0] == '\0')
            continue;
        for (size_t i = 0; i < arr_len(sp->p.containers) && rc == 0; i++) {
            json_object *c, *ports;
            const char *name, *image;
            rc = pod_container(&pr, &sp->p, i, &c, &name, &image, &ports);
            for (size_t k = 0; rc == 0 && k < arr_len(ports); k++) {
                struct cport cp;
                if ((rc = read_cport(&pr, ports, k, &cp)))
                    break;
                bool covered = false;
                for (size_t e = 0; e < sp->nports && !covered; e++)
                    covered = sp->ports[e] == cp.number;
                if (covered)
                    continue;
                char num[24];
                fmt_port_u(num, cp.number);
                mp_labels_builder_reset(l->b, NULL);
                if ((rc = set_address(l, sp->p.ip, num)) ||
                    (rc = lb_set(l, META "pod_container_name", name)) ||
                    (rc = lb_set(l, META "pod_container_image", image)) ||
                    (rc = set_port_labels(l, &cp, num, cp.protocol)) ||
                    (rc = pod_labels(&pr, l, &sp->p)) || (rc = push_target(b)))
                    break;
            }
        }
    }
    return rc;
}

/* One Endpoints address x port target (spec 2.3). */
static int endpoints_target(struct build *b, struct seen *seen, const struct scrape_k8s_lookup *lk,
                            json_object *a, const char *port_name, const char *protocol,
                            int32_t port, bool ready)
{
    const struct rd *r = &b->r;
    struct lb *l = &b->lb;
    const char *ip, *hostname, *node;
    bool have_node;
    json_object *ref;
    int rc;
    if ((rc = get_str(r, a, "subsets[].addresses[]", "ip", &ip, NULL)) ||
        (rc = get_str(r, a, "subsets[].addresses[]", "hostname", &hostname, NULL)) ||
        (rc = get_str(r, a, "subsets[].addresses[]", "nodeName", &node, &have_node)) ||
        (rc = get_obj(r, a, "subsets[].addresses[]", "targetRef", &ref)))
        return rc;
    char num[24];
    fmt_port_u(num, port);
    mp_labels_builder_reset(l->b, NULL);
    if ((rc = set_address(l, ip, num)) || (rc = lb_set(l, META "endpoint_port_name", port_name)) ||
        (rc = lb_set(l, META "endpoint_port_protocol", protocol)) ||
        (rc = lb_set(l, META "endpoint_ready", ready ? "true" : "false")) ||
        (rc = add_target_ref(r, l, ref, "targetRef", "endpoint")))
        return rc;
    if (have_node && (rc = lb_set(l, META "endpoint_node_name", node)))
        return rc;
    if ((rc = lb_set(l, META "endpoint_hostname", hostname)))
        return rc;
    if (have_node) {
        rc = add_node_labels(r, l, lk, node);
    } else if (ref) { /* a targetRef of kind Node */
        const char *kind, *name;
        if ((rc = get_str(r, ref, "targetRef", "kind", &kind, NULL)) == 0 &&
            (rc = get_str(r, ref, "targetRef", "name", &name, NULL)) == 0 &&
            strcmp(kind, "Node") == 0)
            rc = add_node_labels(r, l, lk, name);
    }
    if (rc)
        return rc;
    struct seen_pod *sp;
    if ((rc = enrich_with_pod(b, seen, lk, ref, "targetRef", &sp)))
        return rc;
    if (sp &&
        ((rc = add_matching_container(b, sp, port, protocol)) || (rc = seen_add_port(sp, port))))
        return mp_err_set(r->err, rc, "endpoints target: %s", mp_strerror(rc));
    return push_target(b);
}

static int build_endpoints(struct build *b, const struct scrape_k8s_lookup *lk)
{
    const struct rd *r = &b->r;
    json_object *meta, *subsets;
    int rc = get_obj(r, r->o->root, "", "metadata", &meta);
    if (rc == 0)
        rc = get_arr(r, r->o->root, "", "subsets", &subsets);
    if (rc)
        return rc;
    mp_labels_builder_reset(b->lb.b, NULL);
    if ((rc = lb_set(&b->lb, META "namespace", r->o->ns)) ||
        (rc = add_service_labels(b, lk, r->o->ns, r->o->name)) ||
        (rc = add_object_meta(r, &b->lb, meta, "endpoints")) || (rc = take_group_labels(b)))
        return rc;

    struct seen seen = {0};
    for (size_t s = 0; s < arr_len(subsets) && rc == 0; s++) {
        json_object *ss, *ports, *addrs, *notready;
        if ((rc = arr_obj(r, subsets, s, "subsets", &ss)) ||
            (rc = get_arr(r, ss, "subsets[]", "ports", &ports)) ||
            (rc = get_arr(r, ss, "subsets[]", "addresses", &addrs)) ||
            (rc = get_arr(r, ss, "subsets[]", "notReadyAddresses", &notready)))
            break;
        for (size_t k = 0; k < arr_len(ports) && rc == 0; k++) {
            json_object *po;
            const char *pname, *proto;
            int32_t port;
            if ((rc = arr_obj(r, ports, k, "subsets[].ports", &po)) ||
                (rc = get_str(r, po, "subsets[].ports[]", "name", &pname, NULL)) ||
                (rc = get_str(r, po, "subsets[].ports[]", "protocol", &proto, NULL)) ||
                (rc = get_i32(r, po, "subsets[].ports[]", "port", &port, NULL)))
                break;
            for (int pass = 0; pass < 2 && rc == 0; pass++) {
                json_object *list = pass ? notready : addrs;
                for (size_t i = 0; i < arr_len(list) && rc == 0; i++) {
                    json_object *a;
                    rc = arr_obj(r, list, i, "subsets[].addresses", &a);
                    if (rc == 0)
                        rc = endpoints_target(b, &seen, lk, a, pname, proto, port, pass == 0);
                }
            }
        }
    }
    if (rc == 0)
        rc = uncovered_port_targets(b, &seen);
    seen_fini(&seen);
    return rc;
}

/* Sets name to strconv.FormatBool of a *bool when present. */
static int lb_set_bool(struct lb *l, const char *name, int v)
{
    return v < 0 ? 0 : lb_set(l, name, v ? "true" : "false");
}

/* Sets name only when the field was present. */
static int lb_set_opt(struct lb *l, const char *name, const char *v, bool present)
{
    return present ? lb_set(l, name, v) : 0;
}

/* One EndpointSlice endpoint x port x address target (spec 2.4). */
static int slice_target(struct build *b, struct seen *seen, const struct scrape_k8s_lookup *lk,
                        json_object *ep, json_object *po, const char *address)
{
    const struct rd *r = &b->r;
    struct lb *l = &b->lb;
    const char *pname, *proto, *app, *host, *node, *zone;
    bool has_pname, has_proto, has_app, has_port, has_host, has_node, has_zone;
    int32_t port;
    json_object *conds, *ref, *topo;
    int ready, serving, term;
    int rc;
    const char *pw = "ports[]", *ew = "endpoints[]";
    if ((rc = get_str(r, po, pw, "name", &pname, &has_pname)) ||
        (rc = get_str(r, po, pw, "protocol", &proto, &has_proto)) ||
        (rc = get_str(r, po, pw, "appProtocol", &app, &has_app)) ||
        (rc = get_i32(r, po, pw, "port", &port, &has_port)) ||
        (rc = get_str(r, ep, ew, "hostname", &host, &has_host)) ||
        (rc = get_str(r, ep, ew, "nodeName", &node, &has_node)) ||
        (rc = get_str(r, ep, ew, "zone", &zone, &has_zone)) ||
        (rc = get_obj(r, ep, ew, "conditions", &conds)) ||
        (rc = get_obj(r, ep, ew, "targetRef", &ref)) ||
        (rc = get_obj(r, ep, ew, "deprecatedTopology", &topo)) ||
        (rc = get_bool(r, conds, "endpoints[].conditions", "ready", &ready)) ||
        (rc = get_bool(r, conds, "endpoints[].conditions", "serving", &serving)) ||
        (rc = get_bool(r, conds, "endpoints[].conditions", "terminating", &term)))
        return rc;
    char num[24];
    fmt_port_u(num, port);
    mp_labels_builder_reset(l->b, NULL);
    if ((rc = set_address(l, address, has_port ? num : NULL)) ||
        (rc = lb_set_opt(l, META "endpointslice_port_name", pname, has_pname)) ||
        (rc = lb_set_opt(l, META "endpointslice_port_protocol", proto, has_proto)) ||
        (rc = lb_set_opt(l, META "endpointslice_port", num, has_port)) ||
        (rc = lb_set_opt(l, META "endpointslice_port_app_protocol", app, has_app)) ||
        (rc = lb_set_bool(l, META "endpointslice_endpoint_conditions_ready", ready)) ||
        (rc = lb_set_bool(l, META "endpointslice_endpoint_conditions_serving", serving)) ||
        (rc = lb_set_bool(l, META "endpointslice_endpoint_conditions_terminating", term)) ||
        (rc = lb_set_opt(l, META "endpointslice_endpoint_hostname", host, has_host)) ||
        (rc = add_target_ref(r, l, ref, "endpoints[].targetRef", "endpointslice")))
        return rc;
    if ((rc = lb_set_opt(l, META "endpointslice_endpoint_node_name", node, has_node)) ||
        (rc = lb_set_opt(l, META "endpointslice_endpoint_zone", zone, has_zone)) ||
        (rc = add_map(r, l, topo, "endpoints[].deprecatedTopology",
                      META "endpointslice_endpoint_topology", "_present_")))
        return rc;
    {
        const char *kind = "", *rname = "";
        if (ref && ((rc = get_str(r, ref, "endpoints[].targetRef", "kind", &kind, NULL)) ||
                    (rc = get_str(r, ref, "endpoints[].targetRef", "name", &rname, NULL))))
            return rc;
        bool node_ref = ref && strcmp(kind, "Node") == 0;
        if ((node_ref || has_node) && (rc = add_node_labels(r, l, lk, node_ref ? rname : node)))
            return rc;
    }
    struct seen_pod *sp;
    if ((rc = enrich_with_pod(b, seen, lk, ref, "endpoints[].targetRef", &sp)))
        return rc;
    if (sp && has_port && (rc = add_matching_container(b, sp, port, NULL)))
        return rc;
    if (sp && has_port && (rc = seen_add_port(sp, port)))
        return mp_err_set(r->err, rc, "endpointslice target: %s", mp_strerror(rc));
    return push_target(b);
}

static int slice_service_name(const struct rd *r, json_object *meta, const char **name)
{
    json_object *labels, *v = NULL;
    *name = NULL;
    int rc = get_obj(r, meta, "metadata", "labels", &labels);
    if (rc == 0 && labels && json_object_object_get_ex(labels, "kubernetes.io/service-name", &v))
        *name = v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
    return rc;
}

static int build_endpointslice(struct build *b, const struct scrape_k8s_lookup *lk)
{
    const struct rd *r = &b->r;
    json_object *meta, *eps, *ports;
    const char *atype, *svc;
    int rc = get_obj(r, r->o->root, "", "metadata", &meta);
    if (rc == 0)
        rc = get_str(r, r->o->root, "", "addressType", &atype, NULL);
    if (rc == 0)
        rc = get_arr(r, r->o->root, "", "endpoints", &eps);
    if (rc == 0)
        rc = get_arr(r, r->o->root, "", "ports", &ports);
    if (rc)
        return rc;
    mp_labels_builder_reset(b->lb.b, NULL);
    if ((rc = lb_set(&b->lb, META "namespace", r->o->ns)) ||
        (rc = lb_set(&b->lb, META "endpointslice_address_type", atype)) ||
        (rc = add_object_meta(r, &b->lb, meta, "endpointslice")) ||
        (rc = slice_service_name(r, meta, &svc)) ||
        (svc && (rc = add_service_labels(b, lk, r->o->ns, svc))) || (rc = take_group_labels(b)))
        return rc;

    struct seen seen = {0};
    for (size_t e = 0; e < arr_len(eps) && rc == 0; e++) {
        json_object *ep, *addrs;
        if ((rc = arr_obj(r, eps, e, "endpoints", &ep)) ||
            (rc = get_arr(r, ep, "endpoints[]", "addresses", &addrs)))
            break;
        for (size_t k = 0; k < arr_len(ports) && rc == 0; k++) {
            json_object *po;
            if ((rc = arr_obj(r, ports, k, "ports", &po)))
                break;
            for (size_t i = 0; i < arr_len(addrs) && rc == 0; i++) {
                json_object *a = json_object_array_get_idx(addrs, i);
                if (a && !json_object_is_type(a, json_type_string))
                    rc = bad_type(r, "endpoints[].addresses", "[]", "a string");
                else
                    rc = slice_target(b, &seen, lk, ep, po, a ? json_object_get_string(a) : "");
            }
        }
    }
    if (rc == 0)
        rc = uncovered_port_targets(b, &seen);
    seen_fini(&seen);
    return rc;
}

/* ---- services and nodes ----------------------------------------------------------------- */

static int build_service(struct build *b)
{
    const struct rd *r = &b->r;
    struct lb *l = &b->lb;
    json_object *meta, *spec, *ports;
    const char *type, *cluster_ip, *ext, *lb_ip;
    int rc = get_obj(r, r->o->root, "", "metadata", &meta);
    if (rc == 0)
        rc = get_obj(r, r->o->root, "", "spec", &spec);
    if (rc == 0)
        rc = get_arr(r, spec, "spec", "ports", &ports);
    if (rc == 0)
        rc = get_str(r, spec, "spec", "type", &type, NULL);
    if (rc == 0)
        rc = get_str(r, spec, "spec", "clusterIP", &cluster_ip, NULL);
    if (rc == 0)
        rc = get_str(r, spec, "spec", "externalName", &ext, NULL);
    if (rc == 0)
        rc = get_str(r, spec, "spec", "loadBalancerIP", &lb_ip, NULL);
    if (rc)
        return rc;
    mp_labels_builder_reset(l->b, NULL);
    if ((rc = lb_set(l, META "namespace", r->o->ns)) ||
        (rc = add_object_meta(r, l, meta, "service")) || (rc = take_group_labels(b)))
        return rc;
    struct mp_buf addr;
    mp_buf_init(&addr, NAME_MAX_BYTES);
    for (size_t i = 0; i < arr_len(ports) && rc == 0; i++) {
        json_object *po;
        const char *pname, *proto;
        int32_t port;
        char num[24];
        if ((rc = arr_obj(r, ports, i, "spec.ports", &po)) ||
            (rc = get_str(r, po, "spec.ports[]", "name", &pname, NULL)) ||
            (rc = get_str(r, po, "spec.ports[]", "protocol", &proto, NULL)) ||
            (rc = get_i32(r, po, "spec.ports[]", "port", &port, NULL)))
            break;
        snprintf(num, sizeof num, "%" PRId32, port);
        mp_labels_builder_reset(l->b, NULL);
        mp_buf_reset(&addr);
        bool extname = strcmp(type, "ExternalName") == 0;
        if ((rc = mp_buf_appendf(&addr, "%s.%s.svc:%s", r->o->name, r->o->ns, num)) ||
            (rc = lb_set(l, "__address__", addr.data)) ||
            (rc = lb_set(l, META "service_port_name", pname)) ||
            (rc = lb_set(l, META "service_port_number", num)) ||
            (rc = lb_set(l, META "service_port_protocol", proto)) ||
            (rc = lb_set(l, META "service_type", type)) ||
            (rc = lb_set(l, extname ? META "service_external_name" : META "service_cluster_ip",
                         extname ? ext : cluster_ip)) ||
            (strcmp(type, "LoadBalancer") == 0 &&
             (rc = lb_set(l, META "service_loadbalancer_ip", lb_ip))) ||
            (rc = push_target(b)))
            break;
    }
    mp_buf_fini(&addr);
    return rc;
}

static int build_node(struct build *b)
{
    static const char *const prio[] = {"InternalIP",  "InternalDNS",  "ExternalIP",
                                       "ExternalDNS", "LegacyHostIP", "Hostname"};
    const struct rd *r = &b->r;
    struct lb *l = &b->lb;
    json_object *meta, *spec, *status, *addrs, *de, *ke;
    const char *provider;
    int32_t kport;
    int rc = get_obj(r, r->o->root, "", "metadata", &meta);
    if (rc == 0)
        rc = get_obj(r, r->o->root, "", "spec", &spec);
    if (rc == 0)
        rc = get_obj(r, r->o->root, "", "status", &status);
    if (rc == 0)
        rc = get_str(r, spec, "spec", "providerID", &provider, NULL);
    if (rc == 0)
        rc = get_arr(r, status, "status", "addresses", &addrs);
    if (rc == 0)
        rc = get_obj(r, status, "status", "daemonEndpoints", &de);
    if (rc == 0)
        rc = get_obj(r, de, "status.daemonEndpoints", "kubeletEndpoint", &ke);
    if (rc == 0)
        rc = get_i32(r, ke, "status.daemonEndpoints.kubeletEndpoint", "Port", &kport, NULL);
    if (rc)
        return rc;
    mp_labels_builder_reset(l->b, NULL);
    if ((rc = lb_set(l, META "node_provider_id", provider)) ||
        (rc = add_object_meta(r, l, meta, "node")))
        return rc;

    /* first address of each type; the chosen one by priority */
    size_t n = arr_len(addrs), best = SIZE_MAX, best_prio = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        json_object *a;
        const char *type, *addr;
        if ((rc = arr_obj(r, addrs, i, "status.addresses", &a)) ||
            (rc = get_str(r, a, "status.addresses[]", "type", &type, NULL)) ||
            (rc = get_str(r, a, "status.addresses[]", "address", &addr, NULL)))
            return rc;
        for (size_t p = 0; p < sizeof prio / sizeof prio[0]; p++)
            if (strcmp(type, prio[p]) == 0 && p < best_prio) {
                best_prio = p;
                best = i;
            }
    }
    if (best == SIZE_MAX)
        return mp_err_set(r->err, MP_ENOTFOUND, "node %s: host address unknown", r->o->name);
    if ((rc = take_group_labels(b)))
        return rc;

    mp_labels_builder_reset(l->b, NULL);
    for (size_t i = n; i-- > 0;) { /* backwards: the first address of a type wins */
        json_object *a = json_object_array_get_idx(addrs, i);
        const char *type, *addr;
        if ((rc = get_str(r, a, "", "type", &type, NULL)) ||
            (rc = get_str(r, a, "", "address", &addr, NULL)))
            return rc;
        mp_buf_reset(&l->name);
        if ((rc = mp_buf_append_str(&l->name, META "node_address_")) ||
            (rc = append_sanitized(&l->name, type, strlen(type))) ||
            (rc = mp_labels_builder_set(l->b, (struct mp_str){l->name.data, l->name.len},
                                        mp_str_c(addr))))
            return mp_err_set(r->err, rc, "node address label: %s", mp_strerror(rc));
        if (addr[0] == '\0') /* an empty first address still shadows later ones */
            mp_labels_builder_del(l->b, (struct mp_str){l->name.data, l->name.len});
    }
    const char *host;
    json_object *a = json_object_array_get_idx(addrs, best);
    if ((rc = get_str(r, a, "", "address", &host, NULL)))
        return rc;
    char num[24];
    snprintf(num, sizeof num, "%" PRId32, kport);
    if ((rc = set_address(l, host, num)) || (rc = lb_set(l, "instance", r->o->name)))
        return rc;
    return push_target(b);
}

/* ---- ingresses -------------------------------------------------------------------------- */

/* The elements of o[key] (an array, or nothing). */
static json_object *member(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (o && json_object_is_type(o, json_type_object))
        json_object_object_get_ex(o, key, &v);
    return v && json_object_is_type(v, json_type_array) ? v : NULL;
}

/* matchesHostnamePattern: equal, or pattern "*.<rest>" with as many dot-separated parts as
 * host and every part after the first equal. */
static bool host_matches(const char *pattern, const char *host)
{
    if (strcmp(pattern, host) == 0)
        return true;
    if (pattern[0] != '*' || (pattern[1] != '.' && pattern[1] != '\0'))
        return false;
    const char *hp = strchr(host, '.');
    if (pattern[1] == '\0')
        return hp == NULL; /* "*" alone: one part each */
    return hp != NULL && strcmp(pattern + 1, hp) == 0;
}

/* The ingress role (Prometheus ingress.go, networking.k8s.io/v1). */
static int build_ingress(struct build *b)
{
    const struct rd *r = &b->r;
    struct lb *l = &b->lb;
    json_object *meta, *spec, *rules, *tls;
    const char *cls;
    bool has_cls;
    int rc = get_obj(r, r->o->root, "", "metadata", &meta);
    if (rc == 0)
        rc = get_obj(r, r->o->root, "", "spec", &spec);
    if (rc == 0)
        rc = get_str(r, spec, "spec", "ingressClassName", &cls, &has_cls);
    if (rc == 0)
        rc = get_arr(r, spec, "spec", "rules", &rules);
    if (rc == 0)
        rc = get_arr(r, spec, "spec", "tls", &tls);
    /* check the TLS hosts once (they are read again per rule) */
    for (size_t i = 0; rc == 0 && i < arr_len(tls); i++) {
        json_object *t, *hosts;
        if ((rc = arr_obj(r, tls, i, "spec.tls", &t)) ||
            (rc = get_arr(r, t, "spec.tls[]", "hosts", &hosts)))
            break;
        for (size_t k = 0; rc == 0 && k < arr_len(hosts); k++) {
            json_object *h = json_object_array_get_idx(hosts, k);
            if (h && !json_object_is_type(h, json_type_string))
                rc = bad_type(r, "spec.tls[].hosts", "[]", "a string");
        }
    }
    if (rc)
        return rc;
    mp_labels_builder_reset(l->b, NULL);
    if ((rc = lb_set(l, META "namespace", r->o->ns)) ||
        (has_cls && (rc = lb_set(l, META "ingress_class_name", cls))) ||
        (rc = add_object_meta(r, l, meta, "ingress")) || (rc = take_group_labels(b)))
        return rc;
    for (size_t i = 0; i < arr_len(rules) && rc == 0; i++) {
        json_object *rule, *http, *paths = NULL;
        const char *host;
        if ((rc = arr_obj(r, rules, i, "spec.rules", &rule)) ||
            (rc = get_str(r, rule, "spec.rules[]", "host", &host, NULL)) ||
            (rc = get_obj(r, rule, "spec.rules[]", "http", &http)) ||
            (http && (rc = get_arr(r, http, "spec.rules[].http", "paths", &paths))))
            break;
        bool https = false;
        for (size_t t = 0; t < arr_len(tls) && !https; t++) {
            json_object *hosts = member(json_object_array_get_idx(tls, t), "hosts");
            for (size_t k = 0; k < arr_len(hosts) && !https; k++) {
                json_object *h = json_object_array_get_idx(hosts, k);
                https = host_matches(h ? json_object_get_string(h) : "", host);
            }
        }
        const char *scheme = https ? "https" : "http";
        /* no http: one path "/"; http with no paths: no targets (a non-nil empty slice) */
        size_t np = http ? arr_len(paths) : 1;
        for (size_t k = 0; k < np && rc == 0; k++) {
            const char *path = "";
            if (http) {
                json_object *po;
                if ((rc = arr_obj(r, paths, k, "spec.rules[].http.paths", &po)) ||
                    (rc = get_str(r, po, "spec.rules[].http.paths[]", "path", &path, NULL)))
                    break;
            }
            mp_labels_builder_reset(l->b, NULL);
            if ((rc = lb_set(l, "__address__", host)) ||
                (rc = lb_set(l, META "ingress_scheme", scheme)) ||
                (rc = lb_set(l, META "ingress_host", host)) ||
                (rc = lb_set(l, META "ingress_path", path[0] ? path : "/")) ||
                (rc = push_target(b)))
                break;
        }
    }
    return rc;
}

/* ---- objects ---------------------------------------------------------------------------- */

int scrape_k8s_build(const struct scrape_k8s_object *o, const struct scrape_k8s_lookup *lookup,
                     struct scrape_target_group *out, struct mp_err *err)
{
    struct build b;
    int rc = build_begin(&b, o, out, err);
    if (rc == 0) {
        switch (o->role) {
        case SCRAPE_K8S_POD:
            rc = build_pod(&b, lookup, false);
            break;
        case SCRAPE_K8S_ENDPOINTS:
            rc = build_endpoints(&b, lookup);
            break;
        case SCRAPE_K8S_ENDPOINTSLICE:
            rc = build_endpointslice(&b, lookup);
            break;
        case SCRAPE_K8S_SERVICE:
            rc = build_service(&b);
            break;
        case SCRAPE_K8S_NODE:
            rc = build_node(&b);
            break;
        case SCRAPE_K8S_INGRESS:
            rc = build_ingress(&b);
            break;
        default:
            rc = mp_err_set(err, MP_EINVAL, "kubernetes role %d", (int)o->role);
        }
    }
    return build_end(&b, rc);
}

int scrape_k8s_deleted_group(const struct scrape_k8s_object *o, struct scrape_target_group *out,
                             struct mp_err *err)
{
    struct build b;
    return build_end(&b, build_begin(&b, o, out, err));
}

static const char *const role_names[] = {"pod",     "endpoints", "endpointslice",
                                         "service", "node",      "ingress"};

int scrape_k8s_object_parse(enum scrape_k8s_role role, const char *json, size_t len,
                            struct scrape_k8s_object **out, struct mp_err *err)
{
    *out = NULL;
    if ((unsigned)role > SCRAPE_K8S_INGRESS)
        return mp_err_set(err, MP_EINVAL, "kubernetes role %d", (int)role);
    const char *what = role_names[role];
    if (len > INT32_MAX)
        return mp_err_set(err, MP_EPARSE, "%s: %zu bytes is too large", what, len);
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return mp_err_set(err, MP_ENOMEM, "%s: json tokener", what);
    json_object *root = json_tokener_parse_ex(tok, json, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t off = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    int rc = 0;
    if (root == NULL || jerr != json_tokener_success) {
        rc = jerr == json_tokener_continue || jerr == json_tokener_success
                 ? mp_err_set(err, MP_EPARSE, "%s: truncated JSON at byte %zu", what, len)
                 : mp_err_set(err, MP_EPARSE, "%s: byte %zu: %s", what, off,
                              json_tokener_error_desc(jerr));
    }
    for (size_t i = off; rc == 0 && i < len; i++)
        if (json[i] != ' ' && json[i] != '\t' && json[i] != '\n' && json[i] != '\r')
            rc = mp_err_set(err, MP_EPARSE, "%s: byte %zu: data after the JSON value", what, i);
    if (rc == 0 && !json_object_is_type(root, json_type_object))
        rc = mp_err_set(err, MP_EPARSE, "%s: not a JSON object", what);
    if (rc) {
        json_object_put(root);
        return rc;
    }
    struct scrape_k8s_object *o = mp_xcalloc(1, sizeof *o);
    o->role = role;
    o->root = root;
    o->ns = "";
    o->name = "";
    struct rd r = {o, err};
    json_object *meta;
    bool have_name;
    rc = get_obj(&r, root, "", "metadata", &meta);
    if (rc == 0)
        rc = get_str(&r, meta, "metadata", "namespace", &o->ns, NULL);
    if (rc == 0)
        rc = get_str(&r, meta, "metadata", "name", &o->name, &have_name);
    if (rc == 0 && (!have_name || o->name[0] == '\0'))
        rc = mp_err_set(err, MP_EPARSE, "%s: metadata.name missing", what);
    if (rc == 0) {
        /* read every field once: a stored object can then fail only on memory */
        struct scrape_target_group g;
        struct build b;
        struct mp_err verr = {0};
        rc = build_begin(&b, o, &g, &verr);
        if (rc == 0)
            rc = role == SCRAPE_K8S_POD         ? build_pod(&b, NULL, true)
                 : role == SCRAPE_K8S_SERVICE   ? build_service(&b)
                 : role == SCRAPE_K8S_ENDPOINTS ? build_endpoints(&b, NULL)
                 : role == SCRAPE_K8S_NODE      ? build_node(&b)
                 : role == SCRAPE_K8S_INGRESS   ? build_ingress(&b)
                                                : build_endpointslice(&b, NULL);
        rc = build_end(&b, rc);
        scrape_target_group_fini(&g);
        if (rc == MP_ENOTFOUND) /* a node without address is a valid object */
            rc = 0;
        if (rc)
            mp_err_set(err, rc, "%s", verr.msg);
    }
    if (rc) {
        mp_err_wrap(err, "%s", what);
        scrape_k8s_object_destroy(o);
        return rc;
    }
    *out = o;
    return 0;
}

void scrape_k8s_object_destroy(struct scrape_k8s_object *o)
{
    if (!o)
        return;
    json_object_put(o->root);
    mp_free(o);
}

enum scrape_k8s_role scrape_k8s_object_role(const struct scrape_k8s_object *o)
{
    return o->role;
}

const char *scrape_k8s_object_namespace(const struct scrape_k8s_object *o)
{
    return o->ns;
}

const char *scrape_k8s_object_name(const struct scrape_k8s_object *o)
{
    return o->name;
}

const char *scrape_k8s_endpointslice_service_name(const struct scrape_k8s_object *o)
{
    if (o->role != SCRAPE_K8S_ENDPOINTSLICE)
        return NULL;
    struct rd r = {o, NULL};
    json_object *meta = NULL;
    const char *name = NULL;
    if (get_obj(&r, o->root, "", "metadata", &meta) == 0 &&
        slice_service_name(&r, meta, &name) == 0)
        return name;
    return NULL;
}

/* Calls fn for ref when it names a Pod. */
static void pod_ref(json_object *ref, void (*fn)(void *, const char *, const char *), void *ctx)
{
    if (!ref || !json_object_is_type(ref, json_type_object))
        return;
    struct rd r = {NULL, NULL};
    const char *kind, *ns, *name;
    /* the object was checked when parsed: these are strings or absent/null */
    if (get_str(&r, ref, "", "kind", &kind, NULL) || get_str(&r, ref, "", "namespace", &ns, NULL) ||
        get_str(&r, ref, "", "name", &name, NULL) || strcmp(kind, "Pod") != 0)
        return;
    fn(ctx, ns, name);
}

void scrape_k8s_object_pod_refs(const struct scrape_k8s_object *o,
                                void (*fn)(void *ctx, const char *ns, const char *name), void *ctx)
{
    if (o->role == SCRAPE_K8S_ENDPOINTSLICE) {
        json_object *eps = member(o->root, "endpoints");
        for (size_t i = 0; i < arr_len(eps); i++) {
            json_object *ref = NULL, *ep = json_object_array_get_idx(eps, i);
            if (ep && json_object_is_type(ep, json_type_object) &&
                json_object_object_get_ex(ep, "targetRef", &ref))
                pod_ref(ref, fn, ctx);
        }
    } else if (o->role == SCRAPE_K8S_ENDPOINTS) {
        json_object *subsets = member(o->root, "subsets");
        for (size_t s = 0; s < arr_len(subsets); s++) {
            json_object *ss = json_object_array_get_idx(subsets, s);
            for (int pass = 0; pass < 2; pass++) {
                json_object *list = member(ss, pass ? "notReadyAddresses" : "addresses");
                for (size_t i = 0; i < arr_len(list); i++) {
                    json_object *ref = NULL, *a = json_object_array_get_idx(list, i);
                    if (a && json_object_is_type(a, json_type_object) &&
                        json_object_object_get_ex(a, "targetRef", &ref))
                        pod_ref(ref, fn, ctx);
                }
            }
        }
    }
}

/* fn(ctx, "", name) for a non-empty string name. */
static void node_ref(json_object *v, void (*fn)(void *, const char *, const char *), void *ctx)
{
    if (v && json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 0)
        fn(ctx, "", json_object_get_string(v));
}

/* The node an address or slice endpoint attaches: nodeName first for Endpoints, a Node
 * targetRef first for slices (as the builders read them). */
static void addr_node_ref(json_object *a, bool ref_first,
                          void (*fn)(void *, const char *, const char *), void *ctx)
{
    if (!a || !json_object_is_type(a, json_type_object))
        return;
    json_object *node = NULL, *ref = NULL, *kind = NULL, *name = NULL;
    bool has_node = json_object_object_get_ex(a, "nodeName", &node) && node != NULL;
    bool node_ref_ok = json_object_object_get_ex(a, "targetRef", &ref) && ref &&
                       json_object_is_type(ref, json_type_object) &&
                       json_object_object_get_ex(ref, "kind", &kind) && kind &&
                       json_object_is_type(kind, json_type_string) &&
                       strcmp(json_object_get_string(kind), "Node") == 0 &&
                       json_object_object_get_ex(ref, "name", &name);
    if (ref_first ? node_ref_ok : !has_node && node_ref_ok)
        node_ref(name, fn, ctx);
    else if (has_node)
        node_ref(node, fn, ctx);
}

void scrape_k8s_object_node_refs(const struct scrape_k8s_object *o,
                                 void (*fn)(void *ctx, const char *ns, const char *name), void *ctx)
{
    if (o->role == SCRAPE_K8S_POD) {
        json_object *spec = NULL, *node = NULL;
        if (json_object_object_get_ex(o->root, "spec", &spec) && spec &&
            json_object_is_type(spec, json_type_object) &&
            json_object_object_get_ex(spec, "nodeName", &node))
            node_ref(node, fn, ctx);
    } else if (o->role == SCRAPE_K8S_ENDPOINTSLICE) {
        json_object *eps = member(o->root, "endpoints");
        for (size_t i = 0; i < arr_len(eps); i++)
            addr_node_ref(json_object_array_get_idx(eps, i), true, fn, ctx);
    } else if (o->role == SCRAPE_K8S_ENDPOINTS) {
        json_object *subsets = member(o->root, "subsets");
        for (size_t s = 0; s < arr_len(subsets); s++) {
            json_object *ss = json_object_array_get_idx(subsets, s);
            for (int pass = 0; pass < 2; pass++) {
                json_object *list = member(ss, pass ? "notReadyAddresses" : "addresses");
                for (size_t i = 0; i < arr_len(list); i++)
                    addr_node_ref(json_object_array_get_idx(list, i), false, fn, ctx);
            }
        }
    }
}

/* parse + build + destroy */
static int one_shot(enum scrape_k8s_role role, const char *json, size_t len,
                    const struct scrape_k8s_lookup *lookup, struct scrape_target_group *out,
                    struct mp_err *err)
{
    struct scrape_k8s_object *o;
    memset(out, 0, sizeof *out);
    int rc = scrape_k8s_object_parse(role, json, len, &o, err);
    if (rc == 0)
        rc = scrape_k8s_build(o, lookup, out, err);
    scrape_k8s_object_destroy(o);
    return rc;
}

int scrape_k8s_pod_targets(const char *json, size_t len, struct scrape_target_group *out,
                           struct mp_err *err)
{
    return one_shot(SCRAPE_K8S_POD, json, len, NULL, out, err);
}

int scrape_k8s_pod_targets_lookup(const char *json, size_t len,
                                  const struct scrape_k8s_lookup *lookup,
                                  struct scrape_target_group *out, struct mp_err *err)
{
    return one_shot(SCRAPE_K8S_POD, json, len, lookup, out, err);
}

int scrape_k8s_ingress_targets(const char *json, size_t len, struct scrape_target_group *out,
                               struct mp_err *err)
{
    return one_shot(SCRAPE_K8S_INGRESS, json, len, NULL, out, err);
}

int scrape_k8s_endpoints_targets(const char *json, size_t len,
                                 const struct scrape_k8s_lookup *lookup,
                                 struct scrape_target_group *out, struct mp_err *err)
{
    return one_shot(SCRAPE_K8S_ENDPOINTS, json, len, lookup, out, err);
}

int scrape_k8s_endpointslice_targets(const char *json, size_t len,
                                     const struct scrape_k8s_lookup *lookup,
                                     struct scrape_target_group *out, struct mp_err *err)
{
    return one_shot(SCRAPE_K8S_ENDPOINTSLICE, json, len, lookup, out, err);
}

int scrape_k8s_service_targets(const char *json, size_t len, struct scrape_target_group *out,
                               struct mp_err *err)
{
    return one_shot(SCRAPE_K8S_SERVICE, json, len, NULL, out, err);
}

int scrape_k8s_node_targets(const char *json, size_t len, struct scrape_target_group *out,
                            struct mp_err *err)
{
    return one_shot(SCRAPE_K8S_NODE, json, len, NULL, out, err);
}
