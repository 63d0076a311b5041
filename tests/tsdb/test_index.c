/* SPDX-License-Identifier: Apache-2.0 */
/* tests/tsdb/test_index.c: the block index file (spec tsdb.md 4.4). The writer against the
 * spec's verified 208-byte dump and, byte for byte, against an index written by Prometheus 2.42
 * (testdata/index/, see its README); the reader against that file (every series, chunk meta
 * checked against the chunk file, every postings list against a brute-force oracle); seeded
 * random round trips; edges (empty index, many chunks, large symbol tables); writer refusals;
 * and every truncation and single-byte corruption of a written index refused or harmless. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "common/matcher.h"
#include "common/str.h"
#include "tsdb/bytes.h"
#include "tsdb/index.h"
#include "tsdb/postings.h"
#include "tsdb/tsdb.h"

#define S(lit) MP_STR_LIT(lit)

/* ---- helpers ------------------------------------------------------------------------------ */

static char tmpdir[64];

static void mk_tmp(void)
{
    strcpy(tmpdir, "/tmp/mp-index-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static char *tmp_path(const char *name)
{
    static char p[128];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    return p;
}

/* the tests write only tmp_path("index") */
static void rm_tmp(void)
{
    if (!tmpdir[0])
        return;
    unlink(tmp_path("index"));
    rmdir(tmpdir);
    tmpdir[0] = 0;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n ? (size_t)n : 1);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static size_t unhex(const char *h, uint8_t *out)
{
    size_t n = 0;
    int hi = -1;
    for (; *h; h++) {
        int v;
        if (*h >= '0' && *h <= '9')
            v = *h - '0';
        else if (*h >= 'a' && *h <= 'f')
            v = *h - 'a' + 10;
        else
            continue;
        if (hi < 0) {
            hi = v;
        } else {
            out[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    return n;
}

static void assert_same_bytes(const uint8_t *got, size_t gn, const uint8_t *want, size_t wn)
{
    size_t m = gn < wn ? gn : wn;
    for (size_t i = 0; i < m; i++)
        cr_assert_eq(got[i], want[i], "byte 0x%zx: %02x, want %02x", i, got[i], want[i]);
    cr_assert_eq(gn, wn, "length %zu, want %zu", gn, wn);
}

/* tsdb_plist_fini lives in postings.c (another branch); the reader grows lists with mp_realloc */
static void plist_free(struct tsdb_plist *p)
{
    mp_free(p->refs);
    memset(p, 0, sizeof *p);
}

/* A test series: labels (strings owned by the test) and chunk metas. */
struct tseries {
    struct mp_label l[8];
    size_t nl;
    struct tsdb_index_chunk_meta *c;
    size_t nc;
};

static int lcmp(const struct tseries *a, const struct tseries *b)
{
    for (size_t i = 0; i < a->nl && i < b->nl; i++) {
        int c = mp_str_cmp(a->l[i].name, b->l[i].name);
        if (!c)
            c = mp_str_cmp(a->l[i].value, b->l[i].value);
        if (c)
            return c;
    }
    return (a->nl > b->nl) - (a->nl < b->nl);
}

static int lcmp_q(const void *a, const void *b)
{
    return lcmp(a, b);
}

static int str_q(const void *a, const void *b)
{
    return mp_str_cmp(*(const struct mp_str *)a, *(const struct mp_str *)b);
}

/* Sorted unique symbols of the series, "" included as Prometheus's head adds it. */
static struct mp_str *symbols_of(const struct tseries *s, size_t n, size_t *nsyms)
{
    size_t cap = 1, k = 0;
    for (size_t i = 0; i < n; i++)
        cap += 2 * s[i].nl;
    struct mp_str *v = malloc(cap * sizeof *v);
    v[k++] = S("");
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < s[i].nl; j++) {
            v[k++] = s[i].l[j].name;
            v[k++] = s[i].l[j].value;
        }
    qsort(v, k, sizeof *v, str_q);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || !mp_str_eq(v[u - 1], v[i]))
            v[u++] = v[i];
    *nsyms = u;
    return v;
}

/* zstd level of the compact format for write_index; 0 writes Prometheus's v2 */
static int wlevel;

static void write_index(const char *path, const struct mp_str *syms, size_t nsyms,
                        const struct tseries *s, size_t n, uint64_t *refs)
{
    struct tsdb_index_writer *w = NULL;
    struct mp_err err = {0};
    cr_assert_eq(wlevel ? tsdb_index_writer_open_compact(path, wlevel, &w, &err)
                        : tsdb_index_writer_open(path, &w, &err),
                 0, "%s", err.msg);
    cr_assert_eq(tsdb_index_writer_add_symbols(w, syms, nsyms, &err), 0, "%s", err.msg);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(tsdb_index_writer_add_series(w, s[i].l, s[i].nl, s[i].c, s[i].nc,
                                                  refs ? &refs[i] : NULL, &err),
                     0, "series %zu: %s", i, err.msg);
    cr_assert_eq(tsdb_index_writer_close(w, &err), 0, "%s", err.msg);
}

static int collect_str(void *ctx, struct mp_str s)
{
    struct mp_buf *b = ctx;
    return mp_buf_appendf(b, "%.*s\n", (int)s.len, s.ptr);
}

static int append_list(struct mp_buf *b, const struct tsdb_plist *p)
{
    int rc = 0;
    for (size_t i = 0; i < p->n && !rc; i++)
        rc = mp_buf_appendf(b, "%llu ", (unsigned long long)p->refs[i]);
    return rc ? rc : mp_buf_append(b, "\n", 1);
}

struct dump_ctx {
    const struct tsdb_index_reader *r;
    struct mp_buf *out;
    struct mp_str name;
    struct mp_err *err;
};

static int dump_value(void *ctx, struct mp_str v)
{
    struct dump_ctx *d = ctx;
    struct tsdb_plist p = {0};
    int rc = mp_buf_appendf(d->out, "  %.*s: ", (int)v.len, v.ptr);
    if (!rc)
        rc = tsdb_index_reader_postings(d->r, d->name, &v, 1, &p, d->err);
    if (!rc)
        rc = append_list(d->out, &p);
    plist_free(&p);
    return rc;
}

static int dump_name(void *ctx, struct mp_str name)
{
    struct dump_ctx *d = ctx;
    struct dump_ctx dv = *d;
    dv.name = name;
    int rc = mp_buf_appendf(d->out, "name %.*s\n", (int)name.len, name.ptr);
    return rc ? rc : tsdb_index_reader_label_values(d->r, name, dump_value, &dv, d->err);
}

/* Everything the reader can tell, as text: symbols, names, values, postings, series. First
 * error returned. */
static int dump(const struct tsdb_index_reader *r, struct mp_buf *out, struct mp_err *err)
{
    int rc = 0;
    for (uint32_t i = 0; i < tsdb_index_reader_symbol_count(r) && !rc; i++) {
        struct mp_str s;
        rc = tsdb_index_reader_symbol(r, i, &s, err);
        if (!rc)
            rc = mp_buf_appendf(out, "sym %.*s\n", (int)s.len, s.ptr);
    }
    struct dump_ctx d = {r, out, S(""), err};
    if (!rc)
        rc = tsdb_index_reader_label_names(r, dump_name, &d, err);
    struct tsdb_plist all = {0};
    struct mp_str empty = S("");
    if (!rc)
        rc = tsdb_index_reader_postings(r, empty, &empty, 1, &all, err);
    struct tsdb_index_series s = {0};
    for (size_t i = 0; i < all.n && !rc; i++) {
        rc = tsdb_index_reader_series(r, all.refs[i], &s, err);
        if (!rc)
            rc = mp_buf_appendf(out, "series %llu:", (unsigned long long)all.refs[i]);
        for (size_t j = 0; j < s.nlabels && !rc; j++)
            rc = mp_buf_appendf(out, " %.*s=%.*s", (int)s.labels[j].name.len, s.labels[j].name.ptr,
                                (int)s.labels[j].value.len, s.labels[j].value.ptr);
        for (size_t j = 0; j < s.nchunks && !rc; j++)
            rc =
                mp_buf_appendf(out, " [%lld,%lld]@%llu", (long long)s.chunks[j].mint_ms,
                               (long long)s.chunks[j].maxt_ms, (unsigned long long)s.chunks[j].ref);
        if (!rc)
            rc = mp_buf_append(out, "\n", 1);
    }
    tsdb_index_series_fini(&s);
    plist_free(&all);
    return rc;
}

/* Reads everything back and compares with what was written, postings against brute force. */
static void verify(const struct tsdb_index_reader *r, const struct tseries *s, size_t n,
                   const uint64_t *refs, const struct mp_str *syms, size_t nsyms)
{
    struct mp_err err = {0};
    cr_assert_eq(tsdb_index_reader_symbol_count(r), nsyms);
    for (size_t i = 0; i < nsyms; i++) {
        struct mp_str got;
        uint32_t ord = 0;
        cr_assert_eq(tsdb_index_reader_symbol(r, (uint32_t)i, &got, &err), 0);
        cr_assert(mp_str_eq(got, syms[i]), "symbol %zu", i);
        cr_assert_eq(tsdb_index_reader_symbol_find(r, syms[i], &ord), 0);
        cr_assert_eq(ord, i);
    }
    struct tsdb_index_series rs = {0};
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(tsdb_index_reader_series(r, refs[i], &rs, &err), 0, "%s", err.msg);
        cr_assert_eq(rs.nlabels, s[i].nl);
        for (size_t j = 0; j < rs.nlabels; j++)
            cr_assert(mp_str_eq(rs.labels[j].name, s[i].l[j].name) &&
                      mp_str_eq(rs.labels[j].value, s[i].l[j].value));
        cr_assert_eq(rs.nchunks, s[i].nc, "series %zu chunks", i);
        for (size_t j = 0; j < rs.nchunks; j++)
            cr_assert(rs.chunks[j].mint_ms == s[i].c[j].mint_ms &&
                          rs.chunks[j].maxt_ms == s[i].c[j].maxt_ms &&
                          rs.chunks[j].ref == s[i].c[j].ref,
                      "series %zu chunk %zu", i, j);
    }
    tsdb_index_series_fini(&rs);
    /* every pair's postings, the all-postings list, and label values, against brute force */
    struct tsdb_plist p = {0};
    struct mp_str empty = S("");
    cr_assert_eq(tsdb_index_reader_postings(r, empty, &empty, 1, &p, &err), 0);
    cr_assert_eq(p.n, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(p.refs[i], refs[i]);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < s[i].nl; j++) {
            p.n = 0;
            cr_assert_eq(
                tsdb_index_reader_postings(r, s[i].l[j].name, &s[i].l[j].value, 1, &p, &err), 0,
                "%s", err.msg);
            size_t k = 0;
            for (size_t x = 0; x < n; x++)
                for (size_t y = 0; y < s[x].nl; y++)
                    if (mp_str_eq(s[x].l[y].name, s[i].l[j].name) &&
                        mp_str_eq(s[x].l[y].value, s[i].l[j].value)) {
                        cr_assert_lt(k, p.n);
                        cr_assert_eq(p.refs[k], refs[x]);
                        k++;
                    }
            cr_assert_eq(k, p.n);
        }
    plist_free(&p);
}

static struct tseries *read_all(const struct tsdb_index_reader *r, size_t *n, uint64_t **refs)
{
    struct mp_err err = {0};
    struct tsdb_plist all = {0};
    struct mp_str empty = S("");
    cr_assert_eq(tsdb_index_reader_postings(r, empty, &empty, 1, &all, &err), 0, "%s", err.msg);
    struct tseries *s = calloc(all.n + 1, sizeof *s);
    *refs = calloc(all.n + 1, sizeof **refs);
    struct tsdb_index_series rs = {0};
    for (size_t i = 0; i < all.n; i++) {
        (*refs)[i] = all.refs[i];
        cr_assert_eq(tsdb_index_reader_series(r, all.refs[i], &rs, &err), 0, "%s", err.msg);
        cr_assert_leq(rs.nlabels, 8);
        memcpy(s[i].l, rs.labels, rs.nlabels * sizeof *rs.labels);
        s[i].nl = rs.nlabels;
        s[i].c = malloc((rs.nchunks + 1) * sizeof *s[i].c);
        if (rs.nchunks)
            memcpy(s[i].c, rs.chunks, rs.nchunks * sizeof *rs.chunks);
        s[i].nc = rs.nchunks;
    }
    *n = all.n;
    tsdb_index_series_fini(&rs);
    plist_free(&all);
    return s;
}

static struct mp_str *reader_symbols(const struct tsdb_index_reader *r)
{
    uint32_t n = tsdb_index_reader_symbol_count(r);
    struct mp_str *syms = malloc((n + 1) * sizeof *syms);
    for (uint32_t i = 0; i < n; i++)
        cr_assert_eq(tsdb_index_reader_symbol(r, i, &syms[i], NULL), 0);
    return syms;
}

static void free_series(struct tseries *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(s[i].c);
    free(s);
}

/* ---- spec vector -------------------------------------------------------------------------- */

/* spec tsdb.md 4.4, verified against Prometheus: one series {__name__="m"}, one chunk. */
static const char spec_dump[] =
    "baaad700 02"
    "00000010 00000003 00 08 5f5f6e616d655f5f 01 6d f97a8e2f 000000"
    "0e 01 01 02 01 80a0abfef962 a09c01 08 a1cd19f8 00"
    "0000000c 00000001 00000001 00000002 06747c4e"
    "00000008 00000001 00000002 5502add1"
    "00000008 00000001 00000002 5502add1"
    "0000000f 00000001 01 08 5f5f6e616d655f5f 34 96671bb8"
    "00000015 00000002 02 00 00 48 02 08 5f5f6e616d655f5f 01 6d 58 397a3dde"
    "0000000000000005 000000000000001d 0000000000000033 0000000000000068"
    "0000000000000048 000000000000007f be851a03";

Test(index, writer_reproduces_spec_dump, .init = mk_tmp, .fini = rm_tmp)
{
    uint8_t want[256];
    size_t wn = unhex(spec_dump, want);
    cr_assert_eq(wn, 208);
    struct mp_str syms[] = {S(""), S("__name__"), S("m")};
    struct tsdb_index_chunk_meta c = {1700000000000, 1700000020000, 8};
    struct tseries s = {{{S("__name__"), S("m")}}, 1, &c, 1};
    uint64_t ref = 0;
    write_index(tmp_path("index"), syms, 3, &s, 1, &ref);
    cr_assert_eq(ref, 2);
    size_t gn;
    uint8_t *got = slurp(tmp_path("index"), &gn);
    assert_same_bytes(got, gn, want, wn);
    free(got);

    struct tsdb_index_reader *r = NULL;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_index_reader_open_mem(want, wn, &r, &err), 0, "%s", err.msg);
    verify(r, &s, 1, &ref, syms, 3);
    tsdb_index_reader_close(r);
}

/* ---- Prometheus 2.42 fixture -------------------------------------------------------------- */

#define FIX MP_TESTDATA_DIR "/index/promtool-2.42-"

/* The series of promtool-2.42-index-input.om in label-set order, with their sample counts,
 * first and last timestamps. */
static const struct {
    const char *labels[6];
    size_t samples;
    int64_t first, last;
} fixture_series[] = {
    {{"__name__", "http_requests_total", "code", "200", "method", "GET"},
     130,
     1700000000000,
     1700001935000},
    {{"__name__", "http_requests_total", "code", "200", "method", "POST"},
     130,
     1700000000000,
     1700001935000},
    {{"__name__", "http_requests_total", "code", "500", "method", "GET"},
     5,
     1700000000000,
     1700000060000},
    {{"__name__", "temp_celsius", "zone", "x"}, 300, 1700000000000, 1700004485000},
    {{"__name__", "temp_celsius", "zone",
      "\xc3\xbc"
      "ber"},
     12,
     1700000000000,
     1700000165000},
    {{"__name__", "up", "instance", "a:9100", "job", "node"}, 40, 1700000000000, 1700000585000},
    {{"__name__", "up", "instance", "a:9100", "job", "prom"}, 3, 1700000000000, 1700000030000},
    {{"__name__", "up", "instance", "b:9100", "job", "node"}, 40, 1700000000000, 1700000585000},
};

Test(index, reads_promtool_index)
{
    struct tsdb_index_reader *r = NULL;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_index_reader_open(FIX "index", &r, &err), 0, "%s", err.msg);
    size_t clen;
    uint8_t *chunks = slurp(FIX "chunks-000001", &clen);
    size_t n;
    uint64_t *refs;
    struct tseries *s = read_all(r, &n, &refs);
    size_t nf = sizeof fixture_series / sizeof fixture_series[0];
    cr_assert_eq(n, nf);
    size_t max_chunks = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < s[i].nl; j++) {
            cr_assert(mp_str_eq(s[i].l[j].name, mp_str_c(fixture_series[i].labels[2 * j])));
            cr_assert(mp_str_eq(s[i].l[j].value, mp_str_c(fixture_series[i].labels[2 * j + 1])));
        }
        cr_assert_null(s[i].nl < 3 ? fixture_series[i].labels[2 * s[i].nl] : NULL);
        /* each chunk meta points at a chunk of chunks/000001 whose samples span [mint, maxt] */
        size_t samples = 0;
        for (size_t j = 0; j < s[i].nc; j++) {
            const struct tsdb_index_chunk_meta *m = &s[i].c[j];
            cr_assert_eq(m->ref >> 32, 0);
            size_t off = (size_t)(m->ref & 0xffffffffu);
            cr_assert_lt(off + 2, clen);
            size_t len = 0, k = 0;
            for (unsigned shift = 0;; shift += 7) {
                uint8_t b = chunks[off + k++];
                len |= (size_t)(b & 0x7f) << shift;
                if (b < 0x80)
                    break;
            }
            cr_assert_eq(chunks[off + k], 1, "XOR encoding byte");
            cr_assert_leq(off + k + 1 + len, clen);
            struct tsdb_xor_iter it;
            tsdb_xor_iter_init(&it, chunks + off + k + 1, len);
            int64_t t, first = 0, last = 0;
            double v;
            size_t cnt = 0;
            while (tsdb_xor_iter_next(&it, &t, &v) == 0) {
                if (cnt++ == 0)
                    first = t;
                last = t;
            }
            cr_assert(cnt > 0 && first == m->mint_ms && last == m->maxt_ms, "series %zu chunk %zu",
                      i, j);
            samples += cnt;
        }
        cr_assert_eq(samples, fixture_series[i].samples, "series %zu", i);
        cr_assert_eq(s[i].c[0].mint_ms, fixture_series[i].first);
        cr_assert_eq(s[i].c[s[i].nc - 1].maxt_ms, fixture_series[i].last);
        if (s[i].nc > max_chunks)
            max_chunks = s[i].nc;
    }
    cr_assert_eq(max_chunks, 3);

    size_t nsyms;
    struct mp_str *syms = symbols_of(s, n, &nsyms);
    verify(r, s, n, refs, syms, nsyms);

    /* label names and values, and a multi-value union */
    struct mp_buf b;
    mp_buf_init(&b, 0);
    cr_assert_eq(tsdb_index_reader_label_names(r, collect_str, &b, &err), 0);
    cr_assert_str_eq(b.data, "__name__\ncode\ninstance\njob\nmethod\nzone\n");
    mp_buf_reset(&b);
    cr_assert_eq(tsdb_index_reader_label_values(r, S("__name__"), collect_str, &b, &err), 0);
    cr_assert_str_eq(b.data, "http_requests_total\ntemp_celsius\nup\n");
    mp_buf_reset(&b);
    cr_assert_eq(tsdb_index_reader_label_values(r, S("nope"), collect_str, &b, &err), 0);
    cr_assert_eq(b.len, 0);
    struct tsdb_ireader ir = tsdb_index_reader_ireader(r);
    struct mp_str vals[] = {S("up"), S("missing"), S("temp_celsius"), S("up")};
    struct tsdb_plist p = {0};
    cr_assert_eq(ir.ops->postings(ir.ctx, S("__name__"), vals, 4, &p, &err), 0);
    cr_assert_eq(p.n, 5);
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq(p.refs[i], refs[3 + i]);
    mp_buf_fini(&b);
    plist_free(&p);
    free(syms);
    free(refs);
    free_series(s, n);
    free(chunks);
    tsdb_index_reader_close(r);
}

