/* SPDX-License-Identifier: Apache-2.0 */
/* bench/promql_diff.c: meshprom against Prometheus on the same data, over the HTTP API.
 *
 *   promql_diff [--mode diff|bench|floor] [--prometheus BIN] [--meshprom BIN] [--namespaces N]
 *               [--deployments M] [--replicas R] [--peers P] [--minutes T] [--runs K]
 *               [--load remote-write|wal|block] [--data DIR] [--range-minutes M] [--step S]
 *               [--baseline BIN] [--workdir DIR] [--keep] [--verbose]
 *
 * A simulated Linkerd mesh (meshsim/meshsim.h (meshsim_gen); default 1 namespace x 5
 * deployments x 2 replicas, 60 minutes at 10 s) is generated once and loaded into both servers
 * (free 127.0.0.1 ports, --web.enable-remote-write-receiver):
 *   --load remote-write (default): both start empty and every scrape is sent to both as one
 *          remote-write request.
 *   --load wal: the mesh is written once with meshprom's tsdb into --data DIR (default
 *          <workdir>/mesh; reused when its stamp matches the options) and both servers start on
 *          a hard-linked copy of its WAL, which they replay into their heads
 *          (bench/load_1m.h).
 *   --load block: the same, but both servers start on a hard-linked copy of one block (meshprom's
 *          snapshot of that head in Prometheus's format) and serve the data from it: no replay.
 *          1M series x 1 h: --namespaces 54 --deployments 10 --replicas 3 (1,003,078 series).
 * Then:
 *   diff:  a broad query set (the Linkerd dashboard's queries of linkerd-workload.md 3.2 and
 *          the main PromQL features) runs as instant queries at several times and as range
 *          queries; the JSON answers must agree: status and errorType, resultType, the same
 *          label sets (in order only for sort()/sort_desc()), the same timestamps, values
 *          within 1e-9 relative (NaN = NaN). For sort/topk/bottomk an answer that differs
 *          only in which of equally valued series comes first or is kept counts as
 *          tie_order_only, not as a mismatch (tie order follows storage series order). One JSON
 * line per mismatch, a summary line, exit 1 on any mismatch, 77 (ctest's skip) without a Prometheus
 * binary. bench: the servers' RSS; a check that both hold the same data (series and samples per
 *          metric name, sums of the last values, which must agree before anything is timed);
 *          then each dashboard query as an instant query at the end of the data and as a range
 *          query over its last --range-minutes (default 15) at --step seconds (default 30),
 *          --runs times on each server, interleaved; one JSON line per query and mode with
 *          median and p99 (nearest rank: with few runs, the slowest) of each and the ratio
 *          meshprom/prometheus (issue 4's target: at most 0.33 on every query); a summary
 *          with the worst ratio; RSS again.
 *   floor: after the same check, the fixed cost of a request: vector(1), a one-series
 *          selector, per-deployment rates over a few series and small ranges, --runs times on
 *          each server (use a few hundred), same JSON lines and a summary (floor_mode).
 *          --baseline BIN: a second meshprom (say main's build) on the same data, in the same
 *          interleave; its median and ratio go on each line (before/after in one run).
 * Prometheus 2.42 is the oracle installed from Debian; meshprom follows 2.55, so a difference
 * between the two versions shows up here as a mismatch (the query set avoids the known ones;
 * see query/README.md). */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "meshsim/meshsim.h"
#include "bench/load_1m.h"
#include "bench/peer.h"
#include "common/alloc.h"
#include "common/labels.h"
#include "common/str.h"
#include "common/time.h"
#include "remote/remote.h"

#define SKIP 77

struct opts {
    const char *mode, *prometheus, *meshprom, *workdir;
    const char *baseline; /* floor: a second meshprom (another build) in the same interleave */
    const char *load; /* "remote-write" or "wal" */
    const char *data; /* wal: where the written mesh is kept (default <workdir>/mesh) */
    int namespaces, deployments, replicas, peers, minutes, runs;
    int range_minutes, step_s; /* bench: range queries over the last range_minutes */
    bool keep, verbose;
};

/* ---- loading ------------------------------------------------------------------------------- */

static int send_both(struct peer *const *peers, size_t npeers, const struct mp_buf *body,
                     struct mp_buf *resp, struct mp_err *err)
{
    static const char *const hdr[] = {"Content-Encoding: snappy",
                                      "X-Prometheus-Remote-Write-Version: 0.1.0", NULL};
    for (size_t i = 0; i < npeers; i++) {
        long code = 0;
        int rc = peer_http(peers[i], "/api/v1/write", "application/x-protobuf", body->data,
                           body->len, hdr, resp, &code, err);
        if (rc != 0)
            return rc;
        if (code != 204 && code != 200)
            return mp_err_set(err, MP_EIO, "%s: remote write answered %ld: %.200s",
                              peers[i]->name, code, resp->data ? resp->data : "");
    }
    return 0;
}

static void gen_opts(const struct opts *o, struct meshsim_gen_opts *mo)
{
    meshsim_gen_opts_init(mo);
    mo->namespaces = o->namespaces;
    mo->deployments = o->deployments;
    mo->replicas = o->replicas;
    mo->peers = o->peers;
    mo->duration_ms = (int64_t)o->minutes * 60000;
}

/* Generates the mesh and writes every scrape to each peer; t0 and t1 get the first and last
 * sample times, *samples the number sent. */
