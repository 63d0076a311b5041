/* SPDX-License-Identifier: Apache-2.0 */
/* common/str.h: string slices (not NUL-terminated) and a growable byte buffer with a cap.
 * An mp_buf belongs to one thread; its data pointer is valid until the next append. */
#ifndef COMMON_STR_H
#define COMMON_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/err.h"

struct mp_str {
    const char *ptr;
    size_t len;
};

#define MP_STR_LIT(s) ((struct mp_str){(s), sizeof(s) - 1})

static inline struct mp_str mp_str_c(const char *s)
{
    return (struct mp_str){s, s ? strlen(s) : 0};
}

static inline bool mp_str_eq(struct mp_str a, struct mp_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* Byte-wise comparison, as Go compares strings. */
int mp_str_cmp(struct mp_str a, struct mp_str b);

struct mp_buf {
    char *data; /* always NUL-terminated when cap > 0 */
    size_t len;
    size_t cap;
    size_t limit; /* appends beyond this many bytes fail with MP_ELIMIT; 0 = no cap */
};

void mp_buf_init(struct mp_buf *b, size_t limit);
void mp_buf_fini(struct mp_buf *b);
void mp_buf_reset(struct mp_buf *b);
MP_NODISCARD int mp_buf_append(struct mp_buf *b, const void *p, size_t n);
/* Makes room for n more bytes (plus the NUL) without changing len: the caller may then write
 * up to n bytes at data + len and set len. MP_ENOMEM / MP_ELIMIT. */
MP_NODISCARD int mp_buf_reserve(struct mp_buf *b, size_t n);
MP_NODISCARD int mp_buf_appendf(struct mp_buf *b, const char *fmt, ...) MP_PRINTF(2, 3);
static inline int mp_buf_append_str(struct mp_buf *b, const char *s)
{
    return mp_buf_append(b, s, strlen(s));
}
/* Hands the data out (caller frees with mp_free) and leaves b empty. */
char *mp_buf_take(struct mp_buf *b, size_t *len);

/* ---- UTF-8, as Go's unicode/utf8 ---- */
#define MP_UTF8_ERROR 0xFFFDu
/* Decodes the rune at p[0..n) into *r and returns its width, as utf8.DecodeRune: an invalid
 * or truncated sequence (overlong form, surrogate, > U+10FFFF) gives MP_UTF8_ERROR and width
 * 1 (a real U+FFFD in the input has width 3); n == 0 gives MP_UTF8_ERROR and 0. */
size_t mp_utf8_decode(const unsigned char *p, size_t n, uint32_t *r);
/* Whether s is valid UTF-8 (utf8.ValidString). */
bool mp_utf8_valid(struct mp_str s);
/* Encodes r (<= U+10FFFF, not a surrogate) into out; returns 1..4. */
size_t mp_utf8_encode(uint32_t r, char out[4]);

/* ---- digits of numbers ---- */
/* Decimal digits of u into buf, NUL-terminated; returns their count. */
int mp_fmt_uint(uint64_t u, char buf[24]);
/* Shortest decimal digits of finite, non-zero |v| that strtod maps back to |v|, as Go's
 * strconv.FormatFloat(v, 'e', -1, 64): 1..17 digits in d (no dot, no trailing zeros,
 * NUL-terminated), *exp10 the decimal exponent of the first digit; returns the count. */
int mp_fmt_shortest_digits(double v, char d[24], int *exp10);

#endif
