/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/analyze.c: the reports of promtool 2.42's `tsdb analyze` and `tsdb create-blocks-from`
 * (tsdb.h "Tools"). Analyze reads one block's index as promtool's analyzeBlock does: every series
 * of the all-postings list once (churn, label pair counts), every label name's values, the
 * postings of every metric name; chunk headers only for the fullness histogram and our chunk
 * statistics. Promtool sorts its lists with an unstable sort over Go maps, so equal counts come
 * out in random order; here ties are ordered by name. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "tsdb/db.h"
#include "tsdb/postings.h"

/* ---- Go formatting ------------------------------------------------------------------------ */

/* Writes u in decimal backwards, ending before buf[*w]. */
static void put_uint(char *buf, size_t *w, uint64_t u)
{
    do {
        buf[--*w] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
}

/* Go time.Duration(ms * 1e6).String(), with Go's wrapping multiplication. */
static void go_duration(int64_t ms, char *out, size_t cap)
{
    int64_t d = (int64_t)((uint64_t)ms * UINT64_C(1000000));
    char buf[40];
    size_t w = sizeof buf;
    buf[--w] = '\0';
    uint64_t u = d < 0 ? -(uint64_t)d : (uint64_t)d;
    if (u == 0) {
        snprintf(out, cap, "0s");
        return;
    }
    int prec;
    buf[--w] = 's';
    if (u < 1000000000u) {
        if (u < 1000u) {
            prec = 0;
            buf[--w] = 'n';
        } else if (u < 1000000u) {
            prec = 3;
            w -= 2;
            memcpy(buf + w, "\xc2\xb5", 2);
        } else {
            prec = 6;
            buf[--w] = 'm';
        }
    } else {
        prec = 9;
    }
    /* fraction: prec digits, trailing zeros and a lone '.' left out */
    bool print = false;
    for (int i = 0; i < prec; i++) {
        unsigned digit = (unsigned)(u % 10);
        print = print || digit != 0;
        if (print)
            buf[--w] = (char)('0' + digit);
        u /= 10;
    }
    if (print)
        buf[--w] = '.';
    if (prec == 9) {
        put_uint(buf, &w, u % 60); /* seconds, then minutes and hours when non-zero */
        u /= 60;
        if (u > 0) {
            buf[--w] = 'm';
            put_uint(buf, &w, u % 60);
            u /= 60;
            if (u > 0) {
                buf[--w] = 'h';
                put_uint(buf, &w, u);
            }
        }
    } else {
        put_uint(buf, &w, u);
    }
    if (d < 0)
        buf[--w] = '-';
    snprintf(out, cap, "%s", buf + w);
}

/* Go time.Unix(ms / 1000, 0).UTC().String(): "2006-01-02 15:04:05 +0000 UTC". */
static void go_time(int64_t ms, char *out, size_t cap)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&s, &tm)) {
        snprintf(out, cap, "%" PRId64, ms);
        return;
    }
    snprintf(out, cap, "%04d-%02d-%02d %02d:%02d:%02d +0000 UTC", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* alecthomas/units Base2Bytes.String(): "1KiB512B", "684B", "0B". */
static void go_base2_bytes(uint64_t n, char *out, size_t cap)
{
    static const char *const unit[] = {"", "K", "M", "G", "T", "P", "E"};
    char parts[7][32];
    size_t np = 0;
    for (size_t i = 0; i < 7; i++) {
        if (n % 1024 != 0 || (i == 0 && n == 0))
            snprintf(parts[np++], sizeof parts[0], "%" PRIu64 "%s%s", n % 1024, unit[i],
                     i == 0 ? "B" : "iB");
        n /= 1024;
        if (n == 0)
            break;
    }
    size_t len = 0;
    out[0] = '\0';
    while (np-- > 0 && len < cap)
        len += (size_t)snprintf(out + len, cap - len, "%s", parts[np]);
}

/* ---- create-blocks-from's block table ----------------------------------------------------- */

#define TABLE_COLS 8

/* One Go tabwriter (minwidth 13, padding 2, spaces) per call, as promtool's printBlocks. */
void tsdb_block_info_print(FILE *out, const struct tsdb_block_info *b, bool header, bool human)
{
    static const char *const head[TABLE_COLS] = {"BLOCK ULID",  "MIN TIME",   "MAX TIME",
                                                  "DURATION",    "NUM SAMPLES", "NUM CHUNKS",
                                                  "NUM SERIES",  "SIZE"};
    char cell[TABLE_COLS][64];
    snprintf(cell[0], sizeof cell[0], "%s", b->ulid);
    if (human) {
        go_time(b->min_time_ms, cell[1], sizeof cell[1]);
        go_time(b->max_time_ms, cell[2], sizeof cell[2]);
        go_base2_bytes(b->size_bytes, cell[7], sizeof cell[7]);
    } else {
        snprintf(cell[1], sizeof cell[1], "%" PRId64, b->min_time_ms);
        snprintf(cell[2], sizeof cell[2], "%" PRId64, b->max_time_ms);
        snprintf(cell[7], sizeof cell[7], "%" PRIu64, b->size_bytes);
    }
    go_duration((int64_t)((uint64_t)b->max_time_ms - (uint64_t)b->min_time_ms), cell[3],
                sizeof cell[3]);
    snprintf(cell[4], sizeof cell[4], "%" PRIu64, b->num_samples);
    snprintf(cell[5], sizeof cell[5], "%" PRIu64, b->num_chunks);
    snprintf(cell[6], sizeof cell[6], "%" PRIu64, b->num_series);
    size_t width[TABLE_COLS - 1];
    for (size_t c = 0; c + 1 < TABLE_COLS; c++) {
        size_t w = strlen(cell[c]);
        if (header && strlen(head[c]) > w)
            w = strlen(head[c]);
        width[c] = w + 2 < 13 ? 13 : w + 2;
    }
    for (int line = header ? 0 : 1; line < 2; line++) {
        for (size_t c = 0; c + 1 < TABLE_COLS; c++) {
            const char *s = line == 0 ? head[c] : cell[c];
            fprintf(out, "%s%*s", s, (int)(width[c] - strlen(s)), "");
        }
        fprintf(out, "%s\n", line == 0 ? head[TABLE_COLS - 1] : cell[TABLE_COLS - 1]);
    }
}

/* ---- counting maps ------------------------------------------------------------------------ */

/* A key (label name, or name and value) with two counters. Slices point into the index mmap. */
struct entry {
    struct mp_str name, value;
    uint64_t a, b;
    uint64_t hash;
};

struct map {
    struct entry *e; /* open addressing, linear probing; name.ptr NULL = free */
    size_t n, cap;
};

static uint64_t hash_pair(struct mp_str n, struct mp_str v)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < n.len; i++)
        h = (h ^ (uint8_t)n.ptr[i]) * UINT64_C(0x100000001b3);
    h = (h ^ 0xff) * UINT64_C(0x100000001b3);
    for (size_t i = 0; i < v.len; i++)
        h = (h ^ (uint8_t)v.ptr[i]) * UINT64_C(0x100000001b3);
    return h ^ (h >> 29);
}