static int load(const struct opts *o, struct peer *const *peers, size_t npeers, int64_t *t0,
                int64_t *t1, uint64_t *nsamples, uint64_t *nseries, struct mp_err *err)
{
    struct meshsim_gen_opts mo;
    gen_opts(o, &mo);
    struct meshsim_gen *g = NULL;
    int rc = meshsim_gen_create(&mo, &g, err);
    if (rc != 0)
        return rc;
    struct mp_buf body, resp;
    mp_buf_init(&body, 0);
    mp_buf_init(&resp, 1 << 20);
    struct remote_write_series *ser = NULL;
    struct mp_label *lab = NULL;
    size_t cap_ser = 0, cap_lab = 0;
    double *vals = NULL;
    int64_t *ts = NULL;
    *t0 = INT64_MAX;
    *t1 = INT64_MIN;
    int64_t started = mp_now_ms();
    uint64_t samples = 0;
    struct meshsim_gen_scrape sc;
    while ((rc = meshsim_gen_next(g, &sc)) == 0) {
        size_t nl = 0;
        for (size_t i = 0; i < sc.n; i++)
            nl += sc.samples[i].nlabels;
        if (sc.n > cap_ser) {
            cap_ser = sc.n * 2;
            ser = mp_xrealloc(ser, cap_ser * sizeof *ser);
            vals = mp_xrealloc(vals, cap_ser * sizeof *vals);
            ts = mp_xrealloc(ts, cap_ser * sizeof *ts);
        }
        if (nl > cap_lab) {
            cap_lab = nl * 2;
            lab = mp_xrealloc(lab, cap_lab * sizeof *lab);
        }
        size_t li = 0;
        for (size_t i = 0; i < sc.n; i++) {
            const struct meshsim_gen_sample *s = &sc.samples[i];
            ser[i].labels = &lab[li];
            ser[i].nlabels = s->nlabels;
            for (size_t j = 0; j < s->nlabels; j++, li++)
                lab[li] = (struct mp_label){s->labels[2 * j], s->labels[2 * j + 1]};
            vals[i] = s->value;
            ts[i] = sc.t_ms;
            ser[i].t_ms = &ts[i];
            ser[i].v = &vals[i];
            ser[i].nsamples = 1;
        }
        if ((rc = remote_write_encode(ser, sc.n, &body, err)) != 0 ||
            (rc = send_both(peers, npeers, &body, &resp, err)) != 0)
            break;
        samples += sc.n;
        if (sc.t_ms < *t0)
            *t0 = sc.t_ms;
        if (sc.t_ms > *t1)
            *t1 = sc.t_ms;
    }
    if (rc == MP_EEOF)
        rc = 0;
    struct meshsim_gen_stats st;
    meshsim_gen_get_stats(g, &st);
    *nsamples = samples;
    *nseries = st.series;
    printf("{\"load\":{\"via\":\"remote-write\",\"series\":%llu,\"samples\":%llu,\"pods\":%llu,\"seconds\":%.1f}}\n",
           (unsigned long long)st.series, (unsigned long long)samples,
           (unsigned long long)st.pods, (double)(mp_now_ms() - started) / 1000.0);
    fflush(stdout);
    mp_free(ser);
    mp_free(lab);
    mp_free(vals);
    mp_free(ts);
    mp_buf_fini(&body);
    mp_buf_fini(&resp);
    meshsim_gen_destroy(g);
    return rc;
}

/* ---- queries ------------------------------------------------------------------------------- */

/* The Linkerd dashboard / viz CLI queries (linkerd-workload.md 3.2), namespace app-00. */
static const char *const dashboard[] = {
    "sum(increase(response_total{direction=\"inbound\", namespace=\"app-00\"}[1m])) by "
    "(namespace, deployment, classification, tls)",
    "histogram_quantile(0.5, sum(irate(response_latency_ms_bucket{direction=\"inbound\", "
    "namespace=\"app-00\"}[1m])) by (le, namespace, deployment))",
    "histogram_quantile(0.95, sum(irate(response_latency_ms_bucket{direction=\"inbound\", "
    "namespace=\"app-00\"}[1m])) by (le, namespace, deployment))",
    "histogram_quantile(0.99, sum(irate(response_latency_ms_bucket{direction=\"inbound\", "
    "namespace=\"app-00\"}[1m])) by (le, namespace, deployment))",
    "sum(tcp_open_connections{direction=\"inbound\", namespace=\"app-00\"}) by (namespace, "
    "deployment)",
    "sum(increase(tcp_read_bytes_total{direction=\"inbound\", namespace=\"app-00\", "
    "peer=\"src\"}[1m])) by (namespace, deployment)",
    "sum(increase(tcp_write_bytes_total{direction=\"inbound\", namespace=\"app-00\", "
    "peer=\"src\"}[1m])) by (namespace, deployment)",
    "sum(increase(response_total{direction=\"outbound\", namespace=\"app-00\"}[1m])) by "
    "(namespace, deployment, dst_namespace, dst_deployment, classification, tls)",
    "sum(tcp_open_connections{deployment!=\"\", direction=\"outbound\", dst_deployment!=\"\"}) "
    "by (deployment, dst_deployment, pod, server_id, namespace, dst_namespace, no_tls_reason)",
    "max(process_start_time_seconds{namespace=\"app-00\"}) by (pod, namespace)",
    "sum(increase(response_total{direction=\"inbound\"}[1m])) by (namespace, classification, "
    "tls)",
    "sum(rate(response_total{direction=\"inbound\", classification=\"success\"}[1m])) by "
    "(deployment) / sum(rate(response_total{direction=\"inbound\"}[1m])) by (deployment)",
    "sum(increase(response_total{direction=\"inbound\", namespace=\"app-00\"}[10m])) by "
    "(namespace, deployment, classification, tls)",
    "histogram_quantile(0.99, sum(irate(response_latency_ms_bucket{direction=\"inbound\"}[1m]))"
    " by (le, namespace, deployment))",
};

/* PromQL features beyond the dashboard, on the same data. */
static const char *const features[] = {
    "response_total{direction=\"inbound\", classification=\"failure\"}",
    "tcp_open_connections",
    "rate(request_total[5m])",
    "irate(request_total[1m])",
    "increase(response_total{classification=\"success\"}[2m])",
    "delta(tcp_open_connections[5m])",
    "idelta(tcp_open_connections[5m])",
    "deriv(process_resident_memory_bytes[10m])",
    "predict_linear(process_cpu_seconds_total[10m], 3600)",
    "resets(tcp_open_connections[30m])",
    "changes(tcp_open_connections[30m])",
    "avg_over_time(tcp_open_connections[5m])",
    "min_over_time(tcp_open_connections[5m])",
    "max_over_time(tcp_open_connections[5m])",
    "sum_over_time(tcp_open_connections[5m])",
    "count_over_time(request_total[5m])",
    "quantile_over_time(0.9, tcp_open_connections[10m])",
    "stddev_over_time(tcp_open_connections[10m])",
    "stdvar_over_time(tcp_open_connections[10m])",
    "last_over_time(request_total[5m])",
    "present_over_time(request_total[5m])",
    "sum by (deployment) (rate(request_total[1m]))",
    "avg without (pod, instance) (rate(request_total[1m]))",
    "count by (namespace) (request_total)",
    "min by (deployment) (tcp_open_connections)",
    "max by (deployment) (tcp_open_connections)",
    "stddev by (deployment) (rate(request_total[1m]))",
    "stdvar by (deployment) (rate(request_total[1m]))",
    "group by (deployment, direction) (request_total)",
    "quantile by (direction) (0.75, rate(request_total[1m]))",
    "count_values by (direction) (\"conns\", tcp_open_connections)",
    "sort_desc(sum by (deployment) (rate(request_total[1m])))",
    "sort(sum by (pod) (tcp_open_connections))",
    "rate(request_total[1m]) > 1",
    "rate(request_total[1m]) > bool 1",
    "sum by (deployment) (rate(response_total{classification=\"failure\"}[5m])) / "
    "sum by (deployment) (rate(response_total[5m]))",
    "sum by (deployment, pod) (rate(request_total[1m])) / on (deployment) group_left "
    "sum by (deployment) (rate(request_total[1m]))",
    "rate(request_total[1m]) and on (pod) tcp_open_connections > 2",
    "rate(request_total[1m]) or vector(0)",
    "rate(request_total{direction=\"inbound\"}[1m]) unless on (pod) "
    "rate(request_total{direction=\"outbound\"}[1m])",
    "rate(request_total[1m] offset 10m)",
    "rate(request_total[1m] @ end())",
    "max_over_time(sum by (deployment) (rate(request_total[1m]))[10m:1m])",
    "avg_over_time(rate(request_total[1m])[5m:])",
    "label_replace(rate(request_total[1m]), \"svc\", \"$1-svc\", \"deployment\", \"(.*)\")",
    "label_join(tcp_open_connections, \"pd\", \"/\", \"pod\", \"direction\")",
    "abs(delta(tcp_open_connections[5m]))",
    "ceil(rate(request_total[1m]))",
    "floor(rate(request_total[1m]))",
    "round(rate(request_total[1m]), 0.5)",
    "clamp(rate(request_total[1m]), 1, 5)",
    "clamp_min(rate(request_total[1m]), 2)",
    "clamp_max(rate(request_total[1m]), 2)",
    "sqrt(rate(request_total[1m]))",
    "exp(-rate(request_total[1m]))",
    "ln(rate(request_total[1m]) + 1)",
    "log2(tcp_open_connections + 1)",
    "log10(tcp_open_connections + 1)",
    "sgn(delta(tcp_open_connections[5m]))",
    "timestamp(request_total)",
    "time() - process_start_time_seconds",
    "scalar(sum(tcp_open_connections))",
    "vector(1) + 2 * 3 ^ 2 % 5",
    "absent(nonexistent_metric{job=\"x\"})",
    "absent(request_total)",
    "absent_over_time(nonexistent_metric[5m])",
    /* topk/bottomk over inputs without ties: among equal values the first input series wins,
     * and Prometheus's head hands series out in creation order where meshprom's are in label
     * order (query/README.md) */
    "topk(3, sum by (pod) (rate(request_total[1m])))",
    "bottomk(2, sum by (pod) (tcp_open_connections))",
    "histogram_quantile(0.9, sum by (le) (rate(response_latency_ms_bucket[5m])))",
    "histogram_quantile(0.99, rate(response_latency_ms_bucket[5m]))",
    "-rate(request_total[1m])",
    "hour()",
    "day_of_week(vector(time()))",
    "minute(timestamp(request_total))",
    "sum(rate(request_total[1m])) by (deployment) * on (deployment) group_right "
    "sum by (deployment, pod) (tcp_open_connections)",
    "{__name__=~\"tcp_open_.*\", direction=\"inbound\"}",
    "request_total{pod=~\"web.*|vote.*\", deployment!~\"dep-0.*\"}",
    "1 / 0",
    "-1 / 0",
    "0 / 0",
};

