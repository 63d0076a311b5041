/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/spin.h (private to tsdb): a spinlock for critical sections of a few dozen instructions
 * (the head's ref stripes, the label-set cache's buckets). Its unlock is a plain release store,
 * half the cost of a mutex's two atomic read-modify-writes; waiters spin briefly, then yield.
 * Zero-initialised means unlocked. */
#ifndef TSDB_SPIN_H
#define TSDB_SPIN_H

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

struct spin {
    _Atomic uint32_t v;
};

static inline void spin_lock(struct spin *l)
{
    for (unsigned n = 0;;) {
        /* acquire: pairs with the release in spin_unlock */
        if (!atomic_exchange_explicit(&l->v, 1, memory_order_acquire))
            return;
        while (atomic_load_explicit(&l->v, memory_order_relaxed)) {
            if (++n < 128) {
#if defined(__x86_64__) || defined(__i386__)
                __builtin_ia32_pause();
#endif
            } else {
                n = 0;
                sched_yield();
            }
        }
    }
}

static inline void spin_unlock(struct spin *l)
{
    atomic_store_explicit(&l->v, 0, memory_order_release);
}

#endif
