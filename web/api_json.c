/* SPDX-License-Identifier: Apache-2.0 */
/* web/api_json.c: the JSON writer of the HTTP API and Prometheus's number layouts
 * (protocols.md 4.4, promql.md 6.3).
 *
 * Numbers. Go's strconv.FormatFloat(v, fmt, -1, 64) prints the shortest digit string that
 * parses back to v. Any double whose shortest form has at most 15 significant digits is
 * printed exactly by printf's correctly rounded "%.14e" (DBL_DIG is 15: 15-digit decimals
 * survive the round trip through a double), so we try 15, then 16, then 17 digits and keep
 * the first that strtod maps back to v, trailing zeros removed (subnormals, with fewer
 * significant bits, search from 1 digit up). The digits are then laid out
 * as Go does:
 *   'f': 1.5, 1000000000000000000000, 0.0000001
 *   'e': 1e-07, 1.5e+21 (sign and at least two exponent digits)
 *   encoding/json: 'f', but 'e' for |v| < 1e-6 or >= 1e21 with "e-07" shortened to "e-7"
 * Sample values ("value":[t,"v"]) use 'e' in the same ranges; scalar results always 'f'. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/labels.h"
#include "common/str.h"
#include "web/api_internal.h"

/* ---- numbers ---- */

static int special(double v, char *buf, size_t cap)
{
    if (isnan(v))
        return snprintf(buf, cap, "NaN");
    return snprintf(buf, cap, v > 0 ? "+Inf" : "-Inf");
}

/* Lays out the digits: exp_digits 0 = plain decimal, else d.ddde±XX with at least exp_digits
 * exponent digits. */
static int layout(char *buf, size_t cap, bool neg, const char *d, int nd, int e, int exp_digits)
{
    char out[WEB_NUM_MAX];
    size_t n = 0;
    if (neg)
        out[n++] = '-';
    if (exp_digits) {
        out[n++] = d[0];
        if (nd > 1) {
            out[n++] = '.';
            memcpy(out + n, d + 1, (size_t)nd - 1);
            n += (size_t)nd - 1;
        }
        n += (size_t)snprintf(out + n, sizeof out - n, "e%c%0*d", e < 0 ? '-' : '+', exp_digits,
                              e < 0 ? -e : e);
    } else if (e < 0) {
        out[n++] = '0';
        out[n++] = '.';
        for (int i = 0; i < -e - 1; i++)
            out[n++] = '0';
        memcpy(out + n, d, (size_t)nd);
        n += (size_t)nd;
    } else {
        for (int i = 0; i <= e; i++)
            out[n++] = i < nd ? d[i] : '0';
        if (nd > e + 1) {
            out[n++] = '.';
            memcpy(out + n, d + e + 1, (size_t)(nd - e - 1));
            n += (size_t)(nd - e - 1);
        }
    }
    out[n] = '\0';
    if ((size_t)n < cap) {
        memcpy(buf, out, (size_t)n + 1);
        return n;
    }
    return snprintf(buf, cap, "%s", out);
}

static bool exp_range(double a)
{
    return a != 0 && (a < 1e-6 || a >= 1e21);
}

/* Shortest digits of v laid out with exp_digits-wide exponents in the 'e' range, plain
 * decimal elsewhere (exp_digits 0: always plain). */
static int format(double v, int exp_digits, char *buf, size_t cap)
{
    if (!isfinite(v))
        return special(v, buf, cap);
    if (v == 0)
        return snprintf(buf, cap, signbit(v) ? "-0" : "0");
    /* fast path: integers below 1e15 print all their digits, never an exponent */
    if (fabs(v) < 1e15 && v == (double)(int64_t)v && cap >= 24) {
        int64_t i = (int64_t)v;
        if (i < 0) {
            buf[0] = '-';
            return 1 + mp_fmt_uint((uint64_t)-i, buf + 1);
        }
        return mp_fmt_uint((uint64_t)i, buf);
    }
    char d[24];
    int e;
    int nd = mp_fmt_shortest_digits(v, d, &e);
    return layout(buf, cap, signbit(v), d, nd, e, exp_range(fabs(v)) ? exp_digits : 0);
}

int web_float_format(double v, bool use_exp, char *buf, size_t cap)
{
    return format(v, use_exp ? 2 : 0, buf, cap);
}

int web_float_format_json(double v, char *buf, size_t cap)
{
    return format(v, 1, buf, cap);
}

int web_ts_format(int64_t t_ms, char *buf, size_t cap)
{
    /* |INT64_MIN| does not fit: split on the unsigned magnitude */
    uint64_t a = t_ms < 0 ? (uint64_t)0 - (uint64_t)t_ms : (uint64_t)t_ms;
    char out[32];
    int n = 0;
    if (t_ms < 0)
        out[n++] = '-';
    n += mp_fmt_uint(a / 1000, out + n);
    unsigned ms = (unsigned)(a % 1000);
    if (ms) {
        out[n++] = '.';
        out[n++] = (char)('0' + ms / 100);
        out[n++] = (char)('0' + ms / 10 % 10);
        out[n++] = (char)('0' + ms % 10);
    }
    out[n] = '\0';
    if ((size_t)n < cap) {
        memcpy(buf, out, (size_t)n + 1);
        return n;
    }
    return snprintf(buf, cap, "%s", out);
}

/* ---- writer ---- */

void web_json_init(struct web_json *w, struct mp_buf *b)
{
    memset(w, 0, sizeof *w);
    w->b = b;
    w->first[0] = true;
}

static void put(struct web_json *w, const char *p, size_t n)
{
    if (w->status == 0)
        w->status = mp_buf_append(w->b, p, n);
}