/* ---- comparison ---------------------------------------------------------------------------- */

static bool value_eq(const char *a, const char *b)
{
    if (strcmp(a, b) == 0)
        return true;
    char *ea, *eb;
    double x = strtod(a, &ea), y = strtod(b, &eb);
    if (*ea || *eb)
        return false;
    if (isnan(x) || isnan(y))
        return isnan(x) && isnan(y);
    if (x == y)
        return true;
    return fabs(x - y) <= 1e-9 * fmax(fabs(x), fabs(y));
}

static bool point_eq(json_object *a, json_object *b)
{
    if (!json_object_is_type(a, json_type_array) || !json_object_is_type(b, json_type_array) ||
        json_object_array_length(a) != 2 || json_object_array_length(b) != 2)
        return false;
    double ta = json_object_get_double(json_object_array_get_idx(a, 0));
    double tb = json_object_get_double(json_object_array_get_idx(b, 0));
    if (fabs(ta - tb) > 1e-6)
        return false;
    return value_eq(json_object_get_string(json_object_array_get_idx(a, 1)),
                    json_object_get_string(json_object_array_get_idx(b, 1)));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Canonical "{k="v",...}" of a metric object, keys sorted. Caller frees. */
static char *metric_key(json_object *m)
{
    size_t n = (size_t)json_object_object_length(m), i = 0;
    char **kv = mp_xmalloc((n ? n : 1) * sizeof *kv);
    json_object_object_foreach(m, k, v)
    {
        if (asprintf(&kv[i], "%s=%s", k, json_object_get_string(v)) < 0)
            abort();
        i++;
    }
    qsort(kv, n, sizeof *kv, cmp_str);
    struct mp_buf b;
    mp_buf_init(&b, 0);
    (void)mp_buf_append_str(&b, "{");
    for (i = 0; i < n; i++) {
        (void)mp_buf_append_str(&b, i ? "," : "");
        (void)mp_buf_append_str(&b, kv[i]);
        free(kv[i]);
    }
    (void)mp_buf_append_str(&b, "}");
    mp_free(kv);
    return mp_buf_take(&b, NULL);
}

struct item {
    char *key;
    json_object *obj;
};

static int cmp_item(const void *a, const void *b)
{
    return strcmp(((const struct item *)a)->key, ((const struct item *)b)->key);
}

static struct item *items(json_object *arr, size_t *n, bool sorted)
{
    *n = json_object_array_length(arr);
    struct item *it = mp_xmalloc((*n ? *n : 1) * sizeof *it);
    for (size_t i = 0; i < *n; i++) {
        json_object *e = json_object_array_get_idx(arr, i), *m = NULL;
        json_object_object_get_ex(e, "metric", &m);
        it[i].key = m ? metric_key(m) : mp_xstrdup("{}");
        it[i].obj = e;
    }
    if (sorted)
        qsort(it, *n, sizeof *it, cmp_item);
    return it;
}

static void free_items(struct item *it, size_t n)
{
    for (size_t i = 0; i < n; i++)
        mp_free(it[i].key);
    mp_free(it);
}

/* Compares two API answers; on a difference writes why into why. */
static bool answers_eq(json_object *a, json_object *b, bool ordered, char *why, size_t cap,
                       bool *empty)
{
    *empty = true;
    json_object *sa, *sb;
    json_object_object_get_ex(a, "status", &sa);
    json_object_object_get_ex(b, "status", &sb);
    const char *ssa = sa ? json_object_get_string(sa) : "?", *ssb = sb ? json_object_get_string(sb) : "?";
    if (strcmp(ssa, ssb) != 0) {
        json_object *ea = NULL, *eb = NULL;
        json_object_object_get_ex(a, "error", &ea);
        json_object_object_get_ex(b, "error", &eb);
        snprintf(why, cap, "status %s vs %s (%s | %s)", ssa, ssb,
                 ea ? json_object_get_string(ea) : "", eb ? json_object_get_string(eb) : "");
        return false;
    }
    if (strcmp(ssa, "success") != 0) {
        json_object *ta, *tb;
        json_object_object_get_ex(a, "errorType", &ta);
        json_object_object_get_ex(b, "errorType", &tb);
        const char *x = ta ? json_object_get_string(ta) : "", *y = tb ? json_object_get_string(tb) : "";
        if (strcmp(x, y) != 0) {
            snprintf(why, cap, "errorType %s vs %s", x, y);
            return false;
        }
        return true;
    }
    json_object *da, *db, *ra, *rb, *ta, *tb;
    json_object_object_get_ex(a, "data", &da);
    json_object_object_get_ex(b, "data", &db);
    json_object_object_get_ex(da, "resultType", &ta);
    json_object_object_get_ex(db, "resultType", &tb);
    json_object_object_get_ex(da, "result", &ra);
    json_object_object_get_ex(db, "result", &rb);
    const char *rta = ta ? json_object_get_string(ta) : "", *rtb = tb ? json_object_get_string(tb) : "";
    if (strcmp(rta, rtb) != 0) {
        snprintf(why, cap, "resultType %s vs %s", rta, rtb);
        return false;
    }
    if (strcmp(rta, "scalar") == 0 || strcmp(rta, "string") == 0) {
        *empty = false;
        if (!point_eq(ra, rb)) {
            snprintf(why, cap, "%s %s vs %s", rta, json_object_to_json_string(ra),
                     json_object_to_json_string(rb));
            return false;
        }
        return true;
    }
    *empty = json_object_array_length(ra) == 0;
    size_t na, nb;
    struct item *ia = items(ra, &na, !ordered), *ib = items(rb, &nb, !ordered);
    bool ok = true;
    if (na != nb) {
        snprintf(why, cap, "%zu vs %zu series (first: %s | %s)", na, nb, na ? ia[0].key : "-",
                 nb ? ib[0].key : "-");
        ok = false;
    }
    bool matrix = strcmp(rta, "matrix") == 0;
    for (size_t i = 0; ok && i < na; i++) {
        if (strcmp(ia[i].key, ib[i].key) != 0) {
            snprintf(why, cap, "series %zu: %s vs %s", i, ia[i].key, ib[i].key);
            ok = false;
            break;
        }
        json_object *pa, *pb;
        json_object_object_get_ex(ia[i].obj, matrix ? "values" : "value", &pa);
        json_object_object_get_ex(ib[i].obj, matrix ? "values" : "value", &pb);
        if (!matrix) {
            if (!pa || !pb || !point_eq(pa, pb)) {
                snprintf(why, cap, "%s: %s vs %s", ia[i].key,
                         pa ? json_object_to_json_string(pa) : "-",
                         pb ? json_object_to_json_string(pb) : "-");
                ok = false;
            }
            continue;
        }
        size_t la = pa ? json_object_array_length(pa) : 0, lb = pb ? json_object_array_length(pb) : 0;
        if (la != lb) {
            snprintf(why, cap, "%s: %zu vs %zu points", ia[i].key, la, lb);
            ok = false;
            break;
        }
        for (size_t j = 0; j < la; j++) {
            json_object *x = json_object_array_get_idx(pa, j), *y = json_object_array_get_idx(pb, j);
            if (!point_eq(x, y)) {
                snprintf(why, cap, "%s point %zu: %s vs %s", ia[i].key, j,
                         json_object_to_json_string(x), json_object_to_json_string(y));
                ok = false;
                break;
            }
        }
    }
    free_items(ia, na);
    free_items(ib, nb);
    return ok;
}

/* Values of one answer per timestamp, sorted: what a ranking query must agree on when equal
 * values tie (which of two tied series comes first, or is kept by topk, follows the storage's
 * series order: Prometheus's head hands series out in creation order, meshprom in label order;
 * and Go's sort is not stable). "t=v" strings, sorted. */
static char **tie_view(json_object *resp, size_t *n)
{
    json_object *d, *r, *t;
    *n = 0;
    if (!json_object_object_get_ex(resp, "data", &d) || !json_object_object_get_ex(d, "result", &r) ||
        !json_object_object_get_ex(d, "resultType", &t))
        return NULL;
    bool matrix = strcmp(json_object_get_string(t), "matrix") == 0;
    size_t cap = 0;
    char **out = NULL;
    for (size_t i = 0; i < json_object_array_length(r); i++) {
        json_object *e = json_object_array_get_idx(r, i), *pts;
        if (!json_object_object_get_ex(e, matrix ? "values" : "value", &pts))
            continue;
        size_t np = matrix ? json_object_array_length(pts) : 1;
        for (size_t j = 0; j < np; j++) {
            json_object *p = matrix ? json_object_array_get_idx(pts, j) : pts;
            if (*n == cap) {
                cap = cap ? cap * 2 : 64;
                out = mp_xrealloc(out, cap * sizeof *out);
            }
            double v = strtod(json_object_get_string(json_object_array_get_idx(p, 1)), NULL);
            if (asprintf(&out[(*n)++], "%.3f=%.9g", json_object_get_double(json_object_array_get_idx(p, 0)), v) < 0)
                abort();
        }
    }
    qsort(out, *n, sizeof *out, cmp_str);
    return out;
}

static bool ties_explain(json_object *a, json_object *b)
{
    size_t na, nb;
    char **x = tie_view(a, &na), **y = tie_view(b, &nb);
    bool same = na == nb;
    for (size_t i = 0; same && i < na; i++)
        same = strcmp(x[i], y[i]) == 0;
    for (size_t i = 0; i < na; i++)
        free(x[i]);
    for (size_t i = 0; i < nb; i++)
        free(y[i]);
    mp_free(x);
    mp_free(y);
    return same;
}

static bool is_ranking(const char *expr)
{
    return strncmp(expr, "sort", 4) == 0 || strncmp(expr, "topk", 4) == 0 ||
           strncmp(expr, "bottomk", 7) == 0;
}

/* ---- running queries ----------------------------------------------------------------------- */

struct call {
    const char *expr;
    bool range;
    double t, start, end, step; /* seconds */
};

static int run(struct peer *p, const struct call *c, struct mp_buf *out, double *secs,
               struct mp_err *err)
{
    struct mp_buf form;
    mp_buf_init(&form, 0);
    int rc = mp_buf_append_str(&form, "query=");
    if (rc == 0)
        rc = peer_urlencode(&form, c->expr);
    if (rc == 0)
        rc = c->range ? mp_buf_appendf(&form, "&start=%.3f&end=%.3f&step=%g", c->start, c->end,
                                       c->step)
                      : mp_buf_appendf(&form, "&time=%.3f", c->t);
    long code = 0;
    int64_t t0 = mp_mono_ns();
    if (rc == 0)
        rc = peer_http(p, c->range ? "/api/v1/query_range" : "/api/v1/query",
                       "application/x-www-form-urlencoded", form.data, form.len, NULL, out, &code,
                       err);
    *secs = (double)(mp_mono_ns() - t0) / 1e9;
    mp_buf_fini(&form);
    return rc;
}

static void describe(const struct call *c, char *buf, size_t cap)
{
    if (c->range)
        snprintf(buf, cap, "range %.3f..%.3f step %g", c->start, c->end, c->step);
    else
        snprintf(buf, cap, "instant %.3f", c->t);
}

static void json_str(FILE *f, const char *s)
{
    json_object *o = json_object_new_string(s);
    fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_NOSLASHESCAPE), f);
    json_object_put(o);
}

