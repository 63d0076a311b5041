/* SPDX-License-Identifier: Apache-2.0 */
/* tests/tsdb/test_meta.c: block meta.json (tsdb.md 4.2) and ULIDs (4.1). The reference is a
 * meta.json written by Prometheus 2.42's promtool (tests/tsdb/testdata/meta/README.md): it
 * must decode and re-encode byte for byte. Hand-written expectations cover the fields promtool
 * does not write (parents, deletable, failed, hints, zero stats), Go's string escaping, and
 * the refusal of bad input with the path in the message. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/str.h"
#include "tsdb/fileutil.h"
#include "tsdb/meta.h"

#define FIXTURE MP_TESTDATA_DIR "/meta/promtool-2.42-meta.json"

static char *load(const char *path, size_t *len)
{
    char *data = NULL;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_file_read_all(path, 1 << 20, &data, len, &err), 0, "%s", err.msg);
    return data;
}

static struct tsdb_ulid ulid_of(const char *s)
{
    struct tsdb_ulid u;
    cr_assert_eq(tsdb_ulid_parse(mp_str_c(s), &u, NULL), 0, "%s", s);
    return u;
}

static char *encode(const struct tsdb_meta *m)
{
    struct mp_buf b;
    mp_buf_init(&b, 0);
    cr_assert_eq(tsdb_meta_encode(m, &b), 0);
    size_t n;
    return mp_buf_take(&b, &n);
}

/* The promtool fixture, raw (*data, *len) and decoded into *m. */
static void load_fixture(struct tsdb_meta *m, char **data, size_t *len)
{
    *data = load(FIXTURE, len);
    tsdb_meta_init(m);
    struct mp_err err = {0};
    cr_assert_eq(tsdb_meta_decode(*data, *len, FIXTURE, m, &err), 0, "%s", err.msg);
}

static int decode_str(const char *json, struct tsdb_meta *m, struct mp_err *err)
{
    return tsdb_meta_decode(json, strlen(json), "x/meta.json", m, err);
}

Test(meta, promtool_fixture_round_trips_byte_for_byte)
{
    size_t len;
    char *data;
    struct tsdb_meta m;
    load_fixture(&m, &data, &len);
    char s[TSDB_ULID_LEN + 1];
    tsdb_ulid_format(&m.ulid, s);
    cr_assert_str_eq(s, "01M8T3SGW6QFE3M1PGCEX4R8WV");
    cr_assert_eq(m.min_time, 1700000000000);
    cr_assert_eq(m.max_time, 1700000020001);
    cr_assert_eq(m.stats.num_samples, 5);
    cr_assert_eq(m.stats.num_series, 2);
    cr_assert_eq(m.stats.num_chunks, 2);
    cr_assert_eq(m.stats.num_tombstones, 0);
    cr_assert_eq(m.compaction.level, 1);
    cr_assert_eq(m.compaction.nsources, 1);
    cr_assert_eq(tsdb_ulid_cmp(&m.compaction.sources[0], &m.ulid), 0);
    cr_assert_eq(m.version, 1);
    char *out = encode(&m);
    cr_assert_eq(strlen(out), len);
    cr_assert_eq(memcmp(out, data, len), 0, "got:\n%s\nwant:\n%s", out, data);
    mp_free(out);
    mp_free(data);
    tsdb_meta_fini(&m);
}

