/* SPDX-License-Identifier: Apache-2.0 */
/* query/promqltest.c: runner of promqltest `.test` files (promql.md 7; behaviour of Prometheus
 * 2.55's promql/promqltest/test.go, written from the spec). Pipeline:
 *
 *   text -> lines (trimmed, `#` lines blank) -> commands (load / clear / eval*) with their
 *   expanded series and parsed queries -> run: loads append to a tsdb in a mkdtemp dir, evals
 *   go through the engine (or a test hook) and are compared with the expectations.
 *
 * Series descriptions: `name{l="v",...} v1 v2 ...` with the items of 7.3 (`a`, `_`, `_xN`,
 * `axN`, `a+bxN`, `a-bxN`, `stale`); `a+bxN` adds b N times by repeated float addition.
 * Comparison: by exact label set (unordered unless eval_ordered), floats with almost.Equal. */
#define _GNU_SOURCE /* nftw FTW_DEPTH|FTW_PHYS, mkdtemp */
#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "common/matcher.h"
#include "common/time.h"
#include "query/query_internal.h"
#include "tsdb/tsdb.h"

#define MAX_REPEAT 1000000 /* xN bound: keeps a typo from allocating gigabytes */

/* ---- values ----------------------------------------------------------------------------------
 */

bool query_test_almost_equal(double a, double b)
{
    const double eps = 1e-6, min_normal = 2.2250738585072014e-308;
    if (tsdb_is_stale(a) || tsdb_is_stale(b))
        return tsdb_is_stale(a) && tsdb_is_stale(b);
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    if (a == b)
        return true;
    double diff = fabs(a - b);
    if (a == 0 || b == 0 || fabs(a) + fabs(b) < min_normal)
        return diff < eps * min_normal;
    double sum = fabs(a) + fabs(b);
    if (sum > 1.7976931348623157e308)
        sum = 1.7976931348623157e308;
    return diff / sum < eps;
}

/* Parses a number as promqltest's parseNumber (Go ParseInt base 0, then ParseFloat): decimal,
 * octal with a leading 0, 0x hex, Inf/NaN with optional sign. The whole of s must be used. */
static bool parse_number(struct mp_str s, double *out)
{
    char buf[64];
    if (s.len == 0 || s.len >= sizeof buf)
        return false;
    memcpy(buf, s.ptr, s.len);
    buf[s.len] = 0;
    const char *p = buf + (buf[0] == '+' || buf[0] == '-');
    if (strcasecmp(p, "inf") == 0 || strcasecmp(p, "nan") == 0) {
        double v = tolower((unsigned char)p[0]) == 'i' ? INFINITY : NAN;
        *out = buf[0] == '-' ? -v : v;
        return true;
    }
    if (!isdigit((unsigned char)p[0]) && !(p[0] == '.' && isdigit((unsigned char)p[1])))
        return false;
    char *end;
    errno = 0;
    long long iv = strtoll(buf, &end, 0); /* base 0: 0x.. hex, 0.. octal, as Go ParseInt */
    if (*end == 0 && errno == 0) {
        *out = (double)iv;
        return true;
    }
    for (const char *q = p; *q; q++) /* ParseFloat: no hex floats, no "infinity" words */
        if (!(isdigit((unsigned char)*q) || *q == '.' || *q == 'e' || *q == 'E' || *q == '+' ||
              *q == '-'))
            return false;
    *out = strtod(buf, &end);
    return *end == 0;
}

/* Grows *arr (of elem-sized items) so that index n fits. */
static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 8;
    while (nc <= n)
        nc *= 2;
    size_t bytes;
    if (__builtin_mul_overflow(nc, elem, &bytes))
        return MP_ENOMEM;
    void *p = mp_realloc(*arr, bytes);
    if (!p)
        return MP_ENOMEM;
    *arr = p;
    *cap = nc;
    return 0;
}

struct vals {
    struct query_test_value *v;
    size_t n, cap;
};

static int vals_push(struct vals *vs, double v, bool omitted)
{
    if (grow((void **)&vs->v, &vs->cap, vs->n, sizeof *vs->v))
        return MP_ENOMEM;
    vs->v[vs->n++] = (struct query_test_value){v, omitted};
    return 0;
}

/* Length of the number at the start of s (sign, digits, dot, exponent, or inf/nan). */
static size_t number_prefix(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    if (n - i >= 3 && (strncasecmp(s + i, "inf", 3) == 0 || strncasecmp(s + i, "nan", 3) == 0))
        return i + 3;
    size_t d = i;
    while (i < n && (isdigit((unsigned char)s[i]) || s[i] == '.'))
        i++;
    if (i == d)
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < n && (s[j] == '+' || s[j] == '-'))
            j++;
        if (j < n && isdigit((unsigned char)s[j])) {
            while (j < n && isdigit((unsigned char)s[j]))
                j++;
            i = j;
        }
    }
    return i;
}

