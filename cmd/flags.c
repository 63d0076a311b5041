/* SPDX-License-Identifier: Apache-2.0 */
/* cmd/flags.c: the flag table and a kingpin-compatible parser (--name=value, --name value,
 * --name / --no-name for booleans, repeatable flags). Defaults are Prometheus 2.55.1's
 * (shared/spec/protocols.md 4.10). Every value is kept as a string too, for status/flags. */
#include "cmd/flags.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/str.h"
#include "common/time.h"
#include "web/web.h"

#define DAY_MS (24LL * 3600 * 1000)

struct row {
    const char *name;
    enum cmd_flag_kind kind;
    const char *def; /* NULL: no default (shown as "") */
    size_t off;      /* offsetof in struct cmd_flags; SIZE_MAX: accepted, not used by meshprom */
    bool hidden;
    const char *help;
};

#define F(field) offsetof(struct cmd_flags, field)
#define UNUSED SIZE_MAX

static const struct row rows[] = {
    {"config.file", CMD_FLAG_STRING, "prometheus.yml", F(config_file), false,
     "Prometheus configuration file path."},
    {"web.listen-address", CMD_FLAG_STRINGS, "0.0.0.0:9090", F(listen_addresses), false,
     "Address to listen on for UI, API, and telemetry. Can be repeated."},
    {"web.config.file", CMD_FLAG_STRING, "", F(web_config_file), false,
     "[EXPERIMENTAL] Path to configuration file that can enable TLS or authentication."},
    {"web.read-timeout", CMD_FLAG_DURATION, "5m", F(web_read_timeout_ms), false,
     "Maximum duration before timing out read of the request, and closing idle connections."},
    {"web.max-connections", CMD_FLAG_INT, "512", F(web_max_connections), false,
     "Maximum number of simultaneous connections."},
    {"web.external-url", CMD_FLAG_STRING, "", F(web_external_url), false,
     "The URL under which meshprom is externally reachable. Its path prefixes all endpoints."},
    {"web.route-prefix", CMD_FLAG_STRING, "", F(web_route_prefix), false,
     "Prefix for the internal routes of web endpoints. Defaults to path of --web.external-url."},
    {"web.user-assets", CMD_FLAG_STRING, "", UNUSED, false,
     "Path to static asset directory, available at /user."},
    {"web.enable-lifecycle", CMD_FLAG_BOOL, "false", F(web_enable_lifecycle), false,
     "Enable shutdown and reload via HTTP request."},
    {"web.enable-admin-api", CMD_FLAG_BOOL, "false", F(web_enable_admin_api), false,
     "Enable API endpoints for admin control actions."},
    {"web.enable-remote-write-receiver", CMD_FLAG_BOOL, "false",
     F(web_enable_remote_write_receiver), false,
     "Enable API endpoint accepting remote write requests."},
    {"web.remote-write-receiver.accepted-protobuf-messages", CMD_FLAG_STRINGS,
     "prometheus.WriteRequest", UNUSED, false,
     "List of the remote write protobuf messages to accept when receiving the remote writes."},
    {"web.enable-otlp-receiver", CMD_FLAG_BOOL, "false", UNUSED, false,
     "Enable API endpoint accepting OTLP write requests."},
    {"web.console.templates", CMD_FLAG_STRING, "consoles", UNUSED, false,
     "Path to the console template directory, available at /consoles."},
    {"web.console.libraries", CMD_FLAG_STRING, "console_libraries", UNUSED, false,
     "Path to the console library directory."},
    {"web.page-title", CMD_FLAG_STRING, "Prometheus Time Series Collection and Processing Server",
     F(web_page_title), false, "Document title of meshprom instance."},
    {"web.cors.origin", CMD_FLAG_STRING, ".*", F(web_cors_origin), false,
     "Regex for CORS origin. It is fully anchored."},
    {"storage.tsdb.path", CMD_FLAG_STRING, "data/", F(tsdb_path), false,
     "Base path for metrics storage."},
    {"storage.tsdb.retention", CMD_FLAG_DURATION, NULL, UNUSED, true,
     "[DEPRECATED] How long to retain samples in storage. Use retention.time."},
    {"storage.tsdb.retention.time", CMD_FLAG_DURATION, NULL, F(tsdb_retention_time_ms), false,
     "How long to retain samples in storage. Defaults to 15d if no retention is set."},
    {"storage.tsdb.retention.size", CMD_FLAG_BYTES, NULL, F(tsdb_retention_size_bytes), false,
     "Maximum number of bytes that can be stored for blocks. Units: B, KB, MB, GB, TB, PB, EB."},
    {"storage.tsdb.min-block-duration", CMD_FLAG_DURATION, "2h", F(tsdb_min_block_duration_ms),
     true, "Minimum duration of a data block before being persisted."},
    {"storage.tsdb.max-block-duration", CMD_FLAG_DURATION, NULL, F(tsdb_max_block_duration_ms),
     true, "Maximum duration compacted blocks may span. Defaults to 10% of the retention."},
    {"storage.tsdb.no-lockfile", CMD_FLAG_BOOL, "false", F(tsdb_no_lockfile), false,
     "Do not create lockfile in data directory."},
    {"storage.tsdb.head-chunks-write-queue-size", CMD_FLAG_INT, "0", UNUSED, false,
     "Size of the queue through which head chunks are written to the disk."},
    {"storage.tsdb.wal-compression", CMD_FLAG_BOOL, "true", F(tsdb_wal_compression), true,
     "Compress the tsdb WAL."},
    {"storage.tsdb.wal-compression-type", CMD_FLAG_STRING, "snappy", F(tsdb_wal_compression_type),
     true,
     "Compression algorithm for the tsdb WAL."},
    {"storage.tsdb.allow-overlapping-blocks", CMD_FLAG_BOOL, "false", UNUSED, true,
     "[DEPRECATED] This flag has no effect."},
    {"storage.tsdb.samples-per-chunk", CMD_FLAG_INT, "120", UNUSED, true,
     "Target number of samples per chunk."},
    {"storage.remote.flush-deadline", CMD_FLAG_DURATION, "1m", F(remote_flush_deadline_ms),
     false, "How long to wait flushing sample on shutdown or config reload."},
    {"storage.remote.read-sample-limit", CMD_FLAG_INT, "50000000", F(remote_read_sample_limit),
     false, "Maximum overall number of samples to return via the remote read interface."},
    {"storage.remote.read-concurrent-limit", CMD_FLAG_INT, "10",
     F(remote_read_concurrent_limit), false,
     "Maximum number of concurrent remote read calls. 0 means no limit."},
    {"storage.remote.read-max-bytes-in-frame", CMD_FLAG_INT, "1048576",
     F(remote_read_max_bytes_in_frame), false,
     "Maximum number of bytes in a single frame for streaming remote read responses."},
    {"rules.alert.for-outage-tolerance", CMD_FLAG_DURATION, "1h", UNUSED, false,
     "Max time to tolerate prometheus outage for restoring \"for\" state of alert."},
    {"rules.alert.for-grace-period", CMD_FLAG_DURATION, "10m", UNUSED, false,
     "Minimum duration between alert and restored \"for\" state."},
    {"rules.alert.resend-delay", CMD_FLAG_DURATION, "1m", UNUSED, false,
     "Minimum amount of time to wait before resending an alert to Alertmanager."},
    {"rules.max-concurrent-evals", CMD_FLAG_INT, "4", UNUSED, false,
     "Global concurrency limit for independent rules that can run concurrently."},
    {"alertmanager.notification-queue-capacity", CMD_FLAG_INT, "10000", UNUSED, false,
     "The capacity of the queue for pending Alertmanager notifications."},
    {"alertmanager.drain-notification-queue-on-shutdown", CMD_FLAG_BOOL, "true", UNUSED, false,
     "Send any outstanding Alertmanager notifications when shutting down."},
    {"query.lookback-delta", CMD_FLAG_DURATION, "5m", F(query_lookback_delta_ms), false,
     "The maximum lookback duration for retrieving metrics during expression evaluations."},
    {"query.timeout", CMD_FLAG_DURATION, "2m", F(query_timeout_ms), false,
     "Maximum time a query may take before being aborted."},
    {"query.max-concurrency", CMD_FLAG_INT, "20", F(query_max_concurrency), false,
     "Maximum number of queries executed concurrently."},
    {"query.max-samples", CMD_FLAG_INT, "50000000", F(query_max_samples), false,
     "Maximum number of samples a single query can load into memory."},
    {"enable-feature", CMD_FLAG_STRINGS, NULL, UNUSED, false,
     "Comma separated feature names to enable, e.g. promql-experimental-functions."},
    {"log.level", CMD_FLAG_STRING, "info", F(log_level), false,
     "Only log messages with the given severity or above. One of: [debug, info, warn, error]"},
    {"log.format", CMD_FLAG_STRING, "logfmt", F(log_format), false,
     "Output format of log messages. One of: [logfmt, json]"},
};

