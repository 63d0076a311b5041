/* SPDX-License-Identifier: Apache-2.0 */
/* query/arena.c: the per-query arena (STYLE 2.6.6). Bump allocation in 8 KiB blocks; the whole
 * tree goes at once. Compiled matchers are heap objects of common/, so the arena keeps a list
 * of them and destroys them with the blocks. */
#include "query/query_internal.h"

#include <stdalign.h>
#include <stddef.h>

#include "common/alloc.h"

#define BLOCK_BYTES 8192

struct block {
    struct block *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
};

struct owned {
    struct owned *next;
    struct mp_matcher *m;
};

struct query_arena {
    struct block *head;
    struct owned *matchers;
};

struct query_arena *query_arena_create(void)
{
    struct query_arena *a = mp_malloc(sizeof *a);
    if (a) {
        a->head = NULL;
        a->matchers = NULL;
    }
    return a;
}

void query_arena_destroy(struct query_arena *a)
{
    if (!a)
        return;
    for (struct owned *o = a->matchers; o; o = o->next)
        mp_matcher_destroy(o->m);
    for (struct block *b = a->head, *n; b; b = n) {
        n = b->next;
        mp_free(b);
    }
    mp_free(a);
}

void *query_arena_alloc(struct query_arena *a, size_t n)
{
    size_t al = alignof(max_align_t);
    if (n > SIZE_MAX / 2)
        return NULL;
    n = (n + al - 1) & ~(al - 1);
    struct block *b = a->head;
#if defined(MP_SANITIZER_BUILD)
    b = NULL; /* one block per allocation: ASan sees every overrun */
#endif
    if (!b || b->cap - b->used < n) {
        size_t cap = n;
#if !defined(MP_SANITIZER_BUILD)
        if (cap < BLOCK_BYTES)
            cap = BLOCK_BYTES;
#endif
        b = mp_malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

bool query_arena_own_matcher(struct query_arena *a, struct mp_matcher *m)
{
    struct owned *o = query_arena_alloc(a, sizeof *o);
    if (!o) {
        mp_matcher_destroy(m);
        return false;
    }
    o->m = m;
    o->next = a->matchers;
    a->matchers = o;
    return true;
}
