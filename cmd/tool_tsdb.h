/* SPDX-License-Identifier: Apache-2.0 */
/* cmd/tool_tsdb.h: meshpromtool's `tsdb` commands (promtool 2.42 work-alikes). Each takes the
 * arguments after its command words and returns the exit status (0, or 1 for an error or a
 * usage error, as promtool). Single-threaded; for meshpromtool's main only. */
#ifndef CMD_TOOL_TSDB_H
#define CMD_TOOL_TSDB_H

/* tsdb create-blocks-from openmetrics [-q] [-r] <input file> [<output directory>] */
int cmd_tool_tsdb_create_blocks(int argc, char **argv);
/* tsdb dump [--min-time=T] [--max-time=T] [--match=SELECTOR] [<db path>] */
int cmd_tool_tsdb_dump(int argc, char **argv);
/* tsdb analyze [--limit=N] [--extended] [<db path>] [<block id>] */
int cmd_tool_tsdb_analyze(int argc, char **argv);
/* Only warnings and errors from the libraries (the storage engine logs its opening at info). */
void cmd_tool_tsdb_quiet_logs(void);

#endif
