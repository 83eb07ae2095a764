/*
 * Fuzz: opening a MaxMind DB (ibp_geo_open, which checks the metadata, walks
 * the search tree and decodes sample records). The input is written to a file
 * in a private temporary directory and opened as the City database; when it
 * is accepted, a few addresses are looked up and resolved.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "ibp/geo.h"

static const char *const addresses[] = {
    "1.1.1.1",
    "2.125.160.216",
    "81.2.69.160",
    "216.160.83.56",
    "::1",
    "2001:218::1",
    "::ffff:89.160.20.112",
    "0.0.0.0",
    "255.255.255.255",
    "ffff:ffff:ffff:ffff::1",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[512];
    if (!path[0]) {
        ibp_log_set_hook(ibp_fuzz_quiet_log, NULL);
        snprintf(path, sizeof path, "%s/fuzz.mmdb", ibp_fuzz_tmpdir());
    }
    ibp_fuzz_write_file(path, data, size);
    ibp_geo_opts opts;
    ibp_geo_opts_init(&opts);
    opts.city_db = path;
    ibp_geo *geo = NULL;
    ibp_err err;
    if (ibp_geo_open(&opts, &geo, &err) == IBP_OK) {
        for (size_t i = 0; i < sizeof addresses / sizeof addresses[0]; i++) {
            ibp_geo_info info;
            (void)ibp_geo_lookup(geo, addresses[i], &info);
        }
        ibp_geo_close(geo);
    }
    ibp_fuzz_empty_dir(ibp_fuzz_tmpdir());
    return 0;
}
