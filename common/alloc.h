/* SPDX-License-Identifier: Apache-2.0 */
/* common/alloc.h: every heap allocation of the project goes through here.
 * mp_x* abort with a log line on OOM (small fixed-size allocations); mp_malloc and friends
 * may return NULL (sizes derived from input). Live bytes are counted for /metrics, and tests
 * can make the n-th fallible allocation fail (mp_alloc_fail_at). Thread-safe. */
#ifndef COMMON_ALLOC_H
#define COMMON_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

void *mp_xmalloc(size_t n);
void *mp_xcalloc(size_t count, size_t size);
void *mp_xrealloc(void *p, size_t n);
char *mp_xstrdup(const char *s);
char *mp_xstrndup(const char *s, size_t n);

MP_NODISCARD void *mp_malloc(size_t n);
MP_NODISCARD void *mp_calloc(size_t count, size_t size);
MP_NODISCARD void *mp_realloc(void *p, size_t n);
void mp_free(void *p);

/* Bytes the allocator holds for p (its usable size, >= what was asked), as the counter sees
 * it; 0 for NULL. For modules that keep their own share of the counter. */
size_t mp_alloc_size(const void *p);

/* Bytes currently allocated through this module (usable sizes). */
size_t mp_alloc_used_bytes(void);
/* For long-running servers, before any thread starts: queries allocate postings and sample
 * arrays of megabytes and free them when they answer; glibc's defaults serve those from fresh
 * mmaps and trim freed heap tops, so every query faulted its arrays in again (half of a
 * 7k-series select over 1M series went to page faults). Blocks up to 32 MiB stay in the heap
 * and only more than 64 MiB free at a heap's top goes back. GLIBC_TUNABLES that set malloc
 * parameters win. */
void mp_alloc_tune_server(void);
/* Test hook: the n-th fallible allocation from now fails (n >= 1); 0 disables. */
void mp_alloc_fail_at(uint64_t n);

#endif
