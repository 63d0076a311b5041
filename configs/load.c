/* SPDX-License-Identifier: Apache-2.0 */
/* configs/load.c: entry points. Reads the file (capped), lets libyaml build the document
 * tree, runs the schema over it and hands out the finished, immutable config. A failure at
 * any point frees the partial config through its arena. */
#include "configs/config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "configs/internal.h"

static int yaml_error(struct mp_err *err, const char *name, const yaml_parser_t *p)
{
    const char *problem = p->problem ? p->problem : "invalid YAML";
    if (p->error == YAML_MEMORY_ERROR)
        return mp_err_set(err, MP_ENOMEM, "%s: out of memory", name);
    const yaml_mark_t *m = &p->problem_mark;
    if (p->context)
        return mp_err_set(err, MP_EPARSE, "%s:%zu:%zu: yaml: %s %s", name, m->line + 1,
                          m->column + 1, problem, p->context);
    return mp_err_set(err, MP_EPARSE, "%s:%zu:%zu: yaml: %s", name, m->line + 1, m->column + 1,
                      problem);
}

int cfg_config_load_buf(const char *name, const char *buf, size_t len, struct cfg_config **out,
                        struct mp_err *err)
{
    *out = NULL;
    if (!name)
        name = "<config>";
    struct cfg_config *cfg = mp_calloc(1, sizeof *cfg);
    if (!cfg)
        return mp_err_set(err, MP_ENOMEM, "%s: out of memory", name);
    cfg->source = cfg_arena_strndup(cfg, name, strlen(name));
    if (!cfg->source) {
        cfg_config_destroy(cfg);
        return mp_err_set(err, MP_ENOMEM, "%s: out of memory", name);
    }

    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        cfg_config_destroy(cfg);
        return mp_err_set(err, MP_ENOMEM, "%s: out of memory", name);
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)(len ? buf : ""), len);
    if (!yaml_parser_load(&parser, &doc)) {
        int rc = yaml_error(err, name, &parser);
        yaml_parser_delete(&parser);
        cfg_config_destroy(cfg);
        return rc;
    }
    size_t nodes = (size_t)(doc.nodes.top - doc.nodes.start);
    struct cfg_loader L = {
        .name = name,
        .doc = &doc,
        .cfg = cfg,
        .err = err,
        .budget = 4 * nodes + 100000,
    };
    int rc = cfg_schema_load(&L, yaml_document_get_root_node(&doc));
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (rc != 0) {
        cfg_config_destroy(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

int cfg_config_load_file(const char *path, struct cfg_config **out, struct mp_err *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return mp_err_set(err, MP_EIO, "open %s: %s", path, strerror(errno));
    size_t cap = 4096, len = 0;
    char *buf = mp_malloc(cap);
    if (!buf) {
        fclose(f);
        return mp_err_set(err, MP_ENOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (len == cap) {
            if (cap >= CFG_MAX_FILE_BYTES) {
                mp_free(buf);
                fclose(f);
                return mp_err_set(err, MP_ELIMIT, "%s: file larger than %zu bytes", path,
                                  (size_t)CFG_MAX_FILE_BYTES);
            }
            char *nb = mp_realloc(buf, cap * 2);
            if (!nb) {
                mp_free(buf);
                fclose(f);
                return mp_err_set(err, MP_ENOMEM, "%s: out of memory", path);
            }
            buf = nb;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f)) {
                mp_free(buf);
                fclose(f);
                return mp_err_set(err, MP_EIO, "read %s: %s", path, strerror(errno));
            }
            break;
        }
    }
    fclose(f);
    int rc = cfg_config_load_buf(path, buf, len, out, err);
    mp_free(buf);
    return rc;
}

void cfg_config_destroy(struct cfg_config *cfg)
{
    if (!cfg)
        return;
    cfg_arena_free_all(cfg);
    mp_free(cfg);
}

const struct cfg_scrape_config *cfg_config_find_job(const struct cfg_config *cfg,
                                                    const char *job_name)
{
    for (size_t i = 0; i < cfg->nscrape_configs; i++)
        if (strcmp(cfg->scrape_configs[i].job_name, job_name) == 0)
            return &cfg->scrape_configs[i];
    return NULL;
}
