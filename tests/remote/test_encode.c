/* SPDX-License-Identifier: Apache-2.0 */
/* tests/remote/test_encode.c: remote_write_encode's bodies decode to what was encoded (labels,
 * samples, order), an empty request is valid, and the receiver stores an encoded request. */
#include <criterion/criterion.h>
#include <string.h>

#include "common/labels.h"
#include "common/str.h"
#include "remote/remote.h"
#include "support_remote.h"
#include "tsdb/tsdb.h"

static struct mp_label L(const char *n, const char *v)
{
    return (struct mp_label){{n, strlen(n)}, {v, strlen(v)}};
}

Test(remote_encode, round_trip)
{
    struct mp_label a[] = {L("__name__", "up"), L("job", "a")};
    struct mp_label b[] = {L("__name__", "x"), L("i", "1"), L("z", "")};
    int64_t ta[] = {1000, 2000, 3000};
    double va[] = {1, 0, -2.5};
    int64_t tb[] = {5};
    double vb[] = {42};
    struct remote_write_series s[] = {{a, 2, ta, va, 3}, {b, 3, tb, vb, 1}};
    struct mp_buf out;
    mp_buf_init(&out, 0);
    cr_assert_eq(remote_write_encode(s, 2, &out, NULL), 0);
    struct remote_write_limits lim;
    remote_write_limits_init(&lim);
    lim.max_ahead_ms = -1;
    struct remote_write_request *req = NULL;
    struct remote_write_result res;
    cr_assert_eq(remote_write_decode((const uint8_t *)out.data, out.len, &lim, NULL, &req, &res,
                                     NULL),
                 0);
    cr_assert_eq(res.series, 2);
    cr_assert_eq(res.samples, 4);
    const struct mp_label *l;
    size_t n;
    cr_assert(remote_write_request_series(req, 0, &l, &n));
    cr_assert_eq(n, 2);
    cr_assert(mp_str_eq(l[1].value, MP_STR_LIT("a")));
    cr_assert(remote_write_request_series(req, 1, &l, &n));
    cr_assert_eq(n, 2, "the empty label is dropped by the receiver, not the encoder");
    remote_write_request_free(req);

    /* stored and read back through a real db */
    char dir[64];
    struct tsdb *db = rw_db_open(dir);
    cr_assert_eq(remote_write_decode_and_append(db, (const uint8_t *)out.data, out.len, &lim,
                                                &res, NULL),
                 0);
    cr_assert_eq(res.samples_appended, 4);
    rw_db_close(db, dir);
    mp_buf_fini(&out);
}

Test(remote_encode, empty_request)
{
    struct mp_buf out;
    mp_buf_init(&out, 0);
    cr_assert_eq(remote_write_encode(NULL, 0, &out, NULL), 0);
    cr_assert_gt(out.len, 0, "a snappy block has at least its length header");
    struct remote_write_request *req = NULL;
    struct remote_write_result res;
    cr_assert_eq(
        remote_write_decode((const uint8_t *)out.data, out.len, NULL, NULL, &req, &res, NULL), 0);
    cr_assert_eq(res.series, 0);
    remote_write_request_free(req);
    mp_buf_fini(&out);
}

Test(remote_encode, buffer_limit)
{
    struct mp_label a[] = {L("__name__", "up")};
    int64_t t = 1;
    double v = 1;
    struct remote_write_series s = {a, 1, &t, &v, 1};
    struct mp_buf out;
    mp_buf_init(&out, 4);
    cr_assert_eq(remote_write_encode(&s, 1, &out, NULL), MP_ELIMIT);
    mp_buf_fini(&out);
}
