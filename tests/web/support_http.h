/* SPDX-License-Identifier: Apache-2.0 */
/* tests/web/support_http.h: a small blocking HTTP client over libcurl for the web tests.
 * Failures to connect are Criterion assertion failures. */
#ifndef TESTS_WEB_SUPPORT_HTTP_H
#define TESTS_WEB_SUPPORT_HTTP_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

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

#endif
