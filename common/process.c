/* SPDX-License-Identifier: Apache-2.0 */
/* common/process.c: the process_* metrics of client_golang's process collector, read from
 * /proc/self at scrape time (Linux only), plus meshprom's allocator and logger counters.
 *
 * Sources, as prometheus/procfs reads them: /proc/self/stat fields 14-15 (utime, stime in
 * clock ticks), 22 (starttime in ticks since boot), 23 (vsize bytes), 24 (rss pages);
 * /proc/stat "btime"; /proc/self/fd entries; getrlimit NOFILE and AS, where an unlimited AS
 * is reported as 2^64-1 (procfs maps "unlimited" to ^uint64(0)), i.e. 1.8446744073709552e+19. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/metrics.h"

enum proc_field { F_CPU, F_START, F_VSIZE, F_RSS };

/* Reads /proc/self/stat; NaN on failure so a broken /proc shows, without failing the page. */
static double stat_field(enum proc_field which)
{
    char buf[1024];
    FILE *fp = fopen("/proc/self/stat", "r");
    if (!fp)
        return NAN;
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    /* the command name may contain spaces and ')': fields restart after the last ')' */
    char *p = strrchr(buf, ')');
    if (!p)
        return NAN;
    p++;
    unsigned long long f[32] = {0};
    int field = 3; /* the first token after ')' is field 3 (state) */
    for (char *save = NULL, *tok = strtok_r(p, " ", &save); tok && field < 32;
         tok = strtok_r(NULL, " ", &save), field++)
        f[field] = field == 3 ? 0 : strtoull(tok, NULL, 10);
    double tick = (double)sysconf(_SC_CLK_TCK);
    switch (which) {
    case F_CPU: return (double)(f[14] + f[15]) / tick;
    case F_VSIZE: return (double)f[23];
    case F_RSS: return (double)f[24] * (double)sysconf(_SC_PAGESIZE);
    case F_START: {
        FILE *sp = fopen("/proc/stat", "r");
        if (!sp)
            return NAN;
        char line[256];
        double btime = NAN;
        while (fgets(line, sizeof line, sp))
            if (strncmp(line, "btime ", 6) == 0)
                btime = strtod(line + 6, NULL);
        fclose(sp);
        return btime + (double)f[22] / tick;
    }
    }
    return NAN;
}

static double cpu_seconds(void *ctx)
{
    return stat_field(F_CPU);
}

static double start_time(void *ctx)
{
    return stat_field(F_START);
}

static double vsize(void *ctx)
{
    return stat_field(F_VSIZE);
}

static double rss(void *ctx)
{
    return stat_field(F_RSS);
}

static double rlimit_soft(int res)
{
    struct rlimit rl;
    if (getrlimit(res, &rl) != 0)
        return NAN;
    return rl.rlim_cur == RLIM_INFINITY ? 18446744073709551615.0 : (double)rl.rlim_cur;
}

static double max_fds(void *ctx)
{
    return rlimit_soft(RLIMIT_NOFILE);
}

static double max_vsize(void *ctx)
{
    return rlimit_soft(RLIMIT_AS);
}

static double open_fds(void *ctx)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return NAN;
    double n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static double alloc_bytes(void *ctx)
{
    return (double)mp_alloc_used_bytes();
}

static double log_suppressed(void *ctx)
{
    return (double)mp_log_suppressed_total();
}

int mp_metrics_process_register(struct mp_metrics_registry *r, struct mp_err *err)
{
    static const struct {
        enum mp_metric_type type;
        const char *name, *help;
        mp_metrics_value_fn *fn;
    } defs[] = {
        {MP_METRIC_COUNTER, "process_cpu_seconds_total",
         "Total user and system CPU time spent in seconds.", cpu_seconds},
        {MP_METRIC_GAUGE, "process_open_fds", "Number of open file descriptors.", open_fds},
        {MP_METRIC_GAUGE, "process_max_fds", "Maximum number of open file descriptors.", max_fds},
        {MP_METRIC_GAUGE, "process_virtual_memory_bytes", "Virtual memory size in bytes.", vsize},
        {MP_METRIC_GAUGE, "process_virtual_memory_max_bytes",
         "Maximum amount of virtual memory available in bytes.", max_vsize},
        {MP_METRIC_GAUGE, "process_resident_memory_bytes", "Resident memory size in bytes.", rss},
        {MP_METRIC_GAUGE, "process_start_time_seconds",
         "Start time of the process since unix epoch in seconds.", start_time},
        {MP_METRIC_GAUGE, "meshprom_allocator_bytes",
         "Bytes currently allocated through the meshprom allocator.", alloc_bytes},
        {MP_METRIC_COUNTER, "meshprom_log_messages_suppressed_total",
         "Log lines dropped by flood limits.", log_suppressed},
    };
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
        int rc = mp_metrics_func_register(r, defs[i].type, defs[i].name, defs[i].help,
                                          defs[i].fn, NULL, err);
        if (rc)
            return rc;
    }
    return 0;
}
