/* SPDX-License-Identifier: Apache-2.0 */
/* common/str.c: slices and the capped growable buffer (curl dynbuf in spirit). */
#include "common/str.h"

#include <stdarg.h>
#include <stdio.h>

#include "common/alloc.h"

int mp_str_cmp(struct mp_str a, struct mp_str b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c)
        return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

void mp_buf_init(struct mp_buf *b, size_t limit)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->limit = limit;
}

void mp_buf_fini(struct mp_buf *b)
{
    mp_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void mp_buf_reset(struct mp_buf *b)
{
    b->len = 0;
    if (b->cap)
        b->data[0] = '\0';
}

static int grow(struct mp_buf *b, size_t need)
{
    if (b->limit && need > b->limit)
        return MP_ELIMIT;
    if (need + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need + 1) {
        if (cap > SIZE_MAX / 2)
            return MP_ENOMEM;
        cap *= 2;
    }
    char *p = mp_realloc(b->data, cap);
    if (!p)
        return MP_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int mp_buf_reserve(struct mp_buf *b, size_t n)
{
    size_t need;
    if (__builtin_add_overflow(b->len, n, &need))
        return MP_ENOMEM;
    return grow(b, need);
}

int mp_buf_append(struct mp_buf *b, const void *p, size_t n)
{
    size_t need;
    if (__builtin_add_overflow(b->len, n, &need))
        return MP_ENOMEM;
    int rc = grow(b, need);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len = need;
    b->data[b->len] = '\0';
    return 0;
}

int mp_buf_appendf(struct mp_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return MP_EINVAL;
    if ((size_t)n < sizeof small)
        return mp_buf_append(b, small, (size_t)n);
    int rc = grow(b, b->len + (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

char *mp_buf_take(struct mp_buf *b, size_t *len)
{
    if (!b->data)
        grow(b, 0) == 0 ? (void)(b->data[0] = '\0') : (void)0;
    char *d = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}
