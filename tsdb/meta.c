/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/meta.c: block meta.json and ULIDs (meta.h; tsdb.md 4.1-4.2).
 *
 * The writer is hand-made rather than json-c's printer because json-c's pretty mode differs
 * from Go's json.MarshalIndent (it writes `"k":v`, escapes '/', and formats empty containers
 * its own way); Prometheus and Thanos tooling diff these files, so we match Go exactly:
 *
 *   {\n\t"ulid": "01M8...",\n\t"minTime": 1700000000000,\n ... \n\t"version": 1\n}
 *
 * ULID text is Crockford base32 of the 128 bits, most significant first, 5 bits per char
 * (the first character carries only 3 bits, so it is 0-7). */
#include "tsdb/meta.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "common/alloc.h"
#include "common/str.h"
#include "tsdb/fileutil.h"

/* ---- ULID ---------------------------------------------------------------------------- */

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static pthread_mutex_t ulid_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t ulid_last_ms = -1;
static uint8_t ulid_last_rand[10];

static int fill_random(uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int tsdb_ulid_generate(int64_t ms, struct tsdb_ulid *out, struct mp_err *err)
{
    if (ms < 0 || ms >= (INT64_C(1) << 48))
        return mp_err_set(err, MP_EINVAL, "ulid time %" PRId64 " ms out of the 48-bit range", ms);
    uint8_t rnd[10];
    pthread_mutex_lock(&ulid_mu);
    if (ms == ulid_last_ms) {
        /* same millisecond: previous random part + 1, so ids keep increasing */
        memcpy(rnd, ulid_last_rand, sizeof rnd);
        int i = 9;
        while (i >= 0 && ++rnd[i] == 0)
            i--;
        if (i < 0) {
            pthread_mutex_unlock(&ulid_mu);
            return mp_err_set(err, MP_ELIMIT, "ulid: random part exhausted within one ms");
        }
    } else {
        int e = fill_random(rnd, sizeof rnd);
        if (e != 0) {
            pthread_mutex_unlock(&ulid_mu);
            return mp_err_set(err, MP_EIO, "getrandom: %s", strerror(e));
        }
        ulid_last_ms = ms;
    }
    memcpy(ulid_last_rand, rnd, sizeof rnd);
    pthread_mutex_unlock(&ulid_mu);
    for (int i = 0; i < 6; i++)
        out->b[i] = (uint8_t)((uint64_t)ms >> (40 - 8 * i));
    memcpy(out->b + 6, rnd, sizeof rnd);
    return 0;
}

void tsdb_ulid_format(const struct tsdb_ulid *u, char buf[TSDB_ULID_LEN + 1])
{
    /* bit i of the 130-bit string (2 leading zero bits + 128) -> char i/5 */
    for (int c = 0; c < TSDB_ULID_LEN; c++) {
        unsigned v = 0;
        for (int k = 0; k < 5; k++) {
            int bit = c * 5 + k - 2; /* position in the 128 bits, MSB first */
            unsigned b = bit < 0 ? 0 : (u->b[bit / 8] >> (7 - bit % 8)) & 1u;
            v = v << 1 | b;
        }
        buf[c] = crockford[v];
    }
    buf[TSDB_ULID_LEN] = 0;
}

static int crockford_value(char ch)
{
    if (ch >= 'a' && ch <= 'z')
        ch = (char)(ch - 'a' + 'A');
    const char *p = ch ? strchr(crockford, ch) : NULL;
    return p ? (int)(p - crockford) : -1;
}

int tsdb_ulid_parse(struct mp_str s, struct tsdb_ulid *out, struct mp_err *err)
{
    if (s.len != TSDB_ULID_LEN)
        return mp_err_set(err, MP_EPARSE, "ulid: %zu characters, want %d", s.len, TSDB_ULID_LEN);
    struct tsdb_ulid u = {{0}};
    for (int c = 0; c < TSDB_ULID_LEN; c++) {
        int v = crockford_value(s.ptr[c]);
        if (v < 0)
            return mp_err_set(err, MP_EPARSE, "ulid: invalid character at position %d", c);
        if (c == 0 && v > 7)
            return mp_err_set(err, MP_EPARSE, "ulid: first character above 7 overflows 128 bits");
        for (int k = 0; k < 5; k++) {
            int bit = c * 5 + k - 2;
            if (bit >= 0 && (v >> (4 - k)) & 1)
                u.b[bit / 8] |= (uint8_t)(1u << (7 - bit % 8));
        }
    }
    *out = u;
    return 0;
}

int64_t tsdb_ulid_time(const struct tsdb_ulid *u)
{
    uint64_t t = 0;
    for (int i = 0; i < 6; i++)
        t = t << 8 | u->b[i];
    return (int64_t)t;
}

int tsdb_ulid_cmp(const struct tsdb_ulid *a, const struct tsdb_ulid *b)
{
    return memcmp(a->b, b->b, sizeof a->b);
}

/* ---- struct ---------------------------------------------------------------------------- */

void tsdb_meta_init(struct tsdb_meta *m)
{
    memset(m, 0, sizeof *m);
    m->compaction.level = 1;
    m->version = TSDB_META_VERSION;
}

void tsdb_meta_fini(struct tsdb_meta *m)
{
    if (!m)
        return;
    mp_free(m->compaction.sources);
    mp_free(m->compaction.parents);
    for (size_t i = 0; i < m->compaction.nhints; i++)
        mp_free(m->compaction.hints[i]);
    mp_free(m->compaction.hints);
    tsdb_meta_init(m);
}

/* Grows *arr (n elements of size sz) by one; NULL on overflow or OOM. */
static void *grow_one(void *arr, size_t n, size_t sz)
{
    size_t bytes;
    if (__builtin_mul_overflow(n + 1, sz, &bytes))
        return NULL;
    return mp_realloc(arr, bytes);
}

int tsdb_meta_add_source(struct tsdb_meta *m, const struct tsdb_ulid *u)
{
    struct tsdb_ulid *a = grow_one(m->compaction.sources, m->compaction.nsources, sizeof *a);
    if (!a)
        return MP_ENOMEM;
    a[m->compaction.nsources++] = *u;
    m->compaction.sources = a;
    return 0;
}

int tsdb_meta_add_parent(struct tsdb_meta *m, const struct tsdb_block_desc *d)
{
    struct tsdb_block_desc *a = grow_one(m->compaction.parents, m->compaction.nparents, sizeof *a);
    if (!a)
        return MP_ENOMEM;
    a[m->compaction.nparents++] = *d;
    m->compaction.parents = a;
    return 0;
}

int tsdb_meta_add_hint(struct tsdb_meta *m, const char *hint)
{
    size_t n = strlen(hint);
    char *copy = mp_malloc(n + 1);
    if (!copy)
        return MP_ENOMEM;
    memcpy(copy, hint, n + 1);
    char **a = grow_one(m->compaction.hints, m->compaction.nhints, sizeof *a);
    if (!a) {
        mp_free(copy);
        return MP_ENOMEM;
    }
    a[m->compaction.nhints++] = copy;
    m->compaction.hints = a;
    return 0;
}

/* ---- encoding (Go json.MarshalIndent, prefix "", indent "\t") -------------------------- */

/* Go's encodeState.string with HTML escaping on (json.Marshal's default) and the escapes of
 * the Go releases Prometheus 2.x was built with (\b and \f as \u0008, \u000c). */
static int put_json_string(struct mp_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    int rc = mp_buf_append(b, "\"", 1);
    for (size_t i = 0; i < n && rc == 0;) {
        unsigned c = p[i];
        if (c >= 0x80) {
            uint32_t cp;
            size_t l = mp_utf8_decode(p + i, n - i, &cp);
            if (l == 1) { /* invalid: only ASCII decodes to width 1 */
                rc = mp_buf_append(b, "\\ufffd", 6);
                i++;
            } else if (cp == 0x2028 || cp == 0x2029) {
                rc = mp_buf_appendf(b, "\\u%04x", (unsigned)cp);
                i += l;
            } else {
                rc = mp_buf_append(b, p + i, l);
                i += l;
            }
            continue;
        }
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            rc = mp_buf_append(b, e, 2);
        } else if (c == '\n') {
            rc = mp_buf_append(b, "\\n", 2);
        } else if (c == '\r') {
            rc = mp_buf_append(b, "\\r", 2);
        } else if (c == '\t') {
            rc = mp_buf_append(b, "\\t", 2);
        } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            rc = mp_buf_append(b, e, 6);
        } else {
            rc = mp_buf_append(b, p + i, 1);
        }
        i++;
    }
    return rc ? rc : mp_buf_append(b, "\"", 1);
}