Test(meta, every_field_in_go_order)
{
    struct tsdb_meta m;
    tsdb_meta_init(&m);
    m.ulid = ulid_of("01BKGTZQ1SYQJTR4PB43C8PD98");
    m.min_time = -5;
    m.max_time = 7200000;
    m.stats.num_samples = 10;
    m.stats.num_float_samples = 9;
    m.stats.num_histogram_samples = 1;
    m.stats.num_series = 2;
    m.stats.num_chunks = 3;
    m.stats.num_tombstones = 4;
    m.compaction.level = 2;
    struct tsdb_ulid a = ulid_of("01BKGV7JBM69T2G1BGBGM6KB12"),
                     b = ulid_of("01BKGV7JC0RY8A6MACW02A2PJD");
    cr_assert_eq(tsdb_meta_add_source(&m, &a), 0);
    cr_assert_eq(tsdb_meta_add_source(&m, &b), 0);
    m.compaction.deletable = true;
    struct tsdb_block_desc pa = {a, 0, 3600000}, pb = {b, 3600000, 7200000};
    cr_assert_eq(tsdb_meta_add_parent(&m, &pa), 0);
    cr_assert_eq(tsdb_meta_add_parent(&m, &pb), 0);
    m.compaction.failed = true;
    cr_assert_eq(tsdb_meta_add_hint(&m, "from-out-of-order"), 0);
    const char *want = "{\n"
                       "\t\"ulid\": \"01BKGTZQ1SYQJTR4PB43C8PD98\",\n"
                       "\t\"minTime\": -5,\n"
                       "\t\"maxTime\": 7200000,\n"
                       "\t\"stats\": {\n"
                       "\t\t\"numSamples\": 10,\n"
                       "\t\t\"numFloatSamples\": 9,\n"
                       "\t\t\"numHistogramSamples\": 1,\n"
                       "\t\t\"numSeries\": 2,\n"
                       "\t\t\"numChunks\": 3,\n"
                       "\t\t\"numTombstones\": 4\n"
                       "\t},\n"
                       "\t\"compaction\": {\n"
                       "\t\t\"level\": 2,\n"
                       "\t\t\"sources\": [\n"
                       "\t\t\t\"01BKGV7JBM69T2G1BGBGM6KB12\",\n"
                       "\t\t\t\"01BKGV7JC0RY8A6MACW02A2PJD\"\n"
                       "\t\t],\n"
                       "\t\t\"deletable\": true,\n"
                       "\t\t\"parents\": [\n"
                       "\t\t\t{\n"
                       "\t\t\t\t\"ulid\": \"01BKGV7JBM69T2G1BGBGM6KB12\",\n"
                       "\t\t\t\t\"minTime\": 0,\n"
                       "\t\t\t\t\"maxTime\": 3600000\n"
                       "\t\t\t},\n"
                       "\t\t\t{\n"
                       "\t\t\t\t\"ulid\": \"01BKGV7JC0RY8A6MACW02A2PJD\",\n"
                       "\t\t\t\t\"minTime\": 3600000,\n"
                       "\t\t\t\t\"maxTime\": 7200000\n"
                       "\t\t\t}\n"
                       "\t\t],\n"
                       "\t\t\"failed\": true,\n"
                       "\t\t\"hints\": [\n"
                       "\t\t\t\"from-out-of-order\"\n"
                       "\t\t]\n"
                       "\t},\n"
                       "\t\"version\": 1\n"
                       "}";
    char *out = encode(&m);
    cr_assert_str_eq(out, want);
    /* and back */
    struct tsdb_meta m2;
    tsdb_meta_init(&m2);
    struct mp_err err = {0};
    cr_assert_eq(decode_str(out, &m2, &err), 0, "%s", err.msg);
    char *again = encode(&m2);
    cr_assert_str_eq(again, want);
    cr_assert_eq(m2.compaction.nparents, 2);
    cr_assert_eq(m2.compaction.parents[1].max_time, 7200000);
    cr_assert_str_eq(m2.compaction.hints[0], "from-out-of-order");
    mp_free(again);
    mp_free(out);
    tsdb_meta_fini(&m2);
    tsdb_meta_fini(&m);
}

Test(meta, empty_stats_print_as_go_does)
{
    struct tsdb_meta m;
    tsdb_meta_init(&m);
    m.ulid = ulid_of("00000000000000000000000000");
    char *out = encode(&m);
    cr_assert_str_eq(out, "{\n\t\"ulid\": \"00000000000000000000000000\",\n\t\"minTime\": 0,\n"
                          "\t\"maxTime\": 0,\n\t\"stats\": {},\n\t\"compaction\": {\n"
                          "\t\t\"level\": 1\n\t},\n\t\"version\": 1\n}");
    mp_free(out);
}

Test(meta, hints_use_go_string_escapes)
{
    struct tsdb_meta m;
    tsdb_meta_init(&m);
    cr_assert_eq(tsdb_meta_add_hint(&m, "a\"b\\c\n\t\x01<&>/\xe2\x80\xa8\xff\xc3\xa9"), 0);
    char *out = encode(&m);
    cr_assert_not_null(
        strstr(out, "\"a\\\"b\\\\c\\n\\t\\u0001\\u003c\\u0026\\u003e/\\u2028\\ufffd\xc3\xa9\""),
        "%s", out);
    struct tsdb_meta m2;
    tsdb_meta_init(&m2);
    struct mp_err err = {0};
    cr_assert_eq(decode_str(out, &m2, &err), 0, "%s", err.msg);
    cr_assert_str_eq(m2.compaction.hints[0], "a\"b\\c\n\t\x01<&>/\xe2\x80\xa8\xef\xbf\xbd\xc3\xa9");
    mp_free(out);
    tsdb_meta_fini(&m2);
    tsdb_meta_fini(&m);
}

