/* SPDX-License-Identifier: Apache-2.0 */
/* tests/configs/test_webconfig.c: --web.config.file (protocols.md 4.11).
 * - load: good files (empty, users + headers, TLS section without files), bad ones (unknown
 *   keys at every level, header names and values, bcrypt hashes, TLS client auth, half
 *   TLS pairs, versions, YAML errors) with their file:line:col.
 * - tls_files: cert/key paths (relative to the file), PEM reading, GnuTLS priorities.
 * - verify: bcrypt check through libxcrypt for $2a$/$2b$/$2y$, unknown users fail.
 * - gate: 401/0 by credentials, headers on every outcome, file changes apply on the next
 *   call, a broken file gives 500 and recovers, cached results stay correct.
 * Hashes are made here with crypt_r and a cost-5 salt to keep the suite fast. */
#include <criterion/criterion.h>
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"
#include "configs/config.h"

static char *bhash(const char *pw, const char *prefix)
{
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    char salt[64];
    snprintf(salt, sizeof salt, "%s05$abcdefghijklmnopqrstuu", prefix);
    const char *h = crypt_r(pw, salt, &cd);
    cr_assert(h && h[0] == '$', "crypt_r failed for %s", prefix);
    return strdup(h);
}

static struct cfg_web_config *load_ok(const char *yml)
{
    struct cfg_web_config *wc = NULL;
    struct mp_err err = {0};
    cr_assert_eq(cfg_web_config_load_buf("web.yml", yml, strlen(yml), &wc, &err), 0, "%s\n%s",
                 err.msg, yml);
    cr_assert_not_null(wc);
    return wc;
}

static void load_bad(const char *yml, const char *want)
{
    struct cfg_web_config *wc = NULL;
    struct mp_err err = {0};
    int rc = cfg_web_config_load_buf("web.yml", yml, strlen(yml), &wc, &err);
    cr_assert_neq(rc, 0, "loaded but should fail:\n%s", yml);
    cr_assert_null(wc);
    cr_assert(strstr(err.msg, want), "got \"%s\", want \"%s\"", err.msg, want);
}

static void quiet(void)
{
    mp_log_setup(MP_LOG_LEVEL_ERROR, MP_LOG_FORMAT_LOGFMT, 2);
}

TestSuite(webconfig, .init = quiet);

Test(webconfig, good_files)
{
    struct cfg_web_config *wc = load_ok("");
    cr_assert_eq(wc->nusers, 0);
    cr_assert_eq(wc->nheaders, 0);
    cr_assert(wc->http2);
    cfg_web_config_destroy(wc);

    char *h = bhash("secret", "$2b$");
    char yml[1024];
    snprintf(yml, sizeof yml,
             "tls_server_config:\n"
             "  cert_file: \"\"\n"
             "  client_auth_type: NoClientCert\n"
             "http_server_config:\n"
             "  http2: false\n"
             "  headers:\n"
             "    X-Frame-Options: SameOrigin\n"
             "    X-Content-Type-Options: nosniff\n"
             "    Content-Security-Policy: \"default-src 'self'\"\n"
             "    Strict-Transport-Security: max-age=31536000\n"
             "    X-XSS-Protection: \"1; mode=block\"\n"
             "basic_auth_users:\n"
             "  alice: '%s'\n"
             "  bob: %s\n",
             h, h);
    wc = load_ok(yml);
    cr_assert_not(wc->http2);
    cr_assert_eq(wc->nheaders, 5);
    cr_assert_str_eq(wc->headers[0].name, "X-Frame-Options");
    cr_assert_str_eq(wc->headers[0].value, "SameOrigin");
    cr_assert_str_eq(wc->headers[2].value, "default-src 'self'");
    cr_assert_eq(wc->nusers, 2);
    cr_assert_str_eq(wc->users[1].name, "bob");
    cr_assert_str_eq(wc->users[1].value, h);
    cfg_web_config_destroy(wc);
    free(h);
}