static int put_indent(struct mp_buf *b, int depth)
{
    int rc = mp_buf_append(b, "\n", 1);
    for (int i = 0; i < depth && rc == 0; i++)
        rc = mp_buf_append(b, "\t", 1);
    return rc;
}

/* JSON object writer state: the first key of an object has no leading comma. */
struct jw {
    struct mp_buf *b;
    int depth;
    bool first;
    int rc;
};

static void jw_key(struct jw *w, const char *key)
{
    if (w->rc)
        return;
    if (!w->first)
        w->rc = mp_buf_append(w->b, ",", 1);
    w->first = false;
    if (!w->rc)
        w->rc = put_indent(w->b, w->depth);
    if (!w->rc)
        w->rc = put_json_string(w->b, key);
    if (!w->rc)
        w->rc = mp_buf_append(w->b, ": ", 2);
}

static void jw_open(struct jw *w, char brace)
{
    if (!w->rc)
        w->rc = mp_buf_append(w->b, &brace, 1);
    w->depth++;
    w->first = true;
}

/* Go prints an empty object or array as {} / [] with nothing inside. */
static void jw_close(struct jw *w, char brace)
{
    w->depth--;
    if (!w->rc && !w->first)
        w->rc = put_indent(w->b, w->depth);
    if (!w->rc)
        w->rc = mp_buf_append(w->b, &brace, 1);
    w->first = false;
}

