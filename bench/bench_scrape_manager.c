/* SPDX-License-Identifier: Apache-2.0 */
/* bench/bench_scrape_manager.c: the whole scrape path at mesh scale. A forked child serves N
 * Linkerd-proxy-shaped /metrics pages (meshsim/meshsim.h (meshsim_gen): each pod's first scrape, rendered as
 * text 0.0.4 without the job/instance target labels) on 127.0.0.1; the parent runs a scrape
 * manager over a tsdb in a temp dir with all N targets at a short interval for a while, and
 * reports, as one JSON line per run, the CPU seconds the parent spent per million appended
 * samples (getrusage: loop threads, tsdb and all; the server's CPU is the child's and is not
 * counted) and its RSS growth per active head series.
 *
 *   bench_scrape_manager [--smoke] [targets=N] [interval_ms=I] [seconds=S] [threads=T]
 *   bench_scrape_manager serve=1 targets=N seconds=S   (only the pages, for a peer scraper:
 *       prints the port; page i is /m/<i>)
 *
 * Bodies do not change between scrapes (values stay constant), so this measures the
 * steady-state cache-hit path plus tsdb appends, not chunk encoding of varying values. */
#include <inttypes.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/peer.h"
#include "meshsim/meshsim.h"
#include "common/labels.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/metrics.h"
#include "configs/config.h"
#include "scraper/scrape_internal.h"
#include "scraper/scraper.h"
#include "tsdb/tsdb.h"

struct page {
    char *body;
    size_t len;
};

static struct page *pages;
static int npages;

static enum MHD_Result serve(void *cls, struct MHD_Connection *c, const char *url,
                             const char *method, const char *version, const char *upload,
                             size_t *upload_len, void **state)
{
    (void)cls, (void)method, (void)version, (void)upload, (void)upload_len;
    if (!*state) {
        *state = &pages;
        return MHD_YES;
    }
    int i = atoi(url + 3); /* "/m/<i>" */
    struct MHD_Response *r;
    unsigned status = 200;
    if (strncmp(url, "/m/", 3) != 0 || i < 0 || i >= npages) {
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        status = 404;
    } else {
        r = MHD_create_response_from_buffer(pages[i].len, pages[i].body,
                                            MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
    }
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static void append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *buf = realloc(*buf, *cap);
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
}

/* Each pod's first scrape as a text page. Returns the number of samples per round. */
static size_t make_pages(int n)
{
    struct meshsim_gen_opts o;
    meshsim_gen_opts_init(&o);
    o.namespaces = (n + 9) / 10;
    o.duration_ms = o.interval_ms * 2;
    struct meshsim_gen *g = NULL;
    if (meshsim_gen_create(&o, &g, NULL) != 0)
        exit(1);
    pages = calloc((size_t)n, sizeof *pages);
    char **pods = calloc((size_t)n, sizeof *pods);
    size_t total = 0;
    struct meshsim_gen_scrape s;
    while (npages < n && meshsim_gen_next(g, &s) == 0) {
        int k = 0;
        while (k < npages && !(strlen(pods[k]) == s.pod.len &&
                               memcmp(pods[k], s.pod.ptr, s.pod.len) == 0))
            k++;
        if (k < npages)
            break; /* second round started */
        pods[npages] = strndup(s.pod.ptr, s.pod.len);
        struct page *p = &pages[npages];
        size_t pc = 0;
        for (size_t i = 0; i < s.n; i++) {
            const struct meshsim_gen_sample *m = &s.samples[i];
            append(&p->body, &p->len, &pc, m->labels[1].ptr, m->labels[1].len);
            bool first = true;
            for (size_t l = 1; l < m->nlabels; l++) {
                struct mp_str nm = m->labels[2 * l], v = m->labels[2 * l + 1];
                if (mp_str_eq(nm, MP_STR_LIT("job")) || mp_str_eq(nm, MP_STR_LIT("instance")))
                    continue;
                append(&p->body, &p->len, &pc, first ? "{" : ",", 1);
                first = false;
                append(&p->body, &p->len, &pc, nm.ptr, nm.len);
                append(&p->body, &p->len, &pc, "=\"", 2);
                append(&p->body, &p->len, &pc, v.ptr, v.len);
                append(&p->body, &p->len, &pc, "\"", 1);
            }
            char num[64];
            int nl = snprintf(num, sizeof num, "%s %.17g\n", first ? "" : "}", m->value);
            append(&p->body, &p->len, &pc, num, (size_t)nl);
        }
        total += s.n;
        npages++;
    }
    for (int i = 0; i < npages; i++)
        free(pods[i]);
    free(pods);
    meshsim_gen_destroy(g);
    return total;
}

struct health {
    size_t up, down;
    double dur;
    char err[256];
};

static void count_health(void *ctx, const struct scrape_target_info *t)
{
    struct health *h = ctx;
    if (t->health == SCRAPE_HEALTH_DOWN) {
        h->down++;
        snprintf(h->err, sizeof h->err, "%s", t->last_error);
    } else {
        h->up++;
    }
    h->dur += t->last_duration_s;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* Heap bytes malloc has handed out (arena and mmapped chunks). */
static size_t malloc_used(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* ---- the peer: Prometheus scraping the same pages in the same run ------------------------ */

struct peer_sample {
    double cpu_s;    /* utime + stime of the process */
    size_t rss;      /* VmRSS */
    double appended; /* prometheus_tsdb_head_samples_appended_total */
    double series;   /* prometheus_tsdb_head_series */
    double up;       /* targets up */
};

static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* fields after the command name; utime is the 14th */
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static size_t proc_rss(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    size_t kb = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "VmRSS: %zu kB", &kb) == 1)
            break;
    }
    if (f)
        fclose(f);
    return kb * 1024;
}

