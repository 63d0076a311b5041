/* SPDX-License-Identifier: Apache-2.0 */
/* tests/scraper/test_k8s_watch_stream.c: the watch-stream decoder and event decoding
 * (kubernetes-sd.md 1.6): events split across chunks at every offset, no newline between
 * values, garbage, the size cap, ERROR/BOOKMARK fields. */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "scraper/sd_internal.h"

static const char stream[] =
    "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\","
    "\"resourceVersion\":\"7\"}}}\n"
    "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"resourceVersion\":"
    "\"9\"}}}"
    "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"reason\":\"Expired\",\"code\":410}}\n";

struct seen {
    char types[8][16];
    char rvs[8][16];
    int codes[8];
    size_t n;
};

static bool collect(void *ctx, struct json_object *v)
{
    struct seen *s = ctx;
    struct scrape_k8s_event ev;
    cr_assert_eq(scrape_k8s_event_decode(v, &ev, NULL), 0);
    cr_assert_lt(s->n, 8);
    snprintf(s->types[s->n], 16, "%s", ev.type);
    snprintf(s->rvs[s->n], 16, "%s", ev.resource_version ? ev.resource_version : "-");
    s->codes[s->n] = ev.code;
    s->n++;
    return true;
}

Test(k8s_stream, split_at_every_offset)
{
    size_t n = strlen(stream);
    for (size_t cut = 0; cut <= n; cut++) {
        struct scrape_k8s_stream *st = scrape_k8s_stream_create(0);
        struct seen s = {.n = 0};
        cr_assert_eq(scrape_k8s_stream_feed(st, stream, cut, collect, &s, NULL), 0);
        cr_assert_eq(scrape_k8s_stream_feed(st, stream + cut, n - cut, collect, &s, NULL), 0);
        cr_assert_eq(s.n, 3, "cut %zu", cut);
        cr_assert_str_eq(s.types[0], "ADDED");
        cr_assert_str_eq(s.rvs[0], "7");
        cr_assert_str_eq(s.types[1], "BOOKMARK");
        cr_assert_str_eq(s.rvs[1], "9");
        cr_assert_str_eq(s.types[2], "ERROR");
        cr_assert_eq(s.codes[2], 410);
        scrape_k8s_stream_destroy(st);
    }
}

Test(k8s_stream, byte_by_byte)
{
    struct scrape_k8s_stream *st = scrape_k8s_stream_create(0);
    struct seen s = {.n = 0};
    for (size_t i = 0; stream[i]; i++)
        cr_assert_eq(scrape_k8s_stream_feed(st, stream + i, 1, collect, &s, NULL), 0);
    cr_assert_eq(s.n, 3);
    scrape_k8s_stream_destroy(st);
}

static bool stop_first(void *ctx, struct json_object *v)
{
    (void)v;
    (*(int *)ctx)++;
    return false;
}

static bool count(void *ctx, struct json_object *v)
{
    (void)v;
    (*(int *)ctx)++;
    return true;
}

Test(k8s_stream, errors_and_cap)
{
    struct scrape_k8s_stream *st = scrape_k8s_stream_create(0);
    int calls = 0;
    cr_assert_eq(scrape_k8s_stream_feed(st, "{\"a\":1} {}", 10, stop_first, &calls, NULL),
                 MP_ECANCELED);
    cr_assert_eq(calls, 1);
    scrape_k8s_stream_destroy(st);

    st = scrape_k8s_stream_create(0);
    struct mp_err err;
    mp_err_clear(&err);
    calls = 0;
    cr_assert_eq(scrape_k8s_stream_feed(st, "{\"a\":1}\n}", 9, count, &calls, &err), MP_EPARSE);
    cr_assert_eq(calls, 1);
    cr_assert_eq(scrape_k8s_stream_feed(st, "{}", 2, count, &calls, NULL), MP_EPARSE,
                 "a broken stream stays broken");
    scrape_k8s_stream_destroy(st);

    st = scrape_k8s_stream_create(16);
    calls = 0;
    const char *big = "{\"aaaaaaaa\":\"bbbbbbbbbbbbbbbbbbbbbbbb\"}";
    int rc = 0;
    for (size_t i = 0; big[i] && rc == 0; i += 4)
        rc = scrape_k8s_stream_feed(st, big + i, strlen(big + i) < 4 ? strlen(big + i) : 4, count,
                                    &calls, NULL);
    cr_assert_eq(rc, MP_EPARSE, "a value over the cap");
    cr_assert_eq(calls, 0);
    scrape_k8s_stream_destroy(st);
}

Test(k8s_stream, event_shape)
{
    struct json_object *v = json_tokener_parse("{\"type\":\"ADDED\"}");
    struct scrape_k8s_event ev;
    cr_assert_eq(scrape_k8s_event_decode(v, &ev, NULL), MP_EPARSE);
    json_object_put(v);
    v = json_tokener_parse("[1]");
    cr_assert_eq(scrape_k8s_event_decode(v, &ev, NULL), MP_EPARSE);
    json_object_put(v);
    v = json_tokener_parse("{\"type\":\"ERROR\",\"object\":{\"reason\":\"Gone\"}}");
    cr_assert_eq(scrape_k8s_event_decode(v, &ev, NULL), 0);
    cr_assert_str_eq(ev.reason, "Gone");
    cr_assert_eq(ev.code, 0);
    cr_assert_null(ev.resource_version);
    json_object_put(v);
}