/* Before a value or a key: the comma, unless this is the first element or a key's value. */
static void sep(struct web_json *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (!w->first[w->depth])
        put(w, ",", 1);
    w->first[w->depth] = false;
}

static void open_level(struct web_json *w, char c)
{
    sep(w);
    put(w, &c, 1);
    if (w->depth + 1 >= WEB_JSON_MAX_DEPTH) {
        if (w->status == 0)
            w->status = MP_EINVAL;
        return;
    }
    w->first[++w->depth] = true;
}

static void close_level(struct web_json *w, char c)
{
    if (w->depth > 0)
        w->depth--;
    put(w, &c, 1);
}

void web_json_obj_begin(struct web_json *w)
{
    open_level(w, '{');
}

void web_json_obj_end(struct web_json *w)
{
    close_level(w, '}');
}

void web_json_arr_begin(struct web_json *w)
{
    open_level(w, '[');
}

void web_json_arr_end(struct web_json *w)
{
    close_level(w, ']');
}

void web_json_key(struct web_json *w, const char *key)
{
    sep(w);
    put(w, "\"", 1);
    put(w, key, strlen(key));
    put(w, "\":", 2);
    w->after_key = true;
}

void web_json_raw(struct web_json *w, const char *text, size_t len)
{
    sep(w);
    put(w, text, len);
}

/* Length of the valid UTF-8 sequence at s[0..n) (Go's utf8.DecodeRune rules), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, min = 0x10000;
    else
        return 0;
    if (n < len)
        return 0;
    unsigned cp = c & (0x3f >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Bytes that leave the fast path: controls, '"', '\\', '<', '>', '&', and non-ASCII. */
static const unsigned char needs_escape[256] = {
    [0 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1, ['<'] = 1, ['>'] = 1, ['&'] = 1, [0x80 ... 0xff] = 1,
};

static void escape(struct web_json *w, const unsigned char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0; /* start of the pending run of plain bytes */
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (!needs_escape[c]) {
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t l = utf8_len(s + i, n - i);
            /* U+2028 and U+2029 (e2 80 a8/a9) are escaped for JavaScript */
            bool ls = l == 3 && c == 0xe2 && s[i + 1] == 0x80 && (s[i + 2] & 0xfe) == 0xa8;
            if (l && !ls) {
                i += l;
                continue;
            }
            put(w, (const char *)s + run, i - run);
            if (ls) {
                put(w, s[i + 2] == 0xa8 ? "\\u2028" : "\\u2029", 6);
                i += 3;
            } else {
                put(w, "\\ufffd", 6);
                i++;
            }
            run = i;
            continue;
        }
        put(w, (const char *)s + run, i - run);
        char e[6];
        switch (c) {
        case '"':
            put(w, "\\\"", 2);
            break;
        case '\\':
            put(w, "\\\\", 2);
            break;
        case '\n':
            put(w, "\\n", 2);
            break;
        case '\r':
            put(w, "\\r", 2);
            break;
        case '\t':
            put(w, "\\t", 2);
            break;
        default:
            memcpy(e, "\\u00", 4);
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15];
            put(w, e, 6);
        }
        i++;
        run = i;
    }
    put(w, (const char *)s + run, n - run);
}

void web_json_str(struct web_json *w, struct mp_str s)
{
    sep(w);
    put(w, "\"", 1);
    escape(w, (const unsigned char *)s.ptr, s.len);
    put(w, "\"", 1);
}

void web_json_cstr(struct web_json *w, const char *s)
{
    web_json_str(w, mp_str_c(s ? s : ""));
}

void web_json_bool(struct web_json *w, bool v)
{
    if (v)
        web_json_raw(w, "true", 4);
    else
        web_json_raw(w, "false", 5);
}

void web_json_i64(struct web_json *w, int64_t v)
{
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%lld", (long long)v);
    web_json_raw(w, buf, (size_t)n);
}

void web_json_u64(struct web_json *w, uint64_t v)
{
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    web_json_raw(w, buf, (size_t)n);
}

void web_json_f64(struct web_json *w, double v)
{
    char buf[WEB_NUM_MAX];
    if (!isfinite(v)) { /* not JSON numbers; jsoniter would fail, we write null */
        web_json_raw(w, "null", 4);
        return;
    }
    int n = web_float_format_json(v, buf, sizeof buf);
    web_json_raw(w, buf, (size_t)n);
}

static void quoted_number(struct web_json *w, double v, bool use_exp)
{
    char buf[WEB_NUM_MAX + 2];
    buf[0] = '"';
    int n = web_float_format(v, use_exp, buf + 1, sizeof buf - 2);
    buf[n + 1] = '"';
    web_json_raw(w, buf, (size_t)n + 2);
}

void web_json_value(struct web_json *w, double v)
{
    quoted_number(w, v, true);
}

void web_json_value_f(struct web_json *w, double v)
{
    quoted_number(w, v, false);
}

void web_json_ts(struct web_json *w, int64_t t_ms)
{
    char buf[32];
    int n = web_ts_format(t_ms, buf, sizeof buf);
    web_json_raw(w, buf, (size_t)n);
}

void web_json_key_str(struct web_json *w, struct mp_str key)
{
    web_json_str(w, key);
    put(w, ":", 1);
    w->after_key = true;
}

void web_json_labels(struct web_json *w, const struct mp_labels *ls)
{
    web_json_obj_begin(w);
    size_t n = ls ? mp_labels_count(ls) : 0;
    for (size_t i = 0; i < n; i++) {
        struct mp_label l = mp_labels_at(ls, i);
        web_json_key_str(w, l.name); /* UTF-8 names from remote write may need escaping */
        web_json_str(w, l.value);
    }
    web_json_obj_end(w);
}