static int map_grow(struct map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 1024;
    struct entry *ne = mp_calloc(ncap, sizeof *ne);
    if (!ne)
        return MP_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->e[i].name.ptr)
            continue;
        size_t j = m->e[i].hash & (ncap - 1);
        while (ne[j].name.ptr)
            j = (j + 1) & (ncap - 1);
        ne[j] = m->e[i];
    }
    mp_free(m->e);
    m->e = ne;
    m->cap = ncap;
    return 0;
}

static struct entry *map_get(struct map *m, struct mp_str name, struct mp_str value)
{
    if ((m->n + 1) * 4 > m->cap * 3 && map_grow(m))
        return NULL;
    uint64_t h = hash_pair(name, value);
    size_t j = h & (m->cap - 1);
    while (m->e[j].name.ptr) {
        struct entry *e = &m->e[j];
        if (e->hash == h && mp_str_eq(e->name, name) && mp_str_eq(e->value, value))
            return e;
        j = (j + 1) & (m->cap - 1);
    }
    struct entry *e = &m->e[j];
    /* a non-NULL pointer marks the slot used, even for an empty string */
    *e = (struct entry){{name.ptr ? name.ptr : "", name.len}, value, 0, 0, h};
    m->n++;
    return e;
}

/* ---- printing top lists ------------------------------------------------------------------- */

