/* SPDX-License-Identifier: Apache-2.0 */
/* query/value.c: instant vectors, annotations and results (eval.h, query.h). */
#include "query/eval.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"

int query_vec_push(struct qvector *v, struct mp_labels *ls, double val, int64_t t_ms, bool drop_name)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        struct qsample *s = mp_realloc(v->s, cap * sizeof *s);
        if (!s) {
            mp_labels_release(ls);
            return MP_ENOMEM;
        }
        v->s = s;
        v->cap = cap;
    }
    v->s[v->n++] = (struct qsample){.labels = ls, .v = val, .t_ms = t_ms, .drop_name = drop_name};
    return 0;
}

void query_vec_clear(struct qvector *v)
{
    for (size_t i = 0; i < v->n; i++)
        mp_labels_release(v->s[i].labels);
    v->n = 0;
}

void query_vec_fini(struct qvector *v)
{
    query_vec_clear(v);
    mp_free(v->s);
    *v = (struct qvector){0};
}

static int add_msg(char ***list, size_t *n, const char *msg)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*list)[i], msg) == 0)
            return 0;
    char **l = mp_realloc(*list, (*n + 1) * sizeof *l);
    if (!l)
        return MP_ENOMEM;
    *list = l;
    size_t len = strlen(msg) + 1;
    l[*n] = mp_malloc(len);
    if (!l[*n])
        return MP_ENOMEM;
    memcpy(l[*n], msg, len);
    (*n)++;
    return 0;
}

int query_annots_add(struct qannots *a, bool warning, const char *fmt, ...)
{
    struct mp_buf b;
    mp_buf_init(&b, 0);
    int rc = mp_buf_append_str(&b, warning ? "PromQL warning: " : "PromQL info: ");
    if (rc == 0) {
        va_list ap;
        va_start(ap, fmt);
        char tmp[1024];
        int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
        va_end(ap);
        rc = mp_buf_append(&b, tmp, n < 0 ? 0 : (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
    }
    if (rc == 0)
        rc = mp_buf_append(&b, "", 1);
    if (rc == 0)
        rc = warning ? add_msg(&a->warnings, &a->nwarnings, b.data)
                     : add_msg(&a->infos, &a->ninfos, b.data);
    mp_buf_fini(&b);
    return rc;
}

static void free_list(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        mp_free(l[i]);
    mp_free(l);
}

void query_annots_move(struct qannots *a, struct query_result *r)
{
    free_list(r->warnings, r->nwarnings);
    free_list(r->infos, r->ninfos);
    r->warnings = a->warnings;
    r->nwarnings = a->nwarnings;
    r->infos = a->infos;
    r->ninfos = a->ninfos;
    *a = (struct qannots){0};
}

void query_annots_fini(struct qannots *a)
{
    free_list(a->warnings, a->nwarnings);
    free_list(a->infos, a->ninfos);
    *a = (struct qannots){0};
}

struct mp_labels *query_drop_name(struct mp_labels_builder *lb, struct mp_labels *ls)
{
    struct mp_str name = MP_STR_LIT("__name__");
    if (!mp_labels_has(ls, name))
        return ls;
    mp_labels_builder_reset(lb, ls);
    mp_labels_builder_del(lb, name);
    struct mp_labels *out = NULL;
    int rc = mp_labels_builder_labels(lb, &out, NULL);
    mp_labels_release(ls);
    return rc == 0 ? out : NULL;
}

void query_result_fini(struct query_result *r)
{
    for (size_t i = 0; i < r->nseries; i++) {
        mp_labels_release(r->series[i].labels);
        mp_free(r->series[i].points);
    }
    mp_free(r->series);
    mp_free(r->string);
    free_list(r->warnings, r->nwarnings);
    free_list(r->infos, r->ninfos);
    mp_free(r->stats.samples_per_step);
    *r = (struct query_result){0};
}
