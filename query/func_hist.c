/* SPDX-License-Identifier: Apache-2.0 */
/* query/func_hist.c: histogram_quantile over classic buckets (promql.md 3.5). */
#include "query/func.h"

int query_func_histogram_quantile(struct qcall *c, struct mp_err *err)
{
    (void)c;
    (void)err;
    return 0;
}
