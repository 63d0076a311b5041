/* SPDX-License-Identifier: Apache-2.0 */
/* configs/decode.c: the table-driven YAML-to-struct engine behind the config loader.
 *
 * Input is a libyaml document tree (aliases already resolved to node references). A mapping
 * is decoded against a struct cfg_type: "<<" merge keys first (explicit keys override what
 * they bring), then every other key looked up in the type's rows and its inlined types,
 * strictly: unknown and repeated keys are errors, as in yaml.v2's UnmarshalStrict which
 * Prometheus uses. Scalars resolve as YAML 1.1 / yaml.v2 does (yes/no are booleans, 0x1f is
 * an int, quoted scalars are always strings), and a null value sets the zero value.
 * Invariant: every error names the node it is about (file:line:col), and the work is bounded
 * by L->budget however the document uses aliases. */
#include "configs/internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "common/time.h"

int cfg_fail(struct cfg_loader *L, const yaml_node_t *n, const char *fmt, ...)
{
    char msg[MP_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n)
        return mp_err_set(L->err, MP_EPARSE, "%s:%zu:%zu: %s", L->name,
                          (size_t)n->start_mark.line + 1, (size_t)n->start_mark.column + 1, msg);
    return mp_err_set(L->err, MP_EPARSE, "%s: %s", L->name, msg);
}

int cfg_oom(struct cfg_loader *L)
{
    return mp_err_set(L->err, MP_ENOMEM, "%s: out of memory", L->name);
}

const yaml_node_t *cfg_node(struct cfg_loader *L, int index)
{
    return yaml_document_get_node(L->doc, index);
}

static int spend(struct cfg_loader *L, const yaml_node_t *n)
{
    if (L->budget == 0)
        return cfg_fail(L, n, "document too large after expanding aliases");
    L->budget--;
    return 0;
}

/* ---- scalar resolution (yaml.v2 resolve.go rules, YAML 1.1 flavour) ---- */

enum rtag { RT_NULL, RT_BOOL, RT_INT, RT_FLOAT, RT_STR };

struct scalar {
    enum rtag tag;
    bool b;
    bool neg;       /* RT_INT: negative */
    uint64_t mag;   /* RT_INT: magnitude */
    double f;       /* RT_FLOAT (and RT_INT as a double) */
    const char *s;
    size_t len;
};

static const char *rtag_name(enum rtag t)
{
    static const char *names[] = {"!!null", "!!bool", "!!int", "!!float", "!!str"};
    return names[t];
}

static bool text_is(const char *s, size_t len, const char *const *list)
{
    for (; *list; list++)
        if (strlen(*list) == len && memcmp(*list, s, len) == 0)
            return true;
    return false;
}

static int digit_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return 99;
}

/* Go strconv.ParseInt(s, 0, 64) after yaml.v2 strips underscores. */
static bool parse_int(const char *s, size_t len, bool *neg, uint64_t *mag)
{
    char buf[80];
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '_')
            continue;
        if (n + 1 >= sizeof buf)
            return false;
        buf[n++] = s[i];
    }
    buf[n] = '\0';
    size_t i = 0;
    *neg = false;
    if (i < n && (buf[i] == '+' || buf[i] == '-'))
        *neg = buf[i++] == '-';
    if (i >= n)
        return false;
    unsigned base = 10;
    if (buf[i] == '0' && i + 1 < n) {
        char p = buf[i + 1];
        if (p == 'x' || p == 'X') {
            base = 16;
            i += 2;
        } else if (p == 'o' || p == 'O') {
            base = 8;
            i += 2;
        } else if (p == 'b' || p == 'B') {
            base = 2;
            i += 2;
        } else {
            base = 8;
            i += 1;
        }
        if (i >= n)
            return false;
    }
    uint64_t v = 0;
    for (; i < n; i++) {
        int d = digit_val(buf[i]);
        if (d >= (int)base)
            return false;
        if (v > (UINT64_MAX - (uint64_t)d) / base)
            return false;
        v = v * base + (uint64_t)d;
    }
    if (*neg && v > (uint64_t)INT64_MAX + 1)
        return false;
    *mag = v;
    return true;
}

/* ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$ */
static bool is_yaml_float(const char *s, size_t len)
{
    size_t i = 0;
    if (i < len && (s[i] == '+' || s[i] == '-'))
        i++;
    size_t d0 = i;
    if (i < len && s[i] == '.') {
        i++;
        size_t f0 = i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == f0)
            return false;
    } else {
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d0)
            return false;
        if (i < len && s[i] == '.') {
            i++;
            while (i < len && s[i] >= '0' && s[i] <= '9')
                i++;
        }
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t e0 = i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == e0)
            return false;
    }
    return i == len;
}

static void resolve(const yaml_node_t *n, struct scalar *out)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"y", "Y", "yes", "Yes", "YES", "on", "On", "ON",
                                        "true", "True", "TRUE", NULL};
    static const char *const falses[] = {"n", "N", "no", "No", "NO", "off", "Off", "OFF",
                                         "false", "False", "FALSE", NULL};
    static const char *const infs[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL};
    static const char *const ninfs[] = {"-.inf", "-.Inf", "-.INF", NULL};
    static const char *const nans[] = {".nan", ".NaN", ".NAN", NULL};

    memset(out, 0, sizeof *out);
    out->s = (const char *)n->data.scalar.value;
    out->len = n->data.scalar.length;
    out->tag = RT_STR;
    const char *tag = (const char *)n->tag;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE &&
        n->data.scalar.style != YAML_ANY_SCALAR_STYLE) {
        if (tag && strcmp(tag, YAML_NULL_TAG) == 0)
            out->tag = RT_NULL;
        return;
    }
    if (tag && strcmp(tag, YAML_NULL_TAG) == 0) {
        out->tag = RT_NULL;
        return;
    }
    const char *s = out->s;
    size_t len = out->len;
    if (text_is(s, len, nulls)) {
        out->tag = RT_NULL;
    } else if (text_is(s, len, trues)) {
        out->tag = RT_BOOL;
        out->b = true;
    } else if (text_is(s, len, falses)) {
        out->tag = RT_BOOL;
        out->b = false;
    } else if (text_is(s, len, infs) || text_is(s, len, ninfs) || text_is(s, len, nans)) {
        out->tag = RT_FLOAT;
        out->f = text_is(s, len, nans) ? NAN : text_is(s, len, infs) ? INFINITY : -INFINITY;
    } else if (len > 0 && strchr("+-.0123456789", s[0])) {
        if (parse_int(s, len, &out->neg, &out->mag)) {
            out->tag = RT_INT;
            out->f = out->neg ? -(double)out->mag : (double)out->mag;
        } else if (is_yaml_float(s, len) && len < 64) {
            char buf[64];
            memcpy(buf, s, len);
            buf[len] = '\0';
            out->tag = RT_FLOAT;
            out->f = strtod(buf, NULL);
        }
    }
}

bool cfg_node_is_null(const yaml_node_t *n)
{
    if (!n || n->type != YAML_SCALAR_NODE)
        return false;
    struct scalar sc;
    resolve(n, &sc);
    return sc.tag == RT_NULL;
}

static const char *kind_tag(const yaml_node_t *n)
{
    if (n->type == YAML_MAPPING_NODE)
        return "!!map";
    if (n->type == YAML_SEQUENCE_NODE)
        return "!!seq";
    struct scalar sc;
    resolve(n, &sc);
    return rtag_name(sc.tag);
}

