/* SPDX-License-Identifier: Apache-2.0 */
/* web/api_internal.h: private to web/api*.c, web/federate.c and tests/web. The JSON writer of
 * the API responses, Prometheus's number layouts, the shared api state and the helpers the
 * handler files share (envelope, errors, parameters).
 *
 * JSON writer: appends to one mp_buf (the response body, capped), no allocation per value; the
 * first failed append makes the writer sticky-failed (later calls do nothing), so a handler
 * writes the whole document and checks web_json_status once. Commas are inserted by the
 * writer from a small nesting stack. Strings are escaped as jsoniter's
 * ConfigCompatibleWithStandardLibrary (what Prometheus uses): \" \\ \n \r \t, other control
 * bytes \u00XX, <, > and & as \u003c \u003e \u0026, U+2028/U+2029 escaped, invalid UTF-8
 * bytes as \ufffd. A writer belongs to one thread. */
#ifndef WEB_API_INTERNAL_H
#define WEB_API_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/str.h"
#include "web/web.h"

#define WEB_JSON_MAX_DEPTH 32

struct web_json {
    struct mp_buf *b;
    int status; /* 0 or the first failure (MP_ENOMEM, MP_ELIMIT, MP_EINVAL) */
    int depth;
    bool first[WEB_JSON_MAX_DEPTH]; /* no element written yet at this level */
    bool after_key;
};

void web_json_init(struct web_json *w, struct mp_buf *b);
static inline int web_json_status(const struct web_json *w)
{
    return w->status;
}
void web_json_obj_begin(struct web_json *w);
void web_json_obj_end(struct web_json *w);
void web_json_arr_begin(struct web_json *w);
void web_json_arr_end(struct web_json *w);
void web_json_key(struct web_json *w, const char *key);              /* key must need no escaping */
void web_json_str(struct web_json *w, struct mp_str s);              /* escaped */
void web_json_cstr(struct web_json *w, const char *s);               /* NULL writes "" */
void web_json_raw(struct web_json *w, const char *text, size_t len); /* a number, true, null */
void web_json_bool(struct web_json *w, bool v);
void web_json_i64(struct web_json *w, int64_t v);
void web_json_u64(struct web_json *w, uint64_t v);
void web_json_f64(struct web_json *w, double v); /* JSON number, Go float64 encoding */
/* Sample value as a string ("1.5", "1e-07", "+Inf", "NaN") and the scalar layout ("0.0000001"). */
void web_json_value(struct web_json *w, double v);
void web_json_value_f(struct web_json *w, double v);
/* Vector/matrix timestamp: seconds, then ".mmm" when the ms part is not 0 ("1.500"). */
void web_json_ts(struct web_json *w, int64_t t_ms);
/* An object key that may need escaping (label names, flag names, pools). */
void web_json_key_str(struct web_json *w, struct mp_str key);
/* A label set as an object in label order. */
void web_json_labels(struct web_json *w, const struct mp_labels *ls);

/* Number layouts (return the length; cap >= WEB_NUM_MAX always suffices). */
#define WEB_NUM_MAX 400
/* Go strconv.FormatFloat(v, 'f', -1, 64) for use_exp false, else with 'e' when v != 0 and
 * |v| < 1e-6 or |v| >= 1e21 (Prometheus's sample values); NaN, +Inf, -Inf. */
int web_float_format(double v, bool use_exp, char *buf, size_t cap);
/* encoding/json float64: 'f' unless |v| < 1e-6 or >= 1e21, then 'e' with "e-07" -> "e-7". */
int web_float_format_json(double v, char *buf, size_t cap);
/* Prometheus's JSON timestamp of a vector/matrix sample. */
int web_ts_format(int64_t t_ms, char *buf, size_t cap);

/* ---- api state and shared handler helpers ---- */

struct remote_write_cache;
struct remote_read_server;
struct query_expr;
struct mp_matcher;

struct web_api {
    struct web_server *srv; /* for the readiness of /federate */
    struct web_api_deps d;  /* strings owned (copied); db and engine published by ready */
    char cwd[4096];
    pthread_mutex_t rw_mu; /* guards the cache pool */
    struct remote_write_cache **rw_pool;
    size_t rw_n;
    struct mp_counter *rw_invalid; /* NULL: not counted */
    struct remote_read_server *rr; /* POST /api/v1/read: options and concurrency gate */
    struct mp_gauge *rr_queries;   /* prometheus_api_remote_read_queries; NULL: not counted */
};

