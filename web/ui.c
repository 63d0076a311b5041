/* SPDX-License-Identifier: Apache-2.0 */
/* web/ui.c: the dashboard's routes (web.h). The assets are compiled in (web/embed.cmake writes
 * web_ui_assets[] at build time from web/ui/ and the npm packages of web/ui/package.json), so
 * the binary serves them with no files and no CDN. index.html is the single-page
 * application's entry for each of its paths; its <base href> is the route prefix, so every
 * asset and API URL the page uses is relative to it. */
#define _GNU_SOURCE /* memmem */
#include "web/web.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/str.h"

struct web_ui_asset {
    const char *path, *content_type;
    const unsigned char *data;
    size_t len;
};
extern const struct web_ui_asset web_ui_assets[];

static const struct web_ui_asset *find(struct mp_str path)
{
    for (const struct web_ui_asset *a = web_ui_assets; a->path; a++)
        if (strlen(a->path) == path.len && memcmp(a->path, path.ptr, path.len) == 0)
            return a;
    return NULL;
}

static void h_static(void *ctx, const struct web_request *req, struct web_response *resp)
{
    (void)ctx;
    struct mp_str rest = web_request_path_param(req, "path");
    char name[256];
    int n = snprintf(name, sizeof name, "static/%.*s", (int)rest.len, rest.ptr);
    const struct web_ui_asset *a =
        n > 0 && (size_t)n < sizeof name ? find((struct mp_str){name, (size_t)n}) : NULL;
    if (!a) {
        web_response_status(resp, 404);
        WEB_BODY_LIT(resp, "404 page not found\n");
        return;
    }
    web_response_content_type(resp, a->content_type);
    web_response_header(resp, "Cache-Control", "public, max-age=300");
    web_response_body_static(resp, (const char *)a->data, a->len);
}

/* index.html with {{PREFIX}} replaced by the route prefix ending in '/'. */
static void h_index(void *ctx, const struct web_request *req, struct web_response *resp)
{
    (void)req;
    const struct web_server *srv = ctx;
    const struct web_ui_asset *a = find(MP_STR_LIT("index.html"));
    const char *prefix = web_server_route_prefix(srv);
    static const char mark[] = "{{PREFIX}}";
    struct mp_buf b;
    mp_buf_init(&b, 0);
    const char *s = (const char *)a->data, *end = s + a->len;
    const char *m = memmem(s, a->len, mark, sizeof mark - 1);
    int rc = 0;
    if (m) {
        rc = mp_buf_append(&b, s, (size_t)(m - s));
        if (rc == 0)
            rc = mp_buf_append_str(&b, prefix);
        if (rc == 0 && strcmp(prefix, "/") != 0)
            rc = mp_buf_append_str(&b, "/");
        s = m + sizeof mark - 1;
    }
    if (rc == 0)
        rc = mp_buf_append(&b, s, (size_t)(end - s));
    if (rc != 0) {
        mp_buf_fini(&b);
        web_response_status(resp, 500);
        WEB_BODY_LIT(resp, "Internal Server Error\n");
        return;
    }
    web_response_content_type(resp, "text/html; charset=utf-8");
    web_response_header(resp, "Cache-Control", "no-cache");
    web_response_body_take(resp, &b);
}

int web_ui_register(struct web_server *srv, struct mp_err *err)
{
    static const char *const pages[] = {"/", "/graph", "/targets", "/tsdb-status",
                                        "/namespaces/*rest"};
    if (!find(MP_STR_LIT("index.html")))
        return mp_err_set(err, MP_EINVAL, "dashboard assets were not built in");
    for (size_t i = 0; i < sizeof pages / sizeof *pages; i++) {
        int rc = web_server_route(srv, "GET|HEAD", pages[i], h_index, srv, err);
        if (rc != 0)
            return rc;
    }
    return web_server_route(srv, "GET|HEAD", "/static/*path", h_static, NULL, err);
}
