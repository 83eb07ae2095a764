/*
 * Fuzz: the config loaders. The low bit of the first byte picks the loader
 * (0: ibp-node, ibp_node_config_load_buffer; 1: ibp-persist,
 * ibp_persist_config_load_buffer), the rest is the JSON text.
 */
#include <stdint.h>

#include "fuzz_common.h"
#include "ibp/node_config.h"
#include "ibp/persist_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int initialised;
    if (!initialised) {
        ibp_log_set_hook(ibp_fuzz_quiet_log, NULL);
        initialised = 1;
    }
    if (size < 1)
        return 0;
    const char *text = (const char *)data + 1;
    ibp_err err;
    if (data[0] & 1) {
        ibp_persist_config cfg;
        if (ibp_persist_config_load_buffer(text, size - 1, "fuzz", &cfg, &err) == IBP_OK) {
            ibp_persist_config_free(&cfg);
            ibp_persist_config_free(&cfg); /* documented harmless */
        }
    } else {
        ibp_node_config cfg;
        if (ibp_node_config_load_buffer(text, size - 1, "fuzz", &cfg, &err) == IBP_OK) {
            (void)ibp_node_config_staleness_ms(&cfg);
            ibp_node_config_free(&cfg);
            ibp_node_config_free(&cfg);
        }
    }
    return 0;
}
