/* SPDX-License-Identifier: Apache-2.0 */
/* remote/encode.c: a remote-write 1.0 request body from series (protocols.md 5.1-5.3): a
 * prometheus.WriteRequest packed by protobuf-c, then one snappy block. The protobuf structs
 * point at the caller's strings and samples (protobuf-c packs from pointers), so the only
 * copies are the packed message and its compressed form. */
#include "remote/remote.h"

#include <snappy-c.h>
#include <string.h>

#include "common/alloc.h"
#include "common/labels.h"
#include "common/str.h"
#include "remote.pb-c.h"

static ProtobufCBinaryData bin(struct mp_str s)
{
    return (ProtobufCBinaryData){.len = s.len, .data = (uint8_t *)(uintptr_t)s.ptr};
}

int remote_write_encode(const struct remote_write_series *s, size_t n, struct mp_buf *out,
                        struct mp_err *err)
{
    size_t nlabels = 0, nsamples = 0;
    for (size_t i = 0; i < n; i++) {
        nlabels += s[i].nlabels;
        nsamples += s[i].nsamples;
    }
    RemotePb__TimeSeries *ts = mp_malloc((n ? n : 1) * sizeof *ts);
    RemotePb__TimeSeries **tsp = mp_malloc((n ? n : 1) * sizeof *tsp);
    RemotePb__Label *lab = mp_malloc((nlabels ? nlabels : 1) * sizeof *lab);
    RemotePb__Label **labp = mp_malloc((nlabels ? nlabels : 1) * sizeof *labp);
    RemotePb__Sample *smp = mp_malloc((nsamples ? nsamples : 1) * sizeof *smp);
    RemotePb__Sample **smpp = mp_malloc((nsamples ? nsamples : 1) * sizeof *smpp);
    uint8_t *raw = NULL;
    int rc = MP_ENOMEM;
    if (!ts || !tsp || !lab || !labp || !smp || !smpp)
        goto out;
    size_t li = 0, si = 0;
    for (size_t i = 0; i < n; i++) {
        remote_pb__time_series__init(&ts[i]);
        ts[i].labels = &labp[li];
        ts[i].n_labels = s[i].nlabels;
        for (size_t j = 0; j < s[i].nlabels; j++, li++) {
            remote_pb__label__init(&lab[li]);
            lab[li].name = bin(s[i].labels[j].name);
            lab[li].value = bin(s[i].labels[j].value);
            labp[li] = &lab[li];
        }
        ts[i].samples = &smpp[si];
        ts[i].n_samples = s[i].nsamples;
        for (size_t j = 0; j < s[i].nsamples; j++, si++) {
            remote_pb__sample__init(&smp[si]);
            smp[si].timestamp = s[i].t_ms[j];
            smp[si].value = s[i].v[j];
            smpp[si] = &smp[si];
        }
        tsp[i] = &ts[i];
    }
    RemotePb__WriteRequest wr;
    remote_pb__write_request__init(&wr);
    wr.timeseries = tsp;
    wr.n_timeseries = n;
    size_t raw_len = remote_pb__write_request__get_packed_size(&wr);
    raw = mp_malloc(raw_len ? raw_len : 1);
    if (!raw)
        goto out;
    remote_pb__write_request__pack(&wr, raw);
    size_t clen = snappy_max_compressed_length(raw_len);
    mp_buf_reset(out);
    rc = mp_buf_reserve(out, clen);
    if (rc != 0)
        goto out;
    if (snappy_compress((const char *)raw, raw_len, out->data, &clen) != SNAPPY_OK) {
        rc = mp_err_set(err, MP_EINVAL, "snappy: cannot compress %zu bytes", raw_len);
        goto out;
    }
    out->len = clen;
    rc = 0;
out:
    if (rc == MP_ENOMEM || rc == MP_ELIMIT)
        mp_err_set(err, rc, "remote write: no room to encode %zu series", n);
    mp_free(raw);
    mp_free(smpp);
    mp_free(smp);
    mp_free(labp);
    mp_free(lab);
    mp_free(tsp);
    mp_free(ts);
    return rc;
}
