/* SPDX-License-Identifier: Apache-2.0 */
/* meshsim/k8s_fake.c: the fake Kubernetes API server (meshsim.h, kubernetes-sd.md 4).
 *
 * State (all under k->mu): per kind a sorted array of the current objects, each an immutable
 * refcounted version (parsed json-c tree for selector matching, plus its serialised text);
 * one global ring of events (revision, kind, previous and new version); the compaction floor;
 * the open watchers; paged-list snapshots; the request log.
 *
 * Watches: the access handler registers a watcher and queues the replayed events into its
 * buffer while holding the lock, so no event falls between replay and live delivery. The
 * response is a chunked callback response. Its reader hands out queued bytes; with nothing to
 * send it suspends the connection (under k->mu) and returns 0. Writers (put/delete, ticker)
 * mark a suspended watcher runnable under the lock and call MHD_resume_connection after
 * dropping it: a suspended connection cannot be closed by MHD, so the pointer stays valid
 * until that resume, and no MHD lock is ever taken by a non-MHD thread while holding k->mu.
 * All MHD callbacks run on MHD's single internal polling thread. */
#define _GNU_SOURCE
#include "meshsim/meshsim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/time.h"

/* ---- kinds ---------------------------------------------------------------------------------- */

struct kind_info {
    const char *resource; /* path segment */
    const char *kind;
    const char *list_kind;
    const char *api_version;
    const char *prefix; /* "/api/v1" or "/apis/<group>/<version>" */
    bool namespaced;
};

static const struct kind_info kinds[MESHSIM_K8S_KIND_COUNT] = {
    [MESHSIM_K8S_PODS] = {"pods", "Pod", "PodList", "v1", "/api/v1", true},
    [MESHSIM_K8S_SERVICES] = {"services", "Service", "ServiceList", "v1", "/api/v1", true},
    [MESHSIM_K8S_ENDPOINTS] = {"endpoints", "Endpoints", "EndpointsList", "v1", "/api/v1", true},
    [MESHSIM_K8S_ENDPOINTSLICES] = {"endpointslices", "EndpointSlice", "EndpointSliceList",
                                    "discovery.k8s.io/v1", "/apis/discovery.k8s.io/v1", true},
    [MESHSIM_K8S_NODES] = {"nodes", "Node", "NodeList", "v1", "/api/v1", false},
    [MESHSIM_K8S_INGRESSES] = {"ingresses", "Ingress", "IngressList", "networking.k8s.io/v1",
                               "/apis/networking.k8s.io/v1", true},
};

/* ---- object versions ------------------------------------------------------------------------ */

struct objver {
    int refs;
    char *ns; /* "" for nodes */
    char *name;
    json_object *j;
    char *text; /* serialised object without kind/apiVersion; starts with '{' */
    size_t len;
};

static struct objver *objver_ref(struct objver *v)
{
    v->refs++;
    return v;
}

static void objver_unref(struct objver *v)
{
    if (v == NULL || --v->refs > 0)
        return;
    json_object_put(v->j);
    mp_free(v->ns);
    mp_free(v->name);
    mp_free(v->text);
    mp_free(v);
}

static int key_cmp(const char *ns1, const char *n1, const char *ns2, const char *n2)
{
    int c = strcmp(ns1, ns2);
    return c != 0 ? c : strcmp(n1, n2);
}

struct store {
    struct objver **v; /* sorted by (ns, name) */
    size_t n, cap;
};

/* Index of ns/name, or -(insertion point) - 1. */
static ptrdiff_t store_find(const struct store *s, const char *ns, const char *name)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = key_cmp(s->v[mid]->ns, s->v[mid]->name, ns, name);
        if (c == 0)
            return (ptrdiff_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(ptrdiff_t)lo - 1;
}

/* ---- events, watchers, snapshots, log --------------------------------------------------- */

enum ev_type { EV_ADDED, EV_MODIFIED, EV_DELETED };

struct event {
    uint64_t rev;
    enum meshsim_k8s_kind kind;
    enum ev_type type;
    struct objver *prev; /* NULL for ADDED */
    struct objver *cur;  /* new state; for DELETED the last state at the deletion revision */
};

/* A parsed selector: requirements ANDed. */
enum req_op { OP_EQ, OP_NE, OP_IN, OP_NOTIN, OP_EXISTS, OP_NOTEXISTS };
struct requirement {
    char *key;
    enum req_op op;
    char **values;
    size_t nvalues;
};
struct selector {
    struct requirement *r;
    size_t n;
};

enum watch_end { END_NONE = 0, END_CLEAN, END_ABRUPT };

struct watcher {
    struct watcher *next, *prevw;
    struct meshsim_k8s *k;
    struct MHD_Connection *conn;
    enum meshsim_k8s_kind kind;
    char *ns; /* NULL: cluster-wide */
    struct selector lsel, fsel;
    bool bookmarks;
    int64_t deadline_ms;      /* monotonic; 0 = none */
    bool pre_bookmark_sent;   /* the one 2 s before the deadline */
    int64_t next_bookmark_ms; /* monotonic; 0 = none */
    struct mp_buf out;        /* queued bytes; [off, len) still to send */
    size_t off;
    bool suspended;
    enum watch_end end;
};

struct snapshot {
    uint64_t id;
    uint64_t rev;
    enum meshsim_k8s_kind kind;
    struct objver **items;
    size_t n;
};
#define MAX_SNAPSHOTS 32

struct logent {
    uint64_t seq;
    char *method, *path, *query, *auth;
    bool watch;
    int status;
};

struct meshsim_k8s {
    pthread_mutex_t mu;
    struct MHD_Daemon *d;
    uint16_t port;
    struct meshsim_k8s_opts opts;
    char *git_version;
    char *tls_cert, *tls_key;

    uint64_t rev;
    uint64_t floor;
    struct store stores[MESHSIM_K8S_KIND_COUNT];
    struct event *ring; /* capacity opts.history */
    size_t ring_head, ring_n;
    uint64_t uid_seq;
    uint64_t split_rng; /* fixed seed: split_writes is deterministic per run */

    struct watcher *watchers;
    size_t nwatchers;
    bool stalled;

    struct snapshot snaps[MAX_SNAPSHOTS];
    size_t nsnaps;
    uint64_t snap_seq;

    char *token;
    int fail_status, fail_count;

    struct logent *log;
    size_t log_head, log_n;
    uint64_t log_seq;

    /* watchers to resume once the lock is dropped */
    struct watcher **wake;
    size_t nwake, wake_cap;

    pthread_t ticker;
    bool ticker_started;
    bool stop;
    pthread_cond_t stop_cv;
};

static int64_t mono_ms(void)
{
    return mp_mono_ns() / 1000000;
}

/* ---- selectors ------------------------------------------------------------------------------ */

static void selector_fini(struct selector *s)
{
    for (size_t i = 0; i < s->n; i++) {
        mp_free(s->r[i].key);
        for (size_t j = 0; j < s->r[i].nvalues; j++)
            mp_free(s->r[i].values[j]);
        mp_free(s->r[i].values);
    }
    mp_free(s->r);
    s->r = NULL;
    s->n = 0;
}

static char *trim_dup(const char *b, const char *e)
{
    while (b < e && (*b == ' ' || *b == '\t'))
        b++;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    return mp_xstrndup(b, (size_t)(e - b));
}