/* The value of an unlabelled sample in an exposition text, 0 if absent. */
static double text_value(const char *text, const char *name)
{
    size_t k = strlen(name);
    for (const char *p = text; p && (p = strstr(p, name)) != NULL; p += k) {
        if ((p == text || p[-1] == '\n') && p[k] == ' ')
            return strtod(p + k + 1, NULL);
    }
    return 0;
}

/* The value of an unlabelled gauge of r, 0 if absent. */
static double registry_value(struct mp_metrics_registry *r, const char *name)
{
    struct mp_buf b;
    mp_buf_init(&b, 0);
    double v = mp_metrics_render(r, &b) == 0 && b.data ? text_value(b.data, name) : 0;
    mp_buf_fini(&b);
    return v;
}

static void peer_measure(struct peer *p, struct peer_sample *out)
{
    struct mp_buf b;
    mp_buf_init(&b, (size_t)64 << 20);
    long code = 0;
    *out = (struct peer_sample){proc_cpu_s(p->pid), proc_rss(p->pid), 0, 0, 0};
    if (peer_http(p, "/metrics", NULL, NULL, 0, NULL, &b, &code, NULL) == 0 && code == 200 &&
        b.data) {
        /* 2.42 counts float samples under type="float" */
        out->appended =
            text_value(b.data, "prometheus_tsdb_head_samples_appended_total{type=\"float\"}") +
            text_value(b.data, "prometheus_tsdb_head_samples_appended_total");
        out->series = text_value(b.data, "prometheus_tsdb_head_series");
    }
    /* targets whose last scrape succeeded: sum(up) */
    if (peer_http(p, "/api/v1/query?query=sum(up)", NULL, NULL, 0, NULL, &b, &code, NULL) == 0 &&
        code == 200 && b.data) {
        const char *v = strstr(b.data, "\"value\":[");
        v = v ? strchr(v, '"' ) : NULL;
        v = v ? strstr(v + 8, ",\"") : NULL;
        out->up = v ? strtod(v + 2, NULL) : 0;
    }
    mp_buf_fini(&b);
}

/* Prometheus with one static target per page (same address, __metrics_path__ /m/<i>, label
 * pod="p<i>", as the manager's targets here). */
static int peer_launch(struct peer *p, const char *binary, const char *dir, unsigned port, int n,
                       long interval)
{
    char cfg[400];
    snprintf(cfg, sizeof cfg, "%s/prometheus.yml", dir);
    FILE *f = fopen(cfg, "w");
    if (!f)
        return MP_EIO;
    fprintf(f, "global:\n  scrape_interval: %ldms\n  scrape_timeout: %ldms\n"
               "scrape_configs:\n  - job_name: mesh\n    static_configs:\n",
            interval, interval * 9 / 10);
    for (int i = 0; i < n; i++)
        fprintf(f, "      - targets: ['127.0.0.1:%u']\n        labels: {__metrics_path__: /m/%d, "
                   "pod: p%d}\n",
                port, i, i);
    fclose(f);
    static const char *const extra[] = {"--log.level=warn", NULL};
    struct mp_err err = {0};
    if (peer_start(p, "prometheus", binary, dir, cfg, extra, 60000, &err) != 0) {
        fprintf(stderr, "bench_scrape_manager: %s\n", err.msg);
        return MP_EIO;
    }
    return 0;
}

