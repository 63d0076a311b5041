/* SPDX-License-Identifier: Apache-2.0 */
/* common/log.h: structured logging in the Prometheus 2.x style (go-kit log).
 *
 *   logfmt: ts=2025-03-01T10:00:00.123Z caller=main.c:214 level=info component=web
 *           msg="Start listening for connections" address=0.0.0.0:9090
 *   json:   {"ts":"...","caller":"main.c:214","level":"info","component":"web","msg":"...",...}
 *
 * Use the macros: MP_LOG_INFO("constant phrase", MP_KV_STR("k", v), MP_KV_I64("n", x)).
 * The macro tests the level before it evaluates any argument (redis serverLog), so a
 * disabled debug line costs one call and a relaxed atomic load. `component` comes from MP_LOG_COMPONENT,
 * a per-target compile definition ("meshprom" when the target sets none).
 *
 * Each line is formatted into one buffer and handed to the output in a single write() (or a
 * single sink call), so lines from different threads never interleave.
 *
 * Thread safety: mp_log_emit, the macros and mp_log_limit_allow may be called from any thread.
 * mp_log_setup / mp_log_set_sink / mp_log_set_clock configure process-global state (STYLE 2.8
 * allows the logger to be global): call them at startup or in tests, before other threads log;
 * only the level is read atomically and may be changed at any time. */
#ifndef COMMON_LOG_H
#define COMMON_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#ifndef MP_LOG_COMPONENT
#define MP_LOG_COMPONENT "meshprom"
#endif

enum mp_log_level {
    MP_LOG_LEVEL_DEBUG = 0,
    MP_LOG_LEVEL_INFO = 1,
    MP_LOG_LEVEL_WARN = 2,
    MP_LOG_LEVEL_ERROR = 3,
};

enum mp_log_format {
    MP_LOG_FORMAT_LOGFMT = 0,
    MP_LOG_FORMAT_JSON = 1,
};

/* --log.level: "debug", "info", "warn", "error" (exact, lower case, as Prometheus's
 * promlog AllowedLevel). 0, or MP_EINVAL with *out untouched. */
MP_NODISCARD int mp_log_level_parse(const char *s, enum mp_log_level *out);
/* --log.format: "logfmt" or "json". 0, or MP_EINVAL with *out untouched. */
MP_NODISCARD int mp_log_format_parse(const char *s, enum mp_log_format *out);
/* Static name of a level ("info"); "unknown" outside the enum. */
const char *mp_log_level_name(enum mp_log_level level);

/* Sets the minimum level, the format and the output fd (stderr = 2, the default; the fd
 * stays owned by the caller). Also removes a sink set with mp_log_set_sink. */
void mp_log_setup(enum mp_log_level level, enum mp_log_format format, int fd);
void mp_log_set_level(enum mp_log_level level);

/* Test hook: every finished line (newline included, not NUL-terminated) goes to fn instead
 * of the fd, one call per line. fn == NULL goes back to the fd. fn must not log. */
typedef void mp_log_sink_fn(void *ctx, const char *line, size_t len);
void mp_log_set_sink(mp_log_sink_fn *fn, void *ctx);
/* Test hook: wall clock for `ts` in ms since the epoch; NULL restores mp_now_ms. */
void mp_log_set_clock(int64_t (*now_ms)(void));

/* Typed fields. Keys are constant identifiers; string values are borrowed for the call. A NULL
 * string value is written as an empty value. */
enum mp_kv_type {
    MP_KV_TYPE_STR,
    MP_KV_TYPE_I64,
    MP_KV_TYPE_U64,
    MP_KV_TYPE_F64,
    MP_KV_TYPE_BOOL,
};

struct mp_kv {
    const char *key;
    enum mp_kv_type type;
    union {
        const char *s;
        int64_t i64;
        uint64_t u64;
        double f64;
        bool b;
    } v;
};

#define MP_KV_STR(k, val) ((struct mp_kv){.key = (k), .type = MP_KV_TYPE_STR, .v.s = (val)})
#define MP_KV_I64(k, val) ((struct mp_kv){.key = (k), .type = MP_KV_TYPE_I64, .v.i64 = (val)})
#define MP_KV_U64(k, val) ((struct mp_kv){.key = (k), .type = MP_KV_TYPE_U64, .v.u64 = (val)})
#define MP_KV_F64(k, val) ((struct mp_kv){.key = (k), .type = MP_KV_TYPE_F64, .v.f64 = (val)})
#define MP_KV_BOOL(k, val) ((struct mp_kv){.key = (k), .type = MP_KV_TYPE_BOOL, .v.b = (val)})

/* True when lines of this level are written (one relaxed atomic load). Out of line on
 * purpose: an exported variable would carry an unprefixed __odr_asan symbol in ASan builds. */
bool mp_log_is_enabled(enum mp_log_level level);

