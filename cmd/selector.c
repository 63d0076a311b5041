/* SPDX-License-Identifier: Apache-2.0 */
/* cmd/selector.c: a PromQL series selector parser (selector.h), following Prometheus 2.42's
 * lexer (promql/parser/lex.go: top-level and inside-braces states, Go string escapes) and the
 * START_METRIC_SELECTOR part of its grammar, with the same error texts and positions. */
#include "cmd/selector.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "common/str.h"

enum tok_type {
    T_EOF,
    T_IDENT,        /* [a-zA-Z_][a-zA-Z0-9_]* */
    T_METRIC_IDENT, /* with ':' */
    T_WORD,         /* keyword, aggregator, operator word: desc() in tok.desc */
    T_NUMBER,
    T_DURATION,
    T_STRING,
    T_LBRACE,
    T_RBRACE,
    T_COMMA,
    T_EQL,
    T_NEQ,
    T_EQL_RE,
    T_NEQ_RE,
    T_PUNCT, /* other punctuation, described as "%q" */
    T_OP,    /* other operators, described as <op:X> */
};

struct tok {
    enum tok_type type;
    size_t start, end;
    bool name_ok;     /* T_WORD: the grammar accepts it as a metric name */
    const char *kind; /* T_WORD: "aggr:", "op:" or "" */
};

struct lexer {
    const char *s;
    size_t len, pos;
    bool braces;
    struct mp_err *err;
};

/* ---- error text helpers ----------------------------------------------------------------- */

/* The rune at s[0..n) and its length (U+FFFD and 1 when invalid or at the end). */
static uint32_t utf8_decode(const unsigned char *s, size_t n, size_t *len)
{
    uint32_t r;
    *len = mp_utf8_decode(s, n, &r);
    if (*len == 0)
        *len = 1;
    return r;
}

/* Go %q of a rune (strconv.QuoteRune), for the characters a lexer error names. */
static void quote_rune(uint32_t r, char *out, size_t cap)
{
    switch (r) {
    case '\'': snprintf(out, cap, "'\\''"); return;
    case '\\': snprintf(out, cap, "'\\\\'"); return;
    case '\a': snprintf(out, cap, "'\\a'"); return;
    case '\b': snprintf(out, cap, "'\\b'"); return;
    case '\f': snprintf(out, cap, "'\\f'"); return;
    case '\n': snprintf(out, cap, "'\\n'"); return;
    case '\r': snprintf(out, cap, "'\\r'"); return;
    case '\t': snprintf(out, cap, "'\\t'"); return;
    case '\v': snprintf(out, cap, "'\\v'"); return;
    default: break;
    }
    if (r < 0x20 || r == 0x7F) {
        snprintf(out, cap, "'\\x%02x'", (unsigned)r);
        return;
    }
    char u[4];
    size_t n = mp_utf8_encode(r, u);
    snprintf(out, cap, "'%.*s'", (int)n, u);
}

/* Go %#U: U+0071 'q' (the character only when printable). */
static void go_sharp_u(uint32_t r, char *out, size_t cap)
{
    if (r < 0x20 || r == 0x7F || (r >= 0x80 && r < 0xA0)) {
        snprintf(out, cap, "U+%04X", (unsigned)r);
        return;
    }
    char u[4];
    size_t n = mp_utf8_encode(r, u);
    snprintf(out, cap, "U+%04X '%.*s'", (unsigned)r, (int)n, u);
}

/* "line:col: parse error: " for byte position pos, as Prometheus's ParseErr. */
static int perr(const struct lexer *l, size_t pos, const char *fmt, ...) MP_PRINTF(3, 4);
static int perr(const struct lexer *l, size_t pos, const char *fmt, ...)
{
    int line = 1;
    size_t last_nl = (size_t)-1;
    for (size_t i = 0; i < pos && i < l->len; i++)
        if (l->s[i] == '\n') {
            line++;
            last_nl = i;
        }
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mp_err_set(l->err, MP_EPARSE, "%d:%zu: parse error: %s", line, pos - last_nl, msg);
}

