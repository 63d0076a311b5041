/* SPDX-License-Identifier: Apache-2.0 */
/* bench/bench.h: a small benchmark harness (STYLE 2.15) whose output benchstat reads.
 * Each benchmark is a function that runs its operation `iters` times. bench_run warms it up,
 * then grows the iteration count as Go's testing package does (predict from the last run,
 * at most 100x growth) until one timed run takes at least one second on the monotonic clock.
 * Results are kept alive with bench_keep(), an empty asm barrier, so the compiler cannot
 * drop the work. Output, after bench_header():
 *   commit: <git revision>
 *   cpu: <model name>
 *   BenchmarkXorAppend/counter   	  123456	      9731 ns/op	     1.383 B/sample
 * With --smoke (bench_parse_args) every benchmark runs once, so ctest can check that the
 * binary still works without spending seconds. Single-threaded; header-only. */
#ifndef BENCH_BENCH_H
#define BENCH_BENCH_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/time.h"

#ifndef MP_GIT_REVISION
#define MP_GIT_REVISION "unknown"
#endif

#define BENCH_TARGET_NS INT64_C(1000000000)

struct bench_opts {
    bool smoke;         /* one iteration each, for ctest */
    const char *filter; /* run only names containing this; NULL = all */
};

struct bench_result {
    uint64_t iters;
    int64_t ns; /* elapsed for iters operations */
};

typedef void (*bench_fn)(void *arg, uint64_t iters);

/* Keeps a value (and everything it depends on) alive without generating code. */
#define bench_keep(x) __asm__ volatile("" : : "g"(x) : "memory")

static inline void bench_parse_args(int argc, char **argv, struct bench_opts *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--smoke") == 0)
            o->smoke = true;
        else
            o->filter = argv[i];
    }
}

static inline void bench_header(void)
{
    char model[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            char *colon = strchr(line, ':');
            if (strncmp(line, "model name", 10) == 0 && colon) {
                snprintf(model, sizeof model, "%s", colon + 2);
                model[strcspn(model, "\n")] = 0;
                break;
            }
        }
        fclose(f);
    }
    printf("commit: %s\ncpu: %s\n", MP_GIT_REVISION, model);
}

/* Resident set size of this process in bytes (/proc/self/statm), 0 if unreadable. */
static inline size_t bench_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

static inline bool bench_selected(const struct bench_opts *o, const char *name)
{
    return !o->filter || strstr(name, o->filter) != NULL;
}

static inline int64_t bench_time(bench_fn fn, void *arg, uint64_t iters)
{
    int64_t t0 = mp_mono_ns();
    fn(arg, iters);
    return mp_mono_ns() - t0;
}

/* Go's testing.B rule: aim 20% past the target, grow at most 100x, at least by one. */
static inline struct bench_result bench_run(const struct bench_opts *o, bench_fn fn, void *arg)
{
    struct bench_result r = {1, 0};
    if (o->smoke) {
        r.ns = bench_time(fn, arg, 1);
        return r;
    }
    (void)bench_time(fn, arg, 1); /* warm-up: caches, page faults, branch predictors */
    for (;;) {
        r.ns = bench_time(fn, arg, r.iters);
        if (r.ns >= BENCH_TARGET_NS || r.iters >= UINT64_C(1) << 40)
            return r;
        uint64_t prev = r.iters;
        int64_t per = r.ns / (int64_t)prev;
        if (per <= 0)
            per = 1;
        uint64_t next = (uint64_t)(BENCH_TARGET_NS + BENCH_TARGET_NS / 5) / (uint64_t)per;
        if (next > prev * 100)
            next = prev * 100;
        if (next <= prev)
            next = prev + 1;
        r.iters = next;
    }
}

/* One result line: name, iterations, ns/op, then `extra` already formatted as
 * "\t<value> <unit>" pairs. */
static inline void bench_report(const char *name, struct bench_result r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline void bench_report(const char *name, struct bench_result r, const char *fmt, ...)
{
    char extra[256] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(extra, sizeof extra, fmt, ap);
    va_end(ap);
    printf("%-40s\t%10" PRIu64 "\t%12.1f ns/op%s\n", name, r.iters,
           (double)r.ns / (double)r.iters, extra);
    fflush(stdout);
}

#endif