Test(index, writer_reproduces_promtool_index_byte_for_byte, .init = mk_tmp, .fini = rm_tmp)
{
    struct tsdb_index_reader *r = NULL;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_index_reader_open(FIX "index", &r, &err), 0, "%s", err.msg);
    size_t n, nsyms = tsdb_index_reader_symbol_count(r);
    uint64_t *refs;
    struct tseries *s = read_all(r, &n, &refs);
    struct mp_str *syms = reader_symbols(r);
    uint64_t *wrefs = calloc(n, sizeof *wrefs);
    write_index(tmp_path("index"), syms, nsyms, s, n, wrefs);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(wrefs[i], refs[i]);
    size_t gn, wn;
    uint8_t *got = slurp(tmp_path("index"), &gn), *want = slurp(FIX "index", &wn);
    assert_same_bytes(got, gn, want, wn);
    free(got);

    /* again from interned label sets (tsdb_index_series_labels + add_series_ls) */
    struct tsdb_index_writer *w = NULL;
    cr_assert_eq(tsdb_index_writer_open(tmp_path("index"), &w, &err), 0);
    cr_assert_eq(tsdb_index_writer_add_symbols(w, syms, nsyms, &err), 0);
    struct tsdb_index_series rs = {0};
    for (size_t i = 0; i < n; i++) {
        struct mp_labels *ls = NULL;
        uint64_t ref = 0;
        cr_assert_eq(tsdb_index_reader_series(r, refs[i], &rs, &err), 0);
        cr_assert_eq(tsdb_index_series_labels(&rs, &ls, &err), 0);
        cr_assert_eq(mp_labels_count(ls), s[i].nl);
        cr_assert_eq(tsdb_index_writer_add_series_ls(w, ls, rs.chunks, rs.nchunks, &ref, &err), 0,
                     "%s", err.msg);
        cr_assert_eq(ref, refs[i]);
        mp_labels_release(ls);
    }
    tsdb_index_series_fini(&rs);
    cr_assert_eq(tsdb_index_writer_close(w, &err), 0, "%s", err.msg);
    got = slurp(tmp_path("index"), &gn);
    assert_same_bytes(got, gn, want, wn);
    free(got);
    free(want);
    free(wrefs);
    free(syms);
    free(refs);
    free_series(s, n);
    tsdb_index_reader_close(r);
}

