/* SPDX-License-Identifier: Apache-2.0 */
/* common/time.c: clocks, Prometheus durations, HTTP API time parameters, RFC 3339.
 *
 * Behaviour follows upstream:
 *   prometheus/common model/time.go   ParseDuration (loop version, 0.47+), Duration.String
 *   prometheus web/api/v1/api.go      parseTime, parseDuration, minTime/maxTime
 *   Go time                           parseRFC3339 fast path, RFC3339Nano formatting
 *
 * Worked example for the float time parameter (parseTime): "-1.5"
 *   modf -> int -1, frac -0.5; frac = round(-0.5 * 1000) / 1000 = -0.5
 *   time.Unix(-1, -500000000) normalises to (-2 s, 500000000 ns)
 *   timestamp.FromTime = -2 * 1000 + 500000000 / 1e6 = -1500 ms.
 * The same double operations are done here so the rounding is bit-identical. */
#include "common/time.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"

#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S INT64_C(1000000000)
#define MS_PER_DAY INT64_C(86400000)
#define QUOTE_MAX 200 /* input bytes shown in an error message */

int64_t mp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / NS_PER_MS;
}

int64_t mp_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* Go's %q for the error messages: printable ASCII verbatim, escapes for the rest. Bytes
 * >= 0x80 are passed through (assumed UTF-8). Output is truncated with "..." past
 * QUOTE_MAX input bytes; out must hold 4 * QUOTE_MAX + 8 bytes. */
