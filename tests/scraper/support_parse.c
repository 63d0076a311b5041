/* SPDX-License-Identifier: Apache-2.0 */
/* tests/scraper/support_parse.c: see support_parse.h. */
#include "support_parse.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static char out[1 << 16];

static void fmt_double(char *buf, size_t cap, double v)
{
    if (v == (double)(long long)v && v > -1e17 && v < 1e17) {
        snprintf(buf, cap, "%lld", (long long)v);
        if (v == 0 && signbit(v))
            snprintf(buf, cap, "-0");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v || v != v)
            return;
    }
}

static void put(size_t *len, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + *len, sizeof out - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len += (size_t)n < sizeof out - *len ? (size_t)n : sizeof out - *len - 1;
}

const char *dump(enum scrape_format f, const char *body, size_t len, unsigned flags)
{
    struct scrape_parser p;
    struct scrape_label lab[64];
    struct scrape_entry e = {.label = lab, .label_cap = 64};
    struct mp_err err;
    mp_err_clear(&err);
    scrape_parser_init(&p, f, body, len, flags);
    size_t o = 0;
    out[0] = 0;
    char num[64];
    for (int guard = 0; guard < 10000; guard++) {
        int rc = scrape_parser_next(&p, &e, &err);
        if (rc == MP_EEOF) {
            put(&o, "EOF");
            return out;
        }
        if (rc != 0) {
            put(&o, "ERR %s: %s", mp_errname(rc), err.msg);
            return out;
        }
        switch (e.kind) {
        case SCRAPE_ENTRY_SERIES:
            put(&o, "S %.*s", (int)e.series.len, e.series.ptr);
            for (size_t i = 0; i < e.nlabel; i++)
                put(&o, " %.*s=%.*s%s", (int)lab[i].name.len, lab[i].name.ptr,
                    (int)lab[i].value.len, lab[i].value.ptr, lab[i].escaped ? "(esc)" : "");
            fmt_double(num, sizeof num, e.value);
            put(&o, " v=%s", num);
            if (e.has_ts)
                put(&o, " ts=%lld", (long long)e.ts_ms);
            if (e.family.len)
                put(&o, " fam=%.*s/%s", (int)e.family.len, e.family.ptr,
                    scrape_metric_type_name(e.type));
            if (e.is_created)
                put(&o, " created");
            if (e.has_exemplar) {
                fmt_double(num, sizeof num, e.exemplar_value);
                put(&o, " ex=%.*s %s", (int)e.exemplar.len, e.exemplar.ptr, num);
                if (e.exemplar_has_ts)
                    put(&o, " %lld", (long long)e.exemplar_ts_ms);
            }
            break;
        case SCRAPE_ENTRY_HELP:
            put(&o, "H %.*s %.*s", (int)e.name.len, e.name.ptr, (int)e.text.len, e.text.ptr);
            break;
        case SCRAPE_ENTRY_TYPE:
            put(&o, "T %.*s %s", (int)e.name.len, e.name.ptr, scrape_metric_type_name(e.type));
            break;
        case SCRAPE_ENTRY_UNIT:
            put(&o, "U %.*s %.*s", (int)e.name.len, e.name.ptr, (int)e.text.len, e.text.ptr);
            break;
        case SCRAPE_ENTRY_COMMENT:
            put(&o, "C %.*s", (int)e.text.len, e.text.ptr);
            break;
        }
        put(&o, "\n");
    }
    cr_assert_fail("parser did not stop");
    return out;
}

size_t check_prefixes(enum scrape_format f, const char *body, size_t len)
{
    long pg = sysconf(_SC_PAGESIZE);
    size_t span = ((len + (size_t)pg) / (size_t)pg + 1) * (size_t)pg;
    char *map = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(map, MAP_FAILED);
    char *guard = map + span - (size_t)pg;
    cr_assert_eq(mprotect(guard, (size_t)pg, PROT_NONE), 0);
    size_t eofs = 0;
    struct scrape_label lab[64];
    for (size_t k = 0; k <= len; k++) {
        char *b = guard - k;
        memcpy(b, body, k);
        struct scrape_parser p;
        struct scrape_entry e = {.label = lab, .label_cap = 64};
        struct mp_err err;
        mp_err_clear(&err);
        scrape_parser_init(&p, f, b, k, 0);
        int rc = 0;
        for (size_t n = 0; n <= k + 1 && rc == 0; n++)
            rc = scrape_parser_next(&p, &e, &err);
        cr_assert(rc == MP_EEOF || rc == MP_EPARSE, "prefix %zu: rc %d", k, rc);
        if (rc == MP_EPARSE)
            cr_assert(strncmp(err.msg, "line ", 5) == 0, "prefix %zu: %s", k, err.msg);
        eofs += rc == MP_EEOF;
        /* sticky */
        cr_assert_eq(scrape_parser_next(&p, &e, &err), rc);
    }
    munmap(map, span);
    return eofs;
}

void first_entry(struct scrape_parser *p, struct scrape_entry *e, enum scrape_format f,
                 const char *body, size_t len)
{
    struct mp_err err;
    mp_err_clear(&err);
    scrape_parser_init(p, f, body, len, 0);
    cr_assert_eq(scrape_parser_next(p, e, &err), 0, "%s", err.msg);
}
