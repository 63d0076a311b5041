/* SPDX-License-Identifier: Apache-2.0 */
/* scraper/httpc.h (private to scraper/ and tests/scraper/): prometheus/common's HTTP client
 * config applied to libcurl easy handles, in one place for the scrape loop (loop.c) and the
 * Kubernetes API client (k8s_client.c); plus the kubeconfig reader (kubeconfig.c) that turns
 * a kubeconfig file into such a config.
 *
 * Two objects:
 * - struct scrape_httpc: a deep copy of a struct cfg_http_client (so the config may go away)
 *   plus the oauth2 token cache. Refcounted; thread-safe (immutable but for the token cache,
 *   which has its own mutex, never held across I/O). Share one per scrape pool or SD client
 *   so that an oauth2 token is fetched once for all of them.
 * - struct scrape_httpc_req: what one CURL easy handle needs across its transfers (its
 *   header list, CONNECT_TO for server_name). One owner thread; the easy handle may be reused
 *   for many transfers (the scrape loop does).
 *
 * What is applied (prometheus/common v0.59 HTTPClientConfig):
 * - tls_config: ca/ca_file, cert/cert_file, key/key_file (files are read by libcurl per
 *   connection), insecure_skip_verify, min_version (default TLS12), max_version, and
 *   server_name. libcurl has no separate SNI option, so with server_name on an https URL the
 *   URL carries server_name (SNI and the certificate check use it), CURLOPT_CONNECT_TO sends
 *   the connection to the real host, and a Host header keeps the original URL's host[:port]
 *   as Go would send it.
 * - basic_auth, authorization (type default Bearer; bearer_token(_file) are folded into it
 *   by configs/), oauth2 client credentials, http_headers. Every _file is re-read on every
 *   request (trimmed of surrounding white space, as prometheus/common's FileSecret).
 * - oauth2: POST token_url, application/x-www-form-urlencoded, body sorted by key as Go's
 *   url.Values.Encode (grant_type=client_credentials, scope=space-joined scopes,
 *   endpoint_params; a param may override grant_type only); client id and secret in a Basic
 *   header (query-escaped) and, if the server refuses that, in the body (golang.org/x/oauth2
 *   AuthStyleAutoDetect); the style that worked is remembered. The token's own tls_config and
 *   proxy_url apply to that request. The token is cached until 10 s before its expiry
 *   (expires_in; none = forever), dropped when client_secret_file's content changes and when a
 *   request using it got HTTP 401. Authorization: "<token_type> <access_token>", with
 *   bearer/mac/basic capitalised as Go's Token.Type does.
 * - proxy_url, no_proxy, proxy_from_environment (HTTP(S)_PROXY / NO_PROXY, upper or lower
 *   case, as Go), proxy_connect_header (sent only to the proxy). Without a proxy setting no
 *   proxy is used, whatever the environment says (Go's client does the same).
 * - follow_redirects (at most 10, as Go), enable_http2 (HTTP/2 over TLS when true, else
 *   HTTP/1.1; h2c is never tried, as Go).
 *
 * The oauth2 token request is a blocking transfer on the calling thread, bounded by the
 * req's timeout; it happens only when no valid token is cached. */
#ifndef SCRAPER_HTTPC_H
#define SCRAPER_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/str.h"
#include "configs/config.h"

struct curl_slist;
struct scrape_httpc;
struct scrape_httpc_req;

/* Copies cfg. Checks what Go checks when it builds the client: the CA file must be readable
 * ("unable to load specified CA cert PATH: open PATH: no such file or directory") and so must
 * the client cert and key files. MP_EIO for those, MP_EINVAL for a bad proxy_url. */
MP_NODISCARD int scrape_httpc_create(const struct cfg_http_client *cfg, struct scrape_httpc **out,
                                     struct mp_err *err);
struct scrape_httpc *scrape_httpc_acquire(struct scrape_httpc *c);
void scrape_httpc_release(struct scrape_httpc *c); /* NULL is a no-op */

/* Sets up easy (a fresh or reused handle, any other options are the caller's) for requests to
 * url: the URL itself, TLS, proxy, redirects, HTTP version, and CURLOPT_HTTPHEADER with the
 * caller's base headers (copied; may be NULL) followed by the configured ones. Holds a
 * reference to c. timeout_ms bounds an oauth2 token request (0: 10 s). easy must outlive
 * the req only until scrape_httpc_req_destroy, which must come before curl_easy_cleanup.
 * MP_EINVAL for a URL libcurl cannot parse (with server_name), MP_ENOMEM. */
