/* SPDX-License-Identifier: Apache-2.0 */
/* web/server.c: libmicrohttpd glue, routing and the request/response abstraction.
 *
 * One MHD daemon per listen address, each on a socket we bind ourselves (so ":9090" can be a
 * dual-stack [::] socket and port 0 can be read back). Per connection MHD calls on_request
 * several times:
 *
 *   first call (headers read)  -> allocate struct web_request; a Content-Length above
 *                                 max_body_bytes marks it too large (413 after the body)
 *   calls with upload data     -> append to the capped body buffer (overflow: discard, 413)
 *   last call (no more data)   -> dispatch: prefix, CORS, route lookup, 404/405/503 gates,
 *                                 form parsing, handler, optional compression, metrics
 *   on_completed               -> free the request
 *
 * Paths follow Prometheus's router (prometheus/common route over httprouter): the route
 * prefix is stripped, "/" outside the prefix redirects to the prefix, static patterns take
 * precedence over ":name"/"*name" ones. Bodies of 404/405/413 are Go's http.Error texts. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* POLLRDHUP */
#endif
#include "web/web.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef WEB_HAVE_ZLIB
#include <zlib.h>
#endif

#include "common/alloc.h"
#include "common/log.h"
#include "common/time.h"
#include "web/internal.h"

#define DEFAULT_MAX_BODY (32u << 20)
#define METRICS_PAGE_CAP (256u << 20)

struct param {
    struct mp_str name, value;
    bool from_query;
};

struct hdr {
    char *name, *value;
};

struct web_response {
    int status;
    char *content_type; /* NULL: text/plain; charset=utf-8 */
    struct hdr *hdrs;
    size_t nhdrs;
    const char *body;
    size_t len;
    bool owned; /* body allocated with mp_*, freed with mp_free */
    web_stream_fn *stream; /* streamed body instead (web_response_body_stream) */
    web_stream_done_fn *stream_done;
    void *stream_ctx;
};

struct web_request {
    struct web_server *srv;
    struct MHD_Connection *conn;
    const char *method; /* MHD's, valid for the connection */
    unsigned mbit;
    const char *url;
    struct mp_str path;
    const struct web_route *route;
    size_t np;
    struct mp_str pname[WEB_MAX_PATH_PARAMS], pval[WEB_MAX_PATH_PARAMS];
    struct mp_buf body;
    bool too_large, answered;
    char *form; /* decoded copy of the body */
    struct param *params;
    size_t nparams, pcap;
    int64_t start_ns;
};

static const struct {
    const char *name;
    unsigned bit;
} method_table[] = {
    {"GET", WEB_M_GET},       {"HEAD", WEB_M_HEAD},       {"POST", WEB_M_POST},
    {"PUT", WEB_M_PUT},       {"DELETE", WEB_M_DELETE},   {"OPTIONS", WEB_M_OPTIONS},
    {"PATCH", WEB_M_PATCH},
};

static unsigned method_bit(const char *m, size_t n)
{
    for (size_t i = 0; i < sizeof method_table / sizeof method_table[0]; i++)
        if (strlen(method_table[i].name) == n && memcmp(method_table[i].name, m, n) == 0)
            return method_table[i].bit;
    return 0;
}

/* "GET, POST" text of a method mask for the Allow header. */
static void methods_text(unsigned mask, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof method_table / sizeof method_table[0]; i++)
        if (mask & method_table[i].bit)
            o += (size_t)snprintf(buf + o, cap - o, "%s%s", o ? ", " : "", method_table[i].name);
}

/* ---- options and creation ----------------------------------------------------------- */

void web_options_init(struct web_options *opt)
{
    static const char *const def_listen[] = {"0.0.0.0:9090"};
    memset(opt, 0, sizeof *opt);
    opt->listen = def_listen;
    opt->nlisten = 1;
    opt->max_connections = 512;
    opt->read_timeout_ms = 5 * 60 * 1000;
    opt->max_body_bytes = DEFAULT_MAX_BODY;
}

/* Prometheus main.go: prefix = route_prefix or the external URL's path, then
 * "/" + strings.Trim(prefix, "/"). */
char *web_route_prefix_normalise(const char *route_prefix, const char *external_url)
{
    const char *p = route_prefix && *route_prefix ? route_prefix : NULL;
    if (!p && external_url && *external_url) {
        const char *s = strstr(external_url, "://");
        s = s ? s + 3 : external_url;
        p = strchr(s, '/');
    }
    if (!p)
        p = "";
    size_t n = strlen(p);
    size_t b = strcspn(p, "?#"); /* a URL path ends at the query */
    if (!route_prefix || !*route_prefix)
        n = b;
    while (n && *p == '/') {
        p++;
        n--;
    }
    while (n && p[n - 1] == '/')
        n--;
    char *out = mp_xmalloc(n + 2);
    out[0] = '/';
    memcpy(out + 1, p, n);
    out[n + 1] = '\0';
    return out;
}

