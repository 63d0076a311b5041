/* SPDX-License-Identifier: Apache-2.0 */
/* tests/web/test_server.c: the HTTP server over real sockets (127.0.0.1 only) with libcurl:
 * lifecycle endpoints per protocols.md 4.8 for every method and flag state, /metrics as
 * valid text format 0.0.4 (strict line checker below), 404/405, parameter merging, body cap,
 * CORS, compression, route prefix, 64 concurrent requests in both threading modes. Every
 * test stops the servers it starts; every loop is bounded. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <dirent.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/metrics.h"
#include "common/time.h"
#include "web/web.h"
#include "support_http.h"

/* ---- helpers ------------------------------------------------------------------------ */

/* Server under test: 127.0.0.1:0, own registry. */
struct fixture {
    struct web_server *srv;
    struct mp_metrics_registry *reg;
    char base[64];
};

static void start(struct fixture *f, struct web_options *opt)
{
    f->srv = wt_server_create(opt, &f->reg);
}

static void run(struct fixture *f)
{
    wt_server_start(f->srv, f->base, sizeof f->base);
}

static void finish(struct fixture *f)
{
    web_server_destroy(f->srv);
    mp_metrics_registry_destroy(f->reg);
    f->srv = NULL;
    f->reg = NULL;
}

static const char *url(const struct fixture *f, const char *path)
{
    return wt_url(f->base, path);
}

TestSuite(web, .init = wt_quiet);

/* ---- text format checker ------------------------------------------------------------ */

static bool is_name(const char **p, bool metric)
{
    const char *s = *p;
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' || (metric && *s == ':')))
        return false;
    while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' ||
           (*s >= '0' && *s <= '9') || (metric && *s == ':'))
        s++;
    *p = s;
    return true;
}

static bool is_value(const char *s)
{
    if (strcmp(s, "+Inf") == 0 || strcmp(s, "-Inf") == 0 || strcmp(s, "NaN") == 0)
        return true;
    char *end;
    strtod(s, &end);
    return end != s && *end == '\0';
}

/* Strict checker for what a 0.0.4 producer should emit: HELP then TYPE per family, families
 * in name order, samples after their TYPE, exact spacing, quoted and escaped label values. */
static void check_exposition(const char *text)
{
    cr_assert(strlen(text) > 0 && text[strlen(text) - 1] == '\n', "page must end in newline");
    char fam[256] = "", prev[256] = "";
    char *copy = strdup(text);
    int lineno = 0;
    for (char *save = NULL, *ln = strtok_r(copy, "\n", &save); ln && lineno < 100000;
         ln = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (strncmp(ln, "# HELP ", 7) == 0) {
            const char *p = ln + 7, *n0 = p;
            cr_assert(is_name(&p, true) && *p == ' ', "line %d: %s", lineno, ln);
            snprintf(fam, sizeof fam, "%.*s", (int)(p - n0), n0);
            cr_assert(strcmp(prev, fam) < 0, "line %d: families out of order: %s", lineno, ln);
            snprintf(prev, sizeof prev, "%s", fam);
            continue;
        }
        if (strncmp(ln, "# TYPE ", 7) == 0) {
            const char *p = ln + 7, *n0 = p;
            cr_assert(is_name(&p, true) && *p == ' ', "line %d: %s", lineno, ln);
            cr_assert(strncmp(n0, fam, strlen(fam)) == 0 && (size_t)(p - n0) == strlen(fam),
                      "line %d: TYPE without HELP: %s", lineno, ln);
            p++;
            cr_assert(strcmp(p, "counter") == 0 || strcmp(p, "gauge") == 0 ||
                          strcmp(p, "histogram") == 0 || strcmp(p, "summary") == 0 ||
                          strcmp(p, "untyped") == 0,
                      "line %d: bad type %s", lineno, p);
            continue;
        }
        cr_assert(ln[0] != '#', "line %d: unexpected comment %s", lineno, ln);
        const char *p = ln;
        cr_assert(is_name(&p, true), "line %d: bad name: %s", lineno, ln);
        cr_assert(strncmp(ln, fam, strlen(fam)) == 0, "line %d: sample outside family %s: %s",
                  lineno, fam, ln);
        if (*p == '{') {
            p++;
            while (*p != '}') {
                cr_assert(is_name(&p, false), "line %d: bad label name: %s", lineno, ln);
                cr_assert(p[0] == '=' && p[1] == '"', "line %d: %s", lineno, ln);
                p += 2;
                while (*p && *p != '"') {
                    if (*p == '\\') {
                        cr_assert(p[1] == '\\' || p[1] == '"' || p[1] == 'n', "line %d: bad escape",
                                  lineno);
                        p++;
                    }
                    p++;
                }
                cr_assert(*p == '"', "line %d: unterminated value: %s", lineno, ln);
                p++;
                if (*p == ',')
                    p++;
                else
                    cr_assert(*p == '}', "line %d: %s", lineno, ln);
            }
            p++;
        }
        cr_assert(*p == ' ', "line %d: no value separator: %s", lineno, ln);
        cr_assert(is_value(p + 1), "line %d: bad value: %s", lineno, ln);
    }
    free(copy);
}

