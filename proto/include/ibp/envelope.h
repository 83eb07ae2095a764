/*
 * The signed envelope: every message on the bus (DESIGN.md §4).
 *
 * Signing input (what the Ed25519 signature covers), all integers big-endian:
 *     "ibp.v1.envelope\0"                 16 bytes, the domain separator
 *     u32 length of signer, signer bytes
 *     u64 seq
 *     i64 created_ms
 *     u32 payload type
 *     u64 payload length
 *     BLAKE2b-256 of the payload          32 bytes
 * Hashing the payload keeps the signed input small and fixed whatever the
 * payload size; the explicit lengths and separator keep any two different
 * envelopes from sharing a signing input.
 *
 * Verification order, each with its own status, counter and log line:
 *     size limit        IBP_E_TOO_LARGE
 *     envelope decode   IBP_E_DECODE
 *     signer in roster  IBP_E_UNKNOWN_SIGNER
 *     signature         IBP_E_BAD_SIGNATURE
 *     role for type     IBP_E_ROLE_DENIED
 *     sequence          IBP_E_REPLAY (at or below the last accepted from that signer)
 *     payload decode    IBP_E_PAYLOAD_DECODE
 * The signature is checked before anything the signer claims is believed.
 */
#ifndef IBP_ENVELOPE_H
#define IBP_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/ibp.pb-c.h"
#include "ibp/key.h"
#include "ibp/roster.h"
#include "ibp/status.h"

typedef Ibp__V1__PayloadType ibp_payload_type;

/* Default and hard upper limit for one bus message. */
#define IBP_MESSAGE_MAX_DEFAULT (8u * 1024u * 1024u)
/*
 * Most memory a payload may take once decoded (ibp/pb_bound.h). An official
 * snapshot of 250000 keys (consensus.max_keys) bounds at about 60 MiB; 8 MiB
 * of empty Observations would take about 500 MB.
 */
#define IBP_DECODED_MAX_DEFAULT (128u * 1024u * 1024u)

/* Name used in the Ibp-Type header ("ObservationBatch"); NULL for an unknown type. */
const char *ibp_payload_type_name(ibp_payload_type type);
/* Parses a header value back; PAYLOAD_TYPE_UNSPECIFIED when unknown. */
ibp_payload_type ibp_payload_type_parse(const char *name);
/* Roles (bit set of ibp_role) allowed to sign a payload type; 0 for unknown types. */
unsigned ibp_payload_allowed_roles(ibp_payload_type type);
/* protobuf-c descriptor of a payload type; NULL for unknown types. */
const ProtobufCMessageDescriptor *ibp_payload_descriptor(ibp_payload_type type);

/* ---- signing ---------------------------------------------------------- */

typedef struct ibp_signer ibp_signer;

/*
 * Creates a signer for node_id with key (copied) and the durable sequence
 * file at seq_path (see ibp/seqfile.h). Errors: IBP_E_INVAL (bad node id),
 * whatever ibp_seqfile_open returns.
 */
ibp_status ibp_signer_new(const char *node_id, const ibp_key *key, const char *seq_path,
                          ibp_signer **out, ibp_err *err);

/*
 * Packs payload, takes the next sequence number and returns the encoded,
 * signed Envelope in *out (malloc'd; the caller frees it) and its length.
 * *seq_out (may be NULL) receives the sequence number used.
 * IBP_E_TOO_LARGE, and no sequence number taken, when the envelope could be
 * longer than IBP_MESSAGE_MAX_DEFAULT (every receiver would drop it).
 * Thread-safe: calls on one signer are serialised internally so sequence
 * numbers stay strictly increasing in the order envelopes are sealed.
 */
ibp_status ibp_signer_seal(ibp_signer *s, ibp_payload_type type, const ProtobufCMessage *payload,
                           int64_t created_ms, uint8_t **out, size_t *out_len, uint64_t *seq_out,
                           ibp_err *err);

/* As ibp_signer_seal, for a payload that is already encoded. */
ibp_status ibp_signer_seal_bytes(ibp_signer *s, ibp_payload_type type, const uint8_t *payload,
                                 size_t payload_len, int64_t created_ms, uint8_t **out,
                                 size_t *out_len, uint64_t *seq_out, ibp_err *err);

const char *ibp_signer_id(const ibp_signer *s);

