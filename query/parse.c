/* SPDX-License-Identifier: Apache-2.0 */
/* query/parse.c: PromQL lexer, precedence-climbing parser and type checker, following
 * Prometheus 2.55 promql/parser (lex.go, generated_parser.y, parse.go). Spec: promql.md 1.
 * The lexer is pulled one token at a time, like Prometheus's, so a lexer error (unclosed
 * parenthesis, bad escape) is reported when the parser reaches it. Syntax errors name the
 * innermost construct that has an error rule in Prometheus's grammar ("in aggregation",
 * "in label matching", ...). The first error wins and stops the parse; checks Prometheus does
 * in checkAST run over the finished tree. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"
#include "query/query_internal.h"

enum tok {
    T_EOF,
    T_ERROR,
    T_IDENT,
    T_METRIC_IDENT,
    T_NUMBER,
    T_DURATION,
    T_STRING,
    T_LPAREN,
    T_RPAREN,
    T_LBRACE,
    T_RBRACE,
    T_LBRACKET,
    T_RBRACKET,
    T_COMMA,
    T_EQL,
    T_COLON,
    T_AT,
    /* operators, in enum query_op order */
    T_ADD,
    T_SUB,
    T_MUL,
    T_DIV,
    T_MOD,
    T_POW,
    T_ATAN2,
    T_EQLC,
    T_NEQ,
    T_LTE,
    T_LSS,
    T_GTE,
    T_GTR,
    T_AND,
    T_OR,
    T_UNLESS,
    T_EQL_REGEX,
    T_NEQ_REGEX,
    /* aggregators, in enum query_aggr order */
    T_SUM,
    T_AVG,
    T_COUNT,
    T_MIN,
    T_MAX,
    T_GROUP,
    T_STDDEV,
    T_STDVAR,
    T_TOPK,
    T_BOTTOMK,
    T_COUNT_VALUES,
    T_QUANTILE,
    T_LIMITK,
    T_LIMIT_RATIO,
    /* keywords */
    T_OFFSET,
    T_BY,
    T_WITHOUT,
    T_ON,
    T_IGNORING,
    T_GROUP_LEFT,
    T_GROUP_RIGHT,
    T_BOOL,
    T_START,
    T_END,
};

static const struct {
    const char *w;
    enum tok t;
} keywords[] = {
    {"and", T_AND},
    {"or", T_OR},
    {"unless", T_UNLESS},
    {"atan2", T_ATAN2},
    {"sum", T_SUM},
    {"avg", T_AVG},
    {"count", T_COUNT},
    {"min", T_MIN},
    {"max", T_MAX},
    {"group", T_GROUP},
    {"stddev", T_STDDEV},
    {"stdvar", T_STDVAR},
    {"topk", T_TOPK},
    {"bottomk", T_BOTTOMK},
    {"count_values", T_COUNT_VALUES},
    {"quantile", T_QUANTILE},
    {"limitk", T_LIMITK},
    {"limit_ratio", T_LIMIT_RATIO},
    {"offset", T_OFFSET},
    {"by", T_BY},
    {"without", T_WITHOUT},
    {"on", T_ON},
    {"ignoring", T_IGNORING},
    {"group_left", T_GROUP_LEFT},
    {"group_right", T_GROUP_RIGHT},
    {"bool", T_BOOL},
    {"start", T_START},
    {"end", T_END},
    {"inf", T_NUMBER},
    {"nan", T_NUMBER},
};

struct token {
    enum tok t;
    size_t pos, len;
};

#define MAX_DEPTH                                                                                  \
    512 /* our own bound on nesting (Prometheus has none): keeps the recursion within              \
         * a thread stack, also in sanitizer builds */

struct parser {
    const char *src;
    size_t len;
    /* lexer state (lex.go) */
    size_t lpos;
    int paren_depth;
    bool brace_open, bracket_open, got_colon;
    struct token tok; /* lookahead */
    bool have_tok;
    size_t last_end; /* end of the last consumed token */
    /* error */
    bool failed;
    int code;
    size_t err_pos;
    char err[MP_ERR_MSG_MAX];
    const char *ctx, *expect; /* innermost error context */
    const struct query_parse_opts *o;
    struct query_arena *arena;
    int depth;
    const struct query_expr *bypass; /* info()'s label selector: may match only empty */
};

static bool is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}
static bool is_alpha(int c)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}
static bool is_alnum(int c)
{
    return is_alpha(c) || is_digit(c);
}

static void fail_at(struct parser *p, size_t pos, const char *fmt, ...) MP_PRINTF(3, 4);
static void fail_at(struct parser *p, size_t pos, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = true;
    p->code = MP_EPARSE;
    p->err_pos = pos;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof p->err, fmt, ap);
    va_end(ap);
}

static void fail_nomem(struct parser *p)
{
    fail_at(p, 0, "out of memory");
    p->code = MP_ENOMEM;
}

/* An error whose message quotes src[pos..pos+n) as Go's %q: before "slice" after. */
static void fail_quoted(struct parser *p, size_t pos, size_t n, const char *before,
                        const char *after)
{
    struct mp_buf b;
    mp_buf_init(&b, 0);
    int rc = query_go_quote(&b, (struct mp_str){p->src + pos, n}, 0);
    fail_at(p, pos, "%s%s%s", before, rc == 0 ? b.data : "", after);
    mp_buf_fini(&b);
}

static int peekc(const struct parser *p, size_t at)
{
    return at < p->len ? (unsigned char)p->src[at] : -1;
}

/* Go %q of one rune (strconv.QuoteRune) into buf. */
static void quote_rune(char *buf, size_t cap, uint32_t r)
{
    const char *e = query_go_escape(r, '\'');
    if (e) {
        snprintf(buf, cap, "'%s'", e);
        return;
    }
    if (r < 0x20 || r == 0x7F) {
        snprintf(buf, cap, "'\\x%02x'", (unsigned)r);
    } else if (r < 0x7F) {
        snprintf(buf, cap, "'%c'", (int)r);
    } else if (r >= 0x80 && r < 0xA0) {
        snprintf(buf, cap, "'\\u%04x'", (unsigned)r);
    } else {
        char u[5] = {0};
        if (r < 0x800) {
            u[0] = (char)(0xC0 | r >> 6), u[1] = (char)(0x80 | (r & 0x3F));
        } else if (r < 0x10000) {
            u[0] = (char)(0xE0 | r >> 12), u[1] = (char)(0x80 | ((r >> 6) & 0x3F));
            u[2] = (char)(0x80 | (r & 0x3F));
        } else {
            u[0] = (char)(0xF0 | r >> 18), u[1] = (char)(0x80 | ((r >> 12) & 0x3F));
            u[2] = (char)(0x80 | ((r >> 6) & 0x3F)), u[3] = (char)(0x80 | (r & 0x3F));
        }
        snprintf(buf, cap, "'%s'", u);
    }
}

/* The rune at pos (or -1 at the end); *w its width. */
static int32_t rune_at(const struct parser *p, size_t pos, size_t *w)
{
    if (pos >= p->len) {
        *w = 0;
        return -1;
    }
    uint32_t r;
    *w = mp_utf8_decode((const unsigned char *)p->src + pos, p->len - pos, &r);
    return (int32_t)r;
}

static void lex_fail_rune(struct parser *p, size_t start, const char *what, int32_t r)
{
    char q[16];
    quote_rune(q, sizeof q, (uint32_t)r);
    fail_at(p, start, "%s%s", what, q);
}

/* Go %#U */
static void fmt_U(char *buf, size_t cap, int32_t r)
{
    char q[16];
    quote_rune(q, sizeof q, (uint32_t)r);
    if (r >= 0x20 && r != 0x7F && !(r >= 0x80 && r < 0xA0))
        snprintf(buf, cap, "U+%04X %s", (unsigned)r, r == '\'' ? "'''" : r == '\\' ? "'\\'" : q);
    else
        snprintf(buf, cap, "U+%04X", (unsigned)r);
}

