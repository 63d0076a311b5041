/* SPDX-License-Identifier: Apache-2.0 */
/* bench/peer.c: see peer.h. */
#define _GNU_SOURCE
#include "bench/peer.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/time.h"

uint16_t peer_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    uint16_t port = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Last non-empty line of the peer's log, for error messages. */
static void last_log_line(const struct peer *p, char *buf, size_t cap)
{
    buf[0] = '\0';
    FILE *f = fopen(p->log, "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0])
            snprintf(buf, cap, "%s", line);
    }
    fclose(f);
}

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
    struct mp_buf *b = ctx;
    return mp_buf_append(b, data, size * n) == 0 ? size * n : 0;
}

int peer_http(struct peer *p, const char *path, const char *content_type, const void *body,
              size_t len, const char *const *headers, struct mp_buf *out, long *status,
              struct mp_err *err)
{
    if (!p->curl && !(p->curl = curl_easy_init()))
        return mp_err_set(err, MP_ENOMEM, "curl_easy_init failed");
    CURL *c = p->curl;
    char url[2048];
    snprintf(url, sizeof url, "%s%s", p->url, path);
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    struct curl_slist *hl = NULL;
    char ct[256];
    if (body) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
        hl = curl_slist_append(hl, ct);
    }
    for (size_t i = 0; headers && headers[i]; i++)
        hl = curl_slist_append(hl, headers[i]);
    if (hl)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    mp_buf_reset(out);
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(hl);
    if (rc != CURLE_OK)
        return mp_err_set(err, MP_EIO, "%s %s: %s", p->name, path, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    return 0;
}

int peer_start(struct peer *p, const char *name, const char *binary, const char *workdir,
               const char *config, const char *const *extra, int64_t timeout_ms,
               struct mp_err *err)
{
    memset(p, 0, sizeof *p);
    p->name = name;
    p->pid = -1;
    p->port = peer_free_port();
    if (!p->port)
        return mp_err_set(err, MP_EIO, "no free port for %s", name);
    snprintf(p->dir, sizeof p->dir, "%s/%s", workdir, name);
    snprintf(p->log, sizeof p->log, "%s/%s.log", workdir, name);
    snprintf(p->url, sizeof p->url, "http://127.0.0.1:%u", (unsigned)p->port);
    char a_cfg[512], a_dir[300], a_listen[64];
    snprintf(a_cfg, sizeof a_cfg, "--config.file=%s", config);
    snprintf(a_dir, sizeof a_dir, "--storage.tsdb.path=%s", p->dir);
    snprintf(a_listen, sizeof a_listen, "--web.listen-address=127.0.0.1:%u", (unsigned)p->port);
    const char *argv[64] = {binary, a_cfg, a_dir, a_listen};
    size_t argc = 4;
    for (size_t i = 0; extra && extra[i] && argc < 63; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;

    pid_t pid = fork();
    if (pid < 0)
        return mp_err_set(err, MP_EIO, "fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execvp(binary, (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", binary, strerror(errno));
        _exit(127);
    }
    p->pid = pid;

    struct mp_buf body;
    mp_buf_init(&body, 1 << 20);
    int64_t deadline = mp_now_ms() + timeout_ms;
    int rc = MP_EIO;
    while (mp_now_ms() < deadline) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            p->pid = -1;
            break;
        }
        long code = 0;
        if (peer_http(p, "/-/ready", NULL, NULL, 0, NULL, &body, &code, NULL) == 0 && code == 200) {
            rc = 0;
            break;
        }
        sleep_ms(100);
    }
    mp_buf_fini(&body);
    if (rc != 0) {
        char line[512];
        last_log_line(p, line, sizeof line);
        peer_stop(p);
        return mp_err_set(err, MP_EIO, "%s did not become ready on %s (log %s: %s)", name, p->url,
                          p->log, line);
    }
    return 0;
}

void peer_stop(struct peer *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGTERM);
        int64_t deadline = mp_now_ms() + 20000;
        int st;
        while (waitpid(p->pid, &st, WNOHANG) == 0) {
            if (mp_now_ms() > deadline) {
                kill(p->pid, SIGKILL);
                waitpid(p->pid, &st, 0);
                break;
            }
            sleep_ms(50);
        }
        p->pid = -1;
    }
    if (p->curl) {
        curl_easy_cleanup(p->curl);
        p->curl = NULL;
    }
}

int peer_urlencode(struct mp_buf *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        int rc;
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            *c == '-' || *c == '_' || *c == '.' || *c == '~') {
            rc = mp_buf_append(out, c, 1);
        } else {
            char e[3] = {'%', hex[*c >> 4], hex[*c & 15]};
            rc = mp_buf_append(out, e, 3);
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}
