/* SPDX-License-Identifier: Apache-2.0 */
/* scraper/scraper.h: the scraper module's public contract. For now: the scrape-body parsers
 * (Prometheus text 0.0.4 and OpenMetrics 1.0, spec protocols.md 1.3 / 1.4), content
 * negotiation (1.1 / 1.2), the family/type helpers that metadata needs, Kubernetes objects to
 * target groups (kubernetes-sd.md 2), and relabeling with the discovered-target-to-URL step
 * (3, 2.1). Discovery's watch and the scrape loop will join this header later.
 *
 * Parser contract: zero-copy, zero-allocation pull parser. The caller owns the body
 * [body, body + len) (not NUL-terminated) and keeps it alive while entries are used: every
 * struct mp_str handed out is a slice of it. Nothing outside the body is ever read.
 * Thread safety: a struct scrape_parser belongs to one thread; different parsers over the
 * same (read-only) body may run concurrently. All other functions are pure and thread-safe. */
#ifndef SCRAPER_SCRAPER_H
#define SCRAPER_SCRAPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/str.h"

/* ---- content negotiation (protocols.md 1.1, 1.2) ------------------------------------------ */

enum scrape_format {
    SCRAPE_FORMAT_TEXT = 0,    /* Prometheus text 0.0.4: the default for anything unknown */
    SCRAPE_FORMAT_OPENMETRICS, /* application/openmetrics-text, any version */
    SCRAPE_FORMAT_PROTOBUF,    /* application/vnd.google.protobuf; no parser in this module yet */
};

/* Parser for a response Content-Type header value (ct may be NULL: header absent). As
 * Prometheus 2.55: the media type is lowercased and trimmed, parameters (version, charset)
 * are ignored for the choice, and a missing or unparsable header (Go mime.ParseMediaType
 * error, including malformed parameters) selects the text parser. */
enum scrape_format scrape_format_from_content_type(const char *ct, size_t len);

enum scrape_protocol {
    SCRAPE_PROTO_PROMETHEUS_PROTO =
        0, /* application/vnd.google.protobuf;proto=...;encoding=delimited */
    SCRAPE_PROTO_OPENMETRICS_1_0_0, /* application/openmetrics-text;version=1.0.0 */
    SCRAPE_PROTO_OPENMETRICS_0_0_1, /* application/openmetrics-text;version=0.0.1 */
    SCRAPE_PROTO_PROMETHEUS_TEXT,   /* text/plain;version=0.0.4 */
};
#define SCRAPE_PROTO_COUNT 4

/* The Accept header Prometheus 2.55.1 sends (byte-exact): the first protocol gets q=0.5,
 * each next one 0.1 less, then "*" "/" "*" with the next lower weight; utf8_names adds
 * ";escaping=allow-utf-8" to each protocol entry. Writes a NUL-terminated string into buf
 * and returns its length; MP_EINVAL for n == 0, n > SCRAPE_PROTO_COUNT or an unknown
 * protocol, MP_ELIMIT when cap is too small (512 bytes always suffice). */
MP_NODISCARD int scrape_accept_header(const enum scrape_protocol *protos, size_t n, bool utf8_names,
                                      char *buf, size_t cap);
/* The 2.55.1 default (OpenMetrics 1.0.0, OpenMetrics 0.0.1, text 0.0.4), as a constant. */
#define SCRAPE_ACCEPT_DEFAULT                                                                      \
    "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;"               \
    "version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"

/* ---- metric types and families -------------------------------------------------------------- */

enum scrape_metric_type {
    SCRAPE_TYPE_UNKNOWN = 0, /* also text "untyped" and no TYPE line */
    SCRAPE_TYPE_COUNTER,
    SCRAPE_TYPE_GAUGE,
    SCRAPE_TYPE_HISTOGRAM,
    SCRAPE_TYPE_GAUGEHISTOGRAM, /* OpenMetrics only */
    SCRAPE_TYPE_SUMMARY,
    SCRAPE_TYPE_INFO,     /* OpenMetrics only */
    SCRAPE_TYPE_STATESET, /* OpenMetrics only */
};

/* Prometheus's name of a type, as /api/v1/metadata reports it ("counter", ..., "unknown"). */
const char *scrape_metric_type_name(enum scrape_metric_type t);

