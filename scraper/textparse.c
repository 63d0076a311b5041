/* SPDX-License-Identifier: Apache-2.0 */
/* scraper/textparse.c: one pull parser for both scrape-body formats, Prometheus text 0.0.4
 * and OpenMetrics 1.0 (spec protocols.md 1.3, 1.4), behaving as Prometheus 2.55's lexers
 * (model/textparse/promlex.l, openmetricslex.l) and parsers. A mode flag selects the
 * differences: text skips blanks and tabs between tokens, has comments and blank lines and
 * ends anywhere; OpenMetrics wants exactly one space, UNIT lines, exemplars and "# EOF".
 *
 *   text line  = [WS] ( sample | "#" WS ("HELP"|"TYPE") WS name rest | "#" comment | "" ) LF
 *   om line    = sample | "# HELP " name " " text | "# TYPE " ... | "# UNIT " ... ; "# EOF" [LF]
 *   sample     = name [labels] value [timestamp] [exemplar (om)]
 *   labels     = "{" [ lname "=" DQUOTE lvalue DQUOTE { "," ... } [","] ] "}"
 *
 * Worked example (text): `http_requests_total{method="post",code="200"} 1027 1395066363000`
 * gives SERIES name "http_requests_total", series slice up to and including '}', labels
 * (method, post) (code, 200), value 1027, ts_ms 1395066363000.
 *
 * Invariant: one cursor moves forward only and every helper keeps it inside [cur, end];
 * nothing is read at or beyond end (the text lexer's appended '\n' is virtual). The common
 * case (plain names, unescaped ASCII values) runs through the class table loops below; the
 * error messages, which must repeat Prometheus's wording, are produced by a separate small
 * re-lexer (lex_at) that only runs once a line is known to be bad. */
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/labels.h"
#include "scraper/scraper.h"

/* ---- character classes -------------------------------------------------------------------- */

enum {
    CL_M = 1 << 0,  /* metric name character [a-zA-Z0-9_:] */
    CL_MS = 1 << 1, /* metric name start [a-zA-Z_:] */
    CL_L = 1 << 2,  /* label name character [a-zA-Z0-9_] */
    CL_LS = 1 << 3, /* label name start [a-zA-Z_] */
    CL_V = 1 << 4,  /* label value byte needing no attention: not '"', '\\', LF, >= 0x80 */
    CL_TT = 1 << 5, /* ends a text value token: space, tab, LF, '{' */
    CL_OT = 1 << 6, /* ends an OpenMetrics token: space, LF */
    CL_WS = 1 << 7, /* text blank: space, tab */
};
#define CL_NAME (CL_M | CL_MS | CL_L | CL_LS | CL_V)

static const uint8_t cls[256] = {
    [0x00 ... 0x08] = CL_V,
    ['\t'] = CL_V | CL_TT | CL_WS,
    ['\n'] = CL_TT | CL_OT,
    [0x0b ... 0x1f] = CL_V,
    [' '] = CL_V | CL_TT | CL_OT | CL_WS,
    ['!'] = CL_V,
    [0x23 ... 0x2f] = CL_V,
    ['0' ... '9'] = CL_M | CL_L | CL_V,
    [':'] = CL_M | CL_MS | CL_V,
    [0x3b ... 0x40] = CL_V,
    ['A' ... 'Z'] = CL_NAME,
    ['['] = CL_V,
    [']' ... '^'] = CL_V,
    ['_'] = CL_NAME,
    ['`'] = CL_V,
    ['a' ... 'z'] = CL_NAME,
    ['{'] = CL_V | CL_TT,
    ['|' ... 0x7f] = CL_V,
};

#define IS(c, k) ((cls[(unsigned char)(c)] & (k)) != 0)

static bool is_om(const struct scrape_parser *p)
{
    return p->format == SCRAPE_FORMAT_OPENMETRICS;
}

/* ---- error messages ----------------------------------------------------------------------- */

/* Lexer states of promlex.l / openmetricslex.l, for re-lexing the offending token. */
enum lex_state { S_INIT, S_META1, S_VALUE, S_LABELS, S_LVALUE, S_TS, S_EVALUE, S_ETS };

/* Byte at s as the lexer sees it: the text format appends '\n' to the body; -1 past it. */
static int vbyte(const struct scrape_parser *p, const char *s)
{
    if (s < p->end)
        return (unsigned char)*s;
    if (s == p->end && !is_om(p))
        return '\n';
    return -1;
}

static const char *scan_quoted(const struct scrape_parser *p, const char *s)
{
    /* s at '"'; returns one past the closing quote, or NULL if the token does not lex */
    for (s++;; s++) {
        int c = vbyte(p, s);
        if (c < 0 || (c == '\n' && (is_om(p) || s == p->end)))
            return NULL;
        if (c == '"')
            return s + 1;
        if (c == '\\') {
            int d = vbyte(p, s + 1);
            if (d < 0 || d == '\n')
                return NULL;
            s++;
        }
    }
}

/* The token the upstream lexer would return at s in state st: its name and its end. An
 * invalid token does not advance (Prometheus then shows one byte). */