/* Splits "host:port", "[v6]:port", ":port". host gets "" for all interfaces. */
static int split_hostport(const char *addr, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *colon;
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (!end || end[1] != ':')
            return MP_EINVAL;
        if ((size_t)(end - addr - 1) >= hcap)
            return MP_EINVAL;
        memcpy(host, addr + 1, (size_t)(end - addr - 1));
        host[end - addr - 1] = '\0';
        colon = end + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon || memchr(addr, ':', (size_t)(colon - addr)))
            return MP_EINVAL; /* no port, or an unbracketed IPv6 address */
        if ((size_t)(colon - addr) >= hcap)
            return MP_EINVAL;
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
    }
    const char *ps = colon + 1;
    if (!*ps || strlen(ps) >= pcap || strspn(ps, "0123456789") != strlen(ps) || atol(ps) > 65535)
        return MP_EINVAL;
    snprintf(port, pcap, "%s", ps);
    return 0;
}

int web_server_create(const struct web_options *opt, struct web_server **out,
                      struct mp_err *err)
{
    *out = NULL;
    struct web_options def;
    if (!opt) {
        web_options_init(&def);
        opt = &def;
    }
    for (size_t i = 0; i < opt->nlisten; i++) {
        char h[256], p[16];
        if (!opt->listen[i] || split_hostport(opt->listen[i], h, sizeof h, p, sizeof p))
            return mp_err_set(err, MP_EINVAL, "invalid listen address \"%s\"",
                              opt->listen[i] ? opt->listen[i] : "");
    }
    struct web_server *srv = mp_xcalloc(1, sizeof *srv);
    srv->prefix = web_route_prefix_normalise(opt->route_prefix, opt->external_url);
    srv->prefix_len = strcmp(srv->prefix, "/") == 0 ? 0 : strlen(srv->prefix);
    srv->external_url = mp_xstrdup(opt->external_url ? opt->external_url : "");
    srv->lifecycle = opt->enable_lifecycle;
    srv->max_conn = opt->max_connections ? opt->max_connections : 512;
    srv->max_body = opt->max_body_bytes ? opt->max_body_bytes : DEFAULT_MAX_BODY;
    srv->pool = opt->thread_pool_size;
    int64_t t = opt->read_timeout_ms > 0 ? opt->read_timeout_ms : 5 * 60 * 1000;
    srv->timeout_s = (unsigned)((t + 999) / 1000);
    srv->reg = opt->registry ? opt->registry : mp_metrics_default();
    srv->reload = opt->reload;
    srv->quit = opt->quit;
    srv->lctx = opt->lifecycle_ctx;
    srv->auth = opt->auth;
    srv->auth_ctx = opt->auth_ctx;
    if (!opt->tls_cert_pem != !opt->tls_key_pem) {
        mp_free(srv->prefix);
        mp_free(srv->external_url);
        mp_free(srv);
        return mp_err_set(err, MP_EINVAL, "TLS needs both a certificate and a key");
    }
    if (opt->tls_cert_pem) {
        srv->tls_cert = mp_xstrdup(opt->tls_cert_pem);
        srv->tls_key = mp_xstrdup(opt->tls_key_pem);
        srv->tls_prio = mp_xstrdup(opt->tls_priorities && *opt->tls_priorities
                                       ? opt->tls_priorities
                                       : "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2");
    }
    atomic_init(&srv->ready, false);
    atomic_init(&srv->quitting, false);
    srv->nls = opt->nlisten;
    srv->ls = mp_xcalloc(srv->nls ? srv->nls : 1, sizeof *srv->ls);
    for (size_t i = 0; i < srv->nls; i++) {
        srv->ls[i].srv = srv;
        srv->ls[i].addr = mp_xstrdup(opt->listen[i]);
        srv->ls[i].fd = -1;
    }
    int rc = 0;
    if (opt->cors_origin && strcmp(opt->cors_origin, ".*") != 0) {
        rc = mp_regex_compile(mp_str_c(opt->cors_origin), 0, &srv->cors, err);
        if (rc)
            mp_err_wrap(err, "--web.cors.origin");
    }
    if (!rc)
        rc = web_metrics_register(srv, err);
    if (!rc)
        rc = web_builtin_register(srv, err);
    if (rc) {
        web_server_destroy(srv);
        return rc;
    }
    *out = srv;
    return 0;
}

/* ---- routes ------------------------------------------------------------------------- */

static bool pattern_valid(const char *p)
{
    if (p[0] != '/')
        return false;
    for (const char *s = p; *s; s++) {
        if ((*s == ':' || *s == '*') && s[-1] != '/')
            return false;
        if (*s == ':' && (s[1] == '\0' || s[1] == '/'))
            return false;
        if (*s == '*' && strchr(s, '/'))
            return false;
    }
    return true;
}