MP_NODISCARD int scrape_httpc_req_create(struct scrape_httpc *c, void *easy, const char *url,
                                         const struct curl_slist *base, int64_t timeout_ms,
                                         struct scrape_httpc_req **out, struct mp_err *err);
/* Before each transfer on the handle: re-reads _file credentials and header files, gets an
 * oauth2 token (cached or fetched) and re-sets the header list when anything is dynamic.
 * On a reused handle it first looks at the previous transfer's status (a 401 drops the
 * oauth2 token it used), so callers that reuse handles need no end call. On failure the
 * transfer must not run; err reads as Go's ("unable to read authorization credentials:
 * unable to read file F: open F: no such file or directory", "oauth2: cannot fetch token:
 * ..."). MP_EIO, MP_ENOMEM, MP_ELIMIT (a credential over 1 MiB). */
MP_NODISCARD int scrape_httpc_req_begin(struct scrape_httpc_req *r, struct mp_err *err);
/* After a transfer whose handle is not reused: status is its HTTP status (401 drops the
 * oauth2 token it used). Optional otherwise. */
void scrape_httpc_req_end(struct scrape_httpc_req *r, long status);
void scrape_httpc_req_destroy(struct scrape_httpc_req *r); /* NULL is a no-op */

/* A canonical text of every field of cfg, secrets included (mp_free): equal texts mean
 * clients that behave alike, so a scrape pool keeps its client (and oauth2 token) across a
 * reload when its text did not change. */
char *scrape_httpc_fingerprint(const struct cfg_http_client *cfg);

/* Test hook: token requests made so far by c (successful or not). */
uint64_t scrape_httpc_token_fetches(const struct scrape_httpc *c);

/* Go's *os.PathError text: "open F: no such file or directory" (op, path, errno text in
 * lower case). */
void scrape_httpc_path_error(char *buf, size_t cap, const char *op, const char *path, int errnum);
/* Whether path opens for reading; else why = the open error as above. */
bool scrape_httpc_readable(const char *path, char *why, size_t cap);
/* Reads a whole file into out (initialised here with limit; data non-NULL on success; the
 * caller finis it). MP_EIO with *errnum = errno, MP_ELIMIT, MP_ENOMEM (out is fini'd then). */
MP_NODISCARD int scrape_httpc_read_file(const char *path, size_t limit, struct mp_buf *out,
                                        int *errnum);

/* Appends the standard base64 (with padding) of [p, p + n) to out. MP_ENOMEM, MP_ELIMIT. */
MP_NODISCARD int scrape_httpc_base64_encode(struct mp_buf *out, const void *p, size_t n);
/* Standard base64 (RFC 4648, padding required) into a fresh NUL-terminated buffer (mp_free).
 * MP_EPARSE with "illegal base64 data at input byte N" as Go's encoding/base64. */
MP_NODISCARD int scrape_httpc_base64_decode(const char *s, size_t n, char **out, size_t *outlen,
                                            struct mp_err *err);

/* ---- kubeconfig (kubeconfig.c) --------------------------------------------------------------
 * kubernetes_sd_configs.kubeconfig_file as client-go's clientcmd reads it for Prometheus
 * (BuildConfigFromFlags("", path)): current-context -> context -> cluster (server,
 * certificate-authority(-data), insecure-skip-tls-verify, tls-server-name, proxy-url) and
 * user (token, tokenFile, client-certificate(-data), client-key(-data), username/password,
 * exec: see below).
 * Relative paths are resolved against the kubeconfig's directory. Unknown keys are ignored
 * (client-go is not strict). Errors are client-go's words where practical:
 *   "invalid configuration: no configuration has been provided, try setting
 *    KUBERNETES_MASTER environment variable" (no usable cluster),
 *   "invalid configuration: [context was not found for specified context: X, ...]",
 *   "invalid configuration: no server found for cluster \"c\"",
 *   "more than one authentication method found for u; found [token basicAuth], only one is
 *    allowed", "unable to read certificate-authority F for c due to open F: ...", ...
 * The result is an HTTP client config with the same meaning (CA data as inline ca, token as
 * authorization credentials, tokenFile as credentials_file re-read per request, ...). */
struct scrape_kube_exec;
struct scrape_kubeconfig {
    char *server;                  /* without trailing slashes */
    struct cfg_http_client http;   /* strings owned by this struct */
    struct scrape_kube_exec *exec; /* users[].user.exec; NULL: none (or other auth wins) */
    bool disable_compression;      /* clusters[].cluster.disable-compression: no gzip asked */
};
/* MP_EIO (unreadable: "stat PATH: no such file or directory"), MP_EPARSE (bad YAML or
 * base64: "error loading config file \"PATH\": ..."), MP_EINVAL (invalid configuration). On
 * failure *out is left zeroed. */
