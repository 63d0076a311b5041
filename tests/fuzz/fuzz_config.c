/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_config.c: prometheus.yml loader target. Any input must load or fail with
 * an error; a loaded config must also print and load back. Only crashes, leaks and UB count;
 * built with -fsanitize=fuzzer under clang, or run by replay_main.c over the corpus. */
#include <stddef.h>
#include <stdint.h>

#include "common/str.h"
#include "configs/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfg_config *cfg = NULL;
    struct mp_err err;
    mp_err_clear(&err);
    if (cfg_config_load_buf("fuzz.yml", (const char *)data, size, &cfg, &err) != 0)
        return 0;
    struct mp_buf b;
    mp_buf_init(&b, 1 << 24);
    if (cfg_config_to_yaml(cfg, &b) == 0) {
        struct cfg_config *again = NULL;
        mp_err_clear(&err);
        /* what we print must load again; a failure here is a bug worth a crash report */
        if (cfg_config_load_buf("reprinted.yml", b.data, b.len, &again, &err) != 0)
            __builtin_trap();
        cfg_config_destroy(again);
    }
    mp_buf_fini(&b);
    cfg_config_destroy(cfg);
    return 0;
}