static void req_add_value(struct requirement *r, char *v)
{
    r->values = mp_xrealloc(r->values, (r->nvalues + 1) * sizeof *r->values);
    r->values[r->nvalues++] = v;
}

/* One requirement [b, e). Returns false when malformed. */
static bool parse_requirement(const char *b, const char *e, bool field, struct requirement *r)
{
    memset(r, 0, sizeof *r);
    while (b < e && *b == ' ')
        b++;
    if (b == e)
        return false;
    const char *op = NULL;
    size_t oplen = 0;
    for (const char *p = b; p < e; p++) {
        if (*p == '!' && p + 1 < e && p[1] == '=') {
            op = p, oplen = 2, r->op = OP_NE;
            break;
        }
        if (*p == '=') {
            op = p, oplen = (p + 1 < e && p[1] == '=') ? 2 : 1, r->op = OP_EQ;
            break;
        }
    }
    if (op != NULL) {
        r->key = trim_dup(b, op);
        req_add_value(r, trim_dup(op + oplen, e));
        return r->key[0] != '\0';
    }
    if (field)
        return false;
    if (*b == '!') {
        r->key = trim_dup(b + 1, e);
        r->op = OP_NOTEXISTS;
        return r->key[0] != '\0' && strchr(r->key, ' ') == NULL;
    }
    const char *sp = memchr(b, ' ', (size_t)(e - b));
    if (sp == NULL) {
        r->key = trim_dup(b, e);
        r->op = OP_EXISTS;
        return true;
    }
    r->key = trim_dup(b, sp);
    const char *p = sp;
    while (p < e && *p == ' ')
        p++;
    if ((size_t)(e - p) > 6 && strncmp(p, "notin", 5) == 0 && (p[5] == ' ' || p[5] == '(')) {
        r->op = OP_NOTIN;
        p += 5;
    } else if ((size_t)(e - p) > 3 && strncmp(p, "in", 2) == 0 && (p[2] == ' ' || p[2] == '(')) {
        r->op = OP_IN;
        p += 2;
    } else {
        return false;
    }
    while (p < e && *p == ' ')
        p++;
    if (p == e || *p != '(')
        return false;
    const char *close = e;
    while (close > p && close[-1] == ' ')
        close--;
    if (close[-1] != ')')
        return false;
    const char *v = p + 1;
    for (const char *q = v;; q++) {
        if (q == close - 1 || *q == ',') {
            req_add_value(r, trim_dup(v, q));
            if (q == close - 1)
                break;
            v = q + 1;
        }
    }
    return true;
}

/* Parses a labelSelector (field == false) or fieldSelector; NULL or "" selects everything. */
static bool selector_parse(const char *s, bool field, struct selector *out)
{
    memset(out, 0, sizeof *out);
    if (s == NULL || *s == '\0')
        return true;
    int depth = 0;
    const char *b = s;
    for (const char *p = s;; p++) {
        if (*p == '(')
            depth++;
        else if (*p == ')')
            depth--;
        if (*p == '\0' || (*p == ',' && depth == 0)) {
            out->r = mp_xrealloc(out->r, (out->n + 1) * sizeof *out->r);
            if (!parse_requirement(b, p, field, &out->r[out->n])) {
                out->n++;
                selector_fini(out);
                return false;
            }
            out->n++;
            if (*p == '\0')
                break;
            b = p + 1;
        }
    }
    return depth == 0;
}

/* The string at a dotted path of the object ("" when absent), into buf. */
static const char *field_value(json_object *j, const char *path, char *buf, size_t cap)
{
    char seg[128];
    const char *p = path;
    json_object *cur = j;
    while (*p != '\0' && cur != NULL) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n >= sizeof seg)
            return "";
        memcpy(seg, p, n);
        seg[n] = '\0';
        json_object *next = NULL;
        if (!json_object_is_type(cur, json_type_object) ||
            !json_object_object_get_ex(cur, seg, &next))
            return "";
        cur = next;
        p = dot ? dot + 1 : p + n;
    }
    if (cur == NULL)
        return "";
    if (json_object_is_type(cur, json_type_string))
        return json_object_get_string(cur);
    snprintf(buf, cap, "%s", json_object_to_json_string_ext(cur, JSON_C_TO_STRING_PLAIN));
    return buf;
}

static bool value_in(const struct requirement *r, const char *v)
{
    for (size_t i = 0; i < r->nvalues; i++)
        if (strcmp(r->values[i], v) == 0)
            return true;
    return false;
}

static bool selector_match(const struct selector *s, json_object *j, bool field)
{
    json_object *labels = NULL, *meta = NULL;
    if (!field && json_object_object_get_ex(j, "metadata", &meta))
        json_object_object_get_ex(meta, "labels", &labels);
    for (size_t i = 0; i < s->n; i++) {
        const struct requirement *r = &s->r[i];
        const char *v = NULL;
        char buf[256];
        if (field) {
            v = field_value(j, r->key, buf, sizeof buf);
        } else {
            json_object *lv = NULL;
            if (labels != NULL && json_object_is_type(labels, json_type_object) &&
                json_object_object_get_ex(labels, r->key, &lv))
                v = json_object_get_string(lv);
        }
        bool has = v != NULL;
        switch (r->op) {
        case OP_EQ:
            if (!has || strcmp(v, r->values[0]) != 0)
                return false;
            break;
        case OP_NE:
            if (has && strcmp(v, r->values[0]) == 0)
                return false;
            break;
        case OP_IN:
            if (!has || !value_in(r, v))
                return false;
            break;
        case OP_NOTIN:
            if (has && value_in(r, v))
                return false;
            break;
        case OP_EXISTS:
            if (!has)
                return false;
            break;
        case OP_NOTEXISTS:
            if (has)
                return false;
            break;
        }
    }
    return true;
}

static bool watcher_matches(const struct watcher *w, const struct objver *v)
{
    if (v == NULL)
        return false;
    if (w->ns != NULL && strcmp(w->ns, v->ns) != 0)
        return false;
    return selector_match(&w->lsel, v->j, false) && selector_match(&w->fsel, v->j, true);
}

/* ---- watch output --------------------------------------------------------------------------- */

static void wake_later(struct meshsim_k8s *k, struct watcher *w)
{
    if (!w->suspended)
        return;
    w->suspended = false;
    if (k->nwake == k->wake_cap) {
        k->wake_cap = k->wake_cap ? 2 * k->wake_cap : 16;
        k->wake = mp_xrealloc(k->wake, k->wake_cap * sizeof *k->wake);
    }
    k->wake[k->nwake++] = w;
}

/* Drops k->mu, then resumes the watchers collected by wake_later. */
static void unlock_and_wake(struct meshsim_k8s *k)
{
    struct watcher *local[64];
    struct watcher **list = local;
    size_t n = k->nwake;
    if (n > 64)
        list = mp_xmalloc(n * sizeof *list);
    if (n > 0)
        memcpy(list, k->wake, n * sizeof *list);
    k->nwake = 0;
    pthread_mutex_unlock(&k->mu);
    for (size_t i = 0; i < n; i++)
        MHD_resume_connection(list[i]->conn);
    if (list != local)
        mp_free(list);
}

static void queue_raw(struct watcher *w, const char *s, size_t n)
{
    if (mp_buf_append(&w->out, s, n) != 0)
        w->end = END_ABRUPT; /* out of memory or over the buffer cap: cut the slow watcher */
}

