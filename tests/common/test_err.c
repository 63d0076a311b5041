/* SPDX-License-Identifier: Apache-2.0 */
#include <criterion/criterion.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/str.h"

Test(err, first_failure_wins)
{
    struct mp_err e;
    mp_err_clear(&e);
    cr_assert_eq(mp_err_set(&e, MP_EPARSE, "line %d: bad", 3), MP_EPARSE);
    cr_assert_eq(mp_err_set(&e, MP_EIO, "later"), MP_EIO);
    cr_assert_eq(e.code, MP_EPARSE);
    cr_assert_str_eq(e.msg, "line 3: bad");
    mp_err_wrap(&e, "file %s", "a.yml");
    cr_assert_str_eq(e.msg, "file a.yml: line 3: bad");
    cr_assert_str_eq(mp_errname(MP_ENOMEM), "NOMEM");
    cr_assert_str_eq(mp_strerror(MP_ELIMIT), "configured limit exceeded");
    cr_assert_str_eq(mp_strerror(12345), "unknown error");
    cr_assert_eq(mp_err_set(NULL, MP_EIO, "x"), MP_EIO);
}

Test(alloc, counts_bytes_and_injects_failure)
{
    size_t before = mp_alloc_used_bytes();
    /* The counter holds usable sizes: at least what was asked, at most one malloc chunk more. */
    char *p = mp_xmalloc(100);
    cr_assert_geq(mp_alloc_used_bytes(), before + 100);
    cr_assert_leq(mp_alloc_used_bytes(), before + 100 + 32);
    p = mp_xrealloc(p, 300);
    cr_assert_geq(mp_alloc_used_bytes(), before + 300);
    cr_assert_leq(mp_alloc_used_bytes(), before + 300 + 32);
    mp_free(p);
    cr_assert_eq(mp_alloc_used_bytes(), before);
    mp_alloc_fail_at(2);
    void *a = mp_malloc(8);
    void *b = mp_malloc(8);
    void *c = mp_malloc(8);
    cr_assert(a && !b && c);
    mp_free(a);
    mp_free(c);
    cr_assert_null(mp_calloc(SIZE_MAX / 2, 4));
}

Test(buf, respects_limit_and_take)
{
    struct mp_buf b;
    mp_buf_init(&b, 10);
    cr_assert_eq(mp_buf_append_str(&b, "hello"), 0);
    cr_assert_eq(mp_buf_appendf(&b, "%d", 1234), 0);
    cr_assert_str_eq(b.data, "hello1234");
    cr_assert_eq(mp_buf_append_str(&b, "xy"), MP_ELIMIT);
    cr_assert_eq(b.len, 9);
    size_t n;
    char *d = mp_buf_take(&b, &n);
    cr_assert_eq(n, 9);
    cr_assert_str_eq(d, "hello1234");
    mp_free(d);
    cr_assert_null(b.data);
    mp_buf_fini(&b);
    struct mp_buf big;
    mp_buf_init(&big, 0);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(mp_buf_appendf(&big, "%0300d", i), 0);
    cr_assert_eq(big.len, 30000);
    mp_buf_fini(&big);
    cr_assert(mp_str_cmp(MP_STR_LIT("a"), MP_STR_LIT("ab")) < 0);
    cr_assert(mp_str_cmp(MP_STR_LIT("b"), MP_STR_LIT("ab")) > 0);
    cr_assert(mp_str_eq(mp_str_c("x"), MP_STR_LIT("x")));
}
