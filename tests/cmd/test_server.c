/* SPDX-License-Identifier: Apache-2.0 */
/* End-to-end tests of the meshprom binary: start-up with the Linkerd config, readiness,
 * lifecycle endpoints, reload (good and bad), signals, flag errors and log formats. Each test
 * starts its own server on 127.0.0.1 with a fresh port and kills it at the end. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINKERD_CFG MP_SOURCE_DIR "/configs/linkerd-prometheus.yml"

struct server {
    pid_t pid;
    int port;
    char dir[64];
    char log[128];
};

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Starts meshprom with the given extra flags (NULL-terminated). */
static void start(struct server *s, const char *config, const char *const *extra)
{
    s->port = free_port();
    snprintf(s->dir, sizeof s->dir, "/tmp/mp-test-XXXXXX");
    cr_assert_not_null(mkdtemp(s->dir));
    snprintf(s->log, sizeof s->log, "%s/stderr.log", s->dir);
    char listen[64], path[96], cfg[512];
    snprintf(listen, sizeof listen, "--web.listen-address=127.0.0.1:%d", s->port);
    snprintf(path, sizeof path, "--storage.tsdb.path=%s/data", s->dir);
    snprintf(cfg, sizeof cfg, "--config.file=%s", config);
    const char *argv[32] = {MP_MESHPROM_BIN, cfg, listen, path};
    int n = 4;
    for (; extra && *extra && n < 30; extra++)
        argv[n++] = *extra;
    argv[n] = NULL;
    s->pid = fork();
    cr_assert(s->pid >= 0);
    if (s->pid == 0) {
        /* a failed assertion ends the test process: the server must not outlive it */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2);
        dup2(fd, 1);
        execv(MP_MESHPROM_BIN, (char *const *)argv);
        _exit(127);
    }
}

static size_t collect(char *p, size_t sz, size_t n, void *ud)
{
    char *buf = ud;
    size_t have = strlen(buf), add = sz * n;
    if (have + add >= 65536)
        add = 65535 - have;
    memcpy(buf + have, p, add);
    buf[have + add] = '\0';
    return sz * n;
}

/* Returns the HTTP status (0 if the connection failed); body into buf (64 KiB). */
static long request(const struct server *s, const char *method, const char *path, char *buf)
{
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s->port, path);
    buf[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, buf);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    long code = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    return code;
}

static void wait_ready(const struct server *s)
{
    static char buf[65536];
    for (int i = 0; i < 200; i++) {
        if (request(s, "GET", "/-/ready", buf) == 200)
            return;
        int status;
        cr_assert_eq(waitpid(s->pid, &status, WNOHANG), 0, "meshprom exited during start-up");
        sleep_ms(50);
    }
    cr_assert_fail("meshprom not ready after 10s");
}

/* Waits up to 10 s for the process to exit; returns its exit status or -1. */
static int wait_exit(struct server *s)
{
    for (int i = 0; i < 200; i++) {
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        sleep_ms(50);
    }
    return -1;
}