/* Quoted string body starting after the opening quote at start; sets p->lpos past it. */
static void lex_string(struct parser *p, size_t start, int quote)
{
    size_t i = start + 1, w;
    for (;;) {
        int32_t r = rune_at(p, i, &w);
        if (r == -1 || (quote != '`' && r == '\n')) {
            fail_at(p, start,
                    quote == '`' ? "unterminated raw string" : "unterminated quoted string");
            return;
        }
        if (r == 0xFFFD) {
            fail_at(p, start, "invalid UTF-8 rune");
            return;
        }
        i += w;
        if (r == quote)
            break;
        if (r != '\\' || quote == '`')
            continue;
        int32_t c = rune_at(p, i, &w);
        i += w;
        int n = 0, base = 0;
        uint32_t max = 0;
        switch (c) {
        case 'a':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
        case 'v':
        case '\\':
            continue;
        case '0':
        case '1':
        case '2':
        case '3':
        case '4':
        case '5':
        case '6':
        case '7':
            n = 3, base = 8, max = 255;
            i -= w;
            break;
        case 'x':
            n = 2, base = 16, max = 255;
            break;
        case 'u':
            n = 4, base = 16, max = 0x10FFFF;
            break;
        case 'U':
            n = 8, base = 16, max = 0x10FFFF;
            break;
        case -1:
            fail_at(p, start, "escape sequence not terminated");
            return;
        default:
            if (c == quote)
                continue;
            char u[32];
            fmt_U(u, sizeof u, c);
            fail_at(p, start, "unknown escape sequence %s", u);
            return;
        }
        uint32_t x = 0;
        for (; n > 0; n--) {
            int32_t d = rune_at(p, i, &w);
            int v = d >= '0' && d <= '9'   ? d - '0'
                    : d >= 'a' && d <= 'f' ? d - 'a' + 10
                    : d >= 'A' && d <= 'F' ? d - 'A' + 10
                                           : 99;
            if (v >= base) {
                if (d == -1) {
                    fail_at(p, start, "escape sequence not terminated");
                } else {
                    char u[32];
                    fmt_U(u, sizeof u, d);
                    fail_at(p, start, "illegal character %s in escape sequence", u);
                }
                return;
            }
            x = x * (uint32_t)base + (uint32_t)v;
            i += w;
        }
        if (x > max || (x >= 0xD800 && x < 0xE000)) {
            fail_at(p, start, "escape sequence is an invalid Unicode code point");
            return;
        }
    }
    p->lpos = i;
}

/* lex.go scanNumber (2.54+): [0x[_]][.][d] then digits, at most one '.', at most one
 * exponent (optionally signed), '_' only before a digit; hex numbers take no fraction. On
 * false *pos is where scanning stopped (the duration scan continues from there). */
static bool in_set(int c, bool hex, const char *extra)
{
    if (c < 0)
        return false;
    if (is_digit(c) || (hex && isxdigit(c)))
        return true;
    return c != 0 && strchr(extra, c) != NULL;
}

static bool scan_number(struct parser *p, size_t *pos)
{
    size_t i = *pos, initial = *pos;
    bool hex = false;
    if (peekc(p, i) == '0' && (peekc(p, i + 1) == 'x' || peekc(p, i + 1) == 'X')) {
        hex = true;
        i += 2;
        if (peekc(p, i) == '_')
            i++;
    }
    bool dot = false, expo = false, ok = true;
    if (peekc(p, i) == '.')
        i++;
    if (in_set(peekc(p, i), hex, ""))
        i++;
    while (ok && in_set(peekc(p, i), hex, "._eE")) {
        int c = peekc(p, i);
        if ((c == '.' && dot) || ((c == 'e' || c == 'E') && expo)) {
            i++;
            ok = false;
        } else if (c == '.') {
            dot = true;
            i++;
            if (in_set(peekc(p, i), false, "_.") && !is_digit(peekc(p, i)))
                i++, ok = false;
            else if (hex)
                ok = false;
        } else if (c == 'e' || c == 'E') {
            expo = true;
            i++;
            if (peekc(p, i) == '+' || peekc(p, i) == '-')
                i++;
            int n = peekc(p, i);
            if (n == '.' || n == '_' || n == 'e' || n == 'E')
                i++, ok = false;
            else if (n < 0)
                ok = false;
        } else if (c == '_') {
            i++;
            int n = peekc(p, i);
            if (n == '.' || n == '_' || n == 'e' || n == 'E')
                i++, ok = false;
            else if (n < 0)
                ok = false;
        } else {
            while (in_set(peekc(p, i), hex, ""))
                i++;
        }
    }
    *pos = i;
    if (!ok || i == initial)
        return false;
    return !is_alnum(peekc(p, i));
}

static bool accept(struct parser *p, size_t *i, const char *set)
{
    int c = peekc(p, *i);
    if (c >= 0 && c != 0 && strchr(set, c)) {
        (*i)++;
        return true;
    }
    return false;
}

/* lex.go acceptRemainingDuration from the end of the digits. */
static bool scan_duration_rest(struct parser *p, size_t *i)
{
    if (!accept(p, i, "smhdwy"))
        return false;
    accept(p, i, "s");
    while (accept(p, i, "0123456789")) {
        while (accept(p, i, "0123456789"))
            ;
        if (!accept(p, i, "smhdw"))
            return false;
        accept(p, i, "s");
    }
    if (is_alnum(peekc(p, *i))) {
        (*i)++;
        return false;
    }
    return true;
}

/* lex.go lexNumberOrDuration: a number, else the duration units continue from where the
 * number scan stopped; the error quotes what both scans consumed. */
static void lex_number(struct parser *p, size_t start, struct token *t)
{
    size_t i = start;
    if (scan_number(p, &i)) {
        t->t = T_NUMBER;
        p->lpos = i;
        return;
    }
    if (i > p->len)
        i = p->len;
    size_t j = i;
    if (scan_duration_rest(p, &j)) {
        t->t = T_DURATION;
        p->lpos = j;
        return;
    }
    if (j > p->len)
        j = p->len;
    fail_quoted(p, start, j - start, "bad number or duration syntax: ", "");
}

