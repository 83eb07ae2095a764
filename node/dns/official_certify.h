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

/* Snapshots held at most; the oldest goes first. */
#define IBP__CERTIFY_PENDING_MAX 8
/* Statements held at most (for epochs above the applied one). */
#define IBP__CERTIFY_STATEMENTS_MAX 1024

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
    uint8_t *data;
    size_t len;
} ibp__certify_stmt;

typedef struct ibp__certify {
    const ibp_roster *roster;
    size_t quorum;
    ibp__certify_pending pending[IBP__CERTIFY_PENDING_MAX];
    size_t npending;
    ibp__certify_stmt *stmts;
    size_t nstmts;
} ibp__certify;

void ibp__certify_init(ibp__certify *c, const ibp_roster *roster, size_t quorum);
void ibp__certify_clear(ibp__certify *c);

/*
 * Keeps a copy of a statement envelope when its epoch is above min_epoch
 * (read without checking the signature: the verifier judges it with the
 * others). false when it is not kept (old, not a statement, a copy, full).
 */
bool ibp__certify_add_statement(ibp__certify *c, const uint8_t *data, size_t len,
                                uint64_t min_epoch);

/* Holds a snapshot, taking p->vm (the caller's is zeroed). *evicted (may be
 * NULL) says whether an older held snapshot had to go. */
void ibp__certify_add_snapshot(ibp__certify *c, ibp__certify_pending *p, bool *evicted);

/*
 * The newest held snapshot above have_epoch whose statements certify it
 * (have_prev: the caller holds have_epoch with digest prev), or -1. *result
 * is the verifier's judgement of it (or of the newest held one when none is
 * certified). *certificate (may be NULL) receives the certified snapshot's
 * EpochCertificate bytes (malloc'd) holding every statement of its epoch.
 */
int ibp__certify_find(ibp__certify *c, uint64_t have_epoch, bool have_prev, const uint8_t *prev,
                      ibp_certificate_result *result, uint8_t **certificate, size_t *cert_len);

/*
 * Forgets held snapshots and statements of epochs <= epoch; returns how many
 * held snapshots went without having been certified.
 */
size_t ibp__certify_forget_upto(ibp__certify *c, uint64_t epoch);

#endif
