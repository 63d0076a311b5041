/* SPDX-License-Identifier: Apache-2.0 */
/* configs/webconfig.c: --web.config.file (exporter-toolkit web config, protocols.md 4.11).
 * A small strict decoder over the libyaml document tree (the file has three sections and no
 * merges, so the prometheus.yml tables are not needed), bcrypt checks through libxcrypt and
 * the per-request gate: stat on every call, re-parse on change, cached bcrypt results. */
#include "configs/config.h"

#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <yaml.h>

#include "common/alloc.h"
#include "common/log.h"

/* Fixed hash checked for unknown users so that timing does not reveal which users exist. */
static const char dummy_hash[] = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

struct wc_loader {
    const char *name;
    yaml_document_t *doc;
    struct mp_err *err;
};

MP_PRINTF(3, 4)
static int wc_fail(struct wc_loader *L, const yaml_node_t *n, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n)
        return mp_err_set(L->err, MP_EPARSE, "%s:%zu:%zu: %s", L->name, n->start_mark.line + 1,
                          n->start_mark.column + 1, msg);
    return mp_err_set(L->err, MP_EPARSE, "%s: %s", L->name, msg);
}

static const yaml_node_t *wc_node(struct wc_loader *L, int i)
{
    return yaml_document_get_node(L->doc, i);
}

static bool is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
        n->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE)
        return false;
    const char *v = (const char *)n->data.scalar.value;
    return !*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
           strcmp(v, "NULL") == 0;
}

static const char *scalar(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* String scalar (null -> ""). */
static int wc_string(struct wc_loader *L, const yaml_node_t *n, const char *type, char **out)
{
    if (n->type != YAML_SCALAR_NODE)
        return wc_fail(L, n, "cannot unmarshal %s into Go value of type %s",
                       n->type == YAML_MAPPING_NODE ? "!!map" : "!!seq", type);
    const char *v = is_null(n) ? "" : scalar(n);
    *out = mp_xstrdup(v);
    if (!*out)
        return mp_err_set(L->err, MP_ENOMEM, "%s: out of memory", L->name);
    return 0;
}

static int wc_bool(struct wc_loader *L, const yaml_node_t *n, bool *out)
{
    static const char *const t[] = {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE",
                                    "on", "On", "ON"};
    static const char *const f[] = {"n", "N", "no", "No", "NO", "false", "False", "FALSE",
                                    "off", "Off", "OFF"};
    if (n->type == YAML_SCALAR_NODE && n->data.scalar.style != YAML_SINGLE_QUOTED_SCALAR_STYLE &&
        n->data.scalar.style != YAML_DOUBLE_QUOTED_SCALAR_STYLE) {
        if (is_null(n))
            return 0;
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
            if (strcmp(scalar(n), t[i]) == 0)
                return *out = true, 0;
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
            if (strcmp(scalar(n), f[i]) == 0)
                return *out = false, 0;
    }
    return wc_fail(L, n, "cannot unmarshal %s into Go value of type bool",
                   n->type == YAML_SCALAR_NODE ? "!!str" : "!!map");
}

/* Checks that n is a mapping (or null: *ok false) with unique scalar keys. */
static int wc_mapping(struct wc_loader *L, const yaml_node_t *n, const char *type, bool *ok)
{
    *ok = false;
    if (is_null(n))
        return 0;
    if (n->type != YAML_MAPPING_NODE)
        return wc_fail(L, n, "cannot unmarshal %s into Go value of type %s",
                       n->type == YAML_SCALAR_NODE ? "!!str" : "!!seq", type);
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = wc_node(L, p->key);
        if (!k || k->type != YAML_SCALAR_NODE)
            return wc_fail(L, k ? k : n, "mapping keys must be strings in type %s", type);
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++) {
            const yaml_node_t *k2 = wc_node(L, q->key);
            if (k2 && k2->type == YAML_SCALAR_NODE && strcmp(scalar(k), scalar(k2)) == 0)
                return wc_fail(L, k, "key \"%s\" already set in map", scalar(k));
        }
        if (!wc_node(L, p->value))
            return wc_fail(L, k, "missing value");
    }
    *ok = true;
    return 0;
}