static void queue_object_event(struct watcher *w, const char *type, const struct objver *v)
{
    const struct kind_info *ki = &kinds[w->kind];
    char head[160];
    int n = snprintf(head, sizeof head,
                     "{\"type\":\"%s\",\"object\":{\"kind\":\"%s\",\"apiVersion\":\"%s\",", type,
                     ki->kind, ki->api_version);
    queue_raw(w, head, (size_t)n);
    queue_raw(w, v->text + 1, v->len - 1);
    queue_raw(w, "}\n", 2);
}

static void queue_bookmark(struct meshsim_k8s *k, struct watcher *w)
{
    const struct kind_info *ki = &kinds[w->kind];
    char line[200];
    int n = snprintf(line, sizeof line,
                     "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"%s\",\"apiVersion\":\"%s\","
                     "\"metadata\":{\"resourceVersion\":\"%" PRIu64 "\"}}}\n",
                     ki->kind, ki->api_version, k->rev);
    queue_raw(w, line, (size_t)n);
}

/* Queues what event e means for w (ADDED/MODIFIED/DELETED as seen through its selection). */
static void queue_event(struct watcher *w, const struct event *e)
{
    if (e->kind != w->kind)
        return;
    bool cm = watcher_matches(w, e->cur);
    if (e->type == EV_ADDED) {
        if (cm)
            queue_object_event(w, "ADDED", e->cur);
    } else if (e->type == EV_DELETED) {
        if (cm)
            queue_object_event(w, "DELETED", e->cur);
    } else {
        bool pm = watcher_matches(w, e->prev);
        if (pm && cm)
            queue_object_event(w, "MODIFIED", e->cur);
        else if (cm)
            queue_object_event(w, "ADDED", e->cur);
        else if (pm)
            queue_object_event(w, "DELETED", e->cur);
    }
}

static ssize_t watch_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct watcher *w = cls;
    struct meshsim_k8s *k = w->k;
    pthread_mutex_lock(&k->mu);
    ssize_t ret;
    if (w->end == END_ABRUPT) {
        ret = MHD_CONTENT_READER_END_WITH_ERROR;
    } else if (k->stalled && w->end == END_NONE) {
        w->suspended = true;
        MHD_suspend_connection(w->conn);
        ret = 0;
    } else if (w->off < w->out.len) {
        size_t n = w->out.len - w->off;
        if (n > max)
            n = max;
        if (k->opts.split_writes) {
            k->split_rng = k->split_rng * 6364136223846793005ull + 1442695040888963407ull;
            size_t piece = 1 + (size_t)(k->split_rng >> 58); /* 1..64 */
            if (n > piece)
                n = piece;
        }
        memcpy(buf, w->out.data + w->off, n);
        w->off += n;
        if (w->off == w->out.len) {
            mp_buf_reset(&w->out);
            w->off = 0;
        }
        ret = (ssize_t)n;
    } else if (w->end == END_CLEAN) {
        ret = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        w->suspended = true;
        MHD_suspend_connection(w->conn);
        ret = 0;
    }
    pthread_mutex_unlock(&k->mu);
    return ret;
}

static void watcher_free(struct watcher *w)
{
    selector_fini(&w->lsel);
    selector_fini(&w->fsel);
    mp_free(w->ns);
    mp_buf_fini(&w->out);
    mp_free(w);
}

static void watch_free_cb(void *cls)
{
    struct watcher *w = cls;
    struct meshsim_k8s *k = w->k;
    pthread_mutex_lock(&k->mu);
    if (w->prevw != NULL)
        w->prevw->next = w->next;
    else
        k->watchers = w->next;
    if (w->next != NULL)
        w->next->prevw = w->prevw;
    k->nwatchers--;
    for (size_t i = 0; i < k->nwake; i++) /* cannot happen (suspended ones are not freed) */
        if (k->wake[i] == w)
            k->wake[i] = k->wake[--k->nwake];
    pthread_mutex_unlock(&k->mu);
    watcher_free(w);
}

/* ---- history -------------------------------------------------------------------------------- */

static void event_fini(struct event *e)
{
    objver_unref(e->prev);
    objver_unref(e->cur);
    memset(e, 0, sizeof *e);
}

static void history_push(struct meshsim_k8s *k, struct event e)
{
    size_t cap = k->opts.history;
    if (k->ring_n == cap) {
        struct event *old = &k->ring[k->ring_head];
        k->floor = old->rev;
        event_fini(old);
        k->ring_head = (k->ring_head + 1) % cap;
        k->ring_n--;
    }
    k->ring[(k->ring_head + k->ring_n) % cap] = e;
    k->ring_n++;
    for (struct watcher *w = k->watchers; w != NULL; w = w->next) {
        if (w->end != END_NONE)
            continue;
        queue_event(w, &e);
        wake_later(k, w);
    }
}

/* ---- object normalisation ------------------------------------------------------------------- */

static json_object *obj_child(json_object *o, const char *key, enum json_type t)
{
    json_object *c = NULL;
    if (!json_object_object_get_ex(o, key, &c) || !json_object_is_type(c, t)) {
        c = t == json_type_object ? json_object_new_object() : NULL;
        if (c != NULL)
            json_object_object_add(o, key, c);
    }
    return c;
}

/* o[key] = v when o has no key (o may be NULL). */
static void default_str(json_object *o, const char *key, const char *v)
{
    if (o != NULL && !json_object_object_get_ex(o, key, NULL))
        json_object_object_add(o, key, json_object_new_string(v));
}

static void default_ports(json_object *arr, bool slice)
{
    if (arr == NULL || !json_object_is_type(arr, json_type_array))
        return;
    size_t n = json_object_array_length(arr);
    for (size_t i = 0; i < n; i++) {
        json_object *p = json_object_array_get_idx(arr, i);
        if (!json_object_is_type(p, json_type_object))
            continue;
        default_str(p, "protocol", "TCP");
        if (slice)
            default_str(p, "name", "");
    }
}

static json_object *get_path(json_object *o, const char *a, const char *b)
{
    json_object *x = NULL, *y = NULL;
    if (!json_object_object_get_ex(o, a, &x) || b == NULL)
        return x;
    if (!json_object_is_type(x, json_type_object) || !json_object_object_get_ex(x, b, &y))
        return NULL;
    return y;
}

static void each_array_item_ports(json_object *arr)
{
    if (arr == NULL || !json_object_is_type(arr, json_type_array))
        return;
    size_t n = json_object_array_length(arr);
    for (size_t i = 0; i < n; i++) {
        json_object *c = json_object_array_get_idx(arr, i);
        if (json_object_is_type(c, json_type_object))
            default_ports(get_path(c, "ports", NULL), false);
    }
}

static void fill_defaults(enum meshsim_k8s_kind kind, json_object *j)
{
    switch (kind) {
    case MESHSIM_K8S_PODS:
        each_array_item_ports(get_path(j, "spec", "containers"));
        each_array_item_ports(get_path(j, "spec", "initContainers"));
        /* the pod registry creates pods with status.phase Pending */
        default_str(obj_child(j, "status", json_type_object), "phase", "Pending");
        break;
    case MESHSIM_K8S_SERVICES:
        default_ports(get_path(j, "spec", "ports"), false);
        default_str(obj_child(j, "spec", json_type_object), "type", "ClusterIP");
        break;
    case MESHSIM_K8S_ENDPOINTS:
        each_array_item_ports(get_path(j, "subsets", NULL));
        break;
    case MESHSIM_K8S_ENDPOINTSLICES:
        default_ports(get_path(j, "ports", NULL), true);
        break;
    case MESHSIM_K8S_NODES:
    case MESHSIM_K8S_INGRESSES:
        break;
    }
}