/* ---- lifecycle endpoints ------------------------------------------------------------ */

Test(web, healthy_and_ready)
{
    struct fixture f;
    struct web_options o;
    web_options_init(&o);
    start(&f, &o);
    run(&f);
    struct reply r;
    request("GET", url(&f, "/-/healthy"), &r);
    cr_assert_eq(r.code, 200);
    cr_assert_str_eq(r.body, "Prometheus Server is Healthy.\n");
    char ct[128];
    cr_assert(reply_header(&r, "Content-Type", ct, sizeof ct));
    cr_assert_str_eq(ct, "text/plain; charset=utf-8");
    reply_free(&r);
    request("HEAD", url(&f, "/-/healthy"), &r);
    cr_assert_eq(r.code, 200);
    cr_assert_eq(r.len, 0);
    reply_free(&r);
    request("POST", url(&f, "/-/healthy"), &r);
    cr_assert_eq(r.code, 405);
    cr_assert_str_eq(r.body, "Method Not Allowed\n");
    char allow[64];
    cr_assert(reply_header(&r, "Allow", allow, sizeof allow));
    cr_assert_str_eq(allow, "GET, HEAD");
    reply_free(&r);

    request("GET", url(&f, "/-/ready"), &r);
    cr_assert_eq(r.code, 503);
    cr_assert_str_eq(r.body, "Service Unavailable");
    reply_free(&r);
    request("HEAD", url(&f, "/-/ready"), &r);
    cr_assert_eq(r.code, 503);
    reply_free(&r);
    web_server_set_ready(f.srv, true);
    request("GET", url(&f, "/-/ready"), &r);
    cr_assert_eq(r.code, 200);
    cr_assert_str_eq(r.body, "Prometheus Server is Ready.\n");
    reply_free(&r);
    request("HEAD", url(&f, "/-/ready"), &r);
    cr_assert_eq(r.code, 200);
    reply_free(&r);
    finish(&f);
}

struct life {
    atomic_int reloads, quits;
    bool fail;
};

static int do_reload(void *ctx, struct mp_err *err)
{
    struct life *l = ctx;
    atomic_fetch_add(&l->reloads, 1);
    if (l->fail)
        return mp_err_set(err, MP_EPARSE, "parsing YAML file prometheus.yml: bad indent");
    return 0;
}

static void do_quit(void *ctx)
{
    struct life *l = ctx;
    atomic_fetch_add(&l->quits, 1);
}

Test(web, lifecycle_disabled)
{
    struct life l = {0};
    struct fixture f;
    struct web_options o;
    web_options_init(&o);
    o.reload = do_reload;
    o.quit = do_quit;
    o.lifecycle_ctx = &l;
    start(&f, &o);
    run(&f);
    static const char *const paths[] = {"/-/reload", "/-/quit"};
    for (int i = 0; i < 2; i++) {
        struct reply r;
        request_h("POST", url(&f, paths[i]), "", NULL, &r);
        cr_assert_eq(r.code, 403, "%s", paths[i]);
        cr_assert_str_eq(r.body, "Lifecycle API is not enabled.");
        reply_free(&r);
        request_h("PUT", url(&f, paths[i]), "", NULL, &r);
        cr_assert_eq(r.code, 403);
        cr_assert_str_eq(r.body, "Lifecycle API is not enabled.");
        reply_free(&r);
        request("GET", url(&f, paths[i]), &r);
        cr_assert_eq(r.code, 405);
        cr_assert_str_eq(r.body, "Only POST or PUT requests allowed");
        reply_free(&r);
        request("DELETE", url(&f, paths[i]), &r);
        cr_assert_eq(r.code, 405);
        reply_free(&r);
    }
    cr_assert_eq(atomic_load(&l.reloads), 0);
    cr_assert_eq(atomic_load(&l.quits), 0);
    finish(&f);
}