#define NROWS (sizeof rows / sizeof rows[0])

struct cmd_flags_state {
    char *value[NROWS];     /* last value given (joined with "," for repeatable), or NULL */
    bool given[NROWS];
    char **list[NROWS];     /* repeatable flags: every value */
    size_t nlist[NROWS];
};

/* Feature names Prometheus 2.55 knows; the bit is 0 for those meshprom does not act on. */
static const struct {
    const char *name;
    unsigned bit;
    bool noop; /* permanently enabled or removed upstream: accepted with a warning */
} features[] = {
    {"promql-experimental-functions", CMD_FEATURE_PROMQL_EXPERIMENTAL_FUNCTIONS, false},
    {"promql-delayed-name-removal", CMD_FEATURE_PROMQL_DELAYED_NAME_REMOVAL, false},
    {"expand-external-labels", CMD_FEATURE_EXPAND_EXTERNAL_LABELS, false},
    {"extra-scrape-metrics", CMD_FEATURE_EXTRA_SCRAPE_METRICS, false},
    {"no-default-scrape-port", CMD_FEATURE_NO_DEFAULT_SCRAPE_PORT, false},
    {"remote-write-receiver", CMD_FEATURE_REMOTE_WRITE_RECEIVER, false},
    {"agent", CMD_FEATURE_AGENT, false},
    {"exemplar-storage", 0, false},
    {"memory-snapshot-on-shutdown", 0, false},
    {"metadata-wal-records", 0, false},
    {"promql-per-step-stats", CMD_FEATURE_PROMQL_PER_STEP_STATS, false},
    {"auto-gomemlimit", 0, false},
    {"auto-gomaxprocs", 0, false},
    {"native-histograms", 0, false},
    {"ooo-native-histograms", 0, false},
    {"created-timestamp-zero-ingestion", 0, false},
    {"delayed-compaction", 0, false},
    {"concurrent-rule-eval", 0, false},
    {"utf8-names", 0, false},
    {"otlp-write-receiver", 0, false},
    {"otlp-deltatocumulative", 0, false},
    {"old-ui", 0, false},
    {"promql-at-modifier", 0, true},
    {"promql-negative-offset", 0, true},
    {"new-service-discovery-manager", 0, true},
    {"agent-mode", 0, true},
};

