/* SPDX-License-Identifier: Apache-2.0 */
/* tests/scraper/test_sd.c: the discovery manager with static_configs and file_sd_configs
 * (groups, sources, __meta_filepath, change/removal/invalid files, apply diffing). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/metrics.h"
#include "common/str.h"
#include "scraper/sd_internal.h"
#include "test_sd_support.h"

static char dir[64];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

static void mkdir_tmp(void)
{
    strcpy(dir, "/tmp/sdtestXXXXXX");
    cr_assert(mkdtemp(dir));
}

static void rm_tmp(void)
{
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *name, const char *content)
{
    char tmp[256], path[256];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(tmp, "w");
    cr_assert(f);
    fputs(content, f);
    fclose(f);
    cr_assert_eq(rename(tmp, path), 0); /* atomic, as tools write SD files */
}

static char *yaml_file_sd(const char *pattern, const char *refresh)
{
    char *y = NULL;
    cr_assert(asprintf(&y,
                       "scrape_configs:\n"
                       "- job_name: f\n"
                       "  file_sd_configs:\n"
                       "  - files: ['%s/%s']\n"
                       "    refresh_interval: %s\n",
                       dir, pattern, refresh) > 0);
    return y;
}

Test(sd_static, groups_per_static_config)
{
    struct sd_rec *r = sd_rec_start("scrape_configs:\n"
                                    "- job_name: s\n"
                                    "  static_configs:\n"
                                    "  - targets: ['a:1', 'b:2']\n"
                                    "    labels: {env: prod}\n"
                                    "  - targets: ['c:3']\n",
                                    NULL);
    cr_assert(sd_rec_wait(r, "s",
                          "0 {env=\"prod\"} {__address__=\"a:1\"} {__address__=\"b:2\"}\n"
                          "1 {} {__address__=\"c:3\"}\n"));
    sd_rec_stop(r);
}

Test(sd_static, apply_changes_and_removes_jobs)
{
    struct sd_rec *r = sd_rec_start("scrape_configs:\n"
                                    "- job_name: s\n"
                                    "  static_configs: [{targets: ['a:1']}]\n"
                                    "- job_name: t\n"
                                    "  static_configs: [{targets: ['x:1']}]\n",
                                    NULL);
    cr_assert(sd_rec_wait(r, "s", "0 {} {__address__=\"a:1\"}\n"));
    cr_assert(sd_rec_wait(r, "t", "0 {} {__address__=\"x:1\"}\n"));
    sd_rec_apply(r, "scrape_configs:\n"
                    "- job_name: s\n"
                    "  static_configs: [{targets: ['a:2']}]\n");
    cr_assert(sd_rec_wait(r, "s", "0 {} {__address__=\"a:2\"}\n"));
    cr_assert(sd_rec_wait(r, "t", NULL), "a removed job gets a final empty update");
    sd_rec_stop(r);
}

Test(sd_file, json_yaml_glob_filepath_label)
{
    mkdir_tmp();
    write_file("a.json", "[{\"targets\":[\"h1:80\",\"h2:80\"],\"labels\":{\"team\":\"x\"}},"
                         "{\"targets\":[\"h3:80\"]}]");
    write_file("b.yml", "- targets: ['h4:81']\n  labels:\n    zone: z1\n");
    write_file("c.txt", "ignored");
    char *y = yaml_file_sd("*.*", "1h");
    /* the loader only allows .json/.yml/.yaml patterns: use two */
    free(y);
    cr_assert(asprintf(&y,
                       "scrape_configs:\n"
                       "- job_name: f\n"
                       "  file_sd_configs:\n"
                       "  - files: ['%s/*.json', '%s/*.yml']\n",
                       dir, dir) > 0);
    struct sd_rec *r = sd_rec_start(y, NULL);
    char *want = NULL;
    cr_assert(asprintf(&want,
                       "%s/a.json:0 {__meta_filepath=\"%s/a.json\", team=\"x\"} "
                       "{__address__=\"h1:80\"} {__address__=\"h2:80\"}\n"
                       "%s/a.json:1 {__meta_filepath=\"%s/a.json\"} {__address__=\"h3:80\"}\n"
                       "%s/b.yml:0 {__meta_filepath=\"%s/b.yml\", zone=\"z1\"} "
                       "{__address__=\"h4:81\"}\n",
                       dir, dir, dir, dir, dir, dir) > 0);
    cr_assert(sd_rec_wait(r, "f", want));
    free(want);
    free(y);
    sd_rec_stop(r);
    rm_tmp();
}

