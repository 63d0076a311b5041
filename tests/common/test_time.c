/* SPDX-License-Identifier: Apache-2.0 */
/* tests/common/test_time.c: durations, API time/duration parameters, RFC 3339 formatting.
 * Expected values come from prometheus/common model/time.go, prometheus web/api/v1/api.go
 * and Go's time package (comments name the upstream behaviour being pinned). */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/str.h"
#include "common/time.h"

#define S_MS INT64_C(1000)
#define M_MS (60 * S_MS)
#define H_MS (60 * M_MS)
#define D_MS (24 * H_MS)
#define W_MS (7 * D_MS)
#define Y_MS (365 * D_MS)

struct dur_ok {
    const char *in;
    int64_t ms;
    const char *canon; /* Duration.String() of the parsed value */
};

static const struct dur_ok dur_valid[] = {
    {"0", 0, "0s"},
    {"0s", 0, "0s"},
    {"0ms", 0, "0s"},
    {"1ms", 1, "1ms"},
    {"100ms", 100, "100ms"},
    {"1s", S_MS, "1s"},
    {"90s", 90 * S_MS, "1m30s"},
    {"5m", 5 * M_MS, "5m"},
    {"1h30m", H_MS + 30 * M_MS, "1h30m"},
    {"1m30s500ms", M_MS + 30 * S_MS + 500, "1m30s500ms"},
    {"1m500ms", M_MS + 500, "1m500ms"},
    {"1d", D_MS, "1d"},
    {"7d", W_MS, "1w"},
    {"1w", W_MS, "1w"},
    {"2w3d", 2 * W_MS + 3 * D_MS, "17d"},
    {"1y", Y_MS, "1y"},
    {"365d", Y_MS, "1y"},
    {"1y2w3d4h5m6s7ms", Y_MS + 2 * W_MS + 3 * D_MS + 4 * H_MS + 5 * M_MS + 6 * S_MS + 7,
     "382d4h5m6s7ms"},
    {"24h", D_MS, "1d"},
    {"60m", H_MS, "1h"},
    {"1000ms", S_MS, "1s"},
    {"01h", H_MS, "1h"},
    {"1h0m", H_MS, "1h"},
    {"292y", 292 * Y_MS, "292y"},
    {"9223372036854ms", INT64_C(9223372036854), "106751d23h47m16s854ms"},
};

static const char *dur_invalid[] = {
    "",     "abc",  "1",     "10",    "1.5h", "30m1h", "5m5m", "1ms1s", "-1s", "+1s",
    " 1s",  "1s ",  "1 s",   "1h 30m", "h",   "1ns",   "1us",  "1µs",   "1H",  "1S",
    "1sm",  "1d1y", "ms",    "1m1m",   "00",  "1x",    "s1",   "1h-1m", "0x1s",
};

Test(duration, parses_valid_table)
{
    for (size_t i = 0; i < sizeof dur_valid / sizeof dur_valid[0]; i++) {
        int64_t ms = -7;
        struct mp_err e;
        mp_err_clear(&e);
        int rc = mp_duration_parse(mp_str_c(dur_valid[i].in), &ms, &e);
        cr_assert_eq(rc, 0, "%s: rc %d (%s)", dur_valid[i].in, rc, e.msg);
        cr_assert_eq(ms, dur_valid[i].ms, "%s: got %" PRId64, dur_valid[i].in, ms);
    }
}

Test(duration, rejects_invalid_table)
{
    for (size_t i = 0; i < sizeof dur_invalid / sizeof dur_invalid[0]; i++) {
        int64_t ms = 12345;
        struct mp_err e;
        mp_err_clear(&e);
        int rc = mp_duration_parse(mp_str_c(dur_invalid[i]), &ms, &e);
        cr_assert_eq(rc, MP_EPARSE, "%s: accepted as %" PRId64, dur_invalid[i], ms);
        cr_assert_eq(e.code, MP_EPARSE);
        cr_assert_eq(ms, 12345, "%s: output written on failure", dur_invalid[i]);
    }
}