Test(web, lifecycle_enabled_reload_and_quit)
{
    struct life l = {0};
    struct fixture f;
    struct web_options o;
    web_options_init(&o);
    o.enable_lifecycle = true;
    o.reload = do_reload;
    o.quit = do_quit;
    o.lifecycle_ctx = &l;
    start(&f, &o);
    run(&f);
    struct reply r;
    request_h("POST", url(&f, "/-/reload"), "", NULL, &r);
    cr_assert_eq(r.code, 200);
    cr_assert_eq(r.len, 0);
    reply_free(&r);
    request_h("PUT", url(&f, "/-/reload"), "", NULL, &r);
    cr_assert_eq(r.code, 200);
    reply_free(&r);
    l.fail = true;
    request_h("POST", url(&f, "/-/reload"), "", NULL, &r);
    cr_assert_eq(r.code, 500);
    cr_assert_str_eq(r.body,
                     "failed to reload config: parsing YAML file prometheus.yml: bad indent\n");
    reply_free(&r);
    request("GET", url(&f, "/-/reload"), &r);
    cr_assert_eq(r.code, 405);
    cr_assert_str_eq(r.body, "Only POST or PUT requests allowed");
    reply_free(&r);
    cr_assert_eq(atomic_load(&l.reloads), 3);

    request("GET", url(&f, "/-/quit"), &r);
    cr_assert_eq(r.code, 405);
    reply_free(&r);
    request_h("POST", url(&f, "/-/quit"), "", NULL, &r);
    cr_assert_eq(r.code, 200);
    cr_assert_str_eq(r.body, "Requesting termination... Goodbye!");
    reply_free(&r);
    request_h("PUT", url(&f, "/-/quit"), "", NULL, &r);
    cr_assert_eq(r.code, 200);
    cr_assert_str_eq(r.body, "Termination already in progress.");
    reply_free(&r);
    cr_assert_eq(atomic_load(&l.quits), 1);
    finish(&f);
}

/* ---- routing ------------------------------------------------------------------------ */

static void h_echo(void *ctx, const struct web_request *req, struct web_response *resp)
{
    struct mp_buf b;
    mp_buf_init(&b, 0);
    struct mp_str v, many[8];
    (void)!mp_buf_appendf(&b, "method=%s path=%.*s pattern=%s\n", web_request_method(req),
                          (int)web_request_path(req).len, web_request_path(req).ptr,
                          web_request_pattern(req));
    if (web_request_param(req, "a", &v))
        (void)!mp_buf_appendf(&b, "a=%.*s\n", (int)v.len, v.ptr);
    if (web_request_query_param(req, "a", &v))
        (void)!mp_buf_appendf(&b, "query a=%.*s\n", (int)v.len, v.ptr);
    size_t n = web_request_params(req, "match[]", many, 8);
    for (size_t i = 0; i < n && i < 8; i++)
        (void)!mp_buf_appendf(&b, "match[]=%.*s\n", (int)many[i].len, many[i].ptr);
    struct mp_str name = web_request_path_param(req, "name");
    if (name.len)
        (void)!mp_buf_appendf(&b, "name=%.*s\n", (int)name.len, name.ptr);
    struct mp_str rest = web_request_path_param(req, "rest");
    if (rest.len)
        (void)!mp_buf_appendf(&b, "rest=%.*s\n", (int)rest.len, rest.ptr);
    (void)!mp_buf_appendf(&b, "body=%zu\n", web_request_body(req).len);
    const char *h = web_request_header(req, "x-test");
    if (h)
        (void)!mp_buf_appendf(&b, "x-test=%s\n", h);
    web_response_content_type(resp, "application/json");
    web_response_header(resp, "X-Handler", "echo");
    web_response_body_take(resp, &b);
}

