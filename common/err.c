/* SPDX-License-Identifier: Apache-2.0 */
/* common/err.c: the status-code table and the first-failure-wins error buffer. */
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

void mp_err_clear(struct mp_err *e)
{
    if (e) {
        e->code = 0;
        e->msg[0] = '\0';
    }
}

int mp_err_set(struct mp_err *e, int code, const char *fmt, ...)
{
    if (!e || e->code != 0)
        return code;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return code;
}

int mp_err_wrap(struct mp_err *e, const char *fmt, ...)
{
    if (!e)
        return MP_EINVAL;
    char prefix[MP_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    size_t plen = strlen(prefix), olen = strlen(e->msg);
    if (plen + 2 >= sizeof e->msg)
        plen = sizeof e->msg - 3;
    if (plen + 2 + olen >= sizeof e->msg)
        olen = sizeof e->msg - 3 - plen;
    memmove(e->msg + plen + 2, e->msg, olen);
    memcpy(e->msg, prefix, plen);
    e->msg[plen] = ':';
    e->msg[plen + 1] = ' ';
    e->msg[plen + 2 + olen] = '\0';
    if (e->code == 0)
        e->code = MP_EINVAL;
    return e->code;
}

const char *mp_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
#define MP_ERR_CASE(name, msg) \
    case MP_E##name:           \
        return msg;
        MP_ERR_MAP(MP_ERR_CASE)
#undef MP_ERR_CASE
    default:
        return "unknown error";
    }
}

const char *mp_errname(int code)
{
    switch (code) {
    case 0:
        return "OK";
#define MP_ERR_CASE(name, msg) \
    case MP_E##name:           \
        return #name;
        MP_ERR_MAP(MP_ERR_CASE)
#undef MP_ERR_CASE
    default:
        return "UNKNOWN";
    }
}

void mp_panic(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char line[640];
    int n = snprintf(line, sizeof line, "level=error msg=panic err=\"%s\"\n", msg);
    if (n > 0)
        (void)!write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    abort();
}
