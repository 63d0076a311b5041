/* SPDX-License-Identifier: Apache-2.0 */
/* bench/bench_scrape_parse.c: scrape-body parser speed on a linkerd2-proxy /metrics page
 * (spec linkerd-workload.md 1.1-1.11): legacy families first (request/response/latency
 * histograms with 26 integer ms buckets, tcp_*), then the prometheus-client families
 * (outbound policy routes, balancers, process, build info) with UNIT lines, float bucket
 * bounds and "# EOF". About 1500 series, generated from a fixed seed. One op = one whole
 * body parsed, every entry pulled; the body is valid for both the text parser (what
 * Prometheus uses, as the proxy sends text/plain) and the OpenMetrics parser.
 *   build/release/bench/bench_scrape_parse [--smoke] [name-filter] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "common/str.h"
#include "scraper/scraper.h"

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static struct mp_buf g_body;
static size_t g_series;

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line || mp_buf_append(&g_body, line, (size_t)n) != 0)
        abort();
}

static void sample(const char *name, const char *labels, const char *value)
{
    out("%s%s%s%s %s\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "", value);
    g_series++;
}

static const char *const workloads[] = {"web",   "voting",  "emoji",  "vote-bot",
                                        "books", "authors", "webapp", "traffic"};

/* endpoint labels as the proxy orders them (linkerd-workload.md 1.3) */
static void endpoint_labels(char *buf, size_t cap, int i, bool outbound)
{
    const char *w = workloads[i % 8];
    if (!outbound) {
        snprintf(buf, cap,
                 "direction=\"inbound\",target_addr=\"10.244.2.17:%d\",target_ip=\"10.244.2.17\","
                 "target_port=\"%d\",tls=\"true\",client_id=\"%s.emojivoto.serviceaccount."
                 "identity.linkerd.cluster.local\",srv_group=\"\",srv_kind=\"default\","
                 "srv_name=\"all-unauthenticated\",srv_port=\"%d\",route_group=\"\","
                 "route_kind=\"default\",route_name=\"default\",authz_group=\"\","
                 "authz_kind=\"default\",authz_name=\"all-unauthenticated\"",
                 8080 + i % 2, 8080 + i % 2, w, 8080 + i % 2);
        return;
    }
    snprintf(buf, cap,
             "direction=\"outbound\",authority=\"%s-svc.emojivoto.svc.cluster.local:8080\","
             "target_addr=\"10.244.1.%d:8080\",target_ip=\"10.244.1.%d\",target_port=\"8080\","
             "tls=\"true\",server_id=\"%s.emojivoto.serviceaccount.identity.linkerd.cluster."
             "local\",dst_control_plane_ns=\"linkerd\",dst_deployment=\"%s\","
             "dst_namespace=\"emojivoto\",dst_pod=\"%s-5c8d6b7f9d-wq4k%d\","
             "dst_pod_template_hash=\"5c8d6b7f9d\",dst_service=\"%s-svc\","
             "dst_serviceaccount=\"%s\",dst_zone=\"\"",
             w, 20 + i, 20 + i, w, w, w, i, w, w);
}