/* ---- round trips -------------------------------------------------------------------------- */

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Random strings live in one arena so that slices stay valid. */
static char arena[1 << 20];
static size_t arena_len;

static struct mp_str rnd_str(size_t maxlen, const char *alpha)
{
    size_t n = (size_t)(rnd() % (maxlen + 1)), k = strlen(alpha);
    cr_assert_lt(arena_len + n, sizeof arena);
    char *p = arena + arena_len;
    for (size_t i = 0; i < n; i++)
        p[i] = alpha[rnd() % k];
    arena_len += n;
    return (struct mp_str){p, n};
}

/* n random series, sorted and unique, with up to maxc chunks each and increasing refs. */
static struct tseries *rnd_series(size_t n, size_t maxc, size_t *out_n)
{
    static const char *names[] = {"__name__", "a", "b", "job", "le", "x\xff", "zone"};
    struct tseries *s = calloc(n, sizeof *s);
    for (size_t i = 0; i < n; i++) {
        size_t nl = 1 + (size_t)(rnd() % 5), k = 0;
        for (size_t j = 0; j < 7 && k < nl; j++)
            if (j == 0 || rnd() % 2)
                s[i].l[k++] = (struct mp_label){mp_str_c(names[j]),
                                                rnd_str(j == 5 ? 40 : 3, "ab\x01\xc3\xbc-")};
        s[i].nl = k;
    }
    qsort(s, n, sizeof *s, lcmp_q);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || lcmp(&s[u - 1], &s[i]) != 0)
            s[u++] = s[i];
    uint64_t ref = 8;
    for (size_t i = 0; i < u; i++) {
        s[i].nc = (size_t)(rnd() % (maxc + 1));
        s[i].c = malloc((s[i].nc + 1) * sizeof *s[i].c);
        int64_t t = (int64_t)(rnd() % 2000000000000ull) - 1000000000000;
        for (size_t j = 0; j < s[i].nc; j++) {
            s[i].c[j].mint_ms = t + 1 + (int64_t)(rnd() % 100000);
            s[i].c[j].maxt_ms = s[i].c[j].mint_ms + (int64_t)(rnd() % 7200000);
            t = s[i].c[j].maxt_ms;
            ref += rnd() % 3 == 0 ? (rnd() % 5000) << 32 : rnd() % 3000;
            s[i].c[j].ref = ref;
        }
    }
    *out_n = u;
    return s;
}