int web_server_route(struct web_server *srv, const char *methods, const char *pattern,
                     web_handler_fn *fn, void *ctx, struct mp_err *err)
{
    if (srv->running)
        return mp_err_set(err, MP_EINVAL, "route %s: server already running", pattern);
    if (!pattern || !pattern_valid(pattern) || !fn)
        return mp_err_set(err, MP_EINVAL, "invalid route pattern \"%s\"", pattern ? pattern : "");
    unsigned mask = 0;
    for (const char *m = methods ? methods : ""; *m;) {
        size_t n = strcspn(m, "|");
        unsigned b = method_bit(m, n);
        if (!b)
            return mp_err_set(err, MP_EINVAL, "route %s: unknown method \"%.*s\"", pattern,
                              (int)n, m);
        mask |= b;
        m += n + (m[n] == '|');
    }
    if (!mask)
        return mp_err_set(err, MP_EINVAL, "route %s: no method", pattern);
    for (size_t i = 0; i < srv->nroutes; i++)
        if (strcmp(srv->routes[i].pattern, pattern) == 0 && (srv->routes[i].methods & mask))
            return mp_err_set(err, MP_EEXISTS, "route %s registered twice", pattern);
    if (srv->nroutes == srv->rcap) {
        srv->rcap = srv->rcap ? srv->rcap * 2 : 16;
        srv->routes = mp_xrealloc(srv->routes, srv->rcap * sizeof *srv->routes);
    }
    struct web_route *r = &srv->routes[srv->nroutes++];
    r->methods = mask;
    r->pattern = mp_xstrdup(pattern);
    r->is_static = !strpbrk(pattern, ":*");
    r->fn = fn;
    r->ctx = ctx;
    const char *lv[] = {pattern};
    r->duration = mp_metrics_vec_histogram(srv->m_duration, lv);
    r->size = mp_metrics_vec_histogram(srv->m_size, lv);
    return 0;
}

/* Matches path against pattern; fills req's path params when req is non-NULL. */
static bool route_match(const char *pat, struct mp_str path, struct web_request *req)
{
    const char *s = path.ptr, *end = path.ptr + path.len;
    size_t np = 0;
    while (*pat) {
        if (*pat == ':' || *pat == '*') {
            bool rest = *pat == '*';
            const char *name = pat + 1;
            size_t nlen = strcspn(name, "/");
            const char *v = s;
            if (rest)
                s = end;
            else
                while (s < end && *s != '/')
                    s++;
            if (!rest && s == v)
                return false;
            if (req && np < WEB_MAX_PATH_PARAMS) {
                req->pname[np] = (struct mp_str){name, nlen};
                req->pval[np] = (struct mp_str){v, (size_t)(s - v)};
                np++;
            }
            pat = name + nlen;
            continue;
        }
        if (s == end || *s != *pat)
            return false;
        s++;
        pat++;
    }
    if (s != end)
        return false;
    if (req)
        req->np = np;
    return true;
}

/* ---- request accessors -------------------------------------------------------------- */

const char *web_request_method(const struct web_request *req)
{
    return req->method;
}

struct mp_str web_request_path(const struct web_request *req)
{
    return req->path;
}

const char *web_request_pattern(const struct web_request *req)
{
    return req->route ? req->route->pattern : "";
}

struct mp_str web_request_path_param(const struct web_request *req, const char *name)
{
    for (size_t i = 0; i < req->np; i++)
        if (mp_str_eq(req->pname[i], mp_str_c(name)))
            return req->pval[i];
    return (struct mp_str){"", 0};
}

const char *web_request_header(const struct web_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

bool web_request_param(const struct web_request *req, const char *name, struct mp_str *out)
{
    return web_request_params(req, name, out, 1) > 0;
}

size_t web_request_params(const struct web_request *req, const char *name, struct mp_str *out,
                          size_t cap)
{
    size_t n = 0;
    struct mp_str key = mp_str_c(name);
    for (size_t i = 0; i < req->nparams; i++) {
        if (!mp_str_eq(req->params[i].name, key))
            continue;
        if (n < cap)
            out[n] = req->params[i].value;
        n++;
    }
    return n;
}

bool web_request_query_param(const struct web_request *req, const char *name,
                             struct mp_str *out)
{
    struct mp_str key = mp_str_c(name);
    for (size_t i = 0; i < req->nparams; i++)
        if (req->params[i].from_query && mp_str_eq(req->params[i].name, key)) {
            *out = req->params[i].value;
            return true;
        }
    return false;
}

struct mp_str web_request_body(const struct web_request *req)
{
    return (struct mp_str){req->body.data ? req->body.data : "", req->body.len};
}

bool web_request_client_gone(const struct web_request *req)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return false;
    /* the handler owns the connection's thread, so MHD is not reading the socket now: a FIN
     * (POLLRDHUP) or a reset stays visible without consuming anything */
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0)
        return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

/* ---- response ----------------------------------------------------------------------- */

void web_response_status(struct web_response *resp, int status)
{
    resp->status = status;
}