Test(duration, error_messages_match_prometheus)
{
    struct {
        const char *in, *msg;
    } cases[] = {
        {"abc", "not a valid duration string: \"abc\""},
        {"30m1h", "not a valid duration string: \"30m1h\""},
        {"1.5h", "unknown unit \".\" in duration \"1.5h\""}, /* unit = run of non-digits */
        {"", "empty duration string"},
        {"1ns", "unknown unit \"ns\" in duration \"1ns\""},
        {"1us", "unknown unit \"us\" in duration \"1us\""},
        {"293y", "duration out of range"},
        {"a\"b\n", "not a valid duration string: \"a\\\"b\\n\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mp_err e;
        mp_err_clear(&e);
        int64_t ms;
        cr_assert_eq(mp_duration_parse(mp_str_c(cases[i].in), &ms, &e), MP_EPARSE);
        cr_assert_str_eq(e.msg, cases[i].msg);
    }
}

Test(duration, overflow_boundaries)
{
    int64_t ms;
    /* time.Duration is int64 ns: 9223372036854775807 ns = 9223372036854 ms (+775807 ns). */
    cr_assert_eq(mp_duration_parse(mp_str_c("9223372036854775ms"), &ms, NULL), MP_EPARSE);
    cr_assert_eq(mp_duration_parse(mp_str_c("9223372036854ms"), &ms, NULL), 0);
    cr_assert_eq(mp_duration_parse(mp_str_c("9223372036855ms"), &ms, NULL), MP_EPARSE);
    cr_assert_eq(mp_duration_parse(mp_str_c("106751d23h47m16s854ms"), &ms, NULL), 0);
    cr_assert_eq(ms, INT64_C(9223372036854));
    cr_assert_eq(mp_duration_parse(mp_str_c("106751d23h47m16s855ms"), &ms, NULL), MP_EPARSE);
    cr_assert_eq(mp_duration_parse(mp_str_c("293y"), &ms, NULL), MP_EPARSE);
    cr_assert_eq(mp_duration_parse(mp_str_c("292y1w"), &ms, NULL), 0);
    /* Sum overflows although each part fits. */
    cr_assert_eq(mp_duration_parse(mp_str_c("292y52w"), &ms, NULL), MP_EPARSE);
    /* Digits beyond uint64 are a syntax error upstream (ParseUint fails). */
    struct mp_err e;
    mp_err_clear(&e);
    cr_assert_eq(mp_duration_parse(mp_str_c("99999999999999999999999s"), &ms, &e), MP_EPARSE);
    cr_assert_str_eq(e.msg, "not a valid duration string: \"99999999999999999999999s\"");
}

Test(duration, slice_is_not_nul_terminated)
{
    const char text[] = "5m30sGARBAGE";
    int64_t ms;
    cr_assert_eq(mp_duration_parse((struct mp_str){text, 5}, &ms, NULL), 0);
    cr_assert_eq(ms, 5 * M_MS + 30 * S_MS);
    cr_assert_eq(mp_duration_parse((struct mp_str){text, 1}, &ms, NULL), MP_EPARSE);
}

Test(duration, format_table)
{
    struct {
        int64_t ms;
        const char *s;
    } cases[] = {
        {0, "0s"},
        {1, "1ms"},
        {999, "999ms"},
        {S_MS, "1s"},
        {90 * S_MS + 500, "1m30s500ms"},
        {H_MS + 30 * M_MS, "1h30m"},
        {D_MS, "1d"},
        {8 * D_MS, "8d"}, /* years and weeks only when exact, as model.Duration */
        {14 * D_MS, "2w"},
        {15 * D_MS, "15d"},
        {Y_MS, "1y"},
        {Y_MS + 1, "365d1ms"},
        {-5, ""}, /* upstream emits only positive parts */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[64];
        memset(buf, 'x', sizeof buf);
        int n = mp_duration_format(cases[i].ms, buf, sizeof buf);
        cr_assert_str_eq(buf, cases[i].s, "%" PRId64, cases[i].ms);
        cr_assert_eq(n, (int)strlen(cases[i].s));
    }
}

Test(duration, format_truncates_like_snprintf)
{
    char buf[4];
    int n = mp_duration_format(H_MS + 30 * M_MS + 5 * S_MS, buf, sizeof buf);
    cr_assert_eq(n, 7); /* strlen("1h30m5s") */
    cr_assert_str_eq(buf, "1h3");
    cr_assert_eq(mp_duration_format(5, NULL, 0), 3);
}

Test(duration, round_trip)
{
    for (size_t i = 0; i < sizeof dur_valid / sizeof dur_valid[0]; i++) {
        char buf[64];
        mp_duration_format(dur_valid[i].ms, buf, sizeof buf);
        cr_assert_str_eq(buf, dur_valid[i].canon, "%s", dur_valid[i].in);
        int64_t back;
        cr_assert_eq(mp_duration_parse(mp_str_c(buf), &back, NULL), 0, "%s", buf);
        cr_assert_eq(back, dur_valid[i].ms);
    }
    /* Pseudo-random values with a fixed seed (xorshift, seed printed on failure). */
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t ms = (int64_t)(x % (uint64_t)INT64_C(9223372036854));
        if (i % 3 == 0)
            ms %= 100000000; /* more small values */
        char buf[64];
        mp_duration_format(ms, buf, sizeof buf);
        int64_t back;
        cr_assert_eq(mp_duration_parse(mp_str_c(buf), &back, NULL), 0, "seed 0x9e37.. i=%d %s",
                     i, buf);
        cr_assert_eq(back, ms, "i=%d %s", i, buf);
    }
}