Test(webconfig, tls_files)
{
    struct cfg_web_config *wc = load_ok("tls_server_config:\n  cert_file: /a/c.pem\n"
                                        "  key_file: k.pem\n  max_version: TLS12\n");
    cr_assert_str_eq(wc->tls_cert_file, "/a/c.pem");
    cr_assert_str_eq(wc->tls_key_file, "k.pem");
    cr_assert_eq(wc->tls_min_version, CFG_TLS_UNSET);
    cr_assert_eq(wc->tls_max_version, CFG_TLS12);
    cfg_web_config_destroy(wc);

    /* From a file: relative paths are resolved against its directory, PEMs read as is. */
    char dir[] = "/tmp/mp-wctls-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char p[256];
    const char *files[][2] = {{"web.yml", "tls_server_config:\n  cert_file: c.pem\n"
                                          "  key_file: k.pem\n  min_version: TLS10\n"},
                              {"c.pem", "CERT"},
                              {"k.pem", "KEY"}};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i][0]);
        FILE *f = fopen(p, "w");
        cr_assert_not_null(f);
        fputs(files[i][1], f);
        fclose(f);
    }
    struct mp_err err = {0};
    snprintf(p, sizeof p, "%s/web.yml", dir);
    cr_assert_eq(cfg_web_config_load_file(p, &wc, &err), 0, "%s", err.msg);
    char want[256];
    snprintf(want, sizeof want, "%s/c.pem", dir);
    cr_assert_str_eq(wc->tls_cert_file, want);
    char *cert = NULL, *key = NULL, prio[128];
    cr_assert_eq(cfg_web_config_tls(wc, &cert, &key, prio, sizeof prio, &err), 0, "%s", err.msg);
    cr_assert_str_eq(cert, "CERT");
    cr_assert_str_eq(key, "KEY");
    cr_assert_str_eq(prio, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:+VERS-TLS1.1:+VERS-TLS1.0");
    mp_free(cert);
    mp_free(key);
    snprintf(p, sizeof p, "%s/k.pem", dir);
    unlink(p);
    cr_assert_eq(cfg_web_config_tls(wc, &cert, &key, prio, sizeof prio, &err), MP_EIO);
    cr_assert_null(cert);
    cr_assert_null(key);
    cfg_web_config_destroy(wc);
    const char *rm[] = {"web.yml", "c.pem"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, rm[i]);
        unlink(p);
    }
    rmdir(dir);

    wc = load_ok("");
    cr_assert_eq(cfg_web_config_tls(wc, &cert, &key, prio, sizeof prio, &err), 0);
    cr_assert_null(cert);
    cfg_web_config_destroy(wc);
}

Test(webconfig, bad_files)
{
    load_bad("foo: 1\n", "web.yml:1:1: field foo not found in type web.Config");
    load_bad("http_server_config:\n  http3: true\n",
             "web.yml:2:3: field http3 not found in type web.HTTPConfig");
    load_bad("tls_server_config:\n  certfile: x\n",
             "web.yml:2:3: field certfile not found in type web.TLSConfig");
    load_bad("http_server_config:\n  headers:\n    X-Powered-By: me\n",
             "web.yml:3:5: HTTP header \"X-Powered-By\" can not be configured");
    load_bad("http_server_config:\n  headers:\n    x-frame-options: deny\n",
             "can not be configured");
    load_bad("http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
             "web.yml:3:22: invalid value for X-Frame-Options");
    load_bad("http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n",
             "invalid value for X-Content-Type-Options");
    load_bad("http_server_config:\n  http2: maybe\n", "web.yml:2:10: cannot unmarshal");
    load_bad("basic_auth_users:\n  alice: plaintext\n",
             "web.yml:2:10: basic_auth_users: user \"alice\": crypto/bcrypt: hashedSecret too short");
    load_bad("basic_auth_users:\n  alice: $1$abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefgh\n",
             "version must be 2a, 2b or 2y");
    load_bad("basic_auth_users:\n  alice: $2b$03$abcdefghijklmnopqrstuuOQiyCxlgf/oeuTqixKmWdcYUh4Hjl0a\n",
             "cost out of range");
    load_bad("basic_auth_users:\n  alice: $2b$05$abcdefghijklmnopqrstuuOQiyCxlgf/oeuTqixKmWdcYUh4Hjl0!\n",
             "invalid character");
    load_bad("basic_auth_users:\n  alice: [a]\n", "web.yml:2:10: cannot unmarshal !!seq");
    load_bad("basic_auth_users:\n  a: $2b$05$abcdefghijklmnopqrstuuOQiyCxlgf/oeuTqixKmWdcYUh4Hjl0a\n"
             "  a: $2b$05$abcdefghijklmnopqrstuuOQiyCxlgf/oeuTqixKmWdcYUh4Hjl0a\n",
             "web.yml:3:3: key \"a\" already set");
    load_bad("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n"
             "  client_auth_type: RequireAndVerifyClientCert\n",
             "web.yml:4:21: tls_server_config.client_auth_type: RequireAndVerifyClientCert is "
             "not supported yet");
    load_bad("tls_server_config:\n  client_auth_type: Sometimes\n", "Invalid ClientAuth");
    load_bad("tls_server_config:\n  client_ca_file: ca.pem\n", "not supported yet");
    load_bad("tls_server_config:\n  cert_file: a.crt\n", "missing key_file");
    load_bad("tls_server_config:\n  key_file: a.key\n", "missing cert_file");
    load_bad("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS14\n",
             "web.yml:4:16: unknown TLS version: TLS14");
    load_bad("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n"
             "  max_version: TLS12\n",
             "min_version is above max_version");
    load_bad("basic_auth_users: [\n", "web.yml:");
    load_bad("- a\n", "cannot unmarshal !!seq into Go value of type web.Config");

    struct cfg_web_config *wc = NULL;
    struct mp_err err = {0};
    cr_assert_eq(cfg_web_config_load_file("/nonexistent/web.yml", &wc, &err), MP_EIO);
    cr_assert_null(wc);
}

