/* SPDX-License-Identifier: Apache-2.0 */
/* cmd/tool_promql.c: `meshpromtool test promql FILE...`. Each file runs through
 * query_test_run_file (query/query.h: a fresh storage per file, the engine with promqltest's
 * settings); failures are printed with file:line and the expected/actual values, then one
 * summary line. */
#include <stdio.h>
#include <string.h>

#include "cmd/tool_promql.h"
#include "query/query.h"

int cmd_tool_test_promql(int argc, char **argv)
{
    struct query_test_opts o;
    query_test_opts_init(&o);
    int nfiles = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--no-range-check") == 0) {
            o.range_check = false;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "meshpromtool: unknown flag %s for test promql\n", argv[i]);
            return 2;
        } else {
            nfiles++;
        }
    }
    if (nfiles == 0) {
        fprintf(stderr, "meshpromtool: test promql needs at least one FILE\n");
        return 2;
    }
    size_t evals = 0, failed = 0, bad_files = 0;
    for (int i = 0; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            continue;
        struct query_test_report rep;
        query_test_report_init(&rep);
        struct mp_err err;
        mp_err_clear(&err);
        int rc = query_test_run_file(argv[i], &o, &rep, &err);
        if (rep.log.len)
            fwrite(rep.log.data, 1, rep.log.len, stdout);
        if (rc != 0) {
            printf("%s: FAILED: %s\n", argv[i], err.msg);
            bad_files++;
        } else {
            printf("%s: %s (%zu evals, %zu failed)\n", argv[i], rep.failed ? "FAILED" : "PASS",
                   rep.evals, rep.failed);
        }
        evals += rep.evals;
        failed += rep.failed;
        query_test_report_fini(&rep);
        fflush(stdout);
    }
    printf("%d files, %zu evals, %zu failed, %zu files could not run\n", nfiles, evals, failed,
           bad_files);
    return failed || bad_files ? 1 : 0;
}