void web_response_content_type(struct web_response *resp, const char *content_type)
{
    mp_free(resp->content_type);
    resp->content_type = mp_xstrdup(content_type);
}

void web_response_header(struct web_response *resp, const char *name, const char *value)
{
    resp->hdrs = mp_xrealloc(resp->hdrs, (resp->nhdrs + 1) * sizeof *resp->hdrs);
    resp->hdrs[resp->nhdrs].name = mp_xstrdup(name);
    resp->hdrs[resp->nhdrs].value = mp_xstrdup(value);
    resp->nhdrs++;
}

static void body_clear(struct web_response *resp)
{
    if (resp->owned)
        mp_free((void *)resp->body);
    if (resp->stream && resp->stream_done)
        resp->stream_done(resp->stream_ctx);
    resp->stream = NULL;
    resp->stream_done = NULL;
    resp->body = NULL;
    resp->len = 0;
    resp->owned = false;
}

void web_response_body_take(struct web_response *resp, struct mp_buf *b)
{
    body_clear(resp);
    size_t len = 0;
    char *p = mp_buf_take(b, &len);
    resp->body = p;
    resp->len = p ? len : 0;
    resp->owned = p != NULL;
}

struct web_stream {
    web_stream_fn *fn;
    web_stream_done_fn *done;
    void *ctx;
};

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct web_stream *ws = cls;
    size_t n = 0;
    int rc = ws->fn(ws->ctx, buf, max, &n);
    if (rc == 0 && n)
        return (ssize_t)n;
    return rc == MP_EEOF ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void stream_free(void *cls)
{
    struct web_stream *ws = cls;
    if (ws->done)
        ws->done(ws->ctx);
    mp_free(ws);
}

void web_response_body_stream(struct web_response *resp, web_stream_fn *fn,
                              web_stream_done_fn *done, void *ctx)
{
    body_clear(resp);
    resp->stream = fn;
    resp->stream_done = done;
    resp->stream_ctx = ctx;
}

void web_response_body_static(struct web_response *resp, const char *s, size_t len)
{
    body_clear(resp);
    resp->body = s;
    resp->len = len;
}

void web_response_body_copy(struct web_response *resp, const void *p, size_t len)
{
    body_clear(resp);
    char *c = mp_xmalloc(len ? len : 1);
    if (len)
        memcpy(c, p, len);
    resp->body = c;
    resp->len = len;
    resp->owned = true;
}

static const char *response_header_get(const struct web_response *resp, const char *name)
{
    for (size_t i = 0; i < resp->nhdrs; i++)
        if (strcasecmp(resp->hdrs[i].name, name) == 0)
            return resp->hdrs[i].value;
    return NULL;
}

static void response_fini(struct web_response *resp)
{
    body_clear(resp);
    mp_free(resp->content_type);
    for (size_t i = 0; i < resp->nhdrs; i++) {
        mp_free(resp->hdrs[i].name);
        mp_free(resp->hdrs[i].value);
    }
    mp_free(resp->hdrs);
}

/* ---- parameters --------------------------------------------------------------------- */

static void param_add(struct web_request *req, struct mp_str name, struct mp_str value,
                      bool from_query)
{
    if (req->nparams == req->pcap) {
        req->pcap = req->pcap ? req->pcap * 2 : 16;
        req->params = mp_xrealloc(req->params, req->pcap * sizeof *req->params);
    }
    req->params[req->nparams++] = (struct param){name, value, from_query};
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* In-place form decoding ('+' is a space, %XX a byte; a malformed % is kept literally). */
static size_t form_unescape(char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            s[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            s[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            s[o++] = s[i];
        }
    }
    return o;
}

static void parse_form_body(struct web_request *req)
{
    size_t n = req->body.len;
    req->form = mp_xmalloc(n + 1);
    memcpy(req->form, req->body.data ? req->body.data : "", n);
    req->form[n] = '\0';
    char *s = req->form, *end = req->form + n;
    while (s < end) {
        char *amp = memchr(s, '&', (size_t)(end - s));
        char *stop = amp ? amp : end;
        if (stop > s) {
            char *eq = memchr(s, '=', (size_t)(stop - s));
            char *kend = eq ? eq : stop;
            size_t kn = form_unescape(s, (size_t)(kend - s));
            size_t vn = 0;
            char *v = eq ? eq + 1 : stop;
            if (eq)
                vn = form_unescape(v, (size_t)(stop - v));
            param_add(req, (struct mp_str){s, kn}, (struct mp_str){v, vn}, false);
        }
        s = stop + 1;
    }
}

static enum MHD_Result query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 size_t key_size, const char *value, size_t value_size)
{
    struct web_request *req = cls;
    param_add(req, (struct mp_str){key, key_size},
              (struct mp_str){value ? value : "", value ? value_size : 0}, true);
    return MHD_YES;
}

