/* SPDX-License-Identifier: Apache-2.0 */
/* meshsim/server.c: every simulated proxy's admin server in one thread.
 *
 *   pod i --- listen socket <ip_i>:port --- MHD daemon i (MHD_USE_EPOLL, no thread)
 *                                                |  its epoll fd
 *   master epoll: { daemon epoll fds..., eventfd (stop / clock nudges) }
 *   loop: epoll_wait -> MHD_run(ready daemons) -> advance the model to the clock ->
 *         follow the pod set (close replaced pods' daemons, open the new ones) ->
 *         publish to the fake Kubernetes API (publish.c)
 *
 * Requests are answered inside MHD_run, on the loop thread, from the model's current state
 * (never from cached text). All MHD daemons get a turn once a second for their connection
 * timeouts. A listener belongs to a pod uid: when the pod at an index changes, the old
 * daemon stops (its socket closes) before the new one opens. */
#define _GNU_SOURCE
#include "meshsim/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/time.h"

#define BODY_LIMIT (64u << 20)

struct listener {
    struct meshsim_server *srv;
    uint64_t uid;
    size_t pod;
    struct MHD_Daemon *d;
    int mhd_ep;
};

struct meshsim_server {
    struct meshsim *m;
    struct meshsim_server_opts o;
    uint16_t port;
    int ep, evfd;
    struct listener **ls; /* one per pod index */
    size_t nls;
    atomic_bool stop;
    atomic_int_fast64_t manual_elapsed;
    atomic_size_t nlisteners;
    atomic_uint_fast64_t generation;
    struct meshsim_publish *pub; /* NULL without a fake API server */
    struct mp_buf body;
};

void meshsim_server_opts_init(struct meshsim_server_opts *o)
{
    *o = (struct meshsim_server_opts){
        .port = 4191, .speed = 1, .manual_clock = false, .k8s_listen = NULL};
}

/* ---- responses --------------------------------------------------------------------------- */

static void free_body(void *p)
{
    mp_free(p);
}

static bool wants_gzip(struct MHD_Connection *c)
{
    const char *ae = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Encoding");
    /* a "gzip" coding, unless its weight is q=0 */
    for (const char *t = ae ? strcasestr(ae, "gzip") : NULL; t; t = strcasestr(t + 4, "gzip")) {
        const char *q = t + 4;
        while (*q == ' ')
            q++;
        if (*q == ';') {
            q++;
            while (*q == ' ')
                q++;
            if ((q[0] == 'q' || q[0] == 'Q') && q[1] == '=' && strtod(q + 2, NULL) <= 0)
                continue;
        }
        return true;
    }
    return false;
}