/* yaml.v2's "cannot unmarshal !!str `abc` into bool", value cut at 10 characters. */
static int type_error(struct cfg_loader *L, const yaml_node_t *n, const char *into)
{
    if (n->type != YAML_SCALAR_NODE)
        return cfg_fail(L, n, "cannot unmarshal %s into %s", kind_tag(n), into);
    const char *v = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    char shown[16];
    if (len > 10)
        snprintf(shown, sizeof shown, "%.7s...", v);
    else
        snprintf(shown, sizeof shown, "%.*s", (int)len, v);
    for (char *p = shown; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    return cfg_fail(L, n, "cannot unmarshal %s `%s` into %s", kind_tag(n), shown, into);
}

int cfg_node_string(struct cfg_loader *L, const yaml_node_t *n, char **out)
{
    if (n->type != YAML_SCALAR_NODE)
        return type_error(L, n, "string");
    struct scalar sc;
    resolve(n, &sc);
    size_t len = sc.tag == RT_NULL ? 0 : sc.len;
    char *s = cfg_arena_strndup(L->cfg, sc.s, len);
    if (!s)
        return cfg_oom(L);
    *out = s;
    return 0;
}

/* Go's %q for messages: quotes, escapes quotes, backslashes and control bytes. */
void cfg_quote(const char *s, char *buf, size_t cap)
{
    size_t o = 0;
    if (cap < 8)
        return;
    buf[o++] = '"';
    for (; *s && o + 6 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
}

/* ---- numbers ---- */

static int get_uint(struct cfg_loader *L, const yaml_node_t *n, uint64_t max, const char *into,
                    uint64_t *out)
{
    if (n->type != YAML_SCALAR_NODE)
        return type_error(L, n, into);
    struct scalar sc;
    resolve(n, &sc);
    if (sc.tag == RT_NULL) {
        *out = 0;
        return 0;
    }
    if (sc.tag == RT_INT && (!sc.neg || sc.mag == 0) && sc.mag <= max) {
        *out = sc.mag;
        return 0;
    }
    /* yaml.v2 stores a float into an integer field when it fits, truncating */
    if (sc.tag == RT_FLOAT && sc.f >= 0 && sc.f < 18446744073709551616.0 && sc.f <= (double)max) {
        *out = (uint64_t)sc.f;
        return 0;
    }
    return type_error(L, n, into);
}

static int get_int(struct cfg_loader *L, const yaml_node_t *n, int64_t min, int64_t max,
                   const char *into, int64_t *out)
{
    if (n->type != YAML_SCALAR_NODE)
        return type_error(L, n, into);
    struct scalar sc;
    resolve(n, &sc);
    if (sc.tag == RT_NULL) {
        *out = 0;
        return 0;
    }
    if (sc.tag == RT_INT) {
        if (sc.neg && sc.mag <= (uint64_t)INT64_MAX + 1) {
            int64_t v = sc.mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)sc.mag;
            if (v >= min) {
                *out = v;
                return 0;
            }
        } else if (!sc.neg && sc.mag <= (uint64_t)max) {
            *out = (int64_t)sc.mag;
            return 0;
        }
    }
    if (sc.tag == RT_FLOAT && sc.f >= (double)min && sc.f <= (double)max) {
        *out = (int64_t)sc.f;
        return 0;
    }
    return type_error(L, n, into);
}

static int get_bool(struct cfg_loader *L, const yaml_node_t *n, bool *out)
{
    if (n->type != YAML_SCALAR_NODE)
        return type_error(L, n, "bool");
    struct scalar sc;
    resolve(n, &sc);
    if (sc.tag == RT_NULL || sc.tag == RT_BOOL) {
        *out = sc.tag == RT_BOOL && sc.b;
        return 0;
    }
    return type_error(L, n, "bool");
}

static int get_float(struct cfg_loader *L, const yaml_node_t *n, double *out)
{
    if (n->type != YAML_SCALAR_NODE)
        return type_error(L, n, "float64");
    struct scalar sc;
    resolve(n, &sc);
    if (sc.tag == RT_NULL) {
        *out = 0;
        return 0;
    }
    if (sc.tag == RT_INT || sc.tag == RT_FLOAT) {
        *out = sc.f;
        return 0;
    }
    return type_error(L, n, "float64");
}

static int get_duration(struct cfg_loader *L, const yaml_node_t *n, int64_t *out)
{
    if (n->type != YAML_SCALAR_NODE)
        return type_error(L, n, "model.Duration");
    struct scalar sc;
    resolve(n, &sc);
    if (sc.tag == RT_NULL) {
        *out = 0;
        return 0;
    }
    struct mp_err e;
    mp_err_clear(&e);
    if (mp_duration_parse((struct mp_str){sc.s, sc.len}, out, &e) != 0)
        return cfg_fail(L, n, "%s", e.msg);
    return 0;
}

/* alecthomas/units ParseBase2Bytes, as used for body_size_limit: number+unit segments
 * ("10MB", "1.5KB", "1KiB512B"), KB/MB/... and KiB/MiB/... both base 2; "0" alone is allowed,
 * other unitless numbers are not. On MP_EPARSE *unit and *ulen point at the offending unit
 * (length 0 when it is missing), or *unit is NULL for a malformed number. */
int cfg_parse_bytes(const char *s, size_t *out, const char **unit, size_t *ulen)
{
    static const struct {
        const char *u;
        int shift;
    } units[] = {{"B", 0},    {"KB", 10},  {"MB", 20},  {"GB", 30},  {"TB", 40},
                 {"PB", 50},  {"EB", 60},  {"KiB", 10}, {"MiB", 20}, {"GiB", 30},
                 {"TiB", 40}, {"PiB", 50}, {"EiB", 60}};
    *unit = NULL;
    *ulen = 0;
    if (strcmp(s, "0") == 0) {
        *out = 0;
        return 0;
    }
    if (*s == '\0')
        return MP_EPARSE;
    long double total = 0;
    while (*s) {
        const char *p = s;
        long double v = 0, scale = 1;
        bool any = false;
        while (*p >= '0' && *p <= '9') {
            v = v * 10 + (*p++ - '0');
            any = true;
        }
        if (*p == '.') {
            p++;
            while (*p >= '0' && *p <= '9') {
                scale /= 10;
                v += (*p++ - '0') * scale;
                any = true;
            }
        }
        if (!any)
            return MP_EPARSE;
        const char *u0 = p;
        while (*p && !(*p >= '0' && *p <= '9') && *p != '.')
            p++;
        size_t n = (size_t)(p - u0);
        int shift = -1;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
            if (strlen(units[i].u) == n && memcmp(units[i].u, u0, n) == 0)
                shift = units[i].shift;
        if (shift < 0) {
            *unit = u0;
            *ulen = n;
            return MP_EPARSE;
        }
        total += v * (long double)((uint64_t)1 << shift);
        if (total > (long double)INT64_MAX)
            return MP_ELIMIT;
        s = p;
    }
    *out = (size_t)total;
    return 0;
}

static int get_bytes(struct cfg_loader *L, const yaml_node_t *n, size_t *out)
{
    if (n->type != YAML_SCALAR_NODE)
        return type_error(L, n, "units.Base2Bytes");
    struct scalar sc;
    resolve(n, &sc);
    if (sc.tag == RT_NULL) {
        *out = 0;
        return 0;
    }
    char tmp[64];
    int shown = (int)(sc.len < 40 ? sc.len : 40);
    if (sc.len >= sizeof tmp || memchr(sc.s, '\0', sc.len))
        return cfg_fail(L, n, "units: invalid %.*s", shown, sc.s);
    memcpy(tmp, sc.s, sc.len);
    tmp[sc.len] = '\0';
    const char *unit;
    size_t ulen;
    int rc = cfg_parse_bytes(tmp, out, &unit, &ulen);
    if (rc == MP_ELIMIT)
        return cfg_fail(L, n, "units: overflow in %s", tmp);
    if (rc != 0 && unit)
        return cfg_fail(L, n, "units: unknown unit %.*s in %s", (int)ulen, unit, tmp);
    if (rc != 0)
        return cfg_fail(L, n, "units: invalid %s", tmp);
    return 0;
}

/* ---- duplicates ---- */

struct dup_ent {
    const char *name;
    size_t idx;
    bool nocase;
};

static int dup_cmp(const void *a, const void *b)
{
    const struct dup_ent *x = a, *y = b;
    int c = x->nocase ? strcasecmp(x->name, y->name) : strcmp(x->name, y->name);
    if (c)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Sorting keeps this O(n log n): a 16 MiB file can hold a map with a million keys. */
int cfg_first_duplicate(const char *const *names, size_t stride, size_t n, bool nocase,
                        size_t *dup)
{
    *dup = SIZE_MAX;
    if (n < 2)
        return 0;
    struct dup_ent *v = mp_malloc(n * sizeof *v);
    if (!v)
        return MP_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        v[i].name = *(const char *const *)((const char *)names + i * stride);
        v[i].idx = i;
        v[i].nocase = nocase;
    }
    qsort(v, n, sizeof *v, dup_cmp);
    for (size_t i = 1; i < n; i++) {
        int c = nocase ? strcasecmp(v[i - 1].name, v[i].name) : strcmp(v[i - 1].name, v[i].name);
        if (c == 0 && v[i].idx < *dup)
            *dup = v[i].idx;
    }
    mp_free(v);
    return 0;
}

/* ---- collections ---- */

static int get_strlist(struct cfg_loader *L, const yaml_node_t *n, char ***out, size_t *count)
{
    *out = NULL;
    *count = 0;
    if (cfg_node_is_null(n))
        return 0;
    if (n->type != YAML_SEQUENCE_NODE)
        return type_error(L, n, "[]string");
    size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    char **v = cfg_arena_array(L->cfg, cnt, sizeof *v);
    if (!v)
        return cfg_oom(L);
    for (size_t i = 0; i < cnt; i++) {
        const yaml_node_t *item = cfg_node(L, n->data.sequence.items.start[i]);
        int rc = spend(L, item);
        if (rc)
            return rc;
        if (item->type != YAML_SCALAR_NODE)
            return type_error(L, item, "string");
        rc = cfg_node_string(L, item, &v[i]);
        if (rc)
            return rc;
    }
    *out = v;
    *count = cnt;
    return 0;
}

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const struct cfg_label *)a)->name, ((const struct cfg_label *)b)->name);
}