static const char *go_quote(struct mp_str s, char *out)
{
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    *o++ = '"';
    size_t n = s.len < QUOTE_MAX ? s.len : QUOTE_MAX;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        const char *esc = NULL;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\a': esc = "\\a"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\v': esc = "\\v"; break;
        default: break;
        }
        if (esc) {
            *o++ = esc[0];
            *o++ = esc[1];
        } else if (c < 0x20 || c == 0x7f) {
            *o++ = '\\';
            *o++ = 'x';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        } else {
            *o++ = (char)c;
        }
    }
    if (n < s.len) {
        memcpy(o, "...", 3);
        o += 3;
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

#define QUOTE_BUF (4 * QUOTE_MAX + 8)

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* ---- Prometheus durations ---------------------------------------------------------- */

struct dur_unit {
    const char *name;
    int pos;       /* units must appear with strictly increasing pos */
    uint64_t mult; /* ns, as upstream counts in time.Duration */
};

static const struct dur_unit dur_units[] = {
    {"y", 1, UINT64_C(365) * 24 * 3600 * 1000000000},
    {"w", 2, UINT64_C(7) * 24 * 3600 * 1000000000},
    {"d", 3, UINT64_C(24) * 3600 * 1000000000},
    {"h", 4, UINT64_C(3600) * 1000000000},
    {"m", 5, UINT64_C(60) * 1000000000},
    {"s", 6, UINT64_C(1000000000)},
    {"ms", 7, UINT64_C(1000000)},
};

static const struct dur_unit *dur_unit_find(const char *p, size_t n)
{
    for (size_t i = 0; i < sizeof dur_units / sizeof dur_units[0]; i++)
        if (strlen(dur_units[i].name) == n && memcmp(dur_units[i].name, p, n) == 0)
            return &dur_units[i];
    return NULL;
}

int mp_duration_parse(struct mp_str s, int64_t *out_ms, struct mp_err *err)
{
    char q[QUOTE_BUF], qu[QUOTE_BUF];
    if (s.len == 1 && s.ptr[0] == '0') {
        *out_ms = 0;
        return 0;
    }
    if (s.len == 0)
        return mp_err_set(err, MP_EPARSE, "empty duration string");

    /* Invariant: i indexes [0, s.len]; every step consumes at least one byte. */
    size_t i = 0;
    uint64_t dur_ns = 0;
    int last_pos = 0;
    while (i < s.len) {
        if (!is_digit(s.ptr[i]))
            goto invalid;
        uint64_t v = 0;
        bool too_big = false;
        for (; i < s.len && is_digit(s.ptr[i]); i++) {
            unsigned d = (unsigned)(s.ptr[i] - '0');
            if (v > (UINT64_MAX - d) / 10)
                too_big = true; /* strconv.ParseUint fails: syntax error upstream */
            else
                v = v * 10 + d;
        }
        if (too_big)
            goto invalid;
        size_t u0 = i;
        while (i < s.len && !is_digit(s.ptr[i]))
            i++;
        if (i == u0)
            goto invalid;
        const struct dur_unit *u = dur_unit_find(s.ptr + u0, i - u0);
        if (!u)
            return mp_err_set(err, MP_EPARSE, "unknown unit %s in duration %s",
                              go_quote((struct mp_str){s.ptr + u0, i - u0}, qu),
                              go_quote(s, q));
        if (u->pos <= last_pos)
            goto invalid;
        last_pos = u->pos;
        if (v > (UINT64_C(1) << 63) / u->mult)
            return mp_err_set(err, MP_EPARSE, "duration out of range");
        dur_ns += v * u->mult;
        if (dur_ns > (uint64_t)INT64_MAX)
            return mp_err_set(err, MP_EPARSE, "duration out of range");
    }
    *out_ms = (int64_t)(dur_ns / (uint64_t)NS_PER_MS);
    return 0;

invalid:
    return mp_err_set(err, MP_EPARSE, "not a valid duration string: %s", go_quote(s, q));
}

/* snprintf-like append: always counts, writes while room remains. */
struct fmt_out {
    char *buf;
    size_t cap, len;
};

static void out_printf(struct fmt_out *o, const char *fmt, ...) MP_PRINTF(2, 3);
static void out_printf(struct fmt_out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = o->len < o->cap ? o->cap - o->len : 0;
    int n = vsnprintf(room ? o->buf + o->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n;
}

static int out_finish(struct fmt_out *o)
{
    if (o->cap)
        o->buf[o->len < o->cap ? o->len : o->cap - 1] = '\0';
    return (int)o->len;
}

int mp_duration_format(int64_t ms, char *buf, size_t cap)
{
    static const struct {
        const char *unit;
        int64_t mult;
        bool exact; /* years and weeks only when they divide evenly ("90d", not "12w6d") */
    } parts[] = {
        {"y", INT64_C(365) * MS_PER_DAY, true}, {"w", INT64_C(7) * MS_PER_DAY, true},
        {"d", MS_PER_DAY, false},                {"h", INT64_C(3600000), false},
        {"m", INT64_C(60000), false},            {"s", INT64_C(1000), false},
        {"ms", INT64_C(1), false},
    };
    struct fmt_out o = {buf, cap, 0};
    if (cap)
        buf[0] = '\0';
    if (ms == 0) {
        out_printf(&o, "0s");
        return out_finish(&o);
    }
    /* Upstream only emits positive parts, so a negative duration prints as "". */
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        if (parts[i].exact && ms % parts[i].mult != 0)
            continue;
        int64_t v = ms / parts[i].mult;
        if (v > 0) {
            out_printf(&o, "%lld%s", (long long)v, parts[i].unit);
            ms -= v * parts[i].mult;
        }
    }
    return out_finish(&o);
}

/* ---- Go strconv.ParseFloat syntax --------------------------------------------------- */

static bool ieq(const char *p, size_t n, const char *lit)
{
    if (strlen(lit) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != lit[i])
            return false;
    }
    return true;
}

static bool is_xdigit(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* True if s is accepted by Go's strconv.ParseFloat(s, 64) (syntax only; no underscores,
 * which Go allows only after a base prefix and which nobody sends). Sets *special for
 * inf/nan spellings. */
static bool go_float_syntax(struct mp_str s, bool *special)
{
    const char *p = s.ptr, *end = s.ptr + s.len;
    *special = false;
    if (p == end)
        return false;
    bool sign = false;
    if (*p == '+' || *p == '-') {
        p++;
        sign = true;
    }
    size_t rest = (size_t)(end - p);
    if (ieq(p, rest, "inf") || ieq(p, rest, "infinity") || (!sign && ieq(p, rest, "nan"))) {
        *special = true;
        return true;
    }
    bool hex = rest >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
    if (hex)
        p += 2;
    size_t digits = 0;
    bool dot = false;
    for (; p < end; p++) {
        if (*p == '.' && !dot)
            dot = true;
        else if (hex ? is_xdigit(*p) : is_digit(*p))
            digits++;
        else
            break;
    }
    if (!digits)
        return false;
    if (p < end && (hex ? (*p == 'p' || *p == 'P') : (*p == 'e' || *p == 'E'))) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p == end || !is_digit(*p))
            return false;
        while (p < end && is_digit(*p))
            p++;
    } else if (hex) {
        return false; /* Go: hexadecimal mantissa requires a 'p' exponent */
    }
    return p == end;
}

