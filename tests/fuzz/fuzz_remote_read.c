/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_remote_read.c: remote-read request bodies (remote/read.c remote_read_decode)
 * without a tsdb: the input as a snappy body, and the input as raw protobuf wrapped in snappy
 * (so the fuzzer reaches the protobuf-c decoder, the negotiation and the matcher conversion
 * without having to learn snappy), with and without external labels and with a small memory
 * cap. The status must agree with the result (200 with a request, else 400/500 and none), the
 * negotiated type must be SAMPLES or STREAMED_XOR_CHUNKS, every query must have its matchers,
 * and nothing may stay allocated. Only crashes, over-reads, UB and these checks count.
 * Seeds (corpus/remote_read/pb_*): `protoc-c --proto_path=remote --encode=prometheus.ReadRequest
 * remote.proto < text`, see corpus/remote_read/README.md. */
#include <snappy-c.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "common/matcher.h"
#include "remote/remote.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *body, size_t len, size_t memory, const struct mp_labels *ext)
{
    struct remote_read_options o;
    remote_read_options_init(&o);
    o.max_decoded_bytes = (size_t)1 << 20;
    o.max_memory_bytes = memory;
    struct remote_read_request *req;
    int status = 0;
    int rc = remote_read_decode(body, len, &o, ext, &req, &status, NULL);
    if ((rc == 0) != (req != NULL) || (rc == 0) != (status == 200))
        __builtin_trap();
    if (rc) {
        if (status != 400 && status != 500)
            __builtin_trap();
        return;
    }
    int t = remote_read_request_response_type(req);
    if (t != 0 && t != 1)
        __builtin_trap();
    for (size_t i = 0; i < remote_read_request_num_queries(req); i++) {
        const struct mp_matcher *const *m;
        size_t n;
        int64_t mint, maxt;
        remote_read_request_query(req, i, &m, &n, &mint, &maxt);
        for (size_t j = 0; j < n; j++)
            if (!m[j])
                __builtin_trap();
    }
    remote_read_request_free(req);
}

static struct mp_labels *ext_labels(void)
{
    struct mp_label l[] = {{MP_STR_LIT("job"), MP_STR_LIT("a")}, {MP_STR_LIT("site"), MP_STR_LIT("x")}};
    struct mp_labels *ls = NULL;
    if (mp_labels_create(l, 2, &ls, NULL) != 0)
        abort();
    return ls;
}

/* The regex library allocates its contexts and per-thread match data at first use: one
 * regex matcher before the leak check of the first input. */
static void warm_up(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    struct mp_matcher *m;
    if (mp_matcher_create(MP_MATCH_REGEX, MP_STR_LIT("a"), MP_STR_LIT("x(a|b)+y?[0-9]"), &m,
                          NULL) == 0) { /* no fast path: PCRE2 itself */
        (void)mp_matcher_matches(m, MP_STR_LIT("xaby1"));
        mp_matcher_destroy(m);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    warm_up();
    struct mp_labels *ext = ext_labels();
    size_t before = mp_alloc_used_bytes();
    check(data, size, (size_t)4 << 20, ext);
    if (size <= ((size_t)1 << 20)) {
        size_t cap = snappy_max_compressed_length(size), len = cap;
        char *body = malloc(cap ? cap : 1);
        if (body && snappy_compress((const char *)data, size, body, &len) == SNAPPY_OK) {
            check((const uint8_t *)body, len, (size_t)4 << 20, ext);
            check((const uint8_t *)body, len, (size_t)4 << 20, NULL);
            check((const uint8_t *)body, len, 2048, ext);
        }
        free(body);
    }
    if (mp_alloc_used_bytes() != before)
        __builtin_trap(); /* a leak */
    mp_labels_release(ext);
    return 0;
}
