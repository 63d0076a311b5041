/* SPDX-License-Identifier: Apache-2.0 */
/* tests/configs/testutil.h: fixture helpers shared by the configs test files. */
#ifndef TESTS_CONFIGS_TESTUTIL_H
#define TESTS_CONFIGS_TESTUTIL_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/str.h"
#include "configs/config.h"

#define TESTDATA MP_TESTDATA_DIR
#define SRCDIR MP_SOURCE_DIR

/* Sorted list of *.yml files in dir (full paths), NULL-terminated; free with free_list. */
static inline char **list_yml(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    size_t n = 0, cap = 16;
    char **v = calloc(cap, sizeof *v);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 4, ".yml") != 0)
            continue;
        if (n + 2 > cap)
            v = realloc(v, (cap *= 2) * sizeof *v);
        size_t plen = strlen(dir) + len + 2;
        v[n] = malloc(plen);
        snprintf(v[n], plen, "%s/%s", dir, de->d_name);
        n++;
    }
    closedir(d);
    v[n] = NULL;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(v[j - 1], v[j]) > 0; j--) {
            char *t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return v;
}

static inline void free_list(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static inline char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = '\0';
    if (len)
        *len = got;
    return buf;
}

/* to_yaml into a malloc'ed NUL-terminated string (NULL on failure). */
static inline char *to_yaml(const struct cfg_config *c)
{
    struct mp_buf b;
    mp_buf_init(&b, 0);
    if (cfg_config_to_yaml(c, &b) != 0) {
        mp_buf_fini(&b);
        return NULL;
    }
    char *s = strdup(b.data ? b.data : "");
    mp_buf_fini(&b);
    return s;
}

#endif
