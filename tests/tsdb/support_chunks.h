/* SPDX-License-Identifier: Apache-2.0 */
/* tests/tsdb/support_chunks.h: helpers of the chunk file tests (test_chunks.c,
 * test_head_chunks.c): a fixed-seed xorshift, temp dirs, whole-file reads, and random XOR chunks
 * made with the real codec. Failures are Criterion assertion failures. */
#ifndef TESTS_TSDB_SUPPORT_CHUNKS_H
#define TESTS_TSDB_SUPPORT_CHUNKS_H

#include <stddef.h>
#include <stdint.h>

uint64_t sc_rnd(uint64_t *state);
/* A new directory /tmp/mp-<tag>-XXXXXX (on /dev/shm when available); free() the result after
 * sc_rmrf. */
char *sc_mktmp(const char *tag);
void sc_rmrf(const char *path);
/* Whole file, malloc'd (NULL if it cannot be read). */
uint8_t *sc_slurp(const char *path, size_t *len);
void sc_spit(const char *path, const void *data, size_t len);
/* Sets the soft RLIMIT_FSIZE (0: back to the hard limit) and ignores SIGXFSZ, so that write()
 * past the limit fails with EFBIG. Criterion runs each test in its own process. */
void sc_limit_file_size(uint64_t bytes);
/* Asserts that the file at path holds exactly want[0..len). */
void sc_assert_file_eq(const char *path, const uint8_t *want, size_t len, const char *what);
/* A chunk of 1..max_samples samples (a random walk of timestamps and values) made with
 * tsdb_xor; malloc'd; *mint and *maxt get its first and last timestamps. */
uint8_t *sc_random_xor(uint64_t *state, size_t max_samples, size_t *len, int64_t *mint,
                       int64_t *maxt);

#endif