static void remove_dir(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

static void stop(struct server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
    remove_dir(s->dir);
}

static char *slurp(const char *path)
{
    static char buf[1 << 16];
    FILE *f = fopen(path, "r");
    buf[0] = '\0';
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    return buf;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static char body[65536];

Test(server, linkerd_config_starts_ready_and_serves_metrics)
{
    struct server s;
    const char *extra[] = {"--storage.tsdb.retention.time=6h", "--log.format=logfmt", NULL};
    start(&s, LINKERD_CFG, extra);
    wait_ready(&s);
    cr_assert_eq(request(&s, "GET", "/-/healthy", body), 200);
    cr_assert_str_eq(body, "Prometheus Server is Healthy.\n");
    cr_assert_eq(request(&s, "GET", "/-/ready", body), 200);
    cr_assert_str_eq(body, "Prometheus Server is Ready.\n");
    cr_assert_eq(request(&s, "HEAD", "/-/healthy", body), 200);
    cr_assert_eq(request(&s, "GET", "/metrics", body), 200);
    cr_assert(strstr(body, "\nprocess_resident_memory_bytes "), "%s", body);
    cr_assert(strstr(body, "# TYPE process_cpu_seconds_total counter"));
    cr_assert(strstr(body, "prometheus_config_last_reload_successful 1"), "%s", body);
    cr_assert_eq(request(&s, "GET", "/no/such/path", body), 404);
    cr_assert_eq(request(&s, "POST", "/-/reload", body), 403);
    cr_assert_str_eq(body, "Lifecycle API is not enabled.");
    cr_assert_eq(kill(s.pid, SIGTERM), 0);
    cr_assert_eq(wait_exit(&s), 0);
    const char *log = slurp(s.log);
    cr_assert(strstr(log, "level=info"), "%s", log);
    cr_assert(strstr(log, "ts="), "%s", log);
    cr_assert(strstr(log, "msg=\"Server is ready to receive web requests.\""), "%s", log);
    stop(&s);
}

/* A query that runs for many seconds, sent from a thread: quantile_over_time sorts each step's
 * 86,401-point window of a 1 s subquery, 10,001 times. (max_over_time over the same range now
 * finishes in tens of milliseconds, too fast for the poll below to see it running.) */
struct slow_query {
    const struct server *s;
    long code;
    char body[4096];
};

static void *run_slow_query(void *arg)
{
    struct slow_query *q = arg;
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url,
             "http://127.0.0.1:%d/api/v1/query_range?query=quantile_over_time(0.5,vector(1)%%5B1d:1s%%5D)"
             "&start=0&end=10000&step=1",
             q->s->port);
    static char buf[65536];
    buf[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, buf);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 120000L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &q->code);
    curl_easy_cleanup(c);
    size_t n = strlen(buf);
    if (n >= sizeof q->body)
        n = sizeof q->body - 1;
    memcpy(q->body, buf, n);
    q->body[n] = '\0';
    return NULL;
}

/* SIGTERM while a query runs: the engine cancels it (errorType canceled, 499) instead of the
 * shutdown waiting for it to finish, and the server exits cleanly. */
Test(server, shutdown_cancels_running_queries)
{
    struct server s;
    start(&s, LINKERD_CFG, NULL);
    wait_ready(&s);
    struct slow_query q = {.s = &s};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, run_slow_query, &q), 0);
    bool running = false;
    for (int i = 0; i < 400 && !running; i++) {
        cr_assert_eq(request(&s, "GET", "/metrics", body), 200);
        running = strstr(body, "\nprometheus_engine_queries 1\n") != NULL;
        if (!running)
            sleep_ms(25);
    }
    cr_assert(running, "the query never started");
    cr_assert_eq(kill(s.pid, SIGTERM), 0);
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_expect_eq(q.code, 499, "%ld %s", q.code, q.body);
    cr_expect_str_eq(q.body,
                     "{\"status\":\"error\",\"errorType\":\"canceled\",\"error\":\"query was "
                     "canceled in expression evaluation\"}");
    cr_assert_eq(wait_exit(&s), 0);
    stop(&s);
}

Test(server, broken_config_is_rejected_with_line_and_nothing_starts)
{
    struct server s;
    char cfg[128];
    char tmpl[] = "/tmp/mp-cfg-XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    snprintf(cfg, sizeof cfg, "%s/bad.yml", tmpl);
    write_file(cfg, "global:\n  scrape_interval: 10s\n  scrape_intervall: 5s\n");
    start(&s, cfg, NULL);
    int rc = wait_exit(&s);
    cr_assert(rc > 0 && rc < 128, "exit status %d", rc);
    const char *log = slurp(s.log);
    cr_assert(strstr(log, "bad.yml:3:"), "%s", log);
    cr_assert(strstr(log, "scrape_intervall"), "%s", log);
    cr_assert_eq(request(&s, "GET", "/-/healthy", body), 0, "nothing may listen");
    stop(&s);
    remove_dir(tmpl);
}