/* ---- lexer -------------------------------------------------------------------------------- */

static bool is_alpha(int c)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_alnum(int c)
{
    return is_alpha(c) || (c >= '0' && c <= '9');
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* The rune at pos (U+FFFD at the end) and its length. */
static uint32_t rune_at(const struct lexer *l, size_t pos, size_t *n)
{
    if (pos >= l->len) {
        *n = 0;
        return 0xFFFD;
    }
    return utf8_decode((const unsigned char *)l->s + pos, l->len - pos, n);
}

/* A lexer error at the token start pos naming the character at cpos. */
static int err_char(const struct lexer *l, size_t pos, size_t cpos, const char *what)
{
    size_t n;
    char q[16];
    quote_rune(rune_at(l, cpos, &n), q, sizeof q);
    return perr(l, pos, "%s%s", what, q);
}

static int digit_val(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return 16;
}

/* One escape after a backslash at l->pos (lex.go lexEscape); start is the string's start. */
static int lex_escape(struct lexer *l, char quote, size_t start)
{
    if (l->pos >= l->len)
        return perr(l, start, "escape sequence not terminated");
    int c = (unsigned char)l->s[l->pos];
    int n, base;
    uint32_t max;
    switch (c) {
    case 'a': case 'b': case 'f': case 'n': case 'r': case 't': case 'v': case '\\':
        l->pos++;
        return 0;
    case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7':
        n = 3, base = 8, max = 255;
        break;
    case 'x':
        l->pos++;
        n = 2, base = 16, max = 255;
        break;
    case 'u':
        l->pos++;
        n = 4, base = 16, max = 0x10FFFF;
        break;
    case 'U':
        l->pos++;
        n = 8, base = 16, max = 0x10FFFF;
        break;
    default:
        if (c == quote) {
            l->pos++;
            return 0;
        }
        {
            size_t k;
            char u[32];
            go_sharp_u(rune_at(l, l->pos, &k), u, sizeof u);
            return perr(l, start, "unknown escape sequence %s", u);
        }
    }
    uint32_t x = 0;
    for (; n > 0; n--) {
        if (l->pos >= l->len)
            return perr(l, start, "escape sequence not terminated");
        int d = digit_val((unsigned char)l->s[l->pos]);
        if (d >= base) {
            size_t k;
            char u[32];
            go_sharp_u(rune_at(l, l->pos, &k), u, sizeof u);
            return perr(l, start, "illegal character %s in escape sequence", u);
        }
        x = x * (uint32_t)base + (uint32_t)d;
        l->pos++;
    }
    if (x > max || (x >= 0xD800 && x < 0xE000))
        return perr(l, start, "escape sequence is an invalid Unicode code point");
    return 0;
}

static int lex_string(struct lexer *l, struct tok *t)
{
    char quote = l->s[l->pos];
    t->type = T_STRING;
    t->start = l->pos++;
    if (quote == '`') {
        const char *e = memchr(l->s + l->pos, '`', l->len - l->pos);
        if (!e)
            return perr(l, t->start, "unterminated raw string");
        l->pos = (size_t)(e - l->s) + 1;
        t->end = l->pos;
        return 0;
    }
    for (;;) {
        if (l->pos >= l->len || l->s[l->pos] == '\n')
            return perr(l, t->start, "unterminated quoted string");
        char c = l->s[l->pos++];
        if (c == quote)
            break;
        if (c == '\\') {
            int rc = lex_escape(l, quote, t->start);
            if (rc)
                return rc;
        }
    }
    t->end = l->pos;
    return 0;
}

/* Word classes of lex.go's key table (lower case). */
static const struct {
    const char *word;
    const char *kind;
    bool name_ok;
} words[] = {
    {"and", "op:", true},        {"or", "op:", true},          {"unless", "op:", true},
    {"atan2", "op:", false},     {"sum", "aggr:", true},       {"avg", "aggr:", true},
    {"count", "aggr:", true},    {"min", "aggr:", true},       {"max", "aggr:", true},
    {"group", "aggr:", true},    {"stddev", "aggr:", true},    {"stdvar", "aggr:", true},
    {"topk", "aggr:", true},     {"bottomk", "aggr:", true},   {"count_values", "aggr:", true},
    {"quantile", "aggr:", true}, {"offset", "", true},         {"by", "", true},
    {"without", "", true},       {"on", "", false},            {"ignoring", "", false},
    {"group_left", "", false},   {"group_right", "", false},   {"bool", "", false},
    {"start", "", true},         {"end", "", true},
};

static bool word_eq_ci(const char *s, size_t n, const char *w)
{
    if (strlen(w) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z')
            c += 'a' - 'A';
        if (c != w[i])
            return false;
    }
    return true;
}

static void lex_word(struct lexer *l, struct tok *t)
{
    t->start = l->pos;
    bool colon = false;
    while (l->pos < l->len && (is_alnum((unsigned char)l->s[l->pos]) || l->s[l->pos] == ':')) {
        colon |= l->s[l->pos] == ':';
        l->pos++;
    }
    t->end = l->pos;
    const char *w = l->s + t->start;
    size_t n = t->end - t->start;
    if (word_eq_ci(w, n, "inf") || word_eq_ci(w, n, "nan")) {
        t->type = T_NUMBER;
        return;
    }
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (word_eq_ci(w, n, words[i].word)) {
            t->type = T_WORD;
            t->kind = words[i].kind;
            t->name_ok = words[i].name_ok;
            return;
        }
    t->type = colon ? T_METRIC_IDENT : T_IDENT;
}

static void lex_number(struct lexer *l, struct tok *t)
{
    t->start = l->pos;
    bool dur = false;
    while (l->pos < l->len) {
        int c = (unsigned char)l->s[l->pos];
        bool exp_sign = (c == '+' || c == '-') && l->pos > t->start &&
                        (l->s[l->pos - 1] == 'e' || l->s[l->pos - 1] == 'E');
        if (!is_alnum(c) && c != '.' && !exp_sign)
            break;
        if (is_alpha(c) && c != 'e' && c != 'E' && c != 'x' && c != 'X' && digit_val(c) >= 16)
            dur = true;
        l->pos++;
    }
    t->end = l->pos;
    t->type = dur ? T_DURATION : T_NUMBER;
}

static void skip_space_comments(struct lexer *l)
{
    while (l->pos < l->len) {
        char c = l->s[l->pos];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            l->pos++;
        } else if (c == '#') {
            while (l->pos < l->len && l->s[l->pos] != '\n')
                l->pos++;
        } else {
            break;
        }
    }
}

