/* SPDX-License-Identifier: Apache-2.0 */
/* meshsim/main.c: the meshsim binary. Serves a simulated Linkerd mesh on loopback: every
 * pod's proxy admin endpoint on <pod ip>:<proxy port> and, with --k8s-listen, a fake
 * Kubernetes API server holding the pods, Services, Endpoints, EndpointSlices and Nodes.
 *
 *   meshsim --preset emojivoto|mesh [--namespaces N --deployments M --replicas R --peers P]
 *           [--seed S] [--proxy-port 4191] [--ip-base 127.1.0.1] [--k8s-listen 127.0.0.1:6443]
 *           [--churn-every 10m --churn-fraction 0.1] [--speed X] [--log.level info]
 *
 * Prints one logfmt line with the API server URL and the number of proxies, then runs
 * until SIGINT or SIGTERM. */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common/log.h"
#include "common/time.h"
#include "meshsim/meshsim.h"

static struct meshsim_server *volatile g_srv; /* for the signal handler only */

static void on_signal(int sig)
{
    (void)sig;
    if (g_srv)
        meshsim_server_stop(g_srv); /* an atomic store and a write(2) */
}

static void usage(void)
{
    fprintf(stderr,
            "usage: meshsim --preset emojivoto|mesh [--namespaces N --deployments M --replicas R "
            "--peers P]\n"
            "               [--seed S] [--proxy-port 4191] [--ip-base 127.1.0.1]\n"
            "               [--k8s-listen 127.0.0.1:6443] [--churn-every 10m --churn-fraction "
            "0.1]\n"
            "               [--speed X] [--log.level debug|info|warn|error]\n");
}

static bool parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    mp_log_setup(MP_LOG_LEVEL_INFO, MP_LOG_FORMAT_LOGFMT, 2);
    enum meshsim_preset preset = MESHSIM_PRESET_EMOJIVOTO;
    for (int i = 1; i + 1 < argc; i++) /* the preset sets the defaults the other flags change */
        if (strcmp(argv[i], "--preset") == 0 && meshsim_preset_parse(argv[i + 1], &preset, NULL))
            return fprintf(stderr, "meshsim: unknown preset %s\n", argv[i + 1]), 2;
    struct meshsim_opts o;
    meshsim_opts_init(&o, preset);
    o.start_ms = mp_now_ms();
    struct meshsim_server_opts so;
    meshsim_server_opts_init(&so);
    const char *k8s = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        bool ok = v != NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage();
            return 0;
        }
        if (!v) {
            ok = false;
        } else if (strcmp(a, "--preset") == 0) {
        } else if (strcmp(a, "--namespaces") == 0) {
            ok = parse_int(v, 1, 1000, &n) && (o.namespaces = (int)n, true);
        } else if (strcmp(a, "--deployments") == 0) {
            ok = parse_int(v, 1, 1000, &n) && (o.deployments = (int)n, true);
        } else if (strcmp(a, "--replicas") == 0) {
            ok = parse_int(v, 1, 100, &n) && (o.replicas = (int)n, true);
        } else if (strcmp(a, "--peers") == 0) {
            ok = parse_int(v, 0, 100, &n) && (o.peers = (int)n, true);
        } else if (strcmp(a, "--seed") == 0) {
            char *end;
            o.seed = strtoull(v, &end, 10);
            ok = *v && !*end;
        } else if (strcmp(a, "--proxy-port") == 0) {
            ok = parse_int(v, 0, 65535, &n) && (o.proxy_port = so.port = (uint16_t)n, true);
        } else if (strcmp(a, "--ip-base") == 0) {
            struct in_addr ia;
            ok = inet_pton(AF_INET, v, &ia) == 1 && (o.ip_base = ntohl(ia.s_addr), true);
        } else if (strcmp(a, "--k8s-listen") == 0) {
            k8s = v;
        } else if (strcmp(a, "--churn-every") == 0) {
            ok = mp_duration_parse(mp_str_c(v), &o.churn_every_ms, NULL) == 0;
        } else if (strcmp(a, "--churn-fraction") == 0) {
            char *end;
            o.churn_fraction = strtod(v, &end);
            ok = *v && !*end;
        } else if (strcmp(a, "--speed") == 0) {
            char *end;
            so.speed = strtod(v, &end);
            ok = *v && !*end;
        } else if (strcmp(a, "--log.level") == 0) {
            enum mp_log_level lv;
            ok = mp_log_level_parse(v, &lv) == 0;
            if (ok)
                mp_log_set_level(lv);
        } else {
            ok = false;
        }
        if (!ok) {
            fprintf(stderr, "meshsim: bad flag %s%s%s\n", a, v ? " " : "", v ? v : "");
            usage();
            return 2;
        }
        i++;
    }
    so.k8s_listen = k8s;
    /* two descriptors per pod (listen socket, MHD epoll) plus connections */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct mp_err err = {0};
    struct meshsim *m;
    if (meshsim_create(&o, &m, &err) != 0) {
        MP_LOG_ERROR("cannot create the simulated mesh", MP_KV_STR("err", err.msg));
        return 1;
    }
    struct meshsim_server *srv;
    if (meshsim_server_create(m, &so, &srv, &err) != 0) {
        MP_LOG_ERROR("cannot start the proxies", MP_KV_STR("err", err.msg));
        meshsim_destroy(m);
        return 1;
    }
    g_srv = srv;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGINT, &sa, NULL);
    (void)sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct meshsim_pod_info first;
    meshsim_pod_get(m, 0, &first);
    const char *url = meshsim_server_k8s_url(srv);
    MP_LOG_INFO("meshsim serving", MP_KV_STR("api_server", url ? url : ""),
                MP_KV_U64("proxies", meshsim_pod_count(m)),
                MP_KV_U64("deployments", meshsim_deploy_count(m)),
                MP_KV_STR("first_proxy", first.ip),
                MP_KV_I64("proxy_port", meshsim_server_port(srv)), MP_KV_F64("speed", so.speed));
    int rc = meshsim_server_run(srv, &err);
    if (rc)
        MP_LOG_ERROR("serving failed", MP_KV_STR("err", err.msg));
    g_srv = NULL;
    meshsim_server_destroy(srv);
    meshsim_destroy(m);
    MP_LOG_INFO("meshsim stopped");
    return rc ? 1 : 0;
}
