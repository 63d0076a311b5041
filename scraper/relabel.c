/* SPDX-License-Identifier: Apache-2.0 */
/* scraper/relabel.c: Prometheus relabeling (model/relabel/relabel.go, protocols.md 3) and the
 * step from a discovered target to its scrape URL and target labels (scrape/target.go
 * PopulateLabels, protocols.md 2.1).
 *
 * Rules run in order on a struct mp_labels_builder; every action reads
 * value = join(source values, separator) with missing labels as "", and a keep/drop/
 * keepequal/dropequal rejection stops the list. Setting a label to "" deletes it (the
 * builder does that). Regexes come compiled and anchored from configs/ and expand with Go
 * regexp.Expand rules (common/matcher.h). A single source label is read in place; joined
 * and expanded text goes to struct mp_bufs on the stack that allocate only when a rule
 * needs them. Nothing here keeps state between calls. */
#include "scraper/scraper.h"

#include <inttypes.h>
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "common/matcher.h"
#include "common/str.h"
#include "common/time.h"
#include "configs/config.h"
#include "scraper/md5.h"

/* Cap for one joined or expanded value (STYLE 2.6.7); Prometheus has none. */
#define RELABEL_MAX_VALUE ((size_t)64 << 20)

struct scratch {
    struct mp_buf val, out, target;
};

static void scratch_init(struct scratch *s)
{
    mp_buf_init(&s->val, RELABEL_MAX_VALUE);
    mp_buf_init(&s->out, RELABEL_MAX_VALUE);
    mp_buf_init(&s->target, RELABEL_MAX_VALUE);
}

static void scratch_fini(struct scratch *s)
{
    mp_buf_fini(&s->val);
    mp_buf_fini(&s->out);
    mp_buf_fini(&s->target);
}

static struct mp_str buf_str(const struct mp_buf *b)
{
    return (struct mp_str){b->len ? b->data : "", b->len};
}

/* value = join(source values, separator), missing labels as "". With at most one source
 * label nothing is copied: *val borrows the builder's value, which stays valid until the
 * rule's only set, done last. */
static int join_sources(const struct cfg_relabel *r, const struct mp_labels_builder *b,
                        struct mp_buf *buf, struct mp_str *val)
{
    if (r->nsource_labels <= 1) {
        *val = r->nsource_labels ? mp_labels_builder_get(b, mp_str_c(r->source_labels[0]))
                                 : MP_STR_LIT("");
        return 0;
    }
    mp_buf_reset(buf);
    const char *sep = r->separator ? r->separator : ";";
    size_t seplen = strlen(sep);
    for (size_t i = 0; i < r->nsource_labels; i++) {
        int rc;
        if (i > 0 && seplen && (rc = mp_buf_append(buf, sep, seplen)) != 0)
            return rc;
        struct mp_str v = mp_labels_builder_get(b, mp_str_c(r->source_labels[i]));
        if (v.len && (rc = mp_buf_append(buf, v.ptr, v.len)) != 0)
            return rc;
    }
    *val = buf_str(buf);
    return 0;
}

/* ---- lowercase / uppercase: Go strings.ToLower / ToUpper ---------------------------------
 * ASCII input is mapped byte by byte. Otherwise Go runs strings.Map(unicode.ToLower, s): each
 * rune gets its simple Unicode case mapping and every invalid UTF-8 byte becomes U+FFFD. The
 * Unicode tables here are glibc's C.UTF-8 locale (towlower_l), loaded once; where that
 * locale is missing only ASCII letters change case. */

static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;
static locale_t utf8_locale;

