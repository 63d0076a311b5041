/* SPDX-License-Identifier: Apache-2.0 */
/* common/str.c: slices, the capped growable buffer (curl dynbuf in spirit), UTF-8, and the
 * digits of numbers. */
#include "common/str.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

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

/* ---- numbers ---- */

int mp_fmt_uint(uint64_t u, char buf[24])
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    for (int i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    buf[n] = '\0';
    return n;
}

/* The powers of ten a double holds exactly. */
static const double P10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                             1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Shortest digits of a > 0 when at most 15 are needed (nearly every sample value; the printf
 * and strtod below cost ~1 us a value). For the first k where m = round(a * 10^k) gives
 * m / 10^k == a, the decimal m * 10^-k parses back to a: m < 1e15 and 10^k are exact doubles
 * and the division rounds correctly, as strtod does. v's rounding interval (2^-52 relative)
 * is narrower than the gaps of the 15-digit decimals (1e-15 relative at least), so that is
 * the one such decimal, the one "%.14e" prints. -1: more than 15 digits are needed; 0: cannot
 * tell (a from 1e15 up, or below ~1e-7 where the exact 10^k run out). */
static int shortest15(double a, char d[24], int *exp10)
{
    for (int k = 0; k < (int)(sizeof P10 / sizeof P10[0]); k++) {
        double x = a * P10[k];
        if (x >= 1e15)
            return k ? -1 : 0;
        double m = nearbyint(x);
        if (m == 0 || m / P10[k] != a)
            continue;
        int n = mp_fmt_uint((uint64_t)m, d), nd = n;
        while (nd > 1 && d[nd - 1] == '0')
            nd--;
        d[nd] = '\0';
        *exp10 = n - 1 - k;
        return nd;
    }
    return 0;
}

/* Shortest digits of finite non-zero |v|: 1..17 digits in d (no dot, no trailing zeros),
 * *exp10 = decimal exponent of the first digit. */
int mp_fmt_shortest_digits(double v, char d[24], int *exp10)
{
    char tmp[48];
    bool sub = fabs(v) < DBL_MIN;
    int fast = sub ? 0 : shortest15(fabs(v), d, exp10);
    if (fast > 0)
        return fast;
    /* more than 15 digits (fast < 0) or undecided; subnormals carry fewer: from 1 there */
    for (int prec = sub ? 1 : fast < 0 ? 16 : 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, fabs(v));
        if (prec == 17 || strtod(tmp, NULL) == fabs(v))
            break;
    }
    int nd = 0;
    const char *p = tmp;
    for (; *p && *p != 'e'; p++)
        if (*p != '.')
            d[nd++] = *p;
    while (nd > 1 && d[nd - 1] == '0')
        nd--;
    d[nd] = '\0';
    *exp10 = atoi(p + 1);
    return nd;
}