static void set_str(json_object *o, const char *key, const char *v)
{
    json_object_object_add(o, key, json_object_new_string(v));
}

static struct objver *objver_make(json_object *j, const char *ns, const char *name)
{
    struct objver *v = mp_xcalloc(1, sizeof *v);
    v->refs = 1;
    v->ns = mp_xstrdup(ns);
    v->name = mp_xstrdup(name);
    v->j = j;
    size_t len = 0;
    const char *s = json_object_to_json_string_length(
        j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    v->text = mp_xstrndup(s, len);
    v->len = len;
    return v;
}

/* A copy of v with metadata.resourceVersion = rev (for the DELETED event). */
static struct objver *objver_at_rev(const struct objver *v, uint64_t rev)
{
    json_object *j = NULL;
    if (json_object_deep_copy(v->j, &j, NULL) != 0)
        mp_panic("k8s fake: json_object_deep_copy failed");
    char rv[24];
    snprintf(rv, sizeof rv, "%" PRIu64, rev);
    set_str(obj_child(j, "metadata", json_type_object), "resourceVersion", rv);
    return objver_make(j, v->ns, v->name);
}

/* ---- public: lifecycle ------------------------------------------------------------------- */

void meshsim_k8s_opts_init(struct meshsim_k8s_opts *o)
{
    memset(o, 0, sizeof *o);
    o->history = 4096;
    o->bookmark_interval_ms = 60000;
    o->bookmarks = true;
    o->git_version = "v1.31.4";
    o->request_log = 4096;
}

static void *ticker_main(void *arg);
static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls);

int meshsim_k8s_create(const char *listen, const struct meshsim_k8s_opts *o,
                       struct meshsim_k8s **out, struct mp_err *err)
{
    *out = NULL;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    if (colon == NULL || colon - listen >= 64)
        return mp_err_set(err, MP_EINVAL, "k8s fake: listen address %s: want host:port",
                          listen ? listen : "(null)");
    char host[64];
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535 || inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return mp_err_set(err, MP_EINVAL, "k8s fake: listen address %s: want IPv4:port", listen);
    sa.sin_port = htons((uint16_t)port);

    struct meshsim_k8s *k = mp_xcalloc(1, sizeof *k);
    meshsim_k8s_opts_init(&k->opts);
    if (o != NULL)
        k->opts = *o;
    if (k->opts.history == 0)
        k->opts.history = 1;
    if (k->opts.request_log == 0)
        k->opts.request_log = 1;
    k->git_version = mp_xstrdup(k->opts.git_version ? k->opts.git_version : "v1.31.4");
    k->opts.git_version = k->git_version;
    k->ring = mp_xcalloc(k->opts.history, sizeof *k->ring);
    k->log = mp_xcalloc(k->opts.request_log, sizeof *k->log);
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->stop_cv, NULL);

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME;
    struct MHD_OptionItem ops[6] = {
        {MHD_OPTION_SOCK_ADDR, 0, &sa},
        {MHD_OPTION_CONNECTION_TIMEOUT, 0, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    if (k->opts.tls_cert_pem != NULL && k->opts.tls_key_pem != NULL) {
        k->tls_cert = mp_xstrdup(k->opts.tls_cert_pem);
        k->tls_key = mp_xstrdup(k->opts.tls_key_pem);
        flags |= MHD_USE_TLS;
        ops[2] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, k->tls_cert};
        ops[3] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, k->tls_key};
        ops[4] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    }
    k->opts.tls_cert_pem = k->tls_cert;
    k->opts.tls_key_pem = k->tls_key;
    k->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, k, MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
    if (k->d == NULL) {
        meshsim_k8s_destroy(k);
        return mp_err_set(err, MP_EIO, "k8s fake: cannot listen on %s", listen);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(k->d, MHD_DAEMON_INFO_BIND_PORT);
    k->port = info ? info->port : (uint16_t)port;
    if (pthread_create(&k->ticker, NULL, ticker_main, k) != 0) {
        meshsim_k8s_destroy(k);
        return mp_err_set(err, MP_EIO, "k8s fake: cannot start the ticker thread");
    }
    k->ticker_started = true;
    *out = k;
    return 0;
}

static void snapshot_fini(struct snapshot *s)
{
    for (size_t i = 0; i < s->n; i++)
        objver_unref(s->items[i]);
    mp_free(s->items);
    memset(s, 0, sizeof *s);
}

static void logent_fini(struct logent *l)
{
    mp_free(l->method);
    mp_free(l->path);
    mp_free(l->query);
    mp_free(l->auth);
    memset(l, 0, sizeof *l);
}

