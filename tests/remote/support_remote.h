/* SPDX-License-Identifier: Apache-2.0 */
/* tests/remote/support_remote.h: building remote-write bodies with the generated protobuf-c
 * code (the sender's side) and reading a tsdb back as text, for the remote suite. */
#ifndef TESTS_REMOTE_SUPPORT_REMOTE_H
#define TESTS_REMOTE_SUPPORT_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "remote.pb-c.h"

struct tsdb;

#define RWB_SERIES 64
#define RWB_LABELS 16
#define RWB_SAMPLES 16

/* A WriteRequest under construction; everything lives inside the struct (no allocation). */
struct rwb {
    RemotePb__WriteRequest wr;
    RemotePb__TimeSeries ts[RWB_SERIES], *tsp[RWB_SERIES];
    RemotePb__Label lab[RWB_SERIES][RWB_LABELS], *labp[RWB_SERIES][RWB_LABELS];
    RemotePb__Sample smp[RWB_SERIES][RWB_SAMPLES], *smpp[RWB_SERIES][RWB_SAMPLES];
    RemotePb__Histogram hist[RWB_SERIES], *histp[RWB_SERIES];
    RemotePb__Exemplar ex[RWB_SERIES], *exp_[RWB_SERIES];
    RemotePb__MetricMetadata md[4], *mdp[4];
};

void rwb_init(struct rwb *b);
/* Adds a series: kv = "name", "value", ..., NULL (order kept as given); n samples t[i], v[i].
 * Returns the series index. */
size_t rwb_series(struct rwb *b, const char *const *kv, const int64_t *t, const double *v,
                  size_t n);
/* One label whose bytes are given with a length (NUL bytes, invalid UTF-8). */
void rwb_label_bytes(struct rwb *b, size_t series, const char *name, const void *value, size_t len);
void rwb_histogram(struct rwb *b, size_t series, int64_t t);
void rwb_exemplar(struct rwb *b, size_t series, double v, int64_t t);
void rwb_metadata(struct rwb *b, const char *family, const char *help);

/* Packed protobuf bytes (mp_free them). */
uint8_t *rwb_pack(const struct rwb *b, size_t *len);
/* Snappy block format of p[0..n) (mp_free it). */
uint8_t *rw_snappy(const uint8_t *p, size_t n, size_t *len);
/* Packed and compressed: a request body. */
uint8_t *rwb_body(const struct rwb *b, size_t *len);

/* Every series of db as lines "{labels} t:v t:v\n" in label order (mp_free it). */
char *rw_dump(struct tsdb *db);

/* A fresh data directory and a db in it (no background thread, no fsync). */
struct tsdb *rw_db_open(char dir[64]);
void rw_db_close(struct tsdb *db, const char *dir);

#endif
