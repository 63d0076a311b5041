/* SPDX-License-Identifier: Apache-2.0 */
/* cmd/tool_tsdb.c: meshpromtool's `tsdb` commands, as promtool 2.42's (cmd/promtool/tsdb.go,
 * backfill.go): create-blocks-from openmetrics, dump, analyze. Flags are parsed as kingpin
 * does (anywhere among the arguments, --flag=v or --flag v, -qr); errors print
 * "meshpromtool: error: ..., try --help" and exit 1 as promtool's. */
#include "cmd/tool_tsdb.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/selector.h"
#include "common/alloc.h"
#include "common/labels.h"
#include "common/log.h"
#include "scraper/scraper.h"
#include "tsdb/tsdb.h"

#define BLOCK_MS INT64_C(7200000)
#define MAX_LABELS 1024

static int usage_error(const char *fmt, ...) MP_PRINTF(1, 2);
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "meshpromtool: error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, ", try --help\n");
    va_end(ap);
    return 1;
}

static int fail(const struct mp_err *err)
{
    fprintf(stderr, "%s\n", err->msg);
    return 1;
}

/* Go strconv.ParseInt(s, 0, 64) as kingpin's Int64 flag: sign, 0x / 0o / 0b / leading-0 octal
 * prefixes, '_' between digits. */
static bool parse_go_int(const char *s, int64_t *out)
{
    bool neg = *s == '-';
    if (*s == '+' || *s == '-')
        s++;
    int base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16, s += 2;
    } else if (s[0] == '0' && (s[1] == 'o' || s[1] == 'O')) {
        base = 8, s += 2;
    } else if (s[0] == '0' && (s[1] == 'b' || s[1] == 'B')) {
        base = 2, s += 2;
    } else if (s[0] == '0' && s[1]) {
        base = 8, s++;
    }
    uint64_t v = 0, lim = neg ? UINT64_C(1) << 63 : (UINT64_C(1) << 63) - 1;
    bool any = false;
    for (; *s; s++) {
        if (*s == '_')
            continue;
        int d = *s >= '0' && *s <= '9' ? *s - '0'
                : *s >= 'a' && *s <= 'z' ? *s - 'a' + 10
                : *s >= 'A' && *s <= 'Z' ? *s - 'A' + 10 : 99;
        if (d >= base)
            return false;
        if (v > (lim - (uint64_t)d) / (uint64_t)base)
            return false;
        v = v * (uint64_t)base + (uint64_t)d;
        any = true;
    }
    if (!any)
        return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* --name=value or --name value; returns the value, advancing *i, or NULL when arg is not it. */
static const char *flag_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

/* A flag without its value, or one the command does not have. */
static int bad_flag(const char *arg, bool missing)
{
    if (missing)
        return usage_error("expected argument for flag '%s'", arg);
    return usage_error("unknown %s flag '%s'", arg[1] == '-' ? "long" : "short", arg);
}

/* ---- create-blocks-from openmetrics ------------------------------------------------------- */

struct input {
    const char *data;
    size_t len;
};

/* The min and max timestamp of the file (promtool's getMinAndMaxTimestamps). */
static int min_max(const struct input *in, int64_t *mint, int64_t *maxt, struct mp_err *err)
{
    struct scrape_parser p;
    scrape_parser_init(&p, SCRAPE_FORMAT_OPENMETRICS, in->data, in->len, 0);
    struct scrape_label lab[MAX_LABELS];
    struct scrape_entry e = {.label = lab, .label_cap = MAX_LABELS};
    *mint = INT64_MAX;
    *maxt = INT64_MIN;
    int rc;
    while ((rc = scrape_parser_next(&p, &e, err)) == 0) {
        if (e.kind != SCRAPE_ENTRY_SERIES)
            continue;
        if (!e.has_ts)
            return mp_err_set(err, MP_EPARSE, "expected timestamp for series got none");
        if (e.ts_ms > *maxt)
            *maxt = e.ts_ms;
        if (e.ts_ms < *mint)
            *mint = e.ts_ms;
    }
    if (*maxt == INT64_MIN)
        *maxt = 0;
    if (*mint == INT64_MAX)
        *mint = 0;
    if (rc == MP_EEOF)
        return 0;
    return mp_err_wrap(err, "next");
}

