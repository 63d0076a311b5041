/* SPDX-License-Identifier: Apache-2.0 */
/* tests/web/test_api_fixture.h: a real web server on 127.0.0.1:0 with the HTTP API over a
 * tsdb in a mkdtemp directory, shared by tests/web/test_api*.c. */
#ifndef TESTS_WEB_TEST_API_FIXTURE_H
#define TESTS_WEB_TEST_API_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "support_http.h"
#include "web/web.h"

struct api_fix {
    char dir[64];
    struct tsdb *db;
    struct query_engine *engine; /* NULL unless api_fix_engine was called before start */
    struct web_server *srv;
    struct web_api *api;
    struct mp_metrics_registry *reg;
    char base[64];
};

/* Opens the tsdb (no background compaction, no fsync). */
void api_fix_open(struct api_fix *f);
/* Creates the server with deps (NULL: defaults), registers the API, starts, hands the
 * storage over and turns ready. deps->db is filled in. */
void api_fix_start(struct api_fix *f, struct web_api_deps *deps);
void api_fix_stop(struct api_fix *f); /* server, api, engine, tsdb, directory */
/* Appends one sample; labels as "name", "value", ... NULL-terminated. */
void api_fix_add(struct api_fix *f, int64_t t_ms, double v, ...);
/* URL of path on the server (rotating static buffers). */
const char *api_url(const struct api_fix *f, const char *path);
/* GET/POST shortcuts; the reply must be freed. */
void api_get(const struct api_fix *f, const char *path, struct reply *r);
void api_post_form(const struct api_fix *f, const char *path, const char *form, struct reply *r);
/* GET path and expect the status and the exact body. */
#define EXPECT(f, path, code_, body_)                                                              \
    do {                                                                                           \
        struct reply r_;                                                                           \
        api_get((f), (path), &r_);                                                                 \
        cr_expect_eq(r_.code, (code_), "%s: %ld %s", (path), r_.code, r_.body);                    \
        cr_expect_str_eq(r_.body, (body_), "%s: %s", (path), r_.body);                             \
        reply_free(&r_);                                                                           \
    } while (0)
#define OK(data) "{\"status\":\"success\",\"data\":" data "}"
#define BAD(msg) "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"" msg "\"}"

/* Criterion setup: curl init, quiet logs. */
void api_suite_init(void);

#endif