/* gzip of [in, in + n) into a fresh mp_malloc'd buffer. */
static int gzip_body(const char *in, size_t n, char **out, size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return MP_ENOMEM;
    size_t cap = deflateBound(&zs, (uLong)n);
    char *buf = mp_malloc(cap);
    if (!buf) {
        deflateEnd(&zs);
        return MP_ENOMEM;
    }
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    zs.next_out = (Bytef *)buf;
    zs.avail_out = (uInt)cap;
    int zr = deflate(&zs, Z_FINISH);
    *out_len = zs.total_out;
    deflateEnd(&zs);
    if (zr != Z_STREAM_END) {
        mp_free(buf);
        return MP_EIO;
    }
    *out = buf;
    return 0;
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *text)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)(uintptr_t)text,
                                                             MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/plain");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_metrics(struct listener *l, struct MHD_Connection *c)
{
    struct meshsim_server *s = l->srv;
    mp_buf_reset(&s->body);
    if (meshsim_render(s->m, l->pod, &s->body, NULL) != 0)
        return send_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "render failed\n");
    char *data;
    size_t len;
    bool gz = wants_gzip(c);
    if (gz) {
        if (gzip_body(s->body.data, s->body.len, &data, &len) != 0)
            return send_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "gzip failed\n");
    } else {
        data = mp_malloc(s->body.len ? s->body.len : 1);
        if (!data)
            return MHD_NO;
        memcpy(data, s->body.data, s->body.len);
        len = s->body.len;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer_with_free_callback(len, data, free_body);
    if (!r) {
        mp_free(data);
        return MHD_NO;
    }
    /* as linkerd2-proxy: text/plain without a version parameter */
    MHD_add_response_header(r, "Content-Type", "text/plain");
    if (gz)
        MHD_add_response_header(r, "Content-Encoding", "gzip");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **req_cls)
{
    struct listener *l = cls;
    (void)version, (void)upload, (void)req_cls;
    if (*upload_size != 0) {
        *upload_size = 0; /* bodies are ignored */
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return send_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    if (strcmp(url, "/metrics") == 0)
        return send_metrics(l, c);
    if (strcmp(url, "/ready") == 0)
        return send_text(c, MHD_HTTP_OK, "ready\n");
    if (strcmp(url, "/live") == 0)
        return send_text(c, MHD_HTTP_OK, "live\n");
    return send_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
}

/* ---- listeners --------------------------------------------------------------------------- */

static int listener_open(struct meshsim_server *s, size_t i, struct mp_err *err)
{
    struct meshsim_pod_info pi;
    meshsim_pod_get(s->m, i, &pi);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return mp_err_set(err, MP_EIO, "socket: %s", strerror(errno));
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(s->port), .sin_addr.s_addr = htonl(pi.ip_u32)};
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 64) != 0) {
        int e = errno;
        close(fd);
        return mp_err_set(err, MP_EIO, "listen %s:%u: %s", pi.ip, (unsigned)s->port, strerror(e));
    }
    if (s->port == 0) { /* the first listener picks the port every pod uses */
        socklen_t sl = sizeof sa;
        if (getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
            s->port = ntohs(sa.sin_port);
    }
    struct listener *l = mp_xcalloc(1, sizeof *l);
    l->srv = s;
    l->uid = pi.uid;
    l->pod = i;
    l->d = MHD_start_daemon(MHD_USE_EPOLL, 0, NULL, NULL, handle, l, MHD_OPTION_LISTEN_SOCKET,
                            (MHD_socket)fd, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
    if (!l->d) {
        close(fd);
        mp_free(l);
        return mp_err_set(err, MP_EIO, "MHD daemon for %s:%u", pi.ip, (unsigned)s->port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(l->d, MHD_DAEMON_INFO_EPOLL_FD);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};
    if (!di || epoll_ctl(s->ep, EPOLL_CTL_ADD, di->epoll_fd, &ev) != 0) {
        MHD_stop_daemon(l->d);
        mp_free(l);
        return mp_err_set(err, MP_EIO, "epoll add for %s", pi.ip);
    }
    l->mhd_ep = di->epoll_fd;
    s->ls[i] = l;
    atomic_fetch_add_explicit(&s->nlisteners, 1, memory_order_relaxed);
    return 0;
}

static void listener_close(struct meshsim_server *s, size_t i)
{
    struct listener *l = s->ls[i];
    if (!l)
        return;
    (void)epoll_ctl(s->ep, EPOLL_CTL_DEL, l->mhd_ep, NULL);
    MHD_stop_daemon(l->d); /* closes the listen socket and open connections */
    mp_free(l);
    s->ls[i] = NULL;
    atomic_fetch_sub_explicit(&s->nlisteners, 1, memory_order_relaxed);
}

/* Listeners follow the pods: a changed uid at an index closes the old one first. */
static void follow_pods(struct meshsim_server *s)
{
    for (size_t i = 0; i < s->nls; i++) {
        struct meshsim_pod_info pi;
        meshsim_pod_get(s->m, i, &pi);
        if (s->ls[i] && s->ls[i]->uid == pi.uid)
            continue;
        listener_close(s, i);
        struct mp_err err = {0};
        if (listener_open(s, i, &err) != 0)
            MP_LOG_WARN("pod listener failed", MP_KV_STR("pod", pi.name),
                        MP_KV_STR("err", err.msg));
    }
}

/* ---- the server -------------------------------------------------------------------------- */

int meshsim_server_create(struct meshsim *m, const struct meshsim_server_opts *o,
                          struct meshsim_server **out, struct mp_err *err)
{
    *out = NULL;
    if (!(o->speed > 0 && o->speed <= 1e6))
        return mp_err_set(err, MP_EINVAL, "meshsim server: speed must be in (0, 1e6]");
    struct meshsim_server *s = mp_xcalloc(1, sizeof *s);
    s->m = m;
    s->o = *o;
    s->o.k8s_listen = NULL; /* not kept: publish.c copies what it needs */
    s->port = o->port;
    s->evfd = -1;
    atomic_init(&s->stop, false);
    atomic_init(&s->manual_elapsed, meshsim_elapsed_ms(m));
    atomic_init(&s->nlisteners, 0);
    atomic_init(&s->generation, meshsim_generation(m));
    mp_buf_init(&s->body, BODY_LIMIT);
    s->ep = epoll_create1(EPOLL_CLOEXEC);
    s->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (s->ep < 0 || s->evfd < 0 || epoll_ctl(s->ep, EPOLL_CTL_ADD, s->evfd, &ev) != 0) {
        meshsim_server_destroy(s);
        return mp_err_set(err, MP_EIO, "epoll: %s", strerror(errno));
    }
    s->nls = meshsim_pod_count(m);
    s->ls = mp_xcalloc(s->nls + 1, sizeof *s->ls);
    for (size_t i = 0; i < s->nls; i++) {
        int rc = listener_open(s, i, err);
        if (rc) {
            meshsim_server_destroy(s);
            return rc;
        }
    }
    if (o->k8s_listen) {
        int rc = meshsim_publish_create(m, o->k8s_listen, s->port, &s->pub, err);
        if (rc) {
            meshsim_server_destroy(s);
            return rc;
        }
    }
    *out = s;
    return 0;
}

void meshsim_server_destroy(struct meshsim_server *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nls; i++)
        listener_close(s, i);
    mp_free(s->ls);
    meshsim_publish_destroy(s->pub);
    if (s->ep >= 0)
        close(s->ep);
    if (s->evfd >= 0)
        close(s->evfd);
    mp_buf_fini(&s->body);
    mp_free(s);
}

static void nudge(struct meshsim_server *s)
{
    uint64_t one = 1;
    ssize_t w = write(s->evfd, &one, sizeof one); /* async-signal-safe */
    (void)w;
}

void meshsim_server_stop(struct meshsim_server *s)
{
    atomic_store_explicit(&s->stop, true, memory_order_release);
    nudge(s);
}

void meshsim_server_set_elapsed(struct meshsim_server *s, int64_t elapsed_ms)
{
    atomic_store_explicit(&s->manual_elapsed, elapsed_ms, memory_order_release);
    nudge(s);
}

int meshsim_server_run(struct meshsim_server *s, struct mp_err *err)
{
    struct epoll_event evs[256];
    int64_t t0_ns = mp_mono_ns(), base_ms = meshsim_elapsed_ms(s->m), last_sweep_ns = t0_ns;
    while (!atomic_load_explicit(&s->stop, memory_order_acquire)) {
        int n = epoll_wait(s->ep, evs, 256, 50);
        if (n < 0 && errno != EINTR)
            return mp_err_set(err, MP_EIO, "epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            struct listener *l = evs[i].data.ptr;
            if (!l) {
                uint64_t v;
                ssize_t r = read(s->evfd, &v, sizeof v);
                (void)r;
                continue;
            }
            (void)MHD_run(l->d);
        }
        int64_t now_ns = mp_mono_ns();
        if (now_ns - last_sweep_ns >= INT64_C(1000000000)) { /* connection timeouts */
            for (size_t i = 0; i < s->nls; i++)
                if (s->ls[i])
                    (void)MHD_run(s->ls[i]->d);
            last_sweep_ns = now_ns;
        }
        int64_t elapsed = s->o.manual_clock
                              ? atomic_load_explicit(&s->manual_elapsed, memory_order_acquire)
                              : base_ms + (int64_t)((double)(now_ns - t0_ns) / 1e6 * s->o.speed);
        uint64_t gen = meshsim_generation(s->m);
        meshsim_advance(s->m, elapsed);
        if (meshsim_generation(s->m) != gen)
            follow_pods(s);
        if (s->pub)
            meshsim_publish_sync(s->pub, meshsim_elapsed_ms(s->m));
        atomic_store_explicit(&s->generation, meshsim_generation(s->m), memory_order_release);
    }
    return 0;
}

uint16_t meshsim_server_port(const struct meshsim_server *s)
{
    return s->port;
}

size_t meshsim_server_listeners(const struct meshsim_server *s)
{
    return atomic_load_explicit(&s->nlisteners, memory_order_relaxed);
}

uint64_t meshsim_server_generation(const struct meshsim_server *s)
{
    return atomic_load_explicit(&s->generation, memory_order_acquire);
}

const char *meshsim_server_k8s_url(const struct meshsim_server *s)
{
    return s->pub ? meshsim_publish_url(s->pub) : NULL;
}

struct meshsim_k8s *meshsim_server_k8s(const struct meshsim_server *s)
{
    return s->pub ? meshsim_publish_k8s(s->pub) : NULL;
}
