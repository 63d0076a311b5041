/* SPDX-License-Identifier: Apache-2.0 */
/* tests/tsdb/support_chunks.c: see support_chunks.h. */
#include "support_chunks.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/alloc.h"
#include "tsdb/db.h"
#include "tsdb/tsdb.h"

uint64_t sc_rnd(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

char *sc_mktmp(const char *tag)
{
    const char *bases[] = {"/dev/shm", "/tmp"};
    for (size_t i = 0; i < 2; i++) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s/mp-%s-XXXXXX", bases[i], tag);
        if (mkdtemp(buf))
            return strdup(buf);
    }
    cr_assert_fail("mkdtemp failed");
    return NULL;
}

void sc_rmrf(const char *path)
{
    (void)!tsdb_remove_all(path, NULL);
}

uint8_t *sc_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    uint8_t *b = malloc(cap);
    size_t k;
    while ((k = fread(b + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap)
            b = realloc(b, cap *= 2);
    }
    fclose(f);
    *len = n;
    return b;
}

void sc_spit(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

uint8_t *sc_random_xor(uint64_t *state, size_t max_samples, size_t *len, int64_t *mint,
                       int64_t *maxt)
{
    struct tsdb_xor *c = NULL;
    cr_assert_eq(tsdb_xor_create(&c), 0);
    size_t n = 1 + sc_rnd(state) % max_samples;
    int64_t t = 1700000000000 + (int64_t)(sc_rnd(state) % 1000000);
    double v = (double)(sc_rnd(state) % 1000);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(tsdb_xor_append(c, t, v), 0);
        t += 10000 + (int64_t)(sc_rnd(state) % 50) - 25;
        v += (double)(sc_rnd(state) % 7) * 0.5;
    }
    *mint = tsdb_xor_min_time(c);
    *maxt = tsdb_xor_max_time(c);
    uint8_t *d = tsdb_xor_take(c, len);
    uint8_t *out = malloc(*len);
    memcpy(out, d, *len);
    mp_free(d);
    return out;
}

void sc_assert_file_eq(const char *path, const uint8_t *want, size_t len, const char *what)
{
    size_t got_len = 0;
    uint8_t *got = sc_slurp(path, &got_len);
    cr_assert_not_null(got, "%s", path);
    cr_assert_eq(got_len, len, "%s: %zu bytes, want %zu", what, got_len, len);
    cr_assert_eq(memcmp(got, want, len), 0, "%s: bytes differ", what);
    free(got);
}

void sc_limit_file_size(uint64_t bytes)
{
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &rl), 0);
    rl.rlim_cur = bytes ? (rlim_t)bytes : rl.rlim_max;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
}
