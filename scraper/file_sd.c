/* SPDX-License-Identifier: Apache-2.0 */
/* scraper/file_sd.c: file_sd_configs (Prometheus discovery/file). Each provider thread
 * expands its patterns (glob(3)) and reads every matching file on start, every
 * refresh_interval, and whenever inotify reports a change in a directory of a pattern. A file
 * whose bytes did not change is not re-parsed. A file is a JSON (.json) or YAML (.yml,
 * .yaml) list of {"targets": [...], "labels": {...}}; group i of file p has source "p:i" and
 * the extra label __meta_filepath = p. A file that fails to read or parse keeps its previous
 * groups (Prometheus logs and counts prometheus_sd_file_read_errors_total); a file that
 * disappeared, or now has fewer groups, gets empty groups for the sources it no longer has. */
#define _GNU_SOURCE
#include "scraper/sd_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <json-c/json.h>
#include <libgen.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/time.h"
#include "configs/config.h"

#define FILE_LIMIT ((size_t)64 << 20)

/* ---- parsing -------------------------------------------------------------------------------- */

/* A neutral representation both parsers fill. */
struct raw_group {
    char **targets;
    size_t ntargets;
    struct mp_label *labels; /* owned strings (cast away const on free) */
    size_t nlabels;
};

static void raw_group_fini(struct raw_group *g)
{
    for (size_t i = 0; i < g->ntargets; i++)
        mp_free(g->targets[i]);
    mp_free(g->targets);
    for (size_t i = 0; i < g->nlabels; i++) {
        mp_free((char *)g->labels[i].name.ptr);
        mp_free((char *)g->labels[i].value.ptr);
    }
    mp_free(g->labels);
    memset(g, 0, sizeof *g);
}

static void raw_add_target(struct raw_group *g, const char *s, size_t n)
{
    g->targets = mp_xrealloc(g->targets, (g->ntargets + 1) * sizeof *g->targets);
    g->targets[g->ntargets++] = mp_xstrndup(s, n);
}

static void raw_add_label(struct raw_group *g, const char *k, size_t kn, const char *v, size_t vn)
{
    g->labels = mp_xrealloc(g->labels, (g->nlabels + 1) * sizeof *g->labels);
    g->labels[g->nlabels++] = (struct mp_label){{mp_xstrndup(k, kn), kn}, {mp_xstrndup(v, vn), vn}};
}

static bool label_name_ok(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

static int parse_json(const char *data, size_t len, struct raw_group **out, size_t *nout,
                      struct mp_err *err)
{
    struct json_tokener *tok = json_tokener_new_ex(32);
    json_object *root = json_tokener_parse_ex(tok, data, (int)len);
    enum json_tokener_error je = json_tokener_get_error(tok);
    json_tokener_free(tok);
    int rc = 0;
    if (root == NULL || je != json_tokener_success) {
        rc = mp_err_set(err, MP_EPARSE, "invalid JSON: %s",
                        je == json_tokener_continue ? "unexpected end of JSON input"
                                                    : json_tokener_error_desc(je));
        goto done;
    }
    if (!json_object_is_type(root, json_type_array)) {
        rc = mp_err_set(err, MP_EPARSE, "expected a list of target groups");
        goto done;
    }
    size_t n = json_object_array_length(root);
    *out = mp_xcalloc(n ? n : 1, sizeof **out);
    *nout = n;
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_object *g = json_object_array_get_idx(root, i), *t = NULL, *l = NULL;
        struct raw_group *rg = &(*out)[i];
        if (!json_object_is_type(g, json_type_object)) {
            rc = mp_err_set(err, MP_EPARSE, "group %zu: expected an object", i);
            break;
        }
        json_object_object_foreach(g, key, val)
        {
            if (strcmp(key, "targets") == 0)
                t = val;
            else if (strcmp(key, "labels") == 0)
                l = val;
            else
                rc = mp_err_set(err, MP_EPARSE, "group %zu: unknown field %s", i, key);
        }
        if (t != NULL && !json_object_is_type(t, json_type_null)) {
            if (!json_object_is_type(t, json_type_array)) {
                rc = mp_err_set(err, MP_EPARSE, "group %zu: targets must be a list", i);
                break;
            }
            for (size_t j = 0; j < json_object_array_length(t); j++) {
                json_object *s = json_object_array_get_idx(t, j);
                if (!json_object_is_type(s, json_type_string)) {
                    rc = mp_err_set(err, MP_EPARSE, "group %zu: target %zu is not a string", i,
                                    j);
                    break;
                }
                raw_add_target(rg, json_object_get_string(s),
                               (size_t)json_object_get_string_len(s));
            }
        }
        if (rc == 0 && l != NULL && !json_object_is_type(l, json_type_null)) {
            if (!json_object_is_type(l, json_type_object)) {
                rc = mp_err_set(err, MP_EPARSE, "group %zu: labels must be a map", i);
                break;
            }
            json_object_object_foreach(l, lk, lv)
            {
                if (!json_object_is_type(lv, json_type_string)) {
                    rc = mp_err_set(err, MP_EPARSE, "group %zu: label %s is not a string", i,
                                    lk);
                    break;
                }
                raw_add_label(rg, lk, strlen(lk), json_object_get_string(lv),
                              (size_t)json_object_get_string_len(lv));
            }
        }
    }
done:
    json_object_put(root);
    return rc;
}

