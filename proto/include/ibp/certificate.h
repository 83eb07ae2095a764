/*
 * Quorum certificates of official epochs (DESIGN.md §13; proto/ibp.proto,
 * "EpochStatement and EpochCertificate").
 *
 * Every consensus replica that computes epoch E itself, and finds the
 * snapshot stored for E equal to its own, signs an EpochStatement
 *     (epoch, local_seq, state_digest, prev_digest, snapshot_hash)
 * in an ordinary envelope (type PAYLOAD_TYPE_EPOCH_STATEMENT, the envelope's
 * signing input of ibp/envelope.h over the statement's protobuf bytes) and
 * publishes it on ibp.official.cosign.<its id>. A subscriber applies the
 * snapshot of E only when statements of a quorum of the roster's consensus
 * nodes agree with it. The set of statement envelopes is the certificate; it
 * is kept with the snapshot (the dns cache file) so what is loaded again can
 * be verified again, from the roster alone.
 *
 * snapshot_hash is BLAKE2b-256 (unkeyed) of the snapshot's payload bytes
 * (the OfficialSnapshot as carried in its envelope): the state digest is a
 * multiset hash meant to catch divergence, not a cryptographic commitment, so
 * the statement also binds the exact bytes subscribers apply. Replicas encode
 * a state to the same bytes (ibp/codec_snapshot.h), so every honest replica
 * computes the same hash.
 *
 * Everything here is pure (no I/O, no clock, no logging) and thread-safe.
 */
#ifndef IBP_CERTIFICATE_H
#define IBP_CERTIFICATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/envelope.h"
#include "ibp/roster.h"
#include "ibp/status.h"

#define IBP_CERT_DIGEST_BYTES 32
/* Statements a certificate may carry at most (more are refused whole). */
#define IBP_CERT_STATEMENTS_MAX 256
/* One statement envelope is small; anything over this is not one. */
#define IBP_CERT_STATEMENT_BYTES_MAX 1024

typedef struct ibp_epoch_statement {
    uint64_t epoch;
    uint64_t local_seq;
    uint8_t state_digest[IBP_CERT_DIGEST_BYTES];
    uint8_t prev_digest[IBP_CERT_DIGEST_BYTES];   /* epoch 1: all zero (the empty state) */
    uint8_t snapshot_hash[IBP_CERT_DIGEST_BYTES]; /* BLAKE2b-256 of the snapshot payload */
} ibp_epoch_statement;

/* BLAKE2b-256 of a snapshot's payload bytes, as the statement carries it. */
void ibp_certificate_snapshot_hash(const uint8_t *payload, size_t len,
                                   uint8_t out[IBP_CERT_DIGEST_BYTES]);

/* Packs s into *out (malloc'd, the caller frees). Errors: IBP_E_NOMEM. */
ibp_status ibp_certificate_statement_encode(const ibp_epoch_statement *s, uint8_t **out,
                                            size_t *out_len);

/*
 * Unpacks a statement payload. IBP_E_PAYLOAD_DECODE when it is not an
 * EpochStatement, its epoch is 0 or a digest or hash is not 32 bytes.
 */
ibp_status ibp_certificate_statement_decode(const uint8_t *data, size_t len,
                                            ibp_epoch_statement *out);

/*
 * Seals s as a signed envelope with signer (taking its next sequence
 * number); *out is malloc'd, the caller frees it. Errors: those of
 * ibp_signer_seal_bytes.
 */
ibp_status ibp_certificate_statement_seal(ibp_signer *signer, const ibp_epoch_statement *s,
                                          int64_t created_ms, uint8_t **out, size_t *out_len,
                                          uint64_t *seq_out, ibp_err *err);

/* ---- quorum ----------------------------------------------------------- */

/* The roster's consensus nodes. */
size_t ibp_certificate_consensus_nodes(const ibp_roster *roster);

