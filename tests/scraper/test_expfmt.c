/* SPDX-License-Identifier: Apache-2.0 */
/* tests/scraper/test_expfmt.c: parser choice by Content-Type and the Accept header, against
 * spec protocols.md 1.1 (byte-exact strings) and 1.2 (fallback to text 0.0.4). */
#include <criterion/criterion.h>
#include <string.h>

#include "scraper/scraper.h"

static enum scrape_format ct(const char *s)
{
    return scrape_format_from_content_type(s, s ? strlen(s) : 0);
}

Test(expfmt, content_type_selects_parser)
{
    cr_assert_eq(ct(NULL), SCRAPE_FORMAT_TEXT);
    cr_assert_eq(ct(""), SCRAPE_FORMAT_TEXT);
    cr_assert_eq(ct("text/plain"), SCRAPE_FORMAT_TEXT);
    cr_assert_eq(ct("text/plain; version=0.0.4; charset=utf-8"), SCRAPE_FORMAT_TEXT);
    cr_assert_eq(ct("text/html"), SCRAPE_FORMAT_TEXT);
    cr_assert_eq(ct("application/openmetrics-text; version=1.0.0; charset=utf-8"),
                 SCRAPE_FORMAT_OPENMETRICS);
    cr_assert_eq(ct("application/openmetrics-text;version=0.0.1"), SCRAPE_FORMAT_OPENMETRICS);
    cr_assert_eq(ct("application/openmetrics-text"), SCRAPE_FORMAT_OPENMETRICS);
    cr_assert_eq(ct("  Application/OpenMetrics-Text ; version=\"1.0.0\""),
                 SCRAPE_FORMAT_OPENMETRICS);
    cr_assert_eq(ct("application/openmetrics-text; version=2.0.0"), SCRAPE_FORMAT_OPENMETRICS);
    cr_assert_eq(ct("application/openmetrics-text;"), SCRAPE_FORMAT_OPENMETRICS);
    cr_assert_eq(ct("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
                    "encoding=delimited"),
                 SCRAPE_FORMAT_PROTOBUF);
}

Test(expfmt, unparsable_content_type_falls_back_to_text)
{
    cr_assert_eq(ct("application/openmetrics-text; version"), SCRAPE_FORMAT_TEXT);
    cr_assert_eq(ct("application/openmetrics-text; =1"), SCRAPE_FORMAT_TEXT);
    cr_assert_eq(ct("application/openmetrics-text; a=1; a=2"), SCRAPE_FORMAT_TEXT);
    cr_assert_eq(ct("application/openmetrics-text; a=1; a=1"), SCRAPE_FORMAT_OPENMETRICS);
    cr_assert_eq(ct("application/openmetrics-text; v=\"unterminated"), SCRAPE_FORMAT_TEXT);
    cr_assert_eq(ct("application/openmetrics-text x"), SCRAPE_FORMAT_TEXT);
    cr_assert_eq(ct("application/"), SCRAPE_FORMAT_TEXT);
    cr_assert_eq(ct("/openmetrics-text"), SCRAPE_FORMAT_TEXT);
    cr_assert_eq(ct("application/openmetrics-text; ;"), SCRAPE_FORMAT_TEXT);
}

Test(expfmt, accept_header_default_and_variants)
{
    char buf[512];
    enum scrape_protocol def[] = {SCRAPE_PROTO_OPENMETRICS_1_0_0, SCRAPE_PROTO_OPENMETRICS_0_0_1,
                                  SCRAPE_PROTO_PROMETHEUS_TEXT};
    int n = scrape_accept_header(def, 3, false, buf, sizeof buf);
    cr_assert_eq(n, (int)strlen(SCRAPE_ACCEPT_DEFAULT));
    cr_assert_str_eq(buf, SCRAPE_ACCEPT_DEFAULT);
    cr_assert_str_eq(buf, "application/openmetrics-text;version=1.0.0;q=0.5,application/"
                          "openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,"
                          "*/*;q=0.2");
    enum scrape_protocol nh[] = {SCRAPE_PROTO_PROMETHEUS_PROTO, SCRAPE_PROTO_OPENMETRICS_1_0_0,
                                 SCRAPE_PROTO_OPENMETRICS_0_0_1, SCRAPE_PROTO_PROMETHEUS_TEXT};
    cr_assert_gt(scrape_accept_header(nh, 4, false, buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "application/vnd.google.protobuf;proto=io.prometheus.client."
                          "MetricFamily;encoding=delimited;q=0.5,application/openmetrics-text;"
                          "version=1.0.0;q=0.4,application/openmetrics-text;version=0.0.1;q=0.3,"
                          "text/plain;version=0.0.4;q=0.2,*/*;q=0.1");
    enum scrape_protocol one[] = {SCRAPE_PROTO_PROMETHEUS_TEXT};
    cr_assert_gt(scrape_accept_header(one, 1, true, buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "text/plain;version=0.0.4;escaping=allow-utf-8;q=0.5,*/*;q=0.4");
    cr_assert_eq(scrape_accept_header(def, 3, false, buf, 20), MP_ELIMIT);
    cr_assert_eq(scrape_accept_header(def, 0, false, buf, sizeof buf), MP_EINVAL);
    enum scrape_protocol bad[] = {(enum scrape_protocol)7};
    cr_assert_eq(scrape_accept_header(bad, 1, false, buf, sizeof buf), MP_EINVAL);
}