void meshsim_k8s_destroy(struct meshsim_k8s *k)
{
    if (k == NULL)
        return;
    pthread_mutex_lock(&k->mu);
    k->stop = true;
    pthread_cond_broadcast(&k->stop_cv);
    pthread_mutex_unlock(&k->mu);
    if (k->ticker_started)
        pthread_join(k->ticker, NULL);
    if (k->d != NULL) {
        /* Cut every watch and let MHD close them before it stops. */
        pthread_mutex_lock(&k->mu);
        for (struct watcher *w = k->watchers; w != NULL; w = w->next) {
            w->end = END_ABRUPT;
            wake_later(k, w);
        }
        unlock_and_wake(k);
        for (int i = 0; i < 200; i++) {
            pthread_mutex_lock(&k->mu);
            size_t n = k->nwatchers;
            pthread_mutex_unlock(&k->mu);
            if (n == 0)
                break;
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        MHD_stop_daemon(k->d);
    }
    for (int i = 0; i < MESHSIM_K8S_KIND_COUNT; i++) {
        for (size_t j = 0; j < k->stores[i].n; j++)
            objver_unref(k->stores[i].v[j]);
        mp_free(k->stores[i].v);
    }
    for (size_t i = 0; i < k->ring_n; i++)
        event_fini(&k->ring[(k->ring_head + i) % k->opts.history]);
    for (size_t i = 0; i < k->nsnaps; i++)
        snapshot_fini(&k->snaps[i]);
    for (size_t i = 0; i < k->log_n; i++)
        logent_fini(&k->log[(k->log_head + i) % k->opts.request_log]);
    mp_free(k->ring);
    mp_free(k->log);
    mp_free(k->wake);
    mp_free(k->token);
    mp_free(k->git_version);
    mp_free(k->tls_cert);
    mp_free(k->tls_key);
    pthread_cond_destroy(&k->stop_cv);
    pthread_mutex_destroy(&k->mu);
    mp_free(k);
}

uint16_t meshsim_k8s_port(const struct meshsim_k8s *k)
{
    return k->port;
}

uint64_t meshsim_k8s_revision(const struct meshsim_k8s *k)
{
    struct meshsim_k8s *m = (struct meshsim_k8s *)k;
    pthread_mutex_lock(&m->mu);
    uint64_t r = m->rev;
    pthread_mutex_unlock(&m->mu);
    return r;
}

/* Periodic bookmarks and timeouts, every 50 ms. */
static void *ticker_main(void *arg)
{
    struct meshsim_k8s *k = arg;
    pthread_mutex_lock(&k->mu);
    while (!k->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&k->stop_cv, &k->mu, &ts);
        if (k->stop)
            break;
        int64_t now = mono_ms();
        for (struct watcher *w = k->watchers; w != NULL; w = w->next) {
            if (w->end != END_NONE)
                continue;
            bool changed = false;
            if (w->deadline_ms != 0 && !k->opts.ignore_timeout && now >= w->deadline_ms) {
                w->end = END_CLEAN;
                changed = true;
            } else if (w->bookmarks && w->deadline_ms != 0 && !w->pre_bookmark_sent &&
                       now >= w->deadline_ms - 2000) {
                w->pre_bookmark_sent = true;
                queue_bookmark(k, w);
                changed = true;
            }
            if (w->bookmarks && w->next_bookmark_ms != 0 && now >= w->next_bookmark_ms) {
                w->next_bookmark_ms = now + k->opts.bookmark_interval_ms;
                queue_bookmark(k, w);
                changed = true;
            }
            if (changed)
                wake_later(k, w);
        }
        unlock_and_wake(k);
        pthread_mutex_lock(&k->mu);
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

/* ---- public: state ------------------------------------------------------------------------ */

/* "" for cluster-scoped kinds, "default" for an unnamed namespace. */
static const char *norm_ns(enum meshsim_k8s_kind kind, const char *ns)
{
    if (!kinds[kind].namespaced)
        return "";
    return ns == NULL || ns[0] == '\0' ? "default" : ns;
}

int meshsim_k8s_put(struct meshsim_k8s *k, enum meshsim_k8s_kind kind, const char *ns,
                    const char *name, const char *json, size_t len, uint64_t *rv,
                    struct mp_err *err)
{
    if ((unsigned)kind >= MESHSIM_K8S_KIND_COUNT || name == NULL || name[0] == '\0')
        return mp_err_set(err, MP_EINVAL, "k8s fake: put needs a kind and a name");
    ns = norm_ns(kind, ns);
    struct json_tokener *tok = json_tokener_new();
    if (tok == NULL)
        return mp_err_set(err, MP_ENOMEM, "k8s fake: out of memory");
    json_object *j = json_tokener_parse_ex(tok, json, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (j == NULL || jerr != json_tokener_success || used != len ||
        !json_object_is_type(j, json_type_object)) {
        json_object_put(j);
        return mp_err_set(err, MP_EPARSE, "k8s fake: %s/%s: not a JSON object",
                          kinds[kind].resource, name);
    }
    json_object_object_del(j, "kind");
    json_object_object_del(j, "apiVersion");
    fill_defaults(kind, j);
    json_object *meta = obj_child(j, "metadata", json_type_object);
    set_str(meta, "name", name);
    if (kinds[kind].namespaced)
        set_str(meta, "namespace", ns);
    else
        json_object_object_del(meta, "namespace");

    pthread_mutex_lock(&k->mu);
    struct store *s = &k->stores[kind];
    ptrdiff_t at = store_find(s, ns, name);
    struct objver *prev = at >= 0 ? s->v[at] : NULL;
    if (!json_object_object_get_ex(meta, "uid", NULL)) {
        json_object *puid = prev ? get_path(prev->j, "metadata", "uid") : NULL;
        if (puid != NULL) {
            set_str(meta, "uid", json_object_get_string(puid));
        } else {
            char uid[48];
            snprintf(uid, sizeof uid, "00000000-0000-4000-8000-%012" PRIx64, ++k->uid_seq);
            set_str(meta, "uid", uid);
        }
    }
    if (!json_object_object_get_ex(meta, "creationTimestamp", NULL)) {
        json_object *pct = prev ? get_path(prev->j, "metadata", "creationTimestamp") : NULL;
        char ts[40];
        if (pct != NULL) {
            snprintf(ts, sizeof ts, "%s", json_object_get_string(pct));
        } else {
            time_t t = (time_t)(mp_now_ms() / 1000);
            struct tm tm;
            gmtime_r(&t, &tm);
            strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
        }
        set_str(meta, "creationTimestamp", ts);
    }
    uint64_t r = ++k->rev;
    char rvs[24];
    snprintf(rvs, sizeof rvs, "%" PRIu64, r);
    set_str(meta, "resourceVersion", rvs);
    struct objver *v = objver_make(j, ns, name);
    struct event e = {.rev = r, .kind = kind, .type = prev ? EV_MODIFIED : EV_ADDED};
    if (prev != NULL) {
        e.prev = prev; /* the store's reference moves to the event */
        s->v[at] = v;
    } else {
        size_t pos = (size_t)(-at - 1);
        if (s->n == s->cap) {
            s->cap = s->cap ? 2 * s->cap : 64;
            s->v = mp_xrealloc(s->v, s->cap * sizeof *s->v);
        }
        memmove(s->v + pos + 1, s->v + pos, (s->n - pos) * sizeof *s->v);
        s->v[pos] = v;
        s->n++;
    }
    e.cur = objver_ref(v);
    history_push(k, e);
    unlock_and_wake(k);
    if (rv != NULL)
        *rv = r;
    return 0;
}

int meshsim_k8s_delete(struct meshsim_k8s *k, enum meshsim_k8s_kind kind, const char *ns,
                       const char *name, uint64_t *rv, struct mp_err *err)
{
    if ((unsigned)kind >= MESHSIM_K8S_KIND_COUNT || name == NULL)
        return mp_err_set(err, MP_EINVAL, "k8s fake: delete needs a kind and a name");
    ns = norm_ns(kind, ns);
    pthread_mutex_lock(&k->mu);
    struct store *s = &k->stores[kind];
    ptrdiff_t at = store_find(s, ns, name);
    if (at < 0) {
        pthread_mutex_unlock(&k->mu);
        return mp_err_set(err, MP_ENOTFOUND, "k8s fake: %s %s/%s not found", kinds[kind].resource,
                          ns, name);
    }
    struct objver *prev = s->v[at];
    memmove(s->v + at, s->v + at + 1, (s->n - (size_t)at - 1) * sizeof *s->v);
    s->n--;
    uint64_t r = ++k->rev;
    struct event e = {.rev = r, .kind = kind, .type = EV_DELETED, .prev = prev};
    e.cur = objver_at_rev(prev, r);
    history_push(k, e);
    unlock_and_wake(k);
    if (rv != NULL)
        *rv = r;
    return 0;
}

int meshsim_k8s_get(struct meshsim_k8s *k, enum meshsim_k8s_kind kind, const char *ns,
                    const char *name, struct mp_buf *out, struct mp_err *err)
{
    if ((unsigned)kind >= MESHSIM_K8S_KIND_COUNT || name == NULL)
        return mp_err_set(err, MP_EINVAL, "k8s fake: get needs a kind and a name");
    ns = norm_ns(kind, ns);
    pthread_mutex_lock(&k->mu);
    ptrdiff_t at = store_find(&k->stores[kind], ns, name);
    int rc = 0;
    if (at < 0)
        rc = mp_err_set(err, MP_ENOTFOUND, "k8s fake: %s %s/%s not found", kinds[kind].resource, ns,
                        name);
    else if ((rc = mp_buf_append(out, k->stores[kind].v[at]->text, k->stores[kind].v[at]->len)) !=
             0)
        rc = mp_err_set(err, rc, "k8s fake: get: %s", mp_strerror(rc));
    pthread_mutex_unlock(&k->mu);
    return rc;
}

void meshsim_k8s_compact(struct meshsim_k8s *k)
{
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < k->ring_n; i++)
        event_fini(&k->ring[(k->ring_head + i) % k->opts.history]);
    k->ring_head = k->ring_n = 0;
    k->floor = k->rev;
    pthread_mutex_unlock(&k->mu);
}

void meshsim_k8s_expire_continues(struct meshsim_k8s *k)
{
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < k->nsnaps; i++)
        snapshot_fini(&k->snaps[i]);
    k->nsnaps = 0;
    pthread_mutex_unlock(&k->mu);
}

void meshsim_k8s_drop_watches(struct meshsim_k8s *k, bool clean)
{
    pthread_mutex_lock(&k->mu);
    for (struct watcher *w = k->watchers; w != NULL; w = w->next) {
        if (w->end == END_ABRUPT)
            continue;
        w->end = clean ? END_CLEAN : END_ABRUPT;
        if (clean) { /* a clean end drops what was still queued, too */
            mp_buf_reset(&w->out);
            w->off = 0;
        }
        wake_later(k, w);
    }
    unlock_and_wake(k);
}

void meshsim_k8s_stall_watches(struct meshsim_k8s *k, bool stalled)
{
    pthread_mutex_lock(&k->mu);
    k->stalled = stalled;
    if (!stalled)
        for (struct watcher *w = k->watchers; w != NULL; w = w->next)
            wake_later(k, w);
    unlock_and_wake(k);
}

void meshsim_k8s_bookmark(struct meshsim_k8s *k)
{
    pthread_mutex_lock(&k->mu);
    for (struct watcher *w = k->watchers; w != NULL; w = w->next) {
        if (w->end != END_NONE || !w->bookmarks)
            continue;
        queue_bookmark(k, w);
        wake_later(k, w);
    }
    unlock_and_wake(k);
}

void meshsim_k8s_fail_requests(struct meshsim_k8s *k, int status, int count)
{
    pthread_mutex_lock(&k->mu);
    k->fail_status = status;
    k->fail_count = count > 0 ? count : 0;
    pthread_mutex_unlock(&k->mu);
}

void meshsim_k8s_set_token(struct meshsim_k8s *k, const char *token)
{
    pthread_mutex_lock(&k->mu);
    mp_free(k->token);
    k->token = token ? mp_xstrdup(token) : NULL;
    pthread_mutex_unlock(&k->mu);
}

size_t meshsim_k8s_watch_count(struct meshsim_k8s *k)
{
    pthread_mutex_lock(&k->mu);
    size_t n = 0;
    for (struct watcher *w = k->watchers; w != NULL; w = w->next)
        n += w->end == END_NONE;
    pthread_mutex_unlock(&k->mu);
    return n;
}

void meshsim_k8s_requests(struct meshsim_k8s *k, meshsim_k8s_request_fn *fn, void *ctx)
{
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < k->log_n; i++) {
        const struct logent *l = &k->log[(k->log_head + i) % k->opts.request_log];
        struct meshsim_k8s_request r = {.seq = l->seq,
                                        .method = l->method,
                                        .path = l->path,
                                        .query = l->query,
                                        .authorization = l->auth,
                                        .watch = l->watch,
                                        .status = l->status};
        fn(ctx, &r);
    }
    pthread_mutex_unlock(&k->mu);
}