/* Go bcrypt.Cost: "$2" [a|b|y] "$" NN "$" + 53 chars of the bcrypt alphabet, cost 4..31. */
static bool bcrypt_hash_valid(const char *h, const char **why)
{
    size_t n = strlen(h);
    if (n < 59) {
        *why = "crypto/bcrypt: hashedSecret too short to be a bcrypted password";
        return false;
    }
    if (h[0] != '$' || h[1] != '2' || !(h[2] == 'a' || h[2] == 'b' || h[2] == 'y') ||
        h[3] != '$') {
        *why = "crypto/bcrypt: bcrypt algorithm version must be 2a, 2b or 2y";
        return false;
    }
    if (h[4] < '0' || h[4] > '9' || h[5] < '0' || h[5] > '9' || h[6] != '$') {
        *why = "crypto/bcrypt: malformed cost";
        return false;
    }
    int cost = (h[4] - '0') * 10 + (h[5] - '0');
    if (cost < 4 || cost > 31) {
        *why = "crypto/bcrypt: cost out of range (4..31)";
        return false;
    }
    if (n != 60) {
        *why = "crypto/bcrypt: hash must be 60 characters";
        return false;
    }
    for (size_t i = 7; i < n; i++) {
        char c = h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '/')) {
            *why = "crypto/bcrypt: invalid character in hash";
            return false;
        }
    }
    return true;
}

static int kv_push(struct wc_loader *L, struct cfg_web_kv **arr, size_t *n, char *name,
                   char *value)
{
    struct cfg_web_kv *na = mp_realloc(*arr, (*n + 1) * sizeof **arr);
    if (!na) {
        mp_free(name);
        mp_free(value);
        return mp_err_set(L->err, MP_ENOMEM, "%s: out of memory", L->name);
    }
    *arr = na;
    na[*n].name = name;
    na[*n].value = value;
    (*n)++;
    return 0;
}

static const char *const allowed_headers[] = {"Strict-Transport-Security", "X-Content-Type-Options",
                                              "X-Frame-Options", "X-XSS-Protection",
                                              "Content-Security-Policy"};

static int decode_headers(struct wc_loader *L, const yaml_node_t *n, struct cfg_web_config *wc)
{
    bool ok;
    int rc = wc_mapping(L, n, "map[string]string", &ok);
    if (rc || !ok)
        return rc;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = wc_node(L, p->key), *v = wc_node(L, p->value);
        bool allowed = false;
        for (size_t i = 0; i < sizeof allowed_headers / sizeof allowed_headers[0]; i++)
            allowed = allowed || strcmp(scalar(k), allowed_headers[i]) == 0;
        if (!allowed)
            return wc_fail(L, k, "HTTP header \"%s\" can not be configured", scalar(k));
        char *val = NULL;
        if ((rc = wc_string(L, v, "string", &val)))
            return rc;
        if (strcmp(scalar(k), "X-Frame-Options") == 0 && strcasecmp(val, "deny") != 0 &&
            strcasecmp(val, "sameorigin") != 0) {
            rc = wc_fail(L, v,
                         "invalid value for X-Frame-Options. Expected one of: [\"deny\" "
                         "\"sameorigin\"], but got: \"%s\"",
                         val);
            mp_free(val);
            return rc;
        }
        if (strcmp(scalar(k), "X-Content-Type-Options") == 0 && strcasecmp(val, "nosniff") != 0) {
            rc = wc_fail(L, v,
                         "invalid value for X-Content-Type-Options. Expected \"nosniff\", "
                         "got: \"%s\"",
                         val);
            mp_free(val);
            return rc;
        }
        char *name = mp_xstrdup(scalar(k));
        if (!name) {
            mp_free(val);
            return mp_err_set(L->err, MP_ENOMEM, "%s: out of memory", L->name);
        }
        if ((rc = kv_push(L, &wc->headers, &wc->nheaders, name, val)))
            return rc;
    }
    return 0;
}