/* Formats and writes one line. Does not check the level (the macros do). file is __FILE__
 * (only its base name is printed). Never fails: a line that cannot be allocated in full is
 * truncated to the stack buffer and ends in "...". */
void mp_log_emit(enum mp_log_level level, const char *component, const char *file, int line,
                 const char *msg, const struct mp_kv *kv, size_t nkv);

#if defined(__FILE_NAME__)
#define MP_LOG_FILE_ __FILE_NAME__
#else
#define MP_LOG_FILE_ __FILE__
#endif

/* The leading empty element lets the field list be empty (trailing comma is valid C). */
#define MP_LOG_AT(level, msg, ...)                                                            \
    do {                                                                                      \
        if (mp_log_is_enabled(level)) {                                                       \
            const struct mp_kv mp_log_kv_[] = {{.key = NULL}, __VA_ARGS__};                   \
            mp_log_emit((level), MP_LOG_COMPONENT, MP_LOG_FILE_, __LINE__, (msg),             \
                        mp_log_kv_ + 1, sizeof mp_log_kv_ / sizeof mp_log_kv_[0] - 1);        \
        }                                                                                     \
    } while (0)

#define MP_LOG_DEBUG(msg, ...) MP_LOG_AT(MP_LOG_LEVEL_DEBUG, msg, __VA_ARGS__)
#define MP_LOG_INFO(msg, ...) MP_LOG_AT(MP_LOG_LEVEL_INFO, msg, __VA_ARGS__)
#define MP_LOG_WARN(msg, ...) MP_LOG_AT(MP_LOG_LEVEL_WARN, msg, __VA_ARGS__)
#define MP_LOG_ERROR(msg, ...) MP_LOG_AT(MP_LOG_LEVEL_ERROR, msg, __VA_ARGS__)

/* Flood limit for repeated messages with one key (per target, per peer ...), netdata
 * nd_log_limit style: at most `per_interval` events pass in each window of `interval_ms`
 * (monotonic clock); the others are counted. The owner of the key embeds one limiter,
 * statically initialised with MP_LOG_LIMIT_INIT or with mp_log_limit_init. Lock-free; under
 * contention at a window boundary a few extra events may pass. */
struct mp_log_limit {
    _Atomic int64_t window_start_ns; /* 0 = no window yet */
    _Atomic uint32_t count;          /* events seen in the current window */
    _Atomic uint64_t suppressed;     /* suppressed since the last event that passed */
    uint32_t per_interval;
    int64_t interval_ms;
};

#define MP_LOG_LIMIT_INIT(n, ms) {0, 0, 0, (n), (ms)}
void mp_log_limit_init(struct mp_log_limit *l, uint32_t per_interval, int64_t interval_ms);
/* true when this event may be logged; then *suppressed (may be NULL) receives how many events
 * were suppressed before it since the previous one that passed, so the caller can add
 * MP_KV_U64("suppressed", n). Suppressed events also count into mp_log_suppressed_total(). */
bool mp_log_limit_allow(struct mp_log_limit *l, uint64_t *suppressed);

/* Limited variant of the macros: the level is tested first, then the limiter. When events
 * were suppressed, the line carries suppressed=N as its first field after msg. */
#define MP_LOG_LIMITED(limit, level, msg, ...)                                                \
    do {                                                                                      \
        uint64_t mp_log_sup_ = 0;                                                             \
        if (mp_log_is_enabled(level) && mp_log_limit_allow((limit), &mp_log_sup_)) {          \
            const struct mp_kv mp_log_kv_[] = {MP_KV_U64("suppressed", mp_log_sup_),          \
                                               __VA_ARGS__};                                  \
            size_t mp_log_skip_ = mp_log_sup_ ? 0 : 1;                                        \
            mp_log_emit((level), MP_LOG_COMPONENT, MP_LOG_FILE_, __LINE__, (msg),             \
                        mp_log_kv_ + mp_log_skip_,                                            \
                        sizeof mp_log_kv_ / sizeof mp_log_kv_[0] - mp_log_skip_);             \
        }                                                                                     \
    } while (0)

/* Lines written so far per level and events suppressed by limiters, for /metrics. */
uint64_t mp_log_lines_total(enum mp_log_level level);
uint64_t mp_log_suppressed_total(void);

/* Go strconv.FormatFloat(v, 'g', -1, 64): the shortest digits that parse back to v, in %e
 * form ("1.23456789e+08", "1e-05") when the decimal exponent is < -4 or >= 6 (Go uses
 * precision 6 for that decision in shortest mode), else plain ("100000", "0.0001"). Writes "NaN", "+Inf", "-Inf" for the specials. Shared by log fields and
 * common/metrics. Returns the length like snprintf (cap >= 32 always suffices). */
int mp_float_format_go(double v, char *buf, size_t cap);

#endif