static const struct row *find_row(const char *name, size_t len, size_t *idx)
{
    for (size_t i = 0; i < NROWS; i++) {
        if (strlen(rows[i].name) == len && memcmp(rows[i].name, name, len) == 0) {
            *idx = i;
            return &rows[i];
        }
    }
    return NULL;
}

/* Index of a row the code names itself; a typo here is a programming error. */
static size_t row_index(const char *name)
{
    size_t i = 0;
    if (!find_row(name, strlen(name), &i))
        abort();
    return i;
}

int cmd_parse_bytes(const char *s, int64_t *out, struct mp_err *err)
{
    static const char *const units[] = {"B", "KB", "MB", "GB", "TB", "PB", "EB"};
    if (strcmp(s, "0") == 0) {
        *out = 0;
        return 0;
    }
    const char *p = s;
    int64_t total = 0;
    bool any = false;
    while (*p) {
        if (*p < '0' || *p > '9')
            break;
        int64_t n = 0;
        while (*p >= '0' && *p <= '9') {
            if (__builtin_mul_overflow(n, 10, &n) || __builtin_add_overflow(n, *p - '0', &n))
                return mp_err_set(err, MP_EINVAL, "units: overflow: %s", s);
            p++;
        }
        size_t ulen = 0;
        while (p[ulen] && (p[ulen] < '0' || p[ulen] > '9'))
            ulen++;
        int u = -1;
        for (int i = 0; i < 7; i++)
            if (strlen(units[i]) == ulen && memcmp(units[i], p, ulen) == 0)
                u = i;
        if (u < 0)
            return mp_err_set(err, MP_EINVAL, "units: unknown unit %.*s in %s", (int)ulen, p, s);
        int64_t v = n;
        for (int i = 0; i < u; i++)
            if (__builtin_mul_overflow(v, 1024, &v))
                return mp_err_set(err, MP_EINVAL, "units: overflow: %s", s);
        if (__builtin_add_overflow(total, v, &total))
            return mp_err_set(err, MP_EINVAL, "units: overflow: %s", s);
        p += ulen;
        any = true;
    }
    if (!any || *p)
        return mp_err_set(err, MP_EINVAL, "units: invalid size %s", s);
    *out = total;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const t[] = {"1", "t", "T", "true", "TRUE", "True"};
    static const char *const f[] = {"0", "f", "F", "false", "FALSE", "False"};
    for (size_t i = 0; i < 6; i++) {
        if (strcmp(s, t[i]) == 0)
            return *out = true, 0;
        if (strcmp(s, f[i]) == 0)
            return *out = false, 0;
    }
    return MP_EINVAL;
}

