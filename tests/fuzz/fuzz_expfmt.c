/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_expfmt.c: scrape bodies (scraper/textparse.c) as text 0.0.4 and as
 * OpenMetrics, with and without skipping _created samples, plus the Content-Type parser on
 * the same bytes. Every slice handed out must lie inside the input, decoding never grows a
 * value, and the parser must stop. Only crashes, over-reads, UB and these checks count;
 * every error return is fine. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scraper/scraper.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t sink;

static void inside(const char *b, size_t n, struct mp_str s)
{
    if (s.len && (s.ptr < b || s.ptr + s.len > b + n))
        __builtin_trap();
}

static void decode(struct mp_str raw, bool help)
{
    char buf[256];
    size_t cap = raw.len < sizeof buf ? raw.len : sizeof buf;
    size_t n = scrape_unescape(raw, help, buf, cap);
    if (n > cap)
        __builtin_trap();
    sink += n;
}

static void run(const char *b, size_t n, enum scrape_format f, unsigned flags)
{
    struct scrape_parser p;
    struct scrape_label lab[32], ex[8];
    struct scrape_entry e = {.label = lab, .label_cap = 32};
    scrape_parser_init(&p, f, b, n, flags);
    int peeks = 0;
    for (size_t steps = 0;; steps++) {
        if (steps > n + 1)
            __builtin_trap(); /* every entry consumes at least one byte */
        int rc = scrape_parser_next(&p, &e, NULL);
        if (rc != 0) {
            if (scrape_parser_next(&p, &e, NULL) != rc)
                __builtin_trap(); /* sticky */
            return;
        }
        inside(b, n, e.name);
        inside(b, n, e.text);
        if (e.kind == SCRAPE_ENTRY_HELP)
            decode(e.text, f == SCRAPE_FORMAT_TEXT);
        if (e.kind != SCRAPE_ENTRY_SERIES)
            continue;
        inside(b, n, e.series);
        inside(b, n, e.family);
        for (size_t i = 0; i < e.nlabel; i++) {
            inside(b, n, lab[i].name);
            inside(b, n, lab[i].value);
            if (lab[i].escaped)
                decode(lab[i].value, false);
        }
        if (e.has_exemplar) {
            inside(b, n, e.exemplar);
            size_t k = scrape_exemplar_labels(e.exemplar, ex, 8);
            for (size_t i = 0; i < k && i < 8; i++) {
                inside(b, n, ex[i].name);
                inside(b, n, ex[i].value);
            }
        }
        int64_t ct;
        if (peeks++ < 8 && scrape_parser_created_ms(&p, &e, &ct))
            sink += (uint64_t)ct;
        sink += (uint64_t)scrape_entry_duplicate_label(&e);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *b = (const char *)data;
    run(b, size, SCRAPE_FORMAT_TEXT, 0);
    run(b, size, SCRAPE_FORMAT_OPENMETRICS, 0);
    run(b, size, SCRAPE_FORMAT_OPENMETRICS, SCRAPE_PARSE_SKIP_CREATED);
    sink += (uint64_t)scrape_format_from_content_type(b, size);
    return 0;
}