static void lex_next(struct parser *p, struct token *t)
{
    for (;;) {
        size_t i = p->lpos;
        while (i < p->len && is_space((unsigned char)p->src[i]))
            i++;
        if (peekc(p, i) == '#') {
            while (i < p->len && p->src[i] != '\n')
                i++;
            p->lpos = i;
            continue;
        }
        p->lpos = i;
        break;
    }
    size_t s = p->lpos;
    t->pos = s;
    t->t = T_ERROR;
    int c = peekc(p, s);
    if (c < 0) {
        if (p->brace_open)
            fail_at(p, s, "unexpected end of input inside braces");
        else if (p->paren_depth != 0)
            fail_at(p, s, "unclosed left parenthesis");
        else if (p->bracket_open)
            fail_at(p, s, "unclosed left bracket");
        else
            t->t = T_EOF;
        t->len = 0;
        return;
    }
    size_t w;
    if (p->brace_open) {
        p->lpos = s + 1;
        if (is_alpha(c)) {
            size_t i = s;
            while (is_alnum(peekc(p, i)))
                i++;
            p->lpos = i;
            t->t = T_IDENT;
        } else if (c == ',') {
            t->t = T_COMMA;
        } else if (c == '"' || c == '\'' || c == '`') {
            lex_string(p, s, c);
            t->t = T_STRING;
        } else if (c == '=') {
            if (peekc(p, s + 1) == '~')
                p->lpos++, t->t = T_EQL_REGEX;
            else
                t->t = T_EQL;
        } else if (c == '!') {
            int n = peekc(p, s + 1);
            if (n == '~' || n == '=') {
                p->lpos++;
                t->t = n == '~' ? T_NEQ_REGEX : T_NEQ;
            } else {
                int32_t r = rune_at(p, s + 1, &w);
                if (r < 0)
                    fail_at(p, s, "unexpected end of input inside braces");
                else
                    lex_fail_rune(p, s, "unexpected character after '!' inside braces: ", r);
            }
        } else if (c == '{') {
            fail_at(p, s, "unexpected left brace '{'");
        } else if (c == '}') {
            t->t = T_RBRACE;
            p->brace_open = false;
        } else {
            lex_fail_rune(p, s, "unexpected character inside braces: ", rune_at(p, s, &w));
        }
        t->len = p->lpos - s;
        return;
    }
    p->lpos = s + 1;
    static const char single[] = ",*/%+-^@";
    static const enum tok single_tok[] = {T_COMMA, T_MUL, T_DIV, T_MOD, T_ADD, T_SUB, T_POW, T_AT};
    const char *one = c ? strchr(single, c) : NULL;
    if (one) {
        t->t = single_tok[one - single];
        t->len = 1;
        return;
    }
    switch (c) {
    case '=':
        if (peekc(p, s + 1) == '=') {
            p->lpos++, t->t = T_EQLC;
        } else if (peekc(p, s + 1) == '~') {
            fail_at(p, s, "unexpected character after '=': '~'");
        } else {
            t->t = T_EQL;
        }
        break;
    case '!':
        if (peekc(p, s + 1) == '=') {
            p->lpos++, t->t = T_NEQ;
        } else {
            int32_t r = rune_at(p, s + 1, &w);
            char q[16];
            if (r < 0)
                snprintf(q, sizeof q, "%s", "'\\x00'");
            else
                quote_rune(q, sizeof q, (uint32_t)r);
            fail_at(p, s, "unexpected character after '!': %s", r < 0 ? "'�'" : q);
        }
        break;
    case '<':
    case '>':
        if (peekc(p, s + 1) == '=')
            p->lpos++, t->t = c == '<' ? T_LTE : T_GTE;
        else
            t->t = c == '<' ? T_LSS : T_GTR;
        break;
    case '"':
    case '\'':
    case '`':
        lex_string(p, s, c);
        t->t = T_STRING;
        break;
    case '(':
        t->t = T_LPAREN;
        p->paren_depth++;
        break;
    case ')':
        t->t = T_RPAREN;
        if (--p->paren_depth < 0)
            fail_at(p, s + 1, "unexpected right parenthesis ')'");
        break;
    case '{':
        t->t = T_LBRACE;
        p->brace_open = true;
        break;
    case '[':
        if (p->bracket_open) {
            fail_at(p, s, "unexpected left bracket '['");
            break;
        }
        p->got_colon = false;
        p->bracket_open = true;
        t->t = T_LBRACKET;
        break;
    case ']':
        if (!p->bracket_open) {
            fail_at(p, s, "unexpected right bracket ']'");
            break;
        }
        p->bracket_open = false;
        t->t = T_RBRACKET;
        break;
    default:
        if (is_digit(c) || (c == '.' && is_digit(peekc(p, s + 1)))) {
            lex_number(p, s, t);
        } else if ((c == ':' || is_alpha(c)) && p->bracket_open) {
            /* as lex.go: inside brackets a letter lexes as the colon too ("foo[5m offset"
             * fails with "unexpected colon 'f'") */
            if (p->got_colon) {
                char q[16];
                quote_rune(q, sizeof q, (uint32_t)c);
                fail_at(p, s, "unexpected colon %s", q);
            }
            p->got_colon = true;
            t->t = T_COLON;
        } else if (is_alpha(c) || c == ':') {
            size_t i = s;
            bool colon = false;
            while (is_alnum(peekc(p, i)) || peekc(p, i) == ':')
                colon |= p->src[i++] == ':';
            p->lpos = i;
            t->t = colon ? T_METRIC_IDENT : T_IDENT;
            for (size_t k = 0; k < sizeof keywords / sizeof keywords[0]; k++) {
                size_t kl = strlen(keywords[k].w);
                if (kl == i - s && strncasecmp(keywords[k].w, p->src + s, kl) == 0) {
                    t->t = keywords[k].t;
                    break;
                }
            }
        } else {
            lex_fail_rune(p, s, "unexpected character: ", rune_at(p, s, &w));
        }
    }
    t->len = p->lpos - s;
}

static const struct token *peek(struct parser *p)
{
    if (!p->have_tok) {
        lex_next(p, &p->tok);
        if (p->failed)
            p->tok.t = T_ERROR; /* a lexer error ends the token stream */
        p->have_tok = true;
    }
    return &p->tok;
}

static struct token next(struct parser *p)
{
    struct token t = *peek(p);
    p->have_tok = false;
    p->last_end = t.pos + t.len;
    return t;
}

static bool is_op(enum tok t)
{
    return t >= T_ADD && t <= T_NEQ_REGEX;
}
static bool is_aggr(enum tok t)
{
    return t >= T_SUM && t <= T_LIMIT_RATIO;
}
static bool is_kw(enum tok t)
{
    return t >= T_OFFSET;
}

/* parse.go unexpected(): "unexpected <desc> [in ctx][, expected exp]" */
static void unexpected(struct parser *p, const struct token *t)
{
    if (p->failed)
        return;
    struct mp_buf b;
    mp_buf_init(&b, 0);
    struct mp_str v = {p->src + t->pos, t->len};
    int rc = mp_buf_append_str(&b, "unexpected ");
    switch (t->t) {
    case T_EOF:
        rc = rc ? rc : mp_buf_append_str(&b, "end of input");
        break;
    case T_IDENT:
    case T_METRIC_IDENT:
        rc =
            rc ? rc : mp_buf_append_str(&b, t->t == T_IDENT ? "identifier " : "metric identifier ");
        rc = rc ? rc : query_go_quote(&b, v, 0);
        break;
    case T_NUMBER:
    case T_DURATION:
    case T_STRING:
        rc = rc ? rc
                : mp_buf_append_str(&b, t->t == T_NUMBER     ? "number "
                                        : t->t == T_DURATION ? "duration "
                                                             : "string ");
        if (t->len > 10) {
            rc = rc ? rc : query_go_quote(&b, v, 10);
            rc = rc ? rc : mp_buf_append_str(&b, "...");
        } else {
            rc = rc ? rc : query_go_quote(&b, v, 0);
        }
        break;
    default:
        if (is_op(t->t))
            rc = rc ? rc : mp_buf_appendf(&b, "<op:%.*s>", (int)v.len, v.ptr);
        else if (is_aggr(t->t))
            rc = rc ? rc : mp_buf_appendf(&b, "<aggr:%.*s>", (int)v.len, v.ptr);
        else if (is_kw(t->t))
            rc = rc ? rc : mp_buf_appendf(&b, "<%.*s>", (int)v.len, v.ptr);
        else
            rc = rc ? rc : query_go_quote(&b, v, 0);
    }
    if (p->ctx && p->ctx[0])
        rc = rc ? rc : mp_buf_appendf(&b, " in %s", p->ctx);
    if (p->expect && p->expect[0])
        rc = rc ? rc : mp_buf_appendf(&b, ", expected %s", p->expect);
    if (rc)
        fail_nomem(p);
    else
        fail_at(p, t->pos, "%s", b.data);
    mp_buf_fini(&b);
}

/* Consumes the lookahead if it is t, else reports it. */
static bool expect(struct parser *p, enum tok t)
{
    if (peek(p)->t == t) {
        next(p);
        return true;
    }
    if (peek(p)->t != T_ERROR)
        unexpected(p, peek(p));
    return false;
}

static struct query_expr *node(struct parser *p, enum query_kind k, size_t start)
{
    struct query_expr *e = query_arena_alloc(p->arena, sizeof *e);
    if (!e) {
        fail_nomem(p);
        return NULL;
    }
    e->kind = k;
    e->start = start;
    e->end = p->last_end;
    return e;
}