static void gen(void)
{
    uint64_t seed = 0x11d4e7;
    char lab[2048], l2[2300], v[64];
    static const int ms_bounds[] = {1,    2,    3,     4,     5,     10,    20,   30,   40,
                                    50,   100,  200,   300,   400,   500,   1000, 2000, 3000,
                                    4000, 5000, 10000, 20000, 30000, 40000, 50000};
    const int inbound = 4, outbound = 20;

    out("# HELP request_total Total count of HTTP requests.\n# TYPE request_total counter\n");
    for (int i = 0; i < inbound + outbound; i++) {
        endpoint_labels(lab, sizeof lab, i, i >= inbound);
        snprintf(v, sizeof v, "%llu", (unsigned long long)(rnd(&seed) % 100000));
        sample("request_total", lab, v);
    }
    out("# HELP response_latency_ms Elapsed times between a request's headers being received "
        "and its response stream completing\n# TYPE response_latency_ms histogram\n");
    for (int i = 0; i < inbound + outbound; i++) {
        endpoint_labels(lab, sizeof lab, i, i >= inbound);
        for (int sc = 0; sc < (i % 3 == 0 ? 2 : 1); sc++) {
            const char *code = sc ? "503" : "200";
            uint64_t c = 0;
            for (size_t b = 0; b <= sizeof ms_bounds / sizeof ms_bounds[0]; b++) {
                c += b < 12 ? rnd(&seed) % 500 : rnd(&seed) % 3;
                char le[16];
                if (b < sizeof ms_bounds / sizeof ms_bounds[0])
                    snprintf(le, sizeof le, "%d", ms_bounds[b]);
                else
                    snprintf(le, sizeof le, "+Inf");
                snprintf(l2, sizeof l2, "%s,status_code=\"%s\",le=\"%s\"", lab, code, le);
                snprintf(v, sizeof v, "%llu", (unsigned long long)c);
                sample("response_latency_ms_bucket", l2, v);
            }
            snprintf(l2, sizeof l2, "%s,status_code=\"%s\"", lab, code);
            snprintf(v, sizeof v, "%llu", (unsigned long long)c);
            sample("response_latency_ms_count", l2, v);
            snprintf(v, sizeof v, "%.17g", (double)c * 3.7 + 0.5594713199999999);
            sample("response_latency_ms_sum", l2, v);
        }
    }
    out("# HELP response_total Total count of HTTP responses.\n# TYPE response_total counter\n");
    for (int i = 0; i < inbound + outbound; i++) {
        endpoint_labels(lab, sizeof lab, i, i >= inbound);
        for (int k = 0; k < 2; k++) {
            snprintf(l2, sizeof l2,
                     "%s,status_code=\"200\",classification=\"%s\",grpc_status=\"%s\",error=\"\"",
                     lab, k ? "failure" : "success", k ? "2" : "0");
            snprintf(v, sizeof v, "%llu", (unsigned long long)(rnd(&seed) % 100000));
            sample("response_total", l2, v);
        }
    }
    static const char *tcp[] = {"tcp_open_total", "tcp_open_connections", "tcp_read_bytes_total",
                                "tcp_write_bytes_total", "tcp_close_total"};
    for (int f = 0; f < 5; f++) {
        out("# HELP %s TCP transport metric.\n# TYPE %s %s\n", tcp[f], tcp[f],
            f == 1 ? "gauge" : "counter");
        for (int i = 0; i < inbound + outbound; i++) {
            endpoint_labels(lab, sizeof lab, i, i >= inbound);
            snprintf(l2, sizeof l2, "%s,peer=\"%s\"%s", lab, i >= inbound ? "dst" : "src",
                     f == 4 ? ",errno=\"\"" : "");
            snprintf(v, sizeof v, "%llu", (unsigned long long)(rnd(&seed) % 10000000));
            sample(tcp[f], l2, v);
        }
    }

    /* prometheus-client families (linkerd-workload.md 1.7, 1.9-1.11) */
    static const char *sec_bounds[] = {"0.025", "0.05", "0.1",  "0.25",
                                       "0.5",   "1.0",  "10.0", "+Inf"};
    static const char *frame_bounds[] = {"128.0", "1024.0", "10240.0", "+Inf"};
    const char *hist[] = {"outbound_http_route_request_duration_seconds",
                          "outbound_http_route_backend_response_duration_seconds",
                          "outbound_http_route_request_frame_size_bytes",
                          "outbound_http_balancer_queue_latency_seconds"};
    for (int h = 0; h < 4; h++) {
        bool frames = h == 2;
        out("# HELP %s Route metric.\n# TYPE %s histogram\n# UNIT %s %s\n", hist[h], hist[h],
            hist[h], frames ? "bytes" : "seconds");
        for (int r = 0; r < 8; r++) {
            const char *w = workloads[r];
            snprintf(lab, sizeof lab,
                     "parent_group=\"core\",parent_kind=\"Service\",parent_namespace="
                     "\"emojivoto\",parent_name=\"%s-svc\",parent_port=\"8080\","
                     "parent_section_name=\"\",route_group=\"\",route_kind=\"default\","
                     "route_namespace=\"\",route_name=\"http\",hostname=\"\"%s%s%s",
                     w,
                     h == 1 ? ",backend_group=\"core\",backend_kind=\"Service\","
                              "backend_namespace=\"emojivoto\",backend_name=\""
                            : "",
                     h == 1 ? w : "",
                     h == 1 ? "-svc\",backend_port=\"8080\","
                              "backend_section_name=\"\""
                            : "");
            uint64_t c = 0;
            size_t nb = frames ? 4 : 8;
            for (size_t b = 0; b < nb; b++) {
                c += rnd(&seed) % 200;
                snprintf(l2, sizeof l2, "%s,le=\"%s\"", lab,
                         frames ? frame_bounds[b] : sec_bounds[b]);
                snprintf(v, sizeof v, "%llu", (unsigned long long)c);
                char name[128];
                snprintf(name, sizeof name, "%s_bucket", hist[h]);
                sample(name, l2, v);
            }
            char name[128];
            snprintf(name, sizeof name, "%s_sum", hist[h]);
            snprintf(v, sizeof v, "%.17g", (double)c * 0.0123456789);
            sample(name, lab, v);
            snprintf(name, sizeof name, "%s_count", hist[h]);
            snprintf(v, sizeof v, "%llu", (unsigned long long)c);
            sample(name, lab, v);
        }
    }
    static const char *counters[] = {
        "outbound_http_route_request_statuses",  "outbound_http_route_retry_requests",
        "outbound_http_route_backend_requests",  "outbound_http_balancer_p2c_updates",
        "outbound_http_balancer_queue_requests", "control_identity_cert_refreshes"};
    for (int f = 0; f < 6; f++) {
        out("# HELP %s Counter.\n# TYPE %s counter\n", counters[f], counters[f]);
        for (int r = 0; r < 8; r++) {
            for (int k = 0; k < (f == 0 || f == 3 ? 3 : 1); k++) {
                snprintf(lab, sizeof lab,
                         "parent_group=\"core\",parent_kind=\"Service\",parent_namespace="
                         "\"emojivoto\",parent_name=\"%s-svc\",parent_port=\"8080\","
                         "parent_section_name=\"\",backend_name=\"%s-svc\",op=\"%s\"",
                         workloads[r], workloads[r],
                         k == 0   ? "Reset"
                         : k == 1 ? "Add"
                                  : "Remove");
                char name[128];
                snprintf(name, sizeof name, "%s_total", counters[f]);
                snprintf(v, sizeof v, "%llu", (unsigned long long)(rnd(&seed) % 1000000));
                sample(name, lab, v);
            }
        }
    }
    out("# HELP process_start_time_seconds Time that the process started (in seconds since the "
        "UNIX epoch)\n# TYPE process_start_time_seconds gauge\n"
        "# UNIT process_start_time_seconds seconds\n");
    sample("process_start_time_seconds", "", "1764633600");
    out("# HELP process_cpu_seconds Total user and system CPU time spent in seconds.\n"
        "# TYPE process_cpu_seconds counter\n# UNIT process_cpu_seconds seconds\n");
    sample("process_cpu_seconds_total", "", "12.34");
    out("# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
        "# TYPE process_resident_memory_bytes gauge\n# UNIT process_resident_memory_bytes bytes\n");
    sample("process_resident_memory_bytes", "", "24117248");
    out("# HELP proxy_build_info Proxy build info.\n# TYPE proxy_build_info gauge\n");
    sample("proxy_build_info",
           "date=\"2025-10-01T00:00:00Z\",git_sha=\"4d3c2b1a\",profile=\"release\","
           "vendor=\"linkerd\",version=\"v2.326.0\"",
           "1");
    out("# EOF\n");
}