struct info {
    struct mp_str name, value; /* printed as name, or name=value when value.ptr */
    uint64_t metric;
};

static int info_cmp(const void *pa, const void *pb)
{
    const struct info *a = pa, *b = pb;
    if (a->metric != b->metric)
        return a->metric > b->metric ? -1 : 1;
    int c = mp_str_cmp(a->name, b->name);
    if (c)
        return c;
    return mp_str_cmp(a->value, b->value);
}

static void print_infos(FILE *out, const char *title, struct info *in, size_t n, size_t limit)
{
    fprintf(out, "\n%s\n", title);
    qsort(in, n, sizeof *in, info_cmp);
    for (size_t i = 0; i < n && i < limit; i++) {
        fprintf(out, "%" PRIu64 " %.*s", in[i].metric, (int)in[i].name.len, in[i].name.ptr);
        if (in[i].value.ptr)
            fprintf(out, "=%.*s", (int)in[i].value.len, in[i].value.ptr);
        fputc('\n', out);
    }
}

/* ---- the analysis ------------------------------------------------------------------------- */

struct names {
    struct mp_str *v;
    size_t n, cap;
    uint64_t total_len;
};

/* Doubles the array *p of *cap elements of size elem when n reached it. 0 or MP_ENOMEM. */
static int grow(void **p, size_t n, size_t *cap, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 64;
    void *np = mp_realloc(*p, ncap * elem);
    if (!np)
        return MP_ENOMEM;
    *p = np;
    *cap = ncap;
    return 0;
}

static int collect_name(void *ctx, struct mp_str s)
{
    struct names *ns = ctx;
    if (grow((void **)&ns->v, ns->n, &ns->cap, sizeof *ns->v))
        return MP_ENOMEM;
    ns->v[ns->n++] = s;
    ns->total_len += s.len;
    return 0;
}

struct chunk_stats {
    uint64_t chunks, samples, bytes;
    uint64_t hist[10];
};

static void count_chunk(struct chunk_stats *st, const uint8_t *data, size_t len)
{
    uint64_t n = len >= 2 ? (uint64_t)data[0] << 8 | data[1] : 0;
    st->chunks++;
    st->samples += n;
    st->bytes += len;
    /* promtool: ceil(10 * min(n, 120) / 120) - 1 */
    double size = n < 120 ? (double)n : 120.0;
    int bucket = (int)ceil(10.0 * size / 120.0) - 1;
    if (bucket < 0)
        bucket = 0; /* an empty chunk: promtool would index -1 and panic */
    st->hist[bucket]++;
}

struct analysis {
    struct tsdb_block *b;
    FILE *out;
    size_t limit;
    struct map pairs, names;
    struct info *infos;
    size_t ninfos, capinfos;
    struct chunk_stats cs;
};

static int push_info(struct analysis *an, struct mp_str name, struct mp_str value, uint64_t metric)
{
    if (grow((void **)&an->infos, an->ninfos, &an->capinfos, sizeof *an->infos))
        return MP_ENOMEM;
    an->infos[an->ninfos++] = (struct info){name, value, metric};
    return 0;
}

