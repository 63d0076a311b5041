/* SPDX-License-Identifier: Apache-2.0 */
/* scraper/md5.h (private to scraper/ and tests/scraper/): MD5 (RFC 1321), only for the
 * hashmod relabel action, which Prometheus defines as md5 of the joined source values.
 * Not for anything security-related. Pure function, thread-safe. */
#ifndef SCRAPER_MD5_H
#define SCRAPER_MD5_H

#include <stddef.h>
#include <stdint.h>

/* digest = MD5(data[0..len)); data may be NULL when len is 0. */
void scrape_md5(const void *data, size_t len, uint8_t digest[16]);

#endif