/* Parses s as Go's ParseFloat would. 1: *out set; 0: not a float (or out of range, which
 * Go reports as an error); MP_ENOMEM. */
static int parse_go_float(struct mp_str s, double *out)
{
    bool special;
    if (!go_float_syntax(s, &special))
        return 0;
    char small[128], *tmp = small;
    if (s.len >= sizeof small) {
        tmp = mp_malloc(s.len + 1);
        if (!tmp)
            return MP_ENOMEM;
    }
    memcpy(tmp, s.ptr, s.len);
    tmp[s.len] = '\0';
    errno = 0;
    char *endp;
    double v = strtod(tmp, &endp);
    bool ok = *endp == '\0' && !(errno == ERANGE && isinf(v) && !special);
    if (tmp != small)
        mp_free(tmp);
    if (!ok)
        return 0;
    *out = v;
    return 1;
}

int mp_api_duration_parse(struct mp_str s, int64_t *out_ms, struct mp_err *err)
{
    char q[QUOTE_BUF];
    double d;
    int rc = parse_go_float(s, &d);
    if (rc < 0)
        return mp_err_set(err, rc, "out of memory");
    if (rc == 1) {
        double ts = d * 1e9;
        if (isnan(ts))
            return mp_err_set(err, MP_EPARSE, "cannot parse %s to a valid duration",
                              go_quote(s, q));
        /* 2^63 itself does not fit either. */
        if (ts >= 9223372036854775808.0 || ts < -9223372036854775808.0)
            return mp_err_set(err, MP_EPARSE,
                              "cannot parse %s to a valid duration. It overflows int64",
                              go_quote(s, q));
        *out_ms = (int64_t)ts / NS_PER_MS; /* time.Duration truncated to ms */
        return 0;
    }
    int64_t ms;
    if (mp_duration_parse(s, &ms, NULL) == 0) {
        *out_ms = ms;
        return 0;
    }
    return mp_err_set(err, MP_EPARSE, "cannot parse %s to a valid duration", go_quote(s, q));
}

/* ---- civil calendar (proleptic Gregorian, days since 1970-01-01) -------------------- */

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* Days from 1970-01-01 to y-m-d; eras of 400 years (146097 days) keep it exact. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;                                   /* [0, 399] */
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1; /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* Writes "YYYY-MM-DDThh:mm:ss" for whole seconds since the epoch; Go prints years outside
 * [0, 9999] unpadded beyond four digits and negative years with a leading '-'. */
static void out_civil(struct fmt_out *o, int64_t sec)
{
    int64_t days = floor_div(sec, 86400);
    int64_t sod = sec - days * 86400;
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 0)
        out_printf(o, "-%04lld", (long long)-y);
    else
        out_printf(o, "%04lld", (long long)y);
    out_printf(o, "-%02d-%02dT%02d:%02d:%02d", m, d, (int)(sod / 3600), (int)(sod / 60 % 60),
               (int)(sod % 60));
}

int mp_time_format_rfc3339_ms(int64_t ms, char *buf, size_t cap)
{
    struct fmt_out o = {buf, cap, 0};
    int64_t sec = ms / 1000, frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        sec--;
    }
    out_civil(&o, sec);
    out_printf(&o, ".%03dZ", (int)frac);
    return out_finish(&o);
}

int mp_time_format_rfc3339_nano(int64_t ns, char *buf, size_t cap)
{
    struct fmt_out o = {buf, cap, 0};
    int64_t sec = ns / NS_PER_S, frac = ns % NS_PER_S; /* no overflow at INT64_MIN */
    if (frac < 0) {
        frac += NS_PER_S;
        sec--;
    }
    out_civil(&o, sec);
    if (frac) {
        char f[16];
        snprintf(f, sizeof f, "%09lld", (long long)frac);
        size_t n = 9;
        while (f[n - 1] == '0')
            n--;
        f[n] = '\0';
        out_printf(&o, ".%s", f);
    }
    out_printf(&o, "Z");
    return out_finish(&o);
}

/* ---- RFC 3339 parsing (Go time.Parse(time.RFC3339Nano, s)) --------------------------- */

