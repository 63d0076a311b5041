/* SPDX-License-Identifier: Apache-2.0 */
/* bench/mesh_fill.h: appends meshsim_gen scrapes to a tsdb, one appender per scrape, with the
 * series refs remembered by generator series id so that labels are built only for new series.
 * Out-of-order and duplicate samples (the generator's jitter can produce them) are skipped as
 * a scraper would. Header-only, like bench.h; one struct bench_mesh_fill per thread. */
#ifndef BENCH_MESH_FILL_H
#define BENCH_MESH_FILL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/labels.h"
#include "meshsim/meshsim.h"
#include "tsdb/tsdb.h"

struct bench_mesh_fill {
    struct mp_label *ls; /* scratch label array */
    size_t lcap;
    uint64_t *refs; /* tsdb ref by generator series id; 0 = not appended yet */
    size_t rcap;
};

/* Appends and commits one scrape. 0, or the failing add's or commit's status (err says why). */
static inline int bench_mesh_fill_scrape(struct bench_mesh_fill *f, struct tsdb *db,
                                         const struct meshsim_gen_scrape *sc, struct mp_err *err)
{
    struct tsdb_appender *a;
    int rc = tsdb_appender_create(db, &a);
    if (rc)
        return rc;
    for (size_t i = 0; i < sc->n; i++) {
        const struct meshsim_gen_sample *x = &sc->samples[i];
        if (x->series_id >= f->rcap) {
            size_t nc = (x->series_id + 1) * 2;
            f->refs = realloc(f->refs, nc * sizeof *f->refs);
            if (!f->refs)
                abort();
            memset(f->refs + f->rcap, 0, (nc - f->rcap) * sizeof *f->refs);
            f->rcap = nc;
        }
        struct mp_labels *set = NULL;
        if (!f->refs[x->series_id]) {
            if (x->nlabels > f->lcap) {
                f->lcap = x->nlabels * 2;
                f->ls = realloc(f->ls, f->lcap * sizeof *f->ls);
                if (!f->ls)
                    abort();
            }
            for (size_t k = 0; k < x->nlabels; k++)
                f->ls[k] = (struct mp_label){x->labels[2 * k], x->labels[2 * k + 1]};
            if (mp_labels_create(f->ls, x->nlabels, &set, err))
                abort();
        }
        rc = tsdb_appender_add(a, f->refs[x->series_id], set, sc->t_ms, x->value,
                               &f->refs[x->series_id], err);
        mp_labels_release(set);
        if (rc && rc != MP_EOUTOFORDER && rc != MP_EDUPLICATE) {
            tsdb_appender_rollback(a);
            return rc;
        }
    }
    return tsdb_appender_commit(a, err);
}

static inline void bench_mesh_fill_fini(struct bench_mesh_fill *f)
{
    free(f->ls);
    free(f->refs);
    memset(f, 0, sizeof *f);
}

/* Generates the mesh o describes and appends all of it to db; exits with "prog: ..." on any
 * failure (benchmarks only). Returns the last scrape time; st (may be NULL) gets the counts. */
static inline int64_t bench_mesh_fill_all(struct tsdb *db, const struct meshsim_gen_opts *o,
                                          const char *prog, struct meshsim_gen_stats *st)
{
    struct meshsim_gen *g;
    struct mp_err err = {0};
    if (meshsim_gen_create(o, &g, &err)) {
        fprintf(stderr, "%s: meshgen: %s\n", prog, err.msg);
        exit(1);
    }
    struct bench_mesh_fill mf = {0};
    int64_t last = o->start_ms;
    struct meshsim_gen_scrape sc;
    while (meshsim_gen_next(g, &sc) == 0) {
        if (bench_mesh_fill_scrape(&mf, db, &sc, &err)) {
            fprintf(stderr, "%s: append: %s\n", prog, err.msg);
            exit(1);
        }
        last = sc.t_ms;
    }
    if (st)
        meshsim_gen_get_stats(g, st);
    meshsim_gen_destroy(g);
    bench_mesh_fill_fini(&mf);
    return last;
}

#endif
