/*
 * Fuzz: the cache files (ibp_cache_load). The low bit of the first byte picks
 * the kind (0: official, 1: local); the rest is written to a file in a private
 * temporary directory of this process and loaded. A rejected file is moved
 * aside next to it, so the directory is emptied after every input and removed
 * at exit.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "ibp/cache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[512];
    if (!path[0]) {
        ibp_log_set_hook(ibp_fuzz_quiet_log, NULL);
        snprintf(path, sizeof path, "%s/fuzz.cache.json", ibp_fuzz_tmpdir());
    }
    if (size < 1)
        return 0;
    ibp_cache_kind kind = (data[0] & 1) ? IBP_CACHE_LOCAL : IBP_CACHE_OFFICIAL;
    ibp_fuzz_write_file(path, data + 1, size - 1);
    ibp_cache_loaded c;
    ibp_err err;
    if (ibp_cache_load(path, kind, &c, &err) == IBP_OK) {
        if (c.outcome == IBP_CACHE_LOADED) {
            if (c.kind != kind)
                abort();
            for (size_t i = 0; i < c.results.count; i++)
                if (!c.results.items[i])
                    abort();
        }
        ibp_cache_loaded_free(&c);
    }
    ibp_fuzz_empty_dir(ibp_fuzz_tmpdir());
    return 0;
}