/* One whitespace-free item of 7.3 appended to vs. */
static int expand_item(struct mp_str it, struct vals *vs, struct mp_err *err)
{
    const char *s = it.ptr;
    size_t n = it.len;
    bool blank = s[0] == '_';
    double a = 0, b = 0;
    size_t i = 0;
    int op = 0;
    if (blank) {
        i = 1;
    } else if (n == 5 && memcmp(s, "stale", 5) == 0) {
        return vals_push(vs, tsdb_stale_nan(), false);
    } else {
        i = number_prefix(s, n);
        if (i == 0 || !parse_number((struct mp_str){s, i}, &a))
            goto bad;
        if (i < n && (s[i] == '+' || s[i] == '-')) {
            op = s[i] == '+' ? 1 : -1;
            size_t j = number_prefix(s + i + 1, n - i - 1);
            /* the increment is unsigned (a sign here would be a second operator) */
            if (j == 0 || s[i + 1] == '+' || s[i + 1] == '-' ||
                !parse_number((struct mp_str){s + i + 1, j}, &b))
                goto bad;
            i += 1 + j;
        }
    }
    if (i == n) {
        if (op)
            goto bad; /* "1+1" needs xN */
        return vals_push(vs, a, blank);
    }
    if (s[i] != 'x' || i + 1 == n)
        goto bad;
    long long times = 0;
    for (size_t j = i + 1; j < n; j++) {
        if (!isdigit((unsigned char)s[j]) || times > MAX_REPEAT)
            goto bad;
        times = times * 10 + (s[j] - '0');
    }
    if (times > MAX_REPEAT)
        goto bad;
    if (blank) { /* _xN: N omitted points */
        for (long long k = 0; k < times; k++)
            if (vals_push(vs, 0, true))
                return MP_ENOMEM;
        return 0;
    }
    double v = a; /* axN / a+bxN: N+1 values, by repeated addition as Go does */
    for (long long k = 0; k <= times; k++) {
        if (vals_push(vs, v, false))
            return MP_ENOMEM;
        if (op > 0)
            v += b;
        else if (op < 0)
            v -= b;
    }
    return 0;
bad:
    return mp_err_set(err, MP_EPARSE, "bad value item \"%.*s\"", (int)n, s);
}

static int expand(struct mp_str s, struct vals *vs, struct mp_err *err)
{
    size_t i = 0;
    while (i < s.len) {
        while (i < s.len && isspace((unsigned char)s.ptr[i]))
            i++;
        size_t j = i;
        while (j < s.len && !isspace((unsigned char)s.ptr[j]))
            j++;
        if (j > i) {
            if (s.ptr[i] == '{')
                return mp_err_set(err, MP_EPARSE, "native histogram samples are not supported");
            int rc = expand_item((struct mp_str){s.ptr + i, j - i}, vs, err);
            if (rc)
                return rc;
        }
        i = j;
    }
    return 0;
}

int query_test_expand_values(struct mp_str s, struct query_test_value **out, size_t *n,
                             struct mp_err *err)
{
    struct vals vs = {0};
    int rc = expand(s, &vs, err);
    if (rc) {
        mp_free(vs.v);
        *out = NULL;
        *n = 0;
        return rc;
    }
    *out = vs.v;
    *n = vs.n;
    return 0;
}

/* ---- series descriptions ---------------------------------------------------------------------
 */

static bool is_name_char(char c, bool first, bool metric)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (metric && c == ':') ||
           (!first && c >= '0' && c <= '9');
}

/* Unquotes the PromQL string literal at s (through the PromQL lexer); *used = its length. */
static int unquote(const char *s, size_t n, struct mp_buf *out, size_t *used, struct mp_err *err)
{
    if (n == 0 || (s[0] != '"' && s[0] != '\'' && s[0] != '`'))
        return mp_err_set(err, MP_EPARSE, "expected a quoted label value");
    size_t i = 1;
    while (i < n && s[i] != s[0]) {
        if (s[i] == '\\' && s[0] != '`')
            i++;
        i++;
    }
    if (i >= n)
        return mp_err_set(err, MP_EPARSE, "unterminated quoted string");
    *used = i + 1;
    struct query_expr *e = NULL;
    struct query_parse_error pe;
    if (query_parse(s, i + 1, NULL, &e, &pe))
        return mp_err_set(err, MP_EPARSE, "%s", pe.detail ? pe.detail : pe.msg);
    struct mp_str v = query_string_value(e);
    mp_buf_reset(out);
    int rc = mp_buf_append(out, v.ptr ? v.ptr : "", v.len);
    query_expr_free(e);
    return rc;
}

/* Parses `name`, `name{l="v",...}` or `{l="v",...}` at the start of s into *ls; *used = bytes
 * consumed. Label names may repeat? No: a repeated name is an error, as labels.New would give a
 * broken set. */
static int parse_metric(struct mp_str s, struct mp_labels **ls, size_t *used, struct mp_err *err)
{
    struct mp_label lab[64];
    struct mp_buf vals[64];
    size_t nl = 0, i = 0;
    int rc = 0;
    const char *p = s.ptr;
    size_t n = s.len;
    while (i < n && is_name_char(p[i], i == 0, true))
        i++;
    if (i > 0) {
        mp_buf_init(&vals[0], 0);
        rc = mp_buf_append(&vals[0], p, i);
        lab[0] = (struct mp_label){MP_STR_LIT("__name__"), {NULL, 0}};
        nl = 1;
    }
    if (rc == 0 && i < n && p[i] == '{') {
        i++;
        for (;;) {
            while (i < n && isspace((unsigned char)p[i]))
                i++;
            if (i < n && p[i] == '}') {
                i++;
                break;
            }
            size_t st = i;
            while (i < n && is_name_char(p[i], i == st, false))
                i++;
            if (i == st) {
                rc = mp_err_set(err, MP_EPARSE, "expected a label name at \"%.*s\"", (int)(n - st),
                                p + st);
                break;
            }
            if (nl == sizeof lab / sizeof lab[0]) {
                rc = mp_err_set(err, MP_EPARSE, "too many labels");
                break;
            }
            struct mp_str name = {p + st, i - st};
            while (i < n && isspace((unsigned char)p[i]))
                i++;
            if (i >= n || p[i] != '=') {
                rc = mp_err_set(err, MP_EPARSE, "expected '=' after label %.*s", (int)name.len,
                                name.ptr);
                break;
            }
            i++;
            while (i < n && isspace((unsigned char)p[i]))
                i++;
            size_t q = 0;
            mp_buf_init(&vals[nl], 0);
            lab[nl].name = name;
            nl++;
            rc = unquote(p + i, n - i, &vals[nl - 1], &q, err);
            if (rc)
                break;
            i += q;
            while (i < n && isspace((unsigned char)p[i]))
                i++;
            if (i < n && p[i] == ',')
                i++;
            else if (i >= n || p[i] != '}') {
                rc = mp_err_set(err, MP_EPARSE, "expected ',' or '}' in label set");
                break;
            }
        }
    } else if (rc == 0 && i == 0) {
        rc = mp_err_set(err, MP_EPARSE, "expected a metric name or '{'");
    }
    for (size_t k = 0; k < nl; k++)
        lab[k].value = (struct mp_str){vals[k].data ? vals[k].data : "", vals[k].len};
    if (rc == 0) {
        for (size_t a = 0; a < nl && rc == 0; a++)
            for (size_t b = a + 1; b < nl && rc == 0; b++)
                if (mp_str_eq(lab[a].name, lab[b].name))
                    rc = mp_err_set(err, MP_EPARSE, "label %.*s given twice", (int)lab[a].name.len,
                                    lab[a].name.ptr);
    }
    if (rc == 0)
        rc = mp_labels_create(lab, nl, ls, err);
    for (size_t k = 0; k < nl; k++)
        mp_buf_fini(&vals[k]);
    *used = i;
    return rc;
}