/*
 * Signs domain || '\0' || msg (detached Ed25519) with the signer's key, for
 * signed things that are not envelopes (ibp/status_sig.h). domain is a
 * separator of 1-64 characters naming what is signed ("ibp.v1.status");
 * the envelope's own separator "ibp.v1.envelope" is refused (IBP_E_INVAL), so
 * a detached signature can never pass as an envelope signature. Takes no
 * sequence number. Thread-safe. Errors: IBP_E_INVAL, IBP_E_NOMEM, IBP_E_CRYPTO.
 */
ibp_status ibp_signer_sign_detached(ibp_signer *s, const char *domain, const uint8_t *msg,
                                    size_t len, uint8_t sig[IBP_SIGNATURE_BYTES]);

/* Frees the signer and wipes its key; accepts NULL. */
void ibp_signer_free(ibp_signer *s);

/*
 * Signs fields 1-5 of env (signer, seq, created_ms, type, payload) with key and
 * writes the 64-byte signature into sig. The envelope is only read. For tools
 * and tests that build envelopes by hand (forged, odd or re-signed ones).
 * IBP_E_INVAL when the signer id is longer than IBP_NODE_ID_MAX.
 */
ibp_status ibp_envelope_sign_fields(const Ibp__V1__Envelope *env, const ibp_key *key,
                                    uint8_t sig[IBP_SIGNATURE_BYTES]);

/* ---- verifying -------------------------------------------------------- */

/*
 * True when env's signature is a valid Ed25519 signature of its fields 1-5
 * (the signing input above) by public key pk. Checks nothing else (roster,
 * role, sequence, payload): for pure checks of stored envelopes
 * (ibp/certificate.h). Thread-safe.
 */
bool ibp_envelope_signature_valid(const Ibp__V1__Envelope *env, const uint8_t pk[IBP_PUBKEY_BYTES]);

typedef struct ibp_verifier_opts {
    size_t max_message_bytes;  /* default IBP_MESSAGE_MAX_DEFAULT */
    size_t max_decoded_bytes;  /* default IBP_DECODED_MAX_DEFAULT: refused (IBP_E_TOO_LARGE)
                                  before decoding when the payload would take more */
    const char *log_component; /* default "verify" */
} ibp_verifier_opts;

void ibp_verifier_opts_init(ibp_verifier_opts *opts);

typedef struct ibp_verifier ibp_verifier;

/* A message that passed every check. Owns envelope and payload. */
typedef struct ibp_verified {
    Ibp__V1__Envelope *envelope;
    ProtobufCMessage *payload;     /* cast per envelope->type */
    const ibp_roster_node *signer; /* borrowed from the roster */
} ibp_verified;

/*
 * Creates a verifier. The roster is borrowed and must outlive the verifier.
 * A verifier keeps the last accepted sequence number per signer; it is not
 * thread-safe (use one per consumer thread, as each stream is read in order).
 */
ibp_status ibp_verifier_new(const ibp_roster *roster, const ibp_verifier_opts *opts,
                            ibp_verifier **out);

/*
 * Checks one encoded envelope (see the order above). On IBP_OK fills *out,
 * which the caller releases with ibp_verified_clear(); on rejection counts the
 * reason, logs one WARN line (reason, signer, seq when known) and sets err.
 */
ibp_status ibp_verifier_check(ibp_verifier *v, const uint8_t *data, size_t len, ibp_verified *out,
                              ibp_err *err);

/* Like ibp_verifier_check, but does not enforce or advance sequence numbers
 * (for read-only tools such as `ibpctl decode` and audits of old messages). */
ibp_status ibp_verifier_check_stateless(ibp_verifier *v, const uint8_t *data, size_t len,
                                        ibp_verified *out, ibp_err *err);

/* Releases what a successful check returned; accepts a zeroed or cleared struct. */
void ibp_verified_clear(ibp_verified *vm);

/* Messages rejected for reason so far (0 for reasons never used). */
uint64_t ibp_verifier_rejected(const ibp_verifier *v, ibp_status reason);
uint64_t ibp_verifier_accepted(const ibp_verifier *v);

/* Last accepted sequence of a signer (0 if none); and restoring it after a restart. */
uint64_t ibp_verifier_last_seq(const ibp_verifier *v, const char *signer);
ibp_status ibp_verifier_set_last_seq(ibp_verifier *v, const char *signer, uint64_t seq);

void ibp_verifier_free(ibp_verifier *v);

#endif
