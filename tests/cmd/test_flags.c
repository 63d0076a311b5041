/* SPDX-License-Identifier: Apache-2.0 */
/* Flag parsing: Prometheus 2.55 names, forms and defaults (protocols.md 4.10). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "cmd/flags.h"
#include "common/str.h"

#define ARGV(...) ((char *[]){"meshprom", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){"meshprom", __VA_ARGS__}) / sizeof(char *)))

struct warned {
    int n;
    char last[128];
};

static void on_warn(void *ctx, const char *msg, const char *option)
{
    struct warned *w = ctx;
    w->n++;
    snprintf(w->last, sizeof w->last, "%s", option);
    (void)msg;
}

struct lookup {
    const char *name;
    const char *value;
};

static void find_value(void *ctx, const char *name, const char *value)
{
    struct lookup *l = ctx;
    if (strcmp(l->name, name) == 0)
        l->value = value;
}

static const char *value_of(const struct cmd_flags_state *st, const char *name)
{
    struct lookup l = {name, NULL};
    cmd_flags_each(st, find_value, &l);
    return l.value;
}

Test(flags, defaults_match_prometheus)
{
    struct cmd_flags f;
    struct cmd_flags_state *st;
    char *argv[] = {"meshprom", NULL};
    cr_assert_eq(cmd_flags_parse(1, argv, &f, &st, NULL, NULL, NULL), 0);
    cr_assert_str_eq(f.config_file, "prometheus.yml");
    cr_assert_eq(f.n_listen_addresses, 1);
    cr_assert_str_eq(f.listen_addresses[0], "0.0.0.0:9090");
    cr_assert_str_eq(f.tsdb_path, "data/");
    cr_assert_eq(f.tsdb_retention_time_ms, 15LL * 86400 * 1000);
    cr_assert_eq(f.tsdb_retention_size_bytes, 0);
    cr_assert_eq(f.tsdb_min_block_duration_ms, 2LL * 3600 * 1000);
    cr_assert_eq(f.tsdb_max_block_duration_ms, 36LL * 3600 * 1000); /* 1d12h with 15d */
    cr_assert_eq(f.query_lookback_delta_ms, 300000);
    cr_assert_eq(f.query_timeout_ms, 120000);
    cr_assert_eq(f.query_max_concurrency, 20);
    cr_assert_eq(f.query_max_samples, 50000000);
    cr_assert_eq(f.web_max_connections, 512);
    cr_assert_eq(f.web_read_timeout_ms, 300000);
    cr_assert_str_eq(f.web_route_prefix, "/");
    cr_assert_str_eq(f.log_level, "info");
    cr_assert_str_eq(f.log_format, "logfmt");
    cr_assert(!f.web_enable_lifecycle && !f.web_enable_admin_api);
    cr_assert(!f.web_enable_remote_write_receiver);
    cr_assert(f.tsdb_wal_compression);
    cr_assert_str_eq(value_of(st, "storage.tsdb.retention.time"), "15d");
    cr_assert_str_eq(value_of(st, "storage.tsdb.max-block-duration"), "1d12h");
    cr_assert_str_eq(value_of(st, "web.enable-lifecycle"), "false");
    cr_assert_str_eq(value_of(st, "query.max-samples"), "50000000");
    cmd_flags_destroy(st);
}

