/* SPDX-License-Identifier: Apache-2.0 */
/* common/matcher.c: label matchers (=, !=, =~, !~) over common/regex.c. A matcher owns
 * copies of its name and value and, for regex types, the compiled regex; everything is
 * decided at create, so a matcher is immutable and shared freely. */
#include "common/matcher.h"

#include <string.h>

#include "common/alloc.h"

struct mp_matcher {
    enum mp_match_type type;
    struct mp_str name, value; /* point into buf */
    struct mp_regex *re;       /* regex types only */
    bool matches_empty;
    char *buf;
};

static bool is_regex(enum mp_match_type t)
{
    return t == MP_MATCH_REGEX || t == MP_MATCH_NOT_REGEX;
}

int mp_matcher_create_flags(enum mp_match_type t, struct mp_str name, struct mp_str value,
                            int regex_flags, struct mp_matcher **out, struct mp_err *err)
{
    *out = NULL;
    if (t != MP_MATCH_EQUAL && t != MP_MATCH_NOT_EQUAL && !is_regex(t))
        return mp_err_set(err, MP_EINVAL, "unknown match type %d", (int)t);
    size_t total;
    if (__builtin_add_overflow(name.len, value.len, &total) ||
        __builtin_add_overflow(total, (size_t)2, &total))
        return mp_err_set(err, MP_ENOMEM, "out of memory");
    struct mp_matcher *m = mp_calloc(1, sizeof *m);
    char *buf = mp_malloc(total);
    if (!m || !buf) {
        mp_free(m);
        mp_free(buf);
        return mp_err_set(err, MP_ENOMEM, "out of memory");
    }
    if (name.len)
        memcpy(buf, name.ptr, name.len);
    buf[name.len] = '\0';
    if (value.len)
        memcpy(buf + name.len + 1, value.ptr, value.len);
    buf[name.len + 1 + value.len] = '\0';
    m->type = t;
    m->buf = buf;
    m->name = (struct mp_str){buf, name.len};
    m->value = (struct mp_str){buf + name.len + 1, value.len};
    if (is_regex(t)) {
        int rc = mp_regex_compile(m->value, regex_flags, &m->re, err);
        if (rc) {
            mp_matcher_destroy(m);
            return rc;
        }
    }
    m->matches_empty = mp_matcher_matches(m, (struct mp_str){"", 0});
    *out = m;
    return 0;
}

int mp_matcher_create(enum mp_match_type t, struct mp_str name, struct mp_str value,
                      struct mp_matcher **out, struct mp_err *err)
{
    /* Prometheus 2.55 compiles matcher regexes as ^(?:re)$, so `.` does not match a newline
     * (shared/spec/promql.md 1.6); only 3.0 switched to ^(?s:re)$. */
    return mp_matcher_create_flags(t, name, value, 0, out, err);
}

void mp_matcher_destroy(struct mp_matcher *m)
{
    if (!m)
        return;
    mp_regex_destroy(m->re);
    mp_free(m->buf);
    mp_free(m);
}

bool mp_matcher_matches(const struct mp_matcher *m, struct mp_str value)
{
    switch (m->type) {
    case MP_MATCH_EQUAL: return mp_str_eq(m->value, value);
    case MP_MATCH_NOT_EQUAL: return !mp_str_eq(m->value, value);
    case MP_MATCH_REGEX: return mp_regex_match(m->re, value);
    case MP_MATCH_NOT_REGEX: return !mp_regex_match(m->re, value);
    }
    return false;
}

bool mp_matcher_matches_empty(const struct mp_matcher *m)
{
    return m->matches_empty;
}

enum mp_match_type mp_matcher_type(const struct mp_matcher *m)
{
    return m->type;
}

struct mp_str mp_matcher_name(const struct mp_matcher *m)
{
    return m->name;
}

struct mp_str mp_matcher_value(const struct mp_matcher *m)
{
    return m->value;
}

const char *mp_match_type_str(enum mp_match_type t)
{
    switch (t) {
    case MP_MATCH_EQUAL: return "=";
    case MP_MATCH_NOT_EQUAL: return "!=";
    case MP_MATCH_REGEX: return "=~";
    case MP_MATCH_NOT_REGEX: return "!~";
    }
    return "?";
}

const struct mp_regex *mp_matcher_regex(const struct mp_matcher *m)
{
    return m->re;
}

bool mp_matcher_set_values(const struct mp_matcher *m, const struct mp_str **vals, size_t *n)
{
    if (m->type == MP_MATCH_EQUAL) {
        *vals = &m->value;
        *n = 1;
        return true;
    }
    if (is_regex(m->type))
        return mp_regex_set_values(m->re, vals, n);
    return false;
}

bool mp_matcher_prefix(const struct mp_matcher *m, struct mp_str *prefix)
{
    return is_regex(m->type) && mp_regex_prefix(m->re, prefix);
}
