/* SPDX-License-Identifier: Apache-2.0 */
/* common/log.c: logfmt/JSON line formatting, one write() per line, flood limiters.
 *
 * Quoting follows go-logfmt (used by go-kit log in Prometheus 2.x): a value is quoted when it
 * contains a byte <= ' ', '=' or '"' (or is the literal "null"); inside quotes `\` and `"`
 * are escaped, \n \r \t get their short escapes and other control bytes become \u00XX.
 * An empty value is written as nothing (`key=`), as go-logfmt does. JSON escapes the same
 * bytes (Go's encoder with HTML escaping off, as go-kit's JSON logger sets it).
 *
 * Numbers: integers in decimal; floats as Go's fmt %v, i.e. strconv 'g' shortest (logfmt),
 * or as encoding/json writes them (JSON: plain decimal, exponent only below 1e-6 or from
 * 1e21 on). NaN and infinities, which Go's JSON encoder rejects, are written as strings. */
#include "common/log.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/str.h"
#include "common/time.h"

#define STACK_LINE 2048

static _Atomic int min_level = MP_LOG_LEVEL_INFO;

static _Atomic int out_fd = 2;
static _Atomic int out_format = MP_LOG_FORMAT_LOGFMT;
static mp_log_sink_fn *sink_fn;
static void *sink_ctx;
static int64_t (*clock_fn)(void) = mp_now_ms;
static _Atomic uint64_t lines_total[4];
static _Atomic uint64_t suppressed_total;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int mp_log_level_parse(const char *s, enum mp_log_level *out)
{
    for (int i = 0; s && i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum mp_log_level)i;
            return 0;
        }
    }
    return MP_EINVAL;
}

int mp_log_format_parse(const char *s, enum mp_log_format *out)
{
    if (s && strcmp(s, "logfmt") == 0)
        *out = MP_LOG_FORMAT_LOGFMT;
    else if (s && strcmp(s, "json") == 0)
        *out = MP_LOG_FORMAT_JSON;
    else
        return MP_EINVAL;
    return 0;
}

const char *mp_log_level_name(enum mp_log_level level)
{
    return (unsigned)level < 4 ? level_names[level] : "unknown";
}

void mp_log_setup(enum mp_log_level level, enum mp_log_format format, int fd)
{
    mp_log_set_level(level);
    atomic_store_explicit(&out_format, (int)format, memory_order_relaxed);
    atomic_store_explicit(&out_fd, fd, memory_order_relaxed);
    sink_fn = NULL;
    sink_ctx = NULL;
}

void mp_log_set_level(enum mp_log_level level)
{
    atomic_store_explicit(&min_level, (int)level, memory_order_relaxed);
}

bool mp_log_is_enabled(enum mp_log_level level)
{
    /* relaxed: a level change only needs to become visible eventually */
    return (int)level >= atomic_load_explicit(&min_level, memory_order_relaxed);
}

void mp_log_set_sink(mp_log_sink_fn *fn, void *ctx)
{
    sink_fn = fn;
    sink_ctx = ctx;
}

void mp_log_set_clock(int64_t (*now_ms)(void))
{
    clock_fn = now_ms ? now_ms : mp_now_ms;
}

uint64_t mp_log_lines_total(enum mp_log_level level)
{
    if ((unsigned)level >= 4)
        return 0;
    return atomic_load_explicit(&lines_total[level], memory_order_relaxed);
}

uint64_t mp_log_suppressed_total(void)
{
    return atomic_load_explicit(&suppressed_total, memory_order_relaxed);
}

/* ---- floats ------------------------------------------------------------------------- */

/* Writes digits with exponent exp10 either as d.ddde±XX (min_exp_digits wide exponent) or
 * as a plain decimal. */
static int format_digits(char *buf, size_t cap, bool neg, const char *d, int nd, int exp10,
                         bool use_exp, int min_exp_digits)
{
    char out[400];
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    if (use_exp) {
        out[o++] = d[0];
        if (nd > 1) {
            out[o++] = '.';
            memcpy(out + o, d + 1, (size_t)nd - 1);
            o += (size_t)nd - 1;
        }
        int e = exp10 < 0 ? -exp10 : exp10;
        o += (size_t)snprintf(out + o, sizeof out - o, "e%c%0*d", exp10 < 0 ? '-' : '+',
                              min_exp_digits, e);
    } else if (exp10 < 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int i = 0; i < -exp10 - 1; i++)
            out[o++] = '0';
        memcpy(out + o, d, (size_t)nd);
        o += (size_t)nd;
    } else {
        for (int i = 0; i <= exp10 || i < nd; i++) {
            if (i == exp10 + 1)
                out[o++] = '.';
            out[o++] = i < nd ? d[i] : '0';
        }
    }
    out[o] = '\0';
    return snprintf(buf, cap, "%s", out);
}