static void jw_i64(struct jw *w, const char *key, int64_t v)
{
    jw_key(w, key);
    if (!w->rc)
        w->rc = mp_buf_appendf(w->b, "%" PRId64, v);
}

static void jw_u64_omitempty(struct jw *w, const char *key, uint64_t v)
{
    if (v == 0)
        return;
    jw_key(w, key);
    if (!w->rc)
        w->rc = mp_buf_appendf(w->b, "%" PRIu64, v);
}

/* Starts an array element: comma unless first, newline, indentation. */
static void jw_elem(struct jw *w)
{
    if (!w->rc && !w->first)
        w->rc = mp_buf_append(w->b, ",", 1);
    w->first = false;
    if (!w->rc)
        w->rc = put_indent(w->b, w->depth);
}

static void jw_str(struct jw *w, const char *s)
{
    if (!w->rc)
        w->rc = put_json_string(w->b, s);
}

static void jw_ulid(struct jw *w, const struct tsdb_ulid *u)
{
    char s[TSDB_ULID_LEN + 1];
    tsdb_ulid_format(u, s);
    jw_str(w, s);
}

static void jw_bool_omitempty(struct jw *w, const char *key, bool v)
{
    if (!v)
        return;
    jw_key(w, key);
    if (!w->rc)
        w->rc = mp_buf_append(w->b, "true", 4);
}

