/* SPDX-License-Identifier: Apache-2.0 */
/* common/regex.c: Go regexp (RE2 syntax, Perl flags) on top of PCRE2.
 *
 * Compile = translate + pcre2_compile. The translator walks the pattern with the rules of Go's
 * regexp/syntax parser (parse.go: parse, repeat, parsePerlFlags, parseEscape, parseClass) and
 * either fails with Go's error text or writes an equivalent PCRE2 pattern:
 *
 *   Go                     PCRE2 output             why
 *   a b é                  a b é                    alnum and non-ASCII verbatim
 *   . + ( { \. (space)     \x{2E} \x{2B} ...        every other literal as a hex escape
 *   \s  \S                 [\t\n\f\r ]  [^...]      Go's \s has no \v, PCRE2's has
 *   \v \a \f \123 \x{41}   \x{0B} ...               PCRE2 \v is a class, \1.. are backrefs
 *   (?P<n>x) (?<n>x)       (x)                      names kept here: Go allows duplicates and
 *                                                   names starting with a digit
 *   (?i)a* after an atom   a*(?i)                   Go applies the * to the atom before
 *   ^*  \b+                (?:^)*  (?:\b)+          Go may repeat empty-width assertions
 *   \p{Any} \p{ASCII}      explicit ranges          names PCRE2 does not know
 *
 * Options: UTF, ANCHORED|ENDANCHORED (the ^(?:re)$ wrapper), DOLLAR_ENDONLY (Go's `$` without
 * (?m) is \z), NEWLINE_LF (only \n ends a line), no UCP (\d \w \b ASCII as in Go), DOTALL for
 * MP_REGEX_DOTALL. Subjects are checked for UTF-8; an invalid one is copied with each bad byte
 * replaced by U+FFFD, which is exactly how Go's matcher sees it, and offsets are mapped back.
 *
 * Fast paths (fast_kind) are found on the raw pattern: a literal, literals joined by `|`
 * (optionally in one group), and LIT.* / LIT.+ / .*LIT / .*LIT.* ; each gives the same answer
 * as the engine (tests compare them on generated inputs). */
#define _GNU_SOURCE /* memmem */
#include "common/matcher.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

#define GO_ERR "error parsing regexp: "
#define MAX_DEPTH 1000
#define MAX_REPEAT 1000
#define SET_BSEARCH_MIN 16

/* ---- process-wide PCRE2 contexts -------------------------------------------------------- */

/* Set while init_once runs: its allocations (contexts, one built-in pattern) abort on OOM
 * instead of honouring mp_alloc_fail_at, which would otherwise kill the first compile. */
static _Thread_local bool g_initing;

static void *pc_malloc(PCRE2_SIZE n, void *ud)
{
    (void)ud;
    /* the process-wide contexts are made once and must not fail under the test hook */
    return g_initing ? mp_xmalloc(n) : mp_malloc(n);
}
static void *pc_xmalloc(PCRE2_SIZE n, void *ud)
{
    (void)ud;
    return mp_xmalloc(n);
}
static void pc_free(void *p, void *ud)
{
    (void)ud;
    mp_free(p);
}

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pcre2_general_context *g_gctx;   /* fallible: compile */
static pcre2_general_context *g_xgctx;  /* aborting: per-thread match data */
static pcre2_compile_context *g_cctx;
static pcre2_code *g_word_rune;         /* Go unicode.IsLetter || IsDigit, for Expand */
static pthread_key_t g_md_key;

static void md_destroy(void *p)
{
    pcre2_match_data_free(p);
}

static void init_once(void)
{
    g_initing = true;
    g_gctx = pcre2_general_context_create(pc_malloc, pc_free, NULL);
    g_xgctx = pcre2_general_context_create(pc_xmalloc, pc_free, NULL);
    g_cctx = pcre2_compile_context_create(g_gctx);
    if (!g_gctx || !g_xgctx || !g_cctx) {
        fprintf(stderr, "common/regex: cannot create PCRE2 contexts\n");
        abort();
    }
    pcre2_set_newline(g_cctx, PCRE2_NEWLINE_LF);
    int ec;
    PCRE2_SIZE eo;
    g_word_rune = pcre2_compile((PCRE2_SPTR) "[\\p{L}\\p{Nd}]", PCRE2_ZERO_TERMINATED,
                                PCRE2_UTF | PCRE2_ANCHORED | PCRE2_ENDANCHORED, &ec, &eo,
                                g_cctx);
    if (pthread_key_create(&g_md_key, md_destroy) != 0 || !g_word_rune) {
        fprintf(stderr, "common/regex: PCRE2 initialisation failed\n");
        abort();
    }
    g_initing = false;
}

/* Per-thread match data with room for at least `pairs` pairs. */
static pcre2_match_data *thread_md(uint32_t pairs)
{
    pcre2_match_data *md = pthread_getspecific(g_md_key);
    if (md && pcre2_get_ovector_count(md) >= pairs)
        return md;
    if (pairs < 32)
        pairs = 32;
    pcre2_match_data *n = pcre2_match_data_create(pairs, g_xgctx);
    if (!n)
        return md && pcre2_get_ovector_count(md) >= pairs ? md : NULL;
    pcre2_match_data_free(md);
    pthread_setspecific(g_md_key, n);
    return n;
}

/* ---- UTF-8 ------------------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at p (Go/RFC 3629 rules: no overlongs, no surrogates,
 * <= U+10FFFF), 0 if invalid. *cp receives the code point. n >= 1. */
static size_t utf8_decode(const unsigned char *p, size_t n, uint32_t *cp)
{
    size_t w = mp_utf8_decode(p, n, cp);
    return w == 1 && p[0] >= 0x80 ? 0 : w;
}

static bool utf8_valid(const char *s, size_t n)
{
    return mp_utf8_valid((struct mp_str){s, n});
}

/* ---- the compiled object ------------------------------------------------------------------ */

enum fast_kind { FAST_NONE, FAST_LITERAL, FAST_SET, FAST_PREFIX, FAST_SUFFIX, FAST_CONTAINS };

struct mp_regex {
    char *source;
    size_t source_len;
    int flags;
    pcre2_code *code;
    bool jit;
    uint32_t ncap;
    char **names; /* [ncap + 1]; NULL entries for unnamed groups */
    enum fast_kind fast;
    bool plus;            /* FAST_PREFIX: `.+` instead of `.*` */
    struct mp_str lit;    /* literal, prefix, suffix or contained text */
    struct mp_str *set;   /* FAST_SET values in pattern order (also FAST_LITERAL: one) */
    struct mp_str *sorted;
    size_t nset;
    char *litbuf;
};

/* ---- translator: Go syntax -> PCRE2 --------------------------------------------------------- */

enum last_kind { LAST_NONE, LAST_ATOM, LAST_ASSERT };

struct group {
    size_t out_start;
    size_t need_max; /* largest repeat product inside (Go repeatIsValid) */
};

