/* SPDX-License-Identifier: Apache-2.0 */
/* tests/scraper/support_httpc.c: see support_httpc.h. */
#include "support_httpc.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char tmpdir[64];

/* "a/b" in the next of four static buffers. */
static const char *ring_join(const char *a, const char *b)
{
    static char p[4][1100];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof p[i], "%s/%s", a, b);
    return p[i];
}

void ht_tmp_init(const char *prefix)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/%sXXXXXX", prefix);
    cr_assert(mkdtemp(tmpdir));
}

void ht_tmp_fini(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_assert_eq(system(cmd), 0);
}

const char *ht_tmpdir(void)
{
    return tmpdir;
}

const char *ht_tmp_path(const char *name)
{
    return ring_join(tmpdir, name);
}

const char *ht_tmp_write(const char *name, const char *content)
{
    const char *p = ht_tmp_path(name);
    FILE *f = fopen(p, "wb");
    cr_assert(f, "create %s", p);
    fputs(content, f);
    fclose(f);
    return p;
}

const char *ht_testdata(const char *dir, const char *name)
{
    char d[512];
    snprintf(d, sizeof d, "%s/%s", MP_TESTDATA_DIR, dir);
    return ring_join(d, name);
}

char *ht_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "open %s", path);
    char *buf = malloc(65536);
    size_t n = fread(buf, 1, 65535, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

char *ht_b64(const char *s)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(s);
    char *o = malloc(n / 3 * 4 + 8), *q = o;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *q++ = a[v >> 18 & 63];
        *q++ = a[v >> 12 & 63];
        *q++ = i + 1 < n ? a[v >> 6 & 63] : '=';
        *q++ = i + 2 < n ? a[v & 63] : '=';
    }
    *q = '\0';
    return o;
}