int tsdb_meta_encode(const struct tsdb_meta *m, struct mp_buf *out)
{
    struct jw w = {out, 0, true, 0};
    jw_open(&w, '{');
    jw_key(&w, "ulid");
    jw_ulid(&w, &m->ulid);
    jw_i64(&w, "minTime", m->min_time);
    jw_i64(&w, "maxTime", m->max_time);
    /* "stats" has omitempty, but Go never omits a struct: an all-zero one prints {} */
    jw_key(&w, "stats");
    jw_open(&w, '{');
    jw_u64_omitempty(&w, "numSamples", m->stats.num_samples);
    jw_u64_omitempty(&w, "numFloatSamples", m->stats.num_float_samples);
    jw_u64_omitempty(&w, "numHistogramSamples", m->stats.num_histogram_samples);
    jw_u64_omitempty(&w, "numSeries", m->stats.num_series);
    jw_u64_omitempty(&w, "numChunks", m->stats.num_chunks);
    jw_u64_omitempty(&w, "numTombstones", m->stats.num_tombstones);
    jw_close(&w, '}');
    jw_key(&w, "compaction");
    jw_open(&w, '{');
    jw_i64(&w, "level", m->compaction.level);
    if (m->compaction.nsources > 0) {
        jw_key(&w, "sources");
        jw_open(&w, '[');
        for (size_t i = 0; i < m->compaction.nsources; i++) {
            jw_elem(&w);
            jw_ulid(&w, &m->compaction.sources[i]);
        }
        jw_close(&w, ']');
    }
    jw_bool_omitempty(&w, "deletable", m->compaction.deletable);
    if (m->compaction.nparents > 0) {
        jw_key(&w, "parents");
        jw_open(&w, '[');
        for (size_t i = 0; i < m->compaction.nparents; i++) {
            const struct tsdb_block_desc *d = &m->compaction.parents[i];
            jw_elem(&w);
            jw_open(&w, '{');
            jw_key(&w, "ulid");
            jw_ulid(&w, &d->ulid);
            jw_i64(&w, "minTime", d->min_time);
            jw_i64(&w, "maxTime", d->max_time);
            jw_close(&w, '}');
        }
        jw_close(&w, ']');
    }
    jw_bool_omitempty(&w, "failed", m->compaction.failed);
    if (m->compaction.nhints > 0) {
        jw_key(&w, "hints");
        jw_open(&w, '[');
        for (size_t i = 0; i < m->compaction.nhints; i++) {
            jw_elem(&w);
            jw_str(&w, m->compaction.hints[i]);
        }
        jw_close(&w, ']');
    }
    jw_close(&w, '}');
    jw_i64(&w, "version", m->version);
    jw_close(&w, '}');
    return w.rc;
}

/* ---- decoding (json-c) ---------------------------------------------------------------- */

struct jr {
    const char *what; /* path, for messages */
    struct mp_err *err;
};

static int bad(struct jr *r, const char *field, const char *why)
{
    return mp_err_set(r->err, MP_EPARSE, "%s: %s: %s", r->what, field, why);
}

/* Required or optional member of obj; *out NULL when absent. */
static int member(struct jr *r, json_object *obj, const char *field, const char *key,
                  json_type type, bool required, json_object **out)
{
    *out = NULL;
    json_object *v = NULL;
    if (!json_object_object_get_ex(obj, key, &v) || v == NULL) {
        /* Go decodes JSON null as "leave the zero value"; treat it as absent */
        return required ? bad(r, field, "missing") : 0;
    }
    if (!json_object_is_type(v, type))
        return bad(r, field, "wrong type");
    *out = v;
    return 0;
}

static int get_i64(struct jr *r, json_object *obj, const char *field, const char *key,
                   bool required, int64_t *out)
{
    json_object *v;
    int rc = member(r, obj, field, key, json_type_int, required, &v);
    if (rc || !v)
        return rc;
    errno = 0;
    int64_t x = json_object_get_int64(v);
    if (errno == EINVAL || (x == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX))
        return bad(r, field, "out of int64 range");
    *out = x;
    return 0;
}

static int get_u64(struct jr *r, json_object *obj, const char *field, const char *key,
                   uint64_t *out)
{
    json_object *v;
    int rc = member(r, obj, field, key, json_type_int, false, &v);
    if (rc || !v)
        return rc;
    if (json_object_get_int64(v) < 0)
        return bad(r, field, "negative");
    *out = json_object_get_uint64(v);
    return 0;
}

static int get_bool(struct jr *r, json_object *obj, const char *field, const char *key, bool *out)
{
    json_object *v;
    int rc = member(r, obj, field, key, json_type_boolean, false, &v);
    if (rc || !v)
        return rc;
    *out = json_object_get_boolean(v);
    return 0;
}