static int diff_mode(const struct opts *o, struct peer *prom, struct peer *mesh, int64_t t0,
                     int64_t t1)
{
    double s0 = (double)t0 / 1000, s1 = (double)t1 / 1000;
    const double times[] = {s1, s1 - 1020.5, s0 + 1803.0, s1 + 240};
    struct call calls[4096];
    size_t n = 0;
    const char *const *sets[] = {dashboard, features};
    const size_t lens[] = {sizeof dashboard / sizeof *dashboard, sizeof features / sizeof *features};
    for (size_t s = 0; s < 2; s++) {
        for (size_t q = 0; q < lens[s]; q++) {
            for (size_t t = 0; t < sizeof times / sizeof *times; t++)
                calls[n++] = (struct call){.expr = sets[s][q], .t = times[t]};
            calls[n++] = (struct call){.expr = sets[s][q], .range = true, .start = s0 + 600,
                                       .end = s1, .step = 30};
            calls[n++] = (struct call){.expr = sets[s][q], .range = true, .start = s0 + 1234.5,
                                       .end = s1 + 120, .step = 61};
        }
    }
    struct mp_buf a, b;
    mp_buf_init(&a, 0);
    mp_buf_init(&b, 0);
    size_t bad = 0, failed = 0, empty = 0, ties = 0;
    for (size_t i = 0; i < n; i++) {
        struct mp_err err = {0};
        double sa, sb;
        char desc[128], why[1024] = "";
        describe(&calls[i], desc, sizeof desc);
        if (run(prom, &calls[i], &a, &sa, &err) != 0 || run(mesh, &calls[i], &b, &sb, &err) != 0) {
            printf("{\"error\":");
            json_str(stdout, err.msg);
            printf(",\"query\":");
            json_str(stdout, calls[i].expr);
            printf("}\n");
            failed++;
            continue;
        }
        json_object *ja = json_tokener_parse(a.data), *jb = json_tokener_parse(b.data);
        bool ordered = strncmp(calls[i].expr, "sort", 4) == 0 && !calls[i].range;
        bool ok, e = true;
        if (!ja || !jb) {
            snprintf(why, sizeof why, "unparsable JSON from %s: %.200s", ja ? "meshprom" : "prometheus",
                     ja ? b.data : a.data);
            ok = false;
        } else {
            ok = answers_eq(ja, jb, ordered, why, sizeof why, &e);
            if (!ok && is_ranking(calls[i].expr) && ties_explain(ja, jb)) {
                ties++; /* the same values: only tied series are ordered or chosen otherwise */
                ok = true;
            }
        }
        empty += e;
        if (!ok) {
            bad++;
            printf("{\"mismatch\":");
            json_str(stdout, why);
            printf(",\"query\":");
            json_str(stdout, calls[i].expr);
            printf(",\"call\":\"%s\"}\n", desc);
        } else if (o->verbose) {
            printf("{\"ok\":");
            json_str(stdout, calls[i].expr);
            printf(",\"call\":\"%s\"}\n", desc);
        }
        json_object_put(ja);
        json_object_put(jb);
    }
    printf("{\"summary\":{\"calls\":%zu,\"mismatches\":%zu,\"failed\":%zu,"
           "\"empty_or_error\":%zu,\"tie_order_only\":%zu}}\n",
           n, bad, failed, empty, ties);
    mp_buf_fini(&a);
    mp_buf_fini(&b);
    return bad || failed ? 1 : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double q)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i = (int)ceil(q * n) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* One server's resident memory from /proc (kB): VmRSS now and its peak VmHWM. */