int mp_float_format_go(double v, char *buf, size_t cap)
{
    if (isnan(v))
        return snprintf(buf, cap, "NaN");
    if (isinf(v))
        return snprintf(buf, cap, v > 0 ? "+Inf" : "-Inf");
    if (v == 0)
        return snprintf(buf, cap, signbit(v) ? "-0" : "0");
    char d[24];
    int exp10;
    int nd = mp_fmt_shortest_digits(v, d, &exp10);
    /* strconv ftoa.go: in shortest mode %e is chosen when exp < -4 || exp >= 6 */
    return format_digits(buf, cap, signbit(v), d, nd, exp10, exp10 < -4 || exp10 >= 6, 2);
}

/* encoding/json floatEncoder: 'f' unless abs < 1e-6 or abs >= 1e21, then 'e' with the
 * exponent's leading zero removed ("1e-07"  -> "1e-7"). */
static int float_format_json(double v, char *buf, size_t cap)
{
    if (v == 0)
        return snprintf(buf, cap, signbit(v) ? "-0" : "0");
    char d[24];
    int exp10;
    int nd = mp_fmt_shortest_digits(v, d, &exp10);
    double a = fabs(v);
    return format_digits(buf, cap, signbit(v), d, nd, exp10, a < 1e-6 || a >= 1e21, 1);
}

/* ---- line buffer -------------------------------------------------------------------- */

struct line {
    char *p;
    size_t len, cap;
    bool heap, truncated;
    char stack[STACK_LINE];
};

static void line_put(struct line *l, const char *s, size_t n)
{
    if (l->truncated)
        return;
    if (l->len + n + 1 > l->cap) {
        size_t cap = l->cap * 2;
        while (cap < l->len + n + 1)
            cap *= 2;
        /* 4 spare bytes past cap keep room for the "...\n" of a truncated line */
        char *np = l->heap ? mp_realloc(l->p, cap + 4) : mp_malloc(cap + 4);
        if (!np) {
            /* keep what fits; the line ends in "..." */
            size_t room = l->cap - l->len - 1;
            memcpy(l->p + l->len, s, room < n ? room : n);
            l->len += room < n ? room : n;
            l->truncated = true;
            return;
        }
        if (!l->heap)
            memcpy(np, l->p, l->len);
        l->p = np;
        l->cap = cap;
        l->heap = true;
    }
    memcpy(l->p + l->len, s, n);
    l->len += n;
}

static void line_puts(struct line *l, const char *s)
{
    line_put(l, s, strlen(s));
}

static void line_putc(struct line *l, char c)
{
    line_put(l, &c, 1);
}

static const char hexd[] = "0123456789abcdef";

/* Escapes for quoted logfmt and JSON strings (same rules for both, see the file header). */
static void put_escaped(struct line *l, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        line_put(l, run, (size_t)(s - run));
        run = s + 1;
        char esc[7] = {'\\', 0};
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hexd[c >> 4];
            esc[5] = hexd[c & 15];
            break;
        }
        line_puts(l, esc);
    }
    line_put(l, run, (size_t)(s - run));
}

static bool logfmt_needs_quote(const char *s)
{
    if (strcmp(s, "null") == 0)
        return true;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c == '=' || c == '"' || c == 0x7f)
            return true;
    }
    return false;
}

static void put_logfmt_str(struct line *l, const char *s)
{
    if (!s || !*s)
        return;
    if (!logfmt_needs_quote(s)) {
        line_puts(l, s);
        return;
    }
    line_putc(l, '"');
    put_escaped(l, s);
    line_putc(l, '"');
}

static void put_json_str(struct line *l, const char *s)
{
    line_putc(l, '"');
    put_escaped(l, s ? s : "");
    line_putc(l, '"');
}

/* Starts field k: " k=" (logfmt) or ",\"k\":" (JSON). */
static void put_key(struct line *l, bool json, const char *k, bool first)
{
    if (json) {
        if (!first)
            line_putc(l, ',');
        put_json_str(l, k);
        line_putc(l, ':');
    } else {
        if (!first)
            line_putc(l, ' ');
        line_puts(l, k);
        line_putc(l, '=');
    }
}

static void put_str_field(struct line *l, bool json, const char *k, const char *v, bool first)
{
    put_key(l, json, k, first);
    if (json)
        put_json_str(l, v);
    else
        put_logfmt_str(l, v);
}