Test(api_duration, floats_and_durations)
{
    struct {
        const char *in;
        int64_t ms;
    } cases[] = {
        {"15", 15000},      {"1.5", 1500},     {"0.001", 1},     {"0.0015", 1},
        {"-2", -2000},      {"1e3", 1000000},  {"0", 0},         {"5m", 5 * M_MS},
        {"1h30m", 5400000}, {"100ms", 100},    {".5", 500},      {"+3", 3000},
        {"1.", 1000},       {"0x1p4", 16000},  {"0.0009", 0}, /* truncated to ms */
        {"-0.0019", -1}, /* toward zero, as time.Duration / time.Millisecond */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = 777;
        struct mp_err e;
        mp_err_clear(&e);
        cr_assert_eq(mp_api_duration_parse(mp_str_c(cases[i].in), &ms, &e), 0, "%s: %s",
                     cases[i].in, e.msg);
        cr_assert_eq(ms, cases[i].ms, "%s: %" PRId64, cases[i].in, ms);
    }
}

Test(api_duration, rejects_with_prometheus_text)
{
    struct mp_err e;
    int64_t ms;
    mp_err_clear(&e);
    cr_assert_eq(mp_api_duration_parse(mp_str_c("1ns"), &ms, &e), MP_EPARSE);
    cr_assert_str_eq(e.msg, "cannot parse \"1ns\" to a valid duration");
    mp_err_clear(&e);
    cr_assert_eq(mp_api_duration_parse(mp_str_c(""), &ms, &e), MP_EPARSE);
    cr_assert_str_eq(e.msg, "cannot parse \"\" to a valid duration");
    mp_err_clear(&e);
    cr_assert_eq(mp_api_duration_parse(mp_str_c("1e10"), &ms, &e), MP_EPARSE);
    cr_assert_str_eq(e.msg, "cannot parse \"1e10\" to a valid duration. It overflows int64");
    mp_err_clear(&e);
    cr_assert_eq(mp_api_duration_parse(mp_str_c("-Inf"), &ms, &e), MP_EPARSE);
    cr_assert_str_eq(e.msg, "cannot parse \"-Inf\" to a valid duration. It overflows int64");
    const char *bad[] = {"abc", "1_000", "0x10", "1e", "--1", "1.5h", " 15", "15 ", "NaN"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(mp_api_duration_parse(mp_str_c(bad[i]), &ms, NULL), MP_EPARSE, "%s",
                     bad[i]);
    cr_assert_eq(mp_api_duration_parse(mp_str_c("9223372036"), &ms, NULL), 0);
    cr_assert_eq(ms, INT64_C(9223372036000));
    cr_assert_eq(mp_api_duration_parse(mp_str_c("9223372037"), &ms, NULL), MP_EPARSE);
}

Test(time_param, floats)
{
    struct {
        const char *in;
        int64_t ms;
    } cases[] = {
        {"0", 0},
        {"4", 4000},
        {"1435781451.781", INT64_C(1435781451781)},
        {"1435781451.7815", INT64_C(1435781451782)}, /* rounded, half away from zero */
        {"1435781451.7814", INT64_C(1435781451781)},
        {"-1.5", -1500},
        {"-0.1", -100},
        {"-0.0004", 0},
        {"-0.0006", -1},
        {"0.9996", 1000},
        {"1e3", 1000000},
        {"1.5e3", 1500000},
        {"+10", 10000},
        {"1.001", 1001},
        {"1.999", 1999},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = 777;
        struct mp_err e;
        mp_err_clear(&e);
        cr_assert_eq(mp_time_parse(mp_str_c(cases[i].in), &ms, &e), 0, "%s: %s", cases[i].in,
                     e.msg);
        cr_assert_eq(ms, cases[i].ms, "%s: %" PRId64, cases[i].in, ms);
    }
}

Test(time_param, every_millisecond_fraction_round_trips)
{
    /* k/1000 seconds written with three decimals must give exactly k ms (and -k). */
    for (int k = 0; k < 3000; k++) {
        char s[32];
        snprintf(s, sizeof s, "%d.%03d", 1700000000 + k / 1000, k % 1000);
        int64_t ms;
        cr_assert_eq(mp_time_parse(mp_str_c(s), &ms, NULL), 0, "%s", s);
        cr_assert_eq(ms, INT64_C(1700000000000) + k, "%s -> %" PRId64, s, ms);
        snprintf(s, sizeof s, "-%d.%03d", k / 1000, k % 1000);
        cr_assert_eq(mp_time_parse(mp_str_c(s), &ms, NULL), 0, "%s", s);
        cr_assert_eq(ms, -k, "%s -> %" PRId64, s, ms);
    }
}

Test(time_param, rfc3339)
{
    struct {
        const char *in;
        int64_t ms;
    } cases[] = {
        {"2015-07-01T20:10:51.781Z", INT64_C(1435781451781)},
        {"2015-07-01T20:10:51Z", INT64_C(1435781451000)},
        {"2015-07-01T22:10:51.781+02:00", INT64_C(1435781451781)},
        {"2015-07-01T15:40:51.781-04:30", INT64_C(1435781451781)},
        {"2015-07-01T20:10:51.7819999Z", INT64_C(1435781451781)}, /* truncated, not rounded */
        {"2015-07-01T20:10:51.123456789123Z", INT64_C(1435781451123)},
        {"2015-07-01T20:10:51.1Z", INT64_C(1435781451100)},
        {"2015-07-01T20:10:51,5Z", INT64_C(1435781451500)},
        {"1970-01-01T00:00:00Z", 0},
        {"1969-12-31T23:59:59.999Z", -1},
        {"1900-01-01T00:00:00Z", INT64_C(-2208988800000)},
        {"2000-02-29T00:00:00Z", INT64_C(951782400000)},
        {"0000-01-01T00:00:00Z", INT64_C(-62167219200000)},
        {"9999-12-31T23:59:59.999Z", INT64_C(253402300799999)},
        {"2025-03-01T00:30:00+23:59", INT64_C(1740702660000)},
        {MP_TIME_MIN_STR, MP_TIME_MIN_MS},
        {MP_TIME_MAX_STR, MP_TIME_MAX_MS},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = 777;
        struct mp_err e;
        mp_err_clear(&e);
        cr_assert_eq(mp_time_parse(mp_str_c(cases[i].in), &ms, &e), 0, "%s: %s", cases[i].in,
                     e.msg);
        cr_assert_eq(ms, cases[i].ms, "%s: %" PRId64, cases[i].in, ms);
    }
}

Test(time_param, rejects_garbage)
{
    const char *bad[] = {
        "",
        "abc",
        "now",
        "NaN",
        "Inf",
        "-Inf",
        "1e400",
        "1e17", /* beyond maxTime */
        "2015-07-01",
        "2015-07-01T20:10:51",           /* zone required */
        "2015-07-01 20:10:51Z",          /* space instead of T */
        "2015-07-01t20:10:51Z",
        "2015-07-01T20:10:51z",
        "2015-07-01T20:10:51.Z",         /* fraction needs a digit */
        "2015-07-01T24:00:00Z",
        "2015-07-01T20:60:00Z",
        "2015-07-01T20:10:60Z",
        "2015-02-29T00:00:00Z",          /* not a leap year */
        "2015-13-01T00:00:00Z",
        "2015-00-01T00:00:00Z",
        "2015-07-00T00:00:00Z",
        "2015-07-01T20:10:51+0200",
        "2015-07-01T20:10:51+24:00",
        "2015-07-01T20:10:51+02:60",
        "2015-07-01T20:10:51Z ",
        " 2015-07-01T20:10:51Z",
        "15-07-01T20:10:51Z",
        "-292273086-05-16T16:47:07Z",    /* only the exact sentinels */
        "1435781451.781s",
        " 1",
        "1 ",
        "0x10",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 777;
        struct mp_err e;
        mp_err_clear(&e);
        cr_assert_eq(mp_time_parse(mp_str_c(bad[i]), &ms, &e), MP_EPARSE, "%s accepted: %" PRId64,
                     bad[i], ms);
        cr_assert_eq(ms, 777);
    }
    struct mp_err e;
    mp_err_clear(&e);
    int64_t ms;
    cr_assert_eq(mp_time_parse(mp_str_c("abc"), &ms, &e), MP_EPARSE);
    cr_assert_str_eq(e.msg, "cannot parse \"abc\" to a valid timestamp");
}

Test(time_param, sentinels_match_prometheus_min_max)
{
    cr_assert_eq(MP_TIME_MIN_MS, (INT64_MIN / 1000 + INT64_C(62135596801)) * 1000);
    cr_assert_eq(MP_TIME_MAX_MS, (INT64_MAX / 1000 - INT64_C(62135596801)) * 1000 + 999);
    char buf[MP_TIME_FMT_MAX];
    mp_time_format_rfc3339_ms(MP_TIME_MIN_MS, buf, sizeof buf);
    cr_assert_str_eq(buf, "-292273086-05-16T16:47:06.000Z");
    mp_time_format_rfc3339_ms(MP_TIME_MAX_MS, buf, sizeof buf);
    cr_assert_str_eq(buf, "292277025-08-18T07:12:54.999Z");
}

Test(time_format, rfc3339_ms)
{
    struct {
        int64_t ms;
        const char *s;
    } cases[] = {
        {0, "1970-01-01T00:00:00.000Z"},
        {INT64_C(1740823200123), "2025-03-01T10:00:00.123Z"},
        {-1, "1969-12-31T23:59:59.999Z"},
        {INT64_C(951782400000), "2000-02-29T00:00:00.000Z"},
        {INT64_C(-62167219200000), "0000-01-01T00:00:00.000Z"},
        {INT64_C(-62167219200001), "-0001-12-31T23:59:59.999Z"},
        {INT64_C(253402300800000), "10000-01-01T00:00:00.000Z"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[MP_TIME_FMT_MAX];
        int n = mp_time_format_rfc3339_ms(cases[i].ms, buf, sizeof buf);
        cr_assert_str_eq(buf, cases[i].s);
        cr_assert_eq(n, (int)strlen(cases[i].s));
    }
    char small[8];
    cr_assert_eq(mp_time_format_rfc3339_ms(0, small, sizeof small), 24);
    cr_assert_str_eq(small, "1970-01");
}

Test(time_format, rfc3339_nano_trims_zeros)
{
    struct {
        int64_t ns;
        const char *s;
    } cases[] = {
        {0, "1970-01-01T00:00:00Z"},
        {1, "1970-01-01T00:00:00.000000001Z"},
        {INT64_C(1740823200100000000), "2025-03-01T10:00:00.1Z"},
        {INT64_C(1740823200123456789), "2025-03-01T10:00:00.123456789Z"},
        {INT64_C(1740823200120000000), "2025-03-01T10:00:00.12Z"},
        {INT64_C(1740823200000000000), "2025-03-01T10:00:00Z"},
        {-1, "1969-12-31T23:59:59.999999999Z"},
        {INT64_MAX, "2262-04-11T23:47:16.854775807Z"},
        {INT64_MIN, "1677-09-21T00:12:43.145224192Z"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[MP_TIME_FMT_MAX];
        int n = mp_time_format_rfc3339_nano(cases[i].ns, buf, sizeof buf);
        cr_assert_str_eq(buf, cases[i].s);
        cr_assert_eq(n, (int)strlen(cases[i].s));
    }
}

Test(time_format, rfc3339_round_trip_through_parse)
{
    uint64_t x = 12345;
    for (int i = 0; i < 20000; i++) {
        x = x * 6364136223846793005u + 1442695040888963407u; /* LCG, fixed seed 12345 */
        int64_t ms = (int64_t)(x >> 20) - (INT64_C(1) << 43); /* about +-278 years */
        char buf[MP_TIME_FMT_MAX];
        mp_time_format_rfc3339_ms(ms, buf, sizeof buf);
        int64_t back;
        cr_assert_eq(mp_time_parse(mp_str_c(buf), &back, NULL), 0, "i=%d %s", i, buf);
        cr_assert_eq(back, ms, "i=%d %s -> %" PRId64, i, buf, back);
    }
}

Test(clock, now_and_monotonic)
{
    int64_t now = mp_now_ms();
    cr_assert_gt(now, INT64_C(1577836800000)); /* after 2020-01-01 */
    int64_t a = mp_mono_ns(), b = mp_mono_ns();
    cr_assert_geq(b, a);
}
