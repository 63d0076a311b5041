/* SPDX-License-Identifier: Apache-2.0 */
/* tests/web/test_server_stream.c: streamed response bodies (web_response_body_stream, used by
 * POST /api/v1/read) over a real socket on 127.0.0.1 with libcurl: the body arrives whole as
 * HTTP/1.1 chunked transfer, an aborting stream cuts the body short, and done runs exactly
 * once in every case (sent, aborted, replaced by another body before sending). */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/metrics.h"
#include "web/web.h"
#include "support_http.h"

#define TOTAL 200000u /* bytes: several of the server's 64 KiB reads */

struct src {
    size_t sent;
    size_t fail_after; /* 0: never */
    atomic_int done;
};

static int src_read(void *ctx, char *buf, size_t cap, size_t *n)
{
    struct src *s = ctx;
    if (s->fail_after && s->sent >= s->fail_after)
        return MP_EIO;
    if (s->sent >= TOTAL)
        return MP_EEOF;
    size_t k = TOTAL - s->sent < cap ? TOTAL - s->sent : cap;
    if (k > 1000)
        k = 1000; /* short reads: the server must call again */
    for (size_t i = 0; i < k; i++)
        buf[i] = (char)('a' + (s->sent + i) % 26);
    s->sent += k;
    *n = k;
    return 0;
}

static void src_done(void *ctx)
{
    struct src *s = ctx;
    atomic_fetch_add(&s->done, 1);
}

static void h_stream(void *ctx, const struct web_request *req, struct web_response *resp)
{
    (void)req;
    web_response_content_type(resp, "application/octet-stream");
    web_response_body_stream(resp, src_read, src_done, ctx);
}

static void h_replaced(void *ctx, const struct web_request *req, struct web_response *resp)
{
    (void)req;
    web_response_body_stream(resp, src_read, src_done, ctx);
    web_response_status(resp, 500);
    WEB_BODY_LIT(resp, "changed my mind\n");
}

struct fixture {
    struct web_server *srv;
    struct mp_metrics_registry *reg;
    char url[128];
};

static void start(struct fixture *f, const char *pattern, web_handler_fn *fn, struct src *s)
{
    wt_quiet();
    struct web_options opt;
    web_options_init(&opt);
    f->srv = wt_server_create(&opt, &f->reg);
    struct mp_err err = {0};
    cr_assert_eq(web_server_route(f->srv, "GET", pattern, fn, s, &err), 0, "%s", err.msg);
    char base[64];
    wt_server_start(f->srv, base, sizeof base);
    web_server_set_ready(f->srv, true);
    snprintf(f->url, sizeof f->url, "%s%s", base, pattern);
}

static void finish(struct fixture *f)
{
    web_server_destroy(f->srv); /* waits for the connections: done has run after this */
    mp_metrics_registry_destroy(f->reg);
}

Test(web_stream, body_arrives_whole_as_chunked_transfer)
{
    struct src s = {0};
    struct fixture f;
    start(&f, "/stream", h_stream, &s);
    struct reply r = {0};
    request("GET", f.url, &r);
    cr_assert_eq(r.code, 200);
    cr_assert_eq(r.len, TOTAL);
    for (size_t i = 0; i < TOTAL; i++)
        cr_assert_eq(r.body[i], (char)('a' + i % 26), "byte %zu", i);
    char te[64];
    cr_assert(reply_header(&r, "Transfer-Encoding", te, sizeof te));
    cr_assert_str_eq(te, "chunked");
    char ct[64];
    cr_assert(reply_header(&r, "Content-Type", ct, sizeof ct));
    cr_assert_str_eq(ct, "application/octet-stream");
    reply_free(&r);
    finish(&f);
    cr_assert_eq(atomic_load(&s.done), 1);
}

Test(web_stream, failing_stream_cuts_the_body_and_still_calls_done)
{
    struct src s = {.fail_after = 5000};
    struct fixture f;
    start(&f, "/stream", h_stream, &s);
    struct reply r = {0};
    CURL *c = easy_for("GET", f.url, NULL, 0, NULL, &r);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    cr_assert_neq(rc, CURLE_OK, "a cut chunked body is an error for the client");
    cr_assert_lt(r.len, TOTAL);
    reply_free(&r);
    finish(&f);
    cr_assert_eq(atomic_load(&s.done), 1);
}

Test(web_stream, replaced_stream_is_released_at_once)
{
    struct src s = {0};
    struct fixture f;
    start(&f, "/replaced", h_replaced, &s);
    struct reply r = {0};
    request("GET", f.url, &r);
    cr_assert_eq(r.code, 500);
    cr_assert_str_eq(r.body, "changed my mind\n");
    reply_free(&r);
    finish(&f);
    cr_assert_eq(atomic_load(&s.done), 1);
    cr_assert_eq(s.sent, 0);
}
