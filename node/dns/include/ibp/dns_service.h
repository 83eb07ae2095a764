/*
 * The dns role's answering service, assembled (DESIGN.md §12): reads the
 * static records file, builds the zones and the answer selector, opens the
 * City database for client locations, and serves the PowerDNS remote
 * backend on a unix socket (always) and over HTTP (when a port is set).
 * ibp-node starts one with its config's dns.* keys.
 *
 * Default connector: the unix socket. Measured with tests/bench/dns_bench
 * (PowerDNS 4.7 on the same machine, the same pdns.conf), it carries several
 * times the queries per second of the HTTP connector: one persistent stream
 * per PowerDNS backend thread, one line per request, no HTTP on either side;
 * and PowerDNS's HTTP connector polls its kept-alive connection for up to
 * 1 ms before each request, so a backend thread manages under 1000 requests/s
 * over HTTP. HTTP is there for upstream pdns.conf files
 * (remote-connection-string=http:url=...,post=1,post_json=1) and for
 * backends on another host.
 *
 * Thread safety: start and stop from one thread; the stats call from any.
 */
#ifndef IBP_DNS_SERVICE_H
#define IBP_DNS_SERVICE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/dns_backend.h"
#include "ibp/dns_connector.h"
#include "ibp/network.h"
#include "ibp/node_config.h"
#include "ibp/status.h"
#include "ibp/store.h"
#include "ibp/usage.h"

#define IBP_DNS_SOCKET_NAME "dns-backend.sock"

typedef struct ibp_dns_service_opts {
    const ibp_network *network;      /* required, borrowed */
    ibp_store *store;                /* required, borrowed */
    ibp_usage *usage;                /* optional, borrowed */
    const char *city_db;             /* optional */
    const char *static_records_file; /* optional */
    const char *const *zones;        /* optional explicit zones */
    size_t zone_count;
    const char *const *country_overrides; /* "CC=member" / "CC=address" */
    size_t country_override_count;
    uint32_t ttl_s, last_resort_ttl_s, negative_ttl_s;
    const char *unix_socket; /* required */
    const char *http_address;
    unsigned http_port; /* 0: no HTTP connector */
    unsigned http_threads;
    size_t max_request_bytes;
} ibp_dns_service_opts;

typedef struct ibp_dns_service ibp_dns_service;

void ibp_dns_service_opts_init(ibp_dns_service_opts *opts);

/*
 * Fills opts from an ibp-node config (dns.* and maxmind.city_db); the
 * unix socket defaults to <work dir>/dns-backend.sock in path (cap bytes).
 * Pointers borrow from cfg and path.
 */
void ibp_dns_service_opts_from_config(ibp_dns_service_opts *opts, const ibp_node_config *cfg,
                                      char *path, size_t cap);

/*
 * Starts the service. Errors: IBP_E_IO (a file or socket), IBP_E_CONFIG (the
 * static records, an override, a database), IBP_E_NOMEM, IBP_E_INVAL.
 */
ibp_status ibp_dns_service_start(const ibp_dns_service_opts *opts, ibp_dns_service **out,
                                 ibp_err *err);
void ibp_dns_service_stop(ibp_dns_service *s);

/* The backend (for tests and benchmarks). */
ibp_dns_backend *ibp_dns_service_backend(ibp_dns_service *s);
/* The HTTP port, 0 without HTTP. */
unsigned ibp_dns_service_http_port(const ibp_dns_service *s);

/* Adds "dns": {backend and connector counters} to obj (for $SRV.STATS and status). */
void ibp_dns_service_stats_json(ibp_dns_service *s, json_t *obj);

#endif