/*
 * The quorum to use for a configured value: 0 means the default, a majority
 * of the roster's consensus nodes (floor(n / 2) + 1). Refused
 * (IBP_E_CONFIG, the message says why): no consensus node; a quorum above
 * their number; quorum 1 while the roster has more than one consensus node
 * (one stolen key would be enough again). *single (may be NULL) is set when
 * the result is 1 (one consensus node: the caller warns about it).
 */
ibp_status ibp_certificate_quorum(const ibp_roster *roster, size_t configured, size_t *out,
                                  bool *single, ibp_err *err);

/* ---- verifying -------------------------------------------------------- */

/* What a subscriber holds and wants certified. */
typedef struct ibp_certificate_claim {
    uint64_t epoch;
    uint64_t local_seq;
    uint8_t state_digest[IBP_CERT_DIGEST_BYTES];
    uint8_t snapshot_hash[IBP_CERT_DIGEST_BYTES];
    bool have_prev; /* the subscriber holds certified epoch - 1: prev_digest is its digest */
    uint8_t prev_digest[IBP_CERT_DIGEST_BYTES];
} ibp_certificate_claim;

/* Why one statement does not count: the enum name, a short key (for JSON) and a text. */
#define IBP_CERT_VERDICTS(X)                                                                       \
    X(IBP_CERT_OK, "counted", "counted")                                                           \
    X(IBP_CERT_BAD_ENVELOPE, "bad_envelope", "not a signed envelope")                              \
    X(IBP_CERT_UNKNOWN_SIGNER, "unknown_signer", "signer not in the roster")                       \
    X(IBP_CERT_BAD_SIGNATURE, "bad_signature", "signature does not match the roster key")          \
    X(IBP_CERT_NOT_CONSENSUS, "not_consensus", "signer is not a consensus node")                   \
    X(IBP_CERT_WRONG_TYPE, "wrong_type", "not an EpochStatement")                                  \
    X(IBP_CERT_BAD_STATEMENT, "bad_statement", "statement does not decode")                        \
    X(IBP_CERT_DIGEST_MISMATCH, "other_digest", "statement differs from the snapshot")             \
    X(IBP_CERT_HASH_MISMATCH, "other_hash", "statement certifies other snapshot bytes")            \
    X(IBP_CERT_CHAIN_MISMATCH, "other_prev", "previous digest differs")                            \
    X(IBP_CERT_DUPLICATE_SIGNER, "duplicate_signer", "signer counted already")

typedef enum ibp_certificate_verdict {
#define IBP_CERT_X_ENUM(name, key, text) name,
    IBP_CERT_VERDICTS(IBP_CERT_X_ENUM)
#undef IBP_CERT_X_ENUM
        IBP_CERT_VERDICT_COUNT
} ibp_certificate_verdict;

/* The verdict's text ("signer is not a consensus node"), "?" when out of range. */
const char *ibp_certificate_verdict_text(ibp_certificate_verdict v);

/* The verdict's key ("not_consensus"), "?" when out of range. */
const char *ibp_certificate_verdict_key(ibp_certificate_verdict v);

typedef struct ibp_certificate_result {
    bool certified;   /* at least quorum distinct consensus nodes counted */
    size_t signers;   /* distinct consensus nodes counted */
    size_t quorum;    /* as asked */
    uint8_t prev_digest[IBP_CERT_DIGEST_BYTES]; /* the counted statements' previous digest */
    size_t by_verdict[IBP_CERT_VERDICT_COUNT];  /* statements per verdict */
    ibp_certificate_verdict first_refusal;      /* IBP_CERT_OK when none was refused */
    char first_refusal_signer[IBP_NODE_ID_MAX + 1]; /* "" when unknown */
} ibp_certificate_result;