static void put_kv(struct line *l, bool json, const struct mp_kv *kv)
{
    char num[64];
    if (!kv->key)
        return;
    switch (kv->type) {
    case MP_KV_TYPE_STR:
        put_str_field(l, json, kv->key, kv->v.s, false);
        return;
    case MP_KV_TYPE_I64:
        snprintf(num, sizeof num, "%lld", (long long)kv->v.i64);
        break;
    case MP_KV_TYPE_U64:
        snprintf(num, sizeof num, "%llu", (unsigned long long)kv->v.u64);
        break;
    case MP_KV_TYPE_BOOL:
        snprintf(num, sizeof num, "%s", kv->v.b ? "true" : "false");
        break;
    case MP_KV_TYPE_F64:
        if (json && !isfinite(kv->v.f64)) {
            mp_float_format_go(kv->v.f64, num, sizeof num);
            put_str_field(l, json, kv->key, num, false);
            return;
        }
        if (json)
            float_format_json(kv->v.f64, num, sizeof num);
        else
            mp_float_format_go(kv->v.f64, num, sizeof num);
        break;
    default:
        snprintf(num, sizeof num, "?");
        break;
    }
    put_key(l, json, kv->key, false);
    line_puts(l, num);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

void mp_log_emit(enum mp_log_level level, const char *component, const char *file, int line_no,
                 const char *msg, const struct mp_kv *kv, size_t nkv)
{
    struct line l;
    l.p = l.stack;
    l.len = 0;
    l.cap = sizeof l.stack - 4; /* room for "...\n" after truncation */
    l.heap = l.truncated = false;

    bool json = atomic_load_explicit(&out_format, memory_order_relaxed) == MP_LOG_FORMAT_JSON;
    char ts[MP_TIME_FMT_MAX];
    mp_time_format_rfc3339_ms(clock_fn(), ts, sizeof ts);
    const char *base = file ? strrchr(file, '/') : NULL;
    base = base ? base + 1 : (file ? file : "?");
    char caller[256];
    snprintf(caller, sizeof caller, "%s:%d", base, line_no);

    if (json)
        line_putc(&l, '{');
    put_str_field(&l, json, "ts", ts, true);
    put_str_field(&l, json, "caller", caller, false);
    put_str_field(&l, json, "level", mp_log_level_name(level), false);
    if (component && *component)
        put_str_field(&l, json, "component", component, false);
    put_str_field(&l, json, "msg", msg, false);
    for (size_t i = 0; i < nkv; i++)
        put_kv(&l, json, &kv[i]);
    if (json)
        line_putc(&l, '}');
    if (!l.truncated)
        line_putc(&l, '\n');
    if (l.truncated) {
        memcpy(l.p + l.len, "...\n", 4); /* fits in the spare bytes past cap */
        l.len += 4;
    }

    if ((unsigned)level < 4)
        atomic_fetch_add_explicit(&lines_total[level], 1, memory_order_relaxed);
    if (sink_fn)
        sink_fn(sink_ctx, l.p, l.len);
    else
        write_all(atomic_load_explicit(&out_fd, memory_order_relaxed), l.p, l.len);
    if (l.heap)
        mp_free(l.p);
}

/* ---- flood limits ------------------------------------------------------------------- */

void mp_log_limit_init(struct mp_log_limit *l, uint32_t per_interval, int64_t interval_ms)
{
    atomic_init(&l->window_start_ns, 0);
    atomic_init(&l->count, 0);
    atomic_init(&l->suppressed, 0);
    l->per_interval = per_interval;
    l->interval_ms = interval_ms;
}

bool mp_log_limit_allow(struct mp_log_limit *l, uint64_t *suppressed)
{
    int64_t now = mp_mono_ns();
    if (now == 0)
        now = 1; /* 0 means "no window yet" */
    int64_t start = atomic_load_explicit(&l->window_start_ns, memory_order_relaxed);
    if (start == 0 || now - start >= l->interval_ms * INT64_C(1000000)) {
        /* one thread opens the new window; relaxed is enough because the limiter only
         * decides whether to print, it guards no other data */
        if (atomic_compare_exchange_strong_explicit(&l->window_start_ns, &start, now,
                                                    memory_order_relaxed,
                                                    memory_order_relaxed))
            atomic_store_explicit(&l->count, 0, memory_order_relaxed);
    }
    uint32_t c = atomic_fetch_add_explicit(&l->count, 1, memory_order_relaxed);
    if (c < l->per_interval) {
        uint64_t s = atomic_exchange_explicit(&l->suppressed, 0, memory_order_relaxed);
        if (suppressed)
            *suppressed = s;
        return true;
    }
    /* keep count from wrapping around during a long flood */
    atomic_store_explicit(&l->count, l->per_interval, memory_order_relaxed);
    atomic_fetch_add_explicit(&l->suppressed, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&suppressed_total, 1, memory_order_relaxed);
    return false;
}
