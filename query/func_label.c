/* SPDX-License-Identifier: Apache-2.0 */
/* query/func_label.c: label_replace and label_join (promql.md 3.9). */
#include "query/func.h"

int query_func_label_replace(struct qcall *c, struct mp_err *err)
{
    (void)c;
    (void)err;
    return 0;
}

int query_func_label_join(struct qcall *c, struct mp_err *err)
{
    (void)c;
    (void)err;
    return 0;
}
