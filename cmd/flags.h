/* SPDX-License-Identifier: Apache-2.0 */
/* cmd/flags.h: the meshprom server's command line, accepting Prometheus 2.55's flags so that
 * meshprom can replace Prometheus in the Linkerd viz chart unchanged (protocols.md 4.10).
 * One table row per flag: name, kind, default, help. Parsing fills struct cmd_flags; the raw
 * string of every flag is kept for /api/v1/status/flags. Single-threaded, used by main only. */
#ifndef CMD_FLAGS_H
#define CMD_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

enum cmd_flag_kind {
    CMD_FLAG_STRING,
    CMD_FLAG_STRINGS, /* repeatable; each use appends */
    CMD_FLAG_BOOL,    /* --name, --no-name, --name=true|false */
    CMD_FLAG_DURATION,
    CMD_FLAG_INT,
    CMD_FLAG_BYTES, /* 512MB, powers of two, unit required */
};

/* Features from --enable-feature that meshprom acts on. Others known to Prometheus are
 * accepted and logged; unknown ones are warned about, as Prometheus does. */
enum {
    CMD_FEATURE_PROMQL_EXPERIMENTAL_FUNCTIONS = 1u << 0,
    CMD_FEATURE_PROMQL_DELAYED_NAME_REMOVAL = 1u << 1,
    CMD_FEATURE_EXPAND_EXTERNAL_LABELS = 1u << 2,
    CMD_FEATURE_EXTRA_SCRAPE_METRICS = 1u << 3,
    CMD_FEATURE_NO_DEFAULT_SCRAPE_PORT = 1u << 4,
    CMD_FEATURE_REMOTE_WRITE_RECEIVER = 1u << 5,
    CMD_FEATURE_AGENT = 1u << 6,
    CMD_FEATURE_PROMQL_PER_STEP_STATS = 1u << 7,
};

struct cmd_flags {
    const char *config_file;
    const char **listen_addresses; /* at least one */
    size_t n_listen_addresses;
    const char *web_config_file;
    int64_t web_read_timeout_ms;
    int64_t web_max_connections;
    const char *web_external_url; /* "" when not given: derived from hostname and port */
    const char *web_route_prefix; /* normalised: starts with '/', no trailing '/' unless "/" */
    bool web_enable_lifecycle;
    bool web_enable_admin_api;
    bool web_enable_remote_write_receiver;
    const char *web_cors_origin;
    const char *web_page_title;

    const char *tsdb_path;
    int64_t tsdb_retention_time_ms; /* 15d when neither time nor size is set */
    int64_t tsdb_retention_size_bytes;
    int64_t tsdb_min_block_duration_ms;
    int64_t tsdb_max_block_duration_ms; /* default min(31d, 10% of retention time) */
    bool tsdb_no_lockfile;
    bool tsdb_wal_compression;
    const char *tsdb_wal_compression_type; /* "snappy" or "zstd" */

    int64_t remote_flush_deadline_ms;
    int64_t remote_read_sample_limit;
    int64_t remote_read_concurrent_limit;
    int64_t remote_read_max_bytes_in_frame;

    int64_t query_lookback_delta_ms;
    int64_t query_timeout_ms;
    int64_t query_max_concurrency;
    int64_t query_max_samples;

    const char *log_level;
    const char *log_format;
    unsigned features; /* CMD_FEATURE_* */

    bool help;
    bool version;
};

struct cmd_flags_state; /* opaque: the strings the parse owns */

/* Parses argv (argv[0] skipped). On success fills *out (pointers valid until
 * cmd_flags_destroy(*state)) and returns 0. On error returns MP_EINVAL with err like
 * "unknown long flag '--foo'". Feature-flag warnings are reported through warn (may be NULL):
 * called once per unknown or no-op feature name with a constant message and the name. */
MP_NODISCARD int cmd_flags_parse(int argc, char **argv, struct cmd_flags *out,
                                 struct cmd_flags_state **state,
                                 void (*warn)(void *ctx, const char *msg, const char *option),
                                 void *warn_ctx, struct mp_err *err);
void cmd_flags_destroy(struct cmd_flags_state *state);

/* Writes the --help text. */
void cmd_flags_usage(const char *prog, int fd);

/* For /api/v1/status/flags: calls fn for every flag (name without dashes, current value as
 * a string: the value given or the default), in table order. */
void cmd_flags_each(const struct cmd_flags_state *state,
                    void (*fn)(void *ctx, const char *name, const char *value), void *ctx);

/* "512MB" -> bytes; units B KB MB GB TB PB EB (powers of two), unit required. "0" allowed. */
MP_NODISCARD int cmd_parse_bytes(const char *s, int64_t *out, struct mp_err *err);

#endif
