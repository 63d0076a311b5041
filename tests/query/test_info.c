/* SPDX-License-Identifier: Apache-2.0 */
/* tests/query/test_info.c: info() beyond tests/promql/info.test: the experimental flag and the
 * parser's checks of the label selector argument, identifying values that need regex quoting,
 * @ and offset of the input, subqueries, no storage, and the sample statistics of the info
 * select. */
#include "test_eval.h"

#define S(x) ((int64_t)((x) * 1000))

TestSuite(info);

static void open_exp(struct ev_fx *f)
{
    struct query_engine_opts eo;
    query_engine_opts_init(&eo);
    eo.parse.experimental_functions = true;
    ev_open_opts(f, &eo);
}

static void parse_err(const char *q, bool experimental, const char *want)
{
    struct query_parse_opts o;
    query_parse_opts_init(&o);
    o.experimental_functions = experimental;
    struct query_expr *e = NULL;
    struct query_parse_error err = {0};
    cr_assert_eq(query_parse(q, strlen(q), &o, &e, &err), MP_EPARSE, "%s parsed", q);
    cr_expect_str_eq(err.msg, want, "%s", q);
}

static void parse_ok(const char *q)
{
    struct query_parse_opts o;
    query_parse_opts_init(&o);
    o.experimental_functions = true;
    struct query_expr *e = NULL;
    struct query_parse_error err = {0};
    cr_assert_eq(query_parse(q, strlen(q), &o, &e, &err), 0, "%s: %s", q, err.msg);
    query_expr_free(e);
}

Test(info, parser)
{
    parse_err("info(up)", false, "1:1: parse error: function \"info\" is not enabled");
    parse_err("info(up, build_info)", true,
              "1:10: parse error: expected label selectors only, got vector selector instead");
    parse_err("info(up, sum(x))", true, "1:10: parse error: expected label selectors only");
    parse_err("info(up, (({a=\"b\"})))", true, "1:10: parse error: expected label selectors only");
    parse_err("info(up, 1)", true,
              "1:1: parse error: expected type instant vector in call to function \"info\", got "
              "scalar");
    parse_err("info(up, {a=\"b\"}, {c=\"d\"})", true,
              "1:1: parse error: expected at most 2 argument(s) in call to \"info\", got 3");
    parse_err("info({})", true,
              "1:6: parse error: vector selector must contain at least one non-empty matcher");
    /* the label selector may match only empty values, and may name the info metric */
    parse_ok("info(up, {})");
    parse_ok("info(up, {a=~\".*\"})");
    parse_ok("info(up, {__name__=\"build_info\", version=~\"1.*\"})");
    /* elsewhere the empty selector is still refused */
    parse_err("info(up, {}) + {}", true,
              "1:16: parse error: vector selector must contain at least one non-empty matcher");
}

Test(info, disabled_engine)
{
    struct ev_fx f;
    ev_open(&f);
    ev_expect_err(&f, "info(up)", 0, MP_EPARSE, "1:1: parse error: function \"info\" is not enabled");
    ev_close(&f);
}

Test(info, quoted_identifying_values)
{
    struct ev_fx f;
    open_exp(&f);
    /* regex metacharacters and '|' in the values must not widen or break the select */
    ev_load(&f, "up{instance=\"10.0.0.1:9100\", job=\"a|b\"}", S(60), "1x3");
    ev_load(&f, "up{instance=\"x+y\", job=\"(c)\"}", S(60), "2x3");
    ev_load(&f, "target_info{instance=\"10.0.0.1:9100\", job=\"a|b\", zone=\"z1\"}", S(60), "1x3");
    ev_load(&f, "target_info{instance=\"10a0b0c1:9100\", job=\"a|b\", zone=\"bad\"}", S(60), "1x3");
    ev_load(&f, "target_info{instance=\"x+y\", job=\"(c)\", zone=\"z2\"}", S(60), "1x3");
    ev_load(&f, "target_info{instance=\"xxy\", job=\"(c)\", zone=\"bad2\"}", S(60), "1x3");
    EV_VEC(&f, "info(up)", S(120),
           {"{__name__=\"up\", instance=\"10.0.0.1:9100\", job=\"a|b\", zone=\"z1\"}", 1},
           {"{__name__=\"up\", instance=\"x+y\", job=\"(c)\", zone=\"z2\"}", 2});
    ev_close(&f);
}

