/*
 * Decoding bus messages to JSON (`ibpctl decode`, `snapshot`, `audit`).
 *
 * A bus message is either a signed Envelope (proto/ibp.proto) or, on
 * ibp.status.*, a plain JSON document signed in its headers
 * (ibp/status_sig.h). ibp_decode_json() tells them apart, decodes the
 * envelope and its payload (every payload type) and, with a roster, checks
 * the signature statelessly (no sequence numbers); ibp_decode_status_json()
 * checks a status message with its subject and headers.
 *
 * JSON shape of an envelope:
 *   {"signer": "...", "seq": N, "created_ms": N, "type": "ObservationBatch",
 *    "signature": "<base64>", "verified": true|false, "reason": "...",
 *    "payload": {...}}
 * "verified"/"reason" only with a roster ("reason" only when not verified).
 * Payload fields keep their proto names; enums are lower-case without their
 * prefix ("up", "endpoint", "override"); bytes are base64 (state_digest hex).
 * An OfficialSnapshot has its string table resolved: entries, overrides and
 * evidence carry strings (the endpoint split form joined into the URL), and
 * each evidence item names its key.
 *
 * Pure functions, thread-safe.
 */
#ifndef IBP_DECODE_JSON_H
#define IBP_DECODE_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/envelope.h"
#include "ibp/roster.h"
#include "ibp/status.h"

/*
 * Decodes one message body into *out (a new reference).
 *   - A body that is a JSON object (status messages) is returned as it is.
 *   - Otherwise it must be an Envelope of a known type; type_hint (from the
 *     Ibp-Type header; UNSPECIFIED when unknown) is only compared: a mismatch
 *     adds "header_type".
 *   - With roster (may be NULL) the envelope is verified statelessly.
 * Errors: IBP_E_DECODE (not JSON and not an envelope), IBP_E_PAYLOAD_DECODE
 * (the payload does not decode as its type, or a snapshot index is out of
 * range), IBP_E_NOMEM.
 */
ibp_status ibp_decode_json(const uint8_t *data, size_t len, const ibp_roster *roster,
                           ibp_payload_type type_hint, json_t **out, ibp_err *err);

/*
 * Decodes a status message (a JSON object body on ibp.status.<...>) with the
 * headers that sign it (ibp/status_sig.h) and verifies it against roster:
 *   {"type": "Status", "subject": S, "signer": <Ibp-Signer>|null,
 *    "signature": <Ibp-Signature>|null, "verified": true|false,
 *    "reason": "IBP_E_...: why", "payload": {the status document}}
 * The document is only ever under "payload", so nothing unverified reads as
 * an official status. "reason" is there when not verified: no roster, no
 * subject, or the verification's status (IBP_E_NOT_FOUND for an unsigned
 * message, IBP_E_UNKNOWN_SIGNER, IBP_E_BAD_SIGNATURE, IBP_E_ROLE_DENIED).
 * subject, signer, signature and roster may be NULL. *verified (may be NULL)
 * says whether it passed. Errors: IBP_E_DECODE (the body is not a JSON
 * object; it may be an envelope), IBP_E_NOMEM.
 */
ibp_status ibp_decode_status_json(const uint8_t *data, size_t len, const char *subject,
                                  const char *signer, const char *signature,
                                  const ibp_roster *roster, json_t **out, bool *verified,
                                  ibp_err *err);

/*
 * The verdict on a document of ibp_decode_json or ibp_decode_status_json:
 * true only when it says "verified": true and has no "header_type" (an
 * Ibp-Type header that disagrees with the signed type). A document decoded
 * without a roster has no "verified" and never verifies. *why (may be NULL)
 * gets the reason when false: the document's "reason", or a constant text;
 * it is borrowed from doc or static. Pure, thread-safe.
 */
bool ibp_decode_json_verified(const json_t *doc, const char **why);

/*
 * A one-line summary of obj's members for a human: "k=v k=v ...", in the
 * object's order. Strings are written as they are unless they hold a space,
 * '=', a quote, a backslash or a control character (then JSON-quoted);
 * numbers, booleans and null as JSON; arrays as k=#<size>; objects are left
 * out. Members named in skip (NULL-terminated list, may be NULL) are left
 * out. At most cap - 1 characters are written (cap > 0), a cut line ends in
 * "..."; returns buf. Pure, thread-safe.
 */
char *ibp_decode_json_fields(const json_t *obj, const char *const *skip, char *buf, size_t cap);

/* A decoded payload of type as JSON (NULL on out-of-range snapshot indices or no memory). */
json_t *ibp_payload_to_json(ibp_payload_type type, const ProtobufCMessage *payload);

/* A ResultKey as JSON. */
json_t *ibp_result_key_to_json(const Ibp__V1__ResultKey *key);

/* Lower-case short name of a Status value ("up", "down", "unspecified"). */
const char *ibp_status_value_name(Ibp__V1__Status s);

#endif