Test(server, reload_keeps_old_config_on_error)
{
    struct server s;
    char cfg[128];
    char tmpl[] = "/tmp/mp-cfg-XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    snprintf(cfg, sizeof cfg, "%s/p.yml", tmpl);
    write_file(cfg, "global:\n  scrape_interval: 10s\nscrape_configs:\n  - job_name: a\n");
    const char *extra[] = {"--web.enable-lifecycle", NULL};
    start(&s, cfg, extra);
    wait_ready(&s);
    cr_assert_eq(request(&s, "GET", "/-/reload", body), 405);
    cr_assert_eq(request(&s, "POST", "/-/reload", body), 200);

    write_file(cfg, "global:\n  scrape_interval: banana\n");
    cr_assert_eq(request(&s, "POST", "/-/reload", body), 500);
    cr_assert(strncmp(body, "failed to reload config: ", 25) == 0, "%s", body);
    cr_assert(strstr(body, "p.yml:2:"), "%s", body);
    cr_assert_eq(request(&s, "GET", "/metrics", body), 200);
    cr_assert(strstr(body, "prometheus_config_last_reload_successful 0"), "%s", body);

    /* SIGHUP with the bad file: logged, server stays up */
    cr_assert_eq(kill(s.pid, SIGHUP), 0);
    sleep_ms(300);
    cr_assert_eq(request(&s, "GET", "/-/healthy", body), 200);

    write_file(cfg, "global:\n  scrape_interval: 15s\n");
    cr_assert_eq(kill(s.pid, SIGHUP), 0);
    for (int i = 0; i < 100; i++) {
        request(&s, "GET", "/metrics", body);
        if (strstr(body, "prometheus_config_last_reload_successful 1"))
            break;
        sleep_ms(50);
    }
    cr_assert(strstr(body, "prometheus_config_last_reload_successful 1"), "%s", body);
    const char *log = slurp(s.log);
    cr_assert(strstr(log, "msg=\"Error reloading config\""), "%s", log);

    cr_assert_eq(request(&s, "PUT", "/-/quit", body), 200);
    cr_assert_str_eq(body, "Requesting termination... Goodbye!");
    cr_assert_eq(wait_exit(&s), 0);
    stop(&s);
    remove_dir(tmpl);
}

Test(server, json_log_format)
{
    struct server s;
    const char *extra[] = {"--log.format=json", "--log.level=debug", NULL};
    start(&s, LINKERD_CFG, extra);
    wait_ready(&s);
    kill(s.pid, SIGINT);
    cr_assert_eq(wait_exit(&s), 0);
    char *log = slurp(s.log);
    int lines = 0;
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
        cr_assert(line[0] == '{' && line[strlen(line) - 1] == '}', "not json: %s", line);
        cr_assert(strstr(line, "\"level\":"), "%s", line);
        lines++;
    }
    cr_assert(lines >= 2);
    stop(&s);
}

static int run_only(const char *const *args, char *out)
{
    int pipefd[2];
    cr_assert_eq(pipe(pipefd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(pipefd[1], 1);
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        execv(MP_MESHPROM_BIN, (char *const *)args);
        _exit(127);
    }
    close(pipefd[1]);
    size_t n = 0;
    ssize_t r;
    while (n < 65535 && (r = read(pipefd[0], out + n, 65535 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(pipefd[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(server, flag_errors_help_and_version)
{
    const char *bad[] = {MP_MESHPROM_BIN, "--storage.tsdb.pth=/x", NULL};
    cr_assert_eq(run_only(bad, body), 2);
    cr_assert(strstr(body, "unknown long flag '--storage.tsdb.pth'"), "%s", body);
    const char *help[] = {MP_MESHPROM_BIN, "--help", NULL};
    cr_assert_eq(run_only(help, body), 0);
    cr_assert(strstr(body, "--storage.tsdb.retention.time"), "%s", body);
    const char *ver[] = {MP_MESHPROM_BIN, "--version", NULL};
    cr_assert_eq(run_only(ver, body), 0);
    cr_assert(strncmp(body, "meshprom, version ", 18) == 0, "%s", body);
}