static const char *lex_at(const struct scrape_parser *p, enum lex_state st, const char *s,
                          const char **tend)
{
    int c = vbyte(p, s);
    const char *e = s;
    *tend = s;
    if (c < 0)
        return "EOF";
    if (!is_om(p) && st != S_LVALUE && c == '\n' && (st == S_INIT || st == S_TS)) {
        *tend = s + 1;
        return "LINEBREAK";
    }
    if (is_om(p) && c == '\n' && (st == S_TS || st == S_ETS)) {
        *tend = s + 1;
        return "LINEBREAK";
    }
    switch (st) {
    case S_INIT:
    case S_META1:
        if (c == 0 && st == S_INIT && !is_om(p))
            return "EOF";
        if (IS(c, CL_MS)) {
            while (e < p->end && IS(*e, CL_M))
                e++;
            *tend = e;
            return "MNAME";
        }
        if (c == '{' && st == S_INIT) {
            *tend = s + 1;
            return "BOPEN";
        }
        return "INVALID";
    case S_LABELS:
        if (IS(c, CL_LS)) {
            while (e < p->end && IS(*e, CL_L))
                e++;
            *tend = e;
            return "LNAME";
        }
        *tend = s + 1;
        if (c == '}')
            return "BCLOSE";
        if (c == '=')
            return "EQUAL";
        if (c == ',')
            return "COMMA";
        if (c == '"' && is_om(p) && (e = scan_quoted(p, s)) != NULL) {
            *tend = e;
            return "QSTRING";
        }
        *tend = s;
        return "INVALID";
    case S_LVALUE:
        if (c == '"' && (e = scan_quoted(p, s)) != NULL) {
            *tend = e;
            return "LVALUE";
        }
        return "INVALID";
    case S_VALUE:
    case S_EVALUE:
        if (c == '{' && st == S_VALUE) {
            *tend = s + 1;
            return "BOPEN";
        }
        if (!is_om(p)) {
            while (vbyte(p, e) >= 0 && !IS(vbyte(p, e), CL_TT))
                e++;
        } else if (c == ' ') {
            for (e = s + 1; e < p->end && !IS(*e, CL_OT);)
                e++;
            if (e == s + 1)
                e = s;
        }
        *tend = e;
        return e > s ? "VALUE" : "INVALID";
    case S_TS:
    case S_ETS:
        if (!is_om(p)) {
            while (e < p->end && *e >= '0' && *e <= '9')
                e++;
        } else if (c == ' ') {
            if (st == S_TS && p->end - s >= 4 && memcmp(s, " # {", 4) == 0) {
                *tend = s + 4;
                return "COMMENT";
            }
            for (e = s + 1; e < p->end && !IS(*e, CL_OT);)
                e++;
            if (e == s + 1)
                e = s;
        }
        *tend = e;
        return e > s ? "TIMESTAMP" : "INVALID";
    }
    return "INVALID";
}

/* Appends Go %q of the virtual bytes [a, b) to out (strconv.Quote: printable UTF-8 kept,
 * C escapes, \x for other bytes). */
static void quote_into(const struct scrape_parser *p, const char *a, const char *b, char *out,
                       size_t cap, size_t *len)
{
#define PUT(ch)                                                                                    \
    do {                                                                                           \
        if (*len + 1 < cap)                                                                        \
            out[(*len)++] = (ch);                                                                  \
    } while (0)
    PUT('"');
    for (const char *s = a; s < b; s++) {
        int c = vbyte(p, s);
        if (c < 0)
            break;
        /* Go's C-style escapes: the byte in `from` is written as '\\' + the one in `to` */
        static const char from[] = "\a\b\f\n\r\t\v\\\"", to[] = "abfnrtv\\\"";
        const char *hit = c > 0 && c < 0x80 ? strchr(from, c) : NULL;
        char two[3] = {'\\', hit ? to[hit - from] : 0, 0};
        const char *esc = hit ? two : NULL;
        char hex[8];
        if (!esc && (c < 0x20 || c == 0x7f)) {
            snprintf(hex, sizeof hex, "\\x%02x", (unsigned)c & 0xffu);
            esc = hex;
        } else if (!esc && c >= 0x80) {
            /* keep a valid multi-byte sequence whole, escape stray bytes */
            size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
            if (n > 1 && (size_t)(p->end - s) >= n && s + n <= b &&
                mp_label_value_is_valid((struct mp_str){s, n})) {
                for (size_t i = 0; i < n; i++)
                    PUT(s[i]);
                s += n - 1;
                continue;
            }
            snprintf(hex, sizeof hex, "\\x%02x", (unsigned)c & 0xffu);
            esc = hex;
        }
        if (esc) {
            for (; *esc; esc++)
                PUT(*esc);
        } else {
            PUT((char)c);
        }
    }
    PUT('"');
    out[*len] = 0;
#undef PUT
}

/* Prometheus parseError: "<exp>, got %q (%q) while parsing: %q", the token plus one byte. */
static int parse_error(struct scrape_parser *p, struct mp_err *err, const char *line_start,
                       enum lex_state st, const char *tok, const char *exp)
{
    const char *tend;
    const char *name = lex_at(p, st, tok, &tend);
    const char *vend = p->end + (is_om(p) ? 0 : 1);
    const char *e = tend + 1 < vend ? tend + 1 : vend;
    char got[128], ctx[320];
    size_t gl = 0, cl = 0;
    quote_into(p, tok, e, got, sizeof got, &gl);
    quote_into(p, line_start, e, ctx, sizeof ctx, &cl);
    p->status = MP_EPARSE;
    return mp_err_set(err, MP_EPARSE, "line %d: %s, got %s (\"%s\") while parsing: %s", p->line,
                      exp, got, name, ctx);
}

static int plain_error(struct scrape_parser *p, struct mp_err *err, int code, const char *fmt, ...)
    MP_PRINTF(4, 5);