Test(webconfig, verify_all_prefixes)
{
    static const char *const prefixes[] = {"$2a$", "$2b$", "$2y$"};
    for (size_t i = 0; i < 3; i++) {
        char *h = bhash("pw", prefixes[i]);
        char yml[256];
        snprintf(yml, sizeof yml, "basic_auth_users:\n  u: '%s'\n", h);
        struct cfg_web_config *wc = load_ok(yml);
        cr_assert(cfg_web_config_verify(wc, "u", "pw"), "%s", prefixes[i]);
        cr_assert_not(cfg_web_config_verify(wc, "u", "pw2"));
        cr_assert_not(cfg_web_config_verify(wc, "v", "pw"));
        cfg_web_config_destroy(wc);
        free(h);
    }
}

static void write_file(const char *path, const char *s)
{
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fputs(s, f);
    fclose(f);
    cr_assert_eq(rename(tmp, path), 0); /* new inode: a change even within one mtime tick */
}

struct hdrs {
    int n;
    char last[128];
};

static void on_hdr(void *ctx, const char *name, const char *value)
{
    struct hdrs *h = ctx;
    h->n++;
    snprintf(h->last, sizeof h->last, "%s: %s", name, value);
}

static int check(struct cfg_web_gate *g, const char *authz, struct hdrs *h)
{
    memset(h, 0, sizeof *h);
    return cfg_web_gate_check(g, authz, on_hdr, h);
}

Test(webconfig, gate)
{
    char path[256];
    snprintf(path, sizeof path, "/tmp/mp_test_webconfig_%d.yml", (int)getpid());
    char *h = bhash("secret", "$2y$");
    char yml[512];
    snprintf(yml, sizeof yml,
             "http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
             "basic_auth_users:\n  alice: '%s'\n",
             h);
    write_file(path, yml);

    struct cfg_web_gate *g = NULL;
    struct mp_err err = {0};
    cr_assert_eq(cfg_web_gate_create(path, &g, &err), 0, "%s", err.msg);
    struct hdrs hd;
    /* alice:secret, alice:wrong, bob:secret */
    const char *good = "Basic YWxpY2U6c2VjcmV0", *wrong = "Basic YWxpY2U6d3Jvbmc=",
               *bob = "Basic Ym9iOnNlY3JldA==";
    for (int round = 0; round < 2; round++) { /* second round comes from the cache */
        cr_assert_eq(check(g, NULL, &hd), 401);
        cr_assert_eq(hd.n, 1);
        cr_assert_str_eq(hd.last, "X-Frame-Options: deny");
        cr_assert_eq(check(g, good, &hd), 0);
        cr_assert_eq(hd.n, 1);
        cr_assert_eq(check(g, "basic YWxpY2U6c2VjcmV0", &hd), 0);
        cr_assert_eq(check(g, wrong, &hd), 401);
        cr_assert_eq(check(g, bob, &hd), 401);
        cr_assert_eq(check(g, "Bearer x", &hd), 401);
        cr_assert_eq(check(g, "Basic !!!!", &hd), 401);
        cr_assert_eq(check(g, "Basic YWxpY2U=", &hd), 401); /* no colon */
    }

    /* new password on the next call */
    char *h2 = bhash("wrong", "$2b$");
    snprintf(yml, sizeof yml, "basic_auth_users:\n  alice: '%s'\n", h2);
    write_file(path, yml);
    cr_assert_eq(check(g, good, &hd), 401);
    cr_assert_eq(hd.n, 0);
    cr_assert_eq(check(g, wrong, &hd), 0);

    /* broken file: 500 until fixed */
    write_file(path, "basic_auth_users:\n  alice: nope\n");
    cr_assert_eq(check(g, wrong, &hd), 500);
    cr_assert_eq(check(g, wrong, &hd), 500);
    unlink(path);
    cr_assert_eq(check(g, wrong, &hd), 500);

    /* no users: open */
    write_file(path, "http_server_config:\n  headers:\n    X-XSS-Protection: '0'\n");
    cr_assert_eq(check(g, NULL, &hd), 0);
    cr_assert_str_eq(hd.last, "X-XSS-Protection: 0");
    cfg_web_gate_destroy(g);

    /* create fails like load */
    write_file(path, "nope: 1\n");
    g = NULL;
    cr_assert_eq(cfg_web_gate_create(path, &g, &err), MP_EPARSE);
    cr_assert_null(g);
    unlink(path);
    free(h);
    free(h2);
}
