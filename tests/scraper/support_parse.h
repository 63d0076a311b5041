/* SPDX-License-Identifier: Apache-2.0 */
/* tests/scraper/support_parse.h: helpers shared by the parser tests. dump() parses a whole
 * body and renders every entry (or the final error) as one line of text, so a test states
 * the expected outcome as a string. check_prefixes() feeds every truncated prefix of a body,
 * placed right before a PROT_NONE page, and requires a clean result each time. */
#ifndef TESTS_SCRAPER_SUPPORT_PARSE_H
#define TESTS_SCRAPER_SUPPORT_PARSE_H

#include <stddef.h>

#include "scraper/scraper.h"

/* Renders entries, one per line:
 *   S <series> [<name>=<value>...] v=<shortest %g> [ts=<ms>] [fam=<family>/<type>] [created]
 *     [ex=<labels> <value> [<ts>]]
 *   H <name> <text>     T <name> <type>     U <name> <unit>     C <text>
 * then "EOF" or "ERR <code name>: <message>". Returns a static buffer. */
const char *dump(enum scrape_format f, const char *body, size_t len, unsigned flags);
#define DUMP(f, lit) dump((f), (lit), sizeof(lit) - 1, 0)

/* Initialises p over body and pulls the first entry into e (whose label array the caller
 * set), asserting that it parses. */
void first_entry(struct scrape_parser *p, struct scrape_entry *e, enum scrape_format f,
                 const char *body, size_t len);

/* Runs the parser over every prefix of body; each must end in EOF or an error without
 * touching bytes past the prefix. Returns the number of prefixes that ended in EOF. */
size_t check_prefixes(enum scrape_format f, const char *body, size_t len);

#endif