/* The labels of a series entry, values unescaped, empty ones left out. */
static int entry_labels(const struct scrape_entry *e, char *scratch, size_t cap,
                        struct mp_labels **out, struct mp_err *err)
{
    struct mp_label l[MAX_LABELS + 1];
    size_t n = 0, used = 0;
    l[n++] = (struct mp_label){mp_str_c(MP_LABEL_METRIC_NAME), e->name};
    for (size_t i = 0; i < e->nlabel; i++) {
        struct mp_str v = e->label[i].value;
        if (v.len == 0)
            continue; /* an empty value is an absent label (Prometheus drops it) */
        if (e->label[i].escaped) {
            if (used + v.len > cap)
                return mp_err_set(err, MP_ELIMIT, "labels too long");
            size_t k = scrape_unescape(v, false, scratch + used, cap - used);
            v = (struct mp_str){scratch + used, k};
            used += k;
        }
        l[n++] = (struct mp_label){e->label[i].name, v};
    }
    return mp_labels_create(l, n, out, err);
}

/* One window [t, t + BLOCK_MS): every sample of the file inside it into one block. */
static int build_window(const struct input *in, const char *out_dir, int64_t t, int64_t upper,
                        int64_t *next_ts, bool quiet, bool human, bool *header,
                        struct mp_err *err)
{
    struct tsdb_block_builder *b;
    int rc = tsdb_block_builder_create(out_dir, t, upper, &b, err);
    if (rc)
        return mp_err_wrap(err, "block writer");
    struct scrape_parser p;
    scrape_parser_init(&p, SCRAPE_FORMAT_OPENMETRICS, in->data, in->len, 0);
    struct scrape_label lab[MAX_LABELS];
    struct scrape_entry e = {.label = lab, .label_cap = MAX_LABELS};
    /* unescaped label values: never longer than the series text they come from */
    size_t cap = 0;
    char *scratch = NULL;
    while ((rc = scrape_parser_next(&p, &e, err)) == 0) {
        if (e.kind != SCRAPE_ENTRY_SERIES)
            continue;
        if (e.ts_ms < t)
            continue;
        if (e.ts_ms >= upper) {
            if (e.ts_ms < *next_ts)
                *next_ts = e.ts_ms;
            continue;
        }
        if (e.series.len > cap) {
            char *ns = mp_realloc(scratch, e.series.len);
            if (!ns) {
                rc = mp_err_set(err, MP_ENOMEM, "labels");
                break;
            }
            scratch = ns;
            cap = e.series.len;
        }
        int dup = scrape_entry_duplicate_label(&e);
        if (dup >= 0) {
            rc = mp_err_set(err, MP_EINVAL, "add sample: label name \"%.*s\" is not unique: "
                            "invalid sample", (int)e.label[dup].name.len, e.label[dup].name.ptr);
            break;
        }
        struct mp_labels *ls;
        rc = entry_labels(&e, scratch, cap, &ls, err);
        if (rc) {
            mp_err_wrap(err, "add sample");
            break;
        }
        rc = tsdb_block_builder_add(b, ls, e.ts_ms, e.value, err);
        mp_labels_release(ls);
        if (rc) {
            mp_err_wrap(err, "add sample");
            break;
        }
    }
    mp_free(scratch);
    if (rc == MP_EEOF) {
        rc = 0;
    } else if (rc) {
        if (err && strncmp(err->msg, "add sample", 10) != 0)
            mp_err_wrap(err, "parse");
    }
    bool written = false;
    struct tsdb_block_info info;
    if (!rc && (rc = tsdb_block_builder_finish(b, &written, &info, err)))
        mp_err_wrap(err, "flush");
    tsdb_block_builder_destroy(b);
    if (!rc && written && !quiet) {
        tsdb_block_info_print(stdout, &info, !*header, human);
        *header = true;
        fflush(stdout);
    }
    return rc;
}