static int plain_error(struct scrape_parser *p, struct mp_err *err, int code, const char *fmt, ...)
{
    char msg[MP_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    p->status = code;
    return mp_err_set(err, code, "line %d: %s", p->line, msg);
}

/* "<what> while parsing: %q" with the line so far, as Prometheus wraps float/int errors */
static int wrap_error(struct scrape_parser *p, struct mp_err *err, const char *what,
                      const char *line_start, const char *upto)
{
    char ctx[320];
    size_t cl = 0;
    quote_into(p, line_start, upto, ctx, sizeof ctx, &cl);
    p->status = MP_EPARSE;
    return mp_err_set(err, MP_EPARSE, "line %d: %s while parsing: %s", p->line, what, ctx);
}

/* ---- numbers ------------------------------------------------------------------------------ */

enum { NUM_OK = 0, NUM_SYNTAX, NUM_RANGE, NUM_UNSUPPORTED };

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static bool ieq(const char *s, size_t n, const char *word)
{
    size_t i = 0;
    for (; i < n && word[i]; i++)
        if ((s[i] | 0x20) != word[i])
            return false;
    return i == n && word[i] == 0;
}

/* Go strconv.ParseFloat(s, 64) after Prometheus's rejection of 'p', 'P' and '_'. Decimal
 * syntax is validated here; mantissas below 2^53 with |exp10| <= 22 are converted exactly
 * (Clinger's fast path: one correctly rounded IEEE multiply or divide), everything else by
 * glibc strtod (correctly rounded) on a bounded NUL-terminated copy, or, for a token too long
 * for the copy, in place when a terminator byte (blank, LF, '{') follows inside the body:
 * strtod stops there, as the syntax was validated up front. */
static int parse_float(const char *s, size_t n, const char *body_end, double *out)
{
    if (memchr(s, '_', n) || memchr(s, 'p', n) || memchr(s, 'P', n))
        return NUM_UNSUPPORTED;
    if (n == 0)
        return NUM_SYNTAX;
    size_t i = 0;
    bool neg = false;
    if (s[0] == '+' || s[0] == '-') {
        neg = s[0] == '-';
        i = 1;
    }
    if (i < n && (s[i] | 0x20) == 'i') {
        if (ieq(s + i, n - i, "inf") || ieq(s + i, n - i, "infinity")) {
            *out = neg ? -INFINITY : INFINITY;
            return NUM_OK;
        }
        return NUM_SYNTAX;
    }
    if (i == 0 && ieq(s, n, "nan")) {
        uint64_t bits = UINT64_C(0x7ff8000000000001); /* Go math.NaN() */
        memcpy(out, &bits, sizeof *out);
        return NUM_OK;
    }
    if (n - i >= 2 && s[i] == '0' && (s[i + 1] | 0x20) == 'x')
        return NUM_SYNTAX; /* Go: a hex mantissa needs a 'p' exponent, which is rejected */
    uint64_t m = 0;
    int ndig = 0, dexp = 0;
    bool digits = false, dot = false, exact = true;
    for (; i < n; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            digits = true;
            if (m == 0 && c == '0') {
                if (dot)
                    dexp--;
                continue;
            }
            if (ndig < 19) {
                m = m * 10 + (uint64_t)(c - '0');
                ndig++;
                if (dot)
                    dexp--;
            } else {
                exact = false;
            }
        } else if (c == '.' && !dot) {
            dot = true;
        } else {
            break;
        }
    }
    if (!digits)
        return NUM_SYNTAX;
    if (i < n) {
        if ((s[i] | 0x20) != 'e')
            return NUM_SYNTAX;
        i++;
        bool eneg = false;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        if (i == n)
            return NUM_SYNTAX;
        int e = 0;
        for (; i < n; i++) {
            if (s[i] < '0' || s[i] > '9')
                return NUM_SYNTAX;
            if (e < 100000)
                e = e * 10 + (s[i] - '0');
        }
        dexp += eneg ? -e : e;
    }
    if (exact && m < (UINT64_C(1) << 53) && dexp >= -22 && dexp <= 22) {
        double v = (double)m;
        v = dexp < 0 ? v / pow10_exact[-dexp] : v * pow10_exact[dexp];
        *out = neg ? -v : v;
        return NUM_OK;
    }
    char buf[512];
    const char *src = buf;
    if (n < sizeof buf) {
        memcpy(buf, s, n);
        buf[n] = 0;
    } else if (s + n < body_end) {
        src = s;
    } else {
        return NUM_RANGE; /* a >511-byte number ending the body unterminated; see README */
    }
    errno = 0;
    char *endp;
    double v = strtod(src, &endp);
    if (endp != src + n)
        return NUM_SYNTAX;
    if (errno == ERANGE && isinf(v))
        return NUM_RANGE; /* Go: ErrRange for overflow only; underflow gives 0 silently */
    *out = v;
    return NUM_OK;
}

static int float_error(struct scrape_parser *p, struct mp_err *err, int rc, const char *tok,
                       size_t n, const char *line_start, const char *upto)
{
    if (rc == NUM_UNSUPPORTED)
        return wrap_error(p, err, "unsupported character in float", line_start, upto);
    char q[160], what[224];
    size_t ql = 0;
    quote_into(p, tok, tok + n, q, sizeof q, &ql);
    snprintf(what, sizeof what, "strconv.ParseFloat: parsing %s: %s", q,
             rc == NUM_RANGE ? "value out of range" : "invalid syntax");
    return wrap_error(p, err, what, line_start, upto);
}

/* Go int64(f) on amd64 (CVTTSD2SQ): out-of-range and NaN give INT64_MIN. */
static int64_t go_int64(double f)
{
    if (!(f >= -9223372036854775808.0 && f < 9223372036854775808.0))
        return INT64_MIN;
    return (int64_t)f;
}

