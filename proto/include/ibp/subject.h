/*
 * NATS subject names and the token encoding of names inside them (DESIGN.md §5).
 *
 * Token encoding (reversible, one token per string):
 *   - bytes [A-Za-z0-9_-] stand for themselves;
 *   - every other byte b becomes "~HH", HH its value in upper-case hex;
 *   - the empty string is "~".
 * So "Stake Plus" -> "Stake~20Plus", "rpc.ibp.network" -> "rpc~2Eibp~2Enetwork",
 * "wss://rpc.ibp.network/polkadot" -> "wss~3A~2F~2Frpc~2Eibp~2Enetwork~2Fpolkadot".
 * Encoded tokens never contain '.', '*', '>', whitespace or control bytes.
 * Decoding accepts exactly what encoding produces (lower-case hex, escaped
 * safe bytes and malformed escapes are IBP_E_INVAL), so a string and its token
 * map one to one.
 *
 * Subjects:
 *   ibp.local.<node>                      observations, heartbeats, overrides (LOCAL)
 *   ibp.official.snapshot                 one OfficialSnapshot per epoch (OFFICIAL)
 *   ibp.official.heartbeat.<node>         consensus replica heartbeats (no stream)
 *   ibp.official.cosign.<node>            a replica's EpochStatements (COSIGN, the last
 *                                         nats.official_keep per subject; ibp/certificate.h)
 *   ibp.consensus.checkpoint.<node>       a replica's signed state (CHECKPOINT, last per subject)
 *   ibp.status.<member>.site.<check>.<v4|v6>
 *   ibp.status.<member>.domain.<check>.<domain>.<v4|v6>
 *   ibp.status.<member>.endpoint.<check>.<domain>.<url>.<v4|v6>
 *   ibp.status.<member>.override          JSON status, last per subject (STATUS)
 *   ibp.events.<member>                   Event (EVENTS)
 *   ibp.hits.<node>                       HitBatch (HITS)
 * Node ids are already token-safe (see ibp/roster.h) and are not encoded.
 *
 * All functions are pure and thread-safe. Builders write a NUL-terminated
 * subject into buf and return IBP_E_RANGE when cap is too small.
 */
#ifndef IBP_SUBJECT_H
#define IBP_SUBJECT_H

#include <stdbool.h>
#include <stddef.h>

#include "ibp/ibp.pb-c.h"
#include "ibp/status.h"
#include "ibp/types.h"

/* Header names carried by every message. */
#define IBP_HDR_TYPE "Ibp-Type"
#define IBP_HDR_SIGNER "Ibp-Signer"
#define IBP_HDR_MSG_ID "Nats-Msg-Id"

/* Stream names. */
#define IBP_STREAM_LOCAL "LOCAL"
#define IBP_STREAM_OFFICIAL "OFFICIAL"
#define IBP_STREAM_STATUS "STATUS"
#define IBP_STREAM_EVENTS "EVENTS"
#define IBP_STREAM_HITS "HITS"
#define IBP_STREAM_CHECKPOINT "CHECKPOINT"
#define IBP_STREAM_COSIGN "COSIGN"

#define IBP_SUBJECT_OFFICIAL_SNAPSHOT "ibp.official.snapshot"
/* The subjects of stream CHECKPOINT: one per consensus node. */
#define IBP_SUBJECT_CHECKPOINT_ALL "ibp.consensus.checkpoint.*"
/* The subjects of stream COSIGN: one per consensus node. */
#define IBP_SUBJECT_COSIGN_ALL "ibp.official.cosign.*"

/* Upper bound of an encoded token for an input of n bytes (without NUL). */
#define IBP_TOKEN_MAX_LEN(n) ((n) == 0 ? 1 : 3 * (n))

/* Bytes a status subject can take, NUL included: an endpoint key with every
 * field at its cap (ibp/types.h) and every byte escaped, 8,460. nats-server's
 * default max_control_line (4 KiB) is too short for it; every server of the
 * bus runs with a longer one (deploy/nats). */
#define IBP_SUBJECT_STATUS_MAX                                                               \
    (sizeof "ibp.status." - 1 + IBP_TOKEN_MAX_LEN(IBP_NAME_MAX) + sizeof ".endpoint." - 1 + \
     IBP_TOKEN_MAX_LEN(IBP_NAME_MAX) + 1 + IBP_TOKEN_MAX_LEN(IBP_DOMAIN_MAX) + 1 +          \
     IBP_TOKEN_MAX_LEN(IBP_URL_MAX) + sizeof ".v6")

/* Encodes in[0..len) as a token into buf (NUL-terminated); *out_len may be NULL. */
ibp_status ibp_token_encode(const char *in, size_t len, char *buf, size_t cap, size_t *out_len);

/* Decodes a token (NUL-terminated) into buf (NUL-terminated; *out_len may be NULL). */
ibp_status ibp_token_decode(const char *token, char *buf, size_t cap, size_t *out_len);

ibp_status ibp_subject_local(const char *node, char *buf, size_t cap);
ibp_status ibp_subject_official_heartbeat(const char *node, char *buf, size_t cap);
ibp_status ibp_subject_checkpoint(const char *node, char *buf, size_t cap);
ibp_status ibp_subject_cosign(const char *node, char *buf, size_t cap);
ibp_status ibp_subject_events(const char *member, char *buf, size_t cap);
ibp_status ibp_subject_hits(const char *node, char *buf, size_t cap);
/* Status subject of a result key (check type decides the shape, see above). */
ibp_status ibp_subject_status(const Ibp__V1__ResultKey *key, char *buf, size_t cap);
ibp_status ibp_subject_status_override(const char *member, char *buf, size_t cap);

#endif
