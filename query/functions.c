/* SPDX-License-Identifier: Apache-2.0 */
/* query/functions.c: the function table of Prometheus 2.55 (promql/parser/functions.go):
 * argument types, variadic counts, return types, and which are experimental. */
#include "query/query_internal.h"

#define S QUERY_TYPE_SCALAR
#define V QUERY_TYPE_VECTOR
#define M QUERY_TYPE_MATRIX
#define STR QUERY_TYPE_STRING
#define F(name, ret, var, exp, n, ...)                                                             \
    {                                                                                              \
        name, {__VA_ARGS__}, n, var, ret, exp                                                      \
    }

/* sorted by name for bsearch */
static const struct query_function funcs[] = {
    F("abs", V, 0, false, 1, V),
    F("absent", V, 0, false, 1, V),
    F("absent_over_time", V, 0, false, 1, M),
    F("acos", V, 0, false, 1, V),
    F("acosh", V, 0, false, 1, V),
    F("asin", V, 0, false, 1, V),
    F("asinh", V, 0, false, 1, V),
    F("atan", V, 0, false, 1, V),
    F("atanh", V, 0, false, 1, V),
    F("avg_over_time", V, 0, false, 1, M),
    F("ceil", V, 0, false, 1, V),
    F("changes", V, 0, false, 1, M),
    F("clamp", V, 0, false, 3, V, S, S),
    F("clamp_max", V, 0, false, 2, V, S),
    F("clamp_min", V, 0, false, 2, V, S),
    F("cos", V, 0, false, 1, V),
    F("cosh", V, 0, false, 1, V),
    F("count_over_time", V, 0, false, 1, M),
    F("day_of_month", V, 1, false, 1, V),
    F("day_of_week", V, 1, false, 1, V),
    F("day_of_year", V, 1, false, 1, V),
    F("days_in_month", V, 1, false, 1, V),
    F("deg", V, 0, false, 1, V),
    F("delta", V, 0, false, 1, M),
    F("deriv", V, 0, false, 1, M),
    F("exp", V, 0, false, 1, V),
    F("floor", V, 0, false, 1, V),
    F("histogram_avg", V, 0, false, 1, V),
    F("histogram_count", V, 0, false, 1, V),
    F("histogram_fraction", V, 0, false, 3, S, S, V),
    F("histogram_quantile", V, 0, false, 2, S, V),
    F("histogram_stddev", V, 0, false, 1, V),
    F("histogram_stdvar", V, 0, false, 1, V),
    F("histogram_sum", V, 0, false, 1, V),
    F("holt_winters", V, 0, false, 3, M, S, S),
    F("hour", V, 1, false, 1, V),
    F("idelta", V, 0, false, 1, M),
    F("increase", V, 0, false, 1, M),
    F("info", V, 1, true, 2, V, V),
    F("irate", V, 0, false, 1, M),
    F("label_join", V, -1, false, 4, V, STR, STR, STR),
    F("label_replace", V, 0, false, 5, V, STR, STR, STR, STR),
    F("last_over_time", V, 0, false, 1, M),
    F("ln", V, 0, false, 1, V),
    F("log10", V, 0, false, 1, V),
    F("log2", V, 0, false, 1, V),
    F("mad_over_time", V, 0, true, 1, M),
    F("max_over_time", V, 0, false, 1, M),
    F("min_over_time", V, 0, false, 1, M),
    F("minute", V, 1, false, 1, V),
    F("month", V, 1, false, 1, V),
    F("pi", S, 0, false, 0, QUERY_TYPE_NONE),
    F("predict_linear", V, 0, false, 2, M, S),
    F("present_over_time", V, 0, false, 1, M),
    F("quantile_over_time", V, 0, false, 2, S, M),
    F("rad", V, 0, false, 1, V),
    F("rate", V, 0, false, 1, M),
    F("resets", V, 0, false, 1, M),
    F("round", V, 1, false, 2, V, S),
    F("scalar", S, 0, false, 1, V),
    F("sgn", V, 0, false, 1, V),
    F("sin", V, 0, false, 1, V),
    F("sinh", V, 0, false, 1, V),
    F("sort", V, 0, false, 1, V),
    F("sort_by_label", V, -1, true, 2, V, STR),
    F("sort_by_label_desc", V, -1, true, 2, V, STR),
    F("sort_desc", V, 0, false, 1, V),
    F("sqrt", V, 0, false, 1, V),
    F("stddev_over_time", V, 0, false, 1, M),
    F("stdvar_over_time", V, 0, false, 1, M),
    F("sum_over_time", V, 0, false, 1, M),
    F("tan", V, 0, false, 1, V),
    F("tanh", V, 0, false, 1, V),
    F("time", S, 0, false, 0, QUERY_TYPE_NONE),
    F("timestamp", V, 0, false, 1, V),
    F("vector", V, 0, false, 1, S),
    F("year", V, 1, false, 1, V),
};

const struct query_function *query_function_get(struct mp_str name)
{
    size_t lo = 0, hi = sizeof funcs / sizeof funcs[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = mp_str_cmp(name, mp_str_c(funcs[mid].name));
        if (c == 0)
            return &funcs[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}
