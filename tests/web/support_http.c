/* SPDX-License-Identifier: Apache-2.0 */
/* tests/web/support_http.c: the libcurl client the web tests share (see support_http.h). */
#include "support_http.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/metrics.h"
#include "web/web.h"


static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    struct reply *r = ud;
    r->body = realloc(r->body, r->len + sz * n + 1);
    memcpy(r->body + r->len, p, sz * n);
    r->len += sz * n;
    r->body[r->len] = '\0';
    return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    struct reply *r = ud;
    size_t k = sz * n;
    if (r->hlen + k < sizeof r->headers) {
        memcpy(r->headers + r->hlen, p, k);
        r->hlen += k;
        r->headers[r->hlen] = '\0';
    }
    return k;
}

void reply_free(struct reply *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* Value of response header name (case-insensitive) copied into out; false if absent. */
bool reply_header(const struct reply *r, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    for (const char *l = r->headers; *l;) {
        const char *e = strstr(l, "\r\n");
        if (!e)
            break;
        if ((size_t)(e - l) > n && strncasecmp(l, name, n) == 0 && l[n] == ':') {
            const char *v = l + n + 1;
            while (*v == ' ')
                v++;
            snprintf(out, cap, "%.*s", (int)(e - v), v);
            return true;
        }
        l = e + 2;
    }
    return false;
}

CURL *easy_for(const char *method, const char *url, const char *body, size_t blen,
                      struct curl_slist *hdrs, struct reply *out)
{
    CURL *c = curl_easy_init();
    cr_assert_not_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)blen);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    if (hdrs)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    return c;
}

void request_h(const char *method, const char *url, const char *body,
                      struct curl_slist *hdrs, struct reply *out)
{
    memset(out, 0, sizeof *out);
    CURL *c = easy_for(method, url, body, body ? strlen(body) : 0, hdrs, out);
    CURLcode rc = curl_easy_perform(c);
    cr_assert_eq(rc, CURLE_OK, "%s %s: %s", method, url, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->code);
    curl_easy_cleanup(c);
    if (!out->body)
        out->body = calloc(1, 1);
}

void request(const char *method, const char *url, struct reply *out)
{
    request_h(method, url, NULL, NULL, out);
}


void wt_quiet(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    mp_log_setup(MP_LOG_LEVEL_ERROR, MP_LOG_FORMAT_LOGFMT, 2);
}

struct web_server *wt_server_create(struct web_options *opt, struct mp_metrics_registry **reg)
{
    static const char *const lo[] = {"127.0.0.1:0"};
    if (!opt->nlisten || opt->listen[0] == NULL || strcmp(opt->listen[0], "0.0.0.0:9090") == 0) {
        opt->listen = lo;
        opt->nlisten = 1;
    }
    cr_assert_eq(mp_metrics_registry_create(reg), 0);
    opt->registry = *reg;
    struct web_server *srv = NULL;
    struct mp_err err = {0};
    cr_assert_eq(web_server_create(opt, &srv, &err), 0, "%s", err.msg);
    return srv;
}

void wt_server_start(struct web_server *srv, char *base, size_t cap)
{
    struct mp_err err = {0};
    cr_assert_eq(web_server_start(srv, &err), 0, "%s", err.msg);
    snprintf(base, cap, "http://127.0.0.1:%u", web_server_port(srv, 0));
}

const char *wt_url(const char *base, const char *path)
{
    static char u[8][2048];
    static int i;
    i = (i + 1) % 8;
    snprintf(u[i], sizeof u[i], "%s%s", base, path);
    return u[i];
}