static struct mp_str series_get(const struct tseries *s, struct mp_str name)
{
    for (size_t y = 0; y < s->nl; y++)
        if (mp_str_eq(s->l[y].name, name))
            return s->l[y].value;
    return S("");
}

/* Selectors of two or three l="v" matchers (the pairs mostly taken from one series, so that
 * answers are not all empty) resolved through the index, against brute force; on a v2 index
 * also its count and filter of one pair against the list itself. */
static void check_equal_selectors(struct tsdb_index_reader *r, const struct tseries *s, size_t u,
                                  const uint64_t *refs)
{
    struct tsdb_ireader ir = tsdb_index_reader_ireader(r);
    cr_assert_eq(ir.ops->postings_count == NULL, wlevel != 0);
    struct tsdb_plist got = {0}, list = {0};
    struct mp_err err = {0};
    for (int round = 0; round < 60; round++) {
        const struct tseries *a = &s[rnd() % u];
        struct mp_matcher *m[3];
        size_t nm = 2 + (size_t)(rnd() % 2);
        for (size_t j = 0; j < nm; j++) {
            const struct tseries *from = rnd() % 4 ? a : &s[rnd() % u];
            const struct mp_label *l = &from->l[rnd() % from->nl];
            struct mp_str v = rnd() % 8 ? l->value : S("zz");
            cr_assert_eq(mp_matcher_create(MP_MATCH_EQUAL, l->name, v, &m[j], NULL), 0);
        }
        cr_assert_eq(
            tsdb_postings_for_matchers(&ir, (const struct mp_matcher *const *)m, nm, &got, &err), 0,
            "%s", err.msg);
        size_t k = 0;
        for (size_t x = 0; x < u; x++) {
            bool hit = true;
            for (size_t j = 0; j < nm; j++)
                hit = hit && mp_matcher_matches(m[j], series_get(&s[x], mp_matcher_name(m[j])));
            if (hit) {
                cr_assert_lt(k, got.n, "round %d", round);
                cr_assert_eq(got.refs[k++], refs[x], "round %d", round);
            }
        }
        cr_assert_eq(k, got.n, "round %d", round);
        if (ir.ops->postings_count) {
            struct mp_str name = mp_matcher_name(m[0]), value = mp_matcher_value(m[0]);
            size_t cnt = 99;
            cr_assert_eq(ir.ops->postings_count(ir.ctx, name, value, &cnt, &err), 0);
            list.n = 0;
            cr_assert_eq(ir.ops->postings(ir.ctx, name, &value, 1, &list, &err), 0);
            cr_assert_eq(cnt, list.n);
            got.n = 0; /* a random subset of all series, filtered by the list */
            for (size_t x = 0; x < u; x++)
                if (rnd() % 3)
                    cr_assert_eq(tsdb_plist_push(&got, refs[x]), 0);
            size_t before = got.n;
            bool *kept = calloc(u + 1, sizeof *kept);
            for (size_t i = 0, x = 0; i < before; i++) {
                while (refs[x] != got.refs[i])
                    x++;
                for (size_t y = 0; y < list.n; y++)
                    kept[x] |= list.refs[y] == refs[x];
            }
            cr_assert_eq(ir.ops->postings_filter(ir.ctx, name, value, &got, &err), 0);
            size_t w = 0;
            for (size_t x = 0; x < u; x++)
                if (kept[x]) {
                    cr_assert_lt(w, got.n);
                    cr_assert_eq(got.refs[w++], refs[x]);
                }
            cr_assert_eq(w, got.n);
            free(kept);
        }
        for (size_t j = 0; j < nm; j++)
            mp_matcher_destroy(m[j]);
    }
    plist_free(&got);
    plist_free(&list);
}