static bool is_form_content_type(const char *ct)
{
    static const char form[] = "application/x-www-form-urlencoded";
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    return strncasecmp(ct, form, sizeof form - 1) == 0 &&
           (ct[sizeof form - 1] == '\0' || ct[sizeof form - 1] == ';' || ct[sizeof form - 1] == ' ');
}

/* ---- compression -------------------------------------------------------------------- */

/* httputil.CompressionHandler: the first of "gzip"/"deflate" among the comma-separated,
 * trimmed Accept-Encoding tokens. Returns 0 none, 1 gzip, 2 deflate. */
static int wanted_encoding(const char *ae)
{
    for (const char *s = ae; s && *s;) {
        size_t n = strcspn(s, ",");
        const char *t = s, *e = s + n;
        while (t < e && (*t == ' ' || *t == '\t'))
            t++;
        while (e > t && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - t) == 4 && memcmp(t, "gzip", 4) == 0)
            return 1;
        if ((size_t)(e - t) == 7 && memcmp(t, "deflate", 7) == 0)
            return 2;
        s += n + (s[n] == ',');
    }
    return 0;
}

#ifdef WEB_HAVE_ZLIB
/* Bodies below this go out as stored deflate blocks (level 0): they fit one segment either
 * way, and compressing them cost more than the whole query (zlib's init, hash clear and tree
 * building, ~15 us for a 700-byte answer, against ~1 us stored). The client decodes the same
 * bytes and sees the same Content-Encoding as from Prometheus. */
#define STORED_BODY_MAX 1024

/* Replaces the body with its gzip (windowBits 16 + w) or zlib (w) form; false leaves it.
 * Stored: the smallest window and hash (windowBits 9, memLevel 1), a few kB of state. */