/* OpenMetrics timestamp (seconds, float) to ms as Prometheus: int64(ts * 1000). */
static int om_timestamp(struct scrape_parser *p, struct mp_err *err, const char *tok, size_t n,
                        const char *line_start, bool exemplar, int64_t *ms)
{
    double ts;
    int rc = parse_float(tok, n, p->end, &ts);
    if (rc != NUM_OK)
        return float_error(p, err, rc, tok, n, line_start, tok + n);
    if (isnan(ts) || isinf(ts))
        return plain_error(p, err, MP_EPARSE, "invalid %stimestamp %s", exemplar ? "exemplar " : "",
                           isnan(ts) ? "NaN"
                           : ts > 0  ? "+Inf"
                                     : "-Inf");
    *ms = go_int64(ts * 1000.0);
    return 0;
}

/* ---- label sets --------------------------------------------------------------------------- */

static const char *skip_ws(const char *s, const char *end)
{
    while (s < end && IS(*s, CL_WS))
        s++;
    return s;
}

/* Scans a quoted label value starting at the opening quote *sp. On success *sp is one past
 * the closing quote and the value slice is stored. Raw LF is allowed in text (counted into
 * *lines), never in OpenMetrics; a backslash escapes any byte but LF. */
static int scan_value(struct scrape_parser *p, struct mp_err *err, const char *line_start,
                      const char **sp, struct scrape_label *l, int *lines)
{
    const char *s = *sp + 1, *end = p->end;
    bool esc = false, high = false;
    for (;;) {
        while (s < end && IS(*s, CL_V))
            s++;
        if (s >= end)
            return parse_error(p, err, line_start, S_LVALUE, *sp, "expected label value");
        unsigned char c = (unsigned char)*s;
        if (c == '"')
            break;
        if (c == '\\') {
            if (s + 1 >= end || s[1] == '\n')
                return parse_error(p, err, line_start, S_LVALUE, *sp, "expected label value");
            esc = true;
            s += 2;
        } else if (c == '\n') {
            if (is_om(p))
                return parse_error(p, err, line_start, S_LVALUE, *sp, "expected label value");
            (*lines)++;
            s++;
        } else {
            high = true;
            s++;
        }
    }
    l->value = (struct mp_str){*sp + 1, (size_t)(s - (*sp + 1))};
    l->escaped = esc;
    if (high && !mp_label_value_is_valid(l->value)) {
        char q[256];
        size_t ql = 0;
        quote_into(p, *sp, s + 1, q, sizeof q, &ql);
        return plain_error(p, err, MP_EPARSE, "invalid UTF-8 label value: %s", q);
    }
    *sp = s + 1;
    return 0;
}

/* Parses a label set; *sp is just past '{' and ends just past '}'. Text: blanks anywhere,
 * commas optional between pairs (as upstream), one trailing comma. OpenMetrics: no blanks,
 * "," between pairs, one trailing comma. Labels go to out[0..cap) when out is not NULL. */
static int parse_labels(struct scrape_parser *p, struct mp_err *err, const char *line_start,
                        const char **sp, struct scrape_label *out, size_t cap, size_t *nout,
                        int *lines)
{
    const char *s = *sp, *end = p->end;
    bool om = is_om(p);
    size_t n = 0;
    struct scrape_label scratch;
    for (;;) {
        if (!om)
            s = skip_ws(s, end);
        if (s < end && *s == '}')
            break;
        if (s >= end || !IS(*s, CL_LS))
            return parse_error(p, err, line_start, S_LABELS, s, "expected label name");
        struct scrape_label *l = out ? (n < cap ? &out[n] : NULL) : &scratch;
        if (!l)
            return plain_error(p, err, MP_ELIMIT, "too many labels for the caller's array");
        const char *ns = s;
        while (s < end && IS(*s, CL_L))
            s++;
        l->name = (struct mp_str){ns, (size_t)(s - ns)};
        if (!om)
            s = skip_ws(s, end);
        if (s >= end || *s != '=')
            return parse_error(p, err, line_start, S_LABELS, s, "expected equal");
        s++;
        if (!om)
            s = skip_ws(s, end);
        if (s >= end || *s != '"')
            return parse_error(p, err, line_start, S_LVALUE, s, "expected label value");
        int rc = scan_value(p, err, line_start, &s, l, lines);
        if (rc)
            return rc;
        n++;
        if (!om) {
            s = skip_ws(s, end);
            if (s < end && *s == ',')
                s++;
            continue;
        }
        if (s < end && *s == ',') {
            s++;
            if (s < end && *s == '}')
                break;
            continue;
        }
        if (s < end && *s == '}')
            break;
        return parse_error(p, err, line_start, S_LABELS, s, "expected comma or brace close");
    }
    *sp = s + 1;
    *nout = n;
    return 0;
}

/* ---- metadata lines ----------------------------------------------------------------------- */

static const struct {
    const char *word;
    enum scrape_metric_type type;
    bool om_only, text_only;
} type_words[] = {
    {"counter", SCRAPE_TYPE_COUNTER, false, false},
    {"gauge", SCRAPE_TYPE_GAUGE, false, false},
    {"histogram", SCRAPE_TYPE_HISTOGRAM, false, false},
    {"summary", SCRAPE_TYPE_SUMMARY, false, false},
    {"untyped", SCRAPE_TYPE_UNKNOWN, false, true},
    {"gaugehistogram", SCRAPE_TYPE_GAUGEHISTOGRAM, true, false},
    {"info", SCRAPE_TYPE_INFO, true, false},
    {"stateset", SCRAPE_TYPE_STATESET, true, false},
    {"unknown", SCRAPE_TYPE_UNKNOWN, true, false},
};