/* Converts text to the row's kind and stores it into out (when the row is used). */
static int store(const struct row *r, const char *text, struct cmd_flags *out, struct mp_err *err)
{
    char *field = r->off == UNUSED ? NULL : (char *)out + r->off;
    struct mp_err sub;
    mp_err_clear(&sub);
    switch (r->kind) {
    case CMD_FLAG_STRING:
        if (field)
            *(const char **)field = text;
        return 0;
    case CMD_FLAG_STRINGS:
        return 0; /* collected separately */
    case CMD_FLAG_BOOL: {
        bool b;
        if (parse_bool(text, &b))
            return mp_err_set(err, MP_EINVAL, "strconv.ParseBool: parsing \"%s\": invalid syntax",
                              text);
        if (field)
            *(bool *)field = b;
        return 0;
    }
    case CMD_FLAG_DURATION: {
        int64_t ms;
        if (mp_duration_parse(mp_str_c(text), &ms, &sub))
            return mp_err_set(err, MP_EINVAL, "%s", sub.msg);
        if (field)
            *(int64_t *)field = ms;
        return 0;
    }
    case CMD_FLAG_INT: {
        char *end;
        long long ll = strtoll(text, &end, 10);
        if (*text == '\0' || *end != '\0')
            return mp_err_set(err, MP_EINVAL, "strconv.ParseInt: parsing \"%s\": invalid syntax",
                              text);
        if (field)
            *(int64_t *)field = (int64_t)ll;
        return 0;
    }
    case CMD_FLAG_BYTES: {
        int64_t n;
        if (cmd_parse_bytes(text, &n, &sub))
            return mp_err_set(err, MP_EINVAL, "%s", sub.msg);
        if (field)
            *(int64_t *)field = n;
        return 0;
    }
    }
    return MP_EINVAL;
}

static void set_value(struct cmd_flags_state *st, size_t i, const char *text)
{
    if (rows[i].kind == CMD_FLAG_STRINGS) {
        st->list[i] = mp_xrealloc(st->list[i], (st->nlist[i] + 1) * sizeof(char *));
        st->list[i][st->nlist[i]++] = mp_xstrdup(text);
        size_t total = 0;
        for (size_t k = 0; k < st->nlist[i]; k++)
            total += strlen(st->list[i][k]) + 1;
        char *joined = mp_xmalloc(total);
        joined[0] = '\0';
        for (size_t k = 0; k < st->nlist[i]; k++) {
            if (k)
                strcat(joined, ",");
            strcat(joined, st->list[i][k]);
        }
        mp_free(st->value[i]);
        st->value[i] = joined;
    } else {
        mp_free(st->value[i]);
        st->value[i] = mp_xstrdup(text);
    }
    st->given[i] = true;
}