static int decode_http(struct wc_loader *L, const yaml_node_t *n, struct cfg_web_config *wc)
{
    bool ok;
    int rc = wc_mapping(L, n, "web.HTTPConfig", &ok);
    if (rc || !ok)
        return rc;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = wc_node(L, p->key), *v = wc_node(L, p->value);
        if (strcmp(scalar(k), "http2") == 0)
            rc = wc_bool(L, v, &wc->http2);
        else if (strcmp(scalar(k), "headers") == 0)
            rc = decode_headers(L, v, wc);
        else
            rc = wc_fail(L, k, "field %s not found in type web.HTTPConfig", scalar(k));
        if (rc)
            return rc;
    }
    return 0;
}

static int decode_tls_version(struct wc_loader *L, const yaml_node_t *v,
                              enum cfg_tls_version *out)
{
    static const char *const names[] = {"TLS10", "TLS11", "TLS12", "TLS13"};
    static const enum cfg_tls_version vals[] = {CFG_TLS10, CFG_TLS11, CFG_TLS12, CFG_TLS13};
    if (is_null(v))
        return 0;
    if (v->type == YAML_SCALAR_NODE)
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (strcmp(scalar(v), names[i]) == 0)
                return *out = vals[i], 0;
    return wc_fail(L, v, "unknown TLS version: %s",
                   v->type == YAML_SCALAR_NODE ? scalar(v) : "(not a string)");
}

/* TLS is applied when the server starts (see cfg_web_config_tls); per-request re-reads of
 * the file only affect auth and headers. */
static int decode_tls(struct wc_loader *L, const yaml_node_t *n, struct cfg_web_config *wc)
{
    static const char *const ignored[] = {"client_allowed_sans", "cipher_suites",
                                          "prefer_server_cipher_suites", "curve_preferences"};
    static const char *const auth_types[] = {"RequestClientCert", "RequireAnyClientCert",
                                             "VerifyClientCertIfGiven",
                                             "RequireAndVerifyClientCert"};
    bool ok;
    int rc = wc_mapping(L, n, "web.TLSConfig", &ok);
    if (rc || !ok)
        return rc;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = wc_node(L, p->key), *v = wc_node(L, p->value);
        const char *key = scalar(k);
        if (strcmp(key, "cert_file") == 0 || strcmp(key, "key_file") == 0) {
            char **dst = key[0] == 'c' ? &wc->tls_cert_file : &wc->tls_key_file;
            char *val = NULL;
            if ((rc = wc_string(L, v, "string", &val)))
                return rc;
            mp_free(*dst);
            *dst = NULL;
            if (*val)
                *dst = val;
            else
                mp_free(val);
        } else if (strcmp(key, "min_version") == 0) {
            if ((rc = decode_tls_version(L, v, &wc->tls_min_version)))
                return rc;
        } else if (strcmp(key, "max_version") == 0) {
            if ((rc = decode_tls_version(L, v, &wc->tls_max_version)))
                return rc;
        } else if (strcmp(key, "client_auth_type") == 0) {
            char *val = NULL;
            if ((rc = wc_string(L, v, "string", &val)))
                return rc;
            bool known = !*val || strcmp(val, "NoClientCert") == 0;
            bool unsupported = false;
            for (size_t i = 0; i < sizeof auth_types / sizeof auth_types[0]; i++)
                unsupported = unsupported || strcmp(val, auth_types[i]) == 0;
            if (unsupported)
                rc = wc_fail(L, v,
                             "tls_server_config.client_auth_type: %s is not supported yet "
                             "(only NoClientCert)",
                             val);
            else if (!known)
                rc = wc_fail(L, v, "Invalid ClientAuth: %s", val);
            mp_free(val);
            if (rc)
                return rc;
        } else if (strcmp(key, "client_ca_file") == 0) {
            if (!is_null(v) && !(v->type == YAML_SCALAR_NODE && v->data.scalar.length == 0))
                return wc_fail(L, k,
                               "tls_server_config.client_ca_file: client certificate "
                               "verification is not supported yet");
        } else {
            bool known = false;
            for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++)
                known = known || strcmp(key, ignored[i]) == 0;
            if (!known)
                return wc_fail(L, k, "field %s not found in type web.TLSConfig", key);
        }
    }
    if (wc->tls_cert_file && !wc->tls_key_file)
        return wc_fail(L, n, "tls_server_config: missing key_file");
    if (!wc->tls_cert_file && wc->tls_key_file)
        return wc_fail(L, n, "tls_server_config: missing cert_file");
    enum cfg_tls_version lo = wc->tls_min_version ? wc->tls_min_version : CFG_TLS12;
    enum cfg_tls_version hi = wc->tls_max_version ? wc->tls_max_version : CFG_TLS13;
    if (lo > hi)
        return wc_fail(L, n, "tls_server_config: min_version is above max_version");
    return 0;
}