static void note_meta(struct scrape_parser *p, struct mp_str family)
{
    if (!mp_str_eq(family, p->meta_family))
        p->family_type = SCRAPE_TYPE_UNKNOWN;
    p->meta_family = family;
}

/* Checks the text of a HELP/TYPE/UNIT entry and records metadata. */
static int finish_meta(struct scrape_parser *p, struct scrape_entry *e, struct mp_err *err)
{
    char q[256];
    size_t ql = 0;
    note_meta(p, e->name);
    if (e->kind == SCRAPE_ENTRY_TYPE) {
        for (size_t i = 0; i < sizeof type_words / sizeof type_words[0]; i++) {
            if ((is_om(p) ? type_words[i].text_only : type_words[i].om_only) ||
                !mp_str_eq(e->text, mp_str_c(type_words[i].word)))
                continue;
            e->type = p->meta_type = p->family_type = type_words[i].type;
            return 0;
        }
        quote_into(p, e->text.ptr, e->text.ptr + e->text.len, q, sizeof q, &ql);
        return plain_error(p, err, MP_EPARSE, "invalid metric type %s", q);
    }
    e->type = p->family_type;
    if (e->kind == SCRAPE_ENTRY_HELP) {
        e->text_escaped = memchr(e->text.ptr, '\\', e->text.len) != NULL;
        if (!mp_label_value_is_valid(e->text)) {
            quote_into(p, e->text.ptr, e->text.ptr + e->text.len, q, sizeof q, &ql);
            return plain_error(p, err, MP_EPARSE, "help text %s is not a valid utf8 string", q);
        }
        return 0;
    }
    /* UNIT: a non-empty unit must be the "_<unit>" suffix of the family name */
    struct mp_str m = e->name, u = e->text;
    if (u.len > 0 && (m.len < u.len + 1 || memcmp(m.ptr + m.len - u.len, u.ptr, u.len) != 0 ||
                      m.ptr[m.len - u.len - 1] != '_')) {
        char qm[160];
        size_t ml = 0;
        quote_into(p, u.ptr, u.ptr + u.len, q, sizeof q, &ql);
        quote_into(p, m.ptr, m.ptr + m.len, qm, sizeof qm, &ml);
        return plain_error(p, err, MP_EPARSE, "unit %s not a suffix of metric %s", q, qm);
    }
    return 0;
}

static const char *find_eol(const char *s, const char *end)
{
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    return nl ? nl : end;
}

/* Text '#' line at s (after leading blanks). "# HELP name text" and "# TYPE name type" with
 * blanks or tabs; anything else is a comment. 1 = comment returned, 0 = meta returned. */
static int text_hash_line(struct scrape_parser *p, struct scrape_entry *e, const char *ls,
                          const char *s, struct mp_err *err)
{
    const char *end = p->end, *eol = find_eol(s, end);
    const char *t = s + 1;
    if (t < eol && IS(*t, CL_WS)) {
        t = skip_ws(t, eol);
        bool help = eol - t > 4 && memcmp(t, "HELP", 4) == 0 && IS(t[4], CL_WS);
        bool type = eol - t > 4 && memcmp(t, "TYPE", 4) == 0 && IS(t[4], CL_WS);
        if (help || type) {
            t = skip_ws(t + 4, eol);
            if (t >= end || !IS(*t, CL_MS))
                return parse_error(p, err, ls, S_META1, t,
                                   help ? "expected metric name after HELP"
                                        : "expected metric name after TYPE");
            const char *ns = t;
            while (t < eol && IS(*t, CL_M))
                t++;
            e->kind = help ? SCRAPE_ENTRY_HELP : SCRAPE_ENTRY_TYPE;
            e->name = (struct mp_str){ns, (size_t)(t - ns)};
            /* upstream: the rest of the line minus one separator; all-blank rest = empty */
            const char *r = skip_ws(t, eol);
            e->text =
                r == eol ? (struct mp_str){eol, 0} : (struct mp_str){t + 1, (size_t)(eol - t - 1)};
            p->cur = eol < end ? eol + 1 : end;
            int rc = finish_meta(p, e, err);
            p->line++;
            return rc;
        }
    }
    e->kind = SCRAPE_ENTRY_COMMENT;
    e->text = (struct mp_str){s, (size_t)(eol - s)};
    p->cur = eol < end ? eol + 1 : end;
    p->line++;
    return 0;
}

/* OpenMetrics '#' line: "# HELP|TYPE|UNIT name text\n" or "# EOF" [LF] at the very end. */
static int om_hash_line(struct scrape_parser *p, struct scrape_entry *e, const char *s,
                        struct mp_err *err)
{
    const char *end = p->end;
    size_t left = (size_t)(end - s);
    if (left >= 5 && memcmp(s, "# EOF", 5) == 0) {
        const char *t = s + 5;
        if (t < end && *t == '\n')
            t++;
        if (t != end)
            return plain_error(p, err, MP_EPARSE, "unexpected data after # EOF");
        p->cur = end;
        p->status = MP_EEOF;
        return MP_EEOF;
    }
    static const char *const words[] = {"HELP", "TYPE", "UNIT"};
    static const enum scrape_entry_kind kinds[] = {SCRAPE_ENTRY_HELP, SCRAPE_ENTRY_TYPE,
                                                   SCRAPE_ENTRY_UNIT};
    int w = -1;
    for (int i = 0; i < 3 && left >= 7; i++)
        if (s[1] == ' ' && memcmp(s + 2, words[i], 4) == 0 && s[6] == ' ')
            w = i;
    if (w < 0)
        return parse_error(p, err, s, S_INIT, s, "expected a valid start token");
    const char *t = s + 7;
    if (t >= end || !IS(*t, CL_MS)) {
        char exp[40];
        snprintf(exp, sizeof exp, "expected metric name after %s", words[w]);
        return parse_error(p, err, s, S_META1, t, exp);
    }
    const char *ns = t;
    while (t < end && IS(*t, CL_M))
        t++;
    e->kind = kinds[w];
    e->name = (struct mp_str){ns, (size_t)(t - ns)};
    const char *eol = find_eol(t, end);
    if (t >= end || *t != ' ' || eol == end)
        return plain_error(p, err, MP_EPARSE, "expected text in %s", words[w]);
    e->text = (struct mp_str){t + 1, (size_t)(eol - t - 1)};
    p->cur = eol + 1;
    int rc = finish_meta(p, e, err);
    p->line++;
    return rc;
}