static int multi_cmp(const void *a, const void *b)
{
    return strcmp(((const struct cfg_multi *)a)->name, ((const struct cfg_multi *)b)->name);
}

static size_t map_len(const yaml_node_t *n)
{
    return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

/* Fails at the key node of the first repeated name of array v (elements start with name). */
#define TRY_DUP(v, cnt)                                                                     \
    do {                                                                                    \
        size_t d_;                                                                          \
        if (cfg_first_duplicate((const char *const *)&(v)[0].name, sizeof((v)[0]), (cnt), false, \
                                &d_) != 0)                                                 \
            return cfg_oom(L);                                                              \
        if (d_ != SIZE_MAX) {                                                               \
            char q_[160];                                                                   \
            cfg_quote((v)[d_].name, q_, sizeof q_);                                         \
            return cfg_fail(L, cfg_node(L, n->data.mapping.pairs.start[d_].key),            \
                            "key %s already set in map", q_);                               \
        }                                                                                   \
    } while (0)

/* Labels or string maps; names validated as label names when check_names. */
static int get_strmap(struct cfg_loader *L, const yaml_node_t *n, bool check_names,
                      const char *into, struct cfg_label **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    if (cfg_node_is_null(n))
        return 0;
    if (n->type != YAML_MAPPING_NODE)
        return type_error(L, n, into);
    size_t cnt = map_len(n);
    struct cfg_label *v = cfg_arena_array(L->cfg, cnt, sizeof *v);
    if (!v)
        return cfg_oom(L);
    for (size_t i = 0; i < cnt; i++) {
        const yaml_node_pair_t *p = &n->data.mapping.pairs.start[i];
        const yaml_node_t *k = cfg_node(L, p->key), *val = cfg_node(L, p->value);
        int rc = spend(L, k);
        if (rc)
            return rc;
        if (k->type != YAML_SCALAR_NODE)
            return type_error(L, k, "string");
        if ((rc = cfg_node_string(L, k, &v[i].name)) != 0)
            return rc;
        if (check_names && !mp_label_name_is_valid(mp_str_c(v[i].name))) {
            char q[160];
            cfg_quote(v[i].name, q, sizeof q);
            return cfg_fail(L, k, "%s is not a valid label name", q);
        }
        if (val->type != YAML_SCALAR_NODE)
            return type_error(L, val, check_names ? "model.LabelValue" : "string");
        if ((rc = cfg_node_string(L, val, &v[i].value)) != 0)
            return rc;
        if (check_names && !mp_label_value_is_valid(mp_str_c(v[i].value))) {
            char q[160];
            cfg_quote(v[i].value, q, sizeof q);
            return cfg_fail(L, val, "%s is not a valid label value", q);
        }
    }
    TRY_DUP(v, cnt);
    qsort(v, cnt, sizeof *v, label_cmp);
    *out = v;
    *count = cnt;
    return 0;
}

static int get_multimap(struct cfg_loader *L, const yaml_node_t *n, struct cfg_multi **out,
                        size_t *count)
{
    *out = NULL;
    *count = 0;
    if (cfg_node_is_null(n))
        return 0;
    if (n->type != YAML_MAPPING_NODE)
        return type_error(L, n, "map[string][]string");
    size_t cnt = map_len(n);
    struct cfg_multi *v = cfg_arena_array(L->cfg, cnt, sizeof *v);
    if (!v)
        return cfg_oom(L);
    for (size_t i = 0; i < cnt; i++) {
        const yaml_node_pair_t *p = &n->data.mapping.pairs.start[i];
        const yaml_node_t *k = cfg_node(L, p->key), *val = cfg_node(L, p->value);
        int rc = spend(L, k);
        if (rc)
            return rc;
        if (k->type != YAML_SCALAR_NODE)
            return type_error(L, k, "string");
        if ((rc = cfg_node_string(L, k, &v[i].name)) != 0)
            return rc;
        if ((rc = get_strlist(L, val, &v[i].values, &v[i].nvalues)) != 0)
            return rc;
    }
    TRY_DUP(v, cnt);
    qsort(v, cnt, sizeof *v, multi_cmp);
    *out = v;
    *count = cnt;
    return 0;
}

#undef TRY_DUP

/* ---- structs ---- */

static const struct cfg_field *find_field(const struct cfg_type *t, void *obj, const char *key,
                                          size_t klen, void **base)
{
    for (size_t i = 0; i < t->nfields; i++) {
        if (strlen(t->fields[i].key) == klen && memcmp(t->fields[i].key, key, klen) == 0) {
            *base = obj;
            return &t->fields[i];
        }
    }
    for (size_t i = 0; i < t->ninlines; i++) {
        const struct cfg_field *f =
            find_field(t->inlines[i].type, (char *)obj + t->inlines[i].off, key, klen, base);
        if (f)
            return f;
    }
    return NULL;
}

static int decode_value(struct cfg_loader *L, const struct cfg_field *f, const yaml_node_t *v,
                        void *base);

static bool is_merge_key(const yaml_node_t *k)
{
    return k->type == YAML_SCALAR_NODE && k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           k->data.scalar.length == 2 && memcmp(k->data.scalar.value, "<<", 2) == 0;
}

/* SDs that Prometheus has but meshprom does not implement get their own message. */
static bool is_unsupported_sd(const char *key, size_t len)
{
    static const char *const sds[] = {
        "azure_sd_configs",     "consul_sd_configs",     "digitalocean_sd_configs",
        "docker_sd_configs",    "dockerswarm_sd_configs", "dns_sd_configs",
        "ec2_sd_configs",       "eureka_sd_configs",     "gce_sd_configs",
        "hetzner_sd_configs",   "http_sd_configs",       "ionos_sd_configs",
        "kuma_sd_configs",      "lightsail_sd_configs",  "linode_sd_configs",
        "marathon_sd_configs",  "nerve_sd_configs",      "nomad_sd_configs",
        "openstack_sd_configs", "ovhcloud_sd_configs",   "puppetdb_sd_configs",
        "scaleway_sd_configs",  "serverset_sd_configs",  "triton_sd_configs",
        "uyuni_sd_configs",     "vultr_sd_configs",      NULL};
    return text_is(key, len, sds);
}

static int apply_mapping(struct cfg_loader *L, const yaml_node_t *n, const struct cfg_type *t,
                         void *obj, struct cfg_seen *seen);

static int apply_merge(struct cfg_loader *L, const yaml_node_t *v, const struct cfg_type *t,
                       void *obj, struct cfg_seen *seen)
{
    if (L->merge_depth >= 16)
        return cfg_fail(L, v, "map merge nested too deeply");
    L->merge_depth++;
    int rc = 0;
    if (v->type == YAML_MAPPING_NODE) {
        rc = apply_mapping(L, v, t, obj, seen);
    } else if (v->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = v->data.sequence.items.start;
             rc == 0 && it < v->data.sequence.items.top; it++)
            if (cfg_node(L, *it)->type != YAML_MAPPING_NODE)
                rc = cfg_fail(L, cfg_node(L, *it),
                              "map merge requires map or sequence of maps as the value");
        /* the first map of the list wins, so apply them last to first */
        for (yaml_node_item_t *it = v->data.sequence.items.top; rc == 0 &&
                                                              it > v->data.sequence.items.start;) {
            const yaml_node_t *m = cfg_node(L, *--it);
            if (m->type != YAML_MAPPING_NODE) {
                rc = cfg_fail(L, m, "map merge requires map or sequence of maps as the value");
                break;
            }
            rc = apply_mapping(L, m, t, obj, seen);
        }
    } else {
        rc = cfg_fail(L, v, "map merge requires map or sequence of maps as the value");
    }
    L->merge_depth--;
    return rc;
}

