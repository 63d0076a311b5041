/* SPDX-License-Identifier: Apache-2.0 */
/* tsdb/bytes.h (private to tsdb): the primitive on-disk encodings of tsdb.md 0 for writers:
 * big-endian fixed width, Go's uvarint (LEB128) and zig-zag varint, and a bounds-checked
 * uvarint decoder. Stateless; header-only. */
#ifndef TSDB_BYTES_H
#define TSDB_BYTES_H

#include <stddef.h>
#include <stdint.h>

#define TSDB_UVARINT_MAX_LEN 10u

static inline void tsdb_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

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

static inline void tsdb_put_be64(uint8_t *p, uint64_t v)
{
    tsdb_put_be32(p, (uint32_t)(v >> 32));
    tsdb_put_be32(p + 4, (uint32_t)v);
}

static inline uint64_t tsdb_get_be64(const uint8_t *p)
{
    return (uint64_t)tsdb_get_be32(p) << 32 | tsdb_get_be32(p + 4);
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

static inline size_t tsdb_uvarint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Decodes a uvarint from p[0..avail) as Go's binary.Uvarint: bytes used (> 0); 0 when the input
 * ends inside the number; -1 when it overflows 64 bits (more than 10 bytes, or a 10th byte > 1).
 * Reads nothing at or beyond p + avail. */
static inline int tsdb_get_uvarint(const uint8_t *p, size_t avail, uint64_t *v)
{
    uint64_t x = 0;
    unsigned s = 0;
    for (size_t i = 0; i < avail; i++) {
        if (i == TSDB_UVARINT_MAX_LEN)
            return -1;
        uint8_t b = p[i];
        if (b < 0x80) {
            if (i == TSDB_UVARINT_MAX_LEN - 1 && b > 1)
                return -1;
            *v = x | (uint64_t)b << s;
            return (int)i + 1;
        }
        x |= (uint64_t)(b & 0x7f) << s;
        s += 7;
    }
    return 0;
}

#endif
