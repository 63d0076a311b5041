/* SPDX-License-Identifier: Apache-2.0 */
/* tests/remote/test_headers.c: Content-Type and Content-Encoding checks (protocols.md 5.4,
 * Prometheus 2.55.1 parseProtoMsg): 415 and Prometheus's messages. */
#include <criterion/criterion.h>

#include "remote/remote.h"

static void ok(const char *ct, const char *ce)
{
    struct remote_write_result res;
    cr_assert_eq(remote_write_check_headers(ct, ce, &res), 0, "%s / %s: %s", ct, ce, res.message);
    cr_assert_eq(res.status, 204);
}

static void refused(const char *ct, const char *ce, const char *msg)
{
    struct remote_write_result res;
    cr_assert_eq(remote_write_check_headers(ct, ce, &res), MP_EINVAL, "%s / %s", ct, ce);
    cr_assert_eq(res.status, 415);
    cr_assert_str_eq(res.message, msg);
}

Test(remote_headers, accepted)
{
    ok(NULL, NULL);
    ok("", "");
    ok("application/x-protobuf", "snappy");
    ok("  application/x-protobuf  ", "SNAPPY");
    ok("application/x-protobuf;proto=prometheus.WriteRequest", "snappy");
    ok("application/x-protobuf;charset=x", NULL);
    ok("application/x-protobuf; proto=io.prometheus.write.v2.Request", NULL); /* " proto" */
}

Test(remote_headers, refused)
{
    refused("text/plain", NULL,
            "expected application/x-protobuf as the first (media) part, got text/plain "
            "content-type");
    refused("application/x-protobuf ;proto=prometheus.WriteRequest", NULL,
            "expected application/x-protobuf as the first (media) part, got "
            "application/x-protobuf ;proto=prometheus.WriteRequest content-type");
    refused("application/x-protobuf;proto", NULL,
            "as per https://www.rfc-editor.org/rfc/rfc9110#parameter expected parameters to be "
            "key-values, got proto in application/x-protobuf;proto content-type");
    refused("application/x-protobuf;proto=foo.Bar", NULL,
            "got application/x-protobuf;proto=foo.Bar content type; unknown remote write "
            "protobuf message foo.Bar, supported: prometheus.WriteRequest, "
            "io.prometheus.write.v2.Request");
    refused("application/x-protobuf;proto=io.prometheus.write.v2.Request", NULL,
            "io.prometheus.write.v2.Request protobuf message is not accepted by this server; "
            "accepted [prometheus.WriteRequest]");
    refused(NULL, "gzip",
            "gzip encoding (compression) is not accepted by this server; only snappy is "
            "acceptable");
}
