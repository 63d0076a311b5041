/* SPDX-License-Identifier: Apache-2.0 */
/* query/func.c: the function table of the evaluator (query_func_lookup) and the instant-vector
 * functions of promql.md 3.11-3.15: element-wise math, clamp/round, scalar/vector/time/pi, the
 * date functions, and the native-histogram-only functions (no output for float samples).
 * Range-vector functions are in func_range.c, histogram_quantile in func_hist.c, label_replace
 * and label_join in func_label.c.
 *
 * Arithmetic follows Go's math package where C differs: math.Min/Max propagate NaN (fmin/fmax
 * do not) and order signed zeros; Log, Log2 and Log10 use Go's algorithm (glibc's log rounds
 * differently); float -> int64 conversion of NaN or out-of-range values gives INT64_MIN as on
 * amd64. The other transcendental functions are glibc's and may differ from Go in the last bit
 * (promql.md 6.4). */
#include "query/func.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "query/query_internal.h"

/* ---- shared helpers --------------------------------------------------------------------- */

int query_func_oom(struct mp_err *err)
{
    return mp_err_set(err, MP_ENOMEM, "out of memory evaluating a function");
}

int query_func_push_kept(struct qcall *c, const struct mp_labels *ls, bool drop_name, double v,
                         struct mp_err *err)
{
    if (query_vec_push(c->out, mp_labels_acquire(ls), v, c->t_ms, drop_name))
        return query_func_oom(err);
    return 0;
}

int query_func_push_dropped(struct qcall *c, const struct mp_labels *ls, double v,
                            struct mp_err *err)
{
    struct mp_labels *l = mp_labels_acquire(ls);
    if (!c->delayed_name_removal) {
        l = query_drop_name(c->lb, l);
        if (!l)
            return query_func_oom(err);
    }
    if (query_vec_push(c->out, l, v, c->t_ms, c->delayed_name_removal))
        return query_func_oom(err);
    return 0;
}

static int cmp_nan_first(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    if (isnan(a))
        return isnan(b) ? 0 : -1;
    if (isnan(b))
        return 1;
    return a < b ? -1 : a > b ? 1 : 0;
}

double query_quantile(double q, double *vals, size_t n)
{
    double r;
    if (n == 0)
        return NAN;
    if (query_quantile_outside(q, &r))
        return r;
    qsort(vals, n, sizeof *vals, cmp_nan_first);
    double fn = (double)n;
    double rank = q * (fn - 1);
    double lo = fmax(0, floor(rank)); /* no NaN can reach these two */
    double hi = fmin(fn - 1, lo + 1);
    double w = rank - floor(rank);
    return vals[(size_t)lo] * (1 - w) + vals[(size_t)hi] * w;
}

/* Go's special values in fmt: "NaN", "+Inf", "-Inf". */
static const char *go_special(double v)
{
    if (isnan(v))
        return "NaN";
    if (isinf(v))
        return v > 0 ? "+Inf" : "-Inf";
    return NULL;
}

int query_fmt_go_g(struct mp_buf *out, double v)
{
    char tmp[32];
    mp_float_format_go(v, tmp, sizeof tmp); /* strconv.FormatFloat(v, 'g', -1, 64) */
    return mp_buf_append_str(out, tmp);
}

int query_func_warn_quantile(struct qcall *c, double q, struct mp_err *err)
{
    double r;
    if (!query_quantile_outside(q, &r))
        return 0;
    struct mp_buf b;
    mp_buf_init(&b, 0);
    int rc = query_fmt_go_g(&b, q);
    if (rc == 0)
        rc = query_annots_add(c->annots, true, "quantile value should be between 0 and 1, got %s",
                              b.data);
    mp_buf_fini(&b);
    return rc ? query_func_oom(err) : 0;
}

int query_fmt_go_f(struct mp_buf *out, double v)
{
    const char *sp = go_special(v);
    return sp ? mp_buf_append_str(out, sp) : mp_buf_appendf(out, "%f", v);
}

/* ---- element-wise math (3.11) ---------------------------------------------------------- */

static int simple(struct qcall *c, double (*fn)(double), struct mp_err *err)
{
    const struct qvector *v = c->args[0].vec;
    for (size_t i = 0; i < v->n; i++) {
        int rc = query_func_push_dropped(c, v->s[i].labels, fn(v->s[i].v), err);
        if (rc)
            return rc;
    }
    return 0;
}

/* Go's math.Log (the fdlibm algorithm, which Go runs on amd64 as well): it is not correctly
 * rounded, and glibc's log differs from it in the last bit for about 2% of inputs
 * (golang/go#9546: Log(0.6023203277884887) = -0.5069658692305488, glibc ...486). */