static int decode_users(struct wc_loader *L, const yaml_node_t *n, struct cfg_web_config *wc)
{
    bool ok;
    int rc = wc_mapping(L, n, "map[string]config_util.Secret", &ok);
    if (rc || !ok)
        return rc;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = wc_node(L, p->key), *v = wc_node(L, p->value);
        char *hash = NULL;
        if ((rc = wc_string(L, v, "config_util.Secret", &hash)))
            return rc;
        const char *why = NULL;
        if (!bcrypt_hash_valid(hash, &why)) {
            mp_free(hash);
            return wc_fail(L, v, "basic_auth_users: user \"%s\": %s", scalar(k), why);
        }
        char *name = mp_xstrdup(scalar(k));
        if (!name) {
            mp_free(hash);
            return mp_err_set(L->err, MP_ENOMEM, "%s: out of memory", L->name);
        }
        if ((rc = kv_push(L, &wc->users, &wc->nusers, name, hash)))
            return rc;
    }
    return 0;
}

static int decode_root(struct wc_loader *L, const yaml_node_t *n, struct cfg_web_config *wc)
{
    bool ok;
    int rc = wc_mapping(L, n, "web.Config", &ok);
    if (rc || !ok)
        return rc;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = wc_node(L, p->key), *v = wc_node(L, p->value);
        if (strcmp(scalar(k), "tls_server_config") == 0)
            rc = decode_tls(L, v, wc);
        else if (strcmp(scalar(k), "http_server_config") == 0)
            rc = decode_http(L, v, wc);
        else if (strcmp(scalar(k), "basic_auth_users") == 0)
            rc = decode_users(L, v, wc);
        else
            rc = wc_fail(L, k, "field %s not found in type web.Config", scalar(k));
        if (rc)
            return rc;
    }
    return 0;
}

void cfg_web_config_destroy(struct cfg_web_config *wc)
{
    if (!wc)
        return;
    for (size_t i = 0; i < wc->nheaders; i++) {
        mp_free(wc->headers[i].name);
        mp_free(wc->headers[i].value);
    }
    for (size_t i = 0; i < wc->nusers; i++) {
        mp_free(wc->users[i].name);
        mp_free(wc->users[i].value);
    }
    mp_free(wc->headers);
    mp_free(wc->users);
    mp_free(wc->tls_cert_file);
    mp_free(wc->tls_key_file);
    mp_free(wc);
}

