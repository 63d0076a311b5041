/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_remote_write.c: remote-write bodies (remote/write.c) through decode and
 * validation, without a tsdb: the input as a snappy body, and the input as raw protobuf wrapped
 * in snappy (so the fuzzer reaches the protobuf-c decoder and the label checks without having
 * to learn snappy), with small limits so the caps are exercised, also through a block cache.
 * Every valid series must come out sorted by name, unique, with a valid __name__ and no empty
 * value; counts must add up; nothing may stay allocated. Only crashes, over-reads, UB and these
 * checks count. */
#include <snappy-c.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "remote/remote.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *body, size_t len, size_t memory, struct remote_write_cache *cache)
{
    struct remote_write_limits lim;
    remote_write_limits_init(&lim);
    lim.max_decoded_bytes = (size_t)1 << 20;
    lim.max_memory_bytes = memory;
    struct remote_write_request *req;
    struct remote_write_result res;
    int rc = remote_write_decode(body, len, &lim, cache, &req, &res, NULL);
    if ((rc == 0) != (req != NULL) || (rc == 0) != (res.status == 204))
        __builtin_trap();
    if (rc) {
        if (res.status != 400 && res.status != 413 && res.status != 500)
            __builtin_trap();
        return;
    }
    size_t valid = 0;
    for (size_t i = 0; i < res.series; i++) {
        const struct mp_label *l;
        size_t n;
        if (!remote_write_request_series(req, i, &l, &n))
            continue;
        valid++;
        bool has_name = false;
        for (size_t j = 0; j < n; j++) {
            if (l[j].value.len == 0 || !mp_label_name_is_valid(l[j].name))
                __builtin_trap();
            if (j && mp_str_cmp(l[j - 1].name, l[j].name) >= 0)
                __builtin_trap();
            if (mp_str_eq(l[j].name, MP_STR_LIT("__name__")))
                has_name = mp_metric_name_is_valid(l[j].value);
        }
        if (!has_name)
            __builtin_trap();
    }
    if (remote_write_request_series(req, res.series, &(const struct mp_label *){0}, &(size_t){0}))
        __builtin_trap();
    if (valid + res.series_invalid != res.series)
        __builtin_trap();
    remote_write_request_free(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t before = mp_alloc_used_bytes();
    struct remote_write_cache *cache;
    if (remote_write_cache_create((size_t)1 << 20, &cache) != 0)
        return 0;
    check(data, size, (size_t)4 << 20, NULL);
    if (size <= ((size_t)1 << 20)) {
        size_t cap = snappy_max_compressed_length(size), len = cap;
        char *body = malloc(cap ? cap : 1);
        if (body && snappy_compress((const char *)data, size, body, &len) == SNAPPY_OK) {
            check((const uint8_t *)body, len, (size_t)4 << 20, cache);
            check((const uint8_t *)body, len, 4096, cache); /* reused blocks, small cap */
        }
        free(body);
    }
    remote_write_cache_destroy(cache);
    if (mp_alloc_used_bytes() != before)
        __builtin_trap(); /* a leak */
    return 0;
}