static void utf8_locale_load(void)
{
    utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

static int utf8_append(struct mp_buf *out, uint32_t r)
{
    char e[4];
    return mp_buf_append(out, e, mp_utf8_encode(r, e));
}

static uint32_t map_rune(uint32_t r, bool upper)
{
    if (r < 0x80) {
        if (upper && r >= 'a' && r <= 'z')
            return r - 32;
        if (!upper && r >= 'A' && r <= 'Z')
            return r + 32;
        return r;
    }
    if (r == 0xfffd || utf8_locale == (locale_t)0)
        return r;
    wint_t m = upper ? towupper_l((wint_t)r, utf8_locale) : towlower_l((wint_t)r, utf8_locale);
    return m > 0 && m <= 0x10ffff ? (uint32_t)m : r;
}

static int case_map(struct mp_str in, bool upper, struct mp_buf *out)
{
    mp_buf_reset(out);
    const unsigned char *s = (const unsigned char *)in.ptr;
    bool ascii = true;
    for (size_t i = 0; i < in.len && ascii; i++)
        ascii = s[i] < 0x80;
    if (!ascii)
        pthread_once(&utf8_once, utf8_locale_load);
    for (size_t i = 0; i < in.len;) {
        uint32_t r;
        size_t w = mp_utf8_decode(s + i, in.len - i, &r);
        int rc = utf8_append(out, map_rune(r, upper));
        if (rc)
            return rc;
        i += w;
    }
    return 0;
}

/* ---- the actions ------------------------------------------------------------------------- */

struct map_ctx {
    const struct cfg_relabel *r;
    struct mp_labels_builder *b;
    struct mp_buf *out;
    int rc;
};

/* labelmap: every label whose name matches gets a copy under ReplaceAll(name, replacement);
 * the original stays, and an existing label of the new name is overwritten. */
static bool labelmap_one(void *ctx, struct mp_str name, struct mp_str value)
{
    struct map_ctx *m = ctx;
    mp_buf_reset(m->out);
    int rc = mp_regex_replace_all(m->r->regex, name, mp_str_c(m->r->replacement), m->out);
    if (rc < 0) {
        m->rc = rc;
        return false;
    }
    /* An empty new name (a template of unset groups only) cannot be a label: skipped, where
     * Go would store a label with an empty name. */
    if (rc == 1 && m->out->len > 0 && (rc = mp_labels_builder_set(m->b, buf_str(m->out), value))) {
        m->rc = rc;
        return false;
    }
    return true;
}

struct filter_ctx {
    const struct mp_regex *re;
    bool keep_matching;
};

static bool filter_one(void *ctx, struct mp_str name, struct mp_str value)
{
    (void)value;
    const struct filter_ctx *f = ctx;
    return mp_regex_match(f->re, name) == f->keep_matching;
}

/* replace: on a match, expand target_label and replacement; an invalid expanded target
 * leaves the set alone (2.55; 2.42 deleted the unexpanded target), an empty replacement
 * deletes the target. */
static int do_replace(const struct cfg_relabel *r, struct mp_labels_builder *b, struct mp_str val,
                      struct scratch *s)
{
    struct mp_str tmpl = mp_str_c(r->replacement ? r->replacement : "$1");
    struct mp_str target = mp_str_c(r->target_label);
    if (target.len == 0)
        return 0; /* the loader requires a target; nothing to set without one */
    mp_buf_reset(&s->out);
    if (memchr(target.ptr, '$', target.len)) {
        mp_buf_reset(&s->target);
        int rc = mp_regex_expand(r->regex, val, target, &s->target);
        if (rc <= 0)
            return rc;
        target = buf_str(&s->target);
        if (!mp_label_name_is_valid(target))
            return 0;
    }
    int rc = mp_regex_expand(r->regex, val, tmpl, &s->out);
    if (rc <= 0)
        return rc;
    return mp_labels_builder_set(b, target, buf_str(&s->out)); /* "" deletes */
}

static int do_hashmod(const struct cfg_relabel *r, struct mp_labels_builder *b, struct mp_str val)
{
    if (r->modulus == 0 || !r->target_label)
        return MP_EINVAL; /* rejected at load; Go would panic dividing by zero */
    uint8_t d[16];
    scrape_md5(val.ptr, val.len, d);
    uint64_t h = 0;
    for (int i = 8; i < 16; i++)
        h = h << 8 | d[i]; /* the last 8 bytes, big-endian, as 2.55 */
    char num[24];
    int n = snprintf(num, sizeof num, "%" PRIu64, h % r->modulus);
    return mp_labels_builder_set(b, mp_str_c(r->target_label), (struct mp_str){num, (size_t)n});
}

/* One rule. 0 with *keep set, or a negative status (builder or buffer). */
static int relabel_one(const struct cfg_relabel *r, struct mp_labels_builder *b, struct scratch *s,
                       bool *keep)
{
    *keep = true;
    struct mp_str val;
    int rc = join_sources(r, b, &s->val, &val);
    if (rc)
        return rc;
    struct mp_str target = mp_str_c(r->target_label);
    switch (r->action) {
    case CFG_RELABEL_DROP:
        *keep = !mp_regex_match(r->regex, val);
        return 0;
    case CFG_RELABEL_KEEP:
        *keep = mp_regex_match(r->regex, val);
        return 0;
    case CFG_RELABEL_DROPEQUAL:
        *keep = !mp_str_eq(mp_labels_builder_get(b, target), val);
        return 0;
    case CFG_RELABEL_KEEPEQUAL:
        *keep = mp_str_eq(mp_labels_builder_get(b, target), val);
        return 0;
    case CFG_RELABEL_REPLACE:
        return do_replace(r, b, val, s);
    case CFG_RELABEL_LOWERCASE:
    case CFG_RELABEL_UPPERCASE:
        if (target.len == 0)
            return 0;
        if ((rc = case_map(val, r->action == CFG_RELABEL_UPPERCASE, &s->out)) != 0)
            return rc;
        return mp_labels_builder_set(b, target, buf_str(&s->out));
    case CFG_RELABEL_HASHMOD:
        return do_hashmod(r, b, val);
    case CFG_RELABEL_LABELMAP: {
        struct map_ctx m = {r, b, &s->out, 0};
        mp_labels_builder_range(b, labelmap_one, &m);
        return m.rc;
    }
    case CFG_RELABEL_LABELDROP:
    case CFG_RELABEL_LABELKEEP: {
        struct filter_ctx f = {r->regex, r->action == CFG_RELABEL_LABELKEEP};
        mp_labels_builder_filter(b, filter_one, &f);
        return 0;
    }
    }
    return MP_EINVAL;
}

int scrape_relabel_process(const struct cfg_relabels *rules, struct mp_labels_builder *b,
                           bool *keep)
{
    *keep = true;
    if (!rules || rules->n == 0)
        return 0;
    struct scratch s;
    scratch_init(&s);
    int rc = 0;
    for (size_t i = 0; i < rules->n && *keep && rc == 0; i++)
        rc = relabel_one(&rules->v[i], b, &s, keep);
    scratch_fini(&s);
    return rc;
}

int scrape_relabel_labels(const struct cfg_relabels *rules, const struct mp_labels *in,
                          struct mp_labels **out, bool *keep)
{
    *out = NULL;
    struct mp_labels_builder *b = mp_labels_builder_create();
    mp_labels_builder_reset(b, in);
    int rc = scrape_relabel_process(rules, b, keep);
    if (rc == 0 && *keep)
        rc = mp_labels_builder_labels(b, out, NULL);
    mp_labels_builder_destroy(b);
    return rc;
}

/* ---- from discovered target to target labels and URL (protocols.md 2.1) ------------------ */

#define L_ADDRESS MP_STR_LIT("__address__")
#define L_SCHEME MP_STR_LIT("__scheme__")
#define L_PATH MP_STR_LIT("__metrics_path__")
#define L_INTERVAL MP_STR_LIT("__scrape_interval__")
#define L_TIMEOUT MP_STR_LIT("__scrape_timeout__")
#define L_INSTANCE MP_STR_LIT("instance")
#define PARAM_PREFIX "__param_"

static bool has_prefix(struct mp_str s, const char *p)
{
    size_t n = strlen(p);
    return s.len >= n && memcmp(s.ptr, p, n) == 0;
}

/* Steps 1 and 2: defaults only where the label is absent or empty, then __param_<k> = the
 * first value of every configured parameter that has one. */
static int set_defaults(struct mp_labels_builder *b, const struct cfg_scrape_config *sc)
{
    char iv[MP_TIME_FMT_MAX], to[MP_TIME_FMT_MAX];
    mp_duration_format(sc->scrape_interval_ms, iv, sizeof iv);
    mp_duration_format(sc->scrape_timeout_ms, to, sizeof to);
    const struct {
        struct mp_str name;
        const char *value;
    } defs[] = {
        {MP_STR_LIT("job"), sc->job_name},
        {L_INTERVAL, iv},
        {L_TIMEOUT, to},
        {L_PATH, sc->metrics_path ? sc->metrics_path : "/metrics"},
        {L_SCHEME, sc->scheme ? sc->scheme : "http"},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof defs / sizeof defs[0] && rc == 0; i++)
        if (mp_labels_builder_get(b, defs[i].name).len == 0)
            rc = mp_labels_builder_set(b, defs[i].name, mp_str_c(defs[i].value));
    struct mp_buf name;
    mp_buf_init(&name, 0);
    for (size_t i = 0; i < sc->nparams && rc == 0; i++) {
        if (sc->params[i].nvalues == 0)
            continue;
        mp_buf_reset(&name);
        if ((rc = mp_buf_append_str(&name, PARAM_PREFIX)) == 0 &&
            (rc = mp_buf_append_str(&name, sc->params[i].name)) == 0)
            rc = mp_labels_builder_set(b, buf_str(&name), mp_str_c(sc->params[i].values[0]));
    }
    mp_buf_fini(&name);
    return rc;
}

int scrape_target_defaults(const struct mp_labels *discovered, const struct cfg_scrape_config *sc,
                           struct mp_labels **out, struct mp_err *err)
{
    *out = NULL;
    struct mp_labels_builder *b = mp_labels_builder_create();
    mp_labels_builder_reset(b, discovered);
    int rc = set_defaults(b, sc);
    if (rc == 0)
        rc = mp_labels_builder_labels(b, out, err);
    mp_labels_builder_destroy(b);
    return rc ? mp_err_set(err, rc, "target defaults: %s", mp_strerror(rc)) : 0;
}

/* Go net.SplitHostPort's verdict (only whether it succeeds). */
static bool split_host_port(struct mp_str s)
{
    const char *p = s.ptr;
    size_t n = s.len, i, j = 0, k = 0;
    const char *colon = NULL;
    for (size_t x = 0; x < n; x++)
        if (p[x] == ':')
            colon = p + x;
    if (!colon)
        return false; /* missing port */
    i = (size_t)(colon - p);
    if (p[0] == '[') {
        const char *rb = memchr(p, ']', n);
        if (!rb)
            return false;
        size_t end = (size_t)(rb - p);
        if (end + 1 != i)
            return false; /* missing port or too many colons */
        j = 1;
        k = end + 1;
    } else if (memchr(p, ':', i)) {
        return false; /* too many colons */
    }
    if (memchr(p + j, '[', n - j) || memchr(p + k, ']', n - k))
        return false;
    return true;
}

/* Go %q of s into q (for messages). */
static const char *quote(struct mp_buf *q, struct mp_str s)
{
    mp_buf_reset(q);
    if (mp_label_quote(q, s) != 0)
        return "\"...\"";
    return q->data;
}

/* Go net/url escaping (url.go shouldEscape) for the modes the scrape URL uses. */
enum esc_mode { ESC_HOST, ESC_PATH, ESC_QUERY };

static bool should_escape(unsigned char c, enum esc_mode mode)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return false;
    if (mode == ESC_HOST && strchr("!$&'()*+,;=:[]<>\"", c) && c)
        return false;
    if (c && strchr("-_.~", c))
        return false;
    if (c && strchr("$&+,/:;=?@", c))
        return mode == ESC_PATH ? c == '?' : true;
    return true;
}

