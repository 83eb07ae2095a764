/*
 * From the "nats.*" settings to the bus's connect options; see
 * ibp_config_nats_connect in ibp/node_config.h.
 */
#include "ibp/node_config.h"

ibp_status ibp_config_nats_connect(const ibp_config_nats *cfg, const char *name,
                                   bool retry_at_start, natsConnection **out, ibp_err *err)
{
    ibp_bus_conn_opts opts = {
        .servers = (const char *const *)cfg->servers.items,
        .server_count = cfg->servers.count,
        .name = name,
        .retry_at_start = retry_at_start,
        .user = cfg->user,
        .password_file = cfg->password_file,
        .creds_file = cfg->creds_file,
        .nkey_seed_file = cfg->nkey_seed_file,
        .tls_ca_file = cfg->tls_ca_file,
        .tls_cert_file = cfg->tls_cert_file,
        .tls_key_file = cfg->tls_key_file,
    };
    return ibp_bus_connect(&opts, out, err);
}