/* ---- samples ------------------------------------------------------------------------------ */

static bool has_suffix(struct mp_str s, const char *suf, size_t n)
{
    return s.len >= n && memcmp(s.ptr + s.len - n, suf, n) == 0;
}

static bool type_has_created(enum scrape_metric_type t)
{
    return t == SCRAPE_TYPE_COUNTER || t == SCRAPE_TYPE_HISTOGRAM || t == SCRAPE_TYPE_SUMMARY;
}

/* OpenMetrics exemplar after " # {": labels, " value", optional " timestamp", LF. */
static int om_exemplar(struct scrape_parser *p, struct scrape_entry *e, const char *ls,
                       const char **sp, struct mp_err *err)
{
    const char *s = *sp, *end = p->end, *open = s - 1;
    size_t n;
    int lines = 0;
    int rc = parse_labels(p, err, ls, &s, NULL, 0, &n, &lines);
    if (rc)
        return rc;
    e->exemplar = (struct mp_str){open, (size_t)(s - open)};
    if (s >= end || *s != ' ' || s + 1 >= end || IS(s[1], CL_OT))
        return parse_error(p, err, ls, S_EVALUE, s, "expected value after exemplar labels");
    const char *v = ++s;
    while (s < end && !IS(*s, CL_OT))
        s++;
    rc = parse_float(v, (size_t)(s - v), end, &e->exemplar_value);
    if (rc)
        return float_error(p, err, rc, v, (size_t)(s - v), ls, s);
    e->has_exemplar = true;
    if (s >= end)
        return plain_error(p, err, MP_EPARSE, "data does not end with # EOF");
    if (*s == ' ' && s + 1 < end && !IS(s[1], CL_OT)) {
        const char *t = ++s;
        while (s < end && !IS(*s, CL_OT))
            s++;
        rc = om_timestamp(p, err, t, (size_t)(s - t), ls, true, &e->exemplar_ts_ms);
        if (rc)
            return rc;
        e->exemplar_has_ts = true;
        if (s >= end || *s != '\n')
            return parse_error(p, err, ls, S_ETS, s,
                               "expected next entry after exemplar timestamp");
    } else if (*s != '\n') {
        return parse_error(p, err, ls, S_ETS, s, "expected timestamp or comment");
    }
    *sp = s + 1;
    return 0;
}

static int finish_sample(struct scrape_parser *p, struct scrape_entry *e, const char *ls,
                         const char *v, int lines, struct mp_err *err);

/* Sample line starting at s (the first byte of a metric name, or '{'). */
static int parse_sample(struct scrape_parser *p, struct scrape_entry *e, const char *ls,
                        const char *s, struct mp_err *err)
{
    const char *end = p->end, *ns = s;
    bool om = is_om(p);
    int lines = 0;
    while (s < end && IS(*s, CL_M))
        s++;
    e->kind = SCRAPE_ENTRY_SERIES;
    e->name = (struct mp_str){ns, (size_t)(s - ns)};
    e->nlabel = 0;
    const char *v = om ? s : skip_ws(s, end);
    if (v < end && *v == '{') {
        s = v + 1;
        int rc = parse_labels(p, err, ls, &s, e->label, e->label_cap, &e->nlabel, &lines);
        if (rc)
            return rc;
        v = om ? s : skip_ws(s, end);
    }
    e->series = (struct mp_str){ns, (size_t)(s - ns)};
    return finish_sample(p, e, ls, v, lines, err);
}

/* The rest of a sample line after its series text (e->name, e->series set): v is where the
 * value token may start, lines the raw line feeds inside the series text. */