/* Keys of one mapping node get one token; a key repeated under the same token is an error,
 * one that overrides a merged-in key is not. */
static int apply_mapping(struct cfg_loader *L, const yaml_node_t *n, const struct cfg_type *t,
                         void *obj, struct cfg_seen *seen)
{
    int rc;
    const yaml_node_pair_t *start = n->data.mapping.pairs.start, *top = n->data.mapping.pairs.top;
    for (const yaml_node_pair_t *p = start; p < top; p++) {
        const yaml_node_t *k = cfg_node(L, p->key);
        if (is_merge_key(k) && (rc = apply_merge(L, cfg_node(L, p->value), t, obj, seen)) != 0)
            return rc;
    }
    unsigned token = ++L->tokens;
    for (const yaml_node_pair_t *p = start; p < top; p++) {
        const yaml_node_t *k = cfg_node(L, p->key), *v = cfg_node(L, p->value);
        if ((rc = spend(L, k)) != 0)
            return rc;
        if (is_merge_key(k))
            continue;
        if (k->type != YAML_SCALAR_NODE)
            return cfg_fail(L, k, "cannot unmarshal %s into string (mapping keys must be "
                                  "strings in type %s)", kind_tag(k), t->go_name);
        const char *key = (const char *)k->data.scalar.value;
        size_t klen = k->data.scalar.length;
        void *base = NULL;
        const struct cfg_field *f = find_field(t, obj, key, klen, &base);
        if (!f) {
            if (is_unsupported_sd(key, klen))
                return cfg_fail(L, k, "%.*s: this service discovery is not supported by meshprom "
                                      "(supported: static_configs, file_sd_configs, "
                                      "kubernetes_sd_configs)", (int)klen, key);
            return cfg_fail(L, k, "field %.*s not found in type %s",
                            (int)(klen > 100 ? 100 : klen), key, t->go_name);
        }
        size_t slot = seen->n;
        for (size_t i = 0; i < seen->n; i++) {
            if (seen->field[i] == f) {
                if (seen->token[i] == token)
                    return cfg_fail(L, k, "key \"%.*s\" already set in map",
                                    (int)(klen > 100 ? 100 : klen), key);
                slot = i;
                break;
            }
        }
        if (slot == seen->n) {
            if (seen->n == CFG_SEEN_MAX)
                return cfg_fail(L, k, "too many keys in mapping");
            seen->n++;
        }
        seen->field[slot] = f;
        seen->key[slot] = k;
        seen->value[slot] = v;
        seen->token[slot] = token;
        if ((rc = decode_value(L, f, v, base)) != 0)
            return rc;
    }
    return 0;
}