static long arg(int argc, char **argv, const char *key, long def)
{
    size_t k = strlen(key);
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], key, k) == 0 && argv[i][k] == '=')
            return atol(argv[i] + k + 1);
    }
    return def;
}

static const char *sarg(int argc, char **argv, const char *key, const char *def)
{
    size_t k = strlen(key);
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], key, k) == 0 && argv[i][k] == '=')
            return argv[i] + k + 1;
    }
    return def;
}

int main(int argc, char **argv)
{
    mp_alloc_tune_server(); /* as meshprom's main: the RSS measured is the server's */
    bool smoke = argc > 1 && strcmp(argv[1], "--smoke") == 0;
    int n = (int)arg(argc, argv, "targets", smoke ? 4 : 200);
    long interval = arg(argc, argv, "interval_ms", smoke ? 200 : 1000);
    long seconds = arg(argc, argv, "seconds", smoke ? 2 : 20);
    int threads = (int)arg(argc, argv, "threads", 0); /* 0: the manager's default */
    const char *prom = sarg(argc, argv, "prometheus", smoke ? "" : "/usr/bin/prometheus");
    if (prom[0] && access(prom, X_OK) != 0)
        prom = "";
    mp_log_set_level(MP_LOG_LEVEL_WARN);
    size_t per_round = make_pages(n);
    n = npages;
    size_t page_bytes = 0;
    for (int i = 0; i < npages; i++)
        page_bytes += pages[i].len;

    int pfd[2];
    if (pipe(pfd) != 0)
        return 1;
    pid_t child = fork();
    if (child == 0) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        struct MHD_Daemon *d = MHD_start_daemon(
            MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, serve, NULL,
            MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_THREAD_POOL_SIZE, 1u,
            MHD_OPTION_CONNECTION_LIMIT, 10000u, MHD_OPTION_END);
        unsigned port = d ? MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port : 0;
        if (write(pfd[1], &port, sizeof port) != sizeof port)
            _exit(1);
        pause();
        _exit(0);
    }
    unsigned port = 0;
    if (read(pfd[0], &port, sizeof port) != sizeof port || port == 0) {
        fprintf(stderr, "server did not start\n");
        return 1;
    }
    if (arg(argc, argv, "serve", 0)) {
        /* serve only (for a peer scraper such as Prometheus): the port, then wait */
        printf("{\"port\":%u,\"targets\":%d,\"samples_per_round\":%zu}\n", port, n, per_round);
        fflush(stdout);
        sleep((unsigned)seconds);
        kill(child, SIGTERM);
        waitpid(child, NULL, 0);
        return 0;
    }

    char dir[] = "/tmp/mp-bench-scrape-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    struct tsdb_options to;
    tsdb_options_init(&to);
    to.dir = dir;
    to.wal_fsync = TSDB_WAL_FSYNC_NONE;
    to.background = false;
    struct mp_metrics_registry *reg = NULL;
    if (mp_metrics_registry_create(&reg) != 0)
        return 1;
    to.metrics = reg;
    struct tsdb *db = NULL;
    struct mp_err err = {0};
    if (tsdb_open(&to, &db, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "scrape_configs:\n  - job_name: mesh\n    scrape_interval: %ldms\n"
             "    scrape_timeout: %ldms\n",
             interval, interval * 9 / 10);
    struct cfg_config *cfg = NULL;
    if (cfg_config_load_buf("bench.yml", yaml, strlen(yaml), &cfg, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    struct peer pp = {.pid = -1};
    char pdir[] = "/tmp/mp-bench-scrape-prom-XXXXXX";
    size_t prss0 = 0;
    if (prom[0]) {
        if (!mkdtemp(pdir) || peer_launch(&pp, prom, pdir, port, n, interval) != 0)
            return 1;
        prss0 = proc_rss(pp.pid);
    }
    /* the baseline without the page generator's garbage, which the scraper would reuse */
    malloc_trim(0);
    size_t rss0 = bench_rss_bytes(), heap0 = malloc_used(), mp0 = mp_alloc_used_bytes();
    struct scrape_manager_opts mo;
    scrape_manager_opts_init(&mo);
    mo.db = db;
    if (threads > 0)
        mo.threads = threads;
    threads = mo.threads;
    struct scrape_manager *m = NULL;
    if (scrape_manager_create(&mo, &m, &err) != 0 ||
        scrape_manager_apply_config(m, cfg, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    struct mp_labels **ts = calloc((size_t)n, sizeof *ts);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    for (int i = 0; i < n; i++) {
        char path[32], pod[32];
        snprintf(path, sizeof path, "/m/%d", i);
        snprintf(pod, sizeof pod, "p%d", i);
        struct mp_label l[3] = {{MP_STR_LIT("__address__"), mp_str_c(addr)},
                                {MP_STR_LIT("__metrics_path__"), mp_str_c(path)},
                                {MP_STR_LIT("pod"), mp_str_c(pod)}};
        if (mp_labels_create(l, 3, &ts[i], NULL) != 0)
            return 1;
    }
    struct scrape_target_group g = {.source = "0", .group_labels = mp_labels_empty(),
                                    .targets = ts, .ntargets = (size_t)n};
    scrape_manager_sync(m, "mesh", &g, 1);

    /* warm-up, one interval at a time: at least 4 rounds and until every target was scraped
     * twice (at most 60 s), so every series exists and the caches are full. The first round
     * creates all series and is far slower; per round we keep the attempts started late, the
     * ticks missed and the attempts failed (timeouts when a loop fell behind) */
    struct scrape_test_stats a, b, prev = {0};
    double cs = cpu_seconds(), first_s = 0, first_cpu = 0;
    int64_t ts0 = mp_mono_ns();
    char timeline[2048] = "";
    size_t tl = 0;
    for (int r = 0; (double)r * (double)interval < 60000.0; r++) {
        int64_t end = ts0 + (int64_t)(r + 1) * interval * 1000000;
        while (mp_mono_ns() < end) {
            scrape_manager_test_stats(m, &a);
            if (first_s == 0 && a.scrapes >= (uint64_t)n) {
                first_s = (double)(mp_mono_ns() - ts0) / 1e9; /* the round creating series */
                first_cpu = cpu_seconds() - cs;
            }
            int64_t left = (end - mp_mono_ns()) / 1000;
            usleep(left > 20000 ? 20000 : left > 0 ? (useconds_t)left : 0);
        }
        scrape_manager_test_stats(m, &a);
        if (r < 16 && tl + 64 < sizeof timeline)
            tl += (size_t)snprintf(timeline + tl, sizeof timeline - tl,
                                   "%s[%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 "]",
                                   r ? "," : "", a.scrapes - prev.scrapes, a.late - prev.late,
                                   a.missed - prev.missed, a.failed - prev.failed);
        prev = a;
        if (r < 3 || a.scrapes < 2 * (uint64_t)n)
            continue;
        if (pp.pid <= 0)
            break;
        struct peer_sample ps;
        peer_measure(&pp, &ps); /* and the peer has two rounds too */
        if (ps.appended >= 2.0 * (double)per_round)
            break;
    }
    usleep((useconds_t)interval * 1000);
    struct peer_sample pa = {0}, pb = {0};
    if (pp.pid > 0)
        peer_measure(&pp, &pa);
    scrape_manager_test_stats(m, &a);
    double c0 = cpu_seconds();
    int64_t t0 = mp_mono_ns();
    usleep((useconds_t)seconds * 1000000);
    scrape_manager_test_stats(m, &b);
    double c1 = cpu_seconds();
    if (pp.pid > 0)
        peer_measure(&pp, &pb);
    double wall = (double)(mp_mono_ns() - t0) / 1e9;
    size_t rss1 = bench_rss_bytes(), heap1 = malloc_used(), mp1 = mp_alloc_used_bytes();
    double head_bytes = registry_value(reg, "meshprom_tsdb_head_bytes");
    struct tsdb_head_stats hs;
    tsdb_head_stats_get(db, &hs);
    uint64_t samples = (b.adds_by_ref + b.adds_by_labels) - (a.adds_by_ref + a.adds_by_labels);
    uint64_t scrapes = b.scrapes - a.scrapes;
    struct health h = {0};
    scrape_manager_targets(m, true, false, count_health, &h);
    double expected = (double)n * wall * 1000.0 / (double)interval;
    double ns = hs.num_series ? (double)hs.num_series : 1;
    double rounds = expected / (n ? n : 1);
    printf("{\"bench\":\"scrape_manager\",\"commit\":\"%s\",\"targets\":%d,\"threads\":%d,"
           "\"interval_ms\":%ld,\"seconds\":%.1f,\"samples_per_round\":%zu,\"bytes_per_round\":%zu,"
           "\"head_series\":%" PRIu64 ",\"scrapes\":%" PRIu64 ",\"scrapes_expected\":%.0f,"
           "\"samples\":%" PRIu64 ",\"cpu_s\":%.3f,\"cpu_s_per_million_samples\":%.4f,"
           "\"rss_bytes_per_series\":%.1f,\"heap_bytes_per_series\":%.1f,"
           "\"mp_alloc_bytes_per_series\":%.1f,\"head_bytes_per_series\":%.1f,"
           "\"cache_bytes_per_series\":%.1f,\"late_per_round\":%.2f,\"missed_per_round\":%.2f,"
           "\"first_rounds_late\":%" PRIu64 ",\"first_rounds_missed\":%" PRIu64 ","
           "\"first_round_s\":%.2f,\"first_round_cpu_s\":%.2f,"
           "\"warmup_rounds_scraped_late_missed_failed\":[%s],\"failed_per_round\":%.2f,"
           "\"targets_down\":%zu,\"mean_scrape_s\":%.4f,"
           "\"cache_misses\":%" PRIu64 ",\"last_error\":\"%s\"}\n",
           MP_GIT_REVISION, n, threads, interval, wall, per_round, page_bytes, hs.num_series, scrapes,
           expected, samples, c1 - c0, samples ? (c1 - c0) * 1e6 / (double)samples : 0.0,
           (double)(rss1 > rss0 ? rss1 - rss0 : 0) / ns,
           (double)(heap1 > heap0 ? heap1 - heap0 : 0) / ns,
           (double)(mp1 > mp0 ? mp1 - mp0 : 0) / ns, head_bytes / ns,
           (double)scrape_manager_test_cache_bytes(m) / ns, rounds > 0 ? (double)(b.late - a.late) / rounds : 0.0,
           rounds > 0 ? (double)(b.missed - a.missed) / rounds : 0.0, a.late, a.missed, first_s,
           first_cpu, timeline, rounds > 0 ? (double)(b.failed - a.failed) / rounds : 0.0, h.down,
           (h.up + h.down) ? h.dur / (double)(h.up + h.down) : 0.0,
           b.cache_misses - a.cache_misses, h.err);
    if (pp.pid > 0) {
        double psamples = pb.appended - pa.appended;
        double pcpu = pb.cpu_s - pa.cpu_s;
        double pcpm = psamples > 0 ? pcpu * 1e6 / psamples : 0;
        double prss = pb.series > 0 ? (double)(pb.rss > prss0 ? pb.rss - prss0 : 0) / pb.series : 0;
        double mcpm = samples ? (c1 - c0) * 1e6 / (double)samples : 0.0;
        double mrss = (double)(rss1 > rss0 ? rss1 - rss0 : 0) / ns;
        printf("{\"bench\":\"scrape_manager_peer\",\"peer\":\"%s\",\"targets\":%d,"
               "\"interval_ms\":%ld,\"head_series\":%.0f,\"samples\":%.0f,\"cpu_s\":%.3f,"
               "\"cpu_s_per_million_samples\":%.4f,\"rss_bytes_per_series\":%.1f,"
               "\"targets_up\":%.0f,\"cpu_ratio\":%.3f,\"rss_ratio\":%.3f}\n",
               prom, n, interval, pb.series, psamples, pcpu, pcpm, prss, pb.up,
               pcpm > 0 ? mcpm / pcpm : 0.0, prss > 0 ? mrss / prss : 0.0);
    }
    fflush(stdout);
    peer_stop(&pp);
    scrape_manager_destroy(m);
    for (int i = 0; i < n; i++)
        mp_labels_release(ts[i]);
    free(ts);
    cfg_config_destroy(cfg);
    tsdb_close(db);
    mp_metrics_registry_destroy(reg);
    kill(child, SIGTERM);
    waitpid(child, NULL, 0);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'%s%s%s", dir, prom[0] ? " '" : "", prom[0] ? pdir : "",
             prom[0] ? "'" : "");
    if (system(cmd) != 0)
        return 1;
    for (int i = 0; i < npages; i++)
        free(pages[i].body);
    free(pages);
    return smoke && scrapes == 0 ? 1 : 0;
}