static void rss_kb(pid_t pid, long *rss, long *hwm)
{
    char path[64], line[256];
    *rss = *hwm = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "VmRSS:", 6))
            *rss = atol(line + 6);
        else if (!strncmp(line, "VmHWM:", 6))
            *hwm = atol(line + 6);
    }
    fclose(f);
}

static void print_rss(const char *when, struct peer *prom, struct peer *mesh)
{
    long pr, ph, mr, mh;
    rss_kb(prom->pid, &pr, &ph);
    rss_kb(mesh->pid, &mr, &mh);
    printf("{\"rss\":{\"when\":\"%s\",\"prometheus_mib\":%.1f,\"prometheus_peak_mib\":%.1f,"
           "\"meshprom_mib\":%.1f,\"meshprom_peak_mib\":%.1f,\"ratio\":%.3f}}\n",
           when, (double)pr / 1024, (double)ph / 1024, (double)mr / 1024, (double)mh / 1024,
           pr > 0 ? (double)mr / (double)pr : 0);
    fflush(stdout);
}

/* Sum of the values of an instant vector answer (NAN when it is not one); names, when not
 * NULL, gets each element's __name__ (strdup'd; *nnames of them). */
static double vector_sum(const char *body, char ***names, size_t *nnames)
{
    json_object *j = json_tokener_parse(body), *d, *r;
    double sum = NAN;
    if (names) {
        *names = NULL;
        *nnames = 0;
    }
    if (j && json_object_object_get_ex(j, "data", &d) && json_object_object_get_ex(d, "result", &r) &&
        json_object_is_type(r, json_type_array)) {
        sum = 0;
        size_t n = json_object_array_length(r);
        if (names)
            *names = mp_xmalloc((n ? n : 1) * sizeof **names);
        for (size_t i = 0; i < n; i++) {
            json_object *e = json_object_array_get_idx(r, i), *v, *m, *nm;
            if (json_object_object_get_ex(e, "value", &v))
                sum += strtod(json_object_get_string(json_object_array_get_idx(v, 1)), NULL);
            if (names && json_object_object_get_ex(e, "metric", &m) &&
                json_object_object_get_ex(m, "__name__", &nm))
                (*names)[(*nnames)++] = mp_xstrdup(json_object_get_string(nm));
        }
    }
    json_object_put(j);
    return sum;
}

/* Runs c on both servers; true when the answers agree and are not empty. *sum gets the sum of
 * Prometheus's answer; names as vector_sum. Prints a JSON line unless quiet and equal. */
static bool same_on_both(struct peer *prom, struct peer *mesh, const struct call *c, bool quiet,
                         double *sum, char ***names, size_t *nnames, struct mp_buf *a,
                         struct mp_buf *b)
{
    struct mp_err err = {0};
    double sa = 0, sb = 0;
    char why[1024] = "";
    bool ok = false, e = true;
    if (run(prom, c, a, &sa, &err) != 0 || run(mesh, c, b, &sb, &err) != 0) {
        snprintf(why, sizeof why, "%s", err.msg);
    } else {
        json_object *ja = json_tokener_parse(a->data), *jb = json_tokener_parse(b->data);
        ok = ja && jb && answers_eq(ja, jb, false, why, sizeof why, &e) && !e;
        json_object_put(ja);
        json_object_put(jb);
        *sum = vector_sum(a->data, names, nnames);
    }
    if (ok && quiet)
        return true;
    printf("{\"verify\":");
    json_str(stdout, c->expr);
    printf(",\"time\":%.3f,\"same\":%s,\"sum\":%.17g,\"prometheus_s\":%.3f,\"meshprom_s\":%.3f",
           c->t, ok ? "true" : "false", *sum, sa, sb);
    if (!ok) {
        printf(",\"why\":");
        json_str(stdout, why[0] ? why : "empty or unparsable answer");
    }
    printf("}\n");
    fflush(stdout);
    return ok;
}