static void round_trip(size_t n, size_t maxc)
{
    size_t u, nsyms;
    struct tseries *s = rnd_series(n, maxc, &u);
    struct mp_str *syms = symbols_of(s, u, &nsyms);
    uint64_t *refs = calloc(u + 1, sizeof *refs);
    write_index(tmp_path("index"), syms, nsyms, s, u, refs);
    struct tsdb_index_reader *r = NULL;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_index_reader_open(tmp_path("index"), &r, &err), 0, "%s", err.msg);
    verify(r, s, u, refs, syms, nsyms);

    /* unions of random value subsets of every name, against brute force */
    struct tsdb_plist p = {0};
    static const char *names[] = {"__name__", "a", "b", "job", "zone", "le", "x\xff", "none"};
    for (int round = 0; round < 40; round++) {
        struct mp_str name = mp_str_c(names[rnd() % 8]), vals[6];
        size_t nv = (size_t)(rnd() % 6);
        for (size_t i = 0; i < nv; i++)
            vals[i] = rnd() % 4 ? s[rnd() % u].l[rnd() % 2].value : S("zz");
        p.n = 0;
        cr_assert_eq(tsdb_index_reader_postings(r, name, vals, nv, &p, &err), 0);
        size_t k = 0;
        for (size_t x = 0; x < u; x++) {
            bool hit = false;
            for (size_t y = 0; y < s[x].nl; y++)
                for (size_t v = 0; v < nv; v++)
                    hit |= mp_str_eq(s[x].l[y].name, name) && mp_str_eq(s[x].l[y].value, vals[v]);
            if (hit) {
                cr_assert_lt(k, p.n);
                cr_assert_eq(p.refs[k++], refs[x]);
            }
        }
        cr_assert_eq(k, p.n, "round %d", round);
    }
    plist_free(&p);
    check_equal_selectors(r, s, u, refs);
    tsdb_index_reader_close(r);
    free(refs);
    free(syms);
    free_series(s, u);
}

Test(index, random_round_trips, .init = mk_tmp, .fini = rm_tmp)
{
    rng = 42;
    arena_len = 0;
    for (int i = 0; i < 5; i++)
        round_trip(1 + (size_t)(rnd() % 400), 4);
}

/* A long postings list's CRC is checked at its first read (later reads of the same reader
 * skip it: the file is immutable), so a damaged long list still fails. */
Test(index, long_postings_list_crc_checked_on_first_read, .init = mk_tmp, .fini = rm_tmp)
{
    enum { N = 2000 };
    static char ids[N][8];
    struct tseries *s = calloc(N, sizeof *s);
    for (size_t i = 0; i < N; i++) {
        snprintf(ids[i], sizeof ids[i], "%04zu", i);
        s[i].l[0] = (struct mp_label){S("__name__"), S("m")};
        s[i].l[1] = (struct mp_label){S("id"), mp_str_c(ids[i])};
        s[i].nl = 2;
        s[i].c = calloc(1, sizeof *s[i].c);
    }
    size_t nsyms, len;
    struct mp_str *syms = symbols_of(s, N, &nsyms);
    write_index(tmp_path("index"), syms, nsyms, s, N, NULL);
    uint8_t *b = slurp(tmp_path("index"), &len);
    /* the list of __name__="m": BE32 length 4 + 4N, BE32 count N; the second such, after the
     * all-postings list */
    const uint8_t want[8] = {0, 0, (4 + 4 * N) >> 8, (4 + 4 * N) & 0xff, 0, 0, N >> 8, N & 0xff};
    size_t at = 0, found = 0;
    for (; at + 8 <= len; at++)
        if (memcmp(b + at, want, 8) == 0 && ++found == 2)
            break;
    cr_assert_eq(found, 2, "the long list is in the file");
    struct mp_err err = {0};
    struct tsdb_plist p = {0};
    struct mp_str m = S("m");
    for (int damaged = 1; damaged >= 0; damaged--) {
        b[at + 8 + 2 * N] ^= damaged ? 0x10 : 0;
        struct tsdb_index_reader *r = NULL;
        cr_assert_eq(tsdb_index_reader_open_mem(b, len, &r, &err), 0, "%s", err.msg);
        for (int read = 0; read < 2; read++) {
            p.n = 0;
            int rc = tsdb_index_reader_postings(r, S("__name__"), &m, 1, &p, &err);
            if (damaged) {
                cr_assert_eq(rc, MP_EPARSE);
                cr_assert(strstr(err.msg, "CRC mismatch"), "%s", err.msg);
            } else {
                cr_assert_eq(rc, 0, "%s", err.msg);
                cr_assert_eq(p.n, N);
            }
        }
        tsdb_index_reader_close(r);
        b[at + 8 + 2 * N] ^= damaged ? 0x10 : 0;
    }
    plist_free(&p);
    free(b);
    free(syms);
    free_series(s, N);
}

Test(index, empty_index, .init = mk_tmp, .fini = rm_tmp)
{
    write_index(tmp_path("index"), NULL, 0, NULL, 0, NULL);
    size_t len;
    uint8_t *b = slurp(tmp_path("index"), &len);
    /* header 5, symbols 12, pad 3, all-postings 12, label table 12, postings table 16, TOC 52 */
    cr_assert_eq(len, 112);
    struct tsdb_index_reader *r = NULL;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_index_reader_open_mem(b, len, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(tsdb_index_reader_symbol_count(r), 0);
    struct mp_buf out;
    mp_buf_init(&out, 0);
    cr_assert_eq(dump(r, &out, &err), 0);
    cr_assert_eq(out.len, 0);
    struct tsdb_index_series s = {0};
    cr_assert_eq(tsdb_index_reader_series(r, 1, &s, &err), MP_EPARSE);
    mp_buf_fini(&out);
    tsdb_index_reader_close(r);
    free(b);
}

Test(index, series_with_many_chunks, .init = mk_tmp, .fini = rm_tmp)
{
    size_t nc = 20000;
    struct tseries s = {{{S("__name__"), S("m")}, {S("i"), S("1")}}, 2, NULL, nc};
    s.c = malloc(nc * sizeof *s.c);
    for (size_t i = 0; i < nc; i++) /* extremes of the delta encodings included */
        s.c[i] = (struct tsdb_index_chunk_meta){
            INT64_MIN / 2 + (int64_t)i * 1000000000,
            INT64_MIN / 2 + (int64_t)i * 1000000000 + (i % 2 ? 999999999 : 0), (uint64_t)i << 31};
    struct mp_str syms[] = {S(""), S("1"), S("__name__"), S("i"), S("m")};
    uint64_t ref;
    write_index(tmp_path("index"), syms, 5, &s, 1, &ref);
    struct tsdb_index_reader *r = NULL;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_index_reader_open(tmp_path("index"), &r, &err), 0, "%s", err.msg);
    verify(r, &s, 1, &ref, syms, 5);
    tsdb_index_reader_close(r);
    free(s.c);
}

