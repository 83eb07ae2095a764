/*
 * Member checks of the monitor role (DESIGN.md §11): the modules, their
 * parameters, and one check run against one target.
 *
 * Modules and what they judge (defaults are the upstream IBP monitor's):
 *   ping    site      ICMP echo to the member's IPv4/IPv6 address
 *   ssl     domain    TLS to the member's address with SNI = the domain, full
 *                     chain and host name verification, days until expiry
 *   wss     endpoint  WebSocket over TLS to the member's address, Host/SNI =
 *                     the URL's host, the URL's path; Substrate JSON-RPC calls
 *   ethrpc  endpoint  HTTPS JSON-RPC POST (wss -> https) with Host/SNI
 *   tcp     any       TCP connect (the demo's check)
 * A check's module is ExtraOptions "module" when given, else its Name when
 * that names a module ("ssl"), else the part of its Name before the first
 * '-' ("tcp-site" -> tcp). A check whose module is unknown cannot run: the
 * checker reports it once (log and stats) and runs nothing for it.
 *
 * ExtraOptions keys (all optional; other keys are ignored, since the
 * upstream format grows, but every key below is type-checked):
 *   module                string  one of the module names
 *   port                  1..65535 port for every target (ssl: 443, wss and
 *                                 ethrpc: the URL's, else 443)
 *   ports                 {"Member": port}, before "port"
 *   connect               IP literal dialled instead of the member's address
 *                         (the local demo on loopback); its family only
 *   PingCount 3, PingInterval 100 (ms), PingTimeout 1000 (ms), PingSize 32
 *   (bytes of payload), PingTTL 64, MaxPacketLoss 5 (percent), MaxLatency
 *   800 (ms, average round trip)
 *   MinDaysUntilExpiry 5  (ssl)
 *   MinimumPeers 5        (wss)
 *   CheckArchive true     (wss: chain_getBlockHash(0) must answer)
 *   GenesisStateRoot ""   (wss: when set, the state root of block 0 must equal it)
 *   NetworkName ""        (wss, ethrpc: overrides the service's NetworkName)
 *
 * Every function here is pure and thread-safe (no I/O, no clock).
 */
#ifndef IBP_CHECK_H
#define IBP_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/status.h"

typedef enum ibp_check_module {
    IBP_CHECK_MODULE_TCP = 0,
    IBP_CHECK_MODULE_PING,
    IBP_CHECK_MODULE_SSL,
    IBP_CHECK_MODULE_WSS,
    IBP_CHECK_MODULE_ETHRPC,
    IBP_CHECK_MODULE_COUNT
} ibp_check_module;

/* "tcp", "ping", "ssl", "wss", "ethrpc"; "?" for anything else. */
const char *ibp_check_module_name(ibp_check_module m);

/* Parses a module name (any case). False when it names none. */
bool ibp_check_module_parse(const char *name, ibp_check_module *out);

#define IBP_CHECK_ADDR_MAX 64
#define IBP_CHECK_TEXT_MAX 256

/* A check's parsed ExtraOptions with the defaults filled in. */
typedef struct ibp_check_params {
    bool module_known; /* false: the module could not be told (cannot run) */
    ibp_check_module module;
    char module_text[64];             /* what named the module, for the "cannot run" report */
    unsigned port;                    /* 0: none given */
    char connect[IBP_CHECK_ADDR_MAX]; /* "" when not given */
    bool connect_v6;
    /* ping */
    int64_t ping_count, ping_interval_ms, ping_timeout_ms, ping_size, ping_ttl;
    double max_packet_loss_pct;
    int64_t max_latency_ms;
    /* ssl */
    int64_t min_days_until_expiry;
    /* wss, ethrpc */
    int64_t minimum_peers;
    bool check_archive;
    char genesis_state_root[IBP_CHECK_TEXT_MAX];
    char network_name[IBP_CHECK_TEXT_MAX];
    /* "ports": copies of (member, port), owned */
    struct ibp_check_port {
        char *member;
        unsigned port;
    } * ports;
    size_t port_count;
} ibp_check_params;

/*
 * Parses the ExtraOptions JSON text of the check named check_name into *out
 * (defaults for what is absent). IBP_E_CONFIG with "check <name>:
 * ExtraOptions.<key>: <what is wrong>" for a wrong type or range;
 * IBP_E_NOMEM. An unknown module is not an error (module_known false). On
 * success free it with ibp_check_params_free.
 */
ibp_status ibp_check_params_parse(const char *check_name, const char *extra_options,
                                  ibp_check_params *out, ibp_err *err);

/* Frees what the params own; accepts NULL. */
void ibp_check_params_free(ibp_check_params *p);

/* The port the options give for member ("ports" first, then "port"), 0 when none. */
unsigned ibp_check_params_port(const ibp_check_params *p, const char *member);

/* True when s is an IPv4 or IPv6 literal; *v6 tells which. */
bool ibp_check_ip_literal(const char *s, bool *v6);

#endif
