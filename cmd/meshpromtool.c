/* SPDX-License-Identifier: Apache-2.0 */
/* cmd/meshpromtool.c: the companion tool, a promtool work-alike. Commands live in one table
 * (words, usage, handler); adding "tsdb analyze" or "test promql" is one row and one function.
 * Exit codes as promtool: 0 success, 1 a check failed, 2 usage error. */
#include <stdio.h>
#include <string.h>

#include "cmd/tool_promql.h"
#include "cmd/tool_tsdb.h"
#include "configs/config.h"

#define EXIT_OK 0
#define EXIT_FAILED 1
#define EXIT_USAGE 2

struct tool_cmd {
    const char *words[4]; /* command words, NULL-terminated */
    const char *args;     /* argument synopsis for the usage text */
    const char *help;
    int (*run)(int argc, char **argv); /* argv: the arguments after the command words */
};

static void usage(FILE *out);

/* check config FILE...: load each file as meshprom would and say whether it is valid. */
static int run_check_config(int argc, char **argv)
{
    int nfiles = 0, status = EXIT_OK;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--syntax-only") == 0)
            continue; /* rule files are not checked anyway */
        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "meshpromtool: unknown flag %s for check config\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    for (int i = 0; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            continue;
        nfiles++;
        printf("Checking %s\n", argv[i]);
        fflush(stdout);
        struct cfg_config *cfg = NULL;
        struct mp_err err;
        mp_err_clear(&err);
        if (cfg_config_load_file(argv[i], &cfg, &err) == 0) {
            printf(" SUCCESS: %s is valid prometheus config file syntax\n", argv[i]);
            cfg_config_destroy(cfg);
        } else {
            fprintf(stderr, " FAILED: %s\n", err.msg);
            status = EXIT_FAILED;
        }
        if (i + 1 < argc)
            printf("\n");
        fflush(stdout);
    }
    if (nfiles == 0) {
        fprintf(stderr, "meshpromtool: check config needs at least one FILE\n");
        return EXIT_USAGE;
    }
    return status;
}

static const struct tool_cmd commands[] = {
    {{"check", "config", NULL}, "[--syntax-only] FILE...",
     "Check that prometheus.yml files are valid for meshprom (and Prometheus 2.55).",
     run_check_config},
    {{"tsdb", "create-blocks-from", "openmetrics"},
     "[-q|--quiet] [-r|--human-readable] <input file> [<output directory>]",
     "Import samples from an OpenMetrics file into blocks (one per 2 h window).",
     cmd_tool_tsdb_create_blocks},
    {{"tsdb", "dump", NULL}, "[--min-time=T] [--max-time=T] [--match=SELECTOR] [<db path>]",
     "Dump samples from a TSDB (default data/), one line per sample.", cmd_tool_tsdb_dump},
    {{"tsdb", "analyze", NULL}, "[--limit=20] [--extended] [<db path>] [<block id>]",
     "Analyze churn, label pair cardinality and chunks of a block (default the last).",
     cmd_tool_tsdb_analyze},
    {{"test", "promql", NULL}, "[--no-range-check] FILE...",
     "Run promqltest .test files (load / clear / eval) against the query engine.",
     cmd_tool_test_promql},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out, "usage: meshpromtool [--help] <command> [<args>...]\n\n"
                 "Tooling for the meshprom monitoring system.\n\nCommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const struct tool_cmd *c = &commands[i];
        char name[64] = "";
        for (size_t w = 0; c->words[w]; w++) {
            if (w)
                strncat(name, " ", sizeof name - strlen(name) - 1);
            strncat(name, c->words[w], sizeof name - strlen(name) - 1);
        }
        fprintf(out, "  %s %s\n      %s\n", name, c->args, c->help);
    }
}

/* Number of leading argv words that match cmd, or 0. */
static int match(const struct tool_cmd *cmd, int argc, char **argv)
{
    int n = 0;
    for (; cmd->words[n]; n++)
        if (n >= argc || strcmp(argv[n], cmd->words[n]) != 0)
            return 0;
    return n;
}

int main(int argc, char **argv)
{
    int a = 1;
    for (; a < argc && argv[a][0] == '-'; a++) {
        if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0 ||
            strcmp(argv[a], "--help-long") == 0) {
            usage(stdout);
            return EXIT_OK;
        }
        if (strcmp(argv[a], "--version") == 0) {
            printf("meshpromtool (meshprom)\n");
            return EXIT_OK;
        }
        fprintf(stderr, "meshpromtool: unknown flag %s\n", argv[a]);
        usage(stderr);
        return EXIT_USAGE;
    }
    cmd_tool_tsdb_quiet_logs();
    for (size_t i = 0; i < NCOMMANDS; i++) {
        int n = match(&commands[i], argc - a, argv + a);
        if (n > 0)
            return commands[i].run(argc - a - n, argv + a + n);
    }
    if (a < argc)
        fprintf(stderr, "meshpromtool: unknown command \"%s\"\n", argv[a]);
    usage(stderr);
    return EXIT_USAGE;
}