static int get_ulid(struct jr *r, json_object *v, const char *field, struct tsdb_ulid *out)
{
    if (!json_object_is_type(v, json_type_string))
        return bad(r, field, "wrong type");
    struct mp_str s = {json_object_get_string(v), (size_t)json_object_get_string_len(v)};
    struct mp_err e = {0};
    if (tsdb_ulid_parse(s, out, &e) != 0)
        return bad(r, field, e.msg);
    return 0;
}

static int decode_parents(struct jr *r, json_object *arr, struct tsdb_meta *m)
{
    size_t n = json_object_array_length(arr);
    for (size_t i = 0; i < n; i++) {
        json_object *p = json_object_array_get_idx(arr, i);
        if (!p || !json_object_is_type(p, json_type_object))
            return bad(r, "compaction.parents", "element is not an object");
        struct tsdb_block_desc d = {{{0}}, 0, 0};
        json_object *u;
        int rc = member(r, p, "compaction.parents.ulid", "ulid", json_type_string, true, &u);
        if (!rc)
            rc = get_ulid(r, u, "compaction.parents.ulid", &d.ulid);
        if (!rc)
            rc = get_i64(r, p, "compaction.parents.minTime", "minTime", true, &d.min_time);
        if (!rc)
            rc = get_i64(r, p, "compaction.parents.maxTime", "maxTime", true, &d.max_time);
        if (!rc && tsdb_meta_add_parent(m, &d) != 0)
            rc = mp_err_set(r->err, MP_ENOMEM, "%s: parents", r->what);
        if (rc)
            return rc;
    }
    return 0;
}

static int decode_compaction(struct jr *r, json_object *c, struct tsdb_meta *m)
{
    int64_t level = 0;
    int rc = get_i64(r, c, "compaction.level", "level", true, &level);
    if (rc)
        return rc;
    if (level < 0 || level > INT32_MAX)
        return bad(r, "compaction.level", "out of range");
    m->compaction.level = (int)level;
    json_object *arr;
    if ((rc = member(r, c, "compaction.sources", "sources", json_type_array, false, &arr)))
        return rc;
    for (size_t i = 0, n = arr ? json_object_array_length(arr) : 0; i < n; i++) {
        struct tsdb_ulid u;
        json_object *e = json_object_array_get_idx(arr, i);
        if (!e)
            return bad(r, "compaction.sources", "null element");
        if ((rc = get_ulid(r, e, "compaction.sources", &u)))
            return rc;
        if (tsdb_meta_add_source(m, &u) != 0)
            return mp_err_set(r->err, MP_ENOMEM, "%s: sources", r->what);
    }
    if ((rc = get_bool(r, c, "compaction.deletable", "deletable", &m->compaction.deletable)))
        return rc;
    if ((rc = member(r, c, "compaction.parents", "parents", json_type_array, false, &arr)))
        return rc;
    if (arr && (rc = decode_parents(r, arr, m)))
        return rc;
    if ((rc = get_bool(r, c, "compaction.failed", "failed", &m->compaction.failed)))
        return rc;
    if ((rc = member(r, c, "compaction.hints", "hints", json_type_array, false, &arr)))
        return rc;
    for (size_t i = 0, n = arr ? json_object_array_length(arr) : 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        if (!e || !json_object_is_type(e, json_type_string))
            return bad(r, "compaction.hints", "element is not a string");
        if (strlen(json_object_get_string(e)) != (size_t)json_object_get_string_len(e))
            return bad(r, "compaction.hints", "NUL in string");
        if (tsdb_meta_add_hint(m, json_object_get_string(e)) != 0)
            return mp_err_set(r->err, MP_ENOMEM, "%s: hints", r->what);
    }
    return 0;
}

