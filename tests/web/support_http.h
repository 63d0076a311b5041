/* SPDX-License-Identifier: Apache-2.0 */
/* tests/web/support_http.h: a small blocking HTTP client over libcurl for the web tests, and
 * the setup of a web server under test on 127.0.0.1. Failures to connect are Criterion
 * assertion failures. */
#ifndef TESTS_WEB_SUPPORT_HTTP_H
#define TESTS_WEB_SUPPORT_HTTP_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

struct mp_metrics_registry;
struct web_options;
struct web_server;

struct reply {
    long code;
    char *body; /* malloc'd, NUL-terminated; reply_free releases it */
    size_t len;
    char headers[8192];
    size_t hlen;
};

void reply_free(struct reply *r);
/* Value of response header name (case-insensitive) copied into out; false if absent. */
bool reply_header(const struct reply *r, const char *name, char *out, size_t cap);
/* An easy handle for one request whose response lands in out (which the caller zeroes). */
CURL *easy_for(const char *method, const char *url, const char *body, size_t blen,
               struct curl_slist *hdrs, struct reply *out);
/* Performs one request; out is overwritten (free the previous reply first). */
void request_h(const char *method, const char *url, const char *body, struct curl_slist *hdrs,
               struct reply *out);
void request(const char *method, const char *url, struct reply *out);

/* Criterion suite .init of the web tests: curl's global state, only errors logged. */
void wt_quiet(void);
/* web_server_create with opt (a web_options_init default listen address becomes one
 * 127.0.0.1:0) and a new registry in *reg, set as opt->registry. */
struct web_server *wt_server_create(struct web_options *opt, struct mp_metrics_registry **reg);
/* web_server_start; base gets "http://127.0.0.1:<port>" of the first address. */
void wt_server_start(struct web_server *srv, char *base, size_t cap);
/* base followed by path (a ring of eight static buffers). */
const char *wt_url(const char *base, const char *path);

#endif