void meshsim_k8s_requests_clear(struct meshsim_k8s *k)
{
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < k->log_n; i++)
        logent_fini(&k->log[(k->log_head + i) % k->opts.request_log]);
    k->log_head = k->log_n = 0;
    pthread_mutex_unlock(&k->mu);
}

/* ---- HTTP ----------------------------------------------------------------------------------- */

struct qarg {
    const char *key, *value;
};
struct qargs {
    struct qarg v[32];
    size_t n;
};

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    struct qargs *q = cls;
    if (q->n < sizeof q->v / sizeof q->v[0])
        q->v[q->n++] = (struct qarg){key, value ? value : ""};
    return MHD_YES;
}

static int qarg_cmp(const void *a, const void *b)
{
    return strcmp(((const struct qarg *)a)->key, ((const struct qarg *)b)->key);
}

static const char *qget(const struct qargs *q, const char *key)
{
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->v[i].key, key) == 0)
            return q->v[i].value;
    return NULL;
}

/* Records a request (under k->mu). */
static void log_request(struct meshsim_k8s *k, const char *method, const char *path,
                        const struct qargs *q, const char *auth, bool watch, int status)
{
    struct mp_buf b;
    mp_buf_init(&b, 0);
    int rc = 0;
    for (size_t i = 0; i < q->n && rc == 0; i++)
        rc = mp_buf_appendf(&b, "%s%s=%s", i ? "&" : "", q->v[i].key, q->v[i].value);
    if (rc != 0 || b.data == NULL)
        rc = mp_buf_append(&b, "", 0);
    size_t cap = k->opts.request_log;
    if (k->log_n == cap) {
        logent_fini(&k->log[k->log_head]);
        k->log_head = (k->log_head + 1) % cap;
        k->log_n--;
    }
    struct logent *l = &k->log[(k->log_head + k->log_n) % cap];
    k->log_n++;
    l->seq = ++k->log_seq;
    l->method = mp_xstrdup(method);
    l->path = mp_xstrdup(path);
    l->query = b.data ? mp_buf_take(&b, NULL) : mp_xstrdup("");
    mp_buf_fini(&b);
    l->auth = mp_xstrdup(auth ? auth : "");
    l->watch = watch;
    l->status = status;
}