struct tr {
    const char *pat;
    size_t len, pos; /* invariant: pos <= len */
    struct mp_buf out;
    struct mp_err *err;
    int status;
    uint32_t ncap;
    char **names;
    size_t names_cap;
    /* The item a following quantifier applies to. */
    enum last_kind last;
    size_t last_start;   /* its first byte in out */
    size_t last_need;    /* its repeat product */
    bool last_repeated;  /* it already carries a quantifier */
    bool prev_was_repeat;/* the previous loop step was a quantifier (Go lastRepeat) */
    size_t repeat_pos;   /* pattern offset of that quantifier */
    size_t flags_at;     /* out offset of (?flags) text after the item, or SIZE_MAX */
    size_t need_committed;
    struct group stack[MAX_DEPTH + 1];
    int depth;
};

static int tr_fail(struct tr *t, const char *code, const char *expr, size_t n)
{
    if (n > 200)
        n = 200;
    t->status = mp_err_set(t->err, MP_EPARSE, GO_ERR "%s: `%.*s`", code, (int)n, expr);
    return t->status;
}

static int tr_emit(struct tr *t, const char *s, size_t n)
{
    int rc = mp_buf_append(&t->out, s, n);
    if (rc)
        t->status = mp_err_set(t->err, rc, "regexp translation: %s", mp_strerror(rc));
    return rc;
}

static int tr_emits(struct tr *t, const char *s)
{
    return tr_emit(t, s, strlen(s));
}

static int tr_emit_hex(struct tr *t, uint32_t cp)
{
    char b[16];
    int n = snprintf(b, sizeof b, "\\x{%X}", (unsigned)cp);
    return tr_emit(t, b, (size_t)n);
}

static bool is_alnum(uint32_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_surrogate(uint32_t c)
{
    return c >= 0xD800 && c <= 0xDFFF;
}

/* Commits the finished item's repeat product into the enclosing group. */
static void tr_commit(struct tr *t)
{
    if (t->last != LAST_NONE && t->last_need > t->need_committed)
        t->need_committed = t->last_need;
}

/* Starts a new item at the current end of out. */
static void tr_item(struct tr *t, enum last_kind k)
{
    tr_commit(t);
    t->last = k;
    t->last_start = t->out.len;
    t->last_need = 1;
    t->last_repeated = false;
    t->flags_at = SIZE_MAX;
}

static int tr_literal(struct tr *t, uint32_t cp)
{
    tr_item(t, is_surrogate(cp) ? LAST_ASSERT : LAST_ATOM);
    if (is_surrogate(cp))
        return tr_emits(t, "(?!)"); /* Go accepts it; no valid subject contains it */
    if (is_alnum(cp) || cp >= 0x80) {
        char b[4];
        return tr_emit(t, b, mp_utf8_encode(cp, b));
    }
    return tr_emit_hex(t, cp);
}

/* Reads one rune at pat[*i]; Go's nextRune. Error: invalid UTF-8 with the rest as Expr. */
static int tr_rune(struct tr *t, size_t *i, uint32_t *cp)
{
    size_t k = utf8_decode((const unsigned char *)t->pat + *i, t->len - *i, cp);
    if (!k)
        return tr_fail(t, "invalid UTF-8", t->pat + *i, t->len - *i);
    *i += k;
    return 0;
}

static int unhex(uint32_t c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F')
        return (int)(c - 'A' + 10);
    return -1;
}

/* Go parseEscape: pat[*i] is '\\'. On success *cp is the rune and *i is past it. */
static int tr_escape(struct tr *t, size_t *i, uint32_t *cp)
{
    size_t s = *i, j = *i + 1;
    if (j >= t->len)
        return tr_fail(t, "trailing backslash at end of expression", "", 0);
    uint32_t c = 0;
    if (tr_rune(t, &j, &c))
        return t->status;
    switch (c) {
    case '1': case '2': case '3': case '4': case '5': case '6': case '7':
        if (j >= t->len || t->pat[j] < '0' || t->pat[j] > '7')
            break; /* a backreference: not supported */
        __attribute__((fallthrough));
    case '0': {
        uint32_t r = c - '0';
        for (int k = 1; k < 3 && j < t->len && t->pat[j] >= '0' && t->pat[j] <= '7'; k++)
            r = r * 8 + (uint32_t)(t->pat[j++] - '0');
        *cp = r;
        *i = j;
        return 0;
    }
    case 'x': {
        if (j >= t->len)
            break;
        if (tr_rune(t, &j, &c))
            return t->status;
        if (c == '{') {
            uint32_t r = 0;
            int nhex = 0;
            for (;;) {
                if (j >= t->len)
                    goto bad;
                if (tr_rune(t, &j, &c))
                    return t->status;
                if (c == '}')
                    break;
                int v = unhex(c);
                if (v < 0)
                    goto bad;
                r = r * 16 + (uint32_t)v;
                if (r > 0x10FFFF)
                    goto bad;
                nhex++;
            }
            if (!nhex)
                goto bad;
            *cp = r;
            *i = j;
            return 0;
        }
        int x = unhex(c);
        uint32_t c2 = 0xFFFD;
        if (j < t->len && tr_rune(t, &j, &c2))
            return t->status;
        int y = unhex(c2);
        if (x < 0 || y < 0)
            break;
        *cp = (uint32_t)(x * 16 + y);
        *i = j;
        return 0;
    }
    case 'a': *cp = '\a'; *i = j; return 0;
    case 'f': *cp = '\f'; *i = j; return 0;
    case 'n': *cp = '\n'; *i = j; return 0;
    case 'r': *cp = '\r'; *i = j; return 0;
    case 't': *cp = '\t'; *i = j; return 0;
    case 'v': *cp = '\v'; *i = j; return 0;
    default:
        if (c < 0x80 && !is_alnum(c)) {
            *cp = c;
            *i = j;
            return 0;
        }
        break;
    }
bad:
    return tr_fail(t, "invalid escape sequence", t->pat + s, j - s);
}

/* Perl class escapes \d \D \s \S \w \W as PCRE2 text; in_class selects the form that can sit
 * inside [...]. NULL if pat[i..] is not one. */
static const char *perl_class(const char *p, size_t n, bool in_class)
{
    if (n < 2 || p[0] != '\\')
        return NULL;
    switch (p[1]) {
    case 'd': return "\\d";
    case 'D': return "\\D";
    case 'w': return "\\w";
    case 'W': return "\\W";
    case 's': return in_class ? "\\t\\n\\f\\r\\x{20}" : "[\\t\\n\\f\\r\\x{20}]";
    case 'S':
        return in_class ? "\\x{0}-\\x{8}\\x{B}\\x{E}-\\x{1F}\\x{21}-\\x{D7FF}\\x{E000}-\\x{10FFFF}"
                        : "[^\\t\\n\\f\\r\\x{20}]";
    default: return NULL;
    }
}

/* Checks that PCRE2 knows \p{name} (Go's tables and PCRE2's agree on categories and
 * scripts). */
static bool pcre2_knows_property(const char *name, size_t n)
{
    char pat[96];
    if (n > 64)
        return false;
    int k = snprintf(pat, sizeof pat, "\\p{%.*s}", (int)n, name);
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)pat, (PCRE2_SIZE)k, PCRE2_UTF, &ec, &eo, g_cctx);
    if (!c)
        return false;
    pcre2_code_free(c);
    return true;
}