static int finish_sample(struct scrape_parser *p, struct scrape_entry *e, const char *ls,
                         const char *v, int lines, struct mp_err *err)
{
    const char *end = p->end, *s;
    bool om = is_om(p);
    e->has_ts = false;
    e->has_exemplar = false;
    e->exemplar_has_ts = false;
    e->is_created = false;
    if (e->name.len == 0) {
        /* "{...}" with no name: 2.51+ takes it from a quoted string, which we do not accept.
         * Upstream has already lexed the next token when it notices, so it is shown too. */
        const char *tend;
        (void)lex_at(p, S_VALUE, v, &tend);
        char ctx[320];
        size_t cl = 0;
        quote_into(p, ls, tend, ctx, sizeof ctx, &cl);
        return plain_error(p, err, MP_EPARSE, "metric name not set while parsing: %s", ctx);
    }

    /* value: text [^{ \t\n]+ after optional blanks; OpenMetrics " " [^ \n]+ */
    if (om) {
        if (v >= end || *v != ' ' || v + 1 >= end || IS(v[1], CL_OT))
            return parse_error(p, err, ls, S_VALUE, v, "expected value after metric");
        v++;
    }
    s = v;
    while (s < end && !IS(*s, om ? CL_OT : CL_TT))
        s++;
    if (s == v)
        return parse_error(p, err, ls, S_VALUE, v, "expected value after metric");
    int rc;
    /* fast path: short plain integers, the bulk of counters and buckets */
    size_t vn = (size_t)(s - v);
    if (vn <= 15 && v[0] >= '0' && v[0] <= '9') {
        uint64_t m = 0;
        size_t i = 0;
        for (; i < vn && v[i] >= '0' && v[i] <= '9'; i++)
            m = m * 10 + (uint64_t)(v[i] - '0');
        if (i == vn)
            e->value = (double)m;
        else if ((rc = parse_float(v, vn, end, &e->value)) != NUM_OK)
            return float_error(p, err, rc, v, vn, ls, s);
    } else if ((rc = parse_float(v, vn, end, &e->value)) != NUM_OK) {
        return float_error(p, err, rc, v, vn, ls, s);
    }

    if (!om) {
        s = skip_ws(s, end);
        if (s < end && *s >= '0' && *s <= '9') {
            const char *t = s;
            uint64_t ts = 0;
            bool over = false;
            for (; s < end && *s >= '0' && *s <= '9'; s++) {
                unsigned d = (unsigned)(*s - '0');
                if (ts > (UINT64_C(9223372036854775807) - d) / 10)
                    over = true;
                ts = ts * 10 + d;
            }
            if (over) {
                char q[64], what[128];
                size_t ql = 0;
                quote_into(p, t, s, q, sizeof q, &ql);
                snprintf(what, sizeof what, "strconv.ParseInt: parsing %s: value out of range", q);
                return wrap_error(p, err, what, ls, s);
            }
            e->has_ts = true;
            e->ts_ms = (int64_t)ts;
            s = skip_ws(s, end);
            if (s < end && *s != '\n')
                return parse_error(p, err, ls, S_TS, s, "expected next entry after timestamp");
        } else if (s < end && *s != '\n') {
            return parse_error(p, err, ls, S_TS, s, "expected timestamp or new record");
        }
        p->cur = s < end ? s + 1 : end;
    } else {
        if (s >= end)
            return plain_error(p, err, MP_EPARSE, "data does not end with # EOF");
        if (*s == ' ' && end - s >= 4 && memcmp(s, " # {", 4) == 0) {
            s += 4;
            if ((rc = om_exemplar(p, e, ls, &s, err)) != 0)
                return rc;
        } else if (*s == ' ' && s + 1 < end && !IS(s[1], CL_OT)) {
            const char *t = ++s;
            while (s < end && !IS(*s, CL_OT))
                s++;
            if ((rc = om_timestamp(p, err, t, (size_t)(s - t), ls, false, &e->ts_ms)) != 0)
                return rc;
            e->has_ts = true;
            if (s >= end)
                return parse_error(p, err, ls, S_TS, s, "expected next entry after timestamp");
            if (*s == ' ' && end - s >= 4 && memcmp(s, " # {", 4) == 0) {
                s += 4;
                if ((rc = om_exemplar(p, e, ls, &s, err)) != 0)
                    return rc;
            } else if (*s == '\n') {
                s++;
            } else {
                return parse_error(p, err, ls, S_TS, s, "expected next entry after timestamp");
            }
        } else if (*s == '\n') {
            s++;
        } else {
            return parse_error(p, err, ls, S_TS, s, "expected timestamp or # symbol");
        }
        p->cur = s;
        e->is_created = type_has_created(p->meta_type) && has_suffix(e->name, "_created", 8);
    }
    p->line += 1 + lines;

    if (p->meta_family.len &&
        scrape_series_in_family(e->name, p->meta_family, p->family_type, om)) {
        e->family = p->meta_family;
        e->type = p->family_type;
    } else {
        e->family = (struct mp_str){e->name.ptr, 0};
        e->type = SCRAPE_TYPE_UNKNOWN;
    }
    return 0;
}

/* ---- the entry loop ------------------------------------------------------------------------ */

void scrape_parser_init(struct scrape_parser *p, enum scrape_format format, const char *body,
                        size_t len, unsigned flags)
{
    memset(p, 0, sizeof *p);
    p->begin = p->cur = body;
    p->end = body + len;
    p->line = 1;
    p->format = format == SCRAPE_FORMAT_OPENMETRICS ? format : SCRAPE_FORMAT_TEXT;
    p->flags = flags;
    p->meta_family = (struct mp_str){body, 0};
}

int scrape_parser_next(struct scrape_parser *p, struct scrape_entry *e, struct mp_err *err)
{
    if (p->status)
        return p->status;
    const char *end = p->end;
    for (;;) {
        const char *ls = p->cur, *s = ls;
        e->line = p->line;
        e->text = (struct mp_str){s, 0};
        e->text_escaped = false;
        if (!is_om(p)) {
            s = skip_ws(s, end);
            if (s >= end || *s == 0) {
                p->status = MP_EEOF;
                return MP_EEOF;
            }
            if (*s == '\n') {
                p->cur = s + 1;
                p->line++;
                continue;
            }
        } else if (s >= end) {
            return plain_error(p, err, MP_EPARSE, "data does not end with # EOF");
        }
        int rc;
        if (IS(*s, CL_MS) || *s == '{')
            rc = parse_sample(p, e, ls, s, err);
        else if (*s == '#')
            rc = is_om(p) ? om_hash_line(p, e, s, err) : text_hash_line(p, e, ls, s, err);
        else
            rc = parse_error(p, err, ls, S_INIT, s, "expected a valid start token");
        if (rc == 0 && e->kind == SCRAPE_ENTRY_SERIES && e->is_created &&
            (p->flags & SCRAPE_PARSE_SKIP_CREATED))
            continue;
        return rc;
    }
}