/* Stores the prefix the server will use, so that status/flags reports the same value. */
static void normalise_prefix(struct cmd_flags_state *st, struct cmd_flags *out)
{
    char *norm = web_route_prefix_normalise(out->web_route_prefix, out->web_external_url);
    size_t i = row_index("web.route-prefix");
    mp_free(st->value[i]);
    st->value[i] = norm;
    out->web_route_prefix = norm;
}

static int apply_features(struct cmd_flags_state *st, size_t row, struct cmd_flags *out,
                          void (*warn)(void *, const char *, const char *), void *warn_ctx)
{
    for (size_t k = 0; k < st->nlist[row]; k++) {
        const char *p = st->list[row][k];
        while (*p) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            char name[128];
            if (len >= sizeof name)
                len = sizeof name - 1;
            memcpy(name, p, len);
            name[len] = '\0';
            if (len) {
                bool known = false;
                for (size_t f = 0; f < sizeof features / sizeof features[0]; f++) {
                    if (strcmp(features[f].name, name) != 0)
                        continue;
                    known = true;
                    out->features |= features[f].bit;
                    if (features[f].noop && warn)
                        warn(warn_ctx,
                             "This option for --enable-feature is now permanently enabled and "
                             "therefore a no-op.",
                             name);
                }
                if (!known && warn)
                    warn(warn_ctx, "Unknown option for --enable-feature", name);
            }
            p += len;
            if (*p == ',')
                p++;
        }
    }
    return 0;
}

int cmd_flags_parse(int argc, char **argv, struct cmd_flags *out, struct cmd_flags_state **state,
                    void (*warn)(void *ctx, const char *msg, const char *option), void *warn_ctx,
                    struct mp_err *err)
{
    memset(out, 0, sizeof *out);
    struct cmd_flags_state *st = mp_xcalloc(1, sizeof *st);
    int rc = 0;

    for (int a = 1; a < argc && rc == 0; a++) {
        const char *arg = argv[a];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            out->help = true;
            continue;
        }
        if (strcmp(arg, "--version") == 0) {
            out->version = true;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0) {
            rc = mp_err_set(err, MP_EINVAL, "unexpected %s", arg);
            break;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        size_t i;
        const struct row *r = find_row(name, nlen, &i);
        bool negated = false;
        if (!r && nlen > 3 && strncmp(name, "no-", 3) == 0) {
            r = find_row(name + 3, nlen - 3, &i);
            if (r && r->kind != CMD_FLAG_BOOL)
                r = NULL;
            negated = r != NULL;
        }
        if (!r) {
            rc = mp_err_set(err, MP_EINVAL, "unknown long flag '--%.*s'", (int)nlen, name);
            break;
        }
        const char *text;
        if (r->kind == CMD_FLAG_BOOL && !eq) {
            text = negated ? "false" : "true";
        } else if (negated) {
            rc = mp_err_set(err, MP_EINVAL, "unknown long flag '--%.*s'", (int)nlen, name);
            break;
        } else if (eq) {
            text = eq + 1;
        } else if (a + 1 < argc) {
            text = argv[++a];
        } else {
            rc = mp_err_set(err, MP_EINVAL, "expected argument for flag '--%s'", r->name);
            break;
        }
        set_value(st, i, text);
    }

