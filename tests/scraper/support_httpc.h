/* SPDX-License-Identifier: Apache-2.0 */
/* tests/scraper/support_httpc.h: helpers of test_httpc.c and test_sd_kubeconfig.c: one
 * mkdtemp directory per test with files written into it, testdata reads, base64. Paths come
 * back in a small ring of static buffers (the last four stay valid). */
#ifndef TESTS_SCRAPER_SUPPORT_HTTPC_H
#define TESTS_SCRAPER_SUPPORT_HTTPC_H

/* Creates /tmp/<prefix>XXXXXX (Criterion .init) / removes it (.fini). */
void ht_tmp_init(const char *prefix);
void ht_tmp_fini(void);
const char *ht_tmpdir(void);
const char *ht_tmp_path(const char *name);
/* Writes content to tmpdir/name (replacing it); returns the path. */
const char *ht_tmp_write(const char *name, const char *content);
/* MP_TESTDATA_DIR/dir/name. */
const char *ht_testdata(const char *dir, const char *name);
/* The whole file (malloc'd; free). */
char *ht_slurp(const char *path);
/* Standard base64 of s (malloc'd). */
char *ht_b64(const char *s);

#endif