int cfg_web_config_load_buf(const char *name, const char *buf, size_t len,
                            struct cfg_web_config **out, struct mp_err *err)
{
    *out = NULL;
    if (!name)
        name = "<web config>";
    struct cfg_web_config *wc = mp_calloc(1, sizeof *wc);
    if (!wc)
        return mp_err_set(err, MP_ENOMEM, "%s: out of memory", name);
    wc->http2 = true;
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        mp_free(wc);
        return mp_err_set(err, MP_ENOMEM, "%s: out of memory", name);
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)(len ? buf : ""), len);
    if (!yaml_parser_load(&parser, &doc)) {
        const yaml_mark_t *m = &parser.problem_mark;
        int rc = parser.error == YAML_MEMORY_ERROR
                     ? mp_err_set(err, MP_ENOMEM, "%s: out of memory", name)
                     : mp_err_set(err, MP_EPARSE, "%s:%zu:%zu: yaml: %s%s%s", name, m->line + 1,
                                  m->column + 1, parser.problem ? parser.problem : "invalid YAML",
                                  parser.context ? " " : "",
                                  parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        mp_free(wc);
        return rc;
    }
    struct wc_loader L = {.name = name, .doc = &doc, .err = err};
    const yaml_node_t *root = yaml_document_get_root_node(&doc);
    int rc = root ? decode_root(&L, root, wc) : 0;
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (rc) {
        cfg_web_config_destroy(wc);
        return rc;
    }
    *out = wc;
    return 0;
}

static int read_file(const char *path, char **buf, size_t *len, struct mp_err *err)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return mp_err_set(err, MP_EIO, "open %s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *b = mp_malloc(cap);
    if (!b) {
        fclose(f);
        return mp_err_set(err, MP_ENOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n == cap) {
            if (cap > CFG_MAX_FILE_BYTES) {
                mp_free(b);
                fclose(f);
                return mp_err_set(err, MP_ELIMIT, "%s: file larger than %zu bytes", path,
                                  CFG_MAX_FILE_BYTES);
            }
            char *nb = mp_realloc(b, cap * 2);
            if (!nb) {
                mp_free(b);
                fclose(f);
                return mp_err_set(err, MP_ENOMEM, "%s: out of memory", path);
            }
            b = nb;
            cap *= 2;
        }
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) {
                mp_free(b);
                fclose(f);
                return mp_err_set(err, MP_EIO, "read %s: %s", path, strerror(errno));
            }
            break;
        }
    }
    fclose(f);
    if (n > CFG_MAX_FILE_BYTES) {
        mp_free(b);
        return mp_err_set(err, MP_ELIMIT, "%s: file larger than %zu bytes", path,
                          CFG_MAX_FILE_BYTES);
    }
    *buf = b;
    *len = n;
    return 0;
}

/* Relative TLS paths are relative to the web config file (exporter-toolkit SetDirectory). */
static int resolve_rel(const char *cfg_path, char **p, struct mp_err *err)
{
    if (!*p || (*p)[0] == '/')
        return 0;
    const char *slash = strrchr(cfg_path, '/');
    if (!slash)
        return 0;
    size_t dl = (size_t)(slash - cfg_path) + 1, fl = strlen(*p);
    char *np = mp_malloc(dl + fl + 1);
    if (!np)
        return mp_err_set(err, MP_ENOMEM, "%s: out of memory", cfg_path);
    memcpy(np, cfg_path, dl);
    memcpy(np + dl, *p, fl + 1);
    mp_free(*p);
    *p = np;
    return 0;
}

int cfg_web_config_load_file(const char *path, struct cfg_web_config **out, struct mp_err *err)
{
    *out = NULL;
    char *buf;
    size_t len;
    int rc = read_file(path, &buf, &len, err);
    if (rc)
        return rc;
    struct cfg_web_config *wc = NULL;
    rc = cfg_web_config_load_buf(path, buf, len, &wc, err);
    mp_free(buf);
    if (rc)
        return rc;
    if ((rc = resolve_rel(path, &wc->tls_cert_file, err)) ||
        (rc = resolve_rel(path, &wc->tls_key_file, err))) {
        cfg_web_config_destroy(wc);
        return rc;
    }
    *out = wc;
    return 0;
}