static struct query_expr *parse_expr(struct parser *p, int min_prec);

static void number_error(struct parser *p, const struct token *t, const char *why)
{
    char after[32];
    snprintf(after, sizeof after, ": %s", why);
    fail_quoted(p, t->pos, t->len, "error parsing number: strconv.ParseFloat: parsing ", after);
}

/* Go's underscoreOK: each '_' sits between digits (a base prefix counts as a digit). */
static bool underscores_ok(const char *s, size_t n)
{
    size_t i = 0;
    bool hex = n > 1 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
    if (hex)
        i = 2;
    char prev = hex ? '0' : '.';
    for (; i < n; i++) {
        char c = s[i];
        bool dig = is_digit(c) || (hex && isxdigit((unsigned char)c));
        if (c == '_') {
            if (!(is_digit(prev) || (hex && isxdigit((unsigned char)prev))))
                return false;
        } else if (prev == '_' && !dig) {
            return false;
        }
        prev = c;
    }
    return prev != '_';
}

/* Go strconv.ParseInt(s, 0, 64), then ParseFloat, as parser.number does. */
static double number_value(struct parser *p, const struct token *t)
{
    char buf[128];
    size_t n = 0;
    const char *src = p->src + t->pos;
    if (t->len >= sizeof buf) {
        /* more digits than any float64 needs: let strtod see them all */
        char *big = mp_malloc(t->len + 1);
        if (!big) {
            fail_nomem(p);
            return 0;
        }
        for (size_t i = 0; i < t->len; i++)
            if (src[i] != '_')
                big[n++] = src[i];
        big[n] = 0;
        char *end;
        errno = 0;
        double d = strtod(big, &end);
        bool bad = *end != 0 || !underscores_ok(src, t->len) ||
                   (n > 1 && big[0] == '0' && (big[1] == 'x' || big[1] == 'X'));
        bool range = errno == ERANGE && isinf(d);
        mp_free(big);
        if (bad || range)
            number_error(p, t, bad ? "invalid syntax" : "value out of range");
        return d;
    }
    for (size_t i = 0; i < t->len; i++)
        if (src[i] != '_')
            buf[n++] = src[i];
    buf[n] = 0;
    if (!underscores_ok(src, t->len)) {
        number_error(p, t, "invalid syntax");
        return 0;
    }
    bool hex = n > 1 && buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X');
    char *end;
    errno = 0;
    if (hex || (buf[0] == '0' && n > 1)) { /* base prefix: hex or octal */
        unsigned long long u = strtoull(buf, &end, 0);
        if (*end == 0 && errno == 0 && u <= (unsigned long long)INT64_MAX)
            return (double)(int64_t)u;
        if (hex) { /* ParseFloat wants a p exponent for hex */
            number_error(p, t, "invalid syntax");
            return 0;
        }
    } else if (is_digit(buf[0])) {
        errno = 0;
        long long ll = strtoll(buf, &end, 10);
        if (*end == 0 && errno == 0)
            return (double)ll;
    }
    errno = 0;
    double d = strtod(buf, &end);
    if (*end != 0 || end == buf)
        number_error(p, t, "invalid syntax");
    else if (errno == ERANGE && isinf(d))
        number_error(p, t, "value out of range");
    return d;
}

/* prometheus/common model.ParseDuration plus PromQL's "> 0" rule; ms or -1 after an error. */
static int64_t duration_value(struct parser *p, const struct token *t)
{
    static const struct {
        const char *u;
        int64_t ms;
    } units[] = {{"y", 31536000000LL}, {"w", 604800000LL}, {"d", 86400000LL}, {"h", 3600000LL},
                 {"m", 60000LL},       {"s", 1000LL},      {"ms", 1}};
    const char *s = p->src + t->pos, *e = s + t->len;
    int64_t total = 0;
    size_t next_unit = 0;
    bool ok = true;
    if (t->len == 1 && s[0] == '0')
        goto zero;
    while (s < e && ok) {
        uint64_t v = 0;
        const char *d = s;
        while (s < e && is_digit(*s)) {
            if (v > (uint64_t)INT64_MAX / 10)
                ok = false;
            v = v * 10 + (uint64_t)(*s++ - '0');
        }
        size_t ul = 0;
        while (s + ul < e && !is_digit(s[ul]))
            ul++;
        if (s == d || ul == 0) {
            ok = false;
            break;
        }
        size_t k;
        for (k = next_unit; k < 7; k++)
            if (strlen(units[k].u) == ul && memcmp(units[k].u, s, ul) == 0)
                break;
        if (k == 7) {
            ok = false;
            break;
        }
        next_unit = k + 1;
        s += ul;
        if (v > (uint64_t)INT64_MAX / (uint64_t)units[k].ms) {
            fail_at(p, t->pos, "duration out of range");
            return -1;
        }
        int64_t add = (int64_t)v * units[k].ms;
        if (__builtin_add_overflow(total, add, &total)) {
            fail_at(p, t->pos, "duration out of range");
            return -1;
        }
    }
    if (!ok) {
        fail_quoted(p, t->pos, t->len, "not a valid duration string: ", "");
        return -1;
    }
    if (total != 0)
        return total;
zero:
    fail_at(p, t->pos, "duration must be greater than 0");
    return -1;
}

/* number_duration_literal as seconds; NAN and an error if the token is neither. */
static bool num_or_dur(struct parser *p, double *sec)
{
    const struct token *t = peek(p);
    if (t->t == T_NUMBER) {
        struct token n = next(p);
        *sec = number_value(p, &n);
        return !p->failed;
    }
    if (t->t == T_DURATION) {
        struct token n = next(p);
        int64_t ms = duration_value(p, &n);
        *sec = (double)ms / 1000.0;
        return !p->failed;
    }
    if (t->t != T_ERROR)
        unexpected(p, t);
    return false;
}

static int64_t sec_to_ms(double s)
{
    /* Go: time.Duration(s*1000) * time.Millisecond; out of range is undefined in Go */
    double ms = s * 1000.0;
    if (!(ms > -9.2e15 && ms < 9.2e15))
        return ms > 0 ? INT64_MAX / 1000000 : INT64_MIN / 1000000;
    return (int64_t)ms;
}

/* grouping_labels: "(" [label {"," label} [","]] ")" */
static bool parse_labels(struct parser *p, struct mp_str **out, size_t *n)
{
    const char *oc = p->ctx, *oe = p->expect;
    p->ctx = "grouping opts";
    p->expect = "\"(\"";
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    bool ok = expect(p, T_LPAREN);
    while (ok && peek(p)->t != T_RPAREN) {
        p->expect = "label";
        const struct token *t = peek(p);
        bool label = (t->t == T_IDENT || is_kw(t->t) || is_aggr(t->t) || t->t == T_AND ||
                      t->t == T_OR || t->t == T_UNLESS || t->t == T_ATAN2);
        if (label)
            for (size_t i = 0; i < t->len; i++)
                label &= is_alnum((unsigned char)p->src[t->pos + i]);
        if (!label) {
            if (t->t != T_ERROR)
                unexpected(p, t);
            ok = false;
            break;
        }
        struct token l = next(p);
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 4;
            struct mp_str *nl = query_arena_alloc(p->arena, nc * sizeof *nl);
            if (!nl) {
                fail_nomem(p);
                return false;
            }
            if (*n)
                memcpy(nl, *out, *n * sizeof *nl);
            *out = nl;
            cap = nc;
        }
        (*out)[(*n)++] = (struct mp_str){p->src + l.pos, l.len};
        p->expect = "\",\" or \")\"";
        if (peek(p)->t == T_COMMA)
            next(p);
        else if (peek(p)->t != T_RPAREN)
            ok = expect(p, T_RPAREN);
    }
    if (ok)
        next(p);
    p->ctx = oc;
    p->expect = oe;
    return ok && !p->failed;
}

