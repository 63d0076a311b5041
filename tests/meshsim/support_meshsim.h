/* SPDX-License-Identifier: Apache-2.0 */
/* tests/meshsim/support_meshsim.h: a parsed /metrics body for the meshsim tests. */
#ifndef TESTS_MESHSIM_SUPPORT_H
#define TESTS_MESHSIM_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "scraper/scraper.h"

struct tm_sample {
    char *series; /* name{labels} as in the body */
    char *name;
    double value;
    enum scrape_metric_type type;
};

struct tm_body {
    struct tm_sample *s;
    size_t n;
    char **labels; /* distinct label names */
    size_t nlabels;
    int rc; /* scrape_parser_next's final status (MP_EEOF when clean) */
    char err[256];
};

/* Parses body with the text parser; every failure is recorded in b->rc / b->err. */
void tm_parse(const char *body, size_t len, struct tm_body *b);
void tm_body_fini(struct tm_body *b);
const struct tm_sample *tm_find(const struct tm_body *b, const char *series);
bool tm_has_name(const struct tm_body *b, const char *name);
bool tm_has_label(const struct tm_body *b, const char *label);
/* Number of series that repeat an earlier one; the first is copied into first. */
size_t tm_duplicates(const struct tm_body *b, char *first, size_t cap);

#endif