Test(info, at_offset_and_subquery)
{
    struct ev_fx f;
    open_exp(&f);
    ev_load(&f, "up{instance=\"a\", job=\"j\"}", S(60), "1x20");
    /* the info series changes its data label at 10m */
    ev_load(&f, "target_info{instance=\"a\", job=\"j\", v=\"old\"}", S(60), "1x9");
    ev_load(&f, "target_info{instance=\"a\", job=\"j\", v=\"new\"}", S(60), "_x9 1x10");
    EV_VEC(&f, "info(up)", S(900), {"{__name__=\"up\", instance=\"a\", job=\"j\", v=\"new\"}", 1});
    /* the info series is read where the input's selector reads */
    EV_VEC(&f, "info(up offset 10m)", S(900),
           {"{__name__=\"up\", instance=\"a\", job=\"j\", v=\"old\"}", 1});
    EV_VEC(&f, "info(up @ 300)", S(900),
           {"{__name__=\"up\", instance=\"a\", job=\"j\", v=\"old\"}", 1});
    EV_VEC(&f, "info(up @ 300 * on() group_left() vector(1))", S(900),
           {"{instance=\"a\", job=\"j\", v=\"old\"}", 1});
    /* inside a subquery the info series follows the inner steps */
    EV_VEC(&f, "count_over_time(info(up)[20m:5m])", S(1200),
           {"{instance=\"a\", job=\"j\", v=\"old\"}", 2},
           {"{instance=\"a\", job=\"j\", v=\"new\"}", 3});
    ev_close(&f);
}

Test(info, no_storage_and_no_ids)
{
    struct query_engine_opts eo;
    query_engine_opts_init(&eo);
    eo.parse.experimental_functions = true;
    struct query_engine *e = NULL;
    struct mp_err err = {0};
    cr_assert_eq(query_engine_create(&eo, &e, &err), 0);
    struct query_result r = {0};
    const char *q = "info(vector(1), {x=~\".*\"})";
    cr_assert_eq(query_exec_instant(e, NULL, q, strlen(q), 0, NULL, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.nseries, 1);
    cr_assert_eq(mp_labels_count(r.series[0].labels), 0);
    query_result_fini(&r);
    q = "info(vector(1), {x=\"y\"})";
    cr_assert_eq(query_exec_instant(e, NULL, q, strlen(q), 0, NULL, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.nseries, 0);
    query_result_fini(&r);
    query_engine_destroy(e);
}

Test(info, stats_count_info_samples)
{
    struct ev_fx f;
    open_exp(&f);
    ev_load(&f, "up{instance=\"a\", job=\"j\"}", S(60), "1x10");
    ev_load(&f, "up{instance=\"b\", job=\"j\"}", S(60), "1x10");
    ev_load(&f, "target_info{instance=\"a\", job=\"j\", v=\"1\"}", S(60), "1x10");
    ev_load(&f, "target_info{instance=\"c\", job=\"j\", v=\"1\"}", S(60), "1x10");
    /* 2 input samples + 1 info sample (instance c is not selected) */
    cr_assert_eq(ev_instant(&f, "info(up)", S(300)), 0, "%s", f.err.msg);
    cr_assert_eq(f.r.stats.total_queryable_samples, 3);
    /* range: 3 steps of the same */
    cr_assert_eq(ev_range(&f, "info(up)", S(120), S(240), S(60)), 0, "%s", f.err.msg);
    cr_assert_eq(f.r.stats.total_queryable_samples, 9);
    cr_assert_eq(f.r.nseries, 2);
    ev_close(&f);
}
