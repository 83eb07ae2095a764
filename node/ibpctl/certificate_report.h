/*
 * The quorum certificate of an official snapshot as `ibpctl snapshot` and
 * `ibpctl audit` report it (README, "Quorum certificates"): the epoch
 * statements of its epoch read from stream COSIGN, on the subject of each of
 * the roster's consensus nodes, judged against the roster
 * (ibp_certificate_verify_each), so an operator applies an epoch under the
 * same rule as a dns node.
 */
#ifndef IBPCTL_CERTIFICATE_REPORT_H
#define IBPCTL_CERTIFICATE_REPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include "ibp/ibp.pb-c.h"
#include "ibp/roster.h"
#include "ibp/status.h"

/* Snapshots of one epoch reported on at most (the one found and its neighbours). */
#define IBPCTL_CERT_SNAPSHOTS_MAX 4

/* A snapshot read from OFFICIAL, decoded (not verified); borrowed for the call. */
typedef struct ibpctl_cert_snapshot {
    uint64_t stream_seq;
    const Ibp__V1__Envelope *env;
    const Ibp__V1__OfficialSnapshot *s;
} ibpctl_cert_snapshot;

/*
 * The quorum to check with for --quorum asked: 0 is a majority of the
 * roster's consensus nodes. Unlike consensus.certificate_quorum, 1 is
 * accepted with more than one consensus node: an operator may look at what a
 * single key vouched for; a warning on stderr (prog first) says so whenever
 * the quorum is 1. Errors: IBP_E_CONFIG (no consensus node in the roster, a
 * quorum above their number; err says which).
 */
ibp_status ibpctl_certificate_report_quorum(const char *prog, const ibp_roster *roster,
                                            uint64_t asked, size_t *out, ibp_err *err);

typedef struct ibpctl_certificate_report {
    size_t chosen;          /* index in the snapshots given: the first certified, else 0 */
    bool certified;         /* the chosen one is */
    size_t signers;         /* distinct consensus nodes counted for it */
    size_t quorum;          /* as asked */
    size_t consensus_nodes; /* in the roster */
    size_t others;          /* other snapshots of the epoch given */
    size_t others_certified;
    json_t *json; /* the "certificate" object (owned by the report) */
} ibpctl_certificate_report;

/*
 * Judges snaps[0..n) (1 <= n <= IBPCTL_CERT_SNAPSHOTS_MAX, snapshots of one
 * epoch E, the one to report on when none is certified first) with the
 * statements of E on COSIGN: a statement counts when
 * ibp_certificate_verify_each counts it, against the snapshot's epoch,
 * local_seq, state_digest and the BLAKE2b-256 of its payload bytes. The
 * previous digest: for epoch 1 the empty state's (32 zero bytes); else the
 * state_digest of the first of prev[0..n_prev) (snapshots of E-1, n_prev may
 * be 0) that the statements of E-1 certify; with none, the counted statements
 * need only agree among themselves (json "prev_checked": false). Each
 * consensus node's subject is read to its end; its newest statements of E
 * and E-1 are kept (at most 8 per epoch and node). *out is set on success;
 * free it with ibpctl_certificate_report_clear. Errors: IBP_E_NATS (reading
 * COSIGN failed or timed out; a missing COSIGN stream reads as no
 * statements), IBP_E_NOMEM, IBP_E_INVAL (bad arguments).
 */
ibp_status ibpctl_certificate_report_make(jsCtx *js, const ibp_roster *roster, size_t quorum,
                                          const ibpctl_cert_snapshot *snaps, size_t n,
                                          const ibpctl_cert_snapshot *prev, size_t n_prev,
                                          ibpctl_certificate_report *out, ibp_err *err);

/*
 * Prints to stderr, prog first, "epoch E is NOT certified: S of N consensus
 * nodes signed, quorum Q" when the chosen snapshot is not certified, and a
 * line about the other snapshots of the epoch when there are any.
 */
void ibpctl_certificate_report_print(const char *prog, const ibpctl_certificate_report *r,
                                     uint64_t epoch);

/* Frees the JSON and zeroes r; accepts NULL. */
void ibpctl_certificate_report_clear(ibpctl_certificate_report *r);

#endif