static bool compress_body(struct web_response *resp, int enc)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    bool stored = resp->len < STORED_BODY_MAX;
    int wbits = (stored ? 9 : 15) + (enc == 1 ? 16 : 0);
    if (deflateInit2(&zs, stored ? Z_NO_COMPRESSION : Z_DEFAULT_COMPRESSION, Z_DEFLATED, wbits,
                     stored ? 1 : 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return false;
    uLong bound = deflateBound(&zs, (uLong)resp->len) + 32;
    unsigned char *out = mp_malloc(bound);
    if (!out) {
        deflateEnd(&zs);
        return false;
    }
    zs.next_in = (Bytef *)resp->body;
    zs.avail_in = (uInt)resp->len;
    zs.next_out = out;
    zs.avail_out = (uInt)bound;
    int zr = deflate(&zs, Z_FINISH);
    size_t n = (size_t)zs.total_out;
    deflateEnd(&zs);
    if (zr != Z_STREAM_END) {
        mp_free(out);
        return false;
    }
    body_clear(resp);
    resp->body = (const char *)out;
    resp->len = n;
    resp->owned = true;
    return true;
}
#endif

/* ---- dispatch ----------------------------------------------------------------------- */

static void set_error(struct web_response *resp, int status, const char *body, size_t len)
{
    resp->status = status;
    web_response_body_static(resp, body, len);
}

static void add_cors(const struct web_server *srv, const struct web_request *req,
                     struct web_response *resp)
{
    const char *origin = web_request_header(req, "Origin");
    if (!origin || !*origin)
        return;
    web_response_header(resp, "Access-Control-Allow-Headers",
                        "Accept, Authorization, Content-Type, Origin");
    web_response_header(resp, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    web_response_header(resp, "Access-Control-Expose-Headers", "Date");
    web_response_header(resp, "Vary", "Origin");
    if (!srv->cors)
        web_response_header(resp, "Access-Control-Allow-Origin", "*");
    else if (mp_regex_match(srv->cors, mp_str_c(origin)))
        web_response_header(resp, "Access-Control-Allow-Origin", origin);
}

static bool has_prefix(struct mp_str s, const char *p)
{
    size_t n = strlen(p);
    return s.len >= n && memcmp(s.ptr, p, n) == 0;
}

/* Fills resp for req. Returns the route that handled it (for metrics) or NULL. */
static const struct web_route *dispatch(struct web_server *srv, struct web_request *req,
                                        struct web_response *resp)
{
    size_t ulen = strlen(req->url);
    struct mp_str path = {req->url, ulen};
    if (srv->prefix_len) {
        if (ulen >= srv->prefix_len && memcmp(req->url, srv->prefix, srv->prefix_len) == 0 &&
            (ulen == srv->prefix_len || req->url[srv->prefix_len] == '/')) {
            path.ptr += srv->prefix_len;
            path.len -= srv->prefix_len;
            if (path.len == 0)
                path = (struct mp_str){"/", 1};
        } else if (strcmp(req->url, "/") == 0) {
            /* web.go: router.Get("/") redirects to the prefix when one is set */
            resp->status = 302;
            web_response_header(resp, "Location", srv->prefix);
            return NULL;
        } else {
            WEB_BODY_LIT(resp, "404 page not found\n");
            resp->status = 404;
            return NULL;
        }
    }
    req->path = path;
    bool api = has_prefix(path, "/api/");
    if (api)
        add_cors(srv, req, resp);
    if (api && req->mbit == WEB_M_OPTIONS) {
        resp->status = 204;
        return NULL;
    }

    const struct web_route *hit = NULL;
    unsigned allowed = 0;
    for (int pass = 0; pass < 2 && !hit; pass++) {
        for (size_t i = 0; i < srv->nroutes && !hit; i++) {
            const struct web_route *r = &srv->routes[i];
            if (r->is_static != (pass == 0))
                continue;
            if (!route_match(r->pattern, path, NULL))
                continue;
            allowed |= r->methods;
            if (r->methods & req->mbit) {
                hit = r;
                (void)route_match(r->pattern, path, req);
            }
        }
    }
    if (!hit) {
        if (!allowed) {
            set_error(resp, 404, "404 page not found\n", 19);
            return NULL;
        }
        char allow[128];
        methods_text(allowed, allow, sizeof allow);
        web_response_header(resp, "Allow", allow);
        set_error(resp, 405, "Method Not Allowed\n", 19);
        return NULL;
    }
    req->route = hit;
    if (has_prefix(path, "/api/v1/") && strcmp(hit->pattern, "/api/v1/status/walreplay") != 0 &&
        !atomic_load_explicit(&srv->ready, memory_order_acquire)) {
        set_error(resp, 503, "Service Unavailable", 19);
        return hit;
    }
    if (req->too_large) {
        set_error(resp, 413, "http: request body too large\n", 29);
        return hit;
    }
    if ((req->mbit & (WEB_M_POST | WEB_M_PUT | WEB_M_PATCH)) &&
        is_form_content_type(web_request_header(req, "Content-Type")))
        parse_form_body(req);
    MHD_get_connection_values_n(req->conn, MHD_GET_ARGUMENT_KIND, query_arg, req);
    hit->fn(hit->ctx, req, resp);
#ifdef WEB_HAVE_ZLIB
    bool compressible = api || strcmp(hit->pattern, "/metrics") == 0;
    int enc = compressible && resp->len ? wanted_encoding(web_request_header(req, "Accept-Encoding")) : 0;
    if (enc && !response_header_get(resp, "Content-Encoding") && compress_body(resp, enc)) {
        web_response_header(resp, "Content-Encoding", enc == 1 ? "gzip" : "deflate");
        if (strcmp(hit->pattern, "/metrics") == 0)
            web_response_header(resp, "Vary", "Accept-Encoding");
    }
#else
    (void)wanted_encoding;
    (void)response_header_get;
#endif
    return hit;
}

static enum MHD_Result send_response(struct web_request *req, struct web_response *resp)
{
    struct MHD_Response *r;
    if (resp->stream) {
        /* unknown size: HTTP/1.1 chunked transfer; MHD calls the reader on this connection's
         * thread and stream_free once the response is gone (sent, or the client left) */
        struct web_stream *ws = mp_xmalloc(sizeof *ws);
        *ws = (struct web_stream){resp->stream, resp->stream_done, resp->stream_ctx};
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, stream_reader, ws,
                                              stream_free);
        if (!r) {
            mp_free(ws);
            return MHD_NO; /* response_fini calls done */
        }
        resp->stream = NULL; /* MHD owns it now */
    } else if (resp->owned) {
        r = MHD_create_response_from_buffer_with_free_callback(resp->len, (void *)resp->body,
                                                               mp_free);
        if (r)
            resp->owned = false; /* MHD frees it now */
    } else {
        r = MHD_create_response_from_buffer(resp->len, (void *)(resp->body ? resp->body : ""),
                                            MHD_RESPMEM_PERSISTENT);
    }
    if (!r)
        return MHD_NO;
    bool no_body_status = resp->status == 204 || resp->status == 304;
    if (!no_body_status && !(resp->content_type && !resp->content_type[0]))
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                resp->content_type ? resp->content_type
                                                   : "text/plain; charset=utf-8");
    for (size_t i = 0; i < resp->nhdrs; i++)
        MHD_add_response_header(r, resp->hdrs[i].name, resp->hdrs[i].value);
    enum MHD_Result ret = MHD_queue_response(req->conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    return ret;
}

static void count_request(struct web_server *srv, const struct web_route *route, int status,
                          size_t bytes, int64_t start_ns)
{
    char code[8];
    snprintf(code, sizeof code, "%d", status);
    const char *lv[] = {code, route->pattern};
    mp_counter_inc(mp_metrics_vec_counter(srv->m_requests, lv));
    mp_histogram_observe(route->duration, (double)(mp_mono_ns() - start_ns) / 1e9);
    mp_histogram_observe(route->size, (double)bytes);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct web_listener *l = cls;
    struct web_server *srv = l->srv;
    struct web_request *req = *con_cls;
    if (!req) {
        req = mp_xcalloc(1, sizeof *req);
        req->srv = srv;
        req->conn = conn;
        req->method = method;
        req->mbit = method_bit(method, strlen(method));
        req->url = url;
        req->start_ns = mp_mono_ns();
        mp_buf_init(&req->body, srv->max_body);
        *con_cls = req;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > srv->max_body)
            req->too_large = true; /* answered after the last call, body discarded */
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!req->too_large && mp_buf_append(&req->body, upload_data, *upload_data_size)) {
            req->too_large = true;
            mp_buf_fini(&req->body);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->answered)
        return MHD_YES;
    req->answered = true;
    struct web_response resp = {.status = 200};
    int gate = 0;
    if (srv->auth) {
        const char *authz =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        gate = srv->auth(srv->auth_ctx, authz, &resp);
        if (gate == 401) {
            web_response_header(&resp, "WWW-Authenticate", "Basic");
            set_error(&resp, 401, "Unauthorized\n", 13);
        } else if (gate) {
            set_error(&resp, 500, "Internal Server Error\n", 22);
        }
    }
    if (!gate && !req->mbit) {
        set_error(&resp, 405, "Method Not Allowed\n", 19);
    }
    const struct web_route *route = !gate && req->mbit ? dispatch(srv, req, &resp) : NULL;
    size_t bytes = resp.len;
    int status = resp.status;
    enum MHD_Result ret = send_response(req, &resp);
    response_fini(&resp);
    if (route)
        count_request(srv, route, status, bytes, req->start_ns);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct web_request *req = *con_cls;
    if (!req)
        return;
    mp_buf_fini(&req->body);
    mp_free(req->form);
    mp_free(req->params);
    mp_free(req);
    *con_cls = NULL;
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt,
                                                               va_list ap)
{
    static struct mp_log_limit limit = MP_LOG_LIMIT_INIT(10, 60 * 1000);
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    MP_LOG_LIMITED(&limit, MP_LOG_LEVEL_WARN, "HTTP server error", MP_KV_STR("err", msg));
}

