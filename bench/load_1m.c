/* SPDX-License-Identifier: Apache-2.0 */
/* bench/load_1m.c: see load_1m.h. */
#define _GNU_SOURCE
#include "bench/load_1m.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "common/log.h"
#include "common/time.h"
#include "tsdb/fileutil.h"
#include "tsdb/tsdb.h"

#define STAMP "load_1m.stamp"

/* The generator options as one line: the key a data dir is reused by. */
static void options_line(const struct meshsim_gen_opts *o, char *buf, size_t cap)
{
    snprintf(buf, cap,
             "namespaces=%d deployments=%d replicas=%d peers=%d start_ms=%" PRId64
             " duration_ms=%" PRId64 " interval_ms=%" PRId64 " jitter_ms=%" PRId64
             " seed=%" PRIu64 " churn=%.17g churn_every_ms=%" PRId64,
             o->namespaces, o->deployments, o->replicas, o->peers, o->start_ms, o->duration_ms,
             o->interval_ms, o->jitter_ms, o->seed, o->churn, o->churn_every_ms);
}

#define STATS_FMT                                                                              \
    "series=%" SCNu64 " samples=%" SCNu64 " pods=%" SCNu64 " scrapes=%" SCNu64 " t0_ms=%" SCNd64 \
    " t1_ms=%" SCNd64 " wal_bytes=%" SCNu64 " block_bytes=%" SCNu64 " block=%200s"

/* true when dir's stamp has options line opts; *st gets its stats. */
static bool stamp_matches(const char *dir, const char *opts, struct load1m_stats *st)
{
    char path[4096], line[1024];
    snprintf(path, sizeof path, "%s/" STAMP, dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool ok = fgets(line, sizeof line, f) && (line[strcspn(line, "\n")] = '\0', true) &&
              strcmp(line, opts) == 0 && fgets(line, sizeof line, f) &&
              sscanf(line, STATS_FMT, &st->series, &st->samples, &st->pods, &st->scrapes,
                     &st->t0_ms, &st->t1_ms, &st->wal_bytes, &st->block_bytes, st->block) == 9;
    fclose(f);
    return ok;
}

static int write_stamp(const char *dir, const char *opts, const struct load1m_stats *st,
                       struct mp_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/" STAMP, dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return mp_err_set(err, MP_EIO, "%s: %s", path, strerror(errno));
    fprintf(f, "%s\n", opts);
    fprintf(f,
            "series=%" PRIu64 " samples=%" PRIu64 " pods=%" PRIu64 " scrapes=%" PRIu64
            " t0_ms=%" PRId64 " t1_ms=%" PRId64 " wal_bytes=%" PRIu64 " block_bytes=%" PRIu64
            " block=%s\n",
            st->series, st->samples, st->pods, st->scrapes, st->t0_ms, st->t1_ms, st->wal_bytes,
            st->block_bytes, st->block);
    if (fclose(f) != 0)
        return mp_err_set(err, MP_EIO, "%s: %s", path, strerror(errno));
    return 0;
}

/* rm -r of the tsdb's own entries in dir (wal/, chunks_head/, lock, the stamp). */
static int clear_dir(const char *dir, struct mp_err *err)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd,
             "rm -rf '%s/wal' '%s/chunks_head' '%s/snapshots' '%s/lock' '%s/" STAMP "'", dir, dir,
             dir, dir, dir);
    if (strchr(dir, '\'') || system(cmd) != 0)
        return mp_err_set(err, MP_EIO, "could not clear %s", dir);
    return 0;
}

/* The one block folder of dir/snapshots/<snap>/ as "snapshots/<snap>/<ULID>" into out. */
static int find_block(const char *dir, const char *snap, char *out, size_t cap,
                      struct mp_err *err)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/snapshots/%s", dir, snap);
    DIR *d = opendir(p);
    if (!d)
        return mp_err_set(err, MP_EIO, "%s: %s", p, strerror(errno));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && strlen(e->d_name) == 26)
            n += snprintf(out, cap, "snapshots/%s/%s", snap, e->d_name) < (int)cap;
    closedir(d);
    if (n != 1)
        return mp_err_set(err, MP_EIO, "%s: %d blocks, expected one", p, n);
    return 0;
}

/* Refs by generator series id (0 = not in the tsdb yet) and the scratch of one scrape. */
struct filler {
    uint64_t *ref;
    size_t nref;
    struct mp_label *ls;
    size_t nls;
    uint64_t *brefs; /* the scrape's known series, for add_refs */
    double *bvals;
    int *bstatus;
    size_t nb;
};

