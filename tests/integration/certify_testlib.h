/*
 * A consensus cluster in the test process, for the tests of quorum
 * certificates (replica_down_certify_test, official_cache_refused_test): a
 * private nats-server and MariaDB (tests/harness), CT_MONITORS monitor
 * signers and n consensus replicas (ibp/replica.h) that log in with the
 * consensus role's NATS identity. Each replica can be stopped and started
 * again from its work dir, as a replica that went down and came back.
 *
 * The roster (saved as <dir>/roster.json) holds the monitors mon1.., the
 * replicas rep1.. and a dns node dns1 whose key is saved as <dir>/dns1.key,
 * for a test that runs ibp-node as that node.
 *
 * Every call fails the test (cmocka) with context on error. Not thread-safe:
 * call from the test's main thread.
 */
#ifndef IBP_CERTIFY_TESTLIB_H
#define IBP_CERTIFY_TESTLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include "ibp/key.h"
#include "ibp/replica.h"
#include "ibp/roster.h"
#include "testenv.h"

#define CT_MONITORS 5
#define CT_REPLICAS_MAX 5

typedef struct ct_cluster {
    ibp_testenv_private servers;
    char dir[1024]; /* private: signers' sequence files, replicas' work dirs, the roster */
    ibp_roster *roster;
    int replicas;
    ibp_key mon_key[CT_MONITORS], rep_key[CT_REPLICAS_MAX], dns_key;
    ibp_signer *mon[CT_MONITORS], *rep_signer[CT_REPLICAS_MAX];
    natsConnection *nc; /* the test administrator's */
    jsCtx *js;
    natsConnection *rep_nc[CT_REPLICAS_MAX];
    ibp_replica *rep[CT_REPLICAS_MAX]; /* NULL while stopped */
    uint64_t batch_seq;
    bool up; /* what the monitors said last about the test key */
} ct_cluster;

/* Starts the servers and `replicas` replicas (at most CT_REPLICAS_MAX), every one running. */
void ct_cluster_start(ct_cluster *c, int replicas);

/* Stops every replica and the servers, removes the private directory. Accepts a zeroed c. */
void ct_cluster_stop(ct_cluster *c);

/* Starts replica i (0-based) again from its work dir; it must be stopped. */
void ct_replica_start(ct_cluster *c, int i);

/* Stops replica i cleanly (its state is saved); it must be running. */
void ct_replica_stop(ct_cluster *c, int i);

/* A new connection to the servers as the NATS user of role (the caller destroys it). */
natsConnection *ct_connect(ct_cluster *c, ibp_testenv_nats_role role, const char *name);

/*
 * Every monitor reports the test key (replica_testlib.h's RT_ENDPOINT) with
 * the opposite of what they said last (first: up), which makes the next
 * epoch. Returns the LOCAL sequence of the last report.
 */
uint64_t ct_flip(ct_cluster *c);

/* The newest epoch of the snapshots on OFFICIAL that verify (0: none). */
uint64_t ct_official_epoch(ct_cluster *c);

/* Waits until OFFICIAL holds a snapshot of epoch or newer (30 s: sanitizer builds are slow). */
void ct_wait_published(ct_cluster *c, uint64_t epoch);

/* How many consensus nodes vouch for epoch on COSIGN (with its snapshot on OFFICIAL). */
size_t ct_signers(ct_cluster *c, uint64_t epoch);

#endif
