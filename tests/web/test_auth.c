/* SPDX-License-Identifier: Apache-2.0 */
/* tests/web/test_auth.c: the request gate hook (web_options.auth) over real sockets. The
 * hook here is a stand-in for main's --web.config.file gate (which lives in configs/ and is
 * tested in tests/configs/test_webconfig.c): it re-reads a small file on every request whose
 * first line is the expected Authorization value ("-" = no auth, "broken" = 500) and adds
 * X-Frame-Options to every response. Checks: 401 + WWW-Authenticate without or with wrong
 * credentials, 200 with the right ones, headers on every response (401, 404, 200, /metrics,
 * /-/healthy), a file change taking effect on the next request, 500 on a broken file. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/metrics.h"
#include "web/web.h"
#include "support_http.h"

/* GET url, with basic-auth credentials "user:password" when userpwd is set. */
static void a_get(const char *url, const char *userpwd, struct reply *out)
{
    reply_free(out);
    CURL *c = easy_for("GET", url, NULL, 0, NULL, out);
    if (userpwd) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERPWD, userpwd);
    }
    CURLcode rc = curl_easy_perform(c);
    cr_assert_eq(rc, CURLE_OK, "%s: %s", url, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->code);
    curl_easy_cleanup(c);
    if (!out->body)
        out->body = calloc(1, 1);
}

struct gate {
    char path[256];
    atomic_int calls;
};

static int test_gate(void *ctx, const char *authorization, struct web_response *resp)
{
    struct gate *g = ctx;
    atomic_fetch_add(&g->calls, 1);
    char line[512] = "";
    FILE *f = fopen(g->path, "r");
    if (f) {
        if (!fgets(line, sizeof line, f))
            line[0] = '\0';
        fclose(f);
    }
    line[strcspn(line, "\n")] = '\0';
    if (!f || strcmp(line, "broken") == 0)
        return 500;
    web_response_header(resp, "X-Frame-Options", "deny");
    if (strcmp(line, "-") == 0)
        return 0;
    return authorization && strcmp(authorization, line) == 0 ? 0 : 401;
}

static void write_gate(const struct gate *g, const char *line)
{
    FILE *f = fopen(g->path, "w");
    cr_assert_not_null(f);
    fprintf(f, "%s\n", line);
    fclose(f);
}

struct afix {
    struct web_server *srv;
    struct mp_metrics_registry *reg;
    struct gate gate;
    char base[64];
};

static void a_start(struct afix *f)
{
    snprintf(f->gate.path, sizeof f->gate.path, "/tmp/mp_test_auth_%d", (int)getpid());
    atomic_init(&f->gate.calls, 0);
    /* alice:secret */
    write_gate(&f->gate, "Basic YWxpY2U6c2VjcmV0");
    struct web_options opt;
    web_options_init(&opt);
    opt.auth = test_gate;
    opt.auth_ctx = &f->gate;
    f->srv = wt_server_create(&opt, &f->reg);
    wt_server_start(f->srv, f->base, sizeof f->base);
    web_server_set_ready(f->srv, true);
}

static void a_finish(struct afix *f)
{
    web_server_destroy(f->srv);
    mp_metrics_registry_destroy(f->reg);
    unlink(f->gate.path);
}

static const char *a_url(const struct afix *f, const char *path)
{
    return wt_url(f->base, path);
}

TestSuite(auth, .init = wt_quiet);

static void expect_401(const struct reply *r)
{
    char v[256];
    cr_assert_eq(r->code, 401);
    cr_assert_str_eq(r->body, "Unauthorized\n");
    cr_assert(reply_header(r, "WWW-Authenticate", v, sizeof v));
    cr_assert_str_eq(v, "Basic");
    cr_assert(reply_header(r, "X-Frame-Options", v, sizeof v));
    cr_assert_str_eq(v, "deny");
}

Test(auth, every_path_is_gated)
{
    struct afix f = {0};
    a_start(&f);
    struct reply r = {0};
    static const char *const paths[] = {"/metrics", "/-/healthy", "/-/ready", "/nope",
                                        "/api/v1/write"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        a_get(a_url(&f, paths[i]), NULL, &r);
        expect_401(&r);
        a_get(a_url(&f, paths[i]), "alice:wrong", &r);
        expect_401(&r);
        a_get(a_url(&f, paths[i]), "bob:secret", &r);
        expect_401(&r);
    }
    char v[256];
    a_get(a_url(&f, "/-/healthy"), "alice:secret", &r);
    cr_assert_eq(r.code, 200);
    cr_assert(reply_header(&r, "X-Frame-Options", v, sizeof v));
    cr_assert_not(reply_header(&r, "WWW-Authenticate", v, sizeof v));
    a_get(a_url(&f, "/metrics"), "alice:secret", &r);
    cr_assert_eq(r.code, 200);
    cr_assert(reply_header(&r, "X-Frame-Options", v, sizeof v));
    a_get(a_url(&f, "/nope"), "alice:secret", &r);
    cr_assert_eq(r.code, 404);
    cr_assert(reply_header(&r, "X-Frame-Options", v, sizeof v));
    cr_assert_gt(atomic_load(&f.gate.calls), 15);
    reply_free(&r);
    a_finish(&f);
}

Test(auth, file_change_applies_to_next_request)
{
    struct afix f = {0};
    a_start(&f);
    struct reply r = {0};
    a_get(a_url(&f, "/-/healthy"), NULL, &r);
    cr_assert_eq(r.code, 401);
    write_gate(&f.gate, "-");
    a_get(a_url(&f, "/-/healthy"), NULL, &r);
    cr_assert_eq(r.code, 200);
    char v[64];
    cr_assert(reply_header(&r, "X-Frame-Options", v, sizeof v));
    write_gate(&f.gate, "broken");
    a_get(a_url(&f, "/-/healthy"), "alice:secret", &r);
    cr_assert_eq(r.code, 500);
    cr_assert_str_eq(r.body, "Internal Server Error\n");
    /* bob:pw */
    write_gate(&f.gate, "Basic Ym9iOnB3");
    a_get(a_url(&f, "/-/healthy"), "alice:secret", &r);
    expect_401(&r);
    a_get(a_url(&f, "/-/healthy"), "bob:pw", &r);
    cr_assert_eq(r.code, 200);
    reply_free(&r);
    a_finish(&f);
}
