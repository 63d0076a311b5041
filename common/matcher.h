/* SPDX-License-Identifier: Apache-2.0 */
/* common/matcher.h: Go/RE2-compatible regular expressions on PCRE2, and label matchers.
 *
 * mp_regex: the pattern is parsed with Go regexp/syntax rules (Perl flags), so what Go rejects
 * is rejected here with Go's message ("error parsing regexp: missing closing ): `(a`"):
 * backreferences, lookaround, atomic groups, possessive and stacked quantifiers, \Z, \C,
 * repeat counts over 1000. It is then rewritten for PCRE2 (UTF, ASCII \d \w \s \b, `$` = end
 * of text) and compiled once, with JIT when available. The match is always anchored at both
 * ends, as Prometheus compiles ^(?:re)$ (relabel) or ^(?s:re)$ (MP_REGEX_DOTALL).
 * Subjects need not be valid UTF-8: as in Go, each invalid byte counts as one U+FFFD.
 * Literal, alternation-of-literals, prefix/suffix/contains with .* and .+ skip the engine.
 *
 * Thread safety: a compiled mp_regex and an mp_matcher are immutable and may be shared by all
 * threads; matching uses per-thread scratch. */
#ifndef COMMON_MATCHER_H
#define COMMON_MATCHER_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "common/str.h"

struct mp_regex; /* opaque, immutable after compile */

enum {
    MP_REGEX_DOTALL = 1, /* `.` matches \n: ^(?s:re)$, as Prometheus 3.x matchers */
};

/* Compiles pattern (RE2 syntax, not NUL-terminated) anchored at both ends. On error returns
 * MP_EPARSE with Go's text in err, or MP_ENOMEM. */
MP_NODISCARD int mp_regex_compile(struct mp_str pattern, int flags, struct mp_regex **out,
                                  struct mp_err *err);
void mp_regex_destroy(struct mp_regex *re); /* NULL is a no-op */
/* True if the whole of s matches. */
bool mp_regex_match(const struct mp_regex *re, struct mp_str s);
/* The pattern as given to compile, NUL-terminated; borrowed until destroy. */
const char *mp_regex_source(const struct mp_regex *re);
/* Number of capture groups (Go NumSubexp). */
size_t mp_regex_groups(const struct mp_regex *re);
/* Which matcher mp_regex_match uses, for tests and debugging: "literal", "set", "prefix",
 * "suffix", "contains" or "pcre2" (static string). */
const char *mp_regex_fast_kind(const struct mp_regex *re);

/* Relabel replacement: if re matches all of s, appends tmpl expanded with Go regexp.Expand
 * rules to out ($1, ${1}, $name, ${name}, $$ = "$", the unbraced name is the longest run of
 * letters, digits and '_', unknown or unset groups expand to ""). Returns 1 when it matched,
 * 0 when it did not (out untouched), or a negative status from the buffer (MP_ELIMIT,
 * MP_ENOMEM). */
int mp_regex_expand(const struct mp_regex *re, struct mp_str s, struct mp_str tmpl,
                    struct mp_buf *out);
/* labelmap: appends re.ReplaceAllString(s, tmpl). With the anchored regex this is the
 * expansion when s matches (returns 1) and s unchanged otherwise (returns 0); <0 on error. */
int mp_regex_replace_all(const struct mp_regex *re, struct mp_str s, struct mp_str tmpl,
                         struct mp_buf *out);

/* If every string the regex matches is in a finite literal set (`a`, `a|b|c`, `(a|b)`),
 * sets *vals to the borrowed array and *n to its size and returns true. Order is the
 * pattern's; duplicates are kept. */
bool mp_regex_set_values(const struct mp_regex *re, const struct mp_str **vals, size_t *n);
/* Literal prefix every match must start with ("foo" for `foo.*`, `foo.+`, `foo`); false if
 * none is known. */
bool mp_regex_prefix(const struct mp_regex *re, struct mp_str *prefix);

enum mp_match_type {
    MP_MATCH_EQUAL,
    MP_MATCH_NOT_EQUAL,
    MP_MATCH_REGEX,
    MP_MATCH_NOT_REGEX,
};

struct mp_matcher; /* opaque, immutable, shareable */

/* A label matcher. name and value are copied. Regex values are compiled as Prometheus 2.55
 * does, ^(?:re)$ without DOTALL (mp_matcher_create_flags chooses). Invalid regex: MP_EPARSE
 * with Go's text. */
MP_NODISCARD int mp_matcher_create(enum mp_match_type t, struct mp_str name, struct mp_str value,
                                   struct mp_matcher **out, struct mp_err *err);
MP_NODISCARD int mp_matcher_create_flags(enum mp_match_type t, struct mp_str name,
                                         struct mp_str value, int regex_flags,
                                         struct mp_matcher **out, struct mp_err *err);
void mp_matcher_destroy(struct mp_matcher *m); /* NULL is a no-op */

/* Does a label with this value match? (A missing label is the empty value.) */
bool mp_matcher_matches(const struct mp_matcher *m, struct mp_str value);
/* Same as mp_matcher_matches(m, ""), computed once at create. */
bool mp_matcher_matches_empty(const struct mp_matcher *m);

enum mp_match_type mp_matcher_type(const struct mp_matcher *m);
struct mp_str mp_matcher_name(const struct mp_matcher *m);  /* borrowed until destroy */
struct mp_str mp_matcher_value(const struct mp_matcher *m); /* borrowed until destroy */
/* "=", "!=", "=~", "!~" */
const char *mp_match_type_str(enum mp_match_type t);
/* The compiled regex of a regex matcher, NULL for = and !=. Borrowed until destroy. */
const struct mp_regex *mp_matcher_regex(const struct mp_matcher *m);

/* For the index: the finite set of values the matcher's regex (or =) accepts, so postings can
 * be looked up directly. For = it is the one value; for =~ and !~ the regex set (the caller
 * inverts for !~); false for != and for regexes without a finite literal set. */
bool mp_matcher_set_values(const struct mp_matcher *m, const struct mp_str **vals, size_t *n);
/* Literal prefix of a =~ / !~ matcher's regex, see mp_regex_prefix. */
bool mp_matcher_prefix(const struct mp_matcher *m, struct mp_str *prefix);

#endif
