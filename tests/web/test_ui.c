/* SPDX-License-Identifier: Apache-2.0 */
/* tests/web/test_ui.c: the dashboard routes (web/ui.c): every application path answers
 * index.html with <base href> set to the route prefix, the embedded assets are served with
 * their content types (uPlot included: the build fetched it), unknown assets are 404, and the
 * script references only assets that exist. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "web/web.h"
#include "support_http.h"

struct ui {
    struct web_server *srv;
    struct mp_metrics_registry *reg;
    char base[96];
};

static void ui_start(struct ui *u, const char *prefix)
{
    wt_quiet();
    struct web_options o;
    web_options_init(&o);
    o.route_prefix = prefix;
    u->srv = wt_server_create(&o, &u->reg);
    struct mp_err err = {0};
    cr_assert_eq(web_ui_register(u->srv, &err), 0, "%s", err.msg);
    wt_server_start(u->srv, u->base, sizeof u->base);
    web_server_set_ready(u->srv, true);
    if (prefix)
        snprintf(u->base + strlen(u->base), sizeof u->base - strlen(u->base), "%s", prefix);
}

static void ui_stop(struct ui *u)
{
    web_server_destroy(u->srv);
    mp_metrics_registry_destroy(u->reg);
}

static void get(const struct ui *u, const char *path, struct reply *r)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", u->base, path);
    memset(r, 0, sizeof *r);
    request("GET", url, r);
}

Test(ui, pages_and_assets)
{
    struct ui u;
    ui_start(&u, NULL);
    static const char *const pages[] = {"/", "/graph", "/targets", "/tsdb-status",
                                        "/namespaces/emojivoto",
                                        "/namespaces/emojivoto/deployments/web"};
    for (size_t i = 0; i < sizeof pages / sizeof *pages; i++) {
        struct reply r;
        get(&u, pages[i], &r);
        cr_assert_eq(r.code, 200, "%s", pages[i]);
        char ct[128];
        cr_assert(reply_header(&r, "Content-Type", ct, sizeof ct));
        cr_assert_str_eq(ct, "text/html; charset=utf-8");
        cr_assert(strstr(r.body, "<base href=\"/\">"), "%s: %s", pages[i], r.body);
        cr_assert_null(strstr(r.body, "{{PREFIX}}"));
        reply_free(&r);
    }
    static const char *const assets[][2] = {
        {"/static/app.js", "text/javascript; charset=utf-8"},
        {"/static/app.css", "text/css; charset=utf-8"},
        {"/static/uPlot.iife.min.js", "text/javascript; charset=utf-8"},
        {"/static/uPlot.min.css", "text/css; charset=utf-8"},
    };
    for (size_t i = 0; i < sizeof assets / sizeof *assets; i++) {
        struct reply r;
        get(&u, assets[i][0], &r);
        cr_assert_eq(r.code, 200, "%s", assets[i][0]);
        char ct[128];
        cr_assert(reply_header(&r, "Content-Type", ct, sizeof ct));
        cr_assert_str_eq(ct, assets[i][1]);
        cr_assert_gt(r.len, 100);
        if (strstr(assets[i][0], "uPlot.iife"))
            cr_assert(strstr(r.body, "uPlot"), "the npm package's bundle");
        reply_free(&r);
    }
    struct reply r;
    get(&u, "/static/missing.js", &r);
    cr_assert_eq(r.code, 404);
    reply_free(&r);
    get(&u, "/static/", &r);
    cr_assert_eq(r.code, 404);
    reply_free(&r);
    /* index.html references exactly the assets served above */
    get(&u, "/", &r);
    for (size_t i = 0; i < sizeof assets / sizeof *assets; i++)
        cr_assert(strstr(r.body, assets[i][0] + 1), "index.html lacks %s", assets[i][0]);
    reply_free(&r);
    ui_stop(&u);
}

Test(ui, route_prefix_sets_base)
{
    struct ui u;
    ui_start(&u, "/prom");
    struct reply r;
    get(&u, "/namespaces/x", &r);
    cr_assert_eq(r.code, 200);
    cr_assert(strstr(r.body, "<base href=\"/prom/\">"), "%s", r.body);
    reply_free(&r);
    get(&u, "/static/app.js", &r);
    cr_assert_eq(r.code, 200);
    reply_free(&r);
    ui_stop(&u);
}
