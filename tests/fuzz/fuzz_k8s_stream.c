/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_k8s_stream.c: the Kubernetes watch-stream decoder (scraper/k8s_client.c):
 * concatenated JSON values split into chunks at arbitrary offsets, each value taken apart as
 * a watch event and its object parsed for a role (scraper/k8s_targets.c, ingress included) and
 * built, with a node cache holding one fixed node (attach_metadata.node labels for the pod and
 * endpoints roles). The first input byte seeds the chunk sizes and picks the role (seed % 6).
 * Checks: feeding the bytes in chunks gives the same values and the same final status as feeding
 * them at once; nothing crashes or leaks. Every error return is fine. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "scraper/scraper.h"
#include "scraper/sd_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct acc {
    uint64_t hash;
    size_t n;
    enum scrape_k8s_role role;
};

static const char node_json[] =
    "{\"metadata\":{\"name\":\"n1\",\"labels\":{\"zone\":\"a\",\"k.io/x\":\"\"},"
    "\"annotations\":{\"a\":\"b\"}}}";

/* Every node name resolves to the fixed node (parsed once, kept for the process). */
static const struct scrape_k8s_object *any_node(void *ctx, const char *name)
{
    (void)ctx;
    (void)name;
    static struct scrape_k8s_object *node;
    if (node == NULL &&
        scrape_k8s_object_parse(SCRAPE_K8S_NODE, node_json, sizeof node_json - 1, &node, NULL))
        __builtin_trap();
    return node;
}

static bool on_value(void *ctx, struct json_object *v)
{
    struct acc *a = ctx;
    const char *s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
    for (const char *p = s; *p; p++)
        a->hash = (a->hash ^ (unsigned char)*p) * 1099511628211ull;
    a->n++;
    struct scrape_k8s_event ev;
    if (scrape_k8s_event_decode(v, &ev, NULL) != 0 || strcmp(ev.type, "ERROR") == 0 ||
        strcmp(ev.type, "BOOKMARK") == 0)
        return true;
    size_t len = 0;
    const char *os = json_object_to_json_string_length(ev.object, JSON_C_TO_STRING_PLAIN, &len);
    struct scrape_k8s_object *o = NULL;
    if (scrape_k8s_object_parse(a->role, os, len, &o, NULL) == 0) {
        struct scrape_target_group g = {0};
        struct scrape_k8s_lookup lk = {NULL, NULL, NULL, any_node};
        if (scrape_k8s_build(o, &lk, &g, NULL) == 0)
            scrape_target_group_fini(&g);
        scrape_k8s_object_destroy(o);
    }
    return true;
}

static int run(const char *b, size_t n, uint8_t seed, struct acc *a)
{
    struct scrape_k8s_stream *s = scrape_k8s_stream_create(1 << 20);
    int rc = 0;
    uint32_t x = seed * 2654435761u + 1;
    size_t off = 0;
    while (off < n && rc == 0) {
        size_t step = n - off;
        if (seed != 0) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            step = 1 + x % 17;
            if (step > n - off)
                step = n - off;
        }
        rc = scrape_k8s_stream_feed(s, b + off, step, on_value, a, NULL);
        off += step;
    }
    scrape_k8s_stream_destroy(s);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t seed = data[0];
    const char *b = (const char *)data + 1;
    size_t n = size - 1;
    enum scrape_k8s_role role = (enum scrape_k8s_role)(seed % 6);
    struct acc whole = {.hash = 1469598103934665603ull, .role = role};
    struct acc split = {.hash = 1469598103934665603ull, .role = role};
    int rw = run(b, n, 0, &whole);
    int rs = run(b, n, seed | 1, &split);
    if (rw != rs || whole.n != split.n || whole.hash != split.hash)
        __builtin_trap();
    return 0;
}
