/* SPDX-License-Identifier: Apache-2.0 */
/* configs/internal.h: private to configs/ and tests/configs/.
 *
 * The loader walks a libyaml document tree guided by tables: one struct cfg_type per Go
 * config type, one struct cfg_field row per YAML key (key, kind, member offset, sub-type).
 * The generic engine (decode.c) handles keys, merges, duplicate keys, types and positions;
 * schema.c holds the tables, defaults and the per-type checks; emit.c prints a config back.
 * Every allocation lives in the config's arena (arena.c), so a failed load frees it all. */
#ifndef CONFIGS_INTERNAL_H
#define CONFIGS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "configs/config.h"
#include "common/err.h"
#include "common/str.h"

/* ---- arena ---- */
struct cfg_arena_blk {
    struct cfg_arena_blk *next;
    max_align_t data[];
};

struct cfg_regex_ref {
    struct cfg_regex_ref *next;
    struct mp_regex *re;
};

/* NULL on OOM. Zeroed. */
void *cfg_arena_alloc(struct cfg_config *cfg, size_t n);
void *cfg_arena_array(struct cfg_config *cfg, size_t count, size_t size);
char *cfg_arena_strndup(struct cfg_config *cfg, const char *s, size_t n);
void cfg_arena_free_all(struct cfg_config *cfg);

/* ---- loader state ---- */
struct cfg_loader {
    const char *name;         /* file name for messages */
    yaml_document_t *doc;
    struct cfg_config *cfg;
    struct mp_err *err;
    size_t budget;            /* node visits left; aliases cannot blow the work up */
    int merge_depth;
    unsigned tokens;
};

/* Formats "NAME:LINE:COL: message" at node n (n may be NULL: no position). MP_EPARSE. */
int cfg_fail(struct cfg_loader *L, const yaml_node_t *n, const char *fmt, ...) MP_PRINTF(3, 4);
int cfg_oom(struct cfg_loader *L);

enum cfg_fkind {
    CFG_F_STR,        /* char *; any scalar; null -> "" */
    CFG_F_BOOL,       /* bool */
    CFG_F_DUR,        /* int64_t ms, Prometheus duration string */
    CFG_F_SIZE,       /* size_t, non-negative integer (Go uint) */
    CFG_F_U64,        /* uint64_t */
    CFG_F_INT,        /* int (Go int) */
    CFG_F_I64,        /* int64_t */
    CFG_F_FLOAT,      /* double */
    CFG_F_BYTES,      /* size_t, units.Base2Bytes: 1024, 10MB, 1KiB */
    CFG_F_STRLIST,    /* char **, count at count_off */
    CFG_F_LABELS,     /* struct cfg_label *, names must be valid label names, sorted */
    CFG_F_STRMAP,     /* struct cfg_label *, any keys, sorted */
    CFG_F_MULTIMAP,   /* struct cfg_multi *, map[string][]string, sorted */
    CFG_F_STRUCT,     /* embedded struct of type `type` */
    CFG_F_PTR,        /* pointer to struct of type `type`; null leaves it NULL */
    CFG_F_LIST,       /* array of `type`, count at count_off */
    CFG_F_CUSTOM,     /* custom(L, node, member) */
};

struct cfg_type;
struct cfg_seen;

typedef int (*cfg_custom_fn)(struct cfg_loader *L, const yaml_node_t *n, void *member);

struct cfg_field {
    const char *key;
    enum cfg_fkind kind;
    size_t off;
    size_t count_off;
    const struct cfg_type *type;
    cfg_custom_fn custom;
    const char *null_elem_msg; /* CFG_F_LIST: message for a null element */
};

struct cfg_inline {
    const struct cfg_type *type;
    size_t off;
};

#define CFG_SEEN_MAX 96

/* Keys present in one mapping (after merges), with their value nodes, for the checks. */
struct cfg_seen {
    const yaml_node_t *self;  /* the mapping node */
    size_t n;
    const struct cfg_field *field[CFG_SEEN_MAX];
    const yaml_node_t *key[CFG_SEEN_MAX];
    const yaml_node_t *value[CFG_SEEN_MAX];
    unsigned token[CFG_SEEN_MAX];
};

struct cfg_type {
    const char *go_name;      /* for "field X not found in type Y" */
    size_t size;
    const struct cfg_field *fields;
    size_t nfields;
    const struct cfg_inline *inlines;
    size_t ninlines;
    void (*init)(void *obj);  /* defaults before the keys are applied */
    int (*check)(struct cfg_loader *L, void *obj, const struct cfg_seen *seen);
};

/* Decodes mapping node n into obj (already initialised by the caller). */
int cfg_decode_struct(struct cfg_loader *L, const yaml_node_t *n, const struct cfg_type *t,
                      void *obj);
/* Value node of key in seen, or NULL; the key node if want_key. */
const yaml_node_t *cfg_seen_value(const struct cfg_seen *s, const char *key);
const yaml_node_t *cfg_seen_key(const struct cfg_seen *s, const char *key);
/* Position to blame for key (key node if present, else the mapping). */
const yaml_node_t *cfg_seen_at(const struct cfg_seen *s, const char *key);

/* Scalar helpers (yaml.v2 / YAML 1.1 resolution). */
bool cfg_node_is_null(const yaml_node_t *n);
/* Reads a string scalar; null -> "". MP_EPARSE when n is not a scalar. */
int cfg_node_string(struct cfg_loader *L, const yaml_node_t *n, char **out);
const yaml_node_t *cfg_node(struct cfg_loader *L, int index);

/* Index (document order) of the first name equal to an earlier one, or SIZE_MAX; names are
 * read at names + i * stride. MP_ENOMEM. */
int cfg_first_duplicate(const char *const *names, size_t stride, size_t n, bool nocase,
                        size_t *dup);

/* Go %q of s into buf (truncated to fit). */
void cfg_quote(const char *s, char *buf, size_t cap);

/* Root type and the top-level driver (schema.c). */
int cfg_schema_load(struct cfg_loader *L, const yaml_node_t *root);

/* Duration and byte-size printing in Prometheus's formats (emit.c). */
void cfg_format_bytes(size_t v, char *buf, size_t cap);
int cfg_parse_bytes(const char *s, size_t *out, const char **unit, size_t *ulen);

#endif