/* Go parseUnicodeClass at pat[*i] ("\p" or "\P"). Writes the PCRE2 form (class-internal
 * when in_class). Returns 0, or the error status. */
static int tr_unicode_class(struct tr *t, size_t *i, bool in_class)
{
    size_t s = *i, j = *i + 2;
    bool neg = t->pat[s + 1] == 'P';
    const char *name;
    size_t nlen;
    size_t seq_end;
    if (j >= t->len)
        return tr_fail(t, "invalid character class range", t->pat + s, 2);
    if (t->pat[j] != '{') {
        uint32_t c = 0;
        size_t k = j;
        if (tr_rune(t, &k, &c))
            return t->status;
        name = t->pat + j;
        nlen = k - j;
        seq_end = k;
    } else {
        const char *end = memchr(t->pat + s, '}', t->len - s);
        if (!end) {
            if (!utf8_valid(t->pat + s, t->len - s))
                return tr_fail(t, "invalid UTF-8", t->pat + s, t->len - s);
            return tr_fail(t, "invalid character class range", t->pat + s, t->len - s);
        }
        seq_end = (size_t)(end - t->pat) + 1;
        name = t->pat + j + 1;
        nlen = (size_t)(end - name);
        if (!utf8_valid(name, nlen))
            return tr_fail(t, "invalid UTF-8", name, nlen);
    }
    if (nlen && name[0] == '^') {
        neg = !neg;
        name++;
        nlen--;
    }
    /* Go 1.2x tables: exact names. PCRE2 is looser (case, spaces), so check the shape. */
    bool shape = nlen > 0 && name[0] >= 'A' && name[0] <= 'Z';
    for (size_t k = 0; shape && k < nlen; k++)
        shape = is_alnum((unsigned char)name[k]) || name[k] == '_';
    const char *txt = NULL;
    char buf[96];
    static const char all[] = "\\x{0}-\\x{D7FF}\\x{E000}-\\x{10FFFF}";
    static const char non_ascii[] = "\\x{80}-\\x{D7FF}\\x{E000}-\\x{10FFFF}";
    if (shape && nlen == 3 && memcmp(name, "Any", 3) == 0) {
        txt = neg ? "" : all;
    } else if (shape && nlen == 5 && memcmp(name, "ASCII", 5) == 0) {
        txt = neg ? non_ascii : "\\x{0}-\\x{7F}";
    } else if (shape && nlen == 8 && memcmp(name, "Assigned", 8) == 0) {
        txt = neg ? "\\p{Cn}" : "\\P{Cn}";
    } else if (shape && pcre2_knows_property(name, nlen)) {
        snprintf(buf, sizeof buf, "\\%c{%.*s}", neg ? 'P' : 'p', (int)nlen, name);
        txt = buf;
    } else {
        return tr_fail(t, "invalid character class range", t->pat + s, seq_end - s);
    }
    *i = seq_end;
    if (in_class)
        return tr_emits(t, txt);
    tr_item(t, *txt ? LAST_ATOM : LAST_ASSERT);
    if (!*txt)
        return tr_emits(t, "(?!)");
    if (tr_emits(t, "["))
        return t->status;
    if (tr_emits(t, txt))
        return t->status;
    return tr_emits(t, "]");
}

static int class_char(struct tr *t, uint32_t cp)
{
    if (is_alnum(cp) || (cp >= 0x80 && !is_surrogate(cp))) {
        char b[4];
        return tr_emit(t, b, mp_utf8_encode(cp, b));
    }
    return tr_emit_hex(t, cp);
}

/* Emits lo-hi without surrogates. */
static int class_range(struct tr *t, uint32_t lo, uint32_t hi)
{
    if (lo <= 0xDFFF && hi >= 0xD800) {
        if (lo < 0xD800 && class_range(t, lo, 0xD7FF))
            return t->status;
        if (hi > 0xDFFF && class_range(t, 0xE000, hi))
            return t->status;
        return 0;
    }
    if (class_char(t, lo))
        return t->status;
    if (hi == lo)
        return 0;
    if (tr_emits(t, "-"))
        return t->status;
    return class_char(t, hi);
}

static bool posix_class_known(const char *n, size_t len)
{
    static const char *names[] = {"alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph",
                                  "lower", "print", "punct", "space", "upper", "word", "xdigit"};
    if (len && n[0] == '^') {
        n++;
        len--;
    }
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        if (strlen(names[k]) == len && memcmp(names[k], n, len) == 0)
            return true;
    return false;
}

/* Go parseClass; pat[pos] is '['. */
static int tr_class(struct tr *t)
{
    size_t s = t->pos, i = s + 1;
    tr_item(t, LAST_ATOM);
    size_t class_start = t->out.len;
    bool neg = false;
    if (i < t->len && t->pat[i] == '^') {
        neg = true;
        i++;
    }
    if (tr_emits(t, neg ? "[^" : "["))
        return t->status;
    size_t items_start = t->out.len;
    bool first = true;
    while (i >= t->len || t->pat[i] != ']' || first) {
        first = false;
        if (t->len - i > 2 && t->pat[i] == '[' && t->pat[i + 1] == ':') {
            const char *e = NULL;
            for (size_t k = i + 2; k + 1 < t->len; k++)
                if (t->pat[k] == ':' && t->pat[k + 1] == ']') {
                    e = t->pat + k;
                    break;
                }
            if (e) {
                size_t nlen = (size_t)(e - (t->pat + i + 2));
                size_t full = nlen + 4;
                if (!posix_class_known(t->pat + i + 2, nlen))
                    return tr_fail(t, "invalid character class range", t->pat + i, full);
                if (tr_emit(t, t->pat + i, full))
                    return t->status;
                i += full;
                continue;
            }
        }
        if (t->len - i >= 2 && t->pat[i] == '\\' && (t->pat[i + 1] == 'p' || t->pat[i + 1] == 'P')) {
            if (tr_unicode_class(t, &i, true))
                return t->status;
            continue;
        }
        const char *pc = perl_class(t->pat + i, t->len - i, true);
        if (pc) {
            if (tr_emits(t, pc))
                return t->status;
            i += 2;
            continue;
        }
        size_t rng = i;
        uint32_t lo = 0, hi = 0;
        if (i >= t->len)
            return tr_fail(t, "missing closing ]", t->pat + s, t->len - s);
        if (t->pat[i] == '\\') {
            if (tr_escape(t, &i, &lo))
                return t->status;
        } else if (tr_rune(t, &i, &lo)) {
            return t->status;
        }
        hi = lo;
        if (t->len - i >= 2 && t->pat[i] == '-' && t->pat[i + 1] != ']') {
            i++;
            if (i >= t->len)
                return tr_fail(t, "missing closing ]", t->pat + s, t->len - s);
            if (t->pat[i] == '\\') {
                if (tr_escape(t, &i, &hi))
                    return t->status;
            } else if (tr_rune(t, &i, &hi)) {
                return t->status;
            }
            if (hi < lo)
                return tr_fail(t, "invalid character class range", t->pat + rng, i - rng);
        }
        if (class_range(t, lo, hi))
            return t->status;
    }
    i++; /* ] */
    t->pos = i;
    if (t->out.len == items_start) {
        /* Only surrogates or \P{Any}: matches nothing, or anything when negated. */
        t->out.len = class_start;
        if (!neg)
            t->last = LAST_ASSERT;
        return tr_emits(t, neg ? "[\\x{0}-\\x{D7FF}\\x{E000}-\\x{10FFFF}]" : "(?!)");
    }
    return tr_emits(t, "]");
}