int cfg_decode_struct(struct cfg_loader *L, const yaml_node_t *n, const struct cfg_type *t,
                      void *obj)
{
    int rc = spend(L, n);
    if (rc)
        return rc;
    if (n->type != YAML_MAPPING_NODE)
        return type_error(L, n, t->go_name);
    struct cfg_seen *seen = mp_malloc(sizeof *seen);
    if (!seen)
        return cfg_oom(L);
    seen->self = n;
    seen->n = 0;
    rc = apply_mapping(L, n, t, obj, seen);
    if (rc == 0 && t->check)
        rc = t->check(L, obj, seen);
    mp_free(seen);
    return rc;
}

static int decode_list(struct cfg_loader *L, const struct cfg_field *f, const yaml_node_t *v,
                       void *member)
{
    void **arr = member;
    size_t *count = (size_t *)((char *)member - f->off + f->count_off);
    *arr = NULL;
    *count = 0;
    if (cfg_node_is_null(v))
        return 0;
    if (v->type != YAML_SEQUENCE_NODE) {
        char into[96];
        snprintf(into, sizeof into, "[]%s", f->type->go_name);
        return type_error(L, v, into);
    }
    size_t cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    char *items = cfg_arena_array(L->cfg, cnt, f->type->size);
    if (!items)
        return cfg_oom(L);
    for (size_t i = 0; i < cnt; i++) {
        const yaml_node_t *item = cfg_node(L, v->data.sequence.items.start[i]);
        void *obj = items + i * f->type->size;
        if (cfg_node_is_null(item)) {
            if (f->null_elem_msg)
                return cfg_fail(L, item, "%s", f->null_elem_msg);
            return cfg_fail(L, item, "empty or null %s", f->key);
        }
        if (f->type->init)
            f->type->init(obj);
        int rc = cfg_decode_struct(L, item, f->type, obj);
        if (rc)
            return rc;
    }
    *arr = items;
    *count = cnt;
    return 0;
}

