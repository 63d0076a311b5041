/* SPDX-License-Identifier: Apache-2.0 */
/* common/err.h: status codes and the caller-owned error buffer shared by every module.
 * A status is an int: 0 on success, a negative MP_E* value otherwise. One X-macro table
 * gives the codes, their names and their messages. mp_err_set keeps the first message. */
#ifndef COMMON_ERR_H
#define COMMON_ERR_H

#include <stdarg.h>
#include <stddef.h>

#if defined(__GNUC__)
#define MP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define MP_NODISCARD __attribute__((warn_unused_result))
#define MP_NORETURN __attribute__((noreturn))
#else
#define MP_PRINTF(f, a)
#define MP_NODISCARD
#define MP_NORETURN
#endif

#define MP_ERR_MAP(X)                                                                         \
    X(NOMEM, "out of memory")                                                                 \
    X(INVAL, "invalid argument")                                                              \
    X(PARSE, "malformed input")                                                               \
    X(AGAIN, "incomplete input, call again with more")                                        \
    X(EOF, "end of input")                                                                    \
    X(LIMIT, "configured limit exceeded")                                                     \
    X(OUTOFORDER, "sample older than the series head")                                        \
    X(OUTOFBOUNDS, "sample outside the time range the head accepts")                          \
    X(DUPLICATE, "sample with the same timestamp and a different value")                      \
    X(NOTFOUND, "not found")                                                                  \
    X(EXISTS, "already exists")                                                               \
    X(IO, "I/O error")                                                                        \
    X(TIMEOUT, "deadline exceeded")                                                           \
    X(CANCELED, "canceled")                                                                   \
    X(EXEC, "execution failed")

enum {
    MP_OK = 0,
#define MP_ERR_ENUM(name, msg) MP_E##name,
    MP_ERR_FIRST_ = -100,
    MP_ERR_MAP(MP_ERR_ENUM)
#undef MP_ERR_ENUM
    MP_ERR_LAST_
};

#define MP_ERR_MSG_MAX 512

struct mp_err {
    int code;
    char msg[MP_ERR_MSG_MAX];
};

/* Resets e to "no error". NULL is a no-op. */
void mp_err_clear(struct mp_err *e);
/* Records code and message unless e already holds an error (the first failure wins).
 * Returns code so that failing is one line. e may be NULL. */
int mp_err_set(struct mp_err *e, int code, const char *fmt, ...) MP_PRINTF(3, 4);
/* Prepends "context: " to the message already held. Returns e->code (or MP_EINVAL if unset). */
int mp_err_wrap(struct mp_err *e, const char *fmt, ...) MP_PRINTF(2, 3);
/* Static description of a status code; "unknown error" for values outside the table. */
const char *mp_strerror(int code);
/* Static name ("NOMEM", ...) of a status code. */
const char *mp_errname(int code);

/* An impossible state: writes one logfmt line naming it to stderr and aborts. For invariants
 * whose breach would corrupt data, never for bad input. */
MP_NORETURN void mp_panic(const char *fmt, ...) MP_PRINTF(1, 2);

#endif