struct arg {
    enum scrape_format format;
    size_t samples;
    int rc;
};

static void bench_parse(void *p_, uint64_t iters)
{
    struct arg *a = p_;
    struct scrape_label lab[64];
    struct scrape_entry e = {.label = lab, .label_cap = 64};
    for (uint64_t i = 0; i < iters; i++) {
        struct scrape_parser p;
        scrape_parser_init(&p, a->format, g_body.data, g_body.len, 0);
        size_t n = 0;
        double sum = 0;
        int rc;
        while ((rc = scrape_parser_next(&p, &e, NULL)) == 0) {
            if (e.kind == SCRAPE_ENTRY_SERIES) {
                n++;
                sum += e.value;
            }
        }
        bench_keep(sum);
        a->samples = n;
        a->rc = rc;
    }
}

int main(int argc, char **argv)
{
    struct bench_opts o;
    bench_parse_args(argc, argv, &o);
    mp_buf_init(&g_body, 0);
    gen();
    bench_header();
    static const struct {
        const char *name;
        enum scrape_format format;
    } cases[] = {
        {"BenchmarkScrapeParse/linkerd_proxy_text", SCRAPE_FORMAT_TEXT},
        {"BenchmarkScrapeParse/linkerd_proxy_openmetrics", SCRAPE_FORMAT_OPENMETRICS},
    };
    int status = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        if (!bench_selected(&o, cases[c].name))
            continue;
        struct arg a = {cases[c].format, 0, 0};
        struct bench_result r = bench_run(&o, bench_parse, &a);
        if (a.rc != MP_EEOF || a.samples != g_series) {
            fprintf(stderr, "%s: rc %d, %zu of %zu samples\n", cases[c].name, a.rc, a.samples,
                    g_series);
            status = 1;
            continue;
        }
        double ns_op = (double)r.ns / (double)r.iters;
        bench_report(cases[c].name, r,
                     "\t%8.1f MB/s\t%8.2f ns/sample\t%6zu samples/op\t%8zu B/op\t0 allocs/op",
                     (double)g_body.len * 1e3 / ns_op, ns_op / (double)g_series, g_series,
                     g_body.len);
    }
    mp_buf_fini(&g_body);
    return status;
}