int cfg_web_config_tls(const struct cfg_web_config *wc, char **cert, char **key, char *prio,
                       size_t prio_cap, struct mp_err *err)
{
    static const char *const vers[] = {"", "TLS1.0", "TLS1.1", "TLS1.2", "TLS1.3"};
    *cert = *key = NULL;
    if (prio_cap)
        prio[0] = 0;
    if (!wc || !wc->tls_cert_file)
        return 0;
    enum cfg_tls_version lo = wc->tls_min_version ? wc->tls_min_version : CFG_TLS12;
    enum cfg_tls_version hi = wc->tls_max_version ? wc->tls_max_version : CFG_TLS13;
    if (lo > hi)
        return mp_err_set(err, MP_EINVAL, "tls_server_config: min_version is above max_version");
    size_t off = (size_t)snprintf(prio, prio_cap, "NORMAL:-VERS-ALL");
    for (int v = (int)hi; v >= (int)lo && off < prio_cap; v--)
        off += (size_t)snprintf(prio + off, prio_cap - off, ":+VERS-%s", vers[v]);
    if (off >= prio_cap)
        return mp_err_set(err, MP_EINVAL, "tls_server_config: priority buffer too small");
    size_t len;
    int rc = read_file(wc->tls_cert_file, cert, &len, err);
    if (rc)
        return rc;
    char *c = mp_realloc(*cert, len + 1);
    if (!c) {
        mp_free(*cert);
        *cert = NULL;
        return mp_err_set(err, MP_ENOMEM, "%s: out of memory", wc->tls_cert_file);
    }
    c[len] = 0;
    *cert = c;
    if ((rc = read_file(wc->tls_key_file, key, &len, err)) == 0) {
        char *k = mp_realloc(*key, len + 1);
        if (k) {
            k[len] = 0;
            *key = k;
        } else {
            rc = mp_err_set(err, MP_ENOMEM, "%s: out of memory", wc->tls_key_file);
        }
    }
    if (rc) {
        mp_free(*key);
        mp_free(*cert);
        *cert = *key = NULL;
    }
    return rc;
}

/* ---- verification ------------------------------------------------------------------- */

static bool bcrypt_check(const char *hash, const char *password)
{
    struct crypt_data *cd = mp_calloc(1, sizeof *cd);
    if (!cd)
        return false;
    const char *r = crypt_rn(password, hash, cd, (int)sizeof *cd);
    bool ok = false;
    if (r && r[0] != '*') {
        size_t a = strlen(r), b = strlen(hash);
        unsigned char diff = a == b ? 0 : 1;
        size_t m = a < b ? a : b;
        for (size_t i = 0; i < m; i++)
            diff |= (unsigned char)(r[i] ^ hash[i]);
        ok = diff == 0;
    }
    explicit_bzero(cd, sizeof *cd);
    mp_free(cd);
    return ok;
}

static const char *find_user(const struct cfg_web_config *wc, const char *user)
{
    for (size_t i = 0; i < wc->nusers; i++)
        if (strcmp(wc->users[i].name, user) == 0)
            return wc->users[i].value;
    return NULL;
}

bool cfg_web_config_verify(const struct cfg_web_config *wc, const char *user,
                           const char *password)
{
    const char *hash = find_user(wc, user);
    bool ok = bcrypt_check(hash ? hash : dummy_hash, password);
    return ok && hash;
}

/* ---- gate ----------------------------------------------------------------------------- */

struct wc_snap {
    struct cfg_web_config *wc;
    atomic_size_t refs;
};

#define GATE_CACHE 64

struct gate_entry {
    uint64_t k1, k2; /* 0,0 = empty */
    bool ok;
};