/* Whether sample name `metric` belongs to family `family` of type t (Prometheus
 * isSeriesPartOfFamily): counter family == metric without "_total" (either side may carry
 * it); histogram: _bucket, _sum, _count; gaugehistogram: _bucket, _gsum, _gcount; summary:
 * _sum, _count; info: _info; every type also the bare name. With created set (OpenMetrics)
 * counter, histogram and summary families also own <family>_created. */
bool scrape_series_in_family(struct mp_str metric, struct mp_str family, enum scrape_metric_type t,
                             bool created);

/* ---- the parser ----------------------------------------------------------------------------- */

enum scrape_entry_kind {
    SCRAPE_ENTRY_SERIES = 1, /* a sample line */
    SCRAPE_ENTRY_HELP,
    SCRAPE_ENTRY_TYPE,
    SCRAPE_ENTRY_UNIT,    /* OpenMetrics only; text treats "# UNIT" as a comment */
    SCRAPE_ENTRY_COMMENT, /* text only; OpenMetrics rejects other "#" lines */
};

struct scrape_label {
    struct mp_str name;
    struct mp_str value; /* raw, between the quotes; empty value == label absent */
    bool escaped;        /* value contains a backslash: decode with scrape_unescape() */
};

/* Filled by scrape_parser_next. The caller provides the label array (label, label_cap);
 * everything else is output. Slices borrow the body. */
struct scrape_entry {
    enum scrape_entry_kind kind;
    int line;                   /* 1-based line of the entry */
    struct mp_str name;         /* SERIES: metric name; HELP/TYPE/UNIT: the family name */
    struct mp_str series;       /* SERIES: name and label set exactly as in the body
                                 * ("foo{a=\"b\"}"), the scrape cache key */
    struct scrape_label *label; /* caller-owned array of label_cap entries (may be NULL if 0) */
    size_t label_cap;
    size_t nlabel; /* SERIES: labels in body order (not sorted, not de-duplicated) */
    double value;  /* SERIES; any NaN comes out as 0x7ff8000000000001 */
    bool has_ts;
    int64_t ts_ms; /* text: integer ms; OpenMetrics: int64(seconds * 1000) */
    /* SERIES, metadata: the family named by the last HELP/TYPE/UNIT line if this sample
     * belongs to it (scrape_series_in_family), else an empty family and UNKNOWN. */
    struct mp_str family;
    enum scrape_metric_type type; /* TYPE: the declared type; SERIES: see family */
    /* OpenMetrics: the sample is <family>_created of a counter/histogram/summary family
     * (the current TYPE), which Prometheus 2.55 ingests as an ordinary series unless
     * created-timestamp-zero-ingestion is on (SCRAPE_PARSE_SKIP_CREATED). */
    bool is_created;
    /* HELP: raw help text (escaped says a backslash is present); UNIT: the unit; COMMENT:
     * the whole line from '#'; TYPE: the type word. */
    struct mp_str text;
    bool text_escaped;
    /* OpenMetrics exemplar after the sample, if any: raw "{...}" label set (split it with
     * scrape_exemplar_labels), value, and optional timestamp (ms, as for samples). */
    bool has_exemplar;
    struct mp_str exemplar;
    double exemplar_value;
    bool exemplar_has_ts;
    int64_t exemplar_ts_ms;
};

enum {
    /* OpenMetrics: do not return _created samples of counter/histogram/summary families
     * (Prometheus 2.55 with created-timestamp-zero-ingestion); find them with
     * scrape_parser_created_ms instead. */
    SCRAPE_PARSE_SKIP_CREATED = 1u << 0,
};

/* Caller-embedded parser state; treat the fields as private. */
struct scrape_parser {
    const char *begin, *cur, *end;
    int line;
    enum scrape_format format;
    unsigned flags;
    int status;                        /* 0 while running, then MP_EEOF or the error code, sticky */
    struct mp_str meta_family;         /* name of the last HELP/TYPE/UNIT line */
    enum scrape_metric_type meta_type; /* type of the last TYPE line (kept across families,
                                        * as Prometheus's parser keeps it) */
    enum scrape_metric_type family_type; /* type declared for meta_family, else UNKNOWN */
};

/* format must be TEXT or OPENMETRICS (PROTOBUF falls back to TEXT). */
void scrape_parser_init(struct scrape_parser *p, enum scrape_format format, const char *body,
                        size_t len, unsigned flags);

