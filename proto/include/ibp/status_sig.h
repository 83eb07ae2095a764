/*
 * Signed status messages (DESIGN.md §5, §13).
 *
 * A status message on ibp.status.<...> (stream STATUS) keeps a plain JSON
 * body, so any NATS client can read it. It is signed by the consensus replica
 * that publishes it; the signature travels in headers next to the body:
 *
 *     Ibp-Type:       Status
 *     Ibp-Signer:     <node id of the replica>
 *     Ibp-Signature:  <standard base64 (with padding) of the 64-byte Ed25519 signature>
 *     Nats-Msg-Id:    status-<epoch>-<index> | status-<event id>
 *
 * Signing input (what the Ed25519 signature covers), integers big-endian:
 *     "ibp.v1.status\0"                   14 bytes, the domain separator
 *     u32 length of signer, signer bytes  the Ibp-Signer header value
 *     u32 length of subject, subject      the NATS subject the message is published on
 *     u64 length of body
 *     BLAKE2b-256 of the body             32 bytes (crypto_generichash, no key)
 * The body is the message data exactly as sent (the JSON text, no trailing
 * newline). The separator is used by nothing else the project signs (envelopes
 * use "ibp.v1.envelope\0"), so a status signature can never pass as an
 * envelope signature or the other way round; the explicit lengths keep
 * (subject, body) pairs from sharing an input when bytes move between them.
 *
 * Verification, in this order, each with its own status:
 *     no Ibp-Signer or no Ibp-Signature header   IBP_E_NOT_FOUND (unsigned)
 *     signer not in the roster                   IBP_E_UNKNOWN_SIGNER
 *     signature not base64 of 64 bytes, or it
 *     does not match the roster key              IBP_E_BAD_SIGNATURE
 *     signer without the consensus role          IBP_E_ROLE_DENIED
 * Only a message that passes all four is an official status. A reader that
 * cannot verify (no roster) must not present the message as official.
 *
 * What a signature does not say: that the status is still current. STATUS
 * keeps the last message per subject, and bus permissions (§13) keep anyone
 * but consensus from publishing there; the "epoch" in the body tells how old
 * it is.
 *
 * Pure functions, thread-safe; nothing is logged.
 */
#ifndef IBP_STATUS_SIG_H
#define IBP_STATUS_SIG_H

#include <stddef.h>
#include <stdint.h>

#include "ibp/envelope.h"
#include "ibp/key.h"
#include "ibp/roster.h"
#include "ibp/status.h"

#define IBP_HDR_SIGNATURE "Ibp-Signature"
/* The domain separator, without its NUL (the signing input includes the NUL). */
#define IBP_STATUS_SIG_DOMAIN "ibp.v1.status"
/* base64 of 64 bytes with padding is 88 characters, plus NUL. */
#define IBP_STATUS_SIG_B64_SIZE 89

/*
 * Signs a status message with the signer's key (ibp_signer_sign_detached: no
 * sequence number is taken) and writes the Ibp-Signature header value into
 * sig_b64. subject and body are borrowed. Errors: IBP_E_INVAL (no subject),
 * IBP_E_NOMEM, IBP_E_CRYPTO. Thread-safe.
 */
ibp_status ibp_status_sig_sign(ibp_signer *s, const char *subject, const uint8_t *body,
                               size_t body_len, char sig_b64[IBP_STATUS_SIG_B64_SIZE],
                               ibp_err *err);

/*
 * As ibp_status_sig_sign with a bare key and a claimed signer id, for tools
 * and tests that make status messages by hand (forged or re-signed ones).
 */
ibp_status ibp_status_sig_sign_key(const ibp_key *key, const char *signer, const char *subject,
                                   const uint8_t *body, size_t body_len,
                                   char sig_b64[IBP_STATUS_SIG_B64_SIZE], ibp_err *err);

/*
 * Verifies one status message: signer and sig_b64 are the Ibp-Signer and
 * Ibp-Signature header values (NULL when missing), subject the subject it
 * arrived on, body its data. On IBP_OK *node (may be NULL) points at the
 * signer's roster entry (it lives as long as the roster). Errors: see the
 * order above; err says which header or which signer, and why.
 */
ibp_status ibp_status_sig_verify(const ibp_roster *roster, const char *subject, const char *signer,
                                 const char *sig_b64, const uint8_t *body, size_t body_len,
                                 const ibp_roster_node **node, ibp_err *err);

#endif