static int backfill(const struct input *in, const char *out_dir, bool quiet, bool human,
                    struct mp_err *err)
{
    int64_t mint, maxt;
    int rc = min_max(in, &mint, &maxt, err);
    if (rc)
        return mp_err_wrap(err, "getting min and max timestamp");
    mint = BLOCK_MS * (mint / BLOCK_MS); /* Go's division truncates toward zero, as C's */
    bool header = false;
    /* Windows mint + k * 2 h up to maxt, as promtool's loop; a window without samples is never
     * parsed (promtool steps over it one by one, here the step goes straight to the window of
     * the next sample seen, which gives the same blocks). */
    for (int64_t t = mint; t <= maxt;) {
        int64_t upper = t > INT64_MAX - BLOCK_MS ? INT64_MAX : t + BLOCK_MS;
        int64_t next_ts = INT64_MAX;
        rc = build_window(in, out_dir, t, upper, &next_ts, quiet, human, &header, err);
        if (rc)
            return mp_err_wrap(err, "block creation: process blocks");
        if (next_ts == INT64_MAX || upper == INT64_MAX)
            break;
        t = (int64_t)((uint64_t)mint +
                      ((uint64_t)next_ts - (uint64_t)mint) / BLOCK_MS * (uint64_t)BLOCK_MS);
    }
    return 0;
}

int cmd_tool_tsdb_create_blocks(int argc, char **argv)
{
    bool quiet = false, human = false;
    const char *pos[3];
    int npos = 0;
    bool flags_done = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!flags_done && strcmp(a, "--") == 0) {
            flags_done = true;
        } else if (!flags_done && (strcmp(a, "--quiet") == 0)) {
            quiet = true;
        } else if (!flags_done && strcmp(a, "--human-readable") == 0) {
            human = true;
        } else if (!flags_done && a[0] == '-' && a[1] != '-' && a[1]) {
            for (const char *c = a + 1; *c; c++) {
                if (*c == 'q')
                    quiet = true;
                else if (*c == 'r')
                    human = true;
                else {
                    char f[3] = {'-', *c, 0};
                    return usage_error("unknown short flag '%s'", f);
                }
            }
        } else if (!flags_done && a[0] == '-' && a[1] == '-') {
            return usage_error("unknown long flag '%s'", a);
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            return usage_error("unexpected %s", a);
        }
    }
    if (npos < 1)
        return usage_error("required argument '%s' not provided", "input file");
    const char *out_dir = npos > 1 ? pos[1] : "data/";
    struct mp_err err = {0};
    int fd = open(pos[0], O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "open %s: %s\n", pos[0], strerror(errno));
        if (fd >= 0)
            close(fd);
        return 1;
    }
    struct input in = {"", 0};
    void *map = NULL;
    if (st.st_size > 0) {
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            fprintf(stderr, "mmap %s: %s\n", pos[0], strerror(errno));
            close(fd);
            return 1;
        }
        in = (struct input){map, (size_t)st.st_size};
    }
    close(fd);
    int status = 0;
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "create output dir: mkdir %s: %s\n", out_dir, strerror(errno));
        status = 1;
    } else if (backfill(&in, out_dir, quiet, human, &err) != 0) {
        status = fail(&err);
    }
    if (map)
        munmap(map, in.len);
    return status;
}

/* ---- dump --------------------------------------------------------------------------------- */