static int lex_braces(struct lexer *l, struct tok *t)
{
    skip_space_comments(l);
    t->start = l->pos;
    if (l->pos >= l->len)
        return perr(l, l->len, "unexpected end of input inside braces");
    char c = l->s[l->pos];
    if (is_alpha((unsigned char)c)) {
        while (l->pos < l->len && is_alnum((unsigned char)l->s[l->pos]))
            l->pos++;
        t->end = l->pos;
        t->type = T_IDENT;
        return 0;
    }
    if (c == '"' || c == '\'' || c == '`')
        return lex_string(l, t);
    l->pos++;
    switch (c) {
    case ',': t->type = T_COMMA; break;
    case '}':
        t->type = T_RBRACE;
        l->braces = false;
        break;
    case '=':
        t->type = T_EQL;
        if (l->pos < l->len && l->s[l->pos] == '~') {
            t->type = T_EQL_RE;
            l->pos++;
        }
        break;
    case '!':
        if (l->pos < l->len && (l->s[l->pos] == '=' || l->s[l->pos] == '~')) {
            t->type = l->s[l->pos] == '=' ? T_NEQ : T_NEQ_RE;
            l->pos++;
            break;
        }
        return err_char(l, t->start, l->pos, "unexpected character after '!' inside braces: ");
    default:
        return err_char(l, t->start, t->start, "unexpected character inside braces: ");
    }
    t->end = l->pos;
    return 0;
}