static void add_echo_routes(struct fixture *f)
{
    struct mp_err err = {0};
    cr_assert_eq(web_server_route(f->srv, "GET|POST", "/api/v1/echo", h_echo, NULL, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(web_server_route(f->srv, "GET", "/api/v1/label/:name/values", h_echo, NULL, &err),
                 0, "%s", err.msg);
    cr_assert_eq(web_server_route(f->srv, "GET", "/api/v1/status/walreplay", h_echo, NULL, &err),
                 0);
    cr_assert_eq(web_server_route(f->srv, "GET", "/static/*rest", h_echo, NULL, &err), 0);
}

Test(web, unknown_path_wrong_method_and_path_params)
{
    struct fixture f;
    struct web_options o;
    web_options_init(&o);
    start(&f, &o);
    add_echo_routes(&f);
    run(&f);
    web_server_set_ready(f.srv, true);
    struct reply r;
    request("GET", url(&f, "/nope"), &r);
    cr_assert_eq(r.code, 404);
    cr_assert_str_eq(r.body, "404 page not found\n");
    reply_free(&r);
    request("GET", url(&f, "/api/v1/label//values"), &r);
    cr_assert_eq(r.code, 404, "an empty :name segment does not match");
    reply_free(&r);
    request_h("POST", url(&f, "/api/v1/label/job/values"), "", NULL, &r);
    cr_assert_eq(r.code, 405);
    reply_free(&r);
    request("GET", url(&f, "/api/v1/label/job/values"), &r);
    cr_assert_eq(r.code, 200);
    cr_assert(strstr(r.body, "pattern=/api/v1/label/:name/values\n"));
    cr_assert(strstr(r.body, "name=job\n"));
    char v[64];
    cr_assert(reply_header(&r, "X-Handler", v, sizeof v));
    cr_assert(reply_header(&r, "Content-Type", v, sizeof v));
    cr_assert_str_eq(v, "application/json");
    reply_free(&r);
    request("GET", url(&f, "/static/js/app.js"), &r);
    cr_assert_eq(r.code, 200);
    cr_assert(strstr(r.body, "rest=js/app.js\n"), "%s", r.body);
    reply_free(&r);
    struct curl_slist *h = curl_slist_append(NULL, "X-Test: yes");
    request_h("GET", url(&f, "/api/v1/echo"), NULL, h, &r);
    curl_slist_free_all(h);
    cr_assert(strstr(r.body, "x-test=yes\n"));
    reply_free(&r);
    finish(&f);
}

Test(web, route_registration_errors)
{
    struct fixture f;
    struct web_options o;
    web_options_init(&o);
    start(&f, &o);
    struct mp_err err = {0};
    cr_assert_eq(web_server_route(f.srv, "GET", "no-slash", h_echo, NULL, &err), MP_EINVAL);
    cr_assert_eq(web_server_route(f.srv, "FETCH", "/x", h_echo, NULL, NULL), MP_EINVAL);
    cr_assert_eq(web_server_route(f.srv, "", "/x", h_echo, NULL, NULL), MP_EINVAL);
    cr_assert_eq(web_server_route(f.srv, "GET", "/a/*rest/more", h_echo, NULL, NULL), MP_EINVAL);
    cr_assert_eq(web_server_route(f.srv, "GET", "/metrics", h_echo, NULL, NULL), MP_EEXISTS);
    cr_assert_eq(web_server_route(f.srv, "POST", "/metrics", h_echo, NULL, NULL), 0);
    run(&f);
    cr_assert_eq(web_server_route(f.srv, "GET", "/late", h_echo, NULL, NULL), MP_EINVAL);
    finish(&f);
}

Test(web, query_and_form_body_merge)
{
    struct fixture f;
    struct web_options o;
    web_options_init(&o);
    start(&f, &o);
    add_echo_routes(&f);
    run(&f);
    web_server_set_ready(f.srv, true);
    struct reply r;
    request_h("POST", url(&f, "/api/v1/echo?a=q1&match[]=q%7Bx%7D&match%5B%5D=q+2"),
              "a=b+1&match[]=up%7Bjob%3D%22a%22%7D&match[]=b2", NULL, &r);
    cr_assert_eq(r.code, 200);
    cr_assert_str_eq(r.body, "method=POST path=/api/v1/echo pattern=/api/v1/echo\n"
                             "a=b 1\n"
                             "query a=q1\n"
                             "match[]=up{job=\"a\"}\n"
                             "match[]=b2\n"
                             "match[]=q{x}\n"
                             "match[]=q 2\n"
                             "body=46\n");
    reply_free(&r);
    /* a body that is not a form is not parsed, and GET bodies never are */
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    request_h("POST", url(&f, "/api/v1/echo?a=q"), "a=b", h, &r);
    curl_slist_free_all(h);
    cr_assert(strstr(r.body, "a=q\n"), "%s", r.body);
    reply_free(&r);
    request_h("GET", url(&f, "/api/v1/echo?a=g"), "a=b", NULL, &r);
    cr_assert(strstr(r.body, "a=g\n"), "%s", r.body);
    reply_free(&r);
    finish(&f);
}

Test(web, body_cap_gives_413)
{
    struct fixture f;
    struct web_options o;
    web_options_init(&o);
    o.max_body_bytes = 1024;
    start(&f, &o);
    add_echo_routes(&f);
    run(&f);
    web_server_set_ready(f.srv, true);
    char *big = malloc(4097);
    memset(big, 'x', 4096);
    big[4096] = '\0';
    struct reply r;
    big[1024] = '\0'; /* exactly at the cap: accepted */
    request_h("POST", url(&f, "/api/v1/echo"), big, NULL, &r);
    cr_assert_eq(r.code, 200);
    cr_assert(strstr(r.body, "body=1024\n"));
    reply_free(&r);
    big[1024] = 'x';
    big[1025] = '\0'; /* one past */
    request_h("POST", url(&f, "/api/v1/echo"), big, NULL, &r);
    cr_assert_eq(r.code, 413);
    cr_assert_str_eq(r.body, "http: request body too large\n");
    reply_free(&r);
    big[1025] = 'x';
    /* chunked upload without Content-Length: counted while reading */
    struct curl_slist *h = curl_slist_append(NULL, "Transfer-Encoding: chunked");
    memset(&r, 0, sizeof r);
    CURL *c = easy_for("POST", url(&f, "/api/v1/echo"), big, 4096, h, &r);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.code);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    cr_assert_eq(r.code, 413);
    reply_free(&r);
    free(big);
    finish(&f);
}

Test(web, readiness_gate_on_api)
{
    struct fixture f;
    struct web_options o;
    web_options_init(&o);
    start(&f, &o);
    add_echo_routes(&f);
    run(&f);
    struct reply r;
    request("GET", url(&f, "/api/v1/echo"), &r);
    cr_assert_eq(r.code, 503);
    cr_assert_str_eq(r.body, "Service Unavailable");
    reply_free(&r);
    request("GET", url(&f, "/api/v1/status/walreplay"), &r);
    cr_assert_eq(r.code, 200);
    reply_free(&r);
    web_server_set_ready(f.srv, true);
    request("GET", url(&f, "/api/v1/echo"), &r);
    cr_assert_eq(r.code, 200);
    reply_free(&r);
    finish(&f);
}

Test(web, cors_on_api_paths_only)
{
    struct fixture f;
    struct web_options o;
    web_options_init(&o);
    start(&f, &o);
    add_echo_routes(&f);
    run(&f);
    web_server_set_ready(f.srv, true);
    struct curl_slist *h = curl_slist_append(NULL, "Origin: https://grafana.example");
    struct reply r;
    char v[128];
    request_h("GET", url(&f, "/api/v1/echo"), NULL, h, &r);
    cr_assert(reply_header(&r, "Access-Control-Allow-Origin", v, sizeof v));
    cr_assert_str_eq(v, "*");
    cr_assert(reply_header(&r, "Access-Control-Allow-Methods", v, sizeof v));
    cr_assert_str_eq(v, "GET, POST, OPTIONS");
    cr_assert(reply_header(&r, "Access-Control-Allow-Headers", v, sizeof v));
    cr_assert_str_eq(v, "Accept, Authorization, Content-Type, Origin");
    cr_assert(reply_header(&r, "Access-Control-Expose-Headers", v, sizeof v));
    cr_assert_str_eq(v, "Date");
    cr_assert(reply_header(&r, "Vary", v, sizeof v));
    cr_assert_str_eq(v, "Origin");
    reply_free(&r);
    request_h("OPTIONS", url(&f, "/api/v1/anything/at/all"), NULL, h, &r);
    cr_assert_eq(r.code, 204);
    cr_assert_eq(r.len, 0);
    cr_assert(reply_header(&r, "Access-Control-Allow-Origin", v, sizeof v));
    reply_free(&r);
    request_h("GET", url(&f, "/-/healthy"), NULL, h, &r);
    cr_assert(!reply_header(&r, "Access-Control-Allow-Origin", v, sizeof v));
    reply_free(&r);
    request("GET", url(&f, "/api/v1/echo"), &r);
    cr_assert(!reply_header(&r, "Access-Control-Allow-Origin", v, sizeof v), "no Origin, no CORS");
    reply_free(&r);
    curl_slist_free_all(h);
    finish(&f);

    web_options_init(&o);
    o.cors_origin = "https://(a|b)\\.example";
    start(&f, &o);
    add_echo_routes(&f);
    run(&f);
    web_server_set_ready(f.srv, true);
    h = curl_slist_append(NULL, "Origin: https://b.example");
    request_h("GET", url(&f, "/api/v1/echo"), NULL, h, &r);
    cr_assert(reply_header(&r, "Access-Control-Allow-Origin", v, sizeof v));
    cr_assert_str_eq(v, "https://b.example");
    reply_free(&r);
    curl_slist_free_all(h);
    h = curl_slist_append(NULL, "Origin: https://b.example.evil");
    request_h("GET", url(&f, "/api/v1/echo"), NULL, h, &r);
    cr_assert(!reply_header(&r, "Access-Control-Allow-Origin", v, sizeof v), "anchored regex");
    cr_assert(reply_header(&r, "Vary", v, sizeof v));
    reply_free(&r);
    curl_slist_free_all(h);
    finish(&f);
}

/* ---- /metrics ----------------------------------------------------------------------- */

Test(web, metrics_page_is_valid_and_counts_requests)
{
    struct fixture f;
    struct web_options o;
    web_options_init(&o);
    start(&f, &o);
    cr_assert_eq(mp_metrics_process_register(f.reg, NULL), 0);
    struct mp_metrics_vec *odd;
    cr_assert_eq(mp_metrics_vec_register(f.reg, MP_METRIC_GAUGE, "odd_values", "Esc \\ and\nnl.",
                                         (const char *[]){"v"}, 1, NULL, 0, &odd, NULL), 0);
    mp_gauge_set(mp_metrics_vec_gauge(odd, (const char *[]){"q\"b\\s\nn"}), NAN);
    run(&f);
    struct reply r;
    for (int i = 0; i < 3; i++) {
        request("GET", url(&f, "/-/healthy"), &r);
        reply_free(&r);
    }
    request("GET", url(&f, "/metrics"), &r);
    cr_assert_eq(r.code, 200);
    char ct[128];
    cr_assert(reply_header(&r, "Content-Type", ct, sizeof ct));
    cr_assert_str_eq(ct, "text/plain; version=0.0.4; charset=utf-8");
    check_exposition(r.body);
    cr_assert(strstr(r.body, "\nprometheus_http_requests_total{code=\"200\",handler=\"/-/healthy\"} 3\n"),
              "%s", r.body);
    cr_assert(strstr(r.body, "# TYPE prometheus_http_request_duration_seconds histogram\n"));
    cr_assert(strstr(r.body, "prometheus_http_request_duration_seconds_bucket{handler=\"/-/healthy\",le=\"0.1\"} 3\n"));
    cr_assert(strstr(r.body, "prometheus_http_request_duration_seconds_count{handler=\"/-/healthy\"} 3\n"));
    cr_assert(strstr(r.body, "promhttp_metric_handler_requests_in_flight 1\n"));
    cr_assert(strstr(r.body, "promhttp_metric_handler_requests_total{code=\"200\"} 0\n"));
    cr_assert(strstr(r.body, "\nprocess_open_fds "));
    reply_free(&r);
    request("GET", url(&f, "/metrics"), &r);
    cr_assert(strstr(r.body, "promhttp_metric_handler_requests_total{code=\"200\"} 1\n"));
    cr_assert(strstr(r.body, "prometheus_http_requests_total{code=\"200\",handler=\"/metrics\"} 1\n"));
    reply_free(&r);
    request("GET", url(&f, "/nope"), &r);
    reply_free(&r);
    request("GET", url(&f, "/metrics"), &r);
    cr_assert(!strstr(r.body, "handler=\"/nope\""), "unrouted paths are not counted");
    reply_free(&r);
    finish(&f);
}

Test(web, gzip_when_asked)
{
    struct fixture f;
    struct web_options o;
    web_options_init(&o);
    start(&f, &o);
    run(&f);
    struct reply r;
    memset(&r, 0, sizeof r);
    CURL *c = easy_for("GET", url(&f, "/metrics"), NULL, 0, NULL, &r);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "gzip");
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.code);
    curl_easy_cleanup(c);
    cr_assert_eq(r.code, 200);
    char v[64];
    cr_assert(reply_header(&r, "Content-Encoding", v, sizeof v), "%s", r.headers);
    cr_assert_str_eq(v, "gzip");
    check_exposition(r.body); /* curl decoded it */
    reply_free(&r);
    request("GET", url(&f, "/metrics"), &r);
    cr_assert(!reply_header(&r, "Content-Encoding", v, sizeof v));
    reply_free(&r);
    /* lifecycle texts are never compressed, as in Prometheus */
    struct curl_slist *h = curl_slist_append(NULL, "Accept-Encoding: gzip");
    request_h("GET", url(&f, "/-/healthy"), NULL, h, &r);
    curl_slist_free_all(h);
    cr_assert_str_eq(r.body, "Prometheus Server is Healthy.\n");
    reply_free(&r);
    finish(&f);
}