/* strutil.Unquote of a lexed (valid) string token into the arena. */
static bool unquote(struct parser *p, const struct token *t, struct mp_str *out)
{
    const char *s = p->src + t->pos + 1;
    size_t n = t->len - 2;
    char *d = query_arena_alloc(p->arena, n + 1);
    if (!d) {
        fail_nomem(p);
        return false;
    }
    size_t k = 0;
    bool raw = s[-1] == '`';
    for (size_t i = 0; i < n;) {
        if (raw || s[i] != '\\') {
            d[k++] = s[i++];
            continue;
        }
        char c = s[i + 1];
        i += 2;
        const char *esc = "a\ab\bf\fn\nr\rt\tv\v\\\\\"\"''";
        const char *m = strchr(esc, c);
        if (m && ((m - esc) % 2) == 0) {
            d[k++] = m[1];
            continue;
        }
        int nd = c == 'x' ? 2 : c == 'u' ? 4 : c == 'U' ? 8 : 3;
        int base = (c >= '0' && c <= '7') ? 8 : 16;
        if (base == 8)
            i--;
        uint32_t x = 0;
        for (int j = 0; j < nd; j++, i++) {
            int ch = (unsigned char)s[i];
            x = x * (uint32_t)base + (uint32_t)(is_digit(ch) ? ch - '0' : (ch | 0x20) - 'a' + 10);
        }
        if (c == 'x' || base == 8) {
            d[k++] = (char)x;
        } else if (x < 0x80) {
            d[k++] = (char)x;
        } else if (x < 0x800) {
            d[k++] = (char)(0xC0 | x >> 6), d[k++] = (char)(0x80 | (x & 0x3F));
        } else if (x < 0x10000) {
            d[k++] = (char)(0xE0 | x >> 12), d[k++] = (char)(0x80 | ((x >> 6) & 0x3F));
            d[k++] = (char)(0x80 | (x & 0x3F));
        } else {
            d[k++] = (char)(0xF0 | x >> 18), d[k++] = (char)(0x80 | ((x >> 12) & 0x3F));
            d[k++] = (char)(0x80 | ((x >> 6) & 0x3F)), d[k++] = (char)(0x80 | (x & 0x3F));
        }
    }
    *out = (struct mp_str){d, k};
    return true;
}

static bool add_matcher(struct parser *p, struct query_expr *vs, size_t *cap, enum mp_match_type mt,
                        struct mp_str name, struct mp_str val, size_t pos)
{
    struct mp_matcher *m;
    struct mp_err err;
    mp_err_clear(&err);
    int rc = mp_matcher_create(mt, name, val, &m, &err);
    if (rc == MP_ENOMEM) {
        fail_nomem(p);
        return false;
    }
    if (rc && (mt == MP_MATCH_REGEX || mt == MP_MATCH_NOT_REGEX)) {
        /* Go names the failing part of the pattern Prometheus compiled, ^(?:re)$ */
        struct mp_buf b;
        mp_buf_init(&b, 0);
        struct mp_regex *re = NULL;
        struct mp_err e2;
        mp_err_clear(&e2);
        if (mp_buf_append_str(&b, "^(?:") == 0 && mp_buf_append(&b, val.ptr, val.len) == 0 &&
            mp_buf_append_str(&b, ")$") == 0 &&
            mp_regex_compile((struct mp_str){b.data, b.len}, 0, &re, &e2) == MP_EPARSE)
            memcpy(err.msg, e2.msg, sizeof err.msg);
        mp_regex_destroy(re);
        mp_buf_fini(&b);
    }
    if (rc) {
        fail_at(p, pos, "%s", err.msg);
        return false;
    }
    if (!query_arena_own_matcher(p->arena, m)) {
        fail_nomem(p);
        return false;
    }
    if (vs->nm == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        struct mp_matcher **nm = query_arena_alloc(p->arena, nc * sizeof *nm);
        if (!nm) {
            fail_nomem(p);
            return false;
        }
        if (vs->nm)
            memcpy(nm, vs->m, vs->nm * sizeof *nm);
        vs->m = nm;
        *cap = nc;
    }
    vs->m[vs->nm++] = m;
    return true;
}

/* [name] ["{" matchers "}"] */
static struct query_expr *parse_selector(struct parser *p, const struct token *name)
{
    size_t start = name ? name->pos : peek(p)->pos;
    struct query_expr *vs = node(p, QUERY_VECTOR_SELECTOR, start);
    if (!vs)
        return NULL;
    vs->type = QUERY_TYPE_VECTOR;
    size_t cap = 0;
    if (name)
        vs->str = (struct mp_str){p->src + name->pos, name->len};
    if (peek(p)->t == T_LBRACE) {
        const char *oc = p->ctx, *oe = p->expect;
        p->ctx = "label matching";
        next(p);
        for (;;) {
            p->expect = "identifier or \"}\"";
            const struct token *t = peek(p);
            if (t->t == T_RBRACE)
                break;
            if (t->t != T_IDENT && t->t != T_STRING) {
                if (t->t != T_ERROR)
                    unexpected(p, t);
                return NULL;
            }
            /* 2.55 grammar (utf8-names): a quoted label name, or a quoted metric name
             * standing alone */
            struct token l = next(p);
            struct mp_str lname = {p->src + l.pos, l.len};
            if (l.t == T_STRING && !unquote(p, &l, &lname))
                return NULL;
            enum tok op = peek(p)->t;
            if (l.t == T_STRING && (op == T_COMMA || op == T_RBRACE)) {
                if (!add_matcher(p, vs, &cap, MP_MATCH_EQUAL, MP_STR_LIT("__name__"), lname, l.pos))
                    return NULL;
                if (op == T_COMMA)
                    next(p);
                continue;
            }
            p->expect = l.t == T_STRING ? "\",\" or \"}\"" : "label matching operator";
            if (op != T_EQL && op != T_NEQ && op != T_EQL_REGEX && op != T_NEQ_REGEX) {
                if (op != T_ERROR)
                    unexpected(p, peek(p));
                return NULL;
            }
            next(p);
            p->expect = "string";
            if (peek(p)->t != T_STRING) {
                if (peek(p)->t != T_ERROR)
                    unexpected(p, peek(p));
                return NULL;
            }
            struct token sv = next(p);
            struct mp_str val;
            if (!unquote(p, &sv, &val))
                return NULL;
            enum mp_match_type mt = op == T_EQL         ? MP_MATCH_EQUAL
                                    : op == T_NEQ       ? MP_MATCH_NOT_EQUAL
                                    : op == T_EQL_REGEX ? MP_MATCH_REGEX
                                                        : MP_MATCH_NOT_REGEX;
            if (!add_matcher(p, vs, &cap, mt, lname, val, l.pos))
                return NULL;
            p->expect = "\",\" or \"}\"";
            if (peek(p)->t == T_COMMA) {
                next(p);
                continue;
            }
            if (peek(p)->t != T_RBRACE) {
                if (peek(p)->t != T_ERROR)
                    unexpected(p, peek(p));
                return NULL;
            }
        }
        next(p);
        p->ctx = oc;
        p->expect = oe;
    }
    if (name &&
        !add_matcher(p, vs, &cap, MP_MATCH_EQUAL, MP_STR_LIT("__name__"), vs->str, name->pos))
        return NULL;
    vs->end = p->last_end;
    return vs;
}

/* "(" [expr {"," expr}] ")" of calls and aggregations; trailing comma is an error. */
static bool parse_args(struct parser *p, struct query_expr ***args, size_t *n)
{
    size_t cap = 0;
    *args = NULL;
    *n = 0;
    if (!expect(p, T_LPAREN))
        return false;
    if (peek(p)->t == T_RPAREN) {
        next(p);
        return true;
    }
    for (;;) {
        struct query_expr *a = parse_expr(p, 0);
        if (!a)
            return false;
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 4;
            struct query_expr **na = query_arena_alloc(p->arena, nc * sizeof *na);
            if (!na) {
                fail_nomem(p);
                return false;
            }
            if (*n)
                memcpy(na, *args, *n * sizeof *na);
            *args = na;
            cap = nc;
        }
        (*args)[(*n)++] = a;
        if (peek(p)->t == T_COMMA) {
            struct token c = next(p);
            if (peek(p)->t == T_RPAREN) {
                fail_at(p, c.pos, "trailing commas not allowed in function call args");
                return false;
            }
            continue;
        }
        return expect(p, T_RPAREN);
    }
}