static enum MHD_Result send_body(struct MHD_Connection *c, unsigned status, char *body, size_t len,
                                 bool retry_after)
{
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(len, body, mp_free);
    if (r == NULL) {
        mp_free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (retry_after)
        MHD_add_response_header(r, "Retry-After", "1");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_str(struct MHD_Connection *c, unsigned status, const char *s)
{
    size_t n = strlen(s);
    return send_body(c, status, mp_xstrndup(s, n), n, false);
}

static const char *reason_of(int status)
{
    switch (status) {
    case 400:
        return "BadRequest";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "NotFound";
    case 405:
        return "MethodNotAllowed";
    case 410:
        return "Expired";
    case 429:
        return "TooManyRequests";
    case 504:
        return "Timeout";
    default:
        return "InternalError";
    }
}

static char *status_json(int status, const char *msg)
{
    struct json_object *o = json_object_new_object();
    set_str(o, "kind", "Status");
    set_str(o, "apiVersion", "v1");
    json_object_object_add(o, "metadata", json_object_new_object());
    set_str(o, "status", "Failure");
    set_str(o, "message", msg);
    set_str(o, "reason", reason_of(status));
    json_object_object_add(o, "code", json_object_new_int(status));
    char *s = mp_xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return s;
}

static enum MHD_Result send_status(struct MHD_Connection *c, int status, const char *msg)
{
    char *s = status_json(status, msg);
    return send_body(c, (unsigned)status, s, strlen(s), status == 429);
}

/* Parses a Go duration as client-go prints it ("7m31s", "30s", "1h0m0s"); -1 when bad. */
static int64_t parse_go_duration_s(const char *s)
{
    double total = 0;
    if (*s == '\0')
        return -1;
    while (*s != '\0') {
        char *end = NULL;
        double v = strtod(s, &end);
        if (end == s)
            return -1;
        s = end;
        if (strncmp(s, "ms", 2) == 0)
            total += v / 1000, s += 2;
        else if (*s == 'h')
            total += v * 3600, s++;
        else if (*s == 'm')
            total += v * 60, s++;
        else if (*s == 's')
            total += v, s++;
        else
            return -1;
    }
    return (int64_t)total;
}

struct route {
    enum meshsim_k8s_kind kind;
    const char *ns; /* slice of the url, NUL-ended copy in nsbuf */
    char nsbuf[256];
};

/* Maps a collection path to (kind, namespace). */
static bool route_parse(const char *url, struct route *r)
{
    for (int i = 0; i < MESHSIM_K8S_KIND_COUNT; i++) {
        const struct kind_info *ki = &kinds[i];
        size_t pl = strlen(ki->prefix);
        if (strncmp(url, ki->prefix, pl) != 0 || url[pl] != '/')
            continue;
        const char *rest = url + pl + 1;
        if (strcmp(rest, ki->resource) == 0) {
            r->kind = (enum meshsim_k8s_kind)i;
            r->ns = NULL;
            return true;
        }
        if (!ki->namespaced || strncmp(rest, "namespaces/", 11) != 0)
            continue;
        const char *ns = rest + 11;
        const char *slash = strchr(ns, '/');
        if (slash == NULL || slash == ns || (size_t)(slash - ns) >= sizeof r->nsbuf ||
            strcmp(slash + 1, ki->resource) != 0)
            continue;
        memcpy(r->nsbuf, ns, (size_t)(slash - ns));
        r->nsbuf[slash - ns] = '\0';
        r->kind = (enum meshsim_k8s_kind)i;
        r->ns = r->nsbuf;
        return true;
    }
    return false;
}

static bool item_matches(const struct objver *v, const char *ns, const struct selector *ls,
                         const struct selector *fs)
{
    if (ns != NULL && strcmp(ns, v->ns) != 0)
        return false;
    return selector_match(ls, v->j, false) && selector_match(fs, v->j, true);
}

/* LIST (under k->mu): builds the body or an error status. */
static int do_list(struct meshsim_k8s *k, const struct route *rt, const struct qargs *q,
                   const struct selector *ls, const struct selector *fs, struct mp_buf *body,
                   char *msg, size_t msgcap)
{
    const struct kind_info *ki = &kinds[rt->kind];
    const char *rv = qget(q, "resourceVersion");
    const char *lim = qget(q, "limit");
    const char *cont = qget(q, "continue");
    size_t limit = 0;
    if (lim != NULL && *lim != '\0') {
        char *end = NULL;
        long v = strtol(lim, &end, 10);
        if (*end != '\0' || v < 0) {
            snprintf(msg, msgcap, "invalid limit %s", lim);
            return 400;
        }
        limit = (size_t)v;
    }
    if (rv != NULL && strcmp(rv, "0") == 0 && (cont == NULL || *cont == '\0'))
        limit = 0; /* served from the "watch cache": unpaginated, as real servers do */

    struct snapshot *snap = NULL;
    size_t start = 0;
    struct snapshot tmp = {0};
    if (cont != NULL && *cont != '\0') {
        uint64_t id = 0;
        unsigned long long off = 0;
        if (sscanf(cont, "c%" SCNu64 "-%llu", &id, &off) != 2) {
            snprintf(msg, msgcap, "invalid continue token");
            return 400;
        }
        for (size_t i = 0; i < k->nsnaps; i++)
            if (k->snaps[i].id == id && k->snaps[i].kind == rt->kind)
                snap = &k->snaps[i];
        if (snap == NULL || off > snap->n) {
            snprintf(msg, msgcap,
                     "the provided continue parameter is too old to display a "
                     "consistent list result. You can start a new list without "
                     "the continue parameter.");
            return 410;
        }
        start = (size_t)off;
    } else {
        const struct store *s = &k->stores[rt->kind];
        tmp.rev = k->rev;
        tmp.kind = rt->kind;
        tmp.items = s->v;
        tmp.n = s->n;
        snap = &tmp;
    }

    int rc = mp_buf_appendf(body, "{\"kind\":\"%s\",\"apiVersion\":\"%s\",\"items\":[",
                            ki->list_kind, ki->api_version);
    size_t i = start, emitted = 0;
    for (; i < snap->n && rc == 0; i++) {
        const struct objver *v = snap->items[i];
        if (!item_matches(v, rt->ns, ls, fs))
            continue;
        if (limit != 0 && emitted == limit)
            break;
        if (emitted++ > 0)
            rc = mp_buf_append(body, ",", 1);
        if (rc == 0)
            rc = mp_buf_append(body, v->text, v->len);
    }
    /* more matching items after i? */
    bool more = false;
    for (size_t j = i; j < snap->n && limit != 0; j++)
        if (item_matches(snap->items[j], rt->ns, ls, fs)) {
            more = true;
            break;
        }
    char token[64] = "";
    if (more) {
        uint64_t id;
        if (snap == &tmp) {
            if (k->nsnaps == MAX_SNAPSHOTS) {
                snapshot_fini(&k->snaps[0]);
                memmove(k->snaps, k->snaps + 1, (MAX_SNAPSHOTS - 1) * sizeof k->snaps[0]);
                k->nsnaps--;
            }
            struct snapshot *ns = &k->snaps[k->nsnaps++];
            ns->id = id = ++k->snap_seq;
            ns->rev = tmp.rev;
            ns->kind = tmp.kind;
            ns->n = tmp.n;
            ns->items = mp_xmalloc((tmp.n ? tmp.n : 1) * sizeof *ns->items);
            for (size_t j = 0; j < tmp.n; j++)
                ns->items[j] = objver_ref(tmp.items[j]);
            snap = ns;
        } else {
            id = snap->id;
        }
        snprintf(token, sizeof token, "c%" PRIu64 "-%zu", id, i);
    }
    if (rc == 0)
        rc = mp_buf_appendf(body, "],\"metadata\":{\"resourceVersion\":\"%" PRIu64 "\"%s%s%s}}",
                            snap->rev, more ? ",\"continue\":\"" : "", token, more ? "\"" : "");
    if (rc != 0) {
        snprintf(msg, msgcap, "list too large");
        return 500;
    }
    return 200;
}

static enum MHD_Result start_watch(struct meshsim_k8s *k, struct MHD_Connection *c,
                                   const struct route *rt, const struct qargs *q,
                                   struct selector *ls, struct selector *fs, int *status)
{
    const char *rv = qget(q, "resourceVersion");
    uint64_t from = 0;
    bool initial = rv == NULL || *rv == '\0' || strcmp(rv, "0") == 0;
    if (!initial) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(rv, &end, 10);
        if (*end != '\0' || errno != 0) {
            *status = 400;
            pthread_mutex_unlock(&k->mu);
            return send_status(c, 400, "invalid resourceVersion");
        }
        from = v;
    }
    struct watcher *w = mp_xcalloc(1, sizeof *w);
    w->k = k;
    w->conn = c;
    w->kind = rt->kind;
    w->ns = rt->ns ? mp_xstrdup(rt->ns) : NULL;
    w->lsel = *ls;
    w->fsel = *fs;
    memset(ls, 0, sizeof *ls);
    memset(fs, 0, sizeof *fs);
    mp_buf_init(&w->out, (size_t)64 << 20);
    const char *abw = qget(q, "allowWatchBookmarks");
    w->bookmarks =
        k->opts.bookmarks && abw != NULL && (strcmp(abw, "true") == 0 || strcmp(abw, "1") == 0);
    int64_t now = mono_ms();
    const char *ts = qget(q, "timeoutSeconds");
    const char *td = qget(q, "timeout");
    int64_t tsec = -1;
    if (ts != NULL && *ts != '\0')
        tsec = strtoll(ts, NULL, 10);
    else if (td != NULL && *td != '\0')
        tsec = parse_go_duration_s(td);
    if (tsec > 0)
        w->deadline_ms = now + tsec * 1000;
    if (w->bookmarks && k->opts.bookmark_interval_ms > 0)
        w->next_bookmark_ms = now + k->opts.bookmark_interval_ms;

    if (!initial && from < k->floor) {
        char msg[128];
        snprintf(msg, sizeof msg, "too old resource version: %" PRIu64 " (%" PRIu64 ")", from,
                 k->floor);
        char *st = status_json(410, msg);
        queue_raw(w, "{\"type\":\"ERROR\",\"object\":", 25);
        queue_raw(w, st, strlen(st));
        queue_raw(w, "}\n", 2);
        mp_free(st);
        w->end = END_CLEAN;
    } else if (initial) {
        const struct store *s = &k->stores[rt->kind];
        for (size_t i = 0; i < s->n; i++)
            if (watcher_matches(w, s->v[i]))
                queue_object_event(w, "ADDED", s->v[i]);
    } else {
        for (size_t i = 0; i < k->ring_n; i++) {
            const struct event *e = &k->ring[(k->ring_head + i) % k->opts.history];
            if (e->rev > from)
                queue_event(w, e);
        }
    }
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024,
                                                               watch_reader, w, watch_free_cb);
    if (r == NULL) {
        pthread_mutex_unlock(&k->mu);
        watcher_free(w);
        *status = 500;
        return MHD_NO;
    }
    w->next = k->watchers;
    if (k->watchers != NULL)
        k->watchers->prevw = w;
    k->watchers = w;
    k->nwatchers++;
    *status = 200;
    pthread_mutex_unlock(&k->mu);
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-cache, private");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

/* Logs a 200 for a fixed document, drops k->mu and sends body. */
static enum MHD_Result reply_unlock(struct meshsim_k8s *k, struct MHD_Connection *c,
                                    const char *method, const char *url, const struct qargs *q,
                                    const char *auth, const char *body)
{
    log_request(k, method, url, q, auth, false, 200);
    pthread_mutex_unlock(&k->mu);
    return send_str(c, 200, body);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)con_cls;
    struct meshsim_k8s *k = cls;
    struct qargs q = {.n = 0};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, &q);
    qsort(q.v, q.n, sizeof q.v[0], qarg_cmp);
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    const char *wv = qget(&q, "watch");
    bool watch = wv != NULL && (strcmp(wv, "true") == 0 || strcmp(wv, "1") == 0);
    char msg[512];

    pthread_mutex_lock(&k->mu);
    int status = 200;
    if (k->token != NULL) {
        bool ok =
            auth != NULL && strncmp(auth, "Bearer ", 7) == 0 && strcmp(auth + 7, k->token) == 0;
        if (!ok) {
            log_request(k, method, url, &q, auth, watch, 401);
            pthread_mutex_unlock(&k->mu);
            return send_status(c, 401, "Unauthorized");
        }
    }
    if (strcmp(method, "GET") != 0) {
        log_request(k, method, url, &q, auth, watch, 405);
        pthread_mutex_unlock(&k->mu);
        return send_status(c, 405, "the fake API server only serves GET");
    }
    if (strcmp(url, "/version") == 0) {
        unsigned maj = 1, min = 31;
        if (sscanf(k->git_version, "v%u.%u", &maj, &min) != 2)
            maj = 1, min = 31;
        char body[256];
        snprintf(body, sizeof body,
                 "{\"major\":\"%u\",\"minor\":\"%u\",\"gitVersion\":\"%s\","
                 "\"platform\":\"linux/amd64\"}",
                 maj, min, k->git_version);
        return reply_unlock(k, c, method, url, &q, auth, body);
    }
    if (strcmp(url, "/api") == 0) {
        return reply_unlock(k, c, method, url, &q, auth,
                            "{\"kind\":\"APIVersions\",\"versions\":[\"v1\"],"
                            "\"serverAddressByClientCIDRs\":[]}");
    }
    if (strcmp(url, "/apis") == 0) {
        return reply_unlock(
            k, c, method, url, &q, auth,
            "{\"kind\":\"APIGroupList\",\"apiVersion\":\"v1\",\"groups\":[{\"name\":"
            "\"discovery.k8s.io\",\"versions\":[{\"groupVersion\":\"discovery.k8s.io/v1\","
            "\"version\":\"v1\"}],\"preferredVersion\":{\"groupVersion\":"
            "\"discovery.k8s.io/v1\",\"version\":\"v1\"}},{\"name\":\"networking.k8s.io\","
            "\"versions\":[{\"groupVersion\":\"networking.k8s.io/v1\",\"version\":\"v1\"}],"
            "\"preferredVersion\":{\"groupVersion\":\"networking.k8s.io/v1\","
            "\"version\":\"v1\"}}]}");
    }
    struct route rt;
    if (!route_parse(url, &rt)) {
        log_request(k, method, url, &q, auth, watch, 404);
        pthread_mutex_unlock(&k->mu);
        snprintf(msg, sizeof msg, "the server could not find the requested resource (%s)", url);
        return send_status(c, 404, msg);
    }
    if (k->fail_count > 0) {
        k->fail_count--;
        int st = k->fail_status;
        log_request(k, method, url, &q, auth, watch, st);
        pthread_mutex_unlock(&k->mu);
        snprintf(msg, sizeof msg, "injected failure %d", st);
        return send_status(c, st, msg);
    }
    struct selector ls, fs;
    if (!selector_parse(qget(&q, "labelSelector"), false, &ls)) {
        log_request(k, method, url, &q, auth, watch, 400);
        pthread_mutex_unlock(&k->mu);
        return send_status(c, 400, "unable to parse requirement: invalid label selector");
    }
    if (!selector_parse(qget(&q, "fieldSelector"), true, &fs)) {
        selector_fini(&ls);
        log_request(k, method, url, &q, auth, watch, 400);
        pthread_mutex_unlock(&k->mu);
        return send_status(c, 400, "invalid field selector");
    }
    enum MHD_Result ret;
    if (watch) {
        log_request(k, method, url, &q, auth, true, 200);
        size_t idx = (k->log_head + k->log_n - 1) % k->opts.request_log;
        ret = start_watch(k, c, &rt, &q, &ls, &fs, &status); /* unlocks */
        pthread_mutex_lock(&k->mu);
        if (k->log_n > 0 && k->log[idx].seq == k->log_seq)
            k->log[idx].status = status;
        pthread_mutex_unlock(&k->mu);
    } else {
        struct mp_buf body;
        mp_buf_init(&body, 0);
        status = do_list(k, &rt, &q, &ls, &fs, &body, msg, sizeof msg);
        log_request(k, method, url, &q, auth, false, status);
        pthread_mutex_unlock(&k->mu);
        if (status == 200) {
            size_t len = 0;
            char *b = mp_buf_take(&body, &len);
            ret = send_body(c, 200, b, len, false);
        } else {
            ret = send_status(c, status, msg);
        }
        mp_buf_fini(&body);
    }
    selector_fini(&ls);
    selector_fini(&fs);
    return ret;
}