static double go_log(double x)
{
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    const double l1 = 6.666666666666735130e-01, l2 = 3.999999999940941908e-01,
                 l3 = 2.857142874366239149e-01, l4 = 2.222219843214978396e-01,
                 l5 = 1.818357216161805012e-01, l6 = 1.531383769920937332e-01,
                 l7 = 1.479819860511658591e-01;
    if (isnan(x) || (isinf(x) && x > 0))
        return x;
    if (x < 0)
        return NAN;
    if (x == 0)
        return -INFINITY;
    int ki;
    double f1 = frexp(x, &ki);
    if (f1 < M_SQRT1_2) {
        f1 *= 2;
        ki--;
    }
    double f = f1 - 1, k = ki;
    double s = f / (2 + f), s2 = s * s, s4 = s2 * s2;
    double t1 = s2 * (l1 + s4 * (l3 + s4 * (l5 + s4 * l7)));
    double t2 = s4 * (l2 + s4 * (l4 + s4 * l6));
    double r = t1 + t2, hfsq = 0.5 * f * f;
    return k * ln2_hi - ((hfsq - (s * (hfsq + r) + k * ln2_lo)) - f);
}

/* Go's math.Log2: exact for powers of two, else Log(frac) / Ln2 + exp. */
static double go_log2(double x)
{
    int e;
    double frac = frexp(x, &e);
    if (frac == 0.5)
        return e - 1;
    return go_log(frac) * M_LOG2E + e;
}

/* Go's math.Log10: Log(x) * (1 / Ln10). */
static double go_log10(double x)
{
    return go_log(x) * M_LOG10E;
}

static double v_rad(double v)
{
    return v * M_PI / 180;
}
static double v_deg(double v)
{
    return v * 180 / M_PI;
}
static double v_sgn(double v)
{
    return v < 0 ? -1 : v > 0 ? 1 : v;
}

#define SIMPLE(name, fn)                                                                          \
    static int f_##name(struct qcall *c, struct mp_err *err)                                      \
    {                                                                                             \
        return simple(c, fn, err);                                                                \
    }
SIMPLE(abs, fabs)
SIMPLE(ceil, ceil)
SIMPLE(floor, floor)
SIMPLE(exp, exp)
SIMPLE(sqrt, sqrt)
SIMPLE(ln, go_log)
SIMPLE(log2, go_log2)
SIMPLE(log10, go_log10)
SIMPLE(sin, sin)
SIMPLE(cos, cos)
SIMPLE(tan, tan)
SIMPLE(asin, asin)
SIMPLE(acos, acos)
SIMPLE(atan, atan)
SIMPLE(sinh, sinh)
SIMPLE(cosh, cosh)
SIMPLE(tanh, tanh)
SIMPLE(asinh, asinh)
SIMPLE(acosh, acosh)
SIMPLE(atanh, atanh)
SIMPLE(rad, v_rad)
SIMPLE(deg, v_deg)
SIMPLE(sgn, v_sgn)

/* ---- clamp, round (3.12) ---------------------------------------------------------------- */

/* Go math.Max / math.Min: +Inf (-Inf) wins over NaN, NaN over numbers, +0 > -0. */
static double go_max(double x, double y)
{
    if ((isinf(x) && x > 0) || (isinf(y) && y > 0))
        return INFINITY;
    if (isnan(x) || isnan(y))
        return NAN;
    if (x == 0 && x == y)
        return signbit(x) ? y : x;
    return x > y ? x : y;
}

static double go_min(double x, double y)
{
    if ((isinf(x) && x < 0) || (isinf(y) && y < 0))
        return -INFINITY;
    if (isnan(x) || isnan(y))
        return NAN;
    if (x == 0 && x == y)
        return signbit(x) ? x : y;
    return x < y ? x : y;
}

static int clamp_vec(struct qcall *c, bool has_lo, double lo, bool has_hi, double hi,
                     struct mp_err *err)
{
    const struct qvector *v = c->args[0].vec;
    for (size_t i = 0; i < v->n; i++) {
        double x = v->s[i].v;
        if (has_hi)
            x = go_min(hi, x);
        if (has_lo)
            x = go_max(lo, x);
        int rc = query_func_push_dropped(c, v->s[i].labels, x, err);
        if (rc)
            return rc;
    }
    return 0;
}

static int f_clamp(struct qcall *c, struct mp_err *err)
{
    double lo = c->args[1].scalar, hi = c->args[2].scalar;
    if (hi < lo)
        return 0;
    return clamp_vec(c, true, lo, true, hi, err);
}