static struct query_expr *parse_aggregate(struct parser *p, const struct token *op)
{
    const char *oc = p->ctx, *oe = p->expect;
    struct query_expr *e = node(p, QUERY_AGGREGATE, op->pos);
    if (!e)
        return NULL;
    e->type = QUERY_TYPE_VECTOR;
    e->aggr = (enum query_aggr)(op->t - T_SUM);
    bool grouped = false;
    p->ctx = "aggregation";
    p->expect = "";
    if (peek(p)->t == T_BY || peek(p)->t == T_WITHOUT) {
        e->without = next(p).t == T_WITHOUT;
        if (!parse_labels(p, &e->labels, &e->nlabels))
            return NULL;
        grouped = true;
    }
    p->ctx = "aggregation";
    p->expect = "";
    struct query_expr **args;
    size_t n;
    if (!parse_args(p, &args, &n))
        return NULL;
    if (!grouped && (peek(p)->t == T_BY || peek(p)->t == T_WITHOUT)) {
        e->without = next(p).t == T_WITHOUT;
        if (!parse_labels(p, &e->labels, &e->nlabels))
            return NULL;
    }
    p->ctx = oc;
    p->expect = oe;
    e->end = p->last_end;
    if (n == 0) {
        fail_at(p, e->start, "no arguments for aggregate expression provided");
        return NULL;
    }
    size_t want = 1;
    if (e->aggr == QUERY_AGGR_TOPK || e->aggr == QUERY_AGGR_BOTTOMK ||
        e->aggr == QUERY_AGGR_QUANTILE || e->aggr == QUERY_AGGR_COUNT_VALUES ||
        e->aggr == QUERY_AGGR_LIMITK || e->aggr == QUERY_AGGR_LIMIT_RATIO) {
        if (!p->o->experimental_functions &&
            (e->aggr == QUERY_AGGR_LIMITK || e->aggr == QUERY_AGGR_LIMIT_RATIO)) {
            fail_at(p, e->start,
                    "limitk() and limit_ratio() are experimental and must be "
                    "enabled with --enable-feature=promql-experimental-functions");
            return NULL;
        }
        want = 2;
        e->b = args[0];
    }
    if (n != want) {
        fail_at(p, e->start,
                "wrong number of arguments for aggregate expression provided, expected %zu, "
                "got %zu",
                want, n);
        return NULL;
    }
    e->a = args[want - 1];
    return e;
}

static struct query_expr *parse_primary(struct parser *p)
{
    const struct token *t = peek(p);
    switch (t->t) {
    case T_NUMBER:
    case T_DURATION: {
        struct query_expr *e = node(p, QUERY_NUMBER, t->pos);
        if (!e)
            return NULL;
        e->num_is_duration = t->t == T_DURATION;
        if (!num_or_dur(p, &e->num))
            return NULL;
        e->type = QUERY_TYPE_SCALAR;
        e->end = p->last_end;
        return e;
    }
    case T_STRING: {
        struct token s = next(p);
        struct query_expr *e = node(p, QUERY_STRING, s.pos);
        if (!e || !unquote(p, &s, &e->str))
            return NULL;
        e->type = QUERY_TYPE_STRING;
        return e;
    }
    case T_LPAREN: {
        struct token l = next(p);
        struct query_expr *in = parse_expr(p, 0);
        if (!in || !expect(p, T_RPAREN))
            return NULL;
        struct query_expr *e = node(p, QUERY_PAREN, l.pos);
        if (!e)
            return NULL;
        e->a = in;
        e->type = in->type;
        return e;
    }
    case T_LBRACE:
        return parse_selector(p, NULL);
    case T_IDENT: {
        struct token id = next(p);
        if (peek(p)->t != T_LPAREN)
            return parse_selector(p, &id);
        struct mp_str name = {p->src + id.pos, id.len};
        const struct query_function *fn = query_function_get(name);
        if (!fn) {
            fail_at(p, id.pos, "unknown function with name \"%.*s\"", (int)id.len, name.ptr);
            return NULL;
        }
        if (fn->experimental && !p->o->experimental_functions) {
            fail_at(p, id.pos, "function \"%s\" is not enabled", fn->name);
            return NULL;
        }
        struct query_expr *e = node(p, QUERY_CALL, id.pos);
        if (!e || !parse_args(p, &e->args, &e->nargs))
            return NULL;
        e->fn = fn;
        e->type = fn->ret;
        e->end = p->last_end;
        return e;
    }
    case T_METRIC_IDENT: {
        struct token id = next(p);
        return parse_selector(p, &id);
    }
    default:
        if (is_aggr(t->t)) {
            struct token op = next(p);
            enum tok n = peek(p)->t;
            if (n == T_LPAREN || n == T_BY || n == T_WITHOUT)
                return parse_aggregate(p, &op);
            return parse_selector(p, &op);
        }
        if (t->t == T_AND || t->t == T_OR || t->t == T_UNLESS || t->t == T_BY ||
            t->t == T_WITHOUT || t->t == T_OFFSET || t->t == T_START || t->t == T_END) {
            struct token id = next(p);
            return parse_selector(p, &id);
        }
        if (t->t != T_ERROR)
            unexpected(p, t);
        return NULL;
    }
}

/* Which node an offset / @ applies to (addOffset / getAtModifierVars). */
static struct query_expr *modifier_target(struct parser *p, struct query_expr *e, const char *what)
{
    if (e->kind == QUERY_VECTOR_SELECTOR || e->kind == QUERY_SUBQUERY)
        return e;
    if (e->kind == QUERY_MATRIX_SELECTOR)
        return e->a;
    fail_at(p, e->start,
            "%s modifier must be preceded by an instant vector selector or range "
            "vector selector or a subquery",
            what);
    return NULL;
}

