/* SPDX-License-Identifier: Apache-2.0 */
/* common/time.h: clocks, Prometheus durations and the HTTP API time/duration parameters.
 *
 * Units follow STYLE 2.4: timestamps and durations are int64_t milliseconds (negative
 * timestamps are legal), elapsed time is int64_t monotonic nanoseconds. Every function is
 * pure apart from the two clocks and is safe to call from any thread. Formatters behave like
 * snprintf: they return the length of the full text and write at most cap-1 bytes plus NUL. */
#ifndef COMMON_TIME_H
#define COMMON_TIME_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/str.h"

/* Prometheus web/api/v1 minTime/maxTime in ms: time.Unix(math.MinInt64/1000+62135596801, 0)
 * and time.Unix(math.MaxInt64/1000-62135596801, 999999999). Their RFC 3339 spellings are
 * MP_TIME_MIN_STR and MP_TIME_MAX_STR (protocols.md 4.3). */
#define MP_TIME_MIN_MS (-INT64_C(9223309901257974000))
#define MP_TIME_MAX_MS INT64_C(9223309901257974999)
#define MP_TIME_MIN_STR "-292273086-05-16T16:47:06Z"
#define MP_TIME_MAX_STR "292277025-08-18T07:12:54.999999999Z"

/* Largest buffer the formatters below need, NUL included. */
#define MP_TIME_FMT_MAX 48

int64_t mp_now_ms(void);  /* wall clock, ms since the Unix epoch */
int64_t mp_mono_ns(void); /* CLOCK_MONOTONIC, ns */

/* Prometheus model.ParseDuration (prometheus/common 0.5x, as in Prometheus 2.55): one or
 * more <digits><unit> with units y w d h m s ms, each at most once, largest first ("1h30m",
 * "90s", "100ms", "1y" = 365d); "0" alone is allowed. No sign, no fraction, no spaces; ns/us
 * are rejected. The total must fit time.Duration (int64 ns, about 292 years).
 * Errors (MP_EPARSE, Prometheus wording): `empty duration string`,
 * `not a valid duration string: "abc"`, `unknown unit "ns" in duration "1ns"`,
 * `duration out of range`. */
MP_NODISCARD int mp_duration_parse(struct mp_str s, int64_t *out_ms, struct mp_err *err);

/* Prometheus model.Duration.String(): largest units first, zero parts left out
 * ("1h30m", "1m30s500ms", "1y", "2w"); 0 is "0s"; a negative duration gives "" as upstream. */
int mp_duration_format(int64_t ms, char *buf, size_t cap);

/* HTTP API duration parameter (step, timeout, lookback_delta), web/api/v1 parseDuration: a Go
 * float of seconds ("15", "1.5", "-2", "1e3") converted to ns and truncated to ms, or a
 * Prometheus duration. Errors: `cannot parse "x" to a valid duration` and
 * `cannot parse "x" to a valid duration. It overflows int64`. Negative values are returned;
 * the caller decides whether they are allowed. */
MP_NODISCARD int mp_api_duration_parse(struct mp_str s, int64_t *out_ms, struct mp_err *err);

/* HTTP API time parameter, web/api/v1 parseTime: a Go float of Unix seconds whose fraction is
 * rounded to whole ms as Prometheus does ("1435781451.781", "-1.5"), or RFC 3339 with optional
 * fraction (extra digits beyond ns are truncated) and "Z" or "+hh:mm" zone, or exactly
 * MP_TIME_MIN_STR / MP_TIME_MAX_STR. NaN, Inf and floats beyond the min/max time are rejected.
 * Error: `cannot parse "x" to a valid timestamp`. */
MP_NODISCARD int mp_time_parse(struct mp_str s, int64_t *out_ms, struct mp_err *err);

/* RFC 3339 UTC with exactly three fraction digits ("2025-03-01T10:00:00.123Z"), for logs. */
int mp_time_format_rfc3339_ms(int64_t ms, char *buf, size_t cap);

/* Go time.RFC3339Nano in UTC: the fraction loses trailing zeros and disappears when zero
 * ("2025-03-01T10:00:00.1Z", "2025-03-01T10:00:00Z"). For /api/v1/targets lastScrape. */
int mp_time_format_rfc3339_nano(int64_t ns_since_epoch, char *buf, size_t cap);

#endif