Test(sd_file, change_shrink_remove_and_invalid)
{
    mkdir_tmp();
    write_file("t.json", "[{\"targets\":[\"h1:80\"]},{\"targets\":[\"h2:80\"]}]");
    char *y = yaml_file_sd("*.json", "1h"); /* changes must come through inotify */
    struct sd_rec *r = sd_rec_start(y, NULL);
    char *want = NULL;
    cr_assert(asprintf(&want,
                       "%s/t.json:0 {__meta_filepath=\"%s/t.json\"} {__address__=\"h1:80\"}\n"
                       "%s/t.json:1 {__meta_filepath=\"%s/t.json\"} {__address__=\"h2:80\"}\n",
                       dir, dir, dir, dir) > 0);
    cr_assert(sd_rec_wait(r, "f", want));
    free(want);

    /* fewer groups: the old source is removed */
    write_file("t.json", "[{\"targets\":[\"h9:80\"]}]");
    cr_assert(asprintf(&want,
                       "%s/t.json:0 {__meta_filepath=\"%s/t.json\"} {__address__=\"h9:80\"}\n",
                       dir, dir) > 0);
    cr_assert(sd_rec_wait(r, "f", want));

    /* an invalid file keeps the previous groups and counts a read error */
    struct mp_counter *errs = NULL;
    cr_assert_eq(mp_metrics_counter_register(sd_rec_metrics(r),
                                             "prometheus_sd_file_read_errors_total",
                                             "The number of File-SD read errors.", &errs, NULL),
                 0);
    write_file("t.json", "[{\"targets\": [\"h9:80\"");
    for (int i = 0; i < 1000 && mp_counter_get(errs) < 1; i++)
        sd_sleep_ms(10);
    cr_assert_geq(mp_counter_get(errs), 1);
    cr_assert(sd_rec_wait(r, "f", want));
    free(want);
    write_file("t.json", "[{\"targets\":[\"h1:80\"],\"labels\":{\"9bad\":\"x\"}}]");
    for (int i = 0; i < 1000 && mp_counter_get(errs) < 2; i++)
        sd_sleep_ms(10);
    cr_assert_geq(mp_counter_get(errs), 2, "an invalid label name fails the file");

    /* removal drops every group of the file */
    char p[256];
    snprintf(p, sizeof p, "%s/t.json", dir);
    cr_assert_eq(unlink(p), 0);
    cr_assert(sd_rec_wait(r, "f", NULL));
    free(y);
    sd_rec_stop(r);
    rm_tmp();
}

Test(sd_file, polling_finds_changes_without_events)
{
    mkdir_tmp();
    char sub[128];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    /* the directory does not exist yet, so inotify cannot watch it: only polling helps */
    char *y = NULL;
    cr_assert(asprintf(&y,
                       "scrape_configs:\n"
                       "- job_name: f\n"
                       "  file_sd_configs:\n"
                       "  - files: ['%s/*.yaml']\n"
                       "    refresh_interval: 100ms\n",
                       sub) > 0);
    struct sd_rec *r = sd_rec_start(y, NULL);
    cr_assert_eq(mkdir(sub, 0700), 0);
    char path[256];
    snprintf(path, sizeof path, "%s/x.yaml", sub);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs("- targets: [a:1]\n", f);
    fclose(f);
    char *want = NULL;
    cr_assert(asprintf(&want, "%s:0 {__meta_filepath=\"%s\"} {__address__=\"a:1\"}\n", path,
                       path) > 0);
    cr_assert(sd_rec_wait(r, "f", want));
    free(want);
    free(y);
    sd_rec_stop(r);
    rm_tmp();
}

Test(sd_file, parse_errors)
{
    struct scrape_target_group *g = NULL;
    size_t n = 0;
    struct mp_err err;
    mp_err_clear(&err);
    cr_assert_eq(scrape_file_sd_parse("x.json", "{}", 2, true, &g, &n, &err), MP_EPARSE);
    mp_err_clear(&err);
    cr_assert_eq(scrape_file_sd_parse("x.json", "[{\"targets\":[1]}]", 17, true, &g, &n, &err),
                 MP_EPARSE);
    mp_err_clear(&err);
    const char *y = "- targets: [a]\n  bogus: 1\n";
    cr_assert_eq(scrape_file_sd_parse("x.yml", y, strlen(y), false, &g, &n, &err), MP_EPARSE);
    cr_assert_eq(n, 0);
    const char *empty = "";
    cr_assert_eq(scrape_file_sd_parse("x.yml", empty, 0, false, &g, &n, &err), 0);
    cr_assert_eq(n, 0);
    mp_free(g);
}

Test(sd_static, unchanged_provider_keeps_running)
{
    mkdir_tmp();
    write_file("k.json", "[{\"targets\":[\"h1:80\"]}]");
    char *y = yaml_file_sd("*.json", "1h");
    struct sd_rec *r = sd_rec_start(y, NULL);
    char *want = NULL;
    cr_assert(asprintf(&want, "%s/k.json:0 {__meta_filepath=\"%s/k.json\"} {__address__=\"h1:80\"}\n",
                       dir, dir) > 0);
    cr_assert(sd_rec_wait(r, "f", want));
    struct mp_counter *scans = NULL;
    cr_assert_eq(mp_metrics_counter_register(sd_rec_metrics(r), "prometheus_sd_file_scan_total",
                                             "The number of File-SD scans.", &scans, NULL),
                 0);
    double before = mp_counter_get(scans);
    sd_rec_apply(r, y); /* same config: the provider is kept, so no new initial scan */
    sd_sleep_ms(100);
    cr_assert_eq(mp_counter_get(scans), before);
    cr_assert(sd_rec_wait(r, "f", want));
    free(want);
    free(y);
    sd_rec_stop(r);
    rm_tmp();
}
