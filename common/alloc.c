/* SPDX-License-Identifier: Apache-2.0 */
/* common/alloc.c: allocator wrapper with byte accounting, as redis zmalloc does. The counter
 * uses malloc_usable_size (glibc, and ASan's allocator), so blocks carry no header of their own:
 * the head allocates a few small blocks per series and 16 bytes each would show. */
#include "common/alloc.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static _Atomic size_t used_bytes;
static _Atomic uint64_t fail_countdown;

MP_NORETURN static void oom(size_t n)
{
    char buf[128];
    int len = snprintf(buf, sizeof buf, "level=error msg=\"out of memory\" bytes=%zu\n", n);
    if (len > 0)
        (void)!write(2, buf, (size_t)len);
    abort();
}

static bool should_fail(void)
{
    uint64_t c = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (c == 0)
        return false;
    /* relaxed: the hook is only used by single-threaded tests */
    return atomic_fetch_sub_explicit(&fail_countdown, 1, memory_order_relaxed) == 1;
}

/* relaxed: the counter is a statistic, not a synchronisation point */
static void account(void *p, bool add)
{
    size_t n = malloc_usable_size(p);
    if (add)
        atomic_fetch_add_explicit(&used_bytes, n, memory_order_relaxed);
    else
        atomic_fetch_sub_explicit(&used_bytes, n, memory_order_relaxed);
}

static void *raw_alloc(size_t n, bool zero)
{
    void *p = zero ? calloc(1, n ? n : 1) : malloc(n ? n : 1);
    if (p)
        account(p, true);
    return p;
}

static void *raw_realloc(void *ptr, size_t n)
{
    if (!ptr)
        return raw_alloc(n, false);
    size_t old = malloc_usable_size(ptr);
    void *p = realloc(ptr, n ? n : 1);
    if (!p)
        return NULL;
    account(p, true);
    atomic_fetch_sub_explicit(&used_bytes, old, memory_order_relaxed);
    return p;
}

void *mp_malloc(size_t n)
{
    return should_fail() ? NULL : raw_alloc(n, false);
}

void *mp_calloc(size_t count, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(count, size, &n) || should_fail())
        return NULL;
    return raw_alloc(n, true);
}

void *mp_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : raw_realloc(p, n);
}

void mp_free(void *ptr)
{
    if (!ptr)
        return;
    account(ptr, false);
    free(ptr);
}

void *mp_xmalloc(size_t n)
{
    void *p = raw_alloc(n, false);
    if (!p)
        oom(n);
    return p;
}

void *mp_xcalloc(size_t count, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(count, size, &n))
        oom(SIZE_MAX);
    void *p = raw_alloc(n, true);
    if (!p)
        oom(n);
    return p;
}

void *mp_xrealloc(void *ptr, size_t n)
{
    void *p = raw_realloc(ptr, n);
    if (!p)
        oom(n);
    return p;
}

char *mp_xstrndup(const char *s, size_t n)
{
    char *p = mp_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *mp_xstrdup(const char *s)
{
    return mp_xstrndup(s, strlen(s));
}

size_t mp_alloc_size(const void *p)
{
    return p ? malloc_usable_size((void *)p) : 0;
}

size_t mp_alloc_used_bytes(void)
{
    return atomic_load_explicit(&used_bytes, memory_order_relaxed);
}

void mp_alloc_fail_at(uint64_t n)
{
    atomic_store_explicit(&fail_countdown, n, memory_order_relaxed);
}

void mp_alloc_tune_server(void)
{
    const char *t = getenv("GLIBC_TUNABLES");
    if (t && strstr(t, "glibc.malloc."))
        return;
    (void)mallopt(M_MMAP_THRESHOLD, 32 << 20);
    (void)mallopt(M_TRIM_THRESHOLD, 64 << 20);
}