/* nsyms symbols "s000000".. (text owns them) and n series each with a distinct value and one
 * of 7 shared ones. */
static struct tseries *many_symbols(size_t nsyms, size_t n, struct mp_str **syms_out,
                                    char **text_out)
{
    struct mp_str *syms = malloc(nsyms * sizeof *syms);
    char *text = malloc(nsyms * 8);
    for (size_t i = 0; i < nsyms; i++) { /* "s" and 6 digits (nsyms <= 10^6) */
        char *p = text + 8 * i;
        p[0] = 's';
        for (size_t d = 6, v = i; d >= 1; d--, v /= 10)
            p[d] = (char)('0' + v % 10);
        syms[i] = (struct mp_str){p, 7};
    }
    struct tseries *s = calloc(n, sizeof *s);
    for (size_t i = 0; i < n; i++) {
        s[i].l[0] = (struct mp_label){syms[0], syms[1 + 50 * i]};
        s[i].l[1] = (struct mp_label){syms[nsyms - 1], syms[i % 7]};
        s[i].nl = 2;
    }
    *syms_out = syms;
    *text_out = text;
    return s;
}

Test(index, large_symbol_table, .init = mk_tmp, .fini = rm_tmp)
{
    /* 150000 symbols; 3000 series each with a distinct value and a shared one */
    size_t nsyms = 150000, n = 3000;
    char *text;
    struct mp_str *syms;
    struct tseries *s = many_symbols(nsyms, n, &syms, &text);
    uint64_t *refs = calloc(n, sizeof *refs);
    write_index(tmp_path("index"), syms, nsyms, s, n, refs);
    struct tsdb_index_reader *r = NULL;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_index_reader_open(tmp_path("index"), &r, &err), 0, "%s", err.msg);
    verify(r, s, n, refs, syms, nsyms);
    uint32_t ord;
    cr_assert_eq(tsdb_index_reader_symbol_find(r, S("s0000005"), &ord), MP_ENOTFOUND);
    cr_assert_eq(tsdb_index_reader_symbol_find(r, S("a"), &ord), MP_ENOTFOUND);
    cr_assert_eq(tsdb_index_reader_symbol_find(r, S("t"), &ord), MP_ENOTFOUND);
    tsdb_index_reader_close(r);
    free(refs);
    free(s);
    free(text);
    free(syms);
}

/* ---- refusals ----------------------------------------------------------------------------- */

Test(index, writer_refuses_broken_input, .init = mk_tmp, .fini = rm_tmp)
{
    struct tsdb_index_writer *w = NULL;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_index_writer_open(tmp_path("index"), &w, NULL), 0);
    cr_assert_eq(tsdb_index_writer_add_symbol(w, S("b"), NULL), 0);
    cr_assert_eq(tsdb_index_writer_add_symbol(w, S("b"), NULL), MP_EINVAL);
    cr_assert_eq(tsdb_index_writer_add_symbol(w, S("a"), NULL), MP_EINVAL);
    cr_assert_eq(tsdb_index_writer_add_symbol(w, S("c"), NULL), 0);
    cr_assert_eq(tsdb_index_writer_add_symbol(w, S("d"), NULL), 0);
    struct mp_label bc[] = {{S("b"), S("c")}}, bd[] = {{S("b"), S("d")}},
                    unk[] = {{S("b"), S("x")}}, dup[] = {{S("b"), S("c")}, {S("b"), S("d")}};
    struct tsdb_index_chunk_meta c[] = {{10, 20, 100}, {20, 30, 200}}, bad[] = {{10, 5, 1}};
    cr_assert_eq(tsdb_index_writer_add_series(w, bc, 0, NULL, 0, NULL, NULL), MP_EINVAL);
    cr_assert_eq(tsdb_index_writer_add_series(w, unk, 1, NULL, 0, NULL, &err), MP_EINVAL);
    cr_assert(strstr(err.msg, "not a symbol"), "%s", err.msg);
    cr_assert_eq(tsdb_index_writer_add_series(w, dup, 2, NULL, 0, NULL, NULL), MP_EINVAL);
    cr_assert_eq(tsdb_index_writer_add_series(w, bd, 1, c, 2, NULL, NULL), MP_EINVAL);
    cr_assert_eq(tsdb_index_writer_add_series(w, bd, 1, bad, 1, NULL, NULL), MP_EINVAL);
    cr_assert_eq(tsdb_index_writer_add_series(w, bd, 1, c, 1, NULL, NULL), 0);
    cr_assert_eq(tsdb_index_writer_add_series(w, bd, 1, NULL, 0, NULL, NULL), MP_EINVAL);
    cr_assert_eq(tsdb_index_writer_add_series(w, bc, 1, NULL, 0, NULL, NULL), MP_EINVAL);
    cr_assert_eq(tsdb_index_writer_add_symbol(w, S("e"), NULL), MP_EINVAL);
    /* a chunk ref below the previous series' last one */
    struct mp_label bd_c[] = {{S("b"), S("d")}, {S("c"), S("c")}};
    struct tsdb_index_chunk_meta early[] = {{40, 50, 99}};
    cr_assert_eq(tsdb_index_writer_add_series(w, bd_c, 2, early, 1, NULL, NULL), MP_EINVAL);
    cr_assert_eq(tsdb_index_writer_add_series(w, bd_c, 2, c + 1, 1, NULL, NULL), 0);
    cr_assert_eq(tsdb_index_writer_close(w, NULL), 0);

    struct tsdb_index_reader *r = NULL;
    cr_assert_eq(tsdb_index_reader_open(tmp_path("index"), &r, &err), 0, "%s", err.msg);
    struct mp_buf out;
    mp_buf_init(&out, 0);
    cr_assert_eq(dump(r, &out, &err), 0);
    cr_assert(strstr(out.data, "b=d [10,20]@100\n") && strstr(out.data, "b=d c=c [20,30]@200\n"),
              "%s", out.data);
    mp_buf_fini(&out);
    tsdb_index_reader_close(r);

    cr_assert_eq(tsdb_index_writer_open("/nonexistent-dir/index", &w, &err), MP_EIO);
    cr_assert_eq(tsdb_index_reader_open("/nonexistent-dir/index", &r, NULL), MP_EIO);
}

/* Every prefix is refused; every single-byte change is refused or, where it hits bytes no CRC
 * covers and the reader ignores (padding, legacy sections), changes nothing the reader says.
 * Each input is an exact-size heap copy, so ASan sees any over-read. */