/* Inserts text at out offset at (used to wrap an item in a group). */
static int tr_insert(struct tr *t, size_t at, const char *s)
{
    size_t n = strlen(s), tail = t->out.len - at;
    if (tr_emit(t, s, n))
        return t->status;
    memmove(t->out.data + at + n, t->out.data + at, tail);
    memcpy(t->out.data + at, s, n);
    return 0;
}

/* Applies a quantifier; op is its PCRE2 text, [qs, t->pos) its source (t->pos already past
 * it and past a lazy '?'). min/max as Go (max -1 = unbounded); counted: {n,m} form. */
static int tr_repeat(struct tr *t, size_t qs, const char *op, int min, int max, bool counted)
{
    if (t->prev_was_repeat)
        return tr_fail(t, "invalid nested repetition operator", t->pat + t->repeat_pos,
                       t->pos - t->repeat_pos);
    if (t->last == LAST_NONE)
        return tr_fail(t, "missing argument to repetition operator", t->pat + qs, t->pos - qs);
    size_t need = t->last_need;
    if (counted && (min >= 2 || max >= 2)) {
        int m = max < 0 ? min : max;
        if (m > 0 && (size_t)m * need > MAX_REPEAT)
            return tr_fail(t, "invalid repeat count", t->pat + qs, t->pos - qs);
    }
    if (counted) {
        int m = max < 0 ? min : max;
        need = m == 0 ? 1 : (size_t)m * need;
    }
    /* Flags set between the item and the quantifier move after it. */
    char flags[64];
    size_t nflags = 0;
    if (t->flags_at != SIZE_MAX) {
        nflags = t->out.len - t->flags_at;
        if (nflags >= sizeof flags)
            return tr_fail(t, "invalid or unsupported Perl syntax", t->pat + qs, t->pos - qs);
        memcpy(flags, t->out.data + t->flags_at, nflags);
        t->out.len = t->flags_at;
        t->out.data[t->out.len] = '\0';
    }
    if (t->last == LAST_ASSERT || t->last_repeated) {
        if (tr_insert(t, t->last_start, "(?:") || tr_emits(t, ")"))
            return t->status;
    }
    if (tr_emits(t, op))
        return t->status;
    if (nflags && tr_emit(t, flags, nflags))
        return t->status;
    t->flags_at = SIZE_MAX;
    t->last = LAST_ATOM;
    t->last_need = need;
    t->last_repeated = true;
    t->repeat_pos = qs;
    return 0;
}

/* Go parseRepeat on pat[i..] ('{'). Returns true with min/max/end when well formed. */
static bool parse_repeat(const char *p, size_t n, size_t i, int *min, int *max, size_t *end)
{
    if (i >= n || p[i] != '{')
        return false;
    i++;
    long v[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        if (k == 1) {
            if (i >= n)
                return false;
            if (p[i] != ',') {
                v[1] = v[0];
                break;
            }
            i++;
            if (i >= n)
                return false;
            if (p[i] == '}') {
                v[1] = -1;
                break;
            }
        }
        if (i >= n || p[i] < '0' || p[i] > '9')
            return false;
        if (p[i] == '0' && i + 1 < n && p[i + 1] >= '0' && p[i + 1] <= '9')
            return false; /* leading zeros */
        long x = 0;
        for (; i < n && p[i] >= '0' && p[i] <= '9'; i++)
            if (x >= 0) {
                x = x >= 100000000 ? -1 : x * 10 + (p[i] - '0');
            }
        v[k] = x;
        if (k == 1 && x < 0)
            v[0] = -1;
    }
    if (i >= n || p[i] != '}')
        return false;
    *min = (int)v[0];
    *max = (int)v[1];
    *end = i + 1;
    return true;
}

static int tr_add_name(struct tr *t, uint32_t cap, const char *name, size_t n)
{
    if (cap >= t->names_cap) {
        size_t nc = t->names_cap ? t->names_cap * 2 : 8;
        while (nc <= cap)
            nc *= 2;
        char **p = mp_realloc(t->names, nc * sizeof *p);
        if (!p)
            return t->status = mp_err_set(t->err, MP_ENOMEM, "out of memory");
        memset(p + t->names_cap, 0, (nc - t->names_cap) * sizeof *p);
        t->names = p;
        t->names_cap = nc;
    }
    if (name) {
        t->names[cap] = mp_malloc(n + 1);
        if (!t->names[cap])
            return t->status = mp_err_set(t->err, MP_ENOMEM, "out of memory");
        memcpy(t->names[cap], name, n);
        t->names[cap][n] = '\0';
    }
    return 0;
}

static int tr_open(struct tr *t, bool capture, const char *name, size_t nlen)
{
    if (t->depth >= MAX_DEPTH)
        return tr_fail(t, "expression nests too deeply", t->pat, t->len);
    tr_commit(t);
    if (capture) {
        t->ncap++;
        if (tr_add_name(t, t->ncap, name, nlen))
            return t->status;
    }
    struct group *g = &t->stack[t->depth++];
    g->out_start = t->out.len;
    g->need_max = t->need_committed;
    t->need_committed = 1;
    t->last = LAST_NONE;
    t->flags_at = SIZE_MAX;
    return tr_emits(t, capture ? "(" : "(?:");
}