static int lex_top(struct lexer *l, struct tok *t)
{
    skip_space_comments(l);
    t->start = l->pos;
    if (l->pos >= l->len) {
        t->type = T_EOF;
        t->end = l->pos;
        return 0;
    }
    unsigned char c = (unsigned char)l->s[l->pos];
    if (is_alpha(c) || c == ':') {
        lex_word(l, t);
        return 0;
    }
    if (is_digit(c) || (c == '.' && l->pos + 1 < l->len && is_digit((unsigned char)l->s[l->pos + 1]))) {
        lex_number(l, t);
        return 0;
    }
    if (c == '"' || c == '\'' || c == '`')
        return lex_string(l, t);
    l->pos++;
    char next = l->pos < l->len ? l->s[l->pos] : '\0';
    switch (c) {
    case '{':
        t->type = T_LBRACE;
        l->braces = true;
        break;
    case ',': case '(': case ')': case '[': case ']':
        t->type = T_PUNCT;
        break;
    case '=':
        if (next == '~')
            return err_char(l, t->start, l->pos, "unexpected character after '=': ");
        t->type = next == '=' ? T_OP : T_PUNCT;
        l->pos += next == '=';
        break;
    case '!':
        if (next != '=')
            return err_char(l, t->start, l->pos, "unexpected character after '!': ");
        t->type = T_OP;
        l->pos++;
        break;
    case '<': case '>':
        t->type = T_OP;
        l->pos += next == '=';
        break;
    case '+': case '-': case '*': case '/': case '%': case '^': case '@':
        t->type = T_OP;
        break;
    default:
        return err_char(l, t->start, t->start, "unexpected character: ");
    }
    t->end = l->pos;
    return 0;
}

static int lex(struct lexer *l, struct tok *t)
{
    *t = (struct tok){0};
    return l->braces ? lex_braces(l, t) : lex_top(l, t);
}

/* Prometheus's Item.desc() of t into buf. */
static void desc(const struct lexer *l, const struct tok *t, struct mp_buf *buf)
{
    struct mp_str v = {l->s + t->start, t->end - t->start};
    int rc = 0;
    switch (t->type) {
    case T_EOF: rc = mp_buf_append_str(buf, "end of input"); break;
    case T_IDENT: case T_METRIC_IDENT: case T_NUMBER: case T_DURATION: case T_STRING: {
        static const char *const names[] = {[T_IDENT] = "identifier ",
                                            [T_METRIC_IDENT] = "metric identifier ",
                                            [T_NUMBER] = "number ", [T_DURATION] = "duration ",
                                            [T_STRING] = "string "};
        rc = mp_buf_append_str(buf, names[t->type]);
        /* Go's %.10q...: the first 10 runes quoted, then "..." */
        size_t runes = 0, cut = 0;
        bool longer = false;
        if (t->type != T_IDENT && t->type != T_METRIC_IDENT) {
            while (cut < v.len && runes < 10) {
                size_t k;
                (void)utf8_decode((const unsigned char *)v.ptr + cut, v.len - cut, &k);
                cut += k;
                runes++;
            }
            longer = cut < v.len;
            if (longer)
                v.len = cut;
        }
        if (!rc)
            rc = mp_label_quote(buf, v);
        if (!rc && longer)
            rc = mp_buf_append_str(buf, "...");
        break;
    }
    case T_WORD: rc = mp_buf_appendf(buf, "<%s%.*s>", t->kind, (int)v.len, v.ptr); break;
    case T_OP: case T_EQL_RE: case T_NEQ_RE: case T_NEQ:
        rc = mp_buf_appendf(buf, "<op:%.*s>", (int)v.len, v.ptr);
        break;
    default: rc = mp_label_quote(buf, v); break;
    }
    (void)rc; /* a message cut short by OOM is still a message */
}