static bool yscalar(yaml_document_t *d, yaml_node_t *n, const char **s, size_t *len)
{
    (void)d;
    if (n == NULL || n->type != YAML_SCALAR_NODE)
        return false;
    *s = (const char *)n->data.scalar.value;
    *len = n->data.scalar.length;
    return true;
}

static bool ynull(yaml_node_t *n)
{
    return n != NULL && n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           (n->data.scalar.length == 0 || strcmp((const char *)n->data.scalar.value, "null") == 0 ||
            strcmp((const char *)n->data.scalar.value, "~") == 0);
}

static int parse_yaml(const char *data, size_t len, struct raw_group **out, size_t *nout,
                      struct mp_err *err)
{
    yaml_parser_t p;
    yaml_document_t d;
    if (!yaml_parser_initialize(&p))
        return mp_err_set(err, MP_ENOMEM, "yaml parser");
    yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
    if (!yaml_parser_load(&p, &d)) {
        int rc = mp_err_set(err, MP_EPARSE, "invalid YAML: %s at line %zu",
                            p.problem ? p.problem : "error", p.problem_mark.line + 1);
        yaml_parser_delete(&p);
        return rc;
    }
    int rc = 0;
    yaml_node_t *root = yaml_document_get_root_node(&d);
    if (root == NULL || ynull(root)) {
        *out = mp_xcalloc(1, sizeof **out);
        *nout = 0;
        goto done;
    }
    if (root->type != YAML_SEQUENCE_NODE) {
        rc = mp_err_set(err, MP_EPARSE, "expected a list of target groups");
        goto done;
    }
    size_t n = (size_t)(root->data.sequence.items.top - root->data.sequence.items.start);
    *out = mp_xcalloc(n ? n : 1, sizeof **out);
    *nout = n;
    for (size_t i = 0; i < n && rc == 0; i++) {
        yaml_node_t *g = yaml_document_get_node(&d, root->data.sequence.items.start[i]);
        struct raw_group *rg = &(*out)[i];
        if (g == NULL || g->type != YAML_MAPPING_NODE) {
            rc = mp_err_set(err, MP_EPARSE, "group %zu: expected a map", i);
            break;
        }
        for (yaml_node_pair_t *pr = g->data.mapping.pairs.start;
             pr < g->data.mapping.pairs.top && rc == 0; pr++) {
            yaml_node_t *k = yaml_document_get_node(&d, pr->key);
            yaml_node_t *v = yaml_document_get_node(&d, pr->value);
            const char *ks;
            size_t kl;
            if (!yscalar(&d, k, &ks, &kl)) {
                rc = mp_err_set(err, MP_EPARSE, "group %zu: bad key", i);
                break;
            }
            if (ynull(v))
                continue;
            if (kl == 7 && memcmp(ks, "targets", 7) == 0) {
                if (v->type != YAML_SEQUENCE_NODE) {
                    rc = mp_err_set(err, MP_EPARSE, "group %zu: targets must be a list", i);
                    break;
                }
                for (yaml_node_item_t *it = v->data.sequence.items.start;
                     it < v->data.sequence.items.top; it++) {
                    const char *s;
                    size_t sl;
                    if (!yscalar(&d, yaml_document_get_node(&d, *it), &s, &sl)) {
                        rc = mp_err_set(err, MP_EPARSE, "group %zu: a target is not a string",
                                        i);
                        break;
                    }
                    raw_add_target(rg, s, sl);
                }
            } else if (kl == 6 && memcmp(ks, "labels", 6) == 0) {
                if (v->type != YAML_MAPPING_NODE) {
                    rc = mp_err_set(err, MP_EPARSE, "group %zu: labels must be a map", i);
                    break;
                }
                for (yaml_node_pair_t *lp = v->data.mapping.pairs.start;
                     lp < v->data.mapping.pairs.top; lp++) {
                    const char *a, *b;
                    size_t al, bl;
                    if (!yscalar(&d, yaml_document_get_node(&d, lp->key), &a, &al) ||
                        !yscalar(&d, yaml_document_get_node(&d, lp->value), &b, &bl)) {
                        rc = mp_err_set(err, MP_EPARSE, "group %zu: labels must be strings", i);
                        break;
                    }
                    raw_add_label(rg, a, al, b, bl);
                }
            } else {
                rc = mp_err_set(err, MP_EPARSE, "group %zu: field %.*s not found", i, (int)kl,
                                ks);
            }
        }
    }
done:
    yaml_document_delete(&d);
    yaml_parser_delete(&p);
    return rc;
}