Test(flags, both_value_forms_and_bool_forms)
{
    struct cmd_flags f;
    struct cmd_flags_state *st;
    char **argv = ARGV("--config.file=/etc/p.yml", "--storage.tsdb.path", "/data",
                       "--storage.tsdb.retention.time=6h", "--web.enable-lifecycle",
                       "--web.enable-admin-api=true", "--no-storage.tsdb.wal-compression",
                       "--log.level", "debug", "--query.max-concurrency=3");
    int argc = ARGC("--config.file=/etc/p.yml", "--storage.tsdb.path", "/data",
                    "--storage.tsdb.retention.time=6h", "--web.enable-lifecycle",
                    "--web.enable-admin-api=true", "--no-storage.tsdb.wal-compression",
                    "--log.level", "debug", "--query.max-concurrency=3");
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(cmd_flags_parse(argc, argv, &f, &st, NULL, NULL, &err), 0, "%s", err.msg);
    cr_assert_str_eq(f.config_file, "/etc/p.yml");
    cr_assert_str_eq(f.tsdb_path, "/data");
    cr_assert_eq(f.tsdb_retention_time_ms, 6LL * 3600 * 1000);
    cr_assert_eq(f.tsdb_max_block_duration_ms, 2LL * 3600 * 1000, "10%% of 6h < min block");
    cr_assert(f.web_enable_lifecycle && f.web_enable_admin_api && !f.tsdb_wal_compression);
    cr_assert_str_eq(f.log_level, "debug");
    cr_assert_eq(f.query_max_concurrency, 3);
    cr_assert_str_eq(value_of(st, "storage.tsdb.wal-compression"), "false");
    cmd_flags_destroy(st);
}

Test(flags, repeatable_listen_address_replaces_default)
{
    struct cmd_flags f;
    struct cmd_flags_state *st;
    char **argv = ARGV("--web.listen-address=127.0.0.1:1", "--web.listen-address", "[::1]:2");
    cr_assert_eq(cmd_flags_parse(4, argv, &f, &st, NULL, NULL, NULL), 0);
    cr_assert_eq(f.n_listen_addresses, 2);
    cr_assert_str_eq(f.listen_addresses[0], "127.0.0.1:1");
    cr_assert_str_eq(f.listen_addresses[1], "[::1]:2");
    cmd_flags_destroy(st);
}

Test(flags, unknown_flag_and_missing_value_are_errors)
{
    struct cmd_flags f;
    struct cmd_flags_state *st = (void *)1;
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(cmd_flags_parse(2, ARGV("--storage.tsdb.pth=x"), &f, &st, NULL, NULL, &err),
                 MP_EINVAL);
    cr_assert_str_eq(err.msg, "unknown long flag '--storage.tsdb.pth'");
    cr_assert_null(st);
    mp_err_clear(&err);
    cr_assert_eq(cmd_flags_parse(2, ARGV("--config.file"), &f, &st, NULL, NULL, &err), MP_EINVAL);
    cr_assert_str_eq(err.msg, "expected argument for flag '--config.file'");
    mp_err_clear(&err);
    cr_assert_eq(cmd_flags_parse(2, ARGV("--no-config.file"), &f, &st, NULL, NULL, &err),
                 MP_EINVAL);
    mp_err_clear(&err);
    cr_assert_eq(cmd_flags_parse(2, ARGV("stray"), &f, &st, NULL, NULL, &err), MP_EINVAL);
    cr_assert_str_eq(err.msg, "unexpected stray");
}

Test(flags, bad_values_name_the_flag)
{
    struct cmd_flags f;
    struct cmd_flags_state *st;
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(cmd_flags_parse(2, ARGV("--query.timeout=2x"), &f, &st, NULL, NULL, &err),
                 MP_EINVAL);
    cr_assert(strstr(err.msg, "--query.timeout"), "%s", err.msg);
    mp_err_clear(&err);
    cr_assert_eq(cmd_flags_parse(2, ARGV("--query.max-samples=lots"), &f, &st, NULL, NULL, &err),
                 MP_EINVAL);
    cr_assert(strstr(err.msg, "--query.max-samples"), "%s", err.msg);
    mp_err_clear(&err);
    cr_assert_eq(cmd_flags_parse(2, ARGV("--log.level=verbose"), &f, &st, NULL, NULL, &err),
                 MP_EINVAL);
    mp_err_clear(&err);
    cr_assert_eq(cmd_flags_parse(2, ARGV("--web.enable-lifecycle=maybe"), &f, &st, NULL, NULL,
                                 &err),
                 MP_EINVAL);
    mp_err_clear(&err);
    cr_assert_eq(
        cmd_flags_parse(2, ARGV("--storage.tsdb.retention.size=10"), &f, &st, NULL, NULL, &err),
        MP_EINVAL);
}