static int f_clamp_min(struct qcall *c, struct mp_err *err)
{
    return clamp_vec(c, true, c->args[1].scalar, false, 0, err);
}

static int f_clamp_max(struct qcall *c, struct mp_err *err)
{
    return clamp_vec(c, false, 0, true, c->args[1].scalar, err);
}

static int f_round(struct qcall *c, struct mp_err *err)
{
    double to = c->nargs >= 2 ? c->args[1].scalar : 1;
    double inv = 1.0 / to; /* the inverse causes fewer float artefacts (Prometheus) */
    const struct qvector *v = c->args[0].vec;
    for (size_t i = 0; i < v->n; i++) {
        double x = floor(v->s[i].v * inv + 0.5) / inv;
        int rc = query_func_push_dropped(c, v->s[i].labels, x, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- scalar, vector, time, pi (3.14) ----------------------------------------------------- */

static int push_plain(struct qcall *c, double v, struct mp_err *err)
{
    if (query_vec_push(c->out, mp_labels_empty(), v, c->t_ms, false))
        return query_func_oom(err);
    return 0;
}

static int f_scalar(struct qcall *c, struct mp_err *err)
{
    const struct qvector *v = c->args[0].vec;
    return push_plain(c, v->n == 1 ? v->s[0].v : NAN, err);
}

static int f_vector(struct qcall *c, struct mp_err *err)
{
    return push_plain(c, c->args[0].scalar, err);
}

static int f_time(struct qcall *c, struct mp_err *err)
{
    return push_plain(c, (double)c->t_ms / 1000, err);
}

static int f_pi(struct qcall *c, struct mp_err *err)
{
    return push_plain(c, M_PI, err);
}

/* ---- date functions (3.14) -------------------------------------------------------------- */

struct civil {
    int64_t year;
    int month, day, yday, wday, hour, minute; /* month 1..12, day 1..31, yday 1..366 */
};

static bool is_leap(int64_t y)
{
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static int month_days(int64_t y, int m)
{
    static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : d[m - 1];
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Proleptic Gregorian calendar, UTC, as Go's time.Unix(sec, 0).UTC() (days-to-civil after
 * H. Hinnant's algorithm). */
static struct civil civil_from_unix(int64_t sec)
{
    struct civil cv;
    int64_t days = sec / 86400, sod = sec % 86400;
    if (sod < 0) {
        sod += 86400;
        days--;
    }
    cv.hour = (int)(sod / 3600);
    cv.minute = (int)(sod % 3600 / 60);
    cv.wday = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday (4) */
    int64_t z = days + 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    cv.day = (int)(doy - (153 * mp + 2) / 5 + 1);
    cv.month = (int)(mp < 10 ? mp + 3 : mp - 9);
    cv.year = yoe + era * 400 + (cv.month <= 2);
    int yd = cv.day;
    for (int m = 1; m < cv.month; m++)
        yd += month_days(cv.year, m);
    cv.yday = yd;
    return cv;
}

/* Go's int64(f) on amd64: truncation toward zero; NaN and out-of-range give INT64_MIN. */
static int64_t go_f2i(double f)
{
    if (!(f >= -9223372036854775808.0 && f < 9223372036854775808.0))
        return INT64_MIN;
    return (int64_t)f;
}

enum date_part { D_MINUTE, D_HOUR, D_DOW, D_DOM, D_DOY, D_DIM, D_MONTH, D_YEAR };

static double date_value(int64_t sec, enum date_part part)
{
    struct civil cv = civil_from_unix(sec);
    switch (part) {
    case D_MINUTE:
        return cv.minute;
    case D_HOUR:
        return cv.hour;
    case D_DOW:
        return cv.wday;
    case D_DOM:
        return cv.day;
    case D_DOY:
        return cv.yday;
    case D_DIM:
        return month_days(cv.year, cv.month);
    case D_MONTH:
        return cv.month;
    case D_YEAR:
        return (double)cv.year;
    }
    return NAN;
}

static int date_fn(struct qcall *c, enum date_part part, struct mp_err *err)
{
    if (c->nargs == 0)
        return push_plain(c, date_value(c->t_ms / 1000, part), err);
    const struct qvector *v = c->args[0].vec;
    for (size_t i = 0; i < v->n; i++) {
        int rc = query_func_push_dropped(c, v->s[i].labels, date_value(go_f2i(v->s[i].v), part),
                                         err);
        if (rc)
            return rc;
    }
    return 0;
}

#define DATE(name, part)                                                                          \
    static int f_##name(struct qcall *c, struct mp_err *err)                                      \
    {                                                                                             \
        return date_fn(c, part, err);                                                             \
    }
DATE(minute, D_MINUTE)
DATE(hour, D_HOUR)
DATE(day_of_week, D_DOW)
DATE(day_of_month, D_DOM)
DATE(day_of_year, D_DOY)
DATE(days_in_month, D_DIM)
DATE(month, D_MONTH)
DATE(year, D_YEAR)

/* ---- native-histogram-only functions (3.15) ---------------------------------------------- */

/* histogram_count/sum/avg/stddev/stdvar/fraction: float samples are skipped, and this engine
 * stores no native histograms, so the result is always empty. */
static int f_histogram_only(struct qcall *c, struct mp_err *err)
{
    (void)c;
    (void)err;
    return 0;
}

/* ---- the table -------------------------------------------------------------------------- */

struct entry {
    const char *name;
    qfunc_fn *fn;
};

/* sorted by name (bsearch); functions the core evaluates have NULL */
static const struct entry table[] = {
    {"abs", f_abs},
    {"absent", NULL},
    {"absent_over_time", NULL},
    {"acos", f_acos},
    {"acosh", f_acosh},
    {"asin", f_asin},
    {"asinh", f_asinh},
    {"atan", f_atan},
    {"atanh", f_atanh},
    {"avg_over_time", query_func_avg_over_time},
    {"ceil", f_ceil},
    {"changes", query_func_changes},
    {"clamp", f_clamp},
    {"clamp_max", f_clamp_max},
    {"clamp_min", f_clamp_min},
    {"cos", f_cos},
    {"cosh", f_cosh},
    {"count_over_time", query_func_count_over_time},
    {"day_of_month", f_day_of_month},
    {"day_of_week", f_day_of_week},
    {"day_of_year", f_day_of_year},
    {"days_in_month", f_days_in_month},
    {"deg", f_deg},
    {"delta", query_func_delta},
    {"deriv", query_func_deriv},
    {"exp", f_exp},
    {"floor", f_floor},
    {"histogram_avg", f_histogram_only},
    {"histogram_count", f_histogram_only},
    {"histogram_fraction", f_histogram_only},
    {"histogram_quantile", query_func_histogram_quantile},
    {"histogram_stddev", f_histogram_only},
    {"histogram_stdvar", f_histogram_only},
    {"histogram_sum", f_histogram_only},
    {"holt_winters", query_func_holt_winters},
    {"hour", f_hour},
    {"idelta", query_func_idelta},
    {"increase", query_func_increase},
    {"info", NULL}, /* needs the storage (target_info series): evaluator core */
    {"irate", query_func_irate},
    {"label_join", query_func_label_join},
    {"label_replace", query_func_label_replace},
    {"last_over_time", query_func_last_over_time},
    {"ln", f_ln},
    {"log10", f_log10},
    {"log2", f_log2},
    {"mad_over_time", query_func_mad_over_time},
    {"max_over_time", query_func_max_over_time},
    {"min_over_time", query_func_min_over_time},
    {"minute", f_minute},
    {"month", f_month},
    {"pi", f_pi},
    {"predict_linear", query_func_predict_linear},
    {"present_over_time", query_func_present_over_time},
    {"quantile_over_time", query_func_quantile_over_time},
    {"rad", f_rad},
    {"rate", query_func_rate},
    {"resets", query_func_resets},
    {"round", f_round},
    {"scalar", f_scalar},
    {"sgn", f_sgn},
    {"sin", f_sin},
    {"sinh", f_sinh},
    {"sort", NULL},
    {"sort_by_label", NULL},
    {"sort_by_label_desc", NULL},
    {"sort_desc", NULL},
    {"sqrt", f_sqrt},
    {"stddev_over_time", query_func_stddev_over_time},
    {"stdvar_over_time", query_func_stdvar_over_time},
    {"sum_over_time", query_func_sum_over_time},
    {"tan", f_tan},
    {"tanh", f_tanh},
    {"time", f_time},
    {"timestamp", NULL},
    {"vector", f_vector},
    {"year", f_year},
};

static int cmp_entry(const void *key, const void *elem)
{
    return strcmp(key, ((const struct entry *)elem)->name);
}

qfunc_fn *query_func_lookup(const struct query_function *f)
{
    if (!f)
        return NULL;
    const struct entry *e =
        bsearch(f->name, table, sizeof table / sizeof table[0], sizeof table[0], cmp_entry);
    return e ? e->fn : NULL;
}