static int build_group(const char *path, size_t idx, const struct raw_group *rg,
                       struct scrape_target_group *g, struct mp_err *err)
{
    memset(g, 0, sizeof *g);
    for (size_t i = 0; i < rg->nlabels; i++)
        if (!label_name_ok(rg->labels[i].name.ptr, rg->labels[i].name.len))
            return mp_err_set(err, MP_EPARSE, "\"%s\" is not a valid label name",
                              rg->labels[i].name.ptr);
    size_t n = strlen(path) + 24;
    g->source = mp_xmalloc(n);
    snprintf(g->source, n, "%s:%zu", path, idx);
    struct mp_label *ls = mp_xcalloc(rg->nlabels + 1, sizeof *ls);
    size_t nl = 0;
    for (size_t i = 0; i < rg->nlabels; i++)
        if (strcmp(rg->labels[i].name.ptr, "__meta_filepath") != 0)
            ls[nl++] = rg->labels[i];
    ls[nl++] = (struct mp_label){MP_STR_LIT("__meta_filepath"), mp_str_c(path)};
    int rc = mp_labels_create(ls, nl, &g->group_labels, err);
    mp_free(ls);
    if (rc == 0 && rg->ntargets > 0) {
        g->targets = mp_xcalloc(rg->ntargets, sizeof *g->targets);
        for (size_t i = 0; i < rg->ntargets && rc == 0; i++) {
            struct mp_label a = {MP_STR_LIT("__address__"), mp_str_c(rg->targets[i])};
            rc = mp_labels_create(&a, 1, &g->targets[i], err);
            if (rc == 0)
                g->ntargets++;
        }
    }
    if (rc != 0) {
        scrape_target_group_fini(g);
        return mp_err_set(err, rc, "building labels: %s", mp_strerror(rc));
    }
    return 0;
}

int scrape_file_sd_parse(const char *path, const char *data, size_t len, bool json,
                         struct scrape_target_group **groups, size_t *n, struct mp_err *err)
{
    struct raw_group *raw = NULL;
    size_t nraw = 0;
    int rc = json ? parse_json(data, len, &raw, &nraw, err) : parse_yaml(data, len, &raw, &nraw, err);
    struct scrape_target_group *out = NULL;
    size_t nout = 0;
    if (rc == 0 && nraw > 0) {
        out = mp_xcalloc(nraw, sizeof *out);
        for (size_t i = 0; i < nraw && rc == 0; i++) {
            rc = build_group(path, i, &raw[i], &out[i], err);
            if (rc == 0)
                nout++;
        }
    }
    for (size_t i = 0; i < nraw; i++)
        raw_group_fini(&raw[i]);
    mp_free(raw);
    if (rc != 0) {
        for (size_t i = 0; i < nout; i++)
            scrape_target_group_fini(&out[i]);
        mp_free(out);
        return rc;
    }
    size_t old = *n;
    if (nout > 0) {
        *groups = mp_xrealloc(*groups, (old + nout) * sizeof **groups);
        memcpy(*groups + old, out, nout * sizeof *out);
        *n = old + nout;
    }
    mp_free(out);
    return 0;
}

