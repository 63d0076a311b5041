/* SPDX-License-Identifier: Apache-2.0 */
/* tests/web/test_api_fixture.c: see test_api_fixture.h. */
#define _XOPEN_SOURCE 700
#include "test_api_fixture.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/labels.h"
#include "common/metrics.h"
#include "query/query.h"
#include "tsdb/tsdb.h"

void api_suite_init(void)
{
    wt_quiet();
}

void api_fix_open(struct api_fix *f)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/mp-api-XXXXXX");
    cr_assert_not_null(mkdtemp(f->dir));
    struct tsdb_options o;
    tsdb_options_init(&o);
    o.dir = f->dir;
    o.background = false;
    o.wal_fsync = TSDB_WAL_FSYNC_NONE;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_open(&o, &f->db, &err), 0, "%s", err.msg);
}

void api_fix_start(struct api_fix *f, struct web_api_deps *deps)
{
    struct web_api_deps dd;
    if (!deps) {
        web_api_deps_init(&dd);
        deps = &dd;
    }
    struct web_options opt;
    web_options_init(&opt);
    f->srv = wt_server_create(&opt, &f->reg);
    struct mp_err err = {0};
    if (!deps->engine)
        deps->engine = f->engine;
    cr_assert_eq(web_api_register(f->srv, deps, &f->api, &err), 0, "%s", err.msg);
    wt_server_start(f->srv, f->base, sizeof f->base);
    web_api_set_storage(f->api, f->db, NULL);
    web_server_set_ready(f->srv, true);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void api_fix_stop(struct api_fix *f)
{
    web_server_destroy(f->srv);
    web_api_destroy(f->api);
    query_engine_destroy(f->engine);
    tsdb_close(f->db);
    mp_metrics_registry_destroy(f->reg);
    if (f->dir[0])
        nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    memset(f, 0, sizeof *f);
}

void api_fix_add(struct api_fix *f, int64_t t_ms, double v, ...)
{
    struct mp_label l[32];
    size_t n = 0;
    va_list ap;
    va_start(ap, v);
    for (const char *name; n < 32 && (name = va_arg(ap, const char *)) != NULL; n++) {
        l[n].name = mp_str_c(name);
        l[n].value = mp_str_c(va_arg(ap, const char *));
    }
    va_end(ap);
    struct mp_labels *ls = NULL;
    struct mp_err err = {0};
    cr_assert_eq(mp_labels_create(l, n, &ls, &err), 0, "%s", err.msg);
    struct tsdb_appender *a = NULL;
    cr_assert_eq(tsdb_appender_create(f->db, &a), 0);
    cr_assert_eq(tsdb_appender_add(a, 0, ls, t_ms, v, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(tsdb_appender_commit(a, &err), 0, "%s", err.msg);
    mp_labels_release(ls);
}

const char *api_url(const struct api_fix *f, const char *path)
{
    return wt_url(f->base, path);
}

void api_get(const struct api_fix *f, const char *path, struct reply *r)
{
    request("GET", api_url(f, path), r);
}

void api_post_form(const struct api_fix *f, const char *path, const char *form, struct reply *r)
{
    struct curl_slist *h =
        curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
    request_h("POST", api_url(f, path), form, h, r);
    curl_slist_free_all(h);
}
