/* SPDX-License-Identifier: Apache-2.0 */
/* tests/configs/test_alloc.c: allocation-failure torture (curl style). The n-th allocation
 * fails for n = 1, 2, ... until a load succeeds; every failing load must report MP_ENOMEM,
 * return no config and leave no bytes behind. */
#include <criterion/criterion.h>

#include "common/alloc.h"
#include "common/matcher.h"
#include "configs/config.h"
#include "testutil.h"

static void torture(const char *path)
{
    size_t len;
    char *text = read_all(path, &len);
    cr_assert_not_null(text);
    /* the regex engine sets up its process-wide PCRE2 contexts on first use and aborts if
     * that fails; do it before failures are injected */
    struct mp_regex *re = NULL;
    cr_assert_eq(mp_regex_compile(MP_STR_LIT("a"), 0, &re, NULL), 0);
    mp_regex_destroy(re);
    size_t base = mp_alloc_used_bytes();
    for (uint64_t n = 1; n < 100000; n++) {
        struct cfg_config *c = NULL;
        struct mp_err err;
        mp_err_clear(&err);
        mp_alloc_fail_at(n);
        int rc = cfg_config_load_buf(path, text, len, &c, &err);
        mp_alloc_fail_at(0);
        if (rc == 0) {
            cr_assert_not_null(c);
            struct mp_buf b;
            mp_buf_init(&b, 0);
            cr_assert_eq(cfg_config_to_yaml(c, &b), 0);
            mp_buf_fini(&b);
            cfg_config_destroy(c);
            cr_assert_eq(mp_alloc_used_bytes(), base, "leak after success");
            cr_assert_gt(n, 1, "no allocation was ever made");
            free(text);
            return;
        }
        cr_assert_eq(rc, MP_ENOMEM, "n=%llu: %s", (unsigned long long)n, err.msg);
        cr_assert_null(c);
        cr_assert_eq(mp_alloc_used_bytes(), base, "n=%llu leaked %zu bytes", (unsigned long long)n,
                     mp_alloc_used_bytes() - base);
    }
    cr_assert_fail("never succeeded");
}

Test(alloc, linkerd_config_survives_every_failed_allocation)
{
    torture(SRCDIR "/configs/linkerd-prometheus.yml");
}

Test(alloc, http_and_remote_fixtures_survive_every_failed_allocation)
{
    torture(TESTDATA "/good/http_client.yml");
    torture(TESTDATA "/good/remote.yml");
}

Test(alloc, to_yaml_reports_a_buffer_limit)
{
    struct cfg_config *c = NULL;
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(cfg_config_load_file(SRCDIR "/configs/linkerd-prometheus.yml", &c, &err), 0);
    struct mp_buf b;
    mp_buf_init(&b, 100);
    cr_assert_eq(cfg_config_to_yaml(c, &b), MP_ELIMIT);
    mp_buf_fini(&b);
    cfg_config_destroy(c);
}