/* ---- listeners ---------------------------------------------------------------------- */

static int open_socket(int family, const struct sockaddr *sa, socklen_t salen, bool dual,
                       int *fd_out, int *errno_out)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *errno_out = errno;
        return -1;
    }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, dual ? &zero : &one, sizeof one);
    if (bind(fd, sa, salen) != 0 || listen(fd, SOMAXCONN) != 0) {
        *errno_out = errno;
        close(fd);
        return -1;
    }
    *fd_out = fd;
    return 0;
}

static int listener_open(struct web_listener *l, struct mp_err *err)
{
    char host[256], port[16];
    if (split_hostport(l->addr, host, sizeof host, port, sizeof port))
        return mp_err_set(err, MP_EINVAL, "invalid listen address \"%s\"", l->addr);
    int e = 0;
    if (!*host || strcmp(host, "::") == 0) {
        /* Go's net.Listen(":9090") and "[::]:9090": one dual-stack socket */
        struct sockaddr_in6 s6 = {.sin6_family = AF_INET6,
                                  .sin6_port = htons((uint16_t)atoi(port)),
                                  .sin6_addr = IN6ADDR_ANY_INIT};
        if (open_socket(AF_INET6, (struct sockaddr *)&s6, sizeof s6, true, &l->fd, &e) == 0) {
            l->family = AF_INET6;
        } else if (!*host && (e == EAFNOSUPPORT || e == EADDRNOTAVAIL)) {
            struct sockaddr_in s4 = {.sin_family = AF_INET,
                                     .sin_port = htons((uint16_t)atoi(port)),
                                     .sin_addr.s_addr = htonl(INADDR_ANY)};
            if (open_socket(AF_INET, (struct sockaddr *)&s4, sizeof s4, false, &l->fd, &e) == 0)
                l->family = AF_INET;
        }
    } else {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
        struct addrinfo *res = NULL;
        int gr = getaddrinfo(host, port, &hints, &res);
        if (gr != 0)
            return mp_err_set(err, MP_EIO, "listen tcp %s: lookup %s: %s", l->addr, host,
                              gai_strerror(gr));
        for (struct addrinfo *ai = res; ai && l->fd < 0; ai = ai->ai_next)
            if (open_socket(ai->ai_family, ai->ai_addr, ai->ai_addrlen, false, &l->fd, &e) == 0)
                l->family = ai->ai_family;
        freeaddrinfo(res);
    }
    if (l->fd < 0)
        return mp_err_set(err, MP_EIO, "listen tcp %s: bind: %s", l->addr, strerror(e));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(l->fd, (struct sockaddr *)&ss, &sl) == 0)
        l->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

