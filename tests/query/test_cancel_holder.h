/* SPDX-License-Identifier: Apache-2.0 */
/* tests/query/test_cancel_holder.h: a query on its own thread that holds one of the engine's
 * concurrency slots until released, for the cancellation tests of tests/query and tests/web.
 * Its cancel token's poll hook is called first in the queue (it then asks to be polled again
 * at once) and next at the evaluation's first check, where it reports in and blocks; every
 * wait is on a condition the other side sets. */
#ifndef TESTS_QUERY_TEST_CANCEL_HOLDER_H
#define TESTS_QUERY_TEST_CANCEL_HOLDER_H

#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

#include "query/query.h"

struct cancel_holder {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int polls;
    bool inside, release;
    struct query_cancel tok;
    struct query_engine *eng;
    struct tsdb *db;
    const char *q;
    int64_t t_ms;
    pthread_t th;
    int rc;          /* the query's status once finished */
    struct mp_err err;
};

static inline bool cancel_holder_poll(void *ctx)
{
    struct cancel_holder *h = ctx;
    pthread_mutex_lock(&h->mu);
    if (++h->polls == 1) {
        h->tok.next_poll_ns = 0; /* poll again at the first check of the evaluation */
    } else if (!h->inside) {
        h->inside = true;
        pthread_cond_broadcast(&h->cv);
        while (!h->release)
            pthread_cond_wait(&h->cv, &h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    return false;
}

static inline void *cancel_holder_main(void *arg)
{
    struct cancel_holder *h = arg;
    struct query_exec_opts o = {.cancel = &h->tok};
    struct query_result r = {0};
    h->rc = query_exec_instant(h->eng, h->db, h->q, strlen(h->q), h->t_ms, &o, &r, &h->err);
    query_result_fini(&r);
    return NULL;
}

/* Starts the query q at t_ms and returns once it holds its slot. */
static inline void cancel_holder_start(struct cancel_holder *h, struct query_engine *eng,
                                       struct tsdb *db, const char *q, int64_t t_ms)
{
    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->eng = eng;
    h->db = db;
    h->q = q;
    h->t_ms = t_ms;
    query_cancel_init(&h->tok, cancel_holder_poll, h);
    cr_assert_eq(pthread_create(&h->th, NULL, cancel_holder_main, h), 0);
    pthread_mutex_lock(&h->mu);
    while (!h->inside)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
}

/* Lets the query go on and waits for it; h->rc and h->err tell how it ended. */
static inline void cancel_holder_finish(struct cancel_holder *h)
{
    pthread_mutex_lock(&h->mu);
    h->release = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    cr_assert_eq(pthread_join(h->th, NULL), 0);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
}

#endif