/* Go parsePerlFlags; pat[pos..] starts with "(?". */
static int tr_perl_flags(struct tr *t)
{
    const char *s = t->pat + t->pos;
    size_t n = t->len - t->pos;
    bool with_p = n > 4 && s[2] == 'P' && s[3] == '<';
    bool with_name = n > 3 && s[2] == '<';
    if (with_p || with_name) {
        size_t start = with_p ? 4 : 3;
        const char *e = memchr(s, '>', n);
        if (!e) {
            if (!utf8_valid(s, n))
                return tr_fail(t, "invalid UTF-8", s, n);
            return tr_fail(t, "invalid named capture", s, n);
        }
        size_t end = (size_t)(e - s);
        const char *name = s + start;
        size_t nlen = end >= start ? end - start : 0;
        if (!utf8_valid(name, nlen))
            return tr_fail(t, "invalid UTF-8", name, nlen);
        bool ok = nlen > 0;
        for (size_t k = 0; ok && k < nlen; k++)
            ok = is_alnum((unsigned char)name[k]) || name[k] == '_';
        if (!ok)
            return tr_fail(t, "invalid named capture", s, end + 1);
        t->pos += end + 1;
        return tr_open(t, true, name, nlen);
    }
    size_t i = 2;
    int sign = 1;
    bool saw = false;
    char fl[32];
    size_t nfl = 0;
    while (i < n) {
        uint32_t c = 0;
        size_t k = t->pos + i;
        if (tr_rune(t, &k, &c))
            return t->status;
        i = k - t->pos;
        switch (c) {
        case 'i': case 'm': case 's': case 'U':
            saw = true;
            if (nfl < sizeof fl - 1)
                fl[nfl++] = (char)c;
            continue;
        case '-':
            if (sign < 0)
                goto bad;
            sign = -1;
            saw = false;
            if (nfl < sizeof fl - 1)
                fl[nfl++] = '-';
            continue;
        case ':':
        case ')':
            if (sign < 0 && !saw)
                goto bad;
            t->pos += i;
            if (c == ':') {
                if (tr_open(t, false, NULL, 0))
                    return t->status;
                if (nfl) {
                    /* "(?:" was written; turn it into "(?flags:" */
                    t->out.len -= 1;
                    if (tr_emit(t, fl, nfl) || tr_emits(t, ":"))
                        return t->status;
                }
                return 0;
            }
            if (!nfl)
                return 0; /* "(?)" changes nothing */
            if (t->flags_at == SIZE_MAX)
                t->flags_at = t->out.len;
            if (tr_emits(t, "(?") || tr_emit(t, fl, nfl) || tr_emits(t, ")"))
                return t->status;
            return 0;
        default:
            goto bad;
        }
    }
bad:
    return tr_fail(t, "invalid or unsupported Perl syntax", s, i);
}

static int tr_close(struct tr *t)
{
    if (t->depth == 0)
        return tr_fail(t, "unexpected )", t->pat, t->len);
    tr_commit(t);
    struct group *g = &t->stack[--t->depth];
    size_t inner = t->need_committed;
    t->need_committed = g->need_max;
    t->pos++;
    if (tr_emits(t, ")"))
        return t->status;
    t->last = LAST_ATOM;
    t->last_start = g->out_start;
    t->last_need = inner;
    t->last_repeated = false;
    t->flags_at = SIZE_MAX;
    return 0;
}

/* One step of Go's parse loop. */
static int tr_step(struct tr *t)
{
    char c = t->pat[t->pos];
    bool repeat = false;
    size_t qs = t->pos;
    switch (c) {
    case '(':
        if (t->len - t->pos >= 2 && t->pat[t->pos + 1] == '?') {
            if (tr_perl_flags(t))
                return t->status;
            break;
        }
        t->pos++;
        if (tr_open(t, true, NULL, 0))
            return t->status;
        break;
    case '|':
        tr_commit(t);
        t->last = LAST_NONE;
        t->flags_at = SIZE_MAX;
        t->pos++;
        if (tr_emits(t, "|"))
            return t->status;
        break;
    case ')':
        if (tr_close(t))
            return t->status;
        break;
    case '^':
    case '$':
        tr_item(t, LAST_ASSERT);
        t->pos++;
        if (tr_emit(t, &c, 1))
            return t->status;
        break;
    case '.':
        tr_item(t, LAST_ATOM);
        t->pos++;
        if (tr_emits(t, "."))
            return t->status;
        break;
    case '[':
        if (tr_class(t))
            return t->status;
        break;
    case '*':
    case '+':
    case '?': {
        char op[3] = {c, 0, 0};
        t->pos++;
        if (t->pos < t->len && t->pat[t->pos] == '?') {
            op[1] = '?';
            t->pos++;
        }
        if (tr_repeat(t, qs, op, 0, 0, false))
            return t->status;
        repeat = true;
        break;
    }
    case '{': {
        int min, max;
        size_t end;
        if (!parse_repeat(t->pat, t->len, t->pos, &min, &max, &end)) {
            t->pos++;
            if (tr_literal(t, '{'))
                return t->status;
            break;
        }
        t->pos = end;
        if (min < 0 || min > MAX_REPEAT || max > MAX_REPEAT || (max >= 0 && min > max))
            return tr_fail(t, "invalid repeat count", t->pat + qs, end - qs);
        char op[40];
        if (max == min)
            snprintf(op, sizeof op, "{%d}", min);
        else if (max < 0)
            snprintf(op, sizeof op, "{%d,}", min);
        else
            snprintf(op, sizeof op, "{%d,%d}", min, max);
        if (t->pos < t->len && t->pat[t->pos] == '?') {
            strcat(op, "?");
            t->pos++;
        }
        if (tr_repeat(t, qs, op, min, max, true))
            return t->status;
        repeat = true;
        break;
    }
    case '\\': {
        if (t->len - t->pos >= 2) {
            char e = t->pat[t->pos + 1];
            const char *as = NULL;
            switch (e) {
            case 'A': as = "\\A"; break;
            case 'b': as = "\\b"; break;
            case 'B': as = "\\B"; break;
            case 'z': as = "\\z"; break;
            case 'C': return tr_fail(t, "invalid escape sequence", t->pat + t->pos, 2);
            case 'Q': {
                size_t i = t->pos + 2, stop = t->len, next = t->len;
                for (size_t k = i; k + 1 < t->len; k++)
                    if (t->pat[k] == '\\' && t->pat[k + 1] == 'E') {
                        stop = k;
                        next = k + 2;
                        break;
                    }
                while (i < stop) {
                    uint32_t cp = 0;
                    if (tr_rune(t, &i, &cp))
                        return t->status;
                    if (tr_literal(t, cp))
                        return t->status;
                }
                t->pos = next;
                goto done;
            }
            default: break;
            }
            if (as) {
                tr_item(t, LAST_ASSERT);
                t->pos += 2;
                if (tr_emits(t, as))
                    return t->status;
                break;
            }
            if (e == 'p' || e == 'P') {
                if (tr_unicode_class(t, &t->pos, false))
                    return t->status;
                break;
            }
            const char *pc = perl_class(t->pat + t->pos, t->len - t->pos, false);
            if (pc) {
                tr_item(t, LAST_ATOM);
                t->pos += 2;
                if (tr_emits(t, pc))
                    return t->status;
                break;
            }
        }
        uint32_t cp = 0;
        if (tr_escape(t, &t->pos, &cp))
            return t->status;
        if (tr_literal(t, cp))
            return t->status;
        break;
    }
    default: {
        uint32_t cp = 0;
        if (tr_rune(t, &t->pos, &cp))
            return t->status;
        if (tr_literal(t, cp))
            return t->status;
        break;
    }
    }
done:
    t->prev_was_repeat = repeat;
    return 0;
}

static void names_free(char **names, size_t n)
{
    if (!names)
        return;
    for (size_t i = 0; i < n; i++)
        mp_free(names[i]);
    mp_free(names);
}

/* ---- fast-path analysis on the raw pattern -------------------------------------------------- */