/* ?n=N: N bytes of a repeating JSON-ish text (compressible, so a stored body shows). */
static void h_blob(void *ctx, const struct web_request *req, struct web_response *resp)
{
    (void)ctx;
    struct mp_str v = {"0", 1};
    web_request_param(req, "n", &v);
    size_t n = (size_t)strtoul(v.ptr, NULL, 10);
    struct mp_buf b;
    mp_buf_init(&b, 0);
    for (size_t i = 0; i < n; i++)
        (void)!mp_buf_append(&b, &"{\"value\":[1700000000.5,\"1\"]},"[i % 29], 1);
    web_response_content_type(resp, "application/json");
    web_response_body_take(resp, &b);
}

/* Small API bodies go out as stored deflate blocks, larger ones compressed; both decode to
 * the same bytes in gzip and in zlib form. */
Test(web, small_bodies_stored_larger_compressed)
{
    struct fixture f;
    struct web_options o;
    web_options_init(&o);
    start(&f, &o);
    struct mp_err err = {0};
    cr_assert_eq(web_server_route(f.srv, "GET", "/api/v1/blob", h_blob, NULL, &err), 0);
    run(&f);
    web_server_set_ready(f.srv, true);
    static const size_t sizes[] = {1, 29, 700, 1023, 1024, 5000, 70000};
    static const char *const encs[] = {"gzip", "deflate"};
    for (size_t e = 0; e < 2; e++) {
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            char path[64], v[64];
            snprintf(path, sizeof path, "/api/v1/blob?n=%zu", sizes[i]);
            struct reply plain, dec, raw;
            request("GET", url(&f, path), &plain);
            cr_assert_eq(plain.len, sizes[i]);
            for (int decode = 1; decode >= 0; decode--) {
                struct reply *r = decode ? &dec : &raw;
                memset(r, 0, sizeof *r);
                CURL *c = easy_for("GET", url(&f, path), NULL, 0, NULL, r);
                curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, encs[e]);
                curl_easy_setopt(c, CURLOPT_HTTP_CONTENT_DECODING, (long)decode);
                cr_assert_eq(curl_easy_perform(c), CURLE_OK, "%s n=%zu", encs[e], sizes[i]);
                curl_easy_cleanup(c);
                cr_assert(reply_header(r, "Content-Encoding", v, sizeof v), "%s", r->headers);
                cr_assert_str_eq(v, encs[e]);
            }
            cr_assert_eq(dec.len, plain.len, "%s n=%zu", encs[e], sizes[i]);
            cr_assert(memcmp(dec.body, plain.body, plain.len) == 0, "%s n=%zu", encs[e], sizes[i]);
            if (sizes[i] < 1024)
                cr_assert_gt(raw.len, sizes[i], "%s n=%zu: stored, not compressed", encs[e],
                             sizes[i]);
            else
                cr_assert_lt(raw.len, sizes[i] / 2, "%s n=%zu: compressed", encs[e], sizes[i]);
            reply_free(&plain);
            reply_free(&dec);
            reply_free(&raw);
        }
    }
    finish(&f);
}