/* Before timing anything: both servers must hold the same data. Series per metric name, the
 * sums of the last values per metric name at the end and in the middle of the data (1e-9
 * relative), and the samples of each metric over the whole time must agree, and the samples
 * must add up to what was loaded. Above 200k series (where reading every sample takes
 * Prometheus minutes) these checks cover namespace app-00, the one the dashboard queries read,
 * and the pods and connections of every namespace are compared instead of the loaded total. */
static int verify(struct peer *prom, struct peer *mesh, int64_t t0, int64_t t1,
                  uint64_t loaded, uint64_t series)
{
    double s1 = (double)t1 / 1000, mid = (double)(t0 + (t1 - t0) / 2) / 1000;
    bool all = series < 200000;
    const char *sel = all ? "{__name__!=\"\"}" : "{namespace=\"app-00\"}";
    char count_q[128], sum_q[128];
    snprintf(count_q, sizeof count_q, "count by (__name__) (%s)", sel);
    snprintf(sum_q, sizeof sum_q, "sum by (__name__) (%s)", sel);
    const struct call calls[] = {
        {.expr = count_q, .t = s1},
        {.expr = sum_q, .t = s1},
        {.expr = sum_q, .t = mid},
        {.expr = "count by (namespace) (process_start_time_seconds)", .t = s1},
        {.expr = "sum by (namespace) (tcp_open_connections)", .t = mid},
    };
    struct mp_buf a, b;
    mp_buf_init(&a, 0);
    mp_buf_init(&b, 0);
    char **names = NULL;
    size_t nnames = 0;
    bool ok = true;
    int64_t started = mp_mono_ns();
    for (size_t i = 0; i < sizeof calls / sizeof *calls && ok; i++) {
        double sum = 0;
        ok = same_on_both(prom, mesh, &calls[i], false, &sum, i == 0 ? &names : NULL, &nnames,
                          &a, &b);
    }
    /* count_over_time drops the name, so one metric at a time */
    double total = 0;
    for (size_t i = 0; i < nnames && ok; i++) {
        char expr[512];
        snprintf(expr, sizeof expr, "sum(count_over_time({__name__=\"%s\"%s}[%llds]))",
                 names[i], all ? "" : ", namespace=\"app-00\"", (long long)((t1 - t0) / 1000 + 1));
        struct call c = {.expr = expr, .t = s1};
        double sum = 0;
        ok = same_on_both(prom, mesh, &c, true, &sum, NULL, NULL, &a, &b);
        total += sum;
    }
    for (size_t i = 0; i < nnames; i++)
        mp_free(names[i]);
    mp_free(names);
    if (ok) {
        ok = nnames > 0 && (!all || total == (double)loaded);
        printf("{\"verify\":\"samples per metric name over all the time\",\"selector\":");
        json_str(stdout, sel);
        printf(",\"metrics\":%zu,\"same\":true,\"samples\":%.17g,\"loaded_samples\":%llu,"
               "\"ok\":%s,\"seconds\":%.1f}\n",
               nnames, total, (unsigned long long)loaded, ok ? "true" : "false",
               (double)(mp_mono_ns() - started) / 1e9);
    }
    mp_buf_fini(&a);
    mp_buf_fini(&b);
    return ok ? 0 : 1;
}

/* Times one call runs times on each server, interleaved; prints its JSON line and returns the
 * median ratio (negative on failure). base (may be NULL): a baseline meshprom timed in the
 * same interleave (lb its times), its median and ratio added to the line. */
static double bench_call(const struct opts *o, struct peer *prom, struct peer *mesh,
                         struct peer *base, const struct call *c, double *lp, double *lm,
                         double *lb, struct mp_buf *out)
{
    /* the order rotates every run: the request right after Prometheus's competes with its
     * background work (GC, goroutines) on a small machine, which would favour whoever goes
     * first */
    struct peer *ps[] = {prom, mesh, base};
    double *ls[] = {lp, lm, lb};
    int n = base ? 3 : 2;
    for (int r = 0; r < o->runs; r++) {
        for (int j = 0; j < n; j++) {
            int k = (j + r) % n;
            struct mp_err err = {0};
            if (run(ps[k], c, out, &ls[k][r], &err) != 0) {
                fprintf(stderr, "promql_diff: %s\n", err.msg);
                return -1;
            }
        }
    }
    double pm = pct(lp, o->runs, 0.5), mm = pct(lm, o->runs, 0.5);
    double p99p = pct(lp, o->runs, 0.99), p99m = pct(lm, o->runs, 0.99);
    double ratio = pm > 0 ? mm / pm : 0;
    printf("{\"query\":");
    json_str(stdout, c->expr);
    printf(",\"mode\":\"%s\",\"prometheus_median_ms\":%.3f,\"prometheus_p99_ms\":%.3f,"
           "\"meshprom_median_ms\":%.3f,\"meshprom_p99_ms\":%.3f,\"ratio_median\":%.3f,"
           "\"ratio_p99\":%.3f",
           c->range ? "range" : "instant", pm * 1e3, p99p * 1e3, mm * 1e3, p99m * 1e3, ratio,
           p99p > 0 ? p99m / p99p : 0);
    if (base) {
        double bm = pct(lb, o->runs, 0.5), p99b = pct(lb, o->runs, 0.99);
        printf(",\"baseline_median_ms\":%.3f,\"baseline_p99_ms\":%.3f,"
               "\"baseline_ratio_median\":%.3f",
               bm * 1e3, p99b * 1e3, pm > 0 ? bm / pm : 0);
    }
    printf("}\n");
    fflush(stdout);
    return ratio;
}

/* Every dashboard query as an instant query at the end of the data and as a range query over
 * its last range_minutes at step_s (a Grafana panel). */
static int bench_mode(const struct opts *o, struct peer *prom, struct peer *mesh, int64_t t1)
{
    struct mp_buf out;
    mp_buf_init(&out, 0);
    double *lp = mp_xmalloc((size_t)o->runs * sizeof *lp), *lm = mp_xmalloc((size_t)o->runs * sizeof *lm);
    int status = 0;
    double worst[2] = {0, 0};
    const char *worst_q[2] = {"", ""};
    size_t nq = sizeof dashboard / sizeof *dashboard;
    double end = (double)t1 / 1000;
    for (size_t q = 0; q < nq && status == 0; q++) {
        for (int m = 0; m < 2; m++) {
            struct call c = {.expr = dashboard[q], .t = end, .range = m == 1,
                             .start = end - 60.0 * o->range_minutes, .end = end,
                             .step = o->step_s};
            double ratio = bench_call(o, prom, mesh, NULL, &c, lp, lm, NULL, &out);
            if (ratio < 0) {
                status = 1;
                break;
            }
            if (ratio > worst[m]) {
                worst[m] = ratio;
                worst_q[m] = dashboard[q];
            }
        }
    }
    if (status == 0) {
        printf("{\"summary\":{\"queries\":%zu,\"runs\":%d,\"range_minutes\":%d,\"step_s\":%d,"
               "\"worst_ratio_median\":%.3f,\"worst_instant\":%.3f,\"worst_range\":%.3f,"
               "\"target\":0.333,\"worst_instant_query\":",
               nq, o->runs, o->range_minutes, o->step_s, fmax(worst[0], worst[1]), worst[0],
               worst[1]);
        json_str(stdout, worst_q[0]);
        printf(",\"worst_range_query\":");
        json_str(stdout, worst_q[1]);
        printf("}}\n");
    }
    mp_free(lp);
    mp_free(lm);
    mp_buf_fini(&out);
    return status;
}

