/* SPDX-License-Identifier: Apache-2.0 */
/* query/cancel.c: query cancellation tokens (query.h) and the check the evaluator and the
 * concurrency queue make (eval_core.h). The flag is atomic so any thread (a signal handler
 * included) may set it; the poll hook and its schedule belong to the query's thread. */
#include "query/eval_core.h"

void query_cancel_init(struct query_cancel *c, bool (*poll)(void *ctx), void *poll_ctx)
{
    atomic_store(&c->canceled, false);
    c->poll = poll;
    c->poll_ctx = poll_ctx;
    c->next_poll_ns = 0;
}

void query_cancel_set(struct query_cancel *c)
{
    atomic_store(&c->canceled, true);
}

bool query_cancel_is_set(const struct query_cancel *c)
{
    return atomic_load(&c->canceled);
}

bool query_cancel_due(const _Atomic bool *stop, struct query_cancel *c, int64_t now_ns)
{
    if (stop && atomic_load_explicit(stop, memory_order_relaxed))
        return true;
    if (!c)
        return false;
    if (atomic_load_explicit(&c->canceled, memory_order_relaxed))
        return true;
    if (c->poll && now_ns >= c->next_poll_ns) {
        c->next_poll_ns = now_ns + (int64_t)QUERY_CANCEL_POLL_MS * 1000000;
        if (c->poll(c->poll_ctx)) {
            query_cancel_set(c);
            return true;
        }
    }
    return false;
}