static bool skippable(int rc)
{
    return rc == MP_EOUTOFORDER || rc == MP_EDUPLICATE;
}

/* One scrape in one appender: new series by labels, known ones through add_refs. */
static int fill_scrape(struct filler *f, struct tsdb *db, const struct meshsim_gen_scrape *sc,
                       uint64_t *samples, struct mp_err *err)
{
    if (sc->n > f->nb) {
        f->nb = sc->n * 2;
        f->brefs = mp_xrealloc(f->brefs, f->nb * sizeof *f->brefs);
        f->bvals = mp_xrealloc(f->bvals, f->nb * sizeof *f->bvals);
        f->bstatus = mp_xrealloc(f->bstatus, f->nb * sizeof *f->bstatus);
    }
    struct tsdb_appender *a;
    int rc = tsdb_appender_create(db, &a);
    if (rc)
        return mp_err_set(err, rc, "tsdb_appender_create failed");
    size_t nb = 0;
    for (size_t i = 0; i < sc->n && rc == 0; i++) {
        const struct meshsim_gen_sample *x = &sc->samples[i];
        if (x->series_id >= f->nref) {
            size_t nn = (size_t)(x->series_id + 1) * 2;
            f->ref = mp_xrealloc(f->ref, nn * sizeof *f->ref);
            memset(f->ref + f->nref, 0, (nn - f->nref) * sizeof *f->ref);
            f->nref = nn;
        }
        if (f->ref[x->series_id]) {
            f->brefs[nb] = f->ref[x->series_id];
            f->bvals[nb++] = x->value;
            continue;
        }
        if (x->nlabels > f->nls) {
            f->nls = x->nlabels * 2;
            f->ls = mp_xrealloc(f->ls, f->nls * sizeof *f->ls);
        }
        for (size_t k = 0; k < x->nlabels; k++)
            f->ls[k] = (struct mp_label){x->labels[2 * k], x->labels[2 * k + 1]};
        struct mp_labels *set = NULL;
        rc = mp_labels_create(f->ls, x->nlabels, &set, err);
        if (rc == 0) {
            rc = tsdb_appender_add(a, 0, set, sc->t_ms, x->value, &f->ref[x->series_id], err);
            if (rc == 0)
                ++*samples;
            else if (skippable(rc))
                rc = 0;
        }
        mp_labels_release(set);
    }
    if (rc == 0 && nb) {
        mp_err_clear(err);
        rc = tsdb_appender_add_refs(a, f->brefs, f->bvals, nb, sc->t_ms, f->bstatus, err);
        if (rc != 0) {
            rc = 0;
            for (size_t i = 0; i < nb && rc == 0; i++)
                if (f->bstatus[i] != 0 && !skippable(f->bstatus[i]))
                    rc = f->bstatus[i];
            if (rc == 0)
                mp_err_clear(err);
        }
        for (size_t i = 0; i < nb; i++)
            *samples += f->bstatus[i] == 0;
    }
    if (rc != 0) {
        tsdb_appender_rollback(a);
        return rc;
    }
    return tsdb_appender_commit(a, err);
}

/* Fills a tsdb in dir from the generator, snapshots its head as one block in Prometheus's
 * format, closes it. */
static int write_mesh(const struct meshsim_gen_opts *o, const char *dir, struct load1m_stats *st,
                      struct mp_err *err)
{
    struct tsdb_options to;
    tsdb_options_init(&to);
    to.dir = dir;
    to.block_compression_level = 0; /* the snapshot's block: Prometheus's format */
    to.wal_fsync = TSDB_WAL_FSYNC_NONE;
    to.background = false; /* 1 h never makes a block; no compaction while writing */
    mp_log_set_level(MP_LOG_LEVEL_WARN); /* the tsdb's start-up lines would mix into stdout's */
    struct tsdb *db = NULL;
    int rc = tsdb_open(&to, &db, err);
    if (rc)
        return rc;
    struct meshsim_gen *g = NULL;
    if ((rc = meshsim_gen_create(o, &g, err)) != 0) {
        tsdb_close(db);
        return rc;
    }
    struct filler f = {0};
    struct meshsim_gen_scrape sc;
    st->t0_ms = INT64_MAX;
    st->t1_ms = INT64_MIN;
    while ((rc = meshsim_gen_next(g, &sc)) == 0) {
        if ((rc = fill_scrape(&f, db, &sc, &st->samples, err)) != 0)
            break;
        if (sc.t_ms < st->t0_ms)
            st->t0_ms = sc.t_ms;
        if (sc.t_ms > st->t1_ms)
            st->t1_ms = sc.t_ms;
    }
    if (rc == MP_EEOF)
        rc = 0;
    struct meshsim_gen_stats gs;
    meshsim_gen_get_stats(g, &gs);
    st->series = gs.series;
    st->pods = gs.pods;
    st->scrapes = gs.scrapes;
    meshsim_gen_destroy(g);
    char snap[64];
    if (rc == 0 && (rc = tsdb_snapshot(db, false, snap, err)) == 0)
        rc = find_block(dir, snap, st->block, sizeof st->block, err);
    tsdb_close(db);
    mp_free(f.ref);
    mp_free(f.ls);
    mp_free(f.brefs);
    mp_free(f.bvals);
    mp_free(f.bstatus);
    return rc;
}

