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

/* ---- UTF-8 (Go unicode/utf8 semantics) ---------------------------------------------- */

size_t mp_utf8_decode(const unsigned char *p, size_t n, uint32_t *r)
{
    if (n == 0) {
        *r = MP_UTF8_ERROR;
        return 0;
    }
    unsigned c = p[0];
    if (c < 0x80) {
        *r = c;
        return 1;
    }
    size_t w;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        w = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        w = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        w = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* > U+10FFFF */
    } else {
        goto bad;
    }
    if (n < w || p[1] < lo || p[1] > hi)
        goto bad;
    for (size_t i = 2; i < w; i++)
        if ((p[i] & 0xC0) != 0x80)
            goto bad;
    if (w == 2)
        *r = (c & 0x1Fu) << 6 | (p[1] & 0x3Fu);
    else if (w == 3)
        *r = (c & 0x0Fu) << 12 | (p[1] & 0x3Fu) << 6 | (p[2] & 0x3Fu);
    else
        *r = (c & 0x07u) << 18 | (p[1] & 0x3Fu) << 12 | (p[2] & 0x3Fu) << 6 | (p[3] & 0x3Fu);
    return w;
bad:
    *r = MP_UTF8_ERROR;
    return 1;
}

bool mp_utf8_valid(struct mp_str s)
{
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t i = 0;
    while (i < s.len) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t r;
        size_t w = mp_utf8_decode(p + i, s.len - i, &r);
        if (w == 1)
            return false; /* a lead byte >= 0x80 that decodes to width 1 is invalid */
        i += w;
    }
    return true;
}

size_t mp_utf8_encode(uint32_t r, char out[4])
{
    if (r < 0x80) {
        out[0] = (char)r;
        return 1;
    }
    if (r < 0x800) {
        out[0] = (char)(0xC0 | r >> 6);
        out[1] = (char)(0x80 | (r & 0x3F));
        return 2;
    }
    if (r < 0x10000) {
        out[0] = (char)(0xE0 | r >> 12);
        out[1] = (char)(0x80 | (r >> 6 & 0x3F));
        out[2] = (char)(0x80 | (r & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | r >> 18);
    out[1] = (char)(0x80 | (r >> 12 & 0x3F));
    out[2] = (char)(0x80 | (r >> 6 & 0x3F));
    out[3] = (char)(0x80 | (r & 0x3F));
    return 4;
}