/* Next entry. 0: *e filled. MP_EEOF: end of body (text: end of input or a NUL byte at a
 * line start, as Prometheus's lexer; OpenMetrics: the "# EOF" line, nothing after it).
 * MP_EPARSE: malformed body; err says "line N: <Prometheus's message>". MP_ELIMIT: more
 * labels on a line than e->label_cap. After an error or EOF every call returns the same
 * code again. Allocates nothing; reads only inside the body. */
MP_NODISCARD int scrape_parser_next(struct scrape_parser *p, struct scrape_entry *e,
                                    struct mp_err *err);

/* The scrape cache's fast path for a line seen before (text format only). peek: when the
 * next line is a sample whose series text is exactly its first len bytes (after leading
 * blanks), *out is that slice and true is returned; the bytes are not checked beyond the
 * boundary, so the caller must confirm them (by hash) to be a series text it parsed before.
 * next_known then parses that line as scrape_parser_next would, but takes the series text
 * from series (the slice peek returned) without parsing its labels: e->nlabel is 0. */
bool scrape_parser_peek_series(const struct scrape_parser *p, size_t len, struct mp_str *out);
MP_NODISCARD int scrape_parser_next_known(struct scrape_parser *p, struct mp_str series,
                                          struct scrape_entry *e, struct mp_err *err);

/* OpenMetrics created timestamp of the SERIES entry e just returned by p, as Prometheus
 * 2.55's CreatedTimestamp: only for counter/histogram/summary (the current TYPE); peeks
 * ahead over the following sample lines (p is not advanced) for the first <family>_created
 * sample whose labels, ignoring le (histogram) or quantile (summary), equal e's; stops at
 * the first non-sample line, parse error, or _created sample of another series.
 * Returns true and sets *ct_ms = int64(value * 1000) when found. Allocates nothing. */
bool scrape_parser_created_ms(const struct scrape_parser *p, const struct scrape_entry *e,
                              int64_t *ct_ms);

/* Decodes an escaped label value or HELP text into buf (no NUL added) and returns the
 * decoded length, which is never more than raw.len (so cap >= raw.len always suffices;
 * with a smaller cap the output is truncated to cap bytes). Label values (both formats)
 * and OpenMetrics HELP decode \\ \" \n; text 0.0.4 HELP decodes only \\ and \n. Any other
 * backslash pair is kept verbatim. */
size_t scrape_unescape(struct mp_str raw, bool text_help, char *buf, size_t cap);

/* Splits an exemplar label set (scrape_entry.exemplar) into out[0..cap). Returns the number
 * of labels (which may exceed cap: only the first cap are stored). */
size_t scrape_exemplar_labels(struct mp_str exemplar, struct scrape_label *out, size_t cap);

/* Index of the first label whose name repeats an earlier one, or -1. Prometheus fails the
 * scrape with `label name "<name>" is not unique`; the scrape loop checks this on a scrape
 * cache miss (O(n^2) in the label count, so not on every line). */
int scrape_entry_duplicate_label(const struct scrape_entry *e);

/* ---- Kubernetes service discovery: API objects -> target groups (kubernetes-sd.md 2) ------ *
 *
 * The pure half of kubernetes_sd_configs: JSON objects as the API server returns them (a list
 * item or a watch event's object) become target groups with the __meta_kubernetes_* labels of
 * Prometheus 2.55 for the roles pod, endpoints, endpointslice, service, node and ingress
 * (attach_metadata.node through the lookup's node cache). Labels whose value would be empty are
 * left out, as Prometheus's label builder leaves them out of the discovered labels (spec 6.1);
 * their *present_ twins stay. Where two label or annotation keys sanitise to the same name, the
 * later key in the JSON wins (Prometheus: Go map order). The seen-pod order for the endpoints
 * roles' extra targets is first appearance (Prometheus: Go map order).
 *
 * Objects are parsed once into a struct scrape_k8s_object (immutable after parsing; one may
 * be read by several threads) so that a watcher can keep informer-like stores and rebuild a
 * group when a dependency changes: an Endpoints object depends on the Service with its own
 * namespace/name and on the pods its addresses' targetRefs name; an EndpointSlice on the
 * Service named by its kubernetes.io/service-name label and on its endpoints' pods. */

