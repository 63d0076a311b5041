/* SPDX-License-Identifier: Apache-2.0 */
/* query/func_label.c: label_replace and label_join (promql.md 3.9), with Prometheus 2.55's
 * error texts. Both keep __name__ and the element's delayed-name-removal mark, except that a
 * series whose __name__ is (re)written keeps its new name. The arguments are validated before
 * any element is looked at, so a bad name or regex fails even on an empty vector.
 * label_replace then checks for duplicate label sets (2.8); Prometheus does that over the
 * whole result matrix, here it is per step, so two series that collide without ever sharing a
 * step are not reported. */
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/matcher.h"
#include "query/func.h"

/* MP_EEXEC "<what>: <s>" with s printed as Go %s does (raw bytes). */
static int name_error(struct mp_err *err, const char *what, struct mp_str s)
{
    return mp_err_set(err, MP_EEXEC, "%s: %.*s", what, (int)s.len, s.ptr);
}

struct hidx {
    uint64_t h;
    size_t i;
};

static int cmp_hidx(const void *pa, const void *pb)
{
    const struct hidx *a = pa, *b = pb;
    if (a->h != b->h)
        return a->h < b->h ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

/* "vector cannot contain metrics with the same labelset" among c->out[from..). */
static int check_duplicates(struct qcall *c, size_t from, struct mp_err *err)
{
    size_t n = c->out->n - from;
    if (n < 2)
        return 0;
    struct hidx *h = mp_calloc(n, sizeof *h);
    if (!h)
        return query_func_oom(err);
    for (size_t i = 0; i < n; i++)
        h[i] = (struct hidx){mp_labels_hash(c->out->s[from + i].labels), from + i};
    qsort(h, n, sizeof *h, cmp_hidx);
    int rc = 0;
    for (size_t i = 0; i + 1 < n && rc == 0; i++)
        for (size_t j = i + 1; j < n && h[j].h == h[i].h && rc == 0; j++)
            if (mp_labels_equal(c->out->s[h[i].i].labels, c->out->s[h[j].i].labels))
                rc = mp_err_set(err, MP_EEXEC, "vector cannot contain metrics with the same labelset");
    mp_free(h);
    return rc;
}

/* Appends el with dst set to val (empty: deleted). */
static int push_with(struct qcall *c, const struct qsample *el, struct mp_str dst, struct mp_str val,
                     struct mp_err *err)
{
    mp_labels_builder_reset(c->lb, el->labels);
    struct mp_labels *ls = NULL;
    if (mp_labels_builder_set(c->lb, dst, val) || mp_labels_builder_labels(c->lb, &ls, NULL))
        return query_func_oom(err);
    bool drop = mp_str_eq(dst, MP_STR_LIT(MP_LABEL_METRIC_NAME)) ? false : el->drop_name;
    if (query_vec_push(c->out, ls, el->v, c->t_ms, drop))
        return query_func_oom(err);
    return 0;
}

static int replace_run(struct qcall *c, const struct mp_regex *re, struct mp_buf *res,
                       struct mp_err *err)
{
    const struct qvector *v = c->args[0].vec;
    struct mp_str dst = c->args[1].str, repl = c->args[2].str, src = c->args[3].str;
    size_t from = c->out->n;
    for (size_t i = 0; i < v->n; i++) {
        const struct qsample *el = &v->s[i];
        mp_buf_reset(res);
        int m = mp_regex_expand(re, mp_labels_get(el->labels, src), repl, res);
        if (m < 0)
            return query_func_oom(err);
        int rc = m == 0 ? query_func_push_kept(c, el->labels, el->drop_name, el->v, err)
                        : push_with(c, el, dst, (struct mp_str){res->data ? res->data : "", res->len},
                                    err);
        if (rc)
            return rc;
    }
    return check_duplicates(c, from, err);
}

int query_func_label_replace(struct qcall *c, struct mp_err *err)
{
    struct mp_str dst = c->args[1].str, regex = c->args[4].str;
    struct mp_regex *re = NULL;
    struct mp_err rerr = {0};
    int rc = mp_regex_compile(regex, 0, &re, &rerr);
    if (rc == MP_ENOMEM)
        return query_func_oom(err);
    if (rc)
        return name_error(err, "invalid regular expression in label_replace()", regex);
    if (!mp_label_name_is_valid(dst)) {
        mp_regex_destroy(re);
        return name_error(err, "invalid destination label name in label_replace()", dst);
    }
    struct mp_buf res;
    mp_buf_init(&res, 0);
    rc = replace_run(c, re, &res, err);
    mp_buf_fini(&res);
    mp_regex_destroy(re);
    return rc;
}

int query_func_label_join(struct qcall *c, struct mp_err *err)
{
    struct mp_str dst = c->args[1].str, sep = c->args[2].str;
    for (size_t i = 3; i < c->nargs; i++)
        if (!mp_label_name_is_valid(c->args[i].str))
            return name_error(err, "invalid source label name in label_join()", c->args[i].str);
    if (!mp_label_name_is_valid(dst))
        return name_error(err, "invalid destination label name in label_join()", dst);
    const struct qvector *v = c->args[0].vec;
    struct mp_buf b;
    mp_buf_init(&b, 0);
    int rc = 0;
    for (size_t i = 0; i < v->n && rc == 0; i++) {
        mp_buf_reset(&b);
        for (size_t k = 3; k < c->nargs && rc == 0; k++) {
            struct mp_str val = mp_labels_get(v->s[i].labels, c->args[k].str);
            if (k > 3)
                rc = mp_buf_append(&b, sep.ptr, sep.len);
            if (rc == 0)
                rc = mp_buf_append(&b, val.ptr, val.len);
        }
        if (rc) {
            rc = query_func_oom(err);
            break;
        }
        rc = push_with(c, &v->s[i], dst, (struct mp_str){b.data ? b.data : "", b.len}, err);
    }
    mp_buf_fini(&b);
    return rc;
}