/* The series pass: churn and pair counts, chunk statistics. */
static int scan_series(struct analysis *an, uint64_t *entries, struct mp_err *err)
{
    const struct tsdb_meta *m = &an->b->meta;
    struct tsdb_plist all = {0};
    struct mp_str empty = mp_str_c("");
    int rc = tsdb_index_reader_postings(an->b->index, empty, &empty, 1, &all, err);
    struct tsdb_index_series s = {0};
    for (size_t i = 0; i < all.n && !rc; i++) {
        rc = tsdb_index_reader_series(an->b->index, all.refs[i], &s, err);
        if (rc)
            break;
        uint64_t uncovered = (uint64_t)m->max_time - (uint64_t)m->min_time;
        if (s.nchunks)
            uncovered -= (uint64_t)s.chunks[s.nchunks - 1].maxt_ms - (uint64_t)s.chunks[0].mint_ms;
        for (size_t k = 0; k < s.nlabels && !rc; k++) {
            struct entry *pe = map_get(&an->pairs, s.labels[k].name, s.labels[k].value);
            struct entry *ne = map_get(&an->names, s.labels[k].name, empty);
            if (!pe || !ne) {
                rc = mp_err_set(err, MP_ENOMEM, "analyze");
                break;
            }
            pe->a += uncovered;
            pe->b++;
            ne->a += uncovered;
            (*entries)++;
        }
        for (size_t k = 0; k < s.nchunks && !rc; k++) {
            uint8_t enc;
            const uint8_t *data;
            size_t len;
            rc = tsdb_chunks_reader_get(an->b->chunks, s.chunks[k].ref, &enc, &data, &len, err);
            if (!rc)
                count_chunk(&an->cs, data, len);
        }
    }
    tsdb_index_series_fini(&s);
    tsdb_plist_fini(&all);
    return rc;
}

static void print_map(struct analysis *an, struct map *mp, bool churn, bool pairs,
                      const char *title)
{
    double range = (double)(an->b->meta.max_time - an->b->meta.min_time);
    an->ninfos = 0;
    for (size_t i = 0; i < mp->cap; i++) {
        struct entry *e = &mp->e[i];
        if (!e->name.ptr)
            continue;
        uint64_t metric = churn ? (uint64_t)((double)e->a / range) : e->b;
        if (push_info(an, e->name, pairs ? e->value : (struct mp_str){NULL, 0}, metric))
            return; /* out of memory: the list stays short */
    }
    print_infos(an->out, title, an->infos, an->ninfos, an->limit);
}

static int count_values(void *ctx, struct mp_str v)
{
    return collect_name(ctx, v);
}

static int report(struct analysis *an, bool extended, struct mp_err *err)
{
    const struct tsdb_meta *m = &an->b->meta;
    FILE *out = an->out;
    char ulid[TSDB_ULID_LEN + 1], dur[48];
    tsdb_ulid_format(&m->ulid, ulid);
    go_duration(m->max_time - m->min_time, dur, sizeof dur);
    fprintf(out, "Block ID: %s\nDuration: %s\nSeries: %" PRIu64 "\n", ulid, dur,
            m->stats.num_series);
    struct names ln = {0};
    int rc = tsdb_index_reader_label_names(an->b->index, collect_name, &ln, err);
    if (rc) {
        mp_free(ln.v);
        return rc;
    }
    fprintf(out, "Label names: %zu\n", ln.n);
    uint64_t entries = 0;
    rc = scan_series(an, &entries, err);
    if (!rc) {
        fprintf(out, "Postings (unique label pairs): %zu\n", an->pairs.n);
        fprintf(out, "Postings entries (total label pairs): %" PRIu64 "\n", entries);
        print_map(an, &an->pairs, true, true, "Label pairs most involved in churning:");
        print_map(an, &an->names, true, false, "Label names most involved in churning:");
        print_map(an, &an->pairs, false, true, "Most common label pairs:");
    }
    /* one pass over each name's values gives both the cumulative length and the count */
    struct info *card = rc ? NULL : mp_calloc(ln.n ? ln.n : 1, sizeof *card);
    if (!rc && !card)
        rc = mp_err_set(err, MP_ENOMEM, "analyze");
    an->ninfos = 0;
    for (size_t i = 0; i < ln.n && !rc; i++) {
        struct names vals = {0};
        rc = tsdb_index_reader_label_values(an->b->index, ln.v[i], count_values, &vals, err);
        mp_free(vals.v);
        if (!rc)
            rc = push_info(an, ln.v[i], (struct mp_str){NULL, 0}, vals.total_len);
        if (!rc)
            card[i] = (struct info){ln.v[i], {NULL, 0}, vals.n};
    }
    if (!rc) {
        print_infos(out, "Label names with highest cumulative label value length:", an->infos,
                    an->ninfos, an->limit);
        print_infos(out, "Highest cardinality labels:", card, ln.n, an->limit);
    }
    mp_free(card);
    mp_free(ln.v);
    if (rc)
        return rc;
    struct names metrics = {0};
    struct mp_str mn = mp_str_c(MP_LABEL_METRIC_NAME);
    rc = tsdb_index_reader_label_values(an->b->index, mn, collect_name, &metrics, err);
    an->ninfos = 0;
    struct tsdb_plist pl = {0};
    for (size_t i = 0; i < metrics.n && !rc; i++) {
        tsdb_plist_reset(&pl);
        rc = tsdb_index_reader_postings(an->b->index, mn, &metrics.v[i], 1, &pl, err);
        if (!rc)
            rc = push_info(an, metrics.v[i], (struct mp_str){NULL, 0}, pl.n);
    }
    tsdb_plist_fini(&pl);
    mp_free(metrics.v);
    if (rc)
        return rc;
    print_infos(out, "Highest cardinality metric names:", an->infos, an->ninfos, an->limit);

    const struct chunk_stats *cs = &an->cs;
    if (extended) {
        fprintf(out, "\nCompaction analysis:\n"
                     "Fullness: Amount of samples in chunks (100%% is 120 samples)\n");
        for (int k = 0; k < 10; k++) {
            uint64_t pct = cs->chunks ? 100 * cs->hist[k] / cs->chunks : 0;
            fprintf(out, "%7d%%: ", (k + 1) * 10);
            for (uint64_t j = 0; j < pct; j++)
                fputc('#', out);
            fputc('\n', out);
        }
    }
    fprintf(out, "\nChunk statistics:\n");
    fprintf(out, "Chunks: %" PRIu64 "\nSamples: %" PRIu64 "\nChunk data bytes: %" PRIu64 "\n",
            cs->chunks, cs->samples, cs->bytes);
    fprintf(out, "Bytes per sample: %.2f\nSamples per chunk: %.1f\n",
            cs->samples ? (double)cs->bytes / (double)cs->samples : 0.0,
            cs->chunks ? (double)cs->samples / (double)cs->chunks : 0.0);
    return 0;
}