int load1m_prepare(const struct meshsim_gen_opts *o, const char *dir, struct load1m_stats *st,
                   struct mp_err *err)
{
    memset(st, 0, sizeof *st);
    char opts[512];
    options_line(o, opts, sizeof opts);
    if (stamp_matches(dir, opts, st)) {
        st->reused = true;
        return 0;
    }
    memset(st, 0, sizeof *st);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return mp_err_set(err, MP_EIO, "mkdir %s: %s", dir, strerror(errno));
    int rc = clear_dir(dir, err);
    if (rc)
        return rc;
    int64_t started = mp_mono_ns();
    if ((rc = write_mesh(o, dir, st, err)) != 0)
        return rc;
    st->seconds = (double)(mp_mono_ns() - started) / 1e9;
    char wal[4096];
    snprintf(wal, sizeof wal, "%s/wal", dir);
    st->wal_bytes = tsdb_dir_bytes(wal, true);
    char block[4400];
    snprintf(block, sizeof block, "%s/%s", dir, st->block);
    st->block_bytes = tsdb_dir_bytes(block, true);
    return write_stamp(dir, opts, st, err);
}

/* Hard-links every file of src into dst (created), folders recursively; *n counts the files. */
static int link_tree(const char *src, const char *dst, int *n, struct mp_err *err)
{
    if (mkdir(dst, 0755) != 0)
        return mp_err_set(err, MP_EIO, "mkdir %s: %s", dst, strerror(errno));
    DIR *d = opendir(src);
    if (!d)
        return mp_err_set(err, MP_EIO, "%s: %s", src, strerror(errno));
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        char a[4096], b[4096];
        struct stat sb;
        if (e->d_name[0] == '.')
            continue;
        if (snprintf(a, sizeof a, "%s/%s", src, e->d_name) >= (int)sizeof a ||
            snprintf(b, sizeof b, "%s/%s", dst, e->d_name) >= (int)sizeof b || stat(a, &sb) != 0)
            rc = mp_err_set(err, MP_EIO, "%s/%s: %s", src, e->d_name, strerror(errno));
        else if (S_ISDIR(sb.st_mode))
            rc = link_tree(a, b, n, err);
        else if (link(a, b) != 0)
            rc = mp_err_set(err, MP_EIO, "link %s %s: %s", a, b, strerror(errno));
        else
            ++*n;
    }
    closedir(d);
    return rc;
}

int load1m_link(const char *src_dir, const struct load1m_stats *st, bool block,
                const char *peer_dir, struct mp_err *err)
{
    char src[4400], dst[4400];
    const char *ulid = strrchr(st->block, '/');
    snprintf(src, sizeof src, "%s/%s", src_dir, block ? st->block : "wal");
    snprintf(dst, sizeof dst, "%s/%s", peer_dir, block ? (ulid ? ulid + 1 : "") : "wal");
    if (mkdir(peer_dir, 0755) != 0 && errno != EEXIST)
        return mp_err_set(err, MP_EIO, "mkdir %s: %s", peer_dir, strerror(errno));
    if (block && !ulid)
        return mp_err_set(err, MP_EIO, "%s holds no block", src_dir);
    int n = 0;
    int rc = link_tree(src, dst, &n, err);
    if (rc == 0 && n == 0)
        rc = mp_err_set(err, MP_EIO, "%s is empty", src);
    return rc;
}
