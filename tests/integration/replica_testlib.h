/*
 * Helpers shared by the integration tests that run consensus replicas in the
 * test process (replica_test, replica_bootstrap_test): signers, monitors'
 * observations of one endpoint key, waiting for replicas, reading OFFICIAL.
 *
 * Every helper fails the test (cmocka fail_msg) with context on error.
 */
#ifndef IBP_REPLICA_TESTLIB_H
#define IBP_REPLICA_TESTLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include "ibp/certificate.h"
#include "ibp/envelope.h"
#include "ibp/replica.h"
#include "ibp/roster.h"

/* The endpoint key every observation is about. */
#define RT_ENDPOINT "wss://rpc.example.net/polkadot"

void rt_sleep_ms(int ms);

/* Fails the test unless st is IBP_OK. */
void rt_must(ibp_status st, const ibp_err *err);

/* A signer for id with its sequence file in dir. */
ibp_signer *rt_signer(const char *dir, const char *id, const ibp_key *key);

/*
 * Adds n nodes "<prefix>1".."<prefix>n" with role to roster, each with a new
 * key (keys[i]) and a signer (signers[i], sequence file in dir).
 */
void rt_add_nodes(ibp_roster *roster, const char *dir, const char *prefix, unsigned role, int n,
                  ibp_key *keys, ibp_signer **signers);

/*
 * Monitor s publishes one ObservationBatch (batch_seq) of the test endpoint,
 * up or down, checked at check_time_ms, to ibp.local.<s>; returns its LOCAL
 * sequence. *keep (may be NULL) receives the sealed envelope (the caller frees
 * it), for a replay.
 */
uint64_t rt_observe(jsCtx *js, ibp_signer *s, bool up, uint64_t batch_seq, int64_t check_time_ms,
                    uint8_t **keep, size_t *keep_len);

/* Waits until every replica of reps read up to LOCAL seq (10 s at most). */
void rt_wait_applied(ibp_replica **reps, size_t n, uint64_t seq);

/*
 * The epochs of the snapshots on OFFICIAL that verify against roster, in
 * stream order (at most cap); *last_down (may be NULL) whether the last
 * one-entry snapshot says down.
 */
size_t rt_official_epochs(jsCtx *js, const ibp_roster *roster, uint64_t *epochs, size_t cap,
                          int *last_down);

/*
 * Judges the first snapshot of epoch on OFFICIAL with every statement on
 * COSIGN (ibp/certificate.h) with quorum, without a previous epoch: *out
 * says how many consensus nodes vouch for it. Fails the test when OFFICIAL
 * holds no snapshot of epoch.
 */
void rt_certify_epoch(jsCtx *js, const ibp_roster *roster, uint64_t epoch, size_t quorum,
                      ibp_certificate_result *out);

#endif