enum scrape_k8s_role {
    SCRAPE_K8S_POD = 0,
    SCRAPE_K8S_ENDPOINTS,
    SCRAPE_K8S_ENDPOINTSLICE,
    SCRAPE_K8S_SERVICE,
    SCRAPE_K8S_NODE,
    SCRAPE_K8S_INGRESS, /* networking.k8s.io/v1 Ingress */
};

struct mp_labels;
struct scrape_k8s_object; /* opaque */

/* One Kubernetes object's targets. Each target's full label set before relabelling is
 * group_labels merged with targets[i] (a target label wins). No targets: the object has
 * none (a pod without IP) or was deleted; the group then removes earlier targets of source.
 * Owned by whoever called the builder; scrape_target_group_fini releases everything. */
struct scrape_target_group {
    char *source;                   /* "pod/<ns>/<name>", "endpoints/<ns>/<name>",
                                       "endpointslice/<ns>/<name>", "svc/<ns>/<name>",
                                       "node/<name>", "ingress/<ns>/<name>" */
    struct mp_labels *group_labels; /* never NULL after a successful build */
    struct mp_labels **targets;
    size_t ntargets;
};

/* Empties g (zeroed struct or a built group); g may be NULL. Safe to call twice. */
void scrape_target_group_fini(struct scrape_target_group *g);

/* Parses and checks one object of the given role: a JSON object with metadata.name, and
 * every field the role reads of the type the API defines (a string, an int32, a bool, an
 * object or an array; absent or null = Go's zero value). MP_EPARSE (err names the byte or
 * the field), MP_ENOMEM. The caller owns *out. */
MP_NODISCARD int scrape_k8s_object_parse(enum scrape_k8s_role role, const char *json,
                                         size_t len, struct scrape_k8s_object **out,
                                         struct mp_err *err);
void scrape_k8s_object_destroy(struct scrape_k8s_object *o); /* NULL is a no-op */
/* Borrowed until destroy; "" when absent (nodes have no namespace). */
enum scrape_k8s_role scrape_k8s_object_role(const struct scrape_k8s_object *o);
const char *scrape_k8s_object_namespace(const struct scrape_k8s_object *o);
const char *scrape_k8s_object_name(const struct scrape_k8s_object *o);
/* The kubernetes.io/service-name label of an EndpointSlice (NULL if absent or not a slice). */
const char *scrape_k8s_endpointslice_service_name(const struct scrape_k8s_object *o);
/* Calls fn for each address targetRef of kind Pod of an Endpoints or EndpointSlice object
 * (repeats included), in document order; the strings are borrowed from o. */
void scrape_k8s_object_pod_refs(const struct scrape_k8s_object *o,
                                void (*fn)(void *ctx, const char *ns, const char *name),
                                void *ctx);
/* Calls fn (ns "") for each node name whose metadata a build of o attaches with
 * attach_metadata.node: a pod's spec.nodeName; an Endpoints address's nodeName, else its
 * targetRef of kind Node; an EndpointSlice endpoint's targetRef of kind Node, else its
 * nodeName (repeats included; empty names skipped). Other roles: never called. */
void scrape_k8s_object_node_refs(const struct scrape_k8s_object *o,
                                 void (*fn)(void *ctx, const char *ns, const char *name),
                                 void *ctx);

/* The informer caches a build reads. Each callback returns the cached object of that
 * namespace/name (role POD / SERVICE / NODE), or NULL; the object is borrowed for the
 * duration of the build call. A NULL struct or NULL callback means an empty cache. node is
 * attach_metadata.node: when it is set, pod, endpoints and endpointslice builds add the
 * node's __meta_kubernetes_node_name and label/annotation families (not its addresses or
 * provider id) for a node it returns; NULL node = attach_metadata off. */
struct scrape_k8s_lookup {
    const struct scrape_k8s_object *(*pod)(void *ctx, const char *ns, const char *name);
    const struct scrape_k8s_object *(*service)(void *ctx, const char *ns, const char *name);
    void *ctx;
    const struct scrape_k8s_object *(*node)(void *ctx, const char *name);
};

/* Builds o's group into *out (overwritten, not finied first). lookup is used only by the
 * pod (node only), endpoints and endpointslice roles. MP_ENOTFOUND for a node without any usable
 * address: Prometheus sends no group at all then, so the caller keeps the previous one (*out stays
 * empty; err says why). Otherwise only MP_ENOMEM (o was checked when parsed); on failure
 * *out is empty. Several threads may build from the same objects at once (each with its
 * own *out); the lookup callbacks must then be safe to call concurrently. */