static int append_escaped(struct mp_buf *out, struct mp_str s, enum esc_mode mode)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        int rc;
        if (!should_escape(c, mode)) {
            rc = mp_buf_append(out, &c, 1);
        } else if (c == ' ' && mode == ESC_QUERY) {
            rc = mp_buf_append(out, "+", 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = mp_buf_append(out, e, 3);
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* One query key: the configured values, the first replaced by a __param_ label if any. */
struct qparam {
    struct mp_str key;
    char *const *values;
    size_t nvalues;
    struct mp_str first; /* override of values[0] (or the only value); ptr NULL if none */
};

static int qparam_cmp(const void *a, const void *b)
{
    return mp_str_cmp(((const struct qparam *)a)->key, ((const struct qparam *)b)->key);
}

struct collect_ctx {
    struct qparam *q;
    size_t n, nconf;
};

static bool collect_param(void *ctx, struct mp_str name, struct mp_str value)
{
    struct collect_ctx *c = ctx;
    if (!has_prefix(name, PARAM_PREFIX))
        return true;
    struct mp_str key = {name.ptr + strlen(PARAM_PREFIX), name.len - strlen(PARAM_PREFIX)};
    for (size_t i = 0; i < c->nconf; i++) {
        if (mp_str_eq(c->q[i].key, key)) {
            c->q[i].first = value;
            return true;
        }
    }
    c->q[c->n++] = (struct qparam){key, NULL, 0, value};
    return true;
}

/* Target.URL().String(): scheme://host path ? url.Values.Encode() (keys sorted). */
static int build_url(struct mp_labels_builder *b, const struct cfg_scrape_config *sc,
                     struct mp_buf *u)
{
    struct mp_str scheme = mp_labels_builder_get(b, L_SCHEME);
    int rc = 0;
    if (scheme.len)
        rc = mp_buf_append(u, scheme.ptr, scheme.len);
    if (rc == 0 && scheme.len)
        rc = mp_buf_append(u, ":", 1);
    if (rc == 0)
        rc = mp_buf_append(u, "//", 2);
    if (rc == 0)
        rc = append_escaped(u, mp_labels_builder_get(b, L_ADDRESS), ESC_HOST);
    struct mp_str path = mp_labels_builder_get(b, L_PATH);
    if (rc == 0 && path.len && path.ptr[0] != '/')
        rc = mp_buf_append(u, "/", 1);
    if (rc == 0)
        rc = mp_str_eq(path, MP_STR_LIT("*")) ? mp_buf_append(u, "*", 1)
                                              : append_escaped(u, path, ESC_PATH);
    if (rc)
        return rc;

    size_t cap = sc->nparams + mp_labels_builder_count(b);
    struct qparam *q = cap ? mp_malloc(cap * sizeof *q) : NULL;
    if (cap && !q)
        return MP_ENOMEM;
    for (size_t i = 0; i < sc->nparams; i++)
        q[i] = (struct qparam){
            mp_str_c(sc->params[i].name), sc->params[i].values, sc->params[i].nvalues, {NULL, 0}};
    struct collect_ctx c = {q, sc->nparams, sc->nparams};
    mp_labels_builder_range(b, collect_param, &c);
    if (c.n > 1)
        qsort(q, c.n, sizeof *q, qparam_cmp);
    bool first = true;
    for (size_t i = 0; i < c.n && rc == 0; i++) {
        size_t nv = q[i].nvalues ? q[i].nvalues : (q[i].first.ptr ? 1 : 0);
        for (size_t v = 0; v < nv && rc == 0; v++) {
            struct mp_str val = v == 0 && q[i].first.ptr ? q[i].first : mp_str_c(q[i].values[v]);
            if ((rc = mp_buf_append(u, first ? "?" : "&", 1)) == 0 &&
                (rc = append_escaped(u, q[i].key, ESC_QUERY)) == 0 &&
                (rc = mp_buf_append(u, "=", 1)) == 0)
                rc = append_escaped(u, val, ESC_QUERY);
            first = false;
        }
    }
    mp_free(q);
    return rc;
}

static bool not_meta(void *ctx, struct mp_str name, struct mp_str value)
{
    (void)ctx, (void)value;
    return !has_prefix(name, "__meta_");
}

static bool not_reserved(void *ctx, struct mp_str name, struct mp_str value)
{
    (void)ctx, (void)value;
    return !has_prefix(name, "__");
}

struct invalid_ctx {
    struct mp_str name, value;
    bool found;
};

static bool find_invalid_value(void *ctx, struct mp_str name, struct mp_str value)
{
    struct invalid_ctx *c = ctx;
    if (mp_label_value_is_valid(value))
        return true;
    *c = (struct invalid_ctx){name, value, true};
    return false;
}

/* Steps 4 to 9 of protocols.md 2.1 on a relabeled, kept target. */
static int check_target(struct mp_labels_builder *b, const struct cfg_scrape_config *sc,
                        struct scrape_target_url *u, struct mp_buf *tmp, struct mp_buf *q,
                        struct mp_err *err)
{
    struct mp_str addr = mp_labels_builder_get(b, L_ADDRESS);
    if (addr.len == 0)
        return mp_err_set(err, MP_EINVAL, "no address");
    mp_buf_reset(tmp);
    int rc = mp_buf_append(tmp, addr.ptr, addr.len);
    /* Port defaulting (2.x without no-default-scrape-port): only when the address lacks a
     * port and adding one makes it splittable. */
    if (rc == 0 && !split_host_port(addr)) {
        rc = mp_buf_append(tmp, ":1234", 5);
        bool add = rc == 0 && split_host_port(buf_str(tmp));
        tmp->len = addr.len;
        tmp->data[tmp->len] = '\0';
        if (add) {
            struct mp_str scheme = mp_labels_builder_get(b, L_SCHEME);
            if (scheme.len == 0 || mp_str_eq(scheme, MP_STR_LIT("http")))
                rc = mp_buf_append(tmp, ":80", 3);
            else if (mp_str_eq(scheme, MP_STR_LIT("https")))
                rc = mp_buf_append(tmp, ":443", 4);
            else /* Prometheus names the configured scheme here, not the label */
                return mp_err_set(err, MP_EINVAL, "invalid scheme: %s",
                                  quote(q, mp_str_c(sc->scheme ? sc->scheme : "")));
            if (rc == 0)
                rc = mp_labels_builder_set(b, L_ADDRESS, buf_str(tmp));
        }
    }
    if (rc)
        return rc;
    addr = buf_str(tmp); /* tmp holds the address from here on */
    if (memchr(addr.ptr, '/', addr.len))
        return mp_err_set(err, MP_EINVAL, "%s is not a valid hostname", quote(q, addr));

    struct mp_str iv = mp_labels_builder_get(b, L_INTERVAL);
    struct mp_err perr = {0};
    if (mp_duration_parse(iv, &u->interval_ms, &perr) != 0)
        return mp_err_set(err, MP_EINVAL, "error parsing scrape interval: %s", perr.msg);
    if (u->interval_ms == 0)
        return mp_err_set(err, MP_EINVAL, "scrape interval cannot be 0");
    struct mp_str to = mp_labels_builder_get(b, L_TIMEOUT);
    if (mp_duration_parse(to, &u->timeout_ms, &perr) != 0)
        return mp_err_set(err, MP_EINVAL, "error parsing scrape timeout: %s", perr.msg);
    if (u->timeout_ms == 0)
        return mp_err_set(err, MP_EINVAL, "scrape timeout cannot be 0");
    if (u->timeout_ms > u->interval_ms) {
        char tq[MP_TIME_FMT_MAX * 2];
        snprintf(tq, sizeof tq, "%s", quote(q, to));
        return mp_err_set(err, MP_EINVAL,
                          "scrape timeout cannot be greater than scrape interval (%s > %s)", tq,
                          quote(q, iv));
    }

    mp_labels_builder_filter(b, not_meta, NULL);
    if (mp_labels_builder_get(b, L_INSTANCE).len == 0 &&
        (rc = mp_labels_builder_set(b, L_INSTANCE, addr)) != 0)
        return rc;
    struct invalid_ctx bad = {.found = false};
    mp_labels_builder_range(b, find_invalid_value, &bad);
    if (bad.found) {
        char qn[256];
        snprintf(qn, sizeof qn, "%s", quote(q, bad.name));
        return mp_err_set(err, MP_EINVAL, "invalid label value for %s: %s", qn,
                          quote(q, bad.value));
    }
    return 0;
}

void scrape_target_url_fini(struct scrape_target_url *u)
{
    if (!u)
        return;
    mp_free(u->str);
    mp_labels_release(u->full);
    *u = (struct scrape_target_url){0};
}

int scrape_target_labels(const struct mp_labels *discovered, const struct cfg_scrape_config *sc,
                         struct mp_labels **final, struct scrape_target_url *url_out,
                         struct mp_err *err)
{
    *final = NULL;
    *url_out = (struct scrape_target_url){0};
    struct mp_labels_builder *b = mp_labels_builder_create();
    mp_labels_builder_reset(b, discovered);
    struct mp_buf tmp, q, u;
    mp_buf_init(&tmp, RELABEL_MAX_VALUE);
    mp_buf_init(&q, RELABEL_MAX_VALUE);
    mp_buf_init(&u, RELABEL_MAX_VALUE);
    bool keep = true;
    int rc = set_defaults(b, sc);
    if (rc == 0)
        rc = scrape_relabel_process(&sc->relabel_configs, b, &keep);
    if (rc == 0 && !keep) {
        rc = SCRAPE_TARGET_DROPPED;
        goto out;
    }
    if (rc == 0)
        rc = check_target(b, sc, url_out, &tmp, &q, err);
    if (rc == 0)
        rc = build_url(b, sc, &u);
    if (rc == 0)
        rc = mp_labels_builder_labels(b, &url_out->full, err);
    if (rc == 0) {
        mp_labels_builder_filter(b, not_reserved, NULL);
        rc = mp_labels_builder_labels(b, final, err);
    }
    if (rc == 0) {
        url_out->str = mp_buf_take(&u, &url_out->len);
        if (!url_out->str) /* an empty buffer hands out nothing; the URL is never empty */
            rc = MP_ENOMEM;
    }
out:
    if (rc < 0) {
        mp_err_set(err, rc, "target labels: %s", mp_strerror(rc));
        mp_labels_release(*final);
        *final = NULL;
        scrape_target_url_fini(url_out);
    }
    mp_buf_fini(&tmp);
    mp_buf_fini(&q);
    mp_buf_fini(&u);
    mp_labels_builder_destroy(b);
    return rc;
}