    /* Defaults first, then given values, so that every row has a string. */
    for (size_t i = 0; i < NROWS && rc == 0; i++) {
        if (!st->given[i] && rows[i].def && rows[i].kind != CMD_FLAG_STRINGS) {
            st->value[i] = mp_xstrdup(rows[i].def);
        } else if (!st->given[i] && rows[i].def) {
            set_value(st, i, rows[i].def);
            st->given[i] = false;
        }
        if (st->value[i] && rows[i].kind != CMD_FLAG_STRINGS) {
            struct mp_err sub;
            mp_err_clear(&sub);
            if (store(&rows[i], st->value[i], out, &sub) != 0)
                rc = mp_err_set(err, MP_EINVAL, "invalid value \"%s\" for flag '--%s': %s",
                                st->value[i], rows[i].name, sub.msg);
        }
    }
    if (rc == 0) {
        size_t i = row_index("web.listen-address");
        out->listen_addresses = (const char **)st->list[i];
        out->n_listen_addresses = st->nlist[i];
        i = row_index("enable-feature");
        apply_features(st, i, out, warn, warn_ctx);
        if (out->features & CMD_FEATURE_REMOTE_WRITE_RECEIVER)
            out->web_enable_remote_write_receiver = true;

        /* Retention: the deprecated flag feeds retention.time; 15d when nothing is set. */
        size_t old = row_index("storage.tsdb.retention");
        size_t tim = row_index("storage.tsdb.retention.time");
        size_t siz = row_index("storage.tsdb.retention.size");
        size_t maxb = row_index("storage.tsdb.max-block-duration");
        if (!st->given[tim] && st->given[old]) {
            set_value(st, tim, st->value[old]);
            rc = store(&rows[tim], st->value[tim], out, err);
        }
        if (rc == 0 && !st->given[tim] && !st->given[siz]) {
            out->tsdb_retention_time_ms = 15 * DAY_MS;
            mp_free(st->value[tim]);
            st->value[tim] = mp_xstrdup("15d");
        }
        if (rc == 0 && !st->given[maxb]) {
            int64_t m = out->tsdb_retention_time_ms / 10;
            if (m == 0 || m > 31 * DAY_MS)
                m = 31 * DAY_MS;
            if (m < out->tsdb_min_block_duration_ms)
                m = out->tsdb_min_block_duration_ms;
            out->tsdb_max_block_duration_ms = m;
            char buf[64];
            mp_duration_format(m, buf, sizeof buf);
            st->value[maxb] = mp_xstrdup(buf);
        }
        if (rc == 0 && !st->value[siz])
            st->value[siz] = mp_xstrdup("0B");
        if (rc == 0)
            normalise_prefix(st, out);
        if (rc == 0 && strcmp(out->log_level, "debug") && strcmp(out->log_level, "info") &&
            strcmp(out->log_level, "warn") && strcmp(out->log_level, "error"))
            rc = mp_err_set(err, MP_EINVAL,
                            "enum value must be one of debug,info,warn,error, got '%s'",
                            out->log_level);
        if (rc == 0 && strcmp(out->log_format, "logfmt") && strcmp(out->log_format, "json"))
            rc = mp_err_set(err, MP_EINVAL, "enum value must be one of logfmt,json, got '%s'",
                            out->log_format);
        if (rc == 0 && out->query_max_concurrency < 1)
            rc = mp_err_set(err, MP_EINVAL, "--query.max-concurrency must be at least 1");
    }
    if (rc != 0) {
        cmd_flags_destroy(st);
        *state = NULL;
        return rc;
    }
    *state = st;
    return 0;
}

void cmd_flags_destroy(struct cmd_flags_state *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < NROWS; i++) {
        mp_free(st->value[i]);
        for (size_t k = 0; k < st->nlist[i]; k++)
            mp_free(st->list[i][k]);
        mp_free(st->list[i]);
    }
    mp_free(st);
}

void cmd_flags_each(const struct cmd_flags_state *st,
                    void (*fn)(void *ctx, const char *name, const char *value), void *ctx)
{
    for (size_t i = 0; i < NROWS; i++)
        fn(ctx, rows[i].name, st->value[i] ? st->value[i] : "");
}

void cmd_flags_usage(const char *prog, int fd)
{
    struct mp_buf b;
    mp_buf_init(&b, 0);
    int rc = mp_buf_appendf(&b,
                            "usage: %s [<flags>]\n\n"
                            "The meshprom server: a Prometheus-compatible metrics store.\n\n"
                            "Flags:\n"
                            "  -h, --help                 Show context-sensitive help.\n"
                            "      --version              Show application version.\n",
                            prog);
    for (size_t i = 0; i < NROWS && rc == 0; i++) {
        if (rows[i].hidden)
            continue;
        const struct row *r = &rows[i];
        if (r->kind == CMD_FLAG_BOOL)
            rc = mp_buf_appendf(&b, "      --[no-]%s\n", r->name);
        else if (r->def && *r->def)
            rc = mp_buf_appendf(&b, "      --%s=\"%s\"\n", r->name, r->def);
        else
            rc = mp_buf_appendf(&b, "      --%s=<value>\n", r->name);
        if (rc == 0)
            rc = mp_buf_appendf(&b, "                             %s\n", r->help);
    }
    if (rc == 0)
        (void)!write(fd, b.data, b.len);
    mp_buf_fini(&b);
}
