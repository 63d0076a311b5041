/* SPDX-License-Identifier: Apache-2.0 */
/* scraper/expfmt.c: exposition-format negotiation (spec protocols.md 1.1, 1.2) and the
 * family/type helpers metadata needs. The Content-Type rules repeat Go's mime.ParseMediaType
 * closely enough that the same headers fail: Prometheus 2.55 falls back to the text parser
 * whenever that call returns an error, even for an OpenMetrics media type with a broken
 * parameter list. */
#include <stdio.h>
#include <string.h>

#include "scraper/scraper.h"

/* ---- Content-Type ------------------------------------------------------------------------- */

static bool is_tspecial(char c)
{
    return strchr("()<>@,;:\\\"/[]?=", c) != NULL && c != 0;
}

static bool is_token_char(char c)
{
    return (unsigned char)c > 0x20 && (unsigned char)c < 0x7f && !is_tspecial(c);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

struct cursor {
    const char *s, *end;
};

static void skip_space(struct cursor *c)
{
    while (c->s < c->end && is_space(*c->s))
        c->s++;
}

static struct mp_str token(struct cursor *c)
{
    const char *b = c->s;
    while (c->s < c->end && is_token_char(*c->s))
        c->s++;
    return (struct mp_str){b, (size_t)(c->s - b)};
}

/* Go consumeValue: a token or a quoted string (backslash escapes a tspecial; CR/LF fail). */
static bool value(struct cursor *c, struct mp_str *v)
{
    if (c->s >= c->end || *c->s != '"') {
        *v = token(c);
        return v->len > 0;
    }
    const char *b = ++c->s;
    for (; c->s < c->end; c->s++) {
        char ch = *c->s;
        if (ch == '"') {
            *v = (struct mp_str){b, (size_t)(c->s - b)};
            c->s++;
            return true;
        }
        if (ch == '\\' && c->s + 1 < c->end && is_tspecial(c->s[1]))
            c->s++;
        else if (ch == '\r' || ch == '\n')
            return false;
    }
    return false;
}

static bool ieq_str(struct mp_str a, struct mp_str b)
{
    if (a.len != b.len)
        return false;
    for (size_t i = 0; i < a.len; i++) {
        char x = a.ptr[i], y = b.ptr[i];
        if (x >= 'A' && x <= 'Z')
            x = (char)(x + 32);
        if (y >= 'A' && y <= 'Z')
            y = (char)(y + 32);
        if (x != y)
            return false;
    }
    return true;
}

/* Whether Go's mime.ParseMediaType accepts the parameter list [s, end) (after the base). */
static bool params_ok(const char *s, const char *end)
{
    struct mp_str keys[16], vals[16];
    size_t n = 0;
    struct cursor c = {s, end};
    for (;;) {
        skip_space(&c);
        if (c.s >= c.end)
            return true;
        const char *start = c.s;
        struct mp_str k, v;
        bool ok = *c.s == ';';
        if (ok) {
            c.s++;
            skip_space(&c);
            k = token(&c);
            skip_space(&c);
            ok = k.len > 0 && c.s < c.end && *c.s == '=';
        }
        if (ok) {
            c.s++;
            skip_space(&c);
            ok = value(&c, &v);
        }
        if (!ok) {
            /* a lone trailing ";" is tolerated */
            struct cursor t = {start, end};
            skip_space(&t);
            if (t.s < t.end && *t.s == ';') {
                t.s++;
                skip_space(&t);
                return t.s == t.end;
            }
            return false;
        }
        for (size_t i = 0; i < n; i++)
            if (ieq_str(keys[i], k) && !mp_str_eq(vals[i], v))
                return false; /* "mime: duplicate parameter name" */
        if (n < 16) {
            keys[n] = k;
            vals[n++] = v;
        }
    }
}

enum scrape_format scrape_format_from_content_type(const char *ct, size_t len)
{
    if (!ct)
        return SCRAPE_FORMAT_TEXT;
    const char *semi = memchr(ct, ';', len);
    struct cursor c = {ct, semi ? semi : ct + len};
    skip_space(&c);
    while (c.end > c.s && is_space(c.end[-1]))
        c.end--;
    struct mp_str type = token(&c), sub = {0};
    if (type.len == 0)
        return SCRAPE_FORMAT_TEXT; /* "mime: no media type" */
    if (c.s < c.end) {
        if (*c.s != '/')
            return SCRAPE_FORMAT_TEXT;
        c.s++;
        sub = token(&c);
        if (sub.len == 0 || c.s != c.end)
            return SCRAPE_FORMAT_TEXT;
    }
    if (semi && !params_ok(semi, ct + len))
        return SCRAPE_FORMAT_TEXT;
    if (!ieq_str(type, MP_STR_LIT("application")))
        return SCRAPE_FORMAT_TEXT;
    if (ieq_str(sub, MP_STR_LIT("openmetrics-text")))
        return SCRAPE_FORMAT_OPENMETRICS;
    if (ieq_str(sub, MP_STR_LIT("vnd.google.protobuf")))
        return SCRAPE_FORMAT_PROTOBUF;
    return SCRAPE_FORMAT_TEXT;
}

/* ---- Accept ------------------------------------------------------------------------------- */

static const char *const proto_media[SCRAPE_PROTO_COUNT] = {
    [SCRAPE_PROTO_PROMETHEUS_PROTO] = ("application/vnd.google.protobuf;"
                                       "proto=io.prometheus.client.MetricFamily;"
                                       "encoding=delimited"),
    [SCRAPE_PROTO_OPENMETRICS_1_0_0] = "application/openmetrics-text;version=1.0.0",
    [SCRAPE_PROTO_OPENMETRICS_0_0_1] = "application/openmetrics-text;version=0.0.1",
    [SCRAPE_PROTO_PROMETHEUS_TEXT] = "text/plain;version=0.0.4",
};

int scrape_accept_header(const enum scrape_protocol *protos, size_t n, bool utf8_names, char *buf,
                         size_t cap)
{
    if (n == 0 || n > SCRAPE_PROTO_COUNT || !buf)
        return MP_EINVAL;
    size_t len = 0;
    /* weights in tenths: 0.(N+1) for the first with N = 4 known protocols, then -0.1 each */
    int w = SCRAPE_PROTO_COUNT + 1;
    for (size_t i = 0; i <= n; i++, w--) {
        const char *media = "*/*";
        if (i < n) {
            if ((unsigned)protos[i] >= SCRAPE_PROTO_COUNT)
                return MP_EINVAL;
            media = proto_media[protos[i]];
        }
        int k = snprintf(buf + len, cap > len ? cap - len : 0, "%s%s%s;q=0.%d", i ? "," : "", media,
                         i < n && utf8_names ? ";escaping=allow-utf-8" : "", w);
        if (k < 0 || (size_t)k >= (cap > len ? cap - len : 0))
            return MP_ELIMIT;
        len += (size_t)k;
    }
    return (int)len;
}

/* ---- types and families ------------------------------------------------------------------- */

const char *scrape_metric_type_name(enum scrape_metric_type t)
{
    switch (t) {
    case SCRAPE_TYPE_COUNTER:
        return "counter";
    case SCRAPE_TYPE_GAUGE:
        return "gauge";
    case SCRAPE_TYPE_HISTOGRAM:
        return "histogram";
    case SCRAPE_TYPE_GAUGEHISTOGRAM:
        return "gaugehistogram";
    case SCRAPE_TYPE_SUMMARY:
        return "summary";
    case SCRAPE_TYPE_INFO:
        return "info";
    case SCRAPE_TYPE_STATESET:
        return "stateset";
    case SCRAPE_TYPE_UNKNOWN:
        break;
    }
    return "unknown";
}

static bool cut_suffix(struct mp_str *s, const char *suf)
{
    size_t n = strlen(suf);
    if (s->len < n || memcmp(s->ptr + s->len - n, suf, n) != 0)
        return false;
    s->len -= n;
    return true;
}

bool scrape_series_in_family(struct mp_str metric, struct mp_str family, enum scrape_metric_type t,
                             bool created)
{
    if (metric.len < family.len || memcmp(metric.ptr, family.ptr, family.len) != 0)
        return false; /* fast path: every member starts with the family name */
    struct mp_str m = metric;
    static const char *const hist[] = {"_bucket", "_sum", "_count", NULL};
    static const char *const ghist[] = {"_bucket", "_gsum", "_gcount", NULL};
    static const char *const summ[] = {"_sum", "_count", NULL};
    const char *const *sufs = NULL;
    switch (t) {
    case SCRAPE_TYPE_COUNTER:
        cut_suffix(&family, "_total");
        (void)cut_suffix(&m, "_total");
        break;
    case SCRAPE_TYPE_INFO:
        cut_suffix(&family, "_info");
        (void)cut_suffix(&m, "_info");
        break;
    case SCRAPE_TYPE_HISTOGRAM:
        sufs = hist;
        break;
    case SCRAPE_TYPE_GAUGEHISTOGRAM:
        sufs = ghist;
        break;
    case SCRAPE_TYPE_SUMMARY:
        sufs = summ;
        break;
    default:
        break;
    }
    for (; sufs && *sufs; sufs++)
        if (cut_suffix(&m, *sufs))
            break;
    if (mp_str_eq(m, family))
        return true;
    bool ct_type =
        t == SCRAPE_TYPE_COUNTER || t == SCRAPE_TYPE_HISTOGRAM || t == SCRAPE_TYPE_SUMMARY;
    m = metric;
    return created && ct_type && cut_suffix(&m, "_created") && mp_str_eq(m, family);
}
