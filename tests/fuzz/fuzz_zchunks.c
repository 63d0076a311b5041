/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_zchunks.c: arbitrary bytes as a compressed chunk segment (tsdb/zchunks.c
 * reader: header, footer, frame table, zstd frames, records), read at many refs, verbatim and
 * with the footer and table made consistent so that the frame decoding itself is reached. Only
 * crashes, leaks, over-reads and UB count; every error return is fine. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/bytes.h"
#include "tsdb/wal.h"
#include "tsdb/zchunks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t sink;

static void read_all(const uint8_t *p, size_t n)
{
    struct tsdb_zchunks_reader *r = NULL;
    if (tsdb_zchunks_reader_open_mem(p, n, &r, NULL) != 0)
        return;
    struct tsdb_zchunks_cache c;
    tsdb_zchunks_cache_init(&c, 1u << 20);
    for (uint64_t frame = 0; frame < 4; frame++) {
        for (uint64_t off = 0; off < 512; off += 1 + off / 16) {
            uint8_t enc;
            const uint8_t *d;
            size_t len;
            if (tsdb_zchunks_reader_get(r, &c, frame << 24 | off, &enc, &d, &len, NULL) == 0)
                sink ^= len ? d[0] ^ d[len - 1] : enc;
        }
        tsdb_zchunks_cache_trim(&c);
    }
    tsdb_zchunks_cache_fini(&c);
    tsdb_zchunks_reader_close(r);
}

/* The input as the payload of one frame table entry pointing at it, so zstd sees it. */
static void read_wrapped(const uint8_t *data, size_t size)
{
    size_t n = 8 + size + 16 + 20;
    uint8_t *p = malloc(n);
    if (!p)
        return;
    memset(p, 0, 8);
    tsdb_put_be32(p, TSDB_ZCHUNKS_MAGIC);
    p[4] = TSDB_ZCHUNKS_VERSION;
    memcpy(p + 8, data, size);
    uint8_t *t = p + 8 + size;
    tsdb_put_be64(t, 8);
    tsdb_put_be32(t + 8, (uint32_t)size);
    tsdb_put_be32(t + 12, size ? (uint32_t)(data[0] | data[size - 1] << 8) * 16u : 0);
    uint8_t *f = t + 16;
    tsdb_put_be64(f, 8 + size);
    tsdb_put_be32(f + 8, 1);
    tsdb_put_be32(f + 12, tsdb_crc32c(0, t, 16));
    tsdb_put_be32(f + 16, TSDB_ZCHUNKS_MAGIC);
    read_all(p, n);
    free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    read_all(data, size);
    read_wrapped(data, size);
    return 0;
}
