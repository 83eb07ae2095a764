/*
 * Private to the official subscriber: snapshots waiting for their quorum
 * certificate, and the epoch statements collected for them
 * (ibp/certificate.h). Plain memory, no NATS, no locking: the subscriber's
 * thread owns it.
 */
#ifndef IBP_OFFICIAL_CERTIFY_H
#define IBP_OFFICIAL_CERTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/certificate.h"
#include "ibp/envelope.h"

/*
 * What a consensus key that signs anything (stolen, or a replica gone bad)
 * can do here is flood: statements of any epoch and content, and snapshots
 * that pass the chain rule (a forged chain from the applied epoch on). It
 * must not push out what the honest replicas sent, so both stores are
 * shared out by signer:
 *  - statements: each consensus node of the roster may hold an equal share
 *    of IBP__CERTIFY_STATEMENTS_MAX; a signer at its share gives up its own
 *    lowest epoch, so a flood only ever evicts the flooder's statements.
 *    Only statements of consensus nodes whose signature verifies are kept
 *    (checked once, as they come, so that judging them again at every
 *    snapshot costs no signature check); at most
 *    IBP__CERTIFY_SIGNER_EPOCH_MAX per signer and epoch, and one of each
 *    content per signer.
 *  - held snapshots: when IBP__CERTIFY_PENDING_MAX are held, the signer
 *    holding the most (counting the newcomer) gives up its lowest epoch, so
 *    a signer that holds fewer than a flooder never loses one to the flood.
 */
#define IBP__CERTIFY_PENDING_MAX 8
#define IBP__CERTIFY_STATEMENTS_MAX 1024
/* An honest replica signs one statement per epoch (the same content again
 * after a restart); more are a dishonest key's. */
#define IBP__CERTIFY_SIGNER_EPOCH_MAX 4

typedef struct ibp__certify_pending {
    uint64_t epoch;
    uint64_t stream_seq;
    ibp_certificate_claim claim; /* have_prev is set when judged */
    ibp_verified vm;             /* the verified snapshot, owned (applied without a
                                    second decode) */
    char signer[IBP_NODE_ID_MAX + 1];
} ibp__certify_pending;

typedef struct ibp__certify_stmt {
    uint64_t epoch;
    size_t signer;               /* the signer's index in the roster */
    ibp_epoch_statement content; /* as decoded */
    uint8_t *data;
    size_t len;
} ibp__certify_stmt;

typedef struct ibp__certify {
    const ibp_roster *roster;
    size_t quorum;
    size_t share; /* statements one consensus node may hold (0: no consensus node) */
    ibp__certify_pending pending[IBP__CERTIFY_PENDING_MAX]; /* by epoch, then arrival */
    size_t npending;
    ibp__certify_stmt *stmts; /* room for share x consensus nodes */
    size_t nstmts;
    size_t *held; /* statements held, by roster index */
} ibp__certify;

void ibp__certify_init(ibp__certify *c, const ibp_roster *roster, size_t quorum);
void ibp__certify_clear(ibp__certify *c);

/*
 * Keeps a copy of a statement envelope when it is an EpochStatement of an
 * epoch above min_epoch signed by a consensus node of the roster (the
 * signature checked last, when everything cheaper passed). false when it is
 * not kept: old, not a statement, not a consensus node's, bad signature, a
 * copy of what its signer said already, the signer's limit for the epoch, or
 * its share is full of higher epochs.
 */
bool ibp__certify_add_statement(ibp__certify *c, const uint8_t *data, size_t len,
                                uint64_t min_epoch);

/*
 * Holds a snapshot, taking p->vm (the caller's is zeroed). When
 * IBP__CERTIFY_PENDING_MAX are held already, one goes: the lowest epoch of
 * the signer holding the most, counting p (ties: p's signer, then the signer
 * of the lowest epoch held), p itself when it is not above that signer's
 * lowest. *evicted (may be NULL) says whether one went, held or p.
 */
void ibp__certify_add_snapshot(ibp__certify *c, ibp__certify_pending *p, bool *evicted);

/*
 * The held snapshot of the highest epoch above have_epoch whose statements
 * certify it (have_prev: the caller holds have_epoch with digest prev), or
 * -1. *result is the verifier's judgement of it (or of the highest held one
 * when none is certified). *certificate (may be NULL) receives the certified
 * snapshot's EpochCertificate bytes (malloc'd) holding every statement of
 * its epoch (at most IBP_CERT_STATEMENTS_MAX).
 */
int ibp__certify_find(ibp__certify *c, uint64_t have_epoch, bool have_prev, const uint8_t *prev,
                      ibp_certificate_result *result, uint8_t **certificate, size_t *cert_len);

/*
 * Forgets held snapshots and statements of epochs <= epoch; returns how many
 * held snapshots went without having been certified.
 */
size_t ibp__certify_forget_upto(ibp__certify *c, uint64_t epoch);

#endif