MP_NODISCARD int scrape_k8s_build(const struct scrape_k8s_object *o,
                                  const struct scrape_k8s_lookup *lookup,
                                  struct scrape_target_group *out, struct mp_err *err);
/* The group for a deleted object: its source and no targets. */
MP_NODISCARD int scrape_k8s_deleted_group(const struct scrape_k8s_object *o,
                                          struct scrape_target_group *out,
                                          struct mp_err *err);

/* One-shot forms: parse json as the role's object, build, free the parsed object. */
MP_NODISCARD int scrape_k8s_pod_targets(const char *json, size_t len,
                                        struct scrape_target_group *out, struct mp_err *err);
MP_NODISCARD int scrape_k8s_endpoints_targets(const char *json, size_t len,
                                              const struct scrape_k8s_lookup *lookup,
                                              struct scrape_target_group *out,
                                              struct mp_err *err);
MP_NODISCARD int scrape_k8s_endpointslice_targets(const char *json, size_t len,
                                                  const struct scrape_k8s_lookup *lookup,
                                                  struct scrape_target_group *out,
                                                  struct mp_err *err);
MP_NODISCARD int scrape_k8s_service_targets(const char *json, size_t len,
                                            struct scrape_target_group *out,
                                            struct mp_err *err);
MP_NODISCARD int scrape_k8s_node_targets(const char *json, size_t len,
                                         struct scrape_target_group *out, struct mp_err *err);
/* Ingress (Prometheus's ingress.go): group labels namespace, ingress_name, the label and
 * annotation families, ingress_class_name (spec.ingressClassName); one target per rule per
 * path (a rule without http: one path "/"; an empty path is "/"), __address__ = the rule
 * host as written (wildcards too), ingress_scheme https when a spec.tls[].hosts entry equals
 * the host or is a "*.rest" pattern matching it label for label, ingress_host, ingress_path. */
MP_NODISCARD int scrape_k8s_ingress_targets(const char *json, size_t len,
                                            struct scrape_target_group *out, struct mp_err *err);
/* pod targets with a node cache (attach_metadata.node). */
MP_NODISCARD int scrape_k8s_pod_targets_lookup(const char *json, size_t len,
                                               const struct scrape_k8s_lookup *lookup,
                                               struct scrape_target_group *out, struct mp_err *err);

/* ---- relabeling (protocols.md 3) and target labels (2.1) ----------------------------------
 * Rules come from configs/ (struct cfg_relabels: compiled, anchored regexes, defaults filled
 * in, validated as Prometheus's relabel.Config.Validate). Thread safety: the rules are
 * immutable and may be shared; a builder belongs to the calling thread. Nothing is kept
 * between calls. */

struct cfg_relabels;
struct cfg_scrape_config;
struct mp_labels;
struct mp_labels_builder;

/* Applies the rules in order to b, as Prometheus relabel.ProcessBuilder: *keep = false when
 * a keep/drop/keepequal/dropequal rule rejects the set (b then holds the labels up to that
 * rule). rules may be NULL (no rules). Scratch text is allocated per call only when a rule
 * needs it (joined values, expansions). 0, or MP_ENOMEM / MP_ELIMIT (a value over 64 MiB) /
 * MP_EINVAL (a rule the loader would have rejected, e.g. hashmod without modulus); on error
 * b may hold the effect of the earlier rules. */
MP_NODISCARD int scrape_relabel_process(const struct cfg_relabels *rules,
                                        struct mp_labels_builder *b, bool *keep);
/* Relabels an immutable set: *out is a new reference (the caller releases it) when *keep,
 * NULL when dropped. Status as scrape_relabel_process. */
MP_NODISCARD int scrape_relabel_labels(const struct cfg_relabels *rules, const struct mp_labels *in,
                                       struct mp_labels **out, bool *keep);

/* What scrape_target_labels hands out besides the target labels. Owned by the caller: free
 * with scrape_target_url_fini. */