struct series {
    struct mp_labels *ls;
    struct query_test_value *v;
    size_t nv;
    int line;
};

static int parse_series(struct mp_str s, struct series *out, struct mp_err *err)
{
    size_t used;
    *out = (struct series){0};
    int rc = parse_metric(s, &out->ls, &used, err);
    if (rc)
        return rc;
    if (used < s.len && !isspace((unsigned char)s.ptr[used])) {
        mp_labels_release(out->ls);
        out->ls = NULL;
        return mp_err_set(err, MP_EPARSE, "unexpected \"%.*s\" after the metric",
                          (int)(s.len - used), s.ptr + used);
    }
    rc = query_test_expand_values((struct mp_str){s.ptr + used, s.len - used}, &out->v, &out->nv,
                                  err);
    if (rc) {
        mp_labels_release(out->ls);
        out->ls = NULL;
    }
    return rc;
}

static void series_fini(struct series *s)
{
    mp_labels_release(s->ls);
    mp_free(s->v);
}

/* ---- commands --------------------------------------------------------------------------------
 */

enum cmd_kind { CMD_LOAD, CMD_CLEAR, CMD_EVAL };

struct cmd {
    enum cmd_kind kind;
    int line;
    int64_t interval_ms;   /* load */
    struct series *series; /* load: the series; eval: the expected ones */
    size_t nseries, cap;
    bool range, fail, warn, info, ordered;
    int64_t start_ms, end_ms, step_ms;
    char *query;
    bool start_end; /* uses @ start() / @ end(): no range-mode check (they move with the range) */
    bool expect_scalar;
    double scalar;
    char *fail_msg;           /* expected_fail_message */
    struct mp_regex *fail_re; /* expected_fail_regexp, unanchored */
    char *fail_re_src;
};

struct script {
    const char *name;
    struct cmd *cmds;
    size_t n, cap;
};

static void cmd_fini(struct cmd *c)
{
    for (size_t i = 0; i < c->nseries; i++)
        series_fini(&c->series[i]);
    mp_free(c->series);
    mp_free(c->query);
    mp_free(c->fail_msg);
    mp_free(c->fail_re_src);
    mp_regex_destroy(c->fail_re);
}

static void script_fini(struct script *sc)
{
    for (size_t i = 0; i < sc->n; i++)
        cmd_fini(&sc->cmds[i]);
    mp_free(sc->cmds);
}

struct line {
    struct mp_str s;
    int no;
};

static struct mp_str trim(struct mp_str s)
{
    while (s.len && isspace((unsigned char)s.ptr[0]))
        s.ptr++, s.len--;
    while (s.len && isspace((unsigned char)s.ptr[s.len - 1]))
        s.len--;
    return s;
}

/* Next whitespace-separated word of *s (advancing it). */
static struct mp_str word(struct mp_str *s)
{
    *s = trim(*s);
    size_t i = 0;
    while (i < s->len && !isspace((unsigned char)s->ptr[i]))
        i++;
    struct mp_str w = {s->ptr, i};
    s->ptr += i;
    s->len -= i;
    return w;
}

static bool eq(struct mp_str a, const char *b)
{
    return mp_str_eq(a, mp_str_c(b));
}

/* A test-file time or interval: Prometheus model.ParseDuration. */
static int parse_dur(struct mp_str w, int64_t *ms, struct mp_err *err)
{
    if (w.len == 0)
        return mp_err_set(err, MP_EPARSE, "missing time or duration");
    return mp_duration_parse(w, ms, err);
}

static int add_series(struct cmd *c, struct series *s)
{
    if (grow((void **)&c->series, &c->cap, c->nseries, sizeof *c->series)) {
        series_fini(s);
        return MP_ENOMEM;
    }
    c->series[c->nseries++] = *s;
    return 0;
}

static int parse_load(struct cmd *c, struct mp_str rest, const struct line *ln, size_t nl,
                      size_t *i, struct mp_err *err)
{
    struct mp_str w = word(&rest);
    if (trim(rest).len)
        return mp_err_set(err, MP_EPARSE, "invalid load command");
    int rc = parse_dur(w, &c->interval_ms, err);
    if (rc)
        return rc;
    if (c->interval_ms <= 0)
        return mp_err_set(err, MP_EPARSE, "load interval must be positive");
    for (; *i + 1 < nl && ln[*i + 1].s.len; (*i)++) {
        struct series s;
        rc = parse_series(ln[*i + 1].s, &s, err);
        if (rc)
            return mp_err_wrap(err, "line %d", ln[*i + 1].no);
        s.line = ln[*i + 1].no;
        /* the same series twice in one load: the last definition wins (a map in test.go) */
        bool replaced = false;
        for (size_t k = 0; k < c->nseries && !replaced; k++) {
            if (mp_labels_equal(c->series[k].ls, s.ls)) {
                series_fini(&c->series[k]);
                c->series[k] = s;
                replaced = true;
            }
        }
        if (!replaced && (rc = add_series(c, &s)))
            return rc;
    }
    return 0;
}