enum tok { TOK_LIT, TOK_STAR, TOK_PLUS };

struct fast_item {
    enum tok kind;
    size_t off, len; /* TOK_LIT: unescaped bytes at buf.data + off */
};

/* Splits p into branches (at '|') of literals and `.*` / `.+`. Unescaped literal bytes go to
 * buf. branch_ends[b] is one past the last item of branch b. Returns false when anything
 * else appears (conservative: such patterns simply use the engine). */
static bool fast_scan(const char *p, size_t n, struct mp_buf *buf, struct fast_item *items,
                      size_t *nitems, size_t max_items, size_t *branch_ends, size_t *nbranch,
                      size_t max_branch)
{
    size_t ni = 0, nb = 0, i = 0;
    bool in_lit = false;
    while (i < n) {
        char c = p[i];
        if (c == '|') {
            if (nb + 1 >= max_branch)
                return false;
            branch_ends[nb++] = ni;
            in_lit = false;
            i++;
            continue;
        }
        if (c == '.') {
            if (i + 1 >= n || (p[i + 1] != '*' && p[i + 1] != '+'))
                return false;
            if (i + 2 < n && memchr("*+?{", p[i + 2], 4))
                return false;
            if (ni >= max_items)
                return false;
            items[ni++] = (struct fast_item){p[i + 1] == '*' ? TOK_STAR : TOK_PLUS, 0, 0};
            in_lit = false;
            i += 2;
            continue;
        }
        char lit[4];
        size_t ln, adv;
        if (c == '\\') {
            if (i + 1 >= n)
                return false;
            unsigned char e = (unsigned char)p[i + 1];
            if (e >= 0x80 || is_alnum(e))
                return false;
            lit[0] = (char)e;
            ln = 1;
            adv = 2;
        } else if (memchr("*+?{}()[]^$", c, 11)) {
            return false;
        } else {
            uint32_t cp = 0;
            ln = utf8_decode((const unsigned char *)p + i, n - i, &cp);
            if (!ln || cp == 0xFFFD)
                return false;
            memcpy(lit, p + i, ln);
            adv = ln;
        }
        if (i + adv < n && memchr("*+?{", p[i + adv], 4))
            return false; /* the literal is quantified */
        if (!in_lit) {
            if (ni >= max_items)
                return false;
            items[ni++] = (struct fast_item){TOK_LIT, buf->len, 0};
            in_lit = true;
        }
        if (mp_buf_append(buf, lit, ln))
            return false;
        items[ni - 1].len += ln;
        i += adv;
    }
    if (nb + 1 > max_branch)
        return false;
    branch_ends[nb++] = ni;
    *nitems = ni;
    *nbranch = nb;
    return true;
}

static int set_cmp(const void *a, const void *b)
{
    return mp_str_cmp(*(const struct mp_str *)a, *(const struct mp_str *)b);
}

/* Fills the fast-path fields of re (FAST_NONE if nothing applies). Out of memory only means
 * no fast path. */
static void fast_analyze(struct mp_regex *re)
{
    const char *p = re->source;
    size_t n = re->source_len;
    /* One enclosing group without inner parentheses: (a|b) or (?:a|b). */
    if (n >= 2 && p[0] == '(' && p[n - 1] == ')') {
        size_t skip = (n >= 4 && p[1] == '?' && p[2] == ':') ? 3 : (p[1] == '?' ? 0 : 1);
        if (skip && !memchr(p + skip, '(', n - 1 - skip) && !memchr(p + skip, ')', n - 1 - skip) &&
            p[n - 2] != '\\') {
            p += skip;
            n -= skip + 1;
        }
    }
    enum { MAXI = 512 };
    struct fast_item *items = mp_malloc(MAXI * sizeof *items);
    size_t *ends = mp_malloc(MAXI * sizeof *ends);
    struct mp_buf buf;
    mp_buf_init(&buf, 1 << 20);
    size_t ni = 0, nb = 0;
    if (!items || !ends || !fast_scan(p, n, &buf, items, &ni, MAXI, ends, &nb, MAXI))
        goto out;
#define LIT(k) ((struct mp_str){items[k].len ? buf.data + items[k].off : "", items[k].len})
    bool dotall = re->flags & MP_REGEX_DOTALL;
    if (nb > 1) {
        size_t b0 = 0;
        for (size_t b = 0; b < nb; b++) {
            size_t cnt = ends[b] - b0;
            if (cnt > 1 || (cnt == 1 && items[b0].kind != TOK_LIT))
                goto out;
            b0 = ends[b];
        }
        re->set = mp_malloc(nb * sizeof *re->set);
        re->sorted = mp_malloc(nb * sizeof *re->sorted);
        if (!re->set || !re->sorted)
            goto out;
        b0 = 0;
        for (size_t b = 0; b < nb; b++) {
            re->set[b] = ends[b] > b0 ? LIT(b0) : (struct mp_str){"", 0};
            b0 = ends[b];
        }
        memcpy(re->sorted, re->set, nb * sizeof *re->set);
        qsort(re->sorted, nb, sizeof *re->sorted, set_cmp);
        re->nset = nb;
        re->fast = FAST_SET;
    } else if (ni == 0 || (ni == 1 && items[0].kind == TOK_LIT)) {
        re->set = mp_malloc(sizeof *re->set);
        if (!re->set)
            goto out;
        re->set[0] = ni ? LIT(0) : (struct mp_str){"", 0};
        re->nset = 1;
        re->lit = re->set[0];
        re->fast = FAST_LITERAL;
    } else if (ni == 1) {
        re->fast = FAST_PREFIX;
        re->plus = items[0].kind == TOK_PLUS;
        re->lit = (struct mp_str){"", 0};
    } else if (ni == 2 && items[0].kind == TOK_LIT && items[1].kind != TOK_LIT) {
        re->fast = FAST_PREFIX;
        re->plus = items[1].kind == TOK_PLUS;
        re->lit = LIT(0);
    } else if (ni == 2 && items[0].kind == TOK_STAR && items[1].kind == TOK_LIT) {
        re->fast = FAST_SUFFIX;
        re->lit = LIT(1);
    } else if (ni == 3 && items[0].kind == TOK_STAR && items[1].kind == TOK_LIT &&
               items[2].kind == TOK_STAR &&
               (dotall || !memchr(LIT(1).ptr, '\n', items[1].len))) {
        re->fast = FAST_CONTAINS;
        re->lit = LIT(1);
    }
#undef LIT
out:
    if (re->fast == FAST_NONE) {
        mp_free(re->set);
        mp_free(re->sorted);
        re->set = re->sorted = NULL;
        re->nset = 0;
        mp_buf_fini(&buf);
    } else {
        re->litbuf = buf.data; /* the literals point into it */
    }
    mp_free(items);
    mp_free(ends);
}

/* ---- public API ---------------------------------------------------------------------------- */