/* Two or four ASCII digits at p within [lo, hi]; -1 otherwise. */
static int num_at(const char *p, int n, int lo, int hi)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit(p[i]))
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v >= lo && v <= hi ? v : -1;
}

/* 0 and *out_ms on success, -1 if s is not RFC 3339 as Go parses it. */
static int parse_rfc3339(struct mp_str s, int64_t *out_ms)
{
    const char *p = s.ptr;
    size_t n = s.len;
    if (n < 20) /* "2006-01-02T15:04:05" plus at least "Z" */
        return -1;
    if (p[4] != '-' || p[7] != '-' || p[10] != 'T' || p[13] != ':' || p[16] != ':')
        return -1;
    int year = num_at(p, 4, 0, 9999);
    int mon = num_at(p + 5, 2, 1, 12);
    int hour = num_at(p + 11, 2, 0, 23);
    int min = num_at(p + 14, 2, 0, 59);
    int sec = num_at(p + 17, 2, 0, 59);
    if (year < 0 || mon < 0 || hour < 0 || min < 0 || sec < 0)
        return -1;
    int day = num_at(p + 8, 2, 1, days_in_month(year, mon));
    if (day < 0)
        return -1;
    /* Invariant: i indexes [19, n]. */
    size_t i = 19;
    int64_t nsec = 0;
    if (i + 1 < n && (p[i] == '.' || p[i] == ',') && is_digit(p[i + 1])) {
        i++;
        int nd = 0;
        for (; i < n && is_digit(p[i]); i++) {
            if (nd < 9) {
                nsec = nsec * 10 + (p[i] - '0');
                nd++;
            }
        }
        for (; nd < 9; nd++)
            nsec *= 10;
    }
    int64_t offset_s = 0;
    if (n - i == 1 && p[i] == 'Z') {
        /* UTC */
    } else if (n - i == 6 && (p[i] == '+' || p[i] == '-') && p[i + 3] == ':') {
        int oh = num_at(p + i + 1, 2, 0, 23);
        int om = num_at(p + i + 4, 2, 0, 59);
        if (oh < 0 || om < 0)
            return -1;
        offset_s = (int64_t)(oh * 60 + om) * 60;
        if (p[i] == '-')
            offset_s = -offset_s;
    } else {
        return -1;
    }
    int64_t days = days_from_civil(year, mon, day);
    int64_t unix_s = days * 86400 + hour * 3600 + min * 60 + sec - offset_s;
    *out_ms = unix_s * 1000 + nsec / NS_PER_MS;
    return 0;
}

int mp_time_parse(struct mp_str s, int64_t *out_ms, struct mp_err *err)
{
    char q[QUOTE_BUF];
    double t;
    int rc = parse_go_float(s, &t);
    if (rc < 0)
        return mp_err_set(err, rc, "out of memory");
    if (rc == 1) {
        /* Beyond minTime/maxTime Go's int64 conversions overflow; reject instead. */
        if (!(t >= -9223309901257974.0 && t <= 9223309901257975.0))
            goto bad;
        double ip;
        double frac = modf(t, &ip);
        frac = round(frac * 1000) / 1000;
        int64_t sec = (int64_t)ip;
        int64_t nsec = (int64_t)(frac * 1e9);
        /* time.Unix normalisation */
        if (nsec < 0 || nsec >= NS_PER_S) {
            int64_t k = nsec / NS_PER_S;
            sec += k;
            nsec -= k * NS_PER_S;
            if (nsec < 0) {
                nsec += NS_PER_S;
                sec--;
            }
        }
        *out_ms = sec * 1000 + nsec / NS_PER_MS;
        return 0;
    }
    if (parse_rfc3339(s, out_ms) == 0)
        return 0;
    /* Go's parser only handles four-digit years; Prometheus special-cases its bounds. */
    if (mp_str_eq(s, MP_STR_LIT(MP_TIME_MIN_STR))) {
        *out_ms = MP_TIME_MIN_MS;
        return 0;
    }
    if (mp_str_eq(s, MP_STR_LIT(MP_TIME_MAX_STR))) {
        *out_ms = MP_TIME_MAX_MS;
        return 0;
    }
bad:
    return mp_err_set(err, MP_EPARSE, "cannot parse %s to a valid timestamp", go_quote(s, q));
}