/* Whether e uses @ start() or @ end() anywhere. */
static bool uses_start_end(const struct query_expr *e)
{
    if (!e)
        return false;
    switch (query_expr_kind(e)) {
    case QUERY_VECTOR_SELECTOR:
    case QUERY_MATRIX_SELECTOR: {
        enum query_at at = query_at(e, NULL);
        return at == QUERY_AT_START || at == QUERY_AT_END;
    }
    case QUERY_SUBQUERY: {
        enum query_at at = query_at(e, NULL);
        return at == QUERY_AT_START || at == QUERY_AT_END || uses_start_end(query_expr_inner(e));
    }
    case QUERY_PAREN:
    case QUERY_UNARY:
        return uses_start_end(query_expr_inner(e));
    case QUERY_AGGREGATE:
        return uses_start_end(query_expr_inner(e)) || uses_start_end(query_aggregate_param(e));
    case QUERY_BINARY:
        return uses_start_end(query_binary_lhs(e)) || uses_start_end(query_binary_rhs(e));
    case QUERY_CALL:
        for (size_t i = 0; i < query_call_nargs(e); i++)
            if (uses_start_end(query_call_arg(e, i)))
                return true;
        return false;
    default:
        return false;
    }
}

/* "eval[_fail|_warn|_info|_ordered] instant at T QUERY" or
 * "eval[_fail|_warn|_info] range from T to T step D QUERY" */
static int parse_eval(struct cmd *c, struct mp_str first, struct mp_str rest, struct mp_err *err)
{
    static const char *const mods[] = {"eval", "eval_fail", "eval_warn", "eval_info",
                                       "eval_ordered"};
    size_t m = 0;
    while (m < 5 && !eq(first, mods[m]))
        m++;
    if (m == 5)
        return mp_err_set(err, MP_EPARSE, "invalid command \"%.*s\"", (int)first.len, first.ptr);
    c->fail = m == 1, c->warn = m == 2, c->info = m == 3, c->ordered = m == 4;
    struct mp_str w = word(&rest);
    int rc;
    if (eq(w, "instant")) {
        if (!eq(word(&rest), "at"))
            return mp_err_set(err, MP_EPARSE, "invalid instant evaluation (expected \"at\")");
        if ((rc = parse_dur(word(&rest), &c->start_ms, err)))
            return rc;
        c->end_ms = c->start_ms;
    } else if (eq(w, "range")) {
        if (c->ordered)
            return mp_err_set(err, MP_EPARSE, "eval_ordered is only for instant evaluations");
        c->range = true;
        if (!eq(word(&rest), "from"))
            return mp_err_set(err, MP_EPARSE, "invalid range evaluation (expected \"from\")");
        if ((rc = parse_dur(word(&rest), &c->start_ms, err)))
            return rc;
        if (!eq(word(&rest), "to"))
            return mp_err_set(err, MP_EPARSE, "invalid range evaluation (expected \"to\")");
        if ((rc = parse_dur(word(&rest), &c->end_ms, err)))
            return rc;
        if (!eq(word(&rest), "step"))
            return mp_err_set(err, MP_EPARSE, "invalid range evaluation (expected \"step\")");
        if ((rc = parse_dur(word(&rest), &c->step_ms, err)))
            return rc;
        if (c->end_ms < c->start_ms)
            return mp_err_set(err, MP_EPARSE, "invalid range evaluation: end before start");
        if (c->step_ms <= 0)
            return mp_err_set(err, MP_EPARSE, "invalid range evaluation: step must be positive");
    } else {
        return mp_err_set(err, MP_EPARSE, "invalid eval command (expected instant or range)");
    }
    rest = trim(rest);
    if (rest.len == 0)
        return mp_err_set(err, MP_EPARSE, "missing query");
    struct query_parse_opts po;
    query_parse_opts_init(&po);
    po.experimental_functions = true;
    struct query_expr *e = NULL;
    struct query_parse_error pe;
    if (query_parse(rest.ptr, rest.len, &po, &e, &pe))
        return mp_err_set(err, MP_EPARSE, "invalid query %.*s: %s", (int)rest.len, rest.ptr,
                          pe.msg);
    c->start_end = uses_start_end(e);
    query_expr_free(e);
    c->query = mp_xstrndup(rest.ptr, rest.len);
    return 0;
}

static bool has_prefix(struct mp_str s, const char *p, struct mp_str *rest)
{
    size_t n = strlen(p);
    if (s.len < n || memcmp(s.ptr, p, n) != 0)
        return false;
    *rest = trim((struct mp_str){s.ptr + n, s.len - n});
    return true;
}

