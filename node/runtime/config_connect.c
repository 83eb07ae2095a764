/*
 * From the "nats.*" settings to the bus's connect and stream options; see
 * ibp_config_nats_connect and ibp_config_nats_stream_opts in
 * ibp/node_config.h.
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

void ibp_config_nats_stream_opts(const ibp_config_nats *cfg, ibp_bus_stream_opts *opts)
{
    ibp_bus_stream_opts_init(opts);
    opts->replicas = (int)cfg->stream_replicas;
    opts->local_max_age_ms = cfg->local_max_age_ms;
    opts->events_max_age_ms = cfg->events_max_age_ms;
    opts->hits_max_age_ms = cfg->hits_max_age_ms;
    opts->official_keep = cfg->official_keep;
    opts->official_memory = cfg->official_memory;
    opts->official_max_bytes = cfg->official_max_bytes;
    opts->update_existing = true;
}