static void damage_all(const uint8_t *b, size_t len)
{
    struct mp_err err = {0};
    struct tsdb_index_reader *r = NULL;
    struct mp_buf ref, out;
    mp_buf_init(&ref, 0);
    mp_buf_init(&out, 0);
    cr_assert_eq(tsdb_index_reader_open_mem(b, len, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(dump(r, &ref, &err), 0);
    tsdb_index_reader_close(r);

    for (size_t n = 0; n < len; n++) {
        uint8_t *p = malloc(n ? n : 1);
        memcpy(p, b, n);
        mp_err_clear(&err);
        cr_assert_eq(tsdb_index_reader_open_mem(p, n, &r, &err), MP_EPARSE, "prefix %zu", n);
        cr_assert(strstr(err.msg, "index: "), "%s", err.msg);
        free(p);
    }
    size_t refused = 0;
    static const uint8_t flips[] = {0x01, 0x80, 0xff};
    for (size_t i = 0; i < len; i++)
        for (size_t f = 0; f < sizeof flips; f++) {
            uint8_t *p = malloc(len);
            memcpy(p, b, len);
            p[i] ^= flips[f];
            mp_err_clear(&err);
            int rc = tsdb_index_reader_open_mem(p, len, &r, &err);
            if (rc == 0) {
                mp_buf_reset(&out);
                rc = dump(r, &out, &err);
                tsdb_index_reader_close(r);
                if (rc == 0)
                    cr_assert(out.len == ref.len && memcmp(out.data, ref.data, out.len) == 0,
                              "byte %zu ^ %02x accepted with a different meaning", i, flips[f]);
            }
            if (rc) {
                cr_assert_eq(rc, MP_EPARSE, "byte %zu: %d %s", i, rc, err.msg);
                cr_assert(strstr(err.msg, "offset "), "%s", err.msg);
                refused++;
            }
            free(p);
        }
    cr_assert_gt(refused, len, "refused %zu of %zu", refused, 3 * len);
    mp_buf_fini(&ref);
    mp_buf_fini(&out);
}

Test(index, every_truncation_and_corruption_refused, .init = mk_tmp, .fini = rm_tmp)
{
    rng = 7;
    arena_len = 0;
    size_t u, nsyms;
    struct tseries *s = rnd_series(12, 3, &u);
    struct mp_str *syms = symbols_of(s, u, &nsyms);
    write_index(tmp_path("index"), syms, nsyms, s, u, NULL);
    size_t len;
    uint8_t *b = slurp(tmp_path("index"), &len);
    cr_assert_lt(len, 4096);
    damage_all(b, len);
    free(b);
    b = slurp(FIX "index", &len);
    damage_all(b, len);
    free(b);
    free(syms);
    free_series(s, u);
}

Test(index, reader_refuses_bad_refs_and_headers)
{
    size_t len;
    uint8_t *b = slurp(FIX "index", &len);
    struct tsdb_index_reader *r = NULL;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_index_reader_open_mem(b, len, &r, &err), 0);
    struct tsdb_index_series s = {0};
    /* refs 9, 11, 13 are series; 10 and 12 are inside them, 0 is the header, huge ones are
     * outside */
    cr_assert_eq(tsdb_index_reader_series(r, 9, &s, &err), 0);
    const uint64_t bad[] = {0, 1, 10, 12, len / 16, UINT64_MAX, UINT64_MAX / 16 + 1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mp_err_clear(&err);
        cr_assert_eq(tsdb_index_reader_series(r, bad[i], &s, &err), MP_EPARSE, "ref %llu",
                     (unsigned long long)bad[i]);
    }
    struct mp_str sym;
    cr_assert_eq(tsdb_index_reader_symbol(r, 20, &sym, NULL), MP_EPARSE);
    tsdb_index_series_fini(&s);
    tsdb_index_reader_close(r);

    b[4] = 1; /* version 1 (symbol refs were offsets) is not supported */
    mp_err_clear(&err);
    cr_assert_eq(tsdb_index_reader_open_mem(b, len, &r, &err), MP_EPARSE);
    cr_assert(strstr(err.msg, "version"), "%s", err.msg);
    free(b);
}

/* ---- allocation failures ------------------------------------------------------------------ */

/* Writes s through a writer whose n-th fallible allocation fails; 0 or the first error. */
static int write_failing(const char *path, const struct mp_str *syms, size_t nsyms,
                         const struct tseries *s, size_t n)
{
    struct tsdb_index_writer *w = NULL;
    int rc = tsdb_index_writer_open(path, &w, NULL);
    if (rc)
        return rc;
    rc = tsdb_index_writer_add_symbols(w, syms, nsyms, NULL);
    for (size_t i = 0; i < n && !rc; i++)
        rc = tsdb_index_writer_add_series(w, s[i].l, s[i].nl, s[i].c, s[i].nc, NULL, NULL);
    if (rc) {
        tsdb_index_writer_abort(w);
        return rc;
    }
    return tsdb_index_writer_close(w, NULL);
}

Test(index, allocation_failures_are_clean, .init = mk_tmp, .fini = rm_tmp)
{
    size_t len;
    uint8_t *b = slurp(FIX "index", &len);
    struct tsdb_index_reader *r = NULL;
    struct mp_err err = {0};
    struct mp_buf ref;
    mp_buf_init(&ref, 0);
    cr_assert_eq(tsdb_index_reader_open_mem(b, len, &r, &err), 0);
    cr_assert_eq(dump(r, &ref, &err), 0);
    size_t n, nsyms = tsdb_index_reader_symbol_count(r);
    uint64_t *refs;
    struct tseries *s = read_all(r, &n, &refs);
    struct mp_str *syms = reader_symbols(r);

    size_t k;
    for (k = 1; k < 10000; k++) { /* reader: open, then everything it offers */
        struct tsdb_index_reader *f = NULL;
        struct mp_buf out;
        mp_buf_init(&out, 0);
        mp_alloc_fail_at(k);
        int rc = tsdb_index_reader_open_mem(b, len, &f, NULL);
        if (rc == 0) {
            rc = dump(f, &out, NULL);
            tsdb_index_reader_close(f);
        }
        mp_alloc_fail_at(0);
        if (rc == 0)
            cr_assert(out.len == ref.len && memcmp(out.data, ref.data, out.len) == 0);
        mp_buf_fini(&out);
        if (rc == 0)
            break;
        cr_assert_eq(rc, MP_ENOMEM, "allocation %zu: %d", k, rc);
    }
    cr_assert_gt(k, 3);
    cr_assert_lt(k, 10000);
    for (k = 1; k < 10000; k++) { /* writer */
        mp_alloc_fail_at(k);
        int rc = write_failing(tmp_path("index"), syms, nsyms, s, n);
        mp_alloc_fail_at(0);
        if (rc == 0)
            break;
        cr_assert_eq(rc, MP_ENOMEM, "allocation %zu: %d", k, rc);
    }
    cr_assert_gt(k, 3);
    cr_assert_lt(k, 10000);
    size_t gn;
    uint8_t *got = slurp(tmp_path("index"), &gn);
    assert_same_bytes(got, gn, b, len);
    free(got);
    mp_buf_fini(&ref);
    free(syms);
    free(refs);
    free_series(s, n);
    tsdb_index_reader_close(r);
    free(b);
}

/* ---- the compact format (meshprom blocks) ------------------------------------------------- */

Test(index, compact_random_round_trips, .init = mk_tmp, .fini = rm_tmp)
{
    rng = 43;
    arena_len = 0;
    wlevel = 3;
    for (int i = 0; i < 5; i++)
        round_trip(1 + (size_t)(rnd() % 400), 4);
    wlevel = 0;
}

Test(index, compact_empty_index, .init = mk_tmp, .fini = rm_tmp)
{
    wlevel = 1;
    write_index(tmp_path("index"), NULL, 0, NULL, 0, NULL);
    wlevel = 0;
    size_t len;
    uint8_t *b = slurp(tmp_path("index"), &len);
    cr_assert_eq(tsdb_get_be32(b), TSDB_INDEX_COMPACT_MAGIC);
    struct tsdb_index_reader *r = NULL;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_index_reader_open_mem(b, len, &r, &err), 0, "%s", err.msg);
    struct mp_buf out;
    mp_buf_init(&out, 0);
    cr_assert_eq(dump(r, &out, &err), 0);
    cr_assert_eq(out.len, 0);
    struct tsdb_index_series s = {0};
    cr_assert_eq(tsdb_index_reader_series(r, 1, &s, &err), MP_EPARSE);
    cr_assert_eq(tsdb_index_reader_series(r, 0, &s, &err), MP_EPARSE);
    mp_buf_fini(&out);
    tsdb_index_reader_close(r);
    free(b);
}