/* floor: the fixed cost of a request. Tiny queries (a literal, one series, a per-deployment
 * rate over a few series, small ranges) many times on each server over one keep-alive
 * connection each, interleaved, after a warm-up; answers checked equal first. The pod of the
 * one-series selector is read from the data. */
static int floor_mode(const struct opts *o, struct peer *prom, struct peer *mesh, struct peer *base,
                      int64_t t1)
{
    double end = (double)t1 / 1000;
    struct mp_buf a, b;
    mp_buf_init(&a, 0);
    mp_buf_init(&b, 0);
    char pod[128] = "", one[256];
    struct call pc = {.expr = "process_start_time_seconds{namespace=\"app-00\"}", .t = end};
    double secs;
    struct mp_err err = {0};
    if (run(mesh, &pc, &a, &secs, &err) == 0) {
        json_object *j = json_tokener_parse(a.data), *d, *r, *m, *pv;
        if (j && json_object_object_get_ex(j, "data", &d) &&
            json_object_object_get_ex(d, "result", &r) && json_object_array_length(r) > 0 &&
            json_object_object_get_ex(json_object_array_get_idx(r, 0), "metric", &m) &&
            json_object_object_get_ex(m, "pod", &pv))
            snprintf(pod, sizeof pod, "%s", json_object_get_string(pv));
        json_object_put(j);
    }
    snprintf(one, sizeof one, "process_start_time_seconds{namespace=\"app-00\", pod=\"%s\"}", pod);
    const char *tcp = "sum(increase(tcp_write_bytes_total{direction=\"inbound\", "
                      "namespace=\"app-00\", peer=\"src\"}[1m])) by (namespace, deployment)";
    const char *rate = "sum(rate(tcp_read_bytes_total{namespace=\"app-00\", direction=\"inbound\"}"
                       "[1m])) by (deployment)";
    const struct call calls[] = {
        {.expr = "vector(1)", .t = end},
        {.expr = one, .t = end},
        {.expr = tcp, .t = end},
        {.expr = rate, .t = end},
        {.expr = "vector(1)", .range = true, .start = end - 900, .end = end, .step = 30},
        {.expr = one, .range = true, .start = end - 900, .end = end, .step = 30},
        {.expr = tcp, .range = true, .start = end - 900, .end = end, .step = 30},
    };
    size_t nc = sizeof calls / sizeof *calls;
    int status = pod[0] ? 0 : 1;
    for (size_t i = 0; i < nc && status == 0; i++) {
        double sum = 0;
        if (!calls[i].range && !same_on_both(prom, mesh, &calls[i], true, &sum, NULL, NULL, &a, &b))
            status = 1;
        for (int w = 0; w < 20 && status == 0; w++) /* warm-up: threads, caches, allocator */
            if (run(prom, &calls[i], &a, &secs, &err) != 0 ||
                run(mesh, &calls[i], &a, &secs, &err) != 0 ||
                (base && run(base, &calls[i], &a, &secs, &err) != 0))
                status = 1;
    }
    double *lp = mp_xmalloc((size_t)o->runs * sizeof *lp),
           *lm = mp_xmalloc((size_t)o->runs * sizeof *lm);
    double *lb = mp_xmalloc((size_t)o->runs * sizeof *lb);
    double worst = 0;
    const char *worst_q = "";
    for (size_t i = 0; i < nc && status == 0; i++) {
        double ratio = bench_call(o, prom, mesh, base, &calls[i], lp, lm, lb, &a);
        if (ratio < 0)
            status = 1;
        if (ratio > worst) {
            worst = ratio;
            worst_q = calls[i].expr;
        }
    }
    if (status == 0) {
        printf("{\"summary\":{\"set\":\"floor\",\"queries\":%zu,\"runs\":%d,\"worst_ratio_median\":"
               "%.3f,\"target\":0.333,\"worst_query\":",
               nc, o->runs, worst);
        json_str(stdout, worst_q);
        printf("}}\n");
    } else {
        fprintf(stderr, "promql_diff: floor: %s\n", err.msg[0] ? err.msg : "answers differ");
    }
    mp_free(lp);
    mp_free(lm);
    mp_free(lb);
    mp_buf_fini(&a);
    mp_buf_fini(&b);
    return status;
}

/* ---- main ---------------------------------------------------------------------------------- */

/* --load wal|block: the mesh written once into o->data (or <work>/mesh) by meshprom's tsdb, its
 * WAL or its block hard-linked into each server's data dir (bench/load_1m.h). */
static int load_files(const struct opts *o, const char *work, bool block, int64_t *t0,
                      int64_t *t1, uint64_t *nsamples, uint64_t *nseries, struct mp_err *err)
{
    char data[600], dir[600];
    snprintf(data, sizeof data, "%s", o->data ? o->data : "");
    if (!o->data)
        snprintf(data, sizeof data, "%s/mesh", work);
    struct meshsim_gen_opts mo;
    gen_opts(o, &mo);
    struct load1m_stats st;
    int rc = load1m_prepare(&mo, data, &st, err);
    if (rc)
        return rc;
    printf("{\"load\":{\"via\":\"%s\",\"series\":%llu,\"samples\":%llu,\"pods\":%llu,"
           "\"wal_mib\":%.1f,\"block_mib\":%.1f,\"seconds\":%.1f,\"reused\":%s}}\n",
           block ? "block" : "wal", (unsigned long long)st.series,
           (unsigned long long)st.samples, (unsigned long long)st.pods,
           (double)st.wal_bytes / (1 << 20), (double)st.block_bytes / (1 << 20), st.seconds,
           st.reused ? "true" : "false");
    fflush(stdout);
    const char *const names[] = {"prometheus", "meshprom", "baseline"};
    for (size_t i = 0; i < (o->baseline ? 3u : 2u) && rc == 0; i++) {
        char cmd[700];
        snprintf(dir, sizeof dir, "%s/%s", work, names[i]);
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir); /* a kept workdir's last run */
        if (strchr(dir, '\'') || system(cmd) != 0)
            return mp_err_set(err, MP_EIO, "could not clear %s", dir);
        rc = load1m_link(data, &st, block, dir, err);
    }
    *t0 = st.t0_ms;
    *t1 = st.t1_ms;
    *nsamples = st.samples;
    *nseries = st.series;
    return rc;
}