struct scrape_target_url {
    char *str; /* Target.URL().String(): scheme://address/path?query, NUL-ended */
    size_t len;
    int64_t interval_ms;    /* parsed from __scrape_interval__ / __scrape_timeout__ after */
    int64_t timeout_ms;     /* relabeling, so a rule may change them per target */
    struct mp_labels *full; /* the whole set after step 9, __ labels included (for the
                             * target's identity hash) */
};
void scrape_target_url_fini(struct scrape_target_url *u); /* NULL is a no-op */

/* scrape_target_labels result: relabeling dropped the target (not an error). */
#define SCRAPE_TARGET_DROPPED 1

/* Prometheus PopulateLabels plus Target.URL() (protocols.md 2.1), for one discovered label
 * set (target labels merged over the group's): defaults job, __scrape_interval__,
 * __scrape_timeout__, __metrics_path__, __scheme__ where absent or empty; __param_<k> for
 * each configured param with a value; relabel_configs; then the address checks (":80"/":443"
 * appended to a port-less address by scheme, as 2.x does by default), interval and timeout
 * parsing, deletion of __meta_* labels, instance = address when unset, UTF-8 check of values.
 * Returns 0 with *final = the target labels attached to samples (no label starting with
 * "__"; a new reference) and *url_out filled; SCRAPE_TARGET_DROPPED with *final NULL and
 * *url_out zeroed when a rule dropped it; MP_EINVAL with Prometheus's message in err when the
 * target is rejected ("no address", `invalid scheme: "http"` (upstream names the configured
 * scheme, not the relabeled one), `"a/b" is not a valid hostname`,
 * `error parsing scrape interval: ...`, `scrape interval cannot be 0`,
 * `scrape timeout cannot be greater than scrape interval ("20s" > "10s")`,
 * `invalid label value for "x": "\xff"`); MP_ENOMEM / MP_ELIMIT. Prometheus prefixes
 * "instance N in group G: " when it logs these; the caller knows N and G. Creates and frees
 * one builder per call (target churn is an SD event, not a per-sample path). */
MP_NODISCARD int scrape_target_labels(const struct mp_labels *discovered,
                                      const struct cfg_scrape_config *sc, struct mp_labels **final,
                                      struct scrape_target_url *url_out, struct mp_err *err);
/* The set before relabeling (discovered plus the step-1/2 defaults): what /api/v1/targets
 * shows as discoveredLabels, also for dropped targets. *out is a new reference. */
MP_NODISCARD int scrape_target_defaults(const struct mp_labels *discovered,
                                        const struct cfg_scrape_config *sc, struct mp_labels **out,
                                        struct mp_err *err);

/* ---- service discovery (discovery.c, file_sd.c, k8s_watch.c) --------------------------------
 * One discovery manager runs the providers of every scrape config (static_configs,
 * file_sd_configs, kubernetes_sd_configs) on its own thread(s) and hands each job's complete
 * current set of target groups to a callback whenever it changed: the first set as soon as
 * every provider of the job has reported once (or after 5 s at most), later ones coalesced to
 * at most one per update interval (Prometheus's discovery manager: 5 s). A group's source
 * tells which provider instance produced it; Prometheus's forms: static "0", "1", ... per
 * static_configs entry; file SD "<path>:<index>"; kubernetes as in scrape_target_group.
 * Groups without targets are dropped from the set handed out.
 * Thread safety: apply and destroy from one controlling thread (main); the callback runs on a
 * discovery thread, never concurrently with itself, and must not call back into discovery. */

struct cfg_config;
struct mp_metrics_registry;
struct scrape_discovery; /* opaque */

/* groups[0..n) borrowed for the call. */
typedef void scrape_discovery_fn(void *ctx, const char *job,
                                 const struct scrape_target_group *groups, size_t n);

struct scrape_discovery_opts {
    scrape_discovery_fn *on_update;
    void *ctx;
    int64_t update_interval_ms; /* default 5 s */
    /* In-cluster files (token, ca.crt, namespace); default
     * "/var/run/secrets/kubernetes.io/serviceaccount". Tests point it elsewhere. */
    const char *service_account_dir;
    struct mp_metrics_registry *metrics; /* prometheus_sd_* self-metrics; NULL: none */
};
void scrape_discovery_opts_init(struct scrape_discovery_opts *o);

MP_NODISCARD int scrape_discovery_create(const struct scrape_discovery_opts *o,
                                         struct scrape_discovery **out, struct mp_err *err);