struct cfg_web_gate {
    char *path;
    pthread_mutex_t mu;
    struct wc_snap *cur;  /* NULL after a failed re-read */
    bool have_stat;
    struct stat st;       /* of the file behind cur (or of the failed version) */
    uint64_t seed1, seed2;
    struct gate_entry cache[GATE_CACHE];
    unsigned next;
};

static void snap_release(struct wc_snap *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
        cfg_web_config_destroy(s->wc);
        mp_free(s);
    }
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

int cfg_web_gate_create(const char *path, struct cfg_web_gate **out, struct mp_err *err)
{
    *out = NULL;
    struct cfg_web_gate *g = mp_calloc(1, sizeof *g);
    if (!g)
        return mp_err_set(err, MP_ENOMEM, "out of memory");
    g->path = mp_xstrdup(path);
    struct wc_snap *s = mp_calloc(1, sizeof *s);
    if (!g->path || !s) {
        mp_free(s);
        mp_free(g->path);
        mp_free(g);
        return mp_err_set(err, MP_ENOMEM, "out of memory");
    }
    struct stat st;
    bool have = stat(path, &st) == 0;
    int rc = cfg_web_config_load_file(path, &s->wc, err);
    if (rc) {
        mp_free(s);
        mp_free(g->path);
        mp_free(g);
        return rc;
    }
    atomic_init(&s->refs, 1);
    g->cur = s;
    g->have_stat = have;
    if (have)
        g->st = st;
    if (getrandom(&g->seed1, sizeof g->seed1, 0) != (ssize_t)sizeof g->seed1 ||
        getrandom(&g->seed2, sizeof g->seed2, 0) != (ssize_t)sizeof g->seed2) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        g->seed1 = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)g;
        g->seed2 = (uint64_t)ts.tv_sec * 0xc2b2ae3d27d4eb4fULL ^ g->seed1;
    }
    pthread_mutex_init(&g->mu, NULL);
    *out = g;
    return 0;
}

void cfg_web_gate_destroy(struct cfg_web_gate *g)
{
    if (!g)
        return;
    snap_release(g->cur);
    pthread_mutex_destroy(&g->mu);
    explicit_bzero(g->cache, sizeof g->cache);
    mp_free(g->path);
    mp_free(g);
}

/* Current config with a reference, re-read if the file changed; NULL if it fails. */
static struct wc_snap *gate_acquire(struct cfg_web_gate *g)
{
    struct stat st;
    bool have = stat(g->path, &st) == 0;
    pthread_mutex_lock(&g->mu);
    bool changed = !have || !g->have_stat || !same_file(&st, &g->st);
    if (changed) {
        struct mp_err err = {0};
        struct cfg_web_config *wc = NULL;
        int rc = cfg_web_config_load_file(g->path, &wc, &err);
        snap_release(g->cur);
        g->cur = NULL;
        g->have_stat = have; /* a missing file is retried on every request */
        if (have)
            g->st = st;
        if (rc) {
            static struct mp_log_limit limit = MP_LOG_LIMIT_INIT(10, 60 * 1000);
            MP_LOG_LIMITED(&limit, MP_LOG_LEVEL_ERROR, "Unable to parse web configuration",
                           MP_KV_STR("err", err.msg));
        } else {
            struct wc_snap *s = mp_calloc(1, sizeof *s);
            if (s) {
                s->wc = wc;
                atomic_init(&s->refs, 1);
                g->cur = s;
            } else {
                cfg_web_config_destroy(wc);
                g->have_stat = false;
            }
        }
    }
    struct wc_snap *s = g->cur;
    if (s)
        atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&g->mu);
    return s;
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Standard base64 with padding (Go base64.StdEncoding). NUL-terminates out (cap >= 3n/4+1). */
static bool b64decode(const char *in, size_t n, char *out, size_t *outlen)
{
    if (n % 4)
        return false;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            unsigned char c = (unsigned char)in[i + (size_t)j];
            if (c == '=' && i + 4 == n && j >= 2) {
                v[j] = 0;
                pad++;
            } else if (pad) {
                return false;
            } else if ((v[j] = b64val(c)) < 0) {
                return false;
            }
        }
        if (pad == 1 && in[i + 3] != '=')
            return false;
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                     (uint32_t)v[3];
        out[o++] = (char)(w >> 16);
        if (pad < 2)
            out[o++] = (char)(w >> 8 & 0xff);
        if (pad < 1)
            out[o++] = (char)(w & 0xff);
    }
    out[o] = '\0';
    *outlen = o;
    return true;
}