int mp_regex_compile(struct mp_str pattern, int flags, struct mp_regex **out, struct mp_err *err)
{
    pthread_once(&g_once, init_once);
    *out = NULL;
    if (!utf8_valid(pattern.ptr, pattern.len)) {
        size_t i = 0;
        while (i < pattern.len) {
            uint32_t cp = 0;
            size_t k = utf8_decode((const unsigned char *)pattern.ptr + i, pattern.len - i, &cp);
            if (!k)
                break;
            i += k;
        }
        int n = (int)(pattern.len - i > 200 ? 200 : pattern.len - i);
        return mp_err_set(err, MP_EPARSE, GO_ERR "invalid UTF-8: `%.*s`", n, pattern.ptr + i);
    }
    struct tr *t = mp_malloc(sizeof *t);
    if (!t)
        return mp_err_set(err, MP_ENOMEM, "out of memory");
    memset(t, 0, sizeof *t);
    t->pat = pattern.len ? pattern.ptr : "";
    t->len = pattern.len;
    t->err = err;
    t->need_committed = 1;
    t->flags_at = SIZE_MAX;
    mp_buf_init(&t->out, 0);
    int rc = tr_add_name(t, 0, NULL, 0);
    while (!rc && t->pos < t->len)
        rc = tr_step(t);
    if (!rc && t->depth > 0)
        rc = tr_fail(t, "missing closing )", t->pat, t->len);
    if (!rc && !t->out.data)
        rc = tr_emit(t, "", 0);
    struct mp_regex *re = NULL;
    if (!rc) {
        re = mp_calloc(1, sizeof *re);
        char *src = mp_malloc(pattern.len + 1);
        if (!re || !src) {
            mp_free(re);
            mp_free(src);
            re = NULL;
            rc = mp_err_set(err, MP_ENOMEM, "out of memory");
        } else {
            memcpy(src, t->pat, pattern.len);
            src[pattern.len] = '\0';
            re->source = src;
            re->source_len = pattern.len;
            re->flags = flags;
            re->ncap = t->ncap;
            re->names = t->names;
            t->names = NULL;
        }
    }
    if (!rc) {
        uint32_t opts = PCRE2_UTF | PCRE2_NO_UTF_CHECK | PCRE2_ANCHORED | PCRE2_ENDANCHORED |
                        PCRE2_DOLLAR_ENDONLY | PCRE2_ALT_CIRCUMFLEX | PCRE2_NEVER_BACKSLASH_C;
        if (flags & MP_REGEX_DOTALL)
            opts |= PCRE2_DOTALL;
        int ec;
        PCRE2_SIZE eo;
        re->code = pcre2_compile((PCRE2_SPTR)t->out.data, t->out.len, opts, &ec, &eo, g_cctx);
        if (!re->code) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(ec, msg, sizeof msg);
            rc = ec == PCRE2_ERROR_HEAP_FAILED
                     ? mp_err_set(err, MP_ENOMEM, "out of memory")
                     : mp_err_set(err, MP_EPARSE, GO_ERR "%s: `%.*s`", (const char *)msg,
                                  (int)(pattern.len > 200 ? 200 : pattern.len), t->pat);
        } else {
            re->jit = pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE) == 0;
            fast_analyze(re);
        }
    }
    names_free(t->names, t->names_cap);
    mp_buf_fini(&t->out);
    mp_free(t);
    if (rc) {
        mp_regex_destroy(re);
        return rc;
    }
    *out = re;
    return 0;
}

void mp_regex_destroy(struct mp_regex *re)
{
    if (!re)
        return;
    pcre2_code_free(re->code);
    names_free(re->names, (size_t)re->ncap + 1);
    mp_free(re->set);
    mp_free(re->sorted);
    mp_free(re->litbuf);
    mp_free(re->source);
    mp_free(re);
}

const char *mp_regex_source(const struct mp_regex *re)
{
    return re->source;
}

size_t mp_regex_groups(const struct mp_regex *re)
{
    return re->ncap;
}

const char *mp_regex_fast_kind(const struct mp_regex *re)
{
    switch (re->fast) {
    case FAST_LITERAL: return "literal";
    case FAST_SET: return "set";
    case FAST_PREFIX: return "prefix";
    case FAST_SUFFIX: return "suffix";
    case FAST_CONTAINS: return "contains";
    default: return "pcre2";
    }
}

bool mp_regex_set_values(const struct mp_regex *re, const struct mp_str **vals, size_t *n)
{
    if (re->fast != FAST_SET && re->fast != FAST_LITERAL)
        return false;
    *vals = re->set;
    *n = re->nset;
    return true;
}

bool mp_regex_prefix(const struct mp_regex *re, struct mp_str *prefix)
{
    if ((re->fast == FAST_PREFIX || re->fast == FAST_LITERAL) && re->lit.len) {
        *prefix = re->lit;
        return true;
    }
    return false;
}

static bool no_nl(const char *p, size_t n)
{
    return n == 0 || !memchr(p, '\n', n);
}

/* Subject prepared for PCRE2: valid UTF-8, with a map back to the caller's offsets when it
 * had to be rewritten. */
struct subject {
    const char *ptr;
    size_t len;
    char *own;
    size_t *map; /* [len + 1] or NULL for identity */
};