bool scrape_parser_peek_series(const struct scrape_parser *p, size_t len, struct mp_str *out)
{
    if (p->status || is_om(p) || len == 0)
        return false;
    const char *s = skip_ws(p->cur, p->end);
    if ((size_t)(p->end - s) <= len || !IS(*s, CL_MS))
        return false;
    const char *t = s + len;
    if (t[-1] != '}') {
        /* a text without labels is all name: the name must end here, no label set follow */
        if (IS(*t, CL_M))
            return false;
        const char *v = skip_ws(t, p->end);
        if (v < p->end && *v == '{')
            return false;
    }
    *out = (struct mp_str){s, len};
    return true;
}

int scrape_parser_next_known(struct scrape_parser *p, struct mp_str series, struct scrape_entry *e,
                             struct mp_err *err)
{
    const char *ls = p->cur, *s = series.ptr, *end = series.ptr + series.len;
    e->line = p->line;
    e->text = (struct mp_str){ls, 0};
    e->text_escaped = false;
    e->kind = SCRAPE_ENTRY_SERIES;
    while (s < end && IS(*s, CL_M))
        s++;
    e->name = (struct mp_str){series.ptr, (size_t)(s - series.ptr)};
    e->nlabel = 0;
    e->series = series;
    int lines = 0;
    for (const char *q = s; (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++)
        lines++; /* raw line feeds in label values */
    return finish_sample(p, e, ls, skip_ws(end, p->end), lines, err);
}

/* ---- created timestamps, unescaping, exemplars, duplicates --------------------------------- */

/* Labels equal in order, skipping `skip` (le / quantile) on both sides. */
static bool same_labels(const struct scrape_label *a, size_t na, const struct scrape_label *b,
                        size_t nb, const char *skip)
{
    size_t i = 0, j = 0;
    struct mp_str sk = mp_str_c(skip ? skip : "");
    for (;;) {
        while (skip && i < na && mp_str_eq(a[i].name, sk))
            i++;
        while (skip && j < nb && mp_str_eq(b[j].name, sk))
            j++;
        if (i == na || j == nb)
            return i == na && j == nb;
        if (!mp_str_eq(a[i].name, b[j].name) || !mp_str_eq(a[i].value, b[j].value))
            return false;
        i++, j++;
    }
}

bool scrape_parser_created_ms(const struct scrape_parser *p, const struct scrape_entry *e,
                              int64_t *ct_ms)
{
    if (p->format != SCRAPE_FORMAT_OPENMETRICS || e->kind != SCRAPE_ENTRY_SERIES ||
        !type_has_created(p->meta_type))
        return false;
    const char *skip = p->meta_type == SCRAPE_TYPE_HISTOGRAM ? "le"
                       : p->meta_type == SCRAPE_TYPE_SUMMARY ? "quantile"
                                                             : NULL;
    /* Prometheus compares the family name cut to the length of the last metadata name */
    size_t fam_len = p->meta_family.len < e->name.len ? p->meta_family.len : e->name.len;
    struct mp_str fam = {e->name.ptr, fam_len};
    struct scrape_parser q = *p;
    q.flags &= ~(unsigned)SCRAPE_PARSE_SKIP_CREATED;
    struct scrape_label lab[64];
    struct scrape_entry pe = {.label = lab, .label_cap = 64};
    for (int guard = 0; guard < 1 << 20; guard++) {
        if (scrape_parser_next(&q, &pe, NULL) != 0 || pe.kind != SCRAPE_ENTRY_SERIES)
            return false;
        if (!has_suffix(pe.name, "_created", 8))
            continue;
        struct mp_str base = {pe.name.ptr, pe.name.len - 8};
        if (!mp_str_eq(base, fam) || !same_labels(e->label, e->nlabel, pe.label, pe.nlabel, skip))
            return false;
        *ct_ms = go_int64(pe.value * 1000.0);
        return true;
    }
    return false;
}

size_t scrape_unescape(struct mp_str raw, bool text_help, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < raw.len && o < cap; i++) {
        char c = raw.ptr[i];
        if (c == '\\' && i + 1 < raw.len) {
            char d = raw.ptr[i + 1];
            if (d == '\\' || d == 'n' || (d == '"' && !text_help)) {
                buf[o++] = d == 'n' ? '\n' : d;
                i++;
                continue;
            }
        }
        buf[o++] = c;
    }
    return o;
}

size_t scrape_exemplar_labels(struct mp_str ex, struct scrape_label *out, size_t cap)
{
    /* ex was validated by the parser: {name="value",...} with OpenMetrics rules */
    size_t n = 0, i = 1;
    while (i < ex.len && ex.ptr[i] != '}') {
        size_t ns = i;
        while (i < ex.len && ex.ptr[i] != '=')
            i++;
        size_t vs = i + 2, j = vs;
        bool esc = false;
        while (j < ex.len && ex.ptr[j] != '"') {
            if (ex.ptr[j] == '\\') {
                esc = true;
                j++;
            }
            j++;
        }
        if (j >= ex.len)
            break;
        if (n < cap)
            out[n] = (struct scrape_label){{ex.ptr + ns, i - ns}, {ex.ptr + vs, j - vs}, esc};
        n++;
        i = j + 1;
        if (i < ex.len && ex.ptr[i] == ',')
            i++;
    }
    return n;
}

int scrape_entry_duplicate_label(const struct scrape_entry *e)
{
    for (size_t i = 1; i < e->nlabel; i++)
        for (size_t j = 0; j < i; j++)
            if (mp_str_eq(e->label[i].name, e->label[j].name))
                return (int)i;
    return -1;
}
