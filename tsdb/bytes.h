/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/bytes.h (private to tsdb): the primitive on-disk encodings of tsdb.md 0 for writers:
 * big-endian fixed width, Go's uvarint (LEB128) and zig-zag varint. Readers keep their own
 * bounds-checked cursors. Stateless; header-only. */
#ifndef TSDB_BYTES_H
#define TSDB_BYTES_H

#include <stddef.h>
#include <stdint.h>

static inline void tsdb_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint32_t tsdb_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Writes 1..10 bytes at p (room for 10 needed); returns the count. */
static inline size_t tsdb_put_uvarint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static inline size_t tsdb_put_varint(uint8_t *p, int64_t x)
{
    uint64_t u = (uint64_t)x;
    return tsdb_put_uvarint(p, (u << 1) ^ (0 - (u >> 63)));
}

#endif