static struct query_expr *parse_postfix(struct parser *p)
{
    struct query_expr *e = parse_primary(p);
    while (e && !p->failed) {
        const struct token *t = peek(p);
        const char *oc = p->ctx, *oe = p->expect;
        if (t->t == T_LBRACKET) {
            struct token lb = next(p);
            double r, st = 0;
            p->ctx = "subquery selector";
            p->expect = "number/duration";
            if (!num_or_dur(p, &r))
                return NULL;
            if (peek(p)->t == T_COLON) {
                next(p);
                p->expect = "number/duration or \"]\"";
                if (peek(p)->t != T_RBRACKET) {
                    if (!num_or_dur(p, &st))
                        return NULL;
                    p->expect = "\"]\"";
                }
                if (!expect(p, T_RBRACKET))
                    return NULL;
                struct query_expr *s = node(p, QUERY_SUBQUERY, e->start);
                if (!s)
                    return NULL;
                s->a = e;
                s->range_ms = sec_to_ms(r);
                s->step_ms = sec_to_ms(st);
                s->type = QUERY_TYPE_MATRIX;
                e = s;
            } else {
                p->ctx = "subquery or range";
                p->expect = "\":\" or \"]\"";
                if (!expect(p, T_RBRACKET))
                    return NULL;
                if (e->kind != QUERY_VECTOR_SELECTOR) {
                    fail_at(p, lb.pos, "ranges only allowed for vector selectors");
                    return NULL;
                }
                if (e->offset_ms != 0) {
                    fail_at(p, lb.pos, "no offset modifiers allowed before range");
                    return NULL;
                }
                if (e->at != QUERY_AT_NONE) {
                    fail_at(p, lb.pos, "no @ modifiers allowed before range");
                    return NULL;
                }
                struct query_expr *m = node(p, QUERY_MATRIX_SELECTOR, e->start);
                if (!m)
                    return NULL;
                m->a = e;
                m->range_ms = sec_to_ms(r);
                m->type = QUERY_TYPE_MATRIX;
                e = m;
            }
        } else if (t->t == T_OFFSET) {
            next(p);
            p->ctx = "offset";
            p->expect = "number or duration";
            bool neg = peek(p)->t == T_SUB;
            if (neg)
                next(p);
            double s;
            if (!num_or_dur(p, &s))
                return NULL;
            struct query_expr *tg = modifier_target(p, e, "offset");
            if (!tg)
                return NULL;
            if (tg->offset_ms != 0) {
                fail_at(p, e->start, "offset may not be set multiple times");
                return NULL;
            }
            tg->offset_ms = sec_to_ms(neg ? -s : s);
        } else if (t->t == T_AT) {
            next(p);
            p->ctx = "@";
            p->expect = "timestamp";
            enum query_at kind = QUERY_AT_TIME;
            double ts = 0;
            if (peek(p)->t == T_START || peek(p)->t == T_END) {
                kind = next(p).t == T_START ? QUERY_AT_START : QUERY_AT_END;
                if (!expect(p, T_LPAREN) || !expect(p, T_RPAREN))
                    return NULL;
            } else {
                bool neg = peek(p)->t == T_SUB;
                if (neg)
                    next(p);
                if (!num_or_dur(p, &ts))
                    return NULL;
                if (neg)
                    ts = -ts;
                if (isinf(ts) || isnan(ts)) {
                    fail_at(p, e->start, "timestamp out of bounds for @ modifier: %s",
                            isnan(ts) ? "NaN"
                            : ts > 0  ? "+Inf"
                                      : "-Inf");
                    return NULL;
                }
                if (ts >= 9223372036854775807.0 || ts <= -9223372036854775808.0) {
                    fail_at(p, e->start, "timestamp out of bounds for @ modifier: %f", ts);
                    return NULL;
                }
            }
            struct query_expr *tg = modifier_target(p, e, "@");
            if (!tg)
                return NULL;
            if (tg->at != QUERY_AT_NONE) {
                fail_at(p, e->start, "@ <timestamp> may not be set multiple times");
                return NULL;
            }
            tg->at = kind;
            if (kind == QUERY_AT_TIME) {
                double ms = round(ts * 1000.0);
                tg->at_ms = ms >= 9.2e18 ? INT64_MAX : ms <= -9.2e18 ? INT64_MIN : (int64_t)ms;
            }
        } else {
            break;
        }
        p->ctx = oc;
        p->expect = oe;
        e->end = p->last_end;
        if (e->kind == QUERY_MATRIX_SELECTOR)
            e->a->end = p->last_end;
    }
    return p->failed ? NULL : e;
}

static int prec_of(enum tok t)
{
    switch (t) {
    case T_OR:
        return 1;
    case T_AND:
    case T_UNLESS:
        return 2;
    case T_EQLC:
    case T_NEQ:
    case T_LTE:
    case T_LSS:
    case T_GTE:
    case T_GTR:
        return 3;
    case T_ADD:
    case T_SUB:
        return 4;
    case T_MUL:
    case T_DIV:
    case T_MOD:
    case T_ATAN2:
        return 5;
    case T_POW:
        return 6;
    default:
        return 0;
    }
}

static struct query_expr *parse_unary(struct parser *p)
{
    const struct token *t = peek(p);
    if (t->t != T_ADD && t->t != T_SUB)
        return parse_postfix(p);
    struct token op = next(p);
    if (++p->depth > MAX_DEPTH) {
        fail_at(p, op.pos, "expression nesting too deep");
        return NULL;
    }
    struct query_expr *in = parse_expr(p, 6);
    p->depth--;
    if (!in)
        return NULL;
    if (in->kind == QUERY_NUMBER) { /* folded: -5 is the literal -5 */
        if (op.t == T_SUB)
            in->num = -in->num;
        in->start = op.pos;
        return in;
    }
    struct query_expr *e = node(p, QUERY_UNARY, op.pos);
    if (!e)
        return NULL;
    e->neg = op.t == T_SUB;
    e->a = in;
    e->type = in->type;
    return e;
}

static struct query_expr *parse_expr(struct parser *p, int min_prec)
{
    if (++p->depth > MAX_DEPTH) {
        fail_at(p, peek(p)->pos, "expression nesting too deep");
        return NULL;
    }
    struct query_expr *lhs = parse_unary(p);
    while (lhs && !p->failed) {
        enum tok ot = peek(p)->t;
        int prec = prec_of(ot);
        if (prec == 0 || prec < min_prec)
            break;
        next(p);
        struct query_expr *e = node(p, QUERY_BINARY, lhs->start);
        if (!e)
            return NULL;
        e->op = (enum query_op)(ot - T_ADD);
        e->a = lhs;
        e->has_matching = true;
        e->card = QUERY_CARD_ONE_TO_ONE;
        if (peek(p)->t == T_BOOL) {
            next(p);
            e->ret_bool = true;
        }
        if (peek(p)->t == T_ON || peek(p)->t == T_IGNORING) {
            e->on = next(p).t == T_ON;
            if (!parse_labels(p, &e->labels, &e->nlabels))
                return NULL;
            if (peek(p)->t == T_GROUP_LEFT || peek(p)->t == T_GROUP_RIGHT) {
                e->card =
                    next(p).t == T_GROUP_LEFT ? QUERY_CARD_MANY_TO_ONE : QUERY_CARD_ONE_TO_MANY;
                e->has_group = true;
                if (peek(p)->t == T_LPAREN && !parse_labels(p, &e->incl, &e->nincl))
                    return NULL;
            }
        }
        e->b = parse_expr(p, ot == T_POW ? prec : prec + 1);
        if (!e->b)
            return NULL;
        e->end = p->last_end;
        lhs = e;
    }
    p->depth--;
    return p->failed ? NULL : lhs;
}

/* checkAST */
static bool is_cmp(enum query_op op)
{
    return op >= QUERY_OP_EQLC && op <= QUERY_OP_GTR;
}
static bool is_set(enum query_op op)
{
    return op >= QUERY_OP_AND;
}

static enum query_type check(struct parser *p, struct query_expr *e);

static void expect_type(struct parser *p, struct query_expr *e, enum query_type want,
                        const char *ctx)
{
    enum query_type t = check(p, e);
    if (t != want)
        fail_at(p, e->start, "expected type %s in %s, got %s", query_type_name(want), ctx,
                query_type_name(t));
}

static const char *vt_name(enum query_type t)
{
    static const char *const n[] = {"none", "scalar", "vector", "matrix", "string"};
    return n[t];
}