MP_NODISCARD int scrape_kubeconfig_load(const char *path, struct scrape_kubeconfig *out,
                                        struct mp_err *err);
void scrape_kubeconfig_fini(struct scrape_kubeconfig *k);

/* ---- kubeconfig exec credential plugins (kubeconfig.c) -----------------------------------
 * users[].user.exec as client-go's plugin/pkg/client/auth/exec runs it
 * (client.authentication.k8s.io/v1 and v1beta1 ExecCredential):
 * - load: command (resolved against the kubeconfig's directory when it contains a '/', else
 *   looked up in PATH at run time), args, env, apiVersion, interactiveMode (required for v1;
 *   v1beta1 defaults to IfAvailable), provideClusterInfo (spec.cluster: server,
 *   tls-server-name, insecure-skip-tls-verify, certificate-authority-data, proxy-url,
 *   disable-compression, and config: the cluster's extension client.authentication.k8s.io/exec
 *   as sigs.k8s.io/yaml turns it into JSON, null without one), installHint. Errors as clientcmd's
 *   validation ("command must be specified for u to use exec authentication plugin", ...,
 *   "exec plugin: invalid apiVersion \"x\""). The plugin is used only when the user has no
 *   token, tokenFile, username/password or client certificate + key (client-go's order).
 * - run: the process environment plus env plus KUBERNETES_EXEC_INFO (the ExecCredential
 *   with spec.interactive and, with provideClusterInfo, spec.cluster, as Go's JSON encoder
 *   writes it); stderr is ours, stdin is ours when interactive (IfAvailable: stdin is a
 *   terminal; Always without a terminal fails) else /dev/null; at most timeout_ms (then
 *   killed); stdout (at most 4 MiB) is the JSON ExecCredential. status.token and/or
 *   clientCertificateData + clientKeyData; status.expirationTimestamp (RFC 3339) bounds the
 *   cache. client-go's words: "exec: executable X not found" (+ the install hint),
 *   "exec: executable X failed with exit code N", "decoding stdout: ...", "exec plugin is
 *   configured to use API version A, plugin returned version B", "exec plugin didn't return a
 *   status field", "exec plugin didn't return a token or cert/key pair", "exec plugin
 *   returned only certificate or key, not both".
 * httpc.c caches the result per client (one run shared by every request, the mutex held
 * while the plugin runs, as client-go) until the expiry, and runs it again after a 401. */
enum scrape_kube_exec_mode {
    SCRAPE_KUBE_EXEC_NEVER = 0,
    SCRAPE_KUBE_EXEC_IF_AVAILABLE,
    SCRAPE_KUBE_EXEC_ALWAYS,
};
struct scrape_kube_exec {
    char *command;
    char **args;
    size_t nargs;
    char **env; /* "NAME=value" */
    size_t nenv;
    char *api_version;
    char *install_hint; /* NULL: none */
    enum scrape_kube_exec_mode mode;
    char *cluster_json; /* spec.cluster object when provideClusterInfo, else NULL */
    int64_t timeout_ms; /* run time bound; 60 s after load */
};
struct scrape_kube_creds {
    char *token;       /* NULL: none */
    char *cert, *key;  /* PEM, both or neither */
    int64_t expiry_ms; /* wall clock; 0: no expiry */
};
struct scrape_kube_exec *scrape_kube_exec_dup(const struct scrape_kube_exec *x);
void scrape_kube_exec_destroy(struct scrape_kube_exec *x); /* NULL is a no-op */
/* Runs the plugin once. hint: append client-go's install help to a not-found error. On
 * failure out is zeroed; MP_EIO (could not run, failed, timed out), MP_EPARSE (output). */
MP_NODISCARD int scrape_kube_exec_run(const struct scrape_kube_exec *x, bool hint,
                                      struct scrape_kube_creds *out, struct mp_err *err);
void scrape_kube_creds_fini(struct scrape_kube_creds *c);

/* Makes c get its credentials from the plugin x (copied) on every request, before c is
 * shared. */
void scrape_httpc_set_exec(struct scrape_httpc *c, const struct scrape_kube_exec *x);
/* Test hook: plugin runs so far by c. */
uint64_t scrape_httpc_exec_runs(const struct scrape_httpc *c);

#endif
