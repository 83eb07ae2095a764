/*
 * The pass/fail rules of the check modules (DESIGN.md §11) and the reading of
 * the responses they judge: plain inputs, plain outputs, no I/O, no clock
 * (the caller passes the time). Every function is pure and thread-safe.
 *
 * Each judge returns true (up) or false (down) and writes the reason for a
 * down into why (at most cap bytes, NUL-terminated; "" when up). Each _data
 * function returns the Data object of the result as compact JSON text
 * (malloc'd, the caller frees; NULL when out of memory).
 */
#ifndef IBP_CHECK_RULES_H
#define IBP_CHECK_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/check.h"

/* ---- ping ---------------------------------------------------------------- */

typedef struct ibp_ping_stats {
    int64_t sent, received;
    double loss_pct;               /* 100 * (sent - received) / sent */
    double min_ms, avg_ms, max_ms; /* over the replies; 0 when none */
} ibp_ping_stats;

/* Fills *out from the round trips (ms) of the replies received out of sent. */
void ibp_ping_stats_make(const double *rtt_ms, size_t received, size_t sent, ibp_ping_stats *out);

/* Up iff some reply came back, loss <= MaxPacketLoss and average RTT <= MaxLatency. */
bool ibp_ping_judge(const ibp_check_params *p, const ibp_ping_stats *s, char *why, size_t cap);

/* {"sent","received","loss","min_rtt_ms","avg_rtt_ms","max_rtt_ms"} */
char *ibp_ping_data(const ibp_ping_stats *s);

/* ---- ssl ----------------------------------------------------------------- */

typedef struct ibp_ssl_facts {
    int64_t not_after_s; /* leaf certificate's expiry, Unix seconds */
    unsigned port;
    char issuer[IBP_CHECK_TEXT_MAX];
    char subject[IBP_CHECK_TEXT_MAX];
} ibp_ssl_facts;

/* Whole days from now_s to expiry, rounded down (negative once expired). */
int64_t ibp_ssl_days_until(int64_t not_after_s, int64_t now_s);

/* Up iff the certificate has at least MinDaysUntilExpiry whole days left. */
bool ibp_ssl_judge(const ibp_check_params *p, const ibp_ssl_facts *f, int64_t now_s, char *why,
                   size_t cap);

/* {"ExpiryTimestamp","DaysUntilExpiry","Port","Issuer","Subject"} */
char *ibp_ssl_data(const ibp_ssl_facts *f, int64_t now_s);

/* ---- JSON-RPC ------------------------------------------------------------ */

/*
 * Reads one JSON-RPC 2.0 response (body[0..len)) to the request with id:
 * true with *result set (a new reference, the caller json_decref's it;
 * jansson's json_t) when it is a response to that id with a "result";
 * false with the reason in why otherwise (not JSON, not an object, another
 * id, an "error" object: its code and message are quoted).
 */
struct json_t;
bool ibp_jsonrpc_read(const char *body, size_t len, int64_t id, struct json_t **result, char *why,
                      size_t cap);

/* Writes {"jsonrpc":"2.0","id":id,"method":method,"params":params_json} into buf. */
int ibp_jsonrpc_request(char *buf, size_t cap, int64_t id, const char *method,
                        const char *params_json);

/* ---- wss (Substrate) ----------------------------------------------------- */

typedef struct ibp_substrate_facts {
    bool have_latest;
    char latest_hash[IBP_CHECK_TEXT_MAX]; /* chain_getBlockHash() */
    bool have_genesis;
    char genesis_hash[IBP_CHECK_TEXT_MAX]; /* chain_getBlockHash(0): archive */
    bool have_state_root;
    char state_root[IBP_CHECK_TEXT_MAX]; /* chain_getHeader(genesis).stateRoot */
    bool have_chain;
    char chain[IBP_CHECK_TEXT_MAX]; /* system_chain */
    bool have_health;
    int64_t peers; /* system_health.peers */
    bool syncing;  /* system_health.isSyncing */
    int64_t latency_ms;
} ibp_substrate_facts;

/*
 * Takes one call's result into *f: "chain_getBlockHash" (latest when
 * genesis is false, block 0 otherwise), "chain_getHeader" (stateRoot),
 * "system_chain", "system_health". False with why when the result does not
 * have the expected shape (a block hash must be a non-empty "0x" hex string;
 * health an object with an integer "peers" and a boolean "isSyncing").
 */
bool ibp_substrate_take(ibp_substrate_facts *f, const char *method, bool genesis,
                        const struct json_t *result, char *why, size_t cap);

/*
 * Up iff: latest block hash non-empty; (CheckArchive) block 0's hash
 * non-empty; (GenesisStateRoot set) block 0's state root equals it (case
 * aside); system_chain equals the network name (the NetworkName option,
 * else network_name; not compared when both are empty), case aside;
 * system_health peers >= MinimumPeers and not syncing.
 */
bool ibp_substrate_judge(const ibp_check_params *p, const char *network_name,
                         const ibp_substrate_facts *f, char *why, size_t cap);

/* {"Syncing","Peers","Network","Archive","BlockHash","LatencyMs"} */
char *ibp_substrate_data(const ibp_substrate_facts *f);

/* ---- ethrpc -------------------------------------------------------------- */

typedef struct ibp_eth_facts {
    bool have_chain_id;
    uint64_t chain_id; /* eth_chainId */
    bool have_block;
    uint64_t block_number; /* eth_blockNumber */
    bool have_net_version;
    char net_version[64]; /* net_version */
    bool have_syncing;
    bool syncing; /* eth_syncing: false, or a progress object (true) */
    int64_t latency_ms;
} ibp_eth_facts;

/*
 * Takes one call's result into *f: "eth_chainId" and "eth_blockNumber" (a
 * "0x" hex quantity), "net_version" (a decimal string), "eth_syncing"
 * (false, or an object: syncing). False with why for any other shape.
 */
bool ibp_eth_take(ibp_eth_facts *f, const char *method, const struct json_t *result, char *why,
                  size_t cap);

/*
 * Up iff every call answered, eth_syncing is false, and the network name (as
 * for wss; not compared when empty) equals net_version or the chain id in
 * decimal or 0x hex (case aside).
 */
bool ibp_eth_judge(const ibp_check_params *p, const char *network_name, const ibp_eth_facts *f,
                   char *why, size_t cap);

/* {"ChainId","BlockNumber","NetVersion","Syncing","LatencyMs"} */
char *ibp_eth_data(const ibp_eth_facts *f);

#endif