/* Expected lines of an eval, up to the next blank line. */
static int parse_expect(struct cmd *c, const struct line *ln, size_t nl, size_t *i,
                        struct mp_err *err)
{
    int rc = 0;
    for (; *i + 1 < nl && ln[*i + 1].s.len; (*i)++) {
        struct mp_str s = ln[*i + 1].s, rest;
        int no = ln[*i + 1].no;
        if (c->fail && has_prefix(s, "expected_fail_message", &rest)) {
            c->fail_msg = mp_xstrndup(rest.ptr, rest.len);
            continue;
        }
        if (c->fail && has_prefix(s, "expected_fail_regexp", &rest)) {
            struct mp_buf b;
            mp_buf_init(&b, 0);
            /* Go regexp.MatchString finds a match anywhere */
            rc = mp_buf_appendf(&b, "(?s:.*)(?:%.*s)(?s:.*)", (int)rest.len, rest.ptr);
            rc = rc ? rc : mp_regex_compile((struct mp_str){b.data, b.len}, 0, &c->fail_re, err);
            mp_buf_fini(&b);
            if (rc)
                return mp_err_wrap(err, "line %d: invalid expected_fail_regexp", no);
            c->fail_re_src = mp_xstrndup(rest.ptr, rest.len);
            continue;
        }
        double v;
        if (parse_number(s, &v)) {
            c->expect_scalar = true;
            c->scalar = v;
            continue;
        }
        struct series se;
        if ((rc = parse_series(s, &se, err)))
            return mp_err_wrap(err, "line %d", no);
        se.line = no;
        if (!c->range && se.nv > 1) {
            series_fini(&se);
            return mp_err_set(err, MP_EPARSE,
                              "line %d: expecting multiple values in instant evaluation not "
                              "allowed",
                              no);
        }
        if (c->range && c->step_ms > 0 &&
            (int64_t)se.nv > (c->end_ms - c->start_ms) / c->step_ms + 1) {
            series_fini(&se);
            return mp_err_set(err, MP_EPARSE,
                              "line %d: %zu values given but the range has only %lld steps", no,
                              se.nv, (long long)((c->end_ms - c->start_ms) / c->step_ms + 1));
        }
        for (size_t k = 0; k < c->nseries; k++) {
            if (mp_labels_equal(c->series[k].ls, se.ls)) {
                series_fini(&se);
                return mp_err_set(err, MP_EPARSE, "line %d: series expected twice", no);
            }
        }
        if ((rc = add_series(c, &se)))
            return rc;
    }
    if (c->expect_scalar && c->nseries)
        return mp_err_set(err, MP_EPARSE, "a scalar and series expected at once");
    return 0;
}

static int parse_script(const char *name, const char *src, size_t len, struct script *sc,
                        struct mp_err *err)
{
    *sc = (struct script){.name = name};
    struct line *ln = NULL;
    size_t nl = 0, lcap = 0;
    int rc = 0;
    for (size_t i = 0, no = 1; i <= len && rc == 0; no++) {
        size_t j = i;
        while (j < len && src[j] != '\n')
            j++;
        if (grow((void **)&ln, &lcap, nl, sizeof *ln)) {
            rc = MP_ENOMEM;
            break;
        }
        struct mp_str s = trim((struct mp_str){src + i, j - i});
        if (s.len && s.ptr[0] == '#')
            s.len = 0;
        ln[nl++] = (struct line){s, (int)no};
        i = j + 1;
    }
    for (size_t i = 0; i < nl && rc == 0; i++) {
        if (ln[i].s.len == 0)
            continue;
        struct mp_str rest = ln[i].s, first = word(&rest);
        char lower[32];
        size_t k;
        for (k = 0; k < first.len && k + 1 < sizeof lower; k++)
            lower[k] = (char)tolower((unsigned char)first.ptr[k]);
        lower[k] = 0;
        if (grow((void **)&sc->cmds, &sc->cap, sc->n, sizeof *sc->cmds)) {
            rc = MP_ENOMEM;
            break;
        }
        struct cmd *c = &sc->cmds[sc->n++];
        *c = (struct cmd){.line = ln[i].no};
        if (strcmp(lower, "clear") == 0) {
            c->kind = CMD_CLEAR;
        } else if (strcmp(lower, "load") == 0) {
            c->kind = CMD_LOAD;
            rc = parse_load(c, rest, ln, nl, &i, err);
        } else if (strncmp(lower, "eval", 4) == 0) {
            c->kind = CMD_EVAL;
            rc = parse_eval(c, mp_str_c(lower), rest, err);
            rc = rc ? rc : parse_expect(c, ln, nl, &i, err);
        } else {
            rc = mp_err_set(err, MP_EPARSE, "invalid command \"%.*s\"", (int)first.len, first.ptr);
        }
        if (rc && rc != MP_ENOMEM)
            mp_err_wrap(err, "%s:%d", name, c->line);
    }
    mp_free(ln);
    if (rc)
        script_fini(sc);
    return rc;
}

int query_test_check_buffer(const char *name, const char *src, size_t len, size_t *ncmds,
                            struct mp_err *err)
{
    struct script sc;
    int rc = parse_script(name, src, len, &sc, err);
    if (rc == 0) {
        if (ncmds)
            *ncmds = sc.n;
        script_fini(&sc);
    }
    return rc;
}

/* ---- storage ---------------------------------------------------------------------------------
 */