static enum query_type check(struct parser *p, struct query_expr *e)
{
    if (p->failed)
        return e->type;
    switch (e->kind) {
    case QUERY_PAREN:
        e->type = check(p, e->a);
        break;
    case QUERY_UNARY: {
        enum query_type t = e->type = check(p, e->a);
        if (t != QUERY_TYPE_SCALAR && t != QUERY_TYPE_VECTOR)
            fail_at(p, e->start,
                    "unary expression only allowed on expressions of type scalar "
                    "or instant vector, got \"%s\"",
                    query_type_name(t));
        break;
    }
    case QUERY_SUBQUERY: {
        enum query_type t = check(p, e->a);
        if (t != QUERY_TYPE_VECTOR)
            fail_at(p, e->start, "subquery is only allowed on instant vector, got %s instead",
                    vt_name(t));
        break;
    }
    case QUERY_MATRIX_SELECTOR:
        check(p, e->a);
        break;
    case QUERY_CALL: {
        const struct query_function *f = e->fn;
        size_t na = (size_t)f->nargs;
        if (f->variadic == 0) {
            if (na != e->nargs)
                fail_at(p, e->start, "expected %zu argument(s) in call to \"%s\", got %zu", na,
                        f->name, e->nargs);
        } else if (na - 1 > e->nargs) {
            fail_at(p, e->start, "expected at least %zu argument(s) in call to \"%s\", got %zu",
                    na - 1, f->name, e->nargs);
        } else if (f->variadic > 0 && na - 1 + (size_t)f->variadic < e->nargs) {
            fail_at(p, e->start, "expected at most %zu argument(s) in call to \"%s\", got %zu",
                    na - 1 + (size_t)f->variadic, f->name, e->nargs);
        }
        /* info(v, {data label selector}): a direct, name-less selector (parse.go checkAST) */
        if (!p->failed && strcmp(f->name, "info") == 0 && e->nargs > 1) {
            struct query_expr *a = e->args[1];
            if (a->kind == QUERY_VECTOR_SELECTOR) {
                if (a->str.len)
                    fail_at(p, a->start,
                            "expected label selectors only, got vector selector instead");
                p->bypass = a;
            } else {
                enum query_type t = check(p, a);
                if (!p->failed && t != QUERY_TYPE_VECTOR)
                    fail_at(p, e->start, "expected type %s in call to function \"info\", got %s",
                            query_type_name(QUERY_TYPE_VECTOR), query_type_name(t));
                else if (!p->failed)
                    fail_at(p, a->start, "expected label selectors only");
            }
        }
        char ctx[64];
        snprintf(ctx, sizeof ctx, "call to function \"%s\"", f->name);
        for (size_t i = 0; i < e->nargs && !p->failed; i++) {
            size_t k = i;
            if (k >= na) {
                if (f->variadic == 0)
                    break;
                k = na - 1;
            }
            expect_type(p, e->args[i], f->arg_types[k], ctx);
        }
        break;
    }
    case QUERY_AGGREGATE:
        expect_type(p, e->a, QUERY_TYPE_VECTOR, "aggregation expression");
        if (e->b)
            expect_type(p, e->b,
                        e->aggr == QUERY_AGGR_COUNT_VALUES ? QUERY_TYPE_STRING : QUERY_TYPE_SCALAR,
                        "aggregation parameter");
        break;
    case QUERY_BINARY: {
        enum query_type lt = check(p, e->a), rt = check(p, e->b);
        if (p->failed)
            break;
        size_t op = e->a->end;
        while (op < p->len && is_space((unsigned char)p->src[op]))
            op++;
        if (e->ret_bool && !is_cmp(e->op))
            fail_at(p, op, "bool modifier can only be used on comparison operators");
        if (is_cmp(e->op) && !e->ret_bool && lt == QUERY_TYPE_SCALAR && rt == QUERY_TYPE_SCALAR)
            fail_at(p, op, "comparisons between scalars must use BOOL modifier");
        if (is_set(e->op) && e->card == QUERY_CARD_ONE_TO_ONE)
            e->card = QUERY_CARD_MANY_TO_MANY;
        for (size_t i = 0; i < e->nlabels && e->on; i++)
            for (size_t j = 0; j < e->nincl; j++)
                if (mp_str_eq(e->labels[i], e->incl[j]))
                    fail_at(p, op, "label \"%.*s\" must not occur in ON and GROUP clause at once",
                            (int)e->labels[i].len, e->labels[i].ptr);
        if (lt != QUERY_TYPE_SCALAR && lt != QUERY_TYPE_VECTOR)
            fail_at(p, e->a->start,
                    "binary expression must contain only scalar and instant vector types");
        if (rt != QUERY_TYPE_SCALAR && rt != QUERY_TYPE_VECTOR)
            fail_at(p, e->b->start,
                    "binary expression must contain only scalar and instant vector types");
        if (lt != QUERY_TYPE_VECTOR || rt != QUERY_TYPE_VECTOR) {
            if (e->nlabels > 0)
                fail_at(p, e->start, "vector matching only allowed between instant vectors");
            e->has_matching = false;
        } else if (is_set(e->op)) {
            if (e->card == QUERY_CARD_ONE_TO_MANY || e->card == QUERY_CARD_MANY_TO_ONE)
                fail_at(p, e->start, "no grouping allowed for \"%s\" operation",
                        query_op_str(e->op));
            if (e->card != QUERY_CARD_MANY_TO_MANY)
                fail_at(p, e->start, "set operations must always be many-to-many");
        }
        if ((lt == QUERY_TYPE_SCALAR || rt == QUERY_TYPE_SCALAR) && is_set(e->op))
            fail_at(p, e->start, "set operator \"%s\" not allowed in binary scalar expression",
                    query_op_str(e->op));
        e->type = lt == QUERY_TYPE_SCALAR && rt == QUERY_TYPE_SCALAR ? QUERY_TYPE_SCALAR
                                                                     : QUERY_TYPE_VECTOR;
        break;
    }
    case QUERY_VECTOR_SELECTOR:
        if (e->str.len) {
            for (size_t i = 0; i + 1 < e->nm; i++)
                if (mp_str_eq(mp_matcher_name(e->m[i]), MP_STR_LIT("__name__"))) {
                    struct mp_str v = mp_matcher_value(e->m[i]);
                    fail_at(p, e->start, "metric name must not be set twice: \"%.*s\" or \"%.*s\"",
                            (int)e->str.len, e->str.ptr, (int)v.len, v.ptr);
                }
            break;
        } else {
            bool non_empty = false;
            for (size_t i = 0; i < e->nm; i++)
                non_empty |= !mp_matcher_matches_empty(e->m[i]);
            if (!non_empty && e != p->bypass)
                fail_at(p, e->start, "vector selector must contain at least one non-empty matcher");
        }
        break;
    default:
        break;
    }
    return e->type;
}

void query_parse_opts_init(struct query_parse_opts *o)
{
    memset(o, 0, sizeof *o);
}

static void fill_error(const struct parser *p, struct query_parse_error *err)
{
    if (!err)
        return;
    size_t pos = p->err_pos > p->len ? p->len : p->err_pos;
    int line = 1;
    size_t last_nl = (size_t)-1;
    for (size_t i = 0; i < pos; i++)
        if (p->src[i] == '\n')
            line++, last_nl = i;
    err->pos = pos;
    err->line = line;
    err->col = (int)(pos - last_nl);
    int n = snprintf(err->msg, sizeof err->msg, "%d:%d: parse error: ", err->line, err->col);
    size_t room = sizeof err->msg - (size_t)n - 1, ml = strlen(p->err);
    if (ml > room)
        ml = room;
    memcpy(err->msg + n, p->err, ml);
    err->msg[(size_t)n + ml] = 0;
    err->detail = err->msg + n;
}

int query_parse(const char *src, size_t len, const struct query_parse_opts *o,
                struct query_expr **out, struct query_parse_error *err)
{
    struct query_parse_opts def;
    if (!o) {
        query_parse_opts_init(&def);
        o = &def;
    }
    *out = NULL;
    struct parser p = {.src = src ? src : "", .len = src ? len : 0, .o = o};
    p.arena = query_arena_create();
    if (!p.arena) {
        fail_nomem(&p);
        fill_error(&p, err);
        return MP_ENOMEM;
    }
    struct query_expr *e = NULL;
    if (peek(&p)->t == T_EOF) {
        fail_at(&p, 0, "no expression found in input");
    } else if (!p.failed) {
        e = parse_expr(&p, 0);
        if (e && !p.failed && peek(&p)->t != T_EOF && peek(&p)->t != T_ERROR)
            unexpected(&p, peek(&p));
        if (e && !p.failed)
            check(&p, e);
    }
    if (p.failed) {
        query_arena_destroy(p.arena);
        fill_error(&p, err);
        return p.code;
    }
    e->arena = p.arena;
    *out = e;
    return 0;
}

void query_expr_free(struct query_expr *root)
{
    if (root)
        query_arena_destroy(root->arena);
}