/* ---- prefix, addresses, concurrency ------------------------------------------------- */

Test(web, route_prefix)
{
    struct fixture f;
    struct web_options o;
    web_options_init(&o);
    o.route_prefix = "prom/";
    start(&f, &o);
    cr_assert_str_eq(web_server_route_prefix(f.srv), "/prom");
    add_echo_routes(&f);
    run(&f);
    web_server_set_ready(f.srv, true);
    struct reply r;
    request("GET", url(&f, "/prom/-/healthy"), &r);
    cr_assert_eq(r.code, 200);
    reply_free(&r);
    request("GET", url(&f, "/prom/api/v1/label/job/values"), &r);
    cr_assert_eq(r.code, 200);
    cr_assert(strstr(r.body, "path=/api/v1/label/job/values "), "%s", r.body);
    reply_free(&r);
    request("GET", url(&f, "/-/healthy"), &r);
    cr_assert_eq(r.code, 404);
    reply_free(&r);
    request("GET", url(&f, "/promx/-/healthy"), &r);
    cr_assert_eq(r.code, 404);
    reply_free(&r);
    request("GET", url(&f, "/"), &r);
    cr_assert_eq(r.code, 302);
    char loc[64];
    cr_assert(reply_header(&r, "Location", loc, sizeof loc));
    cr_assert_str_eq(loc, "/prom");
    reply_free(&r);
    finish(&f);

    static const struct {
        const char *prefix, *ext, *want;
    } cases[] = {
        {NULL, NULL, "/"},
        {"", "http://host:9090/", "/"},
        {NULL, "http://host:9090/prometheus/", "/prometheus"},
        {NULL, "https://h/a/b?x=1", "/a/b"},
        {"/x/", "http://host:9090/prometheus/", "/x"},
        {"///", NULL, "/"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        web_options_init(&o);
        o.route_prefix = cases[i].prefix;
        o.external_url = cases[i].ext;
        start(&f, &o);
        cr_assert_str_eq(web_server_route_prefix(f.srv), cases[i].want, "case %zu", i);
        finish(&f);
    }
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

Test(web, listen_addresses_and_errors)
{
    int fds_before = count_fds();
    struct fixture f;
    struct web_options o;
    web_options_init(&o);
    static const char *const two[] = {"127.0.0.1:0", "localhost:0"};
    o.listen = two;
    o.nlisten = 2;
    start(&f, &o);
    run(&f);
    cr_assert_neq(web_server_port(f.srv, 0), 0);
    cr_assert_neq(web_server_port(f.srv, 1), 0);
    cr_assert_eq(web_server_port(f.srv, 2), 0);
    char u[128];
    snprintf(u, sizeof u, "http://localhost:%u/-/healthy", web_server_port(f.srv, 1));
    struct reply r;
    request("GET", u, &r);
    cr_assert_eq(r.code, 200);
    reply_free(&r);

    /* the same port again: EIO, and nothing stays bound */
    char taken[64];
    snprintf(taken, sizeof taken, "127.0.0.1:%u", web_server_port(f.srv, 0));
    const char *const dup[] = {"127.0.0.1:0", taken};
    struct web_options o2;
    web_options_init(&o2);
    o2.listen = dup;
    o2.nlisten = 2;
    o2.registry = f.reg;
    struct web_server *s2;
    struct mp_err err = {0};
    cr_assert_eq(web_server_create(&o2, &s2, &err), 0);
    cr_assert_eq(web_server_start(s2, &err), MP_EIO);
    cr_assert(strstr(err.msg, "bind"), "%s", err.msg);
    cr_assert(strstr(err.msg, taken), "%s", err.msg);
    web_server_destroy(s2);
    finish(&f);

    /* IPv6 loopback, when the machine has it */
    web_options_init(&o);
    static const char *const v6[] = {"[::1]:0"};
    o.listen = v6;
    o.nlisten = 1;
    start(&f, &o);
    mp_err_clear(&err);
    if (web_server_start(f.srv, &err) == 0) {
        snprintf(u, sizeof u, "http://[::1]:%u/-/healthy", web_server_port(f.srv, 0));
        request("GET", u, &r);
        cr_assert_eq(r.code, 200);
        reply_free(&r);
    }
    finish(&f);

    static const char *const bad[] = {"9090", "host:", "host:port", "::1:9090", "[::1]9090",
                                      "h:99999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        web_options_init(&o);
        o.listen = &bad[i];
        o.nlisten = 1;
        struct web_server *s = NULL;
        mp_err_clear(&err);
        cr_assert_eq(web_server_create(&o, &s, &err), MP_EINVAL, "%s", bad[i]);
        cr_assert(strstr(err.msg, bad[i]));
    }
    cr_assert_eq(count_fds(), fds_before, "sockets leaked");
}

/* Handlers in flight now and at most: slow requests must overlap (served in parallel), which
 * is checked by counting, not by timing (the machines are shared and noisy). */
static _Atomic int slow_now, slow_max;

static void h_slow(void *ctx, const struct web_request *req, struct web_response *resp)
{
    (void)ctx;
    (void)req;
    int n = atomic_fetch_add(&slow_now, 1) + 1;
    int m = atomic_load(&slow_max);
    while (n > m && !atomic_compare_exchange_weak(&slow_max, &m, n))
        ;
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    atomic_fetch_sub(&slow_now, 1);
    WEB_BODY_LIT(resp, "ok");
}

static void concurrent(size_t pool, int min_parallel)
{
    atomic_store(&slow_now, 0);
    atomic_store(&slow_max, 0);
    enum { N = 64 };
    struct fixture f;
    struct web_options o;
    web_options_init(&o);
    o.thread_pool_size = pool;
    start(&f, &o);
    cr_assert_eq(web_server_route(f.srv, "GET", "/slow", h_slow, NULL, NULL), 0);
    run(&f);
    CURLM *m = curl_multi_init();
    CURL *e[N];
    struct reply r[N];
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++) {
        e[i] = easy_for("GET", url(&f, i % 2 ? "/slow" : "/metrics"), NULL, 0, NULL, &r[i]);
        curl_easy_setopt(e[i], CURLOPT_FORBID_REUSE, 1L);
        curl_multi_add_handle(m, e[i]);
    }
    curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, 0L);
    int running = 1;
    for (int iter = 0; running && iter < 20000; iter++) {
        cr_assert_eq(curl_multi_perform(m, &running), CURLM_OK);
        if (running)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    cr_assert_eq(running, 0, "requests did not finish");
    for (int i = 0; i < N; i++) {
        curl_easy_getinfo(e[i], CURLINFO_RESPONSE_CODE, &r[i].code);
        cr_assert_eq(r[i].code, 200, "request %d", i);
        curl_multi_remove_handle(m, e[i]);
        curl_easy_cleanup(e[i]);
        reply_free(&r[i]);
    }
    curl_multi_cleanup(m);
    cr_assert_geq(atomic_load(&slow_max), min_parallel, "at most %d slow requests at once",
                  atomic_load(&slow_max));
    finish(&f);
}

Test(web, many_concurrent_connections_thread_per_connection)
{
    /* a thread per connection: the 32 slow requests overlap far more than a pool's would */
    concurrent(0, 5);
}

Test(web, many_concurrent_connections_thread_pool)
{
    /* 4 epoll threads, each running one handler at a time: at least two overlap */
    concurrent(4, 2);
}