Test(flags, retention_size_units_and_size_only_disables_time_default)
{
    struct cmd_flags f;
    struct cmd_flags_state *st;
    cr_assert_eq(cmd_flags_parse(2, ARGV("--storage.tsdb.retention.size=512MB"), &f, &st, NULL,
                                 NULL, NULL),
                 0);
    cr_assert_eq(f.tsdb_retention_size_bytes, 512LL << 20);
    cr_assert_eq(f.tsdb_retention_time_ms, 0);
    cr_assert_eq(f.tsdb_max_block_duration_ms, 31LL * 86400 * 1000);
    cmd_flags_destroy(st);
    int64_t n;
    cr_assert_eq(cmd_parse_bytes("1GB512MB", &n, NULL), 0);
    cr_assert_eq(n, (1LL << 30) + (512LL << 20));
    cr_assert_eq(cmd_parse_bytes("0", &n, NULL), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(cmd_parse_bytes("12XB", &n, NULL), MP_EINVAL);
    cr_assert_eq(cmd_parse_bytes("", &n, NULL), MP_EINVAL);
    cr_assert_eq(cmd_parse_bytes("99999999999EB", &n, NULL), MP_EINVAL);
}

Test(flags, deprecated_retention_alias)
{
    struct cmd_flags f;
    struct cmd_flags_state *st;
    cr_assert_eq(
        cmd_flags_parse(2, ARGV("--storage.tsdb.retention=3d"), &f, &st, NULL, NULL, NULL), 0);
    cr_assert_eq(f.tsdb_retention_time_ms, 3LL * 86400 * 1000);
    cmd_flags_destroy(st);
}

Test(flags, route_prefix_normalised_and_taken_from_external_url)
{
    struct cmd_flags f;
    struct cmd_flags_state *st;
    cr_assert_eq(cmd_flags_parse(2, ARGV("--web.route-prefix=prom/"), &f, &st, NULL, NULL, NULL),
                 0);
    cr_assert_str_eq(f.web_route_prefix, "/prom");
    cmd_flags_destroy(st);
    cr_assert_eq(cmd_flags_parse(2, ARGV("--web.external-url=http://example.com:80/a/b/"), &f,
                                 &st, NULL, NULL, NULL),
                 0);
    cr_assert_str_eq(f.web_route_prefix, "/a/b");
    cr_assert_str_eq(value_of(st, "web.route-prefix"), "/a/b");
    cmd_flags_destroy(st);
}

Test(flags, features_known_unknown_and_comma_lists)
{
    struct cmd_flags f;
    struct cmd_flags_state *st;
    struct warned w = {0};
    cr_assert_eq(cmd_flags_parse(3,
                                 ARGV("--enable-feature=promql-experimental-functions,bogus",
                                      "--enable-feature=remote-write-receiver"),
                                 &f, &st, on_warn, &w, NULL),
                 0);
    cr_assert(f.features & CMD_FEATURE_PROMQL_EXPERIMENTAL_FUNCTIONS);
    cr_assert(!(f.features & CMD_FEATURE_PROMQL_DELAYED_NAME_REMOVAL));
    cr_assert(f.web_enable_remote_write_receiver);
    cr_assert_eq(w.n, 1);
    cr_assert_str_eq(w.last, "bogus");
    cr_assert_str_eq(value_of(st, "enable-feature"),
                     "promql-experimental-functions,bogus,remote-write-receiver");
    cmd_flags_destroy(st);
}

Test(flags, help_and_version)
{
    struct cmd_flags f;
    struct cmd_flags_state *st;
    cr_assert_eq(cmd_flags_parse(3, ARGV("--help", "--version"), &f, &st, NULL, NULL, NULL), 0);
    cr_assert(f.help && f.version);
    cmd_flags_destroy(st);
}
