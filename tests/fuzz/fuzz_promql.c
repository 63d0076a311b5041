/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_promql.c: the PromQL parser (query/parse.c) on arbitrary bytes, with and
 * without experimental functions. An accepted expression must format, and its printed form
 * must parse again and print the same (except @ timestamps, printed with 3 decimals, and
 * +Inf). Only
 * crashes, over-reads, UB, leaks and this round trip count; every parse error is fine. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "query/query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run(const char *b, size_t n, bool experimental)
{
    struct query_parse_opts o;
    query_parse_opts_init(&o);
    o.experimental_functions = experimental;
    struct query_expr *e = NULL;
    struct query_parse_error err;
    int rc = query_parse(b, n, &o, &e, &err);
    if (rc != 0) {
        if (e || (rc == MP_EPARSE && err.pos > n))
            __builtin_trap();
        return;
    }
    struct mp_buf out, again;
    mp_buf_init(&out, 0);
    mp_buf_init(&again, 0);
    if (query_expr_format(e, &out) != 0)
        __builtin_trap();
    struct query_expr *e2 = NULL;
    if (query_parse(out.data, out.len, &o, &e2, &err) == 0) {
        if (query_expr_format(e2, &again) != 0)
            __builtin_trap();
        /* Prometheus prints +Inf for the literal Inf, which reparses as unary plus: not a
         * fixed point there either */
        if (!strstr(out.data, " @ ") && !strstr(out.data, "+Inf") &&
            (again.len != out.len || memcmp(again.data, out.data, out.len) != 0))
            __builtin_trap();
    }
    query_expr_free(e2);
    mp_buf_fini(&again);
    mp_buf_fini(&out);
    query_expr_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    /* exactly sized copy so a read past the end is caught */
    char *b = malloc(size ? size : 1);
    if (!b)
        return 0;
    memcpy(b, data, size);
    run(b, size, false);
    run(b, size, true);
    free(b);
    return 0;
}