static int unexpected(const struct lexer *l, const struct tok *t, const char *expected)
{
    struct mp_buf b;
    mp_buf_init(&b, 0);
    desc(l, t, &b);
    int rc = expected ? perr(l, t->start, "unexpected %s in label matching, expected %s",
                             b.data ? b.data : "", expected)
                      : perr(l, t->start, "unexpected %s", b.data ? b.data : "");
    mp_buf_fini(&b);
    return rc;
}

/* ---- values and matchers ------------------------------------------------------------------ */

/* The value of a string token, as strutil.Unquote (Go escapes; with escapes present, invalid
 * UTF-8 becomes U+FFFD as Go's UnquoteChar makes it). The lexer validated the escapes. */
static int unquote(const char *s, size_t n, struct mp_buf *out)
{
    mp_buf_reset(out);
    char q = s[0];
    s++;
    n -= 2;
    if (q == '`' || !memchr(s, '\\', n))
        return mp_buf_append(out, s, n);
    int rc = 0;
    for (size_t i = 0; i < n && !rc;) {
        unsigned char c = (unsigned char)s[i];
        char enc[4];
        if (c >= 0x80) {
            size_t k;
            uint32_t r = utf8_decode((const unsigned char *)s + i, n - i, &k);
            rc = mp_buf_append(out, enc, mp_utf8_encode(r, enc));
            i += k;
            continue;
        }
        if (c != '\\') {
            rc = mp_buf_append(out, s + i, 1);
            i++;
            continue;
        }
        char e = s[i + 1];
        i += 2;
        const char *simple = strchr("abfnrtv\\'\"", e);
        if (simple && e) {
            static const char map[] = "\a\b\f\n\r\t\v\\'\"";
            rc = mp_buf_append(out, &map[simple - "abfnrtv\\'\""], 1);
            continue;
        }
        int digits = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 3;
        int base = e == 'x' || e == 'u' || e == 'U' ? 16 : 8;
        if (base == 8)
            i--; /* the first octal digit is e itself */
        uint32_t x = 0;
        for (int d = 0; d < digits && i < n; d++, i++)
            x = x * (uint32_t)base + (uint32_t)digit_val((unsigned char)s[i]);
        if (e == 'u' || e == 'U') {
            rc = mp_buf_append(out, enc, mp_utf8_encode(x, enc));
        } else {
            char byte = (char)x;
            rc = mp_buf_append(out, &byte, 1);
        }
    }
    return rc;
}

static int push(struct cmd_selector *sel, size_t *cap, struct mp_matcher *m)
{
    if (sel->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        struct mp_matcher **nm = mp_realloc(sel->m, ncap * sizeof *nm);
        if (!nm)
            return MP_ENOMEM;
        sel->m = nm;
        *cap = ncap;
    }
    sel->m[sel->n++] = m;
    return 0;
}

static int add_matcher(struct lexer *l, struct cmd_selector *sel, size_t *cap,
                       enum mp_match_type type, struct mp_str name, struct mp_str value,
                       size_t pos)
{
    struct mp_matcher *m;
    struct mp_err e = {0};
    int rc = mp_matcher_create(type, name, value, &m, &e);
    if (rc == MP_EPARSE) {
        /* Go names the whole expression it compiled, ^(?:value)$, when the error is about
         * all of it ("missing closing )") */
        size_t ml = strlen(e.msg);
        if (value.len + 2 <= ml && e.msg[ml - 1] == '`' && e.msg[ml - value.len - 2] == '`' &&
            memcmp(e.msg + ml - value.len - 1, value.ptr, value.len) == 0)
            return perr(l, pos, "%.*s^(?:%.*s)$`", (int)(ml - value.len - 1), e.msg,
                        (int)value.len, value.ptr);
        return perr(l, pos, "%s", e.msg);
    }
    if (rc)
        return mp_err_set(l->err, rc, "%s", e.msg);
    if (push(sel, cap, m)) {
        mp_matcher_destroy(m);
        return mp_err_set(l->err, MP_ENOMEM, "selector");
    }
    return 0;
}