static int decode_root(struct jr *r, json_object *root, struct tsdb_meta *m)
{
    if (!json_object_is_type(root, json_type_object))
        return bad(r, "(root)", "not an object");
    json_object *v;
    int rc = member(r, root, "ulid", "ulid", json_type_string, true, &v);
    if (!rc)
        rc = get_ulid(r, v, "ulid", &m->ulid);
    if (!rc)
        rc = get_i64(r, root, "minTime", "minTime", true, &m->min_time);
    if (!rc)
        rc = get_i64(r, root, "maxTime", "maxTime", true, &m->max_time);
    if (rc)
        return rc;
    if ((rc = member(r, root, "stats", "stats", json_type_object, false, &v)))
        return rc;
    if (v) {
        if ((rc = get_u64(r, v, "stats.numSamples", "numSamples", &m->stats.num_samples)) ||
            (rc = get_u64(r, v, "stats.numFloatSamples", "numFloatSamples",
                          &m->stats.num_float_samples)) ||
            (rc = get_u64(r, v, "stats.numHistogramSamples", "numHistogramSamples",
                          &m->stats.num_histogram_samples)) ||
            (rc = get_u64(r, v, "stats.numSeries", "numSeries", &m->stats.num_series)) ||
            (rc = get_u64(r, v, "stats.numChunks", "numChunks", &m->stats.num_chunks)) ||
            (rc = get_u64(r, v, "stats.numTombstones", "numTombstones", &m->stats.num_tombstones)))
            return rc;
    }
    if ((rc = member(r, root, "compaction", "compaction", json_type_object, true, &v)))
        return rc;
    if ((rc = decode_compaction(r, v, m)))
        return rc;
    int64_t version = 0;
    if ((rc = get_i64(r, root, "version", "version", true, &version)))
        return rc;
    if (version != TSDB_META_VERSION)
        return mp_err_set(r->err, MP_EPARSE, "%s: version: %" PRId64 ", only %d is supported",
                          r->what, version, TSDB_META_VERSION);
    m->version = (int)version;
    return 0;
}

int tsdb_meta_decode(const char *data, size_t len, const char *what, struct tsdb_meta *m,
                     struct mp_err *err)
{
    tsdb_meta_fini(m);
    if (len > INT32_MAX)
        return mp_err_set(err, MP_EPARSE, "%s: %zu bytes is too large", what, len);
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return mp_err_set(err, MP_ENOMEM, "%s: json tokener", what);
    json_object *root = json_tokener_parse_ex(tok, data, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t off = json_tokener_get_parse_end(tok);
    int rc = 0;
    if (root == NULL || jerr != json_tokener_success) {
        if (jerr == json_tokener_continue)
            rc = mp_err_set(err, MP_EPARSE, "%s: truncated JSON at byte %zu", what, len);
        else
            rc = mp_err_set(err, MP_EPARSE, "%s: byte %zu: %s", what, off,
                            json_tokener_error_desc(jerr));
    } else {
        /* trailing garbage after the value: Go's Unmarshal refuses it too */
        for (size_t i = off; i < len && rc == 0; i++)
            if (data[i] != ' ' && data[i] != '\t' && data[i] != '\n' && data[i] != '\r')
                rc = mp_err_set(err, MP_EPARSE, "%s: byte %zu: data after the JSON value", what, i);
        if (rc == 0) {
            struct jr r = {what, err};
            rc = decode_root(&r, root, m);
        }
    }
    json_object_put(root);
    json_tokener_free(tok);
    if (rc)
        tsdb_meta_fini(m);
    return rc;
}

int tsdb_meta_write(const char *dir, const struct tsdb_meta *m, struct mp_err *err)
{
    struct mp_buf b;
    mp_buf_init(&b, TSDB_META_MAX_BYTES);
    int rc = tsdb_meta_encode(m, &b);
    if (rc)
        rc = mp_err_set(err, rc, "%s/%s: encode: %s", dir, TSDB_META_FILENAME, mp_strerror(rc));
    else
        rc = tsdb_file_write_atomic(dir, TSDB_META_FILENAME, b.data, b.len, err);
    mp_buf_fini(&b);
    return rc;
}

int tsdb_meta_read(const char *dir, struct tsdb_meta *m, struct mp_err *err)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, TSDB_META_FILENAME) >= sizeof path)
        return mp_err_set(err, MP_EINVAL, "path too long: %s", dir);
    char *data;
    size_t len;
    int rc = tsdb_file_read_all(path, TSDB_META_MAX_BYTES, &data, &len, err);
    if (rc)
        return rc;
    rc = tsdb_meta_decode(data, len, path, m, err);
    mp_free(data);
    return rc;
}