static int dump(const char *path, int64_t mint, int64_t maxt, const struct cmd_selector *sel,
                struct mp_err *err)
{
    struct tsdb_options o;
    tsdb_options_init(&o);
    o.dir = path;
    o.read_only = true;
    o.background = false;
    struct tsdb *db;
    int rc = tsdb_open(&o, &db, err);
    if (rc)
        return rc;
    struct tsdb_querier *q = NULL;
    struct tsdb_series_set *set = NULL;
    rc = tsdb_querier_open(db, mint, maxt, &q, err);
    if (!rc && sel->n) /* no matcher selects nothing, as Prometheus's querier */
        rc = tsdb_querier_select(q, (const struct mp_matcher *const *)sel->m, sel->n, &set, err);
    struct mp_buf line;
    mp_buf_init(&line, 0);
    while (!rc && set && (rc = tsdb_series_set_next(set, err)) == 0) {
        mp_buf_reset(&line);
        rc = mp_labels_format(tsdb_series_set_labels(set), &line);
        if (rc)
            break;
        struct tsdb_sample_iter it;
        tsdb_series_set_iter(set, &it);
        int64_t t;
        double v;
        while ((rc = tsdb_sample_iter_next(&it, &t, &v)) == 0) {
            char num[40];
            mp_float_format_go(v, num, sizeof num);
            printf("%s %s %lld\n", line.data, num, (long long)t);
        }
        if (rc == MP_EEOF)
            rc = 0;
        else
            mp_err_set(err, rc, "reading samples of %s", line.data);
    }
    if (rc == MP_EEOF)
        rc = 0;
    mp_buf_fini(&line);
    tsdb_series_set_free(set);
    tsdb_querier_close(q);
    tsdb_close(db);
    return rc;
}

int cmd_tool_tsdb_dump(int argc, char **argv)
{
    int64_t mint = INT64_MIN, maxt = INT64_MAX;
    const char *match = "{__name__=~'(?s:.*)'}";
    const char *path = NULL;
    for (int i = 0; i < argc; i++) {
        bool missing = false;
        const char *v;
        if ((v = flag_value(argc, argv, &i, "--min-time", &missing))) {
            if (!parse_go_int(v, &mint))
                return usage_error("strconv.ParseInt: parsing \"%s\": invalid syntax", v);
        } else if ((v = flag_value(argc, argv, &i, "--max-time", &missing))) {
            if (!parse_go_int(v, &maxt))
                return usage_error("strconv.ParseInt: parsing \"%s\": invalid syntax", v);
        } else if ((v = flag_value(argc, argv, &i, "--match", &missing))) {
            match = v;
        } else if (missing || (argv[i][0] == '-' && argv[i][1])) {
            return bad_flag(argv[i], missing);
        } else if (!path) {
            path = argv[i];
        } else {
            return usage_error("unexpected %s", argv[i]);
        }
    }
    struct mp_err err = {0};
    struct cmd_selector sel;
    if (cmd_selector_parse(match, strlen(match), &sel, &err) != 0)
        return fail(&err);
    int rc = dump(path ? path : "data/", mint, maxt, &sel, &err);
    cmd_selector_fini(&sel);
    fflush(stdout);
    return rc ? fail(&err) : 0;
}

/* ---- analyze ------------------------------------------------------------------------------ */

int cmd_tool_tsdb_analyze(int argc, char **argv)
{
    int64_t limit = 20;
    bool extended = false;
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    for (int i = 0; i < argc; i++) {
        bool missing = false;
        const char *v;
        if ((v = flag_value(argc, argv, &i, "--limit", &missing))) {
            char *end;
            errno = 0;
            double d = strtod(v, &end);
            if (!*v || *end || errno)
                return usage_error("strconv.ParseFloat: parsing \"%s\": invalid syntax", v);
            limit = (int64_t)d;
        } else if (strcmp(argv[i], "--extended") == 0) {
            extended = true;
        } else if (missing || (argv[i][0] == '-' && argv[i][1])) {
            return bad_flag(argv[i], missing);
        } else if (npos < 2) {
            pos[npos++] = argv[i];
        } else {
            return usage_error("unexpected %s", argv[i]);
        }
    }
    struct mp_err err = {0};
    int rc = tsdb_analyze(pos[0] ? pos[0] : "data/", pos[1], limit < 0 ? 0 : (size_t)limit,
                          extended, stdout, &err);
    fflush(stdout);
    return rc ? fail(&err) : 0;
}

void cmd_tool_tsdb_quiet_logs(void)
{
    mp_log_set_level(MP_LOG_LEVEL_WARN);
}