/*
 * Judges statements[i] (encoded envelopes of lens[i] bytes, borrowed) against
 * claim with the roster's keys: each counts when it is a valid envelope
 * (roster key, signature) from a consensus node, of type EpochStatement, and
 * its epoch, local_seq, state_digest and snapshot_hash equal the claim's.
 * prev_digest: with claim->have_prev the statement's must equal
 * claim->prev_digest; without, the counted statements must agree among
 * themselves (the group with the most distinct signers wins; ties go to the
 * group seen first) and out->prev_digest says which. A signer counts once.
 * certified when quorum (>= 1) signers count. Envelope seq and time are not
 * looked at. Errors: IBP_E_INVAL (quorum 0, NULL arguments, more than
 * IBP_CERT_STATEMENTS_MAX statements), IBP_E_NOMEM.
 */
ibp_status ibp_certificate_verify(const ibp_roster *roster, size_t quorum,
                                  const ibp_certificate_claim *claim,
                                  const uint8_t *const *statements, const size_t *lens, size_t n,
                                  ibp_certificate_result *out);

/* The verdict on one statement (ibp_certificate_verify_each). */
typedef struct ibp_certificate_judgement {
    ibp_certificate_verdict verdict;
    /* The envelope's signer as written, cut to IBP_NODE_ID_MAX bytes ("" when
     * the envelope does not decode); trust it only with signer_verified. */
    char signer[IBP_NODE_ID_MAX + 1];
    bool signer_verified;          /* the signature verified with that node's roster key */
    bool decoded;                  /* statement is set: a verified EpochStatement that decoded */
    ibp_epoch_statement statement; /* when decoded */
} ibp_certificate_judgement;

/*
 * ibp_certificate_verify, and each statement's verdict: each[i] (an array of
 * n the caller owns; may be NULL) is statements[i]'s. The verdicts are those
 * counted in out->by_verdict: a statement whose state (epoch, local_seq,
 * state_digest) differs from the claim is IBP_CERT_DIGEST_MISMATCH, one with
 * the same state over other snapshot bytes IBP_CERT_HASH_MISMATCH, one with
 * another prev_digest IBP_CERT_CHAIN_MISMATCH, a second counting statement of
 * a signer IBP_CERT_DUPLICATE_SIGNER. Errors: those of ibp_certificate_verify
 * (each is then left as it was).
 */
ibp_status ibp_certificate_verify_each(const ibp_roster *roster, size_t quorum,
                                       const ibp_certificate_claim *claim,
                                       const uint8_t *const *statements, const size_t *lens,
                                       size_t n, ibp_certificate_result *out,
                                       ibp_certificate_judgement *each);

/*
 * As ibp_certificate_verify, for statements whose envelope signatures the
 * caller checked itself already, each against the roster key of the node its
 * envelope names (ibp_envelope_signature_valid), when it took them in: the
 * signatures are not checked again, everything else is. For a holder that
 * judges the same statements many times (the official subscriber, at every
 * snapshot and statement that arrives); never for statements read from a file
 * or the bus without that check. Same errors.
 */
ibp_status ibp_certificate_verify_checked(const ibp_roster *roster, size_t quorum,
                                          const ibp_certificate_claim *claim,
                                          const uint8_t *const *statements, const size_t *lens,
                                          size_t n, ibp_certificate_result *out);

/*
 * A certificate as bytes (EpochCertificate: epoch and the statement
 * envelopes), for files. Encode copies nothing it keeps; *out is malloc'd.
 * Decode gives *stmts and *lens (each statement malloc'd in one block the
 * caller frees with ibp_certificate_blob_free). Errors: IBP_E_NOMEM,
 * IBP_E_PAYLOAD_DECODE (not a certificate, over the caps).
 */
ibp_status ibp_certificate_encode(uint64_t epoch, const uint8_t *const *statements,
                                  const size_t *lens, size_t n, uint8_t **out, size_t *out_len);

typedef struct ibp_certificate_blob {
    uint64_t epoch;
    uint8_t **statements;
    size_t *lens;
    size_t n;
} ibp_certificate_blob;

ibp_status ibp_certificate_decode(const uint8_t *data, size_t len, ibp_certificate_blob *out);

/* Frees what a decode made; accepts NULL and zeroed blobs; leaves it zeroed. */
void ibp_certificate_blob_free(ibp_certificate_blob *b);

#endif