/* Finds the block directory to analyze: block_id, or the latest min time (promtool sorts the
 * loaded blocks by min time and takes the last). */
static int pick_block(const char *dir, const char *block_id, char *path, size_t cap,
                      struct mp_err *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return mp_err_set(err, MP_ENOTFOUND, "opening the db dir: %s: %s", dir, strerror(errno));
    bool found = false;
    int64_t best = INT64_MIN;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct tsdb_ulid u;
        if (strlen(de->d_name) != TSDB_ULID_LEN ||
            tsdb_ulid_parse(mp_str_c(de->d_name), &u, NULL) != 0)
            continue;
        char p[4200];
        tsdb_pathf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct tsdb_meta m;
        tsdb_meta_init(&m);
        int rc = tsdb_meta_read(p, &m, NULL);
        char id[TSDB_ULID_LEN + 1];
        tsdb_ulid_format(&m.ulid, id);
        int64_t mint = m.min_time;
        tsdb_meta_fini(&m);
        if (rc)
            continue; /* not a block (promtool logs and skips corrupted ones) */
        bool take = block_id ? strcmp(id, block_id) == 0 : (!found || mint >= best);
        if (take) {
            found = true;
            best = mint;
            tsdb_pathf(path, cap, "%s", p);
            if (block_id)
                break;
        }
    }
    closedir(d);
    if (!found)
        return mp_err_set(err, MP_ENOTFOUND, "block %s not found", block_id ? block_id : "");
    return 0;
}

int tsdb_analyze(const char *dir, const char *block_id, size_t limit, bool extended, FILE *out,
                 struct mp_err *err)
{
    char path[4200];
    int rc = pick_block(dir, block_id, path, sizeof path, err);
    if (rc)
        return rc;
    struct analysis an = {.out = out, .limit = limit};
    rc = tsdb_block_open(path, &an.b, err);
    if (rc)
        return rc;
    rc = report(&an, extended, err);
    tsdb_block_release(an.b);
    mp_free(an.pairs.e);
    mp_free(an.names.e);
    mp_free(an.infos);
    return rc;
}