struct env {
    const struct query_test_opts *o;
    struct query_engine *engine;
    struct tsdb *db;
    char dir[4096];
    struct query_test_report *rep;
    const char *name;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void env_drop_db(struct env *v)
{
    tsdb_close(v->db);
    v->db = NULL;
    if (v->dir[0])
        (void)nftw(v->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    v->dir[0] = 0;
}

static int env_new_db(struct env *v, struct mp_err *err)
{
    env_drop_db(v);
    const char *parent = v->o->tmp_parent;
    if (!parent)
        parent = getenv("TMPDIR");
    if (!parent || !*parent)
        parent = "/tmp";
    int n = snprintf(v->dir, sizeof v->dir, "%s/meshprom-promqltest-XXXXXX", parent);
    if (n < 0 || (size_t)n >= sizeof v->dir || !mkdtemp(v->dir)) {
        v->dir[0] = 0;
        return mp_err_set(err, MP_EIO, "cannot create a temporary directory in %s: %s", parent,
                          strerror(errno));
    }
    struct tsdb_options to;
    tsdb_options_init(&to);
    to.dir = v->dir;
    to.background = false;
    to.wal_fsync = TSDB_WAL_FSYNC_NONE;
    to.min_block_ms = 24 * 3600 * 1000LL; /* promqltest's storage: 24 h blocks */
    to.max_block_ms = to.min_block_ms;
    to.no_lockfile = true;
    return tsdb_open(&to, &v->db, err);
}

static int run_load(struct env *v, const struct cmd *c, struct mp_err *err)
{
    struct tsdb_appender *app = NULL;
    int rc = tsdb_appender_create(v->db, &app);
    if (rc)
        return mp_err_set(err, rc, "cannot create an appender");
    for (size_t i = 0; i < c->nseries && rc == 0; i++) {
        const struct series *s = &c->series[i];
        uint64_t ref = 0;
        for (size_t k = 0; k < s->nv && rc == 0; k++) {
            if (s->v[k].omitted)
                continue;
            rc = tsdb_appender_add(app, ref, ref ? NULL : s->ls, (int64_t)k * c->interval_ms,
                                   s->v[k].v, &ref, err);
            if (rc)
                mp_err_wrap(err, "line %d: sample %zu", s->line, k);
        }
    }
    if (rc) {
        tsdb_appender_rollback(app);
        return rc;
    }
    return tsdb_appender_commit(app, err);
}

/* ---- evaluation and comparison ---------------------------------------------------------------
 */

/* Report text: an append that fails (out of memory) only shortens the report. */
static void bput(struct mp_buf *b, const char *s, size_t n)
{
    if (mp_buf_append(b, s, n) != 0)
        return;
}

static void bputf(struct mp_buf *b, const char *fmt, ...) MP_PRINTF(2, 3);
static void bputf(struct mp_buf *b, const char *fmt, ...)
{
    char tmp[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        bput(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A label set in the file's notation: name{l="v", ...}. */
static void fmt_labels(struct mp_buf *b, const struct mp_labels *ls)
{
    struct mp_str name = mp_labels_metric_name(ls);
    bput(b, name.ptr ? name.ptr : "", name.len);
    size_t n = mp_labels_count(ls), k = 0;
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        struct mp_label l = mp_labels_at(ls, i);
        if (eq(l.name, "__name__"))
            continue;
        bput(b, any ? ", " : "{", any ? 2 : 1);
        bput(b, l.name.ptr, l.name.len);
        bput(b, "=", 1);
        if (query_go_quote(b, l.value, 0) != 0)
            return;
        any = true;
        k++;
    }
    if (any || name.len == 0)
        bput(b, any ? "}" : "{}", any ? 1 : 2);
}

struct num {
    char s[48];
};

/* Shortest text that reads back as v, without an exponent for ordinary magnitudes. */
static struct num shortest(double v)
{
    struct num n;
    if (tsdb_is_stale(v) || isnan(v) || isinf(v)) {
        snprintf(n.s, sizeof n.s, "%s",
                 tsdb_is_stale(v) ? "stale"
                 : isnan(v)       ? "NaN"
                 : v > 0          ? "+Inf"
                                  : "-Inf");
        return n;
    }
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(n.s, sizeof n.s, "%.*e", prec - 1, v);
        if (strtod(n.s, NULL) == v)
            break;
    }
    int exp = v == 0 ? 0 : (int)floor(log10(fabs(v)));
    if (exp >= prec && exp < 21)
        prec = exp + 1; /* %g would switch to an exponent: keep the integer digits */
    snprintf(n.s, sizeof n.s, "%.*g", prec, v);
    if (strtod(n.s, NULL) != v)
        snprintf(n.s, sizeof n.s, "%.17g", v);
    return n;
}

static void fmt_values(struct mp_buf *b, const struct series *s)
{
    for (size_t k = 0; k < s->nv; k++) {
        bput(b, " ", 1);
        if (s->v[k].omitted)
            bput(b, "_", 1);
        else
            bputf(b, "%s", shortest(s->v[k].v).s);
    }
}

/* The expectation in the file's notation, for messages. */
static void fmt_expected(struct mp_buf *b, const struct series *s)
{
    fmt_labels(b, s->ls);
    fmt_values(b, s);
}

static void fmt_actual(struct mp_buf *b, const struct query_series *s, bool with_t)
{
    fmt_labels(b, s->labels);
    for (size_t k = 0; k < s->npoints; k++) {
        bputf(b, " %s", shortest(s->points[k].v).s);
        if (with_t)
            bputf(b, "@%s", shortest((double)s->points[k].t_ms / 1000).s);
    }
}

/* Failure text goes to rep->log; *ok becomes false. */
struct check {
    struct env *v;
    const struct cmd *c;
    const char *mode; /* "" or " (range mode)" */
    bool ok;
};

static void failf(struct check *k, const char *fmt, ...) MP_PRINTF(2, 3);
static void failf(struct check *k, const char *fmt, ...)
{
    struct mp_buf *b = &k->v->rep->log;
    if (k->ok)
        bputf(b, "%s:%d: %s%s: %s\n", k->v->name, k->c->line,
              k->c->range ? "eval range" : "eval instant", k->mode, k->c->query);
    k->ok = false;
    bputf(b, "%s", "    ");
    va_list ap;
    va_start(ap, fmt);
    char tmp[1024];
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    bputf(b, "%s", tmp);
    bput(b, "\n", 1);
}

/* failf with a labels/values rendering appended: the text in b. */
static void fail_buf(struct check *k, const char *what, struct mp_buf *b)
{
    failf(k, "%s %s", what, b->data ? b->data : "");
    mp_buf_reset(b);
}

static void compare_scalar(struct check *k, const struct query_result *r)
{
    const struct cmd *c = k->c;
    if (!c->expect_scalar) {
        failf(k, "expected %s but got scalar %s", c->nseries ? "a vector" : "an empty result",
              shortest(r->scalar.v).s);
        return;
    }
    if (!query_test_almost_equal(c->scalar, r->scalar.v))
        failf(k, "expected scalar %s but got %s", shortest(c->scalar).s, shortest(r->scalar.v).s);
}

/* Expected points of s: the non-omitted values at start + i*step. */
static void compare_points(struct check *k, const struct series *e, const struct query_series *a,
                           struct mp_buf *b)
{
    const struct cmd *c = k->c;
    size_t j = 0;
    bool bad = false;
    for (size_t i = 0; i < e->nv && !bad; i++) {
        if (e->v[i].omitted)
            continue;
        int64_t t = c->start_ms + (int64_t)i * c->step_ms;
        if (j >= a->npoints || a->points[j].t_ms != t ||
            !query_test_almost_equal(e->v[i].v, a->points[j].v))
            bad = true;
        j++;
    }
    if (!bad && j == a->npoints)
        return;
    fmt_expected(b, e);
    fail_buf(k, "expected", b);
    fmt_actual(b, a, true);
    fail_buf(k, "     got", b);
}

static void compare_series(struct check *k, const struct query_result *r, bool instant_vec)
{
    const struct cmd *c = k->c;
    struct mp_buf b;
    mp_buf_init(&b, 0);
    if (c->expect_scalar) {
        failf(k, "expected scalar %s but got a %s of %zu series", shortest(c->scalar).s,
              instant_vec ? "vector" : "matrix", r->nseries);
    }
    bool *seen = c->nseries ? mp_xcalloc(c->nseries, sizeof *seen) : NULL;
    for (size_t i = 0; i < r->nseries; i++) {
        const struct query_series *a = &r->series[i];
        size_t e = 0;
        while (e < c->nseries && !mp_labels_equal(c->series[e].ls, a->labels))
            e++;
        if (e == c->nseries) {
            if (!c->expect_scalar) {
                fmt_actual(&b, a, !instant_vec);
                fail_buf(k, "unexpected series", &b);
            }
            continue;
        }
        if (seen[e]) {
            fmt_labels(&b, a->labels);
            fail_buf(k, "series returned twice:", &b);
            continue;
        }
        seen[e] = true;
        if (c->ordered && e != i) {
            fmt_labels(&b, a->labels);
            failf(k, "series %s expected at position %zu but was at %zu", b.data, e + 1, i + 1);
            mp_buf_reset(&b);
        }
        if (instant_vec) {
            const struct series *ex = &c->series[e];
            bool match = a->npoints == 1 && ex->nv == 1 && !ex->v[0].omitted &&
                         query_test_almost_equal(ex->v[0].v, a->points[0].v);
            if (!match) {
                fmt_labels(&b, a->labels);
                bputf(&b, ": expected");
                fmt_values(&b, ex);
                failf(k, "%s but got %s", b.data,
                      a->npoints ? shortest(a->points[0].v).s : "no point");
                mp_buf_reset(&b);
            }
        } else {
            compare_points(k, &c->series[e], a, &b);
        }
    }
    for (size_t e = 0; e < c->nseries; e++) {
        if (!seen[e]) {
            fmt_expected(&b, &c->series[e]);
            fail_buf(k, "missing series", &b);
        }
    }
    if (!instant_vec) { /* range results and matrices are sorted by labels */
        for (size_t i = 1; i < r->nseries; i++) {
            if (mp_labels_compare(r->series[i - 1].labels, r->series[i].labels) >= 0) {
                fmt_labels(&b, r->series[i].labels);
                fail_buf(k, "result not sorted by labels at", &b);
                break;
            }
        }
    }
    mp_free(seen);
    mp_buf_fini(&b);
}

static void compare(struct check *k, const struct query_result *r)
{
    const struct cmd *c = k->c;
    if (r->type == QUERY_TYPE_SCALAR) {
        if (c->range)
            failf(k, "range query returned a scalar");
        else
            compare_scalar(k, r);
    } else if (r->type == QUERY_TYPE_VECTOR) {
        if (c->range)
            failf(k, "range query returned an instant vector");
        else
            compare_series(k, r, true);
    } else if (r->type == QUERY_TYPE_MATRIX) {
        if (c->ordered)
            failf(k, "expected an ordered result, but the query returned a matrix");
        compare_series(k, r, false);
    } else {
        failf(k, "string results cannot be compared (got \"%s\")", r->string ? r->string : "");
    }
}

static int exec_instant(struct env *v, const struct cmd *c, int64_t t, struct query_result *r,
                        struct mp_err *err)
{
    const struct query_test_exec *x = v->o->exec;
    if (x && x->instant)
        return x->instant(x->ctx, v->db, c->query, strlen(c->query), t, r, err);
    return query_exec_instant(v->engine, v->db, c->query, strlen(c->query), t, NULL, r, err);
}

static int exec_range(struct env *v, const struct cmd *c, int64_t s, int64_t e, int64_t step,
                      struct query_result *r, struct mp_err *err)
{
    const struct query_test_exec *x = v->o->exec;
    if (x && x->range)
        return x->range(x->ctx, v->db, c->query, strlen(c->query), s, e, step, r, err);
    return query_exec_range(v->engine, v->db, c->query, strlen(c->query), s, e, step, NULL, r, err);
}

static void check_annotations(struct check *k, const struct query_result *r)
{
    const struct cmd *c = k->c;
    if (!c->warn && r->nwarnings)
        failf(k, "unexpected warning: %s", r->warnings[0]);
    if (c->warn && !r->nwarnings)
        failf(k, "expected warnings but got none");
    if (c->info && !r->ninfos)
        failf(k, "expected info annotations but got none");
}

static void check_fail(struct check *k, int rc, const struct mp_err *e)
{
    const struct cmd *c = k->c;
    if (rc == 0) {
        failf(k, "expected an error but the query succeeded");
        return;
    }
    if (rc == MP_ENOMEM || rc == MP_EIO) {
        failf(k, "expected an evaluation error, got %s: %s", mp_strerror(rc), e->msg);
        return;
    }
    if (c->fail_msg && strcmp(c->fail_msg, e->msg) != 0)
        failf(k, "expected error \"%s\" but got \"%s\"", c->fail_msg, e->msg);
    if (c->fail_re && !mp_regex_match(c->fail_re, mp_str_c(e->msg)))
        failf(k, "expected an error matching /%s/ but got \"%s\"", c->fail_re_src, e->msg);
}

/* promqltest's range-mode check of an instant eval: [t-1m, t+1m] step 1m, the middle step must
 * hold the instant result. */
static void range_check(struct check *k, const struct query_result *inst)
{
    struct env *v = k->v;
    const struct cmd *c = k->c;
    struct check sub = {.v = v, .c = c, .mode = " (range mode)", .ok = true};
    struct query_result rr = {0};
    struct mp_err e;
    mp_err_clear(&e);
    int64_t t = c->start_ms;
    int rc = exec_range(v, c, t - 60000, t + 60000, 60000, &rr, &e);
    if (rc) {
        failf(&sub, "error: %s", e.msg);
    } else if (rr.type != QUERY_TYPE_MATRIX) {
        failf(&sub, "range query returned %s", query_type_name(rr.type));
    } else {
        /* the middle step as an instant result (a scalar query: its one series' value) */
        struct query_result mid = {.type = inst->type};
        struct query_series *ms = rr.nseries ? mp_xcalloc(rr.nseries, sizeof *ms) : NULL;
        for (size_t i = 0; i < rr.nseries; i++) {
            for (size_t j = 0; j < rr.series[i].npoints; j++) {
                if (rr.series[i].points[j].t_ms == t) {
                    ms[mid.nseries].labels = rr.series[i].labels;
                    ms[mid.nseries].points = &rr.series[i].points[j];
                    ms[mid.nseries++].npoints = 1;
                    break;
                }
            }
        }
        mid.series = ms;
        if (inst->type == QUERY_TYPE_SCALAR && mid.nseries != 1) {
            failf(&sub, "scalar query gave %zu series at the middle step", mid.nseries);
        } else {
            if (inst->type == QUERY_TYPE_SCALAR)
                mid.scalar = ms[0].points[0];
            compare(&sub, &mid);
        }
        mp_free(ms);
    }
    k->ok = k->ok && sub.ok;
    query_result_fini(&rr);
}

static void run_eval(struct env *v, const struct cmd *c)
{
    struct check k = {.v = v, .c = c, .mode = "", .ok = true};
    struct query_result r = {0};
    struct mp_err e;
    mp_err_clear(&e);
    int rc = c->range ? exec_range(v, c, c->start_ms, c->end_ms, c->step_ms, &r, &e)
                      : exec_instant(v, c, c->start_ms, &r, &e);
    v->rep->evals++;
    if (c->fail) {
        check_fail(&k, rc, &e);
    } else if (rc) {
        failf(&k, "error: %s", e.msg);
    } else {
        check_annotations(&k, &r);
        compare(&k, &r);
        if (k.ok && !c->range && !c->ordered && !c->start_end && v->o->range_check &&
            (r.type == QUERY_TYPE_VECTOR || r.type == QUERY_TYPE_SCALAR))
            range_check(&k, &r);
    }
    if (!k.ok)
        v->rep->failed++;
    query_result_fini(&r);
}

/* ---- entry points ----------------------------------------------------------------------------
 */

void query_test_opts_init(struct query_test_opts *o)
{
    *o = (struct query_test_opts){0};
    query_engine_opts_init(&o->engine);
    o->engine.timeout_ms = 100000;
    o->engine.max_samples = 10000;
    o->engine.lookback_delta_ms = 5 * 60000;
    o->engine.delayed_name_removal = true;
    o->engine.parse.experimental_functions = true;
    o->range_check = true;
}

void query_test_report_init(struct query_test_report *r)
{
    *r = (struct query_test_report){0};
    mp_buf_init(&r->log, 0);
}

void query_test_report_fini(struct query_test_report *r)
{
    if (r)
        mp_buf_fini(&r->log);
}

int query_test_run_buffer(const char *name, const char *src, size_t len,
                          const struct query_test_opts *o, struct query_test_report *rep,
                          struct mp_err *err)
{
    struct query_test_opts def;
    if (!o) {
        query_test_opts_init(&def);
        o = &def;
    }
    struct script sc;
    int rc = parse_script(name, src, len, &sc, err);
    if (rc)
        return rc;
    struct env v = {.o = o, .rep = rep, .name = name};
    if (!(o->exec && o->exec->instant && o->exec->range))
        rc = query_engine_create(&o->engine, &v.engine, err);
    rc = rc ? rc : env_new_db(&v, err);
    for (size_t i = 0; i < sc.n && rc == 0; i++) {
        const struct cmd *c = &sc.cmds[i];
        switch (c->kind) {
        case CMD_CLEAR:
            rc = env_new_db(&v, err);
            break;
        case CMD_LOAD:
            rc = run_load(&v, c, err);
            if (rc)
                mp_err_wrap(err, "%s:%d: load", name, c->line);
            break;
        case CMD_EVAL:
            run_eval(&v, c);
            break;
        }
    }
    env_drop_db(&v);
    query_engine_destroy(v.engine);
    script_fini(&sc);
    return rc;
}

int query_test_run_file(const char *path, const struct query_test_opts *o,
                        struct query_test_report *rep, struct mp_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return mp_err_set(err, MP_EIO, "open %s: %s", path, strerror(errno));
    struct mp_buf b;
    mp_buf_init(&b, 0);
    char chunk[65536];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = mp_buf_append(&b, chunk, n);
    if (rc == 0 && ferror(f))
        rc = mp_err_set(err, MP_EIO, "read %s: %s", path, strerror(errno));
    fclose(f);
    if (rc == 0)
        rc = query_test_run_buffer(path, b.data ? b.data : "", b.len, o, rep, err);
    mp_buf_fini(&b);
    return rc;
}