/* Starts, keeps or stops providers so that they match cfg's scrape configs (a provider whose
 * job name and SD config are unchanged keeps running, with its state). A job that went away
 * gets one last callback with n == 0. cfg is borrowed until the next apply or destroy.
 * MP_EINVAL (err says which config) when a provider cannot be set up (unreadable in-cluster
 * token, bad kubeconfig); the other jobs are applied anyway. */
MP_NODISCARD int scrape_discovery_apply(struct scrape_discovery *d, const struct cfg_config *cfg,
                                        struct mp_err *err);
void scrape_discovery_destroy(struct scrape_discovery *d); /* stops threads; NULL is a no-op */

/* ---- the scrape manager (manager.c, loop.c, cache.c) ----------------------------------------
 * Owns one scrape pool per scrape config and one loop per target, driven by libcurl's multi
 * interface on a small fixed set of threads. scrape_manager_sync (the discovery callback)
 * relabels each job's groups into targets and diffs them with the running ones by target hash
 * (final label set + URL): unchanged targets keep their loop, cache and state; removed ones
 * stop and get stale markers for their series; new ones start at their offset in the interval.
 * Thread safety: every function may be called from any thread; sync and apply_config
 * serialise on the manager; targets and metadata take snapshots under short locks. */

struct tsdb;
struct scrape_manager; /* opaque */

struct scrape_manager_opts {
    struct tsdb *db;                     /* samples go here (borrowed; outlives the manager) */
    struct mp_metrics_registry *metrics; /* prometheus_target_* self-metrics; NULL: none */
    int threads;                         /* event-loop threads; default min(cores, 4) */
    const char *external_url;            /* globalUrl of /api/v1/targets; NULL: none */
};
void scrape_manager_opts_init(struct scrape_manager_opts *o);

MP_NODISCARD int scrape_manager_create(const struct scrape_manager_opts *o,
                                       struct scrape_manager **out, struct mp_err *err);
/* Installs cfg's scrape configs: pools of removed jobs stop (their series get stale markers),
 * changed pools restart their loops with the new settings, unchanged pools keep running. cfg
 * is borrowed until the next apply or destroy. */
MP_NODISCARD int scrape_manager_apply_config(struct scrape_manager *m, const struct cfg_config *cfg,
                                             struct mp_err *err);
/* The discovery callback (matches scrape_discovery_fn with m as ctx). */
void scrape_manager_sync(void *m, const char *job, const struct scrape_target_group *groups,
                         size_t n);
/* Stops every loop (no stale markers, as Prometheus on shutdown) and frees. NULL: no-op. */
void scrape_manager_destroy(struct scrape_manager *m);

enum scrape_health { SCRAPE_HEALTH_UNKNOWN, SCRAPE_HEALTH_UP, SCRAPE_HEALTH_DOWN };

/* What /api/v1/targets shows of one target (protocols.md 4.6). Borrowed for the callback. */
struct scrape_target_info {
    const char *pool;                   /* scrapePool: the job name */
    const struct mp_labels *discovered; /* discoveredLabels (scrape_target_defaults) */
    const struct mp_labels *labels;     /* labels; NULL for a dropped target */
    const char *url;                    /* scrapeUrl; NULL for a dropped target */
    enum scrape_health health;
    const char *last_error; /* "" when the last scrape succeeded */
    int64_t last_scrape_ms; /* 0: never scraped */
    double last_duration_s;
    int64_t interval_ms, timeout_ms;
};
typedef void scrape_target_fn(void *ctx, const struct scrape_target_info *t);
/* Calls fn for each active target (pool order, then label order) and, with dropped, each
 * dropped target (at most keep_dropped_targets per pool when that is set). */
void scrape_manager_targets(struct scrape_manager *m, bool active, bool dropped,
                            scrape_target_fn *fn, void *ctx);

/* One metric family's metadata as a target last exposed it (/api/v1/metadata,
 * /api/v1/targets/metadata). Borrowed for the callback. */
struct scrape_metadata_info {
    const char *pool;
    const struct mp_labels *target; /* the target's final labels */
    struct mp_str metric;           /* family name */
    enum scrape_metric_type type;
    struct mp_str help;             /* unescaped */
    struct mp_str unit;
};
typedef void scrape_metadata_fn(void *ctx, const struct scrape_metadata_info *md);
void scrape_manager_metadata(struct scrape_manager *m, scrape_metadata_fn *fn, void *ctx);

#endif
