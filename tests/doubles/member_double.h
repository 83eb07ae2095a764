/*
 * Test doubles of a member's endpoints (DESIGN.md §2, tests/): TLS servers
 * on a loopback address and a free port, with a certificate the test made
 * (make-certs.sh), that behave as a test tells them:
 *
 *   IBP_DOUBLE_TLS        a TLS server and nothing more (the ssl check)
 *   IBP_DOUBLE_SUBSTRATE  a Substrate-like node: JSON-RPC over WebSocket
 *                         (chain_getBlockHash, chain_getHeader, system_chain,
 *                         system_health)
 *   IBP_DOUBLE_ETH        an Ethereum node: JSON-RPC over HTTPS POST
 *                         (eth_chainId, eth_blockNumber, net_version,
 *                         eth_syncing)
 *
 * Each connection is served by a thread of its own. The behaviour can be
 * changed at any time (ibp_double_set); it applies to the next request.
 * Thread-safe.
 */
#ifndef IBP_MEMBER_DOUBLE_H
#define IBP_MEMBER_DOUBLE_H

#include <stdbool.h>
#include <stdint.h>

typedef enum ibp_double_kind {
    IBP_DOUBLE_TLS,
    IBP_DOUBLE_SUBSTRATE,
    IBP_DOUBLE_ETH,
} ibp_double_kind;

typedef struct ibp_double_behaviour {
    /* Substrate */
    char chain[64];          /* system_chain; default "Paseo Testnet" */
    int64_t peers;           /* system_health.peers; default 12 */
    bool syncing;            /* system_health.isSyncing / eth_syncing */
    bool archive;            /* chain_getBlockHash(0) answers a hash; default true (else null) */
    int64_t delay_ms;        /* before each answer */
    bool hang_after_upgrade; /* upgrade, then never answer (until stop) */
    bool garbage;            /* answer a call with bytes that are no WebSocket frame */
    bool oversized;          /* answer a call with a 4 MiB text frame */
    bool close_mid_call;     /* close the connection when a call arrives */
    /* Ethereum */
    uint64_t chain_id;     /* default 420420420 */
    uint64_t block_number; /* default 436 */
} ibp_double_behaviour;

typedef struct ibp_double ibp_double;

/* The defaults above: a healthy node. */
void ibp_double_behaviour_init(ibp_double_behaviour *b);

/*
 * Starts a double of kind on addr ("127.0.0.1", "::1", or "::" for both
 * families on one port), port 0 for a free one, with the PEM certificate chain and key files.
 * Returns NULL after printing why. *port_out gets the port.
 */
ibp_double *ibp_double_start(ibp_double_kind kind, const char *addr, unsigned port,
                             const char *cert_file, const char *key_file, unsigned *port_out);

/* Replaces the behaviour (copied). */
void ibp_double_set(ibp_double *d, const ibp_double_behaviour *b);

/* Requests (calls, or TLS handshakes for IBP_DOUBLE_TLS) served so far. */
uint64_t ibp_double_requests(ibp_double *d);

/* The Host header (or SNI for IBP_DOUBLE_TLS) and path of the last request, copied into buf. */
void ibp_double_last_host(ibp_double *d, char *buf, size_t cap);
void ibp_double_last_path(ibp_double *d, char *buf, size_t cap);

/* Stops: closes the listener and every connection, waits for their threads. Accepts NULL. */
void ibp_double_stop(ibp_double *d);

#endif
