/* SPDX-License-Identifier: Apache-2.0 */
/* configs/arena.c: every allocation of a loaded config hangs off one list owned by the
 * struct cfg_config, so that a load failing half-way frees everything with one call and
 * destroy needs no per-type walk. Each allocation is its own block: configs are small and
 * this keeps ASan's view exact (STYLE 2.6.6). Compiled regexes are listed separately
 * because they own memory outside the arena. */
#include "configs/internal.h"

#include <string.h>

#include "common/alloc.h"
#include "common/matcher.h"

void *cfg_arena_alloc(struct cfg_config *cfg, size_t n)
{
    if (n > SIZE_MAX - sizeof(struct cfg_arena_blk))
        return NULL;
    struct cfg_arena_blk *b = mp_calloc(1, sizeof *b + n);
    if (!b)
        return NULL;
    b->next = cfg->arena_;
    cfg->arena_ = b;
    return b->data;
}

void *cfg_arena_array(struct cfg_config *cfg, size_t count, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(count, size, &n))
        return NULL;
    return cfg_arena_alloc(cfg, n ? n : 1);
}

char *cfg_arena_strndup(struct cfg_config *cfg, const char *s, size_t n)
{
    if (n == SIZE_MAX)
        return NULL;
    char *p = cfg_arena_alloc(cfg, n + 1);
    if (p && n)
        memcpy(p, s, n);
    return p;
}

void cfg_arena_free_all(struct cfg_config *cfg)
{
    for (struct cfg_regex_ref *r = cfg->regexes_; r; r = r->next)
        mp_regex_destroy(r->re);
    cfg->regexes_ = NULL;
    struct cfg_arena_blk *b = cfg->arena_;
    while (b) {
        struct cfg_arena_blk *next = b->next;
        mp_free(b);
        b = next;
    }
    cfg->arena_ = NULL;
}
