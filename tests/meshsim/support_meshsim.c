/* SPDX-License-Identifier: Apache-2.0 */
#include "support_meshsim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

static char *dup_slice(struct mp_str s)
{
    char *p = malloc(s.len + 1);
    memcpy(p, s.ptr, s.len);
    p[s.len] = 0;
    return p;
}

void tm_parse(const char *body, size_t len, struct tm_body *b)
{
    memset(b, 0, sizeof *b);
    struct scrape_parser p;
    scrape_parser_init(&p, SCRAPE_FORMAT_TEXT, body, len, 0);
    struct scrape_label lbl[64];
    struct scrape_entry e = {.label = lbl, .label_cap = 64};
    struct mp_err err = {0};
    size_t cap = 0;
    int rc;
    while ((rc = scrape_parser_next(&p, &e, &err)) == 0) {
        if (e.kind != SCRAPE_ENTRY_SERIES)
            continue;
        if (b->n == cap) {
            cap = cap ? cap * 2 : 256;
            b->s = realloc(b->s, cap * sizeof *b->s);
        }
        b->s[b->n++] = (struct tm_sample){dup_slice(e.series), dup_slice(e.name), e.value, e.type};
        for (size_t i = 0; i < e.nlabel; i++) {
            bool seen = false;
            for (size_t k = 0; k < b->nlabels && !seen; k++)
                seen = strlen(b->labels[k]) == e.label[i].name.len &&
                       memcmp(b->labels[k], e.label[i].name.ptr, e.label[i].name.len) == 0;
            if (!seen) {
                b->labels = realloc(b->labels, (b->nlabels + 1) * sizeof *b->labels);
                b->labels[b->nlabels++] = dup_slice(e.label[i].name);
            }
        }
    }
    b->rc = rc;
    memcpy(b->err, err.msg, sizeof b->err);
}

void tm_body_fini(struct tm_body *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->s[i].series);
        free(b->s[i].name);
    }
    for (size_t i = 0; i < b->nlabels; i++)
        free(b->labels[i]);
    free(b->s);
    free(b->labels);
    memset(b, 0, sizeof *b);
}

const struct tm_sample *tm_find(const struct tm_body *b, const char *series)
{
    for (size_t i = 0; i < b->n; i++)
        if (strcmp(b->s[i].series, series) == 0)
            return &b->s[i];
    return NULL;
}

bool tm_has_name(const struct tm_body *b, const char *name)
{
    for (size_t i = 0; i < b->n; i++)
        if (strcmp(b->s[i].name, name) == 0)
            return true;
    return false;
}

bool tm_has_label(const struct tm_body *b, const char *label)
{
    for (size_t i = 0; i < b->nlabels; i++)
        if (strcmp(b->labels[i], label) == 0)
            return true;
    return false;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t tm_duplicates(const struct tm_body *b, char *first, size_t cap)
{
    char **v = malloc((b->n + 1) * sizeof *v);
    for (size_t i = 0; i < b->n; i++)
        v[i] = b->s[i].series;
    qsort(v, b->n, sizeof *v, cmp_str);
    size_t d = 0;
    for (size_t i = 1; i < b->n; i++) {
        if (strcmp(v[i], v[i - 1]) == 0) {
            if (d++ == 0 && cap)
                snprintf(first, cap, "%s", v[i]);
        }
    }
    free(v);
    return d;
}