/* peer_start, printing how long the server took to become ready (its WAL replay). */
static int start_timed(struct peer *p, const char *name, const char *binary, const char *work,
                       const char *cfg, const char *const *extra, int64_t timeout_ms,
                       struct mp_err *err)
{
    int64_t t = mp_mono_ns();
    int rc = peer_start(p, name, binary, work, cfg, extra, timeout_ms, err);
    if (rc == 0) {
        printf("{\"ready\":{\"server\":\"%s\",\"seconds\":%.1f}}\n", name,
               (double)(mp_mono_ns() - t) / 1e9);
        fflush(stdout);
    }
    return rc;
}

static bool on_path(const char *bin)
{
    if (strchr(bin, '/'))
        return access(bin, X_OK) == 0;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "command -v '%s' >/dev/null 2>&1", bin);
    return system(cmd) == 0;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: promql_diff [--mode diff|bench|floor] [--prometheus BIN] [--meshprom BIN] "
            "[--namespaces N] [--deployments M] [--replicas R] [--peers P] [--minutes T] "
            "[--runs K] [--load remote-write|wal|block] [--data DIR] [--range-minutes M] "
            "[--baseline BIN (floor)] "
            "[--step S] [--workdir DIR] [--keep] [--verbose]\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct opts o = {.mode = "diff", .prometheus = "prometheus", .meshprom = NULL,
                     .namespaces = 1, .deployments = 5, .replicas = 2, .peers = 2,
                     .minutes = 60, .runs = 20, .load = "remote-write",
                     .range_minutes = 15, .step_s = 30};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--keep"))
            o.keep = true;
        else if (!strcmp(a, "--verbose"))
            o.verbose = true;
        else if (!v)
            return usage();
        else if (!strcmp(a, "--mode"))
            o.mode = v, i++;
        else if (!strcmp(a, "--prometheus"))
            o.prometheus = v, i++;
        else if (!strcmp(a, "--meshprom"))
            o.meshprom = v, i++;
        else if (!strcmp(a, "--baseline"))
            o.baseline = v, i++;
        else if (!strcmp(a, "--workdir"))
            o.workdir = v, i++;
        else if (!strcmp(a, "--namespaces"))
            o.namespaces = atoi(v), i++;
        else if (!strcmp(a, "--deployments"))
            o.deployments = atoi(v), i++;
        else if (!strcmp(a, "--replicas"))
            o.replicas = atoi(v), i++;
        else if (!strcmp(a, "--peers"))
            o.peers = atoi(v), i++;
        else if (!strcmp(a, "--minutes"))
            o.minutes = atoi(v), i++;
        else if (!strcmp(a, "--runs"))
            o.runs = atoi(v), i++;
        else if (!strcmp(a, "--load"))
            o.load = v, i++;
        else if (!strcmp(a, "--data"))
            o.data = v, i++;
        else if (!strcmp(a, "--range-minutes"))
            o.range_minutes = atoi(v), i++;
        else if (!strcmp(a, "--step"))
            o.step_s = atoi(v), i++;
        else
            return usage();
    }
    bool diff = strcmp(o.mode, "diff") == 0, fixed = strcmp(o.mode, "floor") == 0;
    bool block = strcmp(o.load, "block") == 0;
    bool wal = block || strcmp(o.load, "wal") == 0; /* from files: no remote-write */
    if ((!diff && !fixed && strcmp(o.mode, "bench") != 0) ||
        (!wal && strcmp(o.load, "remote-write") != 0) || o.runs < 1 || o.minutes < 5 ||
        o.range_minutes < 1 || o.step_s < 1 || !o.meshprom || (o.baseline && !fixed))
        return usage();
    if (!on_path(o.prometheus)) {
        printf("{\"skip\":\"%s not found: install Debian's prometheus package\"}\n", o.prometheus);
        return SKIP;
    }
    curl_global_init(CURL_GLOBAL_ALL);
    char tmpl[] = "/tmp/promql_diff_XXXXXX";
    const char *work = o.workdir;
    if (!work && !(work = mkdtemp(tmpl))) {
        perror("mkdtemp");
        return 1;
    }
    if (o.workdir && mkdir(work, 0755) != 0 && errno != EEXIST) {
        perror(work);
        return 1;
    }
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s/prometheus.yml", work);
    FILE *f = fopen(cfg, "w");
    if (!f) {
        perror(cfg);
        return 1;
    }
    fputs("global:\n  scrape_interval: 10s\n", f);
    fclose(f);

    /* a query over all of 1M series takes Prometheus minutes on a busy 2-core machine */
    static const char *const extra[] = {"--web.enable-remote-write-receiver",
                                        "--storage.tsdb.retention.time=3650d",
                                        "--query.timeout=15m", NULL};
    struct peer prom, mesh;
    struct mp_err err = {0};
    int status = 1;
    int64_t t0 = 0, t1 = 0;
    uint64_t nsamples = 0, nseries = 0;
    if (wal && load_files(&o, work, block, &t0, &t1, &nsamples, &nseries, &err) != 0) {
        fprintf(stderr, "promql_diff: writing the data: %s\n", err.msg);
        goto out_dir;
    }
    /* a replay of 1M series x 1 h takes Prometheus minutes on 2 cores */
    int64_t ready_ms = wal ? 1800000 : 60000;
    if (start_timed(&prom, "prometheus", o.prometheus, work, cfg, extra, ready_ms, &err) != 0) {
        fprintf(stderr, "promql_diff: %s\n", err.msg);
        goto out_dir;
    }
    if (start_timed(&mesh, "meshprom", o.meshprom, work, cfg, extra, ready_ms, &err) != 0) {
        fprintf(stderr, "promql_diff: %s\n", err.msg);
        peer_stop(&prom);
        goto out_dir;
    }
    struct peer base = {0};
    if (o.baseline &&
        start_timed(&base, "baseline", o.baseline, work, cfg, extra, ready_ms, &err) != 0) {
        fprintf(stderr, "promql_diff: %s\n", err.msg);
        peer_stop(&mesh);
        peer_stop(&prom);
        goto out_dir;
    }
    struct peer *both[] = {&prom, &mesh, &base};
    if (!wal && load(&o, both, o.baseline ? 3 : 2, &t0, &t1, &nsamples, &nseries, &err) != 0) {
        fprintf(stderr, "promql_diff: loading: %s\n", err.msg);
    } else if (diff) {
        status = diff_mode(&o, &prom, &mesh, t0, t1);
    } else {
        print_rss("after load", &prom, &mesh);
        status = verify(&prom, &mesh, t0, t1, nsamples, nseries);
        if (status == 0)
            status = fixed ? floor_mode(&o, &prom, &mesh, o.baseline ? &base : NULL, t1)
                           : bench_mode(&o, &prom, &mesh, t1);
        print_rss("after queries", &prom, &mesh);
    }
    peer_stop(&base);
    peer_stop(&mesh);
    peer_stop(&prom);
out_dir:
    if (!o.keep && !o.workdir) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", work);
        if (system(cmd) != 0)
            fprintf(stderr, "promql_diff: could not remove %s\n", work);
    } else {
        fprintf(stderr, "promql_diff: kept %s\n", work);
    }
    curl_global_cleanup();
    return status;
}
