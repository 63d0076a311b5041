/* SPDX-License-Identifier: Apache-2.0 */
/* cmd/selector.h: PromQL series selectors (`name{l="v", l2=~"re"}`) as Prometheus 2.42's
 * parser.ParseMetricSelector reads them, for meshpromtool's --match until the PromQL parser
 * exists: metric name optional (PromQL keywords that the grammar accepts as names too), label
 * matchers = != =~ !~ with double-, single- or back-quoted values (Go escapes), trailing comma,
 * # comments, whitespace. Errors carry Prometheus's text and position:
 * `1:8: parse error: unexpected end of input inside braces`.
 * Regex values compile as Prometheus 2.42's matchers (^(?:re)$, no DOTALL).
 * Thread safety: pure functions; a parsed selector is immutable. */
#ifndef CMD_SELECTOR_H
#define CMD_SELECTOR_H

#include <stddef.h>

#include "common/err.h"
#include "common/matcher.h"

struct cmd_selector {
    struct mp_matcher **m; /* label matchers in input order, then __name__="<metric name>" */
    size_t n;              /* 0 for "{}" */
};

/* Parses s[0..len). 0 with *out filled (free with cmd_selector_fini), or MP_EPARSE with the
 * message in err, or MP_ENOMEM. On failure *out is empty. */
MP_NODISCARD int cmd_selector_parse(const char *s, size_t len, struct cmd_selector *out,
                                    struct mp_err *err);
void cmd_selector_fini(struct cmd_selector *sel);

/* Prometheus's rule for a query's vector selector (not applied by ParseMetricSelector itself):
 * at least one matcher must not match the empty string. 0, or MP_EPARSE "vector selector must
 * contain at least one non-empty matcher". */
MP_NODISCARD int cmd_selector_check_nonempty(const struct cmd_selector *sel, struct mp_err *err);

#endif
