/* SPDX-License-Identifier: Apache-2.0 */
/* cmd/tool_promql.h: meshpromtool's `test promql` command (promqltest .test files run against
 * meshprom's engine). Single-threaded; for meshpromtool's main only. */
#ifndef CMD_TOOL_PROMQL_H
#define CMD_TOOL_PROMQL_H

/* test promql [--no-range-check] FILE...: exit 0 when every eval of every file passed, 1 when
 * one failed or a file is invalid, 2 for a usage error. */
int cmd_tool_test_promql(int argc, char **argv);

#endif