static uint64_t mix(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
        h ^= h >> 29;
    }
    /* field separator: the length, so ("ab","c") and ("a","bc") differ */
    for (int i = 0; i < 8; i++) {
        h ^= (uint64_t)(n >> (8 * i)) & 0xff;
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t key3(uint64_t seed, const char *u, const char *h, const char *p, size_t plen)
{
    uint64_t k = mix(seed ^ 0xcbf29ce484222325ULL, u, strlen(u));
    k = mix(k, h, strlen(h));
    k = mix(k, p, plen);
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k | 1; /* never the empty marker */
}

static bool gate_verify(struct cfg_web_gate *g, const struct cfg_web_config *wc,
                        const char *user, const char *pass, size_t plen)
{
    const char *hash = find_user(wc, user);
    const char *h = hash ? hash : dummy_hash;
    uint64_t k1 = key3(g->seed1, user, h, pass, plen);
    uint64_t k2 = key3(g->seed2, user, h, pass, plen);
    pthread_mutex_lock(&g->mu);
    for (size_t i = 0; i < GATE_CACHE; i++) {
        if (g->cache[i].k1 == k1 && g->cache[i].k2 == k2) {
            bool ok = g->cache[i].ok;
            pthread_mutex_unlock(&g->mu);
            return ok && hash;
        }
    }
    pthread_mutex_unlock(&g->mu);
    bool ok = bcrypt_check(h, pass);
    pthread_mutex_lock(&g->mu);
    struct gate_entry *e = &g->cache[g->next++ % GATE_CACHE];
    e->k1 = k1;
    e->k2 = k2;
    e->ok = ok;
    pthread_mutex_unlock(&g->mu);
    return ok && hash;
}

int cfg_web_gate_check(struct cfg_web_gate *g, const char *authorization,
                       cfg_web_header_fn *add_header, void *ctx)
{
    struct wc_snap *s = gate_acquire(g);
    if (!s)
        return 500;
    const struct cfg_web_config *wc = s->wc;
    for (size_t i = 0; i < wc->nheaders; i++)
        if (add_header)
            add_header(ctx, wc->headers[i].name, wc->headers[i].value);
    int status = 0;
    if (wc->nusers) {
        status = 401;
        /* Go's Request.BasicAuth: case-insensitive "Basic " prefix, StdEncoding, user:pass. */
        if (authorization && strncasecmp(authorization, "Basic ", 6) == 0) {
            const char *b = authorization + 6;
            size_t n = strlen(b);
            if (n <= 8192) {
                char *dec = mp_malloc(n / 4 * 3 + 1);
                size_t dlen;
                if (dec && b64decode(b, n, dec, &dlen)) {
                    char *colon = memchr(dec, ':', dlen);
                    if (colon && !memchr(dec, '\0', dlen)) {
                        *colon = '\0';
                        const char *pass = colon + 1;
                        size_t plen = dlen - (size_t)(colon + 1 - dec);
                        if (gate_verify(g, wc, dec, pass, plen))
                            status = 0;
                    }
                    explicit_bzero(dec, dlen);
                }
                mp_free(dec);
            }
        }
    }
    snap_release(s);
    return status;
}