/* ---- the provider --------------------------------------------------------------------------- */

struct known_file {
    char *path;
    uint64_t hash; /* of the content last parsed successfully (or attempted) */
    size_t len;
    size_t ngroups; /* groups it has now */
    uint64_t gen;
};

struct scrape_file_sd {
    struct scrape_sd_sink *sink;
    struct scrape_sd_metrics *metrics;
    char **patterns;
    size_t npatterns;
    int64_t refresh_ms;
    struct known_file *files;
    size_t nfiles;
    uint64_t gen;
    int ino;          /* inotify fd or -1 */
    int stop_pipe[2]; /* write end wakes the thread */
    pthread_t th;
    bool started;
};

static uint64_t content_hash(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

static bool is_json_path(const char *p)
{
    size_t n = strlen(p);
    return n >= 5 && strcasecmp(p + n - 5, ".json") == 0;
}

static struct known_file *known_get(struct scrape_file_sd *f, const char *path)
{
    for (size_t i = 0; i < f->nfiles; i++)
        if (strcmp(f->files[i].path, path) == 0)
            return &f->files[i];
    f->files = mp_xrealloc(f->files, (f->nfiles + 1) * sizeof *f->files);
    struct known_file *k = &f->files[f->nfiles++];
    memset(k, 0, sizeof *k);
    k->path = mp_xstrdup(path);
    return k;
}

/* Empty groups for sources path:from .. path:to-1. */
static void clear_groups(struct scrape_file_sd *f, const char *path, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        struct scrape_target_group g = {0};
        size_t n = strlen(path) + 24;
        g.source = mp_xmalloc(n);
        snprintf(g.source, n, "%s:%zu", path, i);
        g.group_labels = mp_labels_empty();
        scrape_sd_sink_update(f->sink, &g);
    }
}

static void read_error(struct scrape_file_sd *f, const char *path, const char *msg)
{
    MP_LOG_ERROR("file SD: error reading file", MP_KV_STR("path", path), MP_KV_STR("err", msg));
    if (f->metrics != NULL && f->metrics->file_read_errors != NULL)
        mp_counter_inc(f->metrics->file_read_errors);
}

static void refresh_file(struct scrape_file_sd *f, const char *path)
{
    struct known_file *k = known_get(f, path);
    k->gen = f->gen;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        read_error(f, path, strerror(errno));
        return;
    }
    struct mp_buf b;
    mp_buf_init(&b, FILE_LIMIT);
    char chunk[65536];
    ssize_t r;
    int rc = 0;
    while ((r = read(fd, chunk, sizeof chunk)) > 0 && rc == 0)
        rc = mp_buf_append(&b, chunk, (size_t)r);
    close(fd);
    if (r < 0 || rc != 0) {
        read_error(f, path, r < 0 ? strerror(errno) : "file too large");
        mp_buf_fini(&b);
        return;
    }
    uint64_t h = content_hash(b.data ? b.data : "", b.len);
    if (k->hash == h && k->len == b.len && k->hash != 0) {
        mp_buf_fini(&b);
        return;
    }
    k->hash = h;
    k->len = b.len;
    struct scrape_target_group *gs = NULL;
    size_t n = 0;
    struct mp_err err;
    mp_err_clear(&err);
    rc = scrape_file_sd_parse(path, b.data ? b.data : "", b.len, is_json_path(path), &gs, &n, &err);
    mp_buf_fini(&b);
    if (rc != 0) {
        read_error(f, path, err.msg);
        return; /* keep the previous groups */
    }
    for (size_t i = 0; i < n; i++)
        scrape_sd_sink_update(f->sink, &gs[i]);
    mp_free(gs);
    if (n < k->ngroups)
        clear_groups(f, path, n, k->ngroups);
    k->ngroups = n;
}