static int subject_prepare(struct subject *sj, struct mp_str s, bool want_map)
{
    sj->own = NULL;
    sj->map = NULL;
    sj->ptr = s.len ? s.ptr : "";
    sj->len = s.len;
    if (utf8_valid(s.ptr, s.len))
        return 0;
    size_t cap;
    if (__builtin_mul_overflow(s.len, (size_t)3, &cap))
        return MP_ENOMEM;
    sj->own = mp_malloc(cap + 1);
    if (want_map)
        sj->map = mp_malloc((cap + 1) * sizeof *sj->map);
    if (!sj->own || (want_map && !sj->map)) {
        mp_free(sj->own);
        mp_free(sj->map);
        return MP_ENOMEM;
    }
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t o = 0;
    for (size_t i = 0; i < s.len;) {
        uint32_t cp = 0;
        size_t k = utf8_decode(p + i, s.len - i, &cp);
        if (!k) {
            if (sj->map)
                for (size_t q = 0; q < 3; q++)
                    sj->map[o + q] = i;
            memcpy(sj->own + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
            continue;
        }
        if (sj->map)
            for (size_t q = 0; q < k; q++)
                sj->map[o + q] = i + q;
        memcpy(sj->own + o, p + i, k);
        o += k;
        i += k;
    }
    if (sj->map)
        sj->map[o] = s.len;
    sj->ptr = sj->own;
    sj->len = o;
    return 0;
}

static void subject_fini(struct subject *sj)
{
    mp_free(sj->own);
    mp_free(sj->map);
}

/* Runs PCRE2; >0 on match (ovector in md), 0 on no match or engine error. */
static int run(const struct mp_regex *re, const struct subject *sj, pcre2_match_data *md)
{
    int rc = re->jit ? pcre2_jit_match(re->code, (PCRE2_SPTR)sj->ptr, sj->len, 0, 0, md, NULL)
                     : pcre2_match(re->code, (PCRE2_SPTR)sj->ptr, sj->len, 0, PCRE2_NO_UTF_CHECK,
                                   md, NULL);
    return rc > 0 ? rc : (rc == 0 ? 1 : 0); /* 0: ovector too small, still a match */
}

static bool engine_match(const struct mp_regex *re, struct mp_str s)
{
    struct subject sj;
    if (subject_prepare(&sj, s, false))
        return false;
    pcre2_match_data *md = thread_md(1);
    bool ok = md && run(re, &sj, md) > 0;
    subject_fini(&sj);
    return ok;
}

bool mp_regex_match(const struct mp_regex *re, struct mp_str s)
{
    bool dotall = re->flags & MP_REGEX_DOTALL;
    switch (re->fast) {
    case FAST_LITERAL:
        return mp_str_eq(s, re->lit);
    case FAST_SET:
        if (re->nset < SET_BSEARCH_MIN) {
            for (size_t i = 0; i < re->nset; i++)
                if (mp_str_eq(s, re->set[i]))
                    return true;
            return false;
        }
        return bsearch(&s, re->sorted, re->nset, sizeof s, set_cmp) != NULL;
    case FAST_PREFIX:
        if (s.len < re->lit.len || (re->lit.len && memcmp(s.ptr, re->lit.ptr, re->lit.len)))
            return false;
        if (re->plus && s.len == re->lit.len)
            return false;
        return dotall || no_nl(s.ptr + re->lit.len, s.len - re->lit.len);
    case FAST_SUFFIX:
        if (s.len < re->lit.len || memcmp(s.ptr + s.len - re->lit.len, re->lit.ptr, re->lit.len))
            return false;
        return dotall || no_nl(s.ptr, s.len - re->lit.len);
    case FAST_CONTAINS:
        if (!dotall && !no_nl(s.ptr, s.len))
            return false;
        return re->lit.len == 0 || (s.len >= re->lit.len && memmem(s.ptr, s.len, re->lit.ptr,
                                                                     re->lit.len) != NULL);
    default:
        return engine_match(re, s);
    }
}

/* Go unicode.IsLetter || unicode.IsDigit || '_' for the rune at p; *k its length (1 for an
 * invalid byte, which Go reads as U+FFFD: not a word rune). */
static bool word_rune(const char *p, size_t n, size_t *k)
{
    unsigned char c = (unsigned char)p[0];
    if (c < 0x80) {
        *k = 1;
        return is_alnum(c) || c == '_';
    }
    uint32_t cp = 0;
    *k = utf8_decode((const unsigned char *)p, n, &cp);
    if (!*k) {
        *k = 1;
        return false;
    }
    /* Not the thread's match data: the caller is reading its ovector. Rare (non-ASCII). */
    pcre2_match_data *md = pcre2_match_data_create(1, g_xgctx);
    bool ok = pcre2_match(g_word_rune, (PCRE2_SPTR)p, *k, 0, PCRE2_NO_UTF_CHECK, md, NULL) >= 0;
    pcre2_match_data_free(md);
    return ok;
}

/* Go regexp.extract: parses a group reference after '$'. */
static bool extract(const char *p, size_t n, struct mp_str *name, long *num, size_t *used)
{
    size_t i = 0;
    bool brace = false;
    if (n && p[0] == '{') {
        brace = true;
        i = 1;
    }
    size_t s = i;
    while (i < n) {
        size_t k;
        if (!word_rune(p + i, n - i, &k))
            break;
        i += k;
    }
    if (i == s)
        return false;
    *name = (struct mp_str){p + s, i - s};
    if (brace) {
        if (i >= n || p[i] != '}')
            return false;
        i++;
    }
    long v = 0;
    for (size_t k = 0; k < name->len; k++) {
        char c = name->ptr[k];
        if (c < '0' || c > '9' || v >= 100000000) {
            v = -1;
            break;
        }
        v = v * 10 + (c - '0');
    }
    if (name->ptr[0] == '0' && name->len > 1)
        v = -1;
    *num = v;
    *used = i;
    return true;
}

static int expand_into(const struct mp_regex *re, struct mp_str s, const struct subject *sj,
                       const PCRE2_SIZE *ov, uint32_t pairs, struct mp_str tmpl,
                       struct mp_buf *out)
{
    const char *p = tmpl.ptr;
    size_t n = tmpl.len;
    int rc = 0;
    while (n) {
        const char *d = memchr(p, '$', n);
        if (!d)
            break;
        size_t before = (size_t)(d - p);
        if ((rc = mp_buf_append(out, p, before)))
            return rc;
        p = d + 1;
        n -= before + 1;
        if (n && p[0] == '$') {
            if ((rc = mp_buf_append(out, "$", 1)))
                return rc;
            p++;
            n--;
            continue;
        }
        struct mp_str name;
        long num;
        size_t used;
        if (!extract(p, n, &name, &num, &used)) {
            if ((rc = mp_buf_append(out, "$", 1)))
                return rc;
            continue;
        }
        p += used;
        n -= used;
        long g = -1;
        if (num >= 0) {
            g = num;
        } else {
            for (uint32_t i = 1; i <= re->ncap; i++)
                if (re->names[i] && strlen(re->names[i]) == name.len &&
                    memcmp(re->names[i], name.ptr, name.len) == 0 && i < pairs &&
                    ov[2 * i] != PCRE2_UNSET) {
                    g = i;
                    break;
                }
        }
        if (g < 0 || (uint64_t)g >= pairs || ov[2 * g] == PCRE2_UNSET)
            continue;
        size_t a = ov[2 * g], b = ov[2 * g + 1];
        if (sj->map) {
            /* Back to the caller's bytes; a replaced byte maps to itself. */
            a = sj->map[a];
            b = b < sj->len ? sj->map[b] : s.len;
        }
        if (b > a && (rc = mp_buf_append(out, s.ptr + a, b - a)))
            return rc;
    }
    return mp_buf_append(out, p, n);
}

int mp_regex_expand(const struct mp_regex *re, struct mp_str s, struct mp_str tmpl,
                    struct mp_buf *out)
{
    struct subject sj;
    int rc = subject_prepare(&sj, s, true);
    if (rc)
        return rc;
    uint32_t pairs = re->ncap + 1;
    pcre2_match_data *md = thread_md(pairs);
    if (!md) {
        subject_fini(&sj);
        return MP_ENOMEM;
    }
    if (run(re, &sj, md) <= 0) {
        subject_fini(&sj);
        return 0;
    }
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    uint32_t have = pcre2_get_ovector_count(md);
    rc = expand_into(re, s, &sj, ov, have < pairs ? have : pairs, tmpl, out);
    subject_fini(&sj);
    return rc ? rc : 1;
}

int mp_regex_replace_all(const struct mp_regex *re, struct mp_str s, struct mp_str tmpl,
                         struct mp_buf *out)
{
    int rc = mp_regex_expand(re, s, tmpl, out);
    if (rc != 0)
        return rc;
    rc = mp_buf_append(out, s.ptr, s.len);
    return rc ? rc : 0;
}