static void expect_parse_error(const char *json, const char *needle)
{
    struct tsdb_meta m;
    tsdb_meta_init(&m);
    struct mp_err err = {0};
    cr_assert_eq(decode_str(json, &m, &err), MP_EPARSE, "accepted: %s", json);
    cr_assert_not_null(strstr(err.msg, "x/meta.json"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, needle), "%s does not mention %s", err.msg, needle);
    cr_assert_eq(m.compaction.nsources, 0);
    tsdb_meta_fini(&m);
}

#define GOOD_HEAD "{\"ulid\":\"01M8T3SGW6QFE3M1PGCEX4R8WV\",\"minTime\":1,\"maxTime\":2,"

Test(meta, refuses_bad_input_with_path)
{
    expect_parse_error("", "truncated");
    expect_parse_error("{", "truncated");
    expect_parse_error("[1]", "not an object");
    expect_parse_error("{\"ulid\": }", "byte");
    expect_parse_error(GOOD_HEAD "\"compaction\":{\"level\":1},\"version\":1} x", "after");
    expect_parse_error("{\"minTime\":1,\"maxTime\":2,\"compaction\":{\"level\":1},\"version\":1}",
                       "ulid: missing");
    expect_parse_error(GOOD_HEAD "\"compaction\":{\"level\":1}}", "version: missing");
    expect_parse_error(GOOD_HEAD "\"compaction\":{\"level\":1},\"version\":2}", "version: 2");
    expect_parse_error(GOOD_HEAD "\"version\":1}", "compaction: missing");
    expect_parse_error(GOOD_HEAD "\"compaction\":{},\"version\":1}", "compaction.level: missing");
    expect_parse_error(GOOD_HEAD "\"compaction\":{\"level\":1.5},\"version\":1}",
                       "compaction.level: wrong type");
    expect_parse_error("{\"ulid\":\"01M8T3SGW6QFE3M1PGCEX4R8W\",\"minTime\":1,\"maxTime\":2,"
                       "\"compaction\":{\"level\":1},\"version\":1}",
                       "ulid: ulid: 25 characters");
    expect_parse_error("{\"ulid\":\"81M8T3SGW6QFE3M1PGCEX4R8WV\",\"minTime\":1,\"maxTime\":2,"
                       "\"compaction\":{\"level\":1},\"version\":1}",
                       "overflows");
    expect_parse_error("{\"ulid\":\"01M8T3SGW6QFE3M1PGCEX4R8WU\",\"minTime\":1,\"maxTime\":2,"
                       "\"compaction\":{\"level\":1},\"version\":1}",
                       "invalid character at position 25");
    expect_parse_error("{\"ulid\":\"01M8T3SGW6QFE3M1PGCEX4R8WV\",\"minTime\":\"1\",\"maxTime\":2,"
                       "\"compaction\":{\"level\":1},\"version\":1}",
                       "minTime: wrong type");
    expect_parse_error("{\"ulid\":\"01M8T3SGW6QFE3M1PGCEX4R8WV\",\"minTime\":9223372036854775808,"
                       "\"maxTime\":2,\"compaction\":{\"level\":1},\"version\":1}",
                       "minTime: out of int64 range");
    expect_parse_error(GOOD_HEAD "\"stats\":{\"numSamples\":-1},\"compaction\":{\"level\":1},"
                                 "\"version\":1}",
                       "stats.numSamples: negative");
    expect_parse_error(GOOD_HEAD "\"compaction\":{\"level\":1,\"sources\":[\"zz\"]},\"version\":1}",
                       "compaction.sources");
    expect_parse_error(GOOD_HEAD "\"compaction\":{\"level\":1,\"parents\":[{\"ulid\":"
                                 "\"01M8T3SGW6QFE3M1PGCEX4R8WV\",\"minTime\":1}]},\"version\":1}",
                       "compaction.parents.maxTime: missing");
    expect_parse_error(GOOD_HEAD "\"compaction\":{\"level\":1,\"hints\":[1]},\"version\":1}",
                       "compaction.hints");
}

Test(meta, ignores_unknown_keys_and_accepts_lower_case_ulids)
{
    struct tsdb_meta m;
    tsdb_meta_init(&m);
    struct mp_err err = {0};
    const char *json = "{\"ulid\":\"01m8t3sgw6qfe3m1pgcex4r8wv\",\"minTime\":1,\"maxTime\":2,"
                       "\"compaction\":{\"level\":3},\"version\":1,"
                       "\"thanos\":{\"labels\":{\"a\":\"b\"},\"downsample\":{\"resolution\":0}}}";
    cr_assert_eq(decode_str(json, &m, &err), 0, "%s", err.msg);
    char s[TSDB_ULID_LEN + 1];
    tsdb_ulid_format(&m.ulid, s);
    cr_assert_str_eq(s, "01M8T3SGW6QFE3M1PGCEX4R8WV");
    cr_assert_eq(m.compaction.level, 3);
    tsdb_meta_fini(&m);
}

