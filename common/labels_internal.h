/* SPDX-License-Identifier: Apache-2.0 */
/* common/labels_internal.h: private to common/intern.c, common/labels.c and their tests.
 * Layout of an interned string, so that label code reads lengths without a call. */
#ifndef COMMON_LABELS_INTERNAL_H
#define COMMON_LABELS_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

#include "common/labels.h"

/* Refcount value that never changes again: such a string lives until exit. Reached only by
 * saturation (4 billion holders) or by static objects. */
#define MP_ISTR_IMMORTAL UINT32_MAX

struct mp_istr {
    _Atomic uint32_t refs;
    uint32_t len;
    uint32_t hash; /* low 32 bits of XXH3 over the bytes: stripe and home slot */
    char s[];      /* len bytes, then NUL */
};

/* Number of stripes of the interner (exposed for tests that check striping). */
#define MP_INTERN_STRIPES 64

#endif