static int decode_value(struct cfg_loader *L, const struct cfg_field *f, const yaml_node_t *v,
                        void *base)
{
    void *m = (char *)base + f->off;
    size_t *count = (size_t *)((char *)base + f->count_off);
    int rc = spend(L, v);
    if (rc)
        return rc;
    switch (f->kind) {
    case CFG_F_STR:
        return cfg_node_string(L, v, (char **)m);
    case CFG_F_BOOL:
        return get_bool(L, v, (bool *)m);
    case CFG_F_DUR:
        return get_duration(L, v, (int64_t *)m);
    case CFG_F_SIZE: {
        uint64_t x;
        if ((rc = get_uint(L, v, SIZE_MAX, "uint", &x)) == 0)
            *(size_t *)m = (size_t)x;
        return rc;
    }
    case CFG_F_U64:
        return get_uint(L, v, UINT64_MAX, "uint64", (uint64_t *)m);
    case CFG_F_INT: {
        int64_t x;
        if ((rc = get_int(L, v, INT32_MIN, INT32_MAX, "int", &x)) == 0)
            *(int *)m = (int)x;
        return rc;
    }
    case CFG_F_I64:
        return get_int(L, v, INT64_MIN, INT64_MAX, "int64", (int64_t *)m);
    case CFG_F_FLOAT:
        return get_float(L, v, (double *)m);
    case CFG_F_BYTES:
        return get_bytes(L, v, (size_t *)m);
    case CFG_F_STRLIST:
        return get_strlist(L, v, (char ***)m, count);
    case CFG_F_LABELS:
        return get_strmap(L, v, true, "model.LabelSet", (struct cfg_label **)m, count);
    case CFG_F_STRMAP:
        return get_strmap(L, v, false, "map[string]string", (struct cfg_label **)m, count);
    case CFG_F_MULTIMAP:
        return get_multimap(L, v, (struct cfg_multi **)m, count);
    case CFG_F_STRUCT:
        if (cfg_node_is_null(v)) {
            memset(m, 0, f->type->size);
            return 0;
        }
        return cfg_decode_struct(L, v, f->type, m);
    case CFG_F_PTR: {
        void **pp = m;
        *pp = NULL;
        if (cfg_node_is_null(v))
            return 0;
        void *obj = cfg_arena_alloc(L->cfg, f->type->size);
        if (!obj)
            return cfg_oom(L);
        if (f->type->init)
            f->type->init(obj);
        if ((rc = cfg_decode_struct(L, v, f->type, obj)) != 0)
            return rc;
        *pp = obj;
        return 0;
    }
    case CFG_F_LIST:
        return decode_list(L, f, v, m);
    case CFG_F_CUSTOM:
        return f->custom(L, v, m);
    }
    return cfg_fail(L, v, "internal error: unknown field kind");
}

static const yaml_node_t *seen_find(const struct cfg_seen *s, const char *key, bool want_key)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->field[i]->key, key) == 0)
            return want_key ? s->key[i] : s->value[i];
    return NULL;
}

const yaml_node_t *cfg_seen_value(const struct cfg_seen *s, const char *key)
{
    return seen_find(s, key, false);
}

const yaml_node_t *cfg_seen_key(const struct cfg_seen *s, const char *key)
{
    return seen_find(s, key, true);
}

const yaml_node_t *cfg_seen_at(const struct cfg_seen *s, const char *key)
{
    const yaml_node_t *k = seen_find(s, key, true);
    return k ? k : s->self;
}