Test(meta, write_then_read_in_a_directory)
{
    char dir[] = "/tmp/mp-meta-test-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    size_t len;
    char *data;
    struct tsdb_meta m;
    load_fixture(&m, &data, &len);
    struct mp_err err = {0};
    cr_assert_eq(tsdb_meta_write(dir, &m, &err), 0, "%s", err.msg);
    char path[256], tmp[256];
    snprintf(path, sizeof path, "%s/meta.json", dir);
    snprintf(tmp, sizeof tmp, "%s/meta.json.tmp", dir);
    size_t len2;
    char *back = load(path, &len2);
    cr_assert_eq(len2, len);
    cr_assert_eq(memcmp(back, data, len), 0);
    struct stat st;
    cr_assert_neq(stat(tmp, &st), 0, "the .tmp file must be gone after the rename");
    struct tsdb_meta m2;
    tsdb_meta_init(&m2);
    cr_assert_eq(tsdb_meta_read(dir, &m2, &err), 0, "%s", err.msg);
    cr_assert_eq(m2.max_time, m.max_time);
    /* a corrupt file names its path */
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("{\"ulid\":", f);
    fclose(f);
    err = (struct mp_err){0};
    cr_assert_eq(tsdb_meta_read(dir, &m2, &err), MP_EPARSE);
    cr_assert_not_null(strstr(err.msg, path), "%s", err.msg);
    unlink(path);
    err = (struct mp_err){0};
    cr_assert_eq(tsdb_meta_read(dir, &m2, &err), MP_ENOTFOUND);
    cr_assert_eq(rmdir(dir), 0);
    mp_free(back);
    mp_free(data);
    tsdb_meta_fini(&m2);
    tsdb_meta_fini(&m);
}

Test(ulid, text_round_trip_and_time)
{
    struct tsdb_ulid u = ulid_of("01M8T3SGW6QFE3M1PGCEX4R8WV");
    /* promtool made this block at about 2026-12-02T00:5x UTC */
    cr_assert_eq(tsdb_ulid_time(&u) / 1000 / 86400, 20789);
    u = ulid_of("7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
    for (int i = 0; i < 16; i++)
        cr_assert_eq(u.b[i], 0xff);
    char s[TSDB_ULID_LEN + 1];
    tsdb_ulid_format(&u, s);
    cr_assert_str_eq(s, "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
    /* a known vector: time 1469918176385 ms = 0x01563DF36481 -> "01ARYZ6S41" */
    struct tsdb_ulid k = {{0x01, 0x56, 0x3d, 0xf3, 0x64, 0x81}};
    tsdb_ulid_format(&k, s);
    cr_assert_eq(strncmp(s, "01ARYZ6S41", 10), 0, "%s", s);
    cr_assert_str_eq(s + 10, "0000000000000000");
}

Test(ulid, generated_ids_are_valid_and_increase_within_a_millisecond)
{
    struct tsdb_ulid prev, u;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_ulid_generate(1700000000000, &prev, &err), 0, "%s", err.msg);
    for (int i = 0; i < 1000; i++) {
        cr_assert_eq(tsdb_ulid_generate(1700000000000, &u, &err), 0, "%s", err.msg);
        cr_assert_gt(tsdb_ulid_cmp(&u, &prev), 0, "ulid %d did not increase", i);
        cr_assert_eq(tsdb_ulid_time(&u), 1700000000000);
        char s[TSDB_ULID_LEN + 1];
        tsdb_ulid_format(&u, s);
        struct tsdb_ulid back;
        cr_assert_eq(tsdb_ulid_parse(mp_str_c(s), &back, NULL), 0);
        cr_assert_eq(tsdb_ulid_cmp(&u, &back), 0);
        prev = u;
    }
    cr_assert_eq(tsdb_ulid_generate(1700000000001, &u, &err), 0);
    cr_assert_gt(tsdb_ulid_cmp(&u, &prev), 0);
    cr_assert_eq(tsdb_ulid_generate(-1, &u, NULL), MP_EINVAL);
    cr_assert_eq(tsdb_ulid_generate(INT64_C(1) << 48, &u, NULL), MP_EINVAL);
}