static int parse_matchers(struct lexer *l, struct cmd_selector *sel, size_t *cap,
                          struct mp_buf *val)
{
    struct tok t;
    int rc;
    for (;;) {
        if ((rc = lex(l, &t)))
            return rc;
        if (t.type == T_RBRACE)
            return 0;
        if (t.type != T_IDENT)
            return unexpected(l, &t, "identifier or \"}\"");
        struct tok name = t;
        if ((rc = lex(l, &t)))
            return rc;
        enum mp_match_type type;
        switch (t.type) {
        case T_EQL: type = MP_MATCH_EQUAL; break;
        case T_NEQ: type = MP_MATCH_NOT_EQUAL; break;
        case T_EQL_RE: type = MP_MATCH_REGEX; break;
        case T_NEQ_RE: type = MP_MATCH_NOT_REGEX; break;
        default: return unexpected(l, &t, "label matching operator");
        }
        if ((rc = lex(l, &t)))
            return rc;
        if (t.type != T_STRING)
            return unexpected(l, &t, "string");
        if (unquote(l->s + t.start, t.end - t.start, val))
            return mp_err_set(l->err, MP_ENOMEM, "selector");
        struct mp_str nm = {l->s + name.start, name.end - name.start};
        rc = add_matcher(l, sel, cap, type, nm, (struct mp_str){val->data ? val->data : "", val->len},
                         name.start);
        if (rc)
            return rc;
        if ((rc = lex(l, &t)))
            return rc;
        if (t.type == T_RBRACE)
            return 0;
        if (t.type != T_COMMA)
            return unexpected(l, &t, "\",\" or \"}\"");
    }
}

int cmd_selector_parse(const char *s, size_t len, struct cmd_selector *out, struct mp_err *err)
{
    *out = (struct cmd_selector){0};
    struct lexer l = {s, len, 0, false, err};
    struct mp_buf val;
    mp_buf_init(&val, 0);
    size_t cap = 0;
    struct tok t, name = {0};
    bool have_name = false;
    int rc = lex(&l, &t);
    if (!rc && (t.type == T_IDENT || t.type == T_METRIC_IDENT || (t.type == T_WORD && t.name_ok))) {
        name = t;
        have_name = true;
        rc = lex(&l, &t);
    }
    if (!rc && t.type == T_LBRACE) {
        rc = parse_matchers(&l, out, &cap, &val);
        if (!rc)
            rc = lex(&l, &t);
    } else if (!rc && !have_name) {
        rc = unexpected(&l, &t, NULL);
    }
    if (!rc && t.type != T_EOF)
        rc = unexpected(&l, &t, NULL);
    if (!rc && have_name)
        rc = add_matcher(&l, out, &cap, MP_MATCH_EQUAL, mp_str_c(MP_LABEL_METRIC_NAME),
                         (struct mp_str){s + name.start, name.end - name.start}, name.start);
    mp_buf_fini(&val);
    if (rc)
        cmd_selector_fini(out);
    return rc;
}

void cmd_selector_fini(struct cmd_selector *sel)
{
    if (!sel)
        return;
    for (size_t i = 0; i < sel->n; i++)
        mp_matcher_destroy(sel->m[i]);
    mp_free(sel->m);
    *sel = (struct cmd_selector){0};
}

int cmd_selector_check_nonempty(const struct cmd_selector *sel, struct mp_err *err)
{
    for (size_t i = 0; i < sel->n; i++)
        if (!mp_matcher_matches_empty(sel->m[i]))
            return 0;
    return mp_err_set(err, MP_EPARSE, "vector selector must contain at least one non-empty matcher");
}