static int listener_start(struct web_listener *l, struct mp_err *err)
{
    struct web_server *srv = l->srv;
    /* ITC lets web_server_stop quiesce the daemon: stop accepting, finish what is in flight */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    if (l->family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (srv->pool == 0)
        flags |= MHD_USE_THREAD_PER_CONNECTION |
                 (MHD_is_feature_supported(MHD_FEATURE_POLL) ? MHD_USE_POLL : 0);
    else
        flags |= MHD_is_feature_supported(MHD_FEATURE_EPOLL) ? MHD_USE_EPOLL
                 : MHD_is_feature_supported(MHD_FEATURE_POLL) ? MHD_USE_POLL
                                                               : 0;
    /* TLS: MHD keeps these pointers (owned by srv) for the daemon's lifetime and loads the
     * key pair once here; certificates are never re-read while serving. */
    struct MHD_OptionItem tls[4] = {{MHD_OPTION_END, 0, NULL}};
    if (srv->tls_cert) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
            return mp_err_set(err, MP_EINVAL,
                              "listen tcp %s: TLS: libmicrohttpd is built without TLS support",
                              l->addr);
        flags |= MHD_USE_TLS;
        tls[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key};
        tls[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert};
        tls[2] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, srv->tls_prio};
        tls[3] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    }
    l->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, l, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, l,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)l->fd, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)srv->max_conn, MHD_OPTION_CONNECTION_TIMEOUT, srv->timeout_s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, l, MHD_OPTION_ARRAY, tls,
        srv->pool ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (unsigned)srv->pool,
        MHD_OPTION_END);
    if (!l->daemon && srv->tls_cert)
        return mp_err_set(err, MP_EINVAL,
                          "listen tcp %s: cannot start HTTPS server: invalid TLS certificate, "
                          "key or version settings (see the HTTP server error logged above)",
                          l->addr);
    if (!l->daemon)
        return mp_err_set(err, MP_EIO, "listen tcp %s: cannot start HTTP server", l->addr);
    return 0;
}

/* Stops accepting on l and waits (bounded) for its open connections to finish, so that a
 * response being written, such as /-/quit's, still reaches the client. */
static void listener_drain(struct web_listener *l)
{
    if (!l->daemon)
        return;
    MHD_socket fd = MHD_quiesce_daemon(l->daemon);
    if (fd == MHD_INVALID_SOCKET)
        return;
    close(fd); /* MHD hands the listen socket back and no longer closes it */
    l->fd = -1;
    for (int i = 0; i < 200; i++) { /* at most 2 s */
        const union MHD_DaemonInfo *info =
            MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        if (!info || info->num_connections == 0)
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void listener_close(struct web_listener *l)
{
    if (l->daemon) {
        /* MHD_stop_daemon closes the listen socket it was given, also an external one */
        MHD_stop_daemon(l->daemon);
        l->daemon = NULL;
        l->fd = -1;
    }
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
}

int web_server_start(struct web_server *srv, struct mp_err *err)
{
    if (srv->running)
        return mp_err_set(err, MP_EINVAL, "web server already started");
    int rc = 0;
    for (size_t i = 0; i < srv->nls && !rc; i++)
        rc = listener_open(&srv->ls[i], err);
    for (size_t i = 0; i < srv->nls && !rc; i++)
        rc = listener_start(&srv->ls[i], err);
    if (rc) {
        for (size_t i = 0; i < srv->nls; i++)
            listener_close(&srv->ls[i]);
        return rc;
    }
    srv->running = true;
    for (size_t i = 0; i < srv->nls; i++)
        MP_LOG_INFO("Start listening for connections", MP_KV_STR("address", srv->ls[i].addr));
    return 0;
}

void web_server_stop(struct web_server *srv)
{
    if (!srv)
        return;
    for (size_t i = 0; i < srv->nls; i++)
        listener_drain(&srv->ls[i]);
    for (size_t i = 0; i < srv->nls; i++)
        listener_close(&srv->ls[i]);
    srv->running = false;
}

void web_server_destroy(struct web_server *srv)
{
    if (!srv)
        return;
    web_server_stop(srv);
    for (size_t i = 0; i < srv->nls; i++)
        mp_free(srv->ls[i].addr);
    mp_free(srv->ls);
    for (size_t i = 0; i < srv->nroutes; i++)
        mp_free(srv->routes[i].pattern);
    mp_free(srv->routes);
    mp_regex_destroy(srv->cors);
    mp_free(srv->prefix);
    mp_free(srv->external_url);
    if (srv->tls_key)
        memset(srv->tls_key, 0, strlen(srv->tls_key));
    mp_free(srv->tls_key);
    mp_free(srv->tls_cert);
    mp_free(srv->tls_prio);
    mp_free(srv);
}

uint16_t web_server_port(const struct web_server *srv, size_t i)
{
    return i < srv->nls ? srv->ls[i].port : 0;
}

const char *web_server_route_prefix(const struct web_server *srv)
{
    return srv->prefix;
}

void web_server_set_ready(struct web_server *srv, bool ready)
{
    atomic_store_explicit(&srv->ready, ready, memory_order_release);
}

bool web_server_is_ready(const struct web_server *srv)
{
    return atomic_load_explicit((_Atomic bool *)&srv->ready, memory_order_acquire);
}