enum web_api_error {
    WEB_API_BAD_DATA,
    WEB_API_EXECUTION,
    WEB_API_CANCELED,
    WEB_API_TIMEOUT,
    WEB_API_INTERNAL,
    WEB_API_NOT_FOUND,
    WEB_API_UNAVAILABLE,
};

/* A response body in the making: the envelope is opened by web_api_begin (writes
 * {"status":"success","data": ) and closed by web_api_end (warnings/infos, then sends). */
struct web_api_out {
    struct mp_buf b;
    struct web_json w;
};
void web_api_begin(struct web_api_out *o);
/* Closes data, appends "warnings"/"infos" when non-empty, and hands the body to resp (200,
 * application/json). A writer failure becomes an internal error response. */
void web_api_end(struct web_api_out *o, struct web_response *resp, const char *const *warnings,
                 size_t nwarnings, const char *const *infos, size_t ninfos);
void web_api_out_fini(struct web_api_out *o);
/* {"status":"error","errorType":T,"error":msg} with T's status. */
void web_api_error(struct web_response *resp, enum web_api_error t, const char *msg);
void web_api_errorf(struct web_response *resp, enum web_api_error t, const char *fmt, ...)
    MP_PRINTF(3, 4);
/* Go's http.Error: status, plain text, the message and a newline, X-Content-Type-Options. */
void web_api_text_error(struct web_response *resp, int status, const char *msg);
/* errorType of an MP_E* status from the engine or the tsdb. */
enum web_api_error web_api_error_of(int rc);

/* Optional time/duration parameters: the default when absent; 0 or MP_EPARSE with a 400
 * already written into resp (messages as Prometheus's parseTimeParam / parseDuration:
 * `invalid parameter "start": Invalid time value for 'start': cannot parse "x" to a valid
 * timestamp`, `invalid parameter "step": cannot parse "x" to a valid duration`). */
MP_NODISCARD int web_api_time_param(const struct web_request *req, struct web_response *resp,
                                    const char *name, int64_t def, int64_t *out);
MP_NODISCARD int web_api_duration_param(const struct web_request *req, struct web_response *resp,
                                        const char *name, int64_t *out, bool *present);

/* match[] selectors (parser.ParseMetricSelector + the non-empty rule). */
struct web_api_selectors {
    struct query_expr **exprs;       /* one parse per match[] */
    const struct mp_matcher ***sets; /* sets[i]: matchers of exprs[i] */
    size_t *nset;
    size_t n;
};
/* Parses every match[] value. 0 (n may be 0), or MP_EPARSE/MP_ELIMIT with Prometheus's
 * message in err (prefix: `invalid parameter "match[]": ` before it, as /series words it).
 * Free with web_api_selectors_fini, also after an error. */
MP_NODISCARD int web_api_selectors_parse(struct web_api *api, const struct web_request *req,
                                         bool prefix, struct web_api_selectors *out,
                                         struct mp_err *err);
void web_api_selectors_fini(struct web_api_selectors *s);
/* web_api_selectors_parse with the error written into resp as a bad_data response (and sel
 * freed then). */
MP_NODISCARD int web_api_selectors_get(struct web_api *api, const struct web_request *req,
                                       struct web_response *resp, bool prefix,
                                       struct web_api_selectors *out);

/* What /series and admin delete_series read first: match[] present ("no match[] parameter
 * provided"), start and end (default all time), then the selectors (prefixed errors). */
MP_NODISCARD int web_api_match_range(struct web_api *api, const struct web_request *req,
                                     struct web_response *resp, int64_t *start, int64_t *end,
                                     struct web_api_selectors *sel);

/* A route table of one handler file; every handler gets the api as ctx. */
struct web_api_route {
    const char *methods, *pattern;
    web_handler_fn *fn;
};
MP_NODISCARD int web_api_routes(struct web_api *api, struct web_server *srv,
                                const struct web_api_route *r, size_t n, struct mp_err *err);

/* Route registration of each handler file. */
MP_NODISCARD int web_api_register_query(struct web_api *api, struct web_server *srv,
                                        struct mp_err *err);
MP_NODISCARD int web_api_register_status(struct web_api *api, struct web_server *srv,
                                         struct mp_err *err);
MP_NODISCARD int web_api_register_admin(struct web_api *api, struct web_server *srv,
                                        struct mp_err *err);
MP_NODISCARD int web_api_register_federate(struct web_api *api, struct web_server *srv,
                                           struct mp_err *err);

#endif
