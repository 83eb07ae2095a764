/*
 * ResultKey (proto/ibp.proto) as a plain C struct, the check type and status
 * values of the wire, the caps on key strings, and the canonical key order.
 *
 * The canonical order is the one order of keys on the wire: an
 * OfficialSnapshot lists its entries in it (ibp/codec_snapshot.h), so every
 * replica packs the same bytes. It is defined here once; consensus and the
 * data library both use ibp_codec_key_cmp().
 *
 * Values match the wire's enum numbers (CheckType, Status), and those of
 * node/data's ibp_check_type and the vote engine's ibp_vote_check and
 * ibp_vote_status, so callers convert by value.
 *
 * Pure: no allocation, no I/O; thread-safe.
 */
#ifndef IBP_CODEC_RESULT_KEY_H
#define IBP_CODEC_RESULT_KEY_H

#include <stdbool.h>
#include <stddef.h>

#include "ibp/status.h"

/* Caps on key strings, in bytes without the NUL (same values as node/data's ibp/result.h). */
#define IBP_CODEC_DOMAIN_MAX 253 /* RFC 1035 */
#define IBP_CODEC_NAME_MAX 255   /* member and check names, node ids */
#define IBP_CODEC_URL_MAX 2048   /* endpoint URLs */
#define IBP_CODEC_ERROR_MAX 4096 /* error texts, override reasons */
#define IBP_CODEC_DATA_MAX 65536 /* extra data (a JSON object as text) */

/* CheckType of the wire. */
typedef enum ibp_codec_check {
    IBP_CODEC_CHECK_NONE = 0,
    IBP_CODEC_CHECK_SITE = 1,
    IBP_CODEC_CHECK_DOMAIN = 2,
    IBP_CODEC_CHECK_ENDPOINT = 3,
} ibp_codec_check;

/* Status of the wire. */
typedef enum ibp_codec_status {
    IBP_CODEC_STATUS_NONE = 0,
    IBP_CODEC_STATUS_UP = 1,
    IBP_CODEC_STATUS_DOWN = 2,
} ibp_codec_status;

/*
 * A result key. Strings are borrowed; NULL means "". Site keys have empty
 * domain and endpoint; domain keys an empty endpoint.
 */
typedef struct ibp_codec_key {
    ibp_codec_check type;
    const char *check_name;
    const char *member;
    const char *domain;
    const char *endpoint;
    bool ipv6;
} ibp_codec_key;

/*
 * The canonical order: type, check name, domain, endpoint, ipv6 (false
 * first), member, strings compared byte for byte (so a group's members sit
 * together). Returns <0, 0, >0.
 */
int ibp_codec_key_cmp(const ibp_codec_key *a, const ibp_codec_key *b);

/*
 * Checks a key the way a received one is checked: IBP_E_INVAL for an unknown
 * type, an empty check name or member, a site key with a domain or endpoint,
 * a domain key without a domain or with an endpoint, an endpoint key without
 * both; IBP_E_TOO_LARGE for a string over its cap above (the message names
 * the field, its length and the cap, never the text).
 */
ibp_status ibp_codec_key_check(const ibp_codec_key *k, ibp_err *err);

/* "site", "domain", "endpoint"; "?" for anything else. */
const char *ibp_codec_check_name(ibp_codec_check type);

#endif