/* Many frames (3000 series, 150000 symbols), one entry larger than a frame, refs 1..n. */
Test(index, compact_large_and_many_frames, .init = mk_tmp, .fini = rm_tmp)
{
    size_t nsyms = 150000, n = 3000;
    char *text;
    struct mp_str *syms;
    struct tseries *s = many_symbols(nsyms, n, &syms, &text);
    uint64_t ref = 0;
    for (size_t i = 0; i < n; i++) {
        s[i].nc = i == 1234 ? 20000 : i % 3;
        s[i].c = malloc((s[i].nc + 1) * sizeof *s[i].c);
        for (size_t j = 0; j < s[i].nc; j++) {
            ref += 1 + (uint64_t)(j % 5) * 1000;
            s[i].c[j] = (struct tsdb_index_chunk_meta){(int64_t)j * 100, (int64_t)j * 100 + 50,
                                                       ref};
        }
    }
    uint64_t *refs = calloc(n, sizeof *refs);
    wlevel = 6;
    write_index(tmp_path("index"), syms, nsyms, s, n, refs);
    wlevel = 0;
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(refs[i], i + 1);
    struct tsdb_index_reader *r = NULL;
    struct mp_err err = {0};
    cr_assert_eq(tsdb_index_reader_open(tmp_path("index"), &r, &err), 0, "%s", err.msg);
    verify(r, s, n, refs, syms, nsyms);
    /* random access out of order, and set unions across frames */
    struct tsdb_index_series rs = {0};
    for (size_t k = 0; k < 200; k++) {
        size_t i = (k * 7919) % n;
        cr_assert_eq(tsdb_index_reader_series(r, i + 1, &rs, &err), 0, "%s", err.msg);
        cr_assert(mp_str_eq(rs.labels[0].value, s[i].l[0].value));
        cr_assert_eq(rs.nchunks, s[i].nc);
    }
    cr_assert_eq(tsdb_index_reader_series(r, n + 1, &rs, &err), MP_EPARSE);
    tsdb_index_series_fini(&rs);
    struct tsdb_plist p = {0};
    struct mp_str vals[] = {syms[0], syms[3], syms[5], S("zzz")};
    cr_assert_eq(tsdb_index_reader_postings(r, syms[nsyms - 1], vals, 4, &p, &err), 0);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (i % 7 == 0 || i % 7 == 3 || i % 7 == 5) {
            cr_assert_lt(k, p.n);
            cr_assert_eq(p.refs[k++], i + 1);
        }
    cr_assert_eq(k, p.n);
    plist_free(&p);
    tsdb_index_reader_close(r);
    free(refs);
    free_series(s, n);
    free(text);
    free(syms);
}

/* The same series in both formats: the reader tells the same things (refs aside). */
Test(index, compact_and_v2_read_alike, .init = mk_tmp, .fini = rm_tmp)
{
    rng = 11;
    arena_len = 0;
    size_t u, nsyms;
    struct tseries *s = rnd_series(300, 3, &u);
    struct mp_str *syms = symbols_of(s, u, &nsyms);
    struct tsdb_index_reader *r[2] = {NULL, NULL};
    for (int f = 0; f < 2; f++) {
        wlevel = f ? 9 : 0;
        write_index(tmp_path(f ? "compact" : "v2"), syms, nsyms, s, u, NULL);
        struct mp_err err = {0};
        cr_assert_eq(tsdb_index_reader_open(tmp_path(f ? "compact" : "v2"), &r[f], &err), 0,
                     "%s", err.msg);
        /* every series by position (refs differ: offsets / 16 against 1..n) */
        size_t n;
        uint64_t *refs;
        struct tseries *back = read_all(r[f], &n, &refs);
        cr_assert_eq(n, u);
        for (size_t i = 0; i < n; i++) {
            cr_assert_eq(lcmp(&back[i], &s[i]), 0, "format %d series %zu", f, i);
            cr_assert_eq(back[i].nc, s[i].nc);
            for (size_t j = 0; j < back[i].nc; j++)
                cr_assert_eq(back[i].c[j].ref, s[i].c[j].ref);
        }
        free_series(back, n);
        free(refs);
    }
    wlevel = 0;
    struct stat st[2];
    cr_assert_eq(stat(tmp_path("v2"), &st[0]), 0);
    cr_assert_eq(stat(tmp_path("compact"), &st[1]), 0);
    cr_assert_lt(st[1].st_size * 2, st[0].st_size, "compact %lld vs v2 %lld",
                 (long long)st[1].st_size, (long long)st[0].st_size);
    for (int f = 0; f < 2; f++)
        tsdb_index_reader_close(r[f]);
    free(syms);
    free_series(s, u);
}

Test(index, compact_every_truncation_and_corruption_refused, .init = mk_tmp, .fini = rm_tmp)
{
    rng = 8;
    arena_len = 0;
    size_t u, nsyms;
    struct tseries *s = rnd_series(40, 3, &u);
    struct mp_str *syms = symbols_of(s, u, &nsyms);
    wlevel = 3;
    write_index(tmp_path("index"), syms, nsyms, s, u, NULL);
    wlevel = 0;
    size_t len;
    uint8_t *b = slurp(tmp_path("index"), &len);
    cr_assert_lt(len, 8192);
    damage_all(b, len);
    free(b);
    free(syms);
    free_series(s, u);
}