static void refresh(struct scrape_file_sd *f)
{
    f->gen++;
    for (size_t i = 0; i < f->npatterns; i++) {
        glob_t g;
        memset(&g, 0, sizeof g);
        if (glob(f->patterns[i], GLOB_NOSORT, NULL, &g) == 0)
            for (size_t j = 0; j < g.gl_pathc; j++)
                refresh_file(f, g.gl_pathv[j]);
        globfree(&g);
    }
    /* files that vanished */
    for (size_t i = 0; i < f->nfiles;) {
        struct known_file *k = &f->files[i];
        if (k->gen == f->gen) {
            i++;
            continue;
        }
        clear_groups(f, k->path, 0, k->ngroups);
        mp_free(k->path);
        f->files[i] = f->files[--f->nfiles];
    }
    if (f->metrics != NULL && f->metrics->file_scans != NULL)
        mp_counter_inc(f->metrics->file_scans);
}

static void *file_main(void *arg)
{
    struct scrape_file_sd *f = arg;
    refresh(f);
    scrape_sd_sink_ready(f->sink);
    int64_t next = mp_mono_ns() / 1000000 + f->refresh_ms;
    for (;;) {
        struct pollfd p[2] = {{f->stop_pipe[0], POLLIN, 0}, {f->ino, POLLIN, 0}};
        int64_t now = mp_mono_ns() / 1000000;
        int timeout = next > now ? (int)(next - now > 3600000 ? 3600000 : next - now) : 0;
        int pr = poll(p, f->ino >= 0 ? 2 : 1, timeout);
        if (pr < 0 && errno != EINTR)
            break;
        if (p[0].revents != 0)
            break;
        if (f->ino >= 0 && (p[1].revents & POLLIN)) {
            char buf[4096];
            while (read(f->ino, buf, sizeof buf) > 0) {
            }
            refresh(f);
        }
        if (mp_mono_ns() / 1000000 >= next) {
            refresh(f);
            next = mp_mono_ns() / 1000000 + f->refresh_ms;
        }
    }
    return NULL;
}

int scrape_file_sd_create(const struct cfg_file_sd *c, const struct scrape_sd_provider_env *env,
                          struct scrape_file_sd **out, struct mp_err *err)
{
    *out = NULL;
    struct scrape_file_sd *f = mp_xcalloc(1, sizeof *f);
    f->sink = env->sink;
    f->metrics = env->metrics;
    f->refresh_ms = c->refresh_interval_ms > 0 ? c->refresh_interval_ms : 300000;
    f->npatterns = c->nfiles;
    f->patterns = mp_xcalloc(c->nfiles ? c->nfiles : 1, sizeof *f->patterns);
    for (size_t i = 0; i < c->nfiles; i++)
        f->patterns[i] = mp_xstrdup(c->files[i]);
    f->stop_pipe[0] = f->stop_pipe[1] = -1;
    f->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    for (size_t i = 0; f->ino >= 0 && i < c->nfiles; i++) {
        char *tmp = mp_xstrdup(c->files[i]);
        const char *dir = dirname(tmp);
        if (inotify_add_watch(f->ino, dir,
                              IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
                                  IN_DELETE | IN_MODIFY) < 0)
            MP_LOG_WARN("file SD: cannot watch directory", MP_KV_STR("dir", dir),
                        MP_KV_STR("err", strerror(errno)));
        mp_free(tmp);
    }
    if (pipe2(f->stop_pipe, O_CLOEXEC) != 0 ||
        pthread_create(&f->th, NULL, file_main, f) != 0) {
        scrape_file_sd_destroy(f);
        return mp_err_set(err, MP_EIO, "file SD: cannot start: %s", strerror(errno));
    }
    f->started = true;
    *out = f;
    return 0;
}

void scrape_file_sd_destroy(struct scrape_file_sd *f)
{
    if (f == NULL)
        return;
    if (f->started) {
        ssize_t w = write(f->stop_pipe[1], "x", 1);
        (void)w;
        pthread_join(f->th, NULL);
    }
    for (int i = 0; i < 2; i++)
        if (f->stop_pipe[i] >= 0)
            close(f->stop_pipe[i]);
    if (f->ino >= 0)
        close(f->ino);
    for (size_t i = 0; i < f->npatterns; i++)
        mp_free(f->patterns[i]);
    mp_free(f->patterns);
    for (size_t i = 0; i < f->nfiles; i++)
        mp_free(f->files[i].path);
    mp_free(f->files);
    mp_free(f);
}
